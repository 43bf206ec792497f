/*
** SQL sessions: one client connection's SQLite connection and KV
** transaction, and the execution of simple-protocol query strings.
**
** Transaction model (docs/decisions/003-sql-on-sqlite-vtabs.md):
**   - SQLite never sees BEGIN/COMMIT/ROLLBACK: it stays in autocommit and
**     holds no data (its main database only declares the virtual tables).
**     The session intercepts those statements and drives the one KV
**     transaction (s->kv) that every virtual table of the session uses.
**   - status 'I': no block. Each statement runs in an implicit KV
**     transaction (read-only when sqlite3_stmt_readonly) that commits after
**     the statement's last row, or rolls back when it fails.
**   - status 'T': inside BEGIN. The KV transaction begins at the first
**     statement; each statement runs under a KV savepoint, rolled back if
**     the statement fails (statement atomicity), which moves to 'E'.
**   - status 'E': every statement but COMMIT/ROLLBACK fails with 25P02;
**     COMMIT ends the block with the tag ROLLBACK.
**   - a KV commit failure at COMMIT (40001...) goes to the client and the
**     session is back to 'I' with no transaction.
** Invariants:
**   - s->kv != NULL only while a statement runs in 'I', or in 'T'/'E'.
**   - after every statement sqlite3_get_autocommit(s->db) is true.
**   - every statement produces exactly one of: command_complete (maybe after
**     row_description/data_row), error. The string's first error stops it.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql_int.h"
#include "sql_lex.h"

#define MOD "sql"
#define PROGRESS_OPS 1000 /* VM steps between cancel checks */

/* Result of running one statement. STMT_RETRY: an implicit transaction
** failed to commit with 40001 before anything reached the sink; run it again. */
enum { STMT_OK = 0, STMT_FAILED = 1, STMT_RETRY = 2 };

/* Automatic retries of an implicit single-statement transaction that failed
** with 40001 and sent nothing yet (no result rows). */
#define IMPLICIT_RETRIES_MAX 5

typedef struct run {
    sqlv_session *s;
    const sqlv_sink *sink;
    int sink_rc; /* non-zero: the sink asked to stop */
} run;

void sqlv__session_error(sqlv_session *s, const char *sqlstate, const char *fmt, ...) {
    va_list ap;
    if (s->err_sqlstate[0]) return;
    base_strlcpy(s->err_sqlstate, sqlstate, sizeof(s->err_sqlstate));
    va_start(ap, fmt);
    vsnprintf(s->err_message, sizeof(s->err_message), fmt, ap);
    va_end(ap);
}

txn *sqlv__session_kv(sqlv_session *s) {
    if (s->kv == NULL) sqlv__session_error(s, "XX000", "no open transaction");
    return s->kv;
}

/* ---- sink helpers ------------------------------------------------------------------ */

static int emit_error(run *r, const char *state, const char *msg) {
    if (r->sink_rc == 0 && r->sink->error) r->sink_rc = r->sink->error(r->sink->ctx, state, msg);
    return STMT_FAILED;
}

static void emit_notice(run *r, const char *msg) {
    if (r->sink_rc == 0 && r->sink->notice) r->sink_rc = r->sink->notice(r->sink->ctx, msg);
}

static int emit_tag(run *r, const char *tag) {
    if (r->sink_rc == 0 && r->sink->command_complete)
        r->sink_rc = r->sink->command_complete(r->sink->ctx, tag);
    return STMT_OK;
}

/* A statement failed: the transaction state follows PostgreSQL. */
static int fail(run *r, const char *state, const char *msg) {
    sqlv_session *s = r->s;
    if (s->status == 'T') {
        s->status = 'E';
    } else if (s->status == 'I' && s->kv) {
        txn_rollback(s->kv);
        s->kv = NULL;
    }
    return emit_error(r, state, msg);
}

/* ---- SQLite connection setup -------------------------------------------------------- */

static void fn_version(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    sqlite3_result_text(
        ctx, "PostgreSQL 15.0 (Meridian 0.1, SQLite " SQLITE_VERSION ") on x86_64-pc-linux-gnu", -1,
        SQLITE_STATIC);
}

static void fn_current_database(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    (void)argc;
    (void)argv;
    sqlite3_result_text(ctx, s->database, -1, SQLITE_TRANSIENT);
}

static void fn_current_schema(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    sqlite3_result_text(ctx, "public", -1, SQLITE_STATIC);
}

/* SQLite's printf()/format() loop over a requested width even past the
** length limit (printf('%.*c', 2000000000, 'x') burns seconds of CPU that
** the progress handler cannot interrupt): replaced by an error. */
static void fn_refused(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    sqlite3_result_error(ctx, "not supported: printf() and format() (use || to concatenate)", -1);
}

static int progress(void *ctx) {
    sqlv_session *s = ctx;
    return atomic_load(&s->cancel) != 0;
}

/* Only statements the session lets through reach SQLite; this is a second
** fence against anything that would touch SQLite's own storage. */
static int authorizer(void *ctx, int action, const char *a, const char *b, const char *c,
                      const char *d) {
    (void)ctx;
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    switch (action) {
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
    case SQLITE_PRAGMA: return SQLITE_DENY;
    default: return SQLITE_OK;
    }
}

int sqlv_session_open(sqlv_engine *e, const char *user, const char *database, sqlv_session **out) {
    sqlv_session *s = base_calloc(1, sizeof(*s));
    int rc = SQLV_ERR_NOMEM;
    if (s == NULL) return SQLV_ERR_NOMEM;
    s->engine = e;
    s->status = 'I';
    s->user = base_strdup(user ? user : "root");
    s->database = base_strdup(database ? database : "defaultdb");
    if (s->user == NULL || s->database == NULL) goto fail;
    if (sqlite3_open_v2(":memory:", &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK)
        goto fail;
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DML, 0, NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
    if (sqlite3_exec(s->db, "PRAGMA case_sensitive_like = ON", NULL, NULL, NULL) != SQLITE_OK)
        goto internal;
    if (sqlv__module_register(s) != 0) goto internal;
    if (sqlite3_create_function(s->db, "version", 0, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                fn_version, NULL, NULL) != SQLITE_OK ||
        sqlite3_create_function(s->db, "current_database", 0, SQLITE_UTF8, s, fn_current_database,
                                NULL, NULL) != SQLITE_OK ||
        sqlite3_create_function(s->db, "current_schema", 0, SQLITE_UTF8, NULL, fn_current_schema,
                                NULL, NULL) != SQLITE_OK ||
        sqlite3_create_function(s->db, "printf", -1, SQLITE_UTF8, NULL, fn_refused, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_create_function(s->db, "format", -1, SQLITE_UTF8, NULL, fn_refused, NULL, NULL) !=
            SQLITE_OK)
        goto internal;
    /* Bound what one statement can make SQLite allocate for one value or
    ** statement text (printf('%.*c', 2000000000, 'x') and friends). */
    sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, SQLV__VALUE_BYTES_MAX);
    sqlite3_limit(s->db, SQLITE_LIMIT_SQL_LENGTH, SQLV__SQL_BYTES_MAX);
    sqlite3_progress_handler(s->db, PROGRESS_OPS, progress, s);
    sqlite3_set_authorizer(s->db, authorizer, s);
    *out = s;
    return 0;
internal:
    rc = SQLV_ERR_INTERNAL;
fail:
    sqlv_session_close(s);
    return rc;
}

void sqlv_session_close(sqlv_session *s) {
    if (s == NULL) return;
    if (s->kv) txn_rollback(s->kv);
    if (s->db) sqlite3_close_v2(s->db);
    sqlv__catalog_list_free(s->synced, s->nsynced);
    base_free(s->user);
    base_free(s->database);
    base_free(s);
}

char sqlv_session_status(const sqlv_session *s) { return s->status; }

void sqlv_session_cancel(sqlv_session *s) { atomic_store(&s->cancel, 1); }

/* Declare the catalog's tables as virtual tables in the session's
** connection, if the catalog changed since the last time. s->synced lists
** exactly what is declared; a failure (out of memory) leaves the sync
** incomplete and it is retried before the next statement. */
static int sync_tables(sqlv_session *s) {
    sqlv__catalog_entry *list = NULL, *now = NULL;
    int n = 0, nnow = 0, rc;
    uint64_t version;
    bool complete = true;
    if (s->sync_complete && sqlv__engine_version(s->engine) == s->synced_version) return 0;
    rc = sqlv__engine_list(s->engine, &list, &n, &version);
    if (rc != 0) return rc;
    now = base_calloc((size_t)(n + s->nsynced + 1), sizeof(*now));
    if (now == NULL) {
        sqlv__catalog_list_free(list, n);
        return SQLV_ERR_NOMEM;
    }
    sqlite3_set_authorizer(s->db, NULL, NULL);
    for (int i = 0; i < s->nsynced; i++) {
        bool keep = false;
        for (int j = 0; j < n && !keep; j++)
            keep = list[j].id == s->synced[i].id && strcmp(list[j].name, s->synced[i].name) == 0;
        if (!keep) {
            char *q = sqlite3_mprintf("DROP TABLE IF EXISTS main.\"%w\"", s->synced[i].name);
            if (q != NULL && sqlite3_exec(s->db, q, NULL, NULL, NULL) == SQLITE_OK) {
                sqlite3_free(q);
                continue; /* undeclared: leaves the list */
            }
            BASE_WARN(MOD, "session: cannot undeclare %s: %s", s->synced[i].name,
                      sqlite3_errmsg(s->db));
            sqlite3_free(q);
            complete = false;
        }
        now[nnow++] = s->synced[i]; /* still declared: moves to the new list */
        s->synced[i].name = NULL;
    }
    for (int j = 0; j < n; j++) {
        bool have = false;
        for (int i = 0; i < nnow && !have; i++)
            have = list[j].id == now[i].id && strcmp(list[j].name, now[i].name) == 0;
        if (have) continue;
        char *q = sqlite3_mprintf("CREATE VIRTUAL TABLE main.\"%w\" USING meridian(%u)",
                                  list[j].name, list[j].id);
        if (q != NULL && sqlite3_exec(s->db, q, NULL, NULL, NULL) == SQLITE_OK) {
            now[nnow++] = list[j];
            list[j].name = NULL;
        } else {
            BASE_WARN(MOD, "session: cannot declare %s: %s", list[j].name, sqlite3_errmsg(s->db));
            complete = false;
        }
        sqlite3_free(q);
    }
    sqlite3_set_authorizer(s->db, authorizer, s);
    sqlv__catalog_list_free(list, n);
    sqlv__catalog_list_free(s->synced, s->nsynced);
    s->synced = now;
    s->nsynced = nnow;
    s->synced_version = version;
    s->sync_complete = complete;
    return 0;
}

/* ---- errors ------------------------------------------------------------------------ */

/* Map an SQLite error (and the module's recorded one) to SQLSTATE+message. */
static void map_error(sqlv_session *s, int rc, char state[6], char *msg, size_t size) {
    const char *m = sqlite3_errmsg(s->db);
    if (s->err_sqlstate[0]) {
        base_strlcpy(state, s->err_sqlstate, 6);
        base_strlcpy(msg, s->err_message, size);
        return;
    }
    if ((rc & 0xff) == SQLITE_INTERRUPT || atomic_load(&s->cancel)) {
        base_strlcpy(state, "57014", 6);
        base_strlcpy(msg, "canceling statement due to user request", size);
        return;
    }
    if (strncmp(m, "no such table: ", 15) == 0) {
        const char *name = m + 15;
        if (strncmp(name, "main.", 5) == 0) name += 5;
        base_strlcpy(state, "42P01", 6);
        snprintf(msg, size, "relation \"%s\" does not exist", name);
        return;
    }
    if (strncmp(m, "no such column: ", 16) == 0) {
        base_strlcpy(state, "42703", 6);
        snprintf(msg, size, "column \"%s\" does not exist", m + 16);
        return;
    }
    if (strncmp(m, "no such function: ", 18) == 0) {
        base_strlcpy(state, "42883", 6);
        snprintf(msg, size, "function %s() does not exist", m + 18);
        return;
    }
    if (strstr(m, "syntax error") || strstr(m, "incomplete input") ||
        strstr(m, "unrecognized token") || strstr(m, "near \"")) {
        base_strlcpy(state, "42601", 6);
        base_strlcpy(msg, m, size);
        return;
    }
    if (strstr(m, "values were supplied") || strstr(m, " values for ")) {
        base_strlcpy(state, "42601", 6);
        base_strlcpy(msg, m, size);
        return;
    }
    if (strstr(m, "ambiguous column name")) {
        base_strlcpy(state, "42702", 6);
        base_strlcpy(msg, m, size);
        return;
    }
    if (strstr(m, "not authorized") || strstr(m, "not supported") || strstr(m, "may not be") ||
        strstr(m, "not available") || strstr(m, "not implemented") || strstr(m, "cannot ")) {
        base_strlcpy(state, "0A000", 6);
        base_strlcpy(msg, m, size);
        return;
    }
    if ((rc & 0xff) == SQLITE_TOOBIG) {
        base_strlcpy(state, "54000", 6);
        base_strlcpy(msg, m, size);
        return;
    }
    if ((rc & 0xff) == SQLITE_NOMEM) {
        base_strlcpy(state, "53200", 6);
        base_strlcpy(msg, "out of memory", size);
        return;
    }
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        base_strlcpy(state, "23000", 6);
        base_strlcpy(msg, m, size);
        return;
    }
    if ((rc & 0xff) == SQLITE_MISMATCH || (rc & 0xff) == SQLITE_RANGE) {
        base_strlcpy(state, "22023", 6);
        base_strlcpy(msg, m, size);
        return;
    }
    base_strlcpy(state, "XX000", 6);
    base_strlcpy(msg, m, size);
}

static int fail_txn(run *r, int rc, txn_error *err) {
    txn_error_set(err, rc);
    return fail(r, err->sqlstate[0] ? err->sqlstate : "XX000",
                err->message[0] ? err->message : "transaction error");
}

/* ---- statements handled by the session ------------------------------------------------ */

static int do_begin(run *r) {
    sqlv_session *s = r->s;
    if (s->status != 'I') {
        emit_notice(r, "there is already a transaction in progress");
        return emit_tag(r, "BEGIN");
    }
    if (s->kv) { /* cannot happen: 'I' holds no transaction between statements */
        txn_rollback(s->kv);
        s->kv = NULL;
    }
    s->status = 'T';
    return emit_tag(r, "BEGIN");
}

static int do_commit(run *r) {
    sqlv_session *s = r->s;
    txn_error err = {{0}, {0}};
    if (s->status == 'I') {
        emit_notice(r, "there is no transaction in progress");
        return emit_tag(r, "COMMIT");
    }
    if (s->status == 'E') {
        if (s->kv) txn_rollback(s->kv);
        s->kv = NULL;
        s->status = 'I';
        return emit_tag(r, "ROLLBACK");
    }
    s->status = 'I';
    if (s->kv) {
        txn *kv = s->kv;
        s->kv = NULL;
        int rc = txn_commit(kv, NULL, &err);
        if (rc != TXN_OK) return fail_txn(r, rc, &err);
    }
    return emit_tag(r, "COMMIT");
}

static int do_rollback(run *r) {
    sqlv_session *s = r->s;
    if (s->status == 'I') {
        emit_notice(r, "there is no transaction in progress");
        return emit_tag(r, "ROLLBACK");
    }
    if (s->kv) txn_rollback(s->kv);
    s->kv = NULL;
    s->status = 'I';
    return emit_tag(r, "ROLLBACK");
}

static int do_show(run *r, const char *p, const char *end) {
    static const char *const params[][2] = {
        {"server_version", "15.0"},
        {"server_encoding", "UTF8"},
        {"client_encoding", "UTF8"},
        {"transaction_isolation", "serializable"},
        {"default_transaction_isolation", "serializable"},
        {"standard_conforming_strings", "on"},
        {"datestyle", "ISO, MDY"},
        {"timezone", "UTC"},
        {"integer_datetimes", "on"},
        {"search_path", "public"},
        {"application_name", ""},
        {"is_superuser", "on"},
        {"max_identifier_length", "63"},
    };
    char name[64], msg[160];
    sqlv__token t = sqlv__lex_next(&p, end);
    if (sqlv__tok_ident(&t, name, sizeof(name)) != 0)
        return fail(r, "42601", "syntax error at end of input");
    sqlv__token rest = sqlv__lex_next(&p, end);
    if (rest.kind != SQLV__TOK_END) return fail(r, "42601", "syntax error in SHOW");
    if (sqlv__tok_is(&t, "TRANSACTION")) {
        base_strlcpy(name, "transaction_isolation",
                     sizeof(name)); /* SHOW TRANSACTION ISOLATION LEVEL */
    }
    for (size_t i = 0; i < BASE_ARRAY_LEN(params); i++) {
        if (strcasecmp(name, params[i][0]) != 0) continue;
        sqlv_column col = {params[i][0], SQLV_OID_TEXT, -1};
        sqlv_cell cell = {params[i][1], strlen(params[i][1])};
        if (r->sink_rc == 0 && r->sink->row_description)
            r->sink_rc = r->sink->row_description(r->sink->ctx, 1, &col);
        if (r->sink_rc == 0 && r->sink->data_row)
            r->sink_rc = r->sink->data_row(r->sink->ctx, 1, &cell);
        return emit_tag(r, "SHOW");
    }
    snprintf(msg, sizeof(msg), "unrecognized configuration parameter \"%s\"", name);
    return fail(r, "42704", msg);
}

static int do_create_table(run *r, const char *text, size_t len) {
    sqlv__result res;
    char *sql;
    int rc;
    if (r->s->status == 'T')
        return fail(r, "25001", "CREATE TABLE cannot run inside a transaction block");
    sql = base_strndup(text, len);
    if (sql == NULL) return fail(r, "53200", "out of memory");
    rc = sqlv__engine_create_table(r->s->engine, sql, &res);
    base_free(sql);
    if (rc < 0) return fail(r, "XX000", "internal error in CREATE TABLE");
    if (res.sqlstate[0]) return fail(r, res.sqlstate, res.message);
    if (res.notice[0]) emit_notice(r, res.notice);
    return emit_tag(r, "CREATE TABLE");
}

#define DROP_NAMES_MAX 64

static int do_drop_table(run *r, const char *p, const char *end) {
    char *names[DROP_NAMES_MAX];
    char buf[DROP_NAMES_MAX][SQLV__NAME_BYTES_MAX * 4 + 1];
    int n = 0;
    bool if_exists = false;
    sqlv__result res;
    if (r->s->status == 'T')
        return fail(r, "25001", "DROP TABLE cannot run inside a transaction block");
    sqlv__token t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "IF")) {
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "EXISTS")) return fail(r, "42601", "syntax error in DROP TABLE");
        if_exists = true;
        t = sqlv__lex_next(&p, end);
    }
    for (;;) {
        if (n == DROP_NAMES_MAX) return fail(r, "54000", "too many tables in DROP TABLE");
        if (sqlv__tok_ident(&t, buf[n], sizeof(buf[n])) != 0)
            return fail(r, "42601", "syntax error in DROP TABLE");
        names[n] = buf[n];
        n++;
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_punct(&t, '.'))
            return fail(r, "0A000", "schema-qualified table names are not supported yet");
        if (!sqlv__tok_punct(&t, ',')) break;
        t = sqlv__lex_next(&p, end);
    }
    if (sqlv__tok_is(&t, "CASCADE") || sqlv__tok_is(&t, "RESTRICT")) t = sqlv__lex_next(&p, end);
    if (t.kind != SQLV__TOK_END) return fail(r, "42601", "syntax error in DROP TABLE");
    int rc = sqlv__engine_drop_tables(r->s->engine, names, n, if_exists, &res);
    if (rc < 0) return fail(r, "XX000", "internal error in DROP TABLE");
    if (res.sqlstate[0]) return fail(r, res.sqlstate, res.message);
    if (res.notice[0]) emit_notice(r, res.notice);
    return emit_tag(r, "DROP TABLE");
}

/* ---- statements run by SQLite ------------------------------------------------------------ */

typedef enum { KIND_SELECT, KIND_INSERT, KIND_UPDATE, KIND_DELETE } stmt_kind;

static stmt_kind kind_of(const char *p, const char *end) {
    int depth = 0;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "INSERT") || sqlv__tok_is(&t, "REPLACE")) return KIND_INSERT;
    if (sqlv__tok_is(&t, "UPDATE")) return KIND_UPDATE;
    if (sqlv__tok_is(&t, "DELETE")) return KIND_DELETE;
    if (!sqlv__tok_is(&t, "WITH")) return KIND_SELECT;
    /* WITH ...: the first INSERT/UPDATE/DELETE outside parentheses. */
    for (int guard = 0; guard < 100000; guard++) {
        t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        if (sqlv__tok_punct(&t, '(')) depth++;
        if (sqlv__tok_punct(&t, ')')) depth--;
        if (depth != 0) continue;
        if (sqlv__tok_is(&t, "INSERT") || sqlv__tok_is(&t, "REPLACE")) return KIND_INSERT;
        if (sqlv__tok_is(&t, "UPDATE")) return KIND_UPDATE;
        if (sqlv__tok_is(&t, "DELETE")) return KIND_DELETE;
    }
    return KIND_SELECT;
}

static int16_t oid_size(uint32_t oid) {
    switch (oid) {
    case SQLV_OID_BOOL: return 1;
    case SQLV_OID_INT2: return 2;
    case SQLV_OID_INT4: return 4;
    case SQLV_OID_INT8:
    case SQLV_OID_FLOAT8: return 8;
    default: return -1;
    }
}

static uint32_t value_oid(int type) {
    switch (type) {
    case SQLITE_INTEGER: return SQLV_OID_INT8;
    case SQLITE_FLOAT: return SQLV_OID_FLOAT8;
    case SQLITE_BLOB: return SQLV_OID_BYTEA;
    default: return SQLV_OID_TEXT;
    }
}

static int describe(run *r, sqlite3_stmt *st, bool have_row, uint32_t *oids) {
    int n = sqlite3_column_count(st);
    sqlv_column *cols = base_calloc((size_t)n, sizeof(*cols));
    if (cols == NULL) return -1;
    for (int i = 0; i < n; i++) {
        const char *decl = sqlite3_column_decltype(st, i);
        if (decl) {
            oids[i] = sqlv__class_oid(sqlv__class_of_decl(decl));
        } else {
            oids[i] = have_row ? value_oid(sqlite3_column_type(st, i)) : SQLV_OID_TEXT;
        }
        cols[i].name = sqlite3_column_name(st, i);
        if (cols[i].name == NULL) cols[i].name = "?column?";
        cols[i].type_oid = oids[i];
        cols[i].type_size = oid_size(oids[i]);
    }
    if (r->sink_rc == 0 && r->sink->row_description)
        r->sink_rc = r->sink->row_description(r->sink->ctx, n, cols);
    base_free(cols);
    return 0;
}

static int send_row(run *r, sqlite3_stmt *st, const uint32_t *oids, base_buf *buf, sqlv_cell *cells,
                    size_t *offs) {
    int n = sqlite3_column_count(st);
    base_buf_reset(buf);
    for (int i = 0; i < n; i++) {
        bool is_null;
        offs[i] = buf->len;
        if (sqlv__format_value(st, i, oids[i], buf, &is_null) != 0) return -1;
        cells[i].data = is_null ? NULL : (const char *)(uintptr_t)1; /* fixed below */
        cells[i].len = buf->len - offs[i];
    }
    for (int i = 0; i < n; i++)
        if (cells[i].data) cells[i].data = buf->data ? (const char *)buf->data + offs[i] : "";
    if (r->sink_rc == 0 && r->sink->data_row)
        r->sink_rc = r->sink->data_row(r->sink->ctx, n, cells);
    return 0;
}

static int run_sqlite(run *r, const char *text, size_t len, bool may_retry) {
    sqlv_session *s = r->s;
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    char state[6], msg[600], tag[64];
    int rc, result = STMT_OK;
    uint32_t sp = 0;
    bool have_sp = false;
    uint32_t *oids = NULL;
    sqlv_cell *cells = NULL;
    size_t *offs = NULL;
    base_buf buf = {0};
    uint64_t rows = 0;
    txn_error err = {{0}, {0}};

    if (sync_tables(s) != 0) return fail(r, "53200", "out of memory");
    s->err_sqlstate[0] = 0;
    s->err_message[0] = 0;
    if (len > (size_t)INT32_MAX) return fail(r, "54000", "statement too long");
    rc = sqlite3_prepare_v2(s->db, text, (int)len, &st, &tail);
    if (rc != SQLITE_OK) {
        map_error(s, rc, state, msg, sizeof(msg));
        return fail(r, state, msg);
    }
    if (st == NULL) return emit_tag(r, "SELECT 0"); /* only comments */
    if (tail && sqlv__lex_skip_space(tail, text + len) != text + len) {
        sqlite3_finalize(st);
        return fail(r, "42601", "syntax error: more than one statement");
    }
    /* The KV transaction. */
    if (s->kv == NULL) {
        txn_options o = {.read_only = s->status == 'I' && sqlite3_stmt_readonly(st)};
        rc = txn_begin(s->engine->db, &o, &s->kv);
        if (rc != TXN_OK) {
            s->kv = NULL;
            sqlite3_finalize(st);
            return fail_txn(r, rc, &err);
        }
        s->kv_read_only = o.read_only;
    }
    if (s->status == 'T') {
        /* Statement atomicity inside a block: no savepoint, no statement. */
        rc = txn_savepoint(s->kv, &sp);
        if (rc != TXN_OK) {
            sqlite3_finalize(st);
            return fail_txn(r, rc, &err);
        }
        have_sp = true;
    }
    int ncols = sqlite3_column_count(st);
    if (ncols > 0) {
        oids = base_calloc((size_t)ncols, sizeof(*oids));
        cells = base_calloc((size_t)ncols, sizeof(*cells));
        offs = base_calloc((size_t)ncols, sizeof(*offs));
        if (oids == NULL || cells == NULL || offs == NULL) {
            result = fail(r, "53200", "out of memory");
            goto cleanup;
        }
    }
    rc = sqlite3_step(st);
    if (ncols > 0 && (rc == SQLITE_ROW || rc == SQLITE_DONE)) {
        if (describe(r, st, rc == SQLITE_ROW, oids) != 0) {
            result = fail(r, "53200", "out of memory");
            goto cleanup;
        }
    }
    while (rc == SQLITE_ROW && r->sink_rc == 0) {
        rows++;
        if (send_row(r, st, oids, &buf, cells, offs) != 0) {
            result = fail(r, "53200", "out of memory");
            goto cleanup;
        }
        rc = sqlite3_step(st);
    }
    if (r->sink_rc != 0) {
        result = fail(r, "57014", "client gone");
        goto cleanup;
    }
    if (rc != SQLITE_DONE) {
        map_error(s, rc, state, msg, sizeof(msg));
        sqlite3_finalize(st);
        st = NULL;
        if (have_sp && s->kv) txn_rollback_to(s->kv, sp);
        have_sp = false;
        result = fail(r, state, msg);
        goto cleanup;
    }
    switch (kind_of(text, text + len)) {
    case KIND_INSERT:
        snprintf(tag, sizeof(tag), "INSERT 0 %lld", (long long)sqlite3_changes64(s->db));
        break;
    case KIND_UPDATE:
        snprintf(tag, sizeof(tag), "UPDATE %lld", (long long)sqlite3_changes64(s->db));
        break;
    case KIND_DELETE:
        snprintf(tag, sizeof(tag), "DELETE %lld", (long long)sqlite3_changes64(s->db));
        break;
    default: snprintf(tag, sizeof(tag), "SELECT %llu", (unsigned long long)rows); break;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (have_sp) {
        txn_release(s->kv, sp);
        have_sp = false;
    }
    if (s->status == 'I' && s->kv) {
        txn *kv = s->kv;
        s->kv = NULL;
        rc = txn_commit(kv, NULL, &err);
        if (rc == TXN_ERR_RETRY && may_retry && ncols == 0) {
            result = STMT_RETRY;
            goto cleanup;
        }
        if (rc != TXN_OK) {
            result = fail_txn(r, rc, &err);
            goto cleanup;
        }
    }
    result = emit_tag(r, tag);
cleanup:
    if (st) sqlite3_finalize(st);
    if (have_sp && s->kv) txn_rollback_to(s->kv, sp);
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    base_free(oids);
    base_free(cells);
    base_free(offs);
    base_buf_free(&buf);
    return result;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static int run_statement(run *r, const char *text, size_t len) {
    sqlv_session *s = r->s;
    const char *p = text, *end = text + len;
    char msg[160];
    sqlv__token t = sqlv__lex_next(&p, end);
    const char *after_first = p;
    sqlv__token t2 = sqlv__lex_next(&p, end);
    const char *after_second = p;

    if (sqlv__tok_is(&t, "BEGIN") ||
        (sqlv__tok_is(&t, "START") && sqlv__tok_is(&t2, "TRANSACTION")))
        return s->status == 'E' ? emit_error(r, "25P02",
                                             "current transaction is aborted, commands ignored "
                                             "until end of transaction block")
                                : do_begin(r);
    if (sqlv__tok_is(&t, "COMMIT") || sqlv__tok_is(&t, "END")) return do_commit(r);
    if (sqlv__tok_is(&t, "ROLLBACK") || sqlv__tok_is(&t, "ABORT")) {
        sqlv__token t3 = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&t2, "TO") ||
            ((sqlv__tok_is(&t2, "WORK") || sqlv__tok_is(&t2, "TRANSACTION")) &&
             sqlv__tok_is(&t3, "TO")))
            return fail(r, "0A000", "ROLLBACK TO SAVEPOINT is not supported yet");
        return do_rollback(r);
    }
    if (s->status == 'E')
        return emit_error(r, "25P02",
                          "current transaction is aborted, commands ignored until end of "
                          "transaction block");
    if (sqlv__tok_is(&t, "SAVEPOINT") || sqlv__tok_is(&t, "RELEASE"))
        return fail(r, "0A000", "SAVEPOINT is not supported yet");
    if (sqlv__tok_is(&t, "SET") || sqlv__tok_is(&t, "RESET"))
        return emit_tag(r, sqlv__tok_is(&t, "SET") ? "SET" : "RESET");
    if (sqlv__tok_is(&t, "SHOW")) return do_show(r, after_first, end);
    if (sqlv__tok_is(&t, "CREATE")) {
        if (sqlv__tok_is(&t2, "TABLE") || sqlv__tok_is(&t2, "TEMP") ||
            sqlv__tok_is(&t2, "TEMPORARY") || sqlv__tok_is(&t2, "UNLOGGED"))
            return do_create_table(r, text, len);
        snprintf(msg, sizeof(msg), "CREATE %.*s is not supported yet", (int)BASE_MIN(t2.len, 40),
                 t2.start ? t2.start : "");
        return fail(r, "0A000", msg);
    }
    if (sqlv__tok_is(&t, "DROP")) {
        if (sqlv__tok_is(&t2, "TABLE")) return do_drop_table(r, after_second, end);
        snprintf(msg, sizeof(msg), "DROP %.*s is not supported yet", (int)BASE_MIN(t2.len, 40),
                 t2.start ? t2.start : "");
        return fail(r, "0A000", msg);
    }
    if (sqlv__tok_is(&t, "SELECT") || sqlv__tok_is(&t, "INSERT") || sqlv__tok_is(&t, "UPDATE") ||
        sqlv__tok_is(&t, "DELETE") || sqlv__tok_is(&t, "WITH") || sqlv__tok_is(&t, "VALUES") ||
        sqlv__tok_is(&t, "REPLACE") || sqlv__tok_is(&t, "EXPLAIN") || sqlv__tok_punct(&t, '(')) {
        int rc = STMT_RETRY;
        for (int attempt = 0; rc == STMT_RETRY; attempt++) {
            if (attempt > 0) BASE_DEBUG(MOD, "retrying implicit transaction (attempt %d)", attempt);
            rc = run_sqlite(r, text, len, s->status == 'I' && attempt < IMPLICIT_RETRIES_MAX);
        }
        return rc;
    }
    static const char *const unsupported[] = {
        "ALTER",    "PRAGMA",     "ATTACH",  "DETACH", "VACUUM", "ANALYZE", "REINDEX",
        "TRUNCATE", "COPY",       "GRANT",   "REVOKE", "LISTEN", "NOTIFY",  "PREPARE",
        "EXECUTE",  "DEALLOCATE", "DECLARE", "FETCH",  "CLOSE",  "LOCK",    "COMMENT",
        "DISCARD",  "CHECKPOINT", "CALL",    "DO"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(unsupported); i++) {
        if (sqlv__tok_is(&t, unsupported[i])) {
            snprintf(msg, sizeof(msg), "%s is not supported yet", unsupported[i]);
            return fail(r, "0A000", msg);
        }
    }
    if (t.len == 0)
        snprintf(msg, sizeof(msg), "syntax error at end of input");
    else
        snprintf(msg, sizeof(msg), "syntax error at or near \"%.*s\"", (int)BASE_MIN(t.len, 60),
                 t.start);
    return fail(r, "42601", msg);
}

int sqlv_session_exec(sqlv_session *s, const char *query, size_t query_len, const sqlv_sink *sink) {
    run r = {s, sink, 0};
    char *copy;
    int nstmts = 0, rc = SQLV_OK;
    atomic_store(&s->cancel, 0);
    copy = base_strndup(query ? query : "", query ? query_len : 0);
    if (copy == NULL) return SQLV_ERR_NOMEM;
    size_t len = strlen(copy); /* an embedded NUL ends the query */
    const char *end = copy + len;
    /* First pass: count non-empty statements. */
    const char *p = copy;
    bool has_tokens = false;
    for (;;) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END || t.kind == SQLV__TOK_SEMI) {
            if (has_tokens) nstmts++;
            has_tokens = false;
            if (t.kind == SQLV__TOK_END) break;
            continue;
        }
        has_tokens = true;
    }
    if (nstmts == 0) {
        if (sink->empty_query && sink->empty_query(sink->ctx) != 0) rc = SQLV_ERR_ABORTED;
        goto cleanup;
    }
    if (nstmts > SQLV__STATEMENTS_MAX) {
        emit_error(&r, "54000", "too many statements in one query string");
        goto cleanup;
    }
    p = copy;
    const char *stmt_start = copy;
    has_tokens = false;
    for (;;) {
        const char *before = p;
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END || t.kind == SQLV__TOK_SEMI) {
            const char *stmt_end = t.kind == SQLV__TOK_END ? before : t.start;
            if (has_tokens) {
                const char *st = sqlv__lex_skip_space(stmt_start, stmt_end);
                if (run_statement(&r, st, (size_t)(stmt_end - st)) != STMT_OK) break;
                if (r.sink_rc != 0) break;
            }
            has_tokens = false;
            stmt_start = p;
            if (t.kind == SQLV__TOK_END) break;
            continue;
        }
        has_tokens = true;
    }
    if (r.sink_rc != 0) rc = SQLV_ERR_ABORTED;
cleanup:
    base_free(copy);
    return rc;
}
