/*
** tests/chaos/check_register.c: linearizability of single-key registers.
**
** Each op is one mop: read k v | write k v | cas k old new. Keys are
** independent (linearizability is compositional), so each key is checked
** on its own with the Wing-Gong search as improved by Lowe ("Testing for
** linearizability", 2017) and used by Knossos and Porcupine:
**
**   a list of call/return entries in time order (a call before a return at
**   equal times: equal means concurrent); repeatedly take the first call
**   whose op can be applied to the current state, lift it (and its return)
**   out of the list and start again from the head; on meeting a return
**   whose op is not yet linearized, backtrack. A cache of (set of
**   linearized ops, state) already explored prunes the search.
**
** fail ops never happened and are dropped. info ops may take effect at any
** time after their invocation or never: they have no return entry, need not
** be linearized, and an info read is dropped (its value is unknown).
**
** Invariants: the search is bounded by opts.search_budget steps and
** REGISTER_CACHE_BYTES_MAX of cache per key; past either the key's verdict is
** unknown (reported as such, never as valid).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/chaos/chaos_int.h"

#define REGISTER_BUDGET_DEFAULT 2000000ull
#define REGISTER_CACHE_BYTES_MAX (256u << 20)

typedef struct reg_op {
    const chaos_op *op;
    const chaos_mop *m;
    bool ok;        /* must be linearized */
} reg_op;

typedef struct entry {
    int64_t time;
    bool is_call;
    uint32_t id;
    struct entry *prev, *next, *match;  /* match: the call's return or NULL */
} entry;

typedef struct cache {
    uint64_t *words;     /* pool: slot i at words + i * nwords */
    int64_t *states;
    uint64_t *hashes;
    size_t count, cap;   /* stored sets */
    uint32_t *table;     /* open addressing: index + 1, 0 empty */
    size_t table_cap;
    size_t nwords;
} cache;

static uint64_t hash_set(const uint64_t *w, size_t n, int64_t state) {
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)state;
    for (size_t i = 0; i < n; i++) {
        h ^= w[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

/* 1 inserted, 0 present, <0 error (CHAOS_ENOMEM or -100 over the limit). */
static int cache_insert(cache *c, const uint64_t *w, int64_t state) {
    uint64_t h = hash_set(w, c->nwords, state);
    if ((c->count + 1) * 2 > c->table_cap) {
        size_t cap = c->table_cap ? c->table_cap * 2 : 1024;
        uint32_t *t = base_calloc(cap, sizeof *t);
        if (!t) return CHAOS_ENOMEM;
        for (size_t i = 0; i < c->count; i++) {
            size_t j = c->hashes[i] & (cap - 1);
            while (t[j]) j = (j + 1) & (cap - 1);
            t[j] = (uint32_t)(i + 1);
        }
        base_free(c->table);
        c->table = t;
        c->table_cap = cap;
    }
    size_t j = h & (c->table_cap - 1);
    while (c->table[j]) {
        size_t i = c->table[j] - 1;
        if (c->hashes[i] == h && c->states[i] == state && memcmp(c->words + i * c->nwords, w, c->nwords * 8) == 0)
            return 0;
        j = (j + 1) & (c->table_cap - 1);
    }
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        if (cap * (c->nwords * 8 + 16) > REGISTER_CACHE_BYTES_MAX || cap >= UINT32_MAX) return -100;
        uint64_t *words = base_realloc(c->words, cap * c->nwords * 8);
        if (!words) return CHAOS_ENOMEM;
        c->words = words;
        int64_t *states = base_realloc(c->states, cap * sizeof *states);
        if (!states) return CHAOS_ENOMEM;
        c->states = states;
        uint64_t *hashes = base_realloc(c->hashes, cap * sizeof *hashes);
        if (!hashes) return CHAOS_ENOMEM;
        c->hashes = hashes;
        c->cap = cap;
    }
    memcpy(c->words + c->count * c->nwords, w, c->nwords * 8);
    c->states[c->count] = state;
    c->hashes[c->count] = h;
    c->table[j] = (uint32_t)(++c->count);
    return 1;
}

static void cache_free(cache *c) {
    base_free(c->words);
    base_free(c->states);
    base_free(c->hashes);
    base_free(c->table);
}

static bool apply(const chaos_mop *m, int64_t state, int64_t *next) {
    switch (m->kind) {
    case CHAOS_MOP_READ: *next = state; return state == m->value;
    case CHAOS_MOP_WRITE: *next = m->value; return true;
    case CHAOS_MOP_CAS: *next = m->value2; return state == m->value;
    default: return false;
    }
}

static int cmp_entry(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->time != y->time) return x->time < y->time ? -1 : 1;
    if (x->is_call != y->is_call) return x->is_call ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void lift(entry *e) {
    e->prev->next = e->next;
    if (e->next) e->next->prev = e->prev;
    entry *m = e->match;
    if (m) {
        m->prev->next = m->next;
        if (m->next) m->next->prev = m->prev;
    }
}

static void unlift(entry *e) {
    entry *m = e->match;
    if (m) {
        m->prev->next = m;
        if (m->next) m->next->prev = m;
    }
    e->prev->next = e;
    if (e->next) e->next->prev = e;
}

static void fmt_value(int64_t v, char *buf, size_t n) {
    if (v == CHAOS_NIL) snprintf(buf, n, "nil");
    else snprintf(buf, n, "%lld", (long long)v);
}

/* Check one key's ops. *verdict set to VALID / INVALID / UNKNOWN. */
static int check_key(const chaos_register_opts *opts, reg_op *ops, size_t n, int64_t key, chaos_result *r,
                     chaos_verdict *verdict) {
    int rc = 0;
    size_t nwords = n / 64 + 1, ne = 0, oks = 0;
    entry *entries = base_calloc(2 * n + 1, sizeof *entries);
    uint64_t *bits = base_calloc(nwords, sizeof *bits);
    entry **stack_e = base_malloc((n + 1) * sizeof *stack_e);
    int64_t *stack_s = base_malloc((n + 1) * sizeof *stack_s);
    entry **call_of = base_calloc(n + 1, sizeof *call_of);
    cache cc = {.nwords = nwords};
    if (!entries || !bits || !stack_e || !stack_s || !call_of) { rc = CHAOS_ENOMEM; goto cleanup; }
    for (size_t i = 0; i < n; i++) {
        entries[ne++] = (entry){.time = ops[i].op->invoke_ns, .is_call = true, .id = (uint32_t)i};
        if (ops[i].ok) {
            entries[ne++] = (entry){.time = ops[i].op->complete_ns, .is_call = false, .id = (uint32_t)i};
            oks++;
        }
    }
    qsort(entries, ne, sizeof *entries, cmp_entry);
    /* entries[ne] is the head sentinel */
    entry *head = &entries[ne];
    head->prev = NULL;
    head->next = ne ? &entries[0] : NULL;
    for (size_t i = 0; i < ne; i++) {
        entries[i].prev = i ? &entries[i - 1] : head;
        entries[i].next = i + 1 < ne ? &entries[i + 1] : NULL;
        if (entries[i].is_call) call_of[entries[i].id] = &entries[i];
    }
    for (size_t i = 0; i < ne; i++)
        if (!entries[i].is_call) call_of[entries[i].id]->match = &entries[i];

    uint64_t budget = opts && opts->search_budget ? opts->search_budget : REGISTER_BUDGET_DEFAULT;
    int64_t state = opts ? opts->initial : CHAOS_NIL;
    size_t depth = 0, remaining = oks, best = 0;
    const entry *stuck = NULL;
    int64_t stuck_state = state;
    entry *e = head->next;
    for (uint64_t steps = 0;; steps++) {
        if (remaining == 0) { *verdict = CHAOS_VALID; goto cleanup; }
        if (steps >= budget) {
            *verdict = CHAOS_UNKNOWN;
            rc = chaos__note(r, "register key %lld: unknown, search budget of %llu steps exhausted (%zu ops)\n",
                             (long long)key, (unsigned long long)budget, n);
            goto cleanup;
        }
        if (e && e->is_call) {
            const reg_op *o = &ops[e->id];
            int64_t next;
            if (apply(o->m, state, &next)) {
                bits[e->id / 64] |= 1ull << (e->id % 64);
                int ins = cache_insert(&cc, bits, next);
                if (ins == -100) {
                    *verdict = CHAOS_UNKNOWN;
                    rc = chaos__note(r, "register key %lld: unknown, search cache over %u bytes\n", (long long)key,
                                     REGISTER_CACHE_BYTES_MAX);
                    goto cleanup;
                }
                if (ins < 0) { rc = ins; goto cleanup; }
                if (ins == 1) {
                    stack_e[depth] = e;
                    stack_s[depth++] = state;
                    state = next;
                    lift(e);
                    if (o->ok) remaining--;
                    e = head->next;
                    continue;
                }
                bits[e->id / 64] &= ~(1ull << (e->id % 64));
            }
            e = e->next;
            continue;
        }
        /* a return of an op not linearized, or the end of the list */
        if (oks - remaining >= best && e) {
            best = oks - remaining;
            stuck = e;
            stuck_state = state;
        }
        if (depth == 0) break;
        entry *top = stack_e[--depth];
        state = stack_s[depth];
        bits[top->id / 64] &= ~(1ull << (top->id % 64));
        unlift(top);
        if (ops[top->id].ok) remaining++;
        e = top->next;
    }
    *verdict = CHAOS_INVALID;
    {
        char d[512], sv[32];
        d[0] = 0;
        if (stuck) chaos__describe_op(ops[stuck->id].op, d, sizeof d);
        fmt_value(stuck_state, sv, sizeof sv);
        rc = chaos__anomaly(r, CHAOS_ANOM_NONLINEARIZABLE,
                            "register key %lld: no linearization of %zu ops; the longest partial one linearized %zu of %zu "
                            "ok ops and then had to return %s while the register held %s (and no other order helps)",
                            (long long)key, n, best, oks, stuck ? d : "(none)", sv);
    }
cleanup:
    base_free(entries);
    base_free(bits);
    base_free(stack_e);
    base_free(stack_s);
    base_free(call_of);
    cache_free(&cc);
    return rc;
}

static int cmp_key(const void *a, const void *b) {
    const reg_op *x = a, *y = b;
    if (x->m->key != y->m->key) return x->m->key < y->m->key ? -1 : 1;
    return x->op->index < y->op->index ? -1 : x->op->index > y->op->index;
}

int chaos_check_register(const chaos_history *h, const chaos_register_opts *opts, chaos_result *out) {
    memset(out, 0, sizeof *out);
    size_t n = chaos_history_count(h), count = 0, unknown_keys = 0;
    int rc = 0;
    reg_op *ops = base_malloc((n ? n : 1) * sizeof *ops);
    if (!ops) return CHAOS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const chaos_op *op = chaos_history_op(h, i);
        const chaos_mop *m = &op->mops[0];
        if (op->mop_count != 1 || (m->kind != CHAOS_MOP_READ && m->kind != CHAOS_MOP_WRITE && m->kind != CHAOS_MOP_CAS)) {
            char d[512];
            chaos__describe_op(op, d, sizeof d);
            chaos__note(out, "register: ops must be one read/write/cas micro-op: %s\n", d);
            rc = CHAOS_EWORKLOAD;
            goto cleanup;
        }
        if (op->type == CHAOS_OP_FAIL) continue;
        if (op->type == CHAOS_OP_INFO && m->kind == CHAOS_MOP_READ) continue;
        ops[count++] = (reg_op){op, m, op->type == CHAOS_OP_OK};
    }
    if (count) qsort(ops, count, sizeof *ops, cmp_key);
    for (size_t i = 0; i < count;) {
        size_t j = i;
        while (j < count && ops[j].m->key == ops[i].m->key) j++;
        chaos_verdict v = CHAOS_VALID;
        if ((rc = check_key(opts, ops + i, j - i, ops[i].m->key, out, &v))) goto cleanup;
        if (v == CHAOS_UNKNOWN) unknown_keys++;
        i = j;
    }
    if (out->verdict == CHAOS_VALID && unknown_keys) out->verdict = CHAOS_UNKNOWN;
    bool any_ok = false;
    for (size_t i = 0; i < count && !any_ok; i++) any_ok = ops[i].ok;
    if (out->verdict == CHAOS_VALID && !any_ok) {
        out->verdict = CHAOS_UNKNOWN;
        if ((rc = chaos__note(out, "register: no ok operation, nothing was checked\n"))) goto cleanup;
    }
    rc = chaos__finish(out, "register (linearizable)");
cleanup:
    base_free(ops);
    return rc;
}
