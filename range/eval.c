/*
** range/eval.c: optimistic validation against an MVCC store (eval_int.h),
** shared by range_commit (range.c) and the leaseholder (server.c). Moved
** here from range.c unchanged in behaviour: the same checks, in the same
** order, with the same conflict kinds and keys. The leaseholder's VALIDATE
** adds checks bounded above (range__check_read_span_between).
**
** Invariants: read-only on storage; every iteration is bounded by the data
** in the span (and range__collect_tombstones by its ops_max).
*/
#include <string.h>

#include "range/eval_int.h"

/* Guard against a misbehaving engine: consecutive tombstones an AT_TS
** iteration (which skips them itself) may hand out. */
#define EVAL_TOMBSTONE_SKIP_MAX 1000000

static int eval__check_span_between(storage_engine *e, const range_span *sp,
                                    hlc_timestamp read_ts, hlc_timestamp upper, bool is_write,
                                    range_conflict *conflict);

int range__key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

bool range__span_contains(const range_span *sp, const uint8_t *key, size_t key_len)
{
    if (sp->point)
        return range__key_cmp(sp->start, sp->start_len, key, key_len) == 0;
    if (range__key_cmp(key, key_len, sp->start, sp->start_len) < 0)
        return false;
    if (sp->end == NULL || sp->end_len == 0)
        return true;
    return range__key_cmp(key, key_len, sp->end, sp->end_len) < 0;
}

bool range__spans_overlap(const range_span *a, const range_span *b)
{
    if (a->point)
        return range__span_contains(b, a->start, a->start_len);
    if (b->point)
        return range__span_contains(a, b->start, b->start_len);
    /* [as, ae) and [bs, be): as < be && bs < ae */
    bool a_open = a->end == NULL || a->end_len == 0;
    bool b_open = b->end == NULL || b->end_len == 0;
    if (!b_open && range__key_cmp(a->start, a->start_len, b->end, b->end_len) >= 0)
        return false;
    if (!a_open && range__key_cmp(b->start, b->start_len, a->end, a->end_len) >= 0)
        return false;
    return true;
}

size_t range__writes_lower_bound(const range_write *w, size_t n, const uint8_t *k, size_t klen)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (range__key_cmp(w[mid].key, w[mid].key_len, k, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static size_t eval__gen_lower_bound(const range__write_set *ws, const uint8_t *k, size_t klen)
{
    size_t lo = 0, hi = ws->gen_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const uint8_t *mk = ws->gen_keys + ws->gen_offsets[mid];
        size_t mlen = ws->gen_offsets[mid + 1] - ws->gen_offsets[mid];
        if (range__key_cmp(mk, mlen, k, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool range__write_set_touches(const range__write_set *ws, const range_span *sp,
                              const uint8_t **key_out, size_t *key_len_out)
{
    size_t i = range__writes_lower_bound(ws->writes, ws->write_count, sp->start, sp->start_len);
    if (i < ws->write_count &&
        range__span_contains(sp, ws->writes[i].key, ws->writes[i].key_len)) {
        *key_out = ws->writes[i].key;
        *key_len_out = ws->writes[i].key_len;
        return true;
    }
    size_t g = eval__gen_lower_bound(ws, sp->start, sp->start_len);
    if (g < ws->gen_count) {
        const uint8_t *gk = ws->gen_keys + ws->gen_offsets[g];
        size_t glen = ws->gen_offsets[g + 1] - ws->gen_offsets[g];
        if (range__span_contains(sp, gk, glen)) {
            *key_out = gk;
            *key_len_out = glen;
            return true;
        }
    }
    for (size_t d = 0; d < ws->delete_span_count; d++) {
        const range_span *ds = &ws->delete_spans[d];
        if (range__spans_overlap(ds, sp)) {
            bool ds_first = range__key_cmp(ds->start, ds->start_len, sp->start, sp->start_len) >= 0;
            *key_out = ds_first ? ds->start : sp->start;
            *key_len_out = ds_first ? ds->start_len : sp->start_len;
            return true;
        }
    }
    return false;
}

int range__storage_rc(int rc)
{
    switch (rc) {
    case STORAGE_ERR_NOMEM:
        return RANGE_ERR_NOMEM;
    case STORAGE_ERR_INVALID:
        return RANGE_ERR_INVALID;
    default:
        return RANGE_ERR_IO;
    }
}

int range__conflict_set(range_conflict *c, range_conflict_kind kind, const uint8_t *key,
                        size_t key_len, hlc_timestamp ts, bool pending)
{
    if (c == NULL)
        return RANGE_ERR_CONFLICT;
    c->kind = kind;
    c->conflict_ts = ts;
    c->pending = pending;
    base_buf_reset(&c->key);
    if (base_buf_append(&c->key, key, key_len) != 0)
        return RANGE_ERR_NOMEM;
    return RANGE_ERR_CONFLICT;
}

int range__validate_request(const range_commit_request *req)
{
    for (size_t i = 0; i < req->write_count; i++) {
        const range_write *w = &req->writes[i];
        if (w->key == NULL || w->key_len == 0 || w->key_len > STORAGE_KEY_SIZE_MAX)
            return RANGE_ERR_INVALID;
        if (!w->tombstone && w->value_len > STORAGE_VALUE_SIZE_MAX)
            return RANGE_ERR_INVALID;
        if (i > 0 && range__key_cmp(req->writes[i - 1].key, req->writes[i - 1].key_len, w->key,
                                    w->key_len) >= 0)
            return RANGE_ERR_INVALID;
    }
    for (size_t i = 0; i < req->delete_span_count; i++) {
        const range_span *sp = &req->delete_spans[i];
        if (sp->point)
            return RANGE_ERR_INVALID;
        if (sp->start_len > 0 && sp->start == NULL)
            return RANGE_ERR_INVALID;
    }
    for (size_t i = 0; i < req->read_span_count; i++) {
        const range_span *sp = &req->read_spans[i];
        if (sp->point && (sp->start == NULL || sp->start_len == 0))
            return RANGE_ERR_INVALID;
        if (!sp->point && sp->start_len > 0 && sp->start == NULL)
            return RANGE_ERR_INVALID;
    }
    return RANGE_OK;
}

int range__check_span_storage(storage_engine *e, const range_span *sp, hlc_timestamp read_ts,
                              bool is_write, range_conflict *conflict)
{
    return eval__check_span_between(e, sp, read_ts, HLC_MAX, is_write, conflict);
}

int range__check_read_span_between(storage_engine *e, const range_span *sp,
                                   hlc_timestamp read_ts, hlc_timestamp upper,
                                   range_conflict *conflict)
{
    if (!sp->point)
        return eval__check_span_between(e, sp, read_ts, upper, false, conflict);
    storage_value v;
    memset(&v, 0, sizeof(v));
    int rc = storage_get(e, NULL, sp->start, sp->start_len, upper, &v);
    if (rc == STORAGE_NOT_FOUND)
        return RANGE_OK;
    if (rc != STORAGE_OK)
        return range__storage_rc(rc);
    if (hlc_compare(v.ts, read_ts) > 0)
        rc = range__conflict_set(conflict, RANGE_CONFLICT_READ_WRITE, sp->start, sp->start_len,
                                 v.ts, false);
    else
        rc = RANGE_OK;
    storage_value_free(&v);
    return rc;
}

/* The first key of sp with a version in (read_ts, upper]; versions above
** upper are skipped (see range__check_span_storage). */
static int eval__check_span_between(storage_engine *e, const range_span *sp,
                                    hlc_timestamp read_ts, hlc_timestamp upper, bool is_write,
                                    range_conflict *conflict)
{
    storage_iter_options o;
    memset(&o, 0, sizeof(o));
    o.start = sp->start_len ? sp->start : NULL;
    o.start_len = sp->start_len;
    o.end = sp->end_len ? sp->end : NULL;
    o.end_len = sp->end_len;
    o.mode = STORAGE_ITER_ALL_VERSIONS;
    storage_iter *it = NULL;
    int rc = storage_iter_open(e, NULL, &o, &it);
    if (rc != STORAGE_OK)
        return range__storage_rc(rc);
    base_buf hit = {0}; /* owner: this function */
    hlc_timestamp hit_ts = HLC_ZERO;
    bool have_hit = false, live_at_read = false;
    for (;;) {
        const uint8_t *k, *v;
        size_t klen, vlen;
        hlc_timestamp ts;
        bool tomb = false;
        int n = storage_iter_next(it, &k, &klen, &ts, &v, &vlen, &tomb);
        if (n < 0) {
            rc = range__storage_rc(n);
            goto done;
        }
        if (n == 0)
            break;
        if (have_hit) {
            /* looking for the hit key's newest version <= read_ts */
            if (range__key_cmp(k, klen, hit.data, hit.len) != 0)
                break;
            if (hlc_compare(ts, read_ts) <= 0) {
                live_at_read = !tomb;
                break;
            }
            continue;
        }
        if (hlc_compare(ts, read_ts) > 0 && hlc_compare(ts, upper) <= 0) {
            if (base_buf_append(&hit, k, klen) != 0) {
                rc = RANGE_ERR_NOMEM;
                goto done;
            }
            hit_ts = ts;
            have_hit = true;
            if (is_write)
                break;
        }
    }
    rc = RANGE_OK;
    if (have_hit) {
        range_conflict_kind kind = is_write ? RANGE_CONFLICT_WRITE_WRITE
                                            : (live_at_read ? RANGE_CONFLICT_READ_WRITE
                                                            : RANGE_CONFLICT_PHANTOM);
        rc = range__conflict_set(conflict, kind, hit.data, hit.len, hit_ts, false);
    }
done:
    base_buf_free(&hit);
    storage_iter_close(it);
    return rc;
}

int range__check_key_storage(storage_engine *e, const uint8_t *key, size_t key_len,
                             hlc_timestamp read_ts, range_conflict_kind kind,
                             range_conflict *conflict)
{
    storage_value v;
    memset(&v, 0, sizeof(v));
    int rc = storage_get_latest(e, NULL, key, key_len, &v);
    if (rc == STORAGE_NOT_FOUND)
        return RANGE_OK;
    if (rc != STORAGE_OK)
        return range__storage_rc(rc);
    if (hlc_compare(v.ts, read_ts) > 0)
        rc = range__conflict_set(conflict, kind, key, key_len, v.ts, false);
    else
        rc = RANGE_OK;
    storage_value_free(&v);
    return rc;
}

/* Live keys of one delete span at the latest state, appended (see below). */
static int eval__collect_span(storage_engine *e, const range_commit_request *req,
                              const range_span *sp, size_t ops_max, base_buf *keys,
                              size_t **offsets, size_t *count, size_t *cap)
{
    storage_iter_options o;
    memset(&o, 0, sizeof(o));
    o.start = sp->start_len ? sp->start : NULL;
    o.start_len = sp->start_len;
    o.end = sp->end_len ? sp->end : NULL;
    o.end_len = sp->end_len;
    o.ts = HLC_MAX;
    o.mode = STORAGE_ITER_AT_TS;
    storage_iter *it = NULL;
    int rc = storage_iter_open(e, NULL, &o, &it);
    if (rc != STORAGE_OK)
        return range__storage_rc(rc);
    int skipped = 0;
    for (;;) {
        const uint8_t *k;
        size_t klen;
        hlc_timestamp ts;
        bool tomb = false;
        int n = storage_iter_next(it, &k, &klen, &ts, NULL, NULL, &tomb);
        if (n < 0) {
            rc = range__storage_rc(n);
            break;
        }
        if (n == 0)
            break;
        if (tomb) {
            /* AT_TS skips tombstones; the bound guards a misbehaving engine. */
            if (++skipped >= EVAL_TOMBSTONE_SKIP_MAX) {
                rc = RANGE_ERR_IO;
                break;
            }
            continue;
        }
        skipped = 0;
        size_t wi = range__writes_lower_bound(req->writes, req->write_count, k, klen);
        if (wi < req->write_count &&
            range__key_cmp(req->writes[wi].key, req->writes[wi].key_len, k, klen) == 0)
            continue;
        if (req->write_count + *count + 1 > ops_max) {
            rc = RANGE_ERR_TOO_LARGE;
            break;
        }
        if (*count + 2 > *cap) {
            size_t ncap = *cap ? *cap * 2 : 64;
            size_t *p = base_realloc(*offsets, ncap * sizeof(size_t));
            if (p == NULL) {
                rc = RANGE_ERR_NOMEM;
                break;
            }
            *offsets = p;
            *cap = ncap;
        }
        if (*count == 0)
            (*offsets)[0] = keys->len;
        if (base_buf_append(keys, k, klen) != 0) {
            rc = RANGE_ERR_NOMEM;
            break;
        }
        (*count)++;
        (*offsets)[*count] = keys->len;
    }
    storage_iter_close(it);
    return rc;
}

/* Several delete spans may overlap or come unordered: sort the collected
** keys and drop repeats. Insertion sort: spans of one transaction are
** disjoint and ordered in practice, so the keys arrive nearly sorted. */
static int eval__sort_unique(base_buf *keys, size_t **offsets, size_t *count)
{
    size_t n = *count;
    size_t *idx = base_malloc(n * sizeof(size_t)); /* owner: this function */
    if (idx == NULL)
        return RANGE_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    for (size_t i = 1; i < n; i++) {
        size_t x = idx[i], j = i;
        while (j > 0) {
            size_t y = idx[j - 1];
            if (range__key_cmp(keys->data + (*offsets)[y], (*offsets)[y + 1] - (*offsets)[y],
                               keys->data + (*offsets)[x], (*offsets)[x + 1] - (*offsets)[x]) <= 0)
                break;
            idx[j] = y;
            j--;
        }
        idx[j] = x;
    }
    base_buf sorted = {0};                              /* owner: *keys on success */
    size_t *noff = base_malloc((n + 1) * sizeof(size_t)); /* owner: *offsets on success */
    size_t m = 0;
    if (noff == NULL) {
        base_free(idx);
        return RANGE_ERR_NOMEM;
    }
    noff[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *k = keys->data + (*offsets)[idx[i]];
        size_t klen = (*offsets)[idx[i] + 1] - (*offsets)[idx[i]];
        if (m > 0 && range__key_cmp(sorted.data + noff[m - 1], noff[m] - noff[m - 1], k, klen) == 0)
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
    return RANGE_OK;
}

int range__collect_tombstones(storage_engine *e, const range_commit_request *req,
                              size_t ops_max, base_buf *keys, size_t **offsets, size_t *count)
{
    size_t cap = 0;
    *count = 0;
    *offsets = NULL;
    for (size_t d = 0; d < req->delete_span_count; d++) {
        int rc = eval__collect_span(e, req, &req->delete_spans[d], ops_max, keys, offsets, count,
                                    &cap);
        if (rc != RANGE_OK)
            return rc;
    }
    if (req->delete_span_count > 1 && *count > 1)
        return eval__sort_unique(keys, offsets, count);
    return RANGE_OK;
}

/* ---- intents ------------------------------------------------------------------ */

int range__intent_each(storage_engine *e, const range_span *sp, range__intent_fn fn, void *ctx)
{
    base_buf start = {0}, end = {0}, raw = {0}, val = {0}; /* owner: this function */
    range__intent in;
    const uint8_t *key;
    size_t key_len;
    int rc = range__intent_span(sp, &start, &end);
    if (rc != RANGE_OK)
        goto cleanup;
    if (sp->point) {
        /* one get: the intent key is the span's start */
        int g = storage_get_raw(e, start.data, start.len, &val);
        if (g == STORAGE_NOT_FOUND) {
            rc = 0;
        } else if (g < 0) {
            rc = range__storage_rc(g);
        } else if (range__intent_decode(val.data, val.len, &in) != RANGE_OK ||
                   !range__intent_key_user(start.data, start.len, &key, &key_len)) {
            rc = RANGE_ERR_CORRUPT;
        } else {
            rc = fn(ctx, start.data, start.len, key, key_len, &in);
        }
        goto cleanup;
    }
    for (size_t seen = 0;; seen++) {
        if (seen >= RANGE__INTENT_SCAN_MAX) {
            rc = RANGE_ERR_BUSY;
            break;
        }
        int g = storage_seek_raw(e, start.data, start.len, end.data, end.len, &raw, &val);
        if (g == STORAGE_NOT_FOUND) {
            rc = 0;
            break;
        }
        if (g < 0) {
            rc = range__storage_rc(g);
            break;
        }
        if (range__intent_decode(val.data, val.len, &in) != RANGE_OK ||
            !range__intent_key_user(raw.data, raw.len, &key, &key_len)) {
            rc = RANGE_ERR_CORRUPT;
            break;
        }
        rc = fn(ctx, raw.data, raw.len, key, key_len, &in);
        if (rc != 0)
            break;
        /* next: the smallest key after raw (raw 0x00) */
        base_buf_reset(&start);
        if (base_buf_append(&start, raw.data, raw.len) != 0 || base_buf_append_byte(&start, 0) != 0) {
            rc = RANGE_ERR_NOMEM;
            break;
        }
    }
cleanup:
    base_buf_free(&start);
    base_buf_free(&end);
    base_buf_free(&raw);
    base_buf_free(&val);
    return rc;
}

void range__intent_hit_free(range__intent_hit *h)
{
    base_buf_free(&h->key);
    base_buf_free(&h->anchor);
    h->txn_id = 0;
    h->ts = HLC_ZERO;
    h->unreplicated = false;
    h->since_ns = 0;
}

typedef struct eval__find {
    uint64_t self;
    hlc_timestamp upper;
    range__intent_hit *hit;
} eval__find;

static int eval__find_fn(void *ctx, const uint8_t *raw, size_t raw_len, const uint8_t *key,
                         size_t key_len, const range__intent *in)
{
    (void)raw;
    (void)raw_len;
    eval__find *f = ctx;
    if (in->txn_id == f->self || hlc_compare(in->ts, f->upper) > 0)
        return 0;
    base_buf_reset(&f->hit->key);
    base_buf_reset(&f->hit->anchor);
    if (base_buf_append(&f->hit->key, key, key_len) != 0 ||
        base_buf_append(&f->hit->anchor, in->anchor, in->anchor_len) != 0)
        return RANGE_ERR_NOMEM;
    f->hit->txn_id = in->txn_id;
    f->hit->ts = in->ts;
    f->hit->unreplicated = false;
    f->hit->since_ns = 0;
    return 1;
}

int range__find_intent(storage_engine *e, const range_span *sp, uint64_t self,
                       hlc_timestamp upper, range__intent_hit *hit)
{
    eval__find f = {self, upper, hit};
    int rc = range__intent_each(e, sp, eval__find_fn, &f);
    return rc == 1 ? RANGE_ERR_INTENT : rc;
}

/* Any intent in the user span sp (not a point)? One seek, bounded by sp's
** end: it skips the deleted intent keys inside sp only. */
static int eval__span_has_intents(storage_engine *e, const range_span *sp, bool *has)
{
    base_buf start = {0}, end = {0}, raw = {0}; /* owner: this function */
    *has = true; /* on error: the slow path is always right */
    int rc = range__intent_span(sp, &start, &end);
    if (rc == RANGE_OK) {
        int g = storage_seek_raw(e, start.data, start.len, end.data, end.len, &raw, NULL);
        if (g == STORAGE_NOT_FOUND)
            *has = false;
        else if (g < 0)
            rc = range__storage_rc(g);
    }
    base_buf_free(&start);
    base_buf_free(&end);
    base_buf_free(&raw);
    return rc;
}

int range__range_has_intents(storage_engine *e, const range_descriptor *d, bool *has)
{
    range_span all = {d->start_key, d->start_len, d->end_key, d->end_len, false};
    return eval__span_has_intents(e, &all, has);
}

/* Raise *end (exclusive; *open: no end) to cover the key k (incl: k itself,
** so its end is k 0x00; else k is an exclusive end). tmp: scratch. */
static int eval__bound_raise(base_buf *end, bool *open, const uint8_t *k, size_t klen,
                             bool incl, base_buf *tmp)
{
    if (*open)
        return RANGE_OK;
    base_buf_reset(tmp);
    if (base_buf_append(tmp, k, klen) != 0 || (incl && base_buf_append_byte(tmp, 0) != 0))
        return RANGE_ERR_NOMEM;
    if (end->len > 0 && range__key_cmp(tmp->data, tmp->len, end->data, end->len) <= 0)
        return RANGE_OK;
    base_buf_reset(end);
    return base_buf_append(end, tmp->data, tmp->len) == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
}

int range__request_has_intents(storage_engine *e, const range_descriptor *d,
                               const range_commit_request *req, bool *has)
{
    base_buf end = {0}, tmp = {0}; /* owner: this function */
    const uint8_t *lo = NULL;      /* borrowed from req or d */
    size_t lo_len = 0;
    bool any = false, open = false;
    int rc = RANGE_OK;
    *has = true; /* on error: the slow path is always right */
    if (req->write_count > 0) {
        /* writes are sorted: the first and the last bound them */
        lo = req->writes[0].key;
        lo_len = req->writes[0].key_len;
        any = true;
        const range_write *w = &req->writes[req->write_count - 1];
        rc = eval__bound_raise(&end, &open, w->key, w->key_len, true, &tmp);
    }
    size_t n_spans = req->delete_span_count + req->read_span_count;
    for (size_t i = 0; i < n_spans && rc == RANGE_OK; i++) {
        const range_span *sp = i < req->delete_span_count
                                   ? &req->delete_spans[i]
                                   : &req->read_spans[i - req->delete_span_count];
        if (!any || range__key_cmp(sp->start, sp->start_len, lo, lo_len) < 0) {
            lo = sp->start;
            lo_len = sp->start_len;
        }
        any = true;
        if (sp->point)
            rc = eval__bound_raise(&end, &open, sp->start, sp->start_len, true, &tmp);
        else if (sp->end_len == 0)
            open = true;
        else
            rc = eval__bound_raise(&end, &open, sp->end, sp->end_len, false, &tmp);
    }
    if (rc == RANGE_OK && !any)
        *has = false; /* nothing to check */
    if (rc == RANGE_OK && any) {
        /* clip to the range: its keys are all the request may hold */
        if (range__key_cmp(lo, lo_len, d->start_key, d->start_len) < 0) {
            lo = d->start_key;
            lo_len = d->start_len;
        }
        if (d->end_len > 0 &&
            (open || range__key_cmp(end.data, end.len, d->end_key, d->end_len) > 0)) {
            open = false;
            base_buf_reset(&end);
            if (base_buf_append(&end, d->end_key, d->end_len) != 0)
                rc = RANGE_ERR_NOMEM;
        }
    }
    if (rc == RANGE_OK && any) {
        if (!open && range__key_cmp(lo, lo_len, end.data, end.len) >= 0) {
            *has = false; /* empty: nothing of the request inside the range */
        } else {
            range_span bound = {lo, lo_len, open ? NULL : end.data, open ? 0 : end.len, false};
            rc = eval__span_has_intents(e, &bound, has);
        }
    }
    base_buf_free(&end);
    base_buf_free(&tmp);
    return rc;
}
