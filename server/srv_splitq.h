/*
** server/srv_splitq.h: internals of server/ for cluster settings in a
** node's memory and the split queue, by size and by load (srv_splitq.c;
** docs/operations.md "Cluster settings", "Automatic splits"; docs/range.md
** "Load"). Shared by server/'s files and tests/server; nothing else
** includes it.
*/
#ifndef MERIDIAN_SRV_SPLITQ_H
#define MERIDIAN_SRV_SPLITQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/srv_int.h"
#include "server/srv_ranges.h"
#include "sql/cluster_settings.h"
#include "storage/storage.h"
#include "txn/txn.h"

#define SRV_SETTINGS_REFRESH_MS 2000      /* a node reads the cluster settings this often */
#define SRV_SETTINGS_WARN_AFTER 5         /* failed reads in a row before a warning */
#define SRV_SPLITQ_SCAN_MS 2000           /* the split queue looks at the led ranges */
#define SRV_SPLITQ_DEBOUNCE_MS 3000       /* both sides of a split are left alone this long */
#define SRV_SPLITQ_BACKOFF_MS 10000       /* after a failed split */
#define SRV_SPLITQ_NO_KEY_BACKOFF_MS 60000 /* a range with no key to split at (one big row) */
#define SRV_SPLITQ_SPLITS_PER_ROUND 4     /* splits one round makes at most */
#define SRV_SPLITQ_SCAN_BYTES_MAX (256ULL * 1024 * 1024) /* bytes the middle-key scan counts */
#define SRV_SPLITQ_RECENT_MAX 256         /* ranges remembered with a debounce or backoff */
#define SRV_SPLITQ_LOAD_SUSTAIN_MS 10000  /* above split_qps_threshold this long: split */
#define SRV_SPLITQ_LOAD_NO_KEY_BACKOFF_MS 10000 /* hot, but no key divides its load (one
                                                   window of the finder) */

/* ---- cluster settings in this node's memory -----------------------------------
** The node-local API: server/'s queues read the settings here, never from
** the key space. The split queue's thread reads the key space at its start
** and every SRV_SETTINGS_REFRESH_MS (a SET takes effect within that on
** every node); until the first read succeeds every setting has its default. */
typedef struct srv_settings {
    pthread_mutex_t mu;
    sqlv_settings values; /* mu */
    bool loaded;          /* mu: one read succeeded */
    int failures;         /* the refresher's: reads failed in a row */
} srv_settings;
void srv_settings_init(srv_settings *s);
void srv_settings_destroy(srv_settings *s);
/* Read every setting in one read-only transaction and keep them. TXN_OK,
** or the transaction's error (the values kept are unchanged). */
int srv_settings_refresh(srv_settings *s, txn_db *db);
/* The value now (bytes, count, ms; never blocks beyond s->mu). */
int64_t srv_setting_get_int(srv_settings *s, sqlv_setting_id id);
bool srv_setting_get_bool(srv_settings *s, sqlv_setting_id id);
/* Replace the values (tests; the refresher). */
void srv_settings_set_all(srv_settings *s, const sqlv_settings *v);

/* ---- choosing a split key (pure over a store) ------------------------------------
** The part of range d that may split: keys at or above the first user
** table's prefix (/table/SRV_FIRST_TABLE_ID: the system span, meta
** included, stays in range 1) up to its end. [lo, hi) into lo and hi
** (reset first); *unbounded when d ends at +infinity (hi empty). false:
** nothing of d may split. */
bool srv__splitq_span(const range_descriptor *d, base_buf *lo, base_buf *hi, bool *unbounded);
/* Whether key may be where d splits: strictly inside d, in its splittable
** span, and a whole SQL key (table prefix, then column values that
** decode): a row is one key (sql/vtab.c), so the start of a key never cuts
** a row. */
bool srv__splitq_key_ok(const range_descriptor *d, const uint8_t *key, size_t len);
/* The key near the middle of d's splittable span by bytes in engine
** (storage_middle_key: all versions of a key stay together, never the
** span's first key), checked by srv__splitq_key_ok. SRV_OK with the key in
** key_out; SRV_ERR_REFUSED when there is none (fewer than two keys, or a
** key that is not a whole SQL key; why says which); SRV_ERR_IO, NOMEM. */
int srv__splitq_choose_key(storage_engine *engine, const range_descriptor *d,
                           uint64_t scan_bytes_max, base_buf *key_out,
                           storage_middle_info *info /* OUT, may be NULL */, char *why,
                           size_t why_size);
/* "size 70 MiB > 64 MiB" into buf: the range event's reason. */
void srv__splitq_reason(uint64_t size_bytes, int64_t max_bytes, char *buf, size_t size);

/* ---- splitting by load (pure) -----------------------------------------------------
** The rule: a range led here whose reads + writes per second (its
** leaseholder's decayed rates, range_server_get_load) stayed above
** split_qps_threshold for sustain_ms splits at the load-split finder's
** key, aligned to a whole SQL key; then the lease of its right half moves
** to the least loaded live voter. */
/* Whether a range at qps is due now. *hot_since_ns: when it was first seen
** above the threshold (0: it was not), updated (below it: back to 0). */
bool srv__splitq_load_due(double qps, int64_t threshold, int64_t *hot_since_ns, int64_t now_ns,
                          int64_t sustain_ms);
/* The finder's key made a split point of d: the longest prefix of key that
** is a whole SQL key (the table prefix and the column values that decode
** whole), into out (reset first), checked by srv__splitq_key_ok. false:
** none (out empty). */
bool srv__splitq_align_key(const range_descriptor *d, const uint8_t *key, size_t len,
                           base_buf *out);
/* "load 3100 qps > 2500" into buf: the range event's reason. */
void srv__splitq_load_reason(double qps, int64_t threshold, char *buf, size_t size);
/* Where the lease of a half of d goes: among d's voters other than self
** that are live, active and not draining in nodes[], the one whose leases
** carry the least load (the reads + writes per second of the ranges in
** views[] it holds the lease of), then the fewest leases, then the lowest
** id. 0: none. */
uint64_t srv__splitq_lease_target(const range_descriptor *d, uint64_t self,
                                  const srv__node_state *nodes, size_t n_nodes,
                                  const srv__range_view *views, size_t n_views);

/* ---- the queue ------------------------------------------------------------------
** One thread per node. Every SRV_SPLITQ_SCAN_MS, when split_enabled, it
** looks at the ranges this node holds the lease of (rotating the first
** one) and splits those whose size in this store is above
** range_max_bytes at srv__splitq_choose_key, and those hot by the load
** rule above at the finder's key, through txn_db_split_at (the path of
** ALTER TABLE ... SPLIT AT), then records the split in the range event log
** (a transaction of its own); after a load split it moves the right half's
** lease (range_router_transfer_lease) and records that too. */
typedef struct srv__splitq_recent {
    uint64_t range_id;
    int64_t until_ns; /* monotonic: not looked at before */
} srv__splitq_recent;

/* The resting table of a queue (split, merge): recent[0 .. *n), at most
** max entries. Remember range_id until now_ns + ms (the later of that and
** what it had); a full table first forgets what expired, then the entry
** that expires first. */
void srv__splitq_recent_remember(srv__splitq_recent *recent, size_t *n, size_t max,
                                 uint64_t range_id, int64_t now_ns, int64_t ms);
/* Whether range_id rests at now_ns in recent[0 .. n). */
bool srv__splitq_recent_resting(const srv__splitq_recent *recent, size_t n, uint64_t range_id,
                                int64_t now_ns);

/* A led range as last seen: a new (range, generation) pair (a split, by
** anyone, of it or making it; a replica change; a lease that just came
** here) rests the debounce from when it was first seen. */
typedef struct srv__splitq_seen {
    uint64_t range_id;
    uint64_t generation;
    int64_t since_ns; /* monotonic: first seen with this generation */
    int64_t hot_since_ns; /* monotonic: above split_qps_threshold since (0: not) */
} srv__splitq_seen;

/* The node's stack (borrowed: lives until srv__splitq_stop returned). */
typedef struct srv__splitq_env {
    uint64_t self;
    range_node *rnode;
    storage_engine *engine;
    txn_db *db;
    srv_settings *settings;
    int64_t scan_ms;      /* 0: SRV_SPLITQ_SCAN_MS */
    int64_t debounce_ms;  /* 0: SRV_SPLITQ_DEBOUNCE_MS */
    /* load splits (NULL: none): this node's server's load figures, and the
    ** cluster (srv__admin_cluster) and router (lease moves) through admin */
    range_server *rserver;
    srv__admin *admin;
    int64_t load_sustain_ms; /* 0: SRV_SPLITQ_LOAD_SUSTAIN_MS */
} srv__splitq_env;

typedef struct srv__splitq {
    srv__worker worker;   /* its thread (srv_worker.c) */
    srv__splitq_env env;
    /* the thread's */
    srv__splitq_recent recent[SRV_SPLITQ_RECENT_MAX];
    size_t n_recent;
    srv__splitq_seen *seen; /* owned: the led ranges of the last round, by range id */
    size_t n_seen;
    size_t scan_offset;
    bool disabled_logged;
    uint64_t splits, failures; /* counters */
    uint64_t load_splits, lease_moves; /* of which by load; leases moved after one */
} srv__splitq;

void srv__splitq_init(srv__splitq *q);
/* Start the thread over env (copied). SRV_OK, SRV_ERR_NOMEM. */
int srv__splitq_start(srv__splitq *q, const srv__splitq_env *env);
/* Stop and join the thread (a split in flight ends with the router's
** shutdown); a no-op when it never started. Then destroy. */
void srv__splitq_stop(srv__splitq *q);
void srv__splitq_destroy(srv__splitq *q);
/* Remember range_id until now_ns + ms (a debounce or a backoff); a full
** table forgets the entry that expires first. */
void srv__splitq_remember(srv__splitq *q, uint64_t range_id, int64_t now_ns, int64_t ms);
/* Whether range_id is left alone at now_ns. */
bool srv__splitq_resting(const srv__splitq *q, uint64_t range_id, int64_t now_ns);
/* The led ranges now (ids[i] at gens[i], n <= RANGE_NODE_REPLICAS_MAX):
** replaces the seen table, keeping the first-seen time of the pairs that
** did not change. SRV_OK, SRV_ERR_NOMEM (the table is unchanged). */
int srv__splitq_note_seen(srv__splitq *q, const uint64_t *ids, const uint64_t *gens, size_t n,
                          int64_t now_ns);
/* Whether range_id, as last noted, was first seen at least debounce_ms
** before now_ns (false for a range not noted). */
bool srv__splitq_settled(const srv__splitq *q, uint64_t range_id, int64_t now_ns,
                         int64_t debounce_ms);
/* One round (the thread's body; tests): the splits it made. */
size_t srv__splitq_round(srv__splitq *q, int64_t now_ns);

#endif
