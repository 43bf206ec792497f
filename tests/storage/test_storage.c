/*
** Tests for storage/: one cmocka suite run against BOTH engines (the
** in-memory twin, then RocksDB in a fresh mkdtemp directory per test), plus
** RocksDB-only tests (restart, corrupt store, kill -9 crash).
**
** Randomized tests print their seed; rerun one with MERIDIAN_SEED=<n>.
** The crash test re-executes this binary as "--crash-child <dir> <round>"
** so that the child starts clean (no forked RocksDB threads).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <rocksdb/c.h>

#include "storage/storage.h"

#define KEY(s) (const uint8_t *)(s), (sizeof(s) - 1)
#define VAL(s) (const uint8_t *)(s), (sizeof(s) - 1)

static hlc_timestamp T(int64_t wall) {
    hlc_timestamp t = {wall, 0};
    return t;
}

/* ---- fixture --------------------------------------------------------------- */
typedef struct fixture {
    bool rocks;
    char dir[64];
    storage_engine *e;
} fixture;

static bool g_rocks; /* which engine the current group runs on */

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir) {
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int fixture_open(fixture *f) {
    storage_options o = {.dir = f->rocks ? f->dir : NULL, .create_if_missing = true};
    return storage_open(&o, &f->e);
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL) return -1;
    f->rocks = g_rocks;
    if (f->rocks) {
        strcpy(f->dir, "/tmp/meridian-storage-XXXXXX");
        if (mkdtemp(f->dir) == NULL) return -1;
    }
    if (fixture_open(f) != STORAGE_OK) {
        if (f->rocks) rm_rf(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    storage_close(f->e);
    if (f->rocks) rm_rf(f->dir);
    free(f);
    return 0;
}

static void reopen(fixture *f) {
    storage_close(f->e);
    f->e = NULL;
    assert_int_equal(fixture_open(f), STORAGE_OK);
}

static unsigned test_seed(void) {
    const char *s = getenv("MERIDIAN_SEED");
    unsigned seed = s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)getpid() ^ (unsigned)time(NULL);
    print_message("seed %u (rerun with MERIDIAN_SEED=%u)\n", seed, seed);
    return seed;
}

/* ---- small helpers ------------------------------------------------------------ */
static void put(storage_engine *e, const uint8_t *k, size_t kl, int64_t ts, const char *v) {
    storage_batch *b = storage_batch_new();
    assert_non_null(b);
    assert_int_equal(storage_batch_put(b, k, kl, T(ts), (const uint8_t *)v, strlen(v)), 0);
    assert_int_equal(storage_write(e, b, false), 0);
    storage_batch_free(b);
}

static void del(storage_engine *e, const uint8_t *k, size_t kl, int64_t ts) {
    storage_batch *b = storage_batch_new();
    assert_non_null(b);
    assert_int_equal(storage_batch_delete(b, k, kl, T(ts)), 0);
    assert_int_equal(storage_write(e, b, false), 0);
    storage_batch_free(b);
}

/* Expect get(k, ts) to see value v at version vts; v NULL = not found,
** "" with tomb = tombstone. */
static void expect_get(storage_engine *e, const storage_snapshot *s, const uint8_t *k, size_t kl,
                       int64_t ts, const char *v, int64_t vts, bool tomb) {
    storage_value out;
    int rc = storage_get(e, s, k, kl, T(ts), &out);
    if (v == NULL && !tomb) {
        assert_int_equal(rc, STORAGE_NOT_FOUND);
    } else {
        assert_int_equal(rc, STORAGE_OK);
        assert_int_equal(out.tombstone, tomb);
        assert_int_equal(out.ts.wall_ns, vts);
        if (!tomb) {
            assert_int_equal(out.bytes.len, strlen(v));
            assert_memory_equal(out.bytes.data, v, strlen(v));
        }
    }
    storage_value_free(&out);
}

/* Collect an iterator into "key@ts=value;" text (key bytes printed as hex
** when not printable), for compact expectations. */
static void collect(storage_engine *e, const storage_snapshot *s, const storage_iter_options *o,
                    char *out, size_t out_size) {
    storage_iter *it = NULL;
    assert_int_equal(storage_iter_open(e, s, o, &it), 0);
    size_t n = 0;
    out[0] = 0;
    for (int guard = 0; guard < 100000; guard++) {
        const uint8_t *k, *v;
        size_t kl, vl;
        hlc_timestamp ts;
        bool tomb;
        int rc = storage_iter_next(it, &k, &kl, &ts, &v, &vl, &tomb);
        assert_true(rc >= 0);
        if (rc == 0) break;
        for (size_t i = 0; i < kl; i++)
            n += (size_t)snprintf(out + n, out_size - n, (k[i] >= 'a' && k[i] <= 'z') ? "%c" : "<%02x>", k[i]);
        n += (size_t)snprintf(out + n, out_size - n, "@%lld=", (long long)ts.wall_ns);
        if (tomb)
            n += (size_t)snprintf(out + n, out_size - n, "X;");
        else
            n += (size_t)snprintf(out + n, out_size - n, "%.*s;", (int)vl, (const char *)v);
        assert_true(n < out_size);
    }
    /* further calls after the end keep returning 0 */
    assert_int_equal(storage_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL), 0);
    storage_iter_close(it);
}

/* ---- tests: reads at timestamps --------------------------------------------------- */
static void test_get_at_timestamps(void **state) {
    fixture *f = *state;
    storage_engine *e = f->e;
    put(e, KEY("a"), 10, "v10");
    put(e, KEY("a"), 20, "v20");
    del(e, KEY("a"), 30);
    put(e, KEY("a"), 40, "v40");
    /* neighbours that stress the escaping: prefixes and zero bytes */
    put(e, KEY("a\0"), 15, "z15");
    put(e, KEY("a\0b"), 15, "zb15");
    put(e, KEY("ab"), 15, "ab15");
    put(e, KEY("\0"), 5, "zero");

    expect_get(e, NULL, KEY("a"), 5, NULL, 0, false);
    expect_get(e, NULL, KEY("a"), 10, "v10", 10, false);
    expect_get(e, NULL, KEY("a"), 15, "v10", 10, false);
    expect_get(e, NULL, KEY("a"), 20, "v20", 20, false);
    expect_get(e, NULL, KEY("a"), 29, "v20", 20, false);
    expect_get(e, NULL, KEY("a"), 30, "", 30, true);
    expect_get(e, NULL, KEY("a"), 39, "", 30, true);
    expect_get(e, NULL, KEY("a"), 40, "v40", 40, false);
    expect_get(e, NULL, KEY("a"), 1000, "v40", 40, false);
    expect_get(e, NULL, KEY("a\0"), 100, "z15", 15, false);
    expect_get(e, NULL, KEY("a\0"), 14, NULL, 0, false);
    expect_get(e, NULL, KEY("a\0b"), 15, "zb15", 15, false);
    expect_get(e, NULL, KEY("\0"), 5, "zero", 5, false);
    expect_get(e, NULL, KEY("b"), 100, NULL, 0, false);
    expect_get(e, NULL, KEY("\0\0"), 100, NULL, 0, false);

    storage_value v;
    assert_int_equal(storage_get_latest(e, NULL, KEY("a"), &v), STORAGE_OK);
    assert_int_equal(v.ts.wall_ns, 40);
    storage_value_free(&v);
    del(e, KEY("a"), 50);
    assert_int_equal(storage_get_latest(e, NULL, KEY("a"), &v), STORAGE_OK);
    assert_true(v.tombstone);
    assert_int_equal(v.ts.wall_ns, 50);
    storage_value_free(&v);
    assert_int_equal(storage_get_latest(e, NULL, KEY("zz"), &v), STORAGE_NOT_FOUND);
    storage_value_free(&v);

    /* overwriting the same (key, ts) replaces the version */
    put(e, KEY("a"), 20, "again");
    expect_get(e, NULL, KEY("a"), 25, "again", 20, false);
    /* empty value is a value, not a tombstone */
    put(e, KEY("empty"), 1, "");
    expect_get(e, NULL, KEY("empty"), 1, "", 1, false);
    /* logical component orders versions within one wall time */
    storage_batch *b = storage_batch_new();
    hlc_timestamp l1 = {100, 1}, l2 = {100, 2};
    assert_int_equal(storage_batch_put(b, KEY("l"), l1, VAL("one")), 0);
    assert_int_equal(storage_batch_put(b, KEY("l"), l2, VAL("two")), 0);
    assert_int_equal(storage_write(e, b, true), 0);
    storage_batch_free(b);
    hlc_timestamp r = {100, 1};
    assert_int_equal(storage_get(e, NULL, KEY("l"), r, &v), STORAGE_OK);
    assert_memory_equal(v.bytes.data, "one", 3);
    storage_value_free(&v);
    /* timestamps at the extremes */
    put(e, KEY("x"), 0, "zero-ts");
    expect_get(e, NULL, KEY("x"), 0, "zero-ts", 0, false);
    assert_int_equal(storage_get(e, NULL, KEY("x"), HLC_MAX, &v), STORAGE_OK);
    storage_value_free(&v);
}

static void test_iter_at_ts(void **state) {
    fixture *f = *state;
    storage_engine *e = f->e;
    put(e, KEY("a"), 10, "a10");
    put(e, KEY("a"), 30, "a30");
    put(e, KEY("b"), 10, "b10");
    del(e, KEY("b"), 20);
    put(e, KEY("c"), 25, "c25");
    put(e, KEY("d"), 5, "d5");
    put(e, KEY("d"), 15, "d15");
    del(e, KEY("e"), 5);
    put(e, KEY("e\0"), 5, "ez5");
    char buf[1024];

    storage_iter_options o = {.ts = T(20), .mode = STORAGE_ITER_AT_TS};
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "a@10=a10;d@15=d15;e<00>@5=ez5;");
    o.ts = T(100);
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "a@30=a30;c@25=c25;d@15=d15;e<00>@5=ez5;");
    o.ts = T(10);
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "a@10=a10;b@10=b10;d@5=d5;e<00>@5=ez5;");
    o.ts = T(1);
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "");

    /* reverse */
    o.ts = T(20);
    o.reverse = true;
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "e<00>@5=ez5;d@15=d15;a@10=a10;");
    o.ts = T(100);
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "e<00>@5=ez5;d@15=d15;c@25=c25;a@30=a30;");

    /* bounds: [b, e) */
    o.start = (const uint8_t *)"b";
    o.start_len = 1;
    o.end = (const uint8_t *)"e";
    o.end_len = 1;
    o.reverse = false;
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "c@25=c25;d@15=d15;");
    o.reverse = true;
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "d@15=d15;c@25=c25;");
    /* [e, e\0\0): e is deleted, e\0 is in */
    o.start = (const uint8_t *)"e";
    o.end = (const uint8_t *)"e\0\0";
    o.end_len = 3;
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "e<00>@5=ez5;");
    o.reverse = false;
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "e<00>@5=ez5;");
    /* [a\0, c\0) */
    o.start = (const uint8_t *)"a\0";
    o.start_len = 2;
    o.end = (const uint8_t *)"c\0";
    o.end_len = 2;
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "c@25=c25;");
    /* empty range and empty end */
    o.end = (const uint8_t *)"";
    o.end_len = 0;
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "");
    o.reverse = true;
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "");

    /* ALL_VERSIONS + reverse is refused */
    storage_iter *it = NULL;
    o.mode = STORAGE_ITER_ALL_VERSIONS;
    assert_int_equal(storage_iter_open(e, NULL, &o, &it), STORAGE_ERR_INVALID);
    assert_null(it);
}

static void test_iter_all_versions(void **state) {
    fixture *f = *state;
    storage_engine *e = f->e;
    put(e, KEY("b"), 10, "b10");
    del(e, KEY("b"), 20);
    put(e, KEY("b"), 30, "b30");
    put(e, KEY("a"), 5, "a5");
    put(e, KEY("a\0"), 7, "az7");
    put(e, KEY("c"), 1, "c1");
    char buf[1024];
    storage_iter_options o = {.mode = STORAGE_ITER_ALL_VERSIONS, .ts = T(1)};
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "a@5=a5;a<00>@7=az7;b@30=b30;b@20=X;b@10=b10;c@1=c1;");
    o.start = (const uint8_t *)"a\0";
    o.start_len = 2;
    o.end = (const uint8_t *)"c";
    o.end_len = 1;
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "a<00>@7=az7;b@30=b30;b@20=X;b@10=b10;");
}

/* ---- snapshots ---------------------------------------------------------------------- */
static void test_snapshot_isolation(void **state) {
    fixture *f = *state;
    storage_engine *e = f->e;
    put(e, KEY("a"), 10, "old");
    put(e, KEY("b"), 10, "old");
    storage_snapshot *s = NULL;
    assert_int_equal(storage_snapshot_new(e, &s), 0);
    storage_iter_options o = {.ts = T(100), .mode = STORAGE_ITER_AT_TS};
    storage_iter *it = NULL;
    assert_int_equal(storage_iter_open(e, NULL, &o, &it), 0); /* implicit snapshot */

    /* write a lot after the snapshot: new versions, overwrites, range delete */
    put(e, KEY("a"), 10, "overwritten");
    put(e, KEY("a"), 20, "new");
    put(e, KEY("c"), 5, "new");
    storage_batch *b = storage_batch_new();
    assert_int_equal(storage_batch_delete_range(b, KEY("b"), KEY("bb")), 0);
    for (int i = 0; i < 300; i++) { /* enough churn to trigger internal purges */
        char k[16];
        int n = snprintf(k, sizeof k, "k%03d", i);
        assert_int_equal(storage_batch_put(b, (uint8_t *)k, (size_t)n, T(1), VAL("x")), 0);
    }
    assert_int_equal(storage_write(e, b, false), 0);
    storage_batch_clear(b);
    assert_int_equal(storage_batch_delete_range(b, KEY("k"), KEY("l")), 0);
    assert_int_equal(storage_write(e, b, false), 0);
    storage_batch_free(b);

    expect_get(e, s, KEY("a"), 100, "old", 10, false);
    expect_get(e, s, KEY("b"), 100, "old", 10, false);
    expect_get(e, s, KEY("c"), 100, NULL, 0, false);
    expect_get(e, NULL, KEY("a"), 100, "new", 20, false);
    expect_get(e, NULL, KEY("a"), 15, "overwritten", 10, false);
    expect_get(e, NULL, KEY("b"), 100, NULL, 0, false);
    char buf[1024];
    collect(e, s, &o, buf, sizeof buf);
    assert_string_equal(buf, "a@10=old;b@10=old;");
    /* the iterator opened before the writes sees the old state too */
    const uint8_t *k;
    size_t kl;
    int n = 0;
    while (storage_iter_next(it, &k, &kl, NULL, NULL, NULL, NULL) == 1) n++;
    assert_int_equal(n, 2);
    storage_iter_close(it);
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "a@20=new;c@5=new;");
    storage_snapshot_release(e, s);
}

/* ---- batches ----------------------------------------------------------------------- */
static void test_batch_atomic_and_ordered(void **state) {
    fixture *f = *state;
    storage_engine *e = f->e;
    storage_batch *b = storage_batch_new();
    assert_int_equal(storage_batch_count(b), 0);
    for (int i = 0; i < 100; i++) {
        char k[16];
        int n = snprintf(k, sizeof k, "k%03d", i);
        assert_int_equal(storage_batch_put(b, (uint8_t *)k, (size_t)n, T(1), VAL("v")), 0);
    }
    assert_int_equal(storage_batch_put_raw(b, KEY("applied"), VAL("7")), 0);
    assert_int_equal(storage_batch_count(b), 101);

    /* fault injection at every allocation: either all or nothing visible */
    int attempts = 0;
    for (long n = 0; n < 100000; n++) {
        base_alloc_fail_after(n);
        int rc = storage_write(e, b, false);
        base_alloc_fail_after(-1);
        attempts++;
        if (rc == STORAGE_OK) break;
        assert_int_equal(rc, STORAGE_ERR_NOMEM);
        expect_get(e, NULL, KEY("k000"), 1, NULL, 0, false);
        expect_get(e, NULL, KEY("k099"), 1, NULL, 0, false);
        base_buf raw = {0};
        assert_int_equal(storage_get_raw(e, KEY("applied"), &raw), STORAGE_NOT_FOUND);
        base_buf_free(&raw);
    }
    assert_true(attempts >= 1);
    expect_get(e, NULL, KEY("k000"), 1, "v", 1, false);
    expect_get(e, NULL, KEY("k099"), 1, "v", 1, false);

    /* ops apply in order: put then delete_range drops it, a later put stays */
    storage_batch_clear(b);
    assert_int_equal(storage_batch_count(b), 0);
    assert_int_equal(storage_batch_put(b, KEY("p"), T(1), VAL("first")), 0);
    assert_int_equal(storage_batch_put(b, KEY("q"), T(1), VAL("gone")), 0);
    assert_int_equal(storage_batch_delete_range(b, KEY("q"), KEY("r")), 0);
    assert_int_equal(storage_batch_put(b, KEY("p"), T(1), VAL("second")), 0);
    assert_int_equal(storage_batch_put(b, KEY("q"), T(2), VAL("after")), 0);
    assert_int_equal(storage_write(e, b, true), 0);
    expect_get(e, NULL, KEY("p"), 1, "second", 1, false);
    expect_get(e, NULL, KEY("q"), 1, NULL, 0, false);
    expect_get(e, NULL, KEY("q"), 2, "after", 2, false);
    /* the batch is not consumed: writing it again is idempotent here */
    assert_int_equal(storage_write(e, b, false), 0);
    expect_get(e, NULL, KEY("q"), 2, "after", 2, false);
    /* an empty batch is fine */
    storage_batch_clear(b);
    assert_int_equal(storage_write(e, b, true), 0);
    storage_batch_free(b);
}

typedef struct pair_ctx {
    storage_engine *e;
    int rounds;
    int bad;
} pair_ctx;

static void *pair_writer(void *arg) {
    pair_ctx *c = arg;
    storage_batch *b = storage_batch_new();
    for (int i = 1; i <= c->rounds && b; i++) {
        char v[16];
        int n = snprintf(v, sizeof v, "%d", i);
        storage_batch_clear(b);
        storage_batch_put(b, KEY("pair/a"), T(i), (uint8_t *)v, (size_t)n);
        storage_batch_put(b, KEY("pair/b"), T(i), (uint8_t *)v, (size_t)n);
        if (i > 1) storage_batch_delete(b, KEY("pair/c"), T(i - 1));
        storage_batch_put(b, KEY("pair/c"), T(i), (uint8_t *)v, (size_t)n);
        if (storage_write(c->e, b, false) != 0) c->bad++;
    }
    storage_batch_free(b);
    return NULL;
}

/* Readers scan while a writer commits batches: every scan sees whole
** batches only (a, b, c carry the same value). */
static void test_concurrent_batches(void **state) {
    fixture *f = *state;
    pair_ctx c = {f->e, 400, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, pair_writer, &c), 0);
    int scans = 0;
    for (int r = 0; r < 300; r++) {
        storage_iter_options o = {.ts = HLC_MAX, .mode = STORAGE_ITER_AT_TS,
                                  .reverse = (r & 1) != 0};
        storage_iter *it = NULL;
        assert_int_equal(storage_iter_open(f->e, NULL, &o, &it), 0);
        char vals[3][16];
        int n = 0;
        const uint8_t *v;
        size_t vl;
        while (n < 3 && storage_iter_next(it, NULL, NULL, NULL, &v, &vl, NULL) == 1) {
            snprintf(vals[n], sizeof vals[n], "%.*s", (int)vl, (const char *)v);
            n++;
        }
        storage_iter_close(it);
        if (n == 0) continue;
        assert_int_equal(n, 3);
        assert_string_equal(vals[0], vals[1]);
        assert_string_equal(vals[1], vals[2]);
        scans++;
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(c.bad, 0);
    expect_get(f->e, NULL, KEY("pair/c"), 400, "400", 400, false);
    expect_get(f->e, NULL, KEY("pair/c"), 398, "", 398, true);
    (void)scans;
}

/* ---- delete_range, raw, limits --------------------------------------------------- */
static void test_delete_range(void **state) {
    fixture *f = *state;
    storage_engine *e = f->e;
    put(e, KEY("a"), 1, "a");
    put(e, KEY("b"), 1, "b1");
    put(e, KEY("b"), 2, "b2");
    put(e, KEY("b\0"), 1, "bz");
    put(e, KEY("c"), 1, "c");
    put(e, KEY("d"), 1, "d");
    storage_batch *b = storage_batch_new();
    assert_int_equal(storage_batch_delete_range(b, KEY("b"), KEY("c")), 0);
    assert_int_equal(storage_write(e, b, false), 0);
    char buf[512];
    storage_iter_options o = {.mode = STORAGE_ITER_ALL_VERSIONS};
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "a@1=a;c@1=c;d@1=d;");
    /* open-ended: [c, end) */
    storage_batch_clear(b);
    assert_int_equal(storage_batch_delete_range(b, KEY("c"), NULL, 0), 0);
    assert_int_equal(storage_write(e, b, false), 0);
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "a@1=a;");
    /* from the beginning */
    put(e, KEY("\0"), 1, "z");
    storage_batch_clear(b);
    assert_int_equal(storage_batch_delete_range(b, NULL, 0, KEY("a\0")), 0);
    assert_int_equal(storage_write(e, b, false), 0);
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "");
    storage_batch_free(b);
}

static void test_raw_keyspace(void **state) {
    fixture *f = *state;
    storage_engine *e = f->e;
    base_buf out = {0};
    assert_int_equal(storage_get_raw(e, KEY("node-id"), &out), STORAGE_NOT_FOUND);
    storage_batch *b = storage_batch_new();
    assert_int_equal(storage_batch_put_raw(b, KEY("node-id"), VAL("n1")), 0);
    assert_int_equal(storage_batch_put_raw(b, KEY("applied\0"), VAL("")), 0);
    assert_int_equal(storage_write(e, b, true), 0);
    assert_int_equal(storage_get_raw(e, KEY("node-id"), &out), STORAGE_OK);
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.data, "n1", 2);
    assert_int_equal(storage_get_raw(e, KEY("applied\0"), &out), STORAGE_OK);
    assert_int_equal(out.len, 0);
    assert_int_equal(storage_get_raw(e, KEY("applied"), &out), STORAGE_NOT_FOUND);
    /* seek: the first raw key in [start, end) */
    base_buf k = {0};
    assert_int_equal(storage_seek_raw(e, NULL, 0, NULL, 0, &k, &out), STORAGE_OK);
    assert_int_equal(k.len, 8);
    assert_memory_equal(k.data, "applied\0", 8);
    assert_int_equal(storage_seek_raw(e, KEY("applied\1"), NULL, 0, &k, &out), STORAGE_OK);
    assert_memory_equal(k.data, "node-id", 7);
    assert_memory_equal(out.data, "n1", 2);
    assert_int_equal(storage_seek_raw(e, KEY("applied\1"), KEY("node-id"), &k, NULL),
                     STORAGE_NOT_FOUND);
    assert_int_equal(storage_seek_raw(e, KEY("node-id\0"), NULL, 0, &k, NULL), STORAGE_NOT_FOUND);
    base_buf_free(&k);
    /* raw keys are invisible to MVCC reads and range deletes */
    expect_get(e, NULL, KEY("node-id"), 100, NULL, 0, false);
    char buf[256];
    storage_iter_options o = {.mode = STORAGE_ITER_ALL_VERSIONS};
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "");
    storage_batch_clear(b);
    assert_int_equal(storage_batch_delete_range(b, NULL, 0, NULL, 0), 0);
    put(e, KEY("node-id"), 1, "mvcc");
    assert_int_equal(storage_write(e, b, false), 0);
    assert_int_equal(storage_get_raw(e, KEY("node-id"), &out), STORAGE_OK);
    assert_memory_equal(out.data, "n1", 2);
    expect_get(e, NULL, KEY("node-id"), 100, NULL, 0, false);
    /* overwrite and delete */
    storage_batch_clear(b);
    assert_int_equal(storage_batch_put_raw(b, KEY("node-id"), VAL("n2")), 0);
    assert_int_equal(storage_write(e, b, false), 0);
    assert_int_equal(storage_get_raw(e, KEY("node-id"), &out), STORAGE_OK);
    assert_memory_equal(out.data, "n2", 2);
    storage_batch_clear(b);
    assert_int_equal(storage_batch_delete_raw(b, KEY("node-id")), 0);
    assert_int_equal(storage_write(e, b, false), 0);
    assert_int_equal(storage_get_raw(e, KEY("node-id"), &out), STORAGE_NOT_FOUND);
    storage_batch_free(b);
    base_buf_free(&out);
}

static void test_limits(void **state) {
    fixture *f = *state;
    storage_engine *e = f->e;
    storage_batch *b = storage_batch_new();
    size_t big = STORAGE_KEY_SIZE_MAX + 1;
    uint8_t *k = calloc(1, big);
    assert_non_null(k);
    memset(k, 0, big); /* all zero bytes: the worst case for escaping */
    uint8_t one = 1;
    assert_int_equal(storage_batch_put(b, k, big, T(1), &one, 1), STORAGE_ERR_INVALID);
    assert_int_equal(storage_batch_delete(b, k, big, T(1)), STORAGE_ERR_INVALID);
    assert_int_equal(storage_batch_put_raw(b, k, big, &one, 1), STORAGE_ERR_INVALID);
    assert_int_equal(storage_batch_delete_raw(b, k, big), STORAGE_ERR_INVALID);
    assert_int_equal(storage_batch_delete_range(b, k, big, NULL, 0), STORAGE_ERR_INVALID);
    assert_int_equal(storage_batch_put(b, k, 0, T(1), &one, 1), STORAGE_ERR_INVALID);
    assert_int_equal(storage_batch_put(b, NULL, 1, T(1), &one, 1), STORAGE_ERR_INVALID);
    /* the value length is checked before anything is read */
    assert_int_equal(storage_batch_put(b, k, 1, T(1), &one, (size_t)STORAGE_VALUE_SIZE_MAX + 1),
                     STORAGE_ERR_INVALID);
    assert_int_equal(storage_batch_put_raw(b, k, 1, &one, (size_t)STORAGE_VALUE_SIZE_MAX + 1),
                     STORAGE_ERR_INVALID);
    assert_int_equal(storage_batch_count(b), 0);
    storage_value v;
    assert_int_equal(storage_get(e, NULL, k, big, T(1), &v), STORAGE_ERR_INVALID);
    assert_int_equal(storage_get(e, NULL, k, 0, T(1), &v), STORAGE_ERR_INVALID);
    base_buf raw = {0};
    assert_int_equal(storage_get_raw(e, k, big, &raw), STORAGE_ERR_INVALID);
    storage_iter *it = NULL;
    storage_iter_options o = {.start = k, .start_len = big};
    assert_int_equal(storage_iter_open(e, NULL, &o, &it), STORAGE_ERR_INVALID);

    /* the largest key works, zero bytes and all */
    assert_int_equal(storage_batch_put(b, k, big - 1, T(1), &one, 1), 0);
    assert_int_equal(storage_write(e, b, false), 0);
    assert_int_equal(storage_get(e, NULL, k, big - 1, T(1), &v), STORAGE_OK);
    assert_int_equal(v.bytes.len, 1);
    storage_value_free(&v);
    assert_int_equal(storage_get(e, NULL, k, big - 2, T(1), &v), STORAGE_NOT_FOUND);
    storage_batch_free(b);
    free(k);
}

static void test_approximate_size(void **state) {
    fixture *f = *state;
    uint64_t size = 99;
    assert_int_equal(storage_approximate_size(f->e, NULL, 0, NULL, 0, &size), 0);
    char v[200];
    memset(v, 'v', sizeof v - 1);
    v[sizeof v - 1] = 0;
    for (int i = 0; i < 50; i++) {
        char k[16];
        int n = snprintf(k, sizeof k, "s%03d", i);
        put(f->e, (uint8_t *)k, (size_t)n, 1, v);
    }
    assert_int_equal(storage_flush(f->e), 0); /* RocksDB counts flushed files only */
    assert_int_equal(storage_approximate_size(f->e, KEY("s"), KEY("t"), &size), 0);
    assert_true(size >= (f->rocks ? 1000 : 50 * 199)); /* RocksDB: compressed */
    uint64_t all = 0;
    assert_int_equal(storage_approximate_size(f->e, NULL, 0, NULL, 0, &all), 0);
    assert_true(all >= size);
    assert_int_equal(storage_approximate_size(f->e, KEY("a"), KEY("b"), &size), 0);
    assert_int_equal(size, 0);
    base_buf st = {0};
    assert_int_equal(storage_stats(f->e, &st), 0);
    assert_true(st.len > 0);
    base_buf_free(&st);
}

/* Data written a moment ago counts: RocksDB adds the memtables' entries to
** the table files' estimate (a memtable-only iterator), without a flush. */
static void test_approximate_size_memtable(void **state) {
    fixture *f = *state;
    char v[200];
    memset(v, 'v', sizeof v - 1);
    v[sizeof v - 1] = 0;
    for (int i = 0; i < 50; i++) {
        char k[16];
        int n = snprintf(k, sizeof k, "m%03d", i);
        put(f->e, (uint8_t *)k, (size_t)n, 1, v);
        put(f->e, (uint8_t *)k, (size_t)n, 2, v); /* every version counts */
    }
    uint64_t size = 0, other = 99;
    assert_int_equal(storage_approximate_size(f->e, KEY("m"), KEY("n"), &size), 0);
    assert_true(size >= 100 * 199);
    assert_true(size <= 100 * (199 + 64)); /* keys, timestamps, tags: not much more */
    assert_int_equal(storage_approximate_size(f->e, KEY("m010"), KEY("m020"), &other), 0);
    assert_true(other >= 20 * 199 && other < size / 2);
    assert_int_equal(storage_approximate_size(f->e, KEY("a"), KEY("b"), &other), 0);
    assert_int_equal(other, 0);
    assert_int_equal(storage_flush(f->e), 0); /* now from the table files */
    assert_int_equal(storage_approximate_size(f->e, KEY("m"), KEY("n"), &other), 0);
    assert_true(other > 0);
}

static void put_n(storage_engine *e, const char *prefix, int i, int64_t ts, size_t value_len) {
    char k[32];
    int n = snprintf(k, sizeof k, "%s%03d", prefix, i);
    char *v = malloc(value_len + 1);
    assert_non_null(v);
    memset(v, 'x', value_len);
    v[value_len] = 0;
    put(e, (uint8_t *)k, (size_t)n, ts, v);
    free(v);
}

static void assert_middle(storage_engine *e, const char *start, const char *end, uint64_t max,
                          const char *want, storage_middle_info *info) {
    base_buf key = {0};
    int rc = storage_middle_key(e, (const uint8_t *)start, start ? strlen(start) : 0,
                                (const uint8_t *)end, end ? strlen(end) : 0, max, &key, info);
    if (want == NULL) {
        assert_int_equal(rc, STORAGE_NOT_FOUND);
    } else {
        assert_int_equal(rc, STORAGE_OK);
        if (key.len != strlen(want) || memcmp(key.data, want, key.len) != 0)
            fail_msg("middle key %.*s, want %s", (int)key.len, (const char *)key.data, want);
    }
    base_buf_free(&key);
}

/* The key near the middle by bytes: a key start (all versions of a key on
** one side), never the first key, within the span and the scan bound. */
static void test_middle_key(void **state) {
    fixture *f = *state;
    storage_middle_info info;
    assert_middle(f->e, NULL, NULL, 0, NULL, &info); /* empty */
    assert_int_equal(info.keys, 0);
    put_n(f->e, "k", 0, 1, 100);
    put_n(f->e, "k", 0, 2, 100);
    assert_middle(f->e, NULL, NULL, 0, NULL, &info); /* one key, two versions */
    assert_int_equal(info.keys, 1);
    put_n(f->e, "k", 1, 1, 1);
    assert_middle(f->e, NULL, NULL, 0, "k001", &info); /* the only key that is not first */
    for (int i = 0; i < 100; i++) put_n(f->e, "j", i, 1, 100);
    /* 100 keys of 116 bytes: 50 before j050 is half */
    assert_middle(f->e, "j", "k", 0, "j050", &info);
    assert_int_equal(info.keys, 100);
    assert_int_equal(info.total_bytes, 100 * 116);
    assert_int_equal(info.left_bytes, 50 * 116);
    assert_false(info.truncated);
    assert_middle(f->e, "j020", "j040", 0, "j030", NULL); /* within the span */
    assert_middle(f->e, "j0205", "j040", 0, "j031", NULL); /* j021..j039: a tie goes right */
    assert_middle(f->e, "j098", "k", 0, "j099", NULL);
    assert_middle(f->e, "j099", "k", 0, NULL, NULL);
    /* a heavy key: the split lands next to it, on the side nearer to half */
    put_n(f->e, "j", 10, 3, 20000);
    assert_middle(f->e, "j", "k", 0, "j011", &info);
    put_n(f->e, "j", 90, 3, 40000);
    assert_middle(f->e, "j", "k", 0, "j090", &info);
    /* the first pass stops at the bound: the middle of what it saw */
    assert_middle(f->e, "j020", NULL, 20 * 116, "j030", &info);
    assert_true(info.truncated);
    assert_int_equal(info.keys, 20);
}

/* One pass over every read path; returns the first error or 0. */
static int read_paths_once(storage_engine *e) {
    storage_snapshot *s = NULL;
    storage_iter *it = NULL;
    storage_value v = {0};
    base_buf raw = {0};
    int rc = storage_snapshot_new(e, &s);
    if (rc < 0) goto cleanup;
    rc = storage_get(e, s, KEY("b"), T(15), &v);
    if (rc < 0) goto cleanup;
    storage_value_free(&v);
    rc = storage_get_latest(e, NULL, KEY("a\0"), &v);
    if (rc < 0) goto cleanup;
    for (int mode = 0; mode < 3; mode++) {
        storage_iter_options o = {.ts = T(15), .mode = mode == 2 ? STORAGE_ITER_ALL_VERSIONS
                                                                 : STORAGE_ITER_AT_TS,
                                  .reverse = mode == 1, .start = (const uint8_t *)"a",
                                  .start_len = 1};
        rc = storage_iter_open(e, s, &o, &it);
        if (rc < 0) goto cleanup;
        while ((rc = storage_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL)) == 1) {
        }
        if (rc < 0) goto cleanup;
        storage_iter_close(it);
        it = NULL;
    }
    rc = storage_get_raw(e, KEY("r"), &raw);
    if (rc < 0) goto cleanup;
    rc = storage_gc(e, NULL, 0, NULL, 0, T(12), NULL);
cleanup:
    storage_iter_close(it);
    storage_value_free(&v);
    base_buf_free(&raw);
    storage_snapshot_release(e, s);
    return rc < 0 ? rc : 0;
}

/* Out of memory at every allocation of the read paths and GC: an error
** code each time, nothing leaks (ASan), and the data stays the same. */
static void test_oom_every_read_path(void **state) {
    fixture *f = *state;
    storage_engine *e = f->e;
    for (int i = 0; i < 20; i++) {
        char k[8];
        int n = snprintf(k, sizeof k, "%c%c", 'a' + i % 5, i % 2 ? 0 : 'x');
        put(e, (uint8_t *)k, (size_t)n, 10 + i % 7, "v");
    }
    del(e, KEY("b"), 14);
    storage_batch *b = storage_batch_new();
    assert_int_equal(storage_batch_put_raw(b, KEY("r"), VAL("raw")), 0);
    assert_int_equal(storage_write(e, b, false), 0);
    storage_batch_free(b);
    int failures = 0;
    for (long n = 0; n < 10000; n++) {
        base_alloc_fail_after(n);
        int rc = read_paths_once(e);
        base_alloc_fail_after(-1);
        if (rc == 0) break;
        assert_int_equal(rc, STORAGE_ERR_NOMEM);
        failures++;
    }
    assert_true(failures > 5);
    assert_int_equal(read_paths_once(e), 0);
    expect_get(e, NULL, KEY("ax"), 100, "v", 13, false);
    expect_get(e, NULL, KEY("ax"), 12, "v", 10, false);
}

/* ---- randomized model test: reads and GC against a reference ----------------------- */
#define MODEL_MAX 4096

typedef struct model_version {
    uint8_t key[3];
    size_t key_len;
    int64_t ts;
    bool tomb;
    int value;
    bool live;
} model_version;

static model_version g_model[MODEL_MAX];
static size_t g_model_n;

static void random_key(unsigned *seed, uint8_t *k, size_t *kl) {
    static const uint8_t alphabet[] = {0x00, 0x01, 'a', 0xff};
    *kl = 1 + (size_t)(rand_r(seed) % 3);
    for (size_t i = 0; i < *kl; i++) k[i] = alphabet[rand_r(seed) % 4];
}

static int model_cmp_key(const model_version *v, const uint8_t *k, size_t kl) {
    size_t n = v->key_len < kl ? v->key_len : kl;
    int c = memcmp(v->key, k, n);
    if (c) return c;
    return (int)v->key_len - (int)kl;
}

/* Newest live version of k with ts <= t, or NULL. */
static const model_version *model_get(const uint8_t *k, size_t kl, int64_t t) {
    const model_version *best = NULL;
    for (size_t i = 0; i < g_model_n; i++) {
        const model_version *v = &g_model[i];
        if (!v->live || model_cmp_key(v, k, kl) != 0 || v->ts > t) continue;
        if (best == NULL || v->ts > best->ts) best = v;
    }
    return best;
}

static void model_gc(int64_t gc_ts) {
    static bool drop[MODEL_MAX]; /* decide everything first, then apply */
    for (size_t i = 0; i < g_model_n; i++) {
        model_version *v = &g_model[i];
        drop[i] = false;
        if (!v->live || v->ts > gc_ts) continue;
        const model_version *keep = model_get(v->key, v->key_len, gc_ts);
        drop[i] = v != keep || keep->tomb;
    }
    for (size_t i = 0; i < g_model_n; i++)
        if (drop[i]) g_model[i].live = false;
}

/* Check get at every ts and AT_TS iteration both ways against the model. */
static void model_check(storage_engine *e, int64_t from_ts, int64_t to_ts) {
    static const uint8_t alphabet[] = {0x00, 0x01, 'a', 0xff};
    for (int64_t t = from_ts; t <= to_ts; t++) {
        /* every possible key of length 1..3 */
        uint8_t expect_keys[100][3];
        size_t expect_lens[100];
        int expect_vals[100];
        size_t ne = 0;
        for (int len = 1; len <= 3; len++) {
            int combos = len == 1 ? 4 : len == 2 ? 16 : 64;
            for (int c = 0; c < combos; c++) {
                uint8_t k[3];
                int x = c;
                for (int i = len - 1; i >= 0; i--) {
                    k[i] = alphabet[x % 4];
                    x /= 4;
                }
                const model_version *mv = model_get(k, (size_t)len, t);
                storage_value out;
                int rc = storage_get(e, NULL, k, (size_t)len, T(t), &out);
                assert_true(rc >= 0);
                bool visible = rc == STORAGE_OK && !out.tombstone;
                assert_int_equal(visible, mv != NULL && !mv->tomb);
                if (visible) {
                    assert_int_equal(out.ts.wall_ns, mv->ts);
                    int val;
                    assert_int_equal(out.bytes.len, sizeof val);
                    memcpy(&val, out.bytes.data, sizeof val);
                    assert_int_equal(val, mv->value);
                    assert_true(ne < 100);
                    memcpy(expect_keys[ne], k, (size_t)len);
                    expect_lens[ne] = (size_t)len;
                    expect_vals[ne] = val;
                    ne++;
                }
                storage_value_free(&out);
            }
        }
        /* sort expected keys bytewise (shorter prefix first) */
        for (size_t i = 1; i < ne; i++)
            for (size_t j = i; j > 0; j--) {
                size_t n = expect_lens[j] < expect_lens[j - 1] ? expect_lens[j] : expect_lens[j - 1];
                int c = memcmp(expect_keys[j], expect_keys[j - 1], n);
                if (c > 0 || (c == 0 && expect_lens[j] > expect_lens[j - 1])) break;
                uint8_t tk[3];
                memcpy(tk, expect_keys[j], 3);
                memcpy(expect_keys[j], expect_keys[j - 1], 3);
                memcpy(expect_keys[j - 1], tk, 3);
                size_t tl = expect_lens[j];
                expect_lens[j] = expect_lens[j - 1];
                expect_lens[j - 1] = tl;
                int tv = expect_vals[j];
                expect_vals[j] = expect_vals[j - 1];
                expect_vals[j - 1] = tv;
            }
        for (int rev = 0; rev < 2; rev++) {
            storage_iter_options o = {.ts = T(t), .mode = STORAGE_ITER_AT_TS, .reverse = rev};
            storage_iter *it = NULL;
            assert_int_equal(storage_iter_open(e, NULL, &o, &it), 0);
            for (size_t i = 0; i <= ne; i++) {
                const uint8_t *k, *v;
                size_t kl, vl;
                int rc = storage_iter_next(it, &k, &kl, NULL, &v, &vl, NULL);
                if (i == ne) {
                    assert_int_equal(rc, 0);
                    break;
                }
                assert_int_equal(rc, 1);
                size_t idx = rev ? ne - 1 - i : i;
                assert_int_equal(kl, expect_lens[idx]);
                assert_memory_equal(k, expect_keys[idx], kl);
                int val;
                assert_int_equal(vl, sizeof val);
                memcpy(&val, v, sizeof val);
                assert_int_equal(val, expect_vals[idx]);
            }
            storage_iter_close(it);
        }
    }
}

static void test_model_random_with_gc(void **state) {
    fixture *f = *state;
    storage_engine *e = f->e;
    unsigned seed = test_seed();
    g_model_n = 0;
    int value = 0;
    int64_t gc_ts = 0;
    storage_batch *b = storage_batch_new();
    for (int round = 0; round < 10; round++) {
        /* random batch of puts, deletes and sometimes a range delete,
        ** all at timestamps above the GC threshold */
        storage_batch_clear(b);
        int ops = 1 + rand_r(&seed) % 40;
        for (int i = 0; i < ops && g_model_n < MODEL_MAX; i++) {
            model_version mv = {.live = true};
            random_key(&seed, mv.key, &mv.key_len);
            mv.ts = gc_ts + 1 + rand_r(&seed) % 20;
            int kind = rand_r(&seed) % 20;
            if (kind == 0) {
                uint8_t k2[3];
                size_t k2l;
                random_key(&seed, k2, &k2l);
                assert_int_equal(storage_batch_delete_range(b, mv.key, mv.key_len, k2, k2l), 0);
                for (size_t j = 0; j < g_model_n; j++)
                    if (model_cmp_key(&g_model[j], mv.key, mv.key_len) >= 0 &&
                        model_cmp_key(&g_model[j], k2, k2l) < 0)
                        g_model[j].live = false;
                continue;
            }
            mv.tomb = kind < 6;
            mv.value = ++value;
            if (mv.tomb)
                assert_int_equal(storage_batch_delete(b, mv.key, mv.key_len, T(mv.ts)), 0);
            else
                assert_int_equal(storage_batch_put(b, mv.key, mv.key_len, T(mv.ts),
                                                   (uint8_t *)&mv.value, sizeof mv.value),
                                 0);
            for (size_t j = 0; j < g_model_n; j++) /* same (key, ts) replaced */
                if (g_model[j].live && model_cmp_key(&g_model[j], mv.key, mv.key_len) == 0 &&
                    g_model[j].ts == mv.ts)
                    g_model[j].live = false;
            g_model[g_model_n++] = mv;
        }
        assert_int_equal(storage_write(e, b, rand_r(&seed) % 2 == 0), 0);
        model_check(e, gc_ts, gc_ts + 22);

        /* GC at a random point; reads at >= gc_ts must not change */
        int64_t new_gc = gc_ts + rand_r(&seed) % 20;
        uint64_t removed = 0;
        size_t live_before = 0, live_after = 0;
        for (size_t j = 0; j < g_model_n; j++) live_before += g_model[j].live;
        assert_int_equal(storage_gc(e, NULL, 0, NULL, 0, T(new_gc), &removed), 0);
        model_gc(new_gc);
        for (size_t j = 0; j < g_model_n; j++) live_after += g_model[j].live;
        assert_int_equal(removed, live_before - live_after);
        gc_ts = new_gc;
        model_check(e, gc_ts, gc_ts + 22);
        /* ALL_VERSIONS count equals the model's live versions */
        storage_iter_options o = {.mode = STORAGE_ITER_ALL_VERSIONS};
        storage_iter *it = NULL;
        assert_int_equal(storage_iter_open(e, NULL, &o, &it), 0);
        size_t n = 0;
        while (storage_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL) == 1) n++;
        storage_iter_close(it);
        assert_int_equal(n, live_after);
        /* RocksDB: move data into table files (prefix bloom, range
        ** tombstones and GC deletes then live in SSTs and compactions) */
        if (round % 2 == 1) assert_int_equal(storage_flush(e), 0);
        if (f->rocks && round == 3) reopen(f), e = f->e;
        model_check(e, gc_ts, gc_ts + 22);
    }
    storage_batch_free(b);
}

static void test_gc_bounds_and_rules(void **state) {
    fixture *f = *state;
    storage_engine *e = f->e;
    put(e, KEY("a"), 10, "a10");
    put(e, KEY("a"), 20, "a20");
    put(e, KEY("a"), 30, "a30");
    put(e, KEY("b"), 10, "b10");
    del(e, KEY("b"), 20);
    put(e, KEY("b"), 30, "b30");
    put(e, KEY("c"), 10, "c10");
    del(e, KEY("c"), 20);
    uint64_t removed = 99;
    /* only [b, c) */
    assert_int_equal(storage_gc(e, KEY("b"), KEY("c"), T(25), &removed), 0);
    assert_int_equal(removed, 2); /* b@20 tombstone and b@10 */
    char buf[512];
    storage_iter_options o = {.mode = STORAGE_ITER_ALL_VERSIONS};
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "a@30=a30;a@20=a20;a@10=a10;b@30=b30;c@20=X;c@10=c10;");
    assert_int_equal(storage_gc(e, NULL, 0, NULL, 0, T(25), &removed), 0);
    assert_int_equal(removed, 3); /* a@10, c@20, c@10 */
    collect(e, NULL, &o, buf, sizeof buf);
    assert_string_equal(buf, "a@30=a30;a@20=a20;b@30=b30;");
    assert_int_equal(storage_gc(e, NULL, 0, NULL, 0, T(25), NULL), 0);
    expect_get(e, NULL, KEY("a"), 25, "a20", 20, false);
}

/* ---- RocksDB only: restart, corruption, kill -9 --------------------------------- */
static void test_restart_keeps_data(void **state) {
    fixture *f = *state;
    put(f->e, KEY("a\0x"), 10, "persist");
    del(f->e, KEY("a\0x"), 20);
    storage_batch *b = storage_batch_new();
    assert_int_equal(storage_batch_put_raw(b, KEY("applied"), VAL("42")), 0);
    assert_int_equal(storage_write(f->e, b, true), 0);
    storage_batch_free(b);
    reopen(f);
    expect_get(f->e, NULL, KEY("a\0x"), 15, "persist", 10, false);
    expect_get(f->e, NULL, KEY("a\0x"), 25, "", 20, true);
    base_buf raw = {0};
    assert_int_equal(storage_get_raw(f->e, KEY("applied"), &raw), STORAGE_OK);
    assert_memory_equal(raw.data, "42", 2);
    base_buf_free(&raw);
    /* open without create on a missing directory fails cleanly */
    storage_engine *e2 = NULL;
    storage_options o = {.dir = "/tmp/meridian-storage-does-not-exist/x", .create_if_missing = false};
    assert_int_equal(storage_open(&o, &e2), STORAGE_ERR_IO);
    assert_null(e2);
    /* a second open of a locked directory fails cleanly */
    o.dir = f->dir;
    assert_int_equal(storage_open(&o, &e2), STORAGE_ERR_IO);
    assert_null(e2);
}

static void test_corrupt_store(void **state) {
    fixture *f = *state;
    put(f->e, KEY("k"), 1, "v");
    storage_close(f->e);
    f->e = NULL;
    char path[128];
    snprintf(path, sizeof path, "%s/CURRENT", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("garbage", fp); /* no newline, no such manifest */
    fclose(fp);
    storage_options o = {.dir = f->dir, .create_if_missing = true};
    assert_int_equal(storage_open(&o, &f->e), STORAGE_ERR_CORRUPT);
    assert_null(f->e);
    /* leave a usable store for teardown */
    rm_rf(f->dir);
    assert_int_equal(fixture_open(f), STORAGE_OK);
}

/* Bytes planted behind the engine's back: reads report CORRUPT, never crash. */
static void test_corrupt_entries(void **state) {
    fixture *f = *state;
    put(f->e, KEY("good"), 1, "ok");
    storage_close(f->e);
    f->e = NULL;
    rocksdb_options_t *o = rocksdb_options_create();
    const char *names[2] = {"default", "raw"};
    const rocksdb_options_t *cfo[2] = {o, o};
    rocksdb_column_family_handle_t *h[2] = {NULL, NULL};
    char *err = NULL;
    rocksdb_t *db = rocksdb_open_column_families(o, f->dir, 2, names, cfo, h, &err);
    assert_null(err);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    /* a key with no terminator, and a well-formed key with a bad value tag */
    rocksdb_put_cf(db, wo, h[0], "bad", 3, "\x00" "v", 2, &err);
    assert_null(err);
    const char xkey[] = "x\x00\x01" "\x7f\xff\xff\xff\xff\xff\xff\xfe\x7f\xff\xff\xff";
    rocksdb_put_cf(db, wo, h[0], xkey, sizeof xkey - 1, "\x07", 1, &err);
    assert_null(err);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_column_family_handle_destroy(h[0]);
    rocksdb_column_family_handle_destroy(h[1]);
    rocksdb_close(db);
    rocksdb_options_destroy(o);

    assert_int_equal(fixture_open(f), STORAGE_OK);
    storage_value v;
    assert_int_equal(storage_get(f->e, NULL, KEY("x"), HLC_MAX, &v), STORAGE_ERR_CORRUPT);
    storage_value_free(&v);
    assert_int_equal(storage_get(f->e, NULL, KEY("good"), HLC_MAX, &v), STORAGE_OK);
    storage_value_free(&v);
    storage_iter_options io = {.mode = STORAGE_ITER_ALL_VERSIONS};
    storage_iter *it = NULL;
    assert_int_equal(storage_iter_open(f->e, NULL, &io, &it), 0);
    int rc = storage_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(rc, STORAGE_ERR_CORRUPT); /* "bad" sorts first */
    assert_int_equal(storage_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL),
                     STORAGE_ERR_CORRUPT); /* sticky */
    storage_iter_close(it);
    io.mode = STORAGE_ITER_AT_TS;
    io.ts = HLC_MAX;
    io.start = (const uint8_t *)"w";
    io.start_len = 1;
    assert_int_equal(storage_iter_open(f->e, NULL, &io, &it), 0);
    assert_int_equal(storage_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL),
                     STORAGE_ERR_CORRUPT);
    storage_iter_close(it);
    assert_int_equal(storage_gc(f->e, NULL, 0, NULL, 0, HLC_MAX, NULL), STORAGE_ERR_CORRUPT);
}

typedef struct sync_ctx {
    storage_engine *e;
    int id;
    int bad;
} sync_ctx;

#define GROUP_THREADS 4
#define GROUP_WRITES 40

static void *sync_writer(void *arg) {
    sync_ctx *c = arg;
    storage_batch *b = storage_batch_new();
    for (int i = 0; i < GROUP_WRITES && b; i++) {
        char k[32];
        int n = snprintf(k, sizeof k, "g%d/%03d", c->id, i);
        storage_batch_clear(b);
        if (storage_batch_put(b, (uint8_t *)k, (size_t)n, T(1), VAL("v")) != 0 ||
            storage_write(c->e, b, true) != 0)
            c->bad++;
    }
    storage_batch_free(b);
    return NULL;
}

/* Concurrent synced writers share fsyncs. Counted, not timed: the figure is
** printed; the assertion only checks the accounting is sane, since the OS
** may schedule the writers one after another. */
static void test_group_commit_count(void **state) {
    fixture *f = *state;
    pthread_t th[GROUP_THREADS];
    sync_ctx c[GROUP_THREADS];
    for (int i = 0; i < GROUP_THREADS; i++) {
        c[i] = (sync_ctx){f->e, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, sync_writer, &c[i]), 0);
    }
    for (int i = 0; i < GROUP_THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(c[i].bad, 0);
    }
    base_buf st = {0};
    assert_int_equal(storage_stats(f->e, &st), 0);
    assert_int_equal(base_buf_append_byte(&st, 0), 0);
    const char *line = strstr((const char *)st.data, "Cumulative WAL:");
    assert_non_null(line);
    unsigned long long writes = 0, syncs = 0;
    /* "Cumulative WAL: 160 writes, 52 syncs, 3.08 writes per sync, ..." */
    const char *p = line + strlen("Cumulative WAL:");
    writes = strtoull(p, (char **)&p, 10);
    p = strstr(p, ",");
    assert_non_null(p);
    syncs = strtoull(p + 1, NULL, 10);
    print_message("%d threads x %d synced writes: WAL %llu writes, %llu syncs\n",
                  GROUP_THREADS, GROUP_WRITES, writes, syncs);
    assert_true(writes >= GROUP_THREADS * GROUP_WRITES);
    assert_true(syncs >= 1 && syncs <= writes);
    base_buf_free(&st);
}

#define CRASH_KEYS_PER_BATCH 16
#define CRASH_ROUNDS 3
#define CRASH_BATCHES_MAX 20000

static char g_self[4096];

static int crash_child(const char *dir, int round) {
    storage_options o = {.dir = dir, .create_if_missing = true};
    storage_engine *e = NULL;
    if (storage_open(&o, &e) != 0) return 2;
    storage_batch *b = storage_batch_new();
    char value[100];
    memset(value, 'x', sizeof value);
    for (int i = 1; i <= CRASH_BATCHES_MAX; i++) {
        storage_batch_clear(b);
        for (int j = 0; j < CRASH_KEYS_PER_BATCH; j++) {
            char k[32];
            int n = snprintf(k, sizeof k, "r%d/%06d/%02d", round, i, j);
            if (storage_batch_put(b, (uint8_t *)k, (size_t)n, T(i), (uint8_t *)value,
                                  sizeof value) != 0)
                return 3;
        }
        if (storage_write(e, b, false) != 0) return 4;
        if (write(1, &i, sizeof i) != sizeof i) return 5;
    }
    storage_batch_free(b);
    storage_close(e);
    return 0;
}

static int batch_keys_present(storage_engine *e, int round, int i) {
    int present = 0;
    for (int j = 0; j < CRASH_KEYS_PER_BATCH; j++) {
        char k[32];
        int n = snprintf(k, sizeof k, "r%d/%06d/%02d", round, i, j);
        storage_value v;
        int rc = storage_get(e, NULL, (uint8_t *)k, (size_t)n, T(i), &v);
        assert_true(rc == STORAGE_OK || rc == STORAGE_NOT_FOUND);
        present += rc == STORAGE_OK;
        storage_value_free(&v);
    }
    return present;
}

static void test_crash_kill9(void **state) {
    fixture *f = *state;
    unsigned seed = test_seed();
    storage_close(f->e); /* the child owns the directory while it runs */
    f->e = NULL;
    for (int round = 0; round < CRASH_ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            dup2(fds[1], 1);
            close(fds[0]);
            close(fds[1]);
            char r[16];
            snprintf(r, sizeof r, "%d", round);
            execl(g_self, g_self, "--crash-child", f->dir, r, (char *)NULL);
            _exit(127);
        }
        close(fds[1]);
        int kill_after = 1 + rand_r(&seed) % 300;
        int acked = 0, got;
        /* read acks until the chosen point, kill, then drain what was sent */
        while (read(fds[0], &got, sizeof got) == sizeof got) {
            assert_int_equal(got, acked + 1);
            acked = got;
            if (acked == kill_after) kill(pid, SIGKILL);
        }
        close(fds[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        print_message("round %d: killed after %d acked batches (asked %d)\n", round, acked,
                      kill_after);
        assert_int_equal(fixture_open(f), STORAGE_OK);
        for (int i = 1; i <= acked; i++)
            assert_int_equal(batch_keys_present(f->e, round, i), CRASH_KEYS_PER_BATCH);
        int next = batch_keys_present(f->e, round, acked + 1);
        assert_true(next == 0 || next == CRASH_KEYS_PER_BATCH); /* never partial */
        assert_int_equal(batch_keys_present(f->e, round, acked + 2), 0);
        storage_close(f->e);
        f->e = NULL;
    }
    assert_int_equal(fixture_open(f), STORAGE_OK);
}

/* ---- main ----------------------------------------------------------------------- */
/* ---- a failed sync (storage_set_on_failure, storage_inject_fault) -------------- */
static int g_failures;
static char g_failure_what[128];

static void on_store_failure(void *ctx, const char *what) {
    (void)ctx;
    g_failures++;
    snprintf(g_failure_what, sizeof g_failure_what, "%s", what);
}

static int write_raw(storage_engine *e, const char *k, const char *v, bool sync) {
    storage_batch *b = storage_batch_new();
    assert_non_null(b);
    assert_int_equal(storage_batch_put_raw(b, (const uint8_t *)k, strlen(k), (const uint8_t *)v,
                                           strlen(v)), 0);
    int rc = storage_write(e, b, sync);
    storage_batch_free(b);
    return rc;
}

/* The chaos harness's store fault: an injected failed fsync fails the store
** for good (every later write and sync too) and reports once; a restart
** starts clean and finds what reached the OS. A stall is cleared by a new
** injection; the twin has no disk to fault. */
static void test_injected_faults(void **state) {
    fixture *f = *state;
    g_failures = 0;
    storage_set_on_failure(f->e, on_store_failure, NULL);
    bool armed, failed;
    int64_t stall_left_ms;
    assert_int_equal(storage_inject_fault(f->e, false, -1), STORAGE_ERR_INVALID);
    assert_int_equal(storage_inject_fault(f->e, false, STORAGE_FAULT_STALL_MS_MAX + 1),
                     STORAGE_ERR_INVALID);
    /* a stall, cleared before anything waits on it */
    assert_int_equal(storage_inject_fault(f->e, false, 60000), STORAGE_OK);
    storage_fault_state(f->e, &armed, &stall_left_ms, &failed);
    assert_false(armed);
    assert_true(stall_left_ms > 0 && stall_left_ms <= 60000);
    assert_int_equal(storage_inject_fault(f->e, false, 0), STORAGE_OK);
    storage_fault_state(f->e, &armed, &stall_left_ms, &failed);
    assert_int_equal(stall_left_ms, 0);
    assert_int_equal(write_raw(f->e, "a", "1", true), STORAGE_OK);
    /* a failure: unsynced writes do not consume it, the next synced one does */
    assert_int_equal(storage_inject_fault(f->e, true, 0), STORAGE_OK);
    storage_fault_state(f->e, &armed, &stall_left_ms, &failed);
    assert_true(armed);
    assert_false(failed);
    assert_int_equal(write_raw(f->e, "b", "2", false), STORAGE_OK);
    assert_int_equal(g_failures, 0);
    assert_int_equal(write_raw(f->e, "c", "3", true), STORAGE_ERR_IO);
    assert_int_equal(g_failures, 1);
    assert_non_null(strstr(g_failure_what, "synced write"));
    storage_fault_state(f->e, &armed, &stall_left_ms, &failed);
    assert_false(armed);
    assert_true(failed);
    /* failed for good: never retried, reported once */
    assert_int_equal(write_raw(f->e, "d", "4", false), STORAGE_ERR_IO);
    assert_int_equal(write_raw(f->e, "d", "4", true), STORAGE_ERR_IO);
    assert_int_equal(storage_sync(f->e), STORAGE_ERR_IO);
    assert_int_equal(g_failures, 1);
    /* the restart: a clean store; the failed write reached the OS (as a
    ** real failed fsync may leave it), the later ones did not */
    reopen(f);
    storage_set_on_failure(f->e, on_store_failure, NULL);
    base_buf raw = {0};
    assert_int_equal(storage_get_raw(f->e, KEY("a"), &raw), STORAGE_OK);
    assert_int_equal(storage_get_raw(f->e, KEY("b"), &raw), STORAGE_OK);
    assert_int_equal(storage_get_raw(f->e, KEY("c"), &raw), STORAGE_OK);
    assert_int_equal(storage_get_raw(f->e, KEY("d"), &raw), STORAGE_NOT_FOUND);
    base_buf_free(&raw);
    storage_fault_state(f->e, &armed, &stall_left_ms, &failed);
    assert_false(armed || failed);
    assert_int_equal(write_raw(f->e, "e", "5", true), STORAGE_OK);
    /* storage_sync takes an injected failure the same way */
    assert_int_equal(storage_inject_fault(f->e, true, 0), STORAGE_OK);
    assert_int_equal(storage_sync(f->e), STORAGE_ERR_IO);
    assert_int_equal(g_failures, 2);
    assert_non_null(strstr(g_failure_what, "WAL"));
    assert_int_equal(write_raw(f->e, "f", "6", false), STORAGE_ERR_IO);
    /* the in-memory twin: nothing to fault */
    storage_engine *m = NULL;
    storage_options o = {.dir = NULL, .create_if_missing = true};
    assert_int_equal(storage_open(&o, &m), STORAGE_OK);
    storage_set_on_failure(m, on_store_failure, NULL);
    assert_int_equal(storage_inject_fault(m, true, 0), STORAGE_ERR_INVALID);
    storage_fault_state(m, &armed, &stall_left_ms, &failed);
    assert_false(armed || failed);
    assert_int_equal(write_raw(m, "a", "1", true), STORAGE_OK);
    storage_close(m);
}

#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(int argc, char **argv) {
    base_log_set_level(BASE_LOG_ERROR); /* expected failures log at ERROR */
    if (argc == 4 && strcmp(argv[1], "--crash-child") == 0)
        return crash_child(argv[2], atoi(argv[3]));
    ssize_t n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (n <= 0) return 1;
    g_self[n] = 0;

    const struct CMUnitTest shared[] = {
        BOTH(test_get_at_timestamps),  BOTH(test_iter_at_ts),
        BOTH(test_iter_all_versions),  BOTH(test_snapshot_isolation),
        BOTH(test_batch_atomic_and_ordered), BOTH(test_concurrent_batches),
        BOTH(test_delete_range),       BOTH(test_raw_keyspace),
        BOTH(test_limits),             BOTH(test_approximate_size),
        BOTH(test_approximate_size_memtable), BOTH(test_middle_key),
        BOTH(test_model_random_with_gc), BOTH(test_gc_bounds_and_rules),
        BOTH(test_oom_every_read_path),
    };
    const struct CMUnitTest rocks_only[] = {
        BOTH(test_restart_keeps_data),
        BOTH(test_corrupt_store),
        BOTH(test_corrupt_entries),
        BOTH(test_group_commit_count),
        BOTH(test_crash_kill9),
        BOTH(test_injected_faults),
    };
    int failed = 0;
    g_rocks = false;
    failed += cmocka_run_group_tests_name("storage_memory", shared, NULL, NULL);
    g_rocks = true;
    failed += cmocka_run_group_tests_name("storage_rocksdb", shared, NULL, NULL);
    failed += cmocka_run_group_tests_name("storage_rocksdb_only", rocks_only, NULL, NULL);
    return failed;
}
