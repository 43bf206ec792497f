/*
** range/tscache.c: the leaseholder's timestamp cache (tscache_int.h).
**
** Structure: a skip list of SEGMENTS [start, end) with one timestamp each,
** sorted by start and pairwise disjoint, so a key lies in at most one
** segment; a key in none has the low-water. A point k is the segment
** [k, k\0) (k\0: the smallest key after k). An empty end is +infinity.
**
** Adding [s, e) at t: split the segment holding s (if it starts before s)
** at s and the one holding e at e, so no segment crosses the span's ends;
** raise every segment inside to t where it is lower; fill the gaps between
** them with new segments at t; merge touching neighbours of equal
** timestamp. Querying [s, e): the maximum over the segment holding s and
** the segments starting in [s, e), and the low-water.
**
** Invariants (range__tscache_check tests them):
**   - level 0 is sorted by start; segments are disjoint and non-empty
**     (start < end); every segment's timestamp is above the low-water (one
**     at or below it says nothing the low-water does not, and is dropped
**     whenever the low-water rises);
**   - every level is an ordered sub-list of level 0;
**   - count and key_bytes are the number of segments and the sum of their
**     key lengths; after every public call they are within the limits.
**   - an allocation failure mid-add leaves a valid list (every step either
**     completes or changes nothing; a raised segment only over-approximates)
**     and then raises the low-water to the timestamp being added.
** Limits: TSCACHE_HEIGHT_MAX levels; eviction rounds per add bounded by
** TSCACHE_EVICT_ROUNDS_MAX (each drops at least half of the segments);
** every walk is bounded by the segment count.
*/
#include <stdlib.h>
#include <string.h>

#include "range/eval_int.h"
#include "range/tscache_int.h"

#define TSCACHE_HEIGHT_MAX 12
#define TSCACHE_BRANCHING 4          /* one in 4 nodes climbs a level */
#define TSCACHE_EVICT_ROUNDS_MAX 64  /* each halves the count at least */

typedef struct tscache__node {
    uint8_t *start; /* owned; NULL when start_len is 0 (the smallest key) */
    size_t start_len;
    uint8_t *end;   /* owned; NULL when end_len is 0 (+infinity) */
    size_t end_len;
    hlc_timestamp ts;
    int height;
    struct tscache__node *next[]; /* height entries */
} tscache__node;

struct range__tscache {
    size_t entries_max, bytes_max;
    hlc_timestamp low_water;
    size_t count, key_bytes;
    uint64_t prng;
    uint64_t evictions, nomem;
    tscache__node *head; /* owned sentinel, TSCACHE_HEIGHT_MAX levels, no keys */
};

/* ---- keys ----------------------------------------------------------------------- */

static int tscache__cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return range__key_cmp(a, alen, b, blen);
}

/* key < end, with an empty end = +infinity */
static bool tscache__before_end(const uint8_t *key, size_t klen, const uint8_t *end, size_t elen)
{
    return elen == 0 || tscache__cmp(key, klen, end, elen) < 0;
}

/* Order of two ends (empty = +infinity). */
static int tscache__end_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen == 0 || blen == 0)
        return (alen == 0) - (blen == 0);
    return tscache__cmp(a, alen, b, blen);
}

static bool tscache__same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static hlc_timestamp tscache__ts_max(hlc_timestamp a, hlc_timestamp b)
{
    return hlc_compare(a, b) >= 0 ? a : b;
}

/* A copy of n bytes (NULL for none). false on NOMEM. owner of *out: caller. */
static bool tscache__dup(const uint8_t *p, size_t n, uint8_t **out)
{
    *out = NULL;
    if (n == 0)
        return true;
    *out = base_malloc(n);
    if (*out == NULL)
        return false;
    memcpy(*out, p, n);
    return true;
}

/* ---- the skip list ---------------------------------------------------------------- */

static int tscache__random_height(range__tscache *c)
{
    int h = 1;
    while (h < TSCACHE_HEIGHT_MAX) {
        /* xorshift64 */
        c->prng ^= c->prng << 13;
        c->prng ^= c->prng >> 7;
        c->prng ^= c->prng << 17;
        if (c->prng % TSCACHE_BRANCHING != 0)
            break;
        h++;
    }
    return h;
}

/* update[l]: the last node at level l whose start is < key (the head when
** none). Returns the first node whose start is >= key, or NULL. */
static tscache__node *tscache__find(const range__tscache *c, const uint8_t *key, size_t klen,
                                    tscache__node **update)
{
    tscache__node *x = c->head;
    for (int l = TSCACHE_HEIGHT_MAX - 1; l >= 0; l--) {
        while (x->next[l] != NULL &&
               tscache__cmp(x->next[l]->start, x->next[l]->start_len, key, klen) < 0)
            x = x->next[l];
        update[l] = x;
    }
    return x->next[0];
}

/* A segment [s, e) at ts with copies of the keys; NULL on NOMEM.
** owner: caller until linked. */
static tscache__node *tscache__node_new(range__tscache *c, const uint8_t *s, size_t slen,
                                        const uint8_t *e, size_t elen, hlc_timestamp ts)
{
    int h = tscache__random_height(c);
    tscache__node *n = base_calloc(1, sizeof(*n) + (size_t)h * sizeof(n->next[0]));
    if (n == NULL)
        return NULL;
    n->height = h;
    n->ts = ts;
    if (!tscache__dup(s, slen, &n->start) || !tscache__dup(e, elen, &n->end)) {
        base_free(n->start);
        base_free(n);
        return NULL;
    }
    n->start_len = slen;
    n->end_len = elen;
    return n;
}

static void tscache__node_free(range__tscache *c, tscache__node *n)
{
    c->count--;
    c->key_bytes -= n->start_len + n->end_len;
    base_free(n->start);
    base_free(n->end);
    base_free(n);
}

static void tscache__link(range__tscache *c, tscache__node *n)
{
    tscache__node *update[TSCACHE_HEIGHT_MAX];
    (void)tscache__find(c, n->start, n->start_len, update);
    for (int l = 0; l < n->height; l++) {
        n->next[l] = update[l]->next[l];
        update[l]->next[l] = n;
    }
    c->count++;
    c->key_bytes += n->start_len + n->end_len;
}

/* Unlink n (starts are unique: the nodes before it at each level are the
** last ones with a smaller start) and free it. */
static void tscache__remove(range__tscache *c, tscache__node *n)
{
    tscache__node *update[TSCACHE_HEIGHT_MAX];
    (void)tscache__find(c, n->start, n->start_len, update);
    for (int l = 0; l < n->height; l++)
        if (update[l]->next[l] == n)
            update[l]->next[l] = n->next[l];
    tscache__node_free(c, n);
}

/* Split p = [a, b) at k (a < k < b) into [a, k) and [k, b), same timestamp.
** RANGE_OK, or RANGE_ERR_NOMEM with nothing changed. */
static int tscache__split(range__tscache *c, tscache__node *p, const uint8_t *k, size_t klen)
{
    uint8_t *new_end = NULL; /* owner: this function until p takes it */
    if (!tscache__dup(k, klen, &new_end))
        return RANGE_ERR_NOMEM;
    tscache__node *q = tscache__node_new(c, k, klen, NULL, 0, p->ts);
    if (q == NULL) {
        base_free(new_end);
        return RANGE_ERR_NOMEM;
    }
    /* q takes p's end; p ends at k */
    q->end = p->end;
    q->end_len = p->end_len;
    c->key_bytes -= p->end_len;
    p->end = new_end;
    p->end_len = klen;
    c->key_bytes += klen;
    tscache__link(c, q);
    return RANGE_OK;
}

/* Merge touching neighbours of equal timestamp from the segment before s up
** to the first segment starting after e (e empty: to the end). */
static void tscache__merge_around(range__tscache *c, const uint8_t *s, size_t slen,
                                  const uint8_t *e, size_t elen)
{
    tscache__node *update[TSCACHE_HEIGHT_MAX];
    tscache__node *first = tscache__find(c, s, slen, update);
    tscache__node *a = update[0] != c->head ? update[0] : first;
    size_t guard = c->count + 1;
    while (a != NULL && a->next[0] != NULL && guard-- > 0) {
        tscache__node *b = a->next[0];
        if (tscache__same(a->end, a->end_len, b->start, b->start_len) &&
            hlc_compare(a->ts, b->ts) == 0) {
            /* a takes b's end; b goes */
            base_free(a->end);
            c->key_bytes -= a->end_len;
            a->end = b->end;
            a->end_len = b->end_len;
            c->key_bytes += b->end_len;
            b->end = NULL;
            c->key_bytes -= b->end_len;
            b->end_len = 0;
            tscache__remove(c, b);
            continue;
        }
        if (elen > 0 && tscache__cmp(b->start, b->start_len, e, elen) > 0)
            break;
        a = b;
    }
}

/* Raise the low-water to t (if higher) and drop every segment at or below
** it, at every level (top first, so a node is freed once unlinked
** everywhere). */
static void tscache__raise_low_water(range__tscache *c, hlc_timestamp t)
{
    if (hlc_compare(t, c->low_water) > 0)
        c->low_water = t;
    for (int l = TSCACHE_HEIGHT_MAX - 1; l >= 0; l--) {
        tscache__node *x = c->head;
        while (x->next[l] != NULL) {
            tscache__node *n = x->next[l];
            if (hlc_compare(n->ts, c->low_water) > 0) {
                x = n;
                continue;
            }
            x->next[l] = n->next[l];
            if (l == 0)
                tscache__node_free(c, n);
        }
    }
}

static int tscache__ts_order(const void *a, const void *b)
{
    return hlc_compare(*(const hlc_timestamp *)a, *(const hlc_timestamp *)b);
}

/* Drop the segments with the lower half of the timestamps (all of them when
** the scratch array cannot be had). */
static void tscache__evict(range__tscache *c)
{
    c->evictions++;
    hlc_timestamp *all = base_malloc(c->count * sizeof(*all)); /* owner: this function */
    hlc_timestamp threshold = c->low_water;
    if (all == NULL) {
        for (tscache__node *n = c->head->next[0]; n != NULL; n = n->next[0])
            threshold = tscache__ts_max(threshold, n->ts);
    } else {
        size_t n = 0;
        for (tscache__node *x = c->head->next[0]; x != NULL && n < c->count; x = x->next[0])
            all[n++] = x->ts;
        qsort(all, n, sizeof(*all), tscache__ts_order);
        if (n > 0)
            threshold = all[n / 2]; /* at least n/2 + 1 segments go */
        base_free(all);
    }
    tscache__raise_low_water(c, threshold);
}

static void tscache__enforce_limits(range__tscache *c)
{
    for (int round = 0; round < TSCACHE_EVICT_ROUNDS_MAX && c->count > 0 &&
                        (c->count > c->entries_max || c->key_bytes > c->bytes_max);
         round++)
        tscache__evict(c);
}

/* ---- add and query ------------------------------------------------------------------ */

/* [s, e) at ts (e empty: +infinity; s < e). RANGE_OK or RANGE_ERR_NOMEM
** (the list stays valid, maybe partly raised). */
static int tscache__add_range(range__tscache *c, const uint8_t *s, size_t slen,
                              const uint8_t *e, size_t elen, hlc_timestamp ts)
{
    tscache__node *update[TSCACHE_HEIGHT_MAX];
    int rc;
    /* a segment holding s that starts before it: split at s, unless it
    ** already covers the whole span at ts or above */
    (void)tscache__find(c, s, slen, update);
    tscache__node *p = update[0];
    if (p != c->head && tscache__before_end(s, slen, p->end, p->end_len)) {
        if (hlc_compare(p->ts, ts) >= 0 && tscache__end_cmp(e, elen, p->end, p->end_len) <= 0)
            return RANGE_OK;
        rc = tscache__split(c, p, s, slen);
        if (rc != RANGE_OK)
            return rc;
    }
    /* a segment holding e that starts before it: split at e */
    if (elen > 0) {
        (void)tscache__find(c, e, elen, update);
        p = update[0];
        if (p != c->head && tscache__before_end(e, elen, p->end, p->end_len)) {
            rc = tscache__split(c, p, e, elen);
            if (rc != RANGE_OK)
                return rc;
        }
    }
    /* now no segment crosses s or e: raise those inside, fill the gaps */
    tscache__node *cur = tscache__find(c, s, slen, update);
    const uint8_t *pos = s; /* covered up to here; borrowed from s or a segment */
    size_t pos_len = slen;
    bool to_infinity = false;
    size_t guard = c->count + 1;
    while (cur != NULL && guard-- > 0 &&
           (elen == 0 || tscache__cmp(cur->start, cur->start_len, e, elen) < 0)) {
        if (tscache__cmp(cur->start, cur->start_len, pos, pos_len) > 0) {
            tscache__node *gap = tscache__node_new(c, pos, pos_len, cur->start, cur->start_len, ts);
            if (gap == NULL)
                return RANGE_ERR_NOMEM;
            tscache__link(c, gap);
        }
        if (hlc_compare(cur->ts, ts) < 0)
            cur->ts = ts;
        if (cur->end_len == 0) {
            to_infinity = true;
            break;
        }
        pos = cur->end;
        pos_len = cur->end_len;
        cur = cur->next[0];
    }
    if (!to_infinity && (elen == 0 || tscache__cmp(pos, pos_len, e, elen) < 0)) {
        tscache__node *gap = tscache__node_new(c, pos, pos_len, e, elen, ts);
        if (gap == NULL)
            return RANGE_ERR_NOMEM;
        tscache__link(c, gap);
    }
    tscache__merge_around(c, s, slen, e, elen);
    return RANGE_OK;
}

void range__tscache_add(range__tscache *c, const range_span *sp, hlc_timestamp ts)
{
    uint8_t *point_end = NULL; /* owner: this function */
    const uint8_t *s = sp->start_len > 0 ? sp->start : NULL;
    size_t slen = sp->start_len;
    const uint8_t *e;
    size_t elen;
    if (hlc_compare(ts, c->low_water) <= 0)
        return; /* the low-water already says as much */
    if (sp->point) {
        point_end = base_malloc(slen + 1);
        if (point_end == NULL)
            goto nomem;
        if (slen > 0)
            memcpy(point_end, s, slen);
        point_end[slen] = 0;
        e = point_end;
        elen = slen + 1;
    } else {
        e = sp->end_len > 0 ? sp->end : NULL;
        elen = sp->end_len;
        if (elen > 0 && tscache__cmp(s, slen, e, elen) >= 0)
            return; /* empty span */
    }
    if (tscache__add_range(c, s, slen, e, elen, ts) != RANGE_OK)
        goto nomem;
    base_free(point_end);
    tscache__enforce_limits(c);
    return;
nomem:
    base_free(point_end);
    c->nomem++;
    tscache__raise_low_water(c, ts);
}

hlc_timestamp range__tscache_max(const range__tscache *c, const range_span *sp)
{
    tscache__node *update[TSCACHE_HEIGHT_MAX];
    const uint8_t *s = sp->start_len > 0 ? sp->start : NULL;
    size_t slen = sp->start_len;
    hlc_timestamp best = c->low_water;
    tscache__node *cur = tscache__find(c, s, slen, update);
    tscache__node *p = update[0];
    if (p != c->head && tscache__before_end(s, slen, p->end, p->end_len))
        best = tscache__ts_max(best, p->ts);
    if (sp->point) {
        if (cur != NULL && tscache__same(cur->start, cur->start_len, s, slen))
            best = tscache__ts_max(best, cur->ts);
        return best;
    }
    size_t guard = c->count + 1;
    while (cur != NULL && guard-- > 0 &&
           tscache__before_end(cur->start, cur->start_len, sp->end, sp->end_len)) {
        best = tscache__ts_max(best, cur->ts);
        cur = cur->next[0];
    }
    return best;
}

/* ---- lifetime and inspection ------------------------------------------------------- */

int range__tscache_new(size_t entries_max, size_t bytes_max, hlc_timestamp low_water,
                       uint64_t seed, range__tscache **out)
{
    *out = NULL;
    range__tscache *c = base_calloc(1, sizeof(*c)); /* owner: caller, range__tscache_free */
    if (c == NULL)
        return RANGE_ERR_NOMEM;
    c->head = base_calloc(1, sizeof(*c->head) + TSCACHE_HEIGHT_MAX * sizeof(c->head->next[0]));
    if (c->head == NULL) {
        base_free(c);
        return RANGE_ERR_NOMEM;
    }
    c->head->height = TSCACHE_HEIGHT_MAX;
    c->entries_max = entries_max ? entries_max : RANGE_TSCACHE_ENTRIES_MAX;
    c->bytes_max = bytes_max ? bytes_max : RANGE_TSCACHE_KEY_BYTES_MAX;
    c->low_water = low_water;
    c->prng = seed ? seed : 0x9E3779B97F4A7C15ull; /* xorshift must not start at 0 */
    *out = c;
    return RANGE_OK;
}

void range__tscache_reset(range__tscache *c, hlc_timestamp low_water)
{
    tscache__node *n = c->head->next[0];
    while (n != NULL) {
        tscache__node *next = n->next[0];
        tscache__node_free(c, n);
        n = next;
    }
    for (int l = 0; l < TSCACHE_HEIGHT_MAX; l++)
        c->head->next[l] = NULL;
    c->low_water = low_water;
}

void range__tscache_free(range__tscache *c)
{
    if (c == NULL)
        return;
    range__tscache_reset(c, HLC_ZERO);
    base_free(c->head);
    base_free(c);
}

hlc_timestamp range__tscache_low_water(const range__tscache *c) { return c->low_water; }

void range__tscache_raise_low_water(range__tscache *c, hlc_timestamp t)
{
    if (hlc_compare(t, c->low_water) > 0)
        tscache__raise_low_water(c, t);
}

void range__tscache_get_stats(const range__tscache *c, range__tscache_stats *out)
{
    out->entries = c->count;
    out->key_bytes = c->key_bytes;
    out->evictions = c->evictions;
    out->nomem = c->nomem;
}

bool range__tscache_check(const range__tscache *c)
{
    size_t n = 0, bytes = 0;
    const tscache__node *prev = NULL;
    for (const tscache__node *x = c->head->next[0]; x != NULL; x = x->next[0]) {
        if (++n > c->count)
            return false;
        bytes += x->start_len + x->end_len;
        if (x->height < 1 || x->height > TSCACHE_HEIGHT_MAX)
            return false;
        if (!tscache__before_end(x->start, x->start_len, x->end, x->end_len))
            return false; /* empty segment */
        if (hlc_compare(x->ts, c->low_water) <= 0)
            return false;
        if (prev != NULL) {
            if (prev->end_len == 0) /* +infinity, yet something follows */
                return false;
            if (tscache__cmp(prev->end, prev->end_len, x->start, x->start_len) > 0)
                return false; /* overlap or out of order */
        }
        prev = x;
    }
    if (n != c->count || bytes != c->key_bytes)
        return false;
    if (c->count > c->entries_max || c->key_bytes > c->bytes_max)
        return false;
    for (int l = 1; l < TSCACHE_HEIGHT_MAX; l++) {
        /* level l: ordered, and every node on it has that level and is on level 0 */
        const tscache__node *below = c->head->next[0];
        for (const tscache__node *x = c->head->next[l]; x != NULL; x = x->next[l]) {
            if (x->height <= l)
                return false;
            while (below != NULL && below != x)
                below = below->next[0];
            if (below == NULL)
                return false;
        }
    }
    return true;
}
