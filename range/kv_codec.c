/*
** range/kv_codec.c: the wire form of KV requests and responses between a
** range_router and a range_server (declared in range/kv_int.h). Pure: no I/O.
**
** Integers are LEB128 varints unless noted; "bytes" is a varint length then
** that many bytes; "ts" is hlc_encode (12 bytes).
**
** Request:
**   version (1 byte, RANGE_KV_VERSION) | op (1 byte) | range_id (!= 0) | op part:
**     GET:      ts read_ts | bytes key | [flags (1 byte: bit0 stale_ok, bit1
**               uncertain; only present when non-zero, so a plain GET keeps
**               its bytes; bit2 observed, only with bit1)] | [ts
**               uncertainty_limit: only with bit1] | [observed_node_id
**               (!= 0) | ts observed_ts: only with bit2]
**     SCAN:     ts read_ts | flags (1 byte: bit0 reverse, bit1 stale_ok,
**               bit2 skip_intents, bit3 uncertain, bit4 observed (only with
**               bit3): an older decoder refuses the bits) | bytes start |
**               bytes end | max_rows | max_bytes (both <= UINT32_MAX) |
**               [ts uncertainty_limit: only with bit3] | [observed_node_id
**               (!= 0) | ts observed_ts: only with bit4]
**               (a request without a limit keeps its bytes: old senders
**               read without one; the limit is > read_ts and not stale_ok;
**               the observed timestamp, issue 5, trails it likewise)
**     COMMIT:   ts read_ts | ts commit_ts (HLC_ZERO: the server picks) |
**               txn_id | nonce |
**               n_writes x { flags (1 byte: bit0 tombstone) | bytes key |
**                            bytes value (absent for tombstones) } |
**               n_delete_spans x span | n_read_spans x span
**               span = flags (1 byte: bit0 point) | bytes start |
**                      bytes end (absent for point spans)
**     DESCRIBE: nothing (read_ts decodes as HLC_ZERO) | [flags (1 byte:
**               bit0 key_below) | bytes key (non-empty); only present with
**               a key, so a plain DESCRIBE keeps its byte; an older decoder
**               refuses it as trailing bytes, as GET's stale flag]
**     VALIDATE: ts read_ts | ts commit_ts | txn_id (0: none) |
**               n_read_spans x span   (txn_id added with issue 5; no mixed-
**               version clusters exist, so the version was not bumped)
**     ADMIN_SPLIT: bytes key (non-empty) | new_range_id (!= 0) | [txn_id
**               (!= 0) | bytes anchor (non-empty) | ts commit_ts |
**               generation: only for a split that is a transaction's commit
**               trigger (docs/decisions/010), so a plain split keeps its
**               bytes; an older decoder refuses it as trailing bytes]
**     TRANSFER_LEASE: target_node_id (!= 0)
**     CHANGE_REPLICAS: add_node_id | remove_node_id (not both 0, not equal) |
**               [txn_id (!= 0) | bytes anchor (non-empty) | ts commit_ts |
**               generation | conf_step (1 byte: 1 or 2 with add_node_id
**               alone, 4 with remove_node_id alone): one step as a
**               transaction's commit trigger (docs/decisions/010, item 8),
**               trailing like ADMIN_SPLIT's txn part]
**     PREPARE:  ts read_ts | ts commit_ts | txn_id (!= 0) | nonce |
**               priority (zigzag varint of the int64) | bytes anchor
**               (non-empty) | flags (1 byte: bit0 create_record) |
**               the writes, delete spans and read spans as COMMIT's
**     END_TXN:  ts commit_ts | txn_id (!= 0) | nonce | priority | bytes anchor
**               (non-empty) | status (1 byte: COMMITTED or ABORTED) |
**               [n_spans (1..RANGE_TXN_RECORD_SPANS_MAX) x span: COMMITTED
**               only, the participant spans its record keeps (docs/txn.md
**               6.1); trailing like HEARTBEAT's read_ts]
**     RESOLVE:  ts commit_ts | txn_id (!= 0) | nonce | status (1 byte:
**               COMMITTED or ABORTED) | n_spans (>= 1) x span
**     PUSH:     txn_id (pusher, 0: none) | priority | pushee_txn_id (!= 0) |
**               bytes anchor (non-empty) | ts intent_ts |
**               since_wall_ns (zigzag) | n_deps (<= RANGE_KV_DEPS_MAX) x edge
**               edge = waiter (!= 0) | waiter_priority (zigzag) |
**                      holder (!= 0) | holder_priority (zigzag)
**               (since and deps added with issue 5 step 2, unversioned
**               like VALIDATE's txn_id)
**     HEARTBEAT: txn_id (!= 0) | priority | bytes anchor (non-empty) |
**               [ts read_ts: when not zero; the age sweep refuses to make a
**               record for an old txn (docs/txn.md 6.1), trailing like
**               ADMIN_SPLIT's txn part]
**     LOCK:     ts read_ts | txn_id (!= 0) | priority | bytes anchor
**               (non-empty) | n_keys (1..RANGE_KV_LOCK_KEYS_MAX) x bytes key
**               (strictly ascending, range__key_cmp order)
**     QUERY_TXN: txn_id (!= 0) | bytes anchor (non-empty)
**     SUBSUME:  merge_id (!= 0) | left_range_id (!= 0) | generation
**     WAIT_APPLIED: applied_index (!= 0)
**     ADMIN_MERGE: merge_id (!= 0) | generation | applied_index (!= 0) |
**               freeze_lineage | ts merge_floor | bytes right
**               (range_descriptor_encode) | [txn_id (!= 0) | bytes anchor
**               (non-empty) | ts commit_ts: only for a merge that is a
**               transaction's commit trigger (docs/decisions/010), like
**               ADMIN_SPLIT's txn part; generation is then the one T assumed]
**     MERGE_FENCE: merge_id (!= 0) | right_range_id (!= 0) | bytes key (R's
**               start, may be empty)
**     UNFREEZE: merge_id (!= 0)
**   (the merge ops, 16..20, came with issue 6: ops an older decoder does not
**   know are refused as any unknown op, so the version stays 1)
** Response:
**   version (1 byte: 1; 2 when an extended section is present; 3 when an
**   EXT2 section is) | status (zigzag varint of the int32) | sections (1
**   byte, the bits below) | [version 2 and 3: ext_sections (1 byte, the EXT
**   bits below; non-zero in version 2)] | [version 3: ext2_sections (1 byte,
**   the EXT2 bits below, non-zero)] | leader_hint |
**   the present sections, in bit order, then the extended ones:
**     0x01 VALUE       bytes value
**     0x02 ROWS        n_rows (1..RANGE_KV_SCAN_ROWS_MAX) x { bytes key | bytes value }
**     0x04 MORE        (no bytes: more = true)
**     0x08 COMMIT      ts commit_ts
**     0x10 CONFLICT    kind (1 byte, a range_conflict_kind) | bytes key |
**                      ts conflict_ts | pending (1 byte, 0 or 1)
**     0x20 DESCRIPTOR  bytes (range_descriptor_encode)
**     0x40 LEASE       lease_valid (1 byte, 0 or 1) | leader_id
**     0x80 OTHER       bytes (range_descriptor_encode): another descriptor
**                      (KEY_MISMATCH: the local range holding the key;
**                      ADMIN_SPLIT: the right-hand range)
**     EXT 0x01 TXN     status (1 byte, a range_txn_status)
**     EXT 0x02 INTENT  bytes key | txn_id (!= 0) | bytes anchor | ts
**     EXT 0x04 NEWEST  ts newest_ts
**     EXT 0x08 HOLDER  flags (1 byte: bit0 unreplicated) | since_wall_ns
**                      (zigzag); only with INTENT
**     EXT 0x10 DEPS    n (1..RANGE_KV_DEPS_MAX) x edge (as PUSH's)
**     EXT 0x20 CYCLE   n (1..RANGE_KV_CYCLE_MAX) x txn id (!= 0)
**     EXT 0x40 MERGE   freeze_index | freeze_lineage | ts merge_floor
**     EXT 0x80 LOAD    reads | writes (varints: requests per second x 1000,
**                      rounded) | bytes split_key (length 0: none)
**                      (issue 6: a DESCRIBE's answer; an older decoder
**                      refuses the unknown bit, so only new nodes send it)
**     EXT2 0x01 MERGED (no bytes: merged = true; a MERGE_FENCE's answer)
**     EXT2 0x02 OBSERVED observed_node_id (!= 0) | ts observed_ts (a GET's
**                      or SCAN's answer to a read with an uncertainty limit)
**   Version 3 exists because the 8 EXT bits were used up too: an answer
**   without MERGED keeps its version and bytes, and an older decoder
**   refuses version 3 (only a fence answers it, and its caller is new).
**   Version 2 exists because the 8 section bits were used up: a response
**   without TXN or INTENT keeps version 1, byte for byte as before.
**   The response does not know its op, so the encoder writes every section
**   whose fields are not all at their default (0, NULL, false): VALUE when
**   value != NULL or value_len > 0, ROWS when n_rows > 0, COMMIT when
**   commit_ts is not HLC_ZERO, CONFLICT when any conflict field is set,
**   DESCRIPTOR when has_descriptor, LEASE when lease_valid or leader_id != 0,
**   OTHER when has_other, TXN when has_txn, INTENT when intent_txn_id != 0,
**   NEWEST when newest_ts is not HLC_ZERO, HOLDER when intent_unreplicated
**   or intent_since_wall_ns != 0, DEPS when dep_count > 0, CYCLE when
**   cycle_len > 0, MERGE when freeze_index, freeze_lineage or merge_floor
**   is set, LOAD when has_load, MERGED when merged, OBSERVED when
**   observed_node_id != 0 (observed_ts must then be set, else both unset).
**   An absent section decodes as the defaults; the reader picks the fields
**   of the op it sent.
**
** Decoded byte fields point INTO the input. Empty versus NULL: a field
** whose bytes are on the wire and have length 0 decodes as a non-NULL
** pointer (into the input) with length 0, so callers may pass it to memcpy;
** except the ends of spans and scans, where length 0 means "unbounded" and
** decodes as end = NULL, end_len = 0. Fields not on the wire (other ops,
** absent sections, tombstone values, point-span ends) decode as NULL, 0.
**
** Invariants: a decoder reads only inside [data, data + len); rejects
** varints longer than 10 bytes or above 64 bits, every count above its named
** maximum (RANGE_COMMAND_WRITES_MAX, RANGE_KV_SPANS_MAX,
** RANGE_KV_SCAN_ROWS_MAX, RANGE_KV_LOCK_KEYS_MAX, RANGE_KV_DEPS_MAX,
** RANGE_KV_CYCLE_MAX) or above what the bytes left could hold (checked
** before allocating), every length above its maximum (STORAGE_KEY_SIZE_MAX,
** STORAGE_VALUE_SIZE_MAX) or the bytes left, unknown versions, ops, flag
** bits and trailing bytes, with RANGE_ERR_CORRUPT, leaving nothing
** allocated. The encoders refuse (RANGE_ERR_INVALID) whatever the decoder
** would reject, so every encoding they produce decodes; on any error they
** leave *out as it was.
*/
#include <string.h>

#include "range/codec_int.h"
#include "range/eval_int.h"
#include "range/kv_int.h"
#include "range/range.h"

/* Response section bits. */
#define KV_SEC_VALUE 0x01u
#define KV_SEC_ROWS 0x02u
#define KV_SEC_MORE 0x04u
#define KV_SEC_COMMIT 0x08u
#define KV_SEC_CONFLICT 0x10u
#define KV_SEC_DESCRIPTOR 0x20u
#define KV_SEC_LEASE 0x40u
#define KV_SEC_OTHER 0x80u
#define KV_SEC_ALL 0xffu
#define KV_EXT_TXN 0x01u
#define KV_EXT_INTENT 0x02u
#define KV_EXT_NEWEST 0x04u
#define KV_EXT_HOLDER 0x08u
#define KV_EXT_DEPS 0x10u
#define KV_EXT_CYCLE 0x20u
#define KV_EXT_MERGE 0x40u
#define KV_EXT_LOAD 0x80u
#define KV_EXT_ALL 0xffu
#define KV_HOLDER_UNREPLICATED 0x01u
#define KV_RESPONSE_VERSION_EXT 2
#define KV_RESPONSE_VERSION_EXT2 3
#define KV_EXT2_MERGED 0x01u
#define KV_EXT2_OBSERVED 0x02u
#define KV_EXT2_ALL 0x03u
#define KV_DESCRIBE_KEY_BELOW 0x01u
#define KV_PREPARE_CREATE_RECORD 0x01u

#define KV_SCAN_REVERSE 0x01u
#define KV_SCAN_STALE_OK 0x02u
#define KV_SCAN_SKIP_INTENTS 0x04u
#define KV_SCAN_UNCERTAIN 0x08u
#define KV_SCAN_OBSERVED 0x10u
#define KV_GET_STALE_OK 0x01u
#define KV_GET_UNCERTAIN 0x02u
#define KV_GET_OBSERVED 0x04u
#define KV_WRITE_TOMBSTONE 0x01u
#define KV_SPAN_POINT 0x01u

/* Smallest wire size of one element: a lower bound that caps an allocation
** sized by a count before the elements are read. */
#define KV_WRITE_BYTES_MIN 2 /* flags, key length */
#define KV_SPAN_BYTES_MIN 2  /* flags, start length */
#define KV_ROW_BYTES_MIN 2   /* key length, value length */
#define KV_KEY_BYTES_MIN 1   /* key length */
#define KV_EDGE_BYTES_MIN 4  /* four varints */
#define KV_ID_BYTES_MIN 1    /* one varint */

/* ---- varints and bytes (replica_codec.c's helpers are static there) ------- */


static int kv__put_bytes(base_buf *b, const uint8_t *p, size_t n)
{
    int rc = range__put_varint(b, n);
    if (rc == 0 && n > 0)
        rc = base_buf_append(b, p, n);
    return rc;
}

static int kv__put_ts(base_buf *b, hlc_timestamp ts)
{
    uint8_t tmp[HLC_ENCODED_SIZE];
    hlc_encode(ts, tmp);
    return base_buf_append(b, tmp, sizeof(tmp));
}

static int kv__put_i64(base_buf *b, int64_t v)
{
    uint64_t u = (uint64_t)v;
    return range__put_varint(b, (u << 1) ^ (0u - (u >> 63))); /* zigzag */
}

typedef range__reader kv__reader;

static int64_t kv__get_i64(range__reader *r)
{
    uint64_t z = range__get_varint(r);
    return (int64_t)((z >> 1) ^ (0u - (z & 1u)));
}

static size_t kv__left(const kv__reader *r) { return (size_t)(r->end - r->p); }

/* A length-prefixed field of at most max bytes, borrowed from the input.
** Length 0 gives a non-NULL pointer (the current position). */
static const uint8_t *kv__get_bytes(kv__reader *r, uint64_t max, size_t *len)
{
    uint64_t n = range__get_varint(r);
    *len = 0;
    if (r->bad || n > max || n > (uint64_t)kv__left(r)) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    *len = (size_t)n;
    return p;
}

/* An end bound: as kv__get_bytes, but length 0 (unbounded) gives NULL. */
static const uint8_t *kv__get_end(kv__reader *r, uint64_t max, size_t *len)
{
    const uint8_t *p = kv__get_bytes(r, max, len);
    return *len == 0 ? NULL : p;
}

static hlc_timestamp kv__get_ts(kv__reader *r)
{
    if (r->bad || kv__left(r) < HLC_ENCODED_SIZE) {
        r->bad = true;
        return HLC_ZERO;
    }
    hlc_timestamp ts = hlc_decode(r->p);
    r->p += HLC_ENCODED_SIZE;
    return ts;
}

/* A byte that must be 0 or 1. */
static bool kv__get_bool(kv__reader *r)
{
    uint8_t c = range__get_u8(r);
    if (c > 1)
        r->bad = true;
    return c == 1;
}

/* true when (p, n) is a field the encoder can write: bytes present and n <= max. */
static bool kv__field_ok(const void *p, size_t n, size_t max)
{
    return n <= max && (n == 0 || p != NULL);
}

/* ---- requests ----------------------------------------------------------------- */

static bool kv__spans_ok(const range_span *spans, size_t n)
{
    if (n > RANGE_KV_SPANS_MAX || (n > 0 && spans == NULL))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!kv__field_ok(spans[i].start, spans[i].start_len, STORAGE_KEY_SIZE_MAX))
            return false;
        if (!spans[i].point && !kv__field_ok(spans[i].end, spans[i].end_len, STORAGE_KEY_SIZE_MAX))
            return false;
    }
    return true;
}

/* COMMIT's and PREPARE's writes, delete spans and read spans. */
static bool kv__writes_ok(const range_kv_request *req)
{
    if (req->write_count > RANGE_COMMAND_WRITES_MAX || (req->write_count > 0 && req->writes == NULL))
        return false;
    for (size_t i = 0; i < req->write_count; i++) {
        const range_write *w = &req->writes[i];
        if (!kv__field_ok(w->key, w->key_len, STORAGE_KEY_SIZE_MAX) ||
            (!w->tombstone && !kv__field_ok(w->value, w->value_len, STORAGE_VALUE_SIZE_MAX)))
            return false;
    }
    return kv__spans_ok(req->delete_spans, req->delete_span_count) &&
           kv__spans_ok(req->read_spans, req->read_span_count);
}

static bool kv__anchor_ok(const range_kv_request *req)
{
    return req->anchor_len > 0 && kv__field_ok(req->anchor, req->anchor_len, STORAGE_KEY_SIZE_MAX);
}

/* CHANGE_REPLICAS with a transaction: one step of one node. */
static bool kv__conf_step_ok(const range_kv_request *req)
{
    if (req->conf_step == RANGE_CONF_STEP_ADD_LEARNER || req->conf_step == RANGE_CONF_STEP_PROMOTE)
        return req->add_node_id != 0 && req->remove_node_id == 0;
    return req->conf_step == RANGE_CONF_STEP_REMOVE && req->add_node_id == 0 &&
           req->remove_node_id != 0;
}

/* LOCK's keys: 1..max, strictly ascending. */
static bool kv__lock_keys_ok(const range_kv_key *keys, size_t n)
{
    if (n == 0 || n > RANGE_KV_LOCK_KEYS_MAX || keys == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!kv__field_ok(keys[i].key, keys[i].key_len, STORAGE_KEY_SIZE_MAX))
            return false;
        if (i > 0 && range__key_cmp(keys[i - 1].key, keys[i - 1].key_len, keys[i].key,
                                    keys[i].key_len) >= 0)
            return false;
    }
    return true;
}

static bool kv__edges_ok(const range_kv_edge *edges, size_t n)
{
    if (n > RANGE_KV_DEPS_MAX || (n > 0 && edges == NULL))
        return false;
    for (size_t i = 0; i < n; i++)
        if (edges[i].waiter == 0 || edges[i].holder == 0)
            return false;
    return true;
}

static bool kv__final_status(uint8_t status)
{
    return status == RANGE_TXN_COMMITTED || status == RANGE_TXN_ABORTED;
}

static bool kv__ts_ok(hlc_timestamp ts);

/* A GET/SCAN's uncertainty limit: none, or a valid ts above read_ts on a
** read that is not stale (a stale read is below every commit in flight). */
static bool kv__limit_ok(const range_kv_request *req)
{
    /* an observed timestamp: both fields or neither, only with a limit */
    if ((req->observed_node_id == 0) != hlc_is_zero(req->observed_ts) ||
        (req->observed_node_id != 0 &&
         (hlc_is_zero(req->uncertainty_limit) || !kv__ts_ok(req->observed_ts))))
        return false;
    if (hlc_is_zero(req->uncertainty_limit))
        return true;
    return !req->stale_ok && kv__ts_ok(req->uncertainty_limit) &&
           hlc_compare(req->uncertainty_limit, req->read_ts) > 0;
}

/* The uncertainty limit after its flag bit: refused as kv__limit_ok does. */
static hlc_timestamp kv__get_limit(kv__reader *r, const range_kv_request *req)
{
    hlc_timestamp limit = kv__get_ts(r);
    range_kv_request probe = *req;
    probe.uncertainty_limit = limit;
    probe.observed_node_id = 0;
    probe.observed_ts = HLC_ZERO;
    if (hlc_is_zero(limit) || !kv__limit_ok(&probe))
        r->bad = true;
    return limit;
}

/* The observed timestamp after its flag bit (the limit already read). */
static void kv__get_observed(kv__reader *r, range_kv_request *req)
{
    req->observed_node_id = range__get_varint(r);
    req->observed_ts = kv__get_ts(r);
    if (!r->bad && !kv__limit_ok(req))
        r->bad = true;
}

static bool kv__request_ok(const range_kv_request *req)
{
    if (req->range_id == 0)
        return false;
    switch (req->op) {
    case RANGE_KV_GET:
        return kv__field_ok(req->key, req->key_len, STORAGE_KEY_SIZE_MAX) &&
               kv__limit_ok(req);
    case RANGE_KV_SCAN:
        return kv__field_ok(req->start, req->start_len, STORAGE_KEY_SIZE_MAX) &&
               kv__field_ok(req->end, req->end_len, STORAGE_KEY_SIZE_MAX) && kv__limit_ok(req);
    case RANGE_KV_COMMIT:
        return kv__writes_ok(req);
    case RANGE_KV_PREPARE:
        return req->txn_id != 0 && kv__anchor_ok(req) && kv__writes_ok(req);
    case RANGE_KV_END_TXN:
        return req->txn_id != 0 && kv__anchor_ok(req) && kv__final_status(req->txn_status) &&
               req->span_count <= RANGE_TXN_RECORD_SPANS_MAX &&
               (req->span_count == 0 || req->txn_status == RANGE_TXN_COMMITTED) &&
               kv__spans_ok(req->spans, req->span_count);
    case RANGE_KV_RESOLVE:
        return req->txn_id != 0 && kv__final_status(req->txn_status) && req->span_count > 0 &&
               kv__spans_ok(req->spans, req->span_count);
    case RANGE_KV_PUSH:
        return req->pushee_txn_id != 0 && kv__anchor_ok(req) &&
               kv__edges_ok(req->deps, req->dep_count);
    case RANGE_KV_HEARTBEAT:
    case RANGE_KV_QUERY_TXN:
    case RANGE_KV_GC_TXN:
        return req->txn_id != 0 && kv__anchor_ok(req);
    case RANGE_KV_LOCK:
        return req->txn_id != 0 && kv__anchor_ok(req) &&
               kv__lock_keys_ok(req->lock_keys, req->lock_key_count);
    case RANGE_KV_DESCRIBE:
        return kv__field_ok(req->key, req->key_len, STORAGE_KEY_SIZE_MAX) &&
               (req->key_len > 0 || !req->key_below);
    case RANGE_KV_VALIDATE:
        return kv__spans_ok(req->read_spans, req->read_span_count);
    case RANGE_KV_ADMIN_SPLIT:
        return req->key_len > 0 && kv__field_ok(req->key, req->key_len, RANGE_DESC_KEY_MAX) &&
               req->new_range_id != 0 && (req->txn_id == 0 || kv__anchor_ok(req));
    case RANGE_KV_TRANSFER_LEASE:
        return req->target_node_id != 0;
    case RANGE_KV_CHANGE_REPLICAS:
        return (req->add_node_id != 0 || req->remove_node_id != 0) &&
               req->add_node_id != req->remove_node_id &&
               (req->txn_id == 0 || (kv__anchor_ok(req) && kv__conf_step_ok(req)));
    case RANGE_KV_SUBSUME:
        return req->merge_id != 0 && req->left_range_id != 0;
    case RANGE_KV_WAIT_APPLIED:
        return req->applied_index != 0;
    case RANGE_KV_ADMIN_MERGE:
        return req->merge_id != 0 && req->applied_index != 0 && req->has_right &&
               kv__ts_ok(req->merge_floor) && (req->txn_id == 0 || kv__anchor_ok(req));
    case RANGE_KV_MERGE_FENCE:
        return req->merge_id != 0 && req->right_range_id != 0 &&
               kv__field_ok(req->key, req->key_len, RANGE_DESC_KEY_MAX);
    case RANGE_KV_UNFREEZE:
        return req->merge_id != 0;
    default:
        return false;
    }
}

static int kv__put_spans(base_buf *out, const range_span *spans, size_t n)
{
    int rc = range__put_varint(out, n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc |= base_buf_append_byte(out, spans[i].point ? KV_SPAN_POINT : 0);
        rc |= kv__put_bytes(out, spans[i].start, spans[i].start_len);
        if (!spans[i].point)
            rc |= kv__put_bytes(out, spans[i].end, spans[i].end_len);
    }
    return rc;
}

static int kv__put_edges(base_buf *out, const range_kv_edge *edges, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc |= range__put_varint(out, edges[i].waiter);
        rc |= kv__put_i64(out, edges[i].waiter_priority);
        rc |= range__put_varint(out, edges[i].holder);
        rc |= kv__put_i64(out, edges[i].holder_priority);
    }
    return rc;
}

/* COMMIT's and PREPARE's tail: writes, delete spans, read spans. */
static int kv__put_writes(base_buf *out, const range_kv_request *req)
{
    int rc = range__put_varint(out, req->write_count);
    for (size_t i = 0; i < req->write_count && rc == 0; i++) {
        const range_write *w = &req->writes[i];
        rc |= base_buf_append_byte(out, w->tombstone ? KV_WRITE_TOMBSTONE : 0);
        rc |= kv__put_bytes(out, w->key, w->key_len);
        if (!w->tombstone)
            rc |= kv__put_bytes(out, w->value, w->value_len);
    }
    if (rc == 0)
        rc |= kv__put_spans(out, req->delete_spans, req->delete_span_count);
    if (rc == 0)
        rc |= kv__put_spans(out, req->read_spans, req->read_span_count);
    return rc;
}

int range_kv_request_encode(const range_kv_request *req, base_buf *out)
{
    int rc = 0;
    if (req == NULL || out == NULL || !kv__request_ok(req))
        return RANGE_ERR_INVALID;
    size_t len0 = out->len;
    rc |= base_buf_append_byte(out, RANGE_KV_VERSION);
    rc |= base_buf_append_byte(out, req->op);
    rc |= range__put_varint(out, req->range_id);
    switch (req->op) {
    case RANGE_KV_GET:
        rc |= kv__put_ts(out, req->read_ts);
        rc |= kv__put_bytes(out, req->key, req->key_len);
        if (req->stale_ok || !hlc_is_zero(req->uncertainty_limit))
            rc |= base_buf_append_byte(
                out, (uint8_t)((req->stale_ok ? KV_GET_STALE_OK : 0) |
                               (!hlc_is_zero(req->uncertainty_limit) ? KV_GET_UNCERTAIN : 0) |
                               (req->observed_node_id != 0 ? KV_GET_OBSERVED : 0)));
        if (!hlc_is_zero(req->uncertainty_limit))
            rc |= kv__put_ts(out, req->uncertainty_limit);
        if (req->observed_node_id != 0) {
            rc |= range__put_varint(out, req->observed_node_id);
            rc |= kv__put_ts(out, req->observed_ts);
        }
        break;
    case RANGE_KV_SCAN:
        rc |= kv__put_ts(out, req->read_ts);
        rc |= base_buf_append_byte(out, (uint8_t)((req->reverse ? KV_SCAN_REVERSE : 0) |
                                                  (req->stale_ok ? KV_SCAN_STALE_OK : 0) |
                                                  (req->skip_intents ? KV_SCAN_SKIP_INTENTS : 0) |
                                                  (!hlc_is_zero(req->uncertainty_limit)
                                                       ? KV_SCAN_UNCERTAIN : 0) |
                                                  (req->observed_node_id != 0
                                                       ? KV_SCAN_OBSERVED : 0)));
        rc |= kv__put_bytes(out, req->start, req->start_len);
        rc |= kv__put_bytes(out, req->end, req->end_len);
        rc |= range__put_varint(out, req->max_rows);
        rc |= range__put_varint(out, req->max_bytes);
        if (!hlc_is_zero(req->uncertainty_limit))
            rc |= kv__put_ts(out, req->uncertainty_limit);
        if (req->observed_node_id != 0) {
            rc |= range__put_varint(out, req->observed_node_id);
            rc |= kv__put_ts(out, req->observed_ts);
        }
        break;
    case RANGE_KV_COMMIT:
        rc |= kv__put_ts(out, req->read_ts);
        rc |= kv__put_ts(out, req->commit_ts);
        rc |= range__put_varint(out, req->txn_id);
        rc |= range__put_varint(out, req->nonce);
        if (rc == 0)
            rc |= kv__put_writes(out, req);
        break;
    case RANGE_KV_PREPARE:
        rc |= kv__put_ts(out, req->read_ts);
        rc |= kv__put_ts(out, req->commit_ts);
        rc |= range__put_varint(out, req->txn_id);
        rc |= range__put_varint(out, req->nonce);
        rc |= kv__put_i64(out, req->priority);
        rc |= kv__put_bytes(out, req->anchor, req->anchor_len);
        rc |= base_buf_append_byte(out, req->create_record ? KV_PREPARE_CREATE_RECORD : 0);
        if (rc == 0)
            rc |= kv__put_writes(out, req);
        break;
    case RANGE_KV_END_TXN:
        rc |= kv__put_ts(out, req->commit_ts);
        rc |= range__put_varint(out, req->txn_id);
        rc |= range__put_varint(out, req->nonce);
        rc |= kv__put_i64(out, req->priority);
        rc |= kv__put_bytes(out, req->anchor, req->anchor_len);
        rc |= base_buf_append_byte(out, req->txn_status);
        if (req->span_count > 0 && rc == 0)
            rc |= kv__put_spans(out, req->spans, req->span_count);
        break;
    case RANGE_KV_RESOLVE:
        rc |= kv__put_ts(out, req->commit_ts);
        rc |= range__put_varint(out, req->txn_id);
        rc |= range__put_varint(out, req->nonce);
        rc |= base_buf_append_byte(out, req->txn_status);
        if (rc == 0)
            rc |= kv__put_spans(out, req->spans, req->span_count);
        break;
    case RANGE_KV_PUSH:
        rc |= range__put_varint(out, req->txn_id);
        rc |= kv__put_i64(out, req->priority);
        rc |= range__put_varint(out, req->pushee_txn_id);
        rc |= kv__put_bytes(out, req->anchor, req->anchor_len);
        rc |= kv__put_ts(out, req->intent_ts);
        rc |= kv__put_i64(out, req->since_wall_ns);
        rc |= range__put_varint(out, req->dep_count);
        if (rc == 0)
            rc |= kv__put_edges(out, req->deps, req->dep_count);
        break;
    case RANGE_KV_HEARTBEAT:
        rc |= range__put_varint(out, req->txn_id);
        rc |= kv__put_i64(out, req->priority);
        rc |= kv__put_bytes(out, req->anchor, req->anchor_len);
        if (!hlc_is_zero(req->read_ts))
            rc |= kv__put_ts(out, req->read_ts);
        break;
    case RANGE_KV_LOCK:
        rc |= kv__put_ts(out, req->read_ts);
        rc |= range__put_varint(out, req->txn_id);
        rc |= kv__put_i64(out, req->priority);
        rc |= kv__put_bytes(out, req->anchor, req->anchor_len);
        rc |= range__put_varint(out, req->lock_key_count);
        for (size_t i = 0; i < req->lock_key_count && rc == 0; i++)
            rc |= kv__put_bytes(out, req->lock_keys[i].key, req->lock_keys[i].key_len);
        break;
    case RANGE_KV_QUERY_TXN:
    case RANGE_KV_GC_TXN:
        rc |= range__put_varint(out, req->txn_id);
        rc |= kv__put_bytes(out, req->anchor, req->anchor_len);
        break;
    case RANGE_KV_VALIDATE:
        rc |= kv__put_ts(out, req->read_ts);
        rc |= kv__put_ts(out, req->commit_ts);
        rc |= range__put_varint(out, req->txn_id);
        if (rc == 0)
            rc |= kv__put_spans(out, req->read_spans, req->read_span_count);
        break;
    case RANGE_KV_ADMIN_SPLIT:
        rc |= kv__put_bytes(out, req->key, req->key_len);
        rc |= range__put_varint(out, req->new_range_id);
        if (req->txn_id != 0) {
            rc |= range__put_varint(out, req->txn_id);
            rc |= kv__put_bytes(out, req->anchor, req->anchor_len);
            rc |= kv__put_ts(out, req->commit_ts);
            rc |= range__put_varint(out, req->generation);
        }
        break;
    case RANGE_KV_TRANSFER_LEASE:
        rc |= range__put_varint(out, req->target_node_id);
        break;
    case RANGE_KV_CHANGE_REPLICAS:
        rc |= range__put_varint(out, req->add_node_id);
        rc |= range__put_varint(out, req->remove_node_id);
        if (req->txn_id != 0) {
            rc |= range__put_varint(out, req->txn_id);
            rc |= kv__put_bytes(out, req->anchor, req->anchor_len);
            rc |= kv__put_ts(out, req->commit_ts);
            rc |= range__put_varint(out, req->generation);
            rc |= base_buf_append_byte(out, req->conf_step);
        }
        break;
    case RANGE_KV_SUBSUME:
        rc |= range__put_varint(out, req->merge_id);
        rc |= range__put_varint(out, req->left_range_id);
        rc |= range__put_varint(out, req->generation);
        break;
    case RANGE_KV_WAIT_APPLIED:
        rc |= range__put_varint(out, req->applied_index);
        break;
    case RANGE_KV_ADMIN_MERGE: {
        base_buf d = {0}; /* owner: this block */
        int drc = range_descriptor_encode(&req->right, &d);
        if (drc != RANGE_OK) {
            base_buf_free(&d);
            out->len = len0;
            return drc; /* RANGE_ERR_INVALID or RANGE_ERR_NOMEM */
        }
        rc |= range__put_varint(out, req->merge_id);
        rc |= range__put_varint(out, req->generation);
        rc |= range__put_varint(out, req->applied_index);
        rc |= range__put_varint(out, req->freeze_lineage);
        rc |= kv__put_ts(out, req->merge_floor);
        rc |= kv__put_bytes(out, d.data, d.len);
        base_buf_free(&d);
        if (req->txn_id != 0) {
            rc |= range__put_varint(out, req->txn_id);
            rc |= kv__put_bytes(out, req->anchor, req->anchor_len);
            rc |= kv__put_ts(out, req->commit_ts);
        }
        break;
    }
    case RANGE_KV_MERGE_FENCE:
        rc |= range__put_varint(out, req->merge_id);
        rc |= range__put_varint(out, req->right_range_id);
        rc |= kv__put_bytes(out, req->key, req->key_len);
        break;
    case RANGE_KV_UNFREEZE:
        rc |= range__put_varint(out, req->merge_id);
        break;
    case RANGE_KV_DESCRIBE: /* the key part only with a key (codec header) */
        if (req->key_len > 0) {
            rc |= base_buf_append_byte(out, req->key_below ? KV_DESCRIBE_KEY_BELOW : 0);
            rc |= kv__put_bytes(out, req->key, req->key_len);
        }
        break;
    default:
        break;
    }
    if (rc != 0) {
        out->len = len0; /* leave *out as it was */
        return RANGE_ERR_NOMEM;
    }
    return RANGE_OK;
}

/* Decode n spans (count already read and checked) into an owned array. */
static int kv__get_spans(kv__reader *r, uint64_t n, range_span **out)
{
    *out = NULL;
    if (n > RANGE_KV_SPANS_MAX || n > kv__left(r) / KV_SPAN_BYTES_MIN)
        return RANGE_ERR_CORRUPT;
    if (n == 0)
        return RANGE_OK;
    range_span *spans = base_calloc((size_t)n, sizeof(*spans)); /* owner: the request */
    if (spans == NULL)
        return RANGE_ERR_NOMEM;
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        range_span *s = &spans[i];
        uint8_t flags = range__get_u8(r);
        if ((flags & ~KV_SPAN_POINT) != 0)
            r->bad = true;
        s->point = (flags & KV_SPAN_POINT) != 0;
        s->start = kv__get_bytes(r, STORAGE_KEY_SIZE_MAX, &s->start_len);
        if (!s->point)
            s->end = kv__get_end(r, STORAGE_KEY_SIZE_MAX, &s->end_len);
    }
    if (r->bad) {
        base_free(spans);
        return RANGE_ERR_CORRUPT;
    }
    *out = spans;
    return RANGE_OK;
}

/* n edges (count already read) into an owned array (*out NULL when n is 0). */
static int kv__get_edges(kv__reader *r, uint64_t n, range_kv_edge **out)
{
    *out = NULL;
    if (r->bad || n > RANGE_KV_DEPS_MAX || n > kv__left(r) / KV_EDGE_BYTES_MIN)
        return RANGE_ERR_CORRUPT;
    if (n == 0)
        return RANGE_OK;
    range_kv_edge *edges = base_calloc((size_t)n, sizeof(*edges)); /* owner: the caller */
    if (edges == NULL)
        return RANGE_ERR_NOMEM;
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        edges[i].waiter = range__get_varint(r);
        edges[i].waiter_priority = kv__get_i64(r);
        edges[i].holder = range__get_varint(r);
        edges[i].holder_priority = kv__get_i64(r);
        if (edges[i].waiter == 0 || edges[i].holder == 0)
            r->bad = true;
    }
    if (r->bad) {
        base_free(edges);
        return RANGE_ERR_CORRUPT;
    }
    *out = edges;
    return RANGE_OK;
}

/* LOCK's keys (count already read): owned array, strictly ascending. */
static int kv__get_lock_keys(kv__reader *r, uint64_t n, range_kv_key **out)
{
    *out = NULL;
    if (r->bad || n == 0 || n > RANGE_KV_LOCK_KEYS_MAX || n > kv__left(r) / KV_KEY_BYTES_MIN)
        return RANGE_ERR_CORRUPT;
    range_kv_key *keys = base_calloc((size_t)n, sizeof(*keys)); /* owner: the caller */
    if (keys == NULL)
        return RANGE_ERR_NOMEM;
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        keys[i].key = kv__get_bytes(r, STORAGE_KEY_SIZE_MAX, &keys[i].key_len);
        if (!r->bad && i > 0 &&
            range__key_cmp(keys[i - 1].key, keys[i - 1].key_len, keys[i].key, keys[i].key_len) >= 0)
            r->bad = true;
    }
    if (r->bad) {
        base_free(keys);
        return RANGE_ERR_CORRUPT;
    }
    *out = keys;
    return RANGE_OK;
}

/* COMMIT's and PREPARE's tail (kv__put_writes). */
static int kv__get_writes(kv__reader *r, range_kv_request *out)
{
    range_write *writes = NULL;
    range_span *spans = NULL;
    int rc;
    uint64_t n = range__get_varint(r);
    if (r->bad || n > RANGE_COMMAND_WRITES_MAX || n > kv__left(r) / KV_WRITE_BYTES_MIN)
        return RANGE_ERR_CORRUPT;
    if (n > 0) {
        writes = base_calloc((size_t)n, sizeof(*writes)); /* owner: out */
        if (writes == NULL)
            return RANGE_ERR_NOMEM;
    }
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        range_write *w = &writes[i];
        uint8_t flags = range__get_u8(r);
        if ((flags & ~KV_WRITE_TOMBSTONE) != 0)
            r->bad = true;
        w->tombstone = (flags & KV_WRITE_TOMBSTONE) != 0;
        w->key = kv__get_bytes(r, STORAGE_KEY_SIZE_MAX, &w->key_len);
        if (!w->tombstone)
            w->value = kv__get_bytes(r, STORAGE_VALUE_SIZE_MAX, &w->value_len);
    }
    out->writes = writes; /* owned by out from here: the caller frees on error */
    out->write_count = (size_t)n;
    if (r->bad)
        return RANGE_ERR_CORRUPT;
    uint64_t n_delete = range__get_varint(r);
    if (r->bad)
        return RANGE_ERR_CORRUPT;
    rc = kv__get_spans(r, n_delete, &spans);
    if (rc != RANGE_OK)
        return rc;
    out->delete_spans = spans;
    out->delete_span_count = (size_t)n_delete;
    uint64_t n_read = range__get_varint(r);
    if (r->bad)
        return RANGE_ERR_CORRUPT;
    rc = kv__get_spans(r, n_read, &spans);
    if (rc != RANGE_OK)
        return rc;
    out->read_spans = spans;
    out->read_span_count = (size_t)n_read;
    return RANGE_OK;
}

int range_kv_request_decode(const uint8_t *data, size_t len, range_kv_request *out)
{
    kv__reader r = {data, data != NULL ? data + len : NULL, false}; /* NULL + 0 is UB */
    int rc = RANGE_ERR_CORRUPT;
    memset(out, 0, sizeof(*out));
    if (data == NULL || len == 0 || range__get_u8(&r) != RANGE_KV_VERSION)
        goto cleanup;
    out->op = range__get_u8(&r);
    out->range_id = range__get_varint(&r);
    if (r.bad || out->range_id == 0)
        goto cleanup;
    switch (out->op) {
    case RANGE_KV_GET:
        out->read_ts = kv__get_ts(&r);
        out->key = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->key_len);
        if (!r.bad && kv__left(&r) > 0) {
            /* the optional flags byte: present means non-zero */
            uint8_t flags = range__get_u8(&r);
            if (flags == 0 ||
                (flags & ~(KV_GET_STALE_OK | KV_GET_UNCERTAIN | KV_GET_OBSERVED)) != 0 ||
                ((flags & KV_GET_OBSERVED) != 0 && (flags & KV_GET_UNCERTAIN) == 0))
                r.bad = true;
            out->stale_ok = (flags & KV_GET_STALE_OK) != 0;
            if ((flags & KV_GET_UNCERTAIN) != 0)
                out->uncertainty_limit = kv__get_limit(&r, out);
            if (!r.bad && (flags & KV_GET_OBSERVED) != 0)
                kv__get_observed(&r, out);
        }
        break;
    case RANGE_KV_SCAN: {
        out->read_ts = kv__get_ts(&r);
        uint8_t flags = range__get_u8(&r);
        if ((flags & ~(KV_SCAN_REVERSE | KV_SCAN_STALE_OK | KV_SCAN_SKIP_INTENTS |
                       KV_SCAN_UNCERTAIN | KV_SCAN_OBSERVED)) != 0 ||
            ((flags & KV_SCAN_OBSERVED) != 0 && (flags & KV_SCAN_UNCERTAIN) == 0))
            r.bad = true;
        out->reverse = (flags & KV_SCAN_REVERSE) != 0;
        out->stale_ok = (flags & KV_SCAN_STALE_OK) != 0;
        out->skip_intents = (flags & KV_SCAN_SKIP_INTENTS) != 0;
        out->start = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->start_len);
        out->end = kv__get_end(&r, STORAGE_KEY_SIZE_MAX, &out->end_len);
        uint64_t max_rows = range__get_varint(&r);
        uint64_t max_bytes = range__get_varint(&r);
        if (max_rows > UINT32_MAX || max_bytes > UINT32_MAX)
            r.bad = true;
        out->max_rows = (uint32_t)max_rows;
        out->max_bytes = (uint32_t)max_bytes;
        if ((flags & KV_SCAN_UNCERTAIN) != 0)
            out->uncertainty_limit = kv__get_limit(&r, out);
        if (!r.bad && (flags & KV_SCAN_OBSERVED) != 0)
            kv__get_observed(&r, out);
        break;
    }
    case RANGE_KV_COMMIT:
    case RANGE_KV_PREPARE:
        out->read_ts = kv__get_ts(&r);
        out->commit_ts = kv__get_ts(&r);
        out->txn_id = range__get_varint(&r);
        out->nonce = range__get_varint(&r);
        if (out->op == RANGE_KV_PREPARE) {
            out->priority = kv__get_i64(&r);
            out->anchor = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->anchor_len);
            uint8_t flags = range__get_u8(&r);
            if ((flags & ~KV_PREPARE_CREATE_RECORD) != 0 || out->txn_id == 0 ||
                out->anchor_len == 0)
                r.bad = true;
            out->create_record = (flags & KV_PREPARE_CREATE_RECORD) != 0;
        }
        if (r.bad)
            goto cleanup;
        rc = kv__get_writes(&r, out);
        if (rc != RANGE_OK)
            goto cleanup;
        rc = RANGE_ERR_CORRUPT;
        break;
    case RANGE_KV_END_TXN:
        out->commit_ts = kv__get_ts(&r);
        out->txn_id = range__get_varint(&r);
        out->nonce = range__get_varint(&r);
        out->priority = kv__get_i64(&r);
        out->anchor = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->anchor_len);
        out->txn_status = range__get_u8(&r);
        if (out->txn_id == 0 || out->anchor_len == 0 || !kv__final_status(out->txn_status))
            r.bad = true;
        if (!r.bad && kv__left(&r) > 0) {
            uint64_t n_spans = range__get_varint(&r);
            if (r.bad || n_spans == 0 || n_spans > RANGE_TXN_RECORD_SPANS_MAX ||
                out->txn_status != RANGE_TXN_COMMITTED)
                goto cleanup; /* none is written as nothing */
            range_span *spans = NULL; /* owner: out (range_kv_request_free) */
            rc = kv__get_spans(&r, n_spans, &spans);
            if (rc != RANGE_OK)
                goto cleanup;
            rc = RANGE_ERR_CORRUPT;
            out->spans = spans;
            out->span_count = (size_t)n_spans;
        }
        break;
    case RANGE_KV_RESOLVE: {
        out->commit_ts = kv__get_ts(&r);
        out->txn_id = range__get_varint(&r);
        out->nonce = range__get_varint(&r);
        out->txn_status = range__get_u8(&r);
        uint64_t n_spans = range__get_varint(&r);
        if (r.bad || out->txn_id == 0 || !kv__final_status(out->txn_status) || n_spans == 0)
            goto cleanup;
        range_span *spans = NULL; /* owner: out (range_kv_request_free) */
        rc = kv__get_spans(&r, n_spans, &spans);
        if (rc != RANGE_OK)
            goto cleanup;
        rc = RANGE_ERR_CORRUPT;
        out->spans = spans;
        out->span_count = (size_t)n_spans;
        break;
    }
    case RANGE_KV_PUSH: {
        out->txn_id = range__get_varint(&r);
        out->priority = kv__get_i64(&r);
        out->pushee_txn_id = range__get_varint(&r);
        out->anchor = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->anchor_len);
        out->intent_ts = kv__get_ts(&r);
        out->since_wall_ns = kv__get_i64(&r);
        if (out->pushee_txn_id == 0 || out->anchor_len == 0)
            r.bad = true;
        uint64_t n_deps = range__get_varint(&r);
        range_kv_edge *deps = NULL; /* owner: out (range_kv_request_free) */
        rc = kv__get_edges(&r, n_deps, &deps);
        if (rc != RANGE_OK)
            goto cleanup;
        rc = RANGE_ERR_CORRUPT;
        out->deps = deps;
        out->dep_count = (size_t)n_deps;
        break;
    }
    case RANGE_KV_LOCK: {
        out->read_ts = kv__get_ts(&r);
        out->txn_id = range__get_varint(&r);
        out->priority = kv__get_i64(&r);
        out->anchor = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->anchor_len);
        if (out->txn_id == 0 || out->anchor_len == 0)
            r.bad = true;
        uint64_t n_keys = range__get_varint(&r);
        range_kv_key *keys = NULL; /* owner: out (range_kv_request_free) */
        rc = kv__get_lock_keys(&r, n_keys, &keys);
        if (rc != RANGE_OK)
            goto cleanup;
        rc = RANGE_ERR_CORRUPT;
        out->lock_keys = keys;
        out->lock_key_count = (size_t)n_keys;
        break;
    }
    case RANGE_KV_QUERY_TXN:
    case RANGE_KV_GC_TXN:
        out->txn_id = range__get_varint(&r);
        out->anchor = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->anchor_len);
        if (out->txn_id == 0 || out->anchor_len == 0)
            r.bad = true;
        break;
    case RANGE_KV_HEARTBEAT:
        out->txn_id = range__get_varint(&r);
        out->priority = kv__get_i64(&r);
        out->anchor = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->anchor_len);
        if (out->txn_id == 0 || out->anchor_len == 0)
            r.bad = true;
        if (kv__left(&r) > 0) {
            out->read_ts = kv__get_ts(&r);
            if (hlc_is_zero(out->read_ts))
                r.bad = true; /* zero is written as nothing */
        }
        break;
    case RANGE_KV_DESCRIBE:
        if (kv__left(&r) > 0) {
            uint8_t flags = range__get_u8(&r);
            if ((flags & ~KV_DESCRIBE_KEY_BELOW) != 0)
                r.bad = true;
            out->key_below = (flags & KV_DESCRIBE_KEY_BELOW) != 0;
            out->key = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->key_len);
            if (out->key_len == 0)
                r.bad = true; /* no key is no key part */
        }
        break;
    case RANGE_KV_VALIDATE: {
        out->read_ts = kv__get_ts(&r);
        out->commit_ts = kv__get_ts(&r);
        out->txn_id = range__get_varint(&r);
        uint64_t n_read = range__get_varint(&r);
        if (r.bad)
            goto cleanup;
        range_span *spans = NULL; /* owner: out (range_kv_request_free) */
        rc = kv__get_spans(&r, n_read, &spans);
        if (rc != RANGE_OK)
            goto cleanup;
        rc = RANGE_ERR_CORRUPT;
        out->read_spans = spans;
        out->read_span_count = (size_t)n_read;
        break;
    }
    case RANGE_KV_ADMIN_SPLIT:
        out->key = kv__get_bytes(&r, RANGE_DESC_KEY_MAX, &out->key_len);
        out->new_range_id = range__get_varint(&r);
        if (out->key_len == 0 || out->new_range_id == 0)
            r.bad = true;
        if (kv__left(&r) > 0) {
            out->txn_id = range__get_varint(&r);
            out->anchor = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->anchor_len);
            out->commit_ts = kv__get_ts(&r);
            out->generation = range__get_varint(&r);
            if (out->txn_id == 0 || out->anchor_len == 0)
                r.bad = true; /* no txn is no txn part */
        }
        break;
    case RANGE_KV_TRANSFER_LEASE:
        out->target_node_id = range__get_varint(&r);
        if (out->target_node_id == 0)
            r.bad = true;
        break;
    case RANGE_KV_CHANGE_REPLICAS:
        out->add_node_id = range__get_varint(&r);
        out->remove_node_id = range__get_varint(&r);
        if ((out->add_node_id == 0 && out->remove_node_id == 0) ||
            out->add_node_id == out->remove_node_id)
            r.bad = true;
        if (!r.bad && kv__left(&r) > 0) {
            out->txn_id = range__get_varint(&r);
            out->anchor = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->anchor_len);
            out->commit_ts = kv__get_ts(&r);
            out->generation = range__get_varint(&r);
            out->conf_step = range__get_u8(&r);
            if (out->txn_id == 0 || out->anchor_len == 0 || !kv__conf_step_ok(out))
                r.bad = true; /* no txn is no txn part */
        }
        break;
    case RANGE_KV_SUBSUME:
        out->merge_id = range__get_varint(&r);
        out->left_range_id = range__get_varint(&r);
        out->generation = range__get_varint(&r);
        if (out->merge_id == 0 || out->left_range_id == 0)
            r.bad = true;
        break;
    case RANGE_KV_WAIT_APPLIED:
        out->applied_index = range__get_varint(&r);
        if (out->applied_index == 0)
            r.bad = true;
        break;
    case RANGE_KV_ADMIN_MERGE: {
        out->merge_id = range__get_varint(&r);
        out->generation = range__get_varint(&r);
        out->applied_index = range__get_varint(&r);
        out->freeze_lineage = range__get_varint(&r);
        out->merge_floor = kv__get_ts(&r);
        size_t dlen = 0;
        const uint8_t *d = kv__get_bytes(&r, kv__left(&r), &dlen);
        if (!r.bad && kv__left(&r) > 0) {
            out->txn_id = range__get_varint(&r);
            out->anchor = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->anchor_len);
            out->commit_ts = kv__get_ts(&r);
            if (out->txn_id == 0 || out->anchor_len == 0)
                r.bad = true; /* no txn is no txn part */
        }
        if (r.bad || out->merge_id == 0 || out->applied_index == 0 ||
            !kv__ts_ok(out->merge_floor))
            goto cleanup;
        rc = range_descriptor_decode(d, dlen, &out->right);
        if (rc != RANGE_OK)
            goto cleanup; /* RANGE_ERR_CORRUPT or RANGE_ERR_NOMEM */
        rc = RANGE_ERR_CORRUPT;
        out->has_right = true;
        break;
    }
    case RANGE_KV_MERGE_FENCE:
        out->merge_id = range__get_varint(&r);
        out->right_range_id = range__get_varint(&r);
        out->key = kv__get_bytes(&r, RANGE_DESC_KEY_MAX, &out->key_len);
        if (out->merge_id == 0 || out->right_range_id == 0)
            r.bad = true;
        break;
    case RANGE_KV_UNFREEZE:
        out->merge_id = range__get_varint(&r);
        if (out->merge_id == 0)
            r.bad = true;
        break;
    default:
        goto cleanup; /* unknown op */
    }
    if (r.bad || r.p != r.end) /* truncated, or trailing bytes */
        goto cleanup;
    return RANGE_OK;
cleanup:
    range_kv_request_free(out);
    return rc;
}

void range_kv_request_free(range_kv_request *req)
{
    if (req == NULL)
        return;
    /* on a decoded request the arrays are ours (kv_int.h) */
    base_free((void *)req->writes);
    base_free((void *)req->delete_spans);
    base_free((void *)req->read_spans);
    base_free((void *)req->spans);
    base_free((void *)req->lock_keys);
    base_free((void *)req->deps);
    if (req->has_right)
        range_descriptor_free(&req->right);
    memset(req, 0, sizeof(*req));
}

/* ---- responses ---------------------------------------------------------------- */

static unsigned kv__sections(const range_kv_response *resp)
{
    unsigned s = 0;
    if (resp->value != NULL || resp->value_len > 0)
        s |= KV_SEC_VALUE;
    if (resp->n_rows > 0)
        s |= KV_SEC_ROWS;
    if (resp->more)
        s |= KV_SEC_MORE;
    if (!hlc_is_zero(resp->commit_ts))
        s |= KV_SEC_COMMIT;
    if (resp->conflict_kind != RANGE_CONFLICT_NONE || resp->conflict_key != NULL ||
        resp->conflict_key_len > 0 || !hlc_is_zero(resp->conflict_ts) || resp->conflict_pending)
        s |= KV_SEC_CONFLICT;
    if (resp->has_descriptor)
        s |= KV_SEC_DESCRIPTOR;
    if (resp->lease_valid || resp->leader_id != 0)
        s |= KV_SEC_LEASE;
    if (resp->has_other)
        s |= KV_SEC_OTHER;
    return s;
}

static unsigned kv__ext_sections(const range_kv_response *resp)
{
    unsigned s = 0;
    if (resp->has_txn)
        s |= KV_EXT_TXN;
    if (resp->intent_txn_id != 0)
        s |= KV_EXT_INTENT;
    if (!hlc_is_zero(resp->newest_ts))
        s |= KV_EXT_NEWEST;
    if (resp->intent_unreplicated || resp->intent_since_wall_ns != 0)
        s |= KV_EXT_HOLDER;
    if (resp->dep_count > 0)
        s |= KV_EXT_DEPS;
    if (resp->cycle_len > 0)
        s |= KV_EXT_CYCLE;
    if (resp->freeze_index != 0 || resp->freeze_lineage != 0 || !hlc_is_zero(resp->merge_floor))
        s |= KV_EXT_MERGE;
    if (resp->has_load)
        s |= KV_EXT_LOAD;
    return s;
}

/* A LOAD rate: finite, 0 .. RANGE_KV_RATE_MAX (NaN fails both compares). */
static bool kv__rate_ok(double rate)
{
    return rate >= 0.0 && rate <= RANGE_KV_RATE_MAX;
}

static bool kv__response_ok(const range_kv_response *resp)
{
    if (!kv__field_ok(resp->value, resp->value_len, STORAGE_VALUE_SIZE_MAX) ||
        resp->n_rows > RANGE_KV_SCAN_ROWS_MAX || (resp->n_rows > 0 && resp->rows == NULL) ||
        resp->conflict_kind > RANGE_CONFLICT_PHANTOM ||
        !kv__field_ok(resp->conflict_key, resp->conflict_key_len, STORAGE_KEY_SIZE_MAX) ||
        (resp->has_txn && resp->txn_status > RANGE_TXN_ABORTED) ||
        !kv__field_ok(resp->intent_key, resp->intent_key_len, STORAGE_KEY_SIZE_MAX) ||
        !kv__field_ok(resp->intent_anchor, resp->intent_anchor_len, STORAGE_KEY_SIZE_MAX) ||
        ((resp->intent_unreplicated || resp->intent_since_wall_ns != 0) &&
         resp->intent_txn_id == 0) ||
        !kv__edges_ok(resp->deps, resp->dep_count) || resp->cycle_len > RANGE_KV_CYCLE_MAX ||
        (resp->cycle_len > 0 && resp->cycle == NULL) || !kv__ts_ok(resp->merge_floor) ||
        (resp->observed_node_id == 0) != hlc_is_zero(resp->observed_ts) ||
        !kv__ts_ok(resp->observed_ts) ||
        (resp->has_load &&
         (!kv__rate_ok(resp->reads_per_second) || !kv__rate_ok(resp->writes_per_second) ||
          !kv__field_ok(resp->load_split_key, resp->load_split_key_len, STORAGE_KEY_SIZE_MAX))))
        return false;
    for (size_t i = 0; i < resp->cycle_len; i++)
        if (resp->cycle[i] == 0)
            return false;
    for (size_t i = 0; i < resp->n_rows; i++)
        if (!kv__field_ok(resp->rows[i].key, resp->rows[i].key_len, STORAGE_KEY_SIZE_MAX) ||
            !kv__field_ok(resp->rows[i].value, resp->rows[i].value_len, STORAGE_VALUE_SIZE_MAX))
            return false;
    return true;
}

int range_kv_response_encode(const range_kv_response *resp, base_buf *out)
{
    base_buf desc = {0};  /* owner: this function; the encoded descriptor */
    base_buf other = {0}; /* owner: this function; the encoded other descriptor */
    int rc = RANGE_ERR_INVALID;
    if (resp == NULL || out == NULL || !kv__response_ok(resp))
        return RANGE_ERR_INVALID;
    size_t len0 = out->len;
    unsigned sections = kv__sections(resp);
    if (sections & KV_SEC_DESCRIPTOR) {
        rc = range_descriptor_encode(&resp->descriptor, &desc);
        if (rc != RANGE_OK)
            goto cleanup; /* RANGE_ERR_INVALID or RANGE_ERR_NOMEM */
    }
    if (sections & KV_SEC_OTHER) {
        rc = range_descriptor_encode(&resp->other, &other);
        if (rc != RANGE_OK)
            goto cleanup;
    }
    unsigned ext = kv__ext_sections(resp);
    unsigned ext2 = (resp->merged ? KV_EXT2_MERGED : 0) |
                    (resp->observed_node_id != 0 ? KV_EXT2_OBSERVED : 0);
    uint32_t status = (uint32_t)resp->status;
    uint32_t zigzag = (status << 1) ^ (0u - (status >> 31));
    uint8_t version = ext2 != 0  ? KV_RESPONSE_VERSION_EXT2
                      : ext != 0 ? KV_RESPONSE_VERSION_EXT
                                 : RANGE_KV_VERSION;
    int e = 0;
    e |= base_buf_append_byte(out, version);
    e |= range__put_varint(out, zigzag);
    e |= base_buf_append_byte(out, (uint8_t)sections);
    if (version != RANGE_KV_VERSION)
        e |= base_buf_append_byte(out, (uint8_t)ext);
    if (version == KV_RESPONSE_VERSION_EXT2)
        e |= base_buf_append_byte(out, (uint8_t)ext2);
    e |= range__put_varint(out, resp->leader_hint);
    if (sections & KV_SEC_VALUE)
        e |= kv__put_bytes(out, resp->value, resp->value_len);
    if (sections & KV_SEC_ROWS) {
        e |= range__put_varint(out, resp->n_rows);
        for (size_t i = 0; i < resp->n_rows && e == 0; i++) {
            e |= kv__put_bytes(out, resp->rows[i].key, resp->rows[i].key_len);
            e |= kv__put_bytes(out, resp->rows[i].value, resp->rows[i].value_len);
        }
    }
    if (sections & KV_SEC_COMMIT)
        e |= kv__put_ts(out, resp->commit_ts);
    if (sections & KV_SEC_CONFLICT) {
        e |= base_buf_append_byte(out, resp->conflict_kind);
        e |= kv__put_bytes(out, resp->conflict_key, resp->conflict_key_len);
        e |= kv__put_ts(out, resp->conflict_ts);
        e |= base_buf_append_byte(out, resp->conflict_pending ? 1 : 0);
    }
    if (sections & KV_SEC_DESCRIPTOR)
        e |= kv__put_bytes(out, desc.data, desc.len);
    if (sections & KV_SEC_LEASE) {
        e |= base_buf_append_byte(out, resp->lease_valid ? 1 : 0);
        e |= range__put_varint(out, resp->leader_id);
    }
    if (sections & KV_SEC_OTHER)
        e |= kv__put_bytes(out, other.data, other.len);
    if (ext & KV_EXT_TXN)
        e |= base_buf_append_byte(out, resp->txn_status);
    if (ext & KV_EXT_INTENT) {
        e |= kv__put_bytes(out, resp->intent_key, resp->intent_key_len);
        e |= range__put_varint(out, resp->intent_txn_id);
        e |= kv__put_bytes(out, resp->intent_anchor, resp->intent_anchor_len);
        e |= kv__put_ts(out, resp->intent_ts);
    }
    if (ext & KV_EXT_NEWEST)
        e |= kv__put_ts(out, resp->newest_ts);
    if (ext & KV_EXT_HOLDER) {
        e |= base_buf_append_byte(out, resp->intent_unreplicated ? KV_HOLDER_UNREPLICATED : 0);
        e |= kv__put_i64(out, resp->intent_since_wall_ns);
    }
    if (ext & KV_EXT_DEPS) {
        e |= range__put_varint(out, resp->dep_count);
        if (e == 0)
            e |= kv__put_edges(out, resp->deps, resp->dep_count);
    }
    if (ext & KV_EXT_CYCLE) {
        e |= range__put_varint(out, resp->cycle_len);
        for (size_t i = 0; i < resp->cycle_len && e == 0; i++)
            e |= range__put_varint(out, resp->cycle[i]);
    }
    if (ext & KV_EXT_MERGE) {
        e |= range__put_varint(out, resp->freeze_index);
        e |= range__put_varint(out, resp->freeze_lineage);
        e |= kv__put_ts(out, resp->merge_floor);
    }
    if (ext & KV_EXT_LOAD) {
        e |= range__put_varint(out, (uint64_t)(resp->reads_per_second * 1000.0 + 0.5));
        e |= range__put_varint(out, (uint64_t)(resp->writes_per_second * 1000.0 + 0.5));
        e |= kv__put_bytes(out, resp->load_split_key, resp->load_split_key_len);
    }
    if (ext2 & KV_EXT2_OBSERVED) {
        e |= range__put_varint(out, resp->observed_node_id);
        e |= kv__put_ts(out, resp->observed_ts);
    }
    rc = e == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
cleanup:
    if (rc != RANGE_OK)
        out->len = len0; /* leave *out as it was */
    base_buf_free(&desc);
    base_buf_free(&other);
    return rc;
}

int range_kv_response_decode(const uint8_t *data, size_t len, range_kv_response *out)
{
    kv__reader r = {data, data != NULL ? data + len : NULL, false}; /* NULL + 0 is UB */
    range_kv_row *rows = NULL;
    int rc = RANGE_ERR_CORRUPT;
    memset(out, 0, sizeof(*out));
    uint8_t version = data == NULL || len == 0 ? 0 : range__get_u8(&r);
    if (version != RANGE_KV_VERSION && version != KV_RESPONSE_VERSION_EXT &&
        version != KV_RESPONSE_VERSION_EXT2)
        goto cleanup;
    uint64_t zigzag = range__get_varint(&r);
    unsigned sections = range__get_u8(&r);
    unsigned ext = version != RANGE_KV_VERSION ? range__get_u8(&r) : 0;
    unsigned ext2 = version == KV_RESPONSE_VERSION_EXT2 ? range__get_u8(&r) : 0;
    out->leader_hint = range__get_varint(&r);
    if (r.bad || zigzag > UINT32_MAX || (sections & ~KV_SEC_ALL) != 0 ||
        (ext & ~KV_EXT_ALL) != 0 || (version == KV_RESPONSE_VERSION_EXT && ext == 0) ||
        (ext2 & ~KV_EXT2_ALL) != 0 || (version == KV_RESPONSE_VERSION_EXT2 && ext2 == 0))
        goto cleanup;
    out->merged = (ext2 & KV_EXT2_MERGED) != 0;
    uint32_t z = (uint32_t)zigzag;
    out->status = (int32_t)((z >> 1) ^ (0u - (z & 1u)));
    if (sections & KV_SEC_VALUE)
        out->value = kv__get_bytes(&r, STORAGE_VALUE_SIZE_MAX, &out->value_len);
    if (sections & KV_SEC_ROWS) {
        uint64_t n = range__get_varint(&r);
        if (r.bad || n == 0 || n > RANGE_KV_SCAN_ROWS_MAX || n > kv__left(&r) / KV_ROW_BYTES_MIN)
            goto cleanup;
        rows = base_calloc((size_t)n, sizeof(*rows)); /* owner: out */
        if (rows == NULL) {
            rc = RANGE_ERR_NOMEM;
            goto cleanup;
        }
        for (uint64_t i = 0; i < n && !r.bad; i++) {
            rows[i].key = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &rows[i].key_len);
            rows[i].value = kv__get_bytes(&r, STORAGE_VALUE_SIZE_MAX, &rows[i].value_len);
        }
        out->rows = rows;
        out->n_rows = (size_t)n;
        rows = NULL; /* freed with out from here */
    }
    out->more = (sections & KV_SEC_MORE) != 0;
    if (sections & KV_SEC_COMMIT)
        out->commit_ts = kv__get_ts(&r);
    if (sections & KV_SEC_CONFLICT) {
        out->conflict_kind = range__get_u8(&r);
        if (out->conflict_kind > RANGE_CONFLICT_PHANTOM)
            r.bad = true;
        out->conflict_key = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->conflict_key_len);
        out->conflict_ts = kv__get_ts(&r);
        out->conflict_pending = kv__get_bool(&r);
    }
    if (sections & KV_SEC_DESCRIPTOR) {
        size_t dlen;
        const uint8_t *d = kv__get_bytes(&r, kv__left(&r), &dlen);
        if (r.bad)
            goto cleanup;
        rc = range_descriptor_decode(d, dlen, &out->descriptor);
        if (rc != RANGE_OK)
            goto cleanup; /* RANGE_ERR_CORRUPT or RANGE_ERR_NOMEM */
        rc = RANGE_ERR_CORRUPT;
        out->has_descriptor = true;
    }
    if (sections & KV_SEC_LEASE) {
        out->lease_valid = kv__get_bool(&r);
        out->leader_id = range__get_varint(&r);
    }
    if (sections & KV_SEC_OTHER) {
        size_t dlen;
        const uint8_t *d = kv__get_bytes(&r, kv__left(&r), &dlen);
        if (r.bad)
            goto cleanup;
        rc = range_descriptor_decode(d, dlen, &out->other);
        if (rc != RANGE_OK)
            goto cleanup;
        rc = RANGE_ERR_CORRUPT;
        out->has_other = true;
    }
    if (ext & KV_EXT_TXN) {
        out->has_txn = true;
        out->txn_status = range__get_u8(&r);
        if (out->txn_status > RANGE_TXN_ABORTED)
            r.bad = true;
    }
    if (ext & KV_EXT_INTENT) {
        out->intent_key = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->intent_key_len);
        out->intent_txn_id = range__get_varint(&r);
        out->intent_anchor = kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->intent_anchor_len);
        out->intent_ts = kv__get_ts(&r);
        if (out->intent_txn_id == 0)
            r.bad = true;
    }
    if (ext & KV_EXT_NEWEST)
        out->newest_ts = kv__get_ts(&r);
    if (ext & KV_EXT_HOLDER) {
        uint8_t flags = range__get_u8(&r);
        if ((flags & ~KV_HOLDER_UNREPLICATED) != 0 || (ext & KV_EXT_INTENT) == 0)
            r.bad = true;
        out->intent_unreplicated = (flags & KV_HOLDER_UNREPLICATED) != 0;
        out->intent_since_wall_ns = kv__get_i64(&r);
    }
    if (ext & KV_EXT_DEPS) {
        uint64_t n = range__get_varint(&r);
        if (n == 0)
            r.bad = true;
        range_kv_edge *deps = NULL; /* owner: out (range_kv_response_free) */
        int erc = kv__get_edges(&r, n, &deps);
        if (erc != RANGE_OK) {
            rc = erc;
            goto cleanup;
        }
        out->deps = deps;
        out->dep_count = (size_t)n;
    }
    if (ext & KV_EXT_CYCLE) {
        uint64_t n = range__get_varint(&r);
        if (r.bad || n == 0 || n > RANGE_KV_CYCLE_MAX || n > kv__left(&r) / KV_ID_BYTES_MIN)
            goto cleanup;
        uint64_t *cycle = base_calloc((size_t)n, sizeof(*cycle)); /* owner: out */
        if (cycle == NULL) {
            rc = RANGE_ERR_NOMEM;
            goto cleanup;
        }
        out->cycle = cycle;
        out->cycle_len = (size_t)n;
        for (uint64_t i = 0; i < n && !r.bad; i++) {
            cycle[i] = range__get_varint(&r);
            if (cycle[i] == 0)
                r.bad = true;
        }
    }
    if (ext & KV_EXT_MERGE) {
        out->freeze_index = range__get_varint(&r);
        out->freeze_lineage = range__get_varint(&r);
        out->merge_floor = kv__get_ts(&r);
        if (!kv__ts_ok(out->merge_floor))
            r.bad = true;
    }
    if (ext & KV_EXT_LOAD) {
        uint64_t reads = range__get_varint(&r), writes = range__get_varint(&r);
        if (reads > (uint64_t)(RANGE_KV_RATE_MAX * 1000.0) ||
            writes > (uint64_t)(RANGE_KV_RATE_MAX * 1000.0))
            r.bad = true;
        out->has_load = true;
        out->reads_per_second = (double)reads / 1000.0;
        out->writes_per_second = (double)writes / 1000.0;
        out->load_split_key =
            kv__get_bytes(&r, STORAGE_KEY_SIZE_MAX, &out->load_split_key_len);
    }
    if (ext2 & KV_EXT2_OBSERVED) {
        out->observed_node_id = range__get_varint(&r);
        out->observed_ts = kv__get_ts(&r);
        if (out->observed_node_id == 0 || hlc_is_zero(out->observed_ts) ||
            !kv__ts_ok(out->observed_ts))
            r.bad = true;
    }
    if (r.bad || r.p != r.end) /* truncated, or trailing bytes */
        goto cleanup;
    return RANGE_OK;
cleanup:
    base_free(rows);
    range_kv_response_free(out);
    return rc;
}

void range_kv_response_free(range_kv_response *resp)
{
    if (resp == NULL)
        return;
    /* on a decoded response the array and the descriptor's keys are ours */
    base_free((void *)resp->rows);
    range_descriptor_free(&resp->descriptor);
    range_descriptor_free(&resp->other);
    base_free((void *)resp->deps);
    base_free((void *)resp->cycle);
    memset(resp, 0, sizeof(*resp));
}

/* ---- closed timestamps (kv_int.h, "the side transport") ----------------------- */

#define KV_CLOSED_ENTRY_BYTES_MIN (3 + HLC_ENCODED_SIZE) /* three varints and a ts */

static bool kv__ts_ok(hlc_timestamp ts)
{
    return ts.wall_ns >= 0 && ts.logical >= 0 && ts.wall_ns < HLC_WALL_LIMIT_NS;
}

int range_closed_encode(const range_closed_entry *entries, size_t n, base_buf *out)
{
    if (out == NULL || n == 0 || n > RANGE_CLOSED_ENTRIES_MAX || entries == NULL)
        return RANGE_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (entries[i].range_id == 0 || !kv__ts_ok(entries[i].closed))
            return RANGE_ERR_INVALID;
    size_t len0 = out->len;
    int rc = base_buf_append_byte(out, RANGE_CLOSED_VERSION);
    rc |= range__put_varint(out, n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc |= range__put_varint(out, entries[i].range_id);
        rc |= range__put_varint(out, entries[i].term);
        rc |= kv__put_ts(out, entries[i].closed);
        rc |= range__put_varint(out, entries[i].last_index);
    }
    if (rc != 0) {
        out->len = len0;
        return RANGE_ERR_NOMEM;
    }
    return RANGE_OK;
}

int range_closed_decode(const uint8_t *data, size_t len, range_closed_entry **entries, size_t *n)
{
    kv__reader r = {data, data != NULL ? data + len : NULL, false}; /* NULL + 0 is UB */
    range_closed_entry *e = NULL; /* owner: this function until returned */
    *entries = NULL;
    *n = 0;
    if (data == NULL || len == 0 || range__get_u8(&r) != RANGE_CLOSED_VERSION)
        return RANGE_ERR_CORRUPT;
    uint64_t count = range__get_varint(&r);
    if (r.bad || count == 0 || count > RANGE_CLOSED_ENTRIES_MAX ||
        count > kv__left(&r) / KV_CLOSED_ENTRY_BYTES_MIN)
        return RANGE_ERR_CORRUPT;
    e = base_calloc((size_t)count, sizeof(*e));
    if (e == NULL)
        return RANGE_ERR_NOMEM;
    for (uint64_t i = 0; i < count && !r.bad; i++) {
        e[i].range_id = range__get_varint(&r);
        e[i].term = range__get_varint(&r);
        e[i].closed = kv__get_ts(&r);
        e[i].last_index = range__get_varint(&r);
        if (e[i].range_id == 0 || !kv__ts_ok(e[i].closed))
            r.bad = true;
    }
    if (r.bad || r.p != r.end) {
        base_free(e);
        return RANGE_ERR_CORRUPT;
    }
    *entries = e;
    *n = (size_t)count;
    return RANGE_OK;
}
