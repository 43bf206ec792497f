/*
** range/codec_int.h: the byte-level pieces every range/ codec shares (Raft
** messages in replica_codec.c, KV requests in kv_codec.c, descriptors in
** descriptor.c): LEB128 varints and a bounds-checked reader. Internal to
** range/.
**
** Invariants: a reader never reads past `end`; the first short read or
** malformed varint sets `bad` and every later call returns 0/NULL, so a
** decoder checks `bad` once at the end. A varint longer than 10 bytes or
** carrying bits beyond 64 is malformed.
*/
#ifndef MERIDIAN_RANGE_CODEC_INT_H
#define MERIDIAN_RANGE_CODEC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

#define RANGE__VARINT_SIZE_MAX 10

static inline int range__put_varint(base_buf *b, uint64_t v)
{
    uint8_t tmp[RANGE__VARINT_SIZE_MAX];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    return base_buf_append(b, tmp, n);
}

typedef struct range__reader {
    const uint8_t *p;
    const uint8_t *end;
    bool bad;
} range__reader;

static inline uint8_t range__get_u8(range__reader *r)
{
    if (r->bad || r->p >= r->end) {
        r->bad = true;
        return 0;
    }
    return *r->p++;
}

static inline uint64_t range__get_varint(range__reader *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->bad || r->p >= r->end) {
            r->bad = true;
            return 0;
        }
        uint8_t c = *r->p++;
        if (shift == 63 && (c & 0x7e) != 0) { /* bits beyond 64 */
            r->bad = true;
            return 0;
        }
        v |= (uint64_t)(c & 0x7f) << shift;
        if ((c & 0x80) == 0)
            return v;
    }
    r->bad = true;
    return 0;
}

/* Borrow n bytes; NULL (and bad) when fewer remain. */
static inline const uint8_t *range__get_raw(range__reader *r, uint64_t n)
{
    if (r->bad || n > (uint64_t)(r->end - r->p)) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

#endif
