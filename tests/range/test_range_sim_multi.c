/*
** tests/range/test_range_sim_multi.c: deterministic simulation of whole
** range stores (issue 4): five range_nodes, each with its own in-memory
** storage engine and its own shared segmented Raft log (raft/log.c, synced
** by the simulation), over the simulated network (rpc_sim), one seed for
** everything. range_server (worker threads, blocking waits) stays out: the
** simulation plays the leaseholder's part itself, as a client would.
**
** The key space starts as one range (id 1) on nodes 1-3. Under faults, at
** random, a driver
**   - SPLITS a range at a key strictly inside it (replica__propose_split at
**     the replica it believes leads; a new range id per attempt);
**   - TRANSFERS a lease to another voter (range_replica_transfer_lease);
**   - MOVES a replica (range_replica_change_replicas: add a node as a
**     learner, then promote it; remove a voter, the leader too), one
**     change at a time;
**   - MERGES adjacent ranges L, R with the same replicas and no learners,
**     one merge at a time, as the orchestrator does (docs/range.md,
**     "Merges"): FREEZE at R's leader, wait until every voter of R applied
**     it, MERGE at L's leader; on a failure, a timeout or on purpose (one in
**     five) it abandons: FENCE in the range ending at R's start, then
**     UNFREEZE R unless the fence shows the merge happened. Crashes hit
**     merges in progress too; a watchdog (server/'s) abandons any range
**     left frozen while no merge runs;
** and four clients write and read registers (KEYS keys): each keeps a
** descriptor cache, refreshed from any replica (a key outside a replica's
** descriptor refreshes it, "not leader" gives a hint), proposes a write
** at the range's leader with an idempotence key and re-proposes it with
** the same key after DROPPED or AMBIGUOUS (also, on purpose, after it was
** acknowledged), and reads a key after a read barrier (lease or ReadIndex)
** at the leader whose descriptor still holds it. A write a frozen range
** refused is DROPPED (proposed again later); a range merged away is no
** longer found (the cache is refreshed: the merged range's descriptor, of
** a higher generation, replaces it). An acknowledged write proposed again
** goes to whichever range holds its key now: after a merge, the left,
** whose lineage seq must find the right's idempotence record.
** Faults: message loss, duplication and reordering; isolation of a node,
** one-way partitions, a minority cut off from the majority; crashes (the
** node is freed, its engine kept; half the crashes also lose the log writes
** made since its last sync: a power failure) and restarts from storage
** (range_node_open_stored reopens every hosted range, those made by splits
** and snapshots too); pauses (no ticks, no messages; woken, it is asked for
** a lease read before it gets its missed ticks); each node's clock runs at
** its own rate (+-5%, within the lease's drift allowance of 2 ticks in 10)
** from its own offset, and it ticks by that clock; bad peer bytes.
** Then everything heals and the run must converge.
**
** Checked:
**   - LEASES: after every delivered message, tick and call, for every range
**     id at most one replica holds a lease it would serve from
**     (range_replica_status.lease_valid and the tick-freshness rule of
**     range_node_config.clock), across all nodes: lease intervals never
**     overlap.
**   - applied indexes never go backwards (observer and status, per life of
**     a replica); a write applies at most once per node while its data
**     lives there.
**   - DESCRIPTORS (every tick, every hosted replica): a (range, generation)
**     names one descriptor forever; a descriptor's replicas are its
**     applied configuration's voters; descriptors of different ranges that
**     overlap never share a generation.
**   - mid-run: a lease read at a node woken from a pause, and random
**     barriers, see every write acknowledged before they were issued.
**   - the history of client operations (invoke and completion in simulated
**     time) is linearizable per key: the register checker of tests/chaos.
**   - a write applies at most once per node while its data lives there,
**     across merges too (a range merged away keeps its span's data under
**     the merged range: the record of the write's first application is
**     kept, and a re-proposal to the merged range must be a duplicate).
**   - after healing: the newest descriptors tile the key space (no gap, no
**     overlap); every member of each range hosts it at the same applied
**     index and holds identical MVCC data (all versions) in its span; every
**     acknowledged write is readable at its range's leader after a lease
**     and a ReadIndex barrier; a node holds data only inside ranges it is a
**     member of (removed replicas deleted theirs); no range is left frozen
**     (unless its merge is in flight: convergence waits for it) and a
**     merged range is hosted nowhere; a merged range's data is all there
**     (the checks above run over the merged span).
** Found by it (fixed in range/replica.c and raft/log.c; the seeds that
** failed are kept in test_sim_regressions):
**   - a split applied on a store that does not make the right-hand replica
**     (a learner of the left) left the right span's data there (seed 2);
**   - a snapshot installed over a replica that missed splits left the data
**     of the span it lost (seeds 12, 138);
**   - a snapshot of a range made before a split, installed on a store that
**     already hosts the split's right side (made by its own snapshot),
**     overwrote that replica's data with older versions: acknowledged
**     writes lost on a member (seeds 999, 5679);
**   - a learner removed in the term of the leader it knew never asked
**     whether it was still a member: replica and data kept (seed 2860);
**   - a purge of the shared log deleted segments on the strength of a
**     compaction record not yet synced: after a power failure the log no
**     longer opens (seed 1876);
**   - a write re-proposed to the right-hand range of a split after the left
**     applied it applied again: the right's log restarted at
**     REPLICA_INITIAL_INDEX, below the index of the left's idempotence
**     record (seed 2; after the fixes below, seeds 1 and 12 are the ones that
**     catch it; the right's log now starts at the split's index);
**   - a node woken from a pause got its missed ticks one range_node_tick at
**     a time: between two of them its tick was fresh while its core's lease
**     had not run out, and another node held the lease (seed 4; now one
**     range_node_tick_n);
**   - the right-hand range of a split was made on a node only by applying
**     the split there: with two of its four voters skipping the split (a
**     snapshot of the left made after it, or the left's replica removed
**     first) it never elected a leader (seed 67; Raft traffic for a range
**     not hosted now makes an uninitialized replica that votes).
**   - merges (range/replica.c, MERGES): a replica of the right range on a
**     node removed from it before the freeze, that never learned of its
**     removal, was left alone for ever once its peers merged it away (no
**     member left to tell it): a node with the merged range's tombstone now
**     tells it (REPLICA_MSG_REMOVED at the merged tombstone; seed 78);
**   - a snapshot of a range split off a merged range reached a node whose
**     left replica had not applied the MERGE yet: it subsumed the frozen
**     right replica there, and the left's MERGE stalled for ever (a frozen
**     replica whose left is here and behind is now left to that MERGE;
**     seed 647 of an earlier version of this driver); and the other way
**     round, a frozen right whose left here had already passed the MERGE
**     (by a snapshot of the left made after it) was kept for ever as
**     "needed by its left" (seed 1389; the left's merged list says);
**   - an abandoning orchestrator whose FENCE applied in a left that had
**     merged and then split again exactly at b concluded "not merged" and
**     tried to unfreeze a range that no longer existed (seed 3471; the
**     outcome now also reads replica__merge_applied).
** Also measured (summary): the simulated ticks from a range's first
** appearance (its split applied somewhere) to its first leader.
** Seeds: MERIDIAN_SIM_SEEDS (default 200) from MERIDIAN_SIM_FIRST_SEED
** (default 1); MERIDIAN_SEED=N runs seed N only; MERIDIAN_SIM_LOG=1|2 shows
** the nodes' INFO|DEBUG lines, MERIDIAN_SIM_TRACE=1 the leases, leaders,
** faults and the driver's actions. A failure prints its seed.
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
#include "range/replica_int.h"
#include "rpc/rpc.h"
#include "storage/storage.h"
#include "tests/chaos/chaos.h"
#include "tests/range/sim_util.h"

#define NODES 5
#define BOOT_VOTERS 3       /* range 1 starts on nodes 1..3 */
#define RIDS 40             /* range ids 1..RIDS-1 (a new one per split attempt) */
#define GENS 512            /* generations remembered per range */
#define KEYS 12             /* registers "k00".."k11" */
#define CLIENTS 4
#define OPS_MAX 2400
#define TICK_NS (10LL * 1000 * 1000)
#define FAULT_TICKS 1000
#define CONVERGE_TICKS_MAX 5000
#define TRUNCATE_ENTRIES 16
#define SEGMENT_BYTES 8192
#define RATE_PPM_SPREAD 50000 /* clock rates 1 +- 5% */
#define OFFSET_NS_MAX (250LL * 1000 * 1000)
#define MISSED_TICKS_MAX 50 /* delivered at once after a pause, as server/'s ticker */
#define READ_TS ((hlc_timestamp){INT64_MAX / 2, 0})

#define LEADER_DELAY_BUCKETS 64 /* histogram of ticks to a new range's first leader */

static uint64_t current_seed;
static bool trace_on; /* MERIDIAN_SIM_TRACE: leases, leaders and the driver's actions */
#define TRACE(w, ...)                                                                   \
    do {                                                                                \
        if (trace_on) {                                                                 \
            fprintf(stderr, "[%9.3f ms] ", (double)rpc_sim_now_ns((w)->net) / 1e6);     \
            fprintf(stderr, __VA_ARGS__);                                               \
            fprintf(stderr, "\n");                                                      \
        }                                                                               \
    } while (0)
/* totals over the seeds run, printed at the end (shows the faults bite) */
static struct {
    uint64_t ticks, crashes, power_losses, bytes_lost, pauses, isolations, minorities, oneways;
    uint64_t garbage, writes, reads, dup_proposals, dropped, ambiguous, not_leader, mismatches;
    uint64_t splits_proposed, splits, transfers, changes, change_steps, changes_abandoned;
    uint64_t merges_started, merges, merges_abandoned, merges_late, merge_crashes, fences,
        unfreezes, watchdog_runs, merges_died;
    uint64_t lease_checks, lease_handovers, probes_ok, probes_failed, resume_probes;
    uint64_t ranges_max, ranges_end, syncs, history_ops, keys_unknown;
    /* ranges made by splits: ticks from first seen to first leader (the last
    ** bucket: that many or more) */
    uint64_t new_ranges, new_ranges_led, leader_delay_sum, leader_delay_max;
    uint64_t leader_delay[LEADER_DELAY_BUCKETS];
} total;

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

struct world;

/* One client operation of the history: a register write or read. */
typedef struct sim_op {
    struct world *w;
    int index; /* in w->ops; the write's txn_id is index + 1 */
    int client;
    int key;
    bool is_write;
    int64_t value; /* write: its value; read: what it read (CHAOS_NIL: none) */
    int64_t invoke_ns, complete_ns;
    bool done;
    hlc_timestamp ts; /* write: its commit timestamp, unique, in invocation order */
    uint64_t acked_range; /* write: the range whose replica acknowledged it */
    int inflight;     /* write proposals waiting for their callback */
    int dups;         /* deliberate re-proposals after the ack */
    bool read_waiting, read_ready;
    int read_rc;
    uint64_t read_node, read_range;
    char kbuf[8], vbuf[24];
    range_write wr;
} sim_op;

typedef struct sim_client {
    range_descriptor cache[RIDS]; /* owned; has[] says which are set */
    bool has[RIDS];
    uint64_t lh[RIDS]; /* leaseholder guesses (0: unknown) */
    int op;            /* index of the operation in progress, -1: idle */
} sim_client;

typedef struct sim_node {
    struct world *w;
    uint64_t id;
    range_node *rn;
    storage_engine *engine;
    rpc_transport *t;
    bool up, paused;
    int down_until, paused_until; /* ticks */
    int restarts;
    int64_t rate_ppm, offset_ns;  /* its clock: offset + now * rate */
    int64_t next_tick_local, last_tick_local;
    int missed_ticks;             /* while paused */
    bool lease_core[RIDS];        /* status.lease_valid at its last event */
    uint64_t lead_term[RIDS];     /* tracing: the term it leads in (0: follower) */
    bool hosted[RIDS];            /* hosted at the last check */
    uint64_t applied_seen[RIDS];  /* per life of a replica */
    uint64_t observed_index[RIDS];
    range_descriptor last_desc[RIDS]; /* owned: the last one seen (hosted[]) */
    uint64_t applied_in[OPS_MAX]; /* range + 1 that applied write i here, 0: none */
    uint64_t applied_at[OPS_MAX]; /* and at which index */
    raft_log *log;
    sim_log_files files;
} sim_node;

/* A barrier whose answer must show every write acknowledged before it. */
typedef struct sim_probe {
    bool pending, ready;
    int rc;
    uint64_t node, range;
    int n_ops_at; /* ops [0, n_ops_at) considered */
    bool acked[OPS_MAX];
} sim_probe;

typedef struct split_ctx {
    struct world *w;
    uint64_t id;
} split_ctx;

/* The merge the driver orchestrates (one at a time), as txn_db_merge_at and
** server/ would: FREEZE at R's leader, wait until every voter of R applied
** it, MERGE at L's leader; on any failure (or on purpose) FENCE in the range
** ending at (or holding) R's start, then UNFREEZE R unless it merged. */
typedef enum merge_phase {
    MERGE_IDLE = 0,
    MERGE_FREEZING,
    MERGE_WAIT_APPLIED,
    MERGE_MERGING,
    MERGE_FENCING,
    MERGE_UNFREEZING,
} merge_phase;

typedef struct world {
    uint64_t seed, rng;
    int sync_per_million;
    rpc_sim_net *net;
    sim_node nodes[NODES + 1];
    sim_client clients[CLIENTS];
    sim_op ops[OPS_MAX];
    int n_ops;
    int64_t write_seq;
    int tick;
    bool new_ops; /* clients start new operations (fault phase) */
    uint32_t dirty; /* nodes whose replicas changed since the last settle */
    bool settling;
    /* network faults: recomputed into the partition matrix on any change */
    int isolated, isolated_until;
    int oneway_from, oneway_to, oneway_until;
    uint32_t minority; /* bitmask of nodes cut off from the others */
    int minority_until;
    /* ranges */
    bool exists[RIDS];
    int born_tick[RIDS]; /* the tick it was first seen */
    bool led[RIDS];      /* a leader of it was seen */
    uint64_t gen_hash[RIDS][GENS]; /* 0: not seen */
    uint64_t next_range_id;
    uint64_t lh[RIDS];          /* the driver's leaseholder guesses */
    uint64_t lease_holder[RIDS];
    /* driver */
    split_ctx split_ctxs[RIDS];
    bool split_waiting;
    uint64_t split_id;
    int split_since;
    int change_kind; /* 0 none, 1 add, 2 remove */
    uint64_t change_range, change_node;
    bool change_waiting;
    int change_since, change_started;
    sim_probe probe;
    int final_read_rc; /* 1: pending */
    /* merges */
    bool merged[RIDS];    /* merged into its left: gone for good */
    merge_phase mphase;
    uint64_t merge_id, merge_left, merge_right, next_merge_id;
    uint64_t merge_right_gen, merge_freeze_index, merge_freeze_lineage;
    range_descriptor merge_right_desc; /* owned when has_right_desc */
    bool has_right_desc;
    char merge_b[8];      /* R's start key */
    size_t merge_b_len;
    bool merge_proposed, merge_waiting, merge_freeze_sent;
    int merge_rc;
    uint64_t merge_node;  /* where the last proposal went */
    uint64_t merge_attempt;
    int merge_since, merge_phase_since;
} world;

static void settle(world *w);

/* ---- randomness, clocks ------------------------------------------------------ */

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

static int64_t local_at(const sim_node *n, int64_t real_ns)
{
    return n->offset_ns + real_ns / 1000000 * n->rate_ppm +
           real_ns % 1000000 * n->rate_ppm / 1000000;
}

static int64_t local_now(const sim_node *n) { return local_at(n, rpc_sim_now_ns(n->w->net)); }

/* The first real time at which n's clock reads at least local_ns. */
static int64_t real_at(const sim_node *n, int64_t local_ns)
{
    int64_t d = local_ns - n->offset_ns;
    if (d <= 0)
        return 0;
    int64_t t = d / n->rate_ppm * 1000000 + d % n->rate_ppm * 1000000 / n->rate_ppm;
    while (local_at(n, t) < local_ns)
        t++;
    while (t > 0 && local_at(n, t - 1) >= local_ns)
        t--;
    return t;
}

static int64_t node_clock(void *ctx) { return local_now(ctx); }

static bool usable(const world *w, uint64_t id)
{
    return id >= 1 && id <= NODES && w->nodes[id].up && !w->nodes[id].paused;
}

/* ---- keys and descriptors ---------------------------------------------------- */

static void key_name(int k, char out[8]) { snprintf(out, 8, "k%02d", k); }

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m > 0 ? memcmp(a, b, m) : 0;
    return c != 0 ? c : al < bl ? -1 : al > bl ? 1 : 0;
}

static bool desc_has_key(const range_descriptor *d, int k)
{
    char name[8];
    key_name(k, name);
    return range_descriptor_contains(d, (const uint8_t *)name, strlen(name));
}

/* [s, e) of a and b intersect (end empty: +infinity). */
static bool desc_overlap(const range_descriptor *a, const range_descriptor *b)
{
    bool a_before = a->end_len > 0 && key_cmp(a->end_key, a->end_len, b->start_key,
                                               b->start_len) <= 0;
    bool b_before = b->end_len > 0 && key_cmp(b->end_key, b->end_len, a->start_key,
                                               a->start_len) <= 0;
    return !a_before && !b_before;
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

/* The replicas as a sorted set. */
static void sorted_ids(const uint64_t *ids, size_t n, uint64_t *out)
{
    memcpy(out, ids, n * sizeof(*ids));
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
            uint64_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
}

static uint64_t desc_hash(const range_descriptor *d)
{
    uint64_t ids[RANGE_REPLICAS_MAX];
    uint64_t h = 1469598103934665603ULL;
    h = hash_bytes(h, &d->start_len, sizeof(d->start_len));
    if (d->start_len > 0)
        h = hash_bytes(h, d->start_key, d->start_len);
    h = hash_bytes(h, &d->end_len, sizeof(d->end_len));
    if (d->end_len > 0)
        h = hash_bytes(h, d->end_key, d->end_len);
    sorted_ids(d->replicas, d->n_replicas, ids);
    h = hash_bytes(h, ids, d->n_replicas * sizeof(*ids));
    return h | 1; /* never 0 (= not seen) */
}

static void desc_print(const char *what, const range_descriptor *d)
{
    fprintf(stderr, "  %s r%llu gen %llu [%.*s, %.*s) replicas", what,
            (unsigned long long)d->range_id, (unsigned long long)d->generation,
            (int)d->start_len, d->start_len ? (const char *)d->start_key : "",
            d->end_len ? (int)d->end_len : 4, d->end_len ? (const char *)d->end_key : "+inf");
    for (size_t i = 0; i < d->n_replicas; i++)
        fprintf(stderr, " %llu", (unsigned long long)d->replicas[i]);
    fprintf(stderr, "\n");
}

/* ---- leases -------------------------------------------------------------------- */

/* n would serve a lease read of range r now: the core's lease and a tick
** no older than 5/4 of a tick by its own clock (range_replica_read). */
static bool lease_effective(const sim_node *n, uint64_t r)
{
    return n->up && n->rn != NULL && n->lease_core[r] &&
           local_now(n) - n->last_tick_local <= TICK_NS / 4 * 5;
}

/* Every replica of range r: who leads, in which term, with which lease. */
static void lease_dump(world *w, uint64_t r)
{
    for (uint64_t x = 1; x <= NODES; x++) {
        sim_node *n = &w->nodes[x];
        range_replica *rep = n->up ? range_node_replica(n->rn, r) : NULL;
        range_replica_status st;
        if (rep == NULL)
            continue;
        range_replica_get_status(rep, &st);
        fprintf(stderr, "  n%llu: leader %d (knows n%llu) term %llu commit %llu applied %llu "
                "lease %d paused %d, last tick %lld ns ago, clock rate %lld ppm\n",
                (unsigned long long)x, st.leader, (unsigned long long)st.leader_id,
                (unsigned long long)st.term, (unsigned long long)st.commit,
                (unsigned long long)st.applied, st.lease_valid, n->paused,
                (long long)(local_now(n) - n->last_tick_local), (long long)n->rate_ppm);
    }
}

/* Look at node i's replicas again (after an event there) and check that
** no range has a lease on two nodes. Leases elsewhere change only at
** events of their own nodes (cached), or lapse with time (computed). */
static void lease_refresh(world *w, uint64_t i)
{
    sim_node *n = &w->nodes[i];
    uint64_t ids[RIDS];
    bool before[RIDS];
    memcpy(before, n->lease_core, sizeof(before));
    memset(n->lease_core, 0, sizeof(n->lease_core));
    if (!n->up || n->rn == NULL)
        return;
    size_t k = range_node_replica_ids(n->rn, ids, RIDS);
    CHECK(k <= RIDS, "n%llu hosts %zu ranges", (unsigned long long)i, k);
    for (size_t j = 0; j < k; j++) {
        range_replica *rep = range_node_replica(n->rn, ids[j]);
        range_replica_status st;
        CHECK(ids[j] >= 1 && ids[j] < RIDS, "n%llu hosts unknown range %llu",
              (unsigned long long)i, (unsigned long long)ids[j]);
        if (rep == NULL)
            continue;
        range_replica_get_status(rep, &st);
        if (trace_on && (before[ids[j]] != st.lease_valid ||
                         n->lead_term[ids[j]] != (st.leader ? st.term : 0)))
            TRACE(w, "n%llu r%llu: leader %d term %llu lease %d commit %llu",
                  (unsigned long long)i, (unsigned long long)ids[j], st.leader,
                  (unsigned long long)st.term, st.lease_valid, (unsigned long long)st.commit);
        n->lead_term[ids[j]] = st.leader ? st.term : 0;
        n->lease_core[ids[j]] = st.lease_valid;
    }
    total.lease_checks++;
    for (uint64_t r = 1; r < RIDS; r++) {
        if (!lease_effective(n, r))
            continue;
        for (uint64_t m = 1; m <= NODES; m++) {
            bool two = m != i && lease_effective(&w->nodes[m], r);
            if (two)
                lease_dump(w, r);
            CHECK(!two,
                  "two leases of r%llu at %lld ns: n%llu and n%llu (n%llu last ticked %lld ns "
                  "ago by its clock)",
                  (unsigned long long)r, (long long)rpc_sim_now_ns(w->net),
                  (unsigned long long)i, (unsigned long long)m, (unsigned long long)m,
                  (long long)(local_now(&w->nodes[m]) - w->nodes[m].last_tick_local));
        }
        if (w->lease_holder[r] != i) {
            w->lease_holder[r] = i;
            total.lease_handovers++;
        }
    }
}

/* ---- the observer: applied index and applications per node ---------------------- */

static void observer(void *ctx, uint64_t range_id, uint64_t node_id, uint64_t index,
                     uint64_t txn_id, uint64_t seq, bool duplicate)
{
    world *w = ctx;
    CHECK(range_id >= 1 && range_id < RIDS && node_id >= 1 && node_id <= NODES,
          "bad observer ids r%llu n%llu", (unsigned long long)range_id,
          (unsigned long long)node_id);
    CHECK(txn_id >= 1 && txn_id <= (uint64_t)w->n_ops && w->ops[txn_id - 1].is_write &&
              seq == 1,
          "unknown command %llu/%llu", (unsigned long long)txn_id, (unsigned long long)seq);
    sim_node *n = &w->nodes[node_id];
    CHECK(index > n->observed_index[range_id], "n%llu r%llu applied index went back: %llu after "
          "%llu", (unsigned long long)node_id, (unsigned long long)range_id,
          (unsigned long long)index, (unsigned long long)n->observed_index[range_id]);
    n->observed_index[range_id] = index;
    if (duplicate)
        return;
    uint64_t *in = &n->applied_in[txn_id - 1];
    CHECK(*in == 0, "n%llu applied write %llu twice: in r%llu at index %llu, then again in r%llu "
          "at index %llu", (unsigned long long)node_id, (unsigned long long)txn_id,
          (unsigned long long)(*in - 1), (unsigned long long)n->applied_at[txn_id - 1],
          (unsigned long long)range_id, (unsigned long long)index);
    *in = range_id + 1;
    n->applied_at[txn_id - 1] = index;
}

/* ---- nodes: start, crash, pause ------------------------------------------------- */

static void node_handler(void *ctx, rpc_transport *t, const rpc_message *msg)
{
    sim_node *n = ctx;
    if (!n->up || n->rn == NULL)
        return; /* a crashed node's process is gone */
    (void)range_node_handle_rpc(n->rn, t, msg);
    n->w->dirty |= 1u << n->id;
    settle(n->w);
}

static void replica_defaults(world *w, sim_node *n, range_replica_config *rc)
{
    memset(rc, 0, sizeof(*rc));
    rc->range_id = 1;
    rc->n_peers = BOOT_VOTERS;
    for (int i = 0; i < BOOT_VOTERS; i++)
        rc->peers[i] = (uint64_t)i + 1;
    rc->election_ticks = 10;
    rc->heartbeat_ticks = 1;
    rc->random_seed = w->seed * 1000003 + (uint64_t)n->restarts * 7919 + n->id;
    rc->proposal_timeout_ticks = 60;
    rc->log_truncate_entries = TRUNCATE_ENTRIES;
}

static void start_node(world *w, uint64_t id)
{
    sim_node *n = &w->nodes[id];
    range_node_config nc = {.transport = n->t, .engine = n->engine, .sync = true,
                            .observer = observer, .observer_ctx = w, .no_handler = true,
                            .clock = node_clock, .clock_ctx = n, .tick_ns = TICK_NS,
                            .log_sync_manual = true};
    if (n->log == NULL) { /* recovery after a crash */
        raft_log_options lo = {.dir = n->files.dir, .segment_bytes_max = SEGMENT_BYTES};
        char err[256] = "";
        int lrc = raft_log_open(&lo, &n->log, err, sizeof(err));
        CHECK(lrc == RAFT_LOG_OK, "n%llu: its log does not recover: %s %s",
              (unsigned long long)id, raft_log_strerror(lrc), err);
        sim_log_record(&n->files);
    }
    nc.log = n->log;
    assert_int_equal(range_node_new(&nc, &n->rn), RANGE_OK);
    range_replica_config rc;
    replica_defaults(w, n, &rc);
    if (id <= BOOT_VOTERS) { /* as server/ opens its bootstrap ranges */
        int arc = range_node_add_replica(n->rn, &rc, NULL);
        CHECK(arc == RANGE_OK, "n%llu cannot open range 1: %d", (unsigned long long)id, arc);
    }
    size_t opened = 0; /* then every other range its store hosts */
    int orc = range_node_open_stored(n->rn, &rc, &opened);
    CHECK(orc == RANGE_OK, "n%llu cannot open its stored ranges: %d", (unsigned long long)id,
          orc);
    n->up = true;
    n->last_tick_local = INT64_MIN / 2; /* no lease before its first tick */
    TRACE(w, "n%llu starts", (unsigned long long)id);
    /* restart from storage: never behind what was applied before the crash */
    for (uint64_t r = 1; r < RIDS; r++) {
        range_replica *rep = n->hosted[r] ? range_node_replica(n->rn, r) : NULL;
        range_replica_status st;
        if (rep == NULL)
            continue;
        range_replica_get_status(rep, &st);
        CHECK(st.applied >= n->applied_seen[r], "n%llu r%llu restarted at applied %llu < %llu",
              (unsigned long long)id, (unsigned long long)r, (unsigned long long)st.applied,
              (unsigned long long)n->applied_seen[r]);
    }
    w->dirty |= 1u << id;
}

/* `count` ticks of node n's driver, at once (range_node_tick_n). The tick
** may purge the log: what a purge fsynced is durable, but a purge that
** deleted segments without an fsync made nothing more durable (the
** power-failure model keeps its record). */
static void node_tick(sim_node *n, int count)
{
    raft_log_stats before, after;
    raft_log_get_stats(n->log, &before);
    range_node_tick_n(n->rn, count);
    n->last_tick_local = local_now(n);
    raft_log_get_stats(n->log, &after);
    if (after.fsyncs != before.fsyncs)
        sim_log_record(&n->files);
    else
        sim_log_forget_deleted(&n->files);
}

static void crash_node(world *w, uint64_t id, bool power_failure_possible)
{
    sim_node *n = &w->nodes[id];
    TRACE(w, "n%llu crashes", (unsigned long long)id);
    range_node_free(n->rn); /* pending callbacks fail (AMBIGUOUS, UNAVAILABLE) here */
    n->rn = NULL;
    if (n->log != NULL) {
        raft_log_close(n->log); /* unsynced appends may or may not survive */
        n->log = NULL;
        if (power_failure_possible && rnd_int(w, 2) == 0) {
            total.bytes_lost += sim_log_lose_unsynced(&n->files);
            total.power_losses++;
        }
    }
    n->up = false;
    n->restarts++;
    memset(n->lease_core, 0, sizeof(n->lease_core));
    total.crashes++;
}

/* The partition matrix from every network fault in force. */
static void apply_partitions(world *w)
{
    for (int a = 1; a <= NODES; a++)
        for (int b = 1; b <= NODES; b++) {
            if (a == b)
                continue;
            bool cut = w->isolated == a || w->isolated == b || w->nodes[a].paused ||
                       w->nodes[b].paused || (w->oneway_from == a && w->oneway_to == b) ||
                       (((w->minority >> a) & 1) != ((w->minority >> b) & 1));
            rpc_sim_partition(w->net, (rpc_node_id)a, (rpc_node_id)b, cut);
        }
}

static void issue_probe(world *w, uint64_t node, uint64_t range, bool allow_lease);

/* Wake a paused node. Like a process after SIGCONT it may serve a request
** before its ticker notices the time that passed: a lease read is issued
** first (the lease must not be trusted: range_node_config.clock), then the
** missed ticks are delivered in one range_node_tick_n, as server/'s ticker
** does (delivered one range_node_tick at a time, a read between two of them
** found the tick fresh and the core's lease not yet run out while another
** node held the lease: seed 4). */
static void resume_node(world *w, uint64_t id)
{
    sim_node *n = &w->nodes[id];
    TRACE(w, "n%llu resumes (%d ticks missed)", (unsigned long long)id, n->missed_ticks);
    n->paused = false;
    apply_partitions(w);
    w->dirty |= 1u << id;
    settle(w);
    if (!w->probe.pending && n->up) {
        uint64_t ids[RIDS];
        size_t k = range_node_replica_ids(n->rn, ids, RIDS);
        for (size_t j = 0; j < k && !w->probe.pending; j++) {
            range_replica *rep = range_node_replica(n->rn, ids[j]);
            range_replica_status st;
            if (rep == NULL)
                continue;
            range_replica_get_status(rep, &st);
            if (st.leader) {
                issue_probe(w, id, ids[j], true);
                total.resume_probes += w->probe.pending;
            }
        }
    }
    if (n->missed_ticks > 0 && n->up) {
        node_tick(n, n->missed_ticks < MISSED_TICKS_MAX ? n->missed_ticks : MISSED_TICKS_MAX);
        w->dirty |= 1u << id;
        settle(w);
    }
    n->missed_ticks = 0;
}

/* ---- client operations ---------------------------------------------------------- */

/* Install d (a replica's answer) in c's cache unless the cache knows
** newer: a range's later generation, or an overlapping range of a higher
** generation (a split's child always has a higher one than its parent had
** before the split). Overlapping older entries go. */
static void cache_install(sim_client *c, const range_descriptor *d)
{
    uint64_t id = d->range_id;
    if (id == 0 || id >= RIDS)
        return;
    if (c->has[id] && c->cache[id].generation > d->generation)
        return;
    for (uint64_t j = 1; j < RIDS; j++)
        if (j != id && c->has[j] && desc_overlap(&c->cache[j], d) &&
            c->cache[j].generation >= d->generation)
            return;
    for (uint64_t j = 1; j < RIDS; j++) {
        if (!c->has[j] || (j != id && !desc_overlap(&c->cache[j], d)))
            continue;
        range_descriptor_free(&c->cache[j]);
        c->has[j] = false;
        if (j != id)
            c->lh[j] = 0;
    }
    assert_int_equal(range_descriptor_copy(&c->cache[id], d), RANGE_OK);
    c->has[id] = true;
}

/* Every descriptor node i reports, and who it believes leads each. */
static void cache_refresh(world *w, sim_client *c, uint64_t i)
{
    uint64_t ids[RIDS];
    if (!usable(w, i))
        return;
    size_t k = range_node_replica_ids(w->nodes[i].rn, ids, RIDS);
    for (size_t j = 0; j < k && j < RIDS; j++) {
        range_replica *rep = range_node_replica(w->nodes[i].rn, ids[j]);
        range_descriptor d;
        range_replica_status st;
        if (rep == NULL || range_replica_descriptor(rep, &d) != RANGE_OK)
            continue;
        cache_install(c, &d);
        range_descriptor_free(&d);
        range_replica_get_status(rep, &st);
        if (st.leader_id != 0 && ids[j] < RIDS)
            c->lh[ids[j]] = st.leader_id;
    }
}

static uint64_t cache_lookup(const sim_client *c, int key)
{
    for (uint64_t j = 1; j < RIDS; j++)
        if (c->has[j] && desc_has_key(&c->cache[j], key))
            return j;
    return 0;
}

/* The replica of range id to send to: the guess, else a replica the cache
** names, else any node. NULL when there is none to ask now. */
static range_replica *route(world *w, sim_client *c, uint64_t id, uint64_t *node)
{
    uint64_t t = c->lh[id];
    if (!usable(w, t) && c->has[id] && c->cache[id].n_replicas > 0)
        t = c->cache[id].replicas[rnd_int(w, (int)c->cache[id].n_replicas)];
    if (!usable(w, t))
        t = (uint64_t)rnd_int(w, NODES) + 1;
    if (!usable(w, t))
        return NULL;
    *node = t;
    range_replica *rep = range_node_replica(w->nodes[t].rn, id);
    if (rep == NULL) { /* not here (any more): ask this node what it knows */
        c->lh[id] = 0;
        cache_refresh(w, c, t);
    }
    return rep;
}

static void on_write(void *ctx, int rc)
{
    sim_op *op = ctx;
    op->inflight--;
    TRACE(op->w, "write %d (%s) result %d", op->index + 1, op->kbuf, rc);
    CHECK(op->inflight >= 0, "write callback ran twice");
    if (rc == RANGE_OK) {
        if (!op->done) {
            op->done = true;
            op->complete_ns = rpc_sim_now_ns(op->w->net);
        }
    } else if (rc == RANGE_ERR_DROPPED) {
        total.dropped++;
    } else {
        CHECK(rc == RANGE_ERR_AMBIGUOUS, "unexpected proposal result %d", rc);
        total.ambiguous++;
    }
}

static void on_read(void *ctx, int rc)
{
    sim_op *op = ctx;
    CHECK(op->read_waiting, "read callback without a read");
    op->read_waiting = false;
    op->read_ready = true;
    op->read_rc = rc;
}

/* One attempt of op by client c (the leaseholder's part: the descriptor
** check, then propose or barrier). */
static void attempt(world *w, sim_client *c, sim_op *op)
{
    uint64_t id = cache_lookup(c, op->key), node = 0, hint = 0;
    if (id == 0) {
        cache_refresh(w, c, (uint64_t)rnd_int(w, NODES) + 1);
        if ((id = cache_lookup(c, op->key)) == 0)
            return;
    }
    range_replica *rep = route(w, c, id, &node);
    if (rep == NULL)
        return;
    range_descriptor d;
    if (range_replica_descriptor(rep, &d) != RANGE_OK) {
        c->lh[id] = 0;
        return;
    }
    bool holds = desc_has_key(&d, op->key);
    cache_install(c, &d);
    range_descriptor_free(&d);
    if (!holds) { /* KEY_MISMATCH: this node's view of where the key went */
        total.mismatches++;
        cache_refresh(w, c, node);
        return;
    }
    int rc;
    if (op->is_write) {
        range_command cmd = {.txn_id = (uint64_t)op->index + 1, .seq = 1, .commit_ts = op->ts,
                             .writes = &op->wr, .write_count = 1};
        rc = range_replica_propose(rep, &cmd, on_write, op, &hint);
        TRACE(w, "write %d (%s) proposed at n%llu r%llu: %d", op->index + 1, op->kbuf,
              (unsigned long long)node, (unsigned long long)id, rc);
        if (rc == RANGE_OK) {
            op->inflight++;
            op->acked_range = id;
        }
    } else {
        op->read_waiting = true;
        op->read_node = node;
        op->read_range = id;
        rc = range_replica_read(rep, rnd_int(w, 2) == 0, on_read, op, &hint);
        if (rc != RANGE_OK)
            op->read_waiting = false;
    }
    w->dirty |= 1u << node;
    if (rc == RANGE_OK) {
        c->lh[id] = node;
    } else {
        CHECK(rc == RANGE_ERR_NOT_LEADER || rc == RANGE_ERR_BUSY, "%s at n%llu r%llu: %d",
              op->is_write ? "propose" : "read", (unsigned long long)node,
              (unsigned long long)id, rc);
        total.not_leader++;
        c->lh[id] = hint; /* may be 0: pick another next time */
    }
    settle(w);
}

/* A barrier read that completed: read the key at the replica, if its
** descriptor still holds it (else the key moved: try again). */
static void finish_read(world *w, sim_op *op)
{
    op->read_ready = false;
    if (op->read_rc != RANGE_OK)
        return;
    sim_node *n = &w->nodes[op->read_node];
    range_replica *rep = n->up ? range_node_replica(n->rn, op->read_range) : NULL;
    range_descriptor d;
    if (rep == NULL || range_replica_descriptor(rep, &d) != RANGE_OK)
        return;
    bool holds = desc_has_key(&d, op->key);
    range_descriptor_free(&d);
    if (!holds) {
        total.mismatches++;
        return;
    }
    base_buf out = {0};
    int rc = range_replica_get(rep, (const uint8_t *)op->kbuf, strlen(op->kbuf), READ_TS, &out);
    CHECK(rc == RANGE_OK || rc == RANGE_NOT_FOUND, "get: %d", rc);
    op->value = CHAOS_NIL;
    if (rc == RANGE_OK) {
        char tmp[24];
        CHECK(out.len > 1 && out.len < sizeof(tmp) && out.data[0] == 'v', "garbage value");
        memcpy(tmp, out.data + 1, out.len - 1);
        tmp[out.len - 1] = '\0';
        op->value = strtoll(tmp, NULL, 10);
    }
    base_buf_free(&out);
    op->done = true;
    op->complete_ns = rpc_sim_now_ns(w->net);
}

static sim_op *new_op(world *w, int client)
{
    if (w->n_ops >= OPS_MAX)
        return NULL;
    sim_op *op = &w->ops[w->n_ops];
    memset(op, 0, sizeof(*op));
    op->w = w;
    op->index = w->n_ops++;
    op->client = client;
    op->key = rnd_int(w, KEYS);
    op->is_write = rnd_int(w, 2) == 0;
    op->invoke_ns = rpc_sim_now_ns(w->net);
    key_name(op->key, op->kbuf);
    if (op->is_write) {
        op->value = op->index + 1;
        op->ts = (hlc_timestamp){1000 + ++w->write_seq, 0};
        snprintf(op->vbuf, sizeof(op->vbuf), "v%lld", (long long)op->value);
        op->wr = (range_write){(const uint8_t *)op->kbuf, strlen(op->kbuf),
                               (const uint8_t *)op->vbuf, strlen(op->vbuf), false};
        total.writes++;
    } else {
        total.reads++;
    }
    return op;
}

static void client_step(world *w)
{
    for (int i = 0; i < CLIENTS; i++) {
        sim_client *c = &w->clients[i];
        if (c->op >= 0 && w->ops[c->op].done)
            c->op = -1;
        if (c->op < 0) {
            if (!w->new_ops || !chance(w, 500000))
                continue;
            sim_op *op = new_op(w, i);
            if (op == NULL)
                continue;
            c->op = op->index;
        }
        sim_op *op = &w->ops[c->op];
        if (op->inflight == 0 && !op->read_waiting && !op->read_ready && !op->done)
            attempt(w, c, op);
    }
    /* on purpose: an acknowledged write proposed again (a client that did
    ** not hear the answer), maybe to the range its key lives in since */
    if (w->n_ops > 0 && chance(w, 30000)) {
        sim_op *op = &w->ops[rnd_int(w, w->n_ops)];
        if (op->is_write && op->done && op->dups == 0 && op->inflight == 0) {
            op->dups++;
            total.dup_proposals++;
            attempt(w, &w->clients[0], op);
        }
    }
}

/* ---- probes: barriers that must see every acknowledged write -------------------- */

static void on_probe(void *ctx, int rc)
{
    world *w = ctx;
    CHECK(w->probe.pending, "probe callback without a probe");
    w->probe.pending = false;
    w->probe.ready = true;
    w->probe.rc = rc;
}

static void issue_probe(world *w, uint64_t node, uint64_t range, bool allow_lease)
{
    sim_probe *p = &w->probe;
    range_replica *rep = range_node_replica(w->nodes[node].rn, range);
    uint64_t hint;
    if (rep == NULL)
        return;
    p->node = node;
    p->range = range;
    p->n_ops_at = w->n_ops;
    for (int i = 0; i < w->n_ops; i++)
        p->acked[i] = w->ops[i].is_write && w->ops[i].done;
    p->pending = true;
    int rc = range_replica_read(rep, allow_lease, on_probe, w, &hint);
    if (rc != RANGE_OK) {
        CHECK(rc == RANGE_ERR_NOT_LEADER || rc == RANGE_ERR_BUSY, "probe read: %d", rc);
        p->pending = false;
    }
    w->dirty |= 1u << node;
    settle(w);
}

/* Every write acknowledged before the probe, in the replica's range, is
** in its store at its timestamp. */
static void finish_probe(world *w)
{
    sim_probe *p = &w->probe;
    p->ready = false;
    if (p->rc != RANGE_OK) {
        total.probes_failed++;
        return;
    }
    sim_node *n = &w->nodes[p->node];
    range_replica *rep = n->up ? range_node_replica(n->rn, p->range) : NULL;
    range_descriptor d;
    if (rep == NULL || range_replica_descriptor(rep, &d) != RANGE_OK)
        return;
    total.probes_ok++;
    for (int i = 0; i < p->n_ops_at; i++) {
        sim_op *op = &w->ops[i];
        if (!p->acked[i] || !desc_has_key(&d, op->key))
            continue;
        storage_value v = {0};
        int rc = storage_get(n->engine, NULL, op->wr.key, op->wr.key_len, op->ts, &v);
        bool ok = rc == STORAGE_OK && hlc_compare(v.ts, op->ts) == 0 && !v.tombstone &&
                  v.bytes.len == op->wr.value_len &&
                  memcmp(v.bytes.data, op->wr.value, v.bytes.len) == 0;
        storage_value_free(&v);
        CHECK(ok, "barrier at n%llu r%llu: acknowledged write %d of %s missing (rc %d)",
              (unsigned long long)p->node, (unsigned long long)p->range, i, op->kbuf, rc);
    }
    range_descriptor_free(&d);
}

/* After any event: leases of the nodes it touched, reads it completed. */
static void settle(world *w)
{
    if (w->settling)
        return;
    w->settling = true;
    for (uint64_t i = 1; i <= NODES; i++)
        if ((w->dirty >> i) & 1)
            lease_refresh(w, i);
    w->dirty = 0;
    for (int i = 0; i < CLIENTS; i++) {
        sim_client *c = &w->clients[i];
        if (c->op >= 0 && w->ops[c->op].read_ready)
            finish_read(w, &w->ops[c->op]);
    }
    if (w->probe.ready)
        finish_probe(w);
    w->settling = false;
}

/* ---- the driver: splits, lease transfers, replica moves ------------------------ */

/* A replica of range id to drive: the guess, else any node hosting it. */
static range_replica *driver_target(world *w, uint64_t id, uint64_t *node)
{
    uint64_t t = w->lh[id];
    if (usable(w, t) && range_node_replica(w->nodes[t].rn, id) != NULL) {
        *node = t;
        return range_node_replica(w->nodes[t].rn, id);
    }
    int start = rnd_int(w, NODES);
    for (int k = 0; k < NODES; k++) {
        t = (uint64_t)((start + k) % NODES) + 1;
        range_replica *rep = usable(w, t) ? range_node_replica(w->nodes[t].rn, id) : NULL;
        if (rep != NULL) {
            *node = t;
            return rep;
        }
    }
    return NULL;
}

static uint64_t random_range(world *w)
{
    uint64_t ids[RIDS];
    size_t n = 0;
    for (uint64_t r = 1; r < RIDS; r++)
        if (w->exists[r] && !w->merged[r])
            ids[n++] = r;
    return n == 0 ? 0 : ids[rnd_int(w, (int)n)];
}

static void on_split(void *ctx, int rc)
{
    split_ctx *s = ctx;
    world *w = s->w;
    if (rc == RANGE_OK)
        total.splits++;
    else
        CHECK(rc == RANGE_ERR_DROPPED || rc == RANGE_ERR_AMBIGUOUS, "split result %d", rc);
    if (w->split_waiting && w->split_id == s->id)
        w->split_waiting = false;
}

static void split_step(world *w)
{
    if (w->split_waiting && w->tick - w->split_since > 150)
        w->split_waiting = false; /* the waiter may still run: it only clears this */
    if (w->split_waiting || w->next_range_id >= RIDS || !chance(w, 15000))
        return;
    uint64_t id = random_range(w), node = 0, hint = 0;
    range_replica *rep = id != 0 ? driver_target(w, id, &node) : NULL;
    range_descriptor d;
    if (rep == NULL || range_replica_descriptor(rep, &d) != RANGE_OK)
        return;
    int cand[KEYS], n = 0;
    for (int k = 1; k < KEYS; k++) {
        char name[8];
        key_name(k, name);
        if (desc_has_key(&d, k) &&
            key_cmp((const uint8_t *)name, strlen(name), d.start_key, d.start_len) != 0)
            cand[n++] = k;
    }
    if (n > 0) {
        char name[8];
        key_name(cand[rnd_int(w, n)], name);
        uint64_t new_id = w->next_range_id;
        w->split_ctxs[new_id] = (split_ctx){w, new_id};
        int rc = replica__propose_split(rep, (const uint8_t *)name, strlen(name), new_id,
                                        d.generation, HLC_ZERO, 0, on_split,
                                        &w->split_ctxs[new_id], &hint);
        TRACE(w, "split r%llu gen %llu at n%llu at %s into r%llu: %d", (unsigned long long)id,
              (unsigned long long)d.generation, (unsigned long long)node, name,
              (unsigned long long)new_id, rc);
        if (rc == RANGE_OK) {
            w->next_range_id++; /* a new id per attempt: at most one applies */
            w->split_waiting = true;
            w->split_id = new_id;
            w->split_since = w->tick;
            w->lh[id] = node;
            total.splits_proposed++;
        } else {
            CHECK(rc == RANGE_ERR_NOT_LEADER || rc == RANGE_ERR_BUSY, "split: %d", rc);
            w->lh[id] = hint;
        }
        w->dirty |= 1u << node;
        settle(w);
    }
    range_descriptor_free(&d);
}

static void transfer_step(world *w)
{
    if (!chance(w, 15000))
        return;
    uint64_t id = random_range(w), node = 0, hint = 0;
    range_replica *rep = id != 0 ? driver_target(w, id, &node) : NULL;
    range_descriptor d;
    if (rep == NULL || range_replica_descriptor(rep, &d) != RANGE_OK)
        return;
    uint64_t target = d.n_replicas > 0 ? d.replicas[rnd_int(w, (int)d.n_replicas)] : 0;
    range_descriptor_free(&d);
    if (target == 0 || target == node)
        return;
    int rc = range_replica_transfer_lease(rep, target, &hint);
    TRACE(w, "transfer r%llu at n%llu to n%llu: %d", (unsigned long long)id,
          (unsigned long long)node, (unsigned long long)target, rc);
    if (rc == RANGE_OK) {
        total.transfers++;
        w->lh[id] = target;
    } else {
        /* INVALID: a learner or a member removed meanwhile (the applied
        ** descriptor lags the latest configuration) */
        CHECK(rc == RANGE_ERR_NOT_LEADER || rc == RANGE_ERR_BUSY || rc == RANGE_ERR_INVALID,
              "transfer: %d", rc);
        w->lh[id] = hint;
    }
    w->dirty |= 1u << node;
    settle(w);
}

static void on_change(void *ctx, int rc)
{
    world *w = ctx;
    (void)rc; /* whatever happened, the next step looks at the configuration again */
    w->change_waiting = false;
}

/* One step of the replica change in progress, or the start of a new one
** (may_start; else only a learner left behind by an abandoned change is
** taken care of). */
static void change_step(world *w, bool may_start)
{
    if (w->change_waiting && w->tick - w->change_since > 100)
        w->change_waiting = false; /* the waiter may still run: it only clears this */
    if (w->change_waiting)
        return;
    if (w->change_kind != 0 && w->merged[w->change_range])
        w->change_kind = 0; /* the range merged away meanwhile */
    if (w->change_kind != 0 && w->tick - w->change_started > 600) {
        w->change_kind = 0; /* stuck (a learner on a node down): another one later */
        total.changes_abandoned++;
    }
    if (w->change_kind == 0) {
        uint64_t id = random_range(w), node = 0;
        raft_membership latest;
        range_replica *rep = id != 0 ? driver_target(w, id, &node) : NULL;
        if (rep == NULL || range_replica_membership(rep, NULL, &latest) != RANGE_OK)
            return;
        if (latest.n_learners > 0) { /* finish what an abandoned change began */
            w->change_kind = 1;
            w->change_node = latest.learners[0];
        } else if (!may_start || !chance(w, 15000)) {
            return;
        } else if (latest.n_voters >= 4) {
            w->change_kind = 2; /* one goes, maybe the leader */
            w->change_node = latest.voters[rnd_int(w, (int)latest.n_voters)];
        } else {
            uint64_t out[NODES];
            int n_out = 0;
            for (uint64_t i = 1; i <= NODES; i++)
                if (!raft_membership_is_voter(&latest, i))
                    out[n_out++] = i;
            if (n_out == 0)
                return;
            w->change_kind = 1; /* a node outside comes in */
            w->change_node = out[rnd_int(w, n_out)];
        }
        w->change_range = id;
        w->change_started = w->tick;
    }
    uint64_t node = 0, hint = 0;
    bool done = false;
    range_replica *rep = driver_target(w, w->change_range, &node);
    if (rep == NULL)
        return;
    w->change_waiting = true;
    w->change_since = w->tick;
    int rc = range_replica_change_replicas(
        rep, w->change_kind == 1 ? RANGE_REPLICA_ADD : RANGE_REPLICA_REMOVE, w->change_node,
        on_change, w, &hint, &done);
    TRACE(w, "change r%llu at n%llu: %s n%llu: %d (done %d, hint n%llu)",
          (unsigned long long)w->change_range, (unsigned long long)node,
          w->change_kind == 1 ? "add" : "remove", (unsigned long long)w->change_node, rc, done,
          (unsigned long long)hint);
    if (rc != RANGE_OK || done)
        w->change_waiting = false;
    if (rc == RANGE_OK && !done) {
        total.change_steps++;
        w->lh[w->change_range] = node;
    }
    if (rc == RANGE_OK && done) {
        total.changes++;
        w->change_kind = 0;
    } else if (rc == RANGE_ERR_NOT_LEADER) {
        w->lh[w->change_range] = hint;
    } else if (rc == RANGE_ERR_INVALID) {
        w->change_kind = 0; /* e.g. the last voter: another change next time */
    } else {
        CHECK(rc == RANGE_OK || rc == RANGE_ERR_BUSY, "change step: %d", rc);
    }
    w->dirty |= 1u << node;
    settle(w);
}


/* ---- the driver: merges ------------------------------------------------------------ */

static world *running; /* the seed in progress (merge callbacks find it here) */

#define MERGE_WAIT_TICKS 200   /* a proposal's callback, at most (then: as AMBIGUOUS) */
#define MERGE_PHASE_TICKS 400  /* waiting for R's voters / L's leader, at most */
#define MERGE_WATCHDOG_TICKS 40

/* ctx: the attempt number (a stale callback finds a newer attempt). */
static void on_merge_entry(void *ctx, int rc)
{
    world *w = running;
    CHECK(rc == RANGE_OK || rc == RANGE_ERR_DROPPED || rc == RANGE_ERR_AMBIGUOUS,
          "merge entry result %d", rc);
    if (w == NULL || !w->merge_waiting || (uint64_t)(uintptr_t)ctx != w->merge_attempt)
        return;
    w->merge_waiting = false;
    w->merge_rc = rc;
}

static void merge_phase_set(world *w, merge_phase p)
{
    TRACE(w, "merge %llu (r%llu into r%llu): phase %d -> %d", (unsigned long long)w->merge_id,
          (unsigned long long)w->merge_right, (unsigned long long)w->merge_left, w->mphase, p);
    if (p == MERGE_IDLE && w->has_right_desc) {
        range_descriptor_free(&w->merge_right_desc);
        w->has_right_desc = false;
    }
    w->mphase = p;
    w->merge_proposed = false;
    w->merge_waiting = false;
    w->merge_phase_since = w->tick;
}

/* The outcome of a proposal call: waiting for its callback, or not sent. */
static void merge_sent(world *w, int rc, uint64_t range, uint64_t node, uint64_t hint,
                       const char *what)
{
    TRACE(w, "merge %llu: %s at n%llu r%llu: %d", (unsigned long long)w->merge_id, what,
          (unsigned long long)node, (unsigned long long)range, rc);
    if (rc == RANGE_OK) {
        w->merge_proposed = true;
        w->merge_waiting = true;
        w->merge_since = w->tick;
        w->merge_node = node;
        w->lh[range] = node;
    } else {
        CHECK(rc == RANGE_ERR_NOT_LEADER || rc == RANGE_ERR_BUSY || rc == RANGE_ERR_DROPPED,
              "merge %s: %d", what, rc);
        w->lh[range] = hint;
    }
    w->dirty |= 1u << node;
    settle(w);
}

/* The frozen state of node's replica of r (merge id 0: none or no replica). */
static uint64_t frozen_at(world *w, uint64_t node, uint64_t r, uint64_t *index,
                          uint64_t *lineage, uint64_t *applied)
{
    uint64_t mid = 0, left = 0, fi = 0, fl = 0;
    range_replica *rep = usable(w, node) ? range_node_replica(w->nodes[node].rn, r) : NULL;
    range_replica_status st;
    *applied = 0;
    if (rep == NULL || replica__frozen(rep, &mid, &left, &fi, &fl) != RANGE_OK)
        return 0;
    range_replica_get_status(rep, &st);
    *applied = st.applied;
    if (index != NULL)
        *index = fi;
    if (lineage != NULL)
        *lineage = fl;
    return mid;
}

/* Start a merge of a random range R into the range ending at its start. */
static void merge_start(world *w)
{
    uint64_t rid = random_range(w), rnode = 0, lnode = 0;
    range_replica *rrep = rid != 0 ? driver_target(w, rid, &rnode) : NULL;
    range_descriptor rd, ld;
    if (rrep == NULL || range_replica_descriptor(rrep, &rd) != RANGE_OK)
        return;
    uint64_t lid = 0;
    for (uint64_t r = 1; r < RIDS && lid == 0 && rd.start_len > 0; r++) {
        range_replica *lrep = w->exists[r] && !w->merged[r] && r != rid
                                  ? driver_target(w, r, &lnode)
                                  : NULL;
        if (lrep == NULL || range_replica_descriptor(lrep, &ld) != RANGE_OK)
            continue;
        bool same = ld.n_replicas == rd.n_replicas;
        for (size_t i = 0; same && i < ld.n_replicas; i++) {
            bool found = false;
            for (size_t k = 0; k < rd.n_replicas; k++)
                found = found || ld.replicas[i] == rd.replicas[k];
            same = found;
        }
        if (same && ld.end_len > 0 &&
            key_cmp(ld.end_key, ld.end_len, rd.start_key, rd.start_len) == 0)
            lid = r;
        range_descriptor_free(&ld);
    }
    uint64_t applied = 0, mid = 0, fi, fl;
    bool busy = true, learners = true;
    if (lid != 0)
        mid = frozen_at(w, rnode, rid, &fi, &fl, &applied);
    if (lid == 0 || mid != 0 || rd.start_len >= sizeof(w->merge_b) ||
        replica__merge_readiness(rrep, &applied, &busy, &learners) != RANGE_OK || busy ||
        learners) {
        range_descriptor_free(&rd);
        return;
    }
    w->merge_id = ++w->next_merge_id * 0x9e3779b97f4a7c15ULL ^ w->seed; /* random-looking */
    if (w->merge_id == 0)
        w->merge_id = 1;
    w->merge_left = lid;
    w->merge_right = rid;
    w->merge_right_gen = rd.generation;
    memcpy(w->merge_b, rd.start_key, rd.start_len);
    w->merge_b_len = rd.start_len;
    w->merge_freeze_sent = false;
    range_descriptor_free(&rd);
    total.merges_started++;
    merge_phase_set(w, MERGE_FREEZING);
}

static void merge_learned_merged(world *w)
{
    TRACE(w, "merge %llu: r%llu merged into r%llu", (unsigned long long)w->merge_id,
          (unsigned long long)w->merge_right, (unsigned long long)w->merge_left);
    w->merged[w->merge_right] = true;
    total.merges++;
    merge_phase_set(w, MERGE_IDLE);
}

/* Every voter of R applied its freeze (WAIT_APPLIED; the simulated engine
** needs no sync). */
static bool merge_right_applied(world *w)
{
    for (size_t i = 0; i < w->merge_right_desc.n_replicas; i++) {
        uint64_t node = w->merge_right_desc.replicas[i], applied = 0;
        if (frozen_at(w, node, w->merge_right, NULL, NULL, &applied) != w->merge_id ||
            applied < w->merge_freeze_index)
            return false;
    }
    return true;
}

/* The watchdog (server/'s, for a range frozen too long): any frozen range
** while no merge runs is abandoned (FENCE, then UNFREEZE unless merged). */
static void merge_watchdog(world *w)
{
    if (w->tick % MERGE_WATCHDOG_TICKS != 0)
        return;
    for (uint64_t r = 1; r < RIDS; r++) {
        uint64_t node = 0, applied = 0;
        if (!w->exists[r] || w->merged[r] || driver_target(w, r, &node) == NULL)
            continue;
        uint64_t mid = frozen_at(w, node, r, NULL, NULL, &applied);
        range_replica *rep = range_node_replica(w->nodes[node].rn, r);
        range_descriptor d;
        if (mid == 0 || rep == NULL || range_replica_descriptor(rep, &d) != RANGE_OK)
            continue;
        if (d.start_len > 0 && d.start_len < sizeof(w->merge_b)) {
            total.watchdog_runs++;
            w->merge_id = mid;
            w->merge_right = r;
            w->merge_left = 0;
            memcpy(w->merge_b, d.start_key, d.start_len);
            w->merge_b_len = d.start_len;
            merge_phase_set(w, MERGE_FENCING);
            range_descriptor_free(&d);
            return;
        }
        range_descriptor_free(&d);
    }
}

/* The range holding the key just below R's start: ending at it (or
** holding it: then the merge happened). */
static range_replica *merge_fence_target(world *w, uint64_t *range, uint64_t *node)
{
    const uint8_t *b = (const uint8_t *)w->merge_b;
    for (uint64_t r = 1; r < RIDS; r++) {
        range_replica *rep = w->exists[r] && !w->merged[r] && r != w->merge_right
                                 ? driver_target(w, r, node)
                                 : NULL;
        range_descriptor d;
        if (rep == NULL || range_replica_descriptor(rep, &d) != RANGE_OK)
            continue;
        bool below = (d.end_len > 0 && key_cmp(d.end_key, d.end_len, b, w->merge_b_len) == 0) ||
                     (range_descriptor_contains(&d, b, w->merge_b_len) &&
                      key_cmp(d.start_key, d.start_len, b, w->merge_b_len) < 0);
        range_descriptor_free(&d);
        if (below) {
            *range = r;
            return rep;
        }
    }
    return NULL;
}

static void merge_step(world *w, bool may_start)
{
    uint64_t node = 0, hint = 0, range = 0;
    if (w->merge_waiting && w->tick - w->merge_since > MERGE_WAIT_TICKS) {
        w->merge_waiting = false; /* the callback may still come: a stale attempt then */
        w->merge_rc = RANGE_ERR_AMBIGUOUS;
    }
    if (w->merge_waiting)
        return;
    bool result = w->merge_proposed; /* a proposal's callback came (or timed out) */
    int rc = w->merge_rc;
    w->merge_proposed = false;
    if (result)
        w->merge_attempt++; /* its late callback, if any, is stale */
    switch (w->mphase) {
    case MERGE_IDLE:
        if (may_start && chance(w, 15000))
            merge_start(w);
        else
            merge_watchdog(w);
        return;
    case MERGE_FREEZING: {
        if (result) {
            uint64_t applied = 0, fi = 0, fl = 0;
            range_replica *rep = usable(w, w->merge_node)
                                     ? range_node_replica(w->nodes[w->merge_node].rn,
                                                          w->merge_right)
                                     : NULL;
            if (rc == RANGE_OK &&
                frozen_at(w, w->merge_node, w->merge_right, &fi, &fl, &applied) ==
                    w->merge_id &&
                range_replica_descriptor(rep, &w->merge_right_desc) == RANGE_OK) {
                w->has_right_desc = true;
                w->merge_freeze_index = fi;
                w->merge_freeze_lineage = fl;
                merge_phase_set(w, MERGE_WAIT_APPLIED);
            } else {
                merge_phase_set(w, MERGE_FENCING);
            }
            return;
        }
        if (w->tick - w->merge_phase_since > MERGE_PHASE_TICKS) {
            merge_phase_set(w, w->merge_freeze_sent ? MERGE_FENCING : MERGE_IDLE);
            return;
        }
        range_replica *rep = driver_target(w, w->merge_right, &node);
        if (rep == NULL)
            return;
        int prc = replica__propose_freeze(rep, w->merge_id, w->merge_left, w->merge_right_gen, 0,
                                          on_merge_entry,
                                          (void *)(uintptr_t)(w->merge_attempt + 1), &hint);
        if (prc == RANGE_OK) {
            w->merge_attempt++;
            w->merge_freeze_sent = true;
        }
        merge_sent(w, prc, w->merge_right, node, hint, "freeze");
        return;
    }
    case MERGE_WAIT_APPLIED:
        if (merge_right_applied(w)) {
            /* sometimes the orchestrator gives up here instead, or dies
            ** (R stays frozen: the watchdog abandons it) */
            int pick = rnd_int(w, 10);
            if (pick == 0)
                total.merges_died++;
            merge_phase_set(w, pick == 0 ? MERGE_IDLE : pick <= 2 ? MERGE_FENCING : MERGE_MERGING);
        } else if (w->tick - w->merge_phase_since > MERGE_PHASE_TICKS) {
            merge_phase_set(w, MERGE_FENCING);
        }
        return;
    case MERGE_MERGING: {
        if (result) {
            if (rc == RANGE_OK)
                merge_learned_merged(w);
            else
                merge_phase_set(w, MERGE_FENCING);
            return;
        }
        if (w->tick - w->merge_phase_since > MERGE_PHASE_TICKS) {
            merge_phase_set(w, MERGE_FENCING);
            return;
        }
        /* a crash in the middle */
        if (chance(w, 50000)) {
            uint64_t id = (uint64_t)rnd_int(w, NODES) + 1;
            bool any_down = false;
            for (uint64_t i = 1; i <= NODES; i++)
                any_down = any_down || !w->nodes[i].up;
            if (!any_down && !w->nodes[id].paused && w->new_ops) {
                crash_node(w, id, true);
                w->nodes[id].down_until = w->tick + 20 + rnd_int(w, 100);
                total.merge_crashes++;
            }
        }
        range_replica *rep = driver_target(w, w->merge_left, &node);
        range_descriptor ld;
        uint64_t applied;
        bool busy = true, learners = true;
        if (rep == NULL || range_replica_descriptor(rep, &ld) != RANGE_OK)
            return;
        bool fits = ld.end_len == w->merge_b_len &&
                    memcmp(ld.end_key, w->merge_b, w->merge_b_len) == 0 &&
                    ld.n_replicas == w->merge_right_desc.n_replicas;
        for (size_t i = 0; fits && i < ld.n_replicas; i++) {
            bool found = false;
            for (size_t k = 0; k < w->merge_right_desc.n_replicas; k++)
                found = found || ld.replicas[i] == w->merge_right_desc.replicas[k];
            fits = found;
        }
        if (fits && replica__merge_readiness(rep, &applied, &busy, &learners) == RANGE_OK &&
            learners)
            fits = false;
        if (!fits) {
            range_descriptor_free(&ld);
            merge_phase_set(w, MERGE_FENCING);
            return;
        }
        int prc = replica__propose_merge(rep, w->merge_id, ld.generation, &w->merge_right_desc,
                                         w->merge_freeze_index, w->merge_freeze_lineage,
                                         (hlc_timestamp){1000, 0}, 0, on_merge_entry,
                                         (void *)(uintptr_t)(w->merge_attempt + 1), &hint);
        if (prc == RANGE_OK)
            w->merge_attempt++;
        range_descriptor_free(&ld);
        merge_sent(w, prc, w->merge_left, node, hint, "merge");
        if (prc == RANGE_OK && rnd_int(w, 4) == 0) {
            /* the orchestrator's wait ends first (a timeout): it abandons
            ** while the MERGE may still apply; the fence decides */
            w->merge_attempt++;
            merge_phase_set(w, MERGE_FENCING);
        }
        return;
    }
    case MERGE_FENCING: {
        if (result && rc == RANGE_OK) {
            range_replica *rep = usable(w, w->merge_node)
                                     ? range_node_replica(w->nodes[w->merge_node].rn,
                                                          w->merge_left)
                                     : NULL;
            range_descriptor d;
            if (rep != NULL && range_replica_descriptor(rep, &d) == RANGE_OK) {
                /* merged iff the span holds b, or the merge applied in its
                ** lineage (L split again at b since: seed 3471) */
                bool holds = range_descriptor_contains(&d, (const uint8_t *)w->merge_b,
                                                       w->merge_b_len),
                     applied = false;
                range_descriptor_free(&d);
                CHECK(replica__merge_applied(rep, w->merge_id, &applied) == RANGE_OK,
                      "merge_applied");
                holds = holds || applied;
                total.fences++;
                if (holds)
                    total.merges_late++;
                if (holds)
                    merge_learned_merged(w);
                else
                    merge_phase_set(w, MERGE_UNFREEZING);
                return;
            }
        }
        range_replica *rep = merge_fence_target(w, &range, &node);
        if (rep == NULL)
            return;
        w->merge_left = range; /* whatever holds the key below b now */
        int prc = replica__propose_fence(rep, w->merge_id, w->merge_right, 0, on_merge_entry,
                                         (void *)(uintptr_t)(w->merge_attempt + 1), &hint);
        if (prc == RANGE_OK)
            w->merge_attempt++;
        merge_sent(w, prc, range, node, hint, "fence");
        return;
    }
    case MERGE_UNFREEZING: {
        if (result) {
            uint64_t applied = 0;
            if (rc == RANGE_OK ||
                (rc == RANGE_ERR_DROPPED &&
                 frozen_at(w, w->merge_node, w->merge_right, NULL, NULL, &applied) !=
                     w->merge_id)) {
                total.unfreezes += rc == RANGE_OK;
                total.merges_abandoned++;
                merge_phase_set(w, MERGE_IDLE);
                return;
            }
        }
        range_replica *rep = driver_target(w, w->merge_right, &node);
        if (rep == NULL)
            return;
        int prc = replica__propose_unfreeze(rep, w->merge_id, 0, on_merge_entry,
                                            (void *)(uintptr_t)(w->merge_attempt + 1), &hint);
        if (prc == RANGE_OK)
            w->merge_attempt++;
        merge_sent(w, prc, w->merge_right, node, hint, "unfreeze");
        return;
    }
    }
}

/* ---- faults ---------------------------------------------------------------------- */

/* Bad bytes from a peer: dropped by the node, never a crash, never a
** state change (a random body behind a wrong version byte, a strict
** prefix of a valid message). */
static void inject_garbage(world *w)
{
    uint8_t junk[64];
    size_t len = 1 + (size_t)rnd_int(w, (int)sizeof(junk));
    rpc_node_id from = (rpc_node_id)rnd_int(w, NODES) + 1;
    rpc_node_id to = from % NODES + 1;
    if (rnd_int(w, 2) == 0) {
        for (size_t i = 0; i < len; i++)
            junk[i] = (uint8_t)rnd(w);
        junk[0] = 0xee; /* no codec version */
    } else {
        raft_entry e = {.term = 1, .index = 5, .type = RAFT_ENTRY_NORMAL,
                        .data = (uint8_t *)"xyz", .len = 3};
        raft_message m = {.type = RAFT_MSG_APPEND, .from = from, .to = to, .term = 1,
                          .index = 4, .log_term = 1, .entries = &e, .n_entries = 1};
        base_buf b = {0};
        assert_int_equal(range_raft_msg_encode(1, &m, &b), RANGE_OK);
        len = 1 + (size_t)rnd_int(w, (int)b.len - 1); /* strict prefix */
        assert_true(len < b.len && len <= sizeof(junk));
        memcpy(junk, b.data, len);
        base_buf_free(&b);
    }
    (void)rpc_send(w->nodes[from].t, to, RANGE_RPC_METHOD_RAFT, junk, len);
    total.garbage++;
}

static void faults_step(world *w)
{
    int down = 0, paused = 0;
    for (uint64_t i = 1; i <= NODES; i++) {
        sim_node *n = &w->nodes[i];
        if (!n->up && w->tick >= n->down_until)
            start_node(w, i);
        if (n->paused && w->tick >= n->paused_until)
            resume_node(w, i);
        down += !n->up;
        paused += n->paused;
    }
    /* crash: at most one node down at a time */
    if (down == 0 && chance(w, 4000)) {
        uint64_t id = (uint64_t)rnd_int(w, NODES) + 1;
        if (w->nodes[id].paused)
            resume_node(w, id);
        crash_node(w, id, true);
        w->nodes[id].down_until = w->tick + 20 + rnd_int(w, 150);
    }
    /* pause (SIGSTOP), at most one node */
    bool changed = false;
    if (paused == 0 && chance(w, 4000)) {
        uint64_t id = (uint64_t)rnd_int(w, NODES) + 1;
        if (w->nodes[id].up) {
            w->nodes[id].paused = true;
            w->nodes[id].paused_until = w->tick + 20 + rnd_int(w, 150);
            w->nodes[id].missed_ticks = 0;
            total.pauses++;
            TRACE(w, "n%llu paused", (unsigned long long)id);
            changed = true;
        }
    }
    if (w->isolated != 0 && w->tick >= w->isolated_until) {
        w->isolated = 0;
        changed = true;
    }
    if (w->isolated == 0 && chance(w, 3000)) {
        w->isolated = rnd_int(w, NODES) + 1;
        w->isolated_until = w->tick + 20 + rnd_int(w, 200);
        total.isolations++;
        TRACE(w, "n%d isolated", w->isolated);
        changed = true;
    }
    if (w->oneway_from != 0 && w->tick >= w->oneway_until) {
        w->oneway_from = 0;
        changed = true;
    }
    if (w->oneway_from == 0 && chance(w, 3000)) {
        w->oneway_from = rnd_int(w, NODES) + 1;
        w->oneway_to = (w->oneway_from + rnd_int(w, NODES - 1)) % NODES + 1;
        w->oneway_until = w->tick + 20 + rnd_int(w, 200);
        total.oneways++;
        TRACE(w, "n%d -> n%d cut", w->oneway_from, w->oneway_to);
        changed = true;
    }
    if (w->minority != 0 && w->tick >= w->minority_until) {
        w->minority = 0;
        changed = true;
    }
    if (w->minority == 0 && chance(w, 2000)) {
        int a = rnd_int(w, NODES) + 1, b = (a + rnd_int(w, NODES - 1)) % NODES + 1;
        w->minority = (1u << a) | (1u << b);
        w->minority_until = w->tick + 20 + rnd_int(w, 200);
        total.minorities++;
        TRACE(w, "n%d and n%d cut off", a, b);
        changed = true;
    }
    if (changed) {
        TRACE(w, "partitions: isolated n%d, one-way n%d -> n%d, minority %#x", w->isolated,
              w->oneway_from, w->oneway_to, w->minority);
        apply_partitions(w);
    }
    if (chance(w, 3000))
        inject_garbage(w);
    if (!w->probe.pending && !w->probe.ready && chance(w, 30000)) {
        uint64_t id = random_range(w), node = 0;
        if (id != 0 && driver_target(w, id, &node) != NULL)
            issue_probe(w, node, id, rnd_int(w, 2) == 0);
    }
}

/* ---- time ------------------------------------------------------------------------ */

static void tick_node(world *w, uint64_t i)
{
    sim_node *n = &w->nodes[i];
    n->next_tick_local += TICK_NS;
    if (!n->up)
        return;
    if (n->paused) {
        n->missed_ticks++;
        return;
    }
    node_tick(n, 1);
    w->dirty |= 1u << i;
    settle(w);
}

/* Run the network and every node's ticks (each by its own clock) up to
** real time t_end. */
static void run_to(world *w, int64_t t_end)
{
    for (;;) {
        int64_t best = t_end;
        uint64_t who = 0;
        for (uint64_t i = 1; i <= NODES; i++) {
            int64_t at = real_at(&w->nodes[i], w->nodes[i].next_tick_local);
            if (at <= best) {
                best = at;
                who = i;
            }
        }
        if (best > rpc_sim_now_ns(w->net))
            rpc_sim_run_until(w->net, best);
        settle(w);
        if (who == 0)
            return;
        tick_node(w, who);
    }
}

static void check_ranges(world *w);

/* One driver tick of real time: the network and the nodes' ticks, the
** syncers, then the invariants over every hosted replica. */
static void advance(world *w)
{
    w->tick++;
    run_to(w, (int64_t)w->tick * TICK_NS);
    for (uint64_t i = 1; i <= NODES; i++) {
        sim_node *n = &w->nodes[i];
        if (!n->up || n->paused || !chance(w, w->sync_per_million))
            continue;
        CHECK(range_node_sync_log(n->rn) == RANGE_OK, "n%llu log sync failed",
              (unsigned long long)i);
        sim_log_record(&n->files);
        total.syncs++;
        w->dirty |= 1u << i;
        settle(w);
    }
    check_ranges(w);
}

/* ---- invariants over every hosted replica (every tick) -------------------------- */

typedef struct seen_desc {
    uint64_t node;
    range_descriptor d; /* owned */
} seen_desc;

/* The life of node i's replica of r ended (removed): its applied index
** starts over, and the writes of its span may apply there again (its data
** went, unless another replica here still covers it: then we only lose
** sight of a double application, never report a false one). */
static void life_ended(sim_node *n, uint64_t r, const bool now[RIDS])
{
    world *w = n->w;
    n->hosted[r] = false;
    n->applied_seen[r] = 0;
    n->observed_index[r] = 0;
    for (int i = 0; i < w->n_ops; i++) {
        if (n->applied_in[i] == 0 || !desc_has_key(&n->last_desc[r], w->ops[i].key))
            continue;
        /* still covered by a replica here (a merge: the left took the span,
        ** data and records; a write re-proposed there must not apply again):
        ** the data stayed */
        bool covered = false;
        for (uint64_t o = 1; o < RIDS && !covered; o++)
            covered = o != r && now[o] && desc_has_key(&n->last_desc[o], w->ops[i].key);
        if (!covered)
            n->applied_in[i] = 0;
    }
    range_descriptor_free(&n->last_desc[r]);
}

static void check_ranges(world *w)
{
    seen_desc *all = calloc((size_t)NODES * RIDS, sizeof(*all));
    size_t n_all = 0;
    assert_non_null(all);
    for (uint64_t i = 1; i <= NODES; i++) {
        sim_node *n = &w->nodes[i];
        bool now[RIDS] = {false};
        uint64_t ids[RIDS];
        if (!n->up)
            continue;
        size_t k = range_node_replica_ids(n->rn, ids, RIDS);
        for (size_t j = 0; j < k && j < RIDS; j++) {
            uint64_t r = ids[j];
            range_replica *rep = range_node_replica(n->rn, r);
            range_replica_status st;
            raft_membership applied;
            range_descriptor d;
            if (rep == NULL || range_replica_descriptor(rep, &d) != RANGE_OK)
                continue;
            CHECK(range_replica_membership(rep, &applied, NULL) == RANGE_OK,
                  "n%llu r%llu: a descriptor but no membership", (unsigned long long)i,
                  (unsigned long long)r);
            range_replica_get_status(rep, &st);
            now[r] = true;
            if (!w->exists[r]) {
                w->born_tick[r] = w->tick;
                total.new_ranges += r != 1;
            }
            w->exists[r] = true;
            if (st.leader && !w->led[r]) {
                w->led[r] = true;
                if (r != 1) { /* made by a split */
                    uint64_t d = (uint64_t)(w->tick - w->born_tick[r]);
                    total.new_ranges_led++;
                    total.leader_delay_sum += d;
                    if (d > total.leader_delay_max)
                        total.leader_delay_max = d;
                    total.leader_delay[d < LEADER_DELAY_BUCKETS ? d : LEADER_DELAY_BUCKETS - 1]++;
                }
            }
            CHECK(d.range_id == r, "n%llu: replica of r%llu has the descriptor of r%llu",
                  (unsigned long long)i, (unsigned long long)r, (unsigned long long)d.range_id);
            /* applied never goes back within a life */
            CHECK(st.applied >= n->applied_seen[r], "n%llu r%llu applied %llu < seen %llu",
                  (unsigned long long)i, (unsigned long long)r, (unsigned long long)st.applied,
                  (unsigned long long)n->applied_seen[r]);
            n->applied_seen[r] = st.applied;
            /* the descriptor's replicas are the applied configuration's voters */
            uint64_t a[RANGE_REPLICAS_MAX], b[RAFT_MAX_VOTERS];
            bool same = d.n_replicas == applied.n_voters && d.n_replicas <= RANGE_REPLICAS_MAX;
            if (same) {
                sorted_ids(d.replicas, d.n_replicas, a);
                sorted_ids(applied.voters, applied.n_voters, b);
                same = memcmp(a, b, d.n_replicas * sizeof(*a)) == 0;
            }
            if (!same)
                desc_print("descriptor", &d);
            CHECK(same, "n%llu r%llu: descriptor replicas (%zu) are not the applied voters (%zu)",
                  (unsigned long long)i, (unsigned long long)r, d.n_replicas, applied.n_voters);
            /* one descriptor per (range, generation), forever */
            if (d.generation < GENS) {
                uint64_t h = desc_hash(&d);
                if (w->gen_hash[r][d.generation] == 0)
                    w->gen_hash[r][d.generation] = h;
                if (w->gen_hash[r][d.generation] != h)
                    desc_print("descriptor", &d);
                CHECK(w->gen_hash[r][d.generation] == h,
                      "n%llu r%llu: two descriptors of generation %llu", (unsigned long long)i,
                      (unsigned long long)r, (unsigned long long)d.generation);
            }
            range_descriptor_free(&n->last_desc[r]);
            assert_int_equal(range_descriptor_copy(&n->last_desc[r], &d), RANGE_OK);
            n->hosted[r] = true;
            all[n_all].node = i;
            all[n_all++].d = d;
        }
        for (uint64_t r = 1; r < RIDS; r++)
            if (n->hosted[r] && !now[r])
                life_ended(n, r, now);
    }
    /* descriptors of different ranges that overlap: one is stale (an
    ** ancestor's before its split), so their generations differ */
    for (size_t x = 0; x < n_all; x++)
        for (size_t y = x + 1; y < n_all; y++) {
            const range_descriptor *a = &all[x].d, *b = &all[y].d;
            if (a->range_id == b->range_id || !desc_overlap(a, b))
                continue;
            if (a->generation == b->generation) {
                desc_print("at node", a);
                desc_print("at node", b);
            }
            CHECK(a->generation != b->generation,
                  "n%llu r%llu and n%llu r%llu overlap at the same generation %llu",
                  (unsigned long long)all[x].node, (unsigned long long)a->range_id,
                  (unsigned long long)all[y].node, (unsigned long long)b->range_id,
                  (unsigned long long)a->generation);
        }
    size_t ranges = 0;
    for (uint64_t r = 1; r < RIDS; r++)
        ranges += w->exists[r] && !w->merged[r];
    if (ranges > total.ranges_max)
        total.ranges_max = ranges;
    for (size_t x = 0; x < n_all; x++)
        range_descriptor_free(&all[x].d);
    free(all);
}

/* ---- convergence and the final checks ------------------------------------------- */

/* The leader of range r, if exactly one node believes it leads. */
static uint64_t leader_of(world *w, uint64_t r)
{
    uint64_t leader = 0;
    int count = 0;
    for (uint64_t i = 1; i <= NODES; i++) {
        range_replica *rep = w->nodes[i].up ? range_node_replica(w->nodes[i].rn, r) : NULL;
        range_replica_status st;
        if (rep == NULL)
            continue;
        range_replica_get_status(rep, &st);
        if (st.leader) {
            leader = i;
            count++;
        }
    }
    return count == 1 ? leader : 0;
}

/* Range r settled: one leader, its configuration applied with no learner,
** every voter hosting it at the leader's applied index = last index. */
static bool range_settled(world *w, uint64_t r, raft_membership *members)
{
    uint64_t l = leader_of(w, r);
    raft_membership applied, latest;
    range_replica_status ls;
    if (l == 0)
        return false;
    range_replica *lrep = range_node_replica(w->nodes[l].rn, r);
    if (range_replica_membership(lrep, &applied, &latest) != RANGE_OK ||
        memcmp(&applied, &latest, sizeof(applied)) != 0 || applied.n_learners > 0)
        return false;
    range_replica_get_status(lrep, &ls);
    if (ls.applied != ls.last_index)
        return false;
    for (size_t v = 0; v < applied.n_voters; v++) {
        uint64_t i = applied.voters[v];
        range_replica *rep = i <= NODES && w->nodes[i].up ? range_node_replica(w->nodes[i].rn, r)
                                                          : NULL;
        range_replica_status st;
        if (rep == NULL)
            return false;
        range_replica_get_status(rep, &st);
        if (st.applied != ls.applied || st.last_index != ls.last_index)
            return false;
    }
    if (members != NULL)
        *members = applied;
    return true;
}

static bool converged(world *w)
{
    for (int i = 0; i < w->n_ops; i++)
        if ((w->ops[i].is_write && (!w->ops[i].done || w->ops[i].inflight > 0)) ||
            w->ops[i].read_waiting)
            return false;
    if (w->change_kind != 0 || w->mphase != MERGE_IDLE)
        return false;
    for (uint64_t r = 1; r < RIDS; r++)
        if (w->exists[r] && !w->merged[r] && !range_settled(w, r, NULL))
            return false;
    /* no frozen range is left (the watchdog abandons them), and a merged
    ** range is hosted nowhere (its left applied the merge everywhere) */
    for (uint64_t r = 1; r < RIDS; r++) {
        for (uint64_t i = 1; i <= NODES && w->exists[r]; i++) {
            uint64_t applied = 0;
            range_replica *rep = range_node_replica(w->nodes[i].rn, r);
            if (w->merged[r] ? rep != NULL : frozen_at(w, i, r, NULL, NULL, &applied) != 0)
                return false;
        }
    }
    return true;
}

static void dump(world *w)
{
    fprintf(stderr, "merge phase %d (merge %llu of r%llu into r%llu)\n", w->mphase,
            (unsigned long long)w->merge_id, (unsigned long long)w->merge_right,
            (unsigned long long)w->merge_left);
    for (uint64_t r = 1; r < RIDS; r++) {
        if (!w->exists[r])
            continue;
        fprintf(stderr, "r%llu%s:\n", (unsigned long long)r, w->merged[r] ? " (merged)" : "");
        for (uint64_t i = 1; i <= NODES; i++) {
            range_replica *rep = w->nodes[i].up ? range_node_replica(w->nodes[i].rn, r) : NULL;
            range_replica_status st;
            raft_membership applied, latest;
            range_descriptor d;
            if (rep == NULL)
                continue;
            range_replica_get_status(rep, &st);
            memset(&applied, 0, sizeof(applied));
            memset(&latest, 0, sizeof(latest));
            range_replica_membership(rep, &applied, &latest);
            fprintf(stderr, "  n%llu: leader %d (knows n%llu) term %llu commit %llu applied %llu "
                    "log [%llu, %llu] voters %zu/%zu learners %zu/%zu lease %d\n",
                    (unsigned long long)i, st.leader, (unsigned long long)st.leader_id,
                    (unsigned long long)st.term, (unsigned long long)st.commit,
                    (unsigned long long)st.applied, (unsigned long long)st.first_index,
                    (unsigned long long)st.last_index, applied.n_voters, latest.n_voters,
                    applied.n_learners, latest.n_learners, st.lease_valid);
            uint64_t fa = 0, mid = frozen_at(w, i, r, NULL, NULL, &fa);
            if (mid != 0)
                fprintf(stderr, "    frozen by merge %llu\n", (unsigned long long)mid);
            if (range_replica_descriptor(rep, &d) == RANGE_OK) {
                desc_print("  ", &d);
                range_descriptor_free(&d);
            }
        }
    }
}

static uint64_t span_hash(storage_engine *e, const range_descriptor *d, uint64_t *versions)
{
    storage_iter_options o = {.start = d->start_key, .start_len = d->start_len,
                              .end = d->end_key, .end_len = d->end_len,
                              .mode = STORAGE_ITER_ALL_VERSIONS};
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

/* Every version of d's span in e (a failure's context). */
static void span_dump(const char *what, storage_engine *e, const range_descriptor *d)
{
    storage_iter_options o = {.start = d->start_key, .start_len = d->start_len,
                              .end = d->end_key, .end_len = d->end_len,
                              .mode = STORAGE_ITER_ALL_VERSIONS};
    storage_iter *it;
    const uint8_t *k, *v;
    size_t kl, vl;
    hlc_timestamp ts;
    bool tomb;
    fprintf(stderr, "  %s:", what);
    assert_int_equal(storage_iter_open(e, NULL, &o, &it), STORAGE_OK);
    while (storage_iter_next(it, &k, &kl, &ts, &v, &vl, &tomb) == 1)
        fprintf(stderr, " %.*s@%lld=%.*s", (int)kl, (const char *)k, (long long)ts.wall_ns,
                tomb ? 1 : (int)vl, tomb ? "-" : (const char *)v);
    storage_iter_close(it);
    fprintf(stderr, "\n");
}

/* Every MVCC key node i holds lies in a range it hosts and is a member of. */
static bool holds_only_own(world *w, uint64_t i, bool verbose)
{
    sim_node *n = &w->nodes[i];
    range_descriptor mine[RIDS];
    size_t n_mine = 0;
    uint64_t ids[RIDS];
    bool ok = true;
    size_t k = range_node_replica_ids(n->rn, ids, RIDS);
    for (size_t j = 0; j < k && j < RIDS; j++) {
        range_replica *rep = range_node_replica(n->rn, ids[j]);
        if (rep == NULL || range_replica_descriptor(rep, &mine[n_mine]) != RANGE_OK)
            continue;
        bool member = false;
        for (size_t m = 0; m < mine[n_mine].n_replicas; m++)
            member = member || mine[n_mine].replicas[m] == i;
        if (verbose && !member)
            desc_print("hosted by a node it does not name:", &mine[n_mine]);
        if (member)
            n_mine++;
        else
            range_descriptor_free(&mine[n_mine]);
    }
    ok = n_mine == k;
    storage_iter_options o = {.mode = STORAGE_ITER_ALL_VERSIONS};
    storage_iter *it;
    const uint8_t *key;
    size_t kl;
    assert_int_equal(storage_iter_open(n->engine, NULL, &o, &it), STORAGE_OK);
    while (ok && storage_iter_next(it, &key, &kl, NULL, NULL, NULL, NULL) == 1) {
        bool covered = false;
        for (size_t m = 0; m < n_mine && !covered; m++)
            covered = range_descriptor_contains(&mine[m], key, kl);
        if (verbose && !covered)
            fprintf(stderr, "  n%llu holds %.*s outside its ranges\n", (unsigned long long)i,
                    (int)kl, (const char *)key);
        ok = covered;
    }
    storage_iter_close(it);
    for (size_t m = 0; m < n_mine; m++)
        range_descriptor_free(&mine[m]);
    return ok;
}

static void on_final_read(void *ctx, int rc)
{
    world *w = ctx;
    w->final_read_rc = rc;
}

/* A read barrier at r's leader; true when it completed OK (a transfer
** still running may move the leader first: bounded by ticks). */
static bool final_barrier(world *w, uint64_t r, bool allow_lease)
{
    for (int start = w->tick; w->tick - start < 2000;) {
        uint64_t l = leader_of(w, r), hint;
        if (l == 0) {
            advance(w);
            continue;
        }
        range_replica *rep = range_node_replica(w->nodes[l].rn, r);
        w->final_read_rc = 1;
        int rc = range_replica_read(rep, allow_lease, on_final_read, w, &hint);
        if (rc != RANGE_OK) {
            TRACE(w, "final barrier r%llu at n%llu (lease %d): %d", (unsigned long long)r,
                  (unsigned long long)l, allow_lease, rc);
            advance(w);
            continue;
        }
        /* the callback runs once (at the latest at its deadline) */
        for (int i = 0; i < 1000 && w->final_read_rc == 1; i++)
            advance(w);
        CHECK(w->final_read_rc != 1, "r%llu: read barrier never answered", (unsigned long long)r);
        TRACE(w, "final barrier r%llu at n%llu (lease %d): callback %d", (unsigned long long)r,
              (unsigned long long)l, allow_lease, w->final_read_rc);
        if (w->final_read_rc == RANGE_OK)
            return true;
    }
    return false;
}

/* The client history, judged per key by the register checker. */
static void check_history(world *w)
{
    base_buf text = {0};
    char line[200];
    size_t n = 0;
    for (int i = 0; i < w->n_ops; i++) {
        const sim_op *op = &w->ops[i];
        if (!op->done && !op->is_write)
            continue; /* a read that never completed: no effect */
        int len;
        if (op->is_write && op->done)
            len = snprintf(line, sizeof(line), "%d ok %lld %lld write %d %lld\n", op->client,
                           (long long)op->invoke_ns, (long long)op->complete_ns, op->key,
                           (long long)op->value);
        else if (op->is_write)
            len = snprintf(line, sizeof(line), "%d info %lld - write %d %lld\n", op->client,
                           (long long)op->invoke_ns, op->key, (long long)op->value);
        else if (op->value == CHAOS_NIL)
            len = snprintf(line, sizeof(line), "%d ok %lld %lld read %d nil\n", op->client,
                           (long long)op->invoke_ns, (long long)op->complete_ns, op->key);
        else
            len = snprintf(line, sizeof(line), "%d ok %lld %lld read %d %lld\n", op->client,
                           (long long)op->invoke_ns, (long long)op->complete_ns, op->key,
                           (long long)op->value);
        assert_true(len > 0 && (size_t)len < sizeof(line));
        assert_int_equal(base_buf_append(&text, line, (size_t)len), 0);
        n++;
    }
    total.history_ops += n;
    if (n == 0) {
        base_buf_free(&text);
        return;
    }
    chaos_history *h = NULL;
    chaos_result res;
    chaos_register_opts o = {.initial = CHAOS_NIL};
    char err[256] = "";
    memset(&res, 0, sizeof(res));
    int rc = chaos_history_parse((const char *)text.data, text.len, &h, err, sizeof(err));
    CHECK(rc == 0, "history: parse error %d: %s", rc, err);
    rc = chaos_check_register(h, &o, &res);
    CHECK(rc == 0, "history: register checker error %d", rc);
    if (res.verdict == CHAOS_INVALID && getenv("MERIDIAN_SIM_HISTORY") != NULL)
        fwrite(text.data, 1, text.len, stderr);
    CHECK(res.verdict != CHAOS_INVALID, "client history not linearizable:\n%s",
          res.report.data != NULL ? (const char *)res.report.data : "");
    if (res.verdict == CHAOS_UNKNOWN)
        total.keys_unknown++;
    chaos_result_free(&res);
    chaos_history_free(h);
    base_buf_free(&text);
}

static void final_checks(world *w)
{
    /* the newest descriptor of every range, from its members */
    range_descriptor newest[RIDS];
    raft_membership members[RIDS];
    size_t n_ranges = 0;
    memset(newest, 0, sizeof(newest));
    for (uint64_t r = 1; r < RIDS; r++) {
        if (!w->exists[r] || w->merged[r])
            continue;
        CHECK(range_settled(w, r, &members[r]), "r%llu not settled", (unsigned long long)r);
        uint64_t l = leader_of(w, r);
        assert_int_equal(range_replica_descriptor(range_node_replica(w->nodes[l].rn, r),
                                                  &newest[r]), RANGE_OK);
        n_ranges++;
        /* every member: the same descriptor and the same MVCC data in the span */
        uint64_t h0 = 0, v0 = 0;
        for (size_t m = 0; m < members[r].n_voters; m++) {
            uint64_t i = members[r].voters[m], versions;
            range_descriptor d;
            range_replica *rep = range_node_replica(w->nodes[i].rn, r);
            CHECK(rep != NULL && range_replica_descriptor(rep, &d) == RANGE_OK,
                  "member n%llu of r%llu has no replica", (unsigned long long)i,
                  (unsigned long long)r);
            CHECK(d.generation == newest[r].generation && desc_hash(&d) == desc_hash(&newest[r]),
                  "n%llu r%llu: descriptor generation %llu, the leader's %llu",
                  (unsigned long long)i, (unsigned long long)r,
                  (unsigned long long)d.generation, (unsigned long long)newest[r].generation);
            range_descriptor_free(&d);
            uint64_t h = span_hash(w->nodes[i].engine, &newest[r], &versions);
            if (m == 0) {
                h0 = h;
                v0 = versions;
            }
            if (h != h0 || versions != v0) {
                char a[16], b[16];
                snprintf(a, sizeof(a), "n%llu", (unsigned long long)members[r].voters[0]);
                snprintf(b, sizeof(b), "n%llu", (unsigned long long)i);
                span_dump(a, w->nodes[members[r].voters[0]].engine, &newest[r]);
                span_dump(b, w->nodes[i].engine, &newest[r]);
            }
            CHECK(h == h0 && versions == v0, "r%llu: n%llu MVCC data differs from n%llu's (%llu "
                  "vs %llu versions)", (unsigned long long)r, (unsigned long long)i,
                  (unsigned long long)members[r].voters[0], (unsigned long long)versions,
                  (unsigned long long)v0);
        }
        uint64_t sorted[RANGE_REPLICAS_MAX], vs[RAFT_MAX_VOTERS];
        sorted_ids(newest[r].replicas, newest[r].n_replicas, sorted);
        sorted_ids(members[r].voters, members[r].n_voters, vs);
        CHECK(newest[r].n_replicas == members[r].n_voters &&
                  memcmp(sorted, vs, members[r].n_voters * sizeof(*vs)) == 0,
              "r%llu: descriptor replicas are not its members", (unsigned long long)r);
    }
    total.ranges_end += n_ranges;
    /* the newest descriptors tile the key space: no gap, no overlap */
    const range_descriptor *order[RIDS];
    size_t n = 0;
    for (uint64_t r = 1; r < RIDS; r++)
        if (w->exists[r] && !w->merged[r])
            order[n++] = &newest[r];
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && key_cmp(order[j - 1]->start_key, order[j - 1]->start_len,
                                            order[j]->start_key, order[j]->start_len) > 0;
             j--) {
            const range_descriptor *t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    bool tiled = n > 0 && order[0]->start_len == 0 && order[n - 1]->end_len == 0;
    for (size_t i = 0; i + 1 < n && tiled; i++)
        tiled = order[i]->end_len > 0 &&
                key_cmp(order[i]->end_key, order[i]->end_len, order[i + 1]->start_key,
                        order[i + 1]->start_len) == 0;
    if (!tiled)
        for (size_t i = 0; i < n; i++)
            desc_print("newest", order[i]);
    CHECK(tiled, "the newest descriptors of %zu ranges do not tile the key space", n);
    /* every acknowledged write readable at its range's leader, after a
    ** lease read and a ReadIndex read */
    for (uint64_t r = 1; r < RIDS; r++) {
        if (!w->exists[r] || w->merged[r])
            continue;
        bool lease_ok = final_barrier(w, r, true), index_ok = final_barrier(w, r, false);
        CHECK(lease_ok && index_ok, "r%llu: read barriers failed (lease %d, read index %d)",
              (unsigned long long)r, lease_ok, index_ok);
        uint64_t l = leader_of(w, r);
        CHECK(l != 0, "r%llu: no leader after the barriers", (unsigned long long)r);
        range_replica *rep = range_node_replica(w->nodes[l].rn, r);
        base_buf out = {0};
        for (int i = 0; i < w->n_ops; i++) {
            const sim_op *op = &w->ops[i];
            if (!op->is_write || !desc_has_key(&newest[r], op->key))
                continue;
            CHECK(op->done, "write %d never acknowledged", i);
            int rc = range_replica_get(rep, op->wr.key, op->wr.key_len, op->ts, &out);
            CHECK(rc == RANGE_OK && out.len == op->wr.value_len &&
                      memcmp(out.data, op->wr.value, out.len) == 0,
                  "acknowledged write %d of %s not readable at r%llu's leader n%llu (rc %d)", i,
                  op->kbuf, (unsigned long long)r, (unsigned long long)l, rc);
        }
        base_buf_free(&out);
    }
    for (uint64_t r = 1; r < RIDS; r++)
        range_descriptor_free(&newest[r]);
    /* removed replicas deleted their data (a removed node may learn of it
    ** only later, from the others) */
    int t = 0;
    for (; t < 1000; t++) {
        bool clean = true;
        for (uint64_t i = 1; i <= NODES && clean; i++)
            clean = holds_only_own(w, i, false);
        if (clean)
            break;
        advance(w);
    }
    if (t == 1000) {
        dump(w);
        for (uint64_t i = 1; i <= NODES; i++)
            holds_only_own(w, i, true);
    }
    CHECK(t < 1000, "a node still holds data or replicas of ranges it is no member of");
    check_history(w);
}

/* ---- one seed -------------------------------------------------------------------- */

/* Returns a hash of the final state (for the determinism test). */
static world *running; /* the seed in progress: its log directories go in teardown */

static uint64_t run_seed(uint64_t seed)
{
    world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    running = w;
    current_seed = seed;
    w->seed = seed;
    w->rng = seed * 0x9e3779b97f4a7c15ULL + 1;
    w->sync_per_million = seed % 3 == 0 ? 1000000 : seed % 3 == 1 ? 500000 : 100000;
    w->next_range_id = 2;
    w->exists[1] = true;
    rpc_sim_config sc;
    rpc_sim_config_init(&sc, seed);
    sc.drop_per_million = 20000;
    sc.duplicate_per_million = 10000;
    sc.reorder_per_million = 10000;
    assert_int_equal(rpc_sim_net_new(&sc, &w->net), RPC_OK);
    for (int i = 0; i < CLIENTS; i++)
        w->clients[i].op = -1;
    for (uint64_t i = 1; i <= NODES; i++) {
        sim_node *n = &w->nodes[i];
        storage_options so = {.dir = NULL, .create_if_missing = true};
        n->w = w;
        n->id = i;
        n->rate_ppm = 1000000 - RATE_PPM_SPREAD + rnd_int(w, 2 * RATE_PPM_SPREAD + 1);
        n->offset_ns = rnd_int(w, (int)OFFSET_NS_MAX);
        n->next_tick_local = (local_at(n, 0) / TICK_NS + 1) * TICK_NS;
        assert_int_equal(storage_open(&so, &n->engine), STORAGE_OK);
        assert_int_equal(rpc_sim_add_node(w->net, i, NULL, &n->t), RPC_OK);
        rpc_set_handler(n->t, node_handler, n);
        sim_make_log_dir(n->files.dir, sizeof(n->files.dir));
    }
    for (uint64_t i = 1; i <= NODES; i++)
        start_node(w, i);

    /* fault phase */
    w->new_ops = true;
    while (w->tick < FAULT_TICKS) {
        client_step(w);
        split_step(w);
        transfer_step(w);
        change_step(w, true);
        merge_step(w, true);
        faults_step(w);
        advance(w);
    }
    /* heal and converge: pending operations and the change in progress finish */
    w->new_ops = false;
    for (uint64_t i = 1; i <= NODES; i++)
        if (w->nodes[i].paused)
            resume_node(w, i);
    w->isolated = 0;
    w->oneway_from = 0;
    w->minority = 0;
    apply_partitions(w);
    for (uint64_t i = 1; i <= NODES; i++)
        if (!w->nodes[i].up)
            start_node(w, i);
    int t = 0;
    for (; t < CONVERGE_TICKS_MAX; t++) {
        client_step(w);
        change_step(w, false);
        merge_step(w, false);
        advance(w);
        if (converged(w))
            break;
    }
    if (t == CONVERGE_TICKS_MAX)
        dump(w);
    CHECK(t < CONVERGE_TICKS_MAX, "no convergence after healing");
    final_checks(w);

    uint64_t result = (uint64_t)w->tick << 32 ^ (uint64_t)w->n_ops;
    for (uint64_t r = 1; r < RIDS; r++)
        result = result * 31 + (w->exists[r] ? r : 0);
    total.ticks += (uint64_t)w->tick;
    for (uint64_t i = 1; i <= NODES; i++)
        if (w->nodes[i].up)
            crash_node(w, i, false);
    total.crashes -= NODES; /* the end is no fault */
    rpc_sim_net_free(w->net);
    for (int i = 0; i < CLIENTS; i++)
        for (uint64_t r = 1; r < RIDS; r++)
            if (w->clients[i].has[r])
                range_descriptor_free(&w->clients[i].cache[r]);
    if (w->has_right_desc)
        range_descriptor_free(&w->merge_right_desc);
    for (uint64_t i = 1; i <= NODES; i++) {
        for (uint64_t r = 1; r < RIDS; r++)
            range_descriptor_free(&w->nodes[i].last_desc[r]);
        storage_close(w->nodes[i].engine);
        sim_remove_dir(w->nodes[i].files.dir);
    }
    free(w);
    running = NULL;
    return result;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? strtoull(v, NULL, 10) : def;
}

/* The p-th percentile of the first-leader delays, in ticks (from the
** histogram; its last bucket stands for that many or more). */
static int delay_percentile(int p)
{
    uint64_t seen = 0, want = (total.new_ranges_led * (uint64_t)p + 99) / 100;
    for (int d = 0; d < LEADER_DELAY_BUCKETS; d++) {
        seen += total.leader_delay[d];
        if (seen >= want && seen > 0)
            return d;
    }
    return 0;
}

static void test_sim_seeds(void **state)
{
    (void)state;
    const char *sim_log = getenv("MERIDIAN_SIM_LOG"); /* 1: INFO, 2: DEBUG as well */
    base_log_set_level(sim_log == NULL ? BASE_LOG_ERROR
                       : sim_log[0] == '2' ? BASE_LOG_DEBUG
                                           : BASE_LOG_INFO);
    memset(&total, 0, sizeof(total)); /* the summary counts these seeds only */
    trace_on = getenv("MERIDIAN_SIM_TRACE") != NULL;
    uint64_t first = env_u64("MERIDIAN_SIM_FIRST_SEED", 1);
    uint64_t count = env_u64("MERIDIAN_SIM_SEEDS", 200);
    if (getenv("MERIDIAN_SEED") != NULL) {
        first = env_u64("MERIDIAN_SEED", 1);
        count = 1;
    }
    for (uint64_t s = first; s < first + count; s++)
        run_seed(s);
    fprintf(stderr,
            "range multi sim: %llu seeds from %llu clean; ticks %llu; crashes %llu (power "
            "failures %llu, %llu log bytes lost), pauses %llu (lease reads on waking %llu), "
            "isolations %llu, minorities %llu, one-way cuts %llu, bad peer messages %llu, log "
            "syncs %llu\n",
            (unsigned long long)count, (unsigned long long)first,
            (unsigned long long)total.ticks, (unsigned long long)total.crashes,
            (unsigned long long)total.power_losses, (unsigned long long)total.bytes_lost,
            (unsigned long long)total.pauses, (unsigned long long)total.resume_probes,
            (unsigned long long)total.isolations, (unsigned long long)total.minorities,
            (unsigned long long)total.oneways, (unsigned long long)total.garbage,
            (unsigned long long)total.syncs);
    fprintf(stderr,
            "range multi sim: writes %llu, reads %llu (history ops %llu, keys the checker gave "
            "up on %llu), re-proposals of acknowledged writes %llu, dropped %llu, ambiguous "
            "%llu, not-leader %llu, key mismatches %llu; barriers ok %llu / failed %llu\n",
            (unsigned long long)total.writes, (unsigned long long)total.reads,
            (unsigned long long)total.history_ops, (unsigned long long)total.keys_unknown,
            (unsigned long long)total.dup_proposals, (unsigned long long)total.dropped,
            (unsigned long long)total.ambiguous, (unsigned long long)total.not_leader,
            (unsigned long long)total.mismatches, (unsigned long long)total.probes_ok,
            (unsigned long long)total.probes_failed);
    fprintf(stderr,
            "range multi sim: splits %llu of %llu proposed (ranges at the end %llu, most in a "
            "run %llu), lease transfers %llu, replica changes %llu (%llu steps, %llu "
            "abandoned), lease checks %llu, lease handovers %llu\n",
            (unsigned long long)total.splits, (unsigned long long)total.splits_proposed,
            (unsigned long long)total.ranges_end, (unsigned long long)total.ranges_max,
            (unsigned long long)total.transfers, (unsigned long long)total.changes,
            (unsigned long long)total.change_steps, (unsigned long long)total.changes_abandoned,
            (unsigned long long)total.lease_checks, (unsigned long long)total.lease_handovers);
    fprintf(stderr,
            "range multi sim: merges started %llu: merged %llu (%llu learned by a fence), "
            "abandoned %llu (%llu unfrozen), fences %llu, orchestrator deaths %llu, watchdog "
            "runs %llu, crashes in a merge %llu\n",
            (unsigned long long)total.merges_started, (unsigned long long)total.merges,
            (unsigned long long)total.merges_late, (unsigned long long)total.merges_abandoned,
            (unsigned long long)total.unfreezes, (unsigned long long)total.fences,
            (unsigned long long)total.merges_died, (unsigned long long)total.watchdog_runs,
            (unsigned long long)total.merge_crashes);
    fprintf(stderr,
            "range multi sim: ranges made by splits %llu, %llu of them led; ticks from first "
            "seen to first leader: mean %.2f, median %d, 90th percentile %d, max %llu (under "
            "the faults; election timeout 10-20 ticks)\n",
            (unsigned long long)total.new_ranges, (unsigned long long)total.new_ranges_led,
            total.new_ranges_led ? (double)total.leader_delay_sum / (double)total.new_ranges_led
                                 : 0.0,
            delay_percentile(50), delay_percentile(90),
            (unsigned long long)total.leader_delay_max);
}

/* Seeds that found bugs (see the top of the file). */
static void test_sim_regressions(void **state)
{
    (void)state;
    static const uint64_t seeds[] = {1, 2, 4, 12, 67, 78, 138, 999, 1389, 1876, 2860, 3471, 5679};
    base_log_set_level(BASE_LOG_ERROR);
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
        run_seed(seeds[i]);
}

static void test_sim_deterministic(void **state)
{
    (void)state;
    base_log_set_level(BASE_LOG_ERROR);
    uint64_t a = run_seed(4242);
    uint64_t b = run_seed(4242);
    assert_int_equal(a, b);
}

/* A failed seed leaves its world behind (cmocka jumps out): at least its
** log directories must not pile up in /dev/shm. */
static int teardown(void **state)
{
    (void)state;
    for (uint64_t i = 1; running != NULL && i <= NODES; i++)
        sim_remove_dir(running->nodes[i].files.dir);
    running = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sim_regressions, teardown),
        cmocka_unit_test_teardown(test_sim_deterministic, teardown),
        cmocka_unit_test_teardown(test_sim_seeds, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
