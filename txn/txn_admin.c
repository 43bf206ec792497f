/*
** txn/txn_admin.c: the range event log (txn.h, "the range event log";
** docs/operations.md, "Range events"). Pure codec plus one writer that uses
** only the public transaction API, so it stays out of txn.c.
**
** Key:   TXN_RANGE_EVENT_PREFIX | u64 wall_ns | u64 txn id | u32 index
** Value: u8 version (1) | u64 wall_ns | u64 range_id | u8 kind |
**        u64 other_range_id | u64 node_id | u64 recorded_by | u8 n |
**        n x u64 replicas | u16 reason length | reason bytes
** Integers big-endian. wall_ns >= 0 so the key orders events by time; the
** writer's transaction id and the index in its batch keep two events of
** one nanosecond apart.
**
** Invariants:
**   - decode trusts nothing: every length is checked against the bytes
**     left and a named maximum, and trailing bytes are refused;
**   - an event write is one transaction of its own and never part of the
**     operation it records (callers log a failure and go on).
*/
#include <string.h>

#include "txn/txn.h"

#define MOD "txn"
#define EVENT_VERSION 1
#define EVENT_KEY_LEN (TXN_RANGE_EVENT_PREFIX_LEN + 8 + 8 + 4)
#define EVENT_WRITE_ATTEMPTS_MAX 5 /* a log write retried on 40001 */

static const char *const kind_names[] = {NULL, "split", "lease_transfer", "add_replica",
                                         "remove_replica", "merge"};

const char *txn_range_event_kind_name(int kind) {
    if (kind <= 0 || (size_t)kind >= BASE_ARRAY_LEN(kind_names)) return "unknown";
    return kind_names[kind];
}

static bool kind_valid(int kind) { return kind > 0 && (size_t)kind < BASE_ARRAY_LEN(kind_names); }

static void put_be(uint8_t *p, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static int append_be(base_buf *b, uint64_t v, int bytes) {
    uint8_t tmp[8];
    put_be(tmp, v, bytes);
    return base_buf_append(b, tmp, (size_t)bytes);
}

int txn_range_event_encode(const txn_range_event *e, base_buf *out) {
    if (!kind_valid(e->kind) || e->n_replicas > TXN_RANGE_EVENT_REPLICAS_MAX || e->wall_ns < 0)
        return TXN_ERR_INVALID;
    size_t reason_len = strnlen(e->reason, sizeof e->reason);
    if (reason_len >= sizeof e->reason) return TXN_ERR_INVALID; /* not NUL-terminated */
    size_t before = out->len;
    int rc = append_be(out, EVENT_VERSION, 1);
    if (rc == 0) rc = append_be(out, (uint64_t)e->wall_ns, 8);
    if (rc == 0) rc = append_be(out, e->range_id, 8);
    if (rc == 0) rc = append_be(out, e->kind, 1);
    if (rc == 0) rc = append_be(out, e->other_range_id, 8);
    if (rc == 0) rc = append_be(out, e->node_id, 8);
    if (rc == 0) rc = append_be(out, e->recorded_by, 8);
    if (rc == 0) rc = append_be(out, e->n_replicas, 1);
    for (size_t i = 0; rc == 0 && i < e->n_replicas; i++) rc = append_be(out, e->replicas[i], 8);
    if (rc == 0) rc = append_be(out, reason_len, 2);
    if (rc == 0) rc = base_buf_append(out, e->reason, reason_len);
    if (rc != 0) {
        out->len = before; /* all or nothing */
        return TXN_ERR_NOMEM;
    }
    return TXN_OK;
}

typedef struct reader {
    const uint8_t *p;
    size_t left;
    bool bad; /* sticky */
} reader;

static uint64_t get_be(reader *r, int bytes) {
    if (r->bad || r->left < (size_t)bytes) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v = v << 8 | r->p[i];
    r->p += bytes;
    r->left -= (size_t)bytes;
    return v;
}

int txn_range_event_decode(const uint8_t *p, size_t len, txn_range_event *out) {
    reader r = {p, len, false};
    memset(out, 0, sizeof *out);
    if (get_be(&r, 1) != EVENT_VERSION) return TXN_ERR_INVALID;
    uint64_t wall = get_be(&r, 8);
    out->range_id = get_be(&r, 8);
    uint64_t kind = get_be(&r, 1);
    out->other_range_id = get_be(&r, 8);
    out->node_id = get_be(&r, 8);
    out->recorded_by = get_be(&r, 8);
    uint64_t n = get_be(&r, 1);
    if (r.bad || wall > (uint64_t)INT64_MAX || !kind_valid((int)kind) ||
        n > TXN_RANGE_EVENT_REPLICAS_MAX)
        return TXN_ERR_INVALID;
    out->wall_ns = (int64_t)wall;
    out->kind = (uint8_t)kind;
    out->n_replicas = (size_t)n;
    for (size_t i = 0; i < out->n_replicas; i++) out->replicas[i] = get_be(&r, 8);
    uint64_t reason_len = get_be(&r, 2);
    if (r.bad || reason_len >= sizeof out->reason || r.left != reason_len) return TXN_ERR_INVALID;
    memcpy(out->reason, r.p, (size_t)reason_len);
    out->reason[reason_len] = '\0';
    if (memchr(out->reason, '\0', (size_t)reason_len) != NULL) return TXN_ERR_INVALID;
    return TXN_OK;
}

int txn_range_event_span(base_buf *start, base_buf *end) {
    base_buf_reset(start);
    base_buf_reset(end);
    if (base_buf_append(start, TXN_RANGE_EVENT_PREFIX, TXN_RANGE_EVENT_PREFIX_LEN) != 0 ||
        base_buf_append(end, TXN_RANGE_EVENT_PREFIX, TXN_RANGE_EVENT_PREFIX_LEN) != 0)
        return TXN_ERR_NOMEM;
    end->data[end->len - 1]++; /* "rangelog/" -> "rangelog0": past every event key */
    return TXN_OK;
}

/* One attempt: every event in t, then commit (which frees t). */
static int write_events(txn *t, const txn_range_event *events, size_t n, txn_error *err) {
    uint8_t key[EVENT_KEY_LEN];
    base_buf val = {0}; /* owner: this function */
    int64_t read_wall = txn_read_timestamp(t).wall_ns;
    int rc = TXN_OK;
    for (size_t i = 0; rc == TXN_OK && i < n; i++) {
        txn_range_event e = events[i];
        if (e.wall_ns <= 0) e.wall_ns = read_wall > 0 ? read_wall : 0;
        memcpy(key, TXN_RANGE_EVENT_PREFIX, TXN_RANGE_EVENT_PREFIX_LEN);
        put_be(key + TXN_RANGE_EVENT_PREFIX_LEN, (uint64_t)e.wall_ns, 8);
        put_be(key + TXN_RANGE_EVENT_PREFIX_LEN + 8, txn_id(t), 8);
        put_be(key + TXN_RANGE_EVENT_PREFIX_LEN + 16, i, 4);
        base_buf_reset(&val);
        rc = txn_range_event_encode(&e, &val);
        if (rc != TXN_OK) {
            txn_error_set(err, rc);
            break;
        }
        rc = txn_put(t, key, sizeof key, val.data, val.len, err);
    }
    base_buf_free(&val);
    if (rc != TXN_OK) {
        txn_rollback(t);
        return rc;
    }
    return txn_commit(t, NULL, err);
}

int txn_db_log_range_events(txn_db *db, const txn_range_event *events, size_t n,
                            txn_error *err) {
    if (n == 0) return TXN_OK;
    if (events == NULL || n > TXN_RANGE_EVENTS_BATCH_MAX) {
        txn_error_set(err, TXN_ERR_INVALID);
        return TXN_ERR_INVALID;
    }
    int rc = TXN_ERR_RETRY;
    for (int attempt = 0; attempt < EVENT_WRITE_ATTEMPTS_MAX && rc == TXN_ERR_RETRY; attempt++) {
        txn *t = NULL;
        memset(err, 0, sizeof *err);
        rc = txn_begin(db, NULL, &t);
        if (rc != TXN_OK) {
            txn_error_set(err, rc);
            break;
        }
        rc = write_events(t, events, n, err);
    }
    if (rc != TXN_OK) BASE_DEBUG(MOD, "range event log: %zu event(s) not written (%d)", n, rc);
    return rc;
}
