/*
** bench/storage_bench.c: figures for storage/ on both engines, comparable to
** /work/shared/notes/storage-engines.md (24-byte keys, 100-byte values,
** N keys x V versions, warm cache). Prints figures; never fails on timing.
**
**   storage_bench [--engine memory|rocksdb|both] [--keys N] [--versions V]
**                 [--seconds S] [--dir PATH]
**
** Phases: load (batches of 256, unsynced), get at a random timestamp (fresh
** read each), get with one shared snapshot per 64 gets, scan of 100 keys,
** atomic batches of 1/16/256 versions synced and unsynced, and group commit
** (T threads of synced single-version batches, with the WAL's own count of
** writes and fsyncs from storage_stats).
**
** Build: not picked up by bench/CMakeLists.txt's bench_*.c glob; add
**   add_executable(storage_bench storage_bench.c)
**   target_link_libraries(storage_bench PRIVATE meridian_storage)
*/
#define _GNU_SOURCE
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "storage/storage.h"

#define BENCH_KEY_LEN 24
#define BENCH_VALUE_LEN 100
#define BENCH_LOAD_BATCH 256
#define BENCH_THREADS_MAX 8
#define BENCH_SCAN_LEN 100
#define BENCH_MEMORY_KEYS_MAX 20000 /* the twin inserts in O(n) */

static int64_t g_duration_ns = 2LL * 1000 * 1000 * 1000;
static long g_keys = 100000;
static int g_versions = 3;
static uint8_t g_value[BENCH_VALUE_LEN];

static void make_key(uint8_t *k, long i) {
    char tmp[BENCH_KEY_LEN + 1];
    snprintf(tmp, sizeof tmp, "user%020ld", i);
    memcpy(k, tmp, BENCH_KEY_LEN);
}

static hlc_timestamp ts_of(int v) {
    hlc_timestamp t = {1000 + v, 0};
    return t;
}

static int load(storage_engine *e) {
    storage_batch *b = storage_batch_new();
    if (b == NULL) return -1;
    int64_t t0 = base_monotonic_ns();
    long n = 0;
    for (int v = 0; v < g_versions; v++) {
        for (long i = 0; i < g_keys; i++) {
            uint8_t k[BENCH_KEY_LEN];
            make_key(k, i);
            if (storage_batch_put(b, k, sizeof k, ts_of(v), g_value, sizeof g_value) != 0) return -1;
            if (storage_batch_count(b) == BENCH_LOAD_BATCH) {
                if (storage_write(e, b, false) != 0) return -1;
                storage_batch_clear(b);
            }
            n++;
        }
    }
    if (storage_write(e, b, false) != 0) return -1;
    storage_batch_free(b);
    double s = (double)(base_monotonic_ns() - t0) / 1e9;
    printf("  load %ld versions: %.0f versions/s\n", n, (double)n / s);
    return 0;
}

static void bench_gets(storage_engine *e, bool shared_snapshot) {
    unsigned seed = 1;
    long ops = 0;
    storage_snapshot *snap = NULL;
    int64_t t0 = base_monotonic_ns(), end = t0 + g_duration_ns;
    while (base_monotonic_ns() < end) {
        for (int j = 0; j < 64; j++) {
            if (shared_snapshot && j == 0 && storage_snapshot_new(e, &snap) != 0) return;
            uint8_t k[BENCH_KEY_LEN];
            make_key(k, rand_r(&seed) % g_keys);
            storage_value v;
            if (storage_get(e, snap, k, sizeof k, ts_of(rand_r(&seed) % g_versions), &v) < 0)
                return;
            storage_value_free(&v);
            ops++;
        }
        if (snap) storage_snapshot_release(e, snap);
        snap = NULL;
    }
    double us = (double)(base_monotonic_ns() - t0) / 1e3 / (double)ops;
    printf("  %-10s %7.2f us/op (%.0f/s)\n", shared_snapshot ? "get-snap" : "get", us, 1e6 / us);
}

static void bench_scan(storage_engine *e) {
    unsigned seed = 2;
    long scans = 0;
    int64_t t0 = base_monotonic_ns(), end = t0 + g_duration_ns;
    while (base_monotonic_ns() < end) {
        uint8_t k[BENCH_KEY_LEN];
        make_key(k, rand_r(&seed) % g_keys);
        storage_iter_options o = {.start = k, .start_len = sizeof k, .ts = HLC_MAX,
                                  .mode = STORAGE_ITER_AT_TS};
        storage_iter *it = NULL;
        if (storage_iter_open(e, NULL, &o, &it) != 0) return;
        for (int j = 0; j < BENCH_SCAN_LEN; j++)
            if (storage_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL) != 1) break;
        storage_iter_close(it);
        scans++;
    }
    double us = (double)(base_monotonic_ns() - t0) / 1e3 / (double)scans;
    printf("  %-10s %7.2f us/scan (%.0f/s)\n", "scan 100", us, 1e6 / us);
}

static void bench_batches(storage_engine *e, int size, bool sync, int *next_version) {
    storage_batch *b = storage_batch_new();
    unsigned seed = 3;
    long batches = 0;
    int64_t t0 = base_monotonic_ns(), end = t0 + g_duration_ns;
    while (base_monotonic_ns() < end && b) {
        storage_batch_clear(b);
        int v = (*next_version)++;
        for (int j = 0; j < size; j++) {
            uint8_t k[BENCH_KEY_LEN];
            make_key(k, rand_r(&seed) % g_keys);
            storage_batch_put(b, k, sizeof k, ts_of(v), g_value, sizeof g_value);
        }
        if (storage_write(e, b, sync) != 0) break;
        batches++;
    }
    storage_batch_free(b);
    double us = (double)(base_monotonic_ns() - t0) / 1e3 / (double)(batches ? batches : 1);
    printf("  batch %3d %-7s %8.1f us/batch (%.0f versions/s)\n", size, sync ? "sync" : "nosync",
           us, 1e6 / us * size);
}

typedef struct group_ctx {
    storage_engine *e;
    int id;
    int64_t end_ns;
    long writes;
} group_ctx;

static void *group_writer(void *arg) {
    group_ctx *c = arg;
    storage_batch *b = storage_batch_new();
    for (long i = 0; b && base_monotonic_ns() < c->end_ns; i++) {
        uint8_t k[BENCH_KEY_LEN];
        make_key(k, (c->id * 7919 + i) % g_keys);
        storage_batch_clear(b);
        storage_batch_put(b, k, sizeof k, ts_of(1000000 + c->id), g_value, sizeof g_value);
        if (storage_write(c->e, b, true) != 0) break;
        c->writes++;
    }
    storage_batch_free(b);
    return NULL;
}

/* RocksDB prints counts as 1234, 12K, 12M, 12G. */
static unsigned long long human_number(const char **p) {
    char *end;
    unsigned long long n = strtoull(*p, &end, 10);
    if (*end == 'K') n *= 1000ULL, end++;
    else if (*end == 'M') n *= 1000000ULL, end++;
    else if (*end == 'G') n *= 1000000000ULL, end++;
    *p = end;
    return n;
}

/* "Cumulative WAL: N writes, M syncs" from the engine's stats (RocksDB). */
static void wal_counts(storage_engine *e, unsigned long long *writes, unsigned long long *syncs) {
    *writes = *syncs = 0;
    base_buf st = {0};
    if (storage_stats(e, &st) == 0 && base_buf_append_byte(&st, 0) == 0) {
        const char *p = strstr((const char *)st.data, "Cumulative WAL:");
        if (p) {
            p += strlen("Cumulative WAL:");
            *writes = human_number(&p);
            p = strstr(p, ",");
            if (p) {
                p++;
                *syncs = human_number(&p);
            }
        }
    }
    base_buf_free(&st);
}

/* A fresh store per thread count, so the WAL counts are exact (< 10000). */
static void bench_group_commit(const char *dir) {
    for (int threads = 1; threads <= BENCH_THREADS_MAX; threads *= 2) {
        char sub[600];
        snprintf(sub, sizeof sub, "%s/group-%d", dir, threads);
        storage_options o = {.dir = sub, .create_if_missing = true};
        storage_engine *e = NULL;
        if (storage_open(&o, &e) != 0) return;
        pthread_t th[BENCH_THREADS_MAX];
        group_ctx c[BENCH_THREADS_MAX];
        unsigned long long w0, s0, w1, s1;
        wal_counts(e, &w0, &s0);
        int64_t t0 = base_monotonic_ns();
        for (int i = 0; i < threads; i++) {
            c[i] = (group_ctx){e, i, t0 + g_duration_ns / 2, 0};
            pthread_create(&th[i], NULL, group_writer, &c[i]);
        }
        long total = 0;
        for (int i = 0; i < threads; i++) {
            pthread_join(th[i], NULL);
            total += c[i].writes;
        }
        double s = (double)(base_monotonic_ns() - t0) / 1e9;
        wal_counts(e, &w1, &s1);
        printf("  group commit %d threads: %.0f synced batches/s; WAL %llu writes, %llu syncs "
               "(%.2f writes/sync)\n",
               threads, (double)total / s, w1 - w0, s1 - s0,
               s1 > s0 ? (double)(w1 - w0) / (double)(s1 - s0) : 0.0);
        storage_close(e);
    }
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int run(const char *engine, const char *dir_arg) {
    char dir[64] = "";
    int rc = 0;
    storage_options o = {.create_if_missing = true};
    if (strcmp(engine, "rocksdb") == 0) {
        if (dir_arg) {
            o.dir = dir_arg;
        } else {
            strcpy(dir, "/tmp/meridian-storage-bench-XXXXXX");
            if (mkdtemp(dir) == NULL) return 1;
            o.dir = dir;
        }
    }
    long keys_asked = g_keys;
    if (o.dir == NULL && g_keys > BENCH_MEMORY_KEYS_MAX) g_keys = BENCH_MEMORY_KEYS_MAX; /* O(n) inserts */
    storage_engine *e = NULL;
    if (storage_open(&o, &e) != 0) return 1;
    printf("%s: %ld keys x %d versions\n", engine, g_keys, g_versions);
    int next_version = g_versions;
    rc = load(e);
    if (rc == 0) {
        bench_gets(e, false);
        bench_gets(e, true);
        bench_scan(e);
        int sizes[] = {1, 16, 256};
        for (int sync = 1; sync >= 0; sync--)
            for (size_t i = 0; i < BASE_ARRAY_LEN(sizes); i++)
                bench_batches(e, sizes[i], sync, &next_version);
    }
    storage_close(e);
    if (rc == 0 && o.dir) bench_group_commit(o.dir);
    g_keys = keys_asked;
    if (dir[0]) nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *engine = "both", *dir = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--engine") == 0) engine = argv[i + 1];
        else if (strcmp(argv[i], "--keys") == 0) g_keys = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--versions") == 0) g_versions = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0) g_duration_ns = (int64_t)(atof(argv[i + 1]) * 1e9);
        else if (strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
        else {
            fprintf(stderr, "usage: %s [--engine memory|rocksdb|both] [--keys N] [--versions V] "
                            "[--seconds S] [--dir PATH]\n", argv[0]);
            return 2;
        }
    }
    if (g_keys < 1 || g_versions < 1) return 2;
    base_log_set_level(BASE_LOG_WARN);
    unsigned seed = 4;
    for (size_t i = 0; i < sizeof g_value; i++) g_value[i] = (uint8_t)rand_r(&seed);
    int rc = 0;
    if (strcmp(engine, "memory") == 0 || strcmp(engine, "both") == 0) rc |= run("memory", NULL);
    if (strcmp(engine, "rocksdb") == 0 || strcmp(engine, "both") == 0) rc |= run("rocksdb", dir);
    return rc;
}
