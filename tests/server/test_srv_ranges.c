/*
** tests/server/test_srv_ranges.c: the pure parts of server/srv_ranges.c
** (docs/operations.md): the RANGES answer's codec (round trip; every
** truncation, a trailing byte, bad flags and a forged count refused), the
** merge of reports and meta (newest generation wins, the leaseholder is
** the valid lease of the highest term, its size is taken, meta-only ranges
** stay without one), and the events the replicate queue posts (their
** kinds, nodes, replicas and reasons; a full queue drops the oldest).
*/
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "server/srv_ranges.h"

/* A descriptor [start, end) of single-byte keys (0: empty). */
static void desc(range_descriptor *d, uint64_t id, uint64_t gen, uint8_t start, uint8_t end,
                 uint64_t r1, uint64_t r2, uint64_t r3) {
    range_descriptor tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.range_id = id;
    tmp.generation = gen;
    tmp.start_key = start ? &start : NULL;
    tmp.start_len = start ? 1 : 0;
    tmp.end_key = end ? &end : NULL;
    tmp.end_len = end ? 1 : 0;
    tmp.replicas[0] = r1;
    tmp.replicas[1] = r2;
    tmp.replicas[2] = r3;
    tmp.n_replicas = r3 ? 3 : 2;
    assert_int_equal(range_descriptor_copy(d, &tmp), RANGE_OK);
}

static void test_codec(void **state) {
    (void)state;
    srv__range_report in[2];
    memset(in, 0, sizeof in);
    desc(&in[0].desc, 1, 4, 0, 'm', 1, 2, 3);
    in[0].leader = true;
    in[0].lease_valid = true;
    in[0].term = 7;
    in[0].size_bytes = 0;
    in[0].has_load = true; /* issue 6: flag 4 and the two rates, in thousandths */
    in[0].reads_per_second = 3100.25;
    in[0].writes_per_second = 0.5;
    desc(&in[1].desc, 9, 2, 'm', 0, 2, 4, 0);
    in[1].term = 3;
    in[1].size_bytes = -1;
    base_buf b = {0};
    assert_int_equal(srv__ranges_encode(in, 2, &b), SRV_OK);
    srv__range_report *out = NULL;
    size_t n = 0;
    assert_int_equal(srv__ranges_decode(b.data, b.len, &out, &n), SRV_OK);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].desc.range_id, 1);
    assert_int_equal(out[0].desc.generation, 4);
    assert_int_equal(out[0].desc.end_len, 1);
    assert_true(out[0].leader && out[0].lease_valid);
    assert_int_equal(out[0].term, 7);
    assert_int_equal(out[0].size_bytes, 0);
    assert_true(out[0].has_load && out[0].reads_per_second == 3100.25 &&
                out[0].writes_per_second == 0.5);
    assert_false(out[1].has_load);
    assert_int_equal(out[1].desc.range_id, 9);
    assert_int_equal(out[1].desc.n_replicas, 2);
    assert_false(out[1].leader || out[1].lease_valid);
    assert_int_equal(out[1].size_bytes, -1);
    srv__range_reports_free(out, n);
    for (size_t k = 0; k < b.len; k++) {
        assert_int_equal(srv__ranges_decode(b.data, k, &out, &n), SRV_ERR_CORRUPT);
        assert_null(out);
    }
    base_buf_append_byte(&b, 0);
    assert_int_equal(srv__ranges_decode(b.data, b.len, &out, &n), SRV_ERR_CORRUPT);
    b.len--;
    b.data[5] = 8; /* the first entry's flags: an unknown bit */
    assert_int_equal(srv__ranges_decode(b.data, b.len, &out, &n), SRV_ERR_CORRUPT);
    b.data[4] = 0xff; /* a count far beyond the bytes */
    assert_int_equal(srv__ranges_decode(b.data, b.len, &out, &n), SRV_ERR_CORRUPT);
    base_buf_reset(&b);
    assert_int_equal(srv__ranges_req_encode(&b), SRV_OK);
    assert_int_equal(srv__ranges_req_decode(b.data, b.len), SRV_OK);
    assert_int_equal(srv__ranges_req_decode(b.data, 0), SRV_ERR_CORRUPT);
    base_buf_free(&b);
    range_descriptor_free(&in[0].desc);
    range_descriptor_free(&in[1].desc);
}

static void test_merge(void **state) {
    (void)state;
    srv__range_report r[5];
    uint64_t from[5] = {1, 2, 3, 2, 3};
    memset(r, 0, sizeof r);
    /* range 4: node 1 is behind (gen 1, {1,2,3}); nodes 2 and 3 have gen 2
    ** {2,3,4}; node 2 led in term 5, node 3 leads now in term 6 */
    desc(&r[0].desc, 4, 1, 'a', 'm', 1, 2, 3);
    r[0].size_bytes = 999;
    desc(&r[1].desc, 4, 2, 'a', 'm', 2, 3, 4);
    r[1].leader = r[1].lease_valid = true;
    r[1].term = 5;
    r[1].size_bytes = 50;
    desc(&r[2].desc, 4, 2, 'a', 'm', 2, 3, 4);
    r[2].leader = r[2].lease_valid = true;
    r[2].term = 6;
    r[2].size_bytes = 60;
    r[2].has_load = true; /* the leaseholder's load is the range's */
    r[2].reads_per_second = 12;
    r[1].has_load = true; /* an older term's: not taken */
    r[1].reads_per_second = 99;
    /* range 2: no leaseholder, sizes 10 and 20 */
    desc(&r[3].desc, 2, 3, 0, 'a', 1, 2, 3);
    r[3].size_bytes = 10;
    desc(&r[4].desc, 2, 3, 0, 'a', 1, 2, 3);
    r[4].size_bytes = 20;
    /* meta: range 4 at gen 1, range 7 known only there */
    range_descriptor meta[2];
    memset(meta, 0, sizeof meta);
    desc(&meta[0], 4, 1, 'a', 'm', 1, 2, 3);
    desc(&meta[1], 7, 1, 'm', 0, 1, 2, 3);
    srv__range_view *v = NULL;
    size_t n = 0;
    assert_int_equal(srv__ranges_merge(r, from, 5, meta, 2, &v, &n), SRV_OK);
    assert_int_equal(n, 3);
    assert_int_equal(v[0].desc.range_id, 2);
    assert_int_equal(v[0].lease_holder, 0);
    assert_int_equal(v[0].size_bytes, 20);
    assert_int_equal(v[0].n_reports, 2);
    assert_int_equal(v[1].desc.range_id, 4);
    assert_int_equal(v[1].desc.generation, 2);
    assert_int_equal(v[1].desc.replicas[2], 4);
    assert_int_equal(v[1].lease_holder, 3);
    assert_int_equal(v[1].size_bytes, 60);
    assert_true(v[1].has_load && v[1].reads_per_second == 12);
    assert_false(v[0].has_load);
    assert_int_equal(v[1].n_reports, 3);
    assert_int_equal(v[2].desc.range_id, 7);
    assert_int_equal(v[2].lease_holder, 0);
    assert_int_equal(v[2].size_bytes, -1);
    assert_int_equal(v[2].n_reports, 0);
    srv__range_views_free(v, n);
    /* nothing at all */
    assert_int_equal(srv__ranges_merge(NULL, NULL, 0, NULL, 0, &v, &n), SRV_OK);
    assert_int_equal(n, 0);
    srv__range_views_free(v, n);
    for (int i = 0; i < 5; i++) range_descriptor_free(&r[i].desc);
    range_descriptor_free(&meta[0]);
    range_descriptor_free(&meta[1]);
}

static void test_repl_events(void **state) {
    (void)state;
    srv__admin a;
    srv__admin_init(&a);
    a.self = 2;
    range_descriptor after;
    memset(&after, 0, sizeof after);
    desc(&after, 5, 3, 'a', 'm', 1, 2, 4);
    srv__repl_plan p = {.reason = SRV_REPL_REPLACE_DEAD, .add = 4, .remove = 3, .n_voters = 3,
                        .want = 3};
    srv__admin_on_repl_change(&a, 5, &p, &after);
    assert_int_equal(a.n_pending, 2);
    const txn_range_event *e = &a.pending[0];
    assert_int_equal(e->kind, TXN_RANGE_EVENT_ADD_REPLICA);
    assert_int_equal(e->range_id, 5);
    assert_int_equal(e->node_id, 4);
    assert_int_equal(e->recorded_by, 2);
    assert_string_equal(e->reason, "replace dead node 3");
    assert_int_equal(e->n_replicas, 4); /* {1,2,4} and 3, still there before its removal */
    e = &a.pending[1];
    assert_int_equal(e->kind, TXN_RANGE_EVENT_REMOVE_REPLICA);
    assert_int_equal(e->node_id, 3);
    assert_int_equal(e->n_replicas, 3);
    assert_string_equal(e->reason, "replace dead node 3");
    /* up-replication: one add, no descriptor known */
    p = (srv__repl_plan){.reason = SRV_REPL_UP_REPLICATE, .add = 6, .n_voters = 2, .want = 3};
    srv__admin_on_repl_change(&a, 8, &p, NULL);
    assert_int_equal(a.n_pending, 3);
    assert_string_equal(a.pending[2].reason, "up-replicate (2 voters, 3 wanted)");
    assert_int_equal(a.pending[2].n_replicas, 0);
    /* a full queue keeps the newest */
    p = (srv__repl_plan){.reason = SRV_REPL_REMOVE_DEAD, .remove = 9, .n_voters = 4, .want = 3};
    for (int i = 0; i < SRV_RANGE_EVENTS_PENDING_MAX; i++)
        srv__admin_on_repl_change(&a, 100 + (uint64_t)i, &p, &after);
    assert_int_equal(a.n_pending, SRV_RANGE_EVENTS_PENDING_MAX);
    assert_int_equal(a.dropped, 3);
    assert_int_equal(a.pending[0].range_id, 100);
    assert_int_equal(a.pending[SRV_RANGE_EVENTS_PENDING_MAX - 1].range_id,
                     100 + SRV_RANGE_EVENTS_PENDING_MAX - 1);
    assert_string_equal(a.pending[0].reason, "remove dead node 9 (4 voters, 3 wanted)");
    srv__admin_flush_events(&a); /* no db yet: dropped quietly */
    assert_int_equal(a.n_pending, 0);
    range_descriptor_free(&after);
    srv__admin_destroy(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_repl_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
