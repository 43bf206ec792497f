/*
** tests/server/test_srv.c: the pure parts of server/: the wire codec of the
** node methods and system records (round trips, every truncation refused,
** seeded random corruption never crashes, out of memory at every
** allocation), the peer table, bootstrap planning, the initial KV data,
** liveness states, the status table, system key order, and the raw-keyspace
** persistence over the in-memory storage twin.
** MERIDIAN_SEED=N replays the corruption rounds of one seed.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "encoding/encoding.h"
#include "server/srv_int.h"

#define FUZZ_ROUNDS 3000

static srv_addr addr(const char *host, int port) {
    srv_addr a = {.port = port};
    snprintf(a.host, sizeof a.host, "%s", host);
    return a;
}

static srv_peer peer(uint64_t id, int port) {
    return (srv_peer){.node_id = id, .rpc = addr("127.0.0.1", port), .sql = addr("127.0.0.1", port)};
}

static void assert_peers_equal(const srv_peer *a, const srv_peer *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(a[i].node_id, b[i].node_id);
        assert_string_equal(a[i].rpc.host, b[i].rpc.host);
        assert_int_equal(a[i].rpc.port, b[i].rpc.port);
        assert_string_equal(a[i].sql.host, b[i].sql.host);
        assert_int_equal(a[i].sql.port, b[i].sql.port);
    }
}

static uint64_t rng_state;
static uint64_t rng(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* ---- codec ------------------------------------------------------------------------- */

/* A decoder under test: returns SRV_OK or an error and frees what it made. */
typedef int (*decode_fn)(const uint8_t *p, size_t len);

static int dec_probe(const uint8_t *p, size_t len) {
    srv__probe_resp m;
    return srv__probe_resp_decode(p, len, &m);
}
static int dec_init_req(const uint8_t *p, size_t len) {
    uint64_t t;
    return srv__init_req_decode(p, len, &t);
}
static int dec_init_resp(const uint8_t *p, size_t len) {
    uint64_t c;
    srv_peer *peers;
    size_t n;
    int rc = srv__init_resp_decode(p, len, &c, &peers, &n);
    if (rc == SRV_OK) base_free(peers);
    return rc;
}
static int dec_bootstrap(const uint8_t *p, size_t len) {
    srv__bootstrap m;
    int rc = srv__bootstrap_decode(p, len, &m);
    if (rc == SRV_OK) srv__bootstrap_free(&m);
    return rc;
}
static int dec_join_req(const uint8_t *p, size_t len) {
    srv__join_req m;
    return srv__join_req_decode(p, len, &m);
}
static int dec_join_resp(const uint8_t *p, size_t len) {
    srv__join_resp m;
    int rc = srv__join_resp_decode(p, len, &m);
    if (rc == SRV_OK) srv__join_resp_free(&m);
    return rc;
}
static int dec_status(const uint8_t *p, size_t len) {
    srv_status s;
    int rc = srv__status_decode(p, len, &s);
    if (rc == SRV_OK) srv_status_free(&s);
    return rc;
}
static int dec_node_record(const uint8_t *p, size_t len) {
    srv__node_record r;
    return srv__node_record_decode(p, len, &r);
}
static int dec_liveness(const uint8_t *p, size_t len) {
    srv__liveness_record r;
    return srv__liveness_record_decode(p, len, &r);
}
static int dec_counter(const uint8_t *p, size_t len) {
    uint64_t v;
    return srv__counter_decode(p, len, &v);
}
static int dec_drain_req(const uint8_t *p, size_t len) { return srv__drain_req_decode(p, len); }
static int dec_drain_resp(const uint8_t *p, size_t len) {
    srv_drain_status s;
    return srv__drain_resp_decode(p, len, &s);
}
static int dec_decommission_req(const uint8_t *p, size_t len) {
    srv__decommission_req m;
    return srv__decommission_req_decode(p, len, &m);
}
static int dec_decommission_resp(const uint8_t *p, size_t len) {
    srv_decommission_status s;
    return srv__decommission_resp_decode(p, len, &s);
}

/* Every strict prefix is refused; every extension by a byte is refused;
** random corruptions never crash (ASan checks the reads: exact-size
** copies). */
static void check_decoder(const base_buf *good, decode_fn fn) {
    assert_int_equal(fn(good->data, good->len), SRV_OK);
    for (size_t cut = 0; cut < good->len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, good->data, cut);
        assert_int_not_equal(fn(copy, cut), SRV_OK);
        free(copy);
    }
    uint8_t *longer = malloc(good->len + 1);
    memcpy(longer, good->data, good->len);
    longer[good->len] = 0;
    assert_int_equal(fn(longer, good->len + 1), SRV_ERR_CORRUPT);
    free(longer);
    for (int round = 0; round < FUZZ_ROUNDS / 10; round++) {
        uint8_t *copy = malloc(good->len);
        memcpy(copy, good->data, good->len);
        int flips = 1 + (int)(rng() % 4);
        for (int f = 0; f < flips; f++) copy[rng() % good->len] ^= (uint8_t)(1 + rng() % 255);
        int rc = fn(copy, good->len);
        assert_true(rc == SRV_OK || rc == SRV_ERR_CORRUPT || rc == SRV_ERR_NOMEM);
        free(copy);
    }
    /* Out of memory at every allocation in turn: an error or OK, no leak. */
    for (long k = 0; k < 16; k++) {
        base_alloc_fail_after(k);
        int rc = fn(good->data, good->len);
        base_alloc_fail_after(-1);
        assert_true(rc == SRV_OK || rc == SRV_ERR_NOMEM);
    }
}

static void make_descs(range_descriptor *d, size_t n) {
    for (size_t i = 0; i < n; i++) {
        memset(&d[i], 0, sizeof d[i]);
        d[i].range_id = i + 1;
        d[i].generation = 1;
        d[i].replicas[0] = 1;
        d[i].replicas[1] = 2;
        d[i].replicas[2] = 3;
        d[i].n_replicas = 3;
    }
    if (n >= 2) { /* [empty, "m") and ["m", +inf) */
        d[0].end_key = (uint8_t *)strdup("m");
        d[0].end_len = 1;
        d[1].start_key = (uint8_t *)strdup("m");
        d[1].start_len = 1;
    }
}

static void free_descs(range_descriptor *d, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(d[i].start_key);
        free(d[i].end_key);
    }
}

static void test_codec_round_trips(void **state) {
    (void)state;
    base_buf b = {0};
    srv_peer peers[3] = {peer(1, 1001), peer(2, 1002), peer(3, 1003)};
    snprintf(peers[1].rpc.host, sizeof peers[1].rpc.host, "::1");
    range_descriptor descs[2];
    make_descs(descs, 2);

    srv__probe_resp pr = {.initialized = true, .cluster_id = 77, .node_id = 2,
                          .rpc = addr("10.0.0.1", 26257), .sql = addr("10.0.0.1", 26258)}, pr2;
    assert_int_equal(srv__probe_resp_encode(&pr, &b), SRV_OK);
    assert_int_equal(srv__probe_resp_decode(b.data, b.len, &pr2), SRV_OK);
    assert_memory_equal(&pr, &pr2, sizeof pr);
    check_decoder(&b, dec_probe);

    base_buf_reset(&b);
    uint64_t token;
    assert_int_equal(srv__init_req_encode(0xabcdef, &b), SRV_OK);
    assert_int_equal(srv__init_req_decode(b.data, b.len, &token), SRV_OK);
    assert_int_equal(token, 0xabcdef);
    check_decoder(&b, dec_init_req);

    base_buf_reset(&b);
    uint64_t cid;
    srv_peer *got;
    size_t n;
    assert_int_equal(srv__init_resp_encode(99, peers, 3, &b), SRV_OK);
    assert_int_equal(srv__init_resp_decode(b.data, b.len, &cid, &got, &n), SRV_OK);
    assert_int_equal(cid, 99);
    assert_int_equal(n, 3);
    assert_peers_equal(got, peers, 3);
    base_free(got);
    check_decoder(&b, dec_init_resp);

    base_buf_reset(&b);
    srv__bootstrap bs = {.cluster_id = 5, .node_id = 2, .init_token = 9,
                         .init_ts = {1700000000000000000LL, 3}, .peers = peers, .n_peers = 3,
                         .descs = descs, .n_descs = 2}, bs2;
    assert_int_equal(srv__bootstrap_encode(&bs, &b), SRV_OK);
    assert_int_equal(srv__bootstrap_decode(b.data, b.len, &bs2), SRV_OK);
    assert_int_equal(bs2.cluster_id, 5);
    assert_int_equal(bs2.node_id, 2);
    assert_int_equal(hlc_compare(bs2.init_ts, bs.init_ts), 0);
    assert_int_equal(bs2.n_descs, 2);
    assert_int_equal(bs2.descs[1].start_len, 1);
    assert_int_equal(bs2.descs[1].start_key[0], 'm');
    assert_int_equal(bs2.descs[0].n_replicas, 3);
    srv__bootstrap_free(&bs2);
    check_decoder(&b, dec_bootstrap);
    /* A BOOTSTRAP naming a node that is not in its own peer table. */
    base_buf_reset(&b);
    bs.node_id = 4;
    assert_int_equal(srv__bootstrap_encode(&bs, &b), SRV_OK);
    assert_int_equal(srv__bootstrap_decode(b.data, b.len, &bs2), SRV_ERR_CORRUPT);

    base_buf_reset(&b);
    srv__join_req jr = {.token = 12, .rpc = addr("127.0.0.1", 5), .sql = addr("127.0.0.1", 6)}, jr2;
    assert_int_equal(srv__join_req_encode(&jr, &b), SRV_OK);
    assert_int_equal(srv__join_req_decode(b.data, b.len, &jr2), SRV_OK);
    assert_memory_equal(&jr, &jr2, sizeof jr);
    check_decoder(&b, dec_join_req);

    base_buf_reset(&b);
    srv__join_resp js = {.cluster_id = 5, .node_id = 4, .peers = peers, .n_peers = 3,
                         .descs = descs, .n_descs = 2}, js2;
    assert_int_equal(srv__join_resp_encode(&js, &b), SRV_OK);
    assert_int_equal(srv__join_resp_decode(b.data, b.len, &js2), SRV_OK);
    assert_int_equal(js2.node_id, 4);
    assert_int_equal(js2.n_peers, 3);
    srv__join_resp_free(&js2);
    check_decoder(&b, dec_join_resp);

    base_buf_reset(&b);
    srv_status_row rows[2]; /* zeroed first: padding is compared below */
    memset(rows, 0, sizeof rows);
    rows[0].node_id = 1;
    rows[0].rpc = addr("127.0.0.1", 1);
    rows[0].sql = addr("127.0.0.1", 1);
    rows[0].liveness = SRV_LIVENESS_LIVE;
    rows[0].since_heartbeat_ms = 800;
    rows[0].epoch = 2;
    rows[0].replicas = 1;
    rows[0].leases = 1;
    rows[1].node_id = 2;
    rows[1].rpc = addr("127.0.0.1", 2);
    rows[1].sql = addr("127.0.0.1", 2);
    rows[1].liveness = SRV_LIVENESS_UNKNOWN;
    rows[1].since_heartbeat_ms = -1;
    rows[1].membership = SRV_MEMBERSHIP_DECOMMISSIONING;
    rows[1].draining = true;
    srv_status st = {.cluster_id = 1, .answered_by = 2, .now_ns = 123, .dead_after_ms = 60000,
                     .rows = rows, .n_rows = 2}, st2;
    assert_int_equal(srv__status_encode(&st, &b), SRV_OK);
    assert_int_equal(srv__status_decode(b.data, b.len, &st2), SRV_OK);
    assert_int_equal(st2.n_rows, 2);
    assert_memory_equal(st2.rows, rows, sizeof rows);
    srv_status_free(&st2);
    check_decoder(&b, dec_status);

    base_buf_reset(&b);
    srv__node_record nrec = {.rpc = addr("a", 1), .sql = addr("b", 2), .join_token = 3}, nrec2;
    assert_int_equal(srv__node_record_encode(&nrec, &b), SRV_OK);
    assert_int_equal(srv__node_record_decode(b.data, b.len, &nrec2), SRV_OK);
    assert_memory_equal(&nrec, &nrec2, sizeof nrec);
    check_decoder(&b, dec_node_record);

    base_buf_reset(&b);
    /* field by field over zeroed memory: the struct ends in padding that
    ** assert_memory_equal compares and an initializer leaves unspecified */
    srv__liveness_record lr, lr2;
    memset(&lr, 0, sizeof lr);
    lr.epoch = 3;
    lr.heartbeat_ns = 10;
    lr.expiration_ns = 20;
    lr.rpc = addr("a", 1);
    lr.sql = addr("a", 1);
    lr.replicas = 2;
    lr.leases = 1;
    lr.membership = SRV_MEMBERSHIP_DECOMMISSIONED;
    lr.draining = true;
    assert_int_equal(srv__liveness_record_encode(&lr, &b), SRV_OK);
    assert_int_equal(srv__liveness_record_decode(b.data, b.len, &lr2), SRV_OK);
    assert_memory_equal(&lr, &lr2, sizeof lr);
    check_decoder(&b, dec_liveness);

    base_buf_reset(&b);
    uint64_t next;
    assert_int_equal(srv__counter_encode(4, &b), SRV_OK);
    assert_int_equal(srv__counter_decode(b.data, b.len, &next), SRV_OK);
    assert_int_equal(next, 4);
    check_decoder(&b, dec_counter);

    free_descs(descs, 2);
    base_buf_free(&b);
}

static void test_codec_refusals(void **state) {
    (void)state;
    base_buf b = {0};
    srv_peer dup[2] = {peer(3, 1), peer(3, 2)};
    assert_int_equal(srv__init_resp_encode(1, dup, 2, &b), SRV_OK);
    assert_int_equal(dec_init_resp(b.data, b.len), SRV_ERR_CORRUPT); /* duplicate ids */
    base_buf_reset(&b);
    srv_peer prov[1] = {peer(RPC_NODE_ID_PROVISIONAL_MIN | 5, 1)};
    assert_int_equal(srv__init_resp_encode(1, prov, 1, &b), SRV_OK);
    assert_int_equal(dec_init_resp(b.data, b.len), SRV_ERR_CORRUPT); /* provisional id */
    base_buf_reset(&b);
    srv_peer zero[1] = {peer(0, 1)};
    assert_int_equal(srv__init_resp_encode(1, zero, 1, &b), SRV_OK);
    assert_int_equal(dec_init_resp(b.data, b.len), SRV_ERR_CORRUPT); /* id 0 */
    /* A huge peer count with few bytes: refused before allocating. */
    uint8_t huge[] = {SRV_WIRE_VERSION, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(dec_init_resp(huge, sizeof huge), SRV_ERR_CORRUPT);
    /* Unknown version. */
    base_buf_reset(&b);
    assert_int_equal(srv__counter_encode(4, &b), SRV_OK);
    b.data[0] = SRV_WIRE_VERSION + 1;
    assert_int_equal(dec_counter(b.data, b.len), SRV_ERR_CORRUPT);
    /* A string with a NUL inside, a port above 65535. */
    uint8_t nul[] = {SRV_WIRE_VERSION, 0, 2, 'a', 0, 0, 0, 0, 1, 0, 1, 'b', 0, 0, 0, 1,
                     0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(dec_node_record(nul, sizeof nul), SRV_ERR_CORRUPT);
    uint8_t port[] = {SRV_WIRE_VERSION, 0, 1, 'a', 0, 1, 0, 0, 0, 1, 'b', 0, 0, 0, 1,
                      0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(dec_node_record(port, sizeof port), SRV_ERR_CORRUPT);
    /* A join request without a token or an address. */
    base_buf_reset(&b);
    srv__join_req jr = {.token = 0, .rpc = addr("h", 1), .sql = addr("h", 1)};
    assert_int_equal(srv__join_req_encode(&jr, &b), SRV_OK);
    assert_int_equal(dec_join_req(b.data, b.len), SRV_ERR_CORRUPT);
    /* A port out of range is refused by the encoder. */
    base_buf_reset(&b);
    srv_addr badport = addr("h", 70000);
    assert_int_equal(srv__put_addr(&b, &badport), SRV_ERR_INVALID);
    base_buf_free(&b);
}

/* ---- peer table ------------------------------------------------------------------------ */

static void test_peer_table(void **state) {
    (void)state;
    srv_peer *t = NULL;
    size_t n = 0;
    bool changed;
    srv_peer p3 = peer(3, 3), p1 = peer(1, 1), p2 = peer(2, 2);
    assert_int_equal(srv__peers_upsert(&t, &n, &p3, &changed), SRV_OK);
    assert_true(changed);
    assert_int_equal(srv__peers_upsert(&t, &n, &p1, &changed), SRV_OK);
    assert_int_equal(srv__peers_upsert(&t, &n, &p2, &changed), SRV_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) assert_int_equal(t[i].node_id, i + 1); /* sorted */
    assert_int_equal(srv__peers_upsert(&t, &n, &p2, &changed), SRV_OK);
    assert_false(changed); /* same address */
    srv_peer moved = peer(2, 2222);
    assert_int_equal(srv__peers_upsert(&t, &n, &moved, &changed), SRV_OK);
    assert_true(changed);
    assert_int_equal(n, 3);
    assert_int_equal(srv__peers_find(t, n, 2)->rpc.port, 2222);
    assert_null(srv__peers_find(t, n, 9));
    base_free(t);
    /* The table's bound. */
    t = NULL;
    n = 0;
    for (uint64_t id = 1; id <= SRV_PEERS_MAX; id++) {
        srv_peer p = peer(id, 1);
        assert_int_equal(srv__peers_upsert(&t, &n, &p, &changed), SRV_OK);
    }
    srv_peer extra = peer(SRV_PEERS_MAX + 1, 1);
    assert_int_equal(srv__peers_upsert(&t, &n, &extra, &changed), SRV_ERR_INVALID);
    base_free(t);
}

/* ---- bootstrap planning --------------------------------------------------------------- */

static srv__probe_answer answer(int port, uint64_t tid, bool answered, bool initialized) {
    srv__probe_answer a = {.addr = addr("127.0.0.1", port), .answered = answered,
                           .initialized = initialized, .transport_id = tid,
                           .sql = addr("127.0.0.1", port)};
    return a;
}

static void test_plan_bootstrap(void **state) {
    (void)state;
    srv_addr self = addr("127.0.0.1", 1);
    const uint64_t me = RPC_NODE_ID_PROVISIONAL_MIN | 100;
    const uint64_t a = RPC_NODE_ID_PROVISIONAL_MIN | 200, b = RPC_NODE_ID_PROVISIONAL_MIN | 300;
    const uint64_t c = RPC_NODE_ID_PROVISIONAL_MIN | 400, d = RPC_NODE_ID_PROVISIONAL_MIN | 500;
    srv__plan p;

    /* The shape: self first in --join, then two others. */
    srv__probe_answer three[3] = {answer(1, me, true, false), answer(2, a, true, false),
                                  answer(3, b, true, false)};
    assert_int_equal(srv__plan_bootstrap(&self, &self, me, three, 3, 3, &p), SRV_OK);
    assert_int_equal(p.n_peers, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(p.peers[i].node_id, i + 1);
        assert_int_equal(p.peers[i].rpc.port, (int)i + 1);
    }
    assert_int_equal(p.answer_index[0], -1);
    assert_int_equal(p.answer_index[1], 1);
    /* range 1 = [empty, /table/100) (system keys, catalog), range 2 = the rest */
    assert_int_equal(p.n_descs, 2);
    assert_int_equal(p.descs[0].range_id, 1);
    assert_int_equal(p.descs[0].start_len, 0);
    assert_int_equal(p.descs[0].end_len, 8);
    assert_memory_equal(p.descs[0].end_key, "\0\0\0\x64\0\0\0\0", 8);
    assert_int_equal(p.descs[1].range_id, 2);
    assert_int_equal(p.descs[1].start_len, 8);
    assert_memory_equal(p.descs[1].start_key, p.descs[0].end_key, 8);
    assert_int_equal(p.descs[1].end_len, 0);
    for (size_t r = 0; r < 2; r++) {
        assert_int_equal(p.descs[r].generation, 1);
        assert_int_equal(p.descs[r].n_replicas, 3);
        base_buf enc = {0};
        assert_int_equal(range_descriptor_encode(&p.descs[r], &enc), RANGE_OK);
        base_buf_free(&enc);
    }
    /* system keys (table id 0) lie in range 1 */
    assert_true(range_descriptor_contains(&p.descs[0], (const uint8_t *)SRV_SYS_PREFIX,
                                          SRV_SYS_PREFIX_LEN));
    srv__plan_free(&p);

    /* Join order decides ids; unanswered addresses and a node listed twice
    ** (same transport id) are left out; five nodes still get 3 replicas,
    ** never two on one node. */
    srv__probe_answer mixed[6] = {answer(5, c, true, false), answer(6, a, false, false),
                                  answer(7, b, true, false), answer(8, c, true, false),
                                  answer(9, d, true, false), answer(10, a, true, false)};
    assert_int_equal(srv__plan_bootstrap(&self, &self, me, mixed, 6, 3, &p), SRV_OK);
    assert_int_equal(p.n_peers, 5);
    int want_ports[5] = {1, 5, 7, 9, 10};
    for (size_t i = 0; i < 5; i++) assert_int_equal(p.peers[i].rpc.port, want_ports[i]);
    assert_int_equal(p.descs[0].n_replicas, 3);
    for (size_t i = 0; i < 3; i++)
        for (size_t j = i + 1; j < 3; j++)
            assert_int_not_equal(p.descs[0].replicas[i], p.descs[0].replicas[j]);
    assert_memory_equal(p.descs[1].replicas, p.descs[0].replicas, sizeof(p.descs[0].replicas));
    srv__plan_free(&p);

    /* Alone (nobody answered): one node, one replica. */
    srv__probe_answer none[2] = {answer(2, a, false, false), answer(3, b, false, false)};
    assert_int_equal(srv__plan_bootstrap(&self, &self, me, none, 2, 3, &p), SRV_OK);
    assert_int_equal(p.n_peers, 1);
    assert_int_equal(p.descs[0].n_replicas, 1);
    assert_int_equal(p.descs[0].replicas[0], 1);
    srv__plan_free(&p);

    /* Replication factor 1 with three nodes. */
    assert_int_equal(srv__plan_bootstrap(&self, &self, me, three, 3, 1, &p), SRV_OK);
    assert_int_equal(p.descs[0].n_replicas, 1);
    srv__plan_free(&p);

    /* A --join node that already belongs to a cluster: refuse. */
    srv__probe_answer inited[2] = {answer(2, a, true, false), answer(3, 7, true, true)};
    assert_int_equal(srv__plan_bootstrap(&self, &self, me, inited, 2, 3, &p), SRV_ERR_INITIALIZED);
    assert_int_equal(srv__plan_bootstrap(&self, &self, me, three, 3, 0, &p), SRV_ERR_INVALID);

    /* Out of memory at each allocation. */
    for (long k = 0; k < 12; k++) {
        base_alloc_fail_after(k);
        int rc = srv__plan_bootstrap(&self, &self, me, three, 3, 3, &p);
        base_alloc_fail_after(-1);
        assert_true(rc == SRV_OK || rc == SRV_ERR_NOMEM);
        if (rc == SRV_OK) srv__plan_free(&p);
    }
}

static void test_initial_kv(void **state) {
    (void)state;
    srv_peer peers[3] = {peer(1, 1), peer(2, 2), peer(3, 3)};
    srv__kv *kvs, *again;
    size_t n, n2;
    /* without descriptors: the node table only */
    assert_int_equal(srv__initial_kv(peers, 3, NULL, 0, &kvs, &n), SRV_OK);
    assert_int_equal(n, 4);
    srv__kvs_free(kvs, n);
    srv__plan plan;
    srv_addr self = addr("127.0.0.1", 1);
    srv__probe_answer none[1] = {answer(2, 7, false, false)};
    assert_int_equal(srv__plan_bootstrap(&self, &self, 5, none, 1, 3, &plan), SRV_OK);
    assert_int_equal(srv__initial_kv(peers, 3, plan.descs, plan.n_descs, &kvs, &n), SRV_OK);
    assert_int_equal(n, 4 + 1 + 2);
    /* the range-id counter (above the initial ranges) and a meta entry each */
    assert_int_equal(kvs[4].key_len, RANGE_ID_COUNTER_KEY_LEN);
    assert_memory_equal(kvs[4].key, RANGE_ID_COUNTER_KEY, RANGE_ID_COUNTER_KEY_LEN);
    uint64_t next_range;
    assert_int_equal(range_id_counter_decode(kvs[4].value, kvs[4].value_len, &next_range),
                     RANGE_OK);
    assert_int_equal(next_range, 3);
    for (size_t r = 0; r < 2; r++) {
        base_buf mk = {0};
        range_descriptor d;
        assert_int_equal(range_meta_key(&plan.descs[r], &mk), RANGE_OK);
        assert_int_equal(kvs[5 + r].key_len, mk.len);
        assert_memory_equal(kvs[5 + r].key, mk.data, mk.len);
        assert_true(range_meta_is_key(mk.data, mk.len));
        assert_true(range_descriptor_contains(&plan.descs[0], mk.data, mk.len)); /* in range 1 */
        assert_int_equal(range_descriptor_decode(kvs[5 + r].value, kvs[5 + r].value_len, &d),
                         RANGE_OK);
        assert_int_equal(d.range_id, r + 1);
        range_descriptor_free(&d);
        base_buf_free(&mk);
    }
    uint8_t key[SRV_KEY_SIZE_MAX];
    size_t kl = srv__key_counter(key);
    assert_int_equal(kvs[0].key_len, kl);
    assert_memory_equal(kvs[0].key, key, kl);
    uint64_t next;
    assert_int_equal(srv__counter_decode(kvs[0].value, kvs[0].value_len, &next), SRV_OK);
    assert_int_equal(next, 4);
    for (size_t i = 0; i < 3; i++) {
        srv__node_record r;
        assert_int_equal(srv__key_node_id(kvs[i + 1].key, kvs[i + 1].key_len, false), i + 1);
        assert_int_equal(srv__node_record_decode(kvs[i + 1].value, kvs[i + 1].value_len, &r), SRV_OK);
        assert_int_equal(r.rpc.port, (int)i + 1);
        assert_int_equal(r.join_token, 0);
    }
    /* Deterministic: every replica writes the same bytes. */
    assert_int_equal(srv__initial_kv(peers, 3, plan.descs, plan.n_descs, &again, &n2), SRV_OK);
    assert_int_equal(n2, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(again[i].value_len, kvs[i].value_len);
        assert_memory_equal(again[i].value, kvs[i].value, kvs[i].value_len);
    }
    srv__kvs_free(again, n2);
    srv__kvs_free(kvs, n);
    for (long k = 0; k < 24; k++) {
        base_alloc_fail_after(k);
        int rc = srv__initial_kv(peers, 3, plan.descs, plan.n_descs, &kvs, &n);
        base_alloc_fail_after(-1);
        assert_true(rc == SRV_OK || rc == SRV_ERR_NOMEM);
        if (rc == SRV_OK) srv__kvs_free(kvs, n);
    }
    srv__plan_free(&plan);
}

/* ---- system keys ------------------------------------------------------------------------ */

static void test_system_keys(void **state) {
    (void)state;
    uint8_t k[SRV_KEY_SIZE_MAX], s[SRV_KEY_SIZE_MAX], e[SRV_KEY_SIZE_MAX];
    base_buf table = {0};
    /* Every system key sorts before the first SQL table key (table id 1). */
    assert_int_equal(enc_key_prefix(&table, 1, 0), ENC_OK);
    size_t lens[3];
    uint8_t keys[3][SRV_KEY_SIZE_MAX];
    lens[0] = srv__key_counter(keys[0]);
    lens[1] = srv__key_node(keys[1], UINT64_MAX >> 1);
    lens[2] = srv__key_liveness(keys[2], UINT64_MAX >> 1);
    for (int i = 0; i < 3; i++) {
        size_t m = lens[i] < table.len ? lens[i] : table.len;
        assert_true(memcmp(keys[i], table.data, m) < 0);
    }
    base_buf_free(&table);
    /* Node ids round trip through keys, and spans hold exactly their keys. */
    size_t el, sl = srv__key_node_span(s, e, &el);
    for (uint64_t id = 1; id < 1000000; id = id * 7 + 1) {
        size_t kl = srv__key_node(k, id);
        assert_int_equal(srv__key_node_id(k, kl, false), id);
        assert_int_equal(srv__key_node_id(k, kl, true), 0);
        assert_true(memcmp(k, s, sl) >= 0);
        assert_true(memcmp(k, e, el < kl ? el : kl) < 0);
    }
    size_t kl = srv__key_liveness(k, 5);
    assert_int_equal(srv__key_node_id(k, kl, true), 5);
    assert_true(memcmp(k, e, el) >= 0 || memcmp(k, s, sl) < 0); /* not in the node span */
    sl = srv__key_liveness_span(s, e, &el);
    assert_true(memcmp(k, s, sl) >= 0 && memcmp(k, e, el) < 0);
    assert_int_equal(srv__key_node_id(k, kl - 1, true), 0); /* truncated */
}

/* ---- liveness and status ----------------------------------------------------------------- */

static void test_liveness_state(void **state) {
    (void)state;
    const int64_t s = 1000000000LL, dead = 60 * s;
    int64_t hb = 1000 * s, exp = hb + 4500000000LL;
    assert_int_equal(srv__liveness_state(hb, hb, exp, dead), SRV_LIVENESS_LIVE);
    assert_int_equal(srv__liveness_state(exp - 1, hb, exp, dead), SRV_LIVENESS_LIVE);
    assert_int_equal(srv__liveness_state(exp, hb, exp, dead), SRV_LIVENESS_SUSPECT);
    assert_int_equal(srv__liveness_state(hb + dead - 1, hb, exp, dead), SRV_LIVENESS_SUSPECT);
    assert_int_equal(srv__liveness_state(hb + dead, hb, exp, dead), SRV_LIVENESS_DEAD);
    /* A clock behind the heartbeat: still live, never negative trouble. */
    assert_int_equal(srv__liveness_state(hb - 10 * s, hb, exp, dead), SRV_LIVENESS_LIVE);
    /* dead_after shorter than the ttl: expiration still wins while live. */
    assert_int_equal(srv__liveness_state(hb + 2 * s, hb, exp, s), SRV_LIVENESS_LIVE);
    assert_int_equal(srv__liveness_state(exp + 1, hb, exp, s), SRV_LIVENESS_DEAD);
    assert_int_equal(srv__liveness_state(5, 0, 0, dead), SRV_LIVENESS_UNKNOWN);
    assert_string_equal(srv_liveness_name(SRV_LIVENESS_LIVE), "live");
    assert_string_equal(srv_liveness_name(SRV_LIVENESS_SUSPECT), "suspect");
    assert_string_equal(srv_liveness_name(SRV_LIVENESS_DEAD), "dead");
    assert_string_equal(srv_liveness_name(SRV_LIVENESS_UNKNOWN), "unknown");
}

/* Issue 6: the liveness record's membership and draining flag (version 2,
** version 1 still read), the status rows' (likewise), DRAIN and
** DECOMMISSION messages, and what they refuse. */
static void test_membership_codecs(void **state) {
    (void)state;
    base_buf b = {0};
    /* a version 1 liveness record (before issue 6): active, not draining */
    srv__liveness_record lr = {.epoch = 9, .heartbeat_ns = 10, .expiration_ns = 20,
                               .rpc = addr("h", 1), .sql = addr("h", 2), .replicas = 3,
                               .leases = 4}, lr2;
    assert_int_equal(srv__liveness_record_encode(&lr, &b), SRV_OK);
    assert_int_equal(b.data[0], SRV_LIVENESS_VERSION);
    b.data[0] = 1;
    b.len -= 2; /* v1 ends after the leases */
    lr2.membership = 7;
    lr2.draining = true;
    assert_int_equal(srv__liveness_record_decode(b.data, b.len, &lr2), SRV_OK);
    assert_memory_equal(&lr, &lr2, sizeof lr);
    check_decoder(&b, dec_liveness);
    /* a v1 record with v2's tail is refused (trailing bytes), and v2 without */
    base_buf_reset(&b);
    lr.membership = SRV_MEMBERSHIP_DECOMMISSIONING;
    assert_int_equal(srv__liveness_record_encode(&lr, &b), SRV_OK);
    b.data[0] = 1;
    assert_int_equal(dec_liveness(b.data, b.len), SRV_ERR_CORRUPT);
    b.data[0] = 3; /* unknown version */
    assert_int_equal(dec_liveness(b.data, b.len), SRV_ERR_CORRUPT);
    b.data[0] = SRV_LIVENESS_VERSION;
    b.data[b.len - 2] = 3; /* no such membership */
    assert_int_equal(dec_liveness(b.data, b.len), SRV_ERR_CORRUPT);
    b.data[b.len - 2] = SRV_MEMBERSHIP_DECOMMISSIONED;
    b.data[b.len - 1] = 2; /* unknown flag */
    assert_int_equal(dec_liveness(b.data, b.len), SRV_ERR_CORRUPT);
    lr.membership = 3;
    base_buf_reset(&b);
    assert_int_equal(srv__liveness_record_encode(&lr, &b), SRV_ERR_INVALID);

    /* a version 1 STATUS answer: rows without membership */
    base_buf_reset(&b);
    srv_status_row row = {.node_id = 4, .rpc = addr("h", 1), .sql = addr("h", 1),
                          .liveness = SRV_LIVENESS_LIVE, .since_heartbeat_ms = 5, .epoch = 1,
                          .replicas = 2, .leases = 1};
    srv_status st = {.cluster_id = 1, .answered_by = 4, .rows = &row, .n_rows = 1}, st2;
    assert_int_equal(srv__status_encode(&st, &b), SRV_OK);
    b.data[0] = 1;
    b.len -= 2;
    assert_int_equal(srv__status_decode(b.data, b.len, &st2), SRV_OK);
    assert_int_equal(st2.n_rows, 1);
    assert_memory_equal(&st2.rows[0], &row, sizeof row);
    srv_status_free(&st2);
    check_decoder(&b, dec_status);

    base_buf_reset(&b);
    assert_int_equal(srv__drain_req_encode(&b), SRV_OK);
    check_decoder(&b, dec_drain_req);
    base_buf_reset(&b);
    srv_drain_status ds = {.node_id = 3, .leases = 7, .replicas = 9, .recorded = true}, ds2;
    assert_int_equal(srv__drain_resp_encode(&ds, &b), SRV_OK);
    assert_int_equal(srv__drain_resp_decode(b.data, b.len, &ds2), SRV_OK);
    assert_int_equal(ds2.node_id, 3);
    assert_int_equal(ds2.leases, 7);
    assert_int_equal(ds2.replicas, 9);
    assert_true(ds2.recorded);
    check_decoder(&b, dec_drain_resp);

    base_buf_reset(&b);
    srv__decommission_req dr = {.action = SRV_DECOMMISSION, .finish = true, .node_id = 4}, dr2;
    assert_int_equal(srv__decommission_req_encode(&dr, &b), SRV_OK);
    assert_int_equal(srv__decommission_req_decode(b.data, b.len, &dr2), SRV_OK);
    assert_int_equal(dr2.action, SRV_DECOMMISSION);
    assert_true(dr2.finish);
    assert_int_equal(dr2.node_id, 4);
    check_decoder(&b, dec_decommission_req);
    b.data[1] = 3; /* no such action */
    assert_int_equal(dec_decommission_req(b.data, b.len), SRV_ERR_CORRUPT);
    b.data[1] = SRV_RECOMMISSION;
    b.data[2] = 2; /* unknown flag */
    assert_int_equal(dec_decommission_req(b.data, b.len), SRV_ERR_CORRUPT);
    b.data[2] = 0;
    assert_int_equal(dec_decommission_req(b.data, b.len), SRV_OK);
    b.data[3] = 0x80; /* a provisional id */
    assert_int_equal(dec_decommission_req(b.data, b.len), SRV_ERR_CORRUPT);
    base_buf_reset(&b);
    dr.node_id = 0;
    assert_int_equal(srv__decommission_req_encode(&dr, &b), SRV_ERR_INVALID);
    dr.node_id = 4;
    dr.action = (srv_decommission_action)9;
    assert_int_equal(srv__decommission_req_encode(&dr, &b), SRV_ERR_INVALID);

    base_buf_reset(&b);
    srv_decommission_status cs = {.node_id = 4, .membership = SRV_MEMBERSHIP_DECOMMISSIONING,
                                  .liveness = SRV_LIVENESS_SUSPECT, .replicas = 12}, cs2;
    assert_int_equal(srv__decommission_resp_encode(&cs, &b), SRV_OK);
    assert_int_equal(srv__decommission_resp_decode(b.data, b.len, &cs2), SRV_OK);
    assert_int_equal(cs2.node_id, 4);
    assert_int_equal(cs2.membership, SRV_MEMBERSHIP_DECOMMISSIONING);
    assert_int_equal(cs2.liveness, SRV_LIVENESS_SUSPECT);
    assert_int_equal(cs2.replicas, 12);
    check_decoder(&b, dec_decommission_resp);
    b.data[9] = 3; /* no such membership */
    assert_int_equal(dec_decommission_resp(b.data, b.len), SRV_ERR_CORRUPT);
    b.data[9] = 0;
    b.data[10] = 4; /* no such liveness */
    assert_int_equal(dec_decommission_resp(b.data, b.len), SRV_ERR_CORRUPT);

    assert_string_equal(srv_membership_name(SRV_MEMBERSHIP_ACTIVE), "active");
    assert_string_equal(srv_membership_name(SRV_MEMBERSHIP_DECOMMISSIONING), "decommissioning");
    assert_string_equal(srv_membership_name(SRV_MEMBERSHIP_DECOMMISSIONED), "decommissioned");
    base_buf_free(&b);
}

/* The test-only FAULT control (srv_fault.c): its codec (round trip, every
** truncation and bad field refused), and its answers over the simulated
** transport: refused unless enabled, a disk fault on a real Raft log, no
** transport for a network fault. */
typedef struct fault_reply {
    bool done;
    int rc;
    int32_t status;
    char text[512];
} fault_reply;

static bool g_fault_enabled;
static raft_log *g_fault_log;
static storage_engine *g_fault_store;

static void fault_handler(void *ctx, rpc_transport *t, const rpc_message *msg) {
    (void)ctx;
    if (msg->request_id != 0 && msg->method == SRV_METHOD_FAULT)
        srv__fault_answer(t, msg, g_fault_enabled, NULL, g_fault_log, g_fault_store);
}

static void on_fault_reply(void *ctx, int rc, const rpc_message *m) {
    fault_reply *r = ctx;
    r->done = true;
    r->rc = rc;
    if (rc == RPC_OK) {
        r->status = m->status;
        size_t n = m->payload_len < sizeof r->text - 1 ? m->payload_len : sizeof r->text - 1;
        memcpy(r->text, m->payload, n);
        r->text[n] = '\0';
    }
}

static fault_reply fault_call(rpc_sim_net *net, rpc_transport *from, const srv_fault_request *q) {
    base_buf b = {0};
    assert_int_equal(srv__fault_req_encode(q, &b), SRV_OK);
    fault_reply r = {0};
    assert_int_equal(rpc_request(from, 2, SRV_METHOD_FAULT, b.data, b.len, 1000, on_fault_reply, &r),
                     RPC_OK);
    while (!r.done && rpc_sim_step(net)) {
    }
    assert_true(r.done);
    assert_int_equal(r.rc, RPC_OK);
    base_buf_free(&b);
    return r;
}

static void test_fault_control(void **state) {
    (void)state;
    srv_fault_request q = {.kind = SRV_FAULT_NET, .peer = 7, .delay_ms = 50, .jitter_ms = 25,
                           .loss_per_million = 50000, .clear_all = true, .fail_next = true,
                           .stall_ms = 1234};
    base_buf b = {0};
    assert_int_equal(srv__fault_req_encode(&q, &b), SRV_OK);
    srv_fault_request d;
    assert_int_equal(srv__fault_req_decode(b.data, b.len, &d), SRV_OK);
    assert_int_equal(d.kind, q.kind);
    assert_int_equal(d.peer, 7);
    assert_int_equal(d.delay_ms, 50);
    assert_int_equal(d.jitter_ms, 25);
    assert_int_equal(d.loss_per_million, 50000);
    assert_true(d.clear_all && d.fail_next);
    assert_int_equal(d.stall_ms, 1234);
    for (size_t len = 0; len < b.len; len++)
        assert_int_equal(srv__fault_req_decode(b.data, len, &d), SRV_ERR_CORRUPT);
    uint8_t bad[64];
    memcpy(bad, b.data, b.len);
    bad[1] = 9; /* kind */
    assert_int_equal(srv__fault_req_decode(bad, b.len, &d), SRV_ERR_CORRUPT);
    memcpy(bad, b.data, b.len);
    bad[2] = 4; /* flags */
    assert_int_equal(srv__fault_req_decode(bad, b.len, &d), SRV_ERR_CORRUPT);
    bad[2] = 0;
    bad[b.len] = 0; /* a trailing byte */
    assert_int_equal(srv__fault_req_decode(bad, b.len + 1, &d), SRV_ERR_CORRUPT);
    base_buf_free(&b);

    rpc_sim_config sc;
    rpc_sim_config_init(&sc, 1);
    rpc_sim_net *net = NULL;
    assert_int_equal(rpc_sim_net_new(&sc, &net), RPC_OK);
    rpc_transport *t1 = NULL, *t2 = NULL;
    assert_int_equal(rpc_sim_add_node(net, 1, NULL, &t1), RPC_OK);
    assert_int_equal(rpc_sim_add_node(net, 2, NULL, &t2), RPC_OK);
    rpc_set_handler(t2, fault_handler, NULL);
    char dir[] = "/tmp/srv-fault-XXXXXX";
    assert_non_null(mkdtemp(dir));
    raft_log_options lo = {.dir = dir};
    assert_int_equal(raft_log_open(&lo, &g_fault_log, NULL, 0), RAFT_LOG_OK);

    /* Not enabled: refused, nothing changed. */
    g_fault_enabled = false;
    srv_fault_request disk = {.kind = SRV_FAULT_DISK, .fail_next = true};
    fault_reply r = fault_call(net, t1, &disk);
    assert_int_equal(r.status, SRV_ERR_REFUSED);
    assert_non_null(strstr(r.text, "--enable-test-faults"));
    bool armed, poisoned;
    int64_t left;
    raft_log_fault_state(g_fault_log, &armed, &left, &poisoned);
    assert_false(armed);
    /* Enabled: armed, described; cleared; a stall out of range refused. */
    g_fault_enabled = true;
    r = fault_call(net, t1, &disk);
    assert_int_equal(r.status, SRV_OK);
    assert_non_null(strstr(r.text, "next fdatasync fails: yes"));
    raft_log_fault_state(g_fault_log, &armed, &left, &poisoned);
    assert_true(armed);
    srv_fault_request clear = {.kind = SRV_FAULT_DISK};
    r = fault_call(net, t1, &clear);
    assert_int_equal(r.status, SRV_OK);
    raft_log_fault_state(g_fault_log, &armed, &left, &poisoned);
    assert_false(armed);
    srv_fault_request too_long = {.kind = SRV_FAULT_DISK, .stall_ms = RAFT_LOG_FAULT_STALL_MS_MAX + 1};
    assert_int_equal(fault_call(net, t1, &too_long).status, SRV_ERR_INVALID);
    /* A network fault needs the node's transport (none here). */
    srv_fault_request netq = {.kind = SRV_FAULT_NET, .delay_ms = 10};
    assert_int_equal(fault_call(net, t1, &netq).status, SRV_ERR_INVALID);
    srv_fault_request show = {.kind = SRV_FAULT_SHOW};
    r = fault_call(net, t1, &show);
    assert_int_equal(r.status, SRV_OK);
    assert_non_null(strstr(r.text, "net: none"));
    /* No Raft log (a node whose ranges keep their logs in the engine). */
    raft_log_close(g_fault_log);
    g_fault_log = NULL;
    assert_int_equal(fault_call(net, t1, &disk).status, SRV_ERR_INVALID);
    /* The store: no engine or the in-memory twin refused; RocksDB armed,
    ** described, cleared. */
    srv_fault_request store = {.kind = SRV_FAULT_STORE, .fail_next = true};
    assert_int_equal(fault_call(net, t1, &store).status, SRV_ERR_INVALID);
    storage_options so = {.dir = NULL, .create_if_missing = true};
    assert_int_equal(storage_open(&so, &g_fault_store), STORAGE_OK);
    assert_int_equal(fault_call(net, t1, &store).status, SRV_ERR_INVALID);
    storage_close(g_fault_store);
    char sdir[96];
    snprintf(sdir, sizeof sdir, "%s/store", dir);
    so.dir = sdir;
    assert_int_equal(storage_open(&so, &g_fault_store), STORAGE_OK);
    r = fault_call(net, t1, &store);
    assert_int_equal(r.status, SRV_OK);
    assert_non_null(strstr(r.text, "store: next sync fails: yes"));
    storage_fault_state(g_fault_store, &armed, &left, &poisoned);
    assert_true(armed);
    srv_fault_request store_clear = {.kind = SRV_FAULT_STORE};
    assert_int_equal(fault_call(net, t1, &store_clear).status, SRV_OK);
    storage_fault_state(g_fault_store, &armed, &left, &poisoned);
    assert_false(armed || poisoned);
    storage_close(g_fault_store);
    g_fault_store = NULL;
    rpc_sim_net_free(net);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_status_format(void **state) {
    (void)state;
    srv_status_row rows[3] = {
        {.node_id = 1, .rpc = addr("127.0.0.1", 26257), .sql = addr("127.0.0.1", 26257),
         .liveness = SRV_LIVENESS_LIVE, .since_heartbeat_ms = 812, .replicas = 1, .leases = 1},
        {.node_id = 2, .rpc = addr("::1", 26258), .sql = addr("::1", 26258),
         .liveness = SRV_LIVENESS_SUSPECT, .since_heartbeat_ms = 6050, .replicas = 1,
         .membership = SRV_MEMBERSHIP_DECOMMISSIONING, .draining = true},
        {.node_id = 12, .rpc = addr("127.0.0.1", 26259), .sql = addr("", 0),
         .liveness = SRV_LIVENESS_UNKNOWN, .since_heartbeat_ms = -1},
    };
    srv_status s = {.cluster_id = 0xabc, .answered_by = 1, .rows = rows, .n_rows = 3};
    base_buf out = {0};
    assert_int_equal(srv_status_format(&s, &out), SRV_OK);
    base_buf_append_byte(&out, 0);
    const char *want =
        "id  rpc address      sql address      liveness            membership       draining  "
        "replicas  leases\n"
        "--  ---------------  ---------------  ------------------  ---------------  --------  "
        "--------  ------\n"
        " 1  127.0.0.1:26257  127.0.0.1:26257  live (0.8s ago)     active           no        "
        "       1       1\n"
        " 2  [::1]:26258      [::1]:26258      suspect (6.0s ago)  decommissioning  yes       "
        "       1       0\n"
        "12  127.0.0.1:26259  -                unknown             active           no        "
        "       0       0\n"
        "(3 nodes; cluster 0000000000000abc, answered by node 1)\n";
    assert_string_equal((const char *)out.data, want);
    base_buf_free(&out);
}

/* ---- persistence ----------------------------------------------------------------------- */

static void test_store(void **state) {
    (void)state;
    storage_engine *e;
    storage_options o = {.dir = NULL, .create_if_missing = true};
    assert_int_equal(storage_open(&o, &e), STORAGE_OK);
    srv_identity id;
    assert_int_equal(srv_store_identity(e, &id), SRV_OK);
    assert_false(id.initialized);
    bool has;
    assert_int_equal(srv_store_has_data(e, &has), SRV_OK);
    assert_false(has);

    uint64_t t1, t2;
    assert_int_equal(srv__store_join_token(e, &t1), SRV_OK);
    assert_int_equal(srv__store_join_token(e, &t2), SRV_OK);
    assert_int_not_equal(t1, 0);
    assert_int_equal(t1, t2); /* persisted, not redrawn */

    srv_peer peers[2] = {peer(1, 1), peer(2, 2)};
    range_descriptor descs[2];
    make_descs(descs, 2);
    bool hosted[2] = {true, false};
    srv__state st = {.initialized = true, .cluster_id = 42, .node_id = 2, .init_token = 7,
                     .peers = peers, .n_peers = 2, .descs = descs, .hosted = hosted, .n_descs = 2};
    srv__kv *kvs;
    size_t n_kvs;
    assert_int_equal(srv__initial_kv(peers, 2, NULL, 0, &kvs, &n_kvs), SRV_OK);
    hlc_timestamp ts = {1700000000000000000LL, 0};
    assert_int_equal(srv__store_save(e, &st, kvs, n_kvs, ts), SRV_OK);
    srv__kvs_free(kvs, n_kvs);

    srv__state back;
    assert_int_equal(srv__store_load(e, &back), SRV_OK);
    assert_true(back.initialized);
    assert_int_equal(back.cluster_id, 42);
    assert_int_equal(back.node_id, 2);
    assert_int_equal(back.init_token, 7);
    assert_int_equal(back.n_peers, 2);
    assert_int_equal(back.n_descs, 2);
    assert_true(back.hosted[0]);
    assert_false(back.hosted[1]);
    assert_int_equal(back.descs[1].start_key[0], 'm');
    srv__state_free(&back);
    assert_int_equal(srv_store_identity(e, &id), SRV_OK);
    assert_true(id.initialized);
    assert_int_equal(id.node_id, 2);
    /* The initial KV data went in at ts as MVCC versions. */
    assert_int_equal(srv_store_has_data(e, &has), SRV_OK);
    assert_true(has);
    uint8_t key[SRV_KEY_SIZE_MAX];
    size_t kl = srv__key_counter(key);
    storage_value v = {0};
    assert_int_equal(storage_get(e, NULL, key, kl, ts, &v), STORAGE_OK);
    assert_int_equal(hlc_compare(v.ts, ts), 0);
    storage_value_free(&v);
    assert_int_equal(storage_get(e, NULL, key, kl, hlc_prev(ts), &v), STORAGE_NOT_FOUND);
    storage_value_free(&v);

    /* The peer table alone. */
    srv_peer more[3] = {peer(1, 1), peer(2, 2), peer(3, 3)};
    assert_int_equal(srv__store_save_peers(e, more, 3), SRV_OK);
    assert_int_equal(srv__store_load(e, &back), SRV_OK);
    assert_int_equal(back.n_peers, 3);
    srv__state_free(&back);

    /* A corrupt identity is an error, not a crash. */
    storage_batch *b = storage_batch_new();
    uint8_t junk[3] = {SRV_WIRE_VERSION, 1, 2};
    assert_int_equal(storage_batch_put_raw(b, (const uint8_t *)"srv/ident", 9, junk, 3), STORAGE_OK);
    assert_int_equal(storage_write(e, b, false), STORAGE_OK);
    storage_batch_free(b);
    assert_int_equal(srv__store_load(e, &back), SRV_ERR_CORRUPT);
    free_descs(descs, 2);
    storage_close(e);
}

int main(void) {
    const char *seed = getenv("MERIDIAN_SEED");
    rng_state = seed != NULL ? strtoull(seed, NULL, 10) : (uint64_t)base_realtime_ns();
    printf("test_srv: seed %llu (MERIDIAN_SEED=%llu replays it)\n",
           (unsigned long long)rng_state, (unsigned long long)rng_state);
    base_log_set_level(BASE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_round_trips),
        cmocka_unit_test(test_codec_refusals),
        cmocka_unit_test(test_peer_table),
        cmocka_unit_test(test_plan_bootstrap),
        cmocka_unit_test(test_initial_kv),
        cmocka_unit_test(test_system_keys),
        cmocka_unit_test(test_liveness_state),
        cmocka_unit_test(test_membership_codecs),
        cmocka_unit_test(test_fault_control),
        cmocka_unit_test(test_status_format),
        cmocka_unit_test(test_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
