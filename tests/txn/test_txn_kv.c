/*
** tests/txn/test_txn_kv.c: txn/ over a range_kv given in txn_db_options.kv.
** (1) the local store's view passed explicitly behaves like the default;
** (2) a wrapping range_kv injects the cluster's errors (what a range_router
** returns: AMBIGUOUS, CROSS_RANGE, UNAVAILABLE, with a detail through
** last_error) and the coordinator maps them to TXN_ERR_* with their
** SQLSTATEs (40003, 0A000, 57P03) and messages naming the range.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "range/range.h"
#include "txn/txn.h"

/* A range_kv that forwards to inner unless told to fail an op. */
typedef struct faulty_kv {
    range_kv kv; /* first member */
    range_kv *inner;
    int fail_get, fail_iter_next, fail_commit; /* 0: forward */
    const char *detail;                        /* NULL: no last_error detail */
    int commits_forwarded;
} faulty_kv;

typedef struct faulty_iter {
    faulty_kv *f;
    range_kv_iter *inner;
} faulty_iter;

static int f_wait(range_kv *kv, hlc_timestamp ts) {
    faulty_kv *f = (faulty_kv *)kv;
    return f->inner->ops->wait_visible(f->inner, ts);
}
static int f_get(range_kv *kv, const uint8_t *k, size_t kl, hlc_timestamp ts, base_buf *out) {
    faulty_kv *f = (faulty_kv *)kv;
    if (f->fail_get) return f->fail_get;
    return f->inner->ops->get(f->inner, k, kl, ts, out);
}
static int f_iter_open(range_kv *kv, const uint8_t *s, size_t sl, const uint8_t *e, size_t el,
                       hlc_timestamp ts, bool reverse, range_kv_iter **out) {
    faulty_kv *f = (faulty_kv *)kv;
    faulty_iter *it = calloc(1, sizeof(*it));
    it->f = f;
    int rc = f->inner->ops->iter_open(f->inner, s, sl, e, el, ts, reverse, &it->inner);
    if (rc != RANGE_OK) {
        free(it);
        return rc;
    }
    *out = (range_kv_iter *)it;
    return RANGE_OK;
}
static int f_iter_next(range_kv_iter *kit, const uint8_t **k, size_t *kl, const uint8_t **v,
                       size_t *vl) {
    faulty_iter *it = (faulty_iter *)kit;
    if (it->f->fail_iter_next) return it->f->fail_iter_next;
    return it->f->inner->ops->iter_next(it->inner, k, kl, v, vl);
}
static void f_iter_close(range_kv_iter *kit) {
    faulty_iter *it = (faulty_iter *)kit;
    it->f->inner->ops->iter_close(it->inner);
    free(it);
}
static int f_commit(range_kv *kv, const range_commit_request *req, hlc_timestamp *ts,
                    range_conflict *c) {
    faulty_kv *f = (faulty_kv *)kv;
    if (f->fail_commit) return f->fail_commit;
    f->commits_forwarded++;
    return f->inner->ops->commit(f->inner, req, ts, c);
}
static void f_stats(range_kv *kv, range_stats *out) {
    faulty_kv *f = (faulty_kv *)kv;
    f->inner->ops->stats(f->inner, out);
}
static bool f_last_error(range_kv *kv, char *buf, size_t size) {
    faulty_kv *f = (faulty_kv *)kv;
    if (f->detail == NULL) return false;
    snprintf(buf, size, "%s", f->detail);
    return true;
}
static const range_kv_ops faulty_ops = {f_wait, f_get, f_iter_open, f_iter_next, f_iter_close,
                                        f_commit, f_stats, f_last_error, NULL, NULL, NULL, NULL,
                                        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                        NULL, NULL, NULL, NULL};

typedef struct fixture {
    hlc_manual_clock manual;
    hlc_clock *clock;
    storage_engine *engine;
    range_store *store;
    faulty_kv faulty;
    txn_db *db;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    f->manual.now_ns = 1700000000LL * 1000000000LL;
    assert_int_equal(hlc_clock_new(hlc_manual_clock_as_physical(&f->manual),
                                   HLC_DEFAULT_MAX_OFFSET_NS, &f->clock),
                     0);
    storage_options so;
    memset(&so, 0, sizeof(so));
    so.create_if_missing = true;
    assert_int_equal(storage_open(&so, &f->engine), STORAGE_OK);
    assert_int_equal(range_store_open(f->engine, f->clock, false, &f->store), RANGE_OK);
    f->faulty.kv.ops = &faulty_ops;
    f->faulty.inner = range_store_kv(f->store);
    /* no engine: the key space is the kv alone */
    txn_db_options o = {.clock = f->clock, .kv = &f->faulty.kv};
    assert_int_equal(txn_db_open(&o, &f->db), TXN_OK);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    txn_db_close(f->db);
    range_store_close(f->store);
    storage_close(f->engine);
    hlc_clock_free(f->clock);
    free(f);
    return 0;
}

static void put(txn *t, const char *k, const char *v) {
    txn_error err = {0};
    assert_int_equal(txn_put(t, (const uint8_t *)k, strlen(k), (const uint8_t *)v, strlen(v), &err),
                     TXN_OK);
}

static void test_explicit_store_kv(void **state) {
    fixture *f = *state;
    txn *t;
    txn_error err = {0};
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    put(t, "a", "1");
    put(t, "b", "2");
    hlc_timestamp ts;
    assert_int_equal(txn_commit(t, &ts, &err), TXN_OK);
    assert_int_equal(f->faulty.commits_forwarded, 1);
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    assert_true(hlc_less(ts, txn_read_timestamp(t)));
    base_buf b = {0};
    assert_int_equal(txn_get(t, (const uint8_t *)"b", 1, &b, &err), TXN_OK);
    assert_int_equal(b.len, 1);
    assert_int_equal(b.data[0], '2');
    txn_iter *it;
    assert_int_equal(txn_scan(t, NULL, 0, NULL, 0, true, &it, &err), TXN_OK);
    const uint8_t *k, *v;
    size_t kl, vl;
    assert_int_equal(txn_iter_next(it, &k, &kl, &v, &vl, &err), 1);
    assert_int_equal(k[0], 'b');
    assert_int_equal(txn_iter_next(it, &k, &kl, &v, &vl, &err), 1);
    assert_int_equal(k[0], 'a');
    assert_int_equal(txn_iter_next(it, &k, &kl, &v, &vl, &err), 0);
    txn_iter_close(it);
    txn_rollback(t);
    base_buf_free(&b);
    txn_db_stats st;
    txn_db_get_stats(f->db, &st);
    assert_int_equal(st.commits, 1);
    /* no engine and no kv: refused */
    txn_db_options bad = {.clock = f->clock};
    txn_db *db;
    assert_int_equal(txn_db_open(&bad, &db), TXN_ERR_INVALID);
}

static void test_ambiguous_commit(void **state) {
    fixture *f = *state;
    f->faulty.fail_commit = RANGE_ERR_AMBIGUOUS;
    f->faulty.detail = "range 4: no replica confirmed the commit's outcome within 10000 ms";
    txn *t;
    txn_error err = {0};
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    put(t, "a", "1");
    assert_int_equal(txn_commit(t, NULL, &err), TXN_ERR_AMBIGUOUS);
    assert_string_equal(err.sqlstate, "40003");
    assert_string_equal(err.message,
                        "the outcome of the commit is unknown: it may or may not have applied "
                        "(range 4: no replica confirmed the commit's outcome within 10000 ms)");
    /* without a detail the generic message still says what it means */
    f->faulty.detail = NULL;
    memset(&err, 0, sizeof(err));
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    put(t, "a", "1");
    assert_int_equal(txn_commit(t, NULL, &err), TXN_ERR_AMBIGUOUS);
    assert_string_equal(err.sqlstate, "40003");
    assert_non_null(strstr(err.message, "may or may not have applied"));
    txn_error e2 = {0};
    txn_error_set(&e2, TXN_ERR_AMBIGUOUS);
    assert_string_equal(e2.sqlstate, "40003");
}

static void test_cross_range_commit(void **state) {
    fixture *f = *state;
    f->faulty.fail_commit = RANGE_ERR_CROSS_RANGE;
    f->faulty.detail = "keys in range 1 and range 2";
    txn *t;
    txn_error err = {0};
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    put(t, "a", "1");
    put(t, "z", "2");
    assert_int_equal(txn_commit(t, NULL, &err), TXN_ERR_UNSUPPORTED);
    assert_string_equal(err.sqlstate, "0A000");
    /* a key space without two-phase commit (no prepare) */
    assert_string_equal(err.message,
                        "transaction touches several ranges (keys in range 1 and range 2): this "
                        "key space has no two-phase commit");
    txn_error e2 = {0};
    txn_error_set(&e2, TXN_ERR_UNSUPPORTED);
    assert_string_equal(e2.sqlstate, "0A000");
    /* a read-only txn never reaches the key space's commit */
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    assert_int_equal(txn_commit(t, NULL, &err), TXN_OK);
}

static void test_unavailable_reads(void **state) {
    fixture *f = *state;
    f->faulty.fail_get = RANGE_ERR_UNAVAILABLE;
    f->faulty.detail = "range 3 is unavailable: no leaseholder answered the read within 10000 ms "
                       "(last: node 2: RPC_ERR_TIMEOUT)";
    txn *t;
    txn_error err = {0};
    base_buf b = {0};
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    assert_int_equal(txn_get(t, (const uint8_t *)"a", 1, &b, &err), TXN_ERR_UNAVAILABLE);
    assert_string_equal(err.sqlstate, "57P03");
    assert_string_equal(err.message,
                        "the node cannot serve this transaction now: range 3 is unavailable: no "
                        "leaseholder answered the read within 10000 ms (last: node 2: "
                        "RPC_ERR_TIMEOUT)");
    /* scans: the error surfaces at txn_iter_next */
    f->faulty.fail_iter_next = RANGE_ERR_UNAVAILABLE;
    memset(&err, 0, sizeof(err));
    txn_iter *it;
    assert_int_equal(txn_scan(t, NULL, 0, NULL, 0, false, &it, &err), TXN_OK);
    const uint8_t *k, *v;
    size_t kl, vl;
    assert_int_equal(txn_iter_next(it, &k, &kl, &v, &vl, &err), TXN_ERR_UNAVAILABLE);
    assert_string_equal(err.sqlstate, "57P03");
    assert_non_null(strstr(err.message, "range 3 is unavailable"));
    txn_iter_close(it);
    /* and the same from commit */
    f->faulty.fail_commit = RANGE_ERR_UNAVAILABLE;
    put(t, "a", "1");
    memset(&err, 0, sizeof(err));
    assert_int_equal(txn_commit(t, NULL, &err), TXN_ERR_UNAVAILABLE);
    assert_string_equal(err.sqlstate, "57P03");
    base_buf_free(&b);
}

/* Version GC (docs/txn.md 6.1): a read or commit at or below a range's GC
** threshold fails with 72000 (snapshot too old), not retryable. */
static void test_gc_threshold_reads(void **state) {
    fixture *f = *state;
    f->faulty.fail_get = RANGE_ERR_GC_THRESHOLD;
    txn *t;
    txn_error err = {0};
    base_buf b = {0};
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    assert_int_equal(txn_get(t, (const uint8_t *)"a", 1, &b, &err), TXN_ERR_GC_THRESHOLD);
    assert_string_equal(err.sqlstate, "72000");
    assert_non_null(strstr(err.message, "GC threshold"));
    f->faulty.fail_get = 0;
    f->faulty.fail_commit = RANGE_ERR_GC_THRESHOLD;
    put(t, "a", "1");
    memset(&err, 0, sizeof(err));
    assert_int_equal(txn_commit(t, NULL, &err), TXN_ERR_GC_THRESHOLD);
    assert_string_equal(err.sqlstate, "72000");
    txn_error e2 = {0};
    txn_error_set(&e2, TXN_ERR_GC_THRESHOLD);
    assert_string_equal(e2.sqlstate, "72000");
    base_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_explicit_store_kv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_range_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unavailable_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_threshold_reads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
