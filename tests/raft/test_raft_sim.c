/*
** tests/raft/test_raft_sim.c: many seeds of the deterministic simulator
** (rsim.h) with mixed fault profiles (network, partitions, crashes,
** everything, transfers and leases, leader churn, lease attack, membership
** churn with snapshots, compaction everywhere). MERIDIAN_SIM_SEEDS sets how many
** (default 5000, about 6 s; 1000 under the sanitizers, about 12 s),
** MERIDIAN_SIM_FIRST the first seed (default 1), and
** MERIDIAN_SEED runs just that one seed (to replay a failure). Every failure
** prints its seed.
**
** The slower mode over the REAL log store (rsim.h, "Real log store"): with
** MERIDIAN_SIM_REAL_LOG=1, or always in test_raft_sim_reallog (this file
** built with RSIM_REAL_LOG_DEFAULT=1; default 1000 seeds, about 4 s;
** 300 under the sanitizers), every node also persists through raft_log in a fresh
** directory per seed under $MERIDIAN_SIM_DIR, else /dev/shm (tmpfs: the
** fdatasync calls are real but cheap), else $TMPDIR or /tmp; removed after
** each seed unless it failed (then its path is printed).
**
** Every seed also checks its client history (writes and reads on the
** replicated map, per key) for linearizability with the register checker
** of tests/chaos/; the counts of checked keys and of "unknown" verdicts
** (search budget exhausted: not a failure) are printed.
** test_stale_reads_caught breaks reads on purpose (followers answer from
** their applied state) and expects the checker to fail seeds as invalid.
*/
#define _GNU_SOURCE
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "rsim.h"

#ifndef RSIM_REAL_LOG_DEFAULT
#define RSIM_REAL_LOG_DEFAULT 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#define DEFAULT_SEEDS 1000
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEFAULT_SEEDS 1000
#endif
#endif
#ifndef DEFAULT_SEEDS
#define DEFAULT_SEEDS 5000
#define REAL_DEFAULT_SEEDS 1000
#else
#define REAL_DEFAULT_SEEDS 300
#endif

static uint64_t env_u64(const char *name, uint64_t dflt) {
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? strtoull(v, NULL, 0) : dflt;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static const char *real_log_base(void) {
    const char *d = getenv("MERIDIAN_SIM_DIR");
    struct stat st;
    if (d != NULL && *d != '\0')
        return d;
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
        return "/dev/shm";
    d = getenv("TMPDIR");
    return d != NULL && *d != '\0' ? d : "/tmp";
}

/* One seed in the real-log mode, in a fresh directory. */
static int run_real(uint64_t seed, rsim_run_stats *stats, char *msg, size_t msg_len) {
    char dir[1024];
    int rc;
    snprintf(dir, sizeof(dir), "%s/meridian-rsim-%llu-XXXXXX", real_log_base(),
             (unsigned long long)seed);
    if (mkdtemp(dir) == NULL) {
        snprintf(msg, msg_len, "seed %llu: mkdtemp %.600s failed", (unsigned long long)seed, dir);
        return -1;
    }
    rc = rsim_run_seed_ex(seed, dir, NULL, stats, msg, msg_len);
    if (rc == 0)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        fprintf(stderr, "  (real logs kept in %s)\n", dir);
    return rc;
}

static void test_seeds(void **state) {
    bool real = env_u64("MERIDIAN_SIM_REAL_LOG", RSIM_REAL_LOG_DEFAULT) != 0;
    uint64_t first = env_u64("MERIDIAN_SIM_FIRST", 1),
             count = env_u64("MERIDIAN_SIM_SEEDS", real ? REAL_DEFAULT_SEEDS : DEFAULT_SEEDS);
    uint64_t seed, failures = 0;
    rsim_run_stats stats = {0};
    char msg[768];
    (void)state;
    if (real && getenv("RSIM_VERBOSE") == NULL)
        base_log_set_level(BASE_LOG_ERROR); /* each torn tail cut is a WARN */
    if (getenv("MERIDIAN_SEED") != NULL) {
        first = env_u64("MERIDIAN_SEED", 1);
        count = 1;
    }
    for (seed = first; seed < first + count; seed++) {
        if ((real ? run_real(seed, &stats, msg, sizeof(msg))
                  : rsim_run_seed_ex(seed, NULL, NULL, &stats, msg, sizeof(msg))) != 0) {
            fprintf(stderr, "FAIL %s\n  replay: MERIDIAN_SEED=%llu\n", msg, (unsigned long long)seed);
            if (++failures >= 10)
                break;
        }
    }
    printf("raft sim: %llu seeds from %llu, %llu failed%s\n", (unsigned long long)count,
           (unsigned long long)first, (unsigned long long)failures,
           real ? " (real log store)" : "");
    printf("raft sim: linearizability: %llu client ops on %llu keys checked, %llu keys unknown "
           "(search budget)\n", (unsigned long long)stats.lin_ops,
           (unsigned long long)stats.lin_keys, (unsigned long long)stats.lin_unknown_keys);
    assert_int_equal(failures, 0);
}

/* The checker is wired: with reads served at followers from their applied
** state (no ReadIndex, no lease), some seeds must fail as not linearizable,
** and no other check may be what fails them. */
static void test_stale_reads_caught(void **state) {
    rsim_run_opts opts = {.stale_follower_reads = true};
    uint64_t seed, failed = 0, count = env_u64("MERIDIAN_SIM_STALE_SEEDS", 50);
    char msg[768];
    (void)state;
    if (count == 0)
        skip();
    for (seed = 1; seed <= count; seed++) {
        if (rsim_run_seed_ex(seed, NULL, &opts, NULL, msg, sizeof(msg)) != 0) {
            if (strstr(msg, "not linearizable") == NULL)
                fail_msg("seed %llu failed another check: %s", (unsigned long long)seed, msg);
            if (failed++ == 0)
                printf("  first caught: %s\n", msg);
        }
    }
    printf("raft sim: stale follower reads: %llu of %llu seeds caught as not linearizable\n",
           (unsigned long long)failed, (unsigned long long)count);
    assert_true(failed > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeds),
        cmocka_unit_test(test_stale_reads_caught),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
