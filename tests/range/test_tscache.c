/*
** tests/range/test_tscache.c: the leaseholder's timestamp cache
** (range/tscache.c), a pure structure tested directly: overlapping spans,
** points inside spans, open ends, merging, eviction raising the low-water,
** the key-bytes bound, out-of-memory at every allocation in turn, and a
** randomized run against a brute-force model (seeded; the seed is printed
** on failure and MERIDIAN_SEED=N replays one).
**
** The model keeps every (span, timestamp) added since the last reset. The
** cache must answer at least the model's maximum over overlapping spans
** (safety) and, while it dropped nothing, exactly that (precision); after
** drops, at most max(model, low-water) (it invents nothing).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"
#include "range/eval_int.h"
#include "range/tscache_int.h"

#define RANDOM_SEEDS 40
#define RANDOM_OPS 3000
#define MODEL_MAX RANDOM_OPS
#define KEY_MAX 4

static uint64_t g_seed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "\n  %s:%d: %s\n  replay: MERIDIAN_SEED=%llu\n", __FILE__,     \
                    __LINE__, #cond, (unsigned long long)g_seed);                          \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

static hlc_timestamp T(int64_t wall) { return (hlc_timestamp){wall, 0}; }

static range_span P(const char *k)
{
    return (range_span){(const uint8_t *)k, strlen(k), NULL, 0, true};
}

/* [s, e); e NULL = +infinity */
static range_span S(const char *s, const char *e)
{
    return (range_span){(const uint8_t *)s, strlen(s), (const uint8_t *)e, e ? strlen(e) : 0,
                        false};
}

static int64_t max_of(const range__tscache *c, range_span sp)
{
    return range__tscache_max(c, &sp).wall_ns;
}

static void add(range__tscache *c, range_span sp, int64_t wall)
{
    range__tscache_add(c, &sp, T(wall));
    assert_true(range__tscache_check(c));
}

static size_t entries(const range__tscache *c)
{
    range__tscache_stats st;
    range__tscache_get_stats(c, &st);
    return st.entries;
}

static void test_overlaps(void **state)
{
    (void)state;
    range__tscache *c;
    assert_int_equal(range__tscache_new(0, 0, T(5), 1, &c), RANGE_OK);
    assert_int_equal(max_of(c, P("a")), 5);
    add(c, S("b", "d"), 10);
    assert_int_equal(max_of(c, P("a")), 5);
    assert_int_equal(max_of(c, P("b")), 10);
    assert_int_equal(max_of(c, P("c")), 10);
    assert_int_equal(max_of(c, P("d")), 5); /* end excluded */
    assert_int_equal(max_of(c, S("a", "b")), 5);
    assert_int_equal(max_of(c, S("a", "b\x01")), 10);
    assert_int_equal(max_of(c, S("c", "z")), 10);
    assert_int_equal(max_of(c, S("d", NULL)), 5);
    assert_int_equal(max_of(c, S("", NULL)), 10);
    /* overlapping higher on the right half, lower on the left */
    add(c, S("c", "f"), 20);
    add(c, S("a", "c"), 7);
    assert_int_equal(max_of(c, P("a")), 7);
    assert_int_equal(max_of(c, P("b")), 10); /* kept: 7 < 10 */
    assert_int_equal(max_of(c, P("c")), 20);
    assert_int_equal(max_of(c, P("e")), 20);
    assert_int_equal(max_of(c, P("f")), 5);
    assert_int_equal(max_of(c, S("a", "b")), 7);
    assert_int_equal(entries(c), 3); /* [a,b)@7 [b,c)@10 [c,f)@20 */
    /* at or below the low-water: nothing recorded */
    add(c, S("x", "y"), 5);
    assert_int_equal(entries(c), 3);
    /* reset: empty at the new low-water */
    range__tscache_reset(c, T(100));
    assert_int_equal(entries(c), 0);
    assert_int_equal(max_of(c, P("c")), 100);
    add(c, S("c", "a"), 200); /* empty span */
    assert_int_equal(entries(c), 0);
    range__tscache_free(c);
}

static void test_points_inside_spans(void **state)
{
    (void)state;
    range__tscache *c;
    assert_int_equal(range__tscache_new(0, 0, HLC_ZERO, 2, &c), RANGE_OK);
    add(c, S("a", "z"), 10);
    add(c, P("m"), 20);
    assert_int_equal(entries(c), 3);
    assert_int_equal(max_of(c, P("m")), 20);
    assert_int_equal(max_of(c, P("l")), 10);
    assert_int_equal(max_of(c, P("m\x01")), 10);
    assert_int_equal(max_of(c, S("a", "m")), 10);
    assert_int_equal(max_of(c, S("l", "n")), 20);
    assert_int_equal(max_of(c, S("m\x01", "z")), 10);
    /* the point again, lower: no change; a point already covered higher:
    ** no new segment */
    add(c, P("m"), 15);
    assert_int_equal(max_of(c, P("m")), 20);
    add(c, P("q"), 9);
    assert_int_equal(entries(c), 3);
    /* the span again above everything: one segment */
    add(c, S("a", "z"), 30);
    assert_int_equal(entries(c), 1);
    assert_int_equal(max_of(c, P("m")), 30);
    /* points at the edges, the empty key, a point past everything */
    add(c, P(""), 40);
    assert_int_equal(max_of(c, P("")), 40);
    assert_int_equal(max_of(c, P("\x01")), 0);
    assert_int_equal(max_of(c, S("", "a")), 40);
    add(c, P("z"), 50);
    assert_int_equal(max_of(c, P("z")), 50);
    assert_int_equal(max_of(c, S("y", "z")), 30);
    /* an open end over everything from "b" */
    add(c, S("b", NULL), 45);
    assert_int_equal(max_of(c, P("a")), 30);
    assert_int_equal(max_of(c, P("b")), 45);
    assert_int_equal(max_of(c, P("z")), 50);
    assert_int_equal(max_of(c, P("zzzz")), 45);
    assert_int_equal(max_of(c, S("", NULL)), 50);
    range__tscache_free(c);
}

static void test_eviction_raises_low_water(void **state)
{
    (void)state;
    range__tscache *c;
    assert_int_equal(range__tscache_new(8, 0, T(0), 3, &c), RANGE_OK);
    char keys[20][4];
    for (int i = 0; i < 20; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%02d", i);
        add(c, P(keys[i]), i + 1); /* far apart: no merging */
        assert_true(entries(c) <= 8);
    }
    range__tscache_stats st;
    range__tscache_get_stats(c, &st);
    assert_true(st.evictions >= 1);
    int64_t lw = range__tscache_low_water(c).wall_ns;
    assert_true(lw >= 1 && lw < 20);
    for (int i = 0; i < 20; i++) {
        int64_t got = max_of(c, P(keys[i]));
        /* safe always; exact above the low-water; the low-water below it */
        assert_true(got >= i + 1);
        assert_int_equal(got, i + 1 > lw ? i + 1 : lw);
    }
    /* the low-water is the highest dropped timestamp: some key has it */
    assert_int_equal(max_of(c, P(keys[lw - 1])), lw);
    range__tscache_free(c);

    /* the key-bytes bound: two points of 79 bytes fit in 200, a third does not */
    assert_int_equal(range__tscache_new(0, 200, T(0), 4, &c), RANGE_OK);
    char big[40];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (int i = 0; i < 10; i++) {
        big[0] = (char)('a' + i);
        add(c, P(big), 100 + i);
        range__tscache_get_stats(c, &st);
        assert_true(st.key_bytes <= 200);
        assert_int_equal(max_of(c, P(big)), 100 + i); /* the newest stays */
    }
    range__tscache_free(c);
}

/* ---- the model ------------------------------------------------------------------ */

typedef struct model {
    uint8_t start[MODEL_MAX][KEY_MAX], end[MODEL_MAX][KEY_MAX];
    range_span spans[MODEL_MAX];
    int64_t ts[MODEL_MAX];
    size_t n;
    int64_t low_water;
} model;

static int64_t model_max(const model *m, const range_span *q)
{
    int64_t best = m->low_water;
    for (size_t i = 0; i < m->n; i++)
        if (m->ts[i] > best && range__spans_overlap(&m->spans[i], q))
            best = m->ts[i];
    return best;
}

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A key of 0..KEY_MAX-1 bytes over a small alphabet (0x00 included, so
** k and k\0 both occur). */
static size_t random_key(uint64_t *rng, uint8_t *out)
{
    static const uint8_t alphabet[] = {0x00, 'a', 'b', 'c'};
    size_t len = (size_t)(rng_next(rng) % KEY_MAX);
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[rng_next(rng) % sizeof(alphabet)];
    return len;
}

/* A non-empty random span into sp, its bytes in sbuf/ebuf. */
static void random_span(uint64_t *rng, uint8_t *sbuf, uint8_t *ebuf, range_span *sp)
{
    for (;;) {
        memset(sp, 0, sizeof(*sp));
        size_t slen = random_key(rng, sbuf);
        sp->start = sbuf;
        sp->start_len = slen;
        uint64_t kind = rng_next(rng) % 8;
        if (kind < 3) {
            sp->point = true;
            return;
        }
        if (kind == 3) {
            return; /* [start, +infinity) */
        }
        size_t elen = random_key(rng, ebuf);
        if (elen == 0)
            continue; /* an empty end means +infinity: covered above */
        sp->end = ebuf;
        sp->end_len = elen;
        if (range__key_cmp(sbuf, slen, ebuf, elen) < 0)
            return;
    }
}

static void run_random(uint64_t seed, size_t entries_max)
{
    g_seed = seed;
    uint64_t rng = seed;
    model *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    range__tscache *c;
    assert_int_equal(range__tscache_new(entries_max, 0, T(0), seed, &c), RANGE_OK);
    for (int op = 0; op < RANDOM_OPS; op++) {
        uint64_t what = rng_next(&rng) % 100;
        if (what < 2) {
            int64_t lw = (int64_t)(rng_next(&rng) % 500);
            range__tscache_reset(c, T(lw));
            m->n = 0;
            m->low_water = lw;
        } else if (what < 60 && m->n < MODEL_MAX) {
            size_t i = m->n;
            random_span(&rng, m->start[i], m->end[i], &m->spans[i]);
            m->ts[i] = 1 + (int64_t)(rng_next(&rng) % 1000);
            range__tscache_add(c, &m->spans[i], T(m->ts[i]));
            m->n++;
            CHECK(range__tscache_check(c));
        } else {
            uint8_t sb[KEY_MAX], eb[KEY_MAX];
            range_span q;
            random_span(&rng, sb, eb, &q);
            int64_t want = model_max(m, &q);
            int64_t got = range__tscache_max(c, &q).wall_ns;
            int64_t lw = range__tscache_low_water(c).wall_ns;
            range__tscache_stats st;
            range__tscache_get_stats(c, &st);
            CHECK(got >= want);         /* safe */
            CHECK(got <= (want > lw ? want : lw)); /* invents nothing */
            if (st.evictions == 0)
                CHECK(got == want);     /* precise while nothing was dropped */
        }
    }
    range__tscache_free(c);
    free(m);
}

static uint64_t first_seed(void)
{
    const char *env = getenv("MERIDIAN_SEED");
    return env != NULL ? strtoull(env, NULL, 10) : 1;
}

static void test_random_against_model(void **state)
{
    (void)state;
    if (getenv("MERIDIAN_SEED") != NULL) {
        run_random(first_seed(), 0);
        run_random(first_seed(), 16);
        return;
    }
    for (uint64_t s = 1; s <= RANDOM_SEEDS; s++) {
        run_random(s, 0);   /* never full: exact */
        run_random(s, 16);  /* full all the time: evictions */
    }
}

/* Out of memory at every allocation in turn (and every one after it): the
** cache stays valid and safe, and says it raised the low-water. */
static void test_out_of_memory(void **state)
{
    (void)state;
    uint64_t rng = 99;
    g_seed = 99;
    model *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    for (size_t i = 0; i < 200; i++) {
        random_span(&rng, m->start[i], m->end[i], &m->spans[i]);
        m->ts[i] = 1 + (int64_t)(rng_next(&rng) % 1000);
    }
    m->n = 200;
    bool saw_nomem = false;
    for (long fail_at = 0; fail_at < 2000; fail_at++) {
        range__tscache *c;
        base_alloc_fail_after(-1);
        assert_int_equal(range__tscache_new(0, 0, HLC_ZERO, 7, &c), RANGE_OK);
        base_alloc_fail_after(fail_at);
        for (size_t i = 0; i < m->n; i++)
            range__tscache_add(c, &m->spans[i], T(m->ts[i]));
        base_alloc_fail_after(-1);
        CHECK(range__tscache_check(c));
        range__tscache_stats st;
        range__tscache_get_stats(c, &st);
        for (size_t i = 0; i < m->n; i++)
            CHECK(range__tscache_max(c, &m->spans[i]).wall_ns >= m->ts[i]);
        range__tscache_free(c);
        if (st.nomem == 0)
            break; /* every allocation succeeded: all points covered */
        saw_nomem = true;
    }
    assert_true(saw_nomem);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overlaps),
        cmocka_unit_test(test_points_inside_spans),
        cmocka_unit_test(test_eviction_raises_low_water),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
