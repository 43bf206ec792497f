/*
** raft/log.c: the segmented write-ahead log shared by every Raft group of a
** node (API in raft/raft.h, "the segmented log store"; on-disk format in
** raft/log_int.h; design in docs/raft.md, "The log on disk").
**
** Invariants:
**   - Records are only ever appended, to the current (last) segment. Before
**     a new segment is created the previous one is fdatasync'ed, and the new
**     file's header plus the directory are fsync'ed before any record goes
**     in. Hence every segment but the last is complete on disk, and only
**     the last one may have a torn tail after a crash.
**   - seq numbers: every call that writes gets append_seq + 1, assigned
**     under the mutex in write order. synced_seq <= append_seq; every write
**     with seq <= synced_seq is on disk (an fdatasync that started after it
**     was written has returned). Nobody learns "durable" otherwise.
**   - Per group: last_index == compact_index + n_slots; slot k describes
**     entry compact_index + 1 + k (term, segment, offset of its record).
**     Live entries' segments are non-decreasing with the index.
**   - A segment is deleted (purge) only if no group has a live entry, its
**     newest hard state or its compaction record in it, and it is not the
**     current one.
**   - Replay after a purge may meet a group whose older records are gone;
**     its prefix is then "unknown" until a compaction record covers it, and
**     open fails (RAFT_LOG_ERR_CORRUPT) if one never does.
**   - Once a write or fdatasync fails the log is poisoned: writes and syncs
**     return RAFT_LOG_ERR_IO forever (a failed fsync cannot be retried), and
**     options.on_failure runs once, at that moment (a node exits there).
**   - Injected faults (raft_log_inject_fault, tests only) act on the
**     fdatasyncs of group commits and roll-overs, never on what they cover:
**     an injected failure poisons the log exactly as a real one does.
** Locking: one mutex guards everything; the fdatasync of a group commit runs
** outside it (on a dup of the current segment's fd) so that appends go on
** while the disk works.
*/
#define _GNU_SOURCE
#include "raft/raft.h"
#include "raft/log_int.h"

#include "base/base.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_MOD "raft_log"
#define HDR RAFT__LOG_RECORD_HEADER_BYTES
#define SEG_HDR RAFT__LOG_SEGMENT_HEADER_BYTES

typedef struct log_slot {
    uint64_t term;
    uint64_t seg;  /* segment seq */
    uint64_t off;  /* offset of the record header in the segment */
    uint32_t len;  /* payload bytes */
    uint8_t type;
} log_slot;

typedef struct log_group {
    uint64_t id;
    bool used;
    bool has_hs;
    raft_hard_state hs;
    uint64_t hs_seg;       /* segment of the newest hard state record */
    uint64_t compact_index;
    uint64_t compact_term;
    uint64_t compact_seg;  /* 0: no compaction record */
    /* Replay only (see replay_lower): the newest compaction record seen, and
    ** whether compact_index is a guess not (yet) backed by one, because
    ** purged segments held what came before; then the record that made the
    ** guess (for the error message if the replay ends with it). */
    uint64_t rec_compact_index, rec_compact_term, rec_compact_seg;
    bool unknown_prefix;
    uint64_t gap_seg, gap_off;
    log_slot *slots;       /* slots[head .. head + n) */
    size_t head, n, cap;
} log_group;

typedef struct log_segment {
    uint64_t seq;
    int fd;
    uint64_t size;
} log_segment;

struct raft_log {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *dir;
    int dir_fd;
    size_t segment_bytes_max, record_bytes_max, groups_max, segments_max;
    log_segment *segs; /* sorted by seq, consecutive; last = current */
    size_t n_segs;
    log_group *groups; /* open addressing, groups_cap a power of two */
    size_t groups_cap, n_groups;
    uint64_t append_seq, synced_seq;
    bool syncing, purging;
    bool replaying;    /* open: a gap may follow purged segments */
    int poisoned;      /* 0 or RAFT_LOG_ERR_IO */
    base_buf scratch;  /* records being encoded (under mu) */
    raft_log_stats stats;
    void (*on_failure)(void *ctx, const char *what);
    void *on_failure_ctx;
    /* raft_log_inject_fault (tests): atomics, read by fdatasyncs with or
    ** without mu */
    atomic_bool fault_fail_next;
    _Atomic int64_t fault_stall_until_ns; /* monotonic; 0: none */
};

/* Mark the log failed (mu held) and tell the owner, once. */
static void log_poison(raft_log *log, const char *what)
{
    bool first = log->poisoned == 0;
    log->poisoned = RAFT_LOG_ERR_IO;
    if (first && log->on_failure != NULL) log->on_failure(log->on_failure_ctx, what);
}

/* fdatasync of a group commit or roll-over, with the injected fault (a stall
** first, then a failure instead of the call). */
static int log_fdatasync(raft_log *log, int fd)
{
    /* Re-read each slice, so that clearing the stall ends it. Bounded by
    ** RAFT_LOG_FAULT_STALL_MS_MAX. */
    for (;;) {
        int64_t left = atomic_load(&log->fault_stall_until_ns) - base_monotonic_ns();
        if (left <= 0) break;
        if (left > 20 * 1000000) left = 20 * 1000000;
        struct timespec ts = {0, left};
        nanosleep(&ts, NULL);
    }
    if (atomic_exchange(&log->fault_fail_next, false)) {
        BASE_WARN(LOG_MOD, "test fault: this fdatasync fails (EIO)");
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

const char *raft_log_strerror(int code)
{
    switch (code) {
    case RAFT_LOG_OK: return "ok";
    case RAFT_LOG_ERR_NOMEM: return "out of memory";
    case RAFT_LOG_ERR_IO: return "I/O error";
    case RAFT_LOG_ERR_CORRUPT: return "log corrupt";
    case RAFT_LOG_ERR_INVALID: return "invalid argument";
    case RAFT_LOG_ERR_TOO_LARGE: return "record too large";
    case RAFT_LOG_ERR_LIMIT: return "limit reached";
    case RAFT_LOG_ERR_COMPACTED: return "entry compacted";
    case RAFT_LOG_ERR_UNAVAILABLE: return "entry unavailable";
    case RAFT_LOG_ERR_BUSY: return "log directory in use";
    default: return "unknown raft_log error";
    }
}

/* ---- little-endian helpers ------------------------------------------------------ */
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void set_err(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *buf, size_t len, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    BASE_ERROR(LOG_MOD, "%s", tmp);
    if (buf && len) base_strlcpy(buf, tmp, len);
}

/* ---- groups ------------------------------------------------------------------------ */
static uint64_t hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static log_group *group_find(raft_log *log, uint64_t id)
{
    size_t mask = log->groups_cap - 1;
    for (size_t i = hash64(id) & mask, probes = 0; probes < log->groups_cap;
         i = (i + 1) & mask, probes++) {
        if (!log->groups[i].used) return NULL;
        if (log->groups[i].id == id) return &log->groups[i];
    }
    return NULL;
}

static void group_insert_slot(log_group *table, size_t cap, const log_group *g)
{
    size_t mask = cap - 1;
    size_t i = hash64(g->id) & mask;
    while (table[i].used) i = (i + 1) & mask;
    table[i] = *g;
}

/* Find or create; NULL with *rc set on limit or NOMEM. The pointer is valid
** until the next group creation. */
static log_group *group_get(raft_log *log, uint64_t id, int *rc)
{
    log_group *g = group_find(log, id);
    if (g) return g;
    if (log->n_groups >= log->groups_max) {
        *rc = RAFT_LOG_ERR_LIMIT;
        return NULL;
    }
    if ((log->n_groups + 1) * 10 > log->groups_cap * 7) {
        size_t cap = log->groups_cap * 2;
        log_group *t = base_calloc(cap, sizeof *t);
        if (!t) {
            *rc = RAFT_LOG_ERR_NOMEM;
            return NULL;
        }
        for (size_t i = 0; i < log->groups_cap; i++)
            if (log->groups[i].used) group_insert_slot(t, cap, &log->groups[i]);
        base_free(log->groups);
        log->groups = t;
        log->groups_cap = cap;
    }
    log_group fresh = {.id = id, .used = true};
    group_insert_slot(log->groups, log->groups_cap, &fresh);
    log->n_groups++;
    return group_find(log, id);
}

static uint64_t group_last(const log_group *g) { return g->compact_index + g->n; }

static log_slot *group_slot(const log_group *g, uint64_t index)
{
    assert(index > g->compact_index && index <= group_last(g));
    return &g->slots[g->head + (index - g->compact_index - 1)];
}

static uint64_t group_last_term(const log_group *g)
{
    return g->n ? group_slot(g, group_last(g))->term : g->compact_term;
}

/* Keep entries < from. */
static void group_truncate(log_group *g, uint64_t from)
{
    if (from <= g->compact_index) from = g->compact_index + 1;
    if (from <= group_last(g)) g->n = (size_t)(from - g->compact_index - 1);
}

static int group_push(log_group *g, const log_slot *s)
{
    if (g->head + g->n == g->cap) {
        if (g->head > 0 && g->head >= g->cap / 2) {
            memmove(g->slots, g->slots + g->head, g->n * sizeof *g->slots);
            g->head = 0;
        } else {
            size_t cap = g->cap ? g->cap * 2 : 16;
            log_slot *t = base_realloc(g->slots, cap * sizeof *t);
            if (!t) return RAFT_LOG_ERR_NOMEM;
            g->slots = t;
            g->cap = cap;
        }
    }
    g->slots[g->head + g->n++] = *s;
    return 0;
}

/* Room for `extra` more slots without allocating (so that applying a
** record that was written cannot fail). */
static int group_reserve(log_group *g, size_t extra)
{
    if (g->head + g->n + extra <= g->cap) return 0;
    if (g->n + extra <= g->cap) {
        memmove(g->slots, g->slots + g->head, g->n * sizeof *g->slots);
        g->head = 0;
        return 0;
    }
    size_t cap = g->cap ? g->cap : 16;
    while (cap < g->n + extra) cap *= 2;
    log_slot *t = base_realloc(g->slots, cap * sizeof *t);
    if (!t) return RAFT_LOG_ERR_NOMEM;
    g->slots = t;
    g->cap = cap;
    return 0;
}

static void group_compact(log_group *g, uint64_t up_to, uint64_t term, uint64_t seg)
{
    if (up_to < g->compact_index) return;
    if (up_to == g->compact_index) {
        g->compact_term = term; /* a rewrite (purge) of the same point, or */
        g->compact_seg = seg;   /* the point a replay gap anticipated */
        return;
    }
    if (up_to >= group_last(g)) {
        g->head = 0;
        g->n = 0;
    } else {
        size_t drop = (size_t)(up_to - g->compact_index);
        g->head += drop;
        g->n -= drop;
    }
    g->compact_index = up_to;
    g->compact_term = term;
    g->compact_seg = seg;
}

/* ---- segments -------------------------------------------------------------------- */
static void segment_name(char *buf, size_t len, const char *dir, uint64_t seq)
{
    snprintf(buf, len, "%s/%0*" PRIu64 "%s", dir, RAFT__LOG_SEGMENT_NAME_DIGITS, seq,
             RAFT__LOG_SEGMENT_SUFFIX);
}

static void segment_header(uint8_t *h, uint64_t seq)
{
    memset(h, 0, SEG_HDR);
    memcpy(h, RAFT__LOG_MAGIC, 8);
    put32(h + 8, RAFT__LOG_VERSION);
    put32(h + 12, SEG_HDR);
    put64(h + 16, seq);
    put32(h + 24, base_crc32c(0, h, 24));
}

static int write_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
    size_t done = 0;
    for (int tries = 0; done < len && tries < 1000; tries++) {
        ssize_t w = pwrite(fd, p + done, len - done, (off_t)(off + done));
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        done += (size_t)w;
    }
    return done == len ? 0 : -1;
}

static int read_all(int fd, uint8_t *p, size_t len, uint64_t off)
{
    size_t done = 0;
    for (int tries = 0; done < len && tries < 1000; tries++) {
        ssize_t r = pread(fd, p + done, len - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) return -1;
        done += (size_t)r;
    }
    return done == len ? 0 : -1;
}

static log_segment *segment_by_seq(raft_log *log, uint64_t seq)
{
    if (log->n_segs == 0 || seq < log->segs[0].seq) return NULL;
    uint64_t i = seq - log->segs[0].seq;
    if (i >= log->n_segs) return NULL;
    assert(log->segs[i].seq == seq);
    return &log->segs[i];
}

/* Create segment seq (header written and synced, directory synced) and make
** it current. The previous current segment must already be synced. */
static int segment_create(raft_log *log, uint64_t seq)
{
    if (log->n_segs >= log->segments_max) return RAFT_LOG_ERR_LIMIT;
    char path[4096];
    segment_name(path, sizeof path, log->dir, seq);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        BASE_ERROR(LOG_MOD, "create %s: %s", path, strerror(errno));
        return RAFT_LOG_ERR_IO;
    }
    uint8_t h[SEG_HDR];
    segment_header(h, seq);
    if (write_all(fd, h, SEG_HDR, 0) != 0 || fdatasync(fd) != 0 || fsync(log->dir_fd) != 0) {
        BASE_ERROR(LOG_MOD, "initialise %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return RAFT_LOG_ERR_IO;
    }
    log_segment *t = base_realloc(log->segs, (log->n_segs + 1) * sizeof *t);
    if (!t) {
        close(fd);
        unlink(path);
        return RAFT_LOG_ERR_NOMEM;
    }
    log->segs = t;
    log->segs[log->n_segs++] = (log_segment){.seq = seq, .fd = fd, .size = SEG_HDR};
    log->stats.segments = log->n_segs;
    return 0;
}

/* Make room for `bytes` more in the current segment, rolling over if it
** would pass segment_bytes_max (a batch larger than that gets a segment of
** its own). With may_overflow (small truncate/compact records, which are
** what frees segments), a log at segments_max writes past the size instead. */
static int segment_reserve(raft_log *log, size_t bytes, bool may_overflow)
{
    log_segment *cur = &log->segs[log->n_segs - 1];
    if (cur->size + bytes <= log->segment_bytes_max || cur->size == SEG_HDR) return 0;
    if (log->n_segs >= log->segments_max) return may_overflow ? 0 : RAFT_LOG_ERR_LIMIT;
    /* The old segment becomes immutable: make it complete on disk first. */
    if (log_fdatasync(log, cur->fd) != 0) {
        BASE_ERROR(LOG_MOD, "fdatasync at roll-over: %s", strerror(errno));
        log_poison(log, "fdatasync at roll-over failed");
        return RAFT_LOG_ERR_IO;
    }
    log->stats.fsyncs++;
    int rc = segment_create(log, cur->seq + 1);
    if (rc == RAFT_LOG_ERR_IO) log_poison(log, "creating a segment failed");
    return rc;
}

/* ---- records ---------------------------------------------------------------------- */
static int encode_record(base_buf *b, raft__log_kind kind, uint8_t etype, uint64_t group,
                         uint64_t term, uint64_t index, const uint8_t *payload, size_t len)
{
    if (base_buf_reserve(b, HDR + len) != 0) return RAFT_LOG_ERR_NOMEM;
    uint8_t *p = b->data + b->len;
    put32(p + 4, (uint32_t)len);
    p[8] = (uint8_t)kind;
    p[9] = etype;
    p[10] = p[11] = 0;
    put64(p + 12, group);
    put64(p + 20, term);
    put64(p + 28, index);
    if (len) memcpy(p + HDR, payload, len);
    put32(p, base_crc32c(0, p + 4, HDR - 4 + len));
    b->len += HDR + len;
    return 0;
}

typedef struct rec {
    raft__log_kind kind;
    uint8_t etype;
    uint64_t group, term, index;
    const uint8_t *payload;
    uint32_t len;
} rec;

/* Parse the record at p[0..avail). Returns 1 ok (*out filled), 0 bad
** (*why says what). */
static int decode_record(const uint8_t *p, size_t avail, size_t record_max, rec *out,
                         const char **why)
{
    if (avail < HDR) {
        *why = "partial record header";
        return 0;
    }
    uint32_t len = get32(p + 4);
    if (p[8] < RAFT__LOG_KIND_ENTRY || p[8] > RAFT__LOG_KIND_COMPACT || p[10] || p[11]) {
        *why = "bad record kind";
        return 0;
    }
    if ((size_t)len + HDR > record_max) {
        *why = "record length above record_bytes_max";
        return 0;
    }
    if ((size_t)len > avail - HDR) {
        *why = "record runs past the end of the file";
        return 0;
    }
    if (get32(p) != base_crc32c(0, p + 4, HDR - 4 + len)) {
        *why = "CRC32C mismatch";
        return 0;
    }
    out->kind = p[8];
    out->etype = p[9];
    out->group = get64(p + 12);
    out->term = get64(p + 20);
    out->index = get64(p + 28);
    out->payload = p + HDR;
    out->len = len;
    if (out->kind == RAFT__LOG_KIND_HARD_STATE && len != 8) {
        *why = "hard state record of bad length";
        return 0;
    }
    if ((out->kind == RAFT__LOG_KIND_TRUNCATE || out->kind == RAFT__LOG_KIND_COMPACT) && len) {
        *why = "truncate/compact record with a payload";
        return 0;
    }
    return 1;
}

/* Apply one record (replay or after a write) to the in-memory index.
** Returns 0, RAFT_LOG_ERR_CORRUPT (*why set), _LIMIT or _NOMEM. */
/* Replay: restart the group's known log just after index x (entries <= x
** were in purged segments or are overwritten). It is a real compaction
** point only if a compaction record says so; otherwise the group stays
** "unknown" until one does, and the replay fails if none ever does. */
static void replay_lower(log_group *g, uint64_t x, uint64_t seg, uint64_t off)
{
    g->head = g->n = 0;
    g->compact_index = x;
    if (x == g->rec_compact_index) {
        g->compact_term = g->rec_compact_term;
        g->compact_seg = g->rec_compact_seg;
        g->unknown_prefix = false;
    } else {
        g->compact_term = 0;
        g->compact_seg = 0;
        g->unknown_prefix = true;
        g->gap_seg = seg;
        g->gap_off = off;
    }
}

/* Apply one record (replay or after a write) to the in-memory index.
** Returns 0, RAFT_LOG_ERR_CORRUPT (*why set), _LIMIT or _NOMEM.
** Replay after a purge: the surviving segments may start with entries
** whose predecessors (and even stale, later-truncated entries) are gone;
** replay_lower handles that, and open_segments checks that every group's
** compaction point ends up backed by a record. */
static int apply_record(raft_log *log, const rec *r, uint64_t seg, uint64_t off,
                        const char **why)
{
    int rc = 0;
    log_group *g = group_get(log, r->group, &rc);
    if (!g) {
        *why = "too many groups (groups_max)";
        return rc;
    }
    switch (r->kind) {
    case RAFT__LOG_KIND_ENTRY: {
        if (r->index == 0) {
            *why = "entry with index 0";
            return RAFT_LOG_ERR_CORRUPT;
        }
        if (r->index <= g->compact_index) {
            if (!g->unknown_prefix) return 0; /* below a compaction point */
            replay_lower(g, r->index - 1, seg, off); /* overwrites below the guess */
        } else if (r->index > group_last(g) + 1) {
            if (!log->replaying) {
                *why = "gap in a group's entry indexes";
                return RAFT_LOG_ERR_CORRUPT;
            }
            replay_lower(g, r->index - 1, seg, off);
        }
        group_truncate(g, r->index);
        log_slot s = {.term = r->term, .seg = seg, .off = off, .len = r->len, .type = r->etype};
        return group_push(g, &s);
    }
    case RAFT__LOG_KIND_HARD_STATE:
        g->has_hs = true;
        g->hs.term = r->term;
        g->hs.commit = r->index;
        g->hs.vote = get64(r->payload);
        g->hs_seg = seg;
        return 0;
    case RAFT__LOG_KIND_TRUNCATE:
        if (r->index == 0) {
            *why = "truncation from index 0";
            return RAFT_LOG_ERR_CORRUPT;
        }
        if (r->index <= g->compact_index && g->unknown_prefix)
            replay_lower(g, r->index - 1, seg, off);
        else
            group_truncate(g, r->index);
        return 0;
    case RAFT__LOG_KIND_COMPACT:
        if (r->index >= g->rec_compact_index) {
            g->rec_compact_index = r->index;
            g->rec_compact_term = r->term;
            g->rec_compact_seg = seg;
        }
        if (r->index >= g->compact_index) {
            group_compact(g, r->index, r->term, seg);
            g->unknown_prefix = false;
        }
        return 0;
    }
    *why = "bad record kind";
    return RAFT_LOG_ERR_CORRUPT;
}

/* Write log->scratch (records encoded assuming they start at base offset)
** to the current segment and apply them. The caller reserved space. */
static int write_and_apply(raft_log *log, uint64_t *seq)
{
    log_segment *cur = &log->segs[log->n_segs - 1];
    uint64_t base = cur->size;
    if (write_all(cur->fd, log->scratch.data, log->scratch.len, base) != 0) {
        BASE_ERROR(LOG_MOD, "write segment %" PRIu64 ": %s", cur->seq, strerror(errno));
        log_poison(log, "a segment write failed");
        return RAFT_LOG_ERR_IO;
    }
    cur->size += log->scratch.len;
    log->stats.appends++;
    log->stats.bytes_written += log->scratch.len;
    /* Apply: validated and reserved before encoding, so this cannot fail;
    ** if it did, memory would disagree with the file: poison (a restart
    ** recovers). */
    for (size_t off = 0; off < log->scratch.len;) {
        rec r;
        const char *why = NULL;
        int ok = decode_record(log->scratch.data + off, log->scratch.len - off,
                               SIZE_MAX, &r, &why);
        assert(ok);
        int rc = apply_record(log, &r, cur->seq, base + off, &why);
        if (rc != 0) {
            log_poison(log, "a record written did not apply");
            return rc;
        }
        log->stats.records++;
        off += HDR + r.len;
    }
    *seq = ++log->append_seq;
    return 0;
}

/* ---- open / recovery ------------------------------------------------------------- */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool parse_segment_name(const char *name, uint64_t *seq)
{
    size_t n = strlen(name);
    size_t sl = strlen(RAFT__LOG_SEGMENT_SUFFIX);
    if (n != RAFT__LOG_SEGMENT_NAME_DIGITS + sl) return false;
    if (strcmp(name + RAFT__LOG_SEGMENT_NAME_DIGITS, RAFT__LOG_SEGMENT_SUFFIX) != 0) return false;
    uint64_t v = 0;
    for (int i = 0; i < RAFT__LOG_SEGMENT_NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9') return false;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *seq = v;
    return v > 0;
}

/* Is there a valid record anywhere in p[from..size)? */
static bool valid_record_after(const uint8_t *p, size_t size, size_t from, size_t record_max,
                               size_t *where)
{
    for (size_t y = from; y + HDR <= size; y++) {
        if (p[y + 8] < RAFT__LOG_KIND_ENTRY || p[y + 8] > RAFT__LOG_KIND_COMPACT) continue;
        rec r;
        const char *why;
        if (decode_record(p + y, size - y, record_max, &r, &why)) {
            *where = y;
            return true;
        }
    }
    return false;
}

static int read_file(int fd, uint64_t size, uint8_t **out)
{
    *out = NULL;
    if (size == 0) return 0;
    uint8_t *buf = base_malloc((size_t)size);
    if (!buf) return RAFT_LOG_ERR_NOMEM;
    if (read_all(fd, buf, (size_t)size, 0) != 0) {
        base_free(buf);
        return RAFT_LOG_ERR_IO;
    }
    *out = buf;
    return 0;
}

/* Replay segment i (already in log->segs with its fd). */
static int replay_segment(raft_log *log, size_t i, char *errmsg, size_t errmsg_len)
{
    log_segment *s = &log->segs[i];
    bool last = i + 1 == log->n_segs;
    char path[4096];
    segment_name(path, sizeof path, log->dir, s->seq);
    struct stat st;
    if (fstat(s->fd, &st) != 0) {
        set_err(errmsg, errmsg_len, "stat %s: %s", path, strerror(errno));
        return RAFT_LOG_ERR_IO;
    }
    uint64_t size = (uint64_t)st.st_size;
    uint8_t *buf = NULL;
    int rc = read_file(s->fd, size, &buf);
    if (rc != 0) {
        set_err(errmsg, errmsg_len, "read %s: %s", path, raft_log_strerror(rc));
        return rc;
    }
    uint8_t want[SEG_HDR];
    segment_header(want, s->seq);
    if (size < SEG_HDR || memcmp(buf, want, SEG_HDR) != 0) {
        bool blank = true;
        for (uint64_t k = 0; k < size && k < SEG_HDR; k++) blank = blank && buf[k] == 0;
        if (last && size <= SEG_HDR && (size < SEG_HDR || blank)) {
            /* created but its header never reached the disk: no record can
            ** be in it (records follow a synced header) */
            BASE_WARN(LOG_MOD, "%s: torn segment header, rewriting it", path);
            segment_header(want, s->seq);
            if (ftruncate(s->fd, 0) != 0 || write_all(s->fd, want, SEG_HDR, 0) != 0 ||
                fdatasync(s->fd) != 0) {
                set_err(errmsg, errmsg_len, "rewrite header of %s: %s", path, strerror(errno));
                rc = RAFT_LOG_ERR_IO;
                goto cleanup;
            }
            s->size = SEG_HDR;
            goto cleanup;
        }
        set_err(errmsg, errmsg_len, "%s offset 0: bad segment header (magic, version, seq or CRC)",
                path);
        rc = RAFT_LOG_ERR_CORRUPT;
        goto cleanup;
    }
    uint64_t off = SEG_HDR;
    for (; off < size;) { /* bounded: each record advances off by >= HDR */
        rec r;
        const char *why = NULL;
        if (!decode_record(buf + off, (size_t)(size - off), log->record_bytes_max, &r, &why)) {
            size_t y;
            if (!last) {
                set_err(errmsg, errmsg_len, "%s offset %" PRIu64 ": %s (not the last segment)",
                        path, off, why);
                rc = RAFT_LOG_ERR_CORRUPT;
                goto cleanup;
            }
            if (valid_record_after(buf, (size_t)size, (size_t)off + 1, log->record_bytes_max, &y)) {
                set_err(errmsg, errmsg_len,
                        "%s offset %" PRIu64 ": %s, followed by a valid record at offset %zu",
                        path, off, why, y);
                rc = RAFT_LOG_ERR_CORRUPT;
                goto cleanup;
            }
            BASE_WARN(LOG_MOD, "%s: torn tail at offset %" PRIu64 " (%s), truncating %" PRIu64
                      " bytes", path, off, why, size - off);
            if (ftruncate(s->fd, (off_t)off) != 0 || fdatasync(s->fd) != 0) {
                set_err(errmsg, errmsg_len, "truncate %s: %s", path, strerror(errno));
                rc = RAFT_LOG_ERR_IO;
                goto cleanup;
            }
            break;
        }
        rc = apply_record(log, &r, s->seq, off, &why);
        if (rc != 0) {
            set_err(errmsg, errmsg_len, "%s offset %" PRIu64 ": %s", path, off,
                    why ? why : raft_log_strerror(rc));
            goto cleanup;
        }
        off += HDR + r.len;
    }
    s->size = off;
cleanup:
    base_free(buf);
    return rc;
}

static int open_segments(raft_log *log, char *errmsg, size_t errmsg_len)
{
    int rc = 0;
    uint64_t *seqs = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir(log->dir);
    if (!d) {
        set_err(errmsg, errmsg_len, "opendir %s: %s", log->dir, strerror(errno));
        return RAFT_LOG_ERR_IO;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t seq;
        if (!parse_segment_name(e->d_name, &seq)) continue;
        if (n >= log->segments_max) {
            set_err(errmsg, errmsg_len, "%s: more than segments_max (%zu) segments", log->dir,
                    log->segments_max);
            rc = RAFT_LOG_ERR_LIMIT;
            goto cleanup;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *t = base_realloc(seqs, cap * sizeof *t);
            if (!t) {
                rc = RAFT_LOG_ERR_NOMEM;
                goto cleanup;
            }
            seqs = t;
        }
        seqs[n++] = seq;
    }
    if (n) qsort(seqs, n, sizeof *seqs, cmp_u64);
    for (size_t i = 1; i < n; i++) {
        if (seqs[i] != seqs[i - 1] + 1) {
            set_err(errmsg, errmsg_len,
                    "%s: segment files are not consecutive (%" PRIu64 " then %" PRIu64
                    "): a segment is missing",
                    log->dir, seqs[i - 1], seqs[i]);
            rc = RAFT_LOG_ERR_CORRUPT;
            goto cleanup;
        }
    }
    if (n) {
        log->segs = base_calloc(n, sizeof *log->segs);
        if (!log->segs) {
            rc = RAFT_LOG_ERR_NOMEM;
            goto cleanup;
        }
    }
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        segment_name(path, sizeof path, log->dir, seqs[i]);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            set_err(errmsg, errmsg_len, "open %s: %s", path, strerror(errno));
            rc = RAFT_LOG_ERR_IO;
            goto cleanup;
        }
        log->segs[log->n_segs++] = (log_segment){.seq = seqs[i], .fd = fd};
    }
    log->replaying = true;
    for (size_t i = 0; i < n; i++) {
        rc = replay_segment(log, i, errmsg, errmsg_len);
        if (rc != 0) goto cleanup;
    }
    log->replaying = false;
    const log_group *bad = NULL; /* report the first gap in log order */
    for (size_t i = 0; i < log->groups_cap; i++) {
        const log_group *g = &log->groups[i];
        if (g->used && g->unknown_prefix &&
            (!bad || g->gap_seg < bad->gap_seg ||
             (g->gap_seg == bad->gap_seg && g->gap_off < bad->gap_off)))
            bad = g;
    }
    if (bad) {
        char path[4096];
        segment_name(path, sizeof path, log->dir, bad->gap_seg);
        set_err(errmsg, errmsg_len,
                "%s offset %" PRIu64 ": group %" PRIu64 " starts at entry %" PRIu64
                " but no compaction record covers the entries before it",
                path, bad->gap_off, bad->id, bad->compact_index + 1);
        rc = RAFT_LOG_ERR_CORRUPT;
        goto cleanup;
    }
    if (n == 0) rc = segment_create(log, 1);
    log->stats.segments = log->n_segs;
cleanup:
    closedir(d);
    base_free(seqs);
    return rc;
}

void raft_log_close(raft_log *log)
{
    if (!log) return;
    for (size_t i = 0; i < log->n_segs; i++) close(log->segs[i].fd);
    base_free(log->segs);
    for (size_t i = 0; log->groups && i < log->groups_cap; i++) base_free(log->groups[i].slots);
    base_free(log->groups);
    base_buf_free(&log->scratch);
    if (log->dir_fd >= 0) close(log->dir_fd); /* releases the flock */
    base_free(log->dir);
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->cv);
    base_free(log);
}

int raft_log_open(const raft_log_options *options, raft_log **out, char *errmsg,
                  size_t errmsg_len)
{
    int rc = 0;
    *out = NULL;
    if (errmsg && errmsg_len) errmsg[0] = 0;
    if (!options || !options->dir || !options->dir[0]) return RAFT_LOG_ERR_INVALID;
    raft_log *log = base_calloc(1, sizeof *log);
    if (!log) return RAFT_LOG_ERR_NOMEM;
    log->dir_fd = -1;
    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->cv, NULL);
    log->segment_bytes_max =
        options->segment_bytes_max ? options->segment_bytes_max : RAFT__LOG_DEFAULT_SEGMENT_BYTES;
    if (log->segment_bytes_max < RAFT__LOG_MIN_SEGMENT_BYTES)
        log->segment_bytes_max = RAFT__LOG_MIN_SEGMENT_BYTES;
    log->record_bytes_max =
        options->record_bytes_max ? options->record_bytes_max : RAFT__LOG_DEFAULT_RECORD_BYTES;
    if (log->record_bytes_max > UINT32_MAX) log->record_bytes_max = UINT32_MAX;
    if (log->record_bytes_max < HDR + 8) log->record_bytes_max = HDR + 8;
    log->groups_max = options->groups_max ? options->groups_max : RAFT__LOG_DEFAULT_GROUPS;
    log->segments_max = options->segments_max ? options->segments_max : RAFT__LOG_DEFAULT_SEGMENTS;
    atomic_init(&log->fault_fail_next, false);
    atomic_init(&log->fault_stall_until_ns, 0);
    log->on_failure = options->on_failure;
    log->on_failure_ctx = options->on_failure_ctx;
    if (log->segments_max < 2) log->segments_max = 2;
    log->groups_cap = 64;
    log->groups = base_calloc(log->groups_cap, sizeof *log->groups);
    log->dir = base_strdup(options->dir);
    if (!log->groups || !log->dir) {
        rc = RAFT_LOG_ERR_NOMEM;
        goto fail;
    }
    if (mkdir(log->dir, 0755) != 0 && errno != EEXIST) {
        set_err(errmsg, errmsg_len, "mkdir %s: %s", log->dir, strerror(errno));
        rc = RAFT_LOG_ERR_IO;
        goto fail;
    }
    log->dir_fd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (log->dir_fd < 0) {
        set_err(errmsg, errmsg_len, "open %s: %s", log->dir, strerror(errno));
        rc = RAFT_LOG_ERR_IO;
        goto fail;
    }
    if (flock(log->dir_fd, LOCK_EX | LOCK_NB) != 0) {
        set_err(errmsg, errmsg_len, "%s: locked by another process", log->dir);
        rc = RAFT_LOG_ERR_BUSY;
        goto fail;
    }
    rc = open_segments(log, errmsg, errmsg_len);
    if (rc != 0) goto fail;
    /* commit is a hint never above the durable log */
    for (size_t i = 0; i < log->groups_cap; i++) {
        log_group *g = &log->groups[i];
        if (g->used && g->has_hs && g->hs.commit > group_last(g)) g->hs.commit = group_last(g);
    }
    *out = log;
    return 0;
fail:
    if (errmsg && errmsg_len && !errmsg[0])
        set_err(errmsg, errmsg_len, "open %s: %s", options->dir, raft_log_strerror(rc));
    raft_log_close(log);
    return rc;
}

/* ---- writes ------------------------------------------------------------------------ */
int raft_log_append(raft_log *log, uint64_t group, const raft_hard_state *hard_state,
                    const raft_entry *entries, size_t n_entries, uint64_t *seq)
{
    int rc = 0;
    uint64_t s = 0;
    if (n_entries > RAFT__LOG_APPEND_ENTRIES_MAX || (n_entries && !entries))
        return RAFT_LOG_ERR_INVALID;
    pthread_mutex_lock(&log->mu);
    s = log->append_seq;
    if (log->poisoned) {
        rc = log->poisoned;
        goto cleanup;
    }
    if (!hard_state && n_entries == 0) goto cleanup;
    log_group *g = group_find(log, group); /* created only once valid */
    if (n_entries) {
        uint64_t ci = g ? g->compact_index : 0, last = g ? group_last(g) : 0;
        if (entries[0].index <= ci || entries[0].index > last + 1) {
            rc = RAFT_LOG_ERR_INVALID;
            goto cleanup;
        }
    }
    size_t total = hard_state ? HDR + 8 : 0;
    for (size_t i = 0; i < n_entries; i++) {
        if ((i && entries[i].index != entries[i - 1].index + 1) || (unsigned)entries[i].type > 255 ||
            (entries[i].len && !entries[i].data)) {
            rc = RAFT_LOG_ERR_INVALID;
            goto cleanup;
        }
        if (entries[i].len > log->record_bytes_max - HDR) {
            rc = RAFT_LOG_ERR_TOO_LARGE;
            goto cleanup;
        }
        total += HDR + entries[i].len;
    }
    if (!g && !(g = group_get(log, group, &rc))) goto cleanup;
    rc = group_reserve(g, n_entries);
    if (rc != 0) goto cleanup;
    rc = segment_reserve(log, total, false);
    if (rc != 0) goto cleanup;
    base_buf_reset(&log->scratch);
    if (hard_state) {
        uint8_t v[8];
        put64(v, hard_state->vote);
        rc = encode_record(&log->scratch, RAFT__LOG_KIND_HARD_STATE, 0, group, hard_state->term,
                           hard_state->commit, v, 8);
        if (rc != 0) goto cleanup;
    }
    for (size_t i = 0; i < n_entries; i++) {
        rc = encode_record(&log->scratch, RAFT__LOG_KIND_ENTRY, (uint8_t)entries[i].type, group,
                           entries[i].term, entries[i].index, entries[i].data, entries[i].len);
        if (rc != 0) goto cleanup;
    }
    rc = write_and_apply(log, &s);
cleanup:
    pthread_mutex_unlock(&log->mu);
    if (seq) *seq = s;
    return rc;
}

/* One small record for `group` (truncate or compact), after checks. */
static int write_one(raft_log *log, raft__log_kind kind, uint64_t group, uint64_t term,
                     uint64_t index, uint64_t *seq)
{
    int rc = segment_reserve(log, HDR, true);
    if (rc != 0) return rc;
    base_buf_reset(&log->scratch);
    rc = encode_record(&log->scratch, kind, 0, group, term, index, NULL, 0);
    if (rc != 0) return rc;
    return write_and_apply(log, seq);
}

int raft_log_truncate_suffix(raft_log *log, uint64_t group, uint64_t from_index, uint64_t *seq)
{
    int rc = 0;
    pthread_mutex_lock(&log->mu);
    uint64_t s = log->append_seq;
    if (log->poisoned) {
        rc = log->poisoned;
        goto cleanup;
    }
    log_group *g = group_find(log, group);
    if (from_index <= (g ? g->compact_index : 0)) {
        rc = RAFT_LOG_ERR_INVALID;
        goto cleanup;
    }
    if (!g || from_index > group_last(g)) goto cleanup; /* nothing to delete */
    rc = write_one(log, RAFT__LOG_KIND_TRUNCATE, group, 0, from_index, &s);
cleanup:
    pthread_mutex_unlock(&log->mu);
    if (seq) *seq = s;
    return rc;
}

int raft_log_compact(raft_log *log, uint64_t group, uint64_t up_to_index, uint64_t term,
                     uint64_t *seq)
{
    int rc = 0;
    pthread_mutex_lock(&log->mu);
    uint64_t s = log->append_seq;
    if (log->poisoned) {
        rc = log->poisoned;
        goto cleanup;
    }
    log_group *g = group_find(log, group);
    if (up_to_index <= (g ? g->compact_index : 0)) goto cleanup; /* already */
    if (!g && !(g = group_get(log, group, &rc))) goto cleanup;
    if (up_to_index <= group_last(g)) {
        uint64_t t = group_slot(g, up_to_index)->term;
        if (term != 0 && term != t) {
            rc = RAFT_LOG_ERR_INVALID;
            goto cleanup;
        }
        term = t;
    }
    rc = write_one(log, RAFT__LOG_KIND_COMPACT, group, term, up_to_index, &s);
cleanup:
    pthread_mutex_unlock(&log->mu);
    if (seq) *seq = s;
    return rc;
}

/* ---- group commit ------------------------------------------------------------------- */
int raft_log_sync(raft_log *log, uint64_t seq)
{
    int rc = 0;
    pthread_mutex_lock(&log->mu);
    if (seq > log->append_seq) {
        rc = RAFT_LOG_ERR_INVALID;
        goto cleanup;
    }
    /* Each pass either returns, or waits for / performs one fdatasync that
    ** covers everything written before it started; seq is covered by the
    ** second one at the latest, so this loop ends. */
    for (;;) {
        if (log->synced_seq >= seq) break;
        if (log->poisoned) {
            rc = log->poisoned;
            break;
        }
        if (log->syncing) {
            pthread_cond_wait(&log->cv, &log->mu);
            continue;
        }
        log->syncing = true;
        uint64_t target = log->append_seq;
        int fd = dup(log->segs[log->n_segs - 1].fd);
        pthread_mutex_unlock(&log->mu);
        int r = fd < 0 ? -1 : log_fdatasync(log, fd);
        int err = errno;
        if (fd >= 0) close(fd);
        pthread_mutex_lock(&log->mu);
        log->syncing = false;
        log->stats.fsyncs++;
        if (r != 0) {
            BASE_ERROR(LOG_MOD, "fdatasync: %s", strerror(err));
            log_poison(log, "fdatasync failed");
        } else if (target > log->synced_seq) {
            log->synced_seq = target;
        }
        pthread_cond_broadcast(&log->cv);
    }
cleanup:
    pthread_mutex_unlock(&log->mu);
    return rc;
}

uint64_t raft_log_synced_seq(raft_log *log)
{
    pthread_mutex_lock(&log->mu);
    uint64_t s = log->synced_seq;
    pthread_mutex_unlock(&log->mu);
    return s;
}

/* ---- purge -------------------------------------------------------------------------- */
/* Oldest segment still needed: every segment below it may go. */
static uint64_t needed_from(raft_log *log, bool with_meta)
{
    uint64_t bound = log->segs[log->n_segs - 1].seq;
    for (size_t i = 0; i < log->groups_cap; i++) {
        const log_group *g = &log->groups[i];
        if (!g->used) continue;
        if (g->n) bound = BASE_MIN(bound, g->slots[g->head].seg);
        if (with_meta && g->has_hs) bound = BASE_MIN(bound, g->hs_seg);
        if (with_meta && g->compact_seg) bound = BASE_MIN(bound, g->compact_seg);
    }
    return bound;
}

int raft_log_purge(raft_log *log, size_t *n_deleted)
{
    int rc = 0;
    size_t deleted = 0;
    uint64_t seq = 0;
    pthread_mutex_lock(&log->mu);
    if (log->poisoned || log->purging) {
        rc = log->poisoned;
        goto cleanup;
    }
    uint64_t bound = needed_from(log, false);
    if (bound <= log->segs[0].seq) goto cleanup;
    log->purging = true;
    /* Rewrite hard states and compaction points that live below bound. */
    base_buf_reset(&log->scratch);
    size_t total = 0;
    for (size_t i = 0; i < log->groups_cap; i++) {
        const log_group *g = &log->groups[i];
        if (!g->used) continue;
        if (g->has_hs && g->hs_seg < bound) total += HDR + 8;
        if (g->compact_seg && g->compact_seg < bound) total += HDR;
    }
    if (total) {
        rc = segment_reserve(log, total, true);
        if (rc != 0) goto done;
        base_buf_reset(&log->scratch);
        for (size_t i = 0; i < log->groups_cap && rc == 0; i++) {
            const log_group *g = &log->groups[i];
            if (!g->used) continue;
            if (g->has_hs && g->hs_seg < bound) {
                uint8_t v[8];
                put64(v, g->hs.vote);
                rc = encode_record(&log->scratch, RAFT__LOG_KIND_HARD_STATE, 0, g->id, g->hs.term,
                                   g->hs.commit, v, 8);
            }
            if (rc == 0 && g->compact_seg && g->compact_seg < bound)
                rc = encode_record(&log->scratch, RAFT__LOG_KIND_COMPACT, 0, g->id,
                                   g->compact_term, g->compact_index, NULL, 0);
        }
        if (rc == 0) rc = write_and_apply(log, &seq);
        if (rc != 0) goto done;
        pthread_mutex_unlock(&log->mu);
        rc = raft_log_sync(log, seq);
        pthread_mutex_lock(&log->mu);
        if (rc != 0) goto done;
    }
    /* Recompute with everything (others may have written meanwhile), then
    ** make durable what the bound relies on: a compaction record is not
    ** synced when written, and a segment deleted on the strength of one that
    ** a power failure then loses leaves a group whose entries start after a
    ** gap no record covers: open fails (found by test_range_sim_multi, seed
    ** 1876). Records written after seq only move the bound further. */
    bound = needed_from(log, true);
    seq = log->append_seq;
    pthread_mutex_unlock(&log->mu);
    rc = raft_log_sync(log, seq);
    pthread_mutex_lock(&log->mu);
    if (rc != 0) goto done;
    while (log->n_segs > 1 && log->segs[0].seq < bound) { /* bounded by n_segs */
        char path[4096];
        segment_name(path, sizeof path, log->dir, log->segs[0].seq);
        close(log->segs[0].fd);
        if (unlink(path) != 0) BASE_WARN(LOG_MOD, "unlink %s: %s", path, strerror(errno));
        memmove(log->segs, log->segs + 1, (log->n_segs - 1) * sizeof *log->segs);
        log->n_segs--;
        deleted++;
        /* one at a time, oldest first: a crash never leaves a hole in the
        ** sequence (recovery would call that a missing segment) */
        if (fsync(log->dir_fd) != 0) BASE_WARN(LOG_MOD, "fsync %s: %s", log->dir, strerror(errno));
    }
    log->stats.segments = log->n_segs;
    log->stats.segments_deleted += deleted;
done:
    log->purging = false;
cleanup:
    pthread_mutex_unlock(&log->mu);
    if (n_deleted) *n_deleted = deleted;
    return rc;
}

/* ---- reads -------------------------------------------------------------------------- */
void raft_log_group(raft_log *log, uint64_t group, raft_log_group_info *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&log->mu);
    const log_group *g = group_find(log, group);
    if (g) {
        out->exists = true;
        out->has_hard_state = g->has_hs;
        out->hard_state = g->hs;
        out->compact_index = g->compact_index;
        out->compact_term = g->compact_term;
        out->first_index = g->compact_index + 1;
        out->last_index = group_last(g);
        out->last_term = group_last_term(g);
    }
    pthread_mutex_unlock(&log->mu);
}

void raft_log_groups(raft_log *log, uint64_t *ids, size_t cap, size_t *n)
{
    size_t k = 0;
    pthread_mutex_lock(&log->mu);
    for (size_t i = 0; i < log->groups_cap; i++) {
        if (!log->groups[i].used) continue;
        if (k < cap) ids[k] = log->groups[i].id;
        k++;
    }
    pthread_mutex_unlock(&log->mu);
    *n = k;
}

int raft_log_term(raft_log *log, uint64_t group, uint64_t index, uint64_t *term)
{
    int rc = 0;
    pthread_mutex_lock(&log->mu);
    const log_group *g = group_find(log, group);
    uint64_t ci = g ? g->compact_index : 0;
    if (index < ci) rc = RAFT_LOG_ERR_COMPACTED;
    else if (index > (g ? group_last(g) : 0)) rc = RAFT_LOG_ERR_UNAVAILABLE;
    else if (index == ci) *term = g ? g->compact_term : 0;
    else *term = group_slot(g, index)->term;
    pthread_mutex_unlock(&log->mu);
    return rc;
}

void raft_log_entries_free(raft_entry *entries, size_t n)
{
    if (!entries) return;
    for (size_t i = 0; i < n; i++) base_free(entries[i].data);
    base_free(entries);
}

int raft_log_entries(raft_log *log, uint64_t group, uint64_t lo, uint64_t hi, size_t max_bytes,
                     raft_entry **out, size_t *n)
{
    int rc = 0;
    raft_entry *es = NULL;
    size_t k = 0, bytes = 0;
    uint8_t *buf = NULL;
    *out = NULL;
    *n = 0;
    if (lo > hi || lo == 0) return RAFT_LOG_ERR_INVALID;
    pthread_mutex_lock(&log->mu);
    const log_group *g = group_find(log, group);
    uint64_t ci = g ? g->compact_index : 0, last = g ? group_last(g) : 0;
    if (lo <= ci) {
        rc = RAFT_LOG_ERR_COMPACTED;
        goto cleanup;
    }
    if (hi > last + 1) {
        rc = RAFT_LOG_ERR_UNAVAILABLE;
        goto cleanup;
    }
    if (lo == hi) goto cleanup;
    es = base_calloc((size_t)(hi - lo), sizeof *es);
    if (!es) {
        rc = RAFT_LOG_ERR_NOMEM;
        goto cleanup;
    }
    for (uint64_t i = lo; i < hi; i++) {
        const log_slot *s = group_slot(g, i);
        if (k > 0 && max_bytes && bytes + s->len > max_bytes) break;
        log_segment *seg = segment_by_seq(log, s->seg);
        assert(seg);
        size_t len = HDR + s->len;
        base_free(buf);
        buf = base_malloc(len);
        if (!buf) {
            rc = RAFT_LOG_ERR_NOMEM;
            goto cleanup;
        }
        rec r;
        const char *why = "short read";
        if (read_all(seg->fd, buf, len, s->off) != 0 ||
            !decode_record(buf, len, SIZE_MAX, &r, &why) || r.kind != RAFT__LOG_KIND_ENTRY ||
            r.group != group || r.index != i || r.len != s->len) {
            BASE_ERROR(LOG_MOD, "segment %" PRIu64 " offset %" PRIu64 ": %s", s->seg, s->off,
                       why);
            rc = RAFT_LOG_ERR_CORRUPT;
            goto cleanup;
        }
        es[k].term = r.term;
        es[k].index = i;
        es[k].type = (raft_entry_type)r.etype;
        es[k].len = r.len;
        if (r.len) {
            es[k].data = base_malloc(r.len);
            if (!es[k].data) {
                rc = RAFT_LOG_ERR_NOMEM;
                goto cleanup;
            }
            memcpy(es[k].data, r.payload, r.len);
        }
        k++;
        bytes += r.len;
    }
cleanup:
    pthread_mutex_unlock(&log->mu);
    base_free(buf);
    if (rc != 0) {
        raft_log_entries_free(es, k);
        return rc;
    }
    *out = es;
    *n = k;
    return 0;
}

void raft_log_get_stats(raft_log *log, raft_log_stats *out)
{
    pthread_mutex_lock(&log->mu);
    *out = log->stats;
    out->segments = log->n_segs;
    pthread_mutex_unlock(&log->mu);
}

/* ---- injected faults (tests) -------------------------------------------------------- */
int raft_log_inject_fault(raft_log *log, bool fail_next, int64_t stall_ms)
{
    if (stall_ms < 0 || stall_ms > RAFT_LOG_FAULT_STALL_MS_MAX) return RAFT_LOG_ERR_INVALID;
    atomic_store(&log->fault_stall_until_ns,
                 stall_ms > 0 ? base_monotonic_ns() + stall_ms * 1000000 : 0);
    atomic_store(&log->fault_fail_next, fail_next);
    if (fail_next || stall_ms > 0)
        BASE_WARN(LOG_MOD, "test fault injected: the next fdatasync fails: %s; fdatasyncs "
                  "stall for the next %" PRId64 " ms", fail_next ? "yes" : "no", stall_ms);
    return 0;
}

void raft_log_fault_state(raft_log *log, bool *fail_armed, int64_t *stall_left_ms, bool *poisoned)
{
    *fail_armed = atomic_load(&log->fault_fail_next);
    int64_t left = atomic_load(&log->fault_stall_until_ns) - base_monotonic_ns();
    *stall_left_ms = left > 0 ? (left + 999999) / 1000000 : 0;
    pthread_mutex_lock(&log->mu);
    *poisoned = log->poisoned != 0;
    pthread_mutex_unlock(&log->mu);
}
