/*
** range/replica_int.h: internals of the replicated range replica (replica*.c).
** No other folder includes this file.
**
** Raw-keyspace layout of one range (all integers big-endian u64):
**   "range/r/" range_id 'h'                 -> hard state: term, vote, commit
**   "range/r/" range_id 'l'                 -> last stored log index
**   "range/r/" range_id 'e' index           -> entry: term, type (1 byte), data
**   "range/r/" range_id 'a'                 -> applied index
**   "range/r/" range_id 'c' txn_id seq      -> index that applied the command,
**                                              then its commit timestamp
**                                              (hlc_encode, 12 bytes)
**   "range/r/" range_id 'd'                 -> the range descriptor
**                                              (range_descriptor_encode)
** ('h', 'l', 'e' belong to the log store behind replica_log; 'a' and 'c'
** to the state machine and are written in the same batch as the MVCC writes
** of the command they record; 'd' is written when the replica is first
** created on the store.)
*/
#ifndef MERIDIAN_RANGE_REPLICA_INT_H
#define MERIDIAN_RANGE_REPLICA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "range/range.h"

#define REPLICA_KEY_SIZE_MAX 40
#define REPLICA_KEY_PREFIX "range/r/"
#define REPLICA_KEY_PREFIX_LEN 8
#define REPLICA_RECORD_SIZE (8 + HLC_ENCODED_SIZE) /* value of a 'c' record */

/* Build the raw key of `kind` for range_id with up to two u64 suffixes
** (n_args 0..2). Returns its length (<= REPLICA_KEY_SIZE_MAX). */
size_t replica__key(uint8_t out[REPLICA_KEY_SIZE_MAX], uint64_t range_id, char kind,
                    uint64_t a, uint64_t b, int n_args);
void replica__put_u64(uint8_t *p, uint64_t v);
uint64_t replica__get_u64(const uint8_t *p);

/* ---- the Raft log store: a small interface so the shared segmented log
** (raft/log.c) can replace the raw-keyspace store later. ---------------- */
typedef struct replica_log replica_log;
typedef struct replica_log_ops {
    /* Read the durable state. *has_hard_state false for a fresh range.
    ** owner of *entries: caller, replica__entries_free(*entries, *n).
    ** Entries are consecutive from index 1. RANGE_OK, RANGE_ERR_CORRUPT,
    ** RANGE_ERR_IO, RANGE_ERR_NOMEM. */
    int (*load)(replica_log *log, raft_hard_state *hard_state, bool *has_hard_state,
                raft_entry **entries, size_t *n_entries);
    /* Durably (per the store's sync flag) write the hard state (NULL:
    ** unchanged) and entries; entries first delete every stored entry with
    ** index >= entries[0].index. One atomic write. */
    int (*save)(replica_log *log, const raft_hard_state *hard_state, const raft_entry *entries,
                size_t n_entries);
    void (*free)(replica_log *log);
} replica_log_ops;
struct replica_log {
    const replica_log_ops *ops;
};

/* The raw-keyspace log store. owner of *out: caller, (*out)->ops->free. */
int replica__log_raw_open(storage_engine *engine, uint64_t range_id, bool sync,
                          replica_log **out);
void replica__entries_free(raft_entry *entries, size_t n_entries);

/* ---- for the leaseholder evaluator (server.c) ------------------------------
** Each takes the node mutex (replica__command_record and replica__engine
** excepted): never call one while holding a lock a node callback takes. */

/* range_replica_propose, with: expected_term != 0: RANGE_ERR_DROPPED (cb
** never runs) unless the replica leads in exactly that term (the term the
** command was evaluated in); deadline false: the waiter has no deadline, so
** it resolves only OK / DROPPED (apply, or a later term's barrier) or at
** shutdown / replica__cancel_proposals. */
int replica__propose(range_replica *r, const range_command *cmd, uint64_t expected_term,
                     bool deadline, range_propose_fn cb, void *ctx, uint64_t *leader_hint);
/* Remove, without calling them, every proposal waiter of the node whose
** callback is cb (the one server of a node, at shutdown). After it returns
** no such callback runs or is running. */
void replica__cancel_proposals(range_node *n, range_propose_fn cb);
/* Remove the read barrier (cb, ctx) if still waiting. After it returns the
** callback has either run completely or never will. */
void replica__cancel_read(range_replica *r, range_read_fn cb, void *ctx);
/* The idempotence record of (txn_id, seq): *found and the commit timestamp
** it applied at. Reads storage (no node mutex); definitive only after a
** barrier (see replica.c, "SETTLED BY A LATER TERM"). RANGE_OK,
** RANGE_ERR_CORRUPT, RANGE_ERR_IO, RANGE_ERR_NOMEM. */
int replica__command_record(range_replica *r, uint64_t txn_id, uint64_t seq, bool *found,
                            hlc_timestamp *commit_ts);
/* The engine holding the replica's MVCC data (borrowed from the node). */
storage_engine *replica__engine(range_replica *r);

/* ---- server.c test hooks ------------------------------------------------------ */
typedef enum range__server_counter {
    RANGE__SERVER_PENDING = 0,    /* gauge: proposed commits not yet resolved */
    RANGE__SERVER_READ_WAITS = 1, /* reads that waited for a pending commit */
    RANGE__SERVER_PROPOSED = 2,   /* commits proposed */
    RANGE__SERVER_TERMS = 3,      /* leadership terms seen (low-water marks set) */
    RANGE__SERVER_COMMIT_WAITS = 4, /* answers that waited for the clock to pass */
} range__server_counter;
/* Current value of a counter (all ranges). */
uint64_t range__server_counter_get(range_server *s, range__server_counter which);
/* Wait (bounded by timeout_ms, on the server's condition variable) until
** the counter is >= at_least (or <= at_least when at_most). true if so. */
bool range__server_wait_counter(range_server *s, range__server_counter which, uint64_t value,
                                bool at_most, int64_t timeout_ms);

#endif
