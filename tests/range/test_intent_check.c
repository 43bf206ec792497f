/*
** tests/range/test_intent_check.c: the one-seek intent check of a commit
** (range/eval.c range__request_has_intents, check_intents' fast path) and
** the compaction of the raw keyspace that a large resolution asks for
** (storage_compact_raw).
**
** The check seeks only the bounding span of a request's writes, delete
** spans and read spans, clipped to the range: an intent outside it answers
** "none", one on any key the request writes or reads answers "maybe". Cases
** by hand, then a seeded random comparison against a brute-force model
** (MERIDIAN_SEED=N replays), on the in-memory twin and on RocksDB with the
** intents resolved (deleted raw keys) and compacted, now and in the
** background.
*/
#define _GNU_SOURCE
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/base.h"
#include "range/eval_int.h"
#include "range/intent_int.h"
#include "range/range.h"
#include "storage/storage.h"

#define RANDOM_ROUNDS 400
#define RANDOM_KEYS 40     /* user keys k00..k39 */
#define RESOLVED_KEYS 5000 /* deleted intent keys of the RocksDB cases */
#define COMPACT_WAIT_MS 30000

static uint64_t g_seed;

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "\n  %s:%d: %s\n  replay: MERIDIAN_SEED=%llu\n", __FILE__,     \
                    __LINE__, #cond, (unsigned long long)g_seed);                          \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

/* ---- fixtures: an engine (memory, or RocksDB in a temp dir) ---------------------- */

typedef struct fixture {
    storage_engine *e;
    char dir[256]; /* empty: memory */
} fixture;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int setup_memory(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    storage_options so = {.dir = NULL, .create_if_missing = true};
    assert_int_equal(storage_open(&so, &f->e), STORAGE_OK);
    *state = f;
    return 0;
}

static int setup_rocksdb(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/test_intent_check.XXXXXX", tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    storage_options so = {.dir = f->dir, .create_if_missing = true};
    assert_int_equal(storage_open(&so, &f->e), STORAGE_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    storage_close(f->e);
    if (f->dir[0] != '\0')
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------ */

/* Lay (put) or resolve (delete) the intents of txn on keys[0..n). */
static void intent_ops(storage_engine *e, const char *const *keys, size_t n, uint64_t txn,
                       bool put)
{
    base_buf k = {0}, v = {0};
    storage_batch *b = storage_batch_new();
    assert_non_null(b);
    range__intent in = {.txn_id = txn, .nonce = 1, .ts = {.wall_ns = 100, .logical = 0},
                        .anchor = (const uint8_t *)"a", .anchor_len = 1,
                        .value = (const uint8_t *)"v", .value_len = 1};
    assert_int_equal(range__intent_encode(&in, &v), RANGE_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(range__intent_key((const uint8_t *)keys[i], strlen(keys[i]), &k),
                         RANGE_OK);
        if (put)
            assert_int_equal(storage_batch_put_raw(b, k.data, k.len, v.data, v.len), STORAGE_OK);
        else
            assert_int_equal(storage_batch_delete_raw(b, k.data, k.len), STORAGE_OK);
    }
    assert_int_equal(storage_write(e, b, false), STORAGE_OK);
    storage_batch_free(b);
    base_buf_free(&k);
    base_buf_free(&v);
}

static void intent_op(storage_engine *e, const char *key, uint64_t txn, bool put)
{
    intent_ops(e, &key, 1, txn, put);
}

/* n intents of txn laid then resolved at "<prefix><i, 6 digits>". */
static void resolved_intents(storage_engine *e, const char *prefix, size_t n, uint64_t txn)
{
    char (*names)[32] = calloc(n, sizeof(*names));
    const char **keys = calloc(n, sizeof(*keys));
    assert_true(names != NULL && keys != NULL);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "%s%06zu", prefix, i);
        keys[i] = names[i];
    }
    intent_ops(e, keys, n, txn, true);
    intent_ops(e, keys, n, txn, false);
    free(keys);
    free(names);
}

#define W(k) {(const uint8_t *)(k), sizeof(k) - 1, (const uint8_t *)"x", 1, false}
#define P(k) {(const uint8_t *)(k), sizeof(k) - 1, NULL, 0, true}
#define S(a, b) {(const uint8_t *)(a), sizeof(a) - 1, (const uint8_t *)(b), sizeof(b) - 1, false}
#define OPEN(a) {(const uint8_t *)(a), sizeof(a) - 1, NULL, 0, false}

static uint8_t g_desc_start[] = "b", g_desc_end[] = "y";
/* the range ["b", "y"): intents at "a" and "z" lie in other ranges */
static const range_descriptor g_desc = {1, 1, g_desc_start, 1, g_desc_end, 1, {1}, 1};

static bool has(storage_engine *e, const range_descriptor *d, const range_write *w, size_t nw,
                const range_span *del, size_t nd, const range_span *rd, size_t nr)
{
    range_commit_request req = {.txn_id = 9, .writes = w, .write_count = nw,
                                .delete_spans = del, .delete_span_count = nd,
                                .read_spans = rd, .read_span_count = nr};
    bool h = false;
    assert_int_equal(range__request_has_intents(e, d, &req, &h), RANGE_OK);
    return h;
}

/* One intent at "h" in the range, and intents at "a" and "z" outside it:
** requests around it. */
static void hand_cases(storage_engine *e)
{
    intent_op(e, "h", 7, true);
    intent_op(e, "a", 7, true);
    intent_op(e, "z", 7, true);
    const range_descriptor *d = &g_desc;
    /* 20 writes past "h": outside the bounding span, no intent */
    range_write wi[20];
    char names[20][4];
    for (int i = 0; i < 20; i++) {
        snprintf(names[i], sizeof(names[i]), "i%02d", i);
        wi[i] = (range_write){(const uint8_t *)names[i], 3, (const uint8_t *)"x", 1, false};
    }
    assert_false(has(e, d, wi, 20, NULL, 0, NULL, 0));
    /* write-write: a write on "h" */
    range_write wh[] = {W("g0"), W("h"), W("i0")};
    assert_true(has(e, d, wh, 3, NULL, 0, NULL, 0));
    /* read-write: the writes elsewhere, a read span over "h" */
    range_span r_span[] = {S("g", "ha")};
    assert_true(has(e, d, wi, 20, NULL, 0, r_span, 1));
    /* a read point on "h" */
    range_span r_pt[] = {P("c"), P("h")};
    assert_true(has(e, d, wi, 20, NULL, 0, r_pt, 2));
    /* a delete span over "h" */
    range_span del[] = {S("gz", "hb")};
    assert_true(has(e, d, wi, 20, del, 1, NULL, 0));
    /* the end of a span is exclusive, a point's key inclusive */
    range_span r_before[] = {S("c", "h")};
    assert_false(has(e, d, NULL, 0, NULL, 0, r_before, 1));
    range_write wg[] = {W("g0"), W("g9")};
    range_span r_gz[] = {P("gz")};
    assert_false(has(e, d, wg, 2, NULL, 0, r_gz, 1));
    /* the bounding span is all it knows: "h" between a write and a read */
    range_write wc[] = {W("c")};
    range_span r_ij[] = {S("i", "j")};
    assert_true(has(e, d, wc, 1, NULL, 0, r_ij, 1));
    /* clipped to the range: "z" past its end, "a" before its start */
    range_span r_open[] = {OPEN("x")};
    assert_false(has(e, d, NULL, 0, NULL, 0, r_open, 1));
    range_span del_low[] = {S("", "c")};
    assert_false(has(e, d, NULL, 0, del_low, 1, NULL, 0));
    /* ... and the whole range open at both ends meets "h" */
    range_span all[] = {OPEN("")};
    assert_true(has(e, d, NULL, 0, NULL, 0, all, 1));
    /* nothing to check */
    assert_false(has(e, d, NULL, 0, NULL, 0, NULL, 0));
    /* resolved: nothing anywhere */
    intent_op(e, "h", 7, false);
    assert_false(has(e, d, NULL, 0, NULL, 0, all, 1));
    assert_false(has(e, d, wh, 3, NULL, 0, NULL, 0));
}

static void test_hand_memory(void **state)
{
    fixture *f = *state;
    hand_cases(f->e);
}

/* The same over RocksDB with many resolved intents (deleted raw keys) on
** both sides of "h": they change nothing of the answers. */
static void test_hand_rocksdb(void **state)
{
    fixture *f = *state;
    resolved_intents(f->e, "g", RESOLVED_KEYS, 5);
    resolved_intents(f->e, "i", RESOLVED_KEYS, 5);
    hand_cases(f->e);
}

/* ---- random requests against the brute-force model -------------------------------- */

static char g_keys[RANDOM_KEYS][4];

static const char *rkey(uint64_t *rng)
{
    return g_keys[rng_next(rng) % RANDOM_KEYS];
}

/* A random span: a point, a bounded span or an open one. Keys borrowed. */
static range_span rspan(uint64_t *rng)
{
    const char *a = rkey(rng), *b = rkey(rng);
    switch (rng_next(rng) % 4) {
    case 0:
        return (range_span){(const uint8_t *)a, 3, NULL, 0, true};
    case 1:
        return (range_span){(const uint8_t *)a, 3, NULL, 0, false};
    default:
        if (strcmp(a, b) > 0) {
            const char *t = a;
            a = b;
            b = t;
        }
        if (strcmp(a, b) == 0)
            return (range_span){(const uint8_t *)a, 3, NULL, 0, true};
        return (range_span){(const uint8_t *)a, 3, (const uint8_t *)b, 3, false};
    }
}

/* Does an element of the request (a write, a point, a span) start at or
** before key k and end after it? Over every pair: the bounding span. */
static bool model_bounds(const char *k, const range_write *w, size_t nw, const range_span *sp,
                         size_t ns)
{
    bool low = false, high = false;
    for (size_t i = 0; i < nw; i++) {
        int c = strncmp((const char *)w[i].key, k, 3);
        low |= c <= 0;
        high |= c >= 0;
    }
    for (size_t i = 0; i < ns; i++) {
        int c = strncmp((const char *)sp[i].start, k, 3);
        low |= c <= 0;
        if (sp[i].point)
            high |= c >= 0;
        else
            high |= sp[i].end_len == 0 || strncmp((const char *)sp[i].end, k, 3) > 0;
    }
    return low && high;
}

static bool model_touches(const char *k, const range_write *w, size_t nw,
                          const range_span *sp, size_t ns)
{
    for (size_t i = 0; i < nw; i++)
        if (strncmp((const char *)w[i].key, k, 3) == 0)
            return true;
    for (size_t i = 0; i < ns; i++)
        if (range__span_contains(&sp[i], (const uint8_t *)k, 3))
            return true;
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void random_cases(storage_engine *e)
{
    const char *seed_env = getenv("MERIDIAN_SEED");
    g_seed = seed_env != NULL ? strtoull(seed_env, NULL, 10) : (uint64_t)time(NULL);
    uint64_t rng = g_seed;
    for (int i = 0; i < RANDOM_KEYS; i++)
        snprintf(g_keys[i], sizeof(g_keys[i]), "k%02d", i);
    bool live[RANDOM_KEYS] = {false};
    static uint8_t k05[] = "k05", k35[] = "k35";
    for (int round = 0; round < RANDOM_ROUNDS; round++) {
        /* flip a few intents: laid, or resolved */
        for (int j = 0; j < 3; j++) {
            int i = (int)(rng_next(&rng) % RANDOM_KEYS);
            live[i] = (rng_next(&rng) % 8) == 0;
            intent_op(e, g_keys[i], 7, live[i]);
        }
        range_descriptor d = {1, 1, NULL, 0, NULL, 0, {1}, 1};
        if (rng_next(&rng) % 2) {
            d.start_key = k05;
            d.start_len = 3;
        }
        if (rng_next(&rng) % 2) {
            d.end_key = k35;
            d.end_len = 3;
        }
        /* writes: sorted, unique */
        const char *wk[8];
        size_t nw = rng_next(&rng) % 6, n_unique = 0;
        for (size_t i = 0; i < nw; i++)
            wk[i] = rkey(&rng);
        qsort(wk, nw, sizeof(wk[0]), cmp_str);
        range_write w[8];
        for (size_t i = 0; i < nw; i++)
            if (n_unique == 0 || strcmp(wk[i], (const char *)w[n_unique - 1].key) != 0)
                w[n_unique++] = (range_write){(const uint8_t *)wk[i], 3, (const uint8_t *)"x",
                                              1, false};
        range_span sp[6];
        size_t nd = rng_next(&rng) % 3, nr = rng_next(&rng) % 4;
        for (size_t i = 0; i < nd + nr; i++) {
            sp[i] = rspan(&rng);
            if (i < nd && sp[i].point)
                sp[i].point = false; /* delete spans are ranges */
        }
        bool got = has(e, &d, w, n_unique, sp, nd, sp + nd, nr);
        bool want = false, must = false;
        for (int i = 0; i < RANDOM_KEYS; i++) {
            if (!live[i] || !range_descriptor_contains(&d, (const uint8_t *)g_keys[i], 3))
                continue;
            want |= model_bounds(g_keys[i], w, n_unique, sp, nd + nr);
            must |= model_touches(g_keys[i], w, n_unique, sp, nd + nr);
        }
        CHECK(!must || got); /* never misses an intent on a key of the request */
        CHECK(got == want);  /* and seeks exactly the bounding span, clipped */
    }
}

static void test_random_memory(void **state)
{
    fixture *f = *state;
    random_cases(f->e);
}

static void test_random_rocksdb(void **state)
{
    fixture *f = *state;
    resolved_intents(f->e, "k2", RESOLVED_KEYS, 5); /* between k19 and k30 */
    random_cases(f->e);
}

/* ---- storage_compact_raw ---------------------------------------------------------- */

/* Compaction changes no answer: the resolved keys stay gone, a live intent
** stays; now and in the background (requests widen one pending span); the
** arguments are checked; the twin has nothing to do. */
static void compact_cases(storage_engine *e)
{
    const range_descriptor *d = &g_desc;
    range_span all[] = {OPEN("")};
    resolved_intents(e, "m", RESOLVED_KEYS, 5);
    intent_op(e, "q", 6, true);
    base_buf lo = {0}, hi = {0};
    range_span sp = S("m", "n");
    assert_int_equal(range__intent_span(&sp, &lo, &hi), RANGE_OK);
    assert_int_equal(storage_compact_raw(e, lo.data, lo.len, hi.data, hi.len, false), STORAGE_OK);
    range_span r_m[] = {S("m", "n")};
    assert_false(has(e, d, NULL, 0, NULL, 0, r_m, 1));
    assert_true(has(e, d, NULL, 0, NULL, 0, all, 1));

    /* background: two requests, one pending span; then idle */
    resolved_intents(e, "n", RESOLVED_KEYS, 5);
    resolved_intents(e, "p", RESOLVED_KEYS, 5);
    range_span sn = S("n", "o"), spp = S("p", "q");
    assert_int_equal(range__intent_span(&sn, &lo, &hi), RANGE_OK);
    assert_int_equal(storage_compact_raw(e, lo.data, lo.len, hi.data, hi.len, true), STORAGE_OK);
    assert_int_equal(range__intent_span(&spp, &lo, &hi), RANGE_OK);
    assert_int_equal(storage_compact_raw(e, lo.data, lo.len, hi.data, hi.len, true), STORAGE_OK);
    assert_true(storage_compact_wait(e, COMPACT_WAIT_MS));
    range_span r_np[] = {S("n", "q")};
    assert_false(has(e, d, NULL, 0, NULL, 0, r_np, 1));
    range_span r_q[] = {P("q")};
    assert_true(has(e, d, NULL, 0, NULL, 0, r_q, 1));
    /* the whole keyspace (open ends) */
    assert_int_equal(storage_compact_raw(e, NULL, 0, NULL, 0, false), STORAGE_OK);
    assert_true(has(e, d, NULL, 0, NULL, 0, all, 1));

    /* arguments: an empty range does nothing; a length without bytes is refused */
    assert_int_equal(storage_compact_raw(e, lo.data, lo.len, lo.data, 0, true), STORAGE_OK);
    assert_int_equal(storage_compact_raw(e, hi.data, hi.len, lo.data, lo.len, true), STORAGE_OK);
    assert_int_equal(storage_compact_raw(e, NULL, 3, NULL, 0, false), STORAGE_ERR_INVALID);
    assert_int_equal(storage_compact_raw(NULL, NULL, 0, NULL, 0, false), STORAGE_ERR_INVALID);
    assert_true(storage_compact_wait(e, COMPACT_WAIT_MS));
    base_buf_free(&lo);
    base_buf_free(&hi);
}

static void test_compact_memory(void **state)
{
    fixture *f = *state;
    compact_cases(f->e);
}

static void test_compact_rocksdb(void **state)
{
    fixture *f = *state;
    compact_cases(f->e);
}

/* A background compaction still pending at close is dropped; close joins
** the worker (ASan: nothing leaks, nothing used after free). */
static void test_compact_close_pending(void **state)
{
    fixture *f = *state;
    resolved_intents(f->e, "m", RESOLVED_KEYS, 5);
    for (int i = 0; i < 3; i++)
        assert_int_equal(storage_compact_raw(f->e, NULL, 0, NULL, 0, true), STORAGE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hand_memory, setup_memory, teardown),
        cmocka_unit_test_setup_teardown(test_hand_rocksdb, setup_rocksdb, teardown),
        cmocka_unit_test_setup_teardown(test_random_memory, setup_memory, teardown),
        cmocka_unit_test_setup_teardown(test_random_rocksdb, setup_rocksdb, teardown),
        cmocka_unit_test_setup_teardown(test_compact_memory, setup_memory, teardown),
        cmocka_unit_test_setup_teardown(test_compact_rocksdb, setup_rocksdb, teardown),
        cmocka_unit_test_setup_teardown(test_compact_close_pending, setup_rocksdb, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
