/*
** rpc_frame.c: the frame and handshake codecs, CRC32C, and the interface
** dispatch (rpc_send & co). Pure: no I/O, no clock.
**
** Format: see rpc_int.h (and docs/rpc.md).
**
** Invariants:
**   - rpc__frame_decode never reads past buf[len) and never trusts a length
**     before checking it against payload_max;
**   - a frame is accepted only if its CRC32C (header bytes 0..43, then the
**     payload) matches, so a corrupt length/kind/sender is caught too.
*/
#include <assert.h>
#include <string.h>

#include "base/base.h"
#include "rpc/rpc_int.h"

/* ---- CRC32C, reflected polynomial 0x82F63B78, byte-wise table ------------- */

const char *rpc_strerror(int rc)
{
    switch (rc) {
    case RPC_OK: return "RPC_OK";
    case RPC_ERR_NOMEM: return "RPC_ERR_NOMEM";
    case RPC_ERR_INVALID: return "RPC_ERR_INVALID";
    case RPC_ERR_TIMEOUT: return "RPC_ERR_TIMEOUT";
    case RPC_ERR_DISCONNECTED: return "RPC_ERR_DISCONNECTED";
    case RPC_ERR_UNKNOWN_PEER: return "RPC_ERR_UNKNOWN_PEER";
    case RPC_ERR_QUEUE_FULL: return "RPC_ERR_QUEUE_FULL";
    case RPC_ERR_TOO_LARGE: return "RPC_ERR_TOO_LARGE";
    case RPC_ERR_STOPPED: return "RPC_ERR_STOPPED";
    case RPC_ERR_BAD_FRAME: return "RPC_ERR_BAD_FRAME";
    case RPC_ERR_HANDSHAKE: return "RPC_ERR_HANDSHAKE";
    case RPC_ERR_NO_HANDLER: return "RPC_ERR_NO_HANDLER";
    case RPC_ERR_IO: return "RPC_ERR_IO";
    case RPC_ERR_SELF: return "RPC_ERR_SELF";
    case RPC_ERR_UNREACHABLE: return "RPC_ERR_UNREACHABLE";
    default: return "RPC_ERR_UNKNOWN";
    }
}

/* ---- frames ---------------------------------------------------------------- */

static void header_put(const rpc__header *h, uint8_t *out)
{
    rpc__put_u32(out + 0, h->payload_len);
    out[4] = h->version;
    out[5] = h->kind;
    out[6] = (uint8_t)(h->flags >> 8);
    out[7] = (uint8_t)h->flags;
    rpc__put_u64(out + 8, h->request_id);
    rpc__put_u32(out + 16, h->method);
    rpc__put_u32(out + 20, (uint32_t)h->status);
    rpc__put_u64(out + 24, h->sender);
    hlc_encode(h->sent_at, out + 32);
}

void rpc__frame_encode(const rpc__header *h, const void *payload, size_t len, uint8_t *out)
{
    assert(h->payload_len == len);
    header_put(h, out);
    uint32_t crc = base_crc32c(0, out, 44);
    if (len > 0)
        crc = base_crc32c(crc, payload, len);
    rpc__put_u32(out + 44, crc);
    if (len > 0)
        memcpy(out + RPC_FRAME_HEADER_SIZE, payload, len);
}

int rpc__frame_build(const rpc__header *h, const void *payload, size_t len, uint8_t **out,
                     size_t *out_len)
{
    if (len > RPC_FRAME_PAYLOAD_MAX)
        return RPC_ERR_TOO_LARGE;
    uint8_t *buf = base_malloc(RPC_FRAME_HEADER_SIZE + len);
    if (buf == NULL)
        return RPC_ERR_NOMEM;
    rpc__header hh = *h;
    hh.payload_len = (uint32_t)len;
    rpc__frame_encode(&hh, payload, len, buf);
    *out = buf;
    *out_len = RPC_FRAME_HEADER_SIZE + len;
    return RPC_OK;
}

int rpc__header_decode(const uint8_t *buf, uint32_t payload_max, rpc__header *out,
                       const char **why)
{
    rpc__header h;
    h.payload_len = rpc__get_u32(buf);
    h.version = buf[4];
    h.kind = buf[5];
    h.flags = (uint16_t)((buf[6] << 8) | buf[7]);
    h.request_id = rpc__get_u64(buf + 8);
    h.method = rpc__get_u32(buf + 16);
    h.status = (int32_t)rpc__get_u32(buf + 20);
    h.sender = rpc__get_u64(buf + 24);
    h.sent_at = hlc_decode(buf + 32);
    h.crc = rpc__get_u32(buf + 44);
    *why = NULL;
    if (h.version != RPC_PROTOCOL_VERSION) {
        *why = "unsupported protocol version";
        return RPC_ERR_BAD_FRAME;
    }
    if (h.kind < RPC_FRAME_HANDSHAKE || h.kind > RPC_FRAME_MESSAGE) {
        *why = "unknown frame kind";
        return RPC_ERR_BAD_FRAME;
    }
    if (h.flags != 0) {
        *why = "unknown flags";
        return RPC_ERR_BAD_FRAME;
    }
    if (h.payload_len > payload_max) {
        *why = "frame longer than the maximum";
        return RPC_ERR_TOO_LARGE;
    }
    if (h.sender == 0) {
        *why = "sender node id 0";
        return RPC_ERR_BAD_FRAME;
    }
    bool has_id = h.kind == RPC_FRAME_REQUEST || h.kind == RPC_FRAME_RESPONSE;
    if (has_id != (h.request_id != 0)) {
        *why = "request id does not fit the frame kind";
        return RPC_ERR_BAD_FRAME;
    }
    bool has_method = h.kind == RPC_FRAME_REQUEST || h.kind == RPC_FRAME_MESSAGE;
    if ((!has_method && h.method != 0) || (has_method && h.status != 0)) {
        *why = "method/status does not fit the frame kind";
        return RPC_ERR_BAD_FRAME;
    }
    *out = h;
    return RPC_OK;
}

int rpc__frame_decode(const uint8_t *buf, size_t len, uint32_t payload_max, rpc__header *out,
                      const uint8_t **payload, size_t *consumed, const char **why)
{
    *consumed = 0;
    *why = NULL;
    if (len < RPC_FRAME_HEADER_SIZE)
        return RPC_OK;
    rpc__header h;
    int rc = rpc__header_decode(buf, payload_max, &h, why);
    if (rc != RPC_OK)
        return rc;
    size_t total = RPC_FRAME_HEADER_SIZE + (size_t)h.payload_len;
    if (len < total)
        return RPC_OK;
    uint32_t crc = base_crc32c(0, buf, 44);
    crc = base_crc32c(crc, buf + RPC_FRAME_HEADER_SIZE, h.payload_len);
    if (crc != h.crc) {
        *why = "CRC32C mismatch";
        return RPC_ERR_BAD_FRAME;
    }
    *out = h;
    *payload = h.payload_len > 0 ? buf + RPC_FRAME_HEADER_SIZE : NULL;
    *consumed = total;
    return RPC_OK;
}

/* ---- handshake ----------------------------------------------------------- */

void rpc__handshake_encode(const rpc__handshake *h, uint8_t out[RPC_HANDSHAKE_SIZE])
{
    memcpy(out, RPC_HANDSHAKE_MAGIC, 8); /* 7 chars and the NUL */
    rpc__put_u32(out + 8, h->version);
    rpc__put_u64(out + 12, h->cluster_id);
    rpc__put_u64(out + 20, h->sender);
    rpc__put_u64(out + 28, h->target);
}

int rpc__handshake_decode(const uint8_t *buf, size_t len, rpc__handshake *out)
{
    if (len < RPC_HANDSHAKE_SIZE || memcmp(buf, RPC_HANDSHAKE_MAGIC, 8) != 0)
        return RPC_ERR_BAD_FRAME;
    out->version = rpc__get_u32(buf + 8);
    out->cluster_id = rpc__get_u64(buf + 12);
    out->sender = rpc__get_u64(buf + 20);
    out->target = rpc__get_u64(buf + 28);
    return RPC_OK;
}

/* ---- the interface ------------------------------------------------------- */

int rpc_send(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload, size_t len)
{
    return t->ops->send(t, to, method, payload, len);
}

int rpc_request(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload,
                size_t len, int64_t timeout_ms, rpc_response_fn cb, void *ctx)
{
    return t->ops->request(t, to, method, payload, len, timeout_ms, cb, ctx);
}

int rpc_respond(rpc_transport *t, rpc_node_id to, uint64_t request_id, int32_t status,
                const void *payload, size_t len)
{
    return t->ops->respond(t, to, request_id, status, payload, len);
}

void rpc_set_handler(rpc_transport *t, rpc_handler_fn fn, void *ctx)
{
    t->ops->set_handler(t, fn, ctx);
}

rpc_node_id rpc_node(rpc_transport *t)
{
    return t->ops->node_id(t);
}
