/*
** range/intent_int.h: the bytes of write intents and transaction records in a
** replica's raw keyspace (docs/txn.md; range/range.h, "Distributed
** transactions"), and the rule that decides, at apply, whether a record
** transition happens. Pure: no I/O. Internal to range/.
**
** Raw keys (range-local by key: the raw span of [a, b) is
** [PREFIX a, PREFIX b) for intents and [PREFIX esc(a), PREFIX esc(b)) for
** records):
**   RANGE_INTENT_PREFIX key                        -> intent value
**   RANGE_TXN_RECORD_PREFIX esc(anchor) txn_id(8 BE) -> record value
**   esc(): every 0x00 byte becomes 0x00 0xFF, then the terminator 0x00 0x01.
**   Order-preserving (a < b <=> esc(a) < esc(b)) and prefix-free (no esc(a)
**   is a proper prefix of another), so records sort by anchor, then id.
**
** Intent value:
**   version (1 byte, RANGE__INTENT_VERSION) | flags (1 byte: bit0 tombstone)
**   | txn_id (8 BE, != 0) | nonce (8 BE) | ts (hlc_encode, 12) |
**   anchor_len (varint, 1..STORAGE_KEY_SIZE_MAX) | anchor |
**   value_len (varint, <= STORAGE_VALUE_SIZE_MAX; 0 for a tombstone) | value
** Record value (RANGE__RECORD_SIZE bytes):
**   version (1 byte, RANGE__RECORD_VERSION) | status (1 byte) | txn_id (8 BE,
**   != 0) | priority (8 BE, two's complement) | commit_ts (12) | heartbeat (12)
**   | final_wall (8 BE, >= 0: the leaseholder's wall clock, ns, when the
**   record became COMMITTED or ABORTED; 0 unknown or PENDING)
** Version 1 (RANGE__RECORD_SIZE_V1 bytes, no final_wall) is still decoded,
** with final_wall 0. Version 3 = version 2's bytes (with 3 as the version)
** followed by the PARTICIPANT SPANS section (a COMMITTED record's: where
** its intents may be; docs/txn.md 6.1, the sweep of COMMITTED records):
**   n (varint, 1..RANGE_TXN_RECORD_SPANS_MAX) | n x { flags (1 byte: bit0
**   point, bit1 open end) | bytes start | bytes end (only when neither) }
**   bytes = varint length | bytes; a point's start and an end non-empty;
**   the section at most RANGE__RECORD_SPANS_BYTES_MAX bytes.
** Encoders write version 2 when the record has no spans (every record
** but a COMMITTED one that END_TXN gave spans), else version 3.
**
** Invariants: decoders read only inside their input and never trust a
** length: a bad version, flag, status, length, id 0 or trailing bytes is
** RANGE_ERR_CORRUPT. Encoders refuse (RANGE_ERR_INVALID) what the decoders
** would reject. Decoded byte fields point INTO the input (borrowed).
*/
#ifndef MERIDIAN_RANGE_INTENT_INT_H
#define MERIDIAN_RANGE_INTENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "range/range.h"

#define RANGE__INTENT_VERSION 1
#define RANGE__RECORD_VERSION 2
#define RANGE__RECORD_VERSION_SPANS 3 /* version 2 + the participant spans */
#define RANGE__RECORD_SPANS_BYTES_MAX (128 * 1024 + 64) /* the spans section: two keys
                                             of STORAGE_KEY_SIZE_MAX fit (one span
                                             always can), RANGE_TXN_RECORD_SPANS_MAX
                                             short ones too */
#define RANGE__RECORD_SIZE_V1 (1 + 1 + 8 + 8 + HLC_ENCODED_SIZE + HLC_ENCODED_SIZE)
#define RANGE__RECORD_SIZE (RANGE__RECORD_SIZE_V1 + 8)

typedef struct range__intent {
    uint64_t txn_id;        /* the holder, != 0 */
    uint64_t nonce;         /* the PREPARE that laid it */
    hlc_timestamp ts;       /* its prepare timestamp */
    const uint8_t *anchor;  /* the holder's record key (borrowed) */
    size_t anchor_len;
    bool tombstone;
    const uint8_t *value;   /* borrowed; NULL/0 for a tombstone */
    size_t value_len;
} range__intent;

/* Append the encoding to *out. RANGE_OK, RANGE_ERR_INVALID, RANGE_ERR_NOMEM
** (*out then as it was). */
int range__intent_encode(const range__intent *in, base_buf *out);
/* RANGE_OK or RANGE_ERR_CORRUPT. */
int range__intent_decode(const uint8_t *data, size_t len, range__intent *out);

typedef struct range__record {
    range_txn_status status;
    uint64_t txn_id;         /* != 0 */
    int64_t priority;
    hlc_timestamp commit_ts; /* COMMITTED: the commit timestamp; else HLC_ZERO */
    hlc_timestamp heartbeat; /* the last sign of life (the leaseholder's HLC) */
    int64_t final_wall_ns;   /* when it became final (wall ns; 0: unknown, or
                                PENDING): the age sweep's clock (docs/txn.md
                                6.1) */
    const uint8_t *spans;    /* the participant spans section (version 3),
                                borrowed (from the decoded input); NULL: none */
    size_t spans_len;
} range__record;

/* Version 2 only: the spans are not written. RANGE_OK or RANGE_ERR_INVALID
** (status, id 0, negative final_wall_ns). */
int range__record_encode(const range__record *rec, uint8_t out[RANGE__RECORD_SIZE]);
/* Append version 2, or version 3 when rec->spans_len > 0 (the section is
** checked). RANGE_OK, RANGE_ERR_INVALID, RANGE_ERR_NOMEM (*out as it was). */
int range__record_encode_buf(const range__record *rec, base_buf *out);
/* RANGE_OK or RANGE_ERR_CORRUPT. out->spans points into data. */
int range__record_decode(const uint8_t *data, size_t len, range__record *out);

/* The participant spans section of in[0..n) into out (after a reset):
** sorted by start, overlapping and touching spans merged, then neighbours
** merged into covering spans (k consecutive ones at a time, k as small as
** makes at most RANGE_TXN_RECORD_SPANS_MAX spans of at most
** RANGE__RECORD_SPANS_BYTES_MAX bytes). Covering more is safe: a RESOLVE
** touches only its txn's intents. RANGE_OK, RANGE_ERR_INVALID (n 0, a bad
** span), RANGE_ERR_TOO_LARGE (even one span does not fit), RANGE_ERR_NOMEM. */
int range__record_spans_build(const range_span *in, size_t n, base_buf *out);
/* Decode a spans section: *n spans into out (capacity
** RANGE_TXN_RECORD_SPANS_MAX; NULL: only checked), borrowed from data.
** RANGE_OK or RANGE_ERR_CORRUPT. */
int range__record_spans_decode(const uint8_t *data, size_t len, range_span *out, size_t *n);

/* Raw keys, into out after a reset. RANGE_OK, RANGE_ERR_INVALID (empty or
** too long key), RANGE_ERR_NOMEM. */
int range__intent_key(const uint8_t *key, size_t key_len, base_buf *out);
int range__record_key(const uint8_t *anchor, size_t anchor_len, uint64_t txn_id, base_buf *out);
/* The user key of an intent key (borrowed from raw): false when raw is not
** an intent key of a non-empty user key. */
bool range__intent_key_user(const uint8_t *raw, size_t raw_len, const uint8_t **key,
                            size_t *key_len);
/* The anchor (into anchor after a reset) and id of a record key. RANGE_OK,
** RANGE_ERR_CORRUPT (not a record key), RANGE_ERR_NOMEM. */
int range__record_key_decode(const uint8_t *raw, size_t raw_len, base_buf *anchor,
                             uint64_t *txn_id);
/* The raw span of the intents of the user keys in sp (a point: the intent
** key; an open end: up to the end of the intent keyspace), into start/end
** (reset first). RANGE_OK, RANGE_ERR_NOMEM. */
int range__intent_span(const range_span *sp, base_buf *start, base_buf *end);

/* Is the raw key of an intent or record inside d (by its user key or
** anchor)? *inside false for any other raw key. RANGE_OK, RANGE_ERR_NOMEM. */
int range__raw_key_inside(const range_descriptor *d, const uint8_t *raw, size_t raw_len,
                          bool *inside);

/* The apply-time rule of a conditional record write (range_raw_write kinds
** RANGE_RAW_RECORD and RANGE_RAW_RECORD_IF_HEARTBEAT): should `next` replace
** `old` (NULL: no record)? A final record (COMMITTED, ABORTED) never changes;
** absent or PENDING may become anything; IF_HEARTBEAT (a pusher's abort)
** also needs old's heartbeat <= next's (nobody heartbeat since the pusher
** looked). */
bool range__record_transition_ok(const range__record *old, const range__record *next,
                                 bool if_heartbeat);

#endif
