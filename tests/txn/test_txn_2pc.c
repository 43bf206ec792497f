/*
** tests/txn/test_txn_2pc.c: the coordinator's side of two-phase commit
** (docs/txn.md section 3) against a fake range_kv. The fake has two "ranges"
** split at "m": a commit writing both sides answers RANGE_ERR_CROSS_RANGE
** (as the router does), everything else goes to a local range_store. Its
** prepare/end_txn/resolve record every call (as text) and fail on demand:
**   - the success path: prepare, END_TXN(COMMITTED) at the prepare's
**     timestamp, then RESOLVE(COMMITTED) over the prepare's spans, in the
**     background;
**   - a prepare conflict: 40001 naming the key, END_TXN(ABORTED), then
**     RESOLVE(ABORTED) over the spans;
**   - END_TXN(COMMITTED) finds the record ABORTED: 40001, RESOLVE(ABORTED);
**   - END_TXN(COMMITTED) of unknown fate: an END_TXN(ABORTED) that finds
**     COMMITTED is a success, one that aborts is 57P03 (rolled back), one
**     that fails too is 40003 and resolves nothing;
**   - a meta transaction (a split) of unknown fate is 40003 too, but the
**     resolver learns the outcome from the record (END_TXN(ABORTED) again)
**     and resolves all its intents with it, without a reader;
**   - the resolver retries a failing RESOLVE with backoff, and gives up
**     after its attempts (counted); it collects the record (GC_TXN) once a
**     resolution went through, never for an abandoned one; an attempt that
**     resolved some (RANGE_ERR_BUSY) is not a failed one;
**   - a commit the key space refuses RANGE_ERR_TOO_LARGE (more than one
**     command holds) goes two-phase too; too large even then is 54000;
**   - a key space without prepare keeps refusing (test_txn_kv.c).
** Every wait is bounded (txn_db_wait_resolved).
*/
#include <pthread.h>
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

#define CALLS_MAX 64
#define CALL_TEXT_MAX 96
#define RESOLVE_WAIT_MS 10000

typedef struct fake_kv {
    range_kv kv; /* first member */
    range_kv *inner;
    hlc_clock *clock;
    pthread_mutex_t mu; /* the resolver thread calls resolve */
    /* injected answers (0: succeed) */
    int prepare_rc;
    int end_commit_rc;         /* END_TXN(COMMITTED) */
    int end_abort_rc;          /* END_TXN(ABORTED) */
    int end_abort_failures;    /* answer this many END_TXN(ABORTED) RANGE_ERR_AMBIGUOUS
                                  first */
    bool end_abort_finds_committed;
    int resolve_failures;      /* fail this many RESOLVE calls first */
    int resolve_progress;      /* then answer this many RANGE_ERR_BUSY (resolved some) */
    size_t too_large_writes;   /* > 0: a commit of more writes is RANGE_ERR_TOO_LARGE */
    /* what happened */
    char calls[CALLS_MAX][CALL_TEXT_MAX];
    int n_calls;
    int resolve_calls;
    int gc_calls;               /* GC_TXN of a record (not in calls: the order
                                   tests above stay as they are) */
    int bad_gcs;                /* of another txn or anchor */
    int bad_resolves;           /* wrong txn id or timestamp (the resolver's thread
                                   cannot fail a cmocka assertion) */
    range_txn_meta meta;        /* of the last prepare (anchor copied) */
    uint8_t anchor[16];
    hlc_timestamp prepared_ts;
    uint64_t end_nonces[4];
    int n_end;
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

static bool key_right(const uint8_t *k, size_t len) { return len > 0 && k[0] >= 'm'; }

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
/* iterators are the inner store's own */
static const range_kv_ops *inner_ops;
static int f_iter_next(range_kv_iter *it, const uint8_t **k, size_t *kl, const uint8_t **v,
                       size_t *vl) {
    return inner_ops->iter_next(it, k, kl, v, vl);
}
static void f_iter_close(range_kv_iter *it) { inner_ops->iter_close(it); }

static bool writes_cross(const range_commit_request *req) {
    bool left = false, right = false;
    for (size_t i = 0; i < req->write_count; i++) {
        if (key_right(req->writes[i].key, req->writes[i].key_len)) right = true;
        else left = true;
    }
    for (size_t i = 0; i < req->delete_span_count; i++) {
        const range_span *sp = &req->delete_spans[i];
        if (key_right(sp->start, sp->start_len)) right = true;
        else left = true;
        if (sp->end_len == 0 || key_right(sp->end, sp->end_len)) right = true;
    }
    return left && right;
}

static int f_commit(range_kv *kv, const range_commit_request *req, hlc_timestamp *ts,
                    range_conflict *c) {
    fake_kv *f = (fake_kv *)kv;
    if (writes_cross(req)) return RANGE_ERR_CROSS_RANGE;
    if (f->too_large_writes > 0 && req->write_count > f->too_large_writes)
        return RANGE_ERR_TOO_LARGE; /* as the router: more than one command holds */
    return f->inner->ops->commit(f->inner, req, ts, c);
}
static void f_stats(range_kv *kv, range_stats *out) {
    fake_kv *f = (fake_kv *)kv;
    f->inner->ops->stats(f->inner, out);
}
static bool f_last_error(range_kv *kv, char *buf, size_t size) {
    (void)kv;
    snprintf(buf, size, "range 7: injected");
    return true;
}

/* The prepare's spans: [first, last + 0x00) of each side's writes. */
static void fill_spans(const range_commit_request *req, range_prepare_result *out) {
    out->spans = base_calloc(2, sizeof(*out->spans));
    assert_non_null(out->spans);
    size_t offs[4];
    for (int side = 0; side < 2; side++) {
        const range_write *first = NULL, *last = NULL;
        for (size_t i = 0; i < req->write_count; i++) {
            if (key_right(req->writes[i].key, req->writes[i].key_len) != (side == 1)) continue;
            if (first == NULL) first = &req->writes[i];
            last = &req->writes[i];
        }
        if (first == NULL) continue;
        offs[2 * out->n_spans] = out->span_bytes.len;
        assert_int_equal(base_buf_append(&out->span_bytes, first->key, first->key_len), 0);
        offs[2 * out->n_spans + 1] = out->span_bytes.len;
        assert_int_equal(base_buf_append(&out->span_bytes, last->key, last->key_len), 0);
        assert_int_equal(base_buf_append_byte(&out->span_bytes, 0), 0);
        out->spans[out->n_spans].start_len = first->key_len;
        out->spans[out->n_spans].end_len = last->key_len + 1;
        out->n_spans++;
    }
    for (size_t i = 0; i < out->n_spans; i++) {
        out->spans[i].start = out->span_bytes.data + offs[2 * i];
        out->spans[i].end = out->span_bytes.data + offs[2 * i + 1];
    }
}

static int f_prepare(range_kv *kv, const range_txn_meta *txn, const range_commit_request *req,
                     range_prepare_result *out, range_conflict *conflict) {
    fake_kv *f = (fake_kv *)kv;
    memset(out, 0, sizeof(*out));
    fill_spans(req, out); /* on errors too: where intents may be */
    pthread_mutex_lock(&f->mu);
    f->meta = *txn;
    assert_true(txn->anchor_len <= sizeof(f->anchor));
    memcpy(f->anchor, txn->anchor, txn->anchor_len);
    f->meta.anchor = f->anchor;
    pthread_mutex_unlock(&f->mu);
    note(f, "prepare %zu writes, %zu spans", req->write_count, out->n_spans);
    assert_int_equal(req->txn_id, txn->txn_id);
    if (f->prepare_rc == RANGE_ERR_CONFLICT) {
        conflict->kind = RANGE_CONFLICT_WRITE_WRITE;
        base_buf_reset(&conflict->key);
        assert_int_equal(base_buf_append(&conflict->key, (const uint8_t *)"zz", 2), 0);
        conflict->conflict_ts = (hlc_timestamp){1234, 5};
    }
    if (f->prepare_rc != 0) return f->prepare_rc;
    out->commit_ts = hlc_now(f->clock);
    f->prepared_ts = out->commit_ts;
    return RANGE_OK;
}

static int f_end_txn(range_kv *kv, const range_txn_meta *txn, int status, hlc_timestamp ts,
                     range_txn_outcome *out) {
    fake_kv *f = (fake_kv *)kv;
    memset(out, 0, sizeof(*out));
    note(f, "end %s", status == RANGE_TXN_COMMITTED ? "committed" : "aborted");
    pthread_mutex_lock(&f->mu);
    assert_int_equal(txn->txn_id, f->meta.txn_id);
    assert_int_equal(txn->nonce, f->meta.nonce);
    if (f->n_end < 4) f->end_nonces[f->n_end++] = txn->nonce;
    pthread_mutex_unlock(&f->mu);
    if (status == RANGE_TXN_COMMITTED) {
        assert_true(hlc_compare(ts, f->prepared_ts) == 0);
        if (f->end_commit_rc != 0) return f->end_commit_rc;
        out->status = RANGE_TXN_COMMITTED;
        out->commit_ts = ts;
        return RANGE_OK;
    }
    pthread_mutex_lock(&f->mu);
    bool lost = f->end_abort_failures > 0;
    if (lost) f->end_abort_failures--;
    pthread_mutex_unlock(&f->mu);
    if (lost) return RANGE_ERR_AMBIGUOUS;
    if (f->end_abort_rc != 0) return f->end_abort_rc;
    if (f->end_abort_finds_committed) {
        out->status = RANGE_TXN_COMMITTED;
        out->commit_ts = f->prepared_ts;
        return RANGE_OK;
    }
    out->status = RANGE_TXN_ABORTED;
    return RANGE_OK;
}

static int f_resolve(range_kv *kv, uint64_t txn_id, const range_span *spans, size_t n, int status,
                     hlc_timestamp ts) {
    fake_kv *f = (fake_kv *)kv;
    pthread_mutex_lock(&f->mu);
    f->resolve_calls++;
    bool fail = f->resolve_failures > 0;
    if (fail) f->resolve_failures--;
    bool partial = !fail && f->resolve_progress > 0;
    if (partial) f->resolve_progress--;
    if (txn_id != f->meta.txn_id ||
        (status == RANGE_TXN_COMMITTED && hlc_compare(ts, f->prepared_ts) != 0))
        f->bad_resolves++;
    pthread_mutex_unlock(&f->mu);
    if (fail) return RANGE_ERR_UNAVAILABLE;
    if (partial) return RANGE_ERR_BUSY;
    char text[64];
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += (size_t)snprintf(text + pos, sizeof(text) - pos, "%s%.*s-%.*s", i ? "," : "",
                                (int)spans[i].start_len, (const char *)spans[i].start,
                                (int)(spans[i].end_len - 1), (const char *)spans[i].end);
    note(f, "resolve %s %s", status == RANGE_TXN_COMMITTED ? "committed" : "aborted", text);
    return RANGE_OK;
}

static int f_gc_txn(range_kv *kv, const range_txn_meta *txn) {
    fake_kv *f = (fake_kv *)kv;
    pthread_mutex_lock(&f->mu);
    f->gc_calls++;
    if (txn->txn_id != f->meta.txn_id || txn->anchor_len != f->meta.anchor_len ||
        memcmp(txn->anchor, f->anchor, txn->anchor_len) != 0)
        f->bad_gcs++;
    pthread_mutex_unlock(&f->mu);
    return RANGE_OK;
}

static const range_kv_ops fake_ops = {
    .wait_visible = f_wait, .get = f_get, .iter_open = f_iter_open, .iter_next = f_iter_next,
    .iter_close = f_iter_close, .commit = f_commit, .stats = f_stats,
    .last_error = f_last_error, .prepare = f_prepare, .end_txn = f_end_txn,
    .resolve = f_resolve, .gc_txn = f_gc_txn,
};

/* A split's admin calls: one range ["a", +inf), gen 1; the split's answer
** is lost (RANGE_ERR_AMBIGUOUS), so only its record knows the outcome. */
static int f_describe(range_kv *kv, const uint8_t *key, size_t key_len, range_descriptor *out) {
    (void)kv;
    (void)key;
    (void)key_len;
    uint8_t start[1] = {'a'};
    range_descriptor d = {.range_id = 1, .generation = 1, .start_key = start, .start_len = 1};
    return range_descriptor_copy(out, &d); /* owner: the caller */
}

static int f_admin_split(range_kv *kv, const uint8_t *key, size_t key_len, uint64_t id,
                         range_descriptor *left, range_descriptor *right) {
    (void)kv, (void)key, (void)key_len, (void)id, (void)left, (void)right;
    fail_msg("the plain split path ran");
    return RANGE_ERR_UNAVAILABLE;
}

static int f_admin_split_txn(range_kv *kv, const uint8_t *key, size_t key_len, uint64_t id,
                             const range_split_txn *stx, range_descriptor *left,
                             range_descriptor *right) {
    (void)key, (void)key_len, (void)id, (void)stx, (void)left, (void)right;
    note((fake_kv *)kv, "split");
    return RANGE_ERR_AMBIGUOUS;
}

static const range_kv_ops split_ops = {
    .wait_visible = f_wait, .get = f_get, .iter_open = f_iter_open, .iter_next = f_iter_next,
    .iter_close = f_iter_close, .commit = f_commit, .stats = f_stats,
    .last_error = f_last_error, .prepare = f_prepare, .end_txn = f_end_txn,
    .resolve = f_resolve, .gc_txn = f_gc_txn, .describe = f_describe,
    .admin_split = f_admin_split, .admin_split_txn = f_admin_split_txn,
};

typedef struct fixture {
    hlc_clock *clock;
    storage_engine *engine;
    range_store *store;
    fake_kv fake;
    txn_db *db;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    /* the real clock: commit wait (txn_commit) waits for it to pass the
    ** commit timestamp */
    assert_int_equal(hlc_clock_new(hlc_system_clock(), HLC_DEFAULT_MAX_OFFSET_NS, &f->clock), 0);
    storage_options so;
    memset(&so, 0, sizeof(so));
    so.create_if_missing = true;
    assert_int_equal(storage_open(&so, &f->engine), STORAGE_OK);
    assert_int_equal(range_store_open(f->engine, f->clock, false, &f->store), RANGE_OK);
    f->fake.kv.ops = &fake_ops;
    f->fake.inner = range_store_kv(f->store);
    inner_ops = f->fake.inner->ops;
    f->fake.clock = f->clock;
    pthread_mutex_init(&f->fake.mu, NULL);
    txn_db_options o = {.clock = f->clock, .kv = &f->fake.kv};
    assert_int_equal(txn_db_open(&o, &f->db), TXN_OK);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    txn_db_close(f->db);
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

/* Commit "b", "c" (left) and "x" (right); the rc, with err. */
static int commit_two_ranges(fixture *f, hlc_timestamp *ts, txn_error *err) {
    txn *t;
    memset(err, 0, sizeof(*err));
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    put(t, "x", "3");
    put(t, "c", "2");
    put(t, "b", "1");
    return txn_commit(t, ts, err);
}

static void wait_resolved(fixture *f) {
    assert_int_equal(txn_db_wait_resolved(f->db, RESOLVE_WAIT_MS), TXN_OK);
    pthread_mutex_lock(&f->fake.mu);
    int bad = f->fake.bad_resolves;
    pthread_mutex_unlock(&f->fake.mu);
    assert_int_equal(bad, 0);
}

/* The calls so far, one per line. */
static void calls(fixture *f, char *out, size_t size) {
    size_t pos = 0;
    out[0] = '\0';
    pthread_mutex_lock(&f->fake.mu);
    for (int i = 0; i < f->fake.n_calls; i++)
        pos += (size_t)snprintf(out + pos, size - pos, "%s\n", f->fake.calls[i]);
    pthread_mutex_unlock(&f->fake.mu);
}

static void test_success(void **state) {
    fixture *f = *state;
    hlc_timestamp ts;
    txn_error err;
    assert_int_equal(commit_two_ranges(f, &ts, &err), TXN_OK);
    assert_true(hlc_compare(ts, f->fake.prepared_ts) == 0);
    /* the meta: random id and nonce, the anchor is the first written key */
    assert_true(f->fake.meta.txn_id != 0);
    assert_true(f->fake.meta.nonce != 0);
    assert_int_equal(f->fake.meta.anchor_len, 1);
    assert_int_equal(f->fake.anchor[0], 'b');
    wait_resolved(f);
    char text[1024];
    calls(f, text, sizeof(text));
    assert_string_equal(text, "prepare 3 writes, 2 spans\n"
                              "end committed\n"
                              "resolve committed b-c,x-x\n");
    txn_db_stats st;
    txn_db_get_stats(f->db, &st);
    assert_int_equal(st.distributed_commits, 1);
    assert_int_equal(st.resolves, 1);
    assert_int_equal(st.resolve_retries, 0);
    /* a second transaction gets another id */
    uint64_t first = f->fake.meta.txn_id;
    assert_int_equal(commit_two_ranges(f, &ts, &err), TXN_OK);
    assert_true(f->fake.meta.txn_id != first);
    wait_resolved(f);
    /* one range: the plain commit, no prepare */
    txn *t;
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    put(t, "a", "1");
    assert_int_equal(txn_commit(t, NULL, &err), TXN_OK);
    txn_db_get_stats(f->db, &st);
    assert_int_equal(st.distributed_commits, 2);
    assert_int_equal(st.commits, 1);
}

/* A commit in one range larger than one command (the key space refused it
** RANGE_ERR_TOO_LARGE, unsent) goes two-phase: the router prepares it in
** chunks (docs/txn.md, "Large transactions"); if even that is too large,
** 54000 with the key space's detail and the intents are resolved. */
static void test_too_large_goes_two_phase(void **state) {
    fixture *f = *state;
    f->fake.too_large_writes = 2;
    txn *t;
    txn_error err = {0};
    hlc_timestamp ts;
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    put(t, "d", "4");
    put(t, "c", "3");
    put(t, "b", "2");
    assert_int_equal(txn_commit(t, &ts, &err), TXN_OK);
    assert_true(hlc_compare(ts, f->fake.prepared_ts) == 0);
    wait_resolved(f);
    char text[1024];
    calls(f, text, sizeof(text));
    assert_string_equal(text, "prepare 3 writes, 1 spans\n"
                              "end committed\n"
                              "resolve committed b-d\n");
    txn_db_stats st;
    txn_db_get_stats(f->db, &st);
    assert_int_equal(st.distributed_commits, 1);
    /* two writes still fit the one-phase commit */
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    put(t, "e", "5");
    put(t, "f", "6");
    assert_int_equal(txn_commit(t, NULL, &err), TXN_OK);
    txn_db_get_stats(f->db, &st);
    assert_int_equal(st.distributed_commits, 1);
    assert_int_equal(st.commits, 1);
    /* too large even in chunks */
    f->fake.prepare_rc = RANGE_ERR_TOO_LARGE;
    memset(&err, 0, sizeof(err));
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    put(t, "g", "7");
    put(t, "h", "8");
    put(t, "i", "9");
    assert_int_equal(txn_commit(t, NULL, &err), TXN_ERR_LIMIT);
    assert_string_equal(err.sqlstate, "54000");
    if (strstr(err.message, "too large") == NULL || strstr(err.message, "range 7") == NULL)
        fail_msg("%s", err.message);
    wait_resolved(f);
    calls(f, text, sizeof(text));
    if (strstr(text, "end aborted\nresolve aborted g-i\n") == NULL) fail_msg("%s", text);
}

static void test_prepare_conflict_aborts(void **state) {
    fixture *f = *state;
    f->fake.prepare_rc = RANGE_ERR_CONFLICT;
    hlc_timestamp ts;
    txn_error err;
    assert_int_equal(commit_two_ranges(f, &ts, &err), TXN_ERR_RETRY);
    assert_string_equal(err.sqlstate, "40001");
    if (strstr(err.message, "write-write conflict on key") == NULL ||
        strstr(err.message, "7a7a") == NULL)
        fail_msg("%s", err.message);
    wait_resolved(f);
    char text[1024];
    calls(f, text, sizeof(text));
    assert_string_equal(text, "prepare 3 writes, 2 spans\n"
                              "end aborted\n"
                              "resolve aborted b-c,x-x\n");
    txn_db_stats st;
    txn_db_get_stats(f->db, &st);
    assert_int_equal(st.distributed_commits, 0);
}

static void test_prepare_unavailable_rolls_back(void **state) {
    fixture *f = *state;
    f->fake.prepare_rc = RANGE_ERR_AMBIGUOUS; /* some PREPARE's fate unknown: not the txn's */
    hlc_timestamp ts;
    txn_error err;
    assert_int_equal(commit_two_ranges(f, &ts, &err), TXN_ERR_UNAVAILABLE);
    assert_string_equal(err.sqlstate, "57P03");
    assert_non_null(strstr(err.message, "range 7: injected"));
    assert_non_null(strstr(err.message, "rolled back"));
    wait_resolved(f);
    char text[1024];
    calls(f, text, sizeof(text));
    assert_string_equal(text, "prepare 3 writes, 2 spans\n"
                              "end aborted\n"
                              "resolve aborted b-c,x-x\n");
}

static void test_end_finds_aborted(void **state) {
    fixture *f = *state;
    f->fake.end_commit_rc = RANGE_ERR_ABORTED;
    hlc_timestamp ts;
    txn_error err;
    assert_int_equal(commit_two_ranges(f, &ts, &err), TXN_ERR_RETRY);
    assert_string_equal(err.sqlstate, "40001");
    assert_non_null(strstr(err.message, "was aborted"));
    assert_non_null(strstr(err.message, "ABORTED"));
    wait_resolved(f);
    char text[1024];
    calls(f, text, sizeof(text));
    assert_string_equal(text, "prepare 3 writes, 2 spans\n"
                              "end committed\n"
                              "resolve aborted b-c,x-x\n");
}

static void test_unknown_end_then_abort_finds_committed(void **state) {
    fixture *f = *state;
    f->fake.end_commit_rc = RANGE_ERR_AMBIGUOUS;
    f->fake.end_abort_finds_committed = true;
    hlc_timestamp ts = HLC_ZERO;
    txn_error err;
    assert_int_equal(commit_two_ranges(f, &ts, &err), TXN_OK);
    assert_true(hlc_compare(ts, f->fake.prepared_ts) == 0);
    assert_string_equal(err.sqlstate, "");
    wait_resolved(f);
    char text[1024];
    calls(f, text, sizeof(text));
    assert_string_equal(text, "prepare 3 writes, 2 spans\n"
                              "end committed\n"
                              "end aborted\n"
                              "resolve committed b-c,x-x\n");
    txn_db_stats st;
    txn_db_get_stats(f->db, &st);
    assert_int_equal(st.distributed_commits, 1);
}

static void test_unknown_end_then_aborted(void **state) {
    fixture *f = *state;
    f->fake.end_commit_rc = RANGE_ERR_AMBIGUOUS;
    hlc_timestamp ts;
    txn_error err;
    assert_int_equal(commit_two_ranges(f, &ts, &err), TXN_ERR_UNAVAILABLE);
    assert_string_equal(err.sqlstate, "57P03");
    assert_non_null(strstr(err.message, "rolled back"));
    wait_resolved(f);
    char text[1024];
    calls(f, text, sizeof(text));
    assert_string_equal(text, "prepare 3 writes, 2 spans\n"
                              "end committed\n"
                              "end aborted\n"
                              "resolve aborted b-c,x-x\n");
}

static void test_unknown_end_stays_unknown(void **state) {
    fixture *f = *state;
    f->fake.end_commit_rc = RANGE_ERR_AMBIGUOUS;
    f->fake.end_abort_rc = RANGE_ERR_AMBIGUOUS;
    hlc_timestamp ts;
    txn_error err;
    assert_int_equal(commit_two_ranges(f, &ts, &err), TXN_ERR_AMBIGUOUS);
    assert_string_equal(err.sqlstate, "40003");
    assert_non_null(strstr(err.message, "may or may not have applied"));
    wait_resolved(f);
    char text[1024];
    calls(f, text, sizeof(text));
    /* nothing is resolved: the record decides (readers push it) */
    assert_string_equal(text, "prepare 3 writes, 2 spans\n"
                              "end committed\n"
                              "end aborted\n");
    /* END_TXN(UNAVAILABLE): surely not applied, so a failed abort still
    ** lets the coordinator remove its intents */
    f->fake.n_calls = 0;
    f->fake.end_commit_rc = RANGE_ERR_UNAVAILABLE;
    assert_int_equal(commit_two_ranges(f, &ts, &err), TXN_ERR_UNAVAILABLE);
    assert_string_equal(err.sqlstate, "57P03");
    wait_resolved(f);
    calls(f, text, sizeof(text));
    assert_string_equal(text, "prepare 3 writes, 2 spans\n"
                              "end committed\n"
                              "end aborted\n"
                              "resolve aborted b-c,x-x\n");
}

/* A meta transaction (a split) whose outcome is unknown to its coordinator:
** 40003, and the resolver learns the outcome from the record (END_TXN
** (ABORTED) again) and resolves every meta intent with it, no reader needed. */
static void split_unknown_outcome(fixture *f, bool committed) {
    f->fake.kv.ops = &split_ops;
    f->fake.end_abort_failures = 1; /* the coordinator's own END_TXN(ABORTED) */
    f->fake.end_abort_finds_committed = committed;
    txn_split_result out;
    txn_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(txn_db_split_at(f->db, (const uint8_t *)"k", 1, &out, &err),
                     TXN_ERR_AMBIGUOUS);
    assert_string_equal(err.sqlstate, "40003");
    wait_resolved(f);
    pthread_mutex_lock(&f->fake.mu);
    int n = f->fake.n_calls;
    int gcs = f->fake.gc_calls, bad_gcs = f->fake.bad_gcs;
    pthread_mutex_unlock(&f->fake.mu);
    assert_int_equal(n, 5);
    assert_non_null(strstr(f->fake.calls[0], "prepare 2 writes"));
    assert_string_equal(f->fake.calls[1], "split");
    assert_string_equal(f->fake.calls[2], "end aborted"); /* lost */
    assert_string_equal(f->fake.calls[3], "end aborted"); /* the resolver's: the record */
    const char *want = committed ? "resolve committed " : "resolve aborted ";
    assert_memory_equal(f->fake.calls[4], want, strlen(want));
    assert_int_equal(gcs, 1);
    assert_int_equal(bad_gcs, 0);
}

static void test_meta_unknown_outcome_resolved_committed(void **state) {
    split_unknown_outcome(*state, true);
}

static void test_meta_unknown_outcome_resolved_aborted(void **state) {
    split_unknown_outcome(*state, false);
}

static void test_resolver_retries(void **state) {
    fixture *f = *state;
    f->fake.resolve_failures = 3;
    hlc_timestamp ts;
    txn_error err;
    assert_int_equal(commit_two_ranges(f, &ts, &err), TXN_OK);
    wait_resolved(f);
    txn_db_stats st;
    txn_db_get_stats(f->db, &st);
    assert_int_equal(f->fake.resolve_calls, 4);
    assert_int_equal(st.resolve_retries, 3);
    assert_int_equal(st.resolves, 1);
    assert_int_equal(st.resolves_abandoned, 0);
    /* the record goes once, after the resolution went through */
    assert_int_equal(f->fake.gc_calls, 1);
    assert_int_equal(f->fake.bad_gcs, 0);
    char text[1024];
    calls(f, text, sizeof(text));
    assert_string_equal(text, "prepare 3 writes, 2 spans\n"
                              "end committed\n"
                              "resolve committed b-c,x-x\n");
    /* one that never goes through is given up after the attempts: its
    ** COMMITTED record stays (intents may be left: docs/txn.md 6.1) */
    f->fake.resolve_failures = 1000;
    f->fake.resolve_calls = 0;
    assert_int_equal(commit_two_ranges(f, &ts, &err), TXN_OK);
    wait_resolved(f);
    txn_db_get_stats(f->db, &st);
    assert_int_equal(st.resolves_abandoned, 1);
    assert_int_equal(f->fake.gc_calls, 1);
    assert_true(f->fake.resolve_calls >= 2);
    assert_int_equal(st.resolve_retries, 3 + (uint64_t)f->fake.resolve_calls - 1);
}

/* A large resolution: every call resolves some and stalls (RANGE_ERR_BUSY),
** more often than the failed attempts allowed: none of them counts as a
** failure, and the resolution goes through. */
static void test_resolver_progress_is_not_failure(void **state) {
    fixture *f = *state;
    f->fake.resolve_failures = 2;
    f->fake.resolve_progress = 12; /* > TXN__RESOLVE_ATTEMPTS_MAX (8) */
    hlc_timestamp ts;
    txn_error err;
    assert_int_equal(commit_two_ranges(f, &ts, &err), TXN_OK);
    wait_resolved(f);
    txn_db_stats st;
    txn_db_get_stats(f->db, &st);
    assert_int_equal(f->fake.resolve_calls, 15);
    assert_int_equal(st.resolve_retries, 14);
    assert_int_equal(st.resolves, 1);
    assert_int_equal(st.resolves_abandoned, 0);
    assert_int_equal(f->fake.gc_calls, 1);
}

/* Writes in one range and a delete span: the anchor is the smallest key. */
static void test_anchor_delete_span(void **state) {
    fixture *f = *state;
    txn *t;
    txn_error err = {0};
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    put(t, "y", "1");
    assert_int_equal(txn_delete_range(t, (const uint8_t *)"d", 1, (const uint8_t *)"f", 1, &err),
                     TXN_OK);
    assert_int_equal(txn_commit(t, NULL, &err), TXN_OK);
    assert_int_equal(f->fake.meta.anchor_len, 1);
    assert_int_equal(f->fake.anchor[0], 'd');
    wait_resolved(f);
}

int main(void) {
    base_log_set_level(BASE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_conflict_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_unavailable_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_finds_aborted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_end_then_abort_finds_committed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_end_then_aborted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_end_stays_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_unknown_outcome_resolved_committed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_meta_unknown_outcome_resolved_aborted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resolver_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolver_progress_is_not_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchor_delete_span, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large_goes_two_phase, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
