/*
** tests/chaos/test_chaos_random.c: randomized histories from simulated
** stores that are correct by construction, and single corruptions of them.
**
** The simulator: P processes each run operations one after another; every
** operation gets an invocation and completion time and a linearization
** point strictly inside that interval. Operations take effect in
** linearization-point order against an in-memory store (lists, registers,
** accounts, a set), so the history is strictly serializable / linearizable
** by construction. Some operations fail (no effect) and some are
** indeterminate (effect applied with probability 1/2, results unknown).
**
** Every clean history must pass. Then one corruption is injected; the kinds
** in the "always" group must always be flagged with the named class; the
** "usually" group (stale read) only reports its detection rate.
**
** Seed: MERIDIAN_SEED from the environment, else the clock; printed first
** so a failure can be replayed.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/chaos/chaos.h"

#define PROCESSES 5
#define TXNS_MAX 400
#define MOPS_MAX 4

static uint64_t rng_state;
static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static int64_t rnd_in(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }

typedef struct gmop {
    int kind;            /* 0 append / write, 1 read, 2 cas, 3 transfer */
    int64_t key, value, value2;
    int64_t *list;       /* owner: the gtxn; base_free */
    size_t len;
    bool ok_result;      /* cas: compare succeeded */
} gmop;

typedef struct gtxn {
    int64_t process;
    chaos_op_type type;
    int64_t inv, cmp, lp;
    gmop mops[MOPS_MAX * 16];
    size_t n;
    bool final;
} gtxn;

typedef struct sim {
    gtxn txns[TXNS_MAX + 1];
    size_t count;
} sim;

static sim S;
_Static_assert(TXNS_MAX >= 150 + 3, "room for the final reads");

static void sim_free(void) {
    for (size_t i = 0; i < S.count; i++)
        for (size_t j = 0; j < S.txns[i].n; j++) {
            base_free(S.txns[i].mops[j].list);
            S.txns[i].mops[j].list = NULL;
        }
    S.count = 0;
}

/* Times for `count` ops over PROCESSES processes; sets inv/cmp/lp/type. */
static void sim_times(size_t count) {
    int64_t now[PROCESSES] = {0};
    for (size_t i = 0; i < count; i++) {
        gtxn *t = &S.txns[i];
        memset(t, 0, sizeof *t);
        int p = (int)rnd_in(0, PROCESSES - 1);
        t->process = p;
        t->inv = now[p] + rnd_in(1, 20);
        t->cmp = t->inv + rnd_in(2, 60);
        t->lp = rnd_in(t->inv + 1, t->cmp - 1) * 1000 + (int64_t)i;  /* unique */
        now[p] = t->cmp;
        int64_t r = rnd_in(0, 99);
        t->type = r < 85 ? CHAOS_OP_OK : r < 93 ? CHAOS_OP_FAIL : CHAOS_OP_INFO;
    }
    S.count = count;
}

static size_t order[TXNS_MAX + 1];
static int cmp_lp(const void *a, const void *b) {
    int64_t x = S.txns[*(const size_t *)a].lp, y = S.txns[*(const size_t *)b].lp;
    return x < y ? -1 : x > y;
}
static void sort_by_lp(void) {
    for (size_t i = 0; i < S.count; i++) order[i] = i;
    qsort(order, S.count, sizeof *order, cmp_lp);
}
static bool takes_effect(const gtxn *t) {
    return t->type == CHAOS_OP_OK || (t->type == CHAOS_OP_INFO && (rnd() & 1));
}
static int64_t max_cmp(void) {
    int64_t m = 0;
    for (size_t i = 0; i < S.count; i++) m = S.txns[i].cmp > m ? S.txns[i].cmp : m;
    return m;
}

/* ---- list-append ------------------------------------------------------- */
#define KEYS 4
typedef struct lstore { int64_t v[KEYS][TXNS_MAX * MOPS_MAX]; size_t len[KEYS]; } lstore;
static lstore L;

static void gen_append(size_t count) {
    sim_times(count);
    memset(&L, 0, sizeof L);
    int64_t next_value = 1;
    for (size_t i = 0; i < count; i++) {
        gtxn *t = &S.txns[i];
        t->n = (size_t)rnd_in(1, MOPS_MAX);
        for (size_t j = 0; j < t->n; j++) {
            t->mops[j].kind = (int)(rnd() & 1);
            t->mops[j].key = rnd_in(0, KEYS - 1);
            if (t->mops[j].kind == 0) t->mops[j].value = next_value++;
        }
    }
    /* a final txn reading every key after everything else */
    gtxn *f = &S.txns[count];
    memset(f, 0, sizeof *f);
    f->process = PROCESSES;
    f->inv = max_cmp() + 10;
    f->cmp = f->inv + 10;
    f->lp = f->inv * 1000 + 5000;
    f->type = CHAOS_OP_OK;
    f->final = true;
    f->n = KEYS;
    for (size_t k = 0; k < KEYS; k++) f->mops[k] = (gmop){.kind = 1, .key = (int64_t)k};
    S.count = count + 1;
    sort_by_lp();
    for (size_t o = 0; o < S.count; o++) {
        gtxn *t = &S.txns[order[o]];
        bool effect = takes_effect(t);
        lstore save;
        if (!effect) memcpy(&save, &L, sizeof L);
        for (size_t j = 0; j < t->n; j++) {
            gmop *m = &t->mops[j];
            size_t k = (size_t)m->key;
            if (m->kind == 0) {
                L.v[k][L.len[k]++] = m->value;
            } else {
                m->len = L.len[k];
                m->list = base_malloc((m->len ? m->len : 1) * sizeof(int64_t));
                assert_non_null(m->list);
                memcpy(m->list, L.v[k], m->len * sizeof(int64_t));
            }
        }
        if (!effect) memcpy(&L, &save, sizeof L);
    }
}

static void format_history(base_buf *b, int workload) {
    static const char *const types[] = {"ok", "fail", "info"};
    base_buf_reset(b);
    for (size_t i = 0; i < S.count; i++) {
        gtxn *t = &S.txns[i];
        if (t->type == CHAOS_OP_INFO && (rnd() & 1))
            assert_int_equal(base_buf_printf(b, "%lld info %lld - ", (long long)t->process, (long long)t->inv), 0);
        else
            assert_int_equal(base_buf_printf(b, "%lld %s %lld %lld ", (long long)t->process, types[t->type],
                                             (long long)t->inv, (long long)t->cmp), 0);
        bool known = t->type == CHAOS_OP_OK;
        for (size_t j = 0; j < t->n; j++) {
            gmop *m = &t->mops[j];
            const char *sep = j ? "; " : "";
            int rc = 0;
            if (workload == 0) {  /* list-append */
                if (m->kind == 0) rc = base_buf_printf(b, "%sappend %lld %lld", sep, (long long)m->key, (long long)m->value);
                else if (!known) rc = base_buf_printf(b, "%sread %lld ?", sep, (long long)m->key);
                else {
                    rc = base_buf_printf(b, "%sread %lld [", sep, (long long)m->key);
                    for (size_t x = 0; x < m->len && !rc; x++) rc = base_buf_printf(b, x ? " %lld" : "%lld", (long long)m->list[x]);
                    if (!rc) rc = base_buf_printf(b, "]");
                }
            } else if (workload == 1) {  /* register */
                if (m->kind == 0) rc = base_buf_printf(b, "write %lld %lld", (long long)m->key, (long long)m->value);
                else if (m->kind == 2) rc = base_buf_printf(b, "cas %lld %lld %lld", (long long)m->key, (long long)m->value, (long long)m->value2);
                else if (!known) rc = base_buf_printf(b, "read %lld ?", (long long)m->key);
                else if (m->value == CHAOS_NIL) rc = base_buf_printf(b, "read %lld nil", (long long)m->key);
                else rc = base_buf_printf(b, "read %lld %lld", (long long)m->key, (long long)m->value);
            } else if (workload == 2) {  /* bank */
                if (m->kind == 3) rc = base_buf_printf(b, "%stransfer %lld %lld %lld", sep, (long long)m->key, (long long)m->value, (long long)m->value2);
                else if (!known) rc = base_buf_printf(b, "%sbalance %lld ?", sep, (long long)m->key);
                else rc = base_buf_printf(b, "%sbalance %lld %lld", sep, (long long)m->key, (long long)m->value);
            } else {  /* set */
                if (m->kind == 0) rc = base_buf_printf(b, "add %lld", (long long)m->value);
                else if (!known) rc = base_buf_printf(b, "members ?");
                else {
                    rc = base_buf_printf(b, "members [");
                    for (size_t x = 0; x < m->len && !rc; x++) rc = base_buf_printf(b, x ? " %lld" : "%lld", (long long)m->list[x]);
                    if (!rc) rc = base_buf_printf(b, "]");
                }
            }
            assert_int_equal(rc, 0);
        }
        assert_int_equal(base_buf_printf(b, "\n"), 0);
    }
}

typedef int (*check_fn)(const chaos_history *h, chaos_result *r);

static int check_append_rt(const chaos_history *h, chaos_result *r) {
    return chaos_check_list_append(h, &(chaos_append_opts){.realtime = true}, r);
}
static int check_register_nil(const chaos_history *h, chaos_result *r) {
    return chaos_check_register(h, &(chaos_register_opts){.initial = CHAOS_NIL}, r);
}
static int check_bank_100(const chaos_history *h, chaos_result *r) {
    return chaos_check_bank(h, &(chaos_bank_opts){.total = 100, .accounts = 4}, r);
}

/* Parse and check; returns the result (caller frees). */
static chaos_result run(base_buf *b, check_fn fn, uint64_t seed, const char *what) {
    chaos_history *h = NULL;
    char err[256];
    int rc = chaos_history_parse((const char *)b->data, b->len, &h, err, sizeof err);
    if (rc) fprintf(stderr, "seed %llu %s: parse error %s\n", (unsigned long long)seed, what, err);
    assert_int_equal(rc, 0);
    chaos_result r;
    rc = fn(h, &r);
    assert_int_equal(rc, 0);
    chaos_history_free(h);
    return r;
}

static void expect_valid(base_buf *b, check_fn fn, uint64_t seed, const char *what) {
    chaos_result r = run(b, fn, seed, what);
    if (r.verdict != CHAOS_VALID)
        fprintf(stderr, "seed %llu %s: clean history judged not valid:\n%s\nhistory:\n%s", (unsigned long long)seed, what,
                (const char *)r.report.data, (const char *)b->data);
    assert_int_equal(r.verdict, CHAOS_VALID);
    chaos_result_free(&r);
}

static void expect_flagged(base_buf *b, check_fn fn, uint64_t seed, const char *what, chaos_anomaly a) {
    chaos_result r = run(b, fn, seed, what);
    if (!chaos_result_has(&r, a))
        fprintf(stderr, "seed %llu %s: corruption not flagged as %s:\n%s\nhistory:\n%s", (unsigned long long)seed, what,
                chaos_anomaly_name(a), (const char *)r.report.data, (const char *)b->data);
    assert_true(chaos_result_has(&r, a));
    assert_int_equal(r.verdict, CHAOS_INVALID);
    chaos_result_free(&r);
}

/* A random ok, non-final read mop with at least min_len elements. */
static gmop *pick_read(size_t min_len, bool allow_final, gtxn **owner) {
    for (int tries = 0; tries < 1000; tries++) {
        gtxn *t = &S.txns[rnd() % S.count];
        if (t->type != CHAOS_OP_OK || (t->final && !allow_final)) continue;
        gmop *m = &t->mops[rnd() % t->n];
        if (m->kind != 1 || m->len < min_len) continue;
        if (owner) *owner = t;
        return m;
    }
    return NULL;
}

static uint64_t base_seed(void) {
    const char *e = getenv("MERIDIAN_SEED");
    return e ? strtoull(e, NULL, 10) : (uint64_t)base_realtime_ns();
}

static void test_random_list_append(void **state) {
    (void)state;
    uint64_t seed0 = base_seed();
    printf("list-append: MERIDIAN_SEED=%llu\n", (unsigned long long)seed0);
    base_buf b = {0};
    size_t stale_tried = 0, stale_caught = 0, lost_tried = 0;
    for (uint64_t iter = 0; iter < 300; iter++) {
        uint64_t seed = seed0 + iter;
        rng_state = seed;
        gen_append((size_t)rnd_in(5, 150));
        format_history(&b, 0);
        expect_valid(&b, check_append_rt, seed, "list-append clean");
        /* one corruption */
        int kind = (int)(iter % 7);
        gtxn *owner = NULL;
        gmop *m;
        switch (kind) {
        case 0: /* garbage value */
            if (!(m = pick_read(0, true, NULL))) break;
            m->list = base_realloc(m->list, (m->len + 1) * sizeof(int64_t));
            m->list[m->len++] = 1000000000;
            format_history(&b, 0);
            expect_flagged(&b, check_append_rt, seed, "garbage", CHAOS_ANOM_GARBAGE_READ);
            break;
        case 1: /* duplicate an element */
            if (!(m = pick_read(1, true, NULL))) break;
            m->list = base_realloc(m->list, (m->len + 1) * sizeof(int64_t));
            m->list[m->len] = m->list[rnd() % m->len];
            m->len++;
            format_history(&b, 0);
            expect_flagged(&b, check_append_rt, seed, "duplicate", CHAOS_ANOM_DUPLICATE_APPEND);
            break;
        case 2: { /* swap two elements of a non-final read */
            if (!(m = pick_read(2, false, NULL))) break;
            size_t x = rnd() % m->len, y = rnd() % m->len;
            if (x == y) y = (x + 1) % m->len;
            int64_t tmp = m->list[x];
            m->list[x] = m->list[y];
            m->list[y] = tmp;
            format_history(&b, 0);
            expect_flagged(&b, check_append_rt, seed, "swap", CHAOS_ANOM_INCOMPATIBLE_ORDER);
            break;
        }
        case 3: { /* drop a non-last element of a non-final read */
            if (!(m = pick_read(2, false, NULL))) break;
            size_t x = rnd() % (m->len - 1);
            memmove(m->list + x, m->list + x + 1, (m->len - x - 1) * sizeof(int64_t));
            m->len--;
            format_history(&b, 0);
            expect_flagged(&b, check_append_rt, seed, "drop", CHAOS_ANOM_INCOMPATIBLE_ORDER);
            break;
        }
        case 4: { /* the writer of an observed value failed */
            gmop *r = pick_read(1, true, &owner);
            if (!r) break;
            int64_t v = r->list[rnd() % r->len];
            gtxn *w = NULL;
            for (size_t i = 0; i < S.count && !w; i++)
                for (size_t j = 0; j < S.txns[i].n; j++)
                    if (S.txns[i].mops[j].kind == 0 && S.txns[i].mops[j].key == r->key && S.txns[i].mops[j].value == v)
                        w = &S.txns[i];
            assert_non_null(w);
            if (w == owner) break;
            w->type = CHAOS_OP_FAIL;
            format_history(&b, 0);
            expect_flagged(&b, check_append_rt, seed, "failed-writer", CHAOS_ANOM_G1A);
            break;
        }
        case 6: { /* final read loses its last element, written by an ok
                  ** txn that completed before it: always invalid (realtime
                  ** or, when that txn also wrote what the final read saw
                  ** last on another key, G-single) */
            gtxn *f = &S.txns[S.count - 1];
            gmop *fm = &f->mops[rnd() % f->n];
            if (!fm->len) break;
            int64_t v = fm->list[fm->len - 1];
            bool ok_writer = false;
            for (size_t i = 0; i + 1 < S.count; i++)
                for (size_t j = 0; j < S.txns[i].n; j++)
                    if (S.txns[i].mops[j].kind == 0 && S.txns[i].mops[j].key == fm->key && S.txns[i].mops[j].value == v)
                        ok_writer = S.txns[i].type == CHAOS_OP_OK;
            if (!ok_writer) break;
            fm->len--;
            format_history(&b, 0);
            chaos_result r = run(&b, check_append_rt, seed, "final read lost append");
            lost_tried++;
            if (r.verdict != CHAOS_INVALID)
                fprintf(stderr, "seed %llu: lost append not flagged:\n%s\nhistory:\n%s", (unsigned long long)seed,
                        (const char *)r.report.data, (const char *)b.data);
            assert_int_equal(r.verdict, CHAOS_INVALID);
            chaos_result_free(&r);
            break;
        }
        case 5: { /* stale read: truncate a non-final read (usually caught) */
            if (!(m = pick_read(1, false, NULL))) break;
            m->len = (size_t)rnd_in(0, (int64_t)m->len - 1);
            format_history(&b, 0);
            chaos_result r = run(&b, check_append_rt, seed, "stale");
            stale_tried++;
            stale_caught += r.verdict == CHAOS_INVALID;
            chaos_result_free(&r);
            break;
        }
        }
        sim_free();
    }
    printf("list-append: stale-read corruption flagged in %zu of %zu histories\n", stale_caught, stale_tried);
    printf("list-append: lost-append corruption flagged in %zu of %zu histories\n", lost_tried, lost_tried);
    assert_true(stale_caught > 0);
    assert_true(lost_tried > 0);
    base_buf_free(&b);
}

/* ---- list-append on a weak store ----------------------------------------
** Snapshot isolation without write-conflict detection: reads see the
** commits before the txn's invocation plus its own appends; appends commit
** at the linearization point. Allows lost updates (G-single) and write skew
** (G2), and stale reads (realtime); never G0, G1a/b/c, garbage. */
typedef struct version { int64_t lp, value; } version;
static version V[KEYS][TXNS_MAX * MOPS_MAX];
static size_t VN[KEYS];

static void gen_append_si(size_t count) {
    gen_append(count);  /* shapes, values and the final read */
    for (size_t i = 0; i < S.count; i++)
        for (size_t j = 0; j < S.txns[i].n; j++) {
            base_free(S.txns[i].mops[j].list);
            S.txns[i].mops[j].list = NULL;
        }
    memset(VN, 0, sizeof VN);
    for (size_t o = 0; o < S.count; o++) {
        gtxn *t = &S.txns[order[o]];
        bool effect = takes_effect(t);
        int64_t snap = t->final ? INT64_MAX : t->inv * 1000;
        for (size_t j = 0; j < t->n; j++) {
            gmop *m = &t->mops[j];
            if (m->kind == 0) continue;
            size_t k = (size_t)m->key;
            m->list = base_malloc((VN[k] + MOPS_MAX + 1) * sizeof(int64_t));
            assert_non_null(m->list);
            m->len = 0;
            for (size_t x = 0; x < VN[k] && V[k][x].lp < snap; x++) m->list[m->len++] = V[k][x].value;
            for (size_t y = 0; y < j; y++)
                if (t->mops[y].kind == 0 && t->mops[y].key == m->key) m->list[m->len++] = t->mops[y].value;
        }
        if (!effect) continue;
        for (size_t j = 0; j < t->n; j++) {
            gmop *m = &t->mops[j];
            if (m->kind == 0) V[m->key][VN[m->key]++] = (version){t->lp, m->value};
        }
    }
}

static void test_random_list_append_weak_store(void **state) {
    (void)state;
    uint64_t seed0 = base_seed();
    printf("list-append weak store: MERIDIAN_SEED=%llu\n", (unsigned long long)seed0);
    base_buf b = {0};
    size_t flagged = 0, cycles = 0, runs = 200;
    uint64_t allowed = (1ull << CHAOS_ANOM_G_SINGLE) | (1ull << CHAOS_ANOM_G2) | (1ull << CHAOS_ANOM_REALTIME) |
                       (1ull << CHAOS_ANOM_INCOMPATIBLE_ORDER) | (1ull << CHAOS_ANOM_CYCLE);
    for (uint64_t iter = 0; iter < runs; iter++) {
        uint64_t seed = seed0 + iter;
        rng_state = seed;
        gen_append_si((size_t)rnd_in(20, 150));
        format_history(&b, 0);
        chaos_result r = run(&b, check_append_rt, seed, "weak store");
        if (r.anomalies & ~allowed)
            fprintf(stderr, "seed %llu: weak store flagged an impossible class:\n%s\nhistory:\n%s", (unsigned long long)seed,
                    (const char *)r.report.data, (const char *)b.data);
        assert_int_equal(r.anomalies & ~allowed, 0);
        flagged += r.verdict == CHAOS_INVALID;
        cycles += chaos_result_has(&r, CHAOS_ANOM_G_SINGLE) || chaos_result_has(&r, CHAOS_ANOM_G2);
        chaos_result_free(&r);
        sim_free();
    }
    printf("list-append weak store: %zu of %zu histories invalid, %zu with G-single/G2 cycles\n", flagged, runs, cycles);
    assert_true(cycles > runs / 4);
    base_buf_free(&b);
}

/* ---- register ------------------------------------------------------------ */
static void gen_register(size_t count) {
    sim_times(count);
    int64_t next_value = 1;
    for (size_t i = 0; i < count; i++) {
        gtxn *t = &S.txns[i];
        t->n = 1;
        gmop *m = &t->mops[0];
        m->key = rnd_in(0, 2);
        int64_t r = rnd_in(0, 2);
        m->kind = r == 0 ? 0 : r == 1 ? 1 : 2;
        if (m->kind == 0) m->value = next_value++;
        if (m->kind == 2) { m->value = rnd_in(0, next_value); m->value2 = next_value++; }
    }
    /* a final ok read of each key after everything else */
    int64_t end = max_cmp();
    for (size_t k = 0; k < 3; k++) {
        gtxn *t = &S.txns[count + k];
        memset(t, 0, sizeof *t);
        t->process = PROCESSES;
        t->inv = end + 5 + 10 * (int64_t)k;
        t->cmp = t->inv + 5;
        t->lp = t->inv * 1000 + 2000;
        t->type = CHAOS_OP_OK;
        t->n = 1;
        t->mops[0] = (gmop){.kind = 1, .key = (int64_t)k};
    }
    S.count = count + 3;
    sort_by_lp();
    int64_t reg[3] = {CHAOS_NIL, CHAOS_NIL, CHAOS_NIL};
    for (size_t o = 0; o < S.count; o++) {
        gtxn *t = &S.txns[order[o]];
        gmop *m = &t->mops[0];
        bool effect = takes_effect(t);
        int64_t *cell = &reg[m->key];
        if (m->kind == 1) {
            m->value = *cell;
        } else if (m->kind == 2) {
            /* a cas whose compare fails is reported as fail (no effect) */
            if (*cell != m->value && t->type == CHAOS_OP_OK) t->type = CHAOS_OP_FAIL;
            if (effect && *cell == m->value) *cell = m->value2;
        } else if (effect) {
            *cell = m->value;
        }
    }
}

static void test_random_register(void **state) {
    (void)state;
    uint64_t seed0 = base_seed();
    printf("register: MERIDIAN_SEED=%llu\n", (unsigned long long)seed0);
    base_buf b = {0};
    size_t usual_tried = 0, usual_caught = 0;
    for (uint64_t iter = 0; iter < 200; iter++) {
        uint64_t seed = seed0 + iter;
        rng_state = seed;
        gen_register((size_t)rnd_in(5, 120));
        format_history(&b, 1);
        expect_valid(&b, check_register_nil, seed, "register clean");
        gmop *m = pick_read(0, true, NULL);
        if (m && iter % 2 == 0) {  /* a value never written: always caught */
            m->value = 1000000000;
            format_history(&b, 1);
            expect_flagged(&b, check_register_nil, seed, "register garbage", CHAOS_ANOM_NONLINEARIZABLE);
        } else if (m) {  /* a value written at some other time: usually */
            gtxn *w = &S.txns[rnd() % S.count];
            if (w->mops[0].kind == 0 && w->mops[0].key == m->key && w->mops[0].value != m->value) {
                m->value = w->mops[0].value;
                format_history(&b, 1);
                chaos_result r = run(&b, check_register_nil, seed, "register other value");
                usual_tried++;
                usual_caught += r.verdict == CHAOS_INVALID;
                chaos_result_free(&r);
            }
        }
        sim_free();
    }
    printf("register: other-written-value corruption flagged in %zu of %zu histories\n", usual_caught, usual_tried);
    base_buf_free(&b);
}

/* ---- bank and set ---------------------------------------------------------- */
static void test_random_bank_and_set(void **state) {
    (void)state;
    uint64_t seed0 = base_seed();
    printf("bank/set: MERIDIAN_SEED=%llu\n", (unsigned long long)seed0);
    base_buf b = {0};
    for (uint64_t iter = 0; iter < 200; iter++) {
        uint64_t seed = seed0 + iter;
        rng_state = seed;
        /* bank: 4 accounts of 25 */
        size_t count = (size_t)rnd_in(5, 100);
        sim_times(count);
        for (size_t i = 0; i < count; i++) {
            gtxn *t = &S.txns[i];
            if (rnd() & 1) {
                t->n = 1;
                t->mops[0] = (gmop){.kind = 3, .key = rnd_in(0, 3), .value = rnd_in(0, 3), .value2 = rnd_in(1, 30)};
                if (t->mops[0].value == t->mops[0].key) t->mops[0].value = (t->mops[0].key + 1) % 4;
            } else {
                t->n = 4;
                for (int k = 0; k < 4; k++) t->mops[k] = (gmop){.kind = 1, .key = k};
            }
        }
        gtxn *fb = &S.txns[count];  /* a final read-all after everything */
        memset(fb, 0, sizeof *fb);
        fb->inv = max_cmp() + 5;
        fb->cmp = fb->inv + 5;
        fb->lp = fb->inv * 1000 + 2000;
        fb->type = CHAOS_OP_OK;
        fb->n = 4;
        for (int k = 0; k < 4; k++) fb->mops[k] = (gmop){.kind = 1, .key = k};
        S.count = count + 1;
        sort_by_lp();
        int64_t bal[4] = {25, 25, 25, 25};
        for (size_t o = 0; o < S.count; o++) {
            gtxn *t = &S.txns[order[o]];
            bool effect = takes_effect(t);
            if (t->mops[0].kind == 3) {
                gmop *m = &t->mops[0];
                if (bal[m->key] < m->value2) {  /* insufficient funds: fails */
                    if (t->type == CHAOS_OP_OK) t->type = CHAOS_OP_FAIL;
                } else if (effect) {
                    bal[m->key] -= m->value2;
                    bal[m->value] += m->value2;
                }
            } else {
                for (int k = 0; k < 4; k++) t->mops[k].value = bal[k];
            }
        }
        format_history(&b, 2);
        expect_valid(&b, check_bank_100, seed, "bank clean");
        gmop *m = NULL;
        for (int tries = 0; tries < 100 && !m; tries++) {
            gtxn *t = &S.txns[rnd() % S.count];
            if (t->type == CHAOS_OP_OK && t->mops[0].kind == 1) m = &t->mops[rnd() % 4];
        }
        if (m) {
            m->value += rnd_in(1, 5) * (rnd() & 1 ? 1 : -1);
            format_history(&b, 2);
            expect_flagged(&b, check_bank_100, seed, "bank corrupted balance", CHAOS_ANOM_BANK_WRONG_SUM);
        }
        sim_free();

        /* set: unique adds, a final read after everything */
        count = (size_t)rnd_in(5, 150);
        sim_times(count);
        for (size_t i = 0; i < count; i++) {
            S.txns[i].n = 1;
            S.txns[i].mops[0] = (gmop){.kind = 0, .value = (int64_t)i + 1};
        }
        gtxn *f = &S.txns[count];
        memset(f, 0, sizeof *f);
        f->inv = max_cmp() + 5;
        f->cmp = f->inv + 5;
        f->lp = f->inv * 1000 + 2000;
        f->type = CHAOS_OP_OK;
        f->n = 1;
        f->final = true;
        f->mops[0].kind = 1;
        f->mops[0].list = base_malloc((count + 2) * sizeof(int64_t));
        assert_non_null(f->mops[0].list);
        S.count = count + 1;
        sort_by_lp();
        for (size_t o = 0; o < S.count; o++) {
            gtxn *t = &S.txns[order[o]];
            if (t->final) continue;
            if (takes_effect(t)) f->mops[0].list[f->mops[0].len++] = t->mops[0].value;
        }
        format_history(&b, 3);
        expect_valid(&b, chaos_check_set, seed, "set clean");
        /* lose one acknowledged element: always caught */
        gmop *fm = &f->mops[0];
        for (size_t x = 0; x < fm->len; x++) {
            if (S.txns[fm->list[x] - 1].type != CHAOS_OP_OK) continue;
            int64_t saved = fm->list[x];
            fm->list[x] = fm->list[fm->len - 1];
            fm->len--;
            format_history(&b, 3);
            expect_flagged(&b, chaos_check_set, seed, "set lost", CHAOS_ANOM_SET_LOST);
            fm->list[fm->len++] = saved;
            break;
        }
        fm->list[fm->len++] = 1000000;  /* never added: always caught */
        format_history(&b, 3);
        expect_flagged(&b, chaos_check_set, seed, "set unexpected", CHAOS_ANOM_SET_UNEXPECTED);
        sim_free();
    }
    base_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_list_append),
        cmocka_unit_test(test_random_list_append_weak_store),
        cmocka_unit_test(test_random_register),
        cmocka_unit_test(test_random_bank_and_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
