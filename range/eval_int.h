/*
** range/eval_int.h: optimistic (backward) validation of a commit against an
** MVCC store, shared by the local evaluator (range.c, range_commit) and the
** leaseholder evaluator (server.c). Internal to range/.
**
** The rules (docs/decisions/004-local-transactions.md): a commit with read
** timestamp R conflicts when a key it writes, or a key in one of its delete
** spans, has a version newer than R (write-write), or when a key in one of
** its read spans does (read-write, or phantom when the key had no live
** value at R). "Newer than R" counts versions in storage and the writes of
** commits that were validated but have not reached storage yet (pending:
** the caller keeps them and checks them with range__write_set_touches).
**
** Invariants: these functions only read; a conflict leaves nothing written.
** Keys compare by memcmp, shorter first on a tie (range__key_cmp).
*/
#ifndef MERIDIAN_RANGE_EVAL_INT_H
#define MERIDIAN_RANGE_EVAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "range/intent_int.h"
#include "range/range.h"

int range__key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* key in span? (point: equal to start; else [start, end), end 0 = +inf) */
bool range__span_contains(const range_span *sp, const uint8_t *key, size_t key_len);
bool range__spans_overlap(const range_span *a, const range_span *b);
/* Index of the first write with key >= k (writes sorted). */
size_t range__writes_lower_bound(const range_write *w, size_t n, const uint8_t *k, size_t klen);
/* STORAGE_ERR_* -> RANGE_ERR_* (NOMEM, INVALID; everything else IO). */
int range__storage_rc(int rc);
/* Fill *c (when non-NULL; the key is copied) and return RANGE_ERR_CONFLICT,
** or RANGE_ERR_NOMEM when the key cannot be copied. */
int range__conflict_set(range_conflict *c, range_conflict_kind kind, const uint8_t *key,
                        size_t key_len, hlc_timestamp ts, bool pending);

/* Shape of a request: keys non-empty and within the storage limits, writes
** sorted without duplicates, delete spans ranges, spans with their bytes.
** RANGE_OK or RANGE_ERR_INVALID. */
int range__validate_request(const range_commit_request *req);

/* A version in span sp newer than read_ts in storage? For write (delete)
** spans kind = WRITE_WRITE; for read spans READ_WRITE or PHANTOM depending
** on whether the key had a live value at read_ts. RANGE_OK,
** RANGE_ERR_CONFLICT (*conflict filled) or an error. */
int range__check_span_storage(storage_engine *e, const range_span *sp, hlc_timestamp read_ts,
                              bool is_write, range_conflict *conflict);
/* For a read span (point or span) of a VALIDATE: a version in
** (read_ts, upper]? Versions above upper come after the commit being
** validated and do not count. Kinds as above (points: READ_WRITE). */
int range__check_read_span_between(storage_engine *e, const range_span *sp,
                                   hlc_timestamp read_ts, hlc_timestamp upper,
                                   range_conflict *conflict);
/* Newest version of key newer than read_ts? Same returns. */
int range__check_key_storage(storage_engine *e, const uint8_t *key, size_t key_len,
                             hlc_timestamp read_ts, range_conflict_kind kind,
                             range_conflict *conflict);

/* Keys visible now (latest state) in the request's delete spans that the
** request does not write explicitly: sorted, unique, appended to *keys with
** *offsets (owner: caller, base_free; count + 1 entries, NULL when count is
** 0). RANGE_ERR_TOO_LARGE when write_count + count would exceed ops_max. */
int range__collect_tombstones(storage_engine *e, const range_commit_request *req,
                              size_t ops_max, base_buf *keys, size_t **offsets, size_t *count);

/* The write set of a pending commit: its explicit writes (sorted), the
** tombstones generated from its delete spans (sorted, in gen_keys at
** gen_offsets) and the delete spans themselves. Everything borrowed. */
typedef struct range__write_set {
    const range_write *writes;
    size_t write_count;
    const uint8_t *gen_keys;
    const size_t *gen_offsets; /* gen_count + 1 entries when gen_count > 0 */
    size_t gen_count;
    const range_span *delete_spans;
    size_t delete_span_count;
} range__write_set;
/* Does ws write anything in span sp? If so, one such key (the span start
** for a delete-span overlap) in *key_out (borrowed from ws or sp). */
bool range__write_set_touches(const range__write_set *ws, const range_span *sp,
                              const uint8_t **key_out, size_t *key_len_out);

/* ---- intents (two-phase commit; range/intent_int.h, docs/txn.md) ----------
** Intents live in the raw keyspace; these read them from storage (the latest
** state). A reader or writer that meets another transaction's intent it
** cannot ignore answers RANGE_ERR_INTENT naming it. */
#define RANGE__INTENT_SCAN_MAX (1 << 22) /* intents examined by one call (a large
                                           transaction's own, in its read spans) */

/* Called for each intent of a span in key order: 0 goes on, 1 stops (the
** caller's answer), < 0 stops with that error. raw/user keys and *in are
** valid during the call only. */
typedef int (*range__intent_fn)(void *ctx, const uint8_t *raw, size_t raw_len,
                                const uint8_t *key, size_t key_len, const range__intent *in);
/* Every intent in user span sp (a point: one get). Returns 0 when all were
** seen, 1 when fn stopped, fn's error, RANGE_ERR_CORRUPT (an undecodable
** intent), RANGE_ERR_BUSY (more than RANGE__INTENT_SCAN_MAX), an I/O error. */
int range__intent_each(storage_engine *e, const range_span *sp, range__intent_fn fn, void *ctx);

/* The intent met: user key, holder, its anchor and ts. Owner: the caller's
** struct; zero-initialize, range__intent_hit_free. The server also fills
** one for an UNREPLICATED lock of the lock table (unreplicated set, ts the
** holder's read_ts, since_ns when it took the lock); find_intent clears
** both. */
typedef struct range__intent_hit {
    base_buf key;
    base_buf anchor;
    uint64_t txn_id;
    hlc_timestamp ts;
    bool unreplicated;
    int64_t since_ns;
} range__intent_hit;
void range__intent_hit_free(range__intent_hit *h);
/* The first intent in sp held by another transaction than self (0: every
** holder counts) with ts <= upper: RANGE_ERR_INTENT with *hit filled;
** RANGE_OK when none; or an error as range__intent_each. */
int range__find_intent(storage_engine *e, const range_span *sp, uint64_t self,
                       hlc_timestamp upper, range__intent_hit *hit);
/* Any intent at all in the range of d? One seek. */
int range__range_has_intents(storage_engine *e, const range_descriptor *d, bool *has);
/* Any intent where req writes or reads, as one seek can tell (the fast path
** of commits)? The seek covers the bounding span of its writes, delete
** spans and read spans, [least start, greatest end) clipped to d, which
** holds every key req touches in the range, so *has false means no intent
** on any of them; true: maybe, look span by span. It skips the deleted
** intent keys of that span only, not of the whole range (docs/txn.md 3.3).
** RANGE_OK (*has false for a request touching nothing in d) or an error
** (*has true then). */
int range__request_has_intents(storage_engine *e, const range_descriptor *d,
                               const range_commit_request *req, bool *has);

#endif
