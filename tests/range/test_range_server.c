/*
** tests/range/test_range_server.c: the range_server (leaseholder evaluation)
** on three range_nodes with a range_server each, two ranges ([, "m") and
** ["m", +inf)) on all three.
**
** Network: rpc_sim, for its partitions and one-way blocks, run by a DRIVER
** THREAD in real time (sim time = elapsed real time) because the servers'
** worker threads block on Raft barriers and proposals while the network
** must go on. rpc_sim is single-threaded, so every node sees a wrapper
** transport whose send/request/respond only append to an outbox; the driver
** alone touches the sim: it flushes the outbox into it, runs it up to now
** (handlers: range_node_handle_rpc, then range_server_handle_rpc: the nodes
** run with no_handler) and ticks the nodes every TICK_MS (ticks can be
** paused, which freezes elections and leases). rpc_uv on loopback would
** give the same threads but no partitions, and no way to freeze a lease.
** The run is therefore not deterministic (threads), but every wait is on a
** condition with a bound, and the sim's seed is printed.
**
** Requests go through range_server_call (in-process) or through the sim
** from a client endpoint (rpc_request, method RANGE_RPC_METHOD_KV).
*/
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "base/base.h"
#include "range/kv_int.h"
#include "range/range.h"
#include "range/replica_int.h"
#include "rpc/rpc.h"
#include "storage/storage.h"

#define NODES 3
#define CLIENT (NODES + 1) /* slot and node id of the client endpoint */
#define TICK_MS 10
#define ELECTION_TICKS 20
#define WAIT_MS 20000            /* bound of every wait in the test */
#define SERVER_WAIT_MS 2000      /* the servers' wait_timeout_ms */
#define MAX_OFFSET_NS (100LL * 1000 * 1000)
#define OUTBOX_MAX (1u << 20)    /* frames waiting for the driver */
#define OBSERVED_MAX 65536       /* applies recorded by the observer */
#define PIPE_THREADS 8
#define PIPE_COMMITS 16

struct fixture;

typedef enum out_kind { OUT_SEND, OUT_REQUEST, OUT_RESPOND } out_kind;
typedef struct out_item {
    struct out_item *next;
    out_kind kind;
    rpc_node_id from, to;
    uint32_t method;
    uint64_t request_id;
    int32_t status;
    int64_t timeout_ms;
    rpc_response_fn cb;
    void *ctx;
    size_t len;
    uint8_t data[];
} out_item;

/* The transport a node (or the client) sees: everything goes to the outbox. */
typedef struct test_tp {
    rpc_transport base; /* first member */
    struct fixture *f;
    rpc_node_id id;
    rpc_transport *sim; /* the sim endpoint; touched by the driver only */
} test_tp;

typedef struct observed {
    uint64_t node, txn, seq;
    bool duplicate;
} observed;

typedef struct fixture {
    uint64_t seed;
    rpc_sim_net *net;
    pthread_mutex_t sim_mu; /* held by the driver around every sim call */
    pthread_mutex_t out_mu;
    pthread_cond_t out_cv;
    out_item *out_head, *out_tail;
    size_t out_len;
    pthread_t driver;
    atomic_bool stop;
    atomic_bool ticking;
    pthread_mutex_t ev_mu; /* driver rounds, client answers */
    pthread_cond_t ev_cv;
    uint64_t rounds;
    int64_t start_ns;
    hlc_clock *clock[CLIENT + 1];
    storage_engine *engine[NODES + 1];
    test_tp tp[CLIENT + 1];
    range_node *rn[NODES + 1];
    range_server *srv[NODES + 1];
    range_replica *rep[NODES + 1][3]; /* [node][range_id] */
    pthread_mutex_t obs_mu;
    observed obs[OBSERVED_MAX];
    size_t n_obs;
    /* Response bytes: decoded responses point into them, so they live
    ** until teardown (under obs_mu). */
    void **keep;
    size_t n_keep, cap_keep;
} fixture;

/* ---- the wrapper transport ---------------------------------------------------- */

static int out_push(test_tp *tp, out_kind kind, rpc_node_id to, uint32_t method,
                    uint64_t request_id, int32_t status, const void *payload, size_t len,
                    int64_t timeout_ms, rpc_response_fn cb, void *ctx)
{
    fixture *f = tp->f;
    out_item *it = malloc(sizeof(*it) + len);
    if (it == NULL)
        return RPC_ERR_NOMEM;
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    it->from = tp->id;
    it->to = to;
    it->method = method;
    it->request_id = request_id;
    it->status = status;
    it->timeout_ms = timeout_ms;
    it->cb = cb;
    it->ctx = ctx;
    it->len = len;
    if (len > 0)
        memcpy(it->data, payload, len);
    pthread_mutex_lock(&f->out_mu);
    if (f->out_len >= OUTBOX_MAX) {
        pthread_mutex_unlock(&f->out_mu);
        free(it);
        return RPC_ERR_QUEUE_FULL;
    }
    if (f->out_tail != NULL)
        f->out_tail->next = it;
    else
        f->out_head = it;
    f->out_tail = it;
    f->out_len++;
    pthread_cond_signal(&f->out_cv);
    pthread_mutex_unlock(&f->out_mu);
    return RPC_OK;
}

static int tp_send(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload,
                   size_t len)
{
    return out_push((test_tp *)t, OUT_SEND, to, method, 0, 0, payload, len, 0, NULL, NULL);
}

static int tp_request(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload,
                      size_t len, int64_t timeout_ms, rpc_response_fn cb, void *ctx)
{
    return out_push((test_tp *)t, OUT_REQUEST, to, method, 0, 0, payload, len, timeout_ms, cb,
                    ctx);
}

static int tp_respond(rpc_transport *t, rpc_node_id to, uint64_t request_id, int32_t status,
                      const void *payload, size_t len)
{
    return out_push((test_tp *)t, OUT_RESPOND, to, 0, request_id, status, payload, len, 0, NULL,
                    NULL);
}

static void tp_set_handler(rpc_transport *t, rpc_handler_fn fn, void *ctx)
{
    (void)t;
    (void)fn;
    (void)ctx; /* the nodes run with no_handler; dispatch() is the handler */
}

static rpc_node_id tp_node_id(rpc_transport *t) { return ((test_tp *)t)->id; }

static const rpc_transport_ops tp_ops = {tp_send, tp_request, tp_respond, tp_set_handler,
                                         tp_node_id};

/* The sim endpoints' handler (driver thread). */
static void dispatch(void *ctx, rpc_transport *t, const rpc_message *msg)
{
    test_tp *tp = ctx;
    fixture *f = tp->f;
    (void)t;
    int i = (int)tp->id;
    if (i >= 1 && i <= NODES && f->rn[i] != NULL) {
        if (range_node_handle_rpc(f->rn[i], &tp->base, msg))
            return;
        if (msg->method == RANGE_RPC_METHOD_KV && f->srv[i] != NULL) {
            range_server_handle_rpc(f->srv[i], &tp->base, msg);
            return;
        }
    }
    if (msg->request_id != 0)
        (void)tp_respond(&tp->base, msg->from, msg->request_id, RPC_ERR_NO_HANDLER, NULL, 0);
}

static void *driver_main(void *arg)
{
    fixture *f = arg;
    int64_t next_tick = 0;
    while (!atomic_load(&f->stop)) {
        pthread_mutex_lock(&f->out_mu);
        out_item *batch = f->out_head;
        f->out_head = f->out_tail = NULL;
        f->out_len = 0;
        pthread_mutex_unlock(&f->out_mu);

        pthread_mutex_lock(&f->sim_mu);
        while (batch != NULL) {
            out_item *it = batch;
            batch = it->next;
            rpc_transport *sim = f->tp[it->from].sim;
            int rc = RPC_OK;
            if (it->kind == OUT_SEND)
                rc = rpc_send(sim, it->to, it->method, it->data, it->len);
            else if (it->kind == OUT_REQUEST)
                rc = rpc_request(sim, it->to, it->method, it->data, it->len, it->timeout_ms,
                                 it->cb, it->ctx);
            else
                rc = rpc_respond(sim, it->to, it->request_id, it->status, it->data, it->len);
            if (rc != RPC_OK && it->kind == OUT_REQUEST)
                it->cb(it->ctx, rc, NULL); /* the caller was told RPC_OK */
            free(it);
        }
        int64_t now = base_monotonic_ns() - f->start_ns;
        rpc_sim_run_until(f->net, now);
        if (now >= next_tick) {
            next_tick = now + (int64_t)TICK_MS * 1000000;
            if (atomic_load(&f->ticking))
                for (int i = 1; i <= NODES; i++)
                    range_node_tick(f->rn[i]);
        }
        pthread_mutex_unlock(&f->sim_mu);

        pthread_mutex_lock(&f->ev_mu);
        f->rounds++;
        pthread_cond_broadcast(&f->ev_cv);
        pthread_mutex_unlock(&f->ev_mu);

        /* The network's pace: wake on new frames, else within 1 ms. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&f->out_mu);
        if (f->out_head == NULL && !atomic_load(&f->stop))
            pthread_cond_timedwait(&f->out_cv, &f->out_mu, &ts);
        pthread_mutex_unlock(&f->out_mu);
    }
    return NULL;
}

/* ---- fixture ---------------------------------------------------------------- */

static void observer(void *ctx, uint64_t range_id, uint64_t node_id, uint64_t index,
                     uint64_t txn_id, uint64_t seq, bool duplicate)
{
    fixture *f = ctx;
    (void)range_id;
    (void)index;
    pthread_mutex_lock(&f->obs_mu);
    if (f->n_obs < OBSERVED_MAX)
        f->obs[f->n_obs++] = (observed){node_id, txn_id, seq, duplicate};
    pthread_mutex_unlock(&f->obs_mu);
}

static void count_applies(fixture *f, uint64_t txn, uint64_t seq, int *applied, int *dups)
{
    *applied = *dups = 0;
    pthread_mutex_lock(&f->obs_mu);
    for (size_t i = 0; i < f->n_obs; i++) {
        if (f->obs[i].txn != txn || f->obs[i].seq != seq)
            continue;
        if (f->obs[i].duplicate)
            (*dups)++;
        else
            (*applied)++;
    }
    pthread_mutex_unlock(&f->obs_mu);
}

/* Keep bytes alive until teardown (decoded responses borrow them). */
static void keep(fixture *f, base_buf *b)
{
    pthread_mutex_lock(&f->obs_mu);
    if (f->n_keep == f->cap_keep) {
        f->cap_keep = f->cap_keep ? f->cap_keep * 2 : 256;
        f->keep = realloc(f->keep, f->cap_keep * sizeof(*f->keep));
        assert_non_null(f->keep);
    }
    f->keep[f->n_keep++] = b->data;
    pthread_mutex_unlock(&f->obs_mu);
    memset(b, 0, sizeof(*b));
}

static uint64_t test_seed(void)
{
    const char *env = getenv("MERIDIAN_SEED");
    return env != NULL ? strtoull(env, NULL, 10) : 4242;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->seed = test_seed();
    pthread_mutex_init(&f->sim_mu, NULL);
    pthread_mutex_init(&f->out_mu, NULL);
    pthread_cond_init(&f->out_cv, NULL);
    pthread_mutex_init(&f->ev_mu, NULL);
    pthread_cond_init(&f->ev_cv, NULL);
    pthread_mutex_init(&f->obs_mu, NULL);
    atomic_store(&f->ticking, true);
    rpc_sim_config sc;
    rpc_sim_config_init(&sc, f->seed);
    assert_int_equal(rpc_sim_net_new(&sc, &f->net), RPC_OK);
    for (int i = 1; i <= CLIENT; i++) {
        assert_int_equal(hlc_clock_new(hlc_system_clock(), MAX_OFFSET_NS, &f->clock[i]), 0);
        f->tp[i] = (test_tp){{&tp_ops}, f, (rpc_node_id)i, NULL};
        assert_int_equal(rpc_sim_add_node(f->net, (rpc_node_id)i, f->clock[i], &f->tp[i].sim),
                         RPC_OK);
        rpc_set_handler(f->tp[i].sim, dispatch, &f->tp[i]);
    }
    /* range 1: [, "m"); range 2: ["m", +inf) */
    range_descriptor d1 = {.range_id = 1, .generation = 1, .end_key = (uint8_t *)"m",
                           .end_len = 1, .n_replicas = NODES};
    range_descriptor d2 = {.range_id = 2, .generation = 1, .start_key = (uint8_t *)"m",
                           .start_len = 1, .n_replicas = NODES};
    for (int k = 0; k < NODES; k++)
        d1.replicas[k] = d2.replicas[k] = (uint64_t)k + 1;
    for (int i = 1; i <= NODES; i++) {
        storage_options so = {.dir = NULL, .create_if_missing = true};
        assert_int_equal(storage_open(&so, &f->engine[i]), STORAGE_OK);
        range_node_config nc = {.transport = &f->tp[i].base, .engine = f->engine[i],
                                .sync = false, .observer = observer, .observer_ctx = f,
                                .no_handler = true};
        assert_int_equal(range_node_new(&nc, &f->rn[i]), RANGE_OK);
        for (uint64_t r = 1; r <= 2; r++) {
            range_replica_config rc = {.range_id = r, .n_peers = NODES,
                                       .election_ticks = ELECTION_TICKS,
                                       .random_seed = f->seed * 31 + r,
                                       .descriptor = r == 1 ? &d1 : &d2};
            for (int k = 0; k < NODES; k++)
                rc.peers[k] = (uint64_t)k + 1;
            assert_int_equal(range_node_add_replica(f->rn[i], &rc, &f->rep[i][r]), RANGE_OK);
        }
        range_server_config sc2 = {.node = f->rn[i], .clock = f->clock[i], .workers = 4,
                                   .wait_timeout_ms = SERVER_WAIT_MS};
        assert_int_equal(range_server_new(&sc2, &f->srv[i]), RANGE_OK);
    }
    f->start_ns = base_monotonic_ns();
    assert_int_equal(pthread_create(&f->driver, NULL, driver_main, f), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    atomic_store(&f->stop, true);
    pthread_mutex_lock(&f->out_mu);
    pthread_cond_signal(&f->out_cv);
    pthread_mutex_unlock(&f->out_mu);
    pthread_join(f->driver, NULL);
    /* Server before node (it borrows the node); the sim last: nothing runs. */
    for (int i = 1; i <= NODES; i++)
        range_server_free(f->srv[i]);
    for (int i = 1; i <= NODES; i++)
        range_node_free(f->rn[i]);
    /* Requests still in the outbox or the sim: their callbacks need the
    ** client's frames, which live in the test functions' frames: every test
    ** waited for its own answers, so only stray frames remain here. */
    rpc_sim_net_free(f->net);
    while (f->out_head != NULL) {
        out_item *it = f->out_head;
        f->out_head = it->next;
        free(it);
    }
    for (int i = 1; i <= NODES; i++)
        storage_close(f->engine[i]);
    for (int i = 1; i <= CLIENT; i++)
        hlc_clock_free(f->clock[i]);
    pthread_mutex_destroy(&f->sim_mu);
    pthread_mutex_destroy(&f->out_mu);
    pthread_cond_destroy(&f->out_cv);
    pthread_mutex_destroy(&f->ev_mu);
    pthread_cond_destroy(&f->ev_cv);
    pthread_mutex_destroy(&f->obs_mu);
    for (size_t i = 0; i < f->n_keep; i++)
        base_free(f->keep[i]);
    free(f->keep);
    free(f);
    return 0;
}

/* Wait (bounded) until pred holds, rechecking after every driver round.
** pred runs with no lock of ours held (it calls into the nodes). */
static bool wait_until(fixture *f, bool (*pred)(fixture *, void *), void *arg)
{
    int64_t deadline = base_monotonic_ns() + (int64_t)WAIT_MS * 1000000;
    for (;;) {
        pthread_mutex_lock(&f->ev_mu);
        uint64_t seen = f->rounds;
        pthread_mutex_unlock(&f->ev_mu);
        if (pred(f, arg))
            return true;
        if (base_monotonic_ns() > deadline)
            return false;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&f->ev_mu);
        if (f->rounds == seen)
            pthread_cond_timedwait(&f->ev_cv, &f->ev_mu, &ts);
        pthread_mutex_unlock(&f->ev_mu);
    }
}

typedef struct leader_query {
    uint64_t range_id;
    int not_node; /* ignore this node (the isolated old leader); 0: none */
    int found;
} leader_query;

/* Exactly one node (besides not_node) leads with a valid lease, and the
** other one of the majority knows it. */
static bool have_leader(fixture *f, void *arg)
{
    leader_query *q = arg;
    int leader = 0;
    for (int i = 1; i <= NODES; i++) {
        if (i == q->not_node)
            continue;
        range_replica_status st;
        range_replica_get_status(f->rep[i][q->range_id], &st);
        if (st.leader && st.lease_valid) {
            if (leader != 0)
                return false;
            leader = i;
        }
    }
    if (leader == 0)
        return false;
    for (int i = 1; i <= NODES; i++) {
        if (i == q->not_node || i == leader)
            continue;
        range_replica_status st;
        range_replica_get_status(f->rep[i][q->range_id], &st);
        if (st.leader_id != (uint64_t)leader)
            return false;
    }
    q->found = leader;
    return true;
}

static int wait_leader(fixture *f, uint64_t range_id, int not_node)
{
    leader_query q = {range_id, not_node, 0};
    if (!wait_until(f, have_leader, &q))
        fail_msg("no leader for range %llu (seed %llu)", (unsigned long long)range_id,
                 (unsigned long long)f->seed);
    return q.found;
}

/* ---- requests ----------------------------------------------------------------- */

/* Evaluate q at node (in-process); *resp decoded (caller frees). */
static int32_t call(fixture *f, int node, const range_kv_request *q, range_kv_response *resp)
{
    base_buf req = {0}, out = {0};
    assert_int_equal(range_kv_request_encode(q, &req), RANGE_OK);
    int32_t st = range_server_call(f->srv[node], req.data, req.len, &out);
    assert_int_equal(range_kv_response_decode(out.data, out.len, resp), RANGE_OK);
    assert_int_equal(resp->status, st);
    base_buf_free(&req);
    keep(f, &out);
    return st;
}

typedef struct rpc_wait {
    fixture *f;
    bool done;
    int rc;
    int32_t status;
    base_buf payload;
} rpc_wait;

static void on_response(void *ctx, int rc, const rpc_message *m)
{
    rpc_wait *w = ctx;
    pthread_mutex_lock(&w->f->ev_mu);
    w->rc = rc;
    if (rc == RPC_OK) {
        w->status = m->status;
        base_buf_append(&w->payload, m->payload, m->payload_len);
    }
    w->done = true;
    pthread_cond_broadcast(&w->f->ev_cv);
    pthread_mutex_unlock(&w->f->ev_mu);
}

/* Send raw bytes from the client to node over the sim; wait (bounded). */
static int32_t rpc_call_raw(fixture *f, int node, const uint8_t *data, size_t len,
                            range_kv_response *resp)
{
    rpc_wait w = {.f = f};
    assert_int_equal(rpc_request(&f->tp[CLIENT].base, (rpc_node_id)node, RANGE_RPC_METHOD_KV,
                                 data, len, WAIT_MS, on_response, &w),
                     RPC_OK);
    int64_t deadline = base_monotonic_ns() + (int64_t)WAIT_MS * 1000000 + 1000000000LL;
    pthread_mutex_lock(&f->ev_mu);
    while (!w.done && base_monotonic_ns() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&f->ev_cv, &f->ev_mu, &ts);
    }
    pthread_mutex_unlock(&f->ev_mu);
    assert_true(w.done);
    assert_int_equal(w.rc, RPC_OK);
    assert_int_equal(range_kv_response_decode(w.payload.data, w.payload.len, resp), RANGE_OK);
    assert_int_equal(resp->status, w.status);
    keep(f, &w.payload);
    return w.status;
}

static int32_t rpc_call(fixture *f, int node, const range_kv_request *q, range_kv_response *resp)
{
    base_buf req = {0};
    assert_int_equal(range_kv_request_encode(q, &req), RANGE_OK);
    int32_t st = rpc_call_raw(f, node, req.data, req.len, resp);
    base_buf_free(&req);
    return st;
}

static hlc_timestamp client_now(fixture *f) { return hlc_now(f->clock[CLIENT]); }

static range_kv_request get_req(uint64_t range_id, const char *key, hlc_timestamp ts)
{
    range_kv_request q = {.op = RANGE_KV_GET, .range_id = range_id, .read_ts = ts,
                          .key = (const uint8_t *)key, .key_len = strlen(key)};
    return q;
}

/* GET key at node; *value (if non-NULL) receives a copy of the value. */
static int32_t get(fixture *f, int node, uint64_t range_id, const char *key, hlc_timestamp ts,
                   char *value, size_t value_size)
{
    range_kv_request q = get_req(range_id, key, ts);
    range_kv_response r;
    int32_t st = call(f, node, &q, &r);
    if (value != NULL) {
        value[0] = '\0';
        if (st == RANGE_OK) {
            assert_true(r.value_len < value_size);
            memcpy(value, r.value, r.value_len);
            value[r.value_len] = '\0';
        }
    }
    range_kv_response_free(&r);
    return st;
}

#define W(k, v) {(const uint8_t *)(k), sizeof(k) - 1, (const uint8_t *)(v), sizeof(v) - 1, false}
#define SPAN(s, e) {(const uint8_t *)(s), sizeof(s) - 1, (const uint8_t *)(e), sizeof(e) - 1, false}
#define POINT(k) {(const uint8_t *)(k), sizeof(k) - 1, NULL, 0, true}

typedef struct commit_args {
    uint64_t range_id;
    hlc_timestamp read_ts;
    uint64_t txn, nonce;
    const range_write *writes;
    size_t n_writes;
    const range_span *dels;
    size_t n_dels;
    const range_span *reads;
    size_t n_reads;
} commit_args;

static range_kv_request commit_req(const commit_args *a)
{
    range_kv_request q = {.op = RANGE_KV_COMMIT, .range_id = a->range_id, .read_ts = a->read_ts,
                          .txn_id = a->txn, .nonce = a->nonce, .writes = a->writes,
                          .write_count = a->n_writes, .delete_spans = a->dels,
                          .delete_span_count = a->n_dels, .read_spans = a->reads,
                          .read_span_count = a->n_reads};
    return q;
}

/* Commit at node; on RANGE_OK the client clock moves past commit_ts (as a
** coordinator's would: read your writes). A first evaluation commits above
** read_ts; a retry answers the timestamp it applied at. */
static int32_t commit(fixture *f, int node, const commit_args *a, hlc_timestamp *commit_ts,
                      range_kv_response *resp_out)
{
    range_kv_request q = commit_req(a);
    range_kv_response r;
    int32_t st = call(f, node, &q, &r);
    if (st == RANGE_OK) {
        assert_false(hlc_is_zero(r.commit_ts));
        (void)hlc_update(f->clock[CLIENT], r.commit_ts);
        if (commit_ts != NULL)
            *commit_ts = r.commit_ts;
    }
    if (resp_out != NULL)
        *resp_out = r;
    else
        range_kv_response_free(&r);
    return st;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_commit_then_read(void **state)
{
    fixture *f = *state;
    int l = wait_leader(f, 1, 0);
    hlc_timestamp before = client_now(f);
    range_write w[] = {W("a", "1"), W("b", "2"), W("c", "3"), W("d", "4")};
    commit_args a = {1, before, 1, 1, w, 4, NULL, 0, NULL, 0};
    hlc_timestamp cts;
    assert_int_equal(commit(f, l, &a, &cts, NULL), RANGE_OK);

    char v[64];
    assert_int_equal(get(f, l, 1, "a", client_now(f), v, sizeof(v)), RANGE_OK);
    assert_string_equal(v, "1");
    /* MVCC: not visible below its commit timestamp */
    assert_int_equal(get(f, l, 1, "a", before, v, sizeof(v)), RANGE_NOT_FOUND);
    assert_int_equal(get(f, l, 1, "absent", client_now(f), v, sizeof(v)), RANGE_NOT_FOUND);

    /* scan pages: two rows, more; then the rest */
    range_kv_request q = {.op = RANGE_KV_SCAN, .range_id = 1, .read_ts = client_now(f),
                          .start = (const uint8_t *)"a", .start_len = 1,
                          .end = (const uint8_t *)"d", .end_len = 1, .max_rows = 2};
    range_kv_response r;
    assert_int_equal(call(f, l, &q, &r), RANGE_OK);
    assert_int_equal(r.n_rows, 2);
    assert_true(r.more);
    assert_memory_equal(r.rows[0].key, "a", 1);
    assert_memory_equal(r.rows[1].key, "b", 1);
    assert_memory_equal(r.rows[1].value, "2", 1);
    assert_false(r.has_descriptor);
    range_kv_response_free(&r);
    q.start = (const uint8_t *)"c"; /* after the last row returned */
    assert_int_equal(call(f, l, &q, &r), RANGE_OK);
    assert_int_equal(r.n_rows, 1);
    assert_false(r.more);
    range_kv_response_free(&r);
    /* reverse, open bounds (the range's own: the descriptor comes along),
    ** a byte limit that still returns one row */
    range_kv_request rq = {.op = RANGE_KV_SCAN, .range_id = 1, .read_ts = client_now(f),
                           .reverse = true, .max_bytes = 1};
    assert_int_equal(call(f, l, &rq, &r), RANGE_OK);
    assert_int_equal(r.n_rows, 1);
    assert_true(r.more);
    assert_memory_equal(r.rows[0].key, "d", 1);
    assert_true(r.has_descriptor);
    assert_int_equal(r.descriptor.end_len, 1);
    range_kv_response_free(&r);

    /* over the network too */
    range_kv_request g = get_req(1, "c", client_now(f));
    assert_int_equal(rpc_call(f, l, &g, &r), RANGE_OK);
    assert_memory_equal(r.value, "3", 1);
    range_kv_response_free(&r);

    /* a follower: NOT_LEADER with the leader's id, in-process and over rpc */
    int fo = l % NODES + 1;
    assert_int_equal(call(f, fo, &g, &r), RANGE_ERR_NOT_LEADER);
    assert_int_equal(r.leader_hint, (uint64_t)l);
    range_kv_response_free(&r);
    assert_int_equal(rpc_call(f, fo, &g, &r), RANGE_ERR_NOT_LEADER);
    assert_int_equal(r.leader_hint, (uint64_t)l);
    range_kv_response_free(&r);
    a.nonce = 2;
    assert_int_equal(commit(f, fo, &a, NULL, &r), RANGE_ERR_NOT_LEADER);
    assert_int_equal(r.leader_hint, (uint64_t)l);
    range_kv_response_free(&r);

    /* DESCRIBE anywhere: descriptor and lease state */
    range_kv_request dq = {.op = RANGE_KV_DESCRIBE, .range_id = 2};
    assert_int_equal(call(f, fo, &dq, &r), RANGE_OK);
    assert_true(r.has_descriptor);
    assert_int_equal(r.descriptor.range_id, 2);
    assert_int_equal(r.descriptor.start_len, 1);
    assert_int_equal(r.descriptor.end_len, 0);
    range_kv_response_free(&r);
    dq.range_id = 1;
    assert_int_equal(call(f, l, &dq, &r), RANGE_OK);
    assert_true(r.lease_valid);
    assert_int_equal(r.leader_id, (uint64_t)l);
    range_kv_response_free(&r);

    /* every replica applied the command once */
    int applied, dups;
    for (int i = 0; i < 200; i++) { /* bounded: followers apply within a few rounds */
        count_applies(f, 1, 1, &applied, &dups);
        if (applied == NODES)
            break;
        pthread_mutex_lock(&f->ev_mu);
        uint64_t seen = f->rounds;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        while (f->rounds == seen)
            if (pthread_cond_timedwait(&f->ev_cv, &f->ev_mu, &ts) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&f->ev_mu);
    }
    assert_int_equal(applied, NODES);
    assert_int_equal(dups, 0);
}

static void test_conflicts(void **state)
{
    fixture *f = *state;
    int l = wait_leader(f, 1, 0);
    int l2 = wait_leader(f, 2, 0);
    hlc_timestamp r0 = client_now(f);
    range_write w1[] = {W("k", "v1"), W("q", "x")};
    commit_args a = {1, r0, 10, 1, w1, 1, NULL, 0, NULL, 0};
    hlc_timestamp c1;
    assert_int_equal(commit(f, l, &a, &c1, NULL), RANGE_OK);

    /* A read at R moves the leaseholder's clock: a later write of the key,
    ** even from an older snapshot, commits above R (it cannot slide under
    ** the read). c1's commit wait put the low-water mark behind us. */
    hlc_timestamp big = hlc_add_ns(hlc_now(f->clock[l]), MAX_OFFSET_NS / 2);
    char v0[8];
    assert_int_equal(get(f, l, 1, "fx", big, v0, sizeof(v0)), RANGE_NOT_FOUND);
    range_write wx[] = {W("fx", "1")};
    commit_args ax = {1, r0, 9, 1, wx, 1, NULL, 0, NULL, 0};
    hlc_timestamp cx;
    assert_int_equal(commit(f, l, &ax, &cx, NULL), RANGE_OK);
    assert_true(hlc_compare(cx, big) > 0);

    /* write-write: k written after r0 */
    range_write w2[] = {W("k", "v2")};
    commit_args b = {1, r0, 11, 1, w2, 1, NULL, 0, NULL, 0};
    range_kv_response r;
    assert_int_equal(commit(f, l, &b, NULL, &r), RANGE_ERR_CONFLICT);
    assert_int_equal(r.conflict_kind, RANGE_CONFLICT_WRITE_WRITE);
    assert_int_equal(r.conflict_key_len, 1);
    assert_memory_equal(r.conflict_key, "k", 1);
    assert_int_equal(hlc_compare(r.conflict_ts, c1), 0);
    assert_false(r.conflict_pending);
    range_kv_response_free(&r);

    /* read-write: read k at r0, write j */
    range_write w3[] = {W("j", "x")};
    range_span rs[] = {POINT("k")};
    commit_args c = {1, r0, 12, 1, w3, 1, NULL, 0, rs, 1};
    assert_int_equal(commit(f, l, &c, NULL, &r), RANGE_ERR_CONFLICT);
    assert_int_equal(r.conflict_kind, RANGE_CONFLICT_READ_WRITE);
    assert_memory_equal(r.conflict_key, "k", 1);
    assert_int_equal(hlc_compare(r.conflict_ts, c1), 0);
    range_kv_response_free(&r);
    /* ... and a scan of [j, l) at r0 saw no k: a phantom */
    range_span scan[] = {SPAN("j", "l")};
    commit_args c2 = {1, r0, 13, 1, w3, 1, NULL, 0, scan, 1};
    assert_int_equal(commit(f, l, &c2, NULL, &r), RANGE_ERR_CONFLICT);
    assert_int_equal(r.conflict_kind, RANGE_CONFLICT_PHANTOM);
    assert_memory_equal(r.conflict_key, "k", 1);
    range_kv_response_free(&r);

    /* no conflict from a fresh read timestamp */
    commit_args ok = {1, client_now(f), 14, 1, w2, 1, NULL, 0, rs, 1};
    assert_int_equal(commit(f, l, &ok, NULL, NULL), RANGE_OK);

    /* delete span: tombstones for every visible key, counted as written */
    range_write w4[] = {W("e1", "x"), W("e2", "y"), W("e3", "z")};
    commit_args d = {1, client_now(f), 15, 1, w4, 3, NULL, 0, NULL, 0};
    assert_int_equal(commit(f, l, &d, NULL, NULL), RANGE_OK);
    hlc_timestamp before_del = client_now(f);
    range_write w5[] = {W("e2", "kept")};
    range_span del[] = {SPAN("e", "f")};
    commit_args dd = {1, before_del, 16, 1, w5, 1, del, 1, NULL, 0};
    assert_int_equal(commit(f, l, &dd, NULL, NULL), RANGE_OK);
    char v[32];
    assert_int_equal(get(f, l, 1, "e1", client_now(f), v, sizeof(v)), RANGE_NOT_FOUND);
    assert_int_equal(get(f, l, 1, "e2", client_now(f), v, sizeof(v)), RANGE_OK);
    assert_string_equal(v, "kept");
    assert_int_equal(get(f, l, 1, "e3", client_now(f), v, sizeof(v)), RANGE_NOT_FOUND);
    assert_int_equal(get(f, l, 1, "e1", before_del, v, sizeof(v)), RANGE_OK);
    /* a commit that read at before_del and writes in the deleted span */
    range_write w6[] = {W("e3", "late")};
    commit_args late = {1, before_del, 17, 1, w6, 1, NULL, 0, NULL, 0};
    assert_int_equal(commit(f, l, &late, NULL, &r), RANGE_ERR_CONFLICT);
    assert_int_equal(r.conflict_kind, RANGE_CONFLICT_WRITE_WRITE);
    range_kv_response_free(&r);

    /* range 2: phantom in a scanned span */
    hlc_timestamp r1 = client_now(f);
    range_write w7[] = {W("pa", "1")};
    commit_args p = {2, r1, 18, 1, w7, 1, NULL, 0, NULL, 0};
    assert_int_equal(commit(f, l2, &p, NULL, NULL), RANGE_OK);
    range_write w8[] = {W("zz", "1")};
    range_span s2[] = {SPAN("p", "q")};
    commit_args ph = {2, r1, 19, 1, w8, 1, NULL, 0, s2, 1};
    assert_int_equal(commit(f, l2, &ph, NULL, &r), RANGE_ERR_CONFLICT);
    assert_int_equal(r.conflict_kind, RANGE_CONFLICT_PHANTOM);
    assert_memory_equal(r.conflict_key, "pa", 2);
    range_kv_response_free(&r);

    /* bad requests: unsorted writes, a point delete span */
    range_write unsorted[] = {W("b", "1"), W("a", "1")};
    commit_args u = {1, client_now(f), 20, 1, unsorted, 2, NULL, 0, NULL, 0};
    assert_int_equal(commit(f, l, &u, NULL, NULL), RANGE_ERR_INVALID);
    range_span pdel[] = {POINT("a")};
    commit_args pd = {1, client_now(f), 21, 1, NULL, 0, pdel, 1, NULL, 0};
    assert_int_equal(commit(f, l, &pd, NULL, NULL), RANGE_ERR_INVALID);
    /* read-only: at read_ts, nothing proposed */
    uint64_t proposed = range__server_counter_get(f->srv[l], RANGE__SERVER_PROPOSED);
    hlc_timestamp ro_ts = client_now(f);
    commit_args ro = {1, ro_ts, 22, 1, NULL, 0, NULL, 0, rs, 1};
    range_kv_request q = commit_req(&ro);
    assert_int_equal(call(f, l, &q, &r), RANGE_OK);
    assert_int_equal(hlc_compare(r.commit_ts, ro_ts), 0);
    range_kv_response_free(&r);
    assert_int_equal(range__server_counter_get(f->srv[l], RANGE__SERVER_PROPOSED), proposed);
}

typedef struct commit_thread {
    fixture *f;
    int node;
    commit_args a;
    int32_t status;
    hlc_timestamp ts;
    atomic_bool done;
} commit_thread;

static void *commit_main(void *arg)
{
    commit_thread *t = arg;
    range_kv_request q = commit_req(&t->a);
    range_kv_response r;
    t->status = call(t->f, t->node, &q, &r);
    t->ts = r.commit_ts;
    range_kv_response_free(&r);
    atomic_store(&t->done, true);
    return NULL;
}

typedef struct get_thread {
    fixture *f;
    int node;
    uint64_t range_id;
    const char *key;
    hlc_timestamp ts;
    int32_t status;
    char value[32];
    atomic_bool done;
} get_thread;

static void *get_main(void *arg)
{
    get_thread *t = arg;
    t->status = get(t->f, t->node, t->range_id, t->key, t->ts, t->value, sizeof(t->value));
    atomic_store(&t->done, true);
    return NULL;
}

static bool is_done(fixture *f, void *arg)
{
    (void)f;
    return atomic_load((atomic_bool *)arg);
}

static void partition_out(fixture *f, int from, bool blocked)
{
    pthread_mutex_lock(&f->sim_mu);
    for (int i = 1; i <= NODES; i++)
        if (i != from)
            rpc_sim_partition(f->net, (rpc_node_id)from, (rpc_node_id)i, blocked);
    pthread_mutex_unlock(&f->sim_mu);
}

static void test_read_waits_for_pending_commit(void **state)
{
    fixture *f = *state;
    int l = wait_leader(f, 1, 0);
    hlc_timestamp t0 = client_now(f);
    range_write w0[] = {W("g", "old")};
    commit_args a0 = {1, t0, 30, 1, w0, 1, NULL, 0, NULL, 0};
    assert_int_equal(commit(f, l, &a0, NULL, NULL), RANGE_OK);
    hlc_timestamp before = client_now(f);

    /* Freeze time (the lease stays valid, nobody campaigns) and cut the
    ** leader's outgoing frames: a proposal cannot commit. */
    atomic_store(&f->ticking, false);
    partition_out(f, l, true);
    uint64_t p0 = range__server_counter_get(f->srv[l], RANGE__SERVER_PROPOSED);
    commit_thread ct = {.f = f, .node = l};
    range_write w1[] = {W("g", "new")};
    ct.a = (commit_args){1, client_now(f), 31, 1, w1, 1, NULL, 0, NULL, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, commit_main, &ct), 0);
    assert_true(range__server_wait_counter(f->srv[l], RANGE__SERVER_PENDING, 1, false, WAIT_MS));

    uint64_t proposed = p0 + 1; /* ct's proposal, and no other from here on */
    assert_true(
        range__server_wait_counter(f->srv[l], RANGE__SERVER_PROPOSED, proposed, false, WAIT_MS));
    /* a retry of the pending commit waits for the same proposal */
    commit_thread rt = {.f = f, .node = l, .a = ct.a};
    pthread_t rth;
    assert_int_equal(pthread_create(&rth, NULL, commit_main, &rt), 0);
    /* conflicts with the pending (proposed, unapplied) commit */
    range_write w2[] = {W("g", "other")};
    commit_args ww = {1, before, 32, 1, w2, 1, NULL, 0, NULL, 0};
    range_kv_response r;
    assert_int_equal(commit(f, l, &ww, NULL, &r), RANGE_ERR_CONFLICT);
    assert_int_equal(r.conflict_kind, RANGE_CONFLICT_WRITE_WRITE);
    assert_memory_equal(r.conflict_key, "g", 1);
    assert_true(r.conflict_pending);
    range_kv_response_free(&r);
    range_write w3[] = {W("h", "x")};
    range_span rs[] = {SPAN("f", "h")};
    commit_args rw = {1, before, 33, 1, w3, 1, NULL, 0, rs, 1};
    assert_int_equal(commit(f, l, &rw, NULL, &r), RANGE_ERR_CONFLICT);
    assert_int_equal(r.conflict_kind, RANGE_CONFLICT_READ_WRITE); /* g was live */
    assert_true(r.conflict_pending);
    range_kv_response_free(&r);

    /* below the pending commit's timestamp: served at once, old value */
    char v[32];
    assert_int_equal(get(f, l, 1, "g", before, v, sizeof(v)), RANGE_OK);
    assert_string_equal(v, "old");
    assert_int_equal(range__server_counter_get(f->srv[l], RANGE__SERVER_READ_WAITS), 0);

    /* at or above it (it is at most the leader's clock or its low-water
    ** mark, <= clock + max_offset): the read waits */
    get_thread gt = {.f = f, .node = l, .range_id = 1, .key = "g",
                     .ts = hlc_add_ns(hlc_now(f->clock[l]), 2 * MAX_OFFSET_NS)};
    pthread_t gth;
    assert_int_equal(pthread_create(&gth, NULL, get_main, &gt), 0);
    assert_true(range__server_wait_counter(f->srv[l], RANGE__SERVER_READ_WAITS, 1, false, WAIT_MS));
    assert_false(atomic_load(&gt.done));
    assert_false(atomic_load(&ct.done));

    partition_out(f, l, false);
    atomic_store(&f->ticking, true);
    assert_true(wait_until(f, is_done, &gt.done));
    assert_true(wait_until(f, is_done, &ct.done));
    pthread_join(gth, NULL);
    pthread_join(th, NULL);
    assert_true(wait_until(f, is_done, &rt.done));
    pthread_join(rth, NULL);
    assert_int_equal(ct.status, RANGE_OK);
    assert_int_equal(rt.status, RANGE_OK);
    assert_int_equal(hlc_compare(ct.ts, rt.ts), 0);
    assert_int_equal(range__server_counter_get(f->srv[l], RANGE__SERVER_PROPOSED), proposed);
    assert_true(hlc_compare(ct.ts, gt.ts) <= 0);
    assert_int_equal(gt.status, RANGE_OK);
    assert_string_equal(gt.value, "new");
    assert_true(range__server_wait_counter(f->srv[l], RANGE__SERVER_PENDING, 0, true, WAIT_MS));
}

typedef struct applied_query {
    uint64_t txn, seq;
    int want;
} applied_query;

static bool applied_everywhere(fixture *f, void *arg)
{
    applied_query *q = arg;
    int applied, dups;
    count_applies(f, q->txn, q->seq, &applied, &dups);
    return applied >= q->want;
}

static int versions_of(storage_engine *e, const char *key)
{
    storage_iter_options o;
    memset(&o, 0, sizeof(o));
    o.start = (const uint8_t *)key;
    o.start_len = strlen(key);
    char end[64];
    snprintf(end, sizeof(end), "%s%c", key, 0);
    o.end = (const uint8_t *)end;
    o.end_len = strlen(key) + 1;
    o.mode = STORAGE_ITER_ALL_VERSIONS;
    storage_iter *it = NULL;
    assert_int_equal(storage_iter_open(e, NULL, &o, &it), STORAGE_OK);
    int n = 0;
    while (storage_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL) == 1)
        n++;
    storage_iter_close(it);
    return n;
}

static void test_retry_is_idempotent(void **state)
{
    fixture *f = *state;
    int l = wait_leader(f, 1, 0);
    range_write w[] = {W("idem", "1")};
    commit_args a = {1, client_now(f), 7, 42, w, 1, NULL, 0, NULL, 0};
    hlc_timestamp c1, c2;
    assert_int_equal(commit(f, l, &a, &c1, NULL), RANGE_OK);
    assert_true(hlc_compare(c1, a.read_ts) > 0);
    uint64_t proposed = range__server_counter_get(f->srv[l], RANGE__SERVER_PROPOSED);
    /* the same (txn, nonce) again, even with a later read timestamp */
    a.read_ts = client_now(f);
    assert_int_equal(commit(f, l, &a, &c2, NULL), RANGE_OK);
    assert_int_equal(hlc_compare(c1, c2), 0);
    assert_int_equal(range__server_counter_get(f->srv[l], RANGE__SERVER_PROPOSED), proposed);

    /* concurrent duplicates of a new commit: one proposal, one timestamp */
    commit_thread t[4];
    pthread_t th[4];
    range_write w2[] = {W("idem2", "x")};
    hlc_timestamp rt = client_now(f);
    for (int i = 0; i < 4; i++) {
        t[i] = (commit_thread){.f = f, .node = l};
        t[i].a = (commit_args){1, rt, 8, 1, w2, 1, NULL, 0, NULL, 0};
        assert_int_equal(pthread_create(&th[i], NULL, commit_main, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].status, RANGE_OK);
        assert_int_equal(hlc_compare(t[i].ts, t[0].ts), 0);
    }
    applied_query q1 = {7, 42, NODES}, q2 = {8, 1, NODES};
    assert_true(wait_until(f, applied_everywhere, &q1));
    assert_true(wait_until(f, applied_everywhere, &q2));
    int applied, dups;
    count_applies(f, 7, 42, &applied, &dups);
    assert_int_equal(applied, NODES);
    assert_int_equal(dups, 0);
    count_applies(f, 8, 1, &applied, &dups);
    assert_int_equal(applied, NODES);
    for (int i = 1; i <= NODES; i++) {
        assert_int_equal(versions_of(f->engine[i], "idem"), 1);
        assert_int_equal(versions_of(f->engine[i], "idem2"), 1);
    }
}

static void test_leader_change(void **state)
{
    fixture *f = *state;
    int l = wait_leader(f, 1, 0);
    range_write w[] = {W("lc1", "1")};
    commit_args a = {1, client_now(f), 40, 1, w, 1, NULL, 0, NULL, 0};
    assert_int_equal(commit(f, l, &a, NULL, NULL), RANGE_OK);
    /* The others' clocks before the change: the new leader's low-water is
    ** above its clock at the start of its term + max_offset. */
    hlc_timestamp floor = HLC_ZERO;
    for (int i = 1; i <= NODES; i++)
        if (i != l && hlc_compare(hlc_now(f->clock[i]), floor) > 0)
            floor = hlc_now(f->clock[i]);

    pthread_mutex_lock(&f->sim_mu);
    rpc_sim_isolate(f->net, (rpc_node_id)l, true);
    pthread_mutex_unlock(&f->sim_mu);
    /* A commit at the isolated leader cannot be acknowledged. */
    range_write wa[] = {W("lc-amb", "1")};
    commit_args amb = {1, client_now(f), 41, 1, wa, 1, NULL, 0, NULL, 0};
    range_kv_response r;
    int32_t st = commit(f, l, &amb, NULL, &r);
    assert_true(st == RANGE_ERR_AMBIGUOUS || st == RANGE_ERR_NOT_LEADER ||
                st == RANGE_ERR_UNAVAILABLE);
    range_kv_response_free(&r);

    int nl = wait_leader(f, 1, l);
    assert_true(nl != l);
    range_write w2[] = {W("lc2", "2")};
    commit_args b = {1, client_now(f), 42, 1, w2, 1, NULL, 0, NULL, 0};
    hlc_timestamp cts;
    assert_int_equal(commit(f, nl, &b, &cts, NULL), RANGE_OK);
    assert_true(hlc_compare(cts, hlc_add_ns(floor, MAX_OFFSET_NS)) > 0);
    /* answered only once the clock passed it (commit wait) */
    assert_true(hlc_physical_now_ns(f->clock[nl]) > cts.wall_ns);
    assert_true(range__server_counter_get(f->srv[nl], RANGE__SERVER_COMMIT_WAITS) >= 1);
    assert_true(range__server_counter_get(f->srv[nl], RANGE__SERVER_TERMS) >= 1);
    /* the ambiguous commit retried at the new leader: decided by the record */
    amb.read_ts = client_now(f);
    hlc_timestamp amb_ts;
    assert_int_equal(commit(f, nl, &amb, &amb_ts, NULL), RANGE_OK);
    char v[32];
    assert_int_equal(get(f, nl, 1, "lc1", client_now(f), v, sizeof(v)), RANGE_OK);
    assert_string_equal(v, "1");
    assert_int_equal(get(f, nl, 1, "lc-amb", client_now(f), v, sizeof(v)), RANGE_OK);

    /* heal: the old leader follows, answers NOT_LEADER with the new one */
    pthread_mutex_lock(&f->sim_mu);
    rpc_sim_isolate(f->net, (rpc_node_id)l, false);
    pthread_mutex_unlock(&f->sim_mu);
    applied_query q = {41, 1, NODES};
    assert_true(wait_until(f, applied_everywhere, &q));
    int applied, dups;
    count_applies(f, 41, 1, &applied, &dups);
    assert_int_equal(applied, NODES); /* once per replica, whatever happened */
    assert_int_equal(dups, 0);
    assert_true(range__server_wait_counter(f->srv[l], RANGE__SERVER_PENDING, 0, true, WAIT_MS));
    range_kv_request g = get_req(1, "lc2", client_now(f));
    assert_int_equal(call(f, l, &g, &r), RANGE_ERR_NOT_LEADER);
    assert_int_equal(r.leader_hint, (uint64_t)nl);
    range_kv_response_free(&r);
    for (int i = 1; i <= NODES; i++)
        assert_int_equal(versions_of(f->engine[i], "lc-amb"), 1);
}

static void test_key_mismatch(void **state)
{
    fixture *f = *state;
    int l = wait_leader(f, 1, 0);
    range_kv_request g = get_req(1, "zebra", client_now(f));
    range_kv_response r;
    assert_int_equal(call(f, l, &g, &r), RANGE_ERR_KEY_MISMATCH);
    assert_true(r.has_descriptor);
    assert_int_equal(r.descriptor.range_id, 1);
    assert_int_equal(r.descriptor.start_len, 0);
    assert_int_equal(r.descriptor.end_len, 1);
    assert_memory_equal(r.descriptor.end_key, "m", 1);
    range_kv_response_free(&r);
    /* writes, read spans with an open end, scans past the end */
    range_write w[] = {W("a", "1"), W("zz", "1")};
    commit_args a = {1, client_now(f), 50, 1, w, 2, NULL, 0, NULL, 0};
    assert_int_equal(commit(f, l, &a, NULL, &r), RANGE_ERR_KEY_MISMATCH);
    assert_true(r.has_descriptor);
    range_kv_response_free(&r);
    range_span open_end[] = {{(const uint8_t *)"a", 1, NULL, 0, false}};
    commit_args b = {1, client_now(f), 51, 1, w, 1, NULL, 0, open_end, 1};
    assert_int_equal(commit(f, l, &b, NULL, NULL), RANGE_ERR_KEY_MISMATCH);
    range_kv_request s = {.op = RANGE_KV_SCAN, .range_id = 1, .read_ts = client_now(f),
                          .start = (const uint8_t *)"a", .start_len = 1,
                          .end = (const uint8_t *)"n", .end_len = 1};
    assert_int_equal(call(f, l, &s, &r), RANGE_ERR_KEY_MISMATCH);
    range_kv_response_free(&r);
    /* a range this node has no replica of */
    g.range_id = 99;
    assert_int_equal(call(f, l, &g, &r), RANGE_ERR_NOT_LEADER);
    assert_int_equal(r.leader_hint, 0);
    range_kv_response_free(&r);
    /* a read timestamp no clock can have */
    g = get_req(1, "a", (hlc_timestamp){-1, 0});
    assert_int_equal(call(f, l, &g, &r), RANGE_ERR_INVALID);
    range_kv_response_free(&r);
}

static void test_malformed_requests(void **state)
{
    fixture *f = *state;
    int l = wait_leader(f, 1, 0);
    base_buf good = {0}, out = {0};
    range_kv_request g = get_req(1, "a", client_now(f));
    assert_int_equal(range_kv_request_encode(&g, &good), RANGE_OK);
    /* every strict prefix, and every single flipped byte */
    for (size_t n = 0; n < good.len; n++) {
        uint8_t *copy = malloc(n + 1); /* exact size: ASan sees any overread */
        memcpy(copy, good.data, n);
        int32_t st = range_server_call(f->srv[l], n ? copy : NULL, n, &out);
        assert_int_equal(st, RANGE_ERR_CORRUPT);
        range_kv_response r;
        assert_int_equal(range_kv_response_decode(out.data, out.len, &r), RANGE_OK);
        assert_int_equal(r.status, RANGE_ERR_CORRUPT);
        range_kv_response_free(&r);
        free(copy);
    }
    for (size_t i = 0; i < good.len; i++) {
        uint8_t *copy = malloc(good.len);
        memcpy(copy, good.data, good.len);
        copy[i] ^= 0xFF;
        int32_t st = range_server_call(f->srv[l], copy, good.len, &out);
        assert_true(st <= RANGE_NOT_FOUND); /* anything, answered, no crash */
        free(copy);
    }
    /* trailing bytes */
    uint8_t *longer = malloc(good.len + 1);
    memcpy(longer, good.data, good.len);
    longer[good.len] = 0;
    assert_int_equal(range_server_call(f->srv[l], longer, good.len + 1, &out), RANGE_ERR_CORRUPT);
    free(longer);
    /* over the network */
    range_kv_response r;
    const uint8_t junk[] = {0xde, 0xad, 0xbe, 0xef};
    assert_int_equal(rpc_call_raw(f, l, junk, sizeof(junk), &r), RANGE_ERR_CORRUPT);
    range_kv_response_free(&r);
    /* junk Raft bytes to the node's forwarder: consumed, dropped */
    rpc_message m = {.from = 2, .method = RANGE_RPC_METHOD_RAFT, .payload = junk,
                     .payload_len = sizeof(junk)};
    assert_true(range_node_handle_rpc(f->rn[1], &f->tp[1].base, &m));
    m.method = RANGE_RPC_METHOD_KV;
    assert_false(range_node_handle_rpc(f->rn[1], &f->tp[1].base, &m));
    /* the servers still work */
    char v[8];
    assert_true(get(f, l, 1, "a", client_now(f), v, sizeof(v)) == RANGE_NOT_FOUND);
    base_buf_free(&good);
    base_buf_free(&out);
}

typedef struct pipe_thread {
    fixture *f;
    int node, id;
    int ok;
} pipe_thread;

static void *pipe_main(void *arg)
{
    pipe_thread *t = arg;
    for (int i = 0; i < PIPE_COMMITS; i++) {
        char key[32];
        snprintf(key, sizeof(key), "p%02d-%02d", t->id, i);
        range_write w = {(const uint8_t *)key, strlen(key), (const uint8_t *)"v", 1, false};
        commit_args a = {2, hlc_now(t->f->clock[CLIENT]), 1000 + (uint64_t)t->id, (uint64_t)i,
                         &w, 1, NULL, 0, NULL, 0};
        range_kv_request q = commit_req(&a);
        range_kv_response r;
        if (call(t->f, t->node, &q, &r) == RANGE_OK)
            t->ok++;
        range_kv_response_free(&r);
    }
    return NULL;
}

static void test_pipelined_commits(void **state)
{
    fixture *f = *state;
    int l = wait_leader(f, 2, 0);
    pipe_thread t[PIPE_THREADS];
    pthread_t th[PIPE_THREADS];
    for (int i = 0; i < PIPE_THREADS; i++) {
        t[i] = (pipe_thread){f, l, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, pipe_main, &t[i]), 0);
    }
    for (int i = 0; i < PIPE_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].ok, PIPE_COMMITS);
    }
    range_kv_request q = {.op = RANGE_KV_SCAN, .range_id = 2, .read_ts = client_now(f),
                          .start = (const uint8_t *)"p", .start_len = 1,
                          .end = (const uint8_t *)"q", .end_len = 1};
    /* the client clock saw no commit timestamp here: move it past the leader's */
    (void)hlc_update(f->clock[CLIENT], hlc_now(f->clock[l]));
    q.read_ts = client_now(f);
    range_kv_response r;
    assert_int_equal(call(f, l, &q, &r), RANGE_OK);
    assert_int_equal(r.n_rows, PIPE_THREADS * PIPE_COMMITS);
    assert_false(r.more);
    range_kv_response_free(&r);
}

int main(void)
{
    if (getenv("TEST_DEBUG"))
        base_log_set_level(BASE_LOG_DEBUG);
    printf("test_range_server: seed %llu (MERIDIAN_SEED replays the network's choices)\n",
           (unsigned long long)test_seed());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_then_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_waits_for_pending_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leader_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_commits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
