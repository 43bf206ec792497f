/*
** encoding/: order-preserving keys for the key space.
**
** A row key is  table_id | index_id | column values...  where each part is
** encoded so that memcmp order of two keys equals SQL ORDER BY order of the
** tuples (SQLite's order: NULL < numbers < TEXT < BLOB; INTEGER and REAL
** compare by numeric value across types, 1 = 1.0 < 1.5 < 2; TEXT by BINARY
** collation; BLOB by memcmp). Keys are self-delimiting: a prefix of columns
** is a byte prefix of the key, so prefix scans work.
**
** Lives beneath range/ (not in sql/) because range/ must find row
** boundaries for splits and print keys as SQL values (SHOW RANGES).
*/
#ifndef MERIDIAN_ENCODING_H
#define MERIDIAN_ENCODING_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

typedef enum enc_type {
    ENC_NULL = 0,
    ENC_INTEGER = 1,
    ENC_REAL = 2,
    ENC_TEXT = 3,
    ENC_BLOB = 4,
} enc_type;

/* A borrowed SQL value: bytes point into someone else's memory. */
typedef struct enc_value {
    enc_type type;
    union {
        int64_t i;
        double r;
        struct {
            const uint8_t *data;
            size_t len;
        } bytes; /* TEXT (UTF-8, no NUL needed) and BLOB */
    } u;
} enc_value;

enum {
    ENC_OK = 0,
    ENC_ERR_NOMEM = -2001,
    ENC_ERR_CORRUPT = -2002, /* malformed key bytes */
    ENC_ERR_RANGE = -2003,   /* more column values than the caller's array */
};

/* Limits. A number's encoding never exceeds ENC_NUMBER_BYTES_MAX; a TEXT or
** BLOB of n bytes encodes to at most 2n + 3 bytes. Keys have no length limit
** here (storage/ and range/ bound them); sizes that would overflow size_t
** fail with ENC_ERR_NOMEM. */
#define ENC_PREFIX_BYTES 8
#define ENC_NUMBER_BYTES_MAX 12

/* Append the table/index prefix (fixed-width, big-endian). */
int enc_key_prefix(base_buf *out, uint32_t table_id, uint32_t index_id);
/* Append one column value in order-preserving form. A REAL NaN is encoded
** as NULL (SQLite stores NaN as NULL); -0.0 encodes like 0, and an integral
** REAL exactly like the equal INTEGER (1.0 and 1 give identical bytes).
** On error out is unchanged (appends are all-or-nothing). */
int enc_key_append(base_buf *out, const enc_value *v);

/* Decode the prefix; *consumed = bytes read (ENC_PREFIX_BYTES).
** ENC_ERR_CORRUPT if len < ENC_PREFIX_BYTES. */
int enc_key_decode_prefix(const uint8_t *key, size_t len, uint32_t *table_id,
                          uint32_t *index_id, size_t *consumed);
/* Decode one column value starting at key; *consumed = bytes read. Numbers
** come back as ENC_INTEGER when integral and within int64, else ENC_REAL.
** TEXT/BLOB bytes are unescaped into scratch (owner: caller), which
** out->u.bytes points into.
** Lifetime: out->u.bytes.data stays valid until scratch is next grown, reset
** or freed; to decode several columns with one scratch, reserve the key's
** length first (unescaped bytes never exceed it) or use
** enc_key_decode_values. An empty TEXT/BLOB gets a non-NULL data pointer
** (to a static empty byte), so sqlite3_result_text never sees NULL.
** Only the canonical encoding is accepted: anything enc_key_append would not
** produce returns ENC_ERR_CORRUPT, so decode-then-encode gives the same bytes.
** On error scratch->len is unchanged. */
int enc_key_decode_value(const uint8_t *key, size_t len, base_buf *scratch,
                         enc_value *out, size_t *consumed);

/* Decode every column value of key[0..len) (the part after the 8-byte
** prefix) into values[0..*count). Reserves len bytes of scratch up front so
** all returned pointers stay valid together (same lifetime rule as above).
** ENC_ERR_RANGE if there are more than values_max values. */
int enc_key_decode_values(const uint8_t *key, size_t len, base_buf *scratch,
                          enc_value *values, size_t values_max, size_t *count);

/* The smallest key greater than every key with this prefix (for scans of a
** table or index): appends to out. A prefix of all 0xff (or an empty one)
** has no successor: returns ENC_ERR_CORRUPT. */
int enc_prefix_end(const uint8_t *prefix, size_t len, base_buf *out);

/* The smallest key greater than key itself (key followed by 0x00): appends
** to out. For resuming a scan after the last key returned. */
int enc_key_next(const uint8_t *key, size_t len, base_buf *out);

/* Human-readable form, e.g. "/104/1/42/'ada'", for logs and SHOW RANGES.
** Appends to out (no NUL terminator is counted in out->len, but one is
** written after it). Never fails on bad bytes: the empty key prints "/Min";
** bytes that do not decode (e.g. an enc_prefix_end result) print as
** "/?<hex>" after what did decode. TEXT prints quoted ('it''s'), control
** bytes and backslash as \xNN; BLOB as x'0aff'; REAL with 17 significant
** digits at most (shortest that round-trips), infinities as Inf/-Inf.
** Returns 0 or ENC_ERR_NOMEM. */
int enc_key_format(const uint8_t *key, size_t len, base_buf *out);

/* Compare two values in SQLite's ORDER BY order (BINARY collation):
** negative, 0 or positive. Agrees with memcmp of their encodings. */
int enc_value_compare(const enc_value *a, const enc_value *b);

#endif
