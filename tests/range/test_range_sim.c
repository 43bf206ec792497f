/*
** tests/range/test_range_sim.c: deterministic simulation of 3 replicas of
** one range, each a range_node with its own in-memory storage, over the
** simulated rpc network (rpc_sim) with a seeded PRNG and simulated time.
**
** A client proposes commands (1-2 writes on a small key space, unique commit
** timestamps, idempotence key (txn_id, 1)) to the replica it believes is
** the leader, follows "not leader" hints, and re-proposes with the same key
** on DROPPED / AMBIGUOUS; sometimes it re-proposes an already acknowledged
** command on purpose. Faults: random loss, duplication and reordering in the
** network, node isolation and one-way partitions, crashes (the range_node is
** freed: all in-memory state lost; the storage engine is kept) and restarts
** from storage. Then everything heals and the run must converge.
**
** Checked:
**   - applied indexes never go backwards (per node, across crashes);
**   - a command's writes apply at most once per replica (observer), and at
**     the end exactly once on every replica for every acknowledged command;
**   - after a linearizable read barrier at the leader (lease, then ReadIndex)
**     every acknowledged write is readable there at its commit timestamp;
**     mid-run barriers too, including a lease read at a node that has just
**     woken from a pause (SIGSTOP: no ticks, its messages lost) before its
**     missed ticks are delivered;
**   - every replica's MVCC contents (all versions) and applied index are
**     identical after healing.
**
** test_range_sim_changes (RANGE_SIM_CHANGES): four nodes, the range starting
** on 1-3, and under the same faults its replicas move: the driver asks
** the node it believes leads for the next step of a change
** (range_replica_change_replicas: add the node that is no member as a
** learner then promote it, or remove a random member, the leader too),
** over and over. Checked as well: a replica made by a snapshot applies
** nothing twice in its life, every acknowledged write is on every member
** at the end, the members' MVCC data is identical, and a removed node's
** store ends with no data at all (its replica deleted, even when it
** learned of its removal only later from the others).
** Seeds: MERIDIAN_SIM_SEEDS (default 200) seeds from MERIDIAN_SIM_FIRST_SEED
** (default 1); MERIDIAN_SEED=N runs seed N only. A failure prints its seed.
**
** Built twice. test_range_sim: each range's log in the engine's raw keyspace.
** test_range_sim_log (RANGE_SIM_SHARED_LOG): each node's log is a shared
** segmented raft_log (small segments, in /dev/shm when there is one) with
** sync and the syncer driven by the simulation (range_node_sync_log at
** random ticks, so saves wait for it and pile up); a crash also closes the
** log and the restart recovers it from its files; half the crashes are
** power failures: every log file is first cut back to its size at the
** node's last sync (files created since are deleted), so a write that was
** acknowledged or applied before it was durable shows up as a lost
** acknowledged write or an applied index beyond the log. Both truncate the log
** (a small log_truncate_entries), so restarts from a compacted log, purges
** and catch-up after truncation are part of every run.
*/
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"
#include "range/range.h"
#include "rpc/rpc.h"
#include "storage/storage.h"
#include "tests/range/sim_util.h" /* log directories, power failures */

#ifdef RANGE_SIM_CHANGES
#define NODES 4
#define CHANGES 1
#else
#define NODES 3
#define CHANGES 0
#endif
#define BOOT_VOTERS 3 /* the range starts on nodes 1..3 */
#define RANGE_ID 7
#define CMDS 200
#define KEYS 8
#define INFLIGHT_MAX 3
#define TICK_NS (10LL * 1000 * 1000)
#define FAULT_TICKS 800
#define CONVERGE_TICKS_MAX 4000
#ifdef RANGE_SIM_SHARED_LOG
#define SIM_SHARED 1
#define TRUNCATE_ENTRIES 16
#define SEGMENT_BYTES 8192
#else
#define SIM_SHARED 0
#define TRUNCATE_ENTRIES 48
#endif

static uint64_t current_seed;
/* totals over the seeds run, printed at the end (shows the faults bite) */
static uint64_t total_garbage;
static uint64_t total_mid_reads_ok, total_mid_reads_failed;
static uint64_t total_crashes, total_acks, total_dropped, total_ambiguous, total_not_leader,
    total_ticks, total_isolations, total_dup_proposals, total_pauses, total_resume_reads;

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "FAIL seed %llu: ", (unsigned long long)current_seed);    \
            fprintf(stderr, __VA_ARGS__);                                             \
            fprintf(stderr, "\n  replay: MERIDIAN_SEED=%llu\n",                       \
                    (unsigned long long)current_seed);                                \
            fail();                                                                   \
        }                                                                             \
    } while (0)

typedef struct cmd_state {
    struct world *w;
    int index; /* in w->cmds */
    int inflight;
    bool acked;
    int dups; /* deliberate re-proposals after the ack */
    range_write writes[2];
    size_t n_writes;
    char keys[2][16];
    char values[2][40];
    hlc_timestamp commit_ts;
} cmd_state;

typedef struct sim_node {
    range_node *rn;
    range_replica *rep;
    storage_engine *engine;
    rpc_transport *t;
    bool up;
    int down_until; /* tick */
    bool paused;      /* SIGSTOPped: no ticks, no messages, no client calls */
    int paused_since, paused_until; /* ticks */
    int restarts;
    uint64_t max_applied_seen;
    int applied_count[CMDS]; /* non-duplicate applications, across lifetimes of one
                                replica (reset when it is removed here) */
    range_replica *seen_rep; /* the replica last seen hosted (refresh_rep) */
    raft_log *log;           /* shared mode: closed at every crash */
    sim_log_files files;     /* shared mode: its directory (mkdtemp, removed at the
                                end) and what of it was durable at the last sync */
} sim_node;

typedef struct world {
    uint64_t seed;
    uint64_t rng;
    int sync_per_million; /* shared mode: chance that a node's syncer runs in a tick */
    rpc_sim_net *net;
    sim_node nodes[NODES + 1];
    cmd_state cmds[CMDS];
    int tick;
    uint64_t leader_guess;
    int isolated; /* node id or 0 */
    int isolated_until;
    int oneway_from, oneway_to, oneway_until;
    int read_done, read_rc;
    uint64_t acks, dropped, ambiguous, not_leader;
    /* a replica change in progress (CHANGES): kind 0 none, 1 add, 2 remove */
    int change_kind;
    uint64_t change_node;
    bool change_waiting;
    int change_wait_since; /* tick: a step whose entry was lost resolves only
                              when its index is reused; look again after a while */
    uint64_t changes_done, change_steps;
    /* a linearizable read barrier issued mid-run */
    bool mid_pending;
    uint64_t mid_node;
    bool mid_acked[CMDS]; /* acknowledged when the barrier was issued */
} world;
static void inject_garbage(world *w);
static uint64_t total_changes, total_change_steps;

/* n->rep: this node's hosted replica of the range now (NULL: none; made on
** demand or removed meanwhile). A replica that went away ends a life: its
** applications start counting again. */
static void refresh_rep(sim_node *n)
{
    n->rep = n->up && n->rn != NULL ? range_node_replica(n->rn, RANGE_ID) : NULL;
    if (n->rep == NULL && n->seen_rep != NULL && n->up)
        memset(n->applied_count, 0, sizeof(n->applied_count));
    if (n->up)
        n->seen_rep = n->rep;
}

static uint64_t rnd(world *w)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return x;
}
static int rnd_int(world *w, int n) { return (int)(rnd(w) % (uint64_t)n); }
static bool chance(world *w, int per_million) { return rnd_int(w, 1000000) < per_million; }

static void observer(void *ctx, uint64_t range_id, uint64_t node_id, uint64_t index,
                     uint64_t txn_id, uint64_t seq, bool duplicate)
{
    world *w = ctx;
    CHECK(range_id == RANGE_ID && node_id >= 1 && node_id <= NODES, "bad observer ids");
    CHECK(txn_id >= 1 && txn_id <= CMDS && seq == 1, "unknown command %llu",
          (unsigned long long)txn_id);
    sim_node *n = &w->nodes[node_id];
    CHECK(index > n->max_applied_seen, "n%llu applied index went back: %llu after %llu",
          (unsigned long long)node_id, (unsigned long long)index,
          (unsigned long long)n->max_applied_seen);
    n->max_applied_seen = index;
    if (!duplicate) {
        n->applied_count[txn_id - 1]++;
        CHECK(n->applied_count[txn_id - 1] == 1, "n%llu applied txn %llu twice",
              (unsigned long long)node_id, (unsigned long long)txn_id);
    }
}

#if SIM_SHARED
static uint64_t total_power_losses, total_bytes_lost;
#endif

static int64_t sim_clock(void *ctx)
{
    world *w = ctx;
    return rpc_sim_now_ns(w->net);
}

static void start_node(world *w, uint64_t id)
{
    sim_node *n = &w->nodes[id];
    range_node_config nc = {.transport = n->t, .engine = n->engine, .sync = true,
                            .observer = observer, .observer_ctx = w, .clock = sim_clock,
                            .clock_ctx = w, .tick_ns = TICK_NS};
#if SIM_SHARED
    if (n->log == NULL) {
        n->log = sim_open_log(n->files.dir, SEGMENT_BYTES); /* recovery after a crash */
        sim_log_record(&n->files);
    }
    nc.log = n->log;
    nc.log_sync_manual = true;
#endif
    assert_int_equal(range_node_new(&nc, &n->rn), RANGE_OK);
    range_replica_config rc = {.range_id = RANGE_ID, .n_peers = NODES,
                               .election_ticks = 10, .heartbeat_ticks = 1,
                               .random_seed = w->seed * 1000003 + (uint64_t)n->restarts,
                               .proposal_timeout_ticks = 60,
                               .log_truncate_entries = TRUNCATE_ENTRIES};
    rc.n_peers = BOOT_VOTERS;
    for (int i = 0; i < BOOT_VOTERS; i++)
        rc.peers[i] = (uint64_t)i + 1;
    if (id <= BOOT_VOTERS) { /* as server/ opens its bootstrap ranges */
        int arc = range_node_add_replica(n->rn, &rc, NULL);
        CHECK(arc == RANGE_OK, "n%llu cannot restart: %d", (unsigned long long)id, arc);
    }
    size_t opened = 0; /* then every other range its store hosts */
    int orc = range_node_open_stored(n->rn, &rc, &opened);
    CHECK(orc == RANGE_OK, "n%llu cannot open its stored ranges: %d", (unsigned long long)id, orc);
    n->up = true;
    refresh_rep(n);
    if (n->rep != NULL) {
        range_replica_status st;
        range_replica_get_status(n->rep, &st);
        /* restart from storage: never behind what was applied before the crash */
        CHECK(st.applied >= n->max_applied_seen, "n%llu restarted at applied %llu < %llu",
              (unsigned long long)id, (unsigned long long)st.applied,
              (unsigned long long)n->max_applied_seen);
    }
}

static void crash_node(world *w, uint64_t id)
{
    sim_node *n = &w->nodes[id];
    range_node_free(n->rn); /* pending callbacks fail with AMBIGUOUS here */
    n->rn = NULL;
#if SIM_SHARED
    if (n->log != NULL) {
        raft_log_close(n->log); /* unsynced appends may or may not survive */
        n->log = NULL;
        if (rnd_int(w, 2) == 0) {
            total_bytes_lost += sim_log_lose_unsynced(&n->files);
            total_power_losses++;
        }
    }
#endif
    n->rep = NULL;
    n->up = false;
    n->restarts++;
    total_crashes++;
}

static void on_propose(void *ctx, int rc)
{
    cmd_state *c = ctx;
    c->inflight--;
    CHECK(c->inflight >= 0, "callback ran twice");
    if (rc == RANGE_OK) {
        c->acked = true;
        c->w->acks++;
    } else if (rc == RANGE_ERR_DROPPED) {
        c->w->dropped++;
    } else {
        CHECK(rc == RANGE_ERR_AMBIGUOUS, "unexpected proposal result %d", rc);
        c->w->ambiguous++;
    }
}

static void propose(world *w, cmd_state *c)
{
    uint64_t target = w->leader_guess;
    if (target == 0 || !w->nodes[target].up || w->nodes[target].paused)
        target = (uint64_t)rnd_int(w, NODES) + 1;
    sim_node *n = &w->nodes[target];
    if (!n->up || n->paused || n->rep == NULL)
        return;
    range_command cmd = {.txn_id = (uint64_t)c->index + 1, .seq = 1, .commit_ts = c->commit_ts,
                         .writes = c->writes, .write_count = c->n_writes};
    uint64_t hint = 0;
    int rc = range_replica_propose(n->rep, &cmd, on_propose, c, &hint);
    if (rc == RANGE_OK) {
        c->inflight++;
        w->leader_guess = target;
    } else {
        CHECK(rc == RANGE_ERR_NOT_LEADER || rc == RANGE_ERR_BUSY, "propose: %d", rc);
        w->not_leader++;
        w->leader_guess = hint; /* may be 0: pick at random next time */
    }
}

/* The idempotence record of command i (txn i + 1, seq 1) is in e: a
** replica made by a snapshot must have it too, or a retry would apply again
** (raw key "range/r/" u64 0 'c' u64 txn u64 seq, replica_int.h). */
static bool has_record(storage_engine *e, int i)
{
    uint8_t key[8 + 8 + 1 + 16];
    base_buf v = {0};
    memset(key, 0, sizeof(key));
    memcpy(key, "range/r/", 8);
    key[16] = 'c';
    for (int k = 0; k < 8; k++)
        key[17 + k] = (uint8_t)(((uint64_t)i + 1) >> (56 - 8 * k));
    key[sizeof(key) - 1] = 1;
    int rc = storage_get_raw(e, key, sizeof(key), &v);
    base_buf_free(&v);
    return rc == STORAGE_OK;
}

/* Check that every write acknowledged before the barrier was issued is in
** the replica's storage at its commit timestamp. Reads storage directly (no
** node call from inside a callback). */
static void check_acked_visible(world *w, storage_engine *e, const bool *acked, const char *what)
{
    for (int i = 0; i < CMDS; i++) {
        cmd_state *c = &w->cmds[i];
        if (!acked[i])
            continue;
        for (size_t j = 0; j < c->n_writes; j++) {
            storage_value v = {0};
            int rc = storage_get(e, NULL, c->writes[j].key, c->writes[j].key_len, c->commit_ts,
                                 &v);
            bool ok = rc == STORAGE_OK && hlc_compare(v.ts, c->commit_ts) == 0 &&
                      v.tombstone == c->writes[j].tombstone &&
                      (v.tombstone || (v.bytes.len == c->writes[j].value_len &&
                                       memcmp(v.bytes.data, c->writes[j].value,
                                              v.bytes.len) == 0));
            storage_value_free(&v);
            CHECK(ok, "%s: acknowledged write of cmd %d key %s missing (rc %d)", what, i,
                  c->keys[j], rc);
        }
    }
}

static void on_mid_read(void *ctx, int rc)
{
    world *w = ctx;
    CHECK(w->mid_pending, "read callback without a pending read");
    w->mid_pending = false;
    if (rc != RANGE_OK) {
        total_mid_reads_failed++;
        return;
    }
    total_mid_reads_ok++;
    check_acked_visible(w, w->nodes[w->mid_node].engine, w->mid_acked, "linearizable read");
}

static void issue_mid_read(world *w, uint64_t target, bool allow_lease);

static void mid_read(world *w)
{
    uint64_t target = w->leader_guess;
    if (target == 0 || !w->nodes[target].up || w->nodes[target].paused)
        target = (uint64_t)rnd_int(w, NODES) + 1;
    if (!w->nodes[target].up || w->nodes[target].paused || w->nodes[target].rep == NULL)
        return;
    issue_mid_read(w, target, rnd_int(w, 2) == 0);
}

/* A lease read at target, checked in on_mid_read against what was acked. */
static void issue_mid_read(world *w, uint64_t target, bool allow_lease)
{
    for (int i = 0; i < CMDS; i++)
        w->mid_acked[i] = w->cmds[i].acked;
    w->mid_pending = true;
    w->mid_node = target;
    uint64_t hint = 0;
    int rc = range_replica_read(w->nodes[target].rep, allow_lease, on_mid_read, w, &hint);
    if (rc != RANGE_OK) {
        CHECK(rc == RANGE_ERR_NOT_LEADER || rc == RANGE_ERR_BUSY, "read: %d", rc);
        w->mid_pending = false;
    }
}

static void client_step(world *w)
{
    if (!w->mid_pending && chance(w, 50000))
        mid_read(w);
    int inflight = 0;
    for (int i = 0; i < CMDS; i++)
        inflight += w->cmds[i].inflight;
    for (int i = 0; i < CMDS && inflight < INFLIGHT_MAX; i++) {
        cmd_state *c = &w->cmds[i];
        if (c->inflight > 0)
            continue;
        if (!c->acked) {
            propose(w, c);
            inflight += c->inflight;
        } else if (c->dups < 1 && chance(w, 20000)) {
            c->dups++;
            total_dup_proposals++;
            propose(w, c); /* a deliberate re-proposal: must not apply again */
            inflight += c->inflight;
        }
    }
}

/* Wake a paused node. Like a process after SIGCONT, it may serve a request
** before its ticker notices the time that passed: a lease read is issued
** first (the lease must not be trusted: range_node_config.clock), then the
** missed ticks are delivered at once (range_node_tick_n), as server/'s
** ticker does. */
static void resume_node(world *w, uint64_t id)
{
    sim_node *n = &w->nodes[id];
    n->paused = false;
    rpc_sim_isolate(w->net, (rpc_node_id)id, false);
    refresh_rep(n);
    if (!w->mid_pending && n->rep != NULL) {
        issue_mid_read(w, id, true);
        total_resume_reads++;
    }
    int missed = w->tick - n->paused_since;
    range_node_tick_n(n->rn, missed < 50 ? missed : 50);
#if SIM_SHARED
    if (sim_log_stale(&n->files))
        sim_log_record(&n->files); /* a purge synced what it kept (as in advance) */
#endif
}

static void faults_step(world *w)
{
    /* crash: at most one node down at a time */
    int down = 0;
    for (int i = 1; i <= NODES; i++)
        down += !w->nodes[i].up;
    for (uint64_t i = 1; i <= NODES; i++) {
        sim_node *n = &w->nodes[i];
        if (!n->up && w->tick >= n->down_until)
            start_node(w, i);
    }
    if (down == 0 && chance(w, 4000)) {
        uint64_t id = (uint64_t)rnd_int(w, NODES) + 1;
        if (w->nodes[id].paused)
            resume_node(w, id);
        crash_node(w, id);
        w->nodes[id].down_until = w->tick + 20 + rnd_int(w, 150);
    }
    /* pause (SIGSTOP), at most one node: then the resumed node is asked for
    ** a lease read before its driver delivers the ticks it missed */
    int paused = 0;
    for (uint64_t i = 1; i <= NODES; i++) {
        sim_node *n = &w->nodes[i];
        if (n->paused && w->tick >= n->paused_until)
            resume_node(w, i);
        paused += n->paused;
    }
    if (paused == 0 && chance(w, 4000)) {
        uint64_t id = (uint64_t)rnd_int(w, NODES) + 1;
        if (w->nodes[id].up && w->isolated != (int)id) {
            w->nodes[id].paused = true;
            w->nodes[id].paused_since = w->tick;
            w->nodes[id].paused_until = w->tick + 20 + rnd_int(w, 150);
            rpc_sim_isolate(w->net, (rpc_node_id)id, true); /* its messages: lost */
            total_pauses++;
        }
    }
    /* isolation */
    if (w->isolated != 0 && w->tick >= w->isolated_until) {
        rpc_sim_isolate(w->net, (rpc_node_id)w->isolated, false);
        w->isolated = 0;
    }
    if (w->isolated == 0 && chance(w, 3000)) {
        w->isolated = rnd_int(w, NODES) + 1;
        if (w->nodes[w->isolated].paused) {
            w->isolated = 0;
            return;
        }
        w->isolated_until = w->tick + 20 + rnd_int(w, 200);
        rpc_sim_isolate(w->net, (rpc_node_id)w->isolated, true);
        total_isolations++;
    }
    if (chance(w, 5000))
        inject_garbage(w);
    /* one-way partition */
    if (w->oneway_from != 0 && w->tick >= w->oneway_until) {
        rpc_sim_partition(w->net, (rpc_node_id)w->oneway_from, (rpc_node_id)w->oneway_to, false);
        w->oneway_from = 0;
    }
    if (w->oneway_from == 0 && chance(w, 3000)) {
        w->oneway_from = rnd_int(w, NODES) + 1;
        w->oneway_to = (w->oneway_from % NODES) + 1;
        w->oneway_until = w->tick + 20 + rnd_int(w, 200);
        rpc_sim_partition(w->net, (rpc_node_id)w->oneway_from, (rpc_node_id)w->oneway_to, true);
    }
}

/* Bad bytes from a peer: dropped by the node with a log line, never a crash
** and never a state change. Only inputs that must be rejected are sent (a
** random body behind a wrong version byte, a strict prefix of a valid
** message): forged well-formed messages are outside the fault model. */
static void inject_garbage(world *w)
{
    uint8_t junk[64];
    size_t len = 1 + (size_t)rnd_int(w, (int)sizeof(junk));
    rpc_node_id from = (rpc_node_id)rnd_int(w, NODES) + 1;
    rpc_node_id to = from % NODES + 1;
    if (rnd_int(w, 2) == 0) {
        for (size_t i = 0; i < len; i++)
            junk[i] = (uint8_t)rnd(w);
        if (junk[0] == RANGE_CODEC_VERSION)
            junk[0] = 0xee;
    } else {
        raft_entry e = {.term = 1, .index = 5, .type = RAFT_ENTRY_NORMAL,
                        .data = (uint8_t *)"xyz", .len = 3};
        raft_message m = {.type = RAFT_MSG_APPEND, .from = from, .to = to, .term = 1,
                          .index = 4, .log_term = 1, .entries = &e, .n_entries = 1};
        base_buf b = {0};
        assert_int_equal(range_raft_msg_encode(RANGE_ID, &m, &b), RANGE_OK);
        len = 1 + (size_t)rnd_int(w, (int)b.len - 1); /* strict prefix */
        assert_true(len < b.len && len <= sizeof(junk));
        memcpy(junk, b.data, len);
        base_buf_free(&b);
    }
    (void)rpc_send(w->nodes[from].t, to, RANGE_RPC_METHOD_RAFT, junk, len);
    total_garbage++;
}

static void check_applied_monotonic(world *w)
{
    for (uint64_t i = 1; i <= NODES; i++) {
        sim_node *n = &w->nodes[i];
        if (!n->up || n->paused)
            continue;
        refresh_rep(n);
        if (n->rep == NULL)
            continue;
        range_replica_status st;
        range_replica_get_status(n->rep, &st);
        CHECK(st.applied >= n->max_applied_seen, "n%llu applied %llu < seen %llu",
              (unsigned long long)i, (unsigned long long)st.applied,
              (unsigned long long)n->max_applied_seen);
        n->max_applied_seen = st.applied;
    }
}

static uint64_t total_syncs, total_truncations, total_first_index_max, total_by_snapshot;

static void advance(world *w)
{
    w->tick++;
    rpc_sim_run_until(w->net, (int64_t)w->tick * TICK_NS);
    for (uint64_t i = 1; i <= NODES; i++) {
        if (!w->nodes[i].up || w->nodes[i].paused)
            continue;
#if SIM_SHARED
        if (chance(w, w->sync_per_million)) {
            CHECK(range_node_sync_log(w->nodes[i].rn) == RANGE_OK, "n%llu log sync failed",
                  (unsigned long long)i);
            sim_log_record(&w->nodes[i].files);
            total_syncs++;
        }
#endif
        range_node_tick(w->nodes[i].rn);
#if SIM_SHARED
        if (sim_log_stale(&w->nodes[i].files))
            sim_log_record(&w->nodes[i].files); /* a purge synced what it kept */
#endif
    }
    check_applied_monotonic(w);
}

static bool members_of(world *w, bool member[NODES + 1]);

/* The stores of the nodes that are no members hold nothing (removed). */
static bool outsiders_empty(world *w)
{
    bool member[NODES + 1];
    if (!members_of(w, member))
        return false;
    for (uint64_t i = 1; i <= NODES; i++) {
        if (member[i])
            continue;
        storage_iter_options o = {.mode = STORAGE_ITER_ALL_VERSIONS};
        storage_iter *it;
        assert_int_equal(storage_iter_open(w->nodes[i].engine, NULL, &o, &it), STORAGE_OK);
        int rc = storage_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL);
        storage_iter_close(it);
        if (rc != 0)
            return false;
    }
    return true;
}

static bool all_acked(world *w)
{
    for (int i = 0; i < CMDS; i++)
        if (!w->cmds[i].acked || w->cmds[i].inflight > 0)
            return false;
    return true;
}

static uint64_t leader_of_all(world *w)
{
    uint64_t leader = 0;
    for (uint64_t i = 1; i <= NODES; i++) {
        range_replica_status st;
        if (w->nodes[i].rep == NULL)
            continue;
        range_replica_get_status(w->nodes[i].rep, &st);
        if (st.leader)
            leader = i;
    }
    return leader;
}

/* The members of the range: the configuration the leader has applied
** (all of 1..NODES without CHANGES). false: no leader, or a change open. */
static bool members_of(world *w, bool member[NODES + 1])
{
    uint64_t leader = leader_of_all(w);
    raft_membership applied, latest;
    if (leader == 0 ||
        range_replica_membership(w->nodes[leader].rep, &applied, &latest) != RANGE_OK ||
        memcmp(&applied, &latest, sizeof(applied)) != 0 || applied.n_learners > 0)
        return false;
    for (uint64_t i = 1; i <= NODES; i++)
        member[i] = raft_membership_is_voter(&applied, i);
    return true;
}

static bool converged(world *w)
{
    range_replica_status st[NODES + 1];
    bool member[NODES + 1];
    uint64_t first = 0;
    if (w->change_kind != 0 || !members_of(w, member))
        return false;
    for (uint64_t i = 1; i <= NODES; i++) {
        if (!member[i])
            continue;
        if (w->nodes[i].rep == NULL)
            return false;
        range_replica_get_status(w->nodes[i].rep, &st[i]);
        if (first == 0)
            first = i;
        if (st[i].applied != st[first].applied || st[i].applied != st[i].last_index ||
            st[i].last_index != st[first].last_index)
            return false;
    }
    return true;
}

/* ---- replica changes (CHANGES) ------------------------------------------------- */

static void on_change(void *ctx, int rc)
{
    world *w = ctx;
    (void)rc; /* whatever happened, the next step looks at the configuration again */
    w->change_waiting = false;
}

/* One step of the replica change in progress, or the start of a new one. */
static void change_step(world *w, bool may_start)
{
    if (w->change_waiting && w->tick - w->change_wait_since > 100)
        w->change_waiting = false; /* the waiter may still run: it only clears this */
    if (!CHANGES || w->change_waiting)
        return;
    uint64_t target = w->leader_guess;
    if (target == 0 || !w->nodes[target].up || w->nodes[target].paused ||
        w->nodes[target].rep == NULL)
        target = (uint64_t)rnd_int(w, NODES) + 1;
    sim_node *n = &w->nodes[target];
    if (!n->up || n->paused || n->rep == NULL)
        return;
    if (w->change_kind == 0) {
        raft_membership latest;
        if (!may_start || !chance(w, 20000) ||
            range_replica_membership(n->rep, NULL, &latest) != RANGE_OK)
            return;
        w->change_kind = 2;
        for (uint64_t i = 1; i <= NODES && w->change_kind == 2; i++)
            if (!raft_membership_is_voter(&latest, i)) {
                w->change_kind = 1; /* the node outside comes in */
                w->change_node = i;
            }
        if (w->change_kind == 2) /* everyone is in: one goes, maybe the leader */
            w->change_node = (uint64_t)rnd_int(w, NODES) + 1;
    }
    uint64_t hint = 0;
    bool done = false;
    w->change_waiting = true;
    w->change_wait_since = w->tick;
    int rc = range_replica_change_replicas(
        n->rep, w->change_kind == 1 ? RANGE_REPLICA_ADD : RANGE_REPLICA_REMOVE, w->change_node,
        on_change, w, &hint, &done);
    if (rc != RANGE_OK || done)
        w->change_waiting = false;
    if (rc == RANGE_OK && !done)
        w->change_steps++;
    if (rc == RANGE_OK && done) {
        w->changes_done++;
        w->change_kind = 0;
    } else if (rc == RANGE_ERR_NOT_LEADER) {
        w->leader_guess = hint;
    } else if (rc == RANGE_ERR_INVALID) {
        w->change_kind = 0; /* e.g. the last voter: another change next time */
    } else {
        CHECK(rc == RANGE_OK || rc == RANGE_ERR_BUSY, "change step: %d", rc);
    }
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
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
        h = hash_bytes(h, k, kl);
        h = hash_bytes(h, &kl, sizeof(kl));
        h = hash_bytes(h, &ts.wall_ns, sizeof(ts.wall_ns));
        h = hash_bytes(h, &ts.logical, sizeof(ts.logical));
        h = hash_bytes(h, &tomb, 1);
        if (!tomb)
            h = hash_bytes(h, v, vl);
        (*versions)++;
    }
    assert_int_equal(rc, 0);
    storage_iter_close(it);
    return h;
}

static void on_read(void *ctx, int rc)
{
    world *w = ctx;
    w->read_done++;
    w->read_rc = rc;
}

/* Read barrier at the leader; true when it completed OK. */
static bool read_barrier(world *w, uint64_t leader, bool allow_lease)
{
    w->read_done = 0;
    uint64_t hint;
    int rc = range_replica_read(w->nodes[leader].rep, allow_lease, on_read, w, &hint);
    if (rc != RANGE_OK)
        return false;
    for (int i = 0; i < 200 && w->read_done == 0; i++)
        advance(w);
    CHECK(w->read_done == 1, "read barrier callback ran %d times", w->read_done);
    return w->read_rc == RANGE_OK;
}

/* What every node's replica says (a failure's context). */
static void dump_nodes(world *w)
{
    fprintf(stderr, "change in progress: kind %d node %llu waiting %d\n", w->change_kind,
            (unsigned long long)w->change_node, w->change_waiting);
    for (uint64_t i = 1; i <= NODES; i++) {
        sim_node *n = &w->nodes[i];
        range_replica_status st;
        raft_membership applied, latest;
        if (n->rep == NULL) {
            fprintf(stderr, "n%llu: up %d, no replica\n", (unsigned long long)i, n->up);
            continue;
        }
        range_replica_get_status(n->rep, &st);
        memset(&applied, 0, sizeof(applied));
        memset(&latest, 0, sizeof(latest));
        range_replica_membership(n->rep, &applied, &latest);
        fprintf(stderr, "n%llu: leader %d (knows n%llu) term %llu commit %llu applied %llu log "
                "[%llu, %llu] voters %zu/%zu learners %zu/%zu (applied/latest)\n",
                (unsigned long long)i, st.leader, (unsigned long long)st.leader_id,
                (unsigned long long)st.term, (unsigned long long)st.commit,
                (unsigned long long)st.applied, (unsigned long long)st.first_index,
                (unsigned long long)st.last_index, applied.n_voters, latest.n_voters,
                applied.n_learners, latest.n_learners);
    }
}

/* Returns a hash of the final state (for the determinism test). */
static uint64_t run_seed(uint64_t seed)
{
    world *w = calloc(1, sizeof(*w));
    current_seed = seed;
    w->seed = seed;
    w->rng = seed * 0x9e3779b97f4a7c15ULL + 1;
    w->sync_per_million = seed % 3 == 0 ? 1000000 : seed % 3 == 1 ? 500000 : 100000;
    rpc_sim_config sc;
    rpc_sim_config_init(&sc, seed);
    sc.drop_per_million = 20000;
    sc.duplicate_per_million = 10000;
    sc.reorder_per_million = 10000;
    assert_int_equal(rpc_sim_net_new(&sc, &w->net), RPC_OK);
    for (uint64_t i = 1; i <= NODES; i++) {
        storage_options so = {.dir = NULL, .create_if_missing = true};
        assert_int_equal(storage_open(&so, &w->nodes[i].engine), STORAGE_OK);
        assert_int_equal(rpc_sim_add_node(w->net, i, NULL, &w->nodes[i].t), RPC_OK);
        if (SIM_SHARED)
            sim_make_log_dir(w->nodes[i].files.dir, sizeof(w->nodes[i].files.dir));
    }
    for (int i = 0; i < CMDS; i++) {
        cmd_state *c = &w->cmds[i];
        c->w = w;
        c->index = i;
        c->commit_ts = (hlc_timestamp){1000 + i, i % 3};
        c->n_writes = 1 + (size_t)rnd_int(w, 2);
        for (size_t j = 0; j < c->n_writes; j++) {
            snprintf(c->keys[j], sizeof(c->keys[j]), "k%d", (rnd_int(w, KEYS) + (int)j) % (KEYS + 1));
            snprintf(c->values[j], sizeof(c->values[j]), "v%d.%zu", i, j);
            c->writes[j].key = (const uint8_t *)c->keys[j];
            c->writes[j].key_len = strlen(c->keys[j]);
            c->writes[j].tombstone = chance(w, 100000);
            c->writes[j].value = (const uint8_t *)c->values[j];
            c->writes[j].value_len = strlen(c->values[j]);
        }
        if (c->n_writes == 2 && strcmp(c->keys[0], c->keys[1]) == 0)
            c->n_writes = 1; /* one version per key per command */
    }
    for (uint64_t i = 1; i <= NODES; i++)
        start_node(w, i);

    /* fault phase */
    while (w->tick < FAULT_TICKS) {
        client_step(w);
        change_step(w, true);
        faults_step(w);
        advance(w);
    }
    /* heal and converge */
    for (uint64_t i = 1; i <= NODES; i++)
        if (w->nodes[i].paused)
            resume_node(w, i);
    rpc_sim_heal_all(w->net);
    w->isolated = 0;
    w->oneway_from = 0;
    for (uint64_t i = 1; i <= NODES; i++)
        if (!w->nodes[i].up)
            start_node(w, i);
    int t = 0;
    for (; t < CONVERGE_TICKS_MAX; t++) {
        client_step(w);
        change_step(w, false); /* the change in progress finishes */
        advance(w);
        if (all_acked(w) && leader_of_all(w) != 0 && converged(w))
            break;
    }
    if (t == CONVERGE_TICKS_MAX)
        dump_nodes(w);
    CHECK(t < CONVERGE_TICKS_MAX, "no convergence after healing (acked all: %d)", all_acked(w));

    /* linearizable reads at the leader: with the lease, then by ReadIndex */
    uint64_t leader = leader_of_all(w);
    bool lease_ok = false, index_ok = false;
    for (int attempt = 0; attempt < 20 && !(lease_ok && index_ok); attempt++) {
        leader = leader_of_all(w);
        if (leader == 0) {
            advance(w);
            continue;
        }
        if (!lease_ok)
            lease_ok = read_barrier(w, leader, true);
        if (!index_ok)
            index_ok = read_barrier(w, leader, false);
    }
    CHECK(lease_ok && index_ok, "read barriers failed (lease %d, read index %d)", lease_ok,
          index_ok);
    leader = leader_of_all(w);
    CHECK(leader != 0, "no leader at the end");
    base_buf out = {0};
    for (int i = 0; i < CMDS; i++) {
        cmd_state *c = &w->cmds[i];
        CHECK(c->acked, "command %d never acknowledged", i);
        for (size_t j = 0; j < c->n_writes; j++) {
            int rc = range_replica_get(w->nodes[leader].rep, c->writes[j].key,
                                       c->writes[j].key_len, c->commit_ts, &out);
            if (c->writes[j].tombstone) {
                CHECK(rc == RANGE_NOT_FOUND, "tombstone of cmd %d key %s: %d", i, c->keys[j], rc);
            } else {
                CHECK(rc == RANGE_OK && out.len == c->writes[j].value_len &&
                          memcmp(out.data, c->writes[j].value, out.len) == 0,
                      "acked write of cmd %d key %s not readable at the leader (rc %d)", i,
                      c->keys[j], rc);
            }
        }
    }
    base_buf_free(&out);
    /* applied at most once everywhere (the observer checks it), and every
    ** acknowledged write is on every replica: applied from the log, or
    ** brought by a snapshot (which applies nothing one by one) */
    bool all[CMDS], member[NODES + 1];
    for (int i = 0; i < CMDS; i++)
        all[i] = true;
    CHECK(members_of(w, member), "no settled configuration at the end");
    for (uint64_t n = 1; n <= NODES; n++) {
        if (!member[n])
            continue;
        check_acked_visible(w, w->nodes[n].engine, all, "after healing");
        for (int i = 0; i < CMDS; i++) {
            CHECK(has_record(w->nodes[n].engine, i), "n%llu has no idempotence record of cmd %d",
                  (unsigned long long)n, i);
            CHECK(w->nodes[n].applied_count[i] <= 1, "n%llu applied cmd %d %d times",
                  (unsigned long long)n, i, w->nodes[n].applied_count[i]);
            total_by_snapshot += w->nodes[n].applied_count[i] == 0;
        }
    }
    /* identical MVCC contents on the members; nothing left on the others */
    uint64_t versions[NODES + 1], h[NODES + 1], first = 0;
    for (uint64_t n = 1; n <= NODES; n++) {
        if (!member[n])
            continue;
        h[n] = mvcc_hash(w->nodes[n].engine, &versions[n]);
        if (first == 0)
            first = n;
        CHECK(h[n] == h[first] && versions[n] == versions[first],
              "n%llu MVCC contents differ from n%llu (%llu vs %llu versions)",
              (unsigned long long)n, (unsigned long long)first, (unsigned long long)versions[n],
              (unsigned long long)versions[first]);
    }
    int empty_at = 0;
    for (; empty_at < 1000 && !outsiders_empty(w); empty_at++)
        advance(w);
    CHECK(empty_at < 1000, "a removed node's store still holds data of the range");
    total_changes += w->changes_done;
    total_change_steps += w->change_steps;
    total_acks += w->acks;
    total_dropped += w->dropped;
    total_ambiguous += w->ambiguous;
    total_not_leader += w->not_leader;
    total_ticks += (uint64_t)w->tick;
    uint64_t result = h[1] ^ ((uint64_t)w->tick << 32) ^ w->acks;
    /* The log is bounded: with every replica up and caught up, the leader
    ** truncates until each keeps fewer than 2 x the threshold. */
    int settle = 0;
    for (; settle < 400; settle++) {
        bool bounded = converged(w);
        for (uint64_t i = 1; i <= NODES && bounded; i++) {
            range_replica_status st;
            if (!member[i])
                continue;
            range_replica_get_status(w->nodes[i].rep, &st);
            bounded = st.last_index + 1 - st.first_index < 2 * TRUNCATE_ENTRIES;
        }
        if (bounded)
            break;
        advance(w);
    }
    if (settle == 400)
        for (uint64_t i = 1; i <= NODES; i++) {
            range_replica_status st;
            if (!member[i])
                continue;
            range_replica_get_status(w->nodes[i].rep, &st);
            fprintf(stderr, "n%llu: leader %d term %llu commit %llu applied %llu log [%llu, "
                    "%llu]\n", (unsigned long long)i, st.leader, (unsigned long long)st.term,
                    (unsigned long long)st.commit, (unsigned long long)st.applied,
                    (unsigned long long)st.first_index, (unsigned long long)st.last_index);
        }
    CHECK(settle < 400, "the logs were not truncated once all replicas caught up");
    for (uint64_t i = 1; i <= NODES; i++) {
        range_replica_status st;
        if (!member[i])
            continue;
        range_replica_get_status(w->nodes[i].rep, &st);
        if (st.first_index > 1)
            total_truncations++;
        if (st.first_index > total_first_index_max)
            total_first_index_max = st.first_index;
    }

    for (uint64_t i = 1; i <= NODES; i++)
        if (w->nodes[i].up)
            crash_node(w, i);
    rpc_sim_net_free(w->net);
    for (uint64_t i = 1; i <= NODES; i++) {
        storage_close(w->nodes[i].engine);
        sim_remove_dir(w->nodes[i].files.dir);
    }
    free(w);
    return result;
}

static void on_read_solo(void *ctx, int rc) { *(int *)ctx = rc; }

/* ---- one replica alone: restart from storage, apply once ------------------ */

typedef struct solo {
    int acked, failed;
    int applied_new, applied_dup;
    uint64_t last_index;
} solo;

static void solo_observer(void *ctx, uint64_t range_id, uint64_t node_id, uint64_t index,
                          uint64_t txn_id, uint64_t seq, bool duplicate)
{
    solo *s = ctx;
    (void)range_id;
    (void)node_id;
    (void)txn_id;
    (void)seq;
    assert_true(index > s->last_index);
    s->last_index = index;
    if (duplicate)
        s->applied_dup++;
    else
        s->applied_new++;
}

static void solo_cb(void *ctx, int rc)
{
    solo *s = ctx;
    if (rc == RANGE_OK)
        s->acked++;
    else
        s->failed++;
}

/* shared mode: the solo node's log, without sync (saves durable at once,
** as far as the node asks: the inline path of replica_process) */
static raft_log *solo_log;

static void solo_start(rpc_transport *t, storage_engine *e, solo *s, range_node **rn,
                       range_replica **rep)
{
    range_node_config nc = {.transport = t, .engine = e, .sync = solo_log == NULL,
                            .log = solo_log, .observer = solo_observer, .observer_ctx = s};
    assert_int_equal(range_node_new(&nc, rn), RANGE_OK);
    range_replica_config rc = {.range_id = 9, .peers = {1}, .n_peers = 1, .random_seed = 5};
    assert_int_equal(range_node_add_replica(*rn, &rc, rep), RANGE_OK);
    /* the same range twice, or a config without this node: refused */
    assert_int_equal(range_node_add_replica(*rn, &rc, NULL), RANGE_ERR_INVALID);
    range_replica_config other = {.range_id = 10, .peers = {2, 3}, .n_peers = 2};
    assert_int_equal(range_node_add_replica(*rn, &other, NULL), RANGE_ERR_INVALID);
}

static void test_single_replica_restart(void **state)
{
    (void)state;
    base_log_set_level(BASE_LOG_ERROR);
    rpc_sim_config sc;
    rpc_sim_net *net;
    rpc_transport *t;
    storage_engine *e;
    storage_options so = {.dir = NULL, .create_if_missing = true};
    solo s = {0};
    range_node *rn;
    range_replica *rep;
    char log_dir[256] = "";
    (void)log_dir;
    rpc_sim_config_init(&sc, 1);
    assert_int_equal(rpc_sim_net_new(&sc, &net), RPC_OK);
    assert_int_equal(rpc_sim_add_node(net, 1, NULL, &t), RPC_OK);
    assert_int_equal(storage_open(&so, &e), STORAGE_OK);
#if SIM_SHARED
    sim_make_log_dir(log_dir, sizeof(log_dir));
    solo_log = sim_open_log(log_dir, 0);
#endif
    solo_start(t, e, &s, &rn, &rep);
    range_replica_status st;
    for (int i = 0; i < 100; i++) {
        range_node_tick(rn);
        range_replica_get_status(rep, &st);
        if (st.leader)
            break;
    }
    assert_true(st.leader);
    range_write w = {(const uint8_t *)"k", 1, (const uint8_t *)"v1", 2, false};
    range_command cmd = {.txn_id = 1, .seq = 1, .commit_ts = {10, 0}, .writes = &w,
                         .write_count = 1};
    /* a single voter commits as soon as its own write is durable: the
    ** callback runs inside the call */
    assert_int_equal(range_replica_propose(rep, &cmd, solo_cb, &s, NULL), RANGE_OK);
    assert_int_equal(s.acked, 1);
    assert_int_equal(range_replica_propose(rep, &cmd, solo_cb, &s, NULL), RANGE_OK);
    assert_int_equal(s.acked, 2);
    assert_int_equal(s.applied_new, 1);
    assert_int_equal(s.applied_dup, 1);
    range_replica_get_status(rep, &st);
    uint64_t applied_before = st.applied;
    assert_true(applied_before >= 3); /* empty entry + 2 commands */

    /* crash and restart from storage: same applied index, nothing replayed */
    range_node_free(rn);
#if SIM_SHARED
    raft_log_close(solo_log);
    solo_log = sim_open_log(log_dir, 0);
#endif
    solo_start(t, e, &s, &rn, &rep);
    range_replica_get_status(rep, &st);
    assert_int_equal(st.applied, applied_before);
    assert_int_equal(s.applied_new + s.applied_dup, 2);
    for (int i = 0; i < 100 && !st.leader; i++) {
        range_node_tick(rn);
        range_replica_get_status(rep, &st);
    }
    assert_true(st.leader);
    /* the re-proposal after the restart still applies once */
    assert_int_equal(range_replica_propose(rep, &cmd, solo_cb, &s, NULL), RANGE_OK);
    assert_int_equal(s.applied_new, 1);
    assert_int_equal(s.applied_dup, 2);
    range_write w2 = {(const uint8_t *)"k", 1, NULL, 0, true};
    range_command del = {.txn_id = 2, .seq = 1, .commit_ts = {20, 0}, .writes = &w2,
                         .write_count = 1};
    assert_int_equal(range_replica_propose(rep, &del, solo_cb, &s, NULL), RANGE_OK);
    assert_int_equal(s.applied_new, 2);
    base_buf out = {0};
    assert_int_equal(range_replica_get(rep, (const uint8_t *)"k", 1, (hlc_timestamp){15, 0}, &out),
                     RANGE_OK);
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.data, "v1", 2);
    assert_int_equal(range_replica_get(rep, (const uint8_t *)"k", 1, (hlc_timestamp){25, 0}, &out),
                     RANGE_NOT_FOUND);
    base_buf_free(&out);
    /* lease read: served at once by a single voter */
    int read_rc = 1;
    assert_int_equal(range_replica_read(rep, true, on_read_solo, &read_rc, NULL), RANGE_OK);
    for (int i = 0; i < 20 && read_rc == 1; i++)
        range_node_tick(rn);
    assert_int_equal(read_rc, RANGE_OK);
    /* invalid commands are refused up front; the callback never runs */
    range_write bad = {(const uint8_t *)"", 0, NULL, 0, false};
    range_command badcmd = {.txn_id = 3, .seq = 1, .commit_ts = {30, 0}, .writes = &bad,
                            .write_count = 1};
    assert_int_equal(range_replica_propose(rep, &badcmd, solo_cb, &s, NULL), RANGE_ERR_INVALID);
    assert_int_equal(s.failed, 0);
    range_node_free(rn);
#if SIM_SHARED
    /* the store keeps its layout: a log in the raw keyspace is refused over
    ** a shared log, with a clear error */
    {
        range_node *raw;
        range_node_config nc = {.transport = t, .engine = e, .sync = true};
        assert_int_equal(range_node_new(&nc, &raw), RANGE_OK);
        range_replica_config other = {.range_id = 11, .peers = {1}, .n_peers = 1};
        assert_int_equal(range_node_add_replica(raw, &other, NULL), RANGE_OK);
        for (int i = 0; i < 100; i++)
            range_node_tick(raw); /* elected: a hard state in the raw keyspace */
        range_node_free(raw);
        nc.log = solo_log;
        assert_int_equal(range_node_new(&nc, &raw), RANGE_OK);
        assert_int_equal(range_node_add_replica(raw, &other, NULL), RANGE_ERR_CORRUPT);
        range_node_free(raw);
    }
    raft_log_close(solo_log);
    solo_log = NULL;
    sim_remove_dir(log_dir);
#endif
    rpc_sim_net_free(net);
    storage_close(e);
}

static uint64_t env_u64(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? strtoull(v, NULL, 10) : def;
}

static void test_sim_seeds(void **state)
{
    (void)state;
    /* MERIDIAN_SIM_LOG=1: the nodes' INFO lines (replay one seed with it) */
    const char *sim_log = getenv("MERIDIAN_SIM_LOG"); /* 2: DEBUG as well */
    base_log_set_level(sim_log == NULL ? BASE_LOG_ERROR
                       : sim_log[0] == '2' ? BASE_LOG_DEBUG
                                           : BASE_LOG_INFO);
    uint64_t first = env_u64("MERIDIAN_SIM_FIRST_SEED", 1);
    uint64_t count = env_u64("MERIDIAN_SIM_SEEDS", 200);
    if (getenv("MERIDIAN_SEED") != NULL) {
        first = env_u64("MERIDIAN_SEED", 1);
        count = 1;
    }
    for (uint64_t s = first; s < first + count; s++)
        run_seed(s);
    fprintf(stderr,
            "range sim: %llu seeds from %llu clean; ticks %llu, crashes %llu (incl. end), "
            "isolations %llu, acks %llu, dropped %llu, ambiguous %llu, not-leader %llu, "
            "deliberate re-proposals %llu, mid-run reads ok %llu / failed %llu, "
            "bad peer messages %llu, pauses %llu (lease reads right after waking %llu)\n",
            (unsigned long long)count, (unsigned long long)first,
            (unsigned long long)total_ticks, (unsigned long long)total_crashes,
            (unsigned long long)total_isolations, (unsigned long long)total_acks,
            (unsigned long long)total_dropped, (unsigned long long)total_ambiguous,
            (unsigned long long)total_not_leader, (unsigned long long)total_dup_proposals,
            (unsigned long long)total_mid_reads_ok, (unsigned long long)total_mid_reads_failed,
            (unsigned long long)total_garbage, (unsigned long long)total_pauses,
            (unsigned long long)total_resume_reads);
    fprintf(stderr, "range sim (%s log): replicas ending truncated %llu, highest first index "
            "%llu, syncer rounds %llu, commands a replica got by snapshot %llu, replica "
            "changes %llu (%llu configuration entries)\n",
            SIM_SHARED ? "shared" : "raw keyspace",
            (unsigned long long)total_truncations, (unsigned long long)total_first_index_max,
            (unsigned long long)total_syncs, (unsigned long long)total_by_snapshot,
            (unsigned long long)total_changes, (unsigned long long)total_change_steps);
#if SIM_SHARED
    fprintf(stderr, "range sim: power failures %llu, unsynced log bytes lost %llu\n",
            (unsigned long long)total_power_losses, (unsigned long long)total_bytes_lost);
#endif
}

static void test_sim_deterministic(void **state)
{
    (void)state;
    base_log_set_level(BASE_LOG_ERROR);
    uint64_t a = run_seed(4242);
    uint64_t b = run_seed(4242);
    assert_int_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_replica_restart),
        cmocka_unit_test(test_sim_deterministic),
        cmocka_unit_test(test_sim_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
