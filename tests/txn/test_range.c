/*
** tests/txn/test_range.c: the local replica (range/) driven directly with
** commit requests: validation kinds, delete-span tombstones, bad requests,
** read-only requests, the HLC high-water mark across a restart; and a bank
** workload through txn/ on RocksDB with fsync'd commits so that commits
** overlap in storage (pending-commit validation and visibility waits).
*/
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "range/range.h"
#include "txn/txn.h"

typedef struct fixture {
    hlc_manual_clock manual;
    hlc_clock *clock;
    storage_engine *engine;
    range_store *store;
} fixture;

static void open_fixture(fixture *f, const char *dir) {
    f->manual.now_ns = 1700000000LL * 1000000000LL;
    assert_int_equal(hlc_clock_new(hlc_manual_clock_as_physical(&f->manual),
                                   HLC_DEFAULT_MAX_OFFSET_NS, &f->clock),
                     0);
    storage_options so;
    memset(&so, 0, sizeof(so));
    so.dir = dir;
    so.create_if_missing = true;
    assert_int_equal(storage_open(&so, &f->engine), STORAGE_OK);
    assert_int_equal(range_store_open(f->engine, f->clock, false, &f->store), RANGE_OK);
}

static void close_fixture(fixture *f) {
    range_store_close(f->store);
    storage_close(f->engine);
    hlc_clock_free(f->clock);
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    open_fixture(f, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    close_fixture(*state);
    free(*state);
    return 0;
}

#define W(k, v) {(const uint8_t *)(k), strlen(k), (const uint8_t *)(v), strlen(v), false}
#define TOMB(k) {(const uint8_t *)(k), strlen(k), NULL, 0, true}
#define POINT(k) {(const uint8_t *)(k), strlen(k), NULL, 0, true}
#define SPAN(a, b) {(const uint8_t *)(a), strlen(a), (const uint8_t *)(b), strlen(b), false}

static hlc_timestamp commit_writes(fixture *f, const range_write *w, size_t n) {
    hlc_timestamp read_ts = hlc_now(f->clock), ts;
    range_commit_request req = {.txn_id = 1, .read_ts = read_ts, .writes = w, .write_count = n};
    range_conflict c = {0};
    assert_int_equal(range_commit(f->store, &req, &ts, &c), RANGE_OK);
    assert_true(hlc_less(read_ts, ts));
    range_conflict_free(&c);
    return ts;
}

static int get(fixture *f, const char *k, hlc_timestamp ts, char *out, size_t out_size) {
    base_buf b = {0};
    int rc = range_get(f->store, (const uint8_t *)k, strlen(k), ts, &b);
    if (rc == RANGE_OK) {
        snprintf(out, out_size, "%.*s", (int)b.len, (const char *)b.data);
    }
    base_buf_free(&b);
    return rc;
}

static void test_conflict_kinds(void **state) {
    fixture *f = *state;
    range_write w1[] = {W("b", "1"), W("d", "1")};
    commit_writes(f, w1, 2);
    hlc_timestamp r = hlc_now(f->clock);
    assert_int_equal(range_wait_visible(f->store, r), RANGE_OK);
    range_write w2[] = {W("b", "2"), W("c", "new")};
    hlc_timestamp t2 = commit_writes(f, w2, 2);

    range_conflict c = {0};
    hlc_timestamp ts;
    /* write-write */
    range_write mine[] = {W("b", "x")};
    range_commit_request req = {.txn_id = 2, .read_ts = r, .writes = mine, .write_count = 1};
    assert_int_equal(range_commit(f->store, &req, &ts, &c), RANGE_ERR_CONFLICT);
    assert_int_equal(c.kind, RANGE_CONFLICT_WRITE_WRITE);
    assert_int_equal(c.key.len, 1);
    assert_memory_equal(c.key.data, "b", 1);
    assert_int_equal(hlc_compare(c.conflict_ts, t2), 0);
    assert_false(c.pending);
    /* read-write on a point read */
    range_write other[] = {W("z", "x")};
    range_span reads[] = {POINT("b")};
    range_commit_request req2 = {.txn_id = 3, .read_ts = r, .writes = other, .write_count = 1,
                                 .read_spans = reads, .read_span_count = 1};
    assert_int_equal(range_commit(f->store, &req2, &ts, &c), RANGE_ERR_CONFLICT);
    assert_int_equal(c.kind, RANGE_CONFLICT_READ_WRITE);
    /* phantom: c did not exist at r */
    range_span scan[] = {SPAN("c", "d")};
    range_commit_request req3 = {.txn_id = 4, .read_ts = r, .writes = other, .write_count = 1,
                                 .read_spans = scan, .read_span_count = 1};
    assert_int_equal(range_commit(f->store, &req3, &ts, &c), RANGE_ERR_CONFLICT);
    assert_int_equal(c.kind, RANGE_CONFLICT_PHANTOM);
    assert_memory_equal(c.key.data, "c", 1);
    /* an untouched span, and a read-only request: fine */
    range_span quiet[] = {SPAN("d", "e"), POINT("d")};
    range_commit_request req4 = {.txn_id = 5, .read_ts = r, .writes = other, .write_count = 1,
                                 .read_spans = quiet, .read_span_count = 2};
    assert_int_equal(range_commit(f->store, &req4, &ts, &c), RANGE_OK);
    range_commit_request ro = {.txn_id = 6, .read_ts = r, .read_spans = scan, .read_span_count = 1};
    assert_int_equal(range_commit(f->store, &ro, &ts, &c), RANGE_OK);
    assert_int_equal(hlc_compare(ts, r), 0);
    range_conflict_free(&c);
    range_stats st;
    range_store_stats(f->store, &st);
    assert_int_equal(st.conflicts, 3);
    assert_int_equal(st.commits, 3);
}

static void test_delete_spans_make_tombstones(void **state) {
    fixture *f = *state;
    range_write w1[] = {W("a1", "x"), W("a2", "x"), W("a3", "x"), W("b1", "x")};
    hlc_timestamp t1 = commit_writes(f, w1, 4);
    hlc_timestamp r = hlc_now(f->clock);
    range_write keep[] = {W("a2", "kept")};
    range_span del[] = {SPAN("a", "b"), SPAN("a2", "a9")}; /* overlapping */
    range_commit_request req = {.txn_id = 7, .read_ts = r, .writes = keep, .write_count = 1,
                                .delete_spans = del, .delete_span_count = 2};
    range_conflict c = {0};
    hlc_timestamp ts;
    assert_int_equal(range_commit(f->store, &req, &ts, &c), RANGE_OK);
    char v[32];
    assert_int_equal(get(f, "a1", ts, v, sizeof(v)), RANGE_NOT_FOUND);
    assert_int_equal(get(f, "a3", ts, v, sizeof(v)), RANGE_NOT_FOUND);
    assert_int_equal(get(f, "a2", ts, v, sizeof(v)), RANGE_OK);
    assert_string_equal(v, "kept");
    assert_int_equal(get(f, "b1", ts, v, sizeof(v)), RANGE_OK);
    /* history stays readable at the old timestamp */
    assert_int_equal(get(f, "a1", t1, v, sizeof(v)), RANGE_OK);
    /* the scan at ts shows only a2 and b1 */
    range_iter *it;
    assert_int_equal(range_iter_open(f->store, NULL, 0, NULL, 0, ts, false, &it), RANGE_OK);
    const uint8_t *k, *val;
    size_t klen, vlen;
    int rows = 0;
    while (range_iter_next(it, &k, &klen, &val, &vlen) == 1) rows++;
    range_iter_close(it);
    assert_int_equal(rows, 2);
    range_conflict_free(&c);
}

static void test_bad_requests(void **state) {
    fixture *f = *state;
    hlc_timestamp r = hlc_now(f->clock), ts;
    range_conflict c = {0};
    range_write unsorted[] = {W("b", "1"), W("a", "1")};
    range_commit_request req = {.read_ts = r, .writes = unsorted, .write_count = 2};
    assert_int_equal(range_commit(f->store, &req, &ts, &c), RANGE_ERR_INVALID);
    range_write dup[] = {W("a", "1"), W("a", "2")};
    req.writes = dup;
    assert_int_equal(range_commit(f->store, &req, &ts, &c), RANGE_ERR_INVALID);
    range_write empty[] = {W("", "1")};
    req.writes = empty;
    req.write_count = 1;
    assert_int_equal(range_commit(f->store, &req, &ts, &c), RANGE_ERR_INVALID);
    base_buf b = {0};
    assert_int_equal(range_get(f->store, (const uint8_t *)"", 0, r, &b), RANGE_ERR_INVALID);
    base_buf_free(&b);
    range_conflict_free(&c);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The physical clock does not move across a restart: the stored high-water
** mark still puts new timestamps above the data. */
static void test_high_water_across_restart(void **state) {
    (void)state;
    char dir[] = "/tmp/meridian-range-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    fixture f;
    memset(&f, 0, sizeof(f));
    open_fixture(&f, dir);
    hlc_timestamp last = HLC_ZERO;
    for (int i = 0; i < 50; i++) {
        range_write w[] = {W("k", "v")};
        last = commit_writes(&f, w, 1);
    }
    close_fixture(&f);
    open_fixture(&f, dir);
    hlc_timestamp now = hlc_now(f.clock);
    assert_true(hlc_less(last, now));
    char v[8];
    assert_int_equal(get(&f, "k", now, v, sizeof(v)), RANGE_OK);
    close_fixture(&f);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- bank on RocksDB with fsync'd, overlapping commits ---------------------- */

#define ACCOUNTS 8
#define THREADS 4
#define TRANSFERS 60
#define RETRIES_MAX 10000

typedef struct bank {
    txn_db *db;
    pthread_mutex_t mu;
    unsigned seed;
    int failures;
    int bad;
    int done;
} bank;

/* "acct/N": 6 bytes used of 8 */
static void account_key(int a, uint8_t out[8]) {
    memcpy(out, "acct/", 5);
    out[5] = (uint8_t)('0' + a);
    out[6] = 0;
    out[7] = 0;
}

static int read_balance(txn *t, int a, int64_t *out) {
    uint8_t k[8];
    account_key(a, k);
    base_buf b = {0};
    txn_error err = {0};
    int rc = txn_get(t, k, 6, &b, &err);
    if (rc == TXN_OK && b.len == sizeof(*out)) memcpy(out, b.data, sizeof(*out));
    base_buf_free(&b);
    return rc;
}

static void *bank_writer(void *arg) {
    bank *b = arg;
    pthread_mutex_lock(&b->mu);
    unsigned seed = b->seed++;
    pthread_mutex_unlock(&b->mu);
    int failures = 0;
    for (int n = 0; n < TRANSFERS; n++) {
        int from = rand_r(&seed) % ACCOUNTS, to = (from + 1 + rand_r(&seed) % (ACCOUNTS - 1)) % ACCOUNTS;
        int attempt;
        for (attempt = 0; attempt < RETRIES_MAX; attempt++) {
            txn *t;
            txn_error err = {0};
            if (txn_begin(b->db, NULL, &t) != TXN_OK) break;
            int64_t x = 0, y = 0;
            if (read_balance(t, from, &x) != TXN_OK || read_balance(t, to, &y) != TXN_OK) {
                txn_rollback(t);
                break;
            }
            x -= 3;
            y += 3;
            uint8_t kf[8], kt[8];
            account_key(from, kf);
            account_key(to, kt);
            if (txn_put(t, kf, 6, (const uint8_t *)&x, 8, &err) != TXN_OK ||
                txn_put(t, kt, 6, (const uint8_t *)&y, 8, &err) != TXN_OK) {
                txn_rollback(t);
                break;
            }
            int rc = txn_commit(t, NULL, &err);
            if (rc == TXN_OK) break;
            if (rc != TXN_ERR_RETRY) break;
        }
        if (attempt >= RETRIES_MAX) failures++;
    }
    pthread_mutex_lock(&b->mu);
    b->failures += failures;
    b->done++;
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void *bank_reader(void *arg) {
    bank *b = arg;
    int bad = 0;
    for (int i = 0; i < 100000; i++) {
        pthread_mutex_lock(&b->mu);
        int done = b->done;
        pthread_mutex_unlock(&b->mu);
        if (done == THREADS) break;
        txn *t;
        txn_options ro = {.read_only = true};
        if (txn_begin(b->db, &ro, &t) != TXN_OK) {
            bad++;
            break;
        }
        int64_t total = 0;
        for (int a = 0; a < ACCOUNTS; a++) {
            int64_t x = 0;
            if (read_balance(t, a, &x) != TXN_OK) bad++;
            total += x;
        }
        if (total != ACCOUNTS * 100) bad++;
        txn_rollback(t);
    }
    pthread_mutex_lock(&b->mu);
    b->bad += bad;
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void test_bank_rocksdb_sync(void **state) {
    (void)state;
    char dir[] = "/tmp/meridian-range-bank-XXXXXX";
    assert_non_null(mkdtemp(dir));
    hlc_clock *clock;
    assert_int_equal(hlc_clock_new(hlc_system_clock(), HLC_DEFAULT_MAX_OFFSET_NS, &clock), 0);
    storage_options so = {.dir = dir, .create_if_missing = true};
    storage_engine *engine;
    assert_int_equal(storage_open(&so, &engine), STORAGE_OK);
    txn_db_options o = {.engine = engine, .clock = clock, .sync_commits = true};
    txn_db *db;
    assert_int_equal(txn_db_open(&o, &db), TXN_OK);
    txn *t;
    txn_error err = {0};
    assert_int_equal(txn_begin(db, NULL, &t), TXN_OK);
    for (int a = 0; a < ACCOUNTS; a++) {
        uint8_t k[8];
        account_key(a, k);
        int64_t v = 100;
        assert_int_equal(txn_put(t, k, 6, (const uint8_t *)&v, 8, &err), TXN_OK);
    }
    assert_int_equal(txn_commit(t, NULL, &err), TXN_OK);

    bank b;
    memset(&b, 0, sizeof(b));
    b.db = db;
    b.seed = 7;
    pthread_mutex_init(&b.mu, NULL);
    pthread_t w[THREADS], r;
    for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&w[i], NULL, bank_writer, &b), 0);
    assert_int_equal(pthread_create(&r, NULL, bank_reader, &b), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(w[i], NULL);
    pthread_join(r, NULL);
    pthread_mutex_destroy(&b.mu);
    txn_db_stats st;
    txn_db_get_stats(db, &st);
    print_message("rocksdb bank: %llu commits, %llu conflicts, %llu visibility waits\n",
                  (unsigned long long)st.commits, (unsigned long long)st.conflicts,
                  (unsigned long long)st.visible_waits);
    assert_int_equal(b.failures, 0);
    assert_int_equal(b.bad, 0);
    assert_int_equal(st.commits, 1 + THREADS * TRANSFERS);
    assert_int_equal(txn_begin(db, NULL, &t), TXN_OK);
    int64_t total = 0;
    for (int a = 0; a < ACCOUNTS; a++) {
        int64_t x = 0;
        assert_int_equal(read_balance(t, a, &x), TXN_OK);
        total += x;
    }
    txn_rollback(t);
    assert_int_equal(total, ACCOUNTS * 100);
    txn_db_close(db);
    storage_close(engine);
    hlc_clock_free(clock);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conflict_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_spans_make_tombstones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test(test_high_water_across_restart),
        cmocka_unit_test(test_bank_rocksdb_sync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
