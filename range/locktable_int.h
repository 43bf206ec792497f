/*
** range/locktable_int.h: the lock table of a range's leaseholder (issue 5
** "Conflicts", docs/locking.md; the CockroachDB design, simplified). Internal
** to range/; a pure structure: no clock (time comes in as int64 ns), no I/O,
** no thread, no lock. server.c will own one per range and call it under its
** mutex. Results are values and events the caller acts on: whom to wake,
** whom to push.
**
** Model. Per key, at most one HOLDER: a transaction (id, epoch, priority)
** holding an exclusive lock that is either UNREPLICATED (taken at statement
** time by UPDATE / DELETE / SELECT FOR UPDATE, in this leaseholder's memory
** only, lost on a lease change) or REPLICATED (a two-phase commit's intent
** at a timestamp, durable in the range). Behind the holder, a FIFO queue of
** LOCK REQUESTS (writers and lockers) and a set of waiting READERS: a
** non-locking read at read_ts waits only for a replicated holder of another
** transaction at ts <= read_ts, never for an unreplicated lock (commit
** validation keeps serializability; locks only reduce aborts).
**
** When the holder goes (release, release_all), the head lock request is
** granted, then every queued request of the same transaction (re-entrant),
** then every reader the new holder does not block; whoever still waits is
** told its new holder (a NEW_HOLDER event, with a fresh push-due time).
** Each waiter has a PUSH-DUE time (queued at + push delay): after it the
** caller pushes the holder's transaction record (range/txnwait_int.h); the
** table only says whom.
**
** Invariants (checked by range__locktable_check, and after every step of
** the randomized test in tests/range/test_locktable.c):
**   - ONE HOLDER. A key has at most one holder; a key entry exists only while
**     it has a holder (a key without one has no waiters: they were granted
**     or released when the holder went).
**   - EVERY WAITER IS BLOCKED. A queued lock request's transaction is not the
**     holder's; a waiting reader's holder is replicated, of another
**     transaction, at a timestamp <= its read timestamp.
**   - FAIR. A lock request is granted only at the head of its key's queue,
**     or because its transaction already holds the key (re-entrant). Readers
**     never wait behind lock requests, only behind the holder.
**   - BOUNDED. At most keys_max keys holding at most key_bytes_max key bytes,
**     waiters_per_key_max waiters per key, waiters_max waiters (waiting, or
**     finished with an event not yet taken) in all. Past a bound a request
**     is refused with RANGE_ERR_BUSY and nothing changes; the table never
**     grows beyond them.
**   - NOTHING FAILS HALFWAY. A call that returns an error changed nothing.
**     Release, cancel and clear never allocate and never fail: the memory a
**     grant needs (the transaction's slot in the holder index) is reserved
**     when its request is queued.
** Ownership: the table copies key bytes and owns them; pointers it hands out
** in events or visits live until the next call that changes the table.
*/
#ifndef MERIDIAN_RANGE_LOCKTABLE_INT_H
#define MERIDIAN_RANGE_LOCKTABLE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "range/range.h"

/* Defaults per range (a config field 0 takes these). */
#define RANGE_LOCKTABLE_KEYS_MAX 10000
#define RANGE_LOCKTABLE_KEY_BYTES_MAX (1024u * 1024)
#define RANGE_LOCKTABLE_WAITERS_PER_KEY_MAX 256
#define RANGE_LOCKTABLE_WAITERS_MAX 4096
#define RANGE_LOCKTABLE_PUSH_DELAY_NS (50 * 1000 * 1000) /* 50 ms, CockroachDB's default */

typedef struct range__locktable range__locktable;

typedef struct range__locktable_config {
    size_t keys_max;            /* keys with a holder */
    size_t key_bytes_max;       /* their key bytes */
    size_t waiters_per_key_max; /* lock requests + readers queued on one key */
    size_t waiters_max;         /* every waiter of the table */
    int64_t push_delay_ns;      /* wait this long before pushing the holder;
                                   0 = the default, < 0 = push at once */
} range__locktable_config;

/* Who asks: a transaction as the lock table sees it (docs/txn.md). */
typedef struct range__lock_txn {
    uint64_t id;       /* != 0 */
    uint32_t epoch;    /* a restarted transaction's requests carry a higher one */
    int64_t priority;  /* higher wins a push (range_txn_meta.priority) */
} range__lock_txn;

typedef enum range__lock_durability {
    RANGE_LOCK_UNREPLICATED = 1, /* statement-time lock, leaseholder memory only */
    RANGE_LOCK_REPLICATED = 2,   /* an intent at ts, durable in the range */
} range__lock_durability;

typedef struct range__lock_holder {
    range__lock_txn txn;
    range__lock_durability durability;
    hlc_timestamp ts; /* REPLICATED: the intent's timestamp; else HLC_ZERO */
    int64_t since_ns; /* when this transaction became the holder (now_ns of that
                         call; kept across re-entrant acquisitions) */
} range__lock_holder;

typedef enum range__lock_wait_policy {
    RANGE_LOCK_WAIT_BLOCK = 0, /* queue behind the holder */
    RANGE_LOCK_WAIT_ERROR = 1, /* do not queue: answer CONFLICT (NOWAIT) */
} range__lock_wait_policy;

typedef enum range__lock_outcome {
    RANGE_LOCK_GRANTED = 1,  /* lock held (acquire) / read may proceed (read) */
    RANGE_LOCK_QUEUED = 2,   /* waiting: waiter_id, push_due_ns, holder */
    RANGE_LOCK_CONFLICT = 3, /* blocked and not queued (WAIT_ERROR, or a bound:
                                RANGE_ERR_BUSY): holder says by whom */
} range__lock_outcome;

typedef struct range__locktable_result {
    range__lock_outcome outcome;
    uint64_t waiter_id;        /* QUEUED: the handle (ids are never reused) */
    int64_t push_due_ns;       /* QUEUED: push the holder after this */
    range__lock_holder holder; /* QUEUED, CONFLICT: who blocks */
} range__locktable_result;

/* An empty table. cfg NULL = every default. owner of *out: caller,
** range__locktable_free. RANGE_OK or RANGE_ERR_NOMEM. */
int range__locktable_new(const range__locktable_config *cfg, range__locktable **out);
/* Frees everything, pending events included. */
void range__locktable_free(range__locktable *lt);

/* Acquire an exclusive lock on key for txn.
**   - no holder: GRANTED;
**   - txn already holds it: GRANTED (re-entrant): UNREPLICATED -> REPLICATED
**     upgrades (never the reverse), a replicated ts only rises within an
**     epoch, a higher epoch replaces the holder's epoch;
**   - another holder: QUEUED at the tail (push_due_ns = now_ns + push
**     delay), or CONFLICT with WAIT_ERROR.
** ts: the intent's timestamp for REPLICATED (ignored for UNREPLICATED).
** Errors (nothing changed): RANGE_ERR_INVALID (txn id 0, empty key, bad
** durability, an epoch below the holder's of the same txn),
** RANGE_ERR_BUSY (a bound: out->outcome CONFLICT, holder filled when there is
** one), RANGE_ERR_NOMEM. Key bytes are copied. */
int range__locktable_acquire(range__locktable *lt, const range__lock_txn *txn,
                             const uint8_t *key, size_t key_len,
                             range__lock_durability durability, hlc_timestamp ts,
                             range__lock_wait_policy policy, int64_t now_ns,
                             range__locktable_result *out);

/* A non-locking read of key at read_ts. txn NULL: a non-transactional read.
** GRANTED (read now) unless the holder is a replicated intent of another
** transaction at ts <= read_ts: then QUEUED (or CONFLICT with WAIT_ERROR).
** Errors as acquire. */
int range__locktable_read(range__locktable *lt, const range__lock_txn *txn,
                          const uint8_t *key, size_t key_len, hlc_timestamp read_ts,
                          range__lock_wait_policy policy, int64_t now_ns,
                          range__locktable_result *out);

/* An intent found in storage that the table did not know (after a lease
** change, or one laid before the table existed): it becomes a REPLICATED
** holder as if acquired.
**   - no holder: holder = (txn, REPLICATED, ts);
**   - txn holds it: upgraded as acquire would (an older epoch: unchanged);
**   - another transaction holds an UNREPLICATED lock: the intent wins (it
**     is durable; the lock was only advisory): *replaced (may be NULL) gets
**     the dropped holder's txn, its waiters now wait on txn (events);
**   - another transaction's REPLICATED intent: RANGE_ERR_CONFLICT, nothing
**     changes (two intents on one key cannot both be current).
** RANGE_OK, RANGE_ERR_INVALID, RANGE_ERR_BUSY, RANGE_ERR_NOMEM, CONFLICT. */
int range__locktable_add_discovered(range__locktable *lt, const range__lock_txn *txn,
                                    const uint8_t *key, size_t key_len, hlc_timestamp ts,
                                    int64_t now_ns, range__lock_txn *replaced);

/* Release txn's lock on key (an intent resolved, a savepoint rolled back).
** RANGE_OK, or RANGE_NOT_FOUND when txn_id does not hold it. Grants and
** wakes waiters (events). Never fails otherwise. */
int range__locktable_release(range__locktable *lt, uint64_t txn_id, const uint8_t *key,
                             size_t key_len, int64_t now_ns);
/* Release every lock of txn_id (commit, abort, resolution). Returns how
** many. Never fails. */
size_t range__locktable_release_all(range__locktable *lt, uint64_t txn_id, int64_t now_ns);

/* Release txn_id's locks on the keys inside sp (range__span_contains): a
** RESOLVE of its span, both durabilities. Returns how many. Never fails. */
size_t range__locktable_release_span(range__locktable *lt, uint64_t txn_id, const range_span *sp,
                                     int64_t now_ns);

/* The first key inside sp (key order) held UNREPLICATED by a transaction
** other than txn_id: true with *key / *key_len (valid until the next call
** that changes the table) and *holder; false when none. Bounded by the keys
** in sp. (A write of txn_id there must not go ahead of that lock.) */
bool range__locktable_find_unreplicated(const range__locktable *lt, uint64_t txn_id,
                                        const range_span *sp, const uint8_t **key,
                                        size_t *key_len, range__lock_holder *holder);

/* The holder of key: true with *holder, false when the key is free. */
bool range__locktable_holder(const range__locktable *lt, const uint8_t *key, size_t key_len,
                             range__lock_holder *holder);
/* How many keys txn_id holds. */
size_t range__locktable_txn_keys(const range__locktable *lt, uint64_t txn_id);

/* Withdraw a waiting request (timeout, client gone). RANGE_OK, or
** RANGE_NOT_FOUND when the waiter is not waiting any more: unknown, or
** finished with an event the caller has not taken yet (take it: a GRANTED
** lock is held and must be used or released). Never wakes anyone. */
int range__locktable_cancel(range__locktable *lt, uint64_t waiter_id);

/* Forget everything (the lease moved away): every waiter gets ABANDONED
** (GRANTED events not yet taken become ABANDONED too: the lock is gone);
** unreplicated locks are lost, intents will be found again in storage. */
void range__locktable_clear(range__locktable *lt);

/* ---- events --------------------------------------------------------------------
** A waiter's fate, produced by release, release_all, add_discovered, a
** re-entrant acquire and clear; taken one at a time in the order produced.
** The caller takes them all after every call that changes the table. */
typedef enum range__lock_event_kind {
    RANGE_LOCK_EV_GRANTED = 1,    /* the lock request holds the lock now */
    RANGE_LOCK_EV_PROCEED = 2,    /* the reader may read now */
    RANGE_LOCK_EV_NEW_HOLDER = 3, /* still waiting, now on holder: push it after push_due_ns */
    RANGE_LOCK_EV_ABANDONED = 4,  /* the table was cleared: evaluate again */
} range__lock_event_kind;

typedef struct range__locktable_event {
    range__lock_event_kind kind;
    uint64_t waiter_id;
    bool read;                 /* the waiter is a reader */
    range__lock_txn txn;       /* the waiter's (id 0: non-transactional reader) */
    range__lock_holder holder; /* GRANTED: the lock now held; NEW_HOLDER: the blocker */
    int64_t push_due_ns;       /* NEW_HOLDER */
} range__locktable_event;

/* true and *out filled when an event was pending (a GRANTED / PROCEED /
** ABANDONED waiter is then forgotten); false when none. */
bool range__locktable_next_event(range__locktable *lt, range__locktable_event *out);

/* ---- pushes and the waits-for graph ------------------------------------------- */

typedef struct range__locktable_push {
    uint64_t waiter_id;
    bool read;                 /* a reader waiting for an intent */
    range__lock_txn pusher;    /* the waiter's transaction (id 0: non-transactional) */
    range__lock_holder pushee; /* the holder to push at its record */
} range__locktable_push;

/* Waiters whose push is due (push_due_ns <= now_ns) and not yet reported
** since they started waiting on their current holder, in waiter id order:
** at most cap written to out, each marked reported. Returns how many. */
size_t range__locktable_pushes_due(range__locktable *lt, int64_t now_ns,
                                   range__locktable_push *out, size_t cap);
/* The earliest push-due time not yet reported, or INT64_MAX. */
int64_t range__locktable_next_push_due(const range__locktable *lt);

/* Waits-for edges of the transactional waiters (non-transactional readers
** wait for nobody's lock and never close a cycle): waiter txn -> holder
** txn, in key order then queue order. At most cap written; returns how many
** there are (may exceed cap). */
typedef struct range__locktable_edge {
    uint64_t waiter_id;
    range__lock_txn waiter;
    range__lock_txn holder;
} range__locktable_edge;
size_t range__locktable_waits_for(const range__locktable *lt, range__locktable_edge *out,
                                  size_t cap);

/* ---- inspection ---------------------------------------------------------------- */

typedef struct range__locktable_waiter_view {
    uint64_t waiter_id;
    bool read;
    range__lock_txn txn;
    range__lock_durability durability; /* lock requests */
    hlc_timestamp ts;                  /* lock request: intent ts; reader: read ts */
    int64_t queued_ns, push_due_ns;
    bool push_reported;
} range__locktable_waiter_view;

/* Calls key() for every key in key order, then waiter() for its lock
** requests in queue order and then its readers in arrival order. Pointers
** live for the call. Either callback may be NULL. */
typedef struct range__locktable_visitor {
    void (*key)(void *ctx, const uint8_t *key, size_t key_len, const range__lock_holder *holder);
    void (*waiter)(void *ctx, const range__locktable_waiter_view *w);
    void *ctx;
} range__locktable_visitor;
void range__locktable_visit(const range__locktable *lt, const range__locktable_visitor *v);

/* A waiter's state: RANGE_OK (waiting; *out filled) or RANGE_NOT_FOUND. */
int range__locktable_waiter(const range__locktable *lt, uint64_t waiter_id,
                            range__locktable_waiter_view *out);

typedef struct range__locktable_stats {
    size_t keys, key_bytes;
    size_t waiters;      /* waiting, plus finished with an event pending */
    size_t txns;         /* transactions holding at least one key */
    uint64_t busy;       /* requests refused by a bound */
} range__locktable_stats;
void range__locktable_get_stats(const range__locktable *lt, range__locktable_stats *out);

/* Tests: every invariant above holds (and the indexes agree with the keys). */
bool range__locktable_check(const range__locktable *lt);

/* ---- the server's tables (range/server.c), for tests ------------------------------
** Keys held in the lock table of range_id on this server (0 when it has
** none or never served the range). */
typedef struct range_server range_server;
size_t range__server_lock_keys(range_server *s, uint64_t range_id);

#endif
