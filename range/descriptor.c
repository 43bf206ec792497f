/*
** range/descriptor.c: range descriptors (range/range.h, "range descriptors"):
** free, deep copy, key containment and the byte format. Pure: no I/O.
**
** Format (integers LEB128 varints unless noted):
**   version (1 byte, DESC_VERSION) | range_id | generation |
**   start_len | start bytes | end_len | end bytes |
**   n_replicas | n_replicas x replica id
**
** Invariants of a well-formed descriptor (checked by encode, which answers
** RANGE_ERR_INVALID, and decode, RANGE_ERR_CORRUPT; copy checks only what
** it needs to copy safely: the counts, lengths and non-NULL key bytes):
**   - range_id != 0; n_replicas <= RANGE_REPLICAS_MAX; every replica id
**     != 0 and no id twice;
**   - start_len, end_len <= RANGE_DESC_KEY_MAX; a key with length > 0 has
**     non-NULL bytes; start < end (memcmp, shorter first on a tie) when
**     end_len > 0 (end_len 0 = +infinity).
** Decode reads only inside [data, data + len), rejects overlong varints,
** unknown versions and trailing bytes, and on error leaves *out owning
** nothing. Owned keys of length 0 are NULL.
*/
#include <string.h>

#include "range/codec_int.h"
#include "range/eval_int.h"
#include "range/range.h"

#define DESC_VERSION 1

typedef range__reader desc__reader;

/* ---- helpers ------------------------------------------------------------------ */

/* true when the fields of a descriptor satisfy the invariants above. */
static bool desc__well_formed(uint64_t range_id, const uint8_t *start, size_t start_len,
                              const uint8_t *end, size_t end_len, const uint64_t *replicas,
                              size_t n_replicas)
{
    if (range_id == 0 || n_replicas > RANGE_REPLICAS_MAX || start_len > RANGE_DESC_KEY_MAX ||
        end_len > RANGE_DESC_KEY_MAX || (start_len > 0 && start == NULL) ||
        (end_len > 0 && end == NULL))
        return false;
    if (end_len > 0 && range__key_cmp(start, start_len, end, end_len) >= 0)
        return false;
    for (size_t i = 0; i < n_replicas; i++) { /* n_replicas <= 16: quadratic is fine */
        if (replicas[i] == 0)
            return false;
        for (size_t j = 0; j < i; j++)
            if (replicas[j] == replicas[i])
                return false;
    }
    return true;
}

/* A fresh owned copy of n bytes (NULL for n == 0). *ok false on NOMEM. */
static uint8_t *desc__dup(const uint8_t *p, size_t n, bool *ok)
{
    *ok = true;
    if (n == 0)
        return NULL;
    uint8_t *c = base_malloc(n); /* owner: the descriptor being filled */
    if (c == NULL) {
        *ok = false;
        return NULL;
    }
    memcpy(c, p, n);
    return c;
}

/* ---- public -------------------------------------------------------------------- */

void range_descriptor_free(range_descriptor *d)
{
    if (d == NULL)
        return;
    base_free(d->start_key);
    base_free(d->end_key);
    memset(d, 0, sizeof(*d));
}

int range_descriptor_copy(range_descriptor *dst, const range_descriptor *src)
{
    bool ok_start, ok_end;
    memset(dst, 0, sizeof(*dst));
    if (src == NULL || src->n_replicas > RANGE_REPLICAS_MAX ||
        src->start_len > RANGE_DESC_KEY_MAX || src->end_len > RANGE_DESC_KEY_MAX ||
        (src->start_len > 0 && src->start_key == NULL) ||
        (src->end_len > 0 && src->end_key == NULL))
        return RANGE_ERR_INVALID;
    dst->range_id = src->range_id;
    dst->generation = src->generation;
    dst->start_key = desc__dup(src->start_key, src->start_len, &ok_start);
    dst->start_len = src->start_len;
    dst->end_key = desc__dup(src->end_key, src->end_len, &ok_end);
    dst->end_len = src->end_len;
    memcpy(dst->replicas, src->replicas, src->n_replicas * sizeof(src->replicas[0]));
    dst->n_replicas = src->n_replicas;
    if (!ok_start || !ok_end) {
        range_descriptor_free(dst);
        return RANGE_ERR_NOMEM;
    }
    return RANGE_OK;
}

bool range_descriptor_contains(const range_descriptor *d, const uint8_t *key, size_t key_len)
{
    if (range__key_cmp(key, key_len, d->start_key, d->start_len) < 0)
        return false;
    return d->end_len == 0 || range__key_cmp(key, key_len, d->end_key, d->end_len) < 0;
}

int range_descriptor_encode(const range_descriptor *d, base_buf *out)
{
    int rc = 0;
    if (d == NULL || out == NULL ||
        !desc__well_formed(d->range_id, d->start_key, d->start_len, d->end_key, d->end_len,
                           d->replicas, d->n_replicas))
        return RANGE_ERR_INVALID;
    rc |= base_buf_append_byte(out, DESC_VERSION);
    rc |= range__put_varint(out, d->range_id);
    rc |= range__put_varint(out, d->generation);
    rc |= range__put_varint(out, d->start_len);
    rc |= base_buf_append(out, d->start_key, d->start_len);
    rc |= range__put_varint(out, d->end_len);
    rc |= base_buf_append(out, d->end_key, d->end_len);
    rc |= range__put_varint(out, d->n_replicas);
    for (size_t i = 0; i < d->n_replicas && rc == 0; i++)
        rc |= range__put_varint(out, d->replicas[i]);
    return rc == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
}

int range_descriptor_decode(const uint8_t *data, size_t len, range_descriptor *out)
{
    desc__reader r = {data, data != NULL ? data + len : NULL, false}; /* NULL + 0 is UB */
    range_descriptor view; /* borrows its keys from data until copied */
    memset(out, 0, sizeof(*out));
    memset(&view, 0, sizeof(view));
    if (data == NULL || len == 0 || range__get_u8(&r) != DESC_VERSION)
        return RANGE_ERR_CORRUPT;
    view.range_id = range__get_varint(&r);
    view.generation = range__get_varint(&r);
    uint64_t start_len = range__get_varint(&r);
    if (r.bad || start_len > RANGE_DESC_KEY_MAX)
        return RANGE_ERR_CORRUPT;
    const uint8_t *start = range__get_raw(&r, start_len);
    uint64_t end_len = range__get_varint(&r);
    if (r.bad || end_len > RANGE_DESC_KEY_MAX)
        return RANGE_ERR_CORRUPT;
    const uint8_t *end = range__get_raw(&r, end_len);
    uint64_t n = range__get_varint(&r);
    if (r.bad || n > RANGE_REPLICAS_MAX)
        return RANGE_ERR_CORRUPT;
    for (uint64_t i = 0; i < n; i++)
        view.replicas[i] = range__get_varint(&r);
    if (r.bad || r.p != r.end) /* truncated, or trailing bytes */
        return RANGE_ERR_CORRUPT;
    view.start_key = (uint8_t *)start; /* only read: copied below */
    view.start_len = (size_t)start_len;
    view.end_key = (uint8_t *)end;
    view.end_len = (size_t)end_len;
    view.n_replicas = (size_t)n;
    if (!desc__well_formed(view.range_id, view.start_key, view.start_len, view.end_key,
                           view.end_len, view.replicas, view.n_replicas))
        return RANGE_ERR_CORRUPT;
    return range_descriptor_copy(out, &view);
}
