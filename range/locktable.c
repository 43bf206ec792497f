/*
** range/locktable.c: the leaseholder's lock table (locktable_int.h,
** docs/locking.md).
**
** Structure:
**   - KEYS: a sorted array of entry pointers (binary search; insertion and
**     removal move at most keys_max pointers). An entry owns its key bytes
**     and has exactly one holder, a FIFO list of lock requests and a list of
**     waiting readers.
**   - TXNS: a sorted array of slots {txn id, its held entries (a list
**     threaded through the entries), count}, for release_all. Its capacity
**     is always >= slots + queued lock requests, so a grant never allocates.
**   - WAITERS: a sorted array of waiter pointers by id (ids grow, so a new
**     waiter is appended), for cancel and for the due pushes. It holds the
**     waiting waiters and the finished ones whose event is not taken yet.
**   - EVENTS: a list threaded through the waiters (one pending event per
**     waiter: a later fate overwrites a pending NEW_HOLDER in place).
**
** Invariants (range__locktable_check): those of locktable_int.h, and
**   - keys strictly ascending; txn slots strictly ascending by id, each with
**     n >= 1 entries all held by that id; the slots' counts sum to the keys;
**   - a waiting waiter (entry != NULL) is on its entry's list and has no
**     event or a NEW_HOLDER one; a finished waiter (entry == NULL) has a
**     GRANTED, PROCEED or ABANDONED event pending;
**   - lock_waiters is the number of queued lock requests, and
**     txns_cap >= txns_n + lock_waiters.
** Limits: every walk is bounded by the keys, waiters or slots counts.
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "range/eval_int.h"
#include "range/locktable_int.h"

typedef struct lt__entry lt__entry;
typedef struct lt__waiter lt__waiter;

struct lt__waiter {
    uint64_t id;
    bool read;
    range__lock_txn txn;
    range__lock_durability durability;
    hlc_timestamp ts;
    int64_t queued_ns, push_due_ns;
    bool push_reported;
    lt__entry *entry;         /* while waiting; NULL once finished */
    lt__waiter *prev, *next;  /* in entry->locks or entry->readers */
    int ev;                   /* a pending range__lock_event_kind, or 0 */
    range__lock_holder ev_holder; /* GRANTED: the lock as granted */
    lt__waiter *ev_prev, *ev_next;
};

typedef struct lt__list {
    lt__waiter *head, *tail;
    size_t n;
} lt__list;

struct lt__entry {
    uint8_t *key; /* owned */
    size_t key_len;
    range__lock_holder holder;
    lt__entry *txn_prev, *txn_next; /* the holder's entries */
    lt__list locks;                 /* lock requests, FIFO */
    lt__list readers;               /* waiting readers, arrival order */
};

typedef struct lt__txn_slot {
    uint64_t id;
    lt__entry *head; /* entries it holds */
    size_t n;
} lt__txn_slot;

struct range__locktable {
    range__locktable_config cfg; /* defaults applied; push_delay_ns >= 0 */
    lt__entry **keys;            /* owned array; entries owned */
    size_t keys_n, keys_cap, key_bytes;
    lt__txn_slot *txns;          /* owned */
    size_t txns_n, txns_cap;
    lt__waiter **waiters;        /* owned array; waiters owned */
    size_t waiters_n, waiters_cap;
    size_t lock_waiters;         /* queued lock requests */
    lt__waiter *ev_head, *ev_tail;
    uint64_t next_waiter_id;
    uint64_t busy;
};

/* ---- small helpers ---------------------------------------------------------------- */

/* Capacity for `need` elements of elem_size bytes: false on NOMEM, nothing changed. */
static bool lt__reserve(void **arr, size_t *cap, size_t need, size_t elem_size)
{
    if (need <= *cap)
        return true;
    size_t c = *cap > 0 ? *cap : 8;
    while (c < need)
        c *= 2;
    void *p = base_realloc(*arr, c * elem_size);
    if (p == NULL)
        return false;
    *arr = p;
    *cap = c;
    return true;
}

static int64_t lt__add_sat(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static void lt__list_append(lt__list *l, lt__waiter *w)
{
    w->prev = l->tail;
    w->next = NULL;
    if (l->tail != NULL)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
    l->n++;
}

static void lt__list_remove(lt__list *l, lt__waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        l->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        l->tail = w->prev;
    w->prev = w->next = NULL;
    l->n--;
}

/* Does holder h block a read at read_ts by reader_txn (0: none)? */
static bool lt__blocks_reader(const range__lock_holder *h, uint64_t reader_txn,
                              hlc_timestamp read_ts)
{
    return h->durability == RANGE_LOCK_REPLICATED && h->txn.id != reader_txn &&
           hlc_compare(h->ts, read_ts) <= 0;
}

/* ---- the key index ---------------------------------------------------------------- */

/* The entry of key, or NULL with *idx where it would go. */
static lt__entry *lt__find_key(const range__locktable *lt, const uint8_t *key, size_t key_len,
                               size_t *idx)
{
    size_t lo = 0, hi = lt->keys_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = range__key_cmp(lt->keys[mid]->key, lt->keys[mid]->key_len, key, key_len);
        if (c == 0) {
            *idx = mid;
            return lt->keys[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *idx = lo;
    return NULL;
}

static void lt__remove_key(range__locktable *lt, lt__entry *e)
{
    size_t idx;
    lt__entry *found = lt__find_key(lt, e->key, e->key_len, &idx);
    assert(found == e);
    memmove(&lt->keys[idx], &lt->keys[idx + 1], (lt->keys_n - idx - 1) * sizeof(lt->keys[0]));
    lt->keys_n--;
    lt->key_bytes -= e->key_len;
    base_free(e->key);
    base_free(e);
}

/* ---- the transaction index ------------------------------------------------------ */

static lt__txn_slot *lt__find_txn(const range__locktable *lt, uint64_t id, size_t *idx)
{
    size_t lo = 0, hi = lt->txns_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (lt->txns[mid].id == id) {
            *idx = mid;
            return &lt->txns[mid];
        }
        if (lt->txns[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *idx = lo;
    return NULL;
}

/* Room for one more slot beyond those reserved for the queued lock requests. */
static bool lt__reserve_txn_slot(range__locktable *lt)
{
    return lt__reserve((void **)&lt->txns, &lt->txns_cap, lt->txns_n + lt->lock_waiters + 1,
                       sizeof(lt->txns[0]));
}

/* Thread e onto its holder's slot (made if absent: the capacity is reserved). */
static void lt__txn_link(range__locktable *lt, lt__entry *e)
{
    size_t idx;
    lt__txn_slot *s = lt__find_txn(lt, e->holder.txn.id, &idx);
    if (s == NULL) {
        assert(lt->txns_n < lt->txns_cap);
        memmove(&lt->txns[idx + 1], &lt->txns[idx], (lt->txns_n - idx) * sizeof(lt->txns[0]));
        lt->txns_n++;
        s = &lt->txns[idx];
        s->id = e->holder.txn.id;
        s->head = NULL;
        s->n = 0;
    }
    e->txn_prev = NULL;
    e->txn_next = s->head;
    if (s->head != NULL)
        s->head->txn_prev = e;
    s->head = e;
    s->n++;
}

static void lt__txn_unlink(range__locktable *lt, lt__entry *e)
{
    size_t idx;
    lt__txn_slot *s = lt__find_txn(lt, e->holder.txn.id, &idx);
    assert(s != NULL && s->n > 0);
    if (e->txn_prev != NULL)
        e->txn_prev->txn_next = e->txn_next;
    else
        s->head = e->txn_next;
    if (e->txn_next != NULL)
        e->txn_next->txn_prev = e->txn_prev;
    e->txn_prev = e->txn_next = NULL;
    if (--s->n == 0) {
        memmove(&lt->txns[idx], &lt->txns[idx + 1], (lt->txns_n - idx - 1) * sizeof(lt->txns[0]));
        lt->txns_n--;
    }
}

/* ---- the waiter index and events -------------------------------------------------- */

static lt__waiter *lt__find_waiter(const range__locktable *lt, uint64_t id, size_t *idx)
{
    size_t lo = 0, hi = lt->waiters_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (lt->waiters[mid]->id == id) {
            *idx = mid;
            return lt->waiters[mid];
        }
        if (lt->waiters[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *idx = lo;
    return NULL;
}

static void lt__forget_waiter(range__locktable *lt, lt__waiter *w)
{
    size_t idx;
    lt__waiter *found = lt__find_waiter(lt, w->id, &idx);
    assert(found == w);
    memmove(&lt->waiters[idx], &lt->waiters[idx + 1],
            (lt->waiters_n - idx - 1) * sizeof(lt->waiters[0]));
    lt->waiters_n--;
    base_free(w);
}

static void lt__ev_unlink(range__locktable *lt, lt__waiter *w)
{
    if (w->ev_prev != NULL)
        w->ev_prev->ev_next = w->ev_next;
    else
        lt->ev_head = w->ev_next;
    if (w->ev_next != NULL)
        w->ev_next->ev_prev = w->ev_prev;
    else
        lt->ev_tail = w->ev_prev;
    w->ev_prev = w->ev_next = NULL;
    w->ev = 0;
}

/* Give w the event kind (appended, or overwriting a pending one in place). */
static void lt__post(range__locktable *lt, lt__waiter *w, range__lock_event_kind kind)
{
    if (w->ev == 0) {
        w->ev_prev = lt->ev_tail;
        w->ev_next = NULL;
        if (lt->ev_tail != NULL)
            lt->ev_tail->ev_next = w;
        else
            lt->ev_head = w;
        lt->ev_tail = w;
    }
    w->ev = (int)kind;
}

/* w stops waiting with a final event (GRANTED, PROCEED, ABANDONED). */
static void lt__finish(range__locktable *lt, lt__waiter *w, range__lock_event_kind kind)
{
    lt__entry *e = w->entry;
    assert(e != NULL);
    if (w->read) {
        lt__list_remove(&e->readers, w);
    } else {
        lt__list_remove(&e->locks, w);
        lt->lock_waiters--;
    }
    if (kind == RANGE_LOCK_EV_GRANTED)
        w->ev_holder = e->holder;
    w->entry = NULL;
    lt__post(lt, w, kind);
}

/* ---- holders ------------------------------------------------------------------------ */

/* Re-entrant acquisition by the holder's own transaction. A request from an
** older epoch changes nothing; a newer epoch takes over the holder. */
static void lt__merge(range__lock_holder *h, const range__lock_txn *txn,
                      range__lock_durability durability, hlc_timestamp ts)
{
    if (txn->epoch < h->txn.epoch)
        return;
    bool new_epoch = txn->epoch > h->txn.epoch;
    h->txn = *txn;
    if (durability == RANGE_LOCK_REPLICATED) {
        if (h->durability == RANGE_LOCK_REPLICATED && !new_epoch)
            h->ts = hlc_compare(ts, h->ts) > 0 ? ts : h->ts;
        else
            h->ts = ts;
        h->durability = RANGE_LOCK_REPLICATED;
    }
}

/* After e's holder was made or changed: grant the holder's own queued
** requests, let go the readers it does not block, and when the holder is a
** different transaction tell every remaining waiter (fresh push-due time). */
static void lt__settle(range__locktable *lt, lt__entry *e, int64_t now_ns, bool holder_changed)
{
    lt__waiter *w, *next;
    for (w = e->locks.head; w != NULL; w = next) {
        next = w->next;
        if (w->txn.id == e->holder.txn.id) {
            lt__merge(&e->holder, &w->txn, w->durability, w->ts);
            lt__finish(lt, w, RANGE_LOCK_EV_GRANTED);
        }
    }
    for (w = e->readers.head; w != NULL; w = next) {
        next = w->next;
        if (!lt__blocks_reader(&e->holder, w->txn.id, w->ts))
            lt__finish(lt, w, RANGE_LOCK_EV_PROCEED);
    }
    if (!holder_changed)
        return;
    for (int pass = 0; pass < 2; pass++)
        for (w = pass == 0 ? e->locks.head : e->readers.head; w != NULL; w = w->next) {
            w->push_due_ns = lt__add_sat(now_ns, lt->cfg.push_delay_ns);
            w->push_reported = false;
            lt__post(lt, w, RANGE_LOCK_EV_NEW_HOLDER);
        }
}

/* e's holder is gone: the head lock request takes over, or, with none, the
** readers go and so does the entry. */
static void lt__holder_gone(range__locktable *lt, lt__entry *e, int64_t now_ns)
{
    lt__txn_unlink(lt, e);
    lt__waiter *w = e->locks.head;
    if (w != NULL) {
        e->holder.txn = w->txn;
        e->holder.durability = w->durability;
        e->holder.ts = w->durability == RANGE_LOCK_REPLICATED ? w->ts : HLC_ZERO;
        e->holder.since_ns = now_ns;
        lt__txn_link(lt, e); /* its slot was reserved when w queued */
        lt__finish(lt, w, RANGE_LOCK_EV_GRANTED);
        lt__settle(lt, e, now_ns, true);
        return;
    }
    lt__waiter *next;
    for (w = e->readers.head; w != NULL; w = next) {
        next = w->next;
        lt__finish(lt, w, RANGE_LOCK_EV_PROCEED);
    }
    lt__remove_key(lt, e);
}

/* A new entry at idx for key with holder h. */
static int lt__new_entry(range__locktable *lt, size_t idx, const uint8_t *key, size_t key_len,
                         const range__lock_holder *h, range__locktable_result *out)
{
    if (lt->keys_n >= lt->cfg.keys_max || key_len > lt->cfg.key_bytes_max - lt->key_bytes) {
        lt->busy++;
        out->outcome = RANGE_LOCK_CONFLICT;
        return RANGE_ERR_BUSY;
    }
    if (!lt__reserve((void **)&lt->keys, &lt->keys_cap, lt->keys_n + 1, sizeof(lt->keys[0])) ||
        !lt__reserve_txn_slot(lt))
        return RANGE_ERR_NOMEM;
    lt__entry *e = base_calloc(1, sizeof(*e)); /* owner: lt->keys */
    if (e == NULL)
        return RANGE_ERR_NOMEM;
    e->key = base_malloc(key_len);
    if (e->key == NULL) {
        base_free(e);
        return RANGE_ERR_NOMEM;
    }
    memcpy(e->key, key, key_len);
    e->key_len = key_len;
    e->holder = *h;
    memmove(&lt->keys[idx + 1], &lt->keys[idx], (lt->keys_n - idx) * sizeof(lt->keys[0]));
    lt->keys[idx] = e;
    lt->keys_n++;
    lt->key_bytes += key_len;
    lt__txn_link(lt, e);
    out->outcome = RANGE_LOCK_GRANTED;
    return RANGE_OK;
}

/* Queue a request behind e's holder (or answer CONFLICT). */
static int lt__enqueue(range__locktable *lt, lt__entry *e, bool read, const range__lock_txn *txn,
                       range__lock_durability durability, hlc_timestamp ts,
                       range__lock_wait_policy policy, int64_t now_ns,
                       range__locktable_result *out)
{
    out->holder = e->holder;
    out->outcome = RANGE_LOCK_CONFLICT;
    if (policy == RANGE_LOCK_WAIT_ERROR)
        return RANGE_OK;
    if (e->locks.n + e->readers.n >= lt->cfg.waiters_per_key_max ||
        lt->waiters_n >= lt->cfg.waiters_max) {
        lt->busy++;
        return RANGE_ERR_BUSY;
    }
    if (!lt__reserve((void **)&lt->waiters, &lt->waiters_cap, lt->waiters_n + 1,
                     sizeof(lt->waiters[0])) ||
        (!read && !lt__reserve_txn_slot(lt)))
        return RANGE_ERR_NOMEM;
    lt__waiter *w = base_calloc(1, sizeof(*w)); /* owner: lt->waiters */
    if (w == NULL)
        return RANGE_ERR_NOMEM;
    w->id = ++lt->next_waiter_id;
    w->read = read;
    w->txn = *txn;
    w->durability = durability;
    w->ts = ts;
    w->queued_ns = now_ns;
    w->push_due_ns = lt__add_sat(now_ns, lt->cfg.push_delay_ns);
    w->entry = e;
    if (read) {
        lt__list_append(&e->readers, w);
    } else {
        lt__list_append(&e->locks, w);
        lt->lock_waiters++;
    }
    lt->waiters[lt->waiters_n++] = w; /* ids grow: stays sorted */
    out->outcome = RANGE_LOCK_QUEUED;
    out->waiter_id = w->id;
    out->push_due_ns = w->push_due_ns;
    return RANGE_OK;
}

/* ---- the API ------------------------------------------------------------------------ */

int range__locktable_new(const range__locktable_config *cfg, range__locktable **out)
{
    *out = NULL;
    range__locktable *lt = base_calloc(1, sizeof(*lt)); /* owner: caller, range__locktable_free */
    if (lt == NULL)
        return RANGE_ERR_NOMEM;
    if (cfg != NULL)
        lt->cfg = *cfg;
    if (lt->cfg.keys_max == 0)
        lt->cfg.keys_max = RANGE_LOCKTABLE_KEYS_MAX;
    if (lt->cfg.key_bytes_max == 0)
        lt->cfg.key_bytes_max = RANGE_LOCKTABLE_KEY_BYTES_MAX;
    if (lt->cfg.waiters_per_key_max == 0)
        lt->cfg.waiters_per_key_max = RANGE_LOCKTABLE_WAITERS_PER_KEY_MAX;
    if (lt->cfg.waiters_max == 0)
        lt->cfg.waiters_max = RANGE_LOCKTABLE_WAITERS_MAX;
    if (lt->cfg.push_delay_ns == 0)
        lt->cfg.push_delay_ns = RANGE_LOCKTABLE_PUSH_DELAY_NS;
    else if (lt->cfg.push_delay_ns < 0)
        lt->cfg.push_delay_ns = 0;
    *out = lt;
    return RANGE_OK;
}

void range__locktable_free(range__locktable *lt)
{
    if (lt == NULL)
        return;
    for (size_t i = 0; i < lt->keys_n; i++) {
        base_free(lt->keys[i]->key);
        base_free(lt->keys[i]);
    }
    for (size_t i = 0; i < lt->waiters_n; i++)
        base_free(lt->waiters[i]);
    base_free(lt->keys);
    base_free(lt->txns);
    base_free(lt->waiters);
    base_free(lt);
}

static bool lt__valid_request(const uint8_t *key, size_t key_len, range__lock_wait_policy policy)
{
    return key != NULL && key_len > 0 &&
           (policy == RANGE_LOCK_WAIT_BLOCK || policy == RANGE_LOCK_WAIT_ERROR);
}

int range__locktable_acquire(range__locktable *lt, const range__lock_txn *txn,
                             const uint8_t *key, size_t key_len,
                             range__lock_durability durability, hlc_timestamp ts,
                             range__lock_wait_policy policy, int64_t now_ns,
                             range__locktable_result *out)
{
    memset(out, 0, sizeof(*out));
    if (txn == NULL || txn->id == 0 || !lt__valid_request(key, key_len, policy) ||
        (durability != RANGE_LOCK_UNREPLICATED && durability != RANGE_LOCK_REPLICATED))
        return RANGE_ERR_INVALID;
    if (durability == RANGE_LOCK_UNREPLICATED)
        ts = HLC_ZERO;
    size_t idx;
    lt__entry *e = lt__find_key(lt, key, key_len, &idx);
    if (e == NULL) {
        range__lock_holder h = {*txn, durability, ts, now_ns};
        return lt__new_entry(lt, idx, key, key_len, &h, out);
    }
    if (e->holder.txn.id == txn->id) {
        if (txn->epoch < e->holder.txn.epoch)
            return RANGE_ERR_INVALID;
        lt__merge(&e->holder, txn, durability, ts);
        lt__settle(lt, e, now_ns, false); /* a risen intent ts may let readers go */
        out->outcome = RANGE_LOCK_GRANTED;
        return RANGE_OK;
    }
    return lt__enqueue(lt, e, false, txn, durability, ts, policy, now_ns, out);
}

int range__locktable_read(range__locktable *lt, const range__lock_txn *txn,
                          const uint8_t *key, size_t key_len, hlc_timestamp read_ts,
                          range__lock_wait_policy policy, int64_t now_ns,
                          range__locktable_result *out)
{
    static const range__lock_txn no_txn = {0, 0, 0};
    memset(out, 0, sizeof(*out));
    if ((txn != NULL && txn->id == 0) || !lt__valid_request(key, key_len, policy))
        return RANGE_ERR_INVALID;
    if (txn == NULL)
        txn = &no_txn;
    size_t idx;
    lt__entry *e = lt__find_key(lt, key, key_len, &idx);
    if (e == NULL || !lt__blocks_reader(&e->holder, txn->id, read_ts)) {
        out->outcome = RANGE_LOCK_GRANTED;
        return RANGE_OK;
    }
    return lt__enqueue(lt, e, true, txn, RANGE_LOCK_UNREPLICATED, read_ts, policy, now_ns, out);
}

int range__locktable_add_discovered(range__locktable *lt, const range__lock_txn *txn,
                                    const uint8_t *key, size_t key_len, hlc_timestamp ts,
                                    int64_t now_ns, range__lock_txn *replaced)
{
    range__locktable_result ignored;
    if (replaced != NULL)
        memset(replaced, 0, sizeof(*replaced));
    if (txn == NULL || txn->id == 0 || key == NULL || key_len == 0)
        return RANGE_ERR_INVALID;
    size_t idx;
    lt__entry *e = lt__find_key(lt, key, key_len, &idx);
    if (e == NULL) {
        range__lock_holder h = {*txn, RANGE_LOCK_REPLICATED, ts, now_ns};
        return lt__new_entry(lt, idx, key, key_len, &h, &ignored);
    }
    if (e->holder.txn.id == txn->id) {
        lt__merge(&e->holder, txn, RANGE_LOCK_REPLICATED, ts);
        lt__settle(lt, e, now_ns, false);
        return RANGE_OK;
    }
    if (e->holder.durability == RANGE_LOCK_REPLICATED)
        return RANGE_ERR_CONFLICT;
    if (!lt__reserve_txn_slot(lt))
        return RANGE_ERR_NOMEM;
    if (replaced != NULL)
        *replaced = e->holder.txn;
    lt__txn_unlink(lt, e);
    e->holder = (range__lock_holder){*txn, RANGE_LOCK_REPLICATED, ts, now_ns};
    lt__txn_link(lt, e);
    lt__settle(lt, e, now_ns, true);
    return RANGE_OK;
}

int range__locktable_release(range__locktable *lt, uint64_t txn_id, const uint8_t *key,
                             size_t key_len, int64_t now_ns)
{
    size_t idx;
    lt__entry *e = key_len > 0 ? lt__find_key(lt, key, key_len, &idx) : NULL;
    if (e == NULL || txn_id == 0 || e->holder.txn.id != txn_id)
        return RANGE_NOT_FOUND;
    lt__holder_gone(lt, e, now_ns);
    return RANGE_OK;
}

size_t range__locktable_release_all(range__locktable *lt, uint64_t txn_id, int64_t now_ns)
{
    size_t released = 0, idx, bound = lt->keys_n;
    lt__txn_slot *s;
    /* each round drops one of txn_id's keys for good (the next holder is
    ** another txn), so at most the keys held now */
    while (released < bound && (s = lt__find_txn(lt, txn_id, &idx)) != NULL) {
        lt__holder_gone(lt, s->head, now_ns);
        released++;
    }
    assert(lt__find_txn(lt, txn_id, &idx) == NULL);
    return released;
}

bool range__locktable_holder(const range__locktable *lt, const uint8_t *key, size_t key_len,
                             range__lock_holder *holder)
{
    size_t idx;
    const lt__entry *e = key_len > 0 ? lt__find_key(lt, key, key_len, &idx) : NULL;
    if (e == NULL)
        return false;
    *holder = e->holder;
    return true;
}

size_t range__locktable_txn_keys(const range__locktable *lt, uint64_t txn_id)
{
    size_t idx;
    const lt__txn_slot *s = lt__find_txn(lt, txn_id, &idx);
    return s != NULL ? s->n : 0;
}

size_t range__locktable_release_span(range__locktable *lt, uint64_t txn_id, const range_span *sp,
                                     int64_t now_ns)
{
    size_t released = 0, idx, bound = lt->keys_n;
    lt__txn_slot *s;
    /* each round drops one key of txn_id inside sp for good */
    while (released < bound && (s = lt__find_txn(lt, txn_id, &idx)) != NULL) {
        lt__entry *e = s->head;
        size_t guard = s->n;
        while (e != NULL && guard-- > 0 && !range__span_contains(sp, e->key, e->key_len))
            e = e->txn_next;
        if (e == NULL || !range__span_contains(sp, e->key, e->key_len))
            break;
        lt__holder_gone(lt, e, now_ns);
        released++;
    }
    return released;
}

bool range__locktable_find_unreplicated(const range__locktable *lt, uint64_t txn_id,
                                        const range_span *sp, const uint8_t **key,
                                        size_t *key_len, range__lock_holder *holder)
{
    size_t idx = 0;
    if (sp->start_len > 0)
        (void)lt__find_key(lt, sp->start, sp->start_len, &idx);
    for (; idx < lt->keys_n; idx++) {
        const lt__entry *e = lt->keys[idx];
        if (!range__span_contains(sp, e->key, e->key_len))
            return false; /* from the lower bound of start on: past the span's end */
        if (e->holder.durability == RANGE_LOCK_UNREPLICATED && e->holder.txn.id != txn_id) {
            *key = e->key;
            *key_len = e->key_len;
            *holder = e->holder;
            return true;
        }
    }
    return false;
}

int range__locktable_cancel(range__locktable *lt, uint64_t waiter_id)
{
    size_t idx;
    lt__waiter *w = lt__find_waiter(lt, waiter_id, &idx);
    if (w == NULL || w->entry == NULL)
        return RANGE_NOT_FOUND;
    if (w->read) {
        lt__list_remove(&w->entry->readers, w);
    } else {
        lt__list_remove(&w->entry->locks, w);
        lt->lock_waiters--;
    }
    if (w->ev != 0)
        lt__ev_unlink(lt, w);
    w->entry = NULL;
    lt__forget_waiter(lt, w);
    return RANGE_OK;
}

void range__locktable_clear(range__locktable *lt)
{
    for (lt__waiter *w = lt->ev_head; w != NULL; w = w->ev_next)
        if (w->ev == RANGE_LOCK_EV_GRANTED)
            w->ev = RANGE_LOCK_EV_ABANDONED;
    for (size_t i = 0; i < lt->keys_n; i++) {
        lt__entry *e = lt->keys[i];
        while (e->locks.head != NULL)
            lt__finish(lt, e->locks.head, RANGE_LOCK_EV_ABANDONED);
        while (e->readers.head != NULL)
            lt__finish(lt, e->readers.head, RANGE_LOCK_EV_ABANDONED);
        base_free(e->key);
        base_free(e);
    }
    lt->keys_n = 0;
    lt->key_bytes = 0;
    lt->txns_n = 0;
}

bool range__locktable_next_event(range__locktable *lt, range__locktable_event *out)
{
    lt__waiter *w = lt->ev_head;
    if (w == NULL)
        return false;
    memset(out, 0, sizeof(*out));
    out->kind = (range__lock_event_kind)w->ev;
    out->waiter_id = w->id;
    out->read = w->read;
    out->txn = w->txn;
    lt__ev_unlink(lt, w);
    if (out->kind == RANGE_LOCK_EV_NEW_HOLDER) {
        assert(w->entry != NULL);
        out->holder = w->entry->holder;
        out->push_due_ns = w->push_due_ns;
        return true;
    }
    if (out->kind == RANGE_LOCK_EV_GRANTED)
        out->holder = w->ev_holder;
    lt__forget_waiter(lt, w);
    return true;
}

size_t range__locktable_pushes_due(range__locktable *lt, int64_t now_ns,
                                   range__locktable_push *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < lt->waiters_n && n < cap; i++) {
        lt__waiter *w = lt->waiters[i];
        if (w->entry == NULL || w->push_reported || w->push_due_ns > now_ns)
            continue;
        w->push_reported = true;
        out[n].waiter_id = w->id;
        out[n].read = w->read;
        out[n].pusher = w->txn;
        out[n].pushee = w->entry->holder;
        n++;
    }
    return n;
}

int64_t range__locktable_next_push_due(const range__locktable *lt)
{
    int64_t best = INT64_MAX;
    for (size_t i = 0; i < lt->waiters_n; i++) {
        const lt__waiter *w = lt->waiters[i];
        if (w->entry != NULL && !w->push_reported && w->push_due_ns < best)
            best = w->push_due_ns;
    }
    return best;
}

size_t range__locktable_waits_for(const range__locktable *lt, range__locktable_edge *out,
                                  size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < lt->keys_n; i++) {
        const lt__entry *e = lt->keys[i];
        for (int pass = 0; pass < 2; pass++)
            for (const lt__waiter *w = pass == 0 ? e->locks.head : e->readers.head; w != NULL;
                 w = w->next) {
                if (w->txn.id == 0)
                    continue;
                if (n < cap) {
                    out[n].waiter_id = w->id;
                    out[n].waiter = w->txn;
                    out[n].holder = e->holder.txn;
                }
                n++;
            }
    }
    return n;
}

static void lt__view(const lt__waiter *w, range__locktable_waiter_view *v)
{
    v->waiter_id = w->id;
    v->read = w->read;
    v->txn = w->txn;
    v->durability = w->durability;
    v->ts = w->ts;
    v->queued_ns = w->queued_ns;
    v->push_due_ns = w->push_due_ns;
    v->push_reported = w->push_reported;
}

void range__locktable_visit(const range__locktable *lt, const range__locktable_visitor *v)
{
    range__locktable_waiter_view view;
    for (size_t i = 0; i < lt->keys_n; i++) {
        const lt__entry *e = lt->keys[i];
        if (v->key != NULL)
            v->key(v->ctx, e->key, e->key_len, &e->holder);
        if (v->waiter == NULL)
            continue;
        for (int pass = 0; pass < 2; pass++)
            for (const lt__waiter *w = pass == 0 ? e->locks.head : e->readers.head; w != NULL;
                 w = w->next) {
                lt__view(w, &view);
                v->waiter(v->ctx, &view);
            }
    }
}

int range__locktable_waiter(const range__locktable *lt, uint64_t waiter_id,
                            range__locktable_waiter_view *out)
{
    size_t idx;
    const lt__waiter *w = lt__find_waiter(lt, waiter_id, &idx);
    if (w == NULL || w->entry == NULL)
        return RANGE_NOT_FOUND;
    lt__view(w, out);
    return RANGE_OK;
}

void range__locktable_get_stats(const range__locktable *lt, range__locktable_stats *out)
{
    out->keys = lt->keys_n;
    out->key_bytes = lt->key_bytes;
    out->waiters = lt->waiters_n;
    out->txns = lt->txns_n;
    out->busy = lt->busy;
}

/* ---- invariants ------------------------------------------------------------------- */

static bool lt__check_list(const lt__list *l, const lt__entry *e, bool read, size_t *waiting)
{
    size_t n = 0;
    const lt__waiter *prev = NULL;
    for (const lt__waiter *w = l->head; w != NULL; w = w->next) {
        if (++n > l->n || w->prev != prev || w->entry != e || w->read != read)
            return false;
        if (w->ev != 0 && w->ev != RANGE_LOCK_EV_NEW_HOLDER)
            return false;
        if (read ? !lt__blocks_reader(&e->holder, w->txn.id, w->ts)
                 : w->txn.id == e->holder.txn.id || w->txn.id == 0)
            return false; /* a waiter nothing blocks */
        prev = w;
    }
    *waiting += n;
    return n == l->n && l->tail == prev;
}

bool range__locktable_check(const range__locktable *lt)
{
    size_t bytes = 0, waiting = 0, waiting_locks = 0, held = 0;
    if (lt->keys_n > lt->cfg.keys_max || lt->key_bytes > lt->cfg.key_bytes_max ||
        lt->waiters_n > lt->cfg.waiters_max)
        return false;
    for (size_t i = 0; i < lt->keys_n; i++) {
        const lt__entry *e = lt->keys[i];
        if (e->key_len == 0 || e->holder.txn.id == 0)
            return false;
        if (i > 0 && range__key_cmp(lt->keys[i - 1]->key, lt->keys[i - 1]->key_len, e->key,
                                    e->key_len) >= 0)
            return false;
        if (e->holder.durability == RANGE_LOCK_UNREPLICATED
                ? hlc_compare(e->holder.ts, HLC_ZERO) != 0
                : e->holder.durability != RANGE_LOCK_REPLICATED)
            return false;
        if (e->locks.n + e->readers.n > lt->cfg.waiters_per_key_max)
            return false;
        bytes += e->key_len;
        size_t before = waiting;
        if (!lt__check_list(&e->locks, e, false, &waiting))
            return false;
        waiting_locks += waiting - before;
        if (!lt__check_list(&e->readers, e, true, &waiting))
            return false;
    }
    if (bytes != lt->key_bytes || waiting_locks != lt->lock_waiters)
        return false;
    /* the transaction index */
    for (size_t i = 0; i < lt->txns_n; i++) {
        const lt__txn_slot *s = &lt->txns[i];
        size_t n = 0;
        if (s->n == 0 || (i > 0 && lt->txns[i - 1].id >= s->id))
            return false;
        const lt__entry *prev = NULL;
        for (const lt__entry *e = s->head; e != NULL; e = e->txn_next) {
            if (++n > s->n || e->txn_prev != prev || e->holder.txn.id != s->id)
                return false;
            prev = e;
        }
        if (n != s->n)
            return false;
        held += n;
    }
    if (held != lt->keys_n || lt->txns_cap < lt->txns_n + lt->lock_waiters)
        return false;
    /* the waiter index: the waiting ones are on the lists, the rest have an event */
    size_t in_index_waiting = 0, with_event = 0;
    for (size_t i = 0; i < lt->waiters_n; i++) {
        const lt__waiter *w = lt->waiters[i];
        size_t idx;
        if (i > 0 && lt->waiters[i - 1]->id >= w->id)
            return false;
        if (w->entry != NULL) {
            in_index_waiting++;
            if (lt__find_key(lt, w->entry->key, w->entry->key_len, &idx) != w->entry)
                return false;
        } else if (w->ev != RANGE_LOCK_EV_GRANTED && w->ev != RANGE_LOCK_EV_PROCEED &&
                   w->ev != RANGE_LOCK_EV_ABANDONED) {
            return false;
        }
        if (w->ev != 0)
            with_event++;
    }
    if (in_index_waiting != waiting)
        return false;
    size_t n = 0;
    const lt__waiter *prev = NULL;
    for (const lt__waiter *w = lt->ev_head; w != NULL; w = w->ev_next) {
        if (++n > lt->waiters_n || w->ev == 0 || w->ev_prev != prev)
            return false;
        prev = w;
    }
    return n == with_event && lt->ev_tail == prev;
}
