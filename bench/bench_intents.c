/*
** bench_intents: the cost of a commit's intent check (range/server.c
** check_intents) after a large transaction's intents were resolved, whose
** intent keys RocksDB keeps as tombstones until a compaction takes them.
**
** Shape: one RocksDB store (a fresh temp dir in argv[1], else
** $MERIDIAN_BENCH_DIR, else the current directory, per case) and one range
** ["t/", "t0"). A transaction lays N intents at t/big/<i> and they are
** resolved (deleted raw keys; flushed to a table file, as a bulk load's
** would be). Then K commits of B writes each run the check the way
** check_intents does (the one-seek test, then, only when it says "maybe",
** a lookup per write), and each then lays and resolves its own B intents,
** as a two-phase commit does (so the tombstones grow like a backfill's).
** Cases:
**   range        the old test: one seek over the whole range's intents;
**   bounding     the new one: over the commit's bounding span, its keys
**                after the big transaction's (t/new/...);
**   interleaved  the new one, the commit's keys inside the big
**                transaction's span (t/big/<i>x: the worst case for it);
**   lookups      no seek: a lookup per write (the path of a few point
**                keys), interleaved keys;
**   +compacted   the same after storage_compact_raw of the resolved span,
**                and each commit's own after its resolution, queued in the
**                background (what a large RESOLVE now asks for).
** Prints, per case, the mean time of a check as this thread's CPU (the
** seeks' work, what eval_mu is held for) and wall, and how many said
** "maybe" (an intent perhaps there: a lookup per write followed).
** Never fails on timing. MERIDIAN_BENCH_N (default 200000),
** MERIDIAN_BENCH_K (default 100) and MERIDIAN_BENCH_B (default 1000).
**
** Invariants: nothing else writes the store; every case on a fresh store.
*/
#define _GNU_SOURCE
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "range/eval_int.h"
#include "range/intent_int.h"
#include "range/range.h"
#include "storage/storage.h"

#define BENCH_LAY_BATCH 10000 /* intents per storage batch */
#define BENCH_CHECK(c) \
    do { \
        if (!(c)) { \
            fprintf(stderr, "bench_intents: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort(); \
        } \
    } while (0)

typedef enum bench_kind { KIND_RANGE, KIND_BOUNDING, KIND_INTERLEAVED, KIND_LOOKUPS } bench_kind;

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Lay (put) or resolve (delete) the intents of txn on keys (back to back in
** kb at ko, n + 1 offsets), in batches. */
static void intents_op(storage_engine *e, const base_buf *kb, const size_t *ko, size_t n,
                       uint64_t txn, bool put)
{
    base_buf ik = {0}, v = {0}; /* owner: this function */
    range__intent in = {.txn_id = txn, .nonce = 1, .ts = {.wall_ns = 1000, .logical = 0},
                        .anchor = (const uint8_t *)"t/anchor", .anchor_len = 8,
                        .value = (const uint8_t *)"value-of-sixteen", .value_len = 16};
    BENCH_CHECK(range__intent_encode(&in, &v) == RANGE_OK);
    storage_batch *b = storage_batch_new();
    BENCH_CHECK(b != NULL);
    for (size_t i = 0; i < n; i++) {
        BENCH_CHECK(range__intent_key(kb->data + ko[i], ko[i + 1] - ko[i], &ik) == RANGE_OK);
        if (put)
            BENCH_CHECK(storage_batch_put_raw(b, ik.data, ik.len, v.data, v.len) == STORAGE_OK);
        else
            BENCH_CHECK(storage_batch_delete_raw(b, ik.data, ik.len) == STORAGE_OK);
        if (storage_batch_count(b) >= BENCH_LAY_BATCH || i + 1 == n) {
            BENCH_CHECK(storage_write(e, b, false) == STORAGE_OK);
            storage_batch_clear(b);
        }
    }
    storage_batch_free(b);
    base_buf_free(&ik);
    base_buf_free(&v);
}

/* n keys of one commit (batch SIZE_MAX: the big transaction), sorted, into
** kb/ko (reset; ko: n + 1 offsets). */
static void make_keys(base_buf *kb, size_t **ko, size_t n, bench_kind kind, size_t batch,
                      size_t n_big)
{
    base_buf_reset(kb);
    free(*ko);
    *ko = calloc(n + 1, sizeof(**ko));
    BENCH_CHECK(*ko != NULL);
    for (size_t i = 0; i < n; i++) {
        char k[64];
        int len;
        if (kind == KIND_INTERLEAVED || kind == KIND_LOOKUPS) /* over the big txn's span */
            len = snprintf(k, sizeof(k), "t/big/%08zux%04zu", i * (n_big / n), batch);
        else if (batch == SIZE_MAX) /* the big transaction's own */
            len = snprintf(k, sizeof(k), "t/big/%08zu", i);
        else
            len = snprintf(k, sizeof(k), "t/new/%06zu/%06zu", batch, i);
        (*ko)[i] = kb->len;
        BENCH_CHECK(base_buf_append(kb, k, (size_t)len) == 0);
    }
    (*ko)[n] = kb->len;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

typedef struct bench_result {
    int64_t cpu_ns;  /* this thread's CPU in the checks: the seeks' work */
    int64_t wall_ns; /* and their wall time (a loaded machine inflates it) */
    size_t maybes;
} bench_result;

static void run_case(const char *base, bench_kind kind, bool compacted, size_t n_big, size_t k,
                     size_t b, bench_result *res)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/bench_intents.XXXXXX", base);
    BENCH_CHECK(mkdtemp(dir) != NULL);
    storage_engine *e = NULL;
    storage_options so = {.dir = dir, .create_if_missing = true};
    BENCH_CHECK(storage_open(&so, &e) == STORAGE_OK);
    uint8_t d_start[] = "t/", d_end[] = "t0";
    range_descriptor d = {1, 1, d_start, 2, d_end, 2, {1}, 1};

    base_buf kb = {0};  /* owner: this function */
    size_t *ko = NULL;  /* owner: this function */
    make_keys(&kb, &ko, n_big, KIND_BOUNDING, SIZE_MAX, n_big);
    intents_op(e, &kb, ko, n_big, 1, true);
    intents_op(e, &kb, ko, n_big, 1, false);
    BENCH_CHECK(storage_flush(e) == STORAGE_OK);
    if (compacted) {
        base_buf lo = {0}, hi = {0};
        range_span big = {(const uint8_t *)"t/big/", 6, (const uint8_t *)"t/big0", 6, false};
        BENCH_CHECK(range__intent_span(&big, &lo, &hi) == RANGE_OK);
        BENCH_CHECK(storage_compact_raw(e, lo.data, lo.len, hi.data, hi.len, true) == STORAGE_OK);
        BENCH_CHECK(storage_compact_wait(e, 600000));
        base_buf_free(&lo);
        base_buf_free(&hi);
    }

    range_write *w = calloc(b, sizeof(*w));
    BENCH_CHECK(w != NULL);
    range__intent_hit hit = {0};
    res->cpu_ns = 0;
    res->wall_ns = 0;
    res->maybes = 0;
    for (size_t c = 0; c < k; c++) {
        make_keys(&kb, &ko, b, kind, c, n_big);
        for (size_t i = 0; i < b; i++)
            w[i] = (range_write){kb.data + ko[i], ko[i + 1] - ko[i], (const uint8_t *)"v", 1,
                                 false};
        range_commit_request req = {.txn_id = 100 + c, .writes = w, .write_count = b};
        int64_t w0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        bool has = true;
        int rc = RANGE_OK;
        if (kind == KIND_RANGE)
            rc = range__range_has_intents(e, &d, &has);
        else if (kind != KIND_LOOKUPS)
            rc = range__request_has_intents(e, &d, &req, &has);
        BENCH_CHECK(rc == RANGE_OK);
        for (size_t i = 0; i < b && has; i++) {
            range_span pt = {w[i].key, w[i].key_len, NULL, 0, true};
            BENCH_CHECK(range__find_intent(e, &pt, req.txn_id, HLC_MAX, &hit) == RANGE_OK);
        }
        res->cpu_ns += clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
        res->wall_ns += clock_ns(CLOCK_MONOTONIC) - w0;
        res->maybes += has ? 1 : 0;
        /* its own two-phase commit: intents laid, then resolved */
        intents_op(e, &kb, ko, b, req.txn_id, true);
        intents_op(e, &kb, ko, b, req.txn_id, false);
        if (compacted) {
            /* as its RESOLVE asks (SERVER_RESOLVE_COMPACT_MIN): queued, not waited for */
            base_buf lo = {0}, hi = {0};
            BENCH_CHECK(range__intent_key(kb.data, ko[1], &lo) == RANGE_OK);
            BENCH_CHECK(range__intent_key(kb.data + ko[b - 1], ko[b] - ko[b - 1], &hi) ==
                        RANGE_OK);
            BENCH_CHECK(base_buf_append_byte(&hi, 0) == 0);
            BENCH_CHECK(storage_compact_raw(e, lo.data, lo.len, hi.data, hi.len, true) ==
                        STORAGE_OK);
            base_buf_free(&lo);
            base_buf_free(&hi);
        }
    }
    range__intent_hit_free(&hit);
    free(w);
    free(ko);
    base_buf_free(&kb);
    storage_close(e);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static size_t env_size(const char *name, size_t def)
{
    const char *v = getenv(name);
    return v != NULL && atoll(v) > 0 ? (size_t)atoll(v) : def;
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : getenv("MERIDIAN_BENCH_DIR");
    if (base == NULL)
        base = ".";
    size_t n = env_size("MERIDIAN_BENCH_N", 200000), k = env_size("MERIDIAN_BENCH_K", 100),
           b = env_size("MERIDIAN_BENCH_B", 1000);
    static const struct {
        const char *name;
        bench_kind kind;
        bool compacted;
    } cases[] = {
        {"range", KIND_RANGE, false},
        {"bounding", KIND_BOUNDING, false},
        {"interleaved", KIND_INTERLEAVED, false},
        {"interleaved, lookups", KIND_LOOKUPS, false},
        {"range+compacted", KIND_RANGE, true},
        {"interleaved+compacted", KIND_INTERLEAVED, true},
    };
    printf("bench_intents: N=%zu resolved intents, K=%zu commits of B=%zu writes (RocksDB)\n",
           n, k, b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bench_result r;
        run_case(base, cases[i].kind, cases[i].compacted, n, k, b, &r);
        printf("  %-22s check cpu %9.1f us/commit (wall %9.1f us)  'maybe' %zu/%zu\n",
               cases[i].name, r.cpu_ns / 1e3 / (double)k, r.wall_ns / 1e3 / (double)k, r.maybes,
               k);
        fflush(stdout);
    }
    return 0;
}
