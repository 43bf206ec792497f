/*
** timestamp/timestamp.c: hlc_timestamp values -- order, arithmetic, the
** 12-byte order-preserving encoding and the text form. Pure: no clock, no
** allocation, no locks.
**
** Format (12 bytes, big-endian):
**   bytes 0..7   (uint64_t)wall_ns ^ 0x8000000000000000
**   bytes 8..11  (uint32_t)logical ^ 0x80000000
** Flipping the sign bit maps the signed range onto the unsigned range in
** order, so memcmp(enc(a), enc(b)) has the sign of hlc_compare(a, b) for
** EVERY pair of int64/int32 values, not only valid (non-negative) ones.
**
** Invariants:
**   - hlc_decode(hlc_encode(t)) == t for every t.
**   - sign(memcmp(enc(a), enc(b), 12)) == sign(hlc_compare(a, b)).
**   - hlc_next / hlc_prev / hlc_add_ns saturate at HLC_MAX / HLC_ZERO and
**     never overflow a signed integer.
*/
#include <inttypes.h>
#include <stdio.h>

#include "timestamp/timestamp.h"

int hlc_compare(hlc_timestamp a, hlc_timestamp b) {
    if (a.wall_ns != b.wall_ns) return a.wall_ns < b.wall_ns ? -1 : 1;
    if (a.logical != b.logical) return a.logical < b.logical ? -1 : 1;
    return 0;
}

bool hlc_less(hlc_timestamp a, hlc_timestamp b) { return hlc_compare(a, b) < 0; }

bool hlc_is_zero(hlc_timestamp a) { return a.wall_ns == 0 && a.logical == 0; }

hlc_timestamp hlc_next(hlc_timestamp a) {
    if (hlc_compare(a, HLC_MAX) >= 0) return HLC_MAX;
    if (a.logical < INT32_MAX) return (hlc_timestamp){a.wall_ns, a.logical + 1};
    return (hlc_timestamp){a.wall_ns + 1, 0}; /* a.wall_ns < INT64_MAX here */
}

hlc_timestamp hlc_prev(hlc_timestamp a) {
    if (hlc_compare(a, HLC_ZERO) <= 0) return HLC_ZERO;
    if (a.logical > 0) return (hlc_timestamp){a.wall_ns, a.logical - 1};
    /* a > zero with logical <= 0 means wall_ns >= 1 (negative logicals are
    ** outside the valid range; they step to the previous wall too). */
    return (hlc_timestamp){a.wall_ns - 1, INT32_MAX};
}

hlc_timestamp hlc_add_ns(hlc_timestamp a, int64_t ns) {
    int64_t wall;
    if (__builtin_add_overflow(a.wall_ns, ns, &wall)) wall = ns > 0 ? INT64_MAX : 0;
    if (ns > 0) {
        if (wall < 0) wall = 0; /* a was negative: clamp into the valid range */
        return (hlc_timestamp){wall, 0};
    }
    if (wall < 0) return HLC_ZERO;
    return (hlc_timestamp){wall, a.logical};
}

static void put_be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get_be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

void hlc_encode(hlc_timestamp ts, uint8_t out[HLC_ENCODED_SIZE]) {
    put_be64(out, (uint64_t)ts.wall_ns ^ UINT64_C(0x8000000000000000));
    uint32_t l = (uint32_t)ts.logical ^ UINT32_C(0x80000000);
    out[8] = (uint8_t)(l >> 24);
    out[9] = (uint8_t)(l >> 16);
    out[10] = (uint8_t)(l >> 8);
    out[11] = (uint8_t)l;
}

hlc_timestamp hlc_decode(const uint8_t in[HLC_ENCODED_SIZE]) {
    uint64_t w = get_be64(in) ^ UINT64_C(0x8000000000000000);
    uint32_t l = ((uint32_t)in[8] << 24 | (uint32_t)in[9] << 16 | (uint32_t)in[10] << 8 |
                  (uint32_t)in[11]) ^ UINT32_C(0x80000000);
    /* Conversions of out-of-range unsigned values to signed types are
    ** implementation-defined; GCC and Clang define them as modulo 2^N. */
    return (hlc_timestamp){(int64_t)w, (int32_t)l};
}

char *hlc_format(hlc_timestamp ts, char *buf, int buf_size) {
    if (buf == NULL || buf_size <= 0) return buf;
    const char *sign = ts.wall_ns < 0 ? "-" : "";
    uint64_t mag = ts.wall_ns < 0 ? (uint64_t)0 - (uint64_t)ts.wall_ns : (uint64_t)ts.wall_ns;
    snprintf(buf, (size_t)buf_size, "%s%" PRIu64 ".%09" PRIu64 ",%" PRId32, sign,
             mag / 1000000000u, mag % 1000000000u, ts.logical);
    return buf;
}
