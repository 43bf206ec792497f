/*
** tests/raft/test_raft_sim.c: many seeds of the deterministic simulator
** (rsim.h) with mixed fault profiles (network, partitions, crashes,
** everything, transfers and leases, leader churn, lease attack, membership
** churn with snapshots, compaction everywhere). MERIDIAN_SIM_SEEDS sets how many
** (default 5000, about 6 s; 1000 under the sanitizers, about 12 s),
** MERIDIAN_SIM_FIRST the first seed (default 1), and
** MERIDIAN_SEED runs just that one seed (to replay a failure). Every failure
** prints its seed.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "rsim.h"

#if defined(__SANITIZE_ADDRESS__)
#define DEFAULT_SEEDS 1000
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEFAULT_SEEDS 1000
#endif
#endif
#ifndef DEFAULT_SEEDS
#define DEFAULT_SEEDS 5000
#endif

static uint64_t env_u64(const char *name, uint64_t dflt) {
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? strtoull(v, NULL, 0) : dflt;
}

static void test_seeds(void **state) {
    uint64_t first = env_u64("MERIDIAN_SIM_FIRST", 1), count = env_u64("MERIDIAN_SIM_SEEDS", DEFAULT_SEEDS);
    uint64_t seed, failures = 0;
    char msg[768];
    (void)state;
    if (getenv("MERIDIAN_SEED") != NULL) {
        first = env_u64("MERIDIAN_SEED", 1);
        count = 1;
    }
    for (seed = first; seed < first + count; seed++) {
        if (rsim_run_seed(seed, msg, sizeof(msg)) != 0) {
            fprintf(stderr, "FAIL %s\n  replay: MERIDIAN_SEED=%llu\n", msg, (unsigned long long)seed);
            if (++failures >= 10)
                break;
        }
    }
    printf("raft sim: %llu seeds from %llu, %llu failed\n", (unsigned long long)count,
           (unsigned long long)first, (unsigned long long)failures);
    assert_int_equal(failures, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
