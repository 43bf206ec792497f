/*
** bench_raft_log: figures for the segmented Raft log store (raft/log.c).
**
** For 1 and 100 groups and 1, 2, 4, 8 writer threads: each writer loops
** { append one entry (128-byte payload) plus a hard state to a group, then
** raft_log_sync(seq) } for a fixed time, with real fdatasync in a fresh
** directory under the work directory (argv[1], else $MERIDIAN_BENCH_DIR,
** else the current directory). Prints appends/s, fsyncs/s, appends per
** fsync, and the append-to-persisted latency p50/p99. Never fails on timing.
**
** Usage: bench_raft_log [dir] ; MERIDIAN_BENCH_SECONDS (default 1) per case.
*/
#define _GNU_SOURCE
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "raft/raft.h"

#define BENCH_THREADS_MAX 8
#define BENCH_LAT_MAX (1u << 20) /* latencies kept per thread */
#define BENCH_PAYLOAD 128

typedef struct bench_group {
    pthread_mutex_t mu; /* one proposer at a time per group: it owns the next index */
    uint64_t last;
    uint64_t term;
} bench_group;

typedef struct bench_ctx {
    raft_log *log;
    bench_group *groups;
    size_t n_groups;
    int64_t deadline_ns;
} bench_ctx;

typedef struct bench_thread {
    bench_ctx *ctx;
    int id, n_threads;
    int64_t *lat;
    size_t n_lat;
    uint64_t ops;
    int rc;
} bench_thread;

static void *writer(void *p)
{
    bench_thread *t = p;
    bench_ctx *c = t->ctx;
    uint8_t payload[BENCH_PAYLOAD];
    memset(payload, 'x', sizeof payload);
    uint64_t rr = (uint64_t)t->id;
    for (uint64_t i = 0; base_monotonic_ns() < c->deadline_ns; i++) {
        bench_group *g = &c->groups[rr % c->n_groups];
        uint64_t gid = rr % c->n_groups + 1;
        rr += (uint64_t)t->n_threads;
        int64_t t0 = base_monotonic_ns();
        pthread_mutex_lock(&g->mu);
        raft_entry e = {.term = g->term, .index = g->last + 1, .data = payload,
                        .len = sizeof payload};
        raft_hard_state hs = {.term = g->term, .vote = 1, .commit = g->last};
        uint64_t seq;
        t->rc = raft_log_append(c->log, gid, &hs, &e, 1, &seq);
        if (t->rc == 0) g->last++;
        pthread_mutex_unlock(&g->mu);
        if (t->rc == 0) t->rc = raft_log_sync(c->log, seq);
        if (t->rc != 0) break;
        int64_t dt = base_monotonic_ns() - t0;
        if (t->n_lat < BENCH_LAT_MAX) t->lat[t->n_lat++] = dt;
        t->ops++;
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

static int run_case(const char *base_dir, size_t n_groups, int n_threads, double seconds)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/bench-raft-log-XXXXXX", base_dir);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    raft_log_options o = {.dir = dir};
    raft_log *log = NULL;
    char err[512];
    int rc = raft_log_open(&o, &log, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    bench_group *groups = calloc(n_groups, sizeof *groups);
    for (size_t i = 0; i < n_groups; i++) {
        pthread_mutex_init(&groups[i].mu, NULL);
        groups[i].term = 1;
    }
    bench_ctx ctx = {.log = log, .groups = groups, .n_groups = n_groups};
    bench_thread th[BENCH_THREADS_MAX];
    pthread_t tid[BENCH_THREADS_MAX];
    raft_log_stats s0, s1;
    raft_log_get_stats(log, &s0);
    int64_t start = base_monotonic_ns();
    ctx.deadline_ns = start + (int64_t)(seconds * 1e9);
    for (int i = 0; i < n_threads; i++) {
        th[i] = (bench_thread){.ctx = &ctx, .id = i, .n_threads = n_threads,
                               .lat = malloc(BENCH_LAT_MAX * sizeof(int64_t))};
        pthread_create(&tid[i], NULL, writer, &th[i]);
    }
    size_t n_lat = 0;
    uint64_t ops = 0;
    for (int i = 0; i < n_threads; i++) {
        pthread_join(tid[i], NULL);
        if (th[i].rc != 0) fprintf(stderr, "writer %d: %s\n", i, raft_log_strerror(th[i].rc));
        n_lat += th[i].n_lat;
        ops += th[i].ops;
    }
    double elapsed = (double)(base_monotonic_ns() - start) / 1e9;
    raft_log_get_stats(log, &s1);
    int64_t *all = malloc((n_lat + 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < n_threads; i++) {
        memcpy(all + k, th[i].lat, th[i].n_lat * sizeof *all);
        k += th[i].n_lat;
        free(th[i].lat);
    }
    qsort(all, n_lat, sizeof *all, cmp_i64);
    double p50 = n_lat ? (double)all[n_lat / 2] / 1e3 : 0;
    double p99 = n_lat ? (double)all[(n_lat * 99) / 100] / 1e3 : 0;
    uint64_t fsyncs = s1.fsyncs - s0.fsyncs;
    printf("groups=%-4zu threads=%d  appends/s=%9.0f  fsyncs/s=%8.0f  appends/fsync=%5.2f  "
           "p50=%7.1f us  p99=%7.1f us\n",
           n_groups, n_threads, (double)ops / elapsed, (double)fsyncs / elapsed,
           fsyncs ? (double)ops / (double)fsyncs : 0.0, p50, p99);
    fflush(stdout);
    free(all);
    raft_log_close(log);
    for (size_t i = 0; i < n_groups; i++) pthread_mutex_destroy(&groups[i].mu);
    free(groups);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : getenv("MERIDIAN_BENCH_DIR");
    if (!dir || !*dir) dir = ".";
    const char *s = getenv("MERIDIAN_BENCH_SECONDS");
    double seconds = s ? atof(s) : 1.0;
    if (seconds <= 0) seconds = 1.0;
    printf("bench_raft_log: 1 entry of %d bytes + hard state per append, then sync; "
           "%.1f s per case; dir %s\n",
           BENCH_PAYLOAD, seconds, dir);
    size_t groups[] = {1, 100};
    int threads[] = {1, 2, 4, 8};
    for (size_t g = 0; g < 2; g++)
        for (size_t t = 0; t < 4; t++)
            if (run_case(dir, groups[g], threads[t], seconds) != 0) return 1;
    return 0;
}
