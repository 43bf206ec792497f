/*
** range/txnwait.c: the transaction wait queue (txnwait_int.h,
** docs/locking.md).
**
** Structure: a sorted array of pushee entries by txn id (each: the last
** record seen, a FIFO list of waiters); a sorted array of waiters by id
** (ids grow: appended) holding the waiting ones and the finished ones whose
** event is not taken; a FIFO event list threaded through finished waiters.
** Each waiter owns a copy of its dependents (at most deps_max edges).
**
** Cycle search: the dependents of the pusher P are edges X -> Y meaning X
** waits for Y, all leading (transitively) to P. Pushing Q closes a cycle
** when there is a path Q -> ... -> P in them; a breadth-first search over at
** most deps_max edges finds the shortest one.
**
** Invariants (range__txnwait_check): those of txnwait_int.h, and pushees
** strictly ascending by id, waiters strictly ascending by id, list counts
** match, the event list holds exactly the finished waiters.
** Limits: every walk is bounded by the pushee, waiter or edge counts.
*/
#include <assert.h>
#include <string.h>

#include "range/txnwait_int.h"

typedef struct tw__pushee tw__pushee;
typedef struct tw__waiter tw__waiter;

struct tw__waiter {
    uint64_t id;
    uint64_t pusher_id;
    int64_t pusher_priority;
    range__txnwait_push_type type;
    range__txnwait_edge *deps; /* owned; n_deps edges */
    size_t n_deps;
    int64_t queued_ns, query_due_ns;
    bool query_reported;
    tw__pushee *pushee;       /* while waiting; NULL once finished */
    tw__waiter *prev, *next;  /* in pushee's list */
    int ev;                   /* a pending range__txnwait_event_kind, or 0 */
    uint64_t ev_pushee;
    range_txn_status ev_status;
    tw__waiter *ev_next;
};

struct tw__pushee {
    range__txnwait_record rec;
    tw__waiter *head, *tail;
    size_t n;
    bool expiry_reported; /* for this heartbeat */
};

struct range__txnwait {
    range__txnwait_config cfg;
    tw__pushee **pushees; /* owned array and entries */
    size_t pushees_n, pushees_cap;
    tw__waiter **waiters; /* owned array and waiters */
    size_t waiters_n, waiters_cap;
    tw__waiter *ev_head, *ev_tail;
    uint64_t next_waiter_id;
    uint64_t busy, deadlocks;
};

/* ---- helpers ------------------------------------------------------------------------ */

static bool tw__reserve(void **arr, size_t *cap, size_t need, size_t elem_size)
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

static int64_t tw__add_sat(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static bool tw__final(range_txn_status s)
{
    return s == RANGE_TXN_COMMITTED || s == RANGE_TXN_ABORTED;
}

static bool tw__expired(const range__txnwait *tw, const range__txnwait_record *rec, int64_t now_ns)
{
    return now_ns > tw__add_sat(rec->heartbeat_ns, tw->cfg.expiry_ns);
}

static tw__pushee *tw__find_pushee(const range__txnwait *tw, uint64_t id, size_t *idx)
{
    size_t lo = 0, hi = tw->pushees_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tw->pushees[mid]->rec.txn_id == id) {
            *idx = mid;
            return tw->pushees[mid];
        }
        if (tw->pushees[mid]->rec.txn_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *idx = lo;
    return NULL;
}

static tw__waiter *tw__find_waiter(const range__txnwait *tw, uint64_t id, size_t *idx)
{
    size_t lo = 0, hi = tw->waiters_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tw->waiters[mid]->id == id) {
            *idx = mid;
            return tw->waiters[mid];
        }
        if (tw->waiters[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *idx = lo;
    return NULL;
}

static void tw__forget_waiter(range__txnwait *tw, tw__waiter *w)
{
    size_t idx;
    tw__waiter *found = tw__find_waiter(tw, w->id, &idx);
    assert(found == w);
    memmove(&tw->waiters[idx], &tw->waiters[idx + 1],
            (tw->waiters_n - idx - 1) * sizeof(tw->waiters[0]));
    tw->waiters_n--;
    base_free(w->deps);
    base_free(w);
}

static void tw__remove_pushee(range__txnwait *tw, tw__pushee *pe)
{
    size_t idx;
    tw__pushee *found = tw__find_pushee(tw, pe->rec.txn_id, &idx);
    assert(found == pe && pe->n == 0);
    memmove(&tw->pushees[idx], &tw->pushees[idx + 1],
            (tw->pushees_n - idx - 1) * sizeof(tw->pushees[0]));
    tw->pushees_n--;
    base_free(pe);
}

/* Unlink w from its pushee (the pushee entry goes with its last waiter). */
static void tw__unlink(range__txnwait *tw, tw__waiter *w)
{
    tw__pushee *pe = w->pushee;
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        pe->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        pe->tail = w->prev;
    w->prev = w->next = NULL;
    w->pushee = NULL;
    if (--pe->n == 0)
        tw__remove_pushee(tw, pe);
}

/* w stops waiting with an event. */
static void tw__finish(range__txnwait *tw, tw__waiter *w, range__txnwait_event_kind kind,
                       range_txn_status status)
{
    w->ev_pushee = w->pushee->rec.txn_id;
    w->ev_status = status;
    w->ev = (int)kind;
    tw__unlink(tw, w);
    w->ev_next = NULL;
    if (tw->ev_tail != NULL)
        tw->ev_tail->ev_next = w;
    else
        tw->ev_head = w;
    tw->ev_tail = w;
}

/* Merge a record into pe's copy: a record read before one already seen
** never moves the heartbeat back nor undoes a final status. A final one
** ends pe's waiters and pe; *merged (may be NULL) gets the result. */
static void tw__apply_record(range__txnwait *tw, tw__pushee *pe, const range__txnwait_record *rec,
                             range__txnwait_record *merged)
{
    if (rec->heartbeat_ns > pe->rec.heartbeat_ns) {
        pe->rec.heartbeat_ns = rec->heartbeat_ns;
        pe->expiry_reported = false;
    }
    pe->rec.priority = rec->priority;
    if (tw__final(rec->status))
        pe->rec.status = rec->status;
    if (merged != NULL)
        *merged = pe->rec;
    range_txn_status status = pe->rec.status;
    if (!tw__final(status))
        return;
    /* the last finish frees pe: stop on the count, not on pe */
    for (size_t n = pe->n; n > 0; n--)
        tw__finish(tw, pe->head, RANGE_TXNWAIT_EV_FINAL, status);
}

/* A copy of at most deps_max edges (NULL for none). false on NOMEM. */
static bool tw__copy_deps(const range__txnwait *tw, const range__txnwait_edge *deps, size_t n,
                          range__txnwait_edge **out, size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    if (n > tw->cfg.deps_max)
        n = tw->cfg.deps_max;
    if (n == 0 || deps == NULL)
        return true;
    *out = base_malloc(n * sizeof(**out));
    if (*out == NULL)
        return false;
    memcpy(*out, deps, n * sizeof(**out));
    *out_n = n;
    return true;
}

/* ---- deadlock detection ------------------------------------------------------------ */

/* The priority the edges (or the two ends of the push) give txn id. */
static int64_t tw__priority_of(uint64_t id, uint64_t pusher, int64_t pusher_priority,
                               const range__txnwait_record *pushee,
                               const range__txnwait_edge *deps, size_t n)
{
    if (id == pusher)
        return pusher_priority;
    if (id == pushee->txn_id)
        return pushee->priority;
    for (size_t i = 0; i < n; i++) {
        if (deps[i].waiter == id)
            return deps[i].waiter_priority;
        if (deps[i].holder == id)
            return deps[i].holder_priority;
    }
    return 0;
}

/* Does pusher -> pushee close a cycle through deps? Then out->cycle (victim
** first) and true. */
static bool tw__find_cycle(range__txnwait *tw, uint64_t pusher, int64_t pusher_priority,
                           const range__txnwait_record *pushee, const range__txnwait_edge *deps,
                           size_t n, range__txnwait_result *out)
{
    /* BFS over edges from pushee to pusher; reached[i]: edge i's holder end
    ** was reached through edge parent[i] (SIZE_MAX: straight from pushee) */
    size_t parent[RANGE_TXNWAIT_DEPS_MAX], queue[RANGE_TXNWAIT_DEPS_MAX];
    bool used[RANGE_TXNWAIT_DEPS_MAX];
    size_t qh = 0, qt = 0, last = SIZE_MAX;
    if (pusher == 0 || n == 0)
        return false;
    assert(n <= RANGE_TXNWAIT_DEPS_MAX);
    memset(used, 0, sizeof(used));
    for (size_t i = 0; i < n; i++)
        if (deps[i].waiter == pushee->txn_id) {
            used[i] = true;
            parent[i] = SIZE_MAX;
            queue[qt++] = i;
        }
    while (qh < qt && last == SIZE_MAX) {
        size_t e = queue[qh++];
        if (deps[e].holder == pusher) {
            last = e;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (!used[i] && deps[i].waiter == deps[e].holder) {
                used[i] = true;
                parent[i] = e;
                queue[qt++] = i;
            }
    }
    if (last == SIZE_MAX)
        return false;
    /* the path pushee -> ... -> pusher, walked back from its last edge */
    uint64_t path[RANGE_TXNWAIT_CYCLE_MAX];
    size_t len = 0;
    for (size_t e = last; e != SIZE_MAX && len < RANGE_TXNWAIT_DEPS_MAX; e = parent[e])
        path[len++] = deps[e].waiter;
    /* cycle: pusher, then the path from pushee in order */
    uint64_t cycle[RANGE_TXNWAIT_CYCLE_MAX];
    size_t clen = 0;
    cycle[clen++] = pusher;
    while (len > 0)
        cycle[clen++] = path[--len];
    /* the victim: lowest priority, then highest id */
    size_t v = 0;
    int64_t vp = tw__priority_of(cycle[0], pusher, pusher_priority, pushee, deps, n);
    for (size_t i = 1; i < clen; i++) {
        int64_t p = tw__priority_of(cycle[i], pusher, pusher_priority, pushee, deps, n);
        if (p < vp || (p == vp && cycle[i] > cycle[v])) {
            v = i;
            vp = p;
        }
    }
    for (size_t i = 0; i < clen; i++)
        out->cycle[i] = cycle[(v + i) % clen];
    out->cycle_len = clen;
    tw->deadlocks++;
    return true;
}

/* The checks a queued or arriving pusher goes through. Returns true when
** decided (out filled); false: wait. */
static bool tw__decide(range__txnwait *tw, uint64_t pusher, int64_t pusher_priority,
                       range__txnwait_push_type type, const range__txnwait_record *rec,
                       const range__txnwait_edge *deps, size_t n_deps, int64_t now_ns,
                       range__txnwait_result *out)
{
    if (tw__final(rec->status)) {
        out->outcome = RANGE_TXNWAIT_FINAL;
        out->status = rec->status;
        return true;
    }
    if (tw__expired(tw, rec, now_ns)) {
        out->outcome = RANGE_TXNWAIT_ABORT_PUSHEE;
        out->reason = RANGE_TXNWAIT_REASON_EXPIRED;
        return true;
    }
    if (type == RANGE_TXNWAIT_PUSH_ABORT && pusher != 0 && pusher_priority > rec->priority) {
        out->outcome = RANGE_TXNWAIT_ABORT_PUSHEE;
        out->reason = RANGE_TXNWAIT_REASON_PRIORITY;
        return true;
    }
    if (tw__find_cycle(tw, pusher, pusher_priority, rec, deps, n_deps, out)) {
        if (out->cycle[0] == pusher) {
            out->outcome = RANGE_TXNWAIT_DEADLOCK;
            out->reason = RANGE_TXNWAIT_REASON_DEADLOCK;
            return true;
        }
        if (out->cycle[0] == rec->txn_id) {
            out->outcome = RANGE_TXNWAIT_ABORT_PUSHEE;
            out->reason = RANGE_TXNWAIT_REASON_DEADLOCK;
            return true;
        }
        /* a third member is the victim: it will see the cycle itself */
    }
    return false;
}

/* ---- the API ------------------------------------------------------------------------ */

int range__txnwait_new(const range__txnwait_config *cfg, range__txnwait **out)
{
    *out = NULL;
    if (cfg != NULL && cfg->deps_max > RANGE_TXNWAIT_DEPS_MAX)
        return RANGE_ERR_INVALID;
    range__txnwait *tw = base_calloc(1, sizeof(*tw)); /* owner: caller, range__txnwait_free */
    if (tw == NULL)
        return RANGE_ERR_NOMEM;
    if (cfg != NULL)
        tw->cfg = *cfg;
    if (tw->cfg.pushees_max == 0)
        tw->cfg.pushees_max = RANGE_TXNWAIT_PUSHEES_MAX;
    if (tw->cfg.pushers_per_txn_max == 0)
        tw->cfg.pushers_per_txn_max = RANGE_TXNWAIT_PUSHERS_PER_TXN_MAX;
    if (tw->cfg.pushers_max == 0)
        tw->cfg.pushers_max = RANGE_TXNWAIT_PUSHERS_MAX;
    if (tw->cfg.deps_max == 0)
        tw->cfg.deps_max = RANGE_TXNWAIT_DEPS_MAX;
    if (tw->cfg.expiry_ns <= 0)
        tw->cfg.expiry_ns = RANGE_TXNWAIT_EXPIRY_NS;
    if (tw->cfg.query_interval_ns <= 0)
        tw->cfg.query_interval_ns = RANGE_TXNWAIT_QUERY_INTERVAL_NS;
    *out = tw;
    return RANGE_OK;
}

void range__txnwait_free(range__txnwait *tw)
{
    if (tw == NULL)
        return;
    for (size_t i = 0; i < tw->pushees_n; i++)
        base_free(tw->pushees[i]);
    for (size_t i = 0; i < tw->waiters_n; i++) {
        base_free(tw->waiters[i]->deps);
        base_free(tw->waiters[i]);
    }
    base_free(tw->pushees);
    base_free(tw->waiters);
    base_free(tw);
}

static bool tw__valid_status(range_txn_status s)
{
    return s == RANGE_TXN_PENDING || s == RANGE_TXN_COMMITTED || s == RANGE_TXN_ABORTED;
}

int range__txnwait_push(range__txnwait *tw, const range__txnwait_pusher *pusher,
                        const range__txnwait_record *record, int64_t now_ns,
                        range__txnwait_result *out)
{
    memset(out, 0, sizeof(*out));
    if (pusher == NULL || record == NULL || record->txn_id == 0 ||
        pusher->id == record->txn_id || !tw__valid_status(record->status) ||
        (pusher->type != RANGE_TXNWAIT_PUSH_ABORT && pusher->type != RANGE_TXNWAIT_PUSH_WAIT))
        return RANGE_ERR_INVALID;
    size_t idx;
    range__txnwait_record rec = *record;
    tw__pushee *pe = tw__find_pushee(tw, record->txn_id, &idx);
    if (pe != NULL)
        tw__apply_record(tw, pe, record, &rec); /* may end pe */
    size_t n_deps = pusher->id == 0 ? 0 : pusher->n_deps;
    if (n_deps > tw->cfg.deps_max)
        n_deps = tw->cfg.deps_max;
    if (tw__decide(tw, pusher->id, pusher->priority, pusher->type, &rec, pusher->deps, n_deps,
                   now_ns, out))
        return RANGE_OK;
    /* queue */
    pe = tw__find_pushee(tw, record->txn_id, &idx);
    if ((pe == NULL && tw->pushees_n >= tw->cfg.pushees_max) ||
        (pe != NULL && pe->n >= tw->cfg.pushers_per_txn_max) ||
        tw->waiters_n >= tw->cfg.pushers_max) {
        tw->busy++;
        return RANGE_ERR_BUSY;
    }
    if (!tw__reserve((void **)&tw->waiters, &tw->waiters_cap, tw->waiters_n + 1,
                     sizeof(tw->waiters[0])) ||
        !tw__reserve((void **)&tw->pushees, &tw->pushees_cap, tw->pushees_n + 1,
                     sizeof(tw->pushees[0])))
        return RANGE_ERR_NOMEM;
    tw__waiter *w = base_calloc(1, sizeof(*w)); /* owner: tw->waiters */
    if (w == NULL)
        return RANGE_ERR_NOMEM;
    if (!tw__copy_deps(tw, pusher->deps, n_deps, &w->deps, &w->n_deps)) {
        base_free(w);
        return RANGE_ERR_NOMEM;
    }
    if (pe == NULL) {
        pe = base_calloc(1, sizeof(*pe)); /* owner: tw->pushees */
        if (pe == NULL) {
            base_free(w->deps);
            base_free(w);
            return RANGE_ERR_NOMEM;
        }
        pe->rec = *record;
        memmove(&tw->pushees[idx + 1], &tw->pushees[idx],
                (tw->pushees_n - idx) * sizeof(tw->pushees[0]));
        tw->pushees[idx] = pe;
        tw->pushees_n++;
    }
    w->id = ++tw->next_waiter_id;
    w->pusher_id = pusher->id;
    w->pusher_priority = pusher->priority;
    w->type = pusher->type;
    w->queued_ns = now_ns;
    w->query_due_ns = tw__add_sat(now_ns, tw->cfg.query_interval_ns);
    w->pushee = pe;
    w->prev = pe->tail;
    if (pe->tail != NULL)
        pe->tail->next = w;
    else
        pe->head = w;
    pe->tail = w;
    pe->n++;
    tw->waiters[tw->waiters_n++] = w; /* ids grow: stays sorted */
    out->outcome = RANGE_TXNWAIT_QUEUED;
    out->waiter_id = w->id;
    out->query_due_ns = w->query_due_ns;
    return RANGE_OK;
}

void range__txnwait_update_record(range__txnwait *tw, const range__txnwait_record *record)
{
    size_t idx;
    tw__pushee *pe = tw__find_pushee(tw, record->txn_id, &idx);
    if (pe != NULL)
        tw__apply_record(tw, pe, record, NULL);
}

int range__txnwait_refresh(range__txnwait *tw, uint64_t waiter_id,
                           const range__txnwait_edge *deps, size_t n_deps, int64_t now_ns,
                           range__txnwait_result *out)
{
    memset(out, 0, sizeof(*out));
    size_t idx;
    tw__waiter *w = tw__find_waiter(tw, waiter_id, &idx);
    if (w == NULL || w->pushee == NULL)
        return RANGE_NOT_FOUND;
    range__txnwait_edge *copy;
    size_t n_copy;
    if (!tw__copy_deps(tw, w->pusher_id == 0 ? NULL : deps, n_deps, &copy, &n_copy))
        return RANGE_ERR_NOMEM;
    base_free(w->deps);
    w->deps = copy;
    w->n_deps = n_copy;
    w->query_due_ns = tw__add_sat(now_ns, tw->cfg.query_interval_ns);
    w->query_reported = false;
    /* an ABORT push already lost on priority when it queued; only expiry
    ** and deadlocks can change since */
    if (tw__decide(tw, w->pusher_id, w->pusher_priority, RANGE_TXNWAIT_PUSH_WAIT, &w->pushee->rec,
                   w->deps, w->n_deps, now_ns, out) &&
        out->outcome == RANGE_TXNWAIT_DEADLOCK) {
        tw__unlink(tw, w);
        tw__forget_waiter(tw, w);
        return RANGE_OK;
    }
    if (out->outcome == 0)
        out->outcome = RANGE_TXNWAIT_QUEUED;
    out->waiter_id = w->id;
    out->query_due_ns = w->query_due_ns;
    return RANGE_OK;
}

size_t range__txnwait_dependents(const range__txnwait *tw, uint64_t txn_id,
                                 range__txnwait_edge *out, size_t cap, bool *truncated)
{
    size_t n = 0, idx;
    bool cut = false;
    const tw__pushee *pe = tw__find_pushee(tw, txn_id, &idx);
    for (int pass = 0; pe != NULL && pass < 2; pass++)
        for (const tw__waiter *w = pe->head; w != NULL; w = w->next) {
            if (w->pusher_id == 0)
                continue;
            /* pass 0: the direct edges; pass 1: what each reported */
            const range__txnwait_edge direct = {w->pusher_id, w->pusher_priority, txn_id,
                                                pe->rec.priority};
            const range__txnwait_edge *edges = pass == 0 ? &direct : w->deps;
            size_t count = pass == 0 ? 1 : w->n_deps;
            for (size_t i = 0; i < count; i++) {
                bool dup = false;
                for (size_t j = 0; j < n && !dup; j++)
                    dup = out[j].waiter == edges[i].waiter && out[j].holder == edges[i].holder;
                if (dup)
                    continue;
                if (n == cap) {
                    cut = true;
                    continue;
                }
                out[n++] = edges[i];
            }
        }
    if (truncated != NULL)
        *truncated = cut;
    return n;
}

int range__txnwait_cancel(range__txnwait *tw, uint64_t waiter_id)
{
    size_t idx;
    tw__waiter *w = tw__find_waiter(tw, waiter_id, &idx);
    if (w == NULL || w->pushee == NULL)
        return RANGE_NOT_FOUND;
    tw__unlink(tw, w);
    tw__forget_waiter(tw, w);
    return RANGE_OK;
}

void range__txnwait_clear(range__txnwait *tw)
{
    while (tw->pushees_n > 0) {
        tw__pushee *pe = tw->pushees[0];
        for (size_t n = pe->n; n > 0; n--)
            tw__finish(tw, pe->head, RANGE_TXNWAIT_EV_ABANDONED, pe->rec.status);
    }
}

bool range__txnwait_next_event(range__txnwait *tw, range__txnwait_event *out)
{
    tw__waiter *w = tw->ev_head;
    if (w == NULL)
        return false;
    tw->ev_head = w->ev_next;
    if (tw->ev_head == NULL)
        tw->ev_tail = NULL;
    memset(out, 0, sizeof(*out));
    out->kind = (range__txnwait_event_kind)w->ev;
    out->waiter_id = w->id;
    out->pusher_id = w->pusher_id;
    out->pushee_id = w->ev_pushee;
    out->status = w->ev_status;
    tw__forget_waiter(tw, w);
    return true;
}

size_t range__txnwait_due_work(range__txnwait *tw, int64_t now_ns, range__txnwait_due *out,
                               size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < tw->pushees_n && n < cap; i++) {
        tw__pushee *pe = tw->pushees[i];
        if (!pe->expiry_reported && tw__expired(tw, &pe->rec, now_ns)) {
            pe->expiry_reported = true;
            out[n++] = (range__txnwait_due){RANGE_TXNWAIT_DUE_EXPIRED, pe->head->id,
                                            pe->head->pusher_id, pe->rec.txn_id};
        }
        for (tw__waiter *w = pe->head; w != NULL && n < cap; w = w->next) {
            if (w->pusher_id == 0 || w->query_reported || w->query_due_ns > now_ns)
                continue;
            w->query_reported = true;
            out[n++] = (range__txnwait_due){RANGE_TXNWAIT_DUE_QUERY, w->id, w->pusher_id,
                                            pe->rec.txn_id};
        }
    }
    return n;
}

int64_t range__txnwait_next_due(const range__txnwait *tw)
{
    int64_t best = INT64_MAX;
    for (size_t i = 0; i < tw->pushees_n; i++) {
        const tw__pushee *pe = tw->pushees[i];
        if (!pe->expiry_reported) {
            int64_t at = tw__add_sat(tw__add_sat(pe->rec.heartbeat_ns, tw->cfg.expiry_ns), 1);
            best = at < best ? at : best;
        }
        for (const tw__waiter *w = pe->head; w != NULL; w = w->next)
            if (w->pusher_id != 0 && !w->query_reported && w->query_due_ns < best)
                best = w->query_due_ns;
    }
    return best;
}

void range__txnwait_visit(const range__txnwait *tw, const range__txnwait_visitor *v)
{
    for (size_t i = 0; i < tw->pushees_n; i++) {
        const tw__pushee *pe = tw->pushees[i];
        if (v->pushee != NULL)
            v->pushee(v->ctx, &pe->rec, pe->n);
        if (v->waiter == NULL)
            continue;
        for (const tw__waiter *w = pe->head; w != NULL; w = w->next) {
            range__txnwait_waiter_view view = {w->id,     w->pusher_id, w->pusher_priority,
                                               w->type,   w->n_deps,    w->queued_ns,
                                               w->query_due_ns};
            v->waiter(v->ctx, &view);
        }
    }
}

void range__txnwait_get_stats(const range__txnwait *tw, range__txnwait_stats *out)
{
    out->pushees = tw->pushees_n;
    out->waiters = tw->waiters_n;
    out->busy = tw->busy;
    out->deadlocks = tw->deadlocks;
}

bool range__txnwait_check(const range__txnwait *tw)
{
    size_t waiting = 0, finished = 0;
    if (tw->pushees_n > tw->cfg.pushees_max || tw->waiters_n > tw->cfg.pushers_max)
        return false;
    for (size_t i = 0; i < tw->pushees_n; i++) {
        const tw__pushee *pe = tw->pushees[i];
        if (pe->n == 0 || pe->n > tw->cfg.pushers_per_txn_max || tw__final(pe->rec.status))
            return false;
        if (i > 0 && tw->pushees[i - 1]->rec.txn_id >= pe->rec.txn_id)
            return false;
        size_t n = 0;
        const tw__waiter *prev = NULL;
        for (const tw__waiter *w = pe->head; w != NULL; w = w->next) {
            if (++n > pe->n || w->prev != prev || w->pushee != pe || w->ev != 0 ||
                w->n_deps > tw->cfg.deps_max || w->pusher_id == pe->rec.txn_id)
                return false;
            prev = w;
        }
        if (n != pe->n || pe->tail != prev)
            return false;
        waiting += n;
    }
    for (size_t i = 0; i < tw->waiters_n; i++) {
        const tw__waiter *w = tw->waiters[i];
        if (i > 0 && tw->waiters[i - 1]->id >= w->id)
            return false;
        if (w->pushee == NULL) {
            if (w->ev == 0)
                return false;
            finished++;
        }
    }
    if (waiting + finished != tw->waiters_n)
        return false;
    size_t n = 0;
    const tw__waiter *last = NULL;
    for (const tw__waiter *w = tw->ev_head; w != NULL; w = w->ev_next) {
        if (++n > finished || w->pushee != NULL || w->ev == 0)
            return false;
        last = w;
    }
    return n == finished && tw->ev_tail == last;
}
