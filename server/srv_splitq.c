/*
** server/srv_splitq.c: cluster settings in a node's memory and the split
** queue, by size and by load (srv_splitq.h; docs/operations.md "Cluster
** settings", "Automatic splits"; docs/range.md "Load").
**
** The queue's thread, every SRV_SPLITQ_SCAN_MS:
**   1. reads the cluster settings (every SRV_SETTINGS_REFRESH_MS);
**   2. when split_enabled: for each range this node holds the lease of
**      (rotating the first), its size in this store (the memtables
**      included) against range_max_bytes; above it, the key near the
**      middle of its data (storage_middle_key), checked to be a whole SQL
**      key strictly inside the range and outside the system span;
**   3. txn_db_split_at(key), the path of ALTER TABLE ... SPLIT AT, then the
**      event "size 70 MiB > 64 MiB" in the range event log;
**   4. a range not split by size whose reads + writes per second at this
**      leaseholder (range_server_get_load: decayed rates) stayed above
**      split_qps_threshold for SRV_SPLITQ_LOAD_SUSTAIN_MS splits at the
**      load-split finder's key aligned to a whole SQL key (event "load
**      3100 qps > 2500"), then the lease of the right half moves to the
**      least loaded live voter (srv__splitq_lease_target over the cluster
**      overview), recorded as a lease transfer event.
**
** Critical invariants:
**   - only the leaseholder splits a range by size (its store's size is
**     the one that counts; the split itself goes to whoever leads when it
**     arrives, which validates the key against its descriptor);
**   - a split key is the start of a key that exists (all versions of it on
**     one side), never the range's start key, never in the system span
**     below the first user table (meta stays in range 1): a row is one key
**     (sql/vtab.c), so no row is cut; a load split's key is a whole SQL
**     key too (a requested key cut back to its whole column values);
**   - a load split needs the finder's key: a range whose load is all on one
**     row never has one (range/loadsplit_int.h), so it never splits by
**     load; it is looked at again every SRV_SPLITQ_LOAD_NO_KEY_BACKOFF_MS;
**   - "hot since" belongs to a (range, generation) pair: a split, a replica
**     change or a lease arriving starts the sustain time over;
**   - a range is looked at only SRV_SPLITQ_DEBOUNCE_MS after this node
**     first saw it led here at its current generation: a split by anyone
**     (its left side's generation grows, its right side is new), a replica
**     change or a lease that just came here rests it first; both sides of
**     a split made here rest that long from the split; a failed split
**     SRV_SPLITQ_BACKOFF_MS;
**   - bounded: SRV_SPLITQ_SPLITS_PER_ROUND splits per round, each bounded
**     by the router's deadline; the middle-key scan counts at most
**     SRV_SPLITQ_SCAN_BYTES_MAX; SRV_SPLITQ_RECENT_MAX ranges remembered;
**   - recording never fails a split and never runs inside it (an event
**     write is a transaction of its own afterwards, best effort);
**   - the thread ends within the router's shutdown grace of a stop: every
**     wait is on its condition variable, every KV call ends with the router.
*/
#define _GNU_SOURCE
#include "server/srv_splitq.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "encoding/encoding.h"
#include "server/srv_ranges.h"

#define MOD "srv"
#define SPLITQ_VALUES_MAX 64 /* column values a split key may hold */

/* ---- settings ------------------------------------------------------------------ */

void srv_settings_init(srv_settings *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    sqlv_settings_defaults(&s->values);
}

void srv_settings_destroy(srv_settings *s) { pthread_mutex_destroy(&s->mu); }

void srv_settings_set_all(srv_settings *s, const sqlv_settings *v) {
    pthread_mutex_lock(&s->mu);
    s->values = *v;
    s->loaded = true;
    pthread_mutex_unlock(&s->mu);
}

int srv_settings_refresh(srv_settings *s, txn_db *db) {
    sqlv_settings v;
    txn *t = NULL;
    txn_error err = {{0}, {0}};
    txn_options ro = {.read_only = true};
    int rc = txn_begin(db, &ro, &t);
    if (rc == TXN_OK) {
        rc = sqlv_settings_read(t, &v, &err);
        if (rc == TXN_OK) rc = txn_commit(t, NULL, &err);
        else txn_rollback(t);
    }
    if (rc != TXN_OK) {
        /* a starting node has no clock bound for a moment (57P03): only a
        ** failure that lasts is worth a warning */
        if (++s->failures == SRV_SETTINGS_WARN_AFTER)
            BASE_WARN(MOD, "cluster settings: cannot read them (error %d%s%s); the values "
                      "last read stay%s", rc, err.message[0] ? ": " : "", err.message,
                      s->loaded ? "" : " (the defaults: never read yet)");
        else
            BASE_DEBUG(MOD, "cluster settings: cannot read them (error %d)", rc);
        return rc;
    }
    if (s->failures >= SRV_SETTINGS_WARN_AFTER) BASE_INFO(MOD, "cluster settings: read again");
    s->failures = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < SQLV_SETTINGS_COUNT; i++) {
        const sqlv_setting_def *d = sqlv_setting_def_get(i);
        if (s->loaded && s->values.values[i] == v.values[i]) continue;
        char text[SQLV_SETTING_TEXT_MAX];
        sqlv_setting_format(d->type, v.values[i], text, sizeof text);
        if (s->loaded || v.stored[i])
            BASE_INFO(MOD, "cluster setting %s = %s%s", d->name, text,
                      v.stored[i] ? "" : " (default)");
    }
    s->values = v;
    s->loaded = true;
    pthread_mutex_unlock(&s->mu);
    return TXN_OK;
}

int64_t srv_setting_get_int(srv_settings *s, sqlv_setting_id id) {
    if ((int)id < 0 || id >= SQLV_SETTINGS_COUNT) return 0;
    pthread_mutex_lock(&s->mu);
    int64_t v = s->values.values[id];
    pthread_mutex_unlock(&s->mu);
    return v;
}

bool srv_setting_get_bool(srv_settings *s, sqlv_setting_id id) {
    return srv_setting_get_int(s, id) != 0;
}

/* ---- the split key (pure over a store) -------------------------------------------- */

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
    size_t n = BASE_MIN(al, bl);
    int c = n > 0 ? memcmp(a, b, n) : 0; /* an empty key may be NULL */
    if (c != 0) return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

/* The first key of the user tables: /table/SRV_FIRST_TABLE_ID (index 0). */
static int table_floor(base_buf *out) {
    base_buf_reset(out);
    return enc_key_prefix(out, SRV_FIRST_TABLE_ID, 0) == ENC_OK ? 0 : -1;
}

bool srv__splitq_span(const range_descriptor *d, base_buf *lo, base_buf *hi, bool *unbounded) {
    base_buf floor_key = {0};
    bool ok = false;
    base_buf_reset(lo);
    base_buf_reset(hi);
    *unbounded = d->end_len == 0;
    if (table_floor(&floor_key) != 0) goto done;
    const uint8_t *start = d->start_key;
    size_t start_len = d->start_len;
    if (key_cmp(start, start_len, floor_key.data, floor_key.len) < 0) {
        start = floor_key.data;
        start_len = floor_key.len;
    }
    if (!*unbounded && key_cmp(start, start_len, d->end_key, d->end_len) >= 0) goto done;
    if (base_buf_append(lo, start, start_len) != 0) goto done;
    if (!*unbounded && base_buf_append(hi, d->end_key, d->end_len) != 0) goto done;
    ok = true;
done:
    base_buf_free(&floor_key);
    return ok;
}

bool srv__splitq_key_ok(const range_descriptor *d, const uint8_t *key, size_t len) {
    base_buf floor_key = {0}, scratch = {0};
    bool ok = false;
    if (len == 0 || table_floor(&floor_key) != 0) goto done;
    if (key_cmp(key, len, d->start_key, d->start_len) <= 0) goto done; /* never the start */
    if (d->end_len > 0 && key_cmp(key, len, d->end_key, d->end_len) >= 0) goto done;
    if (key_cmp(key, len, floor_key.data, floor_key.len) < 0) goto done; /* the system span */
    uint32_t table = 0, index = 0;
    size_t used = 0;
    if (enc_key_decode_prefix(key, len, &table, &index, &used) != ENC_OK ||
        table < SRV_FIRST_TABLE_ID)
        goto done;
    enc_value values[SPLITQ_VALUES_MAX];
    size_t count = 0;
    ok = enc_key_decode_values(key + used, len - used, &scratch, values, SPLITQ_VALUES_MAX,
                               &count) == ENC_OK;
done:
    base_buf_free(&floor_key);
    base_buf_free(&scratch);
    return ok;
}

int srv__splitq_choose_key(storage_engine *engine, const range_descriptor *d,
                           uint64_t scan_bytes_max, base_buf *key_out,
                           storage_middle_info *info, char *why, size_t why_size) {
    base_buf lo = {0}, hi = {0};
    bool unbounded = false;
    int rc = SRV_ERR_REFUSED;
    if (info != NULL) memset(info, 0, sizeof *info);
    if (!srv__splitq_span(d, &lo, &hi, &unbounded)) {
        snprintf(why, why_size, "no part of it lies in the user tables");
        goto done;
    }
    int src = storage_middle_key(engine, lo.data, lo.len, unbounded ? NULL : hi.data, hi.len,
                                 scan_bytes_max, key_out, info);
    if (src == STORAGE_NOT_FOUND) {
        snprintf(why, why_size, "it holds fewer than two keys (one large row)");
        goto done;
    }
    if (src != STORAGE_OK) {
        snprintf(why, why_size, "the store failed to scan it (error %d)", src);
        rc = src == STORAGE_ERR_NOMEM ? SRV_ERR_NOMEM : SRV_ERR_IO;
        goto done;
    }
    if (!srv__splitq_key_ok(d, key_out->data, key_out->len)) {
        snprintf(why, why_size, "the key near its middle is not a whole SQL key");
        goto done;
    }
    rc = SRV_OK;
done:
    base_buf_free(&lo);
    base_buf_free(&hi);
    return rc;
}

void srv__splitq_reason(uint64_t size_bytes, int64_t max_bytes, char *buf, size_t size) {
    char a[32], b[32];
    sqlv_bytes_human(size_bytes, a, sizeof a);
    sqlv_bytes_human(max_bytes > 0 ? (uint64_t)max_bytes : 0, b, sizeof b);
    snprintf(buf, size, "size %s > %s", a, b);
}

/* ---- splitting by load (pure) ------------------------------------------------------------ */

bool srv__splitq_load_due(double qps, int64_t threshold, int64_t *hot_since_ns, int64_t now_ns,
                          int64_t sustain_ms) {
    if (threshold <= 0 || !(qps > (double)threshold)) { /* NaN: not hot */
        *hot_since_ns = 0;
        return false;
    }
    if (*hot_since_ns == 0) *hot_since_ns = now_ns != 0 ? now_ns : 1;
    return now_ns - *hot_since_ns >= sustain_ms * 1000000;
}

bool srv__splitq_align_key(const range_descriptor *d, const uint8_t *key, size_t len,
                           base_buf *out) {
    base_buf scratch = {0};
    bool ok = false;
    base_buf_reset(out);
    uint32_t table = 0, index = 0;
    size_t whole = 0;
    if (len == 0 || enc_key_decode_prefix(key, len, &table, &index, &whole) != ENC_OK) goto done;
    for (size_t n = 0; n < SPLITQ_VALUES_MAX && whole < len; n++) {
        enc_value v;
        size_t used = 0;
        base_buf_reset(&scratch);
        if (enc_key_decode_value(key + whole, len - whole, &scratch, &v, &used) != ENC_OK ||
            used == 0)
            break; /* a partial value (a scan's bound, key + 0x00): cut before it */
        whole += used;
    }
    if (base_buf_append(out, key, whole) != 0) goto done;
    ok = srv__splitq_key_ok(d, out->data, out->len);
done:
    if (!ok) base_buf_reset(out);
    base_buf_free(&scratch);
    return ok;
}

void srv__splitq_load_reason(double qps, int64_t threshold, char *buf, size_t size) {
    snprintf(buf, size, "load %.0f qps > %" PRId64, qps, threshold);
}

uint64_t srv__splitq_lease_target(const range_descriptor *d, uint64_t self,
                                  const srv__node_state *nodes, size_t n_nodes,
                                  const srv__range_view *views, size_t n_views) {
    uint64_t best = 0;
    double best_load = 0;
    size_t best_leases = 0;
    for (size_t i = 0; i < d->n_replicas && i < RANGE_REPLICAS_MAX; i++) {
        uint64_t node = d->replicas[i];
        if (node == 0 || node == self) continue;
        const srv__node_state *st = NULL;
        for (size_t k = 0; k < n_nodes && st == NULL; k++)
            if (nodes[k].node_id == node) st = &nodes[k];
        if (st == NULL || st->liveness != SRV_LIVENESS_LIVE ||
            st->membership != SRV_MEMBERSHIP_ACTIVE || st->draining)
            continue;
        double load = 0;
        size_t leases = 0;
        for (size_t k = 0; k < n_views; k++) {
            if (views[k].lease_holder != node) continue;
            leases++;
            if (views[k].has_load) load += views[k].reads_per_second + views[k].writes_per_second;
        }
        if (best == 0 || load < best_load ||
            (load == best_load && (leases < best_leases || (leases == best_leases && node < best)))) {
            best = node;
            best_load = load;
            best_leases = leases;
        }
    }
    return best;
}

/* ---- the queue ------------------------------------------------------------------------ */

void srv__splitq_init(srv__splitq *q) {
    memset(q, 0, sizeof *q);
    srv__worker_init(&q->worker);
}

void srv__splitq_destroy(srv__splitq *q) {
    base_free(q->seen);
    q->seen = NULL;
    q->n_seen = 0;
    srv__worker_destroy(&q->worker);
}

void srv__splitq_recent_remember(srv__splitq_recent *recent, size_t *n, size_t max,
                                 uint64_t range_id, int64_t now_ns, int64_t ms) {
    srv__splitq_recent *x = NULL;
    for (size_t i = 0; i < *n && x == NULL; i++)
        if (recent[i].range_id == range_id) x = &recent[i];
    if (x == NULL) {
        /* forget what expired, then (still full) what expires first */
        for (size_t i = 0; i < *n;) {
            if (recent[i].until_ns <= now_ns) recent[i] = recent[--*n];
            else i++;
        }
        if (*n == max) {
            size_t first = 0;
            for (size_t i = 1; i < *n; i++)
                if (recent[i].until_ns < recent[first].until_ns) first = i;
            recent[first] = recent[--*n];
        }
        x = &recent[(*n)++];
        x->range_id = range_id;
        x->until_ns = 0;
    }
    x->until_ns = BASE_MAX(x->until_ns, now_ns + ms * 1000000);
}

bool srv__splitq_recent_resting(const srv__splitq_recent *recent, size_t n, uint64_t range_id,
                                int64_t now_ns) {
    for (size_t i = 0; i < n; i++)
        if (recent[i].range_id == range_id) return now_ns < recent[i].until_ns;
    return false;
}

void srv__splitq_remember(srv__splitq *q, uint64_t range_id, int64_t now_ns, int64_t ms) {
    srv__splitq_recent_remember(q->recent, &q->n_recent, SRV_SPLITQ_RECENT_MAX, range_id, now_ns,
                                ms);
}

bool srv__splitq_resting(const srv__splitq *q, uint64_t range_id, int64_t now_ns) {
    return srv__splitq_recent_resting(q->recent, q->n_recent, range_id, now_ns);
}

static void log_split_event(const srv__splitq_env *env, uint64_t left, uint64_t right,
                            const char *reason) {
    txn_range_event ev;
    txn_error err = {{0}, {0}};
    memset(&ev, 0, sizeof ev);
    ev.kind = TXN_RANGE_EVENT_SPLIT;
    ev.range_id = left;
    ev.other_range_id = right;
    ev.recorded_by = env->self;
    base_strlcpy(ev.reason, reason, sizeof ev.reason);
    if (txn_db_log_range_events(env->db, &ev, 1, &err) != TXN_OK)
        BASE_WARN(MOD, "range event log: split of r%" PRIu64 " not recorded (%s)", left,
                  err.message);
}

static int seen_cmp(const void *a, const void *b) {
    uint64_t x = ((const srv__splitq_seen *)a)->range_id;
    uint64_t y = ((const srv__splitq_seen *)b)->range_id;
    return x < y ? -1 : x > y;
}

static const srv__splitq_seen *seen_find(const srv__splitq *q, uint64_t range_id) {
    srv__splitq_seen key = {.range_id = range_id};
    if (q->n_seen == 0) return NULL;
    return bsearch(&key, q->seen, q->n_seen, sizeof key, seen_cmp);
}

int srv__splitq_note_seen(srv__splitq *q, const uint64_t *ids, const uint64_t *gens, size_t n,
                          int64_t now_ns) {
    srv__splitq_seen *next = base_calloc(n ? n : 1, sizeof *next); /* owner: q */
    if (next == NULL) return SRV_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const srv__splitq_seen *old = seen_find(q, ids[i]);
        bool same = old != NULL && old->generation == gens[i];
        next[i] = (srv__splitq_seen){.range_id = ids[i], .generation = gens[i],
                                     .since_ns = same ? old->since_ns : now_ns,
                                     .hot_since_ns = same ? old->hot_since_ns : 0};
    }
    if (n > 1) qsort(next, n, sizeof *next, seen_cmp);
    base_free(q->seen);
    q->seen = next;
    q->n_seen = n;
    return SRV_OK;
}

/* Note a (range, generation) pair first seen at since_ns (a split made
** here: both sides rest from the split, not from the next round). */
static void seen_set(srv__splitq *q, uint64_t range_id, uint64_t generation, int64_t since_ns) {
    srv__splitq_seen *x = (srv__splitq_seen *)seen_find(q, range_id);
    if (x == NULL) {
        srv__splitq_seen *grown = base_realloc(q->seen, (q->n_seen + 1) * sizeof *grown);
        if (grown == NULL) return; /* the next round notes it (a later rest) */
        q->seen = grown;
        x = &q->seen[q->n_seen++];
        *x = (srv__splitq_seen){.range_id = range_id, .generation = generation,
                                .since_ns = since_ns};
        qsort(q->seen, q->n_seen, sizeof *q->seen, seen_cmp);
        return;
    }
    x->generation = generation;
    x->since_ns = since_ns;
    x->hot_since_ns = 0;
}

bool srv__splitq_settled(const srv__splitq *q, uint64_t range_id, int64_t now_ns,
                         int64_t debounce_ms) {
    const srv__splitq_seen *x = seen_find(q, range_id);
    return x != NULL && now_ns - x->since_ns >= debounce_ms * 1000000;
}

/* Split d (led here) when its size in this store is above max_bytes.
** Returns whether it split. */
/* Split d at key (chosen for reason): a failure is warned about and backed
** off, a boundary that is there already (a manual split won the race) rests
** for debounce_ms, a split rests both sides from now (both are generation
** + 1; seen_set: a pointer into q->seen is stale after it). True when the
** split made a new range: *res, *left (the left side's id) and pretty (key
** as text, empty when it cannot be formatted) are then set. */
static bool split_at(srv__splitq *q, const range_descriptor *d, const base_buf *key,
                     const char *reason, int64_t debounce_ms, int64_t now_ns,
                     base_buf *pretty /* OUT */, txn_split_result *res /* OUT */,
                     uint64_t *left /* OUT */) {
    uint64_t range_id = d->range_id;
    if (base_buf_append(pretty, "/Table", 6) != 0 ||
        enc_key_format(key->data, key->len, pretty) != ENC_OK)
        base_buf_reset(pretty);
    txn_error err = {{0}, {0}};
    memset(res, 0, sizeof *res);
    int rc = txn_db_split_at(q->env.db, key->data, key->len, res, &err);
    if (rc != TXN_OK) {
        q->failures++;
        BASE_WARN(MOD, "split queue: range %" PRIu64 " (%s): split at %s failed (error %d%s%s); "
                  "again in %d s", range_id, reason, pretty->len ? (char *)pretty->data : "?",
                  rc, err.message[0] ? ": " : "", err.message, SRV_SPLITQ_BACKOFF_MS / 1000);
        srv__splitq_remember(q, range_id, now_ns, SRV_SPLITQ_BACKOFF_MS);
        return false;
    }
    *left = res->left_range_id != 0 ? res->left_range_id : range_id;
    if (!res->created) {
        srv__splitq_remember(q, range_id, now_ns, debounce_ms);
        return false;
    }
    seen_set(q, *left, d->generation + 1, now_ns);
    seen_set(q, res->right_range_id, d->generation + 1, now_ns);
    q->splits++;
    return true;
}

static bool consider(srv__splitq *q, const range_descriptor *d, int64_t max_bytes,
                     int64_t debounce_ms, int64_t now_ns) {
    const srv__splitq_env *env = &q->env;
    uint64_t range_id = d->range_id;
    base_buf lo = {0}, hi = {0}, key = {0}, pretty = {0};
    bool split = false, unbounded = false;
    if (!srv__splitq_span(d, &lo, &hi, &unbounded)) goto done;
    uint64_t size = 0;
    if (storage_approximate_size(env->engine, lo.data, lo.len, unbounded ? NULL : hi.data,
                                 hi.len, &size) != STORAGE_OK ||
        size <= (uint64_t)max_bytes)
        goto done;
    char reason[96], why[128];
    srv__splitq_reason(size, max_bytes, reason, sizeof reason);
    storage_middle_info info;
    int64_t t0 = base_monotonic_ns();
    int rc = srv__splitq_choose_key(env->engine, d, SRV_SPLITQ_SCAN_BYTES_MAX, &key, &info, why,
                                    sizeof why);
    if (rc != SRV_OK) {
        BASE_INFO(MOD, "split queue: range %" PRIu64 " (%s) cannot split: %s; looked at again "
                  "in %d s", range_id, reason, why, SRV_SPLITQ_NO_KEY_BACKOFF_MS / 1000);
        srv__splitq_remember(q, range_id, now_ns, SRV_SPLITQ_NO_KEY_BACKOFF_MS);
        goto done;
    }
    txn_split_result res;
    uint64_t left = 0;
    if (!split_at(q, d, &key, reason, debounce_ms, now_ns, &pretty, &res, &left)) goto done;
    int64_t took_ms = (base_monotonic_ns() - t0) / 1000000;
    split = true;
    char left_text[32];
    sqlv_bytes_human(info.left_bytes, left_text, sizeof left_text);
    BASE_INFO(MOD, "split queue: range %" PRIu64 " is over range_max_bytes (%s): split at %s "
              "(%s of %" PRIu64 " keys' bytes on the left) into r%" PRIu64 " and r%" PRIu64
              " in %" PRId64 " ms", range_id, reason, pretty.len ? (char *)pretty.data : "?",
              left_text, info.keys, left, res.right_range_id, took_ms);
    log_split_event(env, left, res.right_range_id, reason);
done:
    base_buf_free(&lo);
    base_buf_free(&hi);
    base_buf_free(&key);
    base_buf_free(&pretty);
    return split;
}

static void log_lease_event(const srv__splitq_env *env, uint64_t range_id, uint64_t target,
                            const range_descriptor *d, const char *reason) {
    txn_range_event ev;
    txn_error err = {{0}, {0}};
    memset(&ev, 0, sizeof ev);
    ev.kind = TXN_RANGE_EVENT_LEASE_TRANSFER;
    ev.range_id = range_id;
    ev.node_id = target;
    ev.recorded_by = env->self;
    for (size_t i = 0; i < d->n_replicas && ev.n_replicas < TXN_RANGE_EVENT_REPLICAS_MAX; i++)
        ev.replicas[ev.n_replicas++] = d->replicas[i];
    base_strlcpy(ev.reason, reason, sizeof ev.reason);
    if (txn_db_log_range_events(env->db, &ev, 1, &err) != TXN_OK)
        BASE_WARN(MOD, "range event log: lease transfer of r%" PRIu64 " not recorded (%s)",
                  range_id, err.message);
}

/* After a load split of d into left (here) and right: the right half's
** lease to the least loaded live voter, so the halves' leases spread.
** Best effort: a failure is logged, the split stands. */
static void spread_lease(srv__splitq *q, const range_descriptor *d, uint64_t right) {
    const srv__splitq_env *env = &q->env;
    srv__node_state *nodes = NULL;
    srv__range_view *views = NULL;
    size_t n_nodes = 0, n_views = 0;
    char msg[256] = "";
    /* admin is filled once SQL opens on this node (srv_node.c open_sql) */
    if (env->admin == NULL || env->admin->router == NULL || env->admin->db == NULL) return;
    if (srv__admin_cluster(env->admin, &nodes, &n_nodes, &views, &n_views, msg, sizeof msg) !=
        SRV_OK) {
        BASE_INFO(MOD, "split queue: r%" PRIu64 "'s lease stays (cannot read the cluster: %s)",
                  right, msg);
        return;
    }
    uint64_t target = srv__splitq_lease_target(d, env->self, nodes, n_nodes, views, n_views);
    uint64_t holder = 0;
    const srv__range_view *rv = NULL;
    for (size_t i = 0; i < n_views; i++)
        if (views[i].desc.range_id == right) rv = &views[i];
    if (rv != NULL) holder = rv->lease_holder;
    if (target == 0 || holder == target || (holder != 0 && holder != env->self)) {
        BASE_INFO(MOD, "split queue: r%" PRIu64 "'s lease stays on node %" PRIu64 " (%s)", right,
                  holder, target == 0 ? "no other live voter" : "the halves are spread already");
        goto done;
    }
    if (rv != NULL) (void)range_router_update_descriptor(env->admin->router, &rv->desc);
    int rc = range_router_transfer_lease(env->admin->router, right, target);
    if (rc != RANGE_OK) {
        BASE_WARN(MOD, "split queue: moving r%" PRIu64 "'s lease to node %" PRIu64
                  " after a load split failed (error %d); the rebalancer may move it later",
                  right, target, rc);
        goto done;
    }
    q->lease_moves++;
    BASE_INFO(MOD, "split queue: r%" PRIu64 "'s lease moved to node %" PRIu64
              " (the least loaded live voter) after a load split", right, target);
    log_lease_event(env, right, target, d, "load split: spread the halves' leases");
done:
    base_free(nodes);
    srv__range_views_free(views, n_views);
}

/* Split d (led here) when its load at this leaseholder stayed above the
** threshold for the sustain time (see the rule in srv_splitq.h). Returns
** whether it split. */
static bool consider_load(srv__splitq *q, const range_descriptor *d, int64_t threshold,
                          int64_t debounce_ms, int64_t now_ns) {
    const srv__splitq_env *env = &q->env;
    uint64_t range_id = d->range_id;
    base_buf found = {0}, key = {0}, pretty = {0};
    bool split = false;
    srv__splitq_seen *seen = (srv__splitq_seen *)seen_find(q, range_id);
    double reads = 0, writes = 0;
    bool unbounded = false;
    /* the system span (range 1) never splits: its catalog reads are not looked at */
    if (!srv__splitq_span(d, &found, &key, &unbounded)) goto done;
    if (env->rserver == NULL || seen == NULL ||
        range_server_get_load(env->rserver, range_id, &reads, &writes, &found) != RANGE_OK)
        goto done;
    double qps = reads + writes;
    int64_t sustain_ms = env->load_sustain_ms > 0 ? env->load_sustain_ms
                                                  : SRV_SPLITQ_LOAD_SUSTAIN_MS;
    if (!srv__splitq_load_due(qps, threshold, &seen->hot_since_ns, now_ns, sustain_ms))
        goto done;
    char reason[96];
    srv__splitq_load_reason(qps, threshold, reason, sizeof reason);
    if (found.len == 0 || !srv__splitq_align_key(d, found.data, found.len, &key)) {
        BASE_INFO(MOD, "split queue: range %" PRIu64 " (%s, %.0f reads/s, %.0f writes/s) has no "
                  "key that divides its load (%s); looked at again in %d s", range_id, reason,
                  reads, writes, found.len == 0 ? "one hot row, or requests spanning it"
                                                : "the finder's key is not a split point",
                  SRV_SPLITQ_LOAD_NO_KEY_BACKOFF_MS / 1000);
        srv__splitq_remember(q, range_id, now_ns, SRV_SPLITQ_LOAD_NO_KEY_BACKOFF_MS);
        goto done;
    }
    txn_split_result res;
    uint64_t left = 0;
    /* seen may move in split_at: not used below */
    if (!split_at(q, d, &key, reason, debounce_ms, now_ns, &pretty, &res, &left)) goto done;
    split = true;
    q->load_splits++;
    BASE_INFO(MOD, "split queue: range %" PRIu64 " is over split_qps_threshold (%s: %.0f reads/s, "
              "%.0f writes/s): split at %s into r%" PRIu64 " and r%" PRIu64, range_id, reason,
              reads, writes, pretty.len ? (char *)pretty.data : "?", left, res.right_range_id);
    log_split_event(env, left, res.right_range_id, reason);
    spread_lease(q, d, res.right_range_id);
done:
    base_buf_free(&found);
    base_buf_free(&key);
    base_buf_free(&pretty);
    return split;
}

static bool stopping(srv__splitq *q) { return srv__worker_stopping(&q->worker); }

size_t srv__splitq_round(srv__splitq *q, int64_t now_ns) {
    const srv__splitq_env *env = &q->env;
    int64_t debounce_ms = env->debounce_ms > 0 ? env->debounce_ms : SRV_SPLITQ_DEBOUNCE_MS;
    size_t made = 0, n_led = 0;
    uint64_t *ids = base_calloc(RANGE_NODE_REPLICAS_MAX, sizeof *ids);  /* owner: here */
    uint64_t *gens = base_calloc(RANGE_NODE_REPLICAS_MAX, sizeof *gens); /* owner: here */
    range_descriptor *led = base_calloc(RANGE_NODE_REPLICAS_MAX, sizeof *led); /* owner: here */
    if (ids == NULL || gens == NULL || led == NULL) goto done;
    /* the ranges led here, and when each (range, generation) was first seen */
    size_t n_ids = BASE_MIN(range_node_replica_ids(env->rnode, ids, RANGE_NODE_REPLICAS_MAX),
                            (size_t)RANGE_NODE_REPLICAS_MAX);
    for (size_t i = 0; i < n_ids; i++) {
        range_replica *r = range_node_replica(env->rnode, ids[i]);
        if (r == NULL) continue;
        range_replica_status st;
        range_replica_get_status(r, &st);
        if (!st.leader || !st.lease_valid) continue; /* only the leaseholder splits */
        if (range_replica_descriptor(r, &led[n_led]) != RANGE_OK) continue;
        n_led++;
    }
    for (size_t i = 0; i < n_led; i++) {
        ids[i] = led[i].range_id;
        gens[i] = led[i].generation;
    }
    if (srv__splitq_note_seen(q, ids, gens, n_led, now_ns) != SRV_OK) goto done;
    if (!srv_setting_get_bool(env->settings, SQLV_SETTING_SPLIT_ENABLED)) {
        if (!q->disabled_logged) BASE_INFO(MOD, "split queue: off (split_enabled = false)");
        q->disabled_logged = true;
        goto done;
    }
    if (q->disabled_logged) BASE_INFO(MOD, "split queue: on again (split_enabled = true)");
    q->disabled_logged = false;
    int64_t max_bytes = srv_setting_get_int(env->settings, SQLV_SETTING_RANGE_MAX_BYTES);
    int64_t qps_threshold = srv_setting_get_int(env->settings, SQLV_SETTING_SPLIT_QPS_THRESHOLD);
    q->scan_offset = n_led > 0 ? (q->scan_offset + 1) % n_led : 0;
    for (size_t k = 0; k < n_led && made < SRV_SPLITQ_SPLITS_PER_ROUND; k++) {
        const range_descriptor *d = &led[(k + q->scan_offset) % n_led];
        if (srv__splitq_resting(q, d->range_id, now_ns) ||
            !srv__splitq_settled(q, d->range_id, now_ns, debounce_ms))
            continue;
        if (consider(q, d, max_bytes, debounce_ms, now_ns) ||
            (!srv__splitq_resting(q, d->range_id, now_ns) &&
             consider_load(q, d, qps_threshold, debounce_ms, now_ns)))
            made++;
        if (stopping(q)) break;
    }
done:
    for (size_t i = 0; i < n_led; i++) range_descriptor_free(&led[i]);
    base_free(led);
    base_free(ids);
    base_free(gens);
    return made;
}

static void *splitq_main(void *arg) {
    srv__splitq *q = arg;
    int64_t scan_ns = (q->env.scan_ms > 0 ? q->env.scan_ms : SRV_SPLITQ_SCAN_MS) * 1000000;
    int64_t next_settings = 0, next_round = base_monotonic_ns() + scan_ns;
    while (!stopping(q)) {
        int64_t now = base_monotonic_ns();
        if (now >= next_settings) {
            next_settings = now + (int64_t)SRV_SETTINGS_REFRESH_MS * 1000000;
            (void)srv_settings_refresh(q->env.settings, q->env.db); /* logged there */
        }
        now = base_monotonic_ns();
        if (now >= next_round) {
            (void)srv__splitq_round(q, now);
            next_round = base_monotonic_ns() + scan_ns;
        }
        srv__worker_wait(&q->worker, BASE_MIN(next_settings, next_round));
    }
    return NULL;
}

int srv__splitq_start(srv__splitq *q, const srv__splitq_env *env) {
    if (q->worker.started) return SRV_OK;
    q->env = *env;
    return srv__worker_start(&q->worker, splitq_main, q);
}

void srv__splitq_stop(srv__splitq *q) { srv__worker_stop(&q->worker); }
