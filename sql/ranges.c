/*
** sql/ranges.c: the operator's view of ranges (docs/operations.md).
**   SHOW RANGES [FROM TABLE t]              one row per range
**   SHOW RANGE FROM TABLE t FOR ROW (v, ...) the range holding that row
**   ALTER RANGE id RELOCATE LEASE TO n
**   ALTER RANGE id RELOCATE [VOTERS] FROM a TO b
**   meridian_internal.range_events           the range event log (txn.h)
**   meridian_internal.node_metrics           this node's counters and clock bound
**
** sql/ knows no cluster: the descriptors, leaseholders and sizes and the
** relocations come from the node's callbacks (sqlv_admin, set by server/);
** this file parses, names keys after the tables they fall in, and formats.
** The event log is read through the session's own KV transaction like any
** table (system keys of range 1), and written by txn/ (txn_admin.c).
**
** Columns of SHOW RANGES (and SHOW RANGE): range_id, start_key, end_key
** (keys as "/Table/accounts/1000", "/Min", "/Max", "/System/..."),
** table_name (of the start key; NULL below the first user table),
** replicas ("{1,2,4}"), lease_holder, generation, size_bytes (approximate;
** NULL unknown), reads_per_second and writes_per_second (the requests
** its leaseholder evaluated, decayed with a 10 s half-life, docs/range.md
** "Load"; NULL: unknown).
**
** Invariants:
**   - no callback runs while this session's KV transaction is one this
**     file opened (the catalog lookup's read-only transaction is rolled
**     back first), so a blocking callback holds no transaction open;
**   - a relocation never runs inside a transaction block (it is not
**     transactional: 25001);
**   - every answer is bounded: SQLV__RANGES_ROWS_MAX rows;
**   - only root and members of admin see ranges or the event log (42501):
**     their keys and reasons print row values; node_metrics (counters, no
**     row values) is open to every user.
*/
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sql_lex.h"
#include "sql_pgcatalog.h"
#include "sql_ranges.h"

#define MOD "sql"
#define RANGES_NCOLS 10
#define VALUES_MAX 64 /* decoded values of one key printed at most */

enum { STMT_OK = 0, STMT_FAILED = 1 }; /* session.c's */

/* ---- the engine's callbacks ---------------------------------------------------------- */

void sqlv_engine_set_admin(sqlv_engine *e, const sqlv_admin *admin) {
    if (admin == NULL)
        memset(&e->admin, 0, sizeof e->admin);
    else
        e->admin = *admin;
}

void sqlv_range_infos_free(sqlv_range_info *infos, size_t n) {
    if (infos == NULL) return;
    for (size_t i = 0; i < n; i++) {
        base_free(infos[i].start_key);
        base_free(infos[i].end_key);
    }
    base_free(infos);
}

/* ---- keys as SQL values ------------------------------------------------------------- */

/* One decoded value the way psql shows a literal: 42, 1.5, 'it''s', '\x0aff', NULL. */
static int format_value(const enc_value *v, base_buf *out) {
    switch (v->type) {
    case ENC_NULL: return base_buf_printf(out, "NULL");
    case ENC_INTEGER: return base_buf_printf(out, "%" PRId64, v->u.i);
    case ENC_REAL: {
        char d[64];
        sqlv__format_double(v->u.r, d, sizeof d);
        return base_buf_printf(out, "%s", d);
    }
    case ENC_TEXT: {
        if (base_buf_append_byte(out, '\'') != 0) return -1;
        for (size_t i = 0; i < v->u.bytes.len; i++) {
            uint8_t c = v->u.bytes.data[i];
            if (c == '\'' && base_buf_append_byte(out, '\'') != 0) return -1;
            if (base_buf_append_byte(out, c) != 0) return -1;
        }
        return base_buf_append_byte(out, '\'');
    }
    case ENC_BLOB: {
        if (base_buf_append(out, "'\\x", 3) != 0) return -1;
        for (size_t i = 0; i < v->u.bytes.len; i++)
            if (base_buf_printf(out, "%02x", v->u.bytes.data[i]) != 0) return -1;
        return base_buf_append_byte(out, '\'');
    }
    }
    return -1;
}

static int append_hex(base_buf *out, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (base_buf_printf(out, "%02x", p[i]) != 0) return -1;
    return 0;
}

/* The values of key[0..len) (after a table prefix), each with `sep` before
** it but the first one's `first`; bytes that do not decode as "?<hex>".
** 0 or -1 (memory). */
static int format_values(const uint8_t *key, size_t len, const char *first, const char *sep,
                         base_buf *out) {
    base_buf scratch = {0}; /* owner: this function */
    size_t k = 0;
    int n = 0, rc = 0;
    while (rc == 0 && k < len && n < VALUES_MAX) { /* each value consumes >= 1 byte */
        enc_value v;
        size_t used = 0;
        base_buf_reset(&scratch);
        int drc = enc_key_decode_value(key + k, len - k, &scratch, &v, &used);
        if (drc == ENC_ERR_NOMEM) rc = -1;
        if (drc != ENC_OK) break;
        rc = base_buf_printf(out, "%s", n++ == 0 ? first : sep);
        if (rc == 0) rc = format_value(&v, out);
        k += used;
    }
    if (rc == 0 && k < len) {
        rc = base_buf_printf(out, "%s?", n == 0 ? first : sep);
        if (rc == 0) rc = append_hex(out, key + k, len - k);
    }
    base_buf_free(&scratch);
    return rc;
}

int sqlv__ranges_key_tuple(const uint8_t *key, size_t len, base_buf *out) {
    uint32_t table_id, index_id;
    size_t used = 0;
    if (enc_key_decode_prefix(key, len, &table_id, &index_id, &used) != ENC_OK) used = len;
    if (base_buf_append_byte(out, '(') != 0) return -1;
    if (format_values(key + used, len - used, "", ", ", out) != 0) return -1;
    return base_buf_append_byte(out, ')');
}

/* Table names by id, as the session sees them (copied: they outlive the
** catalog lookup's transaction). */
typedef struct table_name {
    uint32_t id;
    char *name; /* owner: the list */
} table_name;
typedef struct name_list {
    table_name *v; /* owner: this list */
    int n;
} name_list;

static void names_free(name_list *nl) {
    for (int i = 0; i < nl->n; i++) base_free(nl->v[i].name);
    base_free(nl->v);
    nl->v = NULL;
    nl->n = 0;
}

static int names_load(sqlv_session *s, name_list *nl) {
    const sqlv__table **tables = NULL;
    int n = 0;
    nl->v = NULL;
    nl->n = 0;
    if (sqlv__pgcat_tables(s, &tables, &n) != 0) return -1;
    nl->v = base_calloc((size_t)n + 1, sizeof *nl->v);
    int rc = nl->v == NULL ? -1 : 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        nl->v[i].id = tables[i]->id;
        nl->v[i].name = base_strdup(tables[i]->name);
        if (nl->v[i].name == NULL) rc = -1;
        else nl->n++;
    }
    base_free(tables);
    if (rc != 0) names_free(nl);
    return rc;
}

static const char *name_of(const name_list *nl, uint32_t id) {
    for (int i = 0; i < nl->n; i++)
        if (nl->v[i].id == id) return nl->v[i].name;
    return NULL;
}

/* A range boundary for people: "/Min", "/Max" (an empty end key),
** "/System/meta/..." (system keys: table id 0), "/System/catalog" and
** "/System/counters" (sql's own tables), "/Table/accounts/1000" (a user
** table by name, or by id once dropped; an index other than the rows' is
** shown as "/Table/t/@2"). 0 or -1 (memory). */
static int key_pretty(const name_list *nl, const uint8_t *key, size_t len, bool is_end,
                      base_buf *out) {
    if (len == 0) return base_buf_printf(out, "%s", is_end ? "/Max" : "/Min");
    uint32_t table_id, index_id;
    size_t used = 0;
    if (enc_key_decode_prefix(key, len, &table_id, &index_id, &used) != ENC_OK) {
        if (base_buf_append(out, "/?", 2) != 0) return -1;
        return append_hex(out, key, len);
    }
    if (table_id == 0 && index_id == 0) { /* system keys: "s" then readable text */
        if (base_buf_printf(out, "/System/") != 0) return -1;
        size_t k = used < len && key[used] == 's' ? used + 1 : used;
        while (k < len && key[k] >= 0x20 && key[k] < 0x7f) {
            if (base_buf_append_byte(out, key[k]) != 0) return -1;
            k++;
        }
        if (k < len) {
            if (base_buf_append(out, "?", 1) != 0) return -1;
            return append_hex(out, key + k, len - k);
        }
        return 0;
    }
    int rc;
    if (table_id == SQLV__CATALOG_TABLE_ID)
        rc = base_buf_printf(out, "/System/catalog");
    else if (table_id == SQLV__COUNTER_TABLE_ID)
        rc = base_buf_printf(out, "/System/counters");
    else if (table_id < SQLV__FIRST_USER_TABLE_ID)
        rc = base_buf_printf(out, "/System/%u", table_id);
    else if (name_of(nl, table_id) != NULL)
        rc = base_buf_printf(out, "/Table/%s", name_of(nl, table_id));
    else
        rc = base_buf_printf(out, "/Table/%u", table_id);
    /* index 0 (a table's first key, where its range starts) and the rows'
    ** index 1 print bare: nothing sorts between them */
    if (rc == 0 && index_id > SQLV__ROW_INDEX_ID) rc = base_buf_printf(out, "/@%u", index_id);
    if (rc == 0) rc = format_values(key + used, len - used, "/", "/", out);
    return rc;
}

int sqlv__ranges_key_pretty(const uint8_t *key, size_t len, uint32_t table_id, const char *name,
                            base_buf *out) {
    /* a one-entry list on the stack: never freed, so the cast is safe */
    table_name one = {table_id, (char *)name};
    name_list nl = {&one, name != NULL ? 1 : 0};
    return key_pretty(&nl, key, len, false, out);
}

/* ---- small helpers --------------------------------------------------------------------- */

static int emit_tag(sqlv__run *r, const char *tag) {
    if (r->sink_rc == 0 && r->sink->command_complete)
        r->sink_rc = r->sink->command_complete(r->sink->ctx, tag);
    return STMT_OK;
}

/* Make s->cat current for name lookups: the open transaction's catalog, or
** that of a fresh read-only transaction (*own), rolled back by
** catalog_end before anything blocks. STMT_OK or STMT_FAILED (sent). */
static int catalog_begin(sqlv__run *r, bool *own) {
    *own = false;
    if (r->s->kv != NULL) return STMT_OK;
    txn_error err = {{0}, {0}};
    int rc = sqlv__session_begin(r->s, true, &err);
    if (rc != TXN_OK) return sqlv__fail_txn(r, rc, &err);
    *own = true;
    return STMT_OK;
}

static void catalog_end(sqlv_session *s, bool own) {
    if (own && s->kv != NULL) {
        txn_rollback(s->kv);
        s->kv = NULL;
    }
}

/* A decimal u64 token (no sign, no leading '+'). 0 or -1. */
static int tok_u64(const sqlv__token *t, uint64_t *out) {
    if (t->kind != SQLV__TOK_OTHER || t->len == 0 || t->len > 20) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < t->len; i++) {
        char c = t->start[i];
        if (c < '0' || c > '9') return -1;
        uint64_t d = (uint64_t)(c - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
    int c = al > 0 && bl > 0 ? memcmp(a, b, BASE_MIN(al, bl)) : 0; /* a key may be NULL */
    if (c != 0) return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

static int info_cmp(const void *x, const void *y) {
    const sqlv_range_info *a = x, *b = y;
    int c = key_cmp(a->start_key, a->start_len, b->start_key, b->start_len);
    if (c != 0) return c;
    return a->range_id < b->range_id ? -1 : a->range_id > b->range_id ? 1 : 0;
}

static bool info_holds(const sqlv_range_info *d, const uint8_t *key, size_t len) {
    if (d->start_len > 0 && key_cmp(key, len, d->start_key, d->start_len) < 0) return false;
    return d->end_len == 0 || key_cmp(key, len, d->end_key, d->end_len) < 0;
}

static int u64_cmp(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b ? 1 : 0;
}

/* ---- SHOW RANGES ------------------------------------------------------------------------ */

/* One row of SHOW RANGES into the sink. 0 or -1 (memory). */
static int send_range_row(sqlv__run *r, const name_list *nl, const sqlv_range_info *d) {
    base_buf b = {0}; /* owner: this function; the cells point into it */
    size_t off[RANGES_NCOLS], len[RANGES_NCOLS];
    bool null[RANGES_NCOLS] = {false};
    int rc = 0;
#define CELL_BEGIN(i) (off[i] = b.len)
#define CELL_END(i) (len[i] = b.len - off[i])
    CELL_BEGIN(0);
    rc |= base_buf_printf(&b, "%" PRIu64, d->range_id);
    CELL_END(0);
    CELL_BEGIN(1);
    rc |= key_pretty(nl, d->start_key, d->start_len, false, &b);
    CELL_END(1);
    CELL_BEGIN(2);
    rc |= key_pretty(nl, d->end_key, d->end_len, true, &b);
    CELL_END(2);
    CELL_BEGIN(3);
    uint32_t table_id = 0, index_id;
    size_t used;
    if (d->start_len > 0 &&
        enc_key_decode_prefix(d->start_key, d->start_len, &table_id, &index_id, &used) == ENC_OK &&
        table_id >= SQLV__FIRST_USER_TABLE_ID && name_of(nl, table_id) != NULL)
        rc |= base_buf_printf(&b, "%s", name_of(nl, table_id));
    else
        null[3] = true;
    CELL_END(3);
    CELL_BEGIN(4);
    uint64_t reps[SQLV_RANGE_REPLICAS_MAX];
    size_t nr = BASE_MIN(d->n_replicas, (size_t)SQLV_RANGE_REPLICAS_MAX);
    memcpy(reps, d->replicas, nr * sizeof *reps);
    qsort(reps, nr, sizeof *reps, u64_cmp);
    rc |= base_buf_append_byte(&b, '{');
    for (size_t i = 0; i < nr; i++) rc |= base_buf_printf(&b, "%s%" PRIu64, i ? "," : "", reps[i]);
    rc |= base_buf_append_byte(&b, '}');
    CELL_END(4);
    CELL_BEGIN(5);
    if (d->lease_holder != 0) rc |= base_buf_printf(&b, "%" PRIu64, d->lease_holder);
    else null[5] = true;
    CELL_END(5);
    CELL_BEGIN(6);
    rc |= base_buf_printf(&b, "%" PRIu64, d->generation);
    CELL_END(6);
    CELL_BEGIN(7);
    if (d->size_bytes >= 0) rc |= base_buf_printf(&b, "%" PRId64, d->size_bytes);
    else null[7] = true;
    CELL_END(7);
    CELL_BEGIN(8);
    if (d->load_known) rc |= base_buf_printf(&b, "%.1f", d->reads_per_second);
    else null[8] = true;
    CELL_END(8);
    CELL_BEGIN(9);
    if (d->load_known) rc |= base_buf_printf(&b, "%.1f", d->writes_per_second);
    else null[9] = true;
    CELL_END(9);
#undef CELL_BEGIN
#undef CELL_END
    if (rc != 0) {
        base_buf_free(&b);
        return -1;
    }
    sqlv_cell cells[RANGES_NCOLS];
    for (int i = 0; i < RANGES_NCOLS; i++) {
        cells[i].data = null[i] ? NULL : b.data != NULL ? (const char *)b.data + off[i] : "";
        cells[i].len = null[i] ? 0 : len[i];
    }
    if (r->sink_rc == 0 && r->sink->data_row)
        r->sink_rc = r->sink->data_row(r->sink->ctx, RANGES_NCOLS, cells);
    base_buf_free(&b);
    return 0;
}

static void send_range_columns(sqlv__run *r) {
    static const sqlv_column cols[RANGES_NCOLS] = {
        {"range_id", SQLV_OID_INT8, 8, 0},       {"start_key", SQLV_OID_TEXT, -1, 0},
        {"end_key", SQLV_OID_TEXT, -1, 0},       {"table_name", SQLV_OID_TEXT, -1, 0},
        {"replicas", SQLV_OID_TEXT, -1, 0},      {"lease_holder", SQLV_OID_INT8, 8, 0},
        {"generation", SQLV_OID_INT8, 8, 0},     {"size_bytes", SQLV_OID_INT8, 8, 0},
        {"reads_per_second", SQLV_OID_FLOAT8, 8, 0}, {"writes_per_second", SQLV_OID_FLOAT8, 8, 0},
    };
    if (r->sink_rc == 0 && r->sink->row_description)
        r->sink_rc = r->sink->row_description(r->sink->ctx, RANGES_NCOLS, cols);
}

/* The key of the row whose primary key starts with the values of `values`
** ("VALUES (42)"), as ALTER TABLE ... SPLIT AT builds it. 0, 1 (refused:
** state and msg set) or -1 (memory). */
static int row_key(sqlv_session *s, const sqlv__table *tbl, const char *values, size_t values_len,
                   base_buf *key, char state[6], char *msg, size_t size) {
    sqlite3_stmt *st = NULL;
    base_buf scratch = {0}; /* owner: this function */
    int result = -1;
    if (sqlite3_prepare_v2(s->db, values, (int)values_len, &st, NULL) != SQLITE_OK || st == NULL) {
        sqlv__map_error(s, sqlite3_errcode(s->db), state, msg, size);
        result = 1;
        goto done;
    }
    int npk = tbl->npk > 0 ? tbl->npk : 1;
    int ncols = sqlite3_column_count(st);
    if (ncols > npk) {
        base_strlcpy(state, "42601", 6);
        snprintf(msg, size, "too many values: the primary key of \"%.200s\" has %d column%s",
                 tbl->name, npk, npk == 1 ? "" : "s");
        result = 1;
        goto done;
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlv__map_error(s, rc, state, msg, size);
        if (rc == SQLITE_DONE) {
            base_strlcpy(state, "42601", 6);
            snprintf(msg, size, "FOR ROW needs one row of values");
        }
        result = 1;
        goto done;
    }
    base_buf_reset(key);
    if (sqlv__table_prefix(key, tbl->id) != 0) goto done;
    for (int c = 0; c < ncols; c++) {
        const sqlv__column *col = tbl->npk > 0 ? &tbl->cols[tbl->pk[c]] : NULL;
        sqlv__cell cell;
        enc_value ev;
        base_buf_reset(&scratch);
        int arc = sqlv__assign(sqlite3_column_value(st, c), col ? col->cls : SQLV__CLASS_INT8,
                               col && col->decl_type[0] ? col->decl_type : "bigint", &scratch,
                               &cell, state, msg, size);
        if (arc < 0) goto done;
        if (arc > 0) {
            result = 1;
            goto done;
        }
        sqlv__cell_to_enc(&cell, &ev);
        if (enc_key_append(key, &ev) != ENC_OK) goto done;
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        base_strlcpy(state, "42601", 6);
        snprintf(msg, size, "FOR ROW takes one row of values");
        result = 1;
        goto done;
    }
    result = 0;
done:
    if (st != NULL) sqlite3_finalize(st);
    base_buf_free(&scratch);
    return result;
}

/* SHOW RANGES [FROM TABLE t] / SHOW RANGE FROM TABLE t FOR ROW (...):
** table NULL for every range; values (the "(...)" text) for one row. */
static int show_ranges(sqlv__run *r, const char *table, const char *values, const char *vend) {
    sqlv_session *s = r->s;
    const sqlv_admin *admin = &s->engine->admin;
    name_list nl = {NULL, 0};
    base_buf start = {0}, end = {0}, key = {0}, text = {0}; /* owner: this function */
    sqlv_range_info *infos = NULL;
    size_t n = 0;
    char state[6] = "", msg[512] = "";
    bool own = false;
    int result = STMT_FAILED;
    if (admin->ranges == NULL)
        return sqlv__fail(r, "0A000", "SHOW RANGES needs a cluster: this node's key space is one "
                                      "local store");
    if (catalog_begin(r, &own) != STMT_OK) return STMT_FAILED;
    if (names_load(s, &nl) != 0) goto nomem;
    if (table != NULL) {
        const sqlv__table *tbl = sqlv__pgcat_table_by_name(s, table);
        if (tbl == NULL) {
            catalog_end(s, own);
            snprintf(msg, sizeof msg, "relation \"%.200s\" does not exist", table);
            result = sqlv__fail(r, "42P01", msg);
            goto done;
        }
        if (values != NULL) {
            if (base_buf_printf(&text, "VALUES %.*s", (int)(vend - values), values) != 0)
                goto nomem;
            int krc = row_key(s, tbl, (const char *)text.data, text.len, &key, state, msg,
                              sizeof msg);
            if (krc < 0) goto nomem;
            if (krc > 0) {
                catalog_end(s, own);
                result = sqlv__fail(r, state, msg);
                goto done;
            }
            /* the ranges overlapping [key, key + 0x00): the one holding it */
            if (base_buf_append(&start, key.data, key.len) != 0 ||
                enc_key_next(key.data, key.len, &end) != ENC_OK)
                goto nomem;
        } else if (sqlv__table_span(tbl->id, &start, &end) != 0) {
            goto nomem;
        }
    }
    catalog_end(s, own); /* nothing open while the node asks around */
    own = false;
    if (admin->ranges(admin->ctx, start.data, start.len, end.data, end.len, &infos, &n, state,
                      msg, sizeof msg) != 0) {
        result = sqlv__fail(r, state[0] ? state : "XX000", msg[0] ? msg : "SHOW RANGES failed");
        infos = NULL; /* nothing handed over on failure */
        n = 0;
        goto done;
    }
    if (n > SQLV__RANGES_ROWS_MAX) {
        snprintf(msg, sizeof msg, "too many ranges to show (%zu; at most %d)", n,
                 SQLV__RANGES_ROWS_MAX);
        result = sqlv__fail(r, "54000", msg);
        goto done;
    }
    if (n > 0) qsort(infos, n, sizeof *infos, info_cmp);
    send_range_columns(r);
    for (size_t i = 0; i < n; i++) {
        if (values != NULL && !info_holds(&infos[i], key.data, key.len)) continue;
        if (send_range_row(r, &nl, &infos[i]) != 0) goto nomem;
        if (values != NULL) break; /* one range holds a key */
    }
    result = emit_tag(r, values != NULL ? "SHOW RANGE" : "SHOW RANGES");
    goto done;
nomem:
    catalog_end(s, own);
    result = sqlv__fail(r, "53200", "out of memory");
done:
    sqlv_range_infos_free(infos, n);
    names_free(&nl);
    base_buf_free(&start);
    base_buf_free(&end);
    base_buf_free(&key);
    base_buf_free(&text);
    return result;
}

int sqlv__ranges_show(sqlv__run *r, const char *p, const char *end) {
    char name[SQLV__NAME_BYTES_MAX * 4 + 1];
    sqlv__token t = sqlv__lex_next(&p, end);
    bool plural = sqlv__tok_is(&t, "RANGES");
    if (!plural && !sqlv__tok_is(&t, "RANGE")) return -1;
    /* Admins only, as CockroachDB: range bounds are row keys (split points
    ** are primary key values of tables the user may not read). */
    if (sqlv__priv_require_admin(r, plural ? "show ranges" : "show a row's range") != STMT_OK)
        return STMT_FAILED;
    t = sqlv__lex_next(&p, end);
    if (plural && t.kind == SQLV__TOK_END) return show_ranges(r, NULL, NULL, NULL);
    if (!sqlv__tok_is(&t, "FROM")) {
        if (!plural && t.kind == SQLV__TOK_END)
            return sqlv__fail(r, "42601", "SHOW RANGE needs FROM TABLE t FOR ROW (...)");
        return sqlv__fail(r, "42601", plural ? "syntax error in SHOW RANGES [FROM TABLE t]"
                                             : "syntax error in SHOW RANGE FROM TABLE t FOR "
                                               "ROW (...)");
    }
    t = sqlv__lex_next(&p, end);
    if (plural && sqlv__tok_is(&t, "DATABASE")) { /* the one database: every range */
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_ident(&t, name, sizeof name) != 0 ||
            sqlv__lex_next(&p, end).kind != SQLV__TOK_END)
            return sqlv__fail(r, "42601", "syntax error in SHOW RANGES FROM DATABASE d");
        return show_ranges(r, NULL, NULL, NULL);
    }
    if (!sqlv__tok_is(&t, "TABLE"))
        return sqlv__fail(r, "42601", "syntax error: expected SHOW RANGES FROM TABLE t");
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_ident(&t, name, sizeof name) != 0)
        return sqlv__fail(r, "42601", "syntax error: expected a table name after FROM TABLE");
    /* public.t */
    const char *save = p;
    sqlv__token dot = sqlv__lex_next(&p, end);
    if (sqlv__tok_punct(&dot, '.') && strcmp(name, "public") == 0) {
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_ident(&t, name, sizeof name) != 0)
            return sqlv__fail(r, "42601", "syntax error: expected a table name after FROM TABLE");
    } else {
        p = save;
    }
    t = sqlv__lex_next(&p, end);
    if (plural) {
        if (t.kind != SQLV__TOK_END)
            return sqlv__fail(r, "42601", "syntax error in SHOW RANGES FROM TABLE t");
        return show_ranges(r, name, NULL, NULL);
    }
    sqlv__token t2 = sqlv__lex_next(&p, end);
    if (!sqlv__tok_is(&t, "FOR") || !sqlv__tok_is(&t2, "ROW"))
        return sqlv__fail(r, "42601",
                          "syntax error: expected SHOW RANGE FROM TABLE t FOR ROW (...)");
    const char *values = sqlv__lex_skip_space(p, end);
    t = sqlv__lex_next(&p, end);
    if (!sqlv__tok_punct(&t, '('))
        return sqlv__fail(r, "42601", "syntax error: expected FOR ROW (value, ...)");
    return show_ranges(r, name, values, end);
}

/* ---- ALTER RANGE ------------------------------------------------------------------------- */

int sqlv__ranges_alter(sqlv__run *r, const char *p, const char *end) {
    sqlv_session *s = r->s;
    const sqlv_admin *admin = &s->engine->admin;
    static const char usage[] = "syntax error: expected ALTER RANGE id RELOCATE LEASE TO node "
                                "or ALTER RANGE id RELOCATE [VOTERS] FROM node TO node";
    uint64_t range_id, a = 0, b = 0;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (tok_u64(&t, &range_id) != 0) return sqlv__fail(r, "42601", usage);
    t = sqlv__lex_next(&p, end);
    if (!sqlv__tok_is(&t, "RELOCATE")) {
        if (sqlv__tok_is(&t, "SPLIT") || sqlv__tok_is(&t, "UNSPLIT") ||
            sqlv__tok_is(&t, "CONFIGURE"))
            return sqlv__fail(r, "0A000", "ALTER RANGE supports RELOCATE only");
        return sqlv__fail(r, "42601", usage);
    }
    t = sqlv__lex_next(&p, end);
    bool lease = sqlv__tok_is(&t, "LEASE");
    if (lease) {
        sqlv__token to = sqlv__lex_next(&p, end);
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&to, "TO") || tok_u64(&t, &a) != 0) return sqlv__fail(r, "42601", usage);
    } else {
        if (sqlv__tok_is(&t, "VOTERS") || sqlv__tok_is(&t, "VOTER")) t = sqlv__lex_next(&p, end);
        else if (sqlv__tok_is(&t, "NONVOTERS") || sqlv__tok_is(&t, "NON_VOTERS"))
            return sqlv__fail(r, "0A000", "non-voting replicas are not supported yet");
        if (!sqlv__tok_is(&t, "FROM")) return sqlv__fail(r, "42601", usage);
        t = sqlv__lex_next(&p, end);
        sqlv__token to = sqlv__lex_next(&p, end);
        sqlv__token t2 = sqlv__lex_next(&p, end);
        if (tok_u64(&t, &a) != 0 || !sqlv__tok_is(&to, "TO") || tok_u64(&t2, &b) != 0)
            return sqlv__fail(r, "42601", usage);
    }
    if (sqlv__lex_next(&p, end).kind != SQLV__TOK_END) return sqlv__fail(r, "42601", usage);
    /* an implicit block (a multi-statement string, the extended protocol's
    ** unnamed transaction) is fine: nothing of a relocation is rolled back */
    if (s->status == 'E' || (s->status == 'T' && !s->implicit_block))
        return sqlv__fail(r, "25001", "ALTER RANGE cannot run inside a transaction block");
    if (admin->relocate_lease == NULL || admin->relocate_voter == NULL)
        return sqlv__fail(r, "0A000", "ALTER RANGE needs a cluster: this node's key space is "
                                      "one local store");
    if (range_id == 0 || a == 0 || (!lease && b == 0))
        return sqlv__fail(r, "22023", "range and node ids start at 1");
    if (!lease && a == b)
        return sqlv__fail(r, "22023", "RELOCATE FROM and TO name the same node");
    char state[6] = "", msg[512] = "";
    int rc = lease ? admin->relocate_lease(admin->ctx, range_id, a, state, msg, sizeof msg)
                   : admin->relocate_voter(admin->ctx, range_id, a, b, state, msg, sizeof msg);
    if (rc != 0)
        return sqlv__fail(r, state[0] ? state : "XX000", msg[0] ? msg : "ALTER RANGE failed");
    return emit_tag(r, "ALTER RANGE");
}

/* ---- the range event log ---------------------------------------------------------------- */

void sqlv__ranges_log_split(sqlv_engine *e, uint64_t left_range_id, uint64_t right_range_id,
                            const char *reason) {
    txn_range_event ev;
    txn_error err = {{0}, {0}};
    memset(&ev, 0, sizeof ev);
    ev.kind = TXN_RANGE_EVENT_SPLIT;
    ev.range_id = left_range_id;
    ev.other_range_id = right_range_id;
    ev.recorded_by = e->admin.node_id;
    base_strlcpy(ev.reason, reason, sizeof ev.reason);
    int rc = txn_db_log_range_events(e->db, &ev, 1, &err);
    if (rc != TXN_OK)
        BASE_WARN(MOD, "range event log: split of r%" PRIu64 " not recorded (%s)", left_range_id,
                  err.message);
}

/* ---- manual split points ----------------------------------------------------------------- */

int sqlv_split_point_key(const uint8_t *key, size_t len, base_buf *out) {
    if (base_buf_append(out, SQLV_SPLIT_POINT_PREFIX, SQLV_SPLIT_POINT_PREFIX_LEN) != 0) return -1;
    return len > 0 ? base_buf_append(out, key, len) : 0;
}

int sqlv_split_point_get(txn *t, const uint8_t *key, size_t len, bool *is, txn_error *err) {
    base_buf k = {0}, v = {0}; /* owner: this function */
    *is = false;
    int rc = sqlv_split_point_key(key, len, &k) == 0 ? TXN_OK : TXN_ERR_NOMEM;
    if (rc == TXN_OK) rc = txn_get(t, k.data, k.len, &v, err);
    if (rc == TXN_OK) *is = true;
    if (rc == TXN_NOT_FOUND) rc = TXN_OK;
    if (rc != TXN_OK) txn_error_set(err, rc);
    base_buf_free(&k);
    base_buf_free(&v);
    return rc;
}

/* One attempt of a point change through t: put (remove false), or delete
** key's point (*found: it was one) or every point in [key, span_end) (the
** keys removed appended to removed as u32 length | key, *found their
** count). */
typedef struct point_change {
    const uint8_t *key, *span_end;
    size_t len, span_end_len;
    bool remove, span;
    base_buf *removed;
    size_t found;
} point_change;

static int point_attempt(txn *t, point_change *c, txn_error *err) {
    base_buf k = {0}, e = {0}, v = {0}; /* owner: this function */
    txn_iter *it = NULL;
    int rc = sqlv_split_point_key(c->key, c->len, &k) == 0 ? TXN_OK : TXN_ERR_NOMEM;
    c->found = 0;
    if (rc != TXN_OK) goto done;
    if (!c->remove) {
        static const uint8_t version = SQLV__SPLIT_POINT_VERSION;
        rc = txn_put(t, k.data, k.len, &version, 1, err);
        goto done;
    }
    if (!c->span) {
        rc = txn_get(t, k.data, k.len, &v, err);
        if (rc == TXN_NOT_FOUND) {
            rc = TXN_OK;
            goto done;
        }
        if (rc == TXN_OK) rc = txn_delete(t, k.data, k.len, err);
        if (rc == TXN_OK) c->found = 1;
        goto done;
    }
    if (sqlv_split_point_key(c->span_end, c->span_end_len, &e) != 0) {
        rc = TXN_ERR_NOMEM;
        goto done;
    }
    base_buf_reset(c->removed);
    rc = txn_scan(t, k.data, k.len, e.data, e.len, false, &it, err);
    while (rc == TXN_OK && c->found < SQLV__SPLIT_POINTS_SCAN_MAX) {
        const uint8_t *pk, *pv;
        size_t pkl, pvl;
        int n = txn_iter_next(it, &pk, &pkl, &pv, &pvl, err);
        if (n <= 0) {
            rc = n;
            break;
        }
        if (pkl < SQLV_SPLIT_POINT_PREFIX_LEN) continue; /* cannot be: the span's keys */
        uint8_t be[4] = {(uint8_t)((pkl - SQLV_SPLIT_POINT_PREFIX_LEN) >> 24),
                         (uint8_t)((pkl - SQLV_SPLIT_POINT_PREFIX_LEN) >> 16),
                         (uint8_t)((pkl - SQLV_SPLIT_POINT_PREFIX_LEN) >> 8),
                         (uint8_t)(pkl - SQLV_SPLIT_POINT_PREFIX_LEN)};
        if (base_buf_append(c->removed, be, 4) != 0 ||
            base_buf_append(c->removed, pk + SQLV_SPLIT_POINT_PREFIX_LEN,
                            pkl - SQLV_SPLIT_POINT_PREFIX_LEN) != 0) {
            rc = TXN_ERR_NOMEM;
            break;
        }
        c->found++;
    }
    if (it != NULL) txn_iter_close(it);
    /* the keys found, one by one: a point written meanwhile stays (the
    ** scan's read span makes such a race a 40001 anyway) */
    for (size_t off = 0; rc == TXN_OK && off + 4 <= c->removed->len;) {
        const uint8_t *q = c->removed->data + off;
        size_t n = (size_t)q[0] << 24 | (size_t)q[1] << 16 | (size_t)q[2] << 8 | q[3];
        base_buf_reset(&k);
        if (sqlv_split_point_key(q + 4, n, &k) != 0) rc = TXN_ERR_NOMEM;
        else rc = txn_delete(t, k.data, k.len, err);
        off += 4 + n;
    }
done:
    base_buf_free(&k);
    base_buf_free(&e);
    base_buf_free(&v);
    return rc;
}

/* c in transactions of its own until one commits (40001: again, at most
** SQLV__SPLIT_POINT_ATTEMPTS_MAX times). TXN_OK or the error, err set. */
static int point_run(sqlv_engine *e, point_change *c, txn_error *err) {
    int rc = TXN_OK;
    for (int attempt = 0; attempt < SQLV__SPLIT_POINT_ATTEMPTS_MAX; attempt++) {
        txn *kv = NULL;
        memset(err, 0, sizeof *err);
        if ((rc = txn_begin(e->db, NULL, &kv)) != TXN_OK) break;
        rc = point_attempt(kv, c, err);
        if (rc != TXN_OK) {
            txn_rollback(kv);
            if (rc == TXN_ERR_RETRY) continue; /* a read conflicted: again */
            break;
        }
        if ((rc = txn_commit(kv, NULL, err)) != TXN_ERR_RETRY) break;
    }
    if (rc != TXN_OK) txn_error_set(err, rc);
    return rc;
}

int sqlv__split_point_put(sqlv_engine *e, const uint8_t *key, size_t len, txn_error *err) {
    point_change c = {.key = key, .len = len};
    return point_run(e, &c, err);
}

int sqlv__split_point_remove(sqlv_engine *e, const uint8_t *key, size_t len, bool *removed,
                             txn_error *err) {
    point_change c = {.key = key, .len = len, .remove = true};
    int rc = point_run(e, &c, err);
    *removed = rc == TXN_OK && c.found > 0;
    return rc;
}

int sqlv__split_points_remove_span(sqlv_engine *e, const uint8_t *start, size_t start_len,
                                   const uint8_t *end, size_t end_len, base_buf *removed,
                                   size_t *n, txn_error *err) {
    point_change c = {.key = start, .len = start_len, .span_end = end, .span_end_len = end_len,
                      .remove = true, .span = true, .removed = removed};
    int rc = point_run(e, &c, err);
    *n = rc == TXN_OK ? c.found : 0;
    if (rc != TXN_OK) base_buf_reset(removed);
    return rc;
}

static const char *const internal_relations[][2] = {
    {"range_events", "meridian_internal_range_events"},
    {"node_metrics", "meridian_internal_node_metrics"},
};

const char *sqlv__ranges_internal_relation(const char *x) {
    for (size_t i = 0; i < BASE_ARRAY_LEN(internal_relations); i++)
        if (strcasecmp(x, internal_relations[i][0]) == 0) return internal_relations[i][1];
    return NULL;
}

/* meridian_internal_range_events: a read-only eponymous virtual table that
** streams the event keys through the session's KV transaction (oldest
** first), decoding each; a malformed value is skipped (logged). */
enum { EV_TS, EV_RANGE, EV_EVENT, EV_REASON, EV_OTHER, EV_NODE, EV_REPLICAS, EV_BY, EV_NCOLS };
#define EV_COLUMNS                                                                                \
    "ts text, range_id bigint, event text, reason text, other_range_id bigint, node_id bigint, "   \
    "replicas text, recorded_by bigint"

typedef struct ev_vtab {
    sqlite3_vtab base;
    sqlv_session *s;
} ev_vtab;

typedef struct ev_cursor {
    sqlite3_vtab_cursor base;
    txn_iter *it; /* owner: the cursor */
    bool eof;
    int64_t row;
    txn_range_event ev;
} ev_cursor;

static int ev_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                      sqlite3_vtab **out, char **err) {
    (void)argc;
    (void)argv;
    (void)err;
    int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(" EV_COLUMNS ")");
    if (rc != SQLITE_OK) return rc;
    ev_vtab *v = sqlite3_malloc(sizeof *v);
    if (v == NULL) return SQLITE_NOMEM;
    memset(v, 0, sizeof *v);
    v->s = aux;
    sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
    *out = &v->base;
    return SQLITE_OK;
}

static int ev_disconnect(sqlite3_vtab *v) {
    sqlite3_free(v);
    return SQLITE_OK;
}

static int ev_best_index(sqlite3_vtab *v, sqlite3_index_info *info) {
    (void)v;
    info->estimatedCost = 10000;
    info->estimatedRows = 1000;
    return SQLITE_OK;
}

static int ev_open(sqlite3_vtab *v, sqlite3_vtab_cursor **out) {
    (void)v;
    ev_cursor *c = sqlite3_malloc(sizeof *c);
    if (c == NULL) return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    c->eof = true;
    *out = &c->base;
    return SQLITE_OK;
}

static int ev_close(sqlite3_vtab_cursor *cur) {
    ev_cursor *c = (ev_cursor *)cur;
    if (c->it != NULL) txn_iter_close(c->it);
    sqlite3_free(c);
    return SQLITE_OK;
}

/* The next decodable event, or eof. */
static int ev_advance(ev_cursor *c, sqlv_session *s) {
    for (;;) {
        const uint8_t *k, *v;
        size_t kl, vl;
        txn_error err = {{0}, {0}};
        int n = txn_iter_next(c->it, &k, &kl, &v, &vl, &err);
        if (n < 0) {
            txn_error_set(&err, n);
            sqlv__session_error(s, err.sqlstate, "%s", err.message);
            return SQLITE_ERROR;
        }
        if (n == 0) {
            c->eof = true;
            return SQLITE_OK;
        }
        if (txn_range_event_decode(v, vl, &c->ev) == TXN_OK) {
            c->row++;
            return SQLITE_OK;
        }
        BASE_WARN(MOD, "range event log: a malformed event (%zu bytes) skipped", vl);
    }
}

static int ev_filter(sqlite3_vtab_cursor *cur, int idx, const char *idx_str, int argc,
                     sqlite3_value **argv) {
    ev_cursor *c = (ev_cursor *)cur;
    sqlv_session *s = ((ev_vtab *)cur->pVtab)->s;
    (void)idx;
    (void)idx_str;
    (void)argc;
    (void)argv;
    if (c->it != NULL) txn_iter_close(c->it);
    c->it = NULL;
    c->eof = true;
    c->row = 0;
    txn *kv = sqlv__session_kv(s);
    if (kv == NULL) return SQLITE_ERROR;
    base_buf a = {0}, b = {0}; /* owner: this function */
    txn_error err = {{0}, {0}};
    /* Admins only, as SHOW RANGES: split reasons name row keys. */
    bool may = false;
    int rc = sqlv__role_is_admin(kv, s->user, &may, &err);
    if (rc == TXN_OK && !may) {
        sqlv__session_error(s, "42501", "permission denied for table range_events");
        return SQLITE_ERROR;
    }
    if (rc == TXN_OK) rc = txn_range_event_span(&a, &b);
    if (rc == TXN_OK) rc = txn_scan(kv, a.data, a.len, b.data, b.len, false, &c->it, &err);
    base_buf_free(&a);
    base_buf_free(&b);
    if (rc != TXN_OK) {
        c->it = NULL;
        txn_error_set(&err, rc);
        sqlv__session_error(s, err.sqlstate, "%s", err.message);
        return rc == TXN_ERR_NOMEM ? SQLITE_NOMEM : SQLITE_ERROR;
    }
    c->eof = false;
    return ev_advance(c, s);
}

static int ev_next(sqlite3_vtab_cursor *cur) {
    return ev_advance((ev_cursor *)cur, ((ev_vtab *)cur->pVtab)->s);
}

static int ev_eof(sqlite3_vtab_cursor *cur) { return ((ev_cursor *)cur)->eof; }

/* "2026-12-06 05:21:33.123456+00": sorts as it reads. */
static void format_ts(int64_t wall_ns, char *out, size_t size) {
    time_t secs = (time_t)(wall_ns / 1000000000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL) {
        snprintf(out, size, "%" PRId64, wall_ns);
        return;
    }
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out, size, "%s.%06ld+00", day, (long)(wall_ns % 1000000000 / 1000));
}

static void result_id(sqlite3_context *ctx, uint64_t id) {
    if (id == 0) sqlite3_result_null(ctx);
    else sqlite3_result_int64(ctx, (sqlite3_int64)id);
}

static int ev_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
    const ev_cursor *c = (const ev_cursor *)cur;
    const txn_range_event *e = &c->ev;
    char buf[TXN_RANGE_EVENT_REPLICAS_MAX * 21 + 3];
    switch (col) {
    case EV_TS:
        format_ts(e->wall_ns, buf, sizeof buf);
        sqlite3_result_text(ctx, buf, -1, SQLITE_TRANSIENT);
        break;
    case EV_RANGE: sqlite3_result_int64(ctx, (sqlite3_int64)e->range_id); break;
    case EV_EVENT:
        sqlite3_result_text(ctx, txn_range_event_kind_name(e->kind), -1, SQLITE_STATIC);
        break;
    case EV_REASON: sqlite3_result_text(ctx, e->reason, -1, SQLITE_TRANSIENT); break;
    case EV_OTHER: result_id(ctx, e->other_range_id); break;
    case EV_NODE: result_id(ctx, e->node_id); break;
    case EV_REPLICAS: {
        if (e->n_replicas == 0) {
            sqlite3_result_null(ctx);
            break;
        }
        size_t o = 0;
        buf[o++] = '{';
        for (size_t i = 0; i < e->n_replicas; i++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%" PRIu64, i ? "," : "",
                                  e->replicas[i]);
        snprintf(buf + o, sizeof buf - o, "}");
        sqlite3_result_text(ctx, buf, -1, SQLITE_TRANSIENT);
        break;
    }
    case EV_BY: result_id(ctx, e->recorded_by); break;
    default: sqlite3_result_null(ctx); break;
    }
    return SQLITE_OK;
}

static int ev_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid) {
    *rowid = ((const ev_cursor *)cur)->row;
    return SQLITE_OK;
}

static const sqlite3_module ev_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only: read-only */
    .xConnect = ev_connect,
    .xBestIndex = ev_best_index,
    .xDisconnect = ev_disconnect,
    .xDestroy = ev_disconnect,
    .xOpen = ev_open,
    .xClose = ev_close,
    .xFilter = ev_filter,
    .xNext = ev_next,
    .xEof = ev_eof,
    .xColumn = ev_column,
    .xRowid = ev_rowid,
};

/* meridian_internal_node_metrics: a read-only eponymous virtual table of
** this (the gateway) node's counters and its clock bound, read at xFilter
** (one consistent-enough snapshot per scan: each counter is an atomic, not
** the set). Node-level numbers, no table data: every user may read it. */
enum { NM_NAME, NM_VALUE, NM_DESCRIPTION, NM_NCOLS };
#define NM_ROWS_MAX 48

typedef struct nm_row {
    const char *name;        /* static */
    int64_t value;
    const char *description; /* static */
} nm_row;

typedef struct nm_cursor {
    sqlite3_vtab_cursor base;
    nm_row rows[NM_ROWS_MAX];
    size_t n, at;
} nm_cursor;

static int nm_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                      sqlite3_vtab **out, char **err) {
    (void)argc;
    (void)argv;
    (void)err;
    int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(name text, value bigint, description text)");
    if (rc != SQLITE_OK) return rc;
    ev_vtab *v = sqlite3_malloc(sizeof *v);
    if (v == NULL) return SQLITE_NOMEM;
    memset(v, 0, sizeof *v);
    v->s = aux;
    sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
    *out = &v->base;
    return SQLITE_OK;
}

static int nm_best_index(sqlite3_vtab *v, sqlite3_index_info *info) {
    (void)v;
    info->estimatedCost = 100;
    info->estimatedRows = NM_ROWS_MAX;
    return SQLITE_OK;
}

static int nm_open(sqlite3_vtab *v, sqlite3_vtab_cursor **out) {
    (void)v;
    nm_cursor *c = sqlite3_malloc(sizeof *c);
    if (c == NULL) return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    *out = &c->base;
    return SQLITE_OK;
}

static int nm_close(sqlite3_vtab_cursor *cur) {
    sqlite3_free(cur);
    return SQLITE_OK;
}

static void nm_add(nm_cursor *c, const char *name, uint64_t value, const char *description) {
    assert(c->n < NM_ROWS_MAX);
    c->rows[c->n++] = (nm_row){name, value > INT64_MAX ? INT64_MAX : (int64_t)value, description};
}

static int nm_filter(sqlite3_vtab_cursor *cur, int idx, const char *idx_str, int argc,
                     sqlite3_value **argv) {
    nm_cursor *c = (nm_cursor *)cur;
    txn_db *db = ((ev_vtab *)cur->pVtab)->s->engine->db;
    (void)idx;
    (void)idx_str;
    (void)argc;
    (void)argv;
    c->n = c->at = 0;
    hlc_epsilon_report r;
    txn_db_clock_explain(db, &r);
    txn_db_stats st;
    memset(&st, 0, sizeof st);
    txn_db_get_stats(db, &st);
    /* the clock (docs/clocks.md) */
    nm_add(c, "clock.epsilon_ns", r.epsilon_ns < 0 ? 0 : (uint64_t)r.epsilon_ns,
           "the clock-offset bound now (max_offset while unbounded)");
    nm_add(c, "clock.epsilon_bounded", r.status == HLC_EPSILON_OK,
           "1: the bound is known and within max_offset; 0: unbounded (a cluster node refuses "
           "transactions, 57P03)");
    nm_add(c, "clock.epsilon_source", (uint64_t)r.source,
           "what bounds it: 0 none, 1 alone (only node), 2 peers, 3 kernel NTP");
    nm_add(c, "clock.max_offset_ns", r.max_offset_ns < 0 ? 0 : (uint64_t)r.max_offset_ns,
           "the configured --max-offset");
    nm_add(c, "clock.peers_tracked", r.peers_tracked < 0 ? 0 : (uint64_t)r.peers_tracked,
           "peers whose offset is tracked");
    nm_add(c, "clock.peers_good", r.peers_good < 0 ? 0 : (uint64_t)r.peers_good,
           "peers measured lately within max_offset");
    nm_add(c, "txn.clock_refusals", st.clock_refusals,
           "transactions refused: epsilon unbounded");
    /* commits and their wait (docs/clocks.md section 5) */
    nm_add(c, "txn.commits", st.commits, "read-write commits applied");
    nm_add(c, "txn.commits_1pc", st.commits > st.distributed_commits
                                     ? st.commits - st.distributed_commits
                                     : 0,
           "of which in one phase (one range, or an old single node's store)");
    nm_add(c, "txn.commits_2pc", st.distributed_commits,
           "of which two-phase: over several ranges");
    nm_add(c, "txn.commit_waits", st.commit_waits,
           "read-write commits acknowledged here (each waited out epsilon)");
    nm_add(c, "txn.commit_wait_ns_total", st.commit_wait_ns_total, "time they spent in commit wait");
    nm_add(c, "txn.commit_wait_ns_max", st.commit_wait_ns_max, "the longest commit wait");
    nm_add(c, "txn.commit_waits_capped", st.commit_waits_capped,
           "commit waits cut at their limit (a clock beyond its bound)");
    nm_add(c, "txn.commit_epsilon_ns_last",
           st.commit_epsilon_ns_last < 0 ? 0 : (uint64_t)st.commit_epsilon_ns_last,
           "epsilon the last commit waited out");
    /* restarts and retries */
    nm_add(c, "txn.conflicts", st.conflicts, "commits refused with 40001");
    nm_add(c, "txn.refreshes", st.refreshes, "read timestamps moved by a refresh");
    nm_add(c, "txn.refresh_failures", st.refresh_failures, "refreshes that found a change: 40001");
    nm_add(c, "txn.uncertainty_restarts", st.uncertainty_restarts,
           "reads moved above a version in their uncertainty window");
    nm_add(c, "txn.visible_waits", st.visible_waits,
           "transaction starts that waited for a pending commit");
    /* locks, records, intents */
    nm_add(c, "txn.lock_calls", st.lock_calls, "lock requests sent");
    nm_add(c, "txn.keys_locked", st.keys_locked, "keys they locked");
    nm_add(c, "txn.heartbeats", st.heartbeats, "transaction record heartbeats sent");
    nm_add(c, "txn.heartbeat_aborts", st.heartbeat_aborts,
           "heartbeats that found the record ABORTED");
    nm_add(c, "txn.resolves", st.resolves, "intent resolutions sent");
    nm_add(c, "txn.resolve_retries", st.resolve_retries, "intent resolutions retried");
    nm_add(c, "txn.resolves_abandoned", st.resolves_abandoned,
           "resolutions given up (left to readers)");
    /* stale and follower reads (docs/txn.md section 8) */
    nm_add(c, "txn.stale_txns", st.stale_txns, "AS OF SYSTEM TIME transactions");
    nm_add(c, "txn.stale_reads", st.stale_reads, "stale reads sent");
    nm_add(c, "txn.stale_reads_local", st.stale_reads_local,
           "of which answered by this node's replica");
    nm_add(c, "txn.stale_reads_fallback", st.stale_reads_fallback,
           "of which refused there and sent to the leaseholder");
    nm_add(c, "txn.follower_reads_served", st.follower_reads_served,
           "reads this node served as a follower");
    return SQLITE_OK;
}

static int nm_next(sqlite3_vtab_cursor *cur) {
    ((nm_cursor *)cur)->at++;
    return SQLITE_OK;
}

static int nm_eof(sqlite3_vtab_cursor *cur) {
    const nm_cursor *c = (const nm_cursor *)cur;
    return c->at >= c->n;
}

static int nm_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
    const nm_cursor *c = (const nm_cursor *)cur;
    const nm_row *row = &c->rows[c->at];
    switch (col) {
    case NM_NAME: sqlite3_result_text(ctx, row->name, -1, SQLITE_STATIC); break;
    case NM_VALUE: sqlite3_result_int64(ctx, (sqlite3_int64)row->value); break;
    case NM_DESCRIPTION: sqlite3_result_text(ctx, row->description, -1, SQLITE_STATIC); break;
    default: sqlite3_result_null(ctx); break;
    }
    return SQLITE_OK;
}

static int nm_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid) {
    *rowid = (sqlite3_int64)((const nm_cursor *)cur)->at + 1;
    return SQLITE_OK;
}

static const sqlite3_module nm_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only: read-only */
    .xConnect = nm_connect,
    .xBestIndex = nm_best_index,
    .xDisconnect = ev_disconnect,
    .xDestroy = ev_disconnect,
    .xOpen = nm_open,
    .xClose = nm_close,
    .xFilter = nm_filter,
    .xNext = nm_next,
    .xEof = nm_eof,
    .xColumn = nm_column,
    .xRowid = nm_rowid,
};

int sqlv__ranges_register(sqlv_session *s) {
    if (sqlite3_create_module_v2(s->db, "meridian_internal_range_events", &ev_module, s, NULL) !=
        SQLITE_OK)
        return -1;
    return sqlite3_create_module_v2(s->db, "meridian_internal_node_metrics", &nm_module, s, NULL) ==
                   SQLITE_OK
               ? 0
               : -1;
}
