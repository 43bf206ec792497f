/*
** range/replica_log_shared.c: the Raft log and hard state of one range as
** one group (group id = range id) of the node's shared segmented log
** (raft/log.c, docs/raft.md "The log on disk"). The log is borrowed from the
** node's owner; this file only appends, compacts and reads back.
**
** Invariants:
**   - a save is one raft_log_append (hard state record first, then the
**     entries, replacing the stored suffix from entries[0].index): atomic
**     on replay, visible to reads at once, durable only once
**     raft_log_sync(seq) returns. With sync the save hands that seq to the
**     replica (*sync_seq), which sends nothing that depends on the write
**     and steps no PERSISTED before the node's syncer has synced it; without
**     sync nothing is ever fsynced (*sync_seq = 0), as with the raw store.
**   - the stored group is exactly (compact_index, last_index], as raft/log.c
**     recovers it (torn tail cut, corruption reported, never skipped).
*/
#include <string.h>

#include "range/replica_int.h"

typedef struct shared_log {
    replica_log base; /* first */
    raft_log *log;    /* borrowed: the node's */
    uint64_t group;
    bool sync;
} shared_log;

int replica__map_log_error(int rc)
{
    switch (rc) {
    case RAFT_LOG_OK:
        return RANGE_OK;
    case RAFT_LOG_ERR_NOMEM:
        return RANGE_ERR_NOMEM;
    case RAFT_LOG_ERR_CORRUPT:
    case RAFT_LOG_ERR_COMPACTED:
    case RAFT_LOG_ERR_UNAVAILABLE:
        return RANGE_ERR_CORRUPT;
    case RAFT_LOG_ERR_TOO_LARGE:
        return RANGE_ERR_TOO_LARGE;
    case RAFT_LOG_ERR_LIMIT:
        return RANGE_ERR_BUSY;
    case RAFT_LOG_ERR_INVALID:
        return RANGE_ERR_INVALID;
    default:
        return RANGE_ERR_IO;
    }
}

static int shared_load(replica_log *self, replica_log_state *out)
{
    shared_log *l = (shared_log *)self;
    raft_log_group_info gi;
    raft_entry *entries = NULL; /* owner: this function until moved to *out */
    size_t n = 0;
    int rc;
    memset(out, 0, sizeof(*out));
    raft_log_group(l->log, l->group, &gi);
    if (!gi.exists)
        return RANGE_OK;
    out->has_hard_state = gi.has_hard_state;
    out->hard_state = gi.hard_state;
    out->compact_index = gi.compact_index;
    out->compact_term = gi.compact_term;
    if (gi.last_index > gi.compact_index) {
        /* One read: raft_log_entries with no byte limit returns the whole
        ** range or an error (bounded by the truncation policy). */
        rc = raft_log_entries(l->log, l->group, gi.first_index, gi.last_index + 1, 0, &entries,
                              &n);
        if (rc != RAFT_LOG_OK) {
            BASE_ERROR("range", "r%llu: cannot read its raft log [%llu, %llu]: %s",
                       (unsigned long long)l->group, (unsigned long long)gi.first_index,
                       (unsigned long long)gi.last_index, raft_log_strerror(rc));
            memset(out, 0, sizeof(*out));
            return replica__map_log_error(rc);
        }
        if (n != gi.last_index - gi.compact_index) {
            raft_log_entries_free(entries, n);
            memset(out, 0, sizeof(*out));
            return RANGE_ERR_CORRUPT;
        }
    }
    out->entries = entries;
    out->n_entries = n;
    out->entries_free = raft_log_entries_free;
    return RANGE_OK;
}

static int shared_save(replica_log *self, const raft_hard_state *hs,
                       const raft_entry *entries, size_t n_entries, uint64_t *sync_seq)
{
    shared_log *l = (shared_log *)self;
    uint64_t seq = 0;
    *sync_seq = 0;
    if (hs == NULL && n_entries == 0)
        return RANGE_OK;
    int rc = raft_log_append(l->log, l->group, hs, entries, n_entries, &seq);
    if (rc != RAFT_LOG_OK) {
        BASE_ERROR("range", "r%llu: raft log append failed: %s", (unsigned long long)l->group,
                   raft_log_strerror(rc));
        return replica__map_log_error(rc);
    }
    if (l->sync)
        *sync_seq = seq;
    return RANGE_OK;
}

static int shared_compact(replica_log *self, uint64_t up_to, uint64_t term)
{
    shared_log *l = (shared_log *)self;
    int rc = raft_log_compact(l->log, l->group, up_to, term, NULL);
    if (rc != RAFT_LOG_OK) {
        BASE_ERROR("range", "r%llu: raft log compaction to %llu failed: %s",
                   (unsigned long long)l->group, (unsigned long long)up_to,
                   raft_log_strerror(rc));
        return replica__map_log_error(rc);
    }
    return RANGE_OK;
}

static int shared_reset(replica_log *self, uint64_t index, uint64_t term)
{
    shared_log *l = (shared_log *)self;
    raft_log_group_info gi;
    int rc = RAFT_LOG_OK;
    raft_log_group(l->log, l->group, &gi);
    if (gi.exists && gi.last_index > gi.compact_index)
        rc = raft_log_truncate_suffix(l->log, l->group, gi.compact_index + 1, NULL);
    if (rc == RAFT_LOG_OK && (!gi.exists || index > gi.compact_index))
        rc = raft_log_compact(l->log, l->group, index, term, NULL);
    if (rc != RAFT_LOG_OK) {
        BASE_ERROR("range", "r%llu: raft log reset to %llu failed: %s",
                   (unsigned long long)l->group, (unsigned long long)index, raft_log_strerror(rc));
        return replica__map_log_error(rc);
    }
    return RANGE_OK;
}

static void shared_free(replica_log *self)
{
    base_free(self);
}

static const replica_log_ops shared_ops = {shared_load, shared_save, shared_compact,
                                           shared_reset, shared_free};

int replica__log_shared_open(raft_log *log, uint64_t range_id, bool sync, replica_log **out)
{
    shared_log *l = base_calloc(1, sizeof(*l)); /* owner: caller, ops->free */
    if (l == NULL)
        return RANGE_ERR_NOMEM;
    l->base.ops = &shared_ops;
    l->log = log;
    l->group = range_id;
    l->sync = sync;
    *out = &l->base;
    return RANGE_OK;
}
