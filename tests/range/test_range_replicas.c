/*
** tests/range/test_range_replicas.c: replica changes end to end
** (docs/range.md, "Replica changes and snapshots"): four nodes over rpc_uv
** on loopback, each a range_node and a range_server, a ticker thread, and
** a range_router on node 1 (its server in-process). Range 1 starts on nodes
** 1-3 with a small log truncation threshold.
**
**   - CHANGE_REPLICAS through range_router_change_replicas: node 4 added
**     (learner, snapshot, promotion: two configuration changes, generation
**     + 2), node 1 removed (it leads or not: the router follows the lease to
**     whoever does it), node 1 added back (its tombstone is older) while
**     node 2 leaves; every acknowledged write stays readable through the
**     router, each new replica holds them all, a removed replica leaves no
**     data and a tombstone, and the members end with identical MVCC data;
**   - no-ops and refusals: adding a voter again changes nothing, add ==
**     remove is RANGE_ERR_INVALID, an uncached range RANGE_NOT_FOUND;
**   - a removed node restarted and opened by its owner with the range's
**     bootstrap configuration does not make the replica again.
*/
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "base/base.h"
#include "range/range.h"
#include "rpc/rpc.h"
#include "storage/storage.h"

#define NODES 4
#define RANGE_ID 1
#define TICK_MS 10
#define WAIT_MS_MAX 20000
#define ROUTER_DEADLINE_MS 15000
#define ROUTER_RPC_TIMEOUT_MS 1000
#define SERVER_WAIT_MS 3000
#define TRUNCATE_ENTRIES 16
#define KEYS_MAX 128

typedef struct node {
    uint64_t id;
    rpc_uv *uv;
    storage_engine *engine;
    hlc_clock *clock;
    range_node *rn;              /* NULL while restarting (under dispatch_mu) */
    pthread_mutex_t dispatch_mu; /* guards rn and server for the handler and ticker */
    range_server *server;        /* NULL once stopping */
    range_server *server_owned;
} node;

typedef struct cluster {
    node n[NODES + 1];
    pthread_t ticker;
    atomic_bool stop;
    range_router *router; /* on node 1 */
    /* what was acknowledged */
    char keys[KEYS_MAX][16], values[KEYS_MAX][16];
    hlc_timestamp ts[KEYS_MAX];
    int n_keys;
} cluster;

static void dispatch(void *ctx, rpc_transport *t, const rpc_message *msg)
{
    node *nd = ctx;
    pthread_mutex_lock(&nd->dispatch_mu);
    if (msg->method == RANGE_RPC_METHOD_RAFT && nd->rn != NULL)
        range_node_handle_rpc(nd->rn, t, msg);
    else if (msg->method == RANGE_RPC_METHOD_KV && nd->server != NULL)
        range_server_handle_rpc(nd->server, t, msg);
    pthread_mutex_unlock(&nd->dispatch_mu);
}

static void *ticker_main(void *arg)
{
    cluster *c = arg;
    while (!atomic_load(&c->stop)) {
        struct timespec ts = {0, TICK_MS * 1000000L};
        nanosleep(&ts, NULL); /* the nodes' timer, not a wait for a condition */
        for (int i = 1; i <= NODES; i++) {
            pthread_mutex_lock(&c->n[i].dispatch_mu);
            if (c->n[i].rn != NULL)
                range_node_tick(c->n[i].rn);
            pthread_mutex_unlock(&c->n[i].dispatch_mu);
        }
    }
    return NULL;
}

/* Poll pred once per tick, bounded. */
static bool wait_until(cluster *c, bool (*pred)(cluster *, uint64_t), uint64_t arg)
{
    int64_t deadline = base_monotonic_ns() + (int64_t)WAIT_MS_MAX * 1000000;
    while (base_monotonic_ns() < deadline) {
        if (pred(c, arg))
            return true;
        struct timespec ts = {0, TICK_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

static void make_node(cluster *c, int i, bool with_replica)
{
    node *nd = &c->n[i];
    range_node_config nc = {.transport = rpc_uv_transport(nd->uv), .engine = nd->engine,
                            .no_handler = true};
    assert_int_equal(range_node_new(&nc, &nd->rn), RANGE_OK);
    range_replica_config rc = {.range_id = RANGE_ID, .n_peers = 3,
                               .random_seed = (uint64_t)i * 7919,
                               .log_truncate_entries = TRUNCATE_ENTRIES};
    for (int k = 0; k < 3; k++)
        rc.peers[k] = (uint64_t)k + 1;
    if (with_replica)
        assert_int_equal(range_node_add_replica(nd->rn, &rc, NULL), RANGE_OK);
    range_server_config sc = {.node = nd->rn, .clock = nd->clock, .workers = 4,
                              .wait_timeout_ms = SERVER_WAIT_MS};
    assert_int_equal(range_server_new(&sc, &nd->server_owned), RANGE_OK);
    pthread_mutex_lock(&nd->dispatch_mu);
    nd->server = nd->server_owned;
    pthread_mutex_unlock(&nd->dispatch_mu);
}

/* The server before the node; the handler first stops handing it requests. */
static void drop_node(cluster *c, int i)
{
    node *nd = &c->n[i];
    pthread_mutex_lock(&nd->dispatch_mu);
    nd->server = NULL;
    pthread_mutex_unlock(&nd->dispatch_mu);
    range_server_free(nd->server_owned); /* answers on the still-running transport */
    nd->server_owned = NULL;
}

static void start_cluster(cluster *c)
{
    int ports[NODES + 1];
    for (int i = 1; i <= NODES; i++) {
        node *nd = &c->n[i];
        nd->id = (uint64_t)i;
        pthread_mutex_init(&nd->dispatch_mu, NULL);
        assert_int_equal(hlc_clock_new(hlc_system_clock(), HLC_DEFAULT_MAX_OFFSET_NS, &nd->clock),
                         0);
        storage_options so = {.dir = NULL, .create_if_missing = true};
        assert_int_equal(storage_open(&so, &nd->engine), STORAGE_OK);
        rpc_uv_config cfg;
        rpc_uv_config_init(&cfg);
        cfg.node_id = (rpc_node_id)i;
        cfg.listen_host = "127.0.0.1";
        cfg.clock = nd->clock;
        cfg.handler = dispatch;
        cfg.handler_ctx = nd;
        cfg.random_seed = (uint64_t)i;
        assert_int_equal(rpc_uv_start(&cfg, &nd->uv), RPC_OK);
        ports[i] = rpc_uv_listen_port(nd->uv);
    }
    for (int i = 1; i <= NODES; i++)
        for (int j = 1; j <= NODES; j++)
            if (i != j)
                assert_int_equal(rpc_uv_add_peer(c->n[i].uv, (rpc_node_id)j, "127.0.0.1", ports[j]),
                                 RPC_OK);
    for (int i = 1; i <= NODES; i++)
        make_node(c, i, i <= 3); /* node 4: a node without the range */
    range_router_config rcfg = {.transport = rpc_uv_transport(c->n[1].uv), .clock = c->n[1].clock,
                                .local = c->n[1].server_owned, .local_node_id = 1,
                                .deadline_ms = ROUTER_DEADLINE_MS,
                                .rpc_timeout_ms = ROUTER_RPC_TIMEOUT_MS, .random_seed = 101};
    assert_int_equal(range_router_new(&rcfg, &c->router), RANGE_OK);
    range_descriptor d;
    assert_int_equal(range_replica_descriptor(range_node_replica(c->n[1].rn, RANGE_ID), &d),
                     RANGE_OK);
    assert_int_equal(range_router_update_descriptor(c->router, &d), RANGE_OK);
    range_descriptor_free(&d);
    assert_int_equal(pthread_create(&c->ticker, NULL, ticker_main, c), 0);
}

static void stop_cluster(cluster *c)
{
    range_router_free(c->router);
    for (int i = 1; i <= NODES; i++)
        drop_node(c, i);
    atomic_store(&c->stop, true);
    pthread_join(c->ticker, NULL);
    /* range.h's order for rpc_uv: transport, forget, node */
    for (int i = 1; i <= NODES; i++) {
        rpc_uv_free(c->n[i].uv);
        range_node_forget_transport(c->n[i].rn);
    }
    for (int i = 1; i <= NODES; i++) {
        node *nd = &c->n[i];
        range_node_free(nd->rn);
        storage_close(nd->engine);
        hlc_clock_free(nd->clock);
        pthread_mutex_destroy(&nd->dispatch_mu);
    }
}

/* ---- writes and reads through the router -------------------------------------- */

static void commit_keys(cluster *c, int count)
{
    range_kv *kv = range_router_kv(c->router);
    for (int k = 0; k < count; k++) {
        assert_true(c->n_keys < KEYS_MAX);
        int i = c->n_keys;
        snprintf(c->keys[i], sizeof(c->keys[i]), "key%03d", i);
        snprintf(c->values[i], sizeof(c->values[i]), "value%03d", i);
        range_write w = {(const uint8_t *)c->keys[i], strlen(c->keys[i]),
                         (const uint8_t *)c->values[i], strlen(c->values[i]), false};
        range_commit_request req = {.txn_id = 1000 + (uint64_t)i,
                                    .read_ts = hlc_now(c->n[1].clock), .writes = &w,
                                    .write_count = 1};
        range_conflict conflict = {0};
        int rc = kv->ops->commit(kv, &req, &c->ts[i], &conflict);
        range_conflict_free(&conflict);
        if (rc != RANGE_OK) {
            char why[256] = "";
            if (kv->ops->last_error != NULL)
                kv->ops->last_error(kv, why, sizeof(why));
            fail_msg("commit of %s: %d (%s)", c->keys[i], rc, why);
        }
        c->n_keys++;
    }
}

static void read_all(cluster *c)
{
    range_kv *kv = range_router_kv(c->router);
    base_buf out = {0};
    hlc_timestamp now = hlc_now(c->n[1].clock);
    for (int i = 0; i < c->n_keys; i++) {
        int rc = kv->ops->get(kv, (const uint8_t *)c->keys[i], strlen(c->keys[i]), now, &out);
        if (rc != RANGE_OK)
            fail_msg("read of %s: %d", c->keys[i], rc);
        assert_int_equal(out.len, strlen(c->values[i]));
        assert_memory_equal(out.data, c->values[i], out.len);
    }
    base_buf_free(&out);
}

/* ---- replica state ------------------------------------------------------------- */

static bool holds_all(cluster *c, uint64_t id)
{
    range_replica *r = range_node_replica(c->n[id].rn, RANGE_ID); /* rn: test thread only */
    if (r == NULL)
        return false;
    base_buf out = {0};
    bool ok = true;
    for (int i = 0; i < c->n_keys && ok; i++)
        ok = range_replica_get(r, (const uint8_t *)c->keys[i], strlen(c->keys[i]), c->ts[i],
                               &out) == RANGE_OK &&
             out.len == strlen(c->values[i]) && memcmp(out.data, c->values[i], out.len) == 0;
    base_buf_free(&out);
    return ok;
}

/* id's replica has applied the configuration that makes it a voter */
static bool voter_here(cluster *c, uint64_t id)
{
    range_replica *r = range_node_replica(c->n[id].rn, RANGE_ID);
    raft_membership applied;
    return r != NULL && range_replica_membership(r, &applied, NULL) == RANGE_OK &&
           raft_membership_is_voter(&applied, id);
}

static bool gone(cluster *c, uint64_t id)
{
    return range_node_replica(c->n[id].rn, RANGE_ID) == NULL;
}

static uint64_t versions_in(storage_engine *e)
{
    storage_iter_options o = {.mode = STORAGE_ITER_ALL_VERSIONS};
    storage_iter *it;
    uint64_t n = 0;
    assert_int_equal(storage_iter_open(e, NULL, &o, &it), STORAGE_OK);
    while (storage_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL) == 1)
        n++;
    storage_iter_close(it);
    return n;
}

static uint64_t mvcc_hash(storage_engine *e)
{
    storage_iter_options o = {.mode = STORAGE_ITER_ALL_VERSIONS};
    storage_iter *it;
    uint64_t h = 1469598103934665603ULL;
    const uint8_t *k, *v;
    size_t kl, vl;
    hlc_timestamp ts;
    bool tomb;
    assert_int_equal(storage_iter_open(e, NULL, &o, &it), STORAGE_OK);
    while (storage_iter_next(it, &k, &kl, &ts, &v, &vl, &tomb) == 1) {
        h = (h ^ base_crc32c(0, k, kl)) * 1099511628211ULL;
        h = (h ^ (uint64_t)ts.wall_ns ^ (uint64_t)ts.logical << 40) * 1099511628211ULL;
        if (!tomb)
            h = (h ^ base_crc32c(0, v, vl)) * 1099511628211ULL;
    }
    storage_iter_close(it);
    return h;
}

static bool same_data(cluster *c, uint64_t members_mask)
{
    uint64_t h = 0;
    bool first = true;
    for (int i = 1; i <= NODES; i++) {
        if (!(members_mask & (1u << i)))
            continue;
        range_replica *r = range_node_replica(c->n[i].rn, RANGE_ID);
        if (r == NULL)
            return false;
        uint64_t hi = mvcc_hash(c->n[i].engine);
        if (!first && hi != h)
            return false;
        h = hi;
        first = false;
    }
    return true;
}

static bool same_data_pred(cluster *c, uint64_t mask) { return same_data(c, mask); }

static bool has_tombstone(storage_engine *e)
{
    uint8_t key[8 + 8 + 1];
    base_buf v = {0};
    memcpy(key, "range/r/", 8);
    for (int i = 0; i < 8; i++)
        key[8 + i] = (uint8_t)((uint64_t)RANGE_ID >> (56 - 8 * i));
    key[16] = 'z';
    int rc = storage_get_raw(e, key, sizeof(key), &v);
    base_buf_free(&v);
    return rc == STORAGE_OK;
}

static void check_replicas(const range_descriptor *d, const uint64_t *want, size_t n)
{
    assert_int_equal(d->n_replicas, n);
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t k = 0; k < d->n_replicas; k++)
            found = found || d->replicas[k] == want[i];
        if (!found)
            fail_msg("n%llu missing from the descriptor", (unsigned long long)want[i]);
    }
}

static int change(cluster *c, uint64_t add, uint64_t remove, range_descriptor *out)
{
    int rc = range_router_change_replicas(c->router, RANGE_ID, add, remove, out);
    if (rc != RANGE_OK) {
        char why[256] = "";
        range_kv *kv = range_router_kv(c->router);
        if (kv->ops->last_error != NULL)
            kv->ops->last_error(kv, why, sizeof(why));
        fprintf(stderr, "change +n%llu -n%llu: %d (%s)\n", (unsigned long long)add,
                (unsigned long long)remove, rc, why);
    }
    return rc;
}

static void test_change_replicas(void **state)
{
    (void)state;
    cluster *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    start_cluster(c);
    range_descriptor d;

    /* enough writes that every log was truncated: the new replica can only
    ** be caught up by a snapshot */
    commit_keys(c, 3 * TRUNCATE_ENTRIES);
    assert_int_equal(versions_in(c->n[4].engine), 0);

    /* add node 4: learner, snapshot, promotion */
    assert_int_equal(change(c, 4, 0, &d), RANGE_OK);
    check_replicas(&d, (uint64_t[]){1, 2, 3, 4}, 4);
    assert_int_equal(d.generation, 3); /* two configuration changes */
    range_descriptor_free(&d);
    assert_true(wait_until(c, holds_all, 4));
    assert_true(wait_until(c, voter_here, 4));
    commit_keys(c, 5);

    /* adding it again: nothing to do */
    assert_int_equal(change(c, 4, 0, &d), RANGE_OK);
    assert_int_equal(d.generation, 3);
    range_descriptor_free(&d);

    /* remove node 1 (whose router sends this; if it leads, the lease moves
    ** first and the new leaseholder removes it) */
    assert_int_equal(change(c, 0, 1, &d), RANGE_OK);
    check_replicas(&d, (uint64_t[]){2, 3, 4}, 3);
    assert_int_equal(d.generation, 4);
    range_descriptor_free(&d);
    assert_true(wait_until(c, gone, 1));
    assert_int_equal(versions_in(c->n[1].engine), 0); /* the data went with it */
    assert_true(has_tombstone(c->n[1].engine));
    commit_keys(c, 5); /* the router on node 1 now routes elsewhere */
    read_all(c);

    /* node 1 back (a newer generation than its tombstone), node 2 out */
    assert_int_equal(change(c, 1, 2, &d), RANGE_OK);
    check_replicas(&d, (uint64_t[]){1, 3, 4}, 3);
    assert_int_equal(d.generation, 7);
    range_descriptor_free(&d);
    assert_true(wait_until(c, holds_all, 1));
    assert_false(has_tombstone(c->n[1].engine));
    assert_true(wait_until(c, gone, 2));
    assert_int_equal(versions_in(c->n[2].engine), 0);
    commit_keys(c, 5);
    read_all(c);
    assert_true(wait_until(c, same_data_pred, (1u << 1) | (1u << 3) | (1u << 4)));

    /* refusals */
    assert_int_equal(range_router_change_replicas(c->router, RANGE_ID, 3, 3, NULL),
                     RANGE_ERR_INVALID);
    assert_int_equal(range_router_change_replicas(c->router, 99, 3, 0, NULL), RANGE_NOT_FOUND);

    /* node 2 restarted: its owner opens the range with the bootstrap
    ** configuration; the tombstone keeps it removed */
    drop_node(c, 2);
    pthread_mutex_lock(&c->n[2].dispatch_mu);
    range_node *old = c->n[2].rn;
    c->n[2].rn = NULL; /* the handler and the ticker leave it alone from here */
    pthread_mutex_unlock(&c->n[2].dispatch_mu);
    range_node_free(old);
    {
        node *nd = &c->n[2];
        range_node_config nc = {.transport = rpc_uv_transport(nd->uv), .engine = nd->engine,
                                .no_handler = true};
        range_node *fresh = NULL;
        assert_int_equal(range_node_new(&nc, &fresh), RANGE_OK);
        range_replica_config rc = {.range_id = RANGE_ID, .n_peers = 3, .random_seed = 5};
        for (int k = 0; k < 3; k++)
            rc.peers[k] = (uint64_t)k + 1;
        range_replica *stub = NULL;
        assert_int_equal(range_node_add_replica(fresh, &rc, &stub), RANGE_OK);
        assert_non_null(stub);
        assert_null(range_node_replica(fresh, RANGE_ID));
        size_t opened = 9;
        assert_int_equal(range_node_open_stored(fresh, &rc, &opened), RANGE_OK);
        assert_int_equal(opened, 0);
        assert_int_equal(versions_in(nd->engine), 0);
        range_server_config sc = {.node = fresh, .clock = nd->clock, .workers = 4,
                                  .wait_timeout_ms = SERVER_WAIT_MS};
        assert_int_equal(range_server_new(&sc, &nd->server_owned), RANGE_OK);
        pthread_mutex_lock(&nd->dispatch_mu);
        nd->rn = fresh;
        nd->server = nd->server_owned;
        pthread_mutex_unlock(&nd->dispatch_mu);
    }
    commit_keys(c, 3);
    read_all(c);
    fprintf(stderr, "replicas: %d writes survived 3 changes (n4 in, n1 out, n1 in / n2 out)\n",
            c->n_keys);
    stop_cluster(c);
    free(c);
}

int main(void)
{
    base_log_set_level(BASE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_change_replicas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
