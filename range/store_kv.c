/*
** range/store_kv.c: the range_kv view of a local range_store (single node,
** tests). A thin adapter: every op calls the range_store function of the
** same name, so a coordinator over this view behaves exactly as one calling
** range_store directly.
**
** Invariants:
**   - the view is embedded in its store (store_kv_int.h): no allocation, and
**     it lives exactly as long as the store.
**   - an iterator of this view is a range_iter behind the opaque
**     range_kv_iter pointer; nothing else is ever cast to it here.
*/
#include "range/store_kv_int.h"

#include <stddef.h>

static range_store *store_kv__store(range_kv *kv) {
    return ((range__store_kv *)kv)->store;
}

static int store_kv__wait_visible(range_kv *kv, hlc_timestamp read_ts) {
    return range_wait_visible(store_kv__store(kv), read_ts);
}

static int store_kv__get(range_kv *kv, const uint8_t *key, size_t key_len, hlc_timestamp read_ts,
                         base_buf *out) {
    return range_get(store_kv__store(kv), key, key_len, read_ts, out);
}

static int store_kv__iter_open(range_kv *kv, const uint8_t *start, size_t start_len,
                               const uint8_t *end, size_t end_len, hlc_timestamp read_ts,
                               bool reverse, range_kv_iter **out) {
    range_iter *it = NULL;
    int rc = range_iter_open(store_kv__store(kv), start, start_len, end, end_len, read_ts,
                             reverse, &it);
    *out = (range_kv_iter *)it;
    return rc;
}

static int store_kv__iter_next(range_kv_iter *it, const uint8_t **key, size_t *key_len,
                               const uint8_t **value, size_t *value_len) {
    return range_iter_next((range_iter *)it, key, key_len, value, value_len);
}

static void store_kv__iter_close(range_kv_iter *it) { range_iter_close((range_iter *)it); }

static int store_kv__commit(range_kv *kv, const range_commit_request *req,
                            hlc_timestamp *commit_ts, range_conflict *conflict) {
    return range_commit(store_kv__store(kv), req, commit_ts, conflict);
}

static void store_kv__stats(range_kv *kv, range_stats *out) {
    range_store_stats(store_kv__store(kv), out);
}

static const range_kv_ops store_kv__ops = {
    .wait_visible = store_kv__wait_visible,
    .get = store_kv__get,
    .iter_open = store_kv__iter_open,
    .iter_next = store_kv__iter_next,
    .iter_close = store_kv__iter_close,
    .commit = store_kv__commit,
    .stats = store_kv__stats,
    .last_error = NULL, /* a local store's errors need no detail */
};

void range__store_kv_init(range__store_kv *v, range_store *s) {
    v->kv.ops = &store_kv__ops;
    v->store = s;
}

range_kv *range_store_kv(range_store *s) { return &range__store_kv_of(s)->kv; }
