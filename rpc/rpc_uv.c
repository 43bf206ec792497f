/*
** rpc_uv.c: the real transport. One libuv loop on its own thread owns the
** listener, every socket, every peer, every pending request and every timer.
** Callers on any thread encode their frame (and stamp it with the HLC) on
** their own thread, append it to a mutex-protected submit queue and wake the
** loop with a uv_async. The loop moves submitted frames to per-peer queues,
** then flushes each peer once per wake-up: all its queued frames go out in
** ONE uv_write (writev of many buffers) = batching. Messages and responses
** sent from the loop thread itself (handlers, callbacks) skip the submit
** queue: they join the peer queue at once and are flushed when the current
** libuv callback ends (every callback that can run user code ends with
** flush_dirty).
**
** Connection life:
**   outbound: DIAL --connect--> HANDSHAKE (ours sent) --peer's--> ACTIVE
**   inbound:  HANDSHAKE --peer's handshake, valid--> ours sent, ACTIVE
**   any --EOF, error, bad frame, refused, duplicate, stop--> CLOSING --> freed
** One ACTIVE connection per peer. When a second one becomes active (both
** nodes dialed at once), the one DIALED BY THE LOWER NODE ID is kept and the
** other closed, on both sides, so both converge on the same socket.
**
** Side connections. A request by address (rpc_uv_request_addr) dials a
** connection of its own whose handshake names target 0 ("whoever listens
** here"); an inbound handshake with target 0 or from a provisional node id
** is accepted the same way. Each side connection has a peer struct of its
** own (side peer: p->side, in t->side, never in t->peers) that lives as
** long as the connection: created with it, freed when its handle closes,
** never redialed. A request received on one records a route (sender,
** request id) -> side peer, so rpc_respond sends the answer back on it.
**
** Shared port. An inbound connection whose first 8 bytes are a PostgreSQL
** startup header goes to cfg.foreign_connection: its fd is dup'ed, the
** libuv handle closed (which takes the fd out of epoll before closing the
** original), and the dup handed over with the bytes already read.
**
** TLS (cfg.tls_client set; docs/rpc.md "TLS"). Every connection runs the
** frame protocol, unchanged, inside a TLS stream (security/'s memory-BIO
** sec_tls_conn): ciphertext read from the socket goes to c->raw, is fed to
** the stream, and the plaintext it gives lands in c->in where frames are
** parsed as always; frames to send are encrypted in batches (small frames
** coalesced into full records, one uv_write of ciphertext per batch).
** A dialer starts TLS on connect (its ClientHello first, its handshake frame
** queued in the stream until TLS is up), checking that the peer's
** certificate carries the IP it dialed; an acceptor first sniffs 8 bytes:
** a PostgreSQL client is handed over (before TLS: the gateway runs its own),
** a TLS record starts the server side (node certificate of our CA
** required), anything else is refused. An acceptor binds the real node id
** a peer claims, on a side connection too, to its certificate by address
** (tls_peer_bound): a node this transport knows at an IP must show a
** certificate carrying that IP.
**
** Admin tools with a client certificate (cfg.client_methods, a tls_server
** made with allow_peer_client): after the TLS handshake the acceptor asks
** the stream what the peer showed (sec_tls_conn_peer_kind); a client
** certificate marks the connection (c->client, with its CN). Its RPC
** handshake must make it a side connection (target 0 or a provisional id:
** it never becomes, nor displaces, a node's own connection), and after it
** only REQUEST frames of an allowed method pass (handle_frame); any other
** frame closes the connection before it reaches a handler. Requests that
** pass carry the user (rpc_message.peer_user) for the handler to judge.
**
** Critical invariants:
**   - With TLS, no byte from a peer reaches the frame parser before the
**     TLS handshake has verified its node certificate against the cluster
**     CA (or, with cfg.client_methods, a client certificate: such a peer
**     only ever has a side connection, and no frame of it but a request of
**     an allowed method reaches deliver_frame), and no frame leaves
**     unencrypted (the only plaintext a TLS node ever sends is its refusal
**     of a plaintext peer, which carries no data). A TLS node and a
**     plaintext one never talk: each refuses the other with a logged
**     reason, never a downgrade. Without TLS the bytes
**     on the wire are exactly those of the plaintext protocol (a plaintext
**     node only refuses a ClientHello it would have refused anyway).
**   - With TLS, a received frame reaches a handler with from = a real node
**     id this transport knows at an IP only if the peer's certificate
**     carries that IP, whatever the connection (canonical or side).
**   - Ciphertext leaves in the order the stream produced it: every call
**     into a connection's stream is followed, on the loop thread, by taking
**     all its pending output into a uv_write.
**   - Only the loop thread touches sockets, peers, pending requests, timers.
**     Other threads touch only t->submit (under t->mu) and atomics.
**   - Frames of one peer leave in the order they were submitted; a frame is
**     written at most once and never on more than one connection.
**   - A pending request is in exactly one state: QUEUED (its frame is in the
**     peer queue, req->out) or SENT (req->conn). Its callback runs exactly
**     once, and it is then unlinked from the id table, its peer and the
**     timeout list before the callback runs.
**   - A QUEUED request's frame was never handed to uv_write (frames leave
**     the peer queue only on an ACTIVE connection, and the request becomes
**     SENT in the same step), so the peer surely never saw it. A SENT one
**     may have been seen, even if only part of its frame left.
**   - When a connection closes, every request SENT on it fails with
**     RPC_ERR_DISCONNECTED ("maybe sent"). QUEUED ones wait for the next
**     connection, but when a dial attempt fails (connect error, refused or
**     malformed handshake, handshake deadline, wrong node answering; not
**     a simultaneous-dial "duplicate" refusal, after which the peer's own
**     connection arrives) every QUEUED request of that peer fails with
**     RPC_ERR_UNREACHABLE ("surely not sent"), and new requests fail so at
**     once while the peer is in the reconnect backoff that followed
**     (p->dial_failed). One-way messages stay queued (dropped only to a
**     full queue, counted).
**   - Input from a peer is never trusted: any malformed frame closes that
**     connection with a logged error (and counts bad_frames); nothing asserts.
**   - Every queue has a limit (submit bytes, frames and bytes per peer,
**     pending requests, connections, frames per write, side connections
**     dialed by address, routes per side connection).
**   - A side peer is never in t->peers and a canonical one never in
**     t->side; a provisional node id is never a canonical peer. A side
**     peer has no requests, routes or queued frames once its connection
**     is closing (conn_close fails and drops them), and it is freed only
**     in its connection's close callback.
**   - Test faults (rpc_uv_set_fault): only frames received from a
**     canonical peer after its handshake are dropped or held; a held frame
**     is a copy, delivered by the fault timer as if just received (late
**     responses then find no request, like any late answer); a peer's held
**     frames leave in arrival order (due times never decrease along its
**     list), and every frame from a peer with frames held is held too.
*/
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "base/base.h"
#include "rpc/rpc_int.h"

#define RPC_CONNS_MAX 1024         /* sockets open at once (inbound + outbound) */
#define RPC_WRITE_FRAMES_MAX 512   /* frames coalesced into one uv_write */
#define RPC_WRITE_QUEUE_HIGH (8u * 1024 * 1024) /* stop flushing above this */
#define RPC_READ_CHUNK (64 * 1024)
#define RPC_REQ_BUCKETS 4096       /* id table buckets (power of two) */
#define RPC_PEERS_MAX 4096
#define RPC_KEEPALIVE_S 10         /* TCP keepalive: finds half-open sockets */
#define RPC_ROUTE_BUCKETS 256      /* route table buckets (power of two) */
#define RPC_SIDE_ROUTES_MAX 1024   /* unanswered requests per side connection;
                                      beyond, answered RPC_ERR_QUEUE_FULL */
/* First bytes of a PostgreSQL client: int32 length, int32 code. */
#define RPC_PG_PREFIX_SIZE 8
#define RPC_PG_CANCEL_CODE 80877102u
#define RPC_PG_SSL_CODE 80877103u
#define RPC_PG_GSSENC_CODE 80877104u
/* TLS: first bytes of a record of type handshake (a ClientHello). */
#define RPC_TLS_RECORD_HANDSHAKE 0x16
#define RPC_TLS_RECORD_PLAIN 16384        /* a TLS record's plaintext: small frames
                                             are coalesced up to this */
#define RPC_TLS_WRITE_CHUNK (256u * 1024) /* plaintext per sec_tls_conn_write, so
                                             its output stays far below
                                             SEC_TLS_OUT_PENDING_MAX */
#define RPC_TLS_BATCH_BYTES (1u << 20)    /* plaintext per encrypted uv_write (at
                                             least one frame) */
#define RPC_TLS_STAGE_KEEP (64u * 1024)   /* staging buffer kept between batches */
#define RPC_TLS_READ_ROOM 16384           /* plaintext room per sec_tls_conn_read */

typedef struct rpc__conn rpc__conn;
typedef struct rpc__peer rpc__peer;
typedef struct rpc__req rpc__req;
typedef struct rpc__route rpc__route;

/* One encoded frame: submitted by a caller, then queued on a peer. */
typedef struct rpc__out {
    struct rpc__out *next;
    uint8_t *data; /* owner: this, base_free */
    size_t len;
    uint8_t kind;
    bool cancelled;    /* a request frame whose request already failed */
    rpc_node_id to;
    /* submitted requests and responses */
    uint64_t request_id;
    int64_t timeout_ms;
    rpc_response_fn cb;
    void *cb_ctx;
    rpc__req *req; /* while queued on a peer: its waiting entry */
    /* submitted peer addresses (kind 0): the address, and a peer allocated
    ** by the caller so that the loop never fails to register it */
    struct sockaddr_storage addr;
    struct rpc__peer *peer_alloc;
    bool by_addr; /* a request to addr (rpc_uv_request_addr), to == 0 */
} rpc__out;

enum { REQ_QUEUED = 1, REQ_SENT = 2 };

struct rpc__req {
    uint64_t id;
    int state;
    rpc__peer *peer;
    rpc__conn *conn; /* SENT: the connection that carried it */
    rpc__out *out;   /* QUEUED: its frame */
    uint64_t deadline_ms; /* loop time */
    rpc_response_fn cb;
    void *cb_ctx;
    rpc__req *hnext;                 /* id table chain */
    rpc__req *pnext, *pprev;         /* peer list */
    rpc__req *tnext, *tprev;         /* transport list (timeouts) */
};

/* A received frame held by a test fault (rpc_uv_set_fault), delivered at
** due_ms. owner: its peer's held list until delivered or discarded. */
typedef struct rpc__held {
    struct rpc__held *next;
    rpc__header h;
    uint64_t due_ms; /* loop time */
    uint8_t payload[]; /* h.payload_len bytes */
} rpc__held;

/* REFUSING: our refusal is being written, then the socket closes. */
enum { CONN_DIAL = 1, CONN_HANDSHAKE = 2, CONN_ACTIVE = 3, CONN_REFUSING = 4, CONN_CLOSING = 5 };

struct rpc__conn {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    struct rpc_uv *t;
    rpc__peer *peer; /* outbound: from the dial; inbound: after the handshake */
    bool outbound;
    int state;
    base_buf in;
    size_t in_off; /* bytes of `in` already parsed */
    bool sniffed;  /* first bytes checked: inbound, PostgreSQL client / TLS /
                      plaintext; outbound TLS, a TLS record / a plaintext refusal */
    uint64_t opened_ms; /* loop time of creation: handshake deadline */
    bool dup_refused;   /* outbound: refused as a simultaneous dial ("duplicate"):
                           not a dial failure, the peer's own connection comes */
    sec_tls_conn *tls;  /* owner: this conn (on_conn_closed); NULL: plaintext */
    base_buf raw;       /* TLS: ciphertext read, not yet fed to tls */
    /* inbound TLS: the peer showed a client (user) certificate, not a node
    ** one: an admin tool, limited to cfg.client_methods (see the file comment) */
    bool client;
    char client_user[SEC_USER_SIZE_MAX + 1]; /* its CN */
    rpc__conn *next, *prev;
};

struct rpc__peer {
    struct rpc_uv *t;
    rpc_node_id id; /* side peer: 0 until its handshake names it */
    struct sockaddr_storage addr;
    bool has_addr;
    rpc__conn *conn;    /* ACTIVE connection or NULL */
    rpc__conn *dialing; /* outbound connection not yet active */
    rpc__out *qhead, *qtail;
    size_t q_frames, q_bytes;
    rpc__req *reqs;
    uv_timer_t redial;
    bool redial_armed;
    uint32_t attempts;
    uint64_t next_dial_ms;
    /* The latest dial attempt failed and no handshake succeeded since: until
    ** next_dial_ms, new requests fail RPC_ERR_UNREACHABLE at once. */
    bool dial_failed;
    bool dirty;
    rpc__peer *dirty_next;
    /* side peers only (see the file comment) */
    bool side;
    bool side_closed;     /* its connection is closing: nothing new joins */
    rpc__peer *snext, *sprev; /* t->side */
    rpc__route *routes;   /* requests received on it, not yet answered */
    unsigned nroutes;
    uint64_t last_used_ms; /* outbound: loop time of its latest request */
    /* canonical peers: frames received from it and held by a test fault */
    rpc__held *hhead, *htail;
};

/* A request received on a side connection, waiting for its answer. */
struct rpc__route {
    rpc_node_id from;
    uint64_t request_id;
    rpc__peer *peer;
    rpc__route *hnext;        /* t->routes chain */
    rpc__route *pnext, *pprev; /* peer->routes */
};

typedef struct rpc__write {
    uv_write_t req;
    rpc__conn *c;
    uint8_t *bytes;   /* owner: this write (base_free): ciphertext, or NULL */
    rpc__out *frames;
    unsigned nbufs;
    uv_buf_t bufs[];
} rpc__write;

struct rpc_uv {
    rpc_transport iface; /* first member */
    rpc_uv_config cfg;
    uint64_t rng_state;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_tcp_t listener;
    bool has_listener;
    int port;
    uv_async_t wake, stop;
    uv_timer_t sweep;
    uint64_t sweep_due_ms; /* 0: not armed */
    uv_timer_t housekeeping; /* repeating: handshake/dial deadlines */

    uv_mutex_t mu; /* guards the fields below */
    rpc__out *submit_head, *submit_tail;
    size_t submit_bytes;
    bool stopped;
    rpc_handler_fn handler;
    void *handler_ctx;

    _Atomic uint64_t next_request_id;
    /* loop thread only */
    bool stopping;
    rpc__conn *conns;
    unsigned nconns;
    rpc__peer **peers;
    unsigned npeers;
    rpc__req *buckets[RPC_REQ_BUCKETS];
    rpc__req *reqs; /* every pending request */
    unsigned nreqs;
    rpc__peer *dirty;
    rpc__peer *side;       /* side peers */
    unsigned nside_out;    /* side peers dialed by address (RPC_ADDR_CONNS_MAX) */
    rpc__route *routes[RPC_ROUTE_BUCKETS];
    unsigned nroutes;
    base_buf tls_stage; /* small frames coalesced before encryption */
    _Atomic uint64_t cluster_id; /* cfg.cluster_id, then rpc_uv_set_cluster_id */
    /* test faults: the settings under mu; faults_on mirrors nfaults > 0 so
    ** that the receive path takes no lock without them */
    rpc_uv_fault faults[RPC_FAULTS_MAX];
    unsigned nfaults;
    _Atomic bool faults_on;
    uv_timer_t fault_timer; /* loop thread: delivers held frames */
    uint64_t fault_due_ms;  /* 0: not armed */
    unsigned nheld;
    size_t held_bytes;

    struct {
        _Atomic uint64_t frames_sent, frames_received, bytes_sent, bytes_received,
            messages_dropped, requests_timed_out, requests_disconnected,
            requests_unreachable, handshakes_ok,
            handshake_failures, dial_failures, bad_frames, duplicate_connections_closed,
            hlc_remote_ahead, writes, peers_connected, side_connections,
            side_connections_open, foreign_connections, tls_handshakes, tls_refused,
            client_connections, client_refused, fault_dropped, fault_delayed;
    } st;
};

#define STAT_ADD(t, f, n) atomic_fetch_add_explicit(&(t)->st.f, (n), memory_order_relaxed)

static void conn_close(rpc__conn *c, int fail_rc);
static void peer_flush(rpc__peer *p);
static void peer_maybe_dial(rpc__peer *p);
static rpc__conn *conn_new(rpc_uv *t, bool outbound);
static void on_connect(uv_connect_t *req, int status);
static int build_frame(rpc_uv *t, rpc__header *h, const void *payload, size_t len,
                       rpc__out **out);

/* ---- small helpers ------------------------------------------------------- */

static hlc_timestamp stamp(rpc_uv *t)
{
    return t->cfg.clock ? hlc_now(t->cfg.clock) : HLC_ZERO;
}

static uint64_t rng_next(rpc_uv *t)
{
    if (t->cfg.random)
        return t->cfg.random(t->cfg.random_ctx);
    return rpc__splitmix64(&t->rng_state);
}

static void out_free(rpc__out *o)
{
    if (o == NULL)
        return;
    base_free(o->peer_alloc);
    base_free(o->data);
    base_free(o);
}

static rpc__peer *peer_find(rpc_uv *t, rpc_node_id id)
{
    for (unsigned i = 0; i < t->npeers; i++)
        if (t->peers[i]->id == id)
            return t->peers[i];
    return NULL;
}

/* Find or create peer `id`. prealloc: a zeroed peer to use instead of
** allocating (consumed only when a new peer is created; else the caller
** frees it). NULL: out of memory, or RPC_PEERS_MAX peers. */
static rpc__peer *peer_get_with(rpc_uv *t, rpc_node_id id, rpc__peer *prealloc, bool *used)
{
    rpc__peer *p = peer_find(t, id);
    if (p != NULL || t->npeers >= RPC_PEERS_MAX)
        return p;
    p = prealloc ? prealloc : base_calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    if (used)
        *used = prealloc != NULL;
    p->id = id;
    p->t = t;
    uv_timer_init(&t->loop, &p->redial);
    p->redial.data = p;
    t->peers[t->npeers++] = p; /* t->peers holds RPC_PEERS_MAX slots */
    return p;
}

static rpc__peer *peer_get(rpc_uv *t, rpc_node_id id)
{
    return peer_get_with(t, id, NULL, NULL);
}

static void mark_dirty(rpc_uv *t, rpc__peer *p)
{
    if (!p->dirty) {
        p->dirty = true;
        p->dirty_next = t->dirty;
        t->dirty = p;
    }
}

static void flush_dirty(rpc_uv *t)
{
    /* Bounded: each peer is on the list at most once. */
    while (t->dirty) {
        rpc__peer *p = t->dirty;
        t->dirty = p->dirty_next;
        p->dirty = false;
        p->dirty_next = NULL;
        if (p->conn)
            peer_flush(p);
        else
            peer_maybe_dial(p);
    }
}

/* ---- pending requests ----------------------------------------------------- */

static void req_unlink(rpc_uv *t, rpc__req *r)
{
    rpc__req **pp = &t->buckets[r->id & (RPC_REQ_BUCKETS - 1)];
    while (*pp != r)
        pp = &(*pp)->hnext;
    *pp = r->hnext;
    if (r->pprev)
        r->pprev->pnext = r->pnext;
    else
        r->peer->reqs = r->pnext;
    if (r->pnext)
        r->pnext->pprev = r->pprev;
    if (r->tprev)
        r->tprev->tnext = r->tnext;
    else
        t->reqs = r->tnext;
    if (r->tnext)
        r->tnext->tprev = r->tprev;
    t->nreqs--;
    if (r->out) {
        r->out->req = NULL;
        r->out->cancelled = true;
    }
}

/* Unlink, run the callback, free. */
static void req_finish(rpc_uv *t, rpc__req *r, int rc, const rpc_message *msg)
{
    req_unlink(t, r);
    r->cb(r->cb_ctx, rc, msg);
    base_free(r);
}

static rpc__req *req_find(rpc_uv *t, uint64_t id)
{
    for (rpc__req *r = t->buckets[id & (RPC_REQ_BUCKETS - 1)]; r; r = r->hnext)
        if (r->id == id)
            return r;
    return NULL;
}

static void on_sweep(uv_timer_t *h);

static void sweep_arm(rpc_uv *t, uint64_t deadline_ms)
{
    if (t->stopping)
        return;
    if (t->sweep_due_ms != 0 && t->sweep_due_ms <= deadline_ms)
        return;
    uint64_t now = uv_now(&t->loop);
    t->sweep_due_ms = deadline_ms;
    uv_timer_start(&t->sweep, on_sweep, deadline_ms > now ? deadline_ms - now : 0, 0);
}

/* Fail every request whose deadline passed; re-arm for the earliest left.
** Bounded by pending_requests_max per run. */
static void on_sweep(uv_timer_t *h)
{
    rpc_uv *t = h->data;
    uint64_t now = uv_now(&t->loop);
    uint64_t next = 0;
    t->sweep_due_ms = 0;
    rpc__req *r = t->reqs;
    while (r) {
        rpc__req *nx = r->tnext;
        if (r->deadline_ms <= now) {
            STAT_ADD(t, requests_timed_out, 1);
            req_finish(t, r, RPC_ERR_TIMEOUT, NULL);
        } else if (next == 0 || r->deadline_ms < next) {
            next = r->deadline_ms;
        }
        r = nx;
    }
    if (next != 0)
        sweep_arm(t, next);
    flush_dirty(t); /* callbacks may have sent */
}

/* ---- peer queues ------------------------------------------------------------- */

static void queue_remove_after(rpc__peer *p, rpc__out *prev, rpc__out *o)
{
    if (prev)
        prev->next = o->next;
    else
        p->qhead = o->next;
    if (p->qtail == o)
        p->qtail = prev;
    p->q_frames--;
    p->q_bytes -= o->len;
    o->next = NULL;
}

/* Make room for a frame of `len` bytes. Only one-way messages are ever
** dropped to make room. Returns true when there is room. */
static bool queue_make_room(rpc_uv *t, rpc__peer *p, size_t len, bool new_is_message)
{
    unsigned guard = 0;
    while (p->q_frames + 1 > t->cfg.peer_queue_frames_max ||
           p->q_bytes + len > t->cfg.peer_queue_bytes_max) {
        if (!new_is_message || t->cfg.drop_policy == RPC_DROP_NEWEST || guard++ > 64)
            return false;
        rpc__out *prev = NULL, *o = p->qhead;
        while (o && o->kind != RPC_FRAME_MESSAGE && !o->cancelled) {
            prev = o;
            o = o->next;
        }
        if (o == NULL)
            return false;
        queue_remove_after(p, prev, o);
        if (!o->cancelled)
            STAT_ADD(t, messages_dropped, 1);
        out_free(o);
    }
    return true;
}

static void queue_push(rpc__peer *p, rpc__out *o)
{
    o->next = NULL;
    if (p->qtail)
        p->qtail->next = o;
    else
        p->qhead = o;
    p->qtail = o;
    p->q_frames++;
    p->q_bytes += o->len;
}

/* Register the request of frame o (kind REQUEST) on peer p and queue the
** frame. RPC_OK (o is taken), or the error for its callback (o is not). */
static int req_register(rpc_uv *t, rpc__peer *p, rpc__out *o)
{
    if (t->nreqs >= t->cfg.pending_requests_max || !queue_make_room(t, p, o->len, false))
        return RPC_ERR_QUEUE_FULL;
    rpc__req *r = base_calloc(1, sizeof(*r)); /* owner: t's id table until req_finish */
    if (r == NULL)
        return RPC_ERR_NOMEM;
    r->id = o->request_id;
    r->state = REQ_QUEUED;
    r->peer = p;
    r->out = o;
    r->cb = o->cb;
    r->cb_ctx = o->cb_ctx;
    r->deadline_ms = uv_now(&t->loop) + (uint64_t)o->timeout_ms;
    unsigned b = r->id & (RPC_REQ_BUCKETS - 1);
    r->hnext = t->buckets[b];
    t->buckets[b] = r;
    r->pnext = p->reqs;
    if (p->reqs)
        p->reqs->pprev = r;
    p->reqs = r;
    r->tnext = t->reqs;
    if (t->reqs)
        t->reqs->tprev = r;
    t->reqs = r;
    t->nreqs++;
    o->req = r;
    queue_push(p, o);
    sweep_arm(t, r->deadline_ms);
    p->last_used_ms = uv_now(&t->loop);
    mark_dirty(t, p);
    return RPC_OK;
}

/* A dial attempt to canonical peer p failed: every request still QUEUED on
** it was never handed to any connection (see the file comment), so it fails
** with RPC_ERR_UNREACHABLE now rather than at its deadline. One-way
** messages and responses stay queued for the next connection. The frames
** are taken out of the queue before any callback runs: a callback on this
** thread may queue new frames on p (and make room by dropping messages).
** Bounded by the peer's queue (peer_queue_frames_max). */
static void peer_fail_queued(rpc_uv *t, rpc__peer *p)
{
    rpc__out *taken = NULL, **tail = &taken;
    rpc__out *prev = NULL, *o = p->qhead;
    while (o) {
        rpc__out *nx = o->next;
        if (o->kind == RPC_FRAME_REQUEST) { /* cancelled ones too: dead weight */
            queue_remove_after(p, prev, o);
            *tail = o;
            tail = &o->next;
        } else {
            prev = o;
        }
        o = nx;
    }
    unsigned failed = 0;
    while (taken) {
        o = taken;
        taken = o->next;
        o->next = NULL;
        if (o->req) { /* req_unlink clears o->req */
            assert(o->req->state == REQ_QUEUED && o->req->out == o);
            STAT_ADD(t, requests_unreachable, 1);
            failed++;
            req_finish(t, o->req, RPC_ERR_UNREACHABLE, NULL);
        }
        out_free(o);
    }
    if (failed > 0)
        BASE_DEBUG("rpc", "node %llu: node %llu unreachable: %u queued requests failed",
                   (unsigned long long)t->cfg.node_id, (unsigned long long)p->id, failed);
}

/* New requests to p fail at once: its latest dial failed and the backoff
** before the next one has not elapsed. No grace: the failed dial is fresh
** evidence, a wait would only delay the caller's failover, and the next
** request after the backoff dials again (so a peer that came back is found
** by demand, without probing idle peers). */
static bool peer_in_failed_backoff(rpc_uv *t, const rpc__peer *p)
{
    return p->dial_failed && p->conn == NULL && p->dialing == NULL &&
           uv_now(&t->loop) < p->next_dial_ms;
}

/* ---- side peers and routes -------------------------------------------------- */

static bool addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* A new side peer. owner: t->side, freed by side_free. NULL: out of memory. */
static rpc__peer *side_new(rpc_uv *t)
{
    rpc__peer *p = base_calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->t = t;
    p->side = true;
    p->snext = t->side;
    if (t->side)
        t->side->sprev = p;
    t->side = p;
    return p;
}

/* The open side peer dialed to addr. Bounded: at most RPC_CONNS_MAX. */
static rpc__peer *side_find_addr(rpc_uv *t, const struct sockaddr_storage *addr)
{
    for (rpc__peer *p = t->side; p; p = p->snext)
        if (p->has_addr && !p->side_closed && addr_equal(&p->addr, addr))
            return p;
    return NULL;
}

static unsigned route_bucket(rpc_node_id from, uint64_t request_id)
{
    return (unsigned)((request_id ^ (from * 0x9E3779B97F4A7C15ull)) & (RPC_ROUTE_BUCKETS - 1));
}

static void route_unlink(rpc_uv *t, rpc__route *r)
{
    rpc__route **pp = &t->routes[route_bucket(r->from, r->request_id)];
    while (*pp != r)
        pp = &(*pp)->hnext;
    *pp = r->hnext;
    if (r->pprev)
        r->pprev->pnext = r->pnext;
    else
        r->peer->routes = r->pnext;
    if (r->pnext)
        r->pnext->pprev = r->pprev;
    r->peer->nroutes--;
    t->nroutes--;
}

/* Remember that request (from, request_id) came on side peer p. False:
** RPC_SIDE_ROUTES_MAX reached or out of memory. */
static bool route_add(rpc_uv *t, rpc__peer *p, rpc_node_id from, uint64_t request_id)
{
    if (p->nroutes >= RPC_SIDE_ROUTES_MAX)
        return false;
    rpc__route *r = base_calloc(1, sizeof(*r)); /* owner: t->routes until taken */
    if (r == NULL)
        return false;
    r->from = from;
    r->request_id = request_id;
    r->peer = p;
    unsigned b = route_bucket(from, request_id);
    r->hnext = t->routes[b];
    t->routes[b] = r;
    r->pnext = p->routes;
    if (p->routes)
        p->routes->pprev = r;
    p->routes = r;
    p->nroutes++;
    t->nroutes++;
    return true;
}

/* The side peer a request (from, request_id) came on, its route removed;
** NULL when none. */
static rpc__peer *route_take(rpc_uv *t, rpc_node_id from, uint64_t request_id)
{
    if (t->nroutes == 0)
        return NULL;
    for (rpc__route *r = t->routes[route_bucket(from, request_id)]; r; r = r->hnext) {
        if (r->from == from && r->request_id == request_id) {
            rpc__peer *p = r->peer;
            route_unlink(t, r);
            base_free(r);
            return p;
        }
    }
    return NULL;
}

/* The side peer's connection is going (or never came): fail every request
** on it with rc, forget its routes, drop its queued frames. Idempotent. The
** struct stays until side_free. */
static void side_detach(rpc_uv *t, rpc__peer *p, int rc)
{
    if (p->side_closed)
        return;
    p->side_closed = true; /* first: callbacks below may submit */
    if (p->has_addr)
        t->nside_out--;
    while (p->routes) {
        rpc__route *r = p->routes;
        route_unlink(t, r);
        base_free(r);
    }
    /* Bounded by pending_requests_max. */
    while (p->reqs) {
        if (rc == RPC_ERR_DISCONNECTED)
            STAT_ADD(t, requests_disconnected, 1);
        req_finish(t, p->reqs, rc, NULL);
    }
    while (p->qhead) {
        rpc__out *o = p->qhead;
        queue_remove_after(p, NULL, o);
        out_free(o);
    }
}

static void side_free(rpc_uv *t, rpc__peer *p)
{
    assert(p->side && p->side_closed && p->reqs == NULL && p->routes == NULL);
    if (p->dirty) { /* bounded: each peer is on the dirty list at most once */
        rpc__peer **pp = &t->dirty;
        while (*pp != p)
            pp = &(*pp)->dirty_next;
        *pp = p->dirty_next;
    }
    if (p->sprev)
        p->sprev->snext = p->snext;
    else
        t->side = p->snext;
    if (p->snext)
        p->snext->sprev = p->sprev;
    base_free(p);
}

/* Dial side peer p (once: side peers are never redialed). */
static void side_dial(rpc_uv *t, rpc__peer *p)
{
    rpc__conn *c = conn_new(t, true);
    if (c == NULL) {
        STAT_ADD(t, dial_failures, 1);
        side_detach(t, p, RPC_ERR_DISCONNECTED);
        side_free(t, p);
        return;
    }
    c->peer = p;
    c->state = CONN_DIAL;
    p->dialing = c;
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&p->addr,
                            on_connect);
    if (rc != 0) {
        STAT_ADD(t, dial_failures, 1);
        conn_close(c, RPC_ERR_DISCONNECTED); /* fails the requests; freed when closed */
    }
}

/* A request by address reaches the loop: queue it on the side connection
** to that address, opening one (flush_dirty dials) when there is none.
** Takes ownership of o. */
static void submit_addr_request(rpc_uv *t, rpc__out *o)
{
    int fail = RPC_OK;
    bool fresh = false;
    rpc__peer *p = side_find_addr(t, &o->addr);
    if (p == NULL) {
        if (t->nside_out >= RPC_ADDR_CONNS_MAX) {
            fail = RPC_ERR_QUEUE_FULL;
        } else if ((p = side_new(t)) == NULL) {
            fail = RPC_ERR_NOMEM;
        } else {
            fresh = true;
            p->addr = o->addr;
            p->has_addr = true;
            t->nside_out++;
        }
    }
    if (fail == RPC_OK)
        fail = req_register(t, p, o);
    if (fail != RPC_OK) {
        if (fresh) {
            side_detach(t, p, fail);
            side_free(t, p);
        }
        o->cb(o->cb_ctx, fail, NULL);
        out_free(o);
    }
}

/* Answer a request on side peer p from the loop (its route could not be
** kept). Lost if it cannot be queued: the requester times out. */
static void side_answer_now(rpc_uv *t, rpc__peer *p, uint64_t request_id, int32_t status)
{
    rpc__header h = {0};
    h.kind = RPC_FRAME_RESPONSE;
    h.request_id = request_id;
    h.status = status;
    rpc__out *o = NULL;
    if (build_frame(t, &h, NULL, 0, &o) != RPC_OK || !queue_make_room(t, p, o->len, false)) {
        STAT_ADD(t, messages_dropped, 1);
        out_free(o);
        return;
    }
    queue_push(p, o);
    mark_dirty(t, p);
}

/* A submitted frame reaches the loop. Takes ownership of o. */
static void submit_one(rpc_uv *t, rpc__out *o)
{
    if (o->kind == 0) { /* address registration */
        bool used = false;
        rpc__peer *p = peer_get_with(t, o->to, o->peer_alloc, &used);
        if (used)
            o->peer_alloc = NULL;
        if (p == NULL)
            BASE_ERROR("rpc", "node %llu: cannot register node %llu: %d peers already",
                       (unsigned long long)t->cfg.node_id, (unsigned long long)o->to,
                       RPC_PEERS_MAX);
        if (p) {
            p->addr = o->addr;
            p->has_addr = true;
            p->attempts = 0;
            p->next_dial_ms = 0;
            p->dial_failed = false; /* a new address: a fresh chance, now */
            if (p->redial_armed) {
                uv_timer_stop(&p->redial);
                p->redial_armed = false;
            }
            if (p->qhead)
                mark_dirty(t, p);
        }
        out_free(o);
        return;
    }
    if (o->by_addr) {
        submit_addr_request(t, o);
        return;
    }
    if (o->kind == RPC_FRAME_RESPONSE) {
        /* An answer to a request that came on a side connection goes back
        ** on it. */
        rpc__peer *sp = route_take(t, o->to, o->request_id);
        if (sp != NULL) {
            if (!queue_make_room(t, sp, o->len, false)) {
                STAT_ADD(t, messages_dropped, 1);
                out_free(o);
                return;
            }
            queue_push(sp, o);
            mark_dirty(t, sp);
            return;
        }
    }
    if (rpc_node_id_is_provisional(o->to)) {
        /* Never a canonical peer: it is reachable only through the routes
        ** of its side connection. */
        if (o->kind == RPC_FRAME_REQUEST)
            o->cb(o->cb_ctx, RPC_ERR_UNKNOWN_PEER, NULL);
        else
            STAT_ADD(t, messages_dropped, 1);
        out_free(o);
        return;
    }
    rpc__peer *p = peer_get(t, o->to);
    bool reachable = p && (p->has_addr || p->conn || p->dialing);
    if (o->kind == RPC_FRAME_REQUEST) {
        int fail = 0;
        if (!reachable)
            fail = p ? RPC_ERR_UNKNOWN_PEER : RPC_ERR_NOMEM;
        else if (peer_in_failed_backoff(t, p))
            fail = RPC_ERR_UNREACHABLE;
        else
            fail = req_register(t, p, o);
        if (fail == RPC_ERR_UNREACHABLE)
            STAT_ADD(t, requests_unreachable, 1);
        if (fail != 0) {
            o->cb(o->cb_ctx, fail, NULL);
            out_free(o);
        }
        return;
    }
    /* one-way messages and responses: loss is tolerated, and counted */
    if (!reachable || !queue_make_room(t, p, o->len, o->kind == RPC_FRAME_MESSAGE)) {
        STAT_ADD(t, messages_dropped, 1);
        out_free(o);
        return;
    }
    queue_push(p, o);
    mark_dirty(t, p);
}

/* ---- writing ------------------------------------------------------------------ */

static void on_write(uv_write_t *wr, int status)
{
    rpc__write *w = (rpc__write *)wr;
    rpc__conn *c = w->c;
    rpc__out *o = w->frames;
    while (o) {
        rpc__out *nx = o->next;
        out_free(o);
        o = nx;
    }
    base_free(w->bytes);
    base_free(w);
    if (status < 0) {
        if (status != UV_ECANCELED)
            BASE_WARN("rpc", "node %llu: write to peer %llu failed: %s",
                      (unsigned long long)c->t->cfg.node_id,
                      (unsigned long long)(c->peer ? c->peer->id : 0), uv_strerror(status));
        conn_close(c, RPC_ERR_DISCONNECTED);
        flush_dirty(c->t); /* callbacks may have sent */
        return;
    }
    if (c->state == CONN_ACTIVE && c->peer && c->peer->conn == c && c->peer->qhead) {
        peer_flush(c->peer);
    }
}

/* Write bytes to the socket as they are (plaintext frames, or ciphertext).
** Takes data. */
static int conn_write_bytes(rpc__conn *c, uint8_t *data, size_t len)
{
    if (len == 0) {
        base_free(data);
        return RPC_OK;
    }
    rpc__out *o = base_calloc(1, sizeof(*o));
    rpc__write *w = base_calloc(1, sizeof(*w) + sizeof(uv_buf_t));
    if (o == NULL || w == NULL) {
        base_free(o);
        base_free(w);
        base_free(data);
        return RPC_ERR_NOMEM;
    }
    o->data = data;
    o->len = len;
    w->c = c;
    w->frames = o;
    w->nbufs = 1;
    w->bufs[0] = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs, 1, on_write);
    if (rc != 0) {
        out_free(o);
        base_free(w);
        return RPC_ERR_IO;
    }
    STAT_ADD(c->t, writes, 1);
    return RPC_OK;
}

/* ---- TLS ------------------------------------------------------------------------ */

/* The IP literal of an address (the name a dialed peer's certificate must
** carry), "?" when it has none. */
static void addr_ip(const struct sockaddr_storage *a, char *buf, size_t size)
{
    int rc = a->ss_family == AF_INET6
                 ? uv_ip6_name((const struct sockaddr_in6 *)a, buf, size)
                 : uv_ip4_name((const struct sockaddr_in *)a, buf, size);
    if (rc != 0)
        base_strlcpy(buf, "?", size);
}

/* "node N at IP:PORT", or "IP:PORT" while the peer is unknown, for logs. */
static void conn_describe(rpc__conn *c, char *buf, size_t size)
{
    struct sockaddr_storage a;
    int alen = sizeof(a);
    char ip[64] = "?";
    int port = 0;
    bool known = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&a, &alen) == 0;
    if (!known && c->outbound && c->peer && c->peer->has_addr) {
        a = c->peer->addr;
        known = true;
    }
    if (known) {
        addr_ip(&a, ip, sizeof(ip));
        port = a.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&a)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&a)->sin_port);
    }
    if (c->peer && c->peer->id != 0)
        snprintf(buf, size, "node %llu at %s:%d", (unsigned long long)c->peer->id, ip, port);
    else
        snprintf(buf, size, "%s:%d", ip, port);
}

/* Send the ciphertext c's stream holds (handshake records, alerts). */
static int tls_flush(rpc__conn *c)
{
    size_t n = sec_tls_conn_pending_out(c->tls);
    if (n == 0)
        return RPC_OK;
    uint8_t *data = base_malloc(n); /* owner: the write, then on_write */
    if (data == NULL)
        return RPC_ERR_NOMEM;
    return conn_write_bytes(c, data, sec_tls_conn_take_out(c->tls, data, n));
}

/* Encrypt plaintext into c's stream and append all the ciphertext it holds
** to out (in order: whatever was pending comes first). Bounded: len shrinks
** by up to RPC_TLS_WRITE_CHUNK per round. */
static int tls_encrypt(rpc__conn *c, const uint8_t *data, size_t len, base_buf *out)
{
    do {
        size_t n = len < RPC_TLS_WRITE_CHUNK ? len : RPC_TLS_WRITE_CHUNK;
        int rc = n > 0 ? sec_tls_conn_write(c->tls, data, n) : 0;
        if (rc != 0)
            return rc == SEC_ERR_NOMEM ? RPC_ERR_NOMEM : RPC_ERR_IO;
        data += n;
        len -= n;
        size_t pending = sec_tls_conn_pending_out(c->tls);
        if (pending > 0) {
            if (base_buf_reserve(out, pending) != 0)
                return RPC_ERR_NOMEM;
            out->len += sec_tls_conn_take_out(c->tls, out->data + out->len, pending);
        }
    } while (len > 0);
    return RPC_OK;
}

/* Write one frame outside the peer queue (handshakes, refusals), encrypted
** on a TLS connection (queued in the stream until its handshake is done).
** Takes data. */
static int conn_write_frame(rpc__conn *c, uint8_t *data, size_t len)
{
    if (c->tls == NULL)
        return conn_write_bytes(c, data, len);
    base_buf cipher = {0};
    int rc = tls_encrypt(c, data, len, &cipher);
    base_free(data);
    if (rc != RPC_OK) {
        base_buf_free(&cipher);
        return rc;
    }
    return conn_write_bytes(c, cipher.data, cipher.len); /* takes cipher.data */
}

/* Move queued frames into uv_writes of up to RPC_WRITE_FRAMES_MAX buffers
** each, until the queue is empty or the socket's write queue is above
** RPC_WRITE_QUEUE_HIGH (on_write resumes then). */
static void peer_flush_tls(rpc__peer *p);

static void peer_flush(rpc__peer *p)
{
    rpc__conn *c = p->conn;
    if (c == NULL || c->state != CONN_ACTIVE)
        return;
    if (c->tls != NULL) {
        peer_flush_tls(p);
        return;
    }
    rpc_uv *t = c->t;
    while (p->qhead) {
        if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > RPC_WRITE_QUEUE_HIGH)
            return;
        unsigned n = p->q_frames < RPC_WRITE_FRAMES_MAX ? (unsigned)p->q_frames
                                                        : RPC_WRITE_FRAMES_MAX;
        rpc__write *w = base_calloc(1, sizeof(*w) + n * sizeof(uv_buf_t));
        if (w == NULL) {
            conn_close(c, RPC_ERR_DISCONNECTED);
            return;
        }
        w->c = c;
        rpc__out *tail = NULL;
        uint64_t bytes = 0;
        while (p->qhead && w->nbufs < n) {
            rpc__out *o = p->qhead;
            queue_remove_after(p, NULL, o);
            if (o->cancelled) {
                out_free(o);
                continue;
            }
            if (o->req) {
                rpc__req *r = o->req;
                r->state = REQ_SENT;
                r->conn = c;
                r->out = NULL;
                o->req = NULL;
            }
            w->bufs[w->nbufs++] = uv_buf_init((char *)o->data, (unsigned)o->len);
            bytes += o->len;
            if (tail)
                tail->next = o;
            else
                w->frames = o;
            tail = o;
        }
        if (w->nbufs == 0) {
            base_free(w);
            continue;
        }
        /* Counted before the write: the peer may answer before it returns. */
        STAT_ADD(t, writes, 1);
        STAT_ADD(t, frames_sent, w->nbufs);
        STAT_ADD(t, bytes_sent, bytes);
        int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs, w->nbufs, on_write);
        if (rc != 0) {
            for (rpc__out *o = w->frames; o;) {
                rpc__out *nx = o->next;
                out_free(o);
                o = nx;
            }
            base_free(w);
            conn_close(c, RPC_ERR_DISCONNECTED);
            return;
        }
    }
}

/* peer_flush on a TLS connection: frames leave in batches of up to
** RPC_WRITE_FRAMES_MAX frames and RPC_TLS_BATCH_BYTES of plaintext, each
** encrypted into one buffer and written with one uv_write. Frames smaller
** than a record are coalesced (t->tls_stage) so that they share records;
** larger ones are encrypted in place. A frame's request becomes SENT in the
** step that encrypts it; a failure then closes the connection (they fail
** DISCONNECTED: the stream may have carried part of them). */
static void peer_flush_tls(rpc__peer *p)
{
    rpc__conn *c = p->conn;
    rpc_uv *t = c->t;
    base_buf *stage = &t->tls_stage;
    while (p->qhead) {
        if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > RPC_WRITE_QUEUE_HIGH)
            return;
        base_buf cipher = {0};
        unsigned frames = 0;
        uint64_t bytes = 0;
        int rc = RPC_OK;
        stage->len = 0;
        while (p->qhead && frames < RPC_WRITE_FRAMES_MAX && bytes < RPC_TLS_BATCH_BYTES &&
               rc == RPC_OK) {
            rpc__out *o = p->qhead;
            queue_remove_after(p, NULL, o);
            if (o->cancelled) {
                out_free(o);
                continue;
            }
            if (o->req) {
                rpc__req *r = o->req;
                r->state = REQ_SENT;
                r->conn = c;
                r->out = NULL;
                o->req = NULL;
            }
            frames++;
            bytes += o->len;
            if (o->len >= RPC_TLS_RECORD_PLAIN) {
                rc = tls_encrypt(c, stage->data, stage->len, &cipher);
                stage->len = 0;
                if (rc == RPC_OK)
                    rc = tls_encrypt(c, o->data, o->len, &cipher);
            } else if (base_buf_append(stage, o->data, o->len) != 0) {
                rc = RPC_ERR_NOMEM;
            } else if (stage->len >= RPC_TLS_RECORD_PLAIN) {
                rc = tls_encrypt(c, stage->data, stage->len, &cipher);
                stage->len = 0;
            }
            out_free(o);
        }
        if (rc == RPC_OK && stage->len > 0)
            rc = tls_encrypt(c, stage->data, stage->len, &cipher);
        stage->len = 0;
        if (stage->cap > RPC_TLS_STAGE_KEEP)
            base_buf_free(stage);
        rpc__write *w = NULL;
        if (rc == RPC_OK && cipher.len > 0 &&
            (w = base_calloc(1, sizeof(*w) + sizeof(uv_buf_t))) == NULL)
            rc = RPC_ERR_NOMEM;
        if (rc != RPC_OK) {
            base_buf_free(&cipher);
            BASE_ERROR("rpc", "node %llu: cannot encrypt for node %llu (%s); closing",
                       (unsigned long long)t->cfg.node_id, (unsigned long long)p->id,
                       rpc_strerror(rc));
            conn_close(c, RPC_ERR_DISCONNECTED);
            return;
        }
        if (w == NULL) { /* only cancelled frames */
            base_buf_free(&cipher);
            continue;
        }
        w->c = c;
        w->bytes = cipher.data; /* owner: w */
        w->nbufs = 1;
        w->bufs[0] = uv_buf_init((char *)cipher.data, (unsigned)cipher.len);
        /* Counted before the write: the peer may answer before it returns. */
        STAT_ADD(t, writes, 1);
        STAT_ADD(t, frames_sent, frames);
        STAT_ADD(t, bytes_sent, bytes);
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs, 1, on_write) != 0) {
            base_free(w->bytes);
            base_free(w);
            conn_close(c, RPC_ERR_DISCONNECTED);
            return;
        }
    }
}

/* ---- connections ----------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
    rpc__conn *c = h->data;
    rpc_uv *t = c->t;
    if (c->prev)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    t->nconns--;
    if (c->peer && c->peer->side)
        side_free(t, c->peer);
    sec_tls_conn_free(c->tls);
    base_buf_free(&c->raw);
    base_buf_free(&c->in);
    base_free(c);
}

static void peer_schedule_redial(rpc__peer *p, rpc_uv *t)
{
    uint64_t base = t->cfg.reconnect_base_ms;
    uint64_t delay = base;
    for (uint32_t i = 0; i < p->attempts && delay < t->cfg.reconnect_max_ms; i++)
        delay *= 2;
    if (delay > t->cfg.reconnect_max_ms)
        delay = t->cfg.reconnect_max_ms;
    uint64_t half = delay / 2;
    uint64_t jittered = half + rng_next(t) % (half + 1);
    if (p->attempts < 32)
        p->attempts++;
    p->next_dial_ms = uv_now(&t->loop) + jittered;
}

/* Close c (idempotent). Requests sent on it fail with fail_rc. */
static void conn_close(rpc__conn *c, int fail_rc)
{
    if (c->state == CONN_CLOSING)
        return;
    rpc_uv *t = c->t;
    bool was_current = false;
    bool dial_failed = false; /* c was p's dial attempt and it failed */
    c->state = CONN_CLOSING;
    rpc__peer *p = c->peer;
    if (p && p->side) {
        /* A side connection is its peer's whole life: everything on it
        ** fails now (no redial). */
        if (p->conn == c) {
            p->conn = NULL;
            STAT_ADD(t, side_connections_open, (uint64_t)-1);
        }
        if (p->dialing == c)
            p->dialing = NULL;
        side_detach(t, p, fail_rc);
    } else if (p) {
        if (p->conn == c) {
            p->conn = NULL;
            STAT_ADD(t, peers_connected, (uint64_t)-1);
            was_current = true;
        }
        if (p->dialing == c) {
            p->dialing = NULL;
            was_current = true;
            /* not when another connection is up (an inbound one won) */
            dial_failed = !c->dup_refused && p->conn == NULL;
        }
        rpc__req *r = p->reqs;
        while (r) {
            rpc__req *nx = r->pnext;
            if (r->state == REQ_SENT && r->conn == c) {
                if (fail_rc == RPC_ERR_DISCONNECTED)
                    STAT_ADD(t, requests_disconnected, 1);
                req_finish(t, r, fail_rc, NULL);
            }
            r = nx;
        }
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    if (p && !p->side && was_current && !t->stopping) {
        peer_schedule_redial(p, t);
        if (dial_failed) {
            p->dial_failed = true; /* first: callbacks below may submit */
            peer_fail_queued(t, p);
        }
        if (p->qhead)
            mark_dirty(t, p);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    rpc__conn *c = req->data;
    rpc_uv *t = c->t;
    conn_close(c, RPC_ERR_DISCONNECTED);
    flush_dirty(t);
}

/* Handshake status of a refusal that is not an error: "I am dialing you
** and my connection will win" (see conn_activate). */
#define RPC__HS_DUPLICATE 1

/* Send a refusal handshake with a reason, then close after it is written. */
static void conn_refuse(rpc__conn *c, rpc_node_id target, const char *reason, int32_t status)
{
    rpc_uv *t = c->t;
    uint8_t payload[RPC_HANDSHAKE_SIZE + RPC_HANDSHAKE_REASON_MAX];
    rpc__handshake hs = {RPC_PROTOCOL_VERSION, atomic_load(&t->cluster_id), t->cfg.node_id,
                         target};
    rpc__handshake_encode(&hs, payload);
    size_t rlen = strlen(reason);
    if (rlen > RPC_HANDSHAKE_REASON_MAX)
        rlen = RPC_HANDSHAKE_REASON_MAX;
    memcpy(payload + RPC_HANDSHAKE_SIZE, reason, rlen);
    rpc__header h = {0};
    h.version = RPC_PROTOCOL_VERSION;
    h.kind = RPC_FRAME_HANDSHAKE;
    h.status = status;
    h.sender = t->cfg.node_id;
    h.sent_at = stamp(t);
    uint8_t *data;
    size_t len;
    if (status == RPC__HS_DUPLICATE)
        STAT_ADD(t, duplicate_connections_closed, 1);
    else
        STAT_ADD(t, handshake_failures, 1);
    if (rpc__frame_build(&h, payload, RPC_HANDSHAKE_SIZE + rlen, &data, &len) != RPC_OK ||
        conn_write_frame(c, data, len) != RPC_OK) {
        conn_close(c, RPC_ERR_DISCONNECTED);
        return;
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c, RPC_ERR_DISCONNECTED);
    else
        c->state = CONN_REFUSING;
}

/* Node identity over TLS (docs/security.md, "TLS between nodes"): a node
** certificate is the cluster's, not one node's (ids are given at JOIN,
** after certificates are made), so an inbound node's claimed id is bound
** by address: when this transport knows node `sender` at an address, the
** peer's certificate must carry that IP, as it must for us to dial it
** there (on_connect), so a correct node always passes. An id without an
** address here (a node that just joined) is not checked. Also for the
** answerer of a dial by address. False: refused (logged, counted in
** handshake_failures; an inbound c told why, a dialed one closed). */
static bool tls_peer_bound(rpc__conn *c, rpc_node_id sender)
{
    rpc_uv *t = c->t;
    rpc__peer *p = peer_find(t, sender);
    if (p == NULL || !p->has_addr)
        return true;
    char ip[64];
    addr_ip(&p->addr, ip, sizeof(ip));
    if (sec_tls_conn_peer_has_host(c->tls, ip))
        return true;
    char why[RPC_HANDSHAKE_REASON_MAX];
    snprintf(why, sizeof(why), "certificate does not carry %s, the address of node %llu", ip,
             (unsigned long long)sender);
    BASE_WARN("rpc", "node %llu: connection claiming node id %llu refused: its %s",
              (unsigned long long)t->cfg.node_id, (unsigned long long)sender, why);
    if (c->outbound) {
        STAT_ADD(t, handshake_failures, 1);
        conn_close(c, RPC_ERR_HANDSHAKE);
    } else {
        conn_refuse(c, sender, why, RPC_ERR_HANDSHAKE);
    }
    return false;
}

static int conn_send_handshake(rpc__conn *c, rpc_node_id target)
{
    rpc_uv *t = c->t;
    uint8_t payload[RPC_HANDSHAKE_SIZE];
    rpc__handshake hs = {RPC_PROTOCOL_VERSION, atomic_load(&t->cluster_id), t->cfg.node_id,
                         target};
    rpc__handshake_encode(&hs, payload);
    rpc__header h = {0};
    h.version = RPC_PROTOCOL_VERSION;
    h.kind = RPC_FRAME_HANDSHAKE;
    h.sender = t->cfg.node_id;
    h.sent_at = stamp(t);
    uint8_t *data;
    size_t len;
    int rc = rpc__frame_build(&h, payload, sizeof(payload), &data, &len);
    if (rc != RPC_OK)
        return rc;
    return conn_write_frame(c, data, len);
}

/* c finished its handshake with peer p: make it the peer's connection, or
** lose to the existing one (lower dialer id wins). */
static void conn_activate(rpc__conn *c, rpc__peer *p)
{
    rpc_uv *t = c->t;
    c->peer = p;
    if (p->dialing == c)
        p->dialing = NULL;
    STAT_ADD(t, handshakes_ok, 1);
    if (p->side) { /* its only connection: no tie-break, not in the gauge */
        STAT_ADD(t, side_connections, 1);
        STAT_ADD(t, side_connections_open, 1);
        c->state = CONN_ACTIVE;
        p->conn = c;
        BASE_DEBUG("rpc", "node %llu: side connection with node %llu (%s)",
                   (unsigned long long)t->cfg.node_id, (unsigned long long)p->id,
                   c->outbound ? "dialed by address" : "accepted");
        mark_dirty(t, p);
        return;
    }
    rpc__conn *old = p->conn;
    if (old) {
        rpc_node_id low = t->cfg.node_id < p->id ? t->cfg.node_id : p->id;
        rpc_node_id new_dialer = c->outbound ? t->cfg.node_id : p->id;
        rpc_node_id old_dialer = old->outbound ? t->cfg.node_id : p->id;
        /* Same dialer: it gave up the old one (it dials only without a
        ** connection), so the new one wins. */
        bool keep_new = new_dialer == old_dialer || new_dialer == low;
        STAT_ADD(t, duplicate_connections_closed, 1);
        BASE_INFO("rpc", "node %llu: two connections to node %llu; keeping the one dialed by "
                  "node %llu", (unsigned long long)t->cfg.node_id, (unsigned long long)p->id,
                  (unsigned long long)(keep_new ? new_dialer : old_dialer));
        if (!keep_new) {
            conn_close(c, RPC_ERR_DISCONNECTED);
            return;
        }
        p->conn = NULL; /* not "current" any more: no redial for it */
        conn_close(old, RPC_ERR_DISCONNECTED);
    } else {
        STAT_ADD(t, peers_connected, 1); /* a swap leaves the gauge as it was */
    }
    c->state = CONN_ACTIVE;
    p->conn = c;
    p->attempts = 0;
    p->next_dial_ms = 0;
    p->dial_failed = false;
    BASE_DEBUG("rpc", "node %llu: connected to node %llu (%s)",
               (unsigned long long)t->cfg.node_id, (unsigned long long)p->id,
               c->outbound ? "dialed" : "accepted");
    mark_dirty(t, p);
}

static void bad_input(rpc__conn *c, const char *why)
{
    rpc_uv *t = c->t;
    STAT_ADD(t, bad_frames, 1);
    BASE_ERROR("rpc", "node %llu: closing connection %s node %llu: %s",
               (unsigned long long)t->cfg.node_id, c->outbound ? "to" : "from",
               (unsigned long long)(c->peer ? c->peer->id : 0), why);
    conn_close(c, RPC_ERR_DISCONNECTED);
}

/* Lamport rule on a frame from an authenticated (handshaken) peer. False:
** the timestamp is unusable and the connection was closed. */
static bool clock_update(rpc__conn *c, const rpc__header *h)
{
    rpc_uv *t = c->t;
    if (t->cfg.clock == NULL)
        return true;
    int rc = hlc_update(t->cfg.clock, h->sent_at);
    if (rc == HLC_ERR_INVALID) {
        bad_input(c, "unusable HLC timestamp");
        return false;
    }
    if (rc == HLC_ERR_REMOTE_AHEAD) {
        char buf[HLC_FORMAT_SIZE];
        STAT_ADD(t, hlc_remote_ahead, 1);
        BASE_WARN("rpc", "node %llu: REMOTE_AHEAD: node %llu sent HLC %s, more than the "
                  "max offset ahead of our clock", (unsigned long long)t->cfg.node_id,
                  (unsigned long long)h->sender, hlc_format(h->sent_at, buf, sizeof(buf)));
    }
    return true;
}

static void handle_handshake(rpc__conn *c, const rpc__header *h, const uint8_t *payload)
{
    rpc_uv *t = c->t;
    rpc__handshake hs;
    /* We dialed an address: whoever answers is fine (side_out), and the
    ** requests on it fail with a reason when the handshake does. */
    bool side_out = c->outbound && c->peer->side;
    if (rpc__handshake_decode(payload, h->payload_len, &hs) != RPC_OK || hs.sender != h->sender) {
        STAT_ADD(t, handshake_failures, 1);
        bad_input(c, "malformed handshake");
        return;
    }
    bool self = hs.sender == t->cfg.node_id;
    if (h->status == RPC__HS_DUPLICATE && c->outbound && !side_out) {
        BASE_DEBUG("rpc", "node %llu: node %llu keeps its own connection to us",
                   (unsigned long long)t->cfg.node_id, (unsigned long long)hs.sender);
        STAT_ADD(t, duplicate_connections_closed, 1);
        c->dup_refused = true;
        conn_close(c, RPC_ERR_DISCONNECTED);
        return;
    }
    if (h->status != 0) {
        size_t rlen = h->payload_len - RPC_HANDSHAKE_SIZE;
        if (rlen > RPC_HANDSHAKE_REASON_MAX)
            rlen = RPC_HANDSHAKE_REASON_MAX;
        char reason[RPC_HANDSHAKE_REASON_MAX + 1];
        memcpy(reason, payload + RPC_HANDSHAKE_SIZE, rlen);
        reason[rlen] = 0;
        for (size_t i = 0; i < rlen; i++)
            if (reason[i] < 32 || reason[i] > 126)
                reason[i] = '?';
        STAT_ADD(t, handshake_failures, 1);
        if (side_out && self) /* a --join list holds our own address: expected */
            BASE_INFO("rpc", "node %llu: dialed its own address", (unsigned long long)t->cfg.node_id);
        else
            BASE_ERROR("rpc", "node %llu: node %llu refused the connection: %s",
                       (unsigned long long)t->cfg.node_id, (unsigned long long)hs.sender, reason);
        conn_close(c, !side_out ? RPC_ERR_DISCONNECTED : self ? RPC_ERR_SELF : RPC_ERR_HANDSHAKE);
        return;
    }
    uint64_t cluster_id = atomic_load(&t->cluster_id);
    /* Inbound with target 0: dialed by address, "whoever listens here". */
    bool by_addr = !c->outbound && hs.target == 0;
    char why[160];
    why[0] = 0;
    if (hs.version != RPC_PROTOCOL_VERSION)
        snprintf(why, sizeof(why), "protocol version %u, expected %u", hs.version,
                 RPC_PROTOCOL_VERSION);
    else if (hs.cluster_id != 0 && cluster_id != 0 && hs.cluster_id != cluster_id)
        snprintf(why, sizeof(why), "cluster id %016llx, expected %016llx",
                 (unsigned long long)hs.cluster_id, (unsigned long long)cluster_id);
    else if (hs.target != t->cfg.node_id && !by_addr)
        snprintf(why, sizeof(why), "addressed to node %llu, this is node %llu",
                 (unsigned long long)hs.target, (unsigned long long)t->cfg.node_id);
    else if (self)
        snprintf(why, sizeof(why), "peer claims our own node id %llu",
                 (unsigned long long)hs.sender);
    else if (c->outbound && !side_out && hs.sender != c->peer->id)
        snprintf(why, sizeof(why), "dialed node %llu but node %llu answered",
                 (unsigned long long)c->peer->id, (unsigned long long)hs.sender);
    if (why[0]) {
        if (self && (by_addr || side_out))
            BASE_INFO("rpc", "node %llu: a connection to its own address refused",
                      (unsigned long long)t->cfg.node_id);
        else
            BASE_ERROR("rpc", "node %llu: handshake with node %llu refused: %s",
                       (unsigned long long)t->cfg.node_id, (unsigned long long)hs.sender, why);
        if (c->outbound) {
            STAT_ADD(t, handshake_failures, 1);
            conn_close(c, !side_out ? RPC_ERR_DISCONNECTED
                          : self    ? RPC_ERR_SELF
                                    : RPC_ERR_HANDSHAKE);
        } else {
            conn_refuse(c, hs.sender, why, RPC_ERR_HANDSHAKE);
        }
        return;
    }
    if (c->client && !by_addr && !rpc_node_id_is_provisional(hs.sender)) {
        /* An admin tool asks by address; posing as node hs.sender would
        ** make this that node's own connection (Raft, KV). */
        STAT_ADD(t, client_refused, 1);
        BASE_WARN("rpc", "node %llu: connection from a client certificate (user \"%s\") refused: "
                  "it claims node id %llu; a client certificate may only make admin requests",
                  (unsigned long long)t->cfg.node_id, c->client_user,
                  (unsigned long long)hs.sender);
        conn_refuse(c, hs.sender, "a client certificate may only make admin requests",
                    RPC_ERR_HANDSHAKE);
        return;
    }
    if (!clock_update(c, h))
        return;
    if (c->outbound) {
        /* Whoever answers an address may not pose as a node known elsewhere:
        ** the answers' `from` is hs.sender. */
        if (side_out && c->tls != NULL && !rpc_node_id_is_provisional(hs.sender) &&
            !tls_peer_bound(c, hs.sender))
            return;
        if (side_out)
            c->peer->id = hs.sender; /* the answer's `from` */
        conn_activate(c, c->peer);
        return;
    }
    /* Before the side branch: a side connection's frames reach handlers
    ** with from = hs.sender too, so a real id is bound on it as well. */
    if (c->tls != NULL && !rpc_node_id_is_provisional(hs.sender) &&
        !tls_peer_bound(c, hs.sender))
        return;
    if (by_addr || rpc_node_id_is_provisional(hs.sender)) {
        /* A side connection: answers go back on it, and it never becomes
        ** the connection of node hs.sender (a provisional id is no node;
        ** an address dial must not disturb the pair's own connection). */
        rpc__peer *sp = side_new(t);
        if (sp == NULL) {
            conn_refuse(c, hs.sender, "out of memory", RPC_ERR_HANDSHAKE);
            return;
        }
        sp->id = hs.sender;
        c->peer = sp;
        if (conn_send_handshake(c, hs.sender) != RPC_OK) {
            conn_close(c, RPC_ERR_DISCONNECTED);
            return;
        }
        conn_activate(c, sp);
        return;
    }
    rpc__peer *p = peer_get(t, hs.sender);
    if (p == NULL) {
        conn_refuse(c, hs.sender, "out of memory or too many peers", RPC_ERR_HANDSHAKE);
        return;
    }
    /* Both dialing at once: the lower id's connection wins, so the lower id
    ** refuses the other one early (before any frame goes on it). */
    if (t->cfg.node_id < hs.sender && p->dialing != NULL && p->conn == NULL) {
        conn_refuse(c, hs.sender, "simultaneous dial: the lower node id's connection wins",
                    RPC__HS_DUPLICATE);
        return;
    }
    if (conn_send_handshake(c, hs.sender) != RPC_OK) {
        conn_close(c, RPC_ERR_DISCONNECTED);
        return;
    }
    conn_activate(c, p);
}

/* ---- test faults (rpc_uv_set_fault) ----------------------------------------- */

static void deliver_frame(rpc_uv *t, rpc__peer *p, const rpc__header *h, const uint8_t *payload);
static void on_fault_timer(uv_timer_t *h);

static void fault_arm(rpc_uv *t, uint64_t due_ms)
{
    if (t->stopping || (t->fault_due_ms != 0 && t->fault_due_ms <= due_ms))
        return;
    uint64_t now = uv_now(&t->loop);
    t->fault_due_ms = due_ms;
    uv_timer_start(&t->fault_timer, on_fault_timer, due_ms > now ? due_ms - now : 0, 0);
}

/* Deliver every held frame that is due; re-arm for the earliest left.
** Bounded by the frames held (RPC_FAULT_HELD_FRAMES_MAX). */
static void on_fault_timer(uv_timer_t *timer)
{
    rpc_uv *t = timer->data;
    t->fault_due_ms = 0;
    uint64_t now = uv_now(&t->loop);
    /* npeers re-read: a handler may add peers (never removes one). */
    for (unsigned i = 0; i < t->npeers && !t->stopping; i++) {
        rpc__peer *p = t->peers[i];
        while (p->hhead != NULL && p->hhead->due_ms <= now && !t->stopping) {
            rpc__held *x = p->hhead;
            p->hhead = x->next;
            if (p->hhead == NULL)
                p->htail = NULL;
            t->nheld--;
            t->held_bytes -= x->h.payload_len;
            deliver_frame(t, p, &x->h, x->h.payload_len > 0 ? x->payload : NULL);
            base_free(x);
        }
    }
    uint64_t next = 0;
    for (unsigned i = 0; i < t->npeers; i++) {
        rpc__peer *p = t->peers[i];
        if (p->hhead != NULL && (next == 0 || p->hhead->due_ms < next))
            next = p->hhead->due_ms;
    }
    if (next != 0)
        fault_arm(t, next);
    flush_dirty(t); /* handlers may have sent */
}

/* Free every held frame (stop). */
static void fault_discard_all(rpc_uv *t)
{
    for (unsigned i = 0; i < t->npeers; i++) {
        rpc__peer *p = t->peers[i];
        while (p->hhead != NULL) {
            rpc__held *x = p->hhead;
            p->hhead = x->next;
            base_free(x);
        }
        p->htail = NULL;
    }
    t->nheld = 0;
    t->held_bytes = 0;
}

/* A frame from canonical peer p: drop it or hold it when a test fault says
** so (or when p has frames held: order). True when it was taken. */
static bool fault_intercept(rpc_uv *t, rpc__peer *p, const rpc__header *h, const uint8_t *payload)
{
    if (!atomic_load_explicit(&t->faults_on, memory_order_relaxed) && p->hhead == NULL)
        return false;
    rpc_uv_fault f = {0};
    uv_mutex_lock(&t->mu);
    const rpc_uv_fault *any = NULL;
    for (unsigned i = 0; i < t->nfaults; i++) {
        if (t->faults[i].peer == p->id) {
            any = &t->faults[i];
            break;
        }
        if (t->faults[i].peer == 0)
            any = &t->faults[i];
    }
    if (any != NULL)
        f = *any;
    uv_mutex_unlock(&t->mu);
    if (f.loss_per_million > 0 && rng_next(t) % 1000000 < f.loss_per_million) {
        STAT_ADD(t, fault_dropped, 1);
        return true;
    }
    if (f.delay_ms == 0 && f.jitter_ms == 0 && p->hhead == NULL)
        return false;
    if (t->nheld >= RPC_FAULT_HELD_FRAMES_MAX ||
        t->held_bytes + h->payload_len > RPC_FAULT_HELD_BYTES_MAX) {
        STAT_ADD(t, fault_dropped, 1);
        return true;
    }
    rpc__held *x = base_malloc(sizeof(*x) + h->payload_len);
    if (x == NULL) { /* a lost frame, as a full queue loses one */
        STAT_ADD(t, fault_dropped, 1);
        return true;
    }
    x->next = NULL;
    x->h = *h;
    if (h->payload_len > 0)
        memcpy(x->payload, payload, h->payload_len);
    uint64_t delay = f.delay_ms;
    if (f.jitter_ms > 0)
        delay += rng_next(t) % ((uint64_t)f.jitter_ms + 1);
    x->due_ms = uv_now(&t->loop) + delay;
    if (p->htail != NULL && x->due_ms < p->htail->due_ms)
        x->due_ms = p->htail->due_ms; /* never overtakes an earlier frame */
    if (p->htail != NULL)
        p->htail->next = x;
    else
        p->hhead = x;
    p->htail = x;
    t->nheld++;
    t->held_bytes += h->payload_len;
    STAT_ADD(t, fault_delayed, 1);
    fault_arm(t, x->due_ms);
    return true;
}

int rpc_uv_set_fault(rpc_uv *t, const rpc_uv_fault *f)
{
    if (f == NULL || f->delay_ms > RPC_FAULT_DELAY_MS_MAX ||
        f->jitter_ms > RPC_FAULT_DELAY_MS_MAX || f->loss_per_million > 1000000 ||
        rpc_node_id_is_provisional(f->peer))
        return RPC_ERR_INVALID;
    bool clear = f->delay_ms == 0 && f->jitter_ms == 0 && f->loss_per_million == 0;
    int rc = RPC_OK;
    uv_mutex_lock(&t->mu);
    unsigned i = 0;
    while (i < t->nfaults && t->faults[i].peer != f->peer)
        i++;
    if (clear) {
        if (i < t->nfaults)
            t->faults[i] = t->faults[--t->nfaults];
    } else if (i < t->nfaults) {
        t->faults[i] = *f;
    } else if (t->nfaults == RPC_FAULTS_MAX) {
        rc = RPC_ERR_QUEUE_FULL;
    } else {
        t->faults[t->nfaults++] = *f;
    }
    atomic_store(&t->faults_on, t->nfaults > 0);
    uv_mutex_unlock(&t->mu);
    return rc;
}

void rpc_uv_clear_faults(rpc_uv *t)
{
    uv_mutex_lock(&t->mu);
    t->nfaults = 0;
    atomic_store(&t->faults_on, false);
    uv_mutex_unlock(&t->mu);
}

size_t rpc_uv_get_faults(rpc_uv *t, rpc_uv_fault *out, size_t cap)
{
    uv_mutex_lock(&t->mu);
    size_t n = t->nfaults;
    for (size_t i = 0; i < n && i < cap; i++)
        out[i] = t->faults[i];
    uv_mutex_unlock(&t->mu);
    return n;
}

/* What an admin tool's connection (a client certificate) may send: a
** request of one of cfg.client_methods, nothing else. */
static bool client_frame_allowed(const rpc_uv *t, const rpc__header *h)
{
    if (h->kind != RPC_FRAME_REQUEST)
        return false;
    for (size_t i = 0; i < t->cfg.client_methods_count; i++)
        if (t->cfg.client_methods[i] == h->method)
            return true;
    return false;
}

static void handle_frame(rpc__conn *c, const rpc__header *h, const uint8_t *payload)
{
    rpc_uv *t = c->t;
    STAT_ADD(t, frames_received, 1);
    STAT_ADD(t, bytes_received, RPC_FRAME_HEADER_SIZE + h->payload_len);
    if (c->state == CONN_HANDSHAKE) {
        if (h->kind != RPC_FRAME_HANDSHAKE) {
            bad_input(c, "first frame is not a handshake");
            return;
        }
        handle_handshake(c, h, payload);
        return;
    }
    if (h->kind == RPC_FRAME_HANDSHAKE) {
        bad_input(c, "second handshake");
        return;
    }
    if (h->sender != c->peer->id) {
        bad_input(c, "frame sender differs from the handshake");
        return;
    }
    if (c->client && !client_frame_allowed(t, h)) {
        STAT_ADD(t, client_refused, 1);
        BASE_WARN("rpc", "node %llu: closing the connection of a client certificate (user "
                  "\"%s\"): it sent a %s of method %u; a client certificate may only make "
                  "admin requests", (unsigned long long)t->cfg.node_id, c->client_user,
                  h->kind == RPC_FRAME_REQUEST ? "request"
                  : h->kind == RPC_FRAME_MESSAGE ? "message" : "response",
                  (unsigned)h->method);
        conn_close(c, RPC_ERR_DISCONNECTED);
        return;
    }
    if (!clock_update(c, h))
        return;
    if (!c->peer->side && fault_intercept(t, c->peer, h, payload))
        return;
    deliver_frame(t, c->peer, h, payload);
}

/* Hand a received frame (past the handshake) to its request or the
** handler. p: the peer it came from (a side peer, or canonical). */
static void deliver_frame(rpc_uv *t, rpc__peer *p, const rpc__header *h, const uint8_t *payload)
{
    rpc_message m = {.from = h->sender, .method = h->method, .request_id = h->request_id,
                     .status = h->status, .sent_at = h->sent_at, .payload = payload,
                     .payload_len = h->payload_len};
    /* An admin tool's request (only those pass handle_frame): the side
    ** peer's one connection says who it is. */
    if (p->side && p->conn != NULL && p->conn->client)
        m.peer_user = p->conn->client_user;
    if (h->kind == RPC_FRAME_RESPONSE) {
        rpc__req *r = req_find(t, h->request_id);
        if (r == NULL || r->peer != p) {
            BASE_DEBUG("rpc", "node %llu: late or unknown response %llu from node %llu",
                       (unsigned long long)t->cfg.node_id, (unsigned long long)h->request_id,
                       (unsigned long long)h->sender);
            return;
        }
        req_finish(t, r, RPC_OK, &m);
        return;
    }
    if (h->kind == RPC_FRAME_REQUEST && p->side &&
        !route_add(t, p, h->sender, h->request_id)) {
        BASE_WARN("rpc", "node %llu: request %llu from node %llu refused: %d requests "
                  "unanswered on its side connection, or out of memory",
                  (unsigned long long)t->cfg.node_id, (unsigned long long)h->request_id,
                  (unsigned long long)h->sender, RPC_SIDE_ROUTES_MAX);
        side_answer_now(t, p, h->request_id, RPC_ERR_QUEUE_FULL);
        return;
    }
    uv_mutex_lock(&t->mu);
    rpc_handler_fn fn = t->handler;
    void *ctx = t->handler_ctx;
    uv_mutex_unlock(&t->mu);
    if (fn) {
        fn(ctx, &t->iface, &m);
    } else if (h->kind == RPC_FRAME_REQUEST) {
        rpc_respond(&t->iface, h->sender, h->request_id, RPC_ERR_NO_HANDLER, NULL, 0);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    rpc__conn *c = h->data;
    base_buf *b = c->tls != NULL ? &c->raw : &c->in;
    if (base_buf_reserve(b, RPC_READ_CHUNK) != 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init((char *)b->data + b->len, (unsigned)(b->cap - b->len));
}

/* The first 8 bytes of a PostgreSQL client: int32 length, int32 code
** (protocol 3.x or a request code). An RPC handshake has version 1 and
** kind 1 at bytes 4 and 5, so the two never overlap. */
static bool is_postgres_prefix(const uint8_t *p)
{
    uint32_t code = rpc__get_u32(p + 4);
    return (code >> 16) == 3 || code == RPC_PG_SSL_CODE || code == RPC_PG_CANCEL_CODE ||
           code == RPC_PG_GSSENC_CODE;
}

/* A TLS record of type handshake (a ClientHello): 0x16, then a version
** 0x03 0x0N. A PostgreSQL client starts with 0x00 (a length below 16 MiB)
** and an RPC frame too (its payload length), so none overlap. */
static bool is_tls_prefix(const uint8_t *p)
{
    return p[0] == RPC_TLS_RECORD_HANDSHAKE && p[1] == 0x03;
}

/* TLS refused a connection, or a peer speaks the wrong layer, before any
** frame was read: log the reason (WARN), send the pending alert, close.
** A dialed connection that ends so is a failed dial. */
static void tls_refuse(rpc__conn *c, const char *why)
{
    rpc_uv *t = c->t;
    char who[128];
    conn_describe(c, who, sizeof(who));
    STAT_ADD(t, tls_refused, 1);
    STAT_ADD(t, handshake_failures, 1);
    BASE_WARN("rpc", "node %llu: TLS connection %s %s refused: %s",
              (unsigned long long)t->cfg.node_id, c->outbound ? "to" : "from", who, why);
    if (c->tls != NULL)
        (void)tls_flush(c); /* the alert, if any: best effort */
    bool side_out = c->outbound && c->peer != NULL && c->peer->side;
    conn_close(c, side_out ? RPC_ERR_HANDSHAKE : RPC_ERR_DISCONNECTED);
}

/* An acceptor's first 8 bytes, on a TLS node, are not TLS: a plaintext
** peer (a node or tool without TLS, e.g. --insecure) or garbage. Nothing is
** read from it. A plaintext RPC dialer is told why in a plaintext refusal
** (no data in it) so that its own log says so; never a downgrade. */
static void refuse_plaintext(rpc__conn *c)
{
    rpc_uv *t = c->t;
    const uint8_t *b = c->in.data;
    bool rpc_dialer = b[4] == RPC_PROTOCOL_VERSION && b[5] == RPC_FRAME_HANDSHAKE;
    char who[128];
    conn_describe(c, who, sizeof(who));
    STAT_ADD(t, tls_refused, 1);
    BASE_WARN("rpc", "node %llu: plaintext %s from %s refused: this node requires TLS (the "
              "peer runs without it, e.g. --insecure; start every node with --certs-dir)",
              (unsigned long long)t->cfg.node_id, rpc_dialer ? "RPC connection" : "connection",
              who);
    if (rpc_dialer)
        conn_refuse(c, 0, "this node requires TLS: start every node with --certs-dir, "
                    "none with --insecure", RPC_ERR_HANDSHAKE);
    else
        conn_close(c, RPC_ERR_DISCONNECTED);
}

/* An acceptor's first bytes, on a node without TLS, are a ClientHello: a
** TLS node (--certs-dir) dialing a plaintext one (--insecure). It is told
** in a plaintext refusal, which its transport recognizes before TLS and
** logs (TLS is never negotiated away: it just fails). */
static void refuse_tls_peer(rpc__conn *c)
{
    rpc_uv *t = c->t;
    char who[128];
    conn_describe(c, who, sizeof(who));
    STAT_ADD(t, tls_refused, 1);
    BASE_WARN("rpc", "node %llu: TLS connection from %s refused: this node runs without TLS "
              "(--insecure) and the peer with it (--certs-dir); start every node the same way",
              (unsigned long long)t->cfg.node_id, who);
    conn_refuse(c, 0, "this node runs without TLS (--insecure)", RPC_ERR_HANDSHAKE);
}

/* An acceptor's first bytes are a ClientHello: start the server side of
** TLS with them (moved from c->in to c->raw; tls_input feeds them). */
static bool conn_start_tls_server(rpc__conn *c)
{
    rpc_uv *t = c->t;
    int rc = sec_tls_conn_new(t->cfg.tls_server, true, NULL, &c->tls);
    if (rc != 0) {
        BASE_ERROR("rpc", "node %llu: cannot start TLS for an inbound connection: %s",
                   (unsigned long long)t->cfg.node_id, sec_error_str(rc));
        conn_close(c, RPC_ERR_DISCONNECTED);
        return false;
    }
    base_buf tmp = c->raw; /* empty */
    c->raw = c->in;
    c->in = tmp;
    c->in_off = 0;
    return true;
}

/* An acceptor's TLS handshake just finished: a node certificate passes as
** always; a client certificate (tls_server with allow_peer_client) marks
** the connection as an admin tool's, when this transport takes them
** (cfg.client_methods). False: refused and closed. */
static bool tls_classify_peer(rpc__conn *c)
{
    rpc_uv *t = c->t;
    sec_peer_kind kind = sec_tls_conn_peer_kind(c->tls);
    if (kind == SEC_PEER_NODE)
        return true;
    if (kind != SEC_PEER_CLIENT) { /* the server context makes this impossible */
        tls_refuse(c, "no verified peer certificate");
        return false;
    }
    if (t->cfg.client_methods_count == 0) {
        tls_refuse(c, "a client certificate, not a node certificate: this port takes node "
                   "certificates only");
        return false;
    }
    if (sec_tls_conn_peer_cn(c->tls, c->client_user, sizeof(c->client_user)) != 0) {
        tls_refuse(c, "a client certificate without a usable CN (user name)");
        return false;
    }
    for (const char *u = c->client_user; *u; u++) {
        if (*u < 32 || *u > 126) { /* it goes into logs and to handlers */
            tls_refuse(c, "a client certificate whose CN is not printable");
            return false;
        }
    }
    c->client = true;
    STAT_ADD(t, client_connections, 1);
    return true;
}

/* Ciphertext in c->raw: feed it, decrypt all it gives into c->in, send
** what the stream wants sent. False: the connection was closed (a failed
** handshake is refused with its reason). */
static bool tls_input(rpc__conn *c)
{
    rpc_uv *t = c->t;
    bool was_done = sec_tls_conn_handshake_done(c->tls);
    int rc = sec_tls_conn_feed(c->tls, c->raw.data, c->raw.len);
    c->raw.len = 0;
    /* Bounded by the ciphertext fed (at most RPC_READ_CHUNK + a partial
    ** record): each round takes at least one byte, the last gives 0. */
    while (rc == 0) {
        if (base_buf_reserve(&c->in, RPC_TLS_READ_ROOM) != 0) {
            rc = SEC_ERR_NOMEM;
            break;
        }
        size_t n = 0;
        rc = sec_tls_conn_read(c->tls, c->in.data + c->in.len, c->in.cap - c->in.len, &n);
        if (n == 0)
            break;
        c->in.len += n;
    }
    if (tls_flush(c) != RPC_OK && rc == 0)
        rc = SEC_ERR_NOMEM;
    if (!was_done && sec_tls_conn_handshake_done(c->tls)) {
        char who[128];
        conn_describe(c, who, sizeof(who));
        STAT_ADD(t, tls_handshakes, 1);
        BASE_DEBUG("rpc", "node %llu: %s with %s", (unsigned long long)t->cfg.node_id,
                   sec_tls_conn_version(c->tls), who);
        if (rc == 0 && !c->outbound && !tls_classify_peer(c))
            return false;
    }
    if (rc == 0)
        return true;
    if (rc == SEC_ERR_CLOSED) {
        BASE_DEBUG("rpc", "node %llu: TLS close_notify from node %llu",
                   (unsigned long long)t->cfg.node_id,
                   (unsigned long long)(c->peer ? c->peer->id : 0));
        conn_close(c, RPC_ERR_DISCONNECTED);
    } else if (rc == SEC_ERR_NOMEM) {
        BASE_WARN("rpc", "node %llu: out of memory in TLS; connection closed",
                  (unsigned long long)t->cfg.node_id);
        conn_close(c, RPC_ERR_DISCONNECTED);
    } else if (c->state == CONN_ACTIVE) {
        bad_input(c, sec_tls_conn_error(c->tls)[0] ? sec_tls_conn_error(c->tls)
                                                   : "TLS stream failed");
    } else {
        tls_refuse(c, sec_tls_conn_error(c->tls)[0] ? sec_tls_conn_error(c->tls)
                                                    : sec_error_str(rc));
    }
    return false;
}

/* Hand an inbound connection to cfg.foreign_connection. libuv has no way
** to release a socket: dup it, close our handle (libuv removes the fd from
** epoll, then closes it; the socket lives on in the dup), then hand the
** dup over with the bytes already read (c->in lives until on_conn_closed). */
static void conn_hand_off(rpc__conn *c)
{
    rpc_uv *t = c->t;
    if (t->cfg.foreign_connection == NULL) {
        bad_input(c, "a PostgreSQL client on the RPC port, which serves no SQL");
        return;
    }
    uv_os_fd_t fd = -1;
    int dup_fd = -1;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) {
        BASE_WARN("rpc", "node %llu: cannot hand a PostgreSQL client over (errno %d); closed",
                  (unsigned long long)t->cfg.node_id, errno);
        conn_close(c, RPC_ERR_DISCONNECTED);
        return;
    }
    conn_close(c, RPC_ERR_DISCONNECTED);
    STAT_ADD(t, foreign_connections, 1);
    BASE_DEBUG("rpc", "node %llu: PostgreSQL client handed to the SQL server",
               (unsigned long long)t->cfg.node_id);
    t->cfg.foreign_connection(t->cfg.foreign_ctx, dup_fd, c->in.data, c->in.len);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    rpc__conn *c = s->data;
    rpc_uv *t = c->t;
    if (nread < 0) {
        if (nread != UV_EOF)
            BASE_DEBUG("rpc", "node %llu: read error: %s", (unsigned long long)t->cfg.node_id,
                       uv_strerror((int)nread));
        if (c->tls != NULL && c->outbound && c->state == CONN_HANDSHAKE) {
            /* The peer hung up before our handshake completed. A refusal
            ** of our certificate comes as an alert (logged as a WARN), a
            ** plaintext peer answers in plaintext (ditto): this is most
            ** often a peer restarting its transport (a new node id). */
            char who[128];
            conn_describe(c, who, sizeof(who));
            BASE_INFO("rpc", "node %llu: %s closed the connection %s the TLS handshake",
                      (unsigned long long)t->cfg.node_id, who,
                      sec_tls_conn_handshake_done(c->tls) ? "after" : "during");
        }
        conn_close(c, RPC_ERR_DISCONNECTED);
        flush_dirty(t);
        return;
    }
    if (c->tls == NULL) {
        c->in.len += (size_t)nread;
    } else {
        c->raw.len += (size_t)nread;
        if (c->outbound && !c->sniffed) {
            /* The first bytes our ClientHello got back: a TLS record
            ** (0x16 or 0x15 first), or the plaintext refusal of a node
            ** without TLS (a small frame: its length's first byte is 0). */
            if (c->raw.data[0] == 0 && c->raw.len < RPC_PG_PREFIX_SIZE) {
                flush_dirty(t);
                return; /* wait for 8 bytes (the handshake deadline bounds it) */
            }
            c->sniffed = true;
            if (c->raw.data[0] == 0 && c->raw.data[4] == RPC_PROTOCOL_VERSION &&
                c->raw.data[5] == RPC_FRAME_HANDSHAKE) {
                tls_refuse(c, "the peer answered in plaintext: it runs without TLS (e.g. "
                              "--insecure) and this node with it (--certs-dir); start every "
                              "node the same way");
                flush_dirty(t);
                return;
            }
        }
    }
    if (c->tls == NULL && !c->outbound && !c->sniffed && c->state == CONN_HANDSHAKE &&
        c->in.len >= RPC_PG_PREFIX_SIZE) {
        c->sniffed = true;
        bool hello = is_tls_prefix(c->in.data);
        if (is_postgres_prefix(c->in.data)) {
            conn_hand_off(c);
        } else if (t->cfg.tls_server != NULL && !hello) {
            refuse_plaintext(c);
        } else if (t->cfg.tls_server == NULL && hello) {
            refuse_tls_peer(c);
        } else if (hello) {
            (void)conn_start_tls_server(c);
        }
        if (c->state == CONN_CLOSING || c->state == CONN_REFUSING) {
            flush_dirty(t);
            return;
        }
    }
    if (c->tls != NULL && !tls_input(c)) {
        flush_dirty(t);
        return;
    }
    /* Parse every whole frame; bounded by the bytes received. */
    while (c->state == CONN_HANDSHAKE || c->state == CONN_ACTIVE) {
        rpc__header h;
        const uint8_t *payload = NULL;
        size_t consumed = 0;
        const char *why = NULL;
        int rc = rpc__frame_decode(c->in.data + c->in_off, c->in.len - c->in_off,
                                   t->cfg.frame_payload_max, &h, &payload, &consumed, &why);
        if (rc != RPC_OK) {
            bad_input(c, why ? why : "bad frame");
            break;
        }
        if (consumed == 0)
            break;
        c->in_off += consumed;
        handle_frame(c, &h, payload);
    }
    if (c->state != CONN_CLOSING) {
        if (c->in_off == c->in.len) {
            c->in.len = 0;
            c->in_off = 0;
        } else if (c->in_off > 0) {
            memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
            c->in.len -= c->in_off;
            c->in_off = 0;
        }
    }
    flush_dirty(t);
}

static rpc__conn *conn_new(rpc_uv *t, bool outbound)
{
    if (t->nconns >= RPC_CONNS_MAX)
        return NULL;
    rpc__conn *c = base_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->t = t;
    c->outbound = outbound;
    if (uv_tcp_init(&t->loop, &c->tcp) != 0) {
        base_free(c);
        return NULL;
    }
    c->tcp.data = c;
    c->connect_req.data = c;
    c->opened_ms = uv_now(&t->loop);
    c->next = t->conns;
    if (t->conns)
        t->conns->prev = c;
    t->conns = c;
    t->nconns++;
    return c;
}

static void on_connect(uv_connect_t *req, int status)
{
    rpc__conn *c = req->data;
    rpc_uv *t = c->t;
    if (status == UV_ECANCELED || c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        STAT_ADD(t, dial_failures, 1);
        BASE_DEBUG("rpc", "node %llu: dial node %llu failed: %s",
                   (unsigned long long)t->cfg.node_id, (unsigned long long)c->peer->id,
                   uv_strerror(status));
        conn_close(c, RPC_ERR_DISCONNECTED);
        flush_dirty(t);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, RPC_KEEPALIVE_S);
    c->state = CONN_HANDSHAKE;
    if (t->cfg.tls_client != NULL) {
        /* The peer's certificate must carry the IP we dialed. */
        char ip[64];
        addr_ip(&c->peer->addr, ip, sizeof(ip));
        int rc = sec_tls_conn_new(t->cfg.tls_client, false, ip, &c->tls);
        if (rc != 0 || tls_flush(c) != RPC_OK) { /* the ClientHello */
            BASE_ERROR("rpc", "node %llu: cannot start TLS to %s: %s",
                       (unsigned long long)t->cfg.node_id, ip,
                       rc != 0 ? sec_error_str(rc) : "out of memory");
            conn_close(c, RPC_ERR_DISCONNECTED);
            flush_dirty(t);
            return;
        }
    }
    if (conn_send_handshake(c, c->peer->side ? 0 : c->peer->id) != RPC_OK ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c, RPC_ERR_DISCONNECTED);
    }
    flush_dirty(t);
}

/* Close connections that did not finish dialing + handshaking within
** handshake_timeout_ms (a silent peer, a connect that hangs). Bounded by
** RPC_CONNS_MAX per run. */
static void on_housekeeping(uv_timer_t *h)
{
    rpc_uv *t = h->data;
    uint64_t now = uv_now(&t->loop);
    for (rpc__conn *c = t->conns; c; c = c->next) {
        if (c->state == CONN_ACTIVE || c->state == CONN_CLOSING)
            continue;
        if (now - c->opened_ms < t->cfg.handshake_timeout_ms)
            continue;
        STAT_ADD(t, handshake_failures, 1);
        BASE_WARN("rpc", "node %llu: connection %s node %llu: no handshake within %u ms, closed",
                  (unsigned long long)t->cfg.node_id, c->outbound ? "to" : "from",
                  (unsigned long long)(c->peer ? c->peer->id : 0), t->cfg.handshake_timeout_ms);
        conn_close(c, RPC_ERR_DISCONNECTED);
    }
    /* Side connections dialed by address and idle for addr_idle_ms.
    ** Bounded by RPC_CONNS_MAX (one side peer per connection). */
    for (rpc__peer *p = t->side; p; p = p->snext) {
        if (p->has_addr && p->conn && p->conn->state == CONN_ACTIVE && p->reqs == NULL &&
            p->qhead == NULL && now - p->last_used_ms >= t->cfg.addr_idle_ms) {
            BASE_DEBUG("rpc", "node %llu: closing idle side connection to node %llu",
                       (unsigned long long)t->cfg.node_id, (unsigned long long)p->id);
            conn_close(p->conn, RPC_ERR_DISCONNECTED);
        }
    }
    flush_dirty(t);
}

static void on_redial(uv_timer_t *h)
{
    rpc__peer *p = h->data;
    p->redial_armed = false;
    peer_maybe_dial(p);
    flush_dirty(p->t); /* a failed dial's callbacks may have sent */
}

static void peer_maybe_dial(rpc__peer *p)
{
    rpc_uv *t = p->t;
    if (p->side) {
        if (!t->stopping && !p->side_closed && p->has_addr && !p->conn && !p->dialing &&
            p->qhead)
            side_dial(t, p);
        return;
    }
    if (t->stopping || p->conn || p->dialing || !p->has_addr || p->redial_armed || !p->qhead)
        return;
    uint64_t now = uv_now(&t->loop);
    if (now < p->next_dial_ms) {
        p->redial_armed = true;
        uv_timer_start(&p->redial, on_redial, p->next_dial_ms - now, 0);
        return;
    }
    rpc__conn *c = conn_new(t, true);
    if (c == NULL) {
        STAT_ADD(t, dial_failures, 1);
        peer_schedule_redial(p, t);
        p->redial_armed = true;
        uv_timer_start(&p->redial, on_redial, p->next_dial_ms - now, 0);
        p->dial_failed = true;
        peer_fail_queued(t, p); /* last: its callbacks may submit */
        return;
    }
    c->peer = p;
    c->state = CONN_DIAL;
    p->dialing = c;
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&p->addr,
                            on_connect);
    if (rc != 0) {
        STAT_ADD(t, dial_failures, 1);
        conn_close(c, RPC_ERR_DISCONNECTED);
    }
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *server, int status)
{
    rpc_uv *t = server->data;
    if (status < 0 || t->stopping)
        return;
    rpc__conn *c = conn_new(t, false);
    if (c == NULL) {
        /* Over the limit or out of memory: accept into a throwaway handle
        ** and close it. libuv stops watching the listener until the
        ** pending connection is accepted, so this must not fail with the
        ** injectable allocator: plain malloc on purpose (a tiny, short-lived
        ** handle on an error path). */
        uv_tcp_t *tmp = malloc(sizeof(*tmp));
        if (tmp && uv_tcp_init(&t->loop, tmp) == 0) {
            (void)uv_accept(server, (uv_stream_t *)tmp);
            uv_close((uv_handle_t *)tmp, free_handle);
        } else {
            free(tmp);
        }
        BASE_WARN("rpc", "node %llu: connection refused: out of memory or %d connections open",
                  (unsigned long long)t->cfg.node_id, RPC_CONNS_MAX);
        return;
    }
    c->state = CONN_HANDSHAKE;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c, RPC_ERR_DISCONNECTED);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, RPC_KEEPALIVE_S);
}

/* ---- the loop thread ----------------------------------------------------------- */

static void on_wake(uv_async_t *a)
{
    rpc_uv *t = a->data;
    uv_mutex_lock(&t->mu);
    rpc__out *list = t->submit_head;
    t->submit_head = t->submit_tail = NULL;
    t->submit_bytes = 0;
    uv_mutex_unlock(&t->mu);
    while (list) {
        rpc__out *nx = list->next;
        list->next = NULL;
        if (t->stopping) {
            if (list->kind == RPC_FRAME_REQUEST)
                list->cb(list->cb_ctx, RPC_ERR_STOPPED, NULL);
            out_free(list);
        } else {
            submit_one(t, list);
        }
        list = nx;
    }
    flush_dirty(t);
}

static void close_if_open(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_stop(uv_async_t *a)
{
    rpc_uv *t = a->data;
    t->stopping = true;
    on_wake(&t->wake); /* fail whatever was submitted before stop */
    for (rpc__conn *c = t->conns; c; c = c->next)
        conn_close(c, RPC_ERR_STOPPED);
    while (t->reqs)
        req_finish(t, t->reqs, RPC_ERR_STOPPED, NULL);
    for (unsigned i = 0; i < t->npeers; i++) {
        rpc__peer *p = t->peers[i];
        while (p->qhead) {
            rpc__out *o = p->qhead;
            queue_remove_after(p, NULL, o);
            out_free(o);
        }
        close_if_open((uv_handle_t *)&p->redial);
    }
    /* Side peers live as long as their connection, closed above; one
    ** without any (none expected) goes now. Bounded by RPC_CONNS_MAX. */
    for (rpc__peer *p = t->side, *nx; p; p = nx) {
        nx = p->snext;
        if (!p->side_closed && p->conn == NULL && p->dialing == NULL) {
            side_detach(t, p, RPC_ERR_STOPPED);
            side_free(t, p);
        }
    }
    t->dirty = NULL;
    fault_discard_all(t);
    close_if_open((uv_handle_t *)&t->fault_timer);
    if (t->has_listener)
        close_if_open((uv_handle_t *)&t->listener);
    close_if_open((uv_handle_t *)&t->sweep);
    close_if_open((uv_handle_t *)&t->housekeeping);
    close_if_open((uv_handle_t *)&t->wake);
    close_if_open((uv_handle_t *)&t->stop);
}

/* The transport whose loop runs on this thread (NULL elsewhere). */
static _Thread_local rpc_uv *tls_loop_owner;

static void loop_main(void *arg)
{
    rpc_uv *t = arg;
    tls_loop_owner = t;
    /* A write to a socket the peer closed raises SIGPIPE in the writing
    ** thread (libuv uses write(2)); block it here so it becomes EPIPE
    ** without changing the process's disposition. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
}

/* ---- the interface (any thread) ---------------------------------------------- */

/* Hand a frame to the loop. Takes o on success; on failure the caller frees.
** On the loop thread itself (handlers, callbacks), one-way messages and
** responses go straight to the peer queue and leave when the current
** callback ends (flush_dirty), saving a wake-up; requests still take the
** submit queue so that their callback never runs inside rpc_request. */
static int submit(rpc_uv *t, rpc__out *o)
{
    if (tls_loop_owner == t && o->kind != RPC_FRAME_REQUEST && o->kind != 0) {
        if (t->stopping)
            return RPC_ERR_STOPPED;
        o->next = NULL;
        submit_one(t, o);
        return RPC_OK;
    }
    uv_mutex_lock(&t->mu);
    if (t->stopped) {
        uv_mutex_unlock(&t->mu);
        return RPC_ERR_STOPPED;
    }
    if (t->submit_bytes + o->len > t->cfg.submit_bytes_max) {
        uv_mutex_unlock(&t->mu);
        return RPC_ERR_QUEUE_FULL;
    }
    o->next = NULL;
    if (t->submit_tail)
        t->submit_tail->next = o;
    else
        t->submit_head = o;
    t->submit_tail = o;
    t->submit_bytes += o->len;
    uv_mutex_unlock(&t->mu);
    uv_async_send(&t->wake);
    return RPC_OK;
}

/* Encode a frame from us, stamped with our HLC. owner of *out: caller,
** out_free (or submit). */
static int build_frame(rpc_uv *t, rpc__header *h, const void *payload, size_t len,
                       rpc__out **out)
{
    if (len > 0 && payload == NULL)
        return RPC_ERR_INVALID;
    if (len > t->cfg.frame_payload_max)
        return RPC_ERR_TOO_LARGE;
    rpc__out *o = base_calloc(1, sizeof(*o));
    if (o == NULL)
        return RPC_ERR_NOMEM;
    h->version = RPC_PROTOCOL_VERSION;
    h->sender = t->cfg.node_id;
    h->sent_at = stamp(t);
    int rc = rpc__frame_build(h, payload, len, &o->data, &o->len);
    if (rc != RPC_OK) {
        base_free(o);
        return rc;
    }
    o->kind = h->kind;
    *out = o;
    return RPC_OK;
}

static int build_and_submit(rpc_uv *t, rpc__header *h, rpc_node_id to, const void *payload,
                            size_t len, rpc__out **keep)
{
    if (to == 0 || to == t->cfg.node_id)
        return RPC_ERR_INVALID;
    rpc__out *o = NULL;
    int rc = build_frame(t, h, payload, len, &o);
    if (rc != RPC_OK)
        return rc;
    o->to = to;
    *keep = o;
    return RPC_OK;
}

static int uv_send_op(rpc_transport *it, rpc_node_id to, uint32_t method, const void *payload,
                      size_t len)
{
    rpc_uv *t = (rpc_uv *)it;
    rpc__header h = {0};
    h.kind = RPC_FRAME_MESSAGE;
    h.method = method;
    rpc__out *o = NULL;
    int rc = build_and_submit(t, &h, to, payload, len, &o);
    if (rc == RPC_OK && (rc = submit(t, o)) != RPC_OK)
        out_free(o);
    return rc;
}

static int uv_request_op(rpc_transport *it, rpc_node_id to, uint32_t method, const void *payload,
                         size_t len, int64_t timeout_ms, rpc_response_fn cb, void *ctx)
{
    rpc_uv *t = (rpc_uv *)it;
    if (cb == NULL || timeout_ms <= 0)
        return RPC_ERR_INVALID;
    rpc__header h = {0};
    h.kind = RPC_FRAME_REQUEST;
    h.method = method;
    h.request_id = atomic_fetch_add(&t->next_request_id, 1);
    rpc__out *o = NULL;
    int rc = build_and_submit(t, &h, to, payload, len, &o);
    if (rc != RPC_OK)
        return rc;
    o->request_id = h.request_id;
    o->timeout_ms = timeout_ms;
    o->cb = cb;
    o->cb_ctx = ctx;
    if ((rc = submit(t, o)) != RPC_OK)
        out_free(o);
    return rc;
}

static int uv_respond_op(rpc_transport *it, rpc_node_id to, uint64_t request_id, int32_t status,
                         const void *payload, size_t len)
{
    rpc_uv *t = (rpc_uv *)it;
    if (request_id == 0)
        return RPC_ERR_INVALID;
    rpc__header h = {0};
    h.kind = RPC_FRAME_RESPONSE;
    h.request_id = request_id;
    h.status = status;
    rpc__out *o = NULL;
    int rc = build_and_submit(t, &h, to, payload, len, &o);
    if (rc != RPC_OK)
        return rc;
    o->request_id = request_id; /* finds the route of a side connection */
    if ((rc = submit(t, o)) != RPC_OK)
        out_free(o);
    return rc;
}

static void uv_set_handler_op(rpc_transport *it, rpc_handler_fn fn, void *ctx)
{
    rpc_uv *t = (rpc_uv *)it;
    uv_mutex_lock(&t->mu);
    t->handler = fn;
    t->handler_ctx = ctx;
    uv_mutex_unlock(&t->mu);
}

static rpc_node_id uv_node_id_op(rpc_transport *it)
{
    return ((rpc_uv *)it)->cfg.node_id;
}

static const rpc_transport_ops uv_ops = {
    .send = uv_send_op,
    .request = uv_request_op,
    .respond = uv_respond_op,
    .set_handler = uv_set_handler_op,
    .node_id = uv_node_id_op,
};

/* ---- lifecycle ---------------------------------------------------------------- */

void rpc_uv_config_init(rpc_uv_config *c)
{
    memset(c, 0, sizeof(*c));
    c->listen_host = "127.0.0.1";
    c->random_seed = 1;
    c->reconnect_base_ms = 50;
    c->reconnect_max_ms = 5000;
    c->peer_queue_frames_max = 8192;
    c->peer_queue_bytes_max = 64u * 1024 * 1024;
    c->pending_requests_max = 65536;
    c->submit_bytes_max = 256u * 1024 * 1024;
    c->frame_payload_max = RPC_FRAME_PAYLOAD_MAX;
    c->drop_policy = RPC_DROP_OLDEST;
    c->handshake_timeout_ms = 5000;
    c->addr_idle_ms = RPC_ADDR_IDLE_MS;
}

static int parse_addr(const char *host, int port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (host == NULL || port < 0 || port > 65535)
        return RPC_ERR_INVALID;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0)
        return RPC_OK;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0)
        return RPC_OK;
    return RPC_ERR_INVALID;
}

int rpc_uv_start(const rpc_uv_config *config, rpc_uv **out)
{
    *out = NULL;
    if (config->node_id == 0 || config->frame_payload_max == 0 ||
        config->frame_payload_max > RPC_FRAME_PAYLOAD_MAX || config->reconnect_base_ms == 0 ||
        config->reconnect_max_ms < config->reconnect_base_ms ||
        config->peer_queue_frames_max == 0 ||
        config->peer_queue_bytes_max < RPC_FRAME_HEADER_SIZE + (size_t)config->frame_payload_max ||
        config->submit_bytes_max < RPC_FRAME_HEADER_SIZE + (size_t)config->frame_payload_max ||
        config->pending_requests_max == 0 || config->handshake_timeout_ms == 0 ||
        config->addr_idle_ms == 0)
        return RPC_ERR_INVALID;
    /* TLS: both contexts or none (a dial-only transport needs no server). */
    if ((config->tls_server != NULL && config->tls_client == NULL) ||
        (config->tls_client != NULL && config->listen_host != NULL && config->tls_server == NULL))
        return RPC_ERR_INVALID;
    if (config->client_methods_count > RPC_CLIENT_METHODS_MAX)
        return RPC_ERR_INVALID;
    struct sockaddr_storage addr;
    if (config->listen_host && parse_addr(config->listen_host, config->listen_port, &addr) != 0)
        return RPC_ERR_INVALID;
    rpc_uv *t = base_calloc(1, sizeof(*t));
    if (t == NULL)
        return RPC_ERR_NOMEM;
    int rc = RPC_ERR_IO;
    t->iface.ops = &uv_ops;
    t->cfg = *config;
    t->cfg.listen_host = NULL; /* not kept: the caller owns the string */
    t->rng_state = config->random_seed;
    t->handler = config->handler;
    t->handler_ctx = config->handler_ctx;
    t->port = -1;
    atomic_init(&t->next_request_id, 1);
    atomic_init(&t->cluster_id, config->cluster_id);
    atomic_init(&t->faults_on, false);
    t->peers = base_calloc(RPC_PEERS_MAX, sizeof(*t->peers));
    if (t->peers == NULL) {
        base_free(t);
        return RPC_ERR_NOMEM;
    }
    if (uv_mutex_init(&t->mu) != 0)
        goto err_free;
    if (uv_loop_init(&t->loop) != 0)
        goto err_mutex;
    uv_async_init(&t->loop, &t->wake, on_wake);
    uv_async_init(&t->loop, &t->stop, on_stop);
    t->wake.data = t->stop.data = t;
    uv_timer_init(&t->loop, &t->sweep);
    t->sweep.data = t;
    uv_timer_init(&t->loop, &t->housekeeping);
    t->housekeeping.data = t;
    uv_timer_init(&t->loop, &t->fault_timer);
    t->fault_timer.data = t;
    {
        uint64_t every = config->handshake_timeout_ms / 2;
        if (every > config->addr_idle_ms / 2)
            every = config->addr_idle_ms / 2;
        if (every > 1000)
            every = 1000;
        if (every == 0)
            every = 1;
        uv_timer_start(&t->housekeeping, on_housekeeping, every, every);
    }
    if (config->listen_host) {
        uv_tcp_init(&t->loop, &t->listener);
        t->listener.data = t;
        t->has_listener = true;
        int e = uv_tcp_bind(&t->listener, (const struct sockaddr *)&addr, 0);
        if (e == 0)
            e = uv_listen((uv_stream_t *)&t->listener, 128, on_connection);
        if (e != 0) {
            BASE_ERROR("rpc", "node %llu: cannot listen on %s:%d: %s",
                       (unsigned long long)config->node_id, config->listen_host,
                       config->listen_port, uv_strerror(e));
            goto err_loop;
        }
        struct sockaddr_storage bound;
        int blen = sizeof(bound);
        uv_tcp_getsockname(&t->listener, (struct sockaddr *)&bound, &blen);
        t->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                              : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    }
    if (uv_thread_create(&t->thread, loop_main, t) != 0)
        goto err_loop;
    *out = t;
    return RPC_OK;

err_loop:
    if (t->has_listener)
        uv_close((uv_handle_t *)&t->listener, NULL);
    uv_close((uv_handle_t *)&t->wake, NULL);
    uv_close((uv_handle_t *)&t->stop, NULL);
    uv_close((uv_handle_t *)&t->sweep, NULL);
    uv_close((uv_handle_t *)&t->housekeeping, NULL);
    uv_close((uv_handle_t *)&t->fault_timer, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
err_mutex:
    uv_mutex_destroy(&t->mu);
err_free:
    base_free(t->peers);
    base_free(t);
    return rc;
}

void rpc_uv_free(rpc_uv *t)
{
    if (t == NULL)
        return;
    uv_thread_t self = uv_thread_self();
    assert(!uv_thread_equal(&self, &t->thread) && "rpc_uv_free called on the loop thread");
    uv_mutex_lock(&t->mu);
    t->stopped = true;
    uv_mutex_unlock(&t->mu);
    uv_async_send(&t->stop);
    uv_thread_join(&t->thread);
    int rc = uv_loop_close(&t->loop);
    assert(rc == 0);
    (void)rc;
    for (unsigned i = 0; i < t->npeers; i++)
        base_free(t->peers[i]);
    base_free(t->peers);
    assert(t->side == NULL && t->nroutes == 0); /* freed with their connections */
    base_buf_free(&t->tls_stage);
    /* Submitted after the loop's last drain: impossible (stopped was set
    ** before the stop wake-up and on_stop drains), but free defensively. */
    rpc__out *o = t->submit_head;
    while (o) {
        rpc__out *nx = o->next;
        if (o->kind == RPC_FRAME_REQUEST)
            o->cb(o->cb_ctx, RPC_ERR_STOPPED, NULL);
        out_free(o);
        o = nx;
    }
    uv_mutex_destroy(&t->mu);
    base_free(t);
}

rpc_transport *rpc_uv_transport(rpc_uv *t)
{
    return &t->iface;
}

int rpc_uv_listen_port(rpc_uv *t)
{
    return t->port;
}

int rpc_uv_add_peer(rpc_uv *t, rpc_node_id id, const char *host, int port)
{
    if (id == 0 || id == t->cfg.node_id || rpc_node_id_is_provisional(id))
        return RPC_ERR_INVALID;
    rpc__out *o = base_calloc(1, sizeof(*o));
    if (o == NULL)
        return RPC_ERR_NOMEM;
    if (parse_addr(host, port, &o->addr) != RPC_OK || port == 0) {
        base_free(o);
        return RPC_ERR_INVALID;
    }
    o->kind = 0;
    o->to = id;
    o->peer_alloc = base_calloc(1, sizeof(rpc__peer));
    if (o->peer_alloc == NULL) {
        base_free(o);
        return RPC_ERR_NOMEM;
    }
    int rc = submit(t, o);
    if (rc != RPC_OK)
        out_free(o);
    return rc;
}

void rpc_uv_get_stats(rpc_uv *t, rpc_uv_stats *s)
{
#define LD(f) s->f = atomic_load_explicit(&t->st.f, memory_order_relaxed)
    LD(frames_sent); LD(frames_received); LD(bytes_sent); LD(bytes_received);
    LD(messages_dropped); LD(requests_timed_out); LD(requests_disconnected);
    LD(requests_unreachable);
    LD(handshakes_ok); LD(handshake_failures); LD(dial_failures); LD(bad_frames);
    LD(duplicate_connections_closed); LD(hlc_remote_ahead); LD(writes); LD(peers_connected);
    LD(side_connections); LD(side_connections_open); LD(foreign_connections);
    LD(tls_handshakes); LD(tls_refused); LD(client_connections); LD(client_refused);
    LD(fault_dropped); LD(fault_delayed);
#undef LD
}

int rpc_uv_request_addr(rpc_uv *t, const char *host, int port, uint32_t method,
                        const void *payload, size_t len, int64_t timeout_ms, rpc_response_fn cb,
                        void *ctx)
{
    struct sockaddr_storage addr;
    if (cb == NULL || timeout_ms <= 0 || port == 0 || parse_addr(host, port, &addr) != RPC_OK)
        return RPC_ERR_INVALID;
    rpc__header h = {0};
    h.kind = RPC_FRAME_REQUEST;
    h.method = method;
    h.request_id = atomic_fetch_add(&t->next_request_id, 1);
    rpc__out *o = NULL;
    int rc = build_frame(t, &h, payload, len, &o);
    if (rc != RPC_OK)
        return rc;
    o->by_addr = true;
    o->addr = addr;
    o->request_id = h.request_id;
    o->timeout_ms = timeout_ms;
    o->cb = cb;
    o->cb_ctx = ctx;
    if ((rc = submit(t, o)) != RPC_OK)
        out_free(o);
    return rc;
}

int rpc_uv_set_cluster_id(rpc_uv *t, uint64_t cluster_id)
{
    atomic_store(&t->cluster_id, cluster_id);
    return RPC_OK;
}
