/*
** rpc_int.h: internals of rpc/ (frame codec, handshake codec). Only the rpc sources
** and tests/rpc/ include this.
**
** Frame (all integers big-endian), RPC_FRAME_HEADER_SIZE = 48 bytes:
**   off size field
**     0   4  payload_len  <= the receiver's maximum (RPC_FRAME_PAYLOAD_MAX)
**     4   1  version      == RPC_PROTOCOL_VERSION
**     5   1  kind         rpc_frame_kind (1..4)
**     6   2  flags        0 (reserved: compression; TLS is beneath frames)
**     8   8  request_id   != 0 for REQUEST/RESPONSE, 0 otherwise
**    16   4  method       REQUEST/MESSAGE; 0 for RESPONSE/HANDSHAKE
**    20   4  status       int32; RESPONSE/HANDSHAKE; 0 for REQUEST/MESSAGE
**    24   8  sender       node id, != 0
**    32  12  sender HLC   hlc_encode
**    44   4  crc32c       of header bytes 0..43, then of the payload
**    48   payload_len bytes of payload
** The header is validated as soon as its 48 bytes arrive (a huge length is
** refused before any payload is buffered).
**
** Handshake payload (first frame in each direction, kind HANDSHAKE):
**     0   8  magic "MRDNRPC\0"
**     8   4  protocol version
**    12   8  cluster id (0: unknown)
**    20   8  sender node id (== header sender)
**    28   8  target node id: the node the sender means to talk to; 0 in a
**            dialer's handshake: whoever listens at the address it dialed
**            (rpc_uv_request_addr), a side connection
**    36   .. when status != 0: a UTF-8 reason (refusal), up to 200 bytes
*/
#ifndef MERIDIAN_RPC_INT_H
#define MERIDIAN_RPC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/rpc.h"

typedef struct rpc__header {
    uint32_t payload_len;
    uint8_t version;
    uint8_t kind;
    uint16_t flags;
    uint64_t request_id;
    uint32_t method;
    int32_t status;
    uint64_t sender;
    hlc_timestamp sent_at;
    uint32_t crc;
} rpc__header;

/* Encode header h (crc computed here; h->payload_len must equal len) and
** payload into out, which holds RPC_FRAME_HEADER_SIZE + len bytes. */
void rpc__frame_encode(const rpc__header *h, const void *payload, size_t len,
                       uint8_t *out /* OUT */);

/* Allocate and encode one frame. owner of *out: caller, base_free.
** 0, RPC_ERR_TOO_LARGE, RPC_ERR_NOMEM. */
int rpc__frame_build(const rpc__header *h, const void *payload, size_t len,
                     uint8_t **out, size_t *out_len);

/* Check a header alone (from its first 48 bytes): version, kind, flags,
** length <= payload_max, field rules per kind. 0 or RPC_ERR_BAD_FRAME /
** RPC_ERR_TOO_LARGE; *why: static reason. */
int rpc__header_decode(const uint8_t *buf, uint32_t payload_max, rpc__header *out,
                       const char **why);

/* Decode one frame from buf[0..len). Returns 0 with *consumed == 0 when more
** bytes are needed; 0 with *consumed > 0 and *payload pointing into buf for
** a whole, valid frame; or RPC_ERR_BAD_FRAME / RPC_ERR_TOO_LARGE (with a
** static reason in *why) for bad input. */
int rpc__frame_decode(const uint8_t *buf, size_t len, uint32_t payload_max, rpc__header *out,
                      const uint8_t **payload, size_t *consumed, const char **why);

#define RPC_HANDSHAKE_MAGIC "MRDNRPC"
#define RPC_HANDSHAKE_SIZE 36
#define RPC_HANDSHAKE_REASON_MAX 200

typedef struct rpc__handshake {
    uint32_t version;
    uint64_t cluster_id;
    uint64_t sender;
    uint64_t target;
} rpc__handshake;

void rpc__handshake_encode(const rpc__handshake *h, uint8_t out[RPC_HANDSHAKE_SIZE]);
/* 0 or RPC_ERR_BAD_FRAME (short, bad magic). */
int rpc__handshake_decode(const uint8_t *buf, size_t len, rpc__handshake *out);

/* Big-endian helpers. */
static inline void rpc__put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline uint32_t rpc__get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void rpc__put_u64(uint8_t *p, uint64_t v)
{
    rpc__put_u32(p, (uint32_t)(v >> 32));
    rpc__put_u32(p + 4, (uint32_t)v);
}
static inline uint64_t rpc__get_u64(const uint8_t *p)
{
    return ((uint64_t)rpc__get_u32(p) << 32) | rpc__get_u32(p + 4);
}

/* Deterministic PRNG (splitmix64) shared by the sim and the default jitter. */
static inline uint64_t rpc__splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif
