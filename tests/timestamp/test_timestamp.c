/*
** Tests for timestamp/: timestamp order and encoding, the HLC rules
** (monotonic across a physical step back, Lamport update, logical overflow),
** every epsilon source and the combination rule, intervals, commit wait, and
** multi-thread monotonicity. Random tests print their seed; set
** MERIDIAN_SEED to replay one.
*/
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"
#include "timestamp/timestamp.h"

#define MS (1000LL * 1000)
#define SEC (1000LL * MS)
#define MAX_OFFSET (250 * MS)
#define T0 (1700000000LL * SEC)

static uint64_t rng_state;

static uint64_t rng_next(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static void rng_seed(const char *test) {
    const char *env = getenv("MERIDIAN_SEED");
    rng_state = env ? strtoull(env, NULL, 0) : (uint64_t)base_realtime_ns();
    if (rng_state == 0) rng_state = 1;
    fprintf(stderr, "%s: seed %llu (MERIDIAN_SEED to replay)\n", test, (unsigned long long)rng_state);
}

static int sign(int x) { return (x > 0) - (x < 0); }

static hlc_timestamp ts(int64_t wall, int32_t logical) { return (hlc_timestamp){wall, logical}; }

static void assert_ts(hlc_timestamp got, int64_t wall, int32_t logical) {
    if (got.wall_ns != wall || got.logical != logical)
        fail_msg("timestamp (%lld,%d), want (%lld,%d)", (long long)got.wall_ns, got.logical,
                 (long long)wall, logical);
}

/* A clock on a manual physical clock at T0. */
typedef struct fixture {
    hlc_manual_clock manual;
    hlc_clock *clock;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL) return -1;
    f->manual.now_ns = T0;
    if (hlc_clock_new(hlc_manual_clock_as_physical(&f->manual), MAX_OFFSET, &f->clock) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    hlc_clock_free(f->clock);
    free(f);
    return 0;
}

static int64_t eps_of(hlc_clock *c, hlc_epsilon_status want) {
    int64_t e = -1;
    assert_int_equal(hlc_epsilon(c, &e), want);
    return e;
}

/* ---- values ------------------------------------------------------------------ */

static void test_compare_next_prev_add(void **state) {
    (void)state;
    assert_true(hlc_compare(ts(1, 5), ts(2, 0)) < 0);
    assert_true(hlc_compare(ts(2, 1), ts(2, 0)) > 0);
    assert_int_equal(hlc_compare(ts(2, 1), ts(2, 1)), 0);
    assert_true(hlc_less(ts(2, 0), ts(2, 1)));
    assert_false(hlc_less(ts(2, 1), ts(2, 1)));
    assert_true(hlc_is_zero(HLC_ZERO));
    assert_false(hlc_is_zero(ts(0, 1)));

    assert_ts(hlc_next(ts(5, 3)), 5, 4);
    assert_ts(hlc_next(ts(5, INT32_MAX)), 6, 0);
    assert_ts(hlc_next(HLC_MAX), INT64_MAX, INT32_MAX); /* saturates */
    assert_ts(hlc_prev(ts(5, 3)), 5, 2);
    assert_ts(hlc_prev(ts(5, 0)), 4, INT32_MAX);
    assert_ts(hlc_prev(ts(0, 1)), 0, 0);
    assert_ts(hlc_prev(HLC_ZERO), 0, 0); /* saturates */
    for (int i = 0; i < 1000; i++) {
        hlc_timestamp a = ts(1000 + i / 7, i % 3 == 0 ? INT32_MAX - i % 5 : i);
        assert_int_equal(hlc_compare(hlc_prev(hlc_next(a)), a), 0);
        assert_int_equal(hlc_compare(hlc_next(hlc_prev(a)), a), 0);
        assert_true(hlc_less(a, hlc_next(a)));
        assert_true(hlc_less(hlc_prev(a), a));
    }

    assert_ts(hlc_add_ns(ts(10, 7), 5), 15, 0);
    assert_ts(hlc_add_ns(ts(10, 7), 0), 10, 7);
    assert_ts(hlc_add_ns(ts(10, 7), -3), 7, 7);
    assert_ts(hlc_add_ns(ts(10, 7), -11), 0, 0);
    assert_ts(hlc_add_ns(ts(INT64_MAX - 1, 7), 5), INT64_MAX, 0);
    assert_ts(hlc_add_ns(ts(5, 7), INT64_MIN), 0, 0);
}

static void test_encoding_order_property(void **state) {
    (void)state;
    rng_seed("test_encoding_order_property");
    static const int64_t walls[] = {INT64_MIN, -1, 0, 1, T0, INT64_MAX - 1, INT64_MAX};
    static const int32_t logicals[] = {INT32_MIN, -1, 0, 1, INT32_MAX - 1, INT32_MAX};
    for (int i = 0; i < 200000; i++) {
        hlc_timestamp t[2];
        for (int k = 0; k < 2; k++) {
            uint64_t r = rng_next();
            switch (r % 4) {
            case 0: t[k] = ts((int64_t)rng_next(), (int32_t)rng_next()); break;
            case 1: /* close values, so equal walls are frequent */
                t[k] = ts(T0 + (int64_t)(rng_next() % 4), (int32_t)(rng_next() % 4));
                break;
            case 2:
                t[k] = ts(walls[rng_next() % BASE_ARRAY_LEN(walls)],
                          logicals[rng_next() % BASE_ARRAY_LEN(logicals)]);
                break;
            default: t[k] = ts((int64_t)(rng_next() >> 1), (int32_t)(rng_next() >> 33)); break;
            }
        }
        uint8_t e0[HLC_ENCODED_SIZE], e1[HLC_ENCODED_SIZE];
        hlc_encode(t[0], e0);
        hlc_encode(t[1], e1);
        if (sign(memcmp(e0, e1, HLC_ENCODED_SIZE)) != sign(hlc_compare(t[0], t[1])))
            fail_msg("order differs for (%lld,%d) vs (%lld,%d)", (long long)t[0].wall_ns,
                     t[0].logical, (long long)t[1].wall_ns, t[1].logical);
        assert_int_equal(hlc_compare(hlc_decode(e0), t[0]), 0);
        assert_int_equal(hlc_compare(hlc_decode(e1), t[1]), 0);
    }
    uint8_t e[HLC_ENCODED_SIZE], ff[HLC_ENCODED_SIZE];
    memset(ff, 0xff, sizeof(ff));
    hlc_encode(HLC_MAX, e);
    assert_memory_equal(e, ff, HLC_ENCODED_SIZE);
    static const uint8_t zero[HLC_ENCODED_SIZE] = {0x80, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0};
    hlc_encode(HLC_ZERO, e);
    assert_memory_equal(e, zero, HLC_ENCODED_SIZE);
    /* A pinned vector: storage/ writes these bytes to disk (hlc_encode). */
    static const uint8_t vec[HLC_ENCODED_SIZE] = {0x81, 0x02, 0x03, 0x04, 0x05, 0x06,
                                                  0x07, 0x08, 0x8a, 0x0b, 0x0c, 0x0d};
    hlc_encode(ts(0x0102030405060708LL, 0x0a0b0c0d), e);
    assert_memory_equal(e, vec, HLC_ENCODED_SIZE);
    assert_ts(hlc_decode(vec), 0x0102030405060708LL, 0x0a0b0c0d);
}

static void test_format(void **state) {
    (void)state;
    char buf[HLC_FORMAT_SIZE];
    assert_string_equal(hlc_format(ts(1700000000LL * SEC + 123, 4), buf, sizeof(buf)),
                        "1700000000.000000123,4");
    assert_string_equal(hlc_format(HLC_ZERO, buf, sizeof(buf)), "0.000000000,0");
    assert_string_equal(hlc_format(ts(-1, 0), buf, sizeof(buf)), "-0.000000001,0");
    assert_string_equal(hlc_format(HLC_MAX, buf, sizeof(buf)), "9223372036.854775807,2147483647");
    assert_string_equal(hlc_format(ts(INT64_MIN, INT32_MIN), buf, sizeof(buf)),
                        "-9223372036.854775808,-2147483648");
    char small[5];
    assert_string_equal(hlc_format(ts(1700000000LL * SEC, 0), small, sizeof(small)), "1700");
}

/* ---- the HLC ----------------------------------------------------------------- */

static void test_new_clock_errors(void **state) {
    (void)state;
    hlc_manual_clock m = {T0};
    hlc_clock *c = (hlc_clock *)&m; /* must be reset to NULL on failure */
    assert_int_equal(hlc_clock_new(hlc_manual_clock_as_physical(&m), 0, &c), -EINVAL);
    assert_null(c);
    assert_int_equal(hlc_clock_new((hlc_physical_clock){NULL, NULL}, MAX_OFFSET, &c), -EINVAL);
    base_alloc_fail_after(0);
    assert_int_equal(hlc_clock_new(hlc_manual_clock_as_physical(&m), MAX_OFFSET, &c), -ENOMEM);
    base_alloc_fail_after(-1);
    assert_null(c);
    assert_int_equal(hlc_clock_new(hlc_manual_clock_as_physical(&m), MAX_OFFSET, &c), 0);
    assert_int_equal(hlc_max_offset_ns(c), MAX_OFFSET);
    assert_int_equal(hlc_physical_now_ns(c), T0);
    hlc_clock_free(c);
    hlc_clock_free(NULL);
}

static void test_now_monotonic_when_physical_steps_back(void **state) {
    fixture *f = *state;
    assert_ts(hlc_now(f->clock), T0, 0);
    assert_ts(hlc_now(f->clock), T0, 1);
    f->manual.now_ns = T0 - 5 * SEC; /* NTP steps the clock back */
    assert_ts(hlc_now(f->clock), T0, 2);
    assert_ts(hlc_now(f->clock), T0, 3);
    f->manual.now_ns = T0 - 1;
    assert_ts(hlc_now(f->clock), T0, 4);
    f->manual.now_ns = T0 + 1;
    assert_ts(hlc_now(f->clock), T0 + 1, 0);
    /* A long random walk with back steps: strictly increasing throughout. */
    rng_seed("test_now_monotonic_when_physical_steps_back");
    hlc_timestamp prev = hlc_now(f->clock);
    for (int i = 0; i < 100000; i++) {
        f->manual.now_ns += (int64_t)(rng_next() % 2000) - 1000;
        hlc_timestamp t = hlc_now(f->clock);
        assert_true(hlc_less(prev, t));
        assert_true(t.wall_ns >= f->manual.now_ns);
        prev = t;
    }
}

static void test_update_lamport_rule(void **state) {
    fixture *f = *state;
    /* remote ahead within max_offset: accepted, later now() > remote. */
    hlc_timestamp remote = ts(T0 + 100 * MS, 7);
    assert_int_equal(hlc_update(f->clock, remote), HLC_OK);
    hlc_timestamp t = hlc_now(f->clock);
    assert_true(hlc_less(remote, t));
    assert_ts(t, T0 + 100 * MS, 8);
    /* remote behind: no effect beyond the usual tick. */
    assert_int_equal(hlc_update(f->clock, ts(T0 - SEC, 0)), HLC_OK);
    assert_ts(hlc_now(f->clock), T0 + 100 * MS, 9);
    /* exactly max_offset ahead: still fine; one ns more: REMOTE_AHEAD, but updated. */
    assert_int_equal(hlc_update(f->clock, ts(T0 + MAX_OFFSET, 0)), HLC_OK);
    hlc_timestamp far = ts(T0 + MAX_OFFSET + 1, 0);
    assert_int_equal(hlc_update(f->clock, far), HLC_ERR_REMOTE_AHEAD);
    assert_true(hlc_less(far, hlc_now(f->clock)));
    /* physical catches up: wall follows the physical clock again. */
    f->manual.now_ns = T0 + SEC;
    assert_ts(hlc_now(f->clock), T0 + SEC, 0);
    /* invalid remotes are refused and do not move the clock. */
    assert_int_equal(hlc_update(f->clock, ts(-1, 0)), HLC_ERR_INVALID);
    assert_int_equal(hlc_update(f->clock, ts(T0, -1)), HLC_ERR_INVALID);
    assert_int_equal(hlc_update(f->clock, HLC_MAX), HLC_ERR_INVALID);
    assert_int_equal(hlc_update(f->clock, ts(HLC_WALL_LIMIT_NS, 0)), HLC_ERR_INVALID);
    assert_ts(hlc_now(f->clock), T0 + SEC, 1);
    /* Random: after every update, now() > remote and > every earlier now(). */
    rng_seed("test_update_lamport_rule");
    hlc_timestamp prev = hlc_now(f->clock);
    for (int i = 0; i < 50000; i++) {
        f->manual.now_ns += (int64_t)(rng_next() % 1000) - 400;
        hlc_timestamp r = ts(f->manual.now_ns + (int64_t)(rng_next() % (2 * MAX_OFFSET)) - MAX_OFFSET,
                             (int32_t)(rng_next() % 100));
        int rc = hlc_update(f->clock, r);
        assert_true(rc == HLC_OK || rc == HLC_ERR_REMOTE_AHEAD);
        hlc_timestamp t = hlc_now(f->clock);
        assert_true(hlc_less(r, t));
        assert_true(hlc_less(prev, t));
        prev = t;
    }
}

static void test_logical_overflow(void **state) {
    fixture *f = *state;
    assert_int_equal(hlc_update(f->clock, ts(T0, INT32_MAX - 1)), HLC_OK);
    assert_ts(hlc_now(f->clock), T0, INT32_MAX);
    assert_ts(hlc_now(f->clock), T0 + 1, 0); /* wall bumped by 1 ns */
    assert_ts(hlc_now(f->clock), T0 + 1, 1);
    /* A remote at the logical limit: the next now() still exceeds it. */
    hlc_timestamp r = ts(T0 + 10, INT32_MAX);
    assert_int_equal(hlc_update(f->clock, r), HLC_OK);
    hlc_timestamp t = hlc_now(f->clock);
    assert_true(hlc_less(r, t));
    assert_ts(t, T0 + 11, 0);
}

/* ---- epsilon ----------------------------------------------------------------- */

static void test_epsilon_new_clock_unbounded(void **state) {
    fixture *f = *state;
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    hlc_epsilon_report r;
    hlc_epsilon_explain(f->clock, &r);
    assert_int_equal(r.source, HLC_SOURCE_NONE);
    assert_int_equal(r.peers_bound_ns, -1);
    assert_int_equal(r.ntp_bound_ns, -1);
    assert_int_equal(r.peers_tracked, 0);
}

static void test_epsilon_alone(void **state) {
    fixture *f = *state;
    hlc_epsilon_set_alone(f->clock, true);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 0);
    /* alone wins even over an unusable peer set. */
    hlc_epsilon_peer_track(f->clock, 9);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 0);
    hlc_epsilon_report r;
    hlc_epsilon_explain(f->clock, &r);
    assert_int_equal(r.source, HLC_SOURCE_ALONE);
    hlc_epsilon_set_alone(f->clock, false);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
}

static void test_epsilon_ntp(void **state) {
    fixture *f = *state;
    /* This machine's reading: unsynchronized, 16 s maxerror. Never used. */
    hlc_ntp_reading unsync = {.synchronized = false, .esterror_ns = 16 * SEC, .maxerror_ns = 16 * SEC};
    hlc_epsilon_set_ntp(f->clock, &unsync);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    /* Unsynchronized with a small error is still not trusted. */
    hlc_ntp_reading unsync_small = {.synchronized = false, .esterror_ns = MS, .maxerror_ns = 2 * MS};
    hlc_epsilon_set_ntp(f->clock, &unsync_small);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    /* Synchronized but 16 s: over the limit -> unbounded, clamped. */
    hlc_ntp_reading sync_big = {.synchronized = true, .esterror_ns = MS, .maxerror_ns = 16 * SEC};
    hlc_epsilon_set_ntp(f->clock, &sync_big);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    /* Synchronized, 3 ms maxerror: own error + max_offset/2 for the peer's.
    ** esterror (an estimate) is ignored even when larger. */
    hlc_ntp_reading sync = {.synchronized = true, .esterror_ns = 50 * MS, .maxerror_ns = 3 * MS};
    hlc_epsilon_set_ntp(f->clock, &sync);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 3 * MS + MAX_OFFSET / 2);
    hlc_epsilon_report r;
    hlc_epsilon_explain(f->clock, &r);
    assert_int_equal(r.source, HLC_SOURCE_NTP);
    /* The reading widens at 500 ppm with its age: 10 s -> +5 ms. */
    f->manual.now_ns += 10 * SEC;
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 8 * MS + MAX_OFFSET / 2);
    /* Stale after HLC_MEASUREMENT_STALE_NS. */
    f->manual.now_ns = T0 + HLC_MEASUREMENT_STALE_NS;
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 3 * MS + 30 * MS + MAX_OFFSET / 2);
    f->manual.now_ns = T0 + HLC_MEASUREMENT_STALE_NS + 1;
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    /* Own error exactly max_offset/2 is the limit. */
    hlc_ntp_reading edge = {.synchronized = true, .maxerror_ns = MAX_OFFSET / 2};
    hlc_epsilon_set_ntp(f->clock, &edge);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), MAX_OFFSET);
    edge.maxerror_ns++;
    hlc_epsilon_set_ntp(f->clock, &edge);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    /* Clearing the reading. */
    hlc_epsilon_set_ntp(f->clock, &sync);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 3 * MS + MAX_OFFSET / 2);
    hlc_epsilon_set_ntp(f->clock, NULL);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
}

static void test_ntp_read_adapter(void **state) {
    (void)state;
    hlc_ntp_reading r;
    int rc = hlc_ntp_read(&r);
    if (rc != 0) { /* a sandbox may forbid adjtimex: the error is reported, no crash */
        assert_true(rc < 0);
        return;
    }
    assert_true(r.maxerror_ns >= 0);
    fprintf(stderr, "kernel NTP: synchronized=%d esterror=%lld ns maxerror=%lld ns\n",
            r.synchronized, (long long)r.esterror_ns, (long long)r.maxerror_ns);
    hlc_manual_clock m = {T0};
    hlc_clock *c = NULL;
    assert_int_equal(hlc_clock_new(hlc_manual_clock_as_physical(&m), MAX_OFFSET, &c), 0);
    hlc_epsilon_set_ntp(c, &r);
    hlc_epsilon_report rep;
    hlc_epsilon_explain(c, &rep);
    if (!r.synchronized) {
        assert_int_equal(rep.status, HLC_EPSILON_UNBOUNDED);
        assert_int_equal(rep.ntp_bound_ns, -1);
    }
    hlc_clock_free(c);
}

static void test_epsilon_peer_drift_grows_with_age(void **state) {
    fixture *f = *state;
    /* Peer 1: 3 ms behind us +- 1 ms, measured now. */
    hlc_epsilon_peer_measurement(f->clock, 1, -3 * MS, MS, T0);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 4 * MS);
    hlc_epsilon_report r;
    hlc_epsilon_explain(f->clock, &r);
    assert_int_equal(r.source, HLC_SOURCE_PEERS);
    assert_int_equal(r.peers_tracked, 1);
    assert_int_equal(r.peers_fresh, 1);
    /* 10 s later: + 200 ppm * 10 s = 2 ms. */
    f->manual.now_ns = T0 + 10 * SEC;
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 6 * MS);
    /* 1 ns of age rounds the allowance up to 1 ns. */
    f->manual.now_ns = T0 + 1;
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 4 * MS + 1);
    /* Peer 2: 5 ms ahead +- 2 ms: max over peers. */
    f->manual.now_ns = T0;
    hlc_epsilon_peer_measurement(f->clock, 2, 5 * MS, 2 * MS, T0);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 7 * MS);
    /* A fresher measurement of peer 2 replaces it; an older one is dropped. */
    f->manual.now_ns = T0 + 5 * SEC;
    hlc_epsilon_peer_measurement(f->clock, 2, MS, MS, T0 + 5 * SEC);
    hlc_epsilon_peer_measurement(f->clock, 2, 100 * MS, MS, T0 + 4 * SEC);
    /* peer 1: 4 ms + 1 ms drift = 5 ms; peer 2: 2 ms. */
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 5 * MS);
    /* Peers are preferred over NTP when complete. */
    hlc_ntp_reading sync = {.synchronized = true, .maxerror_ns = MS};
    hlc_epsilon_set_ntp(f->clock, &sync);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 5 * MS);
}

static void test_epsilon_peer_staleness(void **state) {
    fixture *f = *state;
    hlc_epsilon_peer_measurement(f->clock, 1, MS, MS, T0);
    hlc_epsilon_peer_measurement(f->clock, 2, MS, MS, T0 + 30 * SEC);
    f->manual.now_ns = T0 + HLC_MEASUREMENT_STALE_NS;
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 2 * MS + 12 * MS);
    /* Peer 1 goes stale: it still counts, as max_offset (never dropped from
    ** the max); self + peer 2 are still a majority of the three. */
    f->manual.now_ns = T0 + HLC_MEASUREMENT_STALE_NS + 1;
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), MAX_OFFSET);
    hlc_epsilon_report r;
    hlc_epsilon_explain(f->clock, &r);
    assert_int_equal(r.source, HLC_SOURCE_PEERS);
    assert_int_equal(r.peers_tracked, 2);
    assert_int_equal(r.peers_fresh, 1);
    assert_int_equal(r.peers_good, 1);
    assert_int_equal(r.peers_unknown, 1);
    assert_true(r.majority);
    assert_int_equal(r.peers_bound_ns, MAX_OFFSET);
    /* Forgetting the dead peer brings the measured bound back. */
    hlc_epsilon_peer_forget(f->clock, 1);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 2 * MS + 6 * MS + 1);
    /* A tracked but never-measured peer counts as max_offset too. */
    hlc_epsilon_peer_track(f->clock, 3);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), MAX_OFFSET);
    hlc_epsilon_peer_measurement(f->clock, 3, 0, MS, f->manual.now_ns);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 2 * MS + 6 * MS + 1);
    /* A bad measurement (negative uncertainty) leaves the peer unmeasured. */
    hlc_epsilon_peer_measurement(f->clock, 3, 0, -1, f->manual.now_ns);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), MAX_OFFSET);
    hlc_epsilon_peer_forget(f->clock, 3);
    hlc_epsilon_peer_forget(f->clock, 77); /* unknown: no-op */
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 2 * MS + 6 * MS + 1);
    /* Our physical clock steps back behind the measurement: not trusted,
    ** and one unknown peer of one is no majority. */
    f->manual.now_ns = T0 + 29 * SEC;
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    /* ... falling back to NTP when that is synchronized. */
    hlc_ntp_reading sync = {.synchronized = true, .maxerror_ns = 2 * MS};
    hlc_epsilon_set_ntp(f->clock, &sync);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 2 * MS + MAX_OFFSET / 2);
    hlc_epsilon_set_ntp(f->clock, NULL);
    /* No peers at all (all forgotten) and not alone: unbounded. */
    f->manual.now_ns = T0 + 31 * SEC;
    hlc_epsilon_peer_forget(f->clock, 2);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
}

/* The majority rule (docs/clocks.md, section 3), from one node's view. */
static void test_epsilon_peer_majority(void **state) {
    fixture *f = *state;
    hlc_epsilon_report r;
    char why[HLC_DESCRIBE_SIZE];
    hlc_peer_sample good = {.offset_ns = -2 * MS, .uncertainty_ns = MS, .measured_at_ns = T0,
                            .peer_has_majority = true};
    hlc_peer_sample far = {.offset_ns = SEC, .uncertainty_ns = MS, .measured_at_ns = T0,
                           .peer_has_majority = false};
    /* Five nodes: peers 1..4 live, none measured yet: no majority. */
    for (uint64_t id = 1; id <= 4; id++) hlc_epsilon_peer_track(f->clock, id);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    hlc_epsilon_explain(f->clock, &r);
    assert_false(r.majority);
    assert_int_equal(r.peers_unknown, 4);
    hlc_epsilon_describe(&r, why, sizeof why);
    assert_non_null(strstr(why, "only 0 of 4 peer(s)"));
    /* Two good peers + self = 3 of 5: a majority, but the two unmeasured
    ** ones may serve: they count as max_offset. */
    hlc_epsilon_peer_sample(f->clock, 1, &good);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    hlc_epsilon_peer_sample(f->clock, 2, &good);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), MAX_OFFSET);
    hlc_epsilon_peer_sample(f->clock, 3, &good);
    hlc_epsilon_peer_sample(f->clock, 4, &good);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 3 * MS);
    hlc_epsilon_explain(f->clock, &r);
    assert_int_equal(r.peers_good, 4);
    hlc_epsilon_describe(&r, why, sizeof why);
    assert_non_null(strstr(why, "epsilon 3.00ms from peer measurements"));

    /* Peer 4 is a second off and has no majority of its own (it stops
    ** serving): it counts as max_offset, this node keeps serving. */
    hlc_epsilon_peer_sample(f->clock, 4, &far);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), MAX_OFFSET);
    hlc_epsilon_explain(f->clock, &r);
    assert_int_equal(r.peers_far, 1);
    assert_false(r.far_majority);
    assert_int_equal(r.worst_peer_id, 4);
    assert_int_equal(r.worst_bound_ns, SEC + MS);
    /* ... but one that says it is within the bound of a majority: one of
    ** the two clocks is wrong and neither can tell which. Even a good NTP
    ** bound does not help then. */
    far.peer_has_majority = true;
    hlc_epsilon_peer_sample(f->clock, 4, &far);
    hlc_ntp_reading sync = {.synchronized = true, .maxerror_ns = MS};
    hlc_epsilon_set_ntp(f->clock, &sync);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    hlc_epsilon_set_ntp(f->clock, NULL);
    hlc_epsilon_explain(f->clock, &r);
    assert_true(r.far_majority);
    assert_int_equal(r.far_peer_id, 4);
    hlc_epsilon_describe(&r, why, sizeof why);
    assert_non_null(strstr(why, "node 4"));
    assert_non_null(strstr(why, "beyond --max-offset"));
    /* Forgotten (decommissioned, dead): the measured bound is back. */
    hlc_epsilon_peer_forget(f->clock, 4);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), 3 * MS);

    /* Three of four peers far without a majority: this node is the odd one
    ** out (1 good + self = 2 of 5) and stops serving. */
    far.peer_has_majority = false;
    hlc_epsilon_peer_track(f->clock, 4);
    hlc_epsilon_peer_sample(f->clock, 2, &far);
    hlc_epsilon_peer_sample(f->clock, 3, &far);
    hlc_epsilon_peer_sample(f->clock, 4, &far);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    hlc_epsilon_explain(f->clock, &r);
    assert_false(r.majority);
    hlc_epsilon_describe(&r, why, sizeof why);
    assert_non_null(strstr(why, "only 1 of 4 peer(s)"));
    assert_non_null(strstr(why, "a majority of the 5 nodes"));
}

/* A three-node cluster whose node C is a second ahead, seen from each node
** with the peers' own reports: A and B serve, C does not. */
static void test_epsilon_skewed_node_views(void **state) {
    (void)state;
    hlc_manual_clock m = {T0};
    hlc_clock *a = NULL, *c = NULL;
    assert_int_equal(hlc_clock_new(hlc_manual_clock_as_physical(&m), MAX_OFFSET, &a), 0);
    assert_int_equal(hlc_clock_new(hlc_manual_clock_as_physical(&m), MAX_OFFSET, &c), 0);
    /* C's view: A and B both a second behind and each in a majority. */
    hlc_peer_sample behind = {.offset_ns = -SEC, .uncertainty_ns = 100 * 1000, .measured_at_ns = T0,
                              .peer_has_majority = true};
    hlc_epsilon_peer_sample(c, 1, &behind);
    hlc_epsilon_peer_sample(c, 2, &behind);
    hlc_epsilon_report rc;
    hlc_epsilon_explain(c, &rc);
    assert_int_equal(rc.status, HLC_EPSILON_UNBOUNDED);
    assert_false(rc.majority); /* C reports this in its answers */
    /* A's view: B close, C far and (per C's report) without a majority. */
    hlc_peer_sample close = {.offset_ns = 30 * 1000, .uncertainty_ns = 100 * 1000,
                             .measured_at_ns = T0, .peer_has_majority = true};
    hlc_peer_sample ahead = {.offset_ns = SEC, .uncertainty_ns = 100 * 1000, .measured_at_ns = T0,
                             .peer_has_majority = rc.majority};
    hlc_epsilon_peer_sample(a, 2, &close);
    hlc_epsilon_peer_sample(a, 3, &ahead);
    assert_int_equal(eps_of(a, HLC_EPSILON_OK), MAX_OFFSET);
    /* A second later C's clock is back in line: measured good, the bound
    ** is small again (B's 130 us + 200 us of drift allowance). */
    m.now_ns = T0 + SEC;
    ahead.offset_ns = 50 * 1000;
    ahead.measured_at_ns = T0 + SEC;
    hlc_epsilon_peer_sample(a, 3, &ahead);
    assert_int_equal(eps_of(a, HLC_EPSILON_OK), 330 * 1000);
    hlc_clock_free(a);
    hlc_clock_free(c);
}

static void test_epsilon_clamped_to_max_offset(void **state) {
    fixture *f = *state;
    hlc_epsilon_peer_measurement(f->clock, 1, MAX_OFFSET - 2 * MS, MS, T0);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), MAX_OFFSET - MS);
    /* 10 s of drift (2 ms) pushes it over max_offset. */
    f->manual.now_ns = T0 + 10 * SEC;
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    /* Extreme inputs saturate, never overflow. */
    hlc_epsilon_peer_measurement(f->clock, 1, INT64_MIN, INT64_MAX, T0 + 10 * SEC);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    hlc_epsilon_peer_measurement(f->clock, 2, 0, 0, INT64_MAX);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    hlc_ntp_reading weird = {.synchronized = true, .maxerror_ns = INT64_MAX};
    hlc_epsilon_set_ntp(f->clock, &weird);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    weird.maxerror_ns = -5;
    hlc_epsilon_set_ntp(f->clock, &weird);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    /* hlc_epsilon accepts a NULL out-parameter. */
    assert_int_equal(hlc_epsilon(f->clock, NULL), HLC_EPSILON_UNBOUNDED);
}

static void test_epsilon_peer_limit(void **state) {
    fixture *f = *state;
    for (uint64_t id = 0; id < HLC_PEERS_MAX; id++) hlc_epsilon_peer_measurement(f->clock, id, 0, MS, T0);
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_OK), MS);
    hlc_epsilon_peer_measurement(f->clock, HLC_PEERS_MAX, 0, MS, T0); /* one too many */
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
    hlc_epsilon_peer_forget(f->clock, 0); /* sticky: the dropped peer is still unknown */
    assert_int_equal(eps_of(f->clock, HLC_EPSILON_UNBOUNDED), MAX_OFFSET);
}

/* ---- intervals and commit wait ----------------------------------------------- */

static void test_now_interval(void **state) {
    fixture *f = *state;
    /* Unbounded: +- max_offset. */
    hlc_timestamp n;
    hlc_interval iv = hlc_now_with_interval(f->clock, &n);
    assert_ts(n, T0, 0);
    assert_ts(iv.earliest, T0 - MAX_OFFSET, 0);
    assert_ts(iv.latest, T0 + MAX_OFFSET, INT32_MAX);
    /* Peer bound 4 ms. */
    hlc_epsilon_peer_measurement(f->clock, 1, 3 * MS, MS, T0);
    iv = hlc_now_with_interval(f->clock, &n);
    assert_ts(n, T0, 1);
    assert_ts(iv.earliest, T0 - 4 * MS, 0);
    assert_ts(iv.latest, T0 + 4 * MS, INT32_MAX);
    /* The HLC pushed ahead by a remote: earliest stays on the physical clock. */
    assert_int_equal(hlc_update(f->clock, ts(T0 + 100 * MS, 0)), HLC_OK);
    iv = hlc_now_interval(f->clock);
    assert_ts(iv.earliest, T0 - 4 * MS, 0);
    assert_ts(iv.latest, T0 + 104 * MS, INT32_MAX);
    /* Alone: [physical, now]. */
    hlc_epsilon_set_alone(f->clock, true);
    iv = hlc_now_with_interval(f->clock, &n);
    assert_ts(iv.earliest, T0, 0);
    assert_ts(n, T0 + 100 * MS, 2);
    assert_ts(iv.latest, T0 + 100 * MS, INT32_MAX);
    /* Near the epoch the interval saturates at zero. */
    f->manual.now_ns = 0;
    hlc_clock *c = NULL;
    assert_int_equal(hlc_clock_new(hlc_manual_clock_as_physical(&f->manual), MAX_OFFSET, &c), 0);
    iv = hlc_now_interval(c);
    assert_ts(iv.earliest, 0, 0);
    hlc_clock_free(c);
}

static void test_commit_wait(void **state) {
    fixture *f = *state;
    hlc_epsilon_peer_measurement(f->clock, 1, 3 * MS, MS, T0); /* eps 4 ms (+ drift later) */
    hlc_timestamp commit = hlc_now(f->clock);
    assert_ts(commit, T0, 0);
    /* Need physical - eps > commit.wall: physical >= T0 + 4 ms + 1. */
    assert_int_equal(hlc_commit_wait_ns(f->clock, commit), 4 * MS + 1);
    f->manual.now_ns = T0 + 4 * MS; /* drift has added 800 ns of epsilon */
    assert_int_equal(hlc_commit_wait_ns(f->clock, commit), 800 + 1);
    /* ... and grows while we wait: callers re-check until 0. */
    f->manual.now_ns = T0 + 4 * MS + 801;
    assert_int_equal(hlc_commit_wait_ns(f->clock, commit), 1);
    f->manual.now_ns = T0 + 4 * MS + 802;
    assert_int_equal(hlc_commit_wait_ns(f->clock, commit), 0);
    assert_true(hlc_less(commit, hlc_now_interval(f->clock).earliest));
    /* A commit timestamp with a logical part needs the same wait. */
    assert_int_equal(hlc_commit_wait_ns(f->clock, ts(T0, 99)), 0);
    /* Alone: wait until physical > commit wall. */
    hlc_epsilon_set_alone(f->clock, true);
    assert_int_equal(hlc_commit_wait_ns(f->clock, ts(f->manual.now_ns, 5)), 1);
    assert_int_equal(hlc_commit_wait_ns(f->clock, ts(f->manual.now_ns - 1, 5)), 0);
}

/* ---- system clock ------------------------------------------------------------ */

static void test_system_clock_offset(void **state) {
    (void)state;
    hlc_physical_clock sys = hlc_system_clock();
    hlc_system_clock_set_offset_ns(3600 * SEC);
    int64_t before = base_realtime_ns();
    int64_t got = sys.now_ns(sys.ctx);
    int64_t after = base_realtime_ns();
    hlc_system_clock_set_offset_ns(0);
    /* Holds unless CLOCK_REALTIME is stepped during these three calls. */
    assert_true(got - 3600 * SEC >= before && got - 3600 * SEC <= after);
    before = base_realtime_ns();
    got = sys.now_ns(sys.ctx);
    after = base_realtime_ns();
    assert_true(got >= before && got <= after);
}

#define THREADS 4
#define CALLS_PER_THREAD 100000

typedef struct worker {
    hlc_clock *clock;
    hlc_timestamp *out;
} worker;

static void *worker_main(void *arg) {
    worker *w = arg;
    for (int i = 0; i < CALLS_PER_THREAD; i++) w->out[i] = hlc_now(w->clock);
    return NULL;
}

static int cmp_ts(const void *a, const void *b) {
    return hlc_compare(*(const hlc_timestamp *)a, *(const hlc_timestamp *)b);
}

static void test_multithread_monotonic(void **state) {
    (void)state;
    hlc_clock *c = NULL;
    assert_int_equal(hlc_clock_new(hlc_system_clock(), MAX_OFFSET, &c), 0);
    hlc_timestamp *all = calloc((size_t)THREADS * CALLS_PER_THREAD, sizeof(*all));
    assert_non_null(all);
    pthread_t th[THREADS];
    worker w[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (worker){c, all + (size_t)t * CALLS_PER_THREAD};
        assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) assert_int_equal(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < THREADS; t++)
        for (int i = 1; i < CALLS_PER_THREAD; i++)
            assert_true(hlc_less(w[t].out[i - 1], w[t].out[i]));
    qsort(all, (size_t)THREADS * CALLS_PER_THREAD, sizeof(*all), cmp_ts);
    for (size_t i = 1; i < (size_t)THREADS * CALLS_PER_THREAD; i++)
        if (hlc_compare(all[i - 1], all[i]) == 0)
            fail_msg("duplicate timestamp (%lld,%d)", (long long)all[i].wall_ns, all[i].logical);
    free(all);
    hlc_clock_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compare_next_prev_add),
        cmocka_unit_test(test_encoding_order_property),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_new_clock_errors),
        cmocka_unit_test_setup_teardown(test_now_monotonic_when_physical_steps_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_lamport_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logical_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epsilon_new_clock_unbounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epsilon_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epsilon_ntp, setup, teardown),
        cmocka_unit_test(test_ntp_read_adapter),
        cmocka_unit_test_setup_teardown(test_epsilon_peer_drift_grows_with_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epsilon_peer_staleness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epsilon_peer_majority, setup, teardown),
        cmocka_unit_test(test_epsilon_skewed_node_views),
        cmocka_unit_test_setup_teardown(test_epsilon_clamped_to_max_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epsilon_peer_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_now_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_wait, setup, teardown),
        cmocka_unit_test(test_system_clock_offset),
        cmocka_unit_test(test_multithread_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
