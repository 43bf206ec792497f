/*
** range/loadsplit_int.h: a range's load at its leaseholder (reads and
** writes per second as exponentially decayed rates) and the load-split
** finder (docs/range.md, "Load"). Internal to range/; pure structures: no
** clock, no lock, no I/O, no randomness of their own. server.c owns one
** range__load per range, guards it with the range's load mutex, passes the
** time (its clock config's physical time) and a PRNG state it seeded.
**
** The finder follows CockroachDB's split finder (kvserver/split): a
** reservoir of RANGE_LOADSPLIT_SAMPLES candidate keys, each the start key of
** a sampled request; every request recorded afterwards counts, for every
** candidate K, as LEFT (it lies wholly below K), RIGHT (it starts at or
** above K) or CONTAINED (a span [s, e) with s < K < e: a split at K cuts
** it). A split at K puts [start, K) on the left and [K, end) on the right.
** The suggestion is the candidate with the best balance
**   |left - right| / (left + right) + contained / (left + right + contained)
** among those counted at least RANGE_LOADSPLIT_COUNT_MIN times whose
** balance is below RANGE_LOADSPLIT_BALANCE_MAX and whose contained share is
** below RANGE_LOADSPLIT_CONTAINED_MAX; none when every candidate fails.
**
** Invariants:
**   - THE SINGLE HOT ROW never splits: when every request is on key X,
**     every candidate is X and every request counts RIGHT of it (left 0):
**     balance 1, no suggestion. Load on few keys yields only candidates
**     that leave each such key whole on one side.
**   - a request is counted against a candidate only if it was recorded
**     after that candidate was sampled (a replaced sample starts at 0);
**   - RECENT: the finder works in windows of RANGE_LOADSPLIT_WINDOW_NS; the
**     suggestion comes from the current window or the one before it, never
**     from load older than two windows;
**   - bounded: RANGE_LOADSPLIT_SAMPLES keys of at most
**     RANGE_LOADSPLIT_KEY_BYTES_MAX bytes per window (a longer start key is
**     not sampled; the request still counts); recording is O(samples);
**   - memory: the sampled keys are owned by the finder (range__load_free);
**     out of memory, a sample is skipped (never an error).
*/
#ifndef MERIDIAN_RANGE_LOADSPLIT_INT_H
#define MERIDIAN_RANGE_LOADSPLIT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "range/range.h"

#define RANGE_LOAD_HALF_LIFE_NS (10LL * 1000000000)   /* of the decayed rates */
#define RANGE_LOADSPLIT_SAMPLES 32                    /* candidate keys per window (CockroachDB:
                                                         20; with 32 a window lacks a candidate
                                                         in the balanced quarter of the load
                                                         with probability 0.75^32 < 1e-4) */
#define RANGE_LOADSPLIT_COUNT_MIN 100                 /* requests counted by a candidate */
#define RANGE_LOADSPLIT_BALANCE_MAX 0.25              /* |l - r| / (l + r) below this */
#define RANGE_LOADSPLIT_CONTAINED_MAX 0.5             /* contained share below this */
#define RANGE_LOADSPLIT_WINDOW_NS (10LL * 1000000000) /* the finder starts over */
#define RANGE_LOADSPLIT_KEY_BYTES_MAX 512             /* longer keys are not sampled */

/* A decayed count of events: value = sum of 2^(-(now - t_i) / half_life).
** A steady rate R gives value -> R * half_life / ln 2 (1 - 2^(-age /
** half_life)) after age; the rate divides by the weight of the time
** measured (age from start_ns, at least a second), so a steady rate reads
** right at once instead of climbing for a few half lives after a start or
** a split's reset. */
typedef struct range__rate {
    double value;
    int64_t last_ns;  /* of the last update; value is as of then */
    int64_t start_ns; /* measuring since */
} range__rate;

typedef struct range__split_sample {
    uint8_t *key; /* owned */
    size_t key_len;
    uint64_t left, right, contained;
} range__split_sample;

typedef struct range__split_finder {
    int64_t start_ns;  /* the window began */
    uint64_t count;    /* requests recorded in it */
    range__split_sample samples[RANGE_LOADSPLIT_SAMPLES];
    size_t n_samples;
} range__split_finder;

typedef struct range__load {
    range__rate reads, writes;
    range__split_finder cur, prev; /* this window and the one before */
} range__load;

/* ---- rates ---- */
/* Count one event at now_ns (time never runs backwards here: an earlier
** now_ns counts at the last update's time). */
void range__rate_add(range__rate *r, int64_t now_ns);
/* Start measuring at now_ns (nothing counted). */
void range__rate_init(range__rate *r, int64_t now_ns);
/* Events per second at now_ns. */
double range__rate_per_second(const range__rate *r, int64_t now_ns);

/* ---- the finder ---- */
void range__finder_init(range__split_finder *f, int64_t start_ns);
/* Free the samples' keys and start over at start_ns. */
void range__finder_reset(range__split_finder *f, int64_t start_ns);
/* Record one request over sp: a point, or [start, end) (end_len 0: to
** +infinity). *rng: the caller's PRNG state (xorshift64*; 0 is taken as
** 1), advanced. */
void range__finder_record(range__split_finder *f, const range_span *sp, uint64_t *rng);
/* The suggested key (borrowed from f: valid until f's next record or
** reset), or NULL (*len 0) when none qualifies. */
const uint8_t *range__finder_key(const range__split_finder *f, size_t *len);

/* ---- a range's load ---- */
void range__load_init(range__load *l, int64_t now_ns);
void range__load_free(range__load *l);
/* Rates back to zero and the finder empty (a split changed the range). */
void range__load_reset(range__load *l, int64_t now_ns);
/* One request at now_ns: a read or a write over sp (a point, or a span). */
void range__load_record(range__load *l, bool write, const range_span *sp, int64_t now_ns,
                        uint64_t *rng);
void range__load_rates(const range__load *l, int64_t now_ns, double *reads_per_second,
                       double *writes_per_second);
/* The finder's suggestion at now_ns (see RECENT), copied into *out (reset
** first). RANGE_OK, RANGE_NOT_FOUND (none), RANGE_ERR_NOMEM. */
int range__load_split_key(const range__load *l, int64_t now_ns, base_buf *out);

#endif
