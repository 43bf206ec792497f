/*
** range/router.c: the cluster's range_kv. A coordinator (txn/) calls it from
** its session thread; it finds the range of each request in a descriptor
** cache, sends the request to the cached leaseholder (over rpc, or in-process
** through range_server_call when that is this node) and retries elsewhere
** until an answer or the operation's deadline.
**
** Cache: entries (descriptor + cached leaseholder) sorted by start key, never
** overlapping. Installing a descriptor drops every entry that overlaps it
** and the older entry of the same range; a descriptor older (by generation)
** than the cached one of its range is ignored. A cache miss is looked up
** in meta (range/meta.c: a one-row scan of the meta span in the range that
** holds it, which the cache always knows: the entry with the empty start
** key is never evicted; an inconsistent read, skip_intents: it never waits
** on nor pushes a split's or merge's intent) and the answer installed; a key meta cannot place
** is RANGE_ERR_UNAVAILABLE. A KEY_MISMATCH answer carries the replica's
** descriptor and, when the answering node hosts the range that holds the
** key (after a split, every replica of the left hosts the right), that
** one too: both are installed, so routing works while meta is stale.
**
** One attempt: encode a range_kv_request for the range, send, wait for the
** answer. The rpc callback runs on the transport's loop thread: it copies the
** answer into a heap call record and signals; the session thread waits on
** that record with a bound. The record is shared (two references), so a
** waiter that gives up never frees memory the callback still writes.
**
** Commits (docs/range.md, "Routing"): every write and delete span must lie
** in ONE range W (else RANGE_ERR_CROSS_RANGE); the read spans are clipped to
** the cached descriptors. All reads in W: one COMMIT, the server picks the
** timestamp. Reads elsewhere too: candidate = hlc_now (> read_ts); VALIDATE
** each other range's clipped reads at it; then COMMIT at W with that fixed
** timestamp; on RANGE_ERR_PUSHED take the timestamp the answer names, wait
** until this clock reaches it, and VALIDATE again (ROUTER__PUSH_ATTEMPTS_MAX,
** then RANGE_ERR_PUSHED: SQLSTATE 40001). A range that changed shape under
** the plan (a build finds a span outside its descriptor) means plan again
** (ROUTER__PLAN_ATTEMPTS_MAX). One deadline covers the whole commit call.
**
** Two-phase commit (docs/txn.md, section 3.1 and "Large transactions"):
** prepare plans per range (writes, delete-span and read-span pieces),
** fills the result's spans before sending anything, then PREPAREs every
** range at once (a fan-out over the router's pool of threads; the anchor's
** range on the calling thread, creating the record). A range's share that
** one command cannot hold goes in CHUNKS, one after another: delete pieces
** first, then slices of the writes, the reads with the first; a chunk
** answered TOO_LARGE is split (delete pieces cut at keys read at read_ts).
** Ranges of one chunk first try one common timestamp (the router's clock):
** where it is taken, the reads need no VALIDATE after. commit_ts is the
** highest prepare timestamp; the reads of ranges that were only read or
** checked lower are VALIDATEd there, at once. end_txn goes to the anchor's
** range; resolve splits its spans by range and RESOLVEs the ranges at
** once. A commit larger than one command is refused RANGE_ERR_TOO_LARGE
** unsent (the coordinator prepares it). Every request of a transaction has
** a nonce of its own (the servers' idempotence records are per node, not
** per range); a chunk's is a hash of its content.
**
** Intents met (RANGE_ERR_INTENT, any request): PUSH the holder at its
** anchor's range, RESOLVE the key with the answer (COMMITTED/ABORTED), ask
** again; PENDING: back off and ask again; within the operation's deadline
** (a committing transaction, which holds intents, gives up sooner), then
** RANGE_ERR_INTENT naming the key and the holder. A transactional pusher
** first asks its own record's range who waits on it (QUERY_TXN) and hands
** those dependents to its PUSH: the wait queue there finds deadlock cycles
** (docs/locking.md); a PUSH that chose the pusher as victim answers
** RANGE_ERR_ABORTED with the cycle, which ends the operation.
**
** Statement-time locks (docs/txn.md section 5): lock sends each range its
** share of the sorted keys (LOCK, at most RANGE_KV_LOCK_KEYS_MAX a
** request), in key order; the leaseholder queues a request behind another
** holder for its push delay, then answers RANGE_ERR_INTENT (unreplicated);
** the router asks again at once and pushes the holder only once it has
** blocked the request for ROUTER__LOCK_PUSH_AFTER_MS (a push of a holder
** without a record can only wait out its bound, while the LOCK is woken by
** the release), then with dependents as above, and so on in turns; a LOCK
** waits until the
** deadline, never gives up sooner. heartbeat goes to the anchor's range;
** refresh VALIDATEs the read spans on (read_ts, new_ts] range by range.
** A prepare whose anchor (the first locked key) is not in its first
** written range HEARTBEATs the record into existence first.
**
** Merges (docs/range.md, "Merges"): range_router_admin_merge DESCRIBEs
** both ranges, checks their voters, then SUBSUME at R, WAIT_APPLIED at each
** of R's voters' nodes (sent to that node: router__wait_applied), and
** ADMIN_MERGE at L; any failure after SUBSUME fences the merge in the range
** below R's start and, unless the fence answers `merged` (that range holds
** the start, or the merge applied in its lineage: L may have split again at
** the start since), unfreezes R (range_router_abandon_merge, also the
** server/ watchdog's). DESCRIBE carries the route's key, so that a node no
** longer hosting a stale cached range names its successor.
**
** Retry rules (per operation, bounded by deadline_ms and ROUTER__ATTEMPTS_MAX):
**   NOT_LEADER with a hint      -> that node (no backoff for the first
**                                  ROUTER__REDIRECTS_FREE in a row)
**   NOT_LEADER without a hint, transport errors, BUSY, UNAVAILABLE, an
**   unreadable answer           -> the next replica, jittered backoff; a
**                                  node whose attempt timed out gets twice
**                                  the timeout on its next attempt of the op
**                                  (up to ROUTER__SLOW_DOUBLINGS_MAX times):
**                                  a live leaseholder slower than one
**                                  timeout still answers (docs/range.md,
**                                  "Lease transfer")
**   KEY_MISMATCH                -> install the returned descriptors, route again
**                                  (nothing newer in it: the next replica)
**   MERGING (range frozen by a merge, docs/range.md "Merges") -> backoff and
**                                  again; at the deadline RANGE_ERR_MERGING
**                                  (40001) unless a commit's fate is unknown
**   AMBIGUOUS (server)          -> same node again after a backoff
**   INTENT                      -> push + resolve, then again (PENDING: backoff);
**                                  a meta intent: the holder's over all of meta
**   no cached range             -> meta lookup (ROUTER__META_LOOKUPS_MAX per op);
**                                  meta's entry does not place the key or is
**                                  older than the cache (a meta intent left
**                                  unresolved, test_txn_sim seed 21578) ->
**                                  DESCRIBE the key at every known node, install
**                                  a descriptor that places it (within the deadline)
**   a range refused (not hosting it, unreachable, KEY_MISMATCH without
**   news; not a timeout) by as many attempts in a row as the cache names
**   replicas of it -> DESCRIBE it at every other known node (config
**   known_nodes and the nodes the cache names, ROUTER__RESCUE_NODES_MAX),
**   install the newest generation, again (ROUTER__RESCUES_MAX per op):
**   for the first range meta lives there, so no lookup could find it, and
**   meta may lag a replica change of any other (test_txn_sim seed 451)
**   a merge's FENCE or UNFREEZE answered NOT_LEADER without a hint by as
**   many replicas in a row as the cache names -> meta lookup too (same
**   bound; none hosts it: its replicas moved), then again
**   a stale read (AS OF SYSTEM TIME, docs/txn.md section 8) goes first to
**   this node's own replica when it has one (a follower serves it below
**   the range's closed timestamp); any refusal there (NOT_LEADER: not
**   closed that far or behind, an intent, busy) -> the cached leaseholder
**   at once, its hint followed; an answer from there moves no cached lease
**
** Critical invariants:
**   - a commit is sent with one (txn_id, nonce) on every attempt, so the
**     server's idempotence check decides its fate; once an attempt's fate is
**     unknown (sent, then timeout/disconnect/AMBIGUOUS/unreadable answer) only
**     an evaluated answer (OK, CONFLICT, INVALID, TOO_LARGE) resolves it; at
**     the deadline an unresolved commit is RANGE_ERR_AMBIGUOUS, never
**     RANGE_ERR_UNAVAILABLE (which promises "not applied").
**   - a COMMIT is sent only when all its writes, delete spans and the read
**     spans it carries lie in the one descriptor it is sent with, and only
**     after every other range holding the rest of its reads answered OK to
**     a VALIDATE at the very timestamp the COMMIT carries (fixed; the server
**     commits exactly at it or answers PUSHED). Each server re-checks the
**     spans against its own descriptor (KEY_MISMATCH), so a stale cache
**     cannot skip a range.
**   - a commit whose attempt's fate is unknown may be re-planned when its
**     range changed shape (KEY_MISMATCH): the idempotence record is keyed
**     by (txn_id, nonce) alone and a split's right-hand range inherits the
**     records of everything the left applied before it (docs/range.md,
**     "Splits and addressing"), so the range now holding the keys answers
**     for the earlier attempt. Writes that now span ranges stay ambiguous.
**   - PUSHED is an evaluated answer given after the server's idempotence
**     check: the commit did not apply and no earlier attempt of it can, so
**     the next timestamp is tried with the same (txn_id, nonce).
**   - a RESOLVE(ABORTED) is sent only for an intent whose holder's record
**     a PUSH answered ABORTED (or by the coordinator itself, txn/); a
**     RESOLVE(COMMITTED) only with the commit timestamp a record holds.
**   - within one range, a transaction's PREPARE chunks go one at a time,
**     each after the previous one's answer, delete-only chunks before write
**     chunks (a write's intent then replaces its own delete span's
**     tombstone intent, never the reverse). Ranges prepare at once, so
**     another range may hold intents before the anchor's creates the
**     record: a pusher that finds no record and a young intent waits (the
**     server's rule, docs/txn.md); a record whose anchor is in no written
**     range is HEARTBEATed into existence before any PREPARE.
**   - a chunk's nonce is a hash of everything it carries: the same chunk
**     (a retry, a re-plan) is idempotent, any other chunk (a subset after a
**     split too) is evaluated anew; a chunk PUSHED at the common timestamp
**     is sent again, same nonce, with the range picking (PUSHED is
**     evaluated after the idempotence check: nothing applied).
**   - the pool: a task runs exactly once, taken off the queue (under the
**     pool mutex) by a pool thread or by its caller; a call returns only
**     after all its tasks ended, so the queue never holds a task of a call
**     that returned; pool threads start at the first fan-out and stop in
**     range_router_free, after every call returned.
**   - a LOCK request carries only keys of the descriptor it is sent with,
**     strictly ascending; the keys of one lock call are sent in key order.
**   - the router mutex guards the cache, the PRNG and the counters, and is
**     never held across a send, a wait, a sleep or a server call.
**   - after range_router_shutdown no operation's deadline lies past the
**     shutdown's end (stop_ns), so a stopping node's callers return.
**   - a scan returns rows in strict key order (reverse: strictly descending)
**     inside the requested span; a page that breaks this, or says "more"
**     with no row, is RANGE_ERR_CORRUPT (no endless loop on a bad peer).
*/
#define _GNU_SOURCE
#include "range/eval_int.h"
#include "range/kv_int.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define ROUTER__DEADLINE_MS_DEFAULT 10000
#define ROUTER__RPC_TIMEOUT_MS_DEFAULT 2000
#define ROUTER__BACKOFF_MIN_MS 10    /* first retry delay (then doubled, jittered) */
#define ROUTER__BACKOFF_MAX_MS 500   /* retry delay cap */
#define ROUTER__ATTEMPTS_MAX 10000   /* attempts of one operation, besides the deadline */
#define ROUTER__REDIRECTS_FREE 3     /* consecutive hints followed without backoff */
#define ROUTER__CACHE_MAX 65536      /* cached descriptors; beyond, one is evicted */
#define ROUTER__CALL_GRACE_MS 5000   /* wait past the rpc deadline for its callback */
#define ROUTER__ATTEMPT_MIN_MS 50    /* no retry starts with less time than this left */
#define ROUTER__SLOW_DOUBLINGS_MAX 3 /* a node that timed out gets up to 8 x rpc_timeout_ms */
#define ROUTER__SCAN_FIRST_PAGE_BYTES (16u * 1024) /* doubled per page up to
                                                      RANGE_KV_SCAN_BYTES_DEFAULT */
#define ROUTER__ERROR_TEXT_MAX 256
#define ROUTER__KEY_TEXT_MAX 64      /* printable key prefix in messages */
#define ROUTER__PUSH_ATTEMPTS_MAX 4  /* fixed-timestamp COMMITs per commit call */
#define ROUTER__PLAN_ATTEMPTS_MAX 8  /* plans per commit call (ranges changed shape) */
#define ROUTER__READ_RANGES_MAX 256  /* ranges the reads of one commit may span */
#define ROUTER__CLOCK_WAIT_MAX_OFFSETS 2 /* bound of the wait for a pushed timestamp */
#define ROUTER__META_LOOKUPS_MAX 4   /* meta lookups of one operation */
#define ROUTER__RESCUES_MAX 2        /* first-range rescues of one operation */
#define ROUTER__RESCUE_NODES_MAX 64  /* nodes one rescue asks */
#define ROUTER__UNKNOWN_TS_MAX (ROUTER__PUSH_ATTEMPTS_MAX * ROUTER__PLAN_ATTEMPTS_MAX)
#define ROUTER__INTENT_WAIT_TXN_MS 2000 /* a committing txn's wait on a PENDING holder */
#define ROUTER__NESTING_MAX 3        /* intents met while pushing/resolving another */
#define ROUTER__LOCK_PUSH_AFTER_MS 200 /* a LOCK pushes a holder that blocked it this long */
#define ROUTER__LOCK_RETRY_PAUSE_MS 5  /* a LOCK refused faster than this pauses this long */
#define ROUTER__CYCLE_TEXT_MAX 160     /* "t1 -> t2 -> t1" in messages */
#define ROUTER__RESOLVE_CHUNKS_MAX (1 << 20) /* RESOLVE answers of one range's resolution
                                                (each resolved some: a guard) */
#define ROUTER__RESOLVE_REPLANS_MAX 64 /* re-plans of a resolution that progressed */
#define ROUTER__RESOLVE_LOG_CHUNKS 8   /* a resolution of more requests is logged */
/* Large transactions (docs/txn.md, "Large transactions"): one request, and
** so one Raft command (at most raft_config.max_entry_bytes, 1 MiB, encoded),
** carries at most a chunk. A 1PC commit larger than that is refused
** RANGE_ERR_TOO_LARGE before anything is sent (txn/ then takes the two-phase
** path); a PREPARE of a range's share is sent in chunks. The byte counts are
** estimates (half the entry limit leaves room for the command's encoding);
** a chunk answered TOO_LARGE all the same is split (ROUTER__CHUNK_SPLITS_MAX
** times at most). */
#define ROUTER__CHUNK_WRITES_MAX 10000        /* writes in one PREPARE or COMMIT; rows of
                                                 one piece of a cut delete span */
#define ROUTER__CHUNK_BYTES_MAX (512u << 10)  /* their bytes (keys, values, spans; for
                                                 a PREPARE the intents' own) */
#define ROUTER__CHUNK_READ_BYTES_MAX (4u << 20) /* read spans one request carries (not
                                                   in the Raft command) */
#define ROUTER__VALIDATE_SLICE_BYTES_MAX (512u << 10) /* read spans of one VALIDATE (and of a
                                                   first PREPARE chunk): one is evaluated
                                                   within an rpc timeout even on a loaded
                                                   node (4 MiB of point reads, ~90,000,
                                                   took longer than the router's doubled
                                                   timeouts: `pgbench -i -s 10`, 57P03) */
#define ROUTER__ITEM_OVERHEAD_BYTES 16        /* per write or span, in those counts */
#define ROUTER__INTENT_OVERHEAD_BYTES 64      /* per intent besides key, value, anchor */
#define ROUTER__CHUNK_SPLITS_MAX 8            /* splits of one chunk after TOO_LARGE */
#define ROUTER__CUT_PIECES_MAX 65536          /* pieces of one cut delete span */
/* The fan-out of two-phase commits: a pool of threads per router, started at
** its first use, runs the per-range PREPAREs and VALIDATEs of a call in
** parallel; a task no pool thread has taken when the caller is free runs on
** the caller's thread (so a full pool slows a call, never stops it). */
#define ROUTER__POOL_THREADS 16
#define ROUTER__POOL_QUEUE_MAX 256            /* tasks waiting for a pool thread */

typedef struct router__entry {
    range_descriptor desc; /* owned */
    uint64_t leaseholder;  /* node id, 0 unknown */
} router__entry;

/* A task of the fan-out: run exactly once, either by a pool thread that
** took it off the queue or by its caller that took it back (both under the
** pool mutex); run() tells its fan-out it finished as its last act. */
typedef struct router__task router__task;
struct router__task {
    void (*run)(router__task *t);
    bool queued; /* handed to the pool (read by the submitting thread only) */
};

typedef struct router__pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;                           /* work queued, or stop */
    router__task *queue[ROUTER__POOL_QUEUE_MAX]; /* FIFO; borrowed from waiting callers */
    size_t n;
    pthread_t threads[ROUTER__POOL_THREADS];
    int n_threads;
    bool started, stop;
} router__pool;

struct range_router {
    range_kv kv; /* first member: range_router_kv */
    range_router_config config;
    pthread_mutex_t mu;
    router__entry *entries; /* owned; sorted by start key, disjoint */
    size_t n_entries, cap_entries;
    uint64_t prng;
    range_router_stats stats;
    router__pool pool; /* its own mutex; never taken with mu held */
    /* range_router_shutdown: base_monotonic_ns by which every operation
    ** ends (0: running); it only moves earlier */
    _Atomic int64_t stop_ns;
};

/* The detail of the last error this thread got from a router (txn/ puts it
** in the user's message). */
static _Thread_local struct {
    const range_router *router;
    char text[ROUTER__ERROR_TEXT_MAX];
} router__error;

static void router__set_error(const range_router *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void router__set_error(const range_router *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(router__error.text, sizeof(router__error.text), fmt, ap);
    va_end(ap);
    router__error.router = r;
}

static void router__clear_error(void) {
    router__error.router = NULL;
    router__error.text[0] = '\0';
}

/* ---- helpers ------------------------------------------------------------------ */

/* Does span sp (not a point) hold key? */
static bool router__span_holds(const range_span *sp, const uint8_t *key, size_t len) {
    return range__key_cmp(key, len, sp->start, sp->start_len) >= 0 &&
           (sp->end_len == 0 || range__key_cmp(key, len, sp->end, sp->end_len) < 0);
}

/* Printable form of a key for messages: hex, cut with "..." when long. */
static void router__key_text(const uint8_t *key, size_t len, char *out, size_t out_size) {
    size_t pos = (size_t)snprintf(out, out_size, "0x");
    size_t i = 0;
    for (; i < len && pos + 3 < out_size && pos + 3 < ROUTER__KEY_TEXT_MAX; i++)
        pos += (size_t)snprintf(out + pos, out_size - pos, "%02x", key[i]);
    if (i < len && pos + 4 <= out_size) memcpy(out + pos, "...", 4);
}

/* splitmix64's output function */
static uint64_t router__mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t router__random_locked(range_router *r) {
    /* splitmix64 */
    return router__mix(r->prng += 0x9E3779B97F4A7C15ull);
}

static uint64_t router__random(range_router *r) {
    pthread_mutex_lock(&r->mu);
    uint64_t v = router__random_locked(r);
    pthread_mutex_unlock(&r->mu);
    return v;
}

static void router__count(range_router *r, uint64_t *counter) {
    pthread_mutex_lock(&r->mu);
    (*counter)++;
    pthread_mutex_unlock(&r->mu);
}

static void router__sleep_ms(int64_t ms) {
    if (ms <= 0) return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    /* a retry backoff, not a wait for a condition; EINTR just ends it early */
    nanosleep(&ts, NULL);
}

/* ---- descriptor cache (r->mu held) ------------------------------------------ */

/* Index of the first entry whose start key is > key (n_entries if none). */
static size_t router__upper_bound(const range_router *r, const uint8_t *key, size_t len) {
    size_t lo = 0, hi = r->n_entries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const range_descriptor *d = &r->entries[mid].desc;
        if (range__key_cmp(d->start_key, d->start_len, key, len) <= 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The entry holding key, or NULL. */
static router__entry *router__find(range_router *r, const uint8_t *key, size_t len) {
    size_t i = router__upper_bound(r, key, len);
    if (i == 0) return NULL;
    router__entry *e = &r->entries[i - 1];
    return range_descriptor_contains(&e->desc, key, len) ? e : NULL;
}

/* The entry holding the greatest key < bound (bound_open: +infinity), or
** NULL. bound must not be the empty key (nothing is below it). */
static router__entry *router__find_before(range_router *r, const uint8_t *bound, size_t len,
                                          bool bound_open) {
    if (r->n_entries == 0) return NULL;
    router__entry *e;
    if (bound_open) {
        e = &r->entries[r->n_entries - 1];
        return e->desc.end_len == 0 ? e : NULL;
    }
    /* last entry whose start is < bound */
    size_t lo = 0, hi = r->n_entries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const range_descriptor *d = &r->entries[mid].desc;
        if (range__key_cmp(d->start_key, d->start_len, bound, len) < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return NULL;
    e = &r->entries[lo - 1];
    if (e->desc.end_len == 0 ||
        range__key_cmp(bound, len, e->desc.end_key, e->desc.end_len) <= 0)
        return e;
    return NULL;
}

static router__entry *router__find_id(range_router *r, uint64_t range_id) {
    for (size_t i = 0; i < r->n_entries; i++)
        if (r->entries[i].desc.range_id == range_id) return &r->entries[i];
    return NULL;
}

static bool router__overlaps(const range_descriptor *a, const range_descriptor *b) {
    /* [a.start, a.end) and [b.start, b.end) intersect */
    bool a_before_b_end = b->end_len == 0 ||
                          range__key_cmp(a->start_key, a->start_len, b->end_key, b->end_len) < 0;
    bool b_before_a_end = a->end_len == 0 ||
                          range__key_cmp(b->start_key, b->start_len, a->end_key, a->end_len) < 0;
    return a_before_b_end && b_before_a_end;
}

static bool router__is_replica(const range_descriptor *d, uint64_t node) {
    for (size_t i = 0; i < d->n_replicas; i++)
        if (d->replicas[i] == node) return true;
    return false;
}

/* Install a copy of d. *installed: false when the cache holds a newer
** generation of its range (then nothing changes). */
static int router__install_locked(range_router *r, const range_descriptor *d, bool *installed) {
    *installed = false;
    router__entry *same = router__find_id(r, d->range_id);
    if (same != NULL && same->desc.generation > d->generation) return RANGE_OK;
    router__entry fresh;
    memset(&fresh, 0, sizeof(fresh));
    int rc = range_descriptor_copy(&fresh.desc, d);
    if (rc != RANGE_OK) return rc;
    /* keep a known leaseholder of the same range while it is still a replica */
    if (same != NULL && same->leaseholder != 0 && router__is_replica(d, same->leaseholder))
        fresh.leaseholder = same->leaseholder;
    size_t kept = 0;
    for (size_t i = 0; i < r->n_entries; i++) {
        router__entry *e = &r->entries[i];
        if (e->desc.range_id == d->range_id || router__overlaps(&e->desc, d)) {
            /* the first range holds meta: dropped, no lookup could find it
            ** again. Cut at d's start instead (its replicas answer
            ** KEY_MISMATCH with the current descriptor). */
            uint8_t *cut = e->desc.start_len == 0 && e->desc.range_id != d->range_id &&
                                   d->start_len > 0
                               ? base_malloc(d->start_len) /* owner: the entry */
                               : NULL;
            if (cut != NULL) {
                memcpy(cut, d->start_key, d->start_len);
                base_free(e->desc.end_key);
                e->desc.end_key = cut;
                e->desc.end_len = d->start_len;
                r->entries[kept++] = *e;
                continue;
            }
            range_descriptor_free(&e->desc);
            continue;
        }
        r->entries[kept++] = *e;
    }
    r->n_entries = kept;
    if (r->n_entries >= ROUTER__CACHE_MAX) {
        /* evict one at random: it is re-learned when needed (from meta);
        ** never the first range, which holds meta */
        size_t victim = (size_t)(router__random_locked(r) % r->n_entries);
        if (r->entries[victim].desc.start_len == 0) victim = (victim + 1) % r->n_entries;
        range_descriptor_free(&r->entries[victim].desc);
        memmove(&r->entries[victim], &r->entries[victim + 1],
                (r->n_entries - victim - 1) * sizeof(r->entries[0]));
        r->n_entries--;
    }
    if (r->n_entries == r->cap_entries) {
        size_t ncap = r->cap_entries ? r->cap_entries * 2 : 16;
        router__entry *ne = base_realloc(r->entries, ncap * sizeof(*ne)); /* owner: r */
        if (ne == NULL) {
            range_descriptor_free(&fresh.desc);
            return RANGE_ERR_NOMEM;
        }
        r->entries = ne;
        r->cap_entries = ncap;
    }
    size_t at = router__upper_bound(r, d->start_key, d->start_len);
    memmove(&r->entries[at + 1], &r->entries[at], (r->n_entries - at) * sizeof(r->entries[0]));
    r->entries[at] = fresh;
    r->n_entries++;
    *installed = true;
    return RANGE_OK;
}

/* The node to try for e: the cached leaseholder, else this node when it is a
** replica, else the first replica. 0 when the range has no replicas. */
static uint64_t router__target_locked(const range_router *r, router__entry *e) {
    if (e->leaseholder == 0) {
        if (r->config.local_node_id != 0 && router__is_replica(&e->desc, r->config.local_node_id))
            e->leaseholder = r->config.local_node_id;
        else if (e->desc.n_replicas > 0)
            e->leaseholder = e->desc.replicas[0];
    }
    return e->leaseholder;
}

/* Record what an attempt at node `tried` of range `range_id` taught us:
** leaseholder = next (0: the replica after `tried`). Only if nobody changed
** it meanwhile (another session may already know better). */
static void router__move_leaseholder(range_router *r, uint64_t range_id, uint64_t tried,
                                     uint64_t next) {
    pthread_mutex_lock(&r->mu);
    router__entry *e = router__find_id(r, range_id);
    if (e != NULL && (e->leaseholder == tried || e->leaseholder == 0)) {
        if (next == 0 && e->desc.n_replicas > 0) {
            next = e->desc.replicas[0];
            for (size_t i = 0; i < e->desc.n_replicas; i++)
                if (e->desc.replicas[i] == tried) {
                    next = e->desc.replicas[(i + 1) % e->desc.n_replicas];
                    break;
                }
        }
        e->leaseholder = next;
    }
    pthread_mutex_unlock(&r->mu);
}

/* ---- one attempt ---------------------------------------------------------------- */

/* Shared between the waiting session thread and the rpc callback. */
typedef struct router__call {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs; /* 2 while both may touch it; the last one frees */
    bool done;
    int rc;             /* transport rc */
    int32_t status;     /* responder's status (rc == RPC_OK) */
    base_buf payload;   /* owned: copy of the response payload */
    bool nomem;
} router__call;

static void router__call_unref(router__call *c) {
    pthread_mutex_lock(&c->mu);
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (!last) return;
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    base_buf_free(&c->payload);
    base_free(c);
}

/* On the transport's loop thread: copy and signal, nothing else. */
static void router__on_response(void *ctx, int rc, const rpc_message *response) {
    router__call *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->rc = rc;
    if (rc == RPC_OK && response != NULL) {
        c->status = response->status;
        if (response->payload_len > 0 &&
            base_buf_append(&c->payload, response->payload, response->payload_len) != 0)
            c->nomem = true;
    }
    c->done = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    router__call_unref(c);
}

typedef struct router__result {
    int transport_rc; /* RPC_OK: status and payload are the server's answer */
    bool sent;        /* the request may have reached a server */
    int32_t status;
    base_buf payload; /* owned by the caller of router__attempt */
} router__result;

static int router__call_new(router__call **out) {
    router__call *c = base_calloc(1, sizeof(*c)); /* owner: shared, router__call_unref */
    if (c == NULL) return RANGE_ERR_NOMEM;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) goto fail_free;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int crc = pthread_cond_init(&c->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (crc != 0) goto fail_free;
    if (pthread_mutex_init(&c->mu, NULL) != 0) goto fail_cond;
    c->refs = 2;
    *out = c;
    return RANGE_OK;
fail_cond:
    pthread_cond_destroy(&c->cv);
fail_free:
    base_free(c);
    return RANGE_ERR_NOMEM;
}

/* Send req (encoded) to node `to` and wait for the answer. Returns RANGE_OK
** with *res filled, or RANGE_ERR_NOMEM (nothing sent). */
static int router__attempt(range_router *r, uint64_t to, const base_buf *req, int64_t timeout_ms,
                           router__result *res) {
    res->transport_rc = RPC_OK;
    res->sent = false;
    res->status = 0;
    base_buf_reset(&res->payload);
    pthread_mutex_lock(&r->mu);
    r->stats.attempts++;
    if (to == r->config.local_node_id && r->config.local != NULL) r->stats.local_calls++;
    pthread_mutex_unlock(&r->mu);
    if (to == r->config.local_node_id && r->config.local != NULL) {
        res->sent = true;
        res->status = range_server_call(r->config.local, req->data, req->len, &res->payload);
        return RANGE_OK;
    }
    router__call *c = NULL;
    int rc = router__call_new(&c);
    if (rc != RANGE_OK) return rc;
    rc = rpc_request(r->config.transport, to, RANGE_RPC_METHOD_KV, req->data, req->len,
                     timeout_ms, router__on_response, c);
    if (rc != RPC_OK) {
        /* the callback never runs: both references are ours */
        c->refs = 1;
        router__call_unref(c);
        res->transport_rc = rc;
        return RANGE_OK;
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    int64_t wait_ms = timeout_ms + ROUTER__CALL_GRACE_MS;
    until.tv_sec += (time_t)(wait_ms / 1000);
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    while (!c->done) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT) break;
    }
    if (c->done) {
        res->transport_rc = c->nomem ? RPC_ERR_NOMEM : c->rc;
        res->status = c->status;
        /* swap buffers: the answer moves to res without a copy */
        base_buf tmp = res->payload;
        res->payload = c->payload;
        c->payload = tmp;
        /* queued-then-refused requests never left this node; UNREACHABLE:
        ** the peer could not be dialed, so it never saw the request */
        res->sent = !(c->rc == RPC_ERR_UNKNOWN_PEER || c->rc == RPC_ERR_QUEUE_FULL ||
                      c->rc == RPC_ERR_NOMEM || c->rc == RPC_ERR_TOO_LARGE ||
                      c->rc == RPC_ERR_UNREACHABLE);
    } else {
        /* the transport broke its exactly-once promise: treat as a timeout */
        BASE_WARN("range", "router: no callback %" PRId64 " ms past the rpc deadline (node %" PRIu64
                  ")", (int64_t)ROUTER__CALL_GRACE_MS, to);
        res->transport_rc = RPC_ERR_TIMEOUT;
        res->sent = true;
    }
    pthread_mutex_unlock(&c->mu);
    router__call_unref(c);
    return RANGE_OK;
}

/* ---- the retry loop ------------------------------------------------------------ */

/* Which range an operation goes to. */
typedef struct router__route {
    const uint8_t *key; /* the range holding key... */
    size_t key_len;
    bool before;        /* ...or holding the greatest key < key */
    bool before_open;   /* (before: key = +infinity) */
} router__route;

/* Builds the request for descriptor d (range_id and op fields). Returns
** RANGE_OK, or an error that ends the operation (RANGE_ERR_CROSS_RANGE). */
typedef int (*router__build_fn)(void *ctx, range_router *r, const range_descriptor *d,
                                range_kv_request *req);

typedef struct router__op {
    router__route route;
    router__build_fn build;
    void *build_ctx;
    bool is_commit;
    const char *what; /* "read", "scan", "commit" for messages */
    int64_t deadline_ns; /* base_monotonic_ns deadline; 0: deadline_ms from now */
    bool no_lookup;      /* a meta lookup itself: a miss is not looked up */
    /* commits: in/out, the fate of an earlier attempt (of this commit call,
    ** maybe under another plan) is unknown. NULL: none carried. With it a
    ** builder's KEY_MISMATCH after an unknown attempt returns (plan again)
    ** instead of ending ambiguous. */
    bool *unknown;
    /* the transaction this request belongs to, pushing the holders of
    ** intents it meets (NULL: an anonymous pusher, docs/txn.md) */
    const range_txn_meta *txn;
    bool keep_aborted; /* a RANGE_ERR_ABORTED answer is kept (its cycle) */
    bool keep_uncertain; /* a RANGE_ERR_UNCERTAIN answer is kept (its version) */
    /* a read with an uncertainty limit: the txn's observed timestamps (NULL:
    ** none), the target node's entry sent, the answer's reading added */
    range_observed *observed;
    bool lock_wait;    /* a LOCK: waits for holders until the deadline */
    /* a scan: the span its last request read (set by its builder). A holder
    ** found decided has its intents there resolved at once, not only the
    ** key met: a reader after a large transaction would else resolve its
    ** intents one round trip each. NULL: the key met alone. */
    const range_span *resolve_span;
    /* a stale read (docs/txn.md section 8): sent stale_ok, first to this
    ** node's own replica of the range when it has one (a follower may serve
    ** it), then, refused there, to the leaseholder */
    bool stale;
    /* an admin operation (lease transfer, replica change) on a range frozen
    ** by a merge ends at once with RANGE_ERR_MERGING instead of waiting */
    bool merging_ends;
    /* every replica the cache names answered NOT_LEADER without a hint
    ** (none hosts the range any more: its replicas moved): look the route
    ** up in meta, as for a miss (an abandoned merge's steps: a range below
    ** R's start that moved would else keep R frozen until the deadline) */
    bool lookup_when_gone;
} router__op;

static int router__meta_lookup(range_router *r, const router__route *route, int64_t deadline_ns,
                               char *problem, size_t problem_size);
static int router__rescue_first(range_router *r, const range_descriptor *first,
                                const router__route *route, int64_t deadline_ns);
static int router__rescue_key(range_router *r, const router__route *route, int64_t deadline_ns);

static bool router__evaluated_commit_status(int32_t s) {
    return s == RANGE_OK || s == RANGE_ERR_CONFLICT || s == RANGE_ERR_INVALID ||
           s == RANGE_ERR_TOO_LARGE || s == RANGE_ERR_PUSHED || s == RANGE_ERR_ABORTED ||
           s == RANGE_ERR_INTENT;
}

typedef struct router__intent_seen {
    bool blocked;        /* the last retry was for an intent */
    bool pending;        /* ...whose holder was still PENDING */
    bool unreplicated;   /* ...a statement-time lock, not an intent */
    int64_t first_pending_ns; /* base_monotonic_ns of the first PENDING answer (0: none) */
    int64_t holder_since_ns;  /* base_monotonic_ns since `holder` blocked us */
    uint64_t holder;
    char key[ROUTER__KEY_TEXT_MAX + 8];
} router__intent_seen;

static int router__meet_intent(range_router *r, const router__op *op,
                               const range_kv_response *resp, int64_t deadline_ns,
                               router__intent_seen *seen);

/* Statuses whose answer the caller reads (conflict, pushed timestamp). */
static bool router__answer_kept(int32_t s) {
    return s >= 0 || s == RANGE_ERR_CONFLICT || s == RANGE_ERR_PUSHED;
}

/* Run op until a definitive answer or the deadline. On return RANGE_OK the
** decoded answer is in *resp (its bytes in *resp_bytes; release with
** range_kv_response_free + base_buf_free) and its status is the return
** value's: RANGE_OK, RANGE_NOT_FOUND, RANGE_ERR_CONFLICT, RANGE_ERR_PUSHED
** (router__answer_kept). Else an error: UNAVAILABLE, AMBIGUOUS, the
** builder's (CROSS_RANGE, KEY_MISMATCH: plan again), NOMEM... with the
** thread's error detail set. *used: the descriptor of the
** answering range (owner: caller, range_descriptor_free; zeroed on error). */
static int router__execute(range_router *r, const router__op *op, range_kv_response *resp,
                           base_buf *resp_bytes, range_descriptor *used) {
    int rc = RANGE_ERR_UNAVAILABLE;
    base_buf req_bytes = {0};
    router__result res;
    memset(&res, 0, sizeof(res));
    memset(resp, 0, sizeof(*resp));
    memset(used, 0, sizeof(*used));
    bool have_resp = false;
    bool unknown = op->unknown != NULL && *op->unknown; /* a commit attempt's fate is unknown */
    int redirects_in_row = 0;
    int lookups = 0;
    int backoff_step = 0;
    /* SLOW LEASEHOLDER: the node whose attempts of this op timed out, and
    ** how often in a row. Its next attempt waits twice as long (a large
    ** VALIDATE, RESOLVE or commit may take longer than one timeout at a
    ** live leaseholder: sent again with the same timeout it never ends);
    ** every other node keeps rpc_timeout_ms, so failover stays fast. */
    uint64_t slow_node = 0;
    int slow_timeouts = 0;
    uint64_t last_range = 0;
    char problem[128] = "no attempt";
    router__intent_seen seen;
    memset(&seen, 0, sizeof(seen));
    bool merging = false; /* the last answer received was RANGE_ERR_MERGING */
    uint64_t gone_range = 0;  /* lookup_when_gone: the range answered... */
    size_t gone_answers = 0;  /* ...NOT_LEADER without a hint this often in a row */
    /* FIRST RANGE RESCUE: attempts in a row at the first range that its
    ** cached replicas refused (not hosting it, unreachable); as many as it
    ** names and every other known node is asked (router__rescue_first) */
    size_t first_refusals = 0;
    int rescues = 0;
    int64_t start_ns = base_monotonic_ns();
    int64_t deadline_ns =
        op->deadline_ns != 0 ? op->deadline_ns : start_ns + r->config.deadline_ms * 1000000;
    /* a stale read tries this node's replica first, once */
    bool try_local = op->stale && r->config.local != NULL && r->config.local_node_id != 0;
    if (op->stale) router__count(r, &r->stats.stale_reads);

    for (int attempt = 0; attempt < ROUTER__ATTEMPTS_MAX; attempt++) {
        int64_t now = base_monotonic_ns();
        /* the node stops: no operation outlives its grace (the usual end of
        ** a deadline follows: UNAVAILABLE, or AMBIGUOUS for a commit) */
        int64_t stop_ns = atomic_load(&r->stop_ns);
        if (stop_ns != 0 && stop_ns < deadline_ns) {
            deadline_ns = stop_ns;
            if (now >= deadline_ns) snprintf(problem, sizeof(problem), "the node is shutting down");
        }
        /* a retry squeezed into the last moments would time out and make a
        ** commit's fate unknown for nothing */
        if (now >= deadline_ns ||
            (attempt > 0 && deadline_ns - now < ROUTER__ATTEMPT_MIN_MS * 1000000))
            break;
        if (attempt > 0) router__count(r, &r->stats.retries);
        if (have_resp) {
            range_kv_response_free(resp);
            memset(resp, 0, sizeof(*resp));
            have_resp = false;
        }
        range_descriptor_free(used);

        /* route */
        pthread_mutex_lock(&r->mu);
        router__entry *e = op->route.before
                               ? router__find_before(r, op->route.key, op->route.key_len,
                                                     op->route.before_open)
                               : router__find(r, op->route.key, op->route.key_len);
        uint64_t target = 0;
        uint64_t cached = 0; /* the cached leaseholder (a stale read may go elsewhere) */
        bool stale_local = false;
        int crc = RANGE_OK;
        if (e != NULL) {
            target = cached = router__target_locked(r, e);
            crc = range_descriptor_copy(used, &e->desc);
            if (try_local && router__is_replica(&e->desc, r->config.local_node_id)) {
                target = r->config.local_node_id;
                stale_local = true;
            }
        }
        pthread_mutex_unlock(&r->mu);
        if (crc != RANGE_OK) {
            rc = crc;
            goto done;
        }
        if (e == NULL) {
            char key[ROUTER__KEY_TEXT_MAX + 8];
            router__key_text(op->route.key, op->route.key_len, key, sizeof(key));
            snprintf(problem, sizeof(problem), "no range known for key %s%s",
                     op->route.before_open ? "+inf" : key, op->route.before ? " (before)" : "");
            if (op->no_lookup || lookups >= ROUTER__META_LOOKUPS_MAX) break;
            lookups++;
            int lrc = router__meta_lookup(r, &op->route, deadline_ns, problem, sizeof(problem));
            if (lrc == RANGE_OK) {
                attempt--; /* a lookup is not an attempt at the operation */
                continue;
            }
            if (lrc == RANGE_ERR_NOMEM) {
                rc = lrc;
                goto done;
            }
            break; /* meta does not place the key: waiting cannot help */
        }
        if (target == 0) {
            snprintf(problem, sizeof(problem), "range %" PRIu64 " has no replicas",
                     used->range_id);
            break;
        }
        last_range = used->range_id;

        /* build and send */
        range_kv_request req;
        memset(&req, 0, sizeof(req));
        rc = op->build(op->build_ctx, r, used, &req);
        if (op->stale) req.stale_ok = true;
        if (rc == RANGE_OK && op->observed != NULL && !hlc_is_zero(req.uncertainty_limit)) {
            /* the entry of the node it goes to: its server lowers the limit */
            req.observed_ts = range_observed_get(op->observed, target);
            req.observed_node_id = hlc_is_zero(req.observed_ts) ? 0 : target;
        }
        if (rc != RANGE_OK) {
            if (unknown && rc == RANGE_ERR_KEY_MISMATCH && op->unknown != NULL)
                goto done; /* plan again: the range now holding the keys answers */
            /* a commit that may have applied elsewhere stays ambiguous */
            if (unknown && (rc == RANGE_ERR_CROSS_RANGE || rc == RANGE_ERR_KEY_MISMATCH)) {
                snprintf(problem, sizeof(problem), "range %" PRIu64 " changed shape after a "
                         "commit attempt of unknown outcome", used->range_id);
                break;
            }
            goto done; /* the builder set the detail */
        }
        base_buf_reset(&req_bytes);
        rc = range_kv_request_encode(&req, &req_bytes);
        if (rc != RANGE_OK) {
            router__set_error(r, "cannot encode the %s request (%d)", op->what, rc);
            goto done;
        }
        int64_t timeout_ms = r->config.rpc_timeout_ms;
        if (target == slow_node)
            timeout_ms <<= slow_timeouts < ROUTER__SLOW_DOUBLINGS_MAX ? slow_timeouts
                                                                      : ROUTER__SLOW_DOUBLINGS_MAX;
        int64_t left_ms = (deadline_ns - now) / 1000000;
        if (left_ms < timeout_ms) timeout_ms = left_ms > 0 ? left_ms : 1;
        rc = router__attempt(r, target, &req_bytes, timeout_ms, &res);
        if (rc != RANGE_OK) goto done;

        /* classify */
        bool backoff = true;
        bool refused = false; /* the node did not serve the range (moved, unreachable) */
        seen.blocked = false;
        /* a lost answer says nothing new about a merge: the attempt squeezed
        ** into the deadline's last milliseconds must not turn "being merged"
        ** into "unavailable" */
        if (res.transport_rc == RPC_OK) merging = false;
        if (res.transport_rc != RPC_OK) {
            if (res.sent && op->is_commit) unknown = true;
            if (res.transport_rc == RPC_ERR_TIMEOUT) {
                slow_timeouts = target == slow_node ? slow_timeouts + 1 : 1;
                slow_node = target;
            }
            snprintf(problem, sizeof(problem), "node %" PRIu64 ": %s", target,
                     rpc_strerror(res.transport_rc));
            router__count(r, &r->stats.failovers);
            router__move_leaseholder(r, used->range_id, target, 0);
            /* a timeout may be a slow leaseholder: not a refusal */
            refused = res.transport_rc != RPC_ERR_TIMEOUT;
            goto retry;
        }
        int32_t status = res.status;
        if (res.payload.len > 0) {
            int drc = range_kv_response_decode(res.payload.data, res.payload.len, resp);
            if (drc != RANGE_OK) {
                if (op->is_commit) unknown = true;
                snprintf(problem, sizeof(problem), "node %" PRIu64 ": unreadable answer (%d)",
                         target, drc);
                router__count(r, &r->stats.failovers);
                router__move_leaseholder(r, used->range_id, target, 0);
                goto retry;
            }
            have_resp = true;
            status = resp->status;
            if (op->observed != NULL && resp->observed_node_id == target)
                range_observed_add(op->observed, target, resp->observed_ts);
        }
        if (stale_local && status != RANGE_OK && status != RANGE_NOT_FOUND &&
            !(status == RANGE_ERR_KEY_MISMATCH && have_resp && resp->has_descriptor)) {
            /* this node's replica cannot serve it (not closed that far, behind,
            ** an intent to push): the leaseholder answers, at once. What a
            ** follower says is no news of the leaseholder, but its hint is. */
            try_local = false;
            router__count(r, &r->stats.stale_fallbacks);
            uint64_t hint = status == RANGE_ERR_NOT_LEADER && have_resp ? resp->leader_hint : 0;
            if (hint != 0 && hint != cached) router__move_leaseholder(r, used->range_id, cached, hint);
            snprintf(problem, sizeof(problem), "node %" PRIu64 ": no follower read (%d)", target,
                     (int)status);
            backoff = false;
            attempt--; /* not an attempt at the leaseholder */
            goto retry;
        }
        switch (status) {
        case RANGE_ERR_NOT_LEADER: {
            uint64_t hint = have_resp ? resp->leader_hint : 0;
            snprintf(problem, sizeof(problem), "node %" PRIu64 ": not the leaseholder", target);
            if (hint != 0 && hint != target) {
                router__count(r, &r->stats.redirects);
                router__move_leaseholder(r, used->range_id, target, hint);
                if (redirects_in_row++ < ROUTER__REDIRECTS_FREE) backoff = false;
            } else {
                router__count(r, &r->stats.failovers);
                router__move_leaseholder(r, used->range_id, target, 0);
                refused = true;
                gone_answers = gone_range == used->range_id ? gone_answers + 1 : 1;
                gone_range = used->range_id;
                if (op->lookup_when_gone && !op->no_lookup && gone_answers >= used->n_replicas &&
                    lookups < ROUTER__META_LOOKUPS_MAX) {
                    /* a failed lookup changes nothing: the cached range is
                    ** asked again until the deadline */
                    lookups++;
                    gone_answers = 0;
                    int lrc = router__meta_lookup(r, &op->route, deadline_ns, problem,
                                                  sizeof(problem));
                    if (lrc == RANGE_ERR_NOMEM) {
                        rc = lrc;
                        goto done;
                    }
                }
            }
            goto retry;
        }
        case RANGE_ERR_KEY_MISMATCH:
            snprintf(problem, sizeof(problem), "node %" PRIu64 ": range %" PRIu64
                     " does not hold the keys", target, used->range_id);
            if (have_resp && resp->has_descriptor) {
                bool installed = false, other = false;
                pthread_mutex_lock(&r->mu);
                int irc = router__install_locked(r, &resp->descriptor, &installed);
                if (installed) r->stats.descriptor_refreshes++;
                /* the range that holds the key, from the same node */
                if (irc == RANGE_OK && resp->has_other)
                    irc = router__install_locked(r, &resp->other, &other);
                if (other) r->stats.descriptor_refreshes++;
                pthread_mutex_unlock(&r->mu);
                if (irc != RANGE_OK) {
                    rc = irc;
                    goto done;
                }
                /* a changed descriptor routes differently at once */
                if ((installed && resp->descriptor.generation != used->generation) || other)
                    backoff = false;
                /* an answer older than the cache (a replica behind, or a
                ** node without the range naming its own): ask another */
                if (!installed && !other) {
                    router__count(r, &r->stats.failovers);
                    router__move_leaseholder(r, used->range_id, target, 0);
                    refused = true;
                }
            } else {
                router__count(r, &r->stats.failovers);
                router__move_leaseholder(r, used->range_id, target, 0);
                refused = true;
            }
            goto retry;
        case RANGE_ERR_AMBIGUOUS:
        case RANGE_ERR_DROPPED:
            /* the server gave up waiting; ask it (same node) again */
            if (op->is_commit) unknown = true;
            snprintf(problem, sizeof(problem), "node %" PRIu64 ": outcome unknown", target);
            goto retry;
        case RANGE_ERR_MERGING:
            /* frozen by a merge: nothing of this attempt applied; once
            ** merged, the range's nodes answer KEY_MISMATCH naming the
            ** range that took it over (or it serves again) */
            snprintf(problem, sizeof(problem), "range %" PRIu64 " is being merged",
                     used->range_id);
            merging = true;
            if (op->merging_ends) {
                rc = RANGE_ERR_MERGING;
                router__set_error(r, "range %" PRIu64 " is being merged: no %s now",
                                  used->range_id, op->what);
                goto done;
            }
            goto retry;
        case RANGE_ERR_BUSY:
        case RANGE_ERR_UNAVAILABLE:
            snprintf(problem, sizeof(problem), "node %" PRIu64 ": %s", target,
                     status == RANGE_ERR_BUSY ? "busy" : "unavailable");
            router__count(r, &r->stats.failovers);
            router__move_leaseholder(r, used->range_id, target, 0);
            goto retry;
        case RANGE_ERR_INTENT: {
            /* another transaction's intent: push its holder, resolve the
            ** intent with the answer, ask again (docs/txn.md) */
            if (!have_resp || resp->intent_txn_id == 0 || resp->intent_key_len == 0 ||
                resp->intent_anchor_len == 0) {
                snprintf(problem, sizeof(problem), "node %" PRIu64 ": an intent answer without "
                         "the intent", target);
                router__count(r, &r->stats.failovers);
                router__move_leaseholder(r, used->range_id, target, 0);
                goto retry;
            }
            router__move_leaseholder(r, used->range_id, target, target);
            int64_t met_ns = base_monotonic_ns();
            if (seen.holder != resp->intent_txn_id || seen.holder_since_ns == 0)
                seen.holder_since_ns = met_ns;
            if (op->lock_wait && resp->intent_unreplicated &&
                met_ns - seen.holder_since_ns < ROUTER__LOCK_PUSH_AFTER_MS * 1000000) {
                /* the leaseholder queued us for its push delay and is woken
                ** by the release: ask again before pushing */
                seen.blocked = seen.pending = seen.unreplicated = true;
                seen.holder = resp->intent_txn_id;
                router__key_text(resp->intent_key, resp->intent_key_len, seen.key,
                                 sizeof(seen.key));
                snprintf(problem, sizeof(problem), "lock of txn %016" PRIx64 " on key %.64s",
                         seen.holder, seen.key);
                backoff = false;
                if (met_ns - now < ROUTER__LOCK_RETRY_PAUSE_MS * 1000000)
                    router__sleep_ms(ROUTER__LOCK_RETRY_PAUSE_MS);
                goto retry;
            }
            int irc = router__meet_intent(r, op, resp, deadline_ns, &seen);
            if (irc != RANGE_OK) {
                rc = irc; /* the detail is set */
                goto done;
            }
            snprintf(problem, sizeof(problem), "%s of txn %016" PRIx64 " on key %.64s%s",
                     seen.unreplicated ? "lock" : "intent", seen.holder, seen.key,
                     seen.pending ? ", pending" : "");
            /* a transaction waiting while it holds intents itself (prepare,
            ** its validation) gives up after a bound: a wait that is not a
            ** lock request is not part of deadlock detection's cycles
            ** everywhere (anonymous readers), so this bounds it. A LOCK
            ** waits until its deadline (its pushes find cycles). */
            if (seen.pending && op->txn != NULL && !op->lock_wait &&
                base_monotonic_ns() - seen.first_pending_ns > ROUTER__INTENT_WAIT_TXN_MS * 1000000)
                break;
            backoff = seen.pending && !op->lock_wait; /* a PENDING push waited its bound */
            if (!seen.pending) redirects_in_row = 0;
            /* a lock: ask again for a while before the next push (a push of
            ** a holder without a record waits out its bound) */
            if (op->lock_wait) seen.holder_since_ns = base_monotonic_ns();
            goto retry;
        }
        default:
            break;
        }
        if (status == RANGE_ERR_INTENT) break; /* gave up waiting (above) */
        if (status <= -2000 && status > -3000) {
            /* an rpc-layer status (e.g. RPC_ERR_NO_HANDLER): nobody evaluated it */
            snprintf(problem, sizeof(problem), "node %" PRIu64 ": %s", target,
                     rpc_strerror(status));
            router__count(r, &r->stats.failovers);
            router__move_leaseholder(r, used->range_id, target, 0);
            goto retry;
        }
        if (op->is_commit && unknown && !router__evaluated_commit_status(status)) {
            snprintf(problem, sizeof(problem), "node %" PRIu64 ": error %d after an attempt of "
                     "unknown outcome", target, (int)status);
            break;
        }
        /* a decided answer: this node serves the range (a follower read
        ** says nothing of the lease) */
        if (stale_local)
            router__count(r, &r->stats.stale_local);
        else
            router__move_leaseholder(r, used->range_id, target, target);
        rc = status;
        bool kept = router__answer_kept(rc) || (op->keep_aborted && rc == RANGE_ERR_ABORTED) ||
                    (op->keep_uncertain && rc == RANGE_ERR_UNCERTAIN);
        if (!kept)
            router__set_error(r, "range %" PRIu64 " at node %" PRIu64 ": %s failed (%d)",
                              used->range_id, target, op->what, (int)rc);
        if (kept) {
            /* keep the answer for the caller */
            base_buf tmp = *resp_bytes;
            *resp_bytes = res.payload;
            res.payload = tmp;
            base_buf_free(&req_bytes);
            base_buf_free(&res.payload);
            if (!have_resp) memset(resp, 0, sizeof(*resp));
            resp->status = rc;
            if (op->unknown != NULL) *op->unknown = unknown;
            /* decoded fields point into the payload, which moved with its
            ** data pointer unchanged */
            return rc;
        }
        goto done;

    retry:
        if (!refused) {
            first_refusals = 0;
        } else if (++first_refusals >= used->n_replicas && rescues < ROUTER__RESCUES_MAX) {
            /* none of the cached replicas of the range hosts it any more:
            ** for the first range no lookup can find it (meta lives
            ** there), and meta may lag a replica change (test_txn_sim seed
            ** 451: all of range 2 moved to a node the cache did not name,
            ** which nobody else pointed to); ask every node we know */
            rescues++;
            first_refusals = 0;
            int xrc = router__rescue_first(r, used, &op->route, deadline_ns);
            if (xrc == RANGE_ERR_NOMEM) {
                rc = xrc;
                goto done;
            }
            if (xrc == RANGE_OK) backoff = false; /* a newer descriptor: route again */
        }
        if (backoff) {
            redirects_in_row = 0;
            int64_t delay = ROUTER__BACKOFF_MIN_MS << (backoff_step < 16 ? backoff_step : 16);
            if (delay > ROUTER__BACKOFF_MAX_MS) delay = ROUTER__BACKOFF_MAX_MS;
            else backoff_step++;
            delay = delay / 2 + (int64_t)(router__random(r) % (uint64_t)(delay / 2 + 1));
            int64_t left = (deadline_ns - base_monotonic_ns()) / 1000000;
            router__sleep_ms(delay < left ? delay : left);
        }
    }
    /* deadline or attempts exhausted, or a break above */
    {
        int64_t waited_ms = (base_monotonic_ns() - start_ns) / 1000000;
        if (seen.blocked && !(op->is_commit && unknown)) {
            /* an evaluated refusal: nothing of this request applied */
            rc = RANGE_ERR_INTENT;
            router__set_error(r, "key %s is held by %s of transaction %016" PRIx64 ", %s "
                              "after %" PRId64 " ms (the %s waited for it); retry the transaction",
                              seen.key, seen.unreplicated ? "a lock" : "an intent", seen.holder,
                              seen.pending ? "still pending" : "not resolved", waited_ms,
                              op->what);
        } else if (merging && !(op->is_commit && unknown)) {
            /* an evaluated refusal: retrying the transaction is safe */
            rc = RANGE_ERR_MERGING;
            router__set_error(r, "range %" PRIu64 " is being merged and did not serve the %s "
                              "within %" PRId64 " ms; retry", last_range, op->what, waited_ms);
        } else if (op->is_commit && unknown) {
            rc = RANGE_ERR_AMBIGUOUS;
            router__count(r, &r->stats.ambiguous);
            router__set_error(r, "range %" PRIu64 ": no replica confirmed the commit's outcome "
                              "within %" PRId64 " ms; last: %s", last_range, waited_ms, problem);
        } else {
            rc = RANGE_ERR_UNAVAILABLE;
            router__count(r, &r->stats.unavailable);
            if (last_range != 0)
                router__set_error(r, "range %" PRIu64 " is unavailable: no leaseholder answered "
                                  "the %s within %" PRId64 " ms (last: %s)", last_range, op->what,
                                  waited_ms, problem);
            else
                router__set_error(r, "%s", problem);
        }
    }
done:
    if (op->unknown != NULL) *op->unknown = unknown;
    if (have_resp) range_kv_response_free(resp);
    memset(resp, 0, sizeof(*resp));
    range_descriptor_free(used);
    base_buf_free(&req_bytes);
    base_buf_free(&res.payload);
    return rc;
}

/* ---- get ---------------------------------------------------------------------- */

typedef struct router__get_ctx {
    const uint8_t *key;
    size_t key_len;
    hlc_timestamp read_ts;
    hlc_timestamp limit; /* uncertainty limit (HLC_ZERO: none) */
} router__get_ctx;

hlc_timestamp range_observed_get(const range_observed *o, uint64_t node_id) {
    for (size_t i = 0; o != NULL && i < o->n && i < RANGE_OBSERVED_MAX; i++)
        if (o->node_id[i] == node_id) return o->ts[i];
    return HLC_ZERO;
}

void range_observed_add(range_observed *o, uint64_t node_id, hlc_timestamp ts) {
    if (o == NULL || node_id == 0 || hlc_is_zero(ts) || o->n >= RANGE_OBSERVED_MAX) return;
    if (!hlc_is_zero(range_observed_get(o, node_id))) return; /* the first one bounds most */
    o->node_id[o->n] = node_id;
    o->ts[o->n] = ts;
    o->n++;
}

/* A kept RANGE_ERR_UNCERTAIN answer (docs/txn.md section 4) into *u, with
** the thread's error detail: RANGE_ERR_UNCERTAIN, or RANGE_ERR_CORRUPT when
** it does not name the version, RANGE_ERR_NOMEM. */
static int router__uncertain(range_router *r, const range_kv_response *resp, uint64_t range_id,
                             range_conflict *u) {
    if (resp->conflict_key_len == 0 || hlc_is_zero(resp->conflict_ts)) {
        router__set_error(r, "range %" PRIu64 ": an uncertainty answer without the version",
                          range_id);
        return RANGE_ERR_CORRUPT;
    }
    u->kind = RANGE_CONFLICT_READ_WRITE;
    u->conflict_ts = resp->conflict_ts;
    u->pending = false;
    base_buf_reset(&u->key);
    if (base_buf_append(&u->key, resp->conflict_key, resp->conflict_key_len) != 0)
        return RANGE_ERR_NOMEM;
    char key[128], ts[64];
    router__key_text(resp->conflict_key, resp->conflict_key_len, key, sizeof(key));
    hlc_format(resp->conflict_ts, ts, sizeof(ts));
    router__set_error(r, "key %s has a value at %s within the read's uncertainty window", key,
                      ts);
    return RANGE_ERR_UNCERTAIN;
}

static int router__build_get(void *ctx, range_router *r, const range_descriptor *d,
                             range_kv_request *req) {
    (void)r;
    const router__get_ctx *g = ctx;
    req->op = RANGE_KV_GET;
    req->range_id = d->range_id;
    req->read_ts = g->read_ts;
    req->key = g->key;
    req->key_len = g->key_len;
    req->uncertainty_limit = g->limit;
    return RANGE_OK;
}

/* limit: HLC_ZERO (none) or above read_ts with uncertain set (not stale). */
static int router__get_at(range_kv *kv, const uint8_t *key, size_t key_len,
                          hlc_timestamp read_ts, hlc_timestamp limit, range_observed *observed,
                          bool stale, base_buf *out, range_conflict *uncertain) {
    range_router *r = (range_router *)kv;
    router__clear_error();
    if (key == NULL || key_len == 0 || key_len > STORAGE_KEY_SIZE_MAX) return RANGE_ERR_INVALID;
    router__get_ctx g = {key, key_len, read_ts, limit};
    router__op op = {.route = {key, key_len, false, false}, .build = router__build_get,
                     .build_ctx = &g, .is_commit = false, .what = "read", .stale = stale,
                     .keep_uncertain = uncertain != NULL, .observed = observed};
    range_kv_response resp;
    base_buf bytes = {0};
    range_descriptor used;
    int rc = router__execute(r, &op, &resp, &bytes, &used);
    if (rc == RANGE_OK) {
        base_buf_reset(out);
        if (resp.value_len > 0 && base_buf_append(out, resp.value, resp.value_len) != 0)
            rc = RANGE_ERR_NOMEM;
    } else if (rc == RANGE_ERR_UNCERTAIN) {
        rc = router__uncertain(r, &resp, used.range_id, uncertain);
    } else if (rc == RANGE_ERR_CONFLICT || rc == RANGE_ERR_PUSHED) {
        router__set_error(r, "range %" PRIu64 ": commit answer to a read (%d)", used.range_id, rc);
        rc = RANGE_ERR_CORRUPT;
    }
    /* zeroed by router__execute on its errors, so freeing is always right */
    range_kv_response_free(&resp);
    range_descriptor_free(&used);
    base_buf_free(&bytes);
    return rc;
}

static int router__get(range_kv *kv, const uint8_t *key, size_t key_len, hlc_timestamp read_ts,
                       base_buf *out) {
    return router__get_at(kv, key, key_len, read_ts, HLC_ZERO, NULL, false, out, NULL);
}

static int router__get_stale(range_kv *kv, const uint8_t *key, size_t key_len,
                             hlc_timestamp read_ts, base_buf *out) {
    return router__get_at(kv, key, key_len, read_ts, HLC_ZERO, NULL, true, out, NULL);
}

static int router__get_uncertain(range_kv *kv, const uint8_t *key, size_t key_len,
                                 hlc_timestamp read_ts, hlc_timestamp limit,
                                 range_observed *observed, base_buf *out,
                                 range_conflict *uncertain) {
    if (uncertain == NULL || hlc_compare(limit, read_ts) <= 0) return RANGE_ERR_INVALID;
    return router__get_at(kv, key, key_len, read_ts, limit, observed, false, out, uncertain);
}

/* ---- scans -------------------------------------------------------------------- */

typedef struct router__iter {
    range_router *r;
    hlc_timestamp read_ts;
    bool reverse;
    bool stale;         /* pages are stale reads (router__op.stale) */
    hlc_timestamp limit;       /* uncertainty limit (HLC_ZERO: none) */
    range_conflict *uncertain; /* the caller's, filled on RANGE_ERR_UNCERTAIN */
    range_observed *observed;  /* the caller's (NULL: none), router__op.observed */
    base_buf lo;        /* what is left to scan: [lo, hi); lo empty = from the start */
    base_buf hi;
    bool hi_open;       /* hi = +infinity */
    bool done;
    uint32_t page_bytes;
    /* the current page */
    bool has_page;
    base_buf page;            /* its bytes; rows point into them */
    range_kv_response resp;   /* decoded */
    size_t next_row;
    range_descriptor range;   /* the range that answered it (owned) */
    base_buf req_start, req_end; /* the span asked of that range */
    bool req_end_open;
    range_span req_span; /* the same, for resolving a decided holder's intents there */
} router__iter;

/* [lo, hi) clipped to d, into req_start/req_end. */
static int router__build_scan(void *ctx, range_router *r, const range_descriptor *d,
                              range_kv_request *req) {
    (void)r;
    router__iter *it = ctx;
    const uint8_t *s = it->lo.data;
    size_t slen = it->lo.len;
    if (range__key_cmp(d->start_key, d->start_len, s, slen) > 0) {
        s = d->start_key;
        slen = d->start_len;
    }
    const uint8_t *e = it->hi.data;
    size_t elen = it->hi.len;
    bool open = it->hi_open;
    if (d->end_len > 0 && (open || range__key_cmp(d->end_key, d->end_len, e, elen) < 0)) {
        e = d->end_key;
        elen = d->end_len;
        open = false;
    }
    base_buf_reset(&it->req_start);
    base_buf_reset(&it->req_end);
    if (base_buf_append(&it->req_start, slen ? s : (const uint8_t *)"", slen) != 0 ||
        base_buf_append(&it->req_end, elen ? e : (const uint8_t *)"", open ? 0 : elen) != 0)
        return RANGE_ERR_NOMEM;
    it->req_end_open = open;
    req->op = RANGE_KV_SCAN;
    req->range_id = d->range_id;
    req->read_ts = it->read_ts;
    req->start = it->req_start.len ? it->req_start.data : NULL;
    req->start_len = it->req_start.len;
    req->end = open ? NULL : it->req_end.data;
    req->end_len = open ? 0 : it->req_end.len;
    req->reverse = it->reverse;
    req->max_rows = RANGE_KV_SCAN_ROWS_MAX;
    req->max_bytes = it->page_bytes;
    req->uncertainty_limit = it->limit;
    it->req_span = (range_span){req->start, req->start_len, req->end, req->end_len, false};
    return RANGE_OK;
}

static void router__iter_drop_page(router__iter *it) {
    if (!it->has_page) return;
    range_kv_response_free(&it->resp);
    memset(&it->resp, 0, sizeof(it->resp));
    range_descriptor_free(&it->range);
    base_buf_free(&it->page);
    it->has_page = false;
    it->next_row = 0;
}

/* Rows inside the asked span, strictly ordered in the scan direction, and
** progress when "more" is set: else a bad peer could loop us forever. */
static bool router__page_ok(const router__iter *it) {
    const range_kv_response *p = &it->resp;
    if (p->more && p->n_rows == 0) return false;
    for (size_t i = 0; i < p->n_rows; i++) {
        const range_kv_row *row = &p->rows[i];
        if (range__key_cmp(row->key, row->key_len, it->req_start.data, it->req_start.len) < 0)
            return false;
        if (!it->req_end_open &&
            range__key_cmp(row->key, row->key_len, it->req_end.data, it->req_end.len) >= 0)
            return false;
        if (i > 0) {
            int c = range__key_cmp(p->rows[i - 1].key, p->rows[i - 1].key_len, row->key,
                                    row->key_len);
            if (it->reverse ? c <= 0 : c >= 0) return false;
        }
    }
    return true;
}

/* Move [lo, hi) past the page just consumed; sets done at the end. */
static int router__iter_advance(router__iter *it) {
    const range_kv_response *p = &it->resp;
    const range_kv_row *last = p->n_rows ? &p->rows[p->n_rows - 1] : NULL;
    if (!it->reverse) {
        base_buf_reset(&it->lo);
        if (p->more) {
            /* the smallest key after the last row: last + 0x00 */
            if (base_buf_append(&it->lo, last->key, last->key_len) != 0 ||
                base_buf_append_byte(&it->lo, 0) != 0)
                return RANGE_ERR_NOMEM;
        } else if (it->range.end_len == 0) {
            it->done = true;
            return RANGE_OK;
        } else if (base_buf_append(&it->lo, it->range.end_key, it->range.end_len) != 0) {
            return RANGE_ERR_NOMEM;
        }
    } else {
        base_buf_reset(&it->hi);
        it->hi_open = false;
        if (p->more) {
            if (base_buf_append(&it->hi, last->key, last->key_len) != 0) return RANGE_ERR_NOMEM;
        } else if (it->range.start_len == 0) {
            it->done = true;
            return RANGE_OK;
        } else if (base_buf_append(&it->hi, it->range.start_key, it->range.start_len) != 0) {
            return RANGE_ERR_NOMEM;
        }
    }
    if (!it->hi_open && range__key_cmp(it->lo.data, it->lo.len, it->hi.data, it->hi.len) >= 0)
        it->done = true;
    return RANGE_OK;
}

static int router__iter_fetch(router__iter *it) {
    range_router *r = it->r;
    router__op op;
    memset(&op, 0, sizeof(op));
    if (!it->reverse) {
        op.route = (router__route){it->lo.data, it->lo.len, false, false};
    } else {
        op.route = (router__route){it->hi.data, it->hi.len, true, it->hi_open};
    }
    op.build = router__build_scan;
    op.build_ctx = it;
    op.what = "scan";
    op.resolve_span = &it->req_span;
    op.stale = it->stale;
    op.keep_uncertain = it->uncertain != NULL;
    op.observed = it->observed;
    int rc = router__execute(r, &op, &it->resp, &it->page, &it->range);
    if (rc == RANGE_ERR_UNCERTAIN) {
        rc = router__uncertain(r, &it->resp, it->range.range_id, it->uncertain);
        it->has_page = true; /* what execute kept, dropped here */
        router__iter_drop_page(it);
        return rc;
    }
    if (!router__answer_kept(rc)) return rc;
    it->has_page = true;
    it->next_row = 0;
    router__count(r, &r->stats.scan_pages);
    if (rc != RANGE_OK || !router__page_ok(it)) {
        router__set_error(r, "range %" PRIu64 ": malformed scan page (status %d)",
                          it->range.range_id, rc);
        router__iter_drop_page(it);
        return RANGE_ERR_CORRUPT;
    }
    if (it->page_bytes < RANGE_KV_SCAN_BYTES_DEFAULT) {
        /* short first pages keep LIMIT-style scans cheap; long scans grow */
        it->page_bytes = it->page_bytes * 2 > RANGE_KV_SCAN_BYTES_DEFAULT
                             ? RANGE_KV_SCAN_BYTES_DEFAULT
                             : it->page_bytes * 2;
    }
    return RANGE_OK;
}

static int router__iter_open_at(range_kv *kv, const uint8_t *start, size_t start_len,
                                const uint8_t *end, size_t end_len, hlc_timestamp read_ts,
                                bool reverse, bool stale, range_kv_iter **out) {
    range_router *r = (range_router *)kv;
    router__clear_error();
    *out = NULL;
    if ((start == NULL && start_len > 0) || (end == NULL && end_len > 0) ||
        start_len > STORAGE_KEY_SIZE_MAX || end_len > STORAGE_KEY_SIZE_MAX)
        return RANGE_ERR_INVALID;
    router__iter *it = base_calloc(1, sizeof(*it)); /* owner: caller, iter_close */
    if (it == NULL) return RANGE_ERR_NOMEM;
    it->r = r;
    it->read_ts = read_ts;
    it->reverse = reverse;
    it->stale = stale;
    it->hi_open = end_len == 0;
    it->page_bytes = ROUTER__SCAN_FIRST_PAGE_BYTES;
    if (base_buf_append(&it->lo, start_len ? start : (const uint8_t *)"", start_len) != 0 ||
        base_buf_append(&it->hi, end_len ? end : (const uint8_t *)"", end_len) != 0) {
        base_buf_free(&it->lo);
        base_buf_free(&it->hi);
        base_free(it);
        return RANGE_ERR_NOMEM;
    }
    if (!it->hi_open && range__key_cmp(it->lo.data, it->lo.len, it->hi.data, it->hi.len) >= 0)
        it->done = true; /* empty span */
    *out = (range_kv_iter *)it;
    return RANGE_OK;
}

static int router__iter_open(range_kv *kv, const uint8_t *start, size_t start_len,
                             const uint8_t *end, size_t end_len, hlc_timestamp read_ts,
                             bool reverse, range_kv_iter **out) {
    return router__iter_open_at(kv, start, start_len, end, end_len, read_ts, reverse, false, out);
}

static int router__iter_open_stale(range_kv *kv, const uint8_t *start, size_t start_len,
                                   const uint8_t *end, size_t end_len, hlc_timestamp read_ts,
                                   bool reverse, range_kv_iter **out) {
    return router__iter_open_at(kv, start, start_len, end, end_len, read_ts, reverse, true, out);
}

static int router__iter_open_uncertain(range_kv *kv, const uint8_t *start, size_t start_len,
                                       const uint8_t *end, size_t end_len, hlc_timestamp read_ts,
                                       hlc_timestamp limit, range_observed *observed,
                                       bool reverse, range_conflict *uncertain,
                                       range_kv_iter **out) {
    *out = NULL;
    if (uncertain == NULL || hlc_compare(limit, read_ts) <= 0) return RANGE_ERR_INVALID;
    int rc = router__iter_open_at(kv, start, start_len, end, end_len, read_ts, reverse, false,
                                  out);
    if (rc != RANGE_OK) return rc;
    router__iter *it = (router__iter *)*out;
    it->limit = limit;
    it->uncertain = uncertain;
    it->observed = observed;
    return RANGE_OK;
}

static int router__iter_next(range_kv_iter *kit, const uint8_t **key, size_t *key_len,
                             const uint8_t **value, size_t *value_len) {
    router__iter *it = (router__iter *)kit;
    router__clear_error();
    /* every pass either returns a row, ends, or fetches a page that moves
    ** [lo, hi) strictly (router__page_ok); the bound only guards bugs */
    for (uint64_t pass = 0; pass < UINT32_MAX; pass++) {
        if (it->has_page && it->next_row < it->resp.n_rows) {
            const range_kv_row *row = &it->resp.rows[it->next_row++];
            *key = row->key;
            *key_len = row->key_len;
            *value = row->value ? row->value : (const uint8_t *)"";
            *value_len = row->value_len;
            return 1;
        }
        if (it->has_page) {
            int rc = router__iter_advance(it);
            router__iter_drop_page(it);
            if (rc != RANGE_OK) return rc;
        }
        if (it->done) return 0;
        int rc = router__iter_fetch(it);
        if (rc != RANGE_OK) return rc;
    }
    return RANGE_ERR_CORRUPT;
}

static void router__iter_close(range_kv_iter *kit) {
    router__iter *it = (router__iter *)kit;
    if (it == NULL) return;
    router__iter_drop_page(it);
    base_buf_free(&it->lo);
    base_buf_free(&it->hi);
    base_buf_free(&it->req_start);
    base_buf_free(&it->req_end);
    base_free(it);
}

/* ---- meta lookups ------------------------------------------------------------- */

/* A one-row scan of the meta span that places a route (range/meta.c). */
typedef struct router__meta_ctx {
    base_buf start, end;
    hlc_timestamp read_ts;
} router__meta_ctx;

static int router__build_meta(void *ctx, range_router *r, const range_descriptor *d,
                              range_kv_request *req) {
    (void)r;
    router__meta_ctx *m = ctx;
    req->op = RANGE_KV_SCAN;
    req->range_id = d->range_id;
    req->read_ts = m->read_ts;
    req->start = m->start.data;
    req->start_len = m->start.len;
    req->end = m->end.data;
    req->end_len = m->end.len;
    /* meta lies in the first range; should it ever end inside meta, the
    ** part in this range is what this range can answer */
    if (d->end_len > 0 && range__key_cmp(d->end_key, d->end_len, m->end.data, m->end.len) < 0) {
        req->end = d->end_key;
        req->end_len = d->end_len;
    }
    req->max_rows = 1;
    req->max_bytes = ROUTER__SCAN_FIRST_PAGE_BYTES;
    /* inconsistent: a split's or merge's intent on the entry is neither
    ** waited on nor pushed (its record may lie in a range only meta
    ** places); the committed descriptor under it really existed, and a
    ** replica that moved on answers KEY_MISMATCH with the current one */
    req->skip_intents = true;
    return RANGE_OK;
}

/* Does d place the route (hold its key, or the greatest key below it)? */
static bool router__places(const range_descriptor *d, const router__route *route) {
    if (!route->before) return range_descriptor_contains(d, route->key, route->key_len);
    if (route->before_open) return d->end_len == 0;
    if (range__key_cmp(d->start_key, d->start_len, route->key, route->key_len) >= 0)
        return false;
    return d->end_len == 0 ||
           range__key_cmp(route->key, route->key_len, d->end_key, d->end_len) <= 0;
}

/* Ask meta which range places route and install it. RANGE_OK (installed a
** descriptor that places it), RANGE_NOT_FOUND (meta has none: problem
** unchanged), or an error (problem gets the reason appended). */
static int router__meta_lookup(range_router *r, const router__route *route, int64_t deadline_ns,
                               char *problem, size_t problem_size) {
    router__meta_ctx m;
    memset(&m, 0, sizeof(m));
    range_kv_response resp;
    memset(&resp, 0, sizeof(resp));
    range_descriptor used, found;
    memset(&used, 0, sizeof(used));
    memset(&found, 0, sizeof(found));
    base_buf bytes = {0}; /* owner: this function; the answer */
    range_meta_lookup mode = !route->before      ? RANGE_META_HOLDING
                             : route->before_open ? RANGE_META_LAST
                                                  : RANGE_META_BEFORE;
    int rc = range_meta_lookup_span(route->key, route->key_len, mode, &m.start, &m.end);
    if (rc == RANGE_ERR_INVALID) {
        rc = RANGE_NOT_FOUND; /* a key meta cannot hold (too long, nothing before it) */
        goto done;
    }
    if (rc != RANGE_OK) goto done;
    router__count(r, &r->stats.meta_lookups);
    m.read_ts = hlc_now(r->config.clock);
    router__op op;
    memset(&op, 0, sizeof(op));
    op.route = (router__route){m.start.data, m.start.len, false, false};
    op.build = router__build_meta;
    op.build_ctx = &m;
    op.what = "meta lookup";
    op.deadline_ns = deadline_ns;
    op.no_lookup = true;
    rc = router__execute(r, &op, &resp, &bytes, &used);
    if (rc != RANGE_OK) {
        size_t len = strlen(problem);
        snprintf(problem + len, problem_size - len, " (meta lookup failed: %d)", rc);
        if (rc != RANGE_ERR_NOMEM) rc = RANGE_ERR_UNAVAILABLE;
        goto done;
    }
    if (resp.n_rows == 0) {
        rc = RANGE_NOT_FOUND;
        goto done;
    }
    if (range_descriptor_decode(resp.rows[0].value, resp.rows[0].value_len, &found) !=
        RANGE_OK) {
        size_t len = strlen(problem);
        snprintf(problem + len, problem_size - len, " (unreadable meta entry)");
        rc = RANGE_ERR_CORRUPT;
        goto done;
    }
    bool installed = false;
    if (router__places(&found, route)) {
        pthread_mutex_lock(&r->mu);
        rc = router__install_locked(r, &found, &installed);
        pthread_mutex_unlock(&r->mu);
    }
    /* stale meta (a split not recorded yet, an entry older than what we
    ** hold): the nodes know the range holding the key */
    if (rc == RANGE_OK && !installed) rc = router__rescue_key(r, route, deadline_ns);
done:
    range_descriptor_free(&found);
    range_kv_response_free(&resp);
    range_descriptor_free(&used);
    base_buf_free(&bytes);
    base_buf_free(&m.start);
    base_buf_free(&m.end);
    return rc;
}

/* ---- first range rescue (docs/range.md "Routing never depends on meta") ------- */

static bool router__add_node(uint64_t *ids, size_t *n, uint64_t id) {
    if (id == 0 || rpc_node_id_is_provisional(id) || *n >= ROUTER__RESCUE_NODES_MAX) return false;
    for (size_t i = 0; i < *n; i++)
        if (ids[i] == id) return false;
    ids[(*n)++] = id;
    return true;
}

/* The nodes a rescue asks: the owner's list (config.known_nodes), every
** node the cache names and this one, at most ROUTER__RESCUE_NODES_MAX;
** not the cached replicas of the first range (they just refused). */
static size_t router__rescue_nodes(range_router *r, const range_descriptor *first, uint64_t *ids) {
    uint64_t known[ROUTER__RESCUE_NODES_MAX];
    size_t n_known = 0, n = 0;
    if (r->config.known_nodes != NULL) {
        n_known = r->config.known_nodes(r->config.known_nodes_ctx, known, ROUTER__RESCUE_NODES_MAX);
        if (n_known > ROUTER__RESCUE_NODES_MAX) n_known = ROUTER__RESCUE_NODES_MAX;
    }
    for (size_t i = 0; i < n_known; i++)
        if (!router__is_replica(first, known[i])) router__add_node(ids, &n, known[i]);
    if (!router__is_replica(first, r->config.local_node_id) && r->config.local != NULL)
        router__add_node(ids, &n, r->config.local_node_id);
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_entries && n < ROUTER__RESCUE_NODES_MAX; i++) {
        const range_descriptor *d = &r->entries[i].desc;
        for (size_t j = 0; j < d->n_replicas; j++)
            if (!router__is_replica(first, d->replicas[j]))
                router__add_node(ids, &n, d->replicas[j]);
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* DESCRIBE the range `first` (the first range, or any other whose cached
** replicas all refused; first->range_id, with the route's key: a node
** without it names its range holding the key) at every node of
** router__rescue_nodes, one after another within the deadline, and install
** the newest generation of that range any of them names (with its
** leaseholder when the answer knows one). RANGE_OK (installed a newer
** one), RANGE_NOT_FOUND (nobody knew better), RANGE_ERR_NOMEM. */
static int router__rescue_first(range_router *r, const range_descriptor *first,
                                const router__route *route, int64_t deadline_ns) {
    uint64_t ids[ROUTER__RESCUE_NODES_MAX];
    size_t n = router__rescue_nodes(r, first, ids);
    range_descriptor best;
    memset(&best, 0, sizeof(best));
    bool have_best = false;
    uint64_t best_leader = 0;
    base_buf req_bytes = {0}; /* owner: this function */
    router__result res;
    memset(&res, 0, sizeof(res));
    int rc = RANGE_OK;
    router__count(r, &r->stats.first_rescues);
    range_kv_request req;
    memset(&req, 0, sizeof(req));
    req.op = RANGE_KV_DESCRIBE;
    req.range_id = first->range_id;
    if (!route->before_open && route->key_len > 0) {
        req.key = route->key; /* borrowed */
        req.key_len = route->key_len;
        req.key_below = route->before;
    }
    rc = range_kv_request_encode(&req, &req_bytes);
    if (rc != RANGE_OK) goto done;
    for (size_t i = 0; i < n; i++) {
        int64_t left_ms = (deadline_ns - base_monotonic_ns()) / 1000000;
        if (left_ms < ROUTER__ATTEMPT_MIN_MS) break;
        int64_t timeout_ms = r->config.rpc_timeout_ms < left_ms ? r->config.rpc_timeout_ms
                                                                 : left_ms;
        rc = router__attempt(r, ids[i], &req_bytes, timeout_ms, &res);
        if (rc != RANGE_OK) goto done;
        if (res.transport_rc != RPC_OK || res.payload.len == 0) continue;
        range_kv_response resp;
        if (range_kv_response_decode(res.payload.data, res.payload.len, &resp) != RANGE_OK)
            continue; /* a bad peer's answer teaches nothing */
        /* OK: its replica of the range; KEY_MISMATCH: its range holding
        ** the key, which is this one when it starts where this one does (a
        ** range keeps its start key for life) */
        if ((resp.status == RANGE_OK || resp.status == RANGE_ERR_KEY_MISMATCH) &&
            resp.has_descriptor && resp.descriptor.range_id == first->range_id &&
            range__key_cmp(resp.descriptor.start_key, resp.descriptor.start_len,
                           first->start_key, first->start_len) == 0 &&
            (!have_best || resp.descriptor.generation > best.generation)) {
            range_descriptor_free(&best);
            rc = range_descriptor_copy(&best, &resp.descriptor);
            have_best = rc == RANGE_OK;
            best_leader = resp.status == RANGE_OK && resp.lease_valid ? resp.leader_id : 0;
        }
        range_kv_response_free(&resp);
        if (rc != RANGE_OK) goto done;
        /* a newer one whose leaseholder is known: enough asked */
        if (have_best && best.generation > first->generation && best_leader != 0 &&
            router__is_replica(&best, best_leader))
            break;
    }
    rc = RANGE_NOT_FOUND;
    if (!have_best || best.generation <= first->generation) goto done;
    bool installed = false;
    pthread_mutex_lock(&r->mu);
    rc = router__install_locked(r, &best, &installed);
    router__entry *e = installed ? router__find_id(r, best.range_id) : NULL;
    if (e != NULL && best_leader != 0 && router__is_replica(&best, best_leader))
        e->leaseholder = best_leader;
    if (installed) r->stats.descriptor_refreshes++;
    pthread_mutex_unlock(&r->mu);
    if (rc == RANGE_OK && !installed) rc = RANGE_NOT_FOUND;
done:
    range_descriptor_free(&best);
    base_buf_free(&req_bytes);
    base_buf_free(&res.payload);
    return rc;
}

/* DESCRIBE of a range no node hosts (split_allocate_id never hands out
** UINT64_MAX) with the route's key, at every node of router__rescue_nodes
** within the deadline: a node answers KEY_MISMATCH naming its range holding
** the key (or the one below it). Install the first that places the route
** and is newer than the cache. RANGE_OK (installed), RANGE_NOT_FOUND
** (nobody knew better), RANGE_ERR_NOMEM. */
static int router__rescue_key(range_router *r, const router__route *route, int64_t deadline_ns) {
    if (route->before_open || route->key_len == 0) return RANGE_NOT_FOUND;
    range_descriptor none; /* no replicas: every known node is asked */
    memset(&none, 0, sizeof(none));
    uint64_t ids[ROUTER__RESCUE_NODES_MAX];
    size_t n = router__rescue_nodes(r, &none, ids);
    base_buf req_bytes = {0}; /* owner: this function */
    router__result res;
    memset(&res, 0, sizeof(res));
    range_kv_request req;
    memset(&req, 0, sizeof(req));
    req.op = RANGE_KV_DESCRIBE;
    req.range_id = UINT64_MAX;
    req.key = route->key; /* borrowed */
    req.key_len = route->key_len;
    req.key_below = route->before;
    int rc = range_kv_request_encode(&req, &req_bytes);
    if (rc != RANGE_OK) goto done;
    rc = RANGE_NOT_FOUND;
    for (size_t i = 0; i < n && rc == RANGE_NOT_FOUND; i++) {
        int64_t left_ms = (deadline_ns - base_monotonic_ns()) / 1000000;
        if (left_ms < ROUTER__ATTEMPT_MIN_MS) break;
        int64_t timeout_ms = r->config.rpc_timeout_ms < left_ms ? r->config.rpc_timeout_ms
                                                                 : left_ms;
        int arc = router__attempt(r, ids[i], &req_bytes, timeout_ms, &res);
        if (arc != RANGE_OK) {
            rc = arc;
            break;
        }
        if (res.transport_rc != RPC_OK || res.payload.len == 0) continue;
        range_kv_response resp;
        if (range_kv_response_decode(res.payload.data, res.payload.len, &resp) != RANGE_OK)
            continue; /* a bad peer's answer teaches nothing */
        if (resp.status == RANGE_ERR_KEY_MISMATCH && resp.has_descriptor &&
            router__places(&resp.descriptor, route)) {
            bool installed = false;
            pthread_mutex_lock(&r->mu);
            int irc = router__install_locked(r, &resp.descriptor, &installed);
            if (installed) r->stats.descriptor_refreshes++;
            pthread_mutex_unlock(&r->mu);
            if (irc != RANGE_OK) rc = irc;
            else if (installed) rc = RANGE_OK;
        }
        range_kv_response_free(&resp);
    }
done:
    base_buf_free(&req_bytes);
    base_buf_free(&res.payload);
    return rc;
}

/* ---- admin split ------------------------------------------------------------- */

typedef struct router__split_ctx {
    const uint8_t *key;
    size_t key_len;
    uint64_t new_range_id;
    const range_split_txn *txn; /* NULL: a plain split */
} router__split_ctx;

static int router__build_split(void *ctx, range_router *r, const range_descriptor *d,
                               range_kv_request *req) {
    (void)r;
    const router__split_ctx *c = ctx;
    req->op = RANGE_KV_ADMIN_SPLIT;
    req->range_id = d->range_id;
    req->key = c->key;
    req->key_len = c->key_len;
    req->new_range_id = c->new_range_id;
    if (c->txn != NULL) {
        /* the split is the commit trigger of c->txn (docs/decisions/010) */
        req->txn_id = c->txn->txn_id;
        req->anchor = c->txn->anchor;
        req->anchor_len = c->txn->anchor_len;
        req->commit_ts = c->txn->commit_ts;
        req->generation = c->txn->generation;
    }
    return RANGE_OK;
}

static int router__admin_split_txn(range_kv *kv, const uint8_t *key, size_t key_len,
                                   uint64_t new_range_id, const range_split_txn *txn,
                                   range_descriptor *left, range_descriptor *right) {
    range_router *r = (range_router *)kv;
    router__clear_error();
    memset(left, 0, sizeof(*left));
    memset(right, 0, sizeof(*right));
    if (key == NULL || key_len == 0 || key_len > RANGE_DESC_KEY_MAX || new_range_id == 0)
        return RANGE_ERR_INVALID;
    if (txn != NULL && (txn->txn_id == 0 || txn->anchor == NULL || txn->anchor_len == 0))
        return RANGE_ERR_INVALID;
    router__split_ctx c = {key, key_len, new_range_id, txn};
    router__op op;
    memset(&op, 0, sizeof(op));
    op.route = (router__route){key, key_len, false, false};
    op.build = router__build_split;
    op.build_ctx = &c;
    op.what = "split";
    range_kv_response resp;
    base_buf bytes = {0};
    range_descriptor used;
    int rc = router__execute(r, &op, &resp, &bytes, &used);
    if (rc == RANGE_OK && !resp.has_other) {
        router__set_error(r, "range %" PRIu64 ": a split answer without the right-hand range",
                          used.range_id);
        rc = RANGE_ERR_CORRUPT;
    } else if (rc == RANGE_OK) {
        /* the left may be missing: a split at an existing boundary whose
        ** left-hand range the answering node does not host */
        bool installed;
        pthread_mutex_lock(&r->mu);
        if (resp.has_descriptor) rc = router__install_locked(r, &resp.descriptor, &installed);
        if (rc == RANGE_OK) rc = router__install_locked(r, &resp.other, &installed);
        pthread_mutex_unlock(&r->mu);
        if (rc == RANGE_OK && resp.has_descriptor)
            rc = range_descriptor_copy(left, &resp.descriptor);
        if (rc == RANGE_OK) rc = range_descriptor_copy(right, &resp.other);
        if (rc != RANGE_OK) {
            range_descriptor_free(left);
            range_descriptor_free(right);
        }
    } else if (router__answer_kept(rc)) {
        router__set_error(r, "range %" PRIu64 ": answer %d to a split", used.range_id, rc);
        rc = RANGE_ERR_CORRUPT;
    }
    range_kv_response_free(&resp);
    range_descriptor_free(&used);
    base_buf_free(&bytes);
    return rc;
}

static int router__admin_split(range_kv *kv, const uint8_t *key, size_t key_len,
                               uint64_t new_range_id, range_descriptor *left,
                               range_descriptor *right) {
    return router__admin_split_txn(kv, key, key_len, new_range_id, NULL, left, right);
}

/* ---- merges (docs/range.md, "Merges") ------------------------------------------ */

#define ROUTER__MERGE_DESCRIBES_MAX 4 /* looks at the two ranges (their shape moved) */

/* DESCRIBE of the range a route (ctx) places (any replica answers its
** view), with the route's key: a node that no longer hosts a stale cached
** range names its range holding the key (below it, for a left range), or
** the request would wait out its deadline on NOT_LEADER without a hint. */
static int router__build_describe(void *ctx, range_router *r, const range_descriptor *d,
                                  range_kv_request *req) {
    const router__route *route = ctx;
    (void)r;
    req->op = RANGE_KV_DESCRIBE;
    req->range_id = d->range_id;
    if (!route->before_open && route->key_len > 0) {
        req->key = route->key; /* borrowed */
        req->key_len = route->key_len;
        req->key_below = route->before;
    }
    return RANGE_OK;
}

/* The descriptor of the range placing route, as a replica of it answers it
** now (installed in the cache). RANGE_OK with *out (owner: caller), or the
** router's errors. */
static int router__describe(range_router *r, router__route route, range_descriptor *out) {
    router__op op;
    memset(&op, 0, sizeof(op));
    op.route = route;
    op.build = router__build_describe;
    op.build_ctx = &route;
    op.what = "describe";
    range_kv_response resp;
    base_buf bytes = {0};
    range_descriptor used;
    memset(out, 0, sizeof(*out));
    int rc = router__execute(r, &op, &resp, &bytes, &used);
    if (rc == RANGE_OK && !resp.has_descriptor) rc = RANGE_ERR_CORRUPT;
    if (rc == RANGE_OK) {
        bool installed;
        pthread_mutex_lock(&r->mu);
        rc = router__install_locked(r, &resp.descriptor, &installed);
        pthread_mutex_unlock(&r->mu);
        if (rc == RANGE_OK) rc = range_descriptor_copy(out, &resp.descriptor);
    } else if (router__answer_kept(rc)) {
        rc = RANGE_ERR_CORRUPT;
    }
    range_kv_response_free(&resp);
    range_descriptor_free(&used);
    base_buf_free(&bytes);
    return rc;
}

/* range_kv_ops.describe: the range holding key, as a replica answers now. */
static int router__describe_kv(range_kv *kv, const uint8_t *key, size_t key_len,
                               range_descriptor *out) {
    range_router *r = (range_router *)kv;
    router__clear_error();
    memset(out, 0, sizeof(*out));
    if (key == NULL && key_len > 0) return RANGE_ERR_INVALID;
    return router__describe(r, (router__route){key, key_len, false, false}, out);
}

/* range_kv_ops.describe_below: the range holding the greatest key below key. */
static int router__describe_below_kv(range_kv *kv, const uint8_t *key, size_t key_len,
                                     range_descriptor *out) {
    range_router *r = (range_router *)kv;
    router__clear_error();
    memset(out, 0, sizeof(*out));
    if (key == NULL || key_len == 0) return RANGE_ERR_INVALID;
    return router__describe(r, (router__route){key, key_len, true, false}, out);
}

/* The fields of one merge step's request. range_id: the range it must go to. */
typedef struct router__merge_ctx {
    uint8_t op;
    uint64_t range_id;
    uint64_t merge_id;
    uint64_t left_range_id, right_range_id;
    uint64_t freeze_index, freeze_lineage;
    hlc_timestamp floor;
    const range_descriptor *right; /* ADMIN_MERGE */
    /* MERGE_FENCE: R's start (borrowed), so that a node without the range
    ** the cache names (merged away since) answers with its range below it */
    const uint8_t *start;
    size_t start_len;
    const range_merge_txn *txn; /* ADMIN_MERGE as a commit trigger; else NULL */
} router__merge_ctx;

static int router__build_merge(void *ctx, range_router *r, const range_descriptor *d,
                               range_kv_request *req) {
    const router__merge_ctx *c = ctx;
    if (c->range_id != 0 && d->range_id != c->range_id) {
        router__set_error(r, "range %" PRIu64 " no longer holds the merge's keys (range %" PRIu64
                          " does)", c->range_id, d->range_id);
        return RANGE_NOT_FOUND;
    }
    req->op = c->op;
    req->range_id = d->range_id;
    req->merge_id = c->merge_id;
    req->generation = d->generation; /* the server checks it (KEY_MISMATCH: refresh) */
    req->left_range_id = c->left_range_id;
    req->right_range_id = c->right_range_id;
    req->applied_index = c->freeze_index;
    req->freeze_lineage = c->freeze_lineage;
    req->merge_floor = c->floor;
    if (c->right != NULL) {
        req->has_right = true;
        req->right = *c->right; /* borrowed */
    }
    if (c->op == RANGE_KV_ADMIN_MERGE && c->txn != NULL) {
        /* the merge is the commit trigger of c->txn (docs/decisions/010):
        ** L must be at the generation its meta writes assume (else ABORTED) */
        req->txn_id = c->txn->txn_id;
        req->anchor = c->txn->anchor;
        req->anchor_len = c->txn->anchor_len;
        req->commit_ts = c->txn->commit_ts;
        req->generation = c->txn->left_generation;
    }
    if (c->op == RANGE_KV_MERGE_FENCE) {
        req->key = c->start; /* borrowed */
        req->key_len = c->start_len;
    }
    return RANGE_OK;
}

/* One merge step at the range placing route. RANGE_OK with the answer in
** *resp and *bytes (release both), or the router's errors. */
static int router__merge_step(range_router *r, router__route route, const router__merge_ctx *c,
                              const char *what, range_kv_response *resp, base_buf *bytes) {
    router__op op;
    memset(&op, 0, sizeof(op));
    op.route = route;
    op.build = router__build_merge;
    op.build_ctx = (void *)c;
    op.what = what;
    /* the abandon's steps: the range below R's start may have moved away */
    op.lookup_when_gone = c->op == RANGE_KV_MERGE_FENCE || c->op == RANGE_KV_UNFREEZE;
    range_descriptor used;
    int rc = router__execute(r, &op, resp, bytes, &used);
    range_descriptor_free(&used);
    if (rc != RANGE_OK && router__answer_kept(rc)) {
        range_kv_response_free(resp);
        /* RANGE_NOT_FOUND: the builder's, the range that holds the keys
        ** now is another one (a merge or split since; detail set) */
        if (rc != RANGE_NOT_FOUND) {
            router__set_error(r, "answer %d to a %s", rc, what);
            rc = RANGE_ERR_CORRUPT;
        }
    }
    if (rc == RANGE_OK && resp->has_descriptor) {
        bool installed;
        pthread_mutex_lock(&r->mu);
        int irc = router__install_locked(r, &resp->descriptor, &installed);
        pthread_mutex_unlock(&r->mu);
        if (irc != RANGE_OK) {
            range_kv_response_free(resp);
            rc = irc;
        }
    }
    return rc;
}

/* WAIT_APPLIED at node `to` (not the leaseholder: that node's own replica),
** asked again (backoff) until OK or the deadline. */
static int router__wait_applied(range_router *r, uint64_t to, uint64_t range_id, uint64_t index) {
    range_kv_request req;
    memset(&req, 0, sizeof(req));
    req.op = RANGE_KV_WAIT_APPLIED;
    req.range_id = range_id;
    req.applied_index = index;
    base_buf bytes = {0}; /* owner: this function */
    router__result res;
    memset(&res, 0, sizeof(res));
    int rc = range_kv_request_encode(&req, &bytes);
    int64_t deadline_ns = base_monotonic_ns() + r->config.deadline_ms * 1000000;
    int64_t delay = ROUTER__BACKOFF_MIN_MS;
    char problem[96] = "no attempt";
    while (rc == RANGE_OK) {
        int64_t stop_ns = atomic_load(&r->stop_ns);
        int64_t end_ns = stop_ns != 0 && stop_ns < deadline_ns ? stop_ns : deadline_ns;
        int64_t left_ms = (end_ns - base_monotonic_ns()) / 1000000;
        if (left_ms < ROUTER__ATTEMPT_MIN_MS) {
            rc = RANGE_ERR_UNAVAILABLE;
            break;
        }
        int64_t timeout_ms = r->config.rpc_timeout_ms < left_ms ? r->config.rpc_timeout_ms : left_ms;
        rc = router__attempt(r, to, &bytes, timeout_ms, &res);
        if (rc != RANGE_OK) break;
        if (res.transport_rc == RPC_OK && res.status == RANGE_OK) break;
        if (res.transport_rc != RPC_OK)
            snprintf(problem, sizeof(problem), "%s", rpc_strerror(res.transport_rc));
        else
            snprintf(problem, sizeof(problem), "error %d", (int)res.status);
        router__sleep_ms(delay < left_ms ? delay : left_ms);
        if (delay < ROUTER__BACKOFF_MAX_MS) delay *= 2;
    }
    if (rc == RANGE_ERR_UNAVAILABLE)
        router__set_error(r, "range %" PRIu64 ": node %" PRIu64 " did not apply the merge's "
                          "freeze in time (last: %s)", range_id, to, problem);
    base_buf_free(&bytes);
    base_buf_free(&res.payload);
    return rc;
}

/* l covers what r covered (r merged into it). */
static bool router__merged_covers(const range_descriptor *l, const range_descriptor *r) {
    return range_descriptor_contains(l, r->start_key, r->start_len) && l->end_len == r->end_len &&
           (l->end_len == 0 || range__key_cmp(l->end_key, l->end_len, r->end_key, r->end_len) == 0);
}

static bool router__same_voters(const range_descriptor *a, const range_descriptor *b) {
    if (a->n_replicas != b->n_replicas) return false;
    for (size_t i = 0; i < a->n_replicas; i++)
        if (!router__is_replica(b, a->replicas[i])) return false;
    return true;
}

int range_router_abandon_merge(range_router *r, uint64_t right_range_id, const uint8_t *start,
                               size_t start_len, uint64_t merge_id, bool *merged) {
    *merged = false;
    if (r == NULL || right_range_id == 0 || merge_id == 0 || start == NULL || start_len == 0)
        return RANGE_ERR_INVALID;
    range_kv_response resp;
    base_buf bytes = {0};
    /* 1. fence the merge in whatever range now holds the key below start */
    router__merge_ctx c;
    memset(&c, 0, sizeof(c));
    c.op = RANGE_KV_MERGE_FENCE;
    c.merge_id = merge_id;
    c.right_range_id = right_range_id;
    c.start = start;
    c.start_len = start_len;
    int rc = router__merge_step(r, (router__route){start, start_len, true, false}, &c,
                                "merge fence", &resp, &bytes);
    if (rc == RANGE_OK && !resp.has_descriptor) rc = RANGE_ERR_CORRUPT;
    if (rc == RANGE_OK) /* the span alone misses a split at start after the merge */
        *merged = resp.merged || range_descriptor_contains(&resp.descriptor, start, start_len);
    range_kv_response_free(&resp);
    base_buf_free(&bytes);
    if (rc != RANGE_OK || *merged) {
        if (*merged)
            BASE_INFO("range", "merge %016" PRIx64 " of r%" PRIu64 " had happened before its "
                      "fence", merge_id, right_range_id);
        return rc;
    }
    /* 2. MERGE can never apply any more: R serves again */
    memset(&c, 0, sizeof(c));
    c.op = RANGE_KV_UNFREEZE;
    c.range_id = right_range_id;
    c.merge_id = merge_id;
    rc = router__merge_step(r, (router__route){start, start_len, false, false}, &c, "unfreeze",
                            &resp, &bytes);
    range_kv_response_free(&resp);
    base_buf_free(&bytes);
    if (rc == RANGE_OK)
        BASE_INFO("range", "merge %016" PRIx64 " abandoned: r%" PRIu64 " unfrozen", merge_id,
                  right_range_id);
    return rc;
}

/* After a failure past SUBSUME: fence and unfreeze, keeping the first
** error's detail. RANGE_OK when the merge turned out to have happened. */
static int router__merge_failed(range_router *r, const range_descriptor *right, uint64_t merge_id,
                                int rc) {
    char detail[ROUTER__ERROR_TEXT_MAX];
    base_strlcpy(detail, router__error.text, sizeof(detail));
    bool merged = false;
    int arc = range_router_abandon_merge(r, right->range_id, right->start_key, right->start_len,
                                         merge_id, &merged);
    if (arc == RANGE_OK && merged) return RANGE_OK;
    if (arc != RANGE_OK)
        BASE_WARN("range", "merge %016" PRIx64 " of r%" PRIu64 " not abandoned (%d): its range "
                  "stays frozen until a watchdog does it", merge_id, right->range_id, arc);
    router__set_error(r, "%s", detail);
    return rc == RANGE_ERR_AMBIGUOUS && arc == RANGE_OK ? RANGE_ERR_MERGING : rc;
}

/* range_router_admin_merge, as the commit trigger of txn (NULL: a plain merge). */
static int router__admin_merge_run(range_router *r, const uint8_t *key, size_t key_len,
                                   const range_merge_txn *txn, range_descriptor *left,
                                   range_descriptor *right) {
    router__clear_error();
    memset(left, 0, sizeof(*left));
    memset(right, 0, sizeof(*right));
    if (r == NULL || key == NULL || key_len == 0 || key_len > RANGE_DESC_KEY_MAX)
        return RANGE_ERR_INVALID;
    if (txn != NULL && (txn->txn_id == 0 || txn->anchor == NULL || txn->anchor_len == 0))
        return RANGE_ERR_INVALID;
    range_descriptor rd, ld; /* owner: this function */
    memset(&rd, 0, sizeof(rd));
    memset(&ld, 0, sizeof(ld));
    range_kv_response resp;
    memset(&resp, 0, sizeof(resp));
    base_buf bytes = {0};
    char key_text[ROUTER__KEY_TEXT_MAX + 8];
    router__key_text(key, key_len, key_text, sizeof(key_text));
    int rc = RANGE_ERR_UNAVAILABLE;
    /* the two ranges as their replicas see them */
    for (int look = 0; look < ROUTER__MERGE_DESCRIBES_MAX; look++) {
        range_descriptor_free(&rd);
        range_descriptor_free(&ld);
        rc = router__describe(r, (router__route){key, key_len, false, false}, &rd);
        if (rc == RANGE_OK) rc = router__describe(r, (router__route){key, key_len, true, false}, &ld);
        if (rc != RANGE_OK) goto done;
        bool r_starts = range__key_cmp(rd.start_key, rd.start_len, key, key_len) == 0;
        bool l_ends = ld.end_len > 0 && range__key_cmp(ld.end_key, ld.end_len, key, key_len) == 0;
        if (r_starts && l_ends) break;
        rc = RANGE_NOT_FOUND;
        if (!range_descriptor_contains(&rd, key, key_len)) continue; /* a stale answer */
        if (range_descriptor_contains(&ld, key, key_len) || !r_starts) break;
    }
    if (rc == RANGE_NOT_FOUND) {
        router__set_error(r, "key %s is not a range boundary", key_text);
        goto done;
    }
    if (!router__same_voters(&ld, &rd)) {
        router__set_error(r, "ranges %" PRIu64 " and %" PRIu64 " cannot merge: replicas not "
                          "co-located (move the right-hand range's replicas first)",
                          ld.range_id, rd.range_id);
        rc = RANGE_ERR_INVALID;
        goto done;
    }
    if (txn != NULL &&
        (ld.generation != txn->left_generation || rd.generation != txn->right_generation)) {
        /* not the shapes its meta writes assume: the caller aborts it */
        router__set_error(r, "ranges %" PRIu64 " and %" PRIu64 " changed since the merge's "
                          "transaction read them", ld.range_id, rd.range_id);
        rc = RANGE_ERR_ABORTED;
        goto done;
    }
    uint64_t merge_id = 0;
    while (merge_id == 0) merge_id = router__random(r);
    /* 1. SUBSUME: R frozen */
    router__merge_ctx c;
    memset(&c, 0, sizeof(c));
    c.op = RANGE_KV_SUBSUME;
    c.range_id = rd.range_id;
    c.merge_id = merge_id;
    c.left_range_id = ld.range_id;
    rc = router__merge_step(r, (router__route){key, key_len, false, false}, &c, "subsume", &resp,
                            &bytes);
    if (rc == RANGE_OK && (!resp.has_descriptor || resp.freeze_index == 0)) {
        router__set_error(r, "range %" PRIu64 ": a subsume answer without the freeze",
                          rd.range_id);
        rc = RANGE_ERR_CORRUPT;
    }
    if (rc != RANGE_OK) {
        if (rc == RANGE_ERR_INVALID)
            router__set_error(r, "range %" PRIu64 " cannot merge: replicas not co-located "
                              "(learners or a replica change in the way)", rd.range_id);
        /* refused at evaluation: nothing frozen; else it may be */
        if (rc != RANGE_ERR_INVALID && rc != RANGE_ERR_BUSY && rc != RANGE_ERR_MERGING &&
            rc != RANGE_NOT_FOUND && rc != RANGE_ERR_NOMEM)
            rc = router__merge_failed(r, &rd, merge_id, rc);
        goto done;
    }
    range_descriptor_free(&rd);
    rc = range_descriptor_copy(&rd, &resp.descriptor); /* as frozen */
    c.freeze_index = resp.freeze_index;
    c.freeze_lineage = resp.freeze_lineage;
    c.floor = resp.merge_floor;
    range_kv_response_free(&resp);
    base_buf_free(&bytes);
    if (rc != RANGE_OK) goto abandon;
    BASE_INFO("range", "merge %016" PRIx64 ": r%" PRIu64 " frozen at index %" PRIu64, merge_id,
              rd.range_id, c.freeze_index);
    if (txn != NULL && rd.generation != txn->right_generation) {
        router__set_error(r, "range %" PRIu64 " was frozen at generation %" PRIu64 ", not the "
                          "merge's transaction's %" PRIu64, rd.range_id, rd.generation,
                          txn->right_generation);
        rc = RANGE_ERR_ABORTED;
        goto abandon;
    }
    /* 2. every voter of R applied the freeze (and made it durable) */
    for (size_t i = 0; i < rd.n_replicas; i++) {
        rc = router__wait_applied(r, rd.replicas[i], rd.range_id, c.freeze_index);
        if (rc != RANGE_OK) goto abandon;
    }
    /* 3. ADMIN_MERGE at L */
    c.op = RANGE_KV_ADMIN_MERGE;
    c.range_id = ld.range_id;
    c.right = &rd;
    c.txn = txn;
    rc = router__merge_step(r, (router__route){key, key_len, true, false}, &c, "merge", &resp,
                            &bytes);
    if (rc == RANGE_OK && (!resp.has_descriptor || !router__merged_covers(&resp.descriptor, &rd))) {
        router__set_error(r, "range %" PRIu64 ": a merge answer without the merged range",
                          ld.range_id);
        rc = RANGE_ERR_CORRUPT;
    }
    if (rc != RANGE_OK) {
        if (rc == RANGE_ERR_INVALID)
            router__set_error(r, "ranges %" PRIu64 " and %" PRIu64 " cannot merge: replicas not "
                              "co-located, or no longer adjacent", ld.range_id, rd.range_id);
        goto abandon;
    }
    rc = range_descriptor_copy(left, &resp.descriptor);
    if (rc == RANGE_OK) rc = range_descriptor_copy(right, &rd);
    if (rc != RANGE_OK) {
        range_descriptor_free(left);
        range_descriptor_free(right);
    }
    BASE_INFO("range", "merge %016" PRIx64 ": r%" PRIu64 " subsumed r%" PRIu64, merge_id,
              ld.range_id, rd.range_id);
    goto done;
abandon:
    range_kv_response_free(&resp);
    base_buf_free(&bytes);
    rc = router__merge_failed(r, &rd, merge_id, rc);
    if (rc == RANGE_OK) { /* it had happened: L is in the cache now */
        pthread_mutex_lock(&r->mu);
        router__entry *e = router__find(r, key, key_len);
        rc = e != NULL && router__merged_covers(&e->desc, &rd) ? range_descriptor_copy(left, &e->desc)
                                                        : RANGE_ERR_AMBIGUOUS;
        pthread_mutex_unlock(&r->mu);
        if (rc == RANGE_OK) rc = range_descriptor_copy(right, &rd);
        if (rc != RANGE_OK) {
            range_descriptor_free(left);
            range_descriptor_free(right);
            if (rc == RANGE_ERR_AMBIGUOUS)
                router__set_error(r, "merge of range %" PRIu64 " happened, its result is not "
                                  "known here yet", rd.range_id);
        }
    }
done:
    range_kv_response_free(&resp);
    base_buf_free(&bytes);
    range_descriptor_free(&rd);
    range_descriptor_free(&ld);
    return rc;
}

int range_router_admin_merge(range_router *r, const uint8_t *key, size_t key_len,
                             range_descriptor *left, range_descriptor *right) {
    return router__admin_merge_run(r, key, key_len, NULL, left, right);
}

static int router__admin_merge(range_kv *kv, const uint8_t *key, size_t key_len,
                               range_descriptor *left, range_descriptor *right) {
    return router__admin_merge_run((range_router *)kv, key, key_len, NULL, left, right);
}

static int router__admin_merge_txn(range_kv *kv, const uint8_t *key, size_t key_len,
                                   const range_merge_txn *txn, range_descriptor *left,
                                   range_descriptor *right) {
    if (txn == NULL) return RANGE_ERR_INVALID;
    return router__admin_merge_run((range_router *)kv, key, key_len, txn, left, right);
}

/* ---- lease transfer ---------------------------------------------------------- */

typedef struct router__transfer_ctx {
    uint64_t range_id;
    uint64_t target;
} router__transfer_ctx;

static int router__build_transfer(void *ctx, range_router *r, const range_descriptor *d,
                                  range_kv_request *req) {
    const router__transfer_ctx *c = ctx;
    if (d->range_id != c->range_id) { /* the start key is another range's now */
        router__set_error(r, "range %" PRIu64 " is no longer cached at its start key",
                          c->range_id);
        return RANGE_NOT_FOUND;
    }
    req->op = RANGE_KV_TRANSFER_LEASE;
    req->range_id = d->range_id;
    req->target_node_id = c->target;
    return RANGE_OK;
}

int range_router_transfer_lease(range_router *r, uint64_t range_id, uint64_t target) {
    router__clear_error();
    if (r == NULL || range_id == 0 || target == 0) return RANGE_ERR_INVALID;
    /* route by the range's start key (a split keeps the left's id and start) */
    uint8_t start[RANGE_DESC_KEY_MAX];
    size_t start_len = 0;
    pthread_mutex_lock(&r->mu);
    router__entry *e = router__find_id(r, range_id);
    if (e != NULL) {
        start_len = e->desc.start_len;
        if (start_len > 0) memcpy(start, e->desc.start_key, start_len);
    }
    pthread_mutex_unlock(&r->mu);
    if (e == NULL) {
        router__set_error(r, "range %" PRIu64 " is not cached", range_id);
        return RANGE_NOT_FOUND;
    }
    router__transfer_ctx c = {range_id, target};
    router__op op;
    memset(&op, 0, sizeof(op));
    op.route = (router__route){start, start_len, false, false};
    op.build = router__build_transfer;
    op.build_ctx = &c;
    op.no_lookup = true;
    op.merging_ends = true;
    op.what = "lease transfer";
    range_kv_response resp;
    base_buf bytes = {0};
    range_descriptor used;
    int rc = router__execute(r, &op, &resp, &bytes, &used);
    if (rc == RANGE_OK) {
        pthread_mutex_lock(&r->mu);
        router__entry *now = router__find_id(r, range_id);
        if (now != NULL) now->leaseholder = target; /* the answer proved it */
        pthread_mutex_unlock(&r->mu);
    } else if (router__answer_kept(rc)) {
        router__set_error(r, "range %" PRIu64 ": answer %d to a lease transfer", range_id, rc);
        rc = RANGE_ERR_CORRUPT;
    }
    range_kv_response_free(&resp);
    range_descriptor_free(&used);
    base_buf_free(&bytes);
    return rc;
}

/* ---- replica changes ----------------------------------------------------------- */

typedef struct router__change_ctx {
    uint64_t range_id;
    uint64_t add, remove;
    int step;                   /* with txn: range_conf_step */
    const range_split_txn *txn; /* NULL: the whole change, no transaction */
} router__change_ctx;

static int router__build_change(void *ctx, range_router *r, const range_descriptor *d,
                                range_kv_request *req) {
    const router__change_ctx *c = ctx;
    if (d->range_id != c->range_id) { /* the start key is another range's now */
        router__set_error(r, "range %" PRIu64 " is no longer cached at its start key",
                          c->range_id);
        return RANGE_NOT_FOUND;
    }
    req->op = RANGE_KV_CHANGE_REPLICAS;
    req->range_id = d->range_id;
    req->add_node_id = c->add;
    req->remove_node_id = c->remove;
    if (c->txn != NULL) {
        /* one step as the commit trigger of c->txn (docs/decisions/010) */
        req->txn_id = c->txn->txn_id;
        req->anchor = c->txn->anchor;
        req->anchor_len = c->txn->anchor_len;
        req->commit_ts = c->txn->commit_ts;
        req->generation = c->txn->generation;
        req->conf_step = (uint8_t)c->step;
    }
    return RANGE_OK;
}

static int router__change(range_router *r, uint64_t range_id, uint64_t add, uint64_t remove,
                          int step, const range_split_txn *txn, range_descriptor *out);

int range_router_change_replicas(range_router *r, uint64_t range_id, uint64_t add,
                                 uint64_t remove, range_descriptor *out) {
    router__clear_error();
    if (out != NULL) memset(out, 0, sizeof(*out));
    if (r == NULL || range_id == 0 || (add == 0 && remove == 0) || add == remove)
        return RANGE_ERR_INVALID;
    return router__change(r, range_id, add, remove, 0, NULL, out);
}

/* range_kv_ops.change_replicas_txn: one step with its transaction. */
static int router__change_replicas_txn(range_kv *kv, uint64_t range_id, int step,
                                       uint64_t node_id, const range_split_txn *txn,
                                       range_descriptor *out) {
    range_router *r = (range_router *)kv;
    router__clear_error();
    if (out != NULL) memset(out, 0, sizeof(*out));
    if (r == NULL || range_id == 0 || node_id == 0 || txn == NULL || txn->txn_id == 0 ||
        txn->anchor == NULL || txn->anchor_len == 0 ||
        (step != RANGE_CONF_STEP_ADD_LEARNER && step != RANGE_CONF_STEP_PROMOTE &&
         step != RANGE_CONF_STEP_REMOVE))
        return RANGE_ERR_INVALID;
    bool remove = step == RANGE_CONF_STEP_REMOVE;
    return router__change(r, range_id, remove ? 0 : node_id, remove ? node_id : 0, step, txn,
                          out);
}

static int router__change(range_router *r, uint64_t range_id, uint64_t add, uint64_t remove,
                          int step, const range_split_txn *txn, range_descriptor *out) {
    /* route by the range's start key, as a lease transfer */
    uint8_t start[RANGE_DESC_KEY_MAX];
    size_t start_len = 0;
    pthread_mutex_lock(&r->mu);
    router__entry *e = router__find_id(r, range_id);
    if (e != NULL) {
        start_len = e->desc.start_len;
        if (start_len > 0) memcpy(start, e->desc.start_key, start_len);
    }
    pthread_mutex_unlock(&r->mu);
    if (e == NULL) {
        router__set_error(r, "range %" PRIu64 " is not cached", range_id);
        return RANGE_NOT_FOUND;
    }
    router__change_ctx c = {range_id, add, remove, step, txn};
    router__op op;
    memset(&op, 0, sizeof(op));
    op.route = (router__route){start, start_len, false, false};
    op.build = router__build_change;
    op.build_ctx = &c;
    op.no_lookup = true;
    op.merging_ends = true;
    op.what = "replica change";
    range_kv_response resp;
    base_buf bytes = {0};
    range_descriptor used;
    int rc = router__execute(r, &op, &resp, &bytes, &used);
    if (rc == RANGE_OK && !resp.has_descriptor) {
        router__set_error(r, "range %" PRIu64 ": a replica change answer without a descriptor",
                          range_id);
        rc = RANGE_ERR_CORRUPT;
    } else if (rc == RANGE_OK) {
        bool installed;
        pthread_mutex_lock(&r->mu);
        rc = router__install_locked(r, &resp.descriptor, &installed); /* newer generation */
        pthread_mutex_unlock(&r->mu);
        if (rc == RANGE_OK && out != NULL) rc = range_descriptor_copy(out, &resp.descriptor);
    } else if (router__answer_kept(rc)) {
        router__set_error(r, "range %" PRIu64 ": answer %d to a replica change", range_id, rc);
        rc = RANGE_ERR_CORRUPT;
    }
    range_kv_response_free(&resp);
    range_descriptor_free(&used);
    base_buf_free(&bytes);
    return rc;
}

/* ---- commit ------------------------------------------------------------------- */

/* One range's share of a commit: its descriptor as planned (a copy) and the
** commit's read spans clipped to it; for a two-phase commit also its writes
** and delete spans (clipped). */
typedef struct router__part {
    range_descriptor desc; /* owned */
    range_span *spans;     /* owned array; bytes borrowed from the request or desc */
    size_t n_spans, cap_spans;
    range_write *writes;   /* owned array (prepare); bytes borrowed from the request */
    size_t n_writes, cap_writes;
    range_span *dels;      /* owned array (prepare); bytes borrowed from the request or desc */
    size_t n_dels, cap_dels;
    hlc_timestamp reads_ts; /* prepare: its read pieces were checked up to this (0: not) */
} router__part;

/* parts[0] is W, the range of the writes and delete spans; the others hold
** the rest of the reads. */
typedef struct router__plan {
    router__part *parts; /* owned */
    size_t n_parts, cap_parts;
} router__plan;

static void router__plan_free(router__plan *p) {
    for (size_t i = 0; i < p->n_parts; i++) {
        range_descriptor_free(&p->parts[i].desc);
        base_free(p->parts[i].spans);
        base_free(p->parts[i].writes);
        base_free(p->parts[i].dels);
    }
    base_free(p->parts);
    memset(p, 0, sizeof(*p));
}

/* The part of range d (added, with a copy of d, when new). r->mu held.
** RANGE_OK, RANGE_ERR_NOMEM, RANGE_ERR_CROSS_RANGE (too many ranges). */
static int router__plan_part(router__plan *p, const range_descriptor *d, router__part **out) {
    for (size_t i = 0; i < p->n_parts; i++)
        if (p->parts[i].desc.range_id == d->range_id) {
            *out = &p->parts[i];
            return RANGE_OK;
        }
    if (p->n_parts >= ROUTER__READ_RANGES_MAX) return RANGE_ERR_CROSS_RANGE;
    if (p->n_parts == p->cap_parts) {
        size_t ncap = p->cap_parts ? p->cap_parts * 2 : 4;
        router__part *np = base_realloc(p->parts, ncap * sizeof(*np)); /* owner: p */
        if (np == NULL) return RANGE_ERR_NOMEM;
        p->parts = np;
        p->cap_parts = ncap;
    }
    router__part *part = &p->parts[p->n_parts];
    memset(part, 0, sizeof(*part));
    if (range_descriptor_copy(&part->desc, d) != RANGE_OK) return RANGE_ERR_NOMEM;
    p->n_parts++;
    *out = part;
    return RANGE_OK;
}

static int router__span_push(range_span **arr, size_t *n, size_t *cap, range_span sp) {
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        range_span *ns = base_realloc(*arr, ncap * sizeof(*ns)); /* owner: the part */
        if (ns == NULL) return RANGE_ERR_NOMEM;
        *arr = ns;
        *cap = ncap;
    }
    (*arr)[(*n)++] = sp;
    return RANGE_OK;
}

/* A read piece (dels false) or a delete-span piece (dels true) of part. */
static int router__part_add(router__part *part, range_span sp, bool dels) {
    return dels ? router__span_push(&part->dels, &part->n_dels, &part->cap_dels, sp)
                : router__span_push(&part->spans, &part->n_spans, &part->cap_spans, sp);
}

/* Is the span inside d? If not, *outside is a key of the span outside d. */
static bool router__span_in(const range_descriptor *d, const range_span *sp,
                            const uint8_t **outside, size_t *outside_len) {
    if (sp->point || range__key_cmp(sp->start, sp->start_len, d->start_key, d->start_len) < 0) {
        if (range_descriptor_contains(d, sp->start, sp->start_len)) return true;
        *outside = sp->start;
        *outside_len = sp->start_len;
        return false;
    }
    if (d->end_len == 0) return true;
    if (sp->end_len > 0 && range__key_cmp(sp->end, sp->end_len, d->end_key, d->end_len) <= 0)
        return true;
    *outside = d->end_key; /* the first key past d, and inside the span */
    *outside_len = d->end_len;
    return false;
}

static int router__cross_range(range_router *r, const range_descriptor *d, const uint8_t *key,
                               size_t key_len) {
    pthread_mutex_lock(&r->mu);
    router__entry *e = router__find(r, key, key_len);
    uint64_t other = e ? e->desc.range_id : 0;
    r->stats.cross_range++;
    pthread_mutex_unlock(&r->mu);
    if (other != 0 && other != d->range_id) {
        router__set_error(r, "keys in range %" PRIu64 " and range %" PRIu64, d->range_id, other);
    } else {
        char text[ROUTER__KEY_TEXT_MAX + 8];
        router__key_text(key, key_len, text, sizeof(text));
        router__set_error(r, "keys in range %" PRIu64 " and beyond it, at key %s", d->range_id,
                          text);
    }
    return RANGE_ERR_CROSS_RANGE;
}

/* Clip one span to the cached descriptors into the plan's parts (read
** pieces, or delete-span pieces when dels). r->mu held. *missing: a key no
** cached range holds (borrowed from sp or a part's descriptor) when
** RANGE_ERR_UNAVAILABLE. */
static int router__plan_span(range_router *r, router__plan *p, const range_span *sp, bool dels,
                             const uint8_t **missing, size_t *missing_len) {
    router__part *part = NULL;
    int rc;
    if (sp->point) {
        router__entry *e = router__find(r, sp->start, sp->start_len);
        if (e == NULL) {
            *missing = sp->start;
            *missing_len = sp->start_len;
            return RANGE_ERR_UNAVAILABLE;
        }
        rc = router__plan_part(p, &e->desc, &part);
        return rc != RANGE_OK ? rc : router__part_add(part, *sp, dels);
    }
    bool open = sp->end_len == 0;
    if (!open && range__key_cmp(sp->start, sp->start_len, sp->end, sp->end_len) >= 0)
        return RANGE_OK; /* an empty span read nothing */
    const uint8_t *pos = sp->start;
    size_t pos_len = sp->start_len;
    /* each piece ends where its range ends, so this walks the cache once */
    for (size_t guard = 0; guard <= r->n_entries; guard++) {
        router__entry *e = router__find(r, pos, pos_len);
        if (e == NULL) {
            *missing = pos;
            *missing_len = pos_len;
            return RANGE_ERR_UNAVAILABLE;
        }
        rc = router__plan_part(p, &e->desc, &part);
        if (rc != RANGE_OK) return rc;
        const range_descriptor *d = &part->desc; /* the copy: its bytes outlive r->mu */
        range_span piece = {pos_len ? pos : NULL, pos_len, sp->end, sp->end_len, false};
        bool last = d->end_len == 0 ||
                    (!open && range__key_cmp(sp->end, sp->end_len, d->end_key, d->end_len) <= 0);
        if (!last) {
            piece.end = d->end_key;
            piece.end_len = d->end_len;
        }
        rc = router__part_add(part, piece, dels);
        if (rc != RANGE_OK || last) return rc;
        pos = d->end_key;
        pos_len = d->end_len;
    }
    return RANGE_ERR_CORRUPT; /* the cache is disjoint and sorted: unreachable */
}

static int router__plan_read(range_router *r, router__plan *p, const range_span *sp,
                             const uint8_t **missing, size_t *missing_len) {
    return router__plan_span(r, p, sp, false, missing, missing_len);
}

/* Plan a commit from the descriptor cache: W (parts[0]) must hold every
** write and delete span; the read spans are clipped per range. RANGE_OK,
** RANGE_ERR_CROSS_RANGE (the error detail set), RANGE_ERR_UNAVAILABLE (no
** range cached for the key copied into *missing, for a meta lookup),
** RANGE_ERR_NOMEM. */
static int router__plan_commit(range_router *r, const range_commit_request *req,
                               router__plan *p, base_buf *missing) {
    const uint8_t *route = req->write_count > 0 ? req->writes[0].key : req->delete_spans[0].start;
    size_t route_len =
        req->write_count > 0 ? req->writes[0].key_len : req->delete_spans[0].start_len;
    const uint8_t *key = route; /* the key an error is about */
    size_t key_len = route_len;
    router__part *w = NULL;
    int rc = RANGE_ERR_UNAVAILABLE;
    pthread_mutex_lock(&r->mu);
    router__entry *e = router__find(r, route, route_len);
    if (e == NULL) goto unlock;
    rc = router__plan_part(p, &e->desc, &w);
    if (rc != RANGE_OK) goto unlock;
    for (size_t i = 0; i < req->write_count && rc == RANGE_OK; i++)
        if (!range_descriptor_contains(&w->desc, req->writes[i].key, req->writes[i].key_len)) {
            key = req->writes[i].key;
            key_len = req->writes[i].key_len;
            rc = RANGE_ERR_CROSS_RANGE;
        }
    for (size_t i = 0; i < req->delete_span_count && rc == RANGE_OK; i++)
        if (!router__span_in(&w->desc, &req->delete_spans[i], &key, &key_len))
            rc = RANGE_ERR_CROSS_RANGE;
    for (size_t i = 0; i < req->read_span_count && rc == RANGE_OK; i++)
        rc = router__plan_read(r, p, &req->read_spans[i], &key, &key_len);
unlock:
    pthread_mutex_unlock(&r->mu);
    if (rc == RANGE_ERR_CROSS_RANGE && p->n_parts >= ROUTER__READ_RANGES_MAX) {
        router__count(r, &r->stats.cross_range);
        router__set_error(r, "the reads span more than %d ranges", ROUTER__READ_RANGES_MAX);
    } else if (rc == RANGE_ERR_CROSS_RANGE) {
        (void)router__cross_range(r, &p->parts[0].desc, key, key_len);
    } else if (rc == RANGE_ERR_UNAVAILABLE) {
        base_buf_reset(missing);
        if (base_buf_append(missing, key_len ? key : (const uint8_t *)"", key_len) != 0)
            rc = RANGE_ERR_NOMEM;
    }
    return rc;
}

/* What one commit call carries across its plans. */
typedef struct router__commit_state {
    bool unknown; /* an attempt's fate is unknown (router__op.unknown) */
    /* fixed timestamps of COMMITs sent while their fate could be unknown:
    ** a later answer "applied at one of these" is the earlier attempt's */
    hlc_timestamp sent_ts[ROUTER__UNKNOWN_TS_MAX];
    size_t n_sent_ts;
} router__commit_state;

typedef struct router__commit_ctx {
    const range_commit_request *req;
    uint64_t nonce;
    const router__part *w;   /* the planned range and its share of the reads */
    hlc_timestamp commit_ts; /* HLC_ZERO: the server picks */
    router__commit_state *state;
} router__commit_ctx;

/* Every span of part inside d? */
static bool router__part_in(const router__part *part, const range_descriptor *d) {
    const uint8_t *k;
    size_t klen;
    for (size_t i = 0; i < part->n_spans; i++)
        if (!router__span_in(d, &part->spans[i], &k, &klen)) return false;
    return true;
}

/* The range changed shape since the plan (KEY_MISMATCH answers refreshed
** the cache): plan again. */
static int router__build_commit(void *ctx, range_router *r, const range_descriptor *d,
                                range_kv_request *out) {
    (void)r;
    const router__commit_ctx *c = ctx;
    const range_commit_request *req = c->req;
    const uint8_t *k;
    size_t klen;
    if (d->range_id != c->w->desc.range_id || !router__part_in(c->w, d))
        return RANGE_ERR_KEY_MISMATCH;
    for (size_t i = 0; i < req->write_count; i++)
        if (!range_descriptor_contains(d, req->writes[i].key, req->writes[i].key_len))
            return RANGE_ERR_KEY_MISMATCH;
    for (size_t i = 0; i < req->delete_span_count; i++)
        if (!router__span_in(d, &req->delete_spans[i], &k, &klen)) return RANGE_ERR_KEY_MISMATCH;
    out->op = RANGE_KV_COMMIT;
    out->range_id = d->range_id;
    out->read_ts = req->read_ts;
    out->commit_ts = c->commit_ts;
    out->txn_id = req->txn_id;
    out->nonce = c->nonce;
    out->writes = req->writes;
    out->write_count = req->write_count;
    out->delete_spans = req->delete_spans;
    out->delete_span_count = req->delete_span_count;
    out->read_spans = c->w->spans;
    out->read_span_count = c->w->n_spans;
    return RANGE_OK;
}

typedef struct router__validate_ctx {
    const router__part *part;
    const range_span *spans; /* the slice of part->spans this VALIDATE carries */
    size_t n_spans;
    hlc_timestamp read_ts, commit_ts;
    const range_txn_meta *txn; /* a two-phase commit's (its own intents are no conflict) */
} router__validate_ctx;

static int router__build_validate(void *ctx, range_router *r, const range_descriptor *d,
                                  range_kv_request *out) {
    (void)r;
    const router__validate_ctx *v = ctx;
    if (d->range_id != v->part->desc.range_id || !router__part_in(v->part, d))
        return RANGE_ERR_KEY_MISMATCH;
    out->op = RANGE_KV_VALIDATE;
    out->range_id = d->range_id;
    out->read_ts = v->read_ts;
    out->commit_ts = v->commit_ts;
    out->read_spans = v->spans;
    out->read_span_count = v->n_spans;
    if (v->txn != NULL) out->txn_id = v->txn->txn_id;
    return RANGE_OK;
}

static int router__copy_conflict(const range_kv_response *resp, range_conflict *conflict) {
    if (conflict == NULL) return RANGE_ERR_CONFLICT;
    conflict->kind = (range_conflict_kind)resp->conflict_kind;
    conflict->conflict_ts = resp->conflict_ts;
    conflict->pending = resp->conflict_pending;
    base_buf_reset(&conflict->key);
    if (resp->conflict_key_len > 0 &&
        base_buf_append(&conflict->key, resp->conflict_key, resp->conflict_key_len) != 0)
        return RANGE_ERR_NOMEM;
    return RANGE_ERR_CONFLICT;
}

/* Bytes a write or a span adds to a request, about (keys, value, framing):
** what the chunk bounds count. */
static size_t router__write_bytes(const range_write *w) {
    return w->key_len + w->value_len + ROUTER__ITEM_OVERHEAD_BYTES;
}
static size_t router__span_bytes(const range_span *sp) {
    return sp->start_len + (sp->point ? 0 : sp->end_len) + ROUTER__ITEM_OVERHEAD_BYTES;
}
/* ...and an intent a PREPARE lays (its Raft command's bytes). */
static size_t router__intent_bytes(size_t key_len, size_t value_len, size_t anchor_len) {
    return key_len + value_len + anchor_len + ROUTER__INTENT_OVERHEAD_BYTES;
}

/* How many of spans[0..n) (at least one) one request carries:
** ROUTER__VALIDATE_SLICE_BYTES_MAX bytes of them, RANGE_KV_SPANS_MAX at most. */
static size_t router__read_slice(const range_span *spans, size_t n) {
    size_t bytes = 0, k = 0;
    for (; k < n && k < RANGE_KV_SPANS_MAX; k++) {
        bytes += router__span_bytes(&spans[k]);
        if (k > 0 && bytes > ROUTER__VALIDATE_SLICE_BYTES_MAX) break;
    }
    return k;
}

/* VALIDATE part's reads at commit_ts, in slices of router__read_slice, one
** after another. RANGE_OK, RANGE_ERR_CONFLICT (*conflict filled),
** RANGE_ERR_KEY_MISMATCH (plan again), or an error. */
static int router__validate(range_router *r, const router__part *part, hlc_timestamp read_ts,
                            hlc_timestamp commit_ts, const range_txn_meta *txn,
                            int64_t deadline_ns, range_conflict *conflict) {
    int rc = RANGE_OK;
    for (size_t at = 0; at < part->n_spans && rc == RANGE_OK;) {
        size_t n = router__read_slice(&part->spans[at], part->n_spans - at);
        router__validate_ctx v = {part, &part->spans[at], n, read_ts, commit_ts, txn};
        const range_span *first = &part->spans[at];
        router__op op;
        memset(&op, 0, sizeof(op));
        op.route = (router__route){first->start, first->start_len, false, false};
        op.build = router__build_validate;
        op.build_ctx = &v;
        op.what = "validation of the reads";
        /* a deadline per slice after the first: a large transaction's
        ** reads take many (1M point reads of a COPY into a keyed table) */
        op.deadline_ns =
            at == 0 ? deadline_ns : base_monotonic_ns() + r->config.deadline_ms * 1000000;
        op.txn = txn;
        range_kv_response resp;
        base_buf bytes = {0};
        range_descriptor used;
        rc = router__execute(r, &op, &resp, &bytes, &used);
        if (rc == RANGE_ERR_CONFLICT) {
            router__count(r, &r->stats.conflicts);
            rc = router__copy_conflict(&resp, conflict);
        } else if (rc != RANGE_OK && router__answer_kept(rc)) {
            router__set_error(r, "range %" PRIu64 ": answer %d to a validation", used.range_id,
                              rc);
            rc = RANGE_ERR_CORRUPT;
        }
        range_kv_response_free(&resp);
        range_descriptor_free(&used);
        base_buf_free(&bytes);
        at += n;
    }
    return rc;
}

/* The COMMIT at W. RANGE_OK with *commit_ts, RANGE_ERR_CONFLICT (*conflict
** filled), RANGE_ERR_PUSHED with *pushed, RANGE_ERR_KEY_MISMATCH (plan
** again), or an error. */
static int router__send_commit(range_router *r, const router__commit_ctx *c, int64_t deadline_ns,
                               hlc_timestamp *commit_ts, range_conflict *conflict,
                               hlc_timestamp *pushed) {
    const range_commit_request *req = c->req;
    router__op op;
    memset(&op, 0, sizeof(op));
    if (req->write_count > 0)
        op.route = (router__route){req->writes[0].key, req->writes[0].key_len, false, false};
    else
        op.route = (router__route){req->delete_spans[0].start, req->delete_spans[0].start_len,
                                   false, false};
    op.build = router__build_commit;
    op.build_ctx = (void *)c;
    op.is_commit = true;
    op.what = "commit";
    op.deadline_ns = deadline_ns;
    op.unknown = &c->state->unknown;
    if (!hlc_is_zero(c->commit_ts) && c->state->n_sent_ts < ROUTER__UNKNOWN_TS_MAX)
        c->state->sent_ts[c->state->n_sent_ts++] = c->commit_ts;
    range_kv_response resp;
    base_buf bytes = {0};
    range_descriptor used;
    int rc = router__execute(r, &op, &resp, &bytes, &used);
    if (rc == RANGE_OK) {
        *commit_ts = resp.commit_ts;
        /* later reads through this node's clock start above our commit */
        (void)hlc_update(r->config.clock, resp.commit_ts);
        router__count(r, &r->stats.commits);
    } else if (rc == RANGE_ERR_CONFLICT) {
        router__count(r, &r->stats.conflicts);
        rc = router__copy_conflict(&resp, conflict);
    } else if (rc == RANGE_ERR_PUSHED) {
        *pushed = resp.commit_ts;
    } else if (router__answer_kept(rc)) {
        /* RANGE_NOT_FOUND: not an answer to a commit; it did not apply */
        router__set_error(r, "range %" PRIu64 ": answer %d to a commit", used.range_id, rc);
        rc = RANGE_ERR_CORRUPT;
    }
    /* zeroed by router__execute on its errors, so freeing is always right */
    range_kv_response_free(&resp);
    range_descriptor_free(&used);
    base_buf_free(&bytes);
    return rc;
}

/* Wait (bounded) until this node's clock reaches ts: a pushed timestamp may
** be up to max_offset ahead (a lease-start low-water), and every timestamp
** a range records must be one some clock has reached (the lease argument in
** docs/range.md). A wait for time, like the server's commit wait. */
static void router__wait_clock(range_router *r, hlc_timestamp ts, int64_t deadline_ns) {
    int64_t until = base_monotonic_ns() +
                    ROUTER__CLOCK_WAIT_MAX_OFFSETS * hlc_max_offset_ns(r->config.clock);
    if (until > deadline_ns) until = deadline_ns;
    for (int step = 0; step < 1000; step++) { /* each sleeps ahead_ns or until `until` */
        int64_t ahead_ns = ts.wall_ns - hlc_physical_now_ns(r->config.clock) + 1;
        int64_t left_ns = until - base_monotonic_ns();
        if (ahead_ns <= 0 || left_ns <= 0 || hlc_compare(hlc_now(r->config.clock), ts) >= 0)
            return;
        int64_t ns = ahead_ns < left_ns ? ahead_ns : left_ns;
        struct timespec t = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
        nanosleep(&t, NULL);
    }
}

/* Run a plan. One range: the COMMIT alone. Several: VALIDATE the others at
** a candidate timestamp, then COMMIT at W fixed at it; pushed: again. */
static bool router__sent_at(const router__commit_state *st, hlc_timestamp ts) {
    for (size_t i = 0; i < st->n_sent_ts; i++)
        if (hlc_compare(st->sent_ts[i], ts) == 0) return true;
    return false;
}

static int router__commit_planned(range_router *r, const range_commit_request *req,
                                  uint64_t nonce, const router__plan *p, int64_t deadline_ns,
                                  router__commit_state *st, hlc_timestamp *commit_ts,
                                  range_conflict *conflict) {
    router__commit_ctx c = {req, nonce, &p->parts[0], HLC_ZERO, st};
    hlc_timestamp pushed = HLC_ZERO;
    if (p->n_parts == 1) {
        int rc = router__send_commit(r, &c, deadline_ns, commit_ts, conflict, &pushed);
        if (rc == RANGE_ERR_PUSHED) {
            router__set_error(r, "range %" PRIu64 ": a commit without a fixed timestamp was "
                              "pushed", p->parts[0].desc.range_id);
            rc = RANGE_ERR_CORRUPT;
        }
        return rc;
    }
    hlc_timestamp candidate = hlc_now(r->config.clock);
    if (hlc_compare(candidate, req->read_ts) <= 0) candidate = hlc_next(req->read_ts);
    for (int attempt = 0; attempt < ROUTER__PUSH_ATTEMPTS_MAX; attempt++) {
        for (size_t i = 1; i < p->n_parts; i++) {
            int rc = router__validate(r, &p->parts[i], req->read_ts, candidate, NULL,
                                      deadline_ns, conflict);
            if (rc != RANGE_OK && rc != RANGE_ERR_KEY_MISMATCH && st->unknown) {
                /* an attempt of an earlier plan may have applied (validated
                ** at its own timestamp): a refusal here does not undo it */
                router__count(r, &r->stats.ambiguous);
                router__set_error(r, "the commit's outcome is unknown: an attempt may have "
                                  "applied before a VALIDATE of range %" PRIu64 " refused (%d)",
                                  p->parts[i].desc.range_id, rc);
                return RANGE_ERR_AMBIGUOUS;
            }
            if (rc != RANGE_OK) return rc;
        }
        c.commit_ts = candidate;
        int rc = router__send_commit(r, &c, deadline_ns, commit_ts, conflict, &pushed);
        /* an earlier attempt (maybe of an earlier plan) applied at a timestamp
        ** its own VALIDATEs covered: that is the answer */
        if (rc == RANGE_OK && hlc_compare(*commit_ts, candidate) != 0 &&
            !router__sent_at(st, *commit_ts)) {
            /* applied at a timestamp the other ranges never validated: only a
            ** broken server can answer so; say "maybe", not "yes" */
            char want[64], got[64];
            hlc_format(candidate, want, sizeof(want));
            hlc_format(*commit_ts, got, sizeof(got));
            router__count(r, &r->stats.ambiguous);
            router__set_error(r, "range %" PRIu64 " committed at %s instead of %s",
                              p->parts[0].desc.range_id, got, want);
            return RANGE_ERR_AMBIGUOUS;
        }
        if (rc != RANGE_ERR_PUSHED) return rc;
        if (hlc_compare(pushed, candidate) <= 0) pushed = hlc_next(candidate); /* never back */
        candidate = pushed;
        router__wait_clock(r, candidate, deadline_ns);
    }
    char last[64];
    hlc_format(candidate, last, sizeof(last));
    router__set_error(r, "the commit timestamp was pushed %d times by reads of the written keys "
                      "in range %" PRIu64 " (last to %s); retry the transaction",
                      ROUTER__PUSH_ATTEMPTS_MAX, p->parts[0].desc.range_id, last);
    return RANGE_ERR_PUSHED;
}

static int router__commit(range_kv *kv, const range_commit_request *req, hlc_timestamp *commit_ts,
                          range_conflict *conflict) {
    range_router *r = (range_router *)kv;
    router__clear_error();
    if (req == NULL || (req->write_count > 0 && req->writes == NULL) ||
        (req->delete_span_count > 0 && req->delete_spans == NULL) ||
        (req->read_span_count > 0 && req->read_spans == NULL))
        return RANGE_ERR_INVALID;
    if (req->write_count == 0 && req->delete_span_count == 0) {
        /* nothing to write: the snapshot at read_ts is the commit (range_commit) */
        *commit_ts = req->read_ts;
        return RANGE_OK;
    }
    /* more than one command holds: nothing is sent; the caller commits in
    ** chunks, by two-phase commit (prepare) */
    size_t bytes = 0, read_bytes = 0;
    for (size_t i = 0; i < req->write_count; i++) bytes += router__write_bytes(&req->writes[i]);
    for (size_t i = 0; i < req->delete_span_count; i++)
        bytes += router__span_bytes(&req->delete_spans[i]);
    for (size_t i = 0; i < req->read_span_count; i++)
        read_bytes += router__span_bytes(&req->read_spans[i]);
    if (req->write_count > ROUTER__CHUNK_WRITES_MAX || bytes > ROUTER__CHUNK_BYTES_MAX ||
        read_bytes > ROUTER__CHUNK_READ_BYTES_MAX) {
        router__set_error(r, "the commit is larger than one command (%zu writes, %zu bytes, "
                          "%zu bytes of reads)", req->write_count, bytes, read_bytes);
        return RANGE_ERR_TOO_LARGE;
    }
    uint64_t nonce = 0;
    while (nonce == 0) nonce = router__random(r); /* the same on every attempt */
    int64_t deadline_ns = base_monotonic_ns() + r->config.deadline_ms * 1000000;
    int rc = RANGE_ERR_UNAVAILABLE;
    router__commit_state *st = base_calloc(1, sizeof(*st)); /* owner: this function */
    if (st == NULL) return RANGE_ERR_NOMEM;
    base_buf missing = {0}; /* owner: this function; a key no cached range holds */
    int lookups = 0;
    for (int plan_attempt = 0; plan_attempt < ROUTER__PLAN_ATTEMPTS_MAX; plan_attempt++) {
        router__plan plan;
        memset(&plan, 0, sizeof(plan));
        int prc = router__plan_commit(r, req, &plan, &missing);
        rc = prc;
        if (rc == RANGE_OK)
            rc = router__commit_planned(r, req, nonce, &plan, deadline_ns, st, commit_ts,
                                        conflict);
        router__plan_free(&plan);
        if (rc == RANGE_ERR_KEY_MISMATCH) continue; /* the ranges changed shape: plan again */
        if (prc == RANGE_ERR_UNAVAILABLE) {
            /* a key no cached range holds: ask meta, then plan again */
            char text[ROUTER__KEY_TEXT_MAX + 8];
            router__key_text(missing.data, missing.len, text, sizeof(text));
            char problem[128];
            snprintf(problem, sizeof(problem), "no range known for key %s", text);
            router__route route = {missing.data, missing.len, false, false};
            if (lookups < ROUTER__META_LOOKUPS_MAX) {
                lookups++;
                int lrc = router__meta_lookup(r, &route, deadline_ns, problem, sizeof(problem));
                if (lrc == RANGE_OK) {
                    plan_attempt--; /* not a change of shape */
                    continue;
                }
                if (lrc == RANGE_ERR_NOMEM) rc = lrc;
            }
            if (rc == RANGE_ERR_UNAVAILABLE) {
                router__count(r, &r->stats.unavailable);
                router__set_error(r, "%s", problem);
            }
            base_buf_reset(&missing);
        }
        if (st->unknown && (rc == RANGE_ERR_CROSS_RANGE || rc == RANGE_ERR_UNAVAILABLE)) {
            /* no plan reaches the range that may hold the earlier attempt */
            char detail[ROUTER__ERROR_TEXT_MAX];
            base_strlcpy(detail, router__error.text, sizeof(detail));
            router__count(r, &r->stats.ambiguous);
            router__set_error(r, "the commit's outcome is unknown: an attempt may have applied "
                              "before its range changed shape (%s)", detail);
            rc = RANGE_ERR_AMBIGUOUS;
        }
        base_free(st);
        base_buf_free(&missing);
        return rc;
    }
    base_buf_free(&missing);
    if (st->unknown) {
        router__count(r, &r->stats.ambiguous);
        router__set_error(r, "the ranges of the commit changed shape %d times after an attempt "
                          "of unknown outcome", ROUTER__PLAN_ATTEMPTS_MAX);
        base_free(st);
        return RANGE_ERR_AMBIGUOUS;
    }
    base_free(st);
    router__count(r, &r->stats.unavailable);
    router__set_error(r, "the ranges of the commit changed shape %d times while it was sent",
                      ROUTER__PLAN_ATTEMPTS_MAX);
    return RANGE_ERR_UNAVAILABLE;
}

/* ---- two-phase commit (docs/txn.md section 3) ----------------------------------- */

/* Depth of intent handling on this thread: a push or resolve that meets an
** intent itself handles it too, up to ROUTER__NESTING_MAX. */
static _Thread_local int router__nesting;

static int router__heartbeat_until(range_router *r, const range_txn_meta *txn,
                                   int64_t deadline_ns, int *status);

/* A nonce of its own for each request of a two-phase commit: the servers'
** idempotence records are keyed by (txn_id, nonce) across every range of a
** node (range.h, range_command), so two requests of one transaction must
** never share one. Same inputs, same nonce: retries stay idempotent. */
static uint64_t router__nonce_for(uint64_t nonce, uint64_t kind, uint64_t range_id) {
    uint64_t z = nonce ^ (kind * 0xD6E8FEB86659FD93ull) ^ (range_id * 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z != 0 ? z : 1;
}
enum { ROUTER__NONCE_PREPARE = 1, ROUTER__NONCE_END_COMMIT = 2, ROUTER__NONCE_END_ABORT = 3,
       ROUTER__NONCE_RESOLVE = 4 };

void range_prepare_result_free(range_prepare_result *res) {
    if (res == NULL) return;
    base_free(res->spans);
    base_buf_free(&res->span_bytes);
    memset(res, 0, sizeof(*res));
}

/* RESOLVE of spans inside one range (range_id 0: the range holding the
** route, which the builder then checks the spans against). */
typedef struct router__resolve_ctx {
    uint64_t txn_id, nonce, range_id;
    const range_span *spans;
    size_t n_spans;
    int status;
    hlc_timestamp commit_ts;
    /* a reader's: the first answer ends it, intents may be left after it
    ** (the reader resolves what it meets and goes on) */
    bool one_chunk;
    /* > 0: after an answer that resolved some, the next request's deadline
    ** is this long from then (progress, not the whole job, is bounded) */
    int64_t chunk_ms;
    atomic_bool *progress; /* set when an answer resolved some (may be NULL) */
} router__resolve_ctx;

static int router__build_resolve(void *ctx, range_router *r, const range_descriptor *d,
                                 range_kv_request *req) {
    (void)r;
    const router__resolve_ctx *c = ctx;
    const uint8_t *k;
    size_t klen;
    if (c->range_id != 0 && d->range_id != c->range_id) return RANGE_ERR_KEY_MISMATCH;
    for (size_t i = 0; i < c->n_spans; i++)
        if (!router__span_in(d, &c->spans[i], &k, &klen)) return RANGE_ERR_KEY_MISMATCH;
    req->op = RANGE_KV_RESOLVE;
    req->range_id = d->range_id;
    req->txn_id = c->txn_id;
    req->nonce = router__nonce_for(c->nonce, ROUTER__NONCE_RESOLVE, d->range_id);
    req->txn_status = (uint8_t)c->status;
    req->commit_ts = c->commit_ts;
    req->spans = c->spans;
    req->span_count = c->n_spans;
    return RANGE_OK;
}

/* The spans of c at or after from into *out (owner: caller, base_free;
** bytes borrowed from c and from): *n 0 when nothing is left. */
static int router__resolve_clip(const router__resolve_ctx *c, const base_buf *from,
                                range_span **out, size_t *n) {
    *n = 0;
    base_free(*out);
    *out = base_calloc(c->n_spans, sizeof(**out));
    if (*out == NULL) return RANGE_ERR_NOMEM;
    for (size_t i = 0; i < c->n_spans; i++) {
        range_span sp = c->spans[i];
        if (range__key_cmp(sp.start, sp.start_len, from->data, from->len) < 0) {
            if (sp.point || (sp.end_len > 0 &&
                             range__key_cmp(sp.end, sp.end_len, from->data, from->len) <= 0))
                continue; /* resolved */
            sp.start = from->data;
            sp.start_len = from->len;
        }
        (*out)[(*n)++] = sp;
    }
    return RANGE_OK;
}

/* RESOLVE of c's spans at the range holding spans[0]: one request, then,
** while the server answers "resolved below key K, more left" (RANGE_OK with
** more, K in value; docs/txn.md 3.3), again from K (c->one_chunk: the first
** answer ends it). With c->chunk_ms each request after progress gets a
** fresh deadline, so a resolution of any size ends only when it stops
** making progress. RANGE_OK, RANGE_ERR_KEY_MISMATCH (plan again), or an
** error. */
static int router__send_resolve(range_router *r, const router__resolve_ctx *c,
                                int64_t deadline_ns) {
    router__resolve_ctx cur = *c;
    base_buf from = {0};       /* owner: this function; resolved below it */
    range_span *clipped = NULL; /* owner: this function */
    int rc = RANGE_OK;
    int64_t start_ns = base_monotonic_ns();
    int chunk = 0;
    for (;; chunk++) {
        if (chunk >= ROUTER__RESOLVE_CHUNKS_MAX) {
            router__set_error(r, "a resolution took more than %d requests", chunk);
            rc = RANGE_ERR_UNAVAILABLE;
            break;
        }
        router__op op;
        memset(&op, 0, sizeof(op));
        op.route = (router__route){cur.spans[0].start, cur.spans[0].start_len, false, false};
        op.build = router__build_resolve;
        op.build_ctx = &cur;
        op.what = "resolution of intents";
        op.deadline_ns = deadline_ns;
        range_kv_response resp;
        base_buf bytes = {0};
        range_descriptor used;
        rc = router__execute(r, &op, &resp, &bytes, &used);
        if (rc != RANGE_OK && router__answer_kept(rc)) {
            router__set_error(r, "range %" PRIu64 ": answer %d to a resolution", used.range_id,
                              rc);
            rc = RANGE_ERR_CORRUPT;
        }
        bool more = rc == RANGE_OK && resp.more;
        if (more && (resp.value_len == 0 ||
                     (from.len > 0 &&
                      range__key_cmp(resp.value, resp.value_len, from.data, from.len) <= 0))) {
            /* the position must move forward, or this never ends */
            router__set_error(r, "range %" PRIu64 ": a resolution answered no progress",
                              used.range_id);
            rc = RANGE_ERR_CORRUPT;
            more = false;
        }
        if (more) {
            base_buf_reset(&from);
            if (base_buf_append(&from, resp.value, resp.value_len) != 0) rc = RANGE_ERR_NOMEM;
        }
        range_kv_response_free(&resp);
        range_descriptor_free(&used);
        base_buf_free(&bytes);
        if (rc != RANGE_OK || !more) break;
        if (c->progress != NULL) atomic_store(c->progress, true);
        if (c->one_chunk) break;
        size_t n = 0;
        rc = router__resolve_clip(c, &from, &clipped, &n);
        if (rc != RANGE_OK || n == 0) break;
        cur.spans = clipped;
        cur.n_spans = n;
        if (c->chunk_ms > 0) deadline_ns = base_monotonic_ns() + c->chunk_ms * 1000000;
    }
    if (chunk >= ROUTER__RESOLVE_LOG_CHUNKS)
        BASE_INFO("range", "resolution of txn %016" PRIx64 " in r%" PRIu64 ": %d requests, "
                  "%" PRId64 " ms (%d)", c->txn_id, c->range_id, chunk + 1,
                  (base_monotonic_ns() - start_ns) / 1000000, rc);
    base_buf_free(&from);
    base_free(clipped);
    return rc;
}

/* A key no cached range holds (missing): ask meta. RANGE_OK (plan again) or
** the error, with the detail set. */
static int router__lookup_missing(range_router *r, const base_buf *missing, int64_t deadline_ns,
                                  int *lookups) {
    char text[ROUTER__KEY_TEXT_MAX + 8];
    router__key_text(missing->data, missing->len, text, sizeof(text));
    char problem[128];
    snprintf(problem, sizeof(problem), "no range known for key %s", text);
    router__route route = {missing->data, missing->len, false, false};
    int rc = RANGE_ERR_UNAVAILABLE;
    if (*lookups < ROUTER__META_LOOKUPS_MAX) {
        (*lookups)++;
        rc = router__meta_lookup(r, &route, deadline_ns, problem, sizeof(problem));
        if (rc == RANGE_OK || rc == RANGE_ERR_NOMEM) return rc;
        rc = RANGE_ERR_UNAVAILABLE;
    }
    router__count(r, &r->stats.unavailable);
    router__set_error(r, "%s", problem);
    return rc;
}

/* Clip spans to the cached ranges (read pieces of p's parts). RANGE_OK,
** RANGE_ERR_UNAVAILABLE with the key copied into *missing, NOMEM. */
static int router__plan_spans(range_router *r, router__plan *p, const range_span *spans,
                              size_t n, base_buf *missing) {
    const uint8_t *key = NULL;
    size_t key_len = 0;
    int rc = RANGE_OK;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < n && rc == RANGE_OK; i++)
        rc = router__plan_read(r, p, &spans[i], &key, &key_len);
    pthread_mutex_unlock(&r->mu);
    if (rc == RANGE_ERR_UNAVAILABLE) {
        base_buf_reset(missing);
        if (base_buf_append(missing, key_len ? key : (const uint8_t *)"", key_len) != 0)
            rc = RANGE_ERR_NOMEM;
    } else if (rc == RANGE_ERR_CROSS_RANGE) {
        router__set_error(r, "the spans cover more than %d ranges", ROUTER__READ_RANGES_MAX);
    }
    return rc;
}

static int router__resolve_parts(range_router *r, router__plan *p, uint64_t txn_id,
                                 uint64_t nonce, int status, hlc_timestamp commit_ts,
                                 int64_t deadline_ns, const router__resolve_ctx *how);

/* Every intent of txn_id in spans -> status, the ranges at once. how: its
** one_chunk, chunk_ms and progress (router__resolve_ctx); the rest unused. */
static int router__resolve_spans(range_router *r, uint64_t txn_id, const range_span *spans,
                                 size_t n, int status, hlc_timestamp commit_ts,
                                 int64_t deadline_ns, const router__resolve_ctx *how) {
    atomic_bool progress; /* of the current plan */
    int replans = 0;
    uint64_t nonce = 0;
    while (nonce == 0) nonce = router__random(r); /* one per call: its retries share it */
    base_buf missing = {0}; /* owner: this function */
    int lookups = 0;
    int rc = RANGE_ERR_UNAVAILABLE;
    for (int plan_attempt = 0; plan_attempt < ROUTER__PLAN_ATTEMPTS_MAX; plan_attempt++) {
        router__plan plan;
        memset(&plan, 0, sizeof(plan));
        rc = router__plan_spans(r, &plan, spans, n, &missing);
        atomic_store(&progress, false);
        if (rc == RANGE_OK && plan.n_parts == 1) {
            const router__part *part = &plan.parts[0];
            router__resolve_ctx c = {txn_id, nonce, part->desc.range_id, part->spans,
                                     part->n_spans, status, commit_ts, how->one_chunk,
                                     how->chunk_ms, &progress};
            rc = router__send_resolve(r, &c, deadline_ns);
        } else if (rc == RANGE_OK && plan.n_parts > 1) {
            /* the ranges at once (a committed transaction's locks go sooner) */
            router__resolve_ctx c = *how;
            c.progress = &progress;
            rc = router__resolve_parts(r, &plan, txn_id, nonce, status, commit_ts, deadline_ns,
                                       &c);
        }
        router__plan_free(&plan);
        if (atomic_load(&progress) && how->progress != NULL) atomic_store(how->progress, true);
        if (rc == RANGE_ERR_KEY_MISMATCH && atomic_load(&progress) &&
            replans++ < ROUTER__RESOLVE_REPLANS_MAX) {
            /* a range split under a long resolution: not a failed plan */
            plan_attempt--;
            if (how->chunk_ms > 0) deadline_ns = base_monotonic_ns() + how->chunk_ms * 1000000;
            continue;
        }
        if (rc == RANGE_ERR_KEY_MISMATCH) continue; /* resolved parts are idempotent */
        if (rc == RANGE_ERR_UNAVAILABLE && missing.len > 0) {
            rc = router__lookup_missing(r, &missing, deadline_ns, &lookups);
            base_buf_reset(&missing);
            if (rc == RANGE_OK) {
                plan_attempt--;
                continue;
            }
        }
        break;
    }
    if (rc == RANGE_ERR_KEY_MISMATCH) {
        router__count(r, &r->stats.unavailable);
        router__set_error(r, "the ranges of a resolution changed shape %d times",
                          ROUTER__PLAN_ATTEMPTS_MAX);
        rc = RANGE_ERR_UNAVAILABLE;
    }
    base_buf_free(&missing);
    return rc;
}

typedef struct router__push_ctx {
    const range_txn_meta *pusher; /* NULL: anonymous */
    uint64_t pushee;
    const uint8_t *anchor;
    size_t anchor_len;
    hlc_timestamp intent_ts, now;
    int64_t since_wall_ns;       /* an unreplicated holder's lock time (0: unknown) */
    const range_kv_edge *deps;   /* the pusher's dependents (QUERY_TXN) */
    size_t n_deps;
} router__push_ctx;

static int router__build_push(void *ctx, range_router *r, const range_descriptor *d,
                              range_kv_request *req) {
    (void)r;
    const router__push_ctx *c = ctx;
    req->op = RANGE_KV_PUSH;
    req->range_id = d->range_id;
    req->read_ts = c->now;
    req->txn_id = c->pusher != NULL ? c->pusher->txn_id : 0;
    req->priority = c->pusher != NULL ? c->pusher->priority : 0;
    req->pushee_txn_id = c->pushee;
    req->anchor = c->anchor;
    req->anchor_len = c->anchor_len;
    req->intent_ts = c->intent_ts;
    req->since_wall_ns = c->since_wall_ns;
    req->deps = c->deps;
    req->dep_count = c->n_deps;
    return RANGE_OK;
}

/* "t1 -> t2 -> t1" (ids in hex, the victim first), cut to size. */
static void router__cycle_text(const uint64_t *cycle, size_t n, char *out, size_t size) {
    size_t pos = 0;
    out[0] = '\0';
    for (size_t i = 0; i <= n && n > 0 && pos + 24 < size; i++)
        pos += (size_t)snprintf(out + pos, size - pos, "%s%016" PRIx64, i ? " -> " : "",
                                cycle[i % n]);
    if (pos + 24 >= size && size > 4) memcpy(out + size - 4, "...", 4);
}

/* The pusher was aborted (a deadlock chose it, or a pusher of its own found
** it expired): the error for the operation, naming the cycle. */
static int router__pusher_aborted(range_router *r, const range_txn_meta *pusher,
                                  const range_kv_response *resp, const char *key) {
    uint64_t id = pusher != NULL ? pusher->txn_id : 0;
    if (resp != NULL && resp->cycle_len > 0) {
        char cycle[ROUTER__CYCLE_TEXT_MAX];
        router__cycle_text(resp->cycle, resp->cycle_len, cycle, sizeof(cycle));
        router__set_error(r, "deadlock: transaction %016" PRIx64 " was chosen as the victim of "
                          "the cycle %s (each waiting for the next) while it waited for key %s",
                          id, cycle, key);
    } else {
        router__set_error(r, "transaction %016" PRIx64 " was aborted by another transaction "
                          "while it waited for key %s (its record is ABORTED)", id, key);
    }
    return RANGE_ERR_ABORTED;
}

typedef struct router__query_ctx {
    const range_txn_meta *txn;
} router__query_ctx;

static int router__build_query(void *ctx, range_router *r, const range_descriptor *d,
                               range_kv_request *req) {
    (void)r;
    const router__query_ctx *c = ctx;
    req->op = RANGE_KV_QUERY_TXN;
    req->range_id = d->range_id;
    req->txn_id = c->txn->txn_id;
    req->anchor = c->txn->anchor;
    req->anchor_len = c->txn->anchor_len;
    return RANGE_OK;
}

/* Who waits on txn (transitively, as its record's range last heard), into
** deps (at most RANGE_KV_DEPS_MAX). RANGE_OK (none on a failed query: the
** push then finds no cycle this time), RANGE_ERR_ABORTED (txn's record is
** ABORTED), RANGE_ERR_NOMEM. */
static int router__query_deps(range_router *r, const range_txn_meta *txn, int64_t deadline_ns,
                              range_kv_edge *deps, size_t *n_deps) {
    *n_deps = 0;
    router__query_ctx c = {txn};
    router__op op;
    memset(&op, 0, sizeof(op));
    op.route = (router__route){txn->anchor, txn->anchor_len, false, false};
    op.build = router__build_query;
    op.build_ctx = &c;
    op.what = "query of waiters";
    op.deadline_ns = deadline_ns;
    range_kv_response resp;
    base_buf bytes = {0};
    range_descriptor used;
    int rc = router__execute(r, &op, &resp, &bytes, &used);
    if (rc == RANGE_OK) {
        size_t n = resp.dep_count < RANGE_KV_DEPS_MAX ? resp.dep_count : RANGE_KV_DEPS_MAX;
        if (n > 0) memcpy(deps, resp.deps, n * sizeof(*deps));
        *n_deps = n;
        if (resp.has_txn && resp.txn_status == RANGE_TXN_ABORTED) rc = RANGE_ERR_ABORTED;
    }
    range_kv_response_free(&resp);
    range_descriptor_free(&used);
    base_buf_free(&bytes);
    return rc == RANGE_ERR_NOMEM || rc == RANGE_ERR_ABORTED ? rc : RANGE_OK;
}

/* The request of op met the intent (or lock) in resp: PUSH its holder at
** its anchor's range (a transactional pusher with its dependents), then
** RESOLVE the key with the answer (which also releases a lock).
** seen->pending: the holder is still PENDING (or the push/resolve failed):
** ask again. RANGE_OK, or an error that ends op (detail set):
** RANGE_ERR_ABORTED when the pusher itself was aborted (deadlock victim). */
static int router__meet_intent(range_router *r, const router__op *op,
                               const range_kv_response *resp, int64_t deadline_ns,
                               router__intent_seen *seen) {
    seen->blocked = true;
    seen->holder = resp->intent_txn_id;
    seen->unreplicated = resp->intent_unreplicated;
    router__key_text(resp->intent_key, resp->intent_key_len, seen->key, sizeof(seen->key));
    seen->pending = true;
    if (op->txn != NULL && op->txn->txn_id == resp->intent_txn_id) {
        router__set_error(r, "key %s: the range named this transaction's own %s as a "
                          "conflict", seen->key, seen->unreplicated ? "lock" : "intent");
        return RANGE_ERR_CORRUPT;
    }
    int rc = RANGE_OK;
    if (router__nesting >= ROUTER__NESTING_MAX) goto out; /* wait it out instead */
    router__nesting++;
    range_kv_edge deps[RANGE_KV_DEPS_MAX];
    size_t n_deps = 0;
    if (op->txn != NULL && op->txn->anchor_len > 0) {
        rc = router__query_deps(r, op->txn, deadline_ns, deps, &n_deps);
        if (rc == RANGE_ERR_ABORTED) rc = router__pusher_aborted(r, op->txn, NULL, seen->key);
        if (rc != RANGE_OK) {
            router__nesting--;
            goto out;
        }
    }
    router__push_ctx pc = {op->txn, resp->intent_txn_id, resp->intent_anchor,
                           resp->intent_anchor_len, resp->intent_ts, hlc_now(r->config.clock),
                           resp->intent_since_wall_ns, deps, n_deps};
    router__op pop;
    memset(&pop, 0, sizeof(pop));
    pop.route = (router__route){resp->intent_anchor, resp->intent_anchor_len, false, false};
    pop.build = router__build_push;
    pop.build_ctx = &pc;
    pop.what = "push";
    pop.deadline_ns = deadline_ns;
    pop.txn = op->txn;
    pop.keep_aborted = op->txn != NULL; /* the cycle that chose us */
    range_kv_response presp;
    base_buf bytes = {0};
    range_descriptor used;
    rc = router__execute(r, &pop, &presp, &bytes, &used);
    int status = RANGE_TXN_PENDING;
    hlc_timestamp commit_ts = HLC_ZERO;
    if (rc == RANGE_OK && presp.has_txn) {
        status = presp.txn_status;
        commit_ts = presp.commit_ts;
    }
    if (rc == RANGE_ERR_ABORTED && op->txn != NULL)
        rc = router__pusher_aborted(r, op->txn, &presp, seen->key);
    range_kv_response_free(&presp);
    range_descriptor_free(&used);
    base_buf_free(&bytes);
    if (rc != RANGE_ERR_NOMEM && rc != RANGE_ERR_ABORTED) rc = RANGE_OK; /* failed: pending */
    if (rc == RANGE_OK && (status == RANGE_TXN_ABORTED ||
                           (status == RANGE_TXN_COMMITTED && !hlc_is_zero(commit_ts)))) {
        range_span sp = {resp->intent_key, resp->intent_key_len, NULL, 0, true};
        if (op->resolve_span != NULL && router__span_holds(op->resolve_span, resp->intent_key,
                                                           resp->intent_key_len))
            sp = *op->resolve_span;
        /* a meta transaction's intent (a split's, merge's...): all of meta,
        ** since its coordinator may have died with the rest unresolved, and
        ** routers read committed meta only (test_txn_sim seed 22472) */
        static const uint8_t meta_from[] = RANGE_META_PREFIX "\x01";
        static const uint8_t meta_to[] = RANGE_META_PREFIX "\x03";
        if (range_meta_is_key(resp->intent_key, resp->intent_key_len))
            sp = (range_span){meta_from, sizeof(meta_from) - 1, meta_to, sizeof(meta_to) - 1,
                              false};
        /* what it met (its page's span), not the whole transaction's: the
        ** resolver resolves the rest; a first chunk resolved is progress */
        router__resolve_ctx how;
        memset(&how, 0, sizeof(how));
        how.one_chunk = true;
        rc = router__resolve_spans(r, resp->intent_txn_id, &sp, 1, status, commit_ts,
                                   deadline_ns, &how);
        seen->pending = rc != RANGE_OK;
        if (rc != RANGE_ERR_NOMEM) rc = RANGE_OK;
    }
    router__nesting--;
out:
    if (seen->pending && seen->first_pending_ns == 0) seen->first_pending_ns = base_monotonic_ns();
    return rc;
}

/* Plan a two-phase commit from the cache: writes and delete spans (clipped)
** per range, read spans (clipped) per range. */
static int router__plan_txn(range_router *r, const range_commit_request *req, router__plan *p,
                            base_buf *missing) {
    const uint8_t *key = NULL;
    size_t key_len = 0;
    int rc = RANGE_OK;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < req->write_count && rc == RANGE_OK; i++) {
        const range_write *w = &req->writes[i];
        router__entry *e = router__find(r, w->key, w->key_len);
        router__part *part = NULL;
        if (e == NULL) {
            key = w->key;
            key_len = w->key_len;
            rc = RANGE_ERR_UNAVAILABLE;
            break;
        }
        rc = router__plan_part(p, &e->desc, &part);
        if (rc != RANGE_OK) break;
        if (part->n_writes == part->cap_writes) {
            size_t ncap = part->cap_writes ? part->cap_writes * 2 : 8;
            range_write *nw = base_realloc(part->writes, ncap * sizeof(*nw)); /* owner: part */
            if (nw == NULL) {
                rc = RANGE_ERR_NOMEM;
                break;
            }
            part->writes = nw;
            part->cap_writes = ncap;
        }
        part->writes[part->n_writes++] = *w; /* sorted: req's order */
    }
    for (size_t i = 0; i < req->delete_span_count && rc == RANGE_OK; i++)
        rc = router__plan_span(r, p, &req->delete_spans[i], true, &key, &key_len);
    for (size_t i = 0; i < req->read_span_count && rc == RANGE_OK; i++)
        rc = router__plan_span(r, p, &req->read_spans[i], false, &key, &key_len);
    pthread_mutex_unlock(&r->mu);
    if (rc == RANGE_ERR_UNAVAILABLE) {
        base_buf_reset(missing);
        if (base_buf_append(missing, key_len ? key : (const uint8_t *)"", key_len) != 0)
            rc = RANGE_ERR_NOMEM;
    } else if (rc == RANGE_ERR_CROSS_RANGE) {
        router__count(r, &r->stats.cross_range);
        router__set_error(r, "the transaction spans more than %d ranges",
                          ROUTER__READ_RANGES_MAX);
    }
    return rc;
}

static bool router__part_writes(const router__part *part) {
    return part->n_writes > 0 || part->n_dels > 0;
}

/* out's spans: per range with writes, [its first written key, just past
** its last) (delete-span pieces included; an open piece leaves it open). */
static int router__prepare_spans(const router__plan *p, range_prepare_result *out) {
    base_free(out->spans);
    out->spans = NULL;
    out->n_spans = 0;
    base_buf_reset(&out->span_bytes);
    size_t n = 0;
    for (size_t i = 0; i < p->n_parts; i++) n += router__part_writes(&p->parts[i]);
    if (n == 0) return RANGE_OK;
    out->spans = base_calloc(n, sizeof(*out->spans)); /* owner: out */
    size_t *offs = base_calloc(2 * n, sizeof(*offs)); /* owner: this function */
    base_buf end = {0};                                /* owner: this function */
    int rc = out->spans == NULL || offs == NULL ? RANGE_ERR_NOMEM : RANGE_OK;
    for (size_t i = 0; i < p->n_parts && rc == RANGE_OK; i++) {
        const router__part *part = &p->parts[i];
        if (!router__part_writes(part)) continue;
        const uint8_t *lo = NULL;
        size_t lo_len = 0;
        bool open = false;
        base_buf_reset(&end); /* exclusive: the last written key + 0x00, or a piece's end */
        if (part->n_writes > 0) {
            const range_write *last = &part->writes[part->n_writes - 1];
            lo = part->writes[0].key;
            lo_len = part->writes[0].key_len;
            if (base_buf_append(&end, last->key, last->key_len) != 0 ||
                base_buf_append_byte(&end, 0) != 0)
                rc = RANGE_ERR_NOMEM;
        }
        for (size_t k = 0; k < part->n_dels && rc == RANGE_OK; k++) {
            const range_span *d = &part->dels[k];
            if (lo == NULL || range__key_cmp(d->start, d->start_len, lo, lo_len) < 0) {
                lo = d->start;
                lo_len = d->start_len;
            }
            if (d->end_len == 0) {
                open = true;
            } else if (end.len == 0 || range__key_cmp(d->end, d->end_len, end.data, end.len) > 0) {
                base_buf_reset(&end);
                if (base_buf_append(&end, d->end, d->end_len) != 0) rc = RANGE_ERR_NOMEM;
            }
        }
        range_span *sp = &out->spans[out->n_spans];
        offs[2 * out->n_spans] = out->span_bytes.len;
        sp->start_len = lo_len;
        if (lo_len > 0 && base_buf_append(&out->span_bytes, lo, lo_len) != 0) rc = RANGE_ERR_NOMEM;
        offs[2 * out->n_spans + 1] = out->span_bytes.len;
        if (!open) {
            sp->end_len = end.len;
            if (base_buf_append(&out->span_bytes, end.data, end.len) != 0) rc = RANGE_ERR_NOMEM;
        }
        out->n_spans++;
    }
    for (size_t i = 0; rc == RANGE_OK && i < out->n_spans; i++) { /* the bytes moved */
        range_span *sp = &out->spans[i];
        sp->start = sp->start_len ? out->span_bytes.data + offs[2 * i] : NULL;
        sp->end = sp->end_len ? out->span_bytes.data + offs[2 * i + 1] : NULL;
        sp->point = false;
    }
    if (rc != RANGE_OK) {
        base_free(out->spans);
        out->spans = NULL;
        out->n_spans = 0;
    }
    base_buf_free(&end);
    base_free(offs);
    return rc;
}

/* ---- two-phase commit: chunks and the fan-out ------------------------------------ */

/* One PREPARE of a range's share (docs/txn.md, "Large transactions"): a
** slice of its writes, some of its delete pieces, and (its first chunk) its
** read pieces. Bytes borrowed from the plan or from a cut. */
typedef struct router__chunk {
    const range_write *writes;
    size_t n_writes;
    const range_span *dels;
    size_t n_dels;
    bool reads;         /* carries the part's read pieces */
    bool create_record; /* the anchor's range: its first chunk */
    uint8_t splits;     /* TOO_LARGE answers that split its ancestors */
    uint64_t hash;      /* of its content, for its nonce (router__chunk_seal) */
} router__chunk;

/* Pieces of a chunk's delete spans, cut at keys visible at read_ts. */
typedef struct router__cut {
    base_buf keys;     /* the cut keys, back to back */
    range_span *spans; /* owned; bytes in keys or borrowed from the plan */
    size_t n;
} router__cut;

/* One call's fan-out (a prepare's PREPAREs and VALIDATEs, a resolution's
** RESOLVEs): its jobs, what they share. */
typedef struct router__prep_call {
    range_router *r;
    const range_txn_meta *txn;       /* prepare */
    const range_commit_request *req; /* prepare */
    hlc_timestamp commit_ts;     /* VALIDATE and RESOLVE(COMMITTED) jobs: the timestamp */
    hlc_timestamp candidate;     /* PREPARE: tried first by ranges of one chunk (0: none) */
    uint64_t resolve_txn_id, resolve_nonce; /* RESOLVE jobs */
    int resolve_status;
    int64_t deadline_ns;         /* RESOLVE jobs */
    router__resolve_ctx resolve_how; /* RESOLVE jobs: one_chunk, chunk_ms, progress */
    pthread_mutex_t mu;
    pthread_cond_t cv;           /* left reached 0 */
    size_t left;                 /* jobs not finished (mu) */
    atomic_bool stop;            /* a job failed: the others send nothing more */
    atomic_int_fast64_t beat_ns; /* base_monotonic_ns of the last heartbeat (or the start) */
} router__prep_call;

typedef enum router__job_kind {
    ROUTER__JOB_PREPARE = 0,
    ROUTER__JOB_VALIDATE = 1,
    ROUTER__JOB_RESOLVE = 2,
} router__job_kind;

/* One range's job: its PREPARE chunks, one after another (or the VALIDATE
** of its reads, or a RESOLVE of its spans), and what came of it. The task
** is the first member: router__job_run casts back. */
typedef struct router__job {
    router__task task;
    router__prep_call *call;
    router__part *part;
    router__job_kind kind;
    bool create_record;      /* its first chunk creates the record */
    router__chunk *chunks;   /* owned */
    size_t n_chunks, cap_chunks;
    router__cut *cuts;       /* owned, each with what it owns */
    size_t n_cuts;
    hlc_timestamp max_ts;    /* the highest prepare timestamp of its chunks */
    int rc;
    bool unknown;            /* a PREPARE's fate is unknown */
    range_conflict conflict; /* owned */
    char error[ROUTER__ERROR_TEXT_MAX];
} router__job;

static void router__job_free(router__job *j) {
    base_free(j->chunks);
    for (size_t i = 0; i < j->n_cuts; i++) {
        base_buf_free(&j->cuts[i].keys);
        base_free(j->cuts[i].spans);
    }
    base_free(j->cuts);
    range_conflict_free(&j->conflict);
}

/* FNV-1a: the chunk's content decides its nonce. */
static uint64_t router__hash_bytes(uint64_t h, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

static uint64_t router__hash_u64(uint64_t h, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    return router__hash_bytes(h, b, sizeof(b));
}

static uint64_t router__hash_span(uint64_t h, const range_span *sp) {
    h = router__hash_u64(h, sp->start_len);
    h = router__hash_bytes(h, sp->start, sp->start_len);
    h = router__hash_u64(h, sp->point ? UINT64_MAX : sp->end_len);
    return sp->point ? h : router__hash_bytes(h, sp->end, sp->end_len);
}

/* The chunk's hash over everything it carries: the count and bounds of its
** writes (a slice of the sorted write set is known by them), its delete
** pieces, its read pieces and the record flag. A retry or a re-plan that
** makes the same chunk sends the same nonce (idempotent); any other chunk,
** even a subset (a range that split), is evaluated anew. */
static void router__chunk_seal(router__chunk *ch, const router__part *part) {
    uint64_t h = 0xCBF29CE484222325ull;
    h = router__hash_u64(h, ch->n_writes);
    if (ch->n_writes > 0) {
        const range_write *a = &ch->writes[0], *b = &ch->writes[ch->n_writes - 1];
        h = router__hash_bytes(router__hash_u64(h, a->key_len), a->key, a->key_len);
        h = router__hash_bytes(router__hash_u64(h, b->key_len), b->key, b->key_len);
    }
    h = router__hash_u64(h, ch->n_dels);
    for (size_t i = 0; i < ch->n_dels; i++) h = router__hash_span(h, &ch->dels[i]);
    h = router__hash_u64(h, ch->reads ? part->n_spans : UINT64_MAX);
    for (size_t i = 0; ch->reads && i < part->n_spans; i++)
        h = router__hash_span(h, &part->spans[i]);
    ch->hash = router__hash_u64(h, ch->create_record);
}

/* Replace chunks[at] by the n chunks in chs (n >= 1); at == n_chunks: append. */
static int router__job_put_chunks(router__job *j, size_t at, const router__chunk *chs, size_t n) {
    size_t replaced = at < j->n_chunks ? 1 : 0;
    size_t need = j->n_chunks - replaced + n;
    if (need > j->cap_chunks) {
        size_t ncap = j->cap_chunks ? j->cap_chunks * 2 : 4;
        if (ncap < need) ncap = need;
        router__chunk *nc = base_realloc(j->chunks, ncap * sizeof(*nc)); /* owner: j */
        if (nc == NULL) return RANGE_ERR_NOMEM;
        j->chunks = nc;
        j->cap_chunks = ncap;
    }
    if (replaced)
        memmove(&j->chunks[at + n], &j->chunks[at + 1],
                (j->n_chunks - at - 1) * sizeof(j->chunks[0]));
    memcpy(&j->chunks[at], chs, n * sizeof(chs[0]));
    j->n_chunks = need;
    return RANGE_OK;
}

/* Does the part's share fit one PREPARE (by the estimate)? */
static bool router__part_fits(const router__part *part, size_t anchor_len) {
    size_t bytes = 0;
    for (size_t i = 0; i < part->n_writes; i++)
        bytes += router__intent_bytes(part->writes[i].key_len, part->writes[i].value_len,
                                      anchor_len);
    for (size_t i = 0; i < part->n_dels; i++) bytes += router__span_bytes(&part->dels[i]);
    return part->n_writes <= ROUTER__CHUNK_WRITES_MAX && bytes <= ROUTER__CHUNK_BYTES_MAX;
}

/* The part's chunks: all of it in one when it fits; else its delete pieces
** first (tombstone intents of its own writes' keys are then overwritten by
** the writes' intents, never the reverse), then its writes in slices of at
** most ROUTER__CHUNK_WRITES_MAX writes and ROUTER__CHUNK_BYTES_MAX bytes.
** The first chunk creates the record and carries the reads when one
** request holds them (else they are VALIDATEd at the commit timestamp):
** checked before the range holds any intent of this transaction, they cost
** no scan over its own intents there (a VALIDATE at the commit timestamp
** still does, when this range prepared lower: intents are found by a scan). */
static int router__job_plan(router__job *j) {
    const router__part *part = j->part;
    size_t anchor_len = j->call->txn->anchor_len;
    int rc = RANGE_OK;
    if (router__part_fits(part, anchor_len)) {
        router__chunk ch = {part->writes, part->n_writes, part->dels, part->n_dels,
                            false, false, 0, 0};
        rc = router__job_put_chunks(j, 0, &ch, 1);
    } else {
        if (part->n_dels > 0) {
            router__chunk ch = {NULL, 0, part->dels, part->n_dels, false, false, 0, 0};
            rc = router__job_put_chunks(j, 0, &ch, 1);
        }
        for (size_t at = 0; rc == RANGE_OK && at < part->n_writes;) {
            size_t n = 0, bytes = 0;
            while (at + n < part->n_writes && n < ROUTER__CHUNK_WRITES_MAX) {
                const range_write *w = &part->writes[at + n];
                size_t b = router__intent_bytes(w->key_len, w->value_len, anchor_len);
                if (n > 0 && bytes + b > ROUTER__CHUNK_BYTES_MAX) break;
                bytes += b;
                n++;
            }
            router__chunk ch = {&part->writes[at], n, NULL, 0, false, false, 0, 0};
            rc = router__job_put_chunks(j, j->n_chunks, &ch, 1);
            at += n;
        }
    }
    if (rc != RANGE_OK) return rc;
    j->chunks[0].create_record = j->create_record;
    j->chunks[0].reads =
        part->n_spans > 0 && router__read_slice(part->spans, part->n_spans) == part->n_spans;
    for (size_t i = 0; i < j->n_chunks; i++) router__chunk_seal(&j->chunks[i], part);
    return RANGE_OK;
}

typedef struct router__chunk_ctx {
    const router__job *job;
    const router__chunk *chunk;
    hlc_timestamp commit_ts; /* HLC_ZERO: the range picks its prepare timestamp */
} router__chunk_ctx;

/* The part's writes, delete pieces and read pieces must lie in d. */
static int router__build_prepare(void *ctx, range_router *r, const range_descriptor *d,
                                 range_kv_request *out) {
    (void)r;
    const router__chunk_ctx *c = ctx;
    const router__part *part = c->job->part;
    const router__chunk *ch = c->chunk;
    const range_txn_meta *txn = c->job->call->txn;
    const uint8_t *k;
    size_t klen;
    if (d->range_id != part->desc.range_id || !router__part_in(part, d))
        return RANGE_ERR_KEY_MISMATCH;
    for (size_t i = 0; i < ch->n_writes; i++)
        if (!range_descriptor_contains(d, ch->writes[i].key, ch->writes[i].key_len))
            return RANGE_ERR_KEY_MISMATCH;
    for (size_t i = 0; i < ch->n_dels; i++)
        if (!router__span_in(d, &ch->dels[i], &k, &klen)) return RANGE_ERR_KEY_MISMATCH;
    if (ch->create_record && !range_descriptor_contains(d, txn->anchor, txn->anchor_len))
        return RANGE_ERR_KEY_MISMATCH;
    out->op = RANGE_KV_PREPARE;
    out->range_id = d->range_id;
    out->read_ts = c->job->call->req->read_ts;
    out->commit_ts = c->commit_ts;
    out->txn_id = txn->txn_id;
    out->nonce = router__nonce_for(txn->nonce ^ ch->hash, ROUTER__NONCE_PREPARE, d->range_id);
    out->priority = txn->priority;
    out->anchor = txn->anchor;
    out->anchor_len = txn->anchor_len;
    out->create_record = ch->create_record;
    out->writes = ch->writes;
    out->write_count = ch->n_writes;
    out->delete_spans = ch->dels;
    out->delete_span_count = ch->n_dels;
    out->read_spans = ch->reads ? part->spans : NULL;
    out->read_span_count = ch->reads ? part->n_spans : 0;
    return RANGE_OK;
}

/* PREPARE one chunk of j, at commit_ts (HLC_ZERO: the range picks). RANGE_OK
** with *ts, RANGE_ERR_CONFLICT (j->conflict filled), RANGE_ERR_ABORTED,
** RANGE_ERR_TOO_LARGE, RANGE_ERR_PUSHED (a fixed commit_ts the range cannot
** take: nothing applied), RANGE_ERR_KEY_MISMATCH (plan again), or an error;
** the thread's error detail set. */
static int router__send_chunk(range_router *r, router__job *j, const router__chunk *ch,
                              hlc_timestamp commit_ts, hlc_timestamp *ts) {
    router__chunk_ctx c = {j, ch, commit_ts};
    router__op op;
    memset(&op, 0, sizeof(op));
    if (ch->n_writes > 0)
        op.route = (router__route){ch->writes[0].key, ch->writes[0].key_len, false, false};
    else
        op.route = (router__route){ch->dels[0].start, ch->dels[0].start_len, false, false};
    op.build = router__build_prepare;
    op.build_ctx = &c;
    op.is_commit = true;
    op.what = "prepare";
    /* a deadline per chunk: a large transaction takes many */
    op.deadline_ns = base_monotonic_ns() + r->config.deadline_ms * 1000000;
    bool unknown = false;
    op.unknown = &unknown;
    op.txn = j->call->txn;
    range_kv_response resp;
    base_buf bytes = {0};
    range_descriptor used;
    int rc = router__execute(r, &op, &resp, &bytes, &used);
    if (rc == RANGE_OK) {
        *ts = resp.commit_ts;
        (void)hlc_update(r->config.clock, resp.commit_ts);
    } else if (rc == RANGE_ERR_CONFLICT) {
        router__count(r, &r->stats.conflicts);
        rc = router__copy_conflict(&resp, &j->conflict);
    } else if (rc == RANGE_ERR_PUSHED && !hlc_is_zero(commit_ts)) {
        /* evaluated after the idempotence check: it did not apply */
    } else if (rc == RANGE_ERR_PUSHED || (rc != RANGE_OK && router__answer_kept(rc))) {
        router__set_error(r, "range %" PRIu64 ": answer %d to a prepare", used.range_id, rc);
        rc = RANGE_ERR_CORRUPT;
    } else if (rc == RANGE_ERR_ABORTED) {
        router__set_error(r, "range %" PRIu64 ": the transaction's record is ABORTED",
                          used.range_id);
    } else if (rc == RANGE_ERR_TOO_LARGE) {
        router__set_error(r, "range %" PRIu64 ": a prepare of %zu writes and %zu delete spans "
                          "(with the rows they remove) is larger than one command",
                          used.range_id, ch->n_writes, ch->n_dels);
    }
    if (unknown) j->unknown = true;
    range_kv_response_free(&resp);
    range_descriptor_free(&used);
    base_buf_free(&bytes);
    return rc;
}

/* Chunk `at` of j answered TOO_LARGE with delete pieces: they remove more
** rows than one command holds. Cut every piece before the key that would
** take a piece past rows_max rows or bytes_max bytes of tombstone intents,
** the keys visible at read_ts (a key written since is a conflict anyway:
** the cut only sizes the pieces), and replace the chunk by one chunk per
** piece, then one of its writes; the record flag and the reads stay with
** the first. RANGE_OK, or an error (detail set). */
static int router__job_cut(router__job *j, size_t at, size_t rows_max, size_t bytes_max) {
    range_router *r = j->call->r;
    const router__chunk old = j->chunks[at];
    size_t anchor_len = j->call->txn->anchor_len;
    router__cut cut;             /* owner: this function until j->cuts takes it */
    memset(&cut, 0, sizeof(cut));
    size_t *marks = NULL;        /* owner: this function; per cut key: piece, offset */
    size_t n_marks = 0, cap_marks = 0;
    router__chunk *chs = NULL;   /* owner: this function */
    int rc = RANGE_OK;
    for (size_t p = 0; p < old.n_dels && rc == RANGE_OK; p++) {
        const range_span *sp = &old.dels[p];
        range_kv_iter *it = NULL;
        rc = router__iter_open(&r->kv, sp->start, sp->start_len, sp->end, sp->end_len,
                               j->call->req->read_ts, false, &it);
        size_t rows = 0, bytes = 0;
        while (rc == RANGE_OK) {
            const uint8_t *k, *v;
            size_t kl, vl;
            int n = router__iter_next(it, &k, &kl, &v, &vl);
            if (n <= 0) {
                rc = n;
                break;
            }
            size_t b = router__intent_bytes(kl, 0, anchor_len);
            if (rows == 0 || (rows < rows_max && bytes + b <= bytes_max)) {
                rows++;
                bytes += b;
                continue;
            }
            /* k starts the next piece */
            rows = 1;
            bytes = b;
            if (n_marks >= ROUTER__CUT_PIECES_MAX) {
                router__set_error(r, "a delete span of the transaction removes more than %d "
                                  "pieces' worth of rows in one range", ROUTER__CUT_PIECES_MAX);
                rc = RANGE_ERR_TOO_LARGE;
                break;
            }
            if (n_marks + 1 > cap_marks) {
                size_t ncap = cap_marks ? cap_marks * 2 : 16;
                size_t *nm = base_realloc(marks, ncap * 2 * sizeof(*nm)); /* owner: here */
                if (nm == NULL) {
                    rc = RANGE_ERR_NOMEM;
                    break;
                }
                marks = nm;
                cap_marks = ncap;
            }
            marks[2 * n_marks] = p;
            marks[2 * n_marks + 1] = cut.keys.len;
            n_marks++;
            if (base_buf_append(&cut.keys, k, kl) != 0) rc = RANGE_ERR_NOMEM;
        }
        router__iter_close(it);
    }
    if (rc == RANGE_OK) {
        cut.n = old.n_dels + n_marks;
        cut.spans = base_calloc(cut.n, sizeof(*cut.spans));
        chs = base_calloc(cut.n + 1, sizeof(*chs));
        if (cut.spans == NULL || chs == NULL) rc = RANGE_ERR_NOMEM;
    }
    if (rc == RANGE_OK) {
        /* [start, k1), [k1, k2), ... [kn, end) per piece; the keys move no more */
        size_t s = 0, m = 0;
        for (size_t p = 0; p < old.n_dels; p++) {
            range_span piece = old.dels[p];
            for (; m < n_marks && marks[2 * m] == p; m++) {
                size_t off = marks[2 * m + 1];
                size_t end = m + 1 < n_marks ? marks[2 * m + 3] : cut.keys.len;
                cut.spans[s] = piece;
                cut.spans[s].end = cut.keys.data + off;
                cut.spans[s].end_len = end - off;
                piece.start = cut.keys.data + off;
                piece.start_len = end - off;
                s++;
            }
            cut.spans[s++] = piece;
        }
        uint8_t splits = (uint8_t)(old.splits + 1);
        size_t n = 0;
        for (size_t i = 0; i < cut.n; i++)
            chs[n++] = (router__chunk){NULL, 0, &cut.spans[i], 1, false, false, splits, 0};
        if (old.n_writes > 0)
            chs[n++] = (router__chunk){old.writes, old.n_writes, NULL, 0, false, false, splits, 0};
        chs[0].create_record = old.create_record;
        chs[0].reads = old.reads;
        for (size_t i = 0; i < n; i++) router__chunk_seal(&chs[i], j->part);
        router__cut *nc = base_realloc(j->cuts, (j->n_cuts + 1) * sizeof(*nc)); /* owner: j */
        rc = nc == NULL ? RANGE_ERR_NOMEM : router__job_put_chunks(j, at, chs, n);
        if (nc != NULL) j->cuts = nc;
        if (rc == RANGE_OK) {
            j->cuts[j->n_cuts++] = cut;
            memset(&cut, 0, sizeof(cut));
        }
    }
    base_buf_free(&cut.keys);
    base_free(cut.spans);
    base_free(marks);
    base_free(chs);
    return rc;
}

/* Chunk `at` of j answered TOO_LARGE (its estimate was short): delete
** pieces are cut (above) at a budget halved per split; writes alone are
** halved. RANGE_OK (chunk `at` is the first of its replacements), or
** RANGE_ERR_TOO_LARGE when it cannot be split any more (detail set). */
static int router__job_split(router__job *j, size_t at) {
    const router__chunk old = j->chunks[at];
    if (old.splits < ROUTER__CHUNK_SPLITS_MAX && old.n_dels > 0) {
        size_t rows = ROUTER__CHUNK_WRITES_MAX >> old.splits;
        return router__job_cut(j, at, rows ? rows : 1, ROUTER__CHUNK_BYTES_MAX >> old.splits);
    }
    if (old.splits >= ROUTER__CHUNK_SPLITS_MAX || old.n_writes < 2) return RANGE_ERR_TOO_LARGE;
    size_t half = old.n_writes / 2;
    uint8_t splits = (uint8_t)(old.splits + 1);
    router__chunk chs[2] = {
        {old.writes, half, NULL, 0, old.reads, old.create_record, splits, 0},
        {old.writes + half, old.n_writes - half, NULL, 0, false, false, splits, 0}};
    router__chunk_seal(&chs[0], j->part);
    router__chunk_seal(&chs[1], j->part);
    return router__job_put_chunks(j, at, chs, 2);
}

/* HEARTBEAT the record when the call has run RANGE_TXN_HEARTBEAT_MS since
** the last (a large prepare outlives RANGE_TXN_RECORD_EXPIRY_MS; one job
** sends it). It creates the record if the anchor's chunk did not yet.
** RANGE_OK (a failed heartbeat is tried again later), RANGE_ERR_ABORTED. */
static int router__call_beat(router__prep_call *call) {
    int64_t now = base_monotonic_ns();
    int_fast64_t last = atomic_load(&call->beat_ns);
    if (now - last < (int64_t)RANGE_TXN_HEARTBEAT_MS * 1000000 ||
        !atomic_compare_exchange_strong(&call->beat_ns, &last, now))
        return RANGE_OK;
    int status = RANGE_TXN_PENDING;
    int rc = router__heartbeat_until(call->r, call->txn,
                                     now + call->r->config.deadline_ms * 1000000, &status);
    return rc == RANGE_ERR_ABORTED ? rc : RANGE_OK;
}

/* The job is over: its outcome, then (the last act touching j or call)
** the call's count. */
static void router__job_end(router__job *j, int rc) {
    router__prep_call *call = j->call;
    j->rc = rc;
    if (rc != RANGE_OK) {
        if (router__error.router == call->r)
            base_strlcpy(j->error, router__error.text, sizeof(j->error));
        atomic_store(&call->stop, true);
    }
    pthread_mutex_lock(&call->mu);
    if (--call->left == 0) pthread_cond_broadcast(&call->cv);
    pthread_mutex_unlock(&call->mu);
}

/* A range's PREPAREs: its chunks in order, each after the previous one's
** answer, until one fails or another job did. */
static void router__job_prepare(router__job *j) {
    router__prep_call *call = j->call;
    int rc = router__job_plan(j);
    for (size_t i = 0; rc == RANGE_OK && i < j->n_chunks;) {
        if (atomic_load(&call->stop)) break; /* another range failed */
        hlc_timestamp ts = HLC_ZERO;
        /* a range of one chunk first tries the call's common timestamp:
        ** taken everywhere, no read needs a VALIDATE after */
        bool fixed = j->n_chunks == 1 && !hlc_is_zero(call->candidate);
        rc = router__send_chunk(call->r, j, &j->chunks[i], fixed ? call->candidate : HLC_ZERO,
                                &ts);
        if (rc == RANGE_ERR_PUSHED && fixed) /* reads above it: the range picks */
            rc = router__send_chunk(call->r, j, &j->chunks[i], HLC_ZERO, &ts);
        if (rc == RANGE_ERR_TOO_LARGE) {
            int src = router__job_split(j, i); /* chunk i is its first part now */
            if (src == RANGE_ERR_TOO_LARGE) break; /* the detail of the answer */
            rc = src;
            continue;
        }
        if (rc != RANGE_OK) break;
        if (hlc_compare(ts, j->max_ts) > 0) j->max_ts = ts;
        if (j->chunks[i].reads) j->part->reads_ts = ts;
        if (++i < j->n_chunks) rc = router__call_beat(call);
    }
    router__job_end(j, rc);
}

static void router__job_run(router__task *t) {
    router__job *j = (router__job *)t;
    router__prep_call *call = j->call;
    int rc;
    switch (j->kind) {
    case ROUTER__JOB_PREPARE:
        router__job_prepare(j);
        return;
    case ROUTER__JOB_VALIDATE:
        rc = router__validate(call->r, j->part, call->req->read_ts, call->commit_ts, call->txn,
                              base_monotonic_ns() + call->r->config.deadline_ms * 1000000,
                              &j->conflict);
        break;
    default: {
        router__resolve_ctx c = {call->resolve_txn_id, call->resolve_nonce,
                                 j->part->desc.range_id, j->part->spans, j->part->n_spans,
                                 call->resolve_status, call->commit_ts,
                                 call->resolve_how.one_chunk, call->resolve_how.chunk_ms,
                                 call->resolve_how.progress};
        rc = router__send_resolve(call->r, &c, call->deadline_ns);
        break;
    }
    }
    router__job_end(j, rc);
}

/* ---- the pool ---- */

static void *router__pool_main(void *arg) {
    router__pool *p = &((range_router *)arg)->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->n == 0 && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
        if (p->n == 0) break; /* stopped, nothing queued */
        router__task *t = p->queue[0];
        memmove(&p->queue[0], &p->queue[1], (p->n - 1) * sizeof(p->queue[0]));
        p->n--;
        pthread_mutex_unlock(&p->mu);
        t->run(t); /* its caller waits for it: t stays valid until run returns */
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Queue t for a pool thread (t->queued); the pool starts at its first use.
** No thread, or the queue full: t stays with the caller. */
static void router__pool_submit(range_router *r, router__task *t) {
    router__pool *p = &r->pool;
    t->queued = false;
    pthread_mutex_lock(&p->mu);
    if (!p->started && !p->stop) {
        p->started = true;
        while (p->n_threads < ROUTER__POOL_THREADS &&
               pthread_create(&p->threads[p->n_threads], NULL, router__pool_main, r) == 0)
            p->n_threads++;
    }
    if (p->n_threads > 0 && !p->stop && p->n < ROUTER__POOL_QUEUE_MAX) {
        p->queue[p->n++] = t;
        t->queued = true;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
}

/* true: t is the caller's to run (never queued, or taken back before a pool
** thread took it). */
static bool router__pool_claim(range_router *r, router__task *t) {
    if (!t->queued) return true;
    router__pool *p = &r->pool;
    bool mine = false;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n && !mine; i++) {
        if (p->queue[i] != t) continue;
        memmove(&p->queue[i], &p->queue[i + 1], (p->n - i - 1) * sizeof(p->queue[0]));
        p->n--;
        mine = true;
    }
    pthread_mutex_unlock(&p->mu);
    return mine;
}

/* Every call has returned (range_router_free): nothing is queued. */
static void router__pool_stop(range_router *r) {
    router__pool *p = &r->pool;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    p->n_threads = 0;
}

static int router__call_init(router__prep_call *call, range_router *r) {
    memset(call, 0, sizeof(*call));
    call->r = r;
    atomic_init(&call->stop, false);
    atomic_init(&call->beat_ns, base_monotonic_ns());
    if (pthread_mutex_init(&call->mu, NULL) != 0) return RANGE_ERR_NOMEM;
    if (pthread_cond_init(&call->cv, NULL) != 0) {
        pthread_mutex_destroy(&call->mu);
        return RANGE_ERR_NOMEM;
    }
    return RANGE_OK;
}

static void router__call_destroy(router__prep_call *call) {
    pthread_cond_destroy(&call->cv);
    pthread_mutex_destroy(&call->mu);
}

/* Run jobs[0..n): the first on this thread, the others on the pool; those
** no pool thread has taken when this thread is free run here too. Returns
** once every job ended (each is bounded by its requests' deadlines). */
static void router__fanout(range_router *r, router__prep_call *call, router__job *jobs,
                           size_t n) {
    call->left = n;
    atomic_store(&call->stop, false);
    for (size_t i = 1; i < n; i++) router__pool_submit(r, &jobs[i].task);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || router__pool_claim(r, &jobs[i].task)) jobs[i].task.run(&jobs[i].task);
    pthread_mutex_lock(&call->mu);
    while (call->left > 0) pthread_cond_wait(&call->cv, &call->mu);
    pthread_mutex_unlock(&call->mu);
}

/* Which failure of several ranges the call reports: an evaluated refusal
** over an unavailable range, a re-plan only when nothing else failed. */
static int router__failure_rank(int rc) {
    switch (rc) {
    case RANGE_OK: return 0;
    case RANGE_ERR_KEY_MISMATCH: return 1;
    case RANGE_ERR_CONFLICT: return 5;
    case RANGE_ERR_ABORTED: return 4;
    case RANGE_ERR_INTENT: return 3;
    default: return 2;
    }
}

/* The call's outcome from its jobs: RANGE_OK, or the worst failure with its
** detail (and conflict) moved to this thread and *conflict. */
static int router__jobs_outcome(range_router *r, router__job *jobs, size_t n, bool *unknown,
                                range_conflict *conflict) {
    router__job *worst = NULL;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].unknown) *unknown = true;
        if (router__failure_rank(jobs[i].rc) >
            (worst != NULL ? router__failure_rank(worst->rc) : 0))
            worst = &jobs[i];
    }
    if (worst == NULL) return RANGE_OK;
    if (worst->rc == RANGE_ERR_CONFLICT && conflict != NULL) {
        range_conflict tmp = *conflict;
        *conflict = worst->conflict;
        worst->conflict = tmp;
    }
    router__set_error(r, "%s", worst->error[0] ? worst->error : "a range failed");
    return worst->rc;
}

/* Sort the plan's parts by start key (a stable order of the jobs). */
static void router__plan_sort(router__plan *p) {
    for (size_t i = 1; i < p->n_parts; i++) { /* insertion sort: few parts */
        router__part tmp = p->parts[i];
        size_t j = i;
        while (j > 0) {
            const range_descriptor *prev = &p->parts[j - 1].desc;
            if (range__key_cmp(prev->start_key, prev->start_len, tmp.desc.start_key,
                               tmp.desc.start_len) <= 0)
                break;
            p->parts[j] = p->parts[j - 1];
            j--;
        }
        p->parts[j] = tmp;
    }
}

/* PREPARE every range with writes (the anchor's job on this thread, the
** others on the pool, all at once), then VALIDATE, also at once, the reads
** of ranges that were only read or whose reads were checked below the
** highest prepare timestamp. */
static int router__prepare_planned(range_router *r, const range_txn_meta *txn,
                                   const range_commit_request *req, router__plan *p,
                                   bool *unknown, hlc_timestamp *commit_ts,
                                   range_conflict *conflict) {
    router__plan_sort(p);
    size_t anchor_at = p->n_parts, n_writing = 0;
    for (size_t i = 0; i < p->n_parts; i++) {
        if (!router__part_writes(&p->parts[i])) continue;
        n_writing++;
        if (anchor_at == p->n_parts &&
            range_descriptor_contains(&p->parts[i].desc, txn->anchor, txn->anchor_len))
            anchor_at = i;
    }
    if (n_writing == 0) return RANGE_ERR_INVALID;
    if (anchor_at == p->n_parts) {
        /* the anchor (a lock holder's first locked key) is in no written
        ** range: a HEARTBEAT creates (or finds) the record first */
        int status = RANGE_TXN_PENDING;
        int hrc = router__heartbeat_until(
            r, txn, base_monotonic_ns() + r->config.deadline_ms * 1000000, &status);
        if (hrc != RANGE_OK) return hrc; /* ABORTED: the detail is set */
        if (status != RANGE_TXN_PENDING) {
            router__set_error(r, "the record of transaction %016" PRIx64 " is already "
                              "final (%d) before it prepared", txn->txn_id, status);
            return RANGE_ERR_INVALID;
        }
    }
    router__job *jobs = base_calloc(p->n_parts, sizeof(*jobs)); /* owner: this function */
    if (jobs == NULL) return RANGE_ERR_NOMEM;
    router__prep_call call;
    if (router__call_init(&call, r) != RANGE_OK) {
        base_free(jobs);
        return RANGE_ERR_NOMEM;
    }
    call.txn = txn;
    call.req = req;
    /* every range in one chunk: one timestamp for all of them, so a range
    ** that takes it has its reads checked there (no VALIDATE after); a
    ** range whose reads were cached above it picks its own (PUSHED) */
    bool one_chunk_each = true;
    for (size_t i = 0; i < p->n_parts && one_chunk_each; i++)
        if (router__part_writes(&p->parts[i]) && !router__part_fits(&p->parts[i], txn->anchor_len))
            one_chunk_each = false;
    if (one_chunk_each) {
        call.candidate = hlc_now(r->config.clock);
        if (hlc_compare(call.candidate, req->read_ts) <= 0) call.candidate = hlc_next(req->read_ts);
    }
    /* the anchor's range first: this thread starts creating the record */
    size_t n = 0;
    for (size_t k = 0; k <= p->n_parts; k++) {
        size_t i = k == 0 ? anchor_at : k - 1;
        if (i == p->n_parts || (k > 0 && i == anchor_at) || !router__part_writes(&p->parts[i]))
            continue;
        router__job *j = &jobs[n++];
        j->task.run = router__job_run;
        j->call = &call;
        j->part = &p->parts[i];
        j->create_record = i == anchor_at;
    }
    router__fanout(r, &call, jobs, n);
    int rc = router__jobs_outcome(r, jobs, n, unknown, conflict);
    hlc_timestamp ts = HLC_ZERO;
    for (size_t i = 0; i < n; i++)
        if (hlc_compare(jobs[i].max_ts, ts) > 0) ts = jobs[i].max_ts;
    for (size_t i = 0; i < n; i++) router__job_free(&jobs[i]);
    n = 0;
    if (rc == RANGE_OK) {
        /* the reads no PREPARE checked up to ts: VALIDATE them there */
        memset(jobs, 0, p->n_parts * sizeof(*jobs));
        call.commit_ts = ts;
        for (size_t i = 0; i < p->n_parts; i++) {
            router__part *part = &p->parts[i];
            if (part->n_spans == 0 || (!hlc_is_zero(part->reads_ts) &&
                                       hlc_compare(part->reads_ts, ts) == 0))
                continue;
            router__job *j = &jobs[n++];
            j->task.run = router__job_run;
            j->call = &call;
            j->part = part;
            j->kind = ROUTER__JOB_VALIDATE;
        }
        if (n > 0) {
            router__fanout(r, &call, jobs, n);
            rc = router__jobs_outcome(r, jobs, n, unknown, conflict);
        }
    }
    for (size_t i = 0; i < n; i++) router__job_free(&jobs[i]);
    base_free(jobs);
    router__call_destroy(&call);
    if (rc == RANGE_OK) *commit_ts = ts;
    return rc;
}

/* RESOLVE every part of p (its spans) at once. RANGE_OK, or the worst
** failure (RANGE_ERR_KEY_MISMATCH: plan again; resolved parts stay so). */
static int router__resolve_parts(range_router *r, router__plan *p, uint64_t txn_id,
                                 uint64_t nonce, int status, hlc_timestamp commit_ts,
                                 int64_t deadline_ns, const router__resolve_ctx *how) {
    router__job *jobs = base_calloc(p->n_parts, sizeof(*jobs)); /* owner: this function */
    if (jobs == NULL) return RANGE_ERR_NOMEM;
    router__prep_call call;
    if (router__call_init(&call, r) != RANGE_OK) {
        base_free(jobs);
        return RANGE_ERR_NOMEM;
    }
    call.resolve_txn_id = txn_id;
    call.resolve_nonce = nonce;
    call.resolve_status = status;
    call.commit_ts = commit_ts;
    call.deadline_ns = deadline_ns;
    call.resolve_how = *how;
    for (size_t i = 0; i < p->n_parts; i++) {
        jobs[i].task.run = router__job_run;
        jobs[i].call = &call;
        jobs[i].part = &p->parts[i];
        jobs[i].kind = ROUTER__JOB_RESOLVE;
    }
    router__fanout(r, &call, jobs, p->n_parts);
    bool unknown = false;
    int rc = router__jobs_outcome(r, jobs, p->n_parts, &unknown, NULL);
    for (size_t i = 0; i < p->n_parts; i++) router__job_free(&jobs[i]);
    base_free(jobs);
    router__call_destroy(&call);
    return rc;
}

static int router__prepare(range_kv *kv, const range_txn_meta *txn,
                           const range_commit_request *req, range_prepare_result *out,
                           range_conflict *conflict) {
    range_router *r = (range_router *)kv;
    router__clear_error();
    if (out != NULL) memset(out, 0, sizeof(*out));
    if (txn == NULL || req == NULL || out == NULL || txn->txn_id == 0 || txn->anchor == NULL ||
        txn->anchor_len == 0 || (req->write_count > 0 && req->writes == NULL) ||
        (req->delete_span_count > 0 && req->delete_spans == NULL) ||
        (req->read_span_count > 0 && req->read_spans == NULL) ||
        (req->write_count == 0 && req->delete_span_count == 0))
        return RANGE_ERR_INVALID;
    bool unknown = false; /* a PREPARE's fate is unknown */
    base_buf missing = {0}; /* owner: this function */
    int lookups = 0;
    int rc = RANGE_ERR_UNAVAILABLE;
    for (int plan_attempt = 0; plan_attempt < ROUTER__PLAN_ATTEMPTS_MAX; plan_attempt++) {
        router__plan plan;
        memset(&plan, 0, sizeof(plan));
        rc = router__plan_txn(r, req, &plan, &missing);
        /* every range that may get intents, before the first PREPARE; a
        ** later plan covers the same keys (each key in one part) */
        if (rc == RANGE_OK) rc = router__prepare_spans(&plan, out);
        if (rc == RANGE_OK)
            rc = router__prepare_planned(r, txn, req, &plan, &unknown, &out->commit_ts,
                                         conflict);
        router__plan_free(&plan);
        if (rc == RANGE_ERR_KEY_MISMATCH) continue; /* the ranges changed shape */
        if (rc == RANGE_ERR_UNAVAILABLE && missing.len > 0) {
            /* a deadline of its own: the chunks before may have taken long */
            rc = router__lookup_missing(r, &missing,
                                        base_monotonic_ns() + r->config.deadline_ms * 1000000,
                                        &lookups);
            base_buf_reset(&missing);
            if (rc == RANGE_OK) {
                plan_attempt--;
                continue;
            }
        }
        break;
    }
    base_buf_free(&missing);
    if (rc == RANGE_ERR_KEY_MISMATCH) {
        router__set_error(r, "the ranges of the transaction changed shape %d times while it "
                          "prepared", ROUTER__PLAN_ATTEMPTS_MAX);
        rc = RANGE_ERR_UNAVAILABLE;
    }
    if (rc == RANGE_ERR_UNAVAILABLE && unknown) {
        char detail[ROUTER__ERROR_TEXT_MAX];
        base_strlcpy(detail, router__error.text, sizeof(detail));
        router__count(r, &r->stats.ambiguous);
        router__set_error(r, "a prepare's outcome is unknown (%s)", detail);
        rc = RANGE_ERR_AMBIGUOUS;
    }
    return rc;
}

typedef struct router__end_ctx {
    const range_txn_meta *txn;
    int status;
    hlc_timestamp commit_ts;
    const range_span *spans; /* COMMITTED: the record's participant spans (may be none) */
    size_t n_spans;
} router__end_ctx;

static int router__build_end(void *ctx, range_router *r, const range_descriptor *d,
                             range_kv_request *req) {
    (void)r;
    const router__end_ctx *c = ctx;
    if (!range_descriptor_contains(d, c->txn->anchor, c->txn->anchor_len))
        return RANGE_ERR_KEY_MISMATCH;
    req->op = RANGE_KV_END_TXN;
    req->range_id = d->range_id;
    req->read_ts = c->txn->read_ts;
    req->txn_id = c->txn->txn_id;
    /* one nonce per outcome: an END_TXN(ABORTED) after an END_TXN(COMMITTED)
    ** of unknown fate must be evaluated, not taken for it */
    req->nonce = router__nonce_for(c->txn->nonce,
                                   c->status == RANGE_TXN_COMMITTED ? ROUTER__NONCE_END_COMMIT
                                                                    : ROUTER__NONCE_END_ABORT,
                                   0);
    req->priority = c->txn->priority;
    req->anchor = c->txn->anchor;
    req->anchor_len = c->txn->anchor_len;
    req->txn_status = (uint8_t)c->status;
    req->commit_ts = c->commit_ts;
    req->spans = c->spans;
    req->span_count = c->n_spans;
    return RANGE_OK;
}

static int router__end_txn(range_kv *kv, const range_txn_meta *txn, int status,
                           hlc_timestamp commit_ts, range_txn_outcome *out) {
    range_router *r = (range_router *)kv;
    router__clear_error();
    if (out != NULL) memset(out, 0, sizeof(*out));
    if (txn == NULL || out == NULL || txn->txn_id == 0 || txn->anchor == NULL ||
        txn->anchor_len == 0 || (status != RANGE_TXN_COMMITTED && status != RANGE_TXN_ABORTED) ||
        (status == RANGE_TXN_COMMITTED && hlc_is_zero(commit_ts)))
        return RANGE_ERR_INVALID;
    router__end_ctx c = {txn, status, status == RANGE_TXN_COMMITTED ? commit_ts : HLC_ZERO,
                         NULL, 0};
    /* the participant spans, merged to what a record keeps (docs/txn.md 6.1);
    ** none when they cannot be: the record then stays until its coordinator
    ** collects it, as before */
    base_buf span_section = {0}; /* owner: this function; c.spans point into it */
    range_span *spans = NULL;    /* owner: this function */
    if (status == RANGE_TXN_COMMITTED && txn->n_record_spans > 0 &&
        (spans = base_calloc(RANGE_TXN_RECORD_SPANS_MAX, sizeof(*spans))) != NULL &&
        range__record_spans_build(txn->record_spans, txn->n_record_spans, &span_section) ==
            RANGE_OK &&
        range__record_spans_decode(span_section.data, span_section.len, spans, &c.n_spans) ==
            RANGE_OK)
        c.spans = spans;
    else
        c.n_spans = 0;
    router__op op;
    memset(&op, 0, sizeof(op));
    op.route = (router__route){txn->anchor, txn->anchor_len, false, false};
    op.build = router__build_end;
    op.build_ctx = &c;
    op.is_commit = true; /* its fate matters: unknown ends AMBIGUOUS */
    op.what = status == RANGE_TXN_COMMITTED ? "commit record" : "abort record";
    op.txn = txn;
    range_kv_response resp;
    base_buf bytes = {0};
    range_descriptor used;
    int rc = router__execute(r, &op, &resp, &bytes, &used);
    if (rc == RANGE_OK) {
        out->status = resp.has_txn ? resp.txn_status : status;
        out->commit_ts = resp.commit_ts;
        if (out->status == RANGE_TXN_COMMITTED) {
            if (hlc_is_zero(out->commit_ts)) out->commit_ts = c.commit_ts;
            (void)hlc_update(r->config.clock, out->commit_ts);
            if (status == RANGE_TXN_COMMITTED) router__count(r, &r->stats.commits);
        }
        if (out->status != RANGE_TXN_COMMITTED && out->status != RANGE_TXN_ABORTED) {
            router__set_error(r, "range %" PRIu64 ": a record left %d by an end of transaction",
                              used.range_id, out->status);
            rc = RANGE_ERR_CORRUPT;
        }
    } else if (rc == RANGE_ERR_ABORTED) {
        out->status = RANGE_TXN_ABORTED;
        router__set_error(r, "range %" PRIu64 ": the transaction's record is ABORTED",
                          used.range_id);
    } else if (router__answer_kept(rc)) {
        router__set_error(r, "range %" PRIu64 ": answer %d to an end of transaction",
                          used.range_id, rc);
        rc = RANGE_ERR_CORRUPT;
    }
    range_kv_response_free(&resp);
    range_descriptor_free(&used);
    base_buf_free(&bytes);
    base_buf_free(&span_section);
    base_free(spans);
    return rc;
}

static int router__build_gc_txn(void *ctx, range_router *r, const range_descriptor *d,
                                range_kv_request *req) {
    (void)r;
    const range_txn_meta *txn = ctx;
    if (!range_descriptor_contains(d, txn->anchor, txn->anchor_len))
        return RANGE_ERR_KEY_MISMATCH;
    req->op = RANGE_KV_GC_TXN;
    req->range_id = d->range_id;
    req->txn_id = txn->txn_id;
    req->anchor = txn->anchor;
    req->anchor_len = txn->anchor_len;
    return RANGE_OK;
}

/* GC_TXN at the anchor's range (range.h, gc_txn): idempotent, so a retry
** of unknown fate is harmless. */
static int router__gc_txn(range_kv *kv, const range_txn_meta *txn) {
    range_router *r = (range_router *)kv;
    router__clear_error();
    if (txn == NULL || txn->txn_id == 0 || txn->anchor == NULL || txn->anchor_len == 0)
        return RANGE_ERR_INVALID;
    router__op op;
    memset(&op, 0, sizeof(op));
    op.route = (router__route){txn->anchor, txn->anchor_len, false, false};
    op.build = router__build_gc_txn;
    op.build_ctx = (void *)txn;
    op.what = "record collection";
    op.txn = txn;
    range_kv_response resp;
    base_buf bytes = {0};
    range_descriptor used;
    int rc = router__execute(r, &op, &resp, &bytes, &used);
    if (rc != RANGE_OK && router__answer_kept(rc)) {
        router__set_error(r, "range %" PRIu64 ": answer %d to a record collection",
                          used.range_id, rc);
        rc = RANGE_ERR_CORRUPT;
    }
    range_kv_response_free(&resp);
    range_descriptor_free(&used);
    base_buf_free(&bytes);
    return rc;
}

static int router__resolve(range_kv *kv, uint64_t txn_id, const range_span *spans, size_t n_spans,
                           int status, hlc_timestamp commit_ts) {
    range_router *r = (range_router *)kv;
    router__clear_error();
    if (txn_id == 0 || (n_spans > 0 && spans == NULL) ||
        (status != RANGE_TXN_COMMITTED && status != RANGE_TXN_ABORTED) ||
        (status == RANGE_TXN_COMMITTED && hlc_is_zero(commit_ts)))
        return RANGE_ERR_INVALID;
    if (n_spans == 0) return RANGE_OK;
    /* the deadline bounds a stretch without progress, not the whole job:
    ** a committed transaction of a million intents takes many requests */
    int64_t deadline_ns = base_monotonic_ns() + r->config.deadline_ms * 1000000;
    atomic_bool progress;
    atomic_init(&progress, false);
    router__resolve_ctx how;
    memset(&how, 0, sizeof(how));
    how.chunk_ms = r->config.deadline_ms;
    how.progress = &progress;
    int rc = router__resolve_spans(r, txn_id, spans, n_spans, status,
                                   status == RANGE_TXN_COMMITTED ? commit_ts : HLC_ZERO,
                                   deadline_ns, &how);
    /* some resolved, then a stall: the caller's retry is not a failure */
    if (rc != RANGE_OK && rc != RANGE_ERR_NOMEM && rc != RANGE_ERR_INVALID &&
        atomic_load(&progress))
        rc = RANGE_ERR_BUSY;
    return rc;
}

/* ---- statement-time locks (docs/txn.md section 5) ------------------------------ */

/* The LOCK of keys[next..] that lie in the descriptor it is sent with (at
** most RANGE_KV_LOCK_KEYS_MAX, from next on: the keys are sorted, so one
** range's share is contiguous). */
typedef struct router__lock_ctx {
    const range_txn_meta *txn;
    const range_span *keys;
    size_t n_keys, next;
    size_t sent;       /* keys in the last request built */
    range_kv_key *buf; /* owned by the caller: RANGE_KV_LOCK_KEYS_MAX */
} router__lock_ctx;

static int router__build_lock(void *ctx, range_router *r, const range_descriptor *d,
                              range_kv_request *req) {
    (void)r;
    router__lock_ctx *c = ctx;
    size_t n = 0;
    for (size_t i = c->next; i < c->n_keys && n < RANGE_KV_LOCK_KEYS_MAX; i++) {
        if (!range_descriptor_contains(d, c->keys[i].start, c->keys[i].start_len)) break;
        c->buf[n].key = c->keys[i].start;
        c->buf[n].key_len = c->keys[i].start_len;
        n++;
    }
    if (n == 0) return RANGE_ERR_KEY_MISMATCH; /* routed by keys[next]: a bug */
    c->sent = n;
    req->op = RANGE_KV_LOCK;
    req->range_id = d->range_id;
    req->read_ts = c->txn->read_ts;
    req->txn_id = c->txn->txn_id;
    req->priority = c->txn->priority;
    req->anchor = c->txn->anchor;
    req->anchor_len = c->txn->anchor_len;
    req->lock_keys = c->buf;
    req->lock_key_count = n;
    return RANGE_OK;
}

static bool router__meta_ok(const range_txn_meta *txn) {
    return txn != NULL && txn->txn_id != 0 && txn->anchor != NULL && txn->anchor_len > 0 &&
           txn->anchor_len <= STORAGE_KEY_SIZE_MAX;
}

static int router__lock(range_kv *kv, const range_txn_meta *txn, const range_span *keys,
                        size_t n_keys, hlc_timestamp *newest_ts) {
    range_router *r = (range_router *)kv;
    router__clear_error();
    if (newest_ts != NULL) *newest_ts = HLC_ZERO;
    if (!router__meta_ok(txn) || newest_ts == NULL || (n_keys > 0 && keys == NULL))
        return RANGE_ERR_INVALID;
    for (size_t i = 0; i < n_keys; i++) {
        if (keys[i].start == NULL || keys[i].start_len == 0 ||
            keys[i].start_len > STORAGE_KEY_SIZE_MAX ||
            (i > 0 && range__key_cmp(keys[i - 1].start, keys[i - 1].start_len, keys[i].start,
                                     keys[i].start_len) >= 0))
            return RANGE_ERR_INVALID;
    }
    if (n_keys == 0) return RANGE_OK;
    range_kv_key *buf = base_calloc(RANGE_KV_LOCK_KEYS_MAX, sizeof(*buf)); /* owner: here */
    if (buf == NULL) return RANGE_ERR_NOMEM;
    int64_t deadline_ns = base_monotonic_ns() + r->config.deadline_ms * 1000000;
    router__lock_ctx c = {txn, keys, n_keys, 0, 0, buf};
    int rc = RANGE_OK;
    while (c.next < n_keys && rc == RANGE_OK) {
        router__op op;
        memset(&op, 0, sizeof(op));
        op.route = (router__route){keys[c.next].start, keys[c.next].start_len, false, false};
        op.build = router__build_lock;
        op.build_ctx = &c;
        op.what = "lock";
        op.deadline_ns = deadline_ns;
        op.txn = txn;
        op.lock_wait = true;
        range_kv_response resp;
        base_buf bytes = {0};
        range_descriptor used;
        rc = router__execute(r, &op, &resp, &bytes, &used);
        if (rc == RANGE_OK) {
            if (hlc_compare(resp.newest_ts, *newest_ts) > 0) *newest_ts = resp.newest_ts;
            c.next += c.sent;
        } else if (rc == RANGE_ERR_ABORTED) {
            /* the detail is set (the cycle, when a deadlock chose us) */
        } else if (router__answer_kept(rc)) {
            router__set_error(r, "range %" PRIu64 ": answer %d to a lock", used.range_id, rc);
            rc = RANGE_ERR_CORRUPT;
        }
        range_kv_response_free(&resp);
        range_descriptor_free(&used);
        base_buf_free(&bytes);
    }
    base_free(buf);
    if (rc == RANGE_OK) (void)hlc_update(r->config.clock, *newest_ts); /* reads go there */
    return rc;
}

typedef struct router__heartbeat_ctx {
    const range_txn_meta *txn;
} router__heartbeat_ctx;

static int router__build_heartbeat(void *ctx, range_router *r, const range_descriptor *d,
                                   range_kv_request *req) {
    (void)r;
    const router__heartbeat_ctx *c = ctx;
    if (!range_descriptor_contains(d, c->txn->anchor, c->txn->anchor_len))
        return RANGE_ERR_KEY_MISMATCH;
    req->op = RANGE_KV_HEARTBEAT;
    req->range_id = d->range_id;
    req->read_ts = c->txn->read_ts;
    req->txn_id = c->txn->txn_id;
    req->priority = c->txn->priority;
    req->anchor = c->txn->anchor;
    req->anchor_len = c->txn->anchor_len;
    return RANGE_OK;
}

/* HEARTBEAT at txn's anchor, within deadline_ns (0: the router's). */
static int router__heartbeat_until(range_router *r, const range_txn_meta *txn,
                                   int64_t deadline_ns, int *status) {
    router__heartbeat_ctx c = {txn};
    router__op op;
    memset(&op, 0, sizeof(op));
    op.route = (router__route){txn->anchor, txn->anchor_len, false, false};
    op.build = router__build_heartbeat;
    op.build_ctx = &c;
    op.what = "heartbeat";
    op.deadline_ns = deadline_ns;
    op.keep_aborted = true;
    range_kv_response resp;
    base_buf bytes = {0};
    range_descriptor used;
    int rc = router__execute(r, &op, &resp, &bytes, &used);
    if (rc == RANGE_OK) {
        *status = resp.has_txn ? resp.txn_status : RANGE_TXN_PENDING;
        if (*status == RANGE_TXN_ABORTED) rc = RANGE_ERR_ABORTED;
    } else if (rc == RANGE_ERR_ABORTED) {
        *status = RANGE_TXN_ABORTED;
    } else if (router__answer_kept(rc)) {
        router__set_error(r, "range %" PRIu64 ": answer %d to a heartbeat", used.range_id, rc);
        rc = RANGE_ERR_CORRUPT;
    }
    if (rc == RANGE_ERR_ABORTED) {
        if (resp.cycle_len > 0) {
            char cycle[ROUTER__CYCLE_TEXT_MAX];
            router__cycle_text(resp.cycle, resp.cycle_len, cycle, sizeof(cycle));
            router__set_error(r, "deadlock: transaction %016" PRIx64 " was chosen as the victim "
                              "of the cycle %s (each waiting for the next)", txn->txn_id, cycle);
        } else {
            router__set_error(r, "transaction %016" PRIx64 " was aborted by another transaction "
                              "(its record is ABORTED)", txn->txn_id);
        }
    }
    range_kv_response_free(&resp);
    range_descriptor_free(&used);
    base_buf_free(&bytes);
    return rc;
}

static int router__heartbeat(range_kv *kv, const range_txn_meta *txn, int *status) {
    range_router *r = (range_router *)kv;
    router__clear_error();
    if (!router__meta_ok(txn) || status == NULL) return RANGE_ERR_INVALID;
    *status = RANGE_TXN_PENDING;
    return router__heartbeat_until(r, txn, 0, status);
}

static int router__refresh(range_kv *kv, const range_txn_meta *txn, const range_span *spans,
                           size_t n_spans, hlc_timestamp new_ts, range_conflict *conflict) {
    range_router *r = (range_router *)kv;
    router__clear_error();
    if (txn == NULL || (n_spans > 0 && spans == NULL) || hlc_compare(new_ts, txn->read_ts) <= 0)
        return RANGE_ERR_INVALID;
    if (n_spans == 0) return RANGE_OK;
    int64_t deadline_ns = base_monotonic_ns() + r->config.deadline_ms * 1000000;
    base_buf missing = {0}; /* owner: this function */
    int lookups = 0;
    int rc = RANGE_ERR_UNAVAILABLE;
    for (int plan_attempt = 0; plan_attempt < ROUTER__PLAN_ATTEMPTS_MAX; plan_attempt++) {
        router__plan plan;
        memset(&plan, 0, sizeof(plan));
        rc = router__plan_spans(r, &plan, spans, n_spans, &missing);
        for (size_t i = 0; rc == RANGE_OK && i < plan.n_parts; i++)
            rc = router__validate(r, &plan.parts[i], txn->read_ts, new_ts,
                                  txn->txn_id != 0 ? txn : NULL, deadline_ns, conflict);
        router__plan_free(&plan);
        if (rc == RANGE_ERR_KEY_MISMATCH) continue; /* validated parts stay valid */
        if (rc == RANGE_ERR_UNAVAILABLE && missing.len > 0) {
            rc = router__lookup_missing(r, &missing, deadline_ns, &lookups);
            base_buf_reset(&missing);
            if (rc == RANGE_OK) {
                plan_attempt--;
                continue;
            }
        }
        break;
    }
    base_buf_free(&missing);
    if (rc == RANGE_ERR_KEY_MISMATCH) {
        router__count(r, &r->stats.unavailable);
        router__set_error(r, "the ranges of a refresh changed shape %d times",
                          ROUTER__PLAN_ATTEMPTS_MAX);
        rc = RANGE_ERR_UNAVAILABLE;
    }
    return rc;
}

/* ---- the rest of the range_kv ------------------------------------------------ */

static int router__wait_visible(range_kv *kv, hlc_timestamp read_ts) {
    /* the leaseholder waits for pending commits below each read's timestamp */
    (void)kv;
    (void)read_ts;
    router__clear_error();
    return RANGE_OK;
}

static void router__stats(range_kv *kv, range_stats *out) {
    range_router *r = (range_router *)kv;
    pthread_mutex_lock(&r->mu);
    memset(out, 0, sizeof(*out));
    out->commits = r->stats.commits;
    out->conflicts = r->stats.conflicts;
    out->stale_reads = r->stats.stale_reads;
    out->stale_local = r->stats.stale_local;
    out->stale_fallbacks = r->stats.stale_fallbacks;
    pthread_mutex_unlock(&r->mu);
    if (r->config.local != NULL) {
        range_server_stats ss;
        range_server_get_stats(r->config.local, &ss);
        out->follower_reads = ss.follower_reads;
    }
}

static bool router__last_error(range_kv *kv, char *buf, size_t buf_size) {
    if (router__error.router != (const range_router *)kv || router__error.text[0] == '\0' ||
        buf_size == 0)
        return false;
    base_strlcpy(buf, router__error.text, buf_size);
    return true;
}

static const range_kv_ops router__ops = {
    .wait_visible = router__wait_visible,
    .get = router__get,
    .iter_open = router__iter_open,
    .iter_next = router__iter_next,
    .iter_close = router__iter_close,
    .commit = router__commit,
    .stats = router__stats,
    .last_error = router__last_error,
    .admin_split = router__admin_split,
    .prepare = router__prepare,
    .end_txn = router__end_txn,
    .resolve = router__resolve,
    .lock = router__lock,
    .heartbeat = router__heartbeat,
    .refresh = router__refresh,
    .get_stale = router__get_stale,
    .iter_open_stale = router__iter_open_stale,
    .admin_merge = router__admin_merge,
    .gc_txn = router__gc_txn,
    .describe = router__describe_kv,
    .admin_split_txn = router__admin_split_txn,
    .describe_below = router__describe_below_kv,
    .admin_merge_txn = router__admin_merge_txn,
    .get_uncertain = router__get_uncertain,
    .iter_open_uncertain = router__iter_open_uncertain,
    .change_replicas_txn = router__change_replicas_txn,
};

/* ---- public ------------------------------------------------------------------- */

int range_router_new(const range_router_config *config, range_router **out) {
    if (config == NULL || out == NULL || config->transport == NULL || config->clock == NULL ||
        config->deadline_ms < 0 || config->rpc_timeout_ms < 0)
        return RANGE_ERR_INVALID;
    *out = NULL;
    range_router *r = base_calloc(1, sizeof(*r)); /* owner: caller, range_router_free */
    if (r == NULL) return RANGE_ERR_NOMEM;
    r->kv.ops = &router__ops;
    r->config = *config;
    if (r->config.deadline_ms == 0) r->config.deadline_ms = ROUTER__DEADLINE_MS_DEFAULT;
    if (r->config.rpc_timeout_ms == 0) r->config.rpc_timeout_ms = ROUTER__RPC_TIMEOUT_MS_DEFAULT;
    r->prng = config->random_seed;
    if (r->prng == 0 && getrandom(&r->prng, sizeof(r->prng), 0) != (ssize_t)sizeof(r->prng))
        r->prng = (uint64_t)base_monotonic_ns() ^ (uint64_t)(uintptr_t)r;
    /* the seed scrambled once: seeds a multiple of splitmix64's step apart
    ** (the simulator's per-incarnation seeds were) gave one stream shifted
    ** by a draw, and a restarted router reused its merge ids (seed 31270) */
    r->prng = router__mix(r->prng);
    if (pthread_mutex_init(&r->mu, NULL) != 0) goto fail_free;
    if (pthread_mutex_init(&r->pool.mu, NULL) != 0) goto fail_mu;
    if (pthread_cond_init(&r->pool.cv, NULL) != 0) goto fail_pool_mu;
    *out = r;
    return RANGE_OK;
fail_pool_mu:
    pthread_mutex_destroy(&r->pool.mu);
fail_mu:
    pthread_mutex_destroy(&r->mu);
fail_free:
    base_free(r);
    return RANGE_ERR_NOMEM;
}

void range_router_shutdown(range_router *r, int64_t grace_ms) {
    if (r == NULL) return;
    int64_t at = base_monotonic_ns() + (grace_ms > 0 ? grace_ms : 0) * 1000000;
    int64_t cur = atomic_load(&r->stop_ns);
    while ((cur == 0 || at < cur) && !atomic_compare_exchange_weak(&r->stop_ns, &cur, at)) {
    }
}

void range_router_free(range_router *r) {
    if (r == NULL) return;
    router__pool_stop(r);
    for (size_t i = 0; i < r->n_entries; i++) range_descriptor_free(&r->entries[i].desc);
    base_free(r->entries);
    pthread_cond_destroy(&r->pool.cv);
    pthread_mutex_destroy(&r->pool.mu);
    pthread_mutex_destroy(&r->mu);
    base_free(r);
}

range_kv *range_router_kv(range_router *r) { return &r->kv; }

int range_router_update_descriptor(range_router *r, const range_descriptor *d) {
    if (d == NULL || d->range_id == 0 || d->n_replicas > RANGE_REPLICAS_MAX ||
        (d->end_len > 0 &&
         range__key_cmp(d->start_key, d->start_len, d->end_key, d->end_len) >= 0))
        return RANGE_ERR_INVALID;
    bool installed = false;
    pthread_mutex_lock(&r->mu);
    int rc = router__install_locked(r, d, &installed);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int range_router_snapshot(range_router *r, range_descriptor **descs, uint64_t **leaseholders,
                          size_t *n) {
    *descs = NULL;
    *leaseholders = NULL;
    *n = 0;
    int rc = RANGE_OK;
    pthread_mutex_lock(&r->mu);
    size_t count = r->n_entries;
    range_descriptor *d = base_calloc(count ? count : 1, sizeof(*d)); /* owner: caller */
    uint64_t *l = base_calloc(count ? count : 1, sizeof(*l));         /* owner: caller */
    if (d == NULL || l == NULL) {
        rc = RANGE_ERR_NOMEM;
        goto unlock;
    }
    for (size_t i = 0; i < count; i++) {
        rc = range_descriptor_copy(&d[i], &r->entries[i].desc);
        if (rc != RANGE_OK) {
            for (size_t j = 0; j < i; j++) range_descriptor_free(&d[j]);
            goto unlock;
        }
        l[i] = r->entries[i].leaseholder;
    }
unlock:
    pthread_mutex_unlock(&r->mu);
    if (rc != RANGE_OK) {
        base_free(d);
        base_free(l);
        return rc;
    }
    *descs = d;
    *leaseholders = l;
    *n = count;
    return RANGE_OK;
}

void range_router_get_stats(range_router *r, range_router_stats *out) {
    pthread_mutex_lock(&r->mu);
    *out = r->stats;
    pthread_mutex_unlock(&r->mu);
}
