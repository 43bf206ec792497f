/*
** tests/txn/test_txn_lock.c: statement-time locks and read refresh at the
** coordinator (docs/txn.md section 5) against a fake range_kv: a local
** range_store for data, and lock / refresh / heartbeat / end_txn / resolve
** that record every call (as text) and answer what the test injects:
**   - a txn that never locks makes no lock, heartbeat or resolve call (the
**     fast path costs nothing), and neither does a read-only one in
**     locking mode;
**   - a locking get locks its key once (a key of the write buffer not at
**     all), commits under the lock holder's id, and the commit releases
**     the locks of the keys it did not write;
**   - a lock that finds a version above the read timestamp refreshes the
**     reads so far and moves the read timestamp: the get sees the newest
**     value and the commit does not conflict;
**   - a refresh that fails is 40001 naming the key; the txn is aborted and
**     its rollback releases its locks;
**   - a locking scan locks batches, refreshes, and reads the batch again
**     at the new timestamp;
**   - a lock answered RANGE_ERR_ABORTED (a deadlock victim) is 40001 with
**     the key space's detail;
**   - the heartbeat thread creates the record of a txn that lives past
**     RANGE_TXN_HEARTBEAT_MS; a heartbeat that finds it ABORTED fails the
**     next lock with 40001; the end of a txn with a record ends it.
** Every wait is bounded (txn_db_wait_resolved, a condition with a limit).
*/
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "range/range.h"
#include "txn/txn.h"

#define CALLS_MAX 64
#define CALL_TEXT_MAX 96
#define WAIT_MS 10000

typedef struct fake_kv {
    range_kv kv; /* first member */
    range_kv *inner;
    pthread_mutex_t mu; /* the resolver and heartbeat threads call in */
    pthread_cond_t cv;  /* a heartbeat came */
    /* injected answers */
    char newest_key[16];      /* a lock of this key answers newest_ts */
    hlc_timestamp newest_ts;
    int lock_rc;
    int refresh_rc;           /* RANGE_ERR_CONFLICT: on key "zz" */
    int heartbeat_rc;         /* RANGE_ERR_ABORTED: the record is ABORTED */
    /* what happened */
    char calls[CALLS_MAX][CALL_TEXT_MAX];
    int n_calls;
    int heartbeats;
    uint64_t lock_txn_id;     /* of the last lock */
    uint64_t commit_txn_id;   /* of the last commit */
    hlc_timestamp refresh_from, refresh_to;
} fake_kv;

static void note(fake_kv *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(fake_kv *f, const char *fmt, ...) {
    pthread_mutex_lock(&f->mu);
    if (f->n_calls < CALLS_MAX) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->calls[f->n_calls++], CALL_TEXT_MAX, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&f->mu);
}

static int f_wait(range_kv *kv, hlc_timestamp ts) {
    fake_kv *f = (fake_kv *)kv;
    return f->inner->ops->wait_visible(f->inner, ts);
}
static int f_get(range_kv *kv, const uint8_t *k, size_t kl, hlc_timestamp ts, base_buf *out) {
    fake_kv *f = (fake_kv *)kv;
    return f->inner->ops->get(f->inner, k, kl, ts, out);
}
static int f_iter_open(range_kv *kv, const uint8_t *s, size_t sl, const uint8_t *e, size_t el,
                       hlc_timestamp ts, bool reverse, range_kv_iter **out) {
    fake_kv *f = (fake_kv *)kv;
    return f->inner->ops->iter_open(f->inner, s, sl, e, el, ts, reverse, out);
}
static const range_kv_ops *inner_ops; /* iterators are the inner store's own */
static int f_iter_next(range_kv_iter *it, const uint8_t **k, size_t *kl, const uint8_t **v,
                       size_t *vl) {
    return inner_ops->iter_next(it, k, kl, v, vl);
}
static void f_iter_close(range_kv_iter *it) { inner_ops->iter_close(it); }
static int f_commit(range_kv *kv, const range_commit_request *req, hlc_timestamp *ts,
                    range_conflict *c) {
    fake_kv *f = (fake_kv *)kv;
    pthread_mutex_lock(&f->mu);
    f->commit_txn_id = req->txn_id;
    pthread_mutex_unlock(&f->mu);
    return f->inner->ops->commit(f->inner, req, ts, c);
}
static void f_stats(range_kv *kv, range_stats *out) {
    fake_kv *f = (fake_kv *)kv;
    f->inner->ops->stats(f->inner, out);
}
static bool f_last_error(range_kv *kv, char *buf, size_t size) {
    (void)kv;
    snprintf(buf, size, "injected: deadlock cycle t1 -> t2 -> t1");
    return true;
}

/* "a-b,c-d": spans as text (the end without its last byte: [k, k + 0x00)) */
static void spans_text(const range_span *spans, size_t n, char *out, size_t size) {
    size_t pos = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && pos < size; i++) {
        if (spans[i].point)
            pos += (size_t)snprintf(out + pos, size - pos, "%s%.*s", i ? "," : "",
                                    (int)spans[i].start_len, (const char *)spans[i].start);
        else
            pos += (size_t)snprintf(out + pos, size - pos, "%s%.*s-%.*s", i ? "," : "",
                                    (int)spans[i].start_len, (const char *)spans[i].start,
                                    (int)(spans[i].end_len ? spans[i].end_len - 1 : 0),
                                    (const char *)spans[i].end);
    }
}

static int f_lock(range_kv *kv, const range_txn_meta *txn, const range_span *keys, size_t n,
                  hlc_timestamp *newest) {
    fake_kv *f = (fake_kv *)kv;
    char text[64];
    spans_text(keys, n, text, sizeof(text));
    note(f, "lock %s (anchor %.*s)", text, (int)txn->anchor_len, (const char *)txn->anchor);
    pthread_mutex_lock(&f->mu);
    f->lock_txn_id = txn->txn_id;
    *newest = HLC_ZERO;
    for (size_t i = 0; i < n; i++)
        if (keys[i].start_len == strlen(f->newest_key) &&
            memcmp(keys[i].start, f->newest_key, keys[i].start_len) == 0)
            *newest = f->newest_ts;
    int rc = f->lock_rc;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int f_refresh(range_kv *kv, const range_txn_meta *txn, const range_span *spans, size_t n,
                     hlc_timestamp new_ts, range_conflict *conflict) {
    fake_kv *f = (fake_kv *)kv;
    char text[64];
    spans_text(spans, n, text, sizeof(text));
    note(f, "refresh %s", text);
    pthread_mutex_lock(&f->mu);
    f->refresh_from = txn->read_ts;
    f->refresh_to = new_ts;
    int rc = f->refresh_rc;
    pthread_mutex_unlock(&f->mu);
    if (rc == RANGE_ERR_CONFLICT) {
        conflict->kind = RANGE_CONFLICT_READ_WRITE;
        base_buf_reset(&conflict->key);
        assert_int_equal(base_buf_append(&conflict->key, (const uint8_t *)"zz", 2), 0);
        conflict->conflict_ts = (hlc_timestamp){1234, 5};
    }
    return rc;
}

static int f_heartbeat(range_kv *kv, const range_txn_meta *txn, int *status) {
    fake_kv *f = (fake_kv *)kv;
    (void)txn;
    note(f, "heartbeat");
    pthread_mutex_lock(&f->mu);
    int rc = f->heartbeat_rc;
    *status = rc == RANGE_ERR_ABORTED ? RANGE_TXN_ABORTED : RANGE_TXN_PENDING;
    f->heartbeats++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int f_end_txn(range_kv *kv, const range_txn_meta *txn, int status, hlc_timestamp ts,
                     range_txn_outcome *out) {
    fake_kv *f = (fake_kv *)kv;
    (void)txn;
    (void)ts;
    note(f, "end %s", status == RANGE_TXN_COMMITTED ? "committed" : "aborted");
    out->status = status;
    out->commit_ts = ts;
    return RANGE_OK;
}

static int f_resolve(range_kv *kv, uint64_t txn_id, const range_span *spans, size_t n, int status,
                     hlc_timestamp ts) {
    fake_kv *f = (fake_kv *)kv;
    (void)txn_id;
    (void)ts;
    char text[64];
    spans_text(spans, n, text, sizeof(text));
    note(f, "resolve %s %s", status == RANGE_TXN_COMMITTED ? "committed" : "aborted", text);
    return RANGE_OK;
}

static const range_kv_ops fake_ops = {
    .wait_visible = f_wait, .get = f_get, .iter_open = f_iter_open, .iter_next = f_iter_next,
    .iter_close = f_iter_close, .commit = f_commit, .stats = f_stats,
    .last_error = f_last_error, .end_txn = f_end_txn, .resolve = f_resolve, .lock = f_lock,
    .heartbeat = f_heartbeat, .refresh = f_refresh,
};

typedef struct fixture {
    hlc_clock *clock;
    storage_engine *engine;
    range_store *store;
    fake_kv fake;
    txn_db *db;      /* over the fake */
    txn_db *direct;  /* over the store itself: other writers */
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    assert_int_equal(hlc_clock_new(hlc_system_clock(), HLC_DEFAULT_MAX_OFFSET_NS, &f->clock), 0);
    storage_options so;
    memset(&so, 0, sizeof(so));
    so.create_if_missing = true;
    assert_int_equal(storage_open(&so, &f->engine), STORAGE_OK);
    assert_int_equal(range_store_open(f->engine, f->clock, false, &f->store), RANGE_OK);
    f->fake.kv.ops = &fake_ops;
    f->fake.inner = range_store_kv(f->store);
    inner_ops = f->fake.inner->ops;
    pthread_mutex_init(&f->fake.mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&f->fake.cv, &attr);
    pthread_condattr_destroy(&attr);
    txn_db_options o = {.clock = f->clock, .kv = &f->fake.kv};
    assert_int_equal(txn_db_open(&o, &f->db), TXN_OK);
    txn_db_options d = {.clock = f->clock, .kv = f->fake.inner};
    assert_int_equal(txn_db_open(&d, &f->direct), TXN_OK);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    txn_db_close(f->db);
    txn_db_close(f->direct);
    pthread_cond_destroy(&f->fake.cv);
    pthread_mutex_destroy(&f->fake.mu);
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

/* Commit k = v in a transaction of its own (not through the fake). */
static hlc_timestamp write_direct(fixture *f, const char *k, const char *v) {
    txn *t;
    txn_error err = {0};
    hlc_timestamp ts = HLC_ZERO;
    assert_int_equal(txn_begin(f->direct, NULL, &t), TXN_OK);
    put(t, k, v);
    assert_int_equal(txn_commit(t, &ts, &err), TXN_OK);
    return ts;
}

/* txn_get of k: its value (in out) or "" when absent; the rc. */
static int get(txn *t, const char *k, char *out, size_t size, txn_error *err) {
    base_buf b = {0};
    memset(err, 0, sizeof(*err));
    int rc = txn_get(t, (const uint8_t *)k, strlen(k), &b, err);
    out[0] = '\0';
    if (rc == TXN_OK) snprintf(out, size, "%.*s", (int)b.len, (const char *)b.data);
    base_buf_free(&b);
    return rc;
}

static void calls(fixture *f, char *out, size_t size) {
    assert_int_equal(txn_db_wait_resolved(f->db, WAIT_MS), TXN_OK);
    size_t pos = 0;
    out[0] = '\0';
    pthread_mutex_lock(&f->fake.mu);
    for (int i = 0; i < f->fake.n_calls; i++)
        pos += (size_t)snprintf(out + pos, size - pos, "%s\n", f->fake.calls[i]);
    pthread_mutex_unlock(&f->fake.mu);
}

static void test_no_locks_no_calls(void **state) {
    fixture *f = *state;
    write_direct(f, "a", "1");
    txn *t;
    txn_error err;
    char v[32];
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    assert_int_equal(get(t, "a", v, sizeof(v), &err), TXN_OK);
    put(t, "a", "2");
    uint64_t local_id = txn_id(t);
    assert_int_equal(txn_commit(t, NULL, &err), TXN_OK);
    assert_int_equal(f->fake.commit_txn_id, local_id);
    /* locking mode in a read-only txn: nothing either */
    assert_int_equal(txn_begin(f->db, &(txn_options){.read_only = true}, &t), TXN_OK);
    txn_set_locking(t, true);
    assert_true(txn_is_locking(t));
    assert_int_equal(get(t, "a", v, sizeof(v), &err), TXN_OK);
    assert_string_equal(v, "2");
    assert_int_equal(txn_commit(t, NULL, &err), TXN_OK);
    char text[1024];
    calls(f, text, sizeof(text));
    assert_string_equal(text, "");
    txn_db_stats st;
    txn_db_get_stats(f->db, &st);
    assert_int_equal(st.lock_calls, 0);
    assert_int_equal(st.heartbeats, 0);
}

static void test_locking_get(void **state) {
    fixture *f = *state;
    write_direct(f, "b", "1");
    txn *t;
    txn_error err;
    char v[32];
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    txn_set_locking(t, true);
    assert_int_equal(get(t, "a", v, sizeof(v), &err), TXN_NOT_FOUND); /* absent: locked too */
    put(t, "a", "new");
    assert_int_equal(get(t, "a", v, sizeof(v), &err), TXN_OK); /* the buffer: no lock */
    assert_string_equal(v, "new");
    assert_int_equal(get(t, "b", v, sizeof(v), &err), TXN_OK);
    assert_string_equal(v, "1");
    assert_int_equal(get(t, "b", v, sizeof(v), &err), TXN_OK); /* locked already */
    txn_set_locking(t, false);
    assert_int_equal(get(t, "c", v, sizeof(v), &err), TXN_NOT_FOUND); /* not locking */
    assert_int_equal(txn_commit(t, NULL, &err), TXN_OK);
    /* the commit went under the lock holder's id; "a" was written (its
    ** range released it), "b" is released after */
    assert_true(f->fake.lock_txn_id != 0);
    assert_int_equal(f->fake.commit_txn_id, f->fake.lock_txn_id);
    char text[1024];
    calls(f, text, sizeof(text));
    assert_string_equal(text, "lock a (anchor a)\n"
                              "lock b (anchor a)\n"
                              "resolve committed b-b\n");
    txn_db_stats st;
    txn_db_get_stats(f->db, &st);
    assert_int_equal(st.lock_calls, 2);
    assert_int_equal(st.keys_locked, 2);
    assert_int_equal(st.refreshes, 0);
}

static void test_refresh_moves_read_ts(void **state) {
    fixture *f = *state;
    write_direct(f, "k", "1");
    write_direct(f, "x", "x0");
    txn *t;
    txn_error err;
    char v[32];
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    hlc_timestamp begin_ts = txn_read_timestamp(t);
    assert_int_equal(get(t, "x", v, sizeof(v), &err), TXN_OK); /* a read to refresh */
    /* another transaction writes k after our read timestamp */
    hlc_timestamp c0 = write_direct(f, "k", "2");
    assert_true(hlc_compare(c0, begin_ts) > 0);
    strcpy(f->fake.newest_key, "k");
    f->fake.newest_ts = c0;
    txn_set_locking(t, true);
    assert_int_equal(get(t, "k", v, sizeof(v), &err), TXN_OK);
    assert_string_equal(v, "2"); /* the newest value: read_ts moved */
    assert_true(hlc_compare(txn_read_timestamp(t), c0) == 0);
    assert_true(hlc_compare(f->fake.refresh_from, begin_ts) == 0);
    assert_true(hlc_compare(f->fake.refresh_to, c0) == 0);
    put(t, "k", "3");
    /* without the refresh this commit would be a write-write conflict */
    assert_int_equal(txn_commit(t, NULL, &err), TXN_OK);
    char text[1024];
    calls(f, text, sizeof(text));
    assert_string_equal(text, "lock k (anchor k)\n"
                              "refresh x\n");
    txn_db_stats st;
    txn_db_get_stats(f->db, &st);
    assert_int_equal(st.refreshes, 1);
    assert_int_equal(st.refresh_failures, 0);
}

static void test_refresh_failure(void **state) {
    fixture *f = *state;
    write_direct(f, "k", "1");
    txn *t;
    txn_error err;
    char v[32];
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    assert_int_equal(get(t, "x", v, sizeof(v), &err), TXN_NOT_FOUND);
    hlc_timestamp c0 = write_direct(f, "k", "2");
    strcpy(f->fake.newest_key, "k");
    f->fake.newest_ts = c0;
    f->fake.refresh_rc = RANGE_ERR_CONFLICT;
    txn_set_locking(t, true);
    assert_int_equal(get(t, "k", v, sizeof(v), &err), TXN_ERR_RETRY);
    assert_string_equal(err.sqlstate, "40001");
    if (strstr(err.message, "read refresh failed on key") == NULL ||
        strstr(err.message, "7a7a") == NULL) /* "zz", the conflicting key */
        fail_msg("%s", err.message);
    /* the transaction is aborted: later calls fail, the commit too */
    assert_int_equal(get(t, "y", v, sizeof(v), &err), TXN_ERR_DONE);
    txn_rollback(t);
    char text[1024];
    calls(f, text, sizeof(text));
    assert_string_equal(text, "lock k (anchor k)\n"
                              "refresh x\n"
                              "resolve aborted k-k\n");
    txn_db_stats st;
    txn_db_get_stats(f->db, &st);
    assert_int_equal(st.refresh_failures, 1);
}

static void test_rollback_releases(void **state) {
    fixture *f = *state;
    txn *t;
    txn_error err;
    char v[32];
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    txn_set_locking(t, true);
    assert_int_equal(get(t, "c", v, sizeof(v), &err), TXN_NOT_FOUND);
    assert_int_equal(get(t, "a", v, sizeof(v), &err), TXN_NOT_FOUND);
    put(t, "a", "1");
    txn_rollback(t);
    char text[1024];
    calls(f, text, sizeof(text));
    /* sorted, written or not: nothing of it committed */
    assert_string_equal(text, "lock c (anchor c)\n"
                              "lock a (anchor c)\n"
                              "resolve aborted a-a,c-c\n");
    /* a failed commit releases every lock too */
    f->fake.n_calls = 0;
    write_direct(f, "w", "0");
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    assert_int_equal(get(t, "w", v, sizeof(v), &err), TXN_OK);
    txn_set_locking(t, true);
    assert_int_equal(get(t, "v", v, sizeof(v), &err), TXN_NOT_FOUND);
    write_direct(f, "w", "1"); /* our read of w is stale now */
    put(t, "v", "1");
    assert_int_equal(txn_commit(t, NULL, &err), TXN_ERR_RETRY);
    calls(f, text, sizeof(text));
    assert_string_equal(text, "lock v (anchor v)\n"
                              "resolve aborted v-v\n");
}

static void test_locking_scan(void **state) {
    fixture *f = *state;
    const char *keys[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < 5; i++) write_direct(f, keys[i], "old");
    txn *t;
    txn_error err = {0};
    char v[32];
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    assert_int_equal(get(t, "z", v, sizeof(v), &err), TXN_NOT_FOUND);
    hlc_timestamp c0 = write_direct(f, "c", "new");
    strcpy(f->fake.newest_key, "c");
    f->fake.newest_ts = c0;
    txn_set_locking(t, true);
    txn_iter *it;
    assert_int_equal(txn_scan(t, (const uint8_t *)"a", 1, (const uint8_t *)"y", 1, false, &it,
                              &err),
                     TXN_OK);
    txn_set_locking(t, false); /* the iterator keeps its mode */
    char got[128];
    size_t pos = 0;
    for (int guard = 0; guard < 100; guard++) {
        const uint8_t *k, *val;
        size_t kl, vl;
        int n = txn_iter_next(it, &k, &kl, &val, &vl, &err);
        if (n < 0) fail_msg("scan: %d %s", n, err.message);
        if (n == 0) break;
        pos += (size_t)snprintf(got + pos, sizeof(got) - pos, "%.*s=%.*s ", (int)kl,
                                (const char *)k, (int)vl, (const char *)val);
    }
    txn_iter_close(it);
    assert_string_equal(got, "a=old b=old c=new d=old e=old ");
    assert_true(hlc_compare(txn_read_timestamp(t), c0) == 0);
    assert_int_equal(txn_commit(t, NULL, &err), TXN_OK); /* read-only: releases */
    char text[1024];
    calls(f, text, sizeof(text));
    /* a batch of 4 (the first refreshes and is read again: locked already),
    ** then the rest */
    assert_string_equal(text, "lock a,b,c,d (anchor a)\n"
                              "refresh z\n"
                              "lock e (anchor a)\n"
                              "resolve aborted a-a,b-b,c-c,d-d,e-e\n");
}

static void test_lock_aborted(void **state) {
    fixture *f = *state;
    f->fake.lock_rc = RANGE_ERR_ABORTED;
    txn *t;
    txn_error err;
    char v[32];
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    txn_set_locking(t, true);
    assert_int_equal(get(t, "a", v, sizeof(v), &err), TXN_ERR_RETRY);
    assert_string_equal(err.sqlstate, "40001");
    assert_non_null(strstr(err.message, "deadlock cycle t1 -> t2 -> t1"));
    /* aborted: its record is ABORTED, nothing of it may commit */
    assert_int_equal(txn_put(t, (const uint8_t *)"a", 1, (const uint8_t *)"1", 1, &err),
                     TXN_ERR_DONE);
    assert_int_equal(txn_commit(t, NULL, &err), TXN_ERR_RETRY);
    char text[1024];
    calls(f, text, sizeof(text));
    assert_string_equal(text, "lock a (anchor a)\n"
                              "resolve aborted a-a\n");
}

/* Wait (bounded) until the heartbeat thread has sent n heartbeats. */
static void wait_heartbeats(fixture *f, int n) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&f->fake.mu);
    while (f->fake.heartbeats < n)
        if (pthread_cond_timedwait(&f->fake.cv, &f->fake.mu, &until) == ETIMEDOUT) break;
    int got = f->fake.heartbeats;
    pthread_mutex_unlock(&f->fake.mu);
    assert_true(got >= n);
}

static void test_heartbeat_record(void **state) {
    fixture *f = *state;
    txn *t;
    txn_error err;
    char v[32];
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    txn_set_locking(t, true);
    assert_int_equal(get(t, "a", v, sizeof(v), &err), TXN_NOT_FOUND);
    wait_heartbeats(f, 1); /* after RANGE_TXN_HEARTBEAT_MS: the record exists */
    put(t, "a", "1");
    assert_int_equal(txn_commit(t, NULL, &err), TXN_OK);
    char text[1024];
    calls(f, text, sizeof(text));
    /* the record is ended; the written key's lock went with the commit */
    assert_string_equal(text, "lock a (anchor a)\n"
                              "heartbeat\n"
                              "end committed\n");
}

static void test_heartbeat_finds_aborted(void **state) {
    fixture *f = *state;
    f->fake.heartbeat_rc = RANGE_ERR_ABORTED;
    txn *t;
    txn_error err;
    char v[32];
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    txn_set_locking(t, true);
    assert_int_equal(get(t, "a", v, sizeof(v), &err), TXN_NOT_FOUND);
    wait_heartbeats(f, 1);
    /* the fake counts the call before the heartbeat thread records its answer:
    ** wait for the answer itself (counted after the txn is marked aborted) */
    txn_db_stats st;
    for (int i = 0; i < WAIT_MS / 10; i++) {
        txn_db_get_stats(f->db, &st);
        if (st.heartbeat_aborts >= 1) break;
        usleep(10 * 1000);
    }
    assert_int_equal(get(t, "b", v, sizeof(v), &err), TXN_ERR_RETRY);
    assert_string_equal(err.sqlstate, "40001");
    assert_non_null(strstr(err.message, "deadlock cycle"));
    txn_rollback(t);
    char text[1024];
    calls(f, text, sizeof(text));
    assert_string_equal(text, "lock a (anchor a)\n"
                              "heartbeat\n"
                              "end aborted\n"
                              "resolve aborted a-a\n");
    txn_db_get_stats(f->db, &st);
    assert_int_equal(st.heartbeat_aborts, 1);
}

int main(void) {
    base_log_set_level(BASE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_locks_no_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locking_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_moves_read_ts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_releases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locking_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_aborted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_finds_aborted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
