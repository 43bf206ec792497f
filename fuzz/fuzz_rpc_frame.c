/*
** fuzz/fuzz_rpc_frame.c: the node-to-node byte stream as rpc/ decodes it
** (rpc_frame.c: rpc__frame_decode, rpc__handshake_decode), and each frame's
** payload through the decoder its method goes to on a node: Raft messages
** and batches, KV requests and responses, closed timestamps (range/), and
** the node-level requests and answers (server/srv_wire.c).
**
** Input: byte 0 is a mode, the rest a stream of frames. Mode bit 0 set: the
** harness rewrites each frame's CRC32C before decoding it, so the fuzzer
** gets past the checksum to the field rules and the payload decoders
** (bit 0 clear: the stream as sent, the checksum checked). The first frame
** must be a HANDSHAKE, as rpc_uv.c requires. Each frame is copied into an
** allocation of its exact size.
**
** Invariants: see fuzz.h.
*/
#include <stdbool.h>
#include <string.h>

#include "base/base.h"
#include "fuzz/fuzz.h"
#include "range/kv_int.h"
#include "range/range.h"
#include "rpc/rpc_int.h"
#include "server/srv_int.h"

/* Frames decoded per input, at most; payloads beyond this size are refused
** (as a node refuses frames past its frame_payload_max). */
#define FUZZ_RPC_FRAMES_MAX 1024
#define FUZZ_RPC_PAYLOAD_MAX (1024u * 1024)

static void payload_range(uint32_t method, const uint8_t *p, size_t len)
{
    if (method == RANGE_RPC_METHOD_RAFT) {
        /* a lone message or a batch, told apart by the first byte */
        if (len > 0 && p[0] == RANGE_CODEC_BATCH_VERSION) {
            range_raft_batch b;
            if (range_raft_batch_decode(p, len, &b) == RANGE_OK)
                range_raft_batch_free(&b);
        } else {
            range_raft_msg m;
            if (range_raft_msg_decode(p, len, &m) == RANGE_OK)
                range_raft_msg_free(&m);
        }
    } else if (method == RANGE_RPC_METHOD_KV) {
        range_kv_request req;
        if (range_kv_request_decode(p, len, &req) == RANGE_OK)
            range_kv_request_free(&req);
        range_kv_response resp;
        if (range_kv_response_decode(p, len, &resp) == RANGE_OK)
            range_kv_response_free(&resp);
    } else if (method == RANGE_RPC_METHOD_CLOSED) {
        range_closed_entry *entries = NULL;
        size_t n = 0;
        if (range_closed_decode(p, len, &entries, &n) == RANGE_OK)
            base_free(entries);
    }
}

/* Requests and answers of the node-level methods: both directions, since a
** node decodes what a peer sends and the tools decode what a node answers. */
static void payload_server(uint32_t method, const uint8_t *p, size_t len)
{
    switch (method) {
    case SRV_METHOD_PROBE: {
        srv__probe_resp r;
        (void)srv__probe_resp_decode(p, len, &r);
        break;
    }
    case SRV_METHOD_INIT: {
        uint64_t token, cluster_id;
        srv_peer *peers = NULL;
        size_t n = 0;
        (void)srv__init_req_decode(p, len, &token);
        if (srv__init_resp_decode(p, len, &cluster_id, &peers, &n) == SRV_OK)
            base_free(peers);
        break;
    }
    case SRV_METHOD_BOOTSTRAP: {
        srv__bootstrap b;
        if (srv__bootstrap_decode(p, len, &b) == SRV_OK)
            srv__bootstrap_free(&b);
        break;
    }
    case SRV_METHOD_JOIN: {
        srv__join_req req;
        (void)srv__join_req_decode(p, len, &req);
        srv__join_resp resp;
        if (srv__join_resp_decode(p, len, &resp) == SRV_OK)
            srv__join_resp_free(&resp);
        break;
    }
    case SRV_METHOD_STATUS: {
        srv_status s;
        if (srv__status_decode(p, len, &s) == SRV_OK)
            srv_status_free(&s);
        break;
    }
    case SRV_METHOD_CLOCK: {
        int64_t sent_ns;
        srv__clock_resp r;
        (void)srv__clock_req_decode(p, len, &sent_ns);
        (void)srv__clock_resp_decode(p, len, &r);
        break;
    }
    case SRV_METHOD_DRAIN: {
        srv_drain_status s;
        (void)srv__drain_req_decode(p, len);
        (void)srv__drain_resp_decode(p, len, &s);
        break;
    }
    case SRV_METHOD_DECOMMISSION: {
        srv__decommission_req req;
        srv_decommission_status s;
        (void)srv__decommission_req_decode(p, len, &req);
        (void)srv__decommission_resp_decode(p, len, &s);
        break;
    }
    default:
        break;
    }
}

/* What rpc_uv.c does with a HANDSHAKE frame: the fixed part, then a
** refusal's reason text (bounded, copied into a string). */
static bool handshake(const rpc__header *h, const uint8_t *payload)
{
    rpc__handshake hs;
    if (rpc__handshake_decode(payload, h->payload_len, &hs) != RPC_OK || hs.sender != h->sender)
        return false;
    if (h->status != 0 && h->payload_len > RPC_HANDSHAKE_SIZE) {
        size_t rlen = h->payload_len - RPC_HANDSHAKE_SIZE;
        if (rlen > RPC_HANDSHAKE_REASON_MAX)
            rlen = RPC_HANDSHAKE_REASON_MAX;
        char reason[RPC_HANDSHAKE_REASON_MAX + 1];
        memcpy(reason, payload + RPC_HANDSHAKE_SIZE, rlen);
        reason[rlen] = '\0';
        return false; /* a refusal ends the connection */
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_INPUT_MAX_BYTES)
        return 0;
    bool fix_crc = data[0] & 1;
    data++;
    size--;
    size_t pos = 0;
    bool shook = false;
    for (int n = 0; n < FUZZ_RPC_FRAMES_MAX && size - pos >= RPC_FRAME_HEADER_SIZE; n++) {
        /* the frame's extent from its header, clamped to the input: a
        ** frame the input cuts short is handed over as the bytes that came */
        size_t want = RPC_FRAME_HEADER_SIZE + (size_t)rpc__get_u32(data + pos);
        size_t have = size - pos < want ? size - pos : want;
        uint8_t *buf = base_malloc(have);
        if (buf == NULL)
            break;
        memcpy(buf, data + pos, have);
        if (fix_crc && have == want) {
            uint32_t crc = base_crc32c(0, buf, 44);
            crc = base_crc32c(crc, buf + RPC_FRAME_HEADER_SIZE, have - RPC_FRAME_HEADER_SIZE);
            rpc__put_u32(buf + 44, crc);
        }
        rpc__header h;
        const uint8_t *payload = NULL;
        size_t consumed = 0;
        const char *why = NULL;
        int rc = rpc__frame_decode(buf, have, FUZZ_RPC_PAYLOAD_MAX, &h, &payload, &consumed, &why);
        bool go_on = rc == RPC_OK && consumed > 0;
        if (go_on) {
            if (!shook) {
                go_on = h.kind == RPC_FRAME_HANDSHAKE && handshake(&h, payload);
                shook = true;
            } else if (h.kind == RPC_FRAME_HANDSHAKE) {
                go_on = false; /* a second handshake is a protocol error */
            } else {
                /* a response names no method (the request id ties it to
                ** its request): the harness lets the id's low bits pick */
                uint32_t method =
                    h.kind == RPC_FRAME_RESPONSE ? (uint32_t)(h.request_id & 0xffffu) : h.method;
                payload_range(method, payload, h.payload_len);
                payload_server(method, payload, h.payload_len);
            }
        }
        base_free(buf);
        if (!go_on)
            break;
        pos += consumed;
    }
    return 0;
}
