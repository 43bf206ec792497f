/*
** range/loadsplit.c: a range's load (decayed read and write rates) and the
** load-split finder (loadsplit_int.h; docs/range.md, "Load"). Pure: time
** and the PRNG state come from the caller.
**
** Invariants (loadsplit_int.h has the whole list):
**   - a request over sp counts, for a candidate K, LEFT when it lies wholly
**     below K, RIGHT when it starts at or above K, CONTAINED when a split
**     at K would cut it: so a key all the load is on is never suggested;
**   - the suggestion comes from at most the last two windows;
**   - the sampled keys are owned here and freed on reset, rotation, free.
*/
#include "range/loadsplit_int.h"

#include <math.h>
#include <string.h>

#include "range/eval_int.h"

/* ---- rates ------------------------------------------------------------------ */

static double decay(int64_t elapsed_ns)
{
    if (elapsed_ns <= 0)
        return 1.0;
    return exp2(-(double)elapsed_ns / (double)RANGE_LOAD_HALF_LIFE_NS);
}

void range__rate_add(range__rate *r, int64_t now_ns)
{
    if (now_ns > r->last_ns) {
        r->value *= decay(now_ns - r->last_ns);
        r->last_ns = now_ns;
    }
    r->value += 1.0;
}

void range__rate_init(range__rate *r, int64_t now_ns)
{
    r->value = 0.0;
    r->last_ns = r->start_ns = now_ns;
}

double range__rate_per_second(const range__rate *r, int64_t now_ns)
{
    double half_life_s = (double)RANGE_LOAD_HALF_LIFE_NS / 1e9;
    int64_t age_ns = now_ns - r->start_ns;
    if (age_ns < 1000000000LL)
        age_ns = 1000000000LL; /* one event at the start is not a huge rate */
    double measured = 1.0 - decay(age_ns); /* the weight of the time seen, <= 1 */
    return r->value * decay(now_ns - r->last_ns) * 0.69314718055994530942 / half_life_s /
           measured;
}

/* ---- the finder -------------------------------------------------------------- */

static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state != 0 ? *state : 1; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ULL;
}

void range__finder_init(range__split_finder *f, int64_t start_ns)
{
    memset(f, 0, sizeof(*f));
    f->start_ns = start_ns;
}

void range__finder_reset(range__split_finder *f, int64_t start_ns)
{
    for (size_t i = 0; i < f->n_samples; i++)
        base_free(f->samples[i].key);
    range__finder_init(f, start_ns);
}

/* Which side of a split at candidate k the request over sp falls on. */
static void count_against(range__split_sample *c, const range_span *sp)
{
    if (range__key_cmp(sp->start, sp->start_len, c->key, c->key_len) >= 0) {
        c->right++; /* starts at or above the split: wholly on the right */
    } else if (sp->point ||
               (sp->end_len > 0 && range__key_cmp(sp->end, sp->end_len, c->key, c->key_len) <= 0)) {
        c->left++;
    } else {
        c->contained++; /* [s, e) with s < k < e: a split at k cuts it */
    }
}

void range__finder_record(range__split_finder *f, const range_span *sp, uint64_t *rng)
{
    f->count++;
    size_t slot = RANGE_LOADSPLIT_SAMPLES; /* none */
    if (f->n_samples < RANGE_LOADSPLIT_SAMPLES) {
        slot = f->n_samples;
    } else {
        uint64_t pick = next_random(rng) % f->count; /* reservoir: keep with N / count */
        if (pick < RANGE_LOADSPLIT_SAMPLES)
            slot = (size_t)pick;
    }
    for (size_t i = 0; i < f->n_samples; i++)
        if (i != slot)
            count_against(&f->samples[i], sp);
    if (slot == RANGE_LOADSPLIT_SAMPLES || sp->start_len == 0 ||
        sp->start_len > RANGE_LOADSPLIT_KEY_BYTES_MAX)
        return; /* an empty start (the key space's) is never a split key */
    uint8_t *key = base_malloc(sp->start_len); /* owner: f */
    if (key == NULL)
        return; /* the sample is skipped; the old one stays */
    memcpy(key, sp->start, sp->start_len);
    if (slot == f->n_samples)
        f->n_samples++;
    else
        base_free(f->samples[slot].key);
    f->samples[slot] = (range__split_sample){.key = key, .key_len = sp->start_len};
}

const uint8_t *range__finder_key(const range__split_finder *f, size_t *len)
{
    const range__split_sample *best = NULL;
    double best_score = 3.0;
    for (size_t i = 0; i < f->n_samples; i++) {
        const range__split_sample *c = &f->samples[i];
        uint64_t sides = c->left + c->right, all = sides + c->contained;
        if (all < RANGE_LOADSPLIT_COUNT_MIN || sides == 0)
            continue;
        double balance = (double)(c->left > c->right ? c->left - c->right : c->right - c->left) /
                         (double)sides;
        double contained = (double)c->contained / (double)all;
        if (balance >= RANGE_LOADSPLIT_BALANCE_MAX || contained >= RANGE_LOADSPLIT_CONTAINED_MAX)
            continue;
        double score = balance + contained;
        /* ties: the smaller key, so equal counts give one answer */
        if (best == NULL || score < best_score ||
            (score == best_score &&
             range__key_cmp(c->key, c->key_len, best->key, best->key_len) < 0)) {
            best = c;
            best_score = score;
        }
    }
    *len = best != NULL ? best->key_len : 0;
    return best != NULL ? best->key : NULL;
}

/* ---- a range's load --------------------------------------------------------------- */

void range__load_init(range__load *l, int64_t now_ns)
{
    memset(l, 0, sizeof(*l));
    range__rate_init(&l->reads, now_ns);
    range__rate_init(&l->writes, now_ns);
    range__finder_init(&l->cur, now_ns);
    range__finder_init(&l->prev, now_ns - RANGE_LOADSPLIT_WINDOW_NS);
}

void range__load_free(range__load *l)
{
    range__finder_reset(&l->cur, 0);
    range__finder_reset(&l->prev, 0);
}

void range__load_reset(range__load *l, int64_t now_ns)
{
    range__load_free(l);
    range__load_init(l, now_ns);
}

/* Start a new window when the current one is over (the previous one goes;
** after a long idle spell both start over). */
static void rotate(range__load *l, int64_t now_ns)
{
    int64_t elapsed = now_ns - l->cur.start_ns;
    if (elapsed < RANGE_LOADSPLIT_WINDOW_NS)
        return;
    range__finder_reset(&l->prev, 0);
    if (elapsed < 2 * RANGE_LOADSPLIT_WINDOW_NS) {
        l->prev = l->cur; /* the samples' keys move with it */
        range__finder_init(&l->cur, l->prev.start_ns + RANGE_LOADSPLIT_WINDOW_NS);
    } else {
        range__finder_reset(&l->cur, now_ns);
        l->prev.start_ns = now_ns - RANGE_LOADSPLIT_WINDOW_NS;
    }
}

void range__load_record(range__load *l, bool write, const range_span *sp, int64_t now_ns,
                        uint64_t *rng)
{
    range__rate_add(write ? &l->writes : &l->reads, now_ns);
    rotate(l, now_ns);
    range__finder_record(&l->cur, sp, rng);
}

void range__load_rates(const range__load *l, int64_t now_ns, double *reads_per_second,
                       double *writes_per_second)
{
    *reads_per_second = range__rate_per_second(&l->reads, now_ns);
    *writes_per_second = range__rate_per_second(&l->writes, now_ns);
}

int range__load_split_key(const range__load *l, int64_t now_ns, base_buf *out)
{
    int64_t elapsed = now_ns - l->cur.start_ns;
    const uint8_t *key = NULL;
    size_t len = 0;
    base_buf_reset(out);
    if (elapsed >= 2 * RANGE_LOADSPLIT_WINDOW_NS)
        return RANGE_NOT_FOUND; /* nothing recorded for two windows */
    key = range__finder_key(&l->cur, &len);
    if (key == NULL && elapsed < RANGE_LOADSPLIT_WINDOW_NS)
        key = range__finder_key(&l->prev, &len);
    if (key == NULL)
        return RANGE_NOT_FOUND;
    return base_buf_append(out, key, len) == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
}
