/*
** tests/raft/rsim.c: the deterministic Raft cluster simulator (see rsim.h).
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rsim.h"
#include "raft/log_int.h"
#include "tests/chaos/chaos.h"

/* ---- PRNG (splitmix64) ------------------------------------------------------- */

static uint64_t rnd(rsim *s) {
    uint64_t z = (s->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int rnd_range(rsim *s, int lo, int hi) { /* [lo, hi] */
    if (hi <= lo)
        return lo;
    return lo + (int)(rnd(s) % (uint64_t)(hi - lo + 1));
}

static bool chance(rsim *s, int pct) {
    return pct > 0 && (int)(rnd(s) % 100) < pct;
}

/* ---- helpers ------------------------------------------------------------------- */

static uint64_t hash_entry(const raft_entry *e) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)e->type;
    size_t i;
    for (i = 0; i < e->len; i++) {
        h ^= e->data[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void rsim_fail(rsim *s, const char *fmt, ...) {
    va_list ap;
    if (s->failed)
        return;
    s->failed = true;
    va_start(ap, fmt);
    vsnprintf(s->fail_msg, sizeof(s->fail_msg), fmt, ap);
    va_end(ap);
}

static void trace(rsim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(rsim *s, const char *fmt, ...) {
    va_list ap;
    char line[512];
    if (s->trace == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    base_buf_append(s->trace, line, strlen(line));
}

void rsim_format_message(const raft_message *m, base_buf *b) {
    size_t i;
    base_buf_printf(b, "%llu->%llu %s term=%llu", (unsigned long long)m->from,
                    (unsigned long long)m->to, raft_message_type_name(m->type),
                    (unsigned long long)m->term);
    switch (m->type) {
    case RAFT_MSG_APPEND:
        base_buf_printf(b, " prev=%llu/%llu commit=%llu entries=[", (unsigned long long)m->index,
                        (unsigned long long)m->log_term, (unsigned long long)m->commit);
        for (i = 0; i < m->n_entries; i++)
            base_buf_printf(b, "%s%llu/%llu", i ? " " : "", (unsigned long long)m->entries[i].index,
                            (unsigned long long)m->entries[i].term);
        base_buf_printf(b, "]");
        break;
    case RAFT_MSG_APPEND_RESP:
        if (m->reject)
            base_buf_printf(b, " reject index=%llu hint=%llu/%llu", (unsigned long long)m->index,
                            (unsigned long long)m->hint_index, (unsigned long long)m->log_term);
        else
            base_buf_printf(b, " index=%llu", (unsigned long long)m->index);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PRE_VOTE:
        base_buf_printf(b, " last=%llu/%llu%s", (unsigned long long)m->index,
                        (unsigned long long)m->log_term, m->force ? " force" : "");
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PRE_VOTE_RESP:
        base_buf_printf(b, "%s", m->reject ? " reject" : " granted");
        break;
    case RAFT_MSG_HEARTBEAT:
        base_buf_printf(b, " commit=%llu seq=%llu", (unsigned long long)m->commit,
                        (unsigned long long)m->seq);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        base_buf_printf(b, " seq=%llu", (unsigned long long)m->seq);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        break;
    case RAFT_MSG_SNAPSHOT:
        base_buf_printf(b, " snap=%llu/%llu off=%llu len=%zu%s", (unsigned long long)m->index,
                        (unsigned long long)m->log_term, (unsigned long long)m->seq, m->len,
                        m->force ? " done" : "");
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        base_buf_printf(b, " snap=%llu/%llu next=%llu", (unsigned long long)m->index,
                        (unsigned long long)m->log_term, (unsigned long long)m->hint_index);
        break;
    }
}

static void free_entries(raft_entry *e, size_t n) {
    size_t i;
    if (e == NULL)
        return;
    for (i = 0; i < n; i++)
        base_free(e[i].data);
    base_free(e);
}

static raft_entry *copy_entries(const raft_entry *src, size_t n) {
    raft_entry *e = base_calloc(n ? n : 1, sizeof(raft_entry));
    size_t i;
    if (e == NULL)
        abort();
    for (i = 0; i < n; i++) {
        e[i] = src[i];
        e[i].data = NULL;
        if (src[i].len) {
            e[i].data = base_malloc(src[i].len);
            if (e[i].data == NULL)
                abort();
            memcpy(e[i].data, src[i].data, src[i].len);
        }
    }
    return e;
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem) {
    size_t c;
    if (need <= *cap)
        return p;
    c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    p = base_realloc(p, c * elem);
    if (p == NULL)
        abort(); /* the simulator itself does not test OOM */
    *cap = c;
    return p;
}

/* ---- network ------------------------------------------------------------------- */

static void net_push(rsim *s, const raft_message *m, int64_t at) {
    rsim_msg *q;
    if (s->n_net >= RSIM_MAX_NET)
        return; /* dropped, like a full socket buffer */
    s->net = grow(s->net, &s->cap_net, s->n_net + 1, sizeof(rsim_msg));
    q = &s->net[s->n_net++];
    if (raft_message_clone(m, &q->m) != 0)
        abort();
    q->deliver_at = at;
}

/* Persist before send: when a message leaves node `from`, what it implies
** about `from` must already be on its durable disk. */
static void check_send(rsim *s, const raft_message *m) {
    rsim_node *nd;
    if (m->from < 1 || m->from > (uint64_t)s->n) {
        rsim_fail(s, "message from unknown node %llu", (unsigned long long)m->from);
        return;
    }
    nd = &s->nodes[m->from - 1];
    switch (m->type) {
    case RAFT_MSG_PRE_VOTE:
        if (nd->dhs.term + 1 < m->term)
            rsim_fail(s, "node %llu sent a pre-vote for term %llu with durable term %llu",
                      (unsigned long long)nd->id, (unsigned long long)m->term,
                      (unsigned long long)nd->dhs.term);
        return;
    case RAFT_MSG_PRE_VOTE_RESP:
        return; /* a granted pre-vote carries the candidate's future term */
    case RAFT_MSG_VOTE_RESP:
        if (!m->reject && !(nd->dhs.term > m->term ||
                            (nd->dhs.term == m->term && nd->dhs.vote == m->to)))
            rsim_fail(s, "node %llu granted a vote in term %llu before it was durable",
                      (unsigned long long)nd->id, (unsigned long long)m->term);
        break;
    case RAFT_MSG_APPEND_RESP:
        if (!m->reject && nd->dsnap.index + nd->dlen < m->index && nd->dhs.term <= m->term)
            rsim_fail(s, "node %llu acked index %llu with only %llu entries durable",
                      (unsigned long long)nd->id, (unsigned long long)m->index,
                      (unsigned long long)(nd->dsnap.index + nd->dlen));
        break;
    default:
        break;
    }
    if (nd->dhs.term < m->term)
        rsim_fail(s, "node %llu sent %s of term %llu with durable term %llu",
                  (unsigned long long)nd->id, raft_message_type_name(m->type),
                  (unsigned long long)m->term, (unsigned long long)nd->dhs.term);
}

static void send_message(rsim *s, const raft_message *m) {
    check_send(s, m);
    if (s->manual) {
        net_push(s, m, 0);
        return;
    }
    if (chance(s, s->drop_pct))
        return;
    net_push(s, m, s->now + rnd_range(s, s->delay_min, s->delay_max));
    if (chance(s, s->dup_pct))
        net_push(s, m, s->now + rnd_range(s, s->delay_min, s->delay_max * 2));
}

static void net_remove(rsim *s, size_t i) { /* keeps FIFO order */
    raft_message_release(&s->net[i].m);
    memmove(&s->net[i], &s->net[i + 1], (s->n_net - i - 1) * sizeof(rsim_msg));
    s->n_net--;
}

/* ---- disk ---------------------------------------------------------------------- */

/* Drop durable entries with index <= upto (all of them if !keep_after). */
static void disk_drop_prefix(rsim_node *nd, uint64_t upto, bool keep_after) {
    size_t k, drop = 0;
    while (drop < nd->dlen && (nd->dlog[drop].index <= upto || !keep_after))
        drop++;
    for (k = 0; k < drop; k++)
        base_free(nd->dlog[k].data);
    if (drop > 0)
        memmove(nd->dlog, nd->dlog + drop, (nd->dlen - drop) * sizeof(raft_entry));
    nd->dlen -= drop;
}

static void disk_set_snapshot(rsim_node *nd, const raft_snapshot *snap, uint8_t *data_owned) {
    base_free(nd->dsnap_data);
    nd->dsnap = *snap;
    nd->dsnap_data = data_owned;
    nd->dsnap.data = data_owned;
}

static void disk_apply(rsim_node *nd, rsim_write *w) {
    size_t i;
    if (w->has_hs)
        nd->dhs = w->hs;
    if (w->has_snap) {
        disk_set_snapshot(nd, &w->snap, w->snap_data);
        w->snap_data = NULL;
        disk_drop_prefix(nd, w->snap.index, w->snap.keep_log);
        w->has_snap = false;
    }
    if (w->n_entries > 0) {
        uint64_t from = w->entries[0].index;
        if (from <= nd->dsnap.index)
            abort(); /* the core never writes below its snapshot */
        while (nd->dlen > 0 && nd->dlog[nd->dlen - 1].index >= from) {
            nd->dlen--;
            base_free(nd->dlog[nd->dlen].data);
        }
        if (nd->dsnap.index + nd->dlen + 1 != from)
            abort(); /* a gap: the core broke the append contract */
        nd->dlog = grow(nd->dlog, &nd->dcap, nd->dlen + w->n_entries, sizeof(raft_entry));
        for (i = 0; i < w->n_entries; i++) {
            nd->dlog[nd->dlen++] = w->entries[i];
            w->entries[i].data = NULL; /* moved */
        }
    }
    free_entries(w->entries, w->n_entries);
    w->entries = NULL;
    w->n_entries = 0;
}


/* ---- the real log store (rsim_use_real_log) -------------------------------------- */

#define RSIM_RLOG_GROUP 1
#define RSIM_RLOG_SEGMENT_BYTES RAFT__LOG_MIN_SEGMENT_BYTES /* small: roll-over and purge happen */

static uint64_t rnd_disk(rsim *s) {
    uint64_t z = (s->rng_disk += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static bool rl_ok(rsim *s, rsim_node *nd, const char *what, int rc) {
    if (rc != 0 && !s->failed)
        rsim_fail(s, "node %llu: real log %s: %s", (unsigned long long)nd->id, what,
                  raft_log_strerror(rc));
    return rc == 0;
}

static void rl_seq(rsim_node *nd, uint64_t seq) {
    if (seq > nd->rlog_seq)
        nd->rlog_seq = seq;
}

static int rl_open(rsim *s, rsim_node *nd) {
    raft_log_options o;
    char err[512] = "";
    int rc;
    memset(&o, 0, sizeof(o));
    o.dir = nd->rdir;
    o.segment_bytes_max = RSIM_RLOG_SEGMENT_BYTES;
    rc = raft_log_open(&o, &nd->rlog, err, sizeof(err));
    if (rc != 0 && !s->failed)
        rsim_fail(s, "node %llu: raft_log_open %s: %s %s", (unsigned long long)nd->id, nd->rdir,
                  raft_log_strerror(rc), err);
    nd->rlog_seq = 0;
    return rc;
}

/* Mirror one write to the real log, in the order of disk_apply: hard state,
** snapshot point, entries. Not yet durable: rl_sync. */
static void rl_write(rsim *s, rsim_node *nd, const rsim_write *w) {
    raft_log_group_info gi;
    uint64_t seq = 0;
    if (!s->real_log || nd->rlog == NULL || s->failed)
        return;
    if (w->has_hs) {
        if (!rl_ok(s, nd, "append hard state",
                   raft_log_append(nd->rlog, RSIM_RLOG_GROUP, &w->hs, NULL, 0, &seq)))
            return;
        rl_seq(nd, seq);
    }
    if (w->has_snap) {
        raft_log_group(nd->rlog, RSIM_RLOG_GROUP, &gi);
        if (w->snap.index < gi.compact_index) {
            rsim_fail(s, "node %llu: snapshot %llu below the log's compaction point %llu",
                      (unsigned long long)nd->id, (unsigned long long)w->snap.index,
                      (unsigned long long)gi.compact_index);
            return;
        }
        if (!w->snap.keep_log && gi.last_index > gi.compact_index) {
            if (!rl_ok(s, nd, "truncate for snapshot",
                       raft_log_truncate_suffix(nd->rlog, RSIM_RLOG_GROUP, gi.compact_index + 1,
                                                &seq)))
                return;
            rl_seq(nd, seq);
        }
        if (w->snap.index > gi.compact_index) {
            if (!rl_ok(s, nd, "compact to snapshot",
                       raft_log_compact(nd->rlog, RSIM_RLOG_GROUP, w->snap.index, w->snap.term,
                                        &seq)))
                return;
            rl_seq(nd, seq);
        }
    }
    if (w->n_entries > 0) {
        if (!rl_ok(s, nd, "append entries",
                   raft_log_append(nd->rlog, RSIM_RLOG_GROUP, NULL, w->entries, w->n_entries,
                                   &seq)))
            return;
        rl_seq(nd, seq);
    }
}

static void rl_sync(rsim *s, rsim_node *nd) {
    if (!s->real_log || nd->rlog == NULL || s->failed || nd->rlog_seq == 0)
        return;
    rl_ok(s, nd, "sync", raft_log_sync(nd->rlog, nd->rlog_seq));
}

/* After a compaction the application made durable: drop the log prefix
** (the whole log if the stored entry at index has another term: see
** rsim_compact) and purge segments nobody needs. */
static void rl_compact(rsim *s, rsim_node *nd, uint64_t index, uint64_t term, bool drop_all) {
    uint64_t seq = 0;
    size_t n_deleted = 0;
    raft_log_group_info gi;
    if (!s->real_log || nd->rlog == NULL || s->failed)
        return;
    raft_log_group(nd->rlog, RSIM_RLOG_GROUP, &gi);
    if (drop_all && gi.last_index > gi.compact_index) {
        if (!rl_ok(s, nd, "truncate before compact",
                   raft_log_truncate_suffix(nd->rlog, RSIM_RLOG_GROUP, gi.compact_index + 1, &seq)))
            return;
        rl_seq(nd, seq);
    }
    if (!rl_ok(s, nd, "compact", raft_log_compact(nd->rlog, RSIM_RLOG_GROUP, index, term, &seq)))
        return;
    rl_seq(nd, seq);
    rl_sync(s, nd);
    if (rl_ok(s, nd, "purge", raft_log_purge(nd->rlog, &n_deleted)))
        s->stat_purged += n_deleted;
}

/* Newest segment file of a log directory (its path), or "" if none. */
static void rl_last_segment(const char *dir, char *out, size_t out_len) {
    uint64_t best = 0, seq;
    char name[64];
    struct stat st;
    out[0] = '\0';
    /* live files have consecutive seqs: probe upward from 1 (bounded) */
    for (seq = 1; seq < 1000000; seq++) {
        snprintf(name, sizeof(name), "%0*llu%s", RAFT__LOG_SEGMENT_NAME_DIGITS,
                 (unsigned long long)seq, RAFT__LOG_SEGMENT_SUFFIX);
        {
            char path[700];
            snprintf(path, sizeof(path), "%s/%s", dir, name);
            if (stat(path, &st) == 0)
                best = seq;
            else if (best != 0)
                break;
        }
    }
    if (best != 0)
        snprintf(out, out_len, "%s/%0*llu%s", dir, RAFT__LOG_SEGMENT_NAME_DIGITS,
                 (unsigned long long)best, RAFT__LOG_SEGMENT_SUFFIX);
}

/* At a crash: write the first lost write's first entry unsynced and tear it
** (cut the last segment at a random byte inside that record), if it is a
** plain append. Then close the log. */
static void rl_crash(rsim *s, rsim_node *nd, const rsim_write *lost) {
    if (!s->real_log || nd->rlog == NULL)
        return;
    if (!s->failed && lost != NULL && lost->n_entries > 0 && !lost->has_snap &&
        (rnd_disk(s) % 4) != 0) {
        raft_log_group_info gi;
        raft_log_group(nd->rlog, RSIM_RLOG_GROUP, &gi);
        if (lost->entries[0].index == gi.last_index + 1) {
            uint64_t seq;
            if (rl_ok(s, nd, "append (torn)",
                      raft_log_append(nd->rlog, RSIM_RLOG_GROUP, NULL, lost->entries, 1, &seq))) {
                char path[700];
                struct stat st;
                off_t rec = (off_t)(RAFT__LOG_RECORD_HEADER_BYTES + lost->entries[0].len);
                raft_log_close(nd->rlog);
                nd->rlog = NULL;
                rl_last_segment(nd->rdir, path, sizeof(path));
                if (path[0] == '\0' || stat(path, &st) != 0 || st.st_size < rec ||
                    truncate(path, st.st_size - rec + (off_t)(rnd_disk(s) % (uint64_t)rec)) != 0) {
                    rsim_fail(s, "node %llu: cannot tear the tail of %s",
                              (unsigned long long)nd->id, path);
                    return;
                }
                s->stat_torn++;
                return;
            }
        }
    }
    raft_log_close(nd->rlog);
    nd->rlog = NULL;
}

static bool rl_same_entry(const raft_entry *a, const raft_entry *b) {
    return a->index == b->index && a->term == b->term && a->type == b->type && a->len == b->len &&
           (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Restart: reopen (recover) the log and check it against the in-memory disk.
** On success *hs / *entries / *n are what the log returned (entries owned by
** the caller: raft_log_entries_free). */
static int rl_recover(rsim *s, rsim_node *nd, raft_hard_state *hs, raft_entry **entries,
                      size_t *n) {
    raft_log_group_info gi;
    size_t k;
    int rc;
    *entries = NULL;
    *n = 0;
    memset(hs, 0, sizeof(*hs));
    if (nd->rlog == NULL && rl_open(s, nd) != 0)
        return -1;
    s->stat_log_restarts++;
    raft_log_group(nd->rlog, RSIM_RLOG_GROUP, &gi);
    if (gi.has_hard_state)
        *hs = gi.hard_state;
    if (gi.exists && gi.last_index > gi.compact_index) {
        rc = raft_log_entries(nd->rlog, RSIM_RLOG_GROUP, gi.first_index, gi.last_index + 1, 0,
                              entries, n);
        if (!rl_ok(s, nd, "read entries", rc))
            return -1;
    }
    /* the in-memory disk is the reference */
    if (hs->term != nd->dhs.term || hs->vote != nd->dhs.vote || hs->commit > nd->dhs.commit) {
        rsim_fail(s, "node %llu: real log hard state %llu/%llu/%llu, disk %llu/%llu/%llu",
                  (unsigned long long)nd->id, (unsigned long long)hs->term,
                  (unsigned long long)hs->vote, (unsigned long long)hs->commit,
                  (unsigned long long)nd->dhs.term, (unsigned long long)nd->dhs.vote,
                  (unsigned long long)nd->dhs.commit);
        goto fail;
    }
    if (gi.compact_index != nd->dsnap.index || *n != nd->dlen) {
        rsim_fail(s, "node %llu: real log holds (%llu, %llu], disk (%llu, %llu]",
                  (unsigned long long)nd->id, (unsigned long long)gi.compact_index,
                  (unsigned long long)(gi.compact_index + *n), (unsigned long long)nd->dsnap.index,
                  (unsigned long long)(nd->dsnap.index + nd->dlen));
        goto fail;
    }
    for (k = 0; k < *n; k++)
        if (!rl_same_entry(&(*entries)[k], &nd->dlog[k])) {
            rsim_fail(s, "node %llu: real log entry %llu differs from the disk's",
                      (unsigned long long)nd->id, (unsigned long long)nd->dlog[k].index);
            goto fail;
        }
    return 0;
fail:
    raft_log_entries_free(*entries, *n);
    *entries = NULL;
    *n = 0;
    return -1;
}

int rsim_use_real_log(rsim *s, const char *dir) {
    int i, rc;
    s->real_log = true;
    s->rng_disk = s->seed ^ 0x5EED0D15CULL;
    for (i = 0; i < s->n; i++) {
        rsim_node *nd = &s->nodes[i];
        snprintf(nd->rdir, sizeof(nd->rdir), "%s/node%d", dir, i + 1);
        rc = rl_open(s, nd);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- checks -------------------------------------------------------------------- */

static void check_log_matching(rsim *s, rsim_node *nd, const raft_entry *e) {
    uint64_t prev_term = 0, h = hash_entry(e), k;
    size_t mask, i;
    if (e->type == RAFT_ENTRY_CONFIG) {
        raft_membership c;
        if (raft_membership_decode(e->data, e->len, &c) < 0)
            rsim_fail(s, "node %llu: undecodable config entry %llu", (unsigned long long)nd->id,
                      (unsigned long long)e->index);
        else if (c.n_voters < s->min_voters)
            s->min_voters = c.n_voters;
    }
    if (raft_node_term_at(nd->raft, e->index - 1, &prev_term) != 0) {
        rsim_fail(s, "node %llu: no entry before %llu", (unsigned long long)nd->id,
                  (unsigned long long)e->index);
        return;
    }
    if ((s->reg_len + 1) * 2 > s->reg_cap) {
        size_t old_cap = s->reg_cap, j;
        rsim_reg_slot *old = s->reg;
        s->reg_cap = old_cap ? old_cap * 2 : 1024;
        s->reg = base_calloc(s->reg_cap, sizeof(rsim_reg_slot));
        if (s->reg == NULL)
            abort();
        s->reg_len = 0;
        for (j = 0; j < old_cap; j++) {
            if (old[j].term == 0)
                continue;
            mask = s->reg_cap - 1;
            k = (old[j].index * 0x9E3779B97F4A7C15ULL) ^ (old[j].term * 0xC2B2AE3D27D4EB4FULL);
            for (i = k & mask; s->reg[i].term != 0; i = (i + 1) & mask) {
            }
            s->reg[i] = old[j];
            s->reg_len++;
        }
        base_free(old);
    }
    mask = s->reg_cap - 1;
    k = (e->index * 0x9E3779B97F4A7C15ULL) ^ (e->term * 0xC2B2AE3D27D4EB4FULL);
    for (i = k & mask; s->reg[i].term != 0; i = (i + 1) & mask) {
        if (s->reg[i].index == e->index && s->reg[i].term == e->term) {
            if (s->reg[i].prev_term != prev_term || s->reg[i].hash != h)
                rsim_fail(s, "log matching: node %llu entry %llu/%llu differs from an earlier copy",
                          (unsigned long long)nd->id, (unsigned long long)e->index,
                          (unsigned long long)e->term);
            return;
        }
    }
    s->reg[i].index = e->index;
    s->reg[i].term = e->term;
    s->reg[i].prev_term = prev_term;
    s->reg[i].hash = h;
    s->reg_len++;
}

static void check_node(rsim *s, rsim_node *nd) {
    raft_status st;
    uint64_t i;
    raft_node_status(nd->raft, &st);
    /* commit never moves back while up; commit history never changes */
    if (st.commit < nd->commit_checked)
        rsim_fail(s, "node %llu: commit went back %llu -> %llu", (unsigned long long)nd->id,
                  (unsigned long long)nd->commit_checked, (unsigned long long)st.commit);
    for (i = nd->commit_checked + 1; i <= st.commit && !s->failed; i++) {
        const raft_entry *e = raft_node_entry_at(nd->raft, i);
        if (e == NULL && i <= st.snapshot_index) {
            /* came with a snapshot: checked against the history at install */
            if (i > s->n_committed)
                rsim_fail(s, "node %llu: snapshot covers %llu, never committed elsewhere",
                          (unsigned long long)nd->id, (unsigned long long)i);
            continue;
        }
        if (e == NULL) {
            rsim_fail(s, "node %llu: committed %llu not in log", (unsigned long long)nd->id,
                      (unsigned long long)i);
            break;
        }
        if (i <= s->n_committed) {
            if (s->committed[i - 1].term != e->term || s->committed[i - 1].hash != hash_entry(e))
                rsim_fail(s, "state machine safety: node %llu commits %llu/%llu, was term %llu",
                          (unsigned long long)nd->id, (unsigned long long)i,
                          (unsigned long long)e->term,
                          (unsigned long long)s->committed[i - 1].term);
        } else {
            s->committed = grow(s->committed, &s->cap_committed, i, sizeof(rsim_committed));
            s->committed[i - 1].term = e->term;
            s->committed[i - 1].hash = hash_entry(e);
            s->committed[i - 1].put = e->type == RAFT_ENTRY_NORMAL && e->len == 17;
            s->committed[i - 1].key = e->len == 17 ? e->data[0] % RSIM_KEYS : 0;
            s->committed[i - 1].value = 0;
            if (e->len == 17)
                memcpy(&s->committed[i - 1].value, e->data + 1, 8);
            s->n_committed = i;
        }
    }
    if (st.commit > nd->commit_checked)
        nd->commit_checked = st.commit;
    if (st.last_index != nd->conf_checked_last || st.last_term != nd->conf_checked_term ||
        st.snapshot_index != nd->conf_checked_snap) {
        /* The configuration in effect is the latest config entry in the log,
        ** else the snapshot's (a truncated change is rolled back). */
        raft_membership have, want;
        uint64_t k, at = st.snapshot_index;
        raft_snapshot sn;
        raft_node_snapshot(nd->raft, &sn);
        want = sn.membership;
        for (k = st.last_index; k >= st.first_index && k > 0; k--) {
            const raft_entry *e = raft_node_entry_at(nd->raft, k);
            if (e != NULL && e->type == RAFT_ENTRY_CONFIG) {
                raft_membership_decode(e->data, e->len, &want);
                at = k;
                break;
            }
        }
        raft_node_membership(nd->raft, &have);
        if (memcmp(&have, &want, sizeof(have)) != 0 || (at >= st.first_index && st.conf_index != at))
            rsim_fail(s, "node %llu: configuration in effect is not the latest in its log (%llu)",
                      (unsigned long long)nd->id, (unsigned long long)at);
        nd->conf_checked_last = st.last_index;
        nd->conf_checked_term = st.last_term;
        nd->conf_checked_snap = st.snapshot_index;
    }
    if (st.role == RAFT_LEADER) {
        if (st.term >= s->cap_terms) {
            size_t old = s->cap_terms;
            s->leader_of_term = grow(s->leader_of_term, &s->cap_terms, st.term + 1, sizeof(uint64_t));
            memset(s->leader_of_term + old, 0, (s->cap_terms - old) * sizeof(uint64_t));
        }
        if (s->leader_of_term[st.term] != 0 && s->leader_of_term[st.term] != nd->id)
            rsim_fail(s, "election safety: nodes %llu and %llu both lead term %llu",
                      (unsigned long long)s->leader_of_term[st.term], (unsigned long long)nd->id,
                      (unsigned long long)st.term);
        if (s->leader_of_term[st.term] == 0) {
            /* a new leader: leader completeness */
            s->leader_of_term[st.term] = nd->id;
            s->stat_elections++;
            for (i = st.snapshot_index + 1; i <= s->n_committed && !s->failed; i++) {
                uint64_t t = 0;
                if (raft_node_term_at(nd->raft, i, &t) != 0 || t != s->committed[i - 1].term)
                    rsim_fail(s, "leader completeness: leader %llu of term %llu lacks committed %llu",
                              (unsigned long long)nd->id, (unsigned long long)st.term,
                              (unsigned long long)i);
            }
        }
    }
    if (st.role != nd->role || st.term != nd->term) {
        if (s->trace != NULL && (st.role != nd->role))
            trace(s, "  %llu becomes %s term=%llu\n", (unsigned long long)nd->id,
                  raft_role_name(st.role), (unsigned long long)st.term);
        nd->role = st.role;
        nd->term = st.term;
    }
}

/* Every committed entry must be durable on a majority. */
static void check_durable_majority(rsim *s) {
    uint64_t i;
    int j;
    for (i = 1; i <= s->n_committed && !s->failed; i++) {
        int count = 0;
        for (j = 0; j < s->n; j++) {
            rsim_node *nd = &s->nodes[j];
            if (i <= nd->dsnap.index ||
                (i <= nd->dsnap.index + nd->dlen &&
                 nd->dlog[i - nd->dsnap.index - 1].term == s->committed[i - 1].term))
                count++;
        }
        if (count < (int)(s->min_voters / 2 + 1))
            rsim_fail(s, "committed entry %llu durable on only %d nodes", (unsigned long long)i, count);
    }
}

static void apply_entry(rsim *s, rsim_node *nd, const raft_entry *e) {
    if (e->index != nd->applied + 1) {
        rsim_fail(s, "node %llu applies %llu after %llu", (unsigned long long)nd->id,
                  (unsigned long long)e->index, (unsigned long long)nd->applied);
        return;
    }
    if (e->index > s->n_committed || s->committed[e->index - 1].term != e->term ||
        s->committed[e->index - 1].hash != hash_entry(e)) {
        rsim_fail(s, "node %llu applies %llu/%llu, not the committed history",
                  (unsigned long long)nd->id, (unsigned long long)e->index,
                  (unsigned long long)e->term);
        return;
    }
    nd->applied = e->index;
    if (e->type == RAFT_ENTRY_NORMAL && e->len == 17) {
        uint64_t v;
        memcpy(&v, e->data + 1, 8);
        nd->kv[e->data[0] % RSIM_KEYS] = v;
    }
}

/* ---- client history (linearizability) -------------------------------------------
** Every client op on the map in random mode is recorded (rsim_op in rsim.h)
** and at the end of the run each key's history goes to the register
** checker of tests/chaos/. Values are the proposal's 64-bit value with the
** top bit cleared (chaos values are signed; CHAOS_NIL is never produced);
** the map starts at 0 and the liveness markers write 0 to key 0. */

static int64_t lin_value(uint64_t v) { return (int64_t)(v & (uint64_t)INT64_MAX); }

/* Index of a new pending op, or -1 (not recording, or RSIM_MAX_OPS hit). */
static long lin_add(rsim *s, bool is_read, int node, uint8_t key, int64_t value) {
    rsim_op *op;
    if (!s->lin_record)
        return -1;
    if (s->n_ops >= RSIM_MAX_OPS) {
        s->lin_overflow = true; /* a partial history could look invalid: not checked */
        return -1;
    }
    s->ops = grow(s->ops, &s->cap_ops, s->n_ops + 1, sizeof(rsim_op));
    s->pending_ops = grow(s->pending_ops, &s->cap_pending_ops, s->n_pending_ops + 1, sizeof(uint32_t));
    op = &s->ops[s->n_ops];
    memset(op, 0, sizeof(*op));
    op->is_read = is_read;
    op->state = RSIM_OP_PENDING;
    op->node = node;
    op->key = (uint8_t)(key % RSIM_KEYS);
    op->value = value;
    op->invoke = s->now;
    s->pending_ops[s->n_pending_ops++] = (uint32_t)s->n_ops;
    return (long)s->n_ops++;
}

static void lin_finish(rsim *s, size_t p, rsim_op_state st) {
    rsim_op *op = &s->ops[s->pending_ops[p]];
    op->state = (uint8_t)st;
    op->complete = s->now;
    s->pending_ops[p] = s->pending_ops[--s->n_pending_ops];
}

/* Complete what node nd can answer now that it applied up to nd->applied. */
static void lin_resolve_node(rsim *s, rsim_node *nd) {
    size_t p = 0;
    while (p < s->n_pending_ops) { /* bounded: each pass removes or skips one */
        rsim_op *op = &s->ops[s->pending_ops[p]];
        if (op->node != (int)nd->id || op->index == 0 || op->index > nd->applied) {
            p++;
            continue;
        }
        if (op->is_read) {
            op->value = lin_value(nd->kv[op->key]);
            lin_finish(s, p, RSIM_OP_OK);
        } else {
            /* applied entries are committed: the proposal is in the
            ** committed history at its index, or never will be */
            bool won = op->index <= s->n_committed && s->committed[op->index - 1].term == op->term;
            lin_finish(s, p, won ? RSIM_OP_OK : RSIM_OP_DROPPED);
        }
    }
}

/* Node nd crashed (or the run ended: nd NULL): its clients give up. */
static void lin_give_up(rsim *s, rsim_node *nd) {
    size_t p = 0;
    while (p < s->n_pending_ops) {
        rsim_op *op = &s->ops[s->pending_ops[p]];
        if (nd != NULL && op->node != (int)nd->id)
            p++;
        else
            lin_finish(s, p, op->is_read ? RSIM_OP_DROPPED : RSIM_OP_INFO);
    }
}

/* The pending read op of read id rid, or -1. */
static long lin_find_read(rsim *s, uint64_t rid) {
    size_t p;
    for (p = 0; p < s->n_pending_ops; p++)
        if (s->ops[s->pending_ops[p]].is_read && s->ops[s->pending_ops[p]].read_id == rid)
            return (long)s->pending_ops[p];
    return -1;
}

static void lin_drop(rsim *s, long opi) {
    size_t p;
    if (opi < 0)
        return;
    for (p = 0; p < s->n_pending_ops; p++)
        if (s->pending_ops[p] == (uint32_t)opi) {
            lin_finish(s, p, RSIM_OP_DROPPED);
            return;
        }
}

/* After a propose step: the entry's index and term, or a refusal. */
static void lin_proposed(rsim *s, long opi, int rc, const raft_update *up) {
    if (opi < 0 || s->ops[opi].state != RSIM_OP_PENDING)
        return;
    if (rc != 0 || up->proposed_index == 0) {
        lin_drop(s, opi);
        return;
    }
    s->ops[opi].index = up->proposed_index;
    s->ops[opi].term = up->proposed_term;
    lin_resolve_node(s, &s->nodes[s->ops[opi].node - 1]);
}

/* Append a decimal (with a leading space) at p; returns the new end. */
static char *put_i64(char *p, int64_t v) {
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    *p++ = ' ';
    if (v < 0)
        *p++ = '-';
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

int rsim_check_history(rsim *s, rsim_run_stats *stats) {
    base_buf text = {0};
    chaos_history *h = NULL;
    chaos_result res;
    chaos_register_opts o;
    char err[256] = "";
    size_t i, n = 0;
    int rc, out = 0;
    lin_give_up(s, NULL);
    memset(&res, 0, sizeof(res));
    for (i = 0; i < s->n_ops; i++) {
        const rsim_op *op = &s->ops[i];
        if (op->state == RSIM_OP_DROPPED)
            continue;
        char line[160], *p = line;
        n++;
        /* "<process> ok|info <invoke> <complete>|- read|write <key> <value>" */
        p = put_i64(p, (int64_t)i);
        memcpy(p, op->state == RSIM_OP_OK ? " ok" : " info", op->state == RSIM_OP_OK ? 3 : 5);
        p += op->state == RSIM_OP_OK ? 3 : 5;
        p = put_i64(p, op->invoke);
        if (op->state == RSIM_OP_OK) {
            p = put_i64(p, op->complete);
        } else {
            memcpy(p, " -", 2);
            p += 2;
        }
        memcpy(p, op->is_read ? " read" : " write", op->is_read ? 5 : 6);
        p += op->is_read ? 5 : 6;
        p = put_i64(p, op->key);
        p = put_i64(p, op->value);
        *p++ = '\n';
        if (base_buf_append(&text, line + 1, (size_t)(p - line - 1)) != 0)
            abort(); /* the simulator itself does not test OOM */
    }
    if (n == 0)
        goto cleanup;
    if (s->lin_overflow) {
        if (stats != NULL)
            stats->lin_unknown_keys += RSIM_KEYS;
        goto cleanup;
    }
    rc = chaos_history_parse((const char *)text.data, text.len, &h, err, sizeof(err));
    if (rc != 0) {
        rsim_fail(s, "client history: parse error %d: %s", rc, err);
        out = -1;
        goto cleanup;
    }
    memset(&o, 0, sizeof(o));
    o.initial = 0;
    rc = chaos_check_register(h, &o, &res);
    if (rc != 0) {
        rsim_fail(s, "client history: register checker error %d: %s", rc,
                  res.report.data ? (const char *)res.report.data : "");
        out = -1;
        goto cleanup;
    }
    if (stats != NULL) {
        uint8_t used[RSIM_KEYS] = {0};
        for (i = 0; i < s->n_ops; i++)
            if (s->ops[i].state != RSIM_OP_DROPPED)
                used[s->ops[i].key] = 1;
        for (i = 0; i < RSIM_KEYS; i++)
            stats->lin_keys += used[i];
        stats->lin_ops += n;
        if (res.verdict != CHAOS_VALID && res.report.data != NULL) {
            /* one "register key K: unknown, ..." line per key given up on */
            const char *q = (const char *)res.report.data;
            uint64_t k = 0;
            while ((q = strstr(q, ": unknown, ")) != NULL) {
                k++;
                q++;
            }
            stats->lin_unknown_keys += k ? k : (res.verdict == CHAOS_UNKNOWN); /* no ok op */
        }
    }
    if (res.verdict == CHAOS_INVALID && !s->lin_stale_follower_reads) {
        fprintf(stderr, "seed %llu: client history NOT linearizable:\n%s\n",
                (unsigned long long)s->seed, res.report.data ? (const char *)res.report.data : "");
        if (getenv("RSIM_HISTORY") != NULL)
            fwrite(text.data, 1, text.len, stderr);
    }
    if (res.verdict == CHAOS_INVALID) {
        rsim_fail(s, "client history not linearizable (register checker: invalid): %.300s",
                  res.report.data ? (const char *)res.report.data : "");
        out = -1;
    }
cleanup:
    chaos_result_free(&res);
    chaos_history_free(h);
    base_buf_free(&text);
    return out;
}

/* ---- snapshots of the key-value map ------------------------------------------- */

#define RSIM_SNAP_BYTES (RSIM_KEYS * 8)

/* Load a snapshot into nd's map, checking it against the committed history
** replayed up to its index (state machine safety across snapshots). */
static void load_snapshot(rsim *s, rsim_node *nd, const raft_snapshot *sn) {
    uint64_t kv[RSIM_KEYS], want[RSIM_KEYS], i;
    if (sn->len != RSIM_SNAP_BYTES || sn->data == NULL) {
        rsim_fail(s, "node %llu: snapshot %llu of %zu bytes", (unsigned long long)nd->id,
                  (unsigned long long)sn->index, sn->len);
        return;
    }
    memcpy(kv, sn->data, sizeof(kv));
    if (sn->index > s->n_committed) {
        rsim_fail(s, "node %llu: snapshot at %llu beyond anything committed (%zu)",
                  (unsigned long long)nd->id, (unsigned long long)sn->index, s->n_committed);
        return;
    }
    memset(want, 0, sizeof(want));
    for (i = 1; i <= sn->index; i++)
        if (s->committed[i - 1].put)
            want[s->committed[i - 1].key] = s->committed[i - 1].value;
    if (memcmp(kv, want, sizeof(kv)) != 0) {
        rsim_fail(s, "node %llu: snapshot at %llu differs from the committed history",
                  (unsigned long long)nd->id, (unsigned long long)sn->index);
        return;
    }
    memcpy(nd->kv, kv, sizeof(kv));
    nd->applied = sn->index;
}

/* ---- update handling ------------------------------------------------------------ */

static void handle_update(rsim *s, rsim_node *nd, const raft_update *up) {
    size_t i;
    if (up->persist_seq != 0) {
        rsim_write *w;
        for (i = 0; i < up->n_entries; i++)
            check_log_matching(s, nd, &up->entries[i]);
        nd->pending = grow(nd->pending, &nd->cap_pending, nd->n_pending + 1, sizeof(rsim_write));
        w = &nd->pending[nd->n_pending++];
        memset(w, 0, sizeof(*w));
        w->has_hs = up->hard_state_changed;
        w->hs = up->hard_state;
        if (up->snapshot != NULL) {
            w->has_snap = true;
            w->snap = *up->snapshot;
            w->snap_data = base_malloc(up->snapshot->len ? up->snapshot->len : 1);
            if (w->snap_data == NULL)
                abort();
            if (up->snapshot->len)
                memcpy(w->snap_data, up->snapshot->data, up->snapshot->len);
            w->snap.data = w->snap_data;
        }
        if (up->n_entries > 0) {
            w->entries = copy_entries(up->entries, up->n_entries);
            w->n_entries = up->n_entries;
        }
        nd->pending_seq = up->persist_seq;
        if (nd->sync_at < 0)
            nd->sync_at = s->now + (s->manual ? 0 : rnd_range(s, 0, s->sync_delay_max));
    }
    for (i = 0; i < up->n_messages; i++)
        send_message(s, &up->messages[i]);
    for (i = 0; i < up->n_messages_after_persist; i++) {
        if (nd->n_pending == 0) {
            send_message(s, &up->messages_after_persist[i]);
        } else {
            nd->held = grow(nd->held, &nd->cap_held, nd->n_held + 1, sizeof(raft_message));
            if (raft_message_clone(&up->messages_after_persist[i], &nd->held[nd->n_held++]) != 0)
                abort();
        }
    }
    if (up->snapshot_wanted) {
        if (!s->base.lazy_snapshots)
            rsim_fail(s, "node %llu: snapshot_wanted without lazy snapshots",
                      (unsigned long long)nd->id);
        nd->snap_wanted = true;
    }
    check_node(s, nd);
    if (up->snapshot != NULL && !s->failed) {
        if (up->persist_seq == 0)
            rsim_fail(s, "node %llu: a snapshot outside a persist", (unsigned long long)nd->id);
        if (up->snapshot->index <= nd->applied)
            rsim_fail(s, "node %llu: snapshot %llu at or below applied %llu",
                      (unsigned long long)nd->id, (unsigned long long)up->snapshot->index,
                      (unsigned long long)nd->applied);
        load_snapshot(s, nd, up->snapshot);
        s->stat_installs++;
        trace(s, "  %llu installs snapshot %llu/%llu%s\n", (unsigned long long)nd->id,
              (unsigned long long)up->snapshot->index, (unsigned long long)up->snapshot->term,
              up->snapshot->keep_log ? " (keeps log)" : "");
    }
    for (i = 0; i < up->n_committed && !s->failed; i++)
        apply_entry(s, nd, &up->committed[i]);
    for (i = 0; i < up->n_reads && !s->failed; i++) {
        const raft_read_state *r = &up->reads[i];
        if (r->status != RAFT_READ_OK) {
            trace(s, "  %llu read %llu aborted\n", (unsigned long long)nd->id,
                  (unsigned long long)r->read_id);
            lin_drop(s, lin_find_read(s, r->read_id));
            continue;
        }
        if (r->read_id >= RSIM_MAX_READS || r->index < s->read_floor[r->read_id])
            rsim_fail(s, "stale read: node %llu read %llu at index %llu, but %llu was committed "
                      "before it was asked (%s)", (unsigned long long)nd->id,
                      (unsigned long long)r->read_id, (unsigned long long)r->index,
                      (unsigned long long)s->read_floor[r->read_id % RSIM_MAX_READS],
                      r->by_lease ? "lease" : "read-index");
        s->stat_reads_ok++;
        if (r->by_lease)
            s->stat_lease_reads++;
        trace(s, "  %llu read %llu ok index=%llu%s\n", (unsigned long long)nd->id,
              (unsigned long long)r->read_id, (unsigned long long)r->index,
              r->by_lease ? " (lease)" : "");
        if (s->n_pending_ops > 0) {
            long opi = lin_find_read(s, r->read_id);
            if (opi >= 0 && s->ops[opi].index == 0)
                s->ops[opi].index = r->index > 0 ? r->index : 1; /* answered once applied */
        }
    }
    if (s->n_pending_ops > 0)
        lin_resolve_node(s, nd);
    if (s->manual && !s->manual_sync && nd->n_pending > 0)
        rsim_sync(s, (int)nd->id);
}

int rsim_step(rsim *s, int id, const raft_event *ev, raft_update *out_copy) {
    rsim_node *nd = &s->nodes[id - 1];
    raft_update up;
    int rc;
    if (!nd->up)
        return RAFT_ERR_INVALID;
    s->steps++;
    if (s->oom_step != 0 && s->steps == s->oom_step)
        base_alloc_fail_after(s->oom_after);
    rc = raft_step(nd->raft, ev, &up);
    base_alloc_fail_after(-1);
    if (rc == RAFT_ERR_NOMEM)
        s->oom_errors++;
    if (out_copy != NULL)
        *out_copy = up; /* scalars only are meaningful after handle_update */
    handle_update(s, nd, &up);
    return rc;
}

void rsim_sync(rsim *s, int id) {
    rsim_node *nd = &s->nodes[id - 1];
    raft_event ev;
    size_t i, n_held;
    raft_message *held;
    if (!nd->up || nd->n_pending == 0) {
        nd->sync_at = -1;
        return;
    }
    for (i = 0; i < nd->n_pending; i++) {
        rl_write(s, nd, &nd->pending[i]);
        disk_apply(nd, &nd->pending[i]);
    }
    rl_sync(s, nd); /* durable before anything is sent or reported */
    nd->n_pending = 0;
    nd->sync_at = -1;
    /* detach the held list: stepping may hold new messages */
    held = nd->held;
    n_held = nd->n_held;
    nd->held = NULL;
    nd->n_held = 0;
    nd->cap_held = 0;
    for (i = 0; i < n_held; i++) {
        send_message(s, &held[i]);
        raft_message_release(&held[i]);
    }
    base_free(held);
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_PERSISTED;
    ev.persist_seq = nd->pending_seq;
    rsim_step(s, id, &ev, NULL);
}

int rsim_tick(rsim *s, int id) {
    raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_TICK;
    return rsim_step(s, id, &ev, NULL);
}

int rsim_propose(rsim *s, int id, uint8_t key, uint64_t value) {
    uint8_t buf[17];
    raft_proposal p;
    raft_event ev;
    raft_update up;
    uint64_t client = ++s->next_client_id;
    long opi = lin_add(s, false, id, key, lin_value(value));
    int rc;
    buf[0] = key;
    memcpy(buf + 1, &value, 8);
    memcpy(buf + 9, &client, 8);
    p.data = buf;
    p.len = sizeof(buf);
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_PROPOSE;
    ev.proposals = &p;
    ev.n_proposals = 1;
    rc = rsim_step(s, id, &ev, &up);
    lin_proposed(s, opi, rc, &up);
    return rc;
}

int rsim_read(rsim *s, int id, bool allow_lease) {
    raft_event ev;
    uint64_t rid = s->next_read_id++;
    rsim_node *nd = &s->nodes[id - 1];
    long opi;
    int rc;
    if (rid >= RSIM_MAX_READS)
        return RAFT_ERR_BUSY;
    /* the key this client reads: spread over the keys by read id */
    opi = lin_add(s, true, id, (uint8_t)((rid * 0x9E3779B97F4A7C15ULL) >> 61), 0);
    if (opi >= 0 && s->lin_stale_follower_reads && nd->up && nd->role != RAFT_LEADER) {
        /* the test-only bug: answered from the local applied state */
        s->ops[opi].index = nd->applied > 0 ? nd->applied : 1;
        s->ops[opi].value = lin_value(nd->kv[s->ops[opi].key]);
        lin_finish(s, s->n_pending_ops - 1, RSIM_OP_OK);
        return 0;
    }
    if (opi >= 0)
        s->ops[opi].read_id = rid;
    s->read_floor[rid] = s->n_committed; /* everything committed anywhere so far */
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_READ;
    ev.read_id = rid;
    ev.allow_lease = allow_lease;
    rc = rsim_step(s, id, &ev, NULL);
    if (rc != 0)
        lin_drop(s, opi);
    return rc;
}

/* crash: the real log (if any) keeps the same prefix, may get a torn
** write, and is closed. */
static void node_drop_volatile(rsim_node *nd, rsim *s, bool keep_prefix, bool crash) {
    size_t i, keep = 0;
    if (keep_prefix && nd->n_pending > 0)
        keep = (size_t)rnd_range(s, 0, (int)nd->n_pending);
    for (i = 0; i < keep; i++)
        rl_write(s, nd, &nd->pending[i]);
    if (keep > 0)
        rl_sync(s, nd);
    if (crash)
        rl_crash(s, nd, keep < nd->n_pending ? &nd->pending[keep] : NULL);
    for (i = 0; i < nd->n_pending; i++) {
        if (i < keep) {
            disk_apply(nd, &nd->pending[i]);
        } else {
            free_entries(nd->pending[i].entries, nd->pending[i].n_entries);
            base_free(nd->pending[i].snap_data);
        }
    }
    nd->n_pending = 0;
    for (i = 0; i < nd->n_held; i++)
        raft_message_release(&nd->held[i]);
    nd->n_held = 0;
    nd->sync_at = -1;
}

void rsim_crash(rsim *s, int id, bool keep_prefix) {
    rsim_node *nd = &s->nodes[id - 1];
    if (!nd->up)
        return;
    node_drop_volatile(nd, s, keep_prefix, true);
    nd->snap_wanted = false;
    lin_give_up(s, nd);
    raft_node_free(nd->raft);
    nd->raft = NULL;
    nd->up = false;
    s->stat_crashes++;
    trace(s, "  %llu crashed\n", (unsigned long long)nd->id);
    check_durable_majority(s);
}

int rsim_restart(rsim *s, int id) {
    rsim_node *nd = &s->nodes[id - 1];
    raft_config cfg = s->base;
    raft_status st;
    int rc;
    if (nd->up)
        return 0;
    cfg.id = nd->id;
    cfg.applied = 0; /* the key-value map is volatile: snapshot + replay of the log */
    cfg.random_seed = s->seed * 31 + nd->id + (uint64_t)s->now * 7919;
    if (s->real_log) {
        /* restart from what the real log returns (checked against the disk) */
        raft_hard_state rhs;
        raft_entry *res;
        size_t rn;
        if (rl_recover(s, nd, &rhs, &res, &rn) != 0)
            return RAFT_ERR_INVALID;
        rc = raft_node_restore(&cfg, &rhs, nd->dsnap.index ? &nd->dsnap : NULL, res, rn,
                               &nd->raft);
        raft_log_entries_free(res, rn);
    } else {
        rc = raft_node_restore(&cfg, &nd->dhs, nd->dsnap.index ? &nd->dsnap : NULL, nd->dlog,
                               nd->dlen, &nd->raft);
    }
    if (rc != 0) {
        rsim_fail(s, "restart of %llu failed: %s", (unsigned long long)nd->id, raft_strerror(rc));
        return rc;
    }
    nd->up = true;
    nd->applied = 0;
    memset(nd->kv, 0, sizeof(nd->kv));
    if (nd->dsnap.index > 0)
        load_snapshot(s, nd, &nd->dsnap);
    raft_node_status(nd->raft, &st);
    nd->commit_checked = 0;
    nd->conf_checked_last = nd->conf_checked_term = nd->conf_checked_snap = UINT64_MAX;
    nd->role = st.role;
    nd->term = st.term;
    trace(s, "  %llu restarted term=%llu commit=%llu last=%llu\n", (unsigned long long)nd->id,
          (unsigned long long)st.term, (unsigned long long)st.commit,
          (unsigned long long)st.last_index);
    check_node(s, nd);
    return 0;
}

void rsim_heal(rsim *s) {
    memset(s->blocked, 0, sizeof(s->blocked));
}

int rsim_conf(rsim *s, int id, raft_conf_change_type type, int node) {
    raft_event ev;
    raft_update up;
    int rc;
    if (id < 1 || id > s->n || !s->nodes[id - 1].up)
        return RAFT_ERR_INVALID;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_CONF_CHANGE;
    ev.conf_change = type;
    ev.conf_node = (uint64_t)node;
    rc = rsim_step(s, id, &ev, &up);
    if (rc == 0)
        s->stat_conf_changes++;
    return rc;
}

int rsim_compact(rsim *s, int id) {
    rsim_node *nd = &s->nodes[id - 1];
    raft_event ev;
    raft_snapshot sn;
    raft_membership conf;
    uint8_t buf[RSIM_SNAP_BYTES];
    uint8_t *copy;
    bool conflict;
    int rc;
    if (!nd->up || nd->applied <= nd->dsnap.index)
        return RAFT_ERR_INVALID;
    memcpy(buf, nd->kv, sizeof(buf));
    if (raft_node_membership_at(nd->raft, nd->applied, &conf) != 0)
        rsim_fail(s, "node %llu: no configuration at applied %llu", (unsigned long long)nd->id,
                  (unsigned long long)nd->applied);
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_COMPACT;
    ev.compact_index = nd->applied;
    if (!s->base.lazy_snapshots) {
        ev.snapshot_data = buf;
        ev.snapshot_len = sizeof(buf);
    }
    rc = rsim_step(s, id, &ev, NULL);
    if (rc != 0)
        return rc;
    /* The application writes the snapshot durably (the core already
    ** dropped its prefix; no crash point in between here), then drops the
    ** log prefix it covers. Lazy: the core keeps no bytes of it. */
    raft_node_snapshot(nd->raft, &sn);
    if (sn.index != ev.compact_index ||
        (sn.len != sizeof(buf) && !(s->base.lazy_snapshots && sn.len == 0)) ||
        (sn.len > 0 && memcmp(sn.data, buf, sizeof(buf)) != 0) ||
        memcmp(&sn.membership, &conf, sizeof(conf)) != 0) {
        rsim_fail(s, "node %llu: compact to %llu left snapshot %llu", (unsigned long long)nd->id,
                  (unsigned long long)ev.compact_index, (unsigned long long)sn.index);
        return RAFT_ERR_INVALID;
    }
    copy = base_malloc(sizeof(buf));
    if (copy == NULL)
        abort();
    memcpy(copy, buf, sizeof(buf));
    sn.data = copy;
    sn.len = sizeof(buf);
    /* A snapshot installed from the leader but not yet durable may have
    ** moved applied past a stored entry of another term at sn.index (its
    ** pending write will delete the whole log): entries after a conflicting
    ** one are not part of this history either, so drop them all. */
    conflict = false;
    if (sn.index > nd->dsnap.index && sn.index <= nd->dsnap.index + nd->dlen)
        conflict = nd->dlog[sn.index - nd->dsnap.index - 1].term != sn.term;
    disk_set_snapshot(nd, &sn, copy);
    disk_drop_prefix(nd, sn.index, !conflict);
    rl_compact(s, nd, sn.index, sn.term, conflict);
    s->stat_compactions++;
    trace(s, "  %llu compacted to %llu/%llu\n", (unsigned long long)nd->id,
          (unsigned long long)sn.index, (unsigned long long)sn.term);
    return 0;
}

bool rsim_is_member(rsim *s, int leader, int id) {
    raft_membership c;
    if (leader < 1 || leader > s->n || !s->nodes[leader - 1].up)
        return false;
    raft_node_membership(s->nodes[leader - 1].raft, &c);
    return raft_membership_is_voter(&c, (uint64_t)id) || raft_membership_is_learner(&c, (uint64_t)id);
}

/* ---- delivery ------------------------------------------------------------------ */

static void deliver_one(rsim *s, size_t i) {
    raft_message m = s->net[i].m;
    raft_event ev;
    int to = (int)m.to, from = (int)m.from;
    memset(&s->net[i].m, 0, sizeof(raft_message)); /* we own m now */
    memmove(&s->net[i], &s->net[i + 1], (s->n_net - i - 1) * sizeof(rsim_msg));
    s->n_net--;
    if (to < 1 || to > s->n || from < 1 || from > s->n || s->blocked[from - 1][to - 1] ||
        !s->nodes[to - 1].up) {
        if (s->trace != NULL) {
            trace(s, "  dropped ");
            rsim_format_message(&m, s->trace);
            trace(s, "\n");
        }
        raft_message_release(&m);
        return;
    }
    if (s->trace != NULL) {
        if (!s->manual)
            trace(s, "t=%lld ", (long long)s->now);
        rsim_format_message(&m, s->trace);
        trace(s, "\n");
    }
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_MESSAGE;
    ev.message = &m;
    rsim_step(s, to, &ev, NULL);
    raft_message_release(&m);
}

int rsim_deliver(rsim *s, int from, int to, int max_rounds) {
    int round, delivered = 0;
    for (round = 0; round < max_rounds && !s->failed; round++) {
        size_t i = 0, n_start = s->n_net, seen = 0;
        bool any = false;
        /* one pass over the messages queued at the start of the round */
        while (i < s->n_net && seen < n_start && !s->failed) {
            raft_message *m = &s->net[i].m;
            seen++;
            if ((from == 0 || (int)m->from == from) && (to == 0 || (int)m->to == to)) {
                deliver_one(s, i);
                delivered++;
                any = true;
            } else {
                i++;
            }
        }
        if (!any)
            break;
    }
    return delivered;
}

int rsim_drop(rsim *s, int from, int to) {
    size_t i = 0;
    int dropped = 0;
    while (i < s->n_net) {
        raft_message *m = &s->net[i].m;
        if ((from == 0 || (int)m->from == from) && (to == 0 || (int)m->to == to)) {
            net_remove(s, i);
            dropped++;
        } else {
            i++;
        }
    }
    return dropped;
}

/* ---- lifecycle ----------------------------------------------------------------- */

int rsim_init(rsim *s, int n, uint64_t seed, bool manual, const raft_config *tweak) {
    int i, j;
    memset(s, 0, sizeof(*s));
    if (n < 1 || n > RSIM_MAX_NODES)
        return RAFT_ERR_INVALID;
    s->n = n;
    s->seed = seed;
    s->rng = seed;
    s->manual = manual;
    s->next_read_id = 1;
    if (tweak != NULL)
        s->base = *tweak;
    else
        raft_config_default(&s->base);
    s->n_boot = (s->base.n_voters >= 1 && s->base.n_voters < (size_t)n) ? (int)s->base.n_voters : n;
    s->base.n_voters = (size_t)s->n_boot;
    s->base.n_learners = 0;
    for (i = 0; i < s->n_boot; i++)
        s->base.voters[i] = (uint64_t)(i + 1);
    s->min_voters = (size_t)s->n_boot;
    s->delay_min = 1;
    s->delay_max = 5;
    s->sync_delay_max = 3;
    for (i = 0; i < n; i++) {
        rsim_node *nd = &s->nodes[i];
        raft_config cfg = s->base;
        int rc;
        nd->id = (uint64_t)(i + 1);
        nd->sync_at = -1;
        cfg.id = nd->id;
        cfg.random_seed = seed * 1000003ULL + nd->id;
        rc = raft_node_new(&cfg, NULL, NULL, 0, &nd->raft);
        if (rc != 0) {
            for (j = 0; j < i; j++)
                raft_node_free(s->nodes[j].raft);
            return rc;
        }
        nd->up = true;
    }
    return 0;
}

void rsim_free(rsim *s) {
    int i;
    size_t k;
    for (i = 0; i < s->n; i++) {
        rsim_node *nd = &s->nodes[i];
        if (nd->up)
            node_drop_volatile(nd, s, false, false);
        if (nd->rlog != NULL)
            raft_log_close(nd->rlog);
        raft_node_free(nd->raft);
        free_entries(nd->dlog, nd->dlen);
        base_free(nd->dsnap_data);
        base_free(nd->pending);
        base_free(nd->held);
    }
    for (k = 0; k < s->n_net; k++)
        raft_message_release(&s->net[k].m);
    base_free(s->net);
    base_free(s->leader_of_term);
    base_free(s->committed);
    base_free(s->reg);
    base_free(s->ops);
    base_free(s->pending_ops);
    memset(s, 0, sizeof(*s));
}

/* ---- random runs ---------------------------------------------------------------- */

#define RSIM_TICK_UNITS 10        /* time units per Raft tick */
#define RSIM_FAULT_TICKS 400      /* faults happen during this many ticks */
#define RSIM_LIVENESS_TICKS 300   /* then: a leader and a commit within this */

static void deliver_due(rsim *s) {
    size_t i = 0;
    /* Bounded: each pass removes or skips every message once. Messages
    ** produced while delivering get a later delivery time (delay >= 1). */
    while (i < s->n_net && !s->failed) {
        if (s->net[i].deliver_at <= s->now)
            deliver_one(s, i);
        else
            i++;
    }
}

static int pick_up_node(rsim *s) {
    int tries;
    for (tries = 0; tries < 16; tries++) {
        int id = rnd_range(s, 1, s->n);
        if (s->nodes[id - 1].up)
            return id;
    }
    return 0;
}

static int find_leader(rsim *s) {
    int i, best = 0;
    uint64_t best_term = 0;
    for (i = 0; i < s->n; i++) {
        rsim_node *nd = &s->nodes[i];
        if (nd->up && nd->role == RAFT_LEADER && nd->term >= best_term) {
            best = i + 1;
            best_term = nd->term;
        }
    }
    return best;
}

/* Any node that believes it leads (stale leaders included), or 0. */
static int pick_some_leader(rsim *s) {
    int i, c = 0, ids[RSIM_MAX_NODES];
    for (i = 0; i < s->n; i++)
        if (s->nodes[i].up && s->nodes[i].role == RAFT_LEADER)
            ids[c++] = i + 1;
    return c ? ids[rnd(s) % (uint64_t)c] : 0;
}

static void random_partition(rsim *s) {
    int a, b, i, j;
    memset(s->blocked, 0, sizeof(s->blocked));
    switch (rnd_range(s, 0, 2)) {
    case 0: { /* symmetric split */
        bool side[RSIM_MAX_NODES];
        for (i = 0; i < s->n; i++)
            side[i] = (rnd(s) & 1) != 0;
        for (i = 0; i < s->n; i++)
            for (j = 0; j < s->n; j++)
                if (side[i] != side[j])
                    s->blocked[i][j] = true;
        break;
    }
    case 1: /* isolate one node */
        a = rnd_range(s, 0, s->n - 1);
        for (i = 0; i < s->n; i++)
            if (i != a)
                s->blocked[a][i] = s->blocked[i][a] = true;
        break;
    default: /* one-way links */
        for (i = 0; i < 2; i++) {
            a = rnd_range(s, 0, s->n - 1);
            b = rnd_range(s, 0, s->n - 1);
            if (a != b)
                s->blocked[a][b] = true;
        }
    }
}

/* A random membership change at the leader: add a learner, promote one,
** remove a voter (the leader itself too; or first hand leadership to
** another voter, the polite path), remove a learner, or add a voter
** directly. Refusals (a change pending, a learner behind) are normal. */
static void random_conf_change(rsim *s, int leader) {
    raft_membership c;
    int cand[RSIM_MAX_NODES], nc = 0, i, op = rnd_range(s, 0, 9);
    raft_node_membership(s->nodes[leader - 1].raft, &c);
    if (op <= 2 || op == 9) { /* add: a learner (or, rarely, a voter) */
        for (i = 1; i <= s->n; i++)
            if (!raft_membership_is_voter(&c, (uint64_t)i) && !raft_membership_is_learner(&c, (uint64_t)i))
                cand[nc++] = i;
        /* lazy snapshots name their members: a voter added at once that
        ** needs one before its addition commits would wait forever */
        if (nc > 0)
            rsim_conf(s, leader,
                      op == 9 && !s->base.lazy_snapshots ? RAFT_CONF_ADD_VOTER
                                                         : RAFT_CONF_ADD_LEARNER,
                      cand[rnd(s) % (uint64_t)nc]);
    } else if (op <= 5) { /* promote */
        for (i = 0; i < (int)c.n_learners; i++)
            cand[nc++] = (int)c.learners[i];
        if (nc > 0)
            rsim_conf(s, leader, RAFT_CONF_PROMOTE, cand[rnd(s) % (uint64_t)nc]);
    } else if (op <= 7) { /* remove a voter, while at least 2 stay */
        int victim;
        if (c.n_voters <= 2)
            return;
        victim = (int)c.voters[rnd(s) % c.n_voters];
        if (victim == leader && (rnd(s) & 1)) {
            raft_event ev;
            memset(&ev, 0, sizeof(ev));
            ev.type = RAFT_EVENT_TRANSFER;
            ev.transfer_to = c.voters[0] == (uint64_t)leader ? c.voters[1] : c.voters[0];
            rsim_step(s, leader, &ev, NULL);
            return;
        }
        rsim_conf(s, leader, RAFT_CONF_REMOVE, victim);
    } else { /* remove a learner */
        for (i = 0; i < (int)c.n_learners; i++)
            cand[nc++] = (int)c.learners[i];
        if (nc > 0)
            rsim_conf(s, leader, RAFT_CONF_REMOVE, cand[rnd(s) % (uint64_t)nc]);
    }
}

int rsim_serve_snapshot(rsim *s, int id) {
    rsim_node *nd = &s->nodes[id - 1];
    raft_event ev;
    uint8_t buf[RSIM_SNAP_BYTES];
    int rc;
    if (!nd->up)
        return RAFT_ERR_INVALID;
    nd->snap_wanted = false; /* the core asks again while a follower waits */
    memcpy(buf, nd->kv, sizeof(buf));
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_SNAPSHOT;
    ev.snapshot_index = nd->applied;
    ev.snapshot_data = buf;
    ev.snapshot_len = sizeof(buf);
    rc = rsim_step(s, id, &ev, NULL);
    if (rc == 0) {
        s->stat_lazy_snapshots++;
        trace(s, "  %llu serves a snapshot at %llu\n", (unsigned long long)nd->id,
              (unsigned long long)nd->applied);
    }
    return rc;
}

static int run_seed(uint64_t seed, const char *real_dir, const rsim_run_opts *opts,
                    rsim_run_stats *stats, char *fail_msg, size_t fail_msg_size) {
    rsim sim, *s = &sim;
    raft_config cfg;
    int n, profile, crash_pct, partition_pct, propose_pct, read_pct, transfer_pct;
    int conf_pct = 0, compact_pct = 0;
    uint64_t conf_tried_term = 0;
    int64_t tick, end_tick;
    uint64_t marker_index = 0, marker_term = 0;
    bool live = false;
    int i, rc, attack_leader = 0, attack_cut_at = 0;
    uint64_t r0 = seed ^ 0xA5A5A5A5DEADBEEFULL;
    base_buf trace_buf = {0};

    /* the profile comes from the seed itself */
    r0 = (r0 ^ (r0 >> 31)) * 0x7FB5D329728EA185ULL;
    n = (r0 & 1) ? 5 : 3;
    profile = (int)((r0 >> 8) % 9);
    raft_config_default(&cfg);
    cfg.max_inflight_msgs = 1 + (int)((r0 >> 16) % 4);
    cfg.max_msg_entries = 1 + (size_t)((r0 >> 20) % 8);
    if (profile >= 7) {
        /* membership and snapshots: 5 nodes, 3 (or 1) bootstrap voters and
        ** spares; snapshots of 64 bytes (+ config) in chunks of 8..40 */
        n = 5;
        cfg.n_voters = ((r0 >> 24) % 4 == 0) ? 1 : 3;
        cfg.snapshot_chunk_bytes = 8 + (size_t)((r0 >> 28) % 33);
        cfg.snapshot_resend_ticks = 2 + (int)((r0 >> 34) % 10);
        /* half the seeds: snapshots made only when a follower needs one */
        cfg.lazy_snapshots = ((r0 >> 40) & 1) != 0;
    }
    rc = rsim_init(s, n, seed, false, &cfg);
    if (rc != 0) {
        snprintf(fail_msg, fail_msg_size, "init: %s", raft_strerror(rc));
        return -1;
    }
    if (real_dir != NULL && rsim_use_real_log(s, real_dir) != 0) {
        snprintf(fail_msg, fail_msg_size, "seed %llu: %s", (unsigned long long)seed, s->fail_msg);
        rsim_free(s);
        return -1;
    }
    s->lin_record = true;
    s->lin_stale_follower_reads = opts != NULL && opts->stale_follower_reads;
    if (getenv("RSIM_TRACE") != NULL)
        s->trace = &trace_buf; /* every delivery, role change, crash and read */
    crash_pct = 0;
    partition_pct = 0;
    propose_pct = 30;
    read_pct = 10;
    transfer_pct = 0;
    switch (profile) {
    case 0: /* lossy, duplicating, reordering network */
        s->drop_pct = 15;
        s->dup_pct = 10;
        s->delay_max = 20;
        break;
    case 1: /* partitions, symmetric and one-way */
        partition_pct = 5;
        s->drop_pct = 3;
        read_pct = 25;
        break;
    case 2: /* crashes (leaders first) with torn unsynced writes */
        crash_pct = 5;
        s->crash_keep_pct = 50;
        s->sync_delay_max = 20;
        break;
    case 3: /* everything */
        partition_pct = 4;
        crash_pct = 4;
        s->crash_keep_pct = 50;
        s->drop_pct = 8;
        s->dup_pct = 5;
        s->delay_max = 15;
        s->sync_delay_max = 10;
        transfer_pct = 3;
        read_pct = 20;
        propose_pct = 60;
        conf_pct = 2;
        compact_pct = 2;
        break;
    case 4: /* leadership transfers and lease reads */
        transfer_pct = 5;
        read_pct = 40;
        partition_pct = 2;
        s->delay_max = 10;
        break;
    case 6: /* lease attack: cut a follower off the leader, then the leader
            ** off everyone, while reads hammer every node that thinks it leads */
        read_pct = 90;
        propose_pct = 80;
        s->delay_max = 2; /* fast elections: margins of a few ticks matter */
        s->sync_delay_max = 1;
        break;
    case 7: /* membership churn with faults and snapshots */
        conf_pct = 10;
        compact_pct = 3;
        crash_pct = 3;
        s->crash_keep_pct = 50;
        partition_pct = 3;
        s->drop_pct = 5;
        s->dup_pct = 3;
        s->delay_max = 10;
        transfer_pct = 2;
        read_pct = 20;
        propose_pct = 60;
        break;
    case 8: /* compaction everywhere: laggards and joiners catch up by snapshot */
        conf_pct = 4;
        compact_pct = 15;
        crash_pct = 5;
        s->crash_keep_pct = 50;
        partition_pct = 4;
        s->drop_pct = 10;
        s->dup_pct = 5;
        s->delay_max = 15;
        s->sync_delay_max = 8;
        propose_pct = 70;
        break;
    default: /* leader churn: short outages of leaders under load */
        crash_pct = 8;
        s->crash_keep_pct = 30;
        s->drop_pct = 5;
        s->delay_max = 10;
        propose_pct = 80;
        break;
    }

    for (i = 0; i < s->n; i++) {
        s->nodes[i].tick_rate = rnd_range(s, 950, 1050);
        s->nodes[i].tick_acc = rnd_range(s, 0, 1000 * RSIM_TICK_UNITS - 1);
    }
    end_tick = RSIM_FAULT_TICKS + RSIM_LIVENESS_TICKS;
    for (tick = 0; tick < end_tick && !s->failed && !live; tick++) {
        bool faults = tick < RSIM_FAULT_TICKS;
        int u;
        if (tick == RSIM_FAULT_TICKS) {
            /* faults stop: heal, restart everyone, clean network */
            rsim_heal(s);
            for (i = 1; i <= s->n; i++)
                rsim_restart(s, i);
            s->drop_pct = 0;
            s->dup_pct = 0;
        }
        for (u = 0; u < RSIM_TICK_UNITS && !s->failed; u++) {
            s->now = tick * RSIM_TICK_UNITS + u;
            deliver_due(s);
            for (i = 1; i <= s->n; i++) {
                rsim_node *nd = &s->nodes[i - 1];
                if (nd->up && nd->sync_at >= 0 && nd->sync_at <= s->now)
                    rsim_sync(s, i);
                /* lazy snapshots: answered at once or a few units later */
                if (nd->up && nd->snap_wanted && chance(s, 30))
                    rsim_serve_snapshot(s, i);
            }
            if (conf_pct > 0 && faults) {
                /* a change proposed the moment a leader is elected: the
                ** window that the one-at-a-time safety fix closes */
                int l = find_leader(s);
                if (l != 0 && s->nodes[l - 1].term > conf_tried_term) {
                    conf_tried_term = s->nodes[l - 1].term;
                    if (rnd(s) & 1)
                        random_conf_change(s, l);
                }
            }
            if (profile == 6 && faults && (u & 1) == 0) {
                /* lease reads at whoever thinks it leads, all the time */
                int l = pick_some_leader(s);
                if (l != 0) {
                    /* the history keeps one of these in five (the index
                    ** check sees them all): few ops per key, a fast check */
                    s->lin_record = u == 0;
                    rsim_read(s, l, true);
                    s->lin_record = true;
                }
            }
            /* Each node's clock runs at its own rate (within +-5%, inside
            ** the lease drift allowance of 2 ticks in 10); visited in a
            ** random order. */
            {
                int start = rnd_range(s, 0, s->n - 1);
                for (i = 0; i < s->n; i++) {
                    int id = (start + i) % s->n + 1;
                    rsim_node *nd = &s->nodes[id - 1];
                    nd->tick_acc += nd->tick_rate;
                    if (nd->tick_acc >= 1000 * RSIM_TICK_UNITS) {
                        nd->tick_acc -= 1000 * RSIM_TICK_UNITS;
                        if (nd->up)
                            rsim_tick(s, id);
                    }
                }
            }
        }
        if (s->failed)
            break;
        if (faults) {
            int id, k;
            if (profile == 6) {
                /* Lease attack, in cycles of 30 ticks: heal; at +5 cut a
                ** follower C off the leader L (C's timer starts); a few ticks
                ** later L stops hearing anyone but is still heard, so it
                ** keeps whatever lease its last acks give. Without leader
                ** stickiness the others would elect C while L serves reads. */
                int phase = (int)(tick % 30);
                if (phase == 0) {
                    rsim_heal(s);
                    attack_leader = 0;
                } else if (phase == 5 && (attack_leader = find_leader(s)) != 0) {
                    int c = rnd_range(s, 1, s->n);
                    if (c == attack_leader)
                        c = c % s->n + 1;
                    s->blocked[attack_leader - 1][c - 1] = s->blocked[c - 1][attack_leader - 1] = true;
                    attack_cut_at = 5 + rnd_range(s, 0, 14);
                } else if (attack_leader != 0 && phase == attack_cut_at) {
                    for (k = 0; k < s->n; k++)
                        if (k != attack_leader - 1)
                            s->blocked[k][attack_leader - 1] = true;
                }
            }
            if (chance(s, partition_pct)) {
                if (rnd(s) & 1)
                    random_partition(s);
                else
                    rsim_heal(s);
            }
            if (chance(s, crash_pct) &&
                ((id = (rnd(s) & 1) ? find_leader(s) : 0) != 0 || (id = pick_up_node(s)) != 0)) {
                rsim_crash(s, id, chance(s, s->crash_keep_pct));
                s->nodes[id - 1].down_until = tick + rnd_range(s, 1, profile == 5 ? 15 : 40);
            }
            for (i = 1; i <= s->n; i++)
                if (!s->nodes[i - 1].up && s->nodes[i - 1].down_until <= tick)
                    rsim_restart(s, i);
            if (chance(s, transfer_pct) && (id = find_leader(s)) != 0) {
                raft_event ev;
                memset(&ev, 0, sizeof(ev));
                ev.type = RAFT_EVENT_TRANSFER;
                ev.transfer_to = (uint64_t)rnd_range(s, 1, s->n);
                rsim_step(s, id, &ev, NULL);
            }
            if (chance(s, conf_pct) && (id = find_leader(s)) != 0)
                random_conf_change(s, id);
            if (chance(s, compact_pct) && (id = pick_up_node(s)) != 0)
                rsim_compact(s, id);
            if (chance(s, propose_pct)) {
                id = (rnd(s) % 4) ? find_leader(s) : pick_up_node(s);
                if (profile == 6 && id == attack_leader)
                    id = 0; /* keep C's log as long as the others' */
                if (id != 0)
                    rsim_propose(s, id, (uint8_t)(rnd(s) % RSIM_KEYS), rnd(s));
            }
            if (chance(s, read_pct)) {
                id = (rnd(s) % 4) ? pick_some_leader(s) : pick_up_node(s);
                if (id != 0)
                    rsim_read(s, id, (rnd(s) & 1) != 0);
            }
        } else {
            /* liveness: a marker proposal must commit and be applied everywhere */
            int leader = find_leader(s);
            if (marker_index != 0 && marker_index <= s->n_committed &&
                s->committed[marker_index - 1].term != marker_term)
                marker_index = 0; /* lost to a leader change: propose again */
            if (marker_index != 0 && leader != 0 && s->nodes[leader - 1].term > marker_term &&
                (marker_index > s->n_committed || s->committed[marker_index - 1].term != marker_term))
                marker_index = 0; /* a newer leader may never commit it: propose again */
            if (marker_index == 0 && leader != 0) {
                raft_update up;
                uint8_t buf[17] = {0};
                raft_proposal p = {buf, sizeof(buf)};
                raft_event ev;
                long opi = lin_add(s, false, leader, 0, 0); /* a put of 0 at key 0 */
                memset(&ev, 0, sizeof(ev));
                ev.type = RAFT_EVENT_PROPOSE;
                ev.proposals = &p;
                ev.n_proposals = 1;
                rc = rsim_step(s, leader, &ev, &up);
                lin_proposed(s, opi, rc, &up);
                if (rc == 0) {
                    marker_index = up.proposed_index;
                    marker_term = up.proposed_term;
                }
            }
            if (marker_index != 0 && marker_index <= s->n_committed &&
                s->committed[marker_index - 1].term == marker_term && leader != 0) {
                live = true;
                for (i = 0; i < s->n; i++)
                    if (s->nodes[i].applied < marker_index && rsim_is_member(s, leader, i + 1))
                        live = false; /* removed nodes and spares are not waited for */
            }
        }
    }
    if (!s->failed && !live && getenv("RSIM_VERBOSE") != NULL) {
        for (i = 0; i < s->n; i++) {
            raft_status st;
            if (!s->nodes[i].up)
                continue;
            raft_node_status(s->nodes[i].raft, &st);
            fprintf(stderr, "  node %d %s term=%llu vote=%llu leader=%llu commit=%llu applied=%llu "
                    "last=%llu/%llu stable=%llu transfer=%llu pend=%zu held=%zu sync_at=%lld now=%lld\n", i + 1,
                    raft_role_name(st.role), (unsigned long long)st.term,
                    (unsigned long long)st.vote, (unsigned long long)st.leader,
                    (unsigned long long)st.commit, (unsigned long long)st.applied,
                    (unsigned long long)st.last_index, (unsigned long long)st.last_term,
                    (unsigned long long)st.stable_index, (unsigned long long)st.transfer_to,
                    s->nodes[i].n_pending, s->nodes[i].n_held, (long long)s->nodes[i].sync_at, (long long)s->now);
        }
        fprintf(stderr, "  marker %llu/%llu committed=%zu net=%zu\n", (unsigned long long)marker_index,
                (unsigned long long)marker_term, s->n_committed, s->n_net);
    }
    if (!s->failed && !live)
        rsim_fail(s, "liveness: no commit applied everywhere within %d ticks after faults stopped "
                  "(leader=%d)", RSIM_LIVENESS_TICKS, find_leader(s));
    if (!s->failed)
        check_durable_majority(s);
    if (!s->failed)
        rsim_check_history(s, stats);
    rc = s->failed ? -1 : 0;
    if (trace_buf.len > 0) {
        fwrite(trace_buf.data, 1, trace_buf.len, stderr);
        base_buf_free(&trace_buf);
    }
    if (getenv("RSIM_VERBOSE") != NULL)
        fprintf(stderr, "seed %llu n=%d profile=%d: committed=%zu elections=%llu crashes=%llu "
                "reads=%llu lease=%llu conf=%llu compactions=%llu installs=%llu lazy=%llu "
                "tick=%lld\n",
                (unsigned long long)seed, n, profile,
                s->n_committed, (unsigned long long)s->stat_elections,
                (unsigned long long)s->stat_crashes, (unsigned long long)s->stat_reads_ok,
                (unsigned long long)s->stat_lease_reads, (unsigned long long)s->stat_conf_changes,
                (unsigned long long)s->stat_compactions, (unsigned long long)s->stat_installs,
                (unsigned long long)s->stat_lazy_snapshots, (long long)tick);
    if (real_dir != NULL && getenv("RSIM_VERBOSE") != NULL)
        fprintf(stderr, "  real log: %llu restarts recovered, %llu torn writes, %llu segments "
                "purged\n", (unsigned long long)s->stat_log_restarts,
                (unsigned long long)s->stat_torn, (unsigned long long)s->stat_purged);
    if (s->failed)
        snprintf(fail_msg, fail_msg_size, "seed %llu (n=%d profile=%d tick=%lld): %s",
                 (unsigned long long)seed, n, profile, (long long)tick, s->fail_msg);
    rsim_free(s);
    return rc;
}

int rsim_run_seed(uint64_t seed, char *fail_msg, size_t fail_msg_size) {
    return run_seed(seed, NULL, NULL, NULL, fail_msg, fail_msg_size);
}

int rsim_run_seed_real(uint64_t seed, const char *dir, char *fail_msg, size_t fail_msg_size) {
    return run_seed(seed, dir, NULL, NULL, fail_msg, fail_msg_size);
}

int rsim_run_seed_ex(uint64_t seed, const char *dir, const rsim_run_opts *opts,
                     rsim_run_stats *stats, char *fail_msg, size_t fail_msg_size) {
    return run_seed(seed, dir, opts, stats, fail_msg, fail_msg_size);
}
