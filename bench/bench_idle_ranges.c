/*
** bench_idle_ranges: what N idle ranges cost a node (issue 4: "idle ranges
** cost almost nothing"). Three range_nodes in one process, each over its own
** rpc_uv transport on loopback (real sockets, one loop thread per node, as
** tests/range/test_range_uv.c wires them), each hosting a replica of every
** one of N ranges (in-memory storage, raw-keyspace log). Leaders are spread:
** node (r % 3) + 1 campaigns for range r. Once every range has a leader that
** all three replicas know, nothing is proposed; a ticker ticks every node
** every tick (production rate, 100 ms) and for a few seconds we count:
**   - rpc frames sent per second per node (rpc_uv_get_stats: frames_sent,
**     the number of rpc messages; Raft traffic is all one-way messages),
**   - bytes sent per second per node,
**   - CPU time of the whole process per second of wall time (getrusage
**     RUSAGE_SELF, user + system: the three nodes, their loop threads and
**     the ticker; divide by 3 for one node),
**   - elections during the window (sum of terms after minus before: should
**     be 0 for an idle cluster).
** Prints a markdown table. Never fails on timing; every wait is bounded.
** Usage: bench_idle_ranges; MERIDIAN_BENCH_SECONDS per case (default 3),
** MERIDIAN_BENCH_RANGES (1, 100 or 1000) runs only that case,
** MERIDIAN_BENCH_TICK_MS (default 100).
**
** Invariants: shutdown follows docs/range.md (range_node_forget_transport,
** rpc_uv_free, range_node_free); nothing is proposed, so no callback runs.
*/
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/base.h"
#include "range/range.h"
#include "rpc/rpc.h"
#include "storage/storage.h"

#define BENCH_NODES 3
#define BENCH_RANGES_MAX 1000 /* <= RANGE_NODE_REPLICAS_MAX */
#define BENCH_WAIT_MS 60000   /* every range led and known */
#define BENCH_SETTLE_MS 1000  /* after that, before counting */
#define BENCH_CHECK(c) \
    do { \
        if (!(c)) { \
            fprintf(stderr, "bench_idle_ranges: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort(); \
        } \
    } while (0)

typedef struct bench_cluster {
    rpc_uv *uv[BENCH_NODES + 1];
    storage_engine *engine[BENCH_NODES + 1];
    range_node *rn[BENCH_NODES + 1];
    range_replica *rep[BENCH_NODES + 1][BENCH_RANGES_MAX + 1];
    size_t n_ranges;
    int64_t tick_ns;
    pthread_t ticker;
    atomic_bool stop;
} bench_cluster;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    nanosleep(&ts, NULL);
}

static int64_t cpu_ns(void)
{
    struct rusage ru;
    BENCH_CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

/* The node timer: ticks at a fixed rate (a late tick is not made up). */
static void *ticker_main(void *arg)
{
    bench_cluster *bc = arg;
    int64_t next = now_ns() + bc->tick_ns;
    while (!atomic_load(&bc->stop)) {
        int64_t wait = next - now_ns();
        if (wait > 0)
            sleep_ns(wait);
        next += bc->tick_ns;
        for (int i = 1; i <= BENCH_NODES; i++)
            range_node_tick(bc->rn[i]);
    }
    return NULL;
}

/* Every range has a leader and all three replicas name it. */
static bool all_led(bench_cluster *bc, bool campaign)
{
    bool ok = true;
    for (size_t r = 1; r <= bc->n_ranges; r++) {
        uint64_t leader = 0;
        bool agree = true;
        for (int i = 1; i <= BENCH_NODES; i++) {
            range_replica_status st;
            range_replica_get_status(bc->rep[i][r], &st);
            if (i == 1)
                leader = st.leader_id;
            else if (st.leader_id != leader)
                agree = false;
        }
        if (leader != 0 && agree)
            continue;
        ok = false;
        if (campaign && leader == 0)
            (void)range_replica_campaign(bc->rep[r % BENCH_NODES + 1][r]);
    }
    return ok;
}

static uint64_t terms_sum(bench_cluster *bc)
{
    uint64_t sum = 0;
    for (int i = 1; i <= BENCH_NODES; i++)
        for (size_t r = 1; r <= bc->n_ranges; r++) {
            range_replica_status st;
            range_replica_get_status(bc->rep[i][r], &st);
            sum += st.term;
        }
    return sum;
}

static void run_case(size_t n_ranges, double seconds, int64_t tick_ns)
{
    bench_cluster *bc = calloc(1, sizeof(*bc)); /* owner: this function */
    BENCH_CHECK(bc != NULL);
    bc->n_ranges = n_ranges;
    bc->tick_ns = tick_ns;
    int ports[BENCH_NODES + 1];
    for (int i = 1; i <= BENCH_NODES; i++) {
        rpc_uv_config cfg;
        rpc_uv_config_init(&cfg);
        cfg.node_id = (rpc_node_id)i;
        cfg.listen_host = "127.0.0.1";
        cfg.listen_port = 0;
        cfg.random_seed = (uint64_t)i;
        BENCH_CHECK(rpc_uv_start(&cfg, &bc->uv[i]) == RPC_OK);
        ports[i] = rpc_uv_listen_port(bc->uv[i]);
        storage_options so = {.dir = NULL, .create_if_missing = true};
        BENCH_CHECK(storage_open(&so, &bc->engine[i]) == STORAGE_OK);
    }
    for (int i = 1; i <= BENCH_NODES; i++)
        for (int j = 1; j <= BENCH_NODES; j++)
            if (i != j)
                BENCH_CHECK(rpc_uv_add_peer(bc->uv[i], (rpc_node_id)j, "127.0.0.1", ports[j]) ==
                            RPC_OK);
    for (int i = 1; i <= BENCH_NODES; i++) {
        range_node_config nc = {.transport = rpc_uv_transport(bc->uv[i]),
                                .engine = bc->engine[i]};
        BENCH_CHECK(range_node_new(&nc, &bc->rn[i]) == RANGE_OK);
        for (size_t r = 1; r <= n_ranges; r++) {
            range_replica_config rc = {.range_id = r, .n_peers = BENCH_NODES,
                                       .random_seed = (uint64_t)i * 7919 + r};
            for (int k = 0; k < BENCH_NODES; k++)
                rc.peers[k] = (uint64_t)k + 1;
            BENCH_CHECK(range_node_add_replica(bc->rn[i], &rc, &bc->rep[i][r]) == RANGE_OK);
        }
    }
    BENCH_CHECK(pthread_create(&bc->ticker, NULL, ticker_main, bc) == 0);
    int64_t deadline = now_ns() + (int64_t)BENCH_WAIT_MS * 1000000;
    int64_t elect_t0 = now_ns();
    while (!all_led(bc, true)) {
        if (now_ns() > deadline) {
            fprintf(stderr, "bench_idle_ranges: not every one of %zu ranges got a leader\n",
                    n_ranges);
            abort();
        }
        sleep_ns(50 * 1000000LL); /* elections run on the ticker: poll, bounded above */
    }
    double elect_s = (double)(now_ns() - elect_t0) / 1e9;
    sleep_ns((int64_t)BENCH_SETTLE_MS * 1000000);

    rpc_uv_stats s0[BENCH_NODES + 1], s1[BENCH_NODES + 1];
    uint64_t terms0 = terms_sum(bc);
    for (int i = 1; i <= BENCH_NODES; i++)
        rpc_uv_get_stats(bc->uv[i], &s0[i]);
    int64_t c0 = cpu_ns(), t0 = now_ns();
    sleep_ns((int64_t)(seconds * 1e9));
    int64_t c1 = cpu_ns(), t1 = now_ns();
    for (int i = 1; i <= BENCH_NODES; i++)
        rpc_uv_get_stats(bc->uv[i], &s1[i]);
    uint64_t terms1 = terms_sum(bc);
    bool led = all_led(bc, false);

    atomic_store(&bc->stop, true);
    pthread_join(bc->ticker, NULL);
    for (int i = 1; i <= BENCH_NODES; i++) {
        range_node_forget_transport(bc->rn[i]);
        rpc_uv_free(bc->uv[i]);
    }
    for (int i = 1; i <= BENCH_NODES; i++) {
        range_node_free(bc->rn[i]);
        storage_close(bc->engine[i]);
    }

    double secs = (double)(t1 - t0) / 1e9;
    double frames = 0, frames_max = 0, bytes = 0;
    for (int i = 1; i <= BENCH_NODES; i++) {
        double f = (double)(s1[i].frames_sent - s0[i].frames_sent) / secs;
        frames += f / BENCH_NODES;
        if (f > frames_max)
            frames_max = f;
        bytes += (double)(s1[i].bytes_sent - s0[i].bytes_sent) / secs / BENCH_NODES;
    }
    double cpu_ms = (double)(c1 - c0) / 1e6 / secs;
    printf("| %4zu | %9.0f | %9.0f | %9.1f | %8.1f | %8.1f | %4llu | %5.1f |%s\n", n_ranges,
           frames, frames_max, bytes / 1024.0, cpu_ms, cpu_ms / BENCH_NODES,
           (unsigned long long)(terms1 - terms0), elect_s, led ? "" : " (not all led at the end)");
    fflush(stdout);
    free(bc);
}

int main(void)
{
    const char *secs_env = getenv("MERIDIAN_BENCH_SECONDS");
    double seconds = secs_env != NULL ? atof(secs_env) : 3.0;
    if (seconds <= 0)
        seconds = 3.0;
    const char *tick_env = getenv("MERIDIAN_BENCH_TICK_MS");
    int64_t tick_ms = tick_env != NULL ? atoll(tick_env) : 100;
    if (tick_ms <= 0)
        tick_ms = 100;
    const char *only = getenv("MERIDIAN_BENCH_RANGES");
    base_log_set_level(BASE_LOG_ERROR);
    printf("bench_idle_ranges: 3 nodes on loopback (rpc_uv), N idle ranges (3 replicas each, "
           "leaders spread), tick %lld ms, %.1f s per case\n", (long long)tick_ms, seconds);
    printf("| ranges | rpc msgs/s per node | max node | KiB/s per node | CPU ms/s (process) "
           "| CPU ms/s per node | elections | setup s |\n");
    printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    static const size_t cases[] = {1, 100, 1000};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        if (cases[k] > BENCH_RANGES_MAX || cases[k] > RANGE_NODE_REPLICAS_MAX)
            continue;
        if (only != NULL && (size_t)atoll(only) != cases[k])
            continue;
        run_case(cases[k], seconds, tick_ms * 1000000LL);
    }
    return 0;
}
