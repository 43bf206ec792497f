/*
** Tests for the segmented Raft log store (raft/log.c): append and read back,
** many groups, hard state, suffix truncation, prefix compaction + purge,
** roll-over, torn-tail recovery at every byte of the last record, corrupt
** middle records, group commit, limits, and a kill -9 crash test.
**
** Every test works in its own mkdtemp directory, removed afterwards.
** Randomized tests print their seed; rerun one with MERIDIAN_SEED=<n>.
** The crash test re-executes this binary as
** "--rlog-crash-child <dir> <seed>" so that the child starts clean.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/base.h"
#include "raft/log_int.h"
#include "raft/raft.h"

static char g_self[4096];

/* ---- helpers ------------------------------------------------------------------------ */
typedef struct fixture {
    char dir[256];
    raft_log *log;
    raft_log_options opts;
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/rlog-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir)) return -1;
    f->opts.dir = f->dir;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    raft_log_close(f->log);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static int fx_open(fixture *f)
{
    raft_log_close(f->log);
    f->log = NULL;
    char err[512];
    int rc = raft_log_open(&f->opts, &f->log, err, sizeof err);
    if (rc != 0) print_message("open: %s\n", err);
    return rc;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned test_seed(void)
{
    const char *s = getenv("MERIDIAN_SEED");
    unsigned seed = s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)base_monotonic_ns();
    print_message("seed %u (MERIDIAN_SEED=%u to rerun)\n", seed, seed);
    return seed;
}

/* Deterministic content of entry (group, index, term). */
#define PAYLOAD_MAX 200
static size_t payload_of(uint64_t group, uint64_t index, uint64_t term, uint8_t *buf)
{
    uint64_t s = group * 1000003ULL + index * 7919ULL + term;
    size_t len = (size_t)(splitmix(&s) % PAYLOAD_MAX);
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)splitmix(&s);
    return len;
}

static uint64_t term_of(uint64_t index) { return 1 + index / 64; }

/* Append entries [from, to] with term term_fn and deterministic payloads. */
static int append_range(raft_log *log, uint64_t group, uint64_t from, uint64_t to, uint64_t term,
                        const raft_hard_state *hs, uint64_t *seq)
{
    size_t n = (size_t)(to - from + 1);
    raft_entry *es = calloc(n, sizeof *es);
    uint8_t(*bufs)[PAYLOAD_MAX] = calloc(n, PAYLOAD_MAX);
    for (size_t i = 0; i < n; i++) {
        uint64_t idx = from + i;
        es[i].index = idx;
        es[i].term = term ? term : term_of(idx);
        es[i].type = RAFT_ENTRY_NORMAL;
        es[i].len = payload_of(group, idx, es[i].term, bufs[i]);
        es[i].data = bufs[i];
    }
    int rc = raft_log_append(log, group, hs, es, n, seq);
    free(es);
    free(bufs);
    return rc;
}

/* Check entries [lo, hi] of group against payload_of, term by term_fn or fixed. */
static void check_range(raft_log *log, uint64_t group, uint64_t lo, uint64_t hi, uint64_t term)
{
    if (hi < lo) return;
    raft_entry *es = NULL;
    size_t n = 0;
    assert_int_equal(raft_log_entries(log, group, lo, hi + 1, 0, &es, &n), 0);
    assert_int_equal(n, hi - lo + 1);
    for (size_t i = 0; i < n; i++) {
        uint8_t buf[PAYLOAD_MAX];
        uint64_t t = term ? term : term_of(lo + i);
        size_t len = payload_of(group, lo + i, t, buf);
        assert_int_equal(es[i].index, lo + i);
        assert_int_equal(es[i].term, t);
        assert_int_equal(es[i].len, len);
        if (len) assert_memory_equal(es[i].data, buf, len);
    }
    raft_log_entries_free(es, n);
}

static size_t count_segments(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c 'rlog$'", dir);
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    if (fscanf(p, "%zu", &n) != 1) n = 0;
    pclose(p);
    return n;
}

static void segment_path(const char *dir, uint64_t seq, char *out, size_t len)
{
    snprintf(out, len, "%s/%020llu.rlog", dir, (unsigned long long)seq);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* ---- tests ---------------------------------------------------------------------------- */
static void test_append_read_back(void **state)
{
    fixture *f = *state;
    assert_int_equal(fx_open(f), 0);
    raft_hard_state hs = {.term = 2, .vote = 3, .commit = 0};
    uint64_t seq = 0;
    assert_int_equal(append_range(f->log, 7, 1, 100, 0, &hs, &seq), 0);
    assert_true(seq > 0);
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    assert_true(raft_log_synced_seq(f->log) >= seq);
    assert_int_equal(raft_log_sync(f->log, seq + 1), RAFT_LOG_ERR_INVALID);
    check_range(f->log, 7, 1, 100, 0);
    /* max_bytes: at least one entry, stops after the limit */
    raft_entry *es;
    size_t n;
    assert_int_equal(raft_log_entries(f->log, 7, 1, 101, 1, &es, &n), 0);
    assert_int_equal(n, 1);
    raft_log_entries_free(es, n);
    assert_int_equal(raft_log_entries(f->log, 7, 1, 102, 0, &es, &n), RAFT_LOG_ERR_UNAVAILABLE);
    assert_int_equal(raft_log_entries(f->log, 8, 1, 2, 0, &es, &n), RAFT_LOG_ERR_UNAVAILABLE);
    uint64_t t;
    assert_int_equal(raft_log_term(f->log, 7, 100, &t), 0);
    assert_int_equal(t, term_of(100));
    assert_int_equal(raft_log_term(f->log, 7, 0, &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(fx_open(f), 0);
    check_range(f->log, 7, 1, 100, 0);
    raft_log_group_info gi;
    raft_log_group(f->log, 7, &gi);
    assert_true(gi.exists && gi.has_hard_state);
    assert_int_equal(gi.first_index, 1);
    assert_int_equal(gi.last_index, 100);
    assert_int_equal(gi.last_term, term_of(100));
    assert_int_equal(gi.hard_state.term, 2);
    assert_int_equal(gi.hard_state.vote, 3);
    raft_log_group(f->log, 9, &gi);
    assert_false(gi.exists);
    /* appends continue after a restart */
    assert_int_equal(append_range(f->log, 7, 101, 110, 0, NULL, &seq), 0);
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    assert_int_equal(fx_open(f), 0);
    check_range(f->log, 7, 1, 110, 0);
}

static void test_many_groups_interleaved(void **state)
{
    fixture *f = *state;
    unsigned seed = test_seed();
    enum { GROUPS = 100, ROUNDS = 30 };
    uint64_t last[GROUPS + 1] = {0};
    assert_int_equal(fx_open(f), 0);
    uint64_t seq = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (uint64_t g = 1; g <= GROUPS; g++) {
            if (rand_r(&seed) % 3 == 0) continue;
            uint64_t n = 1 + rand_r(&seed) % 4;
            raft_hard_state hs = {.term = term_of(last[g] + n), .vote = g, .commit = last[g]};
            assert_int_equal(append_range(f->log, g, last[g] + 1, last[g] + n, 0, &hs, &seq), 0);
            last[g] += n;
        }
    }
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    for (int pass = 0; pass < 2; pass++) {
        uint64_t ids[GROUPS + 10];
        size_t n;
        raft_log_groups(f->log, ids, GROUPS + 10, &n);
        size_t nonempty = 0;
        for (uint64_t g = 1; g <= GROUPS; g++) nonempty += last[g] > 0;
        assert_int_equal(n, nonempty);
        for (uint64_t g = 1; g <= GROUPS; g++) {
            raft_log_group_info gi;
            raft_log_group(f->log, g, &gi);
            assert_int_equal(gi.last_index, last[g]);
            if (last[g]) {
                assert_int_equal(gi.hard_state.vote, g);
                check_range(f->log, g, 1, last[g], 0);
            }
        }
        assert_int_equal(fx_open(f), 0);
    }
}

static void test_hard_state(void **state)
{
    fixture *f = *state;
    assert_int_equal(fx_open(f), 0);
    uint64_t seq;
    for (uint64_t t = 1; t <= 50; t++) {
        raft_hard_state hs = {.term = t, .vote = t % 3, .commit = 0};
        assert_int_equal(raft_log_append(f->log, 5, &hs, NULL, 0, &seq), 0);
    }
    assert_int_equal(append_range(f->log, 5, 1, 10, 50, NULL, &seq), 0);
    raft_hard_state hs = {.term = 50, .vote = 2, .commit = 8};
    assert_int_equal(raft_log_append(f->log, 5, &hs, NULL, 0, &seq), 0);
    /* commit above the log (a hint) is clamped on recovery */
    raft_hard_state hs2 = {.term = 51, .vote = 0, .commit = 10};
    assert_int_equal(raft_log_append(f->log, 6, &hs2, NULL, 0, &seq), 0);
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    assert_int_equal(fx_open(f), 0);
    raft_log_group_info gi;
    raft_log_group(f->log, 5, &gi);
    assert_true(gi.has_hard_state);
    assert_int_equal(gi.hard_state.term, 50);
    assert_int_equal(gi.hard_state.vote, 2);
    assert_int_equal(gi.hard_state.commit, 8);
    assert_int_equal(gi.last_index, 10);
    raft_log_group(f->log, 6, &gi);
    assert_true(gi.has_hard_state);
    assert_int_equal(gi.hard_state.term, 51);
    assert_int_equal(gi.hard_state.commit, 0);
    assert_int_equal(gi.last_index, 0);
}

static void test_suffix_truncation(void **state)
{
    fixture *f = *state;
    assert_int_equal(fx_open(f), 0);
    uint64_t seq;
    assert_int_equal(append_range(f->log, 1, 1, 10, 1, NULL, &seq), 0);
    assert_int_equal(append_range(f->log, 2, 1, 10, 1, NULL, &seq), 0);
    /* a new leader overwrites 6.. with term 2 (implicit truncation) */
    assert_int_equal(append_range(f->log, 1, 6, 8, 2, NULL, &seq), 0);
    /* gaps and below-first appends are refused */
    assert_int_equal(append_range(f->log, 1, 10, 10, 2, NULL, &seq), RAFT_LOG_ERR_INVALID);
    assert_int_equal(append_range(f->log, 1, 0, 0, 2, NULL, &seq), RAFT_LOG_ERR_INVALID);
    assert_int_equal(raft_log_truncate_suffix(f->log, 2, 4, &seq), 0);
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    for (int pass = 0; pass < 2; pass++) {
        raft_log_group_info gi;
        raft_log_group(f->log, 1, &gi);
        assert_int_equal(gi.last_index, 8);
        assert_int_equal(gi.last_term, 2);
        check_range(f->log, 1, 1, 5, 1);
        check_range(f->log, 1, 6, 8, 2);
        raft_entry *es;
        size_t n;
        assert_int_equal(raft_log_entries(f->log, 1, 9, 10, 0, &es, &n), RAFT_LOG_ERR_UNAVAILABLE);
        raft_log_group(f->log, 2, &gi);
        assert_int_equal(gi.last_index, 3);
        check_range(f->log, 2, 1, 3, 1);
        assert_int_equal(fx_open(f), 0);
    }
    /* overwrite again after the restart, then truncate everything */
    assert_int_equal(append_range(f->log, 1, 7, 12, 3, NULL, &seq), 0);
    assert_int_equal(raft_log_truncate_suffix(f->log, 2, 1, &seq), 0);
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    assert_int_equal(fx_open(f), 0);
    check_range(f->log, 1, 6, 6, 2);
    check_range(f->log, 1, 7, 12, 3);
    raft_log_group_info gi;
    raft_log_group(f->log, 2, &gi);
    assert_int_equal(gi.last_index, 0);
}

static void test_rollover(void **state)
{
    fixture *f = *state;
    f->opts.segment_bytes_max = 4096;
    assert_int_equal(fx_open(f), 0);
    uint64_t seq;
    for (uint64_t i = 1; i <= 300; i++)
        assert_int_equal(append_range(f->log, 1 + i % 3, (i + 2) / 3, (i + 2) / 3, 0, NULL, &seq),
                         0);
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    size_t segs = count_segments(f->dir);
    print_message("%zu segments\n", segs);
    assert_true(segs > 3);
    raft_log_stats st;
    raft_log_get_stats(f->log, &st);
    assert_int_equal(st.segments, segs);
    for (uint64_t s = 1; s <= segs; s++) {
        char p[512];
        segment_path(f->dir, s, p, sizeof p);
        assert_true(file_size(p) <= 4096 + 36 + PAYLOAD_MAX);
    }
    assert_int_equal(fx_open(f), 0);
    for (uint64_t g = 1; g <= 3; g++) check_range(f->log, g, 1, 100, 0);
    raft_log_close(f->log);
    f->log = NULL;
    /* losing the oldest segment (not purged: no compaction covers it) is
    ** corruption, named by file and offset */
    char p[512], err[512];
    segment_path(f->dir, 1, p, sizeof p);
    assert_int_equal(unlink(p), 0);
    raft_log *log = NULL;
    assert_int_equal(raft_log_open(&f->opts, &log, err, sizeof err), RAFT_LOG_ERR_CORRUPT);
    print_message("error: %s\n", err);
    assert_non_null(strstr(err, "no compaction record"));
    assert_non_null(strstr(err, "00000000000000000002.rlog offset 32"));
}

/* A snapshot installed on a fresh follower: compaction of an unknown group. */
static void test_snapshot_on_empty_group(void **state)
{
    fixture *f = *state;
    assert_int_equal(fx_open(f), 0);
    uint64_t seq;
    assert_int_equal(raft_log_compact(f->log, 42, 0, 0, &seq), 0); /* no-op */
    raft_log_group_info gi;
    raft_log_group(f->log, 42, &gi);
    assert_false(gi.exists);
    assert_int_equal(raft_log_truncate_suffix(f->log, 42, 5, &seq), 0); /* nothing */
    raft_log_group(f->log, 42, &gi);
    assert_false(gi.exists);
    raft_hard_state hs = {.term = 7, .vote = 0, .commit = 1000};
    assert_int_equal(raft_log_compact(f->log, 42, 1000, 6, &seq), 0);
    assert_int_equal(raft_log_append(f->log, 42, &hs, NULL, 0, &seq), 0);
    assert_int_equal(append_range(f->log, 42, 1000, 1000, 7, NULL, &seq), RAFT_LOG_ERR_INVALID);
    assert_int_equal(append_range(f->log, 42, 1001, 1003, 7, NULL, &seq), 0);
    /* a second snapshot inside the log, then one beyond it (keep_log = false) */
    assert_int_equal(raft_log_compact(f->log, 42, 1002, 7, &seq), 0);
    assert_int_equal(raft_log_truncate_suffix(f->log, 42, 1003, &seq), 0);
    assert_int_equal(raft_log_compact(f->log, 42, 2000, 9, &seq), 0);
    assert_int_equal(append_range(f->log, 42, 2001, 2002, 9, NULL, &seq), 0);
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    for (int pass = 0; pass < 2; pass++) {
        raft_log_group(f->log, 42, &gi);
        assert_true(gi.exists && gi.has_hard_state);
        assert_int_equal(gi.compact_index, 2000);
        assert_int_equal(gi.compact_term, 9);
        assert_int_equal(gi.last_index, 2002);
        assert_int_equal(gi.hard_state.commit, 1000);
        check_range(f->log, 42, 2001, 2002, 9);
        assert_int_equal(fx_open(f), 0);
    }
}

static void test_prefix_compaction_purge(void **state)
{
    fixture *f = *state;
    f->opts.segment_bytes_max = 4096;
    assert_int_equal(fx_open(f), 0);
    uint64_t seq;
    /* group 9: only a hard state, written first (it must survive the purge
    ** of its segment by being rewritten) */
    raft_hard_state hs9 = {.term = 9, .vote = 9, .commit = 0};
    assert_int_equal(raft_log_append(f->log, 9, &hs9, NULL, 0, &seq), 0);
    for (uint64_t i = 1; i <= 200; i++)
        for (uint64_t g = 1; g <= 3; g++)
            assert_int_equal(append_range(f->log, g, i, i, 0, NULL, &seq), 0);
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    size_t before = count_segments(f->dir);
    size_t deleted = 99;
    assert_int_equal(raft_log_purge(f->log, &deleted), 0);
    assert_int_equal(deleted, 0); /* everything is live */
    assert_int_equal(raft_log_compact(f->log, 1, 150, 0, &seq), 0);
    assert_int_equal(raft_log_compact(f->log, 2, 150, 99, &seq), RAFT_LOG_ERR_INVALID);
    assert_int_equal(raft_log_compact(f->log, 2, 180, term_of(180), &seq), 0);
    assert_int_equal(raft_log_purge(f->log, &deleted), 0);
    assert_int_equal(deleted, 0); /* group 3 still holds entry 1 */
    /* group 3: a snapshot beyond its log empties it */
    assert_int_equal(raft_log_compact(f->log, 3, 500, 77, &seq), 0);
    raft_log_group_info gi;
    raft_log_group(f->log, 3, &gi);
    assert_int_equal(gi.last_index, 500);
    assert_int_equal(gi.last_term, 77);
    assert_int_equal(gi.first_index, 501);
    assert_int_equal(raft_log_purge(f->log, &deleted), 0);
    size_t after = count_segments(f->dir);
    print_message("segments %zu -> %zu (deleted %zu)\n", before, after, deleted);
    assert_true(deleted > 0);
    assert_true(after < before);
    raft_entry *es;
    size_t n;
    assert_int_equal(raft_log_entries(f->log, 1, 150, 151, 0, &es, &n), RAFT_LOG_ERR_COMPACTED);
    uint64_t t;
    assert_int_equal(raft_log_term(f->log, 1, 150, &t), 0);
    assert_int_equal(t, term_of(150));
    assert_int_equal(raft_log_term(f->log, 1, 149, &t), RAFT_LOG_ERR_COMPACTED);
    assert_int_equal(append_range(f->log, 3, 501, 505, 78, NULL, &seq), 0);
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    for (int pass = 0; pass < 2; pass++) {
        check_range(f->log, 1, 151, 200, 0);
        check_range(f->log, 2, 181, 200, 0);
        check_range(f->log, 3, 501, 505, 78);
        raft_log_group(f->log, 3, &gi);
        assert_int_equal(gi.compact_index, 500);
        assert_int_equal(gi.compact_term, 77);
        raft_log_group(f->log, 9, &gi);
        assert_true(gi.has_hard_state);
        assert_int_equal(gi.hard_state.term, 9);
        raft_log_group(f->log, 1, &gi);
        assert_int_equal(gi.first_index, 151);
        assert_int_equal(fx_open(f), 0);
    }
    /* compact everything: all but the current segment go */
    assert_int_equal(raft_log_compact(f->log, 1, 200, 0, &seq), 0);
    assert_int_equal(raft_log_compact(f->log, 2, 200, 0, &seq), 0);
    assert_int_equal(raft_log_compact(f->log, 3, 505, 0, &seq), 0);
    assert_int_equal(raft_log_purge(f->log, &deleted), 0);
    assert_int_equal(count_segments(f->dir), 1);
    assert_int_equal(fx_open(f), 0);
    raft_log_group(f->log, 9, &gi);
    assert_int_equal(gi.hard_state.vote, 9);
    raft_log_group(f->log, 3, &gi);
    assert_int_equal(gi.last_index, 505);
    assert_int_equal(gi.last_term, 78);
}

/* Write group 1 entries 1..9 and then one last entry (10); return the
** segment path and the offsets where the last record starts and ends. */
static void write_with_last_record(fixture *f, char *path, size_t path_len, off_t *start,
                                   off_t *end)
{
    uint64_t seq;
    assert_int_equal(fx_open(f), 0);
    assert_int_equal(append_range(f->log, 1, 1, 9, 0, NULL, &seq), 0);
    segment_path(f->dir, 1, path, path_len);
    *start = file_size(path);
    assert_int_equal(append_range(f->log, 1, 10, 10, 0, NULL, &seq), 0);
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    *end = file_size(path);
    raft_log_close(f->log);
    f->log = NULL;
}

static uint8_t *slurp(const char *path, off_t size)
{
    uint8_t *b = malloc((size_t)size + 1);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, b, (size_t)size), size);
    close(fd);
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t len)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, len), (ssize_t)len);
    close(fd);
}

static void test_torn_tail_every_offset(void **state)
{
    fixture *f = *state;
    char path[512];
    off_t start, end;
    write_with_last_record(f, path, sizeof path, &start, &end);
    assert_true(end - start > 36);
    uint8_t *orig = slurp(path, end);
    for (off_t cut = start; cut <= end; cut++) {
        spit(path, orig, (size_t)cut);
        assert_int_equal(fx_open(f), 0);
        raft_log_group_info gi;
        raft_log_group(f->log, 1, &gi);
        assert_int_equal(gi.last_index, cut == end ? 10 : 9);
        check_range(f->log, 1, 1, gi.last_index, 0);
        raft_log_close(f->log);
        f->log = NULL;
        assert_int_equal(file_size(path), cut == end ? end : start); /* size fixed */
    }
    /* a torn tail of garbage or zeros after the last record, and a flipped
    ** byte in the last record itself, are truncated too */
    uint64_t s = 7;
    for (int variant = 0; variant < 3; variant++) {
        uint8_t *b = malloc((size_t)end + 300);
        memcpy(b, orig, (size_t)end);
        size_t len = (size_t)end;
        if (variant == 0) {
            for (int i = 0; i < 300; i++) b[len++] = (uint8_t)splitmix(&s);
        } else if (variant == 1) {
            memset(b + len, 0, 300);
            len += 300;
        } else {
            b[end - 3] ^= 0x40;
        }
        spit(path, b, len);
        free(b);
        assert_int_equal(fx_open(f), 0);
        raft_log_group_info gi;
        raft_log_group(f->log, 1, &gi);
        assert_int_equal(gi.last_index, variant == 2 ? 9 : 10);
        /* and the log appends after the truncated tail */
        uint64_t seq;
        assert_int_equal(append_range(f->log, 1, gi.last_index + 1, 12, 0, NULL, &seq), 0);
        assert_int_equal(raft_log_sync(f->log, seq), 0);
        assert_int_equal(fx_open(f), 0);
        check_range(f->log, 1, 1, 12, 0);
        raft_log_close(f->log);
        f->log = NULL;
        spit(path, orig, (size_t)end);
    }
    free(orig);
}

static void test_corrupt_middle(void **state)
{
    fixture *f = *state;
    char path[512];
    off_t start, end;
    write_with_last_record(f, path, sizeof path, &start, &end);
    uint8_t *orig = slurp(path, end);
    /* flip a byte inside the first record: valid records follow */
    uint8_t *b = malloc((size_t)end);
    memcpy(b, orig, (size_t)end);
    b[32 + 40] ^= 1;
    spit(path, b, (size_t)end);
    char err[512] = "";
    raft_log *log = NULL;
    assert_int_equal(raft_log_open(&f->opts, &log, err, sizeof err), RAFT_LOG_ERR_CORRUPT);
    assert_null(log);
    print_message("error: %s\n", err);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "offset 32"));
    /* the file is untouched: never silently truncated */
    assert_int_equal(file_size(path), end);
    /* a bad length field in the middle */
    memcpy(b, orig, (size_t)end);
    b[32 + 5] ^= 0x10;
    spit(path, b, (size_t)end);
    assert_int_equal(raft_log_open(&f->opts, &log, err, sizeof err), RAFT_LOG_ERR_CORRUPT);
    assert_non_null(strstr(err, "offset 32"));
    free(b);
    /* corruption in a segment that is not the last one */
    spit(path, orig, (size_t)end);
    f->opts.segment_bytes_max = 4096;
    assert_int_equal(fx_open(f), 0);
    uint64_t seq;
    for (uint64_t i = 11; i <= 100; i++)
        assert_int_equal(append_range(f->log, 1, i, i, 0, NULL, &seq), 0);
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    raft_log_close(f->log);
    f->log = NULL;
    assert_true(count_segments(f->dir) >= 3);
    char p2[512];
    segment_path(f->dir, 2, p2, sizeof p2);
    off_t sz2 = file_size(p2);
    uint8_t *b2 = slurp(p2, sz2);
    b2[sz2 - 2] ^= 0xff; /* the very end of segment 2: a "tail", but not the last segment */
    spit(p2, b2, (size_t)sz2);
    assert_int_equal(raft_log_open(&f->opts, &log, err, sizeof err), RAFT_LOG_ERR_CORRUPT);
    print_message("error: %s\n", err);
    assert_non_null(strstr(err, p2));
    b2[sz2 - 2] ^= 0xff;
    spit(p2, b2, (size_t)sz2);
    free(b2);
    assert_int_equal(fx_open(f), 0);
    check_range(f->log, 1, 1, 100, 0);
    raft_log_close(f->log);
    f->log = NULL;
    /* a missing segment in the middle, and a bad segment header */
    char p3[512], p3b[600];
    segment_path(f->dir, 2, p3, sizeof p3);
    snprintf(p3b, sizeof p3b, "%s.moved", p3);
    assert_int_equal(rename(p3, p3b), 0);
    assert_int_equal(raft_log_open(&f->opts, &log, err, sizeof err), RAFT_LOG_ERR_CORRUPT);
    print_message("error: %s\n", err);
    assert_non_null(strstr(err, "missing"));
    assert_int_equal(rename(p3b, p3), 0);
    uint8_t *h = slurp(path, 32);
    h[17] ^= 1; /* seq in the header of segment 1 */
    int fd = open(path, O_WRONLY);
    assert_int_equal(pwrite(fd, h, 32, 0), 32);
    close(fd);
    free(h);
    assert_int_equal(raft_log_open(&f->opts, &log, err, sizeof err), RAFT_LOG_ERR_CORRUPT);
    assert_non_null(strstr(err, "header"));
    free(orig);
}

/* ---- group commit ------------------------------------------------------------------ */
enum { GC_THREADS = 8, GC_ROUNDS = 40 };
typedef struct gc_arg {
    raft_log *log;
    uint64_t group;
    pthread_barrier_t *barrier; /* NULL: free running */
    int rc;
} gc_arg;

static void *gc_thread(void *p)
{
    gc_arg *a = p;
    for (uint64_t r = 1; r <= GC_ROUNDS && a->rc == 0; r++) {
        raft_log_group_info gi;
        raft_log_group(a->log, a->group, &gi);
        uint64_t seq;
        raft_hard_state hs = {.term = 1, .vote = a->group, .commit = gi.last_index};
        a->rc = append_range(a->log, a->group, gi.last_index + 1, gi.last_index + 2, 0, &hs, &seq);
        if (a->barrier) pthread_barrier_wait(a->barrier);
        if (a->rc == 0) a->rc = raft_log_sync(a->log, seq);
        if (a->barrier) pthread_barrier_wait(a->barrier);
    }
    return NULL;
}

static void run_gc(fixture *f, bool with_barrier, uint64_t first_group)
{
    pthread_t th[GC_THREADS];
    gc_arg args[GC_THREADS];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, GC_THREADS);
    for (int i = 0; i < GC_THREADS; i++) {
        args[i] = (gc_arg){.log = f->log, .group = first_group + (uint64_t)i,
                           .barrier = with_barrier ? &barrier : NULL};
        assert_int_equal(pthread_create(&th[i], NULL, gc_thread, &args[i]), 0);
    }
    for (int i = 0; i < GC_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].rc, 0);
    }
    pthread_barrier_destroy(&barrier);
}

static void test_group_commit(void **state)
{
    fixture *f = *state;
    f->opts.segment_bytes_max = 64 * 1024; /* roll-overs while syncing */
    assert_int_equal(fx_open(f), 0);
    raft_log_stats s0, s1, s2;
    raft_log_get_stats(f->log, &s0);
    /* Lock step: every round, all threads append before any syncs, so one
    ** fdatasync covers all of them. */
    run_gc(f, true, 1);
    raft_log_get_stats(f->log, &s1);
    uint64_t appends = s1.appends - s0.appends, fsyncs = s1.fsyncs - s0.fsyncs;
    print_message("lock step: %llu appends, %llu fsyncs\n", (unsigned long long)appends,
                  (unsigned long long)fsyncs);
    assert_int_equal(appends, GC_THREADS * GC_ROUNDS);
    assert_true(fsyncs < appends);
    assert_true(fsyncs <= GC_ROUNDS + s1.segments + 1);
    /* Free running: correctness only (timing decides the sharing). */
    run_gc(f, false, 100);
    raft_log_get_stats(f->log, &s2);
    print_message("free running: %llu appends, %llu fsyncs\n",
                  (unsigned long long)(s2.appends - s1.appends),
                  (unsigned long long)(s2.fsyncs - s1.fsyncs));
    assert_true(s2.fsyncs - s1.fsyncs <= s2.appends - s1.appends + s2.segments);
    assert_int_equal(fx_open(f), 0);
    for (int base = 0; base < 2; base++)
        for (uint64_t g = 0; g < GC_THREADS; g++) {
            uint64_t group = (base ? 100 : 1) + g;
            raft_log_group_info gi;
            raft_log_group(f->log, group, &gi);
            assert_int_equal(gi.last_index, 2 * GC_ROUNDS);
            assert_int_equal(gi.hard_state.commit, 2 * GC_ROUNDS - 2);
            check_range(f->log, group, 1, 2 * GC_ROUNDS, 0);
        }
}

/* Injected faults (raft_log_inject_fault): a stall delays a sync but loses
** nothing; a failure poisons the log like a real one (every later write
** and sync fails, on_failure runs exactly once); the data synced before it
** survives a reopen. */
static int g_failures;
static char g_failure_what[128];
static void on_log_failure(void *ctx, const char *what)
{
    (void)ctx;
    g_failures++;
    snprintf(g_failure_what, sizeof g_failure_what, "%s", what);
}

static void test_injected_faults(void **state)
{
    fixture *f = *state;
    f->opts.on_failure = on_log_failure;
    g_failures = 0;
    assert_int_equal(fx_open(f), 0);
    bool armed, poisoned;
    int64_t left;
    assert_int_equal(raft_log_inject_fault(f->log, false, -1), RAFT_LOG_ERR_INVALID);
    assert_int_equal(raft_log_inject_fault(f->log, false, RAFT_LOG_FAULT_STALL_MS_MAX + 1),
                     RAFT_LOG_ERR_INVALID);
    /* A stall: the sync waits it out and succeeds. */
    uint64_t seq = 0;
    assert_int_equal(append_range(f->log, 1, 1, 10, 0, NULL, &seq), 0);
    assert_int_equal(raft_log_inject_fault(f->log, false, 30), 0);
    raft_log_fault_state(f->log, &armed, &left, &poisoned);
    assert_false(armed);
    assert_true(left <= 30);
    assert_false(poisoned);
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    raft_log_fault_state(f->log, &armed, &left, &poisoned);
    assert_int_equal(left, 0); /* the sync returned after the stall's end */
    /* Armed and cleared: nothing happens. */
    assert_int_equal(raft_log_inject_fault(f->log, true, 0), 0);
    assert_int_equal(raft_log_inject_fault(f->log, false, 0), 0);
    assert_int_equal(append_range(f->log, 1, 11, 20, 0, NULL, &seq), 0);
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    assert_int_equal(g_failures, 0);
    /* A failure: poisoned, reported once, later calls fail too. */
    assert_int_equal(raft_log_inject_fault(f->log, true, 0), 0);
    raft_log_fault_state(f->log, &armed, &left, &poisoned);
    assert_true(armed);
    assert_int_equal(append_range(f->log, 1, 21, 30, 0, NULL, &seq), 0);
    assert_int_equal(raft_log_sync(f->log, seq), RAFT_LOG_ERR_IO);
    assert_int_equal(g_failures, 1);
    assert_string_equal(g_failure_what, "fdatasync failed");
    raft_log_fault_state(f->log, &armed, &left, &poisoned);
    assert_false(armed);
    assert_true(poisoned);
    assert_int_equal(raft_log_sync(f->log, seq), RAFT_LOG_ERR_IO);
    assert_int_equal(append_range(f->log, 1, 31, 31, 0, NULL, &seq), RAFT_LOG_ERR_IO);
    assert_int_equal(g_failures, 1);
    /* What was synced before survives a reopen. */
    f->opts.on_failure = NULL;
    assert_int_equal(fx_open(f), 0);
    raft_log_group_info gi;
    raft_log_group(f->log, 1, &gi);
    assert_true(gi.last_index >= 20);
    check_range(f->log, 1, 1, 20, 0);
    /* At a roll-over the injected failure poisons the same way. */
    f->opts.segment_bytes_max = 1; /* clamped to the minimum: rolls over soon */
    f->opts.on_failure = on_log_failure;
    g_failures = 0;
    assert_int_equal(fx_open(f), 0);
    assert_int_equal(raft_log_inject_fault(f->log, true, 0), 0);
    int rc = 0;
    for (uint64_t i = 100; i < 100000 && rc == 0 && g_failures == 0; i++)
        rc = append_range(f->log, 2, i - 99, i - 99, 0, NULL, &seq);
    assert_int_equal(rc, RAFT_LOG_ERR_IO);
    assert_int_equal(g_failures, 1);
    assert_string_equal(g_failure_what, "fdatasync at roll-over failed");
}

static void test_limits(void **state)
{
    fixture *f = *state;
    f->opts.groups_max = 4;
    f->opts.record_bytes_max = 1024;
    f->opts.segment_bytes_max = 4096;
    f->opts.segments_max = 3;
    assert_int_equal(fx_open(f), 0);
    /* a second opener is refused */
    raft_log *other = NULL;
    assert_int_equal(raft_log_open(&f->opts, &other, NULL, 0), RAFT_LOG_ERR_BUSY);
    uint8_t big[2000] = {0};
    raft_entry e = {.term = 1, .index = 1, .data = big, .len = sizeof big};
    uint64_t seq;
    assert_int_equal(raft_log_append(f->log, 1, NULL, &e, 1, &seq), RAFT_LOG_ERR_TOO_LARGE);
    e.len = 900;
    for (uint64_t g = 1; g <= 4; g++) assert_int_equal(raft_log_append(f->log, g, NULL, &e, 1, &seq), 0);
    assert_int_equal(raft_log_append(f->log, 5, NULL, &e, 1, &seq), RAFT_LOG_ERR_LIMIT);
    raft_log_group_info g5;
    raft_log_group(f->log, 5, &g5);
    assert_false(g5.exists); /* a refused append creates nothing */
    /* segments_max: 3 segments of ~4 KiB hold a dozen of these */
    int rc = 0;
    for (uint64_t i = 2; i < 100 && rc == 0; i++) {
        e.index = i;
        rc = raft_log_append(f->log, 1, NULL, &e, 1, &seq);
    }
    assert_int_equal(rc, RAFT_LOG_ERR_LIMIT);
    /* compaction + purge frees segments */
    raft_log_group_info gi;
    raft_log_group(f->log, 1, &gi);
    for (uint64_t g = 1; g <= 4; g++) {
        raft_log_group_info gg;
        raft_log_group(f->log, g, &gg);
        assert_int_equal(raft_log_compact(f->log, g, gg.last_index, 0, &seq), 0);
    }
    size_t deleted;
    assert_int_equal(raft_log_purge(f->log, &deleted), 0);
    assert_true(deleted > 0);
    e.index = gi.last_index + 1;
    assert_int_equal(raft_log_append(f->log, 1, NULL, &e, 1, &seq), 0);
    /* bad arguments */
    assert_int_equal(raft_log_truncate_suffix(f->log, 1, 1, &seq), RAFT_LOG_ERR_INVALID);
    raft_entry *es;
    size_t n;
    assert_int_equal(raft_log_entries(f->log, 1, 0, 1, 0, &es, &n), RAFT_LOG_ERR_INVALID);
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    raft_log_options bad = {0};
    assert_int_equal(raft_log_open(&bad, &other, NULL, 0), RAFT_LOG_ERR_INVALID);
    assert_string_equal(raft_log_strerror(RAFT_LOG_ERR_CORRUPT), "log corrupt");
}

/* Out of memory at every allocation of open + append + read: an error, never
** a crash or a leak, and the log still opens afterwards. */
static void test_oom(void **state)
{
    fixture *f = *state;
    assert_int_equal(fx_open(f), 0);
    uint64_t seq;
    assert_int_equal(append_range(f->log, 1, 1, 20, 0, NULL, &seq), 0);
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    raft_log_close(f->log);
    f->log = NULL;
    for (long k = 0; k < 200; k++) {
        base_alloc_fail_after(k);
        raft_log *log = NULL;
        int rc = raft_log_open(&f->opts, &log, NULL, 0);
        raft_entry *es = NULL;
        size_t n = 0;
        if (rc == 0) {
            rc = raft_log_entries(log, 1, 1, 21, 0, &es, &n);
            raft_log_entries_free(es, n);
        }
        base_alloc_fail_after(-1);
        raft_log_close(log);
        if (rc == 0) break;
        assert_int_equal(rc, RAFT_LOG_ERR_NOMEM);
    }
    assert_int_equal(fx_open(f), 0);
    check_range(f->log, 1, 1, 20, 0);
    /* appends (new groups, slot growth, the scratch buffer) under OOM */
    for (uint64_t idx = 21; idx <= 60; idx++) {
        uint64_t group = idx % 5 == 0 ? 1000 + idx : 1; /* sometimes a new group */
        uint64_t index = group == 1 ? idx : 1;
        int rc = RAFT_LOG_ERR_NOMEM;
        for (long k = 0; k < 100 && rc != 0; k++) {
            base_alloc_fail_after(k);
            rc = append_range(f->log, group, index, index, 0, NULL, &seq);
            base_alloc_fail_after(-1);
            assert_true(rc == 0 || rc == RAFT_LOG_ERR_NOMEM);
        }
        assert_int_equal(rc, 0);
        if (group != 1) assert_int_equal(append_range(f->log, 1, idx, idx, 0, NULL, &seq), 0);
    }
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    check_range(f->log, 1, 1, 60, 0);
    assert_int_equal(fx_open(f), 0);
    check_range(f->log, 1, 1, 60, 0);
}

/* ---- randomized against a model ------------------------------------------------- */
enum { MODEL_GROUPS = 6, MODEL_OPS = 3000, MODEL_MAX_INDEX = 4096 };

typedef struct model_group {
    uint64_t compact_index, compact_term, last;
    uint64_t terms[MODEL_MAX_INDEX + 64]; /* terms[i] for compact_index < i <= last */
    bool has_hs;
    raft_hard_state hs;
} model_group;

static void model_check(raft_log *log, model_group *m)
{
    for (uint64_t g = 0; g < MODEL_GROUPS; g++) {
        raft_log_group_info gi;
        raft_log_group(log, g + 1, &gi);
        const model_group *mg = &m[g];
        assert_int_equal(gi.compact_index, mg->compact_index);
        assert_int_equal(gi.last_index, mg->last);
        assert_int_equal(gi.has_hard_state, mg->has_hs);
        if (mg->has_hs) {
            assert_int_equal(gi.hard_state.term, mg->hs.term);
            assert_int_equal(gi.hard_state.vote, mg->hs.vote);
        }
        if (mg->last > mg->compact_index) {
            assert_int_equal(gi.last_term, mg->terms[mg->last]);
            raft_entry *es;
            size_t n;
            assert_int_equal(raft_log_entries(log, g + 1, mg->compact_index + 1, mg->last + 1, 0,
                                              &es, &n), 0);
            assert_int_equal(n, mg->last - mg->compact_index);
            for (size_t i = 0; i < n; i++) {
                uint8_t buf[PAYLOAD_MAX];
                uint64_t idx = mg->compact_index + 1 + i;
                size_t len = payload_of(g + 1, idx, mg->terms[idx], buf);
                assert_int_equal(es[i].term, mg->terms[idx]);
                assert_int_equal(es[i].len, len);
                if (len) assert_memory_equal(es[i].data, buf, len);
            }
            raft_log_entries_free(es, n);
        } else if (mg->compact_index) {
            assert_int_equal(gi.last_term, mg->compact_term);
        }
    }
}

static void test_model_random(void **state)
{
    fixture *f = *state;
    unsigned seed = test_seed();
    f->opts.segment_bytes_max = 8192;
    assert_int_equal(fx_open(f), 0);
    model_group *m = calloc(MODEL_GROUPS, sizeof *m);
    uint64_t seq = 0, term = 1;
    size_t purged = 0, reopens = 0;
    for (int op = 0; op < MODEL_OPS; op++) {
        uint64_t g = rand_r(&seed) % MODEL_GROUPS;
        model_group *mg = &m[g];
        int kind = rand_r(&seed) % 100;
        if (kind < 60 && mg->last < MODEL_MAX_INDEX) { /* append, sometimes overwriting */
            uint64_t from = mg->last + 1;
            if (rand_r(&seed) % 5 == 0 && mg->last > mg->compact_index)
                from = mg->compact_index + 1 + rand_r(&seed) % (mg->last - mg->compact_index);
            if (rand_r(&seed) % 10 == 0) term++;
            uint64_t n = 1 + rand_r(&seed) % 4;
            raft_hard_state hs = {.term = term, .vote = 1 + rand_r(&seed) % 3, .commit = 0};
            bool with_hs = rand_r(&seed) % 2;
            assert_int_equal(append_range(f->log, g + 1, from, from + n - 1, term,
                                          with_hs ? &hs : NULL, &seq), 0);
            for (uint64_t i = from; i < from + n; i++) mg->terms[i] = term;
            mg->last = from + n - 1;
            if (with_hs) {
                mg->has_hs = true;
                mg->hs = hs;
            }
        } else if (kind < 70) { /* explicit suffix truncation */
            uint64_t from = mg->compact_index + 1 + rand_r(&seed) % (mg->last - mg->compact_index + 1);
            assert_int_equal(raft_log_truncate_suffix(f->log, g + 1, from, &seq), 0);
            if (from <= mg->last) mg->last = from - 1;
        } else if (kind < 85) { /* compaction, sometimes a snapshot past the log */
            uint64_t up_to = mg->compact_index + 1 + rand_r(&seed) % (mg->last - mg->compact_index + 3);
            if (up_to > MODEL_MAX_INDEX) continue;
            uint64_t t = up_to <= mg->last ? mg->terms[up_to] : term;
            assert_int_equal(raft_log_compact(f->log, g + 1, up_to, t, &seq), 0);
            mg->compact_term = t;
            mg->compact_index = up_to;
            if (up_to > mg->last) mg->last = up_to;
        } else if (kind < 95) {
            size_t d;
            assert_int_equal(raft_log_purge(f->log, &d), 0);
            purged += d;
        } else {
            assert_int_equal(raft_log_sync(f->log, seq), 0);
            assert_int_equal(fx_open(f), 0);
            seq = 0; /* sequence numbers start over with each open */
            reopens++;
        }
        if (op % 50 == 0) model_check(f->log, m);
    }
    assert_int_equal(raft_log_sync(f->log, seq), 0);
    model_check(f->log, m);
    assert_int_equal(fx_open(f), 0);
    model_check(f->log, m);
    raft_log_stats st;
    raft_log_get_stats(f->log, &st);
    print_message("%zu segments purged, %zu reopens, %llu live segments\n", purged, reopens,
                  (unsigned long long)st.segments);
    free(m);
}

/* ---- with the Raft core: single-voter groups persisting through one log --------- */
enum { CORE_GROUPS = 10, CORE_ROUNDS = 20 };

typedef struct core_group {
    raft_node *node;
    uint64_t pending; /* core persist_seq written to the log, not yet reported */
    char applied[CORE_ROUNDS * 2 + 2][16];
    size_t n_applied;
} core_group;

/* Persist what an update asks (THE CONTRACT, step 1) and collect what it
** commits. The update is consumed before the next raft_step. */
static void core_handle(raft_log *log, uint64_t group, core_group *cg, const raft_update *up,
                        uint64_t *log_seq)
{
    for (size_t i = 0; i < up->n_committed; i++) {
        const raft_entry *e = &up->committed[i];
        if (e->type != RAFT_ENTRY_NORMAL || e->len == 0) continue;
        assert_true(cg->n_applied < BASE_ARRAY_LEN(cg->applied));
        assert_true(e->len < 16);
        memcpy(cg->applied[cg->n_applied], e->data, e->len);
        cg->applied[cg->n_applied++][e->len] = 0;
    }
    assert_null(up->snapshot);
    assert_int_equal(up->n_messages + up->n_messages_after_persist, 0); /* one voter */
    if (!up->persist_seq) return;
    uint64_t s;
    assert_int_equal(raft_log_append(log, group, up->hard_state_changed ? &up->hard_state : NULL,
                                     up->entries, up->n_entries, &s), 0);
    if (s > *log_seq) *log_seq = s;
    cg->pending = up->persist_seq;
}

/* One group commit: a single sync, then PERSISTED to every group (which may
** ask for more writes: repeat, bounded). */
static void core_sync_all(raft_log *log, core_group *cgs, uint64_t *log_seq)
{
    for (int pass = 0; pass < 10; pass++) {
        bool any = false;
        assert_int_equal(raft_log_sync(log, *log_seq), 0);
        for (uint64_t g = 0; g < CORE_GROUPS; g++) {
            if (!cgs[g].pending) continue;
            raft_event ev = {.type = RAFT_EVENT_PERSISTED, .persist_seq = cgs[g].pending};
            raft_update up;
            cgs[g].pending = 0;
            assert_int_equal(raft_step(cgs[g].node, &ev, &up), 0);
            core_handle(log, g + 1, &cgs[g], &up, log_seq);
            any = any || cgs[g].pending;
        }
        if (!any) return;
    }
    fail_msg("persist loop did not settle");
}

static void core_start(raft_log *log, core_group *cgs, bool restart)
{
    for (uint64_t g = 0; g < CORE_GROUPS; g++) {
        raft_config c;
        raft_config_default(&c);
        c.id = 1;
        c.voters[0] = 1;
        c.n_voters = 1;
        c.random_seed = g;
        raft_log_group_info gi;
        raft_log_group(log, g + 1, &gi);
        raft_entry *es = NULL;
        size_t n = 0;
        if (restart) {
            assert_true(gi.exists && gi.has_hard_state);
            assert_int_equal(raft_log_entries(log, g + 1, 1, gi.last_index + 1, 0, &es, &n), 0);
        }
        assert_int_equal(raft_node_new(&c, restart ? &gi.hard_state : NULL, es, n, &cgs[g].node),
                         0);
        raft_log_entries_free(es, n);
        cgs[g].n_applied = 0;
        cgs[g].pending = 0;
    }
}

static void test_with_raft_core(void **state)
{
    fixture *f = *state;
    assert_int_equal(fx_open(f), 0);
    core_group *cgs = calloc(CORE_GROUPS, sizeof *cgs);
    for (int life = 0; life < 2; life++) {
        core_start(f->log, cgs, life == 1);
        uint64_t log_seq = 0;
        raft_log_stats s0, s1;
        raft_log_get_stats(f->log, &s0);
        for (uint64_t g = 0; g < CORE_GROUPS; g++) {
            raft_event ev = {.type = RAFT_EVENT_CAMPAIGN};
            raft_update up;
            int rc = raft_step(cgs[g].node, &ev, &up);
            /* a restarted node may refuse an early campaign: tick instead */
            for (int t = 0; rc == RAFT_ERR_BUSY && t < 1000; t++) {
                core_handle(f->log, g + 1, &cgs[g], &up, &log_seq);
                raft_event tick = {.type = RAFT_EVENT_TICK};
                assert_int_equal(raft_step(cgs[g].node, &tick, &up), 0);
                core_handle(f->log, g + 1, &cgs[g], &up, &log_seq);
                rc = raft_step(cgs[g].node, &ev, &up);
            }
            assert_int_equal(rc, 0);
            core_handle(f->log, g + 1, &cgs[g], &up, &log_seq);
        }
        core_sync_all(f->log, cgs, &log_seq);
        for (int r = 0; r < CORE_ROUNDS; r++) {
            for (uint64_t g = 0; g < CORE_GROUPS; g++) {
                char buf[16];
                int len = snprintf(buf, sizeof buf, "L%dR%d", life, r);
                raft_proposal p = {(const uint8_t *)buf, (size_t)len};
                raft_event ev = {.type = RAFT_EVENT_PROPOSE, .proposals = &p, .n_proposals = 1};
                raft_update up;
                assert_int_equal(raft_step(cgs[g].node, &ev, &up), 0);
                assert_int_equal(up.role, RAFT_LEADER);
                core_handle(f->log, g + 1, &cgs[g], &up, &log_seq);
            }
            core_sync_all(f->log, cgs, &log_seq);
        }
        raft_log_get_stats(f->log, &s1);
        print_message("life %d: %d groups x %d proposals, %llu fsyncs\n", life, CORE_GROUPS,
                      CORE_ROUNDS, (unsigned long long)(s1.fsyncs - s0.fsyncs));
        assert_true(s1.fsyncs - s0.fsyncs < (uint64_t)CORE_GROUPS * CORE_ROUNDS);
        for (uint64_t g = 0; g < CORE_GROUPS; g++) {
            /* every proposal of every life so far, in order (applied = 0) */
            size_t k = 0;
            for (int l = 0; l <= life; l++)
                for (int r = 0; r < CORE_ROUNDS; r++, k++) {
                    char want[16];
                    snprintf(want, sizeof want, "L%dR%d", l, r);
                    assert_true(k < cgs[g].n_applied);
                    assert_string_equal(cgs[g].applied[k], want);
                }
            assert_int_equal(cgs[g].n_applied, k);
            raft_node_free(cgs[g].node);
            cgs[g].node = NULL;
        }
        assert_int_equal(fx_open(f), 0);
    }
    free(cgs);
}

/* ---- kill -9 crash test ------------------------------------------------------------- */
enum { CRASH_THREADS = 2, CRASH_GROUPS_PER_THREAD = 4, CRASH_APPENDS_MAX = 4000,
       CRASH_ROUNDS = 5 };

typedef struct crash_report {
    uint64_t group;
    uint64_t index; /* entries 1..index of group are durable (or compacted) */
} crash_report;

typedef struct crash_arg {
    raft_log *log;
    int thread;
    uint64_t seed;
    int rc;
} crash_arg;

static void *crash_thread(void *p)
{
    crash_arg *a = p;
    uint64_t s = a->seed;
    for (int i = 0; i < CRASH_APPENDS_MAX; i++) {
        uint64_t group = 1 + (uint64_t)a->thread * CRASH_GROUPS_PER_THREAD +
                         splitmix(&s) % CRASH_GROUPS_PER_THREAD;
        raft_log_group_info gi;
        raft_log_group(a->log, group, &gi);
        uint64_t n = 1 + splitmix(&s) % 3, seq;
        raft_hard_state hs = {.term = term_of(gi.last_index + n), .vote = group,
                              .commit = gi.last_index};
        a->rc = append_range(a->log, group, gi.last_index + 1, gi.last_index + n, 0, &hs, &seq);
        if (a->rc == 0 && splitmix(&s) % 20 == 0 && gi.last_index > 30)
            a->rc = raft_log_compact(a->log, group, gi.last_index - 20, 0, &seq);
        if (a->rc == 0 && splitmix(&s) % 50 == 0) a->rc = raft_log_purge(a->log, NULL);
        if (a->rc == 0) a->rc = raft_log_sync(a->log, seq);
        if (a->rc != 0) return NULL;
        crash_report r = {.group = group, .index = gi.last_index + n};
        if (write(1, &r, sizeof r) != sizeof r) { /* atomic: < PIPE_BUF */
            a->rc = -1;
            return NULL;
        }
    }
    return NULL;
}

static int crash_child(const char *dir, uint64_t seed)
{
    raft_log_options o = {.dir = dir, .segment_bytes_max = 16 * 1024};
    raft_log *log = NULL;
    char err[512];
    if (raft_log_open(&o, &log, err, sizeof err) != 0) {
        fprintf(stderr, "crash child: %s\n", err);
        return 2;
    }
    pthread_t th[CRASH_THREADS];
    crash_arg args[CRASH_THREADS];
    for (int t = 0; t < CRASH_THREADS; t++) {
        args[t] = (crash_arg){.log = log, .thread = t, .seed = seed * 31 + (uint64_t)t};
        pthread_create(&th[t], NULL, crash_thread, &args[t]);
    }
    int rc = 0;
    for (int t = 0; t < CRASH_THREADS; t++) {
        pthread_join(th[t], NULL);
        if (args[t].rc) rc = 3;
    }
    raft_log_close(log);
    return rc;
}

static void test_crash_kill9(void **state)
{
    fixture *f = *state;
    unsigned seed = test_seed();
    enum { GROUPS = CRASH_THREADS * CRASH_GROUPS_PER_THREAD };
    uint64_t acked[GROUPS + 1] = {0};
    for (int round = 0; round < CRASH_ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            dup2(fds[1], 1);
            close(fds[0]);
            close(fds[1]);
            char s[32];
            snprintf(s, sizeof s, "%u", seed + (unsigned)round);
            execl(g_self, g_self, "--rlog-crash-child", f->dir, s, (char *)NULL);
            _exit(127);
        }
        close(fds[1]);
        int kill_after = 1 + rand_r(&seed) % 1500, reports = 0;
        crash_report r;
        while (read(fds[0], &r, sizeof r) == sizeof r) {
            assert_true(r.group >= 1 && r.group <= GROUPS);
            if (r.index > acked[r.group]) acked[r.group] = r.index;
            if (++reports == kill_after) kill(pid, SIGKILL);
        }
        close(fds[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (WIFEXITED(status)) assert_int_equal(WEXITSTATUS(status), 0); /* ran to the end */
        else assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        assert_int_equal(fx_open(f), 0);
        raft_log_stats st;
        raft_log_get_stats(f->log, &st);
        print_message("round %d: %d persisted appends reported (kill after %d), %llu segments\n",
                      round, reports, kill_after, (unsigned long long)st.segments);
        for (uint64_t g = 1; g <= GROUPS; g++) {
            raft_log_group_info gi;
            raft_log_group(f->log, g, &gi);
            assert_true(gi.last_index >= acked[g]); /* everything reported is there */
            if (acked[g]) {
                assert_true(gi.has_hard_state);
                assert_int_equal(gi.hard_state.vote, g);
                assert_true(gi.hard_state.commit <= gi.last_index);
            }
            if (gi.exists) check_range(f->log, g, gi.first_index, gi.last_index, 0); /* intact */
            acked[g] = gi.last_index; /* unsynced survivors are history now */
        }
        raft_log_close(f->log);
        f->log = NULL;
    }
}

int main(int argc, char **argv)
{
    base_log_set_level(BASE_LOG_ERROR); /* expected failures log at ERROR */
    if (argc == 4 && strcmp(argv[1], "--rlog-crash-child") == 0)
        return crash_child(argv[2], strtoull(argv[3], NULL, 10));
    ssize_t n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (n <= 0) return 1;
    g_self[n] = 0;
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_append_read_back),
        T(test_many_groups_interleaved),
        T(test_hard_state),
        T(test_suffix_truncation),
        T(test_rollover),
        T(test_snapshot_on_empty_group),
        T(test_prefix_compaction_purge),
        T(test_torn_tail_every_offset),
        T(test_corrupt_middle),
        T(test_group_commit),
        T(test_injected_faults),
        T(test_limits),
        T(test_oom),
        T(test_model_random),
        T(test_with_raft_core),
        T(test_crash_kill9),
    };
    return cmocka_run_group_tests_name("raft_log", tests, NULL, NULL);
}
