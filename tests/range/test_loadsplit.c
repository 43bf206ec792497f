/*
** tests/range/test_loadsplit.c: a range's load and the load-split finder
** (range/loadsplit.c), pure and tested directly with keys "k0000".."k9999":
** decayed rates (a steady rate converges, idle decays by half per half
** life), uniform load -> a key near the middle, skewed load -> a key that
** halves the load, a single hot key -> no key (also with a little load
** elsewhere), spans that a split would cut (contained) -> none, spans to
** one side -> counted there, windows (a suggestion fades after two), and
** out-of-memory while sampling. Seeded (printed on failure, MERIDIAN_SEED
** replays one).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"
#include "range/loadsplit_int.h"

#define SEC 1000000000LL

static uint64_t g_seed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "\n  %s:%d: %s\n  replay: MERIDIAN_SEED=%llu\n", __FILE__,     \
                    __LINE__, #cond, (unsigned long long)g_seed);                          \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

static uint64_t seed_from_env(uint64_t dflt)
{
    const char *s = getenv("MERIDIAN_SEED");
    return s != NULL ? strtoull(s, NULL, 10) : dflt;
}

/* A well-mixed non-zero start for a generator from a small seed. */
static uint64_t mix(uint64_t seed)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return z != 0 ? z : 1;
}

/* The test's own generator for workloads (the finder gets another state). */
static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void key_of(int i, char out[8]) { snprintf(out, 8, "k%04d", i); }

static int key_number(const uint8_t *key, size_t len)
{
    CHECK(key != NULL && len == 5 && key[0] == 'k');
    char buf[8] = {0};
    memcpy(buf, key, len);
    return atoi(buf + 1);
}

/* Record a point request on key i. */
static void point(range__split_finder *f, int i, uint64_t *rng)
{
    char k[8];
    key_of(i, k);
    range_span sp = {.start = (const uint8_t *)k, .start_len = 5, .point = true};
    range__finder_record(f, &sp, rng);
}

/* Record the span [a, b). */
static void span(range__split_finder *f, int a, int b, uint64_t *rng)
{
    char ka[8], kb[8];
    key_of(a, ka);
    key_of(b, kb);
    range_span sp = {.start = (const uint8_t *)ka, .start_len = 5, .end = (const uint8_t *)kb,
                     .end_len = 5};
    range__finder_record(f, &sp, rng);
}

static void test_rates(void **state)
{
    (void)state;
    range__rate r;
    range__rate_init(&r, 0);
    CHECK(range__rate_per_second(&r, 0) == 0.0);
    /* 100 events a second: about 100/s after 3 s already, and after 60 s */
    for (int64_t t = 0; t < 3 * SEC; t += SEC / 100)
        range__rate_add(&r, t);
    double early = range__rate_per_second(&r, 3 * SEC);
    CHECK(early > 95 && early < 105);
    for (int64_t t = 3 * SEC; t < 60 * SEC; t += SEC / 100)
        range__rate_add(&r, t);
    double now = range__rate_per_second(&r, 60 * SEC);
    CHECK(now > 98 && now < 102);
    /* one event just after the start is not a huge rate */
    range__rate one;
    range__rate_init(&one, 0);
    range__rate_add(&one, SEC / 1000);
    CHECK(range__rate_per_second(&one, SEC / 1000) < 1.1);
    /* idle for one half life: half of it */
    double later = range__rate_per_second(&r, 70 * SEC);
    CHECK(later > now * 0.49 && later < now * 0.51);
    /* an earlier time counts at the last update's */
    range__rate_add(&r, 10 * SEC);
    CHECK(r.last_ns < 60 * SEC + 1);
    /* a load */
    range__load l;
    range__load_init(&l, 5 * SEC);
    uint64_t rng = 7;
    char k[8];
    key_of(1, k);
    range_span sp = {.start = (const uint8_t *)k, .start_len = 5, .point = true};
    for (int i = 0; i < 300; i++)
        range__load_record(&l, i % 3 == 0, &sp, 5 * SEC + i * (SEC / 100), &rng);
    double reads = 0, writes = 0;
    range__load_rates(&l, 8 * SEC, &reads, &writes);
    CHECK(reads > writes * 1.8 && reads < writes * 2.2);
    CHECK(reads > 10 && writes > 5);
    range__load_reset(&l, 8 * SEC);
    range__load_rates(&l, 8 * SEC, &reads, &writes);
    CHECK(reads == 0.0 && writes == 0.0);
    range__load_free(&l);
}

static void test_uniform(void **state)
{
    (void)state;
    g_seed = seed_from_env(11);
    uint64_t x = mix(g_seed), rng = mix(g_seed + 3);
    range__split_finder f;
    range__finder_init(&f, 0);
    size_t len = 0;
    CHECK(range__finder_key(&f, &len) == NULL); /* nothing recorded */
    for (int i = 0; i < 20; i++)
        point(&f, (int)(rnd(&x) % 1000), &rng);
    CHECK(range__finder_key(&f, &len) == NULL); /* too few counts yet */
    for (int i = 0; i < 5000; i++)
        point(&f, (int)(rnd(&x) % 1000), &rng);
    const uint8_t *key = range__finder_key(&f, &len);
    CHECK(key != NULL);
    int k = key_number(key, len);
    CHECK(k >= 360 && k <= 640); /* balance < 0.25: about 37.5..62.5% (sampled counts) */
    range__finder_reset(&f, 0);
}

static void test_skewed(void **state)
{
    (void)state;
    g_seed = seed_from_env(12);
    uint64_t x = mix(g_seed), rng = mix(g_seed + 5);
    range__split_finder f;
    range__finder_init(&f, 0);
    /* 80% of requests on keys 0..99, 20% on 100..999: the load halves near
    ** key 62 (50% / 80% of the first hundred), not near the middle key 500 */
    for (int i = 0; i < 10000; i++) {
        uint64_t r = rnd(&x);
        int key = r % 10 < 8 ? (int)((r >> 8) % 100) : 100 + (int)((r >> 8) % 900);
        point(&f, key, &rng);
    }
    size_t len = 0;
    const uint8_t *key = range__finder_key(&f, &len);
    CHECK(key != NULL);
    int k = key_number(key, len);
    CHECK(k >= 30 && k <= 95);
    /* the chosen candidate's own counts are balanced */
    for (size_t i = 0; i < f.n_samples; i++)
        if (f.samples[i].key == key) {
            uint64_t l = f.samples[i].left, r = f.samples[i].right;
            CHECK(l * 100 > (l + r) * 37 && l * 100 < (l + r) * 63);
        }
    range__finder_reset(&f, 0);
}

static void test_hot_key(void **state)
{
    (void)state;
    g_seed = seed_from_env(13);
    uint64_t x = mix(g_seed), rng = mix(g_seed + 7);
    range__split_finder f;
    range__finder_init(&f, 0);
    size_t len = 0;
    /* every request on one row: no key, however many */
    for (int i = 0; i < 20000; i++)
        point(&f, 42, &rng);
    CHECK(range__finder_key(&f, &len) == NULL);
    CHECK(len == 0);
    /* the row, plus 10% elsewhere: every split leaves >= 90% on one side */
    range__finder_reset(&f, 0);
    for (int i = 0; i < 20000; i++) {
        uint64_t r = rnd(&x);
        point(&f, r % 10 == 0 ? (int)((r >> 8) % 1000) : 42, &rng);
    }
    CHECK(range__finder_key(&f, &len) == NULL);
    /* two equally hot rows: split between them (at the upper one) */
    range__finder_reset(&f, 0);
    for (int i = 0; i < 20000; i++)
        point(&f, rnd(&x) % 2 ? 100 : 700, &rng);
    const uint8_t *key = range__finder_key(&f, &len);
    CHECK(key != NULL && key_number(key, len) == 700);
    range__finder_reset(&f, 0);
}

static void test_spans(void **state)
{
    (void)state;
    g_seed = seed_from_env(14);
    uint64_t x = mix(g_seed), rng = mix(g_seed + 9);
    range__split_finder f;
    range__finder_init(&f, 0);
    size_t len = 0;
    /* every request a scan over most of the range: any split cuts them */
    for (int i = 0; i < 5000; i++) {
        int a = (int)(rnd(&x) % 100);
        span(&f, a, 900 + a, &rng);
    }
    CHECK(range__finder_key(&f, &len) == NULL);
    /* short scans spread over the range: a key splits them evenly */
    range__finder_reset(&f, 0);
    for (int i = 0; i < 5000; i++) {
        int a = (int)(rnd(&x) % 990);
        span(&f, a, a + 10, &rng);
    }
    const uint8_t *key = range__finder_key(&f, &len);
    CHECK(key != NULL);
    int k = key_number(key, len);
    CHECK(k >= 350 && k <= 650);
    /* the counting itself: candidate k0500 */
    range__split_finder g;
    range__finder_init(&g, 0);
    point(&g, 500, &rng); /* the sample, counted nowhere */
    span(&g, 100, 500, &rng);  /* ends at the key: left */
    span(&g, 500, 600, &rng);  /* starts at it: right */
    span(&g, 499, 501, &rng);  /* cut: contained */
    point(&g, 499, &rng);      /* left */
    range_span open_end = {.start = (const uint8_t *)"k0100", .start_len = 5};
    range__finder_record(&g, &open_end, &rng); /* to +infinity: contained */
    CHECK(g.n_samples == 6 && g.samples[0].key_len == 5);
    CHECK(g.samples[0].left == 2 && g.samples[0].right == 1 && g.samples[0].contained == 2);
    /* an empty start key (the key space's) is never sampled */
    range_span all = {.start = NULL, .start_len = 0};
    range__finder_record(&g, &all, &rng);
    CHECK(g.n_samples == 6 && g.count == 7);
    range__finder_reset(&g, 0);
    range__finder_reset(&f, 0);
}

/* Windows: the suggestion of a past window lasts one more window. */
static void test_windows(void **state)
{
    (void)state;
    g_seed = seed_from_env(15);
    uint64_t x = mix(g_seed), rng = mix(g_seed + 11);
    range__load l;
    int64_t t0 = 1000 * SEC;
    range__load_init(&l, t0);
    base_buf key = {0};
    CHECK(range__load_split_key(&l, t0, &key) == RANGE_NOT_FOUND);
    for (int i = 0; i < 3000; i++) {
        char k[8];
        key_of((int)(rnd(&x) % 1000), k);
        range_span sp = {.start = (const uint8_t *)k, .start_len = 5, .point = true};
        range__load_record(&l, false, &sp, t0 + i * (SEC / 1000), &rng);
    }
    CHECK(range__load_split_key(&l, t0 + 5 * SEC, &key) == RANGE_OK);
    int k = key_number(key.data, key.len);
    CHECK(k >= 300 && k <= 700);
    /* one request in the next window: the previous one still answers */
    char k1[8];
    key_of(3, k1);
    range_span sp = {.start = (const uint8_t *)k1, .start_len = 5, .point = true};
    range__load_record(&l, true, &sp, t0 + RANGE_LOADSPLIT_WINDOW_NS + SEC, &rng);
    CHECK(range__load_split_key(&l, t0 + RANGE_LOADSPLIT_WINDOW_NS + 2 * SEC, &key) == RANGE_OK);
    /* two windows on: gone */
    CHECK(range__load_split_key(&l, t0 + 3 * RANGE_LOADSPLIT_WINDOW_NS, &key) ==
          RANGE_NOT_FOUND);
    CHECK(key.len == 0);
    /* a long idle spell, then a request: both windows start over */
    range__load_record(&l, true, &sp, t0 + 10 * RANGE_LOADSPLIT_WINDOW_NS, &rng);
    CHECK(l.prev.n_samples == 0 && l.cur.n_samples == 1);
    range__load_free(&l);
    base_buf_free(&key);
}

static void test_oom(void **state)
{
    (void)state;
    uint64_t rng = 3;
    for (long fail_at = 0; fail_at < 8; fail_at++) {
        range__split_finder f;
        range__finder_init(&f, 0);
        base_alloc_fail_after(fail_at);
        for (int i = 0; i < 30; i++)
            point(&f, i, &rng);
        base_alloc_fail_after(-1);
        CHECK(f.n_samples == (size_t)fail_at); /* the rest skipped, nothing broken */
        for (int i = 0; i < 200; i++)
            point(&f, i % 50, &rng);
        range__finder_reset(&f, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rates),   cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_skewed),  cmocka_unit_test(test_hot_key),
        cmocka_unit_test(test_spans),   cmocka_unit_test(test_windows),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
