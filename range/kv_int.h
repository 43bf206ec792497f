/*
** range/kv_int.h: the wire form of KV requests between a range_router and a
** range_server (rpc method RANGE_RPC_METHOD_KV, or in-process through
** range_server_call). Internal to range/.
**
** One request addresses one range and carries one operation. The rpc
** response status is the range return code (RANGE_OK, RANGE_NOT_FOUND, or a
** RANGE_ERR_*); the payload is the encoded range_kv_response.
**
** Invariants:
**   - decoding never trusts a length or count: each is checked against the
**     bytes left and a named maximum; unknown versions/ops/flags and
**     trailing bytes are RANGE_ERR_CORRUPT.
**   - decoded byte fields point INTO the decoded buffer (borrowed: valid
**     while it is); arrays are owned by the decoded struct (…_free).
*/
#ifndef MERIDIAN_RANGE_KV_INT_H
#define MERIDIAN_RANGE_KV_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "range/range.h"

#define RANGE_KV_VERSION 1
#define RANGE_KV_SCAN_ROWS_MAX 100000        /* rows in one scan response */
#define RANGE_KV_SCAN_BYTES_DEFAULT (1u << 20) /* page size the router asks for */
#define RANGE_KV_SPANS_MAX (1u << 20)        /* read/delete spans in one commit */

typedef enum range_kv_op {
    RANGE_KV_GET = 1,
    RANGE_KV_SCAN = 2,
    RANGE_KV_COMMIT = 3,
    RANGE_KV_DESCRIBE = 4, /* answer with the replica's descriptor and lease state */
    RANGE_KV_VALIDATE = 5, /* a cross-range commit's reads in this range, checked and
                              recorded at its commit timestamp (docs/range.md) */
    RANGE_KV_ADMIN_SPLIT = 6, /* split the range at key into [start, key) and a new
                                 range new_range_id = [key, end) (docs/range.md,
                                 "Splits and addressing") */
    RANGE_KV_TRANSFER_LEASE = 7, /* hand the range's lease (Raft leadership) to
                                    target_node_id (docs/range.md, "Lease transfer") */
} range_kv_op;

typedef struct range_kv_request {
    uint8_t op;         /* range_kv_op */
    uint64_t range_id;
    hlc_timestamp read_ts;
    /* GET; ADMIN_SPLIT: the split key */
    const uint8_t *key;
    size_t key_len;
    /* ADMIN_SPLIT: the id of the right-hand range (!= 0, allocated by the
    ** caller from the replicated counter) */
    uint64_t new_range_id;
    /* TRANSFER_LEASE: the voter to take the lease (!= 0) */
    uint64_t target_node_id;
    /* SCAN: [start, end) (end_len 0: to the end of the range), one page:
    ** at most max_rows rows and about max_bytes bytes (at least one row). */
    const uint8_t *start;
    size_t start_len;
    const uint8_t *end;
    size_t end_len;
    bool reverse;
    uint32_t max_rows;
    uint32_t max_bytes;
    /* COMMIT: the commit timestamp the server must use, or RANGE_ERR_PUSHED
    ** (HLC_ZERO: the server picks it). VALIDATE: the timestamp the reads in
    ** read_spans must still hold at (> read_ts). */
    hlc_timestamp commit_ts;
    /* COMMIT: (txn_id, nonce) is the idempotence key, the same on every retry
    ** of this commit. writes sorted, no duplicates (as range_commit). */
    uint64_t txn_id;
    uint64_t nonce;
    const range_write *writes;   /* encode: borrowed; decode: owned array */
    size_t write_count;
    const range_span *delete_spans;
    size_t delete_span_count;
    const range_span *read_spans; /* COMMIT and VALIDATE */
    size_t read_span_count;
} range_kv_request;

typedef struct range_kv_row {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
} range_kv_row;

typedef struct range_kv_response {
    int32_t status;        /* RANGE_OK, RANGE_NOT_FOUND, RANGE_ERR_* */
    uint64_t leader_hint;  /* RANGE_ERR_NOT_LEADER: node id or 0 */
    /* GET (status RANGE_OK) */
    const uint8_t *value;
    size_t value_len;
    /* SCAN: the page, in scan order; more = the range holds further rows in
    ** the requested span after (before, for reverse) the last one returned. */
    const range_kv_row *rows; /* encode: borrowed; decode: owned array */
    size_t n_rows;
    bool more;
    /* COMMIT: RANGE_OK: commit_ts. RANGE_ERR_PUSHED: in commit_ts, the lowest
    ** timestamp the range would accept now. RANGE_ERR_CONFLICT (COMMIT and
    ** VALIDATE): the conflict. */
    hlc_timestamp commit_ts;
    uint8_t conflict_kind;    /* range_conflict_kind */
    const uint8_t *conflict_key;
    size_t conflict_key_len;
    hlc_timestamp conflict_ts;
    bool conflict_pending;
    /* RANGE_ERR_KEY_MISMATCH and DESCRIBE: the replica's descriptor.
    ** ADMIN_SPLIT (RANGE_OK): the left-hand range's. */
    bool has_descriptor;
    range_descriptor descriptor; /* decode: owned keys (range_kv_response_free) */
    /* RANGE_ERR_KEY_MISMATCH: the descriptor of another replica on the
    ** answering node that holds the key (after a split every replica of the
    ** left also hosts the right), so routing works while meta is stale.
    ** ADMIN_SPLIT (RANGE_OK): the right-hand range's. */
    bool has_other;
    range_descriptor other; /* decode: owned keys (range_kv_response_free) */
    /* DESCRIBE: lease state */
    bool lease_valid;
    uint64_t leader_id;
} range_kv_response;

/* Append the encoding to *out. RANGE_OK, RANGE_ERR_INVALID, RANGE_ERR_NOMEM. */
int range_kv_request_encode(const range_kv_request *req, base_buf *out);
/* RANGE_OK, RANGE_ERR_CORRUPT, RANGE_ERR_NOMEM. On error *out owns nothing.
** Release with range_kv_request_free. */
int range_kv_request_decode(const uint8_t *data, size_t len, range_kv_request *out);
void range_kv_request_free(range_kv_request *req);

int range_kv_response_encode(const range_kv_response *resp, base_buf *out);
int range_kv_response_decode(const uint8_t *data, size_t len, range_kv_response *out);
void range_kv_response_free(range_kv_response *resp);

#endif
