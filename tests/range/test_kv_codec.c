/*
** tests/range/test_kv_codec.c: the KV request/response codec
** (range/kv_codec.c) and range descriptors (range/descriptor.c).
** Round trips of every op and every response shape; every strict prefix and
** a trailing byte rejected; random byte changes (seeded; MERIDIAN_SEED=N
** replays, the seed is printed on failure) either rejected or decoded into
** something that re-encodes and decodes the same (never a crash, never a read
** outside the buffer: run under ASan); oversized counts and lengths refused
** on both sides; out-of-memory at every allocation of a decode; descriptor
** round trip, contains, copy and bad descriptors. Stale reads (docs/txn.md
** section 8): GET's optional and SCAN's stale_ok flag; the side transport's
** closed-timestamp message (round trip, prefixes, trailing and bad fields,
** seeded corruption). DESCRIBE's load section (issue 6).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"
#include "range/kv_int.h"
#include "range/range.h"

#define FUZZ_ROUNDS 20000 /* random corruptions per encoding */

/* ---- helpers -------------------------------------------------------------------- */

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

static void put_varint(base_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        assert_int_equal(base_buf_append_byte(b, (uint8_t)(v | 0x80)), 0);
        v >>= 7;
    }
    assert_int_equal(base_buf_append_byte(b, (uint8_t)v), 0);
}

static void put_u8(base_buf *b, uint8_t v) { assert_int_equal(base_buf_append_byte(b, v), 0); }

static void put_ts0(base_buf *b)
{
    uint8_t t[HLC_ENCODED_SIZE];
    hlc_encode(HLC_ZERO, t);
    assert_int_equal(base_buf_append(b, t, sizeof(t)), 0);
}

static bool same_bytes(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

static bool inside(const uint8_t *p, size_t n, const uint8_t *buf, size_t len)
{
    return n == 0 || (p >= buf && p + n <= buf + len);
}

/* An exact-size heap copy, so ASan sees any read past the end. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *c = malloc(n > 0 ? n : 1);
    assert_non_null(c);
    if (n > 0)
        memcpy(c, p, n);
    return c;
}

static bool same_span(const range_span *a, const range_span *b)
{
    if (a->point != b->point || !same_bytes(a->start, a->start_len, b->start, b->start_len))
        return false;
    return a->point || same_bytes(a->end, a->end_len, b->end, b->end_len);
}

/* COMMIT's and PREPARE's common part. */
static bool same_request_writes(const range_kv_request *a, const range_kv_request *b)
{
    if (hlc_compare(a->commit_ts, b->commit_ts) != 0)
        return false;
    if (a->txn_id != b->txn_id || a->nonce != b->nonce || a->write_count != b->write_count ||
        a->delete_span_count != b->delete_span_count ||
        a->read_span_count != b->read_span_count)
        return false;
    for (size_t i = 0; i < a->write_count; i++) {
        const range_write *x = &a->writes[i], *y = &b->writes[i];
        if (x->tombstone != y->tombstone || !same_bytes(x->key, x->key_len, y->key, y->key_len))
            return false;
        if (!x->tombstone && !same_bytes(x->value, x->value_len, y->value, y->value_len))
            return false;
    }
    for (size_t i = 0; i < a->delete_span_count; i++)
        if (!same_span(&a->delete_spans[i], &b->delete_spans[i]))
            return false;
    for (size_t i = 0; i < a->read_span_count; i++)
        if (!same_span(&a->read_spans[i], &b->read_spans[i]))
            return false;
    return true;
}

static bool same_edges(const range_kv_edge *a, size_t na, const range_kv_edge *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (a[i].waiter != b[i].waiter || a[i].waiter_priority != b[i].waiter_priority ||
            a[i].holder != b[i].holder || a[i].holder_priority != b[i].holder_priority)
            return false;
    return true;
}

static bool same_request(const range_kv_request *a, const range_kv_request *b)
{
    if (a->op != b->op || a->range_id != b->range_id)
        return false;
    if (a->op != RANGE_KV_DESCRIBE && hlc_compare(a->read_ts, b->read_ts) != 0)
        return false;
    switch (a->op) {
    case RANGE_KV_GET:
        return same_bytes(a->key, a->key_len, b->key, b->key_len);
    case RANGE_KV_SCAN:
        return same_bytes(a->start, a->start_len, b->start, b->start_len) &&
               same_bytes(a->end, a->end_len, b->end, b->end_len) && a->reverse == b->reverse &&
               a->max_rows == b->max_rows && a->max_bytes == b->max_bytes;
    case RANGE_KV_ADMIN_SPLIT:
        return same_bytes(a->key, a->key_len, b->key, b->key_len) &&
               a->new_range_id == b->new_range_id && a->txn_id == b->txn_id &&
               (a->txn_id == 0 ||
                (same_bytes(a->anchor, a->anchor_len, b->anchor, b->anchor_len) &&
                 hlc_compare(a->commit_ts, b->commit_ts) == 0 && a->generation == b->generation));
    case RANGE_KV_TRANSFER_LEASE:
        return a->target_node_id == b->target_node_id;
    case RANGE_KV_VALIDATE:
        if (hlc_compare(a->commit_ts, b->commit_ts) != 0 || a->txn_id != b->txn_id ||
            a->read_span_count != b->read_span_count)
            return false;
        for (size_t i = 0; i < a->read_span_count; i++)
            if (!same_span(&a->read_spans[i], &b->read_spans[i]))
                return false;
        return true;
    case RANGE_KV_COMMIT:
        return same_request_writes(a, b);
    case RANGE_KV_PREPARE:
        if (a->priority != b->priority || a->create_record != b->create_record ||
            !same_bytes(a->anchor, a->anchor_len, b->anchor, b->anchor_len))
            return false;
        return same_request_writes(a, b);
    case RANGE_KV_END_TXN:
        if (a->span_count != b->span_count)
            return false;
        for (size_t i = 0; i < a->span_count; i++)
            if (!same_span(&a->spans[i], &b->spans[i]))
                return false;
        return hlc_compare(a->commit_ts, b->commit_ts) == 0 && a->txn_id == b->txn_id &&
               a->nonce == b->nonce && a->priority == b->priority &&
               a->txn_status == b->txn_status &&
               same_bytes(a->anchor, a->anchor_len, b->anchor, b->anchor_len);
    case RANGE_KV_RESOLVE:
        if (hlc_compare(a->commit_ts, b->commit_ts) != 0 || a->txn_id != b->txn_id ||
            a->nonce != b->nonce || a->txn_status != b->txn_status ||
            a->span_count != b->span_count)
            return false;
        for (size_t i = 0; i < a->span_count; i++)
            if (!same_span(&a->spans[i], &b->spans[i]))
                return false;
        return true;
    case RANGE_KV_PUSH:
        return a->txn_id == b->txn_id && a->priority == b->priority &&
               a->pushee_txn_id == b->pushee_txn_id &&
               hlc_compare(a->intent_ts, b->intent_ts) == 0 &&
               same_bytes(a->anchor, a->anchor_len, b->anchor, b->anchor_len) &&
               a->since_wall_ns == b->since_wall_ns && same_edges(a->deps, a->dep_count, b->deps,
                                                                  b->dep_count);
    case RANGE_KV_HEARTBEAT:
        return a->txn_id == b->txn_id && a->priority == b->priority &&
               same_bytes(a->anchor, a->anchor_len, b->anchor, b->anchor_len);
    case RANGE_KV_QUERY_TXN:
    case RANGE_KV_GC_TXN:
        return a->txn_id == b->txn_id &&
               same_bytes(a->anchor, a->anchor_len, b->anchor, b->anchor_len);
    case RANGE_KV_LOCK:
        if (a->txn_id != b->txn_id || a->priority != b->priority ||
            !same_bytes(a->anchor, a->anchor_len, b->anchor, b->anchor_len) ||
            a->lock_key_count != b->lock_key_count)
            return false;
        for (size_t i = 0; i < a->lock_key_count; i++)
            if (!same_bytes(a->lock_keys[i].key, a->lock_keys[i].key_len, b->lock_keys[i].key,
                            b->lock_keys[i].key_len))
                return false;
        return true;
    default:
        return true;
    }
}

static bool same_descriptor(const range_descriptor *a, const range_descriptor *b)
{
    return a->range_id == b->range_id && a->generation == b->generation &&
           same_bytes(a->start_key, a->start_len, b->start_key, b->start_len) &&
           same_bytes(a->end_key, a->end_len, b->end_key, b->end_len) &&
           a->n_replicas == b->n_replicas &&
           memcmp(a->replicas, b->replicas, a->n_replicas * sizeof(a->replicas[0])) == 0;
}

static bool same_response(const range_kv_response *a, const range_kv_response *b)
{
    if (a->status != b->status || a->leader_hint != b->leader_hint ||
        !same_bytes(a->value, a->value_len, b->value, b->value_len) || a->n_rows != b->n_rows ||
        a->more != b->more || hlc_compare(a->commit_ts, b->commit_ts) != 0 ||
        a->conflict_kind != b->conflict_kind ||
        !same_bytes(a->conflict_key, a->conflict_key_len, b->conflict_key, b->conflict_key_len) ||
        hlc_compare(a->conflict_ts, b->conflict_ts) != 0 ||
        a->conflict_pending != b->conflict_pending || a->has_descriptor != b->has_descriptor ||
        a->lease_valid != b->lease_valid || a->leader_id != b->leader_id ||
        a->has_other != b->has_other || a->has_txn != b->has_txn ||
        a->txn_status != b->txn_status || a->intent_txn_id != b->intent_txn_id ||
        !same_bytes(a->intent_key, a->intent_key_len, b->intent_key, b->intent_key_len) ||
        !same_bytes(a->intent_anchor, a->intent_anchor_len, b->intent_anchor,
                    b->intent_anchor_len) ||
        hlc_compare(a->intent_ts, b->intent_ts) != 0 ||
        a->intent_unreplicated != b->intent_unreplicated ||
        a->intent_since_wall_ns != b->intent_since_wall_ns ||
        hlc_compare(a->newest_ts, b->newest_ts) != 0 ||
        !same_edges(a->deps, a->dep_count, b->deps, b->dep_count) ||
        a->cycle_len != b->cycle_len)
        return false;
    for (size_t i = 0; i < a->cycle_len; i++)
        if (a->cycle[i] != b->cycle[i])
            return false;
    if (a->has_other && !same_descriptor(&a->other, &b->other))
        return false;
    for (size_t i = 0; i < a->n_rows; i++)
        if (!same_bytes(a->rows[i].key, a->rows[i].key_len, b->rows[i].key, b->rows[i].key_len) ||
            !same_bytes(a->rows[i].value, a->rows[i].value_len, b->rows[i].value,
                        b->rows[i].value_len))
            return false;
    return !a->has_descriptor || same_descriptor(&a->descriptor, &b->descriptor);
}

/* Every byte field of a decoded request lies inside the input. */
static bool request_inside(const range_kv_request *d, const uint8_t *buf, size_t len)
{
    bool ok = inside(d->key, d->key_len, buf, len) && inside(d->start, d->start_len, buf, len) &&
              inside(d->end, d->end_len, buf, len);
    for (size_t i = 0; i < d->write_count; i++)
        ok = ok && inside(d->writes[i].key, d->writes[i].key_len, buf, len) &&
             inside(d->writes[i].value, d->writes[i].value_len, buf, len);
    for (size_t i = 0; i < d->delete_span_count; i++)
        ok = ok && inside(d->delete_spans[i].start, d->delete_spans[i].start_len, buf, len) &&
             inside(d->delete_spans[i].end, d->delete_spans[i].end_len, buf, len);
    for (size_t i = 0; i < d->read_span_count; i++)
        ok = ok && inside(d->read_spans[i].start, d->read_spans[i].start_len, buf, len) &&
             inside(d->read_spans[i].end, d->read_spans[i].end_len, buf, len);
    for (size_t i = 0; i < d->span_count; i++)
        ok = ok && inside(d->spans[i].start, d->spans[i].start_len, buf, len) &&
             inside(d->spans[i].end, d->spans[i].end_len, buf, len);
    for (size_t i = 0; i < d->lock_key_count; i++)
        ok = ok && inside(d->lock_keys[i].key, d->lock_keys[i].key_len, buf, len);
    return ok && inside(d->anchor, d->anchor_len, buf, len);
}

/* ---- sample messages -------------------------------------------------------------- */

static const uint8_t K1[] = "alpha", K2[] = "beta", K3[] = "gamma", V1[] = "value-one";
static const uint8_t EMPTY[1] = {0}; /* a non-NULL pointer for empty fields */

static range_write g_writes[4];
static range_span g_delete_spans[2];
static range_span g_read_spans[3];
static range_kv_key g_lock_keys[4];
static range_kv_edge g_edges[2];
static uint64_t g_cycle[3] = {9, UINT64_MAX, 1};

#define N_REQUESTS 24
static void sample_requests(range_kv_request reqs[N_REQUESTS])
{
    memset(reqs, 0, N_REQUESTS * sizeof(reqs[0]));
    hlc_timestamp ts = {1700000000123456789LL, 7};
    /* GET */
    reqs[0] = (range_kv_request){.op = RANGE_KV_GET, .range_id = 3, .read_ts = ts,
                                 .key = K1, .key_len = 5};
    /* GET of the empty key, extreme ids and timestamp */
    reqs[1] = (range_kv_request){.op = RANGE_KV_GET, .range_id = UINT64_MAX, .read_ts = HLC_MAX,
                                 .key = EMPTY, .key_len = 0};
    /* SCAN bounded, forward */
    reqs[2] = (range_kv_request){.op = RANGE_KV_SCAN, .range_id = 3, .read_ts = ts,
                                 .start = K1, .start_len = 5, .end = K3, .end_len = 5,
                                 .max_rows = 100, .max_bytes = RANGE_KV_SCAN_BYTES_DEFAULT};
    /* SCAN unbounded, reverse, extreme page limits */
    reqs[3] = (range_kv_request){.op = RANGE_KV_SCAN, .range_id = 4, .read_ts = ts,
                                 .start = EMPTY, .start_len = 0, .reverse = true,
                                 .max_rows = UINT32_MAX, .max_bytes = UINT32_MAX};
    /* COMMIT with writes, tombstones, an empty value, delete and read spans */
    g_writes[0] = (range_write){.key = K1, .key_len = 5, .value = V1, .value_len = 9};
    g_writes[1] = (range_write){.key = K2, .key_len = 4, .tombstone = true};
    g_writes[2] = (range_write){.key = K3, .key_len = 5, .value = EMPTY, .value_len = 0};
    g_writes[3] = (range_write){.key = V1, .key_len = 9, .value = K1, .value_len = 5};
    g_delete_spans[0] = (range_span){.start = K1, .start_len = 5, .end = K2, .end_len = 4};
    g_delete_spans[1] = (range_span){.start = K3, .start_len = 5}; /* to +inf */
    g_read_spans[0] = (range_span){.start = K2, .start_len = 4, .point = true};
    g_read_spans[1] = (range_span){.start = EMPTY, .start_len = 0, .end = K1, .end_len = 5};
    g_read_spans[2] = (range_span){.start = EMPTY, .start_len = 0}; /* everything */
    reqs[4] = (range_kv_request){.op = RANGE_KV_COMMIT, .range_id = 9, .read_ts = ts,
                                 .commit_ts = {ts.wall_ns + 1, 0},
                                 .txn_id = 0x123456789abcdefULL, .nonce = UINT64_MAX,
                                 .writes = g_writes, .write_count = 4,
                                 .delete_spans = g_delete_spans, .delete_span_count = 2,
                                 .read_spans = g_read_spans, .read_span_count = 3};
    /* COMMIT with nothing (read-only) */
    reqs[5] = (range_kv_request){.op = RANGE_KV_COMMIT, .range_id = 1, .read_ts = ts,
                                 .txn_id = 1, .nonce = 2};
    /* DESCRIBE */
    reqs[6] = (range_kv_request){.op = RANGE_KV_DESCRIBE, .range_id = 77};
    /* VALIDATE: a point, a bounded span, everything; and none */
    reqs[7] = (range_kv_request){.op = RANGE_KV_VALIDATE, .range_id = 5, .read_ts = ts,
                                 .commit_ts = HLC_MAX, .read_spans = g_read_spans,
                                 .read_span_count = 3};
    reqs[8] = (range_kv_request){.op = RANGE_KV_VALIDATE, .range_id = 6, .read_ts = HLC_ZERO,
                                 .commit_ts = ts, .txn_id = 42};
    /* ADMIN_SPLIT (no timestamp on the wire) */
    reqs[9] = (range_kv_request){.op = RANGE_KV_ADMIN_SPLIT, .range_id = 2, .key = K1,
                                 .key_len = 5, .new_range_id = 3};
    reqs[10] = (range_kv_request){.op = RANGE_KV_ADMIN_SPLIT, .range_id = UINT64_MAX,
                                  .key = EMPTY, .key_len = 1, .new_range_id = UINT64_MAX};
    /* TRANSFER_LEASE (no timestamp on the wire) */
    reqs[11] = (range_kv_request){.op = RANGE_KV_TRANSFER_LEASE, .range_id = 4,
                                  .target_node_id = UINT64_MAX};
    /* PREPARE: everything COMMIT has, the txn's meta, create_record */
    reqs[12] = reqs[4];
    reqs[12].op = RANGE_KV_PREPARE;
    reqs[12].priority = INT64_MIN;
    reqs[12].anchor = K2;
    reqs[12].anchor_len = 4;
    reqs[12].create_record = true;
    /* PREPARE with nothing but reads, a negative priority, no record */
    reqs[13] = (range_kv_request){.op = RANGE_KV_PREPARE, .range_id = 2, .read_ts = ts,
                                  .txn_id = UINT64_MAX, .nonce = 0, .priority = -1,
                                  .anchor = V1, .anchor_len = 9, .read_spans = g_read_spans,
                                  .read_span_count = 1};
    /* END_TXN committed, aborted (with spans: test_end_txn_spans) */
    reqs[14] = (range_kv_request){.op = RANGE_KV_END_TXN, .range_id = 3, .commit_ts = ts,
                                  .txn_id = 5, .nonce = 6, .priority = INT64_MAX,
                                  .anchor = K1, .anchor_len = 5,
                                  .txn_status = RANGE_TXN_COMMITTED};
    reqs[15] = (range_kv_request){.op = RANGE_KV_END_TXN, .range_id = 3, .txn_id = 5,
                                  .anchor = K1, .anchor_len = 1, .txn_status = RANGE_TXN_ABORTED};
    /* RESOLVE over a point, a span and an open span */
    reqs[16] = (range_kv_request){.op = RANGE_KV_RESOLVE, .range_id = 8, .commit_ts = ts,
                                  .txn_id = 5, .nonce = 99, .txn_status = RANGE_TXN_COMMITTED,
                                  .spans = g_read_spans, .span_count = 3};
    /* PUSH by an anonymous reader */
    reqs[17] = (range_kv_request){.op = RANGE_KV_PUSH, .range_id = 1, .txn_id = 0,
                                  .priority = 3, .pushee_txn_id = UINT64_MAX, .anchor = K3,
                                  .anchor_len = 5, .intent_ts = ts};
    /* HEARTBEAT */
    reqs[18] = (range_kv_request){.op = RANGE_KV_HEARTBEAT, .range_id = 1, .txn_id = 7,
                                  .priority = 0, .anchor = K3, .anchor_len = 5};
    /* LOCK of the empty key, a prefix of another, and a longer key */
    g_lock_keys[0] = (range_kv_key){.key = EMPTY, .key_len = 0};
    g_lock_keys[1] = (range_kv_key){.key = K1, .key_len = 3};
    g_lock_keys[2] = (range_kv_key){.key = K1, .key_len = 5};
    g_lock_keys[3] = (range_kv_key){.key = K2, .key_len = 4};
    reqs[19] = (range_kv_request){.op = RANGE_KV_LOCK, .range_id = 4, .read_ts = ts,
                                  .txn_id = UINT64_MAX, .priority = -7, .anchor = K1,
                                  .anchor_len = 5, .lock_keys = g_lock_keys,
                                  .lock_key_count = 4};
    /* QUERY_TXN */
    reqs[20] = (range_kv_request){.op = RANGE_KV_QUERY_TXN, .range_id = 2, .txn_id = 3,
                                  .anchor = K2, .anchor_len = 4};
    /* PUSH by a lock holder with dependents and the pushee's lock time */
    g_edges[0] = (range_kv_edge){.waiter = 5, .waiter_priority = INT64_MIN, .holder = 7,
                                 .holder_priority = 0};
    g_edges[1] = (range_kv_edge){.waiter = UINT64_MAX, .waiter_priority = 3, .holder = 5,
                                 .holder_priority = INT64_MAX};
    reqs[21] = (range_kv_request){.op = RANGE_KV_PUSH, .range_id = 1, .txn_id = 7,
                                  .priority = 1, .pushee_txn_id = 8, .anchor = K3,
                                  .anchor_len = 5, .intent_ts = ts,
                                  .since_wall_ns = 1700000000000000000LL, .deps = g_edges,
                                  .dep_count = 2};
    /* PUSH with a negative since (the codec does not care), one edge */
    reqs[22] = reqs[21];
    reqs[22].since_wall_ns = -1;
    reqs[22].dep_count = 1;
    reqs[22].deps = &g_edges[1];
    /* GC_TXN of a final record */
    reqs[23] = (range_kv_request){.op = RANGE_KV_GC_TXN, .range_id = 3, .txn_id = UINT64_MAX,
                                  .anchor = K1, .anchor_len = 5};
}

static uint8_t g_start_key[] = "m", g_end_key[] = "t";
static range_kv_row g_rows[3];

static void sample_descriptor(range_descriptor *d)
{
    memset(d, 0, sizeof(*d));
    d->range_id = 12;
    d->generation = 3;
    d->start_key = g_start_key;
    d->start_len = 1;
    d->end_key = g_end_key;
    d->end_len = 1;
    d->replicas[0] = 1;
    d->replicas[1] = 2;
    d->replicas[2] = UINT64_MAX;
    d->n_replicas = 3;
}

#define N_RESPONSES 22
static void sample_responses(range_kv_response r[N_RESPONSES])
{
    memset(r, 0, N_RESPONSES * sizeof(r[0]));
    hlc_timestamp ts = {1700000000000000001LL, 2};
    g_rows[0] = (range_kv_row){.key = K1, .key_len = 5, .value = V1, .value_len = 9};
    g_rows[1] = (range_kv_row){.key = K2, .key_len = 4, .value = EMPTY, .value_len = 0};
    g_rows[2] = (range_kv_row){.key = EMPTY, .key_len = 0, .value = K3, .value_len = 5};
    /* GET found */
    r[0].status = RANGE_OK;
    r[0].value = V1;
    r[0].value_len = 9;
    /* GET found, empty value */
    r[1].status = RANGE_OK;
    r[1].value = EMPTY;
    /* GET not found */
    r[2].status = RANGE_NOT_FOUND;
    /* SCAN page with more */
    r[3].status = RANGE_OK;
    r[3].rows = g_rows;
    r[3].n_rows = 3;
    r[3].more = true;
    /* SCAN: nothing, but more (a page cut by max_bytes cannot be empty, the
    ** codec does not care) */
    r[4].status = RANGE_OK;
    r[4].more = true;
    /* COMMIT ok */
    r[5].status = RANGE_OK;
    r[5].commit_ts = ts;
    /* COMMIT conflict */
    r[6].status = RANGE_ERR_CONFLICT;
    r[6].conflict_kind = RANGE_CONFLICT_PHANTOM;
    r[6].conflict_key = K2;
    r[6].conflict_key_len = 4;
    r[6].conflict_ts = ts;
    r[6].conflict_pending = true;
    /* NOT_LEADER with a hint */
    r[7].status = RANGE_ERR_NOT_LEADER;
    r[7].leader_hint = 5;
    /* KEY_MISMATCH with the descriptor */
    r[8].status = RANGE_ERR_KEY_MISMATCH;
    r[8].has_descriptor = true;
    sample_descriptor(&r[8].descriptor);
    /* DESCRIBE: descriptor and lease */
    r[9].status = RANGE_OK;
    r[9].has_descriptor = true;
    sample_descriptor(&r[9].descriptor);
    r[9].descriptor.start_key = NULL;
    r[9].descriptor.start_len = 0;
    r[9].descriptor.end_key = NULL;
    r[9].descriptor.end_len = 0;
    r[9].lease_valid = true;
    r[9].leader_id = 2;
    /* the smallest status, a conflict with an empty key and zero fields */
    r[10].status = INT32_MIN;
    r[10].leader_hint = UINT64_MAX;
    r[10].conflict_kind = RANGE_CONFLICT_WRITE_WRITE;
    r[10].conflict_key = EMPTY;
    r[10].leader_id = 1;
    /* COMMIT pushed: the lowest timestamp the range accepts */
    r[11].status = RANGE_ERR_PUSHED;
    r[11].commit_ts = ts;
    /* ADMIN_SPLIT: the left and the right descriptors */
    r[12].status = RANGE_OK;
    r[12].has_descriptor = true;
    sample_descriptor(&r[12].descriptor);
    r[12].has_other = true;
    sample_descriptor(&r[12].other);
    r[12].other.range_id = 13;
    r[12].other.start_key = g_end_key;
    r[12].other.end_key = NULL;
    r[12].other.end_len = 0;
    /* KEY_MISMATCH with the range holding the key (no descriptor of its own) */
    r[13].status = RANGE_ERR_KEY_MISMATCH;
    r[13].has_other = true;
    sample_descriptor(&r[13].other);
    /* END_TXN / PUSH: the record committed at ts */
    r[14].status = RANGE_OK;
    r[14].commit_ts = ts;
    r[14].has_txn = true;
    r[14].txn_status = RANGE_TXN_COMMITTED;
    /* HEARTBEAT: pending (status 0 still sent) */
    r[15].status = RANGE_OK;
    r[15].has_txn = true;
    r[15].txn_status = RANGE_TXN_PENDING;
    /* RANGE_ERR_INTENT naming the intent */
    r[16].status = RANGE_ERR_INTENT;
    r[16].intent_key = K1;
    r[16].intent_key_len = 5;
    r[16].intent_txn_id = UINT64_MAX;
    r[16].intent_anchor = K2;
    r[16].intent_anchor_len = 4;
    r[16].intent_ts = ts;
    /* every section at once, the extended ones too */
    r[17] = r[12];
    r[17].value = V1;
    r[17].value_len = 9;
    r[17].rows = g_rows;
    r[17].n_rows = 3;
    r[17].more = true;
    r[17].commit_ts = ts;
    r[17].conflict_kind = RANGE_CONFLICT_READ_WRITE;
    r[17].conflict_key = K1;
    r[17].conflict_key_len = 5;
    r[17].lease_valid = true;
    r[17].has_txn = true;
    r[17].txn_status = RANGE_TXN_ABORTED;
    r[17].intent_key = EMPTY;
    r[17].intent_txn_id = 1;
    r[17].intent_anchor = K3;
    r[17].intent_anchor_len = 5;
    r[17].intent_unreplicated = true;
    r[17].intent_since_wall_ns = INT64_MIN;
    r[17].newest_ts = ts;
    r[17].deps = g_edges;
    r[17].dep_count = 2;
    r[17].cycle = g_cycle;
    r[17].cycle_len = 3;
    /* LOCK granted: the newest version's timestamp */
    r[18].status = RANGE_OK;
    r[18].newest_ts = ts;
    /* RANGE_ERR_INTENT naming an unreplicated lock holder */
    r[19] = r[16];
    r[19].intent_unreplicated = true;
    r[19].intent_since_wall_ns = ts.wall_ns;
    /* QUERY_TXN: no record, two dependents */
    r[20].status = RANGE_OK;
    r[20].deps = g_edges;
    r[20].dep_count = 2;
    /* PUSH: the pusher was the deadlock's victim */
    r[21].status = RANGE_ERR_ABORTED;
    r[21].cycle = g_cycle;
    r[21].cycle_len = 2;
}

/* ---- requests ----------------------------------------------------------------------- */

static void test_request_roundtrip(void **state)
{
    (void)state;
    range_kv_request reqs[N_REQUESTS];
    sample_requests(reqs);
    for (int i = 0; i < N_REQUESTS; i++) {
        base_buf b = {0};
        range_kv_request d;
        assert_int_equal(base_buf_append(&b, "xy", 2), 0); /* encode appends */
        assert_int_equal(range_kv_request_encode(&reqs[i], &b), RANGE_OK);
        assert_memory_equal(b.data, "xy", 2);
        assert_int_equal(range_kv_request_decode(b.data + 2, b.len - 2, &d), RANGE_OK);
        assert_true(same_request(&reqs[i], &d));
        assert_true(request_inside(&d, b.data + 2, b.len - 2));
        /* the empty-vs-NULL rules of kv_codec.c */
        if (d.op == RANGE_KV_GET)
            assert_non_null(d.key);
        if (d.op == RANGE_KV_SCAN) {
            assert_non_null(d.start);
            assert_true((d.end == NULL) == (d.end_len == 0));
        }
        if (d.op == RANGE_KV_DESCRIBE)
            assert_true(hlc_is_zero(d.read_ts));
        for (size_t k = 0; k < d.write_count; k++) {
            assert_non_null(d.writes[k].key);
            if (d.writes[k].tombstone)
                assert_null(d.writes[k].value);
            else
                assert_non_null(d.writes[k].value);
        }
        for (size_t k = 0; k < d.read_span_count; k++) {
            assert_non_null(d.read_spans[k].start);
            assert_true((d.read_spans[k].end == NULL) == (d.read_spans[k].end_len == 0));
        }
        range_kv_request_free(&d);
        base_buf_free(&b);
    }
}

static void test_request_encode_rejects(void **state)
{
    (void)state;
    range_kv_request reqs[N_REQUESTS];
    base_buf b = {0};
    sample_requests(reqs);
    range_kv_request r = reqs[0];
    r.op = 0;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r.op = 6;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[0];
    r.range_id = 0;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[0];
    r.key_len = STORAGE_KEY_SIZE_MAX + 1;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r.key = NULL;
    r.key_len = 1;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[2];
    r.end_len = STORAGE_KEY_SIZE_MAX + 1;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[4];
    r.write_count = RANGE_COMMAND_WRITES_MAX + 1;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[4];
    r.delete_span_count = RANGE_KV_SPANS_MAX + 1;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[4];
    r.read_spans = NULL;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    range_write big[1] = {{.key = K1, .key_len = 5, .value = V1,
                           .value_len = STORAGE_VALUE_SIZE_MAX + 1}};
    r = reqs[4];
    r.writes = big;
    r.write_count = 1;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    big[0].tombstone = true; /* the value of a tombstone is ignored */
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_OK);
    r = reqs[7];
    r.read_span_count = RANGE_KV_SPANS_MAX + 1;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[7];
    r.read_spans = NULL;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    range_span long_span[1] = {{.start = K1, .start_len = STORAGE_KEY_SIZE_MAX + 1}};
    r = reqs[7];
    r.read_spans = long_span;
    r.read_span_count = 1;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    /* two-phase commit: what the decoder refuses */
    r = reqs[12];
    r.txn_id = 0;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[12];
    r.anchor_len = 0;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[14];
    r.txn_status = RANGE_TXN_PENDING;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[14]; /* spans only with COMMITTED, at most RANGE_TXN_RECORD_SPANS_MAX */
    r.spans = g_read_spans;
    r.span_count = 3;
    r.txn_status = RANGE_TXN_ABORTED;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r.txn_status = RANGE_TXN_COMMITTED;
    r.span_count = RANGE_TXN_RECORD_SPANS_MAX + 1;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[16];
    r.span_count = 0;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[16];
    r.spans = NULL;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[17];
    r.pushee_txn_id = 0;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[18];
    r.anchor = NULL;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    /* LOCK: no keys, too many, unsorted, a duplicate, txn 0, no anchor */
    r = reqs[19];
    r.lock_key_count = 0;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[19];
    r.lock_key_count = RANGE_KV_LOCK_KEYS_MAX + 1;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[19];
    r.lock_keys = NULL;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    range_kv_key keys[2] = {{.key = K2, .key_len = 4}, {.key = K1, .key_len = 5}};
    r = reqs[19];
    r.lock_keys = keys;
    r.lock_key_count = 2;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    keys[1] = keys[0];
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[19];
    r.txn_id = 0;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[19];
    r.anchor_len = 0;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    /* QUERY_TXN: txn 0; PUSH: too many deps, an edge with a zero end */
    r = reqs[20];
    r.txn_id = 0;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    r = reqs[21];
    r.dep_count = RANGE_KV_DEPS_MAX + 1;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    range_kv_edge bad_edge = {.waiter = 1, .holder = 0};
    r = reqs[21];
    r.deps = &bad_edge;
    r.dep_count = 1;
    assert_int_equal(range_kv_request_encode(&r, &b), RANGE_ERR_INVALID);
    base_buf_free(&b);
}

/* Hand-built requests that must be refused. */
static void test_request_decode_rejects(void **state)
{
    (void)state;
    range_kv_request d;
    base_buf b = {0};
#define EXPECT_REQ_CORRUPT()                                                               \
    do {                                                                                   \
        assert_int_equal(range_kv_request_decode(b.data, b.len, &d), RANGE_ERR_CORRUPT);   \
        assert_null(d.writes);                                                             \
        base_buf_reset(&b);                                                                \
    } while (0)
    assert_int_equal(range_kv_request_decode(NULL, 0, &d), RANGE_ERR_CORRUPT);
    /* version, op, range id */
    put_u8(&b, RANGE_KV_VERSION + 1), put_u8(&b, RANGE_KV_DESCRIBE), put_varint(&b, 1);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, 0), put_varint(&b, 1);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, 9), put_varint(&b, 1);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_DESCRIBE), put_varint(&b, 0);
    EXPECT_REQ_CORRUPT();
    /* an overlong varint (11 bytes) and one above 64 bits */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_DESCRIBE);
    for (int i = 0; i < 10; i++)
        put_u8(&b, 0x80);
    put_u8(&b, 0);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_DESCRIBE);
    for (int i = 0; i < 9; i++)
        put_u8(&b, 0xff);
    put_u8(&b, 0x02);
    EXPECT_REQ_CORRUPT();
    /* ADMIN_SPLIT: an empty key, a new range id 0, a missing id */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_ADMIN_SPLIT), put_varint(&b, 1);
    put_varint(&b, 0), put_varint(&b, 2);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_ADMIN_SPLIT), put_varint(&b, 1);
    put_varint(&b, 1), put_u8(&b, 'k'), put_varint(&b, 0);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_ADMIN_SPLIT), put_varint(&b, 1);
    put_varint(&b, 1), put_u8(&b, 'k');
    EXPECT_REQ_CORRUPT();
    /* TRANSFER_LEASE: target 0, a missing target */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_TRANSFER_LEASE), put_varint(&b, 1);
    put_varint(&b, 0);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_TRANSFER_LEASE), put_varint(&b, 1);
    EXPECT_REQ_CORRUPT();
    /* the valid DESCRIBE, then with a trailing byte */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_DESCRIBE), put_varint(&b, 1);
    assert_int_equal(range_kv_request_decode(b.data, b.len, &d), RANGE_OK);
    range_kv_request_free(&d);
    put_u8(&b, 0);
    EXPECT_REQ_CORRUPT();
    /* GET: a key longer than STORAGE_KEY_SIZE_MAX (bytes present) */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_GET), put_varint(&b, 1), put_ts0(&b);
    put_varint(&b, STORAGE_KEY_SIZE_MAX + 1);
    for (int i = 0; i <= STORAGE_KEY_SIZE_MAX; i++)
        put_u8(&b, 'k');
    EXPECT_REQ_CORRUPT();
    /* GET: a length beyond the bytes left */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_GET), put_varint(&b, 1), put_ts0(&b);
    put_varint(&b, 10), put_u8(&b, 'k');
    EXPECT_REQ_CORRUPT();
    /* SCAN: unknown flag (bit1 is stale_ok since issue 5 step 3, bit2
    ** skip_intents since meta lookups read inconsistently), max_rows above
    ** 32 bits */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_SCAN), put_varint(&b, 1), put_ts0(&b);
    put_u8(&b, 8), put_varint(&b, 0), put_varint(&b, 0), put_varint(&b, 1), put_varint(&b, 1);
    EXPECT_REQ_CORRUPT();
    /* GET: a flags byte that is zero (absent means zero) or unknown */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_GET), put_varint(&b, 1), put_ts0(&b);
    put_varint(&b, 1), put_u8(&b, 'k'), put_u8(&b, 0);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_GET), put_varint(&b, 1), put_ts0(&b);
    put_varint(&b, 1), put_u8(&b, 'k'), put_u8(&b, 2);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_GET), put_varint(&b, 1), put_ts0(&b);
    put_varint(&b, 1), put_u8(&b, 'k'), put_u8(&b, 1), put_u8(&b, 1);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_SCAN), put_varint(&b, 1), put_ts0(&b);
    put_u8(&b, 0), put_varint(&b, 0), put_varint(&b, 0), put_varint(&b, 1ULL << 32);
    put_varint(&b, 1);
    EXPECT_REQ_CORRUPT();
    /* COMMIT: write count above the maximum, with the bytes to back it */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_COMMIT), put_varint(&b, 1), put_ts0(&b);
    put_ts0(&b); /* commit_ts */
    put_varint(&b, 1), put_varint(&b, 1), put_varint(&b, RANGE_COMMAND_WRITES_MAX + 1);
    for (int i = 0; i <= RANGE_COMMAND_WRITES_MAX; i++)
        put_u8(&b, 1), put_varint(&b, 1), put_u8(&b, 'k');
    put_varint(&b, 0), put_varint(&b, 0);
    EXPECT_REQ_CORRUPT();
    /* COMMIT: huge counts with few bytes (no allocation sized by them) */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_COMMIT), put_varint(&b, 1), put_ts0(&b);
    put_ts0(&b); /* commit_ts */
    put_varint(&b, 1), put_varint(&b, 1), put_varint(&b, UINT64_MAX);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_COMMIT), put_varint(&b, 1), put_ts0(&b);
    put_ts0(&b); /* commit_ts */
    put_varint(&b, 1), put_varint(&b, 1), put_varint(&b, 1000), put_u8(&b, 0);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_COMMIT), put_varint(&b, 1), put_ts0(&b);
    put_ts0(&b); /* commit_ts */
    put_varint(&b, 1), put_varint(&b, 1), put_varint(&b, 0), put_varint(&b, 0);
    put_varint(&b, RANGE_KV_SPANS_MAX + 1);
    EXPECT_REQ_CORRUPT();
    /* COMMIT: unknown write flag, unknown span flag */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_COMMIT), put_varint(&b, 1), put_ts0(&b);
    put_ts0(&b); /* commit_ts */
    put_varint(&b, 1), put_varint(&b, 1), put_varint(&b, 1);
    put_u8(&b, 2), put_varint(&b, 1), put_u8(&b, 'k');
    put_varint(&b, 0), put_varint(&b, 0);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_COMMIT), put_varint(&b, 1), put_ts0(&b);
    put_ts0(&b); /* commit_ts */
    put_varint(&b, 1), put_varint(&b, 1), put_varint(&b, 0), put_varint(&b, 1);
    put_u8(&b, 4), put_varint(&b, 1), put_u8(&b, 'k'), put_varint(&b, 0);
    EXPECT_REQ_CORRUPT();
    /* COMMIT: spans then garbage in the read spans (writes already allocated) */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_COMMIT), put_varint(&b, 1), put_ts0(&b);
    put_ts0(&b); /* commit_ts */
    put_varint(&b, 1), put_varint(&b, 1), put_varint(&b, 1);
    put_u8(&b, 1), put_varint(&b, 1), put_u8(&b, 'k');
    put_varint(&b, 1), put_u8(&b, 1), put_varint(&b, 1), put_u8(&b, 'k');
    put_varint(&b, 1), put_u8(&b, 0), put_varint(&b, 1), put_u8(&b, 'k'), put_varint(&b, 5);
    EXPECT_REQ_CORRUPT();
    /* VALIDATE: no commit_ts; a span count above the maximum; more spans
    ** than bytes; an unknown span flag; a span then a trailing byte */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_VALIDATE), put_varint(&b, 1), put_ts0(&b);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_VALIDATE), put_varint(&b, 1), put_ts0(&b);
    put_ts0(&b), put_varint(&b, 0), put_varint(&b, RANGE_KV_SPANS_MAX + 1);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_VALIDATE), put_varint(&b, 1), put_ts0(&b);
    put_ts0(&b), put_varint(&b, 0), put_varint(&b, 1000), put_u8(&b, 1), put_varint(&b, 0);
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_VALIDATE), put_varint(&b, 1), put_ts0(&b);
    put_ts0(&b), put_varint(&b, 0), put_varint(&b, 1), put_u8(&b, 2), put_varint(&b, 1), put_u8(&b, 'k');
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_VALIDATE), put_varint(&b, 1), put_ts0(&b);
    put_ts0(&b), put_varint(&b, 0), put_varint(&b, 1), put_u8(&b, 1), put_varint(&b, 1), put_u8(&b, 'k');
    assert_int_equal(range_kv_request_decode(b.data, b.len, &d), RANGE_OK);
    assert_int_equal(d.read_span_count, 1);
    assert_true(d.read_spans[0].point);
    range_kv_request_free(&d);
    put_u8(&b, 0);
    EXPECT_REQ_CORRUPT();
    /* PREPARE: txn id 0; empty anchor; unknown flag */
    for (int bad = 0; bad < 3; bad++) {
        put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_PREPARE), put_varint(&b, 1);
        put_ts0(&b), put_ts0(&b);
        put_varint(&b, bad == 0 ? 0 : 1), put_varint(&b, 1), put_varint(&b, 0);
        if (bad == 1)
            put_varint(&b, 0);
        else
            put_varint(&b, 1), put_u8(&b, 'a');
        put_u8(&b, bad == 2 ? 2 : 1);
        put_varint(&b, 0), put_varint(&b, 0), put_varint(&b, 0);
        EXPECT_REQ_CORRUPT();
    }
    /* END_TXN: PENDING (status 0) and an unknown status are not final */
    for (int status = 0; status < 4; status += 3) {
        put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_END_TXN), put_varint(&b, 1);
        put_ts0(&b), put_varint(&b, 1), put_varint(&b, 1), put_varint(&b, 0);
        put_varint(&b, 1), put_u8(&b, 'a'), put_u8(&b, (uint8_t)status);
        EXPECT_REQ_CORRUPT();
    }
    /* RESOLVE: no spans */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_RESOLVE), put_varint(&b, 1);
    put_ts0(&b), put_varint(&b, 1), put_varint(&b, 1), put_u8(&b, RANGE_TXN_ABORTED);
    put_varint(&b, 0);
    EXPECT_REQ_CORRUPT();
    /* PUSH: pushee 0 */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_PUSH), put_varint(&b, 1);
    put_varint(&b, 1), put_varint(&b, 0), put_varint(&b, 0), put_varint(&b, 1), put_u8(&b, 'a');
    put_ts0(&b);
    EXPECT_REQ_CORRUPT();
    /* HEARTBEAT: empty anchor */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_HEARTBEAT), put_varint(&b, 1);
    put_varint(&b, 1), put_varint(&b, 0), put_varint(&b, 0);
    EXPECT_REQ_CORRUPT();
    /* LOCK: no keys; unsorted keys; a duplicate; more keys than the maximum
    ** (bytes present); txn 0 */
    for (int bad = 0; bad < 5; bad++) {
        put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_LOCK), put_varint(&b, 1), put_ts0(&b);
        put_varint(&b, bad == 4 ? 0 : 1), put_varint(&b, 0), put_varint(&b, 1), put_u8(&b, 'a');
        if (bad == 0 || bad == 4) {
            put_varint(&b, bad == 0 ? 0 : 1);
            if (bad == 4)
                put_varint(&b, 1), put_u8(&b, 'k');
        } else if (bad == 1 || bad == 2) {
            put_varint(&b, 2), put_varint(&b, 1), put_u8(&b, 'k');
            put_varint(&b, 1), put_u8(&b, bad == 1 ? 'b' : 'k');
        } else {
            put_varint(&b, RANGE_KV_LOCK_KEYS_MAX + 1);
            for (int i = 0; i <= RANGE_KV_LOCK_KEYS_MAX; i++)
                put_varint(&b, 2), put_u8(&b, (uint8_t)(i >> 8)), put_u8(&b, (uint8_t)i);
        }
        EXPECT_REQ_CORRUPT();
    }
    /* LOCK: the valid one of a single key */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_LOCK), put_varint(&b, 1), put_ts0(&b);
    put_varint(&b, 1), put_varint(&b, 0), put_varint(&b, 1), put_u8(&b, 'a');
    put_varint(&b, 1), put_varint(&b, 1), put_u8(&b, 'k');
    assert_int_equal(range_kv_request_decode(b.data, b.len, &d), RANGE_OK);
    assert_int_equal(d.lock_key_count, 1);
    range_kv_request_free(&d);
    base_buf_reset(&b);
    /* QUERY_TXN: txn 0, empty anchor */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_QUERY_TXN), put_varint(&b, 1);
    put_varint(&b, 0), put_varint(&b, 1), put_u8(&b, 'a');
    EXPECT_REQ_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_QUERY_TXN), put_varint(&b, 1);
    put_varint(&b, 1), put_varint(&b, 0);
    EXPECT_REQ_CORRUPT();
    /* PUSH: deps above the maximum; an edge with waiter 0; huge count, few bytes */
    for (int bad = 0; bad < 3; bad++) {
        put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_PUSH), put_varint(&b, 1);
        put_varint(&b, 1), put_varint(&b, 0), put_varint(&b, 2), put_varint(&b, 1),
            put_u8(&b, 'a');
        put_ts0(&b), put_varint(&b, 0);
        if (bad == 0) {
            put_varint(&b, RANGE_KV_DEPS_MAX + 1);
            for (int i = 0; i <= RANGE_KV_DEPS_MAX; i++)
                put_varint(&b, 1), put_varint(&b, 0), put_varint(&b, 2), put_varint(&b, 0);
        } else if (bad == 1) {
            put_varint(&b, 1), put_varint(&b, 0), put_varint(&b, 0), put_varint(&b, 2),
                put_varint(&b, 0);
        } else {
            put_varint(&b, UINT64_MAX), put_varint(&b, 1);
        }
        EXPECT_REQ_CORRUPT();
    }
    /* an op past the last one */
    put_u8(&b, RANGE_KV_VERSION), put_u8(&b, RANGE_KV_QUERY_TXN + 1), put_varint(&b, 1);
    EXPECT_REQ_CORRUPT();
#undef EXPECT_REQ_CORRUPT
    base_buf_free(&b);
}

/* ---- responses -------------------------------------------------------------------- */

static void test_response_roundtrip(void **state)
{
    (void)state;
    range_kv_response resps[N_RESPONSES];
    sample_responses(resps);
    for (int i = 0; i < N_RESPONSES; i++) {
        base_buf b = {0};
        range_kv_response d;
        assert_int_equal(range_kv_response_encode(&resps[i], &b), RANGE_OK);
        assert_int_equal(range_kv_response_decode(b.data, b.len, &d), RANGE_OK);
        assert_true(same_response(&resps[i], &d));
        assert_true(inside(d.value, d.value_len, b.data, b.len));
        assert_true(inside(d.conflict_key, d.conflict_key_len, b.data, b.len));
        for (size_t k = 0; k < d.n_rows; k++) {
            assert_non_null(d.rows[k].key);
            assert_non_null(d.rows[k].value);
            assert_true(inside(d.rows[k].key, d.rows[k].key_len, b.data, b.len));
        }
        /* sent with a pointer: present even when empty */
        assert_true((d.value != NULL) == (resps[i].value != NULL));
        assert_true((d.conflict_key != NULL) == (resps[i].conflict_key != NULL));
        range_kv_response_free(&d);
        base_buf_free(&b);
    }
    /* the default response is the 4-byte minimum and decodes to defaults */
    range_kv_response z = {0}, d;
    base_buf b = {0};
    assert_int_equal(range_kv_response_encode(&z, &b), RANGE_OK);
    assert_int_equal(b.len, 4);
    assert_int_equal(range_kv_response_decode(b.data, b.len, &d), RANGE_OK);
    assert_true(same_response(&z, &d));
    assert_null(d.value);
    assert_null(d.rows);
    range_kv_response_free(&d);
    base_buf_free(&b);
    /* every status survives */
    int32_t statuses[] = {0, 1, -1, RANGE_ERR_AMBIGUOUS, RANGE_ERR_KEY_MISMATCH, INT32_MAX,
                          INT32_MIN, INT32_MIN + 1};
    for (size_t i = 0; i < BASE_ARRAY_LEN(statuses); i++) {
        z.status = statuses[i];
        assert_int_equal(range_kv_response_encode(&z, &b), RANGE_OK);
        assert_int_equal(range_kv_response_decode(b.data, b.len, &d), RANGE_OK);
        assert_int_equal(d.status, statuses[i]);
        range_kv_response_free(&d);
        base_buf_free(&b);
    }
}

static void test_response_encode_rejects(void **state)
{
    (void)state;
    range_kv_response resps[N_RESPONSES];
    base_buf b = {0};
    assert_int_equal(base_buf_append(&b, "q", 1), 0);
    sample_responses(resps);
    range_kv_response r = resps[3];
    r.n_rows = RANGE_KV_SCAN_ROWS_MAX + 1;
    assert_int_equal(range_kv_response_encode(&r, &b), RANGE_ERR_INVALID);
    r = resps[3];
    r.rows = NULL;
    assert_int_equal(range_kv_response_encode(&r, &b), RANGE_ERR_INVALID);
    r = resps[0];
    r.value_len = STORAGE_VALUE_SIZE_MAX + 1;
    assert_int_equal(range_kv_response_encode(&r, &b), RANGE_ERR_INVALID);
    r = resps[6];
    r.conflict_kind = 4;
    assert_int_equal(range_kv_response_encode(&r, &b), RANGE_ERR_INVALID);
    r = resps[6];
    r.conflict_key = NULL;
    assert_int_equal(range_kv_response_encode(&r, &b), RANGE_ERR_INVALID);
    r = resps[14];
    r.txn_status = RANGE_TXN_ABORTED + 1;
    assert_int_equal(range_kv_response_encode(&r, &b), RANGE_ERR_INVALID);
    r = resps[16];
    r.intent_anchor = NULL;
    assert_int_equal(range_kv_response_encode(&r, &b), RANGE_ERR_INVALID);
    /* a holder section without an intent, too many deps or cycle members, zero ids */
    r = resps[18];
    r.intent_unreplicated = true;
    assert_int_equal(range_kv_response_encode(&r, &b), RANGE_ERR_INVALID);
    r = resps[18];
    r.intent_since_wall_ns = 5;
    assert_int_equal(range_kv_response_encode(&r, &b), RANGE_ERR_INVALID);
    r = resps[20];
    r.dep_count = RANGE_KV_DEPS_MAX + 1;
    assert_int_equal(range_kv_response_encode(&r, &b), RANGE_ERR_INVALID);
    r = resps[20];
    r.deps = NULL;
    assert_int_equal(range_kv_response_encode(&r, &b), RANGE_ERR_INVALID);
    r = resps[21];
    r.cycle_len = RANGE_KV_CYCLE_MAX + 1;
    assert_int_equal(range_kv_response_encode(&r, &b), RANGE_ERR_INVALID);
    uint64_t zero_cycle[2] = {1, 0};
    r = resps[21];
    r.cycle = zero_cycle;
    assert_int_equal(range_kv_response_encode(&r, &b), RANGE_ERR_INVALID);
    r = resps[8];
    r.descriptor.replicas[1] = 1; /* duplicate: the descriptor's encoder refuses */
    assert_int_equal(range_kv_response_encode(&r, &b), RANGE_ERR_INVALID);
    assert_int_equal(b.len, 1); /* refused: *out unchanged */
    base_buf_free(&b);
}

static void test_response_decode_rejects(void **state)
{
    (void)state;
    range_kv_response d;
    base_buf b = {0};
#define EXPECT_RESP_CORRUPT()                                                              \
    do {                                                                                   \
        assert_int_equal(range_kv_response_decode(b.data, b.len, &d), RANGE_ERR_CORRUPT);  \
        assert_null(d.rows);                                                               \
        assert_null(d.descriptor.start_key);                                               \
        base_buf_reset(&b);                                                                \
    } while (0)
    /* version, status above 32 bits, the last section bit (OTHER) without its bytes */
    put_u8(&b, 0), put_varint(&b, 0), put_u8(&b, 0), put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_varint(&b, 1ULL << 32), put_u8(&b, 0), put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_varint(&b, 0), put_u8(&b, 0x80), put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    /* version 2: without extended sections, an unknown one, a bad status, holder 0 */
    put_u8(&b, 2), put_varint(&b, 0), put_u8(&b, 0), put_u8(&b, 0), put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    put_u8(&b, 2), put_varint(&b, 0), put_u8(&b, 0), put_u8(&b, 0x40), put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    put_u8(&b, 2), put_varint(&b, 0), put_u8(&b, 0), put_u8(&b, 0x04), put_varint(&b, 0);
    EXPECT_RESP_CORRUPT(); /* NEWEST without its timestamp */
    /* HOLDER without INTENT; HOLDER with an unknown flag */
    put_u8(&b, 2), put_varint(&b, 0), put_u8(&b, 0), put_u8(&b, 0x08), put_varint(&b, 0);
    put_u8(&b, 1), put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    put_u8(&b, 2), put_varint(&b, 0), put_u8(&b, 0), put_u8(&b, 0x0a), put_varint(&b, 0);
    put_varint(&b, 1), put_u8(&b, 'k'), put_varint(&b, 1), put_varint(&b, 0), put_ts0(&b);
    put_u8(&b, 2), put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    /* DEPS: zero edges, an edge with holder 0, more than the maximum (bytes present) */
    put_u8(&b, 2), put_varint(&b, 0), put_u8(&b, 0), put_u8(&b, 0x10), put_varint(&b, 0);
    put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    put_u8(&b, 2), put_varint(&b, 0), put_u8(&b, 0), put_u8(&b, 0x10), put_varint(&b, 0);
    put_varint(&b, 1), put_varint(&b, 1), put_varint(&b, 0), put_varint(&b, 0), put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    put_u8(&b, 2), put_varint(&b, 0), put_u8(&b, 0), put_u8(&b, 0x10), put_varint(&b, 0);
    put_varint(&b, RANGE_KV_DEPS_MAX + 1);
    for (int i = 0; i <= RANGE_KV_DEPS_MAX; i++)
        put_varint(&b, 1), put_varint(&b, 0), put_varint(&b, 2), put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    /* CYCLE: empty, a zero id, more than the maximum, then good deps and a bad cycle */
    put_u8(&b, 2), put_varint(&b, 0), put_u8(&b, 0), put_u8(&b, 0x20), put_varint(&b, 0);
    put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    put_u8(&b, 2), put_varint(&b, 0), put_u8(&b, 0), put_u8(&b, 0x20), put_varint(&b, 0);
    put_varint(&b, 2), put_varint(&b, 1), put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    put_u8(&b, 2), put_varint(&b, 0), put_u8(&b, 0), put_u8(&b, 0x20), put_varint(&b, 0);
    put_varint(&b, RANGE_KV_CYCLE_MAX + 1);
    for (int i = 0; i <= RANGE_KV_CYCLE_MAX; i++)
        put_varint(&b, 1);
    EXPECT_RESP_CORRUPT();
    put_u8(&b, 2), put_varint(&b, 0), put_u8(&b, 0), put_u8(&b, 0x30), put_varint(&b, 0);
    put_varint(&b, 1), put_varint(&b, 1), put_varint(&b, 0), put_varint(&b, 2), put_varint(&b, 0);
    put_varint(&b, 2), put_varint(&b, 1);
    EXPECT_RESP_CORRUPT(); /* ASan: the decoded deps were freed */
    put_u8(&b, 2), put_varint(&b, 0), put_u8(&b, 0), put_u8(&b, 0x01), put_varint(&b, 0);
    put_u8(&b, 3);
    EXPECT_RESP_CORRUPT();
    put_u8(&b, 2), put_varint(&b, 0), put_u8(&b, 0), put_u8(&b, 0x02), put_varint(&b, 0);
    put_varint(&b, 1), put_u8(&b, 'k'), put_varint(&b, 0), put_varint(&b, 0), put_ts0(&b);
    EXPECT_RESP_CORRUPT();
    put_u8(&b, 3), put_varint(&b, 0), put_u8(&b, 0), put_u8(&b, 0x01), put_varint(&b, 0);
    put_u8(&b, 1);
    EXPECT_RESP_CORRUPT();
    /* ROWS with zero rows, above the maximum (bytes present), huge with few bytes */
    put_u8(&b, RANGE_KV_VERSION), put_varint(&b, 0), put_u8(&b, 0x02), put_varint(&b, 0);
    put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_varint(&b, 0), put_u8(&b, 0x02), put_varint(&b, 0);
    put_varint(&b, RANGE_KV_SCAN_ROWS_MAX + 1);
    for (int i = 0; i <= RANGE_KV_SCAN_ROWS_MAX; i++)
        put_varint(&b, 0), put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_varint(&b, 0), put_u8(&b, 0x02), put_varint(&b, 0);
    put_varint(&b, UINT64_MAX / 3), put_varint(&b, 0), put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    /* rows, then a bad value length: the rows array is released */
    put_u8(&b, RANGE_KV_VERSION), put_varint(&b, 0), put_u8(&b, 0x02), put_varint(&b, 0);
    put_varint(&b, 2), put_varint(&b, 0), put_varint(&b, 0), put_varint(&b, 0);
    put_varint(&b, 99);
    EXPECT_RESP_CORRUPT();
    /* OTHER: a descriptor that does not decode (range id 0) */
    put_u8(&b, RANGE_KV_VERSION), put_varint(&b, 0), put_u8(&b, 0x80), put_varint(&b, 0);
    put_varint(&b, 6), put_u8(&b, 1), put_varint(&b, 0), put_varint(&b, 1), put_varint(&b, 0),
        put_varint(&b, 0), put_varint(&b, 0);
    EXPECT_RESP_CORRUPT();
    /* conflict kind 4, pending 2 */
    put_u8(&b, RANGE_KV_VERSION), put_varint(&b, 0), put_u8(&b, 0x10), put_varint(&b, 0);
    put_u8(&b, 4), put_varint(&b, 0), put_ts0(&b), put_u8(&b, 0);
    EXPECT_RESP_CORRUPT();
    put_u8(&b, RANGE_KV_VERSION), put_varint(&b, 0), put_u8(&b, 0x10), put_varint(&b, 0);
    put_u8(&b, 1), put_varint(&b, 0), put_ts0(&b), put_u8(&b, 2);
    EXPECT_RESP_CORRUPT();
    /* a VALUE longer than STORAGE_VALUE_SIZE_MAX (claimed; bytes absent) */
    put_u8(&b, RANGE_KV_VERSION), put_varint(&b, 0), put_u8(&b, 0x01), put_varint(&b, 0);
    put_varint(&b, STORAGE_VALUE_SIZE_MAX + 1);
    EXPECT_RESP_CORRUPT();
    /* a descriptor that is bad, then a good one followed by a bad lease byte */
    put_u8(&b, RANGE_KV_VERSION), put_varint(&b, 0), put_u8(&b, 0x20), put_varint(&b, 0);
    put_varint(&b, 1), put_u8(&b, 1);
    EXPECT_RESP_CORRUPT();
    range_descriptor desc;
    base_buf db = {0};
    sample_descriptor(&desc);
    assert_int_equal(range_descriptor_encode(&desc, &db), RANGE_OK);
    put_u8(&b, RANGE_KV_VERSION), put_varint(&b, 0), put_u8(&b, 0x60), put_varint(&b, 0);
    put_varint(&b, db.len);
    assert_int_equal(base_buf_append(&b, db.data, db.len), 0);
    put_u8(&b, 3), put_varint(&b, 1);
    EXPECT_RESP_CORRUPT(); /* ASan: the decoded descriptor's keys were freed */
    base_buf_free(&db);
#undef EXPECT_RESP_CORRUPT
    base_buf_free(&b);
}

/* ---- truncation, corruption, out of memory over every sample ------------------------- */

typedef struct sample {
    base_buf enc;
    bool is_request; /* else a response */
} sample;

#define N_SAMPLES (N_REQUESTS + N_RESPONSES)
static void encode_samples(sample s[N_SAMPLES])
{
    range_kv_request reqs[N_REQUESTS];
    range_kv_response resps[N_RESPONSES];
    sample_requests(reqs);
    sample_responses(resps);
    memset(s, 0, N_SAMPLES * sizeof(s[0]));
    for (int i = 0; i < N_REQUESTS; i++) {
        s[i].is_request = true;
        assert_int_equal(range_kv_request_encode(&reqs[i], &s[i].enc), RANGE_OK);
    }
    for (int i = 0; i < N_RESPONSES; i++)
        assert_int_equal(range_kv_response_encode(&resps[i], &s[N_REQUESTS + i].enc), RANGE_OK);
}

static void free_samples(sample s[N_SAMPLES])
{
    for (int i = 0; i < N_SAMPLES; i++)
        base_buf_free(&s[i].enc);
}

/* Decode; on success check it lies inside buf and survives re-encoding. */
static int decode_checked(bool is_request, const uint8_t *buf, size_t len)
{
    if (is_request) {
        range_kv_request d, d2;
        int rc = range_kv_request_decode(buf, len, &d);
        if (rc != RANGE_OK) {
            CHECK(d.writes == NULL && d.delete_spans == NULL && d.read_spans == NULL);
            return rc;
        }
        CHECK(request_inside(&d, buf, len));
        base_buf again = {0};
        CHECK(range_kv_request_encode(&d, &again) == RANGE_OK);
        CHECK(range_kv_request_decode(again.data, again.len, &d2) == RANGE_OK);
        CHECK(same_request(&d, &d2));
        range_kv_request_free(&d2);
        range_kv_request_free(&d);
        base_buf_free(&again);
        return RANGE_OK;
    }
    range_kv_response d, d2;
    int rc = range_kv_response_decode(buf, len, &d);
    if (rc != RANGE_OK) {
        CHECK(d.rows == NULL && d.descriptor.start_key == NULL && d.descriptor.end_key == NULL);
        return rc;
    }
    CHECK(inside(d.value, d.value_len, buf, len));
    CHECK(inside(d.conflict_key, d.conflict_key_len, buf, len));
    CHECK(d.n_rows <= RANGE_KV_SCAN_ROWS_MAX && d.conflict_kind <= RANGE_CONFLICT_PHANTOM);
    for (size_t k = 0; k < d.n_rows; k++)
        CHECK(inside(d.rows[k].key, d.rows[k].key_len, buf, len) &&
              inside(d.rows[k].value, d.rows[k].value_len, buf, len));
    base_buf again = {0};
    CHECK(range_kv_response_encode(&d, &again) == RANGE_OK);
    CHECK(range_kv_response_decode(again.data, again.len, &d2) == RANGE_OK);
    CHECK(same_response(&d, &d2));
    range_kv_response_free(&d2);
    range_kv_response_free(&d);
    base_buf_free(&again);
    return RANGE_OK;
}

static void test_truncation(void **state)
{
    (void)state;
    sample s[N_SAMPLES];
    encode_samples(s);
    for (int i = 0; i < N_SAMPLES; i++) {
        const base_buf *e = &s[i].enc;
        for (size_t len = 0; len < e->len; len++) {
            uint8_t *c = dup_exact(e->data, len);
            assert_int_equal(decode_checked(s[i].is_request, len ? c : NULL, len),
                             RANGE_ERR_CORRUPT);
            free(c);
        }
        uint8_t *c = dup_exact(e->data, e->len + 1);
        memcpy(c, e->data, e->len);
        c[e->len] = 0;
        assert_int_equal(decode_checked(s[i].is_request, c, e->len + 1), RANGE_ERR_CORRUPT);
        free(c);
        assert_int_equal(decode_checked(s[i].is_request, e->data, e->len), RANGE_OK);
    }
    free_samples(s);
}

static void test_random_corruption(void **state)
{
    (void)state;
    const char *env = getenv("MERIDIAN_SEED");
    g_seed = env != NULL ? strtoull(env, NULL, 10) : (uint64_t)base_realtime_ns();
    uint64_t rng = g_seed;
    printf("  seed %llu (MERIDIAN_SEED=N replays)\n", (unsigned long long)g_seed);
    fflush(stdout); /* visible even if a sanitizer stops the process */
    sample s[N_SAMPLES];
    encode_samples(s);
    size_t accepted = 0, total = 0;
    for (int i = 0; i < N_SAMPLES; i++) {
        const base_buf *e = &s[i].enc;
        for (int round = 0; round < FUZZ_ROUNDS; round++) {
            uint8_t *c = dup_exact(e->data, e->len);
            int changes = 1 + (int)(rng_next(&rng) % 3);
            for (int k = 0; k < changes; k++) {
                size_t at = (size_t)(rng_next(&rng) % e->len);
                uint64_t how = rng_next(&rng);
                if (how % 4 == 0)
                    c[at] ^= (uint8_t)(1u << ((how >> 8) % 8)); /* one bit */
                else
                    c[at] = (uint8_t)(how >> 16); /* any byte */
            }
            /* sometimes also cut the tail */
            size_t len = rng_next(&rng) % 8 == 0 ? (size_t)(rng_next(&rng) % (e->len + 1))
                                                 : e->len;
            int rc = decode_checked(s[i].is_request, len ? c : NULL, len);
            CHECK(rc == RANGE_OK || rc == RANGE_ERR_CORRUPT);
            accepted += rc == RANGE_OK;
            total++;
            free(c);
        }
    }
    printf("  %zu of %zu corrupted inputs decoded (and re-encoded)\n", accepted, total);
    free_samples(s);
}

/* Out of memory at every allocation of a decode: NOMEM, nothing leaked (ASan). */
static void test_decode_out_of_memory(void **state)
{
    (void)state;
    sample s[N_SAMPLES];
    encode_samples(s);
    for (int i = 0; i < N_SAMPLES; i++) {
        for (long n = 0;; n++) {
            assert_true(n < 16); /* a bound: no decode makes more than 5 allocations */
            base_alloc_fail_after(n);
            int rc;
            if (s[i].is_request) {
                range_kv_request d;
                rc = range_kv_request_decode(s[i].enc.data, s[i].enc.len, &d);
                range_kv_request_free(&d);
            } else {
                range_kv_response d;
                rc = range_kv_response_decode(s[i].enc.data, s[i].enc.len, &d);
                range_kv_response_free(&d);
            }
            base_alloc_fail_after(-1);
            if (rc == RANGE_OK)
                break;
            assert_int_equal(rc, RANGE_ERR_NOMEM);
        }
    }
    /* encoders: NOMEM leaves *out as it was */
    range_kv_request reqs[N_REQUESTS];
    range_kv_response resps[N_RESPONSES];
    sample_requests(reqs);
    sample_responses(resps);
    for (long n = 0;; n++) {
        assert_true(n < 16);
        base_buf b = {0};
        assert_int_equal(base_buf_append(&b, "z", 1), 0);
        base_alloc_fail_after(n);
        int rc = range_kv_response_encode(&resps[8], &b);
        base_alloc_fail_after(-1);
        if (rc == RANGE_OK) {
            base_buf_free(&b);
            break;
        }
        assert_int_equal(rc, RANGE_ERR_NOMEM);
        assert_int_equal(b.len, 1);
        base_buf_free(&b);
    }
    free_samples(s);
}

/* ---- descriptors ------------------------------------------------------------------ */

static void test_descriptor_roundtrip_copy(void **state)
{
    (void)state;
    range_descriptor d, out, copy;
    base_buf b = {0};
    sample_descriptor(&d);
    assert_int_equal(range_descriptor_encode(&d, &b), RANGE_OK);
    assert_int_equal(range_descriptor_decode(b.data, b.len, &out), RANGE_OK);
    assert_true(same_descriptor(&d, &out));
    assert_true(out.start_key != g_start_key); /* copied, not borrowed */
    /* copy is deep: changing or freeing the source leaves it alone */
    assert_int_equal(range_descriptor_copy(&copy, &out), RANGE_OK);
    out.start_key[0] = 'a';
    range_descriptor_free(&out);
    assert_int_equal(out.start_len, 0);
    assert_true(same_descriptor(&d, &copy));
    range_descriptor_free(&copy);
    range_descriptor_free(&copy); /* free twice is harmless: it zeroes */
    base_buf_free(&b);

    /* the whole key space, no replicas, a single key boundary at each end */
    memset(&d, 0, sizeof(d));
    d.range_id = 1;
    assert_int_equal(range_descriptor_encode(&d, &b), RANGE_OK);
    assert_int_equal(range_descriptor_decode(b.data, b.len, &out), RANGE_OK);
    assert_true(same_descriptor(&d, &out));
    assert_null(out.start_key);
    assert_null(out.end_key);
    range_descriptor_free(&out);
    base_buf_free(&b);

    /* RANGE_REPLICAS_MAX replicas, keys of RANGE_DESC_KEY_MAX bytes */
    static uint8_t lo[RANGE_DESC_KEY_MAX], hi[RANGE_DESC_KEY_MAX];
    memset(lo, 0x10, sizeof(lo));
    memset(hi, 0x20, sizeof(hi));
    sample_descriptor(&d);
    d.start_key = lo;
    d.start_len = sizeof(lo);
    d.end_key = hi;
    d.end_len = sizeof(hi);
    d.generation = UINT64_MAX;
    for (size_t i = 0; i < RANGE_REPLICAS_MAX; i++)
        d.replicas[i] = 100 + i;
    d.n_replicas = RANGE_REPLICAS_MAX;
    assert_int_equal(range_descriptor_encode(&d, &b), RANGE_OK);
    assert_int_equal(range_descriptor_decode(b.data, b.len, &out), RANGE_OK);
    assert_true(same_descriptor(&d, &out));
    range_descriptor_free(&out);
    /* truncations and a trailing byte */
    for (size_t len = 0; len < b.len; len++) {
        uint8_t *c = dup_exact(b.data, len);
        assert_int_equal(range_descriptor_decode(len ? c : NULL, len, &out), RANGE_ERR_CORRUPT);
        assert_null(out.start_key);
        free(c);
    }
    assert_int_equal(base_buf_append_byte(&b, 0), 0);
    assert_int_equal(range_descriptor_decode(b.data, b.len, &out), RANGE_ERR_CORRUPT);
    base_buf_free(&b);
    /* out of memory at each of the two key copies */
    sample_descriptor(&d);
    assert_int_equal(range_descriptor_encode(&d, &b), RANGE_OK);
    for (long n = 0; n < 2; n++) {
        base_alloc_fail_after(n);
        assert_int_equal(range_descriptor_decode(b.data, b.len, &out), RANGE_ERR_NOMEM);
        base_alloc_fail_after(-1);
        assert_null(out.start_key);
        assert_null(out.end_key);
    }
    base_buf_free(&b);
}

static void test_descriptor_contains(void **state)
{
    (void)state;
    range_descriptor d;
    sample_descriptor(&d); /* ["m", "t") */
    assert_false(range_descriptor_contains(&d, (const uint8_t *)"", 0));
    assert_false(range_descriptor_contains(&d, (const uint8_t *)"l", 1));
    assert_false(range_descriptor_contains(&d, (const uint8_t *)"lzzz", 4));
    assert_true(range_descriptor_contains(&d, (const uint8_t *)"m", 1));
    assert_true(range_descriptor_contains(&d, (const uint8_t *)"m\0", 2));
    assert_true(range_descriptor_contains(&d, (const uint8_t *)"szzz", 4));
    assert_false(range_descriptor_contains(&d, (const uint8_t *)"t", 1));
    assert_false(range_descriptor_contains(&d, (const uint8_t *)"t\0", 2));
    assert_false(range_descriptor_contains(&d, (const uint8_t *)"z", 1));
    d.end_key = NULL; /* ["m", +inf) */
    d.end_len = 0;
    assert_true(range_descriptor_contains(&d, (const uint8_t *)"z", 1));
    assert_true(range_descriptor_contains(&d, (const uint8_t *)"\xff\xff", 2));
    assert_false(range_descriptor_contains(&d, (const uint8_t *)"a", 1));
    d.start_key = NULL; /* everything */
    d.start_len = 0;
    assert_true(range_descriptor_contains(&d, NULL, 0));
    assert_true(range_descriptor_contains(&d, (const uint8_t *)"a", 1));
}

/* Bytes of a descriptor built field by field (to make bad ones). */
static void raw_descriptor(base_buf *b, uint8_t version, uint64_t range_id, const char *start,
                           const char *end, const uint64_t *replicas, size_t n)
{
    base_buf_reset(b);
    put_u8(b, version);
    put_varint(b, range_id);
    put_varint(b, 1);
    put_varint(b, strlen(start));
    assert_int_equal(base_buf_append(b, start, strlen(start)), 0);
    put_varint(b, strlen(end));
    assert_int_equal(base_buf_append(b, end, strlen(end)), 0);
    put_varint(b, n);
    for (size_t i = 0; i < n; i++)
        put_varint(b, replicas[i]);
}

static void test_descriptor_bad(void **state)
{
    (void)state;
    range_descriptor d, out;
    base_buf b = {0};
    uint64_t ok_ids[] = {1, 2, 3}, zero_id[] = {1, 0}, dup_ids[] = {4, 5, 4};
    /* the raw builder agrees with the encoder */
    raw_descriptor(&b, 1, 7, "a", "b", ok_ids, 3);
    assert_int_equal(range_descriptor_decode(b.data, b.len, &out), RANGE_OK);
    range_descriptor_free(&out);
#define EXPECT_DESC_CORRUPT()                                                              \
    do {                                                                                   \
        assert_int_equal(range_descriptor_decode(b.data, b.len, &out), RANGE_ERR_CORRUPT); \
        assert_null(out.start_key);                                                        \
    } while (0)
    raw_descriptor(&b, 2, 7, "a", "b", ok_ids, 3); /* version */
    EXPECT_DESC_CORRUPT();
    raw_descriptor(&b, 1, 0, "a", "b", ok_ids, 3); /* range id 0 */
    EXPECT_DESC_CORRUPT();
    raw_descriptor(&b, 1, 7, "a", "b", zero_id, 2); /* replica 0 */
    EXPECT_DESC_CORRUPT();
    raw_descriptor(&b, 1, 7, "a", "b", dup_ids, 3); /* duplicate replica */
    EXPECT_DESC_CORRUPT();
    raw_descriptor(&b, 1, 7, "b", "a", ok_ids, 3); /* start > end */
    EXPECT_DESC_CORRUPT();
    raw_descriptor(&b, 1, 7, "b", "b", ok_ids, 3); /* start == end */
    EXPECT_DESC_CORRUPT();
    raw_descriptor(&b, 1, 7, "ab", "a", ok_ids, 3); /* end a prefix of start */
    EXPECT_DESC_CORRUPT();
    uint64_t many[RANGE_REPLICAS_MAX + 1];
    for (size_t i = 0; i < BASE_ARRAY_LEN(many); i++)
        many[i] = i + 1;
    raw_descriptor(&b, 1, 7, "a", "b", many, BASE_ARRAY_LEN(many)); /* too many */
    EXPECT_DESC_CORRUPT();
    /* a key longer than RANGE_DESC_KEY_MAX (bytes present) */
    base_buf_reset(&b);
    put_u8(&b, 1), put_varint(&b, 7), put_varint(&b, 1), put_varint(&b, RANGE_DESC_KEY_MAX + 1);
    for (int i = 0; i <= RANGE_DESC_KEY_MAX; i++)
        put_u8(&b, 'k');
    put_varint(&b, 0), put_varint(&b, 0);
    EXPECT_DESC_CORRUPT();
#undef EXPECT_DESC_CORRUPT

    /* the encoder refuses the same */
    sample_descriptor(&d);
    d.range_id = 0;
    assert_int_equal(range_descriptor_encode(&d, &b), RANGE_ERR_INVALID);
    sample_descriptor(&d);
    d.replicas[2] = 1;
    assert_int_equal(range_descriptor_encode(&d, &b), RANGE_ERR_INVALID);
    sample_descriptor(&d);
    d.replicas[0] = 0;
    assert_int_equal(range_descriptor_encode(&d, &b), RANGE_ERR_INVALID);
    sample_descriptor(&d);
    d.n_replicas = RANGE_REPLICAS_MAX + 1;
    assert_int_equal(range_descriptor_encode(&d, &b), RANGE_ERR_INVALID);
    assert_int_equal(range_descriptor_copy(&out, &d), RANGE_ERR_INVALID);
    sample_descriptor(&d);
    d.start_key = g_end_key; /* ["t", "t") */
    assert_int_equal(range_descriptor_encode(&d, &b), RANGE_ERR_INVALID);
    sample_descriptor(&d);
    d.end_len = RANGE_DESC_KEY_MAX + 1;
    assert_int_equal(range_descriptor_encode(&d, &b), RANGE_ERR_INVALID);
    sample_descriptor(&d);
    d.start_key = NULL;
    assert_int_equal(range_descriptor_encode(&d, &b), RANGE_ERR_INVALID);
    base_buf_free(&b);
}

/* CHANGE_REPLICAS {range_id, add_node_id, remove_node_id}: round trip (add
** only, remove only, both), every strict prefix refused, and the requests
** neither side may send (nothing to do, add == remove). */
static void test_change_replicas_request(void **state)
{
    (void)state;
    const uint64_t cases[3][2] = {{4, 0}, {0, 1}, {UINT64_MAX, 2}};
    for (int c = 0; c < 3; c++) {
        range_kv_request q = {.op = RANGE_KV_CHANGE_REPLICAS, .range_id = 7,
                              .add_node_id = cases[c][0], .remove_node_id = cases[c][1]};
        range_kv_request d;
        base_buf enc = {0};
        assert_int_equal(range_kv_request_encode(&q, &enc), RANGE_OK);
        assert_int_equal(range_kv_request_decode(enc.data, enc.len, &d), RANGE_OK);
        assert_int_equal(d.op, RANGE_KV_CHANGE_REPLICAS);
        assert_int_equal(d.range_id, 7);
        assert_int_equal(d.add_node_id, cases[c][0]);
        assert_int_equal(d.remove_node_id, cases[c][1]);
        range_kv_request_free(&d);
        for (size_t len = 0; len < enc.len; len++) {
            uint8_t *copy = malloc(len + 1); /* exact size: ASan sees overreads */
            memcpy(copy, enc.data, len);
            assert_int_equal(range_kv_request_decode(len ? copy : NULL, len, &d),
                             RANGE_ERR_CORRUPT);
            free(copy);
        }
        base_buf_free(&enc);
    }
    base_buf enc = {0};
    range_kv_request none = {.op = RANGE_KV_CHANGE_REPLICAS, .range_id = 7};
    assert_int_equal(range_kv_request_encode(&none, &enc), RANGE_ERR_INVALID);
    range_kv_request same = {.op = RANGE_KV_CHANGE_REPLICAS, .range_id = 7, .add_node_id = 3,
                             .remove_node_id = 3};
    assert_int_equal(range_kv_request_encode(&same, &enc), RANGE_ERR_INVALID);
    /* the same on the wire: refused by the decoder */
    const uint8_t wire[2][5] = {{RANGE_KV_VERSION, RANGE_KV_CHANGE_REPLICAS, 7, 0, 0},
                                {RANGE_KV_VERSION, RANGE_KV_CHANGE_REPLICAS, 7, 3, 3}};
    for (int i = 0; i < 2; i++) {
        range_kv_request d;
        assert_int_equal(range_kv_request_decode(wire[i], sizeof(wire[i]), &d),
                         RANGE_ERR_CORRUPT);
    }
    base_buf_free(&enc);
}

/* CHANGE_REPLICAS with a transaction (docs/decisions/010, item 8): one step
** round trips with its txn part; a cut inside that part is refused, and so
** are a step that does not fit its node (PROMOTE with remove_node_id, an
** unknown step) on either side. */
static void test_change_replicas_txn_request(void **state)
{
    (void)state;
    hlc_timestamp ts = {1700000000000000000LL, 3};
    const int steps[3] = {RANGE_CONF_STEP_ADD_LEARNER, RANGE_CONF_STEP_PROMOTE,
                          RANGE_CONF_STEP_REMOVE};
    for (int c = 0; c < 3; c++) {
        bool remove = steps[c] == RANGE_CONF_STEP_REMOVE;
        range_kv_request q = {.op = RANGE_KV_CHANGE_REPLICAS, .range_id = 7,
                              .add_node_id = remove ? 0 : 4, .remove_node_id = remove ? 2 : 0,
                              .txn_id = 0xc0f, .anchor = (const uint8_t *)"\0", .anchor_len = 1,
                              .commit_ts = ts, .generation = 9, .conf_step = (uint8_t)steps[c]};
        range_kv_request plain = q;
        plain.txn_id = 0;
        base_buf enc = {0}, penc = {0};
        assert_int_equal(range_kv_request_encode(&q, &enc), RANGE_OK);
        assert_int_equal(range_kv_request_encode(&plain, &penc), RANGE_OK);
        range_kv_request d;
        assert_int_equal(range_kv_request_decode(enc.data, enc.len, &d), RANGE_OK);
        assert_int_equal(d.add_node_id, q.add_node_id);
        assert_int_equal(d.remove_node_id, q.remove_node_id);
        assert_int_equal(d.txn_id, 0xc0f);
        assert_int_equal(d.anchor_len, 1);
        assert_int_equal(d.anchor[0], 0);
        assert_int_equal(hlc_compare(d.commit_ts, ts), 0);
        assert_int_equal(d.generation, 9);
        assert_int_equal(d.conf_step, steps[c]);
        range_kv_request_free(&d);
        for (size_t len = penc.len + 1; len < enc.len; len++) {
            uint8_t *copy = malloc(len); /* exact size: ASan sees overreads */
            memcpy(copy, enc.data, len);
            assert_int_equal(range_kv_request_decode(copy, len, &d), RANGE_ERR_CORRUPT);
            free(copy);
        }
        /* a step that does not fit: refused by the encoder and the decoder */
        range_kv_request bad = q;
        bad.conf_step = remove ? RANGE_CONF_STEP_PROMOTE : RANGE_CONF_STEP_REMOVE;
        base_buf benc = {0};
        assert_int_equal(range_kv_request_encode(&bad, &benc), RANGE_ERR_INVALID);
        enc.data[enc.len - 1] = 3; /* no such step */
        assert_int_equal(range_kv_request_decode(enc.data, enc.len, &d), RANGE_ERR_CORRUPT);
        base_buf_free(&benc);
        base_buf_free(&enc);
        base_buf_free(&penc);
    }
}

/* ---- stale reads and closed timestamps (docs/txn.md section 8) ----------------- */

/* stale_ok round trips on GET and SCAN; a plain GET keeps its old bytes. */
static void test_stale_flag(void **state)
{
    (void)state;
    range_kv_request q;
    range_kv_request d;
    base_buf plain = {0}, stale = {0};
    memset(&q, 0, sizeof(q));
    q.op = RANGE_KV_GET;
    q.range_id = 7;
    q.read_ts = (hlc_timestamp){1000, 2};
    q.key = (const uint8_t *)"k";
    q.key_len = 1;
    assert_int_equal(range_kv_request_encode(&q, &plain), RANGE_OK);
    q.stale_ok = true;
    assert_int_equal(range_kv_request_encode(&q, &stale), RANGE_OK);
    assert_int_equal(stale.len, plain.len + 1); /* one flags byte, only when set */
    assert_memory_equal(stale.data, plain.data, plain.len);
    assert_int_equal(range_kv_request_decode(plain.data, plain.len, &d), RANGE_OK);
    assert_false(d.stale_ok);
    range_kv_request_free(&d);
    assert_int_equal(range_kv_request_decode(stale.data, stale.len, &d), RANGE_OK);
    assert_true(d.stale_ok);
    assert_int_equal(d.key_len, 1);
    range_kv_request_free(&d);
    /* SCAN: bit1 of its flags, with and without reverse (and bit2,
    ** skip_intents, on odd rounds) */
    for (int rev = 0; rev < 4; rev++) {
        base_buf b = {0};
        memset(&q, 0, sizeof(q));
        q.op = RANGE_KV_SCAN;
        q.range_id = 3;
        q.read_ts = (hlc_timestamp){5, 0};
        q.start = (const uint8_t *)"a";
        q.start_len = 1;
        q.reverse = (rev & 1) == 1;
        q.stale_ok = rev < 2;
        q.skip_intents = rev >= 2;
        q.max_rows = 10;
        assert_int_equal(range_kv_request_encode(&q, &b), RANGE_OK);
        assert_int_equal(range_kv_request_decode(b.data, b.len, &d), RANGE_OK);
        assert_int_equal(d.stale_ok, rev < 2);
        assert_int_equal(d.skip_intents, rev >= 2);
        assert_int_equal(d.reverse, (rev & 1) == 1);
        range_kv_request_free(&d);
        base_buf_free(&b);
    }
    base_buf_free(&plain);
    base_buf_free(&stale);
}

/* GET/SCAN's uncertainty limit (docs/txn.md section 4): a trailing ts after
** a flag bit, absent (the old bytes) without one; refused at or below
** read_ts, with stale_ok, or announced and missing. */
static void test_uncertainty_limit(void **state)
{
    (void)state;
    range_kv_request q, d;
    base_buf plain = {0}, lim = {0};
    memset(&q, 0, sizeof(q));
    q.op = RANGE_KV_GET;
    q.range_id = 7;
    q.read_ts = (hlc_timestamp){1000, 2};
    q.key = (const uint8_t *)"k";
    q.key_len = 1;
    assert_int_equal(range_kv_request_encode(&q, &plain), RANGE_OK);
    q.uncertainty_limit = (hlc_timestamp){5000, 0};
    assert_int_equal(range_kv_request_encode(&q, &lim), RANGE_OK);
    assert_int_equal(lim.len, plain.len + 1 + HLC_ENCODED_SIZE); /* flags + ts */
    assert_memory_equal(lim.data, plain.data, plain.len);
    assert_int_equal(range_kv_request_decode(plain.data, plain.len, &d), RANGE_OK);
    assert_true(hlc_is_zero(d.uncertainty_limit)); /* an old sender: no limit */
    range_kv_request_free(&d);
    assert_int_equal(range_kv_request_decode(lim.data, lim.len, &d), RANGE_OK);
    assert_int_equal(hlc_compare(d.uncertainty_limit, q.uncertainty_limit), 0);
    assert_false(d.stale_ok);
    range_kv_request_free(&d);
    /* announced, then cut off; a trailing byte more */
    assert_int_equal(range_kv_request_decode(lim.data, lim.len - 1, &d), RANGE_ERR_CORRUPT);
    assert_int_equal(range_kv_request_decode(lim.data, plain.len + 1, &d), RANGE_ERR_CORRUPT);
    base_buf_append_byte(&lim, 0);
    assert_int_equal(range_kv_request_decode(lim.data, lim.len, &d), RANGE_ERR_CORRUPT);
    /* refused by the encoder: at or below read_ts, with a stale read */
    base_buf bad = {0};
    q.uncertainty_limit = q.read_ts;
    assert_int_equal(range_kv_request_encode(&q, &bad), RANGE_ERR_INVALID);
    q.uncertainty_limit = (hlc_timestamp){5000, 0};
    q.stale_ok = true;
    assert_int_equal(range_kv_request_encode(&q, &bad), RANGE_ERR_INVALID);
    assert_int_equal(bad.len, 0);
    /* and by the decoder, from bytes: a limit equal to read_ts */
    base_buf_reset(&lim);
    q.stale_ok = false;
    assert_int_equal(range_kv_request_encode(&q, &lim), RANGE_OK);
    hlc_encode(q.read_ts, lim.data + lim.len - HLC_ENCODED_SIZE);
    assert_int_equal(range_kv_request_decode(lim.data, lim.len, &d), RANGE_ERR_CORRUPT);
    /* SCAN: bit3 of its flags, with the other bits */
    for (int round = 0; round < 4; round++) {
        base_buf b = {0};
        memset(&q, 0, sizeof(q));
        q.op = RANGE_KV_SCAN;
        q.range_id = 3;
        q.read_ts = (hlc_timestamp){5, 0};
        q.start = (const uint8_t *)"a";
        q.start_len = 1;
        q.reverse = (round & 1) == 1;
        q.skip_intents = round >= 2;
        q.max_rows = 10;
        q.uncertainty_limit = (hlc_timestamp){9, 1};
        assert_int_equal(range_kv_request_encode(&q, &b), RANGE_OK);
        assert_int_equal(range_kv_request_decode(b.data, b.len, &d), RANGE_OK);
        assert_int_equal(hlc_compare(d.uncertainty_limit, q.uncertainty_limit), 0);
        assert_int_equal(d.reverse, (round & 1) == 1);
        assert_int_equal(d.skip_intents, round >= 2);
        range_kv_request_free(&d);
        assert_int_equal(range_kv_request_decode(b.data, b.len - HLC_ENCODED_SIZE, &d),
                         RANGE_ERR_CORRUPT);
        base_buf_free(&b);
    }
    base_buf_free(&plain);
    base_buf_free(&lim);
    base_buf_free(&bad);
}

/* Observed timestamps (docs/txn.md 4.1): the request's trailing node id and
** ts behind GET bit2 / SCAN bit4 (only with a limit), the answer's EXT2
** OBSERVED section; old bytes unchanged, half-set fields refused. */
static void test_observed_timestamp(void **state)
{
    (void)state;
    range_kv_request q, d;
    base_buf lim = {0}, obs = {0}, bad = {0};
    for (int op = 0; op < 2; op++) {
        memset(&q, 0, sizeof(q));
        q.op = op == 0 ? RANGE_KV_GET : RANGE_KV_SCAN;
        q.range_id = 7;
        q.read_ts = (hlc_timestamp){1000, 2};
        q.key = (const uint8_t *)"k";
        q.key_len = op == 0 ? 1 : 0;
        q.start = (const uint8_t *)"a";
        q.start_len = op == 1 ? 1 : 0;
        q.uncertainty_limit = (hlc_timestamp){5000, 0};
        base_buf_reset(&lim);
        base_buf_reset(&obs);
        assert_int_equal(range_kv_request_encode(&q, &lim), RANGE_OK);
        q.observed_node_id = 300; /* two varint bytes */
        q.observed_ts = (hlc_timestamp){1500, 1};
        assert_int_equal(range_kv_request_encode(&q, &obs), RANGE_OK);
        assert_int_equal(obs.len, lim.len + 2 + HLC_ENCODED_SIZE);
        assert_int_equal(range_kv_request_decode(obs.data, obs.len, &d), RANGE_OK);
        assert_int_equal(d.observed_node_id, 300);
        assert_int_equal(hlc_compare(d.observed_ts, q.observed_ts), 0);
        assert_int_equal(hlc_compare(d.uncertainty_limit, q.uncertainty_limit), 0);
        range_kv_request_free(&d);
        assert_int_equal(range_kv_request_decode(lim.data, lim.len, &d), RANGE_OK);
        assert_int_equal(d.observed_node_id, 0); /* without: none */
        assert_true(hlc_is_zero(d.observed_ts));
        range_kv_request_free(&d);
        for (size_t cut = lim.len; cut < obs.len; cut++)
            assert_int_equal(range_kv_request_decode(obs.data, cut, &d), RANGE_ERR_CORRUPT);
        /* refused: half set, or without a limit */
        q.observed_ts = HLC_ZERO;
        assert_int_equal(range_kv_request_encode(&q, &bad), RANGE_ERR_INVALID);
        q.observed_ts = (hlc_timestamp){1500, 1};
        q.observed_node_id = 0;
        assert_int_equal(range_kv_request_encode(&q, &bad), RANGE_ERR_INVALID);
        q.observed_node_id = 300;
        q.uncertainty_limit = HLC_ZERO;
        assert_int_equal(range_kv_request_encode(&q, &bad), RANGE_ERR_INVALID);
        assert_int_equal(bad.len, 0);
    }
    /* the decoder refuses node id 0 from bytes (the SCAN's, last encoded) */
    size_t at = obs.len - HLC_ENCODED_SIZE - 2;
    obs.data[at] = 0;
    obs.data[at + 1] = 0; /* a varint 0, then one byte too many */
    assert_int_equal(range_kv_request_decode(obs.data, obs.len, &d), RANGE_ERR_CORRUPT);

    /* the answer: version 1 bytes unchanged without it; round trip with it */
    range_kv_response r, rd;
    memset(&r, 0, sizeof(r));
    r.status = RANGE_OK;
    r.value = (const uint8_t *)"v";
    r.value_len = 1;
    base_buf plain = {0}, with = {0};
    assert_int_equal(range_kv_response_encode(&r, &plain), RANGE_OK);
    assert_int_equal(plain.data[0], RANGE_KV_VERSION);
    r.observed_node_id = 4;
    r.observed_ts = (hlc_timestamp){123456789, 3};
    assert_int_equal(range_kv_response_encode(&r, &with), RANGE_OK);
    assert_int_equal(with.len, plain.len + 2 + 1 + HLC_ENCODED_SIZE); /* ext, ext2, id, ts */
    assert_int_equal(range_kv_response_decode(with.data, with.len, &rd), RANGE_OK);
    assert_int_equal(rd.observed_node_id, 4);
    assert_int_equal(hlc_compare(rd.observed_ts, r.observed_ts), 0);
    assert_int_equal(rd.value_len, 1);
    range_kv_response_free(&rd);
    assert_int_equal(range_kv_response_decode(plain.data, plain.len, &rd), RANGE_OK);
    assert_int_equal(rd.observed_node_id, 0);
    range_kv_response_free(&rd);
    for (size_t cut = 1; cut < with.len; cut++)
        assert_int_equal(range_kv_response_decode(with.data, cut, &rd), RANGE_ERR_CORRUPT);
    base_buf bad2 = {0};
    r.observed_ts = HLC_ZERO; /* half set */
    assert_int_equal(range_kv_response_encode(&r, &bad2), RANGE_ERR_INVALID);
    r.observed_node_id = 0;
    r.observed_ts = (hlc_timestamp){1, 0};
    assert_int_equal(range_kv_response_encode(&r, &bad2), RANGE_ERR_INVALID);
    assert_int_equal(bad2.len, 0);
    /* with MERGED too: both EXT2 bits */
    r.observed_node_id = 9;
    r.merged = true;
    base_buf both = {0};
    assert_int_equal(range_kv_response_encode(&r, &both), RANGE_OK);
    assert_int_equal(range_kv_response_decode(both.data, both.len, &rd), RANGE_OK);
    assert_true(rd.merged);
    assert_int_equal(rd.observed_node_id, 9);
    range_kv_response_free(&rd);
    base_buf_free(&both);
    base_buf_free(&plain);
    base_buf_free(&with);
    base_buf_free(&lim);
    base_buf_free(&obs);
    base_buf_free(&bad);
}

/* The side transport's message: round trips, every prefix and a trailing
** byte refused, bad fields refused on both sides, random corruption never
** read out of bounds (seeded). */
static void test_closed_codec(void **state)
{
    (void)state;
    range_closed_entry in[3] = {
        {1, 5, {1700000000000000000LL, 3}, 10},
        {42, 7, {1700000000500000000LL, 0}, 123456789},
        {UINT64_MAX, UINT64_MAX, HLC_ZERO, 0},
    };
    base_buf b = {0};
    range_closed_entry *out = NULL;
    size_t n = 0;
    assert_int_equal(base_buf_append(&b, "z", 1), 0); /* encode appends */
    assert_int_equal(range_closed_encode(in, 3, &b), RANGE_OK);
    assert_int_equal(b.data[1], RANGE_CLOSED_VERSION);
    assert_int_equal(range_closed_decode(b.data + 1, b.len - 1, &out, &n), RANGE_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(out[i].range_id, in[i].range_id);
        assert_int_equal(out[i].term, in[i].term);
        assert_int_equal(hlc_compare(out[i].closed, in[i].closed), 0);
        assert_int_equal(out[i].last_index, in[i].last_index);
    }
    base_free(out);
    /* every strict prefix, and a trailing byte */
    const uint8_t *enc = b.data + 1;
    size_t len = b.len - 1;
    for (size_t k = 0; k < len; k++) {
        uint8_t *c = dup_exact(enc, k);
        assert_int_equal(range_closed_decode(k ? c : NULL, k, &out, &n), RANGE_ERR_CORRUPT);
        assert_null(out);
        free(c);
    }
    uint8_t *c = dup_exact(enc, len + 1);
    memcpy(c, enc, len);
    c[len] = 0;
    assert_int_equal(range_closed_decode(c, len + 1, &out, &n), RANGE_ERR_CORRUPT);
    /* a bad version, a zero count, a count beyond the bytes, a zero range id */
    c[0] = RANGE_CLOSED_VERSION + 1;
    assert_int_equal(range_closed_decode(c, len, &out, &n), RANGE_ERR_CORRUPT);
    free(c);
    base_buf m = {0};
    put_u8(&m, RANGE_CLOSED_VERSION), put_varint(&m, 0);
    assert_int_equal(range_closed_decode(m.data, m.len, &out, &n), RANGE_ERR_CORRUPT);
    base_buf_reset(&m);
    put_u8(&m, RANGE_CLOSED_VERSION), put_varint(&m, RANGE_CLOSED_ENTRIES_MAX + 1);
    assert_int_equal(range_closed_decode(m.data, m.len, &out, &n), RANGE_ERR_CORRUPT);
    base_buf_reset(&m);
    put_u8(&m, RANGE_CLOSED_VERSION), put_varint(&m, 1000); /* no bytes behind it */
    put_varint(&m, 1), put_varint(&m, 1), put_ts0(&m), put_varint(&m, 1);
    assert_int_equal(range_closed_decode(m.data, m.len, &out, &n), RANGE_ERR_CORRUPT);
    base_buf_reset(&m);
    put_u8(&m, RANGE_CLOSED_VERSION), put_varint(&m, 1);
    put_varint(&m, 0), put_varint(&m, 1), put_ts0(&m), put_varint(&m, 1);
    assert_int_equal(range_closed_decode(m.data, m.len, &out, &n), RANGE_ERR_CORRUPT);
    /* a negative wall time */
    base_buf_reset(&m);
    put_u8(&m, RANGE_CLOSED_VERSION), put_varint(&m, 1);
    put_varint(&m, 1), put_varint(&m, 1);
    uint8_t t[HLC_ENCODED_SIZE];
    hlc_encode((hlc_timestamp){-5, 0}, t);
    assert_int_equal(base_buf_append(&m, t, sizeof(t)), 0);
    put_varint(&m, 1);
    assert_int_equal(range_closed_decode(m.data, m.len, &out, &n), RANGE_ERR_CORRUPT);
    base_buf_free(&m);
    /* the encoder refuses what the decoder would */
    base_buf_reset(&b);
    assert_int_equal(range_closed_encode(in, 0, &b), RANGE_ERR_INVALID);
    assert_int_equal(range_closed_encode(NULL, 1, &b), RANGE_ERR_INVALID);
    assert_int_equal(range_closed_encode(in, RANGE_CLOSED_ENTRIES_MAX + 1, &b), RANGE_ERR_INVALID);
    range_closed_entry bad = {0, 1, HLC_ZERO, 1};
    assert_int_equal(range_closed_encode(&bad, 1, &b), RANGE_ERR_INVALID);
    bad = (range_closed_entry){1, 1, {-1, 0}, 1};
    assert_int_equal(range_closed_encode(&bad, 1, &b), RANGE_ERR_INVALID);
    assert_int_equal(b.len, 0);
    /* random corruption: refused, or decoded into entries that encode again */
    const char *env = getenv("MERIDIAN_SEED");
    g_seed = env != NULL ? strtoull(env, NULL, 10) : (uint64_t)base_realtime_ns();
    uint64_t rng = g_seed;
    assert_int_equal(range_closed_encode(in, 3, &b), RANGE_OK);
    size_t accepted = 0;
    for (int round = 0; round < FUZZ_ROUNDS; round++) {
        uint8_t *x = dup_exact(b.data, b.len);
        size_t at = (size_t)(rng_next(&rng) % b.len);
        x[at] = (uint8_t)rng_next(&rng);
        size_t l = rng_next(&rng) % 8 == 0 ? (size_t)(rng_next(&rng) % (b.len + 1)) : b.len;
        int rc = range_closed_decode(l ? x : NULL, l, &out, &n);
        CHECK(rc == RANGE_OK || rc == RANGE_ERR_CORRUPT);
        if (rc == RANGE_OK) {
            base_buf again = {0};
            CHECK(range_closed_encode(out, n, &again) == RANGE_OK);
            base_buf_free(&again);
            base_free(out);
            accepted++;
        }
        free(x);
    }
    printf("  closed: %zu of %d corrupted inputs decoded\n", accepted, FUZZ_ROUNDS);
    base_buf_free(&b);
}

/* DESCRIBE's LOAD section (issue 6): rates in thousandths and the finder's
** key round trip; absent, the bytes are as before; bad rates refused on
** both sides; every strict prefix refused. */
static void test_load_section(void **state)
{
    (void)state;
    range_kv_response r, d;
    base_buf plain = {0}, load = {0};
    memset(&r, 0, sizeof(r));
    r.status = RANGE_OK;
    r.lease_valid = true;
    r.leader_id = 3;
    assert_int_equal(range_kv_response_encode(&r, &plain), RANGE_OK);
    assert_int_equal(plain.data[0], RANGE_KV_VERSION); /* no LOAD: version 1 */
    r.has_load = true;
    r.reads_per_second = 3100.25;
    r.writes_per_second = 0.0004; /* below a thousandth: 0 */
    r.load_split_key = (const uint8_t *)"\x88\x01k";
    r.load_split_key_len = 3;
    assert_int_equal(range_kv_response_encode(&r, &load), RANGE_OK);
    assert_int_equal(range_kv_response_decode(load.data, load.len, &d), RANGE_OK);
    assert_true(d.has_load);
    assert_true(d.reads_per_second == 3100.25);
    assert_true(d.writes_per_second == 0.0);
    assert_int_equal(d.load_split_key_len, 3);
    assert_memory_equal(d.load_split_key, "\x88\x01k", 3);
    assert_true(d.lease_valid);
    assert_int_equal(d.leader_id, 3);
    range_kv_response_free(&d);
    for (size_t n = 0; n < load.len; n++)
        assert_int_not_equal(range_kv_response_decode(load.data, n, &d), RANGE_OK);
    /* no key: length 0 */
    base_buf_reset(&load);
    r.load_split_key = NULL;
    r.load_split_key_len = 0;
    assert_int_equal(range_kv_response_encode(&r, &load), RANGE_OK);
    assert_int_equal(range_kv_response_decode(load.data, load.len, &d), RANGE_OK);
    assert_true(d.has_load && d.load_split_key_len == 0 && d.reads_per_second == 3100.25);
    range_kv_response_free(&d);
    /* absent: decodes without load */
    assert_int_equal(range_kv_response_decode(plain.data, plain.len, &d), RANGE_OK);
    assert_false(d.has_load);
    range_kv_response_free(&d);
    /* bad rates: negative, NaN, above the maximum; a key without bytes */
    base_buf bad = {0};
    r.reads_per_second = -1.0;
    assert_int_equal(range_kv_response_encode(&r, &bad), RANGE_ERR_INVALID);
    r.reads_per_second = NAN;
    assert_int_equal(range_kv_response_encode(&r, &bad), RANGE_ERR_INVALID);
    r.reads_per_second = RANGE_KV_RATE_MAX * 2;
    assert_int_equal(range_kv_response_encode(&r, &bad), RANGE_ERR_INVALID);
    r.reads_per_second = 1.0;
    r.load_split_key_len = 2;
    assert_int_equal(range_kv_response_encode(&r, &bad), RANGE_ERR_INVALID);
    assert_int_equal(bad.len, 0);
    /* the maximum passes; one thousandth above it on the wire is refused */
    r.load_split_key_len = 0;
    r.reads_per_second = RANGE_KV_RATE_MAX;
    assert_int_equal(range_kv_response_encode(&r, &bad), RANGE_OK);
    assert_int_equal(range_kv_response_decode(bad.data, bad.len, &d), RANGE_OK);
    range_kv_response_free(&d);
    for (int over = 0; over < 2; over++) {
        base_buf_reset(&bad);
        put_u8(&bad, 2), put_varint(&bad, 0), put_u8(&bad, 0), put_u8(&bad, 0x80);
        put_varint(&bad, 0); /* leader_hint */
        put_varint(&bad, (uint64_t)(RANGE_KV_RATE_MAX * 1000.0) + (uint64_t)over);
        put_varint(&bad, 0), put_varint(&bad, 0); /* writes, empty key */
        assert_int_equal(range_kv_response_decode(bad.data, bad.len, &d),
                         over ? RANGE_ERR_CORRUPT : RANGE_OK);
        range_kv_response_free(&d);
    }
    base_buf_free(&bad);
    base_buf_free(&plain);
    base_buf_free(&load);
}

/* ---- merges (docs/range.md, "Merges") ------------------------------------------ */

/* Each truncation of enc is refused (exact-size copies: ASan sees overreads). */
static void assert_truncations_refused(const base_buf *enc)
{
    range_kv_request d;
    for (size_t len = 0; len < enc->len; len++) {
        uint8_t *copy = malloc(len + 1);
        memcpy(copy, enc->data, len);
        assert_int_not_equal(range_kv_request_decode(len ? copy : NULL, len, &d), RANGE_OK);
        free(copy);
    }
}

/* The five merge ops round trip; their required fields are refused at zero
** by encoder and decoder; the MERGE response section round trips. */
static void test_merge_ops(void **state)
{
    (void)state;
    uint8_t start[] = {'m'}, end[] = {'t', 0};
    range_descriptor right = {.range_id = 9, .generation = 4, .start_key = start, .start_len = 1,
                              .end_key = end, .end_len = 2, .replicas = {1, 2, 3},
                              .n_replicas = 3};
    hlc_timestamp floor = {123456789, 7};
    range_kv_request qs[5] = {
        {.op = RANGE_KV_SUBSUME, .range_id = 9, .merge_id = UINT64_MAX, .left_range_id = 2,
         .generation = 4},
        {.op = RANGE_KV_WAIT_APPLIED, .range_id = 9, .applied_index = 300},
        {.op = RANGE_KV_ADMIN_MERGE, .range_id = 2, .merge_id = 5, .generation = 11,
         .applied_index = 300, .freeze_lineage = 900, .merge_floor = floor, .has_right = true,
         .right = right},
        {.op = RANGE_KV_MERGE_FENCE, .range_id = 2, .merge_id = 5, .right_range_id = 9},
        {.op = RANGE_KV_UNFREEZE, .range_id = 9, .merge_id = 5},
    };
    for (int i = 0; i < 5; i++) {
        base_buf enc = {0};
        range_kv_request d;
        assert_int_equal(range_kv_request_encode(&qs[i], &enc), RANGE_OK);
        assert_int_equal(range_kv_request_decode(enc.data, enc.len, &d), RANGE_OK);
        assert_int_equal(d.op, qs[i].op);
        assert_int_equal(d.range_id, qs[i].range_id);
        assert_int_equal(d.merge_id, qs[i].merge_id);
        assert_int_equal(d.left_range_id, qs[i].left_range_id);
        assert_int_equal(d.right_range_id, qs[i].right_range_id);
        assert_int_equal(d.generation, qs[i].generation);
        assert_int_equal(d.applied_index, qs[i].applied_index);
        assert_int_equal(d.freeze_lineage, qs[i].freeze_lineage);
        assert_int_equal(hlc_compare(d.merge_floor, qs[i].merge_floor), 0);
        assert_int_equal(d.has_right, qs[i].has_right);
        if (d.has_right) {
            assert_int_equal(d.right.range_id, 9);
            assert_int_equal(d.right.generation, 4);
            assert_int_equal(d.right.n_replicas, 3);
            assert_int_equal(d.right.end_len, 2);
            assert_memory_equal(d.right.end_key, end, 2);
        }
        range_kv_request_free(&d);
        assert_truncations_refused(&enc);
        base_buf_free(&enc);
    }
    /* zero where a value is required: refused by the encoder */
    range_kv_request bad[6] = {
        {.op = RANGE_KV_SUBSUME, .range_id = 9, .left_range_id = 2},
        {.op = RANGE_KV_SUBSUME, .range_id = 9, .merge_id = 1},
        {.op = RANGE_KV_WAIT_APPLIED, .range_id = 9},
        {.op = RANGE_KV_ADMIN_MERGE, .range_id = 2, .merge_id = 5, .applied_index = 3},
        {.op = RANGE_KV_MERGE_FENCE, .range_id = 2, .merge_id = 5},
        {.op = RANGE_KV_UNFREEZE, .range_id = 9},
    };
    for (int i = 0; i < 6; i++) {
        base_buf enc = {0};
        assert_int_equal(range_kv_request_encode(&bad[i], &enc), RANGE_ERR_INVALID);
        assert_int_equal(enc.len, 0);
    }
    /* and by the decoder: SUBSUME with merge id 0, WAIT_APPLIED at 0, UNFREEZE 0 */
    const uint8_t wire[3][6] = {{RANGE_KV_VERSION, RANGE_KV_SUBSUME, 9, 0, 2, 4},
                                {RANGE_KV_VERSION, RANGE_KV_WAIT_APPLIED, 9, 0, 0, 0},
                                {RANGE_KV_VERSION, RANGE_KV_UNFREEZE, 9, 0, 0, 0}};
    const size_t wire_len[3] = {6, 4, 4};
    for (int i = 0; i < 3; i++) {
        range_kv_request d;
        assert_int_equal(range_kv_request_decode(wire[i], wire_len[i], &d), RANGE_ERR_CORRUPT);
    }
    /* an ADMIN_MERGE whose descriptor bytes are bad */
    base_buf enc = {0};
    assert_int_equal(range_kv_request_encode(&qs[2], &enc), RANGE_OK);
    enc.data[enc.len - 1] ^= 0xff;
    range_kv_request d;
    assert_int_not_equal(range_kv_request_decode(enc.data, enc.len, &d), RANGE_OK);
    base_buf_free(&enc);
    /* the response's MERGE section */
    range_kv_response r, dr;
    memset(&r, 0, sizeof(r));
    r.status = RANGE_OK;
    r.freeze_index = 300;
    r.freeze_lineage = 900;
    r.merge_floor = floor;
    r.has_descriptor = true;
    r.descriptor = right;
    assert_int_equal(range_kv_response_encode(&r, &enc), RANGE_OK);
    assert_int_equal(enc.data[0], 2); /* an extended section: version 2 */
    assert_int_equal(range_kv_response_decode(enc.data, enc.len, &dr), RANGE_OK);
    assert_int_equal(dr.freeze_index, 300);
    assert_int_equal(dr.freeze_lineage, 900);
    assert_int_equal(hlc_compare(dr.merge_floor, floor), 0);
    assert_true(dr.has_descriptor);
    assert_int_equal(dr.descriptor.range_id, 9);
    range_kv_response_free(&dr);
    for (size_t n = 0; n < enc.len; n++)
        assert_int_not_equal(range_kv_response_decode(enc.data, n, &dr), RANGE_OK);
    base_buf_free(&enc);
    /* a negative floor is refused */
    r.merge_floor.wall_ns = -1;
    assert_int_equal(range_kv_response_encode(&r, &enc), RANGE_ERR_INVALID);
    base_buf_free(&enc);
}

/* An encoding whose bytes after `plain` (the same request without its
** transaction part) are cut anywhere, or whose txn id there is made 0, is
** refused. */
static void assert_txn_part_refused(const base_buf *enc, size_t plain)
{
    range_kv_request d;
    for (size_t len = plain + 1; len < enc->len; len++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, enc->data, len);
        assert_int_not_equal(range_kv_request_decode(copy, len, &d), RANGE_OK);
        free(copy);
    }
    uint8_t *copy = malloc(enc->len);
    memcpy(copy, enc->data, enc->len);
    assert_int_equal(copy[plain], 1); /* txn id 1: one varint byte */
    copy[plain] = 0;
    assert_int_equal(range_kv_request_decode(copy, enc->len, &d), RANGE_ERR_CORRUPT);
    free(copy);
}

/* The transaction part of ADMIN_SPLIT and ADMIN_MERGE (a split or merge
** that is a transaction's commit trigger, docs/decisions/010): round trips;
** absent, the bytes are those of before (the plain request is a prefix of
** the one with it); a txn without an anchor is refused by the encoder, a
** cut part or a txn id 0 there by the decoder. */
/* END_TXN(COMMITTED) with the participant spans its record keeps (a point,
** a span, an open span; docs/txn.md 6.1): a trailing part, so one without
** them keeps its bytes and the part cut off whole reads as none. */
static void test_end_txn_spans(void **state)
{
    (void)state;
    range_kv_request reqs[N_REQUESTS];
    sample_requests(reqs);
    range_kv_request q = reqs[14];
    base_buf plain = {0}, enc = {0};
    range_kv_request d;
    assert_int_equal(range_kv_request_encode(&q, &plain), RANGE_OK);
    q.spans = g_read_spans;
    q.span_count = 3;
    assert_int_equal(range_kv_request_encode(&q, &enc), RANGE_OK);
    assert_true(enc.len > plain.len);
    assert_memory_equal(enc.data, plain.data, plain.len);
    assert_int_equal(range_kv_request_decode(enc.data, enc.len, &d), RANGE_OK);
    assert_true(same_request(&q, &d));
    range_kv_request_free(&d);
    for (size_t len = plain.len + 1; len < enc.len; len++)
        assert_int_equal(range_kv_request_decode(enc.data, len, &d), RANGE_ERR_CORRUPT);
    assert_int_equal(range_kv_request_decode(enc.data, plain.len, &d), RANGE_OK);
    assert_int_equal(d.span_count, 0);
    range_kv_request_free(&d);
    /* zero spans written as a count is refused (none is nothing) */
    assert_int_equal(base_buf_append_byte(&plain, 0), 0);
    assert_int_equal(range_kv_request_decode(plain.data, plain.len, &d), RANGE_ERR_CORRUPT);
    base_buf_free(&plain);
    base_buf_free(&enc);
}

static void test_commit_trigger_fields(void **state)
{
    (void)state;
    uint8_t start[] = {'m'}, end[] = {'t', 0};
    range_descriptor right = {.range_id = 9, .generation = 4, .start_key = start, .start_len = 1,
                              .end_key = end, .end_len = 2, .replicas = {1, 2, 3},
                              .n_replicas = 3};
    hlc_timestamp floor = {123456789, 7}, cts = {987654321, 3};
    range_kv_request split = {.op = RANGE_KV_ADMIN_SPLIT, .range_id = 2, .key = K1, .key_len = 5,
                              .new_range_id = 3};
    range_kv_request merge = {.op = RANGE_KV_ADMIN_MERGE, .range_id = 2, .merge_id = 5,
                              .generation = 11, .applied_index = 300, .freeze_lineage = 900,
                              .merge_floor = floor, .has_right = true, .right = right};
    range_kv_request *qs[2] = {&split, &merge};
    for (int i = 0; i < 2; i++) {
        base_buf plain = {0}, enc = {0};
        range_kv_request d;
        assert_int_equal(range_kv_request_encode(qs[i], &plain), RANGE_OK);
        assert_int_equal(range_kv_request_decode(plain.data, plain.len, &d), RANGE_OK);
        assert_int_equal(d.txn_id, 0);
        assert_int_equal(d.anchor_len, 0);
        assert_true(hlc_is_zero(d.commit_ts));
        range_kv_request_free(&d);
        /* with the transaction: txn id 1 (one varint byte, for the test
        ** above), then a large one */
        range_kv_request q = *qs[i];
        q.txn_id = 1;
        q.anchor = K2;
        q.anchor_len = 3;
        q.commit_ts = cts;
        if (q.op == RANGE_KV_ADMIN_SPLIT)
            q.generation = 42;
        assert_int_equal(range_kv_request_encode(&q, &enc), RANGE_OK);
        assert_true(enc.len > plain.len);
        assert_memory_equal(enc.data, plain.data, plain.len);
        assert_int_equal(range_kv_request_decode(enc.data, enc.len, &d), RANGE_OK);
        assert_int_equal(d.txn_id, 1);
        assert_true(same_bytes(d.anchor, d.anchor_len, K2, 3));
        assert_int_equal(hlc_compare(d.commit_ts, cts), 0);
        assert_int_equal(d.generation, q.generation);
        if (q.op == RANGE_KV_ADMIN_MERGE) {
            assert_true(d.has_right);
            assert_int_equal(d.right.range_id, 9);
            assert_int_equal(d.merge_id, 5);
            assert_int_equal(d.applied_index, 300);
            assert_int_equal(hlc_compare(d.merge_floor, floor), 0);
        } else {
            assert_true(same_request(&q, &d));
        }
        range_kv_request_free(&d);
        assert_txn_part_refused(&enc, plain.len);
        base_buf_reset(&enc);
        q.txn_id = UINT64_MAX;
        assert_int_equal(range_kv_request_encode(&q, &enc), RANGE_OK);
        assert_int_equal(range_kv_request_decode(enc.data, enc.len, &d), RANGE_OK);
        assert_int_equal(d.txn_id, UINT64_MAX);
        range_kv_request_free(&d);
        /* a txn without its anchor: refused by the encoder */
        base_buf_reset(&enc);
        q.anchor = NULL;
        q.anchor_len = 0;
        assert_int_equal(range_kv_request_encode(&q, &enc), RANGE_ERR_INVALID);
        assert_int_equal(enc.len, 0);
        base_buf_free(&plain);
        base_buf_free(&enc);
    }
}

/* DESCRIBE's optional key (and key_below): absent, the bytes of a plain
** DESCRIBE; present, a flags byte and the key. A fence answer's MERGED
** flag: version 3 with an EXT2 byte, only when set; version 1 or 2 stays
** byte for byte as before. */
static void test_describe_key_and_merged(void **state)
{
    (void)state;
    range_kv_request q, d;
    base_buf plain = {0}, keyed = {0};
    memset(&q, 0, sizeof(q));
    q.op = RANGE_KV_DESCRIBE;
    q.range_id = 7;
    assert_int_equal(range_kv_request_encode(&q, &plain), RANGE_OK);
    assert_int_equal(plain.len, 3); /* version, op, range id */
    assert_int_equal(range_kv_request_decode(plain.data, plain.len, &d), RANGE_OK);
    assert_int_equal(d.key_len, 0);
    assert_false(d.key_below);
    range_kv_request_free(&d);
    q.key = (const uint8_t *)"ks";
    q.key_len = 2;
    q.key_below = true;
    assert_int_equal(range_kv_request_encode(&q, &keyed), RANGE_OK);
    assert_int_equal(keyed.len, plain.len + 4); /* flags, length, 2 bytes */
    assert_memory_equal(keyed.data, plain.data, plain.len);
    assert_int_equal(range_kv_request_decode(keyed.data, keyed.len, &d), RANGE_OK);
    assert_int_equal(d.key_len, 2);
    assert_memory_equal(d.key, "ks", 2);
    assert_true(d.key_below);
    range_kv_request_free(&d);
    /* cut inside the key part: refused (cut before it: a plain DESCRIBE) */
    for (size_t len = plain.len + 1; len < keyed.len; len++) {
        uint8_t *copy = malloc(len);
        assert_non_null(copy);
        memcpy(copy, keyed.data, len);
        assert_int_equal(range_kv_request_decode(copy, len, &d), RANGE_ERR_CORRUPT);
        free(copy);
    }
    /* an unknown flag, an empty key: refused */
    keyed.data[plain.len] = 0x02;
    assert_int_equal(range_kv_request_decode(keyed.data, keyed.len, &d), RANGE_ERR_CORRUPT);
    const uint8_t empty[5] = {RANGE_KV_VERSION, RANGE_KV_DESCRIBE, 7, 0, 0};
    assert_int_equal(range_kv_request_decode(empty, sizeof(empty), &d), RANGE_ERR_CORRUPT);
    /* key_below without a key: refused by the encoder */
    base_buf bad = {0};
    q.key = NULL;
    q.key_len = 0;
    assert_int_equal(range_kv_request_encode(&q, &bad), RANGE_ERR_INVALID);
    assert_int_equal(bad.len, 0);
    base_buf_free(&plain);
    base_buf_free(&keyed);

    /* MERGED */
    range_kv_response r, dr;
    base_buf v1 = {0}, v3 = {0}, v2 = {0};
    memset(&r, 0, sizeof(r));
    r.status = RANGE_OK;
    assert_int_equal(range_kv_response_encode(&r, &v1), RANGE_OK);
    assert_int_equal(v1.data[0], 1);
    r.merged = true;
    assert_int_equal(range_kv_response_encode(&r, &v3), RANGE_OK);
    assert_int_equal(v3.data[0], 3);
    assert_int_equal(v3.len, v1.len + 2); /* ext and ext2 bytes */
    assert_int_equal(range_kv_response_decode(v1.data, v1.len, &dr), RANGE_OK);
    assert_false(dr.merged);
    range_kv_response_free(&dr);
    assert_int_equal(range_kv_response_decode(v3.data, v3.len, &dr), RANGE_OK);
    assert_true(dr.merged);
    range_kv_response_free(&dr);
    for (size_t n = 0; n < v3.len; n++)
        assert_int_not_equal(range_kv_response_decode(v3.data, n, &dr), RANGE_OK);
    /* with an EXT section too */
    r.freeze_index = 5;
    assert_int_equal(range_kv_response_encode(&r, &v2), RANGE_OK);
    assert_int_equal(v2.data[0], 3);
    assert_int_equal(range_kv_response_decode(v2.data, v2.len, &dr), RANGE_OK);
    assert_true(dr.merged);
    assert_int_equal(dr.freeze_index, 5);
    range_kv_response_free(&dr);
    /* version 3 with no EXT2 bit, or an unknown one: refused */
    v3.data[4] = 0; /* version, status (1 byte), sections, ext, ext2 */
    assert_int_equal(range_kv_response_decode(v3.data, v3.len, &dr), RANGE_ERR_CORRUPT);
    v3.data[4] = 0x02;
    assert_int_equal(range_kv_response_decode(v3.data, v3.len, &dr), RANGE_ERR_CORRUPT);
    base_buf_free(&v1);
    base_buf_free(&v2);
    base_buf_free(&v3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_roundtrip),
        cmocka_unit_test(test_change_replicas_request),
        cmocka_unit_test(test_change_replicas_txn_request),
        cmocka_unit_test(test_request_encode_rejects),
        cmocka_unit_test(test_request_decode_rejects),
        cmocka_unit_test(test_response_roundtrip),
        cmocka_unit_test(test_response_encode_rejects),
        cmocka_unit_test(test_response_decode_rejects),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_random_corruption),
        cmocka_unit_test(test_decode_out_of_memory),
        cmocka_unit_test(test_descriptor_roundtrip_copy),
        cmocka_unit_test(test_descriptor_contains),
        cmocka_unit_test(test_descriptor_bad),
        cmocka_unit_test(test_stale_flag),
        cmocka_unit_test(test_uncertainty_limit),
        cmocka_unit_test(test_observed_timestamp),
        cmocka_unit_test(test_closed_codec),
        cmocka_unit_test(test_load_section),
        cmocka_unit_test(test_merge_ops),
        cmocka_unit_test(test_describe_key_and_merged),
        cmocka_unit_test(test_commit_trigger_fields),
        cmocka_unit_test(test_end_txn_spans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
