/*
** range/range.c: the single local replica. Evaluates reads at a timestamp
** and validates/applies commits (optimistic, backward validation).
**
** Invariants (besides those in range.h):
**   - s->pending holds every commit between "timestamp assigned" and "batch
**     in storage or failed"; its length never exceeds RANGE_PENDING_MAX.
**   - a pending record's write set (request writes + generated tombstone
**     keys + delete spans) is immutable while it is in the list, and lives
**     in the committing thread's frame, which is blocked in range_commit
**     until the record is unlinked.
**   - validation compares only against versions and pending commits; a
**     conflict never leaves anything written.
** The one adapter piece here is the bounded wait (pthread condition with a
** CLOCK_MONOTONIC deadline); the timestamps come only from the HLC passed in.
*/
#include "range/range.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

typedef struct range__pending {
    hlc_timestamp ts;
    const range_commit_request *req;
    /* tombstone keys generated from delete spans: sorted, offsets into keys */
    const base_buf *gen_keys;
    const size_t *gen_offsets; /* gen_count + 1 entries */
    size_t gen_count;
    struct range__pending *prev, *next;
} range__pending;

struct range_store {
    storage_engine *engine; /* borrowed */
    hlc_clock *clock;       /* borrowed */
    bool sync;
    pthread_mutex_t mu;
    pthread_cond_t applied; /* broadcast when a pending commit leaves */
    range__pending *pending_head;
    size_t pending_count;
    range_stats stats;
};

struct range_iter {
    storage_iter *inner;
};

/* Raw key holding the commit timestamp of the last applied commit batch. */
static const uint8_t range__high_water_key[] = "range/hlc-high-water";
#define RANGE__HIGH_WATER_KEY_LEN (sizeof(range__high_water_key) - 1)

/* ---- key helpers ------------------------------------------------------------ */

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0) return c;
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

/* key in span? */
static bool span_contains(const range_span *sp, const uint8_t *key, size_t key_len) {
    if (sp->point) return key_cmp(sp->start, sp->start_len, key, key_len) == 0;
    if (key_cmp(key, key_len, sp->start, sp->start_len) < 0) return false;
    if (sp->end == NULL || sp->end_len == 0) return true;
    return key_cmp(key, key_len, sp->end, sp->end_len) < 0;
}

/* Do two spans intersect? */
static bool spans_overlap(const range_span *a, const range_span *b) {
    if (a->point) return span_contains(b, a->start, a->start_len);
    if (b->point) return span_contains(a, b->start, b->start_len);
    /* [as, ae) and [bs, be): as < be && bs < ae */
    bool a_open = a->end == NULL || a->end_len == 0;
    bool b_open = b->end == NULL || b->end_len == 0;
    if (!b_open && key_cmp(a->start, a->start_len, b->end, b->end_len) >= 0) return false;
    if (!a_open && key_cmp(b->start, b->start_len, a->end, a->end_len) >= 0) return false;
    return true;
}

/* Index of the first write with key >= k (writes sorted). */
static size_t writes_lower_bound(const range_write *w, size_t n, const uint8_t *k, size_t klen) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_cmp(w[mid].key, w[mid].key_len, k, klen) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static size_t gen_lower_bound(const range__pending *p, const uint8_t *k, size_t klen) {
    size_t lo = 0, hi = p->gen_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const uint8_t *mk = p->gen_keys->data + p->gen_offsets[mid];
        size_t mlen = p->gen_offsets[mid + 1] - p->gen_offsets[mid];
        if (key_cmp(mk, mlen, k, klen) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Does pending commit p write anything in span sp? If so, copy one such key
** (the span start for a delete-span overlap) into *key_out. */
static bool pending_touches(const range__pending *p, const range_span *sp, const uint8_t **key_out,
                            size_t *key_len_out) {
    const range_commit_request *r = p->req;
    size_t i = writes_lower_bound(r->writes, r->write_count, sp->start, sp->start_len);
    if (i < r->write_count && span_contains(sp, r->writes[i].key, r->writes[i].key_len)) {
        *key_out = r->writes[i].key;
        *key_len_out = r->writes[i].key_len;
        return true;
    }
    size_t g = gen_lower_bound(p, sp->start, sp->start_len);
    if (g < p->gen_count) {
        const uint8_t *gk = p->gen_keys->data + p->gen_offsets[g];
        size_t glen = p->gen_offsets[g + 1] - p->gen_offsets[g];
        if (span_contains(sp, gk, glen)) {
            *key_out = gk;
            *key_len_out = glen;
            return true;
        }
    }
    for (size_t d = 0; d < r->delete_span_count; d++) {
        if (spans_overlap(&r->delete_spans[d], sp)) {
            const range_span *ds = &r->delete_spans[d];
            bool ds_first = key_cmp(ds->start, ds->start_len, sp->start, sp->start_len) >= 0;
            *key_out = ds_first ? ds->start : sp->start;
            *key_len_out = ds_first ? ds->start_len : sp->start_len;
            return true;
        }
    }
    return false;
}

static int storage_rc(int rc) {
    switch (rc) {
    case STORAGE_ERR_NOMEM:
        return RANGE_ERR_NOMEM;
    case STORAGE_ERR_INVALID:
        return RANGE_ERR_INVALID;
    default:
        return RANGE_ERR_IO;
    }
}

static int conflict_set(range_conflict *c, range_conflict_kind kind, const uint8_t *key,
                        size_t key_len, hlc_timestamp ts, bool pending) {
    if (c == NULL) return RANGE_ERR_CONFLICT;
    c->kind = kind;
    c->conflict_ts = ts;
    c->pending = pending;
    base_buf_reset(&c->key);
    if (base_buf_append(&c->key, key, key_len) != 0) return RANGE_ERR_NOMEM;
    return RANGE_ERR_CONFLICT;
}

void range_conflict_free(range_conflict *c) {
    if (c == NULL) return;
    base_buf_free(&c->key);
    c->kind = RANGE_CONFLICT_NONE;
}

/* ---- store ---------------------------------------------------------------- */

/* Restart: no commit timestamp may fall at or below data already stored
** (the physical clock may be behind it: a fast restart, a clock stepped
** back). Commit batches can land out of timestamp order by at most the time
** they are in flight together, so move the clock past the last stored
** high-water mark plus max_offset. */
static int restore_high_water(storage_engine *engine, hlc_clock *clock) {
    base_buf hwbuf = {0};
    int rc = storage_get_raw(engine, range__high_water_key, RANGE__HIGH_WATER_KEY_LEN, &hwbuf);
    if (rc == STORAGE_NOT_FOUND) {
        rc = RANGE_OK;
    } else if (rc == STORAGE_OK && hwbuf.len == HLC_ENCODED_SIZE) {
        hlc_timestamp hw = hlc_decode(hwbuf.data);
        (void)hlc_update(clock, hlc_add_ns(hw, hlc_max_offset_ns(clock)));
        rc = RANGE_OK;
    } else if (rc == STORAGE_ERR_NOMEM) {
        rc = RANGE_ERR_NOMEM;
    } else {
        BASE_ERROR("range", "cannot read the HLC high-water mark (rc %d, %zu bytes)", rc,
                   hwbuf.len);
        rc = RANGE_ERR_IO;
    }
    base_buf_free(&hwbuf);
    return rc;
}

int range_store_open(storage_engine *engine, hlc_clock *clock, bool sync, range_store **out) {
    assert(engine != NULL && clock != NULL && out != NULL);
    *out = NULL;
    int rc = restore_high_water(engine, clock);
    if (rc != RANGE_OK) return rc;
    range_store *s = base_calloc(1, sizeof(*s));
    if (s == NULL) return RANGE_ERR_NOMEM;
    s->engine = engine;
    s->clock = clock;
    s->sync = sync;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) goto fail_free;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_cond_init(&s->applied, &attr) != 0) {
        pthread_condattr_destroy(&attr);
        goto fail_free;
    }
    pthread_condattr_destroy(&attr);
    if (pthread_mutex_init(&s->mu, NULL) != 0) goto fail_cond;
    *out = s;
    return RANGE_OK;
fail_cond:
    pthread_cond_destroy(&s->applied);
fail_free:
    base_free(s);
    return RANGE_ERR_NOMEM;
}

void range_store_close(range_store *s) {
    if (s == NULL) return;
    assert(s->pending_count == 0);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->applied);
    base_free(s);
}

void range_store_stats(range_store *s, range_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}

static struct timespec deadline_after_ms(long ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static bool pending_at_or_below(const range_store *s, hlc_timestamp ts) {
    for (const range__pending *p = s->pending_head; p != NULL; p = p->next) {
        if (hlc_compare(p->ts, ts) <= 0) return true;
    }
    return false;
}

int range_wait_visible(range_store *s, hlc_timestamp read_ts) {
    int rc = RANGE_OK;
    pthread_mutex_lock(&s->mu);
    if (pending_at_or_below(s, read_ts)) {
        s->stats.visible_waits++;
        struct timespec deadline = deadline_after_ms(RANGE_WAIT_VISIBLE_MAX_MS);
        while (pending_at_or_below(s, read_ts)) {
            int w = pthread_cond_timedwait(&s->applied, &s->mu, &deadline);
            if (w == ETIMEDOUT && pending_at_or_below(s, read_ts)) {
                rc = RANGE_ERR_UNAVAILABLE;
                break;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- reads ---------------------------------------------------------------- */

int range_get(range_store *s, const uint8_t *key, size_t key_len, hlc_timestamp read_ts,
              base_buf *out) {
    if (key == NULL || key_len == 0 || key_len > STORAGE_KEY_SIZE_MAX) return RANGE_ERR_INVALID;
    storage_value v;
    memset(&v, 0, sizeof(v));
    int rc = storage_get(s->engine, NULL, key, key_len, read_ts, &v);
    if (rc == STORAGE_NOT_FOUND) return RANGE_NOT_FOUND;
    if (rc != STORAGE_OK) return storage_rc(rc);
    if (v.tombstone) {
        rc = RANGE_NOT_FOUND;
    } else {
        base_buf_reset(out);
        rc = base_buf_append(out, v.bytes.data, v.bytes.len) == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
    }
    storage_value_free(&v);
    return rc;
}

int range_iter_open(range_store *s, const uint8_t *start, size_t start_len, const uint8_t *end,
                    size_t end_len, hlc_timestamp read_ts, bool reverse, range_iter **out) {
    *out = NULL;
    range_iter *it = base_calloc(1, sizeof(*it));
    if (it == NULL) return RANGE_ERR_NOMEM;
    storage_iter_options o;
    memset(&o, 0, sizeof(o));
    o.start = start_len ? start : NULL;
    o.start_len = start_len;
    o.end = end_len ? end : NULL;
    o.end_len = end_len;
    o.ts = read_ts;
    o.mode = STORAGE_ITER_AT_TS;
    o.reverse = reverse;
    int rc = storage_iter_open(s->engine, NULL, &o, &it->inner);
    if (rc != STORAGE_OK) {
        base_free(it);
        return storage_rc(rc);
    }
    *out = it;
    return RANGE_OK;
}

int range_iter_next(range_iter *it, const uint8_t **key, size_t *key_len, const uint8_t **value,
                    size_t *value_len) {
    /* AT_TS skips tombstones; the loop bound guards a misbehaving engine. */
    for (int guard = 0; guard < 1000000; guard++) {
        hlc_timestamp ts;
        bool tombstone = false;
        int rc = storage_iter_next(it->inner, key, key_len, &ts, value, value_len, &tombstone);
        if (rc < 0) return storage_rc(rc);
        if (rc == 0) return 0;
        if (!tombstone) return 1;
    }
    return RANGE_ERR_IO;
}

void range_iter_close(range_iter *it) {
    if (it == NULL) return;
    storage_iter_close(it->inner);
    base_free(it);
}

/* ---- validation ------------------------------------------------------------- */

/* Is a version in [start,end) newer than read_ts? Fills the conflict. For
** write (delete) spans kind = WRITE_WRITE; for read spans READ_WRITE or
** PHANTOM depending on whether the key had a live value at read_ts. */
static int check_span_storage(range_store *s, const range_span *sp, hlc_timestamp read_ts,
                              bool is_write, range_conflict *conflict) {
    storage_iter_options o;
    memset(&o, 0, sizeof(o));
    o.start = sp->start_len ? sp->start : NULL;
    o.start_len = sp->start_len;
    o.end = sp->end_len ? sp->end : NULL;
    o.end_len = sp->end_len;
    o.mode = STORAGE_ITER_ALL_VERSIONS;
    storage_iter *it = NULL;
    int rc = storage_iter_open(s->engine, NULL, &o, &it);
    if (rc != STORAGE_OK) return storage_rc(rc);
    base_buf hit = {0};
    hlc_timestamp hit_ts = HLC_ZERO;
    bool have_hit = false, live_at_read = false;
    for (;;) {
        const uint8_t *k, *v;
        size_t klen, vlen;
        hlc_timestamp ts;
        bool tomb = false;
        int n = storage_iter_next(it, &k, &klen, &ts, &v, &vlen, &tomb);
        if (n < 0) {
            rc = storage_rc(n);
            goto done;
        }
        if (n == 0) break;
        if (have_hit) {
            /* looking for the hit key's newest version <= read_ts */
            if (key_cmp(k, klen, hit.data, hit.len) != 0) break;
            if (hlc_compare(ts, read_ts) <= 0) {
                live_at_read = !tomb;
                break;
            }
            continue;
        }
        if (hlc_compare(ts, read_ts) > 0) {
            if (base_buf_append(&hit, k, klen) != 0) {
                rc = RANGE_ERR_NOMEM;
                goto done;
            }
            hit_ts = ts;
            have_hit = true;
            if (is_write) break;
        }
    }
    rc = RANGE_OK;
    if (have_hit) {
        range_conflict_kind kind = is_write ? RANGE_CONFLICT_WRITE_WRITE
                                            : (live_at_read ? RANGE_CONFLICT_READ_WRITE
                                                            : RANGE_CONFLICT_PHANTOM);
        rc = conflict_set(conflict, kind, hit.data, hit.len, hit_ts, false);
    }
done:
    base_buf_free(&hit);
    storage_iter_close(it);
    return rc;
}

/* Newest version of key newer than read_ts? */
static int check_key_storage(range_store *s, const uint8_t *key, size_t key_len,
                             hlc_timestamp read_ts, range_conflict_kind kind,
                             range_conflict *conflict) {
    storage_value v;
    memset(&v, 0, sizeof(v));
    int rc = storage_get_latest(s->engine, NULL, key, key_len, &v);
    if (rc == STORAGE_NOT_FOUND) return RANGE_OK;
    if (rc != STORAGE_OK) return storage_rc(rc);
    if (hlc_compare(v.ts, read_ts) > 0) {
        rc = conflict_set(conflict, kind, key, key_len, v.ts, false);
    } else {
        rc = RANGE_OK;
    }
    storage_value_free(&v);
    return rc;
}

/* Does any pending commit (they all have ts > read_ts: see range.h) touch
** span sp? */
static int check_pending(range_store *s, const range_span *sp, range_conflict_kind kind,
                         hlc_timestamp read_ts, range_conflict *conflict) {
    for (const range__pending *p = s->pending_head; p != NULL; p = p->next) {
        const uint8_t *k;
        size_t klen;
        if (pending_touches(p, sp, &k, &klen)) {
            if (kind != RANGE_CONFLICT_WRITE_WRITE) {
                /* phantom if the key had no live value at read_ts */
                base_buf tmp = {0};
                int g = range_get(s, k, klen, read_ts, &tmp);
                base_buf_free(&tmp);
                if (g < 0) return g;
                kind = g == RANGE_NOT_FOUND ? RANGE_CONFLICT_PHANTOM : RANGE_CONFLICT_READ_WRITE;
            }
            return conflict_set(conflict, kind, k, klen, p->ts, true);
        }
    }
    return RANGE_OK;
}

static int validate_request(const range_commit_request *req) {
    for (size_t i = 0; i < req->write_count; i++) {
        const range_write *w = &req->writes[i];
        if (w->key == NULL || w->key_len == 0 || w->key_len > STORAGE_KEY_SIZE_MAX)
            return RANGE_ERR_INVALID;
        if (!w->tombstone && w->value_len > STORAGE_VALUE_SIZE_MAX) return RANGE_ERR_INVALID;
        if (i > 0 && key_cmp(req->writes[i - 1].key, req->writes[i - 1].key_len, w->key,
                             w->key_len) >= 0)
            return RANGE_ERR_INVALID;
    }
    for (size_t i = 0; i < req->delete_span_count; i++) {
        const range_span *sp = &req->delete_spans[i];
        if (sp->point) return RANGE_ERR_INVALID;
        if (sp->start_len > 0 && sp->start == NULL) return RANGE_ERR_INVALID;
    }
    for (size_t i = 0; i < req->read_span_count; i++) {
        const range_span *sp = &req->read_spans[i];
        if (sp->point && (sp->start == NULL || sp->start_len == 0)) return RANGE_ERR_INVALID;
        if (!sp->point && sp->start_len > 0 && sp->start == NULL) return RANGE_ERR_INVALID;
    }
    return RANGE_OK;
}

/* Under s->mu. Checks in order: written keys, delete spans (both
** write-write), then read spans (read-write / phantom). */
static int validate_locked(range_store *s, const range_commit_request *req,
                           range_conflict *conflict) {
    int rc;
    hlc_timestamp r = req->read_ts;
    for (size_t i = 0; i < req->write_count; i++) {
        const range_write *w = &req->writes[i];
        rc = check_key_storage(s, w->key, w->key_len, r, RANGE_CONFLICT_WRITE_WRITE, conflict);
        if (rc != RANGE_OK) return rc;
        range_span sp = {w->key, w->key_len, NULL, 0, true};
        rc = check_pending(s, &sp, RANGE_CONFLICT_WRITE_WRITE, r, conflict);
        if (rc != RANGE_OK) return rc;
    }
    for (size_t i = 0; i < req->delete_span_count; i++) {
        rc = check_span_storage(s, &req->delete_spans[i], r, true, conflict);
        if (rc != RANGE_OK) return rc;
        rc = check_pending(s, &req->delete_spans[i], RANGE_CONFLICT_WRITE_WRITE, r, conflict);
        if (rc != RANGE_OK) return rc;
    }
    for (size_t i = 0; i < req->read_span_count; i++) {
        const range_span *sp = &req->read_spans[i];
        if (sp->point) {
            rc = check_key_storage(s, sp->start, sp->start_len, r, RANGE_CONFLICT_READ_WRITE,
                                   conflict);
        } else {
            rc = check_span_storage(s, sp, r, false, conflict);
        }
        if (rc != RANGE_OK) return rc;
        rc = check_pending(s, sp, RANGE_CONFLICT_READ_WRITE, r, conflict);
        if (rc != RANGE_OK) return rc;
    }
    return RANGE_OK;
}

/* Under s->mu, after validation: keys visible in the delete spans (at the
** latest state, which validation proved equals the state at read_ts) that
** the request does not write explicitly. Sorted, deduplicated. */
static int collect_tombstones_locked(range_store *s, const range_commit_request *req,
                                     base_buf *keys, size_t **offsets, size_t *count) {
    size_t cap = 0;
    *count = 0;
    *offsets = NULL;
    int rc = RANGE_OK;
    for (size_t d = 0; d < req->delete_span_count; d++) {
        const range_span *sp = &req->delete_spans[d];
        range_iter *it = NULL;
        rc = range_iter_open(s, sp->start, sp->start_len, sp->end, sp->end_len, HLC_MAX, false,
                             &it);
        if (rc != RANGE_OK) return rc;
        for (;;) {
            const uint8_t *k, *v;
            size_t klen, vlen;
            int n = range_iter_next(it, &k, &klen, &v, &vlen);
            if (n < 0) {
                rc = n;
                break;
            }
            if (n == 0) break;
            size_t wi = writes_lower_bound(req->writes, req->write_count, k, klen);
            if (wi < req->write_count &&
                key_cmp(req->writes[wi].key, req->writes[wi].key_len, k, klen) == 0)
                continue;
            if (req->write_count + *count + 1 > RANGE_COMMIT_OPS_MAX) {
                rc = RANGE_ERR_TOO_LARGE;
                break;
            }
            if (*count + 2 > cap) {
                size_t ncap = cap ? cap * 2 : 64;
                size_t *p = base_realloc(*offsets, ncap * sizeof(size_t));
                if (p == NULL) {
                    rc = RANGE_ERR_NOMEM;
                    break;
                }
                *offsets = p;
                cap = ncap;
            }
            if (*count == 0) (*offsets)[0] = keys->len;
            if (base_buf_append(keys, k, klen) != 0) {
                rc = RANGE_ERR_NOMEM;
                break;
            }
            (*count)++;
            (*offsets)[*count] = keys->len;
        }
        range_iter_close(it);
        if (rc != RANGE_OK) return rc;
    }
    /* Overlapping delete spans could repeat keys or break the order: sort
    ** check; with more than one span, fall back to an insertion pass. */
    if (req->delete_span_count > 1 && *count > 1) {
        /* Simple approach: rebuild sorted unique list via selection of
        ** offsets (count is bounded by the data in the spans). */
        size_t n = *count;
        size_t *idx = base_malloc(n * sizeof(size_t));
        if (idx == NULL) return RANGE_ERR_NOMEM;
        for (size_t i = 0; i < n; i++) idx[i] = i;
        /* insertion sort by key is O(n^2) in the worst case; spans from one
        ** txn are disjoint in practice, so this is nearly sorted. */
        for (size_t i = 1; i < n; i++) {
            size_t x = idx[i], j = i;
            while (j > 0) {
                size_t y = idx[j - 1];
                if (key_cmp(keys->data + (*offsets)[y], (*offsets)[y + 1] - (*offsets)[y],
                            keys->data + (*offsets)[x], (*offsets)[x + 1] - (*offsets)[x]) <= 0)
                    break;
                idx[j] = y;
                j--;
            }
            idx[j] = x;
        }
        base_buf sorted = {0};
        size_t *noff = base_malloc((n + 1) * sizeof(size_t));
        size_t m = 0;
        if (noff == NULL) {
            base_free(idx);
            return RANGE_ERR_NOMEM;
        }
        noff[0] = 0;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *k = keys->data + (*offsets)[idx[i]];
            size_t klen = (*offsets)[idx[i] + 1] - (*offsets)[idx[i]];
            if (m > 0 && key_cmp(sorted.data + noff[m - 1], noff[m] - noff[m - 1], k, klen) == 0)
                continue;
            if (base_buf_append(&sorted, k, klen) != 0) {
                base_free(idx);
                base_free(noff);
                base_buf_free(&sorted);
                return RANGE_ERR_NOMEM;
            }
            m++;
            noff[m] = sorted.len;
        }
        base_free(idx);
        base_buf_free(keys);
        *keys = sorted;
        base_free(*offsets);
        *offsets = noff;
        *count = m;
    }
    return RANGE_OK;
}

static int build_batch(const range_commit_request *req, const base_buf *gen_keys,
                       const size_t *gen_offsets, size_t gen_count, hlc_timestamp ts,
                       storage_batch **out) {
    storage_batch *b = storage_batch_new();
    if (b == NULL) return RANGE_ERR_NOMEM;
    uint8_t hw[HLC_ENCODED_SIZE];
    hlc_encode(ts, hw);
    int rc = storage_batch_put_raw(b, range__high_water_key, RANGE__HIGH_WATER_KEY_LEN, hw,
                                   sizeof(hw));
    for (size_t i = 0; i < req->write_count && rc == STORAGE_OK; i++) {
        const range_write *w = &req->writes[i];
        if (w->tombstone) {
            rc = storage_batch_delete(b, w->key, w->key_len, ts);
        } else {
            rc = storage_batch_put(b, w->key, w->key_len, ts, w->value, w->value_len);
        }
    }
    for (size_t i = 0; i < gen_count && rc == STORAGE_OK; i++) {
        rc = storage_batch_delete(b, gen_keys->data + gen_offsets[i],
                                  gen_offsets[i + 1] - gen_offsets[i], ts);
    }
    if (rc != STORAGE_OK) {
        storage_batch_free(b);
        return storage_rc(rc);
    }
    *out = b;
    return RANGE_OK;
}

int range_commit(range_store *s, const range_commit_request *req, hlc_timestamp *commit_ts,
                 range_conflict *conflict) {
    assert(s != NULL && req != NULL && commit_ts != NULL);
    if (req->write_count == 0 && req->delete_span_count == 0) {
        /* read-only: its snapshot is consistent by construction */
        *commit_ts = req->read_ts;
        return RANGE_OK;
    }
    int rc = validate_request(req);
    if (rc != RANGE_OK) return rc;
    if (req->write_count > RANGE_COMMIT_OPS_MAX) return RANGE_ERR_TOO_LARGE;

    base_buf gen_keys = {0};
    size_t *gen_offsets = NULL;
    size_t gen_count = 0;
    storage_batch *batch = NULL;
    range__pending me;
    memset(&me, 0, sizeof(me));

    pthread_mutex_lock(&s->mu);
    /* Bounded: each pending commit leaves after its write, which does not
    ** need this mutex. */
    while (s->pending_count >= RANGE_PENDING_MAX) pthread_cond_wait(&s->applied, &s->mu);
    rc = validate_locked(s, req, conflict);
    if (rc == RANGE_OK) rc = collect_tombstones_locked(s, req, &gen_keys, &gen_offsets, &gen_count);
    if (rc != RANGE_OK) {
        if (rc == RANGE_ERR_CONFLICT) s->stats.conflicts++;
        pthread_mutex_unlock(&s->mu);
        goto cleanup;
    }
    hlc_timestamp ts = hlc_now(s->clock);
    if (hlc_compare(ts, req->read_ts) <= 0) {
        /* a read timestamp from another clock (not today): move past it */
        hlc_update(s->clock, req->read_ts);
        ts = hlc_now(s->clock);
    }
    assert(hlc_compare(ts, req->read_ts) > 0);
    me.ts = ts;
    me.req = req;
    me.gen_keys = &gen_keys;
    me.gen_offsets = gen_offsets;
    me.gen_count = gen_count;
    me.next = s->pending_head;
    if (s->pending_head) s->pending_head->prev = &me;
    s->pending_head = &me;
    s->pending_count++;
    pthread_mutex_unlock(&s->mu);

    /* Outside the mutex: concurrent commits share the engine's fsync. */
    rc = build_batch(req, &gen_keys, gen_offsets, gen_count, ts, &batch);
    if (rc == RANGE_OK) {
        int w = storage_write(s->engine, batch, s->sync);
        if (w != STORAGE_OK) {
            BASE_ERROR("range", "commit of txn %llu failed in storage: %d",
                       (unsigned long long)req->txn_id, w);
            rc = storage_rc(w);
        }
    }

    pthread_mutex_lock(&s->mu);
    if (me.prev) me.prev->next = me.next;
    else s->pending_head = me.next;
    if (me.next) me.next->prev = me.prev;
    s->pending_count--;
    if (rc == RANGE_OK) s->stats.commits++;
    pthread_cond_broadcast(&s->applied);
    pthread_mutex_unlock(&s->mu);
    if (rc == RANGE_OK) *commit_ts = ts;

cleanup:
    if (batch) storage_batch_free(batch);
    base_buf_free(&gen_keys);
    base_free(gen_offsets);
    return rc;
}
