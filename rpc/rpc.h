/*
** rpc/: node-to-node transport. One interface (rpc_transport), two
** implementations:
**   - rpc_uv:  TCP on libuv, one loop thread per transport, one connection
**              per pair of nodes carrying all traffic between them in order;
**   - rpc_sim: an in-process simulated network for the deterministic
**              simulator (seeded PRNG, simulated clock, no threads, no
**              sockets, no clock reads) that can drop, delay, duplicate,
**              reorder and partition.
** Node code (issue 4: Raft traffic between replicas, KV requests from
** gateways to leaseholders) is written once against rpc_transport.
**
** Three kinds of traffic:
**   - one-way messages (rpc_send): fire and forget, for Raft. Bounded send
**     queue per peer; when it is full one message is dropped (newest or
**     oldest, configurable) and counted. Loss is possible, reordering is not
**     (on rpc_uv; rpc_sim reorders when told to).
**   - requests (rpc_request): an id, a deadline, and a callback that runs
**     EXACTLY ONCE when rpc_request returned RPC_OK: with the response, or
**     with a transport error (RPC_ERR_TIMEOUT, RPC_ERR_DISCONNECTED when
**     the connection carrying it drops: maybe seen; RPC_ERR_UNREACHABLE
**     when the peer could not be dialed: surely not seen;
**     RPC_ERR_UNKNOWN_PEER, ...).
**     Many may be in flight per peer (pipelining).
**   - responses (rpc_respond): the handler of a request answers it, now or
**     later, from any thread, with an application status and a payload.
**
** rpc_uv also knows addresses: rpc_uv_request_addr asks whoever listens at
** host:port (bootstrap, join), on a side connection that is never a node's
** own; nodes without a real id yet use provisional ids (top bit set). And
** it can share its port with SQL: PostgreSQL clients on the listener are
** handed to rpc_uv_config.foreign_connection (the gateway). With
** rpc_uv_config.tls_server/tls_client every connection is mutual TLS
** (node certificates of the cluster CA; client certificates of admin tools
** only for the methods in rpc_uv_config.client_methods) under the
** unchanged frames.
**
** Every frame carries the sender's node id and HLC timestamp; every
** receiver that has a clock calls hlc_update with it (and logs
** REMOTE_AHEAD). Frame format, connection rules and limits: docs/rpc.md.
**
** Threading. rpc_uv: every function here is thread-safe; handlers and
** response callbacks run on the transport's loop thread and must not block.
** rpc_sim: single-threaded; callbacks run inside rpc_sim_step/run_until.
*/
#ifndef MERIDIAN_RPC_H
#define MERIDIAN_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "security/security.h"
#include "timestamp/timestamp.h"

typedef uint64_t rpc_node_id; /* 0 is never a valid node id */

/* Provisional node ids: [RPC_NODE_ID_PROVISIONAL_MIN, UINT64_MAX], the ids
** with the top bit set. A process that has no real node id yet (a node
** before `meridian init` or before its join is answered, the `meridian
** init` command itself) runs its transport with a random provisional id.
** Real node ids (from the cluster's replicated counter) are below it. A
** connection from a provisional id is accepted but is only a side
** connection (answers go back on it); it is never recorded as the
** connection of a node id, and provisional ids cannot be given an address
** (rpc_uv_add_peer) or be sent requests / one-way messages by id. */
#define RPC_NODE_ID_PROVISIONAL_MIN (UINT64_C(1) << 63)
static inline bool rpc_node_id_is_provisional(rpc_node_id id)
{
    return id >= RPC_NODE_ID_PROVISIONAL_MIN;
}

/* Return codes: 0 ok, negative errors. Transport errors delivered to
** response callbacks use the same values. */
enum {
    RPC_OK = 0,
    RPC_ERR_NOMEM = -2001,
    RPC_ERR_INVALID = -2002,      /* bad argument (programmer error or config) */
    RPC_ERR_TIMEOUT = -2003,      /* request deadline passed without a response
                                     (it may have been seen) */
    RPC_ERR_DISCONNECTED = -2004, /* connection carrying the request dropped:
                                     it may have been seen (maybe sent) */
    RPC_ERR_UNKNOWN_PEER = -2005, /* no address and no connection for that node */
    RPC_ERR_QUEUE_FULL = -2006,   /* a named limit was hit (see rpc_uv_config) */
    RPC_ERR_TOO_LARGE = -2007,    /* payload above the frame maximum */
    RPC_ERR_STOPPED = -2008,      /* transport stopped / network freed */
    RPC_ERR_BAD_FRAME = -2009,    /* malformed input from a peer */
    RPC_ERR_HANDSHAKE = -2010,    /* handshake refused (cluster, node, version) */
    RPC_ERR_NO_HANDLER = -2011,   /* response status: the peer has no handler */
    RPC_ERR_IO = -2012,           /* socket error (bind, listen, ...) */
    RPC_ERR_SELF = -2013,         /* rpc_uv_request_addr: the address is this
                                     transport itself (same node id) */
    RPC_ERR_UNREACHABLE = -2014,  /* the request was never written to any
                                     connection: the peer could not be dialed
                                     (connect failed, handshake failed or
                                     refused, or the peer is in reconnect
                                     backoff after such a failure). The peer
                                     surely did not see it: safe to send
                                     elsewhere, never ambiguous. */
};
/* Short static name of an RPC_ERR_* code ("RPC_ERR_TIMEOUT"). */
const char *rpc_strerror(int rc);

/* Frame limits and version (docs/rpc.md, "Frame format"). */
#define RPC_PROTOCOL_VERSION 1
#define RPC_FRAME_HEADER_SIZE 48
#define RPC_FRAME_PAYLOAD_MAX (16u * 1024 * 1024)
typedef enum rpc_frame_kind {
    RPC_FRAME_HANDSHAKE = 1,
    RPC_FRAME_REQUEST = 2,
    RPC_FRAME_RESPONSE = 3,
    RPC_FRAME_MESSAGE = 4,
} rpc_frame_kind;

/* A received message, request or response. Valid only for the duration of
** the callback that receives it: copy what must outlive it. */
typedef struct rpc_message {
    rpc_node_id from;
    uint32_t method;         /* requests and one-way messages */
    uint64_t request_id;     /* requests and responses; 0 for one-way */
    int32_t status;          /* responses: the responder's status */
    hlc_timestamp sent_at;   /* sender's HLC when it built the frame */
    const uint8_t *payload;  /* NULL when payload_len == 0 */
    size_t payload_len;
    /* rpc_uv with TLS: the user (CN) of the peer's client certificate when
    ** the peer is an admin tool, not a node (rpc_uv_config.client_methods);
    ** NULL from a node certificate, on plaintext and in rpc_sim. */
    const char *peer_user;
} rpc_message;

typedef struct rpc_transport rpc_transport;

/* Handler for requests (msg->request_id != 0: answer with rpc_respond to
** msg->from with that id, now or later) and one-way messages. */
typedef void (*rpc_handler_fn)(void *ctx, rpc_transport *t, const rpc_message *msg);

/* Called exactly once per accepted request. rc == RPC_OK: *response holds
** the answer (its status field is the responder's status). rc < 0: a
** transport error and response is NULL. */
typedef void (*rpc_response_fn)(void *ctx, int rc, const rpc_message *response);

/* ---- the interface ----------------------------------------------------------
** Payloads are copied before these return; the caller keeps ownership. */
typedef struct rpc_transport_ops {
    int (*send)(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload,
                size_t len);
    int (*request)(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload,
                   size_t len, int64_t timeout_ms, rpc_response_fn cb, void *ctx);
    int (*respond)(rpc_transport *t, rpc_node_id to, uint64_t request_id, int32_t status,
                   const void *payload, size_t len);
    void (*set_handler)(rpc_transport *t, rpc_handler_fn fn, void *ctx);
    rpc_node_id (*node_id)(rpc_transport *t);
} rpc_transport_ops;

/* Implementations embed this as their first member. */
struct rpc_transport {
    const rpc_transport_ops *ops;
};

/* One-way message to `to`. 0, RPC_ERR_TOO_LARGE, RPC_ERR_INVALID,
** RPC_ERR_STOPPED, RPC_ERR_QUEUE_FULL, RPC_ERR_NOMEM. RPC_OK does not mean
** delivered: the message may still be dropped (queue full, unknown peer,
** connection lost) and is counted then. */
int rpc_send(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload,
             size_t len);
/* Request with a deadline timeout_ms (> 0) from now. When it returns RPC_OK,
** cb(ctx, ...) runs exactly once later (never inside this call). Otherwise
** cb never runs. What a transport error in cb says about delivery:
** UNREACHABLE, UNKNOWN_PEER, QUEUE_FULL, NOMEM, TOO_LARGE: never sent;
** DISCONNECTED, TIMEOUT, STOPPED: maybe seen by the peer. rpc_uv fails a request
** UNREACHABLE as soon as a dial attempt to its peer fails (not at the
** deadline), and at once while the peer is in the backoff after that. */
int rpc_request(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload,
                size_t len, int64_t timeout_ms, rpc_response_fn cb, void *ctx);
/* Answer request `request_id` received from `to`. Late or duplicate answers
** are ignored by the requester. rpc_uv: an answer to a request that came on
** a side connection (by address, or from a provisional id) goes back on
** that connection; one to a provisional id without one is dropped. */
int rpc_respond(rpc_transport *t, rpc_node_id to, uint64_t request_id, int32_t status,
                const void *payload, size_t len);
/* Replace the handler (NULL: requests are answered RPC_ERR_NO_HANDLER,
** messages dropped). */
void rpc_set_handler(rpc_transport *t, rpc_handler_fn fn, void *ctx);
rpc_node_id rpc_node(rpc_transport *t);

/* ---- rpc_uv: the real transport on libuv ------------------------------------ */
typedef struct rpc_uv rpc_uv; /* opaque */

typedef enum rpc_drop_policy {
    RPC_DROP_OLDEST = 0, /* a full queue drops its oldest one-way message */
    RPC_DROP_NEWEST = 1, /* a full queue refuses the new message */
} rpc_drop_policy;

#define RPC_CLIENT_METHODS_MAX 16 /* rpc_uv_config.client_methods */

typedef struct rpc_uv_config {
    rpc_node_id node_id;     /* required, != 0 */
    uint64_t cluster_id;     /* 0: not yet known, accepts any; else must match */
    const char *listen_host; /* IPv4/IPv6 literal; NULL: no listener (dial only) */
    int listen_port;         /* 0: the kernel picks one (rpc_uv_listen_port) */
    hlc_clock *clock;        /* not owned, must outlive the transport; NULL:
                                frames carry HLC_ZERO and nothing is updated */
    rpc_handler_fn handler;  /* may be NULL; rpc_set_handler changes it */
    void *handler_ctx;
    /* Injected randomness for reconnect jitter; NULL: a xorshift generator
    ** seeded with random_seed. Called on the loop thread only. */
    uint64_t (*random)(void *ctx);
    void *random_ctx;
    uint64_t random_seed;
    /* Reconnect backoff: delay = min(max, base * 2^attempt), then uniform in
    ** [delay/2, delay] (jitter). */
    uint32_t reconnect_base_ms; /* default 50 */
    uint32_t reconnect_max_ms;  /* default 5000 */
    uint32_t peer_queue_frames_max; /* frames waiting per peer, default 8192 */
    size_t peer_queue_bytes_max;    /* bytes waiting per peer, default 64 MiB */
    uint32_t pending_requests_max;  /* requests awaiting a response, default 65536 */
    size_t submit_bytes_max;        /* bytes handed over by callers and not yet
                                       taken by the loop, default 256 MiB */
    uint32_t frame_payload_max;     /* default/maximum RPC_FRAME_PAYLOAD_MAX */
    rpc_drop_policy drop_policy;    /* default RPC_DROP_OLDEST */
    /* A connection must finish connect + handshake within this, else it is
    ** closed (silent peers, hanging connects). Default 5000. */
    uint32_t handshake_timeout_ms;
    /* A side connection dialed by address (rpc_uv_request_addr) with no
    ** request for this long is closed. Default RPC_ADDR_IDLE_MS. */
    uint32_t addr_idle_ms;
    /* One port for RPC and SQL. NULL: a PostgreSQL client on the listener
    ** is closed like any non-RPC input. Set: an accepted connection whose
    ** first 8 bytes are a PostgreSQL startup packet header (int32 length,
    ** then int32 code: protocol 3.x, SSLRequest 80877103, CancelRequest
    ** 80877102 or GSSENCRequest 80877104) is detached from the transport
    ** (its libuv handle closed, the socket kept open through a dup) and
    ** handed over: fd is owned by the callee from the call on (it must
    ** close it, also on failure); prefix[0..prefix_len) are the bytes
    ** already read (at least 8), valid only during the call. Runs on the
    ** loop thread and must not block. The callee must stay valid until
    ** rpc_uv_free returns. */
    void (*foreign_connection)(void *ctx, int fd, const uint8_t *prefix, size_t prefix_len);
    void *foreign_ctx;
    /* TLS (docs/rpc.md, "TLS"). Both NULL: plaintext, exactly as without
    ** TLS. tls_client set: every connection is TLS with mutual
    ** authentication; tls_server is then required when there is a listener.
    ** tls_server: sec_tls_server_ctx_new with require_peer_node (only node
    ** certificates of the cluster CA get in); tls_client:
    ** sec_tls_client_ctx_new with cert_name "node" (a dialed peer's
    ** certificate must carry the IP dialed). Borrowed: both must outlive the
    ** transport. sec_tls_reload on them (any thread, e.g. on SIGHUP) takes
    ** effect for new connections; live ones keep their certificates. A
    ** PostgreSQL client is still recognized before TLS and handed to
    ** foreign_connection (the gateway runs its own TLS). */
    sec_tls_ctx *tls_server;
    sec_tls_ctx *tls_client;
    /* Admin tools with a client (user) certificate, e.g. `meridian node
    ** drain` with client.root.crt (docs/rpc.md "TLS"). Only when tls_server
    ** was made with allow_peer_client. Such a peer gets a side connection
    ** only (dialed by address, or a provisional id), may send only requests
    ** whose method is one of client_methods[0..client_methods_count), and
    ** its requests carry rpc_message.peer_user; anything else it sends
    ** (one-way messages, responses, another method, a node's own
    ** connection) closes its connection (counted in client_refused). Count
    ** 0: no client certificate gets past the handshake. */
    uint32_t client_methods[RPC_CLIENT_METHODS_MAX];
    size_t client_methods_count;
} rpc_uv_config;

/* Defaults; the caller then sets node_id, listen_host and clock. */
void rpc_uv_config_init(rpc_uv_config *config /* OUT */);

/* Bind, listen and start the loop thread. owner of *out: caller, free with
** rpc_uv_free. Returns 0, RPC_ERR_INVALID (also: tls_server without
** tls_client, or a listener with tls_client but no tls_server),
** RPC_ERR_NOMEM, RPC_ERR_IO. */
int rpc_uv_start(const rpc_uv_config *config, rpc_uv **out);
/* Stop the loop (pending requests fail with RPC_ERR_STOPPED, queued frames
** are discarded, connections closed), join the thread and free everything.
** Never call it from a handler or callback (it joins the loop thread). */
void rpc_uv_free(rpc_uv *t);
/* The interface view; lives as long as t. */
rpc_transport *rpc_uv_transport(rpc_uv *t);
/* The bound TCP port (the chosen one when listen_port was 0); -1 without a
** listener. */
int rpc_uv_listen_port(rpc_uv *t);
/* Register or change the address of node `id`. The transport dials it when
** it has something to send and no connection (lazily). 0,
** RPC_ERR_INVALID (bad address, id 0, our own id or a provisional id), RPC_ERR_STOPPED,
** RPC_ERR_NOMEM. */
int rpc_uv_add_peer(rpc_uv *t, rpc_node_id id, const char *host, int port);

/* A request to whoever listens at host:port, whatever its node id (for
** bootstrap and join: `meridian init --host`, a --join list). Same
** contract as rpc_request: when it returns RPC_OK, cb runs exactly once,
** later, never inside this call; the response's `from` is the node id of
** the node that answered (provisional if it has no real one yet). The
** request goes on a side connection to that address (dialed on demand,
** reused while open, closed after addr_idle_ms without requests),
** never on a node's own connection, and the handshake names no target
** node. No redial: a failed connect or a dropped connection fails the
** requests on it with RPC_ERR_DISCONNECTED, a refused handshake (e.g.
** another cluster id) with RPC_ERR_HANDSHAKE, an address that is this
** transport itself with RPC_ERR_SELF, more than RPC_ADDR_CONNS_MAX
** addresses at once with RPC_ERR_QUEUE_FULL; else the deadline gives
** RPC_ERR_TIMEOUT. Returns 0, RPC_ERR_INVALID (bad address, port 0, no
** cb, timeout_ms <= 0), RPC_ERR_TOO_LARGE, RPC_ERR_STOPPED,
** RPC_ERR_QUEUE_FULL, RPC_ERR_NOMEM. */
#define RPC_ADDR_CONNS_MAX 64  /* side connections dialed by address at once */
#define RPC_ADDR_IDLE_MS 30000 /* default rpc_uv_config.addr_idle_ms */
int rpc_uv_request_addr(rpc_uv *t, const char *host, int port, uint32_t method,
                        const void *payload, size_t len, int64_t timeout_ms, rpc_response_fn cb,
                        void *ctx);

/* Set the cluster id once it is known (a joining node learns it from the
** answer to its join). Handshakes from now on send and check it (0 again:
** accept any); connections already open are kept. Thread-safe. 0.
** The node id cannot change: a node that gets its real id stops the
** transport (rpc_uv_free) and starts a new one on the same port (the
** listener re-binds at once: libuv sets SO_REUSEADDR). */
int rpc_uv_set_cluster_id(rpc_uv *t, uint64_t cluster_id);

typedef struct rpc_uv_stats {
    uint64_t frames_sent, frames_received;
    uint64_t bytes_sent, bytes_received;
    uint64_t messages_dropped;    /* one-way or responses lost to full queues / unknown peers */
    uint64_t requests_timed_out;
    uint64_t requests_disconnected;
    uint64_t requests_unreachable; /* failed RPC_ERR_UNREACHABLE (never sent) */
    uint64_t handshakes_ok;       /* handshakes completed (incl. duplicates then closed) */
    uint64_t handshake_failures;
    uint64_t dial_failures;
    uint64_t bad_frames;          /* connections closed for malformed input */
    uint64_t duplicate_connections_closed;
    uint64_t hlc_remote_ahead;
    uint64_t writes;              /* uv_write calls: frames_sent/writes = batching */
    uint64_t peers_connected;     /* gauge: peers with an active connection now
                                     (side connections not included) */
    uint64_t side_connections;    /* handshakes completed on side connections (by
                                     address, or from a provisional id) */
    uint64_t side_connections_open; /* gauge: side connections open now */
    uint64_t foreign_connections; /* PostgreSQL clients handed to foreign_connection */
    uint64_t tls_handshakes;      /* TLS handshakes completed (either side) */
    uint64_t tls_refused;         /* connections closed before any frame for TLS
                                     reasons: handshake failed (no node
                                     certificate of our CA, wrong address, ...),
                                     a plaintext peer on a TLS node, a TLS peer
                                     on a plaintext one */
    uint64_t client_connections;  /* handshakes of client-certificate peers (admin tools) */
    uint64_t client_refused;      /* their connections closed for a frame they may not
                                     send, or for asking for more than a side connection */
    uint64_t fault_dropped;       /* frames received and dropped by rpc_uv_set_fault
                                     (or beyond RPC_FAULT_HELD_FRAMES_MAX) */
    uint64_t fault_delayed;       /* frames received and held by rpc_uv_set_fault */
} rpc_uv_stats;
void rpc_uv_get_stats(rpc_uv *t, rpc_uv_stats *out /* OUT */);

/* ---- test-only fault injection (the chaos harness, docs/chaos.md) -----------
** There is no `tc netem` on the test machines, so delay and loss are made
** here. A fault applies to the frames this transport RECEIVES on a node's
** own connection from `peer` (0: from every peer): each is dropped with
** probability loss_per_million / 10^6, else held for delay_ms plus a uniform
** jitter in [0, jitter_ms] and then delivered, in arrival order per peer
** (frames of a peer never overtake each other). A dropped one-way message
** is lost; a dropped request is never answered (the caller sees its
** deadline: RPC_ERR_TIMEOUT, "maybe seen"); a dropped response lets the
** request here time out. Side connections (requests by address: the
** `meridian` tool, and the control that sets this) and handshakes are never
** touched. Held frames are bounded (RPC_FAULT_HELD_*_MAX; beyond, dropped
** and counted) and discarded at stop. Production nodes never call this:
** server/ gates it behind `meridian start --enable-test-faults`. */
#define RPC_FAULTS_MAX 16                        /* peers with a fault of their own, + global */
#define RPC_FAULT_DELAY_MS_MAX 60000             /* delay_ms and jitter_ms each */
#define RPC_FAULT_HELD_FRAMES_MAX 65536          /* frames held at once */
#define RPC_FAULT_HELD_BYTES_MAX (256u * 1024 * 1024) /* payload bytes held at once */
typedef struct rpc_uv_fault {
    rpc_node_id peer;          /* 0: every peer without a fault of its own */
    uint32_t delay_ms;
    uint32_t jitter_ms;
    uint32_t loss_per_million; /* 0..1000000 */
} rpc_uv_fault;
/* Set the fault of f->peer (replacing its previous one); all three values
** 0 removes it. Takes effect for frames received from now on; frames
** already held keep their time. Thread-safe, never blocks. 0,
** RPC_ERR_INVALID (a value above its maximum, a provisional peer id),
** RPC_ERR_QUEUE_FULL (RPC_FAULTS_MAX entries already). */
int rpc_uv_set_fault(rpc_uv *t, const rpc_uv_fault *f);
/* Remove every fault (held frames are still delivered at their time). */
void rpc_uv_clear_faults(rpc_uv *t);
/* The faults in effect, up to cap into out; returns how many exist. */
size_t rpc_uv_get_faults(rpc_uv *t, rpc_uv_fault *out /* OUT */, size_t cap);

/* ---- rpc_sim: the simulated twin -------------------------------------------- */
typedef struct rpc_sim_net rpc_sim_net; /* opaque */

#define RPC_SIM_NODES_MAX 64
#define RPC_SIM_IN_FLIGHT_MAX 1000000 /* beyond: sends dropped and counted */

typedef struct rpc_sim_config {
    uint64_t seed;
    int64_t latency_min_ns;        /* default 1 ms */
    int64_t latency_max_ns;        /* default 5 ms; >= min */
    uint32_t drop_per_million;     /* probability a frame is lost */
    uint32_t duplicate_per_million;/* probability a frame is delivered twice */
    uint32_t reorder_per_million;  /* probability a frame may overtake earlier
                                      ones of the same pair (else FIFO) */
} rpc_sim_config;
void rpc_sim_config_init(rpc_sim_config *config /* OUT */, uint64_t seed);

/* owner of *out: caller, rpc_sim_net_free. */
int rpc_sim_net_new(const rpc_sim_config *config, rpc_sim_net **out);
/* Fails every pending request with RPC_ERR_STOPPED, then frees. */
void rpc_sim_net_free(rpc_sim_net *net);
/* Add endpoint `id` (clock: may be NULL, not owned). *out lives as long as
** the net. RPC_ERR_INVALID for 0 / duplicate ids, RPC_ERR_QUEUE_FULL beyond
** RPC_SIM_NODES_MAX. */
int rpc_sim_add_node(rpc_sim_net *net, rpc_node_id id, hlc_clock *clock,
                     rpc_transport **out);
/* Block (true) or heal (false) frames from `from` to `to` (one-way). Frames
** in flight are dropped at delivery time while blocked. */
void rpc_sim_partition(rpc_sim_net *net, rpc_node_id from, rpc_node_id to, bool blocked);
/* Both directions. */
void rpc_sim_partition_pair(rpc_sim_net *net, rpc_node_id a, rpc_node_id b, bool blocked);
/* Isolate a node from every other (both directions) or heal it. */
void rpc_sim_isolate(rpc_sim_net *net, rpc_node_id id, bool isolated);
void rpc_sim_heal_all(rpc_sim_net *net);

/* Process the next event (a delivery or a request deadline), moving the
** simulated clock to its time. Returns true if one was processed, false
** when nothing is pending. */
bool rpc_sim_step(rpc_sim_net *net);
/* Process every event due at or before t_ns, then set the clock to t_ns
** (never backwards). Returns the number of events processed. */
uint64_t rpc_sim_run_until(rpc_sim_net *net, int64_t t_ns);
int64_t rpc_sim_now_ns(const rpc_sim_net *net);
/* Number of events (frames in flight and request deadlines) pending. */
size_t rpc_sim_pending(const rpc_sim_net *net);

typedef enum rpc_sim_event_kind {
    RPC_SIM_SEND = 1,      /* a frame entered the network */
    RPC_SIM_DELIVER = 2,   /* handed to the receiver */
    RPC_SIM_DROP = 3,      /* lost at random */
    RPC_SIM_BLOCKED = 4,   /* lost to a partition */
    RPC_SIM_DUPLICATE = 5, /* a second copy was scheduled */
    RPC_SIM_REORDER = 6,   /* scheduled without the FIFO clamp */
    RPC_SIM_TIMEOUT = 7,   /* a request failed at its deadline */
} rpc_sim_event_kind;

typedef struct rpc_sim_event {
    int64_t time_ns;
    rpc_sim_event_kind kind;
    rpc_node_id from, to;
    int frame_kind;   /* rpc_frame_kind */
    uint32_t method;
    uint64_t request_id;
    size_t payload_len;
} rpc_sim_event;
/* Called for every event, in order (for traces and determinism checks). */
void rpc_sim_set_trace(rpc_sim_net *net, void (*fn)(void *ctx, const rpc_sim_event *ev),
                       void *ctx);

typedef struct rpc_sim_stats {
    uint64_t sent, delivered, dropped, blocked, duplicated, reordered;
    uint64_t timeouts, late_responses;
} rpc_sim_stats;
void rpc_sim_get_stats(const rpc_sim_net *net, rpc_sim_stats *out /* OUT */);

#endif
