/*
** encoding/encoding.c: order-preserving keys.
**
** FORMAT
**
** A key is  prefix | column*.
**
**   prefix  = table_id (4 bytes, big-endian) | index_id (4 bytes, big-endian)
**
** Each column starts with a tag byte; the tags are ordered like SQLite's
** type classes (NULL < numbers < TEXT < BLOB), and the numbers are split by
** sign so that the tag alone orders most pairs:
**
**   0x05  NULL                      (tag only)
**   0x10  -Infinity                 (tag only)
**   0x11  negative finite number    | ~exponent(2) | ~mantissa(1..9)
**   0x12  zero (0, 0.0 and -0.0)    (tag only)
**   0x13  positive finite number    |  exponent(2) |  mantissa(1..9)
**   0x14  +Infinity                 (tag only)
**   0x20  TEXT                      | escaped bytes | 0x00 0x01
**   0x30  BLOB                      | escaped bytes | 0x00 0x01
**
** Numbers. Every nonzero finite INTEGER or REAL is an exact binary fraction
**     |v| = 2^E * 1.f      (f = up to 63 bits after the leading one)
** An int64 has E in [0, 63] and at most 62 bits in f (|INT64_MIN| = 2^63 has
** none); a double has E in [-1074, 1023] (subnormals included) and at most
** 52 bits in f. Both map exactly, so 1 and 1.0 give the same (E, f) and any
** int/real pair compares exactly, as sqlite3IntFloatCompare does.
**   exponent = E + ENC__EXP_BIAS as 2 bytes big-endian (always in 26..2123).
**   mantissa = f, most significant first, 7 bits per byte:
**              byte = bits << 1 | more, where more = 1 if another byte
**              follows. Trailing zero bits are dropped; the last byte has
**              nonzero bits unless it is the only byte (f == 0: one 0x00).
**   Comparing two mantissas is decided inside their common length (at equal
**   bits, "ends here" (more = 0) sorts before "continues" with nonzero bits),
**   so the mantissa is self-delimiting and orders by value. For negative
**   numbers exponent and mantissa bytes are inverted (~b), which reverses
**   that order: larger magnitude sorts first.
**
** TEXT and BLOB. Bytes are copied with 0x00 written as 0x00 0xFF, then the
** terminator 0x00 0x01. So the terminator sorts below any continuation (a
** string sorts before its extensions), a string never contains its own
** terminator, and memcmp of encodings equals memcmp-then-length of the raw
** bytes (SQLite's BINARY collation, and BLOB order).
**
** INVARIANTS
**   - memcmp(enc(a), enc(b)) has the sign of SQLite's ORDER BY comparison of
**     the tuples a and b (same arity), and is 0 exactly when they are equal.
**   - The encoding of a tuple's first k columns is a byte prefix of the
**     encoding of the whole tuple (keys are self-delimiting).
**   - Decoding accepts exactly the byte strings encoding produces (canonical
**     form); everything else is ENC_ERR_CORRUPT. Decoding never reads outside
**     key[0..len).
**   - A REAL NaN is encoded as NULL, as SQLite stores it.
*/
#include "encoding/encoding.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ENC__TAG_NULL = 0x05,
    ENC__TAG_NEG_INF = 0x10,
    ENC__TAG_NEG = 0x11,
    ENC__TAG_ZERO = 0x12,
    ENC__TAG_POS = 0x13,
    ENC__TAG_POS_INF = 0x14,
    ENC__TAG_TEXT = 0x20,
    ENC__TAG_BLOB = 0x30,
};

#define ENC__EXP_BIAS 1100
#define ENC__EXP_MIN (-1074) /* smallest subnormal double: 2^-1074 */
#define ENC__EXP_MAX 1023    /* largest double exponent */
#define ENC__MANTISSA_BYTES_MAX 9 /* ceil(63 / 7) */
#define ENC__BIT63 ((uint64_t)1 << 63)

static const uint8_t enc__empty[1] = {0};

/* A nonzero finite number as sign * 2^(exp - 63) * sig, sig's bit 63 set. */
typedef struct enc__number {
    int negative;
    int exp;
    uint64_t sig;
} enc__number;

static enc__number enc__number_from_int(int64_t i) {
    assert(i != 0);
    enc__number n;
    n.negative = i < 0;
    uint64_t m = n.negative ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
    int lz = __builtin_clzll(m);
    n.exp = 63 - lz;
    n.sig = m << lz;
    return n;
}

static enc__number enc__number_from_double(double d) {
    assert(d != 0 && isfinite(d));
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    enc__number n;
    n.negative = (int)(bits >> 63);
    int biased = (int)((bits >> 52) & 0x7ff);
    uint64_t mant = bits & (((uint64_t)1 << 52) - 1);
    if (biased == 0) { /* subnormal: mant * 2^-1074, mant != 0 */
        int lz = __builtin_clzll(mant);
        n.exp = (63 - lz) - 1074;
        n.sig = mant << lz;
    } else {
        n.exp = biased - 1023;
        n.sig = ENC__BIT63 | (mant << 11);
    }
    return n;
}

/* Writes the number (tag included) into buf; returns the length. */
static size_t enc__number_write(const enc__number *n, uint8_t buf[ENC_NUMBER_BYTES_MAX]) {
    uint8_t flip = n->negative ? 0xff : 0x00;
    unsigned e = (unsigned)(n->exp + ENC__EXP_BIAS);
    size_t k = 0;
    buf[k++] = n->negative ? ENC__TAG_NEG : ENC__TAG_POS;
    buf[k++] = (uint8_t)((e >> 8) ^ flip);
    buf[k++] = (uint8_t)((e & 0xff) ^ flip);
    uint64_t frac = n->sig << 1; /* bits after the leading one, top-aligned */
    int more;
    do {
        uint8_t bits7 = (uint8_t)(frac >> 57);
        frac <<= 7;
        more = frac != 0;
        buf[k++] = (uint8_t)(((bits7 << 1) | more) ^ flip);
    } while (more);
    assert(k <= ENC_NUMBER_BYTES_MAX);
    return k;
}

/* Encodes a non-TEXT/BLOB value (tag included) into buf; returns length. */
static size_t enc__scalar_write(const enc_value *v, uint8_t buf[ENC_NUMBER_BYTES_MAX]) {
    enc__number n;
    switch (v->type) {
    case ENC_NULL:
        buf[0] = ENC__TAG_NULL;
        return 1;
    case ENC_INTEGER:
        if (v->u.i == 0) {
            buf[0] = ENC__TAG_ZERO;
            return 1;
        }
        n = enc__number_from_int(v->u.i);
        return enc__number_write(&n, buf);
    case ENC_REAL:
        if (isnan(v->u.r)) {
            buf[0] = ENC__TAG_NULL;
            return 1;
        }
        if (v->u.r == 0) {
            buf[0] = ENC__TAG_ZERO;
            return 1;
        }
        if (isinf(v->u.r)) {
            buf[0] = v->u.r < 0 ? ENC__TAG_NEG_INF : ENC__TAG_POS_INF;
            return 1;
        }
        n = enc__number_from_double(v->u.r);
        return enc__number_write(&n, buf);
    default:
        assert(!"enc__scalar_write: not a scalar type");
        return 0;
    }
}

int enc_key_prefix(base_buf *out, uint32_t table_id, uint32_t index_id) {
    uint8_t b[ENC_PREFIX_BYTES] = {
        (uint8_t)(table_id >> 24), (uint8_t)(table_id >> 16), (uint8_t)(table_id >> 8),
        (uint8_t)table_id,         (uint8_t)(index_id >> 24), (uint8_t)(index_id >> 16),
        (uint8_t)(index_id >> 8),  (uint8_t)index_id,
    };
    return base_buf_append(out, b, sizeof b) == 0 ? ENC_OK : ENC_ERR_NOMEM;
}

static int enc__append_bytes(base_buf *out, uint8_t tag, const uint8_t *data, size_t len) {
    assert(data != NULL || len == 0);
    size_t zeros = 0;
    for (const uint8_t *p = data, *end = data + len; p < end; p++) {
        p = memchr(p, 0, (size_t)(end - p));
        if (p == NULL) break;
        zeros++;
    }
    /* len + zeros + 3 must not overflow. */
    if (len > SIZE_MAX - 3 - zeros) return ENC_ERR_NOMEM;
    if (base_buf_reserve(out, len + zeros + 3) != 0) return ENC_ERR_NOMEM;
    uint8_t *w = out->data + out->len;
    *w++ = tag;
    const uint8_t *p = data, *end = data + len;
    while (p < end) {
        const uint8_t *z = memchr(p, 0, (size_t)(end - p));
        size_t chunk = z ? (size_t)(z - p) : (size_t)(end - p);
        memcpy(w, p, chunk);
        w += chunk;
        p += chunk;
        if (z) {
            *w++ = 0x00;
            *w++ = 0xff;
            p++;
        }
    }
    *w++ = 0x00;
    *w++ = 0x01;
    assert((size_t)(w - out->data) == out->len + len + zeros + 3);
    out->len += len + zeros + 3;
    return ENC_OK;
}

int enc_key_append(base_buf *out, const enc_value *v) {
    switch (v->type) {
    case ENC_TEXT:
        return enc__append_bytes(out, ENC__TAG_TEXT, v->u.bytes.data, v->u.bytes.len);
    case ENC_BLOB:
        return enc__append_bytes(out, ENC__TAG_BLOB, v->u.bytes.data, v->u.bytes.len);
    case ENC_NULL:
    case ENC_INTEGER:
    case ENC_REAL: {
        uint8_t buf[ENC_NUMBER_BYTES_MAX];
        size_t n = enc__scalar_write(v, buf);
        return base_buf_append(out, buf, n) == 0 ? ENC_OK : ENC_ERR_NOMEM;
    }
    }
    assert(!"enc_key_append: bad enc_type");
    return ENC_ERR_CORRUPT;
}

int enc_key_decode_prefix(const uint8_t *key, size_t len, uint32_t *table_id,
                          uint32_t *index_id, size_t *consumed) {
    if (len < ENC_PREFIX_BYTES) return ENC_ERR_CORRUPT;
    *table_id = (uint32_t)key[0] << 24 | (uint32_t)key[1] << 16 | (uint32_t)key[2] << 8 | key[3];
    *index_id = (uint32_t)key[4] << 24 | (uint32_t)key[5] << 16 | (uint32_t)key[6] << 8 | key[7];
    *consumed = ENC_PREFIX_BYTES;
    return ENC_OK;
}

/* Decodes exponent and mantissa after a NEG/POS tag at key[0]. */
static int enc__number_decode(const uint8_t *key, size_t len, enc_value *out, size_t *consumed) {
    int negative = key[0] == ENC__TAG_NEG;
    uint8_t flip = negative ? 0xff : 0x00;
    size_t k = 1;
    if (len < k + 2) return ENC_ERR_CORRUPT;
    int exp = (int)(((unsigned)(key[1] ^ flip) << 8) | (key[2] ^ flip)) - ENC__EXP_BIAS;
    k += 2;
    if (exp < ENC__EXP_MIN || exp > ENC__EXP_MAX) return ENC_ERR_CORRUPT;
    uint64_t frac = 0;
    for (int i = 0;; i++) {
        if (i == ENC__MANTISSA_BYTES_MAX || k >= len) return ENC_ERR_CORRUPT;
        uint8_t b = key[k++] ^ flip;
        uint64_t bits7 = b >> 1;
        frac |= bits7 << (57 - 7 * i);
        if ((b & 1) == 0) {
            if (bits7 == 0 && i > 0) return ENC_ERR_CORRUPT; /* not canonical */
            break;
        }
    }
    /* frac's bit 0 is always 0 (63 bits in 9 bytes), so nothing is lost. */
    uint64_t sig = ENC__BIT63 | (frac >> 1);

    /* INTEGER when integral and within int64. */
    if (exp >= 0 && exp <= 63) {
        int shift = 63 - exp;
        uint64_t low = shift == 0 ? 0 : sig & (((uint64_t)1 << shift) - 1);
        if (low == 0) {
            uint64_t m = sig >> shift;
            if (exp <= 62) {
                out->type = ENC_INTEGER;
                out->u.i = negative ? -(int64_t)m : (int64_t)m;
                *consumed = k;
                return ENC_OK;
            }
            if (negative && m == ENC__BIT63) {
                out->type = ENC_INTEGER;
                out->u.i = INT64_MIN;
                *consumed = k;
                return ENC_OK;
            }
        }
    }
    /* Else a REAL, which must be exactly representable as a double. */
    uint64_t bits;
    if (exp >= -1022) {
        if ((sig & 0x7ff) != 0) return ENC_ERR_CORRUPT;
        bits = (uint64_t)(exp + 1023) << 52 | ((sig >> 11) & (((uint64_t)1 << 52) - 1));
    } else {
        int shift = -1011 - exp; /* 12..63: sig * 2^(exp-63) = mant * 2^-1074 */
        if ((sig & (((uint64_t)1 << shift) - 1)) != 0) return ENC_ERR_CORRUPT;
        bits = sig >> shift;
    }
    if (negative) bits |= ENC__BIT63;
    out->type = ENC_REAL;
    memcpy(&out->u.r, &bits, sizeof bits);
    *consumed = k;
    return ENC_OK;
}

static int enc__bytes_decode(const uint8_t *key, size_t len, base_buf *scratch, enc_value *out,
                             size_t *consumed) {
    size_t start = scratch->len;
    size_t k = 1;
    int rc = ENC_ERR_CORRUPT;
    for (;;) {
        if (k >= len) goto fail;
        const uint8_t *z = memchr(key + k, 0, len - k);
        if (z == NULL) goto fail;
        size_t chunk = (size_t)(z - (key + k));
        if (base_buf_append(scratch, key + k, chunk) != 0) {
            rc = ENC_ERR_NOMEM;
            goto fail;
        }
        k += chunk + 1;
        if (k >= len) goto fail;
        uint8_t esc = key[k++];
        if (esc == 0x01) break;
        if (esc != 0xff) goto fail;
        if (base_buf_append_byte(scratch, 0x00) != 0) {
            rc = ENC_ERR_NOMEM;
            goto fail;
        }
    }
    out->type = key[0] == ENC__TAG_TEXT ? ENC_TEXT : ENC_BLOB;
    out->u.bytes.len = scratch->len - start;
    out->u.bytes.data = out->u.bytes.len ? scratch->data + start : enc__empty;
    *consumed = k;
    return ENC_OK;
fail:
    scratch->len = start;
    return rc;
}

int enc_key_decode_value(const uint8_t *key, size_t len, base_buf *scratch, enc_value *out,
                         size_t *consumed) {
    if (len == 0) return ENC_ERR_CORRUPT;
    switch (key[0]) {
    case ENC__TAG_NULL:
        out->type = ENC_NULL;
        *consumed = 1;
        return ENC_OK;
    case ENC__TAG_ZERO:
        out->type = ENC_INTEGER;
        out->u.i = 0;
        *consumed = 1;
        return ENC_OK;
    case ENC__TAG_NEG_INF:
    case ENC__TAG_POS_INF:
        out->type = ENC_REAL;
        out->u.r = key[0] == ENC__TAG_NEG_INF ? -INFINITY : INFINITY;
        *consumed = 1;
        return ENC_OK;
    case ENC__TAG_NEG:
    case ENC__TAG_POS:
        return enc__number_decode(key, len, out, consumed);
    case ENC__TAG_TEXT:
    case ENC__TAG_BLOB:
        return enc__bytes_decode(key, len, scratch, out, consumed);
    default:
        return ENC_ERR_CORRUPT;
    }
}

int enc_key_decode_values(const uint8_t *key, size_t len, base_buf *scratch, enc_value *values,
                          size_t values_max, size_t *count) {
    size_t start = scratch->len;
    size_t k = 0, n = 0;
    int rc = ENC_OK;
    if (base_buf_reserve(scratch, len) != 0) return ENC_ERR_NOMEM;
    while (k < len) { /* bounded: each value consumes at least one byte */
        if (n == values_max) {
            rc = ENC_ERR_RANGE;
            goto fail;
        }
        size_t used = 0;
        rc = enc_key_decode_value(key + k, len - k, scratch, &values[n], &used);
        if (rc != ENC_OK) goto fail;
        assert(used > 0 && used <= len - k);
        k += used;
        n++;
    }
    *count = n;
    return ENC_OK;
fail:
    scratch->len = start;
    return rc;
}

int enc_prefix_end(const uint8_t *prefix, size_t len, base_buf *out) {
    size_t n = len;
    while (n > 0 && prefix[n - 1] == 0xff) n--;
    if (n == 0) return ENC_ERR_CORRUPT;
    if (base_buf_reserve(out, n) != 0) return ENC_ERR_NOMEM;
    memcpy(out->data + out->len, prefix, n);
    out->data[out->len + n - 1]++;
    out->len += n;
    return ENC_OK;
}

int enc_key_next(const uint8_t *key, size_t len, base_buf *out) {
    if (len == SIZE_MAX || base_buf_reserve(out, len + 1) != 0) return ENC_ERR_NOMEM;
    if (len) memcpy(out->data + out->len, key, len);
    out->data[out->len + len] = 0x00;
    out->len += len + 1;
    return ENC_OK;
}

/* ---- formatting ---------------------------------------------------------- */

static int enc__format_hex(base_buf *out, const uint8_t *p, size_t n) {
    static const char hex[] = "0123456789abcdef";
    if (n > SIZE_MAX / 2 || base_buf_reserve(out, 2 * n) != 0) return ENC_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        out->data[out->len++] = (uint8_t)hex[p[i] >> 4];
        out->data[out->len++] = (uint8_t)hex[p[i] & 15];
    }
    return ENC_OK;
}

static int enc__format_real(base_buf *out, double r) {
    if (isinf(r)) return base_buf_printf(out, "%s", r < 0 ? "-Inf" : "Inf") ? ENC_ERR_NOMEM : 0;
    char tmp[40];
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(tmp, sizeof tmp, "%.*g", precision, r);
        if (precision == 17 || strtod(tmp, NULL) == r) break;
    }
    /* Keep REAL visibly REAL ("2.0", not "2"); decoded integral reals are
    ** outside int64 and print with an exponent anyway. */
    if (strpbrk(tmp, ".eEn") == NULL) strcat(tmp, ".0");
    return base_buf_printf(out, "%s", tmp) ? ENC_ERR_NOMEM : 0;
}

static int enc__format_value(base_buf *out, const enc_value *v) {
    int rc = 0;
    switch (v->type) {
    case ENC_NULL:
        rc = base_buf_printf(out, "NULL");
        break;
    case ENC_INTEGER:
        rc = base_buf_printf(out, "%lld", (long long)v->u.i);
        break;
    case ENC_REAL:
        return enc__format_real(out, v->u.r);
    case ENC_TEXT:
        rc = base_buf_append_byte(out, '\'');
        for (size_t i = 0; rc == 0 && i < v->u.bytes.len; i++) {
            uint8_t c = v->u.bytes.data[i];
            if (c == '\'')
                rc = base_buf_append(out, "''", 2);
            else if (c < 0x20 || c == 0x7f || c == '\\')
                rc = base_buf_printf(out, "\\x%02x", c);
            else
                rc = base_buf_append_byte(out, c);
        }
        if (rc == 0) rc = base_buf_append_byte(out, '\'');
        break;
    case ENC_BLOB:
        rc = base_buf_append(out, "x'", 2);
        if (rc == 0 && enc__format_hex(out, v->u.bytes.data, v->u.bytes.len) != 0) rc = -1;
        if (rc == 0) rc = base_buf_append_byte(out, '\'');
        break;
    }
    return rc == 0 ? ENC_OK : ENC_ERR_NOMEM;
}

int enc_key_format(const uint8_t *key, size_t len, base_buf *out) {
    size_t start = out->len;
    base_buf scratch = {0};
    uint32_t table_id, index_id;
    size_t k = 0;
    int rc = ENC_OK;
    if (len == 0) {
        rc = base_buf_printf(out, "/Min") ? ENC_ERR_NOMEM : ENC_OK;
        goto cleanup;
    }
    if (enc_key_decode_prefix(key, len, &table_id, &index_id, &k) != ENC_OK) {
        k = 0; /* too short for a prefix: all raw */
    } else if (base_buf_printf(out, "/%u/%u", table_id, index_id) != 0) {
        goto nomem;
    }
    while (k > 0 && k < len) { /* bounded: each value consumes at least one byte */
        enc_value v;
        size_t used = 0;
        base_buf_reset(&scratch);
        int drc = enc_key_decode_value(key + k, len - k, &scratch, &v, &used);
        if (drc == ENC_ERR_NOMEM) goto nomem;
        if (drc != ENC_OK) break;
        if (base_buf_append_byte(out, '/') != 0) goto nomem;
        if (enc__format_value(out, &v) != ENC_OK) goto nomem;
        k += used;
    }
    if (k < len) {
        if (base_buf_append(out, "/?", 2) != 0) goto nomem;
        if (enc__format_hex(out, key + k, len - k) != ENC_OK) goto nomem;
    }
    /* NUL-terminate without counting it. */
    if (base_buf_reserve(out, 1) != 0) goto nomem;
    out->data[out->len] = '\0';
    goto cleanup;
nomem:
    out->len = start;
    rc = ENC_ERR_NOMEM;
cleanup:
    base_buf_free(&scratch);
    return rc;
}

/* ---- comparison ---------------------------------------------------------- */

static int enc__class(const enc_value *v) {
    switch (v->type) {
    case ENC_NULL:
        return 0;
    case ENC_INTEGER:
        return 1;
    case ENC_REAL:
        return isnan(v->u.r) ? 0 : 1;
    case ENC_TEXT:
        return 2;
    case ENC_BLOB:
        return 3;
    }
    assert(!"enc__class: bad enc_type");
    return 0;
}

int enc_value_compare(const enc_value *a, const enc_value *b) {
    int ca = enc__class(a), cb = enc__class(b);
    if (ca != cb) return ca < cb ? -1 : 1;
    if (ca == 0) return 0;
    if (ca == 1) {
        uint8_t ea[ENC_NUMBER_BYTES_MAX], eb[ENC_NUMBER_BYTES_MAX];
        size_t na = enc__scalar_write(a, ea), nb = enc__scalar_write(b, eb);
        int c = memcmp(ea, eb, BASE_MIN(na, nb));
        if (c != 0) return c < 0 ? -1 : 1;
        return na == nb ? 0 : (na < nb ? -1 : 1);
    }
    size_t la = a->u.bytes.len, lb = b->u.bytes.len;
    size_t n = BASE_MIN(la, lb);
    int c = n ? memcmp(a->u.bytes.data, b->u.bytes.data, n) : 0;
    if (c != 0) return c < 0 ? -1 : 1;
    return la == lb ? 0 : (la < lb ? -1 : 1);
}
