/*
** tests/range/test_intent.c: the bytes of intents and transaction records
** (range/intent.c): round trips, every truncation and a trailing byte
** refused, seeded random corruption (never a crash or a read outside the
** input under ASan; MERIDIAN_SEED=N replays), the order of escaped anchors
** in record keys (prefixes, 0x00 and 0xFF bytes) against a brute-force
** comparison, raw-key decoding and descriptor checks, intent spans, and the
** record transition rule. Also the command codec's raw writes (version 2).
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
#include "range/eval_int.h"
#include "range/intent_int.h"
#include "range/range.h"

static uint64_t g_seed;

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "\n  %s:%d: %s\n  replay: MERIDIAN_SEED=%llu\n", __FILE__,     \
                    __LINE__, #cond, (unsigned long long)g_seed);                          \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *c = malloc(n > 0 ? n : 1);
    assert_non_null(c);
    if (n > 0)
        memcpy(c, p, n);
    return c;
}

static bool same_bytes(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

/* memcmp order, shorter first on a common prefix */
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* ---- intents ------------------------------------------------------------------ */

static void test_intent_roundtrip(void **state)
{
    (void)state;
    const uint8_t anchor[] = {'a', 0, 'b'};
    const uint8_t value[] = "the value";
    range__intent samples[3] = {
        {.txn_id = 1, .nonce = 2, .ts = {1700000000000000000LL, 3}, .anchor = anchor,
         .anchor_len = 3, .value = value, .value_len = 9},
        {.txn_id = UINT64_MAX, .nonce = UINT64_MAX, .ts = HLC_MAX, .anchor = anchor,
         .anchor_len = 1, .tombstone = true},
        {.txn_id = 7, .ts = HLC_ZERO, .anchor = value, .anchor_len = 9, .value = value,
         .value_len = 0},
    };
    for (int i = 0; i < 3; i++) {
        base_buf b = {0};
        range__intent d;
        assert_int_equal(base_buf_append(&b, "x", 1), 0);
        assert_int_equal(range__intent_encode(&samples[i], &b), RANGE_OK);
        assert_int_equal(range__intent_decode(b.data + 1, b.len - 1, &d), RANGE_OK);
        assert_true(d.txn_id == samples[i].txn_id && d.nonce == samples[i].nonce);
        assert_int_equal(hlc_compare(d.ts, samples[i].ts), 0);
        assert_true(same_bytes(d.anchor, d.anchor_len, samples[i].anchor, samples[i].anchor_len));
        assert_true(d.tombstone == samples[i].tombstone);
        if (!d.tombstone)
            assert_true(same_bytes(d.value, d.value_len, samples[i].value, samples[i].value_len));
        else
            assert_null(d.value);
        /* every strict prefix and a trailing byte are refused */
        for (size_t len = 0; len < b.len - 1; len++) {
            uint8_t *c = dup_exact(b.data + 1, len);
            assert_int_equal(range__intent_decode(len ? c : NULL, len, &d), RANGE_ERR_CORRUPT);
            free(c);
        }
        assert_int_equal(base_buf_append_byte(&b, 0), 0);
        assert_int_equal(range__intent_decode(b.data + 1, b.len - 1, &d), RANGE_ERR_CORRUPT);
        base_buf_free(&b);
    }
    /* the encoder refuses what the decoder would */
    base_buf b = {0};
    range__intent bad = samples[0];
    bad.txn_id = 0;
    assert_int_equal(range__intent_encode(&bad, &b), RANGE_ERR_INVALID);
    bad = samples[0];
    bad.anchor_len = 0;
    assert_int_equal(range__intent_encode(&bad, &b), RANGE_ERR_INVALID);
    bad = samples[0];
    bad.value = NULL;
    assert_int_equal(range__intent_encode(&bad, &b), RANGE_ERR_INVALID);
    bad.tombstone = true; /* a tombstone's value is ignored */
    assert_int_equal(range__intent_encode(&bad, &b), RANGE_OK);
    assert_int_equal(range__intent_decode(b.data, b.len, &bad), RANGE_OK);
    assert_true(bad.tombstone);
    base_buf_free(&b);
}

static void test_intent_garbage(void **state)
{
    (void)state;
    const char *env = getenv("MERIDIAN_SEED");
    g_seed = env != NULL ? strtoull(env, NULL, 10) : (uint64_t)base_realtime_ns();
    printf("  seed %llu (MERIDIAN_SEED=N replays)\n", (unsigned long long)g_seed);
    fflush(stdout);
    uint64_t rng = g_seed;
    const uint8_t anchor[] = "anchor-key";
    range__intent in = {.txn_id = 99, .nonce = 5, .ts = {123456789, 1}, .anchor = anchor,
                        .anchor_len = 10, .value = anchor, .value_len = 6};
    base_buf enc = {0};
    assert_int_equal(range__intent_encode(&in, &enc), RANGE_OK);
    uint8_t rec_bytes[RANGE__RECORD_SIZE];
    range__record rec = {RANGE_TXN_PENDING, 99, -3, HLC_ZERO, {5, 5}, 0, NULL, 0};
    assert_int_equal(range__record_encode(&rec, rec_bytes), RANGE_OK);
    size_t accepted = 0;
    for (int round = 0; round < 20000; round++) {
        bool is_rec = round % 2 == 1;
        const uint8_t *src = is_rec ? rec_bytes : enc.data;
        size_t n = is_rec ? sizeof(rec_bytes) : enc.len;
        uint8_t *c = dup_exact(src, n);
        for (int k = 0; k < 1 + (int)(rng_next(&rng) % 3); k++)
            c[rng_next(&rng) % n] = (uint8_t)rng_next(&rng);
        size_t len = rng_next(&rng) % 8 == 0 ? (size_t)(rng_next(&rng) % (n + 1)) : n;
        if (is_rec) {
            range__record d;
            int rc = range__record_decode(len ? c : NULL, len, &d);
            CHECK(rc == RANGE_OK || rc == RANGE_ERR_CORRUPT);
            if (rc == RANGE_OK) {
                uint8_t again[RANGE__RECORD_SIZE];
                CHECK(range__record_encode(&d, again) == RANGE_OK);
                /* a version 1 record (shorter) comes back as version 2 */
                CHECK(len == RANGE__RECORD_SIZE ? memcmp(again, c, len) == 0
                                                : c[0] == 1 && len == RANGE__RECORD_SIZE_V1 &&
                                                      memcmp(again + 1, c + 1, len - 1) == 0);
                accepted++;
            }
        } else {
            range__intent d;
            int rc = range__intent_decode(len ? c : NULL, len, &d);
            CHECK(rc == RANGE_OK || rc == RANGE_ERR_CORRUPT);
            if (rc == RANGE_OK) {
                base_buf again = {0};
                CHECK(range__intent_encode(&d, &again) == RANGE_OK);
                CHECK(same_bytes(again.data, again.len, c, len));
                base_buf_free(&again);
                accepted++;
            }
        }
        free(c);
    }
    printf("  %zu of 20000 corrupted inputs decoded (and re-encoded to the same bytes)\n",
           accepted);
    base_buf_free(&enc);
}

/* ---- records ------------------------------------------------------------------ */

static void test_record_roundtrip(void **state)
{
    (void)state;
    range__record samples[3] = {
        {RANGE_TXN_PENDING, 1, 0, HLC_ZERO, {1700000000000000000LL, 0}, 0, NULL, 0},
        {RANGE_TXN_COMMITTED, UINT64_MAX, INT64_MIN, HLC_MAX, HLC_MAX, INT64_MAX, NULL, 0},
        {RANGE_TXN_ABORTED, 42, INT64_MAX, {1, 2}, HLC_ZERO, 1700000000000000000LL, NULL, 0},
    };
    for (int i = 0; i < 3; i++) {
        uint8_t b[RANGE__RECORD_SIZE];
        range__record d;
        assert_int_equal(range__record_encode(&samples[i], b), RANGE_OK);
        assert_int_equal(range__record_decode(b, sizeof(b), &d), RANGE_OK);
        assert_int_equal(d.status, samples[i].status);
        assert_true(d.txn_id == samples[i].txn_id && d.priority == samples[i].priority);
        assert_int_equal(hlc_compare(d.commit_ts, samples[i].commit_ts), 0);
        assert_int_equal(hlc_compare(d.heartbeat, samples[i].heartbeat), 0);
        assert_true(d.final_wall_ns == samples[i].final_wall_ns);
        for (size_t len = 0; len < sizeof(b); len++)
            assert_int_equal(range__record_decode(b, len, &d), RANGE_ERR_CORRUPT);
        uint8_t longer[RANGE__RECORD_SIZE + 1];
        memcpy(longer, b, sizeof(b));
        longer[sizeof(b)] = 0;
        assert_int_equal(range__record_decode(longer, sizeof(longer), &d), RANGE_ERR_CORRUPT);
        b[0] = RANGE__RECORD_VERSION + 1;
        assert_int_equal(range__record_decode(b, sizeof(b), &d), RANGE_ERR_CORRUPT);
        b[0] = RANGE__RECORD_VERSION;
        b[1] = RANGE_TXN_ABORTED + 1;
        assert_int_equal(range__record_decode(b, sizeof(b), &d), RANGE_ERR_CORRUPT);
    }
    uint8_t b[RANGE__RECORD_SIZE];
    range__record bad = samples[0];
    bad.final_wall_ns = -1;
    assert_int_equal(range__record_encode(&bad, b), RANGE_ERR_INVALID);
    bad = samples[0];
    bad.txn_id = 0;
    assert_int_equal(range__record_encode(&bad, b), RANGE_ERR_INVALID);
    bad = samples[0];
    bad.status = (range_txn_status)3;
    assert_int_equal(range__record_encode(&bad, b), RANGE_ERR_INVALID);
}

/* ---- raw keys ----------------------------------------------------------------- */

/* Version 2 added final_wall (the age sweep, docs/txn.md 6.1); version 1
** records of older stores still decode, with final_wall 0 (never swept). */
static void test_record_version1(void **state)
{
    (void)state;
    range__record rec = {RANGE_TXN_ABORTED, 77, -9, HLC_ZERO, {123, 4}, 987654321, NULL, 0};
    uint8_t v2[RANGE__RECORD_SIZE], v1[RANGE__RECORD_SIZE];
    range__record d;
    assert_int_equal(range__record_encode(&rec, v2), RANGE_OK);
    assert_int_equal(v2[0], 2);
    assert_int_equal(range__record_decode(v2, sizeof(v2), &d), RANGE_OK);
    assert_true(d.final_wall_ns == 987654321);
    /* the version 1 bytes: the same without the last field */
    memcpy(v1, v2, sizeof(v1));
    v1[0] = 1;
    assert_int_equal(range__record_decode(v1, RANGE__RECORD_SIZE_V1, &d), RANGE_OK);
    assert_int_equal(d.status, RANGE_TXN_ABORTED);
    assert_true(d.txn_id == 77 && d.priority == -9 && d.final_wall_ns == 0);
    assert_int_equal(hlc_compare(d.heartbeat, rec.heartbeat), 0);
    /* each version has exactly its own length */
    assert_int_equal(range__record_decode(v1, sizeof(v1), &d), RANGE_ERR_CORRUPT);
    assert_int_equal(range__record_decode(v2, RANGE__RECORD_SIZE_V1, &d), RANGE_ERR_CORRUPT);
    /* a negative final_wall is corrupt */
    memset(v2 + RANGE__RECORD_SIZE_V1, 0xFF, 8);
    assert_int_equal(range__record_decode(v2, sizeof(v2), &d), RANGE_ERR_CORRUPT);
    /* re-encoded, a version 1 record becomes version 2 with final_wall 0 */
    assert_int_equal(range__record_decode(v1, RANGE__RECORD_SIZE_V1, &d), RANGE_OK);
    assert_int_equal(range__record_encode(&d, v2), RANGE_OK);
    assert_int_equal(v2[0], RANGE__RECORD_VERSION);
    assert_memory_equal(v2 + 1, v1 + 1, RANGE__RECORD_SIZE_V1 - 1);
}

/* Is key inside one of spans[0..n)? */
static bool covered(const range_span *spans, size_t n, const uint8_t *key, size_t key_len)
{
    for (size_t i = 0; i < n; i++)
        if (range__span_contains(&spans[i], key, key_len))
            return true;
    return false;
}

/* Version 3: the participant spans of a COMMITTED record (docs/txn.md 6.1):
** merged and bounded, kept through the codec; versions 1 and 2 still read
** (no spans); a bad spans section is corrupt. */
static void test_record_spans(void **state)
{
    (void)state;
    base_buf sec = {0}, enc = {0};
    range_span out[RANGE_TXN_RECORD_SPANS_MAX];
    size_t n = 0;
    /* unsorted; overlapping, touching, a point inside a span, an open end */
    const range_span in[] = {
        {(const uint8_t *)"m", 1, (const uint8_t *)"p", 1, false},
        {(const uint8_t *)"b", 1, (const uint8_t *)"d", 1, false},
        {(const uint8_t *)"c", 1, NULL, 0, true},
        {(const uint8_t *)"d", 1, (const uint8_t *)"e", 1, false},
        {(const uint8_t *)"x", 1, NULL, 0, true},
        {(const uint8_t *)"z", 1, NULL, 0, false},
        {(const uint8_t *)"zz", 2, NULL, 0, true},
    };
    assert_int_equal(range__record_spans_build(in, 7, &sec), RANGE_OK);
    assert_int_equal(range__record_spans_decode(sec.data, sec.len, out, &n), RANGE_OK);
    assert_int_equal(n, 4); /* [b, e), [m, p), x, [z, +inf) */
    assert_true(out[0].start_len == 1 && out[0].start[0] == 'b' && out[0].end_len == 1 &&
                out[0].end[0] == 'e' && !out[0].point);
    assert_true(out[1].start[0] == 'm' && out[1].end[0] == 'p');
    assert_true(out[2].point && out[2].start[0] == 'x');
    assert_true(out[3].start[0] == 'z' && out[3].end_len == 0 && !out[3].point);
    for (size_t i = 0; i < 7; i++)
        assert_true(covered(out, n, in[i].start, in[i].start_len));
    assert_false(covered(out, n, (const uint8_t *)"f", 1));
    assert_int_equal(range__record_spans_build(in, 0, &sec), RANGE_ERR_INVALID);

    /* more than RANGE_TXN_RECORD_SPANS_MAX: neighbours merged, every key covered */
    enum { MANY = 1000 };
    static char keys[MANY][8];
    static range_span many[MANY];
    for (int i = 0; i < MANY; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%05d", (i * 7919) % MANY); /* unsorted */
        many[i] = (range_span){(const uint8_t *)keys[i], strlen(keys[i]), NULL, 0, true};
    }
    assert_int_equal(range__record_spans_build(many, MANY, &sec), RANGE_OK);
    assert_int_equal(range__record_spans_decode(sec.data, sec.len, out, &n), RANGE_OK);
    assert_true(n > 0 && n <= RANGE_TXN_RECORD_SPANS_MAX);
    for (int i = 0; i < MANY; i++)
        assert_true(covered(out, n, (const uint8_t *)keys[i], strlen(keys[i])));
    /* a point merged as a group's last: its end is the key's successor */
    assert_true(covered(out, n, (const uint8_t *)"k00999", 6));
    assert_false(covered(out, n, (const uint8_t *)"k00999\x01", 7));

    /* long keys: fewer, covering spans until the section fits its bytes */
    enum { LONG = 64, LONG_KEY = 4096 };
    uint8_t *big = base_calloc(LONG, 2 * LONG_KEY);
    range_span *longs = base_calloc(LONG, sizeof(*longs));
    assert_non_null(big);
    assert_non_null(longs);
    for (int i = 0; i < LONG; i++) {
        uint8_t *k = big + (size_t)i * 2 * LONG_KEY;
        memset(k, 'a' + i % 26, 2 * LONG_KEY);
        k[0] = (uint8_t)i;
        k[LONG_KEY] = (uint8_t)i;
        k[LONG_KEY + LONG_KEY - 1] = 0xFF; /* end > start */
        longs[i] = (range_span){k, LONG_KEY, k + LONG_KEY, LONG_KEY, false};
    }
    assert_int_equal(range__record_spans_build(longs, LONG, &sec), RANGE_OK);
    assert_true(sec.len <= RANGE__RECORD_SPANS_BYTES_MAX);
    assert_int_equal(range__record_spans_decode(sec.data, sec.len, out, &n), RANGE_OK);
    assert_true(n < LONG);
    for (int i = 0; i < LONG; i++)
        assert_true(covered(out, n, longs[i].start, longs[i].start_len));
    base_free(big);
    base_free(longs);

    /* a group ending at a point of the longest key: its end after the key
    ** would be too long to decode, so the group is written open-ended
    ** (66 groups, paired: the last pair is [e063, the longest key]) */
    enum { EDGE = RANGE_TXN_RECORD_SPANS_MAX + 2 };
    uint8_t *maxk = base_calloc(1, STORAGE_KEY_SIZE_MAX);
    assert_non_null(maxk);
    memset(maxk, 'q', STORAGE_KEY_SIZE_MAX);
    static range_span edge[EDGE];
    static char edge_keys[EDGE][8];
    edge[0] = (range_span){(const uint8_t *)"a", 1, (const uint8_t *)"b", 1, false};
    for (size_t i = 1; i + 1 < EDGE; i++) {
        snprintf(edge_keys[i], sizeof(edge_keys[i]), "e%03zu", i - 1);
        edge[i] = (range_span){(const uint8_t *)edge_keys[i], 4, NULL, 0, true};
    }
    edge[EDGE - 1] = (range_span){maxk, STORAGE_KEY_SIZE_MAX, NULL, 0, true};
    assert_int_equal(range__record_spans_build(edge, EDGE, &sec), RANGE_OK);
    assert_int_equal(range__record_spans_decode(sec.data, sec.len, out, &n), RANGE_OK);
    for (size_t i = 0; i < EDGE; i++)
        assert_true(covered(out, n, edge[i].start, edge[i].start_len));
    base_free(maxk);

    /* the record: version 3 with them, version 2 without */
    assert_int_equal(range__record_spans_build(in, 7, &sec), RANGE_OK);
    range__record rec = {RANGE_TXN_COMMITTED, 9, 1, {500, 1}, {400, 0}, 123, sec.data, sec.len};
    range__record d;
    assert_int_equal(range__record_encode_buf(&rec, &enc), RANGE_OK);
    assert_int_equal(enc.data[0], RANGE__RECORD_VERSION_SPANS);
    assert_int_equal(enc.len, RANGE__RECORD_SIZE + sec.len);
    assert_int_equal(range__record_decode(enc.data, enc.len, &d), RANGE_OK);
    assert_true(d.status == RANGE_TXN_COMMITTED && d.txn_id == 9 && d.final_wall_ns == 123);
    assert_int_equal(hlc_compare(d.commit_ts, rec.commit_ts), 0);
    assert_int_equal(d.spans_len, sec.len);
    assert_memory_equal(d.spans, sec.data, sec.len);
    /* the fixed encoder writes version 2: the same record, without spans */
    uint8_t v2[RANGE__RECORD_SIZE];
    assert_int_equal(range__record_encode(&d, v2), RANGE_OK);
    assert_int_equal(v2[0], RANGE__RECORD_VERSION);
    assert_memory_equal(v2 + 1, enc.data + 1, RANGE__RECORD_SIZE - 1);
    assert_int_equal(range__record_decode(v2, sizeof(v2), &d), RANGE_OK);
    assert_true(d.spans == NULL && d.spans_len == 0);
    base_buf_reset(&enc);
    assert_int_equal(range__record_encode_buf(&d, &enc), RANGE_OK);
    assert_int_equal(enc.len, RANGE__RECORD_SIZE);
    /* corrupt: no section, a bad one, trailing bytes; an invalid one refused */
    base_buf_reset(&enc);
    assert_int_equal(range__record_encode_buf(&rec, &enc), RANGE_OK);
    assert_int_equal(range__record_decode(enc.data, RANGE__RECORD_SIZE, &d), RANGE_ERR_CORRUPT);
    assert_int_equal(range__record_decode(enc.data, enc.len - 1, &d), RANGE_ERR_CORRUPT);
    assert_int_equal(base_buf_append_byte(&enc, 0), 0);
    assert_int_equal(range__record_decode(enc.data, enc.len, &d), RANGE_ERR_CORRUPT);
    enc.data[RANGE__RECORD_SIZE] = 0; /* zero spans */
    assert_int_equal(range__record_decode(enc.data, enc.len - 1, &d), RANGE_ERR_CORRUPT);
    uint8_t bad_sec[] = {1, 0x03, 1, 'a'}; /* point and open at once */
    rec.spans = bad_sec;
    rec.spans_len = sizeof(bad_sec);
    assert_int_equal(range__record_encode_buf(&rec, &enc), RANGE_ERR_INVALID);
    base_buf_free(&sec);
    base_buf_free(&enc);
}

static void test_record_key_order(void **state)
{
    (void)state;
    /* anchors with prefixes of each other, 0x00, 0x01 and 0xFF bytes */
    static const struct { const char *p; size_t n; } anchors[] = {
        {"a", 1}, {"a\0", 2}, {"a\0\0", 3}, {"a\0\1", 3}, {"a\1", 2}, {"a\xff", 2},
        {"ab", 2}, {"\0", 1}, {"\0\xff", 2}, {"\xff", 1}, {"\xff\0", 2}, {"b", 1},
        {"a\0\xff", 3}, {"\1", 1}, {"\0\0", 2},
    };
    size_t n = BASE_ARRAY_LEN(anchors);
    uint64_t ids[2] = {1, UINT64_MAX};
    base_buf ka = {0}, kb = {0}, dec = {0};
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            for (int x = 0; x < 2; x++) {
                for (int y = 0; y < 2; y++) {
                    const uint8_t *a = (const uint8_t *)anchors[i].p;
                    const uint8_t *b = (const uint8_t *)anchors[j].p;
                    assert_int_equal(range__record_key(a, anchors[i].n, ids[x], &ka), RANGE_OK);
                    assert_int_equal(range__record_key(b, anchors[j].n, ids[y], &kb), RANGE_OK);
                    int want = key_cmp(a, anchors[i].n, b, anchors[j].n);
                    if (want == 0)
                        want = ids[x] < ids[y] ? -1 : ids[x] > ids[y] ? 1 : 0;
                    assert_int_equal(key_cmp(ka.data, ka.len, kb.data, kb.len), want);
                    /* prefix-free: no record key is a proper prefix of another */
                    if (ka.len < kb.len)
                        assert_false(memcmp(ka.data, kb.data, ka.len) == 0);
                }
            }
        }
        uint64_t id = 0;
        const uint8_t *a = (const uint8_t *)anchors[i].p;
        assert_int_equal(range__record_key(a, anchors[i].n, 77, &ka), RANGE_OK);
        assert_int_equal(range__record_key_decode(ka.data, ka.len, &dec, &id), RANGE_OK);
        assert_int_equal(id, 77);
        assert_true(same_bytes(dec.data, dec.len, a, anchors[i].n));
        /* truncated record keys are refused */
        for (size_t len = 0; len < ka.len; len++)
            assert_int_equal(range__record_key_decode(ka.data, len, &dec, &id), RANGE_ERR_CORRUPT);
    }
    /* bad escapes, a missing terminator, an empty anchor, an intent key */
    const char *bad[] = {"range/t/a\0\2" "12345678", "range/t/a" "12345678",
                         "range/t/\0\1" "12345678", "range/i/a\0\1" "12345678"};
    size_t bad_len[] = {19, 17, 18, 19};
    for (size_t i = 0; i < 4; i++) {
        uint64_t id;
        assert_int_equal(range__record_key_decode((const uint8_t *)bad[i], bad_len[i], &dec, &id),
                         RANGE_ERR_CORRUPT);
    }
    assert_int_equal(range__record_key(NULL, 0, 1, &ka), RANGE_ERR_INVALID);
    assert_int_equal(range__intent_key(NULL, 0, &ka), RANGE_ERR_INVALID);
    base_buf_free(&ka);
    base_buf_free(&kb);
    base_buf_free(&dec);
}

static void test_intent_keys_and_spans(void **state)
{
    (void)state;
    base_buf k = {0}, s = {0}, e = {0};
    const uint8_t *user;
    size_t user_len;
    assert_int_equal(range__intent_key((const uint8_t *)"k\0x", 3, &k), RANGE_OK);
    assert_int_equal(k.len, RANGE_INTENT_PREFIX_LEN + 3);
    assert_true(range__intent_key_user(k.data, k.len, &user, &user_len));
    assert_true(same_bytes(user, user_len, (const uint8_t *)"k\0x", 3));
    assert_false(range__intent_key_user(k.data, RANGE_INTENT_PREFIX_LEN, &user, &user_len));
    assert_false(range__intent_key_user((const uint8_t *)"range/t/kx", 10, &user, &user_len));
    /* spans: a point covers exactly its intent key */
    range_span pt = {(const uint8_t *)"k\0x", 3, NULL, 0, true};
    assert_int_equal(range__intent_span(&pt, &s, &e), RANGE_OK);
    assert_true(key_cmp(s.data, s.len, k.data, k.len) <= 0 && key_cmp(k.data, k.len, e.data, e.len) < 0);
    base_buf k2 = {0};
    assert_int_equal(range__intent_key((const uint8_t *)"k\0x\0", 4, &k2), RANGE_OK);
    assert_true(key_cmp(k2.data, k2.len, e.data, e.len) >= 0);
    /* an open span covers every intent key after its start and no record key */
    range_span open = {(const uint8_t *)"b", 1, NULL, 0, false};
    assert_int_equal(range__intent_span(&open, &s, &e), RANGE_OK);
    assert_int_equal(range__intent_key((const uint8_t *)"\xff\xff\xff", 3, &k2), RANGE_OK);
    assert_true(key_cmp(k2.data, k2.len, e.data, e.len) < 0);
    assert_int_equal(range__record_key((const uint8_t *)"b", 1, 1, &k2), RANGE_OK);
    assert_true(key_cmp(k2.data, k2.len, s.data, s.len) < 0 ||
                key_cmp(k2.data, k2.len, e.data, e.len) >= 0);
    /* a bounded span [b, c) */
    range_span bc = {(const uint8_t *)"b", 1, (const uint8_t *)"c", 1, false};
    assert_int_equal(range__intent_span(&bc, &s, &e), RANGE_OK);
    assert_int_equal(range__intent_key((const uint8_t *)"bzz", 3, &k2), RANGE_OK);
    assert_true(key_cmp(s.data, s.len, k2.data, k2.len) <= 0 && key_cmp(k2.data, k2.len, e.data, e.len) < 0);
    assert_int_equal(range__intent_key((const uint8_t *)"c", 1, &k2), RANGE_OK);
    assert_true(key_cmp(k2.data, k2.len, e.data, e.len) >= 0);
    /* descriptor checks: by user key or anchor; other raw keys are outside */
    range_descriptor d;
    memset(&d, 0, sizeof(d));
    d.range_id = 2;
    d.start_key = (uint8_t *)"b";
    d.start_len = 1;
    d.end_key = (uint8_t *)"d";
    d.end_len = 1;
    bool inside = true;
    assert_int_equal(range__intent_key((const uint8_t *)"c", 1, &k2), RANGE_OK);
    assert_int_equal(range__raw_key_inside(&d, k2.data, k2.len, &inside), RANGE_OK);
    assert_true(inside);
    assert_int_equal(range__intent_key((const uint8_t *)"d", 1, &k2), RANGE_OK);
    assert_int_equal(range__raw_key_inside(&d, k2.data, k2.len, &inside), RANGE_OK);
    assert_false(inside);
    assert_int_equal(range__record_key((const uint8_t *)"b\0", 2, 9, &k2), RANGE_OK);
    assert_int_equal(range__raw_key_inside(&d, k2.data, k2.len, &inside), RANGE_OK);
    assert_true(inside);
    assert_int_equal(range__record_key((const uint8_t *)"a\xff", 2, 9, &k2), RANGE_OK);
    assert_int_equal(range__raw_key_inside(&d, k2.data, k2.len, &inside), RANGE_OK);
    assert_false(inside);
    assert_int_equal(range__raw_key_inside(&d, (const uint8_t *)"range/r/x", 9, &inside), RANGE_OK);
    assert_false(inside);
    base_buf_free(&k);
    base_buf_free(&k2);
    base_buf_free(&s);
    base_buf_free(&e);
}

static void test_transition_rule(void **state)
{
    (void)state;
    range__record pending = {RANGE_TXN_PENDING, 5, 0, HLC_ZERO, {100, 0}, 0, NULL, 0};
    range__record committed = {RANGE_TXN_COMMITTED, 5, 0, {200, 0}, {100, 0}, 0, NULL, 0};
    range__record aborted = {RANGE_TXN_ABORTED, 5, 0, HLC_ZERO, {100, 0}, 0, NULL, 0};
    range__record abort_seen = {RANGE_TXN_ABORTED, 5, 0, HLC_ZERO, {100, 0}, 0, NULL, 0};
    range__record abort_old = {RANGE_TXN_ABORTED, 5, 0, HLC_ZERO, {99, 0}, 0, NULL, 0};
    range__record abort_absent = {RANGE_TXN_ABORTED, 5, 0, HLC_ZERO, HLC_ZERO, 0, NULL, 0};
    /* absent -> anything */
    assert_true(range__record_transition_ok(NULL, &pending, false));
    assert_true(range__record_transition_ok(NULL, &committed, false));
    assert_true(range__record_transition_ok(NULL, &abort_absent, true));
    /* pending -> anything; a pusher's abort only if nobody heartbeat since */
    assert_true(range__record_transition_ok(&pending, &pending, false));
    assert_true(range__record_transition_ok(&pending, &committed, false));
    assert_true(range__record_transition_ok(&pending, &abort_seen, true));
    assert_false(range__record_transition_ok(&pending, &abort_old, true));
    assert_false(range__record_transition_ok(&pending, &abort_absent, true));
    /* final records never change */
    assert_false(range__record_transition_ok(&committed, &aborted, false));
    assert_false(range__record_transition_ok(&committed, &committed, false));
    assert_false(range__record_transition_ok(&aborted, &committed, false));
    assert_false(range__record_transition_ok(&aborted, &pending, false));
}

/* ---- the command codec's raw writes -------------------------------------------- */

static void test_command_raw_writes(void **state)
{
    (void)state;
    range_write w = {(const uint8_t *)"k", 1, (const uint8_t *)"v", 1, false};
    range_raw_write raw[3] = {
        {(const uint8_t *)"range/i/k", 9, (const uint8_t *)"intent", 6, RANGE_RAW_PUT},
        {(const uint8_t *)"range/i/j", 9, NULL, 0, RANGE_RAW_DELETE},
        {(const uint8_t *)"range/t/x", 9, (const uint8_t *)"", 0, RANGE_RAW_RECORD},
    };
    /* without raw writes: version 1, exactly as before */
    range_command plain = {.txn_id = 1, .seq = 2, .commit_ts = {3, 4}, .writes = &w,
                           .write_count = 1};
    base_buf b = {0};
    assert_int_equal(range_command_encode(&plain, &b), RANGE_OK);
    assert_int_equal(b.data[0], RANGE_CODEC_VERSION);
    base_buf_reset(&b);
    for (int with_writes = 0; with_writes < 2; with_writes++) {
        range_command cmd = plain;
        cmd.write_count = (size_t)with_writes;
        cmd.writes = with_writes ? &w : NULL;
        cmd.raw_writes = raw;
        cmd.raw_write_count = 3;
        base_buf_reset(&b);
        assert_int_equal(range_command_encode(&cmd, &b), RANGE_OK);
        assert_int_equal(b.data[0], RANGE_COMMAND_VERSION_RAW);
        range_command d;
        range_write *ws = NULL;
        assert_int_equal(range_command_decode(b.data, b.len, &d, &ws), RANGE_OK);
        assert_non_null(ws); /* one allocation holds both */
        assert_int_equal(d.write_count, (size_t)with_writes);
        assert_int_equal(d.raw_write_count, 3);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(d.raw_writes[i].kind, raw[i].kind);
            assert_true(same_bytes(d.raw_writes[i].key, d.raw_writes[i].key_len, raw[i].key,
                                   raw[i].key_len));
            if (raw[i].kind != RANGE_RAW_DELETE)
                assert_true(same_bytes(d.raw_writes[i].value, d.raw_writes[i].value_len,
                                       raw[i].value, raw[i].value_len));
        }
        base_free(ws);
        /* truncations and a trailing byte refused, nothing leaked */
        for (size_t len = 0; len < b.len; len++) {
            uint8_t *c = dup_exact(b.data, len);
            assert_int_equal(range_command_decode(len ? c : NULL, len, &d, &ws), RANGE_ERR_CORRUPT);
            assert_null(ws);
            free(c);
        }
        assert_int_equal(base_buf_append_byte(&b, 0), 0);
        assert_int_equal(range_command_decode(b.data, b.len, &d, &ws), RANGE_ERR_CORRUPT);
    }
    /* an unknown kind is refused on both sides */
    range_command cmd = plain;
    range_raw_write odd = raw[0];
    odd.kind = RANGE_RAW_RESOLVE + 1;
    cmd.raw_writes = &odd;
    cmd.raw_write_count = 1;
    assert_int_equal(range_command_encode(&cmd, &b), RANGE_ERR_INVALID);
    base_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intent_roundtrip),  cmocka_unit_test(test_intent_garbage),
        cmocka_unit_test(test_record_roundtrip),  cmocka_unit_test(test_record_version1),
        cmocka_unit_test(test_record_spans),
        cmocka_unit_test(test_record_key_order),
        cmocka_unit_test(test_intent_keys_and_spans), cmocka_unit_test(test_transition_rule),
        cmocka_unit_test(test_command_raw_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
