/*
** bench_apply: the cost of applying one large Raft entry (range/replica.c
** apply_entry) as a two-phase commit lays it: a PREPARE chunk of N intents
** (raw PUTs) and the RESOLVE round of the same N intents (raw RESOLVE,
** COMMITTED: each reads the stored intent and writes the MVCC value).
**
** Shape: one range_node with one single-voter replica (it elects itself),
** its Raft log in the engine's raw keyspace, sync off; a null transport
** (nothing is ever sent). Each round proposes one PREPARE entry then one
** RESOLVE entry of N fresh keys and times each from the propose call to its
** callback (encode, log write, apply; apply dominates at large N). The
** store grows by N rows per round, like a bulk load.
**
** Prints, per engine (memory, RocksDB under a fresh temp dir in argv[1],
** else $MERIDIAN_BENCH_DIR, else the current directory) and N (1000, 5000):
** ms per entry and us per write for each kind, as this thread's CPU time
** (what the node mutex is held for) and wall time. Never fails on timing.
** MERIDIAN_BENCH_ROUNDS (default 10) rounds per case; MERIDIAN_BENCH_STORE
** (memory or rocksdb) runs only that engine.
**
** Invariants: every proposal is waited for (bounded by ticks) before the
** next; the callback runs under the node mutex and only sets a flag.
*/
#define _GNU_SOURCE
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "range/intent_int.h"
#include "range/range.h"
#include "rpc/rpc.h"
#include "storage/storage.h"

#define BENCH_VALUE 64
#define BENCH_WAIT_TICKS 100000 /* ticks to wait for one proposal */
#define BENCH_CHECK(c) \
    do { \
        if (!(c)) { \
            fprintf(stderr, "bench_apply: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort(); \
        } \
    } while (0)

/* ---- a transport that never carries anything (one voter) ----------------------- */

static int tp_send(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload,
                   size_t len)
{
    (void)t, (void)to, (void)method, (void)payload, (void)len;
    return RPC_OK;
}

static int tp_request(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload,
                      size_t len, int64_t timeout_ms, rpc_response_fn cb, void *ctx)
{
    (void)t, (void)to, (void)method, (void)payload, (void)len, (void)timeout_ms, (void)cb,
        (void)ctx;
    return RPC_ERR_INVALID;
}

static int tp_respond(rpc_transport *t, rpc_node_id to, uint64_t request_id, int32_t status,
                      const void *payload, size_t len)
{
    (void)t, (void)to, (void)request_id, (void)status, (void)payload, (void)len;
    return RPC_ERR_INVALID;
}

static void tp_set_handler(rpc_transport *t, rpc_handler_fn fn, void *ctx)
{
    (void)t, (void)fn, (void)ctx;
}

static rpc_node_id tp_node_id(rpc_transport *t)
{
    (void)t;
    return 1;
}

static const rpc_transport_ops tp_ops = {tp_send, tp_request, tp_respond, tp_set_handler,
                                         tp_node_id};

/* ---- one case ------------------------------------------------------------------ */

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef struct bench_wait {
    bool done;
    int rc;
} bench_wait;

static void propose_cb(void *ctx, int rc)
{
    bench_wait *w = ctx;
    w->done = true;
    w->rc = rc;
}

typedef struct bench_time {
    int64_t wall_ns;
    int64_t cpu_ns; /* this thread's CPU: the node mutex hold, without the
                       waits of a loaded machine */
} bench_time;

/* Propose cmd and wait for its callback; adds the time taken to *t. */
static void propose_wait(range_node *n, range_replica *r, const range_command *cmd,
                         bench_time *t)
{
    bench_wait w = {0};
    int64_t w0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    BENCH_CHECK(range_replica_propose(r, cmd, propose_cb, &w, NULL) == RANGE_OK);
    for (int i = 0; i < BENCH_WAIT_TICKS && !w.done; i++)
        range_node_tick(n);
    t->cpu_ns += clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    t->wall_ns += clock_ns(CLOCK_MONOTONIC) - w0;
    BENCH_CHECK(w.done && w.rc == RANGE_OK);
}

static void run_case(const char *engine_name, const char *dir, size_t n_writes, int rounds)
{
    storage_engine *e = NULL;
    storage_options so = {.dir = dir, .create_if_missing = true};
    BENCH_CHECK(storage_open(&so, &e) == STORAGE_OK);
    rpc_transport tp = {.ops = &tp_ops};
    range_node *n = NULL;
    range_node_config nc = {.transport = &tp, .engine = e, .no_handler = true};
    BENCH_CHECK(range_node_new(&nc, &n) == RANGE_OK);
    range_replica_config rc = {.range_id = 7, .peers = {1}, .n_peers = 1,
                               .random_seed = 1, .log_truncate_entries = -1,
                               .proposal_timeout_ticks = 1000000};
    range_replica *r = NULL;
    BENCH_CHECK(range_node_add_replica(n, &rc, &r) == RANGE_OK);
    (void)range_replica_campaign(r);
    range_replica_status st = {0};
    for (int i = 0; i < 1000 && !st.leader; i++) {
        range_node_tick(n);
        range_replica_get_status(r, &st);
    }
    BENCH_CHECK(st.leader);

    /* owner of everything below: this function */
    range_raw_write *raw = calloc(n_writes, sizeof(*raw));
    base_buf *keys = calloc(n_writes, sizeof(*keys));
    base_buf *vals = calloc(n_writes, sizeof(*vals));
    uint8_t (*resolve)[RANGE_RAW_RESOLVE_SIZE] = calloc(n_writes, RANGE_RAW_RESOLVE_SIZE);
    BENCH_CHECK(raw != NULL && keys != NULL && vals != NULL && resolve != NULL);
    uint8_t value[BENCH_VALUE];
    memset(value, 'v', sizeof(value));
    bench_time prep = {0}, res = {0};
    for (int round = 0; round < rounds; round++) {
        uint64_t txn_id = 1000 + (uint64_t)round;
        char anchor[32];
        int anchor_len = snprintf(anchor, sizeof(anchor), "t/%03d/%08d", round, 0);
        for (size_t i = 0; i < n_writes; i++) {
            char user[32];
            /* interleaved rounds: each round's keys land all over the store */
            int ul = snprintf(user, sizeof(user), "t/%08zu/%03d", i, round);
            BENCH_CHECK(range__intent_key((const uint8_t *)user, (size_t)ul, &keys[i]) ==
                        RANGE_OK);
            range__intent in = {.txn_id = txn_id, .nonce = 1,
                                .ts = {.wall_ns = 1000 + round, .logical = 0},
                                .anchor = (const uint8_t *)anchor, .anchor_len = (size_t)anchor_len,
                                .value = value, .value_len = sizeof(value)};
            base_buf_reset(&vals[i]);
            BENCH_CHECK(range__intent_encode(&in, &vals[i]) == RANGE_OK);
            raw[i] = (range_raw_write){.key = keys[i].data, .key_len = keys[i].len,
                                       .value = vals[i].data, .value_len = vals[i].len,
                                       .kind = RANGE_RAW_PUT};
        }
        range_command pc = {.txn_id = txn_id, .seq = 1,
                              .commit_ts = {.wall_ns = 1000 + round, .logical = 0},
                              .raw_writes = raw, .raw_write_count = n_writes};
        propose_wait(n, r, &pc, &prep);
        for (size_t i = 0; i < n_writes; i++) {
            for (int b = 0; b < 8; b++)
                resolve[i][b] = (uint8_t)(txn_id >> (56 - 8 * b));
            resolve[i][8] = RANGE_TXN_COMMITTED;
            raw[i].value = resolve[i];
            raw[i].value_len = RANGE_RAW_RESOLVE_SIZE;
            raw[i].kind = RANGE_RAW_RESOLVE;
        }
        range_command rcmd = {.txn_id = txn_id, .seq = 2,
                             .commit_ts = {.wall_ns = 2000 + round, .logical = 0},
                             .raw_writes = raw, .raw_write_count = n_writes};
        propose_wait(n, r, &rcmd, &res);
    }
    double per = (double)rounds, w = (double)n_writes;
    printf("%-7s N=%5zu x%d  prepare cpu %7.2f ms/entry %5.2f us/write (wall %7.2f ms)  "
           "resolve cpu %7.2f ms/entry %5.2f us/write (wall %7.2f ms)\n",
           engine_name, n_writes, rounds, prep.cpu_ns / 1e6 / per, prep.cpu_ns / 1e3 / per / w,
           prep.wall_ns / 1e6 / per, res.cpu_ns / 1e6 / per, res.cpu_ns / 1e3 / per / w,
           res.wall_ns / 1e6 / per);
    fflush(stdout);
    for (size_t i = 0; i < n_writes; i++) {
        base_buf_free(&keys[i]);
        base_buf_free(&vals[i]);
    }
    free(raw);
    free(keys);
    free(vals);
    free(resolve);
    range_node_free(n);
    storage_close(e);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : getenv("MERIDIAN_BENCH_DIR");
    if (base == NULL)
        base = ".";
    const char *rs = getenv("MERIDIAN_BENCH_ROUNDS");
    int rounds = rs != NULL && atoi(rs) > 0 ? atoi(rs) : 10;
    const char *only = getenv("MERIDIAN_BENCH_STORE");
    const size_t sizes[] = {1000, 5000};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
        if (only == NULL || strcmp(only, "memory") == 0)
            run_case("memory", NULL, sizes[s], rounds);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        if (only != NULL && strcmp(only, "rocksdb") != 0)
            continue;
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/bench_apply.XXXXXX", base);
        BENCH_CHECK(mkdtemp(dir) != NULL);
        run_case("rocksdb", dir, sizes[s], rounds);
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    return 0;
}
