/*
** tests/chaos/check_append.c: Elle-style list-append checker.
**
** Input: ops whose mops are `append k v` and `read k [..]`. Every appended
** (k, v) is meant to be unique, so a read list names the transactions that
** wrote each of its elements.
**
** What it checks, in order:
**   1. duplicate appends of one (k, v); duplicate elements within a read;
**      garbage reads (a value nobody appended); G1a (a value appended only
**      by a failed op is read); G1b (a read ends at a value its writer
**      later overwrote within the same txn); internal consistency (a read
**      inside a txn reflects that txn's earlier reads and appends).
**      With real time, an ok append no read observed although an ok read of
**      the key began after it completed (a lost append: realtime).
**      A txn's appends to one key must sit together in every read (the
**      element before one of them is the writer's previous append to that
**      key, else incompatible-order); a read never shows a value its own txn
**      appends only later (internal).
**   2. version order per key = the longest ok read of that key; every other
**      ok read must be a prefix of it (else incompatible-order, and that
**      read yields no edges). An append of a committed txn (ok, or info with
**      an observed append) that no read saw follows every observed element
**      of its key: a read can only end at its last element.
**   3. dependency graph over ok and info txns (failed ones never happened):
**      ww: consecutive elements of the version order, writer -> writer,
**          and the last element's writer -> each unobserved committed one;
**      wr: writer of a read's last element -> reader;
**      rw: reader of a prefix of length j -> writer of element j+1, or, for
**          a read of the whole observed order, -> each unobserved committed
**          writer of the key;
**      rt (opts.realtime): T1 completed before T2 was invoked; info ops
**      never complete, so they are only targets. Real-time edges are
**      transitively reduced (same reachability, O(n log n + edges)).
**   4. cycles: Tarjan SCCs on growing edge sets; one shortest cycle per
**      component per class, found by BFS back from one edge's head:
**      ww -> G0; ww+wr -> G1c; exactly one rw -> G-single; more -> G2;
**      needs a rt edge -> realtime (strict serializability violation).
**
** Invariants: the graph never has self-loops; node ids are op indices (an op
** that cannot be a node has no edges); the search visits at most
** opts.search_budget edges in total, and when it runs out any component it
** did not explain is reported as a `cycle` anomaly, never dropped.
*/
#include <stdlib.h>
#include <string.h>

#include "tests/chaos/chaos_int.h"

#define EDGE_WW 1u
#define EDGE_WR 2u
#define EDGE_RW 4u
#define EDGE_RT 8u
#define EDGES_NONRT (EDGE_WW | EDGE_WR | EDGE_RW)
#define APPEND_BUDGET_DEFAULT 200000000ull
#define TRIES_PER_COMPONENT_MAX 256u

typedef struct edge {
    uint32_t from, to;
    uint8_t kinds;
    int64_t key[3];  /* key that made the ww / wr / rw edge */
} edge;

typedef struct graph {
    size_t n;
    edge *edges;     /* sorted by (from, to), merged */
    size_t edge_count, edge_cap;
    size_t *start;   /* n + 1 offsets into edges */
} graph;

typedef struct checker {
    const chaos_history *h;
    chaos_result *r;
    graph g;
    chaos__map writer;   /* (k, v) -> op index * 1024 + mop index */
    chaos__map key_index;/* (k, 0) -> index in longest[] */
    const chaos_mop **longest;
    const chaos_op **latest_read; /* per key: the ok read invoked last */
    bool *observed;      /* per mop (index from the first op's mops): read */
    size_t *unobs_start; /* key_count + 1 offsets into unobs */
    uint32_t *unobs;     /* op indices: committed writers of unread appends */
    size_t key_count, key_cap;
    uint64_t budget;
    bool budget_exhausted;
    /* scratch for BFS / Tarjan, n each */
    uint32_t *stamp, *parent_edge, *queue;
    uint32_t cur_stamp;
    int32_t *comp;
    bool *in_nonrt_cycle;
    bool *gsingle;
} checker;

static const chaos_op *op_at(checker *c, size_t i) { return chaos_history_op(c->h, i); }

static bool is_node(const chaos_op *op) { return op->type != CHAOS_OP_FAIL; }

static int add_edge(checker *c, size_t from, size_t to, uint8_t kind, int64_t key) {
    if (from == to) return 0;
    if (c->g.edge_count == c->g.edge_cap) {
        size_t cap = c->g.edge_cap ? c->g.edge_cap * 2 : 256;
        edge *e = base_realloc(c->g.edges, cap * sizeof *e);
        if (!e) return CHAOS_ENOMEM;
        c->g.edges = e;
        c->g.edge_cap = cap;
    }
    edge *e = &c->g.edges[c->g.edge_count++];
    memset(e, 0, sizeof *e);
    e->from = (uint32_t)from;
    e->to = (uint32_t)to;
    e->kinds = kind;
    if (kind == EDGE_WW) e->key[0] = key;
    if (kind == EDGE_WR) e->key[1] = key;
    if (kind == EDGE_RW) e->key[2] = key;
    return 0;
}

static int cmp_edge(const void *a, const void *b) {
    const edge *x = a, *y = b;
    if (x->from != y->from) return x->from < y->from ? -1 : 1;
    if (x->to != y->to) return x->to < y->to ? -1 : 1;
    return 0;
}

static int finish_graph(checker *c) {
    graph *g = &c->g;
    if (g->edge_count) qsort(g->edges, g->edge_count, sizeof(edge), cmp_edge);
    size_t w = 0;
    for (size_t i = 0; i < g->edge_count; i++) {
        edge *e = &g->edges[i];
        if (w && g->edges[w - 1].from == e->from && g->edges[w - 1].to == e->to) {
            edge *d = &g->edges[w - 1];
            for (int k = 0; k < 3; k++)
                if ((e->kinds & (1u << k)) && !(d->kinds & (1u << k))) d->key[k] = e->key[k];
            d->kinds |= e->kinds;
        } else {
            g->edges[w++] = *e;
        }
    }
    g->edge_count = w;
    g->start = base_calloc(g->n + 1, sizeof(size_t));
    if (!g->start) return CHAOS_ENOMEM;
    for (size_t i = 0; i < w; i++) g->start[g->edges[i].from + 1]++;
    for (size_t i = 0; i < g->n; i++) g->start[i + 1] += g->start[i];
    return 0;
}

/* ---- step 1 and 2: indexes, per-read checks, version orders -------------- */
static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static const chaos_op *writer_of(checker *c, int64_t k, int64_t v, const chaos_mop **mop) {
    uint64_t *w = chaos__map_get(&c->writer, k, v);
    if (!w) return NULL;
    const chaos_op *op = op_at(c, (size_t)(*w / 1024));
    if (mop) *mop = &op->mops[*w % 1024];
    return op;
}

static int index_appends(checker *c) {
    char d1[512], d2[512];
    int rc;
    for (size_t i = 0; i < chaos_history_count(c->h); i++) {
        const chaos_op *op = op_at(c, i);
        for (size_t j = 0; j < op->mop_count; j++) {
            const chaos_mop *m = &op->mops[j];
            bool unknown_read = m->kind == CHAOS_MOP_READ && m->unknown;  /* `read k ?` */
            if (m->kind != CHAOS_MOP_APPEND && m->kind != CHAOS_MOP_READ_LIST && !unknown_read) {
                chaos__describe_op(op, d1, sizeof d1);
                chaos__note(c->r, "list-append: not a list-append micro-op in %s\n", d1);
                return CHAOS_EWORKLOAD;
            }
            if (m->kind != CHAOS_MOP_APPEND) continue;
            const chaos_op *prev = writer_of(c, m->key, m->value, NULL);
            if (prev) {
                chaos__describe_op(prev, d1, sizeof d1);
                chaos__describe_op(op, d2, sizeof d2);
                if ((rc = chaos__anomaly(c->r, CHAOS_ANOM_DUPLICATE_APPEND, "value %lld appended to key %lld twice: %s and %s",
                                         (long long)m->value, (long long)m->key, d1, d2)))
                    return rc;
                continue;
            }
            if (chaos__map_put(&c->writer, m->key, m->value, (uint64_t)i * 1024 + j)) return CHAOS_ENOMEM;
        }
    }
    return 0;
}

/* Internal consistency of the read at op->mops[j] with the same txn's
** earlier mops on that key. */
static int check_internal(checker *c, const chaos_op *op, size_t j) {
    const chaos_mop *rd = &op->mops[j];
    const chaos_mop *prior = NULL;
    size_t appends = 0, i = j;
    while (i-- > 0) {
        const chaos_mop *m = &op->mops[i];
        if (m->key != rd->key) continue;
        if (m->kind == CHAOS_MOP_READ_LIST) { prior = m; break; }
        appends++;
    }
    if (!prior && !appends) return 0;
    size_t base = prior ? prior->list_len : 0;
    bool ok = prior ? rd->list_len == base + appends : rd->list_len >= appends;
    if (ok && prior && base) ok = memcmp(rd->list, prior->list, base * sizeof(int64_t)) == 0;
    if (ok) {
        /* the last `appends` elements must be this txn's appends, in order */
        size_t at = rd->list_len - appends;
        for (size_t x = (prior ? (size_t)(prior - op->mops) + 1 : 0); x < j && ok; x++) {
            const chaos_mop *m = &op->mops[x];
            if (m->key != rd->key || m->kind != CHAOS_MOP_APPEND) continue;
            ok = rd->list[at++] == m->value;
        }
    }
    if (ok) return 0;
    char d[512];
    chaos__describe_op(op, d, sizeof d);
    return chaos__anomaly(c->r, CHAOS_ANOM_INTERNAL, "read of key %lld (micro-op %zu) disagrees with the txn's own earlier reads/appends: %s",
                          (long long)rd->key, j, d);
}

static int check_reads(checker *c) {
    char d1[512], d2[512];
    int rc = 0;
    int64_t *scratch = NULL;
    size_t scratch_cap = 0;
    size_t n = chaos_history_count(c->h);
    if (n) {
        const chaos_op *last = op_at(c, n - 1);
        size_t mops = (size_t)(last->mops + last->mop_count - op_at(c, 0)->mops);
        c->observed = base_calloc(mops ? mops : 1, sizeof *c->observed);
        if (!c->observed) return CHAOS_ENOMEM;
    }
    for (size_t i = 0; i < chaos_history_count(c->h); i++) {
        const chaos_op *op = op_at(c, i);
        if (op->type != CHAOS_OP_OK) continue;
        for (size_t j = 0; j < op->mop_count; j++) {
            const chaos_mop *m = &op->mops[j];
            if (m->kind != CHAOS_MOP_READ_LIST) continue;
            if ((rc = check_internal(c, op, j))) goto cleanup;
            /* duplicates within the read */
            if (m->list_len > scratch_cap) {
                base_free(scratch);
                scratch_cap = m->list_len;
                scratch = base_malloc(scratch_cap * sizeof *scratch);
                if (!scratch) { rc = CHAOS_ENOMEM; goto cleanup; }
            }
            if (m->list_len) {
                memcpy(scratch, m->list, m->list_len * sizeof *scratch);
                qsort(scratch, m->list_len, sizeof *scratch, cmp_i64);
            }
            for (size_t x = 1; x < m->list_len; x++) {
                if (scratch[x] != scratch[x - 1]) continue;
                chaos__describe_op(op, d1, sizeof d1);
                if ((rc = chaos__anomaly(c->r, CHAOS_ANOM_DUPLICATE_APPEND, "read of key %lld holds value %lld twice: %s",
                                         (long long)m->key, (long long)scratch[x], d1)))
                    goto cleanup;
                break;
            }
            for (size_t x = 0; x < m->list_len; x++) {
                const chaos_mop *wm = NULL;
                const chaos_op *w = writer_of(c, m->key, m->list[x], &wm);
                if (!w) {
                    chaos__describe_op(op, d1, sizeof d1);
                    if ((rc = chaos__anomaly(c->r, CHAOS_ANOM_GARBAGE_READ, "key %lld value %lld was never appended, read by %s",
                                             (long long)m->key, (long long)m->list[x], d1)))
                        goto cleanup;
                    continue;
                }
                c->observed[wm - op_at(c, 0)->mops] = true;
                /* a txn's appends to one key are contiguous in the order: the
                ** element before this one must be the writer's previous append */
                for (const chaos_mop *prev = wm; prev-- > w->mops;) {
                    if (prev->kind != CHAOS_MOP_APPEND || prev->key != m->key) continue;
                    if (x > 0 && m->list[x - 1] == prev->value) break;
                    chaos__describe_op(w, d1, sizeof d1);
                    chaos__describe_op(op, d2, sizeof d2);
                    if ((rc = chaos__anomaly(c->r, CHAOS_ANOM_INCOMPATIBLE_ORDER,
                                             "key %lld: %s read value %lld of %s without its preceding append %lld right "
                                             "before it",
                                             (long long)m->key, d2, (long long)m->list[x], d1, (long long)prev->value)))
                        goto cleanup;
                    break;
                }
                if (w == op && wm > m) {
                    chaos__describe_op(op, d1, sizeof d1);
                    if ((rc = chaos__anomaly(c->r, CHAOS_ANOM_INTERNAL,
                                             "key %lld: read observed value %lld that its own txn appends only later: %s",
                                             (long long)m->key, (long long)m->list[x], d1)))
                        goto cleanup;
                }
                if (w->type == CHAOS_OP_FAIL) {
                    chaos__describe_op(w, d1, sizeof d1);
                    chaos__describe_op(op, d2, sizeof d2);
                    if ((rc = chaos__anomaly(c->r, CHAOS_ANOM_G1A, "key %lld value %lld written by failed %s was read by %s",
                                             (long long)m->key, (long long)m->list[x], d1, d2)))
                        goto cleanup;
                    continue;
                }
                if (x + 1 == m->list_len && w != op) {
                    /* G1b: the writer appended again to this key after wm */
                    for (const chaos_mop *later = wm + 1; later < w->mops + w->mop_count; later++) {
                        if (later->kind != CHAOS_MOP_APPEND || later->key != m->key) continue;
                        chaos__describe_op(w, d1, sizeof d1);
                        chaos__describe_op(op, d2, sizeof d2);
                        if ((rc = chaos__anomaly(c->r, CHAOS_ANOM_G1B,
                                                 "key %lld: %s read intermediate value %lld of %s (it later appended %lld)",
                                                 (long long)m->key, d2, (long long)m->list[x], d1, (long long)later->value)))
                            goto cleanup;
                        break;
                    }
                }
            }
            /* longest read per key */
            uint64_t *ki = chaos__map_get(&c->key_index, m->key, 0);
            if (!ki) {
                if (c->key_count == c->key_cap) {
                    size_t cap = c->key_cap ? c->key_cap * 2 : 64;
                    const chaos_mop **l = base_realloc(c->longest, cap * sizeof *l);
                    if (!l) { rc = CHAOS_ENOMEM; goto cleanup; }
                    c->longest = l;
                    const chaos_op **lr = base_realloc(c->latest_read, cap * sizeof *lr);
                    if (!lr) { rc = CHAOS_ENOMEM; goto cleanup; }
                    c->latest_read = lr;
                    c->key_cap = cap;
                }
                if (chaos__map_put(&c->key_index, m->key, 0, c->key_count)) { rc = CHAOS_ENOMEM; goto cleanup; }
                c->latest_read[c->key_count] = op;
                c->longest[c->key_count++] = m;
            } else {
                if (m->list_len > c->longest[*ki]->list_len) c->longest[*ki] = m;
                if (op->invoke_ns > c->latest_read[*ki]->invoke_ns) c->latest_read[*ki] = op;
            }
        }
    }
cleanup:
    base_free(scratch);
    return rc;
}

/* Real time only: an acknowledged append that no read observed, although an
** ok read of its key was invoked after the append completed, is lost (a
** strict-serializability violation; under plain serializability the append
** could be ordered after every read). */
static int check_unobserved(checker *c) {
    char d1[512], d2[512];
    int rc;
    for (size_t i = 0; i < chaos_history_count(c->h); i++) {
        const chaos_op *op = op_at(c, i);
        if (op->type != CHAOS_OP_OK) continue;
        for (size_t j = 0; j < op->mop_count; j++) {
            const chaos_mop *m = &op->mops[j];
            if (m->kind != CHAOS_MOP_APPEND || c->observed[m - op_at(c, 0)->mops]) continue;
            const chaos_mop *wm = NULL;
            if (writer_of(c, m->key, m->value, &wm) != op || wm != m) continue;  /* a duplicate */
            uint64_t *ki = chaos__map_get(&c->key_index, m->key, 0);
            if (!ki) continue;
            const chaos_op *r = c->latest_read[*ki];
            if (r->invoke_ns <= op->complete_ns) continue;
            chaos__describe_op(op, d1, sizeof d1);
            chaos__describe_op(r, d2, sizeof d2);
            if ((rc = chaos__anomaly(c->r, CHAOS_ANOM_REALTIME,
                                     "acknowledged append of %lld to key %lld by %s is in no read, though %s read the key "
                                     "after it completed (lost append)",
                                     (long long)m->value, (long long)m->key, d1, d2)))
                return rc;
        }
    }
    return 0;
}

/* Which op holds this mop (mops of one op are contiguous). */
static const chaos_op *op_of_mop(checker *c, const chaos_mop *m) {
    /* the writer map gives ops for appends; for reads we search by range */
    size_t lo = 0, hi = chaos_history_count(c->h);
    while (lo + 1 < hi) {
        size_t mid = (lo + hi) / 2;
        if (op_at(c, mid)->mops <= m) lo = mid;
        else hi = mid;
    }
    return op_at(c, lo);
}

/* ---- step 3: edges --------------------------------------------------------- */

/* An op certainly committed: ok, or info with an append some ok read saw. */
static bool committed(checker *c, const chaos_op *op) {
    if (op->type == CHAOS_OP_OK) return true;
    if (op->type == CHAOS_OP_FAIL) return false;
    for (size_t j = 0; j < op->mop_count; j++)
        if (op->mops[j].kind == CHAOS_MOP_APPEND && c->observed[&op->mops[j] - op_at(c, 0)->mops]) return true;
    return false;
}

/* Unobserved appends of committed txns, per key index, as CSR: a read of a
** list ends at its last element, so such an append follows every observed
** element of its key in the version order. */
static int collect_unobserved(checker *c) {
    size_t n = chaos_history_count(c->h), total = 0;
    c->unobs_start = base_calloc(c->key_count + 1, sizeof *c->unobs_start);
    if (!c->unobs_start) return CHAOS_ENOMEM;
    for (int pass = 0; pass < 2; pass++) {
        size_t *fill = NULL;
        if (pass == 1) {
            for (size_t k = 0; k < c->key_count; k++) c->unobs_start[k + 1] += c->unobs_start[k];
            total = c->unobs_start[c->key_count];
            c->unobs = base_malloc((total ? total : 1) * sizeof *c->unobs);
            fill = base_calloc(c->key_count + 1, sizeof *fill);
            if (!c->unobs || !fill) { base_free(fill); return CHAOS_ENOMEM; }
        }
        for (size_t i = 0; i < n; i++) {
            const chaos_op *op = op_at(c, i);
            if (!committed(c, op)) continue;
            for (size_t j = 0; j < op->mop_count; j++) {
                const chaos_mop *m = &op->mops[j];
                if (m->kind != CHAOS_MOP_APPEND || c->observed[m - op_at(c, 0)->mops]) continue;
                uint64_t *ki = chaos__map_get(&c->key_index, m->key, 0);
                if (!ki) continue;
                if (pass == 0) c->unobs_start[*ki + 1]++;
                else c->unobs[c->unobs_start[*ki] + fill[*ki]++] = (uint32_t)i;
            }
        }
        base_free(fill);
    }
    return 0;
}

typedef struct pair { int64_t t; size_t i; } pair;
static int cmp_pair(const void *a, const void *b) {
    const pair *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static int build_edges(checker *c, bool realtime) {
    char d1[512], d2[512];
    int rc;
    if ((rc = collect_unobserved(c))) return rc;
    /* ww from each key's version order, then from its last observed
    ** element to every committed unobserved append */
    for (size_t k = 0; k < c->key_count; k++) {
        const chaos_mop *l = c->longest[k];
        const chaos_op *last = l->list_len ? writer_of(c, l->key, l->list[l->list_len - 1], NULL) : NULL;
        for (size_t u = c->unobs_start[k]; last && is_node(last) && u < c->unobs_start[k + 1]; u++)
            if ((rc = add_edge(c, last->index, c->unobs[u], EDGE_WW, l->key))) return rc;
        for (size_t x = 0; x + 1 < l->list_len; x++) {
            const chaos_op *a = writer_of(c, l->key, l->list[x], NULL);
            const chaos_op *b = writer_of(c, l->key, l->list[x + 1], NULL);
            if (!a || !b || !is_node(a) || !is_node(b)) continue;
            if ((rc = add_edge(c, a->index, b->index, EDGE_WW, l->key))) return rc;
        }
    }
    /* wr and rw from each compatible ok read */
    for (size_t i = 0; i < chaos_history_count(c->h); i++) {
        const chaos_op *op = op_at(c, i);
        if (op->type != CHAOS_OP_OK) continue;
        for (size_t j = 0; j < op->mop_count; j++) {
            const chaos_mop *m = &op->mops[j];
            if (m->kind != CHAOS_MOP_READ_LIST) continue;
            uint64_t *ki = chaos__map_get(&c->key_index, m->key, 0);
            if (!ki) continue;  /* cannot happen: every ok read is indexed */
            const chaos_mop *l = c->longest[*ki];
            if (l != m && m->list_len && memcmp(m->list, l->list, m->list_len * sizeof(int64_t)) != 0) {
                chaos__describe_op(op, d1, sizeof d1);
                chaos__describe_op(op_of_mop(c, l), d2, sizeof d2);
                if ((rc = chaos__anomaly(c->r, CHAOS_ANOM_INCOMPATIBLE_ORDER,
                                         "key %lld: read by %s is not a prefix of the longest read, by %s", (long long)m->key, d1, d2)))
                    return rc;
                continue;
            }
            if (m->list_len) {
                const chaos_op *w = writer_of(c, m->key, m->list[m->list_len - 1], NULL);
                if (w && is_node(w) && (rc = add_edge(c, w->index, op->index, EDGE_WR, m->key))) return rc;
            }
            if (m->list_len < l->list_len) {
                const chaos_op *w = writer_of(c, m->key, l->list[m->list_len], NULL);
                if (w && is_node(w) && (rc = add_edge(c, op->index, w->index, EDGE_RW, m->key))) return rc;
            } else {
                for (size_t u = c->unobs_start[*ki]; u < c->unobs_start[*ki + 1]; u++)
                    if ((rc = add_edge(c, op->index, c->unobs[u], EDGE_RW, m->key))) return rc;
            }
        }
    }
    if (!realtime) return 0;
    /* rt: ok ops sorted by completion; prefix max of their invocations */
    size_t n = chaos_history_count(c->h), oks = 0;
    size_t *by_complete = base_malloc((n ? n : 1) * sizeof *by_complete);
    int64_t *pmax = base_malloc((n ? n : 1) * sizeof *pmax);
    rc = 0;
    if (!by_complete || !pmax) { rc = CHAOS_ENOMEM; goto cleanup; }
    for (size_t i = 0; i < n; i++)
        if (op_at(c, i)->type == CHAOS_OP_OK) by_complete[oks++] = i;
    /* sort by completion time */
    {
        pair *p = base_malloc((oks ? oks : 1) * sizeof *p);
        if (!p) { rc = CHAOS_ENOMEM; goto cleanup; }
        for (size_t i = 0; i < oks; i++) p[i] = (pair){op_at(c, by_complete[i])->complete_ns, by_complete[i]};
        if (oks) qsort(p, oks, sizeof *p, cmp_pair);
        for (size_t i = 0; i < oks; i++) by_complete[i] = p[i].i;
        base_free(p);
    }
    for (size_t i = 0; i < oks; i++) {
        int64_t inv = op_at(c, by_complete[i])->invoke_ns;
        pmax[i] = i && pmax[i - 1] > inv ? pmax[i - 1] : inv;
    }
    for (size_t t = 0; t < n; t++) {
        const chaos_op *op = op_at(c, t);
        if (!is_node(op)) continue;
        /* hi = count of ok ops with complete < invoke */
        size_t lo = 0, hi = oks;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (op_at(c, by_complete[mid])->complete_ns < op->invoke_ns) lo = mid + 1;
            else hi = mid;
        }
        hi = lo;
        if (!hi) continue;
        int64_t m = pmax[hi - 1];
        lo = 0;
        size_t h2 = hi;
        while (lo < h2) {
            size_t mid = (lo + h2) / 2;
            if (op_at(c, by_complete[mid])->complete_ns < m) lo = mid + 1;
            else h2 = mid;
        }
        for (size_t x = lo; x < hi; x++)
            if ((rc = add_edge(c, by_complete[x], t, EDGE_RT, 0))) goto cleanup;
    }
cleanup:
    base_free(by_complete);
    base_free(pmax);
    return rc;
}

/* ---- step 4: SCCs and cycles ---------------------------------------------- */

/* Iterative Tarjan over edges with (kinds & mask). comp[v] = component id;
** comp_size[id] filled (caller frees). Returns number of comps or <0. */
static long tarjan(checker *c, uint8_t mask, size_t **comp_size_out) {
    size_t n = c->g.n;
    int rc = 0;
    long ncomp = 0;
    uint32_t *index = base_malloc((n ? n : 1) * sizeof *index);
    uint32_t *low = base_malloc((n ? n : 1) * sizeof *low);
    uint32_t *stack = base_malloc((n ? n : 1) * sizeof *stack);
    uint32_t *cs_node = base_malloc((n ? n : 1) * sizeof *cs_node);
    size_t *cs_it = base_malloc((n ? n : 1) * sizeof *cs_it);
    bool *on = base_calloc(n ? n : 1, sizeof *on);
    size_t *comp_size = base_calloc(n ? n : 1, sizeof *comp_size);
    if (!index || !low || !stack || !cs_node || !cs_it || !on || !comp_size) { rc = CHAOS_ENOMEM; goto cleanup; }
    const uint32_t undef = UINT32_MAX;
    for (size_t v = 0; v < n; v++) index[v] = undef;
    uint32_t counter = 0;
    size_t sp = 0, csp = 0;
    for (size_t root = 0; root < n; root++) {
        if (index[root] != undef) continue;
        index[root] = low[root] = counter++;
        stack[sp++] = (uint32_t)root;
        on[root] = true;
        cs_node[csp] = (uint32_t)root;
        cs_it[csp++] = c->g.start[root];
        while (csp) {
            uint32_t v = cs_node[csp - 1];
            if (cs_it[csp - 1] < c->g.start[v + 1]) {
                const edge *e = &c->g.edges[cs_it[csp - 1]++];
                if (!(e->kinds & mask)) continue;
                uint32_t w = e->to;
                if (index[w] == undef) {
                    index[w] = low[w] = counter++;
                    stack[sp++] = w;
                    on[w] = true;
                    cs_node[csp] = w;
                    cs_it[csp++] = c->g.start[w];
                } else if (on[w] && index[w] < low[v]) {
                    low[v] = index[w];
                }
                continue;
            }
            csp--;
            if (csp && low[v] < low[cs_node[csp - 1]]) low[cs_node[csp - 1]] = low[v];
            if (low[v] == index[v]) {
                uint32_t w;
                do {
                    w = stack[--sp];
                    on[w] = false;
                    c->comp[w] = (int32_t)ncomp;
                    comp_size[ncomp]++;
                } while (w != v);
                ncomp++;
            }
        }
    }
    *comp_size_out = comp_size;
    comp_size = NULL;
cleanup:
    base_free(index);
    base_free(low);
    base_free(stack);
    base_free(cs_node);
    base_free(cs_it);
    base_free(on);
    base_free(comp_size);
    return rc ? rc : ncomp;
}

/* Shortest path from s to t within s's component using edges in mask.
** Fills path edges (indices into g.edges) in order, returns its length, 0 if
** none (or budget exhausted). path must hold n entries. */
static size_t bfs(checker *c, uint32_t s, uint32_t t, uint8_t mask, size_t *path) {
    int32_t comp = c->comp[s];
    if (++c->cur_stamp == 0) {
        memset(c->stamp, 0, c->g.n * sizeof *c->stamp);
        c->cur_stamp = 1;
    }
    size_t qh = 0, qt = 0;
    c->queue[qt++] = s;
    c->stamp[s] = c->cur_stamp;
    while (qh < qt) {
        uint32_t v = c->queue[qh++];
        if (v == t) break;
        for (size_t ei = c->g.start[v]; ei < c->g.start[v + 1]; ei++) {
            if (c->budget == 0) {
                c->budget_exhausted = true;
                return 0;
            }
            c->budget--;
            const edge *e = &c->g.edges[ei];
            if (!(e->kinds & mask) || c->comp[e->to] != comp || c->stamp[e->to] == c->cur_stamp) continue;
            c->stamp[e->to] = c->cur_stamp;
            c->parent_edge[e->to] = (uint32_t)ei;
            c->queue[qt++] = e->to;
        }
    }
    if (c->stamp[t] != c->cur_stamp) return 0;
    if (s == t) return 0;
    size_t len = 0;
    for (uint32_t v = t; v != s; v = c->g.edges[c->parent_edge[v]].from) len++;
    size_t at = len;
    for (uint32_t v = t; v != s; v = c->g.edges[c->parent_edge[v]].from) path[--at] = c->parent_edge[v];
    return len;
}

/* Label an edge by the strongest kind it has within mask: ww, wr, rw, rt. */
static uint8_t label(const edge *e, uint8_t mask) {
    uint8_t k = e->kinds & mask;
    if (k & EDGE_WW) return EDGE_WW;
    if (k & EDGE_WR) return EDGE_WR;
    if (k & EDGE_RW) return EDGE_RW;
    return EDGE_RT;
}

/* Classify and report the cycle path[0..len) (closed). Returns the class
** reported, or -1 when `want` (a class) does not match; <-1 on error. */
static int report_cycle(checker *c, const size_t *path, size_t len, uint8_t mask, int want_min) {
    size_t rw = 0, rt = 0, wr = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t l = label(&c->g.edges[path[i]], mask);
        rw += l == EDGE_RW;
        rt += l == EDGE_RT;
        wr += l == EDGE_WR;
    }
    chaos_anomaly a = rt ? CHAOS_ANOM_REALTIME
                    : rw >= 2 ? CHAOS_ANOM_G2
                    : rw == 1 ? CHAOS_ANOM_G_SINGLE
                    : wr ? CHAOS_ANOM_G1C
                    : CHAOS_ANOM_G0;
    if ((int)a < want_min) return -1;
    base_buf b = {0};
    char d[512];
    int rc = 0;
    if (base_buf_printf(&b, "cycle of %zu transactions:", len)) { rc = CHAOS_ENOMEM; goto cleanup; }
    for (size_t i = 0; i < len; i++) {
        const edge *e = &c->g.edges[path[i]];
        uint8_t l = label(e, mask);
        chaos__describe_op(op_at(c, e->from), d, sizeof d);
        const char *kn = l == EDGE_WW ? "ww" : l == EDGE_WR ? "wr" : l == EDGE_RW ? "rw" : "rt";
        int k = l == EDGE_WW ? 0 : l == EDGE_WR ? 1 : 2;
        int e1 = base_buf_printf(&b, "\n    %s\n      -%s", d, kn);
        int e2 = l == EDGE_RT ? base_buf_printf(&b, " (completed before invoked)->")
                              : base_buf_printf(&b, " (key %lld)->", (long long)e->key[k]);
        if (e1 || e2) { rc = CHAOS_ENOMEM; goto cleanup; }
    }
    chaos__describe_op(op_at(c, c->g.edges[path[0]].from), d, sizeof d);
    if (base_buf_printf(&b, "\n    %s", d)) { rc = CHAOS_ENOMEM; goto cleanup; }
    rc = chaos__anomaly(c->r, a, "%s", (const char *)b.data);
cleanup:
    base_buf_free(&b);
    return rc ? rc : (int)a;
}

/* For each nontrivial component of the mask graph, try candidate edges a->b
** inside it whose kinds satisfy (kinds & cand_any) && !(kinds & cand_none),
** closing them with a BFS b->a over bfs_mask. Report the first cycle whose
** class is >= want_min, once per component. Components holding a node with
** skip_nodes[v] are not searched; nodes of components that got a report are
** marked in mark_reported (may be NULL), nodes of every nontrivial component
** in mark_cyclic (may be NULL). `unexplained` (may be NULL) counts
** components with a candidate edge where the tries or budget ran out. */
static int search(checker *c, uint8_t mask, uint8_t cand_any, uint8_t cand_none, uint8_t bfs_mask, int want_min,
                  const bool *skip_nodes, bool *mark_reported, bool *mark_cyclic, size_t *unexplained) {
    size_t *comp_size = NULL;
    size_t *path = NULL;
    bool *done = NULL;
    size_t *tries = NULL;
    int rc = 0;
    long ncomp = tarjan(c, mask, &comp_size);
    if (ncomp < 0) return (int)ncomp;
    path = base_malloc((c->g.n ? c->g.n : 1) * sizeof *path);
    done = base_calloc((size_t)ncomp + 1, sizeof *done);
    tries = base_calloc((size_t)ncomp + 1, sizeof *tries);
    if (!path || !done || !tries) { rc = CHAOS_ENOMEM; goto cleanup; }
    for (size_t v = 0; v < c->g.n; v++) {
        if (mark_cyclic && comp_size[c->comp[v]] > 1) mark_cyclic[v] = true;
        if (skip_nodes && skip_nodes[v]) done[c->comp[v]] = true;
    }
    for (size_t ei = 0; ei < c->g.edge_count; ei++) {
        const edge *e = &c->g.edges[ei];
        int32_t k = c->comp[e->from];
        if (k != c->comp[e->to] || done[k] || comp_size[k] < 2) continue;
        if (!(e->kinds & mask) || !(e->kinds & cand_any) || (e->kinds & cand_none)) continue;
        if (tries[k]++ >= TRIES_PER_COMPONENT_MAX) continue;
        size_t len = bfs(c, e->to, e->from, bfs_mask, path);
        if (!len) continue;
        path[len++] = ei;
        int got = report_cycle(c, path, len, (uint8_t)(bfs_mask | (e->kinds & mask)), want_min);
        if (got < -1) { rc = got; goto cleanup; }
        if (got >= 0) done[k] = true;
    }
    if (mark_reported)
        for (size_t v = 0; v < c->g.n; v++)
            if (done[c->comp[v]] && !(skip_nodes && skip_nodes[v])) mark_reported[v] = true;
    if (!unexplained) goto cleanup;
    for (size_t ei = 0; ei < c->g.edge_count; ei++) {
        const edge *e = &c->g.edges[ei];
        int32_t k = c->comp[e->from];
        if (k != c->comp[e->to] || done[k] || comp_size[k] < 2) continue;
        if (!(e->kinds & mask) || !(e->kinds & cand_any) || (e->kinds & cand_none)) continue;
        if (tries[k] >= TRIES_PER_COMPONENT_MAX || c->budget_exhausted) {
            (*unexplained)++;
            done[k] = true;
        }
    }
cleanup:
    base_free(comp_size);
    base_free(path);
    base_free(done);
    base_free(tries);
    return rc;
}

int chaos_check_list_append(const chaos_history *h, const chaos_append_opts *opts, chaos_result *out) {
    checker c;
    memset(&c, 0, sizeof c);
    memset(out, 0, sizeof *out);
    c.h = h;
    c.r = out;
    c.budget = opts && opts->search_budget ? opts->search_budget : APPEND_BUDGET_DEFAULT;
    bool realtime = opts && opts->realtime;
    int rc;
    size_t unexplained = 0;
    if ((rc = index_appends(&c)) || (rc = check_reads(&c))) goto cleanup;
    if (realtime && chaos_history_count(h) && (rc = check_unobserved(&c))) goto cleanup;
    c.g.n = chaos_history_count(h);
    if (c.g.n >= UINT32_MAX) { rc = CHAOS_ENOMEM; goto cleanup; }
    if ((rc = build_edges(&c, realtime)) || (rc = finish_graph(&c))) goto cleanup;
    size_t n = c.g.n ? c.g.n : 1;
    c.stamp = base_calloc(n, sizeof *c.stamp);
    c.parent_edge = base_malloc(n * sizeof *c.parent_edge);
    c.queue = base_malloc(n * sizeof *c.queue);
    c.comp = base_malloc(n * sizeof *c.comp);
    c.in_nonrt_cycle = base_calloc(n, sizeof *c.in_nonrt_cycle);
    c.gsingle = base_calloc(n, sizeof *c.gsingle);
    if (!c.stamp || !c.parent_edge || !c.queue || !c.comp || !c.in_nonrt_cycle || !c.gsingle) { rc = CHAOS_ENOMEM; goto cleanup; }
    /* G0: ww cycles */
    if ((rc = search(&c, EDGE_WW, EDGE_WW, 0, EDGE_WW, CHAOS_ANOM_G0, NULL, NULL, NULL, &unexplained))) goto cleanup;
    /* G1c: cycles through a wr edge (not also ww) over ww+wr */
    if ((rc = search(&c, EDGE_WW | EDGE_WR, EDGE_WR, EDGE_WW, EDGE_WW | EDGE_WR, CHAOS_ANOM_G1C, NULL, NULL, NULL,
                     &unexplained)))
        goto cleanup;
    /* G-single: one rw-only edge closed over ww+wr; marks every node on a
    ** non-real-time cycle for the real-time search. */
    if ((rc = search(&c, EDGES_NONRT, EDGE_RW, EDGE_WW | EDGE_WR, EDGE_WW | EDGE_WR, CHAOS_ANOM_G_SINGLE, NULL,
                     c.gsingle, c.in_nonrt_cycle, NULL)))
        goto cleanup;
    /* G2: components with no G-single, closed over all non-rt edges. */
    if ((rc = search(&c, EDGES_NONRT, EDGE_RW, EDGE_WW | EDGE_WR, EDGES_NONRT, CHAOS_ANOM_G2, c.gsingle, NULL, NULL,
                     &unexplained)))
        goto cleanup;
    /* realtime: components of the full graph with no non-rt cycle in them */
    if (realtime && (rc = search(&c, EDGES_NONRT | EDGE_RT, EDGE_RT, EDGES_NONRT, EDGES_NONRT | EDGE_RT,
                                 CHAOS_ANOM_REALTIME, c.in_nonrt_cycle, NULL, NULL, &unexplained)))
        goto cleanup;
    if (unexplained) {
        if ((rc = chaos__anomaly(out, CHAOS_ANOM_CYCLE,
                                 "%zu dependency cycle component(s) found but not classified within the search budget",
                                 unexplained)))
            goto cleanup;
    }
    if (out->verdict == CHAOS_VALID && c.key_count == 0) {
        out->verdict = CHAOS_UNKNOWN;
        if ((rc = chaos__note(out, "list-append: no ok read, nothing was checked\n"))) goto cleanup;
    }
    if (out->verdict == CHAOS_VALID && c.budget_exhausted) {
        out->verdict = CHAOS_UNKNOWN;
        if ((rc = chaos__note(out, "search budget exhausted before every component was examined\n"))) goto cleanup;
    }
    rc = chaos__finish(out, realtime ? "list-append (strict serializable)" : "list-append (serializable)");
cleanup:
    chaos__map_free(&c.writer);
    chaos__map_free(&c.key_index);
    base_free(c.longest);
    base_free(c.latest_read);
    base_free(c.observed);
    base_free(c.unobs_start);
    base_free(c.unobs);
    base_free(c.g.edges);
    base_free(c.g.start);
    base_free(c.stamp);
    base_free(c.parent_edge);
    base_free(c.queue);
    base_free(c.comp);
    base_free(c.in_nonrt_cycle);
    base_free(c.gsingle);
    return rc;
}
