/*
** range/txnwait_int.h: the transaction wait queue at a range that holds
** transaction records (issue 5 "Conflicts", docs/locking.md; CockroachDB's
** txnwait.Queue, simplified). Internal to range/; a pure structure like the
** lock table: no clock (time comes in as int64 ns), no I/O, no thread, no
** lock; server.c will own one per range and call it under its mutex.
**
** A PUSHER is a transaction (or a non-transactional reader, id 0) blocked by
** a lock or intent of the PUSHEE; once its push delay passed it pushes the
** pushee at the range of the pushee's record. push() decides at once when
** it can:
**   - the record is COMMITTED or ABORTED: FINAL (resolve the intent, retry);
**   - its heartbeat is older than the expiry: ABORT_PUSHEE (EXPIRED);
**   - an ABORT push with a higher priority than the pushee's: ABORT_PUSHEE
**     (PRIORITY);
**   - a deadlock (below) whose victim is the pusher: DEADLOCK, or the
**     pushee: ABORT_PUSHEE (DEADLOCK);
** and otherwise QUEUES the pusher until the record changes (update_record
** gives FINAL events) or the caller gives up (cancel). ABORT_PUSHEE means:
** the caller writes ABORTED into the record (conditionally, through Raft),
** then reports it with update_record, which ends every waiter on it.
**
** Distributed deadlock detection (the CockroachDB way). Every queued pusher
** P is due, every query interval, to ask the queue at ITS OWN record's range
** for the transactions that wait on P, transitively: dependents(P) there
** answers the waits-for edges (X -> P for each X queued on P, plus the edges
** each such X last reported). P hands that set to refresh(). If the pushee Q
** appears in it as a waiter, Q waits for P, which waits for Q: a cycle. The
** VICTIM is chosen the same way by every member who sees the cycle: the
** lowest priority, then the highest id; the cycle (victim first, each member
** waiting for the next) is returned so the 40001 can name it. As edges
** travel one hop per refresh, a cycle of k transactions is seen within
** about k query intervals.
**
** Invariants (range__txnwait_check):
**   - a pushee entry exists only while pushers wait on it, and holds the
**     last record seen for it (never COMMITTED or ABORTED: a final record
**     ends its waiters);
**   - a waiting pusher is on exactly one pushee's list; a finished one has
**     an event pending;
**   - BOUNDED: at most pushees_max pushees, pushers_per_txn_max pushers per
**     pushee, pushers_max pushers (waiting or with an event pending), and
**     deps_max edges per dependents set (a longer set is cut: a cycle beyond
**     it is not seen, and the waits stay bounded by the caller's timeout).
**     Past a bound a push is refused with RANGE_ERR_BUSY, nothing changed.
**   - a call that fails changed nothing; update_record, cancel and clear
**     never allocate.
** Stale edges (a dependent that stopped waiting since it reported) can make
** a cycle that has just dissolved be seen: a spurious abort, never a missed
** commit; the record decides.
*/
#ifndef MERIDIAN_RANGE_TXNWAIT_INT_H
#define MERIDIAN_RANGE_TXNWAIT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "range/range.h"

/* Defaults per range (a config field 0 takes these). */
#define RANGE_TXNWAIT_PUSHEES_MAX 1024
#define RANGE_TXNWAIT_PUSHERS_PER_TXN_MAX 256
#define RANGE_TXNWAIT_PUSHERS_MAX 4096
#define RANGE_TXNWAIT_DEPS_MAX 64 /* also the hard ceiling of deps_max */
#define RANGE_TXNWAIT_CYCLE_MAX (RANGE_TXNWAIT_DEPS_MAX + 1)
#define RANGE_TXNWAIT_EXPIRY_NS ((int64_t)RANGE_TXN_RECORD_EXPIRY_MS * 1000 * 1000)
#define RANGE_TXNWAIT_QUERY_INTERVAL_NS (50 * 1000 * 1000) /* 50 ms */

typedef struct range__txnwait range__txnwait;

typedef struct range__txnwait_config {
    size_t pushees_max;
    size_t pushers_per_txn_max;
    size_t pushers_max;
    size_t deps_max;           /* <= RANGE_TXNWAIT_DEPS_MAX */
    int64_t expiry_ns;         /* a record not heartbeated for longer may be aborted */
    int64_t query_interval_ns; /* how often a queued pusher refreshes its dependents */
} range__txnwait_config;

/* The pushee's record as the caller read it. A missing record (an intent
** whose coordinator never wrote one) is passed as PENDING with the intent's
** wall time as heartbeat_ns, so it expires like an abandoned one. */
typedef struct range__txnwait_record {
    uint64_t txn_id;        /* != 0 */
    int64_t priority;
    range_txn_status status;
    int64_t heartbeat_ns;   /* on the now_ns clock */
} range__txnwait_record;

typedef enum range__txnwait_push_type {
    RANGE_TXNWAIT_PUSH_ABORT = 1, /* a lock request: abort a lower-priority pushee */
    RANGE_TXNWAIT_PUSH_WAIT = 2,  /* a reader: wait for the intent's outcome
                                     (expiry and deadlocks still abort) */
} range__txnwait_push_type;

/* A waits-for edge: `waiter` waits for `holder`. */
typedef struct range__txnwait_edge {
    uint64_t waiter;
    int64_t waiter_priority;
    uint64_t holder;
    int64_t holder_priority;
} range__txnwait_edge;

typedef struct range__txnwait_pusher {
    uint64_t id; /* 0: non-transactional (never in a cycle; deps ignored) */
    int64_t priority;
    range__txnwait_push_type type;
    const range__txnwait_edge *deps; /* who waits on the pusher (borrowed, copied) */
    size_t n_deps;
} range__txnwait_pusher;

typedef enum range__txnwait_outcome {
    RANGE_TXNWAIT_FINAL = 1,        /* the record is final: status */
    RANGE_TXNWAIT_ABORT_PUSHEE = 2, /* abort the pushee's record (reason), then update_record */
    RANGE_TXNWAIT_QUEUED = 3,       /* waiting: waiter_id, query_due_ns */
    RANGE_TXNWAIT_DEADLOCK = 4,     /* the pusher is the cycle's victim: abort it (40001) */
} range__txnwait_outcome;

typedef enum range__txnwait_reason {
    RANGE_TXNWAIT_REASON_NONE = 0,
    RANGE_TXNWAIT_REASON_EXPIRED = 1,
    RANGE_TXNWAIT_REASON_PRIORITY = 2,
    RANGE_TXNWAIT_REASON_DEADLOCK = 3,
} range__txnwait_reason;

typedef struct range__txnwait_result {
    range__txnwait_outcome outcome;
    range__txnwait_reason reason;  /* ABORT_PUSHEE, DEADLOCK */
    range_txn_status status;       /* FINAL */
    uint64_t waiter_id;            /* QUEUED (also after ABORT_PUSHEE from refresh) */
    int64_t query_due_ns;          /* QUEUED */
    /* a cycle was seen (any outcome but FINAL): victim first, each member
    ** waiting for the next and the last for the first */
    uint64_t cycle[RANGE_TXNWAIT_CYCLE_MAX];
    size_t cycle_len;              /* 0: none */
} range__txnwait_result;

/* An empty queue. cfg NULL = every default. owner of *out: caller,
** range__txnwait_free. RANGE_OK, RANGE_ERR_NOMEM, RANGE_ERR_INVALID
** (deps_max above RANGE_TXNWAIT_DEPS_MAX). */
int range__txnwait_new(const range__txnwait_config *cfg, range__txnwait **out);
void range__txnwait_free(range__txnwait *tw);

/* pusher pushes record->txn_id (see the top). The record also refreshes the
** queue's copy, which it merges with what the queue saw before (the later
** heartbeat; a final status is never undone) and which decides; a final one
** ends the waiters already queued (events).
** Errors (nothing changed but that refresh): RANGE_ERR_INVALID (pusher ==
** pushee, pushee id 0, bad type or status), RANGE_ERR_BUSY (a bound),
** RANGE_ERR_NOMEM. deps beyond deps_max are ignored. */
int range__txnwait_push(range__txnwait *tw, const range__txnwait_pusher *pusher,
                        const range__txnwait_record *record, int64_t now_ns,
                        range__txnwait_result *out);

/* The record of a txn changed (heartbeat, COMMITTED, ABORTED, priority);
** merged as in push. Final: every pusher waiting on it gets a FINAL event.
** Never fails. */
void range__txnwait_update_record(range__txnwait *tw, const range__txnwait_record *record);

/* A queued pusher's new dependents (what dependents() answered for its own
** txn at its record's range). Checks expiry and deadlock again: QUEUED,
** ABORT_PUSHEE (the waiter stays queued), DEADLOCK (the waiter is gone).
** RANGE_NOT_FOUND when not waiting (take its event), RANGE_ERR_NOMEM. */
int range__txnwait_refresh(range__txnwait *tw, uint64_t waiter_id,
                           const range__txnwait_edge *deps, size_t n_deps, int64_t now_ns,
                           range__txnwait_result *out);

/* Who waits on txn_id here, transitively as last reported: edges X -> txn_id
** of every transactional pusher queued on it, then each one's dependents,
** without duplicates, in queue order. At most cap written (set *truncated
** when more existed; may be NULL). Returns how many were written. */
size_t range__txnwait_dependents(const range__txnwait *tw, uint64_t txn_id,
                                 range__txnwait_edge *out, size_t cap, bool *truncated);

/* Withdraw a queued pusher (gave up, its own txn finished). RANGE_OK or
** RANGE_NOT_FOUND (not waiting: unknown, or finished with an event pending). */
int range__txnwait_cancel(range__txnwait *tw, uint64_t waiter_id);

/* Forget everything (the lease moved): every waiter gets ABANDONED. */
void range__txnwait_clear(range__txnwait *tw);

/* ---- events and due work -------------------------------------------------------- */

typedef enum range__txnwait_event_kind {
    RANGE_TXNWAIT_EV_FINAL = 1,     /* the pushee's record is final: status */
    RANGE_TXNWAIT_EV_ABANDONED = 2, /* the queue was cleared: push again */
} range__txnwait_event_kind;

typedef struct range__txnwait_event {
    range__txnwait_event_kind kind;
    uint64_t waiter_id, pusher_id, pushee_id;
    range_txn_status status; /* FINAL */
} range__txnwait_event;

/* true and *out filled (the waiter is then forgotten), or false: none. */
bool range__txnwait_next_event(range__txnwait *tw, range__txnwait_event *out);

typedef enum range__txnwait_due_kind {
    RANGE_TXNWAIT_DUE_QUERY = 1,   /* waiter: fetch your dependents, then refresh */
    RANGE_TXNWAIT_DUE_EXPIRED = 2, /* the pushee's heartbeat expired: waiter (its
                                      first pusher) aborts it, then update_record */
} range__txnwait_due_kind;

typedef struct range__txnwait_due {
    range__txnwait_due_kind kind;
    uint64_t waiter_id, pusher_id, pushee_id;
} range__txnwait_due;

/* Work due at now_ns not yet reported (a query once per interval per
** waiter, an expiry once per heartbeat per pushee), in pushee id order then
** queue order, expiry first: at most cap written, each marked reported.
** Returns how many. */
size_t range__txnwait_due_work(range__txnwait *tw, int64_t now_ns, range__txnwait_due *out,
                               size_t cap);
/* When the next unreported work falls due, or INT64_MAX. */
int64_t range__txnwait_next_due(const range__txnwait *tw);

/* ---- inspection ------------------------------------------------------------------ */

typedef struct range__txnwait_waiter_view {
    uint64_t waiter_id;
    uint64_t pusher_id;
    int64_t pusher_priority;
    range__txnwait_push_type type;
    size_t n_deps;
    int64_t queued_ns, query_due_ns;
} range__txnwait_waiter_view;

/* pushee() for every pushee in id order, then waiter() for its pushers in
** queue order. Either may be NULL. Pointers live for the call. */
typedef struct range__txnwait_visitor {
    void (*pushee)(void *ctx, const range__txnwait_record *record, size_t n_waiters);
    void (*waiter)(void *ctx, const range__txnwait_waiter_view *w);
    void *ctx;
} range__txnwait_visitor;
void range__txnwait_visit(const range__txnwait *tw, const range__txnwait_visitor *v);

typedef struct range__txnwait_stats {
    size_t pushees;
    size_t waiters; /* waiting, plus finished with an event pending */
    uint64_t busy;  /* pushes refused by a bound */
    uint64_t deadlocks; /* cycles seen */
} range__txnwait_stats;
void range__txnwait_get_stats(const range__txnwait *tw, range__txnwait_stats *out);

bool range__txnwait_check(const range__txnwait *tw);

#endif
