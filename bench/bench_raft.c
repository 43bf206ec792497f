/*
** bench_raft: committed proposals per second and commit latency for a
** 3-replica Raft group (raft/raft.c) persisting through the REAL log store
** (raft/log.c, real fdatasync), with 1 and with 100 groups on each node.
**
** Shape: three nodes in one process. Each node is one thread with its own
** raft_log in its own directory (under a fresh temp dir in argv[1], else
** $MERIDIAN_BENCH_DIR, else the current directory) and one raft_node per
** group. Messages travel between node threads through in-memory queues (a
** deep copy per message): no sockets, so the figures measure Raft + log
** store, not the network. Node 1 is made leader of every group first.
** K client threads (8) keep W proposals (128-byte payload) each in flight to
** node 1, round-robin over the groups; the latency of a proposal is from its
** submission to its being committed AND applied on the leader.
**
** One node loop iteration: take every queued proposal (one PROPOSE batch per
** group) and message, tick if due, append every update's hard state and
** entries to the log, then ONE raft_log_sync covering all groups, then send
** the held messages_after_persist and step PERSISTED (THE CONTRACT in
** raft/raft.h: persist before send). Messages that may go at once do.
**
** Prints proposals/s, p50/p99 latency, and the fsyncs/s of the leader and
** of all three nodes. Never fails on timing; every case runs a bounded time.
** Usage: bench_raft [dir] ; MERIDIAN_BENCH_SECONDS per case (default 5).
**
** Invariants: a node's raft_node objects are used only by its own thread;
** queues are bounded (BENCH_QUEUE_MAX: a full message queue drops the
** message, which Raft tolerates; a full proposal queue fails the proposal).
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
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "raft/raft.h"

#define BENCH_NODES 3
#define BENCH_CLIENTS 8
#define BENCH_PAYLOAD 128
#define BENCH_QUEUE_MAX (1u << 18)    /* items per node inbox */
#define BENCH_LAT_MAX (1u << 21)      /* latencies kept per case */
#define BENCH_TICK_NS (10 * 1000000LL) /* 10 ms per Raft tick */
#define BENCH_ELECTION_TICKS 100       /* 1 s: fsync stalls must not elect */
#define BENCH_HEARTBEAT_TICKS 10
#define BENCH_PERSIST_PASSES 64        /* bound on persist rounds per iteration */
/* A bug or out of memory in the bench itself: stop at once (kept in release). */
#define BENCH_CHECK(c) \
    do { \
        if (!(c)) { \
            fprintf(stderr, "bench_raft: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort(); \
        } \
    } while (0)

typedef struct bench_item {
    uint64_t group;        /* 1-based */
    bool is_proposal;
    raft_message msg;      /* owned (raft_message_clone) unless is_proposal */
    uint8_t payload[BENCH_PAYLOAD];
} bench_item;

typedef struct bench_queue {
    bench_item *items; /* owner: the queue */
    size_t n, cap;
} bench_queue;

struct bench_case;

typedef struct bench_group_state {
    raft_node *node;
    uint64_t pending_seq; /* core persist_seq appended, not yet PERSISTED */
    raft_message *held;   /* messages_after_persist (clones), owner: this */
    size_t n_held, cap_held;
    raft_proposal *props; /* this iteration's batch */
    size_t n_props, cap_props;
} bench_group_state;

typedef struct bench_node {
    struct bench_case *bc;
    uint64_t id;
    raft_log *log;
    char dir[4200];
    bench_group_state *groups;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bench_queue inbox;      /* guarded by mu */
    bench_queue work;       /* node thread only */
    uint64_t log_seq;       /* newest raft_log seq written, not yet synced */
    bool dirty;
    int rc;                 /* first hard error */
    atomic_size_t n_leading;/* groups this node leads */
    uint64_t dropped;
} bench_node;

typedef struct bench_client {
    struct bench_case *bc;
    int id;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int inflight;        /* guarded by mu */
    uint64_t completed;  /* guarded by mu */
    uint64_t failed;     /* guarded by mu */
    uint64_t rr;
} bench_client;

typedef struct bench_case {
    size_t n_groups;
    int window; /* outstanding proposals per client */
    bench_node nodes[BENCH_NODES];
    bench_client clients[BENCH_CLIENTS];
    atomic_bool stop;
    atomic_bool measuring;
    int64_t measure_start, deadline;
    pthread_mutex_t lat_mu;
    int64_t *lat; /* owner: case */
    size_t n_lat;
    atomic_uint_least64_t committed;
} bench_case;

static int queue_push(bench_queue *q, const bench_item *it)
{
    if (q->n == q->cap) {
        if (q->cap >= BENCH_QUEUE_MAX) return -1;
        size_t cap = q->cap ? q->cap * 2 : 256;
        bench_item *n = base_realloc(q->items, cap * sizeof *n);
        if (!n) return -1;
        q->items = n;
        q->cap = cap;
    }
    q->items[q->n++] = *it;
    return 0;
}

static void queue_clear(bench_queue *q)
{
    for (size_t i = 0; i < q->n; i++)
        if (!q->items[i].is_proposal) raft_message_release(&q->items[i].msg);
    q->n = 0;
}

static void cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

static struct timespec abs_ns(int64_t t)
{
    struct timespec ts = {.tv_sec = t / 1000000000LL, .tv_nsec = t % 1000000000LL};
    return ts;
}

/* Proposal payload: client id, submit time (ns). */
static void client_done(bench_case *bc, const uint8_t *p, bool ok)
{
    uint64_t cid;
    int64_t t0;
    memcpy(&cid, p, 8);
    memcpy(&t0, p + 8, 8);
    if (cid >= BENCH_CLIENTS) return;
    if (ok && atomic_load(&bc->measuring)) {
        int64_t now = base_monotonic_ns();
        if (t0 >= bc->measure_start && now <= bc->deadline) {
            pthread_mutex_lock(&bc->lat_mu);
            if (bc->n_lat < BENCH_LAT_MAX) bc->lat[bc->n_lat++] = now - t0;
            pthread_mutex_unlock(&bc->lat_mu);
            atomic_fetch_add(&bc->committed, 1);
        }
    }
    bench_client *c = &bc->clients[cid];
    pthread_mutex_lock(&c->mu);
    c->inflight--;
    if (ok) c->completed++;
    else c->failed++;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

static void node_send(bench_node *from, const raft_message *m, uint64_t group)
{
    if (m->to < 1 || m->to > BENCH_NODES) return;
    bench_node *to = &from->bc->nodes[m->to - 1];
    bench_item it = {.group = group};
    if (raft_message_clone(m, &it.msg) != 0) {
        from->dropped++;
        return;
    }
    pthread_mutex_lock(&to->mu);
    int rc = queue_push(&to->inbox, &it);
    pthread_cond_signal(&to->cond);
    pthread_mutex_unlock(&to->mu);
    if (rc != 0) {
        raft_message_release(&it.msg);
        from->dropped++;
    }
}

/* Consume one update (before the next raft_step of that group). */
static void node_handle(bench_node *n, uint64_t group, const raft_update *up)
{
    bench_group_state *g = &n->groups[group - 1];
    if (n->rc) return;
    BENCH_CHECK(up->snapshot == NULL); /* no compaction in this bench */
    if (up->persist_seq) {
        if (up->hard_state_changed || up->n_entries) {
            uint64_t s = 0;
            int rc = raft_log_append(n->log, group, up->hard_state_changed ? &up->hard_state : NULL,
                                     up->entries, up->n_entries, &s);
            if (rc != 0) {
                fprintf(stderr, "node %llu: raft_log_append: %s\n", (unsigned long long)n->id,
                        raft_log_strerror(rc));
                n->rc = rc;
                return;
            }
            if (s > n->log_seq) n->log_seq = s;
        }
        g->pending_seq = up->persist_seq;
        n->dirty = true;
    }
    for (size_t i = 0; i < up->n_messages; i++) node_send(n, &up->messages[i], group);
    for (size_t i = 0; i < up->n_messages_after_persist; i++) {
        if (g->n_held == g->cap_held) {
            size_t cap = g->cap_held ? g->cap_held * 2 : 16;
            raft_message *h = base_realloc(g->held, cap * sizeof *h);
            BENCH_CHECK(h != NULL);
            g->held = h;
            g->cap_held = cap;
        }
        if (raft_message_clone(&up->messages_after_persist[i], &g->held[g->n_held]) == 0)
            g->n_held++;
    }
    for (size_t i = 0; i < up->n_committed; i++) {
        const raft_entry *e = &up->committed[i];
        if (n->id == 1 && e->type == RAFT_ENTRY_NORMAL && e->len == BENCH_PAYLOAD)
            client_done(n->bc, e->data, true);
    }
}

static void node_step(bench_node *n, uint64_t group, const raft_event *ev)
{
    raft_update up;
    int rc = raft_step(n->groups[group - 1].node, ev, &up);
    if (ev->type == RAFT_EVENT_PROPOSE && rc != 0) {
        for (size_t i = 0; i < ev->n_proposals; i++)
            client_done(n->bc, ev->proposals[i].data, false);
    }
    node_handle(n, group, &up);
}

/* Persist: one fdatasync for every group's writes, then send what waited
** for it and report PERSISTED (which may write more: the next pass). */
static void node_persist(bench_node *n)
{
    for (int pass = 0; pass < BENCH_PERSIST_PASSES && n->dirty && !n->rc; pass++) {
        n->dirty = false;
        if (n->log_seq) {
            int rc = raft_log_sync(n->log, n->log_seq);
            if (rc != 0) {
                fprintf(stderr, "node %llu: raft_log_sync: %s\n", (unsigned long long)n->id,
                        raft_log_strerror(rc));
                n->rc = rc;
                return;
            }
        }
        for (uint64_t g = 1; g <= n->bc->n_groups; g++) {
            bench_group_state *gs = &n->groups[g - 1];
            size_t nh = gs->n_held;
            for (size_t i = 0; i < nh; i++) {
                node_send(n, &gs->held[i], g);
                raft_message_release(&gs->held[i]);
            }
            gs->n_held = 0;
            if (!gs->pending_seq) continue;
            raft_event ev = {.type = RAFT_EVENT_PERSISTED, .persist_seq = gs->pending_seq};
            gs->pending_seq = 0;
            node_step(n, g, &ev);
        }
    }
}

static void node_count_leading(bench_node *n)
{
    size_t k = 0;
    for (size_t g = 0; g < n->bc->n_groups; g++) {
        raft_status st;
        raft_node_status(n->groups[g].node, &st);
        if (st.role == RAFT_LEADER) k++;
    }
    atomic_store(&n->n_leading, k);
}

static void *node_main(void *p)
{
    bench_node *n = p;
    bench_case *bc = n->bc;
    int64_t next_tick = base_monotonic_ns() + BENCH_TICK_NS;
    while (!atomic_load(&bc->stop) && !n->rc) {
        pthread_mutex_lock(&n->mu);
        while (n->inbox.n == 0 && !n->dirty && !atomic_load(&bc->stop) &&
               base_monotonic_ns() < next_tick) {
            struct timespec ts = abs_ns(next_tick);
            pthread_cond_timedwait(&n->cond, &n->mu, &ts);
        }
        bench_queue t = n->work;
        n->work = n->inbox;
        n->inbox = t;
        pthread_mutex_unlock(&n->mu);

        /* proposals: one batch per group */
        for (size_t i = 0; i < n->work.n; i++) {
            bench_item *it = &n->work.items[i];
            if (!it->is_proposal) continue;
            bench_group_state *g = &n->groups[it->group - 1];
            if (g->n_props == g->cap_props) {
                size_t cap = g->cap_props ? g->cap_props * 2 : 64;
                raft_proposal *np = base_realloc(g->props, cap * sizeof *np);
                BENCH_CHECK(np != NULL);
                g->props = np;
                g->cap_props = cap;
            }
            g->props[g->n_props++] = (raft_proposal){it->payload, BENCH_PAYLOAD};
        }
        for (uint64_t g = 1; g <= bc->n_groups; g++) {
            bench_group_state *gs = &n->groups[g - 1];
            if (!gs->n_props) continue;
            raft_event ev = {.type = RAFT_EVENT_PROPOSE, .proposals = gs->props,
                             .n_proposals = gs->n_props};
            node_step(n, g, &ev);
            gs->n_props = 0;
        }
        for (size_t i = 0; i < n->work.n; i++) {
            bench_item *it = &n->work.items[i];
            if (it->is_proposal) continue;
            raft_event ev = {.type = RAFT_EVENT_MESSAGE, .message = &it->msg};
            node_step(n, it->group, &ev);
        }
        queue_clear(&n->work);

        int64_t now = base_monotonic_ns();
        if (now >= next_tick) {
            raft_event ev = {.type = RAFT_EVENT_TICK};
            for (uint64_t g = 1; g <= bc->n_groups; g++) node_step(n, g, &ev);
            next_tick += BENCH_TICK_NS;
            if (next_tick < now) next_tick = now + BENCH_TICK_NS;
            node_count_leading(n);
        }
        node_persist(n);
    }
    return NULL;
}

static void *client_main(void *p)
{
    bench_client *c = p;
    bench_case *bc = c->bc;
    bench_node *leader = &bc->nodes[0];
    while (!atomic_load(&bc->stop) && base_monotonic_ns() < bc->deadline) {
        pthread_mutex_lock(&c->mu);
        while (c->inflight >= bc->window && !atomic_load(&bc->stop) &&
               base_monotonic_ns() < bc->deadline) {
            struct timespec ts = abs_ns(base_monotonic_ns() + 50 * 1000000LL);
            pthread_cond_timedwait(&c->cond, &c->mu, &ts);
        }
        bool go = c->inflight < bc->window;
        if (go) c->inflight++;
        pthread_mutex_unlock(&c->mu);
        if (!go) continue;
        bench_item it = {.is_proposal = true,
                         .group = c->rr++ % bc->n_groups + 1};
        uint64_t cid = (uint64_t)c->id;
        int64_t t0 = base_monotonic_ns();
        memset(it.payload, 'p', sizeof it.payload);
        memcpy(it.payload, &cid, 8);
        memcpy(it.payload + 8, &t0, 8);
        pthread_mutex_lock(&leader->mu);
        int rc = queue_push(&leader->inbox, &it);
        pthread_cond_signal(&leader->cond);
        pthread_mutex_unlock(&leader->mu);
        if (rc != 0) client_done(bc, it.payload, false);
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Wait (bounded) until node 1 leads every group; it campaigns for each. */
static int elect_node1(bench_case *bc)
{
    bench_node *n1 = &bc->nodes[0];
    for (int64_t until = base_monotonic_ns() + 20 * 1000000000LL; base_monotonic_ns() < until;) {
        if (atomic_load(&n1->n_leading) == bc->n_groups) return 0;
        struct timespec ts = {0, 2 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int run_case(const char *base_dir, size_t n_groups, int window, double seconds)
{
    int ret = 1;
    char root[4096];
    snprintf(root, sizeof root, "%s/bench-raft-XXXXXX", base_dir);
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    bench_case *bc = base_calloc(1, sizeof *bc);
    BENCH_CHECK(bc != NULL);
    bc->n_groups = n_groups;
    bc->window = window;
    bc->lat = base_malloc(BENCH_LAT_MAX * sizeof(int64_t));
    BENCH_CHECK(bc->lat != NULL);
    pthread_mutex_init(&bc->lat_mu, NULL);
    bc->deadline = INT64_MAX;
    pthread_t ntid[BENCH_NODES], ctid[BENCH_CLIENTS];
    int n_started = 0;

    for (int i = 0; i < BENCH_NODES; i++) {
        bench_node *n = &bc->nodes[i];
        n->bc = bc;
        n->id = (uint64_t)i + 1;
        pthread_mutex_init(&n->mu, NULL);
        cond_init_mono(&n->cond);
        snprintf(n->dir, sizeof n->dir, "%s/node%d", root, i + 1);
        raft_log_options o = {.dir = n->dir};
        char err[512] = "";
        int rc = raft_log_open(&o, &n->log, err, sizeof err);
        if (rc != 0) {
            fprintf(stderr, "raft_log_open %s: %s %s\n", n->dir, raft_log_strerror(rc), err);
            goto cleanup;
        }
        n->groups = base_calloc(n_groups, sizeof *n->groups);
        BENCH_CHECK(n->groups != NULL);
        for (size_t g = 0; g < n_groups; g++) {
            raft_config c;
            raft_config_default(&c);
            c.id = n->id;
            for (int v = 0; v < BENCH_NODES; v++) c.voters[v] = (uint64_t)v + 1;
            c.n_voters = BENCH_NODES;
            c.election_ticks = BENCH_ELECTION_TICKS;
            c.heartbeat_ticks = BENCH_HEARTBEAT_TICKS;
            c.lease_drift_ticks = 5;
            c.random_seed = n->id * 1000003u + g;
            rc = raft_node_new(&c, NULL, NULL, 0, &n->groups[g].node);
            BENCH_CHECK(rc == 0);
        }
    }
    /* node 1 campaigns for every group before the threads start */
    for (uint64_t g = 1; g <= n_groups; g++) {
        raft_event ev = {.type = RAFT_EVENT_CAMPAIGN};
        node_step(&bc->nodes[0], g, &ev);
    }
    for (int i = 0; i < BENCH_NODES; i++, n_started++)
        pthread_create(&ntid[i], NULL, node_main, &bc->nodes[i]);
    if (elect_node1(bc) != 0) {
        fprintf(stderr, "node 1 did not become leader of all %zu groups\n", n_groups);
        goto stop;
    }

    raft_log_stats s0[BENCH_NODES], s1[BENCH_NODES];
    for (int i = 0; i < BENCH_NODES; i++) raft_log_get_stats(bc->nodes[i].log, &s0[i]);
    bc->measure_start = base_monotonic_ns();
    bc->deadline = bc->measure_start + (int64_t)(seconds * 1e9);
    atomic_store(&bc->measuring, true);
    for (int i = 0; i < BENCH_CLIENTS; i++) {
        bench_client *c = &bc->clients[i];
        c->bc = bc;
        c->id = i;
        c->rr = (uint64_t)i;
        pthread_mutex_init(&c->mu, NULL);
        cond_init_mono(&c->cond);
        pthread_create(&ctid[i], NULL, client_main, c);
    }
    for (int i = 0; i < BENCH_CLIENTS; i++) pthread_join(ctid[i], NULL);
    atomic_store(&bc->measuring, false);
    for (int i = 0; i < BENCH_NODES; i++) raft_log_get_stats(bc->nodes[i].log, &s1[i]);

    double el = seconds;
    uint64_t committed = atomic_load(&bc->committed);
    qsort(bc->lat, bc->n_lat, sizeof *bc->lat, cmp_i64);
    double p50 = bc->n_lat ? (double)bc->lat[bc->n_lat / 2] / 1e3 : 0;
    double p99 = bc->n_lat ? (double)bc->lat[bc->n_lat * 99 / 100] / 1e3 : 0;
    uint64_t fs_leader = s1[0].fsyncs - s0[0].fsyncs, fs_all = 0;
    for (int i = 0; i < BENCH_NODES; i++) fs_all += s1[i].fsyncs - s0[i].fsyncs;
    uint64_t failed = 0;
    for (int i = 0; i < BENCH_CLIENTS; i++) failed += bc->clients[i].failed;
    printf("| %6zu | %3d | %10.0f | %8.0f | %8.0f | %8.0f | %6.2f | %8.0f | %8.0f | %llu |\n",
           n_groups, window * BENCH_CLIENTS, (double)committed / el, (double)fs_leader / el,
           (double)fs_all / el, (double)fs_all / el / BENCH_NODES,
           fs_leader ? (double)committed / (double)fs_leader : 0.0, p50, p99,
           (unsigned long long)failed);
    fflush(stdout);
    ret = 0;
stop:
    atomic_store(&bc->stop, true);
    for (int i = 0; i < n_started; i++) {
        pthread_mutex_lock(&bc->nodes[i].mu);
        pthread_cond_broadcast(&bc->nodes[i].cond);
        pthread_mutex_unlock(&bc->nodes[i].mu);
    }
    for (int i = 0; i < n_started; i++) pthread_join(ntid[i], NULL);
    for (int i = 0; i < BENCH_NODES; i++)
        if (bc->nodes[i].rc) ret = 1;
cleanup:
    for (int i = 0; i < BENCH_NODES; i++) {
        bench_node *n = &bc->nodes[i];
        if (n->groups) {
            for (size_t g = 0; g < n_groups; g++) {
                bench_group_state *gs = &n->groups[g];
                raft_node_free(gs->node);
                for (size_t k = 0; k < gs->n_held; k++) raft_message_release(&gs->held[k]);
                base_free(gs->held);
                base_free(gs->props);
            }
            base_free(n->groups);
        }
        queue_clear(&n->inbox);
        queue_clear(&n->work);
        base_free(n->inbox.items);
        base_free(n->work.items);
        if (n->log) raft_log_close(n->log);
    }
    base_free(bc->lat);
    base_free(bc);
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return ret;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : getenv("MERIDIAN_BENCH_DIR");
    if (!dir || !*dir) dir = ".";
    const char *s = getenv("MERIDIAN_BENCH_SECONDS");
    double seconds = s && atof(s) > 0 ? atof(s) : 5.0;
    printf("bench_raft: 3 replicas in one process (in-memory message queues, no network), "
           "real log store + fdatasync per node, %d-byte proposals from %d client threads, "
           "%.1f s per case; dir %s\n",
           BENCH_PAYLOAD, BENCH_CLIENTS, seconds, dir);
    printf("| groups | outstanding | commits/s | leader fsyncs/s | all fsyncs/s | fsyncs/s/node "
           "| commits/leader fsync | p50 us | p99 us | failed |\n");
    printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    static const size_t groups[] = {1, 100};
    static const int windows[] = {1, 8}; /* per client: 8 and 64 outstanding */
    int rc = 0;
    for (size_t g = 0; g < 2; g++)
        for (size_t w = 0; w < 2; w++)
            if (run_case(dir, groups[g], windows[w], seconds) != 0) rc = 1;
    return rc;
}
