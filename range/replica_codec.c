/*
** range/replica_codec.c: the wire format of Raft traffic between replicas
** and the byte format of a command (a Raft entry's payload). Pure: no I/O.
**
** Raft message (payload of RANGE_RPC_METHOD_RAFT), all integers LEB128
** varints unless noted:
**   version (1 byte, RANGE_CODEC_VERSION) | range_id | type (1 byte) |
**   flags (1 byte: bit0 reject, bit1 force) | from | to | term | log_term |
**   index | commit | hint_index | seq | n_entries |
**   n_entries x { term | index | entry type (1 byte) | len | len bytes } |
**   [SNAPSHOT only: len | len bytes (the chunk at offset seq)]
** type is a raft_message_type (APPEND .. SNAPSHOT_RESP), or
** REPLICA_MSG_REMOVED (range level, never given to the core: "range_id no
** longer has `to` as a member as of generation `index`", replica_int.h).
** A SNAPSHOT chunk is at most RANGE_CODEC_CHUNK_MAX bytes and ends within
** REPLICA_SNAPSHOT_STREAM_MAX bytes of the stream (seq + len).
** Batch (also a payload of RANGE_RPC_METHOD_RAFT; the first byte tells):
**   version (1 byte, RANGE_CODEC_BATCH_VERSION) | count (u16 BE, 1 ..
**   RANGE_BATCH_MSGS_MAX) | count x { len (varint, >= 1) | len bytes: one
**   Raft message as above }, at most RANGE_BATCH_BYTES_MAX bytes in all;
**   decoded all or nothing (one bad message rejects the batch).
** Command (RAFT_ENTRY_NORMAL data):
**   version (1 byte) | txn_id | seq | commit wall (u64 of int64) |
**   commit logical (u64 of int32) | n_writes |
**   n_writes x { flags (1 byte: bit0 tombstone) | key_len | key |
**                value_len | value }        (no value bytes for tombstones)
**   version 1: nothing more. Version 2 (written only when the command has
**   raw writes, so version-1 commands keep their bytes): then n_raw (>= 1,
**   <= RANGE_COMMAND_WRITES_MAX) x { kind (1 byte, range_raw_kind) |
**   key_len | key | value_len | value }   (no value bytes for DELETE)
** Version GC entry (RAFT_ENTRY_NORMAL data; replica_int.h, "version GC"):
**   REPLICA_MVCC_GC_TAG | threshold (hlc_encode) | n_keys (u32 BE) |
**   n_keys x { key_len (u32 BE) | key }, keys strictly ascending.
**
** Invariants: a decoder reads only inside [data, data + len), rejects a
** varint longer than 10 bytes or overflowing 64 bits, every count above its
** named maximum, every length above the bytes that remain, unknown versions,
** types and flag bits, and trailing bytes. A rejected input leaves nothing
** allocated. Encoding then decoding gives back the same message.
*/
#include <string.h>

#include "range/range.h"
#include "range/codec_int.h"
#include "range/eval_int.h"
#include "range/replica_int.h"

/* ---- varints --------------------------------------------------------------- */

static int put_u8(base_buf *b, uint8_t v) { return base_buf_append_byte(b, v); }

typedef range__reader reader;

/* ---- Raft messages ---------------------------------------------------------- */

static bool raft_type_carried(int type)
{
    return (type >= RAFT_MSG_APPEND && type <= RAFT_MSG_SNAPSHOT_RESP) ||
           type == REPLICA_MSG_REMOVED;
}

int range_raft_msg_encode(uint64_t range_id, const raft_message *m, base_buf *out)
{
    int rc = 0;
    if (m == NULL || out == NULL || !raft_type_carried((int)m->type) ||
        m->n_entries > RANGE_CODEC_ENTRIES_MAX ||
        (m->type != RAFT_MSG_SNAPSHOT && m->len > 0) ||
        (m->len > 0 && m->data == NULL) || m->len > RANGE_CODEC_CHUNK_MAX ||
        (m->type == RAFT_MSG_SNAPSHOT && m->seq > REPLICA_SNAPSHOT_STREAM_MAX - m->len))
        return RANGE_ERR_INVALID;
    rc |= put_u8(out, RANGE_CODEC_VERSION);
    rc |= range__put_varint(out, range_id);
    rc |= put_u8(out, (uint8_t)m->type);
    rc |= put_u8(out, (uint8_t)((m->reject ? 1 : 0) | (m->force ? 2 : 0)));
    rc |= range__put_varint(out, m->from);
    rc |= range__put_varint(out, m->to);
    rc |= range__put_varint(out, m->term);
    rc |= range__put_varint(out, m->log_term);
    rc |= range__put_varint(out, m->index);
    rc |= range__put_varint(out, m->commit);
    rc |= range__put_varint(out, m->hint_index);
    rc |= range__put_varint(out, m->seq);
    rc |= range__put_varint(out, m->n_entries);
    for (size_t i = 0; i < m->n_entries && rc == 0; i++) {
        const raft_entry *e = &m->entries[i];
        rc |= range__put_varint(out, e->term);
        rc |= range__put_varint(out, e->index);
        rc |= put_u8(out, (uint8_t)e->type);
        rc |= range__put_varint(out, e->len);
        if (e->len > 0)
            rc |= base_buf_append(out, e->data, e->len);
    }
    if (m->type == RAFT_MSG_SNAPSHOT && rc == 0) {
        rc |= range__put_varint(out, m->len);
        if (m->len > 0)
            rc |= base_buf_append(out, m->data, m->len);
    }
    return rc == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
}

int range_raft_msg_decode(const uint8_t *data, size_t len, range_raft_msg *out)
{
    reader r = {data, data != NULL ? data + len : NULL, false}; /* NULL + 0 is UB */
    raft_entry *entries = NULL;
    int rc = RANGE_ERR_CORRUPT;
    memset(out, 0, sizeof(*out));
    if (data == NULL || len == 0)
        return RANGE_ERR_CORRUPT;
    if (range__get_u8(&r) != RANGE_CODEC_VERSION)
        goto cleanup;
    out->range_id = range__get_varint(&r);
    raft_message *m = &out->msg;
    uint8_t type = range__get_u8(&r);
    uint8_t flags = range__get_u8(&r);
    if (r.bad || !raft_type_carried(type) || (flags & ~3u) != 0 || out->range_id == 0)
        goto cleanup;
    m->type = (raft_message_type)type;
    m->reject = (flags & 1) != 0;
    m->force = (flags & 2) != 0;
    m->from = range__get_varint(&r);
    m->to = range__get_varint(&r);
    m->term = range__get_varint(&r);
    m->log_term = range__get_varint(&r);
    m->index = range__get_varint(&r);
    m->commit = range__get_varint(&r);
    m->hint_index = range__get_varint(&r);
    m->seq = range__get_varint(&r);
    uint64_t n = range__get_varint(&r);
    if (r.bad || m->from == RAFT_NONE || m->to == RAFT_NONE || n > RANGE_CODEC_ENTRIES_MAX ||
        (n > 0 && m->type != RAFT_MSG_APPEND))
        goto cleanup;
    /* Each entry takes at least 4 bytes: a cheap bound before allocating. */
    if (n > (uint64_t)(r.end - r.p) / 4)
        goto cleanup;
    if (n > 0) {
        entries = base_calloc((size_t)n, sizeof(*entries));
        if (entries == NULL) {
            rc = RANGE_ERR_NOMEM;
            goto cleanup;
        }
    }
    for (uint64_t i = 0; i < n; i++) {
        raft_entry *e = &entries[i];
        e->term = range__get_varint(&r);
        e->index = range__get_varint(&r);
        uint8_t et = range__get_u8(&r);
        uint64_t elen = range__get_varint(&r);
        const uint8_t *bytes = range__get_raw(&r, elen);
        if (r.bad || et > RAFT_ENTRY_CONFIG)
            goto cleanup;
        /* consecutive indexes, never 0 (the core would reject it anyway) */
        if (e->index == 0 || (i > 0 && e->index != entries[i - 1].index + 1))
            goto cleanup;
        e->type = (raft_entry_type)et;
        e->data = (uint8_t *)bytes; /* borrowed from the payload */
        e->len = (size_t)elen;
        if (elen == 0)
            e->data = NULL;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        uint64_t dlen = range__get_varint(&r);
        const uint8_t *bytes = range__get_raw(&r, dlen);
        if (r.bad || n > 0 || dlen > RANGE_CODEC_CHUNK_MAX ||
            m->seq > REPLICA_SNAPSHOT_STREAM_MAX - dlen)
            goto cleanup;
        m->data = dlen > 0 ? (uint8_t *)bytes : NULL; /* borrowed from the payload */
        m->len = (size_t)dlen;
    }
    if (r.p != r.end)
        goto cleanup; /* trailing bytes */
    m->entries = entries;
    m->n_entries = (size_t)n;
    return RANGE_OK;
cleanup:
    base_free(entries);
    memset(out, 0, sizeof(*out));
    return rc;
}

void range_raft_msg_free(range_raft_msg *m)
{
    if (m == NULL)
        return;
    base_free(m->msg.entries);
    memset(m, 0, sizeof(*m));
}

/* ---- batches of Raft messages ------------------------------------------------ */

static size_t batch_count_at(const uint8_t *p) { return (size_t)p[1] << 8 | p[2]; }

int range_raft_batch_start(base_buf *out)
{
    static const uint8_t header[RANGE_BATCH_HEADER_SIZE] = {RANGE_CODEC_BATCH_VERSION, 0, 0};
    if (out == NULL)
        return RANGE_ERR_INVALID;
    base_buf_reset(out);
    return base_buf_append(out, header, sizeof(header)) == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
}

size_t range_raft_batch_count(const base_buf *batch)
{
    if (batch == NULL || batch->len < RANGE_BATCH_HEADER_SIZE)
        return 0;
    return batch_count_at(batch->data);
}

int range_raft_batch_add(base_buf *batch, const uint8_t *msg, size_t len)
{
    if (batch == NULL || msg == NULL || len == 0 || batch->len < RANGE_BATCH_HEADER_SIZE ||
        batch->data[0] != RANGE_CODEC_BATCH_VERSION)
        return RANGE_ERR_INVALID;
    size_t count = batch_count_at(batch->data);
    /* len's varint takes at most RANGE__VARINT_SIZE_MAX bytes */
    if (count >= RANGE_BATCH_MSGS_MAX || batch->len > RANGE_BATCH_BYTES_MAX ||
        len > RANGE_BATCH_BYTES_MAX - batch->len ||
        RANGE__VARINT_SIZE_MAX > RANGE_BATCH_BYTES_MAX - batch->len - len)
        return RANGE_ERR_TOO_LARGE;
    size_t before = batch->len;
    if (range__put_varint(batch, len) != 0 || base_buf_append(batch, msg, len) != 0) {
        batch->len = before;
        return RANGE_ERR_NOMEM;
    }
    count++;
    batch->data[1] = (uint8_t)(count >> 8);
    batch->data[2] = (uint8_t)count;
    return RANGE_OK;
}

int range_raft_batch_decode(const uint8_t *data, size_t len, range_raft_batch *out)
{
    reader r = {data, data != NULL ? data + len : NULL, false}; /* NULL + 0 is UB */
    range_raft_msg *msgs = NULL;
    size_t n = 0;
    int rc = RANGE_ERR_CORRUPT;
    memset(out, 0, sizeof(*out));
    if (data == NULL || len < RANGE_BATCH_HEADER_SIZE || len > RANGE_BATCH_BYTES_MAX ||
        data[0] != RANGE_CODEC_BATCH_VERSION)
        return RANGE_ERR_CORRUPT;
    size_t count = batch_count_at(data);
    r.p += RANGE_BATCH_HEADER_SIZE;
    /* Each message takes at least 2 bytes (its length, one byte): a cheap
    ** bound before allocating. */
    if (count == 0 || count > RANGE_BATCH_MSGS_MAX || count > (size_t)(r.end - r.p) / 2)
        return RANGE_ERR_CORRUPT;
    msgs = base_calloc(count, sizeof(*msgs));
    if (msgs == NULL)
        return RANGE_ERR_NOMEM;
    for (; n < count; n++) {
        uint64_t mlen = range__get_varint(&r);
        const uint8_t *bytes = range__get_raw(&r, mlen);
        if (r.bad || mlen == 0)
            goto cleanup;
        int mrc = range_raft_msg_decode(bytes, (size_t)mlen, &msgs[n]);
        if (mrc != RANGE_OK) {
            rc = mrc;
            goto cleanup;
        }
    }
    if (r.p != r.end)
        goto cleanup; /* trailing bytes */
    out->msgs = msgs;
    out->n = count;
    return RANGE_OK;
cleanup:
    for (size_t i = 0; i < n; i++)
        range_raft_msg_free(&msgs[i]);
    base_free(msgs);
    return rc;
}

void range_raft_batch_free(range_raft_batch *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++)
        range_raft_msg_free(&b->msgs[i]);
    base_free(b->msgs);
    memset(b, 0, sizeof(*b));
}

/* ---- commands --------------------------------------------------------------- */

int range_command_encode(const range_command *cmd, base_buf *out)
{
    int rc = 0;
    if (cmd == NULL || out == NULL || cmd->write_count > RANGE_COMMAND_WRITES_MAX ||
        (cmd->write_count > 0 && cmd->writes == NULL) || cmd->commit_ts.wall_ns < 0 ||
        cmd->commit_ts.logical < 0)
        return RANGE_ERR_INVALID;
    if (cmd->raw_write_count > RANGE_COMMAND_WRITES_MAX ||
        (cmd->raw_write_count > 0 && cmd->raw_writes == NULL))
        return RANGE_ERR_INVALID;
    for (size_t i = 0; i < cmd->raw_write_count; i++) {
        const range_raw_write *w = &cmd->raw_writes[i];
        if (w->key == NULL || w->key_len == 0 || w->key_len > STORAGE_KEY_SIZE_MAX ||
            w->kind > RANGE_RAW_RESOLVE ||
            (w->kind != RANGE_RAW_DELETE &&
             (w->value_len > STORAGE_VALUE_SIZE_MAX || (w->value_len > 0 && w->value == NULL))))
            return RANGE_ERR_INVALID;
    }
    for (size_t i = 0; i < cmd->write_count; i++)
        if (cmd->writes[i].key == NULL || cmd->writes[i].key_len == 0 ||
            cmd->writes[i].key_len > STORAGE_KEY_SIZE_MAX ||
            (!cmd->writes[i].tombstone && cmd->writes[i].value_len > STORAGE_VALUE_SIZE_MAX) ||
            (!cmd->writes[i].tombstone && cmd->writes[i].value_len > 0 &&
             cmd->writes[i].value == NULL))
            return RANGE_ERR_INVALID;
    rc |= put_u8(out, cmd->raw_write_count > 0 ? RANGE_COMMAND_VERSION_RAW : RANGE_CODEC_VERSION);
    rc |= range__put_varint(out, cmd->txn_id);
    rc |= range__put_varint(out, cmd->seq);
    rc |= range__put_varint(out, (uint64_t)cmd->commit_ts.wall_ns);
    rc |= range__put_varint(out, (uint64_t)cmd->commit_ts.logical);
    rc |= range__put_varint(out, cmd->write_count);
    for (size_t i = 0; i < cmd->write_count && rc == 0; i++) {
        const range_write *w = &cmd->writes[i];
        rc |= put_u8(out, w->tombstone ? 1 : 0);
        rc |= range__put_varint(out, w->key_len);
        rc |= base_buf_append(out, w->key, w->key_len);
        if (!w->tombstone) {
            rc |= range__put_varint(out, w->value_len);
            if (w->value_len > 0)
                rc |= base_buf_append(out, w->value, w->value_len);
        }
    }
    if (cmd->raw_write_count > 0)
        rc |= range__put_varint(out, cmd->raw_write_count);
    for (size_t i = 0; i < cmd->raw_write_count && rc == 0; i++) {
        const range_raw_write *w = &cmd->raw_writes[i];
        rc |= put_u8(out, w->kind);
        rc |= range__put_varint(out, w->key_len);
        rc |= base_buf_append(out, w->key, w->key_len);
        if (w->kind != RANGE_RAW_DELETE) {
            rc |= range__put_varint(out, w->value_len);
            if (w->value_len > 0)
                rc |= base_buf_append(out, w->value, w->value_len);
        }
    }
    return rc == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
}

/* The raw writes of a version-2 command, after its writes: into the tail of
** the writes' allocation (see range_command_decode). */
static int command_decode_raw(reader *r, range_command *cmd, range_write **writes)
{
    uint64_t m = range__get_varint(r);
    if (r->bad || m == 0 || m > RANGE_COMMAND_WRITES_MAX || m > (uint64_t)(r->end - r->p) / 3)
        return RANGE_ERR_CORRUPT;
    size_t head = cmd->write_count * sizeof(range_write);
    uint8_t *block = base_realloc(*writes, head + (size_t)m * sizeof(range_raw_write));
    if (block == NULL)
        return RANGE_ERR_NOMEM;
    *writes = (range_write *)(void *)block;
    cmd->writes = cmd->write_count > 0 ? *writes : NULL;
    range_raw_write *raw = (range_raw_write *)(void *)(block + head);
    for (uint64_t i = 0; i < m; i++) {
        range_raw_write *w = &raw[i];
        memset(w, 0, sizeof(*w));
        w->kind = range__get_u8(r);
        uint64_t klen = range__get_varint(r);
        if (r->bad || w->kind > RANGE_RAW_RESOLVE || klen == 0 || klen > STORAGE_KEY_SIZE_MAX)
            return RANGE_ERR_CORRUPT;
        w->key = range__get_raw(r, klen);
        w->key_len = (size_t)klen;
        if (w->kind != RANGE_RAW_DELETE) {
            uint64_t vlen = range__get_varint(r);
            if (r->bad || vlen > STORAGE_VALUE_SIZE_MAX)
                return RANGE_ERR_CORRUPT;
            w->value = range__get_raw(r, vlen);
            w->value_len = (size_t)vlen;
        }
        if (r->bad)
            return RANGE_ERR_CORRUPT;
    }
    cmd->raw_writes = raw;
    cmd->raw_write_count = (size_t)m;
    return RANGE_OK;
}

int range_command_decode(const uint8_t *data, size_t len, range_command *cmd,
                         range_write **writes_out)
{
    reader r = {data, data != NULL ? data + len : NULL, false}; /* NULL + 0 is UB */
    range_write *writes = NULL;
    int rc = RANGE_ERR_CORRUPT;
    memset(cmd, 0, sizeof(*cmd));
    *writes_out = NULL;
    uint8_t version = data == NULL || len == 0 ? 0 : range__get_u8(&r);
    if (version != RANGE_CODEC_VERSION && version != RANGE_COMMAND_VERSION_RAW)
        goto cleanup;
    cmd->txn_id = range__get_varint(&r);
    cmd->seq = range__get_varint(&r);
    uint64_t wall = range__get_varint(&r);
    uint64_t logical = range__get_varint(&r);
    uint64_t n = range__get_varint(&r);
    if (r.bad || wall > (uint64_t)INT64_MAX || logical > (uint64_t)INT32_MAX ||
        n > RANGE_COMMAND_WRITES_MAX || n > (uint64_t)(r.end - r.p) / 3)
        goto cleanup;
    cmd->commit_ts.wall_ns = (int64_t)wall;
    cmd->commit_ts.logical = (int32_t)logical;
    if (n > 0) {
        writes = base_calloc((size_t)n, sizeof(*writes));
        if (writes == NULL) {
            rc = RANGE_ERR_NOMEM;
            goto cleanup;
        }
    }
    for (uint64_t i = 0; i < n; i++) {
        range_write *w = &writes[i];
        uint8_t flags = range__get_u8(&r);
        uint64_t klen = range__get_varint(&r);
        if (r.bad || (flags & ~1u) != 0 || klen == 0 || klen > STORAGE_KEY_SIZE_MAX)
            goto cleanup;
        w->key = range__get_raw(&r, klen);
        w->key_len = (size_t)klen;
        w->tombstone = (flags & 1) != 0;
        if (!w->tombstone) {
            uint64_t vlen = range__get_varint(&r);
            if (r.bad || vlen > STORAGE_VALUE_SIZE_MAX)
                goto cleanup;
            w->value = range__get_raw(&r, vlen);
            w->value_len = (size_t)vlen;
        }
        if (r.bad)
            goto cleanup;
    }
    cmd->writes = writes;
    cmd->write_count = (size_t)n;
    if (version == RANGE_COMMAND_VERSION_RAW) {
        rc = command_decode_raw(&r, cmd, &writes);
        if (rc != RANGE_OK)
            goto cleanup;
        rc = RANGE_ERR_CORRUPT;
    }
    if (r.p != r.end)
        goto cleanup;
    *writes_out = writes;
    return RANGE_OK;
cleanup:
    base_free(writes);
    memset(cmd, 0, sizeof(*cmd));
    return rc;
}

/* ---- version GC entries ------------------------------------------------------ */

static void mvcc_gc_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t mvcc_gc_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int replica__mvcc_gc_encode(hlc_timestamp threshold, const uint8_t *key_bytes,
                            const size_t *offsets, size_t n_keys, base_buf *out)
{
    uint8_t head[REPLICA_MVCC_GC_HEADER];
    size_t total = REPLICA_MVCC_GC_HEADER;
    if (n_keys > REPLICA_MVCC_GC_KEYS_MAX || threshold.wall_ns <= 0 || threshold.logical < 0)
        return RANGE_ERR_INVALID;
    for (size_t i = 0; i < n_keys; i++) {
        size_t klen = offsets[i + 1] - offsets[i];
        if (offsets[i + 1] < offsets[i] || klen == 0 || klen > STORAGE_KEY_SIZE_MAX)
            return RANGE_ERR_INVALID;
        if (i > 0 && range__key_cmp(key_bytes + offsets[i - 1], offsets[i] - offsets[i - 1],
                                    key_bytes + offsets[i], klen) >= 0)
            return RANGE_ERR_INVALID;
        total += 4 + klen;
        if (total > REPLICA_MVCC_GC_BYTES_MAX)
            return RANGE_ERR_INVALID;
    }
    size_t base_len = out->len;
    head[0] = REPLICA_MVCC_GC_TAG;
    hlc_encode(threshold, head + 1);
    mvcc_gc_put_u32(head + 1 + HLC_ENCODED_SIZE, (uint32_t)n_keys);
    int rc = base_buf_append(out, head, sizeof(head));
    for (size_t i = 0; i < n_keys && rc == 0; i++) {
        uint8_t len[4];
        mvcc_gc_put_u32(len, (uint32_t)(offsets[i + 1] - offsets[i]));
        rc = base_buf_append(out, len, 4);
        if (rc == 0)
            rc = base_buf_append(out, key_bytes + offsets[i], offsets[i + 1] - offsets[i]);
    }
    if (rc != 0) {
        out->len = base_len;
        return RANGE_ERR_NOMEM;
    }
    return RANGE_OK;
}

int replica__mvcc_gc_decode(const uint8_t *data, size_t len, hlc_timestamp *threshold,
                            uint32_t *n_keys)
{
    if (len < REPLICA_MVCC_GC_HEADER || len > REPLICA_MVCC_GC_BYTES_MAX ||
        data[0] != REPLICA_MVCC_GC_TAG)
        return RANGE_ERR_CORRUPT;
    hlc_timestamp t = hlc_decode(data + 1);
    uint32_t n = mvcc_gc_get_u32(data + 1 + HLC_ENCODED_SIZE);
    if (t.wall_ns <= 0 || t.logical < 0 || n > REPLICA_MVCC_GC_KEYS_MAX)
        return RANGE_ERR_CORRUPT;
    size_t at = REPLICA_MVCC_GC_HEADER;
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (len - at < 4)
            return RANGE_ERR_CORRUPT;
        uint32_t klen = mvcc_gc_get_u32(data + at);
        at += 4;
        if (klen == 0 || klen > STORAGE_KEY_SIZE_MAX || klen > len - at)
            return RANGE_ERR_CORRUPT;
        if (prev != NULL && range__key_cmp(prev, prev_len, data + at, klen) >= 0)
            return RANGE_ERR_CORRUPT;
        prev = data + at;
        prev_len = klen;
        at += klen;
    }
    if (at != len)
        return RANGE_ERR_CORRUPT; /* trailing bytes */
    *threshold = t;
    *n_keys = n;
    return RANGE_OK;
}

void replica__mvcc_gc_key(const uint8_t *data, size_t *at, const uint8_t **key, size_t *key_len)
{
    *key_len = mvcc_gc_get_u32(data + *at);
    *key = data + *at + 4;
    *at += 4 + *key_len;
}
