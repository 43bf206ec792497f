/*
** rpc_sim.c: the simulated twin of rpc_uv. An in-process network of up to
** RPC_SIM_NODES_MAX endpoints, each an rpc_transport. Pure: no threads, no
** sockets, no clock reads; all randomness from one splitmix64 seeded by
** rpc_sim_config.seed, drawn in a fixed order, so one seed gives one trace.
**
** Model. A frame sent at simulated time T is scheduled for delivery at
** T + latency (uniform in [latency_min, latency_max]); unless it wins the
** reorder draw, it is clamped to be no earlier than the previous frame of
** the same (from, to) pair, so by default each pair is FIFO like the real
** single-socket channel. It may be dropped at send (drop draw) or
** duplicated (a second copy with its own latency). A partition (from -> to
** blocked) drops frames at delivery time, so frames in flight when the
** partition starts are lost too. Requests carry deadlines on the simulated
** clock; a deadline is an event in the same queue.
**
** Events sit in a binary min-heap ordered by (time, sequence number); the
** sequence number makes ties deterministic.
**
** Invariants:
**   - a request's callback runs exactly once (response, timeout, or
**     RPC_ERR_STOPPED at rpc_sim_net_free), never inside rpc_request;
**   - simulated time never goes backwards;
**   - the heap holds at most RPC_SIM_IN_FLIGHT_MAX frames (beyond: sends
**     are dropped and counted).
*/
#include <assert.h>
#include <string.h>

#include "base/base.h"
#include "rpc/rpc_int.h"

typedef struct sim_node sim_node;

typedef struct sim_req {
    uint64_t id;
    rpc_node_id to;
    rpc_response_fn cb;
    void *cb_ctx;
    struct sim_req *next;
} sim_req;

enum { EV_FRAME = 1, EV_DEADLINE = 2 };

typedef struct sim_ev {
    int64_t time_ns;
    uint64_t seq;
    int type;
    int fail_rc; /* EV_DEADLINE: RPC_ERR_TIMEOUT or RPC_ERR_UNKNOWN_PEER */
    rpc__header h;
    rpc_node_id to;
    uint8_t *payload; /* owner: this event, base_free */
} sim_ev;

struct sim_node {
    rpc_transport iface; /* first member */
    rpc_sim_net *net;
    rpc_node_id id;
    int index;
    hlc_clock *clock;
    rpc_handler_fn handler;
    void *handler_ctx;
    uint64_t next_request_id;
    sim_req *reqs;
};

struct rpc_sim_net {
    rpc_sim_config cfg;
    uint64_t rng;
    int64_t now_ns;
    uint64_t seq;
    sim_node *nodes[RPC_SIM_NODES_MAX];
    int nnodes;
    bool blocked[RPC_SIM_NODES_MAX][RPC_SIM_NODES_MAX];
    int64_t last_delivery_ns[RPC_SIM_NODES_MAX][RPC_SIM_NODES_MAX];
    sim_ev **heap;
    size_t nheap, capheap;
    size_t frames_in_flight;
    void (*trace)(void *ctx, const rpc_sim_event *ev);
    void *trace_ctx;
    rpc_sim_stats st;
    bool closing; /* rpc_sim_net_free runs: every send returns RPC_ERR_STOPPED */
};

/* ---- heap ------------------------------------------------------------------ */

static bool ev_less(const sim_ev *a, const sim_ev *b)
{
    return a->time_ns < b->time_ns || (a->time_ns == b->time_ns && a->seq < b->seq);
}

static int heap_push(rpc_sim_net *n, sim_ev *e)
{
    if (n->nheap == n->capheap) {
        size_t cap = n->capheap ? n->capheap * 2 : 64;
        sim_ev **h = base_realloc(n->heap, cap * sizeof(*h));
        if (h == NULL)
            return RPC_ERR_NOMEM;
        n->heap = h;
        n->capheap = cap;
    }
    e->seq = n->seq++;
    size_t i = n->nheap++;
    n->heap[i] = e;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_less(n->heap[i], n->heap[parent]))
            break;
        sim_ev *tmp = n->heap[i];
        n->heap[i] = n->heap[parent];
        n->heap[parent] = tmp;
        i = parent;
    }
    return RPC_OK;
}

static sim_ev *heap_pop(rpc_sim_net *n)
{
    if (n->nheap == 0)
        return NULL;
    sim_ev *top = n->heap[0];
    n->heap[0] = n->heap[--n->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n->nheap && ev_less(n->heap[l], n->heap[m]))
            m = l;
        if (r < n->nheap && ev_less(n->heap[r], n->heap[m]))
            m = r;
        if (m == i)
            break;
        sim_ev *tmp = n->heap[i];
        n->heap[i] = n->heap[m];
        n->heap[m] = tmp;
        i = m;
    }
    return top;
}

/* ---- helpers --------------------------------------------------------------- */

static uint64_t rnd(rpc_sim_net *n)
{
    return rpc__splitmix64(&n->rng);
}

static bool chance(rpc_sim_net *n, uint32_t per_million)
{
    if (per_million == 0)
        return false; /* no draw: adding a zero knob keeps traces stable */
    return rnd(n) % 1000000 < per_million;
}

static sim_node *node_find(rpc_sim_net *n, rpc_node_id id)
{
    for (int i = 0; i < n->nnodes; i++)
        if (n->nodes[i]->id == id)
            return n->nodes[i];
    return NULL;
}

static void trace(rpc_sim_net *n, rpc_sim_event_kind kind, const sim_ev *e)
{
    if (n->trace == NULL)
        return;
    rpc_sim_event ev = {.time_ns = n->now_ns, .kind = kind, .from = e->h.sender, .to = e->to,
                        .frame_kind = e->h.kind, .method = e->h.method,
                        .request_id = e->h.request_id, .payload_len = e->h.payload_len};
    if (e->type == EV_DEADLINE) {
        ev.from = e->to; /* the requester */
        ev.to = 0;
    }
    n->trace(n->trace_ctx, &ev);
}

static void ev_free(sim_ev *e)
{
    if (e) {
        base_free(e->payload);
        base_free(e);
    }
}

static int64_t latency(rpc_sim_net *n)
{
    int64_t span = n->cfg.latency_max_ns - n->cfg.latency_min_ns;
    return n->cfg.latency_min_ns + (span > 0 ? (int64_t)(rnd(n) % (uint64_t)(span + 1)) : 0);
}

/* Schedule one copy of a frame from -> to. Takes e. */
static void schedule_copy(rpc_sim_net *n, sim_node *from, sim_node *to, sim_ev *e)
{
    int64_t at = n->now_ns + latency(n);
    if (chance(n, n->cfg.reorder_per_million)) {
        n->st.reordered++;
        trace(n, RPC_SIM_REORDER, e);
    } else if (at < n->last_delivery_ns[from->index][to->index]) {
        at = n->last_delivery_ns[from->index][to->index];
    }
    if (at > n->last_delivery_ns[from->index][to->index])
        n->last_delivery_ns[from->index][to->index] = at;
    e->time_ns = at;
    if (heap_push(n, e) != RPC_OK) {
        n->st.dropped++;
        trace(n, RPC_SIM_DROP, e);
        ev_free(e);
        return;
    }
    n->frames_in_flight++;
}

static sim_ev *ev_new(const rpc__header *h, rpc_node_id to, const void *payload, size_t len)
{
    sim_ev *e = base_calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->type = EV_FRAME;
    e->h = *h;
    e->to = to;
    if (len > 0) {
        e->payload = base_malloc(len);
        if (e->payload == NULL) {
            base_free(e);
            return NULL;
        }
        memcpy(e->payload, payload, len);
    }
    return e;
}

/* Put a frame on the network. Unknown destination: dropped (counted). */
static int net_send(sim_node *from, rpc__header *h, rpc_node_id to, const void *payload,
                    size_t len)
{
    rpc_sim_net *n = from->net;
    if (n->closing)
        return RPC_ERR_STOPPED;
    if (to == 0 || to == from->id || (len > 0 && payload == NULL))
        return RPC_ERR_INVALID;
    if (len > RPC_FRAME_PAYLOAD_MAX)
        return RPC_ERR_TOO_LARGE;
    h->version = RPC_PROTOCOL_VERSION;
    h->sender = from->id;
    h->payload_len = (uint32_t)len;
    h->sent_at = from->clock ? hlc_now(from->clock) : HLC_ZERO;
    sim_ev *e = ev_new(h, to, payload, len);
    if (e == NULL)
        return RPC_ERR_NOMEM;
    n->st.sent++;
    trace(n, RPC_SIM_SEND, e);
    sim_node *dst = node_find(n, to);
    if (dst == NULL || n->frames_in_flight >= RPC_SIM_IN_FLIGHT_MAX ||
        chance(n, n->cfg.drop_per_million)) {
        n->st.dropped++;
        trace(n, RPC_SIM_DROP, e);
        ev_free(e);
        return RPC_OK;
    }
    if (chance(n, n->cfg.duplicate_per_million)) {
        sim_ev *dup = ev_new(h, to, payload, len);
        if (dup != NULL) {
            n->st.duplicated++;
            trace(n, RPC_SIM_DUPLICATE, dup);
            schedule_copy(n, from, dst, dup);
        }
    }
    schedule_copy(n, from, dst, e);
    return RPC_OK;
}

/* ---- the interface ----------------------------------------------------------- */

static int sim_send_op(rpc_transport *it, rpc_node_id to, uint32_t method, const void *payload,
                       size_t len)
{
    rpc__header h = {0};
    h.kind = RPC_FRAME_MESSAGE;
    h.method = method;
    return net_send((sim_node *)it, &h, to, payload, len);
}

static int sim_request_op(rpc_transport *it, rpc_node_id to, uint32_t method,
                          const void *payload, size_t len, int64_t timeout_ms,
                          rpc_response_fn cb, void *ctx)
{
    sim_node *self = (sim_node *)it;
    rpc_sim_net *n = self->net;
    if (n->closing)
        return RPC_ERR_STOPPED;
    if (cb == NULL || timeout_ms <= 0 || to == 0 || to == self->id)
        return RPC_ERR_INVALID;
    if (len > RPC_FRAME_PAYLOAD_MAX)
        return RPC_ERR_TOO_LARGE;
    sim_req *r = base_calloc(1, sizeof(*r));
    sim_ev *dl = base_calloc(1, sizeof(*dl));
    if (r == NULL || dl == NULL) {
        base_free(r);
        base_free(dl);
        return RPC_ERR_NOMEM;
    }
    int64_t timeout_max_ms = (INT64_MAX - n->now_ns) / 1000000; /* no overflow */
    if (timeout_ms > timeout_max_ms)
        timeout_ms = timeout_max_ms;
    r->id = self->next_request_id++;
    r->to = to;
    r->cb = cb;
    r->cb_ctx = ctx;
    dl->type = EV_DEADLINE;
    dl->to = self->id; /* deadline events belong to the requester */
    dl->h.request_id = r->id;
    dl->h.kind = RPC_FRAME_REQUEST;
    dl->h.method = method;
    bool known = node_find(n, to) != NULL;
    dl->fail_rc = known ? RPC_ERR_TIMEOUT : RPC_ERR_UNKNOWN_PEER;
    dl->time_ns = known ? n->now_ns + timeout_ms * 1000000 : n->now_ns;
    if (heap_push(n, dl) != RPC_OK) {
        base_free(r);
        base_free(dl);
        return RPC_ERR_NOMEM;
    }
    r->next = self->reqs;
    self->reqs = r;
    if (known) {
        rpc__header h = {0};
        h.kind = RPC_FRAME_REQUEST;
        h.method = method;
        h.request_id = r->id;
        int rc = net_send(self, &h, to, payload, len);
        (void)rc; /* only NOMEM possible here: the deadline still fires */
    }
    return RPC_OK;
}

static int sim_respond_op(rpc_transport *it, rpc_node_id to, uint64_t request_id, int32_t status,
                          const void *payload, size_t len)
{
    if (request_id == 0)
        return RPC_ERR_INVALID;
    rpc__header h = {0};
    h.kind = RPC_FRAME_RESPONSE;
    h.request_id = request_id;
    h.status = status;
    return net_send((sim_node *)it, &h, to, payload, len);
}

static void sim_set_handler_op(rpc_transport *it, rpc_handler_fn fn, void *ctx)
{
    sim_node *self = (sim_node *)it;
    self->handler = fn;
    self->handler_ctx = ctx;
}

static rpc_node_id sim_node_id_op(rpc_transport *it)
{
    return ((sim_node *)it)->id;
}

static const rpc_transport_ops sim_ops = {
    .send = sim_send_op,
    .request = sim_request_op,
    .respond = sim_respond_op,
    .set_handler = sim_set_handler_op,
    .node_id = sim_node_id_op,
};

/* ---- network --------------------------------------------------------------- */

void rpc_sim_config_init(rpc_sim_config *c, uint64_t seed)
{
    memset(c, 0, sizeof(*c));
    c->seed = seed;
    c->latency_min_ns = 1000000;
    c->latency_max_ns = 5000000;
}

int rpc_sim_net_new(const rpc_sim_config *config, rpc_sim_net **out)
{
    *out = NULL;
    if (config->latency_min_ns < 0 || config->latency_max_ns < config->latency_min_ns ||
        config->drop_per_million > 1000000 || config->duplicate_per_million > 1000000 ||
        config->reorder_per_million > 1000000)
        return RPC_ERR_INVALID;
    rpc_sim_net *n = base_calloc(1, sizeof(*n));
    if (n == NULL)
        return RPC_ERR_NOMEM;
    n->cfg = *config;
    n->rng = config->seed;
    *out = n;
    return RPC_OK;
}

static sim_req *req_take(sim_node *self, uint64_t id, rpc_node_id to)
{
    for (sim_req **pp = &self->reqs; *pp; pp = &(*pp)->next) {
        sim_req *r = *pp;
        if (r->id == id && (to == 0 || r->to == to)) {
            *pp = r->next;
            return r;
        }
    }
    return NULL;
}

void rpc_sim_net_free(rpc_sim_net *n)
{
    if (n == NULL)
        return;
    n->closing = true; /* callbacks below can no longer send */
    for (int i = 0; i < n->nnodes; i++) {
        sim_req *r = n->nodes[i]->reqs;
        n->nodes[i]->reqs = NULL;
        while (r) {
            sim_req *nx = r->next;
            r->cb(r->cb_ctx, RPC_ERR_STOPPED, NULL);
            base_free(r);
            r = nx;
        }
    }
    for (size_t i = 0; i < n->nheap; i++)
        ev_free(n->heap[i]);
    base_free(n->heap);
    for (int i = 0; i < n->nnodes; i++)
        base_free(n->nodes[i]);
    base_free(n);
}

int rpc_sim_add_node(rpc_sim_net *n, rpc_node_id id, hlc_clock *clock, rpc_transport **out)
{
    *out = NULL;
    if (id == 0 || node_find(n, id) != NULL)
        return RPC_ERR_INVALID;
    if (n->nnodes >= RPC_SIM_NODES_MAX)
        return RPC_ERR_QUEUE_FULL;
    sim_node *s = base_calloc(1, sizeof(*s));
    if (s == NULL)
        return RPC_ERR_NOMEM;
    s->iface.ops = &sim_ops;
    s->net = n;
    s->id = id;
    s->index = n->nnodes;
    s->clock = clock;
    s->next_request_id = 1;
    n->nodes[n->nnodes++] = s;
    *out = &s->iface;
    return RPC_OK;
}

void rpc_sim_partition(rpc_sim_net *n, rpc_node_id from, rpc_node_id to, bool blocked)
{
    sim_node *a = node_find(n, from), *b = node_find(n, to);
    if (a && b)
        n->blocked[a->index][b->index] = blocked;
}

void rpc_sim_partition_pair(rpc_sim_net *n, rpc_node_id a, rpc_node_id b, bool blocked)
{
    rpc_sim_partition(n, a, b, blocked);
    rpc_sim_partition(n, b, a, blocked);
}

void rpc_sim_isolate(rpc_sim_net *n, rpc_node_id id, bool isolated)
{
    for (int i = 0; i < n->nnodes; i++)
        if (n->nodes[i]->id != id)
            rpc_sim_partition_pair(n, id, n->nodes[i]->id, isolated);
}

void rpc_sim_heal_all(rpc_sim_net *n)
{
    memset(n->blocked, 0, sizeof(n->blocked));
}

static void deliver(rpc_sim_net *n, sim_ev *e)
{
    if (e->type == EV_DEADLINE) {
        sim_node *self = node_find(n, e->to);
        sim_req *r = self ? req_take(self, e->h.request_id, 0) : NULL;
        if (r == NULL)
            return; /* answered already */
        n->st.timeouts++;
        trace(n, RPC_SIM_TIMEOUT, e);
        r->cb(r->cb_ctx, e->fail_rc, NULL);
        base_free(r);
        return;
    }
    n->frames_in_flight--;
    sim_node *src = node_find(n, e->h.sender);
    sim_node *dst = node_find(n, e->to);
    assert(src && dst);
    if (n->blocked[src->index][dst->index]) {
        n->st.blocked++;
        trace(n, RPC_SIM_BLOCKED, e);
        return;
    }
    n->st.delivered++;
    trace(n, RPC_SIM_DELIVER, e);
    if (dst->clock) {
        int rc = hlc_update(dst->clock, e->h.sent_at);
        if (rc == HLC_ERR_REMOTE_AHEAD)
            BASE_WARN("rpc", "sim node %llu: REMOTE_AHEAD from node %llu",
                      (unsigned long long)dst->id, (unsigned long long)src->id);
    }
    rpc_message m = {.from = e->h.sender, .method = e->h.method, .request_id = e->h.request_id,
                     .status = e->h.status, .sent_at = e->h.sent_at, .payload = e->payload,
                     .payload_len = e->h.payload_len};
    if (e->h.kind == RPC_FRAME_RESPONSE) {
        sim_req *r = req_take(dst, e->h.request_id, e->h.sender);
        if (r == NULL) {
            n->st.late_responses++;
            return;
        }
        r->cb(r->cb_ctx, RPC_OK, &m);
        base_free(r);
        return;
    }
    if (dst->handler) {
        dst->handler(dst->handler_ctx, &dst->iface, &m);
    } else if (e->h.kind == RPC_FRAME_REQUEST) {
        sim_respond_op(&dst->iface, e->h.sender, e->h.request_id, RPC_ERR_NO_HANDLER, NULL, 0);
    }
}

bool rpc_sim_step(rpc_sim_net *n)
{
    sim_ev *e = heap_pop(n);
    if (e == NULL)
        return false;
    if (e->time_ns > n->now_ns)
        n->now_ns = e->time_ns;
    deliver(n, e);
    ev_free(e);
    return true;
}

uint64_t rpc_sim_run_until(rpc_sim_net *n, int64_t t_ns)
{
    uint64_t count = 0;
    while (n->nheap > 0 && n->heap[0]->time_ns <= t_ns) {
        rpc_sim_step(n);
        count++;
    }
    if (t_ns > n->now_ns)
        n->now_ns = t_ns;
    return count;
}

int64_t rpc_sim_now_ns(const rpc_sim_net *n)
{
    return n->now_ns;
}

size_t rpc_sim_pending(const rpc_sim_net *n)
{
    return n->nheap;
}

void rpc_sim_set_trace(rpc_sim_net *n, void (*fn)(void *ctx, const rpc_sim_event *ev), void *ctx)
{
    n->trace = fn;
    n->trace_ctx = ctx;
}

void rpc_sim_get_stats(const rpc_sim_net *n, rpc_sim_stats *out)
{
    *out = n->st;
}
