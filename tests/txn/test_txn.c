/*
** tests/txn/test_txn.c: the local transaction coordinator (txn/) over the
** single local replica (range/), on the in-memory storage twin, plus one
** test on RocksDB in a temporary directory.
**
** Time: a manual physical clock (the HLC's logical counter orders events), so
** conflict messages carry fixed wall times. Threads in the concurrency tests
** stop on their own after a fixed amount of work; retries are bounded.
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
#include <unistd.h>

#include "encoding/encoding.h"
#include "range/range.h"
#include "txn/txn.h"

#define TABLE 104
#define RETRIES_MAX 10000

typedef struct fixture {
    hlc_manual_clock manual;
    hlc_clock *clock;
    storage_engine *engine;
    txn_db *db;
    char dir[256]; /* RocksDB only */
} fixture;

static void open_db(fixture *f, const char *dir) {
    f->manual.now_ns = 1700000000LL * 1000000000LL;
    assert_int_equal(hlc_clock_new(hlc_manual_clock_as_physical(&f->manual),
                                   HLC_DEFAULT_MAX_OFFSET_NS, &f->clock),
                     0);
    storage_options so;
    memset(&so, 0, sizeof(so));
    so.dir = dir;
    so.create_if_missing = true;
    assert_int_equal(storage_open(&so, &f->engine), STORAGE_OK);
    txn_db_options o = {.engine = f->engine, .clock = f->clock, .sync_commits = dir != NULL};
    assert_int_equal(txn_db_open(&o, &f->db), TXN_OK);
}

static void close_db(fixture *f) {
    txn_db_close(f->db);
    storage_close(f->engine);
    hlc_clock_free(f->clock);
    f->db = NULL;
    f->engine = NULL;
    f->clock = NULL;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    open_db(f, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    base_alloc_fail_after(-1);
    close_db(f);
    free(f);
    return 0;
}

/* /104/1/<id> */
typedef struct key {
    uint8_t b[32];
    size_t len;
} key;

static key row_key(uint32_t table, int64_t id) {
    base_buf b = {0};
    assert_int_equal(enc_key_prefix(&b, table, 1), 0);
    enc_value v = {.type = ENC_INTEGER, .u.i = id};
    assert_int_equal(enc_key_append(&b, &v), 0);
    key k;
    assert_true(b.len <= sizeof(k.b));
    memcpy(k.b, b.data, b.len);
    k.len = b.len;
    base_buf_free(&b);
    return k;
}

static key table_start(uint32_t table) {
    base_buf b = {0};
    assert_int_equal(enc_key_prefix(&b, table, 1), 0);
    key k;
    memcpy(k.b, b.data, b.len);
    k.len = b.len;
    base_buf_free(&b);
    return k;
}

static key table_end(uint32_t table) {
    key s = table_start(table);
    base_buf b = {0};
    assert_int_equal(enc_prefix_end(s.b, s.len, &b), 0);
    key k;
    memcpy(k.b, b.data, b.len);
    k.len = b.len;
    base_buf_free(&b);
    return k;
}

static void put_str(txn *t, key k, const char *v) {
    txn_error err = {0};
    assert_int_equal(txn_put(t, k.b, k.len, (const uint8_t *)v, strlen(v), &err), TXN_OK);
}

static void put_int(txn *t, key k, int64_t v) {
    txn_error err = {0};
    assert_int_equal(txn_put(t, k.b, k.len, (const uint8_t *)&v, sizeof(v), &err), TXN_OK);
}

/* Returns 1 found (value copied to out), 0 not found. */
static int get_str(txn *t, key k, char *out, size_t out_size) {
    txn_error err = {0};
    base_buf b = {0};
    int rc = txn_get(t, k.b, k.len, &b, &err);
    assert_true(rc == TXN_OK || rc == TXN_NOT_FOUND);
    if (rc == TXN_OK) {
        size_t n = b.len < out_size - 1 ? b.len : out_size - 1;
        memcpy(out, b.data, n);
        out[n] = '\0';
    }
    base_buf_free(&b);
    return rc == TXN_OK;
}

static int get_int(txn *t, key k, int64_t *out, txn_error *err) {
    base_buf b = {0};
    int rc = txn_get(t, k.b, k.len, &b, err);
    if (rc == TXN_OK) {
        assert_int_equal(b.len, sizeof(*out));
        memcpy(out, b.data, sizeof(*out));
    }
    base_buf_free(&b);
    return rc;
}

static void commit_ok(txn *t) {
    txn_error err = {0};
    int rc = txn_commit(t, NULL, &err);
    if (rc != TXN_OK) fail_msg("commit failed: %d %s %s", rc, err.sqlstate, err.message);
}

/* One committed write of key = value. */
static void seed(fixture *f, key k, const char *v) {
    txn *t;
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    put_str(t, k, v);
    commit_ok(t);
}

/* Scan into "k=v,k=v" using the integer id of each row key. */
static void scan_str(txn *t, key start, key end, bool reverse, char *out, size_t out_size) {
    txn_iter *it;
    txn_error err = {0};
    assert_int_equal(txn_scan(t, start.b, start.len, end.b, end.len, reverse, &it, &err), TXN_OK);
    out[0] = '\0';
    size_t pos = 0;
    for (int guard = 0; guard < 10000; guard++) {
        const uint8_t *k, *v;
        size_t klen, vlen;
        int n = txn_iter_next(it, &k, &klen, &v, &vlen, &err);
        assert_true(n >= 0);
        if (n == 0) break;
        uint32_t table, index;
        size_t used;
        assert_int_equal(enc_key_decode_prefix(k, klen, &table, &index, &used), 0);
        base_buf scratch = {0};
        enc_value ev;
        size_t used2;
        assert_int_equal(enc_key_decode_value(k + used, klen - used, &scratch, &ev, &used2), 0);
        base_buf_free(&scratch);
        pos += (size_t)snprintf(out + pos, out_size - pos, "%s%lld=%.*s", pos ? "," : "",
                                (long long)ev.u.i, (int)vlen, (const char *)v);
        assert_true(pos < out_size);
    }
    txn_iter_close(it);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_read_your_writes_get(void **state) {
    fixture *f = *state;
    seed(f, row_key(TABLE, 1), "one");
    txn *t;
    char v[64];
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    assert_true(get_str(t, row_key(TABLE, 1), v, sizeof(v)));
    assert_string_equal(v, "one");
    put_str(t, row_key(TABLE, 1), "uno");
    assert_true(get_str(t, row_key(TABLE, 1), v, sizeof(v)));
    assert_string_equal(v, "uno");
    put_str(t, row_key(TABLE, 2), "two");
    assert_true(get_str(t, row_key(TABLE, 2), v, sizeof(v)));
    assert_string_equal(v, "two");
    txn_error err = {0};
    key k1 = row_key(TABLE, 1);
    assert_int_equal(txn_delete(t, k1.b, k1.len, &err), TXN_OK);
    assert_false(get_str(t, k1, v, sizeof(v)));
    commit_ok(t);

    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    assert_false(get_str(t, row_key(TABLE, 1), v, sizeof(v)));
    assert_true(get_str(t, row_key(TABLE, 2), v, sizeof(v)));
    assert_string_equal(v, "two");
    txn_rollback(t);
}

static void test_scan_merges_own_writes(void **state) {
    fixture *f = *state;
    seed(f, row_key(TABLE, 1), "a");
    seed(f, row_key(TABLE, 3), "c");
    seed(f, row_key(TABLE, 5), "e");
    seed(f, row_key(TABLE, 7), "g");
    seed(f, row_key(TABLE + 1, 1), "other");
    txn *t;
    txn_error err = {0};
    char out[512];
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    put_str(t, row_key(TABLE, 2), "b");
    put_str(t, row_key(TABLE, 5), "E");
    key k3 = row_key(TABLE, 3);
    assert_int_equal(txn_delete(t, k3.b, k3.len, &err), TXN_OK);
    put_str(t, row_key(TABLE, 8), "h");
    put_str(t, row_key(TABLE, 0), "z");
    key k0 = row_key(TABLE, 0);
    assert_int_equal(txn_delete(t, k0.b, k0.len, &err), TXN_OK);
    scan_str(t, table_start(TABLE), table_end(TABLE), false, out, sizeof(out));
    assert_string_equal(out, "1=a,2=b,5=E,7=g,8=h");
    scan_str(t, table_start(TABLE), table_end(TABLE), true, out, sizeof(out));
    assert_string_equal(out, "8=h,7=g,5=E,2=b,1=a");
    /* a sub-span [2, 7) */
    scan_str(t, row_key(TABLE, 2), row_key(TABLE, 7), false, out, sizeof(out));
    assert_string_equal(out, "2=b,5=E");
    scan_str(t, row_key(TABLE, 2), row_key(TABLE, 7), true, out, sizeof(out));
    assert_string_equal(out, "5=E,2=b");
    /* a write made while a scan is open shows up beyond the last row */
    txn_iter *it;
    key s = table_start(TABLE), e = table_end(TABLE);
    assert_int_equal(txn_scan(t, s.b, s.len, e.b, e.len, false, &it, &err), TXN_OK);
    const uint8_t *k, *v;
    size_t klen, vlen;
    assert_int_equal(txn_iter_next(it, &k, &klen, &v, &vlen, &err), 1);
    put_str(t, row_key(TABLE, 6), "f");
    int rows = 1;
    while (txn_iter_next(it, &k, &klen, &v, &vlen, &err) == 1) rows++;
    assert_int_equal(rows, 6); /* 1 2 5 6 7 8 */
    txn_iter_close(it);
    txn_rollback(t);
}

static void test_snapshot_isolation(void **state) {
    fixture *f = *state;
    seed(f, row_key(TABLE, 1), "old");
    txn *t1, *t2;
    char v[64];
    assert_int_equal(txn_begin(f->db, NULL, &t1), TXN_OK);
    assert_int_equal(txn_begin(f->db, NULL, &t2), TXN_OK);
    put_str(t2, row_key(TABLE, 1), "new");
    put_str(t2, row_key(TABLE, 2), "new2");
    commit_ok(t2);
    assert_true(get_str(t1, row_key(TABLE, 1), v, sizeof(v)));
    assert_string_equal(v, "old");
    assert_false(get_str(t1, row_key(TABLE, 2), v, sizeof(v)));
    char out[256];
    scan_str(t1, table_start(TABLE), table_end(TABLE), false, out, sizeof(out));
    assert_string_equal(out, "1=old");
    commit_ok(t1); /* read-only in effect: commits */
}

static void test_write_write_conflict(void **state) {
    fixture *f = *state;
    txn *t1, *t2;
    assert_int_equal(txn_begin(f->db, NULL, &t1), TXN_OK);
    assert_int_equal(txn_begin(f->db, NULL, &t2), TXN_OK);
    assert_int_not_equal(txn_id(t1), txn_id(t2));
    put_str(t1, row_key(TABLE, 42), "t1");
    put_str(t2, row_key(TABLE, 42), "t2");
    hlc_timestamp ts2;
    txn_error err = {0};
    assert_int_equal(txn_commit(t2, &ts2, &err), TXN_OK);
    memset(&err, 0, sizeof(err));
    assert_int_equal(txn_commit(t1, NULL, &err), TXN_ERR_RETRY);
    assert_string_equal(err.sqlstate, "40001");
    assert_non_null(strstr(err.message, "restart transaction: write-write conflict on key "
                                        "/104/1/42: another transaction committed at "));
    char ts_text[64];
    hlc_format(ts2, ts_text, sizeof(ts_text));
    assert_non_null(strstr(err.message, ts_text));
    assert_non_null(strstr(err.message, "(SQLSTATE 40001)"));
    /* the winner's value stands */
    txn *t;
    char v[64];
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    assert_true(get_str(t, row_key(TABLE, 42), v, sizeof(v)));
    assert_string_equal(v, "t2");
    txn_rollback(t);
}

static void test_write_skew_aborts_one(void **state) {
    fixture *f = *state;
    seed(f, row_key(TABLE, 1), "on");
    seed(f, row_key(TABLE, 2), "on");
    txn *t1, *t2;
    char v[64];
    assert_int_equal(txn_begin(f->db, NULL, &t1), TXN_OK);
    assert_int_equal(txn_begin(f->db, NULL, &t2), TXN_OK);
    /* each checks that both are on, then turns one off */
    assert_true(get_str(t1, row_key(TABLE, 1), v, sizeof(v)));
    assert_true(get_str(t1, row_key(TABLE, 2), v, sizeof(v)));
    assert_true(get_str(t2, row_key(TABLE, 1), v, sizeof(v)));
    assert_true(get_str(t2, row_key(TABLE, 2), v, sizeof(v)));
    put_str(t1, row_key(TABLE, 1), "off");
    put_str(t2, row_key(TABLE, 2), "off");
    txn_error e1 = {0}, e2 = {0};
    int r1 = txn_commit(t1, NULL, &e1);
    int r2 = txn_commit(t2, NULL, &e2);
    assert_int_equal(r1, TXN_OK);
    assert_int_equal(r2, TXN_ERR_RETRY);
    assert_string_equal(e2.sqlstate, "40001");
    assert_non_null(strstr(e2.message, "read-write conflict on key /104/1/1"));
}

static void test_phantom(void **state) {
    fixture *f = *state;
    seed(f, row_key(TABLE, 1), "a");
    txn *t1, *t2;
    char out[256];
    assert_int_equal(txn_begin(f->db, NULL, &t1), TXN_OK);
    scan_str(t1, table_start(TABLE), table_end(TABLE), false, out, sizeof(out));
    assert_string_equal(out, "1=a");
    put_str(t1, row_key(TABLE + 1, 1), "count=1");
    assert_int_equal(txn_begin(f->db, NULL, &t2), TXN_OK);
    put_str(t2, row_key(TABLE, 9), "i");
    commit_ok(t2);
    txn_error err = {0};
    assert_int_equal(txn_commit(t1, NULL, &err), TXN_ERR_RETRY);
    assert_string_equal(err.sqlstate, "40001");
    assert_non_null(strstr(err.message, "phantom conflict on key /104/1/9"));

    /* A scan stopped early claims only what it returned: an insert beyond it
    ** does not conflict. */
    txn_iter *it;
    key s = table_start(TABLE), e = table_end(TABLE);
    assert_int_equal(txn_begin(f->db, NULL, &t1), TXN_OK);
    assert_int_equal(txn_scan(t1, s.b, s.len, e.b, e.len, false, &it, &err), TXN_OK);
    const uint8_t *k, *v;
    size_t klen, vlen;
    assert_int_equal(txn_iter_next(it, &k, &klen, &v, &vlen, &err), 1); /* row 1 */
    txn_iter_close(it);
    put_str(t1, row_key(TABLE + 1, 2), "x");
    assert_int_equal(txn_begin(f->db, NULL, &t2), TXN_OK);
    put_str(t2, row_key(TABLE, 5), "beyond");
    commit_ok(t2);
    commit_ok(t1);
}

static void test_read_only_never_aborts(void **state) {
    fixture *f = *state;
    seed(f, row_key(TABLE, 1), "v1");
    txn *ro, *w;
    txn_options ro_opts = {.read_only = true};
    char v[64];
    assert_int_equal(txn_begin(f->db, &ro_opts, &ro), TXN_OK);
    assert_true(get_str(ro, row_key(TABLE, 1), v, sizeof(v)));
    txn_error err = {0};
    key k = row_key(TABLE, 1);
    assert_int_equal(txn_put(ro, k.b, k.len, (const uint8_t *)"x", 1, &err), TXN_ERR_READ_ONLY);
    assert_string_equal(err.sqlstate, "25006");
    for (int i = 0; i < 5; i++) {
        assert_int_equal(txn_begin(f->db, NULL, &w), TXN_OK);
        put_str(w, row_key(TABLE, 1), "v2");
        put_str(w, row_key(TABLE, 2), "new");
        commit_ok(w);
    }
    assert_true(get_str(ro, row_key(TABLE, 1), v, sizeof(v)));
    assert_string_equal(v, "v1");
    char out[128];
    scan_str(ro, table_start(TABLE), table_end(TABLE), false, out, sizeof(out));
    assert_string_equal(out, "1=v1");
    hlc_timestamp ts;
    memset(&err, 0, sizeof(err));
    hlc_timestamp rts = txn_read_timestamp(ro);
    assert_int_equal(txn_commit(ro, &ts, &err), TXN_OK);
    assert_int_equal(hlc_compare(ts, rts), 0);
}

static void test_savepoints(void **state) {
    fixture *f = *state;
    seed(f, row_key(TABLE, 1), "committed");
    txn *t;
    char v[64], out[256];
    uint32_t sp1, sp2, sp3;
    txn_error err = {0};
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    put_str(t, row_key(TABLE, 1), "a");
    assert_int_equal(txn_savepoint(t, &sp1), TXN_OK);
    put_str(t, row_key(TABLE, 1), "b");
    put_str(t, row_key(TABLE, 2), "new");
    assert_int_equal(txn_savepoint(t, &sp2), TXN_OK);
    assert_true(sp2 != sp1);
    key k1 = row_key(TABLE, 1);
    assert_int_equal(txn_delete(t, k1.b, k1.len, &err), TXN_OK);
    put_str(t, row_key(TABLE, 3), "three");
    assert_false(get_str(t, row_key(TABLE, 1), v, sizeof(v)));
    assert_int_equal(txn_rollback_to(t, sp2), TXN_OK);
    assert_true(get_str(t, row_key(TABLE, 1), v, sizeof(v)));
    assert_string_equal(v, "b");
    assert_false(get_str(t, row_key(TABLE, 3), v, sizeof(v)));
    scan_str(t, table_start(TABLE), table_end(TABLE), false, out, sizeof(out));
    assert_string_equal(out, "1=b,2=new");
    /* sp2 survives its rollback; roll back further to sp1 */
    put_str(t, row_key(TABLE, 4), "four");
    assert_int_equal(txn_rollback_to(t, sp1), TXN_OK);
    assert_int_equal(txn_rollback_to(t, sp2), TXN_ERR_INVALID); /* dropped */
    assert_true(get_str(t, row_key(TABLE, 1), v, sizeof(v)));
    assert_string_equal(v, "a");
    scan_str(t, table_start(TABLE), table_end(TABLE), true, out, sizeof(out));
    assert_string_equal(out, "1=a");
    /* release keeps the writes */
    assert_int_equal(txn_savepoint(t, &sp3), TXN_OK);
    put_str(t, row_key(TABLE, 5), "five");
    assert_int_equal(txn_release(t, sp3), TXN_OK);
    assert_int_equal(txn_release(t, sp1), TXN_OK);
    assert_int_equal(txn_release(t, sp1), TXN_ERR_INVALID);
    /* savepoint + delete_range + rollback restores the rows */
    uint32_t sp4;
    assert_int_equal(txn_savepoint(t, &sp4), TXN_OK);
    key s = table_start(TABLE), e = table_end(TABLE);
    assert_int_equal(txn_delete_range(t, s.b, s.len, e.b, e.len, &err), TXN_OK);
    scan_str(t, s, e, false, out, sizeof(out));
    assert_string_equal(out, "");
    assert_int_equal(txn_rollback_to(t, sp4), TXN_OK);
    scan_str(t, s, e, false, out, sizeof(out));
    assert_string_equal(out, "1=a,5=five");
    commit_ok(t);
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    scan_str(t, s, e, false, out, sizeof(out));
    assert_string_equal(out, "1=a,5=five");
    txn_rollback(t);
}

static void test_delete_range(void **state) {
    fixture *f = *state;
    for (int i = 1; i <= 5; i++) seed(f, row_key(TABLE, i), "r");
    seed(f, row_key(TABLE + 1, 1), "keep");
    key s = table_start(TABLE), e = table_end(TABLE);
    txn *t;
    char v[64], out[256];
    txn_error err = {0};
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    put_str(t, row_key(TABLE, 9), "buffered");
    assert_int_equal(txn_delete_range(t, s.b, s.len, e.b, e.len, &err), TXN_OK);
    assert_false(get_str(t, row_key(TABLE, 3), v, sizeof(v)));
    assert_false(get_str(t, row_key(TABLE, 9), v, sizeof(v)));
    scan_str(t, s, e, false, out, sizeof(out));
    assert_string_equal(out, "");
    put_str(t, row_key(TABLE, 2), "after");
    scan_str(t, s, e, true, out, sizeof(out));
    assert_string_equal(out, "2=after");
    commit_ok(t);

    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    scan_str(t, s, e, false, out, sizeof(out));
    assert_string_equal(out, "2=after");
    assert_true(get_str(t, row_key(TABLE + 1, 1), v, sizeof(v)));
    assert_string_equal(v, "keep");
    txn_rollback(t);

    /* the span counts as written: a concurrent insert into it conflicts */
    txn *t2;
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    assert_int_equal(txn_delete_range(t, s.b, s.len, e.b, e.len, &err), TXN_OK);
    assert_int_equal(txn_begin(f->db, NULL, &t2), TXN_OK);
    put_str(t2, row_key(TABLE, 7), "late");
    commit_ok(t2);
    memset(&err, 0, sizeof(err));
    assert_int_equal(txn_commit(t, NULL, &err), TXN_ERR_RETRY);
    assert_non_null(strstr(err.message, "write-write conflict on key /104/1/7"));
}

static void test_txn_ids_unique(void **state) {
    fixture *f = *state;
    enum { N = 200 };
    txn *ts[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(txn_begin(f->db, NULL, &ts[i]), TXN_OK);
        for (int j = 0; j < i; j++) assert_true(txn_id(ts[i]) != txn_id(ts[j]));
        if (i > 0) assert_true(hlc_less(txn_read_timestamp(ts[i - 1]), txn_read_timestamp(ts[i])));
    }
    for (int i = 0; i < N; i++) txn_rollback(ts[i]);
}

/* A restarted node (a new txn_db, the same clock reading) draws new ids:
** the servers' idempotence records are keyed by (txn_id, nonce), and a
** router with a configured seed repeats its nonces, so ids restarting at 1
** would have a new commit answered from an old record (seed 309). */
static void test_txn_ids_unique_across_restarts(void **state) {
    fixture *f = *state;
    enum { RESTARTS = 8, PER_DB = 4 };
    uint64_t ids[RESTARTS * PER_DB];
    size_t n = 0;
    for (int r = 0; r < RESTARTS; r++) {
        if (r > 0) {
            close_db(f);
            open_db(f, NULL); /* the manual clock starts at the same instant */
        }
        for (int i = 0; i < PER_DB; i++) {
            txn *t;
            assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
            ids[n] = txn_id(t);
            assert_true(ids[n] != 0);
            for (size_t j = 0; j < n; j++) assert_true(ids[j] != ids[n]);
            n++;
            txn_rollback(t);
        }
    }
}

static void test_errors_and_limits(void **state) {
    fixture *f = *state;
    txn *t;
    txn_error err = {0};
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    assert_int_equal(txn_put(t, (const uint8_t *)"", 0, (const uint8_t *)"v", 1, &err),
                     TXN_ERR_INVALID);
    static uint8_t big_key[STORAGE_KEY_SIZE_MAX + 1];
    memset(&err, 0, sizeof(err));
    assert_int_equal(txn_put(t, big_key, sizeof(big_key), (const uint8_t *)"v", 1, &err),
                     TXN_ERR_INVALID);
    assert_string_equal(err.sqlstate, "54000");
    /* write-set limit: values of an eighth of it each, the 8th crosses it
    ** (keys and per-row overhead count too) */
    size_t vlen = TXN_WRITE_SET_BYTES_MAX / 8;
    uint8_t *val = calloc(1, vlen);
    int rc = TXN_OK, i;
    for (i = 0; i < 16 && rc == TXN_OK; i++) {
        key k = row_key(TABLE, i);
        memset(&err, 0, sizeof(err));
        rc = txn_put(t, k.b, k.len, val, vlen, &err);
    }
    free(val);
    assert_int_equal(rc, TXN_ERR_LIMIT);
    assert_int_equal(i, 8);
    assert_string_equal(err.sqlstate, "54000");
    /* the txn stays usable: overwrite a big value with a small one */
    put_str(t, row_key(TABLE, 0), "small");
    put_str(t, row_key(TABLE, 100), "fits now");
    /* an iterator left open at commit is detached */
    txn_iter *it;
    key s = table_start(TABLE), e = table_end(TABLE);
    assert_int_equal(txn_scan(t, s.b, s.len, e.b, e.len, false, &it, &err), TXN_OK);
    txn_rollback(t);
    const uint8_t *k, *v;
    size_t klen, vlen2;
    memset(&err, 0, sizeof(err));
    assert_int_equal(txn_iter_next(it, &k, &klen, &v, &vlen2, &err), TXN_ERR_DONE);
    txn_iter_close(it);
    /* read-set limit (bytes of keys read): reads go on; commit fails only if
    ** the txn also wrote */
    size_t klen_big = 60 * 1024;
    uint8_t *bk = calloc(1, klen_big);
    for (int with_write = 0; with_write < 2; with_write++) {
        assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
        base_buf out = {0};
        for (int r = 0; r < 1200; r++) {
            memcpy(bk, &r, sizeof(r));
            memset(&err, 0, sizeof(err));
            assert_int_equal(txn_get(t, bk, klen_big, &out, &err), TXN_NOT_FOUND);
        }
        base_buf_free(&out);
        if (with_write) put_str(t, row_key(TABLE, 1), "w");
        memset(&err, 0, sizeof(err));
        rc = txn_commit(t, NULL, &err);
        if (with_write) {
            assert_int_equal(rc, TXN_ERR_LIMIT);
            assert_string_equal(err.sqlstate, "54000");
        } else {
            assert_int_equal(rc, TXN_OK);
        }
    }
    free(bk);
    /* txn_error_set keeps an error already set, fills an empty one */
    txn_error e1 = {0};
    txn_error_set(&e1, TXN_ERR_RETRY);
    assert_string_equal(e1.sqlstate, "40001");
    txn_error_set(&e1, TXN_ERR_IO);
    assert_string_equal(e1.sqlstate, "40001");
}

/* Out-of-memory at every allocation in turn: every call fails cleanly (an
** error code, never a crash), nothing leaks (ASan), and the store stays
** consistent: a commit either happened entirely or not at all. */
typedef struct oom_keys {
    key k1, k2, k3, s, e;
} oom_keys;

static int oom_scenario(txn_db *db, const oom_keys *keys, int64_t round) {
    txn *t = NULL;
    txn_error err = {0};
    int rc = txn_begin(db, NULL, &t);
    if (rc != TXN_OK) return rc;
    base_buf b = {0};
    key k1 = keys->k1, k2 = keys->k2, k3 = keys->k3, s = keys->s, e = keys->e;
    uint32_t sp;
    txn_iter *it = NULL;
#define STEP(call)                                                                            \
    do {                                                                                      \
        rc = (call);                                                                          \
        if (rc < 0) goto out;                                                                 \
    } while (0)
    STEP(txn_get(t, k1.b, k1.len, &b, &err));
    STEP(txn_put(t, k1.b, k1.len, (const uint8_t *)&round, sizeof(round), &err));
    STEP(txn_savepoint(t, &sp));
    STEP(txn_put(t, k2.b, k2.len, (const uint8_t *)&round, sizeof(round), &err));
    STEP(txn_delete(t, k3.b, k3.len, &err));
    STEP(txn_rollback_to(t, sp));
    STEP(txn_put(t, k2.b, k2.len, (const uint8_t *)&round, sizeof(round), &err));
    STEP(txn_scan(t, s.b, s.len, e.b, e.len, false, &it, &err));
    for (int i = 0; i < 10; i++) {
        const uint8_t *k, *v;
        size_t klen, vlen;
        STEP(txn_iter_next(it, &k, &klen, &v, &vlen, &err));
        if (rc == 0) break;
    }
    txn_iter_close(it);
    it = NULL;
    STEP(txn_release(t, sp));
    base_buf_free(&b);
    rc = txn_commit(t, NULL, &err);
    return rc;
#undef STEP
out:
    txn_iter_close(it);
    base_buf_free(&b);
    txn_rollback(t);
    return rc;
}

static void test_out_of_memory(void **state) {
    fixture *f = *state;
    int failures = 0;
    long n;
    oom_keys keys = {row_key(TABLE, 1), row_key(TABLE, 2), row_key(TABLE, 3), table_start(TABLE),
                     table_end(TABLE)};
    for (n = 0; n < 2000; n++) {
        base_alloc_fail_after(n);
        int rc = oom_scenario(f->db, &keys, n + 1);
        base_alloc_fail_after(-1);
        if (rc == TXN_OK) break; /* got through without hitting the limit */
        failures++;
        assert_true(rc == TXN_ERR_NOMEM || rc == TXN_ERR_IO);
        /* consistent: keys 1 and 2 hold the same round (or are both absent) */
        txn *t;
        txn_error err = {0};
        assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
        int64_t a = -1, b = -1;
        int ra = get_int(t, row_key(TABLE, 1), &a, &err);
        int rb = get_int(t, row_key(TABLE, 2), &b, &err);
        assert_int_equal(ra, rb);
        if (ra == TXN_OK) assert_int_equal(a, b);
        txn_rollback(t);
    }
    assert_true(n < 2000);
    assert_true(failures > 10);
}

/* Randomized model check of one transaction at a time against a plain array:
** puts, deletes, delete ranges, savepoints (rollback/release), gets and
** forward/reverse scans of random sub-spans, then commit and compare what a
** new transaction sees. The seed is printed on failure. */
#define MODEL_KEYS 24
#define MODEL_TXNS 150
#define MODEL_OPS 60
#define MODEL_SP_MAX 8

typedef struct model_state {
    bool present[MODEL_KEYS];
    char value[MODEL_KEYS][12];
} model_state;

static void model_scan_expect(const model_state *m, int a, int b, bool reverse, char *out,
                              size_t out_size) {
    size_t pos = 0;
    out[0] = '\0';
    for (int j = 0; j < b - a; j++) {
        int i = reverse ? b - 1 - j : a + j;
        if (!m->present[i]) continue;
        pos += (size_t)snprintf(out + pos, out_size - pos, "%s%d=%s", pos ? "," : "", i,
                                m->value[i]);
    }
}

static void test_random_model(void **state) {
    fixture *f = *state;
    unsigned seed = 20261122;
    const char *env = getenv("MERIDIAN_SEED");
    if (env != NULL) seed = (unsigned)strtoul(env, NULL, 10);
    unsigned start_seed = seed;
    model_state committed;
    memset(&committed, 0, sizeof(committed));
    char got[2048], want[2048], v[64];
    for (int tn = 0; tn < MODEL_TXNS; tn++) {
        txn *t;
        txn_error err = {0};
        assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
        model_state view = committed;
        model_state saved[MODEL_SP_MAX];
        uint32_t sp_ids[MODEL_SP_MAX];
        int sp_count = 0;
        for (int op = 0; op < MODEL_OPS; op++) {
            int kind = rand_r(&seed) % 10;
            int a = rand_r(&seed) % MODEL_KEYS;
            int b = a + rand_r(&seed) % (MODEL_KEYS - a + 1);
            key ka = row_key(TABLE, a), kb = row_key(TABLE, b);
            if (kind <= 2) {
                snprintf(view.value[a], sizeof(view.value[a]), "t%do%d", tn, op);
                view.present[a] = true;
                put_str(t, ka, view.value[a]);
            } else if (kind == 3) {
                view.present[a] = false;
                assert_int_equal(txn_delete(t, ka.b, ka.len, &err), TXN_OK);
            } else if (kind == 4 && rand_r(&seed) % 3 == 0) {
                for (int i = a; i < b; i++) view.present[i] = false;
                assert_int_equal(txn_delete_range(t, ka.b, ka.len, kb.b, kb.len, &err), TXN_OK);
            } else if (kind == 5 && sp_count < MODEL_SP_MAX) {
                assert_int_equal(txn_savepoint(t, &sp_ids[sp_count]), TXN_OK);
                saved[sp_count++] = view;
            } else if (kind == 6 && sp_count > 0) {
                int which = rand_r(&seed) % sp_count;
                if (rand_r(&seed) % 2) {
                    assert_int_equal(txn_rollback_to(t, sp_ids[which]), TXN_OK);
                    view = saved[which];
                    sp_count = which + 1;
                } else {
                    assert_int_equal(txn_release(t, sp_ids[which]), TXN_OK);
                    sp_count = which;
                }
            } else if (kind == 7) {
                int found = get_str(t, ka, v, sizeof(v));
                if (found != view.present[a] || (found && strcmp(v, view.value[a]) != 0))
                    fail_msg("seed %u txn %d op %d: get %d: got %d '%s', want %d '%s'",
                             start_seed, tn, op, a, found, found ? v : "", view.present[a],
                             view.value[a]);
            } else {
                bool reverse = kind == 9;
                scan_str(t, ka, kb, reverse, got, sizeof(got));
                model_scan_expect(&view, a, b, reverse, want, sizeof(want));
                if (strcmp(got, want) != 0)
                    fail_msg("seed %u txn %d op %d: scan [%d,%d) %s: got '%s', want '%s'",
                             start_seed, tn, op, a, b, reverse ? "reverse" : "forward", got,
                             want);
            }
        }
        if (rand_r(&seed) % 4 == 0) {
            txn_rollback(t);
        } else {
            commit_ok(t);
            committed = view;
        }
        assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
        key s = table_start(TABLE), e = table_end(TABLE);
        scan_str(t, s, e, false, got, sizeof(got));
        model_scan_expect(&committed, 0, MODEL_KEYS, false, want, sizeof(want));
        if (strcmp(got, want) != 0)
            fail_msg("seed %u after txn %d: got '%s', want '%s'", start_seed, tn, got, want);
        txn_rollback(t);
    }
}

/* ---- concurrency ---------------------------------------------------------- */

#define ACCOUNTS 10
#define ACCOUNT_START 100
#define BANK_THREADS 4
#define BANK_TRANSFERS 300
#define BANK_READERS 2

typedef struct bank {
    txn_db *db;
    int writers_done; /* guarded by mu */
    pthread_mutex_t mu;
    long retries;
    long snapshots_checked;
    int bad_snapshots;
    int failures;
    unsigned seed_base;
} bank;

static int bank_writers_done(bank *b) {
    pthread_mutex_lock(&b->mu);
    int d = b->writers_done;
    pthread_mutex_unlock(&b->mu);
    return d;
}

static void *bank_writer(void *arg) {
    bank *b = arg;
    unsigned seed;
    pthread_mutex_lock(&b->mu);
    seed = b->seed_base++;
    pthread_mutex_unlock(&b->mu);
    long retries = 0;
    int failures = 0;
    for (int n = 0; n < BANK_TRANSFERS; n++) {
        int from = rand_r(&seed) % ACCOUNTS, to = rand_r(&seed) % ACCOUNTS;
        if (to == from) to = (to + 1) % ACCOUNTS;
        int64_t amount = rand_r(&seed) % 20 + 1;
        int attempt;
        for (attempt = 0; attempt < RETRIES_MAX; attempt++) {
            txn *t;
            txn_error err = {0};
            if (txn_begin(b->db, NULL, &t) != TXN_OK) {
                failures++;
                break;
            }
            int64_t fb = 0, tb = 0;
            key fk = row_key(TABLE, from), tk = row_key(TABLE, to);
            int rc = get_int(t, fk, &fb, &err);
            if (rc == TXN_OK) rc = get_int(t, tk, &tb, &err);
            if (rc != TXN_OK) {
                failures++;
                txn_rollback(t);
                break;
            }
            fb -= amount;
            tb += amount;
            rc = txn_put(t, fk.b, fk.len, (const uint8_t *)&fb, sizeof(fb), &err);
            if (rc == TXN_OK) rc = txn_put(t, tk.b, tk.len, (const uint8_t *)&tb, sizeof(tb), &err);
            if (rc != TXN_OK) {
                failures++;
                txn_rollback(t);
                break;
            }
            rc = txn_commit(t, NULL, &err);
            if (rc == TXN_OK) break;
            if (rc != TXN_ERR_RETRY || strcmp(err.sqlstate, "40001") != 0) {
                failures++;
                break;
            }
            retries++;
        }
        if (attempt == RETRIES_MAX) failures++;
    }
    pthread_mutex_lock(&b->mu);
    b->retries += retries;
    b->failures += failures;
    b->writers_done++;
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static int64_t bank_total(txn *t, int *rows) {
    txn_iter *it;
    txn_error err = {0};
    key s = table_start(TABLE), e = table_end(TABLE);
    int64_t total = 0;
    *rows = 0;
    assert_int_equal(txn_scan(t, s.b, s.len, e.b, e.len, false, &it, &err), TXN_OK);
    for (int guard = 0; guard < 1000; guard++) {
        const uint8_t *k, *v;
        size_t klen, vlen;
        int n = txn_iter_next(it, &k, &klen, &v, &vlen, &err);
        if (n <= 0) break;
        int64_t x;
        memcpy(&x, v, sizeof(x));
        total += x;
        (*rows)++;
    }
    txn_iter_close(it);
    return total;
}

static void *bank_reader(void *arg) {
    bank *b = arg;
    long checked = 0;
    int bad = 0;
    /* bounded: stops when the writers are done, or after a cap */
    for (int i = 0; i < 100000 && bank_writers_done(b) < BANK_THREADS; i++) {
        txn *t;
        txn_options ro = {.read_only = true};
        if (txn_begin(b->db, &ro, &t) != TXN_OK) {
            bad++;
            break;
        }
        int rows;
        int64_t total = bank_total(t, &rows);
        /* and point reads in the same snapshot agree */
        int64_t sum = 0;
        for (int a = 0; a < ACCOUNTS; a++) {
            int64_t x = 0;
            txn_error err = {0};
            if (get_int(t, row_key(TABLE, a), &x, &err) != TXN_OK) bad++;
            sum += x;
        }
        if (total != ACCOUNTS * ACCOUNT_START || rows != ACCOUNTS || sum != total) bad++;
        txn_error err = {0};
        if (txn_commit(t, NULL, &err) != TXN_OK) bad++;
        checked++;
    }
    pthread_mutex_lock(&b->mu);
    b->snapshots_checked += checked;
    b->bad_snapshots += bad;
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void run_bank(fixture *f) {
    txn *t;
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    for (int a = 0; a < ACCOUNTS; a++) put_int(t, row_key(TABLE, a), ACCOUNT_START);
    commit_ok(t);

    bank b;
    memset(&b, 0, sizeof(b));
    b.db = f->db;
    b.seed_base = 12345;
    pthread_mutex_init(&b.mu, NULL);
    pthread_t w[BANK_THREADS], r[BANK_READERS];
    for (int i = 0; i < BANK_THREADS; i++) assert_int_equal(pthread_create(&w[i], NULL, bank_writer, &b), 0);
    for (int i = 0; i < BANK_READERS; i++) assert_int_equal(pthread_create(&r[i], NULL, bank_reader, &b), 0);
    for (int i = 0; i < BANK_THREADS; i++) pthread_join(w[i], NULL);
    for (int i = 0; i < BANK_READERS; i++) pthread_join(r[i], NULL);
    pthread_mutex_destroy(&b.mu);
    print_message("bank: %d transfers, %ld retries, %ld snapshots checked\n",
                  BANK_THREADS * BANK_TRANSFERS, b.retries, b.snapshots_checked);
    assert_int_equal(b.failures, 0);
    assert_int_equal(b.bad_snapshots, 0);

    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    int rows;
    assert_int_equal(bank_total(t, &rows), ACCOUNTS * ACCOUNT_START);
    assert_int_equal(rows, ACCOUNTS);
    txn_rollback(t);
}

static void test_bank(void **state) { run_bank(*state); }

/* Visibility hazard: while writers commit to one hot key, a reader's two
** reads of it in one txn agree (no commit with ts <= read_ts lands between
** them), and the reader never sees a value older than one it saw before in
** an earlier txn (commits are visible in timestamp order). */
#define HAZARD_WRITERS 3
#define HAZARD_COMMITS 400
#define HAZARD_READERS 2

typedef struct hazard {
    txn_db *db;
    pthread_mutex_t mu;
    int writers_done;
    int mismatches;
    int regressions;
    long reads;
} hazard;

static void *hazard_writer(void *arg) {
    hazard *h = arg;
    for (int n = 0; n < HAZARD_COMMITS; n++) {
        for (int attempt = 0; attempt < RETRIES_MAX; attempt++) {
            txn *t;
            txn_error err = {0};
            if (txn_begin(h->db, NULL, &t) != TXN_OK) break;
            int64_t x = 0;
            key k = row_key(TABLE, 1);
            int rc = get_int(t, k, &x, &err);
            if (rc != TXN_OK && rc != TXN_NOT_FOUND) {
                txn_rollback(t);
                break;
            }
            x++;
            put_int(t, k, x);
            if (txn_commit(t, NULL, &err) == TXN_OK) break;
        }
    }
    pthread_mutex_lock(&h->mu);
    h->writers_done++;
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static void *hazard_reader(void *arg) {
    hazard *h = arg;
    int64_t seen_max = 0;
    long reads = 0;
    int mismatches = 0, regressions = 0;
    for (int i = 0; i < 200000; i++) {
        pthread_mutex_lock(&h->mu);
        int done = h->writers_done;
        pthread_mutex_unlock(&h->mu);
        if (done == HAZARD_WRITERS) break;
        txn *t;
        txn_options ro = {.read_only = true};
        if (txn_begin(h->db, &ro, &t) != TXN_OK) break;
        int64_t a = 0, b = 0;
        txn_error err = {0};
        get_int(t, row_key(TABLE, 1), &a, &err);
        get_int(t, row_key(TABLE, 1), &b, &err);
        if (a != b) mismatches++;
        if (a < seen_max) regressions++;
        if (a > seen_max) seen_max = a;
        txn_rollback(t);
        reads++;
    }
    pthread_mutex_lock(&h->mu);
    h->reads += reads;
    h->mismatches += mismatches;
    h->regressions += regressions;
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static void test_visibility_hazard(void **state) {
    fixture *f = *state;
    hazard h;
    memset(&h, 0, sizeof(h));
    h.db = f->db;
    pthread_mutex_init(&h.mu, NULL);
    pthread_t w[HAZARD_WRITERS], r[HAZARD_READERS];
    for (int i = 0; i < HAZARD_WRITERS; i++) assert_int_equal(pthread_create(&w[i], NULL, hazard_writer, &h), 0);
    for (int i = 0; i < HAZARD_READERS; i++) assert_int_equal(pthread_create(&r[i], NULL, hazard_reader, &h), 0);
    for (int i = 0; i < HAZARD_WRITERS; i++) pthread_join(w[i], NULL);
    for (int i = 0; i < HAZARD_READERS; i++) pthread_join(r[i], NULL);
    pthread_mutex_destroy(&h.mu);
    assert_int_equal(h.mismatches, 0);
    assert_int_equal(h.regressions, 0);
    txn *t;
    int64_t x = 0;
    txn_error err = {0};
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    assert_int_equal(get_int(t, row_key(TABLE, 1), &x, &err), TXN_OK);
    assert_int_equal(x, HAZARD_WRITERS * HAZARD_COMMITS); /* no lost update */
    txn_rollback(t);
}

/* ---- RocksDB --------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* AS OF SYSTEM TIME on a single node (docs/txn.md section 8): a txn at a past
** timestamp reads the store as it was then (the local store serves it:
** there are no followers), is read-only (25006 naming AS OF SYSTEM TIME),
** commits without sending anything; a timestamp above now is refused. */
static void test_as_of(void **state) {
    fixture *f = *state;
    seed(f, row_key(TABLE, 1), "old");
    hlc_timestamp between = hlc_now(f->clock);
    f->manual.now_ns += 1000000000LL;
    txn *t;
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    put_str(t, row_key(TABLE, 1), "new");
    put_str(t, row_key(TABLE, 2), "two");
    commit_ok(t);
    txn_options o = {.as_of = between};
    assert_int_equal(txn_begin(f->db, &o, &t), TXN_OK);
    assert_true(txn_is_stale(t));
    assert_int_equal(hlc_compare(txn_read_timestamp(t), between), 0);
    char v[64], out[256];
    assert_true(get_str(t, row_key(TABLE, 1), v, sizeof(v)));
    assert_string_equal(v, "old");
    assert_false(get_str(t, row_key(TABLE, 2), v, sizeof(v)));
    scan_str(t, table_start(TABLE), table_end(TABLE), false, out, sizeof(out));
    assert_string_equal(out, "1=old");
    txn_error err = {0};
    assert_int_equal(txn_put(t, row_key(TABLE, 3).b, row_key(TABLE, 3).len,
                             (const uint8_t *)"x", 1, &err),
                     TXN_ERR_READ_ONLY);
    assert_string_equal(err.sqlstate, "25006");
    assert_non_null(strstr(err.message, "AS OF SYSTEM TIME"));
    txn_db_stats before, after;
    txn_db_get_stats(f->db, &before);
    hlc_timestamp cts = HLC_ZERO;
    assert_int_equal(txn_commit(t, &cts, &err), TXN_OK);
    assert_int_equal(hlc_compare(cts, between), 0);
    txn_db_get_stats(f->db, &after);
    assert_int_equal(after.commits, before.commits); /* nothing was committed */
    assert_true(after.stale_txns >= 1);
    /* now is the newest allowed; above it, refused */
    o.as_of = hlc_now(f->clock);
    assert_int_equal(txn_begin(f->db, &o, &t), TXN_OK);
    assert_true(get_str(t, row_key(TABLE, 2), v, sizeof(v)));
    txn_rollback(t);
    o.as_of = hlc_add_ns(hlc_now(f->clock), 1000000000LL);
    t = NULL;
    assert_int_equal(txn_begin(f->db, &o, &t), TXN_ERR_FUTURE);
    assert_null(t);
    memset(&err, 0, sizeof(err));
    txn_error_set(&err, TXN_ERR_FUTURE);
    assert_string_equal(err.sqlstate, "22008");
    o.as_of = (hlc_timestamp){-1, 0};
    assert_int_equal(txn_begin(f->db, &o, &t), TXN_ERR_INVALID);
}

static void test_rocksdb_commit_survives_reopen(void **state) {
    (void)state;
    fixture f;
    memset(&f, 0, sizeof(f));
    snprintf(f.dir, sizeof(f.dir), "/tmp/meridian-txn-test-XXXXXX");
    assert_non_null(mkdtemp(f.dir));
    open_db(&f, f.dir);
    txn *t;
    assert_int_equal(txn_begin(f.db, NULL, &t), TXN_OK);
    put_str(t, row_key(TABLE, 1), "durable");
    put_str(t, row_key(TABLE, 2), "two");
    commit_ok(t);
    /* a conflict on RocksDB too */
    txn *t1, *t2;
    assert_int_equal(txn_begin(f.db, NULL, &t1), TXN_OK);
    assert_int_equal(txn_begin(f.db, NULL, &t2), TXN_OK);
    put_str(t1, row_key(TABLE, 2), "t1");
    put_str(t2, row_key(TABLE, 2), "t2");
    commit_ok(t1);
    txn_error err = {0};
    assert_int_equal(txn_commit(t2, NULL, &err), TXN_ERR_RETRY);
    close_db(&f);

    open_db(&f, f.dir);
    char out[128];
    assert_int_equal(txn_begin(f.db, NULL, &t), TXN_OK);
    scan_str(t, table_start(TABLE), table_end(TABLE), false, out, sizeof(out));
    assert_string_equal(out, "1=durable,2=t1");
    txn_rollback(t);
    close_db(&f);
    nftw(f.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_your_writes_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_merges_own_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_write_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_skew_aborts_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_phantom, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_never_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_savepoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_ids_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_ids_unique_across_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bank, setup, teardown),
        cmocka_unit_test_setup_teardown(test_visibility_hazard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_as_of, setup, teardown),
        cmocka_unit_test(test_rocksdb_commit_survives_reopen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
