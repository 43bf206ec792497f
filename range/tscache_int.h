/*
** range/tscache_int.h: the timestamp cache of a range's leaseholder (the
** CockroachDB design, simplified). Internal to range/; a pure structure (no
** clock, no lock, no I/O): server.c owns one per range and guards it with
** its mutex.
**
** It records, for keys and key spans, the highest timestamp at which they
** were read (a GET, the span a scan page covered, a VALIDATE, the read spans
** of a commit at its commit timestamp), above a LOW-WATER mark that stands
** for every key not recorded. A commit that writes a key must take a
** timestamp above what the cache answers for it: no write can land under a
** read already served.
**
** Spans are range_spans: a point (just `start`), or [start, end) with an
** empty start = from the beginning and an empty end = to +infinity.
**
** Invariants (checked by range__tscache_check):
**   - SAFE. For every span, range__tscache_max >= every timestamp added for
**     an overlapping span since the last reset, and >= the low-water.
**   - PRECISE while nothing was dropped: then it is exactly the maximum of
**     those timestamps and the low-water.
**   - BOUNDED. After every call, at most entries_max segments holding at most
**     bytes_max key bytes. When a limit is passed the entries with the lower
**     half of the timestamps are dropped and the low-water rises to the
**     highest dropped timestamp; when memory runs out the low-water rises to
**     the timestamp being added. Both are always safe, only less precise:
**     adding never fails.
*/
#ifndef MERIDIAN_RANGE_TSCACHE_INT_H
#define MERIDIAN_RANGE_TSCACHE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "range/range.h"

/* Defaults per range: about 4096 x 80 bytes of segments plus 256 KiB of
** keys, so a node leasing RANGE_NODE_REPLICAS_MAX busy ranges stays under
** about 600 MiB in the worst case (an idle range's cache is empty). */
#define RANGE_TSCACHE_ENTRIES_MAX 4096
#define RANGE_TSCACHE_KEY_BYTES_MAX (256u * 1024)

typedef struct range__tscache range__tscache;

/* An empty cache at low_water. entries_max, bytes_max: 0 = the defaults
** above. seed: the skip list's level choices (deterministic per seed).
** owner of *out: caller, range__tscache_free. RANGE_OK or RANGE_ERR_NOMEM. */
int range__tscache_new(size_t entries_max, size_t bytes_max, hlc_timestamp low_water,
                       uint64_t seed, range__tscache **out);
void range__tscache_free(range__tscache *c);

/* Forget every entry; the low-water becomes low_water (a lease start). */
void range__tscache_reset(range__tscache *c, hlc_timestamp low_water);

/* Record that sp was read at ts. Never fails (see BOUNDED). An empty span
** ([s, e) with e <= s) records nothing. sp's bytes are copied. */
void range__tscache_add(range__tscache *c, const range_span *sp, hlc_timestamp ts);

/* The highest timestamp recorded for any key of sp, at least the low-water. */
hlc_timestamp range__tscache_max(const range__tscache *c, const range_span *sp);

hlc_timestamp range__tscache_low_water(const range__tscache *c);

/* Raise the low-water to t when t is above it (entries at or below it go:
** the answers only grow). Closing a timestamp (docs/txn.md section 8): no
** commit evaluated afterwards takes a timestamp at or below t. */
void range__tscache_raise_low_water(range__tscache *c, hlc_timestamp t);

typedef struct range__tscache_stats {
    size_t entries;    /* segments */
    size_t key_bytes;  /* bytes of their keys */
    uint64_t evictions; /* times entries were dropped to stay in bounds */
    uint64_t nomem;     /* adds that raised the low-water for lack of memory */
} range__tscache_stats;
void range__tscache_get_stats(const range__tscache *c, range__tscache_stats *out);

/* Tests: the structure's invariants hold (sorted, disjoint, non-empty
** segments above the low-water; counts match; every skip-list level is an
** ordered sub-list of level 0). */
bool range__tscache_check(const range__tscache *c);

#endif
