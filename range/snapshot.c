/*
** range/snapshot.c: a range's replicated state as one byte string (the
** application bytes of a Raft snapshot, raft/raft.h) and the storage batch
** that installs it (docs/range.md, "Replica changes and snapshots").
**
** Format (integers big-endian; "ts" is hlc_encode, 12 bytes):
**   magic "MRSN" (4) | version (1, SNAP_VERSION) | range_id (8) | index (8) |
**   desc_len (4) | descriptor (range_descriptor_encode, at index) |
**   floor (ts: the 'w' floor of a range made by a split, HLC_ZERO if none) |
**   n_records (8) | n_records x { txn_id (8) | seq (8) | record (20: the
**                   'c' value, index then ts) } |
**   n_versions (8) | n_versions x { flags (1: bit0 tombstone) | key_len (4) |
**                   key | ts | [value_len (4) | value]  (no value for a
**                   tombstone) } |
**   (version 2) n_raws (8) | n_raws x { key_len (4) | key | value_len (4) |
**                   value }: the span's intents and transaction records
**                   (raw keys by user key / anchor: range.h, docs/txn.md) |
**   (version 3) lineage offset (8) | frozen merge_id (8) | frozen left id
**                   (8) | freeze index (8) | n_fences (4) | n_fences x
**                   merge_id (8) | n_merged (4) | n_merged x merge_id (8):
**                   the range's merge state (replica.c,
**                   "MERGES"; zero for older versions) |
**   (version 4) idempotence GC threshold (ts: 'g', replica_int.h,
**                   "idempotence GC"; zero for older versions) |
**   (version 5) MVCC GC threshold (ts: 'v', replica_int.h, "version GC";
**                   zero for older versions) |
**   crc (4): CRC32C of every byte before it.
** A new replica without the span's intents would forget prepared writes,
** including those of transactions whose record already says COMMITTED.
** The versions are every MVCC version (tombstones too) of the descriptor's
** span, in storage order. The records are EVERY idempotence record of the
** sending store (they are keyed by (txn_id, seq) alone, shared by all the
** ranges of a store, and carry no range: a superset is safe, because a key
** is only ever proposed within the lineage of one range, and necessary,
** because the lineage's records must come along; see replica_int.h).
** The Raft membership at index travels in the Raft stream's own header.
**
** Invariants:
**   - encode runs with apply excluded (the node mutex held), so the raw
**     state (descriptor, floor, records) and the MVCC versions are those of
**     exactly `index`;
**   - decode reads only inside [data, data + len), checks the CRC, every
**     count and length against the bytes left and REPLICA_SNAPSHOT_*_MAX,
**     the descriptor (well formed, of range_id), each version's key inside
**     its span and each timestamp valid; anything else is
**     RANGE_ERR_CORRUPT and nothing is allocated;
**   - the install batch deletes every version, intent and record of the
**     span first, then writes what the snapshot holds, so storage holds
**     exactly the snapshot's state of the span after the one write.
*/
#include <string.h>

#include "range/intent_int.h"
#include "range/replica_int.h"

#define SNAP_MAGIC "MRSN"
#define SNAP_VERSION 5     /* 1: no raw section, 2: no merge state, 3: no GC
                              threshold, 4: no MVCC GC threshold (all still
                              read) */
#define SNAP_MERGE_BYTES (8 + 8 + 8 + 8 + 4)
#define SNAP_RAW_BYTES_MIN 8
#define SNAP_HEADER (4 + 1 + 8 + 8 + 4)
#define SNAP_RECORD_BYTES (8 + 8 + REPLICA_RECORD_SIZE)
#define SNAP_VERSION_BYTES_MIN (1 + 4 + HLC_ENCODED_SIZE)
#define SNAP_TOMBSTONE 0x01u

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int map_storage(int rc)
{
    if (rc == STORAGE_ERR_NOMEM)
        return RANGE_ERR_NOMEM;
    if (rc == STORAGE_ERR_CORRUPT)
        return RANGE_ERR_CORRUPT;
    if (rc == STORAGE_ERR_INVALID)
        return RANGE_ERR_TOO_LARGE; /* a batch limit */
    return RANGE_ERR_IO;
}

/* ---- encode ------------------------------------------------------------------- */

/* Append, keeping the byte cap: RANGE_ERR_TOO_LARGE past it. */
static int snap_append(base_buf *out, size_t base_len, const void *p, size_t n)
{
    if (out->len - base_len + n > REPLICA_SNAPSHOT_BYTES_MAX)
        return RANGE_ERR_TOO_LARGE;
    return base_buf_append(out, p, n) == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
}

/* Every idempotence record of the store ('c' under REPLICA_RECORDS_RANGE). */
static int encode_records(storage_engine *e, base_buf *out, size_t base_len, uint64_t *count)
{
    uint8_t lo[REPLICA_KEY_SIZE_MAX], hi[REPLICA_KEY_SIZE_MAX], rec[SNAP_RECORD_BYTES];
    size_t lo_len = replica__key(lo, REPLICA_RECORDS_RANGE, 'c', 0, 0, 0);
    const size_t prefix_len = lo_len;
    size_t hi_len = replica__key(hi, REPLICA_RECORDS_RANGE, 'c' + 1, 0, 0, 0);
    base_buf key = {0}, val = {0}; /* owner: this function */
    int rc = RANGE_OK;
    *count = 0;
    for (;;) {
        int src = storage_seek_raw(e, lo, lo_len, hi, hi_len, &key, &val);
        if (src == STORAGE_NOT_FOUND)
            break;
        if (src != STORAGE_OK) {
            rc = map_storage(src);
            break;
        }
        if (key.len != prefix_len + 16 || val.len != REPLICA_RECORD_SIZE) {
            rc = RANGE_ERR_CORRUPT;
            break;
        }
        memcpy(rec, key.data + prefix_len, 16);
        memcpy(rec + 16, val.data, REPLICA_RECORD_SIZE);
        rc = snap_append(out, base_len, rec, sizeof(rec));
        if (rc != RANGE_OK)
            break;
        if (++*count > REPLICA_SNAPSHOT_OPS_MAX) {
            rc = RANGE_ERR_TOO_LARGE;
            break;
        }
        /* next: the smallest key above this one */
        if (key.len + 1 > sizeof(lo)) {
            rc = RANGE_ERR_CORRUPT;
            break;
        }
        memcpy(lo, key.data, key.len);
        lo[key.len] = 0;
        lo_len = key.len + 1;
    }
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

/* The two raw spans [lo[i], hi[i]) holding the intents and the records of
** the user-key span [s, e) (e_len 0: to the end). */
static int raw_spans(const uint8_t *s, size_t s_len, const uint8_t *e, size_t e_len,
                     base_buf lo[2], base_buf hi[2])
{
    static const uint8_t intents_end[] = "range/i0", records_end[] = "range/t0"; /* '/' + 1 */
    int rc = RANGE_OK;
    base_buf_reset(&lo[0]);
    base_buf_reset(&hi[0]);
    if (base_buf_append(&lo[0], RANGE_INTENT_PREFIX, RANGE_INTENT_PREFIX_LEN) != 0 ||
        base_buf_append(&lo[0], s, s_len) != 0)
        return RANGE_ERR_NOMEM;
    if (e_len > 0) {
        if (base_buf_append(&hi[0], RANGE_INTENT_PREFIX, RANGE_INTENT_PREFIX_LEN) != 0 ||
            base_buf_append(&hi[0], e, e_len) != 0)
            return RANGE_ERR_NOMEM;
    } else if (base_buf_append(&hi[0], intents_end, sizeof(intents_end) - 1) != 0) {
        return RANGE_ERR_NOMEM;
    }
    /* A record key is prefix esc(anchor) terminator id: (anchor, id 0) is
    ** the least key of an anchor, and esc() keeps anchors' order. */
    if (s_len > 0) {
        rc = range__record_key(s, s_len, 0, &lo[1]);
    } else {
        base_buf_reset(&lo[1]);
        rc = base_buf_append(&lo[1], RANGE_TXN_RECORD_PREFIX, RANGE_TXN_RECORD_PREFIX_LEN) == 0
                 ? RANGE_OK : RANGE_ERR_NOMEM;
    }
    if (rc != RANGE_OK)
        return rc;
    if (e_len > 0)
        return range__record_key(e, e_len, 0, &hi[1]);
    base_buf_reset(&hi[1]);
    return base_buf_append(&hi[1], records_end, sizeof(records_end) - 1) == 0 ? RANGE_OK
                                                                               : RANGE_ERR_NOMEM;
}

/* Walk the raw keys of [lo, hi) in e: append them (out != NULL) or delete
** them into b. */
static int raw_walk(storage_engine *e, const base_buf *lo0, const base_buf *hi, base_buf *out,
                    size_t base_len, storage_batch *b, uint64_t *count)
{
    base_buf lo = {0}, key = {0}, val = {0}; /* owner: this function */
    uint8_t len4[4];
    int rc = base_buf_append(&lo, lo0->data, lo0->len) == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
    while (rc == RANGE_OK) {
        int src = storage_seek_raw(e, lo.data, lo.len, hi->data, hi->len, &key,
                                   out != NULL ? &val : NULL);
        if (src == STORAGE_NOT_FOUND)
            break;
        if (src != STORAGE_OK) {
            rc = map_storage(src);
            break;
        }
        if (++*count > REPLICA_SNAPSHOT_OPS_MAX) {
            rc = RANGE_ERR_TOO_LARGE;
            break;
        }
        if (out != NULL) {
            put_u32(len4, (uint32_t)key.len);
            rc = snap_append(out, base_len, len4, 4);
            if (rc == RANGE_OK)
                rc = snap_append(out, base_len, key.data, key.len);
            put_u32(len4, (uint32_t)val.len);
            if (rc == RANGE_OK)
                rc = snap_append(out, base_len, len4, 4);
            if (rc == RANGE_OK)
                rc = snap_append(out, base_len, val.data, val.len);
        } else {
            int drc = storage_batch_delete_raw(b, key.data, key.len);
            rc = drc == STORAGE_OK ? RANGE_OK : map_storage(drc);
        }
        /* next: the smallest key above this one */
        base_buf_reset(&lo);
        if (rc == RANGE_OK && (base_buf_append(&lo, key.data, key.len) != 0 ||
                               base_buf_append_byte(&lo, 0) != 0))
            rc = RANGE_ERR_NOMEM;
    }
    base_buf_free(&lo);
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

int replica__raw_span_delete(storage_engine *e, const uint8_t *s, size_t s_len,
                             const uint8_t *end, size_t e_len, storage_batch *b)
{
    base_buf lo[2] = {{0}}, hi[2] = {{0}}; /* owner: this function */
    uint64_t count = 0;
    int rc = raw_spans(s, s_len, end, e_len, lo, hi);
    for (int i = 0; i < 2 && rc == RANGE_OK; i++)
        rc = raw_walk(e, &lo[i], &hi[i], NULL, 0, b, &count);
    for (int i = 0; i < 2; i++) {
        base_buf_free(&lo[i]);
        base_buf_free(&hi[i]);
    }
    return rc;
}

/* Every MVCC version of d's span. */
static int encode_versions(storage_engine *e, const range_descriptor *d, uint64_t records,
                           base_buf *out, size_t base_len, uint64_t *count)
{
    storage_snapshot *snap = NULL; /* owner: this function */
    storage_iter *it = NULL;       /* owner: this function */
    uint8_t head[1 + 4], len4[4], ts[HLC_ENCODED_SIZE];
    int rc;
    *count = 0;
    rc = storage_snapshot_new(e, &snap);
    if (rc != STORAGE_OK)
        return map_storage(rc);
    storage_iter_options o = {.start = d->start_key, .start_len = d->start_len,
                              .end = d->end_len > 0 ? d->end_key : NULL, .end_len = d->end_len,
                              .mode = STORAGE_ITER_ALL_VERSIONS};
    rc = storage_iter_open(e, snap, &o, &it);
    if (rc != STORAGE_OK) {
        rc = map_storage(rc);
        goto cleanup;
    }
    for (;;) {
        const uint8_t *k, *v;
        size_t klen, vlen;
        hlc_timestamp vts;
        bool tomb;
        int n = storage_iter_next(it, &k, &klen, &vts, &v, &vlen, &tomb);
        if (n == 0)
            break;
        if (n < 0) {
            rc = map_storage(n);
            goto cleanup;
        }
        if (++*count + records > REPLICA_SNAPSHOT_OPS_MAX) {
            rc = RANGE_ERR_TOO_LARGE;
            goto cleanup;
        }
        head[0] = tomb ? SNAP_TOMBSTONE : 0;
        put_u32(head + 1, (uint32_t)klen);
        hlc_encode(vts, ts);
        rc = snap_append(out, base_len, head, sizeof(head));
        if (rc == RANGE_OK)
            rc = snap_append(out, base_len, k, klen);
        if (rc == RANGE_OK)
            rc = snap_append(out, base_len, ts, sizeof(ts));
        if (rc == RANGE_OK && !tomb) {
            put_u32(len4, (uint32_t)vlen);
            rc = snap_append(out, base_len, len4, sizeof(len4));
            if (rc == RANGE_OK && vlen > 0)
                rc = snap_append(out, base_len, v, vlen);
        }
        if (rc != RANGE_OK)
            goto cleanup;
    }
    rc = RANGE_OK;
cleanup:
    storage_iter_close(it);
    storage_snapshot_release(e, snap);
    return rc;
}

/* The version 3 section: the range's merge state. */
static int encode_merge(const replica_merge_state *m, base_buf *out, size_t base_len)
{
    uint8_t buf[SNAP_MERGE_BYTES + REPLICA_FENCES_MAX * 8 + 4 + REPLICA_FENCES_MAX * 8 +
                2 * HLC_ENCODED_SIZE];
    replica_merge_state zero;
    if (m == NULL) {
        memset(&zero, 0, sizeof(zero));
        m = &zero;
    }
    uint32_t nf = m->n_fences <= REPLICA_FENCES_MAX ? m->n_fences : REPLICA_FENCES_MAX;
    replica__put_u64(buf, m->lineage_offset);
    replica__put_u64(buf + 8, m->frozen_merge_id);
    replica__put_u64(buf + 16, m->frozen_left_id);
    replica__put_u64(buf + 24, m->frozen_index);
    put_u32(buf + 32, nf);
    for (uint32_t i = 0; i < nf; i++)
        replica__put_u64(buf + SNAP_MERGE_BYTES + (size_t)i * 8, m->fences[i]);
    size_t at = SNAP_MERGE_BYTES + (size_t)nf * 8;
    uint32_t nm = m->n_merged <= REPLICA_FENCES_MAX ? m->n_merged : REPLICA_FENCES_MAX;
    put_u32(buf + at, nm);
    for (uint32_t i = 0; i < nm; i++)
        replica__put_u64(buf + at + 4 + (size_t)i * 8, m->merged[i]);
    at += 4 + (size_t)nm * 8;
    hlc_encode(m->idem_gc, buf + at); /* version 4 */
    hlc_encode(m->mvcc_gc, buf + at + HLC_ENCODED_SIZE); /* version 5 */
    return snap_append(out, base_len, buf, at + 2 * HLC_ENCODED_SIZE);
}

int replica__snapshot_encode(storage_engine *e, const range_descriptor *desc, uint64_t index,
                             hlc_timestamp floor, const replica_merge_state *merge,
                             base_buf *out)
{
    uint8_t head[SNAP_HEADER], u64[8], fl[HLC_ENCODED_SIZE];
    base_buf d = {0}; /* owner: this function */
    size_t base_len = out->len, records_at, versions_at, raws_at;
    uint64_t n_records = 0, n_versions = 0, n_raws = 0;
    base_buf lo[2] = {{0}}, hi[2] = {{0}}; /* owner: this function */
    int rc = range_descriptor_encode(desc, &d);
    if (rc != RANGE_OK)
        return rc;
    memcpy(head, SNAP_MAGIC, 4);
    head[4] = SNAP_VERSION;
    replica__put_u64(head + 5, desc->range_id);
    replica__put_u64(head + 13, index);
    put_u32(head + 21, (uint32_t)d.len);
    hlc_encode(floor, fl);
    rc = snap_append(out, base_len, head, sizeof(head));
    if (rc == RANGE_OK)
        rc = snap_append(out, base_len, d.data, d.len);
    if (rc == RANGE_OK)
        rc = snap_append(out, base_len, fl, sizeof(fl));
    records_at = out->len;
    if (rc == RANGE_OK)
        rc = snap_append(out, base_len, u64, sizeof(u64)); /* count, filled below */
    if (rc == RANGE_OK)
        rc = encode_records(e, out, base_len, &n_records);
    versions_at = out->len;
    if (rc == RANGE_OK)
        rc = snap_append(out, base_len, u64, sizeof(u64));
    if (rc == RANGE_OK)
        rc = encode_versions(e, desc, n_records, out, base_len, &n_versions);
    raws_at = out->len;
    if (rc == RANGE_OK)
        rc = snap_append(out, base_len, u64, sizeof(u64));
    if (rc == RANGE_OK)
        rc = raw_spans(desc->start_key, desc->start_len, desc->end_key, desc->end_len, lo, hi);
    for (int i = 0; i < 2 && rc == RANGE_OK; i++)
        rc = raw_walk(e, &lo[i], &hi[i], out, base_len, NULL, &n_raws);
    if (rc == RANGE_OK && n_raws > REPLICA_SNAPSHOT_OPS_MAX - n_records - n_versions)
        rc = RANGE_ERR_TOO_LARGE;
    if (rc == RANGE_OK)
        rc = encode_merge(merge, out, base_len);
    if (rc == RANGE_OK) {
        replica__put_u64(out->data + records_at, n_records);
        replica__put_u64(out->data + versions_at, n_versions);
        replica__put_u64(out->data + raws_at, n_raws);
        uint8_t crc[4];
        put_u32(crc, base_crc32c(0, out->data + base_len, out->len - base_len));
        rc = snap_append(out, base_len, crc, sizeof(crc));
    }
    if (rc != RANGE_OK)
        out->len = base_len;
    base_buf_free(&d);
    for (int i = 0; i < 2; i++) {
        base_buf_free(&lo[i]);
        base_buf_free(&hi[i]);
    }
    return rc;
}

/* ---- decode ------------------------------------------------------------------- */

/* Header and descriptor from the first hdr_len bytes. *desc owned on OK. */
static int decode_head(const uint8_t *data, size_t len, uint64_t *range_id, uint64_t *index,
                       range_descriptor *desc, size_t *used)
{
    memset(desc, 0, sizeof(*desc));
    if (data == NULL || len < SNAP_HEADER || memcmp(data, SNAP_MAGIC, 4) != 0 ||
        data[4] < 1 || data[4] > SNAP_VERSION)
        return RANGE_ERR_CORRUPT;
    *range_id = replica__get_u64(data + 5);
    *index = replica__get_u64(data + 13);
    uint32_t dlen = get_u32(data + 21);
    if (*range_id == 0 || *index == 0 || dlen > len - SNAP_HEADER)
        return RANGE_ERR_CORRUPT;
    int rc = range_descriptor_decode(data + SNAP_HEADER, dlen, desc);
    if (rc != RANGE_OK)
        return rc == RANGE_ERR_NOMEM ? rc : RANGE_ERR_CORRUPT;
    if (desc->range_id != *range_id) {
        range_descriptor_free(desc);
        return RANGE_ERR_CORRUPT;
    }
    *used = SNAP_HEADER + dlen;
    return RANGE_OK;
}

int replica__snapshot_peek(const uint8_t *data, size_t len, uint64_t *range_id, uint64_t *index,
                           range_descriptor *desc)
{
    size_t used;
    return decode_head(data, len, range_id, index, desc, &used);
}

int replica__snapshot_decode(const uint8_t *data, size_t len, replica_snapshot_view *out)
{
    size_t off;
    memset(out, 0, sizeof(*out));
    if (data == NULL || len < SNAP_HEADER + 4 || len > REPLICA_SNAPSHOT_BYTES_MAX ||
        get_u32(data + len - 4) != base_crc32c(0, data, len - 4))
        return RANGE_ERR_CORRUPT;
    len -= 4; /* the CRC */
    int rc = decode_head(data, len, &out->range_id, &out->index, &out->desc, &off);
    if (rc != RANGE_OK)
        return rc;
    rc = RANGE_ERR_CORRUPT;
    if (len - off < HLC_ENCODED_SIZE + 8)
        goto fail;
    out->floor = hlc_decode(data + off);
    off += HLC_ENCODED_SIZE;
    out->n_records = replica__get_u64(data + off);
    off += 8;
    if (out->n_records > REPLICA_SNAPSHOT_OPS_MAX ||
        out->n_records > (len - off) / SNAP_RECORD_BYTES)
        goto fail;
    out->records = data + off;
    off += (size_t)out->n_records * SNAP_RECORD_BYTES;
    if (len - off < 8)
        goto fail;
    out->n_versions = replica__get_u64(data + off);
    off += 8;
    if (out->n_versions > REPLICA_SNAPSHOT_OPS_MAX - out->n_records ||
        out->n_versions > (len - off) / SNAP_VERSION_BYTES_MIN)
        goto fail;
    out->versions = data + off;
    for (uint64_t i = 0; i < out->n_versions; i++) {
        if (len - off < 5)
            goto fail;
        uint8_t flags = data[off];
        uint32_t klen = get_u32(data + off + 1);
        off += 5;
        if ((flags & ~SNAP_TOMBSTONE) != 0 || klen == 0 || klen > STORAGE_KEY_SIZE_MAX ||
            klen > len - off || !range_descriptor_contains(&out->desc, data + off, klen))
            goto fail;
        off += klen;
        if (len - off < HLC_ENCODED_SIZE)
            goto fail;
        hlc_timestamp ts = hlc_decode(data + off);
        if (ts.wall_ns < 0 || ts.logical < 0)
            goto fail;
        off += HLC_ENCODED_SIZE;
        if ((flags & SNAP_TOMBSTONE) == 0) {
            if (len - off < 4)
                goto fail;
            uint32_t vlen = get_u32(data + off);
            off += 4;
            if (vlen > STORAGE_VALUE_SIZE_MAX || vlen > len - off)
                goto fail;
            off += vlen;
        }
    }
    out->versions_len = (size_t)(data + off - out->versions);
    if (data[4] >= 2) {
        if (len - off < 8)
            goto fail;
        out->n_raws = replica__get_u64(data + off);
        off += 8;
        if (out->n_raws > REPLICA_SNAPSHOT_OPS_MAX - out->n_records - out->n_versions ||
            out->n_raws > (len - off) / SNAP_RAW_BYTES_MIN)
            goto fail;
        out->raws = data + off;
        for (uint64_t i = 0; i < out->n_raws; i++) {
            if (len - off < 4)
                goto fail;
            uint32_t klen = get_u32(data + off);
            off += 4;
            if (klen == 0 || klen > STORAGE_KEY_SIZE_MAX || klen > len - off)
                goto fail;
            bool inside = false;
            int irc = range__raw_key_inside(&out->desc, data + off, klen, &inside);
            if (irc == RANGE_ERR_NOMEM) {
                replica__snapshot_view_free(out);
                return irc;
            }
            if (irc != RANGE_OK || !inside)
                goto fail;
            off += klen;
            if (len - off < 4)
                goto fail;
            uint32_t vlen = get_u32(data + off);
            off += 4;
            if (vlen > STORAGE_VALUE_SIZE_MAX || vlen > len - off)
                goto fail;
            off += vlen;
        }
    }
    if (data[4] >= 3) {
        if (len - off < SNAP_MERGE_BYTES)
            goto fail;
        replica_merge_state *m = &out->merge;
        m->lineage_offset = replica__get_u64(data + off);
        m->frozen_merge_id = replica__get_u64(data + off + 8);
        m->frozen_left_id = replica__get_u64(data + off + 16);
        m->frozen_index = replica__get_u64(data + off + 24);
        m->n_fences = get_u32(data + off + 32);
        off += SNAP_MERGE_BYTES;
        if (m->n_fences > REPLICA_FENCES_MAX || (len - off) / 8 < m->n_fences ||
            (m->frozen_merge_id != 0 && (m->frozen_index == 0 || m->frozen_index > out->index)))
            goto fail;
        for (uint32_t i = 0; i < m->n_fences; i++, off += 8)
            m->fences[i] = replica__get_u64(data + off);
        if (len - off < 4)
            goto fail;
        m->n_merged = get_u32(data + off);
        off += 4;
        if (m->n_merged > REPLICA_FENCES_MAX || (len - off) / 8 < m->n_merged)
            goto fail;
        for (uint32_t i = 0; i < m->n_merged; i++, off += 8)
            m->merged[i] = replica__get_u64(data + off);
    }
    if (data[4] >= 4) {
        if (len - off < HLC_ENCODED_SIZE)
            goto fail;
        out->merge.idem_gc = hlc_decode(data + off);
        off += HLC_ENCODED_SIZE;
        if (out->merge.idem_gc.wall_ns < 0 || out->merge.idem_gc.logical < 0)
            goto fail;
    }
    if (data[4] >= 5) {
        if (len - off < HLC_ENCODED_SIZE)
            goto fail;
        out->merge.mvcc_gc = hlc_decode(data + off);
        off += HLC_ENCODED_SIZE;
        if (out->merge.mvcc_gc.wall_ns < 0 || out->merge.mvcc_gc.logical < 0)
            goto fail;
    }
    if (off != len)
        goto fail; /* trailing bytes */
    return RANGE_OK;
fail:
    replica__snapshot_view_free(out);
    return RANGE_ERR_CORRUPT;
}

void replica__snapshot_view_free(replica_snapshot_view *v)
{
    range_descriptor_free(&v->desc);
    memset(v, 0, sizeof(*v));
}

/* ---- install ------------------------------------------------------------------ */

int replica__snapshot_install_batch(storage_engine *e, const replica_snapshot_view *v,
                                    storage_batch *b)
{
    const range_descriptor *d = &v->desc;
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    int rrc = replica__raw_span_delete(e, d->start_key, d->start_len, d->end_key, d->end_len, b);
    if (rrc != RANGE_OK)
        return rrc;
    size_t roff = 0;
    for (uint64_t i = 0; i < v->n_raws && rrc == RANGE_OK; i++) {
        const uint8_t *p = v->raws + roff; /* checked by decode */
        uint32_t klen = get_u32(p);
        uint32_t vlen = get_u32(p + 4 + klen);
        int src = storage_batch_put_raw(b, p + 4, klen, p + 8 + klen, vlen);
        rrc = src == STORAGE_OK ? RANGE_OK : map_storage(src);
        roff += 8 + (size_t)klen + vlen;
    }
    if (rrc != RANGE_OK)
        return rrc;
    int rc = storage_batch_delete_range(b, d->start_key, d->start_len,
                                        d->end_len > 0 ? d->end_key : NULL, d->end_len);
    for (uint64_t i = 0; i < v->n_records && rc == STORAGE_OK; i++) {
        const uint8_t *r = v->records + (size_t)i * SNAP_RECORD_BYTES;
        size_t klen = replica__key(key, REPLICA_RECORDS_RANGE, 'c', replica__get_u64(r),
                                   replica__get_u64(r + 8), 2);
        rc = storage_batch_put_raw(b, key, klen, r + 16, REPLICA_RECORD_SIZE);
    }
    size_t off = 0;
    for (uint64_t i = 0; i < v->n_versions && rc == STORAGE_OK; i++) {
        const uint8_t *p = v->versions + off; /* checked by decode */
        bool tomb = (p[0] & SNAP_TOMBSTONE) != 0;
        uint32_t klen = get_u32(p + 1);
        const uint8_t *k = p + 5;
        hlc_timestamp ts = hlc_decode(k + klen);
        off += 5 + klen + HLC_ENCODED_SIZE;
        if (tomb) {
            rc = storage_batch_delete(b, k, klen, ts);
        } else {
            uint32_t vlen = get_u32(v->versions + off);
            rc = storage_batch_put(b, k, klen, ts, v->versions + off + 4, vlen);
            off += 4 + vlen;
        }
    }
    return rc == STORAGE_OK ? RANGE_OK : map_storage(rc);
}
