/*
** Tests for encoding/: the memcmp order of encoded keys must equal SQLite's
** ORDER BY order (checked against a real in-memory SQLite table), decoding
** must round-trip, and malformed bytes must be rejected without crashing.
**
** Seeded: set MERIDIAN_TEST_SEED=<n> to replay; the seed is printed on
** every failure.
*/
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "encoding/encoding.h"

#define TUPLES_PER_ARITY 4000
#define COLUMNS_MAX 3
#define BYTES_MAX 6
#define FUZZ_ROUNDS 100000

static uint64_t g_seed = 20261122;
static uint64_t g_rng;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint64_t rng_below(uint64_t n) { return rng_next() % n; }

static void rng_reset(uint64_t salt) { g_rng = g_seed * 1000003u + salt; }

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            print_error("seed %" PRIu64 " (MERIDIAN_TEST_SEED to replay): ", g_seed);      \
            print_error(__VA_ARGS__);                                                     \
            print_error("\n");                                                            \
            fail_msg("check failed: %s", #cond);                                          \
        }                                                                                 \
    } while (0)

/* ---- test values (own their bytes) --------------------------------------- */

typedef struct tv {
    enc_type type;
    int64_t i;
    double r;
    size_t len;
    uint8_t buf[BYTES_MAX];
} tv;

static enc_value tv_value(const tv *t) {
    enc_value v;
    memset(&v, 0, sizeof v);
    v.type = t->type;
    if (t->type == ENC_INTEGER) v.u.i = t->i;
    if (t->type == ENC_REAL) v.u.r = t->r;
    if (t->type == ENC_TEXT || t->type == ENC_BLOB) {
        v.u.bytes.data = t->buf;
        v.u.bytes.len = t->len;
    }
    return v;
}

static const int64_t int_specials[] = {
    0, 1, -1, 2, -2, 3, 42, -42, 127, 128, 255, 256, -255, -256, 1000000,
    INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1,
    (INT64_C(1) << 53), (INT64_C(1) << 53) + 1, (INT64_C(1) << 53) - 1,
    -(INT64_C(1) << 53), -(INT64_C(1) << 53) - 1, -(INT64_C(1) << 53) + 1,
    (INT64_C(1) << 62), -(INT64_C(1) << 62), (INT64_C(1) << 62) + 1,
    INT64_C(9223372036854774784), INT64_C(9223372036854774785), /* near 2^63 - 1024 */
    INT64_C(9223372036854775296), -INT64_C(9223372036854775296),
    INT64_C(4611686018427387903),
};

static double real_specials[] = {
    0.0, -0.0, 1.0, -1.0, 1.5, -1.5, 0.5, -0.5, 2.0, 0.1, -0.1, 42.0, 1e300, -1e300, 1e-300,
    9007199254740992.0,   /* 2^53 */
    9007199254740994.0,   /* 2^53 + 2 */
    9007199254740991.0,   /* 2^53 - 1 */
    -9007199254740992.0,
    9223372036854775808.0,  /* 2^63 */
    9223372036854774784.0,  /* the double below 2^63 */
    -9223372036854775808.0, /* -2^63 == INT64_MIN */
    -9223372036854777856.0, /* the double below -2^63 */
    18446744073709551616.0, /* 2^64 */
    4.9406564584124654e-324, -4.9406564584124654e-324, 2.2250738585072014e-308,
    2.2250738585072009e-308, DBL_MAX, -DBL_MAX,
    0, 0, 0, /* +inf, -inf, NaN: set at runtime */
};

static void tv_bytes(tv *t, enc_type type) {
    static const uint8_t alphabet[] = {0x00, 0x01, 'a', 'b', 0x7f, 0x80, 0xff};
    t->type = type;
    t->len = rng_below(5);
    for (size_t i = 0; i < t->len; i++) t->buf[i] = alphabet[rng_below(sizeof alphabet)];
}

static void tv_random(tv *t) {
    memset(t, 0, sizeof *t);
    size_t n = BASE_ARRAY_LEN(real_specials);
    real_specials[n - 3] = INFINITY;
    real_specials[n - 2] = -INFINITY;
    real_specials[n - 1] = NAN;
    switch (rng_below(14)) {
    case 0:
        t->type = ENC_NULL;
        break;
    case 1:
        t->type = ENC_INTEGER;
        t->i = (int64_t)rng_below(9) - 4;
        break;
    case 2:
        t->type = ENC_INTEGER;
        t->i = int_specials[rng_below(BASE_ARRAY_LEN(int_specials))];
        break;
    case 3: { /* random magnitude */
        t->type = ENC_INTEGER;
        uint64_t m = rng_next() >> rng_below(64);
        t->i = (int64_t)m;
        if (rng_below(2)) t->i = (int64_t)((uint64_t)0 - m);
        break;
    }
    case 4:
        t->type = ENC_REAL;
        t->r = (double)((int)rng_below(33) - 16) / 4.0;
        break;
    case 5:
        t->type = ENC_REAL;
        t->r = real_specials[rng_below(n)];
        break;
    case 6: /* integral real equal to an int special (when representable) */
        t->type = ENC_REAL;
        t->r = (double)int_specials[rng_below(BASE_ARRAY_LEN(int_specials))];
        break;
    case 7: { /* any double from random bits (may be NaN: SQLite makes it NULL) */
        t->type = ENC_REAL;
        uint64_t bits = rng_next();
        memcpy(&t->r, &bits, sizeof bits);
        break;
    }
    case 8: { /* a few ulps around 2^53, 2^62, +-2^63 */
        static const double bases[] = {9007199254740992.0, 4611686018427387904.0,
                                       9223372036854775808.0, -9223372036854775808.0, 1.0};
        t->type = ENC_REAL;
        t->r = bases[rng_below(BASE_ARRAY_LEN(bases))];
        int steps = (int)rng_below(4);
        double toward = rng_below(2) ? INFINITY : -INFINITY;
        for (int s = 0; s < steps; s++) t->r = nextafter(t->r, toward);
        break;
    }
    case 9: { /* ints a few units around 2^53, 2^62, +-2^63 */
        static const int64_t bases[] = {INT64_C(1) << 53, INT64_C(1) << 62, INT64_MAX,
                                        INT64_MIN, -(INT64_C(1) << 53)};
        t->type = ENC_INTEGER;
        int64_t b = bases[rng_below(BASE_ARRAY_LEN(bases))];
        int64_t d = (int64_t)rng_below(5);
        t->i = b >= 0 ? b - d : b + d;
        break;
    }
    case 10: { /* random subnormal or tiny */
        t->type = ENC_REAL;
        uint64_t bits = rng_next() & ((UINT64_C(1) << 52) - 1);
        if (rng_below(2)) bits |= UINT64_C(1) << 63;
        memcpy(&t->r, &bits, sizeof bits);
        break;
    }
    case 11:
    case 12:
        tv_bytes(t, ENC_TEXT);
        break;
    default:
        tv_bytes(t, ENC_BLOB);
        break;
    }
}

/* What decoding must give back for t: NaN -> NULL, zero and integral reals
** within int64 -> INTEGER, everything else unchanged. */
static tv tv_normalized(const tv *t) {
    tv n = *t;
    if (t->type == ENC_REAL) {
        if (isnan(t->r)) {
            n.type = ENC_NULL;
        } else if (t->r == floor(t->r) && t->r >= -9223372036854775808.0 &&
                   t->r < 9223372036854775808.0) {
            n.type = ENC_INTEGER;
            n.i = (int64_t)t->r;
        }
    }
    return n;
}

static int tv_same(const tv *a, const enc_value *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case ENC_NULL:
        return 1;
    case ENC_INTEGER:
        return a->i == b->u.i;
    case ENC_REAL:
        return memcmp(&a->r, &b->u.r, sizeof a->r) == 0;
    default:
        return a->len == b->u.bytes.len && b->u.bytes.data != NULL &&
               (a->len == 0 || memcmp(a->buf, b->u.bytes.data, a->len) == 0);
    }
}

static void encode_value(base_buf *out, const tv *t) {
    enc_value v = tv_value(t);
    assert_int_equal(enc_key_append(out, &v), ENC_OK);
}

/* ---- the SQLite property test -------------------------------------------- */

typedef struct row {
    int64_t id;
    tv cols[COLUMNS_MAX];
    base_buf key;
} row;

static int key_cmp(const uint8_t *a, size_t la, const uint8_t *b, size_t lb) {
    size_t n = BASE_MIN(la, lb);
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0) return c;
    return la < lb ? -1 : la > lb;
}

static int row_cmp(const void *pa, const void *pb) {
    const row *a = pa, *b = pb;
    int c = key_cmp(a->key.data, a->key.len, b->key.data, b->key.len);
    if (c != 0) return c;
    return a->id < b->id ? -1 : a->id > b->id;
}

static void bind_tv(sqlite3_stmt *st, int idx, const tv *t) {
    int rc = SQLITE_OK;
    switch (t->type) {
    case ENC_NULL:
        rc = sqlite3_bind_null(st, idx);
        break;
    case ENC_INTEGER:
        rc = sqlite3_bind_int64(st, idx, t->i);
        break;
    case ENC_REAL:
        rc = sqlite3_bind_double(st, idx, t->r);
        break;
    case ENC_TEXT: /* t->buf is never NULL, so "" stays '' (not NULL) */
        rc = sqlite3_bind_text(st, idx, (const char *)t->buf, (int)t->len, SQLITE_TRANSIENT);
        break;
    case ENC_BLOB:
        rc = sqlite3_bind_blob(st, idx, t->buf, (int)t->len, SQLITE_TRANSIENT);
        break;
    }
    assert_int_equal(rc, SQLITE_OK);
}

static void print_row(const char *what, const row *r) {
    base_buf f = {0};
    assert_int_equal(enc_key_format(r->key.data, r->key.len, &f), ENC_OK);
    print_error("  %s: id %" PRId64 " key %s\n", what, r->id, (const char *)f.data);
    base_buf_free(&f);
}

static void check_order_against_sqlite(int arity, uint64_t salt) {
    rng_reset(salt);
    row *rows = calloc(TUPLES_PER_ARITY, sizeof *rows);
    assert_non_null(rows);
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL, *sel = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    /* No declared types: no affinity, values are stored exactly as bound. */
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, c1, c2, c3)", NULL,
                                  NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?,?,?,?)", -1, &ins, NULL),
                     SQLITE_OK);
    for (int n = 0; n < TUPLES_PER_ARITY; n++) {
        row *r = &rows[n];
        r->id = n + 1;
        /* Shared prefixes: often copy the leading columns of an earlier row. */
        int copy = n > 0 && rng_below(3) == 0 ? 1 + (int)rng_below((uint64_t)arity) : 0;
        const row *src = n > 0 ? &rows[rng_below((uint64_t)n)] : NULL;
        for (int c = 0; c < arity; c++) {
            if (c < copy)
                r->cols[c] = src->cols[c];
            else
                tv_random(&r->cols[c]);
        }
        assert_int_equal(enc_key_prefix(&r->key, 104, 1), ENC_OK);
        for (int c = 0; c < arity; c++) encode_value(&r->key, &r->cols[c]);
        assert_int_equal(sqlite3_bind_int64(ins, 1, r->id), SQLITE_OK);
        for (int c = 0; c < COLUMNS_MAX; c++) {
            if (c < arity)
                bind_tv(ins, 2 + c, &r->cols[c]);
            else
                assert_int_equal(sqlite3_bind_null(ins, 2 + c), SQLITE_OK);
        }
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        assert_int_equal(sqlite3_reset(ins), SQLITE_OK);
    }
    qsort(rows, TUPLES_PER_ARITY, sizeof *rows, row_cmp);

    /* SQLite's order, with its own peer groups (equality) as a dense rank. */
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT id, dense_rank() OVER (ORDER BY c1, c2, c3) "
                                        "FROM t ORDER BY c1, c2, c3, id",
                                        -1, &sel, NULL),
                     SQLITE_OK);
    int64_t rank = 0;
    for (int n = 0; n < TUPLES_PER_ARITY; n++) {
        assert_int_equal(sqlite3_step(sel), SQLITE_ROW);
        int64_t id = sqlite3_column_int64(sel, 0);
        int64_t sqlite_rank = sqlite3_column_int64(sel, 1);
        if (n == 0 || row_cmp(&(row){.key = rows[n].key, .id = 0},
                              &(row){.key = rows[n - 1].key, .id = 0}) != 0)
            rank++;
        if (id != rows[n].id || sqlite_rank != rank) {
            print_error("arity %d position %d: sqlite id %" PRId64 " rank %" PRId64
                        ", ours id %" PRId64 " rank %" PRId64 "\n",
                        arity, n, id, sqlite_rank, rows[n].id, rank);
            if (n > 0) print_row("ours[n-1]", &rows[n - 1]);
            print_row("ours[n]  ", &rows[n]);
            for (int m = 0; m < TUPLES_PER_ARITY; m++)
                if (rows[m].id == id) print_row("sqlite[n]", &rows[m]);
        }
        CHECK(id == rows[n].id && sqlite_rank == rank, "order differs from SQLite (arity %d)",
              arity);

        /* enc_value_compare agrees with memcmp of the encodings. */
        if (n > 0) {
            int c = 0;
            for (int k = 0; k < arity && c == 0; k++) {
                enc_value a = tv_value(&rows[n - 1].cols[k]), b = tv_value(&rows[n].cols[k]);
                c = enc_value_compare(&a, &b);
            }
            int kc = key_cmp(rows[n - 1].key.data, rows[n - 1].key.len, rows[n].key.data,
                             rows[n].key.len);
            CHECK((c < 0) == (kc < 0) && (c == 0) == (kc == 0),
                  "enc_value_compare disagrees at position %d", n);
        }
    }
    assert_int_equal(sqlite3_step(sel), SQLITE_DONE);
    /* The workload must actually exercise ties (equal groups). */
    CHECK(rank < TUPLES_PER_ARITY, "no equal tuples generated (arity %d)", arity);

    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    for (int n = 0; n < TUPLES_PER_ARITY; n++) base_buf_free(&rows[n].key);
    free(rows);
}

static void test_order_matches_sqlite_1col(void **state) {
    (void)state;
    check_order_against_sqlite(1, 1);
}
static void test_order_matches_sqlite_2col(void **state) {
    (void)state;
    check_order_against_sqlite(2, 2);
}
static void test_order_matches_sqlite_3col(void **state) {
    (void)state;
    check_order_against_sqlite(3, 3);
}

/* ---- explicit cases -------------------------------------------------------- */

static void enc1(base_buf *b, enc_value v) {
    base_buf_reset(b);
    assert_int_equal(enc_key_append(b, &v), ENC_OK);
}
#define INTV(x) ((enc_value){.type = ENC_INTEGER, .u.i = (x)})
#define REALV(x) ((enc_value){.type = ENC_REAL, .u.r = (x)})

static int cmp_values(enc_value a, enc_value b) {
    base_buf x = {0}, y = {0};
    enc1(&x, a);
    enc1(&y, b);
    int c = key_cmp(x.data, x.len, y.data, y.len);
    base_buf_free(&x);
    base_buf_free(&y);
    return c < 0 ? -1 : c > 0;
}

static void test_numbers_explicit(void **state) {
    (void)state;
    assert_int_equal(cmp_values(INTV(1), REALV(1.0)), 0);
    assert_int_equal(cmp_values(INTV(0), REALV(-0.0)), 0);
    assert_int_equal(cmp_values(REALV(0.0), REALV(-0.0)), 0);
    assert_int_equal(cmp_values(INTV(1), REALV(1.5)), -1);
    assert_int_equal(cmp_values(REALV(1.5), INTV(2)), -1);
    assert_int_equal(cmp_values(INTV(-2), REALV(-1.5)), -1);
    assert_int_equal(cmp_values(INTV(INT64_MAX), REALV(9223372036854775807.0)), -1); /* 2^63 */
    assert_int_equal(cmp_values(INTV(INT64_MIN), REALV(-9223372036854775808.0)), 0);
    assert_int_equal(cmp_values(INTV((INT64_C(1) << 53) + 1), REALV(9007199254740992.0)), 1);
    assert_int_equal(cmp_values(INTV(INT64_MAX), REALV(INFINITY)), -1);
    assert_int_equal(cmp_values(INTV(INT64_MIN), REALV(-INFINITY)), 1);
    assert_int_equal(cmp_values(REALV(-DBL_MAX), REALV(-INFINITY)), 1);
    assert_int_equal(cmp_values(REALV(4.9406564584124654e-324), INTV(0)), 1);
    assert_int_equal(cmp_values(REALV(-4.9406564584124654e-324), INTV(0)), -1);
    assert_int_equal(cmp_values(REALV(NAN), (enc_value){.type = ENC_NULL}), 0);
    uint8_t t = 'a';
    enc_value text = {.type = ENC_TEXT, .u.bytes = {&t, 1}};
    enc_value blob = {.type = ENC_BLOB, .u.bytes = {&t, 1}};
    assert_int_equal(cmp_values(REALV(INFINITY), text), -1);
    assert_int_equal(cmp_values(text, blob), -1);
    /* A number never takes more than ENC_NUMBER_BYTES_MAX bytes. */
    base_buf b = {0};
    enc1(&b, INTV(INT64_MAX));
    assert_true(b.len <= ENC_NUMBER_BYTES_MAX);
    enc1(&b, INTV(42));
    assert_int_equal(b.len, 4);
    base_buf_free(&b);
}

/* ---- round trips ------------------------------------------------------------ */

static void test_round_trip(void **state) {
    (void)state;
    rng_reset(10);
    base_buf key = {0}, again = {0}, scratch = {0};
    for (int n = 0; n < 20000; n++) {
        tv t;
        tv_random(&t);
        base_buf_reset(&key);
        encode_value(&key, &t);
        enc_value out;
        size_t used = 0;
        base_buf_reset(&scratch);
        assert_int_equal(enc_key_decode_value(key.data, key.len, &scratch, &out, &used), ENC_OK);
        tv want = tv_normalized(&t);
        CHECK(used == key.len, "consumed %zu of %zu", used, key.len);
        CHECK(tv_same(&want, &out), "round trip %d: type %d -> %d", n, (int)t.type,
              (int)out.type);
        base_buf_reset(&again);
        assert_int_equal(enc_key_append(&again, &out), ENC_OK);
        CHECK(key_cmp(key.data, key.len, again.data, again.len) == 0, "re-encode differs");
    }
    base_buf_free(&key);
    base_buf_free(&again);
    base_buf_free(&scratch);
}

static void test_decode_values_and_prefix(void **state) {
    (void)state;
    rng_reset(11);
    base_buf key = {0}, scratch = {0};
    for (int n = 0; n < 2000; n++) {
        tv cols[COLUMNS_MAX];
        int arity = (int)rng_below(COLUMNS_MAX + 1);
        uint32_t table = (uint32_t)rng_next(), index = (uint32_t)rng_next();
        base_buf_reset(&key);
        assert_int_equal(enc_key_prefix(&key, table, index), ENC_OK);
        for (int c = 0; c < arity; c++) {
            tv_random(&cols[c]);
            encode_value(&key, &cols[c]);
        }
        uint32_t t2, i2;
        size_t used;
        assert_int_equal(enc_key_decode_prefix(key.data, key.len, &t2, &i2, &used), ENC_OK);
        assert_int_equal(used, ENC_PREFIX_BYTES);
        assert_int_equal(t2, table);
        assert_int_equal(i2, index);
        enc_value vals[COLUMNS_MAX];
        size_t count = 99;
        base_buf_reset(&scratch);
        assert_int_equal(enc_key_decode_values(key.data + used, key.len - used, &scratch, vals,
                                               COLUMNS_MAX, &count),
                         ENC_OK);
        assert_int_equal(count, arity);
        for (int c = 0; c < arity; c++) {
            tv want = tv_normalized(&cols[c]);
            CHECK(tv_same(&want, &vals[c]), "decode_values column %d", c);
        }
        if (arity > 0) {
            size_t before = scratch.len;
            assert_int_equal(enc_key_decode_values(key.data + used, key.len - used, &scratch,
                                                   vals, (size_t)arity - 1, &count),
                             ENC_ERR_RANGE);
            assert_int_equal(scratch.len, before);
        }
    }
    uint32_t t2, i2;
    size_t used;
    uint8_t short_key[7] = {0};
    assert_int_equal(enc_key_decode_prefix(short_key, sizeof short_key, &t2, &i2, &used),
                     ENC_ERR_CORRUPT);
    base_buf_free(&key);
    base_buf_free(&scratch);
}

/* ---- prefix end and key next ---------------------------------------------- */

static int has_prefix(const base_buf *k, const uint8_t *p, size_t n) {
    return k->len >= n && (n == 0 || memcmp(k->data, p, n) == 0);
}

static void test_prefix_end(void **state) {
    (void)state;
    base_buf a = {0}, b = {0}, end = {0};
    /* Table/index boundaries. */
    assert_int_equal(enc_key_prefix(&a, 104, 1), ENC_OK);
    assert_int_equal(enc_prefix_end(a.data, a.len, &end), ENC_OK);
    assert_int_equal(enc_key_prefix(&b, 104, 2), ENC_OK);
    assert_int_equal(key_cmp(end.data, end.len, b.data, b.len), 0);
    base_buf_reset(&a), base_buf_reset(&b), base_buf_reset(&end);
    assert_int_equal(enc_key_prefix(&a, 1, UINT32_MAX), ENC_OK);
    assert_int_equal(enc_prefix_end(a.data, a.len, &end), ENC_OK);
    assert_int_equal(end.len, 4);
    assert_memory_equal(end.data, "\x00\x00\x00\x02", 4);
    base_buf_reset(&end);
    assert_int_equal(enc_prefix_end((const uint8_t *)"ab\xff\xff", 4, &end), ENC_OK);
    assert_int_equal(end.len, 2);
    assert_memory_equal(end.data, "ac", 2);
    size_t before = end.len;
    assert_int_equal(enc_prefix_end((const uint8_t *)"\xff\xff", 2, &end), ENC_ERR_CORRUPT);
    assert_int_equal(enc_prefix_end(NULL, 0, &end), ENC_ERR_CORRUPT);
    assert_int_equal(end.len, before);

    /* Property: for column prefixes P of random keys, a key K has prefix P
    ** exactly when P <= K < prefix_end(P); and K < key_next(K) with nothing
    ** from the set strictly between. */
    rng_reset(20);
    enum { KEYS = 600 };
    base_buf *keys = calloc(KEYS, sizeof *keys);
    size_t *first_col_end = calloc(KEYS, sizeof *first_col_end);
    assert_non_null(keys);
    assert_non_null(first_col_end);
    for (int n = 0; n < KEYS; n++) {
        tv t;
        assert_int_equal(enc_key_prefix(&keys[n], 104, (uint32_t)rng_below(2)), ENC_OK);
        tv_random(&t);
        if (n > 0 && rng_below(2)) { /* share a first column with an earlier key */
            const base_buf *src = &keys[rng_below((uint64_t)n)];
            base_buf_reset(&keys[n]);
            size_t fce = first_col_end[src - keys];
            assert_int_equal(base_buf_append(&keys[n], src->data, fce), ENC_OK);
        } else {
            encode_value(&keys[n], &t);
        }
        first_col_end[n] = keys[n].len;
        tv_random(&t);
        encode_value(&keys[n], &t);
    }
    for (int n = 0; n < KEYS; n++) {
        const base_buf *p = &keys[n];
        size_t plen = rng_below(2) ? first_col_end[n] : ENC_PREFIX_BYTES;
        base_buf_reset(&end);
        assert_int_equal(enc_prefix_end(p->data, plen, &end), ENC_OK);
        base_buf next = {0};
        assert_int_equal(enc_key_next(p->data, p->len, &next), ENC_OK);
        assert_true(key_cmp(p->data, p->len, next.data, next.len) < 0);
        for (int m = 0; m < KEYS; m++) {
            const base_buf *k = &keys[m];
            int in_range = key_cmp(p->data, plen, k->data, k->len) <= 0 &&
                           key_cmp(k->data, k->len, end.data, end.len) < 0;
            CHECK(in_range == has_prefix(k, p->data, plen), "prefix_end wrong: keys %d, %d", n,
                  m);
            CHECK(!(key_cmp(p->data, p->len, k->data, k->len) < 0 &&
                    key_cmp(k->data, k->len, next.data, next.len) < 0),
                  "a key lies between key %d and its key_next", n);
        }
        base_buf_free(&next);
    }
    for (int n = 0; n < KEYS; n++) base_buf_free(&keys[n]);
    free(keys);
    free(first_col_end);
    base_buf_free(&a);
    base_buf_free(&b);
    base_buf_free(&end);
}

/* ---- corrupt input ------------------------------------------------------- */

/* Decodes all of key (exactly len bytes on the heap, so ASan sees any read
** past the end) as prefix + values. Every value that decodes must re-encode
** to the same bytes. Returns 1 if the whole key decoded. */
static int decode_all(const uint8_t *bytes, size_t len, int with_prefix) {
    uint8_t *key = malloc(len ? len : 1);
    assert_non_null(key);
    if (len) memcpy(key, bytes, len);
    base_buf scratch = {0}, again = {0}, fmt = {0};
    size_t k = 0;
    int ok = 1;
    if (with_prefix) {
        uint32_t t, i;
        if (enc_key_decode_prefix(key, len, &t, &i, &k) != ENC_OK) ok = 0;
    }
    for (int guard = 0; ok && k < len; guard++) {
        assert_true(guard <= (int)len);
        enc_value v;
        size_t used = 0;
        base_buf_reset(&scratch);
        int rc = enc_key_decode_value(key + k, len - k, &scratch, &v, &used);
        if (rc != ENC_OK) {
            assert_int_equal(rc, ENC_ERR_CORRUPT);
            assert_int_equal(scratch.len, 0);
            ok = 0;
            break;
        }
        assert_true(used >= 1 && used <= len - k);
        base_buf_reset(&again);
        assert_int_equal(enc_key_append(&again, &v), ENC_OK);
        CHECK(again.len == used && memcmp(again.data, key + k, used) == 0,
              "non-canonical bytes accepted at offset %zu", k);
        k += used;
    }
    assert_int_equal(enc_key_format(key, len, &fmt), ENC_OK);
    assert_true(fmt.len > 0 && fmt.data[fmt.len] == '\0');
    base_buf_free(&scratch);
    base_buf_free(&again);
    base_buf_free(&fmt);
    free(key);
    return ok;
}

static void test_corrupt_truncations(void **state) {
    (void)state;
    rng_reset(30);
    base_buf key = {0};
    for (int n = 0; n < 4000; n++) {
        size_t bounds[COLUMNS_MAX + 2];
        int nb = 0;
        base_buf_reset(&key);
        assert_int_equal(enc_key_prefix(&key, (uint32_t)rng_next(), 1), ENC_OK);
        bounds[nb++] = key.len;
        int arity = 1 + (int)rng_below(COLUMNS_MAX);
        for (int c = 0; c < arity; c++) {
            tv t;
            tv_random(&t);
            encode_value(&key, &t);
            bounds[nb++] = key.len;
        }
        assert_true(decode_all(key.data, key.len, 1));
        for (size_t cut = 0; cut < key.len; cut++) {
            int at_boundary = 0;
            for (int b = 0; b < nb; b++) at_boundary |= bounds[b] == cut;
            CHECK(decode_all(key.data, cut, 1) == at_boundary,
                  "truncation to %zu of key %d decoded wrongly", cut, n);
        }
    }
    base_buf_free(&key);
}

static void test_corrupt_random_bytes(void **state) {
    (void)state;
    rng_reset(31);
    static const uint8_t interesting[] = {0x00, 0x01, 0x05, 0x10, 0x11, 0x12, 0x13,
                                          0x14, 0x20, 0x30, 0xfe, 0xff, 0x04, 0x2c};
    uint8_t buf[32];
    base_buf key = {0};
    for (int n = 0; n < FUZZ_ROUNDS; n++) {
        size_t len = rng_below(sizeof buf + 1);
        for (size_t i = 0; i < len; i++)
            buf[i] = rng_below(2) ? interesting[rng_below(sizeof interesting)] : (uint8_t)rng_next();
        (void)decode_all(buf, len, 0);
        (void)decode_all(buf, len, 1);
        /* Mutations of a valid key: flip a bit, change or drop a byte. */
        base_buf_reset(&key);
        for (int c = 0; c < 3; c++) {
            tv t;
            tv_random(&t);
            encode_value(&key, &t);
        }
        size_t at = rng_below(key.len);
        switch (rng_below(3)) {
        case 0:
            key.data[at] ^= (uint8_t)(1u << rng_below(8));
            break;
        case 1:
            key.data[at] = (uint8_t)rng_next();
            break;
        default:
            memmove(key.data + at, key.data + at + 1, key.len - at - 1);
            key.len--;
            break;
        }
        (void)decode_all(key.data, key.len, 0);
    }
    base_buf_free(&key);
}

static int decodes(const char *bytes, size_t len) {
    base_buf scratch = {0};
    enc_value v;
    size_t used;
    int rc = enc_key_decode_value((const uint8_t *)bytes, len, &scratch, &v, &used);
    base_buf_free(&scratch);
    return rc == ENC_OK && used == len ? 1 : rc == ENC_OK ? 2 : 0;
}

static void test_corrupt_explicit(void **state) {
    (void)state;
    /* 42 = 2^5 * 1.3125: exponent 5 + 1100 = 0x0451, fraction .0101 -> 0x50. */
    assert_int_equal(decodes("\x13\x04\x51\x50", 4), 1);
    assert_int_equal(decodes("\x13\x04\x51\x51", 4), 0);         /* more bit, no byte */
    assert_int_equal(decodes("\x13\x04\x51\x51\x00", 5), 0);     /* trailing zero byte */
    assert_int_equal(decodes("\x13\x04\x51", 3), 0);             /* no mantissa */
    assert_int_equal(decodes("\x13\x00\x00\x00", 4), 0);         /* exponent too small */
    assert_int_equal(decodes("\x13\xff\xff\x00", 4), 0);         /* exponent too large */
    assert_int_equal(decodes("\x13\x04\x4c\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00", 13), 0);
    /* 2^100 * (1 + 2^-62): not an int64, too many bits for a double. */
    assert_int_equal(decodes("\x13\x04\xb0\x01\x01\x01\x01\x01\x01\x01\x01\x04", 12), 0);
    assert_int_equal(decodes("\x13\x04\xb0\x00", 4), 1); /* 2^100 alone is a REAL */
    assert_int_equal(decodes("\x00", 1), 0);             /* unknown tags */
    assert_int_equal(decodes("\xff", 1), 0);
    assert_int_equal(decodes("\x21", 1), 0);
    assert_int_equal(decodes("", 0), 0);
    assert_int_equal(decodes("\x20" "ab", 3), 0);         /* no terminator */
    assert_int_equal(decodes("\x20" "ab\x00", 4), 0);
    assert_int_equal(decodes("\x20" "ab\x00\x02", 5), 0); /* bad escape */
    assert_int_equal(decodes("\x20" "a\x00\xff" "b\x00\x01", 7), 1);
    assert_int_equal(decodes("\x30\x00\x01", 3), 1);

    base_buf scratch = {0};
    enc_value v;
    size_t used;
    assert_int_equal(enc_key_decode_value((const uint8_t *)"\x20" "a\x00\xff" "b\x00\x01", 7,
                                          &scratch, &v, &used),
                     ENC_OK);
    assert_int_equal(v.type, ENC_TEXT);
    assert_int_equal(v.u.bytes.len, 3);
    assert_memory_equal(v.u.bytes.data, "a\0b", 3);
    base_buf_reset(&scratch);
    assert_int_equal(enc_key_decode_value((const uint8_t *)"\x30\x00\x01", 3, &scratch, &v, &used),
                     ENC_OK);
    assert_int_equal(v.type, ENC_BLOB);
    assert_int_equal(v.u.bytes.len, 0);
    assert_non_null(v.u.bytes.data); /* never NULL: sqlite3_result_blob(NULL) is SQL NULL */
    base_buf_free(&scratch);
}

/* ---- formatting ---------------------------------------------------------- */

static void check_format(const uint8_t *key, size_t len, const char *want) {
    base_buf f = {0};
    assert_int_equal(enc_key_format(key, len, &f), ENC_OK);
    assert_non_null(f.data);
    assert_string_equal((const char *)f.data, want);
    assert_int_equal(f.len, strlen(want));
    base_buf_free(&f);
}

static void test_format(void **state) {
    (void)state;
    base_buf k = {0}, end = {0};
    assert_int_equal(enc_key_prefix(&k, 104, 1), ENC_OK);
    check_format(k.data, k.len, "/104/1");
    enc_value v = INTV(42);
    assert_int_equal(enc_key_append(&k, &v), ENC_OK);
    v = (enc_value){.type = ENC_TEXT, .u.bytes = {(const uint8_t *)"ada", 3}};
    assert_int_equal(enc_key_append(&k, &v), ENC_OK);
    check_format(k.data, k.len, "/104/1/42/'ada'");
    /* The end of the /104/1/42 prefix does not decode: printed raw. */
    assert_int_equal(enc_prefix_end(k.data, 12, &end), ENC_OK);
    check_format(end.data, end.len, "/104/1/?13045151");

    base_buf_reset(&k);
    assert_int_equal(enc_key_prefix(&k, 7, 0), ENC_OK);
    enc_value vals[] = {
        {.type = ENC_NULL},
        INTV(-7),
        REALV(1.5),
        REALV(-0.0),
        REALV(0.1),
        REALV(1e300),
        REALV(-INFINITY),
        INTV(INT64_MIN),
        {.type = ENC_TEXT, .u.bytes = {(const uint8_t *)"it's\n\\", 6}},
        {.type = ENC_BLOB, .u.bytes = {(const uint8_t *)"\x00\xff", 2}},
        {.type = ENC_TEXT, .u.bytes = {NULL, 0}},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(vals); i++)
        assert_int_equal(enc_key_append(&k, &vals[i]), ENC_OK);
    check_format(k.data, k.len,
                 "/7/0/NULL/-7/1.5/0/0.1/1e+300/-Inf/-9223372036854775808/'it''s\\x0a\\x5c'/"
                 "x'00ff'/''");
    check_format(NULL, 0, "/Min");
    check_format((const uint8_t *)"\x01\x02", 2, "/?0102");
    base_buf_free(&k);
    base_buf_free(&end);
}

/* ---- out of memory --------------------------------------------------------- */

static void test_out_of_memory(void **state) {
    (void)state;
    base_buf k = {0}, scratch = {0}, f = {0};
    enc_value text = {.type = ENC_TEXT, .u.bytes = {(const uint8_t *)"a\0b", 3}};
    base_alloc_fail_after(0);
    assert_int_equal(enc_key_append(&k, &text), ENC_ERR_NOMEM);
    assert_int_equal(enc_key_prefix(&k, 1, 2), ENC_ERR_NOMEM);
    assert_int_equal(k.len, 0);
    base_alloc_fail_after(-1);
    assert_int_equal(enc_key_prefix(&k, 1, 2), ENC_OK);
    assert_int_equal(enc_key_append(&k, &text), ENC_OK);

    enc_value v;
    size_t used;
    base_alloc_fail_after(0);
    assert_int_equal(enc_key_decode_value(k.data + 8, k.len - 8, &scratch, &v, &used),
                     ENC_ERR_NOMEM);
    assert_int_equal(scratch.len, 0);
    base_alloc_fail_after(-1);

    /* Formatting: fail at every allocation in turn until it succeeds. */
    int rc = ENC_ERR_NOMEM;
    for (long n = 0; rc == ENC_ERR_NOMEM; n++) {
        assert_true(n < 100);
        base_alloc_fail_after(n);
        rc = enc_key_format(k.data, k.len, &f);
        base_alloc_fail_after(-1);
        if (rc == ENC_ERR_NOMEM) assert_int_equal(f.len, 0);
    }
    assert_int_equal(rc, ENC_OK);
    assert_string_equal((const char *)f.data, "/1/2/'a\\x00b'");
    base_buf_free(&k);
    base_buf_free(&scratch);
    base_buf_free(&f);
}

int main(void) {
    const char *s = getenv("MERIDIAN_TEST_SEED");
    if (s && *s) g_seed = strtoull(s, NULL, 10);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_matches_sqlite_1col),
        cmocka_unit_test(test_order_matches_sqlite_2col),
        cmocka_unit_test(test_order_matches_sqlite_3col),
        cmocka_unit_test(test_numbers_explicit),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_decode_values_and_prefix),
        cmocka_unit_test(test_prefix_end),
        cmocka_unit_test(test_corrupt_truncations),
        cmocka_unit_test(test_corrupt_random_bytes),
        cmocka_unit_test(test_corrupt_explicit),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
