/*
** The shared SQL engine: the catalog (cached in memory, persisted in the key
** space through txn/) and DDL.
**
** Invariants:
**   - e->tables mirrors the committed catalog in the key space: a change is
**     applied to the cache only after its KV transaction committed, and DDL
**     runs under e->mu from start to commit, so DDL is serialized.
**   - e->version increases on every cache change; sessions compare it with
**     the version they declared their virtual tables at.
**   - table ids are never reused: they come from a counter key, starting at
**     SQLV__FIRST_USER_TABLE_ID; ids below are reserved for system tables.
**   - a descriptor in the cache is immutable; readers clone it under e->mu.
** Catalog format (key space): see sql_int.h.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql_int.h"
#include "sql_lex.h"

#define MOD "sql"

/* ---- descriptors ------------------------------------------------------------- */

void sqlv__table_free(sqlv__table *t) {
    if (t == NULL) return;
    for (int i = 0; i < t->ncols; i++) {
        base_free(t->cols[i].name);
        base_free(t->cols[i].decl_type);
    }
    base_free(t->cols);
    base_free(t->pk);
    base_free(t->name);
    base_free(t->create_sql);
    base_free(t);
}

int sqlv__table_clone(const sqlv__table *t, sqlv__table **out) {
    sqlv__table *c = base_calloc(1, sizeof(*c));
    if (c == NULL) return SQLV_ERR_NOMEM;
    c->id = t->id;
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
        if (c->cols[i].name == NULL || c->cols[i].decl_type == NULL) goto fail;
    }
    c->npk = t->npk;
    if (t->npk) memcpy(c->pk, t->pk, sizeof(int) * (size_t)t->npk);
    *out = c;
    return 0;
fail:
    sqlv__table_free(c);
    return SQLV_ERR_NOMEM;
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
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        const char *m = sqlite3_errmsg(db);
        user_error(sqlstate, message, message_size,
                   strstr(m, "duplicate column name") ? "42701" : "42601", "%s", m);
        goto cleanup;
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
    /* UNIQUE constraints other than the primary key need secondary indexes
    ** (issue 8): refuse rather than silently not enforce them. */
    q = sqlite3_mprintf("PRAGMA index_list(\"%w\")", t->name);
    if (q == NULL || sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK) goto nomem;
    while ((n = sqlite3_step(st)) == SQLITE_ROW) {
        const char *origin = (const char *)sqlite3_column_text(st, 3);
        if (origin && strcmp(origin, "u") == 0) {
            user_error(sqlstate, message, message_size, "0A000",
                       "UNIQUE constraints are not supported yet");
            goto cleanup;
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    sqlite3_free(q);
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

static int counter_key(base_buf *out) {
    enc_value v;
    v.type = ENC_TEXT;
    v.u.bytes.data = (const uint8_t *)"table_id";
    v.u.bytes.len = 8;
    if (enc_key_prefix(out, SQLV__COUNTER_TABLE_ID, 1) != ENC_OK) return SQLV_ERR_NOMEM;
    if (enc_key_append(out, &v) != ENC_OK) return SQLV_ERR_NOMEM;
    return 0;
}

/* ---- engine ----------------------------------------------------------------------- */

static int find_table(sqlv_engine *e, const char *name) {
    for (int i = 0; i < e->ntables; i++)
        if (sqlite3_stricmp(e->tables[i]->name, name) == 0) return i;
    return -1;
}

static int reserve_tables(sqlv_engine *e, int extra) {
    if (e->ntables + extra <= e->cap_tables) return 0;
    int ncap = e->cap_tables ? e->cap_tables * 2 : 16;
    while (ncap < e->ntables + extra) ncap *= 2;
    sqlv__table **nt = base_realloc(e->tables, sizeof(*nt) * (size_t)ncap);
    if (nt == NULL) return SQLV_ERR_NOMEM;
    e->tables = nt;
    e->cap_tables = ncap;
    return 0;
}

static int add_table(sqlv_engine *e, sqlv__table *t) {
    if (e->ntables == e->cap_tables) {
        int ncap = e->cap_tables ? e->cap_tables * 2 : 16;
        sqlv__table **nt = base_realloc(e->tables, sizeof(*nt) * (size_t)ncap);
        if (nt == NULL) return SQLV_ERR_NOMEM;
        e->tables = nt;
        e->cap_tables = ncap;
    }
    e->tables[e->ntables++] = t;
    e->version++;
    return 0;
}

static int load_catalog(sqlv_engine *e) {
    txn *t = NULL;
    txn_iter *it = NULL;
    txn_error err = {{0}, {0}};
    base_buf start = {0}, end = {0};
    txn_options o = {.read_only = true};
    int rc = SQLV_ERR_INTERNAL, n;
    if (enc_key_prefix(&start, SQLV__CATALOG_TABLE_ID, 1) != ENC_OK ||
        enc_prefix_end(start.data, start.len, &end) != ENC_OK) {
        rc = SQLV_ERR_NOMEM;
        goto cleanup;
    }
    if (txn_begin(e->db, &o, &t) != TXN_OK) goto cleanup;
    /* Hidden row ids start at the wall clock in ns; the HLC is already past
    ** every stored commit (range/ restores its high-water mark), and every
    ** row id ever handed out is below its row's commit timestamp, so
    ** seeding from the later of the two keeps ids unique across a restart
    ** even when the system clock stepped back. */
    int64_t hlc_wall = txn_read_timestamp(t).wall_ns;
    if (hlc_wall > 0 && (uint64_t)hlc_wall > atomic_load(&e->next_row_id))
        atomic_store(&e->next_row_id, (uint64_t)hlc_wall);
    if (txn_scan(t, start.data, start.len, end.data, end.len, false, &it, &err) != TXN_OK)
        goto cleanup;
    for (;;) {
        const uint8_t *k, *v;
        size_t kl, vl;
        n = txn_iter_next(it, &k, &kl, &v, &vl, &err);
        if (n < 0) goto cleanup;
        if (n == 0) break;
        if (e->ntables >= SQLV__TABLES_MAX) break;
        if (vl < 5 || v[0] != SQLV__CATALOG_FORMAT_VERSION) {
            BASE_ERROR(MOD, "catalog: malformed entry skipped");
            continue;
        }
        uint32_t id = (uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 8 | v[4];
        char *sql = base_strndup((const char *)v + 5, vl - 5);
        sqlv__table *tab = NULL;
        char state[6], msg[256];
        if (sql == NULL) {
            rc = SQLV_ERR_NOMEM;
            goto cleanup;
        }
        int prc = sqlv__table_parse(sql, id, &tab, NULL, state, msg, sizeof(msg));
        base_free(sql);
        if (prc < 0) {
            rc = prc;
            goto cleanup;
        }
        if (prc > 0) {
            BASE_ERROR(MOD, "catalog: table %u does not parse: %s", id, msg);
            continue;
        }
        if (add_table(e, tab) != 0) {
            sqlv__table_free(tab);
            rc = SQLV_ERR_NOMEM;
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    if (it) txn_iter_close(it);
    if (t) txn_rollback(t);
    if (rc != 0 && err.message[0]) BASE_ERROR(MOD, "catalog load: %s", err.message);
    base_buf_free(&start);
    base_buf_free(&end);
    return rc;
}

int sqlv_engine_open(txn_db *db, sqlv_engine **out) {
    sqlv_engine *e = base_calloc(1, sizeof(*e));
    int rc;
    if (e == NULL) return SQLV_ERR_NOMEM;
    e->db = db;
    pthread_mutex_init(&e->mu, NULL);
    atomic_store(&e->next_row_id, (uint64_t)base_realtime_ns());
    rc = load_catalog(e);
    if (rc != 0) {
        sqlv_engine_close(e);
        return rc;
    }
    BASE_INFO(MOD, "engine open: %d tables in the catalog", e->ntables);
    *out = e;
    return 0;
}

void sqlv_engine_close(sqlv_engine *e) {
    if (e == NULL) return;
    for (int i = 0; i < e->ntables; i++)
        sqlv__table_free(e->tables[i]);
    base_free(e->tables);
    pthread_mutex_destroy(&e->mu);
    base_free(e);
}

uint64_t sqlv__engine_version(sqlv_engine *e) {
    pthread_mutex_lock(&e->mu);
    uint64_t v = e->version;
    pthread_mutex_unlock(&e->mu);
    return v;
}

uint64_t sqlv__engine_row_id(sqlv_engine *e) { return atomic_fetch_add(&e->next_row_id, 1); }

void sqlv__catalog_list_free(sqlv__catalog_entry *list, int n) {
    if (list == NULL) return;
    for (int i = 0; i < n; i++)
        base_free(list[i].name);
    base_free(list);
}

int sqlv__engine_list(sqlv_engine *e, sqlv__catalog_entry **out, int *n, uint64_t *version) {
    int rc = 0;
    pthread_mutex_lock(&e->mu);
    sqlv__catalog_entry *l = base_calloc((size_t)(e->ntables ? e->ntables : 1), sizeof(*l));
    if (l == NULL) {
        rc = SQLV_ERR_NOMEM;
        goto cleanup;
    }
    for (int i = 0; i < e->ntables; i++) {
        l[i].id = e->tables[i]->id;
        l[i].name = base_strdup(e->tables[i]->name);
        if (l[i].name == NULL) {
            sqlv__catalog_list_free(l, i);
            rc = SQLV_ERR_NOMEM;
            goto cleanup;
        }
    }
    *out = l;
    *n = e->ntables;
    *version = e->version;
cleanup:
    pthread_mutex_unlock(&e->mu);
    return rc;
}

int sqlv__engine_table(sqlv_engine *e, uint32_t id, sqlv__table **out) {
    int rc = 1;
    pthread_mutex_lock(&e->mu);
    for (int i = 0; i < e->ntables; i++) {
        if (e->tables[i]->id == id) {
            rc = sqlv__table_clone(e->tables[i], out);
            break;
        }
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
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
        next = 0;
        for (int i = 0; i < 8; i++)
            next = next << 8 | nval.data[i];
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
    for (int i = 0; i < 8; i++)
        nb[i] = (uint8_t)((next + 1) >> (56 - 8 * i));
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

int sqlv__catalog_put(txn *kv, const sqlv__table *t, sqlv__result *res) {
    txn_error err = {{0}, {0}};
    base_buf ckey = {0}, cval = {0};
    int rc = SQLV_ERR_NOMEM;
    if (catalog_key(&ckey, t->name) != 0) goto cleanup;
    if (base_buf_append_byte(&cval, SQLV__CATALOG_FORMAT_VERSION) != 0) goto cleanup;
    uint32_t id = t->id;
    uint8_t idb[4] = {(uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id};
    if (base_buf_append(&cval, idb, 4) != 0 ||
        base_buf_append(&cval, t->create_sql, strlen(t->create_sql)) != 0)
        goto cleanup;
    rc = txn_put(kv, ckey.data, ckey.len, cval.data, cval.len, &err);
    if (rc != TXN_OK) txn_fail(res, rc, &err);
    rc = 0;
cleanup:
    base_buf_free(&ckey);
    base_buf_free(&cval);
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
    txn_error err = {{0}, {0}};
    /* under e->mu: serialized with implicit DDL, which bumps the counter
    ** under the same mutex, so the two never conflict */
    pthread_mutex_lock(&e->mu);
    int rc = txn_begin(e->db, NULL, &kv);
    if (rc != TXN_OK) {
        txn_fail(res, rc, &err);
        rc = 0;
        goto cleanup;
    }
    rc = counter_next(kv, id, res);
    if (rc != 0 || res->sqlstate[0]) goto cleanup;
    rc = txn_commit(kv, NULL, &err);
    kv = NULL;
    if (rc != TXN_OK) txn_fail(res, rc, &err);
    rc = 0;
cleanup:
    if (kv) txn_rollback(kv);
    pthread_mutex_unlock(&e->mu);
    return rc;
}

int sqlv__catalog_drop(txn *kv, const char *name, uint32_t id, sqlv__result *res) {
    txn_error err = {{0}, {0}};
    base_buf ck = {0}, s = {0}, en = {0};
    int rc = catalog_key(&ck, name);
    if (rc == 0) rc = sqlv__table_span(id, &s, &en);
    if (rc == 0) {
        rc = txn_delete(kv, ck.data, ck.len, &err);
        if (rc == TXN_OK) rc = txn_delete_range(kv, s.data, s.len, en.data, en.len, &err);
        if (rc != TXN_OK) txn_fail(res, rc, &err);
        rc = 0;
    }
    base_buf_free(&ck);
    base_buf_free(&s);
    base_buf_free(&en);
    return rc;
}

uint32_t sqlv__engine_find(sqlv_engine *e, const char *name) {
    pthread_mutex_lock(&e->mu);
    int k = find_table(e, name);
    uint32_t id = k >= 0 ? e->tables[k]->id : 0;
    pthread_mutex_unlock(&e->mu);
    return id;
}

void sqlv__pending_ddl_clear(sqlv__pending_ddl *p) {
    for (int i = 0; i < p->ncreated; i++)
        sqlv__table_free(p->created[i]);
    base_free(p->created);
    base_free(p->dropped);
    memset(p, 0, sizeof(*p));
}

int sqlv__engine_commit_ddl(sqlv_engine *e, txn *kv, sqlv__pending_ddl *p, txn_error *err) {
    pthread_mutex_lock(&e->mu);
    /* Room for the new descriptors before the commit: after it, applying
    ** the change to the cache must not fail. */
    if (reserve_tables(e, p->ncreated) != 0) {
        pthread_mutex_unlock(&e->mu);
        txn_rollback(kv);
        txn_error_set(err, TXN_ERR_NOMEM);
        return TXN_ERR_NOMEM;
    }
    if (e->ntables + p->ncreated - p->ndropped > SQLV__TABLES_MAX) {
        pthread_mutex_unlock(&e->mu);
        txn_rollback(kv);
        base_strlcpy(err->sqlstate, "54000", sizeof(err->sqlstate));
        snprintf(err->message, sizeof(err->message), "too many tables (maximum %d)",
                 SQLV__TABLES_MAX);
        return TXN_ERR_LIMIT;
    }
    int rc = txn_commit(kv, NULL, err);
    if (rc == TXN_OK) {
        for (int d = 0; d < p->ndropped; d++) {
            for (int i = 0; i < e->ntables; i++) {
                if (e->tables[i]->id != p->dropped[d]) continue;
                BASE_INFO(MOD, "dropped table %s (id %u)", e->tables[i]->name, e->tables[i]->id);
                sqlv__table_free(e->tables[i]);
                memmove(&e->tables[i], &e->tables[i + 1],
                        sizeof(e->tables[0]) * (size_t)(e->ntables - i - 1));
                e->ntables--;
                break;
            }
        }
        for (int i = 0; i < p->ncreated; i++) {
            BASE_INFO(MOD, "created table %s (id %u)", p->created[i]->name, p->created[i]->id);
            e->tables[e->ntables++] = p->created[i];
        }
        p->ncreated = 0;
        e->version++;
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

int sqlv__engine_create_table(sqlv_engine *e, const char *sql, sqlv__result *res) {
    sqlv__table *t = NULL;
    bool ine = false;
    txn *kv = NULL;
    txn_error err = {{0}, {0}};
    int rc;
    memset(res, 0, sizeof(*res));
    rc = sqlv__table_parse(sql, 0, &t, &ine, res->sqlstate, res->message, sizeof(res->message));
    if (rc != 0) return rc < 0 ? rc : 0;
    pthread_mutex_lock(&e->mu);
    if (find_table(e, t->name) >= 0) {
        if (ine) {
            snprintf(res->notice, sizeof(res->notice), "relation \"%s\" already exists, skipping",
                     t->name);
        } else {
            base_strlcpy(res->sqlstate, "42P07", sizeof(res->sqlstate));
            snprintf(res->message, sizeof(res->message), "relation \"%s\" already exists", t->name);
        }
        rc = 0;
        goto cleanup;
    }
    if (e->ntables >= SQLV__TABLES_MAX) {
        base_strlcpy(res->sqlstate, "54000", sizeof(res->sqlstate));
        snprintf(res->message, sizeof(res->message), "too many tables");
        rc = 0;
        goto cleanup;
    }
    rc = txn_begin(e->db, NULL, &kv);
    if (rc != TXN_OK) {
        txn_fail(res, rc, &err);
        kv = NULL;
        rc = 0;
        goto cleanup;
    }
    rc = sqlv__catalog_create(kv, t, res);
    if (rc != 0 || res->sqlstate[0]) goto cleanup;
    /* Room in the cache first: once committed, adding must not fail. */
    rc = reserve_tables(e, 1);
    if (rc != 0) goto cleanup;
    rc = txn_commit(kv, NULL, &err);
    kv = NULL;
    if (rc != TXN_OK) {
        txn_fail(res, rc, &err);
        rc = 0;
        goto cleanup;
    }
    rc = add_table(e, t); /* cannot fail: reserved */
    if (rc == 0) t = NULL;
    BASE_INFO(MOD, "created table %s", sql);
cleanup:
    if (kv) txn_rollback(kv);
    pthread_mutex_unlock(&e->mu);
    sqlv__table_free(t);
    return rc;
}

int sqlv__engine_drop_tables(sqlv_engine *e, char **names, int n, bool if_exists,
                             sqlv__result *res) {
    txn *kv = NULL;
    txn_error err = {{0}, {0}};
    int rc = 0;
    int *idx = NULL;
    int nidx = 0;
    memset(res, 0, sizeof(*res));
    pthread_mutex_lock(&e->mu);
    idx = base_calloc((size_t)(n ? n : 1), sizeof(int));
    if (idx == NULL) {
        rc = SQLV_ERR_NOMEM;
        goto cleanup;
    }
    for (int i = 0; i < n; i++) {
        int k = find_table(e, names[i]);
        if (k < 0) {
            if (if_exists) {
                snprintf(res->notice, sizeof(res->notice), "table \"%s\" does not exist, skipping",
                         names[i]);
                continue;
            }
            base_strlcpy(res->sqlstate, "42P01", sizeof(res->sqlstate));
            snprintf(res->message, sizeof(res->message), "table \"%s\" does not exist", names[i]);
            goto cleanup;
        }
        bool dup = false;
        for (int j = 0; j < nidx; j++)
            dup |= idx[j] == k;
        if (!dup) idx[nidx++] = k;
    }
    if (nidx == 0) goto cleanup;
    rc = txn_begin(e->db, NULL, &kv);
    if (rc != TXN_OK) {
        kv = NULL;
        txn_fail(res, rc, &err);
        rc = 0;
        goto cleanup;
    }
    for (int j = 0; j < nidx; j++) {
        sqlv__table *t = e->tables[idx[j]];
        rc = sqlv__catalog_drop(kv, t->name, t->id, res);
        if (rc != 0 || res->sqlstate[0]) goto cleanup;
    }
    rc = txn_commit(kv, NULL, &err);
    kv = NULL;
    if (rc != TXN_OK) {
        txn_fail(res, rc, &err);
        rc = 0;
        goto cleanup;
    }
    /* Remove from the cache, highest index first so indexes stay valid. */
    for (int a = 0; a < nidx; a++)
        for (int b = a + 1; b < nidx; b++)
            if (idx[b] > idx[a]) {
                int tmp = idx[a];
                idx[a] = idx[b];
                idx[b] = tmp;
            }
    for (int j = 0; j < nidx; j++) {
        BASE_INFO(MOD, "dropped table %s (id %u)", e->tables[idx[j]]->name, e->tables[idx[j]]->id);
        sqlv__table_free(e->tables[idx[j]]);
        memmove(&e->tables[idx[j]], &e->tables[idx[j] + 1],
                sizeof(e->tables[0]) * (size_t)(e->ntables - idx[j] - 1));
        e->ntables--;
    }
    e->version++;
cleanup:
    if (kv) txn_rollback(kv);
    pthread_mutex_unlock(&e->mu);
    base_free(idx);
    return rc;
}
