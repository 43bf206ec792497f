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
#include "range/eval_int.h"
#include "range/store_kv_int.h"

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
    range__store_kv kv_view; /* range_store_kv() (store_kv.c) */
};

struct range_iter {
    storage_iter *inner;
};

/* Raw key holding the commit timestamp of the last applied commit batch. */
static const uint8_t range__high_water_key[] = "range/hlc-high-water";
#define RANGE__HIGH_WATER_KEY_LEN (sizeof(range__high_water_key) - 1)

/* Key, span and storage checks live in eval.c (shared with server.c). */

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
    range__store_kv_init(&s->kv_view, s);
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

range__store_kv *range__store_kv_of(range_store *s) { return &s->kv_view; }

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
    if (rc != STORAGE_OK) return range__storage_rc(rc);
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
        return range__storage_rc(rc);
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
        if (rc < 0) return range__storage_rc(rc);
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

/* Does any pending commit (they all have ts > read_ts: see range.h) touch
** span sp? */
static int check_pending(range_store *s, const range_span *sp, range_conflict_kind kind,
                         hlc_timestamp read_ts, range_conflict *conflict) {
    for (const range__pending *p = s->pending_head; p != NULL; p = p->next) {
        const uint8_t *k;
        size_t klen;
        range__write_set ws = {p->req->writes, p->req->write_count, p->gen_keys->data,
                               p->gen_offsets, p->gen_count, p->req->delete_spans,
                               p->req->delete_span_count};
        if (range__write_set_touches(&ws, sp, &k, &klen)) {
            if (kind != RANGE_CONFLICT_WRITE_WRITE) {
                /* phantom if the key had no live value at read_ts */
                base_buf tmp = {0};
                int g = range_get(s, k, klen, read_ts, &tmp);
                base_buf_free(&tmp);
                if (g < 0) return g;
                kind = g == RANGE_NOT_FOUND ? RANGE_CONFLICT_PHANTOM : RANGE_CONFLICT_READ_WRITE;
            }
            return range__conflict_set(conflict, kind, k, klen, p->ts, true);
        }
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
        rc = range__check_key_storage(s->engine, w->key, w->key_len, r,
                                      RANGE_CONFLICT_WRITE_WRITE, conflict);
        if (rc != RANGE_OK) return rc;
        range_span sp = {w->key, w->key_len, NULL, 0, true};
        rc = check_pending(s, &sp, RANGE_CONFLICT_WRITE_WRITE, r, conflict);
        if (rc != RANGE_OK) return rc;
    }
    for (size_t i = 0; i < req->delete_span_count; i++) {
        rc = range__check_span_storage(s->engine, &req->delete_spans[i], r, true, conflict);
        if (rc != RANGE_OK) return rc;
        rc = check_pending(s, &req->delete_spans[i], RANGE_CONFLICT_WRITE_WRITE, r, conflict);
        if (rc != RANGE_OK) return rc;
    }
    for (size_t i = 0; i < req->read_span_count; i++) {
        const range_span *sp = &req->read_spans[i];
        if (sp->point) {
            rc = range__check_key_storage(s->engine, sp->start, sp->start_len, r,
                                          RANGE_CONFLICT_READ_WRITE, conflict);
        } else {
            rc = range__check_span_storage(s->engine, sp, r, false, conflict);
        }
        if (rc != RANGE_OK) return rc;
        rc = check_pending(s, sp, RANGE_CONFLICT_READ_WRITE, r, conflict);
        if (rc != RANGE_OK) return rc;
    }
    return RANGE_OK;
}

static int build_batch(const range_commit_request *req, const base_buf *gen_keys,
                       const size_t *gen_offsets, size_t gen_count, hlc_timestamp ts,
                       storage_batch **out) {
    storage_batch *b = storage_batch_new_large(); /* RANGE_COMMIT_OPS_MAX fits */
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
        return range__storage_rc(rc);
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
    int rc = range__validate_request(req);
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
    if (rc == RANGE_OK)
        rc = range__collect_tombstones(s->engine, req, RANGE_COMMIT_OPS_MAX, &gen_keys,
                                       &gen_offsets, &gen_count);
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
            rc = range__storage_rc(w);
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
