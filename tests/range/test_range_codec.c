/*
** tests/range/test_range_codec.c: the Raft message and command codecs of
** range/replica_codec.c. Round trips; every strict prefix rejected; every
** single-byte change either rejected or decoded into a well-formed message
** (never a crash, never a read outside the buffer: run under ASan); the
** specific corruptions (version, type, flags, counts, lengths, trailing
** bytes, index gaps) rejected. Batches (messages coalesced per node pair):
** round trips, the count and byte limits, every prefix and single-byte
** change, named corruptions, out of memory; and a range_node over rpc_sim
** answering a batch with one batch, dropping malformed ones.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"
#include "range/range.h"
#include "range/replica_int.h"
#include "rpc/rpc.h"
#include "storage/storage.h"

static void make_append(raft_message *m, raft_entry *entries, uint8_t bufs[3][16])
{
    memset(m, 0, sizeof(*m));
    m->type = RAFT_MSG_APPEND;
    m->from = 1;
    m->to = 3;
    m->term = 7;
    m->log_term = 6;
    m->index = 41;
    m->commit = 40;
    m->hint_index = 0;
    m->seq = 123456789012ULL;
    m->reject = false;
    m->force = true;
    for (int i = 0; i < 3; i++) {
        memset(bufs[i], 'a' + i, 16);
        entries[i].term = 7;
        entries[i].index = 42 + (uint64_t)i;
        entries[i].type = i == 0 ? RAFT_ENTRY_EMPTY : RAFT_ENTRY_NORMAL;
        entries[i].data = i == 0 ? NULL : bufs[i];
        entries[i].len = i == 0 ? 0 : (size_t)(5 * i);
    }
    m->entries = entries;
    m->n_entries = 3;
}

static void assert_same_message(const raft_message *a, const raft_message *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->from, b->from);
    assert_int_equal(a->to, b->to);
    assert_int_equal(a->term, b->term);
    assert_int_equal(a->log_term, b->log_term);
    assert_int_equal(a->index, b->index);
    assert_int_equal(a->commit, b->commit);
    assert_int_equal(a->hint_index, b->hint_index);
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->reject, b->reject);
    assert_int_equal(a->force, b->force);
    assert_int_equal(a->n_entries, b->n_entries);
    for (size_t i = 0; i < a->n_entries; i++) {
        assert_int_equal(a->entries[i].term, b->entries[i].term);
        assert_int_equal(a->entries[i].index, b->entries[i].index);
        assert_int_equal(a->entries[i].type, b->entries[i].type);
        assert_int_equal(a->entries[i].len, b->entries[i].len);
        if (a->entries[i].len > 0)
            assert_memory_equal(a->entries[i].data, b->entries[i].data, a->entries[i].len);
    }
}

static void test_raft_roundtrip(void **state)
{
    (void)state;
    raft_message m;
    raft_entry entries[3];
    uint8_t bufs[3][16];
    make_append(&m, entries, bufs);
    for (int type = RAFT_MSG_APPEND; type <= RAFT_MSG_TIMEOUT_NOW; type++) {
        base_buf b = {0};
        range_raft_msg d;
        m.type = (raft_message_type)type;
        m.n_entries = type == RAFT_MSG_APPEND ? 3 : 0;
        m.reject = type % 2 == 0;
        assert_int_equal(range_raft_msg_encode(99, &m, &b), RANGE_OK);
        assert_int_equal(range_raft_msg_decode(b.data, b.len, &d), RANGE_OK);
        assert_int_equal(d.range_id, 99);
        assert_same_message(&m, &d.msg);
        range_raft_msg_free(&d);
        base_buf_free(&b);
    }
    /* extreme values */
    m.type = RAFT_MSG_HEARTBEAT;
    m.n_entries = 0;
    m.term = UINT64_MAX;
    m.seq = UINT64_MAX;
    m.from = UINT64_MAX;
    base_buf b = {0};
    range_raft_msg d;
    assert_int_equal(range_raft_msg_encode(UINT64_MAX, &m, &b), RANGE_OK);
    assert_int_equal(range_raft_msg_decode(b.data, b.len, &d), RANGE_OK);
    assert_same_message(&m, &d.msg);
    range_raft_msg_free(&d);
    base_buf_free(&b);
}

static void test_raft_encode_rejects(void **state)
{
    (void)state;
    raft_message m;
    raft_entry entries[3];
    uint8_t bufs[3][16];
    base_buf b = {0};
    make_append(&m, entries, bufs);
    m.type = (raft_message_type)42; /* neither a raft type nor REMOVED */
    assert_int_equal(range_raft_msg_encode(1, &m, &b), RANGE_ERR_INVALID);
    m.type = RAFT_MSG_APPEND;
    m.n_entries = RANGE_CODEC_ENTRIES_MAX + 1;
    assert_int_equal(range_raft_msg_encode(1, &m, &b), RANGE_ERR_INVALID);
    base_buf_free(&b);
}

static void test_raft_truncation_and_corruption(void **state)
{
    (void)state;
    raft_message m;
    raft_entry entries[3];
    uint8_t bufs[3][16];
    base_buf b = {0};
    range_raft_msg d;
    make_append(&m, entries, bufs);
    assert_int_equal(range_raft_msg_encode(5, &m, &b), RANGE_OK);
    /* every strict prefix is rejected */
    for (size_t len = 0; len < b.len; len++) {
        uint8_t *copy = malloc(len + 1); /* exact size: ASan catches overreads */
        memcpy(copy, b.data, len);
        assert_int_equal(range_raft_msg_decode(len ? copy : NULL, len, &d), RANGE_ERR_CORRUPT);
        free(copy);
    }
    /* trailing byte */
    {
        uint8_t *copy = malloc(b.len + 1);
        memcpy(copy, b.data, b.len);
        copy[b.len] = 0;
        assert_int_equal(range_raft_msg_decode(copy, b.len + 1, &d), RANGE_ERR_CORRUPT);
        free(copy);
    }
    /* every single-byte change: rejected or well formed; never a crash */
    size_t accepted = 0;
    for (size_t i = 0; i < b.len; i++) {
        for (int v = 0; v < 256; v += 17) {
            uint8_t *copy = malloc(b.len);
            memcpy(copy, b.data, b.len);
            copy[i] = (uint8_t)(copy[i] ^ (uint8_t)(v | 1));
            int rc = range_raft_msg_decode(copy, b.len, &d);
            if (rc == RANGE_OK) {
                accepted++;
                assert_true((d.msg.type >= RAFT_MSG_APPEND &&
                             d.msg.type <= RAFT_MSG_SNAPSHOT_RESP) ||
                            (int)d.msg.type == 0x40);
                assert_true(d.msg.from != 0 && d.msg.to != 0);
                for (size_t k = 0; k < d.msg.n_entries; k++)
                    if (d.msg.entries[k].len > 0)
                        assert_true(d.msg.entries[k].data >= copy &&
                                    d.msg.entries[k].data + d.msg.entries[k].len <= copy + b.len);
                range_raft_msg_free(&d);
            } else {
                assert_int_equal(rc, RANGE_ERR_CORRUPT);
            }
            free(copy);
        }
    }
    (void)accepted;
    /* named corruptions */
    uint8_t *c = malloc(b.len);
    memcpy(c, b.data, b.len);
    c[0] = RANGE_CODEC_VERSION + 1; /* version */
    assert_int_equal(range_raft_msg_decode(c, b.len, &d), RANGE_ERR_CORRUPT);
    memcpy(c, b.data, b.len);
    c[2] = 0; /* type (range id 5 is one byte) */
    assert_int_equal(range_raft_msg_decode(c, b.len, &d), RANGE_ERR_CORRUPT);
    c[2] = 77;
    assert_int_equal(range_raft_msg_decode(c, b.len, &d), RANGE_ERR_CORRUPT);
    memcpy(c, b.data, b.len);
    c[3] = 4; /* unknown flag bit */
    assert_int_equal(range_raft_msg_decode(c, b.len, &d), RANGE_ERR_CORRUPT);
    free(c);
    base_buf_free(&b);

    /* an index gap between entries */
    make_append(&m, entries, bufs);
    entries[2].index = 50;
    assert_int_equal(range_raft_msg_encode(5, &m, &b), RANGE_OK);
    assert_int_equal(range_raft_msg_decode(b.data, b.len, &d), RANGE_ERR_CORRUPT);
    base_buf_free(&b);
    /* a huge entry count with few bytes */
    uint8_t huge[] = {RANGE_CODEC_VERSION, 5, RAFT_MSG_APPEND, 0, 1, 2, 1, 1, 1, 1, 0, 0,
                      0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(range_raft_msg_decode(huge, sizeof(huge), &d), RANGE_ERR_CORRUPT);
    /* an overlong varint */
    uint8_t overlong[] = {RANGE_CODEC_VERSION, 0xff, 0xff, 0xff, 0xff, 0xff,
                          0xff, 0xff, 0xff, 0xff, 0x7f, RAFT_MSG_HEARTBEAT, 0};
    assert_int_equal(range_raft_msg_decode(overlong, sizeof(overlong), &d), RANGE_ERR_CORRUPT);
}

/* Snapshot chunks (data after the entries), their answers and the
** range-level REMOVED notice; the chunk and stream bounds. */
static void test_snapshot_messages(void **state)
{
    (void)state;
    uint8_t chunk[300];
    raft_message m;
    base_buf b = {0};
    range_raft_msg d;
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (uint8_t)(i * 7);
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_SNAPSHOT;
    m.from = 2;
    m.to = 5;
    m.term = 9;
    m.log_term = 8;
    m.index = 1234;
    m.seq = 1 << 20; /* the chunk's offset in the stream */
    m.force = true;
    m.data = chunk;
    m.len = sizeof(chunk);
    assert_int_equal(range_raft_msg_encode(3, &m, &b), RANGE_OK);
    assert_int_equal(range_raft_msg_decode(b.data, b.len, &d), RANGE_OK);
    assert_same_message(&m, &d.msg);
    assert_int_equal(d.msg.len, sizeof(chunk));
    assert_true(d.msg.data >= b.data && d.msg.data + d.msg.len <= b.data + b.len); /* borrowed */
    assert_memory_equal(d.msg.data, chunk, sizeof(chunk));
    range_raft_msg_free(&d);
    /* every strict prefix refused (exact-size copies: ASan sees overreads) */
    for (size_t len = 0; len < b.len; len++) {
        uint8_t *copy = malloc(len + 1);
        memcpy(copy, b.data, len);
        assert_int_equal(range_raft_msg_decode(len ? copy : NULL, len, &d), RANGE_ERR_CORRUPT);
        free(copy);
    }
    base_buf_free(&b);
    /* an empty last chunk; the answer; the notice */
    m.len = 0;
    m.data = NULL;
    assert_int_equal(range_raft_msg_encode(3, &m, &b), RANGE_OK);
    assert_int_equal(range_raft_msg_decode(b.data, b.len, &d), RANGE_OK);
    assert_null(d.msg.data);
    range_raft_msg_free(&d);
    base_buf_free(&b);
    m.type = RAFT_MSG_SNAPSHOT_RESP;
    m.hint_index = 4096;
    assert_int_equal(range_raft_msg_encode(3, &m, &b), RANGE_OK);
    assert_int_equal(range_raft_msg_decode(b.data, b.len, &d), RANGE_OK);
    assert_same_message(&m, &d.msg);
    range_raft_msg_free(&d);
    base_buf_free(&b);
    memset(&m, 0, sizeof(m));
    m.type = (raft_message_type)0x40; /* REPLICA_MSG_REMOVED: generation in index */
    m.from = 1;
    m.to = 4;
    m.index = 17;
    assert_int_equal(range_raft_msg_encode(3, &m, &b), RANGE_OK);
    assert_int_equal(range_raft_msg_decode(b.data, b.len, &d), RANGE_OK);
    assert_same_message(&m, &d.msg);
    range_raft_msg_free(&d);
    base_buf_free(&b);
    /* refused: data on another type, a chunk above the bound, a stream
    ** offset past the largest snapshot */
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_HEARTBEAT;
    m.from = 1;
    m.to = 2;
    m.data = chunk;
    m.len = 4;
    assert_int_equal(range_raft_msg_encode(3, &m, &b), RANGE_ERR_INVALID);
    m.type = RAFT_MSG_SNAPSHOT;
    m.len = RANGE_CODEC_CHUNK_MAX + 1;
    assert_int_equal(range_raft_msg_encode(3, &m, &b), RANGE_ERR_INVALID);
    m.len = 4;
    m.seq = (uint64_t)1 << 40;
    assert_int_equal(range_raft_msg_encode(3, &m, &b), RANGE_ERR_INVALID);
    m.seq = 0;
    assert_int_equal(range_raft_msg_encode(3, &m, &b), RANGE_OK);
    /* the same bytes with the offset forged past the bound: refused */
    {
        uint8_t forged[64];
        size_t at = 0;
        forged[at++] = RANGE_CODEC_VERSION;
        forged[at++] = 3;                 /* range */
        forged[at++] = RAFT_MSG_SNAPSHOT; /* type */
        forged[at++] = 0;                 /* flags */
        forged[at++] = 1;                 /* from */
        forged[at++] = 2;                 /* to */
        for (int k = 0; k < 5; k++)
            forged[at++] = 0; /* term .. hint_index */
        for (int k = 0; k < 5; k++)
            forged[at++] = 0x80; /* seq = 1 << 35 */
        forged[at++] = 0x01;
        forged[at++] = 0; /* n_entries */
        forged[at++] = 1; /* len */
        forged[at++] = 0xaa;
        assert_int_equal(range_raft_msg_decode(forged, at, &d), RANGE_ERR_CORRUPT);
    }
    base_buf_free(&b);
}

static void test_command_roundtrip_and_truncation(void **state)
{
    (void)state;
    range_write w[3] = {
        {(const uint8_t *)"alpha", 5, (const uint8_t *)"one", 3, false},
        {(const uint8_t *)"beta", 4, NULL, 0, true},
        {(const uint8_t *)"gamma", 5, (const uint8_t *)"", 0, false},
    };
    range_command cmd = {.txn_id = 77, .seq = 3, .commit_ts = {1700000000123456789LL, 9},
                         .writes = w, .write_count = 3};
    base_buf b = {0};
    range_command d;
    range_write *dw;
    assert_int_equal(range_command_encode(&cmd, &b), RANGE_OK);
    assert_int_equal(range_command_decode(b.data, b.len, &d, &dw), RANGE_OK);
    assert_int_equal(d.txn_id, 77);
    assert_int_equal(d.seq, 3);
    assert_int_equal(d.commit_ts.wall_ns, cmd.commit_ts.wall_ns);
    assert_int_equal(d.commit_ts.logical, 9);
    assert_int_equal(d.write_count, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d.writes[i].key_len, w[i].key_len);
        assert_memory_equal(d.writes[i].key, w[i].key, w[i].key_len);
        assert_int_equal(d.writes[i].tombstone, w[i].tombstone);
        if (!w[i].tombstone) {
            assert_int_equal(d.writes[i].value_len, w[i].value_len);
            if (w[i].value_len)
                assert_memory_equal(d.writes[i].value, w[i].value, w[i].value_len);
        }
    }
    base_free(dw);
    for (size_t len = 0; len < b.len; len++) {
        uint8_t *copy = malloc(len + 1);
        memcpy(copy, b.data, len);
        assert_int_equal(range_command_decode(len ? copy : NULL, len, &d, &dw), RANGE_ERR_CORRUPT);
        assert_null(dw);
        free(copy);
    }
    for (size_t i = 0; i < b.len; i++) {
        uint8_t *copy = malloc(b.len);
        memcpy(copy, b.data, b.len);
        copy[i] ^= 0x80;
        int rc = range_command_decode(copy, b.len, &d, &dw);
        assert_true(rc == RANGE_OK || rc == RANGE_ERR_CORRUPT);
        base_free(dw);
        free(copy);
    }
    base_buf_free(&b);
    /* invalid commands are refused at encode */
    range_write empty = {(const uint8_t *)"", 0, NULL, 0, false};
    cmd.writes = &empty;
    cmd.write_count = 1;
    assert_int_equal(range_command_encode(&cmd, &b), RANGE_ERR_INVALID);
    cmd.write_count = 0;
    cmd.commit_ts.wall_ns = -1;
    assert_int_equal(range_command_encode(&cmd, &b), RANGE_ERR_INVALID);
    base_buf_free(&b);
}

/* Out of memory at every allocation in turn: NOMEM or OK, nothing leaked. */
static void test_decode_out_of_memory(void **state)
{
    (void)state;
    raft_message m;
    raft_entry entries[3];
    uint8_t bufs[3][16];
    base_buf b = {0};
    range_raft_msg d;
    make_append(&m, entries, bufs);
    assert_int_equal(range_raft_msg_encode(5, &m, &b), RANGE_OK);
    int ok = 0;
    for (long n = 0; n < 10 && !ok; n++) {
        base_alloc_fail_after(n);
        int rc = range_raft_msg_decode(b.data, b.len, &d);
        base_alloc_fail_after(-1);
        if (rc == RANGE_OK) {
            ok = 1;
            range_raft_msg_free(&d);
        } else {
            assert_int_equal(rc, RANGE_ERR_NOMEM);
        }
    }
    assert_true(ok);
    range_write w = {(const uint8_t *)"k", 1, (const uint8_t *)"v", 1, false};
    range_command cmd = {.txn_id = 1, .seq = 1, .commit_ts = {1, 0}, .writes = &w,
                         .write_count = 1};
    base_buf cb = {0};
    ok = 0;
    for (long n = 0; n < 10 && !ok; n++) {
        base_buf_free(&cb);
        base_alloc_fail_after(n);
        int rc = range_command_encode(&cmd, &cb);
        base_alloc_fail_after(-1);
        if (rc == RANGE_OK)
            ok = 1;
        else
            assert_int_equal(rc, RANGE_ERR_NOMEM);
    }
    assert_true(ok);
    ok = 0;
    for (long n = 0; n < 10 && !ok; n++) {
        range_command dc;
        range_write *dw;
        base_alloc_fail_after(n);
        int rc = range_command_decode(cb.data, cb.len, &dc, &dw);
        base_alloc_fail_after(-1);
        if (rc == RANGE_OK) {
            ok = 1;
            base_free(dw);
        } else {
            assert_int_equal(rc, RANGE_ERR_NOMEM);
        }
    }
    assert_true(ok);
    base_buf_free(&cb);
    base_buf_free(&b);
}

/* ---- batches ------------------------------------------------------------------ */

/* A heartbeat (or its answer) of range_id from `from` to `to`. */
static void make_heartbeat(raft_message *m, bool resp, uint64_t from, uint64_t to)
{
    memset(m, 0, sizeof(*m));
    m->type = resp ? RAFT_MSG_HEARTBEAT_RESP : RAFT_MSG_HEARTBEAT;
    m->from = from;
    m->to = to;
    m->term = 3;
    m->commit = 17;
    m->seq = 99;
}

/* Encode msg of range_id and add it to batch. */
static int batch_add_msg(base_buf *batch, uint64_t range_id, const raft_message *msg)
{
    base_buf one = {0};
    assert_int_equal(range_raft_msg_encode(range_id, msg, &one), RANGE_OK);
    int rc = range_raft_batch_add(batch, one.data, one.len);
    base_buf_free(&one);
    return rc;
}

/* A batch of four messages of different types and ranges. */
static void make_batch(base_buf *b, raft_message ms[4], uint64_t ids[4], raft_entry entries[3],
                       uint8_t bufs[3][16])
{
    make_heartbeat(&ms[0], false, 1, 3);
    make_heartbeat(&ms[1], true, 1, 3);
    make_append(&ms[2], entries, bufs);
    memset(&ms[3], 0, sizeof(ms[3]));
    ms[3].type = (raft_message_type)0x40; /* REMOVED */
    ms[3].from = 1;
    ms[3].to = 3;
    ms[3].index = 5;
    ids[0] = 7;
    ids[1] = 300;
    ids[2] = 7;
    ids[3] = (uint64_t)1 << 40;
    assert_int_equal(range_raft_batch_start(b), RANGE_OK);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(batch_add_msg(b, ids[i], &ms[i]), RANGE_OK);
        assert_int_equal(range_raft_batch_count(b), (size_t)i + 1);
    }
}

static void test_batch_roundtrip_and_limits(void **state)
{
    (void)state;
    raft_message ms[4];
    uint64_t ids[4];
    raft_entry entries[3];
    uint8_t bufs[3][16];
    base_buf b = {0};
    range_raft_batch d;
    range_raft_msg one;
    make_batch(&b, ms, ids, entries, bufs);
    assert_int_equal(b.data[0], RANGE_CODEC_BATCH_VERSION);
    assert_int_equal(range_raft_batch_decode(b.data, b.len, &d), RANGE_OK);
    assert_int_equal(d.n, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(d.msgs[i].range_id, ids[i]);
        assert_same_message(&ms[i], &d.msgs[i].msg);
    }
    for (size_t k = 0; k < d.msgs[2].msg.n_entries; k++) /* borrowed from the payload */
        if (d.msgs[2].msg.entries[k].len > 0)
            assert_true(d.msgs[2].msg.entries[k].data > b.data &&
                        d.msgs[2].msg.entries[k].data < b.data + b.len);
    range_raft_batch_free(&d);
    range_raft_batch_free(&d); /* freed twice: harmless */
    /* the two payloads are told apart by their first byte */
    assert_int_equal(range_raft_msg_decode(b.data, b.len, &one), RANGE_ERR_CORRUPT);
    base_buf single = {0};
    assert_int_equal(range_raft_msg_encode(7, &ms[0], &single), RANGE_OK);
    assert_int_equal(range_raft_batch_decode(single.data, single.len, &d), RANGE_ERR_CORRUPT);
    /* a batch inside a batch is not a message */
    base_buf outer = {0};
    assert_int_equal(range_raft_batch_start(&outer), RANGE_OK);
    assert_int_equal(range_raft_batch_add(&outer, b.data, b.len), RANGE_OK);
    assert_int_equal(range_raft_batch_decode(outer.data, outer.len, &d), RANGE_ERR_CORRUPT);
    /* refused additions */
    assert_int_equal(range_raft_batch_add(&outer, single.data, 0), RANGE_ERR_INVALID);
    assert_int_equal(range_raft_batch_add(&single, single.data, single.len), RANGE_ERR_INVALID);
    base_buf empty = {0};
    assert_int_equal(range_raft_batch_add(&empty, single.data, single.len), RANGE_ERR_INVALID);
    assert_int_equal(range_raft_batch_count(&empty), 0);
    /* an empty batch is not sent, and refused */
    assert_int_equal(range_raft_batch_start(&outer), RANGE_OK);
    assert_int_equal(range_raft_batch_count(&outer), 0);
    assert_int_equal(range_raft_batch_decode(outer.data, outer.len, &d), RANGE_ERR_CORRUPT);

    /* the count limit: the batch is left as it was */
    for (size_t i = 0; i < RANGE_BATCH_MSGS_MAX; i++)
        assert_int_equal(range_raft_batch_add(&outer, single.data, single.len), RANGE_OK);
    size_t full = outer.len;
    assert_int_equal(range_raft_batch_add(&outer, single.data, single.len), RANGE_ERR_TOO_LARGE);
    assert_int_equal(outer.len, full);
    assert_int_equal(range_raft_batch_count(&outer), RANGE_BATCH_MSGS_MAX);
    assert_int_equal(range_raft_batch_decode(outer.data, outer.len, &d), RANGE_OK);
    assert_int_equal(d.n, RANGE_BATCH_MSGS_MAX);
    assert_int_equal(d.msgs[RANGE_BATCH_MSGS_MAX - 1].range_id, 7);
    range_raft_batch_free(&d);
    /* the byte limit: big messages fill it, none passes it */
    size_t big_len = RANGE_BATCH_BYTES_MAX / 3;
    uint8_t *big = calloc(1, RANGE_BATCH_BYTES_MAX);
    big[0] = RANGE_CODEC_VERSION;
    assert_int_equal(range_raft_batch_start(&outer), RANGE_OK);
    int added = 0;
    while (range_raft_batch_add(&outer, big, big_len) == RANGE_OK)
        added++;
    assert_int_equal(added, 2);
    assert_true(outer.len <= RANGE_BATCH_BYTES_MAX);
    assert_int_equal(range_raft_batch_count(&outer), 2);
    assert_int_equal(range_raft_batch_start(&outer), RANGE_OK);
    assert_int_equal(range_raft_batch_add(&outer, big, RANGE_BATCH_BYTES_MAX),
                     RANGE_ERR_TOO_LARGE);
    assert_int_equal(outer.len, RANGE_BATCH_HEADER_SIZE);
    free(big);
    base_buf_free(&outer);
    base_buf_free(&single);
    base_buf_free(&b);
}

static void test_batch_truncation_and_corruption(void **state)
{
    (void)state;
    raft_message ms[4];
    uint64_t ids[4];
    raft_entry entries[3];
    uint8_t bufs[3][16];
    base_buf b = {0};
    range_raft_batch d;
    make_batch(&b, ms, ids, entries, bufs);
    /* every strict prefix is rejected (exact-size copies: ASan sees overreads) */
    for (size_t len = 0; len < b.len; len++) {
        uint8_t *copy = malloc(len + 1);
        memcpy(copy, b.data, len);
        assert_int_equal(range_raft_batch_decode(len ? copy : NULL, len, &d), RANGE_ERR_CORRUPT);
        assert_null(d.msgs);
        free(copy);
    }
    /* a trailing byte */
    {
        uint8_t *copy = malloc(b.len + 1);
        memcpy(copy, b.data, b.len);
        copy[b.len] = 0;
        assert_int_equal(range_raft_batch_decode(copy, b.len + 1, &d), RANGE_ERR_CORRUPT);
        free(copy);
    }
    /* every single-byte change: rejected or well formed; never a crash */
    for (size_t i = 0; i < b.len; i++) {
        for (int v = 0; v < 256; v += 17) {
            uint8_t *copy = malloc(b.len);
            memcpy(copy, b.data, b.len);
            copy[i] = (uint8_t)(copy[i] ^ (uint8_t)(v | 1));
            int rc = range_raft_batch_decode(copy, b.len, &d);
            if (rc == RANGE_OK) {
                assert_true(d.n >= 1 && d.n <= RANGE_BATCH_MSGS_MAX);
                for (size_t k = 0; k < d.n; k++) {
                    const raft_message *m = &d.msgs[k].msg;
                    assert_true((m->type >= RAFT_MSG_APPEND && m->type <= RAFT_MSG_SNAPSHOT_RESP) ||
                                (int)m->type == 0x40);
                    assert_true(m->from != 0 && m->to != 0 && d.msgs[k].range_id != 0);
                    for (size_t e = 0; e < m->n_entries; e++)
                        if (m->entries[e].len > 0)
                            assert_true(m->entries[e].data >= copy &&
                                        m->entries[e].data + m->entries[e].len <= copy + b.len);
                }
                range_raft_batch_free(&d);
            } else {
                assert_int_equal(rc, RANGE_ERR_CORRUPT);
                assert_null(d.msgs);
            }
            free(copy);
        }
    }
    /* named corruptions */
    uint8_t *c = malloc(b.len);
    memcpy(c, b.data, b.len);
    c[0] = RANGE_CODEC_BATCH_VERSION + 1; /* version */
    assert_int_equal(range_raft_batch_decode(c, b.len, &d), RANGE_ERR_CORRUPT);
    memcpy(c, b.data, b.len);
    c[2] = 0; /* count 0 */
    assert_int_equal(range_raft_batch_decode(c, b.len, &d), RANGE_ERR_CORRUPT);
    c[2] = 3; /* fewer than there are: trailing bytes */
    assert_int_equal(range_raft_batch_decode(c, b.len, &d), RANGE_ERR_CORRUPT);
    c[2] = 5; /* more than there are */
    assert_int_equal(range_raft_batch_decode(c, b.len, &d), RANGE_ERR_CORRUPT);
    c[1] = (uint8_t)((RANGE_BATCH_MSGS_MAX + 1) >> 8); /* above the limit */
    c[2] = (uint8_t)(RANGE_BATCH_MSGS_MAX + 1);
    assert_int_equal(range_raft_batch_decode(c, b.len, &d), RANGE_ERR_CORRUPT);
    memcpy(c, b.data, b.len);
    c[RANGE_BATCH_HEADER_SIZE + 1] = RANGE_CODEC_VERSION + 1; /* first message's version */
    assert_int_equal(range_raft_batch_decode(c, b.len, &d), RANGE_ERR_CORRUPT);
    free(c);
    /* a zero-length message; a length past the end */
    uint8_t zero[] = {RANGE_CODEC_BATCH_VERSION, 0, 1, 0};
    assert_int_equal(range_raft_batch_decode(zero, sizeof(zero), &d), RANGE_ERR_CORRUPT);
    uint8_t past[] = {RANGE_CODEC_BATCH_VERSION, 0, 1, 0xff, 0xff, 0x03, RANGE_CODEC_VERSION};
    assert_int_equal(range_raft_batch_decode(past, sizeof(past), &d), RANGE_ERR_CORRUPT);
    /* more bytes than a batch may have */
    uint8_t *huge = calloc(1, RANGE_BATCH_BYTES_MAX + 1);
    memcpy(huge, b.data, b.len);
    assert_int_equal(range_raft_batch_decode(huge, RANGE_BATCH_BYTES_MAX + 1, &d),
                     RANGE_ERR_CORRUPT);
    free(huge);
    base_buf_free(&b);
}

/* Out of memory at every allocation in turn: NOMEM or OK, nothing leaked,
** a refused addition leaves the batch as it was. */
static void test_batch_out_of_memory(void **state)
{
    (void)state;
    raft_message ms[4];
    uint64_t ids[4];
    raft_entry entries[3];
    uint8_t bufs[3][16];
    base_buf b = {0};
    range_raft_batch d;
    make_batch(&b, ms, ids, entries, bufs);
    int ok = 0;
    for (long n = 0; n < 20 && !ok; n++) {
        base_alloc_fail_after(n);
        int rc = range_raft_batch_decode(b.data, b.len, &d);
        base_alloc_fail_after(-1);
        if (rc == RANGE_OK) {
            ok = 1;
            assert_int_equal(d.n, 4);
            range_raft_batch_free(&d);
        } else {
            assert_int_equal(rc, RANGE_ERR_NOMEM);
            assert_null(d.msgs);
        }
    }
    assert_true(ok);
    base_buf one = {0}, batch = {0};
    assert_int_equal(range_raft_msg_encode(7, &ms[2], &one), RANGE_OK);
    ok = 0;
    for (long n = 0; n < 10 && !ok; n++) {
        base_buf_free(&batch);
        base_alloc_fail_after(n);
        int rc = range_raft_batch_start(&batch);
        if (rc == RANGE_OK)
            rc = range_raft_batch_add(&batch, one.data, one.len);
        base_alloc_fail_after(-1);
        if (rc == RANGE_OK) {
            ok = 1;
            assert_int_equal(range_raft_batch_count(&batch), 1);
        } else {
            assert_int_equal(rc, RANGE_ERR_NOMEM);
            assert_true(batch.len == 0 || batch.len == RANGE_BATCH_HEADER_SIZE);
            assert_int_equal(range_raft_batch_count(&batch), 0);
        }
    }
    assert_true(ok);
    base_buf_free(&batch);
    base_buf_free(&one);
    base_buf_free(&b);
}

/* ---- a node answering batches (COALESCING, range/replica.c) -------------------- */

typedef struct capture {
    int messages;   /* rpc messages received */
    base_buf last;  /* the last payload */
} capture;

static void capture_fn(void *ctx, rpc_transport *t, const rpc_message *msg)
{
    (void)t;
    capture *c = ctx;
    assert_int_equal(msg->method, RANGE_RPC_METHOD_RAFT);
    c->messages++;
    base_buf_reset(&c->last);
    assert_int_equal(base_buf_append(&c->last, msg->payload, msg->payload_len), 0);
}

static void node_deliver(range_node *n, rpc_transport *t, uint64_t from, const base_buf *payload)
{
    rpc_message msg = {.from = from, .method = RANGE_RPC_METHOD_RAFT, .payload = payload->data,
                       .payload_len = payload->len};
    assert_true(range_node_handle_rpc(n, t, &msg));
}

/* Node 2 hosts no range: it answers every heartbeat as an empty log would.
** A batch of K heartbeats gets ONE rpc message back holding K answers in
** order; a lone heartbeat gets a lone answer (the single-message payload);
** malformed batches are dropped with nothing sent; a message whose `from`
** is not the rpc sender is dropped alone. */
/* The version GC entry (replica_int.h, "version GC"): round trip, every
** truncation and bad bound refused, the encoder's own limits. */
static void test_mvcc_gc_entry(void **state)
{
    (void)state;
    const char *k[] = {"a", "ab", "b\x00c", "zz"};
    size_t lens[] = {1, 2, 3, 2};
    base_buf keys = {0}, out = {0};
    size_t offsets[5] = {0};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(base_buf_append(&keys, k[i], lens[i]), 0);
        offsets[i + 1] = keys.len;
    }
    hlc_timestamp t = {1234567890123, 7};
    assert_int_equal(replica__mvcc_gc_encode(t, keys.data, offsets, 4, &out), RANGE_OK);
    assert_int_equal(out.data[0], REPLICA_MVCC_GC_TAG);
    hlc_timestamp got;
    uint32_t n = 0;
    assert_int_equal(replica__mvcc_gc_decode(out.data, out.len, &got, &n), RANGE_OK);
    assert_int_equal(hlc_compare(got, t), 0);
    assert_int_equal(n, 4);
    size_t at = REPLICA_MVCC_GC_HEADER;
    for (int i = 0; i < 4; i++) {
        const uint8_t *key;
        size_t key_len;
        replica__mvcc_gc_key(out.data, &at, &key, &key_len);
        assert_int_equal(key_len, lens[i]);
        assert_memory_equal(key, k[i], lens[i]);
    }
    assert_int_equal(at, out.len);
    /* every truncation, and a trailing byte */
    for (size_t len = 0; len < out.len; len++)
        assert_int_equal(replica__mvcc_gc_decode(out.data, len, &got, &n), RANGE_ERR_CORRUPT);
    assert_int_equal(base_buf_append_byte(&out, 0), 0);
    assert_int_equal(replica__mvcc_gc_decode(out.data, out.len, &got, &n), RANGE_ERR_CORRUPT);
    out.len--;
    /* keys out of order, a zero threshold, a count above the bound */
    uint8_t *copy = malloc(out.len);
    assert_non_null(copy);
    memcpy(copy, out.data, out.len);
    copy[REPLICA_MVCC_GC_HEADER + 4] = 'c'; /* "c" > "ab" */
    assert_int_equal(replica__mvcc_gc_decode(copy, out.len, &got, &n), RANGE_ERR_CORRUPT);
    memcpy(copy, out.data, out.len);
    memset(copy + 1, 0, HLC_ENCODED_SIZE);
    assert_int_equal(replica__mvcc_gc_decode(copy, out.len, &got, &n), RANGE_ERR_CORRUPT);
    memcpy(copy, out.data, out.len);
    copy[1 + HLC_ENCODED_SIZE] = 0xFF;
    assert_int_equal(replica__mvcc_gc_decode(copy, out.len, &got, &n), RANGE_ERR_CORRUPT);
    free(copy);
    /* the encoder refuses what the decoder would: unsorted, empty, too many */
    size_t bad[3] = {0, 1, 2}; /* "b" then "a" */
    base_buf_reset(&out);
    assert_int_equal(replica__mvcc_gc_encode(t, (const uint8_t *)"ba", bad, 2, &out),
                     RANGE_ERR_INVALID);
    size_t empty[3] = {0, 1, 1};
    assert_int_equal(replica__mvcc_gc_encode(t, keys.data, empty, 2, &out), RANGE_ERR_INVALID);
    assert_int_equal(replica__mvcc_gc_encode(t, keys.data, offsets, REPLICA_MVCC_GC_KEYS_MAX + 1,
                                             &out),
                     RANGE_ERR_INVALID);
    assert_int_equal(replica__mvcc_gc_encode(HLC_ZERO, keys.data, offsets, 4, &out),
                     RANGE_ERR_INVALID);
    assert_int_equal(out.len, 0);
    /* no keys at all is an entry too (the threshold alone) */
    assert_int_equal(replica__mvcc_gc_encode(t, NULL, offsets, 0, &out), RANGE_OK);
    assert_int_equal(replica__mvcc_gc_decode(out.data, out.len, &got, &n), RANGE_OK);
    assert_int_equal(n, 0);
    base_buf_free(&keys);
    base_buf_free(&out);
}

static void test_node_answers_batches(void **state)
{
    (void)state;
    enum { K = 50 };
    rpc_sim_net *net;
    rpc_transport *t1, *t2;
    rpc_sim_config sc;
    rpc_sim_config_init(&sc, 1);
    assert_int_equal(rpc_sim_net_new(&sc, &net), RPC_OK);
    assert_int_equal(rpc_sim_add_node(net, 1, NULL, &t1), RPC_OK);
    assert_int_equal(rpc_sim_add_node(net, 2, NULL, &t2), RPC_OK);
    capture cap = {0};
    rpc_set_handler(t1, capture_fn, &cap);
    storage_engine *e;
    storage_options so = {.dir = NULL, .create_if_missing = true};
    assert_int_equal(storage_open(&so, &e), STORAGE_OK);
    range_node *n;
    range_node_config nc = {.transport = t2, .engine = e, .no_handler = true};
    assert_int_equal(range_node_new(&nc, &n), RANGE_OK);

    raft_message hb;
    make_heartbeat(&hb, false, 1, 2);
    base_buf b = {0};
    assert_int_equal(range_raft_batch_start(&b), RANGE_OK);
    for (uint64_t r = 0; r < K; r++)
        assert_int_equal(batch_add_msg(&b, 100 + r, &hb), RANGE_OK);
    node_deliver(n, t2, 1, &b);
    while (rpc_sim_step(net)) {
    }
    assert_int_equal(cap.messages, 1);
    range_raft_batch d;
    assert_int_equal(range_raft_batch_decode(cap.last.data, cap.last.len, &d), RANGE_OK);
    assert_int_equal(d.n, K);
    for (size_t i = 0; i < d.n; i++) {
        assert_int_equal(d.msgs[i].range_id, 100 + i);
        assert_int_equal(d.msgs[i].msg.type, RAFT_MSG_HEARTBEAT_RESP);
        assert_int_equal(d.msgs[i].msg.from, 2);
        assert_int_equal(d.msgs[i].msg.to, 1);
    }
    range_raft_batch_free(&d);

    /* a lone heartbeat: a lone answer */
    base_buf single = {0};
    assert_int_equal(range_raft_msg_encode(100, &hb, &single), RANGE_OK);
    node_deliver(n, t2, 1, &single);
    while (rpc_sim_step(net)) {
    }
    assert_int_equal(cap.messages, 2);
    range_raft_msg one;
    assert_int_equal(range_raft_msg_decode(cap.last.data, cap.last.len, &one), RANGE_OK);
    assert_int_equal(one.range_id, 100);
    assert_int_equal(one.msg.type, RAFT_MSG_HEARTBEAT_RESP);
    range_raft_msg_free(&one);

    /* malformed batches: every prefix, a bad message inside; nothing sent */
    for (size_t len = 1; len < b.len; len += 7) {
        base_buf cut = {0};
        assert_int_equal(base_buf_append(&cut, b.data, len), 0);
        node_deliver(n, t2, 1, &cut);
        base_buf_free(&cut);
    }
    b.data[RANGE_BATCH_HEADER_SIZE + 1] = 0xee; /* the first message's version */
    node_deliver(n, t2, 1, &b);
    while (rpc_sim_step(net)) {
    }
    assert_int_equal(cap.messages, 2);

    /* one message claims another sender: dropped alone */
    raft_message forged;
    make_heartbeat(&forged, false, 3, 2);
    assert_int_equal(range_raft_batch_start(&b), RANGE_OK);
    assert_int_equal(batch_add_msg(&b, 100, &hb), RANGE_OK);
    assert_int_equal(batch_add_msg(&b, 101, &forged), RANGE_OK);
    assert_int_equal(batch_add_msg(&b, 102, &hb), RANGE_OK);
    node_deliver(n, t2, 1, &b);
    while (rpc_sim_step(net)) {
    }
    assert_int_equal(cap.messages, 3);
    assert_int_equal(range_raft_batch_decode(cap.last.data, cap.last.len, &d), RANGE_OK);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.msgs[0].range_id, 100);
    assert_int_equal(d.msgs[1].range_id, 102);
    range_raft_batch_free(&d);

    range_node_free(n);
    storage_close(e);
    rpc_sim_net_free(net);
    base_buf_free(&single);
    base_buf_free(&b);
    base_buf_free(&cap.last);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_roundtrip),
        cmocka_unit_test(test_raft_encode_rejects),
        cmocka_unit_test(test_raft_truncation_and_corruption),
        cmocka_unit_test(test_snapshot_messages),
        cmocka_unit_test(test_command_roundtrip_and_truncation),
        cmocka_unit_test(test_decode_out_of_memory),
        cmocka_unit_test(test_batch_roundtrip_and_limits),
        cmocka_unit_test(test_batch_truncation_and_corruption),
        cmocka_unit_test(test_batch_out_of_memory),
        cmocka_unit_test(test_node_answers_batches),
        cmocka_unit_test(test_mvcc_gc_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
