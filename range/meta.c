/*
** range/meta.c: meta addressing (range/range.h, "meta addressing";
** docs/range.md, "Splits and addressing"). Pure: key layout and the rule
** that decides whether a meta entry is stale.
**
** Layout (system keys of range 1, docs/cluster.md "System keys"):
**   RANGE_META_PREFIX 0x01 end_key  -> descriptor of the range ending at end_key
**   RANGE_META_PREFIX 0x02          -> descriptor of the range ending at +infinity
** (values: range_descriptor_encode). Entries sort by end key, so the range
** holding key k is the first entry whose end key is > k: the first row of a
** forward scan from RANGE_META_PREFIX 0x01 k 0x00 to RANGE_META_PREFIX 0x03
** (CockroachDB's meta2 lookup).
**
** Invariants:
**   - an entry is only replaced by a newer view of the key space: the same
**     range at a higher generation, a range that a split carved out of
**     the stored one, or a range that merged the stored one into itself
**     (range_meta_replaces), so writers racing with each other or with
**     repairs never move meta backwards. The generation of the range
**     covering a given key only grows over time (splits, merges and
**     replica changes each raise it above what they replace).
*/
#include <string.h>

#include "range/range.h"

#define META_TAG_END 0x01u  /* a finite end key follows */
#define META_TAG_LAST 0x02u /* the range ending at +infinity */
#define META_TAG_STOP 0x03u /* exclusive end of every lookup */

static int meta__prefix(base_buf *out, uint8_t tag)
{
    base_buf_reset(out);
    if (base_buf_append(out, RANGE_META_PREFIX, RANGE_META_PREFIX_LEN) != 0 ||
        base_buf_append_byte(out, tag) != 0)
        return RANGE_ERR_NOMEM;
    return RANGE_OK;
}

int range_meta_key(const range_descriptor *d, base_buf *out)
{
    if (d == NULL || out == NULL || d->end_len > RANGE_DESC_KEY_MAX ||
        (d->end_len > 0 && d->end_key == NULL))
        return RANGE_ERR_INVALID;
    if (d->end_len == 0)
        return meta__prefix(out, META_TAG_LAST);
    int rc = meta__prefix(out, META_TAG_END);
    if (rc == RANGE_OK && base_buf_append(out, d->end_key, d->end_len) != 0)
        rc = RANGE_ERR_NOMEM;
    return rc;
}

int range_meta_lookup_span(const uint8_t *key, size_t key_len, range_meta_lookup mode,
                           base_buf *start, base_buf *end)
{
    int rc;
    if (start == NULL || end == NULL || key_len > RANGE_DESC_KEY_MAX ||
        (key_len > 0 && key == NULL))
        return RANGE_ERR_INVALID;
    if (mode == RANGE_META_LAST) {
        rc = meta__prefix(start, META_TAG_LAST);
    } else {
        if (mode == RANGE_META_BEFORE && key_len == 0)
            return RANGE_ERR_INVALID; /* nothing lies before the empty key */
        rc = meta__prefix(start, META_TAG_END);
        if (rc == RANGE_OK && key_len > 0 && base_buf_append(start, key, key_len) != 0)
            rc = RANGE_ERR_NOMEM;
        /* HOLDING: end > key, i.e. end >= key 0x00; BEFORE: end >= key */
        if (rc == RANGE_OK && mode == RANGE_META_HOLDING && base_buf_append_byte(start, 0) != 0)
            rc = RANGE_ERR_NOMEM;
    }
    if (rc == RANGE_OK)
        rc = meta__prefix(end, META_TAG_STOP);
    return rc;
}

bool range_meta_is_key(const uint8_t *key, size_t key_len)
{
    return key_len > RANGE_META_PREFIX_LEN &&
           memcmp(key, RANGE_META_PREFIX, RANGE_META_PREFIX_LEN) == 0;
}

bool range_meta_replaces(const range_descriptor *stored, const range_descriptor *ours)
{
    if (stored == NULL)
        return true;
    if (stored->range_id == ours->range_id)
        return stored->generation < ours->generation;
    /* another range: stale when it is the ancestor we were split from (it
    ** still covers our start key); a range split out of us later does not */
    if (range_descriptor_contains(stored, ours->start_key, ours->start_len))
        return true;
    /* or a range we subsumed by a merge: the generation of the range
    ** covering any one key only grows (a merge is above both sides, a
    ** split's halves above their parent), so a lower one over a key of ours
    ** is older than us */
    return range_descriptor_contains(ours, stored->start_key, stored->start_len) &&
           stored->generation < ours->generation;
}

/* ---- the range-id counter ----------------------------------------------------- */

void range_id_counter_encode(uint64_t next, uint8_t out[RANGE_ID_COUNTER_SIZE])
{
    out[0] = 1; /* version */
    for (int i = 0; i < 8; i++)
        out[1 + i] = (uint8_t)(next >> (56 - 8 * i));
}

int range_id_counter_decode(const uint8_t *p, size_t len, uint64_t *next)
{
    *next = 0;
    if (p == NULL || len != RANGE_ID_COUNTER_SIZE || p[0] != 1)
        return RANGE_ERR_CORRUPT;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[1 + i];
    if (v == 0)
        return RANGE_ERR_CORRUPT;
    *next = v;
    return RANGE_OK;
}
