/*
** tests/range/test_range_uv.c: the same replica and driver over the real
** transport (rpc_uv on loopback, one loop thread per node) with a ticker
** thread playing the node timer. Three nodes elect a leader, a client
** proposes commands there (and once at a follower: "not leader" with the
** right hint), every acknowledged write is read back at the leader after a
** ReadIndex barrier, and the followers converge. Every wait is on a
** condition variable with a bound; shutdown follows the documented order
** (rpc_uv_free, range_node_forget_transport, range_node_free).
*/
#include <errno.h>
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

#define NODES 3
#define RANGE_ID 3
#define CMDS 20
#define TICK_MS 5
#define WAIT_MS_MAX 20000

struct cluster;
typedef struct slot {
    struct cluster *c;
    int i;
} slot;

typedef struct cluster {
    rpc_uv *uv[NODES + 1];
    storage_engine *engine[NODES + 1];
    range_node *rn[NODES + 1];
    range_replica *rep[NODES + 1];
    pthread_t ticker;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t events; /* ticks and callbacks, under mu */
    int acked, failed;
    int state[CMDS]; /* 0 idle, 1 proposed, 2 acknowledged; under mu */
    slot slots[CMDS];
    int read_done, read_rc;
} cluster;

static void *ticker_main(void *arg)
{
    cluster *c = arg;
    while (!atomic_load(&c->stop)) {
        struct timespec ts = {0, TICK_MS * 1000000L};
        nanosleep(&ts, NULL); /* the node timer, not a wait for a condition */
        for (int i = 1; i <= NODES; i++)
            range_node_tick(c->rn[i]);
        pthread_mutex_lock(&c->mu);
        c->events++;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

/* Wait (bounded) until pred(c) holds, rechecking after every tick or
** callback (and at least every 50 ms). pred runs WITHOUT c->mu: node calls
** take the node mutex, and callbacks take c->mu while holding it, so
** holding c->mu across a node call would invert the lock order. */
static bool wait_for(cluster *c, bool (*pred)(cluster *))
{
    int64_t deadline = base_monotonic_ns() + (int64_t)WAIT_MS_MAX * 1000000;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        uint64_t seen = c->events;
        pthread_mutex_unlock(&c->mu);
        if (pred(c))
            return true;
        if (base_monotonic_ns() > deadline)
            return false;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&c->mu);
        if (c->events == seen)
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        pthread_mutex_unlock(&c->mu);
    }
}

static uint64_t find_leader(cluster *c)
{
    for (int i = 1; i <= NODES; i++) {
        range_replica_status st;
        range_replica_get_status(c->rep[i], &st);
        if (st.leader)
            return (uint64_t)i;
    }
    return 0;
}
static bool has_leader(cluster *c) { return find_leader(c) != 0; }
static bool read_done(cluster *c)
{
    pthread_mutex_lock(&c->mu);
    bool done = c->read_done > 0;
    pthread_mutex_unlock(&c->mu);
    return done;
}
static bool followers_caught_up(cluster *c)
{
    range_replica_status st[NODES + 1];
    for (int i = 1; i <= NODES; i++)
        range_replica_get_status(c->rep[i], &st[i]);
    for (int i = 2; i <= NODES; i++)
        if (st[i].applied != st[1].applied || st[i].applied < CMDS)
            return false;
    return true;
}

static void on_propose(void *ctx, int rc)
{
    slot *sl = ctx;
    cluster *c = sl->c;
    pthread_mutex_lock(&c->mu);
    if (rc == RANGE_OK) {
        c->acked++;
        c->state[sl->i] = 2;
    } else {
        c->failed++;
        c->state[sl->i] = 0; /* re-proposed with the same key */
    }
    c->events++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void on_stray(void *ctx, int rc)
{
    (void)ctx;
    (void)rc;
}

static void on_read(void *ctx, int rc)
{
    cluster *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->read_done++;
    c->read_rc = rc;
    c->events++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void test_three_nodes_on_loopback(void **state)
{
    (void)state;
    cluster *c = calloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    int ports[NODES + 1];
    for (int i = 1; i <= NODES; i++) {
        rpc_uv_config cfg;
        rpc_uv_config_init(&cfg);
        cfg.node_id = (rpc_node_id)i;
        cfg.listen_host = "127.0.0.1";
        cfg.listen_port = 0;
        cfg.random_seed = (uint64_t)i;
        assert_int_equal(rpc_uv_start(&cfg, &c->uv[i]), RPC_OK);
        ports[i] = rpc_uv_listen_port(c->uv[i]);
        storage_options so = {.dir = NULL, .create_if_missing = true};
        assert_int_equal(storage_open(&so, &c->engine[i]), STORAGE_OK);
    }
    for (int i = 1; i <= NODES; i++)
        for (int j = 1; j <= NODES; j++)
            if (i != j)
                assert_int_equal(rpc_uv_add_peer(c->uv[i], (rpc_node_id)j, "127.0.0.1", ports[j]),
                                 RPC_OK);
    for (int i = 1; i <= NODES; i++) {
        range_node_config nc = {.transport = rpc_uv_transport(c->uv[i]), .engine = c->engine[i],
                                .sync = true};
        assert_int_equal(range_node_new(&nc, &c->rn[i]), RANGE_OK);
        range_replica_config rc = {.range_id = RANGE_ID, .n_peers = NODES,
                                   .random_seed = (uint64_t)i * 7919};
        for (int k = 0; k < NODES; k++)
            rc.peers[k] = (uint64_t)k + 1;
        assert_int_equal(range_node_add_replica(c->rn[i], &rc, &c->rep[i]), RANGE_OK);
    }
    assert_int_equal(pthread_create(&c->ticker, NULL, ticker_main, c), 0);

    assert_true(wait_for(c, has_leader));
    uint64_t leader = find_leader(c);
    uint64_t follower = leader % NODES + 1;

    char keys[CMDS][16], values[CMDS][16];
    range_write writes[CMDS];
    for (int i = 0; i < CMDS; i++) {
        snprintf(keys[i], sizeof(keys[i]), "key%02d", i);
        snprintf(values[i], sizeof(values[i]), "value%02d", i);
        writes[i] = (range_write){(const uint8_t *)keys[i], strlen(keys[i]),
                                  (const uint8_t *)values[i], strlen(values[i]), false};
    }
    /* a follower refuses with a hint naming the leader (if it knows it yet) */
    {
        range_command cmd = {.txn_id = 1000, .seq = 1, .commit_ts = {5, 0},
                             .writes = &writes[0], .write_count = 1};
        uint64_t hint = 99;
        int rc = range_replica_propose(c->rep[follower], &cmd, on_stray, c, &hint);
        if (rc != RANGE_OK) { /* RANGE_OK: leadership moved there meanwhile */
            assert_int_equal(rc, RANGE_ERR_NOT_LEADER);
            assert_true(hint == 0 || hint == leader);
        }
    }
    /* propose every command at the current leader; re-propose (same key)
    ** whatever fails, e.g. after an election caused by a starved thread */
    int64_t deadline = base_monotonic_ns() + (int64_t)WAIT_MS_MAX * 1000000;
    int retries = 0;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int acked = 0;
        for (int i = 0; i < CMDS; i++)
            acked += c->state[i] == 2;
        pthread_mutex_unlock(&c->mu);
        if (acked == CMDS)
            break;
        assert_true(base_monotonic_ns() < deadline);
        leader = find_leader(c);
        for (int i = 0; i < CMDS && leader != 0; i++) {
            pthread_mutex_lock(&c->mu);
            bool idle = c->state[i] == 0;
            if (idle)
                c->state[i] = 1;
            pthread_mutex_unlock(&c->mu);
            if (!idle)
                continue;
            range_command cmd = {.txn_id = (uint64_t)i + 1, .seq = 1,
                                 .commit_ts = {100 + i, 0}, .writes = &writes[i],
                                 .write_count = 1};
            uint64_t hint;
            c->slots[i] = (slot){c, i};
            int rc = range_replica_propose(c->rep[leader], &cmd, on_propose, &c->slots[i], &hint);
            if (rc != RANGE_OK) {
                pthread_mutex_lock(&c->mu);
                c->state[i] = 0;
                pthread_mutex_unlock(&c->mu);
                retries++;
            }
        }
        pthread_mutex_lock(&c->mu);
        uint64_t seen = c->events;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (c->events == seen)
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_lock(&c->mu);
    int lost = c->failed;
    pthread_mutex_unlock(&c->mu);
    fprintf(stderr, "uv: all %d commands acknowledged (%d refused proposals retried, %d "
            "proposals lost)\n", CMDS, retries, lost);

    /* a ReadIndex barrier at the leader, then every write read there */
    int read_rc = RANGE_ERR_NOT_LEADER;
    for (int attempt = 0; attempt < 50 && read_rc != RANGE_OK; attempt++) {
        uint64_t hint;
        assert_true(wait_for(c, has_leader));
        leader = find_leader(c);
        pthread_mutex_lock(&c->mu);
        c->read_done = 0;
        pthread_mutex_unlock(&c->mu);
        if (range_replica_read(c->rep[leader], false, on_read, c, &hint) != RANGE_OK)
            continue;
        assert_true(wait_for(c, read_done));
        pthread_mutex_lock(&c->mu);
        read_rc = c->read_rc;
        pthread_mutex_unlock(&c->mu);
    }
    assert_int_equal(read_rc, RANGE_OK);
    base_buf out = {0};
    for (int i = 0; i < CMDS; i++) {
        assert_int_equal(range_replica_get(c->rep[leader], writes[i].key, writes[i].key_len,
                                           (hlc_timestamp){100 + i, 0}, &out),
                         RANGE_OK);
        assert_int_equal(out.len, writes[i].value_len);
        assert_memory_equal(out.data, writes[i].value, out.len);
    }
    base_buf_free(&out);
    assert_true(wait_for(c, followers_caught_up));

    atomic_store(&c->stop, true);
    pthread_join(c->ticker, NULL);
    for (int i = 1; i <= NODES; i++) {
        rpc_uv_free(c->uv[i]);
        range_node_forget_transport(c->rn[i]);
    }
    for (int i = 1; i <= NODES; i++) {
        range_node_free(c->rn[i]);
        storage_close(c->engine[i]);
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int main(void)
{
    base_log_set_level(BASE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_nodes_on_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
