/*
** tests/server/test_srv_mergeq.c: the merge queue's decisions
** (server/srv_mergeq.c; docs/range.md "Merge queue"): which boundaries may
** go (never a table's first key, never in the system span), the rules on
** a pair (adjacent, a manual split point stays, both under range_min_bytes
** and together under range_max_bytes, cold when the load is known, an
** unknown size never merges) with the event's reason, the co-location
** steps (an add and a remove at a time, the leaseholder removed last after
** its lease moved to a voter that stays), the resting table, and a round
** with merge_enabled off (nothing asked of the cluster), a thread that
** starts and stops.
*/
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "encoding/encoding.h"
#include "server/srv_mergeq.h"

#define TABLE 105u
#define KIB 1024LL
#define MIB (1024LL * KIB)

/* /table/<table>/<index>[/<v>]; v < 0: none. */
static void row_key(base_buf *out, uint32_t table, uint32_t index, int64_t v) {
    base_buf_reset(out);
    assert_int_equal(enc_key_prefix(out, table, index), ENC_OK);
    if (v >= 0) {
        enc_value ev = {.type = ENC_INTEGER, .u.i = v};
        assert_int_equal(enc_key_append(out, &ev), ENC_OK);
    }
}

/* A descriptor over [start, end) (keys borrowed; NULL: the ends). */
static void desc(range_descriptor *d, uint64_t id, const base_buf *start, const base_buf *end,
                 const uint64_t *voters, size_t n) {
    memset(d, 0, sizeof *d);
    d->range_id = id;
    d->generation = 1;
    d->start_key = start ? start->data : NULL;
    d->start_len = start ? start->len : 0;
    d->end_key = end ? end->data : NULL;
    d->end_len = end ? end->len : 0;
    memcpy(d->replicas, voters, n * sizeof *voters);
    d->n_replicas = n;
}

static void test_boundary(void **state) {
    (void)state;
    base_buf k = {0};
    assert_false(srv__mergeq_boundary_ok(NULL, 0));
    row_key(&k, TABLE, 1, 1000);
    assert_true(srv__mergeq_boundary_ok(k.data, k.len)); /* inside a table */
    row_key(&k, TABLE, 2, -1);
    assert_true(srv__mergeq_boundary_ok(k.data, k.len)); /* an index's start: inside */
    row_key(&k, TABLE, 0, -1);
    assert_false(srv__mergeq_boundary_ok(k.data, k.len)); /* a table's first key */
    row_key(&k, SRV_FIRST_TABLE_ID, 0, -1);
    assert_false(srv__mergeq_boundary_ok(k.data, k.len)); /* the system/user boundary */
    row_key(&k, 3, 1, 7);
    assert_false(srv__mergeq_boundary_ok(k.data, k.len)); /* the system span */
    const uint8_t meta[] = "\0\0\0\0\0\0\0\0smeta/";
    assert_false(srv__mergeq_boundary_ok(meta, sizeof meta - 1));
    base_buf_free(&k);
}

typedef struct pair {
    base_buf a, b, c; /* L = [a, b), R = [b, c) */
    range_descriptor l, r;
    srv__mergeq_side ls, rs;
    srv__mergeq_limits lim;
} pair;

static void pair_init(pair *p) {
    memset(p, 0, sizeof *p);
    const uint64_t v[3] = {1, 2, 3};
    row_key(&p->a, TABLE, 0, -1);
    row_key(&p->b, TABLE, 1, 1000);
    row_key(&p->c, TABLE, 1, 2000);
    desc(&p->l, 4, &p->a, &p->b, v, 3);
    desc(&p->r, 9, &p->b, &p->c, v, 3);
    p->ls = (srv__mergeq_side){&p->l, 12 * KIB, -1};
    p->rs = (srv__mergeq_side){&p->r, 3 * KIB, -1};
    p->lim = (srv__mergeq_limits){16 * MIB, 64 * MIB, 2500};
}

static void pair_free(pair *p) {
    base_buf_free(&p->a);
    base_buf_free(&p->b);
    base_buf_free(&p->c);
}

static int decide(pair *p, bool point, char *why, size_t size) {
    return srv__mergeq_decide(&p->ls, &p->rs, point, &p->lim, why, size);
}

static void test_decide(void **state) {
    (void)state;
    pair p;
    char why[SRV_MERGEQ_REASON_MAX];
    pair_init(&p);
    /* small, load unknown: merge, the reason names the sizes */
    assert_int_equal(decide(&p, false, why, sizeof why), SRV_OK);
    assert_string_equal(why, "size 12 KiB + 3 KiB < 16 MiB");
    /* cold when known */
    p.ls.qps = 10;
    p.rs.qps = 1249;
    assert_int_equal(decide(&p, false, why, sizeof why), SRV_OK);
    assert_string_equal(why, "size 12 KiB + 3 KiB < 16 MiB, cold");
    /* hot: one side at half the split threshold */
    p.rs.qps = 1250;
    assert_int_equal(decide(&p, false, why, sizeof why), SRV_ERR_REFUSED);
    assert_non_null(strstr(why, "load"));
    p.ls.qps = p.rs.qps = -1;
    /* a manual split point stays */
    assert_int_equal(decide(&p, true, why, sizeof why), SRV_ERR_REFUSED);
    assert_non_null(strstr(why, "manual split point"));
    /* sizes: each under the minimum, both under the maximum */
    p.rs.size_bytes = 16 * MIB;
    assert_int_equal(decide(&p, false, why, sizeof why), SRV_ERR_REFUSED);
    p.rs.size_bytes = 16 * MIB - 1;
    assert_int_equal(decide(&p, false, why, sizeof why), SRV_OK);
    p.lim.max_bytes = 16 * MIB; /* the merged range would split again */
    assert_int_equal(decide(&p, false, why, sizeof why), SRV_ERR_REFUSED);
    assert_non_null(strstr(why, "range_max_bytes"));
    p.lim.max_bytes = 64 * MIB;
    p.ls.size_bytes = -1; /* unknown: never */
    assert_int_equal(decide(&p, false, why, sizeof why), SRV_ERR_REFUSED);
    p.ls.size_bytes = 0;
    p.rs.size_bytes = 0;
    assert_int_equal(decide(&p, false, why, sizeof why), SRV_OK);
    p.lim.min_bytes = 0; /* range_min_bytes 0: merges are off in effect */
    assert_int_equal(decide(&p, false, why, sizeof why), SRV_ERR_REFUSED);
    p.lim.min_bytes = 16 * MIB;
    /* not adjacent: R starts elsewhere, or L ends at +infinity */
    p.r.start_key = p.a.data;
    p.r.start_len = p.a.len;
    assert_int_equal(decide(&p, false, why, sizeof why), SRV_ERR_REFUSED);
    p.l.end_key = NULL;
    p.l.end_len = 0;
    assert_int_equal(decide(&p, false, why, sizeof why), SRV_ERR_REFUSED);
    pair_free(&p);
    /* R starting a table: never, however small */
    pair_init(&p);
    const uint64_t v[3] = {1, 2, 3};
    row_key(&p.a, TABLE, 1, 5);
    row_key(&p.b, TABLE + 1, 0, -1);
    row_key(&p.c, TABLE + 1, 1, 5);
    desc(&p.l, 4, &p.a, &p.b, v, 3);
    desc(&p.r, 9, &p.b, &p.c, v, 3);
    assert_int_equal(decide(&p, false, why, sizeof why), SRV_ERR_REFUSED);
    assert_non_null(strstr(why, "starts a table"));
    pair_free(&p);
}

static void move(const uint64_t *lv, size_t ln, const uint64_t *rv, size_t rn, uint64_t lh,
                 uint64_t prefer, uint64_t want_add, uint64_t want_remove,
                 uint64_t want_transfer) {
    range_descriptor l, r;
    desc(&l, 1, NULL, NULL, lv, ln);
    desc(&r, 2, NULL, NULL, rv, rn);
    uint64_t add = 99, remove = 99, transfer = 99;
    srv__mergeq_next_move(&l, &r, lh, prefer, &add, &remove, &transfer);
    assert_int_equal(add, want_add);
    assert_int_equal(remove, want_remove);
    assert_int_equal(transfer, want_transfer);
}

static void test_next_move(void **state) {
    (void)state;
    const uint64_t l123[] = {1, 2, 3}, r124[] = {1, 2, 4}, r321[] = {3, 2, 1};
    const uint64_t r1234[] = {1, 2, 3, 4}, r12[] = {1, 2}, r456[] = {4, 5, 6};
    move(l123, 3, r321, 3, 1, 0, 0, 0, 0);   /* same voters (as a set): done */
    move(l123, 3, r124, 3, 1, 0, 3, 4, 0);   /* one add, one remove */
    move(l123, 3, r124, 3, 4, 0, 3, 0, 0);   /* the leaseholder is the extra one: add first */
    move(l123, 3, r1234, 4, 4, 0, 0, 0, 1);  /* then its lease to a voter that stays */
    move(l123, 3, r1234, 4, 4, 3, 0, 0, 3);  /* ... this node's when it is one */
    move(l123, 3, r1234, 4, 4, 9, 0, 0, 1);  /* (a node holding neither: not) */
    move(l123, 3, r1234, 4, 1, 0, 0, 4, 0);  /* then it goes */
    move(l123, 3, r12, 2, 1, 0, 3, 0, 0);    /* R short of a voter */
    move(l123, 3, r456, 3, 5, 0, 1, 4, 0);   /* disjoint: the leaseholder stays to the last */
    move(r12, 2, r1234, 4, 0, 0, 0, 3, 0);   /* leaseholder unknown: anyone extra */
}

static void test_resting(void **state) {
    (void)state;
    srv__mergeq q;
    srv__mergeq_init(&q);
    const int64_t s = 1000000000;
    assert_false(srv__mergeq_resting(&q, 7, 0));
    srv__mergeq_remember(&q, 7, 10 * s, 2000);
    assert_true(srv__mergeq_resting(&q, 7, 11 * s));
    assert_false(srv__mergeq_resting(&q, 7, 12 * s));
    assert_false(srv__mergeq_resting(&q, 8, 11 * s));
    srv__mergeq_remember(&q, 7, 10 * s, 500); /* never shortened */
    assert_true(srv__mergeq_resting(&q, 7, 11 * s));
    /* a full table forgets what expired, then what expires first */
    for (uint64_t id = 100; id < 100 + SRV_MERGEQ_RECENT_MAX; id++)
        srv__mergeq_remember(&q, id, 20 * s, (int64_t)(id - 99) * 1000);
    assert_true(q.n_recent <= SRV_MERGEQ_RECENT_MAX);
    srv__mergeq_remember(&q, 5000, 20 * s, 60000);
    assert_true(srv__mergeq_resting(&q, 5000, 21 * s));
    assert_false(srv__mergeq_resting(&q, 100, 20 * s + 1)); /* expired first: forgotten */
    assert_true(srv__mergeq_resting(&q, 101 + SRV_MERGEQ_RECENT_MAX / 2, 21 * s));
    srv__mergeq_destroy(&q);
}

static int overview_calls;

static int fake_overview(void *ctx, srv__range_view **out, size_t *n, char *msg, size_t size) {
    (void)ctx;
    overview_calls++;
    *out = NULL;
    *n = 0;
    snprintf(msg, size, "fake");
    return SRV_ERR_UNAVAILABLE;
}

/* merge_enabled off: a round asks nothing of the node or the cluster; the
** thread starts and stops. */
static void test_disabled_round(void **state) {
    (void)state;
    srv_settings st;
    srv_settings_init(&st);
    sqlv_settings v;
    sqlv_settings_defaults(&v);
    assert_int_equal(v.values[SQLV_SETTING_MERGE_ENABLED], 1);
    v.values[SQLV_SETTING_MERGE_ENABLED] = 0;
    srv_settings_set_all(&st, &v);
    srv__mergeq q;
    srv__mergeq_init(&q);
    srv__mergeq_env env = {.self = 1, .settings = &st, .overview = fake_overview, .scan_ms = 1};
    q.env = env;
    overview_calls = 0;
    assert_int_equal(srv__mergeq_round(&q, 0), 0);
    assert_int_equal(srv__mergeq_round(&q, 1), 0);
    assert_int_equal(overview_calls, 0);
    assert_true(q.disabled_logged);
    assert_int_equal(srv__mergeq_start(&q, &env), SRV_OK);
    srv__mergeq_stop(&q);
    assert_false(q.worker.started);
    assert_int_equal(overview_calls, 0);
    srv__mergeq_destroy(&q);
    srv_settings_destroy(&st);
}

int main(void) {
    base_log_set_level(BASE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boundary),  cmocka_unit_test(test_decide),
        cmocka_unit_test(test_next_move), cmocka_unit_test(test_resting),
        cmocka_unit_test(test_disabled_round),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
