/*
** tests/txn/test_txn_cluster.c: txn/ over the cluster path, end to end in one
** process. Three nodes on rpc_uv loopback, each with an in-memory store, a
** range_node hosting a replica of range 1 ([empty, +inf) on nodes 1..3), a
** range_server, a range_router (local = its server) and a txn_db over the
** router. One rpc handler per node dispatches Raft messages to the node and
** KV requests to the server; a ticker thread is the nodes' timer.
**
** Covered: commits through every node, reads and scans of every commit
** through every node, a serialization conflict between two nodes, and
** leader failover: the leader's node stops (its handler drops every
** message and it is no longer ticked: a crash as the network sees it) while
** the other nodes keep committing through their routers. Splits
** (txn_db_split_at): the new range id from the counter, both halves serving
** through every node, meta written (a router knowing only the left finds
** the right there), a boundary again is a no-op; a single node's txn_db
** refuses to split. Two-phase commit (docs/txn.md): a transaction writing
** both halves commits and its writes are visible at exactly its commit
** timestamp (not just below it) through every node; a coordinator that
** dies between PREPARE and END_TXN (simulated: a prepare through the
** router, never ended) leaves intents that a reader gets through once the
** record expires (RANGE_TXN_RECORD_EXPIRY_MS: one wait of about 5 s), after
** which the dead coordinator cannot commit any more. Statement-time locks
** (docs/txn.md section 5): two transactions on two nodes add to one
** balance in locking mode; the second, begun before the first committed,
** waits for the first's lock, refreshes to its commit and reads its value,
** and both commit without 40001 (the balance holds both deltas). Large
** transactions (docs/txn.md section 3.3), on RocksDB stores: 50,000 rows
** in one range and over two, committed, rolled back, aborted by a conflict
** after their chunks were prepared, and a 100,000-row delete span the
** router cuts into pieces. Stale reads (docs/txn.md section 8): AS OF
** SYSTEM TIME transactions through a follower's node, served by its own
** replica once the closed timestamp passed them, also with the
** leaseholder's node stopped.
** Merges (txn_db_merge_at, docs/range.md "Merges"): a split undone, both
** sides' rows through every node, meta holding the merged range only, at
** once (the merge commits its meta transaction, decision 010).
** The atomic split (docs/decisions/010-atomic-meta.md): a coordinator dead
** after its split (meta read at once through the COMMITTED record) or
** before it (the reader aborts the expired record, meta unchanged, the
** split refused), a split refused because its range moved, and meta lookups
** running during a split. Atomic replica changes (decision 010, item 8):
** meta equal to the replicas' descriptor when txn_db_change_replicas
** returns, a coordinator dead after a step (meta read at once) or before it
** (a reader aborts the expired record; the step is then refused).
**
** Every wait is bounded (router deadlines; wait_for with a limit).
*/
#define _GNU_SOURCE /* nftw's FTW_DEPTH */
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "range/range.h"
#include "rpc/rpc.h"
#include "txn/txn.h"

#define NODES 3
#define TICK_MS 10
#define WAIT_MS_MAX 20000
#define ROUTER_DEADLINE_MS 15000
#define ROUTER_RPC_TIMEOUT_MS 1000
#define SERVER_WAIT_MS 2000
#define COMMIT_TRIES_MAX 20 /* 40001 retries of one test transaction */

typedef struct node {
    uint64_t id;
    rpc_uv *uv;
    storage_engine *engine;
    hlc_clock *clock;
    range_node *rn;
    range_replica *rep;
    pthread_mutex_t dispatch_mu; /* guards server for the handler */
    range_server *server;        /* NULL once stopping */
    range_server *server_owned;
    range_router *router;
    txn_db *db;
    atomic_bool dead; /* drops every message, no ticks */
    char dir[64];     /* RocksDB store (start_cluster_on disk); "" in memory */
} node;

typedef struct cluster {
    node n[NODES + 1];
    pthread_t ticker;
    atomic_bool stop;
} cluster;

/* start_cluster: the servers close timestamps and publish them (docs/txn.md
** section 8), at this lag and period (test_stale_reads) */
static bool closed_timestamps;
#define CLOSED_LAG_MS 300
#define CLOSED_PERIOD_MS 50

static void dispatch(void *ctx, rpc_transport *t, const rpc_message *msg) {
    node *nd = ctx;
    if (atomic_load(&nd->dead)) return; /* a crashed node answers nothing */
    if (msg->method == RANGE_RPC_METHOD_RAFT) {
        range_node_handle_rpc(nd->rn, t, msg);
        return;
    }
    if (msg->method == RANGE_RPC_METHOD_KV || msg->method == RANGE_RPC_METHOD_CLOSED) {
        pthread_mutex_lock(&nd->dispatch_mu);
        if (nd->server != NULL) range_server_handle_rpc(nd->server, t, msg);
        pthread_mutex_unlock(&nd->dispatch_mu);
    }
}

static void *ticker_main(void *arg) {
    cluster *c = arg;
    while (!atomic_load(&c->stop)) {
        struct timespec ts = {0, TICK_MS * 1000000L};
        nanosleep(&ts, NULL); /* the nodes' timer, not a wait for a condition */
        for (int i = 1; i <= NODES; i++)
            if (!atomic_load(&c->n[i].dead)) range_node_tick(c->n[i].rn);
    }
    return NULL;
}

static uint64_t find_leader(cluster *c) {
    for (int i = 1; i <= NODES; i++) {
        if (atomic_load(&c->n[i].dead)) continue;
        range_replica_status st;
        range_replica_get_status(c->n[i].rep, &st);
        if (st.leader) return (uint64_t)i;
    }
    return 0;
}

static bool wait_leader(cluster *c) {
    int64_t deadline = base_monotonic_ns() + (int64_t)WAIT_MS_MAX * 1000000;
    while (base_monotonic_ns() < deadline) {
        if (find_leader(c) != 0) return true;
        struct timespec ts = {0, TICK_MS * 1000000L};
        nanosleep(&ts, NULL); /* poll the Raft status once per tick, bounded */
    }
    return false;
}

/* disk: each node's store is RocksDB in a fresh directory (the in-memory
** twin inserts in O(entries): too slow for the large transactions' rows). */
static void start_cluster_on(cluster *c, bool disk) {
    int ports[NODES + 1];
    for (int i = 1; i <= NODES; i++) {
        node *nd = &c->n[i];
        nd->id = (uint64_t)i;
        pthread_mutex_init(&nd->dispatch_mu, NULL);
        assert_int_equal(hlc_clock_new(hlc_system_clock(), HLC_DEFAULT_MAX_OFFSET_NS, &nd->clock),
                         0);
        if (disk) {
            snprintf(nd->dir, sizeof(nd->dir), "/tmp/meridian-txn-cluster-XXXXXX");
            assert_non_null(mkdtemp(nd->dir));
        }
        storage_options so = {.dir = disk ? nd->dir : NULL, .create_if_missing = true};
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
    for (int i = 1; i <= NODES; i++) {
        node *nd = &c->n[i];
        range_node_config nc = {.transport = rpc_uv_transport(nd->uv), .engine = nd->engine,
                                .no_handler = true};
        assert_int_equal(range_node_new(&nc, &nd->rn), RANGE_OK);
        range_replica_config rc = {.range_id = 1, .n_peers = NODES,
                                   .random_seed = (uint64_t)i * 7919};
        for (int k = 0; k < NODES; k++) rc.peers[k] = (uint64_t)k + 1;
        assert_int_equal(range_node_add_replica(nd->rn, &rc, &nd->rep), RANGE_OK);
        range_server_config sc = {.node = nd->rn, .clock = nd->clock, .workers = 4,
                                  .wait_timeout_ms = SERVER_WAIT_MS};
        if (closed_timestamps) {
            sc.transport = rpc_uv_transport(nd->uv);
            sc.closed_lag_ms = CLOSED_LAG_MS;
            sc.closed_period_ms = CLOSED_PERIOD_MS;
        }
        assert_int_equal(range_server_new(&sc, &nd->server_owned), RANGE_OK);
        pthread_mutex_lock(&nd->dispatch_mu);
        nd->server = nd->server_owned;
        pthread_mutex_unlock(&nd->dispatch_mu);
        range_router_config rcfg = {.transport = rpc_uv_transport(nd->uv), .clock = nd->clock,
                                    .local = nd->server_owned, .local_node_id = nd->id,
                                    .deadline_ms = ROUTER_DEADLINE_MS,
                                    .rpc_timeout_ms = ROUTER_RPC_TIMEOUT_MS,
                                    .random_seed = 100 + (uint64_t)i};
        assert_int_equal(range_router_new(&rcfg, &nd->router), RANGE_OK);
        range_descriptor d;
        assert_int_equal(range_replica_descriptor(nd->rep, &d), RANGE_OK);
        assert_int_equal(range_router_update_descriptor(nd->router, &d), RANGE_OK);
        range_descriptor_free(&d);
        txn_db_options o = {.clock = nd->clock, .kv = range_router_kv(nd->router)};
        assert_int_equal(txn_db_open(&o, &nd->db), TXN_OK);
    }
    assert_int_equal(pthread_create(&c->ticker, NULL, ticker_main, c), 0);
}

static void start_cluster(cluster *c) { start_cluster_on(c, false); }

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void stop_cluster(cluster *c) {
    for (int i = 1; i <= NODES; i++) {
        node *nd = &c->n[i];
        txn_db_close(nd->db);
        range_router_free(nd->router);
        pthread_mutex_lock(&nd->dispatch_mu);
        nd->server = NULL; /* the handler stops handing KV requests over */
        pthread_mutex_unlock(&nd->dispatch_mu);
        range_server_free(nd->server_owned); /* answers on the still-running transport */
    }
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
        if (nd->dir[0] != '\0') nftw(nd->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        hlc_clock_free(nd->clock);
        pthread_mutex_destroy(&nd->dispatch_mu);
    }
}

/* Commit key = value through node i, retrying 40001 (bounded). */
static void put_through(cluster *c, int i, const char *key, const char *value) {
    for (int attempt = 0; attempt < COMMIT_TRIES_MAX; attempt++) {
        txn *t;
        txn_error err = {0};
        int rc = txn_begin(c->n[i].db, NULL, &t);
        assert_int_equal(rc, TXN_OK);
        assert_int_equal(txn_put(t, (const uint8_t *)key, strlen(key), (const uint8_t *)value,
                                 strlen(value), &err),
                         TXN_OK);
        rc = txn_commit(t, NULL, &err);
        if (rc == TXN_OK) return;
        if (rc != TXN_ERR_RETRY)
            fail_msg("commit of %s through node %d: %d %s %s", key, i, rc, err.sqlstate,
                     err.message);
    }
    fail_msg("commit of %s through node %d kept conflicting", key, i);
}

/* The cluster cases' fixture: three nodes up (owner: the caller,
** stop_cluster then free), range 1 with a leader, and key = value
** committed through node 1 (none when key is NULL). */
static cluster *cluster_up(const char *key, const char *value) {
    cluster *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    start_cluster(c);
    assert_true(wait_leader(c));
    if (key != NULL) put_through(c, 1, key, value);
    return c;
}

/* One node with no ranges (txn_db over its store alone): what the
** cluster-only calls refuse. */
typedef struct single_node {
    hlc_clock *clock;
    storage_engine *engine;
    txn_db *db;
} single_node;

static void single_node_open(single_node *sn) {
    assert_int_equal(hlc_clock_new(hlc_system_clock(), HLC_DEFAULT_MAX_OFFSET_NS, &sn->clock), 0);
    storage_options so = {.dir = NULL, .create_if_missing = true};
    assert_int_equal(storage_open(&so, &sn->engine), STORAGE_OK);
    txn_db_options o = {.engine = sn->engine, .clock = sn->clock};
    assert_int_equal(txn_db_open(&o, &sn->db), TXN_OK);
}

static void single_node_close(single_node *sn) {
    txn_db_close(sn->db);
    storage_close(sn->engine);
    hlc_clock_free(sn->clock);
}

/* key through node i's router at exactly ts: value, or absent (NULL). */
static void check_at(cluster *c, int i, const char *key, hlc_timestamp ts, const char *value) {
    range_kv *kv = range_router_kv(c->n[i].router);
    base_buf b = {0};
    int rc = kv->ops->get(kv, (const uint8_t *)key, strlen(key), ts, &b);
    if (value == NULL) {
        if (rc != RANGE_NOT_FOUND) fail_msg("get %s through node %d: %d, want absent", key, i, rc);
    } else {
        if (rc != RANGE_OK) fail_msg("get %s through node %d: %d", key, i, rc);
        assert_int_equal(b.len, strlen(value));
        assert_memory_equal(b.data, value, b.len);
    }
    base_buf_free(&b);
}

static void check_value(cluster *c, int i, const char *key, const char *value) {
    txn *t;
    txn_error err = {0};
    base_buf b = {0};
    assert_int_equal(txn_begin(c->n[i].db, &(txn_options){.read_only = true}, &t), TXN_OK);
    int rc = txn_get(t, (const uint8_t *)key, strlen(key), &b, &err);
    if (value == NULL) { /* absent */
        if (rc != TXN_NOT_FOUND) fail_msg("get %s through node %d: %d %s, want absent", key, i,
                                          rc, err.message);
        txn_rollback(t);
        base_buf_free(&b);
        return;
    }
    if (rc != TXN_OK) fail_msg("get %s through node %d: %d %s", key, i, rc, err.message);
    assert_int_equal(b.len, strlen(value));
    assert_memory_equal(b.data, value, b.len);
    txn_rollback(t);
    base_buf_free(&b);
}

/* Keys of a full scan through node i, as "k1,k2,..." */
static void scan_keys(cluster *c, int i, bool reverse, char *out, size_t out_size) {
    txn *t;
    txn_error err = {0};
    txn_iter *it;
    assert_int_equal(txn_begin(c->n[i].db, &(txn_options){.read_only = true}, &t), TXN_OK);
    assert_int_equal(txn_scan(t, NULL, 0, NULL, 0, reverse, &it, &err), TXN_OK);
    size_t pos = 0;
    out[0] = '\0';
    for (int guard = 0; guard < 1000; guard++) {
        const uint8_t *k, *v;
        size_t kl, vl;
        int n = txn_iter_next(it, &k, &kl, &v, &vl, &err);
        if (n < 0) fail_msg("scan through node %d: %d %s", i, n, err.message);
        if (n == 0) break;
        if (kl > 0 && k[0] == 0) continue; /* system keys (meta, counters) */
        pos += (size_t)snprintf(out + pos, out_size - pos, "%s%.*s", pos ? "," : "", (int)kl,
                                (const char *)k);
        assert_true(pos < out_size);
    }
    txn_iter_close(it);
    txn_rollback(t);
}

/* UNCERTAINTY (docs/txn.md section 4): transactions on node 1 begin, then a
** write commits through node 2, whose clock is 100 ms ahead, at a timestamp
** within their uncertainty window (read_ts + max_offset). A read-only txn
** whose first read comes after the write (so it observed no clock below it)
** reads another key, meets the value, refreshes above it and sees it, by a
** get and by a scan. OBSERVED TIMESTAMPS (4.1): a txn that read on the
** leaseholder's node before the write (its clock reading there is below the
** write's timestamp) reads the written keys at its old timestamp, with no
** restart. A machine too slow to commit within the window tries again
** (bounded). */
static void test_uncertainty(void **state) {
    (void)state;
    cluster c = {0};
    start_cluster(&c);
    assert_true(wait_leader(&c));
    put_through(&c, 1, "u0", "old");
    /* past the lease's low-water (commits of a new lease take up to now +
    ** max_offset, above every observation for that long): later commits
    ** take the leaseholder's clock, as the observed case below needs */
    range_kv *kv1 = range_router_kv(c.n[1].router);
    range_write lw[] = {{(const uint8_t *)"ulw", 3, (const uint8_t *)"x", 1, false}};
    range_commit_request lr = {.txn_id = 0x54ff, .read_ts = hlc_now(c.n[1].clock), .writes = lw,
                               .write_count = 1};
    hlc_timestamp lts;
    range_conflict lcf;
    memset(&lcf, 0, sizeof(lcf));
    assert_int_equal(kv1->ops->commit(kv1, &lr, &lts, &lcf), RANGE_OK);
    range_conflict_free(&lcf);
    for (int i = 0; i < 1000 && base_realtime_ns() <= lts.wall_ns; i++) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL); /* bounded: the clock passes lts within max_offset */
    }
    txn_db_stats before;
    txn_db_get_stats(c.n[1].db, &before);
    bool done = false;
    for (int attempt = 0; attempt < 5 && !done; attempt++) {
        char ka[16], kb[16], kc[16];
        snprintf(ka, sizeof(ka), "ua%d", attempt);
        snprintf(kb, sizeof(kb), "ub%d", attempt);
        snprintf(kc, sizeof(kc), "uc%d", attempt);
        txn *ro, *scan, *rw;
        txn_error err = {0};
        base_buf b = {0};
        assert_int_equal(txn_begin(c.n[1].db, &(txn_options){.read_only = true}, &ro), TXN_OK);
        assert_int_equal(txn_begin(c.n[1].db, &(txn_options){.read_only = true}, &scan), TXN_OK);
        assert_int_equal(txn_begin(c.n[1].db, NULL, &rw), TXN_OK);
        assert_int_equal(txn_get(rw, (const uint8_t *)kb, strlen(kb), &b, &err), TXN_NOT_FOUND);
        hlc_timestamp r_ro = txn_read_timestamp(ro);
        hlc_timestamp r_rw = txn_read_timestamp(rw);

        /* the writer's node, its clock ahead (within max_offset) */
        (void)hlc_update(c.n[2].clock, hlc_add_ns(hlc_now(c.n[2].clock), 100 * 1000000LL));
        range_kv *kv2 = range_router_kv(c.n[2].router);
        range_write w[] = {{(const uint8_t *)ka, strlen(ka), (const uint8_t *)"1", 1, false},
                           {(const uint8_t *)kb, strlen(kb), (const uint8_t *)"2", 1, false}};
        range_commit_request req = {.txn_id = 0x5500 + (uint64_t)attempt,
                                    .read_ts = hlc_now(c.n[2].clock), .writes = w,
                                    .write_count = 2};
        hlc_timestamp wts;
        range_conflict cf;
        memset(&cf, 0, sizeof(cf));
        assert_int_equal(kv2->ops->commit(kv2, &req, &wts, &cf), RANGE_OK);
        range_conflict_free(&cf);
        if (hlc_compare(wts, hlc_add_ns(r_ro, HLC_DEFAULT_MAX_OFFSET_NS)) > 0) {
            txn_rollback(ro); /* committed past the window: again */
            txn_rollback(scan);
            txn_rollback(rw);
            base_buf_free(&b);
            continue;
        }
        assert_true(hlc_compare(wts, r_ro) > 0);

        /* the read-only txn moves above the value (u0 still holds) and sees it */
        assert_int_equal(txn_get(ro, (const uint8_t *)"u0", 2, &b, &err), TXN_OK);
        int rc = txn_get(ro, (const uint8_t *)ka, strlen(ka), &b, &err);
        if (rc != TXN_OK) fail_msg("uncertain get: %d %s", rc, err.message);
        assert_int_equal(b.len, 1);
        assert_memory_equal(b.data, "1", 1);
        assert_true(hlc_compare(txn_read_timestamp(ro), wts) > 0);
        assert_int_equal(txn_commit(ro, NULL, &err), TXN_OK);

        /* a scan does too: both rows */
        txn_iter *it;
        assert_int_equal(txn_scan(scan, (const uint8_t *)ka, strlen(ka), (const uint8_t *)kc,
                                  strlen(kc), false, &it, &err),
                         TXN_OK);
        int rows = 0;
        for (int guard = 0; guard < 10; guard++) {
            const uint8_t *k, *v;
            size_t kl, vl;
            int n = txn_iter_next(it, &k, &kl, &v, &vl, &err);
            if (n < 0) fail_msg("uncertain scan: %d %s", n, err.message);
            if (n == 0) break;
            rows++;
        }
        assert_int_equal(rows, 2);
        txn_iter_close(it);
        txn_rollback(scan);

        /* rw read kb on the leaseholder's node before the write: the write
        ** lies above rw's observed timestamp there, so it was written after
        ** rw began: both keys read at the old timestamp, no restart */
        txn_db_stats mid, after_rw;
        txn_db_get_stats(c.n[1].db, &mid);
        rc = txn_get(rw, (const uint8_t *)kb, strlen(kb), &b, &err);
        if (rc != TXN_NOT_FOUND) fail_msg("observed get: %d %s", rc, err.message);
        rc = txn_get(rw, (const uint8_t *)ka, strlen(ka), &b, &err);
        if (rc != TXN_NOT_FOUND) fail_msg("observed get: %d %s", rc, err.message);
        assert_int_equal(hlc_compare(txn_read_timestamp(rw), r_rw), 0);
        txn_db_get_stats(c.n[1].db, &after_rw);
        assert_int_equal(after_rw.uncertainty_restarts, mid.uncertainty_restarts);
        assert_int_equal(txn_commit(rw, NULL, &err), TXN_OK);
        base_buf_free(&b);
        done = true;
    }
    assert_true(done);
    txn_db_stats after;
    txn_db_get_stats(c.n[1].db, &after);
    assert_true(after.uncertainty_restarts >= before.uncertainty_restarts + 2);
    stop_cluster(&c);
}

/* The node leading range_id (0: none seen within WAIT_MS_MAX). */
static uint64_t wait_range_leader(cluster *c, uint64_t range_id, uint64_t want) {
    int64_t deadline = base_monotonic_ns() + (int64_t)WAIT_MS_MAX * 1000000;
    while (base_monotonic_ns() < deadline) {
        for (int i = 1; i <= NODES; i++) {
            range_replica *rep = range_node_replica(c->n[i].rn, range_id);
            range_replica_status st;
            if (rep == NULL) continue;
            range_replica_get_status(rep, &st);
            if (st.leader && (want == 0 || want == (uint64_t)i)) return (uint64_t)i;
        }
        struct timespec ts = {0, TICK_MS * 1000000L};
        nanosleep(&ts, NULL); /* poll the Raft status once per tick, bounded */
    }
    return 0;
}

/* UNCERTAINTY + REFRESH FAILURE (docs/txn.md 4.1): two ranges with their
** leases on two nodes. A txn on node 1 reads key A (range 1: it observes
** only range 1's leaseholder), another txn then changes A, and a write to
** key B (range 2) commits through a node whose clock is 100 ms ahead,
** inside the txn's window. B's leaseholder is not observed by the txn, so
** its version is uncertain; the txn's refresh above it meets A's new
** version: 40001 naming both. A machine too slow to commit within the
** window tries again (bounded). */
static void test_uncertainty_refresh_fails(void **state) {
    (void)state;
    cluster *c = cluster_up("ra", "0");
    txn_split_result res;
    txn_error err = {0};
    int rc = txn_db_split_at(c->n[1].db, (const uint8_t *)"rm", 2, &res, &err);
    if (rc != TXN_OK) fail_msg("split: %d %s", rc, err.message);
    put_through(c, 1, "rz", "0"); /* node 1's router learns range 2 */
    uint64_t l1 = wait_range_leader(c, 1, 0);
    assert_true(l1 != 0);
    uint64_t l2 = l1 % NODES + 1;
    if (range_router_transfer_lease(c->n[1].router, res.right_range_id, l2) != RANGE_OK)
        fail_msg("lease of r%llu to n%llu refused", (unsigned long long)res.right_range_id,
                 (unsigned long long)l2);
    assert_int_equal(wait_range_leader(c, res.right_range_id, l2), l2);
    /* past both leases' low-waters (commits of a new lease take up to now +
    ** max_offset): later commits take the clock, inside the window */
    range_kv *kv1 = range_router_kv(c->n[1].router);
    hlc_timestamp lts = HLC_ZERO;
    const char *lws[] = {"rlw", "rzlw"};
    for (int k = 0; k < 2; k++) {
        range_write lw[] = {{(const uint8_t *)lws[k], strlen(lws[k]), (const uint8_t *)"x", 1,
                             false}};
        range_commit_request lr = {.txn_id = 0x5600 + (uint64_t)k,
                                   .read_ts = hlc_now(c->n[1].clock), .writes = lw,
                                   .write_count = 1};
        hlc_timestamp t;
        range_conflict lcf;
        memset(&lcf, 0, sizeof(lcf));
        assert_int_equal(kv1->ops->commit(kv1, &lr, &t, &lcf), RANGE_OK);
        range_conflict_free(&lcf);
        if (hlc_compare(t, lts) > 0) lts = t;
    }
    for (int i = 0; i < 1000 && base_realtime_ns() <= lts.wall_ns; i++) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL); /* bounded: the clock passes lts within max_offset */
    }
    int writer = (int)(l2 % NODES + 1); /* neither leaseholder */
    bool done = false;
    for (int attempt = 0; attempt < 5 && !done; attempt++) {
        char ka[16], kb[16];
        snprintf(ka, sizeof(ka), "ra%d", attempt); /* range 1 */
        snprintf(kb, sizeof(kb), "rz%d", attempt); /* range 2 */
        put_through(c, 1, ka, "old");
        txn *t, *other;
        base_buf b = {0};
        memset(&err, 0, sizeof(err));
        assert_int_equal(txn_begin(c->n[1].db, NULL, &t), TXN_OK);
        hlc_timestamp r = txn_read_timestamp(t);
        assert_int_equal(txn_get(t, (const uint8_t *)ka, strlen(ka), &b, &err), TXN_OK);

        /* A changes after t read it (above r: the timestamp cache) */
        hlc_timestamp ats;
        assert_int_equal(txn_begin(c->n[1].db, NULL, &other), TXN_OK);
        assert_int_equal(txn_put(other, (const uint8_t *)ka, strlen(ka), (const uint8_t *)"new",
                                 3, &err),
                         TXN_OK);
        rc = txn_commit(other, &ats, &err);
        if (rc != TXN_OK) fail_msg("commit of %s: %d %s", ka, rc, err.message);
        assert_true(hlc_compare(ats, r) > 0);

        /* B through a node whose clock is ahead (within max_offset), above A */
        hlc_timestamp ahead = hlc_now(c->n[writer].clock);
        if (hlc_compare(ats, ahead) > 0) ahead = ats;
        (void)hlc_update(c->n[writer].clock, hlc_add_ns(ahead, 100 * 1000000LL));
        range_kv *kvw = range_router_kv(c->n[writer].router);
        range_write w[] = {{(const uint8_t *)kb, strlen(kb), (const uint8_t *)"1", 1, false}};
        range_commit_request req = {.txn_id = 0x5610 + (uint64_t)attempt,
                                    .read_ts = hlc_now(c->n[writer].clock), .writes = w,
                                    .write_count = 1};
        hlc_timestamp wts;
        range_conflict cf;
        memset(&cf, 0, sizeof(cf));
        assert_int_equal(kvw->ops->commit(kvw, &req, &wts, &cf), RANGE_OK);
        range_conflict_free(&cf);
        assert_true(hlc_compare(wts, ats) > 0);
        if (hlc_compare(wts, hlc_add_ns(r, HLC_DEFAULT_MAX_OFFSET_NS)) > 0) {
            txn_rollback(t); /* committed past the window: again */
            base_buf_free(&b);
            continue;
        }

        /* B's leaseholder was never observed by t: uncertain, and the
        ** refresh above it fails on A */
        txn_db_stats before, after;
        txn_db_get_stats(c->n[1].db, &before);
        memset(&err, 0, sizeof(err));
        rc = txn_get(t, (const uint8_t *)kb, strlen(kb), &b, &err);
        if (rc != TXN_ERR_RETRY) fail_msg("uncertain get of %s: %d %s", kb, rc, err.message);
        assert_string_equal(err.sqlstate, "40001");
        /* keys are printed as the encoding's hex ("/?7261..."): B first, A after */
        char hex_a[40], hex_b[40];
        for (size_t k = 0; k < strlen(ka); k++) /* non-empty: each call ends the string */
            snprintf(hex_a + 2 * k, sizeof(hex_a) - 2 * k, "%02x", (unsigned char)ka[k]);
        for (size_t k = 0; k < strlen(kb); k++)
            snprintf(hex_b + 2 * k, sizeof(hex_b) - 2 * k, "%02x", (unsigned char)kb[k]);
        const char *refresh = strstr(err.message, "and its reads cannot move above it: read "
                                                  "refresh failed on key ");
        const char *where_b = strstr(err.message, hex_b);
        if (strstr(err.message, "restart transaction: uncertainty: key ") != err.message ||
            where_b == NULL || refresh == NULL || where_b > refresh ||
            strstr(err.message, "within the clock uncertainty window") == NULL ||
            strstr(refresh, hex_a) == NULL ||
            strstr(refresh, "another transaction committed") == NULL)
            fail_msg("40001 message: %s", err.message);
        txn_db_get_stats(c->n[1].db, &after);
        assert_int_equal(after.uncertainty_restarts, before.uncertainty_restarts + 1);
        txn_rollback(t);
        base_buf_free(&b);
        done = true;
    }
    assert_true(done);
    stop_cluster(c);
    free(c);
}

static void test_three_node_cluster(void **state) {
    (void)state;
    cluster *c = cluster_up(NULL, NULL);

    /* commits through every node, visible through every node */
    char key[32], value[32];
    for (int i = 1; i <= NODES; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        snprintf(value, sizeof(value), "value-%d", i);
        put_through(c, i, key, value);
    }
    for (int j = 1; j <= NODES; j++) {
        for (int i = 1; i <= NODES; i++) {
            snprintf(key, sizeof(key), "key-%d", i);
            snprintf(value, sizeof(value), "value-%d", i);
            check_value(c, j, key, value);
        }
        char keys[256];
        scan_keys(c, j, false, keys, sizeof(keys));
        assert_string_equal(keys, "key-1,key-2,key-3");
        scan_keys(c, j, true, keys, sizeof(keys));
        assert_string_equal(keys, "key-3,key-2,key-1");
    }

    /* a read-write conflict across nodes: the second committer restarts */
    {
        txn *t1;
        txn_error err = {0};
        base_buf b = {0};
        assert_int_equal(txn_begin(c->n[1].db, NULL, &t1), TXN_OK);
        assert_int_equal(txn_get(t1, (const uint8_t *)"key-2", 5, &b, &err), TXN_OK);
        assert_int_equal(txn_put(t1, (const uint8_t *)"key-1", 5, (const uint8_t *)"x", 1, &err),
                         TXN_OK);
        put_through(c, 2, "key-2", "changed");
        int rc = txn_commit(t1, NULL, &err);
        assert_int_equal(rc, TXN_ERR_RETRY);
        assert_string_equal(err.sqlstate, "40001");
        base_buf_free(&b);
        check_value(c, 3, "key-1", "value-1");
        check_value(c, 3, "key-2", "changed");
    }

    /* the leader's node stops; the others keep committing */
    uint64_t leader = find_leader(c);
    assert_true(leader != 0);
    int a = (int)(leader % NODES) + 1, b2 = (int)((leader + 1) % NODES) + 1;
    atomic_store(&c->n[leader].dead, true);
    int64_t t0 = base_monotonic_ns();
    put_through(c, a, "after-1", "one");
    int64_t failover_ms = (base_monotonic_ns() - t0) / 1000000;
    put_through(c, b2, "after-2", "two");
    check_value(c, b2, "after-1", "one");
    check_value(c, a, "after-2", "two");
    check_value(c, a, "key-3", "value-3");
    uint64_t new_leader = find_leader(c);
    assert_true(new_leader != 0 && new_leader != leader);
    range_router_stats st;
    range_router_get_stats(c->n[a].router, &st);
    fprintf(stderr,
            "cluster: leader n%llu stopped, first commit through n%d after %lld ms; new leader "
            "n%llu; router n%d: attempts %llu (local %llu) retries %llu redirects %llu "
            "failovers %llu\n",
            (unsigned long long)leader, a, (long long)failover_ms,
            (unsigned long long)new_leader, a, (unsigned long long)st.attempts,
            (unsigned long long)st.local_calls, (unsigned long long)st.retries,
            (unsigned long long)st.redirects, (unsigned long long)st.failovers);
    stop_cluster(c);
    free(c);
}


static void test_split(void **state) {
    (void)state;
    cluster *c = cluster_up("a", "1");
    put_through(c, 2, "z", "1");
    txn_split_result res;
    txn_error err = {0};
    assert_true(txn_db_has_ranges(c->n[2].db));
    int rc = txn_db_split_at(c->n[2].db, (const uint8_t *)"m", 1, &res, &err);
    if (rc != TXN_OK) fail_msg("split: %d %s", rc, err.message);
    assert_true(res.created);
    assert_int_equal(res.left_range_id, 1);
    assert_int_equal(res.right_range_id, 2); /* the counter's first id */
    /* both halves serve through every node (routers learn the right side
    ** from KEY_MISMATCH answers or meta) */
    for (int i = 1; i <= NODES; i++) {
        char key[8];
        snprintf(key, sizeof(key), "b%d", i);
        put_through(c, i, key, "left");
        snprintf(key, sizeof(key), "y%d", i);
        put_through(c, i, key, "right");
    }
    for (int i = 1; i <= NODES; i++) {
        char keys[256];
        scan_keys(c, i, false, keys, sizeof(keys));
        assert_string_equal(keys, "a,b1,b2,b3,y1,y2,y3,z");
        scan_keys(c, i, true, keys, sizeof(keys));
        assert_string_equal(keys, "z,y3,y2,y1,b3,b2,b1,a");
        check_value(c, i, "z", "1");
    }
    /* writes in both halves: two-phase commit, visible at exactly its
    ** timestamp through every node (a read there meets the intents if they
    ** are not resolved yet: it pushes, finds COMMITTED, resolves) */
    txn *t;
    hlc_timestamp cts = HLC_ZERO;
    assert_int_equal(txn_begin(c->n[3].db, NULL, &t), TXN_OK);
    assert_int_equal(txn_put(t, (const uint8_t *)"c", 1, (const uint8_t *)"x", 1, &err), TXN_OK);
    assert_int_equal(txn_put(t, (const uint8_t *)"x", 1, (const uint8_t *)"x", 1, &err), TXN_OK);
    memset(&err, 0, sizeof(err));
    rc = txn_commit(t, &cts, &err);
    if (rc != TXN_OK) fail_msg("two-range commit: %d %s %s", rc, err.sqlstate, err.message);
    for (int i = 1; i <= NODES; i++) {
        check_at(c, i, "c", cts, "x");
        check_at(c, i, "x", cts, "x");
        check_at(c, i, "c", hlc_prev(cts), NULL);
        check_at(c, i, "x", hlc_prev(cts), NULL);
        check_value(c, i, "x", "x");
    }
    txn_db_stats dst;
    txn_db_get_stats(c->n[3].db, &dst);
    assert_int_equal(dst.distributed_commits, 1);
    assert_int_equal(txn_db_wait_resolved(c->n[3].db, WAIT_MS_MAX), TXN_OK);
    txn_db_get_stats(c->n[3].db, &dst);
    assert_int_equal(dst.resolves, 1);
    /* the boundary again: nothing to do, and a new id is not used */
    assert_int_equal(txn_db_split_at(c->n[1].db, (const uint8_t *)"m", 1, &res, &err), TXN_OK);
    assert_false(res.created);
    assert_int_equal(res.right_range_id, 2);
    assert_int_equal(res.left_range_id, 1);
    /* meta: a router that knows only the left finds the right there */
    range_descriptor left;
    assert_int_equal(range_replica_descriptor(c->n[1].rep, &left), RANGE_OK);
    assert_int_equal(left.end_len, 1);
    range_router *fresh = NULL;
    range_router_config rcfg = {.transport = rpc_uv_transport(c->n[3].uv), .clock = c->n[3].clock,
                                .local_node_id = 3, .deadline_ms = ROUTER_DEADLINE_MS,
                                .rpc_timeout_ms = ROUTER_RPC_TIMEOUT_MS, .random_seed = 5};
    assert_int_equal(range_router_new(&rcfg, &fresh), RANGE_OK);
    assert_int_equal(range_router_update_descriptor(fresh, &left), RANGE_OK);
    range_descriptor_free(&left);
    range_kv *kv = range_router_kv(fresh);
    base_buf b = {0};
    assert_int_equal(kv->ops->get(kv, (const uint8_t *)"z", 1, hlc_now(c->n[3].clock), &b),
                     RANGE_OK);
    assert_int_equal(b.len, 1);
    range_router_stats st;
    range_router_get_stats(fresh, &st);
    assert_int_equal(st.meta_lookups, 1);
    assert_int_equal(st.descriptor_refreshes, 0);
    base_buf_free(&b);
    range_router_free(fresh);
    stop_cluster(c);
    free(c);
}

/* Node 1's router prepares a transaction writing "d" (left) and "y"
** (right) and its coordinator "dies": no END_TXN. A reader through node 2
** meets the intent, pushes the PENDING record until it expires, aborts it
** and gets through; the writes never appear; the dead coordinator's
** END_TXN(COMMITTED) is refused. */
static void test_dead_coordinator(void **state) {
    (void)state;
    cluster *c = cluster_up("d", "old");
    txn_split_result res;
    txn_error err = {0};
    int rc = txn_db_split_at(c->n[2].db, (const uint8_t *)"m", 1, &res, &err);
    if (rc != TXN_OK) fail_msg("split: %d %s", rc, err.message);
    range_kv *kv = range_router_kv(c->n[1].router);
    range_write w[2] = {{(const uint8_t *)"d", 1, (const uint8_t *)"dead", 4, false},
                        {(const uint8_t *)"y", 1, (const uint8_t *)"dead", 4, false}};
    range_txn_meta meta = {.txn_id = 0x5eed0001, .nonce = 42, .anchor = (const uint8_t *)"d",
                           .anchor_len = 1, .read_ts = hlc_now(c->n[1].clock)};
    range_commit_request req = {.txn_id = meta.txn_id, .read_ts = meta.read_ts, .writes = w,
                                .write_count = 2};
    range_prepare_result prepared;
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    /* a split just done: a router may need a round or two to learn it */
    for (int attempt = 0; attempt < COMMIT_TRIES_MAX; attempt++) {
        rc = kv->ops->prepare(kv, &meta, &req, &prepared, &conflict);
        if (rc == RANGE_OK) break;
        range_prepare_result_free(&prepared);
    }
    if (rc != RANGE_OK) fail_msg("prepare: %d", rc);
    assert_int_equal(prepared.n_spans, 2);
    /* the coordinator is gone; a reader through node 2 waits for the record
    ** to expire, aborts it, and sees the old value */
    int64_t t0 = base_monotonic_ns();
    check_value(c, 2, "d", "old");
    int64_t waited_ms = (base_monotonic_ns() - t0) / 1000000;
    check_value(c, 3, "y", NULL);
    fprintf(stderr, "dead coordinator: the reader got through after %lld ms\n",
            (long long)waited_ms);
    assert_true(waited_ms < ROUTER_DEADLINE_MS);
    /* too late to commit */
    range_txn_outcome out;
    assert_int_equal(kv->ops->end_txn(kv, &meta, RANGE_TXN_COMMITTED, prepared.commit_ts, &out),
                     RANGE_ERR_ABORTED);
    range_prepare_result_free(&prepared);
    /* both keys are free for the next writer */
    put_through(c, 3, "y", "new");
    put_through(c, 1, "d", "new");
    check_value(c, 2, "y", "new");
    check_value(c, 2, "d", "new");
    stop_cluster(c);
    free(c);
}

/* UPDATE key = key + delta, as sql/ runs it: a locking read, then the write. */
static int locked_add(txn *t, const char *key, int delta, int *seen, txn_error *err) {
    base_buf b = {0};
    txn_set_locking(t, true);
    int rc = txn_get(t, (const uint8_t *)key, strlen(key), &b, err);
    txn_set_locking(t, false);
    if (rc == TXN_OK) {
        char text[32], next[32];
        snprintf(text, sizeof(text), "%.*s", (int)b.len, (const char *)b.data);
        *seen = atoi(text);
        snprintf(next, sizeof(next), "%d", *seen + delta);
        rc = txn_put(t, (const uint8_t *)key, strlen(key), (const uint8_t *)next, strlen(next),
                     err);
    }
    base_buf_free(&b);
    return rc;
}

typedef struct updater {
    txn *t;
    int seen;
    int rc;
    txn_error err;
} updater;

static void *updater_main(void *arg) {
    updater *u = arg;
    u->rc = locked_add(u->t, "bal", 7, &u->seen, &u->err);
    if (u->rc == TXN_OK) u->rc = txn_commit(u->t, NULL, &u->err);
    else txn_rollback(u->t);
    return NULL;
}

static uint64_t router_attempts(node *nd) {
    range_router_stats st;
    range_router_get_stats(nd->router, &st);
    return st.attempts;
}

static void test_locked_updates(void **state) {
    (void)state;
    cluster *c = cluster_up("bal", "100");
    /* T2 begins first: its read timestamp is below T1's commit */
    updater u = {0};
    assert_int_equal(txn_begin(c->n[2].db, NULL, &u.t), TXN_OK);
    txn *t1;
    txn_error err = {0};
    int seen = 0;
    assert_int_equal(txn_begin(c->n[1].db, NULL, &t1), TXN_OK);
    assert_int_equal(locked_add(t1, "bal", 5, &seen, &err), TXN_OK);
    assert_int_equal(seen, 100);
    uint64_t before = router_attempts(&c->n[2]);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, updater_main, &u), 0);
    /* let T2 meet T1's lock (its LOCK refused and asked again), bounded;
    ** if it comes later it locks after T1 and refreshes all the same */
    int64_t until = base_monotonic_ns() + 3000LL * 1000000;
    while (router_attempts(&c->n[2]) < before + 2 && base_monotonic_ns() < until) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL); /* poll a counter, bounded */
    }
    hlc_timestamp c1;
    assert_int_equal(txn_commit(t1, &c1, &err), TXN_OK);
    assert_int_equal(pthread_join(th, NULL), 0);
    if (u.rc != TXN_OK) fail_msg("T2: %d %s %s", u.rc, u.err.sqlstate, u.err.message);
    assert_int_equal(u.seen, 105); /* T1's value: it waited, then refreshed */
    for (int i = 1; i <= NODES; i++) check_value(c, i, "bal", "112");
    txn_db_stats st;
    txn_db_get_stats(c->n[2].db, &st);
    assert_int_equal(st.refreshes, 1);
    assert_int_equal(st.refresh_failures, 0);
    assert_true(st.lock_calls >= 1);
    /* the locks are gone: a third transaction locks at once */
    assert_int_equal(txn_db_wait_resolved(c->n[2].db, WAIT_MS_MAX), TXN_OK);
    txn *t3;
    assert_int_equal(txn_begin(c->n[3].db, NULL, &t3), TXN_OK);
    assert_int_equal(locked_add(t3, "bal", 1, &seen, &err), TXN_OK);
    assert_int_equal(seen, 112);
    assert_int_equal(txn_commit(t3, NULL, &err), TXN_OK);
    check_value(c, 1, "bal", "113");
    stop_cluster(c);
    free(c);
}

/* ---- large transactions (docs/txn.md, "Large transactions") ---- */

#define BIG_ROWS 50000 /* rows of one large transaction */

/* Buffer rows keys "<prefix><6 digits>" for i in [lo, hi) = value in t. */
static void big_put(txn *t, const char *prefix, int lo, int hi, const char *value) {
    txn_error err = {0};
    for (int i = lo; i < hi; i++) {
        char key[32];
        int n = snprintf(key, sizeof(key), "%s%06d", prefix, i);
        int rc = txn_put(t, (const uint8_t *)key, (size_t)n, (const uint8_t *)value,
                         strlen(value), &err);
        if (rc != TXN_OK) fail_msg("put %s: %d %s", key, rc, err.message);
    }
}

/* Rows of [start, end) through node i, and how many of them hold value. A
** read-only scan may meet an intent whose resolution is still on its way
** and give up after its deadline with 40001 (a big transaction's RESOLVE
** rounds under a loaded sanitizer build), or find no leaseholder answering
** in time (57P03: three sanitizer builds of this test on two cores starved
** the nodes past 15 s): it is retried as a client would, a few times; any
** other error, or wrong rows, fail. */
static int count_rows(cluster *c, int i, const char *start, const char *end, const char *value,
                      int *matching) {
    for (int attempt = 1;; attempt++) {
        txn *t;
        txn_error err = {0};
        txn_iter *it;
        assert_int_equal(txn_begin(c->n[i].db, &(txn_options){.read_only = true}, &t), TXN_OK);
        assert_int_equal(txn_scan(t, (const uint8_t *)start, strlen(start),
                                  (const uint8_t *)end, strlen(end), false, &it, &err),
                         TXN_OK);
        int rows = 0, same = 0, n;
        for (;;) {
            const uint8_t *k, *v;
            size_t kl, vl;
            n = txn_iter_next(it, &k, &kl, &v, &vl, &err);
            if (n <= 0) break;
            rows++;
            if (value != NULL && vl == strlen(value) && memcmp(v, value, vl) == 0) same++;
            assert_true(rows <= 4 * BIG_ROWS); /* bound */
        }
        txn_iter_close(it);
        txn_rollback(t);
        if ((n == TXN_ERR_RETRY || n == TXN_ERR_UNAVAILABLE) && attempt < 5) {
            fprintf(stderr, "scan through node %d: %s (%s), retried\n", i,
                    n == TXN_ERR_RETRY ? "40001" : "57P03", err.message);
            continue;
        }
        if (n < 0) fail_msg("scan through node %d: %d %s", i, n, err.message);
        if (matching != NULL) *matching = same;
        return rows;
    }
}

/* 50,000 rows in one transaction, more than one command holds: within one
** range and across two, committed (every row visible through every node at
** exactly the commit timestamp), rolled back (a ROLLBACK, and a commit
** refused by a conflict while its chunks were being prepared: none
** visible, every key free again), and removed by a delete span whose rows
** one command cannot hold (the router cuts it). */
static void test_large_transactions(void **state) {
    (void)state;
    cluster *c = calloc(1, sizeof(*c));
    start_cluster_on(c, true);
    assert_true(wait_leader(c));
    txn_split_result res;
    txn_error err = {0};
    int rc = txn_db_split_at(c->n[1].db, (const uint8_t *)"m", 1, &res, &err);
    if (rc != TXN_OK) fail_msg("split: %d %s", rc, err.message);
    put_through(c, 1, "guard", "0");

    /* within one range: a commit too large for one command goes two-phase */
    txn *t;
    hlc_timestamp cts = HLC_ZERO;
    int64_t t0 = base_monotonic_ns();
    assert_int_equal(txn_begin(c->n[1].db, NULL, &t), TXN_OK);
    big_put(t, "b", 0, BIG_ROWS, "one");
    rc = txn_commit(t, &cts, &err);
    if (rc != TXN_OK) fail_msg("one-range commit: %d %s %s", rc, err.sqlstate, err.message);
    int64_t one_ms = (base_monotonic_ns() - t0) / 1000000;
    txn_db_stats dst;
    txn_db_get_stats(c->n[1].db, &dst);
    assert_int_equal(dst.distributed_commits, 1);
    int same = 0;
    for (int i = 1; i <= NODES; i++) {
        check_at(c, i, "b000000", cts, "one");
        check_at(c, i, "b049999", cts, "one");
        check_at(c, i, "b025000", hlc_prev(cts), NULL);
        assert_int_equal(count_rows(c, i, "b", "c", "one", &same), BIG_ROWS);
        assert_int_equal(same, BIG_ROWS);
    }
    assert_int_equal(txn_db_wait_resolved(c->n[1].db, WAIT_MS_MAX), TXN_OK);

    /* across two ranges */
    t0 = base_monotonic_ns();
    assert_int_equal(txn_begin(c->n[2].db, NULL, &t), TXN_OK);
    big_put(t, "c", 0, BIG_ROWS / 2, "two");
    big_put(t, "x", 0, BIG_ROWS / 2, "two");
    rc = txn_commit(t, &cts, &err);
    if (rc != TXN_OK) fail_msg("two-range commit: %d %s %s", rc, err.sqlstate, err.message);
    int64_t two_ms = (base_monotonic_ns() - t0) / 1000000;
    for (int i = 1; i <= NODES; i++) {
        check_at(c, i, "c024999", cts, "two");
        check_at(c, i, "x000000", cts, "two");
        check_at(c, i, "x012345", hlc_prev(cts), NULL);
        assert_int_equal(count_rows(c, i, "c", "d", "two", &same), BIG_ROWS / 2);
        assert_int_equal(count_rows(c, i, "x", "y", "two", &same), BIG_ROWS / 2);
        assert_int_equal(same, BIG_ROWS / 2);
    }
    assert_int_equal(txn_db_wait_resolved(c->n[2].db, WAIT_MS_MAX), TXN_OK);

    /* rolled back before commit: nothing was sent */
    assert_int_equal(txn_begin(c->n[3].db, NULL, &t), TXN_OK);
    big_put(t, "d", 0, BIG_ROWS, "never");
    txn_rollback(t);

    /* rolled back by the commit: it read "guard", which another transaction
    ** changes before it commits; the first chunk of the lower range (its
    ** reads ride with it) conflicts while the other range's chunks are
    ** being prepared at the same time: those intents are resolved ABORTED */
    base_buf b = {0};
    assert_int_equal(txn_begin(c->n[3].db, NULL, &t), TXN_OK);
    assert_int_equal(txn_get(t, (const uint8_t *)"guard", 5, &b, &err), TXN_OK);
    base_buf_free(&b);
    big_put(t, "e", 0, BIG_ROWS / 2, "never");
    big_put(t, "y", 0, BIG_ROWS / 2, "never");
    put_through(c, 1, "guard", "1");
    memset(&err, 0, sizeof(err));
    rc = txn_commit(t, NULL, &err);
    assert_int_equal(rc, TXN_ERR_RETRY);
    assert_string_equal(err.sqlstate, "40001");
    assert_int_equal(txn_db_wait_resolved(c->n[3].db, WAIT_MS_MAX), TXN_OK);
    for (int i = 1; i <= NODES; i++) {
        assert_int_equal(count_rows(c, i, "d", "f", NULL, NULL), 0);
        assert_int_equal(count_rows(c, i, "y", "z", NULL, NULL), 0);
    }
    put_through(c, 2, "e000000", "free"); /* no intent left in the way */
    put_through(c, 2, "y024999", "free");

    /* a delete span removing more rows in one range than one command holds
    ** ("b" and "c": 75,000 rows below "m", 25,000 "x" rows above) */
    t0 = base_monotonic_ns();
    assert_int_equal(txn_begin(c->n[1].db, NULL, &t), TXN_OK);
    assert_int_equal(txn_delete_range(t, (const uint8_t *)"b", 1, (const uint8_t *)"d", 1, &err),
                     TXN_OK);
    assert_int_equal(txn_delete_range(t, (const uint8_t *)"x", 1, (const uint8_t *)"xz", 2, &err),
                     TXN_OK);
    assert_int_equal(txn_put(t, (const uint8_t *)"b000007", 7, (const uint8_t *)"kept", 4, &err),
                     TXN_OK);
    rc = txn_commit(t, &cts, &err);
    if (rc != TXN_OK) fail_msg("delete commit: %d %s %s", rc, err.sqlstate, err.message);
    int64_t del_ms = (base_monotonic_ns() - t0) / 1000000;
    for (int i = 1; i <= NODES; i++) {
        assert_int_equal(count_rows(c, i, "b", "d", "kept", &same), 1);
        assert_int_equal(same, 1);
        assert_int_equal(count_rows(c, i, "x", "y", NULL, NULL), 0);
        check_value(c, i, "e000000", "free");
        check_at(c, i, "c000001", hlc_prev(cts), "two");
    }
    assert_int_equal(txn_db_wait_resolved(c->n[1].db, WAIT_MS_MAX), TXN_OK);
    fprintf(stderr, "large transactions: %d rows in one range %lld ms, over two %lld ms; "
            "100000-row delete %lld ms\n", BIG_ROWS, (long long)one_ms, (long long)two_ms,
            (long long)del_ms);
    stop_cluster(c);
    free(c);
}

/* One AS OF SYSTEM TIME read of "stale-1", "stale-2" and a scan of
** ["stale-", "stale.") through node i at ts: "one", absent, "stale-1". */
static void stale_read_through(cluster *c, int i, hlc_timestamp ts) {
    txn *t = NULL;
    txn_error err = {0};
    base_buf b = {0};
    txn_options o = {.as_of = ts};
    assert_int_equal(txn_begin(c->n[i].db, &o, &t), TXN_OK);
    int rc = txn_get(t, (const uint8_t *)"stale-1", 7, &b, &err);
    if (rc != TXN_OK) fail_msg("stale get through node %d: %d %s", i, rc, err.message);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "one", 3);
    assert_int_equal(txn_get(t, (const uint8_t *)"stale-2", 7, &b, &err), TXN_NOT_FOUND);
    txn_iter *it;
    assert_int_equal(txn_scan(t, (const uint8_t *)"stale-", 6, (const uint8_t *)"stale.", 6, false,
                              &it, &err),
                     TXN_OK);
    const uint8_t *k, *v;
    size_t kl, vl;
    assert_int_equal(txn_iter_next(it, &k, &kl, &v, &vl, &err), 1);
    assert_int_equal(kl, 7);
    assert_memory_equal(k, "stale-1", 7);
    assert_int_equal(txn_iter_next(it, &k, &kl, &v, &vl, &err), 0);
    txn_iter_close(it);
    assert_int_equal(txn_commit(t, NULL, &err), TXN_OK);
    base_buf_free(&b);
}

/* AS OF SYSTEM TIME over the cluster (docs/txn.md section 8): the servers
** close timestamps (lag CLOSED_LAG_MS) and publish them; a read-only txn at
** a past timestamp through a node that does not hold the lease is served by
** that node's own replica (its follower reads count), sees exactly what was
** committed at or below it, cannot write, and still reads with the
** leaseholder's node stopped. */
static void test_stale_reads(void **state) {
    (void)state;
    cluster *c = calloc(1, sizeof(*c));
    closed_timestamps = true;
    start_cluster(c);
    closed_timestamps = false;
    assert_true(wait_leader(c));
    uint64_t leader = find_leader(c);
    int fo = (int)(leader % NODES) + 1;
    put_through(c, fo, "stale-1", "one");
    hlc_timestamp t1 = hlc_now(c->n[fo].clock); /* after its commit wait */
    put_through(c, fo, "stale-2", "two");
    /* until the follower's closed timestamp passes t1 its reads go to the
    ** leaseholder (the same answer); then it serves them itself */
    int64_t deadline = base_monotonic_ns() + (int64_t)WAIT_MS_MAX * 1000000;
    txn_db_stats st;
    for (;;) {
        stale_read_through(c, fo, t1);
        txn_db_get_stats(c->n[fo].db, &st);
        if (st.follower_reads_served > 0) break;
        if (base_monotonic_ns() > deadline) fail_msg("node %d never served a follower read", fo);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL); /* polling the closed timestamp's progress, bounded */
    }
    assert_true(st.stale_reads_local > 0);
    fprintf(stderr, "stale reads through n%d (leaseholder n%llu): %llu sent, %llu by its own "
            "replica, %llu after a refusal; follower reads served: %llu\n",
            fo, (unsigned long long)leader, (unsigned long long)st.stale_reads,
            (unsigned long long)st.stale_reads_local, (unsigned long long)st.stale_reads_fallback,
            (unsigned long long)st.follower_reads_served);
    /* read-only */
    txn *t = NULL;
    txn_error err = {0};
    assert_int_equal(txn_begin(c->n[fo].db, &(txn_options){.as_of = t1}, &t), TXN_OK);
    assert_int_equal(txn_put(t, (const uint8_t *)"stale-3", 7, (const uint8_t *)"x", 1, &err),
                     TXN_ERR_READ_ONLY);
    assert_string_equal(err.sqlstate, "25006");
    txn_rollback(t);
    /* the leaseholder's node stops: the follower still answers, itself */
    atomic_store(&c->n[leader].dead, true);
    uint64_t before = st.follower_reads_served;
    int64_t t0 = base_monotonic_ns();
    stale_read_through(c, fo, t1);
    int64_t took_ms = (base_monotonic_ns() - t0) / 1000000;
    txn_db_get_stats(c->n[fo].db, &st);
    assert_true(st.follower_reads_served >= before + 3); /* two gets and a scan page */
    fprintf(stderr, "with n%llu stopped: stale read through n%d in %lld ms\n",
            (unsigned long long)leader, fo, (long long)took_ms);
    stop_cluster(c);
    free(c);
}

static void test_single_node_cannot_split(void **state) {
    (void)state;
    single_node sn;
    single_node_open(&sn);
    assert_false(txn_db_has_ranges(sn.db));
    txn_split_result res;
    txn_error err = {0};
    assert_int_equal(txn_db_split_at(sn.db, (const uint8_t *)"m", 1, &res, &err),
                     TXN_ERR_UNSUPPORTED);
    assert_string_equal(err.sqlstate, "0A000");
    single_node_close(&sn);
}

/* The meta entry at d's meta key (d: only its end key matters), decoded
** into *out; false when absent. */
static bool meta_entry_at(cluster *c, int i, const char *end, range_descriptor *out) {
    range_descriptor d;
    memset(&d, 0, sizeof(d));
    d.end_key = (uint8_t *)end;
    d.end_len = end != NULL ? strlen(end) : 0;
    base_buf key = {0}, val = {0};
    assert_int_equal(range_meta_key(&d, &key), RANGE_OK);
    txn *t;
    txn_error err = {0};
    assert_int_equal(txn_begin(c->n[i].db, &(txn_options){.read_only = true}, &t), TXN_OK);
    int rc = txn_get(t, key.data, key.len, &val, &err);
    txn_rollback(t);
    if (rc != TXN_OK && rc != TXN_NOT_FOUND) fail_msg("meta read: %d %s", rc, err.message);
    if (rc == TXN_OK) assert_int_equal(range_descriptor_decode(val.data, val.len, out), RANGE_OK);
    base_buf_free(&key);
    base_buf_free(&val);
    return rc == TXN_OK;
}

static bool meta_entry(cluster *c, const char *end, range_descriptor *out) {
    return meta_entry_at(c, 1, end, out);
}

/* ---- the atomic split (docs/decisions/010-atomic-meta.md) ----
** A coordinator's steps done by hand through node 1's router, so the test
** can "die" between them: DESCRIBE, PREPARE of meta(L') and meta(R') with
** the record at the left's start, then (split) ADMIN_SPLIT with the txn. */
typedef struct split_txn {
    range_txn_meta meta;
    range_split_txn stx;
    range_prepare_result prepared;
    range_descriptor l, r;
    base_buf bytes;
} split_txn;

static void split_txn_prepare(cluster *c, const char *at, uint64_t id, uint64_t txn_id,
                              split_txn *st) {
    range_kv *kv = range_router_kv(c->n[1].router);
    memset(st, 0, sizeof(*st));
    range_descriptor d;
    assert_int_equal(kv->ops->describe(kv, (const uint8_t *)at, strlen(at), &d), RANGE_OK);
    assert_int_equal(range_descriptor_copy(&st->l, &d), RANGE_OK);
    assert_int_equal(range_descriptor_copy(&st->r, &d), RANGE_OK);
    base_free(st->l.end_key);
    st->l.end_key = base_malloc(strlen(at));
    assert_non_null(st->l.end_key);
    memcpy(st->l.end_key, at, strlen(at));
    st->l.end_len = strlen(at);
    base_free(st->r.start_key);
    st->r.start_key = base_malloc(strlen(at));
    assert_non_null(st->r.start_key);
    memcpy(st->r.start_key, at, strlen(at));
    st->r.start_len = strlen(at);
    st->l.generation = st->r.generation = d.generation + 1;
    st->r.range_id = id;
    /* one buffer: meta(L') key, value, meta(R') key, value */
    base_buf k = {0}, v = {0};
    size_t off[4], len[4];
    const range_descriptor *ds[2] = {&st->l, &st->r};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(range_meta_key(ds[i], &k), RANGE_OK);
        base_buf_reset(&v);
        assert_int_equal(range_descriptor_encode(ds[i], &v), RANGE_OK);
        off[2 * i] = st->bytes.len, len[2 * i] = k.len;
        assert_int_equal(base_buf_append(&st->bytes, k.data, k.len), 0);
        off[2 * i + 1] = st->bytes.len, len[2 * i + 1] = v.len;
        assert_int_equal(base_buf_append(&st->bytes, v.data, v.len), 0);
    }
    base_buf_free(&k);
    base_buf_free(&v);
    range_write w[2];
    for (int i = 0; i < 2; i++)
        w[i] = (range_write){st->bytes.data + off[2 * i], len[2 * i],
                             st->bytes.data + off[2 * i + 1], len[2 * i + 1], false};
    static const uint8_t lowest[1] = {0};
    st->meta = (range_txn_meta){.txn_id = txn_id, .nonce = 7, .priority = INT64_MAX,
                                .anchor = d.start_len > 0 ? st->l.start_key : lowest,
                                .anchor_len = d.start_len > 0 ? d.start_len : 1,
                                .read_ts = hlc_now(c->n[1].clock)};
    range_commit_request req = {.txn_id = txn_id, .read_ts = st->meta.read_ts, .writes = w,
                                .write_count = 2};
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    int rc = kv->ops->prepare(kv, &st->meta, &req, &st->prepared, &conflict);
    if (rc != RANGE_OK) fail_msg("prepare of the split txn: %d", rc);
    range_conflict_free(&conflict);
    st->stx = (range_split_txn){txn_id, st->meta.anchor, st->meta.anchor_len,
                                st->prepared.commit_ts, d.generation};
    range_descriptor_free(&d);
}

static void split_txn_free(split_txn *st) {
    range_prepare_result_free(&st->prepared);
    range_descriptor_free(&st->l);
    range_descriptor_free(&st->r);
    base_buf_free(&st->bytes);
}

/* The coordinator dies after the split applied (its record COMMITTED by the
** split's own batch, nothing resolved): a meta lookup through another node
** meets the intent, pushes, finds COMMITTED and reads the new descriptors
** at once (no record expiry to wait for). Then one dies before its split: a
** reader of meta waits for the record's expiry, aborts it and reads meta as
** it was; the split, asked afterwards with that txn, is refused and changes
** nothing. */
static void test_split_dead_coordinator(void **state) {
    (void)state;
    cluster *c = cluster_up("a", "1");
    range_kv *kv = range_router_kv(c->n[1].router);

    /* dies after the split */
    split_txn st;
    split_txn_prepare(c, "m", 7, 0x5b117001, &st);
    range_descriptor left, right;
    int rc = kv->ops->admin_split_txn(kv, (const uint8_t *)"m", 1, 7, &st.stx, &left, &right);
    if (rc != RANGE_OK) fail_msg("split with its txn: %d", rc);
    assert_int_equal(left.range_id, 1);
    assert_int_equal(right.range_id, 7);
    assert_int_equal(left.generation, st.l.generation);
    range_descriptor_free(&left);
    range_descriptor_free(&right);
    int64_t t0 = base_monotonic_ns();
    range_descriptor d;
    assert_true(meta_entry_at(c, 3, "m", &d)); /* meta(L') */
    assert_int_equal(d.range_id, 1);
    assert_int_equal(d.generation, st.l.generation);
    range_descriptor_free(&d);
    assert_true(meta_entry_at(c, 2, NULL, &d)); /* meta(R'), ending at +inf */
    assert_int_equal(d.range_id, 7);
    range_descriptor_free(&d);
    int64_t waited_ms = (base_monotonic_ns() - t0) / 1000000;
    fprintf(stderr, "split's dead coordinator (committed): meta read after %lld ms\n",
            (long long)waited_ms);
    /* (no expiry was waited for: an expired record would have been aborted
    ** and the entries above would not be there) */
    range_txn_outcome out;
    assert_int_equal(kv->ops->end_txn(kv, &st.meta, RANGE_TXN_ABORTED, HLC_ZERO, &out),
                     RANGE_OK);
    assert_int_equal(out.status, RANGE_TXN_COMMITTED);
    split_txn_free(&st);

    /* dies before the split: the right side [m, +inf) at "t" */
    put_through(c, 1, "u", "1");
    split_txn_prepare(c, "t", 8, 0x5b117002, &st);
    t0 = base_monotonic_ns();
    assert_true(meta_entry_at(c, 2, NULL, &d)); /* still r7 = [m, +inf) */
    waited_ms = (base_monotonic_ns() - t0) / 1000000;
    fprintf(stderr, "split's dead coordinator (aborted): meta read after %lld ms\n",
            (long long)waited_ms);
    assert_int_equal(d.range_id, 7);
    assert_int_equal(d.start_len, 1);
    range_descriptor_free(&d);
    assert_false(meta_entry_at(c, 3, "t", &d));
    rc = kv->ops->admin_split_txn(kv, (const uint8_t *)"t", 1, 8, &st.stx, &left, &right);
    assert_int_equal(rc, RANGE_ERR_ABORTED);
    assert_int_equal(kv->ops->describe(kv, (const uint8_t *)"t", 1, &d), RANGE_OK);
    assert_int_equal(d.range_id, 7);
    assert_int_equal(d.end_len, 0);
    range_descriptor_free(&d);
    assert_false(meta_entry_at(c, 1, "t", &d));
    assert_int_equal(kv->ops->end_txn(kv, &st.meta, RANGE_TXN_COMMITTED, st.stx.commit_ts, &out),
                     RANGE_ERR_ABORTED);
    split_txn_free(&st);
    check_value(c, 3, "u", "1");
    stop_cluster(c);
    free(c);
}

/* Meta lookups through node 2 while a split runs through node 1: each
** reads the entry of the range ending at +inf, old or new, never an error
** (it meets the split's intent at most once and pushes it). No cmocka
** asserts off the main thread: results are checked after the join. */
typedef struct meta_reader {
    cluster *c;
    atomic_bool stop;
    atomic_bool started; /* one lookup done: the split may begin */
    int reads, errors;
    int64_t max_ms;
    pthread_t thread;
} meta_reader;

static void *meta_reader_main(void *arg) {
    meta_reader *m = arg;
    range_descriptor d;
    memset(&d, 0, sizeof(d));
    base_buf key = {0}, val = {0};
    if (range_meta_key(&d, &key) != RANGE_OK) {
        m->errors++;
        return NULL;
    }
    for (int i = 0; i < 10000 && !atomic_load(&m->stop); i++) {
        txn *t;
        txn_error err = {0};
        int64_t t0 = base_monotonic_ns();
        if (txn_begin(m->c->n[2].db, &(txn_options){.read_only = true}, &t) != TXN_OK) {
            m->errors++;
            break;
        }
        int rc = txn_get(t, key.data, key.len, &val, &err);
        txn_rollback(t);
        int64_t ms = (base_monotonic_ns() - t0) / 1000000;
        if (ms > m->max_ms) m->max_ms = ms;
        m->reads++;
        if (rc != TXN_OK && rc != TXN_NOT_FOUND) m->errors++;
        atomic_store(&m->started, true);
    }
    atomic_store(&m->started, true); /* never leave the main thread waiting */
    base_buf_free(&key);
    base_buf_free(&val);
    return NULL;
}

/* A split whose range changed after its txn prepared (another split, at
** "f", through txn_db_split_at) is refused: nothing splits at "p", the txn
** ends ABORTED and meta keeps the other split's entries only; then
** txn_db_split_at at "p" does it, meta current the moment it returns. */
static void test_split_refused(void **state) {
    (void)state;
    cluster *c = cluster_up("a", "1");
    range_kv *kv = range_router_kv(c->n[1].router);
    split_txn st;
    split_txn_prepare(c, "p", 9, 0x5b117003, &st);
    txn_split_result res;
    txn_error err = {0};
    range_txn_outcome out;
    /* the other split (no meta: the bare range_kv op) changes the range's
    ** shape: st can never apply */
    range_descriptor left, right;
    int rc = kv->ops->admin_split(kv, (const uint8_t *)"f", 1, 10, &left, &right);
    if (rc != RANGE_OK) fail_msg("plain split at f: %d", rc);
    range_descriptor_free(&left);
    range_descriptor_free(&right);
    rc = kv->ops->admin_split_txn(kv, (const uint8_t *)"p", 1, 9, &st.stx, &left, &right);
    assert_int_equal(rc, RANGE_ERR_ABORTED);
    range_descriptor d;
    assert_int_equal(kv->ops->describe(kv, (const uint8_t *)"p", 1, &d), RANGE_OK);
    assert_int_equal(d.range_id, 10); /* [f, +inf): not split at p */
    assert_int_equal(d.end_len, 0);
    range_descriptor_free(&d);
    assert_int_equal(kv->ops->end_txn(kv, &st.meta, RANGE_TXN_ABORTED, HLC_ZERO, &out), RANGE_OK);
    assert_int_equal(out.status, RANGE_TXN_ABORTED);
    assert_int_equal(kv->ops->resolve(kv, st.meta.txn_id, st.prepared.spans, st.prepared.n_spans,
                                      RANGE_TXN_ABORTED, HLC_ZERO),
                     RANGE_OK);
    split_txn_free(&st);
    assert_false(meta_entry_at(c, 2, "p", &d));
    assert_false(meta_entry_at(c, 2, NULL, &d)); /* the plain split wrote no meta */
    /* the atomic path: meta is current when it returns (through node 1,
    ** whose router learned r10 from the plain split: meta does not have it),
    ** with lookups of meta(+inf) running through node 2 meanwhile */
    meta_reader mr = {.c = c};
    atomic_init(&mr.stop, false);
    atomic_init(&mr.started, false);
    assert_int_equal(pthread_create(&mr.thread, NULL, meta_reader_main, &mr), 0);
    /* the split starts after a first lookup, so one at least runs before
    ** or during it however the threads are scheduled (bounded by the
    ** reader's own loop: it sets started when it stops too) */
    while (!atomic_load(&mr.started)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL); /* the reader's first lookup, bounded by its loop */
    }
    rc = txn_db_split_at(c->n[1].db, (const uint8_t *)"p", 1, &res, &err);
    atomic_store(&mr.stop, true);
    pthread_join(mr.thread, NULL);
    if (rc != TXN_OK) fail_msg("split at p: %d %s", rc, err.message);
    fprintf(stderr, "meta lookups during the split: %d, slowest %lld ms\n", mr.reads,
            (long long)mr.max_ms);
    assert_true(mr.reads > 0);
    assert_int_equal(mr.errors, 0);
    assert_true(res.created);
    assert_int_equal(res.left_range_id, 10);
    assert_true(meta_entry_at(c, 2, "p", &d));
    assert_int_equal(d.range_id, 10);
    assert_int_equal(d.start_len, 1);
    range_descriptor_free(&d);
    assert_true(meta_entry_at(c, 1, NULL, &d));
    assert_int_equal(d.range_id, res.right_range_id);
    assert_int_equal(d.start_len, 1);
    assert_memory_equal(d.start_key, "p", 1);
    range_descriptor_free(&d);
    check_value(c, 2, "a", "1");
    stop_cluster(c);
    free(c);
}

/* ---- atomic replica changes (docs/decisions/010-atomic-meta.md, item 8) ---- */

/* meta(range 1), the range ending at +inf, read through node i, is want
** (id, generation, replicas in order). */
static void meta_is(cluster *c, int i, const range_descriptor *want) {
    range_descriptor d;
    assert_true(meta_entry_at(c, i, NULL, &d));
    assert_int_equal(d.range_id, want->range_id);
    assert_int_equal(d.generation, want->generation);
    assert_int_equal(d.n_replicas, want->n_replicas);
    for (size_t k = 0; k < d.n_replicas; k++) assert_int_equal(d.replicas[k], want->replicas[k]);
    range_descriptor_free(&d);
}

/* One step of a coordinator of txn_db_change_replicas, by hand through node
** 1's router so the test can "die" around it: DESCRIBE range 1, PREPARE of
** meta(range 1) at the descriptor the step makes, the record at 0x00. */
typedef struct conf_txn {
    range_txn_meta meta;
    range_split_txn stx;
    range_prepare_result prepared;
    range_descriptor next;
    base_buf key, val;
} conf_txn;

static void conf_txn_prepare(cluster *c, int step, uint64_t node, uint64_t txn_id,
                             conf_txn *ct) {
    static const uint8_t lowest[1] = {0};
    range_kv *kv = range_router_kv(c->n[1].router);
    memset(ct, 0, sizeof(*ct));
    range_descriptor d;
    assert_int_equal(kv->ops->describe(kv, NULL, 0, &d), RANGE_OK);
    assert_int_equal(d.range_id, 1);
    assert_int_equal(range_descriptor_copy(&ct->next, &d), RANGE_OK);
    ct->next.generation = d.generation + 1;
    if (step == RANGE_CONF_STEP_PROMOTE) ct->next.replicas[ct->next.n_replicas++] = node;
    assert_int_equal(range_meta_key(&ct->next, &ct->key), RANGE_OK);
    assert_int_equal(range_descriptor_encode(&ct->next, &ct->val), RANGE_OK);
    range_write w = {ct->key.data, ct->key.len, ct->val.data, ct->val.len, false};
    ct->meta = (range_txn_meta){.txn_id = txn_id, .nonce = 7, .priority = INT64_MAX,
                                .anchor = lowest, .anchor_len = 1,
                                .read_ts = hlc_now(c->n[1].clock)};
    range_commit_request req = {.txn_id = txn_id, .read_ts = ct->meta.read_ts, .writes = &w,
                                .write_count = 1};
    range_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    int rc = kv->ops->prepare(kv, &ct->meta, &req, &ct->prepared, &conflict);
    if (rc != RANGE_OK) fail_msg("prepare of the replica change's txn: %d", rc);
    range_conflict_free(&conflict);
    ct->stx = (range_split_txn){txn_id, lowest, 1, ct->prepared.commit_ts, d.generation};
    range_descriptor_free(&d);
}

static void conf_txn_free(conf_txn *ct) {
    range_prepare_result_free(&ct->prepared);
    range_descriptor_free(&ct->next);
    base_buf_free(&ct->key);
    base_buf_free(&ct->val);
}

/* txn_db_change_replicas: meta(range) equals the replicas' descriptor the
** moment each change returns (node 3 out, through node 2; back in, through
** node 1). A coordinator dead after its step (add learner applied, nothing
** resolved): meta read through another node pushes, finds the record
** COMMITTED by the step's own batch and reads the new descriptor at once.
** One dead before its step (promote): a reader of meta waits for the
** record's expiry, aborts it and reads meta as it was; the step, asked
** afterwards with that txn, is refused and changes nothing. */
static void test_change_replicas_atomic(void **state) {
    (void)state;
    cluster *c = cluster_up("a", "1");
    range_kv *kv = range_router_kv(c->n[1].router);
    range_descriptor d, after;
    txn_error err = {0};
    assert_int_equal(kv->ops->describe(kv, NULL, 0, &d), RANGE_OK);
    uint64_t gen = d.generation;

    /* node 3 out: one step (remove), meta current at once */
    int rc = txn_db_change_replicas(c->n[2].db, &d, 0, 3, &after, &err);
    if (rc != TXN_OK) fail_msg("remove n3: %d %s", rc, err.message);
    assert_int_equal(after.generation, gen + 1);
    assert_int_equal(after.n_replicas, 2);
    meta_is(c, 1, &after);
    meta_is(c, 2, &after);
    range_descriptor_free(&after);

    /* dies after its step: add learner n3 applied, its txn never ended */
    conf_txn ct;
    conf_txn_prepare(c, RANGE_CONF_STEP_ADD_LEARNER, 3, 0xc0f7001, &ct);
    rc = kv->ops->change_replicas_txn(kv, 1, RANGE_CONF_STEP_ADD_LEARNER, 3, &ct.stx, &after);
    if (rc != RANGE_OK) fail_msg("add learner with its txn: %d", rc);
    assert_int_equal(after.generation, gen + 2);
    assert_int_equal(after.n_replicas, 2);
    int64_t t0 = base_monotonic_ns();
    meta_is(c, 2, &after);
    fprintf(stderr, "replica change's dead coordinator (committed): meta read after %lld ms\n",
            (long long)((base_monotonic_ns() - t0) / 1000000));
    range_descriptor_free(&after);
    range_txn_outcome out;
    assert_int_equal(kv->ops->end_txn(kv, &ct.meta, RANGE_TXN_ABORTED, HLC_ZERO, &out), RANGE_OK);
    assert_int_equal(out.status, RANGE_TXN_COMMITTED);
    conf_txn_free(&ct);

    /* dies before its step: promote n3 never asked; a reader aborts it */
    conf_txn_prepare(c, RANGE_CONF_STEP_PROMOTE, 3, 0xc0f7002, &ct);
    range_descriptor before;
    assert_int_equal(kv->ops->describe(kv, NULL, 0, &before), RANGE_OK);
    t0 = base_monotonic_ns();
    meta_is(c, 2, &before); /* the learner's generation, 2 voters */
    fprintf(stderr, "replica change's dead coordinator (aborted): meta read after %lld ms\n",
            (long long)((base_monotonic_ns() - t0) / 1000000));
    rc = kv->ops->change_replicas_txn(kv, 1, RANGE_CONF_STEP_PROMOTE, 3, &ct.stx, &after);
    assert_int_equal(rc, RANGE_ERR_ABORTED);
    range_descriptor now;
    assert_int_equal(kv->ops->describe(kv, NULL, 0, &now), RANGE_OK);
    assert_int_equal(now.generation, before.generation);
    assert_int_equal(now.n_replicas, 2);
    range_descriptor_free(&now);
    meta_is(c, 1, &before);
    range_descriptor_free(&before);
    conf_txn_free(&ct);

    /* node 3 back through node 1 (its learner is there: promote), meta at once */
    rc = txn_db_change_replicas(c->n[1].db, &d, 3, 0, &after, &err);
    if (rc != TXN_OK) fail_msg("add n3: %d %s", rc, err.message);
    assert_int_equal(after.generation, gen + 3);
    assert_int_equal(after.n_replicas, 3);
    assert_int_equal(after.replicas[2], 3);
    meta_is(c, 1, &after);
    meta_is(c, 3, &after);
    range_descriptor_free(&after);

    /* a move from a stale descriptor ({1, 2}: n3 not in it, a voter now)
    ** with n2 gone meanwhile: +n3 -n1 would be a bare removal leaving one
    ** voter; refused, nothing changes (seen by test_txn_sim before) */
    rc = txn_db_change_replicas(c->n[1].db, &d, 0, 2, &after, &err);
    if (rc != TXN_OK) fail_msg("remove n2: %d %s", rc, err.message);
    range_descriptor_free(&after);
    range_descriptor stale;
    assert_int_equal(range_descriptor_copy(&stale, &d), RANGE_OK);
    stale.replicas[0] = 1;
    stale.replicas[1] = 2;
    stale.n_replicas = 2;
    memset(&err, 0, sizeof(err));
    rc = txn_db_change_replicas(c->n[2].db, &stale, 3, 1, &after, &err);
    assert_int_equal(rc, TXN_ERR_INVALID);
    range_descriptor_free(&stale);
    assert_int_equal(kv->ops->describe(kv, NULL, 0, &now), RANGE_OK);
    assert_int_equal(now.generation, gen + 4);
    assert_int_equal(now.n_replicas, 2);
    meta_is(c, 1, &now);
    range_descriptor_free(&now);
    rc = txn_db_change_replicas(c->n[1].db, &d, 2, 0, &after, &err); /* n2 back */
    if (rc != TXN_OK) fail_msg("add n2: %d %s", rc, err.message);
    assert_int_equal(after.n_replicas, 3);
    meta_is(c, 2, &after);
    range_descriptor_free(&after);
    range_descriptor_free(&d);
    check_value(c, 3, "a", "1");
    stop_cluster(c);
    free(c);
}

/* A split at "m", then txn_db_merge_at("m") through another node: range 1
** covers everything again, both sides' rows serve through every node, meta
** holds range 1 at +inf and no entry at "m"; a key that is no boundary is
** no merge; a single node's txn_db refuses to merge. */
static void test_merge(void **state) {
    (void)state;
    cluster *c = cluster_up("a", "1");
    txn_split_result res;
    txn_error err = {0};
    int rc = txn_db_split_at(c->n[2].db, (const uint8_t *)"m", 1, &res, &err);
    if (rc != TXN_OK) fail_msg("split: %d %s", rc, err.message);
    put_through(c, 2, "z", "1");
    range_descriptor d;
    assert_true(meta_entry(c, "m", &d));
    assert_int_equal(d.range_id, 1);
    range_descriptor_free(&d);
    txn_merge_result mr;
    memset(&err, 0, sizeof(err));
    rc = txn_db_merge_at(c->n[3].db, (const uint8_t *)"m", 1, &mr, &err);
    if (rc != TXN_OK) fail_msg("merge: %d %s %s", rc, err.sqlstate, err.message);
    assert_true(mr.merged);
    assert_int_equal(mr.left_range_id, 1);
    assert_int_equal(mr.right_range_id, 2);
    /* meta is current the moment it returns (the merge committed its meta
    ** transaction, decision 010), read through every node: range 1 to
    ** +inf at the merged generation, nothing at "m" */
    range_kv *kv = range_router_kv(c->n[1].router);
    range_descriptor merged;
    assert_int_equal(kv->ops->describe(kv, (const uint8_t *)"z", 1, &merged), RANGE_OK);
    assert_int_equal(merged.range_id, 1);
    assert_int_equal(merged.end_len, 0);
    for (int i = 1; i <= NODES; i++) {
        assert_false(meta_entry_at(c, i, "m", &d));
        assert_true(meta_entry_at(c, i, NULL, &d));
        assert_int_equal(d.range_id, 1);
        assert_int_equal(d.generation, merged.generation);
        assert_int_equal(d.start_len, 0);
        assert_int_equal(d.n_replicas, merged.n_replicas);
        range_descriptor_free(&d);
    }
    range_descriptor_free(&merged);
    for (int i = 1; i <= NODES; i++) {
        check_value(c, i, "a", "1");
        check_value(c, i, "z", "1");
        char key[8];
        snprintf(key, sizeof(key), "y%d", i);
        put_through(c, i, key, "after");
        check_value(c, i, key, "after");
    }
    /* meta: range 1 to +inf, nothing at "m" */
    assert_false(meta_entry(c, "m", &d));
    assert_true(meta_entry(c, NULL, &d));
    assert_int_equal(d.range_id, 1);
    assert_int_equal(d.start_len, 0);
    assert_int_equal(d.end_len, 0);
    range_descriptor_free(&d);
    /* no boundary at "m" any more */
    memset(&err, 0, sizeof(err));
    assert_int_equal(txn_db_merge_at(c->n[1].db, (const uint8_t *)"m", 1, &mr, &err), TXN_OK);
    assert_false(mr.merged);
    stop_cluster(c);
    free(c);
    /* one node: no ranges to merge */
    single_node sn;
    single_node_open(&sn);
    memset(&err, 0, sizeof(err));
    assert_int_equal(txn_db_merge_at(sn.db, (const uint8_t *)"m", 1, &mr, &err),
                     TXN_ERR_UNSUPPORTED);
    assert_string_equal(err.sqlstate, "0A000");
    single_node_close(&sn);
}

int main(void) {
    base_log_set_level(BASE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_node_cluster),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_split_dead_coordinator),
        cmocka_unit_test(test_split_refused),
        cmocka_unit_test(test_change_replicas_atomic),
        cmocka_unit_test(test_dead_coordinator),
        cmocka_unit_test(test_locked_updates),
        cmocka_unit_test(test_large_transactions),
        cmocka_unit_test(test_single_node_cannot_split),
        cmocka_unit_test(test_stale_reads),
        cmocka_unit_test(test_uncertainty),
        cmocka_unit_test(test_uncertainty_refresh_fails),
    };
    if (getenv("TEST_FILTER")) /* one test by name (a glob), e.g. test_uncertainty */
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
