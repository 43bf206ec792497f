/*
** tests/range/test_range_router.c: the range_router (range/router.c) against
** fake leaseholders on rpc_uv loopback. Each fake node is a real rpc_uv
** endpoint whose handler decodes KV requests with the codec and answers from
** a small scripted model: the true descriptors of three ranges
** ["", "h"), ["h", "p"), ["p", +inf) on nodes 1..3, a leader per range, a
** mode per node (answer, drop, busy, "not leader" without a hint), 26 rows
** "a".."z" served in pages of PAGE_ROWS, commits with an idempotence
** table keyed by (txn_id, nonce) (a fixed commit timestamp is applied as
** is, or pushed by one logical tick while push_commits lasts), and
** VALIDATEs recorded as text (one conflicting key may be set); meta rows
** (range/meta.c) for the true descriptors in the first range, and ADMIN_SPLIT
** answers (a split of "h".."p" at "k" into range 4, or the descriptors of
** an existing boundary). A swallowed commit may also split range 3 at "s"
** (a fourth range, 4 = ["s", +inf)) before the retry comes. The router
** blocks its calling thread, so rpc_uv (a loop thread per node) rather than
** the single-threaded rpc_sim.
**
** A slow node (FAKE_SLOW) answers late, its loop thread asleep: the router
** gives a node that timed out a longer timeout on its next attempt.
**
** Merges: a node may answer RANGE_ERR_MERGING (FAKE_MERGING): the router
** asks again until the deadline, then ends RANGE_ERR_MERGING; meta's rule
** for merged ranges (range_meta_replaces) is checked on its own. An
** abandoned merge's fence whose cached range moved away (every named
** replica answers NOT_LEADER without a hint) finds it through meta.
**
** Every wait is bounded: the router's own deadline, or a condition variable
** with a timeout in the disconnect test's helper thread.
*/
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "base/base.h"
#include "range/kv_int.h"
#include "range/range.h"
#include "rpc/rpc.h"

#define FAKES 3
#define ROUTER_NODE 100
#define PAGE_ROWS 2
#define APPLIED_MAX 64
#define RPC_TIMEOUT_MS 200
#define DEADLINE_MS 3000
#define SHORT_DEADLINE_MS 1000
#define SLOW_MS (RPC_TIMEOUT_MS * 3 / 2) /* FAKE_SLOW: longer than one attempt's timeout */
#define WAIT_MS_MAX 10000
#define LOG_MAX 32       /* VALIDATE / COMMIT requests described */
#define LOG_TEXT_MAX 96

typedef enum fake_mode {
    FAKE_ANSWER = 0,
    FAKE_DROP = 1,          /* never answer (the router times out) */
    FAKE_BUSY = 2,          /* RANGE_ERR_BUSY */
    FAKE_NOT_LEADER = 3,    /* RANGE_ERR_NOT_LEADER without a hint */
    FAKE_MERGING = 4,       /* RANGE_ERR_MERGING (a range frozen by a merge) */
    FAKE_SLOW = 5,          /* answer as FAKE_ANSWER, SLOW_MS late (a live but slow
                               leaseholder; its loop thread sleeps, so requests queue) */
} fake_mode;

struct fake;
typedef struct fake_node {
    struct fake *f;
    uint64_t id;
} fake_node;

#define TRUTH_MAX 4
typedef struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    range_descriptor truth[TRUTH_MAX];
    int n_truth;
    bool serve_meta;             /* SCANs of the meta span answer the true descriptors */
    const range_descriptor *meta_view[TRUTH_MAX]; /* n_meta_view > 0: what meta answers
                                                     instead (borrowed; a stale meta) */
    int n_meta_view;
    bool mismatch_other;         /* KEY_MISMATCH also carries the range holding the key */
    bool split_after_swallow;    /* a swallowed commit splits range 3 at "s" */
    char conflict_after_swallow; /* ... and then validate_conflict = this (0: none) */
    uint64_t leader[TRUTH_MAX];  /* per range index */
    fake_mode mode[FAKES + 1];   /* per node */
    bool mismatch_holding;       /* KEY_MISMATCH carries the range holding the key */
    int swallow_commits;         /* apply the next N commits but do not answer */
    bool refuse_after_swallow;   /* then every node answers NOT_LEADER, no hint */
    int requests[FAKES + 1];
    int commit_requests;
    uint64_t commit_txn[APPLIED_MAX], commit_nonce[APPLIED_MAX]; /* every commit request */
    struct {
        uint64_t txn, nonce;
        hlc_timestamp ts;
    } applied[APPLIED_MAX];
    int n_applied;
    int64_t next_wall;
    int push_commits;            /* push the next N fixed-timestamp commits */
    char validate_conflict;      /* a VALIDATE reading this key conflicts (0: none) */
    int n_log;                   /* VALIDATE and COMMIT requests, as text */
    char log[LOG_MAX][LOG_TEXT_MAX];
    hlc_timestamp log_ts[LOG_MAX];
    /* two-phase commit: PREPARE answers prepare_ts[range index]; records by
    ** txn id; an intent of txn INTENT_HOLDER on key "i" answers GETs of it
    ** until a RESOLVE covers it; PUSH answers push_pending PENDINGs, then
    ** push_status (at push_ts) */
    hlc_timestamp prepare_ts[TRUTH_MAX];
    struct {
        uint64_t txn;
        int status;
        hlc_timestamp ts;
    } records[8];
    int n_records;
    bool intent_on_i;
    int push_pending;
    int push_status;
    hlc_timestamp push_ts;
    uint64_t txn_nonces[LOG_MAX]; /* nonce of each logged 2PC request */
    /* statement-time locks: LOCK answers newest_ts[range index]; while
    ** lock_held, a LOCK of "k" meets txn LOCK_HOLDER's unreplicated lock
    ** (refusals counted, not logged) until a PUSH of it answers ABORTED
    ** (push_status); push_cycle: a PUSH answers RANGE_ERR_ABORTED with the
    ** cycle (the pusher, LOCK_HOLDER); QUERY_TXN answers one edge
    ** DEP_WAITER -> the asker */
    hlc_timestamp newest_ts[TRUTH_MAX];
    /* large transactions: a PREPARE of more than too_large_writes writes
    ** (when != 0; -1: every one) answers RANGE_ERR_TOO_LARGE; each PREPARE answers its
    ** range's prepare_ts plus prepare_step per PREPARE before it;
    ** prepared_writes counts the writes of those answered OK; overlap_wait
    ** (> 0): a PREPARE waits (bounded) until that many arrived, and
    ** overlapped says they did */
    int too_large_writes;
    int push_prepares;           /* PREPAREs at a fixed timestamp answer PUSHED (count) */
    int64_t prepare_step;
    int n_prepares;
    int prepared_writes;
    int overlap_wait;
    int prepares_in;
    bool overlapped;
    bool lock_held;
    int lock_refusals;
    bool push_cycle;
    bool fence_merged;           /* a MERGE_FENCE answers OK, merged (else INVALID) */
    int meta_consistent;         /* meta SCANs without skip_intents (must stay 0) */
    fake_node nodes[FAKES + 1];
    rpc_uv *uv[FAKES + 1];
    int port[FAKES + 1];
    /* the router side */
    rpc_uv *router_uv;
    hlc_manual_clock manual;
    hlc_clock *clock;
    range_router *router;
} fake;

static const char *ROW_KEYS = "abcdefghijklmnopqrstuvwxyz";

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0) return c;
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

static void make_desc(range_descriptor *d, uint64_t id, uint64_t gen, const char *start,
                      const char *end, const uint64_t *replicas, size_t n) {
    memset(d, 0, sizeof(*d));
    d->range_id = id;
    d->generation = gen;
    d->start_len = strlen(start);
    if (d->start_len) {
        d->start_key = base_malloc(d->start_len);
        memcpy(d->start_key, start, d->start_len);
    }
    d->end_len = end ? strlen(end) : 0;
    if (d->end_len) {
        d->end_key = base_malloc(d->end_len);
        memcpy(d->end_key, end, d->end_len);
    }
    memcpy(d->replicas, replicas, n * sizeof(replicas[0]));
    d->n_replicas = n;
}

static int truth_index(fake *f, uint64_t range_id) {
    for (int i = 0; i < f->n_truth; i++)
        if (f->truth[i].range_id == range_id) return i;
    return -1;
}

static int truth_holding(fake *f, const uint8_t *key, size_t len) {
    for (int i = 0; i < f->n_truth; i++)
        if (range_descriptor_contains(&f->truth[i], key, len)) return i;
    return -1;
}

static bool span_in(const range_descriptor *d, const range_span *sp) {
    if (!range_descriptor_contains(d, sp->start, sp->start_len)) return false;
    if (sp->point || d->end_len == 0) return true;
    return sp->end_len > 0 && key_cmp(sp->end, sp->end_len, d->end_key, d->end_len) <= 0;
}

/* The first key of req outside d, or NULL when everything is inside. */
static bool request_inside(const range_descriptor *d, const range_kv_request *req,
                           const uint8_t **key, size_t *key_len) {
    switch (req->op) {
    case RANGE_KV_GET:
    case RANGE_KV_ADMIN_SPLIT:
        *key = req->key;
        *key_len = req->key_len;
        return range_descriptor_contains(d, req->key, req->key_len);
    case RANGE_KV_SCAN: {
        range_span sp = {req->start, req->start_len, req->end, req->end_len, false};
        *key = req->start;
        *key_len = req->start_len;
        return span_in(d, &sp);
    }
    case RANGE_KV_LOCK:
        for (size_t i = 0; i < req->lock_key_count; i++) {
            *key = req->lock_keys[i].key;
            *key_len = req->lock_keys[i].key_len;
            if (!range_descriptor_contains(d, *key, *key_len)) return false;
        }
        return true;
    case RANGE_KV_END_TXN:
    case RANGE_KV_PUSH:
    case RANGE_KV_HEARTBEAT:
    case RANGE_KV_QUERY_TXN:
        *key = req->anchor;
        *key_len = req->anchor_len;
        return range_descriptor_contains(d, req->anchor, req->anchor_len);
    case RANGE_KV_RESOLVE:
        for (size_t i = 0; i < req->span_count; i++) {
            *key = req->spans[i].start;
            *key_len = req->spans[i].start_len;
            if (!span_in(d, &req->spans[i])) return false;
        }
        return true;
    case RANGE_KV_PREPARE:
        for (size_t i = 0; i < req->delete_span_count; i++) {
            *key = req->delete_spans[i].start;
            *key_len = req->delete_spans[i].start_len;
            if (!span_in(d, &req->delete_spans[i])) return false;
        }
        /* then its writes and read spans, as a commit's */
        /* fall through */
    case RANGE_KV_COMMIT:
    case RANGE_KV_VALIDATE:
        for (size_t i = 0; i < req->write_count; i++) {
            *key = req->writes[i].key;
            *key_len = req->writes[i].key_len;
            if (!range_descriptor_contains(d, *key, *key_len)) return false;
        }
        for (size_t i = 0; i < req->read_span_count; i++) {
            *key = req->read_spans[i].start;
            *key_len = req->read_spans[i].start_len;
            if (!span_in(d, &req->read_spans[i])) return false;
        }
        return true;
    default:
        return true;
    }
}

/* Rows of [start, end) in scan order, at most PAGE_ROWS; *more when some
** are left. */
static size_t fake_scan(const range_kv_request *req, range_kv_row *rows, bool *more) {
    size_t n = 0;
    *more = false;
    size_t total = strlen(ROW_KEYS);
    for (size_t k = 0; k < total; k++) {
        size_t i = req->reverse ? total - 1 - k : k;
        const uint8_t *key = (const uint8_t *)&ROW_KEYS[i];
        if (key_cmp(key, 1, req->start, req->start_len) < 0) continue;
        if (req->end_len > 0 && key_cmp(key, 1, req->end, req->end_len) >= 0) continue;
        if (n == PAGE_ROWS) {
            *more = true;
            break;
        }
        rows[n].key = key;
        rows[n].key_len = 1;
        rows[n].value = key; /* the value of row "x" is "x" */
        rows[n].value_len = 1;
        n++;
    }
    return n;
}

/* The first meta row in [start, end) of the true descriptors (their meta
** keys and encodings into key/value: owner the caller). false: none. */
static bool fake_meta_row(fake *f, const range_kv_request *req, base_buf *key, base_buf *value) {
    int best = -1;
    base_buf k = {0}, best_key = {0};
    const range_descriptor *view[TRUTH_MAX];
    int n_view = f->n_meta_view > 0 ? f->n_meta_view : f->n_truth;
    for (int i = 0; i < n_view; i++) view[i] = f->n_meta_view > 0 ? f->meta_view[i] : &f->truth[i];
    for (int i = 0; i < n_view; i++) {
        assert_int_equal(range_meta_key(view[i], &k), RANGE_OK);
        if (key_cmp(k.data, k.len, req->start, req->start_len) < 0) continue;
        if (req->end_len > 0 && key_cmp(k.data, k.len, req->end, req->end_len) >= 0) continue;
        if (best >= 0 && key_cmp(k.data, k.len, best_key.data, best_key.len) >= 0) continue;
        best = i;
        base_buf_reset(&best_key);
        assert_int_equal(base_buf_append(&best_key, k.data, k.len), 0);
    }
    if (best >= 0) {
        base_buf_reset(key);
        base_buf_reset(value);
        assert_int_equal(base_buf_append(key, best_key.data, best_key.len), 0);
        assert_int_equal(range_descriptor_encode(view[best], value), RANGE_OK);
    }
    base_buf_free(&k);
    base_buf_free(&best_key);
    return best >= 0;
}

/* Range 3 ["p", +inf) splits at "s": range 4 = ["s", +inf). */
static void fake_split_range3(fake *f) {
    range_descriptor *d = &f->truth[2];
    assert_int_equal(f->n_truth, 3);
    assert_int_equal(d->end_len, 0);
    d->end_key = base_malloc(1);
    d->end_key[0] = 's';
    d->end_len = 1;
    d->generation++;
    make_desc(&f->truth[3], 4, d->generation, "s", NULL, d->replicas, d->n_replicas);
    f->leader[3] = f->leader[2];
    f->n_truth = 4;
}

/* "V2 b,f-h" / "C2 h-j": op, range and read spans (an open end is "+"). */
static void log_request(fake *f, const range_kv_request *req) {
    if (f->n_log >= LOG_MAX) return;
    char *out = f->log[f->n_log];
    size_t pos = (size_t)snprintf(out, LOG_TEXT_MAX, "%c%llu ",
                                  req->op == RANGE_KV_VALIDATE ? 'V' : 'C',
                                  (unsigned long long)req->range_id);
    for (size_t i = 0; i < req->read_span_count && pos + 8 < LOG_TEXT_MAX; i++) {
        const range_span *sp = &req->read_spans[i];
        pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, "%s%.*s", i ? "," : "",
                                (int)sp->start_len, (const char *)sp->start);
        if (!sp->point)
            pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, "-%.*s",
                                    sp->end_len ? (int)sp->end_len : 1,
                                    sp->end_len ? (const char *)sp->end : "+");
    }
    f->log_ts[f->n_log++] = req->commit_ts;
}

#define INTENT_HOLDER 77
#define LOCK_HOLDER 88
#define DEP_WAITER 55

/* 2PC requests as text: "P2 k,l r:m rec" (prepare: writes, read spans,
** creates the record), "E1 C@3000" (end), "R2 k-l A" (resolve), "U1 77"
** (push of 77 at range 1). An open end is "+"; a span end's trailing 0x00
** is dropped. */
static void log_txn_request(fake *f, const range_kv_request *req) {
    if (f->n_log >= LOG_MAX) return;
    char *out = f->log[f->n_log];
    char op = req->op == RANGE_KV_PREPARE     ? 'P'
              : req->op == RANGE_KV_END_TXN   ? 'E'
              : req->op == RANGE_KV_RESOLVE   ? 'R'
              : req->op == RANGE_KV_LOCK      ? 'L'
              : req->op == RANGE_KV_HEARTBEAT ? 'H'
              : req->op == RANGE_KV_QUERY_TXN ? 'Q'
                                              : 'U';
    size_t pos = (size_t)snprintf(out, LOG_TEXT_MAX, "%c%llu", op,
                                  (unsigned long long)req->range_id);
    if (req->op == RANGE_KV_PREPARE && req->write_count > 4) {
        /* a chunk of a large transaction: "P1 #6808 a00000..a06807" */
        const range_write *a = &req->writes[0], *b = &req->writes[req->write_count - 1];
        pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, " #%zu %.*s..%.*s",
                                req->write_count, (int)a->key_len, (const char *)a->key,
                                (int)b->key_len, (const char *)b->key);
        if (req->read_span_count > 0)
            pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, " r:%zu", req->read_span_count);
        if (req->create_record) pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, " rec");
    } else if (req->op == RANGE_KV_PREPARE) {
        for (size_t i = 0; i < req->write_count; i++)
            pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, "%c%.*s", i ? ',' : ' ',
                                    (int)req->writes[i].key_len,
                                    (const char *)req->writes[i].key);
        for (size_t i = 0; i < req->read_span_count && pos + 8 < LOG_TEXT_MAX; i++)
            pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, "%s%.*s", i ? "," : " r:",
                                    (int)req->read_spans[i].start_len,
                                    (const char *)req->read_spans[i].start);
        if (req->create_record) pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, " rec");
    } else if (req->op == RANGE_KV_END_TXN) {
        pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, " %c@%lld",
                                req->txn_status == RANGE_TXN_COMMITTED ? 'C' : 'A',
                                (long long)req->commit_ts.wall_ns);
    } else if (req->op == RANGE_KV_RESOLVE) {
        for (size_t i = 0; i < req->span_count && pos + 12 < LOG_TEXT_MAX; i++) {
            const range_span *sp = &req->spans[i];
            size_t elen = sp->end_len;
            if (elen > 0 && sp->end[elen - 1] == 0) elen--;
            pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, "%c%.*s", i ? ',' : ' ',
                                    (int)sp->start_len, (const char *)sp->start);
            if (!sp->point)
                pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, "-%.*s",
                                        sp->end_len ? (int)elen : 1,
                                        sp->end_len ? (const char *)sp->end : "+");
        }
        pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, " %c",
                                req->txn_status == RANGE_TXN_COMMITTED ? 'C' : 'A');
    } else if (req->op == RANGE_KV_LOCK) {
        for (size_t i = 0; i < req->lock_key_count; i++)
            pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, "%c%.*s", i ? ',' : ' ',
                                    (int)req->lock_keys[i].key_len,
                                    (const char *)req->lock_keys[i].key);
    } else if (req->op == RANGE_KV_HEARTBEAT || req->op == RANGE_KV_QUERY_TXN) {
        pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, " %llu",
                                (unsigned long long)req->txn_id);
    } else {
        pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, " %llu",
                                (unsigned long long)req->pushee_txn_id);
        if (req->dep_count > 0 || req->since_wall_ns != 0)
            pos += (size_t)snprintf(out + pos, LOG_TEXT_MAX - pos, " deps=%zu since=%lld",
                                    req->dep_count, (long long)req->since_wall_ns);
    }
    f->txn_nonces[f->n_log] = req->nonce;
    f->log_ts[f->n_log++] = req->commit_ts;
}

static int fake_record(fake *f, uint64_t txn) {
    for (int i = 0; i < f->n_records; i++)
        if (f->records[i].txn == txn) return i;
    assert_true(f->n_records < 8);
    f->records[f->n_records].txn = txn;
    f->records[f->n_records].status = RANGE_TXN_PENDING;
    return f->n_records++;
}

static bool spans_hold(const range_kv_request *req, char key) {
    const uint8_t k = (uint8_t)key;
    for (size_t i = 0; i < req->read_span_count; i++) {
        const range_span *sp = &req->read_spans[i];
        if (sp->point ? (sp->start_len == 1 && sp->start[0] == k)
                      : (key_cmp(&k, 1, sp->start, sp->start_len) >= 0 &&
                         (sp->end_len == 0 || key_cmp(&k, 1, sp->end, sp->end_len) < 0)))
            return true;
    }
    return false;
}

static void fake_handler(void *ctx, rpc_transport *t, const rpc_message *msg) {
    fake_node *node = ctx;
    fake *f = node->f;
    if (msg->request_id == 0) return;
    range_kv_request req;
    range_kv_response resp;
    memset(&resp, 0, sizeof(resp));
    range_kv_row rows[PAGE_ROWS];
    base_buf out = {0};
    base_buf meta_key = {0}, meta_value = {0};
    range_descriptor split_left, split_right;
    memset(&split_left, 0, sizeof(split_left));
    memset(&split_right, 0, sizeof(split_right));
    if (range_kv_request_decode(msg->payload, msg->payload_len, &req) != RANGE_OK) {
        resp.status = RANGE_ERR_CORRUPT;
        assert_int_equal(range_kv_response_encode(&resp, &out), RANGE_OK);
        rpc_respond(t, msg->from, msg->request_id, resp.status, out.data, out.len);
        base_buf_free(&out);
        return;
    }
    pthread_mutex_lock(&f->mu);
    bool slow = f->mode[node->id] == FAKE_SLOW;
    pthread_mutex_unlock(&f->mu);
    if (slow) {
        struct timespec d = {0, (long)SLOW_MS * 1000000L};
        nanosleep(&d, NULL); /* a bounded delay, not a wait for an event */
    }
    pthread_mutex_lock(&f->mu);
    f->requests[node->id]++;
    pthread_cond_broadcast(&f->cv);
    bool answer = true;
    fake_mode mode = f->mode[node->id];
    int ri = truth_index(f, req.range_id);
    const uint8_t *bad = NULL;
    size_t bad_len = 0;
    if (req.op == RANGE_KV_COMMIT && f->commit_requests < APPLIED_MAX) {
        f->commit_txn[f->commit_requests] = req.txn_id;
        f->commit_nonce[f->commit_requests] = req.nonce;
        f->commit_requests++;
    }
    if (mode == FAKE_DROP) {
        answer = false;
    } else if (mode == FAKE_BUSY) {
        resp.status = RANGE_ERR_BUSY;
    } else if (mode == FAKE_NOT_LEADER) {
        resp.status = RANGE_ERR_NOT_LEADER;
    } else if (mode == FAKE_MERGING) {
        resp.status = RANGE_ERR_MERGING;
    } else if (req.op == RANGE_KV_DESCRIBE && ri >= 0) {
        /* any replica describes its range, with the leader it knows */
        bool hosts = false;
        for (size_t i = 0; i < f->truth[ri].n_replicas; i++)
            if (f->truth[ri].replicas[i] == node->id) hosts = true;
        resp.status = hosts ? RANGE_OK : RANGE_ERR_NOT_LEADER;
        resp.has_descriptor = hosts;
        resp.descriptor = f->truth[ri]; /* borrowed for the encoding */
        resp.lease_valid = hosts;
        resp.leader_id = hosts ? f->leader[ri] : 0;
    } else if (ri >= 0 && f->leader[ri] != node->id) {
        resp.status = RANGE_ERR_NOT_LEADER;
        resp.leader_hint = f->leader[ri];
    } else if (ri < 0 || !request_inside(&f->truth[ri], &req, &bad, &bad_len)) {
        resp.status = RANGE_ERR_KEY_MISMATCH;
        int hi = f->mismatch_holding && bad != NULL ? truth_holding(f, bad, bad_len) : ri;
        if (ri < 0 && req.op == RANGE_KV_DESCRIBE && req.key_len > 0 && !req.key_below) {
            /* a range this node does not host: it names its range holding the key */
            hi = truth_holding(f, req.key, req.key_len);
            bool hosts = false;
            for (size_t i = 0; hi >= 0 && i < f->truth[hi].n_replicas; i++)
                if (f->truth[hi].replicas[i] == node->id) hosts = true;
            if (!hosts) hi = -1;
        }
        if (hi >= 0) {
            resp.has_descriptor = true;
            resp.descriptor = f->truth[hi]; /* borrowed for the encoding */
        }
        int oi = f->mismatch_other && bad != NULL ? truth_holding(f, bad, bad_len) : -1;
        if (oi >= 0 && oi != hi) {
            resp.has_other = true;
            resp.other = f->truth[oi];
        }
    } else if (req.op == RANGE_KV_GET && f->intent_on_i && req.key_len == 1 && req.key[0] == 'i') {
        resp.status = RANGE_ERR_INTENT;
        resp.intent_key = req.key;
        resp.intent_key_len = 1;
        resp.intent_txn_id = INTENT_HOLDER;
        resp.intent_anchor = (const uint8_t *)"b";
        resp.intent_anchor_len = 1;
        resp.intent_ts = (hlc_timestamp){400, 0};
    } else if (req.op == RANGE_KV_GET) {
        resp.status = RANGE_NOT_FOUND;
        if (req.key_len == 1 && req.key[0] >= 'a' && req.key[0] <= 'z') {
            resp.status = RANGE_OK;
            resp.value = req.key;
            resp.value_len = 1;
        }
    } else if (req.op == RANGE_KV_SCAN && f->serve_meta &&
               range_meta_is_key(req.start, req.start_len)) {
        resp.status = RANGE_OK;
        if (!req.skip_intents) f->meta_consistent++;
        if (fake_meta_row(f, &req, &meta_key, &meta_value)) {
            rows[0] = (range_kv_row){meta_key.data, meta_key.len, meta_value.data, meta_value.len};
            resp.rows = rows;
            resp.n_rows = 1;
        }
    } else if (req.op == RANGE_KV_SCAN) {
        resp.status = RANGE_OK;
        resp.rows = rows;
        resp.n_rows = fake_scan(&req, rows, &resp.more);
    } else if (req.op == RANGE_KV_ADMIN_SPLIT) {
        const range_descriptor *d = &f->truth[ri];
        resp.status = RANGE_OK;
        resp.has_descriptor = true;
        resp.has_other = true;
        if (key_cmp(req.key, req.key_len, d->start_key, d->start_len) == 0) {
            /* a boundary already: the range ending there and this one */
            resp.descriptor = f->truth[ri - 1];
            resp.other = *d;
        } else {
            /* split (not remembered): [start, key) and [key, end) */
            char key[8] = {0};
            memcpy(key, req.key, req.key_len < 7 ? req.key_len : 7);
            char start[8] = {0}, end[8] = {0};
            memcpy(start, d->start_key, d->start_len);
            if (d->end_len) memcpy(end, d->end_key, d->end_len);
            make_desc(&split_left, d->range_id, d->generation + 1, start, key, d->replicas,
                      d->n_replicas);
            make_desc(&split_right, req.new_range_id, d->generation + 1, key,
                      d->end_len ? end : NULL, d->replicas, d->n_replicas);
            resp.descriptor = split_left;
            resp.other = split_right;
        }
    } else if (req.op == RANGE_KV_VALIDATE) {
        log_request(f, &req);
        resp.status = RANGE_OK;
        if (f->validate_conflict != 0 && spans_hold(&req, f->validate_conflict)) {
            resp.status = RANGE_ERR_CONFLICT;
            resp.conflict_kind = RANGE_CONFLICT_READ_WRITE;
            resp.conflict_key = (const uint8_t *)&f->validate_conflict;
            resp.conflict_key_len = 1;
            resp.conflict_ts = req.commit_ts;
        }
    } else if (req.op == RANGE_KV_COMMIT) {
        log_request(f, &req);
        int found = -1;
        for (int i = 0; i < f->n_applied; i++)
            if (f->applied[i].txn == req.txn_id && f->applied[i].nonce == req.nonce) found = i;
        if (found < 0 && req.write_count > 0 && req.writes[0].key_len == 1 &&
            req.writes[0].key[0] == 'c') {
            /* key "c" always conflicts */
            resp.status = RANGE_ERR_CONFLICT;
            resp.conflict_kind = RANGE_CONFLICT_WRITE_WRITE;
            resp.conflict_key = req.writes[0].key;
            resp.conflict_key_len = 1;
            resp.conflict_ts = (hlc_timestamp){42, 7};
            resp.conflict_pending = true;
        } else if (found < 0 && !hlc_is_zero(req.commit_ts) && f->push_commits > 0) {
            f->push_commits--;
            resp.status = RANGE_ERR_PUSHED;
            resp.commit_ts = (hlc_timestamp){req.commit_ts.wall_ns, req.commit_ts.logical + 1};
        } else {
            if (found < 0 && f->n_applied < APPLIED_MAX) {
                found = f->n_applied++;
                f->applied[found].txn = req.txn_id;
                f->applied[found].nonce = req.nonce;
                f->applied[found].ts = hlc_is_zero(req.commit_ts)
                                           ? (hlc_timestamp){f->next_wall++, 0}
                                           : req.commit_ts;
            }
            resp.status = RANGE_OK;
            resp.commit_ts = f->applied[found].ts;
            if (f->swallow_commits > 0) {
                f->swallow_commits--;
                answer = false;
                if (f->refuse_after_swallow)
                    for (int i = 1; i <= FAKES; i++) f->mode[i] = FAKE_NOT_LEADER;
                if (f->split_after_swallow) fake_split_range3(f);
                if (f->conflict_after_swallow != 0)
                    f->validate_conflict = f->conflict_after_swallow;
            }
        }
    } else if (req.op == RANGE_KV_PREPARE) {
        log_txn_request(f, &req);
        if (f->overlap_wait > 0) {
            /* bounded: a router that sends one at a time gets through late */
            f->prepares_in++;
            pthread_cond_broadcast(&f->cv);
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 3;
            while (f->prepares_in < f->overlap_wait &&
                   pthread_cond_timedwait(&f->cv, &f->mu, &until) == 0) {
            }
            if (f->prepares_in >= f->overlap_wait) f->overlapped = true;
        }
        resp.status = RANGE_OK;
        resp.commit_ts = f->prepare_ts[ri];
        resp.commit_ts.wall_ns += f->prepare_step * f->n_prepares++;
        if (!hlc_is_zero(req.commit_ts)) resp.commit_ts = req.commit_ts; /* fixed: as is */
        if (!hlc_is_zero(req.commit_ts) && f->push_prepares > 0) {
            f->push_prepares--;
            resp.status = RANGE_ERR_PUSHED;
            resp.commit_ts = (hlc_timestamp){req.commit_ts.wall_ns, req.commit_ts.logical + 1};
        } else if (f->too_large_writes != 0 && (int)req.write_count > f->too_large_writes) {
            resp.status = RANGE_ERR_TOO_LARGE;
            resp.commit_ts = HLC_ZERO;
        } else if (f->intent_on_i && spans_hold(&req, 'i')) {
            resp.status = RANGE_ERR_INTENT; /* its read of "i" meets the intent */
            resp.commit_ts = HLC_ZERO;
            resp.intent_key = (const uint8_t *)"i";
            resp.intent_key_len = 1;
            resp.intent_txn_id = INTENT_HOLDER;
            resp.intent_anchor = (const uint8_t *)"b";
            resp.intent_anchor_len = 1;
            resp.intent_ts = (hlc_timestamp){400, 0};
        } else if (req.write_count > 0 && req.writes[0].key[0] == 'c') {
            resp.status = RANGE_ERR_CONFLICT; /* key "c" always conflicts */
            resp.commit_ts = HLC_ZERO;
            resp.conflict_kind = RANGE_CONFLICT_WRITE_WRITE;
            resp.conflict_key = req.writes[0].key;
            resp.conflict_key_len = 1;
            resp.conflict_ts = (hlc_timestamp){42, 7};
        } else if (req.create_record) {
            int i = fake_record(f, req.txn_id);
            if (f->records[i].status == RANGE_TXN_ABORTED) {
                resp.status = RANGE_ERR_ABORTED;
                resp.commit_ts = HLC_ZERO;
            }
        }
        if (resp.status == RANGE_OK) f->prepared_writes += (int)req.write_count;
    } else if (req.op == RANGE_KV_END_TXN) {
        log_txn_request(f, &req);
        int i = fake_record(f, req.txn_id);
        resp.status = RANGE_OK;
        if (f->records[i].status == RANGE_TXN_PENDING) {
            f->records[i].status = req.txn_status;
            f->records[i].ts = req.commit_ts;
        } else if (f->records[i].status != req.txn_status &&
                   req.txn_status == RANGE_TXN_COMMITTED) {
            resp.status = RANGE_ERR_ABORTED;
        }
        resp.has_txn = true;
        resp.txn_status = (uint8_t)f->records[i].status;
        resp.commit_ts = f->records[i].ts;
    } else if (req.op == RANGE_KV_RESOLVE) {
        log_txn_request(f, &req);
        resp.status = RANGE_OK;
        for (size_t i = 0; i < req.span_count; i++)
            if (req.txn_id == INTENT_HOLDER && req.spans[i].start_len == 1 &&
                req.spans[i].start[0] == 'i')
                f->intent_on_i = false;
    } else if (req.op == RANGE_KV_LOCK) {
        bool blocked = false;
        for (size_t i = 0; i < req.lock_key_count; i++)
            if (f->lock_held && req.lock_keys[i].key_len == 1 && req.lock_keys[i].key[0] == 'k')
                blocked = true;
        if (blocked) {
            f->lock_refusals++;
            resp.status = RANGE_ERR_INTENT;
            resp.intent_key = (const uint8_t *)"k";
            resp.intent_key_len = 1;
            resp.intent_txn_id = LOCK_HOLDER;
            resp.intent_anchor = (const uint8_t *)"m";
            resp.intent_anchor_len = 1;
            resp.intent_ts = (hlc_timestamp){450, 0};
            resp.intent_unreplicated = true;
            resp.intent_since_wall_ns = 123;
        } else {
            log_txn_request(f, &req);
            resp.status = RANGE_OK;
            resp.newest_ts = f->newest_ts[ri];
        }
    } else if (req.op == RANGE_KV_QUERY_TXN) {
        log_txn_request(f, &req);
        static range_kv_edge edge;
        edge = (range_kv_edge){DEP_WAITER, 0, req.txn_id, 0};
        resp.status = RANGE_OK;
        resp.deps = &edge;
        resp.dep_count = 1;
    } else if (req.op == RANGE_KV_HEARTBEAT) {
        log_txn_request(f, &req);
        int i = fake_record(f, req.txn_id);
        resp.status = f->records[i].status == RANGE_TXN_ABORTED ? RANGE_ERR_ABORTED : RANGE_OK;
        resp.has_txn = true;
        resp.txn_status = (uint8_t)f->records[i].status;
    } else if (req.op == RANGE_KV_PUSH && f->push_cycle && req.pushee_txn_id == LOCK_HOLDER) {
        log_txn_request(f, &req);
        static uint64_t cycle[2];
        cycle[0] = req.txn_id;
        cycle[1] = LOCK_HOLDER;
        resp.status = RANGE_ERR_ABORTED;
        resp.cycle = cycle;
        resp.cycle_len = 2;
    } else if (req.op == RANGE_KV_PUSH) {
        log_txn_request(f, &req);
        if (req.pushee_txn_id == LOCK_HOLDER && f->push_status == RANGE_TXN_ABORTED)
            f->lock_held = false; /* its locks go with its record */
        resp.status = RANGE_OK;
        resp.has_txn = true;
        if (f->push_pending > 0) {
            f->push_pending--;
            resp.txn_status = RANGE_TXN_PENDING;
        } else {
            resp.txn_status = (uint8_t)f->push_status;
            resp.commit_ts = f->push_ts;
        }
    } else if (req.op == RANGE_KV_MERGE_FENCE && f->fence_merged) {
        resp.status = RANGE_OK;
        resp.has_descriptor = true;
        resp.descriptor = f->truth[ri];
        resp.merged = true;
    } else {
        resp.status = RANGE_ERR_INVALID;
    }
    if (answer) assert_int_equal(range_kv_response_encode(&resp, &out), RANGE_OK);
    pthread_mutex_unlock(&f->mu);
    if (answer) rpc_respond(t, msg->from, msg->request_id, resp.status, out.data, out.len);
    base_buf_free(&out);
    base_buf_free(&meta_key);
    base_buf_free(&meta_value);
    range_descriptor_free(&split_left);
    range_descriptor_free(&split_right);
    range_kv_request_free(&req);
}

/* ---- fixture ---------------------------------------------------------------------- */

static const uint64_t ALL[3] = {1, 2, 3};

static int setup(void **state) {
    fake *f = calloc(1, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    make_desc(&f->truth[0], 1, 2, "", "h", ALL, 3);
    make_desc(&f->truth[1], 2, 1, "h", "p", ALL, 3);
    make_desc(&f->truth[2], 3, 1, "p", NULL, ALL, 3);
    f->n_truth = 3;
    for (int i = 0; i < TRUTH_MAX; i++) f->leader[i] = 1;
    f->next_wall = 1000;
    for (int i = 1; i <= FAKES; i++) {
        f->nodes[i] = (fake_node){f, (uint64_t)i};
        rpc_uv_config cfg;
        rpc_uv_config_init(&cfg);
        cfg.node_id = (rpc_node_id)i;
        cfg.listen_host = "127.0.0.1";
        cfg.handler = fake_handler;
        cfg.handler_ctx = &f->nodes[i];
        cfg.random_seed = (uint64_t)i;
        assert_int_equal(rpc_uv_start(&cfg, &f->uv[i]), RPC_OK);
        f->port[i] = rpc_uv_listen_port(f->uv[i]);
    }
    rpc_uv_config cfg;
    rpc_uv_config_init(&cfg);
    cfg.node_id = ROUTER_NODE;
    cfg.listen_host = "127.0.0.1";
    cfg.random_seed = 99;
    assert_int_equal(rpc_uv_start(&cfg, &f->router_uv), RPC_OK);
    int router_port = rpc_uv_listen_port(f->router_uv);
    for (int i = 1; i <= FAKES; i++) {
        assert_int_equal(rpc_uv_add_peer(f->router_uv, (rpc_node_id)i, "127.0.0.1", f->port[i]),
                         RPC_OK);
        assert_int_equal(rpc_uv_add_peer(f->uv[i], ROUTER_NODE, "127.0.0.1", router_port),
                         RPC_OK);
    }
    f->manual.now_ns = 1700000000LL * 1000000000LL;
    assert_int_equal(hlc_clock_new(hlc_manual_clock_as_physical(&f->manual),
                                   HLC_DEFAULT_MAX_OFFSET_NS, &f->clock),
                     0);
    range_router_config rc = {.transport = rpc_uv_transport(f->router_uv), .clock = f->clock,
                              .local_node_id = ROUTER_NODE, .deadline_ms = DEADLINE_MS,
                              .rpc_timeout_ms = RPC_TIMEOUT_MS, .random_seed = 7};
    assert_int_equal(range_router_new(&rc, &f->router), RANGE_OK);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fake *f = *state;
    range_router_free(f->router);
    rpc_uv_free(f->router_uv);
    for (int i = 1; i <= FAKES; i++)
        if (f->uv[i] != NULL) rpc_uv_free(f->uv[i]);
    hlc_clock_free(f->clock);
    for (int i = 0; i < f->n_truth; i++) range_descriptor_free(&f->truth[i]);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return 0;
}

/* Teach the router the true descriptors (what bootstrap does). */
static void learn_truth(fake *f) {
    for (int i = 0; i < 3; i++)
        assert_int_equal(range_router_update_descriptor(f->router, &f->truth[i]), RANGE_OK);
}

static void set_leader(fake *f, int range_index, uint64_t node) {
    pthread_mutex_lock(&f->mu);
    f->leader[range_index] = node;
    pthread_mutex_unlock(&f->mu);
}

static void set_mode(fake *f, uint64_t node, fake_mode mode) {
    pthread_mutex_lock(&f->mu);
    f->mode[node] = mode;
    pthread_mutex_unlock(&f->mu);
}

static int requests_at(fake *f, uint64_t node) {
    pthread_mutex_lock(&f->mu);
    int n = f->requests[node];
    pthread_mutex_unlock(&f->mu);
    return n;
}

static int get(fake *f, const char *key, base_buf *out) {
    range_kv *kv = range_router_kv(f->router);
    return kv->ops->get(kv, (const uint8_t *)key, strlen(key), (hlc_timestamp){500, 0}, out);
}

static uint64_t cached_leaseholder(fake *f, uint64_t range_id) {
    range_descriptor *d;
    uint64_t *l;
    size_t n;
    assert_int_equal(range_router_snapshot(f->router, &d, &l, &n), RANGE_OK);
    uint64_t found = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i].range_id == range_id) found = l[i];
        range_descriptor_free(&d[i]);
    }
    base_free(d);
    base_free(l);
    return found;
}

static void last_error(fake *f, char *buf, size_t size) {
    range_kv *kv = range_router_kv(f->router);
    assert_non_null(kv->ops->last_error);
    assert_true(kv->ops->last_error(kv, buf, size));
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_redirect_on_not_leader_hint(void **state) {
    fake *f = *state;
    learn_truth(f);
    set_leader(f, 1, 3); /* range 2 ["h", "p") is led by node 3 */
    base_buf out = {0};
    assert_int_equal(get(f, "k", &out), RANGE_OK);
    assert_int_equal(out.len, 1);
    assert_int_equal(out.data[0], 'k');
    range_router_stats st;
    range_router_get_stats(f->router, &st);
    assert_int_equal(st.redirects, 1);  /* node 1 (first replica) said "try 3" */
    assert_int_equal(st.attempts, 2);
    assert_int_equal(cached_leaseholder(f, 2), 3);
    /* the next read goes straight to the leaseholder */
    assert_int_equal(get(f, "m", &out), RANGE_OK);
    range_router_get_stats(f->router, &st);
    assert_int_equal(st.attempts, 3);
    assert_int_equal(requests_at(f, 3), 2);
    /* absent keys are NOT_FOUND, not errors */
    assert_int_equal(get(f, "hz", &out), RANGE_NOT_FOUND);
    base_buf_free(&out);
}

static void test_failover_on_timeout(void **state) {
    fake *f = *state;
    learn_truth(f);
    set_mode(f, 1, FAKE_DROP); /* node 1 hangs */
    set_leader(f, 0, 2);
    base_buf out = {0};
    int64_t t0 = base_monotonic_ns();
    assert_int_equal(get(f, "b", &out), RANGE_OK);
    int64_t took_ms = (base_monotonic_ns() - t0) / 1000000;
    assert_int_equal(out.data[0], 'b');
    range_router_stats st;
    range_router_get_stats(f->router, &st);
    assert_true(st.failovers >= 1);
    assert_int_equal(requests_at(f, 1), 1);
    assert_int_equal(cached_leaseholder(f, 1), 2);
    assert_true(took_ms >= RPC_TIMEOUT_MS - 50 && took_ms < DEADLINE_MS);
    base_buf_free(&out);
}

/* A leaseholder slower than one rpc timeout but alive (a large VALIDATE,
** RESOLVE or commit at a leaseholder away from the gateway, as after a
** lease transfer in the middle of `pgbench -i`): each attempt at that node
** waits twice as long as its last one there, so it answers. Before, every
** attempt timed out alike until the deadline: RANGE_ERR_UNAVAILABLE. */
static void test_slow_leaseholder_answers(void **state) {
    fake *f = *state;
    learn_truth(f);
    set_mode(f, 1, FAKE_SLOW); /* node 1 leads range 1 and answers SLOW_MS late */
    base_buf out = {0};
    int64_t t0 = base_monotonic_ns();
    assert_int_equal(get(f, "b", &out), RANGE_OK);
    int64_t took_ms = (base_monotonic_ns() - t0) / 1000000;
    assert_int_equal(out.len, 1);
    assert_int_equal(out.data[0], 'b');
    range_router_stats st;
    range_router_get_stats(f->router, &st);
    assert_true(st.failovers >= 1); /* the first attempt did time out */
    assert_true(requests_at(f, 1) >= 2);
    assert_true(took_ms >= RPC_TIMEOUT_MS - 50 && took_ms < DEADLINE_MS);
    assert_int_equal(cached_leaseholder(f, 1), 1);
    base_buf_free(&out);
}

typedef struct killer {
    fake *f;
    pthread_t thread;
    bool killed;
} killer;

/* Waits (bounded) until node 1 holds a request, then stops its transport:
** the connection carrying the request drops. */
static void *killer_main(void *arg) {
    killer *k = arg;
    fake *f = k->f;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS_MAX / 1000;
    pthread_mutex_lock(&f->mu);
    while (f->requests[1] == 0)
        if (pthread_cond_timedwait(&f->cv, &f->mu, &until) != 0) break;
    bool got = f->requests[1] > 0;
    pthread_mutex_unlock(&f->mu);
    if (got) {
        rpc_uv_free(f->uv[1]);
        f->uv[1] = NULL;
        k->killed = true;
    }
    return NULL;
}

static void test_failover_on_disconnect(void **state) {
    fake *f = *state;
    learn_truth(f);
    set_mode(f, 1, FAKE_DROP);
    set_leader(f, 0, 2);
    killer k = {.f = f};
    assert_int_equal(pthread_create(&k.thread, NULL, killer_main, &k), 0);
    base_buf out = {0};
    assert_int_equal(get(f, "a", &out), RANGE_OK);
    assert_int_equal(out.data[0], 'a');
    pthread_join(k.thread, NULL);
    assert_true(k.killed);
    assert_int_equal(cached_leaseholder(f, 1), 2);
    /* node 1 stays down: reads keep working through node 2 */
    assert_int_equal(get(f, "g", &out), RANGE_OK);
    base_buf_free(&out);
}

static void test_key_mismatch_refresh(void **state) {
    fake *f = *state;
    /* the router knows only the bootstrap shape: one range over everything */
    range_descriptor stale;
    make_desc(&stale, 1, 1, "", NULL, ALL, 3);
    assert_int_equal(range_router_update_descriptor(f->router, &stale), RANGE_OK);
    /* an older generation of a cached range is ignored */
    range_descriptor older;
    make_desc(&older, 1, 0, "", "b", ALL, 3);
    assert_int_equal(range_router_update_descriptor(f->router, &older), RANGE_OK);
    range_descriptor_free(&older);

    pthread_mutex_lock(&f->mu);
    f->mismatch_holding = true;
    pthread_mutex_unlock(&f->mu);
    base_buf out = {0};
    assert_int_equal(get(f, "k", &out), RANGE_OK);
    assert_int_equal(out.data[0], 'k');
    range_router_stats st;
    range_router_get_stats(f->router, &st);
    assert_int_equal(st.descriptor_refreshes, 1);
    /* range 2 replaced the overlapping stale range 1, which is kept cut at
    ** range 2's start: the first range holds meta (router.c) */
    range_descriptor *d;
    uint64_t *l;
    size_t n;
    assert_int_equal(range_router_snapshot(f->router, &d, &l, &n), RANGE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(d[0].range_id, 1);
    assert_int_equal(d[0].end_len, 1);
    assert_memory_equal(d[0].end_key, "h", 1);
    assert_int_equal(d[1].range_id, 2);
    assert_int_equal(d[1].start_len, 1);
    assert_memory_equal(d[1].start_key, "h", 1);
    range_descriptor_free(&d[0]);
    range_descriptor_free(&d[1]);
    base_free(d);
    base_free(l);

    /* a mismatch answer naming only the addressed range (its new, smaller
    ** shape) leaves no range for the key: unavailable, said clearly */
    pthread_mutex_lock(&f->mu);
    f->mismatch_holding = false;
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(range_router_update_descriptor(f->router, &stale), RANGE_OK);
    assert_int_equal(get(f, "r", &out), RANGE_ERR_UNAVAILABLE);
    char msg[256];
    last_error(f, msg, sizeof(msg));
    assert_non_null(strstr(msg, "no range known for key 0x72"));
    range_descriptor_free(&stale);
    base_buf_free(&out);
}

typedef struct scan_case {
    const char *start, *end; /* NULL end: open */
    bool reverse;
} scan_case;

static void check_scan(fake *f, const scan_case *sc) {
    range_kv *kv = range_router_kv(f->router);
    range_kv_iter *it;
    size_t slen = strlen(sc->start), elen = sc->end ? strlen(sc->end) : 0;
    assert_int_equal(kv->ops->iter_open(kv, (const uint8_t *)sc->start, slen,
                                        (const uint8_t *)sc->end, elen, (hlc_timestamp){500, 0},
                                        sc->reverse, &it),
                     RANGE_OK);
    char expect[32], got[32];
    size_t ne = 0, ng = 0;
    size_t total = strlen(ROW_KEYS);
    for (size_t k = 0; k < total; k++) {
        size_t i = sc->reverse ? total - 1 - k : k;
        const uint8_t *key = (const uint8_t *)&ROW_KEYS[i];
        if (key_cmp(key, 1, (const uint8_t *)sc->start, slen) < 0) continue;
        if (elen && key_cmp(key, 1, (const uint8_t *)sc->end, elen) >= 0) continue;
        expect[ne++] = ROW_KEYS[i];
    }
    const uint8_t *key, *value;
    size_t key_len, value_len;
    int rc;
    while ((rc = kv->ops->iter_next(it, &key, &key_len, &value, &value_len)) == 1) {
        assert_true(ng < sizeof(got));
        assert_int_equal(key_len, 1);
        assert_int_equal(value_len, 1);
        assert_int_equal(value[0], key[0]);
        got[ng++] = (char)key[0];
    }
    assert_int_equal(rc, 0);
    assert_int_equal(kv->ops->iter_next(it, &key, &key_len, &value, &value_len), 0);
    kv->ops->iter_close(it);
    assert_int_equal(ng, ne);
    assert_memory_equal(got, expect, ne);
}

static void test_scan_across_ranges_paged(void **state) {
    fake *f = *state;
    learn_truth(f);
    set_leader(f, 1, 2); /* a redirect in the middle of the scan */
    static const scan_case cases[] = {
        {"b", "x", false}, {"b", "x", true},   {"", NULL, false}, {"", NULL, true},
        {"h", "p", false}, {"h", "p", true},   {"g", "i", false}, {"g", "i", true},
        {"q", NULL, true}, {"", "c", true},    {"d", "d", false}, {"zz", NULL, false},
        {"hh", "pp", true},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(cases); i++) check_scan(f, &cases[i]);
    range_router_stats st;
    range_router_get_stats(f->router, &st);
    /* 26 rows in pages of 2 over 3 ranges: at least 13 pages per full scan */
    assert_true(st.scan_pages >= 2 * 13);
    assert_int_equal(st.redirects, 1);
}

static void test_cross_range_commit_refused(void **state) {
    fake *f = *state;
    learn_truth(f);
    range_kv *kv = range_router_kv(f->router);
    range_write w[2] = {{(const uint8_t *)"a", 1, (const uint8_t *)"1", 1, false},
                        {(const uint8_t *)"k", 1, (const uint8_t *)"2", 1, false}};
    range_commit_request req = {.txn_id = 5, .read_ts = {500, 0}, .writes = w, .write_count = 2};
    hlc_timestamp ts;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_ERR_CROSS_RANGE);
    char msg[256];
    last_error(f, msg, sizeof(msg));
    assert_string_equal(msg, "keys in range 1 and range 2");
    /* a delete span crossing a boundary is refused as well */
    range_span ds = {(const uint8_t *)"f", 1, (const uint8_t *)"j", 1, false};
    req.write_count = 1;
    req.delete_spans = &ds;
    req.delete_span_count = 1;
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_ERR_CROSS_RANGE);
    last_error(f, msg, sizeof(msg));
    assert_string_equal(msg, "keys in range 1 and range 2");
    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->commit_requests, 0); /* nothing was sent */
    pthread_mutex_unlock(&f->mu);
    req.delete_spans = NULL;
    req.delete_span_count = 0;
    /* inside one range it commits (the server picks the timestamp); a
    ** conflict comes back decoded */
    range_span rs = {(const uint8_t *)"f", 1, (const uint8_t *)"g", 1, false};
    req.read_spans = &rs;
    req.read_span_count = 1;
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_OK);
    assert_int_equal(ts.wall_ns, 1000);
    w[0].key = (const uint8_t *)"c";
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_ERR_CONFLICT);
    assert_int_equal(conflict.kind, RANGE_CONFLICT_WRITE_WRITE);
    assert_int_equal(conflict.key.len, 1);
    assert_int_equal(conflict.key.data[0], 'c');
    assert_int_equal(conflict.conflict_ts.wall_ns, 42);
    assert_true(conflict.pending);
    range_conflict_free(&conflict);
    /* no writes: commits at read_ts without a message */
    req.write_count = 0;
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_OK);
    assert_int_equal(ts.wall_ns, 500);
    range_stats rs_stats;
    kv->ops->stats(kv, &rs_stats);
    assert_int_equal(rs_stats.commits, 1);
    assert_int_equal(rs_stats.conflicts, 1);
    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->commit_requests, 2);
    pthread_mutex_unlock(&f->mu);
}

static void log_at(fake *f, int i, char *out, size_t size, hlc_timestamp *ts) {
    pthread_mutex_lock(&f->mu);
    assert_true(i < f->n_log);
    snprintf(out, size, "%s", f->log[i]);
    if (ts != NULL) *ts = f->log_ts[i];
    pthread_mutex_unlock(&f->mu);
}

static int log_count(fake *f) {
    pthread_mutex_lock(&f->mu);
    int n = f->n_log;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* Writes in range 2, reads in ranges 1, 2 and 3: VALIDATE the reads of 1
** and 3 (clipped) at one timestamp, then COMMIT at 2 fixed at it. */
static void test_cross_range_reads_validated(void **state) {
    fake *f = *state;
    learn_truth(f);
    range_kv *kv = range_router_kv(f->router);
    range_write w = {(const uint8_t *)"k", 1, (const uint8_t *)"1", 1, false};
    range_span rs[] = {
        {(const uint8_t *)"b", 1, NULL, 0, true},                  /* range 1 */
        {(const uint8_t *)"f", 1, (const uint8_t *)"j", 1, false}, /* ranges 1 and 2 */
        {(const uint8_t *)"q", 1, NULL, 0, true},                  /* range 3 */
        {(const uint8_t *)"x", 1, NULL, 0, false},                 /* [x, +inf): range 3 */
        {(const uint8_t *)"j", 1, (const uint8_t *)"j", 1, false}, /* empty: nothing */
    };
    hlc_timestamp read_ts = hlc_now(f->clock);
    range_commit_request req = {.txn_id = 9, .read_ts = read_ts, .writes = &w, .write_count = 1,
                                .read_spans = rs, .read_span_count = 5};
    hlc_timestamp ts, v1, v3, c;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_OK);
    assert_true(hlc_compare(ts, read_ts) > 0);
    assert_int_equal(log_count(f), 3);
    char text[LOG_TEXT_MAX];
    log_at(f, 0, text, sizeof(text), &v1);
    assert_string_equal(text, "V1 b,f-h");
    log_at(f, 1, text, sizeof(text), &v3);
    assert_string_equal(text, "V3 q,x-+");
    log_at(f, 2, text, sizeof(text), &c);
    assert_string_equal(text, "C2 h-j");
    assert_int_equal(hlc_compare(v1, ts), 0); /* one timestamp everywhere */
    assert_int_equal(hlc_compare(v3, ts), 0);
    assert_int_equal(hlc_compare(c, ts), 0);
    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->n_applied, 1);
    assert_int_equal(hlc_compare(f->applied[0].ts, ts), 0);
    pthread_mutex_unlock(&f->mu);

    /* a conflict found by a VALIDATE ends it before the COMMIT is sent */
    pthread_mutex_lock(&f->mu);
    f->validate_conflict = 'g';
    pthread_mutex_unlock(&f->mu);
    req.read_ts = hlc_now(f->clock);
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_ERR_CONFLICT);
    assert_int_equal(conflict.kind, RANGE_CONFLICT_READ_WRITE);
    assert_int_equal(conflict.key.len, 1);
    assert_int_equal(conflict.key.data[0], 'g');
    assert_int_equal(log_count(f), 4); /* V1 only */
    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->n_applied, 1);
    f->validate_conflict = 0;
    pthread_mutex_unlock(&f->mu);
    range_conflict_free(&conflict);

    /* a read in a range the cache does not know, nor meta: unavailable, nothing sent */
    range_router_free(f->router);
    range_router_config rc = {.transport = rpc_uv_transport(f->router_uv), .clock = f->clock,
                              .local_node_id = ROUTER_NODE, .deadline_ms = DEADLINE_MS,
                              .rpc_timeout_ms = RPC_TIMEOUT_MS, .random_seed = 8};
    assert_int_equal(range_router_new(&rc, &f->router), RANGE_OK);
    assert_int_equal(range_router_update_descriptor(f->router, &f->truth[1]), RANGE_OK);
    kv = range_router_kv(f->router);
    req.read_span_count = 1;
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_ERR_UNAVAILABLE);
    char msg[256];
    last_error(f, msg, sizeof(msg));
    /* (the meta lookup could not be routed either: the first range is unknown) */
    assert_non_null(strstr(msg, "no range known for key 0x62"));
    assert_int_equal(log_count(f), 4);
}

/* PUSHED: the candidate moves to the answer's timestamp, every other range
** is validated again at it, the nonce stays; too many pushes: PUSHED. */
static void test_cross_range_reads_pushed(void **state) {
    fake *f = *state;
    learn_truth(f);
    range_kv *kv = range_router_kv(f->router);
    range_write w = {(const uint8_t *)"k", 1, (const uint8_t *)"1", 1, false};
    range_span rs = {(const uint8_t *)"b", 1, NULL, 0, true};
    range_commit_request req = {.txn_id = 11, .read_ts = hlc_now(f->clock), .writes = &w,
                                .write_count = 1, .read_spans = &rs, .read_span_count = 1};
    hlc_timestamp ts;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    pthread_mutex_lock(&f->mu);
    f->push_commits = 2;
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_OK);
    /* V C(pushed) V C(pushed) V C */
    assert_int_equal(log_count(f), 6);
    hlc_timestamp t[6];
    char text[LOG_TEXT_MAX];
    for (int i = 0; i < 6; i++) {
        log_at(f, i, text, sizeof(text), &t[i]);
        assert_string_equal(text, i % 2 == 0 ? "V1 b" : "C2 ");
    }
    for (int i = 0; i < 6; i += 2) {
        assert_int_equal(hlc_compare(t[i], t[i + 1]), 0); /* validated at what it commits at */
        if (i > 0) {
            assert_int_equal(t[i].wall_ns, t[i - 1].wall_ns); /* exactly the pushed one */
            assert_int_equal(t[i].logical, t[i - 1].logical + 1);
        }
    }
    assert_int_equal(hlc_compare(ts, t[5]), 0);
    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->n_applied, 1);
    for (int i = 1; i < f->commit_requests; i++)
        assert_int_equal(f->commit_nonce[i], f->commit_nonce[0]);
    f->push_commits = 100;
    pthread_mutex_unlock(&f->mu);

    req.read_ts = hlc_now(f->clock);
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_ERR_PUSHED);
    char msg[256];
    last_error(f, msg, sizeof(msg));
    assert_non_null(strstr(msg, "the commit timestamp was pushed 4 times by reads of the "
                                "written keys in range 2"));
    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->n_applied, 1);
    assert_int_equal(f->n_log, 6 + 8);
    pthread_mutex_unlock(&f->mu);
}

/* A stale cache puts a read in W; W's KEY_MISMATCH answer refreshes it and
** the commit is planned again: the read now needs range 3. */
static void test_cross_range_replan(void **state) {
    fake *f = *state;
    const uint64_t all[3] = {1, 2, 3};
    range_descriptor stale;
    make_desc(&stale, 2, 0, "h", NULL, all, 3); /* range 2 before its split */
    assert_int_equal(range_router_update_descriptor(f->router, &f->truth[0]), RANGE_OK);
    assert_int_equal(range_router_update_descriptor(f->router, &stale), RANGE_OK);
    range_descriptor_free(&stale);
    range_kv *kv = range_router_kv(f->router);
    range_write w = {(const uint8_t *)"k", 1, (const uint8_t *)"1", 1, false};
    range_span rs = {(const uint8_t *)"q", 1, NULL, 0, true};
    range_commit_request req = {.txn_id = 12, .read_ts = hlc_now(f->clock), .writes = &w,
                                .write_count = 1, .read_spans = &rs, .read_span_count = 1};
    hlc_timestamp ts;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_ERR_UNAVAILABLE);
    char msg[256];
    last_error(f, msg, sizeof(msg));
    assert_string_equal(msg, "no range known for key 0x71"); /* the second plan's */
    /* one COMMIT went out (refused KEY_MISMATCH), nothing applied */
    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->commit_requests, 1);
    assert_int_equal(f->n_applied, 0);
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(range_router_update_descriptor(f->router, &f->truth[2]), RANGE_OK);
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_OK);
    char text[LOG_TEXT_MAX];
    log_at(f, 0, text, sizeof(text), NULL);
    assert_string_equal(text, "V3 q");
    log_at(f, 1, text, sizeof(text), NULL);
    assert_string_equal(text, "C2 ");
}

static void test_commit_retried_with_same_nonce(void **state) {
    fake *f = *state;
    learn_truth(f);
    pthread_mutex_lock(&f->mu);
    f->swallow_commits = 1; /* applied at node 1, the answer is lost */
    pthread_mutex_unlock(&f->mu);
    range_kv *kv = range_router_kv(f->router);
    range_write w = {(const uint8_t *)"b", 1, (const uint8_t *)"1", 1, false};
    range_commit_request req = {.txn_id = 77, .read_ts = {500, 0}, .writes = &w, .write_count = 1};
    hlc_timestamp ts;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_OK);
    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->n_applied, 1);
    assert_int_equal(hlc_compare(ts, f->applied[0].ts), 0);
    /* timeout at 1, "not leader, try 1" at 2, then 1 again: same key every time */
    assert_true(f->commit_requests >= 3);
    for (int i = 0; i < f->commit_requests; i++) {
        assert_int_equal(f->commit_txn[i], 77);
        assert_int_equal(f->commit_nonce[i], f->commit_nonce[0]);
    }
    assert_true(f->commit_nonce[0] != 0);
    pthread_mutex_unlock(&f->mu);
    /* a second commit call of the same txn id gets a fresh nonce */
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_OK);
    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->n_applied, 2);
    assert_true(f->applied[1].nonce != f->applied[0].nonce);
    pthread_mutex_unlock(&f->mu);
}


/* A cache miss is looked up in meta (one row of the meta span in the first
** range), for a key and for a reverse scan from +inf; what meta cannot
** place is unavailable at once. */
static void test_meta_lookup(void **state) {
    fake *f = *state;
    /* only the first range is known, as on a node that just started */
    assert_int_equal(range_router_update_descriptor(f->router, &f->truth[0]), RANGE_OK);
    base_buf out = {0};
    char msg[256];
    /* without meta rows: no range known, said clearly */
    assert_int_equal(get(f, "k", &out), RANGE_ERR_UNAVAILABLE);
    last_error(f, msg, sizeof(msg));
    assert_non_null(strstr(msg, "no range known for key 0x6b"));
    pthread_mutex_lock(&f->mu);
    f->serve_meta = true;
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(get(f, "k", &out), RANGE_OK);
    assert_int_equal(out.data[0], 'k');
    range_router_stats st;
    range_router_get_stats(f->router, &st);
    assert_int_equal(st.meta_lookups, 2);
    /* range 2 is cached now: no more lookups for its keys */
    assert_int_equal(get(f, "m", &out), RANGE_OK);
    range_router_get_stats(f->router, &st);
    assert_int_equal(st.meta_lookups, 2);
    /* a reverse scan of everything finds the last range through meta */
    static const scan_case all_reverse = {"", NULL, true};
    check_scan(f, &all_reverse);
    range_router_get_stats(f->router, &st);
    assert_int_equal(st.meta_lookups, 3);
    /* a commit whose write has no cached range looks it up too */
    range_router_free(f->router);
    range_router_config rc = {.transport = rpc_uv_transport(f->router_uv), .clock = f->clock,
                              .local_node_id = ROUTER_NODE, .deadline_ms = DEADLINE_MS,
                              .rpc_timeout_ms = RPC_TIMEOUT_MS, .random_seed = 13};
    assert_int_equal(range_router_new(&rc, &f->router), RANGE_OK);
    assert_int_equal(range_router_update_descriptor(f->router, &f->truth[0]), RANGE_OK);
    range_kv *kv = range_router_kv(f->router);
    range_write w = {(const uint8_t *)"q", 1, (const uint8_t *)"1", 1, false};
    range_commit_request req = {.txn_id = 3, .read_ts = {500, 0}, .writes = &w, .write_count = 1};
    hlc_timestamp ts;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_OK);
    range_router_get_stats(f->router, &st);
    assert_int_equal(st.meta_lookups, 1);
    /* meta is read inconsistently: never waits on nor pushes an intent */
    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->meta_consistent, 0);
    pthread_mutex_unlock(&f->mu);
    base_buf_free(&out);
}

/* A KEY_MISMATCH answer that also names the range holding the key (the
** answering node hosts it: a split's right side) routes there at once. */
static void test_key_mismatch_other(void **state) {
    fake *f = *state;
    range_descriptor stale;
    make_desc(&stale, 1, 1, "", NULL, ALL, 3);
    assert_int_equal(range_router_update_descriptor(f->router, &stale), RANGE_OK);
    range_descriptor_free(&stale);
    pthread_mutex_lock(&f->mu);
    f->mismatch_other = true;
    pthread_mutex_unlock(&f->mu);
    base_buf out = {0};
    assert_int_equal(get(f, "r", &out), RANGE_OK);
    assert_int_equal(out.data[0], 'r');
    range_router_stats st;
    range_router_get_stats(f->router, &st);
    assert_int_equal(st.descriptor_refreshes, 2); /* range 1's new shape and range 3 */
    assert_int_equal(st.meta_lookups, 0);
    assert_int_equal(requests_at(f, 1), 2);
    base_buf_free(&out);
}

/* ADMIN_SPLIT: both descriptors are answered and cached; a key that is a
** boundary already answers the two ranges around it. */
static void test_admin_split(void **state) {
    fake *f = *state;
    learn_truth(f);
    range_kv *kv = range_router_kv(f->router);
    assert_non_null(kv->ops->admin_split);
    range_descriptor left, right;
    assert_int_equal(kv->ops->admin_split(kv, (const uint8_t *)"k", 1, 4, &left, &right),
                     RANGE_OK);
    assert_int_equal(left.range_id, 2);
    assert_int_equal(left.generation, 2);
    assert_int_equal(left.end_len, 1);
    assert_int_equal(left.end_key[0], 'k');
    assert_int_equal(right.range_id, 4);
    assert_int_equal(right.start_key[0], 'k');
    assert_int_equal(right.end_key[0], 'p');
    range_descriptor_free(&left);
    range_descriptor_free(&right);
    range_descriptor *d;
    uint64_t *l;
    size_t n;
    assert_int_equal(range_router_snapshot(f->router, &d, &l, &n), RANGE_OK);
    assert_int_equal(n, 4);
    assert_int_equal(d[2].range_id, 4);
    for (size_t i = 0; i < n; i++) range_descriptor_free(&d[i]);
    base_free(d);
    base_free(l);
    /* a boundary: the range ending at "p" and the one starting there */
    assert_int_equal(kv->ops->admin_split(kv, (const uint8_t *)"p", 1, 5, &left, &right),
                     RANGE_OK);
    assert_int_equal(left.range_id, 2);
    assert_int_equal(right.range_id, 3);
    range_descriptor_free(&left);
    range_descriptor_free(&right);
    /* bad arguments never reach a node */
    assert_int_equal(kv->ops->admin_split(kv, (const uint8_t *)"", 0, 5, &left, &right),
                     RANGE_ERR_INVALID);
    assert_int_equal(kv->ops->admin_split(kv, (const uint8_t *)"k", 1, 0, &left, &right),
                     RANGE_ERR_INVALID);
}

/* A commit applied but unanswered, then its range split: the retry goes to
** the range now holding the key with the same (txn_id, nonce), whose
** idempotence record answers (not 40003). */
static void test_commit_unknown_then_split(void **state) {
    fake *f = *state;
    learn_truth(f);
    pthread_mutex_lock(&f->mu);
    f->swallow_commits = 1;
    f->split_after_swallow = true;
    f->mismatch_other = true;
    pthread_mutex_unlock(&f->mu);
    range_kv *kv = range_router_kv(f->router);
    range_write w = {(const uint8_t *)"t", 1, (const uint8_t *)"1", 1, false};
    range_commit_request req = {.txn_id = 21, .read_ts = {500, 0}, .writes = &w, .write_count = 1};
    hlc_timestamp ts;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_OK);
    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->n_applied, 1);
    assert_int_equal(hlc_compare(ts, f->applied[0].ts), 0);
    assert_true(f->commit_requests >= 2);
    for (int i = 0; i < f->commit_requests; i++)
        assert_int_equal(f->commit_nonce[i], f->commit_nonce[0]);
    pthread_mutex_unlock(&f->mu);
    range_router_stats st;
    range_router_get_stats(f->router, &st);
    assert_int_equal(st.ambiguous, 0);
    assert_int_equal(cached_leaseholder(f, 4), 1);
}

/* The same with a read in range 1 that a writer changes meanwhile: the new
** plan's VALIDATE there conflicts, but the first attempt (validated at its
** own timestamp) applied: AMBIGUOUS, never 40001 (found by the transaction
** simulation, tests/txn/test_txn_sim.c: a G1a). */
static void test_commit_unknown_then_validate_conflict(void **state) {
    fake *f = *state;
    learn_truth(f);
    pthread_mutex_lock(&f->mu);
    f->swallow_commits = 1;
    f->split_after_swallow = true;
    f->mismatch_other = true;
    f->conflict_after_swallow = 'g';
    pthread_mutex_unlock(&f->mu);
    range_kv *kv = range_router_kv(f->router);
    range_write w = {(const uint8_t *)"t", 1, (const uint8_t *)"1", 1, false};
    range_span read = {(const uint8_t *)"g", 1, NULL, 0, true};
    range_commit_request req = {.txn_id = 23, .read_ts = {500, 0}, .writes = &w,
                                .write_count = 1, .read_spans = &read, .read_span_count = 1};
    hlc_timestamp ts;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_ERR_AMBIGUOUS);
    range_conflict_free(&conflict);
    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->n_applied, 1);
    pthread_mutex_unlock(&f->mu);
    char msg[256];
    last_error(f, msg, sizeof(msg));
    assert_non_null(strstr(msg, "outcome is unknown"));
}

static void test_deadline_ambiguous_vs_unavailable(void **state) {
    fake *f = *state;
    /* a shorter deadline: every case below runs into it */
    range_router_free(f->router);
    range_router_config rc = {.transport = rpc_uv_transport(f->router_uv), .clock = f->clock,
                              .local_node_id = ROUTER_NODE, .deadline_ms = SHORT_DEADLINE_MS,
                              .rpc_timeout_ms = RPC_TIMEOUT_MS, .random_seed = 11};
    assert_int_equal(range_router_new(&rc, &f->router), RANGE_OK);
    learn_truth(f);
    range_kv *kv = range_router_kv(f->router);
    range_write w = {(const uint8_t *)"q", 1, (const uint8_t *)"1", 1, false};
    range_commit_request req = {.txn_id = 9, .read_ts = {500, 0}, .writes = &w, .write_count = 1};
    hlc_timestamp ts;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    char msg[256];

    /* nobody evaluates it: surely not applied */
    for (uint64_t i = 1; i <= FAKES; i++) set_mode(f, i, FAKE_NOT_LEADER);
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_ERR_UNAVAILABLE);
    last_error(f, msg, sizeof(msg));
    assert_non_null(strstr(msg, "range 3 is unavailable"));
    for (uint64_t i = 1; i <= FAKES; i++) set_mode(f, i, FAKE_BUSY);
    assert_int_equal(get(f, "q", &(base_buf){0}), RANGE_ERR_UNAVAILABLE);

    /* sent and never answered: the outcome is unknown */
    for (uint64_t i = 1; i <= FAKES; i++) set_mode(f, i, FAKE_DROP);
    int64_t t0 = base_monotonic_ns();
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_ERR_AMBIGUOUS);
    int64_t took_ms = (base_monotonic_ns() - t0) / 1000000;
    assert_true(took_ms >= SHORT_DEADLINE_MS - 100 &&
                took_ms < SHORT_DEADLINE_MS + 2 * RPC_TIMEOUT_MS);
    last_error(f, msg, sizeof(msg));
    assert_non_null(strstr(msg, "range 3"));

    /* applied but unanswered, then only "not leader": still unknown */
    for (uint64_t i = 1; i <= FAKES; i++) set_mode(f, i, FAKE_ANSWER);
    pthread_mutex_lock(&f->mu);
    f->swallow_commits = 1;
    f->refuse_after_swallow = true;
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_ERR_AMBIGUOUS);

    /* replicas with no address: never sent, so unavailable */
    range_descriptor nowhere;
    const uint64_t ghosts[2] = {7, 8};
    make_desc(&nowhere, 3, 9, "p", NULL, ghosts, 2);
    assert_int_equal(range_router_update_descriptor(f->router, &nowhere), RANGE_OK);
    range_descriptor_free(&nowhere);
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_ERR_UNAVAILABLE);
    range_router_stats st;
    range_router_get_stats(f->router, &st);
    assert_int_equal(st.ambiguous, 2);
    assert_int_equal(st.unavailable, 3);
}

/* ---- two-phase commit ------------------------------------------------------------ */

static const char *log_line(fake *f, int i, char *out, size_t size) {
    log_at(f, i, out, size, NULL);
    return out;
}

static uint64_t log_nonce(fake *f, int i) {
    pthread_mutex_lock(&f->mu);
    uint64_t n = f->txn_nonces[i];
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* The index of the log line equal to text among the first n, or -1: the
** PREPAREs (and VALIDATEs) of one call go to their ranges at once, in any
** order. */
static int log_find(fake *f, int n, const char *text) {
    char line[LOG_TEXT_MAX];
    for (int i = 0; i < n && i < log_count(f); i++)
        if (strcmp(log_line(f, i, line, sizeof(line)), text) == 0) return i;
    return -1;
}

static void set_prepare_ts(fake *f, int64_t r1, int64_t r2, int64_t r3) {
    pthread_mutex_lock(&f->mu);
    f->prepare_ts[0] = (hlc_timestamp){r1, 0};
    f->prepare_ts[1] = (hlc_timestamp){r2, 0};
    f->prepare_ts[2] = (hlc_timestamp){r3, 0};
    pthread_mutex_unlock(&f->mu);
}

/* Writes in ranges 1 and 2, reads in all three: a PREPARE per range (the
** anchor's creating the record), both refusing the call's common timestamp
** (PUSHED) and picking their own; commit_ts the highest prepare timestamp,
** VALIDATEs where a range prepared lower or only read; the spans; END_TXN
** at the anchor; RESOLVE per range. */
static void test_prepare_end_resolve(void **state) {
    fake *f = *state;
    learn_truth(f);
    set_leader(f, 1, 2); /* a redirect on the way */
    set_prepare_ts(f, 2000, 3000, 0);
    pthread_mutex_lock(&f->mu);
    f->push_prepares = 2; /* the common timestamp is refused: each range picks its own */
    pthread_mutex_unlock(&f->mu);
    range_kv *kv = range_router_kv(f->router);
    range_write w[3] = {{(const uint8_t *)"b", 1, (const uint8_t *)"1", 1, false},
                        {(const uint8_t *)"d", 1, (const uint8_t *)"2", 1, false},
                        {(const uint8_t *)"k", 1, (const uint8_t *)"3", 1, false}};
    range_span rs[] = {
        {(const uint8_t *)"e", 1, NULL, 0, true},  /* range 1: prepared lower */
        {(const uint8_t *)"m", 1, NULL, 0, true},  /* range 2: prepared at the max */
        {(const uint8_t *)"x", 1, NULL, 0, true},  /* range 3: only read */
    };
    range_commit_request req = {.read_ts = {500, 0}, .writes = w, .write_count = 3,
                                .read_spans = rs, .read_span_count = 3};
    range_txn_meta meta = {.txn_id = 0xABC, .nonce = 99, .anchor = (const uint8_t *)"b",
                           .anchor_len = 1, .read_ts = {500, 0}};
    req.txn_id = meta.txn_id;
    range_prepare_result res;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    assert_int_equal(kv->ops->prepare(kv, &meta, &req, &res, &conflict), RANGE_OK);
    assert_int_equal(res.commit_ts.wall_ns, 3000);
    char line[LOG_TEXT_MAX];
    hlc_timestamp ts;
    assert_int_equal(log_count(f), 6); /* each PREPARE twice: pushed, then picked */
    int p1 = log_find(f, 4, "P1 b,d r:e rec"), p2 = log_find(f, 4, "P2 k r:m");
    assert_true(p1 >= 0 && p2 >= 0);
    int v1 = log_find(f, 6, "V1 e"), v3 = log_find(f, 6, "V3 x");
    assert_true(v1 >= 4 && v3 >= 4);
    log_at(f, v1, line, sizeof(line), &ts);
    assert_int_equal(ts.wall_ns, 3000);
    log_at(f, v3, line, sizeof(line), &ts);
    assert_int_equal(ts.wall_ns, 3000);
    /* one nonce per request: idempotence records are per node, not range */
    assert_true(log_nonce(f, p1) != log_nonce(f, p2));
    assert_true(log_nonce(f, p1) != 0 && log_nonce(f, p2) != 0);
    /* where intents may be: per range, first key to just past the last */
    assert_int_equal(res.n_spans, 2);
    assert_int_equal(res.spans[0].start_len, 1);
    assert_memory_equal(res.spans[0].start, "b", 1);
    assert_int_equal(res.spans[0].end_len, 2);
    assert_memory_equal(res.spans[0].end, "d\0", 2);
    assert_memory_equal(res.spans[1].start, "k", 1);
    assert_memory_equal(res.spans[1].end, "k\0", 2);

    range_txn_outcome out;
    assert_int_equal(kv->ops->end_txn(kv, &meta, RANGE_TXN_COMMITTED, res.commit_ts, &out),
                     RANGE_OK);
    assert_int_equal(out.status, RANGE_TXN_COMMITTED);
    assert_int_equal(out.commit_ts.wall_ns, 3000);
    assert_string_equal(log_line(f, 6, line, sizeof(line)), "E1 C@3000");
    /* again: idempotent; an abort now finds it committed */
    assert_int_equal(kv->ops->end_txn(kv, &meta, RANGE_TXN_COMMITTED, res.commit_ts, &out),
                     RANGE_OK);
    assert_int_equal(kv->ops->end_txn(kv, &meta, RANGE_TXN_ABORTED, HLC_ZERO, &out), RANGE_OK);
    assert_int_equal(out.status, RANGE_TXN_COMMITTED);
    assert_int_equal(out.commit_ts.wall_ns, 3000);
    assert_true(log_nonce(f, 6) != log_nonce(f, 8)); /* commit and abort differ */
    assert_int_equal(log_nonce(f, 6), log_nonce(f, 7));

    assert_int_equal(kv->ops->resolve(kv, meta.txn_id, res.spans, res.n_spans,
                                      RANGE_TXN_COMMITTED, res.commit_ts),
                     RANGE_OK);
    assert_int_equal(log_count(f), 11); /* the ranges at once */
    assert_true(log_find(f, 11, "R1 b-d C") >= 9 && log_find(f, 11, "R2 k-k C") >= 9);
    /* a span over two ranges is split */
    range_span wide = {(const uint8_t *)"f", 1, (const uint8_t *)"j", 1, false};
    assert_int_equal(kv->ops->resolve(kv, meta.txn_id, &wide, 1, RANGE_TXN_ABORTED, HLC_ZERO),
                     RANGE_OK);
    assert_true(log_find(f, 13, "R1 f-h A") >= 11 && log_find(f, 13, "R2 h-j A") >= 11);
    range_prepare_result_free(&res);
    range_prepare_result_free(&res); /* zeroed: freeing again is harmless */
}

/* Ranges of one chunk each first take one timestamp, the router's clock:
** taken by both, their reads need no VALIDATE (only range 3's, only read);
** one range pushed picks its own, and the other's reads are VALIDATEd at
** the highest. */
static void test_prepare_common_timestamp(void **state) {
    fake *f = *state;
    learn_truth(f);
    set_prepare_ts(f, 2000, 3000, 0);
    range_kv *kv = range_router_kv(f->router);
    range_write w[2] = {{(const uint8_t *)"b", 1, (const uint8_t *)"1", 1, false},
                        {(const uint8_t *)"k", 1, (const uint8_t *)"3", 1, false}};
    range_span rs[] = {
        {(const uint8_t *)"e", 1, NULL, 0, true},
        {(const uint8_t *)"m", 1, NULL, 0, true},
        {(const uint8_t *)"x", 1, NULL, 0, true},
    };
    range_commit_request req = {.txn_id = 0xC0, .read_ts = {500, 0}, .writes = w,
                                .write_count = 2, .read_spans = rs, .read_span_count = 3};
    range_txn_meta meta = {.txn_id = 0xC0, .nonce = 1, .anchor = (const uint8_t *)"b",
                           .anchor_len = 1, .read_ts = {500, 0}};
    range_prepare_result res;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    hlc_timestamp before = hlc_now(f->clock);
    assert_int_equal(kv->ops->prepare(kv, &meta, &req, &res, &conflict), RANGE_OK);
    assert_true(hlc_compare(res.commit_ts, before) > 0);
    assert_int_equal(log_count(f), 3);
    int p1 = log_find(f, 2, "P1 b r:e rec"), p2 = log_find(f, 2, "P2 k r:m");
    assert_true(p1 >= 0 && p2 >= 0);
    char line[LOG_TEXT_MAX];
    hlc_timestamp ts;
    assert_true(hlc_compare(f->log_ts[p1], res.commit_ts) == 0);
    assert_true(hlc_compare(f->log_ts[p2], res.commit_ts) == 0);
    log_at(f, 2, line, sizeof(line), &ts);
    assert_string_equal(line, "V3 x");
    assert_true(hlc_compare(ts, res.commit_ts) == 0);
    range_prepare_result_free(&res);

    /* one of them pushed: it picks 1e18 + its own; the other's reads go to it */
    pthread_mutex_lock(&f->mu);
    f->n_log = 0;
    f->push_prepares = 1;
    f->prepare_ts[0] = f->prepare_ts[1] = (hlc_timestamp){before.wall_ns + 1000000000LL, 0};
    pthread_mutex_unlock(&f->mu);
    meta.nonce = 2;
    assert_int_equal(kv->ops->prepare(kv, &meta, &req, &res, &conflict), RANGE_OK);
    assert_int_equal(res.commit_ts.wall_ns, before.wall_ns + 1000000000LL);
    assert_int_equal(log_count(f), 5); /* 2 + the pushed one again, 2 VALIDATEs */
    int v1 = log_find(f, 5, "V1 e"), v2 = log_find(f, 5, "V2 m"), v3 = log_find(f, 5, "V3 x");
    assert_true(v3 >= 3 && (v1 >= 3) != (v2 >= 3));
    range_prepare_result_free(&res);
}

/* A prepare that fails still names where intents may be; an END_TXN
** (COMMITTED) after an abort is RANGE_ERR_ABORTED. */
static void test_prepare_failures(void **state) {
    fake *f = *state;
    learn_truth(f);
    set_prepare_ts(f, 2000, 3000, 0);
    range_kv *kv = range_router_kv(f->router);
    range_write w[2] = {{(const uint8_t *)"b", 1, (const uint8_t *)"1", 1, false},
                        {(const uint8_t *)"c", 1, (const uint8_t *)"2", 1, false}};
    range_span del = {(const uint8_t *)"m", 1, (const uint8_t *)"q", 1, false};
    range_commit_request req = {.txn_id = 5, .read_ts = {500, 0}, .writes = w,
                                .write_count = 2, .delete_spans = &del,
                                .delete_span_count = 1};
    range_txn_meta meta = {.txn_id = 5, .nonce = 1, .anchor = (const uint8_t *)"b",
                           .anchor_len = 1, .read_ts = {500, 0}};
    range_prepare_result res;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    /* the first write of range 1 is "b": no conflict; make range 1's
    ** writes start at "c" to conflict */
    req.writes = &w[1];
    req.write_count = 1;
    meta.anchor = (const uint8_t *)"c";
    assert_int_equal(kv->ops->prepare(kv, &meta, &req, &res, &conflict), RANGE_ERR_CONFLICT);
    assert_int_equal(conflict.kind, RANGE_CONFLICT_WRITE_WRITE);
    assert_memory_equal(conflict.key.data, "c", 1);
    range_conflict_free(&conflict);
    /* the delete span crosses ranges 2 and 3: both pieces are spans */
    assert_int_equal(res.n_spans, 3);
    assert_memory_equal(res.spans[0].start, "c", 1);
    assert_memory_equal(res.spans[1].start, "m", 1);
    assert_int_equal(res.spans[1].end_len, 1);
    assert_memory_equal(res.spans[1].end, "p", 1);
    assert_memory_equal(res.spans[2].start, "p", 1);
    assert_memory_equal(res.spans[2].end, "q", 1);
    range_prepare_result_free(&res);
    /* the other ranges' PREPAREs went at the same time (or were stopped);
    ** nothing came after the conflict */
    int n = log_count(f);
    assert_true(n >= 1 && n <= 3);
    assert_true(log_find(f, n, "P1 c rec") >= 0);
    char line[LOG_TEXT_MAX];
    for (int i = 0; i < n; i++) assert_int_equal(log_line(f, i, line, sizeof(line))[0], 'P');

    /* aborted first, then the commit record is refused */
    range_txn_outcome out;
    assert_int_equal(kv->ops->end_txn(kv, &meta, RANGE_TXN_ABORTED, HLC_ZERO, &out), RANGE_OK);
    assert_int_equal(out.status, RANGE_TXN_ABORTED);
    assert_int_equal(kv->ops->end_txn(kv, &meta, RANGE_TXN_COMMITTED, (hlc_timestamp){3000, 0},
                                      &out),
                     RANGE_ERR_ABORTED);
    assert_int_equal(out.status, RANGE_TXN_ABORTED);
    /* a PREPARE creating the record finds it ABORTED */
    req.writes = w;
    req.write_count = 1;
    meta.anchor = (const uint8_t *)"b";
    assert_int_equal(kv->ops->prepare(kv, &meta, &req, &res, &conflict), RANGE_ERR_ABORTED);
    range_prepare_result_free(&res);
    /* bad arguments */
    meta.txn_id = 0;
    assert_int_equal(kv->ops->prepare(kv, &meta, &req, &res, &conflict), RANGE_ERR_INVALID);
    assert_int_equal(kv->ops->end_txn(kv, &meta, RANGE_TXN_ABORTED, HLC_ZERO, &out),
                     RANGE_ERR_INVALID);
    assert_int_equal(kv->ops->resolve(kv, 0, &del, 1, RANGE_TXN_ABORTED, HLC_ZERO),
                     RANGE_ERR_INVALID);
}

/* A read meets an intent: PUSH its holder at its anchor's range, RESOLVE
** the key with the answer, read again. */
static void test_read_meets_intent(void **state) {
    fake *f = *state;
    learn_truth(f);
    pthread_mutex_lock(&f->mu);
    f->intent_on_i = true;
    f->push_pending = 2; /* still pending twice: back off, push again */
    f->push_status = RANGE_TXN_COMMITTED;
    f->push_ts = (hlc_timestamp){450, 0};
    pthread_mutex_unlock(&f->mu);
    base_buf out = {0};
    assert_int_equal(get(f, "i", &out), RANGE_OK);
    assert_int_equal(out.data[0], 'i');
    char line[LOG_TEXT_MAX];
    hlc_timestamp ts;
    assert_int_equal(log_count(f), 4);
    assert_string_equal(log_line(f, 0, line, sizeof(line)), "U1 77");
    assert_string_equal(log_line(f, 1, line, sizeof(line)), "U1 77");
    assert_string_equal(log_line(f, 2, line, sizeof(line)), "U1 77");
    log_at(f, 3, line, sizeof(line), &ts);
    assert_string_equal(line, "R2 i C");
    assert_int_equal(ts.wall_ns, 450);
    /* aborted holder: the intent goes */
    pthread_mutex_lock(&f->mu);
    f->intent_on_i = true;
    f->push_status = RANGE_TXN_ABORTED;
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(get(f, "i", &out), RANGE_OK);
    assert_string_equal(log_line(f, 5, line, sizeof(line)), "R2 i A");
    /* a holder that stays pending: a read waits its deadline out, then 40001 */
    pthread_mutex_lock(&f->mu);
    f->intent_on_i = true;
    f->push_pending = 1000000;
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(get(f, "i", &out), RANGE_ERR_INTENT);
    char msg[256];
    last_error(f, msg, sizeof(msg));
    assert_non_null(strstr(msg, "key 0x69 is held by an intent of transaction 000000000000004d"));
    assert_non_null(strstr(msg, "still pending"));
    /* a committing transaction gives up sooner (it holds intents itself) */
    range_write w = {(const uint8_t *)"k", 1, (const uint8_t *)"1", 1, false};
    range_span rs = {(const uint8_t *)"i", 1, NULL, 0, true};
    range_commit_request req = {.txn_id = 5, .read_ts = {500, 0}, .writes = &w,
                                .write_count = 1, .read_spans = &rs, .read_span_count = 1};
    range_txn_meta meta = {.txn_id = 5, .nonce = 1, .anchor = (const uint8_t *)"k",
                           .anchor_len = 1, .read_ts = {500, 0}};
    range_prepare_result res;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    int64_t t0 = base_monotonic_ns();
    range_kv *kv = range_router_kv(f->router);
    assert_int_equal(kv->ops->prepare(kv, &meta, &req, &res, &conflict), RANGE_ERR_INTENT);
    int64_t took_ms = (base_monotonic_ns() - t0) / 1000000;
    assert_true(took_ms < DEADLINE_MS);
    assert_int_equal(res.n_spans, 1);
    range_prepare_result_free(&res);
    base_buf_free(&out);
}

/* ---- statement-time locks (docs/txn.md section 5) ---- */

static int lock_keys(fake *f, const range_txn_meta *meta, const char *keys,
                     hlc_timestamp *newest) {
    range_span spans[8];
    size_t n = strlen(keys);
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        spans[i] = (range_span){(const uint8_t *)&keys[i], 1, NULL, 0, true};
    range_kv *kv = range_router_kv(f->router);
    return kv->ops->lock(kv, meta, spans, n, newest);
}

/* LOCK per range in key order; newest_ts the highest answer; a holder in
** the way is asked again, then pushed with the dependents QUERY_TXN
** found at the pusher's own record; ABORTED: its lock is resolved and the
** LOCK granted. */
static void test_lock_split_wait_push(void **state) {
    fake *f = *state;
    learn_truth(f);
    set_leader(f, 1, 2); /* a redirect on the way */
    pthread_mutex_lock(&f->mu);
    f->newest_ts[1] = (hlc_timestamp){700, 0};
    f->newest_ts[2] = (hlc_timestamp){600, 0};
    pthread_mutex_unlock(&f->mu);
    range_txn_meta meta = {.txn_id = 0x99, .nonce = 1, .anchor = (const uint8_t *)"b",
                           .anchor_len = 1, .read_ts = {500, 0}};
    hlc_timestamp newest;
    assert_int_equal(lock_keys(f, &meta, "bdkx", &newest), RANGE_OK);
    assert_int_equal(newest.wall_ns, 700);
    char line[LOG_TEXT_MAX];
    assert_int_equal(log_count(f), 3);
    assert_string_equal(log_line(f, 0, line, sizeof(line)), "L1 b,d");
    assert_string_equal(log_line(f, 1, line, sizeof(line)), "L2 k");
    assert_string_equal(log_line(f, 2, line, sizeof(line)), "L3 x");
    /* unsorted or duplicate keys are refused */
    assert_int_equal(lock_keys(f, &meta, "db", &newest), RANGE_ERR_INVALID);
    assert_int_equal(lock_keys(f, &meta, "bb", &newest), RANGE_ERR_INVALID);

    /* "k" is held by LOCK_HOLDER until a push aborts it */
    pthread_mutex_lock(&f->mu);
    f->lock_held = true;
    f->push_status = RANGE_TXN_ABORTED;
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(lock_keys(f, &meta, "k", &newest), RANGE_OK);
    pthread_mutex_lock(&f->mu);
    int refusals = f->lock_refusals;
    pthread_mutex_unlock(&f->mu);
    assert_true(refusals >= 2); /* asked again before pushing */
    assert_int_equal(log_count(f), 7);
    assert_string_equal(log_line(f, 3, line, sizeof(line)), "Q1 153"); /* our anchor "b" */
    assert_string_equal(log_line(f, 4, line, sizeof(line)), "U2 88 deps=1 since=123");
    assert_string_equal(log_line(f, 5, line, sizeof(line)), "R2 k A");
    assert_string_equal(log_line(f, 6, line, sizeof(line)), "L2 k");
}

/* A push that finds a deadlock with the pusher as victim ends the lock
** with RANGE_ERR_ABORTED naming the cycle. */
static void test_lock_deadlock_victim(void **state) {
    fake *f = *state;
    learn_truth(f);
    pthread_mutex_lock(&f->mu);
    f->lock_held = true;
    f->push_cycle = true;
    pthread_mutex_unlock(&f->mu);
    range_txn_meta meta = {.txn_id = 0x99, .nonce = 1, .anchor = (const uint8_t *)"b",
                           .anchor_len = 1, .read_ts = {500, 0}};
    hlc_timestamp newest;
    assert_int_equal(lock_keys(f, &meta, "k", &newest), RANGE_ERR_ABORTED);
    char msg[256];
    last_error(f, msg, sizeof(msg));
    if (strstr(msg, "deadlock") == NULL ||
        strstr(msg, "0000000000000099 -> 0000000000000058 -> 0000000000000099") == NULL)
        fail_msg("%s", msg);
}

/* HEARTBEAT at the anchor's range; an ABORTED record is RANGE_ERR_ABORTED. */
static void test_heartbeat(void **state) {
    fake *f = *state;
    learn_truth(f);
    range_kv *kv = range_router_kv(f->router);
    range_txn_meta meta = {.txn_id = 0x42, .nonce = 1, .anchor = (const uint8_t *)"m",
                           .anchor_len = 1, .read_ts = {500, 0}};
    int status = -1;
    assert_int_equal(kv->ops->heartbeat(kv, &meta, &status), RANGE_OK);
    assert_int_equal(status, RANGE_TXN_PENDING);
    char line[LOG_TEXT_MAX];
    assert_string_equal(log_line(f, 0, line, sizeof(line)), "H2 66");
    pthread_mutex_lock(&f->mu);
    f->records[fake_record(f, 0x42)].status = RANGE_TXN_ABORTED;
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(kv->ops->heartbeat(kv, &meta, &status), RANGE_ERR_ABORTED);
    assert_int_equal(status, RANGE_TXN_ABORTED);
}

/* refresh VALIDATEs the spans range by range at the new timestamp. */
static void test_refresh(void **state) {
    fake *f = *state;
    learn_truth(f);
    range_kv *kv = range_router_kv(f->router);
    range_txn_meta meta = {.txn_id = 0x42, .nonce = 1, .anchor = (const uint8_t *)"m",
                           .anchor_len = 1, .read_ts = {500, 0}};
    range_span spans[] = {{(const uint8_t *)"b", 1, NULL, 0, true},
                          {(const uint8_t *)"f", 1, (const uint8_t *)"j", 1, false}};
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    assert_int_equal(kv->ops->refresh(kv, &meta, spans, 2, (hlc_timestamp){900, 0}, &conflict),
                     RANGE_OK);
    char line[LOG_TEXT_MAX];
    hlc_timestamp ts;
    assert_int_equal(log_count(f), 2);
    log_at(f, 0, line, sizeof(line), &ts);
    assert_string_equal(line, "V1 b,f-h");
    assert_int_equal(ts.wall_ns, 900);
    assert_string_equal(log_line(f, 1, line, sizeof(line)), "V2 h-j");
    /* a change in the interval: the conflict */
    pthread_mutex_lock(&f->mu);
    f->validate_conflict = 'i';
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(kv->ops->refresh(kv, &meta, spans, 2, (hlc_timestamp){900, 0}, &conflict),
                     RANGE_ERR_CONFLICT);
    assert_int_equal(conflict.key.len, 1);
    assert_int_equal(conflict.key.data[0], 'i');
    range_conflict_free(&conflict);
    /* not later than read_ts: refused */
    assert_int_equal(kv->ops->refresh(kv, &meta, spans, 2, (hlc_timestamp){500, 0}, &conflict),
                     RANGE_ERR_INVALID);
}

/* A lock holder's anchor (its first locked key) outside its first written
** range: a HEARTBEAT creates the record before any PREPARE. */
static void test_prepare_lock_anchor(void **state) {
    fake *f = *state;
    learn_truth(f);
    set_prepare_ts(f, 2000, 0, 3000);
    pthread_mutex_lock(&f->mu);
    f->push_prepares = 2; /* each range picks */
    pthread_mutex_unlock(&f->mu);
    range_kv *kv = range_router_kv(f->router);
    range_write w[2] = {{(const uint8_t *)"b", 1, (const uint8_t *)"1", 1, false},
                        {(const uint8_t *)"x", 1, (const uint8_t *)"2", 1, false}};
    range_commit_request req = {.txn_id = 0x42, .read_ts = {500, 0}, .writes = w,
                                .write_count = 2};
    range_txn_meta meta = {.txn_id = 0x42, .nonce = 1, .anchor = (const uint8_t *)"m",
                           .anchor_len = 1, .read_ts = {500, 0}};
    range_prepare_result res;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    assert_int_equal(kv->ops->prepare(kv, &meta, &req, &res, &conflict), RANGE_OK);
    assert_int_equal(res.commit_ts.wall_ns, 3000);
    char line[LOG_TEXT_MAX];
    assert_string_equal(log_line(f, 0, line, sizeof(line)), "H2 66");
    assert_true(log_find(f, 5, "P1 b") > 0 && log_find(f, 5, "P3 x") > 0);
    range_prepare_result_free(&res);
    /* an ABORTED record: nothing is prepared */
    pthread_mutex_lock(&f->mu);
    f->records[fake_record(f, 0x42)].status = RANGE_TXN_ABORTED;
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(kv->ops->prepare(kv, &meta, &req, &res, &conflict), RANGE_ERR_ABORTED);
    assert_int_equal(log_count(f), 6);
    range_prepare_result_free(&res);
}

/* ---- large transactions (docs/txn.md, "Large transactions") ---- */

#define BIG_WRITES 25000

/* n writes "a00000".. (range 1) of value "v"; keys in *keys (owner: caller, free). */
static range_write *big_writes(size_t n, char **keys) {
    range_write *w = calloc(n, sizeof(*w));
    *keys = calloc(n, 8);
    assert_non_null(w);
    assert_non_null(*keys);
    for (size_t i = 0; i < n; i++) {
        char *k = *keys + 8 * i;
        snprintf(k, 8, "a%05u", (unsigned)(i % 100000));
        w[i] = (range_write){(const uint8_t *)k, 6, (const uint8_t *)"v", 1, false};
    }
    return w;
}

/* A commit larger than one command is refused RANGE_ERR_TOO_LARGE before
** anything is sent (by its writes, or by their bytes): the coordinator
** then prepares it in chunks. */
static void test_commit_too_large(void **state) {
    fake *f = *state;
    learn_truth(f);
    range_kv *kv = range_router_kv(f->router);
    char *keys;
    range_write *w = big_writes(10001, &keys);
    range_commit_request req = {.txn_id = 1, .read_ts = {500, 0}, .writes = w,
                                .write_count = 10001};
    hlc_timestamp ts;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_ERR_TOO_LARGE);
    char text[256];
    last_error(f, text, sizeof(text));
    assert_non_null(strstr(text, "larger than one command"));
    req.write_count = 10000; /* fits by count, not by bytes */
    uint8_t *big = calloc(1, 600 * 1024);
    assert_non_null(big);
    w[0].value = big;
    w[0].value_len = 600 * 1024;
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_ERR_TOO_LARGE);
    for (uint64_t n = 1; n <= FAKES; n++) assert_int_equal(requests_at(f, n), 0);
    free(big);
    free(w);
    free(keys);
}

/* 25,000 writes in range 1: PREPAREs of chunks (by the bytes of their
** intents) one after another, the first creating the record and carrying
** the range's reads, each with a nonce of its own; commit_ts the last
** (highest) one, where range 1's reads and range 3's (only read) are
** VALIDATEd. Then the range refuses chunks above 3,000 writes: each is
** halved until it fits. */
static void test_prepare_chunks(void **state) {
    fake *f = *state;
    learn_truth(f);
    set_prepare_ts(f, 2000, 0, 0);
    pthread_mutex_lock(&f->mu);
    f->prepare_step = 10;
    pthread_mutex_unlock(&f->mu);
    range_kv *kv = range_router_kv(f->router);
    char *keys;
    range_write *w = big_writes(BIG_WRITES, &keys);
    range_span rs[] = {
        {(const uint8_t *)"b", 1, NULL, 0, true}, /* range 1 */
        {(const uint8_t *)"x", 1, NULL, 0, true}, /* range 3: only read */
    };
    range_commit_request req = {.txn_id = 0xB16, .read_ts = {500, 0}, .writes = w,
                                .write_count = BIG_WRITES, .read_spans = rs,
                                .read_span_count = 2};
    range_txn_meta meta = {.txn_id = 0xB16, .nonce = 5, .anchor = w[0].key,
                           .anchor_len = w[0].key_len, .read_ts = {500, 0}};
    range_prepare_result res;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    assert_int_equal(kv->ops->prepare(kv, &meta, &req, &res, &conflict), RANGE_OK);
    char line[LOG_TEXT_MAX];
    hlc_timestamp ts;
    assert_int_equal(log_count(f), 6);
    assert_string_equal(log_line(f, 0, line, sizeof(line)), "P1 #6808 a00000..a06807 r:1 rec");
    assert_string_equal(log_line(f, 1, line, sizeof(line)), "P1 #6808 a06808..a13615");
    assert_string_equal(log_line(f, 2, line, sizeof(line)), "P1 #6808 a13616..a20423");
    assert_string_equal(log_line(f, 3, line, sizeof(line)), "P1 #4576 a20424..a24999");
    int v1 = log_find(f, 6, "V1 b"), v3 = log_find(f, 6, "V3 x");
    assert_true(v1 >= 4 && v3 >= 4);
    log_at(f, v1, line, sizeof(line), &ts);
    assert_int_equal(ts.wall_ns, 2030);
    log_at(f, v3, line, sizeof(line), &ts);
    assert_int_equal(ts.wall_ns, 2030);
    assert_int_equal(res.commit_ts.wall_ns, 2030);
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++) assert_true(log_nonce(f, i) != log_nonce(f, j));
    assert_int_equal(res.n_spans, 1);
    assert_memory_equal(res.spans[0].start, "a00000", 6);
    assert_memory_equal(res.spans[0].end, "a24999\0", 7);
    range_prepare_result_free(&res);

    /* a range that holds less than the estimate: halves, until each fits */
    pthread_mutex_lock(&f->mu);
    f->too_large_writes = 3000;
    f->prepared_writes = 0;
    f->n_log = 0;
    pthread_mutex_unlock(&f->mu);
    meta.nonce = 6;
    assert_int_equal(kv->ops->prepare(kv, &meta, &req, &res, &conflict), RANGE_OK);
    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->prepared_writes, BIG_WRITES);
    pthread_mutex_unlock(&f->mu);
    range_prepare_result_free(&res);

    /* nothing fits: a single write refused is the answer */
    pthread_mutex_lock(&f->mu);
    f->too_large_writes = -1;
    f->n_log = 0;
    pthread_mutex_unlock(&f->mu);
    req.write_count = 2;
    req.read_span_count = 0;
    meta.nonce = 7;
    assert_int_equal(kv->ops->prepare(kv, &meta, &req, &res, &conflict), RANGE_ERR_TOO_LARGE);
    char text[256];
    last_error(f, text, sizeof(text));
    assert_non_null(strstr(text, "larger than one command"));
    assert_int_equal(log_count(f), 2); /* 2 writes, then the first alone */
    range_prepare_result_free(&res);
    free(w);
    free(keys);
}

/* Reads more than one request carries (80 keys of 60 KiB): the PREPARE
** goes without them, and they are VALIDATEd at the commit timestamp in
** slices (of 512 KiB: 8 keys each). */
static void test_prepare_big_reads(void **state) {
    fake *f = *state;
    learn_truth(f);
    set_prepare_ts(f, 2000, 0, 0);
    range_kv *kv = range_router_kv(f->router);
    enum { N = 80, LEN = 60 * 1024 };
    uint8_t *keys = calloc(N, LEN);
    range_span *rs = calloc(N, sizeof(*rs));
    assert_non_null(keys);
    assert_non_null(rs);
    for (int i = 0; i < N; i++) {
        uint8_t *k = keys + (size_t)i * LEN;
        memset(k, 'c', LEN);
        k[1] = (uint8_t)('0' + i / 10);
        k[2] = (uint8_t)('0' + i % 10);
        rs[i] = (range_span){k, LEN, NULL, 0, true};
    }
    range_write w = {(const uint8_t *)"b", 1, (const uint8_t *)"1", 1, false};
    range_commit_request req = {.txn_id = 0xBEAD, .read_ts = {500, 0}, .writes = &w,
                                .write_count = 1, .read_spans = rs, .read_span_count = N};
    range_txn_meta meta = {.txn_id = 0xBEAD, .nonce = 1, .anchor = (const uint8_t *)"b",
                           .anchor_len = 1, .read_ts = {500, 0}};
    range_prepare_result res;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    assert_int_equal(kv->ops->prepare(kv, &meta, &req, &res, &conflict), RANGE_OK);
    char line[LOG_TEXT_MAX];
    hlc_timestamp ts;
    assert_int_equal(log_count(f), 1 + N / 8);
    assert_string_equal(log_line(f, 0, line, sizeof(line)), "P1 b rec");
    for (int i = 1; i < 1 + N / 8; i++) {
        log_at(f, i, line, sizeof(line), &ts);
        assert_int_equal(line[0], 'V');
        assert_true(hlc_compare(ts, res.commit_ts) == 0);
    }
    range_prepare_result_free(&res);
    free(rs);
    free(keys);
}

/* The PREPAREs of two ranges are in flight at once: the leaseholder of
** range 1 answers only once range 2's PREPARE arrived too (each waits,
** bounded, for the other). */
static void test_prepare_parallel(void **state) {
    fake *f = *state;
    /* a router whose attempts outlast the fake's wait */
    range_router_free(f->router);
    range_router_config rc = {.transport = rpc_uv_transport(f->router_uv), .clock = f->clock,
                              .local_node_id = ROUTER_NODE, .deadline_ms = 10000,
                              .rpc_timeout_ms = 5000, .random_seed = 8};
    assert_int_equal(range_router_new(&rc, &f->router), RANGE_OK);
    learn_truth(f);
    set_leader(f, 1, 2); /* range 2 at node 2: another loop thread */
    set_prepare_ts(f, 2000, 3000, 0);
    pthread_mutex_lock(&f->mu);
    f->overlap_wait = 2;
    pthread_mutex_unlock(&f->mu);
    range_kv *kv = range_router_kv(f->router);
    range_write w[2] = {{(const uint8_t *)"b", 1, (const uint8_t *)"1", 1, false},
                        {(const uint8_t *)"k", 1, (const uint8_t *)"2", 1, false}};
    range_commit_request req = {.txn_id = 0x9A, .read_ts = {500, 0}, .writes = w,
                                .write_count = 2};
    range_txn_meta meta = {.txn_id = 0x9A, .nonce = 3, .anchor = (const uint8_t *)"b",
                           .anchor_len = 1, .read_ts = {500, 0}};
    range_prepare_result res;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    assert_int_equal(kv->ops->prepare(kv, &meta, &req, &res, &conflict), RANGE_OK);
    assert_true(!hlc_is_zero(res.commit_ts)); /* both took the common timestamp */
    pthread_mutex_lock(&f->mu);
    bool overlapped = f->overlapped;
    pthread_mutex_unlock(&f->mu);
    assert_true(overlapped);
    range_prepare_result_free(&res);
}

/* MERGING answers: the router asks again (with backoff) and is served once
** the merge is over; refused until its deadline, it ends RANGE_ERR_MERGING
** (retryable) saying so. */
static void test_merging_retried(void **state) {
    fake *f = *state;
    learn_truth(f);
    base_buf out = {0};
    set_mode(f, 1, FAKE_MERGING);
    set_mode(f, 2, FAKE_MERGING);
    set_mode(f, 3, FAKE_MERGING);
    int before = requests_at(f, 1) + requests_at(f, 2) + requests_at(f, 3);
    assert_int_equal(get(f, "b", &out), RANGE_ERR_MERGING);
    assert_true(requests_at(f, 1) + requests_at(f, 2) + requests_at(f, 3) - before > 1);
    char msg[256];
    last_error(f, msg, sizeof(msg));
    assert_non_null(strstr(msg, "is being merged"));
    /* a commit refused MERGING only: surely not applied, so MERGING too */
    range_kv *kv = range_router_kv(f->router);
    range_write w = {(const uint8_t *)"q", 1, (const uint8_t *)"1", 1, false};
    range_commit_request req = {.txn_id = 19, .read_ts = {500, 0}, .writes = &w,
                                .write_count = 1};
    hlc_timestamp ts;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    assert_int_equal(kv->ops->commit(kv, &req, &ts, &conflict), RANGE_ERR_MERGING);
    /* the merge ends: served */
    for (uint64_t i = 1; i <= FAKES; i++) set_mode(f, i, FAKE_ANSWER);
    assert_int_equal(get(f, "b", &out), RANGE_OK);
    base_buf_free(&out);
}

/* range_meta_replaces after a merge: the merged range replaces the entry
** of the range it subsumed (a lower generation starting inside it), never
** a newer range split out of it later, and the old rules hold. */
static void test_meta_replaces_merged(void **state) {
    (void)state;
    range_descriptor merged = {.range_id = 2, .generation = 5, .start_key = (uint8_t *)"h",
                               .start_len = 1};
    range_descriptor right = {.range_id = 3, .generation = 4, .start_key = (uint8_t *)"p",
                              .start_len = 1};
    assert_true(range_meta_replaces(&right, &merged));
    /* split out of the merged range afterwards: generation above it */
    range_descriptor later = {.range_id = 7, .generation = 6, .start_key = (uint8_t *)"s",
                              .start_len = 1};
    assert_false(range_meta_replaces(&later, &merged));
    /* the same range: by generation */
    range_descriptor older = merged;
    older.generation = 4;
    assert_true(range_meta_replaces(&older, &merged));
    assert_false(range_meta_replaces(&merged, &older));
    /* the ancestor we were split from still covers our start */
    range_descriptor parent = {.range_id = 1, .generation = 9, .start_key = NULL,
                               .start_len = 0};
    assert_true(range_meta_replaces(&parent, &right));
    assert_true(range_meta_replaces(NULL, &right));
}

/* An abandoned merge whose range below R's start moved away: the cache
** names range 2 on nodes 2 and 3, which no longer host it (NOT_LEADER
** without a hint); it lives on node 1 now, as meta says. The fence finds
** it through meta instead of asking 2 and 3 until its deadline, and its
** "merged" answer ends the abandon (nothing unfrozen). */
static void test_abandon_range_moved(void **state) {
    fake *f = *state;
    static const uint64_t ONE[1] = {1}, TWO_THREE[2] = {2, 3};
    range_descriptor stale;
    make_desc(&stale, 2, 1, "h", "p", TWO_THREE, 2);
    pthread_mutex_lock(&f->mu);
    range_descriptor_free(&f->truth[1]);
    make_desc(&f->truth[1], 2, 4, "h", "p", ONE, 1);
    f->serve_meta = true;
    f->fence_merged = true;
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(range_router_update_descriptor(f->router, &f->truth[0]), RANGE_OK);
    assert_int_equal(range_router_update_descriptor(f->router, &stale), RANGE_OK);
    range_descriptor_free(&stale);
    set_mode(f, 2, FAKE_NOT_LEADER);
    set_mode(f, 3, FAKE_NOT_LEADER);
    bool merged = false;
    int rc = range_router_abandon_merge(f->router, 3, (const uint8_t *)"p", 1, 0x5, &merged);
    if (rc != RANGE_OK) {
        char msg[256];
        last_error(f, msg, sizeof(msg));
        fail_msg("abandon: %d (%s)", rc, msg);
    }
    assert_true(merged);
    range_router_stats st;
    range_router_get_stats(f->router, &st);
    assert_true(st.meta_lookups >= 1);
    assert_true(requests_at(f, 1) >= 2); /* the meta lookup and the fence */
}

static size_t all_fakes(void *ctx, uint64_t *out, size_t cap) {
    (void)ctx;
    size_t n = 0;
    for (uint64_t i = 1; i <= FAKES && n < cap; i++) out[n++] = i;
    return n;
}

/* Range 1's replicas moved (seed 542): the cache names nodes 1 and 2,
** which no longer host it (NOT_LEADER without a hint, also to DESCRIBE);
** only node 3 does, at a newer generation. Meta lives in range 1, so no
** lookup can find it: the router asks the other nodes it knows (first
** those the cache names for other ranges, then the owner's list) for
** their descriptor of range 1, installs the newest and routes there. */
static void test_first_range_rescue(void **state) {
    fake *f = *state;
    static const uint64_t ONE_TWO[2] = {1, 2}, THREE[1] = {3};
    range_descriptor stale;
    make_desc(&stale, 1, 2, "", "h", ONE_TWO, 2);
    pthread_mutex_lock(&f->mu);
    range_descriptor_free(&f->truth[0]);
    make_desc(&f->truth[0], 1, 5, "", "h", THREE, 1);
    for (int i = 0; i < TRUTH_MAX; i++) f->leader[i] = 3; /* nodes 1 and 2 refuse all */
    f->serve_meta = true;
    pthread_mutex_unlock(&f->mu);
    /* (a) node 3 is known from range 2's cached descriptor */
    assert_int_equal(range_router_update_descriptor(f->router, &stale), RANGE_OK);
    assert_int_equal(range_router_update_descriptor(f->router, &f->truth[1]), RANGE_OK);
    set_mode(f, 1, FAKE_NOT_LEADER);
    set_mode(f, 2, FAKE_NOT_LEADER);
    base_buf out = {0};
    int rc = get(f, "b", &out);
    if (rc != RANGE_OK) {
        char msg[256];
        last_error(f, msg, sizeof(msg));
        fail_msg("get b: %d (%s)", rc, msg);
    }
    assert_int_equal(out.data[0], 'b');
    assert_int_equal(cached_leaseholder(f, 1), 3);
    range_router_stats st;
    range_router_get_stats(f->router, &st);
    assert_int_equal(st.first_rescues, 1);
    /* meta (in range 1) answers again: range 3 is found through it */
    assert_int_equal(get(f, "q", &out), RANGE_OK);
    assert_int_equal(out.data[0], 'q');
    /* (b) a router that knows node 3 only from its owner's list */
    range_router_free(f->router);
    range_router_config rc2 = {.transport = rpc_uv_transport(f->router_uv), .clock = f->clock,
                               .local_node_id = ROUTER_NODE, .deadline_ms = DEADLINE_MS,
                               .rpc_timeout_ms = RPC_TIMEOUT_MS, .random_seed = 17,
                               .known_nodes = all_fakes};
    assert_int_equal(range_router_new(&rc2, &f->router), RANGE_OK);
    assert_int_equal(range_router_update_descriptor(f->router, &stale), RANGE_OK);
    assert_int_equal(get(f, "k", &out), RANGE_OK); /* a meta lookup first */
    assert_int_equal(out.data[0], 'k');
    range_router_get_stats(f->router, &st);
    assert_int_equal(st.first_rescues, 1);
    assert_true(st.meta_lookups >= 1);
    /* (c) nobody knows better: bounded, then UNAVAILABLE */
    range_router_free(f->router);
    rc2.known_nodes = NULL;
    rc2.deadline_ms = SHORT_DEADLINE_MS;
    assert_int_equal(range_router_new(&rc2, &f->router), RANGE_OK);
    assert_int_equal(range_router_update_descriptor(f->router, &stale), RANGE_OK);
    assert_int_equal(get(f, "b", &out), RANGE_ERR_UNAVAILABLE);
    range_router_get_stats(f->router, &st);
    assert_true(st.first_rescues >= 1 && st.first_rescues <= 2);
    range_descriptor_free(&stale);
    base_buf_free(&out);
}

/* Meta older than the cache (test_txn_sim seed 21578: a split's meta intent
** left unresolved): meta(+inf) still says range 3 ["p", +inf) at the old
** generation, the cache holds range 3 ["p", "s") at the new one, and nothing
** for "t". The lookup refuses meta's older entry, then asks the nodes, which
** name range 4 ["s", +inf) holding "t": the read is routed, not refused. */
static void test_meta_older_than_cache(void **state) {
    fake *f = *state;
    range_descriptor old3;
    pthread_mutex_lock(&f->mu);
    assert_int_equal(range_descriptor_copy(&old3, &f->truth[2]), RANGE_OK);
    fake_split_range3(f);
    f->meta_view[0] = &f->truth[0];
    f->meta_view[1] = &f->truth[1];
    f->meta_view[2] = &old3;
    f->n_meta_view = 3;
    f->serve_meta = true;
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < 3; i++)
        assert_int_equal(range_router_update_descriptor(f->router, &f->truth[i]), RANGE_OK);
    base_buf out = {0};
    int rc = get(f, "t", &out);
    if (rc != RANGE_OK) {
        char msg[256];
        last_error(f, msg, sizeof(msg));
        fail_msg("get t: %d (%s)", rc, msg);
    }
    assert_int_equal(out.data[0], 't');
    range_router_stats st;
    range_router_get_stats(f->router, &st);
    assert_true(st.meta_lookups >= 1);
    /* range 4 is cached now: its keys need neither meta nor the nodes */
    assert_int_equal(get(f, "u", &out), RANGE_OK);
    assert_int_equal(out.data[0], 'u');
    range_router_stats st2;
    range_router_get_stats(f->router, &st2);
    assert_int_equal(st2.meta_lookups, st.meta_lookups);
    pthread_mutex_lock(&f->mu);
    f->n_meta_view = 0;
    pthread_mutex_unlock(&f->mu);
    range_descriptor_free(&old3);
    base_buf_free(&out);
}

/* Every replica of range 2 moved (test_txn_sim seed 451): the cache names
** nodes 1 and 2, which no longer host it (NOT_LEADER without a hint, to
** everything: meta, read from range 1 there, cannot help); only node 3
** does, at a newer generation, and no node names it in a refusal. The
** router asks the other nodes it knows (node 3 from the other cached
** descriptors) for range 2, installs the newest and routes there. Before,
** it asked nodes 1 and 2 until the deadline. */
static void test_moved_range_rescue(void **state) {
    fake *f = *state;
    static const uint64_t ONE_TWO[2] = {1, 2}, THREE[1] = {3};
    range_descriptor stale;
    make_desc(&stale, 2, 1, "h", "p", ONE_TWO, 2);
    pthread_mutex_lock(&f->mu);
    range_descriptor_free(&f->truth[1]);
    make_desc(&f->truth[1], 2, 5, "h", "p", THREE, 1);
    f->leader[1] = 3;
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(range_router_update_descriptor(f->router, &f->truth[0]), RANGE_OK);
    assert_int_equal(range_router_update_descriptor(f->router, &stale), RANGE_OK);
    assert_int_equal(range_router_update_descriptor(f->router, &f->truth[2]), RANGE_OK);
    range_descriptor_free(&stale);
    set_mode(f, 1, FAKE_NOT_LEADER);
    set_mode(f, 2, FAKE_NOT_LEADER);
    base_buf out = {0};
    int rc = get(f, "k", &out);
    if (rc != RANGE_OK) {
        char msg[256];
        last_error(f, msg, sizeof(msg));
        fail_msg("get k: %d (%s)", rc, msg);
    }
    assert_int_equal(out.data[0], 'k');
    assert_int_equal(cached_leaseholder(f, 2), 3);
    range_router_stats st;
    range_router_get_stats(f->router, &st);
    assert_int_equal(st.first_rescues, 1); /* counts every range's rescues */
    base_buf_free(&out);
}

int main(void) {
    base_log_set_level(BASE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_redirect_on_not_leader_hint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failover_on_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_leaseholder_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failover_on_disconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_mismatch_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_across_ranges_paged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_range_commit_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_range_reads_validated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_range_reads_pushed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_range_replan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_retried_with_same_nonce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_ambiguous_vs_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_mismatch_other, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merging_retried, setup, teardown),
        cmocka_unit_test(test_meta_replaces_merged),
        cmocka_unit_test_setup_teardown(test_commit_unknown_then_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_unknown_then_validate_conflict, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_prepare_end_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_common_timestamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_meets_intent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_split_wait_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_deadlock_victim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_lock_anchor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_big_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abandon_range_moved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_range_rescue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moved_range_rescue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_older_than_cache, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
