/*
** bench_range_log: commits per second through 3 replicas of N ranges
** (range/replica.c: range_node + range_replica, the real apply into
** RocksDB) with each range's Raft log either in the engine's raw keyspace
** (one synced RocksDB write per Raft update, under the node mutex) or in the
** node's shared segmented log (raft/log.c; appends under the node mutex, one
** fdatasync by the node's log syncer for every range's appends since the
** last: group commit). Apply batches are unsynced in both.
**
** Shape: three range_nodes in one process, each with its own RocksDB and
** (shared mode) raft_log under a fresh temp dir in argv[1], else
** $MERIDIAN_BENCH_DIR, else the current directory. The transport is
** in-process: rpc_send copies the frame into the destination node's inbox,
** and one delivery thread per node hands frames to the node's handler (no
** sockets: the figures measure Raft + log + apply, not the network). A
** ticker ticks every node every 10 ms; node 1 campaigns for every range
** first. 8 client threads keep 1 or 8 proposals each in flight (8 or 64
** outstanding) at node 1, round-robin over the ranges; a command is one
** 128-byte write; latency is from the propose call to the callback (applied
** on the leader: committed on a majority).
**
** Prints commits/s, p50/p99 latency, and for the shared log the leader's
** fsyncs/s and commits per leader fsync. Never fails on timing; every case
** runs a bounded time. Usage: bench_range_log [dir];
** MERIDIAN_BENCH_SECONDS per case (default 3); MERIDIAN_BENCH_RANGES (1 or
** 100), MERIDIAN_BENCH_OUTSTANDING (8 or 64) and MERIDIAN_BENCH_STORE (raw
** or shared) run only the matching cases.
**
** Invariants: inboxes are bounded (BENCH_QUEUE_MAX frames: a full inbox
** drops the frame, which Raft tolerates); clients wait on their condition
** variable with a timeout; every structure a callback touches outlives the
** nodes (range_node_free runs pending callbacks).
*/
#define _GNU_SOURCE
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "range/range.h"
#include "rpc/rpc.h"
#include "storage/storage.h"

#define BENCH_NODES 3
#define BENCH_CLIENTS 8
#define BENCH_VALUE 128
#define BENCH_RANGES_MAX 100
#define BENCH_QUEUE_MAX (1u << 16)     /* frames per node inbox */
#define BENCH_LAT_MAX (1u << 21)       /* latencies kept per case */
#define BENCH_WINDOW_MAX 8             /* proposals in flight per client */
#define BENCH_TICK_NS (10 * 1000000LL) /* 10 ms per Raft tick */
#define BENCH_ELECTION_TICKS 100       /* 1 s: fsync stalls must not elect */
#define BENCH_HEARTBEAT_TICKS 10
#define BENCH_WAIT_MS 10000            /* leader election, drain at the end */
#define BENCH_CHECK(c) \
    do { \
        if (!(c)) { \
            fprintf(stderr, "bench_range_log: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort(); \
        } \
    } while (0)

/* ---- the in-process transport ------------------------------------------------ */

typedef struct frame {
    struct frame *next;
    rpc_node_id from;
    size_t len;
    uint8_t data[];
} frame;

struct bench_net;

typedef struct bench_tp {
    rpc_transport base; /* first */
    struct bench_net *net;
    rpc_node_id id;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    frame *head, *tail; /* inbox, owner: this */
    size_t n;
    rpc_handler_fn fn;
    void *ctx;
    bool stop;
    pthread_t thread;
    uint64_t dropped;
} bench_tp;

typedef struct bench_net {
    bench_tp tp[BENCH_NODES + 1];
} bench_net;

static int tp_send(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload,
                   size_t len)
{
    bench_tp *self = (bench_tp *)t;
    if (to < 1 || to > BENCH_NODES || method != RANGE_RPC_METHOD_RAFT)
        return RPC_ERR_INVALID;
    bench_tp *dst = &self->net->tp[to];
    frame *f = malloc(sizeof(*f) + len);
    if (f == NULL)
        return RPC_ERR_NOMEM;
    f->next = NULL;
    f->from = self->id;
    f->len = len;
    memcpy(f->data, payload, len);
    pthread_mutex_lock(&dst->mu);
    if (dst->n >= BENCH_QUEUE_MAX || dst->stop) {
        dst->dropped++;
        pthread_mutex_unlock(&dst->mu);
        free(f);
        return RPC_OK; /* dropped like a lost message */
    }
    if (dst->tail != NULL)
        dst->tail->next = f;
    else
        dst->head = f;
    dst->tail = f;
    dst->n++;
    pthread_cond_signal(&dst->cv);
    pthread_mutex_unlock(&dst->mu);
    return RPC_OK;
}

static int tp_request(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload,
                      size_t len, int64_t timeout_ms, rpc_response_fn cb, void *ctx)
{
    (void)t, (void)to, (void)method, (void)payload, (void)len, (void)timeout_ms, (void)cb,
        (void)ctx;
    return RPC_ERR_INVALID; /* Raft traffic is one-way */
}

static int tp_respond(rpc_transport *t, rpc_node_id to, uint64_t request_id, int32_t status,
                      const void *payload, size_t len)
{
    (void)t, (void)to, (void)request_id, (void)status, (void)payload, (void)len;
    return RPC_ERR_INVALID;
}

static void tp_set_handler(rpc_transport *t, rpc_handler_fn fn, void *ctx)
{
    bench_tp *self = (bench_tp *)t;
    pthread_mutex_lock(&self->mu);
    self->fn = fn;
    self->ctx = ctx;
    pthread_mutex_unlock(&self->mu);
}

static rpc_node_id tp_node_id(rpc_transport *t) { return ((bench_tp *)t)->id; }

static const rpc_transport_ops tp_ops = {tp_send, tp_request, tp_respond, tp_set_handler,
                                         tp_node_id};

static void *delivery_main(void *arg)
{
    bench_tp *tp = arg;
    pthread_mutex_lock(&tp->mu);
    for (;;) {
        while (tp->head == NULL && !tp->stop)
            pthread_cond_wait(&tp->cv, &tp->mu);
        if (tp->stop)
            break;
        frame *f = tp->head;
        tp->head = f->next;
        if (tp->head == NULL)
            tp->tail = NULL;
        tp->n--;
        rpc_handler_fn fn = tp->fn;
        void *ctx = tp->ctx;
        pthread_mutex_unlock(&tp->mu);
        if (fn != NULL) {
            rpc_message m = {.from = f->from, .method = RANGE_RPC_METHOD_RAFT,
                             .payload = f->data, .payload_len = f->len};
            fn(ctx, &tp->base, &m);
        }
        free(f);
        pthread_mutex_lock(&tp->mu);
    }
    pthread_mutex_unlock(&tp->mu);
    return NULL;
}

/* ---- one case ------------------------------------------------------------------ */

struct bench_case;

typedef struct bench_slot {
    struct bench_client *client;
    int64_t start_ns;
    bool busy;
} bench_slot;

typedef struct bench_client {
    struct bench_case *bc;
    int index;
    int window;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bench_slot slots[BENCH_WINDOW_MAX];
    int inflight;
    uint64_t next_cmd;
    uint64_t refused;
    pthread_t thread;
} bench_client;

typedef struct bench_case {
    bool shared;
    size_t n_ranges;
    char root[512];
    bench_net net;
    storage_engine *engine[BENCH_NODES + 1];
    raft_log *log[BENCH_NODES + 1];
    range_node *rn[BENCH_NODES + 1];
    range_replica *rep[BENCH_NODES + 1][BENCH_RANGES_MAX + 1];
    atomic_bool stop_ticks, stop_clients, measuring;
    pthread_t ticker;
    bench_client clients[BENCH_CLIENTS];
    pthread_mutex_t lat_mu;
    int64_t *lat; /* owner: the case */
    size_t n_lat;
    atomic_uint_fast64_t commits, failed;
} bench_case;

static int64_t now_ns(void) { return base_monotonic_ns(); }

static void *ticker_main(void *arg)
{
    bench_case *bc = arg;
    while (!atomic_load(&bc->stop_ticks)) {
        struct timespec ts = {0, BENCH_TICK_NS};
        nanosleep(&ts, NULL); /* the node timer */
        for (int i = 1; i <= BENCH_NODES; i++)
            range_node_tick(bc->rn[i]);
    }
    return NULL;
}

static void on_commit(void *ctx, int rc)
{
    bench_slot *s = ctx;
    bench_client *c = s->client;
    bench_case *bc = c->bc;
    int64_t lat = now_ns() - s->start_ns;
    if (rc == RANGE_OK && atomic_load(&bc->measuring)) {
        atomic_fetch_add(&bc->commits, 1);
        pthread_mutex_lock(&bc->lat_mu);
        if (bc->n_lat < BENCH_LAT_MAX)
            bc->lat[bc->n_lat++] = lat;
        pthread_mutex_unlock(&bc->lat_mu);
    } else if (rc != RANGE_OK) {
        atomic_fetch_add(&bc->failed, 1);
    }
    pthread_mutex_lock(&c->mu);
    s->busy = false;
    c->inflight--;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void *client_main(void *arg)
{
    bench_client *c = arg;
    bench_case *bc = c->bc;
    uint8_t value[BENCH_VALUE];
    memset(value, 'v', sizeof(value));
    size_t range = (size_t)c->index % bc->n_ranges;
    while (!atomic_load(&bc->stop_clients)) {
        pthread_mutex_lock(&c->mu);
        while (c->inflight >= c->window && !atomic_load(&bc->stop_clients)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 10 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
        bench_slot *s = NULL;
        for (int i = 0; i < c->window && s == NULL; i++)
            if (!c->slots[i].busy)
                s = &c->slots[i];
        if (s == NULL || atomic_load(&bc->stop_clients)) {
            pthread_mutex_unlock(&c->mu);
            continue;
        }
        s->busy = true;
        c->inflight++;
        uint64_t n = ++c->next_cmd;
        pthread_mutex_unlock(&c->mu);

        char key[48];
        int klen = snprintf(key, sizeof(key), "c%02d/%012llu", c->index, (unsigned long long)n);
        range_write w = {(const uint8_t *)key, (size_t)klen, value, sizeof(value), false};
        range_command cmd = {.txn_id = ((uint64_t)c->index << 40) | n, .seq = 1,
                             .commit_ts = {(int64_t)n, (uint32_t)c->index}, .writes = &w,
                             .write_count = 1};
        range = (range + 1) % bc->n_ranges;
        s->start_ns = now_ns();
        int rc = range_replica_propose(bc->rep[1][range + 1], &cmd, on_commit, s, NULL);
        if (rc != RANGE_OK) {
            pthread_mutex_lock(&c->mu);
            s->busy = false;
            c->inflight--;
            c->refused++;
            pthread_mutex_unlock(&c->mu);
        }
    }
    /* drain (bounded): callbacks still reference the slots until the nodes go */
    int64_t deadline = now_ns() + (int64_t)BENCH_WAIT_MS * 1000000;
    pthread_mutex_lock(&c->mu);
    while (c->inflight > 0 && now_ns() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static bool all_led_by_node1(bench_case *bc)
{
    for (size_t r = 1; r <= bc->n_ranges; r++) {
        range_replica_status st;
        range_replica_get_status(bc->rep[1][r], &st);
        if (!st.leader || !st.lease_valid)
            return false;
    }
    return true;
}

static void run_case(const char *base_dir, bool shared, size_t n_ranges, int window,
                     double seconds)
{
    bench_case *bc = calloc(1, sizeof(*bc));
    BENCH_CHECK(bc != NULL);
    bc->shared = shared;
    bc->n_ranges = n_ranges;
    bc->lat = malloc(BENCH_LAT_MAX * sizeof(int64_t));
    BENCH_CHECK(bc->lat != NULL);
    pthread_mutex_init(&bc->lat_mu, NULL);
    snprintf(bc->root, sizeof(bc->root), "%s/bench-range-log-XXXXXX", base_dir);
    BENCH_CHECK(mkdtemp(bc->root) != NULL);

    for (int i = 1; i <= BENCH_NODES; i++) {
        bench_tp *tp = &bc->net.tp[i];
        tp->base.ops = &tp_ops;
        tp->net = &bc->net;
        tp->id = (rpc_node_id)i;
        pthread_mutex_init(&tp->mu, NULL);
        pthread_cond_init(&tp->cv, NULL);
        BENCH_CHECK(pthread_create(&tp->thread, NULL, delivery_main, tp) == 0);
        char dir[600], sub[700];
        snprintf(dir, sizeof(dir), "%s/node%d", bc->root, i);
        BENCH_CHECK(mkdir(dir, 0755) == 0);
        snprintf(sub, sizeof(sub), "%s/data", dir);
        storage_options so = {.dir = sub, .create_if_missing = true};
        BENCH_CHECK(storage_open(&so, &bc->engine[i]) == STORAGE_OK);
        if (shared) {
            snprintf(sub, sizeof(sub), "%s/raft", dir);
            raft_log_options lo = {.dir = sub};
            char err[256] = "";
            BENCH_CHECK(raft_log_open(&lo, &bc->log[i], err, sizeof(err)) == RAFT_LOG_OK);
        }
        range_node_config nc = {.transport = &tp->base, .engine = bc->engine[i], .sync = true,
                                .log = bc->log[i]};
        BENCH_CHECK(range_node_new(&nc, &bc->rn[i]) == RANGE_OK);
        for (size_t r = 1; r <= n_ranges; r++) {
            range_replica_config rc = {.range_id = r, .n_peers = BENCH_NODES,
                                       .election_ticks = BENCH_ELECTION_TICKS,
                                       .heartbeat_ticks = BENCH_HEARTBEAT_TICKS,
                                       .random_seed = (uint64_t)(i * 1000 + (int)r),
                                       .proposal_timeout_ticks = 3000};
            for (int k = 0; k < BENCH_NODES; k++)
                rc.peers[k] = (uint64_t)k + 1;
            BENCH_CHECK(range_node_add_replica(bc->rn[i], &rc, &bc->rep[i][r]) == RANGE_OK);
        }
    }
    BENCH_CHECK(pthread_create(&bc->ticker, NULL, ticker_main, bc) == 0);
    int64_t deadline = now_ns() + (int64_t)BENCH_WAIT_MS * 1000000;
    while (!all_led_by_node1(bc)) {
        if (now_ns() > deadline) {
            fprintf(stderr, "node 1 did not become leader of all %zu ranges\n", n_ranges);
            abort();
        }
        for (size_t r = 1; r <= n_ranges; r++) {
            range_replica_status st;
            range_replica_get_status(bc->rep[1][r], &st);
            if (!st.leader)
                (void)range_replica_campaign(bc->rep[1][r]);
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL); /* elections run on the ticker: poll, bounded above */
    }

    raft_log_stats ls0 = {0}, ls1 = {0};
    for (int k = 0; k < BENCH_CLIENTS; k++) {
        bench_client *c = &bc->clients[k];
        c->bc = bc;
        c->index = k;
        c->window = window;
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->cv, NULL);
        for (int i = 0; i < BENCH_WINDOW_MAX; i++)
            c->slots[i].client = c;
        BENCH_CHECK(pthread_create(&c->thread, NULL, client_main, c) == 0);
    }
    struct timespec warm = {0, 300 * 1000000L};
    nanosleep(&warm, NULL); /* warm-up: caches, first segment */
    if (shared)
        raft_log_get_stats(bc->log[1], &ls0);
    int64_t t0 = now_ns();
    atomic_store(&bc->measuring, true);
    struct timespec run = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&run, NULL);
    atomic_store(&bc->measuring, false);
    int64_t t1 = now_ns();
    if (shared)
        raft_log_get_stats(bc->log[1], &ls1);
    atomic_store(&bc->stop_clients, true);
    uint64_t refused = 0;
    for (int k = 0; k < BENCH_CLIENTS; k++) {
        pthread_join(bc->clients[k].thread, NULL);
        refused += bc->clients[k].refused;
    }
    atomic_store(&bc->stop_ticks, true);
    pthread_join(bc->ticker, NULL);

    double secs = (double)(t1 - t0) / 1e9;
    uint64_t commits = atomic_load(&bc->commits);
    qsort(bc->lat, bc->n_lat, sizeof(int64_t), cmp_i64);
    double p50 = bc->n_lat ? (double)bc->lat[bc->n_lat / 2] / 1000.0 : 0;
    double p99 = bc->n_lat ? (double)bc->lat[bc->n_lat * 99 / 100] / 1000.0 : 0;
    if (shared) {
        double fs = (double)(ls1.fsyncs - ls0.fsyncs) / secs;
        printf("| shared log | %3zu | %3d | %9.0f | %7.0f | %6.2f | %8.0f | %8.0f |\n", n_ranges,
               window * BENCH_CLIENTS, (double)commits / secs, fs,
               fs > 0 ? (double)commits / secs / fs : 0, p50, p99);
    } else {
        printf("| raw keyspace | %3zu | %3d | %9.0f | - | - | %8.0f | %8.0f |\n", n_ranges,
               window * BENCH_CLIENTS, (double)commits / secs, p50, p99);
    }
    if (refused > 0 || atomic_load(&bc->failed) > 0)
        fprintf(stderr, "  (%llu proposals refused, %llu failed)\n", (unsigned long long)refused,
                (unsigned long long)atomic_load(&bc->failed));
    fflush(stdout);

    /* Teardown: no send after forget, then stop delivery, then the nodes. */
    for (int i = 1; i <= BENCH_NODES; i++)
        range_node_forget_transport(bc->rn[i]);
    for (int i = 1; i <= BENCH_NODES; i++) {
        bench_tp *tp = &bc->net.tp[i];
        pthread_mutex_lock(&tp->mu);
        tp->stop = true;
        pthread_cond_broadcast(&tp->cv);
        pthread_mutex_unlock(&tp->mu);
        pthread_join(tp->thread, NULL);
    }
    for (int i = 1; i <= BENCH_NODES; i++) {
        range_node_free(bc->rn[i]);
        if (bc->log[i] != NULL)
            raft_log_close(bc->log[i]);
        storage_close(bc->engine[i]);
        bench_tp *tp = &bc->net.tp[i];
        while (tp->head != NULL) {
            frame *f = tp->head;
            tp->head = f->next;
            free(f);
        }
        pthread_cond_destroy(&tp->cv);
        pthread_mutex_destroy(&tp->mu);
    }
    for (int k = 0; k < BENCH_CLIENTS; k++) {
        pthread_cond_destroy(&bc->clients[k].cv);
        pthread_mutex_destroy(&bc->clients[k].mu);
    }
    nftw(bc->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    pthread_mutex_destroy(&bc->lat_mu);
    free(bc->lat);
    free(bc);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : getenv("MERIDIAN_BENCH_DIR");
    if (dir == NULL)
        dir = ".";
    const char *secs_env = getenv("MERIDIAN_BENCH_SECONDS");
    double seconds = secs_env != NULL ? atof(secs_env) : 3.0;
    if (seconds <= 0)
        seconds = 3.0;
    base_log_set_level(BASE_LOG_ERROR);
    printf("bench_range_log: 3 replicas of N ranges in one process (in-process transport), "
           "RocksDB apply, %.1f s per case, dir %s\n", seconds, dir);
    printf("| log store | ranges | outstanding | commits/s | leader fsyncs/s | commits/fsync "
           "| p50 us | p99 us |\n");
    printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    static const size_t ranges[] = {1, 100};
    static const int windows[] = {1, 8};
    /* MERIDIAN_BENCH_RANGES / _STORE (raw|shared) / _OUTSTANDING pick cases */
    const char *only_ranges = getenv("MERIDIAN_BENCH_RANGES");
    const char *only_store = getenv("MERIDIAN_BENCH_STORE");
    const char *only_out = getenv("MERIDIAN_BENCH_OUTSTANDING");
    for (size_t ri = 0; ri < 2; ri++)
        for (size_t wi = 0; wi < 2; wi++)
            for (int shared = 0; shared <= 1; shared++) {
                if ((only_ranges && (size_t)atoi(only_ranges) != ranges[ri]) ||
                    (only_out && atoi(only_out) != windows[wi] * BENCH_CLIENTS) ||
                    (only_store && strcmp(only_store, shared ? "shared" : "raw") != 0))
                    continue;
                run_case(dir, shared == 1, ranges[ri], windows[wi], seconds);
            }
    return 0;
}
