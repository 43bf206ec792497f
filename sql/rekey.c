/*
** ALTER TABLE t ADD [CONSTRAINT c] PRIMARY KEY (cols) outside a transaction
** block, as an online schema change (docs/sql.md "Online ADD PRIMARY KEY";
** the same steps as CREATE INDEX's in index.c). A table without a primary
** key keeps its rows under a hidden row id at /table/<id>/1/<row id>; the
** re-keyed table gets a new id, its rows at /table/<new id>/1/<key values>.
**   1. one transaction adds the shadow to the old descriptor: a unique
**      WRITE_ONLY index "<t>_pkey" over the key's columns whose
**      rekey_table is the new id. Every writer from then on maintains it
**      like any index (the uniqueness check: a duplicate is 23505) and
**      also writes or deletes the row and its entries under the new id
**      (vtab.c, shadow_write); a NULL in a key column is 23502.
**   2. backfill: transactions (batches) read the next old rows, while each
**      share of their writes (old id, new id) fits one PREPARE chunk of the
**      router (REKEY_BATCH_*_MAX, below), and write, per row, the shadow's
**      entry (a duplicate: 23505 "could not create unique index"; a NULL: 23502
**      "contains null values"), the row under the new key (its stored
**      value byte for byte) and its entries of every other index under the
**      new id. A batch failing with 40001 is retried with half the rows it
**      read (index.c's sqlv__backfill_run drives the batches of both).
**   3. one transaction swaps: the table's catalog row (keyed by name) now
**      holds the new descriptor (new id, the key, every other index
**      PUBLIC); the old descriptor is gone, so the old id is unreachable.
**      The table's privilege rows (and its columns') move to the new id in
**      the same transaction (sqlv__priv_move_table): no grant is lost.
**   4. the old rows and entries are deleted in transactions of at most
**      REKEY_DELETE_KEYS_MAX keys (no writer can reach them any more).
** Batch sizes matter only to cost: the argument (docs/sql.md) holds for a
** batch of any size, since each is one serializable transaction.
** A failure before the swap commits removes the shadow in a transaction of
** its own, then deletes its entries and the new id's keys in chunks; the
** table is as it was.
** Invariants:
**   - a table has at most one shadow, and none while an index of it is
**     WRITE_ONLY (CREATE INDEX refuses to start on a table with a shadow):
**     the new descriptor's indexes are exactly the old one's, complete.
**   - the new id holds keys only while the shadow exists or after the swap
**     (it was never in the catalog before step 1, ids are never reused).
**   - nothing is held between transactions: writers wait for nothing.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql_int.h"

#define MOD "sql"

enum { STMT_OK = 0, STMT_FAILED = 1 }; /* session.c's */

#define REKEY_DELETE_KEYS_MAX 8000 /* keys one cleanup transaction deletes: one piece of a
                                     delete span within the router's 10,000 rows */
/* A backfill batch: in a cluster its writes lie in two ranges at least (the
** shadow's entries under the old id, the rows and other entries under the
** new one), so it commits in two phases, and each PREPARE (and each chunk of
** one) seeks over its whole range for intents, skipping the deleted intent
** keys of every batch before it until the engine compacts them: the cost
** per batch grows with the table, so fewer, larger batches are cheaper. A
** batch stops before either share passes one PREPARE chunk of the router
** (docs/txn.md 3.3: 10,000 writes, 512 KiB with 64 bytes and the anchor per
** intent), with a margin: one row more may pass the budget; the estimate
** only sizes batches, the router splits whatever does not fit. */
#define REKEY_BATCH_WRITES_MAX 9000             /* writes of one share */
#define REKEY_BATCH_BYTES_MAX (448u << 10)      /* estimated bytes of one share */
#define REKEY_WRITE_OVERHEAD_BYTES 128          /* per write: intent, anchor, item */
#define REKEY_DELETE_RETRIES_MAX 16 /* attempts of one cleanup chunk (40001) */

typedef struct rekey_args {
    const char *name;
    bool if_exists;
    const char *cols_start, *cols_end;
    uint32_t old_id, new_id, index_id; /* old_id, index_id: set by step 1 */
    bool swapped; /* remove_shadow found the swap committed (an unknown commit result) */
    char index_name[SQLV__NAME_BYTES_MAX * 4 + 1];
} rekey_args;

/* The re-keyed descriptor of t: its CREATE text with the key added, id
** a->new_id, t's indexes but the shadow, all PUBLIC (owner of *out:
** caller). 0 with *out; 0 with res set (a bad column...); SQLV_ERR_NOMEM. */
static int new_descriptor(const sqlv__table *t, const rekey_args *a, sqlv__table **out,
                          sqlv__result *res) {
    sqlv__table *nt = NULL;
    bool ine = false;
    *out = NULL;
    const char *close = strrchr(t->create_sql, ')');
    if (close == NULL) {
        sqlv__result_set(res, "XX000", "malformed table descriptor");
        return 0;
    }
    char *sql = sqlite3_mprintf("%.*s, PRIMARY KEY (%.*s))", (int)(close - t->create_sql),
                                t->create_sql, (int)(a->cols_end - a->cols_start), a->cols_start);
    if (sql == NULL) return SQLV_ERR_NOMEM;
    int rc = sqlv__table_parse(sql, a->new_id, &nt, &ine, res->sqlstate, res->message,
                               sizeof(res->message));
    sqlite3_free(sql);
    if (rc > 0) return 0;
    if (rc < 0) return SQLV_ERR_NOMEM;
    nt->id = a->new_id;
    if (sqlv__indexes_carry(nt, t, true) != 0) {
        sqlv__table_free(nt);
        return SQLV_ERR_NOMEM;
    }
    for (int i = 0; i < nt->nindexes; i++) {
        if (nt->indexes[i].rekey_table == 0) continue;
        sqlv__index_remove(nt, i);
        break;
    }
    nt->shape = sqlv__table_shape(nt);
    *out = nt;
    return 0;
}

/* ---- step 1: the shadow ---------------------------------------------------------- */

static int add_shadow(sqlv_engine *e, txn *kv, const sqlv__catalog *cat, void *arg,
                      sqlv__result *res) {
    (void)e;
    rekey_args *a = arg;
    sqlv__table *nt = NULL, *t2 = NULL;
    char pk[SQLV__NAME_BYTES_MAX * 4 + 16];
    const sqlv__table *t = sqlv__catalog_find(cat, a->name);
    if (t == NULL) {
        if (a->if_exists)
            snprintf(res->notice, sizeof(res->notice),
                     "relation \"%.200s\" does not exist, skipping", a->name);
        else
            sqlv__result_set(res, "42P01", "relation \"%s\" does not exist", a->name);
        return 0;
    }
    if (t->npk > 0) {
        sqlv__result_set(res, "42P16", "multiple primary keys for table \"%s\" are not allowed",
                         t->name);
        return 0;
    }
    for (int i = 0; i < t->nindexes; i++) {
        if (t->indexes[i].state == SQLV__INDEX_PUBLIC) continue;
        sqlv__result_set(res, "55000", "cannot add a primary key to table \"%s\" while index "
                         "\"%s\" is being built or invalid", t->name, t->indexes[i].name);
        return 0;
    }
    snprintf(pk, sizeof(pk), "%.58s_pkey", t->name); /* as pgcatalog.c names it */
    if (sqlv__relation_taken((const sqlv__table *const *)cat->tables, cat->ntables, pk)) {
        sqlv__result_set(res, "42P07", "relation \"%s\" already exists", pk);
        return 0;
    }
    int rc = new_descriptor(t, a, &nt, res);
    if (rc != 0 || res->sqlstate[0]) goto cleanup;
    rc = SQLV_ERR_NOMEM;
    if (sqlv__table_clone(t, &t2) != 0) goto cleanup;
    rc = sqlv__index_add_rekey(t2, pk, nt->pk, nt->npk, a->new_id, res->sqlstate, res->message,
                               sizeof(res->message));
    if (rc != 0) {
        if (rc > 0) rc = 0;
        goto cleanup;
    }
    t2->shape = sqlv__table_shape(t2);
    a->old_id = t->id;
    a->index_id = t2->indexes[t2->nindexes - 1].id;
    base_strlcpy(a->index_name, pk, sizeof(a->index_name));
    rc = sqlv__catalog_put(kv, t2, res);
cleanup:
    sqlv__table_free(nt);
    sqlv__table_free(t2);
    return rc;
}

/* The old table with the shadow of a, as cat has it, or NULL with res set
** (dropped, or its shadow removed, meanwhile); *sx the shadow. */
static const sqlv__table *shadowed(const sqlv__catalog *cat, const rekey_args *a,
                                   const sqlv__index **sx, sqlv__result *res) {
    const sqlv__table *t = sqlv__catalog_find_id(cat, a->old_id);
    *sx = t ? sqlv__table_rekey_index(t) : NULL;
    if (*sx == NULL || (*sx)->id != a->index_id || (*sx)->rekey_table != a->new_id) {
        sqlv__result_set(res, "55000", "table \"%s\" was dropped or altered while its primary "
                         "key was being added", a->name);
        return NULL;
    }
    return t;
}

/* ---- step 2: the backfill -------------------------------------------------------- */

/* One old row of a batch: offsets into the batch's bytes. */
typedef struct batch_row {
    size_t key, key_len;     /* its old key */
    size_t value, value_len; /* its stored value */
    size_t entry, entry_len; /* its shadow entry's key */
} batch_row;

typedef struct batch {
    base_buf bytes; /* every row's key, value and entry */
    batch_row *rows;
    int n;
} batch;

typedef struct sorted_entry {
    const uint8_t *p; /* into the batch's bytes, which no longer move */
    size_t len;
    int row;
} sorted_entry;

static int entry_cmp(const void *x, const void *y) {
    const sorted_entry *a = x, *b = y;
    int c = memcmp(a->p, b->p, BASE_MIN(a->len, b->len));
    if (c != 0) return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* 23505 for row i of b, whose key another row has. 0, or SQLV_ERR_NOMEM. */
static int duplicate(const sqlv__table *t, const sqlv__index *sx, const batch *b, int i,
                     sqlv__cell *cells, sqlv__result *res) {
    base_buf detail = {0};
    const batch_row *r = &b->rows[i];
    if (sqlv__row_decode_table(t, b->bytes.data + r->value, r->value_len, cells) != 0) {
        sqlv__result_set(res, "XX001", "malformed row of table \"%s\" in the key space", t->name);
        return 0;
    }
    if (sqlv__index_key_text(t, sx, cells, &detail) != 0) {
        base_buf_free(&detail);
        return SQLV_ERR_NOMEM;
    }
    sqlv__result_set(res, "23505",
                     "could not create unique index \"%s\"\nDETAIL:  Key %.*s is duplicated.",
                     sx->name, (int)BASE_MIN(detail.len, 400), (const char *)detail.data);
    base_buf_free(&detail);
    return 0;
}

/* The shadow's entries of the batch's rows, checked: none may be another
** row's. Sorted, the batch's own keys must differ; then one scan of the
** shadow's entries between the least and the greatest key answers for
** every row (one read instead of one per row: in a cluster each is a
** round trip), unless that span holds more than REKEY_SCAN_ENTRIES_MAX
** entries (the keys are spread out): then a point read per row. 0 (res
** set: 23505 or a txn error with *txn_rc) or SQLV_ERR_NOMEM. */
#define REKEY_SCAN_ENTRIES_MAX(n) (4 * (n) + 64)
static int check_batch(txn *kv, const sqlv__table *t, const sqlv__index *sx, const batch *b,
                       sqlv__cell *cells, int *txn_rc, sqlv__result *res) {
    txn_error err = {{0}, {0}};
    txn_iter *it = NULL;
    base_buf end = {0}, found = {0};
    sorted_entry *order = base_calloc((size_t)b->n, sizeof(*order));
    int rc = SQLV_ERR_NOMEM, trc = TXN_OK;
    const uint8_t *d = b->bytes.data;
    if (order == NULL) goto cleanup;
    for (int i = 0; i < b->n; i++)
        order[i] = (sorted_entry){d + b->rows[i].entry, b->rows[i].entry_len, i};
    qsort(order, (size_t)b->n, sizeof(*order), entry_cmp);
    for (int i = 1; i < b->n; i++) {
        if (entry_cmp(&order[i - 1], &order[i]) == 0) {
            rc = duplicate(t, sx, b, order[i].row, cells, res);
            goto cleanup;
        }
    }
    const sorted_entry *lo = &order[0], *hi = &order[b->n - 1];
    if (enc_key_next(hi->p, hi->len, &end) != ENC_OK) goto cleanup;
    trc = txn_scan(kv, lo->p, lo->len, end.data, end.len, false, &it, &err);
    if (trc != TXN_OK) {
        it = NULL;
        goto txn_failed;
    }
    bool spread = false;
    for (int seen = 0, next = 0;; seen++) {
        const uint8_t *k, *v;
        size_t kl, vl;
        int got = txn_iter_next(it, &k, &kl, &v, &vl, &err);
        if (got < 0) {
            trc = got;
            goto txn_failed;
        }
        if (got == 0) break;
        if (seen >= REKEY_SCAN_ENTRIES_MAX(b->n)) {
            spread = true;
            break;
        }
        /* the rows whose entries sort before k have none yet */
        sorted_entry here = {k, kl, -1};
        while (next < b->n && entry_cmp(&order[next], &here) < 0)
            next++;
        if (next == b->n) break;
        if (entry_cmp(&order[next], &here) != 0) continue;
        /* its entry exists: a writer's copy of this very row, or another row's */
        const batch_row *r = &b->rows[order[next].row];
        if (vl != r->key_len - ENC_PREFIX_BYTES ||
            memcmp(v, d + r->key + ENC_PREFIX_BYTES, vl) != 0) {
            rc = duplicate(t, sx, b, order[next].row, cells, res);
            goto cleanup;
        }
    }
    for (int i = 0; spread && i < b->n; i++) {
        const batch_row *r = &b->rows[i];
        trc = txn_get(kv, d + r->entry, r->entry_len, &found, &err);
        if (trc == TXN_NOT_FOUND) continue;
        if (trc != TXN_OK) goto txn_failed;
        if (found.len != r->key_len - ENC_PREFIX_BYTES ||
            memcmp(found.data, d + r->key + ENC_PREFIX_BYTES, found.len) != 0) {
            rc = duplicate(t, sx, b, i, cells, res);
            goto cleanup;
        }
    }
    rc = 0;
    goto cleanup;
txn_failed:
    rc = sqlv__backfill_txn_failed(res, trc, &err, txn_rc);
cleanup:
    if (it) txn_iter_close(it);
    base_free(order);
    base_buf_free(&end);
    base_buf_free(&found);
    return rc;
}

/* Copy the old rows of t from *from on (at most max_rows, and while
** either share of the writes is within REKEY_BATCH_*_MAX) under the new
** key, through kv: read the batch, check the shadow's keys (check_batch),
** then write, per row, its shadow entry, the row under the new key (the
** stored value byte for byte) and its entries of the other indexes under
** the new id. *from moves past the last row read; *done when the rows
** ended; *nrows the rows read. 0 (res set on a user error, or a txn error
** with *txn_rc) or SQLV_ERR_NOMEM. */
static int copy_rows(txn *kv, const sqlv__table *t, const sqlv__index *sx, base_buf *from,
                     int max_rows, bool *done, int *nrows, int *txn_rc, sqlv__result *res) {
    base_buf prefix = {0}, rows_end = {0}, entry = {0}, nkey = {0}, xkey = {0};
    txn_error err = {{0}, {0}};
    txn_iter *it = NULL;
    batch b;
    sqlv__table nt = *t; /* entry keys under the new id: same columns and index ids */
    sqlv__cell *cells = base_calloc((size_t)t->ncols, sizeof(*cells));
    int cap = max_rows > 0 ? max_rows : REKEY_BATCH_WRITES_MAX;
    int rc = SQLV_ERR_NOMEM, trc;
    size_t old_writes = 0, old_bytes = 0, new_writes = 0, new_bytes = 0; /* the shares */
    memset(&b, 0, sizeof(b));
    nt.id = sx->rekey_table;
    *done = false;
    *nrows = 0;
    *txn_rc = TXN_OK;
    b.rows = base_calloc((size_t)cap, sizeof(*b.rows));
    if (cells == NULL || b.rows == NULL) goto cleanup;
    if (from->len == 0 && sqlv__table_prefix(from, t->id) != 0) goto cleanup;
    if (sqlv__table_prefix(&prefix, t->id) != 0 ||
        enc_prefix_end(prefix.data, prefix.len, &rows_end) != ENC_OK)
        goto cleanup;
    trc = txn_scan(kv, from->data, from->len, rows_end.data, rows_end.len, false, &it, &err);
    if (trc != TXN_OK) {
        it = NULL;
        goto txn_failed;
    }
    while (b.n < cap && old_writes < REKEY_BATCH_WRITES_MAX &&
           new_writes < REKEY_BATCH_WRITES_MAX && old_bytes < REKEY_BATCH_BYTES_MAX &&
           new_bytes < REKEY_BATCH_BYTES_MAX) {
        const uint8_t *k, *v;
        size_t kl, vl;
        bool exact;
        int n = txn_iter_next(it, &k, &kl, &v, &vl, &err);
        if (n < 0) {
            trc = n;
            goto txn_failed;
        }
        if (n == 0) {
            *done = true;
            break;
        }
        if (kl <= ENC_PREFIX_BYTES || sqlv__row_decode_table(t, v, vl, cells) != 0) {
            sqlv__result_set(res, "XX001", "malformed row of table \"%s\" in the key space",
                             t->name);
            rc = 0;
            goto cleanup;
        }
        for (int c = 0; c < sx->ncols; c++) {
            if (cells[sx->cols[c]].type != SQLITE_NULL) continue;
            sqlv__result_set(res, "23502", "column \"%s\" of relation \"%s\" contains null values",
                             t->cols[sx->cols[c]].name, t->name);
            rc = 0;
            goto cleanup;
        }
        if (sqlv__index_entry(t, sx, cells, k + ENC_PREFIX_BYTES, kl - ENC_PREFIX_BYTES, &entry,
                              &exact) != 0)
            goto cleanup;
        batch_row *r = &b.rows[b.n++];
        r->key = b.bytes.len;
        r->key_len = kl;
        r->value = r->key + kl;
        r->value_len = vl;
        r->entry = r->value + vl;
        r->entry_len = entry.len;
        if (base_buf_append(&b.bytes, k, kl) != 0 || base_buf_append(&b.bytes, v, vl) != 0 ||
            base_buf_append(&b.bytes, entry.data, entry.len) != 0)
            goto cleanup;
        /* the shadow entry; the row; each other entry (its key at most the
        ** row's values and the new key, its value the new key) */
        size_t others = (size_t)(t->nindexes - 1);
        old_writes++;
        old_bytes += entry.len + kl + REKEY_WRITE_OVERHEAD_BYTES;
        new_writes += 1 + others;
        new_bytes += entry.len + vl + REKEY_WRITE_OVERHEAD_BYTES +
                     others * (vl + 2 * entry.len + REKEY_WRITE_OVERHEAD_BYTES);
    }
    txn_iter_close(it);
    it = NULL;
    *nrows = b.n;
    if (b.n > 0) {
        rc = check_batch(kv, t, sx, &b, cells, txn_rc, res);
        if (rc != 0 || res->sqlstate[0]) goto cleanup;
        rc = SQLV_ERR_NOMEM;
    }
    for (int i = 0; i < b.n; i++) {
        const batch_row *r = &b.rows[i];
        const uint8_t *d = b.bytes.data;
        bool exact;
        trc = txn_put(kv, d + r->entry, r->entry_len, d + r->key + ENC_PREFIX_BYTES,
                      r->key_len - ENC_PREFIX_BYTES, &err);
        if (trc != TXN_OK) goto txn_failed;
        /* the row under the new key: the entry's values after the new prefix */
        base_buf_reset(&nkey);
        if (sqlv__table_prefix(&nkey, nt.id) != 0 ||
            base_buf_append(&nkey, d + r->entry + ENC_PREFIX_BYTES,
                            r->entry_len - ENC_PREFIX_BYTES) != 0)
            goto cleanup;
        trc = txn_put(kv, nkey.data, nkey.len, d + r->value, r->value_len, &err);
        if (trc != TXN_OK) goto txn_failed;
        if (t->nindexes > 1 && sqlv__row_decode_table(t, d + r->value, r->value_len, cells) != 0)
            goto cleanup; /* decoded once already */
        const uint8_t *nsuffix = nkey.data + ENC_PREFIX_BYTES;
        size_t nsuffix_len = nkey.len - ENC_PREFIX_BYTES;
        for (int x = 0; x < t->nindexes; x++) {
            const sqlv__index *ix = &t->indexes[x];
            if (ix == sx) continue;
            if (sqlv__index_entry(&nt, ix, cells, nsuffix, nsuffix_len, &xkey, &exact) != 0)
                goto cleanup;
            trc = txn_put(kv, xkey.data, xkey.len, nsuffix, nsuffix_len, &err);
            if (trc != TXN_OK) goto txn_failed;
        }
    }
    if (b.n > 0) {
        const batch_row *last = &b.rows[b.n - 1];
        base_buf_reset(from);
        if (enc_key_next(b.bytes.data + last->key, last->key_len, from) != ENC_OK) goto cleanup;
    }
    rc = 0;
    goto cleanup;
txn_failed:
    rc = sqlv__backfill_txn_failed(res, trc, &err, txn_rc);
cleanup:
    if (it) txn_iter_close(it);
    base_free(cells);
    base_free(b.rows);
    base_buf_free(&b.bytes);
    base_buf_free(&prefix);
    base_buf_free(&rows_end);
    base_buf_free(&entry);
    base_buf_free(&nkey);
    base_buf_free(&xkey);
    return rc;
}

/* Step 2's batch (sqlv__backfill_step_fn, driven by index.c's
** sqlv__backfill_run): the next old rows under the new key. */
static int backfill_step(void *arg, txn *kv, const sqlv__catalog *cat, base_buf *from,
                         int max_rows, bool *done, int *nrows, int *txn_rc, sqlv__result *res) {
    const sqlv__index *sx;
    const sqlv__table *t = shadowed(cat, arg, &sx, res);
    if (t == NULL) return 0;
    return copy_rows(kv, t, sx, from, max_rows, done, nrows, txn_rc, res);
}

/* ---- step 3: the swap; after a failure: the shadow goes ---------------------------- */

static int swap(sqlv_engine *e, txn *kv, const sqlv__catalog *cat, void *arg,
                sqlv__result *res) {
    (void)e;
    rekey_args *a = arg;
    const sqlv__index *sx;
    sqlv__table *nt = NULL;
    const sqlv__table *t = shadowed(cat, a, &sx, res);
    if (t == NULL) return 0;
    int rc = new_descriptor(t, a, &nt, res);
    if (rc == 0 && !res->sqlstate[0]) rc = sqlv__catalog_put(kv, nt, res); /* by name */
    if (rc == 0 && !res->sqlstate[0]) {
        /* the grants follow the table, in the same transaction */
        txn_error err = {{0}, {0}};
        int trc = sqlv__priv_move_table(kv, a->old_id, a->new_id, &err);
        if (trc == TXN_ERR_NOMEM) rc = SQLV_ERR_NOMEM;
        else if (trc != TXN_OK) sqlv__result_txn(res, trc, &err);
    }
    sqlv__table_free(nt);
    return rc;
}

static int remove_shadow(sqlv_engine *e, txn *kv, const sqlv__catalog *cat, void *arg,
                         sqlv__result *res) {
    (void)e;
    rekey_args *a = arg;
    const sqlv__index *sx;
    sqlv__table *t2 = NULL;
    a->swapped = sqlv__catalog_find_id(cat, a->new_id) != NULL;
    const sqlv__table *t = shadowed(cat, a, &sx, res);
    if (t == NULL) {
        memset(res, 0, sizeof(*res)); /* gone already (dropped, or swapped): nothing to do */
        return 0;
    }
    if (sqlv__table_clone(t, &t2) != 0) return SQLV_ERR_NOMEM;
    sqlv__index_remove(t2, (int)(sx - t->indexes));
    t2->shape = sqlv__table_shape(t2);
    int rc = sqlv__catalog_put(kv, t2, res);
    sqlv__table_free(t2);
    return rc;
}

/* ---- step 4: unreachable keys, in chunks ----------------------------------------- */

/* Delete every key of [start, end), at most REKEY_DELETE_KEYS_MAX per
** transaction. Nobody writes there any more, so the chunks only conflict
** with a split or a lease move (retried). 0, or -1 (logged). */
static int delete_chunked(sqlv_engine *e, const base_buf *start, const base_buf *end) {
    base_buf from = {0}, next = {0};
    int result = -1;
    if (base_buf_append(&from, start->data, start->len) != 0) goto out;
    for (bool done = false; !done;) {
        int attempt = 0;
        for (;; attempt++) {
            txn *kv = NULL;
            txn_iter *it = NULL;
            txn_error err = {{0}, {0}};
            int n = 0, trc = txn_begin(e->db, NULL, &kv);
            base_buf_reset(&next);
            if (trc == TXN_OK)
                trc = txn_scan(kv, from.data, from.len, end->data, end->len, false, &it, &err);
            while (trc == TXN_OK && n < REKEY_DELETE_KEYS_MAX) {
                const uint8_t *k, *v;
                size_t kl, vl;
                int got = txn_iter_next(it, &k, &kl, &v, &vl, &err);
                if (got < 0) trc = got;
                if (got <= 0) break;
                n++;
                base_buf_reset(&next);
                if (enc_key_next(k, kl, &next) != ENC_OK) trc = TXN_ERR_NOMEM;
            }
            if (it) txn_iter_close(it);
            done = trc == TXN_OK && n < REKEY_DELETE_KEYS_MAX;
            if (trc == TXN_OK && n > 0)
                trc = done ? txn_delete_range(kv, from.data, from.len, end->data, end->len, &err)
                           : txn_delete_range(kv, from.data, from.len, next.data, next.len, &err);
            if (trc == TXN_OK) {
                trc = txn_commit(kv, NULL, &err);
                kv = NULL;
            }
            if (kv) txn_rollback(kv);
            if (trc == TXN_OK) break;
            if ((trc != TXN_ERR_RETRY && trc != TXN_ERR_UNAVAILABLE) ||
                attempt + 1 >= REKEY_DELETE_RETRIES_MAX) {
                txn_error_set(&err, trc);
                BASE_WARN(MOD, "keys of a re-keyed table not deleted (%d %s); they are "
                          "unreachable", trc, err.message);
                goto out;
            }
            done = false;
            sqlv__backfill_backoff(attempt);
        }
        if (!done) {
            base_buf_reset(&from);
            if (base_buf_append(&from, next.data, next.len) != 0) goto out;
        }
    }
    result = 0;
out:
    base_buf_free(&from);
    base_buf_free(&next);
    return result;
}

static void delete_span_of(sqlv_engine *e, uint32_t table_id, uint32_t index_id) {
    base_buf start = {0}, end = {0};
    int rc = index_id ? sqlv__index_span(table_id, index_id, &start, &end)
                      : sqlv__table_span(table_id, &start, &end);
    if (rc == 0) (void)delete_chunked(e, &start, &end);
    base_buf_free(&start);
    base_buf_free(&end);
}

/* ---- the statement --------------------------------------------------------------- */

int sqlv__rekey_online(sqlv__run *r, const char *name, bool if_exists, const char *cols_start,
                       const char *cols_end) {
    sqlv_session *s = r->s;
    sqlv_engine *e = s->engine;
    rekey_args a;
    sqlv__result res, cleanup_res;
    memset(&a, 0, sizeof(a));
    memset(&res, 0, sizeof(res));
    a.name = name;
    a.if_exists = if_exists;
    a.cols_start = cols_start;
    a.cols_end = cols_end;
    int rc = sqlv__engine_allocate_table_id(e, &a.new_id, &res);
    if (rc < 0) return sqlv__fail(r, "53200", "out of memory");
    if (res.sqlstate[0]) return sqlv__fail(r, res.sqlstate, res.message);
    rc = sqlv__engine_run_ddl(e, add_shadow, &a, &res);
    if (rc < 0) return sqlv__fail(r, "53200", "out of memory");
    if (res.sqlstate[0]) return sqlv__fail(r, res.sqlstate, res.message);
    if (res.notice[0]) { /* IF EXISTS, no table */
        if (r->sink_rc == 0 && r->sink->notice)
            r->sink_rc = r->sink->notice(r->sink->ctx, res.notice);
        return STMT_OK;
    }
    /* in a cluster the new id starts in its own range, as a new table does */
    sqlv__engine_after_ddl(e, &a.new_id, 1, NULL, 0);
    BASE_INFO(MOD, "table %s (id %u): primary key shadow (id %u, index %u) write-only, "
              "backfilling", name, a.old_id, a.new_id, a.index_id);
    rc = sqlv__backfill_run(s, backfill_step, &a, REKEY_BATCH_WRITES_MAX, a.old_id, a.index_id,
                            &res);
    if (rc == 0 && !res.sqlstate[0]) rc = sqlv__engine_run_ddl(e, swap, &a, &res);
    if (rc != 0 || res.sqlstate[0]) {
        /* the shadow goes, then its keys (best effort; if it stays, it is an
        ** invalid index writers maintain, and DROP INDEX removes it). If
        ** the swap's commit failed with an unknown outcome and did commit,
        ** the re-keyed table stands: success after all. */
        if (sqlv__engine_run_ddl(e, remove_shadow, &a, &cleanup_res) != 0 ||
            cleanup_res.sqlstate[0]) {
            BASE_WARN(MOD, "primary key shadow of table id %u not removed after a failure: %s",
                      a.old_id, cleanup_res.message);
        } else if (a.swapped) {
            rc = 0;
            memset(&res, 0, sizeof(res));
        } else {
            delete_span_of(e, a.old_id, a.index_id);
            delete_span_of(e, a.new_id, 0);
        }
    }
    if (rc == 0 && !res.sqlstate[0]) {
        BASE_INFO(MOD, "table %s re-keyed: id %u -> %u; deleting the old rows", name, a.old_id,
                  a.new_id);
        delete_span_of(e, a.old_id, 0);
        return STMT_OK;
    }
    if (rc < 0) return sqlv__fail(r, "53200", "out of memory");
    return sqlv__fail(r, res.sqlstate, res.message);
}
