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
};

/* Append the table/index prefix (fixed-width, big-endian). */
int enc_key_prefix(base_buf *out, uint32_t table_id, uint32_t index_id);
/* Append one column value in order-preserving form. */
int enc_key_append(base_buf *out, const enc_value *v);

/* Decode the prefix; *consumed = bytes read. */
int enc_key_decode_prefix(const uint8_t *key, size_t len, uint32_t *table_id,
                          uint32_t *index_id, size_t *consumed);
/* Decode one column value starting at key; *consumed = bytes read. Numbers
** come back as ENC_INTEGER when integral and within int64, else ENC_REAL.
** TEXT/BLOB bytes are unescaped into scratch (owner: caller), which
** out->u.bytes points into. */
int enc_key_decode_value(const uint8_t *key, size_t len, base_buf *scratch,
                         enc_value *out, size_t *consumed);

/* The smallest key greater than every key with this prefix (for scans of a
** table or index): appends to out. A prefix of all 0xff has no successor:
** returns ENC_ERR_CORRUPT. */
int enc_prefix_end(const uint8_t *prefix, size_t len, base_buf *out);

/* Human-readable form, e.g. "/104/1/42/'ada'", for logs and SHOW RANGES. */
int enc_key_format(const uint8_t *key, size_t len, base_buf *out);

#endif
