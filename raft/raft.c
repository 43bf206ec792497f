/*
** raft/raft.c: the pure Raft core. See raft/raft.h for the API contract and
** docs/raft.md for the design.
**
** Invariants kept here (asserted where cheap):
**   - log[i].index == first_index + i; terms never decrease along the log;
**   - commit <= last index; applied <= min(commit, stable_index);
**   - entries at index <= commit are never truncated (a peer asking for it
**     is reported as RAFT_ERR_INVALID and ignored);
**   - a message is routed to messages_after_persist whenever the node's
**     current term or vote is not yet known durable, or when it acknowledges
**     log entries (APPEND_RESP) or grants a vote;
**   - the leader counts itself in the commit quorum only up to
**     stable_index, and advances commit only to an entry of its own term;
**   - a lease read is served only when a quorum acked a heartbeat sent less
**     than election_ticks - lease_drift_ticks ago, a TIMEOUT_NOW was never
**     sent in this term and an entry of this term is committed.
**   - membership: the configuration in effect is the latest config entry
**     in the log (or the snapshot's): it changes when an entry is appended
**     and is recomputed when one is truncated; a leader proposes a change
**     only with an entry of its term committed and no change uncommitted,
**     so two consecutive configurations differ by one server and any two of
**     their majorities intersect; only voters count (commit, votes, lease,
**     check-quorum, ReadIndex);
**   - snapshots: first_index == snap_index + 1; snap_index <= applied; a
**     follower installs a snapshot only above its commit index, and
**     acknowledges it (APPEND_RESP) only after the persist.
** Every loop is bounded by the log length, the peer count or a named limit
** from raft_int.h.
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "raft/raft_int.h"

/* ---- names ----------------------------------------------------------------- */

const char *raft_strerror(int code) {
    switch (code) {
    case RAFT_OK: return "ok";
    case RAFT_ERR_NOMEM: return "out of memory";
    case RAFT_ERR_NOT_LEADER: return "not leader";
    case RAFT_ERR_TRANSFERRING: return "leadership transfer in progress";
    case RAFT_ERR_INVALID: return "invalid argument or message";
    case RAFT_ERR_BUSY: return "queue full";
    case RAFT_ERR_UNSUPPORTED: return "unsupported";
    case RAFT_ERR_TOO_LARGE: return "proposal too large";
    case RAFT_ERR_CONF_PENDING: return "configuration change pending";
    case RAFT_ERR_NOT_CAUGHT_UP: return "learner not caught up";
    default: return "unknown raft error";
    }
}

const char *raft_role_name(raft_role role) {
    switch (role) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PRE_CANDIDATE: return "pre-candidate";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    }
    return "?";
}

const char *raft_message_type_name(raft_message_type type) {
    switch (type) {
    case RAFT_MSG_APPEND: return "APP";
    case RAFT_MSG_APPEND_RESP: return "APP_RESP";
    case RAFT_MSG_VOTE: return "VOTE";
    case RAFT_MSG_VOTE_RESP: return "VOTE_RESP";
    case RAFT_MSG_PRE_VOTE: return "PRE_VOTE";
    case RAFT_MSG_PRE_VOTE_RESP: return "PRE_VOTE_RESP";
    case RAFT_MSG_HEARTBEAT: return "HB";
    case RAFT_MSG_HEARTBEAT_RESP: return "HB_RESP";
    case RAFT_MSG_TIMEOUT_NOW: return "TIMEOUT_NOW";
    case RAFT_MSG_SNAPSHOT: return "SNAP";
    case RAFT_MSG_SNAPSHOT_RESP: return "SNAP_RESP";
    }
    return "?";
}

/* ---- messages ---------------------------------------------------------------- */

int raft_message_clone(const raft_message *m, raft_message *out) {
    size_t i;
    *out = *m;
    out->entries = NULL;
    out->n_entries = 0;
    out->data = NULL;
    out->len = 0;
    if (m->len > 0) {
        out->data = base_malloc(m->len);
        if (out->data == NULL)
            goto nomem;
        memcpy(out->data, m->data, m->len);
        out->len = m->len;
    }
    if (m->n_entries == 0)
        return RAFT_OK;
    out->entries = base_calloc(m->n_entries, sizeof(raft_entry));
    if (out->entries == NULL)
        goto nomem;
    for (i = 0; i < m->n_entries; i++) {
        out->entries[i] = m->entries[i];
        out->entries[i].data = NULL;
        if (m->entries[i].len > 0) {
            out->entries[i].data = base_malloc(m->entries[i].len);
            if (out->entries[i].data == NULL) {
                out->n_entries = i;
                goto nomem;
            }
            memcpy(out->entries[i].data, m->entries[i].data, m->entries[i].len);
        }
    }
    out->n_entries = m->n_entries;
    return RAFT_OK;
nomem:
    raft_message_release(out);
    return RAFT_ERR_NOMEM;
}

void raft_message_release(raft_message *m) {
    size_t i;
    if (m->entries != NULL) {
        for (i = 0; i < m->n_entries; i++)
            base_free(m->entries[i].data);
        base_free(m->entries);
    }
    base_free(m->data);
    memset(m, 0, sizeof(*m));
}

/* ---- membership ------------------------------------------------------------ */

static bool id_in(const uint64_t *ids, size_t n, uint64_t id) {
    size_t i;
    for (i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

bool raft_membership_is_voter(const raft_membership *m, uint64_t id) {
    return id_in(m->voters, m->n_voters, id);
}

bool raft_membership_is_learner(const raft_membership *m, uint64_t id) {
    return id_in(m->learners, m->n_learners, id);
}

static int membership_check(const raft_membership *m) {
    size_t i;
    if (m->n_voters > RAFT_MAX_VOTERS || m->n_learners > RAFT_MAX_VOTERS ||
        m->n_voters + m->n_learners > RAFT_MAX_VOTERS)
        return RAFT_ERR_INVALID;
    for (i = 0; i < m->n_voters; i++)
        if (m->voters[i] == RAFT_NONE || id_in(m->voters, i, m->voters[i]))
            return RAFT_ERR_INVALID;
    for (i = 0; i < m->n_learners; i++)
        if (m->learners[i] == RAFT_NONE || id_in(m->learners, i, m->learners[i]) ||
            id_in(m->voters, m->n_voters, m->learners[i]))
            return RAFT_ERR_INVALID;
    return RAFT_OK;
}

static void put_u64(uint8_t *p, uint64_t v) {
    int i;
    for (i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

size_t raft_membership_encode(const raft_membership *m, uint8_t *buf) {
    size_t i, off = 4;
    assert(membership_check(m) == RAFT_OK);
    buf[0] = 'M';
    buf[1] = 1;
    buf[2] = (uint8_t)m->n_voters;
    buf[3] = (uint8_t)m->n_learners;
    for (i = 0; i < m->n_voters; i++, off += 8)
        put_u64(buf + off, m->voters[i]);
    for (i = 0; i < m->n_learners; i++, off += 8)
        put_u64(buf + off, m->learners[i]);
    return off;
}

int raft_membership_decode(const uint8_t *data, size_t len, raft_membership *out) {
    size_t i, off = 4, need;
    memset(out, 0, sizeof(*out));
    if (data == NULL || len < 4 || data[0] != 'M' || data[1] != 1)
        return RAFT_ERR_INVALID;
    if ((size_t)data[2] + data[3] > RAFT_MAX_VOTERS)
        return RAFT_ERR_INVALID;
    need = 4 + 8 * ((size_t)data[2] + data[3]);
    if (len < need)
        return RAFT_ERR_INVALID;
    out->n_voters = data[2];
    out->n_learners = data[3];
    for (i = 0; i < out->n_voters; i++, off += 8)
        out->voters[i] = get_u64(data + off);
    for (i = 0; i < out->n_learners; i++, off += 8)
        out->learners[i] = get_u64(data + off);
    if (membership_check(out) != RAFT_OK) {
        memset(out, 0, sizeof(*out));
        return RAFT_ERR_INVALID;
    }
    return (int)need;
}

/* ---- config ---------------------------------------------------------------- */

void raft_config_default(raft_config *c) {
    memset(c, 0, sizeof(*c));
    c->election_ticks = 10;
    c->heartbeat_ticks = 1;
    c->lease_drift_ticks = 2;
    c->max_inflight_msgs = 8;
    c->max_msg_entries = 64;
    c->max_msg_bytes = 1 << 20;
    c->max_entry_bytes = 1 << 20;
    c->max_apply_entries = 256;
    c->snapshot_chunk_bytes = RAFT__DEFAULT_CHUNK_BYTES;
    c->snapshot_resend_ticks = 0;
}

static int config_check(const raft_config *c) {
    raft_membership m;
    size_t i;
    if (c->id == RAFT_NONE || c->n_voters > RAFT_MAX_VOTERS || c->n_learners > RAFT_MAX_VOTERS)
        return RAFT_ERR_INVALID;
    memset(&m, 0, sizeof(m));
    for (i = 0; i < c->n_voters; i++)
        m.voters[i] = c->voters[i];
    for (i = 0; i < c->n_learners; i++)
        m.learners[i] = c->learners[i];
    m.n_voters = c->n_voters;
    m.n_learners = c->n_learners;
    if (membership_check(&m) != RAFT_OK)
        return RAFT_ERR_INVALID;
    if (c->snapshot_resend_ticks < 0)
        return RAFT_ERR_INVALID;
    if (c->heartbeat_ticks < 1 || c->election_ticks < 2 * c->heartbeat_ticks ||
        c->election_ticks > RAFT__MAX_ELECTION_TICKS)
        return RAFT_ERR_INVALID;
    if (c->lease_drift_ticks < 1 || c->lease_drift_ticks >= c->election_ticks)
        return RAFT_ERR_INVALID;
    if (c->max_inflight_msgs < 1 || c->max_inflight_msgs > RAFT__MAX_INFLIGHT)
        return RAFT_ERR_INVALID;
    if (c->max_msg_entries < 1 || c->max_apply_entries < 1 || c->max_msg_bytes < 1)
        return RAFT_ERR_INVALID;
    return RAFT_OK;
}

/* ---- PRNG (owned by the node; splitmix64) ------------------------------------ */

static uint64_t rng_next(raft_node *n) {
    uint64_t z = (n->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void reset_randomized_timeout(raft_node *n) {
    n->randomized_timeout =
        n->cfg.election_ticks + (int)(rng_next(n) % (uint64_t)n->cfg.election_ticks);
}

/* ---- log ------------------------------------------------------------------- */

static uint64_t last_index(const raft_node *n) {
    return n->first_index + n->log_len - 1;
}

static uint64_t term_at(const raft_node *n, uint64_t index) {
    if (index != 0 && index == n->snap_index)
        return n->snap_term;
    if (index == 0 || index < n->first_index || index > last_index(n))
        return 0;
    return n->log[index - n->first_index].term;
}

static uint64_t last_term(const raft_node *n) {
    return term_at(n, last_index(n));
}

static bool has_entry(const raft_node *n, uint64_t index, uint64_t term) {
    if (index == 0)
        return term == 0;
    return index <= last_index(n) && term_at(n, index) == term;
}

static int log_reserve(raft_node *n, size_t extra) {
    size_t need = n->log_len + extra, cap;
    raft_entry *p;
    if (need <= n->log_cap)
        return RAFT_OK;
    cap = n->log_cap ? n->log_cap : 64;
    while (cap < need)
        cap *= 2;
    p = base_realloc(n->log, cap * sizeof(raft_entry));
    if (p == NULL)
        return RAFT_ERR_NOMEM;
    n->log = p;
    n->log_cap = cap;
    return RAFT_OK;
}

/* ---- membership in effect ----------------------------------------------------- */

static raft__progress *progress_of(raft_node *n, uint64_t id);

static void progress_init(raft_node *n, raft__progress *pr, uint64_t id) {
    memset(pr, 0, sizeof(*pr));
    pr->id = id;
    pr->next = last_index(n) + 1;
    pr->state = RAFT__PROBE;
    pr->ack_sent_tick = -1;
    pr->snap_wait = -1;
}

static bool self_voter(const raft_node *n) {
    return raft_membership_is_voter(&n->conf, n->cfg.id);
}

/* Make c (from the entry at index, or the snapshot when index ==
** snap_index) the configuration in effect: rebuild the progress array,
** keeping what is known of the peers that stay. Self always has a slot. */
static void apply_conf(raft_node *n, const raft_membership *c, uint64_t index) {
    static const size_t max_ids = RAFT__MAX_PRS;
    raft__progress *old = n->prs_scratch;
    uint64_t ids[RAFT__MAX_PRS];
    size_t n_old = n->n_prs, n_ids = 0, i, j;
    memcpy(old, n->prs, n_old * sizeof(raft__progress));
    for (i = 0; i < c->n_voters; i++)
        ids[n_ids++] = c->voters[i];
    for (i = 0; i < c->n_learners; i++)
        ids[n_ids++] = c->learners[i];
    if (!id_in(ids, n_ids, n->cfg.id))
        ids[n_ids++] = n->cfg.id;
    assert(n_ids <= max_ids);
    for (i = 0; i < n_ids; i++) {
        raft__progress *pr = &n->prs[i];
        bool found = false;
        for (j = 0; j < n_old; j++) {
            if (old[j].id == ids[i]) {
                *pr = old[j];
                found = true;
                break;
            }
        }
        if (!found)
            progress_init(n, pr, ids[i]);
        pr->voter = raft_membership_is_voter(c, ids[i]);
        pr->learner = raft_membership_is_learner(c, ids[i]);
    }
    n->n_prs = n_ids;
    n->conf = *c;
    n->conf_index = index;
    n->quorum = c->n_voters / 2 + 1;
    if (n->transfer_to != RAFT_NONE && !raft_membership_is_voter(c, n->transfer_to)) {
        n->transfer_to = RAFT_NONE;
        n->transfer_elapsed = 0;
    }
}

/* The configuration in effect at index (>= snap_index): the latest config
** entry at or below it, else the snapshot's. */
static uint64_t conf_at(const raft_node *n, uint64_t index, raft_membership *out) {
    uint64_t i;
    for (i = BASE_MIN(index, last_index(n)); i >= n->first_index && i > 0; i--) {
        const raft_entry *e = &n->log[i - n->first_index];
        if (e->type == RAFT_ENTRY_CONFIG && raft_membership_decode(e->data, e->len, out) >= 0)
            return i;
    }
    *out = n->snap_conf;
    return n->snap_index;
}

static void recompute_conf(raft_node *n) {
    raft_membership c;
    uint64_t at = conf_at(n, last_index(n), &c);
    apply_conf(n, &c, at);
}

static void mark_unpersisted(raft_node *n, uint64_t index) {
    if (n->unpersisted_from == 0 || index < n->unpersisted_from)
        n->unpersisted_from = index;
}

/* Remove every entry with index >= from (from > commit). */
static void log_truncate(raft_node *n, uint64_t from) {
    int i;
    assert(from > n->commit && from >= n->first_index);
    while (n->log_len > 0 && last_index(n) >= from) {
        n->log_len--;
        base_free(n->log[n->log_len].data);
        n->log[n->log_len].data = NULL;
    }
    if (n->stable_index >= from)
        n->stable_index = from - 1;
    for (i = 0; i < n->records_count; i++) {
        raft__persist_record *r = &n->records[(n->records_start + i) % RAFT__PERSIST_RING];
        if (r->last_index >= from) {
            r->last_index = from - 1;
            r->last_term = term_at(n, from - 1);
        }
    }
    if (n->unpersisted_from > from)
        n->unpersisted_from = from;
    if (n->conf_index >= from)
        recompute_conf(n); /* the config entry is gone: roll back */
}

/* Drop every entry with index <= upto (first_index <= upto + 1, upto <=
** last index); the entry at upto becomes the snapshot point. */
static void log_drop_prefix(raft_node *n, uint64_t upto) {
    size_t k, drop;
    assert(upto + 1 >= n->first_index && upto <= last_index(n));
    drop = (size_t)(upto + 1 - n->first_index);
    for (k = 0; k < drop; k++)
        base_free(n->log[k].data);
    if (drop > 0)
        memmove(n->log, n->log + drop, (n->log_len - drop) * sizeof(raft_entry));
    n->log_len -= drop;
    n->first_index = upto + 1;
    if (n->unpersisted_from != 0 && n->unpersisted_from < n->first_index)
        n->unpersisted_from = n->first_index;
}

/* Append entries copied from src (indices continue the log). */
static int log_append_copy(raft_node *n, const raft_entry *src, size_t count) {
    size_t i;
    uint8_t **copies = NULL;
    int rc = log_reserve(n, count);
    if (rc != 0)
        return rc;
    copies = base_calloc(count ? count : 1, sizeof(uint8_t *));
    if (copies == NULL)
        return RAFT_ERR_NOMEM;
    for (i = 0; i < count; i++) {
        if (src[i].len > 0) {
            copies[i] = base_malloc(src[i].len);
            if (copies[i] == NULL) {
                rc = RAFT_ERR_NOMEM;
                goto cleanup;
            }
            memcpy(copies[i], src[i].data, src[i].len);
        }
    }
    for (i = 0; i < count; i++) {
        raft_entry *e = &n->log[n->log_len];
        assert(src[i].index == last_index(n) + 1);
        assert(src[i].term >= last_term(n));
        *e = src[i];
        e->data = copies[i];
        copies[i] = NULL;
        n->log_len++;
        mark_unpersisted(n, e->index);
        if (e->type == RAFT_ENTRY_CONFIG) {
            raft_membership c;
            /* validated before (peer message, restart, our own proposal) */
            if (raft_membership_decode(e->data, e->len, &c) >= 0)
                apply_conf(n, &c, e->index);
        }
    }
cleanup:
    for (i = 0; i < count; i++)
        base_free(copies[i]);
    base_free(copies);
    return rc;
}

/* Largest index <= index whose term is <= term (fast back-off). */
static uint64_t find_conflict_by_term(const raft_node *n, uint64_t index, uint64_t term) {
    if (index > last_index(n))
        index = last_index(n);
    while (index > 0 && term_at(n, index) > term)
        index--;
    return index;
}

/* ---- output ---------------------------------------------------------------- */

static raft__progress *progress_of(raft_node *n, uint64_t id) {
    size_t i;
    for (i = 0; i < n->n_prs; i++)
        if (n->prs[i].id == id)
            return &n->prs[i];
    return NULL;
}

/* A new outgoing message of the current term, or NULL (dropped: NOMEM). */
static raft_message *out_push(raft_node *n, raft_message_type type, uint64_t to,
                              bool after_persist) {
    raft__out *o;
    if (n->n_out == n->cap_out) {
        size_t cap = n->cap_out ? 2 * n->cap_out : 16;
        raft__out *p = base_realloc(n->out, cap * sizeof(*p));
        if (p == NULL) {
            n->nomem = true;
            return NULL;
        }
        n->out = p;
        n->cap_out = cap;
    }
    o = &n->out[n->n_out++];
    memset(o, 0, sizeof(*o));
    o->after_persist = after_persist;
    o->m.type = type;
    o->m.from = n->cfg.id;
    o->m.to = to;
    o->m.term = n->term;
    return &o->m;
}

static void read_out_push(raft_node *n, uint64_t read_id, uint64_t index,
                          raft_read_status status, bool by_lease) {
    raft_read_state *r;
    if (n->n_read_out == n->cap_read_out) {
        size_t cap = n->cap_read_out ? 2 * n->cap_read_out : 16;
        raft_read_state *p = base_realloc(n->read_out, cap * sizeof(*p));
        if (p == NULL) {
            n->nomem = true;
            return;
        }
        n->read_out = p;
        n->cap_read_out = cap;
    }
    r = &n->read_out[n->n_read_out++];
    r->read_id = read_id;
    r->index = index;
    r->status = status;
    r->by_lease = by_lease;
}

/* ---- progress -------------------------------------------------------------- */

static void inflight_reset(raft__progress *pr) {
    pr->inflight_start = 0;
    pr->inflight_count = 0;
}

static bool inflight_full(const raft_node *n, const raft__progress *pr) {
    return pr->inflight_count >= n->cfg.max_inflight_msgs;
}

static void inflight_add(raft__progress *pr, uint64_t last) {
    assert(pr->inflight_count < RAFT__MAX_INFLIGHT);
    pr->inflight[(pr->inflight_start + pr->inflight_count) % RAFT__MAX_INFLIGHT] = last;
    pr->inflight_count++;
}

static void inflight_free_to(raft__progress *pr, uint64_t index) {
    while (pr->inflight_count > 0 && pr->inflight[pr->inflight_start] <= index) {
        pr->inflight_start = (pr->inflight_start + 1) % RAFT__MAX_INFLIGHT;
        pr->inflight_count--;
    }
}

static void progress_probe(raft__progress *pr) {
    pr->state = RAFT__PROBE;
    pr->paused = false;
    pr->snap_wait = -1;
    inflight_reset(pr);
}

/* ---- role changes ---------------------------------------------------------- */

static void abort_reads(raft_node *n) {
    while (n->reads_count > 0) {
        raft__pending_read *r = &n->reads[n->reads_start];
        read_out_push(n, r->read_id, 0, RAFT_READ_ABORTED, false);
        n->reads_start = (n->reads_start + 1) % RAFT__MAX_PENDING_READS;
        n->reads_count--;
    }
}

static void leave_leadership(raft_node *n) {
    if (n->role == RAFT_LEADER)
        abort_reads(n);
    n->transfer_to = RAFT_NONE;
    n->transfer_elapsed = 0;
}

static void become_follower(raft_node *n, uint64_t term, uint64_t leader) {
    assert(term >= n->term);
    leave_leadership(n);
    if (term != n->term) {
        n->term = term;
        n->vote = RAFT_NONE;
        n->timeout_now_sent = false;
    }
    n->role = RAFT_FOLLOWER;
    n->leader = leader;
    n->election_elapsed = 0;
    reset_randomized_timeout(n);
}

static size_t count_votes(const raft_node *n, bool granted) {
    size_t i, c = 0;
    for (i = 0; i < n->n_prs; i++)
        if (n->prs[i].voter && n->prs[i].vote_responded && n->prs[i].vote_granted == granted)
            c++;
    return c;
}

static void broadcast_append(raft_node *n);
static void become_leader(raft_node *n);

static void reset_votes(raft_node *n) {
    size_t i;
    for (i = 0; i < n->n_prs; i++) {
        n->prs[i].vote_responded = false;
        n->prs[i].vote_granted = false;
    }
    progress_of(n, n->cfg.id)->vote_responded = true;
    progress_of(n, n->cfg.id)->vote_granted = true;
}

static void campaign(raft_node *n, bool pre_vote, bool force);

/* Tally after a (pre-)vote response or the self vote. */
static void tally(raft_node *n) {
    if (count_votes(n, true) >= n->quorum) {
        if (n->role == RAFT_PRE_CANDIDATE)
            campaign(n, false, false);
        else if (n->role == RAFT_CANDIDATE)
            become_leader(n);
    } else if (count_votes(n, false) >= n->quorum) {
        become_follower(n, n->term, RAFT_NONE);
    }
}

static void campaign(raft_node *n, bool pre_vote, bool force) {
    size_t i;
    uint64_t vote_term;
    if (!self_voter(n))
        return; /* learners and non-members never campaign */
    leave_leadership(n);
    n->leader = RAFT_NONE;
    n->election_elapsed = 0;
    reset_randomized_timeout(n);
    if (pre_vote) {
        n->role = RAFT_PRE_CANDIDATE;
        vote_term = n->term + 1; /* our own term stays */
    } else {
        n->role = RAFT_CANDIDATE;
        n->term++;
        n->vote = n->cfg.id;
        n->timeout_now_sent = false;
        vote_term = n->term;
    }
    reset_votes(n);
    for (i = 0; i < n->n_prs; i++) {
        raft_message *m;
        if (n->prs[i].id == n->cfg.id || !n->prs[i].voter)
            continue;
        m = out_push(n, pre_vote ? RAFT_MSG_PRE_VOTE : RAFT_MSG_VOTE, n->prs[i].id, false);
        if (m == NULL)
            continue;
        m->term = vote_term;
        m->index = last_index(n);
        m->log_term = last_term(n);
        m->force = force;
    }
    tally(n);
}

/* ---- leader: replication --------------------------------------------------- */

/* Send one APPEND to pr if flow control allows. allow_empty: send even with
** no entries (probe, or to carry the commit index). Returns true if sent. */
static size_t chunk_bytes(const raft_node *n) {
    return n->cfg.snapshot_chunk_bytes ? n->cfg.snapshot_chunk_bytes : RAFT__DEFAULT_CHUNK_BYTES;
}

/* A stream to send: one of an index the log continues from. */
static bool stream_usable(const raft_node *n) {
    return n->snap_stream != NULL && n->stream_index >= n->snap_index && n->stream_index > 0;
}

/* ... for pr: with lazy snapshots (made on demand, so a newer one can be
** had) only one whose configuration names pr: a member added since an older
** stream was made must find itself in what it installs. */
static bool stream_usable_for(const raft_node *n, const raft__progress *pr) {
    return stream_usable(n) &&
           (!n->cfg.lazy_snapshots ||
            (pr->snap_bad_seq != n->stream_seq &&
             (raft_membership_is_voter(&n->stream_conf, pr->id) ||
              raft_membership_is_learner(&n->stream_conf, pr->id))));
}

/* Stream the latest snapshot to pr: one chunk in flight at a time; a
** snapshot replaced since the stream started restarts it. Lazy snapshots
** without a stream: pr waits in the snapshot state (snap_index 0) and the
** caller is asked for one. */
static bool send_snapshot_chunk(raft_node *n, raft__progress *pr) {
    size_t len;
    raft_message *m;
    if (!stream_usable_for(n, pr)) {
        assert(n->cfg.lazy_snapshots && n->snap_index > 0);
        if (pr->state != RAFT__SNAPSHOT) {
            pr->state = RAFT__SNAPSHOT;
            pr->paused = false;
            inflight_reset(pr);
        }
        pr->snap_index = 0;
        pr->snap_offset = 0;
        pr->snap_wait = -1;
        n->want_snapshot = true;
        return false;
    }
    if (pr->state != RAFT__SNAPSHOT || pr->snap_index != n->stream_index ||
        pr->snap_seq != n->stream_seq) {
        pr->state = RAFT__SNAPSHOT;
        pr->snap_index = n->stream_index;
        pr->snap_seq = n->stream_seq;
        pr->snap_starts = 0;
        pr->snap_offset = 0;
        pr->snap_wait = -1;
        pr->paused = false;
        inflight_reset(pr);
    }
    if (pr->snap_wait >= 0)
        return false;
    if (pr->snap_offset > n->snap_stream_len)
        pr->snap_offset = 0;
    if (pr->snap_offset == 0 && ++pr->snap_starts > RAFT__SNAPSHOT_STARTS_MAX &&
        n->cfg.lazy_snapshots) {
        /* started over and over: the follower will not take this one */
        pr->snap_bad_seq = n->stream_seq;
        return send_snapshot_chunk(n, pr); /* waits for a new one */
    }
    len = BASE_MIN(chunk_bytes(n), n->snap_stream_len - pr->snap_offset);
    m = out_push(n, RAFT_MSG_SNAPSHOT, pr->id, false);
    if (m == NULL)
        return false;
    m->index = n->stream_index;
    m->log_term = n->stream_term;
    m->seq = pr->snap_offset;
    m->len = len;
    m->force = pr->snap_offset + len == n->snap_stream_len;
    n->out[n->n_out - 1].snap_offset = pr->snap_offset;
    n->out[n->n_out - 1].stream_seq = n->stream_seq;
    pr->snap_wait = 0;
    return true;
}

static bool send_append(raft_node *n, raft__progress *pr, bool allow_empty) {
    uint64_t prev, idx, last = last_index(n);
    size_t count = 0, bytes = 0;
    raft_message *m;
    if (pr->state == RAFT__SNAPSHOT || pr->next < n->first_index)
        return send_snapshot_chunk(n, pr);
    if (pr->state == RAFT__PROBE && pr->paused)
        return false;
    if (pr->state == RAFT__REPLICATE && inflight_full(n, pr))
        return false;
    if (pr->next > last + 1)
        pr->next = last + 1;
    prev = pr->next - 1;
    for (idx = pr->next; idx <= last && count < n->cfg.max_msg_entries; idx++) {
        size_t len = n->log[idx - n->first_index].len;
        if (count > 0 && bytes + len > n->cfg.max_msg_bytes)
            break;
        bytes += len;
        count++;
    }
    if (count == 0 && !allow_empty && pr->state == RAFT__REPLICATE)
        return false;
    m = out_push(n, RAFT_MSG_APPEND, pr->id, false);
    if (m == NULL)
        return false;
    m->index = prev;
    m->log_term = term_at(n, prev);
    m->commit = n->commit;
    m->n_entries = count;
    n->out[n->n_out - 1].first_entry = pr->next;
    if (pr->state == RAFT__REPLICATE) {
        if (count > 0) {
            pr->next += count;
            inflight_add(pr, pr->next - 1);
        }
    } else {
        pr->paused = true;
    }
    return true;
}

/* Send as much as the window allows (bounded by the window size). */
static void send_all(raft_node *n, raft__progress *pr, bool allow_empty) {
    int i;
    if (!send_append(n, pr, allow_empty))
        return;
    for (i = 0; i < RAFT__MAX_INFLIGHT && pr->state == RAFT__REPLICATE; i++)
        if (!send_append(n, pr, false))
            break;
}

static void broadcast_append(raft_node *n) {
    size_t i;
    for (i = 0; i < n->n_prs; i++)
        if (n->prs[i].id != n->cfg.id)
            send_all(n, &n->prs[i], true);
}

static void record_heartbeat_round(raft_node *n) {
    n->heartbeat_seq++;
    n->heartbeat_ring[n->heartbeat_seq % RAFT__HEARTBEAT_RING].seq = n->heartbeat_seq;
    n->heartbeat_ring[n->heartbeat_seq % RAFT__HEARTBEAT_RING].tick = n->tick;
}

static void broadcast_heartbeat(raft_node *n) {
    size_t i;
    record_heartbeat_round(n);
    for (i = 0; i < n->n_prs; i++) {
        raft__progress *pr = &n->prs[i];
        raft_message *m;
        if (pr->id == n->cfg.id)
            continue;
        m = out_push(n, RAFT_MSG_HEARTBEAT, pr->id, false);
        if (m == NULL)
            continue;
        m->commit = BASE_MIN(pr->match, n->commit);
        m->seq = n->heartbeat_seq;
        if (pr->hb_mark_seq == 0) {
            pr->hb_mark_seq = n->heartbeat_seq;
            pr->hb_mark_index = pr->next - 1;
            pr->hb_mark_match = pr->match;
        }
    }
}

static int cmp_u64_desc(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int cmp_i64_desc(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static bool committed_in_term(const raft_node *n) {
    return term_at(n, n->commit) == n->term;
}

static void release_reads(raft_node *n);

static void start_waiting_reads(raft_node *n) {
    int i;
    bool any = false;
    for (i = 0; i < n->reads_count; i++) {
        raft__pending_read *r = &n->reads[(n->reads_start + i) % RAFT__MAX_PENDING_READS];
        if (r->index == 0) {
            r->index = n->commit;
            r->seq = n->heartbeat_seq + 1;
            any = true;
        }
    }
    if (any) {
        broadcast_heartbeat(n);
        release_reads(n);
    }
}

/* Advance commit to the quorum match if that entry is of this term
** (Figure 8: never commit an older term's entry by counting replicas). */
static bool maybe_commit(raft_node *n) {
    uint64_t matches[RAFT__MAX_PRS], q;
    size_t i, k = 0;
    for (i = 0; i < n->n_prs; i++)
        if (n->prs[i].voter)
            matches[k++] = n->prs[i].id == n->cfg.id ? n->stable_index : n->prs[i].match;
    if (k == 0 || k < n->quorum)
        return false;
    qsort(matches, k, sizeof(uint64_t), cmp_u64_desc);
    q = matches[n->quorum - 1];
    if (q > n->commit && term_at(n, q) == n->term) {
        bool first_in_term = !committed_in_term(n);
        n->commit = q;
        if (first_in_term)
            start_waiting_reads(n);
        return true;
    }
    return false;
}

static void send_timeout_now(raft_node *n, raft__progress *pr) {
    raft_message *m = out_push(n, RAFT_MSG_TIMEOUT_NOW, pr->id, false);
    if (m != NULL)
        n->timeout_now_sent = true; /* the lease is unsafe from here on */
}

static void become_leader(raft_node *n) {
    size_t i;
    raft_entry e;
    assert(n->role == RAFT_CANDIDATE);
    n->role = RAFT_LEADER;
    n->leader = n->cfg.id;
    n->heartbeat_elapsed = 0;
    n->check_quorum_elapsed = 0;
    n->transfer_to = RAFT_NONE;
    n->timeout_now_sent = false;
    for (i = 0; i < n->n_prs; i++) {
        raft__progress *pr = &n->prs[i];
        pr->match = 0;
        pr->next = last_index(n) + 1;
        progress_probe(pr);
        pr->recent_active = pr->id == n->cfg.id;
        pr->ack_sent_tick = -1;
        pr->acked_seq = 0;
        pr->hb_mark_seq = 0;
    }
    memset(&e, 0, sizeof(e));
    e.term = n->term;
    e.index = last_index(n) + 1;
    e.type = RAFT_ENTRY_EMPTY;
    if (log_append_copy(n, &e, 1) != 0)
        n->nomem = true; /* no empty entry: the first proposal commits the term */
    broadcast_append(n);
    maybe_commit(n);
}

/* ---- lease and reads --------------------------------------------------------- */

static bool lease_valid(const raft_node *n) {
    int64_t acks[RAFT__MAX_PRS];
    size_t i, k = 0;
    if (n->role != RAFT_LEADER || n->timeout_now_sent || n->transfer_to != RAFT_NONE ||
        !committed_in_term(n))
        return false;
    for (i = 0; i < n->n_prs; i++)
        if (n->prs[i].voter)
            acks[k++] = n->prs[i].id == n->cfg.id ? n->tick : n->prs[i].ack_sent_tick;
    if (k == 0 || k < n->quorum)
        return false;
    qsort(acks, k, sizeof(int64_t), cmp_i64_desc);
    if (acks[n->quorum - 1] < 0)
        return false;
    return n->tick < acks[n->quorum - 1] + n->cfg.election_ticks - n->cfg.lease_drift_ticks;
}

/* Release confirmed ReadIndex requests, oldest first. */
static void release_reads(raft_node *n) {
    while (n->reads_count > 0) {
        raft__pending_read *r = &n->reads[n->reads_start];
        size_t i, acks = 0;
        if (r->index == 0)
            break;
        for (i = 0; i < n->n_prs; i++)
            if (n->prs[i].voter && (n->prs[i].id == n->cfg.id || n->prs[i].acked_seq >= r->seq))
                acks++;
        if (acks < n->quorum)
            break;
        read_out_push(n, r->read_id, r->index, RAFT_READ_OK, false);
        n->reads_start = (n->reads_start + 1) % RAFT__MAX_PENDING_READS;
        n->reads_count--;
    }
}

static int step_read(raft_node *n, const raft_event *ev, raft_update *up) {
    raft__pending_read *r;
    if (n->role != RAFT_LEADER) {
        up->leader_hint = n->leader;
        return RAFT_ERR_NOT_LEADER;
    }
    if (ev->allow_lease && lease_valid(n)) {
        read_out_push(n, ev->read_id, n->commit, RAFT_READ_OK, true);
        return RAFT_OK;
    }
    if (n->reads_count >= RAFT__MAX_PENDING_READS)
        return RAFT_ERR_BUSY;
    r = &n->reads[(n->reads_start + n->reads_count) % RAFT__MAX_PENDING_READS];
    n->reads_count++;
    r->read_id = ev->read_id;
    r->index = 0;
    r->seq = 0;
    if (committed_in_term(n))
        start_waiting_reads(n);
    return RAFT_OK;
}

/* ---- message handling -------------------------------------------------------- */

/* Stickiness: a node that heard from a leader within the (minimum) election
** timeout, or restarted less than that ago, ignores (pre-)votes of any term,
** whatever its role, and refuses RAFT_EVENT_CAMPAIGN: it may be part of
** that leader's lease quorum (docs/raft.md, "Reads"). A leader always does
** (check-quorum steps it down when it loses the majority). A
** node still at term 0, or at the group's initial_term, has never
** acknowledged any leader (its term would be durable first, and no leader
** ever had a term that low), so it cannot be part of anyone's lease: it
** votes at once, which lets a fresh group elect its first leader without
** waiting. */
static bool in_lease(const raft_node *n) {
    if (n->role == RAFT_LEADER)
        return true;
    return n->term > n->cfg.initial_term && n->leader_contact_elapsed < n->cfg.election_ticks;
}

static int validate_message(const raft_node *n, const raft_message *m) {
    size_t i;
    /* Peers outside the configuration are heard too: a new member learns
    ** the configuration from the leader; responses from non-members are
    ** ignored where they are counted. */
    if (m->to != n->cfg.id || m->from == n->cfg.id || m->from == RAFT_NONE)
        return RAFT_ERR_INVALID;
    if (m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_SNAPSHOT_RESP || m->term == 0)
        return RAFT_ERR_INVALID;
    if (m->len > 0 && (m->type != RAFT_MSG_SNAPSHOT || m->data == NULL))
        return RAFT_ERR_INVALID;
    if (m->type == RAFT_MSG_SNAPSHOT &&
        (m->index == 0 || m->log_term == 0 || m->log_term > m->term ||
         m->seq > RAFT__MAX_SNAPSHOT_BYTES || m->len > RAFT__MAX_SNAPSHOT_BYTES - m->seq))
        return RAFT_ERR_INVALID;
    if (m->n_entries > 0 && (m->type != RAFT_MSG_APPEND || m->entries == NULL))
        return RAFT_ERR_INVALID;
    for (i = 0; i < m->n_entries; i++) {
        const raft_entry *e = &m->entries[i];
        uint64_t prev_term = i == 0 ? m->log_term : m->entries[i - 1].term;
        if (e->index != m->index + 1 + i || e->term < prev_term || e->term > m->term)
            return RAFT_ERR_INVALID;
        if (e->type > RAFT_ENTRY_CONFIG || (e->len > 0 && e->data == NULL))
            return RAFT_ERR_INVALID;
        if (e->type == RAFT_ENTRY_CONFIG) {
            raft_membership c;
            if (raft_membership_decode(e->data, e->len, &c) < 0)
                return RAFT_ERR_INVALID;
        }
    }
    if (m->type == RAFT_MSG_APPEND && m->log_term > m->term)
        return RAFT_ERR_INVALID;
    return RAFT_OK;
}

static void handle_vote_request(raft_node *n, const raft_message *m) {
    bool pre = m->type == RAFT_MSG_PRE_VOTE;
    bool can_vote = n->vote == m->from || (n->vote == RAFT_NONE && n->leader == RAFT_NONE) ||
                    (pre && m->term > n->term);
    bool up_to_date = m->log_term > last_term(n) ||
                      (m->log_term == last_term(n) && m->index >= last_index(n));
    raft_message *r;
    if (can_vote && up_to_date) {
        /* A granted vote must be durable before the answer leaves. */
        r = out_push(n, pre ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP, m->from, !pre);
        if (r == NULL)
            return;
        r->term = m->term;
        if (!pre) {
            n->vote = m->from;
            n->election_elapsed = 0;
        }
    } else {
        r = out_push(n, pre ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP, m->from, false);
        if (r != NULL)
            r->reject = true;
    }
}

static int handle_append(raft_node *n, const raft_message *m) {
    raft_message *r;
    uint64_t last_new = m->index + m->n_entries;
    size_t i;
    if (m->index < n->commit) {
        /* Everything up to commit matches already (log matching). */
        r = out_push(n, RAFT_MSG_APPEND_RESP, m->from, true);
        if (r != NULL)
            r->index = n->commit;
        return RAFT_OK;
    }
    if (!has_entry(n, m->index, m->log_term)) {
        uint64_t hint = find_conflict_by_term(n, BASE_MIN(m->index, last_index(n)), m->log_term);
        r = out_push(n, RAFT_MSG_APPEND_RESP, m->from, false);
        if (r == NULL)
            return RAFT_OK;
        r->reject = true;
        r->index = m->index;
        r->hint_index = hint;
        r->log_term = term_at(n, hint);
        return RAFT_OK;
    }
    /* Skip entries we already have; truncate at the first conflict. */
    for (i = 0; i < m->n_entries; i++) {
        const raft_entry *e = &m->entries[i];
        if (e->index > last_index(n))
            break;
        if (term_at(n, e->index) != e->term) {
            if (e->index <= n->commit) {
                BASE_ERROR("raft", "node %llu: peer %llu overwrites committed index %llu",
                           (unsigned long long)n->cfg.id, (unsigned long long)m->from,
                           (unsigned long long)e->index);
                return RAFT_ERR_INVALID;
            }
            /* Reserve first so that a failure leaves the log untouched. */
            if (log_reserve(n, m->n_entries - i) != 0)
                return RAFT_ERR_NOMEM;
            log_truncate(n, e->index);
            break;
        }
    }
    if (i < m->n_entries) {
        int rc = log_append_copy(n, &m->entries[i], m->n_entries - i);
        if (rc != 0)
            return rc; /* the truncated tail stays truncated: harmless */
    }
    if (m->commit > n->commit)
        n->commit = BASE_MIN(m->commit, last_new);
    r = out_push(n, RAFT_MSG_APPEND_RESP, m->from, true);
    if (r != NULL)
        r->index = last_new;
    return RAFT_OK;
}

static void handle_append_response(raft_node *n, raft__progress *pr, const raft_message *m) {
    pr->recent_active = true;
    if (m->reject) {
        uint64_t probe;
        if (pr->state == RAFT__SNAPSHOT)
            return; /* the stream goes on; a lost chunk is resent on timeout */
        if (pr->state == RAFT__REPLICATE ? m->index <= pr->match : m->index != pr->next - 1)
            return; /* stale */
        probe = m->hint_index;
        if (m->log_term > 0)
            probe = find_conflict_by_term(n, m->hint_index, m->log_term);
        pr->next = BASE_MAX(BASE_MIN(m->index, probe + 1), pr->match + 1);
        progress_probe(pr);
        send_append(n, pr, true);
        return;
    }
    if (m->index > last_index(n))
        return; /* acks an index we no longer have: from an older term's log */
    pr->paused = false;
    if (m->index > pr->match) {
        pr->match = m->index;
        if (pr->next < pr->match + 1)
            pr->next = pr->match + 1;
        if (pr->state == RAFT__PROBE ||
            (pr->state == RAFT__SNAPSHOT && pr->match >= pr->snap_index)) {
            pr->state = RAFT__REPLICATE;
            pr->next = pr->match + 1;
            pr->snap_wait = -1;
            inflight_reset(pr);
        } else if (pr->state == RAFT__SNAPSHOT) {
            /* an old ack: the snapshot is still needed */
        } else {
            inflight_free_to(pr, m->index);
        }
        if (maybe_commit(n))
            broadcast_append(n);
        else
            send_all(n, pr, false);
        if (n->transfer_to == pr->id && pr->match == last_index(n) && !n->timeout_now_sent)
            send_timeout_now(n, pr);
    } else if (pr->state == RAFT__REPLICATE) {
        inflight_free_to(pr, m->index);
    }
}

static void handle_heartbeat_response(raft_node *n, raft__progress *pr, const raft_message *m) {
    int slot = (int)(m->seq % RAFT__HEARTBEAT_RING);
    pr->recent_active = true;
    if (m->seq > 0 && n->heartbeat_ring[slot].seq == m->seq &&
        n->heartbeat_ring[slot].tick > pr->ack_sent_tick)
        pr->ack_sent_tick = n->heartbeat_ring[slot].tick;
    if (m->seq > pr->acked_seq && m->seq <= n->heartbeat_seq)
        pr->acked_seq = m->seq;
    if (pr->hb_mark_seq != 0 && m->seq >= pr->hb_mark_seq) {
        /* appends sent before that round were not acked before its answer */
        if (pr->state == RAFT__REPLICATE && pr->match < pr->hb_mark_index &&
            pr->match == pr->hb_mark_match) {
            progress_probe(pr);
            pr->next = pr->match + 1;
        }
        pr->hb_mark_seq = 0;
    }
    pr->paused = false;
    if (pr->match < last_index(n))
        send_append(n, pr, true);
    release_reads(n);
}

/* Install a complete snapshot stream (owned by the node from here on). */
static void install_snapshot(raft_node *n, uint64_t index, uint64_t term,
                             const raft_membership *conf, uint8_t *stream, size_t len,
                             size_t hdr) {
    bool keep = index < last_index(n) && has_entry(n, index, term);
    assert(index > n->commit && index > n->snap_index);
    if (keep) {
        log_drop_prefix(n, index);
    } else {
        size_t k;
        for (k = 0; k < n->log_len; k++)
            base_free(n->log[k].data);
        n->log_len = 0;
        n->first_index = index + 1;
        n->unpersisted_from = 0;
    }
    n->snap_index = index;
    n->snap_term = term;
    n->snap_conf = *conf;
    base_free(n->snap_stream);
    n->snap_stream = stream;
    n->snap_stream_len = len;
    n->snap_conf_len = hdr;
    n->stream_index = index;
    n->stream_term = term;
    n->stream_conf = *conf;
    n->stream_seq++;
    recompute_conf(n);
    n->commit = index;
    n->applied = index;
    if (n->stable_index < index || !keep)
        n->stable_index = index; /* durable with this update, before its ack */
    n->snap_out = true;
    memset(&n->snap_out_meta, 0, sizeof(n->snap_out_meta));
    n->snap_out_meta.index = index;
    n->snap_out_meta.term = term;
    n->snap_out_meta.membership = *conf;
    n->snap_out_meta.data = stream + hdr;
    n->snap_out_meta.len = len - hdr;
    n->snap_out_meta.keep_log = keep;
}

static void recv_reset(raft_node *n) {
    n->recv_index = 0;
    n->recv_term = 0;
    n->recv_len = 0;
}

static int handle_snapshot(raft_node *n, const raft_message *m) {
    raft_message *r;
    raft_membership conf;
    int hdr;
    if (m->index <= n->commit) {
        /* We hold all of it already (log matching up to commit). */
        recv_reset(n);
        r = out_push(n, RAFT_MSG_APPEND_RESP, m->from, true);
        if (r != NULL)
            r->index = n->commit;
        return RAFT_OK;
    }
    if (m->seq == 0) {
        recv_reset(n);
        n->recv_index = m->index;
        n->recv_term = m->log_term;
    } else if (m->index != n->recv_index || m->log_term != n->recv_term || m->seq != n->recv_len) {
        r = out_push(n, RAFT_MSG_SNAPSHOT_RESP, m->from, false);
        if (r != NULL) {
            r->index = m->index;
            r->log_term = m->log_term;
            r->hint_index = (m->index == n->recv_index && m->log_term == n->recv_term) ? n->recv_len : 0;
        }
        return RAFT_OK;
    }
    if (n->recv_len + m->len > n->recv_cap) {
        size_t cap = n->recv_cap ? n->recv_cap : 4096;
        uint8_t *p;
        while (cap < n->recv_len + m->len)
            cap *= 2;
        p = base_realloc(n->recv_buf, cap);
        if (p == NULL)
            return RAFT_ERR_NOMEM; /* like a lost chunk: resent later */
        n->recv_buf = p;
        n->recv_cap = cap;
    }
    if (m->len > 0)
        memcpy(n->recv_buf + n->recv_len, m->data, m->len);
    n->recv_len += m->len;
    if (!m->force) {
        r = out_push(n, RAFT_MSG_SNAPSHOT_RESP, m->from, false);
        if (r != NULL) {
            r->index = m->index;
            r->log_term = m->log_term;
            r->hint_index = n->recv_len;
        }
        return RAFT_OK;
    }
    hdr = raft_membership_decode(n->recv_buf, n->recv_len, &conf);
    if (hdr < 0 || (n->cfg.snapshot_check != NULL &&
                    !n->cfg.snapshot_check(n->cfg.snapshot_check_ctx, m->index,
                                           n->recv_buf + hdr, n->recv_len - (size_t)hdr))) {
        recv_reset(n); /* the leader starts over after its resend timeout */
        return RAFT_ERR_INVALID;
    }
    {
        /* the buffer becomes the node's snapshot stream */
        uint8_t *stream = n->recv_buf;
        size_t len = n->recv_len;
        n->recv_buf = NULL;
        n->recv_cap = 0;
        recv_reset(n);
        install_snapshot(n, m->index, m->log_term, &conf, stream, len, (size_t)hdr);
    }
    r = out_push(n, RAFT_MSG_APPEND_RESP, m->from, true);
    if (r != NULL)
        r->index = m->index;
    return RAFT_OK;
}

static void handle_snapshot_response(raft_node *n, raft__progress *pr, const raft_message *m) {
    pr->recent_active = true;
    if (pr->state != RAFT__SNAPSHOT || !stream_usable(n) || m->index != pr->snap_index ||
        pr->snap_index != n->stream_index || pr->snap_seq != n->stream_seq ||
        m->hint_index > n->snap_stream_len)
        return;
    pr->snap_offset = (size_t)m->hint_index;
    pr->snap_wait = -1;
    send_snapshot_chunk(n, pr);
}

static int step_message(raft_node *n, const raft_message *m) {
    raft__progress *pr;
    int rc = validate_message(n, m);
    if (rc != 0)
        return rc;
    if ((m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE) && !m->force &&
        m->term >= n->term && in_lease(n) &&
        !(m->type == RAFT_MSG_VOTE && m->term == n->term && n->vote == m->from))
        return RAFT_OK; /* leader stickiness: ignore, keep our term */
    if (m->term > n->term) {
        if (m->type == RAFT_MSG_PRE_VOTE) {
            /* no term change for a pre-vote */
        } else if (m->type == RAFT_MSG_PRE_VOTE_RESP && !m->reject) {
            /* granted pre-votes carry our own future term */
        } else {
            bool from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
                               m->type == RAFT_MSG_TIMEOUT_NOW || m->type == RAFT_MSG_SNAPSHOT;
            become_follower(n, m->term, from_leader ? m->from : RAFT_NONE);
        }
    } else if (m->term < n->term) {
        raft_message *r;
        if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
            m->type == RAFT_MSG_SNAPSHOT) {
            /* A stale leader: tell it our term so it steps down. */
            r = out_push(n, RAFT_MSG_APPEND_RESP, m->from, false);
            (void)r;
        } else if (m->type == RAFT_MSG_PRE_VOTE) {
            r = out_push(n, RAFT_MSG_PRE_VOTE_RESP, m->from, false);
            if (r != NULL)
                r->reject = true;
        }
        return RAFT_OK;
    }

    switch (m->type) {
    case RAFT_MSG_PRE_VOTE:
    case RAFT_MSG_VOTE:
        handle_vote_request(n, m);
        return RAFT_OK;
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_TIMEOUT_NOW:
    case RAFT_MSG_SNAPSHOT:
        if (n->role == RAFT_LEADER) {
            BASE_ERROR("raft", "node %llu: two leaders in term %llu (%llu)",
                       (unsigned long long)n->cfg.id, (unsigned long long)n->term,
                       (unsigned long long)m->from);
            return RAFT_ERR_INVALID;
        }
        if (n->role != RAFT_FOLLOWER)
            become_follower(n, n->term, m->from);
        n->leader = m->from;
        n->election_elapsed = 0;
        n->leader_contact_elapsed = 0;
        if (m->type == RAFT_MSG_APPEND)
            return handle_append(n, m);
        if (m->type == RAFT_MSG_SNAPSHOT)
            return handle_snapshot(n, m);
        if (m->type == RAFT_MSG_HEARTBEAT) {
            raft_message *r;
            if (m->commit > n->commit)
                n->commit = BASE_MIN(m->commit, last_index(n));
            r = out_push(n, RAFT_MSG_HEARTBEAT_RESP, m->from, false);
            if (r != NULL)
                r->seq = m->seq;
            return RAFT_OK;
        }
        campaign(n, false, true); /* TIMEOUT_NOW: skip pre-vote, ignore stickiness
                                   * (a no-op unless we are a voter) */
        return RAFT_OK;
    case RAFT_MSG_APPEND_RESP:
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_SNAPSHOT_RESP:
        if (n->role != RAFT_LEADER)
            return RAFT_OK;
        pr = progress_of(n, m->from);
        if (pr == NULL)
            return RAFT_OK; /* not a member (any more) */
        if (m->type == RAFT_MSG_APPEND_RESP)
            handle_append_response(n, pr, m);
        else if (m->type == RAFT_MSG_HEARTBEAT_RESP)
            handle_heartbeat_response(n, pr, m);
        else
            handle_snapshot_response(n, pr, m);
        return RAFT_OK;
    case RAFT_MSG_PRE_VOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        pr = progress_of(n, m->from);
        if (pr == NULL || !pr->voter)
            return RAFT_OK; /* only voters count */
        if ((m->type == RAFT_MSG_PRE_VOTE_RESP) != (n->role == RAFT_PRE_CANDIDATE))
            return RAFT_OK;
        if (m->type == RAFT_MSG_VOTE_RESP && n->role != RAFT_CANDIDATE)
            return RAFT_OK;
        if (m->type == RAFT_MSG_PRE_VOTE_RESP && m->term != n->term + (m->reject ? 0 : 1))
            return RAFT_OK;
        if (!pr->vote_responded) {
            pr->vote_responded = true;
            pr->vote_granted = !m->reject;
        }
        tally(n);
        return RAFT_OK;
    }
    return RAFT_ERR_INVALID;
}

/* ---- tick, propose, persisted, transfer -------------------------------------- */

static void step_tick(raft_node *n) {
    n->tick++;
    if (n->leader_contact_elapsed < RAFT__MAX_ELECTION_TICKS)
        n->leader_contact_elapsed++;
    if (n->role != RAFT_LEADER) {
        if (n->election_elapsed < RAFT__MAX_ELECTION_TICKS * 2)
            n->election_elapsed++;
        if (n->election_elapsed >= n->randomized_timeout && self_voter(n))
            campaign(n, true, false);
        return;
    }
    {
        /* resend a snapshot chunk that got no answer */
        int resend = n->cfg.snapshot_resend_ticks ? n->cfg.snapshot_resend_ticks : n->cfg.election_ticks;
        size_t i;
        for (i = 0; i < n->n_prs; i++) {
            raft__progress *pr = &n->prs[i];
            if (pr->id != n->cfg.id && pr->state == RAFT__SNAPSHOT && pr->snap_wait >= 0 &&
                ++pr->snap_wait >= resend) {
                pr->snap_wait = -1;
                send_snapshot_chunk(n, pr);
            }
        }
    }
    n->heartbeat_elapsed++;
    n->check_quorum_elapsed++;
    if (n->transfer_to != RAFT_NONE && ++n->transfer_elapsed >= n->cfg.election_ticks) {
        n->transfer_to = RAFT_NONE; /* abort; the lease stays off if TIMEOUT_NOW left */
        n->transfer_elapsed = 0;
    }
    if (n->check_quorum_elapsed >= n->cfg.election_ticks) {
        size_t i, active = 0;
        n->check_quorum_elapsed = 0;
        for (i = 0; i < n->n_prs; i++) {
            if (n->prs[i].voter && (n->prs[i].id == n->cfg.id || n->prs[i].recent_active))
                active++;
            n->prs[i].recent_active = n->prs[i].id == n->cfg.id;
        }
        if (active < n->quorum) {
            become_follower(n, n->term, RAFT_NONE);
            return;
        }
    }
    if (n->heartbeat_elapsed >= n->cfg.heartbeat_ticks) {
        n->heartbeat_elapsed = 0;
        broadcast_heartbeat(n);
    }
}

static int step_propose(raft_node *n, const raft_event *ev, raft_update *up) {
    raft_entry *tmp;
    size_t i;
    int rc;
    if (n->role != RAFT_LEADER) {
        up->leader_hint = n->leader;
        return RAFT_ERR_NOT_LEADER;
    }
    if (n->transfer_to != RAFT_NONE) {
        up->leader_hint = n->transfer_to;
        return RAFT_ERR_TRANSFERRING;
    }
    if (ev->n_proposals == 0 || ev->proposals == NULL ||
        ev->n_proposals > RAFT__MAX_PROPOSALS_PER_EVENT)
        return RAFT_ERR_INVALID;
    if (last_index(n) - n->commit + ev->n_proposals > RAFT__MAX_UNCOMMITTED_ENTRIES)
        return RAFT_ERR_BUSY;
    for (i = 0; i < ev->n_proposals; i++) {
        if (ev->proposals[i].len > n->cfg.max_entry_bytes)
            return RAFT_ERR_TOO_LARGE;
        if (ev->proposals[i].len > 0 && ev->proposals[i].data == NULL)
            return RAFT_ERR_INVALID;
    }
    tmp = base_calloc(ev->n_proposals, sizeof(raft_entry));
    if (tmp == NULL)
        return RAFT_ERR_NOMEM;
    for (i = 0; i < ev->n_proposals; i++) {
        tmp[i].term = n->term;
        tmp[i].index = last_index(n) + 1 + i;
        tmp[i].type = RAFT_ENTRY_NORMAL;
        tmp[i].data = (uint8_t *)ev->proposals[i].data; /* copied by log_append_copy */
        tmp[i].len = ev->proposals[i].len;
    }
    rc = log_append_copy(n, tmp, ev->n_proposals);
    if (rc == 0) {
        up->proposed_index = tmp[0].index;
        up->proposed_term = n->term;
        for (i = 0; i < n->n_prs; i++)
            if (n->prs[i].id != n->cfg.id)
                send_all(n, &n->prs[i], false);
    }
    base_free(tmp);
    return rc;
}

static int step_conf_change(raft_node *n, const raft_event *ev, raft_update *up) {
    raft_membership c = n->conf;
    uint8_t buf[RAFT_MEMBERSHIP_MAX_BYTES + RAFT_CONF_CONTEXT_MAX];
    raft_entry e;
    uint64_t id = ev->conf_node;
    bool voter = raft_membership_is_voter(&c, id), learner = raft_membership_is_learner(&c, id);
    size_t i, k;
    int rc;
    if (n->role != RAFT_LEADER) {
        up->leader_hint = n->leader;
        return RAFT_ERR_NOT_LEADER;
    }
    if (n->transfer_to != RAFT_NONE) {
        up->leader_hint = n->transfer_to;
        return RAFT_ERR_TRANSFERRING;
    }
    if (id == RAFT_NONE || ev->conf_context_len > RAFT_CONF_CONTEXT_MAX ||
        (ev->conf_context_len > 0 && ev->conf_context == NULL))
        return RAFT_ERR_INVALID;
    /* The one-server-at-a-time safety fix (Ongaro, raft-dev 2015): a
    ** change only once this term has committed an entry, and never two
    ** uncommitted at once. */
    if (!committed_in_term(n) || n->conf_index > n->commit)
        return RAFT_ERR_CONF_PENDING;
    switch (ev->conf_change) {
    case RAFT_CONF_ADD_LEARNER:
    case RAFT_CONF_ADD_VOTER:
        if (voter || learner || c.n_voters + c.n_learners >= RAFT_MAX_VOTERS)
            return RAFT_ERR_INVALID;
        if (ev->conf_change == RAFT_CONF_ADD_LEARNER)
            c.learners[c.n_learners++] = id;
        else
            c.voters[c.n_voters++] = id;
        break;
    case RAFT_CONF_PROMOTE: {
        raft__progress *pr = progress_of(n, id);
        if (!learner || pr == NULL)
            return RAFT_ERR_INVALID;
        if (pr->match < n->commit)
            return RAFT_ERR_NOT_CAUGHT_UP;
        for (i = 0, k = 0; i < c.n_learners; i++)
            if (c.learners[i] != id)
                c.learners[k++] = c.learners[i];
        c.n_learners = k;
        c.voters[c.n_voters++] = id;
        break;
    }
    case RAFT_CONF_REMOVE:
        if ((!voter && !learner) || (voter && c.n_voters == 1))
            return RAFT_ERR_INVALID;
        for (i = 0, k = 0; i < c.n_voters; i++)
            if (c.voters[i] != id)
                c.voters[k++] = c.voters[i];
        c.n_voters = k;
        for (i = 0, k = 0; i < c.n_learners; i++)
            if (c.learners[i] != id)
                c.learners[k++] = c.learners[i];
        c.n_learners = k;
        break;
    default:
        return RAFT_ERR_INVALID;
    }
    if (last_index(n) - n->commit + 1 > RAFT__MAX_UNCOMMITTED_ENTRIES)
        return RAFT_ERR_BUSY;
    memset(&e, 0, sizeof(e));
    e.term = n->term;
    e.index = last_index(n) + 1;
    e.type = RAFT_ENTRY_CONFIG;
    e.data = buf;
    e.len = raft_membership_encode(&c, buf);
    if (ev->conf_context_len > 0) {
        memcpy(buf + e.len, ev->conf_context, ev->conf_context_len);
        e.len += ev->conf_context_len;
    }
    rc = log_append_copy(n, &e, 1); /* takes effect now (thesis 4.1) */
    if (rc != 0)
        return rc;
    up->proposed_index = e.index;
    up->proposed_term = n->term;
    for (i = 0; i < n->n_prs; i++)
        if (n->prs[i].id != n->cfg.id)
            send_all(n, &n->prs[i], false);
    /* a leader that just removed itself may now hold a quorum of one less */
    if (maybe_commit(n))
        broadcast_append(n);
    return RAFT_OK;
}

static int step_compact(raft_node *n, const raft_event *ev) {
    uint64_t idx = ev->compact_index, term;
    raft_membership c;
    uint8_t hdr[RAFT_MEMBERSHIP_MAX_BYTES];
    size_t hdr_len;
    uint8_t *stream;
    if (idx <= n->snap_index)
        return RAFT_OK; /* nothing new */
    if (idx > n->applied || (ev->snapshot_len > 0 && ev->snapshot_data == NULL) ||
        ev->snapshot_len > RAFT__MAX_SNAPSHOT_BYTES - RAFT_MEMBERSHIP_MAX_BYTES)
        return RAFT_ERR_INVALID;
    conf_at(n, idx, &c);
    hdr_len = raft_membership_encode(&c, hdr);
    stream = NULL;
    if (!n->cfg.lazy_snapshots || ev->snapshot_len > 0) {
        stream = base_malloc(hdr_len + ev->snapshot_len);
        if (stream == NULL)
            return RAFT_ERR_NOMEM;
        memcpy(stream, hdr, hdr_len);
        if (ev->snapshot_len > 0)
            memcpy(stream + hdr_len, ev->snapshot_data, ev->snapshot_len);
    }
    term = term_at(n, idx);
    assert(term != 0 && idx <= n->stable_index);
    log_drop_prefix(n, idx);
    n->snap_index = idx;
    n->snap_term = term;
    n->snap_conf = c;
    if (stream != NULL || n->stream_index < idx) {
        /* lazy, no bytes: a stream at or above idx stays usable */
        base_free(n->snap_stream);
        n->snap_stream = stream;
        n->snap_stream_len = stream != NULL ? hdr_len + ev->snapshot_len : 0;
        n->snap_conf_len = stream != NULL ? hdr_len : 0;
        n->stream_index = stream != NULL ? idx : 0;
        n->stream_term = stream != NULL ? term : 0;
        n->stream_conf = c;
        n->stream_seq++;
    }
    if (n->conf_index < idx)
        n->conf_index = idx; /* the config in effect now comes from the snapshot */
    return RAFT_OK;
}

/* Lazy snapshots: the caller's state machine at snapshot_index becomes the
** stream; every follower waiting for one (or streaming an older one)
** starts on it. */
static int step_snapshot(raft_node *n, const raft_event *ev) {
    uint64_t idx = ev->snapshot_index;
    raft_membership c;
    uint8_t hdr[RAFT_MEMBERSHIP_MAX_BYTES];
    size_t hdr_len, i;
    uint8_t *stream;
    if (!n->cfg.lazy_snapshots || idx == 0 || idx < n->snap_index || idx > n->applied ||
        (ev->snapshot_len > 0 && ev->snapshot_data == NULL) ||
        ev->snapshot_len > RAFT__MAX_SNAPSHOT_BYTES - RAFT_MEMBERSHIP_MAX_BYTES)
        return RAFT_ERR_INVALID;
    conf_at(n, idx, &c);
    hdr_len = raft_membership_encode(&c, hdr);
    stream = base_malloc(hdr_len + ev->snapshot_len);
    if (stream == NULL)
        return RAFT_ERR_NOMEM;
    memcpy(stream, hdr, hdr_len);
    if (ev->snapshot_len > 0)
        memcpy(stream + hdr_len, ev->snapshot_data, ev->snapshot_len);
    base_free(n->snap_stream);
    n->snap_stream = stream;
    n->snap_stream_len = hdr_len + ev->snapshot_len;
    n->snap_conf_len = hdr_len;
    n->stream_index = idx;
    n->stream_term = term_at(n, idx);
    n->stream_conf = c;
    n->stream_seq++;
    assert(n->stream_term != 0);
    if (n->role != RAFT_LEADER)
        return RAFT_OK;
    for (i = 0; i < n->n_prs; i++) {
        raft__progress *pr = &n->prs[i];
        if (pr->id != n->cfg.id && pr->state == RAFT__SNAPSHOT) {
            pr->snap_index = 0; /* new bytes, even at the same index: from the start */
            send_snapshot_chunk(n, pr);
        }
    }
    return RAFT_OK;
}

/* Lazy snapshots: drop a stream no follower streams (an installed one was
** handed out in the previous update, which is over). */
static void maybe_free_stream(raft_node *n) {
    size_t i;
    if (!n->cfg.lazy_snapshots || n->snap_stream == NULL)
        return;
    if (n->role == RAFT_LEADER && stream_usable(n))
        for (i = 0; i < n->n_prs; i++)
            if (n->prs[i].id != n->cfg.id && n->prs[i].state == RAFT__SNAPSHOT &&
                n->prs[i].snap_index == n->stream_index && n->prs[i].snap_seq == n->stream_seq)
                return;
    base_free(n->snap_stream);
    n->snap_stream = NULL;
    n->snap_stream_len = 0;
    n->snap_conf_len = 0;
    n->stream_index = 0;
    n->stream_term = 0;
}

/* A leader that is no longer a voter steps down once the configuration
** removing it is committed (thesis 4.2.2), handing over to a caught-up
** voter with TIMEOUT_NOW when there is one. */
static void maybe_step_down_removed(raft_node *n) {
    size_t i;
    if (n->role != RAFT_LEADER || self_voter(n) || n->commit < n->conf_index)
        return;
    for (i = 0; i < n->n_prs; i++) {
        raft__progress *pr = &n->prs[i];
        if (pr->voter && pr->id != n->cfg.id && pr->match == last_index(n)) {
            send_timeout_now(n, pr);
            break;
        }
    }
    become_follower(n, n->term, RAFT_NONE);
}

static void step_persisted(raft_node *n, uint64_t seq) {
    raft__persist_record r = {0};
    bool found = false;
    while (n->records_count > 0 && n->records[n->records_start].seq <= seq) {
        r = n->records[n->records_start];
        n->records_start = (n->records_start + 1) % RAFT__PERSIST_RING;
        n->records_count--;
        found = true;
    }
    if (!found)
        return;
    n->durable_term = r.term;
    n->durable_vote = r.vote;
    if (r.last_index > n->stable_index && has_entry(n, r.last_index, r.last_term))
        n->stable_index = r.last_index;
    if (n->role == RAFT_LEADER) {
        raft__progress *self = progress_of(n, n->cfg.id);
        self->match = n->stable_index;
        if (maybe_commit(n))
            broadcast_append(n);
    }
}

static int step_transfer(raft_node *n, uint64_t to, raft_update *up) {
    raft__progress *pr;
    if (n->role != RAFT_LEADER) {
        up->leader_hint = n->leader;
        return RAFT_ERR_NOT_LEADER;
    }
    pr = progress_of(n, to);
    if (pr == NULL || to == n->cfg.id || !pr->voter)
        return RAFT_ERR_INVALID;
    if (n->transfer_to != RAFT_NONE)
        return n->transfer_to == to ? RAFT_OK : RAFT_ERR_TRANSFERRING;
    n->transfer_to = to;
    n->transfer_elapsed = 0;
    if (pr->match == last_index(n))
        send_timeout_now(n, pr);
    else
        send_all(n, pr, true);
    return RAFT_OK;
}

/* ---- step ----------------------------------------------------------------- */

static int ensure_cap(raft_message **arr, size_t *cap, size_t need) {
    raft_message *p;
    size_t c;
    if (need <= *cap)
        return 0;
    c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    p = base_realloc(*arr, c * sizeof(raft_message));
    if (p == NULL)
        return -1;
    *arr = p;
    *cap = c;
    return 0;
}

static void finalize(raft_node *n, raft_update *up) {
    raft_hard_state hs;
    size_t i, n_now = 0, n_after = 0;
    bool term_vote_durable;
    uint64_t apply_to;

    up->role = n->role;
    up->term = n->term;
    up->leader = n->leader;

    hs.term = n->term;
    hs.vote = n->vote;
    hs.commit = n->commit;
    up->hard_state = hs;
    up->hard_state_changed = memcmp(&hs, &n->emitted_hs, sizeof(hs)) != 0;
    if (n->unpersisted_from != 0 && n->unpersisted_from <= last_index(n)) {
        up->entries = &n->log[n->unpersisted_from - n->first_index];
        up->n_entries = last_index(n) - n->unpersisted_from + 1;
    }
    n->unpersisted_from = 0;
    if (n->snap_out)
        up->snapshot = &n->snap_out_meta;
    if (up->hard_state_changed || up->n_entries > 0 || n->snap_out) {
        raft__persist_record *r;
        up->persist_seq = ++n->next_persist_seq;
        n->emitted_hs = hs;
        if (n->records_count == RAFT__PERSIST_RING) {
            r = &n->records[(n->records_start + n->records_count - 1) % RAFT__PERSIST_RING];
        } else {
            r = &n->records[(n->records_start + n->records_count) % RAFT__PERSIST_RING];
            n->records_count++;
        }
        r->seq = up->persist_seq;
        r->last_index = last_index(n);
        r->last_term = last_term(n);
        r->term = n->term;
        r->vote = n->vote;
    }

    /* Route messages; resolve entry pointers into the log. */
    term_vote_durable = n->durable_term == n->term && n->durable_vote == n->vote;
    if (ensure_cap(&n->send_now, &n->cap_send_now, n->n_out) != 0 ||
        ensure_cap(&n->send_after, &n->cap_send_after, n->n_out) != 0) {
        n->nomem = true;
        n->n_out = 0; /* all dropped, as if lost on the network */
    }
    for (i = 0; i < n->n_out; i++) {
        raft__out *o = &n->out[i];
        if (o->m.n_entries > 0) {
            uint64_t last = o->first_entry + o->m.n_entries - 1;
            if (o->first_entry < n->first_index || last > last_index(n))
                continue; /* truncated within this step: drop */
            o->m.entries = &n->log[o->first_entry - n->first_index];
        }
        if (o->m.type == RAFT_MSG_SNAPSHOT) {
            if (!stream_usable(n) || o->m.index != n->stream_index ||
                o->stream_seq != n->stream_seq || o->snap_offset + o->m.len > n->snap_stream_len)
                continue; /* replaced within this step: drop */
            o->m.data = o->m.len > 0 ? n->snap_stream + o->snap_offset : NULL;
        }
        if (o->after_persist || !term_vote_durable)
            n->send_after[n_after++] = o->m;
        else
            n->send_now[n_now++] = o->m;
    }
    up->messages = n->send_now;
    up->n_messages = n_now;
    up->messages_after_persist = n->send_after;
    up->n_messages_after_persist = n_after;

    apply_to = BASE_MIN(n->commit, n->stable_index);
    if (apply_to > n->applied) {
        size_t count = (size_t)BASE_MIN(apply_to - n->applied, (uint64_t)n->cfg.max_apply_entries);
        up->committed = &n->log[n->applied + 1 - n->first_index];
        up->n_committed = count;
        n->applied += count;
    }
    up->reads = n->read_out;
    up->n_reads = n->n_read_out;
    up->snapshot_wanted = n->want_snapshot && n->role == RAFT_LEADER;
}

int raft_step(raft_node *n, const raft_event *ev, raft_update *up) {
    int rc = RAFT_OK;
    memset(up, 0, sizeof(*up));
    n->n_out = 0;
    n->n_read_out = 0;
    n->nomem = false;
    n->snap_out = false;
    n->want_snapshot = false;
    maybe_free_stream(n);
    if (ev == NULL) {
        rc = RAFT_ERR_INVALID;
        goto done;
    }
    switch (ev->type) {
    case RAFT_EVENT_TICK:
        step_tick(n);
        break;
    case RAFT_EVENT_MESSAGE:
        rc = ev->message ? step_message(n, ev->message) : RAFT_ERR_INVALID;
        break;
    case RAFT_EVENT_PROPOSE:
        rc = step_propose(n, ev, up);
        break;
    case RAFT_EVENT_PERSISTED:
        step_persisted(n, ev->persist_seq);
        break;
    case RAFT_EVENT_READ:
        rc = step_read(n, ev, up);
        break;
    case RAFT_EVENT_TRANSFER:
        rc = step_transfer(n, ev->transfer_to, up);
        break;
    case RAFT_EVENT_CONF_CHANGE:
        rc = step_conf_change(n, ev, up);
        break;
    case RAFT_EVENT_COMPACT:
        rc = step_compact(n, ev);
        break;
    case RAFT_EVENT_SNAPSHOT:
        rc = step_snapshot(n, ev);
        break;
    case RAFT_EVENT_CAMPAIGN:
        if (!self_voter(n))
            rc = RAFT_ERR_INVALID;
        else if (in_lease(n))
            rc = n->role == RAFT_LEADER ? RAFT_OK : RAFT_ERR_BUSY; /* sticky: retry later */
        else
            campaign(n, true, false);
        break;
    default:
        rc = RAFT_ERR_INVALID;
    }
    maybe_step_down_removed(n);
done:
    finalize(n, up);
    if (rc == RAFT_OK && n->nomem)
        rc = RAFT_ERR_NOMEM;
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------ */

int raft_node_new(const raft_config *config, const raft_hard_state *hs,
                  const raft_entry *entries, size_t n_entries, raft_node **out) {
    return raft_node_restore(config, hs, NULL, entries, n_entries, out);
}

int raft_node_restore(const raft_config *config, const raft_hard_state *hs,
                      const raft_snapshot *snap, const raft_entry *entries, size_t n_entries,
                      raft_node **out) {
    raft_node *n = NULL;
    raft_membership boot;
    uint64_t base = snap != NULL ? snap->index : 0, base_term = snap != NULL ? snap->term : 0;
    uint8_t hdr[RAFT_MEMBERSHIP_MAX_BYTES];
    size_t i, hdr_len;
    int rc;
    *out = NULL;
    rc = config_check(config);
    if (rc != 0)
        return rc;
    memset(&boot, 0, sizeof(boot));
    memcpy(boot.voters, config->voters, sizeof(boot.voters));
    memcpy(boot.learners, config->learners, sizeof(boot.learners));
    boot.n_voters = config->n_voters;
    boot.n_learners = config->n_learners;
    if (snap != NULL) {
        if (hs == NULL || snap->index == 0 || snap->term == 0 || snap->term > hs->term ||
            membership_check(&snap->membership) != RAFT_OK ||
            (snap->len > 0 && snap->data == NULL) ||
            snap->len > RAFT__MAX_SNAPSHOT_BYTES - RAFT_MEMBERSHIP_MAX_BYTES)
            return RAFT_ERR_INVALID;
        boot = snap->membership;
    }
    for (i = 0; i < n_entries; i++) {
        uint64_t prev_term = i > 0 ? entries[i - 1].term : base_term;
        if (entries[i].index != base + i + 1 || entries[i].term < prev_term ||
            entries[i].term == 0 || (hs != NULL && entries[i].term > hs->term) ||
            entries[i].type > RAFT_ENTRY_CONFIG || (entries[i].len > 0 && entries[i].data == NULL))
            return RAFT_ERR_INVALID;
        if (entries[i].type == RAFT_ENTRY_CONFIG) {
            raft_membership c;
            if (raft_membership_decode(entries[i].data, entries[i].len, &c) < 0)
                return RAFT_ERR_INVALID;
        }
    }
    if (hs == NULL && n_entries > 0)
        return RAFT_ERR_INVALID;
    if (config->applied > base + n_entries)
        return RAFT_ERR_INVALID;
    n = base_calloc(1, sizeof(*n));
    if (n == NULL)
        return RAFT_ERR_NOMEM;
    n->reads = base_calloc(RAFT__MAX_PENDING_READS, sizeof(raft__pending_read));
    if (n->reads == NULL) {
        rc = RAFT_ERR_NOMEM;
        goto fail;
    }
    n->cfg = *config;
    n->first_index = base + 1;
    n->snap_index = base;
    n->snap_term = base_term;
    n->snap_conf = boot;
    if (snap != NULL && (!config->lazy_snapshots || snap->len > 0)) {
        hdr_len = raft_membership_encode(&boot, hdr);
        n->snap_stream = base_malloc(hdr_len + snap->len);
        if (n->snap_stream == NULL) {
            rc = RAFT_ERR_NOMEM;
            goto fail;
        }
        memcpy(n->snap_stream, hdr, hdr_len);
        if (snap->len > 0)
            memcpy(n->snap_stream + hdr_len, snap->data, snap->len);
        n->snap_stream_len = hdr_len + snap->len;
        n->snap_conf_len = hdr_len;
        n->stream_index = base;
        n->stream_term = base_term;
        n->stream_conf = boot;
        n->stream_seq++;
    }
    n->rng = config->random_seed ^ (config->id * 0xD1B54A32D192ED03ULL);
    apply_conf(n, &boot, base);
    if (hs != NULL) {
        n->term = hs->term;
        n->vote = hs->vote;
        n->emitted_hs = *hs;
        n->durable_term = hs->term;
        n->durable_vote = hs->vote;
    }
    rc = log_append_copy(n, entries, n_entries); /* replays config entries */
    if (rc != 0)
        goto fail;
    n->unpersisted_from = 0;
    n->stable_index = base + n_entries;
    n->commit = hs != NULL ? BASE_MIN(hs->commit, base + (uint64_t)n_entries) : 0;
    if (n->commit < base)
        n->commit = base;
    n->emitted_hs.commit = hs != NULL ? hs->commit : 0;
    n->applied = BASE_MAX(config->applied, base);
    if (n->applied > n->commit)
        n->commit = n->applied; /* the caller applied it: it was committed */
    n->role = RAFT_FOLLOWER;
    reset_randomized_timeout(n);
    *out = n;
    return RAFT_OK;
fail:
    raft_node_free(n);
    return rc;
}

void raft_node_free(raft_node *n) {
    size_t i;
    if (n == NULL)
        return;
    for (i = 0; i < n->log_len; i++)
        base_free(n->log[i].data);
    base_free(n->log);
    base_free(n->reads);
    base_free(n->out);
    base_free(n->send_now);
    base_free(n->send_after);
    base_free(n->read_out);
    base_free(n->snap_stream);
    base_free(n->recv_buf);
    base_free(n);
}

void raft_node_status(const raft_node *n, raft_status *s) {
    memset(s, 0, sizeof(*s));
    s->id = n->cfg.id;
    s->role = n->role;
    s->term = n->term;
    s->vote = n->vote;
    s->leader = n->leader;
    s->commit = n->commit;
    s->applied = n->applied;
    s->last_index = last_index(n);
    s->last_term = last_term(n);
    s->stable_index = n->stable_index;
    s->transfer_to = n->transfer_to;
    s->lease_valid = lease_valid(n);
    s->tick = (uint64_t)n->tick;
    s->first_index = n->first_index;
    s->snapshot_index = n->snap_index;
    s->snapshot_term = n->snap_term;
    s->conf_index = n->conf_index;
    s->voter = self_voter(n);
}

int raft_node_min_match(const raft_node *n, uint64_t *out) {
    uint64_t m = n->stable_index;
    *out = 0;
    if (n->role != RAFT_LEADER)
        return RAFT_ERR_NOT_LEADER;
    for (size_t i = 0; i < n->n_prs; i++) {
        const raft__progress *pr = &n->prs[i];
        if (pr->id != n->cfg.id && (pr->voter || pr->learner) && pr->match < m)
            m = pr->match;
    }
    *out = m;
    return RAFT_OK;
}

void raft_node_membership(const raft_node *n, raft_membership *out) {
    *out = n->conf;
}

int raft_node_membership_at(const raft_node *n, uint64_t index, raft_membership *out) {
    if (index < n->snap_index || index > last_index(n)) {
        memset(out, 0, sizeof(*out));
        return RAFT_ERR_INVALID;
    }
    conf_at(n, index, out);
    return RAFT_OK;
}

void raft_node_snapshot(const raft_node *n, raft_snapshot *out) {
    memset(out, 0, sizeof(*out));
    out->index = n->snap_index;
    out->term = n->snap_term;
    out->membership = n->snap_conf;
    if (n->snap_stream != NULL && n->stream_index == n->snap_index) {
        out->data = n->snap_stream + n->snap_conf_len;
        out->len = n->snap_stream_len - n->snap_conf_len;
    }
}

int raft_node_term_at(const raft_node *n, uint64_t index, uint64_t *term) {
    if (index == 0 || (index == n->snap_index)) {
        *term = term_at(n, index);
        return RAFT_OK;
    }
    if (index < n->first_index || index > last_index(n))
        return RAFT_ERR_INVALID;
    *term = term_at(n, index);
    return RAFT_OK;
}

const raft_entry *raft_node_entry_at(const raft_node *n, uint64_t index) {
    if (index == 0 || index < n->first_index || index > last_index(n))
        return NULL;
    return &n->log[index - n->first_index];
}
