/*
** range/replica_int.h: internals of the replicated range replica (replica*.c).
** No other folder includes this file.
**
** Raw-keyspace layout of one range (all integers big-endian u64):
**   "range/r/" range_id 'h'                 -> hard state: term, vote, commit
**   "range/r/" range_id 'l'                 -> last stored log index
**   "range/r/" range_id 'e' index           -> entry: term, type (1 byte), data
**   "range/r/" range_id 'a'                 -> applied index
**   "range/r/" range_id 'c' txn_id seq      -> index that applied the command
** ('h', 'l', 'e' belong to the log store behind replica_log; 'a' and 'c'
** to the state machine and are written in the same batch as the MVCC writes
** of the command they record.)
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

#endif
