/*
** server/srv_node.c: a running cluster node. Identity and bootstrap, join,
** peer table, liveness heartbeats, node status, and the wiring of the
** cluster stack over one rpc_uv transport (docs/cluster.md).
**
** Threads:
**   loop      the transport's; runs on_rpc (dispatch by method: Raft to
**             range_node_handle_rpc, KV to range_server_handle_rpc, PROBE
**             (of a node or root) and the test-only FAULT (srv_fault.c)
**             answered at once, a user's PROBE and
**             INIT/BOOTSTRAP/JOIN/STATUS/RANGES/DRAIN/
**             DECOMMISSION queued as jobs)
**             and on_foreign (SQL on the RPC port). Never blocks.
**             Admin tools with a client certificate (rpc_message.peer_user)
**             reach only srv_admin_methods; the control thread checks the
**             user (job_admin_allowed) before it runs their job.
**   control   runs the jobs one at a time, and while uninitialized sends
**             JOIN to the --join addresses (one in flight, bounded backoff).
**             The only thread that restarts the transport or builds the
**             stack.
**   periodic  once the stack exists: clock pings (every peer, every
**             SRV_CLOCK_PING_MS; answers feed the HLC's epsilon on the loop
**             thread), liveness heartbeat, peer refresh, the replicate
**             queue (srv_replicate.c: its changes are stepped, never
**             waited for), meta repair (and the entries merges made
**             stale), the merge watchdog (a led range frozen by a merge for
**             SRV_FROZEN_MAX_MS is fenced and unfrozen through the router:
**             docs/range.md, "Merges"), opening the SQL engine and the
**             gateway.
**   ticker    range_node_tick every tick_ms.
**   splitq    once the stack exists (started by periodic): reads the
**             cluster settings every 2 s and splits the ranges this node
**             leads that outgrew range_max_bytes (srv_splitq.c); its
**             splits block it, never periodic.
**   mergeq    once SQL is open (started by periodic): merges the small,
**             cold ranges this node leads with their right-hand
**             neighbours (srv_mergeq.c); its merges block it, never
**             periodic.
**   rebalancer once SQL is open (started by periodic): elects one node of
**             the cluster, which balances replicas and leases
**             (srv_rebalance.c); its moves block it, never periodic.
**   replq     once SQL is open (started by periodic): runs the replicate
**             queue's phases (txn_db_change_replicas, srv_replicate.c);
**             periodic only hands them over and polls.
**
** Critical invariants:
**   - the transport is replaced at most once (uninitialized -> initialized),
**     by the control thread, before the stack exists; the stack is bound to
**     the transport that exists when it is built and lives until stop;
**   - n->mu is never held across a blocking call, rpc_uv_free or a KV
**     transaction; handlers (loop thread) take it only to read pointers and
**     to call non-blocking hand-offs (range_server_handle_rpc,
**     gw_adopt_connection), so unpublishing a pointer under n->mu is a
**     barrier: no hand-off to it starts afterwards;
**   - identity, peers, ranges and (bootstrap) the initial KV data are
**     persisted in one synced batch before the node answers BOOTSTRAP or
**     uses its real node id; a node never changes its cluster or node id;
**   - every wait has a bound (rpc deadlines, SRV_* windows, condvar
**     timeouts) and every queue a maximum (SRV_JOBS_MAX);
**   - CLOCK SAFETY: while the HLC's epsilon is UNBOUNDED the node evaluates
**     no KV request as leaseholder (range_server may_serve), begins no
**     transaction (txn_db require_clock_bound) and hands its leases away;
**     at most one clock ping per peer is in flight;
**   - membership (docs/operations.md): only DECOMMISSION writes it, in a
**     serializable read-modify-write of the liveness record, which the
**     heartbeat carries over in its own; a decommissioned node's rpc is
**     refused (refuse_sender) and a node that learns it is decommissioned
**     does no KV work any more; a draining node refuses new SQL sessions
**     on its RPC port.
** Stop order: the router shut down (every KV operation ends within
** SRV_STOP_GRACE_MS, whatever the peers do; the ticker then ends the range
** server's waits); control, periodic, splitq and mergeq joined; gateway unpublished and stopped;
** SQL engine and txn_db closed; range_server unpublished and freed (its
** workers answer through the live transport); range_node_forget_transport
** (the node's log syncer sends from its own thread); rpc_uv_free (no
** handler runs after it); ticker joined; router; range_node; the Raft log.
*/
#define _GNU_SOURCE
#include "server/srv_int.h"
#include "server/srv_mergeq.h"
#include "server/srv_ranges.h"
#include "server/srv_rebalance.h"
#include "server/srv_splitq.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gateway/gateway.h"
#include "sql/sql.h"
#include "txn/txn.h"

#define MOD "srv"

#define SRV_JOBS_MAX 64                 /* queued INIT/BOOTSTRAP/JOIN/STATUS */
#define SRV_PROBE_WINDOW_MS 5000        /* INIT: how long to look for --join nodes */
#define SRV_PROBE_TIMEOUT_MS 1000       /* one probe */
#define SRV_PROBE_RETRY_MS 250          /* pause between probe rounds */
#define SRV_BOOTSTRAP_TIMEOUT_MS 5000   /* one BOOTSTRAP request */
#define SRV_BOOTSTRAP_WINDOW_MS 20000   /* all attempts for one node */
#define SRV_JOIN_TIMEOUT_MS 15000       /* one JOIN request (the answer needs a txn) */
#define SRV_JOIN_BACKOFF_MIN_MS 500
#define SRV_JOIN_BACKOFF_MAX_MS 5000
#define SRV_TXN_ATTEMPTS_MAX 8          /* a system txn retried on 40001 */
#define SRV_TICK_CATCHUP_MAX 50         /* missed ticks delivered after a pause (5 s) */
#define SRV_BIND_ATTEMPTS_MAX 50        /* transport restart: re-bind tries */
#define SRV_BIND_RETRY_MS 100
#define SRV_SQL_RETRY_MS 1000           /* opening the SQL engine again */
#define SRV_SCAN_ROWS_MAX (2 * SRV_PEERS_MAX) /* rows read from a system span */
#define SRV_META_REPAIR_MS 10000        /* meta entries of led ranges checked */
#define SRV_META_DELETES_MAX 64         /* stale meta entries dropped per repair */
#define SRV_FROZEN_WATCH_MS 1000        /* the merge watchdog looks at led ranges */
#define SRV_FROZEN_MAX_MS 10000         /* a range frozen this long is unfrozen */
#define SRV_FROZEN_TRACKED_MAX 64       /* frozen ranges the watchdog follows */
#define SRV_CLOCK_PING_MS 1000          /* clock-offset pings to every peer */
#define SRV_CLOCK_TIMEOUT_MS 1000       /* one ping (a slower answer is useless) */
#define SRV_CLOCK_FIRST_ROUND_MS 1000   /* grace at start: wait for the first answers */
#define SRV_CLOCK_FORGET_SILENT_MS 10000 /* a dead peer silent this long leaves the bound */
#define SRV_REPLICATE_SCAN_MS 2000      /* the replicate queue looks at the led ranges */
#define SRV_STOP_GRACE_MS 1000          /* stop: KV work in flight gets this long, then its
                                           waits end with an error (whatever the peers do) */

/* A peer as the clock-offset pings see it (docs/clocks.md, section 3). */
typedef struct srv__clock_peer {
    uint64_t id;
    bool inflight;       /* a ping is out (one at a time) */
    bool dead;           /* its liveness record says dead (refresh_peers) */
    bool forgotten;      /* dropped from the HLC's tracked peers */
    bool decommissioned; /* its liveness record says so: not pinged, forgotten */
    int64_t seen_ns;     /* monotonic: last answer, or when it was first listed */
} srv__clock_peer;

typedef struct srv__job {
    uint32_t method;
    uint64_t from;
    uint64_t request_id;
    uint8_t *payload; /* owned by the job */
    size_t len;
    /* An admin tool's client certificate user (rpc_message.peer_user); "":
    ** a node certificate, or plaintext. */
    char user[SEC_USER_SIZE_MAX + 1];
} srv__job;

struct srv_node {
    srv_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC: jobs, join answers, stack, stop */
    bool stopping;

    /* Identity and tables (mu). Replaced only by the control thread. */
    srv__state st;
    uint64_t provisional_id;
    uint64_t join_token;
    srv_addr self_rpc; /* advertised RPC address (bound port) */
    srv_addr self_sql; /* advertised SQL address (port 0 until known) */
    uint64_t seed;

    /* Transport (mu for readers off the control thread). */
    rpc_uv *uv;
    int rpc_port;

    /* The shared Raft log (cfg.raft_log_dir; NULL: raw keyspace logs):
    ** opened at start, closed at stop after rnode. */
    raft_log *rlog;

    /* The stack, published under mu once built. */
    range_node *rnode;
    range_server *rserver;
    range_router *router;
    txn_db *db;
    bool stack_ready;
    sqlv_engine *sql;
    gw_server *gw;
    bool sql_ready;

    /* Jobs (mu). */
    srv__job jobs[SRV_JOBS_MAX];
    size_t job_head, job_count;

    /* The JOIN attempt in flight while uninitialized (mu). */
    bool join_inflight;
    bool join_done;
    int join_rc;
    int32_t join_status;
    base_buf join_payload; /* owned */
    size_t join_next;
    int64_t join_at_ns;
    int64_t join_backoff_ms;
    char join_addr_text[SRV_HOST_SIZE_MAX + 16];

    /* Clock pings: clock_peers, n_clock_peers, clock_inflight and
    ** clock_round_now under mu (answers arrive on the loop thread); the
    ** logged status is the periodic thread's. */
    srv__clock_peer clock_peers[SRV_PEERS_MAX];
    size_t n_clock_peers;
    int clock_inflight;
    bool clock_round_now; /* ping at once (a node just joined) */
    uint64_t clock_rounds;
    bool clock_logged;    /* a clock status was logged (after the grace) */
    hlc_epsilon_status clock_logged_status;

    /* The replicate queue (periodic thread; srv_replicate.c). Freed after
    ** range_node_free: its slots are the contexts of pending step callbacks. */
    srv__replq replq;

    /* SHOW RANGES, ALTER RANGE and the range event log (srv_ranges.c): its
    ** stack pointers are set before the gateway starts. */
    srv__admin admin;

    /* Cluster settings in memory and the size-based split queue
    ** (srv_splitq.c): the queue's thread starts with the stack (periodic
    ** thread) and is joined at stop before the stack goes. */
    srv_settings settings;
    srv__splitq splitq;
    /* The merge queue (srv_mergeq.c): started once SQL is open (it reads
    ** the cluster through admin), joined at stop with the split queue's. */
    srv__mergeq mergeq;
    /* The rebalancer (srv_rebalance.c): its thread starts once SQL is open
    ** (it reads the cluster through admin) and is joined at stop with the
    ** split queue's. */
    srv__rebal rebal;

    /* Liveness (periodic thread only). */
    uint64_t epoch;
    bool heartbeat_failing;
    bool sql_open_failing;

    /* Drain and decommission (docs/operations.md). draining, recorded and
    ** heartbeat_now under mu; the decommissioned ids under mu, their count
    ** also atomic so on_rpc skips the lock while there are none. */
    bool draining;           /* DRAIN ran: hand leases away, refuse new SQL */
    bool draining_recorded;  /* a heartbeat wrote draining into the record */
    bool heartbeat_now;      /* write the liveness record at once */
    bool self_decommissioned; /* learned from liveness or a refusal: no more KV work */
    uint64_t decommissioned[SRV_PEERS_MAX]; /* nodes whose rpc is refused */
    _Atomic size_t n_decommissioned;

    pthread_t control, periodic, ticker;
    bool control_started, periodic_started, ticker_started;
    bool tick_stop; /* mu */
    /* stop (mu): when the grace of KV work in flight ends, and whether the
    ** ticker has shut the range server's waits since */
    int64_t stop_grace_end_ns;
    bool rserver_shut;

    /* The merge watchdog (periodic thread only): led ranges seen frozen by
    ** a merge, and since when (docs/range.md, "Merges"). */
    struct {
        uint64_t range_id, merge_id;
        int64_t since_ns;
    } frozen[SRV_FROZEN_TRACKED_MAX];
    size_t n_frozen;
};

/* ---- small helpers ------------------------------------------------------------ */

static int64_t mono_ns(void) { return base_monotonic_ns(); }
static int64_t mono_clock(void *ctx) { (void)ctx; return base_monotonic_ns(); }

/* Wait on n->cond until deadline (monotonic ns) or a signal. mu held. */
static void wait_until(srv_node *n, int64_t deadline_ns) {
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
    pthread_cond_timedwait(&n->cond, &n->mu, &ts);
}

/* Pause up to ms unless stopping. Returns false when stopping. */
static bool pause_ms(srv_node *n, int64_t ms) {
    int64_t deadline = mono_ns() + ms * 1000000;
    pthread_mutex_lock(&n->mu);
    while (!n->stopping && mono_ns() < deadline) wait_until(n, deadline);
    bool go_on = !n->stopping;
    pthread_mutex_unlock(&n->mu);
    return go_on;
}

static bool is_stopping(srv_node *n) {
    pthread_mutex_lock(&n->mu);
    bool s = n->stopping;
    pthread_mutex_unlock(&n->mu);
    return s;
}

/* Answer a request on the current transport (control thread). */
static void respond(srv_node *n, uint64_t to, uint64_t request_id, int32_t status,
                    const void *payload, size_t len) {
    pthread_mutex_lock(&n->mu);
    rpc_uv *uv = n->uv;
    pthread_mutex_unlock(&n->mu);
    /* Only the control thread replaces n->uv, and it is the caller. */
    if (uv != NULL) rpc_respond(rpc_uv_transport(uv), to, request_id, status, payload, len);
}

static void respond_error(srv_node *n, uint64_t to, uint64_t request_id, int32_t status,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void respond_error(srv_node *n, uint64_t to, uint64_t request_id, int32_t status,
                          const char *fmt, ...) {
    char msg[SRV_MESSAGE_SIZE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    respond(n, to, request_id, status, msg, strlen(msg));
}

static void fatal(srv_node *n, const char *msg) {
    BASE_ERROR(MOD, "%s", msg);
    if (n->cfg.on_fatal != NULL) n->cfg.on_fatal(n->cfg.callback_ctx, msg);
}

/* range_server's may_serve: evaluate as leaseholder only with a bounded
** clock (any thread, never blocks for long: the HLC's mutex). */
static bool clock_may_serve(void *ctx) {
    srv_node *n = ctx;
    return hlc_epsilon(n->cfg.clock, NULL) == HLC_EPSILON_OK;
}

/* range_server's gc_ttl_seconds: the cluster setting as last read (the
** split queue's thread refreshes it; never blocks for long). */
static int64_t gc_ttl_seconds(void *ctx) {
    srv_node *n = ctx;
    return srv_setting_get_int(&n->settings, SQLV_SETTING_GC_TTL_SECONDS);
}

/* range_router's known_nodes: the peer table, asked when none of the
** cached replicas of the first range hosts it any more (range/router.c).
** Takes mu, which is never held across a KV call. */
static size_t router_known_nodes(void *ctx, uint64_t *out, size_t cap) {
    srv_node *n = ctx;
    size_t k = 0;
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < n->st.n_peers && k < cap; i++) out[k++] = n->st.peers[i].node_id;
    pthread_mutex_unlock(&n->mu);
    return k;
}

/* The clock-ping entry of a peer, or NULL. mu held. */
static srv__clock_peer *clock_peer_locked(srv_node *n, uint64_t id) {
    for (size_t i = 0; i < n->n_clock_peers; i++)
        if (n->clock_peers[i].id == id) return &n->clock_peers[i];
    return NULL;
}

static bool descriptor_has(const range_descriptor *d, uint64_t node_id) {
    for (size_t i = 0; i < d->n_replicas; i++) {
        if (d->replicas[i] == node_id) return true;
    }
    return false;
}

/* ---- the rpc handler (loop thread) ---------------------------------------------- */

static void enqueue_job(srv_node *n, rpc_transport *t, const rpc_message *msg) {
    uint8_t *copy = NULL;
    if (msg->payload_len > 0) {
        copy = base_malloc(msg->payload_len); /* owner: the job */
        if (copy == NULL) {
            rpc_respond(t, msg->from, msg->request_id, SRV_ERR_NOMEM, NULL, 0);
            return;
        }
        memcpy(copy, msg->payload, msg->payload_len);
    }
    pthread_mutex_lock(&n->mu);
    if (n->job_count == SRV_JOBS_MAX || n->stopping) {
        pthread_mutex_unlock(&n->mu);
        base_free(copy);
        static const char busy[] = "node busy: too many requests queued, retry";
        rpc_respond(t, msg->from, msg->request_id, SRV_ERR_BUSY, busy, sizeof busy - 1);
        return;
    }
    srv__job *j = &n->jobs[(n->job_head + n->job_count) % SRV_JOBS_MAX];
    *j = (srv__job){msg->method, msg->from, msg->request_id, copy, msg->payload_len, ""};
    if (msg->peer_user != NULL) base_strlcpy(j->user, msg->peer_user, sizeof j->user);
    n->job_count++;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->mu);
}

/* PROBE's answer into b (any thread). SRV_OK or SRV_ERR_NOMEM. */
static int probe_encode(srv_node *n, base_buf *b) {
    srv__probe_resp p;
    pthread_mutex_lock(&n->mu);
    p.initialized = n->st.initialized;
    p.cluster_id = n->st.cluster_id;
    p.node_id = n->st.node_id;
    p.rpc = n->self_rpc;
    p.sql = n->self_sql; /* port 0 only for --sql-addr :0 before SQL starts */
    pthread_mutex_unlock(&n->mu);
    return srv__probe_resp_encode(&p, b);
}

/* PROBE of a node certificate or of root's client certificate (loop
** thread); another user's is a job (job_probe), checked like every admin
** request. */
static void answer_probe(srv_node *n, rpc_transport *t, const rpc_message *msg) {
    base_buf b = {0};
    int rc = probe_encode(n, &b);
    if (rc == SRV_OK) rpc_respond(t, msg->from, msg->request_id, SRV_OK, b.data, b.len);
    else rpc_respond(t, msg->from, msg->request_id, rc, NULL, 0);
    base_buf_free(&b);
}

/* CLOCK (loop thread): our physical clock, read last, and our bound. */
static void answer_clock(srv_node *n, rpc_transport *t, const rpc_message *msg) {
    srv__clock_resp a = {0};
    if (srv__clock_req_decode(msg->payload, msg->payload_len, &a.sent_ns) != SRV_OK) {
        rpc_respond(t, msg->from, msg->request_id, SRV_ERR_CORRUPT, NULL, 0);
        return;
    }
    hlc_epsilon_report r;
    hlc_epsilon_explain(n->cfg.clock, &r);
    a.bounded = r.status == HLC_EPSILON_OK;
    a.majority = r.majority;
    a.epsilon_ns = r.epsilon_ns;
    a.remote_ns = hlc_physical_now_ns(n->cfg.clock);
    base_buf b = {0};
    int rc = srv__clock_resp_encode(&a, &b);
    if (rc == SRV_OK) rpc_respond(t, msg->from, msg->request_id, SRV_OK, b.data, b.len);
    else rpc_respond(t, msg->from, msg->request_id, rc, NULL, 0);
    base_buf_free(&b);
}

/* A decommissioned node's rpc is refused: it holds no replica any more and
** cannot come back with its id (loop thread). */
static bool refuse_sender(srv_node *n, rpc_transport *t, const rpc_message *msg) {
    if (atomic_load(&n->n_decommissioned) == 0) return false;
    bool refused = false;
    pthread_mutex_lock(&n->mu);
    size_t k = atomic_load(&n->n_decommissioned);
    for (size_t i = 0; i < k && !refused; i++) refused = n->decommissioned[i] == msg->from;
    pthread_mutex_unlock(&n->mu);
    if (refused && msg->request_id != 0) {
        char why[96];
        int len = snprintf(why, sizeof why, "node %" PRIu64 " is decommissioned: this cluster "
                           "refuses it", msg->from);
        rpc_respond(t, msg->from, msg->request_id, SRV_ERR_REFUSED, why, (size_t)len);
    }
    return refused;
}

/* The methods an admin tool may call with a client certificate (the
** `meridian` commands init, node status|drain|decommission|recommission);
** rpc/ lets such a peer send nothing else (rpc_uv_config.client_methods),
** and on_rpc checks again. Who may: job_admin_allowed. */
static const uint32_t srv_admin_methods[] = {SRV_METHOD_PROBE, SRV_METHOD_INIT, SRV_METHOD_STATUS,
                                             SRV_METHOD_DRAIN, SRV_METHOD_DECOMMISSION};
#define SRV_ADMIN_METHODS_COUNT (sizeof srv_admin_methods / sizeof srv_admin_methods[0])

static bool is_admin_method(uint32_t method) {
    for (size_t i = 0; i < SRV_ADMIN_METHODS_COUNT; i++)
        if (srv_admin_methods[i] == method) return true;
    return false;
}

static void on_rpc(void *ctx, rpc_transport *t, const rpc_message *msg) {
    srv_node *n = ctx;
    bool request = msg->request_id != 0;
    if (msg->peer_user != NULL && !is_admin_method(msg->method)) { /* rpc/ stops these first */
        BASE_WARN(MOD, "method %" PRIu32 " from a client certificate (user \"%s\") refused",
                  msg->method, msg->peer_user);
        static const char no[] = "permission denied: a client certificate may only make admin "
                                 "requests";
        if (request)
            rpc_respond(t, msg->from, msg->request_id, SRV_ERR_REFUSED, no, sizeof no - 1);
        return;
    }
    if (refuse_sender(n, t, msg)) return;
    switch (msg->method) {
    case RANGE_RPC_METHOD_RAFT: {
        pthread_mutex_lock(&n->mu);
        range_node *rn = n->rnode; /* freed only after the transport */
        pthread_mutex_unlock(&n->mu);
        if (rn != NULL) range_node_handle_rpc(rn, t, msg);
        return;
    }
    case RANGE_RPC_METHOD_KV:
        if (!request) return;
        pthread_mutex_lock(&n->mu); /* held: unpublishing rserver is a barrier */
        if (n->rserver != NULL) range_server_handle_rpc(n->rserver, t, msg);
        else rpc_respond(t, msg->from, msg->request_id, RANGE_ERR_UNAVAILABLE, NULL, 0);
        pthread_mutex_unlock(&n->mu);
        return;
    case RANGE_RPC_METHOD_CLOSED: /* closed timestamps (one-way, docs/txn.md section 8) */
        if (request) return;
        pthread_mutex_lock(&n->mu);
        if (n->rserver != NULL) range_server_handle_rpc(n->rserver, t, msg);
        pthread_mutex_unlock(&n->mu);
        return;
    case SRV_METHOD_PROBE: /* who may: as every admin method (docs/security.md) */
        if (!request) return;
        if (msg->peer_user != NULL && strcmp(msg->peer_user, "root") != 0)
            enqueue_job(n, t, msg); /* the user's roles are read off the loop thread */
        else
            answer_probe(n, t, msg);
        return;
    case SRV_METHOD_CLOCK:
        if (request) answer_clock(n, t, msg);
        return;
    case SRV_METHOD_INIT:
    case SRV_METHOD_BOOTSTRAP:
    case SRV_METHOD_JOIN:
    case SRV_METHOD_STATUS:
    case SRV_METHOD_RANGES:
    case SRV_METHOD_DRAIN:
    case SRV_METHOD_DECOMMISSION:
        if (request) enqueue_job(n, t, msg);
        return;
    case SRV_METHOD_FAULT: /* test-only (srv_fault.c): sets fields, never blocks */
        if (!request) return;
        pthread_mutex_lock(&n->mu); /* uv and rlog live until the transport is freed */
        srv__fault_answer(t, msg, n->cfg.enable_test_faults, n->uv, n->rlog, n->cfg.engine);
        pthread_mutex_unlock(&n->mu);
        return;
    default:
        if (request) rpc_respond(t, msg->from, msg->request_id, RPC_ERR_NO_HANDLER, NULL, 0);
        return;
    }
}

/* A PostgreSQL client on the RPC port (loop thread). */
static void on_foreign(void *ctx, int fd, const uint8_t *prefix, size_t prefix_len) {
    srv_node *n = ctx;
    pthread_mutex_lock(&n->mu);
    bool leaving = n->draining || n->self_decommissioned;
    if (n->gw != NULL && !leaving) {
        /* Under mu: srv_node_stop unpublishes gw before gw_stop. */
        int rc = gw_adopt_connection(n->gw, fd, prefix, prefix_len); /* owns fd from here */
        pthread_mutex_unlock(&n->mu);
        if (rc != GW_OK) BASE_WARN(MOD, "SQL connection on the RPC port refused (error %d)", rc);
        return;
    }
    bool initialized = n->st.initialized, retired = n->self_decommissioned;
    pthread_mutex_unlock(&n->mu);
    /* an unbounded clock keeps the key space out of reach (for a moment
    ** after a start, until the first clock pings; for good while the clock
    ** is far off): say that, not only "starting" (docs/clocks.md 3.1) */
    bool unbounded = initialized && !clock_may_serve(n);
    /* No SQL yet, or draining: a FATAL ErrorResponse (libpq shows its
    ** message, also as an answer to SSLRequest), then close. One small
    ** non-blocking send. */
    const char *msg = retired    ? "the node is decommissioned: connect to another node"
                      : leaving  ? "the node is draining: connect to another node"
                      : unbounded
                          ? "the node does not serve yet: its clock offset bound is "
                            "unavailable (see its log), retry or connect to another node"
                      : initialized
                          ? "the node is starting: its key space is not reachable yet, retry"
                          : "the node is not part of a cluster yet: run `meridian init`";
    base_buf b = {0};
    uint8_t len[4] = {0};
    int ok = base_buf_append_byte(&b, 'E') == 0 && base_buf_append(&b, len, 4) == 0 &&
             base_buf_append(&b, "SFATAL", 7) == 0 && base_buf_append(&b, "VFATAL", 7) == 0 &&
             base_buf_append(&b, leaving ? "C57P01" : "C57P03", 7) == 0 &&
             base_buf_append_byte(&b, 'M') == 0 &&
             base_buf_append(&b, msg, strlen(msg) + 1) == 0 && base_buf_append_byte(&b, 0) == 0;
    if (ok) {
        uint32_t l = (uint32_t)(b.len - 1);
        b.data[1] = (uint8_t)(l >> 24);
        b.data[2] = (uint8_t)(l >> 16);
        b.data[3] = (uint8_t)(l >> 8);
        b.data[4] = (uint8_t)l;
        (void)!send(fd, b.data, b.len, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    base_buf_free(&b);
    close(fd);
}

/* ---- transport and stack ---------------------------------------------------------- */

/* Start the transport with the current identity (control thread or start). */
static int start_transport(srv_node *n) {
    rpc_uv_config c;
    rpc_uv_config_init(&c);
    pthread_mutex_lock(&n->mu);
    c.node_id = n->st.initialized ? n->st.node_id : n->provisional_id;
    c.cluster_id = n->st.initialized ? n->st.cluster_id : 0;
    int port = n->rpc_port > 0 ? n->rpc_port : n->cfg.listen.port;
    pthread_mutex_unlock(&n->mu);
    c.listen_host = n->cfg.listen.host;
    c.listen_port = port;
    c.clock = n->cfg.clock;
    c.handler = on_rpc;
    c.handler_ctx = n;
    c.random_seed = n->seed ^ c.node_id;
    c.tls_server = n->cfg.rpc_tls_server; /* NULL, NULL: plaintext (--insecure) */
    c.tls_client = n->cfg.rpc_tls_client;
    /* Admin tools with a client certificate, when the context takes them. */
    if (c.tls_server != NULL) {
        for (size_t i = 0; i < SRV_ADMIN_METHODS_COUNT; i++)
            c.client_methods[i] = srv_admin_methods[i];
        c.client_methods_count = SRV_ADMIN_METHODS_COUNT;
    }
    if (!n->cfg.sql_separate) {
        c.foreign_connection = on_foreign;
        c.foreign_ctx = n;
    }
    rpc_uv *uv = NULL;
    int rc = RPC_ERR_IO;
    /* The previous transport of this port just closed its listener: a
    ** re-bind normally works at once (SO_REUSEADDR); retry briefly if not. */
    for (int attempt = 0; attempt < SRV_BIND_ATTEMPTS_MAX; attempt++) {
        rc = rpc_uv_start(&c, &uv);
        if (rc != RPC_ERR_IO || n->rpc_port <= 0) break;
        if (!pause_ms(n, SRV_BIND_RETRY_MS)) break;
    }
    if (rc != RPC_OK) {
        BASE_ERROR(MOD, "cannot listen for RPC on %s:%d (%s)", n->cfg.listen.host, port,
                   rpc_strerror(rc));
        return rc == RPC_ERR_NOMEM ? SRV_ERR_NOMEM : SRV_ERR_IO;
    }
    pthread_mutex_lock(&n->mu);
    n->uv = uv;
    n->rpc_port = rpc_uv_listen_port(uv);
    n->self_rpc.port = n->rpc_port;
    if (!n->cfg.sql_separate) n->self_sql = n->self_rpc;
    /* Addresses of every known peer, so Raft and KV traffic can dial them. */
    for (size_t i = 0; n->st.initialized && i < n->st.n_peers; i++) {
        const srv_peer *p = &n->st.peers[i];
        if (p->node_id == n->st.node_id || p->rpc.host[0] == '\0') continue;
        int prc = rpc_uv_add_peer(uv, p->node_id, p->rpc.host, p->rpc.port);
        if (prc != RPC_OK)
            BASE_WARN(MOD, "peer %" PRIu64 " at %s:%d not added (%s)", p->node_id, p->rpc.host,
                      p->rpc.port, rpc_strerror(prc));
    }
    pthread_mutex_unlock(&n->mu);
    return SRV_OK;
}

/* Build range_node (+ hosted replicas), range_server, router, txn_db and
** publish them. Control thread or start, once. */
static int build_stack(srv_node *n) {
    range_node *rnode = NULL;
    range_server *rserver = NULL;
    range_router *router = NULL;
    txn_db *db = NULL;
    char msg[SRV_MESSAGE_SIZE_MAX];
    int rc;
    pthread_mutex_lock(&n->mu);
    rpc_transport *t = rpc_uv_transport(n->uv);
    uint64_t self = n->st.node_id;
    pthread_mutex_unlock(&n->mu);

    range_node_config nc = {.transport = t, .engine = n->cfg.engine, .sync = n->cfg.sync,
                            .log = n->rlog, .no_handler = true, .clock = mono_clock,
                            .tick_ns = n->cfg.tick_ms * 1000000};
    if ((rc = range_node_new(&nc, &rnode)) != RANGE_OK) {
        snprintf(msg, sizeof msg, "cannot create the range node (error %d)", rc);
        goto fail;
    }
    /* n->st is only replaced by this thread: read without mu. */
    for (size_t i = 0; i < n->st.n_descs; i++) {
        const range_descriptor *d = &n->st.descs[i];
        if (!n->st.hosted[i]) continue;
        range_replica_config rc_cfg = {.range_id = d->range_id,
                                       .random_seed = n->seed ^ (d->range_id * 0x9E3779B97F4A7C15ULL) ^ self,
                                       .descriptor = d};
        for (size_t k = 0; k < d->n_replicas && k < RANGE_REPLICAS_MAX; k++)
            rc_cfg.peers[k] = d->replicas[k];
        rc_cfg.n_peers = d->n_replicas;
        if ((rc = range_node_add_replica(rnode, &rc_cfg, NULL)) != RANGE_OK) {
            snprintf(msg, sizeof msg, "cannot open the replica of range %" PRIu64 " (error %d)",
                     d->range_id, rc);
            goto fail;
        }
    }
    /* ranges made by splits since (the store's own list, range/) */
    range_replica_config defaults = {.random_seed = n->seed ^ self};
    size_t opened = 0;
    if ((rc = range_node_open_stored(rnode, &defaults, &opened)) != RANGE_OK) {
        snprintf(msg, sizeof msg, "cannot open the ranges this store hosts (error %d)", rc);
        goto fail;
    }
    if (opened > 0) BASE_INFO(MOD, "%zu range(s) made by splits reopened", opened);
    range_server_config sc = {.node = rnode, .clock = n->cfg.clock,
                              .may_serve = clock_may_serve, .may_serve_ctx = n,
                              .transport = t, /* closed timestamps to followers */
                              .gc_ttl_seconds = gc_ttl_seconds, .gc_ttl_ctx = n};
    if ((rc = range_server_new(&sc, &rserver)) != RANGE_OK) {
        snprintf(msg, sizeof msg, "cannot create the range server (error %d)", rc);
        goto fail;
    }
    range_router_config rcfg = {.transport = t, .clock = n->cfg.clock, .local = rserver,
                                .local_node_id = self, .random_seed = n->seed ^ 0x5bd1e995,
                                .known_nodes = router_known_nodes, .known_nodes_ctx = n};
    if ((rc = range_router_new(&rcfg, &router)) != RANGE_OK) {
        snprintf(msg, sizeof msg, "cannot create the range router (error %d)", rc);
        goto fail;
    }
    for (size_t i = 0; i < n->st.n_descs; i++) {
        if ((rc = range_router_update_descriptor(router, &n->st.descs[i])) != RANGE_OK) {
            snprintf(msg, sizeof msg, "cannot seed the router (error %d)", rc);
            goto fail;
        }
    }
    /* then what the hosted replicas say now (newer after splits); the rest
    ** comes from meta and KEY_MISMATCH answers */
    uint64_t *ids = base_calloc(RANGE_NODE_REPLICAS_MAX, sizeof *ids); /* owner: here */
    if (ids == NULL) {
        snprintf(msg, sizeof msg, "out of memory");
        goto fail;
    }
    size_t n_ids = range_node_replica_ids(rnode, ids, RANGE_NODE_REPLICAS_MAX);
    for (size_t i = 0; i < n_ids && i < RANGE_NODE_REPLICAS_MAX; i++) {
        range_descriptor d;
        range_replica *rep = range_node_replica(rnode, ids[i]);
        if (rep == NULL || range_replica_descriptor(rep, &d) != RANGE_OK) continue;
        (void)range_router_update_descriptor(router, &d);
        range_descriptor_free(&d);
    }
    base_free(ids);
    txn_db_options to = {.clock = n->cfg.clock, .kv = range_router_kv(router),
                         .sync_commits = n->cfg.sync, .require_clock_bound = true};
    if ((rc = txn_db_open(&to, &db)) != TXN_OK) {
        snprintf(msg, sizeof msg, "cannot open the transaction layer (error %d)", rc);
        goto fail;
    }
    /* the GC round resolves dead coordinators' COMMITTED records through it
    ** (docs/txn.md 6.1); the router outlives the server (srv_node_stop) */
    range_server_set_resolver(rserver, range_router_kv(router));
    pthread_mutex_lock(&n->mu);
    n->rnode = rnode;
    n->rserver = rserver;
    n->router = router;
    n->db = db;
    n->stack_ready = true;
    /* built while srv_node_stop ran: its work is as bounded as the rest */
    if (n->stopping) range_router_shutdown(router, SRV_STOP_GRACE_MS);
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->mu);
    BASE_INFO(MOD, "node %" PRIu64 " of cluster %016" PRIx64 ": stack up, %zu range(s) known",
              self, n->st.cluster_id, n->st.n_descs);
    return SRV_OK;
fail:
    BASE_ERROR(MOD, "%s", msg);
    if (db != NULL) txn_db_close(db);
    if (router != NULL) range_router_free(router);
    if (rserver != NULL) range_server_free(rserver);
    /* The transport still points at rnode's handler? No: no_handler. */
    if (rnode != NULL) range_node_free(rnode);
    return SRV_ERR_IO;
}

/* Take *st (moved: the caller's copy is cleared) as the node's identity,
** restart the transport with the real node id and build the stack. Control
** thread. The state must already be persisted. */
static void become_initialized(srv_node *n, srv__state *st) {
    pthread_mutex_lock(&n->mu);
    srv__state_free(&n->st);
    n->st = *st;
    memset(st, 0, sizeof *st);
    rpc_uv *old = n->uv;
    n->uv = NULL;
    pthread_mutex_unlock(&n->mu);
    BASE_INFO(MOD, "initialized: node %" PRIu64 " of cluster %016" PRIx64
              "; restarting the transport with the real node id", n->st.node_id, n->st.cluster_id);
    if (old != NULL) rpc_uv_free(old); /* not under mu: its loop may be waiting for mu */
    if (start_transport(n) != SRV_OK) {
        fatal(n, "cannot restart the RPC transport with the node's id");
        return;
    }
    if (build_stack(n) != SRV_OK) fatal(n, "cannot build the cluster stack");
}

/* The initial KV data this node writes: only keys of ranges it hosts. */
static int initial_kv_for(const srv__state *st, srv__kv **kvs, size_t *n_kvs) {
    int rc = srv__initial_kv(st->peers, st->n_peers, st->descs, st->n_descs, kvs, n_kvs);
    if (rc != SRV_OK) return rc;
    size_t keep = 0;
    for (size_t i = 0; i < *n_kvs; i++) {
        bool hosted = false;
        for (size_t d = 0; d < st->n_descs; d++) {
            if (st->hosted[d] &&
                range_descriptor_contains(&st->descs[d], (*kvs)[i].key, (*kvs)[i].key_len))
                hosted = true;
        }
        if (hosted) {
            srv__kv tmp = (*kvs)[keep];
            (*kvs)[keep++] = (*kvs)[i];
            (*kvs)[i] = tmp;
        }
    }
    for (size_t i = keep; i < *n_kvs; i++) {
        base_free((*kvs)[i].key);
        base_free((*kvs)[i].value);
        (*kvs)[i] = (srv__kv){0};
    }
    *n_kvs = keep;
    return SRV_OK;
}

/* Fill a state from what a bootstrap or join answer gives. Copies. */
static int state_from(srv__state *st, uint64_t cluster_id, uint64_t node_id, uint64_t init_token,
                      const srv_peer *peers, size_t n_peers, const range_descriptor *descs,
                      size_t n_descs) {
    memset(st, 0, sizeof *st);
    st->initialized = true;
    st->cluster_id = cluster_id;
    st->node_id = node_id;
    st->init_token = init_token;
    st->peers = base_calloc(n_peers ? n_peers : 1, sizeof *st->peers); /* owner: st */
    st->descs = base_calloc(n_descs ? n_descs : 1, sizeof *st->descs); /* owner: st */
    st->hosted = base_calloc(n_descs ? n_descs : 1, sizeof *st->hosted); /* owner: st */
    if (st->peers == NULL || st->descs == NULL || st->hosted == NULL) goto nomem;
    memcpy(st->peers, peers, n_peers * sizeof *peers);
    st->n_peers = n_peers;
    for (size_t i = 0; i < n_descs; i++) {
        if (range_descriptor_copy(&st->descs[i], &descs[i]) != RANGE_OK) goto nomem;
        st->n_descs = i + 1;
        st->hosted[i] = descriptor_has(&descs[i], node_id);
    }
    return SRV_OK;
nomem:
    srv__state_free(st);
    return SRV_ERR_NOMEM;
}

/* ---- KV helpers (system transactions) ------------------------------------------------ */

/* Scan [start, end) and call fn for each row (bounded by SRV_SCAN_ROWS_MAX).
** Returns TXN_OK or a txn error. */
typedef int (*row_fn)(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl);
static int scan_span(txn *t, const uint8_t *start, size_t start_len, const uint8_t *end,
                     size_t end_len, row_fn fn, void *ctx, txn_error *err) {
    txn_iter *it = NULL;
    int rc = txn_scan(t, start, start_len, end, end_len, false, &it, err);
    if (rc != TXN_OK) return rc;
    for (int rows = 0; rows < SRV_SCAN_ROWS_MAX; rows++) {
        const uint8_t *k, *v;
        size_t kl, vl;
        int r = txn_iter_next(it, &k, &kl, &v, &vl, err);
        if (r < 0) {
            rc = r;
            break;
        }
        if (r == 0) break;
        if ((rc = fn(ctx, k, kl, v, vl)) != TXN_OK) break;
    }
    txn_iter_close(it);
    return rc;
}

typedef struct node_rows {
    srv_peer *peers; /* owned */
    size_t n;
    bool nomem;
    /* JOIN: the joiner's address and token. */
    const srv__join_req *join;
    uint64_t existing_id;   /* a record with the joiner's rpc address */
    uint64_t existing_token;
} node_rows;

static int collect_node(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    node_rows *nr = ctx;
    uint64_t id = srv__key_node_id(k, kl, false);
    srv__node_record rec;
    if (id == 0 || srv__node_record_decode(v, vl, &rec) != SRV_OK) {
        BASE_WARN(MOD, "malformed node record skipped");
        return TXN_OK;
    }
    if (nr->join != NULL && srv__addr_equal(&rec.rpc, &nr->join->rpc)) {
        nr->existing_id = id;
        nr->existing_token = rec.join_token;
    }
    srv_peer p = {.node_id = id, .rpc = rec.rpc, .sql = rec.sql};
    bool changed;
    int rc = srv__peers_upsert(&nr->peers, &nr->n, &p, &changed);
    if (rc == SRV_ERR_NOMEM) {
        nr->nomem = true;
        return TXN_ERR_NOMEM;
    }
    return TXN_OK;
}

static int scan_nodes(txn *t, node_rows *nr, txn_error *err) {
    uint8_t start[SRV_KEY_SIZE_MAX], end[SRV_KEY_SIZE_MAX];
    size_t end_len;
    size_t start_len = srv__key_node_span(start, end, &end_len);
    return scan_span(t, start, start_len, end, end_len, collect_node, nr, err);
}

/* ---- jobs --------------------------------------------------------------------------- */

/* Probe every --join address until each answered or the window ends. */
static void probe_join_list(srv_node *n, srv__probe_answer *answers) {
    size_t k = n->cfg.n_join;
    srv__call *calls = base_calloc(k ? k : 1, sizeof *calls); /* owner: this function */
    if (calls == NULL) return;
    for (size_t i = 0; i < k; i++) {
        answers[i] = (srv__probe_answer){.addr = n->cfg.join[i]};
        srv__call_init(&calls[i]);
    }
    int64_t deadline = mono_ns() + (int64_t)SRV_PROBE_WINDOW_MS * 1000000;
    for (int round = 0; round < SRV_PROBE_WINDOW_MS / SRV_PROBE_RETRY_MS + 1; round++) {
        pthread_mutex_lock(&n->mu);
        rpc_uv *uv = n->uv;
        uint64_t self_id = n->provisional_id;
        pthread_mutex_unlock(&n->mu);
        int64_t left_ms = (deadline - mono_ns()) / 1000000;
        if (left_ms <= 0) break;
        size_t pending = 0;
        for (size_t i = 0; i < k; i++) {
            if (answers[i].answered) continue;
            pending++;
            srv__call_start(&calls[i], uv, &answers[i].addr, SRV_METHOD_PROBE, NULL, 0,
                            BASE_MIN(left_ms, SRV_PROBE_TIMEOUT_MS));
        }
        if (pending == 0) break;
        for (size_t i = 0; i < k; i++) {
            if (answers[i].answered) continue;
            if (calls[i].started) srv__call_wait(&calls[i]);
            if (calls[i].rc == RPC_ERR_SELF) { /* our own listener */
                answers[i].answered = true;
                answers[i].transport_id = self_id;
                continue;
            }
            srv__probe_resp p;
            if (calls[i].rc != RPC_OK || calls[i].status != SRV_OK ||
                srv__probe_resp_decode(calls[i].payload.data, calls[i].payload.len, &p) != SRV_OK)
                continue;
            answers[i].answered = true;
            answers[i].initialized = p.initialized;
            answers[i].transport_id = calls[i].from;
            /* SQL on the RPC port: the address we reached it at. */
            answers[i].sql = srv__addr_equal(&p.sql, &p.rpc) ? answers[i].addr : p.sql;
        }
        bool all = true;
        for (size_t i = 0; i < k; i++) all = all && answers[i].answered;
        if (all || !pause_ms(n, SRV_PROBE_RETRY_MS)) break;
    }
    for (size_t i = 0; i < k; i++) srv__call_free(&calls[i]);
    base_free(calls);
}

/* BOOTSTRAP one node; confirm by PROBE when the answer is lost (the node
** restarts its transport right after answering). SRV_OK or an error with
** a message in why. */
static int bootstrap_one(srv_node *n, const srv_addr *addr, const srv__bootstrap *m, char *why,
                         size_t why_size) {
    base_buf req = {0};
    srv__call call;
    srv__call_init(&call);
    int rc = srv__bootstrap_encode(m, &req);
    if (rc != SRV_OK) {
        snprintf(why, why_size, "cannot encode the bootstrap request (error %d)", rc);
        goto done;
    }
    int64_t deadline = mono_ns() + (int64_t)SRV_BOOTSTRAP_WINDOW_MS * 1000000;
    rc = SRV_ERR_UNAVAILABLE;
    snprintf(why, why_size, "no answer within %d ms", SRV_BOOTSTRAP_WINDOW_MS);
    for (int attempt = 0; attempt < SRV_BOOTSTRAP_WINDOW_MS / SRV_PROBE_RETRY_MS; attempt++) {
        if (mono_ns() >= deadline || is_stopping(n)) break;
        pthread_mutex_lock(&n->mu);
        rpc_uv *uv = n->uv;
        pthread_mutex_unlock(&n->mu);
        /* First BOOTSTRAP; after a lost answer, PROBE to see if it took. */
        bool probe = attempt > 0;
        if (srv__call_start(&call, uv, addr, probe ? SRV_METHOD_PROBE : SRV_METHOD_BOOTSTRAP,
                            probe ? NULL : req.data, probe ? 0 : req.len,
                            probe ? SRV_PROBE_TIMEOUT_MS : SRV_BOOTSTRAP_TIMEOUT_MS) == SRV_OK)
            srv__call_wait(&call);
        if (call.rc == RPC_OK && call.status == SRV_OK) {
            if (!probe) {
                rc = SRV_OK;
                break;
            }
            srv__probe_resp p;
            if (srv__probe_resp_decode(call.payload.data, call.payload.len, &p) == SRV_OK &&
                p.initialized) {
                if (p.cluster_id == m->cluster_id && p.node_id == m->node_id) {
                    rc = SRV_OK;
                } else {
                    rc = SRV_ERR_REFUSED;
                    snprintf(why, why_size, "it is node %" PRIu64 " of cluster %016" PRIx64,
                             p.node_id, p.cluster_id);
                }
                break;
            }
            if (srv__probe_resp_decode(call.payload.data, call.payload.len, &p) == SRV_OK &&
                !p.initialized) {
                attempt = -1; /* alive and not initialized: send BOOTSTRAP again */
                continue;
            }
        } else if (call.rc == RPC_OK) { /* refused with a message */
            srv__call_error(&call, addr, why, why_size);
            rc = SRV_ERR_REFUSED;
            break;
        }
        if (!pause_ms(n, SRV_PROBE_RETRY_MS)) break;
    }
done:
    srv__call_free(&call);
    base_buf_free(&req);
    return rc;
}

static void job_init(srv_node *n, const srv__job *j) {
    uint64_t token;
    srv__probe_answer *answers = NULL;
    srv__plan plan = {0};
    srv__state st = {0};
    srv__kv *kvs = NULL;
    size_t n_kvs = 0;
    base_buf b = {0};
    if (srv__init_req_decode(j->payload, j->len, &token) != SRV_OK) {
        respond_error(n, j->from, j->request_id, SRV_ERR_CORRUPT, "malformed INIT request");
        return;
    }
    pthread_mutex_lock(&n->mu);
    bool initialized = n->st.initialized;
    bool same = initialized && token != 0 && n->st.init_token == token;
    pthread_mutex_unlock(&n->mu);
    if (initialized) {
        if (same) { /* our own INIT retried after its answer was lost */
            pthread_mutex_lock(&n->mu); /* the periodic thread may grow the peers */
            int erc = srv__init_resp_encode(n->st.cluster_id, n->st.peers, n->st.n_peers, &b);
            pthread_mutex_unlock(&n->mu);
            if (erc == SRV_OK) respond(n, j->from, j->request_id, SRV_OK, b.data, b.len);
            base_buf_free(&b);
            return;
        }
        respond_error(n, j->from, j->request_id, SRV_ERR_INITIALIZED,
                      "cluster already initialized (cluster %016" PRIx64 ", this is node %" PRIu64 ")",
                      n->st.cluster_id, n->st.node_id);
        return;
    }
    BASE_INFO(MOD, "INIT: probing the %zu --join address(es)", n->cfg.n_join);
    answers = base_calloc(n->cfg.n_join ? n->cfg.n_join : 1, sizeof *answers); /* owner: here */
    if (answers == NULL) {
        respond_error(n, j->from, j->request_id, SRV_ERR_NOMEM, "out of memory");
        goto done;
    }
    probe_join_list(n, answers);
    if (is_stopping(n)) goto done;
    int rc = srv__plan_bootstrap(&n->self_rpc, &n->self_sql, n->provisional_id, answers,
                                 n->cfg.n_join, n->cfg.replication, &plan);
    if (rc == SRV_ERR_INITIALIZED) {
        for (size_t i = 0; i < n->cfg.n_join; i++) {
            if (!answers[i].initialized) continue;
            char a[SRV_HOST_SIZE_MAX + 16];
            respond_error(n, j->from, j->request_id, SRV_ERR_INITIALIZED,
                          "cluster already initialized: the node at %s is part of a cluster",
                          srv__addr_format(&answers[i].addr, a, sizeof a));
            goto done;
        }
    }
    if (rc != SRV_OK) {
        respond_error(n, j->from, j->request_id, rc, "cannot plan the bootstrap (error %d)", rc);
        goto done;
    }
    uint64_t cluster_id = srv__random_u64() & ~RPC_NODE_ID_PROVISIONAL_MIN;
    if (cluster_id == 0) cluster_id = 1;
    srv__bootstrap m = {.cluster_id = cluster_id, .init_ts = hlc_now(n->cfg.clock),
                        .peers = plan.peers, .n_peers = plan.n_peers, .descs = plan.descs,
                        .n_descs = plan.n_descs};
    for (size_t i = 0; i < n->cfg.n_join; i++) {
        char a[SRV_HOST_SIZE_MAX + 16];
        BASE_INFO(MOD, "INIT: %s %s", srv__addr_format(&answers[i].addr, a, sizeof a),
                  !answers[i].answered ? "did not answer (left out)"
                  : answers[i].transport_id == n->provisional_id ? "is this node"
                                                                  : "answered");
    }
    for (size_t i = 1; i < plan.n_peers; i++) {
        char why[SRV_MESSAGE_SIZE_MAX], a[SRV_HOST_SIZE_MAX + 16];
        m.node_id = plan.peers[i].node_id;
        srv__addr_format(&plan.peers[i].rpc, a, sizeof a);
        if ((rc = bootstrap_one(n, &plan.peers[i].rpc, &m, why, sizeof why)) != SRV_OK) {
            /* Nodes before it are already members: the cluster exists. We
            ** go on (its replica slot stays empty until it is replaced, a
            ** later issue) and say so loudly. */
            BASE_ERROR(MOD, "INIT: node %" PRIu64 " at %s was not bootstrapped: %s", m.node_id,
                       a, why);
            continue;
        }
        BASE_INFO(MOD, "INIT: node %" PRIu64 " at %s bootstrapped", m.node_id, a);
    }
    if ((rc = state_from(&st, cluster_id, 1, token, plan.peers, plan.n_peers, plan.descs,
                         plan.n_descs)) != SRV_OK ||
        (rc = initial_kv_for(&st, &kvs, &n_kvs)) != SRV_OK ||
        (rc = srv__store_save(n->cfg.engine, &st, kvs, n_kvs, m.init_ts)) != SRV_OK) {
        respond_error(n, j->from, j->request_id, SRV_ERR_IO,
                      "cannot persist this node's identity (error %d)", rc);
        fatal(n, "INIT: cannot persist the identity of node 1");
        goto done;
    }
    if (srv__init_resp_encode(cluster_id, plan.peers, plan.n_peers, &b) == SRV_OK)
        respond(n, j->from, j->request_id, SRV_OK, b.data, b.len);
    BASE_INFO(MOD, "INIT: cluster %016" PRIx64 " created with %zu node(s)", cluster_id,
              plan.n_peers);
    become_initialized(n, &st);
done:
    base_buf_free(&b);
    srv__kvs_free(kvs, n_kvs);
    srv__state_free(&st);
    srv__plan_free(&plan);
    base_free(answers);
}

static void job_bootstrap(srv_node *n, const srv__job *j) {
    srv__bootstrap m;
    srv__state st = {0};
    srv__kv *kvs = NULL;
    size_t n_kvs = 0;
    if (srv__bootstrap_decode(j->payload, j->len, &m) != SRV_OK) {
        respond_error(n, j->from, j->request_id, SRV_ERR_CORRUPT, "malformed BOOTSTRAP request");
        return;
    }
    pthread_mutex_lock(&n->mu);
    bool initialized = n->st.initialized;
    uint64_t cid = n->st.cluster_id, nid = n->st.node_id;
    pthread_mutex_unlock(&n->mu);
    if (initialized) {
        if (cid == m.cluster_id && nid == m.node_id)
            respond(n, j->from, j->request_id, SRV_OK, NULL, 0); /* a retry */
        else
            respond_error(n, j->from, j->request_id, SRV_ERR_INITIALIZED,
                          "already initialized as node %" PRIu64 " of cluster %016" PRIx64, nid,
                          cid);
        goto done;
    }
    int rc;
    if ((rc = state_from(&st, m.cluster_id, m.node_id, 0, m.peers, m.n_peers, m.descs,
                         m.n_descs)) != SRV_OK ||
        (rc = initial_kv_for(&st, &kvs, &n_kvs)) != SRV_OK ||
        (rc = srv__store_save(n->cfg.engine, &st, kvs, n_kvs, m.init_ts)) != SRV_OK) {
        respond_error(n, j->from, j->request_id, SRV_ERR_IO,
                      "cannot persist the node identity (error %d)", rc);
        goto done;
    }
    respond(n, j->from, j->request_id, SRV_OK, NULL, 0);
    become_initialized(n, &st);
done:
    srv__kvs_free(kvs, n_kvs);
    srv__state_free(&st);
    srv__bootstrap_free(&m);
}

/* Snapshot of db under mu (NULL until the stack exists). */
static txn_db *get_db(srv_node *n) {
    pthread_mutex_lock(&n->mu);
    txn_db *db = n->db;
    pthread_mutex_unlock(&n->mu);
    return db;
}

static void job_join(srv_node *n, const srv__job *j) {
    srv__join_req req;
    node_rows nr = {0};
    base_buf b = {0}, v = {0};
    range_descriptor *descs = NULL;
    uint64_t *holders = NULL;
    size_t n_descs = 0;
    char a[SRV_HOST_SIZE_MAX + 16];
    if (srv__join_req_decode(j->payload, j->len, &req) != SRV_OK) {
        respond_error(n, j->from, j->request_id, SRV_ERR_CORRUPT, "malformed JOIN request");
        return;
    }
    txn_db *db = get_db(n);
    if (db == NULL) {
        respond_error(n, j->from, j->request_id, SRV_ERR_UNINITIALIZED,
                      "this node is not part of a cluster yet");
        return;
    }
    srv__addr_format(&req.rpc, a, sizeof a);
    uint64_t id = 0;
    int rc = TXN_ERR_UNAVAILABLE;
    txn_error err = {{0}, {0}};
    for (int attempt = 0; attempt < SRV_TXN_ATTEMPTS_MAX && !is_stopping(n); attempt++) {
        txn *t = NULL;
        base_free(nr.peers);
        nr = (node_rows){.join = &req};
        if ((rc = txn_begin(db, NULL, &t)) != TXN_OK) break;
        if ((rc = scan_nodes(t, &nr, &err)) != TXN_OK) goto abort;
        if (nr.existing_id != 0) {
            if (nr.existing_token != req.token) {
                txn_rollback(t);
                respond_error(n, j->from, j->request_id, SRV_ERR_REFUSED,
                              "address %s already belongs to node %" PRIu64
                              " of this cluster; a node's address cannot be reused yet", a,
                              nr.existing_id);
                goto done;
            }
            id = nr.existing_id; /* our answer to this joiner was lost: same id */
            txn_rollback(t);
            rc = TXN_OK;
            break;
        }
        uint8_t key[SRV_KEY_SIZE_MAX];
        size_t kl = srv__key_counter(key);
        base_buf_reset(&v);
        if ((rc = txn_get(t, key, kl, &v, &err)) == TXN_NOT_FOUND) {
            txn_rollback(t);
            respond_error(n, j->from, j->request_id, SRV_ERR_UNAVAILABLE,
                          "the cluster's node-id counter is missing (bootstrap not finished)");
            goto done;
        }
        if (rc != TXN_OK) goto abort;
        uint64_t next;
        if (srv__counter_decode(v.data, v.len, &next) != SRV_OK) {
            txn_rollback(t);
            respond_error(n, j->from, j->request_id, SRV_ERR_CORRUPT,
                          "the cluster's node-id counter is corrupt");
            goto done;
        }
        base_buf_reset(&v);
        if (srv__counter_encode(next + 1, &v) != SRV_OK) {
            rc = TXN_ERR_NOMEM;
            goto abort;
        }
        if ((rc = txn_put(t, key, kl, v.data, v.len, &err)) != TXN_OK) goto abort;
        base_buf_reset(&v);
        srv__node_record rec = {.rpc = req.rpc, .sql = req.sql, .join_token = req.token};
        if (srv__node_record_encode(&rec, &v) != SRV_OK) {
            rc = TXN_ERR_NOMEM;
            goto abort;
        }
        kl = srv__key_node(key, next);
        if ((rc = txn_put(t, key, kl, v.data, v.len, &err)) != TXN_OK) goto abort;
        rc = txn_commit(t, NULL, &err);
        t = NULL;
        if (rc == TXN_OK) {
            id = next;
            srv_peer p = {.node_id = next, .rpc = req.rpc, .sql = req.sql};
            bool changed;
            if (srv__peers_upsert(&nr.peers, &nr.n, &p, &changed) != SRV_OK) rc = TXN_ERR_NOMEM;
            break;
        }
        if (rc != TXN_ERR_RETRY) break;
        continue;
    abort:
        if (t != NULL) txn_rollback(t);
        if (rc != TXN_ERR_RETRY) break;
    }
    if (rc != TXN_OK || id == 0) {
        respond_error(n, j->from, j->request_id, SRV_ERR_UNAVAILABLE,
                      "cannot allocate a node id now (error %d: %s); retry", rc, err.message);
        goto done;
    }
    /* Make the new node reachable from here at once (the refresh does it
    ** for the other nodes), and count it in the clock bound before it can
    ** serve: no longer alone, and measured at the next ping. */
    hlc_epsilon_peer_track(n->cfg.clock, id);
    hlc_epsilon_set_alone(n->cfg.clock, false);
    pthread_mutex_lock(&n->mu);
    if (clock_peer_locked(n, id) == NULL && n->n_clock_peers < SRV_PEERS_MAX)
        n->clock_peers[n->n_clock_peers++] = (srv__clock_peer){.id = id, .seen_ns = mono_ns()};
    n->clock_round_now = true; /* and not alone: the round counts clock_peers */
    pthread_cond_broadcast(&n->cond);
    rpc_uv_add_peer(n->uv, id, req.rpc.host, req.rpc.port);
    range_router *router = n->router;
    pthread_mutex_unlock(&n->mu);
    if (range_router_snapshot(router, &descs, &holders, &n_descs) != RANGE_OK) {
        respond_error(n, j->from, j->request_id, SRV_ERR_NOMEM, "out of memory");
        goto done;
    }
    srv__join_resp resp = {.cluster_id = n->st.cluster_id, .node_id = id, .peers = nr.peers,
                           .n_peers = nr.n, .descs = descs, .n_descs = n_descs};
    if (srv__join_resp_encode(&resp, &b) == SRV_OK) {
        respond(n, j->from, j->request_id, SRV_OK, b.data, b.len);
        BASE_INFO(MOD, "JOIN: the node at %s joined as node %" PRIu64, a, id);
    } else {
        respond_error(n, j->from, j->request_id, SRV_ERR_NOMEM, "out of memory");
    }
done:
    srv__descs_free(descs, n_descs);
    base_free(holders);
    base_free(nr.peers);
    base_buf_free(&b);
    base_buf_free(&v);
}

typedef struct live_rows {
    srv_status *s;
    int64_t now_ns;
    int64_t dead_after_ns;
    bool nomem;
} live_rows;

static srv_status_row *status_row(srv_status *s, uint64_t id) {
    for (size_t i = 0; i < s->n_rows; i++) {
        if (s->rows[i].node_id == id) return &s->rows[i];
    }
    if (s->n_rows >= SRV_PEERS_MAX) return NULL;
    srv_status_row *grown = base_realloc(s->rows, (s->n_rows + 1) * sizeof *grown); /* owner: s */
    if (grown == NULL) return NULL;
    s->rows = grown;
    srv_status_row *r = &s->rows[s->n_rows++];
    *r = (srv_status_row){.node_id = id, .since_heartbeat_ms = -1};
    return r;
}

static int collect_liveness(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    live_rows *lr = ctx;
    uint64_t id = srv__key_node_id(k, kl, true);
    srv__liveness_record rec;
    if (id == 0 || srv__liveness_record_decode(v, vl, &rec) != SRV_OK) {
        BASE_WARN(MOD, "malformed liveness record skipped");
        return TXN_OK;
    }
    srv_status_row *r = status_row(lr->s, id);
    if (r == NULL) {
        lr->nomem = true;
        return TXN_ERR_NOMEM;
    }
    r->rpc = rec.rpc;
    r->sql = rec.sql;
    r->liveness = (uint8_t)srv__liveness_state(lr->now_ns, rec.heartbeat_ns, rec.expiration_ns,
                                               lr->dead_after_ns);
    int64_t since = lr->now_ns - rec.heartbeat_ns;
    r->since_heartbeat_ms = since > 0 ? since / 1000000 : 0;
    r->epoch = rec.epoch;
    r->replicas = rec.replicas;
    r->leases = rec.leases;
    r->membership = rec.membership;
    r->draining = rec.draining;
    return TXN_OK;
}

/* Replicas per node as meta places them (node status of a dead node: its
** own count is from its last heartbeat; this one follows the replicate
** queue's moves). counts[i] is for s->rows[i]. */
typedef struct meta_counts {
    const srv_status *s;
    uint32_t *counts;
} meta_counts;

static int count_meta(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    meta_counts *mc = ctx;
    range_descriptor d;
    (void)k;
    (void)kl;
    if (range_descriptor_decode(v, vl, &d) != RANGE_OK) {
        BASE_WARN(MOD, "malformed meta entry skipped");
        return TXN_OK;
    }
    for (size_t i = 0; i < d.n_replicas; i++)
        for (size_t j = 0; j < mc->s->n_rows; j++)
            if (mc->s->rows[j].node_id == d.replicas[i]) mc->counts[j]++;
    range_descriptor_free(&d);
    return TXN_OK;
}

static int scan_meta_counts(txn *t, meta_counts *mc, txn_error *err) {
    uint8_t start[RANGE_META_PREFIX_LEN + 1], end[RANGE_META_PREFIX_LEN + 1];
    memcpy(start, RANGE_META_PREFIX, RANGE_META_PREFIX_LEN);
    memcpy(end, RANGE_META_PREFIX, RANGE_META_PREFIX_LEN);
    end[RANGE_META_PREFIX_LEN] = 0x03; /* past 0x01 (end keys) and 0x02 (+infinity) */
    return scan_span(t, start, RANGE_META_PREFIX_LEN, end, RANGE_META_PREFIX_LEN + 1, count_meta,
                     mc, err);
}

static int row_cmp(const void *a, const void *b) {
    uint64_t x = ((const srv_status_row *)a)->node_id, y = ((const srv_status_row *)b)->node_id;
    return x < y ? -1 : x > y ? 1 : 0;
}

static void job_status(srv_node *n, const srv__job *j) {
    txn_db *db = get_db(n);
    if (db == NULL) {
        respond_error(n, j->from, j->request_id, SRV_ERR_UNINITIALIZED,
                      "this node is not part of a cluster yet: run `meridian init`");
        return;
    }
    srv_status s = {.cluster_id = n->st.cluster_id, .answered_by = n->st.node_id,
                    .dead_after_ms = n->cfg.dead_after_ms};
    node_rows nr = {0};
    base_buf b = {0};
    txn_error err = {{0}, {0}};
    txn *t = NULL;
    txn_options ro = {.read_only = true};
    int rc = txn_begin(db, &ro, &t);
    if (rc == TXN_OK) rc = scan_nodes(t, &nr, &err);
    s.now_ns = hlc_physical_now_ns(n->cfg.clock);
    for (size_t i = 0; rc == TXN_OK && i < nr.n; i++) {
        srv_status_row *r = status_row(&s, nr.peers[i].node_id);
        if (r == NULL) {
            rc = TXN_ERR_NOMEM;
            break;
        }
        r->rpc = nr.peers[i].rpc;
        r->sql = nr.peers[i].sql;
    }
    if (rc == TXN_OK) {
        live_rows lr = {.s = &s, .now_ns = s.now_ns,
                        .dead_after_ns = n->cfg.dead_after_ms * 1000000};
        uint8_t start[SRV_KEY_SIZE_MAX], end[SRV_KEY_SIZE_MAX];
        size_t end_len, start_len = srv__key_liveness_span(start, end, &end_len);
        rc = scan_span(t, start, start_len, end, end_len, collect_liveness, &lr, &err);
    }
    if (rc == TXN_OK && s.n_rows > 0) { /* a dead node's replicas: what meta still lists */
        meta_counts mc = {.s = &s, .counts = base_calloc(s.n_rows, sizeof *mc.counts)};
        if (mc.counts == NULL) rc = TXN_ERR_NOMEM;
        if (rc == TXN_OK) rc = scan_meta_counts(t, &mc, &err);
        for (size_t i = 0; rc == TXN_OK && i < s.n_rows; i++) {
            /* and a leaving node's: what decommission waits for */
            if (s.rows[i].membership != SRV_MEMBERSHIP_ACTIVE)
                s.rows[i].replicas = mc.counts[i];
            if (s.rows[i].liveness != SRV_LIVENESS_DEAD) continue;
            s.rows[i].replicas = mc.counts[i];
            s.rows[i].leases = 0;
        }
        base_free(mc.counts); /* owner: here */
    }
    if (t != NULL) {
        if (rc == TXN_OK) rc = txn_commit(t, NULL, &err);
        else txn_rollback(t);
    }
    if (rc != TXN_OK) {
        respond_error(n, j->from, j->request_id, SRV_ERR_UNAVAILABLE,
                      "cannot read the node table now (error %d%s%s)", rc,
                      err.message[0] ? ": " : "", err.message);
        goto done;
    }
    qsort(s.rows, s.n_rows, sizeof *s.rows, row_cmp);
    if (srv__status_encode(&s, &b) == SRV_OK) respond(n, j->from, j->request_id, SRV_OK, b.data, b.len);
    else respond_error(n, j->from, j->request_id, SRV_ERR_NOMEM, "out of memory");
done:
    base_free(nr.peers);
    srv_status_free(&s);
    base_buf_free(&b);
}

/* RANGES: what this node hosts, from local state (srv_ranges.c). */
static void job_ranges(srv_node *n, const srv__job *j) {
    srv__range_report *r = NULL;
    size_t count = 0;
    base_buf b = {0};
    if (srv__ranges_req_decode(j->payload, j->len) != SRV_OK) {
        respond_error(n, j->from, j->request_id, SRV_ERR_CORRUPT, "bad RANGES request");
        return;
    }
    if (get_db(n) == NULL) {
        respond_error(n, j->from, j->request_id, SRV_ERR_UNINITIALIZED,
                      "this node is not part of a cluster yet");
        return;
    }
    int rc = srv__ranges_local(n->rnode, n->cfg.engine, n->rserver, &r, &count);
    if (rc == SRV_OK) rc = srv__ranges_encode(r, count, &b);
    if (rc == SRV_OK) respond(n, j->from, j->request_id, SRV_OK, b.data, b.len);
    else respond_error(n, j->from, j->request_id, rc, "cannot list the ranges (error %d)", rc);
    srv__range_reports_free(r, count);
    base_buf_free(&b);
}

/* DRAIN (docs/operations.md, "Drain"): this process drains from now on
** (never undone: a restart ends it). Its next heartbeat, at once, records
** it; the replicate queue hands its leases away. Answers what is left. */
static void job_drain(srv_node *n, const srv__job *j) {
    base_buf b = {0};
    if (srv__drain_req_decode(j->payload, j->len) != SRV_OK) {
        respond_error(n, j->from, j->request_id, SRV_ERR_CORRUPT, "malformed DRAIN request");
        return;
    }
    if (get_db(n) == NULL) {
        respond_error(n, j->from, j->request_id, SRV_ERR_UNINITIALIZED,
                      "this node is not part of a cluster yet");
        return;
    }
    pthread_mutex_lock(&n->mu);
    bool first = !n->draining;
    n->draining = true;
    if (!n->draining_recorded) n->heartbeat_now = true;
    pthread_cond_broadcast(&n->cond);
    srv_drain_status st = {.node_id = n->st.node_id, .recorded = n->draining_recorded};
    range_node *rn = n->rnode; /* the stack lives until stop */
    pthread_mutex_unlock(&n->mu);
    if (first)
        BASE_INFO(MOD, "draining: new SQL connections on the RPC port are refused, leases go "
                  "to other nodes, no replica or lease is placed here");
    uint64_t ids[RANGE_NODE_REPLICAS_MAX];
    size_t n_ids = range_node_replica_ids(rn, ids, RANGE_NODE_REPLICAS_MAX);
    for (size_t i = 0; i < n_ids && i < RANGE_NODE_REPLICAS_MAX; i++) {
        range_replica *r = range_node_replica(rn, ids[i]);
        if (r == NULL) continue;
        range_replica_status s;
        range_replica_get_status(r, &s);
        st.replicas++;
        if (s.leader) st.leases++; /* a leader without a valid lease gets one soon */
    }
    if (srv__drain_resp_encode(&st, &b) == SRV_OK) respond(n, j->from, j->request_id, SRV_OK, b.data, b.len);
    else respond_error(n, j->from, j->request_id, SRV_ERR_NOMEM, "out of memory");
    base_buf_free(&b);
}

/* One DECOMMISSION attempt in transaction t: read the nodes, the liveness
** records and meta, decide, write the target's record when its membership
** changes. TXN_OK with *out filled (*changed: the membership was written),
** or *refused (an SRV_ERR_*) with why and nothing written, or a txn error. */
static int decommission_in(srv_node *n, txn *t, const srv__decommission_req *req,
                           srv_decommission_status *out, bool *changed, int *refused, char *why,
                           size_t why_size, txn_error *err) {
    node_rows nr = {0};
    srv_status s = {0};
    meta_counts mc = {.s = &s};
    base_buf v = {0};
    uint8_t key[SRV_KEY_SIZE_MAX], start[SRV_KEY_SIZE_MAX], end[SRV_KEY_SIZE_MAX];
    size_t end_len, start_len, kl = srv__key_liveness(key, req->node_id);
    int rc = scan_nodes(t, &nr, err);
    if (rc != TXN_OK) goto done;
    const srv_peer *node = srv__peers_find(nr.peers, nr.n, req->node_id);
    if (node == NULL) {
        *refused = SRV_ERR_INVALID;
        snprintf(why, why_size, "node %" PRIu64 " does not exist", req->node_id);
        goto done;
    }
    for (size_t i = 0; i < nr.n; i++) { /* every node, with a liveness record or not */
        if (status_row(&s, nr.peers[i].node_id) == NULL) {
            rc = TXN_ERR_NOMEM;
            goto done;
        }
    }
    live_rows lr = {.s = &s, .now_ns = hlc_physical_now_ns(n->cfg.clock),
                    .dead_after_ns = n->cfg.dead_after_ms * 1000000};
    start_len = srv__key_liveness_span(start, end, &end_len);
    if ((rc = scan_span(t, start, start_len, end, end_len, collect_liveness, &lr, err)) != TXN_OK)
        goto done;
    mc.counts = base_calloc(s.n_rows ? s.n_rows : 1, sizeof *mc.counts); /* owner: here */
    if (mc.counts == NULL) {
        rc = TXN_ERR_NOMEM;
        goto done;
    }
    if ((rc = scan_meta_counts(t, &mc, err)) != TXN_OK) goto done;
    srv__liveness_record rec = {.rpc = node->rpc, .sql = node->sql}; /* none yet: never beat */
    if ((rc = txn_get(t, key, kl, &v, err)) == TXN_OK) {
        if (srv__liveness_record_decode(v.data, v.len, &rec) != SRV_OK) {
            *refused = SRV_ERR_CORRUPT;
            snprintf(why, why_size, "the liveness record of node %" PRIu64 " is corrupt",
                     req->node_id);
            goto done;
        }
    } else if (rc != TXN_NOT_FOUND) {
        goto done;
    }
    rc = TXN_OK;
    size_t at = 0;
    while (s.rows[at].node_id != req->node_id) at++; /* status_row made it above */
    const srv_status_row *row = &s.rows[at];
    /* replicas left: meta's count, or while it runs the ones it still hosts
    ** (a change toward it that meta does not show yet) */
    uint32_t left = mc.counts[at];
    if (row->liveness == SRV_LIVENESS_LIVE && rec.replicas > left) left = rec.replicas;
    srv_membership was = (srv_membership)rec.membership, now = was;
    if (req->action == SRV_RECOMMISSION) {
        if (was == SRV_MEMBERSHIP_DECOMMISSIONED) {
            *refused = SRV_ERR_REFUSED;
            snprintf(why, why_size, "node %" PRIu64 " is decommissioned: it cannot come back "
                     "with that id (start a new store: it joins as a new node)", req->node_id);
            goto done;
        }
        now = SRV_MEMBERSHIP_ACTIVE;
    } else if (was == SRV_MEMBERSHIP_ACTIVE) {
        int crc = srv__decommission_check(s.rows, s.n_rows, req->node_id, n->cfg.replication,
                                          why, why_size);
        if (crc != SRV_OK) {
            *refused = crc;
            goto done;
        }
        now = SRV_MEMBERSHIP_DECOMMISSIONING;
    } else if (was == SRV_MEMBERSHIP_DECOMMISSIONING && req->finish && left == 0) {
        /* only from a record that said decommissioning already: the nodes
        ** had a liveness refresh to stop choosing it as a target */
        now = SRV_MEMBERSHIP_DECOMMISSIONED;
    }
    *changed = now != was;
    if (now != was) {
        rec.membership = (uint8_t)now;
        base_buf_reset(&v);
        if (srv__liveness_record_encode(&rec, &v) != SRV_OK) rc = TXN_ERR_NOMEM;
        else rc = txn_put(t, key, kl, v.data, v.len, err);
    }
    *out = (srv_decommission_status){.node_id = req->node_id, .membership = (uint8_t)now,
                                     .liveness = row->liveness, .replicas = left};
done:
    base_free(mc.counts);
    base_free(nr.peers);
    srv_status_free(&s);
    base_buf_free(&v);
    return rc;
}

/* DECOMMISSION (docs/operations.md, "Decommission"), on any node: one
** serializable read-modify-write of the target's liveness record, retried
** on conflicts (its own heartbeats write it too, keeping the membership). */
static void job_decommission(srv_node *n, const srv__job *j) {
    srv__decommission_req req;
    srv_decommission_status st = {0};
    char why[SRV_MESSAGE_SIZE_MAX] = "";
    base_buf b = {0};
    if (srv__decommission_req_decode(j->payload, j->len, &req) != SRV_OK) {
        respond_error(n, j->from, j->request_id, SRV_ERR_CORRUPT,
                      "malformed DECOMMISSION request");
        return;
    }
    txn_db *db = get_db(n);
    if (db == NULL) {
        respond_error(n, j->from, j->request_id, SRV_ERR_UNINITIALIZED,
                      "this node is not part of a cluster yet");
        return;
    }
    int refused = SRV_OK, rc = TXN_ERR_UNAVAILABLE;
    bool changed = false;
    txn_error err = {{0}, {0}};
    for (int attempt = 0; attempt < SRV_TXN_ATTEMPTS_MAX && !is_stopping(n); attempt++) {
        txn *t = NULL;
        if ((rc = txn_begin(db, NULL, &t)) != TXN_OK) break;
        rc = decommission_in(n, t, &req, &st, &changed, &refused, why, sizeof why, &err);
        if (rc != TXN_OK || refused != SRV_OK) {
            txn_rollback(t);
            if (rc == TXN_ERR_RETRY && refused == SRV_OK) continue;
            break;
        }
        rc = txn_commit(t, NULL, &err);
        if (rc != TXN_ERR_RETRY) break;
    }
    if (refused != SRV_OK) {
        respond_error(n, j->from, j->request_id, refused, "%s", why);
        return;
    }
    if (rc != TXN_OK) {
        respond_error(n, j->from, j->request_id, SRV_ERR_UNAVAILABLE,
                      "cannot change the membership of node %" PRIu64 " now (error %d%s%s); "
                      "retry", req.node_id, rc, err.message[0] ? ": " : "", err.message);
        return;
    }
    if (st.membership == SRV_MEMBERSHIP_DECOMMISSIONED) {
        pthread_mutex_lock(&n->mu); /* refused from now on here; the others at their refresh */
        size_t k = atomic_load(&n->n_decommissioned);
        bool known = false;
        for (size_t i = 0; i < k; i++) known = known || n->decommissioned[i] == req.node_id;
        if (!known && k < SRV_PEERS_MAX && req.node_id != n->st.node_id) {
            n->decommissioned[k] = req.node_id;
            atomic_store(&n->n_decommissioned, k + 1);
        }
        pthread_mutex_unlock(&n->mu);
    }
    if (changed) /* not every poll */
        BASE_INFO(MOD, "%s node %" PRIu64 ": now %s, %" PRIu32 " replica(s) left",
                  req.action == SRV_RECOMMISSION ? "recommission" : "decommission", req.node_id,
                  srv_membership_name((srv_membership)st.membership), st.replicas);
    if (srv__decommission_resp_encode(&st, &b) == SRV_OK)
        respond(n, j->from, j->request_id, SRV_OK, b.data, b.len);
    else
        respond_error(n, j->from, j->request_id, SRV_ERR_NOMEM, "out of memory");
    base_buf_free(&b);
}

/* ---- joining (uninitialized node) ---------------------------------------------------- */

static void on_join_response(void *ctx, int rc, const rpc_message *resp) {
    srv_node *n = ctx;
    pthread_mutex_lock(&n->mu);
    n->join_rc = rc;
    n->join_status = rc == RPC_OK ? resp->status : 0;
    base_buf_reset(&n->join_payload);
    if (rc == RPC_OK && resp->payload_len > 0 &&
        base_buf_append(&n->join_payload, resp->payload, resp->payload_len) != 0)
        n->join_rc = RPC_ERR_NOMEM;
    n->join_inflight = false;
    n->join_done = true;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->mu);
}

/* Send one JOIN to the next --join address that is not us. mu not held. */
static void start_join_attempt(srv_node *n) {
    base_buf b = {0};
    pthread_mutex_lock(&n->mu);
    const srv_addr *to = NULL;
    for (size_t tries = 0; tries < n->cfg.n_join && to == NULL; tries++) {
        const srv_addr *a = &n->cfg.join[n->join_next % n->cfg.n_join];
        n->join_next++;
        if (!srv__addr_equal(a, &n->self_rpc)) to = a;
    }
    srv__join_req req = {.token = n->join_token, .rpc = n->self_rpc, .sql = n->self_sql};
    rpc_uv *uv = n->uv;
    if (to == NULL) { /* only ourselves in the list: wait for INIT */
        n->join_at_ns = mono_ns() + (int64_t)SRV_JOIN_BACKOFF_MAX_MS * 1000000;
        pthread_mutex_unlock(&n->mu);
        return;
    }
    srv__addr_format(to, n->join_addr_text, sizeof n->join_addr_text);
    n->join_inflight = true;
    pthread_mutex_unlock(&n->mu);
    int rc = srv__join_req_encode(&req, &b);
    if (rc == SRV_OK)
        rc = rpc_uv_request_addr(uv, to->host, to->port, SRV_METHOD_JOIN, b.data, b.len,
                                 SRV_JOIN_TIMEOUT_MS, on_join_response, n);
    if (rc != RPC_OK) {
        pthread_mutex_lock(&n->mu);
        n->join_inflight = false;
        n->join_done = true;
        n->join_rc = rc;
        pthread_mutex_unlock(&n->mu);
    }
    base_buf_free(&b);
}

/* Control thread, mu not held: act on the finished JOIN attempt. */
static void handle_join_result(srv_node *n) {
    srv__join_resp resp = {0};
    srv__state st = {0};
    pthread_mutex_lock(&n->mu);
    n->join_done = false;
    int rc = n->join_rc;
    int32_t status = n->join_status;
    bool initialized = n->st.initialized;
    base_buf payload = n->join_payload; /* moved out */
    n->join_payload = (base_buf){0};
    char where[sizeof n->join_addr_text];
    memcpy(where, n->join_addr_text, sizeof where);
    pthread_mutex_unlock(&n->mu);
    if (initialized) goto done; /* INIT or BOOTSTRAP came first */
    if (rc != RPC_OK || status != SRV_OK) {
        if (rc == RPC_OK && status != SRV_ERR_UNINITIALIZED)
            BASE_INFO(MOD, "join via %s refused: %.*s", where, (int)payload.len,
                      payload.data ? (const char *)payload.data : "");
        else
            BASE_DEBUG(MOD, "join via %s: %s", where,
                       rc == RPC_OK ? "not initialized either" : rpc_strerror(rc));
        goto retry;
    }
    if (srv__join_resp_decode(payload.data, payload.len, &resp) != SRV_OK ||
        srv__peers_find(resp.peers, resp.n_peers, resp.node_id) == NULL) {
        BASE_WARN(MOD, "join via %s: malformed answer", where);
        goto retry;
    }
    if (state_from(&st, resp.cluster_id, resp.node_id, 0, resp.peers, resp.n_peers, resp.descs,
                   resp.n_descs) != SRV_OK ||
        srv__store_save(n->cfg.engine, &st, NULL, 0, HLC_ZERO) != SRV_OK) {
        fatal(n, "join: cannot persist the node identity");
        goto done;
    }
    BASE_INFO(MOD, "joined cluster %016" PRIx64 " as node %" PRIu64 " via %s", resp.cluster_id,
              resp.node_id, where);
    become_initialized(n, &st);
    goto done;
retry:
    pthread_mutex_lock(&n->mu);
    /* Bounded exponential backoff over rounds of the whole list. */
    if (n->join_next % (n->cfg.n_join ? n->cfg.n_join : 1) == 0)
        n->join_backoff_ms = BASE_MIN(n->join_backoff_ms * 2, SRV_JOIN_BACKOFF_MAX_MS);
    n->join_at_ns = mono_ns() + n->join_backoff_ms * 1000000;
    pthread_mutex_unlock(&n->mu);
done:
    base_buf_free(&payload);
    srv__join_resp_free(&resp);
    srv__state_free(&st);
}

/* An admin tool's request with a client certificate (j->user): root may
** call every admin method; another user only when the key space says it
** is root or a member of admin (a LOGIN role), read per request, so a
** REVOKE applies to the next poll; INIT is root's alone (before it there
** are no users). True: run it; false: answered with the refusal. */
static bool job_admin_allowed(srv_node *n, const srv__job *j) {
    if (j->user[0] == '\0' || strcmp(j->user, "root") == 0) return true;
    if (j->method == SRV_METHOD_INIT) {
        BASE_WARN(MOD, "INIT from a client certificate of user \"%s\" refused: root only",
                  j->user);
        respond_error(n, j->from, j->request_id, SRV_ERR_REFUSED,
                      "permission denied: only root may initialize a cluster (user \"%s\")",
                      j->user);
        return false;
    }
    pthread_mutex_lock(&n->mu);
    sqlv_engine *eng = n->sql; /* closed only after this thread is joined */
    pthread_mutex_unlock(&n->mu);
    if (eng == NULL) {
        respond_error(n, j->from, j->request_id, SRV_ERR_UNAVAILABLE,
                      "cannot check the privileges of user \"%s\": SQL is not open on this "
                      "node yet; retry, or use root's certificate", j->user);
        return false;
    }
    sqlv_auth_info info;
    int rc = sqlv_auth_lookup(eng, j->user, &info);
    if (rc != SQLV_OK) {
        respond_error(n, j->from, j->request_id, SRV_ERR_UNAVAILABLE,
                      "cannot check the privileges of user \"%s\" (error %d); retry", j->user,
                      rc);
        return false;
    }
    bool allowed = info.exists && info.can_login && info.is_admin;
    memset(info.verifier, 0, sizeof info.verifier); /* a secret: not left on the stack */
    if (allowed) return true;
    BASE_WARN(MOD, "admin request (method %" PRIu32 ") from a client certificate of user \"%s\" "
              "refused: not root or a member of admin", j->method, j->user);
    respond_error(n, j->from, j->request_id, SRV_ERR_REFUSED,
                  "permission denied: user \"%s\" is not root or a member of admin (node "
                  "commands need admin rights)", j->user);
    return false;
}

/* PROBE of a client certificate that job_admin_allowed let through. */
static void job_probe(srv_node *n, const srv__job *j) {
    base_buf b = {0};
    int rc = probe_encode(n, &b);
    if (rc == SRV_OK) respond(n, j->from, j->request_id, SRV_OK, b.data, b.len);
    else respond(n, j->from, j->request_id, rc, NULL, 0);
    base_buf_free(&b);
}

static void *control_main(void *arg) {
    srv_node *n = arg;
    pthread_mutex_lock(&n->mu);
    while (!n->stopping) {
        if (n->job_count > 0) {
            srv__job j = n->jobs[n->job_head];
            n->job_head = (n->job_head + 1) % SRV_JOBS_MAX;
            n->job_count--;
            pthread_mutex_unlock(&n->mu);
            switch (job_admin_allowed(n, &j) ? j.method : 0) {
            case SRV_METHOD_PROBE: job_probe(n, &j); break;
            case SRV_METHOD_INIT: job_init(n, &j); break;
            case SRV_METHOD_BOOTSTRAP: job_bootstrap(n, &j); break;
            case SRV_METHOD_JOIN: job_join(n, &j); break;
            case SRV_METHOD_STATUS: job_status(n, &j); break;
            case SRV_METHOD_RANGES: job_ranges(n, &j); break;
            case SRV_METHOD_DRAIN: job_drain(n, &j); break;
            case SRV_METHOD_DECOMMISSION: job_decommission(n, &j); break;
            default: break;
            }
            base_free(j.payload);
            pthread_mutex_lock(&n->mu);
            continue;
        }
        if (n->join_done) {
            pthread_mutex_unlock(&n->mu);
            handle_join_result(n);
            pthread_mutex_lock(&n->mu);
            continue;
        }
        int64_t now = mono_ns();
        int64_t next = now + 1000000000LL;
        if (!n->st.initialized && n->cfg.n_join > 0 && !n->join_inflight) {
            if (now >= n->join_at_ns) {
                pthread_mutex_unlock(&n->mu);
                start_join_attempt(n);
                pthread_mutex_lock(&n->mu);
                continue;
            }
            next = BASE_MIN(next, n->join_at_ns);
        }
        wait_until(n, next);
    }
    /* Jobs left are dropped: their requesters time out or see the
    ** connection close. */
    while (n->job_count > 0) {
        base_free(n->jobs[n->job_head].payload);
        n->job_head = (n->job_head + 1) % SRV_JOBS_MAX;
        n->job_count--;
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

/* ---- clock offset (docs/clocks.md, section 3) ------------------------------------ */

/* One ping in flight; owner: on_clock_answer, which runs exactly once. */
typedef struct srv__clock_ping {
    srv_node *node;
    uint64_t peer_id;
    int64_t sent_ns; /* our physical clock when sent */
} srv__clock_ping;

/* Loop thread: offset = remote - (send + recv) / 2 within +- rtt / 2 (the
** remote read its clock somewhere in [send, recv] of ours). */
static void on_clock_answer(void *ctx, int rc, const rpc_message *resp) {
    srv__clock_ping *p = ctx;
    srv_node *n = p->node;
    int64_t recv_ns = hlc_physical_now_ns(n->cfg.clock);
    srv__clock_resp a;
    bool ok = rc == RPC_OK && resp->status == SRV_OK && resp->from == p->peer_id &&
              srv__clock_resp_decode(resp->payload, resp->payload_len, &a) == SRV_OK &&
              a.sent_ns == p->sent_ns && recv_ns >= p->sent_ns &&
              recv_ns - p->sent_ns <= (int64_t)SRV_CLOCK_TIMEOUT_MS * 2000000;
    /* A slow answer (the peer or we were paused, a stalled loop) still gives
    ** a true bound, but a loose one: it would replace a tight, still-valid
    ** sample and could push the bound past --max-offset for no clock reason
    ** (the chaos pause nemesis did exactly that). Keep the previous sample;
    ** the next ping measures again. */
    if (ok && (recv_ns - p->sent_ns) / 2 > hlc_max_offset_ns(n->cfg.clock) / 4) ok = false;
    /* a peer refuses only a decommissioned node's rpc (refuse_sender) */
    bool refused = rc == RPC_OK && resp->status == SRV_ERR_REFUSED;
    if (ok) {
        int64_t rtt_ns = recv_ns - p->sent_ns;
        hlc_peer_sample m = {.offset_ns = a.remote_ns - (p->sent_ns + rtt_ns / 2),
                             .uncertainty_ns = rtt_ns - rtt_ns / 2,
                             .measured_at_ns = p->sent_ns,
                             .peer_has_majority = a.majority};
        hlc_epsilon_peer_sample(n->cfg.clock, p->peer_id, &m);
    }
    pthread_mutex_lock(&n->mu);
    srv__clock_peer *cp = clock_peer_locked(n, p->peer_id);
    if (cp != NULL) {
        cp->inflight = false;
        if (ok) {
            cp->seen_ns = mono_ns();
            cp->forgotten = false; /* the sample tracks it again */
        }
    }
    n->clock_inflight--;
    if (refused && !n->self_decommissioned) {
        BASE_WARN(MOD, "node %" PRIu64 " refuses this node: it is decommissioned; it stops its "
                  "cluster work and should be stopped", p->peer_id);
        n->self_decommissioned = true;
    }
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->mu);
    base_free(p);
}

/* Periodic thread: list the peers, track the live ones and forget those
** dead in liveness and silent for the staleness bound, set "alone" (no
** other node in the table), ping every peer without a ping out, and feed
** the kernel's NTP reading. */
static void clock_round(srv_node *n) {
    enum { SEND = 1, TRACK = 2, FORGET = 4 };
    uint8_t action[SRV_PEERS_MAX];
    uint64_t ids[SRV_PEERS_MAX];
    size_t k = 0;
    int64_t now = mono_ns();
    pthread_mutex_lock(&n->mu);
    rpc_uv *uv = n->uv;
    for (size_t i = 0; i < n->st.n_peers; i++) {
        uint64_t id = n->st.peers[i].node_id;
        if (id == n->st.node_id || clock_peer_locked(n, id) != NULL) continue;
        if (n->n_clock_peers == SRV_PEERS_MAX) break;
        n->clock_peers[n->n_clock_peers++] = (srv__clock_peer){.id = id, .seen_ns = now};
    }
    for (size_t i = 0; i < n->n_clock_peers; i++) {
        srv__clock_peer *cp = &n->clock_peers[i];
        /* Dead in liveness and silent for a while: out of the bound. Well
        ** before its sample goes stale (HLC_MEASUREMENT_STALE_NS), because
        ** a stale sample of a tracked peer counts against the majority:
        ** with half the nodes dead the survivors would stop serving in the
        ** window between staleness and forgetting. */
        bool silent = now - cp->seen_ns >= (int64_t)SRV_CLOCK_FORGET_SILENT_MS * 1000000;
        bool gone = (cp->dead && silent) || cp->decommissioned; /* it serves nothing */
        ids[k] = cp->id;
        action[k] = gone ? FORGET : TRACK;
        if (!cp->inflight && !gone) {
            cp->inflight = true;
            n->clock_inflight++;
            action[k] |= SEND;
        }
        if (action[k] & FORGET) {
            if (!cp->forgotten)
                BASE_INFO(MOD, "clock: node %" PRIu64 " is %s: no longer in the offset bound",
                          cp->id, cp->decommissioned ? "decommissioned" : "dead and silent");
            cp->forgotten = true;
        }
        k++;
    }
    n->clock_rounds++;
    pthread_mutex_unlock(&n->mu);
    hlc_clock *clock = n->cfg.clock;
    hlc_epsilon_set_alone(clock, k == 0); /* the only node of its cluster */
    for (size_t i = 0; i < k; i++) {
        if (action[i] & FORGET) hlc_epsilon_peer_forget(clock, ids[i]);
        else hlc_epsilon_peer_track(clock, ids[i]);
        if (!(action[i] & SEND)) continue;
        base_buf b = {0};
        srv__clock_ping *p = base_malloc(sizeof *p); /* owner: on_clock_answer */
        int rc = p == NULL ? RPC_ERR_NOMEM : RPC_OK;
        if (rc == RPC_OK) {
            *p = (srv__clock_ping){.node = n, .peer_id = ids[i],
                                   .sent_ns = hlc_physical_now_ns(clock)};
            rc = srv__clock_req_encode(p->sent_ns, &b) == SRV_OK ? RPC_OK : RPC_ERR_NOMEM;
        }
        if (rc == RPC_OK)
            rc = rpc_request(rpc_uv_transport(uv), ids[i], SRV_METHOD_CLOCK, b.data, b.len,
                             SRV_CLOCK_TIMEOUT_MS, on_clock_answer, p);
        base_buf_free(&b);
        if (rc != RPC_OK) { /* the callback will not run */
            base_free(p);
            pthread_mutex_lock(&n->mu);
            srv__clock_peer *cp = clock_peer_locked(n, ids[i]);
            if (cp != NULL) cp->inflight = false;
            n->clock_inflight--;
            pthread_mutex_unlock(&n->mu);
        }
    }
    hlc_ntp_reading ntp;
    if (hlc_ntp_read(&ntp) == 0) hlc_epsilon_set_ntp(clock, &ntp);
}

/* Unbounded: hand every lease held here to another replica of its range
** (rotating over them round by round); they serve, we do not. */
static void clock_give_up_leases(srv_node *n) {
    uint64_t ids[RANGE_NODE_REPLICAS_MAX];
    size_t n_ids = range_node_replica_ids(n->rnode, ids, RANGE_NODE_REPLICAS_MAX);
    for (size_t i = 0; i < n_ids && i < RANGE_NODE_REPLICAS_MAX; i++) {
        range_replica *r = range_node_replica(n->rnode, ids[i]);
        range_replica_status s;
        range_descriptor d;
        if (r == NULL) continue;
        range_replica_get_status(r, &s);
        if (!s.leader || range_replica_descriptor(r, &d) != RANGE_OK) continue;
        uint64_t target = 0;
        for (size_t k = 0; k < d.n_replicas && target == 0; k++) {
            uint64_t c = d.replicas[(k + n->clock_rounds) % d.n_replicas];
            if (c != n->st.node_id) target = c;
        }
        if (target != 0 && range_replica_transfer_lease(r, target, NULL) == RANGE_OK)
            BASE_INFO(MOD, "clock offset bound unavailable: handing the lease of range %" PRIu64
                      " to node %" PRIu64, ids[i], target);
        range_descriptor_free(&d);
    }
}

/* Log the clock status once per change (not during the start's grace), and
** give up leases while it is unbounded. */
static void clock_check(srv_node *n, bool grace) {
    hlc_epsilon_report r;
    char why[HLC_DESCRIBE_SIZE];
    hlc_epsilon_explain(n->cfg.clock, &r);
    hlc_epsilon_describe(&r, why, sizeof why);
    if (r.status == HLC_EPSILON_OK && (!n->clock_logged || n->clock_logged_status != r.status)) {
        BASE_INFO(MOD, "clock offset bound %s: %s; serving", n->clock_logged ? "back" : "established",
                  why);
        n->clock_logged = true;
        n->clock_logged_status = r.status;
    } else if (r.status != HLC_EPSILON_OK && !grace &&
               (!n->clock_logged || n->clock_logged_status != r.status)) {
        BASE_WARN(MOD, "clock offset bound unavailable: %s; this node refuses KV requests as "
                  "leaseholder, gives up its leases and begins no transaction until it is back",
                  why);
        n->clock_logged = true;
        n->clock_logged_status = r.status;
    }
    if (r.status != HLC_EPSILON_OK && !grace) clock_give_up_leases(n);
}

/* The nodes whose rpc is refused: decommissioned ones (never undone). mu held. */
static void note_decommissioned_locked(srv_node *n, const srv_status_row *rows, size_t n_rows) {
    size_t k = 0;
    for (size_t i = 0; i < n_rows && k < SRV_PEERS_MAX; i++) {
        if (rows[i].membership != SRV_MEMBERSHIP_DECOMMISSIONED) continue;
        if (rows[i].node_id != n->st.node_id) {
            n->decommissioned[k++] = rows[i].node_id;
        } else if (!n->self_decommissioned) {
            BASE_WARN(MOD, "this node (%" PRIu64 ") is decommissioned: the cluster refuses its "
                      "requests; it stops its cluster work and should be stopped",
                      rows[i].node_id);
            n->self_decommissioned = true;
        }
    }
    atomic_store(&n->n_decommissioned, k);
}

/* Mark the clock peers whose liveness record says dead (for the forget
** rule), from the liveness span read in t. */
static void clock_note_liveness(srv_node *n, txn *t, txn_error *err) {
    srv_status s = {0};
    live_rows lr = {.s = &s, .now_ns = hlc_physical_now_ns(n->cfg.clock),
                    .dead_after_ns = n->cfg.dead_after_ms * 1000000};
    uint8_t start[SRV_KEY_SIZE_MAX], end[SRV_KEY_SIZE_MAX];
    size_t end_len, start_len = srv__key_liveness_span(start, end, &end_len);
    if (scan_span(t, start, start_len, end, end_len, collect_liveness, &lr, err) == TXN_OK) {
        /* the replicate queue plans from the same read */
        (void)srv__replq_note_liveness(&n->replq, s.rows, s.n_rows, lr.now_ns, mono_ns());
        pthread_mutex_lock(&n->mu);
        for (size_t i = 0; i < n->n_clock_peers; i++) {
            srv__clock_peer *cp = &n->clock_peers[i];
            cp->dead = false;
            for (size_t j = 0; j < s.n_rows; j++) {
                if (s.rows[j].node_id != cp->id) continue;
                cp->dead = s.rows[j].liveness == SRV_LIVENESS_DEAD;
                cp->decommissioned = s.rows[j].membership == SRV_MEMBERSHIP_DECOMMISSIONED;
            }
        }
        note_decommissioned_locked(n, s.rows, s.n_rows);
        pthread_mutex_unlock(&n->mu);
    }
    srv_status_free(&s);
}

/* ---- periodic work ------------------------------------------------------------------ */

static void heartbeat(srv_node *n) {
    uint32_t replicas = 0, leases = 0;
    uint64_t ids[RANGE_NODE_REPLICAS_MAX];
    size_t n_ids = range_node_replica_ids(n->rnode, ids, RANGE_NODE_REPLICAS_MAX);
    for (size_t i = 0; i < n_ids && i < RANGE_NODE_REPLICAS_MAX; i++) {
        range_replica *r = range_node_replica(n->rnode, ids[i]);
        if (r == NULL) continue;
        range_replica_status s;
        range_replica_get_status(r, &s);
        replicas++;
        if (s.leader && s.lease_valid) leases++;
    }
    pthread_mutex_lock(&n->mu);
    srv__liveness_record rec = {.rpc = n->self_rpc, .sql = n->self_sql, .replicas = replicas,
                                .leases = leases, .draining = n->draining};
    pthread_mutex_unlock(&n->mu);
    uint8_t key[SRV_KEY_SIZE_MAX];
    size_t kl = srv__key_liveness(key, n->st.node_id);
    base_buf v = {0};
    txn_error err = {{0}, {0}};
    int rc = TXN_ERR_UNAVAILABLE;
    uint64_t epoch = n->epoch;
    for (int attempt = 0; attempt < 3; attempt++) {
        txn *t = NULL;
        if ((rc = txn_begin(n->db, NULL, &t)) != TXN_OK) break;
        /* the old record: its epoch (first heartbeat of this process: the
        ** next one) and its membership, which only (re)commission changes */
        base_buf_reset(&v);
        srv__liveness_record old;
        rc = txn_get(t, key, kl, &v, &err);
        if (rc != TXN_OK && rc != TXN_NOT_FOUND) {
            txn_rollback(t);
            if (rc == TXN_ERR_RETRY) continue;
            break;
        }
        bool have = rc == TXN_OK && srv__liveness_record_decode(v.data, v.len, &old) == SRV_OK;
        epoch = n->epoch != 0 ? n->epoch : have ? old.epoch + 1 : 1;
        rec.membership = have ? old.membership : SRV_MEMBERSHIP_ACTIVE;
        rec.epoch = epoch;
        rec.heartbeat_ns = hlc_physical_now_ns(n->cfg.clock);
        rec.expiration_ns = rec.heartbeat_ns + n->cfg.liveness_ttl_ms * 1000000;
        base_buf_reset(&v);
        if (srv__liveness_record_encode(&rec, &v) != SRV_OK ||
            (rc = txn_put(t, key, kl, v.data, v.len, &err)) != TXN_OK) {
            txn_rollback(t);
            if (rc == TXN_OK) rc = TXN_ERR_NOMEM;
            break;
        }
        rc = txn_commit(t, NULL, &err);
        if (rc != TXN_ERR_RETRY) break;
    }
    if (rc == TXN_OK) {
        if (n->epoch != epoch) BASE_INFO(MOD, "liveness: heartbeating with epoch %" PRIu64, epoch);
        n->epoch = epoch;
        pthread_mutex_lock(&n->mu);
        n->draining_recorded = rec.draining;
        pthread_mutex_unlock(&n->mu);
        if (n->heartbeat_failing) BASE_INFO(MOD, "liveness heartbeat succeeds again");
        n->heartbeat_failing = false;
    } else if (!n->heartbeat_failing) {
        BASE_WARN(MOD, "liveness heartbeat failed (error %d%s%s); retrying", rc,
                  err.message[0] ? ": " : "", err.message);
        n->heartbeat_failing = true;
    }
    base_buf_free(&v);
}

/* Read the node records; add new/changed addresses to the transport and
** persist the table when it changed. Also rewrite our own record when our
** addresses changed since it was written (a restart on another port). */
static void refresh_peers(srv_node *n) {
    node_rows nr = {0};
    txn_error err = {{0}, {0}};
    txn *t = NULL;
    txn_options ro = {.read_only = true};
    int rc = txn_begin(n->db, &ro, &t);
    if (rc == TXN_OK) rc = scan_nodes(t, &nr, &err);
    if (rc == TXN_OK) clock_note_liveness(n, t, &err);
    if (t != NULL) {
        if (rc == TXN_OK) rc = txn_commit(t, NULL, &err);
        else txn_rollback(t);
    }
    if (rc != TXN_OK) goto done;
    bool any = false;
    srv_peer *mine = NULL;
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < nr.n; i++) {
        const srv_peer *p = &nr.peers[i];
        if (p->node_id == n->st.node_id) {
            mine = &nr.peers[i];
            continue;
        }
        bool changed = false;
        if (srv__peers_upsert(&n->st.peers, &n->st.n_peers, p, &changed) != SRV_OK) continue;
        if (changed) {
            any = true;
            rpc_uv_add_peer(n->uv, p->node_id, p->rpc.host, p->rpc.port);
            BASE_INFO(MOD, "peer table: node %" PRIu64 " at %s:%d", p->node_id, p->rpc.host,
                      p->rpc.port);
        }
    }
    srv_peer self = {.node_id = n->st.node_id, .rpc = n->self_rpc, .sql = n->self_sql};
    bool self_stale = mine == NULL || !srv__addr_equal(&mine->rpc, &self.rpc) ||
                      !srv__addr_equal(&mine->sql, &self.sql);
    pthread_mutex_unlock(&n->mu);
    if (any && srv__store_save_peers(n->cfg.engine, n->st.peers, n->st.n_peers) != SRV_OK)
        BASE_WARN(MOD, "cannot persist the peer table");
    if (self_stale) { /* our address changed: rewrite our record, keep its token */
        uint8_t key[SRV_KEY_SIZE_MAX];
        size_t kl = srv__key_node(key, n->st.node_id);
        base_buf v = {0};
        srv__node_record rec = {.rpc = self.rpc, .sql = self.sql};
        if (srv__node_record_encode(&rec, &v) == SRV_OK && txn_begin(n->db, NULL, &t) == TXN_OK) {
            if (txn_put(t, key, kl, v.data, v.len, &err) == TXN_OK) {
                if (txn_commit(t, NULL, &err) == TXN_OK)
                    BASE_INFO(MOD, "node record updated with this node's addresses");
            } else {
                txn_rollback(t);
            }
        }
        base_buf_free(&v);
    }
done:
    base_free(nr.peers);
}

/* Meta entries this node's led ranges make stale: an entry at another key
** over a key of a led range at a lower generation (the generation of the
** range covering a key only grows: range/meta.c) is a range merged away
** or the led range's own old entry (its end moved). Collected by a scan of
** meta: their keys, at most SRV_META_DELETES_MAX. */
typedef struct meta_stale {
    const range_descriptor *led;
    size_t n_led;
    base_buf keys;  /* owned: the keys, back to back */
    size_t lens[SRV_META_DELETES_MAX];
    size_t n;
} meta_stale;

static int collect_stale_meta(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v,
                              size_t vl) {
    meta_stale *ms = ctx;
    range_descriptor e;
    if (ms->n >= SRV_META_DELETES_MAX || range_descriptor_decode(v, vl, &e) != RANGE_OK)
        return TXN_OK; /* full, or unreadable: left alone */
    bool stale = false;
    base_buf own = {0};
    for (size_t i = 0; i < ms->n_led && !stale; i++) {
        const range_descriptor *h = &ms->led[i];
        if (!range_descriptor_contains(h, e.start_key, e.start_len) ||
            h->generation <= e.generation)
            continue;
        /* the led range's own key is rewritten, not deleted */
        stale = range_meta_key(h, &own) == RANGE_OK &&
                !(own.len == kl && memcmp(own.data, k, kl) == 0);
    }
    base_buf_free(&own);
    range_descriptor_free(&e);
    if (!stale) return TXN_OK;
    if (base_buf_append(&ms->keys, k, kl) != 0) return TXN_ERR_NOMEM;
    ms->lens[ms->n++] = kl;
    return TXN_OK;
}

/* Meta entries of the ranges this node leads that are missing or behind the
** range's own descriptor (a crash between a split and its meta
** transaction; a store from before meta) are rewritten, and the entries
** those ranges make stale (a merge's old entries: collect_stale_meta) are
** deleted, in one transaction. Routing never depends on it (KEY_MISMATCH
** answers carry descriptors); range_meta_replaces keeps meta from moving
** backwards. */
static void repair_meta(srv_node *n) {
    uint64_t ids[RANGE_NODE_REPLICAS_MAX];
    range_descriptor *led = NULL; /* owner: this function */
    size_t n_led = 0;
    base_buf key = {0}, val = {0};
    txn_error err = {{0}, {0}};
    int rc = TXN_OK;
    size_t n_ids = range_node_replica_ids(n->rnode, ids, RANGE_NODE_REPLICAS_MAX);
    if (n_ids > RANGE_NODE_REPLICAS_MAX) n_ids = RANGE_NODE_REPLICAS_MAX;
    led = base_calloc(n_ids ? n_ids : 1, sizeof *led);
    if (led == NULL) return;
    for (size_t i = 0; i < n_ids; i++) {
        range_replica *r = range_node_replica(n->rnode, ids[i]);
        range_replica_status s;
        if (r == NULL) continue;
        range_replica_get_status(r, &s);
        if (s.leader && s.lease_valid && range_replica_descriptor(r, &led[n_led]) == RANGE_OK)
            n_led++;
    }
    size_t written = 0, deleted = 0;
    meta_stale ms = {.led = led, .n_led = n_led};
    for (int attempt = 0; n_led > 0 && attempt < SRV_TXN_ATTEMPTS_MAX; attempt++) {
        txn *t = NULL;
        written = deleted = 0;
        if ((rc = txn_begin(n->db, NULL, &t)) != TXN_OK) break;
        for (size_t i = 0; rc == TXN_OK && i < n_led; i++) {
            range_descriptor stored;
            bool have = false;
            if (range_meta_key(&led[i], &key) != RANGE_OK) {
                rc = TXN_ERR_NOMEM;
                break;
            }
            rc = txn_get(t, key.data, key.len, &val, &err);
            if (rc == TXN_OK) have = range_descriptor_decode(val.data, val.len, &stored) == RANGE_OK;
            else if (rc == TXN_NOT_FOUND) rc = TXN_OK;
            if (rc != TXN_OK) break;
            bool stale = range_meta_replaces(have ? &stored : NULL, &led[i]);
            if (have) range_descriptor_free(&stored);
            if (!stale) continue;
            base_buf_reset(&val);
            if (range_descriptor_encode(&led[i], &val) != RANGE_OK) {
                rc = TXN_ERR_NOMEM;
                break;
            }
            rc = txn_put(t, key.data, key.len, val.data, val.len, &err);
            written++;
        }
        if (rc == TXN_OK) { /* entries of ranges merged away, old ends */
            uint8_t start[RANGE_META_PREFIX_LEN + 1], end[RANGE_META_PREFIX_LEN + 1];
            memcpy(start, RANGE_META_PREFIX, RANGE_META_PREFIX_LEN);
            memcpy(end, RANGE_META_PREFIX, RANGE_META_PREFIX_LEN);
            start[RANGE_META_PREFIX_LEN] = 0x01; /* meta.c's tags: 0x01 end key, 0x02 last */
            end[RANGE_META_PREFIX_LEN] = 0x03;
            base_buf_reset(&ms.keys);
            ms.n = 0;
            rc = scan_span(t, start, sizeof start, end, sizeof end, collect_stale_meta, &ms, &err);
            size_t at = 0;
            for (size_t i = 0; rc == TXN_OK && i < ms.n; i++) {
                rc = txn_delete(t, ms.keys.data + at, ms.lens[i], &err);
                at += ms.lens[i];
                deleted++;
            }
        }
        if (rc != TXN_OK) {
            txn_rollback(t);
            if (rc == TXN_ERR_RETRY) continue;
            break;
        }
        if (written + deleted == 0) { /* meta is current: nothing to commit */
            txn_rollback(t);
            break;
        }
        rc = txn_commit(t, NULL, &err);
        if (rc != TXN_ERR_RETRY) break;
    }
    if (rc == TXN_OK && written + deleted > 0)
        BASE_INFO(MOD, "meta: %zu entr%s of ranges led here rewritten, %zu stale one%s deleted",
                  written, written == 1 ? "y" : "ies", deleted, deleted == 1 ? "" : "s");
    else if (rc != TXN_OK)
        BASE_DEBUG(MOD, "meta check failed (error %d%s%s); next time", rc,
                   err.message[0] ? ": " : "", err.message);
    for (size_t i = 0; i < n_led; i++) range_descriptor_free(&led[i]);
    base_free(led);
    base_buf_free(&ms.keys);
    base_buf_free(&key);
    base_buf_free(&val);
}

/* The merge watchdog (docs/range.md, "Merges"): a range this node leads
** that stays frozen by one merge for SRV_FROZEN_MAX_MS lost its
** orchestrator (a crash, a partition): fence the merge in the range below
** it and unfreeze it (range_router_abandon_merge), which is safe whether or
** not the merge happened: the fence's answer says `merged` (the range below
** holds R's start, or the merge applied in its lineage, though it split
** again at R's start since), and then nothing is unfrozen. */
static void watch_frozen(srv_node *n) {
    uint64_t ids[RANGE_NODE_REPLICAS_MAX];
    size_t n_ids = range_node_replica_ids(n->rnode, ids, RANGE_NODE_REPLICAS_MAX);
    if (n_ids > RANGE_NODE_REPLICAS_MAX) n_ids = RANGE_NODE_REPLICAS_MAX;
    int64_t now = mono_ns();
    size_t kept = 0;
    for (size_t i = 0; i < n_ids && kept < SRV_FROZEN_TRACKED_MAX; i++) {
        uint64_t merge_id = 0;
        bool leads = false;
        if (range_server_frozen(n->rserver, ids[i], &merge_id, &leads) != RANGE_OK ||
            merge_id == 0 || !leads)
            continue;
        int64_t since = now;
        for (size_t j = 0; j < n->n_frozen; j++)
            if (n->frozen[j].range_id == ids[i] && n->frozen[j].merge_id == merge_id)
                since = n->frozen[j].since_ns;
        /* kept before it is acted on: a failed attempt is retried next time */
        n->frozen[kept].range_id = ids[i];
        n->frozen[kept].merge_id = merge_id;
        n->frozen[kept].since_ns = since;
        kept++;
        if (now - since < (int64_t)SRV_FROZEN_MAX_MS * 1000000) continue;
        range_replica *r = range_node_replica(n->rnode, ids[i]);
        range_descriptor d;
        memset(&d, 0, sizeof d);
        if (r == NULL || range_replica_descriptor(r, &d) != RANGE_OK) continue;
        BASE_WARN(MOD, "range %" PRIu64 " frozen by merge %016" PRIx64 " for %" PRId64 " s: its "
                  "orchestrator is gone; fencing the merge and unfreezing the range", ids[i],
                  merge_id, (now - since) / 1000000000);
        bool merged = false;
        int rc = d.start_len > 0 ? range_router_abandon_merge(n->router, ids[i], d.start_key,
                                                              d.start_len, merge_id, &merged)
                                 : RANGE_ERR_INVALID;
        if (rc == RANGE_OK)
            BASE_INFO(MOD, "range %" PRIu64 ": merge %016" PRIx64 " %s", ids[i], merge_id,
                      merged ? "had happened (its replicas go as the merge applies)"
                             : "abandoned: the range serves again");
        else
            BASE_WARN(MOD, "range %" PRIu64 ": merge %016" PRIx64 " not abandoned yet (error %d); "
                      "again in %d ms", ids[i], merge_id, rc, SRV_FROZEN_WATCH_MS);
        range_descriptor_free(&d);
    }
    n->n_frozen = kept;
}

static void open_sql(srv_node *n) {
    sqlv_engine *eng = NULL;
    gw_server *gw = NULL;
    int rc = sqlv_engine_open(n->db, &eng);
    if (rc != SQLV_OK) {
        if (!n->sql_open_failing)
            BASE_WARN(MOD, "cannot open the SQL engine yet (error %d); retrying every %d ms", rc,
                      SRV_SQL_RETRY_MS);
        n->sql_open_failing = true;
        return;
    }
    /* SHOW RANGES and ALTER RANGE (srv_ranges.c), before any session runs */
    pthread_mutex_lock(&n->mu);
    n->admin.self = n->st.node_id;
    n->admin.rnode = n->rnode;
    n->admin.router = n->router;
    n->admin.db = n->db;
    n->admin.uv = n->uv;
    n->admin.rserver = n->rserver;
    pthread_mutex_unlock(&n->mu);
    n->admin.engine = n->cfg.engine;
    n->admin.clock = n->cfg.clock;
    n->admin.dead_after_ms = n->cfg.dead_after_ms;
    sqlv_admin admin;
    srv__admin_sql(&n->admin, &admin);
    sqlv_engine_set_admin(eng, &admin);
    gw_options go = {.host = n->cfg.sql_separate ? n->cfg.sql.host : n->cfg.listen.host,
                     .port = n->cfg.sql_separate ? n->cfg.sql.port : GW_PORT_NONE,
                     .tls = n->cfg.tls,
                     .max_connections = n->cfg.sql_max_connections,
                     .max_connections_per_user = n->cfg.sql_max_connections_per_user};
    if ((rc = gw_start(eng, &go, &gw)) != GW_OK) {
        BASE_ERROR(MOD, "cannot serve SQL on %s:%d (error %d; is the port in use?)", go.host,
                   go.port, rc);
        sqlv_engine_close(eng);
        fatal(n, "cannot start the SQL gateway");
        return;
    }
    pthread_mutex_lock(&n->mu);
    n->sql = eng;
    n->gw = gw;
    n->sql_ready = true;
    if (n->cfg.sql_separate) {
        n->self_sql = n->cfg.sql;
        n->self_sql.port = gw_port(gw);
    }
    srv_addr sql = n->self_sql;
    pthread_mutex_unlock(&n->mu);
    BASE_INFO(MOD, "serving SQL on %s:%d%s", sql.host, sql.port,
              n->cfg.sql_separate ? "" : " (shared with RPC)");
    if (n->cfg.on_sql_ready != NULL) n->cfg.on_sql_ready(n->cfg.callback_ctx, sql.host, sql.port);
}

static void *periodic_main(void *arg) {
    srv_node *n = arg;
    int64_t next_hb = 0, next_refresh = 0, next_sql = 0, next_meta = 0, next_clock = 0;
    int64_t next_repl = 0, next_watch = 0;
    bool clock_grace = true;
    bool rnode_draining = false; /* as told to range_node_set_draining */
    pthread_mutex_lock(&n->mu);
    while (!n->stopping) {
        if (!n->stack_ready) {
            wait_until(n, mono_ns() + 1000000000LL);
            continue;
        }
        bool sql_ready = n->sql_ready;
        bool start_splitq = !n->splitq.worker.started && !n->splitq.worker.start_failed &&
                            !n->self_decommissioned;
        bool start_mergeq = sql_ready && !n->mergeq.worker.started &&
                            !n->mergeq.worker.start_failed && !n->self_decommissioned;
        bool start_rebal = sql_ready && !n->rebal.worker.started &&
                           !n->rebal.worker.start_failed && !n->self_decommissioned;
        bool leaving = n->draining || n->self_decommissioned;
        /* retired: every KV request would be refused (and wait out the
        ** router's deadline, holding up a stop); only clock pings go on */
        bool retired = n->self_decommissioned;
        if (n->replq.self == 0) n->replq.self = n->st.node_id; /* known once initialized */
        if (n->draining && !n->replq.draining) next_repl = 0; /* hand leases away now */
        n->replq.draining = n->draining;
        if (n->heartbeat_now) next_hb = 0;
        n->heartbeat_now = false;
        bool clock_now = n->clock_round_now;
        n->clock_round_now = false;
        pthread_mutex_unlock(&n->mu);
        if (start_splitq) { /* the stack exists from here until stop */
            srv__splitq_env se = {.self = n->st.node_id, .rnode = n->rnode,
                                  .engine = n->cfg.engine, .db = n->db,
                                  .settings = &n->settings, .rserver = n->rserver,
                                  .admin = &n->admin};
            if (srv__splitq_start(&n->splitq, &se) != SRV_OK)
                BASE_WARN(MOD, "cannot start the split queue's thread: until a restart, no "
                          "range splits by size and the cluster settings keep their defaults");
        }
        if (start_mergeq) {
            srv__mergeq_env me = {.self = n->st.node_id, .rnode = n->rnode,
                                  .engine = n->cfg.engine, .router = n->router,
                                  .db = n->db, .clock = n->cfg.clock, .settings = &n->settings,
                                  .overview = srv__mergeq_admin_overview,
                                  .overview_ctx = &n->admin};
            if (srv__mergeq_start(&n->mergeq, &me) != SRV_OK)
                BASE_WARN(MOD, "cannot start the merge queue's thread: until a restart, this "
                          "node merges no ranges");
        }
        for (size_t i = 0; i < n->replq.n_rows; i++) /* decommissioning: its own record */
            if (n->replq.rows[i].node_id == n->st.node_id &&
                n->replq.rows[i].membership != SRV_MEMBERSHIP_ACTIVE)
                leaving = true;
        atomic_store(&n->rebal.leaving, leaving);
        if (leaving != rnode_draining) { /* its replicas leave leadership to the others */
            range_node_set_draining(n->rnode, leaving);
            rnode_draining = leaving;
        }
        if (start_rebal) {
            srv__rebal_env re = {.self = n->st.node_id, .db = n->db, .router = n->router,
                                 .clock = n->cfg.clock, .settings = &n->settings,
                                 .admin = &n->admin, .replication = n->cfg.replication};
            if (srv__rebal_start(&n->rebal, &re) != SRV_OK)
                BASE_WARN(MOD, "cannot start the rebalancer's thread: until a restart, this "
                          "node never rebalances");
        }
        int64_t now = mono_ns();
        if (now >= next_clock || clock_now) {
            next_clock = now + (int64_t)SRV_CLOCK_PING_MS * 1000000;
            clock_round(n);
            if (clock_grace) { /* the first answers, before any KV work */
                int64_t deadline = mono_ns() + (int64_t)SRV_CLOCK_FIRST_ROUND_MS * 1000000;
                pthread_mutex_lock(&n->mu);
                while (!n->stopping && n->clock_inflight > 0 && mono_ns() < deadline)
                    wait_until(n, deadline);
                pthread_mutex_unlock(&n->mu);
            }
            clock_check(n, false);
            clock_grace = false;
        }
        now = mono_ns();
        if (now >= next_hb) {
            next_hb = now + n->cfg.heartbeat_ms * 1000000;
            if (!retired) heartbeat(n);
        }
        now = mono_ns();
        if (now >= next_refresh) {
            next_refresh = now + n->cfg.peer_refresh_ms * 1000000;
            if (!retired) refresh_peers(n);
        }
        now = mono_ns();
        if (retired) next_repl = next_meta = next_sql = INT64_MAX; /* for good */
        if (now >= next_repl) {
            srv__replq_env env = {.rnode = n->rnode, .router = n->router, .clock = n->cfg.clock,
                                  .scan_ms = SRV_REPLICATE_SCAN_MS,
                                  .stale_ms = 3 * n->cfg.peer_refresh_ms,
                                  .on_change = srv__admin_on_repl_change,
                                  .on_lease_shed = srv__admin_on_lease_shed,
                                  .change_ctx = &n->admin, .db = n->db};
            next_repl = srv__replq_run(&n->replq, &env, now);
            if (n->admin.db == NULL) { /* events may come before SQL opens */
                n->admin.self = n->st.node_id;
                n->admin.clock = n->cfg.clock;
                n->admin.db = n->db;
            }
            srv__admin_flush_events(&n->admin); /* the range event log: written here */
            /* a changed range's meta entry is behind: rewrite it now, not in 10 s */
            if (srv__replq_take_meta_due(&n->replq)) next_meta = now;
        }
        now = mono_ns();
        if (now >= next_meta) {
            next_meta = now + (int64_t)SRV_META_REPAIR_MS * 1000000;
            repair_meta(n);
        }
        now = mono_ns();
        if (now >= next_watch) {
            next_watch = retired ? INT64_MAX : now + (int64_t)SRV_FROZEN_WATCH_MS * 1000000;
            if (!retired) watch_frozen(n);
        }
        now = mono_ns();
        if (!sql_ready && now >= next_sql) {
            next_sql = now + (int64_t)SRV_SQL_RETRY_MS * 1000000;
            /* its catalog needs transactions, refused without a clock bound */
            if (hlc_epsilon(n->cfg.clock, NULL) == HLC_EPSILON_OK) open_sql(n);
        }
        pthread_mutex_lock(&n->mu);
        int64_t next = BASE_MIN(BASE_MIN(next_hb, next_refresh), BASE_MIN(next_meta, next_clock));
        next = BASE_MIN(next, BASE_MIN(next_repl, next_watch));
        if (!n->sql_ready) next = BASE_MIN(next, next_sql);
        if (!n->stopping && !n->clock_round_now && !n->heartbeat_now && mono_ns() < next)
            wait_until(n, next);
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

static void *ticker_main(void *arg) {
    srv_node *n = arg;
    int64_t next = mono_ns();
    pthread_mutex_lock(&n->mu);
    while (!n->tick_stop) {
        int64_t now = mono_ns();
        if (now < next) {
            wait_until(n, next);
            continue;
        }
        /* Ticks are the Raft cores' clock: after a pause (SIGSTOP, a starved
        ** thread) deliver the ones missed, so leases and election timers see
        ** the time that passed; bounded, since past an election timeout more
        ** ticks change nothing. All in one range_node_tick_n (one hold of the
        ** node mutex): one at a time, a lease read between two of them would
        ** find the tick fresh and the lease not yet run out (range.h). */
        int64_t tick_ns = n->cfg.tick_ms * 1000000;
        int64_t due = (now - next) / tick_ns + 1;
        if (due > SRV_TICK_CATCHUP_MAX) due = SRV_TICK_CATCHUP_MAX;
        next += tick_ns;
        if (next < now) next = now + tick_ns;
        range_node *rn = n->rnode;
        /* stop: past the grace, evaluations still waiting (a quorum that
        ** does not answer) end now; never blocks, and under mu the server
        ** is not freed meanwhile */
        if (n->stopping && !n->rserver_shut && n->rserver != NULL &&
            now >= n->stop_grace_end_ns) {
            range_server_shutdown(n->rserver);
            n->rserver_shut = true;
        }
        pthread_mutex_unlock(&n->mu);
        if (rn != NULL) range_node_tick_n(rn, (int)due);
        pthread_mutex_lock(&n->mu);
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

/* ---- start / stop / info --------------------------------------------------------------- */

void srv_node_get_info(srv_node *n, srv_node_info *out) {
    pthread_mutex_lock(&n->mu);
    *out = (srv_node_info){.initialized = n->st.initialized, .cluster_id = n->st.cluster_id,
                           .node_id = n->st.node_id, .provisional_id = n->provisional_id,
                           .rpc_port = n->rpc_port, .sql_serving = n->sql_ready,
                           .sql_port = n->self_sql.port};
    pthread_mutex_unlock(&n->mu);
}

int srv_node_start(const srv_config *config, srv_node **out) {
    *out = NULL;
    if (config->engine == NULL || config->clock == NULL || config->listen.host[0] == '\0' ||
        config->n_join > SRV_JOIN_ADDRS_MAX)
        return SRV_ERR_INVALID;
    srv_node *n = base_calloc(1, sizeof *n); /* owner: caller (srv_node_stop) */
    if (n == NULL) return SRV_ERR_NOMEM;
    n->cfg = *config;
    if (n->cfg.tick_ms <= 0) n->cfg.tick_ms = SRV_DEFAULT_TICK_MS;
    if (n->cfg.heartbeat_ms <= 0) n->cfg.heartbeat_ms = SRV_DEFAULT_HEARTBEAT_MS;
    if (n->cfg.liveness_ttl_ms <= 0) n->cfg.liveness_ttl_ms = SRV_DEFAULT_LIVENESS_TTL_MS;
    if (n->cfg.dead_after_ms <= 0) n->cfg.dead_after_ms = SRV_DEFAULT_DEAD_AFTER_MS;
    if (n->cfg.peer_refresh_ms <= 0) n->cfg.peer_refresh_ms = SRV_DEFAULT_PEER_REFRESH_MS;
    if (n->cfg.replication <= 0) n->cfg.replication = SRV_DEFAULT_REPLICATION;
    n->seed = n->cfg.random_seed ? n->cfg.random_seed : srv__random_u64();
    n->join_backoff_ms = SRV_JOIN_BACKOFF_MIN_MS;
    srv__replq_init(&n->replq, 0, n->cfg.replication);
    srv__admin_init(&n->admin);
    srv_settings_init(&n->settings);
    srv__splitq_init(&n->splitq);
    srv__mergeq_init(&n->mergeq);
    srv__rebal_init(&n->rebal);
    pthread_mutex_init(&n->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cond, &a);
    pthread_condattr_destroy(&a);

    /* A failed sync of the store ends the process, as the log's (srv_fault.c). */
    storage_set_on_failure(n->cfg.engine, srv__store_failure_exit, NULL);
    int rc = srv__store_load(n->cfg.engine, &n->st);
    if (rc != SRV_OK) {
        BASE_ERROR(MOD, "cannot read the node identity from the store (error %d)", rc);
        goto fail;
    }
    n->self_rpc = n->cfg.listen;
    n->self_sql = n->cfg.sql_separate ? n->cfg.sql : n->cfg.listen;
    if (!n->st.initialized) {
        bool has_data = false;
        if (n->cfg.n_join == 0 && !n->cfg.single_node) {
            BASE_ERROR(MOD, "an uninitialized node needs --join");
            rc = SRV_ERR_INVALID;
            goto fail;
        }
        if ((rc = srv_store_has_data(n->cfg.engine, &has_data)) != SRV_OK) goto fail;
        if (has_data) {
            BASE_ERROR(MOD, "the store holds single-node data: it cannot become a cluster node "
                       "(start it without --join, or use a new --store)");
            rc = SRV_ERR_INVALID;
            goto fail;
        }
        if ((rc = srv__store_join_token(n->cfg.engine, &n->join_token)) != SRV_OK) goto fail;
        n->provisional_id = srv__random_u64() | RPC_NODE_ID_PROVISIONAL_MIN;
        BASE_INFO(MOD, "no cluster identity yet: provisional id %016" PRIx64
                  "; waiting for `meridian init` or a cluster to join", n->provisional_id);
    } else {
        BASE_INFO(MOD, "node %" PRIu64 " of cluster %016" PRIx64 ", %zu peer(s), %zu range(s)",
                  n->st.node_id, n->st.cluster_id, n->st.n_peers, n->st.n_descs);
    }
    if (n->cfg.raft_log_dir != NULL) {
        /* A failed write or fsync of the log ends the process (srv_fault.c). */
        raft_log_options lo = {.dir = n->cfg.raft_log_dir, .on_failure = srv__log_failure_exit};
        char err[256] = "";
        int lrc = raft_log_open(&lo, &n->rlog, err, sizeof err);
        if (lrc != RAFT_LOG_OK) {
            BASE_ERROR(MOD, "cannot open the Raft log in %s: %s%s%s", n->cfg.raft_log_dir,
                       raft_log_strerror(lrc), err[0] ? ": " : "", err);
            rc = lrc == RAFT_LOG_ERR_CORRUPT ? SRV_ERR_CORRUPT : SRV_ERR_IO;
            goto fail;
        }
    }
    if ((rc = start_transport(n)) != SRV_OK) goto fail;
    if (n->st.initialized && (rc = build_stack(n)) != SRV_OK) goto fail;

    if (pthread_create(&n->ticker, NULL, ticker_main, n) != 0) goto fail_threads;
    n->ticker_started = true;
    if (pthread_create(&n->control, NULL, control_main, n) != 0) goto fail_threads;
    n->control_started = true;
    if (pthread_create(&n->periodic, NULL, periodic_main, n) != 0) goto fail_threads;
    n->periodic_started = true;
    *out = n;
    return SRV_OK;
fail_threads:
    rc = SRV_ERR_NOMEM;
    srv_node_stop(n);
    return rc;
fail:
    srv_node_stop(n);
    return rc;
}

void srv_node_stop(srv_node *n) {
    if (n == NULL) return;
    pthread_mutex_lock(&n->mu);
    n->stopping = true;
    /* Bounded whatever the peers do (paused, partitioned, stopping too):
    ** KV work in flight (sessions, system txns, heartbeats, resolutions)
    ** gets SRV_STOP_GRACE_MS, then ends with an error; the ticker ends the
    ** range server's waits then. Without it each wait ran to its own
    ** deadline, one after another (a stop took more than 30 s). */
    n->stop_grace_end_ns = mono_ns() + (int64_t)SRV_STOP_GRACE_MS * 1000000;
    range_router_shutdown(n->router, SRV_STOP_GRACE_MS); /* NULL: none yet */
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->mu);
    if (n->control_started) pthread_join(n->control, NULL);
    if (n->periodic_started) pthread_join(n->periodic, NULL);
    srv__splitq_stop(&n->splitq); /* started by periodic; a split in flight ends with the router */
    srv__mergeq_stop(&n->mergeq); /* likewise for a merge in flight */
    srv__rebal_stop(&n->rebal);   /* likewise a move in flight */
    srv__replq_stop(&n->replq);   /* likewise a replicate phase; before the db closes */

    pthread_mutex_lock(&n->mu);
    gw_server *gw = n->gw;
    n->gw = NULL; /* on_foreign no longer hands connections to it */
    pthread_mutex_unlock(&n->mu);
    if (gw != NULL) gw_stop(gw);
    if (n->sql != NULL) sqlv_engine_close(n->sql);
    if (n->db != NULL) txn_db_close(n->db);

    pthread_mutex_lock(&n->mu);
    range_server *rs = n->rserver;
    n->rserver = NULL; /* on_rpc answers KV with UNAVAILABLE from here */
    pthread_mutex_unlock(&n->mu);
    if (rs != NULL) range_server_free(rs);

    /* The range node's log syncer sends from its own thread: no node send
    ** after this, so none on the transport rpc_uv_free is about to free. */
    if (n->rnode != NULL) range_node_forget_transport(n->rnode);
    pthread_mutex_lock(&n->mu);
    rpc_uv *uv = n->uv;
    n->uv = NULL;
    pthread_mutex_unlock(&n->mu);
    if (uv != NULL) rpc_uv_free(uv); /* joins the loop: no handler after this */

    pthread_mutex_lock(&n->mu);
    n->tick_stop = true;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->mu);
    if (n->ticker_started) pthread_join(n->ticker, NULL);

    if (n->router != NULL) range_router_free(n->router);
    if (n->rnode != NULL) range_node_free(n->rnode);
    if (n->rlog != NULL) raft_log_close(n->rlog); /* after the node: it borrows the log */
    srv__replq_free(&n->replq); /* after range_node_free: no step callback is due now */
    srv__admin_destroy(&n->admin);
    srv__splitq_destroy(&n->splitq);
    srv__mergeq_destroy(&n->mergeq);
    srv__rebal_destroy(&n->rebal);
    srv_settings_destroy(&n->settings);
    srv__state_free(&n->st);
    base_buf_free(&n->join_payload);
    pthread_cond_destroy(&n->cond);
    pthread_mutex_destroy(&n->mu);
    base_free(n);
}
