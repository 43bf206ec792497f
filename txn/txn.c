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
**     range/).
*/
#include "txn/txn.h"

#include <assert.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "encoding/encoding.h"
#include "range/range.h"

#define TXN__NODE_OVERHEAD_BYTES 48
#define TXN__KEY_FORMAT_CHARS_MAX 200

struct txn_db {
    storage_engine *engine; /* borrowed; NULL when opened over a given kv */
    hlc_clock *clock;       /* borrowed */
    range_store *store;     /* owned; NULL when opened over a given kv */
    range_kv *kv;           /* the key space: store's view, or borrowed */
    atomic_uint_fast64_t next_txn_id;
};

enum { TXN__NONE = 0, TXN__PUT = 1, TXN__DEL = 2 };

typedef struct txn__node {
    struct txn__node *left, *right;
    uint64_t priority;
    uint8_t state;
    uint8_t *value; /* owned (PUT), NULL otherwise */
    size_t value_len;
    size_t key_len;
    uint8_t key[]; /* flexible */
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
    uint8_t *prev_value; /* owned by the entry */
    size_t prev_value_len;
} txn__undo;

typedef struct txn__savepoint {
    uint32_t id;
    size_t undo_len;
} txn__savepoint;

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
    bool reads_overflowed; /* a read was not recorded: cannot commit writes */
    base_buf read_arena;
    txn_iter *iters; /* open iterators (doubly linked) */
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
        return "transaction touches several ranges: not supported until distributed "
               "transactions";
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
                         range_rc == RANGE_ERR_NOT_LEADER || range_rc == RANGE_ERR_PUSHED;
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
                 "transaction touches several ranges (%s): not supported until distributed "
                 "transactions",
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
        err_setf(err, "25006", "cannot execute a write in a read-only transaction");
        return TXN_ERR_READ_ONLY;
    }
    return TXN_OK;
}

/* ---- write buffer (treap) -------------------------------------------------- */

static uint64_t next_priority(txn *t) {
    /* splitmix64: deterministic, well mixed */
    uint64_t z = (t->prio_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
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
    base_free(n->value);
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
    base_free(n->value);
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

/* Set node state/value (value copied). Allocates first, then mutates. */
static int node_set(txn *t, txn__node *n, uint8_t state, const uint8_t *value, size_t value_len) {
    uint8_t *copy = NULL;
    if (state == TXN__PUT) {
        copy = base_malloc(value_len ? value_len : 1);
        if (copy == NULL) return TXN_ERR_NOMEM;
        if (value_len) memcpy(copy, value, value_len);
    }
    bool keep_undo = t->savepoint_count > 0;
    if (keep_undo && undo_reserve(t) != TXN_OK) {
        base_free(copy);
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
        t->undo_bytes += n->value_len;
    } else {
        base_free(n->value);
    }
    n->state = state;
    n->value = copy;
    n->value_len = state == TXN__PUT ? value_len : 0;
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
    if (n == NULL) {
        n = base_calloc(1, sizeof(*n) + key_len);
        if (n == NULL) return fail(err, TXN_ERR_NOMEM);
        memcpy(n->key, key, key_len);
        n->key_len = key_len;
        n->priority = next_priority(t);
        n->state = TXN__NONE;
        t->root = treap_insert(t->root, n);
        t->node_count++;
        inserted = true;
    }
    int rc = node_set(t, n, state, value, value_len);
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
    if (t->read_only || t->reads_overflowed) return TXN_OK;
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

int txn_db_open(const txn_db_options *opts, txn_db **out) {
    if (opts == NULL || (opts->engine == NULL && opts->kv == NULL) || opts->clock == NULL ||
        out == NULL)
        return TXN_ERR_INVALID;
    *out = NULL;
    txn_db *db = base_calloc(1, sizeof(*db));
    if (db == NULL) return TXN_ERR_NOMEM;
    db->clock = opts->clock;
    atomic_init(&db->next_txn_id, 1);
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
    *out = db;
    return TXN_OK;
}

void txn_db_close(txn_db *db) {
    if (db == NULL) return;
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
}

/* ---- txn lifecycle -------------------------------------------------------- */

int txn_begin(txn_db *db, const txn_options *opts, txn **out) {
    if (db == NULL || out == NULL) return TXN_ERR_INVALID;
    *out = NULL;
    txn *t = base_calloc(1, sizeof(*t));
    if (t == NULL) return TXN_ERR_NOMEM;
    t->db = db;
    t->id = atomic_fetch_add(&db->next_txn_id, 1);
    t->read_only = opts ? opts->read_only : false;
    t->prio_state = t->id;
    t->next_savepoint_id = 1;
    t->read_ts = hlc_now(db->clock);
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

static void iter_record(txn_iter *it);

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
    treap_free(t->root);
    for (size_t i = 0; i < t->span_count; i++) span_free(&t->spans[i]);
    base_free(t->spans);
    for (size_t i = 0; i < t->undo_len; i++) base_free(t->undo[i].prev_value);
    base_free(t->undo);
    base_free(t->savepoints);
    base_free(t->reads);
    base_buf_free(&t->read_arena);
    base_free(t);
}

void txn_rollback(txn *t) {
    if (t == NULL) return;
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
    rc = record_read(t, key, key_len, NULL, 0, true, err);
    if (rc != TXN_OK) return rc;
    range_kv *kv = t->db->kv;
    int range_rc = kv->ops->get(kv, key, key_len, t->read_ts, out);
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
            int rc = node_set(t, n, TXN__DEL, NULL, 0);
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
    for (size_t i = 0; i < t->undo_len; i++) base_free(t->undo[i].prev_value);
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
        base_free(n->value);
        t->undo_bytes -= u->prev_value_len;
        n->state = u->prev_state;
        n->value = u->prev_value;
        n->value_len = u->prev_value_len;
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
        int range_rc = kv->ops->iter_open(kv, start, start_len, end, end_len, t->read_ts,
                                          reverse, &it->inner);
        if (range_rc != RANGE_OK) {
            base_buf_free(&it->start);
            base_buf_free(&it->end);
            base_free(it);
            return kv_fail(kv, err, range_rc);
        }
        it->need_advance = true;
    }
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
            int n = it->ops->iter_next(it->inner, &it->hk, &it->hklen, &it->hv, &it->hvlen);
            if (n < 0) {
                rc = range_to_txn_rc(n);
                if (rc == TXN_ERR_IO) mark_aborted(it->t, rc, rc_sqlstate(rc), rc_message(rc));
                return kv_fail(it->t->db->kv, err, n);
            }
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
    base_buf_free(&it->start);
    base_buf_free(&it->end);
    base_buf_free(&it->last);
    base_buf_free(&it->out_value);
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
    detach_iters(t); /* their spans join the read set */
    if (t->aborted) {
        if (err) *err = t->abort_error;
        rc = t->abort_rc;
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
    req.txn_id = t->id;
    req.read_ts = t->read_ts;
    req.writes = writes;
    req.write_count = live;
    req.delete_spans = spans;
    req.delete_span_count = t->span_count;
    req.read_spans = reads;
    req.read_span_count = t->read_count;
    range_kv *kv = t->db->kv;
    int r = kv->ops->commit(kv, &req, &ts, &conflict);
    if (r == RANGE_ERR_CONFLICT) {
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
    range_conflict_free(&conflict);
    base_free(writes);
    base_free(spans);
    base_free(reads);
    txn_free(t);
    return rc;
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

static int split_record_meta(txn_db *db, const range_descriptor *left,
                             const range_descriptor *right, txn_error *err) {
    base_buf key = {0}, val = {0}; /* owner: this function */
    int rc = TXN_ERR_UNAVAILABLE;
    for (int attempt = 0; attempt < TXN__SPLIT_TXN_ATTEMPTS_MAX; attempt++) {
        txn *t = NULL;
        if (err != NULL) memset(err, 0, sizeof(*err));
        if ((rc = txn_begin(db, NULL, &t)) != TXN_OK) {
            txn_error_set(err, rc);
            break;
        }
        if (left != NULL) rc = split_meta_put(t, left, &key, &val, err);
        if (rc == TXN_OK) rc = split_meta_put(t, right, &key, &val, err);
        if (rc != TXN_OK) {
            txn_rollback(t);
            break;
        }
        rc = txn_commit(t, NULL, err);
        if (rc != TXN_ERR_RETRY) break;
    }
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

int txn_db_split_at(txn_db *db, const uint8_t *key, size_t key_len, txn_split_result *out,
                    txn_error *err) {
    range_descriptor left, right;
    memset(&left, 0, sizeof(left));
    memset(&right, 0, sizeof(right));
    memset(out, 0, sizeof(*out));
    range_kv *kv = db->kv;
    if (kv->ops->admin_split == NULL) {
        err_setf(err, "0A000", "splitting ranges needs a cluster: this node's key space is one "
                               "local store");
        return TXN_ERR_UNSUPPORTED;
    }
    if (key == NULL || key_len == 0 || key_len > RANGE_DESC_KEY_MAX) return fail(err, TXN_ERR_INVALID);
    uint64_t id = 0;
    int rc = split_allocate_id(db, &id, err);
    if (rc != TXN_OK) return rc;
    int r = kv->ops->admin_split(kv, key, key_len, id, &left, &right);
    if (r != RANGE_OK) {
        char detail[256];
        if (kv->ops->last_error == NULL || !kv->ops->last_error(kv, detail, sizeof(detail)))
            base_strlcpy(detail, "no detail", sizeof(detail));
        rc = range_to_txn_rc(r);
        err_setf(err, rc_sqlstate(rc), "the range could not be split: %s", detail);
        return rc;
    }
    out->left_range_id = left.range_id;
    out->right_range_id = right.range_id;
    out->created = right.range_id == id;
    /* best effort: routing does not depend on it (range_kv answers carry
    ** the descriptors), and a later split or server/'s repair rewrites it */
    txn_error merr = {{0}, {0}};
    int mrc = split_record_meta(db, left.range_id != 0 ? &left : NULL, &right, &merr);
    if (mrc != TXN_OK)
        BASE_WARN("txn", "split at r%llu/r%llu: meta not updated (%d: %s)",
                  (unsigned long long)left.range_id, (unsigned long long)right.range_id, mrc,
                  merr.message);
    range_descriptor_free(&left);
    range_descriptor_free(&right);
    return TXN_OK;
}
