/*
** range/replica.c: a Raft-replicated range replica and the node-level
** driver (range_node) that ticks every replica and routes Raft messages
** over an rpc_transport. Design: docs/range.md.
**
** Critical invariants:
**   - THE UPDATE CONTRACT of raft/raft.h, wired in replica_process: for every
**     update, first the log store writes the hard state and entries (one
**     atomic storage batch, synced when the node is configured with sync);
**     only then are messages and messages_after_persist sent, committed
**     entries applied, and RAFT_EVENT_PERSISTED stepped. A failed log write
**     poisons the replica (it never sends or applies again; RANGE_ERR_IO).
**   - APPLY WITH THE APPLIED INDEX: each committed entry is applied in ONE
**     storage batch holding its MVCC writes, its idempotence record
**     ('c' txn seq -> index) and the new applied index ('a'). So storage
**     always holds exactly the effects of entries [1, applied], and a
**     restart (raft config.applied = stored 'a') replays exactly the rest.
**   - applied only grows, by one per committed entry, in log order.
**   - a command whose (txn_id, seq) already has an idempotence record
**     changes nothing but the applied index: re-proposals apply once. The
**     record is read from this replica's own storage, whose state is a pure
**     function of the applied prefix, so every replica decides the same.
**   - a proposal waiter resolves exactly once: OK when a command with its
**     key applies, DROPPED when another entry applies at its index or when
**     a read barrier of a later term completes (see below), AMBIGUOUS at
**     its deadline (none for replica__propose without one) or at shutdown;
**     or it is removed without a call by replica__cancel_proposals.
**   - a read barrier completes OK only from a raft read state with status
**     OK (lease or ReadIndex) and only once applied >= its index.
**   - SETTLED BY A LATER TERM: a read state OK of term T is produced only
**     once an entry of term T is committed at or below its index, and it is
**     served only once applied >= that index. An entry of an older term not
**     applied by then can never commit (a committed log has non-decreasing
**     terms), so serving it first resolves every waiter proposed in a term
**     < T as DROPPED. So a leader's barrier makes the idempotence records
**     ('c') definitive for every proposal of an earlier term.
**   - the idempotence record holds the index and the commit timestamp of the
**     command that applied the key first (duplicates leave it unchanged).
**   - the range descriptor ('d') is written once, when the replica is first
**     created on this store, and read back at every restart.
** Limits: RANGE_PROPOSALS_PENDING_MAX, RANGE_READS_PENDING_MAX per replica,
** RANGE_NODE_REPLICAS_MAX per node, REPLICA_UPDATE_ROUNDS_MAX update rounds
** per event.
*/
#include <assert.h>
#include <pthread.h>
#include <string.h>

#include "range/replica_int.h"

#define REPLICA_UPDATE_ROUNDS_MAX 8
#define REPLICA_DEFAULT_PROPOSAL_TIMEOUT_TICKS 50

typedef struct replica_waiter {
    uint64_t txn_id, seq;
    uint64_t index;
    uint64_t term;          /* the term it was proposed in */
    uint64_t deadline_tick; /* UINT64_MAX: none */
    range_propose_fn cb;
    void *ctx;
} replica_waiter;

typedef struct replica_read {
    uint64_t read_id;
    uint64_t index;
    bool ready; /* raft answered OK; serve once applied >= index */
    uint64_t term; /* the leader's term when issued: raft aborts a read when
                      leadership ends, so an OK read was confirmed in it */
    uint64_t deadline_tick;
    range_read_fn cb;
    void *ctx;
} replica_read;

struct range_replica {
    range_node *node;
    range_replica_config config;
    uint64_t id; /* raft id == node id */
    raft_node *raft;
    replica_log *log;
    uint64_t applied;
    uint64_t tick;
    bool failed; /* a log or apply write failed: stopped */
    replica_waiter *waiters;
    size_t n_waiters;
    replica_read *reads;
    size_t n_reads;
    uint64_t next_read_id;
    storage_batch *batch;
    range_descriptor desc; /* owned: the range's descriptor as stored ('d') */
};

struct range_node {
    pthread_mutex_t mu;
    range_node_config config;
    uint64_t id;
    range_replica **replicas;
    size_t n_replicas;
    base_buf send_buf;
};

static int map_storage(int rc)
{
    if (rc == STORAGE_ERR_NOMEM)
        return RANGE_ERR_NOMEM;
    if (rc == STORAGE_ERR_CORRUPT)
        return RANGE_ERR_CORRUPT;
    return RANGE_ERR_IO;
}

/* ---- sending ---------------------------------------------------------------- */

static void node_send(range_node *n, uint64_t range_id, const raft_message *m)
{
    if (n->config.transport == NULL)
        return; /* range_node_forget_transport */
    base_buf_reset(&n->send_buf);
    int rc = range_raft_msg_encode(range_id, m, &n->send_buf);
    if (rc != RANGE_OK) {
        BASE_WARN("range", "r%llu: cannot encode %s to n%llu: %d", (unsigned long long)range_id,
                  raft_message_type_name(m->type), (unsigned long long)m->to, rc);
        return;
    }
    rc = rpc_send(n->config.transport, m->to, RANGE_RPC_METHOD_RAFT, n->send_buf.data,
                  n->send_buf.len);
    if (rc != RPC_OK)
        BASE_DEBUG("range", "r%llu: send to n%llu: %s", (unsigned long long)range_id,
                   (unsigned long long)m->to, rpc_strerror(rc));
}

/* ---- apply ------------------------------------------------------------------ */

/* Resolve waiters after the entry at `index` applied; key_ok: it was a
** command with key (txn_id, seq). */
static void resolve_waiters(range_replica *r, uint64_t index, bool key_ok, uint64_t txn_id,
                            uint64_t seq)
{
    size_t i = 0;
    while (i < r->n_waiters) {
        replica_waiter w = r->waiters[i];
        int rc;
        if (key_ok && w.txn_id == txn_id && w.seq == seq)
            rc = RANGE_OK;
        else if (w.index <= index)
            rc = RANGE_ERR_DROPPED; /* its slot holds another entry */
        else {
            i++;
            continue;
        }
        r->waiters[i] = r->waiters[--r->n_waiters];
        w.cb(w.ctx, rc);
    }
}

/* A barrier of term `term` is being served: every waiter of an older term
** that has not resolved yet can never apply (SETTLED BY A LATER TERM). */
static void settle_stale_waiters(range_replica *r, uint64_t term)
{
    size_t i = 0;
    while (i < r->n_waiters) {
        if (r->waiters[i].term >= term) {
            i++;
            continue;
        }
        replica_waiter w = r->waiters[i];
        r->waiters[i] = r->waiters[--r->n_waiters];
        w.cb(w.ctx, RANGE_ERR_DROPPED);
    }
}

static void serve_reads(range_replica *r)
{
    size_t i = 0;
    while (i < r->n_reads) {
        replica_read rd = r->reads[i];
        if (!rd.ready || rd.index > r->applied) {
            i++;
            continue;
        }
        r->reads[i] = r->reads[--r->n_reads];
        settle_stale_waiters(r, rd.term);
        rd.cb(rd.ctx, RANGE_OK);
    }
}

static int apply_entry(range_replica *r, const raft_entry *e)
{
    range_node *n = r->node;
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    uint8_t val[REPLICA_RECORD_SIZE];
    range_command cmd;
    range_write *writes = NULL;
    base_buf existing = {0};
    bool is_cmd = false, duplicate = false;
    int rc = 0;

    assert(e->index == r->applied + 1);
    storage_batch_clear(r->batch);
    if (e->type == RAFT_ENTRY_NORMAL && e->len > 0) {
        rc = range_command_decode(e->data, e->len, &cmd, &writes);
        if (rc == RANGE_ERR_NOMEM)
            goto cleanup;
        if (rc != RANGE_OK) {
            /* Same bytes on every replica: skipping is deterministic. */
            BASE_ERROR("range", "r%llu: undecodable command at index %llu skipped",
                       (unsigned long long)r->config.range_id, (unsigned long long)e->index);
            rc = 0;
        } else {
            is_cmd = true;
            size_t klen = replica__key(key, r->config.range_id, 'c', cmd.txn_id, cmd.seq, 2);
            rc = storage_get_raw(n->config.engine, key, klen, &existing);
            if (rc == STORAGE_OK) {
                duplicate = true;
            } else if (rc != STORAGE_NOT_FOUND) {
                rc = map_storage(rc);
                goto cleanup;
            }
            rc = 0;
            if (!duplicate) {
                for (size_t i = 0; i < cmd.write_count && rc == 0; i++) {
                    const range_write *w = &cmd.writes[i];
                    if (w->tombstone)
                        rc = storage_batch_delete(r->batch, w->key, w->key_len, cmd.commit_ts);
                    else
                        rc = storage_batch_put(r->batch, w->key, w->key_len, cmd.commit_ts,
                                               w->value, w->value_len);
                }
                replica__put_u64(val, e->index);
                hlc_encode(cmd.commit_ts, val + 8);
                if (rc == 0)
                    rc = storage_batch_put_raw(r->batch, key, klen, val, REPLICA_RECORD_SIZE);
                if (rc != 0) {
                    rc = map_storage(rc);
                    goto cleanup;
                }
            }
        }
    }
    replica__put_u64(val, e->index);
    rc = storage_batch_put_raw(r->batch, key, replica__key(key, r->config.range_id, 'a', 0, 0, 0),
                               val, 8);
    /* Not synced: the entry is durable in the Raft log on a majority, and a
    ** lost apply is replayed from the log at restart (applied moves with it). */
    if (rc == 0)
        rc = storage_write(n->config.engine, r->batch, false);
    if (rc != 0) {
        rc = map_storage(rc);
        goto cleanup;
    }
    r->applied = e->index;
    if (n->config.observer != NULL && is_cmd)
        n->config.observer(n->config.observer_ctx, r->config.range_id, r->id, e->index,
                           cmd.txn_id, cmd.seq, duplicate);
    resolve_waiters(r, e->index, is_cmd, is_cmd ? cmd.txn_id : 0, is_cmd ? cmd.seq : 0);
cleanup:
    storage_batch_clear(r->batch);
    base_buf_free(&existing);
    base_free(writes);
    return rc;
}

/* ---- the update loop -------------------------------------------------------- */

/* Carry out update u (and the PERSISTED steps it leads to). */
static void replica_process(range_replica *r, raft_update *u)
{
    range_node *n = r->node;
    for (int round = 0; round < REPLICA_UPDATE_ROUNDS_MAX; round++) {
        if (r->failed)
            return;
        uint64_t seq = u->persist_seq;
        if (seq != 0) {
            int rc = r->log->ops->save(r->log, u->hard_state_changed ? &u->hard_state : NULL,
                                       u->entries, u->n_entries);
            if (rc != RANGE_OK) {
                BASE_ERROR("range", "r%llu n%llu: raft log write failed (%d); replica stopped",
                           (unsigned long long)r->config.range_id, (unsigned long long)r->id,
                           rc);
                r->failed = true;
                return;
            }
        }
        for (size_t i = 0; i < u->n_messages; i++)
            node_send(n, r->config.range_id, &u->messages[i]);
        for (size_t i = 0; i < u->n_messages_after_persist; i++)
            node_send(n, r->config.range_id, &u->messages_after_persist[i]);
        for (size_t i = 0; i < u->n_committed; i++) {
            int rc = apply_entry(r, &u->committed[i]);
            if (rc != 0) {
                BASE_ERROR("range", "r%llu n%llu: apply of index %llu failed (%d); replica "
                           "stopped", (unsigned long long)r->config.range_id,
                           (unsigned long long)r->id,
                           (unsigned long long)u->committed[i].index, rc);
                r->failed = true;
                return;
            }
        }
        for (size_t i = 0; i < u->n_reads; i++) {
            const raft_read_state *rs = &u->reads[i];
            for (size_t j = 0; j < r->n_reads; j++) {
                if (r->reads[j].read_id != rs->read_id)
                    continue;
                if (rs->status == RAFT_READ_OK) {
                    r->reads[j].ready = true;
                    r->reads[j].index = rs->index;
                } else {
                    replica_read rd = r->reads[j];
                    r->reads[j] = r->reads[--r->n_reads];
                    rd.cb(rd.ctx, RANGE_ERR_NOT_LEADER);
                }
                break;
            }
        }
        serve_reads(r);
        if (seq == 0)
            return;
        raft_event ev = {.type = RAFT_EVENT_PERSISTED, .persist_seq = seq};
        (void)raft_step(r->raft, &ev, u);
    }
    /* The core produces no new persist work from PERSISTED alone, so this
    ** is a bug; the next event carries on safely anyway. */
    BASE_WARN("range", "r%llu: update rounds exhausted", (unsigned long long)r->config.range_id);
}

static int replica_step(range_replica *r, const raft_event *ev, raft_update *u)
{
    int rc = raft_step(r->raft, ev, u);
    replica_process(r, u);
    return rc;
}

/* ---- replicas ---------------------------------------------------------------- */

static void replica_free(range_replica *r)
{
    if (r == NULL)
        return;
    while (r->n_waiters > 0) {
        replica_waiter w = r->waiters[--r->n_waiters];
        w.cb(w.ctx, RANGE_ERR_AMBIGUOUS);
    }
    while (r->n_reads > 0) {
        replica_read rd = r->reads[--r->n_reads];
        rd.cb(rd.ctx, RANGE_ERR_UNAVAILABLE);
    }
    raft_node_free(r->raft);
    if (r->log != NULL)
        r->log->ops->free(r->log);
    storage_batch_free(r->batch);
    range_descriptor_free(&r->desc);
    base_free(r->waiters);
    base_free(r->reads);
    base_free(r);
}

static int load_applied(storage_engine *e, uint64_t range_id, uint64_t *applied)
{
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    base_buf buf = {0};
    int rc = storage_get_raw(e, key, replica__key(key, range_id, 'a', 0, 0, 0), &buf);
    *applied = 0;
    if (rc == STORAGE_OK) {
        if (buf.len == 8)
            *applied = replica__get_u64(buf.data);
        else
            rc = RANGE_ERR_CORRUPT;
    } else if (rc == STORAGE_NOT_FOUND) {
        rc = RANGE_OK;
    } else {
        rc = map_storage(rc);
    }
    base_buf_free(&buf);
    return rc;
}

/* The replica's descriptor into *out (zeroed first; owned by *out on
** RANGE_OK): the stored one, or, for a range new on this store, the one
** from the config (or [empty, +inf) over the peers), which is stored now. */
static int load_descriptor(range_node *n, const range_replica_config *config,
                           range_descriptor *out)
{
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    size_t klen = replica__key(key, config->range_id, 'd', 0, 0, 0);
    base_buf buf = {0};       /* owner: this function */
    storage_batch *b = NULL;  /* owner: this function */
    int rc;

    memset(out, 0, sizeof(*out));
    rc = storage_get_raw(n->config.engine, key, klen, &buf);
    if (rc == STORAGE_OK) {
        rc = range_descriptor_decode(buf.data, buf.len, out);
        if (rc == RANGE_OK && out->range_id != config->range_id) {
            range_descriptor_free(out);
            rc = RANGE_ERR_CORRUPT;
        } else if (rc != RANGE_OK && rc != RANGE_ERR_NOMEM) {
            rc = RANGE_ERR_CORRUPT;
        }
        goto cleanup;
    }
    if (rc != STORAGE_NOT_FOUND) {
        rc = map_storage(rc);
        goto cleanup;
    }
    if (config->descriptor != NULL) {
        if (config->descriptor->range_id != config->range_id) {
            rc = RANGE_ERR_INVALID;
            goto cleanup;
        }
        rc = range_descriptor_copy(out, config->descriptor);
        if (rc != RANGE_OK)
            goto cleanup;
    } else {
        out->range_id = config->range_id;
        out->generation = 1;
        for (size_t i = 0; i < config->n_peers; i++)
            out->replicas[i] = config->peers[i];
        out->n_replicas = config->n_peers;
    }
    rc = range_descriptor_encode(out, &buf);
    if (rc != RANGE_OK)
        goto fail;
    rc = RANGE_ERR_NOMEM;
    b = storage_batch_new();
    if (b == NULL)
        goto fail;
    rc = storage_batch_put_raw(b, key, klen, buf.data, buf.len);
    if (rc == STORAGE_OK)
        rc = storage_write(n->config.engine, b, n->config.sync);
    if (rc != STORAGE_OK) {
        rc = map_storage(rc);
        goto fail;
    }
    rc = RANGE_OK;
    goto cleanup;
fail:
    range_descriptor_free(out);
    memset(out, 0, sizeof(*out));
cleanup:
    storage_batch_free(b);
    base_buf_free(&buf);
    return rc;
}

int range_node_add_replica(range_node *n, const range_replica_config *config,
                           range_replica **out)
{
    range_replica *r = NULL;
    raft_entry *entries = NULL;
    size_t n_entries = 0;
    raft_hard_state hs;
    bool has_hs = false;
    bool self_in = false;
    int rc;

    if (n == NULL || config == NULL || config->range_id == 0 || config->n_peers == 0 ||
        config->n_peers > RANGE_REPLICAS_MAX || config->n_peers > RAFT_MAX_VOTERS)
        return RANGE_ERR_INVALID;
    for (size_t i = 0; i < config->n_peers; i++)
        if (config->peers[i] == n->id)
            self_in = true;
    if (!self_in)
        return RANGE_ERR_INVALID;
    pthread_mutex_lock(&n->mu);
    rc = RANGE_ERR_INVALID;
    for (size_t i = 0; i < n->n_replicas; i++)
        if (n->replicas[i]->config.range_id == config->range_id)
            goto cleanup;
    if (n->n_replicas >= RANGE_NODE_REPLICAS_MAX) {
        rc = RANGE_ERR_BUSY;
        goto cleanup;
    }
    rc = RANGE_ERR_NOMEM;
    r = base_calloc(1, sizeof(*r));
    if (r == NULL)
        goto cleanup;
    r->node = n;
    r->config = *config;
    r->config.descriptor = NULL; /* borrowed for this call only; r->desc keeps it */
    if (r->config.proposal_timeout_ticks <= 0)
        r->config.proposal_timeout_ticks = REPLICA_DEFAULT_PROPOSAL_TIMEOUT_TICKS;
    r->id = n->id;
    r->batch = storage_batch_new();
    if (r->batch == NULL)
        goto cleanup;
    rc = replica__log_raw_open(n->config.engine, config->range_id, n->config.sync, &r->log);
    if (rc != RANGE_OK)
        goto cleanup;
    rc = r->log->ops->load(r->log, &hs, &has_hs, &entries, &n_entries);
    if (rc != RANGE_OK)
        goto cleanup;
    rc = load_applied(n->config.engine, config->range_id, &r->applied);
    if (rc != RANGE_OK)
        goto cleanup;
    rc = load_descriptor(n, config, &r->desc);
    if (rc != RANGE_OK)
        goto cleanup;
    if (r->applied > n_entries) {
        rc = RANGE_ERR_CORRUPT; /* applied beyond the stored log */
        goto cleanup;
    }

    raft_config rc_cfg;
    raft_config_default(&rc_cfg);
    rc_cfg.id = n->id;
    for (size_t i = 0; i < config->n_peers; i++)
        rc_cfg.voters[i] = config->peers[i];
    rc_cfg.n_voters = config->n_peers;
    if (config->election_ticks > 0)
        rc_cfg.election_ticks = config->election_ticks;
    if (config->heartbeat_ticks > 0)
        rc_cfg.heartbeat_ticks = config->heartbeat_ticks;
    rc_cfg.applied = r->applied;
    rc_cfg.random_seed = config->random_seed ^ (n->id * 0x9e3779b97f4a7c15ULL);
    int rrc = raft_node_new(&rc_cfg, has_hs ? &hs : NULL, entries, n_entries, &r->raft);
    if (rrc != RAFT_OK) {
        BASE_ERROR("range", "r%llu n%llu: raft_node_new: %s",
                   (unsigned long long)config->range_id, (unsigned long long)n->id,
                   raft_strerror(rrc));
        rc = rrc == RAFT_ERR_NOMEM ? RANGE_ERR_NOMEM : RANGE_ERR_CORRUPT;
        goto cleanup;
    }
    range_replica **grown =
        base_realloc(n->replicas, (n->n_replicas + 1) * sizeof(*n->replicas));
    if (grown == NULL) {
        rc = RANGE_ERR_NOMEM;
        goto cleanup;
    }
    n->replicas = grown;
    n->replicas[n->n_replicas++] = r;
    if (out != NULL)
        *out = r;
    r = NULL;
    rc = RANGE_OK;
cleanup:
    replica__entries_free(entries, n_entries);
    replica_free(r);
    pthread_mutex_unlock(&n->mu);
    return rc;
}

range_replica *range_node_replica(range_node *n, uint64_t range_id)
{
    range_replica *found = NULL;
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < n->n_replicas; i++)
        if (n->replicas[i]->config.range_id == range_id)
            found = n->replicas[i];
    pthread_mutex_unlock(&n->mu);
    return found;
}

/* Caller holds the node mutex. RANGE_OK when r may take proposals and
** reads: not failed, and the Raft leader; else the error, with the leader
** hint filled when another node leads. */
static int replica_serving_check(range_replica *r, uint64_t *leader_hint)
{
    if (r->failed)
        return RANGE_ERR_IO;
    raft_status st;
    raft_node_status(r->raft, &st);
    if (st.role != RAFT_LEADER) {
        if (leader_hint != NULL)
            *leader_hint = st.leader;
        return RANGE_ERR_NOT_LEADER;
    }
    return RANGE_OK;
}

int replica__propose(range_replica *r, const range_command *cmd, uint64_t expected_term,
                     bool deadline, range_propose_fn cb, void *ctx, uint64_t *leader_hint)
{
    range_node *n;
    base_buf data = {0}; /* owner: this function (the core copies the entry) */
    raft_update u;
    int rc;
    if (leader_hint != NULL)
        *leader_hint = 0;
    if (r == NULL || cmd == NULL || cb == NULL)
        return RANGE_ERR_INVALID;
    n = r->node;
    pthread_mutex_lock(&n->mu);
    rc = replica_serving_check(r, leader_hint);
    if (rc != RANGE_OK)
        goto cleanup;
    if (expected_term != 0) {
        raft_status st;
        raft_node_status(r->raft, &st);
        if (st.term != expected_term) {
            rc = RANGE_ERR_DROPPED; /* evaluated in another term: evaluate again */
            goto cleanup;
        }
    }
    if (r->n_waiters >= RANGE_PROPOSALS_PENDING_MAX) {
        rc = RANGE_ERR_BUSY;
        goto cleanup;
    }
    rc = range_command_encode(cmd, &data);
    if (rc != RANGE_OK)
        goto cleanup;
    if (r->waiters == NULL) {
        r->waiters = base_calloc(RANGE_PROPOSALS_PENDING_MAX, sizeof(*r->waiters));
        if (r->waiters == NULL) {
            rc = RANGE_ERR_NOMEM;
            goto cleanup;
        }
    }
    raft_proposal p = {data.data, data.len};
    raft_event ev = {.type = RAFT_EVENT_PROPOSE, .proposals = &p, .n_proposals = 1};
    int rrc = raft_step(r->raft, &ev, &u);
    if (rrc == RAFT_OK) {
        replica_waiter *w = &r->waiters[r->n_waiters++];
        w->txn_id = cmd->txn_id;
        w->seq = cmd->seq;
        w->index = u.proposed_index;
        w->term = u.proposed_term;
        w->deadline_tick =
            deadline ? r->tick + (uint64_t)r->config.proposal_timeout_ticks : UINT64_MAX;
        w->cb = cb;
        w->ctx = ctx;
        rc = RANGE_OK;
    } else if (rrc == RAFT_ERR_NOT_LEADER || rrc == RAFT_ERR_TRANSFERRING) {
        if (leader_hint != NULL)
            *leader_hint = u.leader_hint;
        rc = RANGE_ERR_NOT_LEADER;
    } else if (rrc == RAFT_ERR_TOO_LARGE) {
        rc = RANGE_ERR_TOO_LARGE;
    } else if (rrc == RAFT_ERR_BUSY) {
        rc = RANGE_ERR_BUSY;
    } else if (rrc == RAFT_ERR_NOMEM) {
        rc = RANGE_ERR_NOMEM;
    } else {
        rc = RANGE_ERR_INVALID;
    }
    replica_process(r, &u); /* always: the update may carry work either way */
cleanup:
    pthread_mutex_unlock(&n->mu);
    base_buf_free(&data);
    return rc;
}

int range_replica_propose(range_replica *r, const range_command *cmd, range_propose_fn cb,
                          void *ctx, uint64_t *leader_hint)
{
    return replica__propose(r, cmd, 0, true, cb, ctx, leader_hint);
}

void replica__cancel_proposals(range_node *n, range_propose_fn cb)
{
    pthread_mutex_lock(&n->mu);
    for (size_t k = 0; k < n->n_replicas; k++) {
        range_replica *r = n->replicas[k];
        size_t i = 0;
        while (i < r->n_waiters) {
            if (r->waiters[i].cb == cb)
                r->waiters[i] = r->waiters[--r->n_waiters];
            else
                i++;
        }
    }
    pthread_mutex_unlock(&n->mu);
}

void replica__cancel_read(range_replica *r, range_read_fn cb, void *ctx)
{
    pthread_mutex_lock(&r->node->mu);
    for (size_t i = 0; i < r->n_reads; i++) {
        if (r->reads[i].cb == cb && r->reads[i].ctx == ctx) {
            r->reads[i] = r->reads[--r->n_reads];
            break; /* the raft read state, if it comes, finds no read: ignored */
        }
    }
    pthread_mutex_unlock(&r->node->mu);
}

int replica__command_record(range_replica *r, uint64_t txn_id, uint64_t seq, bool *found,
                            hlc_timestamp *commit_ts)
{
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    base_buf buf = {0}; /* owner: this function */
    *found = false;
    *commit_ts = HLC_ZERO;
    int rc = storage_get_raw(r->node->config.engine, key,
                             replica__key(key, r->config.range_id, 'c', txn_id, seq, 2), &buf);
    if (rc == STORAGE_NOT_FOUND) {
        rc = RANGE_OK;
    } else if (rc != STORAGE_OK) {
        rc = map_storage(rc);
    } else if (buf.len == REPLICA_RECORD_SIZE) {
        *found = true;
        *commit_ts = hlc_decode(buf.data + 8);
        rc = RANGE_OK;
    } else {
        rc = RANGE_ERR_CORRUPT; /* 8-byte records predate the timestamp: none exist */
    }
    base_buf_free(&buf);
    return rc;
}

storage_engine *replica__engine(range_replica *r)
{
    return r->node->config.engine;
}

int range_replica_read(range_replica *r, bool allow_lease, range_read_fn cb, void *ctx,
                       uint64_t *leader_hint)
{
    range_node *n;
    raft_update u;
    int rc;
    if (leader_hint != NULL)
        *leader_hint = 0;
    if (r == NULL || cb == NULL)
        return RANGE_ERR_INVALID;
    n = r->node;
    pthread_mutex_lock(&n->mu);
    rc = replica_serving_check(r, leader_hint);
    if (rc != RANGE_OK)
        goto cleanup;
    if (r->n_reads >= RANGE_READS_PENDING_MAX) {
        rc = RANGE_ERR_BUSY;
        goto cleanup;
    }
    if (r->reads == NULL) {
        r->reads = base_calloc(RANGE_READS_PENDING_MAX, sizeof(*r->reads));
        if (r->reads == NULL) {
            rc = RANGE_ERR_NOMEM;
            goto cleanup;
        }
    }
    uint64_t id = ++r->next_read_id;
    raft_status st;
    raft_node_status(r->raft, &st);
    replica_read *rd = &r->reads[r->n_reads++];
    memset(rd, 0, sizeof(*rd));
    rd->read_id = id;
    rd->term = st.term;
    rd->deadline_tick = r->tick + (uint64_t)r->config.proposal_timeout_ticks;
    rd->cb = cb;
    rd->ctx = ctx;
    raft_event ev = {.type = RAFT_EVENT_READ, .read_id = id, .allow_lease = allow_lease};
    int rrc = raft_step(r->raft, &ev, &u);
    if (rrc != RAFT_OK) {
        /* not queued in the core: take it back, cb never runs */
        for (size_t j = 0; j < r->n_reads; j++)
            if (r->reads[j].read_id == id) {
                r->reads[j] = r->reads[--r->n_reads];
                break;
            }
        if (rrc == RAFT_ERR_NOT_LEADER || rrc == RAFT_ERR_TRANSFERRING) {
            if (leader_hint != NULL)
                *leader_hint = u.leader_hint;
            rc = RANGE_ERR_NOT_LEADER;
        } else {
            rc = rrc == RAFT_ERR_NOMEM ? RANGE_ERR_NOMEM : RANGE_ERR_BUSY;
        }
    } else {
        rc = RANGE_OK;
    }
    replica_process(r, &u);
cleanup:
    pthread_mutex_unlock(&n->mu);
    return rc;
}

int range_replica_get(range_replica *r, const uint8_t *key, size_t key_len,
                      hlc_timestamp read_ts, base_buf *out)
{
    storage_value v = {0};
    if (r == NULL || key == NULL || key_len == 0 || out == NULL)
        return RANGE_ERR_INVALID;
    int rc = storage_get(r->node->config.engine, NULL, key, key_len, read_ts, &v);
    if (rc == STORAGE_OK && !v.tombstone) {
        base_buf_reset(out);
        rc = base_buf_append(out, v.bytes.data, v.bytes.len) == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
    } else if (rc == STORAGE_OK || rc == STORAGE_NOT_FOUND) {
        rc = RANGE_NOT_FOUND;
    } else {
        rc = map_storage(rc);
    }
    storage_value_free(&v);
    return rc;
}

void range_replica_get_status(range_replica *r, range_replica_status *out)
{
    raft_status st;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&r->node->mu);
    raft_node_status(r->raft, &st);
    out->range_id = r->config.range_id;
    out->node_id = r->id;
    out->leader = st.role == RAFT_LEADER;
    out->leader_id = st.leader;
    out->term = st.term;
    out->commit = st.commit;
    out->applied = r->applied;
    out->last_index = st.last_index;
    out->lease_valid = st.lease_valid;
    pthread_mutex_unlock(&r->node->mu);
}

int range_replica_descriptor(range_replica *r, range_descriptor *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&r->node->mu);
    int rc = range_descriptor_copy(out, &r->desc);
    pthread_mutex_unlock(&r->node->mu);
    return rc;
}

int range_replica_campaign(range_replica *r)
{
    raft_update u;
    pthread_mutex_lock(&r->node->mu);
    raft_event ev = {.type = RAFT_EVENT_CAMPAIGN};
    int rrc = r->failed ? RAFT_ERR_BUSY : replica_step(r, &ev, &u);
    pthread_mutex_unlock(&r->node->mu);
    return rrc == RAFT_OK ? RANGE_OK : RANGE_ERR_BUSY;
}

/* ---- the node driver -------------------------------------------------------- */

static void replica_tick(range_replica *r)
{
    raft_update u;
    if (r->failed)
        return;
    r->tick++;
    raft_event ev = {.type = RAFT_EVENT_TICK};
    (void)replica_step(r, &ev, &u);
    size_t i = 0;
    while (i < r->n_waiters) {
        if (r->waiters[i].deadline_tick > r->tick) { /* UINT64_MAX: never */
            i++;
            continue;
        }
        replica_waiter w = r->waiters[i];
        r->waiters[i] = r->waiters[--r->n_waiters];
        w.cb(w.ctx, RANGE_ERR_AMBIGUOUS);
    }
    i = 0;
    while (i < r->n_reads) {
        if (r->reads[i].deadline_tick > r->tick) {
            i++;
            continue;
        }
        replica_read rd = r->reads[i];
        r->reads[i] = r->reads[--r->n_reads];
        rd.cb(rd.ctx, RANGE_ERR_UNAVAILABLE);
    }
}

void range_node_tick(range_node *n)
{
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < n->n_replicas; i++)
        replica_tick(n->replicas[i]);
    pthread_mutex_unlock(&n->mu);
}

bool range_node_handle_rpc(range_node *n, rpc_transport *t, const rpc_message *msg)
{
    range_raft_msg dm;
    raft_update u;
    if (msg->method != RANGE_RPC_METHOD_RAFT)
        return false;
    if (msg->request_id != 0) {
        /* Raft traffic is one-way: a request of this method is a peer's bug */
        BASE_DEBUG("range", "n%llu: raft request from n%llu refused", (unsigned long long)n->id,
                   (unsigned long long)msg->from);
        (void)rpc_respond(t, msg->from, msg->request_id, RPC_ERR_NO_HANDLER, NULL, 0);
        return true;
    }
    int rc = range_raft_msg_decode(msg->payload, msg->payload_len, &dm);
    if (rc != RANGE_OK) {
        BASE_WARN("range", "n%llu: bad raft message (%zu bytes) from n%llu dropped: %d",
                  (unsigned long long)n->id, msg->payload_len, (unsigned long long)msg->from,
                  rc);
        return true;
    }
    if (dm.msg.to != n->id || dm.msg.from != msg->from) {
        BASE_WARN("range", "n%llu: raft message for n%llu from n%llu (sender n%llu) dropped",
                  (unsigned long long)n->id, (unsigned long long)dm.msg.to,
                  (unsigned long long)dm.msg.from, (unsigned long long)msg->from);
        goto cleanup;
    }
    pthread_mutex_lock(&n->mu);
    range_replica *r = NULL;
    for (size_t i = 0; i < n->n_replicas; i++)
        if (n->replicas[i]->config.range_id == dm.range_id)
            r = n->replicas[i];
    if (r == NULL) {
        BASE_DEBUG("range", "n%llu: message for unknown range r%llu dropped",
                   (unsigned long long)n->id, (unsigned long long)dm.range_id);
    } else if (!r->failed) {
        raft_event ev = {.type = RAFT_EVENT_MESSAGE, .message = &dm.msg};
        int rrc = replica_step(r, &ev, &u);
        if (rrc == RAFT_ERR_INVALID)
            BASE_WARN("range", "r%llu n%llu: malformed %s from n%llu ignored",
                      (unsigned long long)dm.range_id, (unsigned long long)n->id,
                      raft_message_type_name(dm.msg.type), (unsigned long long)msg->from);
    }
    pthread_mutex_unlock(&n->mu);
cleanup:
    range_raft_msg_free(&dm);
    return true;
}

static void node_handler(void *ctx, rpc_transport *t, const rpc_message *msg)
{
    range_node *n = ctx;
    if (range_node_handle_rpc(n, t, msg))
        return;
    BASE_DEBUG("range", "n%llu: unexpected method %u from n%llu dropped",
               (unsigned long long)n->id, msg->method, (unsigned long long)msg->from);
    if (msg->request_id != 0)
        (void)rpc_respond(t, msg->from, msg->request_id, RPC_ERR_NO_HANDLER, NULL, 0);
}

int range_node_new(const range_node_config *config, range_node **out)
{
    if (config == NULL || config->transport == NULL || config->engine == NULL || out == NULL)
        return RANGE_ERR_INVALID;
    uint64_t id = rpc_node(config->transport);
    if (id == 0)
        return RANGE_ERR_INVALID;
    range_node *n = base_calloc(1, sizeof(*n));
    if (n == NULL)
        return RANGE_ERR_NOMEM;
    if (pthread_mutex_init(&n->mu, NULL) != 0) {
        base_free(n);
        return RANGE_ERR_NOMEM;
    }
    n->config = *config;
    n->id = id;
    if (!config->no_handler)
        rpc_set_handler(config->transport, node_handler, n);
    *out = n;
    return RANGE_OK;
}

void range_node_forget_transport(range_node *n)
{
    pthread_mutex_lock(&n->mu);
    n->config.transport = NULL; /* node_send drops from now on */
    pthread_mutex_unlock(&n->mu);
}

void range_node_free(range_node *n)
{
    if (n == NULL)
        return;
    if (n->config.transport != NULL && !n->config.no_handler)
        rpc_set_handler(n->config.transport, NULL, NULL);
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < n->n_replicas; i++)
        replica_free(n->replicas[i]);
    base_free(n->replicas);
    base_buf_free(&n->send_buf);
    pthread_mutex_unlock(&n->mu);
    pthread_mutex_destroy(&n->mu);
    base_free(n);
}
