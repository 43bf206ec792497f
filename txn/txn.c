/*
** txn/txn.c: the transaction coordinator (single node today).
**
** A txn reads at read_ts (hlc_now at begin, after the key space's
** wait_visible), keeps its writes in a private write buffer, records what it
** read (point keys and scanned spans), and at commit hands writes + read
** spans to the key space's commit, which validates (backward, optimistic)
** and applies them at one commit timestamp. See
** docs/decisions/004-local-transactions.md.
**
** The key space is a range_kv (range/range.h): the view of a local
** range_store (opened here when txn_db_options.kv is NULL: single node), or a
** range_router (cluster). Every key-space call goes through its ops.
**
** Write buffer: a treap keyed by key bytes (memcmp order). A node's state is
** PUT (value) or DEL (tombstone); NONE only transiently (a node just inserted,
** or restored to "never written" by rollback_to, which then unlinks it).
** Iterators hold no node pointers: they re-seek by the last key returned, so
** they stay valid across writes and rollbacks.
** Delete-range entries are a list of spans; a key with no PUT/DEL node that a
** span covers reads as absent.
**
** Invariants:
**   - t->write_bytes = sum over non-NONE nodes of (key + value + overhead)
**     + delete span bytes; t->undo_bytes = value bytes held by the undo log;
**     a put that would take their sum past TXN_WRITE_SET_BYTES_MAX fails.
**   - the undo log is non-empty only while a savepoint exists; each entry
**     restores exactly one earlier state (node state/value, or one span push),
**     and entries are undone newest first.
**   - every failing call leaves the buffer as it was (allocate first, then
**     mutate).
**   - a txn's time comes only from the HLC (read_ts at begin; commit_ts from
**     range/), or, AS OF SYSTEM TIME (txn_options.as_of, docs/txn.md section
**     8), is a given past timestamp at or below the HLC's now: such a txn is
**     read-only (no locks, no refresh, no commit wait, nothing sent at
**     commit) and reads through the key space's stale reads when it has
**     them (any replica whose closed timestamp covers it may answer).
**   - COMMIT WAIT: a read-write txn_commit returns TXN_OK only after
**     physical_now - epsilon > commit_ts (or the TXN_COMMIT_WAIT_MAX_OFFSETS
**     cap, counted), so the commit is in the past on every live node's
**     clock when it is acknowledged (docs/clocks.md, section 5).
**
** Two-phase commit (docs/txn.md section 3), when the key space's commit
** answers RANGE_ERR_CROSS_RANGE (several ranges) or RANGE_ERR_TOO_LARGE
** (more than one command holds: the router prepares in chunks, docs/txn.md
** "Large transactions") and it has prepare: PREPARE every range,
** END_TXN(COMMITTED) at the anchor's range, then hand RESOLVE to the db's
** resolver threads. Invariants:
**   - success is returned only after END_TXN(COMMITTED) applied (or an
**     END_TXN(ABORTED) found the record COMMITTED);
**   - RESOLVE(ABORTED) is sent only when the txn can no longer commit: no
**     END_TXN(COMMITTED) was sent, or the record is known ABORTED;
**   - the resolver queue holds at most TXN__RESOLVE_QUEUE_MAX resolutions
**     (full: the session resolves inline); each is tried at most
**     TXN__RESOLVE_ATTEMPTS_MAX times, then left to readers (who push and
**     resolve intents they meet), never lost silently (logged, counted);
**   - GC_TXN of the record is sent only after every RESOLVE of the
**     resolution answered OK (no intent of the txn left: a missing record
**     with an intent left reads as abort-if-expired, docs/txn.md 6.1); an
**     abandoned resolution keeps its record.
**
** Statement-time locks (docs/txn.md section 5), when the key space has lock:
** in locking mode a read locks its keys before it returns them. Invariants:
**   - a key is added to t->locks BEFORE the lock request that may lock it,
**     so every key that may be locked is released at the txn's end (resolve
**     over the keys; the 1PC commit releases its range's itself);
**   - a txn reads at read_ts, and read_ts moves only through a refresh that
**     validated every read so far (recorded reads and the part of each open
**     scan already returned) on (read_ts, new_ts]; every open scan then
**     continues after its last row at new_ts (no row is read at two
**     timestamps without the span between being validated);
**   - UNCERTAINTY (docs/txn.md section 4): a txn that is not stale reads
**     with the limit read_ts(begin) + max_offset, fixed for its life; a read
**     answered RANGE_ERR_UNCERTAIN (another txn's committed version in
**     (read_ts, limit]) refreshes to just above that version (the same
**     refresh, without the read that met it) and reads again, at most
**     TXN__UNCERTAINTY_RESTARTS_MAX times per read; so a non-stale txn
**     records its reads even when read-only;
**   - a lock-holding txn has one cluster-unique id and one anchor (its first
**     locked key) for its whole life: locks, records, the 1PC commit's id
**     and a two-phase commit all use them;
**   - the heartbeat threads never send for a txn that is paused (its 1PC
**     commit in flight) or unregistered: pause and unregister wait for a
**     heartbeat in flight, so no record is created after the commit; at
**     most one heartbeat of a txn is in flight (its entry's in_flight).
*/
#define _GNU_SOURCE
#include "txn/txn.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "encoding/encoding.h"
#include "range/range.h"

#define TXN__NODE_OVERHEAD_BYTES 48
#define TXN__KEY_FORMAT_CHARS_MAX 200
#define TXN__UNCERTAINTY_RESTARTS_MAX 16 /* per txn; then 40001 */

typedef struct txn__resolver txn__resolver; /* "two-phase commit" below */
typedef struct txn__heart txn__heart;       /* "statement-time locks" below */
typedef struct txn__live txn__live;
struct txn_db;
static int resolver_start(struct txn_db *db);
static void resolver_stop(struct txn_db *db);
static int heart_start(struct txn_db *db);
static void heart_stop(struct txn_db *db);

struct txn_db {
    storage_engine *engine; /* borrowed; NULL when opened over a given kv */
    hlc_clock *clock;       /* borrowed */
    range_store *store;     /* owned; NULL when opened over a given kv */
    range_kv *kv;           /* the key space: store's view, or borrowed */
    atomic_uint_fast64_t next_txn_id;
    /* commit wait (txn_commit_with_info) and the clock gate of txn_begin */
    bool require_clock_bound;
    atomic_uint_fast64_t commit_waits, commit_wait_ns_total, commit_wait_ns_max;
    atomic_uint_fast64_t commit_waits_capped, clock_refusals;
    atomic_int_fast64_t commit_epsilon_ns_last;
    txn__resolver *resolver; /* owned; NULL when kv has no resolve (local store) */
    atomic_uint_fast64_t prng; /* ids and nonces of two-phase commits */
    atomic_uint_fast64_t distributed_commits, resolves, resolve_retries, resolves_abandoned;
    txn__heart *heart; /* owned; NULL when kv has no heartbeat (local store) */
    atomic_uint_fast64_t lock_calls, keys_locked, refreshes, refresh_failures;
    atomic_uint_fast64_t uncertainty_restarts;
    atomic_uint_fast64_t heartbeats, heartbeat_aborts;
    atomic_uint_fast64_t stale_txns; /* txn_options.as_of */
};

enum { TXN__NONE = 0, TXN__PUT = 1, TXN__DEL = 2 };

/* One buffered write. 40 bytes besides key and value, one allocation for
** a row written once (a COPY of a million rows: docs/decisions/011). */
typedef struct txn__node {
    struct txn__node *left, *right;
    uint8_t *value;     /* PUT: the value (NULL otherwise); owned, unless
                           value_inline: then it follows the key in this
                           node's own allocation */
    uint32_t priority;
    uint32_t key_len;   /* <= STORAGE_KEY_SIZE_MAX */
    uint32_t value_len; /* <= STORAGE_VALUE_SIZE_MAX */
    uint8_t state;
    bool value_inline;
    uint8_t key[]; /* flexible; an inline value follows */
} txn__node;

typedef struct txn__span {
    uint8_t *start; /* owned */
    size_t start_len;
    uint8_t *end; /* owned; NULL = open */
    size_t end_len;
} txn__span;

typedef struct txn__undo {
    txn__node *node; /* NULL: undo the last delete-span push */
    uint8_t prev_state;
    uint8_t *prev_value; /* owned by the entry, unless prev_inline */
    size_t prev_value_len;
    bool prev_inline; /* prev_value is the node's inline value: its bytes stay
                         in the node's allocation (inline room is written only
                         when the node is made), so undo needs no copy */
} txn__undo;

typedef struct txn__savepoint {
    uint32_t id;
    size_t undo_len;
} txn__savepoint;

/* The keys a txn locked (or tried to): an open-addressing set over an
** arena of key bytes. */
typedef struct txn__lockset {
    base_buf bytes;   /* key bytes, one after the other */
    size_t *offs;     /* per key: offset into bytes (owned) */
    size_t *lens;     /* per key: length (owned) */
    bool *held;       /* per key: a lock call granted it (owned); false: asked
                         for, outcome unknown (ask again, release at the end) */
    size_t n, cap;
    uint32_t *slots;  /* key index + 1, 0 empty (owned); slot_cap a power of two */
    size_t slot_cap;
    bool full;        /* a bound was hit: later keys are not locked */
} txn__lockset;

/* A recorded read: offsets into t->read_arena. */
typedef struct txn__read {
    size_t start_off, start_len;
    size_t end_off, end_len; /* end_len 0 and !point: open end */
    bool point;
} txn__read;

struct txn {
    txn_db *db;
    uint64_t id;
    hlc_timestamp read_ts;
    bool read_only;
    bool as_of;            /* begun at a fixed past timestamp (txn_options.as_of) */
    bool stale;            /* as_of, and the key space has stale reads: reads go
                              through get_stale / iter_open_stale */
    bool aborted;
    int abort_rc;          /* why: returned again by txn_commit */
    txn_error abort_error; /* the error that aborted it */
    txn__node *root;
    uint64_t prio_state;
    size_t node_count;
    size_t write_bytes;
    size_t undo_bytes; /* values held by the undo log (count toward the limit) */
    txn__span *spans;
    size_t span_count, span_cap;
    txn__undo *undo;
    size_t undo_len, undo_cap;
    txn__savepoint *savepoints;
    size_t savepoint_count, savepoint_cap;
    uint32_t next_savepoint_id;
    txn__read *reads;
    size_t read_count, read_cap;
    int uncertainty_restarts; /* <= TXN__UNCERTAINTY_RESTARTS_MAX */
    bool reads_overflowed; /* a read was not recorded: cannot commit writes */
    base_buf read_arena;
    /* the clock uncertainty limit (HLC_ZERO: none: stale, or a key space
    ** without uncertain reads); never moves with read_ts */
    hlc_timestamp uncertainty_limit;
    /* OBSERVED TIMESTAMPS (docs/txn.md 4.1): each node's clock reading at
    ** our first read there, filled by the router from the answers; kept
    ** when read_ts moves (they bound what was written before we began) */
    range_observed observed;
    txn_iter *iters; /* open iterators (doubly linked) */
    txn_commit_info *commit_info; /* borrowed, may be NULL: txn_commit_with_info's */
    /* statement-time locks */
    bool locking;        /* txn_set_locking */
    txn__lockset locks;  /* every key lock was asked for */
    bool has_meta;       /* meta is set (the first lock) */
    range_txn_meta meta; /* cluster-unique id; anchor points into anchor_buf */
    base_buf anchor_buf;
    txn__live *live;     /* registered with the heartbeat threads (owner: the
                            db's registry), NULL when not */
};

struct txn_iter {
    txn *t; /* NULL once detached */
    txn_iter *prev, *next;
    const range_kv_ops *ops; /* of inner: the iterator outlives its txn */
    range_kv_iter *inner;
    bool reverse;
    base_buf start, end;
    bool open_end;
    /* storage head */
    bool need_advance, head_valid, inner_done;
    const uint8_t *hk, *hv;
    size_t hklen, hvlen;
    /* progress */
    base_buf last;
    bool have_last, exhausted, recorded;
    base_buf out_value;
    /* the read timestamp moved (a refresh): reopen inner after last */
    bool stale;
    /* locking scans: rows read ahead and locked before they are returned */
    bool locking;
    bool inner_eof;   /* inner returned its end into the batch */
    base_buf batch;   /* the batch's key and value bytes */
    size_t *batch_offs; /* per row: key off, key len, value off, value len (owned) */
    size_t batch_n, batch_cap, batch_next;
    size_t batch_rows; /* rows to read ahead next (doubles up to the max) */
    /* inner was opened with the txn's uncertainty limit: its
    ** RANGE_ERR_UNCERTAIN answer lands here (owned, range_conflict_free) */
    range_conflict uncertain;
};

/* ---- errors ----------------------------------------------------------------- */

static void err_setf(txn_error *err, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err_setf(txn_error *err, const char *sqlstate, const char *fmt, ...) {
    if (err == NULL) return;
    base_strlcpy(err->sqlstate, sqlstate, sizeof(err->sqlstate));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

static const char *rc_sqlstate(int rc) {
    switch (rc) {
    case TXN_ERR_NOMEM: return "53200";
    case TXN_ERR_IO: return "58030";
    case TXN_ERR_RETRY: return "40001";
    case TXN_ERR_READ_ONLY: return "25006";
    case TXN_ERR_DONE: return "25P01";
    case TXN_ERR_INVALID: return "22023";
    case TXN_ERR_UNAVAILABLE: return "57P03";
    case TXN_ERR_LIMIT: return "54000";
    case TXN_ERR_AMBIGUOUS: return "40003";
    case TXN_ERR_UNSUPPORTED: return "0A000";
    case TXN_ERR_FUTURE: return "22008";
    case TXN_ERR_GC_THRESHOLD: return "72000";
    default: return "XX000";
    }
}

static const char *rc_message(int rc) {
    switch (rc) {
    case TXN_ERR_NOMEM: return "out of memory in the transaction layer";
    case TXN_ERR_IO: return "storage I/O error; the transaction is aborted";
    case TXN_ERR_RETRY: return "restart transaction: serialization failure";
    case TXN_ERR_READ_ONLY: return "cannot write in a read-only transaction";
    case TXN_ERR_DONE: return "the transaction is already finished or aborted";
    case TXN_ERR_INVALID: return "invalid argument to the transaction layer";
    case TXN_ERR_UNAVAILABLE: return "the node cannot serve this transaction now";
    case TXN_ERR_LIMIT: return "transaction size limit exceeded";
    case TXN_ERR_AMBIGUOUS:
        return "the outcome of the commit is unknown: it may or may not have applied";
    case TXN_ERR_UNSUPPORTED:
        return "not supported by this node's key space";
    case TXN_ERR_FUTURE:
        return "AS OF SYSTEM TIME: the timestamp is in the future";
    case TXN_ERR_GC_THRESHOLD:
        return "the read timestamp must be after the range's GC threshold: versions older "
               "than gc_ttl_seconds were garbage collected";
    default: return "internal error in the transaction layer";
    }
}

void txn_error_set(txn_error *err, int rc) {
    if (err == NULL || rc >= 0 || err->sqlstate[0] != '\0') return;
    err_setf(err, rc_sqlstate(rc), "%s", rc_message(rc));
}

static int fail(txn_error *err, int rc) {
    err_setf(err, rc_sqlstate(rc), "%s", rc_message(rc));
    return rc;
}

static int range_to_txn_rc(int rc) {
    switch (rc) {
    case RANGE_OK: return TXN_OK;
    case RANGE_NOT_FOUND: return TXN_NOT_FOUND;
    case RANGE_ERR_NOMEM: return TXN_ERR_NOMEM;
    case RANGE_ERR_CONFLICT: return TXN_ERR_RETRY;
    case RANGE_ERR_INVALID: return TXN_ERR_INVALID;
    case RANGE_ERR_UNAVAILABLE: return TXN_ERR_UNAVAILABLE;
    case RANGE_ERR_TOO_LARGE: return TXN_ERR_LIMIT;
    case RANGE_ERR_AMBIGUOUS: return TXN_ERR_AMBIGUOUS;
    case RANGE_ERR_CROSS_RANGE: return TXN_ERR_UNSUPPORTED;
    case RANGE_ERR_PUSHED: return TXN_ERR_RETRY;
    case RANGE_ERR_INTENT: return TXN_ERR_RETRY;  /* blocked by another txn's intent */
    case RANGE_ERR_ABORTED: return TXN_ERR_RETRY; /* our record was aborted */
    case RANGE_ERR_MERGING: return TXN_ERR_RETRY; /* a merge outlasted the deadline */
    case RANGE_ERR_UNCERTAIN: return TXN_ERR_RETRY; /* handled by the reads; never here */
    case RANGE_ERR_GC_THRESHOLD: return TXN_ERR_GC_THRESHOLD; /* same again at that ts */
    case RANGE_ERR_BUSY: return TXN_ERR_UNAVAILABLE;
    case RANGE_ERR_NOT_LEADER: return TXN_ERR_UNAVAILABLE;
    default: return TXN_ERR_IO;
    }
}

/* Fail with a range error mapped to a txn code. The cluster's errors carry
** the key space's detail (which range, why); the local store's keep today's
** fixed messages. */
static int kv_fail(range_kv *kv, txn_error *err, int range_rc) {
    int rc = range_to_txn_rc(range_rc);
    char detail[256];
    bool cluster_error = range_rc == RANGE_ERR_AMBIGUOUS || range_rc == RANGE_ERR_CROSS_RANGE ||
                         range_rc == RANGE_ERR_UNAVAILABLE || range_rc == RANGE_ERR_BUSY ||
                         range_rc == RANGE_ERR_NOT_LEADER || range_rc == RANGE_ERR_PUSHED ||
                         range_rc == RANGE_ERR_INTENT || range_rc == RANGE_ERR_MERGING;
    if (!cluster_error || kv->ops->last_error == NULL ||
        !kv->ops->last_error(kv, detail, sizeof(detail)))
        return fail(err, rc);
    switch (rc) {
    case TXN_ERR_AMBIGUOUS:
        err_setf(err, "40003",
                 "the outcome of the commit is unknown: it may or may not have applied (%s)",
                 detail);
        break;
    case TXN_ERR_RETRY:
        err_setf(err, "40001", "restart transaction: %s (SQLSTATE 40001)", detail);
        break;
    case TXN_ERR_UNSUPPORTED:
        err_setf(err, "0A000",
                 "transaction touches several ranges (%s): this key space has no two-phase "
                 "commit",
                 detail);
        break;
    default:
        err_setf(err, rc_sqlstate(rc), "the node cannot serve this transaction now: %s", detail);
        break;
    }
    return rc;
}

/* Printable key: enc_key_format, or hex when the bytes are not a row key. */
static void format_key(const uint8_t *key, size_t len, char *out, size_t out_size) {
    base_buf b = {0};
    if (enc_key_format(key, len, &b) == ENC_OK && base_buf_append_byte(&b, 0) == 0) {
        base_strlcpy(out, (const char *)b.data, out_size);
    } else {
        size_t pos = 0;
        pos += (size_t)snprintf(out, out_size, "0x");
        for (size_t i = 0; i < len && pos + 3 < out_size; i++)
            pos += (size_t)snprintf(out + pos, out_size - pos, "%02x", key[i]);
    }
    base_buf_free(&b);
    if (strlen(out) + 1 >= out_size && out_size > 4) memcpy(out + out_size - 4, "...", 4);
}

/* ---- key helpers ------------------------------------------------------------ */

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0) return c;
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

static int check_key(const uint8_t *key, size_t key_len, txn_error *err) {
    if (key == NULL || key_len == 0) {
        err_setf(err, "22023", "invalid key: empty");
        return TXN_ERR_INVALID;
    }
    if (key_len > STORAGE_KEY_SIZE_MAX) {
        err_setf(err, "54000", "key of %zu bytes exceeds the maximum of %d bytes", key_len,
                 STORAGE_KEY_SIZE_MAX);
        return TXN_ERR_INVALID;
    }
    return TXN_OK;
}

static int check_usable(txn *t, txn_error *err) {
    if (t->aborted) {
        err_setf(err, "25P02", "current transaction is aborted (%s)", t->abort_error.message);
        return TXN_ERR_DONE;
    }
    return TXN_OK;
}

/* The txn can no longer commit: remember why. */
static void mark_aborted(txn *t, int rc, const char *sqlstate, const char *message) {
    if (t->aborted) return;
    t->aborted = true;
    t->abort_rc = rc;
    base_strlcpy(t->abort_error.sqlstate, sqlstate, sizeof(t->abort_error.sqlstate));
    base_strlcpy(t->abort_error.message, message, sizeof(t->abort_error.message));
}

static int check_writable(txn *t, txn_error *err) {
    int rc = check_usable(t, err);
    if (rc != TXN_OK) return rc;
    if (t->read_only) {
        if (t->as_of)
            err_setf(err, "25006", "cannot execute a write in an AS OF SYSTEM TIME transaction "
                                   "(it reads at a past timestamp and is read-only)");
        else
            err_setf(err, "25006", "cannot execute a write in a read-only transaction");
        return TXN_ERR_READ_ONLY;
    }
    return TXN_OK;
}

/* ---- write buffer (treap) -------------------------------------------------- */

static uint32_t next_priority(txn *t) {
    /* splitmix64: deterministic, well mixed */
    uint64_t z = (t->prio_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* Its value's memory goes (an inline value goes with the node). */
static void node_value_free(txn__node *n) {
    if (!n->value_inline) base_free(n->value);
    n->value = NULL;
    n->value_inline = false;
}

static txn__node *node_find(txn *t, const uint8_t *key, size_t key_len) {
    txn__node *n = t->root;
    while (n != NULL) {
        int c = key_cmp(key, key_len, n->key, n->key_len);
        if (c == 0) return n;
        n = c < 0 ? n->left : n->right;
    }
    return NULL;
}

/* First node with key > k (strict) or >= k; k NULL = the smallest. NONE
** nodes exist only transiently (see buffer_write), never between calls. */
static txn__node *node_after(txn *t, const uint8_t *k, size_t klen, bool strict) {
    txn__node *best = NULL;
    txn__node *n = t->root;
    while (n != NULL) {
        int c = k ? key_cmp(n->key, n->key_len, k, klen) : 1;
        if (c > 0 || (c == 0 && !strict)) {
            best = n;
            n = n->left;
        } else {
            n = n->right;
        }
    }
    return best;
}

/* Last node with key < k (strict) or <= k; k NULL = the largest. */
static txn__node *node_before(txn *t, const uint8_t *k, size_t klen, bool strict) {
    txn__node *best = NULL;
    txn__node *n = t->root;
    while (n != NULL) {
        int c = k ? key_cmp(n->key, n->key_len, k, klen) : -1;
        if (c < 0 || (c == 0 && !strict)) {
            best = n;
            n = n->right;
        } else {
            n = n->left;
        }
    }
    return best;
}

/* Join two treaps, every key of a below every key of b. Depth-bounded. */
static txn__node *treap_merge(txn__node *a, txn__node *b) {
    if (a == NULL) return b;
    if (b == NULL) return a;
    if (a->priority > b->priority) {
        a->right = treap_merge(a->right, b);
        return a;
    }
    b->left = treap_merge(a, b->left);
    return b;
}

/* Unlink the node with n's key (it must be in the tree). */
static txn__node *treap_remove(txn__node *root, const txn__node *n) {
    assert(root != NULL);
    int c = key_cmp(n->key, n->key_len, root->key, root->key_len);
    if (c < 0) {
        root->left = treap_remove(root->left, n);
    } else if (c > 0) {
        root->right = treap_remove(root->right, n);
    } else {
        assert(root == n);
        return treap_merge(root->left, root->right);
    }
    return root;
}

static void node_remove(txn *t, txn__node *n) {
    assert(n->state == TXN__NONE);
    t->root = treap_remove(t->root, n);
    t->node_count--;
    node_value_free(n);
    base_free(n);
}

static txn__node *treap_insert(txn__node *root, txn__node *nn) {
    if (root == NULL) return nn;
    if (key_cmp(nn->key, nn->key_len, root->key, root->key_len) < 0) {
        root->left = treap_insert(root->left, nn);
        if (root->left->priority > root->priority) {
            txn__node *l = root->left;
            root->left = l->right;
            l->right = root;
            return l;
        }
    } else {
        root->right = treap_insert(root->right, nn);
        if (root->right->priority > root->priority) {
            txn__node *r = root->right;
            root->right = r->left;
            r->left = root;
            return r;
        }
    }
    return root;
}

static void treap_free(txn__node *n) {
    /* depth is O(log n) expected; recursion is bounded by it */
    if (n == NULL) return;
    treap_free(n->left);
    treap_free(n->right);
    node_value_free(n);
    base_free(n);
}

static size_t node_bytes(uint8_t state, size_t key_len, size_t value_len) {
    if (state == TXN__NONE) return 0;
    return TXN__NODE_OVERHEAD_BYTES + key_len + (state == TXN__PUT ? value_len : 0);
}

static int undo_reserve_n(txn *t, size_t extra) {
    if (t->undo_len + extra <= t->undo_cap) return TXN_OK;
    size_t ncap = t->undo_cap ? t->undo_cap : 64;
    while (ncap < t->undo_len + extra) ncap *= 2;
    txn__undo *u = base_realloc(t->undo, ncap * sizeof(*u));
    if (u == NULL) return TXN_ERR_NOMEM;
    t->undo = u;
    t->undo_cap = ncap;
    return TXN_OK;
}

static int undo_reserve(txn *t) { return undo_reserve_n(t, 1); }

/* Set node state/value (value copied: into inline, room for value_len
** bytes in n's own allocation, when not NULL). Allocates first, then
** mutates. */
static int node_set(txn *t, txn__node *n, uint8_t state, const uint8_t *value, size_t value_len,
                    uint8_t *inline_room) {
    uint8_t *copy = NULL; /* owner: here until n or the undo entry takes it */
    bool copy_inline = state == TXN__PUT && inline_room != NULL;
    if (copy_inline) {
        copy = inline_room;
    } else if (state == TXN__PUT) {
        copy = base_malloc(value_len ? value_len : 1);
        if (copy == NULL) return TXN_ERR_NOMEM;
    }
    if (state == TXN__PUT && value_len) memcpy(copy, value, value_len);
    bool keep_undo = t->savepoint_count > 0;
    /* the undo entry takes the value (an inline one by reference), so a
    ** DEL allocates nothing once the undo log is reserved
    ** (mark_deleted_in_span relies on it) */
    if (keep_undo && undo_reserve(t) != TXN_OK) {
        if (!copy_inline) base_free(copy);
        return TXN_ERR_NOMEM;
    }
    t->write_bytes -= node_bytes(n->state, n->key_len, n->value_len);
    t->write_bytes += node_bytes(state, n->key_len, value_len);
    if (keep_undo) {
        txn__undo *u = &t->undo[t->undo_len++];
        u->node = n;
        u->prev_state = n->state;
        u->prev_value = n->value;
        u->prev_value_len = n->value_len;
        u->prev_inline = n->value_inline;
        t->undo_bytes += n->value_len;
        n->value = NULL; /* moved to the entry */
        n->value_inline = false;
    }
    node_value_free(n);
    n->state = state;
    n->value = copy;
    n->value_inline = copy_inline;
    n->value_len = state == TXN__PUT ? (uint32_t)value_len : 0;
    return TXN_OK;
}

static int buffer_write(txn *t, const uint8_t *key, size_t key_len, uint8_t state,
                        const uint8_t *value, size_t value_len, txn_error *err) {
    txn__node *n = node_find(t, key, key_len);
    size_t old = n ? node_bytes(n->state, n->key_len, n->value_len) : 0;
    size_t add = node_bytes(state, key_len, value_len);
    if (t->write_bytes + t->undo_bytes - old + add > TXN_WRITE_SET_BYTES_MAX) {
        err_setf(err, "54000",
                 "transaction write set exceeds %u bytes; split the work into smaller "
                 "transactions",
                 TXN_WRITE_SET_BYTES_MAX);
        return TXN_ERR_LIMIT;
    }
    bool inserted = false;
    uint8_t *inline_room = NULL; /* a new row's value lives in its node */
    if (n == NULL) {
        size_t room = state == TXN__PUT ? value_len : 0;
        n = base_calloc(1, sizeof(*n) + key_len + room);
        if (n == NULL) return fail(err, TXN_ERR_NOMEM);
        memcpy(n->key, key, key_len);
        n->key_len = (uint32_t)key_len;
        n->priority = next_priority(t);
        n->state = TXN__NONE;
        t->root = treap_insert(t->root, n);
        t->node_count++;
        inserted = true;
        if (state == TXN__PUT) inline_room = n->key + key_len;
    }
    int rc = node_set(t, n, state, value, value_len, inline_room);
    if (rc != TXN_OK) {
        if (inserted) node_remove(t, n);
        return fail(err, rc);
    }
    return TXN_OK;
}

static bool span_covers(const txn__span *sp, const uint8_t *key, size_t key_len) {
    if (key_cmp(key, key_len, sp->start, sp->start_len) < 0) return false;
    return sp->end == NULL || key_cmp(key, key_len, sp->end, sp->end_len) < 0;
}

static bool deleted_by_span(const txn *t, const uint8_t *key, size_t key_len) {
    for (size_t i = 0; i < t->span_count; i++)
        if (span_covers(&t->spans[i], key, key_len)) return true;
    return false;
}

static void span_free(txn__span *sp) {
    base_free(sp->start);
    base_free(sp->end);
}

/* ---- read set ------------------------------------------------------------- */

/* Record a read for validation at commit. Past the read-set limits the read
** is not recorded and the txn can no longer commit writes (txn_commit says
** so with 54000); it can still read, and commit if it wrote nothing. A
** read-only txn records nothing (it is never validated). */
static int record_read(txn *t, const uint8_t *start, size_t start_len, const uint8_t *end,
                       size_t end_len, bool point, txn_error *err) {
    /* a read-only txn records only for uncertainty refreshes */
    if ((t->read_only && hlc_is_zero(t->uncertainty_limit)) || t->reads_overflowed)
        return TXN_OK;
    if (point && t->read_count > 0) {
        /* a repeated point read of the same key adds nothing */
        const txn__read *r = &t->reads[t->read_count - 1];
        if (r->point && key_cmp(t->read_arena.data + r->start_off, r->start_len, start,
                                start_len) == 0)
            return TXN_OK;
    }
    if (t->read_count >= TXN_READ_SPANS_MAX ||
        t->read_arena.len + start_len + end_len > TXN_READ_SET_BYTES_MAX) {
        t->reads_overflowed = true;
        return TXN_OK;
    }
    if (t->read_count == t->read_cap) {
        size_t ncap = t->read_cap ? t->read_cap * 2 : 32;
        txn__read *r = base_realloc(t->reads, ncap * sizeof(*r));
        if (r == NULL) return fail(err, TXN_ERR_NOMEM);
        t->reads = r;
        t->read_cap = ncap;
    }
    if (base_buf_reserve(&t->read_arena, start_len + end_len) != 0) return fail(err, TXN_ERR_NOMEM);
    txn__read *r = &t->reads[t->read_count];
    r->point = point;
    r->start_off = t->read_arena.len;
    r->start_len = start_len;
    base_buf_append(&t->read_arena, start, start_len); /* reserved: cannot fail */
    r->end_off = t->read_arena.len;
    r->end_len = point ? 0 : end_len;
    if (!point && end_len) base_buf_append(&t->read_arena, end, end_len);
    t->read_count++;
    return TXN_OK;
}

/* ---- db --------------------------------------------------------------------- */

/* The first single-range txn id of a db: the servers' idempotence record is
** keyed by (txn_id, nonce), and a restarted node whose router nonces come
** from a configured seed would repeat its pairs if ids restarted at 1 (a
** new commit answered from an old record: acknowledged, never applied). So
** the ids start at a point drawn from the db's random seed (getrandom, or
** the monotonic clock and an address when it fails), not at 1; below 2^63,
** so the ids that follow never wrap to 0. No clock is read here: opening a
** db keeps its simulated schedule (tests/txn/test_txn_sim.c). */
static uint64_t txn__first_id(uint64_t random) {
    uint64_t z = random + 0x6A09E667F3BCC909ull; /* apart from db_random's stream */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; /* splitmix64 finaliser */
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (z >> 1) | 1;
}

int txn_db_open(const txn_db_options *opts, txn_db **out) {
    if (opts == NULL || (opts->engine == NULL && opts->kv == NULL) || opts->clock == NULL ||
        out == NULL)
        return TXN_ERR_INVALID;
    *out = NULL;
    txn_db *db = base_calloc(1, sizeof(*db));
    if (db == NULL) return TXN_ERR_NOMEM;
    db->clock = opts->clock;
    db->require_clock_bound = opts->require_clock_bound;
    if (opts->kv != NULL) {
        db->kv = opts->kv;
    } else {
        db->engine = opts->engine;
        int rc = range_store_open(opts->engine, opts->clock, opts->sync_commits, &db->store);
        if (rc != RANGE_OK) {
            base_free(db);
            return range_to_txn_rc(rc);
        }
        db->kv = range_store_kv(db->store);
    }
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = (uint64_t)base_monotonic_ns() ^ (uint64_t)(uintptr_t)db;
    atomic_init(&db->prng, seed);
    atomic_init(&db->next_txn_id, txn__first_id(seed));
    if (db->kv->ops->resolve != NULL) {
        int rc = resolver_start(db); /* two-phase commits resolve in the background */
        if (rc != TXN_OK) {
            range_store_close(db->store);
            base_free(db);
            return rc;
        }
    }
    if (db->kv->ops->lock != NULL && db->kv->ops->heartbeat != NULL &&
        db->kv->ops->resolve != NULL) {
        int rc = heart_start(db); /* lock holders' records */
        if (rc != TXN_OK) {
            resolver_stop(db);
            range_store_close(db->store);
            base_free(db);
            return rc;
        }
    }
    *out = db;
    return TXN_OK;
}

void txn_db_close(txn_db *db) {
    if (db == NULL) return;
    heart_stop(db);    /* NULL-safe: none without locks */
    resolver_stop(db); /* NULL-safe: none without resolve */
    range_store_close(db->store); /* NULL-safe: none when kv was given */
    base_free(db);
}

void txn_db_get_stats(txn_db *db, txn_db_stats *out) {
    range_stats rs;
    memset(&rs, 0, sizeof(rs));
    db->kv->ops->stats(db->kv, &rs);
    out->commits = rs.commits;
    out->conflicts = rs.conflicts;
    out->visible_waits = rs.visible_waits;
    out->commit_waits = atomic_load(&db->commit_waits);
    out->commit_wait_ns_total = atomic_load(&db->commit_wait_ns_total);
    out->commit_wait_ns_max = atomic_load(&db->commit_wait_ns_max);
    out->commit_waits_capped = atomic_load(&db->commit_waits_capped);
    out->commit_epsilon_ns_last = atomic_load(&db->commit_epsilon_ns_last);
    out->clock_refusals = atomic_load(&db->clock_refusals);
    out->distributed_commits = atomic_load(&db->distributed_commits);
    out->resolves = atomic_load(&db->resolves);
    out->resolve_retries = atomic_load(&db->resolve_retries);
    out->resolves_abandoned = atomic_load(&db->resolves_abandoned);
    out->lock_calls = atomic_load(&db->lock_calls);
    out->keys_locked = atomic_load(&db->keys_locked);
    out->refreshes = atomic_load(&db->refreshes);
    out->refresh_failures = atomic_load(&db->refresh_failures);
    out->heartbeats = atomic_load(&db->heartbeats);
    out->heartbeat_aborts = atomic_load(&db->heartbeat_aborts);
    out->uncertainty_restarts = atomic_load(&db->uncertainty_restarts);
    out->stale_txns = atomic_load(&db->stale_txns);
    out->stale_reads = rs.stale_reads;
    out->stale_reads_local = rs.stale_local;
    out->stale_reads_fallback = rs.stale_fallbacks;
    out->follower_reads_served = rs.follower_reads;
}

hlc_timestamp txn_db_now(txn_db *db) { return hlc_now(db->clock); }

void txn_db_clock_explain(txn_db *db, hlc_epsilon_report *out) {
    hlc_epsilon_explain(db->clock, out);
}

/* ---- txn lifecycle -------------------------------------------------------- */

int txn_begin(txn_db *db, const txn_options *opts, txn **out) {
    if (db == NULL || out == NULL) return TXN_ERR_INVALID;
    *out = NULL;
    if (db->require_clock_bound && hlc_epsilon(db->clock, NULL) != HLC_EPSILON_OK) {
        /* no read timestamp from a clock we cannot bound (docs/clocks.md, 5) */
        atomic_fetch_add(&db->clock_refusals, 1);
        return TXN_ERR_UNAVAILABLE;
    }
    bool as_of = opts != NULL && !hlc_is_zero(opts->as_of);
    if (as_of) {
        /* a past timestamp only: a read above now could be written under */
        hlc_timestamp a = opts->as_of;
        if (a.wall_ns < 0 || a.logical < 0 || a.wall_ns >= HLC_WALL_LIMIT_NS)
            return TXN_ERR_INVALID;
        if (hlc_compare(a, hlc_now(db->clock)) > 0) return TXN_ERR_FUTURE;
    }
    txn *t = base_calloc(1, sizeof(*t));
    if (t == NULL) return TXN_ERR_NOMEM;
    t->db = db;
    t->id = atomic_fetch_add(&db->next_txn_id, 1);
    t->read_only = as_of || (opts ? opts->read_only : false);
    t->prio_state = t->id;
    t->next_savepoint_id = 1;
    t->read_ts = as_of ? opts->as_of : hlc_now(db->clock);
    t->as_of = as_of;
    if (!as_of && db->kv->ops->get_uncertain != NULL &&
        db->kv->ops->iter_open_uncertain != NULL) {
        /* a version up to max_offset above read_ts may have committed
        ** before we began, on a node whose clock is ahead */
        t->uncertainty_limit = hlc_add_ns(t->read_ts, hlc_max_offset_ns(db->clock));
        if (t->uncertainty_limit.wall_ns >= HLC_WALL_LIMIT_NS)
            t->uncertainty_limit = (hlc_timestamp){HLC_WALL_LIMIT_NS - 1, 0};
        if (hlc_compare(t->uncertainty_limit, t->read_ts) <= 0) t->uncertainty_limit = HLC_ZERO;
    }
    if (as_of) {
        /* a key space without followers reads locally anyway */
        t->stale = db->kv->ops->get_stale != NULL && db->kv->ops->iter_open_stale != NULL;
        atomic_fetch_add(&db->stale_txns, 1);
    }
    /* Commits that took a timestamp <= read_ts must be in storage before we
    ** read (docs/decisions/004: the pending-commit watermark). */
    int rc = db->kv->ops->wait_visible(db->kv, t->read_ts);
    if (rc != RANGE_OK) {
        base_free(t);
        return range_to_txn_rc(rc);
    }
    *out = t;
    return TXN_OK;
}

hlc_timestamp txn_read_timestamp(const txn *t) { return t->read_ts; }
uint64_t txn_id(const txn *t) { return t->id; }
bool txn_is_stale(const txn *t) { return t->as_of; }

static void iter_record(txn_iter *it);
static bool lock_capable(const txn *t);
static int lock_keys(txn *t, const range_span *keys, size_t n, hlc_timestamp *newest,
                     txn_error *err);
static int refresh_to(txn *t, hlc_timestamp new_ts, txn_error *err);
static void locks_release(txn *t, int status, hlc_timestamp commit_ts, bool skip_written,
                          bool end_record);
static void lockset_free(txn__lockset *ls);
static void live_unregister(txn_db *db, txn__live *e, bool *have_record);
static void live_pause(txn_db *db, txn__live *e, bool paused);
static bool live_aborted(txn *t, txn_error *err);

/* Reads of t carry its uncertainty limit while read_ts is below it. */
static bool uncertain_now(const txn *t) {
    return !t->stale && !hlc_is_zero(t->uncertainty_limit) &&
           hlc_compare(t->read_ts, t->uncertainty_limit) < 0;
}

/* A read of t met another transaction's committed version (u: key, ts) in
** its uncertainty window: it may have committed before t began, so t moves
** above it through a refresh of everything read so far (the caller leaves
** the read that met it out) and reads again. TXN_OK, or 40001 with t
** aborted, or another error. */
static int uncertainty_restart(txn *t, const range_conflict *u, txn_error *err) {
    char key[TXN__KEY_FORMAT_CHARS_MAX], theirs[64], mine[64], limit[64];
    format_key(u->key.data, u->key.len, key, sizeof(key));
    hlc_format(u->conflict_ts, theirs, sizeof(theirs));
    hlc_format(t->read_ts, mine, sizeof(mine));
    hlc_format(t->uncertainty_limit, limit, sizeof(limit));
    if (hlc_compare(u->conflict_ts, t->read_ts) <= 0 ||
        hlc_compare(u->conflict_ts, t->uncertainty_limit) > 0) {
        err_setf(err, "XX000", "uncertainty answer for key %s at %s outside the window (%s, %s]",
                 key, theirs, mine, limit);
        return TXN_ERR_IO; /* a peer's bug: nothing to move to */
    }
    char msg[sizeof(t->abort_error.message)];
    const char *head = "restart transaction: uncertainty: key %s has a value at %s, within the "
                       "clock uncertainty window of this transaction (read at %s, uncertain up "
                       "to %s)";
    int len = snprintf(msg, sizeof(msg), head, key, theirs, mine, limit);
    size_t at = len < 0 ? 0 : (size_t)len < sizeof(msg) ? (size_t)len : sizeof(msg) - 1;
    if (t->uncertainty_restarts >= TXN__UNCERTAINTY_RESTARTS_MAX) {
        snprintf(msg + at, sizeof(msg) - at,
                 ", after %d moves above such values (SQLSTATE 40001)",
                 TXN__UNCERTAINTY_RESTARTS_MAX);
        err_setf(err, "40001", "%s", msg);
        mark_aborted(t, TXN_ERR_RETRY, "40001", msg);
        return TXN_ERR_RETRY;
    }
    t->uncertainty_restarts++;
    atomic_fetch_add(&t->db->uncertainty_restarts, 1);
    txn_error why;
    memset(&why, 0, sizeof(why));
    int rc = refresh_to(t, hlc_next(u->conflict_ts), &why);
    if (rc == TXN_OK) return TXN_OK;
    if (rc != TXN_ERR_RETRY) {
        if (err != NULL) *err = why;
        return rc;
    }
    /* the refresh's own reason, after ours */
    const char *prefix = "restart transaction: ";
    const char *cause = why.message;
    if (strncmp(cause, prefix, strlen(prefix)) == 0) cause += strlen(prefix);
    const char *joint = ", and its reads cannot move above it: ";
    base_strlcpy(msg + at, joint, sizeof(msg) - at);
    at = strlen(msg);
    base_strlcpy(msg + at, cause, sizeof(msg) - at);
    err_setf(err, "40001", "%s", msg);
    /* refresh_to aborted t with its message: ours explains more */
    t->aborted = true;
    t->abort_rc = TXN_ERR_RETRY;
    base_strlcpy(t->abort_error.sqlstate, "40001", sizeof(t->abort_error.sqlstate));
    base_strlcpy(t->abort_error.message, msg, sizeof(t->abort_error.message));
    return TXN_ERR_RETRY;
}

static void detach_iters(txn *t) {
    while (t->iters != NULL) {
        txn_iter *it = t->iters;
        iter_record(it);
        t->iters = it->next;
        it->prev = it->next = NULL;
        it->t = NULL;
    }
}

static void txn_free(txn *t) {
    detach_iters(t);
    if (t->live != NULL) live_unregister(t->db, t->live, NULL); /* not after close */
    t->live = NULL;
    lockset_free(&t->locks);
    base_buf_free(&t->anchor_buf);
    treap_free(t->root);
    for (size_t i = 0; i < t->span_count; i++) span_free(&t->spans[i]);
    base_free(t->spans);
    for (size_t i = 0; i < t->undo_len; i++)
        if (!t->undo[i].prev_inline) base_free(t->undo[i].prev_value);
    base_free(t->undo);
    base_free(t->savepoints);
    base_free(t->reads);
    base_buf_free(&t->read_arena);
    base_free(t);
}

void txn_rollback(txn *t) {
    if (t == NULL) return;
    detach_iters(t);
    /* its locks go, through the resolver (and its record, if it has one) */
    if (t->has_meta) locks_release(t, RANGE_TXN_ABORTED, HLC_ZERO, false, true);
    txn_free(t);
}

/* ---- reads ---------------------------------------------------------------- */

int txn_get(txn *t, const uint8_t *key, size_t key_len, base_buf *out, txn_error *err) {
    int rc = check_usable(t, err);
    if (rc != TXN_OK) return rc;
    rc = check_key(key, key_len, err);
    if (rc != TXN_OK) return rc;
    txn__node *n = node_find(t, key, key_len);
    if (n != NULL && n->state == TXN__PUT) {
        base_buf_reset(out);
        if (base_buf_append(out, n->value, n->value_len) != 0) return fail(err, TXN_ERR_NOMEM);
        return TXN_OK;
    }
    if ((n != NULL && n->state == TXN__DEL) || deleted_by_span(t, key, key_len)) return TXN_NOT_FOUND;
    if (t->locking && lock_capable(t)) {
        /* lock first; a newer version than read_ts moves read_ts there */
        range_span sp = {key, key_len, NULL, 0, true};
        hlc_timestamp newest = HLC_ZERO;
        rc = lock_keys(t, &sp, 1, &newest, err);
        if (rc == TXN_OK && hlc_compare(newest, t->read_ts) > 0) rc = refresh_to(t, newest, err);
        if (rc != TXN_OK) return rc;
    }
    size_t recorded = t->read_count; /* before this read */
    rc = record_read(t, key, key_len, NULL, 0, true, err);
    if (rc != TXN_OK) return rc;
    range_kv *kv = t->db->kv;
    int range_rc = RANGE_ERR_UNCERTAIN;
    /* bounded: each pass moves read_ts up, at most TXN__UNCERTAINTY_RESTARTS_MAX */
    while (range_rc == RANGE_ERR_UNCERTAIN) {
        if (t->stale) {
            range_rc = kv->ops->get_stale(kv, key, key_len, t->read_ts, out);
        } else if (!uncertain_now(t)) {
            range_rc = kv->ops->get(kv, key, key_len, t->read_ts, out);
        } else {
            range_conflict u;
            memset(&u, 0, sizeof(u));
            range_rc = kv->ops->get_uncertain(kv, key, key_len, t->read_ts,
                                              t->uncertainty_limit, &t->observed, out, &u);
            if (range_rc == RANGE_ERR_UNCERTAIN) {
                /* this key was not read: the refresh leaves it out */
                size_t now = t->read_count;
                t->read_count = recorded;
                rc = uncertainty_restart(t, &u, err);
                t->read_count = now;
            }
            range_conflict_free(&u);
            if (rc != TXN_OK) return rc;
            continue;
        }
        /* a read without a limit is never uncertain (a peer's bug) */
        if (range_rc == RANGE_ERR_UNCERTAIN) range_rc = RANGE_ERR_CORRUPT;
    }
    if (range_rc == RANGE_OK) return TXN_OK;
    if (range_rc == RANGE_NOT_FOUND) return TXN_NOT_FOUND;
    rc = range_to_txn_rc(range_rc);
    if (rc == TXN_ERR_IO) mark_aborted(t, rc, rc_sqlstate(rc), rc_message(rc));
    return kv_fail(kv, err, range_rc);
}

/* ---- writes --------------------------------------------------------------- */

int txn_put(txn *t, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len,
            txn_error *err) {
    int rc = check_writable(t, err);
    if (rc != TXN_OK) return rc;
    rc = check_key(key, key_len, err);
    if (rc != TXN_OK) return rc;
    if (value_len > STORAGE_VALUE_SIZE_MAX || (value == NULL && value_len > 0)) {
        err_setf(err, "54000", "value of %zu bytes exceeds the maximum of %d bytes", value_len,
                 STORAGE_VALUE_SIZE_MAX);
        return TXN_ERR_INVALID;
    }
    return buffer_write(t, key, key_len, TXN__PUT, value, value_len, err);
}

int txn_delete(txn *t, const uint8_t *key, size_t key_len, txn_error *err) {
    int rc = check_writable(t, err);
    if (rc != TXN_OK) return rc;
    rc = check_key(key, key_len, err);
    if (rc != TXN_OK) return rc;
    return buffer_write(t, key, key_len, TXN__DEL, NULL, 0, err);
}

/* Buffered PUTs in [start, end): how many. */
static size_t count_puts_in_span(txn *t, const txn__span *sp) {
    size_t count = 0;
    txn__node *n = node_after(t, sp->start, sp->start_len, false);
    for (size_t guard = 0; n != NULL && guard <= t->node_count; guard++) {
        if (sp->end != NULL && key_cmp(n->key, n->key_len, sp->end, sp->end_len) >= 0) break;
        if (n->state == TXN__PUT) count++;
        n = node_after(t, n->key, n->key_len, true);
    }
    return count;
}

/* Mark buffered PUTs in [start, end) deleted (with undo when a savepoint is
** alive). Cannot fail: the undo log was reserved by the caller, and a DEL
** allocates nothing. */
static void mark_deleted_in_span(txn *t, const txn__span *sp) {
    txn__node *n = node_after(t, sp->start, sp->start_len, false);
    for (size_t guard = 0; n != NULL && guard <= t->node_count; guard++) {
        if (sp->end != NULL && key_cmp(n->key, n->key_len, sp->end, sp->end_len) >= 0) break;
        if (n->state == TXN__PUT) {
            int rc = node_set(t, n, TXN__DEL, NULL, 0, NULL);
            assert(rc == TXN_OK);
            (void)rc;
        }
        n = node_after(t, n->key, n->key_len, true);
    }
}

int txn_delete_range(txn *t, const uint8_t *start, size_t start_len, const uint8_t *end,
                     size_t end_len, txn_error *err) {
    int rc = check_writable(t, err);
    if (rc != TXN_OK) return rc;
    if (start_len > STORAGE_KEY_SIZE_MAX || end_len > STORAGE_KEY_SIZE_MAX ||
        (start == NULL && start_len > 0) || (end == NULL && end_len > 0)) {
        err_setf(err, "22023", "invalid delete range bounds");
        return TXN_ERR_INVALID;
    }
    if (end_len > 0 && key_cmp(start, start_len, end, end_len) >= 0) return TXN_OK; /* empty */
    if (t->span_count >= TXN_DELETE_SPANS_MAX) {
        err_setf(err, "54000", "too many delete ranges in one transaction (maximum %u)",
                 TXN_DELETE_SPANS_MAX);
        return TXN_ERR_LIMIT;
    }
    size_t bytes = TXN__NODE_OVERHEAD_BYTES + start_len + end_len;
    if (t->write_bytes + bytes > TXN_WRITE_SET_BYTES_MAX) {
        err_setf(err, "54000", "transaction write set exceeds %u bytes", TXN_WRITE_SET_BYTES_MAX);
        return TXN_ERR_LIMIT;
    }
    if (t->span_count == t->span_cap) {
        size_t ncap = t->span_cap ? t->span_cap * 2 : 8;
        txn__span *s = base_realloc(t->spans, ncap * sizeof(*s));
        if (s == NULL) return fail(err, TXN_ERR_NOMEM);
        t->spans = s;
        t->span_cap = ncap;
    }
    txn__span sp = {0};
    sp.start = base_malloc(start_len ? start_len : 1);
    sp.end = end_len ? base_malloc(end_len) : NULL;
    if (sp.start == NULL || (end_len && sp.end == NULL)) {
        span_free(&sp);
        return fail(err, TXN_ERR_NOMEM);
    }
    if (start_len) memcpy(sp.start, start, start_len);
    sp.start_len = start_len;
    if (end_len) memcpy(sp.end, end, end_len);
    sp.end_len = end_len;
    if (t->savepoint_count > 0 && undo_reserve_n(t, 1 + count_puts_in_span(t, &sp)) != TXN_OK) {
        span_free(&sp);
        return fail(err, TXN_ERR_NOMEM);
    }
    t->spans[t->span_count++] = sp;
    t->write_bytes += bytes;
    if (t->savepoint_count > 0) {
        txn__undo *u = &t->undo[t->undo_len++];
        memset(u, 0, sizeof(*u));
    }
    mark_deleted_in_span(t, &t->spans[t->span_count - 1]);
    return TXN_OK;
}

/* ---- savepoints ----------------------------------------------------------- */

int txn_savepoint(txn *t, uint32_t *id) {
    if (check_usable(t, NULL) != TXN_OK) return TXN_ERR_DONE;
    if (t->savepoint_count >= TXN_SAVEPOINTS_MAX) return TXN_ERR_LIMIT;
    if (t->savepoint_count == t->savepoint_cap) {
        size_t ncap = t->savepoint_cap ? t->savepoint_cap * 2 : 8;
        txn__savepoint *s = base_realloc(t->savepoints, ncap * sizeof(*s));
        if (s == NULL) return TXN_ERR_NOMEM;
        t->savepoints = s;
        t->savepoint_cap = ncap;
    }
    txn__savepoint *sp = &t->savepoints[t->savepoint_count++];
    sp->id = t->next_savepoint_id++;
    sp->undo_len = t->undo_len;
    *id = sp->id;
    return TXN_OK;
}

static bool find_savepoint(const txn *t, uint32_t id, size_t *index) {
    for (size_t i = t->savepoint_count; i > 0; i--) {
        if (t->savepoints[i - 1].id == id) {
            *index = i - 1;
            return true;
        }
    }
    return false;
}

static void drop_undo_if_unused(txn *t) {
    if (t->savepoint_count > 0) return;
    for (size_t i = 0; i < t->undo_len; i++)
        if (!t->undo[i].prev_inline) base_free(t->undo[i].prev_value);
    t->undo_len = 0;
    t->undo_bytes = 0;
}

int txn_rollback_to(txn *t, uint32_t id) {
    if (check_usable(t, NULL) != TXN_OK) return TXN_ERR_DONE;
    size_t idx;
    if (!find_savepoint(t, id, &idx)) return TXN_ERR_INVALID;
    size_t target = t->savepoints[idx].undo_len;
    while (t->undo_len > target) {
        txn__undo *u = &t->undo[--t->undo_len];
        if (u->node == NULL) {
            txn__span *sp = &t->spans[--t->span_count];
            t->write_bytes -= TXN__NODE_OVERHEAD_BYTES + sp->start_len + sp->end_len;
            span_free(sp);
            continue;
        }
        txn__node *n = u->node;
        t->write_bytes -= node_bytes(n->state, n->key_len, n->value_len);
        t->write_bytes += node_bytes(u->prev_state, n->key_len, u->prev_value_len);
        node_value_free(n);
        t->undo_bytes -= u->prev_value_len;
        n->state = u->prev_state;
        n->value = u->prev_value; /* owned by the node now */
        n->value_inline = u->prev_inline;
        n->value_len = (uint32_t)u->prev_value_len;
        /* Back to "never written": no older undo entry can name this node
        ** (a node is NONE only before its first write), so unlink it. */
        if (n->state == TXN__NONE) node_remove(t, n);
    }
    t->savepoint_count = idx + 1;
    return TXN_OK;
}

int txn_release(txn *t, uint32_t id) {
    if (check_usable(t, NULL) != TXN_OK) return TXN_ERR_DONE;
    size_t idx;
    if (!find_savepoint(t, id, &idx)) return TXN_ERR_INVALID;
    t->savepoint_count = idx;
    drop_undo_if_unused(t);
    return TXN_OK;
}

/* ---- scans ---------------------------------------------------------------- */

int txn_scan(txn *t, const uint8_t *start, size_t start_len, const uint8_t *end, size_t end_len,
             bool reverse, txn_iter **out, txn_error *err) {
    *out = NULL;
    int rc = check_usable(t, err);
    if (rc != TXN_OK) return rc;
    if (start_len > STORAGE_KEY_SIZE_MAX || end_len > STORAGE_KEY_SIZE_MAX ||
        (start == NULL && start_len > 0) || (end == NULL && end_len > 0)) {
        err_setf(err, "22023", "invalid scan bounds");
        return TXN_ERR_INVALID;
    }
    txn_iter *it = base_calloc(1, sizeof(*it));
    if (it == NULL) return fail(err, TXN_ERR_NOMEM);
    it->reverse = reverse;
    it->open_end = end_len == 0;
    if (base_buf_append(&it->start, start_len ? start : (const uint8_t *)"", start_len) != 0 ||
        base_buf_append(&it->end, end_len ? end : (const uint8_t *)"", end_len) != 0) {
        rc = TXN_ERR_NOMEM;
        goto fail_free;
    }
    if (!it->open_end && key_cmp(it->start.data, start_len, it->end.data, end_len) >= 0) {
        it->inner_done = true; /* empty span */
    } else {
        range_kv *kv = t->db->kv;
        it->ops = kv->ops;
        int range_rc = t->stale ? kv->ops->iter_open_stale(kv, start, start_len, end, end_len,
                                                           t->read_ts, reverse, &it->inner)
                       : uncertain_now(t)
                           ? kv->ops->iter_open_uncertain(kv, start, start_len, end, end_len,
                                                          t->read_ts, t->uncertainty_limit,
                                                          &t->observed, reverse, &it->uncertain,
                                                          &it->inner)
                           : kv->ops->iter_open(kv, start, start_len, end, end_len, t->read_ts,
                                                reverse, &it->inner);
        if (range_rc != RANGE_OK) {
            base_buf_free(&it->start);
            base_buf_free(&it->end);
            base_free(it);
            return kv_fail(kv, err, range_rc);
        }
        it->need_advance = true;
    }
    it->locking = t->locking && lock_capable(t);
    it->batch_rows = 0;
    it->t = t;
    it->next = t->iters;
    if (t->iters) t->iters->prev = it;
    t->iters = it;
    *out = it;
    return TXN_OK;
fail_free:
    base_buf_free(&it->start);
    base_buf_free(&it->end);
    base_free(it);
    return fail(err, rc);
}

/* The next buffered write (PUT or DEL) in the scan direction, within span. */
static txn__node *iter_buffer_candidate(txn_iter *it) {
    txn *t = it->t;
    txn__node *n;
    if (!it->reverse) {
        n = it->have_last ? node_after(t, it->last.data, it->last.len, true)
                          : node_after(t, it->start.data, it->start.len, false);
        if (n && !it->open_end && key_cmp(n->key, n->key_len, it->end.data, it->end.len) >= 0)
            n = NULL;
    } else {
        if (it->have_last) {
            n = node_before(t, it->last.data, it->last.len, true);
        } else {
            n = it->open_end ? node_before(t, NULL, 0, true)
                             : node_before(t, it->end.data, it->end.len, true);
        }
        if (n && key_cmp(n->key, n->key_len, it->start.data, it->start.len) < 0) n = NULL;
    }
    return n;
}

/* Put the span observed so far into the read set (once). Failure to record
** (limit, NOMEM) is reported by the next txn call that checks; here we mark
** the txn aborted so that it cannot commit without the read (txn_commit then
** returns the reason). */
static void iter_record(txn_iter *it) {
    if (it->recorded || it->t == NULL) return;
    it->recorded = true;
    txn *t = it->t;
    int rc = TXN_OK;
    uint8_t zero = 0;
    if (!it->open_end && key_cmp(it->start.data, it->start.len, it->end.data, it->end.len) >= 0) {
        rc = TXN_OK; /* an empty span reads nothing */
    } else if (it->exhausted) {
        rc = record_read(t, it->start.data, it->start.len, it->end.data,
                         it->open_end ? 0 : it->end.len, false, NULL);
    } else if (it->have_last) {
        if (!it->reverse) {
            /* [start, last] = [start, last + "\0") */
            if (base_buf_append(&it->last, &zero, 1) != 0) {
                rc = TXN_ERR_NOMEM;
            } else {
                rc = record_read(t, it->start.data, it->start.len, it->last.data, it->last.len,
                                 false, NULL);
                it->last.len--;
            }
        } else {
            /* [last, end) */
            if (it->open_end) {
                rc = record_read(t, it->last.data, it->last.len, NULL, 0, false, NULL);
            } else {
                rc = record_read(t, it->last.data, it->last.len, it->end.data, it->end.len, false,
                                 NULL);
            }
        }
    }
    /* cannot prove serializability without the read */
    if (rc != TXN_OK) mark_aborted(t, rc, rc_sqlstate(rc), rc_message(rc));
}

static int iter_inner_next(txn_iter *it, txn_error *err);

int txn_iter_next(txn_iter *it, const uint8_t **key, size_t *key_len, const uint8_t **value,
                  size_t *value_len, txn_error *err) {
    if (it->t == NULL) {
        err_setf(err, "25P01", "scan used after its transaction finished");
        return TXN_ERR_DONE;
    }
    int rc = check_usable(it->t, err);
    if (rc != TXN_OK) return rc;
    if (it->exhausted) return 0;
    /* each pass consumes one buffered node or one storage row: bounded by
    ** their number */
    for (;;) {
        if (it->need_advance) {
            it->need_advance = false;
            int n = iter_inner_next(it, err);
            if (n < 0) return n; /* err set */
            it->head_valid = n == 1;
            if (n == 0) it->inner_done = true;
        }
        txn__node *b = iter_buffer_candidate(it);
        if (b == NULL && !it->head_valid) {
            it->exhausted = true;
            iter_record(it);
            if (it->t->aborted) {
                if (err) *err = it->t->abort_error;
                return it->t->abort_rc;
            }
            return 0;
        }
        bool take_buffer = false;
        if (b != NULL) {
            if (!it->head_valid) {
                take_buffer = true;
            } else {
                int c = key_cmp(b->key, b->key_len, it->hk, it->hklen);
                if (c == 0) {
                    take_buffer = true;
                    it->need_advance = true; /* the buffer shadows this row */
                    it->head_valid = false;
                } else {
                    take_buffer = it->reverse ? c > 0 : c < 0;
                }
            }
        }
        if (take_buffer) {
            base_buf_reset(&it->last);
            if (base_buf_append(&it->last, b->key, b->key_len) != 0) return fail(err, TXN_ERR_NOMEM);
            it->have_last = true;
            if (b->state != TXN__PUT) continue; /* own delete hides the row */
            base_buf_reset(&it->out_value);
            if (base_buf_append(&it->out_value, b->value, b->value_len) != 0)
                return fail(err, TXN_ERR_NOMEM);
            *key = it->last.data;
            *key_len = it->last.len;
            *value = it->out_value.data ? it->out_value.data : (const uint8_t *)"";
            *value_len = it->out_value.len;
            return 1;
        }
        /* the storage row */
        base_buf_reset(&it->last);
        if (base_buf_append(&it->last, it->hk, it->hklen) != 0) return fail(err, TXN_ERR_NOMEM);
        it->have_last = true;
        it->need_advance = true;
        it->head_valid = false;
        if (deleted_by_span(it->t, it->hk, it->hklen)) continue;
        *key = it->last.data;
        *key_len = it->last.len;
        *value = it->hv;
        *value_len = it->hvlen;
        return 1;
    }
}

void txn_iter_close(txn_iter *it) {
    if (it == NULL) return;
    if (it->t != NULL) {
        iter_record(it);
        if (it->prev) it->prev->next = it->next;
        else it->t->iters = it->next;
        if (it->next) it->next->prev = it->prev;
    }
    if (it->inner != NULL) it->ops->iter_close(it->inner);
    range_conflict_free(&it->uncertain);
    base_buf_free(&it->start);
    base_buf_free(&it->end);
    base_buf_free(&it->last);
    base_buf_free(&it->out_value);
    base_buf_free(&it->batch);
    base_free(it->batch_offs);
    base_free(it);
}

/* ---- commit --------------------------------------------------------------- */

typedef struct txn__collect {
    range_write *writes;
    size_t count;
} txn__collect;

static void collect_writes(const txn__node *n, txn__collect *c) {
    if (n == NULL) return;
    collect_writes(n->left, c);
    if (n->state != TXN__NONE) {
        range_write *w = &c->writes[c->count++];
        w->key = n->key;
        w->key_len = n->key_len;
        w->value = n->state == TXN__PUT ? (n->value ? n->value : (const uint8_t *)"") : NULL;
        w->value_len = n->state == TXN__PUT ? n->value_len : 0;
        w->tombstone = n->state == TXN__DEL;
    }
    collect_writes(n->right, c);
}

static void conflict_message(const txn *t, const range_conflict *c, txn_error *err) {
    char key[TXN__KEY_FORMAT_CHARS_MAX];
    char other[64], mine[64];
    format_key(c->key.data, c->key.len, key, sizeof(key));
    hlc_format(c->conflict_ts, other, sizeof(other));
    hlc_format(t->read_ts, mine, sizeof(mine));
    const char *verb = c->pending ? "is committing" : "committed";
    switch (c->kind) {
    case RANGE_CONFLICT_WRITE_WRITE:
        err_setf(err, "40001",
                 "restart transaction: write-write conflict on key %s: another transaction %s at "
                 "%s after this transaction's read timestamp %s (SQLSTATE 40001)",
                 key, verb, other, mine);
        break;
    case RANGE_CONFLICT_PHANTOM:
        err_setf(err, "40001",
                 "restart transaction: phantom conflict on key %s: another transaction %s an "
                 "insert at %s into a span this transaction scanned at its read timestamp %s "
                 "(SQLSTATE 40001)",
                 key, verb, other, mine);
        break;
    default:
        err_setf(err, "40001",
                 "restart transaction: read-write conflict on key %s: another transaction %s a "
                 "write at %s to a key this transaction read at its read timestamp %s "
                 "(SQLSTATE 40001)",
                 key, verb, other, mine);
        break;
    }
}

/* ---- two-phase commit (docs/txn.md section 3) ------------------------------------ */

#define TXN__RESOLVE_QUEUE_MAX 1024      /* queued resolutions; full: resolve inline */
#define TXN__RESOLVER_THREADS 4          /* resolutions in flight at once (each waits
                                            on Raft rounds; a lock holder's locks go
                                            with its resolution) */
#define TXN__RESOLVE_ATTEMPTS_MAX 8      /* failed attempts (nothing resolved) per
                                            resolution; then left to readers */
#define TXN__RESOLVE_PROGRESS_MAX 64     /* attempts that resolved some but not all (a
                                            stall after progress): a guard */
#define TXN__RESOLVE_BACKOFF_MIN_MS 10   /* first retry delay, doubled per attempt */
#define TXN__RESOLVE_BACKOFF_MAX_MS 2000 /* retry delay cap */

/* One RESOLVE to send: every intent (and lock) of txn_id in spans ->
** status; first, when end_record, END_TXN(status) of a lock holder's record
** (one its heartbeats created; a two-phase commit ends its own). */
typedef struct txn__resolution {
    uint64_t txn_id;
    int status;               /* RANGE_TXN_COMMITTED or RANGE_TXN_ABORTED */
    hlc_timestamp commit_ts;  /* COMMITTED */
    range_prepare_result where; /* owned: range_prepare_result_free; its spans */
    int attempts;             /* failed ones: nothing resolved */
    int progressed;           /* attempts that resolved some, then stalled */
    int64_t not_before_ns;    /* base_monotonic_ns: a retry waits for it */
    bool end_record;          /* END_TXN first (until it went through) */
    uint64_t nonce;           /* end_record: the txn's */
    int64_t priority;
    base_buf anchor;          /* end_record, gc_record: owned copy of the record's key */
    bool gc_record;           /* once resolved: GC_TXN of the final record (docs/txn.md,
                                 "Garbage collection") */
    bool learn_outcome;       /* end_record of an unknown outcome: status is ABORTED (the
                                 END_TXN that fences it), but a record found COMMITTED
                                 turns it COMMITTED (at the record's commit_ts, else
                                 commit_ts as set: the prepare's) */
} txn__resolution;

static void resolution_free(txn__resolution *res) {
    range_prepare_result_free(&res->where);
    base_buf_free(&res->anchor);
}

/* The db's resolver: TXN__RESOLVER_THREADS threads, a bounded queue (mu
** guards everything). */
struct txn__resolver {
    txn_db *db;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* work queued, stop (CLOCK_MONOTONIC) */
    pthread_cond_t idle_cv; /* queue empty and nothing in flight */
    txn__resolution queue[TXN__RESOLVE_QUEUE_MAX];
    size_t n;
    int in_flight; /* threads resolving one outside mu */
    bool stop;
    pthread_t threads[TXN__RESOLVER_THREADS];
    int n_threads;
};

static uint64_t db_random(txn_db *db) {
    /* splitmix64 over a shared counter */
    uint64_t z = atomic_fetch_add(&db->prng, 0x9E3779B97F4A7C15ull) + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t db_random_nonzero(txn_db *db) {
    uint64_t v = 0;
    while (v == 0) v = db_random(db);
    return v;
}

/* Every intent of res is resolved (RESOLVE answered OK over all its spans):
** its final record may go. Best effort: a failure only leaves the record
** (a later sweep may take it), so it is logged, not retried. */
static void record_collect(txn_db *db, const txn__resolution *res) {
    range_kv *kv = db->kv;
    if (kv->ops->gc_txn == NULL || res->anchor.len == 0) return;
    range_txn_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.txn_id = res->txn_id;
    meta.nonce = res->nonce;
    meta.priority = res->priority;
    meta.anchor = res->anchor.data;
    meta.anchor_len = res->anchor.len;
    int rc = kv->ops->gc_txn(kv, &meta);
    if (rc != RANGE_OK)
        BASE_DEBUG("txn", "collection of the record of txn %016llx failed (%d): it stays",
                   (unsigned long long)res->txn_id, rc);
}

/* One END_TXN (end_record) and RESOLVE call; true when it went through.
** *progressed (may be NULL): it did not, but resolved some (the key space
** answered RANGE_ERR_BUSY: a stall after progress, not a failed attempt). */
static bool resolve_once(txn_db *db, txn__resolution *res, bool *progressed) {
    if (progressed != NULL) *progressed = false;
    range_kv *kv = db->kv;
    if (res->end_record && kv->ops->end_txn != NULL) {
        range_txn_meta meta;
        memset(&meta, 0, sizeof(meta));
        meta.txn_id = res->txn_id;
        meta.nonce = res->nonce;
        meta.priority = res->priority;
        meta.anchor = res->anchor.data;
        meta.anchor_len = res->anchor.len;
        if (res->status == RANGE_TXN_COMMITTED) { /* as txn_commit's END_TXN */
            meta.record_spans = res->where.spans;
            meta.n_record_spans = res->where.n_spans;
        }
        range_txn_outcome outcome;
        memset(&outcome, 0, sizeof(outcome));
        int erc = kv->ops->end_txn(kv, &meta, res->status,
                                   res->status == RANGE_TXN_COMMITTED ? res->commit_ts : HLC_ZERO,
                                   &outcome);
        /* ABORTED: a pusher was first; the record is final either way */
        if (erc != RANGE_OK && erc != RANGE_ERR_ABORTED) {
            BASE_DEBUG("txn", "end of the record of txn %016llx failed (%d)",
                       (unsigned long long)res->txn_id, erc);
            return false;
        }
        res->end_record = false;
        if (res->learn_outcome) {
            /* the record, read now, decides: never a guess */
            res->learn_outcome = false;
            if (erc == RANGE_OK && outcome.status == RANGE_TXN_COMMITTED) {
                res->status = RANGE_TXN_COMMITTED;
                if (!hlc_is_zero(outcome.commit_ts)) res->commit_ts = outcome.commit_ts;
            } else {
                res->status = RANGE_TXN_ABORTED;
                res->commit_ts = HLC_ZERO;
            }
        }
    }
    int rc = RANGE_OK;
    if (res->where.n_spans > 0)
        rc = kv->ops->resolve(kv, res->txn_id, res->where.spans, res->where.n_spans,
                              res->status, res->commit_ts);
    if (rc == RANGE_OK) {
        if (res->where.n_spans > 0) atomic_fetch_add(&db->resolves, 1);
        if (res->gc_record) record_collect(db, res);
        return true;
    }
    if (rc == RANGE_ERR_BUSY && progressed != NULL) *progressed = true;
    char detail[256] = "no detail";
    if (kv->ops->last_error != NULL) (void)kv->ops->last_error(kv, detail, sizeof(detail));
    BASE_DEBUG("txn", "resolve of txn %016llx (%s) failed (%d): %s",
               (unsigned long long)res->txn_id,
               res->status == RANGE_TXN_COMMITTED ? "committed" : "aborted", rc, detail);
    return false;
}

/* why: "" or a reason appended to the message (", at shutdown"). */
static void resolution_abandon(txn_db *db, txn__resolution *res, const char *why) {
    atomic_fetch_add(&db->resolves_abandoned, 1);
    BASE_WARN("txn", "intents of txn %016llx (%s) left to readers after %d failed resolve "
              "attempts (%d more made progress)%s",
              (unsigned long long)res->txn_id,
              res->status == RANGE_TXN_COMMITTED ? "committed" : "aborted", res->attempts,
              res->progressed, why);
}

static int64_t resolve_backoff_ms(int attempts) {
    int64_t ms = TXN__RESOLVE_BACKOFF_MIN_MS << (attempts < 16 ? attempts : 16);
    return ms > TXN__RESOLVE_BACKOFF_MAX_MS ? TXN__RESOLVE_BACKOFF_MAX_MS : ms;
}

static void *resolver_main(void *arg) {
    txn__resolver *rs = arg;
    pthread_mutex_lock(&rs->mu);
    while (!rs->stop) {
        /* the ready resolution that waited longest; else sleep until one is */
        int64_t now = base_monotonic_ns();
        size_t pick = rs->n;
        int64_t earliest = INT64_MAX;
        for (size_t i = 0; i < rs->n; i++) {
            if (rs->queue[i].not_before_ns < earliest) {
                earliest = rs->queue[i].not_before_ns;
                pick = i;
            }
        }
        if (pick == rs->n || earliest > now) {
            if (rs->n == 0 && rs->in_flight == 0) pthread_cond_broadcast(&rs->idle_cv);
            if (pick == rs->n) {
                pthread_cond_wait(&rs->cv, &rs->mu);
            } else {
                struct timespec until;
                clock_gettime(CLOCK_MONOTONIC, &until);
                int64_t ns = (int64_t)until.tv_nsec + (earliest - now);
                until.tv_sec += (time_t)(ns / 1000000000);
                until.tv_nsec = (long)(ns % 1000000000);
                (void)pthread_cond_timedwait(&rs->cv, &rs->mu, &until);
            }
            continue;
        }
        txn__resolution res = rs->queue[pick];
        rs->queue[pick] = rs->queue[--rs->n];
        rs->in_flight++;
        pthread_mutex_unlock(&rs->mu);
        bool progressed = false;
        bool done = resolve_once(rs->db, &res, &progressed);
        /* an attempt that resolved some is not a failed one */
        if (progressed && res.progressed < TXN__RESOLVE_PROGRESS_MAX) res.progressed++;
        else res.attempts++;
        pthread_mutex_lock(&rs->mu);
        rs->in_flight--;
        if (!done && res.attempts < TXN__RESOLVE_ATTEMPTS_MAX && !rs->stop &&
            rs->n < TXN__RESOLVE_QUEUE_MAX) {
            atomic_fetch_add(&rs->db->resolve_retries, 1);
            res.not_before_ns = base_monotonic_ns() +
                                resolve_backoff_ms(progressed ? 0 : res.attempts) * 1000000;
            rs->queue[rs->n++] = res;
            continue;
        }
        if (!done) resolution_abandon(rs->db, &res, rs->stop ? ", at shutdown" : "");
        resolution_free(&res);
    }
    pthread_cond_broadcast(&rs->idle_cv);
    pthread_mutex_unlock(&rs->mu);
    return NULL;
}

static int resolver_start(txn_db *db) {
    txn__resolver *rs = base_calloc(1, sizeof(*rs)); /* owner: db, resolver_stop */
    if (rs == NULL) return TXN_ERR_NOMEM;
    rs->db = db;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) goto fail_free;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int crc = pthread_cond_init(&rs->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (crc != 0) goto fail_free;
    if (pthread_cond_init(&rs->idle_cv, NULL) != 0) goto fail_cv;
    if (pthread_mutex_init(&rs->mu, NULL) != 0) goto fail_idle;
    while (rs->n_threads < TXN__RESOLVER_THREADS &&
           pthread_create(&rs->threads[rs->n_threads], NULL, resolver_main, rs) == 0)
        rs->n_threads++;
    if (rs->n_threads == 0) goto fail_mu; /* fewer: slower, not wrong */
    db->resolver = rs;
    return TXN_OK;
fail_mu:
    pthread_mutex_destroy(&rs->mu);
fail_idle:
    pthread_cond_destroy(&rs->idle_cv);
fail_cv:
    pthread_cond_destroy(&rs->cv);
fail_free:
    base_free(rs);
    return TXN_ERR_NOMEM;
}

/* Stops the threads after the resolutions in flight (bounded by the key
** space's deadline); what is still queued is left to readers. */
static void resolver_stop(txn_db *db) {
    txn__resolver *rs = db->resolver;
    if (rs == NULL) return;
    pthread_mutex_lock(&rs->mu);
    rs->stop = true;
    pthread_cond_broadcast(&rs->cv);
    pthread_mutex_unlock(&rs->mu);
    for (int i = 0; i < rs->n_threads; i++) pthread_join(rs->threads[i], NULL);
    for (size_t i = 0; i < rs->n; i++) {
        resolution_abandon(db, &rs->queue[i], ", at shutdown");
        resolution_free(&rs->queue[i]);
    }
    pthread_cond_destroy(&rs->cv);
    pthread_cond_destroy(&rs->idle_cv);
    pthread_mutex_destroy(&rs->mu);
    base_free(rs);
    db->resolver = NULL;
}

/* Hand a resolution to the resolver (it takes what *res owns, and *res is
** zeroed); queue full: resolve here, once. */
static void resolve_later_res(txn_db *db, txn__resolution *in) {
    txn__resolution res = *in;
    memset(in, 0, sizeof(*in));
    if (res.where.n_spans == 0 && !res.end_record && !res.gc_record) {
        resolution_free(&res);
        return;
    }
    txn__resolver *rs = db->resolver;
    if (rs != NULL) {
        pthread_mutex_lock(&rs->mu);
        bool queued = !rs->stop && rs->n < TXN__RESOLVE_QUEUE_MAX;
        if (queued) {
            rs->queue[rs->n++] = res;
            pthread_cond_signal(&rs->cv);
        }
        pthread_mutex_unlock(&rs->mu);
        if (queued) return;
    }
    res.attempts = 1;
    if (!resolve_once(db, &res, NULL)) resolution_abandon(db, &res, " (resolver queue full)");
    resolution_free(&res);
}

/* Hand a resolution to the resolver (it takes *where, which is zeroed). */
static void resolve_later(txn_db *db, const range_txn_meta *meta, int status,
                          hlc_timestamp commit_ts, range_prepare_result *where) {
    txn__resolution res;
    memset(&res, 0, sizeof(res));
    res.txn_id = meta->txn_id;
    res.status = status;
    res.commit_ts = commit_ts;
    res.where = *where;
    memset(where, 0, sizeof(*where));
    /* the record goes after the resolution; no copy (NOMEM): it stays */
    res.gc_record = meta->anchor_len > 0 &&
                    base_buf_append(&res.anchor, meta->anchor, meta->anchor_len) == 0;
    resolve_later_res(db, &res);
}

int txn_db_wait_resolved(txn_db *db, int64_t timeout_ms) {
    txn__resolver *rs = db->resolver;
    if (rs == NULL) return TXN_OK;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* idle_cv uses the default clock */
    until.tv_sec += (time_t)(timeout_ms / 1000);
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = TXN_OK;
    pthread_mutex_lock(&rs->mu);
    while (rs->n > 0 || rs->in_flight) {
        if (pthread_cond_timedwait(&rs->idle_cv, &rs->mu, &until) == ETIMEDOUT) {
            rc = TXN_ERR_UNAVAILABLE;
            break;
        }
    }
    pthread_mutex_unlock(&rs->mu);
    return rc;
}

/* The record's key: the first key of the sorted write set (a delete span's
** start when it comes first; never empty). */
static void distributed_anchor(const range_commit_request *req, range_txn_meta *meta) {
    static const uint8_t lowest[1] = {0};
    const uint8_t *a = NULL;
    size_t alen = 0;
    if (req->write_count > 0) {
        a = req->writes[0].key;
        alen = req->writes[0].key_len;
    }
    for (size_t i = 0; i < req->delete_span_count; i++) {
        const range_span *sp = &req->delete_spans[i];
        const uint8_t *s = sp->start_len > 0 ? sp->start : lowest;
        size_t slen = sp->start_len > 0 ? sp->start_len : 1;
        if (a == NULL || key_cmp(s, slen, a, alen) < 0) {
            a = s;
            alen = slen;
        }
    }
    meta->anchor = a;
    meta->anchor_len = alen;
}

/* The key space's detail of its last error on this thread (call before any
** other call on it). */
static void kv_detail(range_kv *kv, char *buf, size_t size) {
    if (kv->ops->last_error == NULL || !kv->ops->last_error(kv, buf, size))
        base_strlcpy(buf, "no detail", size);
}

static void aborted_message(const range_txn_meta *meta, const char *when, txn_error *err) {
    char anchor[TXN__KEY_FORMAT_CHARS_MAX];
    format_key(meta->anchor, meta->anchor_len, anchor, sizeof(anchor));
    err_setf(err, "40001",
             "restart transaction: transaction %016llx was aborted %s: another transaction "
             "pushed it (its record at key %s is ABORTED, e.g. after its heartbeat expired) "
             "(SQLSTATE 40001)",
             (unsigned long long)meta->txn_id, when, anchor);
}

/* A prepare that failed: err from its code (before any other key-space call,
** which would replace the detail). */
static int prepare_failed(txn *t, range_kv *kv, const range_txn_meta *meta, int r,
                          const range_conflict *conflict, txn_error *err) {
    switch (r) {
    case RANGE_ERR_CONFLICT:
        conflict_message(t, conflict, err);
        return TXN_ERR_RETRY;
    case RANGE_ERR_ABORTED: {
        /* a deadlock's victim: the key space names the cycle */
        char detail[256];
        kv_detail(kv, detail, sizeof(detail));
        if (strstr(detail, "deadlock") != NULL)
            err_setf(err, "40001", "restart transaction: %s (SQLSTATE 40001)", detail);
        else
            aborted_message(meta, "while it prepared", err);
        return TXN_ERR_RETRY;
    }
    case RANGE_ERR_TOO_LARGE: {
        /* even in chunks: one write, or one piece of a delete span, too big */
        char detail[256];
        kv_detail(kv, detail, sizeof(detail));
        err_setf(err, "54000", "transaction too large to commit: %s", detail);
        return TXN_ERR_LIMIT;
    }
    case RANGE_ERR_CROSS_RANGE: {
        char detail[256];
        kv_detail(kv, detail, sizeof(detail));
        err_setf(err, "54000", "transaction too large to commit: %s", detail);
        return TXN_ERR_LIMIT;
    }
    case RANGE_ERR_AMBIGUOUS:
    case RANGE_ERR_UNAVAILABLE: {
        /* no END_TXN(COMMITTED) was sent: whatever some PREPARE did, the
        ** transaction cannot commit; it is rolled back (not 40003) */
        char detail[256];
        kv_detail(kv, detail, sizeof(detail));
        err_setf(err, "57P03",
                 "the node cannot serve this transaction now: %s (the transaction was rolled "
                 "back)",
                 detail);
        return TXN_ERR_UNAVAILABLE;
    }
    default:
        return kv_fail(kv, err, r);
    }
}

/* END_TXN(ABORTED) after a failure. true: the record was found COMMITTED
** (at *ts): the transaction committed. *settled: the record is ABORTED. */
static bool abort_distributed(txn_db *db, const range_txn_meta *meta, hlc_timestamp fallback_ts,
                              hlc_timestamp *ts, bool *settled) {
    range_kv *kv = db->kv;
    range_txn_outcome outcome;
    memset(&outcome, 0, sizeof(outcome));
    int a = kv->ops->end_txn(kv, meta, RANGE_TXN_ABORTED, HLC_ZERO, &outcome);
    *settled = a == RANGE_OK && outcome.status == RANGE_TXN_ABORTED;
    if (a != RANGE_OK || outcome.status != RANGE_TXN_COMMITTED) return false;
    *ts = hlc_is_zero(outcome.commit_ts) ? fallback_ts : outcome.commit_ts;
    return true;
}

/* Commit over several ranges. TXN_OK with *ts the commit timestamp (END_TXN
** (COMMITTED) applied), or a txn error with err set. A lock holder commits
** under its own id and anchor (t->meta); else both are made here. */
static int commit_distributed(txn *t, const range_commit_request *req, hlc_timestamp *ts,
                              txn_error *err) {
    txn_db *db = t->db;
    range_kv *kv = db->kv;
    range_txn_meta meta;
    memset(&meta, 0, sizeof(meta));
    if (t->has_meta) {
        meta = t->meta;
    } else {
        meta.txn_id = db_random_nonzero(db);
        meta.nonce = db_random_nonzero(db);
        distributed_anchor(req, &meta);
    }
    meta.read_ts = req->read_ts;
    range_commit_request preq = *req;
    preq.txn_id = meta.txn_id;
    range_prepare_result prepared; /* owner: this function until handed to the resolver */
    memset(&prepared, 0, sizeof(prepared));
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    range_txn_outcome outcome;
    memset(&outcome, 0, sizeof(outcome));
    char detail[256] = "";
    bool end_failed = false;  /* prepared, but END_TXN(COMMITTED) failed */
    bool commit_sent = false; /* ...and may have applied */
    int rc = TXN_OK;

    int r = kv->ops->prepare(kv, &meta, &preq, &prepared, &conflict);
    if (r != RANGE_OK) {
        rc = prepare_failed(t, kv, &meta, r, &conflict, err);
    } else {
        /* the record keeps where the intents are: a dead coordinator's are
        ** then resolved by the anchor's GC round (docs/txn.md 6.1) */
        range_txn_meta commit_meta = meta;
        commit_meta.record_spans = prepared.spans;
        commit_meta.n_record_spans = prepared.n_spans;
        r = kv->ops->end_txn(kv, &commit_meta, RANGE_TXN_COMMITTED, prepared.commit_ts,
                             &outcome);
        if (r == RANGE_OK) {
            *ts = prepared.commit_ts;
            goto committed;
        }
        if (r == RANGE_ERR_ABORTED) {
            /* a pusher aborted the record first: nothing can commit it now */
            aborted_message(&meta, "before its commit record was written", err);
            resolve_later(db, &meta, RANGE_TXN_ABORTED, HLC_ZERO, &prepared);
            rc = TXN_ERR_RETRY;
            goto done;
        }
        end_failed = true;
        commit_sent = r != RANGE_ERR_UNAVAILABLE; /* UNAVAILABLE: surely not applied */
        kv_detail(kv, detail, sizeof(detail));
    }
    bool settled = false;
    if (abort_distributed(db, &meta, prepared.commit_ts, ts, &settled)) {
        if (err != NULL) memset(err, 0, sizeof(*err));
        rc = TXN_OK;
        goto committed;
    }
    if (commit_sent && !settled) {
        /* neither committed nor aborted for sure: the record decides later
        ** (readers that meet the intents push it) */
        err_setf(err, "40003",
                 "the outcome of the commit is unknown: it may or may not have applied "
                 "(transaction %016llx: %s)",
                 (unsigned long long)meta.txn_id, detail);
        rc = TXN_ERR_AMBIGUOUS;
        goto done;
    }
    if (end_failed) {
        err_setf(err, "57P03",
                 "the node cannot serve this transaction now: its commit record could not be "
                 "written (%s); the transaction was rolled back",
                 detail);
        rc = TXN_ERR_UNAVAILABLE;
    }
    /* the txn cannot commit any more: its intents go (a failed END_TXN
    ** (ABORTED) leaves a PENDING record that expires) */
    resolve_later(db, &meta, RANGE_TXN_ABORTED, HLC_ZERO, &prepared);
    goto done;
committed:
    atomic_fetch_add(&db->distributed_commits, 1);
    resolve_later(db, &meta, RANGE_TXN_COMMITTED, *ts, &prepared);
done:
    range_prepare_result_free(&prepared);
    range_conflict_free(&conflict);
    return rc;
}

/* Acknowledge only once ts is in the past on every live node's clock:
** until physical - epsilon > ts.wall (docs/clocks.md, section 5). Epsilon
** grows with the age of its measurements while we sleep, so re-check.
** Bounded by TXN_COMMIT_WAIT_MAX_OFFSETS max offsets. info may be NULL. */
static void commit_wait(txn_db *db, hlc_timestamp ts, txn_commit_info *info) {
    int64_t eps = 0;
    bool unbounded = hlc_epsilon(db->clock, &eps) != HLC_EPSILON_OK;
    int64_t cap_ns = TXN_COMMIT_WAIT_MAX_OFFSETS * hlc_max_offset_ns(db->clock);
    int64_t start_ns = base_monotonic_ns(), spent_ns = 0;
    bool capped = false;
    /* No other node to wait for: a clock nobody bounded outside a cluster
    ** (tests) orders its own commits by the HLC alone. */
    bool skip = unbounded && !db->require_clock_bound;
    if (skip) eps = 0;
    while (!skip) {
        int64_t left_ns = hlc_commit_wait_ns(db->clock, ts);
        spent_ns = base_monotonic_ns() - start_ns;
        if (left_ns <= 0) break;
        if (spent_ns >= cap_ns) {
            capped = true;
            break;
        }
        int64_t nap_ns = BASE_MIN(left_ns, cap_ns - spent_ns);
        struct timespec nap = {.tv_sec = nap_ns / 1000000000, .tv_nsec = nap_ns % 1000000000};
        nanosleep(&nap, NULL); /* EINTR: the loop re-checks */
    }
    atomic_fetch_add(&db->commit_waits, 1);
    atomic_fetch_add(&db->commit_wait_ns_total, (uint64_t)spent_ns);
    uint64_t max = atomic_load(&db->commit_wait_ns_max);
    while ((uint64_t)spent_ns > max &&
           !atomic_compare_exchange_weak(&db->commit_wait_ns_max, &max, (uint64_t)spent_ns)) {
    }
    if (capped) atomic_fetch_add(&db->commit_waits_capped, 1);
    atomic_store(&db->commit_epsilon_ns_last, eps);
    if (info == NULL) return;
    info->wrote = true;
    info->wait_ns = spent_ns;
    info->epsilon_ns = eps;
    info->epsilon_unbounded = unbounded;
    info->wait_capped = capped;
}

int txn_commit(txn *t, hlc_timestamp *commit_ts, txn_error *err) {
    if (t == NULL) return TXN_ERR_INVALID;
    int rc = TXN_OK;
    range_write *writes = NULL;
    range_span *spans = NULL;
    range_span *reads = NULL;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    txn__collect c = {0};
    size_t live = 0;
    range_commit_request req;
    memset(&req, 0, sizeof(req));
    hlc_timestamp ts = HLC_ZERO;
    bool distributed = false; /* went to two-phase commit */
    detach_iters(t); /* their spans join the read set */
    if (t->aborted) {
        if (err) *err = t->abort_error;
        rc = t->abort_rc;
        goto cleanup;
    }
    if (t->has_meta && live_aborted(t, err)) { /* a pusher aborted our record */
        rc = TXN_ERR_RETRY;
        goto cleanup;
    }
    if (t->node_count > 0) {
        writes = base_calloc(t->node_count, sizeof(*writes));
        if (writes == NULL) {
            rc = fail(err, TXN_ERR_NOMEM);
            goto cleanup;
        }
        c.writes = writes;
        collect_writes(t->root, &c);
    }
    live = c.count;
    if (live == 0 && t->span_count == 0) {
        /* read-only: the snapshot at read_ts is consistent; nothing to check */
        if (commit_ts) *commit_ts = t->read_ts;
        goto cleanup;
    }
    if (t->reads_overflowed) {
        err_setf(err, "54000",
                 "transaction read more than %u keys or spans (or %u bytes of keys) and also "
                 "wrote: too large to validate; split the work into smaller transactions",
                 TXN_READ_SPANS_MAX, TXN_READ_SET_BYTES_MAX);
        rc = TXN_ERR_LIMIT;
        goto cleanup;
    }
    if (t->span_count > 0) {
        spans = base_calloc(t->span_count, sizeof(*spans));
        if (spans == NULL) {
            rc = fail(err, TXN_ERR_NOMEM);
            goto cleanup;
        }
        for (size_t i = 0; i < t->span_count; i++) {
            spans[i].start = t->spans[i].start;
            spans[i].start_len = t->spans[i].start_len;
            spans[i].end = t->spans[i].end;
            spans[i].end_len = t->spans[i].end_len;
        }
    }
    if (t->read_count > 0) {
        reads = base_calloc(t->read_count, sizeof(*reads));
        if (reads == NULL) {
            rc = fail(err, TXN_ERR_NOMEM);
            goto cleanup;
        }
        for (size_t i = 0; i < t->read_count; i++) {
            const txn__read *r = &t->reads[i];
            reads[i].start = r->start_len ? t->read_arena.data + r->start_off : NULL;
            reads[i].start_len = r->start_len;
            reads[i].end = r->end_len ? t->read_arena.data + r->end_off : NULL;
            reads[i].end_len = r->end_len;
            reads[i].point = r->point;
        }
    }
    /* a lock holder's commit releases its locks in the range: its id */
    req.txn_id = t->has_meta ? t->meta.txn_id : t->id;
    req.read_ts = t->read_ts;
    req.writes = writes;
    req.write_count = live;
    req.delete_spans = spans;
    req.delete_span_count = t->span_count;
    req.read_spans = reads;
    req.read_span_count = t->read_count;
    range_kv *kv = t->db->kv;
    /* no heartbeat may create a record after a 1PC commit */
    if (t->live != NULL) live_pause(t->db, t->live, true);
    int r = kv->ops->commit(kv, &req, &ts, &conflict);
    if ((r == RANGE_ERR_CROSS_RANGE || r == RANGE_ERR_TOO_LARGE) && kv->ops->prepare != NULL &&
        kv->ops->end_txn != NULL && kv->ops->resolve != NULL) {
        /* writes in several ranges, or more than one command holds (the
        ** key space refused it unsent, or its delete spans remove too many
        ** rows): two-phase commit, which prepares in chunks (err set on
        ** failure); the record lives while it prepares */
        if (t->live != NULL) live_pause(t->db, t->live, false);
        distributed = true;
        rc = commit_distributed(t, &req, &ts, err);
        r = RANGE_OK;
    }
    if (rc != TXN_OK) {
        /* commit_distributed said why */
    } else if (r == RANGE_ERR_CONFLICT) {
        conflict_message(t, &conflict, err);
        rc = TXN_ERR_RETRY;
    } else if (r == RANGE_ERR_TOO_LARGE) {
        err_setf(err, "54000",
                 "transaction too large to commit: more than %d writes (including rows removed "
                 "by a delete range)",
                 RANGE_COMMIT_OPS_MAX);
        rc = TXN_ERR_LIMIT;
    } else if (r != RANGE_OK) {
        rc = kv_fail(kv, err, r);
    } else if (commit_ts) {
        *commit_ts = ts;
    }
cleanup:
    if (t->has_meta) {
        /* release the locks the commit did not: after a commit, every lock
        ** but the written keys' (a 1PC commit's range released those, a
        ** two-phase commit's resolution takes them); after a failure, all
        ** (a failed 2PC resolved its intents ABORTED already) but those of
        ** an ambiguous 2PC. A record our heartbeats made is ended (a 2PC
        ** ends its own). */
        bool ok = rc == TXN_OK && !hlc_is_zero(ts);
        /* an ambiguous two-phase commit's intents are the record's to decide */
        bool skip_written = ok || (distributed && rc == TXN_ERR_AMBIGUOUS);
        locks_release(t, ok ? RANGE_TXN_COMMITTED : RANGE_TXN_ABORTED, ok ? ts : HLC_ZERO,
                      skip_written, !distributed);
    }
    /* COMMIT WAIT: every read-write path that succeeds leaves its commit
    ** timestamp in ts (read-only ones leave HLC_ZERO). */
    if (rc == TXN_OK && !hlc_is_zero(ts)) commit_wait(t->db, ts, t->commit_info);
    range_conflict_free(&conflict);
    base_free(writes);
    base_free(spans);
    base_free(reads);
    txn_free(t);
    return rc;
}

int txn_commit_with_info(txn *t, txn_commit_info *info, txn_error *err) {
    if (t == NULL) return TXN_ERR_INVALID;
    if (info != NULL) memset(info, 0, sizeof(*info));
    t->commit_info = info; /* filled by commit_wait, for read-write commits */
    hlc_timestamp ts = HLC_ZERO;
    int rc = txn_commit(t, &ts, err);
    if (info != NULL && rc == TXN_OK) info->commit_ts = ts;
    else if (info != NULL) memset(info, 0, sizeof(*info));
    return rc;
}

/* ---- statement-time locks (docs/txn.md section 5) ------------------------------ */

#define TXN__LOCK_BATCH_ROWS_FIRST 4   /* rows a locking scan reads ahead first (then doubled) */
#define TXN__LOCK_BATCH_ROWS_MAX 256   /* ... at most */
#define TXN__LOCK_BATCH_BYTES_MAX (256u * 1024) /* bytes read ahead, about */
#define TXN__REFRESHES_PER_BATCH_MAX 8 /* a scan whose batch keeps moving: 40001 */
#define TXN__RELEASE_SPANS_MAX 4096    /* point spans in one release; beyond, one span */
#define TXN__LIVE_MAX 65536            /* lock holders the heartbeat threads track */
#define TXN__HEART_THREADS 4           /* heartbeats in flight at once: one that waits
                                          on an unreachable anchor (up to the key
                                          space's deadline, 10 s) must not hold back
                                          the others past the record expiry (5 s) */
#define TXN__HEARTBEAT_RETRY_MS (RANGE_TXN_HEARTBEAT_MS / 4) /* after a failed heartbeat */

void txn_set_locking(txn *t, bool on) {
    if (t != NULL) t->locking = on;
}

bool txn_is_locking(const txn *t) { return t->locking; }

/* Locks need the key space's lock, and its resolve to release them. */
static bool lock_capable(const txn *t) {
    const range_kv_ops *ops = t->db->kv->ops;
    return !t->read_only && ops->lock != NULL && ops->resolve != NULL;
}

/* -- the set of locked keys -- */

static uint64_t key_hash(const uint8_t *k, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ k[i]) * 0x100000001b3ull;
    return h;
}

/* The slot of key k: its own (*found) or the empty one it would take. The
** table is at most half full, so an empty slot always exists. */
static size_t lockset_slot(const txn__lockset *ls, const uint8_t *k, size_t n, bool *found) {
    size_t mask = ls->slot_cap - 1;
    size_t i = (size_t)key_hash(k, n) & mask;
    for (size_t probe = 0; probe < ls->slot_cap; probe++, i = (i + 1) & mask) {
        uint32_t v = ls->slots[i];
        if (v == 0) break;
        size_t e = v - 1;
        if (ls->lens[e] == n && memcmp(ls->bytes.data + ls->offs[e], k, n) == 0) {
            *found = true;
            return i;
        }
    }
    *found = false;
    return i;
}

static int lockset_rehash(txn__lockset *ls, size_t cap) {
    uint32_t *slots = base_calloc(cap, sizeof(*slots)); /* owner: ls */
    if (slots == NULL) return TXN_ERR_NOMEM;
    base_free(ls->slots);
    ls->slots = slots;
    ls->slot_cap = cap;
    for (size_t e = 0; e < ls->n; e++) {
        bool found = false;
        size_t i = lockset_slot(ls, ls->bytes.data + ls->offs[e], ls->lens[e], &found);
        ls->slots[i] = (uint32_t)(e + 1);
    }
    return TXN_OK;
}

/* The index of key k, or SIZE_MAX. */
static size_t lockset_index(const txn__lockset *ls, const uint8_t *k, size_t n) {
    if (ls->n == 0) return SIZE_MAX;
    bool found = false;
    size_t i = lockset_slot(ls, k, n, &found);
    return found ? ls->slots[i] - 1 : SIZE_MAX;
}

/* Add k (not held yet). TXN_OK with *index and *added (false: there
** already), TXN_ERR_LIMIT (a bound: not added, and no key is from now on),
** TXN_ERR_NOMEM (nothing changed). */
static int lockset_add(txn__lockset *ls, const uint8_t *k, size_t n, size_t *index, bool *added) {
    *added = false;
    *index = lockset_index(ls, k, n);
    if (*index != SIZE_MAX) return TXN_OK;
    if (ls->full || ls->n >= TXN_LOCKED_KEYS_MAX || ls->bytes.len + n > TXN_LOCKED_BYTES_MAX) {
        ls->full = true;
        return TXN_ERR_LIMIT;
    }
    if (ls->n == ls->cap) {
        size_t ncap = ls->cap ? ls->cap * 2 : 16;
        size_t *offs = base_realloc(ls->offs, ncap * sizeof(*offs)); /* owner: ls */
        if (offs == NULL) return TXN_ERR_NOMEM;
        ls->offs = offs;
        size_t *lens = base_realloc(ls->lens, ncap * sizeof(*lens)); /* owner: ls */
        if (lens == NULL) return TXN_ERR_NOMEM;
        ls->lens = lens;
        bool *held = base_realloc(ls->held, ncap * sizeof(*held)); /* owner: ls */
        if (held == NULL) return TXN_ERR_NOMEM;
        ls->held = held;
        ls->cap = ncap;
    }
    if ((ls->n + 1) * 2 > ls->slot_cap &&
        lockset_rehash(ls, ls->slot_cap ? ls->slot_cap * 2 : 64) != TXN_OK)
        return TXN_ERR_NOMEM;
    size_t off = ls->bytes.len;
    if (base_buf_append(&ls->bytes, k, n) != 0) return TXN_ERR_NOMEM;
    ls->offs[ls->n] = off;
    ls->lens[ls->n] = n;
    ls->held[ls->n] = false;
    bool found = false;
    size_t i = lockset_slot(ls, k, n, &found);
    ls->slots[i] = (uint32_t)(ls->n + 1);
    *index = ls->n;
    ls->n++;
    *added = true;
    return TXN_OK;
}

static void lockset_free(txn__lockset *ls) {
    base_buf_free(&ls->bytes);
    base_free(ls->offs);
    base_free(ls->lens);
    base_free(ls->held);
    base_free(ls->slots);
    memset(ls, 0, sizeof(*ls));
}

/* -- the heartbeat threads and their registry of lock holders -- */

/* One lock-holding txn, as the heartbeat threads see it (a copy: the txn
** itself belongs to its session's thread). */
struct txn__live {
    txn__live *prev, *next;
    uint64_t txn_id;
    int64_t priority;
    base_buf anchor;       /* owned copy of the record's key */
    hlc_timestamp read_ts;
    int64_t due_ns;        /* base_monotonic_ns of the next heartbeat */
    bool paused;           /* its 1PC commit is in flight */
    bool in_flight;        /* a heartbeat is being sent (the entry stays) */
    bool aborted;          /* a heartbeat found the record ABORTED */
    bool have_record;      /* a heartbeat created (or found) the record */
    char why[256];         /* aborted: the key space's detail */
};

/* mu guards the list and every entry's flags. */
struct txn__heart {
    txn_db *db;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* an entry came or was unpaused, stop (CLOCK_MONOTONIC) */
    pthread_cond_t done_cv; /* a heartbeat in flight ended */
    txn__live *head;
    size_t n;
    bool stop;
    pthread_t threads[TXN__HEART_THREADS];
    int n_threads;
};

static void *heart_main(void *arg) {
    txn__heart *h = arg;
    range_kv *kv = h->db->kv;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        int64_t now = base_monotonic_ns();
        txn__live *pick = NULL;
        for (txn__live *e = h->head; e != NULL; e = e->next)
            if (!e->paused && !e->in_flight && !e->aborted &&
                (pick == NULL || e->due_ns < pick->due_ns))
                pick = e;
        if (pick == NULL) {
            pthread_cond_wait(&h->cv, &h->mu);
            continue;
        }
        if (pick->due_ns > now) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            int64_t ns = (int64_t)until.tv_nsec + (pick->due_ns - now);
            until.tv_sec += (time_t)(ns / 1000000000);
            until.tv_nsec = (long)(ns % 1000000000);
            (void)pthread_cond_timedwait(&h->cv, &h->mu, &until);
            continue;
        }
        /* the entry stays while in flight: unregister and pause wait for it */
        pick->in_flight = true;
        range_txn_meta meta;
        memset(&meta, 0, sizeof(meta));
        meta.txn_id = pick->txn_id;
        meta.priority = pick->priority;
        meta.anchor = pick->anchor.data;
        meta.anchor_len = pick->anchor.len;
        meta.read_ts = pick->read_ts;
        pthread_mutex_unlock(&h->mu);
        int status = RANGE_TXN_PENDING;
        int rc = kv->ops->heartbeat(kv, &meta, &status);
        char why[256] = "";
        if (rc != RANGE_OK) kv_detail(kv, why, sizeof(why));
        atomic_fetch_add(&h->db->heartbeats, 1);
        pthread_mutex_lock(&h->mu);
        pick->in_flight = false;
        if (rc == RANGE_OK) {
            pick->have_record = true;
            pick->due_ns = base_monotonic_ns() + (int64_t)RANGE_TXN_HEARTBEAT_MS * 1000000;
        } else if (rc == RANGE_ERR_ABORTED) {
            pick->have_record = true;
            pick->aborted = true;
            base_strlcpy(pick->why, why, sizeof(pick->why));
            atomic_fetch_add(&h->db->heartbeat_aborts, 1);
        } else {
            /* try again sooner: the record expires after several periods */
            BASE_DEBUG("txn", "heartbeat of txn %016llx failed (%d): %s",
                       (unsigned long long)meta.txn_id, rc, why);
            pick->due_ns = base_monotonic_ns() + (int64_t)TXN__HEARTBEAT_RETRY_MS * 1000000;
        }
        pthread_cond_broadcast(&h->done_cv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static int heart_start(txn_db *db) {
    txn__heart *h = base_calloc(1, sizeof(*h)); /* owner: db, heart_stop */
    if (h == NULL) return TXN_ERR_NOMEM;
    h->db = db;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) goto fail_free;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int crc = pthread_cond_init(&h->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (crc != 0) goto fail_free;
    if (pthread_cond_init(&h->done_cv, NULL) != 0) goto fail_cv;
    if (pthread_mutex_init(&h->mu, NULL) != 0) goto fail_done;
    while (h->n_threads < TXN__HEART_THREADS &&
           pthread_create(&h->threads[h->n_threads], NULL, heart_main, h) == 0)
        h->n_threads++;
    if (h->n_threads == 0) goto fail_mu; /* fewer: a stuck one delays more, not wrong */
    db->heart = h;
    return TXN_OK;
fail_mu:
    pthread_mutex_destroy(&h->mu);
fail_done:
    pthread_cond_destroy(&h->done_cv);
fail_cv:
    pthread_cond_destroy(&h->cv);
fail_free:
    base_free(h);
    return TXN_ERR_NOMEM;
}

/* Every txn is finished before txn_db_close: the registry is empty. */
static void heart_stop(txn_db *db) {
    txn__heart *h = db->heart;
    if (h == NULL) return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    for (int i = 0; i < h->n_threads; i++) pthread_join(h->threads[i], NULL);
    while (h->head != NULL) {
        txn__live *e = h->head;
        h->head = e->next;
        base_buf_free(&e->anchor);
        base_free(e);
    }
    pthread_cond_destroy(&h->cv);
    pthread_cond_destroy(&h->done_cv);
    pthread_mutex_destroy(&h->mu);
    base_free(h);
    db->heart = NULL;
}

/* Register a lock holder: its first heartbeat (which creates its record)
** comes after RANGE_TXN_HEARTBEAT_MS, so a short transaction has none.
** NULL: no heartbeat threads, too many holders, or out of memory (it then
** runs without a record: pushers abort it once its locks are older than
** the record expiry). */
static txn__live *live_register(txn_db *db, const range_txn_meta *meta) {
    txn__heart *h = db->heart;
    if (h == NULL) return NULL;
    txn__live *e = base_calloc(1, sizeof(*e)); /* owner: the registry, live_unregister */
    if (e == NULL) return NULL;
    if (base_buf_append(&e->anchor, meta->anchor, meta->anchor_len) != 0) {
        base_free(e);
        return NULL;
    }
    e->txn_id = meta->txn_id;
    e->priority = meta->priority;
    e->read_ts = meta->read_ts;
    e->due_ns = base_monotonic_ns() + (int64_t)RANGE_TXN_HEARTBEAT_MS * 1000000;
    pthread_mutex_lock(&h->mu);
    bool room = h->n < TXN__LIVE_MAX;
    if (room) {
        e->next = h->head;
        if (h->head != NULL) h->head->prev = e;
        h->head = e;
        h->n++;
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    if (!room) {
        base_buf_free(&e->anchor);
        base_free(e);
        return NULL;
    }
    return e;
}

static void live_pause(txn_db *db, txn__live *e, bool paused) {
    txn__heart *h = db->heart;
    pthread_mutex_lock(&h->mu);
    while (e->in_flight) pthread_cond_wait(&h->done_cv, &h->mu);
    e->paused = paused;
    if (!paused) pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* Unregister and free e, after a heartbeat in flight; *have_record (may be
** NULL): a heartbeat created or found its record. */
static void live_unregister(txn_db *db, txn__live *e, bool *have_record) {
    txn__heart *h = db->heart;
    pthread_mutex_lock(&h->mu);
    while (e->in_flight) pthread_cond_wait(&h->done_cv, &h->mu);
    if (e->prev != NULL) e->prev->next = e->next;
    else h->head = e->next;
    if (e->next != NULL) e->next->prev = e->prev;
    h->n--;
    if (have_record != NULL) *have_record = e->have_record;
    pthread_mutex_unlock(&h->mu);
    base_buf_free(&e->anchor);
    base_free(e);
}

/* Did a heartbeat find t's record ABORTED (a pusher: an expired record, or
** a deadlock's victim)? Then t is aborted with 40001 in err. */
static bool live_aborted(txn *t, txn_error *err) {
    if (t->live == NULL) return false;
    txn__heart *h = t->db->heart;
    char why[256];
    pthread_mutex_lock(&h->mu);
    bool aborted = t->live->aborted;
    base_strlcpy(why, t->live->why, sizeof(why));
    pthread_mutex_unlock(&h->mu);
    if (!aborted) return false;
    char msg[sizeof(t->abort_error.message)];
    snprintf(msg, sizeof(msg), "restart transaction: %s (SQLSTATE 40001)",
             why[0] ? why : "its record was aborted by another transaction");
    err_setf(err, "40001", "%s", msg);
    mark_aborted(t, TXN_ERR_RETRY, "40001", msg);
    return true;
}

/* -- locking and refreshing -- */

/* The txn's identity as a lock holder, made at its first lock: a
** cluster-unique id and its anchor (the first key it locks). */
static int ensure_meta(txn *t, const uint8_t *anchor, size_t anchor_len, txn_error *err) {
    if (t->has_meta) return TXN_OK;
    base_buf_reset(&t->anchor_buf);
    if (base_buf_append(&t->anchor_buf, anchor, anchor_len) != 0) return fail(err, TXN_ERR_NOMEM);
    memset(&t->meta, 0, sizeof(t->meta));
    t->meta.txn_id = db_random_nonzero(t->db);
    t->meta.nonce = db_random_nonzero(t->db);
    t->meta.anchor = t->anchor_buf.data; /* never appended to again: stable */
    t->meta.anchor_len = t->anchor_buf.len;
    t->meta.read_ts = t->read_ts;
    t->has_meta = true;
    t->live = live_register(t->db, &t->meta);
    return TXN_OK;
}

/* A lock request failed: 40001 naming the cycle, the holder or the reason. */
static int lock_failed(txn *t, range_kv *kv, int r, txn_error *err) {
    if (r != RANGE_ERR_ABORTED) return kv_fail(kv, err, r);
    char detail[256];
    kv_detail(kv, detail, sizeof(detail));
    char msg[sizeof(t->abort_error.message)];
    snprintf(msg, sizeof(msg), "restart transaction: %s (SQLSTATE 40001)", detail);
    err_setf(err, "40001", "%s", msg);
    mark_aborted(t, TXN_ERR_RETRY, "40001", msg); /* its record is ABORTED */
    return TXN_ERR_RETRY;
}

/* Lock keys (point spans, ascending, no duplicates): the ones not held yet
** join t->locks (to be released at the end whatever happens), then go to the
** key space; granted, they are held. *newest: the newest committed version
** among them (HLC_ZERO: none, or nothing new was locked). TXN_OK, or an
** error with err set (40001: a deadlock chose t, a holder stayed). */
static int lock_keys(txn *t, const range_span *keys, size_t n, hlc_timestamp *newest,
                     txn_error *err) {
    *newest = HLC_ZERO;
    if (n == 0) return TXN_OK;
    txn_db *db = t->db;
    range_kv *kv = db->kv;
    if (live_aborted(t, err)) return TXN_ERR_RETRY;
    int rc = ensure_meta(t, keys[0].start, keys[0].start_len, err);
    if (rc != TXN_OK) return rc;
    range_span *fresh = base_calloc(n, sizeof(*fresh)); /* owner: this function */
    size_t *idx = base_calloc(n, sizeof(*idx));         /* owner: this function */
    if (fresh == NULL || idx == NULL) {
        base_free(fresh);
        base_free(idx);
        return fail(err, TXN_ERR_NOMEM);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        bool added = false;
        size_t at = SIZE_MAX;
        int arc = lockset_add(&t->locks, keys[i].start, keys[i].start_len, &at, &added);
        if (arc == TXN_ERR_NOMEM) {
            base_free(fresh);
            base_free(idx);
            return fail(err, TXN_ERR_NOMEM);
        }
        if (arc == TXN_OK && !t->locks.held[at]) { /* TXN_ERR_LIMIT: read it unlocked */
            idx[m] = at;
            fresh[m++] = keys[i];
        }
    }
    int r = RANGE_OK;
    if (m > 0) {
        t->meta.read_ts = t->read_ts;
        atomic_fetch_add(&db->lock_calls, 1);
        r = kv->ops->lock(kv, &t->meta, fresh, m, newest);
        if (r == RANGE_OK) {
            atomic_fetch_add(&db->keys_locked, m);
            for (size_t i = 0; i < m; i++) t->locks.held[idx[i]] = true;
        }
    }
    base_free(fresh);
    base_free(idx);
    return r == RANGE_OK ? TXN_OK : lock_failed(t, kv, r, err);
}

/* The read timestamp moved: every open scan continues after its last row at
** the new one; a row it read ahead at the old one is read again. */
static void iters_mark_stale(txn *t) {
    for (txn_iter *it = t->iters; it != NULL; it = it->next) {
        if (it->exhausted || it->inner == NULL) continue;
        it->stale = true;
        if (it->head_valid || it->inner_done) {
            it->head_valid = false;
            it->inner_done = false;
            it->need_advance = true;
        }
    }
}

/* The part of an open scan read so far (as iter_record would record it):
** false when nothing was. The end key may go into *scratch (reserved by the
** caller: no reallocation). */
static bool iter_read_span(txn_iter *it, base_buf *scratch, range_span *out) {
    if (it->recorded || !it->have_last) return false;
    memset(out, 0, sizeof(*out));
    if (!it->reverse) {
        out->start = it->start.len ? it->start.data : NULL;
        out->start_len = it->start.len;
        out->end = scratch->data + scratch->len;
        out->end_len = it->last.len + 1;
        base_buf_append(scratch, it->last.data, it->last.len); /* reserved */
        base_buf_append_byte(scratch, 0);
    } else {
        out->start = it->last.data;
        out->start_len = it->last.len;
        out->end = it->open_end ? NULL : it->end.data;
        out->end_len = it->open_end ? 0 : it->end.len;
    }
    return true;
}

/* Move t's read timestamp to new_ts: VALIDATE every read so far on
** (read_ts, new_ts] (the refresh op), then read at new_ts from now on.
** TXN_OK, or 40001 (something read changed: naming the key) with t aborted,
** or another error. */
static int refresh_to(txn *t, hlc_timestamp new_ts, txn_error *err) {
    if (hlc_compare(new_ts, t->read_ts) <= 0) return TXN_OK;
    txn_db *db = t->db;
    range_kv *kv = db->kv;
    char mine[64], theirs[64];
    hlc_format(t->read_ts, mine, sizeof(mine));
    hlc_format(new_ts, theirs, sizeof(theirs));
    char msg[1024]; /* cut to the error's size */
    if (kv->ops->refresh == NULL || t->reads_overflowed) {
        atomic_fetch_add(&db->refresh_failures, 1);
        snprintf(msg, sizeof(msg),
                 "restart transaction: a lock found a version at %s, after this transaction's "
                 "read timestamp %s, and its reads cannot be refreshed (%s) (SQLSTATE 40001)",
                 theirs, mine,
                 t->reads_overflowed ? "too many to validate" : "no refresh in this key space");
        err_setf(err, "40001", "%s", msg);
        mark_aborted(t, TXN_ERR_RETRY, "40001", msg);
        return TXN_ERR_RETRY;
    }
    size_t n_iters = 0, scratch_bytes = 0;
    for (txn_iter *it = t->iters; it != NULL; it = it->next) {
        n_iters++;
        scratch_bytes += it->last.len + 1;
    }
    range_span *spans = base_calloc(t->read_count + n_iters + 1, sizeof(*spans)); /* owner: here */
    base_buf scratch = {0};                                                      /* owner: here */
    if (spans == NULL || base_buf_reserve(&scratch, scratch_bytes + 1) != 0) {
        base_free(spans);
        base_buf_free(&scratch);
        return fail(err, TXN_ERR_NOMEM);
    }
    size_t n = 0;
    for (size_t i = 0; i < t->read_count; i++) {
        const txn__read *r = &t->reads[i];
        spans[n].start = r->start_len ? t->read_arena.data + r->start_off : NULL;
        spans[n].start_len = r->start_len;
        spans[n].end = r->end_len ? t->read_arena.data + r->end_off : NULL;
        spans[n].end_len = r->end_len;
        spans[n].point = r->point;
        n++;
    }
    for (txn_iter *it = t->iters; it != NULL; it = it->next)
        if (iter_read_span(it, &scratch, &spans[n])) n++;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    range_txn_meta meta = t->meta; /* has_meta: refreshes follow a lock */
    meta.read_ts = t->read_ts;
    int r = kv->ops->refresh(kv, &meta, spans, n, new_ts, &conflict);
    base_free(spans);
    base_buf_free(&scratch);
    int rc = TXN_OK;
    if (r == RANGE_OK) {
        t->read_ts = new_ts;
        t->meta.read_ts = new_ts;
        (void)hlc_update(db->clock, new_ts);
        iters_mark_stale(t);
        atomic_fetch_add(&db->refreshes, 1);
    } else if (r == RANGE_ERR_CONFLICT) {
        char key[TXN__KEY_FORMAT_CHARS_MAX], other[64];
        format_key(conflict.key.data, conflict.key.len, key, sizeof(key));
        hlc_format(conflict.conflict_ts, other, sizeof(other));
        snprintf(msg, sizeof(msg),
                 "restart transaction: read refresh failed on key %s: another transaction %s a "
                 "write at %s to a key this transaction read at %s, so its read timestamp "
                 "cannot move to %s (where a lock found a newer version) (SQLSTATE 40001)",
                 key, conflict.pending ? "is committing" : "committed", other, mine, theirs);
        err_setf(err, "40001", "%s", msg);
        mark_aborted(t, TXN_ERR_RETRY, "40001", msg);
        atomic_fetch_add(&db->refresh_failures, 1);
        rc = TXN_ERR_RETRY;
    } else {
        atomic_fetch_add(&db->refresh_failures, 1);
        rc = kv_fail(kv, err, r);
        if (rc == TXN_ERR_RETRY && err != NULL)
            mark_aborted(t, rc, err->sqlstate, err->message);
    }
    range_conflict_free(&conflict);
    return rc;
}

/* A key-space error of a scan's inner iterator: err set. */
static int inner_failed(txn_iter *it, int n, txn_error *err) {
    int rc = range_to_txn_rc(n);
    if (rc == TXN_ERR_IO) mark_aborted(it->t, rc, rc_sqlstate(rc), rc_message(rc));
    return kv_fail(it->t->db->kv, err, n);
}

/* Reopen a stale scan after its last row at the txn's read timestamp. */
static int iter_reopen(txn_iter *it, txn_error *err) {
    txn *t = it->t;
    range_kv *kv = t->db->kv;
    base_buf lo = {0}; /* owner: this function */
    const uint8_t *s = it->start.data, *e = it->end.data;
    size_t sl = it->start.len, el = it->open_end ? 0 : it->end.len;
    if (it->have_last && !it->reverse) {
        if (base_buf_append(&lo, it->last.data, it->last.len) != 0 ||
            base_buf_append_byte(&lo, 0) != 0) {
            base_buf_free(&lo);
            return fail(err, TXN_ERR_NOMEM);
        }
        s = lo.data;
        sl = lo.len;
    } else if (it->have_last) {
        e = it->last.data;
        el = it->last.len;
    }
    if (it->inner != NULL) it->ops->iter_close(it->inner);
    it->inner = NULL;
    it->batch_n = it->batch_next = 0;
    it->inner_eof = false;
    int r = uncertain_now(t)
                ? kv->ops->iter_open_uncertain(kv, sl ? s : NULL, sl, el ? e : NULL, el,
                                               t->read_ts, t->uncertainty_limit, &t->observed,
                                               it->reverse, &it->uncertain, &it->inner)
                : kv->ops->iter_open(kv, sl ? s : NULL, sl, el ? e : NULL, el, t->read_ts,
                                     it->reverse, &it->inner);
    base_buf_free(&lo);
    if (r != RANGE_OK) {
        it->inner = NULL; /* still stale: the next call tries again */
        return kv_fail(kv, err, r);
    }
    it->ops = kv->ops;
    it->stale = false;
    return TXN_OK;
}

/* Read the next batch of a locking scan (copied: the inner iterator's
** pointers do not outlive its next call). */
static int batch_fill(txn_iter *it, txn_error *err) {
    it->batch_n = it->batch_next = 0;
    base_buf_reset(&it->batch);
    if (it->batch_rows == 0) it->batch_rows = TXN__LOCK_BATCH_ROWS_FIRST;
    while (it->batch_n < it->batch_rows && it->batch.len < TXN__LOCK_BATCH_BYTES_MAX) {
        const uint8_t *k, *v;
        size_t kl, vl;
        int n = it->ops->iter_next(it->inner, &k, &kl, &v, &vl);
        if (n == RANGE_ERR_UNCERTAIN) {
            /* the rows read ahead were not returned: read again above */
            it->batch_n = it->batch_next = 0;
            return uncertainty_restart(it->t, &it->uncertain, err);
        }
        if (n < 0) return inner_failed(it, n, err);
        if (n == 0) {
            it->inner_eof = true;
            break;
        }
        if (it->batch_n == it->batch_cap) {
            size_t ncap = it->batch_cap ? it->batch_cap * 2 : 16;
            size_t *o = base_realloc(it->batch_offs, ncap * 4 * sizeof(*o)); /* owner: it */
            if (o == NULL) return fail(err, TXN_ERR_NOMEM);
            it->batch_offs = o;
            it->batch_cap = ncap;
        }
        size_t *o = &it->batch_offs[4 * it->batch_n];
        o[0] = it->batch.len;
        o[1] = kl;
        if (base_buf_append(&it->batch, k, kl) != 0) return fail(err, TXN_ERR_NOMEM);
        o[2] = it->batch.len;
        o[3] = vl;
        if (vl > 0 && base_buf_append(&it->batch, v, vl) != 0) return fail(err, TXN_ERR_NOMEM);
        it->batch_n++;
    }
    if (it->batch_rows < TXN__LOCK_BATCH_ROWS_MAX) it->batch_rows *= 2;
    return TXN_OK;
}

/* Lock the batch's keys (ascending: a reverse batch backwards). */
static int batch_lock(txn_iter *it, hlc_timestamp *newest, txn_error *err) {
    range_span *keys = base_calloc(it->batch_n, sizeof(*keys)); /* owner: this function */
    if (keys == NULL) return fail(err, TXN_ERR_NOMEM);
    for (size_t i = 0; i < it->batch_n; i++) {
        size_t row = it->reverse ? it->batch_n - 1 - i : i;
        const size_t *o = &it->batch_offs[4 * row];
        keys[i].start = it->batch.data + o[0];
        keys[i].start_len = o[1];
        keys[i].point = true;
    }
    int rc = lock_keys(it->t, keys, it->batch_n, newest, err);
    base_free(keys);
    return rc;
}

/* The next storage row of a scan into it->hk/hv: 1, 0 at the end, or an
** error with err set. A locking scan reads a batch ahead, locks its keys,
** and when a lock found a newer version refreshes and reads the batch
** again at the new timestamp (bounded). */
static int iter_inner_next(txn_iter *it, txn_error *err) {
    int refreshes = 0;
    for (int pass = 0; pass < 2 * TXN__REFRESHES_PER_BATCH_MAX + 4; pass++) {
        if (it->stale) {
            int rc = iter_reopen(it, err);
            if (rc != TXN_OK) return rc;
        }
        if (!it->locking) {
            int n = it->ops->iter_next(it->inner, &it->hk, &it->hklen, &it->hv, &it->hvlen);
            if (n != RANGE_ERR_UNCERTAIN) return n < 0 ? inner_failed(it, n, err) : n;
            /* moves read_ts (bounded) and makes every open scan stale:
            ** this one reopens after its last row above the value */
            int rc = uncertainty_restart(it->t, &it->uncertain, err);
            if (rc != TXN_OK) return rc;
            continue;
        }
        if (it->batch_next < it->batch_n) {
            const size_t *o = &it->batch_offs[4 * it->batch_next++];
            it->hk = it->batch.data + o[0];
            it->hklen = o[1];
            it->hv = o[3] > 0 ? it->batch.data + o[2] : (const uint8_t *)"";
            it->hvlen = o[3];
            return 1;
        }
        if (it->inner_eof) return 0;
        if (refreshes >= TXN__REFRESHES_PER_BATCH_MAX) break;
        int rc = batch_fill(it, err);
        if (rc == TXN_OK && it->stale) continue; /* an uncertainty restart: reopen */
        if (rc == TXN_OK && it->batch_n == 0) return 0;
        hlc_timestamp newest = HLC_ZERO;
        if (rc == TXN_OK) rc = batch_lock(it, &newest, err);
        if (rc != TXN_OK) return rc;
        if (hlc_compare(newest, it->t->read_ts) <= 0) continue; /* serve the batch */
        refreshes++;
        rc = refresh_to(it->t, newest, err); /* makes every open scan stale, this one too */
        if (rc != TXN_OK) return rc;
    }
    char msg[sizeof(it->t->abort_error.message)];
    snprintf(msg, sizeof(msg),
             "restart transaction: the rows of a locking scan kept changing (%d refreshes of "
             "one batch) (SQLSTATE 40001)",
             TXN__REFRESHES_PER_BATCH_MAX);
    err_setf(err, "40001", "%s", msg);
    mark_aborted(it->t, TXN_ERR_RETRY, "40001", msg);
    return TXN_ERR_RETRY;
}

/* -- release -- */

static int span_start_cmp(const void *a, const void *b) {
    const range_span *x = a, *y = b;
    return key_cmp(x->start, x->start_len, y->start, y->start_len);
}

/* Is key written by t (a buffered write, or inside a delete span)? */
static bool written(txn *t, const uint8_t *key, size_t len) {
    const txn__node *n = node_find(t, key, len);
    return (n != NULL && n->state != TXN__NONE) || deleted_by_span(t, key, len);
}

/* The end of t as a lock holder: unregister from the heartbeats and hand
** the resolver a release of its locks (resolve with status over every
** locked key, or those not written when skip_written) and, when its
** heartbeats made a record and end_record, END_TXN(status) first. Many
** keys go as one covering span, unless skip_written (an ambiguous two-phase
** commit's intents must not be resolved). */
static void locks_release(txn *t, int status, hlc_timestamp commit_ts, bool skip_written,
                          bool end_record) {
    txn_db *db = t->db;
    bool have_record = false;
    if (t->live != NULL) live_unregister(db, t->live, &have_record);
    t->live = NULL;
    if (!t->has_meta) return;
    txn__resolution res;
    memset(&res, 0, sizeof(res));
    res.txn_id = t->meta.txn_id;
    res.status = status;
    res.commit_ts = status == RANGE_TXN_COMMITTED ? commit_ts : HLC_ZERO;
    if (end_record && have_record) {
        res.end_record = base_buf_append(&res.anchor, t->meta.anchor, t->meta.anchor_len) == 0;
        res.gc_record = res.end_record;
        res.nonce = t->meta.nonce;
        res.priority = t->meta.priority;
    }
    txn__lockset *ls = &t->locks;
    range_span *keys = ls->n ? base_calloc(ls->n, sizeof(*keys)) : NULL; /* owner: here */
    size_t n = 0;
    for (size_t i = 0; keys != NULL && i < ls->n; i++) {
        const uint8_t *k = ls->bytes.data + ls->offs[i];
        if (skip_written && written(t, k, ls->lens[i])) continue;
        keys[n].start = k;
        keys[n].start_len = ls->lens[i];
        n++;
    }
    if (n > 0) qsort(keys, n, sizeof(*keys), span_start_cmp);
    bool cover = n > TXN__RELEASE_SPANS_MAX && !skip_written;
    size_t n_spans = cover ? 1 : n;
    range_prepare_result *w = &res.where;
    size_t *offs = n_spans ? base_calloc(n_spans, sizeof(*offs)) : NULL; /* owner: here */
    w->spans = n_spans ? base_calloc(n_spans, sizeof(*w->spans)) : NULL; /* owner: res */
    bool ok = n_spans == 0 || (offs != NULL && w->spans != NULL);
    for (size_t i = 0; ok && i < n_spans; i++) {
        const range_span *first = &keys[i], *last = cover ? &keys[n - 1] : &keys[i];
        offs[i] = w->span_bytes.len;
        w->spans[i].start_len = first->start_len;
        w->spans[i].end_len = last->start_len + 1; /* [first, last + 0x00) */
        ok = base_buf_append(&w->span_bytes, first->start, first->start_len) == 0 &&
             base_buf_append(&w->span_bytes, last->start, last->start_len) == 0 &&
             base_buf_append_byte(&w->span_bytes, 0) == 0;
    }
    if (ok) {
        for (size_t i = 0; i < n_spans; i++) {
            w->spans[i].start = w->span_bytes.data + offs[i];
            w->spans[i].end = w->spans[i].start + w->spans[i].start_len;
        }
        w->n_spans = n_spans;
    } else {
        /* out of memory: the locks expire with the record (or without one) */
        BASE_WARN("txn", "release of the locks of txn %016llx: out of memory; left to expire",
                  (unsigned long long)res.txn_id);
        range_prepare_result_free(w);
    }
    base_free(offs);
    base_free(keys);
    if (ls->n > 0 && keys == NULL)
        BASE_WARN("txn", "release of the locks of txn %016llx: out of memory; left to expire",
                  (unsigned long long)res.txn_id);
    resolve_later_res(db, &res);
}

/* ---- range splits (docs/range.md, "Splits and addressing") ---------------------- */

#define TXN__SPLIT_TXN_ATTEMPTS_MAX 8 /* the counter and meta transactions, on 40001 */
#define TXN__FIRST_SPLIT_RANGE_ID 2  /* a counter that was never written: range 1 only */

bool txn_db_has_ranges(txn_db *db) { return db->kv->ops->admin_split != NULL; }

/* The next range id from the replicated counter, in its own transaction. */
static int split_allocate_id(txn_db *db, uint64_t *id, txn_error *err) {
    const uint8_t *key = (const uint8_t *)RANGE_ID_COUNTER_KEY;
    base_buf v = {0}; /* owner: this function */
    int rc = TXN_ERR_UNAVAILABLE;
    for (int attempt = 0; attempt < TXN__SPLIT_TXN_ATTEMPTS_MAX; attempt++) {
        txn *t = NULL;
        uint64_t next = TXN__FIRST_SPLIT_RANGE_ID;
        uint8_t enc[RANGE_ID_COUNTER_SIZE];
        if (err != NULL) memset(err, 0, sizeof(*err));
        if ((rc = txn_begin(db, NULL, &t)) != TXN_OK) {
            txn_error_set(err, rc);
            break;
        }
        rc = txn_get(t, key, RANGE_ID_COUNTER_KEY_LEN, &v, err);
        if (rc == TXN_OK && range_id_counter_decode(v.data, v.len, &next) != RANGE_OK) {
            txn_rollback(t);
            err_setf(err, "XX001", "the cluster's range-id counter is corrupt");
            rc = TXN_ERR_IO;
            break;
        }
        if (rc != TXN_OK && rc != TXN_NOT_FOUND) {
            txn_rollback(t);
            break;
        }
        if (next == UINT64_MAX) {
            txn_rollback(t);
            err_setf(err, "54000", "range ids exhausted");
            rc = TXN_ERR_LIMIT;
            break;
        }
        range_id_counter_encode(next + 1, enc);
        rc = txn_put(t, key, RANGE_ID_COUNTER_KEY_LEN, enc, sizeof(enc), err);
        if (rc != TXN_OK) {
            txn_rollback(t);
            break;
        }
        rc = txn_commit(t, NULL, err);
        if (rc == TXN_OK) *id = next;
        if (rc != TXN_ERR_RETRY) break;
    }
    base_buf_free(&v);
    return rc;
}

/* Record d in meta unless meta already holds a newer view (range_meta_replaces). */
static int split_meta_put(txn *t, const range_descriptor *d, base_buf *key, base_buf *val,
                          txn_error *err) {
    range_descriptor stored;
    bool have = false;
    int rc = range_meta_key(d, key) == RANGE_OK ? TXN_OK : TXN_ERR_NOMEM;
    if (rc == TXN_OK) rc = txn_get(t, key->data, key->len, val, err);
    if (rc == TXN_NOT_FOUND) {
        rc = TXN_OK;
    } else if (rc == TXN_OK) {
        /* an unreadable entry is replaced: ours is read from a replica */
        have = range_descriptor_decode(val->data, val->len, &stored) == RANGE_OK;
    }
    if (rc != TXN_OK) return rc;
    bool write = range_meta_replaces(have ? &stored : NULL, d);
    if (have) range_descriptor_free(&stored);
    if (!write) return TXN_OK;
    base_buf_reset(val);
    if (range_descriptor_encode(d, val) != RANGE_OK) return fail(err, TXN_ERR_NOMEM);
    return txn_put(t, key->data, key->len, val->data, val->len, err);
}

/* One meta update of an admin command: body's writes in a transaction. */
typedef int (*admin_meta_body)(txn *t, const range_descriptor *left,
                               const range_descriptor *right, base_buf *key, base_buf *val,
                               txn_error *err);

/* Run body in a transaction, again while the commit (and, with
** retry_body, body itself) answers TXN_ERR_RETRY (bounded). */
static int admin_record_meta(txn_db *db, admin_meta_body body, bool retry_body,
                             const range_descriptor *left, const range_descriptor *right,
                             txn_error *err) {
    base_buf key = {0}, val = {0}; /* owner: this function */
    int rc = TXN_ERR_UNAVAILABLE;
    for (int attempt = 0; attempt < TXN__SPLIT_TXN_ATTEMPTS_MAX; attempt++) {
        txn *t = NULL;
        if (err != NULL) memset(err, 0, sizeof(*err));
        if ((rc = txn_begin(db, NULL, &t)) != TXN_OK) {
            txn_error_set(err, rc);
            break;
        }
        rc = body(t, left, right, &key, &val, err);
        if (rc != TXN_OK) {
            txn_rollback(t);
            if (retry_body && rc == TXN_ERR_RETRY) continue;
            break;
        }
        rc = txn_commit(t, NULL, err);
        if (rc != TXN_ERR_RETRY) break;
    }
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

/* Meta after a split: left (NULL: not known) and right. */
static int split_meta_update(txn *t, const range_descriptor *left, const range_descriptor *right,
                             base_buf *key, base_buf *val, txn_error *err) {
    int rc = TXN_OK;
    if (left != NULL) rc = split_meta_put(t, left, key, val, err);
    if (rc == TXN_OK) rc = split_meta_put(t, right, key, val, err);
    return rc;
}

/* Whether kv can run the admin command (have_op) and key is a possible
** boundary; TXN_OK, else the error (set in err). */
static int admin_check(bool have_op, const char *doing, const uint8_t *key, size_t key_len,
                       txn_error *err) {
    if (!have_op) {
        err_setf(err, "0A000", "%s ranges needs a cluster: this node's key space is one "
                               "local store", doing);
        return TXN_ERR_UNSUPPORTED;
    }
    if (key == NULL || key_len == 0 || key_len > RANGE_DESC_KEY_MAX) return fail(err, TXN_ERR_INVALID);
    return TXN_OK;
}

/* The txn code for range answer r of an admin command, with kv's detail in err. */
static int admin_failed(range_kv *kv, int r, const char *what, txn_error *err) {
    char detail[256];
    if (kv->ops->last_error == NULL || !kv->ops->last_error(kv, detail, sizeof(detail)))
        base_strlcpy(detail, "no detail", sizeof(detail));
    int rc = range_to_txn_rc(r);
    err_setf(err, rc_sqlstate(rc), "%s: %s", what, detail);
    return rc;
}

/* ---- the atomic split (docs/decisions/010-atomic-meta.md) ----------------------
** The split is the commit trigger of a transaction T whose record lives in
** the left-hand side: T prepares meta(L') and meta(R') as intents in meta
** (two-phase commit's PREPARE, the record created PENDING at its anchor),
** the split entry carries T and, applied, sets the record COMMITTED in the
** split's own batch (refused: ABORTED). END_TXN(ABORTED) then tells which
** (it answers COMMITTED when the split won), the intents are resolved that
** way and the record collected. A coordinator that dies anywhere leaves a
** record that pushers settle as for any transaction (PENDING expires and is
** aborted, which also refuses a split still in flight): meta holds exactly
** the splits that happened. */

#define TXN__SPLIT_ATOMIC_ATTEMPTS_MAX 4 /* describe + prepare + split, on a race */
#define TXN__SPLIT_PRIORITY INT64_MAX   /* no lock request out-prioritizes it */

/* The record's anchor: a key of the left-hand side [d->start, key) (the
** range's start; 0x00 for the first range). false when there is none. */
static bool split_anchor(const range_descriptor *d, const uint8_t *key, size_t key_len,
                         const uint8_t **anchor, size_t *anchor_len) {
    static const uint8_t lowest[1] = {0};
    *anchor = d->start_len > 0 ? d->start_key : lowest;
    *anchor_len = d->start_len > 0 ? d->start_len : 1;
    return key_cmp(*anchor, *anchor_len, key, key_len) < 0;
}

/* L' and R' of splitting d at key into id (owner: caller, both freed). */
static int split_shapes(const range_descriptor *d, const uint8_t *key, size_t key_len,
                        uint64_t id, range_descriptor *l, range_descriptor *r) {
    memset(l, 0, sizeof(*l));
    memset(r, 0, sizeof(*r));
    uint8_t *lend = base_malloc(key_len);  /* owner: l */
    uint8_t *rstart = base_malloc(key_len); /* owner: r */
    int rc = lend != NULL && rstart != NULL ? RANGE_OK : RANGE_ERR_NOMEM;
    if (rc == RANGE_OK) rc = range_descriptor_copy(l, d);
    if (rc == RANGE_OK) rc = range_descriptor_copy(r, d);
    if (rc != RANGE_OK) {
        base_free(lend);
        base_free(rstart);
        range_descriptor_free(l);
        range_descriptor_free(r);
        return TXN_ERR_NOMEM;
    }
    memcpy(lend, key, key_len);
    memcpy(rstart, key, key_len);
    base_free(l->end_key);
    l->end_key = lend;
    l->end_len = key_len;
    base_free(r->start_key);
    r->start_key = rstart;
    r->start_len = key_len;
    l->generation = r->generation = d->generation + 1;
    r->range_id = id;
    return TXN_OK;
}

/* The meta writes of L' and R' into req (sorted by key; bytes in *bytes,
** offsets fixed up after the last append). */
static int split_meta_writes(const range_descriptor *l, const range_descriptor *r,
                             base_buf *bytes, range_write w[2]) {
    const range_descriptor *d[2] = {l, r};
    size_t off[2][2], len[2][2];
    base_buf tmp = {0}; /* owner: this function */
    int rc = TXN_OK;
    for (int i = 0; i < 2 && rc == TXN_OK; i++) {
        off[i][0] = bytes->len;
        rc = range_meta_key(d[i], &tmp) == RANGE_OK &&
                     base_buf_append(bytes, tmp.data, tmp.len) == 0
                 ? TXN_OK
                 : TXN_ERR_NOMEM;
        len[i][0] = tmp.len;
        off[i][1] = bytes->len;
        base_buf_reset(&tmp);
        if (rc == TXN_OK && range_descriptor_encode(d[i], &tmp) != RANGE_OK) rc = TXN_ERR_NOMEM;
        if (rc == TXN_OK && base_buf_append(bytes, tmp.data, tmp.len) != 0) rc = TXN_ERR_NOMEM;
        len[i][1] = tmp.len;
        base_buf_reset(&tmp);
    }
    base_buf_free(&tmp);
    if (rc != TXN_OK) return rc;
    for (int i = 0; i < 2; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].key = bytes->data + off[i][0];
        w[i].key_len = len[i][0];
        w[i].value = bytes->data + off[i][1];
        w[i].value_len = len[i][1];
    }
    if (key_cmp(w[0].key, w[0].key_len, w[1].key, w[1].key_len) > 0) {
        range_write t = w[0];
        w[0] = w[1];
        w[1] = t;
    }
    return TXN_OK;
}

/* Resolve the split transaction's intents with its outcome now (meta is
** current when the split call returns), else later; then its record goes. */
static void split_resolve(txn_db *db, const range_txn_meta *meta, int status,
                          hlc_timestamp ts, range_prepare_result *where) {
    txn__resolution res;
    memset(&res, 0, sizeof(res));
    res.txn_id = meta->txn_id;
    res.status = status;
    res.commit_ts = ts;
    res.where = *where;
    memset(where, 0, sizeof(*where));
    res.gc_record = base_buf_append(&res.anchor, meta->anchor, meta->anchor_len) == 0;
    res.attempts = 1;
    if (resolve_once(db, &res, NULL)) {
        resolution_free(&res);
        return;
    }
    res.not_before_ns = base_monotonic_ns() + resolve_backoff_ms(1) * 1000000;
    resolve_later_res(db, &res);
}

/* PREPARE of a split's or merge's meta transaction (what: "split" or
** "merge"; meta->anchor set by the caller): meta gets its id, nonce,
** priority and read_ts, then its intents w[0..n_writes) (sorted) with the record PENDING at
** the anchor. true when prepared (*prepared then resolved by the caller);
** false when not: *rc TXN_OK with *raced (a conflict in meta or a pusher:
** a fresh attempt may do) or the error with err set, its intents aborted. */
static bool meta_txn_prepare(txn_db *db, const char *what, range_write *w, size_t n_writes,
                             range_txn_meta *meta, range_prepare_result *prepared, bool *raced,
                             int *rc, txn_error *err) {
    range_kv *kv = db->kv;
    range_conflict conflict; /* owner: this function */
    memset(&conflict, 0, sizeof(conflict));
    meta->txn_id = db_random_nonzero(db);
    meta->nonce = db_random_nonzero(db);
    meta->priority = TXN__SPLIT_PRIORITY;
    meta->read_ts = hlc_now(db->clock);
    range_commit_request req;
    memset(&req, 0, sizeof(req));
    req.txn_id = meta->txn_id;
    req.read_ts = meta->read_ts;
    req.writes = w;
    req.write_count = n_writes;
    int kr = kv->ops->prepare(kv, meta, &req, prepared, &conflict);
    range_conflict_free(&conflict);
    if (kr == RANGE_OK) return true;
    *raced = kr == RANGE_ERR_CONFLICT || kr == RANGE_ERR_ABORTED || kr == RANGE_ERR_PUSHED ||
             kr == RANGE_ERR_INTENT;
    if (*raced) {
        *rc = TXN_OK;
    } else {
        char why[256];
        kv_detail(kv, why, sizeof(why));
        *rc = range_to_txn_rc(kr);
        err_setf(err, rc_sqlstate(*rc), "the %s's meta transaction could not prepare: %s", what,
                 why);
    }
    hlc_timestamp ignored;
    bool settled;
    /* nothing can commit it (no split or merge carried it): ABORTED, intents go */
    if (!abort_distributed(db, meta, HLC_ZERO, &ignored, &settled))
        split_resolve(db, meta, RANGE_TXN_ABORTED, HLC_ZERO, prepared);
    return false;
}

/* An unknown outcome of a meta transaction: the resolver learns it from the
** record (END_TXN(ABORTED): it fences a commit still in flight, or finds
** COMMITTED) and resolves every intent in *prepared with it (it takes
** *prepared, which is zeroed), so meta converges without a reader pushing
** each intent. No anchor copy (NOMEM): left to readers, as before. */
static void meta_txn_settle_later(txn_db *db, const range_txn_meta *meta,
                                  range_prepare_result *prepared) {
    txn__resolution res;
    memset(&res, 0, sizeof(res));
    res.txn_id = meta->txn_id;
    res.status = RANGE_TXN_ABORTED;
    res.commit_ts = prepared->commit_ts; /* a COMMITTED record without its own */
    res.nonce = meta->nonce;
    res.priority = meta->priority;
    if (base_buf_append(&res.anchor, meta->anchor, meta->anchor_len) != 0) {
        BASE_WARN("txn", "meta transaction %016llx of unknown outcome: out of memory; its "
                  "intents are left to readers", (unsigned long long)meta->txn_id);
        resolution_free(&res);
        return;
    }
    res.end_record = res.gc_record = res.learn_outcome = true;
    res.where = *prepared;
    memset(prepared, 0, sizeof(*prepared));
    res.attempts = 1; /* the settle's END_TXN failed once already */
    res.not_before_ns = base_monotonic_ns() + resolve_backoff_ms(1) * 1000000;
    resolve_later_res(db, &res);
}

/* After the split's or merge's admin call (what as above; detail its
** error, "" when none): the record says what happened, and END_TXN(ABORTED)
** also fences an admin call still in flight. TXN_OK with *committed, the
** intents resolved with that outcome; else TXN_ERR_AMBIGUOUS with err set
** (neither for sure: the record decides, readers of meta push it). */
static int meta_txn_settle(txn_db *db, const char *what, const range_txn_meta *meta,
                           range_prepare_result *prepared, const char *detail, bool *committed,
                           txn_error *err) {
    hlc_timestamp ts = HLC_ZERO;
    bool settled = false;
    *committed = abort_distributed(db, meta, prepared->commit_ts, &ts, &settled);
    if (*committed) {
        split_resolve(db, meta, RANGE_TXN_COMMITTED, ts, prepared);
        return TXN_OK;
    }
    if (!settled) {
        err_setf(err, "40003",
                 "the %s's outcome is unknown: it may or may not have applied (%s "
                 "transaction %016llx: %s)",
                 what, what, (unsigned long long)meta->txn_id,
                 detail[0] != '\0' ? detail : "no detail");
        meta_txn_settle_later(db, meta, prepared);
        return TXN_ERR_AMBIGUOUS;
    }
    split_resolve(db, meta, RANGE_TXN_ABORTED, HLC_ZERO, prepared);
    return TXN_OK;
}

/* One attempt of the atomic split of d's range at key into id. TXN_OK with
** *outcome COMMITTED (the split applied: *left, *right set) or ABORTED (it
** did not: *raced when the range moved or a pusher aborted it, so a fresh
** attempt may succeed; *boundary when the key became a boundary), or an
** error with err set (the split's fate then rests with the record). */
static int split_atomic_once(txn_db *db, const range_descriptor *d, const uint8_t *key,
                             size_t key_len, uint64_t id, int *outcome, bool *raced,
                             bool *boundary, range_descriptor *left, range_descriptor *right,
                             txn_error *err) {
    range_kv *kv = db->kv;
    range_descriptor l, r;
    base_buf bytes = {0};         /* owner: this function */
    range_prepare_result prepared; /* owner: this function until resolved */
    memset(&prepared, 0, sizeof(prepared));
    range_write w[2];
    range_txn_meta meta;
    memset(&meta, 0, sizeof(meta));
    *outcome = RANGE_TXN_ABORTED;
    *raced = *boundary = false;
    if (!split_anchor(d, key, key_len, &meta.anchor, &meta.anchor_len))
        return fail(err, TXN_ERR_INVALID);
    int rc = split_shapes(d, key, key_len, id, &l, &r);
    if (rc != TXN_OK) return fail(err, rc);
    rc = split_meta_writes(&l, &r, &bytes, w);
    if (rc != TXN_OK) {
        fail(err, rc);
        goto done;
    }
    /* PREPARE: meta's intents, the record PENDING at the anchor */
    if (!meta_txn_prepare(db, "split", w, 2, &meta, &prepared, raced, &rc, err)) goto done;
    /* the split, with the record heartbeat while it waits for its gate */
    range_split_txn stx = {meta.txn_id, meta.anchor, meta.anchor_len, prepared.commit_ts,
                           d->generation};
    txn__live *live = live_register(db, &meta);
    int sr = kv->ops->admin_split_txn(kv, key, key_len, id, &stx, left, right);
    char detail[256] = "";
    if (sr != RANGE_OK) kv_detail(kv, detail, sizeof(detail));
    if (live != NULL) live_unregister(db, live, NULL);
    /* the record says what happened; END_TXN(ABORTED) also fences a split
    ** still in flight (a lost answer): it can no longer apply */
    bool committed = false;
    rc = meta_txn_settle(db, "split", &meta, &prepared, detail, &committed, err);
    if (rc != TXN_OK) goto done;
    if (committed) {
        *outcome = RANGE_TXN_COMMITTED;
        if (sr != RANGE_OK) {
            /* applied, but the answer was lost: the shapes it applied */
            range_descriptor_free(left);
            range_descriptor_free(right);
            *left = l;
            *right = r;
            memset(&l, 0, sizeof(l));
            memset(&r, 0, sizeof(r));
        }
        goto done;
    }
    if (sr == RANGE_OK) {
        *boundary = true; /* a no-op answer: the key is a boundary now */
        rc = TXN_OK;
    } else if (sr == RANGE_ERR_ABORTED) {
        *raced = true;
        rc = TXN_OK;
    } else {
        /* the record is ABORTED: whatever the answer, the split did not
        ** happen and never will (not ambiguous) */
        int trc = sr == RANGE_ERR_AMBIGUOUS ? TXN_ERR_UNAVAILABLE : range_to_txn_rc(sr);
        err_setf(err, rc_sqlstate(trc), "the range could not be split: %s", detail);
        rc = trc;
    }
    range_descriptor_free(left);
    range_descriptor_free(right);
done:
    range_prepare_result_free(&prepared);
    range_descriptor_free(&l);
    range_descriptor_free(&r);
    base_buf_free(&bytes);
    return rc;
}

/* The atomic split (above), again while it races (bounded). TXN_OK with
** *done (left and right set) or !*done (the key is a boundary already: the
** plain path answers it); else the error. */
static int split_atomic(txn_db *db, const uint8_t *key, size_t key_len, uint64_t id,
                        bool *done, range_descriptor *left, range_descriptor *right,
                        txn_error *err) {
    range_kv *kv = db->kv;
    *done = false;
    for (int attempt = 0; attempt < TXN__SPLIT_ATOMIC_ATTEMPTS_MAX; attempt++) {
        range_descriptor d;
        int kr = kv->ops->describe(kv, key, key_len, &d);
        if (kr != RANGE_OK) return admin_failed(kv, kr, "the range could not be split", err);
        bool at_start = key_cmp(key, key_len, d.start_key, d.start_len) == 0;
        bool inside = range_descriptor_contains(&d, key, key_len);
        int outcome = RANGE_TXN_ABORTED;
        bool raced = !inside, boundary = at_start;
        int rc = TXN_OK;
        if (!at_start && inside)
            rc = split_atomic_once(db, &d, key, key_len, id, &outcome, &raced, &boundary,
                                   left, right, err);
        range_descriptor_free(&d);
        if (rc != TXN_OK && rc != TXN_ERR_RETRY) return rc;
        if (rc == TXN_OK && outcome == RANGE_TXN_COMMITTED) {
            *done = true;
            return TXN_OK;
        }
        if (boundary) return TXN_OK;
        if (err != NULL) memset(err, 0, sizeof(*err));
        BASE_DEBUG("txn", "split at r%llu: attempt %d raced (the range changed, or its "
                   "transaction was pushed); again", (unsigned long long)id, attempt + 1);
    }
    err_setf(err, "40001",
             "restart transaction: the split raced with other changes of the range %d times "
             "(SQLSTATE 40001)", TXN__SPLIT_ATOMIC_ATTEMPTS_MAX);
    return TXN_ERR_RETRY;
}

int txn_db_split_at(txn_db *db, const uint8_t *key, size_t key_len, txn_split_result *out,
                    txn_error *err) {
    range_descriptor left, right;
    memset(&left, 0, sizeof(left));
    memset(&right, 0, sizeof(right));
    memset(out, 0, sizeof(*out));
    range_kv *kv = db->kv;
    int rc = admin_check(kv->ops->admin_split != NULL, "splitting", key, key_len, err);
    if (rc != TXN_OK) return rc;
    uint64_t id = 0;
    rc = split_allocate_id(db, &id, err);
    if (rc != TXN_OK) return rc;
    if (kv->ops->describe != NULL && kv->ops->admin_split_txn != NULL &&
        kv->ops->prepare != NULL && kv->ops->end_txn != NULL && kv->ops->resolve != NULL) {
        bool done = false;
        rc = split_atomic(db, key, key_len, id, &done, &left, &right, err);
        if (rc != TXN_OK) return rc;
        if (done) {
            out->left_range_id = left.range_id;
            out->right_range_id = right.range_id;
            out->created = right.range_id == id;
            range_descriptor_free(&left);
            range_descriptor_free(&right);
            return TXN_OK;
        }
        /* a boundary already: the plain path answers it (and refreshes meta) */
    }
    int r = kv->ops->admin_split(kv, key, key_len, id, &left, &right);
    if (r != RANGE_OK) return admin_failed(kv, r, "the range could not be split", err);
    out->left_range_id = left.range_id;
    out->right_range_id = right.range_id;
    out->created = right.range_id == id;
    /* best effort: routing does not depend on it (range_kv answers carry
    ** the descriptors), and a later split or server/'s repair rewrites it */
    txn_error merr = {{0}, {0}};
    int mrc = admin_record_meta(db, split_meta_update, false,
                                left.range_id != 0 ? &left : NULL, &right, &merr);
    if (mrc != TXN_OK)
        BASE_WARN("txn", "split at r%llu/r%llu: meta not updated (%d: %s)",
                  (unsigned long long)left.range_id, (unsigned long long)right.range_id, mrc,
                  merr.message);
    range_descriptor_free(&left);
    range_descriptor_free(&right);
    return TXN_OK;
}

/* ---- range merges (docs/range.md, "Merges") ------------------------------------ */

/* Meta after a merge: delete the left's old entry (its old end key) unless
** it holds a newer view, and record the merged range (split_meta_put's
** rule: range_meta_replaces also replaces the subsumed right's entry). */
static int merge_meta_update(txn *t, const range_descriptor *left, const range_descriptor *right,
                             base_buf *key, base_buf *val, txn_error *err) {
    /* the old left ended at right's start */
    range_descriptor old_end;
    memset(&old_end, 0, sizeof(old_end));
    old_end.range_id = left->range_id;
    old_end.end_key = right->start_key;
    old_end.end_len = right->start_len;
    int rc = range_meta_key(&old_end, key) == RANGE_OK ? TXN_OK : TXN_ERR_NOMEM;
    if (rc == TXN_OK) rc = txn_get(t, key->data, key->len, val, err);
    if (rc == TXN_OK) {
        range_descriptor stored;
        bool stale = true; /* an unreadable entry goes too */
        if (range_descriptor_decode(val->data, val->len, &stored) == RANGE_OK) {
            stale = stored.range_id == left->range_id && stored.generation < left->generation;
            range_descriptor_free(&stored);
        }
        if (stale) rc = txn_delete(t, key->data, key->len, err);
    } else if (rc == TXN_NOT_FOUND) {
        rc = TXN_OK;
    }
    if (rc != TXN_OK) return rc;
    return split_meta_put(t, left, key, val, err);
}

/* ---- the atomic merge (docs/decisions/010-atomic-meta.md) ----------------------
** As the atomic split: the MERGE entry in L's log is the commit trigger of
** T, whose record lives in L (at L's start) and whose intents in meta
** delete L's old entry (its end key was R's start) and put the merged
** descriptor M (its key is R's entry's: overwritten). MERGE applies only
** while the record is PENDING and writes it COMMITTED in its batch; a
** refused MERGE writes it ABORTED, and an abandoned merge (FENCE, UNFREEZE)
** leaves it to the END_TXN(ABORTED) below (or a pusher): meta holds exactly
** the merges that happened. */

/* M = [l.start, r.end) at max(l.gen, r.gen) + 1 with l's id and replicas,
** as L's replicas compute it at apply (owner: caller, freed). */
static int merge_shape(const range_descriptor *l, const range_descriptor *r,
                       range_descriptor *m) {
    memset(m, 0, sizeof(*m));
    uint8_t *end = r->end_len > 0 ? base_malloc(r->end_len) : NULL; /* owner: m */
    if ((r->end_len > 0 && end == NULL) || range_descriptor_copy(m, l) != RANGE_OK) {
        base_free(end);
        range_descriptor_free(m);
        return TXN_ERR_NOMEM;
    }
    if (end != NULL) memcpy(end, r->end_key, r->end_len);
    base_free(m->end_key);
    m->end_key = end;
    m->end_len = r->end_len;
    m->generation = (l->generation > r->generation ? l->generation : r->generation) + 1;
    return TXN_OK;
}

/* The meta writes of a merge into w (sorted by key; bytes in *bytes): a
** tombstone at L's old entry, M at its own (R's). */
static int merge_meta_writes(const range_descriptor *l, const range_descriptor *m,
                             base_buf *bytes, range_write w[2]) {
    base_buf tmp = {0}; /* owner: this function */
    size_t off_l = bytes->len, len_l = 0, off_m = 0, len_m = 0, off_v = 0, len_v = 0;
    int rc = range_meta_key(l, &tmp) == RANGE_OK &&
                     base_buf_append(bytes, tmp.data, tmp.len) == 0
                 ? TXN_OK
                 : TXN_ERR_NOMEM;
    len_l = tmp.len;
    off_m = bytes->len;
    if (rc == TXN_OK && (range_meta_key(m, &tmp) != RANGE_OK ||
                         base_buf_append(bytes, tmp.data, tmp.len) != 0))
        rc = TXN_ERR_NOMEM;
    len_m = tmp.len;
    off_v = bytes->len;
    base_buf_reset(&tmp);
    if (rc == TXN_OK && (range_descriptor_encode(m, &tmp) != RANGE_OK ||
                         base_buf_append(bytes, tmp.data, tmp.len) != 0))
        rc = TXN_ERR_NOMEM;
    len_v = tmp.len;
    base_buf_free(&tmp);
    if (rc != TXN_OK) return rc;
    memset(w, 0, 2 * sizeof(w[0]));
    w[0].key = bytes->data + off_l;
    w[0].key_len = len_l;
    w[0].tombstone = true;
    w[1].key = bytes->data + off_m;
    w[1].key_len = len_m;
    w[1].value = bytes->data + off_v;
    w[1].value_len = len_v;
    if (key_cmp(w[0].key, w[0].key_len, w[1].key, w[1].key_len) > 0) {
        range_write t = w[0];
        w[0] = w[1];
        w[1] = t;
    }
    return TXN_OK;
}

/* One attempt of the atomic merge of r (starting at key) into l. TXN_OK
** with *outcome COMMITTED (the merge applied: *left = M, *right = R's last
** descriptor) or ABORTED (it did not: *raced when a range moved or a
** pusher aborted it, so a fresh attempt may succeed; *gone when key is no
** boundary any more), or an error with err set. */
static int merge_atomic_once(txn_db *db, const range_descriptor *l, const range_descriptor *r,
                             const uint8_t *key, size_t key_len, int *outcome, bool *raced,
                             bool *gone, range_descriptor *left, range_descriptor *right,
                             txn_error *err) {
    range_kv *kv = db->kv;
    range_descriptor m;
    base_buf bytes = {0};          /* owner: this function */
    range_prepare_result prepared; /* owner: this function until resolved */
    memset(&prepared, 0, sizeof(prepared));
    range_write w[2];
    range_txn_meta meta;
    memset(&meta, 0, sizeof(meta));
    *outcome = RANGE_TXN_ABORTED;
    *raced = *gone = false;
    if (!split_anchor(l, key, key_len, &meta.anchor, &meta.anchor_len))
        return fail(err, TXN_ERR_INVALID);
    int rc = merge_shape(l, r, &m);
    if (rc != TXN_OK) return fail(err, rc);
    rc = merge_meta_writes(l, &m, &bytes, w);
    if (rc != TXN_OK) {
        fail(err, rc);
        goto done;
    }
    /* PREPARE: meta's intents, the record PENDING at the anchor (in L) */
    if (!meta_txn_prepare(db, "merge", w, 2, &meta, &prepared, raced, &rc, err)) goto done;
    /* the merge, with the record heartbeat while it runs */
    range_merge_txn mtx = {meta.txn_id,    meta.anchor,   meta.anchor_len,
                           prepared.commit_ts, l->generation, r->generation};
    txn__live *live = live_register(db, &meta);
    int mr = kv->ops->admin_merge_txn(kv, key, key_len, &mtx, left, right);
    char detail[256] = "";
    if (mr != RANGE_OK) kv_detail(kv, detail, sizeof(detail));
    if (live != NULL) live_unregister(db, live, NULL);
    /* the record says what happened; END_TXN(ABORTED) also fences a MERGE
    ** still in flight (its apply then finds the record ABORTED) */
    bool committed = false;
    rc = meta_txn_settle(db, "merge", &meta, &prepared, detail, &committed, err);
    if (rc != TXN_OK) {
        range_descriptor_free(left);
        range_descriptor_free(right);
        goto done;
    }
    if (committed) {
        *outcome = RANGE_TXN_COMMITTED;
        if (mr != RANGE_OK) {
            /* applied, but the answer was lost: the shapes it applied */
            range_descriptor_free(left);
            range_descriptor_free(right);
            *left = m;
            memset(&m, 0, sizeof(m));
            if (range_descriptor_copy(right, r) != RANGE_OK) memset(right, 0, sizeof(*right));
        }
        goto done;
    }
    if (mr == RANGE_OK || mr == RANGE_ERR_ABORTED) {
        /* refused (a range moved, a pusher), or merged by another: again */
        *raced = true;
        rc = TXN_OK;
    } else if (mr == RANGE_NOT_FOUND) {
        *gone = true;
        rc = TXN_OK;
    } else {
        /* the record is ABORTED: the merge did not happen and never will */
        int trc = mr == RANGE_ERR_AMBIGUOUS ? TXN_ERR_UNAVAILABLE : range_to_txn_rc(mr);
        err_setf(err, rc_sqlstate(trc), "the ranges could not be merged: %s", detail);
        rc = trc;
    }
    range_descriptor_free(left);
    range_descriptor_free(right);
done:
    range_prepare_result_free(&prepared);
    range_descriptor_free(&m);
    base_buf_free(&bytes);
    return rc;
}

#define TXN__MERGE_DESCRIBES_MAX 4 /* looks at the two ranges per attempt */

/* Same voter sets (a merge needs them co-located). */
static bool merge_same_voters(const range_descriptor *a, const range_descriptor *b) {
    if (a->n_replicas != b->n_replicas) return false;
    for (size_t i = 0; i < a->n_replicas; i++) {
        bool found = false;
        for (size_t k = 0; k < b->n_replicas && !found; k++)
            found = a->replicas[i] == b->replicas[k];
        if (!found) return false;
    }
    return true;
}

/* The atomic merge (above), again while it races (bounded). TXN_OK with
** *done (left and right set), or !*done with *gone (key is no boundary:
** nothing to merge) or not (the plain path answers it: a shape it refuses
** with its own error); else the error. */
static int merge_atomic(txn_db *db, const uint8_t *key, size_t key_len, bool *done, bool *gone,
                        range_descriptor *left, range_descriptor *right, txn_error *err) {
    range_kv *kv = db->kv;
    *done = *gone = false;
    for (int attempt = 0; attempt < TXN__SPLIT_ATOMIC_ATTEMPTS_MAX; attempt++) {
        range_descriptor l, r;
        memset(&l, 0, sizeof(l));
        memset(&r, 0, sizeof(r));
        bool boundary = false;
        /* a replica answers its own view: a stale cache may ask one that
        ** no longer holds the key (its answer is installed: look again) */
        for (int look = 0; look < TXN__MERGE_DESCRIBES_MAX && !boundary; look++) {
            range_descriptor_free(&l);
            range_descriptor_free(&r);
            int kr = kv->ops->describe(kv, key, key_len, &r);
            if (kr == RANGE_OK) kr = kv->ops->describe_below(kv, key, key_len, &l);
            if (kr != RANGE_OK) {
                range_descriptor_free(&l);
                range_descriptor_free(&r);
                return admin_failed(kv, kr, "the ranges could not be merged", err);
            }
            boundary = key_cmp(r.start_key, r.start_len, key, key_len) == 0 && l.end_len > 0 &&
                       key_cmp(l.end_key, l.end_len, key, key_len) == 0;
        }
        int outcome = RANGE_TXN_ABORTED;
        bool raced = false, plain = !boundary || !merge_same_voters(&l, &r);
        int rc = TXN_OK;
        if (!plain)
            rc = merge_atomic_once(db, &l, &r, key, key_len, &outcome, &raced, gone, left, right,
                                   err);
        range_descriptor_free(&l);
        range_descriptor_free(&r);
        if (rc != TXN_OK) return rc;
        if (outcome == RANGE_TXN_COMMITTED) {
            *done = true;
            return TXN_OK;
        }
        if (plain || *gone) return TXN_OK;
        if (err != NULL) memset(err, 0, sizeof(*err));
        BASE_DEBUG("txn", "merge at a boundary: attempt %d raced (a range changed, or its "
                   "transaction was pushed); again", attempt + 1);
    }
    err_setf(err, "40001",
             "restart transaction: the merge raced with other changes of the ranges %d times "
             "(SQLSTATE 40001)", TXN__SPLIT_ATOMIC_ATTEMPTS_MAX);
    return TXN_ERR_RETRY;
}

int txn_db_merge_at(txn_db *db, const uint8_t *key, size_t key_len, txn_merge_result *out,
                    txn_error *err) {
    range_descriptor left, right;
    memset(&left, 0, sizeof(left));
    memset(&right, 0, sizeof(right));
    memset(out, 0, sizeof(*out));
    range_kv *kv = db->kv;
    int rc = admin_check(kv->ops->admin_merge != NULL, "merging", key, key_len, err);
    if (rc != TXN_OK) return rc;
    if (kv->ops->describe != NULL && kv->ops->describe_below != NULL &&
        kv->ops->admin_merge_txn != NULL && kv->ops->prepare != NULL &&
        kv->ops->end_txn != NULL && kv->ops->resolve != NULL) {
        bool done = false, gone = false;
        rc = merge_atomic(db, key, key_len, &done, &gone, &left, &right, err);
        if (rc != TXN_OK) return rc;
        if (gone) return TXN_OK; /* not a boundary: nothing to merge */
        if (done) {
            out->left_range_id = left.range_id;
            out->right_range_id = right.range_id;
            out->merged = true;
            range_descriptor_free(&left);
            range_descriptor_free(&right);
            return TXN_OK;
        }
        /* not a boundary or not co-located as described: the plain path
        ** answers it (its own looks and errors; meta after it as before) */
    }
    int r = kv->ops->admin_merge(kv, key, key_len, &left, &right);
    if (r == RANGE_NOT_FOUND) return TXN_OK; /* not a boundary: nothing to merge */
    if (r != RANGE_OK) return admin_failed(kv, r, "the ranges could not be merged", err);
    out->left_range_id = left.range_id;
    out->right_range_id = right.range_id;
    out->merged = true;
    /* best effort, as for splits: routing does not depend on meta, and
    ** server/'s repair drops entries of ranges that no longer exist */
    txn_error merr = {{0}, {0}};
    int mrc = admin_record_meta(db, merge_meta_update, true, &left, &right, &merr);
    if (mrc != TXN_OK)
        BASE_WARN("txn", "merge of r%llu into r%llu: meta not updated (%d: %s)",
                  (unsigned long long)right.range_id, (unsigned long long)left.range_id, mrc,
                  merr.message);
    range_descriptor_free(&left);
    range_descriptor_free(&right);
    return TXN_OK;
}

/* ---- atomic replica changes (docs/decisions/010-atomic-meta.md, item 8) ------
** Every Raft configuration change of a range (add learner, promote, remove)
** applies at generation + 1 with the voters as its replicas, so each step is
** the commit trigger of its own transaction T: T's one intent puts that
** descriptor at meta(range), its record lives at the range's start (as the
** split's). The configuration entry carries T; the leader proposes it only
** while T's record is PENDING with every entry of its log applied, and its
** apply writes the record COMMITTED: meta changes exactly with the step. */

#define TXN__CHANGE_STEPS_MAX 16 /* steps, no-op answers and races of one change */

static bool change_has_voter(const range_descriptor *d, uint64_t node) {
    for (size_t i = 0; i < d->n_replicas; i++)
        if (d->replicas[i] == node) return true;
    return false;
}

/* The descriptor step makes of d (owner: caller, freed): generation + 1,
** node appended to the voters (PROMOTE) or taken out (REMOVE), as the
** replicas compute it at apply from the Raft membership (range/replica.c,
** conf_prepare: the core appends a promoted voter and keeps the order). */
static int change_shape(const range_descriptor *d, int step, uint64_t node,
                        range_descriptor *out) {
    memset(out, 0, sizeof(*out));
    if (step == RANGE_CONF_STEP_PROMOTE && d->n_replicas >= RANGE_REPLICAS_MAX)
        return TXN_ERR_INVALID;
    if (range_descriptor_copy(out, d) != RANGE_OK) return TXN_ERR_NOMEM;
    out->generation = d->generation + 1;
    if (step == RANGE_CONF_STEP_PROMOTE) out->replicas[out->n_replicas++] = node;
    if (step == RANGE_CONF_STEP_REMOVE) {
        size_t k = 0;
        for (size_t i = 0; i < out->n_replicas; i++)
            if (out->replicas[i] != node) out->replicas[k++] = out->replicas[i];
        out->n_replicas = k;
    }
    return TXN_OK;
}

/* One step of d's range with its transaction. TXN_OK with *committed (it
** applied), or *noop (the leaseholder found nothing to do: no T), or
** *raced (refused: the range moved, a pusher aborted T); else the error
** with err set (the step's fate rests with the record, which END_TXN
** settled: not committed). */
static int change_atomic_once(txn_db *db, const range_descriptor *d, int step, uint64_t node,
                              bool *committed, bool *noop, bool *raced, txn_error *err) {
    static const uint8_t lowest[1] = {0};
    range_kv *kv = db->kv;
    range_descriptor next, after;
    base_buf key = {0}, value = {0}; /* owner: this function */
    range_prepare_result prepared;  /* owner: this function until resolved */
    memset(&prepared, 0, sizeof(prepared));
    memset(&after, 0, sizeof(after));
    range_write w;
    range_txn_meta meta;
    memset(&meta, 0, sizeof(meta));
    *committed = *noop = *raced = false;
    meta.anchor = d->start_len > 0 ? d->start_key : lowest;
    meta.anchor_len = d->start_len > 0 ? d->start_len : 1;
    int rc = change_shape(d, step, node, &next);
    if (rc != TXN_OK) return fail(err, rc);
    if (range_meta_key(&next, &key) != RANGE_OK || range_descriptor_encode(&next, &value) != RANGE_OK) {
        rc = fail(err, TXN_ERR_NOMEM);
        goto done;
    }
    memset(&w, 0, sizeof(w));
    w.key = key.data;
    w.key_len = key.len;
    w.value = value.data;
    w.value_len = value.len;
    /* PREPARE: meta(range)'s intent, the record PENDING in the range */
    if (!meta_txn_prepare(db, "replica change", &w, 1, &meta, &prepared, raced, &rc, err))
        goto done;
    /* the step, with the record heartbeat while it waits (a learner's catch-up) */
    range_split_txn ctx = {meta.txn_id, meta.anchor, meta.anchor_len, prepared.commit_ts,
                           d->generation};
    txn__live *live = live_register(db, &meta);
    int cr = kv->ops->change_replicas_txn(kv, d->range_id, step, node, &ctx, &after);
    char detail[256] = "";
    if (cr != RANGE_OK) kv_detail(kv, detail, sizeof(detail));
    if (live != NULL) live_unregister(db, live, NULL);
    /* the record says what happened; END_TXN(ABORTED) also fences a step
    ** not proposed yet (its proposal then finds the record ABORTED) */
    rc = meta_txn_settle(db, "replica change", &meta, &prepared, detail, committed, err);
    if (rc != TXN_OK || *committed) goto done;
    if (cr == RANGE_OK) {
        *noop = true;
    } else if (cr == RANGE_ERR_ABORTED) {
        *raced = true;
    } else {
        int trc = cr == RANGE_ERR_AMBIGUOUS ? TXN_ERR_UNAVAILABLE : range_to_txn_rc(cr);
        err_setf(err, rc_sqlstate(trc), "the range's replicas could not change: %s", detail);
        rc = trc;
    }
done:
    range_prepare_result_free(&prepared);
    range_descriptor_free(&next);
    range_descriptor_free(&after);
    base_buf_free(&key);
    base_buf_free(&value);
    return rc;
}

int txn_db_change_replicas(txn_db *db, const range_descriptor *range, uint64_t add,
                           uint64_t remove, range_descriptor *out, txn_error *err) {
    range_kv *kv = db->kv;
    if (out != NULL) memset(out, 0, sizeof(*out));
    if (range == NULL || range->range_id == 0 || (add == 0 && remove == 0) || add == remove)
        return fail(err, TXN_ERR_INVALID);
    if (kv->ops->describe == NULL || kv->ops->change_replicas_txn == NULL ||
        kv->ops->prepare == NULL || kv->ops->end_txn == NULL || kv->ops->resolve == NULL) {
        err_setf(err, "0A000", "replica changes need a key space cut into ranges");
        return TXN_ERR_UNSUPPORTED;
    }
    bool learner = false, removed = remove == 0;
    /* A move from a descriptor without add keeps at least its voters: add
    ** found a voter already (a stale descriptor: someone else added it)
    ** must not turn the move into a bare removal (test_txn_sim saw ranges
    ** left with 2 voters). Checked on every DESCRIBE: each step is made at
    ** D's generation, so what it checks is what the step changes. */
    size_t keep = add != 0 && remove != 0 && !change_has_voter(range, add) ? range->n_replicas : 0;
    int races = 0;
    for (int steps = 0; steps < TXN__CHANGE_STEPS_MAX; steps++) {
        range_descriptor d;
        int kr = kv->ops->describe(kv, range->start_key, range->start_len, &d);
        if (kr != RANGE_OK)
            return admin_failed(kv, kr, "the range's replicas could not change", err);
        if (d.range_id != range->range_id) {
            err_setf(err, "55000", "range %llu no longer starts at its start key (r%llu does)",
                     (unsigned long long)range->range_id, (unsigned long long)d.range_id);
            range_descriptor_free(&d);
            return TXN_ERR_INVALID;
        }
        int step = 0;
        uint64_t node = 0;
        if (add != 0 && !change_has_voter(&d, add)) {
            step = learner ? RANGE_CONF_STEP_PROMOTE : RANGE_CONF_STEP_ADD_LEARNER;
            node = add;
        } else if (!removed) {
            step = RANGE_CONF_STEP_REMOVE; /* a voter, or maybe a learner */
            node = remove;
            if (change_has_voter(&d, remove) && d.n_replicas - 1 < keep) {
                err_setf(err, "55000",
                         "range %llu: moving a replica from n%llu to n%llu would leave %zu "
                         "voters, fewer than the %zu it was asked from (n%llu was a voter "
                         "already: a stale descriptor)",
                         (unsigned long long)range->range_id, (unsigned long long)remove,
                         (unsigned long long)add, d.n_replicas - 1, keep,
                         (unsigned long long)add);
                range_descriptor_free(&d);
                return TXN_ERR_INVALID;
            }
        }
        if (step == 0) {
            if (out != NULL) *out = d;
            else range_descriptor_free(&d);
            return TXN_OK;
        }
        bool committed = false, noop = false, raced = false;
        int rc = change_atomic_once(db, &d, step, node, &committed, &noop, &raced, err);
        range_descriptor_free(&d);
        if (rc != TXN_OK) return rc;
        if (committed || noop) {
            learner = learner || step == RANGE_CONF_STEP_ADD_LEARNER;
            removed = removed || step == RANGE_CONF_STEP_REMOVE;
            continue;
        }
        /* refused: a PROMOTE may have lost its learner (ADD_LEARNER answers
        ** a no-op when it is still there) */
        learner = learner && step != RANGE_CONF_STEP_PROMOTE;
        if (++races >= TXN__SPLIT_ATOMIC_ATTEMPTS_MAX) {
            err_setf(err, "40001",
                     "restart transaction: the replica change of range %llu raced with other "
                     "changes of the range %d times (SQLSTATE 40001)",
                     (unsigned long long)range->range_id, races);
            return TXN_ERR_RETRY;
        }
        if (err != NULL) memset(err, 0, sizeof(*err));
        BASE_DEBUG("txn", "replica change of r%llu: step %d of n%llu raced (the range changed, "
                   "or its transaction was pushed); again", (unsigned long long)range->range_id,
                   step, (unsigned long long)node);
    }
    err_setf(err, "55000", "the replica change of range %llu did not finish in %d steps",
             (unsigned long long)range->range_id, TXN__CHANGE_STEPS_MAX);
    return TXN_ERR_UNAVAILABLE;
}
