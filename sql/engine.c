/*
** The shared SQL engine: catalog snapshots (loaded from the key space
** through txn/) and implicit DDL.
**
** Several engines (one per node) share one key space; none learns of
** another's DDL except through the key space. So the catalog is versioned
** there: the version key (sql_int.h) is read and bumped by every
** transaction that writes a catalog row, and each transaction reads it
** through its own txn at its first statement (sqlv__engine_catalog_at).
**
** Invariants:
**   - a catalog snapshot (sqlv__catalog) holds exactly the catalog rows
**     committed as of its version, and is immutable once built; a version
**     names one snapshot because every catalog write bumps it under
**     serializable transactions (two concurrent DDLs both read and write
**     the key: one fails with 40001).
**   - e->current only moves forward (to a higher version); a transaction
**     whose read timestamp sees an older version gets an older snapshot of
**     its own, never the newer one (its reads and its plan agree).
**   - a session plans with the snapshot of its transaction's version (plus
**     its own pending DDL): the version is read in that transaction before
**     any table is resolved for it.
**   - table ids are never reused: they come from a counter key, starting at
**     SQLV__FIRST_USER_TABLE_ID; ids below are reserved for system tables.
**   - every catalog row is parsed once per change: a reload copies the
**     unchanged descriptors of the newest snapshot.
** Catalog format (key space): see sql_int.h.
*/
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql_int.h"
#include "sql_lex.h"
#include "sql_ranges.h"

#define MOD "sql"

/* ---- descriptors ------------------------------------------------------------- */

void sqlv__table_free(sqlv__table *t) {
    if (t == NULL) return;
    for (int i = 0; i < t->ncols; i++) {
        base_free(t->cols[i].name);
        base_free(t->cols[i].decl_type);
        base_free(t->cols[i].default_expr);
        base_free(t->cols[i].missing);
    }
    base_free(t->cols);
    base_free(t->pk);
    sqlv__indexes_free(t);
    base_free(t->name);
    base_free(t->create_sql);
    base_free(t->view_query);
    base_free(t->view_deps);
    base_free(t);
}

int sqlv__table_clone(const sqlv__table *t, sqlv__table **out) {
    sqlv__table *c = base_calloc(1, sizeof(*c));
    if (c == NULL) return SQLV_ERR_NOMEM;
    c->id = t->id;
    c->shape = t->shape;
    c->name = base_strdup(t->name);
    c->create_sql = base_strdup(t->create_sql);
    c->cols = base_calloc((size_t)t->ncols, sizeof(*c->cols));
    c->pk = base_calloc((size_t)(t->npk ? t->npk : 1), sizeof(int));
    if (c->name == NULL || c->create_sql == NULL || c->cols == NULL || c->pk == NULL) goto fail;
    for (int i = 0; i < t->ncols; i++) {
        c->ncols = i + 1;
        c->cols[i] = t->cols[i];
        c->cols[i].name = base_strdup(t->cols[i].name);
        c->cols[i].decl_type = base_strdup(t->cols[i].decl_type);
        c->cols[i].default_expr = NULL;
        c->cols[i].missing = NULL;
        if (c->cols[i].name == NULL || c->cols[i].decl_type == NULL) goto fail;
        if (t->cols[i].missing) {
            c->cols[i].missing = base_malloc(t->cols[i].missing_len);
            if (c->cols[i].missing == NULL) goto fail;
            memcpy(c->cols[i].missing, t->cols[i].missing, t->cols[i].missing_len);
        }
        if (t->cols[i].default_expr) {
            c->cols[i].default_expr = base_strdup(t->cols[i].default_expr);
            if (c->cols[i].default_expr == NULL) goto fail;
        }
    }
    c->npk = t->npk;
    if (t->npk) memcpy(c->pk, t->pk, sizeof(int) * (size_t)t->npk);
    if (sqlv__indexes_copy(c, t) != 0) goto fail;
    c->is_view = t->is_view;
    if (t->view_query != NULL && (c->view_query = base_strdup(t->view_query)) == NULL) goto fail;
    if (t->nview_deps > 0) {
        c->view_deps = base_calloc((size_t)t->nview_deps, sizeof(*c->view_deps));
        if (c->view_deps == NULL) goto fail;
        memcpy(c->view_deps, t->view_deps, sizeof(*c->view_deps) * (size_t)t->nview_deps);
        c->nview_deps = t->nview_deps;
    }
    *out = c;
    return 0;
fail:
    sqlv__table_free(c);
    return SQLV_ERR_NOMEM;
}

/* FNV-1a of the CREATE text, then of the index list once the table has or
** had an index: tells two descriptors of one table id apart (ALTER TABLE
** ADD COLUMN and CREATE/DROP INDEX keep the id). */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= ((const uint8_t *)p)[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t sqlv__table_shape(const sqlv__table *t) {
    uint64_t h = fnv(0xcbf29ce484222325ull, t->create_sql, strlen(t->create_sql));
    if (t->nindexes == 0 && t->next_index_id <= SQLV__INDEX_FIRST_ID) return h;
    h = fnv(h, &t->next_index_id, sizeof(t->next_index_id));
    for (int i = 0; i < t->nindexes; i++) {
        const sqlv__index *ix = &t->indexes[i];
        uint8_t flags[3] = {ix->unique, ix->constraint, ix->state};
        h = fnv(h, &ix->id, sizeof(ix->id));
        if (ix->rekey_table) h = fnv(h, &ix->rekey_table, sizeof(ix->rekey_table));
        h = fnv(h, ix->name, strlen(ix->name) + 1);
        h = fnv(h, flags, sizeof(flags));
        h = fnv(h, ix->cols, sizeof(int) * (size_t)ix->ncols);
        h = fnv(h, ix->desc, sizeof(bool) * (size_t)ix->ncols);
    }
    return h;
}

static void user_error(char sqlstate[6], char *message, size_t size, const char *state,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void user_error(char sqlstate[6], char *message, size_t size, const char *state,
                       const char *fmt, ...) {
    va_list ap;
    base_strlcpy(sqlstate, state, 6);
    va_start(ap, fmt);
    vsnprintf(message, size, fmt, ap);
    va_end(ap);
}

/* Checks the statement's shape before SQLite sees it: CREATE TABLE
** [IF NOT EXISTS] name ( ... ). Returns 1 with an error set if refused. */
static int check_create_shape(const char *sql, bool *if_not_exists, char sqlstate[6], char *message,
                              size_t size) {
    const char *p = sql, *end = sql + strlen(sql);
    sqlv__token t = sqlv__lex_next(&p, end);
    *if_not_exists = false;
    if (!sqlv__tok_is(&t, "CREATE")) goto syntax;
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "TEMP") || sqlv__tok_is(&t, "TEMPORARY") || sqlv__tok_is(&t, "UNLOGGED") ||
        sqlv__tok_is(&t, "VIRTUAL")) {
        user_error(sqlstate, message, size, "0A000", "CREATE %.*s TABLE is not supported",
                   (int)t.len, t.start);
        return 1;
    }
    if (!sqlv__tok_is(&t, "TABLE")) goto syntax;
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "IF")) {
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "NOT")) goto syntax;
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "EXISTS")) goto syntax;
        *if_not_exists = true;
        t = sqlv__lex_next(&p, end);
    }
    if (t.kind != SQLV__TOK_WORD && t.kind != SQLV__TOK_QUOTED) goto syntax;
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_punct(&t, '.')) {
        user_error(sqlstate, message, size, "0A000",
                   "schema-qualified table names are not supported yet");
        return 1;
    }
    if (!sqlv__tok_punct(&t, '(')) {
        if (sqlv__tok_is(&t, "AS")) {
            user_error(sqlstate, message, size, "0A000", "CREATE TABLE AS is not supported yet");
            return 1;
        }
        goto syntax;
    }
    return 0;
syntax:
    if (t.len == 0)
        user_error(sqlstate, message, size, "42601", "syntax error at end of input");
    else
        user_error(sqlstate, message, size, "42601", "syntax error at or near \"%.*s\"",
                   (int)BASE_MIN(t.len, 64), t.start);
    return 1;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The missing values (SQLV__MISSING_MARK comments between the tokens of
** t->create_sql) into t->cols. 0, 1 malformed, or SQLV_ERR_NOMEM. */
static int missing_parse(sqlv__table *t) {
    const char *p = t->create_sql, *end = p + strlen(p);
    const size_t mlen = strlen(SQLV__MISSING_MARK);
    for (;;) {
        const char *gap = p;
        sqlv__token tk = sqlv__lex_next(&p, end);
        const char *gap_end = tk.kind == SQLV__TOK_END ? end : tk.start;
        /* the space and comments before this token */
        for (const char *m = gap; m + mlen <= gap_end; m++) {
            if (memcmp(m, SQLV__MISSING_MARK, mlen) != 0) continue;
            char *e = NULL;
            long k = strtol(m + mlen, &e, 10);
            if (e == NULL || *e != ' ' || k < 0 || k >= t->ncols) return 1;
            const char *h = e + 1, *he = h;
            while (he < gap_end && hex_digit(*he) >= 0)
                he++;
            size_t n = (size_t)(he - h) / 2;
            if (n == 0 || (he - h) % 2 != 0 || gap_end - he < 2 || he[0] != '*' || he[1] != '/')
                return 1;
            sqlv__column *c = &t->cols[k];
            base_free(c->missing);
            c->missing = base_malloc(n);
            if (c->missing == NULL) return SQLV_ERR_NOMEM;
            for (size_t i = 0; i < n; i++)
                c->missing[i] = (uint8_t)(hex_digit(h[2 * i]) << 4 | hex_digit(h[2 * i + 1]));
            c->missing_len = n;
            sqlv__cell cell;
            if (sqlv__row_decode(c->missing, n, &cell, 1) != 0) return 1;
            m = he;
        }
        if (tk.kind == SQLV__TOK_END) return 0;
    }
}

int sqlv__table_parse(const char *sql, uint32_t id, sqlv__table **out, bool *if_not_exists,
                      char sqlstate[6], char *message, size_t message_size) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    sqlv__table *t = NULL;
    int rc = 1, n;
    char *q = NULL;
    bool ine = false;
    *out = NULL;
    if (check_create_shape(sql, &ine, sqlstate, message, message_size)) return 1;
    if (if_not_exists) *if_not_exists = ine;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rc = SQLV_ERR_NOMEM;
        goto cleanup;
    }
    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    /* One statement, and only it runs: whatever text follows it (the
    ** session's splitter and SQLite's tokenizer may disagree on a ';') is
    ** refused rather than executed in this scratch connection. */
    {
        const char *tail = NULL;
        int prc = sqlite3_prepare_v2(db, sql, -1, &st, &tail);
        if (prc == SQLITE_OK && st != NULL && *sqlv__lex_skip_space(tail, tail + strlen(tail)) != 0)
            prc = SQLITE_MISUSE;
        if (prc == SQLITE_OK && st != NULL && sqlite3_step(st) != SQLITE_DONE) prc = SQLITE_ERROR;
        if (prc != SQLITE_OK || st == NULL) {
            const char *m = prc == SQLITE_MISUSE ? "more than one statement" : sqlite3_errmsg(db);
            user_error(sqlstate, message, message_size,
                       strstr(m, "duplicate column name") ? "42701"
                       : strstr(m, "no such column")      ? "42703"
                                                          : "42601",
                       "%s", m);
            goto cleanup;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    t = base_calloc(1, sizeof(*t));
    if (t == NULL) goto nomem;
    t->id = id;
    if (sqlite3_prepare_v2(db, "SELECT name, sql FROM sqlite_schema WHERE type = 'table'", -1, &st,
                           NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        user_error(sqlstate, message, message_size, "42601", "not a CREATE TABLE statement");
        goto cleanup;
    }
    t->name = base_strdup((const char *)sqlite3_column_text(st, 0));
    t->create_sql = base_strdup((const char *)sqlite3_column_text(st, 1));
    if (t->name == NULL || t->create_sql == NULL) goto nomem;
    t->next_index_id = SQLV__INDEX_FIRST_ID;
    if (sqlite3_step(st) != SQLITE_DONE) {
        user_error(sqlstate, message, message_size, "42601", "not a single CREATE TABLE statement");
        goto cleanup;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (strlen(t->name) > SQLV__NAME_BYTES_MAX) {
        user_error(sqlstate, message, message_size, "42622", "table name \"%s\" is too long",
                   t->name);
        goto cleanup;
    }
    q = sqlite3_mprintf("PRAGMA table_xinfo(\"%w\")", t->name);
    if (q == NULL || sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK) goto nomem;
    int cap = 8;
    t->cols = base_calloc((size_t)cap, sizeof(*t->cols));
    int *pkpos = base_calloc(SQLV__COLUMNS_MAX, sizeof(int));
    if (t->cols == NULL || pkpos == NULL) {
        base_free(pkpos);
        goto nomem;
    }
    while ((n = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int(st, 6) != 0) {
            user_error(sqlstate, message, message_size, "0A000",
                       "generated columns are not supported");
            base_free(pkpos);
            goto cleanup;
        }
        if (t->ncols >= SQLV__COLUMNS_MAX) {
            user_error(sqlstate, message, message_size, "54011",
                       "tables can have at most %d columns", SQLV__COLUMNS_MAX);
            base_free(pkpos);
            goto cleanup;
        }
        if (t->ncols == cap) {
            sqlv__column *nc = base_realloc(t->cols, sizeof(*nc) * (size_t)cap * 2);
            if (nc == NULL) {
                base_free(pkpos);
                goto nomem;
            }
            memset(nc + cap, 0, sizeof(*nc) * (size_t)cap);
            t->cols = nc;
            cap *= 2;
        }
        sqlv__column *c = &t->cols[t->ncols++];
        const char *cname = (const char *)sqlite3_column_text(st, 1);
        const char *ctype = (const char *)sqlite3_column_text(st, 2);
        c->name = base_strdup(cname ? cname : "");
        c->decl_type = base_strdup(ctype ? ctype : "");
        if (c->name == NULL || c->decl_type == NULL) {
            base_free(pkpos);
            goto nomem;
        }
        c->cls = sqlv__class_of_decl(c->decl_type);
        c->not_null = sqlite3_column_int(st, 3) != 0;
        const char *cdflt = (const char *)sqlite3_column_text(st, 4);
        if (cdflt && sqlite3_stricmp(cdflt, "NULL") != 0) {
            c->default_expr = base_strdup(cdflt);
            if (c->default_expr == NULL) {
                base_free(pkpos);
                goto nomem;
            }
        }
        int pk = sqlite3_column_int(st, 5);
        pkpos[t->ncols - 1] = pk;
        if (pk > 0) {
            c->not_null = true;
            t->npk++;
        }
        if (strcasecmp(c->name, SQLV__KEY_COLUMN) == 0) {
            user_error(sqlstate, message, message_size, "42939", "column name \"%s\" is reserved",
                       c->name);
            base_free(pkpos);
            goto cleanup;
        }
    }
    if (n != SQLITE_DONE || t->ncols == 0) {
        base_free(pkpos);
        user_error(sqlstate, message, message_size, "42601", "cannot read the table definition");
        goto cleanup;
    }
    t->pk = base_calloc((size_t)(t->npk ? t->npk : 1), sizeof(int));
    if (t->pk == NULL) {
        base_free(pkpos);
        goto nomem;
    }
    for (int i = 0; i < t->ncols; i++)
        if (pkpos[i] > 0 && pkpos[i] <= t->npk) t->pk[pkpos[i] - 1] = i;
    base_free(pkpos);
    sqlite3_finalize(st);
    st = NULL;
    /* ADD COLUMN ... DEFAULT: what the older rows read */
    n = missing_parse(t);
    if (n < 0) goto nomem;
    if (n > 0) {
        user_error(sqlstate, message, message_size, "XX000",
                   "malformed missing value in the definition of \"%s\"", t->name);
        goto cleanup;
    }
    /* UNIQUE constraints: a unique secondary index each (index.c) */
    n = sqlv__index_from_constraints(db, t, sqlstate, message, message_size);
    if (n < 0) goto nomem;
    if (n > 0) goto cleanup;
    t->shape = sqlv__table_shape(t);
    *out = t;
    t = NULL;
    rc = 0;
    goto cleanup;
nomem:
    rc = SQLV_ERR_NOMEM;
cleanup:
    sqlite3_free(q);
    sqlite3_finalize(st);
    sqlite3_close(db);
    sqlv__table_free(t);
    return rc;
}

/* ---- keys ----------------------------------------------------------------------- */

int sqlv__table_prefix(base_buf *out, uint32_t table_id) {
    return enc_key_prefix(out, table_id, SQLV__ROW_INDEX_ID) == ENC_OK ? 0 : SQLV_ERR_NOMEM;
}

int sqlv__table_span(uint32_t table_id, base_buf *start, base_buf *end) {
    if (table_id == UINT32_MAX) return SQLV_ERR_INTERNAL;
    if (enc_key_prefix(start, table_id, 0) != ENC_OK) return SQLV_ERR_NOMEM;
    if (enc_key_prefix(end, table_id + 1, 0) != ENC_OK) return SQLV_ERR_NOMEM;
    return 0;
}

static void lower_ascii(char *dst, const char *src, size_t size) {
    size_t i = 0;
    for (; src[i] && i + 1 < size; i++)
        dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] - 'A' + 'a') : src[i];
    dst[i] = 0;
}

static int catalog_key(base_buf *out, const char *name) {
    char low[SQLV__NAME_BYTES_MAX * 4 + 1];
    enc_value v;
    lower_ascii(low, name, sizeof(low));
    v.type = ENC_TEXT;
    v.u.bytes.data = (const uint8_t *)low;
    v.u.bytes.len = strlen(low);
    if (enc_key_prefix(out, SQLV__CATALOG_TABLE_ID, 1) != ENC_OK) return SQLV_ERR_NOMEM;
    if (enc_key_append(out, &v) != ENC_OK) return SQLV_ERR_NOMEM;
    return 0;
}

/* A key of the counters table: "table_id" or "catalog_version". */
static int counter_key_named(base_buf *out, const char *name) {
    enc_value v;
    v.type = ENC_TEXT;
    v.u.bytes.data = (const uint8_t *)name;
    v.u.bytes.len = strlen(name);
    if (enc_key_prefix(out, SQLV__COUNTER_TABLE_ID, 1) != ENC_OK) return SQLV_ERR_NOMEM;
    if (enc_key_append(out, &v) != ENC_OK) return SQLV_ERR_NOMEM;
    return 0;
}

static int counter_key(base_buf *out) { return counter_key_named(out, "table_id"); }
static int version_key(base_buf *out) { return counter_key_named(out, "catalog_version"); }

/* ---- catalog snapshots ------------------------------------------------------------- */

void sqlv__catalog_ref(sqlv__catalog *c) { atomic_fetch_add(&c->refs, 1); }

static void catalog_free(sqlv__catalog *c) {
    for (int i = 0; i < c->ntables; i++)
        sqlv__table_free(c->tables[i]);
    base_free(c->tables);
    base_free(c);
}

void sqlv__catalog_unref(sqlv__catalog *c) {
    if (c == NULL) return;
    int before = atomic_fetch_sub(&c->refs, 1);
    assert(before > 0);
    if (before == 1) catalog_free(c);
}

const sqlv__table *sqlv__catalog_find(const sqlv__catalog *c, const char *name) {
    for (int i = 0; i < c->ntables; i++)
        if (sqlite3_stricmp(c->tables[i]->name, name) == 0) return c->tables[i];
    return NULL;
}

const sqlv__table *sqlv__catalog_find_id(const sqlv__catalog *c, uint32_t id) {
    for (int i = 0; i < c->ntables; i++)
        if (c->tables[i]->id == id) return c->tables[i];
    return NULL;
}

static uint64_t get_be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* The catalog version at kv's read timestamp, key given; val: scratch
** (owner: caller). */
static int read_version_at(txn *kv, const uint8_t *key, size_t key_len, uint64_t *version,
                           base_buf *val, txn_error *err) {
    int rc = txn_get(kv, key, key_len, val, err);
    if (rc == TXN_NOT_FOUND) {
        *version = 0;
        rc = TXN_OK;
    } else if (rc == TXN_OK && val->len != 8) {
        /* bytes from the disk: an error, not an assert */
        base_strlcpy(err->sqlstate, "XX001", sizeof(err->sqlstate));
        snprintf(err->message, sizeof(err->message),
                 "malformed catalog version in the key space (%zu bytes)", val->len);
        rc = TXN_ERR_IO;
    } else if (rc == TXN_OK) {
        *version = get_be64(val->data);
    }
    return rc;
}

/* The catalog version at kv's read timestamp (absent: 0, a store written
** before the key existed). Through kv: a read-write kv keeps it in its read
** set, so a DDL committed after its read timestamp fails its commit. */
static int read_version(txn *kv, uint64_t *version, txn_error *err) {
    base_buf key = {0}, val = {0};
    int rc = TXN_ERR_NOMEM;
    if (version_key(&key) != 0) goto cleanup;
    rc = read_version_at(kv, key.data, key.len, version, &val, err);
cleanup:
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

/* One catalog row: table id, CREATE text and index section (borrowed from
** v; an empty section for a version 1 row). 0, or -1 when malformed. */
static int decode_entry(const uint8_t *v, size_t vl, uint32_t *id, const char **sql,
                        size_t *sql_len, const uint8_t **sec, size_t *sec_len) {
    if (vl < 5 || (v[0] != SQLV__CATALOG_FORMAT_VERSION && v[0] != SQLV__CATALOG_INDEXES_VERSION))
        return -1;
    *id = (uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 8 | v[4];
    *sql = (const char *)v + 5;
    *sql_len = vl - 5;
    *sec = NULL;
    *sec_len = 0;
    if (v[0] == SQLV__CATALOG_INDEXES_VERSION) {
        if (vl < 9) return -1;
        uint32_t n = (uint32_t)v[5] << 24 | (uint32_t)v[6] << 16 | (uint32_t)v[7] << 8 | v[8];
        if (n > vl - 9) return -1;
        *sql = (const char *)v + 9;
        *sql_len = n;
        *sec = v + 9 + n;
        *sec_len = vl - 9 - n;
    }
    return 0;
}

/* The descriptor of base with this id if its CREATE text and index section
** are the same (a table the DDL since base did not touch); *hint: where to
** look first (both lists come in catalog key order, so mostly the next
** one). */
static const sqlv__table *reusable(const sqlv__catalog *base, int *hint, uint32_t id,
                                   const char *sql, size_t sql_len, const uint8_t *sec,
                                   size_t sec_len) {
    if (base == NULL || base->ntables == 0) return NULL;
    for (int k = 0; k < base->ntables; k++) {
        int i = (*hint + k) % base->ntables;
        const sqlv__table *t = base->tables[i];
        if (t->id != id) continue;
        *hint = i + 1;
        bool same = strlen(t->create_sql) == sql_len && memcmp(t->create_sql, sql, sql_len) == 0;
        if (same) { /* out of memory: not the same, parsed again */
            base_buf mine = {0};
            same = sqlv__index_section_encode(t, &mine) == 0 && mine.len == sec_len &&
                   (sec_len == 0 || memcmp(mine.data, sec, sec_len) == 0);
            base_buf_free(&mine);
        }
        return same ? t : NULL;
    }
    return NULL;
}

/* Build the catalog of the given version from the catalog rows seen by kv
** (at its read timestamp; a read-write kv records the scan). Rows that did
** not change since base are copied from it instead of parsed again.
** owner of *out: caller (one reference). */
static int catalog_load(txn *kv, uint64_t version, const sqlv__catalog *base,
                        sqlv__catalog **out, txn_error *err) {
    sqlv__catalog *c = base_calloc(1, sizeof(*c));
    txn_iter *it = NULL;
    base_buf start = {0}, end = {0};
    int rc = TXN_ERR_NOMEM, cap = 0, hint = 0;
    if (c == NULL) goto cleanup;
    atomic_init(&c->refs, 1);
    c->version = version;
    if (enc_key_prefix(&start, SQLV__CATALOG_TABLE_ID, 1) != ENC_OK ||
        enc_prefix_end(start.data, start.len, &end) != ENC_OK)
        goto cleanup;
    rc = txn_scan(kv, start.data, start.len, end.data, end.len, false, &it, err);
    if (rc != TXN_OK) {
        it = NULL;
        goto cleanup;
    }
    for (;;) {
        const uint8_t *k, *v, *sec;
        size_t kl, vl, sql_len, sec_len;
        const char *sql;
        uint32_t id;
        int n = txn_iter_next(it, &k, &kl, &v, &vl, err);
        if (n < 0) {
            rc = n;
            goto cleanup;
        }
        if (n == 0) break;
        if (c->ntables >= SQLV__TABLES_MAX) {
            BASE_ERROR(MOD, "catalog: more than %d tables, the rest ignored", SQLV__TABLES_MAX);
            break;
        }
        sqlv__table *t = NULL;
        if (vl > 0 && v[0] == SQLV__CATALOG_VIEW_VERSION) { /* a view (view.c): no parse */
            int vrc = sqlv__view_decode(v, vl, &t);
            if (vrc == SQLV_ERR_NOMEM) {
                rc = TXN_ERR_NOMEM;
                goto cleanup;
            }
            if (vrc != 0) {
                BASE_ERROR(MOD, "catalog: malformed view skipped");
                continue;
            }
            goto add;
        }
        if (decode_entry(v, vl, &id, &sql, &sql_len, &sec, &sec_len) != 0) {
            BASE_ERROR(MOD, "catalog: malformed entry skipped");
            continue;
        }
        const sqlv__table *same = reusable(base, &hint, id, sql, sql_len, sec, sec_len);
        rc = TXN_ERR_NOMEM;
        if (same != NULL) {
            if (sqlv__table_clone(same, &t) != 0) goto cleanup;
        } else {
            char state[6], msg[256];
            char *text = base_strndup(sql, sql_len);
            if (text == NULL) goto cleanup;
            int prc = sqlv__table_parse(text, id, &t, NULL, state, msg, sizeof(msg));
            base_free(text);
            if (prc < 0) goto cleanup;
            if (prc > 0) {
                BASE_ERROR(MOD, "catalog: table %u does not parse: %s", id, msg);
                continue;
            }
            if (sec_len > 0) { /* the stored index list replaces the parsed one */
                int drc = sqlv__index_section_decode(t, sec, sec_len);
                if (drc == SQLV_ERR_NOMEM) {
                    sqlv__table_free(t);
                    goto cleanup;
                }
                if (drc != 0) {
                    /* without its index list writers would not maintain them */
                    BASE_ERROR(MOD, "catalog: table %u has a malformed index list", id);
                    sqlv__table_free(t);
                    continue;
                }
                t->shape = sqlv__table_shape(t);
            }
        }
    add:
        rc = TXN_ERR_NOMEM;
        if (c->ntables == cap) {
            int ncap = cap ? cap * 2 : 16;
            sqlv__table **nt = base_realloc(c->tables, sizeof(*nt) * (size_t)ncap);
            if (nt == NULL) {
                sqlv__table_free(t);
                goto cleanup;
            }
            c->tables = nt;
            cap = ncap;
        }
        c->tables[c->ntables++] = t;
    }
    BASE_DEBUG(MOD, "catalog version %llu loaded: %d tables", (unsigned long long)version,
               c->ntables);
    *out = c;
    c = NULL;
    rc = TXN_OK;
cleanup:
    if (it) txn_iter_close(it);
    if (c) catalog_free(c);
    base_buf_free(&start);
    base_buf_free(&end);
    if (rc != TXN_OK) txn_error_set(err, rc);
    return rc;
}

/* ---- engine ----------------------------------------------------------------------- */

sqlv__catalog *sqlv__engine_catalog(sqlv_engine *e) {
    pthread_mutex_lock(&e->mu);
    sqlv__catalog *c = e->current;
    sqlv__catalog_ref(c);
    pthread_mutex_unlock(&e->mu);
    return c;
}

int sqlv__engine_catalog_at(sqlv_engine *e, txn *kv, sqlv__catalog **cat, txn_error *err) {
    uint64_t version = 0;
    sqlv__catalog *cur, *loaded = NULL, *old = NULL;
    base_buf val = {0};
    /* every transaction comes here: the key is encoded once, at open */
    int rc = read_version_at(kv, e->version_key, e->version_key_len, &version, &val, err);
    base_buf_free(&val);
    if (rc != TXN_OK) {
        txn_error_set(err, rc);
        return rc;
    }
    if (*cat != NULL && (*cat)->version == version) return TXN_OK; /* unchanged: no lock */
    cur = sqlv__engine_catalog(e);
    if (cur->version == version) { /* another session loaded it already */
        sqlv__catalog_unref(*cat);
        *cat = cur;
        return TXN_OK;
    }
    rc = catalog_load(kv, version, cur, &loaded, err);
    sqlv__catalog_unref(cur);
    if (rc != TXN_OK) return rc;
    /* Publish only forward: a transaction with an older read timestamp
    ** keeps its own (older) snapshot to itself. */
    pthread_mutex_lock(&e->mu);
    if (version > e->current->version) {
        old = e->current;
        sqlv__catalog_ref(loaded);
        e->current = loaded;
    }
    pthread_mutex_unlock(&e->mu);
    sqlv__catalog_unref(old);
    sqlv__catalog_unref(*cat);
    *cat = loaded;
    return TXN_OK;
}

int sqlv_engine_open(txn_db *db, sqlv_engine **out) {
    sqlv_engine *e = base_calloc(1, sizeof(*e));
    txn *t = NULL;
    txn_error err = {{0}, {0}};
    txn_options o = {.read_only = true};
    uint64_t version = 0;
    int rc;
    if (e == NULL) return SQLV_ERR_NOMEM;
    sqlv__mem_init(); /* before this process's first SQLite call (memory.c) */
    e->db = db;
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->ddl_mu, NULL);
    atomic_store(&e->next_row_id, (uint64_t)base_realtime_ns());
    {
        base_buf k = {0};
        rc = version_key(&k) == 0 && k.len <= sizeof(e->version_key) ? TXN_OK : TXN_ERR_NOMEM;
        if (rc == TXN_OK) memcpy(e->version_key, k.data, k.len);
        e->version_key_len = k.len;
        base_buf_free(&k);
        if (rc != TXN_OK) goto fail;
    }
    rc = txn_begin(e->db, &o, &t);
    if (rc != TXN_OK) {
        t = NULL;
        goto fail;
    }
    /* Hidden row ids start at the wall clock in ns; the HLC is already past
    ** every stored commit (range/ restores its high-water mark), and every
    ** row id ever handed out is below its row's commit timestamp, so
    ** seeding from the later of the two keeps ids unique across a restart
    ** even when the system clock stepped back. */
    int64_t hlc_wall = txn_read_timestamp(t).wall_ns;
    if (hlc_wall > 0 && (uint64_t)hlc_wall > atomic_load(&e->next_row_id))
        atomic_store(&e->next_row_id, (uint64_t)hlc_wall);
    rc = read_version(t, &version, &err);
    if (rc == TXN_OK) rc = catalog_load(t, version, NULL, &e->current, &err);
    if (rc != TXN_OK) goto fail;
    txn_rollback(t);
    BASE_INFO(MOD, "engine open: %d tables in the catalog (version %llu)", e->current->ntables,
              (unsigned long long)version);
    *out = e;
    return 0;
fail:
    if (t) txn_rollback(t);
    txn_error_set(&err, rc);
    BASE_ERROR(MOD, "catalog load: %s", err.message);
    sqlv_engine_close(e);
    return rc == TXN_ERR_NOMEM ? SQLV_ERR_NOMEM : SQLV_ERR_INTERNAL;
}

void sqlv_engine_close(sqlv_engine *e) {
    if (e == NULL) return;
    sqlv__catalog_unref(e->current);
    sqlv__seq_engine_free(e); /* sequence blocks (sequence.c) */
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->ddl_mu);
    base_free(e);
}

uint64_t sqlv__engine_row_id(sqlv_engine *e) { return atomic_fetch_add(&e->next_row_id, 1); }

void sqlv__catalog_list_free(sqlv__catalog_entry *list, int n) {
    if (list == NULL) return;
    for (int i = 0; i < n; i++) {
        base_free(list[i].name);
        base_free(list[i].view_sql);
    }
    base_free(list);
}

static void txn_fail(sqlv__result *res, int rc, txn_error *err) {
    txn_error_set(err, rc);
    base_strlcpy(res->sqlstate, err->sqlstate[0] ? err->sqlstate : "XX000", sizeof(res->sqlstate));
    base_strlcpy(res->message, err->message[0] ? err->message : "transaction failed",
                 sizeof(res->message));
}

/* Read and bump the table id counter in kv: *id is the new table's id. */
static int counter_next(txn *kv, uint32_t *id, sqlv__result *res) {
    txn_error err = {{0}, {0}};
    base_buf nkey = {0}, nval = {0};
    int rc = SQLV_ERR_NOMEM;
    if (counter_key(&nkey) != 0) goto cleanup;
    uint64_t next = SQLV__FIRST_USER_TABLE_ID;
    rc = txn_get(kv, nkey.data, nkey.len, &nval, &err);
    if (rc == TXN_OK && nval.len == 8) {
        next = get_be64(nval.data);
        if (next < SQLV__FIRST_USER_TABLE_ID) next = SQLV__FIRST_USER_TABLE_ID;
    } else if (rc != TXN_OK && rc != TXN_NOT_FOUND) {
        txn_fail(res, rc, &err);
        rc = 0;
        goto cleanup;
    }
    if (next >= UINT32_MAX - 1) {
        base_strlcpy(res->sqlstate, "54000", sizeof(res->sqlstate));
        snprintf(res->message, sizeof(res->message), "table ids exhausted");
        rc = 0;
        goto cleanup;
    }
    uint8_t nb[8];
    put_be64(nb, next + 1);
    rc = txn_put(kv, nkey.data, nkey.len, nb, 8, &err);
    if (rc != TXN_OK) {
        txn_fail(res, rc, &err);
        rc = 0;
        goto cleanup;
    }
    *id = (uint32_t)next;
    rc = 0;
cleanup:
    base_buf_free(&nkey);
    base_buf_free(&nval);
    return rc;
}

/* Every catalog write goes with this: read the version through kv and
** write it + 1, so concurrent catalog changes (on any node) conflict and
** every committed catalog has its own version. */
static int catalog_bump(txn *kv, sqlv__result *res) {
    txn_error err = {{0}, {0}};
    base_buf key = {0};
    uint64_t v = 0;
    uint8_t b[8];
    int rc = read_version(kv, &v, &err);
    if (rc == TXN_OK && v == UINT64_MAX) {
        base_strlcpy(res->sqlstate, "54000", sizeof(res->sqlstate));
        snprintf(res->message, sizeof(res->message), "catalog versions exhausted");
        return 0;
    }
    if (rc == TXN_OK && version_key(&key) != 0) rc = TXN_ERR_NOMEM;
    if (rc == TXN_OK) {
        put_be64(b, v + 1);
        rc = txn_put(kv, key.data, key.len, b, 8, &err);
    }
    base_buf_free(&key);
    if (rc == TXN_ERR_NOMEM) return SQLV_ERR_NOMEM;
    if (rc != TXN_OK) txn_fail(res, rc, &err);
    return 0;
}

/* catalog_bump for writers of other system tables that the catalog version
** also guards (privileges and memberships: sql/privileges.c): txn codes. */
int sqlv__catalog_bump_version(txn *kv, txn_error *err) {
    base_buf key = {0};
    uint64_t v = 0;
    uint8_t b[8];
    int rc = read_version(kv, &v, err);
    if (rc == TXN_OK && v == UINT64_MAX) {
        base_strlcpy(err->sqlstate, "54000", sizeof(err->sqlstate));
        snprintf(err->message, sizeof(err->message), "catalog versions exhausted");
        rc = TXN_ERR_LIMIT;
    }
    if (rc == TXN_OK && version_key(&key) != 0) {
        rc = TXN_ERR_NOMEM;
        txn_error_set(err, rc);
    }
    if (rc == TXN_OK) {
        put_be64(b, v + 1);
        rc = txn_put(kv, key.data, key.len, b, 8, err);
    }
    base_buf_free(&key);
    return rc;
}

int sqlv__catalog_put(txn *kv, const sqlv__table *t, sqlv__result *res) {
    txn_error err = {{0}, {0}};
    base_buf ckey = {0}, cval = {0}, sec = {0};
    int rc = SQLV_ERR_NOMEM;
    if (catalog_key(&ckey, t->name) != 0) goto cleanup;
    if (t->is_view) { /* its own row format (view.c) */
        if (sqlv__view_encode(t, &cval) != 0) goto cleanup;
        goto put;
    }
    if (sqlv__index_section_encode(t, &sec) != 0) goto cleanup;
    /* version 1 until the table has an index: older rows stay byte for byte */
    if (base_buf_append_byte(&cval, sec.len ? SQLV__CATALOG_INDEXES_VERSION
                                            : SQLV__CATALOG_FORMAT_VERSION) != 0)
        goto cleanup;
    uint32_t id = t->id;
    uint8_t idb[4] = {(uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id};
    if (base_buf_append(&cval, idb, 4) != 0) goto cleanup;
    if (sec.len) {
        uint32_t n = (uint32_t)strlen(t->create_sql);
        uint8_t nb[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
        if (base_buf_append(&cval, nb, 4) != 0) goto cleanup;
    }
    if (base_buf_append(&cval, t->create_sql, strlen(t->create_sql)) != 0 ||
        base_buf_append(&cval, sec.data, sec.len) != 0)
        goto cleanup;
put:
    rc = txn_put(kv, ckey.data, ckey.len, cval.data, cval.len, &err);
    if (rc != TXN_OK) {
        txn_fail(res, rc, &err);
        rc = 0;
        goto cleanup;
    }
    rc = catalog_bump(kv, res);
cleanup:
    base_buf_free(&ckey);
    base_buf_free(&cval);
    base_buf_free(&sec);
    return rc;
}

int sqlv__catalog_create(txn *kv, sqlv__table *t, sqlv__result *res) {
    uint32_t id = 0;
    int rc = counter_next(kv, &id, res);
    if (rc != 0 || res->sqlstate[0]) return rc;
    t->id = id;
    return sqlv__catalog_put(kv, t, res);
}

int sqlv__engine_allocate_table_id(sqlv_engine *e, uint32_t *id, sqlv__result *res) {
    txn *kv = NULL;
    int rc = 0;
    /* under ddl_mu: serialized with this engine's implicit DDL, which bumps
    ** the counter too; another engine's bump fails one commit (retried) */
    pthread_mutex_lock(&e->ddl_mu);
    for (int attempt = 0; attempt < SQLV__DDL_RETRIES_MAX; attempt++) {
        txn_error err = {{0}, {0}};
        memset(res, 0, sizeof(*res));
        int trc = txn_begin(e->db, NULL, &kv);
        if (trc != TXN_OK) {
            kv = NULL;
            txn_fail(res, trc, &err);
            break;
        }
        rc = counter_next(kv, id, res);
        if (rc != 0 || res->sqlstate[0]) break;
        trc = txn_commit(kv, NULL, &err);
        kv = NULL;
        if (trc == TXN_ERR_RETRY && attempt + 1 < SQLV__DDL_RETRIES_MAX) continue;
        if (trc != TXN_OK) txn_fail(res, trc, &err);
        break;
    }
    if (kv) txn_rollback(kv);
    pthread_mutex_unlock(&e->ddl_mu);
    return rc;
}

int sqlv__catalog_drop(txn *kv, const char *name, uint32_t id, bool with_rows,
                       sqlv__result *res) {
    txn_error err = {{0}, {0}};
    base_buf ck = {0}, s = {0}, en = {0};
    int rc = catalog_key(&ck, name);
    if (rc == 0) rc = sqlv__table_span(id, &s, &en);
    if (rc == 0) {
        rc = txn_delete(kv, ck.data, ck.len, &err);
        if (rc == TXN_OK && with_rows)
            rc = txn_delete_range(kv, s.data, s.len, en.data, en.len, &err);
        if (rc != TXN_OK) {
            txn_fail(res, rc, &err);
            rc = 0;
        } else {
            rc = catalog_bump(kv, res);
        }
    }
    base_buf_free(&ck);
    base_buf_free(&s);
    base_buf_free(&en);
    return rc;
}

void sqlv__pending_ddl_clear(sqlv__pending_ddl *p) {
    for (int i = 0; i < p->ncreated; i++)
        sqlv__table_free(p->created[i]);
    base_free(p->created);
    base_free(p->dropped);
    memset(p, 0, sizeof(*p));
}

/* ---- implicit DDL ----------------------------------------------------------------
** Each statement is its own KV transaction: begin, read the catalog at its
** read timestamp, check names against that catalog, write the catalog row
** and the version, commit. A 40001 (another node's DDL, or a transaction
** block's, committed in between) is retried with a fresh transaction; the
** statement has sent nothing yet. The engine's cache is not touched: the
** next transaction of any session sees the new version and reloads. */

/* Also index.c's implicit CREATE/DROP INDEX (see sql_int.h). */
int sqlv__engine_run_ddl(sqlv_engine *e, sqlv__ddl_attempt_fn fn, void *arg, sqlv__result *res) {
    sqlv__catalog *cat = NULL;
    int rc = 0;
    pthread_mutex_lock(&e->ddl_mu);
    for (int attempt = 0; attempt < SQLV__DDL_RETRIES_MAX; attempt++) {
        txn *kv = NULL;
        txn_error err = {{0}, {0}};
        memset(res, 0, sizeof(*res));
        int trc = txn_begin(e->db, NULL, &kv);
        if (trc != TXN_OK) {
            txn_fail(res, trc, &err);
            break;
        }
        trc = sqlv__engine_catalog_at(e, kv, &cat, &err);
        if (trc != TXN_OK) {
            txn_rollback(kv);
            txn_fail(res, trc, &err);
            break;
        }
        rc = fn(e, kv, cat, arg, res);
        if (rc != 0 || res->sqlstate[0]) {
            txn_rollback(kv);
            break;
        }
        trc = txn_commit(kv, NULL, &err);
        if (trc == TXN_ERR_RETRY && attempt + 1 < SQLV__DDL_RETRIES_MAX) {
            BASE_DEBUG(MOD, "DDL conflict, retrying (attempt %d)", attempt + 1);
            continue;
        }
        if (trc != TXN_OK) {
            memset(res->notice, 0, sizeof(res->notice));
            txn_fail(res, trc, &err);
        }
        break;
    }
    pthread_mutex_unlock(&e->ddl_mu);
    sqlv__catalog_unref(cat);
    return rc;
}

typedef struct create_args {
    sqlv__table *t;
    bool if_not_exists;
} create_args;

static int create_attempt(sqlv_engine *e, txn *kv, const sqlv__catalog *cat, void *arg,
                          sqlv__result *res) {
    create_args *a = arg;
    (void)e;
    /* an index of that name (or a UNIQUE constraint's index name already
    ** taken): PostgreSQL's tables and indexes share one namespace */
    const sqlv__table *const *all = (const sqlv__table *const *)cat->tables;
    bool clash = sqlv__catalog_find(cat, a->t->name) == NULL &&
                 sqlv__relation_taken(all, cat->ntables, a->t->name);
    for (int i = 0; i < a->t->nindexes && !clash; i++) {
        if (!sqlv__relation_taken(all, cat->ntables, a->t->indexes[i].name)) continue;
        if (sqlv__catalog_find(cat, a->t->name) != NULL) break; /* 42P07 below */
        base_strlcpy(res->sqlstate, "42P07", sizeof(res->sqlstate));
        snprintf(res->message, sizeof(res->message), "relation \"%s\" already exists",
                 a->t->indexes[i].name);
        return 0;
    }
    if (clash || sqlv__catalog_find(cat, a->t->name) != NULL) {
        if (a->if_not_exists) { /* nothing written: the commit is empty */
            snprintf(res->notice, sizeof(res->notice), "relation \"%s\" already exists, skipping",
                     a->t->name);
            return 0;
        }
        base_strlcpy(res->sqlstate, "42P07", sizeof(res->sqlstate));
        snprintf(res->message, sizeof(res->message), "relation \"%s\" already exists",
                 a->t->name);
        return 0;
    }
    if (cat->ntables >= SQLV__TABLES_MAX) {
        base_strlcpy(res->sqlstate, "54000", sizeof(res->sqlstate));
        snprintf(res->message, sizeof(res->message), "too many tables (maximum %d)",
                 SQLV__TABLES_MAX);
        return 0;
    }
    return sqlv__catalog_create(kv, a->t, res);
}

int sqlv__engine_create_table(sqlv_engine *e, const char *sql, sqlv__result *res) {
    create_args a = {NULL, false};
    memset(res, 0, sizeof(*res));
    int rc = sqlv__table_parse(sql, 0, &a.t, &a.if_not_exists, res->sqlstate, res->message,
                               sizeof(res->message));
    if (rc != 0) return rc < 0 ? rc : 0;
    rc = sqlv__engine_run_ddl(e, create_attempt, &a, res);
    if (rc == 0 && res->sqlstate[0] == 0 && res->notice[0] == 0) {
        BASE_INFO(MOD, "created table %s (id %u)", a.t->name, a.t->id);
        sqlv__engine_after_ddl(e, &a.t->id, 1, NULL, 0);
    }
    sqlv__table_free(a.t);
    return rc;
}

typedef struct drop_args {
    char **names;
    int n;
    bool if_exists;
    bool cascade;  /* the views that read them go too (else 2BP01) */
    uint32_t *ids; /* the tables the last attempt dropped (n slots) */
    int nids;
} drop_args;

#define DROP_TABLES_VIEWS_MAX 256 /* tables and dependent views one DROP TABLE checks */

static int drop_attempt(sqlv_engine *e, txn *kv, const sqlv__catalog *cat, void *arg,
                        sqlv__result *res) {
    drop_args *a = arg;
    int rc = 0;
    a->nids = 0;
    const sqlv__table **found = base_calloc((size_t)(a->n ? a->n : 1), sizeof(*found));
    int nfound = 0;
    if (found == NULL) return SQLV_ERR_NOMEM;
    for (int i = 0; i < a->n; i++) {
        const sqlv__table *t = sqlv__catalog_find(cat, a->names[i]);
        if (t != NULL && t->is_view) { /* PostgreSQL's 42809, with its hint */
            base_strlcpy(res->sqlstate, "42809", sizeof(res->sqlstate));
            snprintf(res->message, sizeof(res->message),
                     "\"%s\" is not a table (use DROP VIEW to remove a view)", t->name);
            goto cleanup;
        }
        if (t == NULL) {
            if (a->if_exists) {
                snprintf(res->notice, sizeof(res->notice), "table \"%s\" does not exist, skipping",
                         a->names[i]);
                continue;
            }
            base_strlcpy(res->sqlstate, "42P01", sizeof(res->sqlstate));
            snprintf(res->message, sizeof(res->message), "table \"%s\" does not exist",
                     a->names[i]);
            goto cleanup;
        }
        bool dup = false;
        for (int j = 0; j < nfound; j++)
            dup |= found[j] == t;
        if (!dup) found[nfound++] = t;
    }
    if (nfound > 0) { /* the views that read them: 2BP01, or with CASCADE dropped first */
        uint32_t ids[DROP_TABLES_VIEWS_MAX], views[DROP_TABLES_VIEWS_MAX];
        int nviews = 0, nid = BASE_MIN(nfound, DROP_TABLES_VIEWS_MAX);
        for (int j = 0; j < nid; j++)
            ids[j] = found[j]->id;
        const sqlv__table *const *all = (const sqlv__table *const *)cat->tables;
        if (sqlv__view_dependents(all, cat->ntables, ids, nid, views, &nviews,
                                  DROP_TABLES_VIEWS_MAX) != 0) {
            base_strlcpy(res->sqlstate, "54000", sizeof(res->sqlstate));
            snprintf(res->message, sizeof(res->message), "too many dependent views");
            goto cleanup;
        }
        for (int v = 0; v < nviews; v++) {
            const sqlv__table *vt = sqlv__catalog_find_id(cat, views[v]);
            if (vt == NULL) continue;
            if (!a->cascade) {
                base_strlcpy(res->sqlstate, "2BP01", sizeof(res->sqlstate));
                snprintf(res->message, sizeof(res->message),
                         "cannot drop table %s because other objects depend on it", found[0]->name);
                goto cleanup;
            }
            rc = sqlv__catalog_drop(kv, vt->name, vt->id, false, res);
            if (rc != 0 || res->sqlstate[0]) goto cleanup;
            snprintf(res->notice, sizeof(res->notice), "drop cascades to view %s", vt->name);
        }
    }
    for (int j = 0; j < nfound; j++) {
        rc = sqlv__catalog_drop(kv, found[j]->name, found[j]->id, !txn_db_has_ranges(e->db), res);
        if (rc != 0 || res->sqlstate[0]) goto cleanup;
        a->ids[a->nids++] = found[j]->id;
        BASE_INFO(MOD, "dropping table %s (id %u)", found[j]->name, found[j]->id);
    }
cleanup:
    base_free(found);
    return rc;
}

int sqlv__engine_drop_tables(sqlv_engine *e, char **names, int n, bool if_exists, bool cascade,
                             sqlv__result *res) {
    drop_args a = {names, n, if_exists, cascade, NULL, 0};
    memset(res, 0, sizeof(*res));
    a.ids = base_calloc((size_t)(n > 0 ? n : 1), sizeof(*a.ids)); /* owner: this function */
    if (a.ids == NULL) return SQLV_ERR_NOMEM;
    int rc = sqlv__engine_run_ddl(e, drop_attempt, &a, res);
    if (rc == 0 && res->sqlstate[0] == 0) sqlv__engine_after_ddl(e, NULL, 0, a.ids, a.nids);
    base_free(a.ids);
    return rc;
}

/* ---- after DDL, in a cluster: table ranges and dropped rows ------------------------
** Each table starts in its own range (a split at its first key: a table's
** rows and the catalog then live in different ranges, which is why a
** transaction block that creates a table and writes rows into it is a
** cross-range write until two-phase commit). Dropped tables' rows go in a
** transaction of their own, like CockroachDB's delayed GC. */

#define SQLV__SPLIT_ATTEMPTS_MAX 3   /* splits of one new table's range */
#define SQLV__GC_ATTEMPTS_MAX 3      /* deletions of one dropped table's rows, on 40001 */

int sqlv__table_split_key(uint32_t table_id, base_buf *out) {
    base_buf_reset(out);
    return enc_key_prefix(out, table_id, 0) == ENC_OK ? 0 : SQLV_ERR_NOMEM;
}

static void split_table(sqlv_engine *e, uint32_t id) {
    base_buf key = {0}; /* owner: this function */
    if (sqlv__table_split_key(id, &key) != 0) return;
    for (int attempt = 0; attempt < SQLV__SPLIT_ATTEMPTS_MAX; attempt++) {
        txn_split_result res;
        txn_error err = {{0}, {0}};
        int rc = txn_db_split_at(e->db, key.data, key.len, &res, &err);
        if (rc == TXN_OK) {
            if (res.created) {
                BASE_INFO(MOD, "table id %u starts range r%llu (split from r%llu)", id,
                          (unsigned long long)res.right_range_id,
                          (unsigned long long)res.left_range_id);
                char reason[96];
                snprintf(reason, sizeof reason, "new table (id %u)", id);
                sqlv__ranges_log_split(e, res.left_range_id, res.right_range_id, reason);
            }
            break;
        }
        BASE_WARN(MOD, "table id %u: split at its first key failed (attempt %d: %s)", id,
                  attempt + 1, err.message);
        if (rc == TXN_ERR_UNSUPPORTED || rc == TXN_ERR_NOMEM) break;
    }
    base_buf_free(&key);
}

static void delete_table_rows(sqlv_engine *e, uint32_t id) {
    base_buf start = {0}, end = {0}; /* owner: this function */
    if (sqlv__table_span(id, &start, &end) != 0) goto done;
    for (int attempt = 0; attempt < SQLV__GC_ATTEMPTS_MAX; attempt++) {
        txn *kv = NULL;
        txn_error err = {{0}, {0}};
        int rc = txn_begin(e->db, NULL, &kv);
        if (rc == TXN_OK) rc = txn_delete_range(kv, start.data, start.len, end.data, end.len, &err);
        if (rc == TXN_OK) {
            rc = txn_commit(kv, NULL, &err);
            kv = NULL;
        }
        if (kv != NULL) txn_rollback(kv);
        if (rc == TXN_OK) break;
        BASE_WARN(MOD, "rows of dropped table id %u not deleted (attempt %d: %d %s); they are "
                  "unreachable", id, attempt + 1, rc, err.message);
        if (rc != TXN_ERR_RETRY && rc != TXN_ERR_UNAVAILABLE) break;
    }
done:
    base_buf_free(&start);
    base_buf_free(&end);
}

void sqlv__engine_after_ddl(sqlv_engine *e, const uint32_t *created, int ncreated,
                            const uint32_t *dropped, int ndropped) {
    if (!txn_db_has_ranges(e->db)) return; /* one local store: nothing to do */
    for (int i = 0; i < ncreated; i++)
        split_table(e, created[i]);
    for (int i = 0; i < ndropped; i++)
        delete_table_rows(e, dropped[i]);
}
