/*
** tests/server/test_srv_splitq.c: the split queue's pure parts
** (server/srv_splitq.c; docs/operations.md "Automatic splits") over the
** in-memory storage twin: the span of a range that may split (never the
** system span of range 1), which keys may be split points (strictly
** inside, whole SQL keys), the key chosen near the middle of a table's
** rows by bytes (all versions of a row on one side, never the start key,
** a single large row not split), the event reason, the backoff table, the
** debounce by (range, generation), and the node-local settings API. The
** load rule (issue 6): sustained above split_qps_threshold, "hot since"
** per (range, generation), the finder's key cut to a whole SQL key, the
** reason "load 3100 qps > 2500", and the least loaded live voter for the
** right half's lease.
*/
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "encoding/encoding.h"
#include "server/srv_splitq.h"

#define TABLE 105u

/* /table/<table>/<index>[/<v>]; v < 0: none. */
static void row_key(base_buf *out, uint32_t table, uint32_t index, int64_t v) {
    base_buf_reset(out);
    assert_int_equal(enc_key_prefix(out, table, index), ENC_OK);
    if (v >= 0) {
        enc_value ev = {.type = ENC_INTEGER, .u.i = v};
        assert_int_equal(enc_key_append(out, &ev), ENC_OK);
    }
}

/* A descriptor over [start, end) (NULL: the ends of the key space). */
static void desc(range_descriptor *d, const base_buf *start, const base_buf *end) {
    memset(d, 0, sizeof *d);
    d->range_id = 9;
    d->generation = 1;
    d->start_key = start ? start->data : NULL;
    d->start_len = start ? start->len : 0;
    d->end_key = end ? end->data : NULL;
    d->end_len = end ? end->len : 0;
}

static void put(storage_engine *e, const base_buf *key, int64_t ts, size_t value_len) {
    char v[4096];
    assert_true(value_len <= sizeof v);
    memset(v, 'r', value_len);
    storage_batch *b = storage_batch_new();
    assert_non_null(b);
    hlc_timestamp t = {ts, 0};
    assert_int_equal(storage_batch_put(b, key->data, key->len, t, (const uint8_t *)v, value_len),
                     STORAGE_OK);
    assert_int_equal(storage_write(e, b, false), STORAGE_OK);
    storage_batch_free(b);
}

static storage_engine *open_memory(void) {
    storage_engine *e = NULL;
    storage_options o = {.dir = NULL, .create_if_missing = true};
    assert_int_equal(storage_open(&o, &e), STORAGE_OK);
    return e;
}

/* The single integer primary-key value of a row key of TABLE's rows. */
static int64_t key_value(const base_buf *key) {
    uint32_t table = 0, index = 0;
    size_t used = 0;
    assert_int_equal(enc_key_decode_prefix(key->data, key->len, &table, &index, &used), ENC_OK);
    assert_int_equal(table, TABLE);
    assert_int_equal(index, 1);
    base_buf scratch = {0};
    enc_value v[4];
    size_t n = 0;
    assert_int_equal(enc_key_decode_values(key->data + used, key->len - used, &scratch, v, 4, &n),
                     ENC_OK);
    base_buf_free(&scratch);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].type, ENC_INTEGER);
    return v[0].u.i;
}

static void test_span(void **state) {
    (void)state;
    base_buf floor_key = {0}, t105 = {0}, lo = {0}, hi = {0}, sys = {0};
    row_key(&floor_key, SRV_FIRST_TABLE_ID, 0, -1);
    row_key(&t105, TABLE, 0, -1);
    range_descriptor d;
    bool unbounded = false;
    /* range 1: [empty, /table/100): the system span only */
    desc(&d, NULL, &floor_key);
    assert_false(srv__splitq_span(&d, &lo, &hi, &unbounded));
    /* range 2 at bootstrap: [/table/100, +inf) */
    desc(&d, &floor_key, NULL);
    assert_true(srv__splitq_span(&d, &lo, &hi, &unbounded));
    assert_true(unbounded);
    assert_int_equal(lo.len, floor_key.len);
    assert_memory_equal(lo.data, floor_key.data, lo.len);
    /* the whole key space (a range nobody split): from the first table on */
    desc(&d, NULL, NULL);
    assert_true(srv__splitq_span(&d, &lo, &hi, &unbounded));
    assert_memory_equal(lo.data, floor_key.data, floor_key.len);
    /* a system range that ends inside the tables: only the table part */
    assert_int_equal(base_buf_append(&sys, SRV_SYS_PREFIX, SRV_SYS_PREFIX_LEN), 0);
    desc(&d, &sys, &t105);
    assert_true(srv__splitq_span(&d, &lo, &hi, &unbounded));
    assert_false(unbounded);
    assert_memory_equal(lo.data, floor_key.data, floor_key.len);
    assert_int_equal(hi.len, t105.len);
    base_buf_free(&floor_key);
    base_buf_free(&t105);
    base_buf_free(&lo);
    base_buf_free(&hi);
    base_buf_free(&sys);
}

static void test_key_ok(void **state) {
    (void)state;
    base_buf start = {0}, end = {0}, k = {0};
    row_key(&start, TABLE, 0, -1);
    row_key(&end, TABLE + 1, 0, -1);
    range_descriptor d;
    desc(&d, &start, &end);
    row_key(&k, TABLE, 1, 42);
    assert_true(srv__splitq_key_ok(&d, k.data, k.len));
    row_key(&k, TABLE, 2, 7); /* an index entry is one key too */
    assert_true(srv__splitq_key_ok(&d, k.data, k.len));
    assert_false(srv__splitq_key_ok(&d, start.data, start.len)); /* never the start */
    assert_false(srv__splitq_key_ok(&d, end.data, end.len));     /* nor the end */
    row_key(&k, TABLE + 1, 1, 1);                                 /* beyond it */
    assert_false(srv__splitq_key_ok(&d, k.data, k.len));
    assert_false(srv__splitq_key_ok(&d, NULL, 0));
    /* bytes after the prefix that do not decode: not a whole SQL key */
    row_key(&k, TABLE, 1, -1);
    assert_int_equal(base_buf_append(&k, "\xff\xff\xff", 3), 0);
    assert_false(srv__splitq_key_ok(&d, k.data, k.len));
    /* the system span, even inside a range that holds it */
    desc(&d, NULL, &end);
    base_buf_reset(&k);
    assert_int_equal(base_buf_append(&k, SRV_SYS_PREFIX "meta/x", SRV_SYS_PREFIX_LEN + 6), 0);
    assert_false(srv__splitq_key_ok(&d, k.data, k.len));
    row_key(&k, 50, 1, 3); /* a catalog table's id */
    assert_false(srv__splitq_key_ok(&d, k.data, k.len));
    row_key(&k, TABLE, 1, 3);
    assert_true(srv__splitq_key_ok(&d, k.data, k.len));
    base_buf_free(&start);
    base_buf_free(&end);
    base_buf_free(&k);
}

static void test_choose_key(void **state) {
    (void)state;
    storage_engine *e = open_memory();
    base_buf start = {0}, end = {0}, k = {0}, key = {0};
    row_key(&start, TABLE, 0, -1);
    row_key(&end, TABLE + 1, 0, -1);
    range_descriptor d;
    desc(&d, &start, &end);
    char why[128] = "";
    storage_middle_info info;
    /* empty, then a single large row (many versions): nothing to split at */
    assert_int_equal(srv__splitq_choose_key(e, &d, 0, &key, &info, why, sizeof why),
                     SRV_ERR_REFUSED);
    row_key(&k, TABLE, 1, 500);
    for (int ts = 1; ts <= 50; ts++) put(e, &k, ts, 4000);
    assert_int_equal(srv__splitq_choose_key(e, &d, 0, &key, &info, why, sizeof why),
                     SRV_ERR_REFUSED);
    assert_non_null(strstr(why, "fewer than two keys"));
    /* rows 1..1000 of 100 bytes, row 500 with its 50 versions: the split
    ** lands at a row start, and the heavy row stays whole on one side */
    for (int64_t i = 1; i <= 1000; i++) {
        row_key(&k, TABLE, 1, i);
        put(e, &k, 60, 100);
    }
    /* data of another table and system keys outside the span change nothing */
    row_key(&k, TABLE + 1, 1, 1);
    put(e, &k, 1, 4000);
    base_buf_reset(&k);
    assert_int_equal(base_buf_append(&k, SRV_SYS_PREFIX "meta/z", SRV_SYS_PREFIX_LEN + 6), 0);
    put(e, &k, 1, 4000);
    assert_int_equal(srv__splitq_choose_key(e, &d, 0, &key, &info, why, sizeof why), SRV_OK);
    assert_true(srv__splitq_key_ok(&d, key.data, key.len));
    int64_t v = key_value(&key);
    /* row 500 holds 200 KB of the ~310 KB: the key is next to it */
    assert_true(v == 500 || v == 501);
    assert_int_equal(info.keys, 1000);
    /* without the heavy row's weight near the middle: rows 1..1000 evenly */
    storage_close(e);
    e = open_memory();
    for (int64_t i = 1; i <= 1000; i++) {
        row_key(&k, TABLE, 1, i);
        put(e, &k, 60, 100);
        put(e, &k, 61, 100); /* two versions each: they stay together */
    }
    assert_int_equal(srv__splitq_choose_key(e, &d, 0, &key, &info, why, sizeof why), SRV_OK);
    v = key_value(&key);
    assert_true(v >= 495 && v <= 505);
    assert_true(info.left_bytes * 2 <= info.total_bytes + 400);
    assert_true(info.left_bytes * 2 + 400 >= info.total_bytes);
    /* a range that starts at a row: never that row */
    row_key(&start, TABLE, 1, 999);
    desc(&d, &start, &end);
    assert_int_equal(srv__splitq_choose_key(e, &d, 0, &key, &info, why, sizeof why), SRV_OK);
    assert_int_equal(key_value(&key), 1000);
    row_key(&start, TABLE, 1, 1000);
    desc(&d, &start, &end);
    assert_int_equal(srv__splitq_choose_key(e, &d, 0, &key, &info, why, sizeof why),
                     SRV_ERR_REFUSED);
    /* range 1 never splits */
    row_key(&end, SRV_FIRST_TABLE_ID, 0, -1);
    desc(&d, NULL, &end);
    assert_int_equal(srv__splitq_choose_key(e, &d, 0, &key, &info, why, sizeof why),
                     SRV_ERR_REFUSED);
    assert_non_null(strstr(why, "user tables"));
    /* the scan bound: the middle of what was counted */
    row_key(&start, TABLE, 0, -1);
    row_key(&end, TABLE + 1, 0, -1);
    desc(&d, &start, &end);
    assert_int_equal(srv__splitq_choose_key(e, &d, 100 * 2 * (k.len + 12 + 100), &key, &info, why,
                                            sizeof why),
                     SRV_OK);
    assert_true(info.truncated);
    v = key_value(&key);
    assert_true(v >= 45 && v <= 55);
    storage_close(e);
    base_buf_free(&start);
    base_buf_free(&end);
    base_buf_free(&k);
    base_buf_free(&key);
}

static void test_reason(void **state) {
    (void)state;
    char buf[96];
    srv__splitq_reason(70ULL * 1024 * 1024, 64LL * 1024 * 1024, buf, sizeof buf);
    assert_string_equal(buf, "size 70 MiB > 64 MiB");
    srv__splitq_reason(1258291, 256 * 1024, buf, sizeof buf);
    assert_string_equal(buf, "size 1.2 MiB > 256 KiB");
}

static void test_recent(void **state) {
    (void)state;
    srv__splitq q;
    srv__splitq_init(&q);
    const int64_t s = 1000000000;
    assert_false(srv__splitq_resting(&q, 5, 0));
    srv__splitq_remember(&q, 5, 10 * s, 3000);
    assert_true(srv__splitq_resting(&q, 5, 10 * s));
    assert_true(srv__splitq_resting(&q, 5, 13 * s - 1));
    assert_false(srv__splitq_resting(&q, 5, 13 * s));
    assert_false(srv__splitq_resting(&q, 6, 10 * s));
    /* a longer rest is kept, a shorter one does not shorten it */
    srv__splitq_remember(&q, 5, 10 * s, 60000);
    srv__splitq_remember(&q, 5, 11 * s, 1000);
    assert_true(srv__splitq_resting(&q, 5, 69 * s));
    /* a full table forgets what expired, then what expires first */
    for (uint64_t id = 100; id < 100 + SRV_SPLITQ_RECENT_MAX; id++)
        srv__splitq_remember(&q, id, 20 * s, (int64_t)(id - 99) * 1000);
    assert_int_equal(q.n_recent, SRV_SPLITQ_RECENT_MAX);
    assert_true(srv__splitq_resting(&q, 5, 21 * s)); /* until 70 s: kept */
    srv__splitq_remember(&q, 7, 21 * s, 1000);
    assert_true(srv__splitq_resting(&q, 7, 21 * s));
    assert_false(srv__splitq_resting(&q, 100, 20 * s)); /* the first to expire made room */
    assert_true(q.n_recent <= SRV_SPLITQ_RECENT_MAX);
    srv__splitq_stop(&q); /* never started: a no-op */
    srv__splitq_destroy(&q);
}

/* The debounce by (range, generation): a range first seen, or seen at a new
** generation (split, replica change), rests from then; a range no longer
** led here is forgotten. */
static void test_seen(void **state) {
    (void)state;
    srv__splitq q;
    srv__splitq_init(&q);
    const int64_t s = 1000000000;
    uint64_t ids[3] = {7, 3, 12}, gens[3] = {1, 4, 2};
    assert_false(srv__splitq_settled(&q, 7, 100 * s, 3000)); /* never seen */
    assert_int_equal(srv__splitq_note_seen(&q, ids, gens, 3, 10 * s), SRV_OK);
    assert_false(srv__splitq_settled(&q, 7, 12 * s, 3000));
    assert_true(srv__splitq_settled(&q, 7, 13 * s, 3000));
    assert_true(srv__splitq_settled(&q, 3, 13 * s, 3000));
    /* 7 split (generation 2) and a new range 15 from it; 12 no longer led */
    uint64_t ids2[3] = {15, 7, 3}, gens2[3] = {2, 2, 4};
    assert_int_equal(srv__splitq_note_seen(&q, ids2, gens2, 3, 20 * s), SRV_OK);
    assert_false(srv__splitq_settled(&q, 7, 22 * s, 3000));
    assert_false(srv__splitq_settled(&q, 15, 22 * s, 3000));
    assert_true(srv__splitq_settled(&q, 3, 22 * s, 3000)); /* unchanged: since 10 s */
    assert_false(srv__splitq_settled(&q, 12, 100 * s, 3000));
    assert_true(srv__splitq_settled(&q, 7, 23 * s, 3000));
    assert_int_equal(srv__splitq_note_seen(&q, NULL, NULL, 0, 30 * s), SRV_OK);
    assert_false(srv__splitq_settled(&q, 3, 100 * s, 3000));
    srv__splitq_destroy(&q);
}

static void test_settings_api(void **state) {
    (void)state;
    srv_settings s;
    srv_settings_init(&s);
    assert_int_equal(srv_setting_get_int(&s, SQLV_SETTING_RANGE_MAX_BYTES), 64LL * 1024 * 1024);
    assert_true(srv_setting_get_bool(&s, SQLV_SETTING_SPLIT_ENABLED));
    assert_int_equal(srv_setting_get_int(&s, SQLV_SETTINGS_COUNT), 0);
    sqlv_settings v;
    sqlv_settings_defaults(&v);
    v.values[SQLV_SETTING_SPLIT_ENABLED] = 0;
    v.values[SQLV_SETTING_RANGE_MAX_BYTES] = 256 * 1024;
    srv_settings_set_all(&s, &v);
    assert_false(srv_setting_get_bool(&s, SQLV_SETTING_SPLIT_ENABLED));
    assert_int_equal(srv_setting_get_int(&s, SQLV_SETTING_RANGE_MAX_BYTES), 256 * 1024);
    srv_settings_destroy(&s);
}

/* The load rule: due only after sustain_ms above the threshold; a dip below
** starts over; hot since follows the (range, generation) pair. */
static void test_load_due(void **state) {
    (void)state;
    const int64_t s = 1000000000;
    int64_t hot = 0;
    assert_false(srv__splitq_load_due(100, 2500, &hot, 10 * s, 10000));
    assert_int_equal(hot, 0);
    assert_false(srv__splitq_load_due(3100, 2500, &hot, 10 * s, 10000));
    assert_int_equal(hot, 10 * s);
    assert_false(srv__splitq_load_due(3100, 2500, &hot, 19 * s, 10000));
    assert_true(srv__splitq_load_due(2600, 2500, &hot, 20 * s, 10000));
    assert_true(srv__splitq_load_due(2600, 2500, &hot, 25 * s, 10000));
    /* exactly at the threshold is not above it: starts over */
    assert_false(srv__splitq_load_due(2500, 2500, &hot, 26 * s, 10000));
    assert_int_equal(hot, 0);
    assert_false(srv__splitq_load_due(9000, 2500, &hot, 27 * s, 10000));
    assert_false(srv__splitq_load_due(9000, 2500, &hot, 36 * s, 10000));
    assert_true(srv__splitq_load_due(9000, 2500, &hot, 37 * s, 10000));
    /* no threshold, NaN: never */
    hot = 0;
    assert_false(srv__splitq_load_due(9000, 0, &hot, 37 * s, 0));
    assert_false(srv__splitq_load_due(NAN, 2500, &hot, 37 * s, 0));
    /* sustain 0: at once */
    assert_true(srv__splitq_load_due(9000, 2500, &hot, 40 * s, 0));
    /* the seen table keeps hot since while the generation stays */
    srv__splitq q;
    srv__splitq_init(&q);
    uint64_t ids[2] = {4, 9}, gens[2] = {1, 1};
    assert_int_equal(srv__splitq_note_seen(&q, ids, gens, 2, 1 * s), SRV_OK);
    q.seen[0].hot_since_ns = 5 * s; /* range 4 (sorted first) */
    q.seen[1].hot_since_ns = 6 * s;
    gens[1] = 2; /* 9 split (or changed): starts over */
    assert_int_equal(srv__splitq_note_seen(&q, ids, gens, 2, 8 * s), SRV_OK);
    assert_int_equal(q.seen[0].range_id, 4);
    assert_int_equal(q.seen[0].hot_since_ns, 5 * s);
    assert_int_equal(q.seen[1].hot_since_ns, 0);
    srv__splitq_destroy(&q);
}

/* The finder's key as a split point: whole SQL keys only, cut back. */
static void test_align_key(void **state) {
    (void)state;
    base_buf start = {0}, end = {0}, k = {0}, out = {0};
    row_key(&start, TABLE, 0, -1);
    row_key(&end, TABLE + 1, 0, -1);
    range_descriptor d;
    desc(&d, &start, &end);
    row_key(&k, TABLE, 1, 42);
    assert_true(srv__splitq_align_key(&d, k.data, k.len, &out));
    assert_int_equal(out.len, k.len);
    assert_memory_equal(out.data, k.data, k.len);
    /* a scan's resume key (key + 0x00): cut back to the row */
    base_buf next = {0};
    assert_int_equal(enc_key_next(k.data, k.len, &next), ENC_OK);
    assert_true(srv__splitq_align_key(&d, next.data, next.len, &out));
    assert_int_equal(out.len, k.len);
    assert_int_equal(key_value(&out), 42);
    /* a partial value after a whole one: cut to the whole one */
    base_buf_reset(&next);
    assert_int_equal(base_buf_append(&next, k.data, k.len), 0);
    assert_int_equal(base_buf_append(&next, "\xff\xff", 2), 0);
    assert_true(srv__splitq_align_key(&d, next.data, next.len, &out));
    assert_int_equal(key_value(&out), 42);
    /* the index prefix alone is a split point (it cuts no row) */
    row_key(&k, TABLE, 1, -1);
    assert_true(srv__splitq_align_key(&d, k.data, k.len, &out));
    /* the range's start, outside it, no prefix, the system span: none */
    assert_false(srv__splitq_align_key(&d, start.data, start.len, &out));
    assert_int_equal(out.len, 0);
    row_key(&k, TABLE + 2, 1, 5);
    assert_false(srv__splitq_align_key(&d, k.data, k.len, &out));
    assert_false(srv__splitq_align_key(&d, (const uint8_t *)"\x01", 1, &out));
    assert_false(srv__splitq_align_key(&d, NULL, 0, &out));
    desc(&d, NULL, &end);
    row_key(&k, 50, 1, 3);
    assert_false(srv__splitq_align_key(&d, k.data, k.len, &out));
    base_buf_free(&start);
    base_buf_free(&end);
    base_buf_free(&k);
    base_buf_free(&next);
    base_buf_free(&out);
}

static void test_load_reason(void **state) {
    (void)state;
    char buf[96];
    srv__splitq_load_reason(3100.4, 2500, buf, sizeof buf);
    assert_string_equal(buf, "load 3100 qps > 2500");
    srv__splitq_load_reason(201.6, 200, buf, sizeof buf);
    assert_string_equal(buf, "load 202 qps > 200");
}

/* The right half's lease: the least loaded live, active, not draining
** voter other than this node; ties by lease count, then id. */
static void test_lease_target(void **state) {
    (void)state;
    range_descriptor d;
    desc(&d, NULL, NULL);
    d.n_replicas = 4;
    d.replicas[0] = 1;
    d.replicas[1] = 2;
    d.replicas[2] = 3;
    d.replicas[3] = 4;
    srv__node_state nodes[5] = {
        {.node_id = 1, .liveness = SRV_LIVENESS_LIVE},
        {.node_id = 2, .liveness = SRV_LIVENESS_LIVE},
        {.node_id = 3, .liveness = SRV_LIVENESS_LIVE},
        {.node_id = 4, .liveness = SRV_LIVENESS_LIVE},
        {.node_id = 5, .liveness = SRV_LIVENESS_LIVE},
    };
    srv__range_view v[4];
    memset(v, 0, sizeof v);
    v[0] = (srv__range_view){.lease_holder = 2, .has_load = true, .reads_per_second = 500};
    v[1] = (srv__range_view){.lease_holder = 3, .has_load = true, .reads_per_second = 100,
                             .writes_per_second = 50};
    v[2] = (srv__range_view){.lease_holder = 4, .has_load = true, .writes_per_second = 300};
    v[3] = (srv__range_view){.lease_holder = 1, .has_load = true, .reads_per_second = 9000};
    /* self 1 (the hot one); 3 carries 150/s, the least */
    assert_int_equal(srv__splitq_lease_target(&d, 1, nodes, 5, v, 4), 3);
    /* 3 suspect (not live), 4 draining: 2 */
    nodes[2].liveness = SRV_LIVENESS_SUSPECT;
    nodes[3].draining = true;
    assert_int_equal(srv__splitq_lease_target(&d, 1, nodes, 5, v, 4), 2);
    /* 2 decommissioning too: none */
    nodes[1].membership = SRV_MEMBERSHIP_DECOMMISSIONING;
    assert_int_equal(srv__splitq_lease_target(&d, 1, nodes, 5, v, 4), 0);
    /* no load known anywhere: the fewest leases, then the lowest id */
    nodes[1].membership = SRV_MEMBERSHIP_ACTIVE;
    nodes[2].liveness = SRV_LIVENESS_LIVE;
    nodes[3].draining = false;
    for (int i = 0; i < 4; i++) v[i].has_load = false;
    v[0].lease_holder = 3; /* 3 holds two leases now, 2 none, 4 one */
    assert_int_equal(srv__splitq_lease_target(&d, 1, nodes, 5, v, 4), 2);
    v[2].lease_holder = 2;
    v[3].lease_holder = 4; /* 2: one, 3: two, 4: one */
    assert_int_equal(srv__splitq_lease_target(&d, 1, nodes, 5, v, 4), 2);
    /* a voter with no node record: skipped; not a voter (5): never */
    assert_int_equal(srv__splitq_lease_target(&d, 1, nodes + 2, 3, v, 4), 4);
    d.n_replicas = 1;
    assert_int_equal(srv__splitq_lease_target(&d, 1, nodes, 5, v, 4), 0);
}

int main(void) {
    base_log_set_level(BASE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span),     cmocka_unit_test(test_key_ok),
        cmocka_unit_test(test_choose_key), cmocka_unit_test(test_reason),
        cmocka_unit_test(test_recent),   cmocka_unit_test(test_seen),
        cmocka_unit_test(test_settings_api),
        cmocka_unit_test(test_load_due),   cmocka_unit_test(test_align_key),
        cmocka_unit_test(test_load_reason), cmocka_unit_test(test_lease_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
