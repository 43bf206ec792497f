/*
** tests/range/test_range_log.c: replicas of several ranges on the shared
** segmented Raft log (range_node_config.log, raft/log.c) with the real log
** syncer thread, over rpc_uv on loopback (one loop thread per node, a ticker
** thread as the node timer).
**
**   - restart_exact: 3 nodes x RANGES ranges commit, the logs are truncated
**     (small log_truncate_entries, small segments: purges run); every node
**     is stopped and reopened over the same engine and log directory; each
**     replica must come back with exactly its hard state term, last index,
**     first index (compaction point) and applied index, and the cluster
**     then commits more and every write is read back.
**   - kill9: the binary re-executes itself as a child that runs the three
**     nodes on RocksDB engines and shared logs under one directory and
**     reports every acknowledged command on a pipe; the parent SIGKILLs it
**     at a seeded random report, reopens the three stores, and checks that
**     every acknowledged write is readable at each range's leader after a
**     ReadIndex barrier, that all replicas converge (applied and last index,
**     identical MVCC contents), and that the logs stay truncated. Several
**     rounds on the same stores, so restarts pile up.
** Every wait is on a condition variable with a bound; MERIDIAN_SEED replays
** the kill points.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/base.h"
#include "range/range.h"
#include "rpc/rpc.h"
#include "storage/storage.h"

#define NODES 3
#define RANGES 4
#define CMDS_MAX 4096         /* commands per range over a whole test */
#define TICK_MS 5
#define ELECTION_TICKS 20
#define TRUNCATE_ENTRIES 32
#define SEGMENT_BYTES (8u << 10)
#define OUTSTANDING 32        /* proposals in flight over all ranges (a share each) */
#define WAIT_MS_MAX 30000
#define KILL_ROUNDS 3
#define KILL_REPORTS_MAX 400  /* the child is killed within this many acks */
#define CHILD_CMDS 1500       /* per range: the child never runs out */

static char g_self[1024];

typedef struct cmd_slot {
    struct cluster *c;
    int range; /* 1..RANGES */
    int index; /* 0..CMDS_MAX-1 */
} cmd_slot;

typedef struct cluster {
    char dir[512];
    bool disk; /* RocksDB engines under dir (else in-memory, kept by the test) */
    rpc_uv *uv[NODES + 1];
    storage_engine *engine[NODES + 1];
    raft_log *log[NODES + 1];
    range_node *rn[NODES + 1];
    range_replica *rep[NODES + 1][RANGES + 1];
    pthread_t ticker;
    bool ticker_started;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t events;                 /* ticks and callbacks (mu) */
    uint8_t state[RANGES + 1][CMDS_MAX]; /* 0 idle, 1 proposed, 2 acked (mu) */
    cmd_slot slots[RANGES + 1][CMDS_MAX];
    int report_fd;                   /* child: acks go here (-1: none) */
    int read_done, read_rc;
} cluster;

/* ---- helpers ---------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void node_path(const cluster *c, int i, const char *what, char *out, size_t size)
{
    snprintf(out, size, "%s/n%d%s%s", c->dir, i, what[0] ? "/" : "", what);
}

static void cmd_key(int range, int i, char *out, size_t size)
{
    snprintf(out, size, "r%d/k%06d", range, i);
}
static void cmd_value(int range, int i, char *out, size_t size)
{
    snprintf(out, size, "value-%d-%d", range, i);
}
static hlc_timestamp cmd_ts(int i) { return (hlc_timestamp){1000 + i, 0}; }

static void bump(cluster *c)
{
    c->events++;
    pthread_cond_broadcast(&c->cv);
}

static void *ticker_main(void *arg)
{
    cluster *c = arg;
    while (!atomic_load(&c->stop)) {
        struct timespec ts = {0, TICK_MS * 1000000L};
        nanosleep(&ts, NULL); /* the node timer, not a wait for a condition */
        for (int i = 1; i <= NODES; i++)
            range_node_tick(c->rn[i]);
        pthread_mutex_lock(&c->mu);
        bump(c);
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

/* Wait (bounded) until pred(c) holds, rechecking after every tick or
** callback. pred runs without c->mu (node calls take the node mutex, whose
** callbacks take c->mu). */
static bool wait_for(cluster *c, bool (*pred)(cluster *, int), int arg)
{
    int64_t deadline = base_monotonic_ns() + (int64_t)WAIT_MS_MAX * 1000000;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        uint64_t seen = c->events;
        pthread_mutex_unlock(&c->mu);
        if (pred(c, arg))
            return true;
        if (base_monotonic_ns() > deadline)
            return false;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&c->mu);
        if (c->events == seen)
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        pthread_mutex_unlock(&c->mu);
    }
}

static uint64_t leader_of(cluster *c, int range)
{
    for (int i = 1; i <= NODES; i++) {
        range_replica_status st;
        range_replica_get_status(c->rep[i][range], &st);
        if (st.leader)
            return (uint64_t)i;
    }
    return 0;
}
static bool has_leader(cluster *c, int range) { return leader_of(c, range) != 0; }

/* Every replica of the range applied everything it stores, all the same. */
static bool converged(cluster *c, int range)
{
    range_replica_status st[NODES + 1];
    for (int i = 1; i <= NODES; i++)
        range_replica_get_status(c->rep[i][range], &st[i]);
    for (int i = 1; i <= NODES; i++)
        if (st[i].applied != st[1].applied || st[i].last_index != st[1].last_index ||
            st[i].applied != st[i].last_index || st[i].commit != st[i].last_index)
            return false;
    return true;
}

/* And the logs are truncated down to the threshold. */
static bool converged_truncated(cluster *c, int range)
{
    if (!converged(c, range))
        return false;
    for (int i = 1; i <= NODES; i++) {
        range_replica_status st;
        range_replica_get_status(c->rep[i][range], &st);
        if (st.last_index + 1 - st.first_index >= 2 * TRUNCATE_ENTRIES)
            return false;
    }
    return true;
}

/* ---- the cluster -------------------------------------------------------------- */

static void open_stores(cluster *c)
{
    for (int i = 1; i <= NODES; i++) {
        char path[600];
        node_path(c, i, "", path, sizeof(path));
        (void)mkdir(path, 0755);
        if (c->engine[i] == NULL) {
            char data[600];
            node_path(c, i, "data", data, sizeof(data));
            storage_options so = {.dir = c->disk ? data : NULL, .create_if_missing = true};
            assert_int_equal(storage_open(&so, &c->engine[i]), STORAGE_OK);
        }
        node_path(c, i, "raft", path, sizeof(path));
        raft_log_options lo = {.dir = path, .segment_bytes_max = SEGMENT_BYTES};
        char err[256] = "";
        int rc = raft_log_open(&lo, &c->log[i], err, sizeof(err));
        if (rc != RAFT_LOG_OK)
            fprintf(stderr, "raft_log_open %s: %s %s\n", path, raft_log_strerror(rc), err);
        assert_int_equal(rc, RAFT_LOG_OK);
    }
}

/* Start transports, nodes, replicas; the ticker only when tick. */
static void start(cluster *c, bool tick)
{
    int ports[NODES + 1];
    for (int i = 1; i <= NODES; i++) {
        rpc_uv_config cfg;
        rpc_uv_config_init(&cfg);
        cfg.node_id = (rpc_node_id)i;
        cfg.listen_host = "127.0.0.1";
        cfg.listen_port = 0;
        cfg.random_seed = (uint64_t)i;
        assert_int_equal(rpc_uv_start(&cfg, &c->uv[i]), RPC_OK);
        ports[i] = rpc_uv_listen_port(c->uv[i]);
    }
    for (int i = 1; i <= NODES; i++)
        for (int j = 1; j <= NODES; j++)
            if (i != j)
                assert_int_equal(
                    rpc_uv_add_peer(c->uv[i], (rpc_node_id)j, "127.0.0.1", ports[j]), RPC_OK);
    for (int i = 1; i <= NODES; i++) {
        range_node_config nc = {.transport = rpc_uv_transport(c->uv[i]),
                                .engine = c->engine[i], .sync = true, .log = c->log[i]};
        assert_int_equal(range_node_new(&nc, &c->rn[i]), RANGE_OK);
        for (int r = 1; r <= RANGES; r++) {
            range_replica_config rc = {.range_id = (uint64_t)r, .n_peers = NODES,
                                       .election_ticks = ELECTION_TICKS,
                                       .random_seed = (uint64_t)(i * 7919 + r),
                                       .proposal_timeout_ticks = 400,
                                       .log_truncate_entries = TRUNCATE_ENTRIES};
            for (int k = 0; k < NODES; k++)
                rc.peers[k] = (uint64_t)k + 1;
            assert_int_equal(range_node_add_replica(c->rn[i], &rc, &c->rep[i][r]), RANGE_OK);
        }
    }
    atomic_store(&c->stop, false);
    if (tick) {
        assert_int_equal(pthread_create(&c->ticker, NULL, ticker_main, c), 0);
        c->ticker_started = true;
    }
}

static void start_ticker(cluster *c)
{
    assert_int_equal(pthread_create(&c->ticker, NULL, ticker_main, c), 0);
    c->ticker_started = true;
}

/* Clean stop: no send after forget, no handler after rpc_uv_free. */
static void stop(cluster *c)
{
    atomic_store(&c->stop, true);
    if (c->ticker_started)
        pthread_join(c->ticker, NULL);
    c->ticker_started = false;
    for (int i = 1; i <= NODES; i++) {
        range_node_forget_transport(c->rn[i]);
        rpc_uv_free(c->uv[i]);
        c->uv[i] = NULL;
    }
    for (int i = 1; i <= NODES; i++) {
        range_node_free(c->rn[i]);
        c->rn[i] = NULL;
        raft_log_close(c->log[i]);
        c->log[i] = NULL;
    }
}

static cluster *cluster_new(const char *dir, bool disk)
{
    cluster *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    snprintf(c->dir, sizeof(c->dir), "%s", dir);
    c->disk = disk;
    c->report_fd = -1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    for (int r = 1; r <= RANGES; r++)
        for (int i = 0; i < CMDS_MAX; i++)
            c->slots[r][i] = (cmd_slot){c, r, i};
    return c;
}

static void cluster_free(cluster *c)
{
    for (int i = 1; i <= NODES; i++)
        if (c->engine[i] != NULL)
            storage_close(c->engine[i]);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* ---- writes ------------------------------------------------------------------- */

static void on_propose(void *ctx, int rc)
{
    cmd_slot *sl = ctx;
    cluster *c = sl->c;
    pthread_mutex_lock(&c->mu);
    if (rc == RANGE_OK && c->state[sl->range][sl->index] != 2) {
        c->state[sl->range][sl->index] = 2;
        if (c->report_fd >= 0) {
            int32_t rep[2] = {sl->range, sl->index};
            if (write(c->report_fd, rep, sizeof(rep)) != (ssize_t)sizeof(rep))
                _exit(3);
        }
    } else if (rc != RANGE_OK && c->state[sl->range][sl->index] == 1) {
        c->state[sl->range][sl->index] = 0; /* re-proposed with the same key */
    }
    bump(c);
    pthread_mutex_unlock(&c->mu);
}

/* Propose commands [first, last) of every range at its leader, OUTSTANDING
** in flight, re-proposing whatever fails, until all are acknowledged.
** false at the deadline. */
static bool write_all(cluster *c, int first, int last)
{
    int64_t deadline = base_monotonic_ns() + (int64_t)WAIT_MS_MAX * 1000000 * 2;
    for (;;) {
        int inflight[RANGES + 1] = {0}, acked = 0;
        pthread_mutex_lock(&c->mu);
        for (int r = 1; r <= RANGES; r++)
            for (int i = first; i < last; i++) {
                inflight[r] += c->state[r][i] == 1;
                acked += c->state[r][i] == 2;
            }
        uint64_t seen = c->events;
        pthread_mutex_unlock(&c->mu);
        if (acked == RANGES * (last - first))
            return true;
        if (base_monotonic_ns() > deadline)
            return false;
        for (int r = 1; r <= RANGES; r++) {
            uint64_t leader = leader_of(c, r);
            for (int i = first; i < last && leader != 0 && inflight[r] < OUTSTANDING / RANGES;
                 i++) {
                pthread_mutex_lock(&c->mu);
                bool idle = c->state[r][i] == 0;
                if (idle)
                    c->state[r][i] = 1;
                pthread_mutex_unlock(&c->mu);
                if (!idle)
                    continue;
                char key[32], value[32];
                cmd_key(r, i, key, sizeof(key));
                cmd_value(r, i, value, sizeof(value));
                range_write w = {(const uint8_t *)key, strlen(key), (const uint8_t *)value,
                                 strlen(value), false};
                /* idempotence keys are unique across a node's ranges (range.h) */
                range_command cmd = {.txn_id = (uint64_t)i + 1, .seq = (uint64_t)r,
                                     .commit_ts = cmd_ts(i), .writes = &w, .write_count = 1};
                uint64_t hint;
                if (range_replica_propose(c->rep[leader][r], &cmd, on_propose, &c->slots[r][i],
                                          &hint) == RANGE_OK) {
                    inflight[r]++;
                } else {
                    pthread_mutex_lock(&c->mu);
                    c->state[r][i] = 0;
                    pthread_mutex_unlock(&c->mu);
                    break; /* not the leader any more: look again */
                }
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&c->mu);
        if (c->events == seen)
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        pthread_mutex_unlock(&c->mu);
    }
}

/* ---- checks ------------------------------------------------------------------- */

static void on_read(void *ctx, int rc)
{
    cluster *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->read_done++;
    c->read_rc = rc;
    bump(c);
    pthread_mutex_unlock(&c->mu);
}
static bool read_done(cluster *c, int unused)
{
    (void)unused;
    pthread_mutex_lock(&c->mu);
    bool done = c->read_done > 0;
    pthread_mutex_unlock(&c->mu);
    return done;
}

/* A ReadIndex barrier at the range's leader; returns the leader. */
static uint64_t barrier(cluster *c, int range)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        assert_true(wait_for(c, has_leader, range));
        uint64_t leader = leader_of(c, range);
        uint64_t hint;
        pthread_mutex_lock(&c->mu);
        c->read_done = 0;
        pthread_mutex_unlock(&c->mu);
        if (leader == 0 ||
            range_replica_read(c->rep[leader][range], false, on_read, c, &hint) != RANGE_OK)
            continue;
        assert_true(wait_for(c, read_done, 0));
        pthread_mutex_lock(&c->mu);
        int rc = c->read_rc;
        pthread_mutex_unlock(&c->mu);
        if (rc == RANGE_OK)
            return leader;
    }
    fail_msg("no read barrier at the leader of range %d", range);
    return 0;
}

/* Every command with acked[r][i] is readable at the leader after a barrier. */
static void check_acked(cluster *c, const uint8_t (*acked)[CMDS_MAX], int *n_checked)
{
    base_buf out = {0};
    for (int r = 1; r <= RANGES; r++) {
        uint64_t leader = barrier(c, r);
        for (int i = 0; i < CMDS_MAX; i++) {
            if (!acked[r][i])
                continue;
            char key[32], value[32];
            cmd_key(r, i, key, sizeof(key));
            cmd_value(r, i, value, sizeof(value));
            int rc = range_replica_get(c->rep[leader][r], (const uint8_t *)key, strlen(key),
                                       cmd_ts(i), &out);
            if (rc != RANGE_OK || out.len != strlen(value) || memcmp(out.data, value, out.len))
                fail_msg("acknowledged write %s lost (rc %d)", key, rc);
            (*n_checked)++;
        }
    }
    base_buf_free(&out);
}

static uint64_t mvcc_hash(storage_engine *e, uint64_t *versions)
{
    storage_iter_options o = {.mode = STORAGE_ITER_ALL_VERSIONS};
    storage_iter *it;
    uint64_t h = 1469598103934665603ULL;
    const uint8_t *k, *v;
    size_t kl, vl;
    hlc_timestamp ts;
    bool tomb;
    int rc;
    *versions = 0;
    assert_int_equal(storage_iter_open(e, NULL, &o, &it), STORAGE_OK);
    while ((rc = storage_iter_next(it, &k, &kl, &ts, &v, &vl, &tomb)) == 1) {
        for (size_t i = 0; i < kl; i++)
            h = (h ^ k[i]) * 1099511628211ULL;
        h = (h ^ (uint64_t)ts.wall_ns) * 1099511628211ULL;
        for (size_t i = 0; i < vl; i++)
            h = (h ^ v[i]) * 1099511628211ULL;
        (*versions)++;
    }
    assert_int_equal(rc, 0);
    storage_iter_close(it);
    return h;
}

/* All ranges converge with truncated logs; engines hold the same MVCC data. */
static void check_converged(cluster *c)
{
    for (int r = 1; r <= RANGES; r++)
        if (!wait_for(c, converged_truncated, r)) {
            for (int i = 1; i <= NODES; i++) {
                range_replica_status st;
                range_replica_get_status(c->rep[i][r], &st);
                fprintf(stderr, "r%d n%d: leader %d term %llu commit %llu applied %llu log "
                        "[%llu, %llu]\n", r, i, st.leader, (unsigned long long)st.term,
                        (unsigned long long)st.commit, (unsigned long long)st.applied,
                        (unsigned long long)st.first_index, (unsigned long long)st.last_index);
            }
            fail_msg("range %d did not converge with a truncated log", r);
        }
    uint64_t versions[NODES + 1], h[NODES + 1];
    for (int i = 1; i <= NODES; i++)
        h[i] = mvcc_hash(c->engine[i], &versions[i]);
    for (int i = 2; i <= NODES; i++) {
        assert_int_equal(versions[i], versions[1]);
        assert_int_equal(h[i], h[1]);
    }
}

static void make_dir(char *dir, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, size, "%s/meridian-rlog-XXXXXX", tmp != NULL ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
}

/* ---- restart: every replica resumes exactly ------------------------------------- */

/* Every node's log deleted a segment (truncation, then purge). */
static bool purged(cluster *c, int unused)
{
    (void)unused;
    for (int i = 1; i <= NODES; i++) {
        raft_log_stats ls;
        raft_log_get_stats(c->log[i], &ls);
        if (ls.segments_deleted == 0)
            return false;
    }
    return true;
}

static void test_restart_exact(void **state)
{
    (void)state;
    char dir[512];
    make_dir(dir, sizeof(dir));
    cluster *c = cluster_new(dir, false);
    open_stores(c);
    start(c, true);
    assert_true(write_all(c, 0, 150));
    uint8_t(*acked)[CMDS_MAX] = calloc(RANGES + 1, sizeof(*acked));
    assert_non_null(acked);
    for (int r = 1; r <= RANGES; r++)
        for (int i = 0; i < 150; i++)
            acked[r][i] = 1;
    check_converged(c);
    bool was_purged = wait_for(c, purged, 0);
    for (int i = 1; i <= NODES; i++) {
        raft_log_stats ls;
        raft_log_get_stats(c->log[i], &ls);
        print_message("n%d log: %llu segments (%llu deleted), %llu fsyncs for %llu appends, "
                      "%llu bytes\n", i, (unsigned long long)ls.segments,
                      (unsigned long long)ls.segments_deleted, (unsigned long long)ls.fsyncs,
                      (unsigned long long)ls.appends, (unsigned long long)ls.bytes_written);
    }
    assert_true(was_purged);

    /* Freeze (no ticks: no election, no heartbeat writes), then stop. */
    atomic_store(&c->stop, true);
    pthread_join(c->ticker, NULL);
    c->ticker_started = false;
    range_replica_status before[NODES + 1][RANGES + 1];
    raft_log_group_info gi[NODES + 1][RANGES + 1];
    for (int i = 1; i <= NODES; i++)
        for (int r = 1; r <= RANGES; r++) {
            range_replica_get_status(c->rep[i][r], &before[i][r]);
            raft_log_group(c->log[i], (uint64_t)r, &gi[i][r]);
            assert_true(before[i][r].first_index > 1); /* truncated */
            assert_int_equal(gi[i][r].first_index, before[i][r].first_index);
            assert_int_equal(gi[i][r].last_index, before[i][r].last_index);
        }
    stop(c);

    open_stores(c);
    start(c, false);
    for (int i = 1; i <= NODES; i++)
        for (int r = 1; r <= RANGES; r++) {
            range_replica_status st;
            range_replica_get_status(c->rep[i][r], &st);
            const range_replica_status *b = &before[i][r];
            assert_int_equal(st.term, b->term);
            assert_int_equal(st.applied, b->applied);
            assert_int_equal(st.last_index, b->last_index);
            assert_int_equal(st.first_index, b->first_index);
            assert_true(st.commit <= b->commit && st.commit >= st.applied);
            raft_log_group_info g;
            raft_log_group(c->log[i], (uint64_t)r, &g);
            assert_int_equal(g.hard_state.term, gi[i][r].hard_state.term);
            assert_int_equal(g.hard_state.vote, gi[i][r].hard_state.vote);
            assert_int_equal(g.compact_index, gi[i][r].compact_index);
            assert_int_equal(g.compact_term, gi[i][r].compact_term);
        }
    start_ticker(c);
    assert_true(write_all(c, 150, 250));
    for (int r = 1; r <= RANGES; r++)
        for (int i = 150; i < 250; i++)
            acked[r][i] = 1;
    int checked = 0;
    check_acked(c, (const uint8_t(*)[CMDS_MAX])acked, &checked);
    check_converged(c);
    print_message("restart: %d acknowledged writes read back after the restart\n", checked);
    stop(c);
    cluster_free(c);
    free(acked);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- kill -9 ------------------------------------------------------------------- */

/* The child: start the cluster over the stores in dir, write commands
** [first, first + CHILD_CMDS) of every range, report acks on stdout. */
static int crash_child(const char *dir, int first)
{
    base_log_set_level(BASE_LOG_ERROR);
    cluster *c = cluster_new(dir, true);
    c->report_fd = 1;
    open_stores(c);
    start(c, true);
    bool ok = write_all(c, first, first + CHILD_CMDS);
    stop(c);
    cluster_free(c);
    return ok ? 0 : 4;
}

static unsigned test_seed(void)
{
    const char *s = getenv("MERIDIAN_SEED");
    unsigned seed = s != NULL ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);
    print_message("kill9 seed %u (MERIDIAN_SEED=%u replays the kill points)\n", seed, seed);
    return seed;
}

static void test_kill9(void **state)
{
    (void)state;
    char dir[512];
    make_dir(dir, sizeof(dir));
    unsigned seed = test_seed();
    uint8_t(*acked)[CMDS_MAX] = calloc(RANGES + 1, sizeof(*acked));
    assert_non_null(acked);
    int first = 0;
    for (int round = 0; round < KILL_ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            dup2(fds[1], 1);
            close(fds[0]);
            close(fds[1]);
            char s[32];
            snprintf(s, sizeof(s), "%d", first);
            execl(g_self, g_self, "--range-log-crash-child", dir, s, (char *)NULL);
            _exit(127);
        }
        close(fds[1]);
        int kill_after = 50 + (int)(rand_r(&seed) % (KILL_REPORTS_MAX - 50)), reports = 0;
        int32_t rep[2];
        while (read(fds[0], rep, sizeof(rep)) == (ssize_t)sizeof(rep)) {
            assert_true(rep[0] >= 1 && rep[0] <= RANGES && rep[1] >= first &&
                        rep[1] < first + CHILD_CMDS);
            acked[rep[0]][rep[1]] = 1;
            if (++reports == kill_after)
                kill(pid, SIGKILL);
        }
        close(fds[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        cluster *c = cluster_new(dir, true);
        open_stores(c);
        start(c, true);
        int checked = 0;
        check_acked(c, (const uint8_t(*)[CMDS_MAX])acked, &checked);
        check_converged(c);
        print_message("round %d: killed after %d acks; %d acknowledged writes all there\n",
                      round, reports, checked);
        for (int r = 1; r <= RANGES; r++) {
            range_replica_status st;
            range_replica_get_status(c->rep[1][r], &st);
            print_message("  r%d n1: applied %llu, log [%llu, %llu]\n", r,
                          (unsigned long long)st.applied, (unsigned long long)st.first_index,
                          (unsigned long long)st.last_index);
        }
        stop(c);
        cluster_free(c);
        first += CHILD_CMDS / KILL_ROUNDS; /* fresh keys each round, some overlap */
        assert_true(first + CHILD_CMDS <= CMDS_MAX);
    }
    free(acked);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--range-log-crash-child") == 0)
        return crash_child(argv[2], atoi(argv[3]));
    ssize_t n = readlink("/proc/self/exe", g_self, sizeof(g_self) - 1);
    if (n <= 0)
        return 1;
    g_self[n] = '\0';
    base_log_set_level(BASE_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_exact),
        cmocka_unit_test(test_kill9),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
