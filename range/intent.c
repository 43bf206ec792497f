/*
** range/intent.c: the bytes of write intents and transaction records in the
** raw keyspace, their raw keys, and the record transition rule applied by
** every replica (declared and specified in range/intent_int.h; docs/txn.md).
** Pure: no I/O, no clock.
**
** Invariants: see intent_int.h. In short: decoders never read outside their
** input nor trust a length; esc() is order-preserving and prefix-free; the
** transition rule depends only on its arguments, so every replica decides
** alike.
*/
#include <stdlib.h>
#include <string.h>

#include "range/codec_int.h"
#include "range/eval_int.h"
#include "range/intent_int.h"

#define INTENT_TOMBSTONE 0x01u
#define INTENT_FIXED_SIZE (1 + 1 + 8 + 8 + HLC_ENCODED_SIZE)
#define ESC_ZERO 0x00u
#define ESC_ZERO_FOLLOW 0xFFu /* 0x00 -> 0x00 0xFF */
#define ESC_END_FOLLOW 0x01u  /* terminator 0x00 0x01 */

static void put_u64_be(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64_be(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* ---- intents ------------------------------------------------------------------ */

int range__intent_encode(const range__intent *in, base_buf *out)
{
    if (in == NULL || out == NULL || in->txn_id == 0 || in->anchor_len == 0 ||
        in->anchor_len > STORAGE_KEY_SIZE_MAX || in->anchor == NULL ||
        (!in->tombstone && (in->value_len > STORAGE_VALUE_SIZE_MAX ||
                            (in->value_len > 0 && in->value == NULL))) ||
        in->ts.wall_ns < 0 || in->ts.logical < 0)
        return RANGE_ERR_INVALID;
    size_t len0 = out->len;
    uint8_t fixed[INTENT_FIXED_SIZE];
    fixed[0] = RANGE__INTENT_VERSION;
    fixed[1] = in->tombstone ? INTENT_TOMBSTONE : 0;
    put_u64_be(fixed + 2, in->txn_id);
    put_u64_be(fixed + 10, in->nonce);
    hlc_encode(in->ts, fixed + 18);
    size_t vlen = in->tombstone ? 0 : in->value_len;
    int rc = base_buf_append(out, fixed, sizeof(fixed));
    rc |= range__put_varint(out, in->anchor_len);
    rc |= base_buf_append(out, in->anchor, in->anchor_len);
    rc |= range__put_varint(out, vlen);
    if (vlen > 0)
        rc |= base_buf_append(out, in->value, vlen);
    if (rc != 0) {
        out->len = len0;
        return RANGE_ERR_NOMEM;
    }
    return RANGE_OK;
}

int range__intent_decode(const uint8_t *data, size_t len, range__intent *out)
{
    range__reader r = {data, data != NULL ? data + len : NULL, false}; /* NULL + 0 is UB */
    memset(out, 0, sizeof(*out));
    const uint8_t *fixed = data == NULL ? NULL : range__get_raw(&r, INTENT_FIXED_SIZE);
    if (fixed == NULL || fixed[0] != RANGE__INTENT_VERSION || (fixed[1] & ~INTENT_TOMBSTONE) != 0)
        goto corrupt;
    out->tombstone = (fixed[1] & INTENT_TOMBSTONE) != 0;
    out->txn_id = get_u64_be(fixed + 2);
    out->nonce = get_u64_be(fixed + 10);
    out->ts = hlc_decode(fixed + 18);
    uint64_t alen = range__get_varint(&r);
    if (r.bad || alen == 0 || alen > STORAGE_KEY_SIZE_MAX)
        goto corrupt;
    out->anchor = range__get_raw(&r, alen);
    out->anchor_len = (size_t)alen;
    uint64_t vlen = range__get_varint(&r);
    if (r.bad || vlen > STORAGE_VALUE_SIZE_MAX || (out->tombstone && vlen > 0))
        goto corrupt;
    out->value = out->tombstone ? NULL : range__get_raw(&r, vlen);
    out->value_len = (size_t)vlen;
    if (r.bad || r.p != r.end || out->txn_id == 0 || out->ts.wall_ns < 0 || out->ts.logical < 0)
        goto corrupt;
    return RANGE_OK;
corrupt:
    memset(out, 0, sizeof(*out));
    return RANGE_ERR_CORRUPT;
}

/* ---- records ------------------------------------------------------------------ */

int range__record_encode(const range__record *rec, uint8_t out[RANGE__RECORD_SIZE])
{
    if (rec == NULL || rec->txn_id == 0 || (unsigned)rec->status > RANGE_TXN_ABORTED ||
        rec->final_wall_ns < 0)
        return RANGE_ERR_INVALID;
    out[0] = RANGE__RECORD_VERSION;
    out[1] = (uint8_t)rec->status;
    put_u64_be(out + 2, rec->txn_id);
    put_u64_be(out + 10, (uint64_t)rec->priority);
    hlc_encode(rec->commit_ts, out + 18);
    hlc_encode(rec->heartbeat, out + 18 + HLC_ENCODED_SIZE);
    put_u64_be(out + RANGE__RECORD_SIZE_V1, (uint64_t)rec->final_wall_ns);
    return RANGE_OK;
}

int range__record_encode_buf(const range__record *rec, base_buf *out)
{
    uint8_t fixed[RANGE__RECORD_SIZE];
    size_t n = 0;
    int rc = range__record_encode(rec, fixed);
    if (rc != RANGE_OK)
        return rc;
    if (rec->spans_len == 0)
        return base_buf_append(out, fixed, sizeof(fixed)) == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
    if (rec->spans == NULL ||
        range__record_spans_decode(rec->spans, rec->spans_len, NULL, &n) != RANGE_OK)
        return RANGE_ERR_INVALID;
    fixed[0] = RANGE__RECORD_VERSION_SPANS;
    size_t len0 = out->len;
    if (base_buf_append(out, fixed, sizeof(fixed)) != 0 ||
        base_buf_append(out, rec->spans, rec->spans_len) != 0) {
        out->len = len0;
        return RANGE_ERR_NOMEM;
    }
    return RANGE_OK;
}

int range__record_decode(const uint8_t *data, size_t len, range__record *out)
{
    size_t n = 0;
    memset(out, 0, sizeof(*out));
    /* version 1 (no final_wall) is still read: stores written before it;
    ** version 2 too (no spans: such a COMMITTED record is never swept) */
    if (data == NULL || len < 2 ||
        !(data[0] == RANGE__RECORD_VERSION         ? len == RANGE__RECORD_SIZE
          : data[0] == RANGE__RECORD_VERSION_SPANS ? len > RANGE__RECORD_SIZE
          : data[0] == 1                           ? len == RANGE__RECORD_SIZE_V1
                                                   : false) ||
        data[1] > RANGE_TXN_ABORTED)
        return RANGE_ERR_CORRUPT;
    out->status = (range_txn_status)data[1];
    out->txn_id = get_u64_be(data + 2);
    out->priority = (int64_t)get_u64_be(data + 10);
    out->commit_ts = hlc_decode(data + 18);
    out->heartbeat = hlc_decode(data + 18 + HLC_ENCODED_SIZE);
    if (data[0] != 1)
        out->final_wall_ns = (int64_t)get_u64_be(data + RANGE__RECORD_SIZE_V1);
    if (data[0] == RANGE__RECORD_VERSION_SPANS) {
        out->spans = data + RANGE__RECORD_SIZE;
        out->spans_len = len - RANGE__RECORD_SIZE;
        if (range__record_spans_decode(out->spans, out->spans_len, NULL, &n) != RANGE_OK)
            out->txn_id = 0; /* corrupt, below */
    }
    if (out->txn_id == 0 || out->final_wall_ns < 0) {
        memset(out, 0, sizeof(*out));
        return RANGE_ERR_CORRUPT;
    }
    return RANGE_OK;
}

/* ---- participant spans (record version 3) ------------------------------------ */

#define SPAN_POINT 0x01u /* start only: [start, start 0x00) */
#define SPAN_OPEN 0x02u  /* start only: [start, +inf) */

/* The exclusive end of a span, as the coalescing compares it. */
typedef struct span_end {
    int kind; /* SPAN_POINT: key 0x00; SPAN_OPEN: +inf; 0: key */
    const uint8_t *key;
    size_t key_len;
} span_end;

static span_end span_end_of(const range_span *sp)
{
    if (sp->point)
        return (span_end){SPAN_POINT, sp->start, sp->start_len};
    if (sp->end_len == 0)
        return (span_end){SPAN_OPEN, NULL, 0};
    return (span_end){0, sp->end, sp->end_len};
}

/* Is the key k == e 0x00 (the successor of e)? */
static bool is_successor(const uint8_t *k, size_t k_len, const uint8_t *e, size_t e_len)
{
    return k_len == e_len + 1 && k[e_len] == 0 && (e_len == 0 || memcmp(k, e, e_len) == 0);
}

/* Compare two ends (<0, 0, >0). */
static int span_end_cmp(span_end a, span_end b)
{
    if (a.kind == SPAN_OPEN || b.kind == SPAN_OPEN)
        return (a.kind == SPAN_OPEN) - (b.kind == SPAN_OPEN);
    if (a.kind == b.kind)
        return range__key_cmp(a.key, a.key_len, b.key, b.key_len);
    int sign = a.kind == SPAN_POINT ? 1 : -1; /* p: the point's end (k 0x00), o: a key */
    span_end p = a.kind == SPAN_POINT ? a : b, o = a.kind == SPAN_POINT ? b : a;
    if (range__key_cmp(p.key, p.key_len, o.key, o.key_len) >= 0)
        return sign; /* k >= e: k 0x00 > e */
    return is_successor(o.key, o.key_len, p.key, p.key_len) ? 0 : -sign;
}

/* Does a span starting at s begin at or before end e (overlapping or touching)? */
static bool starts_by(const range_span *sp, span_end e)
{
    if (e.kind == SPAN_OPEN)
        return true;
    int c = range__key_cmp(sp->start, sp->start_len, e.key, e.key_len);
    if (e.kind == 0)
        return c <= 0;
    return c <= 0 || is_successor(sp->start, sp->start_len, e.key, e.key_len);
}

static int span_start_cmp(const void *a, const void *b)
{
    const range_span *x = *(const range_span *const *)a, *y = *(const range_span *const *)b;
    return range__key_cmp(x->start, x->start_len, y->start, y->start_len);
}

static int put_bytes(base_buf *out, const uint8_t *p, size_t n)
{
    int rc = range__put_varint(out, n);
    if (n > 0)
        rc |= base_buf_append(out, p, n);
    return rc;
}

/* Append one span [start, e) to the section. */
static int put_span(base_buf *out, const range_span *first, span_end e)
{
    if (e.kind == SPAN_POINT && range__key_cmp(first->start, first->start_len, e.key,
                                               e.key_len) == 0)
        return base_buf_append_byte(out, SPAN_POINT) | put_bytes(out, first->start,
                                                                 first->start_len);
    /* the end after a longest key would be a key too long to decode: an
    ** open end covers it (covering more is safe: RESOLVE touches only the
    ** txn's own intents) */
    if (e.kind == SPAN_OPEN || (e.kind == SPAN_POINT && e.key_len >= STORAGE_KEY_SIZE_MAX))
        return base_buf_append_byte(out, SPAN_OPEN) | put_bytes(out, first->start,
                                                                first->start_len);
    int rc = base_buf_append_byte(out, 0) | put_bytes(out, first->start, first->start_len);
    if (e.kind == SPAN_POINT) { /* the end after the key e: e 0x00 */
        rc |= range__put_varint(out, e.key_len + 1);
        rc |= base_buf_append(out, e.key, e.key_len);
        rc |= base_buf_append_byte(out, 0);
        return rc;
    }
    return rc | put_bytes(out, e.key, e.key_len);
}

int range__record_spans_build(const range_span *in, size_t n, base_buf *out)
{
    const range_span **sorted = NULL; /* owner: this function */
    span_end *ends = NULL;            /* owner: this function; per merged group */
    size_t *firsts = NULL;            /* owner: this function; its first span */
    size_t m = 0;
    int rc = RANGE_ERR_INVALID;
    base_buf_reset(out);
    if (in == NULL || n == 0)
        return RANGE_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (in[i].start_len > STORAGE_KEY_SIZE_MAX || in[i].end_len > STORAGE_KEY_SIZE_MAX ||
            (in[i].point && in[i].start_len == 0) || (in[i].start_len > 0 && !in[i].start) ||
            (!in[i].point && in[i].end_len > 0 && !in[i].end))
            return RANGE_ERR_INVALID;
    sorted = base_calloc(n, sizeof(*sorted));
    ends = base_calloc(n, sizeof(*ends));
    firsts = base_calloc(n, sizeof(*firsts));
    rc = RANGE_ERR_NOMEM;
    if (sorted == NULL || ends == NULL || firsts == NULL)
        goto done;
    for (size_t i = 0; i < n; i++)
        sorted[i] = &in[i];
    qsort(sorted, n, sizeof(*sorted), span_start_cmp);
    /* overlapping and touching spans: one group */
    for (size_t i = 0; i < n; i++) {
        span_end e = span_end_of(sorted[i]);
        if (m > 0 && starts_by(sorted[i], ends[m - 1])) {
            if (span_end_cmp(e, ends[m - 1]) > 0)
                ends[m - 1] = e;
            continue;
        }
        firsts[m] = i;
        ends[m++] = e;
    }
    /* then k neighbouring groups per span, k doubling until the section fits
    ** (groups are sorted and disjoint: the last one's end is the greatest) */
    size_t k = (m + RANGE_TXN_RECORD_SPANS_MAX - 1) / RANGE_TXN_RECORD_SPANS_MAX;
    for (;;) {
        size_t spans = (m + k - 1) / k;
        base_buf_reset(out);
        rc = range__put_varint(out, spans) == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
        for (size_t g = 0; g < m && rc == RANGE_OK; g += k) {
            size_t last = g + k - 1 < m ? g + k - 1 : m - 1;
            if (put_span(out, sorted[firsts[g]], ends[last]) != 0)
                rc = RANGE_ERR_NOMEM;
        }
        if (rc != RANGE_OK || out->len <= RANGE__RECORD_SPANS_BYTES_MAX)
            break;
        if (spans == 1) {
            rc = RANGE_ERR_TOO_LARGE;
            break;
        }
        k *= 2;
    }
done:
    if (rc != RANGE_OK)
        base_buf_reset(out);
    base_free(sorted);
    base_free(ends);
    base_free(firsts);
    return rc;
}

int range__record_spans_decode(const uint8_t *data, size_t len, range_span *out, size_t *n)
{
    range__reader r = {data, data != NULL ? data + len : NULL, false}; /* NULL + 0 is UB */
    *n = 0;
    if (data == NULL || len > RANGE__RECORD_SPANS_BYTES_MAX)
        return RANGE_ERR_CORRUPT;
    uint64_t count = range__get_varint(&r);
    if (r.bad || count == 0 || count > RANGE_TXN_RECORD_SPANS_MAX)
        return RANGE_ERR_CORRUPT;
    for (uint64_t i = 0; i < count; i++) {
        range_span sp = {0};
        uint8_t flags = range__get_u8(&r);
        uint64_t sl = range__get_varint(&r);
        if (r.bad || (flags & ~(SPAN_POINT | SPAN_OPEN)) != 0 ||
            flags == (SPAN_POINT | SPAN_OPEN) || sl > STORAGE_KEY_SIZE_MAX ||
            ((flags & SPAN_POINT) != 0 && sl == 0))
            return RANGE_ERR_CORRUPT;
        sp.start = range__get_raw(&r, sl);
        sp.start_len = (size_t)sl;
        sp.point = (flags & SPAN_POINT) != 0;
        if (flags == 0) {
            uint64_t el = range__get_varint(&r);
            if (r.bad || el == 0 || el > STORAGE_KEY_SIZE_MAX)
                return RANGE_ERR_CORRUPT;
            sp.end = range__get_raw(&r, el);
            sp.end_len = (size_t)el;
        }
        if (r.bad)
            return RANGE_ERR_CORRUPT;
        if (sl == 0)
            sp.start = NULL;
        if (out != NULL)
            out[i] = sp;
    }
    if (r.p != r.end)
        return RANGE_ERR_CORRUPT;
    *n = (size_t)count;
    return RANGE_OK;
}

/* ---- raw keys ----------------------------------------------------------------- */

int range__intent_key(const uint8_t *key, size_t key_len, base_buf *out)
{
    if (key == NULL || key_len == 0 || key_len > STORAGE_KEY_SIZE_MAX - RANGE_INTENT_PREFIX_LEN)
        return RANGE_ERR_INVALID;
    base_buf_reset(out);
    if (base_buf_append(out, RANGE_INTENT_PREFIX, RANGE_INTENT_PREFIX_LEN) != 0 ||
        base_buf_append(out, key, key_len) != 0)
        return RANGE_ERR_NOMEM;
    return RANGE_OK;
}

/* Append esc(p, n) (see intent_int.h). */
static int esc_append(base_buf *out, const uint8_t *p, size_t n)
{
    size_t from = 0;
    static const uint8_t zero_esc[2] = {ESC_ZERO, ESC_ZERO_FOLLOW};
    static const uint8_t end[2] = {ESC_ZERO, ESC_END_FOLLOW};
    for (size_t i = 0; i < n; i++) {
        if (p[i] != ESC_ZERO)
            continue;
        if ((i > from && base_buf_append(out, p + from, i - from) != 0) ||
            base_buf_append(out, zero_esc, 2) != 0)
            return RANGE_ERR_NOMEM;
        from = i + 1;
    }
    if ((n > from && base_buf_append(out, p + from, n - from) != 0) ||
        base_buf_append(out, end, 2) != 0)
        return RANGE_ERR_NOMEM;
    return RANGE_OK;
}

int range__record_key(const uint8_t *anchor, size_t anchor_len, uint64_t txn_id, base_buf *out)
{
    /* escaping at most doubles the anchor; the key must still be storable */
    if (anchor == NULL || anchor_len == 0 ||
        anchor_len > (STORAGE_KEY_SIZE_MAX - RANGE_TXN_RECORD_PREFIX_LEN - 2 - 8) / 2)
        return RANGE_ERR_INVALID;
    uint8_t id[8];
    put_u64_be(id, txn_id);
    base_buf_reset(out);
    if (base_buf_append(out, RANGE_TXN_RECORD_PREFIX, RANGE_TXN_RECORD_PREFIX_LEN) != 0 ||
        esc_append(out, anchor, anchor_len) != RANGE_OK || base_buf_append(out, id, 8) != 0)
        return RANGE_ERR_NOMEM;
    return RANGE_OK;
}

bool range__intent_key_user(const uint8_t *raw, size_t raw_len, const uint8_t **key,
                            size_t *key_len)
{
    if (raw == NULL || raw_len <= RANGE_INTENT_PREFIX_LEN ||
        memcmp(raw, RANGE_INTENT_PREFIX, RANGE_INTENT_PREFIX_LEN) != 0)
        return false;
    *key = raw + RANGE_INTENT_PREFIX_LEN;
    *key_len = raw_len - RANGE_INTENT_PREFIX_LEN;
    return true;
}

int range__record_key_decode(const uint8_t *raw, size_t raw_len, base_buf *anchor,
                             uint64_t *txn_id)
{
    if (raw == NULL || raw_len < RANGE_TXN_RECORD_PREFIX_LEN + 2 + 8 ||
        memcmp(raw, RANGE_TXN_RECORD_PREFIX, RANGE_TXN_RECORD_PREFIX_LEN) != 0)
        return RANGE_ERR_CORRUPT;
    base_buf_reset(anchor);
    size_t i = RANGE_TXN_RECORD_PREFIX_LEN, end = raw_len - 8;
    while (i < end) {
        if (raw[i] != ESC_ZERO) {
            if (base_buf_append_byte(anchor, raw[i]) != 0)
                return RANGE_ERR_NOMEM;
            i++;
            continue;
        }
        if (i + 1 >= end)
            return RANGE_ERR_CORRUPT;
        if (raw[i + 1] == ESC_END_FOLLOW) {
            /* the terminator must be followed by exactly the id */
            if (i + 2 != end || anchor->len == 0)
                return RANGE_ERR_CORRUPT;
            *txn_id = get_u64_be(raw + end);
            return RANGE_OK;
        }
        if (raw[i + 1] != ESC_ZERO_FOLLOW || base_buf_append_byte(anchor, 0) != 0)
            return raw[i + 1] != ESC_ZERO_FOLLOW ? RANGE_ERR_CORRUPT : RANGE_ERR_NOMEM;
        i += 2;
    }
    return RANGE_ERR_CORRUPT; /* no terminator */
}

int range__intent_span(const range_span *sp, base_buf *start, base_buf *end)
{
    const uint8_t after_prefix = (uint8_t)(RANGE_INTENT_PREFIX[RANGE_INTENT_PREFIX_LEN - 1] + 1);
    base_buf_reset(start);
    base_buf_reset(end);
    int rc = base_buf_append(start, RANGE_INTENT_PREFIX, RANGE_INTENT_PREFIX_LEN);
    if (sp->start_len > 0)
        rc |= base_buf_append(start, sp->start, sp->start_len);
    if (sp->point) {
        /* [P k, P k 0x00): exactly the intent of k */
        rc |= base_buf_append(end, start->data, start->len);
        rc |= base_buf_append_byte(end, 0);
    } else if (sp->end_len > 0) {
        rc |= base_buf_append(end, RANGE_INTENT_PREFIX, RANGE_INTENT_PREFIX_LEN);
        rc |= base_buf_append(end, sp->end, sp->end_len);
    } else {
        /* open: the end of the intent keyspace ("range/i" + the byte after '/') */
        rc |= base_buf_append(end, RANGE_INTENT_PREFIX, RANGE_INTENT_PREFIX_LEN - 1);
        rc |= base_buf_append_byte(end, after_prefix);
    }
    return rc == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
}

int range__raw_key_inside(const range_descriptor *d, const uint8_t *raw, size_t raw_len,
                          bool *inside)
{
    const uint8_t *key;
    size_t key_len;
    *inside = false;
    if (range__intent_key_user(raw, raw_len, &key, &key_len)) {
        *inside = range_descriptor_contains(d, key, key_len);
        return RANGE_OK;
    }
    base_buf anchor = {0}; /* owner: this function */
    uint64_t id = 0;
    int rc = range__record_key_decode(raw, raw_len, &anchor, &id);
    if (rc == RANGE_OK)
        *inside = id != 0 && range_descriptor_contains(d, anchor.data, anchor.len);
    base_buf_free(&anchor);
    return rc == RANGE_ERR_NOMEM ? RANGE_ERR_NOMEM : RANGE_OK;
}

/* ---- the transition rule ------------------------------------------------------ */

bool range__record_transition_ok(const range__record *old, const range__record *next,
                                 bool if_heartbeat)
{
    if (old == NULL)
        return true;
    if (old->status != RANGE_TXN_PENDING)
        return false; /* final: never changes (docs/txn.md, invariant 2) */
    return !if_heartbeat || hlc_compare(old->heartbeat, next->heartbeat) <= 0;
}
