/*
** tests/range/test_locktable.c: the lock table (range/locktable.c) and the
** transaction wait queue (range/txnwait.c), pure structures tested directly:
**
**   1. data-driven files, tests/range/testdata/locktable/ (*.txt) and
**      testdata/txnwait/ (tests/lib/datadriven.h; MERIDIAN_REWRITE=1
**      rewrites the expected outputs: review the diff). Each file drives
**      simulated ranges, each with a lock table and a wait queue, and
**      transactions whose records live at a "home" range;
**   2. a randomized run of the lock table against a model (seeded; the seed
**      is printed on failure and MERIDIAN_SEED=N replays one), checking after
**      every step: at most one holder per key, every waiter blocked by a
**      conflicting holder, every grant at the head of its queue or re-entrant,
**      queues in FIFO order, every waiter ending exactly once;
**   3. a randomized deadlock run of the wait queues: random waits-for graphs
**      (each txn waits for at most one other) over several ranges; every
**      cycle is found within a bounded number of refresh rounds, exactly its
**      expected victim (lowest priority, then highest id) is aborted, and no
**      transaction outside a cycle is;
**   4. out-of-memory at every allocation in turn: a failed call changes
**      nothing.
**
** Commands of the data-driven files (times in ms, timestamps plain numbers):
**   new-range name=R [keys=N] [key-bytes=N] [waiters-per-key=N] [waiters=N]
**             [push-delay=MS] [expiry=MS] [query-interval=MS] [pushees=N]
**             [pushers-per-txn=N] [pushers=N] [deps=N]
**   new-txn name=T [priority=N] [home=R]        ids 1, 2, ... in order
**   restart txn=T                               epoch + 1
**   acquire req=W txn=T range=R key=K [dur=repl ts=N] [wait=error] [epoch=N]
**   read req=W [txn=T] range=R key=K ts=N [wait=error]
**   discover range=R key=K txn=T ts=N [epoch=N]  an intent found in storage
**   release txn=T [range=R [key=K]]             no range: every range
**   cancel req=W                                a lock, read or push request
**   advance ms=N                                the clock moves
**   pushes range=R                              pushes now due
**   waits-for range=R
**   print range=R                               the lock table
**   clear range=R                               lease lost: both structures
**   push req=P txn=T|none pushee=T [type=abort|wait] [heartbeat=MS]
**                       at the pushee's home; heartbeat: a stale record's
**   refresh req=P       query the pusher's home for its dependents, then refresh
**   dependents range=R txn=T [cap=N]
**   heartbeat txn=T / commit txn=T / abort txn=T       the record changes
**   due range=R                                 the wait queue's due work
**   print-queue range=R
** After every command the events of every range are printed and both
** structures' invariants are checked.
*/
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"
#include "range/locktable_int.h"
#include "range/txnwait_int.h"
#include "tests/lib/datadriven.h"

#ifndef RANGE_TESTDATA_DIR
#error "RANGE_TESTDATA_DIR must be defined"
#endif

#define MS 1000000LL

static uint64_t g_seed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "\n  %s:%d: %s\n  replay: MERIDIAN_SEED=%llu\n", __FILE__,     \
                    __LINE__, #cond, (unsigned long long)g_seed);                          \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

static hlc_timestamp T(int64_t wall) { return (hlc_timestamp){wall, 0}; }

static const char *rc_name(int rc)
{
    switch (rc) {
    case RANGE_OK: return "OK";
    case RANGE_NOT_FOUND: return "NOT_FOUND";
    case RANGE_ERR_NOMEM: return "NOMEM";
    case RANGE_ERR_INVALID: return "INVALID";
    case RANGE_ERR_BUSY: return "BUSY";
    case RANGE_ERR_CONFLICT: return "CONFLICT";
    default: return "?";
    }
}

/* ==== the data-driven driver ====================================================== */

#define DD_RANGES 4
#define DD_TXNS 16
#define DD_REQS 256

typedef struct dd_range {
    char name[DD_TOKEN_SIZE];
    range__locktable *lt; /* owned */
    range__txnwait *tw;   /* owned */
} dd_range;

typedef struct dd_txn {
    char name[DD_TOKEN_SIZE];
    range__lock_txn meta;
    int home; /* range index of its record */
    range_txn_status status;
    int64_t heartbeat_ns;
} dd_txn;

enum { REQ_LOCK = 1, REQ_READ, REQ_PUSH };

typedef struct dd_req {
    char name[DD_TOKEN_SIZE];
    int kind;
    int range;  /* lock/read: its table; push: the pushee's home */
    int txn;    /* -1: none */
    int pushee; /* push */
    uint64_t waiter_id;
    char key[DD_TOKEN_SIZE];
} dd_req;

typedef struct dd_ctx {
    dd_range ranges[DD_RANGES];
    int n_ranges;
    dd_txn txns[DD_TXNS];
    int n_txns;
    dd_req reqs[DD_REQS];
    int n_reqs;
    int64_t now_ns;
} dd_ctx;

static const char *arg(const dd_case *c, const char *key)
{
    const dd_arg *a = dd_arg_find(c, key);
    return a != NULL && a->n_vals > 0 ? a->vals[0] : NULL;
}

static int find_range(const dd_ctx *x, const char *name)
{
    for (int i = 0; name != NULL && i < x->n_ranges; i++)
        if (strcmp(x->ranges[i].name, name) == 0)
            return i;
    return -1;
}

static int find_txn(const dd_ctx *x, const char *name)
{
    for (int i = 0; name != NULL && i < x->n_txns; i++)
        if (strcmp(x->txns[i].name, name) == 0)
            return i;
    return -1;
}

static int find_req(const dd_ctx *x, const char *name)
{
    for (int i = 0; name != NULL && i < x->n_reqs; i++)
        if (strcmp(x->reqs[i].name, name) == 0)
            return i;
    return -1;
}

static int req_by_waiter(const dd_ctx *x, int range, bool push, uint64_t waiter_id)
{
    for (int i = 0; i < x->n_reqs; i++)
        if (x->reqs[i].range == range && (x->reqs[i].kind == REQ_PUSH) == push &&
            x->reqs[i].waiter_id == waiter_id)
            return i;
    return -1;
}

static const char *txn_name(const dd_ctx *x, uint64_t id)
{
    if (id == 0)
        return "none";
    if (id <= (uint64_t)x->n_txns)
        return x->txns[id - 1].name;
    return "?";
}

static const char *req_name(const dd_ctx *x, int range, bool push, uint64_t waiter_id)
{
    int r = req_by_waiter(x, range, push, waiter_id);
    return r >= 0 ? x->reqs[r].name : "?";
}

static void print_holder(const dd_ctx *x, const range__lock_holder *h, base_buf *out)
{
    base_buf_printf(out, "%s", txn_name(x, h->txn.id));
    if (h->durability == RANGE_LOCK_REPLICATED)
        base_buf_printf(out, " repl@%lld", (long long)h->ts.wall_ns);
    else
        base_buf_printf(out, " unrepl");
    if (h->txn.epoch != 0)
        base_buf_printf(out, " epoch=%u", h->txn.epoch);
}

static const char *status_name(range_txn_status s)
{
    return s == RANGE_TXN_COMMITTED ? "committed" : s == RANGE_TXN_ABORTED ? "aborted" : "pending";
}

static const char *reason_name(range__txnwait_reason r)
{
    switch (r) {
    case RANGE_TXNWAIT_REASON_EXPIRED: return "expired";
    case RANGE_TXNWAIT_REASON_PRIORITY: return "priority";
    case RANGE_TXNWAIT_REASON_DEADLOCK: return "deadlock";
    default: return "none";
    }
}

static void print_events(dd_ctx *x, base_buf *out)
{
    for (int r = 0; r < x->n_ranges; r++) {
        range__locktable_event ev;
        while (range__locktable_next_event(x->ranges[r].lt, &ev)) {
            int q = req_by_waiter(x, r, false, ev.waiter_id);
            const char *key = q >= 0 ? x->reqs[q].key : "?";
            base_buf_printf(out, "event %s: %s %s (%s) key=%s", x->ranges[r].name,
                            ev.kind == RANGE_LOCK_EV_GRANTED      ? "granted"
                            : ev.kind == RANGE_LOCK_EV_PROCEED    ? "proceed"
                            : ev.kind == RANGE_LOCK_EV_NEW_HOLDER ? "new-holder"
                                                                  : "abandoned",
                            q >= 0 ? x->reqs[q].name : "?", txn_name(x, ev.txn.id), key);
            if (ev.kind == RANGE_LOCK_EV_NEW_HOLDER) {
                base_buf_printf(out, " holder=");
                print_holder(x, &ev.holder, out);
                base_buf_printf(out, " push-due=%lldms", (long long)(ev.push_due_ns / MS));
            } else if (ev.kind == RANGE_LOCK_EV_GRANTED) {
                base_buf_printf(out, " as ");
                print_holder(x, &ev.holder, out);
            }
            base_buf_printf(out, "\n");
        }
        range__txnwait_event tev;
        while (range__txnwait_next_event(x->ranges[r].tw, &tev)) {
            base_buf_printf(out, "event %s: push %s (%s -> %s) %s", x->ranges[r].name,
                            req_name(x, r, true, tev.waiter_id), txn_name(x, tev.pusher_id),
                            txn_name(x, tev.pushee_id),
                            tev.kind == RANGE_TXNWAIT_EV_FINAL ? "final" : "abandoned");
            if (tev.kind == RANGE_TXNWAIT_EV_FINAL)
                base_buf_printf(out, " %s", status_name(tev.status));
            base_buf_printf(out, "\n");
        }
    }
    for (int r = 0; r < x->n_ranges; r++) {
        if (!range__locktable_check(x->ranges[r].lt))
            base_buf_printf(out, "LOCK TABLE CHECK FAILED at %s\n", x->ranges[r].name);
        if (!range__txnwait_check(x->ranges[r].tw))
            base_buf_printf(out, "WAIT QUEUE CHECK FAILED at %s\n", x->ranges[r].name);
    }
}

static void print_lock_result(const dd_ctx *x, int rc, const range__locktable_result *res,
                              const char *req, base_buf *out)
{
    if (rc != RANGE_OK) {
        base_buf_printf(out, "error %s", rc_name(rc));
        if (rc == RANGE_ERR_BUSY && res->holder.txn.id != 0) {
            base_buf_printf(out, " (held by ");
            print_holder(x, &res->holder, out);
            base_buf_printf(out, ")");
        }
        base_buf_printf(out, "\n");
        return;
    }
    switch (res->outcome) {
    case RANGE_LOCK_GRANTED:
        base_buf_printf(out, "granted\n");
        break;
    case RANGE_LOCK_QUEUED:
        base_buf_printf(out, "queued %s behind ", req);
        print_holder(x, &res->holder, out);
        base_buf_printf(out, ", push due at %lldms\n", (long long)(res->push_due_ns / MS));
        break;
    case RANGE_LOCK_CONFLICT:
        base_buf_printf(out, "conflict with ");
        print_holder(x, &res->holder, out);
        base_buf_printf(out, "\n");
        break;
    }
}

static void print_cycle(const dd_ctx *x, const range__txnwait_result *res, base_buf *out)
{
    base_buf_printf(out, "cycle:");
    for (size_t i = 0; i < res->cycle_len; i++)
        base_buf_printf(out, " %s ->", txn_name(x, res->cycle[i]));
    base_buf_printf(out, " %s (victim %s)", txn_name(x, res->cycle[0]),
                    txn_name(x, res->cycle[0]));
}

static void print_push_result(const dd_ctx *x, int rc, const range__txnwait_result *res,
                              const dd_req *q, const dd_txn *pushee, base_buf *out)
{
    if (rc != RANGE_OK) {
        base_buf_printf(out, "error %s\n", rc_name(rc));
        return;
    }
    switch (res->outcome) {
    case RANGE_TXNWAIT_FINAL:
        base_buf_printf(out, "final: %s is %s\n", pushee->name, status_name(res->status));
        break;
    case RANGE_TXNWAIT_ABORT_PUSHEE:
        base_buf_printf(out, "abort %s: %s", pushee->name, reason_name(res->reason));
        break;
    case RANGE_TXNWAIT_QUEUED:
        base_buf_printf(out, "queued %s at %s, query due at %lldms", q->name,
                        x->ranges[q->range].name, (long long)(res->query_due_ns / MS));
        break;
    case RANGE_TXNWAIT_DEADLOCK:
        base_buf_printf(out, "deadlock: %s is the victim", q->txn >= 0 ? x->txns[q->txn].name : "?");
        break;
    }
    if (res->outcome != RANGE_TXNWAIT_FINAL) {
        if (res->cycle_len > 0) {
            base_buf_printf(out, "; ");
            print_cycle(x, res, out);
        }
        base_buf_printf(out, "\n");
    }
}

static void key_visit(void *ctx, const uint8_t *key, size_t key_len, const range__lock_holder *h)
{
    void **p = ctx;
    base_buf_printf(p[1], "key=%.*s holder=", (int)key_len, (const char *)key);
    print_holder(p[0], h, p[1]);
    base_buf_printf(p[1], "\n");
}

static void waiter_visit(void *ctx, const range__locktable_waiter_view *w)
{
    void **p = ctx;
    const dd_ctx *x = p[0];
    int r = *(int *)p[2];
    base_buf_printf(p[1], "  %s %s %s", w->read ? "read" : "lock",
                    req_name(x, r, false, w->waiter_id), txn_name(x, w->txn.id));
    if (w->read)
        base_buf_printf(p[1], " @%lld", (long long)w->ts.wall_ns);
    else if (w->durability == RANGE_LOCK_REPLICATED)
        base_buf_printf(p[1], " repl@%lld", (long long)w->ts.wall_ns);
    else
        base_buf_printf(p[1], " unrepl");
    base_buf_printf(p[1], " queued=%lldms push-due=%lldms%s\n", (long long)(w->queued_ns / MS),
                    (long long)(w->push_due_ns / MS), w->push_reported ? " (pushed)" : "");
}

static void pushee_visit(void *ctx, const range__txnwait_record *rec, size_t n)
{
    void **p = ctx;
    base_buf_printf(p[1], "pushee %s %s heartbeat=%lldms waiters=%zu\n",
                    txn_name(p[0], rec->txn_id), status_name(rec->status),
                    (long long)(rec->heartbeat_ns / MS), n);
}

static void pusher_visit(void *ctx, const range__txnwait_waiter_view *w)
{
    void **p = ctx;
    const dd_ctx *x = p[0];
    int r = *(int *)p[2];
    base_buf_printf(p[1], "  %s %s %s deps=%zu query-due=%lldms\n",
                    req_name(x, r, true, w->waiter_id), txn_name(x, w->pusher_id),
                    w->type == RANGE_TXNWAIT_PUSH_ABORT ? "abort" : "wait", w->n_deps,
                    (long long)(w->query_due_ns / MS));
}

static range__txnwait_record record_of(const dd_txn *t)
{
    return (range__txnwait_record){t->meta.id, t->meta.priority, t->status, t->heartbeat_ns};
}

static dd_req *new_req(dd_ctx *x, const char *name, int kind, base_buf *out)
{
    if (name == NULL || find_req(x, name) >= 0 || x->n_reqs >= DD_REQS) {
        base_buf_printf(out, "bad or duplicate req=\n");
        return NULL;
    }
    dd_req *q = &x->reqs[x->n_reqs++];
    memset(q, 0, sizeof(*q));
    snprintf(q->name, sizeof(q->name), "%s", name);
    q->kind = kind;
    q->txn = -1;
    q->pushee = -1;
    return q;
}

static int cmd_new_range(dd_ctx *x, const dd_case *c, base_buf *out)
{
    const char *name = arg(c, "name");
    if (name == NULL || find_range(x, name) >= 0 || x->n_ranges >= DD_RANGES)
        return base_buf_printf(out, "bad name\n"), 1;
    dd_range *r = &x->ranges[x->n_ranges];
    range__locktable_config lc = {
        .keys_max = (size_t)dd_arg_int(c, "keys", 0),
        .key_bytes_max = (size_t)dd_arg_int(c, "key-bytes", 0),
        .waiters_per_key_max = (size_t)dd_arg_int(c, "waiters-per-key", 0),
        .waiters_max = (size_t)dd_arg_int(c, "waiters", 0),
        .push_delay_ns = dd_arg_int(c, "push-delay", 0) * MS,
    };
    if (dd_has(c, "push-delay") && lc.push_delay_ns == 0)
        lc.push_delay_ns = -1; /* push at once */
    range__txnwait_config wc = {
        .pushees_max = (size_t)dd_arg_int(c, "pushees", 0),
        .pushers_per_txn_max = (size_t)dd_arg_int(c, "pushers-per-txn", 0),
        .pushers_max = (size_t)dd_arg_int(c, "pushers", 0),
        .deps_max = (size_t)dd_arg_int(c, "deps", 0),
        .expiry_ns = dd_arg_int(c, "expiry", 0) * MS,
        .query_interval_ns = dd_arg_int(c, "query-interval", 0) * MS,
    };
    if (range__locktable_new(&lc, &r->lt) != RANGE_OK || range__txnwait_new(&wc, &r->tw) != RANGE_OK)
        return base_buf_printf(out, "cannot create\n"), 1;
    snprintf(r->name, sizeof(r->name), "%s", name);
    x->n_ranges++;
    base_buf_printf(out, "ok\n");
    return 0;
}

static int cmd_new_txn(dd_ctx *x, const dd_case *c, base_buf *out)
{
    const char *name = arg(c, "name");
    if (name == NULL || find_txn(x, name) >= 0 || strcmp(name, "none") == 0 ||
        x->n_txns >= DD_TXNS)
        return base_buf_printf(out, "bad name\n"), 1;
    dd_txn *t = &x->txns[x->n_txns];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->meta.id = (uint64_t)x->n_txns + 1;
    t->meta.priority = dd_arg_int(c, "priority", 0);
    t->home = arg(c, "home") != NULL ? find_range(x, arg(c, "home")) : 0;
    if (t->home < 0 || t->home >= x->n_ranges)
        return base_buf_printf(out, "bad home\n"), 1;
    t->status = RANGE_TXN_PENDING;
    t->heartbeat_ns = x->now_ns;
    x->n_txns++;
    base_buf_printf(out, "ok\n");
    return 0;
}

/* range=, txn=, key= of a lock command; -1 when missing */
static int parse_rtk(dd_ctx *x, const dd_case *c, int *r, int *t, const char **k, base_buf *out)
{
    *r = find_range(x, arg(c, "range"));
    *t = find_txn(x, arg(c, "txn"));
    *k = arg(c, "key");
    if (*r < 0 || *k == NULL) {
        base_buf_printf(out, "need range= and key=\n");
        return 1;
    }
    return 0;
}

/* The transaction's identity, with epoch=N overriding its epoch (stale requests). */
static range__lock_txn meta_of(const dd_ctx *x, const dd_case *c, int t)
{
    range__lock_txn m = x->txns[t].meta;
    if (dd_has(c, "epoch"))
        m.epoch = (uint32_t)dd_arg_int(c, "epoch", 0);
    return m;
}

static int cmd_lock(dd_ctx *x, const dd_case *c, bool read, base_buf *out)
{
    int r, t;
    const char *k;
    if (parse_rtk(x, c, &r, &t, &k, out) != 0)
        return 1;
    if (!read && t < 0)
        return base_buf_printf(out, "need txn=\n"), 1;
    dd_req *q = new_req(x, arg(c, "req"), read ? REQ_READ : REQ_LOCK, out);
    if (q == NULL)
        return 1;
    q->range = r;
    q->txn = t;
    snprintf(q->key, sizeof(q->key), "%s", k);
    const char *dur = arg(c, "dur");
    const char *wait = arg(c, "wait");
    range__lock_wait_policy policy =
        wait != NULL && strcmp(wait, "error") == 0 ? RANGE_LOCK_WAIT_ERROR : RANGE_LOCK_WAIT_BLOCK;
    range__locktable_result res;
    range__lock_txn meta = t >= 0 ? meta_of(x, c, t) : (range__lock_txn){0, 0, 0};
    int rc;
    if (read)
        rc = range__locktable_read(x->ranges[r].lt, t >= 0 ? &meta : NULL,
                                   (const uint8_t *)k, strlen(k), T(dd_arg_int(c, "ts", 0)),
                                   policy, x->now_ns, &res);
    else
        rc = range__locktable_acquire(
            x->ranges[r].lt, &meta, (const uint8_t *)k, strlen(k),
            dur != NULL && strcmp(dur, "repl") == 0 ? RANGE_LOCK_REPLICATED
                                                    : RANGE_LOCK_UNREPLICATED,
            T(dd_arg_int(c, "ts", 0)), policy, x->now_ns, &res);
    if (rc == RANGE_OK && res.outcome == RANGE_LOCK_QUEUED)
        q->waiter_id = res.waiter_id;
    print_lock_result(x, rc, &res, q->name, out);
    return 0;
}

static int cmd_discover(dd_ctx *x, const dd_case *c, base_buf *out)
{
    int r, t;
    const char *k;
    if (parse_rtk(x, c, &r, &t, &k, out) != 0 || t < 0)
        return 1;
    range__lock_txn replaced;
    range__lock_txn meta = meta_of(x, c, t);
    int rc = range__locktable_add_discovered(x->ranges[r].lt, &meta,
                                             (const uint8_t *)k, strlen(k),
                                             T(dd_arg_int(c, "ts", 0)), x->now_ns, &replaced);
    if (rc != RANGE_OK)
        base_buf_printf(out, "error %s\n", rc_name(rc));
    else if (replaced.id != 0)
        base_buf_printf(out, "ok, replaced %s's unreplicated lock\n", txn_name(x, replaced.id));
    else
        base_buf_printf(out, "ok\n");
    return 0;
}

static int cmd_release(dd_ctx *x, const dd_case *c, base_buf *out)
{
    int t = find_txn(x, arg(c, "txn"));
    int r = find_range(x, arg(c, "range"));
    const char *k = arg(c, "key");
    if (t < 0)
        return base_buf_printf(out, "need txn=\n"), 1;
    if (k != NULL) {
        if (r < 0)
            return base_buf_printf(out, "need range=\n"), 1;
        int rc = range__locktable_release(x->ranges[r].lt, x->txns[t].meta.id,
                                          (const uint8_t *)k, strlen(k), x->now_ns);
        base_buf_printf(out, "%s\n", rc == RANGE_OK ? "released" : rc_name(rc));
        return 0;
    }
    for (int i = 0; i < x->n_ranges; i++) {
        if (r >= 0 && i != r)
            continue;
        size_t n = range__locktable_release_all(x->ranges[i].lt, x->txns[t].meta.id, x->now_ns);
        base_buf_printf(out, "%s: released %zu\n", x->ranges[i].name, n);
    }
    return 0;
}

static int cmd_cancel(dd_ctx *x, const dd_case *c, base_buf *out)
{
    int i = find_req(x, arg(c, "req"));
    if (i < 0)
        return base_buf_printf(out, "no such req\n"), 1;
    dd_req *q = &x->reqs[i];
    int rc = q->kind == REQ_PUSH ? range__txnwait_cancel(x->ranges[q->range].tw, q->waiter_id)
                                 : range__locktable_cancel(x->ranges[q->range].lt, q->waiter_id);
    base_buf_printf(out, "%s\n", rc == RANGE_OK ? "cancelled" : rc_name(rc));
    return 0;
}

static int cmd_pushes(dd_ctx *x, const dd_case *c, base_buf *out)
{
    int r = find_range(x, arg(c, "range"));
    if (r < 0)
        return base_buf_printf(out, "need range=\n"), 1;
    range__locktable_push p[32];
    size_t n = range__locktable_pushes_due(x->ranges[r].lt, x->now_ns, p, 32);
    for (size_t i = 0; i < n; i++) {
        base_buf_printf(out, "%s: %s %s pushes ", req_name(x, r, false, p[i].waiter_id),
                        p[i].read ? "reader" : "locker", txn_name(x, p[i].pusher.id));
        print_holder(x, &p[i].pushee, out);
        base_buf_printf(out, "\n");
    }
    int64_t next = range__locktable_next_push_due(x->ranges[r].lt);
    if (next == INT64_MAX)
        base_buf_printf(out, "next: none\n");
    else
        base_buf_printf(out, "next: %lldms\n", (long long)(next / MS));
    return 0;
}

static int cmd_waits_for(dd_ctx *x, const dd_case *c, base_buf *out)
{
    int r = find_range(x, arg(c, "range"));
    if (r < 0)
        return base_buf_printf(out, "need range=\n"), 1;
    range__locktable_edge e[64];
    size_t n = range__locktable_waits_for(x->ranges[r].lt, e, 64);
    for (size_t i = 0; i < n && i < 64; i++)
        base_buf_printf(out, "%s: %s -> %s\n", req_name(x, r, false, e[i].waiter_id),
                        txn_name(x, e[i].waiter.id), txn_name(x, e[i].holder.id));
    if (n == 0)
        base_buf_printf(out, "none\n");
    return 0;
}

static int cmd_print(dd_ctx *x, const dd_case *c, base_buf *out)
{
    int r = find_range(x, arg(c, "range"));
    if (r < 0)
        return base_buf_printf(out, "need range=\n"), 1;
    void *p[3] = {x, out, &r};
    range__locktable_visitor v = {key_visit, waiter_visit, p};
    size_t before = out->len;
    range__locktable_visit(x->ranges[r].lt, &v);
    range__locktable_stats st;
    range__locktable_get_stats(x->ranges[r].lt, &st);
    if (out->len == before)
        base_buf_printf(out, "empty\n");
    base_buf_printf(out, "stats: keys=%zu key-bytes=%zu waiters=%zu txns=%zu busy=%llu\n",
                    st.keys, st.key_bytes, st.waiters, st.txns, (unsigned long long)st.busy);
    return 0;
}

static int cmd_print_queue(dd_ctx *x, const dd_case *c, base_buf *out)
{
    int r = find_range(x, arg(c, "range"));
    if (r < 0)
        return base_buf_printf(out, "need range=\n"), 1;
    void *p[3] = {x, out, &r};
    range__txnwait_visitor v = {pushee_visit, pusher_visit, p};
    size_t before = out->len;
    range__txnwait_visit(x->ranges[r].tw, &v);
    if (out->len == before)
        base_buf_printf(out, "empty\n");
    range__txnwait_stats st;
    range__txnwait_get_stats(x->ranges[r].tw, &st);
    base_buf_printf(out, "stats: pushees=%zu waiters=%zu busy=%llu deadlocks=%llu\n", st.pushees,
                    st.waiters, (unsigned long long)st.busy, (unsigned long long)st.deadlocks);
    return 0;
}

static int cmd_push(dd_ctx *x, const dd_case *c, base_buf *out)
{
    const char *pusher = arg(c, "txn");
    int t = find_txn(x, pusher);
    int e = find_txn(x, arg(c, "pushee"));
    if ((t < 0 && (pusher == NULL || strcmp(pusher, "none") != 0)) || e < 0)
        return base_buf_printf(out, "need txn= and pushee=\n"), 1;
    dd_req *q = new_req(x, arg(c, "req"), REQ_PUSH, out);
    if (q == NULL)
        return 1;
    q->txn = t;
    q->pushee = e;
    q->range = x->txns[e].home;
    const char *type = arg(c, "type");
    range__txnwait_pusher p = {
        .id = t >= 0 ? x->txns[t].meta.id : 0,
        .priority = t >= 0 ? x->txns[t].meta.priority : 0,
        .type = type != NULL && strcmp(type, "wait") == 0 ? RANGE_TXNWAIT_PUSH_WAIT
                                                          : RANGE_TXNWAIT_PUSH_ABORT,
    };
    range__txnwait_record rec = record_of(&x->txns[e]);
    if (dd_has(c, "heartbeat")) /* a record read before the last heartbeat */
        rec.heartbeat_ns = dd_arg_int(c, "heartbeat", 0) * MS;
    range__txnwait_result res;
    int rc = range__txnwait_push(x->ranges[q->range].tw, &p, &rec, x->now_ns, &res);
    if (rc == RANGE_OK && res.outcome == RANGE_TXNWAIT_QUEUED)
        q->waiter_id = res.waiter_id;
    print_push_result(x, rc, &res, q, &x->txns[e], out);
    return 0;
}

static void print_edges(const dd_ctx *x, const range__txnwait_edge *e, size_t n, base_buf *out)
{
    base_buf_printf(out, "deps:");
    for (size_t i = 0; i < n; i++)
        base_buf_printf(out, " %s->%s", txn_name(x, e[i].waiter), txn_name(x, e[i].holder));
    base_buf_printf(out, n == 0 ? " none\n" : "\n");
}

static int cmd_refresh(dd_ctx *x, const dd_case *c, base_buf *out)
{
    int i = find_req(x, arg(c, "req"));
    if (i < 0 || x->reqs[i].kind != REQ_PUSH)
        return base_buf_printf(out, "no such push req\n"), 1;
    dd_req *q = &x->reqs[i];
    range__txnwait_edge deps[RANGE_TXNWAIT_DEPS_MAX];
    size_t n = 0;
    bool cut = false;
    if (q->txn >= 0)
        n = range__txnwait_dependents(x->ranges[x->txns[q->txn].home].tw, x->txns[q->txn].meta.id,
                                      deps, RANGE_TXNWAIT_DEPS_MAX, &cut);
    print_edges(x, deps, n, out);
    range__txnwait_result res;
    int rc = range__txnwait_refresh(x->ranges[q->range].tw, q->waiter_id, deps, n, x->now_ns, &res);
    if (rc == RANGE_NOT_FOUND)
        return base_buf_printf(out, "not waiting\n"), 0;
    print_push_result(x, rc, &res, q, &x->txns[q->pushee], out);
    return 0;
}

static int cmd_dependents(dd_ctx *x, const dd_case *c, base_buf *out)
{
    int r = find_range(x, arg(c, "range"));
    int t = find_txn(x, arg(c, "txn"));
    if (r < 0 || t < 0)
        return base_buf_printf(out, "need range= and txn=\n"), 1;
    range__txnwait_edge deps[RANGE_TXNWAIT_DEPS_MAX];
    bool cut = false;
    size_t cap = (size_t)dd_arg_int(c, "cap", RANGE_TXNWAIT_DEPS_MAX);
    if (cap > RANGE_TXNWAIT_DEPS_MAX)
        cap = RANGE_TXNWAIT_DEPS_MAX;
    size_t n = range__txnwait_dependents(x->ranges[r].tw, x->txns[t].meta.id, deps, cap, &cut);
    print_edges(x, deps, n, out);
    if (cut)
        base_buf_printf(out, "truncated\n");
    return 0;
}

static int cmd_record(dd_ctx *x, const dd_case *c, range_txn_status status, bool heartbeat,
                      base_buf *out)
{
    int t = find_txn(x, arg(c, "txn"));
    if (t < 0)
        return base_buf_printf(out, "need txn=\n"), 1;
    dd_txn *tx = &x->txns[t];
    if (heartbeat)
        tx->heartbeat_ns = x->now_ns;
    else
        tx->status = status;
    range__txnwait_record rec = record_of(tx);
    range__txnwait_update_record(x->ranges[tx->home].tw, &rec);
    base_buf_printf(out, "%s %s heartbeat=%lldms\n", tx->name, status_name(tx->status),
                    (long long)(tx->heartbeat_ns / MS));
    return 0;
}

static int cmd_due(dd_ctx *x, const dd_case *c, base_buf *out)
{
    int r = find_range(x, arg(c, "range"));
    if (r < 0)
        return base_buf_printf(out, "need range=\n"), 1;
    range__txnwait_due d[32];
    size_t n = range__txnwait_due_work(x->ranges[r].tw, x->now_ns, d, 32);
    for (size_t i = 0; i < n; i++)
        base_buf_printf(out, "%s %s (%s -> %s)\n",
                        d[i].kind == RANGE_TXNWAIT_DUE_QUERY ? "query" : "expired",
                        req_name(x, r, true, d[i].waiter_id), txn_name(x, d[i].pusher_id),
                        txn_name(x, d[i].pushee_id));
    int64_t next = range__txnwait_next_due(x->ranges[r].tw);
    if (next == INT64_MAX)
        base_buf_printf(out, "next: none\n");
    else
        base_buf_printf(out, "next: %lldms\n", (long long)(next / MS));
    return 0;
}

static int run_case(void *ctx, const dd_case *c, base_buf *out)
{
    dd_ctx *x = ctx;
    int rc = 0;
    if (strcmp(c->cmd, "new-range") == 0) {
        rc = cmd_new_range(x, c, out);
    } else if (strcmp(c->cmd, "new-txn") == 0) {
        rc = cmd_new_txn(x, c, out);
    } else if (strcmp(c->cmd, "restart") == 0) {
        int t = find_txn(x, arg(c, "txn"));
        if (t < 0)
            return base_buf_printf(out, "need txn=\n"), 1;
        x->txns[t].meta.epoch++;
        base_buf_printf(out, "%s epoch=%u\n", x->txns[t].name, x->txns[t].meta.epoch);
    } else if (strcmp(c->cmd, "acquire") == 0) {
        rc = cmd_lock(x, c, false, out);
    } else if (strcmp(c->cmd, "read") == 0) {
        rc = cmd_lock(x, c, true, out);
    } else if (strcmp(c->cmd, "discover") == 0) {
        rc = cmd_discover(x, c, out);
    } else if (strcmp(c->cmd, "release") == 0) {
        rc = cmd_release(x, c, out);
    } else if (strcmp(c->cmd, "cancel") == 0) {
        rc = cmd_cancel(x, c, out);
    } else if (strcmp(c->cmd, "advance") == 0) {
        x->now_ns += dd_arg_int(c, "ms", 0) * MS;
        base_buf_printf(out, "now=%lldms\n", (long long)(x->now_ns / MS));
    } else if (strcmp(c->cmd, "pushes") == 0) {
        rc = cmd_pushes(x, c, out);
    } else if (strcmp(c->cmd, "waits-for") == 0) {
        rc = cmd_waits_for(x, c, out);
    } else if (strcmp(c->cmd, "print") == 0) {
        rc = cmd_print(x, c, out);
    } else if (strcmp(c->cmd, "clear") == 0) {
        int r = find_range(x, arg(c, "range"));
        if (r < 0)
            return base_buf_printf(out, "need range=\n"), 1;
        range__locktable_clear(x->ranges[r].lt);
        range__txnwait_clear(x->ranges[r].tw);
        base_buf_printf(out, "cleared\n");
    } else if (strcmp(c->cmd, "push") == 0) {
        rc = cmd_push(x, c, out);
    } else if (strcmp(c->cmd, "refresh") == 0) {
        rc = cmd_refresh(x, c, out);
    } else if (strcmp(c->cmd, "dependents") == 0) {
        rc = cmd_dependents(x, c, out);
    } else if (strcmp(c->cmd, "heartbeat") == 0) {
        rc = cmd_record(x, c, RANGE_TXN_PENDING, true, out);
    } else if (strcmp(c->cmd, "commit") == 0) {
        rc = cmd_record(x, c, RANGE_TXN_COMMITTED, false, out);
    } else if (strcmp(c->cmd, "abort") == 0) {
        rc = cmd_record(x, c, RANGE_TXN_ABORTED, false, out);
    } else if (strcmp(c->cmd, "due") == 0) {
        rc = cmd_due(x, c, out);
    } else if (strcmp(c->cmd, "print-queue") == 0) {
        rc = cmd_print_queue(x, c, out);
    } else {
        base_buf_printf(out, "unknown command %s\n", c->cmd);
        return 1;
    }
    print_events(x, out);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_dir(const char *sub)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/%s", RANGE_TESTDATA_DIR, sub);
    DIR *d = opendir(dir);
    struct dirent *de;
    char *names[128];
    int n = 0, failures = 0;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL && n < 128) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".txt") == 0)
            names[n++] = base_strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(char *), cmp_str);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        char path[2048];
        dd_ctx *x = calloc(1, sizeof(*x));
        assert_non_null(x);
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        int f = dd_run_file(path, run_case, x);
        printf("%s/%s: %s\n", sub, names[i], f == 0 ? "ok" : "FAILED");
        if (f != 0)
            failures++;
        for (int r = 0; r < x->n_ranges; r++) {
            range__locktable_free(x->ranges[r].lt);
            range__txnwait_free(x->ranges[r].tw);
        }
        free(x);
        base_free(names[i]);
    }
    assert_int_equal(failures, 0);
}

static void test_locktable_files(void **state)
{
    (void)state;
    run_dir("locktable");
}

static void test_txnwait_files(void **state)
{
    (void)state;
    run_dir("txnwait");
}

/* ==== events left pending across calls =========================================== */

static range__locktable_result acquire(range__locktable *lt, uint64_t txn, const char *key)
{
    range__lock_txn t = {txn, 0, 0};
    range__locktable_result res;
    assert_int_equal(range__locktable_acquire(lt, &t, (const uint8_t *)key, strlen(key),
                                              RANGE_LOCK_UNREPLICATED, HLC_ZERO,
                                              RANGE_LOCK_WAIT_BLOCK, 0, &res),
                     RANGE_OK);
    return res;
}

/* The file driver takes every event after every command; here the caller
** acts before taking them: a cancel while a NEW_HOLDER is pending, a cancel
** of a granted waiter, a clear while a GRANTED is pending. */
static void test_pending_events(void **state)
{
    (void)state;
    range__locktable *lt;
    range__locktable_event ev;
    assert_int_equal(range__locktable_new(NULL, &lt), RANGE_OK);
    assert_int_equal(acquire(lt, 1, "a").outcome, RANGE_LOCK_GRANTED);
    uint64_t w2 = acquire(lt, 2, "a").waiter_id;
    uint64_t w3 = acquire(lt, 3, "a").waiter_id;
    uint64_t w4 = acquire(lt, 4, "a").waiter_id;
    assert_int_equal(range__locktable_release_all(lt, 1, 10), 1);
    /* pending: GRANTED w2, NEW_HOLDER w3, NEW_HOLDER w4 */
    assert_int_equal(range__locktable_cancel(lt, w3), RANGE_OK);      /* its event goes too */
    assert_int_equal(range__locktable_cancel(lt, w2), RANGE_NOT_FOUND); /* granted: take it */
    assert_true(range__locktable_check(lt));
    assert_true(range__locktable_next_event(lt, &ev));
    assert_int_equal(ev.kind, RANGE_LOCK_EV_GRANTED);
    assert_int_equal(ev.waiter_id, w2);
    assert_int_equal(ev.holder.txn.id, 2);
    assert_true(range__locktable_next_event(lt, &ev));
    assert_int_equal(ev.kind, RANGE_LOCK_EV_NEW_HOLDER);
    assert_int_equal(ev.waiter_id, w4);
    assert_int_equal(ev.holder.txn.id, 2);
    assert_int_equal(ev.push_due_ns, 10 + RANGE_LOCKTABLE_PUSH_DELAY_NS);
    assert_false(range__locktable_next_event(lt, &ev));
    /* a GRANTED not yet taken when the lease goes becomes ABANDONED */
    assert_int_equal(range__locktable_release_all(lt, 2, 20), 1); /* grants w4 */
    range__locktable_clear(lt);
    assert_true(range__locktable_check(lt));
    assert_true(range__locktable_next_event(lt, &ev));
    assert_int_equal(ev.kind, RANGE_LOCK_EV_ABANDONED);
    assert_int_equal(ev.waiter_id, w4);
    assert_false(range__locktable_next_event(lt, &ev));
    range__locktable_stats st;
    range__locktable_get_stats(lt, &st);
    assert_true(st.keys == 0 && st.waiters == 0 && st.txns == 0);
    /* the table works again after a clear */
    assert_int_equal(acquire(lt, 5, "a").outcome, RANGE_LOCK_GRANTED);
    range__locktable_free(lt);
}

/* ==== randomized lock table against a model ======================================= */

#define RND_KEYS 5
#define RND_TXNS 5
#define RND_WAITERS 512 /* model slots per seed (ids are below this) */
#define RND_OPS 1500

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static unsigned rnd(uint64_t *s, unsigned n) { return (unsigned)(rng_next(s) % n); }

typedef struct m_waiter {
    bool live; /* waiting */
    bool read;
    int key;
    range__lock_txn txn;
    range__lock_durability dur;
    hlc_timestamp ts;
    uint64_t seq; /* arrival order */
} m_waiter;

typedef struct model {
    bool held[RND_KEYS];
    range__lock_holder holder[RND_KEYS];
    m_waiter w[RND_WAITERS]; /* by waiter id */
    uint64_t seq;
    bool cleared; /* this step cleared the table: ABANDONED expected */
    range__lock_txn txns[RND_TXNS + 1];
    range__locktable_config cfg;
} model;

static const char *KEYS[RND_KEYS] = {"a", "b", "c", "d", "e"};

static bool m_blocks_reader(const model *m, int k, uint64_t reader, hlc_timestamp ts)
{
    const range__lock_holder *h = &m->holder[k];
    return m->held[k] && h->durability == RANGE_LOCK_REPLICATED && h->txn.id != reader &&
           hlc_compare(h->ts, ts) <= 0;
}

/* The table's merge rule, restated. */
static void m_merge(range__lock_holder *h, const range__lock_txn *txn, range__lock_durability d,
                    hlc_timestamp ts)
{
    if (txn->epoch < h->txn.epoch)
        return;
    bool new_epoch = txn->epoch > h->txn.epoch;
    h->txn = *txn;
    if (d == RANGE_LOCK_REPLICATED) {
        if (h->durability == RANGE_LOCK_REPLICATED && !new_epoch)
            h->ts = hlc_compare(ts, h->ts) > 0 ? ts : h->ts;
        else
            h->ts = ts;
        h->durability = RANGE_LOCK_REPLICATED;
    }
}

/* The first live lock waiter of key k in arrival order, or 0. */
static uint64_t m_head(const model *m, int k)
{
    uint64_t best = 0;
    for (uint64_t id = 1; id < RND_WAITERS; id++)
        if (m->w[id].live && !m->w[id].read && m->w[id].key == k &&
            (best == 0 || m->w[id].seq < m->w[best].seq))
            best = id;
    return best;
}

static size_t m_waiting(const model *m, int k)
{
    size_t n = 0;
    for (uint64_t id = 1; id < RND_WAITERS; id++)
        n += m->w[id].live && (k < 0 || m->w[id].key == k);
    return n;
}

static bool holder_eq(const range__lock_holder *a, const range__lock_holder *b)
{
    return a->txn.id == b->txn.id && a->txn.epoch == b->txn.epoch &&
           a->durability == b->durability && hlc_compare(a->ts, b->ts) == 0;
}

/* Apply the table's events to the model, checking each one. */
static void m_take_events(model *m, range__locktable *lt)
{
    range__locktable_event ev;
    size_t guard = 0;
    while (range__locktable_next_event(lt, &ev)) {
        CHECK(++guard <= RND_WAITERS);
        CHECK(ev.waiter_id > 0 && ev.waiter_id < RND_WAITERS);
        m_waiter *w = &m->w[ev.waiter_id];
        CHECK(w->live);
        int k = w->key;
        switch (ev.kind) {
        case RANGE_LOCK_EV_GRANTED:
            CHECK(!w->read);
            if (!m->held[k]) {
                /* FAIR: the head of the queue takes a free key */
                CHECK(m_head(m, k) == ev.waiter_id);
                m->held[k] = true;
                m->holder[k].txn = w->txn;
                m->holder[k].durability = w->dur;
                m->holder[k].ts = w->dur == RANGE_LOCK_REPLICATED ? w->ts : HLC_ZERO;
            } else {
                /* ONE HOLDER: only its own transaction joins it (re-entrant) */
                CHECK(m->holder[k].txn.id == w->txn.id);
                m_merge(&m->holder[k], &w->txn, w->dur, w->ts);
            }
            w->live = false;
            break;
        case RANGE_LOCK_EV_PROCEED:
            CHECK(w->read);
            CHECK(!m_blocks_reader(m, k, w->txn.id, w->ts));
            w->live = false;
            break;
        case RANGE_LOCK_EV_NEW_HOLDER:
            CHECK(m->held[k]);
            CHECK(ev.holder.txn.id == m->holder[k].txn.id);
            break;
        case RANGE_LOCK_EV_ABANDONED:
            CHECK(m->cleared);
            w->live = false;
            break;
        default:
            CHECK(false);
        }
    }
    m->cleared = false;
}

typedef struct cmp_state {
    model *m;
    int key;          /* current key index, -1 none */
    uint64_t last_seq[2];
    size_t seen;
    bool ok;
} cmp_state;

static void cmp_key(void *ctx, const uint8_t *key, size_t key_len, const range__lock_holder *h)
{
    cmp_state *s = ctx;
    s->key = -1;
    for (int k = 0; k < RND_KEYS; k++)
        if (key_len == 1 && key[0] == (uint8_t)KEYS[k][0])
            s->key = k;
    s->last_seq[0] = s->last_seq[1] = 0;
    if (s->key < 0 || !s->m->held[s->key] || !holder_eq(h, &s->m->holder[s->key]))
        s->ok = false;
}

static void cmp_waiter(void *ctx, const range__locktable_waiter_view *v)
{
    cmp_state *s = ctx;
    if (v->waiter_id == 0 || v->waiter_id >= RND_WAITERS) {
        s->ok = false;
        return;
    }
    const m_waiter *w = &s->m->w[v->waiter_id];
    s->seen++;
    /* on its key, in arrival order (FIFO), and blocked by the holder */
    if (!w->live || w->key != s->key || w->read != v->read || w->seq <= s->last_seq[v->read])
        s->ok = false;
    s->last_seq[v->read] = w->seq;
    if (s->key >= 0 && (v->read ? !m_blocks_reader(s->m, s->key, w->txn.id, w->ts)
                                : s->m->holder[s->key].txn.id == w->txn.id))
        s->ok = false;
}

/* The table equals the model: the same holders, the same waiters in order. */
static void m_compare(model *m, const range__locktable *lt)
{
    cmp_state s = {m, -1, {0, 0}, 0, true};
    range__locktable_visitor v = {cmp_key, cmp_waiter, &s};
    range__locktable_visit(lt, &v);
    CHECK(s.ok);
    CHECK(s.seen == m_waiting(m, -1));
    range__locktable_stats st;
    range__locktable_get_stats(lt, &st);
    size_t held = 0;
    for (int k = 0; k < RND_KEYS; k++) {
        held += m->held[k];
        /* a free key has nobody waiting */
        CHECK(m->held[k] || m_waiting(m, k) == 0);
    }
    CHECK(st.keys == held);
    CHECK(range__locktable_check(lt));
}

static void random_step(model *m, range__locktable *lt, uint64_t *rng, int64_t *now)
{
    unsigned op = rnd(rng, 100);
    int k = (int)rnd(rng, RND_KEYS);
    const uint8_t *key = (const uint8_t *)KEYS[k];
    range__lock_txn *txn = &m->txns[1 + rnd(rng, RND_TXNS)];
    hlc_timestamp ts = T(1 + rnd(rng, 20));
    range__lock_wait_policy policy = rnd(rng, 10) == 0 ? RANGE_LOCK_WAIT_ERROR : RANGE_LOCK_WAIT_BLOCK;
    range__locktable_result res;
    int rc;
    *now += rnd(rng, 3) * MS;
    if (op < 35) { /* acquire */
        range__lock_durability d = rnd(rng, 3) == 0 ? RANGE_LOCK_REPLICATED : RANGE_LOCK_UNREPLICATED;
        rc = range__locktable_acquire(lt, txn, key, 1, d, ts, policy, *now, &res);
        if (!m->held[k]) {
            if (rc == RANGE_ERR_BUSY) {
                size_t held = 0;
                for (int i = 0; i < RND_KEYS; i++)
                    held += m->held[i];
                CHECK(held >= m->cfg.keys_max);
                return;
            }
            CHECK(rc == RANGE_OK && res.outcome == RANGE_LOCK_GRANTED);
            m->held[k] = true;
            m->holder[k] = (range__lock_holder){*txn, d, d == RANGE_LOCK_REPLICATED ? ts : HLC_ZERO, 0};
        } else if (m->holder[k].txn.id == txn->id) {
            if (txn->epoch < m->holder[k].txn.epoch) {
                CHECK(rc == RANGE_ERR_INVALID);
                return;
            }
            CHECK(rc == RANGE_OK && res.outcome == RANGE_LOCK_GRANTED);
            m_merge(&m->holder[k], txn, d, d == RANGE_LOCK_REPLICATED ? ts : HLC_ZERO);
        } else if (policy == RANGE_LOCK_WAIT_ERROR) {
            CHECK(rc == RANGE_OK && res.outcome == RANGE_LOCK_CONFLICT);
            CHECK(res.holder.txn.id == m->holder[k].txn.id);
        } else if (rc == RANGE_ERR_BUSY) {
            CHECK(m_waiting(m, k) >= m->cfg.waiters_per_key_max ||
                  m_waiting(m, -1) >= m->cfg.waiters_max);
        } else {
            CHECK(rc == RANGE_OK && res.outcome == RANGE_LOCK_QUEUED);
            CHECK(res.holder.txn.id == m->holder[k].txn.id);
            CHECK(res.waiter_id < RND_WAITERS);
            if (res.waiter_id >= RND_WAITERS)
                return;
            m->w[res.waiter_id] = (m_waiter){true, false, k, *txn, d, ts, ++m->seq};
        }
    } else if (op < 55) { /* read */
        bool none = rnd(rng, 4) == 0;
        rc = range__locktable_read(lt, none ? NULL : txn, key, 1, ts, policy, *now, &res);
        uint64_t id = none ? 0 : txn->id;
        if (!m_blocks_reader(m, k, id, ts)) {
            CHECK(rc == RANGE_OK && res.outcome == RANGE_LOCK_GRANTED);
        } else if (policy == RANGE_LOCK_WAIT_ERROR) {
            CHECK(rc == RANGE_OK && res.outcome == RANGE_LOCK_CONFLICT);
        } else if (rc == RANGE_ERR_BUSY) {
            CHECK(m_waiting(m, k) >= m->cfg.waiters_per_key_max ||
                  m_waiting(m, -1) >= m->cfg.waiters_max);
        } else {
            CHECK(rc == RANGE_OK && res.outcome == RANGE_LOCK_QUEUED);
            if (res.waiter_id >= RND_WAITERS)
                return;
            range__lock_txn t = none ? (range__lock_txn){0, 0, 0} : *txn;
            m->w[res.waiter_id] = (m_waiter){true, true, k, t, RANGE_LOCK_UNREPLICATED, ts, ++m->seq};
        }
    } else if (op < 67) { /* release one key */
        rc = range__locktable_release(lt, txn->id, key, 1, *now);
        if (m->held[k] && m->holder[k].txn.id == txn->id) {
            CHECK(rc == RANGE_OK);
            m->held[k] = false;
        } else {
            CHECK(rc == RANGE_NOT_FOUND);
        }
    } else if (op < 77) { /* release all */
        size_t expect = 0;
        for (int i = 0; i < RND_KEYS; i++)
            if (m->held[i] && m->holder[i].txn.id == txn->id) {
                m->held[i] = false;
                expect++;
            }
        CHECK(range__locktable_release_all(lt, txn->id, *now) == expect);
    } else if (op < 87) { /* cancel a waiter (or an unknown one) */
        uint64_t id = 1 + rnd(rng, (unsigned)(m->seq + 2));
        rc = range__locktable_cancel(lt, id);
        if (id < RND_WAITERS && m->w[id].live) {
            CHECK(rc == RANGE_OK);
            m->w[id].live = false;
        } else {
            CHECK(rc == RANGE_NOT_FOUND);
        }
    } else if (op < 93) { /* an intent found in storage */
        range__lock_txn replaced;
        rc = range__locktable_add_discovered(lt, txn, key, 1, ts, *now, &replaced);
        if (!m->held[k]) {
            if (rc == RANGE_ERR_BUSY)
                return;
            CHECK(rc == RANGE_OK && replaced.id == 0);
            m->held[k] = true;
            m->holder[k] = (range__lock_holder){*txn, RANGE_LOCK_REPLICATED, ts, 0};
        } else if (m->holder[k].txn.id == txn->id) {
            CHECK(rc == RANGE_OK);
            m_merge(&m->holder[k], txn, RANGE_LOCK_REPLICATED, ts);
        } else if (m->holder[k].durability == RANGE_LOCK_REPLICATED) {
            CHECK(rc == RANGE_ERR_CONFLICT);
        } else {
            CHECK(rc == RANGE_OK && replaced.id == m->holder[k].txn.id);
            m->holder[k] = (range__lock_holder){*txn, RANGE_LOCK_REPLICATED, ts, 0};
        }
    } else if (op < 95) { /* a transaction restarts */
        txn->epoch++;
    } else if (op < 96) { /* the lease moves */
        range__locktable_clear(lt);
        for (int i = 0; i < RND_KEYS; i++)
            m->held[i] = false;
        m->cleared = true;
    } else { /* pushes due: each one a waiting waiter, pushing its current holder */
        range__locktable_push p[16];
        size_t n = range__locktable_pushes_due(lt, *now, p, 16);
        for (size_t i = 0; i < n; i++) {
            CHECK(p[i].waiter_id < RND_WAITERS && m->w[p[i].waiter_id].live);
            int wk = m->w[p[i].waiter_id].key;
            CHECK(m->held[wk] && p[i].pushee.txn.id == m->holder[wk].txn.id);
        }
        CHECK(range__locktable_next_push_due(lt) > *now || n == 16);
    }
}

static void random_seed(uint64_t seed, int ops)
{
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 1;
    g_seed = seed;
    model *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    for (int i = 1; i <= RND_TXNS; i++)
        m->txns[i] = (range__lock_txn){(uint64_t)i, 0, (int64_t)rnd(&rng, 3)};
    /* every other seed small bounds, so BUSY paths run too */
    bool small = seed % 2 == 0;
    m->cfg = (range__locktable_config){small ? 3 : RND_KEYS + 1, 0, small ? 3 : 64,
                                       small ? 8 : 400, (int64_t)(1 + rnd(&rng, 5)) * MS};
    range__locktable *lt;
    assert_int_equal(range__locktable_new(&m->cfg, &lt), RANGE_OK);
    int64_t now = 0;
    for (int i = 0; i < ops && m->seq < RND_WAITERS - 2; i++) {
        random_step(m, lt, &rng, &now);
        m_take_events(m, lt);
        m_compare(m, lt);
    }
    /* drain: release every holder until nothing is left; everybody ends once */
    for (int round = 0; round < RND_WAITERS; round++) {
        range__locktable_stats st;
        range__locktable_get_stats(lt, &st);
        if (st.keys == 0)
            break;
        for (int t = 1; t <= RND_TXNS; t++) {
            size_t expect = 0;
            for (int k = 0; k < RND_KEYS; k++)
                if (m->held[k] && m->holder[k].txn.id == (uint64_t)t) {
                    m->held[k] = false;
                    expect++;
                }
            CHECK(range__locktable_release_all(lt, (uint64_t)t, now) == expect);
            m_take_events(m, lt);
            m_compare(m, lt);
        }
    }
    range__locktable_stats st;
    range__locktable_get_stats(lt, &st);
    CHECK(st.keys == 0 && st.waiters == 0 && st.txns == 0);
    CHECK(m_waiting(m, -1) == 0);
    range__locktable_free(lt);
    free(m);
}

/* The server's helpers: release_span, find_unreplicated, holder, txn_keys,
** and the holder's since. */
static void test_span_helpers(void **state)
{
    (void)state;
    range__locktable *lt;
    range__locktable_event ev;
    range__lock_txn t1 = {1, 0, 0}, t3 = {3, 0, 0};
    range__locktable_result res;
    assert_int_equal(range__locktable_new(NULL, &lt), RANGE_OK);
    assert_int_equal(range__locktable_acquire(lt, &t1, (const uint8_t *)"a", 1,
                                              RANGE_LOCK_UNREPLICATED, HLC_ZERO,
                                              RANGE_LOCK_WAIT_BLOCK, 100, &res),
                     RANGE_OK);
    assert_int_equal(acquire(lt, 1, "c").outcome, RANGE_LOCK_GRANTED);
    assert_int_equal(acquire(lt, 1, "e").outcome, RANGE_LOCK_GRANTED);
    assert_int_equal(range__locktable_add_discovered(lt, &t3, (const uint8_t *)"d", 1,
                                                     (hlc_timestamp){5, 0}, 200, NULL),
                     RANGE_OK);
    uint64_t w2 = acquire(lt, 2, "c").waiter_id;
    assert_int_equal(range__locktable_txn_keys(lt, 1), 3);
    assert_int_equal(range__locktable_txn_keys(lt, 2), 0);
    range__lock_holder h;
    assert_true(range__locktable_holder(lt, (const uint8_t *)"a", 1, &h));
    assert_int_equal(h.txn.id, 1);
    assert_int_equal(h.since_ns, 100);
    assert_false(range__locktable_holder(lt, (const uint8_t *)"b", 1, &h));
    /* the first unreplicated lock of another txn in a span; own and intents skipped */
    const uint8_t *k;
    size_t kl;
    range_span all = {(const uint8_t *)"", 0, NULL, 0, false};
    range_span bd = {(const uint8_t *)"b", 1, (const uint8_t *)"d", 1, false};
    range_span dd = {(const uint8_t *)"d", 1, NULL, 0, true};
    range_span ex = {(const uint8_t *)"cz", 2, (const uint8_t *)"e", 1, false};
    assert_true(range__locktable_find_unreplicated(lt, 2, &all, &k, &kl, &h));
    assert_memory_equal(k, "a", 1);
    assert_true(range__locktable_find_unreplicated(lt, 2, &bd, &k, &kl, &h));
    assert_memory_equal(k, "c", 1);
    assert_false(range__locktable_find_unreplicated(lt, 1, &all, &k, &kl, &h));
    assert_false(range__locktable_find_unreplicated(lt, 2, &dd, &k, &kl, &h)); /* an intent */
    assert_false(range__locktable_find_unreplicated(lt, 2, &ex, &k, &kl, &h)); /* end excluded */
    /* release [b, d): only c goes; w2 is granted there, since the release */
    assert_int_equal(range__locktable_release_span(lt, 1, &bd, 300), 1);
    assert_true(range__locktable_next_event(lt, &ev));
    assert_int_equal(ev.kind, RANGE_LOCK_EV_GRANTED);
    assert_int_equal(ev.waiter_id, w2);
    assert_true(range__locktable_holder(lt, (const uint8_t *)"c", 1, &h));
    assert_int_equal(h.txn.id, 2);
    assert_int_equal(h.since_ns, 300);
    assert_int_equal(range__locktable_txn_keys(lt, 1), 2);
    assert_int_equal(range__locktable_release_span(lt, 1, &all, 400), 2);
    assert_int_equal(range__locktable_txn_keys(lt, 1), 0);
    assert_int_equal(range__locktable_release_span(lt, 3, &dd, 400), 1);
    assert_true(range__locktable_check(lt));
    range__locktable_free(lt);
}

static void test_locktable_random(void **state)
{
    (void)state;
    const char *env = getenv("MERIDIAN_SEED");
    if (env != NULL) {
        random_seed(strtoull(env, NULL, 10), RND_OPS);
        return;
    }
    for (uint64_t seed = 1; seed <= 60; seed++)
        random_seed(seed, RND_OPS);
}

/* ==== randomized deadlock detection ================================================ */

#define DL_TXNS_MAX 10
#define DL_QUEUES 3

typedef struct dl_world {
    int n;
    int home[DL_TXNS_MAX + 1];
    int64_t prio[DL_TXNS_MAX + 1];
    int target[DL_TXNS_MAX + 1];   /* the txn it waits for, 0 none */
    uint64_t waiter[DL_TXNS_MAX + 1]; /* its push's waiter id at home(target) */
    bool aborted[DL_TXNS_MAX + 1];
    int cycle_of[DL_TXNS_MAX + 1]; /* the cycle's smallest member, 0: not on a cycle */
    int victim_of_cycle[DL_TXNS_MAX + 1]; /* by smallest member: the expected victim */
    range__txnwait *q[DL_QUEUES];
} dl_world;

/* Mark the cycles of the functional graph and their expected victims. */
static void dl_cycles(dl_world *w)
{
    for (int s = 1; s <= w->n; s++) {
        int x = s;
        for (int i = 0; i < w->n && x != 0; i++)
            x = w->target[x];
        if (x == 0)
            continue; /* the walk left the graph: s is not on or behind a cycle */
        /* x is on a cycle: collect it */
        int min = x, y = x, victim = x;
        do {
            if (y < min)
                min = y;
            if (w->prio[y] < w->prio[victim] || (w->prio[y] == w->prio[victim] && y > victim))
                victim = y;
            y = w->target[y];
        } while (y != x);
        y = x;
        do {
            w->cycle_of[y] = min;
            y = w->target[y];
        } while (y != x);
        w->victim_of_cycle[min] = victim;
    }
}

/* The reported cycle is exactly a cycle of the graph, victim first. */
static void dl_check_cycle(const dl_world *w, const range__txnwait_result *res)
{
    CHECK(res->cycle_len >= 2);
    int first = (int)res->cycle[0];
    CHECK(first >= 1 && first <= w->n && w->cycle_of[first] != 0);
    CHECK(w->victim_of_cycle[w->cycle_of[first]] == first);
    for (size_t i = 0; i < res->cycle_len; i++) {
        int a = (int)res->cycle[i], b = (int)res->cycle[(i + 1) % res->cycle_len];
        CHECK(a >= 1 && a <= w->n && w->target[a] == b);
    }
}

static void dl_abort(dl_world *w, int t, int64_t now)
{
    range__txnwait_record rec = {(uint64_t)t, w->prio[t], RANGE_TXN_ABORTED, 0};
    CHECK(!w->aborted[t]);
    w->aborted[t] = true;
    range__txnwait_update_record(w->q[w->home[t]], &rec);
    /* its own push ends with it */
    if (w->target[t] != 0 && w->waiter[t] != 0)
        range__txnwait_cancel(w->q[w->home[w->target[t]]], w->waiter[t]);
    w->waiter[t] = 0;
    (void)now;
}

static void dl_take_events(dl_world *w)
{
    for (int i = 0; i < DL_QUEUES; i++) {
        range__txnwait_event ev;
        while (range__txnwait_next_event(w->q[i], &ev)) {
            int p = (int)ev.pusher_id;
            CHECK(ev.kind == RANGE_TXNWAIT_EV_FINAL && ev.status == RANGE_TXN_ABORTED);
            CHECK(p >= 1 && p <= w->n && w->aborted[w->target[p]]);
            w->waiter[p] = 0; /* it stops waiting: the blocker is gone */
        }
        CHECK(range__txnwait_check(w->q[i]));
    }
}

static void deadlock_seed(uint64_t seed)
{
    uint64_t rng = seed * 0x2545F4914F6CDD1Dull + 7;
    dl_world w;
    memset(&w, 0, sizeof(w));
    g_seed = seed;
    w.n = 2 + (int)rnd(&rng, DL_TXNS_MAX - 1);
    for (int i = 0; i < DL_QUEUES; i++)
        assert_int_equal(range__txnwait_new(NULL, &w.q[i]), RANGE_OK);
    for (int t = 1; t <= w.n; t++) {
        w.home[t] = (int)rnd(&rng, DL_QUEUES);
        w.prio[t] = (int64_t)rnd(&rng, 3);
        int u = (int)rnd(&rng, (unsigned)w.n + 1);
        w.target[t] = rnd(&rng, 5) == 0 || u == t ? 0 : u;
    }
    dl_cycles(&w);
    int64_t now = 0;
    /* everybody pushes (fresh heartbeats: nobody expires) */
    for (int t = 1; t <= w.n; t++) {
        int u = w.target[t];
        if (u == 0)
            continue;
        range__txnwait_pusher p = {(uint64_t)t, w.prio[t], RANGE_TXNWAIT_PUSH_WAIT, NULL, 0};
        range__txnwait_record rec = {(uint64_t)u, w.prio[u], RANGE_TXN_PENDING, now};
        range__txnwait_result res;
        CHECK(range__txnwait_push(w.q[w.home[u]], &p, &rec, now, &res) == RANGE_OK);
        CHECK(res.outcome == RANGE_TXNWAIT_QUEUED && res.cycle_len == 0);
        w.waiter[t] = res.waiter_id;
    }
    /* refresh rounds: a cycle of k is seen within k rounds */
    for (int round = 0; round <= w.n + 1; round++) {
        now += RANGE_TXNWAIT_QUERY_INTERVAL_NS;
        for (int t = 1; t <= w.n; t++) {
            if (w.waiter[t] == 0 || w.aborted[t])
                continue;
            int u = w.target[t];
            range__txnwait_edge deps[RANGE_TXNWAIT_DEPS_MAX];
            size_t n = range__txnwait_dependents(w.q[w.home[t]], (uint64_t)t, deps,
                                                 RANGE_TXNWAIT_DEPS_MAX, NULL);
            range__txnwait_result res;
            CHECK(range__txnwait_refresh(w.q[w.home[u]], w.waiter[t], deps, n, now, &res) ==
                  RANGE_OK);
            if (res.cycle_len > 0)
                dl_check_cycle(&w, &res);
            if (res.outcome == RANGE_TXNWAIT_DEADLOCK) {
                CHECK(res.cycle[0] == (uint64_t)t);
                w.waiter[t] = 0; /* gone from the queue */
                dl_abort(&w, t, now);
            } else if (res.outcome == RANGE_TXNWAIT_ABORT_PUSHEE) {
                CHECK(res.reason == RANGE_TXNWAIT_REASON_DEADLOCK && res.cycle[0] == (uint64_t)u);
                dl_abort(&w, u, now);
            } else {
                CHECK(res.outcome == RANGE_TXNWAIT_QUEUED);
            }
            dl_take_events(&w);
        }
    }
    /* every cycle lost exactly its victim; nobody else was aborted */
    for (int t = 1; t <= w.n; t++) {
        bool victim = w.cycle_of[t] != 0 && w.victim_of_cycle[w.cycle_of[t]] == t;
        CHECK(w.aborted[t] == victim);
    }
    for (int i = 0; i < DL_QUEUES; i++)
        range__txnwait_free(w.q[i]);
}

static void test_deadlock_random(void **state)
{
    (void)state;
    const char *env = getenv("MERIDIAN_SEED");
    if (env != NULL) {
        deadlock_seed(strtoull(env, NULL, 10));
        return;
    }
    for (uint64_t seed = 1; seed <= 300; seed++)
        deadlock_seed(seed);
}

/* ==== out of memory ================================================================= */

/* A dump of the visible state, in plain libc memory (base_ allocations fail here). */
typedef struct dump {
    char text[8192];
    size_t len;
} dump;

static void dump_printf(dump *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dump_printf(dump *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(d->text + d->len, sizeof(d->text) - d->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        d->len += (size_t)n < sizeof(d->text) - d->len ? (size_t)n : sizeof(d->text) - d->len - 1;
}

static void dump_key(void *ctx, const uint8_t *key, size_t key_len, const range__lock_holder *h)
{
    dump_printf(ctx, "k %.*s %llu %d %lld|", (int)key_len, (const char *)key,
                (unsigned long long)h->txn.id, (int)h->durability, (long long)h->ts.wall_ns);
}

static void dump_waiter(void *ctx, const range__locktable_waiter_view *w)
{
    dump_printf(ctx, "w %llu %d %llu|", (unsigned long long)w->waiter_id, (int)w->read,
                (unsigned long long)w->txn.id);
}

static void dump_lt(const range__locktable *lt, dump *d)
{
    d->len = 0;
    d->text[0] = 0;
    range__locktable_visitor v = {dump_key, dump_waiter, d};
    range__locktable_visit(lt, &v);
}

static void dump_pushee(void *ctx, const range__txnwait_record *rec, size_t n)
{
    dump_printf(ctx, "p %llu %zu|", (unsigned long long)rec->txn_id, n);
}

static void dump_pusher(void *ctx, const range__txnwait_waiter_view *w)
{
    dump_printf(ctx, "w %llu %llu %zu|", (unsigned long long)w->waiter_id,
                (unsigned long long)w->pusher_id, w->n_deps);
}

static void dump_tw(const range__txnwait *tw, dump *d)
{
    d->len = 0;
    d->text[0] = 0;
    range__txnwait_visitor v = {dump_pushee, dump_pusher, d};
    range__txnwait_visit(tw, &v);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    static dump before, after;
    bool saw_nomem = false;
    g_seed = 5;
    for (long fail_at = 0; fail_at < 400; fail_at++) {
        range__locktable *lt;
        range__txnwait *tw;
        base_alloc_fail_after(-1);
        assert_int_equal(range__locktable_new(NULL, &lt), RANGE_OK);
        assert_int_equal(range__txnwait_new(NULL, &tw), RANGE_OK);
        base_alloc_fail_after(fail_at);
        uint64_t rng = 5;
        int nomem = 0;
        for (int i = 0; i < 200; i++) {
            range__lock_txn txn = {1 + rnd(&rng, 6), 0, (int64_t)rnd(&rng, 3)};
            char key[8];
            snprintf(key, sizeof(key), "k%u", rnd(&rng, 12));
            range__locktable_result res;
            dump_lt(lt, &before);
            int rc = RANGE_OK;
            switch (rnd(&rng, 5)) {
            case 0:
            case 1:
                rc = range__locktable_acquire(lt, &txn, (const uint8_t *)key, strlen(key),
                                              RANGE_LOCK_UNREPLICATED, HLC_ZERO,
                                              RANGE_LOCK_WAIT_BLOCK, i, &res);
                break;
            case 2:
                rc = range__locktable_add_discovered(lt, &txn, (const uint8_t *)key, strlen(key),
                                                     T(5), i, NULL);
                break;
            case 3:
                rc = range__locktable_read(lt, &txn, (const uint8_t *)key, strlen(key), T(9),
                                           RANGE_LOCK_WAIT_BLOCK, i, &res);
                break;
            default:
                range__locktable_release_all(lt, txn.id, i);
                break;
            }
            if (rc == RANGE_ERR_NOMEM) {
                nomem++;
                dump_lt(lt, &after);
                CHECK(strcmp(before.text, after.text) == 0);
            }
            range__locktable_event ev;
            while (range__locktable_next_event(lt, &ev))
                ;
            CHECK(range__locktable_check(lt));
            /* the wait queue: pushes with dependents */
            range__txnwait_edge deps[3] = {{7, 0, txn.id, 0}, {8, 0, 7, 0}, {9, 1, 8, 0}};
            range__txnwait_pusher p = {txn.id, txn.priority, RANGE_TXNWAIT_PUSH_WAIT, deps,
                                       rnd(&rng, 4)};
            range__txnwait_record rec = {10 + rnd(&rng, 3), 0, RANGE_TXN_PENDING, i};
            range__txnwait_result wres;
            dump_tw(tw, &before);
            if (range__txnwait_push(tw, &p, &rec, i, &wres) == RANGE_ERR_NOMEM) {
                nomem++;
                dump_tw(tw, &after);
                CHECK(strcmp(before.text, after.text) == 0);
            }
            if (rnd(&rng, 4) == 0) {
                rec.status = RANGE_TXN_COMMITTED;
                range__txnwait_update_record(tw, &rec);
            }
            range__txnwait_event tev;
            while (range__txnwait_next_event(tw, &tev))
                ;
            CHECK(range__txnwait_check(tw));
        }
        base_alloc_fail_after(-1);
        range__locktable_free(lt);
        range__txnwait_free(tw);
        if (nomem == 0)
            break; /* every allocation succeeded */
        saw_nomem = true;
    }
    assert_true(saw_nomem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_locktable_files),
        cmocka_unit_test(test_txnwait_files),
        cmocka_unit_test(test_pending_events),
        cmocka_unit_test(test_span_helpers),
        cmocka_unit_test(test_locktable_random),
        cmocka_unit_test(test_deadlock_random),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
