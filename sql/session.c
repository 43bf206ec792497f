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
**   - a multi-statement string outside BEGIN runs as an implicit block:
**     status 'T' with s->implicit_block, committed at the end of the string
**     (end_implicit_block), rolled back entirely on an error.
**   - status 'T': inside BEGIN. The KV transaction begins at the first
**     statement; each statement runs under a KV savepoint, rolled back if
**     the statement fails (statement atomicity), which moves to 'E'.
**   - status 'E': every statement but COMMIT/ROLLBACK/ROLLBACK TO fails
**     with 25P02; COMMIT ends the block with the tag ROLLBACK.
**   - SAVEPOINT / ROLLBACK TO / RELEASE (explicit blocks only, 25P01
**     outside): a user savepoint is a KV savepoint plus a copy of the
**     block's DDL overlay; ROLLBACK TO undoes the writes and DDL after it,
**     keeps the reads (the read set) and the locks, and brings 'E' back to
**     'T'. When the KV transaction was aborted (40001 in a cluster), only a
**     savepoint taken before the block's first statement can be rolled back
**     to: the block then starts a new KV transaction at a new timestamp.
**   - CockroachDB's retry protocol: RELEASE of a cockroach_restart savepoint
**     taken first in the block commits the KV transaction there. Success:
**     s->awaiting_commit (status 'T'), where COMMIT and ROLLBACK end the
**     block (tag COMMIT) and anything else is 25000. 40001: 'E' with the
**     savepoint kept, so ROLLBACK TO it restarts the transaction.
**   - a KV commit failure at COMMIT (40001...) goes to the client and the
**     session is back to 'I' with no transaction.
** Catalog (docs/sql.md, "The catalog across nodes"): a transaction's first
** statement reads the catalog version through the transaction
** (sqlv__session_begin) before any table name is resolved for it; the
** statement is prepared again if the declarations changed.
** Invariants:
**   - s->kv != NULL only while a statement runs in 'I', or in 'T'/'E'.
**   - while s->kv is open, s->cat is the catalog of its read timestamp and
**     every name lookup and virtual table declaration uses s->cat plus the
**     block's own DDL (s->ddl); s->synced lists exactly what is declared.
**   - after every statement sqlite3_get_autocommit(s->db) is true.
**   - s->savepoints is empty outside an explicit block; inside one each
**     entry's kv_sp is a live KV savepoint of s->kv, in stack order (s->kv
**     is NULL only in 'E', after a failed restart or a failed committing
**     RELEASE); only savepoints[0] can be at_start.
**   - s->awaiting_commit only in 'T' of an explicit block, with s->kv NULL
**     and no savepoints; no statement begins a transaction there.
**   - every statement produces exactly one of: command_complete (maybe after
**     row_description/data_row), error. The string's first error stops it.
*/
#define _GNU_SOURCE /* memmem */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cluster_settings_int.h"
#include "sql_dialect.h"
#include "sql_int.h"
#include "sql_lex.h"
#include "sql_pgcatalog.h"
#include "sql_ranges.h"

#define MOD "sql"
#define PROGRESS_OPS 1000 /* VM steps between cancel checks */

/* Result of running one statement. STMT_RETRY: an implicit transaction
** failed to commit with 40001 before anything reached the sink; run it again. */
enum { STMT_OK = 0, STMT_FAILED = 1, STMT_RETRY = 2 };

/* Automatic retries of an implicit single-statement transaction that failed
** with 40001 and sent nothing yet (no result rows). */
#define IMPLICIT_RETRIES_MAX 50
/* Between retries a randomized backoff, doubling from this up to the cap,
** so that writers of one hot key stop colliding in lockstep (OCC aborts at
** commit: without it, 6 clients incrementing one row saw ~25% of their
** statements fail after 5 immediate retries). Cancel is checked after each
** pause. */
#define RETRY_BACKOFF_MIN_US 50
#define RETRY_BACKOFF_MAX_US 20000

static void retry_backoff(sqlv_session *s, int attempt) {
    uint64_t cap = RETRY_BACKOFF_MIN_US;
    for (int i = 1; i < attempt && cap < RETRY_BACKOFF_MAX_US; i++)
        cap *= 2;
    if (cap > RETRY_BACKOFF_MAX_US) cap = RETRY_BACKOFF_MAX_US;
    /* xorshift on a per-session state: jitter, no shared RNG */
    uint64_t x = s->retry_rng ? s->retry_rng : (uint64_t)(uintptr_t)s ^ base_monotonic_ns();
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->retry_rng = x;
    uint64_t us = cap / 2 + x % (cap / 2 + 1);
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

typedef sqlv__run run;

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

/* A statement failed: the transaction state follows PostgreSQL (a block
** RELEASE committed stays committed). */
static int fail(run *r, const char *state, const char *msg) {
    sqlv_session *s = r->s;
    if (s->status == 'T') {
        if (!s->awaiting_commit) s->status = 'E';
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

/* sqlite3_prepare_v2 with the text known to the authorizer (INSERT's
** column list: privileges.c). */
static int prepare_text(sqlv_session *s, const char *text, size_t len, sqlite3_stmt **st,
                        const char **tail) {
    sqlv__priv_statement(text, len);
    int rc = sqlite3_prepare_v2(s->db, text, (int)len, st, tail);
    sqlv__priv_statement(NULL, 0);
    /* SELECT ... FROM a sequence: read from its state (sequence.c), when the
    ** whole text is the one statement; one sequence named per round */
    static const char no_table[] = "no such table: ";
    char *cur = NULL; /* the text rewritten so far; owner: here */
    for (int round = 0; round < 4 && rc == SQLITE_ERROR && *st == NULL; round++) {
        const char *em = sqlite3_errmsg(s->db);
        const char *in = cur ? cur : text;
        char *alt = NULL;
        if (strncmp(em, no_table, sizeof(no_table) - 1) != 0 ||
            sqlv__seq_from_rewrite(s, in, cur ? strlen(cur) : len, em + sizeof(no_table) - 1,
                                   &alt) != 1)
            break;
        base_free(cur);
        cur = alt;
        const char *alt_tail = NULL;
        sqlv__priv_statement(cur, strlen(cur));
        rc = sqlite3_prepare_v2(s->db, cur, -1, st, &alt_tail);
        sqlv__priv_statement(NULL, 0);
        if (rc == SQLITE_OK && *st != NULL &&
            sqlv__lex_next(&alt_tail, cur + strlen(cur)).kind != SQLV__TOK_END) {
            sqlite3_finalize(*st); /* more than one statement: not ours to change */
            *st = NULL;
            rc = SQLITE_ERROR;
            break;
        }
        if (rc == SQLITE_OK) {
            if (tail != NULL) *tail = text + len;
            s->err_sqlstate[0] = 0;
            s->err_message[0] = 0;
        }
    }
    base_free(cur);
    return rc;
}

static int progress(void *ctx) {
    sqlv_session *s = ctx;
    return atomic_load(&s->cancel) != 0;
}

/* Only statements the session lets through reach SQLite; this is a second
** fence against anything that would touch SQLite's own storage. It also
** checks the user's privileges on each table a statement reads or writes,
** at prepare time (privileges.c): a denied statement never runs. */
static int authorizer(void *ctx, int action, const char *a, const char *b, const char *c,
                      const char *d) {
    sqlv_session *s = ctx;
    switch (action) {
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
    case SQLITE_PRAGMA: return SQLITE_DENY;
    case SQLITE_READ:
        /* d: the view the read goes through, whose owner's privileges
        ** apply (the view itself is read with d NULL: the invoker's;
        ** docs/sql.md "Views"). CREATE VIEW records the direct reads. */
        if (d != NULL) return sqlv__priv_authorize_view(s, d, a, b);
        sqlv__view_note_read(s, a);
        if (b != NULL && b[0] == 0 && c == NULL) return sqlv__priv_authorize_no_columns(s, a);
        return sqlv__priv_authorize(s, a, b, SQLV__PRIV_SELECT);
    case SQLITE_INSERT: return sqlv__priv_authorize(s, a, NULL, SQLV__PRIV_INSERT);
    case SQLITE_UPDATE: return sqlv__priv_authorize(s, a, b, SQLV__PRIV_UPDATE);
    case SQLITE_DELETE:
        return sqlv__priv_authorize(s, a, NULL,
                                    s->truncating ? SQLV__PRIV_TRUNCATE : SQLV__PRIV_DELETE);
    default: return SQLITE_OK;
    }
}

int sqlv_session_open(sqlv_engine *e, const char *user, const char *database, sqlv_session **out) {
    sqlv_session *s = base_calloc(1, sizeof(*s));
    int rc = SQLV_ERR_NOMEM;
    if (s == NULL) return SQLV_ERR_NOMEM;
    s->engine = e;
    s->cat = sqlv__engine_catalog(e); /* checked at the first transaction */
    s->status = 'I';
    s->user = base_strdup(user ? user : "root");
    s->database = base_strdup(database ? database : "defaultdb");
    if (s->user == NULL || s->database == NULL) goto fail;
    sqlv__mem_init();
    s->mem = sqlv__mem_new(sqlv__session_memory_limit_bytes(s));
    if (s->mem == NULL) goto fail;
    sqlv__mem *prev_mem = sqlv__mem_enter(s->mem); /* the connection counts too */
    int orc = sqlite3_open_v2(":memory:", &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    sqlv__mem_leave(prev_mem);
    if (orc != SQLITE_OK) goto fail;
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DML, 0, NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
    if (sqlite3_exec(s->db, "PRAGMA case_sensitive_like = ON", NULL, NULL, NULL) != SQLITE_OK)
        goto internal;
    /* Sorts and temp b-trees (ORDER BY, GROUP BY, DISTINCT, IN, window
    ** functions) spill to temp files past the page cache's 2 MB instead of
    ** growing in memory (docs/security.md "Hostile input"). */
    if (sqlite3_exec(s->db, "PRAGMA temp_store = FILE; PRAGMA cache_size = -2000", NULL, NULL,
                     NULL) != SQLITE_OK)
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
    if (sqlv__register_pg_functions(s) != 0) goto internal;
    if (sqlv__pgcatalog_register(s) != 0) goto internal; /* pg_catalog, information_schema */
    if (sqlv__ranges_register(s) != 0) goto internal;    /* meridian_internal.* */
    if (sqlv__seq_register(s) != 0) goto internal;       /* nextval... (after pgcatalog's stubs) */
    if (sqlv__datetime_register(s) != 0) goto internal;  /* date/time functions */
    if (sqlv__strfuncs_register(s) != 0) goto internal;  /* strings, regex, JSON */
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

/* Drop savepoints[from..] (their names and DDL copies). */
static void savepoints_pop(sqlv_session *s, int from) {
    while (s->nsavepoints > from) {
        sqlv__savepoint *sp = &s->savepoints[--s->nsavepoints];
        base_free(sp->name);
        sqlv__pending_ddl_clear(&sp->ddl);
    }
}

void sqlv_session_close(sqlv_session *s) {
    if (s == NULL) return;
    sqlv__copy_abort(s);
    sqlv__extended_free(s); /* portals hold SQLite statements of s->db */
    if (s->kv) txn_rollback(s->kv);
    savepoints_pop(s, 0);
    base_free(s->savepoints);
    sqlv__pending_ddl_clear(&s->ddl);
    if (s->db) sqlite3_close_v2(s->db);
    sqlv__mem_release(s->mem); /* after every block of db is freed */
    sqlv__catalog_list_free(s->synced, s->nsynced);
    sqlv__catalog_unref(s->cat);
    sqlv__priv_cache_free(s->priv);
    sqlv__seq_session_free(s);
    base_free(s->user);
    base_free(s->database);
    base_free(s);
}

char sqlv_session_status(const sqlv_session *s) { return s->status; }

void sqlv_session_cancel(sqlv_session *s) { atomic_store(&s->cancel, 1); }

int sqlv__session_begin(sqlv_session *s, bool read_only, txn_error *err) {
    txn_options o = {.read_only = read_only};
    assert(s->kv == NULL);
    /* AS OF SYSTEM TIME / READ ONLY: the statement's, else the explicit
    ** block's (docs/sql.md "Stale reads") */
    if (!hlc_is_zero(s->stmt_as_of)) {
        o.as_of = s->stmt_as_of;
    } else if ((s->status == 'T' || s->status == 'E') && !s->implicit_block) {
        o.as_of = s->block_as_of;
        o.read_only = o.read_only || s->block_read_only;
    }
    read_only = o.read_only || !hlc_is_zero(o.as_of);
    int rc = txn_begin(s->engine->db, &o, &s->kv);
    if (rc != TXN_OK) {
        s->kv = NULL;
        txn_error_set(err, rc);
        return rc;
    }
    s->kv_read_only = read_only;
    /* The catalog at this transaction's read timestamp: one point read of
    ** the version key; a reload only when it changed. */
    rc = sqlv__engine_catalog_at(s->engine, s->kv, &s->cat, err);
    if (rc != TXN_OK) {
        txn_rollback(s->kv);
        s->kv = NULL;
    }
    return rc;
}

/* The catalog as this session sees it: s->cat's tables minus those it
** dropped in its open block, plus those it created there (an altered table
** is both). owner of *list: caller, sqlv__catalog_list_free. */
static int session_list(sqlv_session *s, sqlv__catalog_entry **list, int *n) {
    const sqlv__pending_ddl *p = &s->ddl;
    const sqlv__catalog *c = s->cat;
    int m = 0;
    sqlv__catalog_entry *l = base_calloc((size_t)(c->ntables + p->ncreated + 1), sizeof(*l));
    if (l == NULL) return SQLV_ERR_NOMEM;
    for (int i = 0; i < c->ntables; i++) {
        bool dropped = false;
        for (int d = 0; d < p->ndropped && !dropped; d++)
            dropped = p->dropped[d] == c->tables[i]->id;
        if (dropped) continue;
        l[m].id = c->tables[i]->id;
        l[m].shape = c->tables[i]->shape;
        l[m].name = base_strdup(c->tables[i]->name);
        if (l[m++].name == NULL) goto nomem;
        if (c->tables[i]->is_view &&
            (l[m - 1].view_sql = base_strdup(c->tables[i]->create_sql)) == NULL)
            goto nomem;
    }
    for (int i = 0; i < p->ncreated; i++) {
        l[m].id = p->created[i]->id;
        l[m].shape = p->created[i]->shape;
        l[m].name = base_strdup(p->created[i]->name);
        if (l[m++].name == NULL) goto nomem;
        if (p->created[i]->is_view &&
            (l[m - 1].view_sql = base_strdup(p->created[i]->create_sql)) == NULL)
            goto nomem;
    }
    *list = l;
    *n = m;
    return 0;
nomem:
    sqlv__catalog_list_free(l, m);
    return SQLV_ERR_NOMEM;
}

int sqlv__session_table(sqlv_session *s, uint32_t id, sqlv__table **out) {
    for (int i = 0; i < s->ddl.ncreated; i++)
        if (s->ddl.created[i]->id == id) return sqlv__table_clone(s->ddl.created[i], out);
    for (int d = 0; d < s->ddl.ndropped; d++)
        if (s->ddl.dropped[d] == id) return 1;
    const sqlv__table *t = sqlv__catalog_find_id(s->cat, id);
    return t ? sqlv__table_clone(t, out) : 1;
}

/* The open block ended: forget its savepoints and DDL (the declarations
** follow at the next sync). */
static void end_block_ddl(sqlv_session *s) {
    savepoints_pop(s, 0);
    if (s->ddl.ncreated == 0 && s->ddl.ndropped == 0) return;
    sqlv__pending_ddl_clear(&s->ddl);
    s->ddl_version++;
}

/* The ids of the tables the open block created, and of those it dropped
** for good (an altered table is both dropped and created: not dropped).
** owner of *created, *dropped: caller (base_free). 0 or -1 (memory). */
static int block_ddl_ids(const sqlv_session *s, uint32_t **created, int *ncreated,
                         uint32_t **dropped, int *ndropped) {
    const sqlv__pending_ddl *p = &s->ddl;
    *created = base_calloc((size_t)(p->ncreated + 1), sizeof(**created));
    *dropped = base_calloc((size_t)(p->ndropped + 1), sizeof(**dropped));
    if (*created == NULL || *dropped == NULL) {
        base_free(*created);
        base_free(*dropped);
        *created = *dropped = NULL;
        return -1;
    }
    for (int i = 0; i < p->ncreated; i++)
        if (!p->created[i]->is_view) /* a view has no range of its own */
            (*created)[(*ncreated)++] = p->created[i]->id;
    for (int d = 0; d < p->ndropped; d++) {
        bool again = false;
        for (int i = 0; i < p->ncreated; i++)
            again |= p->created[i]->id == p->dropped[d];
        if (!again) (*dropped)[(*ndropped)++] = p->dropped[d];
    }
    return 0;
}

/* Do the declarations in the session's connection lag behind what it
** sees (s->cat and its own DDL)? */
static bool declarations_stale(const sqlv_session *s) {
    return !s->sync_complete || s->synced_version != s->cat->version ||
           s->synced_ddl_version != s->ddl_version;
}

/* Declare the catalog's tables as virtual tables in the session's
** connection, if what the session sees changed since the last time (a
** table whose columns changed, same id, is declared anew). s->synced
** lists exactly what is declared; a failure (out of memory) leaves the
** sync incomplete and it is retried before the next statement. */
static int sync_tables(sqlv_session *s) {
    sqlv__catalog_entry *list = NULL, *now = NULL;
    int n = 0, nnow = 0, rc;
    bool complete = true;
    if (!declarations_stale(s)) return 0;
    rc = session_list(s, &list, &n);
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
            keep = list[j].id == s->synced[i].id && list[j].shape == s->synced[i].shape &&
                   strcmp(list[j].name, s->synced[i].name) == 0;
        if (!keep) {
            /* statements prepared on it expire; SQLite prepares them again
            ** at their next step (42P01 if the name is gone) */
            char *q = sqlite3_mprintf(s->synced[i].view_sql ? "DROP VIEW IF EXISTS main.\"%w\""
                                                            : "DROP TABLE IF EXISTS main.\"%w\"",
                                      s->synced[i].name);
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
        s->synced[i].view_sql = NULL;
    }
    /* tables first, then views (SQLite resolves a view's names when a
    ** statement uses it, so views need no order among themselves) */
    for (int pass = 0; pass < 2; pass++) {
        for (int j = 0; j < n; j++) {
            bool have = false;
            if (list[j].name == NULL || (list[j].view_sql != NULL) != (pass == 1)) continue;
            for (int i = 0; i < nnow && !have; i++)
                have = list[j].id == now[i].id && list[j].shape == now[i].shape &&
                       strcmp(list[j].name, now[i].name) == 0;
            if (have) continue;
            char *q = list[j].view_sql
                          ? sqlite3_mprintf("%s", list[j].view_sql)
                          : sqlite3_mprintf("CREATE VIRTUAL TABLE main.\"%w\" USING meridian(%u)",
                                            list[j].name, list[j].id);
            if (q != NULL && sqlite3_exec(s->db, q, NULL, NULL, NULL) == SQLITE_OK) {
                now[nnow++] = list[j];
                list[j].name = NULL;
                list[j].view_sql = NULL;
            } else {
                BASE_WARN(MOD, "session: cannot declare %s: %s", list[j].name,
                          sqlite3_errmsg(s->db));
                complete = false;
            }
            sqlite3_free(q);
        }
    }
    sqlite3_set_authorizer(s->db, authorizer, s);
    sqlv__catalog_list_free(list, n);
    sqlv__catalog_list_free(s->synced, s->nsynced);
    s->synced = now;
    s->nsynced = nnow;
    s->synced_version = s->cat->version;
    s->synced_ddl_version = s->ddl_version;
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
        if (strncmp(name, "pg_", 3) == 0 || strncmp(name, "information_schema_", 19) == 0) {
            /* a system catalog relation sql/pgcatalog.c does not provide */
            bool info = name[0] == 'i';
            base_strlcpy(state, "0A000", 6);
            snprintf(msg, size, "system catalog relation \"%s%s\" is not supported yet",
                     info ? "information_schema." : "pg_catalog.", info ? name + 19 : name);
        }
        return;
    }
    if (strncmp(m, "cannot modify ", 14) == 0 && strstr(m, " because it is a view")) {
        /* views are read-only: no auto-updatable views (docs/sql.md "Views") */
        const char *v = m + 14;
        base_strlcpy(state, "0A000", 6);
        snprintf(msg, size, "cannot insert into, update or delete from view \"%.*s\"",
                 (int)BASE_MIN((size_t)(strstr(m, " because it is a view") - v), 200), v);
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
        sqlv__mem_nomem_message(s, msg, size);
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

/* AS OF SYSTEM TIME: the timestamp of expr now (asof.c). STMT_OK with *ts,
** or STMT_FAILED with the error sent. */
static int as_of_eval(run *r, const char *expr, hlc_timestamp *ts) {
    char state[6], msg[320];
    if (sqlv__as_of_eval(expr, txn_db_now(r->s->engine->db), ts, state, msg, sizeof(msg)) != 0)
        return fail(r, state, msg);
    return STMT_OK;
}

/* BEGIN's or SET TRANSACTION's AS OF SYSTEM TIME / READ ONLY / READ WRITE
** for the explicit block whose KV transaction has not begun: evaluated
** into *as_of (the block's so far on entry). STMT_OK, or the error sent. */
static int block_modes_check(run *r, const sqlv__txn_modes *m, hlc_timestamp *as_of) {
    if (!m->as_of && !m->read_only && !m->read_write) return STMT_OK;
    if (r->s->kv != NULL)
        return fail(r, "25001", "AS OF SYSTEM TIME, READ ONLY and READ WRITE must be set before "
                                "the transaction's first query");
    if (m->as_of && as_of_eval(r, m->expr, as_of) != STMT_OK) return STMT_FAILED;
    if (m->read_write && !hlc_is_zero(*as_of))
        return fail(r, "25006", "an AS OF SYSTEM TIME transaction is read-only: READ WRITE "
                                "cannot be combined with it");
    return STMT_OK;
}

static int do_begin(run *r) {
    sqlv_session *s = r->s;
    if (s->implicit_block) {
        /* BEGIN inside a multi-statement string: the implicit block becomes
        ** an explicit one, with the statements before it (PostgreSQL). */
        s->implicit_block = false;
        return emit_tag(r, "BEGIN");
    }
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

/* Commit the block's KV transaction (and its DDL); status back to 'I'.
** STMT_OK, or STMT_FAILED with the error sent. */
static int do_commit_quiet(run *r, txn_error *err) {
    sqlv_session *s = r->s;
    s->status = 'I';
    if (s->kv) {
        txn *kv = s->kv;
        s->kv = NULL;
        /* DDL of the block bumped the catalog version in kv: every session
        ** (on any node) sees the change at its next transaction */
        uint32_t *created = NULL, *dropped = NULL; /* owner: this block */
        int ncreated = 0, ndropped = 0;
        if (block_ddl_ids(s, &created, &ncreated, &dropped, &ndropped) != 0) {
            txn_rollback(kv);
            end_block_ddl(s);
            return fail(r, "53200", "out of memory");
        }
        txn_commit_info info;
        int rc = txn_commit_with_info(kv, &info, err);
        if (rc == TXN_OK) sqlv__note_commit(s, &info);
        end_block_ddl(s);
        if (rc == TXN_OK) sqlv__engine_after_ddl(s->engine, created, ncreated, dropped, ndropped);
        base_free(created);
        base_free(dropped);
        if (rc != TXN_OK) return fail_txn(r, rc, err);
    }
    end_block_ddl(s);
    return STMT_OK;
}

static int do_commit(run *r) {
    sqlv_session *s = r->s;
    txn_error err = {{0}, {0}};
    if (s->status == 'I' || s->implicit_block) {
        emit_notice(r, "there is no transaction in progress");
        if (s->status == 'I') return emit_tag(r, "COMMIT");
        s->implicit_block = false; /* commits what the string did so far */
    }
    if (s->status == 'E') {
        if (s->kv) txn_rollback(s->kv);
        s->kv = NULL;
        s->status = 'I';
        end_block_ddl(s);
        return emit_tag(r, "ROLLBACK");
    }
    if (do_commit_quiet(r, &err) != STMT_OK) return STMT_FAILED;
    return emit_tag(r, "COMMIT");
}

static int do_rollback(run *r) {
    sqlv_session *s = r->s;
    if (s->status == 'I' || s->implicit_block) {
        emit_notice(r, "there is no transaction in progress");
        if (s->status == 'I') return emit_tag(r, "ROLLBACK");
        s->implicit_block = false; /* discards what the string did so far */
    }
    if (s->kv) txn_rollback(s->kv);
    s->kv = NULL;
    s->status = 'I';
    end_block_ddl(s);
    return emit_tag(r, "ROLLBACK");
}

static int show_one(run *r, const char *name, const char *value) {
    sqlv_column col = {name, SQLV_OID_TEXT, -1, 0};
    sqlv_cell cell = {value, strlen(value)};
    if (r->sink_rc == 0 && r->sink->row_description)
        r->sink_rc = r->sink->row_description(r->sink->ctx, 1, &col);
    if (r->sink_rc == 0 && r->sink->data_row)
        r->sink_rc = r->sink->data_row(r->sink->ctx, 1, &cell);
    return emit_tag(r, "SHOW");
}

/* A setting's name at p: ident or ident.ident; TIME ZONE is TimeZone. */
static int setting_name(const char **pp, const char *end, char *name, size_t size) {
    sqlv__token t = sqlv__lex_next(pp, end);
    if (sqlv__tok_ident(&t, name, size) != 0) return -1;
    const char *save = *pp;
    if (sqlv__tok_is(&t, "TIME")) {
        sqlv__token z = sqlv__lex_next(pp, end);
        if (sqlv__tok_is(&z, "ZONE")) {
            base_strlcpy(name, "TimeZone", size);
            return 0;
        }
        *pp = save;
    }
    sqlv__token dot = sqlv__lex_next(pp, end);
    if (!sqlv__tok_punct(&dot, '.')) {
        *pp = save;
        return 0;
    }
    char second[64];
    sqlv__token t2 = sqlv__lex_next(pp, end);
    if (sqlv__tok_ident(&t2, second, sizeof(second)) != 0) return -1;
    size_t n = strlen(name);
    if (n + 1 + strlen(second) + 1 > size) return -1;
    name[n] = '.';
    base_strlcpy(name + n + 1, second, size - n - 1);
    return 0;
}

static int do_show(run *r, const char *p, const char *end) {
    char name[128], msg[200];
    const char *canonical = NULL;
    const char *save = p;
    int shown = sqlv__pgcatalog_show(r, p, end); /* SHOW TABLES / CREATE TABLE / COLUMNS */
    if (shown >= 0) return shown;
    shown = sqlv__ranges_show(r, p, end); /* SHOW RANGES, SHOW RANGE ... FOR ROW */
    if (shown >= 0) return shown;
    shown = sqlv__cluster_settings_show(r, p, end); /* SHOW [ALL] CLUSTER SETTING(S) */
    if (shown >= 0) return shown;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "ALL")) {
        sqlv_column cols[2] = {{"name", SQLV_OID_TEXT, -1, 0}, {"setting", SQLV_OID_TEXT, -1, 0}};
        const char *n, *v;
        if (r->sink_rc == 0 && r->sink->row_description)
            r->sink_rc = r->sink->row_description(r->sink->ctx, 2, cols);
        int i = 0;
        for (; sqlv__setting_at(r->s, i, &n, &v); i++) {
            sqlv_cell cells[2] = {{n, strlen(n)}, {v, strlen(v)}};
            if (r->sink_rc == 0 && r->sink->data_row)
                r->sink_rc = r->sink->data_row(r->sink->ctx, 2, cells);
        }
        (void)i;
        return emit_tag(r, "SHOW");
    }
    if (sqlv__tok_is(&t, "TRANSACTION")) {
        sqlv__token a = sqlv__lex_next(&p, end), b = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&a, "ISOLATION") || !sqlv__tok_is(&b, "LEVEL"))
            return fail(r, "42601", "syntax error in SHOW TRANSACTION ISOLATION LEVEL");
        base_strlcpy(name, "transaction_isolation", sizeof(name));
    } else {
        p = save;
        if (setting_name(&p, end, name, sizeof(name)) != 0)
            return fail(r, "42601", "syntax error at end of input");
    }
    sqlv__token rest = sqlv__lex_next(&p, end);
    if (rest.kind != SQLV__TOK_END) return fail(r, "42601", "syntax error in SHOW");
    const char *v = sqlv__setting_get(r->s, name, &canonical);
    if (v == NULL) {
        snprintf(msg, sizeof(msg), "unrecognized configuration parameter \"%.64s\"", name);
        return fail(r, "42704", msg);
    }
    return show_one(r, canonical, v);
}

/* A SET value: the tokens up to the end, strings unquoted, a list joined
** by ", ". 0 ok, -1 syntax error or too long. *is_default: DEFAULT. */
static int set_value(const char *p, const char *end, char *out, size_t size, bool *is_default) {
    size_t o = 0;
    int ntok = 0;
    bool neg = false;
    *is_default = false;
    out[0] = 0;
    for (int guard = 0; guard < 1000; guard++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) return ntok > 0 ? 0 : -1;
        if (sqlv__tok_punct(&t, ',')) {
            if (o + 2 >= size) return -1;
            out[o++] = ',';
            out[o++] = ' ';
            out[o] = 0;
            continue;
        }
        if (sqlv__tok_punct(&t, '-') && !neg) {
            neg = true;
            if (o + 1 >= size) return -1;
            out[o++] = '-';
            out[o] = 0;
            continue;
        }
        ntok++;
        if (ntok == 1 && sqlv__tok_is(&t, "DEFAULT")) {
            sqlv__token n = sqlv__lex_next(&p, end);
            *is_default = true;
            return n.kind == SQLV__TOK_END ? 0 : -1;
        }
        if (t.kind == SQLV__TOK_STRING && t.start[0] == '\'') {
            for (size_t i = 1; i + 1 < t.len; i++) {
                if (t.start[i] == '\'' && t.start[i + 1] == '\'') i++;
                if (o + 1 >= size) return -1;
                out[o++] = t.start[i];
            }
        } else if (t.kind == SQLV__TOK_WORD || t.kind == SQLV__TOK_OTHER ||
                   t.kind == SQLV__TOK_QUOTED) {
            char id[256];
            const char *src = t.start;
            size_t n = t.len;
            if (t.kind == SQLV__TOK_QUOTED) {
                if (sqlv__tok_ident(&t, id, sizeof(id)) != 0) return -1;
                src = id;
                n = strlen(id);
            }
            if (o + n + 1 >= size) return -1;
            memcpy(out + o, src, n);
            o += n;
        } else {
            return -1;
        }
        out[o] = 0;
        neg = false;
    }
    return -1;
}

static int do_set(run *r, const char *p, const char *end, bool reset) {
    char name[128], value[256], state[6], msg[200];
    const char *save = p;
    bool is_default = false;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (reset) {
        if (sqlv__tok_is(&t, "ALL") && sqlv__lex_next(&p, end).kind == SQLV__TOK_END) {
            r->s->nsettings = 0;
            sqlv__mem_set_limit(r->s->mem, sqlv__session_memory_limit_bytes(r->s));
            return emit_tag(r, "RESET");
        }
        p = save;
        if (setting_name(&p, end, name, sizeof(name)) != 0 ||
            sqlv__lex_next(&p, end).kind != SQLV__TOK_END)
            return fail(r, "42601", "syntax error in RESET");
        if (sqlv__setting_get(r->s, name, NULL) == NULL && strchr(name, '.') == NULL) {
            snprintf(msg, sizeof(msg), "unrecognized configuration parameter \"%.64s\"", name);
            return fail(r, "42704", msg);
        }
        if (sqlv__setting_set(r->s, name, NULL, state, msg, sizeof(msg)) != 0)
            return fail(r, state, msg);
        return emit_tag(r, "RESET");
    }
    /* SET [SESSION | LOCAL] ...: LOCAL is kept for the session (a gap). */
    if (sqlv__tok_is(&t, "SESSION") || sqlv__tok_is(&t, "LOCAL")) {
        save = p;
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&t, "CHARACTERISTICS")) {
            sqlv__token a = sqlv__lex_next(&p, end), b = sqlv__lex_next(&p, end);
            if (!sqlv__tok_is(&a, "AS") || !sqlv__tok_is(&b, "TRANSACTION"))
                return fail(r, "42601", "syntax error in SET SESSION CHARACTERISTICS");
            if (sqlv__parse_transaction_modes(p, end, msg, sizeof(msg)) != 0)
                return fail(r, "42601", msg);
            return emit_tag(r, "SET");
        }
    }
    if (sqlv__tok_is(&t, "TRANSACTION")) {
        sqlv__txn_modes m;
        sqlv_session *s = r->s;
        if (sqlv__parse_transaction_modes_ex(p, end, &m, msg, sizeof(msg)) != 0)
            return fail(r, "42601", msg);
        if ((m.as_of || m.read_only || m.read_write) && (s->status != 'T' || s->implicit_block)) {
            emit_notice(r, "SET TRANSACTION can only be used in transaction blocks");
            return emit_tag(r, "SET");
        }
        hlc_timestamp as_of = s->block_as_of;
        if (block_modes_check(r, &m, &as_of) != STMT_OK) return STMT_FAILED;
        s->block_as_of = as_of;
        if (m.read_only) s->block_read_only = true;
        if (m.read_write) s->block_read_only = false;
        return emit_tag(r, "SET");
    }
    p = save;
    if (setting_name(&p, end, name, sizeof(name)) != 0)
        return fail(r, "42601", "syntax error in SET");
    if (strcmp(name, "TimeZone") != 0) {
        sqlv__token eq = sqlv__lex_next(&p, end);
        if (!sqlv__tok_punct(&eq, '=') && !sqlv__tok_is(&eq, "TO"))
            return fail(r, "42601", "syntax error in SET: expected = or TO");
    }
    if (set_value(p, end, value, sizeof(value), &is_default) != 0)
        return fail(r, "42601", "syntax error in SET value");
    if (sqlv__setting_set(r->s, name, is_default ? NULL : value, state, msg, sizeof(msg)) != 0)
        return fail(r, state, msg);
    return emit_tag(r, "SET");
}

#define DROP_NAMES_MAX 64

/* ---- DDL inside a transaction block ------------------------------------------------
** The catalog rows are written through the session's KV transaction under a
** statement savepoint; the session sees the change at once through s->ddl,
** others at their first transaction after COMMIT (the catalog version the
** DDL bumped); ROLLBACK forgets it. */

/* The block's KV transaction, begun if needed (which fixes s->cat for the
** rest of the block): before any table name is looked up. */
static int block_begin(run *r) {
    sqlv_session *s = r->s;
    txn_error err = {{0}, {0}};
    if (s->kv != NULL) return STMT_OK;
    int rc = sqlv__session_begin(s, false, &err);
    return rc == TXN_OK ? STMT_OK : fail_txn(r, rc, &err);
}

/* The block's KV transaction (begun if needed) and a statement savepoint. */
static int block_kv(run *r, uint32_t *sp) {
    sqlv_session *s = r->s;
    txn_error err = {{0}, {0}};
    if (block_begin(r) != STMT_OK) return STMT_FAILED;
    int rc = txn_savepoint(s->kv, sp);
    if (rc != TXN_OK) return fail_txn(r, rc, &err);
    return STMT_OK;
}

/* A table name as this session sees it: the index in s->ddl.created (id
** set), or -1 with *id the table's id in s->cat, or -1 with *id 0: none. */
static int session_find(sqlv_session *s, const char *name, uint32_t *id) {
    for (int i = 0; i < s->ddl.ncreated; i++) {
        if (sqlite3_stricmp(s->ddl.created[i]->name, name) == 0) {
            *id = s->ddl.created[i]->id;
            return i;
        }
    }
    const sqlv__table *t = sqlv__catalog_find(s->cat, name);
    *id = t ? t->id : 0;
    for (int d = 0; d < s->ddl.ndropped && *id != 0; d++)
        if (s->ddl.dropped[d] == *id) *id = 0;
    return -1;
}

static int grow_ids(void **arr, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int ncap = *cap ? *cap * 2 : 8;
    while (ncap < need) ncap *= 2;
    void *p = base_realloc(*arr, elem * (size_t)ncap);
    if (p == NULL) return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

static int create_in_block(run *r, const char *sql) {
    sqlv_session *s = r->s;
    sqlv__result res;
    sqlv__table *t = NULL;
    bool ine = false;
    uint32_t sp, id;
    memset(&res, 0, sizeof(res));
    int rc = sqlv__table_parse(sql, 0, &t, &ine, res.sqlstate, res.message, sizeof(res.message));
    if (rc < 0) return fail(r, "53200", "out of memory");
    if (rc > 0) return fail(r, res.sqlstate, res.message);
    if (block_begin(r) != STMT_OK) { /* the names as of the block's snapshot */
        sqlv__table_free(t);
        return STMT_FAILED;
    }
    if (session_find(s, t->name, &id) >= 0 || id != 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "relation \"%s\" already exists%s", t->name,
                 ine ? ", skipping" : "");
        sqlv__table_free(t);
        if (!ine) return fail(r, "42P07", msg);
        emit_notice(r, msg);
        return emit_tag(r, "CREATE TABLE");
    }
    if (s->cat->ntables + s->ddl.ncreated - s->ddl.ndropped >= SQLV__TABLES_MAX) {
        sqlv__table_free(t);
        snprintf(res.message, sizeof(res.message), "too many tables (maximum %d)",
                 SQLV__TABLES_MAX);
        return fail(r, "54000", res.message);
    }
    if (grow_ids((void **)&s->ddl.created, &s->ddl.cap_created, s->ddl.ncreated + 1,
                 sizeof(*s->ddl.created)) != 0) {
        sqlv__table_free(t);
        return fail(r, "53200", "out of memory");
    }
    rc = sqlv__engine_allocate_table_id(s->engine, &t->id, &res);
    if (rc < 0 || res.sqlstate[0]) {
        sqlv__table_free(t);
        return rc < 0 ? fail(r, "53200", "out of memory") : fail(r, res.sqlstate, res.message);
    }
    if (block_kv(r, &sp) != STMT_OK) {
        sqlv__table_free(t);
        return STMT_FAILED;
    }
    rc = sqlv__catalog_put(s->kv, t, &res);
    if (rc < 0 || res.sqlstate[0]) {
        txn_rollback_to(s->kv, sp);
        sqlv__table_free(t);
        return rc < 0 ? fail(r, "53200", "out of memory") : fail(r, res.sqlstate, res.message);
    }
    txn_release(s->kv, sp);
    s->ddl.created[s->ddl.ncreated++] = t;
    s->ddl_version++;
    return emit_tag(r, "CREATE TABLE");
}

/* Drops names (tables or views) in the block: notices sent, no tag. */
static int drop_in_block_quiet(run *r, char **names, int n, bool if_exists) {
    sqlv_session *s = r->s;
    sqlv__result res;
    uint32_t ids[DROP_NAMES_MAX], sp;
    int nids = 0;
    char notice[160] = "";
    memset(&res, 0, sizeof(res));
    if (block_begin(r) != STMT_OK) return STMT_FAILED;
    for (int i = 0; i < n; i++) {
        uint32_t id;
        (void)session_find(s, names[i], &id);
        if (id == 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "table \"%s\" does not exist%s", names[i],
                     if_exists ? ", skipping" : "");
            if (!if_exists) return fail(r, "42P01", msg);
            base_strlcpy(notice, msg, sizeof(notice));
            continue;
        }
        bool dup = false;
        for (int j = 0; j < nids; j++)
            dup |= ids[j] == id;
        if (dup) continue;
        ids[nids] = id;
        names[nids] = names[i]; /* i >= nids: compacts in place */
        nids++;
    }
    if (nids > 0) {
        if (grow_ids((void **)&s->ddl.dropped, &s->ddl.cap_dropped, s->ddl.ndropped + nids,
                     sizeof(*s->ddl.dropped)) != 0)
            return fail(r, "53200", "out of memory");
        if (block_kv(r, &sp) != STMT_OK) return STMT_FAILED;
        for (int j = 0; j < nids; j++) {
            int rc = sqlv__catalog_drop(s->kv, names[j], ids[j],
                                        !txn_db_has_ranges(s->engine->db), &res);
            if (rc < 0 || res.sqlstate[0]) {
                txn_rollback_to(s->kv, sp);
                return rc < 0 ? fail(r, "53200", "out of memory")
                              : fail(r, res.sqlstate, res.message);
            }
        }
        txn_release(s->kv, sp);
        for (int j = 0; j < nids; j++) {
            bool was_created = false;
            for (int i = 0; i < s->ddl.ncreated; i++) {
                if (s->ddl.created[i]->id != ids[j]) continue;
                sqlv__table_free(s->ddl.created[i]);
                memmove(&s->ddl.created[i], &s->ddl.created[i + 1],
                        sizeof(*s->ddl.created) * (size_t)(s->ddl.ncreated - i - 1));
                s->ddl.ncreated--;
                was_created = true;
                break;
            }
            if (!was_created) s->ddl.dropped[s->ddl.ndropped++] = ids[j];
        }
        s->ddl_version++;
    }
    if (notice[0]) emit_notice(r, notice);
    return STMT_OK;
}

static int drop_in_block(run *r, char **names, int n, bool if_exists) {
    if (drop_in_block_quiet(r, names, n, if_exists) != STMT_OK) return STMT_FAILED;
    return emit_tag(r, "DROP TABLE");
}

static int do_create_table_text(run *r, const char *text, size_t len);

/* CREATE TABLE; SERIAL / IDENTITY columns become defaults drawing from
** sequences the table owns (sequence.c), created first: the table's
** CommandComplete is the statement's last word. A table that then fails
** takes them back (in a block, its rollback does). */
static int do_create_table(run *r, const char *text, size_t len) {
    sqlv_session *s = r->s;
    char *full = NULL, state[6], msg[200];
    sqlv__seq_spec *specs = NULL; /* owner: this function */
    int nspecs = 0;
    int rc = sqlv__seq_table_rewrite(text, len, &full, &specs, &nspecs, state, msg, sizeof(msg));
    if (rc < 0) return fail(r, "53200", "out of memory");
    if (rc > 0) return fail(r, state, msg);
    if (full == NULL) return do_create_table_text(r, text, len);
    if (s->status == 'T' && block_begin(r) != STMT_OK) {
        rc = STMT_FAILED;
    } else if (sqlv__priv_require_database(r, SQLV__PRIV_CREATE) != STMT_OK ||
               sqlv__priv_require_references(r, text, len) != STMT_OK) {
        rc = STMT_FAILED;
    } else if (sqlv__session_find_id(s, specs[0].table) != 0) {
        rc = do_create_table_text(r, full, strlen(full)); /* its 42P07, or IF NOT EXISTS's notice */
    } else {
        rc = sqlv__seq_create_owned(r, specs, nspecs);
        if (rc == STMT_OK) {
            rc = do_create_table_text(r, full, strlen(full));
            if (rc != STMT_OK && s->status == 'I') sqlv__seq_drop_specs(s, specs, nspecs);
        }
    }
    base_free(full);
    sqlv__seq_specs_free(specs, nspecs);
    return rc;
}

static int do_create_table_text(run *r, const char *text, size_t len) {
    sqlv__result res;
    char *sql;
    int rc;
    if (r->s->status == 'T' && block_begin(r) != STMT_OK) return STMT_FAILED;
    if (sqlv__priv_require_database(r, SQLV__PRIV_CREATE) != STMT_OK) return STMT_FAILED;
    if (sqlv__priv_require_references(r, text, len) != STMT_OK) return STMT_FAILED;
    sql = base_strndup(text, len);
    if (sql == NULL) return fail(r, "53200", "out of memory");
    char owned[SQLV__NAME_BYTES_MAX * 4 + 1] = ""; /* the new table, for its owner row */
    sqlv__table *parsed = NULL;
    bool ine = false;
    if (sqlv__table_parse(sql, 0, &parsed, &ine, res.sqlstate, res.message, sizeof(res.message)) ==
        0)
        base_strlcpy(owned, parsed->name, sizeof(owned));
    sqlv__table_free(parsed);
    if (r->s->status == 'T') {
        rc = create_in_block(r, sql);
        base_free(sql);
        if (rc == STMT_OK && owned[0]) sqlv__priv_record_owner(r->s, owned);
        return rc;
    }
    memset(&res, 0, sizeof(res));
    rc = sqlv__engine_create_table(r->s->engine, sql, &res);
    base_free(sql);
    if (rc < 0) return fail(r, "XX000", "internal error in CREATE TABLE");
    if (res.sqlstate[0]) return fail(r, res.sqlstate, res.message);
    if (res.notice[0]) emit_notice(r, res.notice);
    else if (owned[0]) sqlv__priv_record_owner(r->s, owned); /* not on IF NOT EXISTS's skip */
    return emit_tag(r, "CREATE TABLE");
}

/* A DDL statement outside a block that must be one transaction (DROP TABLE
** with the sequences its tables own; DROP SEQUENCE ... CASCADE with the
** defaults it drops): fn runs in a block of its own, as ALTER TABLE's, and
** the tag waits for the commit. STMT result. */
static int run_in_own_block(run *r, int (*fn)(run *r, void *arg), void *arg, const char *tag) {
    sqlv_session *s = r->s;
    sqlv_sink quiet = *r->sink;
    quiet.command_complete = NULL; /* fn's tag: ours goes after the commit */
    run q = {s, &quiet, 0};
    s->status = 'T';
    int result = block_begin(&q) == STMT_OK ? fn(&q, arg) : STMT_FAILED;
    if (q.sink_rc != 0) r->sink_rc = q.sink_rc;
    if (result != STMT_OK) {
        if (s->kv) txn_rollback(s->kv);
        s->kv = NULL;
        s->status = 'I';
        end_block_ddl(s);
        return result;
    }
    txn_error err = {{0}, {0}};
    if (do_commit_quiet(r, &err) != STMT_OK) return STMT_FAILED;
    return emit_tag(r, tag);
}

typedef struct drop_table_args {
    char **names;
    int n;
    bool if_exists;
    bool cascade;
} drop_table_args;

/* ---- views (view.c; docs/sql.md "Views") ---------------------------------------------
** CREATE VIEW and DROP VIEW run in the block (outside one, in a block of
** their own, as DROP TABLE with sequences): the view's query is prepared
** on the session's connection with the block's declarations, and the
** catalog row goes through the block's transaction, so ROLLBACK removes
** it and the overlay (s->ddl) shows it to the block at once. */

/* The relations the session sees (s->cat minus the block's drops plus its
** creations), borrowed until the next DDL. owner of *out: caller
** (base_free). 0 or SQLV_ERR_NOMEM. */
static int session_relations(sqlv_session *s, const sqlv__table ***out, int *n) {
    const sqlv__catalog *c = s->cat;
    const sqlv__table **l = base_calloc((size_t)(c->ntables + s->ddl.ncreated + 1), sizeof(*l));
    int m = 0;
    if (l == NULL) return SQLV_ERR_NOMEM;
    for (int i = 0; i < c->ntables; i++) {
        bool dropped = false;
        for (int d = 0; d < s->ddl.ndropped && !dropped; d++)
            dropped = s->ddl.dropped[d] == c->tables[i]->id;
        if (!dropped) l[m++] = c->tables[i];
    }
    for (int i = 0; i < s->ddl.ncreated; i++)
        l[m++] = s->ddl.created[i];
    *out = l;
    *n = m;
    return 0;
}

/* The relation name as the session sees it, or NULL (borrowed). */
static const sqlv__table *session_relation(sqlv_session *s, const char *name) {
    uint32_t id;
    int i = session_find(s, name, &id);
    if (i >= 0) return s->ddl.created[i];
    return id ? sqlv__catalog_find_id(s->cat, id) : NULL;
}

/* A statement for tables only (ALTER TABLE, TRUNCATE, CREATE INDEX, COPY
** FROM) naming a view: 42809 with fmt (one %s, the name) sent, true. The
** session's catalog (its block's; else the last one seen). */
static bool view_refused(run *r, const char *name, const char *fmt) {
    const sqlv__table *t = session_relation(r->s, name);
    if (t == NULL || !t->is_view) return false;
    char shown[SQLV__NAME_BYTES_MAX * 4 + 1], msg[sizeof(shown) + 100];
    base_strlcpy(shown, name, sizeof(shown));
    snprintf(msg, sizeof(msg), fmt, shown);
    fail(r, "42809", msg);
    return true;
}

/* The relation after the first ON (CREATE INDEX) or after COPY, and for
** COPY whether FROM follows it; false when there is none. */
static bool target_of(const char *text, size_t len, bool copy, char *name, size_t size,
                      bool *from) {
    const char *p = text, *end = text + len;
    sqlv__token t = sqlv__lex_next(&p, end);
    *from = false;
    for (int guard = 0; !copy && guard < 64; guard++) {
        t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) return false;
        if (sqlv__tok_is(&t, "ON")) break;
    }
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "ONLY")) t = sqlv__lex_next(&p, end);
    if (sqlv__tok_ident(&t, name, size) != 0) return false;
    if (t.kind == SQLV__TOK_WORD)
        for (char *c = name; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
    for (int guard = 0; copy && guard < SQLV__COLUMNS_MAX + 8; guard++) {
        t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END || sqlv__tok_is(&t, "TO")) break;
        if (sqlv__tok_is(&t, "FROM")) {
            *from = true;
            break;
        }
    }
    return true;
}

#define VIEW_CASCADE_MAX 256 /* views one DROP checks or cascades to */

/* The views (beyond ids) that read ids[0..nids) into out (VIEW_CASCADE_MAX
** slots): 0, or STMT_FAILED with the error sent. */
static int session_dependents(run *r, const uint32_t *ids, int nids, uint32_t *out, int *nout) {
    const sqlv__table **rels = NULL;
    int nrels = 0;
    *nout = 0;
    if (session_relations(r->s, &rels, &nrels) != 0) return fail(r, "53200", "out of memory");
    int rc = sqlv__view_dependents(rels, nrels, ids, nids, out, nout, VIEW_CASCADE_MAX);
    base_free(rels);
    if (rc != 0) return fail(r, "54000", "too many dependent views");
    return STMT_OK;
}

/* The dependents of ids: 2BP01 naming what (kind "table" or "view")
** without cascade, else dropped first (a notice each). STMT result. */
static int drop_dependents(run *r, const uint32_t *ids, int nids, bool cascade, const char *kind,
                           const char *what) {
    uint32_t deps[VIEW_CASCADE_MAX];
    int ndeps = 0;
    char msg[SQLV__NAME_BYTES_MAX * 4 + 100];
    if (session_dependents(r, ids, nids, deps, &ndeps) != STMT_OK) return STMT_FAILED;
    if (ndeps == 0) return STMT_OK;
    if (!cascade) {
        snprintf(msg, sizeof(msg), "cannot drop %s %.63s because other objects depend on it", kind,
                 what);
        return fail(r, "2BP01", msg);
    }
    char names[VIEW_CASCADE_MAX][SQLV__NAME_BYTES_MAX * 4 + 1];
    char *ptrs[VIEW_CASCADE_MAX];
    int n = 0;
    for (int i = 0; i < ndeps; i++) {
        sqlv__table *t = NULL;
        if (sqlv__session_table(r->s, deps[i], &t) != 0) continue;
        base_strlcpy(names[n], t->name, sizeof(names[n]));
        ptrs[n] = names[n];
        sqlv__table_free(t);
        snprintf(msg, sizeof(msg), "drop cascades to view %s", names[n]);
        emit_notice(r, msg);
        n++;
    }
    return n > 0 ? drop_in_block_quiet(r, ptrs, n, false) : STMT_OK;
}

/* The overlay after the catalog row of t (a new view, or one replacing
** view id t->id) was written in the block; t moves into it. */
static int overlay_put(sqlv_session *s, sqlv__table *t, bool replacing) {
    for (int i = 0; i < s->ddl.ncreated; i++) {
        if (s->ddl.created[i]->id != t->id) continue;
        sqlv__table_free(s->ddl.created[i]); /* created in this block: replaced in place */
        s->ddl.created[i] = t;
        s->ddl_version++;
        return 0;
    }
    if (grow_ids((void **)&s->ddl.created, &s->ddl.cap_created, s->ddl.ncreated + 1,
                 sizeof(*s->ddl.created)) != 0 ||
        (replacing && grow_ids((void **)&s->ddl.dropped, &s->ddl.cap_dropped,
                               s->ddl.ndropped + 1, sizeof(*s->ddl.dropped)) != 0))
        return -1;
    if (replacing) s->ddl.dropped[s->ddl.ndropped++] = t->id; /* altered: dropped and created */
    s->ddl.created[s->ddl.ncreated++] = t;
    s->ddl_version++;
    return 0;
}

static int create_view_in_block(run *r, void *arg) {
    sqlv_session *s = r->s;
    const char *text = arg;
    sqlv__view_stmt v;
    sqlv__table *t = NULL; /* owner: this function until the overlay takes it */
    sqlite3_stmt *st = NULL;
    char *query = NULL, state[6], msg[600];
    sqlv__result res;
    uint32_t sp;
    int result = STMT_FAILED;
    memset(&res, 0, sizeof(res));
    if (sqlv__view_parse(text, strlen(text), &v, state, msg, sizeof(msg)) != 0) {
        base_free(v.cols);
        return fail(r, state, msg);
    }
    if (block_begin(r) != STMT_OK) goto done;
    if (sqlv__priv_require_database(r, SQLV__PRIV_CREATE) != STMT_OK) goto done;
    const sqlv__table *old = session_relation(s, v.name);
    if (old != NULL && (!v.or_replace || !old->is_view)) {
        if (v.or_replace) {
            snprintf(msg, sizeof(msg), "\"%s\" is not a view", v.name);
            fail(r, "42809", msg);
        } else {
            snprintf(msg, sizeof(msg), "relation \"%s\" already exists", v.name);
            fail(r, "42P07", msg);
        }
        goto done;
    }
    /* the query, prepared with the block's declarations: its columns, its
    ** reads (the dependencies), the creator's SELECT privileges */
    if (sync_tables(s) != 0 || (query = base_strndup(v.query, v.query_len)) == NULL ||
        sqlv__view_reads_begin(s) != 0) {
        fail(r, "53200", "out of memory");
        goto done;
    }
    s->err_sqlstate[0] = 0;
    s->err_message[0] = 0;
    const char *tail = NULL;
    sqlv__priv_statement(query, strlen(query));
    int prc = sqlite3_prepare_v2(s->db, query, -1, &st, &tail);
    sqlv__priv_statement(NULL, 0);
    if (prc != SQLITE_OK || st == NULL) {
        sqlv__view_reads_end(s);
        if (prc == SQLITE_OK) {
            fail(r, "42601", "syntax error at end of input");
        } else {
            map_error(s, prc, state, msg, sizeof(msg));
            fail(r, state, msg);
        }
        goto done;
    }
    if (!sqlite3_stmt_readonly(st)) {
        sqlv__view_reads_end(s);
        fail(r, "42601", "a view's query must be a SELECT");
        goto done;
    }
    int mrc = sqlv__view_make(s, v.name, v.cols, v.ncols, query, st, &t, state, msg, sizeof(msg));
    sqlv__view_reads_end(s);
    if (mrc < 0) {
        fail(r, "53200", "out of memory");
        goto done;
    }
    if (mrc > 0) {
        fail(r, state, msg);
        goto done;
    }
    if (old != NULL) { /* OR REPLACE: PostgreSQL's rules for the columns */
        if (t->ncols < old->ncols) {
            fail(r, "42P16", "cannot drop columns from view");
            goto done;
        }
        for (int i = 0; i < old->ncols; i++) {
            if (sqlite3_stricmp(t->cols[i].name, old->cols[i].name) == 0) continue;
            snprintf(msg, sizeof(msg), "cannot change name of view column \"%s\" to \"%s\"",
                     old->cols[i].name, t->cols[i].name);
            fail(r, "42P16", msg);
            goto done;
        }
        uint32_t deps[VIEW_CASCADE_MAX];
        int ndeps = 0;
        if (session_dependents(r, &old->id, 1, deps, &ndeps) != STMT_OK) goto done;
        if (ndeps < VIEW_CASCADE_MAX) deps[ndeps++] = old->id;
        for (int i = 0; i < t->nview_deps; i++) {
            for (int k = 0; k < ndeps; k++) {
                if (t->view_deps[i] != deps[k]) continue;
                snprintf(msg, sizeof(msg), "infinite recursion detected in rules for relation "
                         "\"%s\"", v.name);
                fail(r, "42P17", msg);
                goto done;
            }
        }
        t->id = old->id;
    } else {
        int arc = sqlv__engine_allocate_table_id(s->engine, &t->id, &res);
        if (arc < 0 || res.sqlstate[0]) {
            if (arc < 0) fail(r, "53200", "out of memory");
            else fail(r, res.sqlstate, res.message);
            goto done;
        }
    }
    bool replacing = old != NULL;
    if (block_kv(r, &sp) != STMT_OK) goto done;
    int crc = sqlv__catalog_put(s->kv, t, &res);
    if (crc < 0 || res.sqlstate[0]) {
        txn_rollback_to(s->kv, sp);
        if (crc < 0) fail(r, "53200", "out of memory");
        else fail(r, res.sqlstate, res.message);
        goto done;
    }
    txn_release(s->kv, sp);
    if (overlay_put(s, t, replacing) != 0) {
        fail(r, "53200", "out of memory");
        goto done;
    }
    t = NULL;
    if (!replacing) sqlv__priv_record_owner(s, v.name);
    result = emit_tag(r, "CREATE VIEW");
done:
    sqlite3_finalize(st);
    sqlv__table_free(t);
    base_free(query);
    base_free(v.cols);
    return result;
}

static int drop_views_in_block(run *r, void *arg) {
    sqlv_session *s = r->s;
    sqlv__view_drop *d = arg;
    uint32_t ids[SQLV__VIEW_DROP_MAX];
    char *names[SQLV__VIEW_DROP_MAX];
    char msg[SQLV__NAME_BYTES_MAX * 4 + 100];
    int n = 0;
    if (block_begin(r) != STMT_OK) return STMT_FAILED;
    for (int i = 0; i < d->n; i++) {
        const sqlv__table *t = session_relation(s, d->names[i]);
        if (t == NULL) {
            snprintf(msg, sizeof(msg), "view \"%s\" does not exist%s", d->names[i],
                     d->if_exists ? ", skipping" : "");
            if (!d->if_exists) return fail(r, "42P01", msg);
            emit_notice(r, msg);
            continue;
        }
        if (!t->is_view) {
            snprintf(msg, sizeof(msg), "\"%s\" is not a view", d->names[i]);
            return fail(r, "42809", msg);
        }
        if (sqlv__priv_require_table(r, d->names[i], SQLV__PRIV_DROP) != STMT_OK)
            return STMT_FAILED;
        bool dup = false;
        for (int j = 0; j < n; j++)
            dup |= ids[j] == t->id;
        if (dup) continue;
        ids[n] = t->id;
        names[n++] = d->names[i];
    }
    if (n == 0) return emit_tag(r, "DROP VIEW");
    if (drop_dependents(r, ids, n, d->cascade, "view", names[0]) != STMT_OK) return STMT_FAILED;
    if (drop_in_block_quiet(r, names, n, false) != STMT_OK) return STMT_FAILED;
    return emit_tag(r, "DROP VIEW");
}

static int do_create_view(run *r, const char *text, size_t len) {
    char *copy = base_strndup(text, len); /* owner: this function */
    if (copy == NULL) return fail(r, "53200", "out of memory");
    int rc = r->s->status == 'T' ? create_view_in_block(r, copy)
                                 : run_in_own_block(r, create_view_in_block, copy, "CREATE VIEW");
    base_free(copy);
    return rc;
}

static int do_drop_view(run *r, const char *text, size_t len) {
    char state[6], msg[200];
    sqlv__view_drop *d = base_calloc(1, sizeof(*d)); /* owner: this function */
    if (d == NULL) return fail(r, "53200", "out of memory");
    int rc = sqlv__view_drop_parse(text, len, d, state, msg, sizeof(msg)) != 0
                 ? fail(r, state, msg)
             : r->s->status == 'T' ? drop_views_in_block(r, d)
                                   : run_in_own_block(r, drop_views_in_block, d, "DROP VIEW");
    base_free(d);
    return rc;
}

/* DROP TABLE in the block (its privileges, the sequences the tables own
** first, then the tables). */
static int drop_tables_in_block(run *r, void *arg) {
    drop_table_args *a = arg;
    uint32_t ids[DROP_NAMES_MAX];
    int nids = 0;
    if (block_begin(r) != STMT_OK) return STMT_FAILED;
    for (int i = 0; i < a->n; i++) { /* every name before anything is dropped */
        const sqlv__table *t = session_relation(r->s, a->names[i]);
        if (t != NULL && t->is_view) {
            char msg[SQLV__NAME_BYTES_MAX * 4 + 64];
            snprintf(msg, sizeof(msg), "\"%s\" is not a table (use DROP VIEW to remove a view)",
                     a->names[i]);
            return fail(r, "42809", msg);
        }
        if (t != NULL) ids[nids++] = t->id;
        if (sqlv__priv_require_table(r, a->names[i], SQLV__PRIV_DROP) != STMT_OK)
            return STMT_FAILED;
    }
    if (nids > 0 && drop_dependents(r, ids, nids, a->cascade, "table", a->names[0]) != STMT_OK)
        return STMT_FAILED;
    if (sqlv__seq_drop_owned(r, a->names, a->n) != STMT_OK) return STMT_FAILED;
    return drop_in_block(r, a->names, a->n, a->if_exists);
}

/* DROP SEQUENCE (sequence.c, which checks its owner); with CASCADE outside
** a block, in a block of its own: the defaults it drops go with it. */
static int drop_sequence_in_block(run *r, void *arg) {
    const char *text = arg;
    if (block_begin(r) != STMT_OK) return STMT_FAILED;
    return sqlv__seq_stmt(r, text, strlen(text));
}

/* DROP OWNED BY role[, ...] [CASCADE | RESTRICT], PostgreSQL's: in the
** block, after privileges.c's checks, the tables, views and sequences the
** roles own go together (another view that reads one of them: 2BP01, or
** dropped too with CASCADE; a column default drawing from a sequence
** likewise, sequence.c), then every privilege granted to the roles. */
static int drop_owned_in_block(run *r, void *arg) {
    sqlv_session *s = r->s;
    sqlv__owned_stmt *o = arg;
    const sqlv__table **rels = NULL;
    sqlv__seq_def *seqs = NULL;
    char(*names)[SQLV__NAME_BYTES_MAX * 4 + 1] = NULL; /* owner: this function */
    char *ptrs[DROP_NAMES_MAX], *tables[DROP_NAMES_MAX];
    uint32_t ids[DROP_NAMES_MAX];
    char state[6] = "", msg[300];
    txn_error err = {{0}, {0}};
    base_buf text = {0};
    int nrels = 0, nseqs = 0, n = 0, ntables = 0, result = STMT_FAILED;
    if (block_begin(r) != STMT_OK) return STMT_FAILED;
    int rc = sqlv__priv_drop_owned_check(s, s->kv, o, state, msg, sizeof(msg), &err);
    if (rc != TXN_OK) return fail_txn(r, rc, &err);
    if (state[0]) return fail(r, state, msg);
    if (session_relations(s, &rels, &nrels) != 0 ||
        (names = base_calloc(DROP_NAMES_MAX, sizeof(*names))) == NULL) {
        fail(r, "53200", "out of memory");
        goto done;
    }
    for (int i = 0; i < nrels; i++) {
        bool owned = false;
        for (int k = 0; k < o->nids && !owned; k++)
            owned = o->ids[k] == rels[i]->id;
        if (!owned) continue;
        if (n == DROP_NAMES_MAX) {
            fail(r, "54000", "too many objects in DROP OWNED");
            goto done;
        }
        base_strlcpy(names[n], rels[i]->name, sizeof(names[n]));
        ptrs[n] = names[n];
        if (!rels[i]->is_view) tables[ntables++] = names[n];
        ids[n++] = rels[i]->id;
    }
    if (n > 0) {
        uint32_t deps[VIEW_CASCADE_MAX];
        int ndeps = 0;
        if (session_dependents(r, ids, n, deps, &ndeps) != STMT_OK) goto done;
        if (ndeps > 0 && !o->cascade) {
            /* PostgreSQL names the object when it is the only one */
            if (n == 1 && o->nids == 1)
                snprintf(msg, sizeof(msg),
                         "cannot drop %s %.63s because other objects depend on it",
                         ntables == 1 ? "table" : "view", names[0]);
            else
                base_strlcpy(msg, "cannot drop desired object(s) because other objects depend on "
                                  "them", sizeof(msg));
            fail(r, "2BP01", msg);
            goto done;
        }
        if (drop_dependents(r, ids, n, true, "table", names[0]) != STMT_OK) goto done;
        if (ntables > 0 && sqlv__seq_drop_owned(r, tables, ntables) != STMT_OK) goto done;
        if (drop_in_block_quiet(r, ptrs, n, false) != STMT_OK) goto done;
    }
    /* the sequences left (a table's went with it): one DROP SEQUENCE, quiet */
    if ((rc = sqlv__seq_list(s->kv, &seqs, &nseqs, &err)) != TXN_OK) {
        fail_txn(r, rc, &err);
        goto done;
    }
    bool any = false;
    for (int i = 0; i < nseqs; i++) {
        bool owned = false;
        for (int k = 0; k < o->nids && !owned; k++)
            owned = o->ids[k] == seqs[i].id;
        if (!owned) continue;
        char *q = sqlite3_mprintf("%s \"%w\"", any ? "," : "DROP SEQUENCE", seqs[i].name);
        int arc = q != NULL ? base_buf_append(&text, q, strlen(q)) : -1;
        sqlite3_free(q);
        if (arc != 0) {
            fail(r, "53200", "out of memory");
            goto done;
        }
        any = true;
    }
    if (any) {
        const char *tail = o->cascade ? " CASCADE" : "";
        sqlv_sink quiet = *r->sink;
        quiet.command_complete = NULL; /* DROP OWNED's tag, not DROP SEQUENCE's */
        run q = {s, &quiet, 0};
        if (base_buf_append(&text, tail, strlen(tail) + 1) != 0) {
            fail(r, "53200", "out of memory");
            goto done;
        }
        int src = sqlv__seq_stmt(&q, (const char *)text.data, text.len - 1);
        if (q.sink_rc != 0) r->sink_rc = q.sink_rc;
        if (src != STMT_OK) goto done;
    }
    if ((rc = sqlv__priv_drop_owned_revoke(s->kv, o, &err)) != TXN_OK) {
        fail_txn(r, rc, &err);
        goto done;
    }
    sqlv__priv_invalidate(s);
    result = emit_tag(r, "DROP OWNED");
done:
    base_free(rels);
    base_free(seqs);
    base_free(names);
    base_buf_free(&text);
    return result;
}

static int do_drop_owned(run *r, const char *p, const char *end) {
    char state[6], msg[200];
    sqlv__owned_stmt *o = base_calloc(1, sizeof(*o)); /* owner: this function */
    if (o == NULL) return fail(r, "53200", "out of memory");
    int rc = sqlv__priv_owned_parse(r->s, p, end, false, o, state, msg, sizeof(msg)) != 0
                 ? fail(r, state, msg)
             : r->s->status == 'T' ? drop_owned_in_block(r, o)
                                   : run_in_own_block(r, drop_owned_in_block, o, "DROP OWNED");
    sqlv__priv_owned_free(o);
    base_free(o);
    return rc;
}

static int do_drop_table(run *r, const char *p, const char *end) {
    char *names[DROP_NAMES_MAX];
    char buf[DROP_NAMES_MAX][SQLV__NAME_BYTES_MAX * 4 + 1];
    int n = 0;
    bool if_exists = false;
    sqlv__result res;
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
    bool cascade = sqlv__tok_is(&t, "CASCADE");
    if (sqlv__tok_is(&t, "CASCADE") || sqlv__tok_is(&t, "RESTRICT")) t = sqlv__lex_next(&p, end);
    if (t.kind != SQLV__TOK_END) return fail(r, "42601", "syntax error in DROP TABLE");
    drop_table_args a = {names, n, if_exists, cascade};
    if (r->s->status == 'T') return drop_tables_in_block(r, &a);
    /* outside a block the tables and the sequences they own go in one
    ** transaction: the statement's own block (no retry of a 40001 then) */
    if (sqlv__seq_tables_own_any(r->s, names, n))
        return run_in_own_block(r, drop_tables_in_block, &a, "DROP TABLE");
    for (int i = 0; i < n; i++) /* every name before anything is dropped */
        if (sqlv__priv_require_table(r, names[i], SQLV__PRIV_DROP) != STMT_OK) return STMT_FAILED;
    int rc = sqlv__engine_drop_tables(r->s->engine, names, n, if_exists, cascade, &res);
    if (rc < 0) return fail(r, "XX000", "internal error in DROP TABLE");
    if (res.sqlstate[0]) return fail(r, res.sqlstate, res.message);
    if (res.notice[0]) emit_notice(r, res.notice);
    return emit_tag(r, "DROP TABLE");
}

/* ---- savepoints ------------------------------------------------------------------------
** SAVEPOINT name / ROLLBACK TO [SAVEPOINT] name / RELEASE [SAVEPOINT] name
** with PostgreSQL's semantics, inside an explicit block only (25P01
** elsewhere, the implicit block of a multi-statement string too). Names
** repeat; the newest wins. ROLLBACK TO undoes the KV writes (txn_rollback_to)
** and the DDL overlay made after the savepoint, destroys the later ones,
** keeps this one and brings a failed block ('E') back to 'T'; the reads made
** after it stay in the read set and the locks stay held (txn/txn.h), both
** safe for serializability. RELEASE destroys it and the later ones; their
** writes stay. SET is not undone (as ROLLBACK, docs/sql.md). ROLLBACK TO
** drops the portals bound after the savepoint. One exception, CockroachDB's
** retry protocol: RELEASE of cockroach_restart taken first and outermost
** commits the block (release_commit). */

/* The name that ends the statement at p (after an optional SAVEPOINT
** keyword when skip_keyword): folded to lower case unless quoted, as
** PostgreSQL folds identifiers. 0, or -1 (syntax). */
static int savepoint_name(const char *p, const char *end, bool skip_keyword, char *out,
                          size_t size) {
    const char *save = p;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (skip_keyword && sqlv__tok_is(&t, "SAVEPOINT")) {
        const char *after = p;
        if (sqlv__lex_next(&p, end).kind == SQLV__TOK_END) {
            p = save; /* RELEASE savepoint: a savepoint named "savepoint" */
        } else {
            p = after;
        }
        t = sqlv__lex_next(&p, end);
    }
    if (sqlv__tok_ident(&t, out, size) != 0) return -1;
    if (t.kind == SQLV__TOK_WORD)
        for (char *c = out; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
    return sqlv__lex_next(&p, end).kind == SQLV__TOK_END ? 0 : -1;
}

/* Index of the newest savepoint named name, or -1. */
static int savepoint_find(const sqlv_session *s, const char *name) {
    for (int i = s->nsavepoints - 1; i >= 0; i--)
        if (strcmp(s->savepoints[i].name, name) == 0) return i;
    return -1;
}

/* A deep copy of from into *to. 0, or -1 (out of memory; *to empty). */
static int pending_ddl_copy(const sqlv__pending_ddl *from, sqlv__pending_ddl *to) {
    memset(to, 0, sizeof(*to));
    if (from->ncreated > 0) {
        to->created = base_calloc((size_t)from->ncreated, sizeof(*to->created));
        if (to->created == NULL) return -1;
        to->cap_created = from->ncreated;
        for (; to->ncreated < from->ncreated; to->ncreated++)
            if (sqlv__table_clone(from->created[to->ncreated], &to->created[to->ncreated]) != 0)
                goto nomem;
    }
    if (from->ndropped > 0) {
        to->dropped = base_calloc((size_t)from->ndropped, sizeof(*to->dropped));
        if (to->dropped == NULL) goto nomem;
        to->cap_dropped = to->ndropped = from->ndropped;
        memcpy(to->dropped, from->dropped, sizeof(*to->dropped) * (size_t)from->ndropped);
    }
    return 0;
nomem:
    sqlv__pending_ddl_clear(to);
    return -1;
}

/* 25P01 outside an explicit block. true when refused (error sent). */
static bool savepoint_outside_block(run *r, const char *what) {
    sqlv_session *s = r->s;
    char msg[96];
    if (s->status != 'I' && !s->implicit_block) return false;
    snprintf(msg, sizeof(msg), "%s can only be used in transaction blocks", what);
    fail(r, "25P01", msg);
    return true;
}

static int savepoint_missing(run *r, const char *name) {
    char msg[SQLV__NAME_BYTES_MAX * 4 + 64];
    snprintf(msg, sizeof(msg), "savepoint \"%s\" does not exist", name);
    return fail(r, "3B001", msg);
}

static int do_savepoint(run *r, const char *p, const char *end) {
    sqlv_session *s = r->s;
    char name[SQLV__NAME_BYTES_MAX * 4 + 1], msg[96];
    sqlv__savepoint sp;
    txn_error err = {{0}, {0}};
    if (savepoint_outside_block(r, "SAVEPOINT")) return STMT_FAILED;
    if (savepoint_name(p, end, false, name, sizeof(name)) != 0)
        return fail(r, "42601", "syntax error in SAVEPOINT");
    if (s->nsavepoints >= SQLV__SAVEPOINTS_MAX) {
        snprintf(msg, sizeof(msg), "too many savepoints in one transaction (maximum %d)",
                 SQLV__SAVEPOINTS_MAX);
        return fail(r, "54000", msg);
    }
    /* allocate everything first: a refused SAVEPOINT changes nothing */
    memset(&sp, 0, sizeof(sp));
    if (grow_ids((void **)&s->savepoints, &s->cap_savepoints, s->nsavepoints + 1,
                 sizeof(*s->savepoints)) != 0 ||
        (sp.name = base_strdup(name)) == NULL || pending_ddl_copy(&s->ddl, &sp.ddl) != 0) {
        base_free(sp.name);
        return fail(r, "53200", "out of memory");
    }
    /* The block's KV transaction begins here if no statement began it: the
    ** savepoint then marks its very start (at_start). */
    sp.at_start = s->kv == NULL;
    sp.portal_seq = s->portal_seq;
    int rc = block_begin(r);
    if (rc == STMT_OK) {
        rc = txn_savepoint(s->kv, &sp.kv_sp);
        if (rc != TXN_OK) rc = fail_txn(r, rc, &err);
    }
    if (rc != STMT_OK) {
        base_free(sp.name);
        sqlv__pending_ddl_clear(&sp.ddl);
        return STMT_FAILED;
    }
    s->savepoints[s->nsavepoints++] = sp;
    return emit_tag(r, "SAVEPOINT");
}

static int do_rollback_to(run *r, const char *p, const char *end) {
    sqlv_session *s = r->s;
    char name[SQLV__NAME_BYTES_MAX * 4 + 1], msg[SQLV__NAME_BYTES_MAX * 4 + 400];
    sqlv__pending_ddl ddl;
    txn_error err = {{0}, {0}};
    if (savepoint_outside_block(r, "ROLLBACK TO SAVEPOINT")) return STMT_FAILED;
    if (savepoint_name(p, end, true, name, sizeof(name)) != 0)
        return fail(r, "42601", "syntax error in ROLLBACK TO SAVEPOINT");
    int i = savepoint_find(s, name);
    if (i < 0) return savepoint_missing(r, name);
    sqlv__savepoint *sp = &s->savepoints[i];
    if (pending_ddl_copy(&sp->ddl, &ddl) != 0) return fail(r, "53200", "out of memory");
    int rc = s->kv ? txn_rollback_to(s->kv, sp->kv_sp) : TXN_ERR_DONE;
    if (rc == TXN_ERR_DONE && !sp->at_start) {
        /* the KV transaction was aborted (the error above: a 40001 of a
        ** lock wait or refresh, a lost range): its writes before the
        ** savepoint cannot be kept, so the whole transaction must retry */
        sqlv__pending_ddl_clear(&ddl);
        snprintf(msg, sizeof(msg),
                 "cannot roll back to savepoint \"%s\": the transaction was aborted by an earlier "
                 "error; only a savepoint taken before the block's first statement (SAVEPOINT "
                 "cockroach_restart right after BEGIN) restarts it; ROLLBACK and retry the "
                 "transaction",
                 name);
        return fail(r, "40001", msg);
    }
    if (rc != TXN_OK && rc != TXN_ERR_DONE) {
        sqlv__pending_ddl_clear(&ddl);
        return fail_txn(r, rc, &err); /* TXN_ERR_INVALID: the stacks disagree (a bug) */
    }
    savepoints_pop(s, i + 1);
    bool ddl_changed = s->ddl.ncreated || s->ddl.ndropped || ddl.ncreated || ddl.ndropped;
    sqlv__pending_ddl_clear(&s->ddl);
    s->ddl = ddl;
    if (ddl_changed) s->ddl_version++;
    if (rc == TXN_ERR_DONE) {
        /* at_start: nothing came before the savepoint, so a new KV
        ** transaction (a new read timestamp and catalog) is the block rolled
        ** back to it. The old one's reads go with it (they were made after
        ** the savepoint): CockroachDB's restart. */
        BASE_DEBUG(MOD, "ROLLBACK TO SAVEPOINT %s: restarting the aborted transaction", name);
        if (s->kv) txn_rollback(s->kv); /* NULL: an earlier restart failed */
        s->kv = NULL;
        rc = sqlv__session_begin(s, false, &err);
        if (rc == TXN_OK) rc = txn_savepoint(s->kv, &sp->kv_sp);
        if (rc != TXN_OK) {
            sqlv__portals_drop_after(s, sp->portal_seq);
            return fail_txn(r, rc, &err); /* 'E'; the savepoint stays */
        }
    }
    /* portals bound after the savepoint go with it, as in PostgreSQL */
    sqlv__portals_drop_after(s, sp->portal_seq);
    s->status = 'T';
    return emit_tag(r, "ROLLBACK");
}

/* The savepoint whose RELEASE commits (CockroachDB's commit-on-release):
** named cockroach_restart, the outermost one, taken before the block's
** first statement. Any other keeps PostgreSQL's RELEASE. */
static bool savepoint_commits_on_release(const sqlv_session *s, int i) {
    return i == 0 && s->savepoints[0].at_start &&
           strcmp(s->savepoints[0].name, SQLV__RESTART_SAVEPOINT) == 0;
}

/* SAVEPOINT cockroach_restart again in a failed block: CockroachDB takes it
** for ROLLBACK TO SAVEPOINT cockroach_restart (for drivers that open a new
** subtransaction object to retry). [p, end) follows SAVEPOINT. */
static bool savepoint_restarts(const sqlv_session *s, const char *p, const char *end) {
    char name[SQLV__NAME_BYTES_MAX * 4 + 1];
    if (s->status != 'E' || savepoint_name(p, end, false, name, sizeof(name)) != 0) return false;
    return savepoint_find(s, name) == 0 && savepoint_commits_on_release(s, 0);
}

/* RELEASE of the restart savepoint: commit the block's KV transaction now
** (commit wait included), so that a 40001 reaches the client while it can
** still ROLLBACK TO SAVEPOINT cockroach_restart and retry. Success: the
** block awaits COMMIT (s->awaiting_commit), tag COMMIT as CockroachDB's.
** 40001: 'E' with the restart savepoint kept (ROLLBACK TO it begins a new
** KV transaction). Any other error (40003 ambiguous, 57P03, I/O): 'E'
** without savepoints, only ROLLBACK is left (CockroachDB's rule: the
** commit may have happened, it must not be retried blindly). */
static int release_commit(run *r) {
    sqlv_session *s = r->s;
    txn_error err = {{0}, {0}};
    uint32_t *created = NULL, *dropped = NULL; /* owner: this function */
    int ncreated = 0, ndropped = 0;
    if (block_ddl_ids(s, &created, &ncreated, &dropped, &ndropped) != 0)
        return fail(r, "53200", "out of memory"); /* 'E'; kv alive, ROLLBACK TO works */
    txn *kv = s->kv;
    s->kv = NULL;
    txn_commit_info info;
    int rc = kv ? txn_commit_with_info(kv, &info, &err) : TXN_ERR_DONE; /* frees kv */
    if (rc == TXN_OK) {
        sqlv__note_commit(s, &info);
        end_block_ddl(s); /* the savepoints and the DDL overlay */
        sqlv__engine_after_ddl(s->engine, created, ncreated, dropped, ndropped);
    }
    base_free(created);
    base_free(dropped);
    if (rc != TXN_OK) {
        savepoints_pop(s, rc == TXN_ERR_RETRY ? 1 : 0);
        return fail_txn(r, rc, &err); /* 'T' -> 'E' */
    }
    s->awaiting_commit = true;
    sqlv__portals_drop_after(s, 0); /* their transaction ended */
    return emit_tag(r, "COMMIT");
}

/* COMMIT or ROLLBACK of a block RELEASE committed: it ends, the data stays
** (CockroachDB answers COMMIT to both); any other statement 25000. t, t2:
** the statement's first two tokens, p after them. */
static int committed_block_statement(run *r, const sqlv__token *t, const sqlv__token *t2,
                                     const char *p, const char *end) {
    sqlv_session *s = r->s;
    bool ends = sqlv__tok_is(t, "COMMIT") || sqlv__tok_is(t, "END");
    if (sqlv__tok_is(t, "ROLLBACK") || sqlv__tok_is(t, "ABORT")) {
        sqlv__token to = *t2;
        if (sqlv__tok_is(t2, "WORK") || sqlv__tok_is(t2, "TRANSACTION"))
            to = sqlv__lex_next(&p, end);
        ends = !sqlv__tok_is(&to, "TO"); /* ROLLBACK TO: the savepoint is gone */
    }
    if (!ends) return emit_error(r, "25000", SQLV__COMMITTED_MESSAGE);
    s->awaiting_commit = false;
    s->status = 'I';
    end_block_ddl(s); /* nothing left: RELEASE ended it */
    return emit_tag(r, "COMMIT");
}

static int do_release(run *r, const char *p, const char *end) {
    sqlv_session *s = r->s;
    char name[SQLV__NAME_BYTES_MAX * 4 + 1];
    txn_error err = {{0}, {0}};
    if (savepoint_outside_block(r, "RELEASE SAVEPOINT")) return STMT_FAILED;
    if (savepoint_name(p, end, true, name, sizeof(name)) != 0)
        return fail(r, "42601", "syntax error in RELEASE SAVEPOINT");
    int i = savepoint_find(s, name);
    if (i < 0) return savepoint_missing(r, name);
    if (savepoint_commits_on_release(s, i)) return release_commit(r);
    int rc = s->kv ? txn_release(s->kv, s->savepoints[i].kv_sp) : TXN_ERR_DONE;
    if (rc != TXN_OK) return fail_txn(r, rc, &err);
    savepoints_pop(s, i);
    return emit_tag(r, "RELEASE");
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

/* ---- result column names and types, as PostgreSQL reports them ------------------------
** SQLite names a result column by its alias, or else by the source text of
** its expression ("count(*)", "2", "a > 1"). PostgreSQL names an unaliased
** expression by its function name ("count"), "bool" for a boolean literal,
** "case" for CASE, and "?column?" otherwise. An expression column is told
** from an alias by looking for its name in the statement text outside
** double quotes (an alias that needs quotes appears only inside them). */

#define COLUMN_NAME_BYTES_MAX 64
/* The name/alias search scans the statement text once or twice per result
** column; past this many scanned bytes per statement (a huge text with many
** columns) the remaining columns keep SQLite's names and inferred types. */
#define COLUMN_NAME_SCAN_BYTES_MAX (64u * 1024 * 1024)

/* Does name occur in [text, text+len) other than as a "quoted" identifier? */
static bool name_is_span(const char *text, size_t len, const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > len) return false;
    /* memmem is linear (two-way): no quadratic scan of a huge statement */
    const char *p = text, *end = text + len;
    for (;;) {
        const char *hit = memmem(p, (size_t)(end - p), name, n);
        if (hit == NULL) return false;
        bool quoted = hit > text && hit[-1] == '"' && hit + n < end && hit[n] == '"';
        if (!quoted) return true;
        p = hit + 1;
    }
}

/* Is the expression text (a whole result expression) a comparison or a
** logical operation at its top level (outside parentheses and CASE)? Those
** have lower precedence than every arithmetic operator, so the value is a
** SQL boolean (0, 1 or NULL). TRUE/FALSE literals too. */
static bool expr_is_boolean(const char *p, const char *end) {
    static const char *const words[] = {"IS",      "IN",     "LIKE",    "GLOB",  "BETWEEN",
                                        "NOT",     "AND",    "OR",      "EXISTS", "ISNULL",
                                        "NOTNULL", "REGEXP", "MATCH"};
    int depth = 0, ntok = 0;
    bool boolean = false;
    const char *start = p;
    for (int guard = 0; guard < 100000; guard++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        ntok++;
        if (sqlv__tok_punct(&t, '(') || sqlv__tok_is(&t, "CASE")) {
            depth++;
            continue;
        }
        if (sqlv__tok_punct(&t, ')') || sqlv__tok_is(&t, "END")) {
            depth--;
            continue;
        }
        if (depth != 0) continue;
        if (ntok == 1 && sqlv__tok_is(&t, "meridian_bool")) boolean = true; /* x::boolean */
        if (ntok == 1 && sqlv__tok_is(&t, "pg_catalog")) { /* pg_catalog.f(...) */
            const char *q = p;
            sqlv__token dot = sqlv__lex_next(&q, end);
            if (sqlv__tok_punct(&dot, '.')) {
                p = q;
                ntok = 0;
                continue;
            }
        }
        if (ntok == 1 && t.kind == SQLV__TOK_WORD &&
            sqlv__pgcatalog_fn_is_boolean(t.start, t.len)) { /* has_table_privilege(...) */
            const char *q = p;
            sqlv__token paren = sqlv__lex_next(&q, end);
            if (sqlv__tok_punct(&paren, '(')) boolean = true;
        }
        if (ntok == 1 && (sqlv__tok_is(&t, "TRUE") || sqlv__tok_is(&t, "FALSE"))) {
            /* alone: a boolean; "true AND x": AND decides below */
            const char *q = p;
            if (sqlv__lex_next(&q, end).kind == SQLV__TOK_END) return true;
            continue;
        }
        if (t.kind == SQLV__TOK_PUNCT) {
            char c = t.start[0];
            char next = t.start + 1 < end ? t.start[1] : 0;
            char prev = t.start > start ? t.start[-1] : 0;
            if (c == '=' && prev != '<' && prev != '>' && prev != '!') boolean = true;
            if ((c == '<' || c == '>') && next != c && prev != c && prev != '-') boolean = true;
            if (c == '!' && next == '=') boolean = true;
            continue;
        }
        for (size_t i = 0; i < BASE_ARRAY_LEN(words); i++)
            if (sqlv__tok_is(&t, words[i])) boolean = true;
    }
    return boolean;
}

/* The expression an alias names in the statement text: finds "AS alias" at
** parenthesis depth 0 and returns the text from the start of that select
** item (after SELECT/DISTINCT/ALL or a depth-0 comma) up to AS. false if not
** found. */
static bool alias_expression(const char *text, size_t len, const char *alias, const char **estart,
                             const char **eend) {
    const char *p = text, *end = text + len, *item = NULL;
    int depth = 0;
    for (int guard = 0; guard < 1000000; guard++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        if (sqlv__tok_punct(&t, '(')) {
            depth++;
            continue;
        }
        if (sqlv__tok_punct(&t, ')')) {
            depth--;
            continue;
        }
        if (depth != 0) continue;
        if (sqlv__tok_is(&t, "SELECT") || sqlv__tok_is(&t, "DISTINCT") ||
            sqlv__tok_is(&t, "ALL") || sqlv__tok_punct(&t, ',')) {
            item = p;
            continue;
        }
        if (sqlv__tok_is(&t, "AS") && item != NULL) {
            const char *as = t.start;
            sqlv__token a = sqlv__lex_next(&p, end);
            char ident[COLUMN_NAME_BYTES_MAX];
            if (sqlv__tok_ident(&a, ident, sizeof(ident)) != 0) continue;
            bool same = a.kind == SQLV__TOK_WORD ? sqlite3_stricmp(ident, alias) == 0
                                                 : strcmp(ident, alias) == 0;
            if (same) {
                *estart = item;
                *eend = as;
                return true;
            }
        }
    }
    return false;
}

/* PostgreSQL's name for an unaliased expression whose source text is expr. */
static void expr_column_name(const char *expr, char *out, size_t size) {
    const char *p = expr, *end = expr + strlen(expr);
    sqlv__token t1 = sqlv__lex_next(&p, end);
    sqlv__token t2 = sqlv__lex_next(&p, end);
    base_strlcpy(out, "?column?", size);
    if (t1.kind == SQLV__TOK_WORD && t2.kind == SQLV__TOK_END) {
        if (sqlv__tok_is(&t1, "TRUE") || sqlv__tok_is(&t1, "FALSE")) {
            base_strlcpy(out, "bool", size);
        } else if (!sqlv__tok_is(&t1, "NULL")) {
            /* a column of a subquery, CURRENT_DATE...: lower case as an
            ** unquoted identifier */
            size_t i = 0;
            for (; i < t1.len && i + 1 < size; i++)
                out[i] = (char)((t1.start[i] >= 'A' && t1.start[i] <= 'Z') ? t1.start[i] + 32
                                                                          : t1.start[i]);
            out[i] = 0;
        }
        return;
    }
    if (sqlv__tok_is(&t1, "CASE")) {
        base_strlcpy(out, "case", size);
        return;
    }
    if ((sqlv__tok_is(&t1, "CAST") || sqlv__tok_is(&t1, "meridian_bool") ||
         sqlv__tok_is(&t1, "meridian_regclass")) &&
        sqlv__tok_punct(&t2, '(')) {
        /* x::type (dialect.c): PostgreSQL names it by the column x, else
        ** by the type */
        static const char *const names[][2] = {
            {"INTEGER", "int4"}, {"BIGINT", "int8"}, {"SMALLINT", "int2"}, {"TEXT", "text"},
            {"REAL", "float8"},  {"NUMERIC", "numeric"}, {"BLOB", "bytea"}};
        bool is_regclass = sqlv__tok_is(&t1, "meridian_regclass"); /* x::regclass */
        bool is_bool = sqlv__tok_is(&t1, "meridian_bool") || is_regclass;
        int depth = 1, ninner = 0;
        sqlv__token inner = {SQLV__TOK_END, NULL, 0}, type = inner, t = t2;
        for (int guard = 0; depth > 0 && guard < 100000; guard++) {
            t = sqlv__lex_next(&p, end);
            if (t.kind == SQLV__TOK_END) return;
            if (sqlv__tok_punct(&t, '(')) depth++;
            if (sqlv__tok_punct(&t, ')')) depth--;
            if (depth == 1 && sqlv__tok_is(&t, "AS") && !is_bool) {
                type = sqlv__lex_next(&p, end);
                continue;
            }
            if (depth >= 1 && type.kind == SQLV__TOK_END) {
                if (sqlv__tok_punct(&t, '.')) ninner = 0; /* t.col: the column */
                else {
                    inner = t;
                    ninner++;
                }
            }
        }
        if (sqlv__lex_next(&p, end).kind != SQLV__TOK_END) return;
        if (ninner == 1 && inner.kind == SQLV__TOK_WORD) {
            size_t i = 0;
            for (; i < inner.len && i + 1 < size; i++)
                out[i] = (char)((inner.start[i] >= 'A' && inner.start[i] <= 'Z')
                                    ? inner.start[i] + 32
                                    : inner.start[i]);
            out[i] = 0;
            return;
        }
        if (is_bool) {
            base_strlcpy(out, is_regclass ? "regclass" : "bool", size);
            return;
        }
        for (size_t i = 0; i < BASE_ARRAY_LEN(names); i++)
            if (sqlv__tok_is(&type, names[i][0])) base_strlcpy(out, names[i][1], size);
        return;
    }
    if ((t1.kind == SQLV__TOK_WORD || t1.kind == SQLV__TOK_QUOTED) && sqlv__tok_punct(&t2, '(') &&
        !sqlv__tok_is(&t1, "CAST")) {
        /* name(...) and nothing after the matching parenthesis */
        int depth = 1;
        sqlv__token t = t2;
        for (int guard = 0; depth > 0 && guard < 100000; guard++) {
            t = sqlv__lex_next(&p, end);
            if (t.kind == SQLV__TOK_END) return;
            if (sqlv__tok_punct(&t, '(')) depth++;
            if (sqlv__tok_punct(&t, ')')) depth--;
        }
        if (depth != 0) return;
        /* name(...) [FILTER (...)] [OVER ...]: still named by the function */
        sqlv__token after = sqlv__lex_next(&p, end);
        if (after.kind != SQLV__TOK_END && !sqlv__tok_is(&after, "FILTER") &&
            !sqlv__tok_is(&after, "OVER"))
            return;
        char ident[COLUMN_NAME_BYTES_MAX];
        if (sqlv__tok_ident(&t1, ident, sizeof(ident)) != 0) return;
        if (t1.kind == SQLV__TOK_WORD && t1.len > 14 && after.kind == SQLV__TOK_END &&
            strncasecmp(t1.start, "meridian_cast_", 14) == 0) {
            /* x::date (dialect.c): named by x if x has a name (a column, a
            ** call), else by the type, as PostgreSQL's FigureColname */
            char inner[1024];
            sqlv__token in1 = sqlv__lex_next(&(const char *){t2.start + 1}, end);
            size_t n = (size_t)(t.start - (t2.start + 1));
            /* x::timestamp(0) is f(x, 0): x ends at the first comma outside parentheses */
            const char *q = t2.start + 1;
            int d = 0;
            for (int guard = 0; guard < 100000; guard++) {
                sqlv__token c = sqlv__lex_next(&q, t.start);
                if (c.kind == SQLV__TOK_END) break;
                if (sqlv__tok_punct(&c, '(')) d++;
                if (sqlv__tok_punct(&c, ')')) d--;
                if (d == 0 && sqlv__tok_punct(&c, ',')) {
                    n = (size_t)(c.start - (t2.start + 1));
                    break;
                }
            }
            base_strlcpy(out, ident + 14, size);
            if (n < sizeof(inner) && !sqlv__tok_is(&in1, "CAST") && !sqlv__tok_is(&in1, "CASE") &&
                !(in1.kind == SQLV__TOK_WORD && in1.len > 9 &&
                  strncasecmp(in1.start, "meridian_", 9) == 0)) {
                char sub[COLUMN_NAME_BYTES_MAX];
                memcpy(inner, t2.start + 1, n);
                inner[n] = 0;
                expr_column_name(inner, sub, sizeof(sub));
                if (strcmp(sub, "?column?") != 0) base_strlcpy(out, sub, size);
            }
            return;
        }
        if (t1.kind == SQLV__TOK_WORD)
            for (char *c = ident; *c; c++)
                if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
        base_strlcpy(out, ident, size);
    }
}

static int describe(run *r, sqlite3_stmt *st, const char *text, size_t len, bool have_row,
                    uint32_t *oids) {
    int n = sqlite3_column_count(st);
    sqlv_column *cols = base_calloc((size_t)n, sizeof(*cols));
    char(*names)[COLUMN_NAME_BYTES_MAX] = base_calloc((size_t)n, COLUMN_NAME_BYTES_MAX);
    if (cols == NULL || names == NULL) {
        base_free(cols);
        base_free(names);
        return -1;
    }
    size_t scan_budget = COLUMN_NAME_SCAN_BYTES_MAX;
    for (int i = 0; i < n; i++) {
        const char *decl = sqlite3_column_decltype(st, i);
        const char *name = sqlite3_column_name(st, i);
        int type = have_row ? sqlite3_column_type(st, i) : SQLITE_NULL;
        bool scan = scan_budget >= 2 * len;
        if (scan) scan_budget -= 2 * len;
        if (name == NULL) name = "?column?";
        if (decl) {
            oids[i] = sqlv__class_oid(sqlv__class_of_decl(decl));
            if (scan && name_is_span(text, len, name)) {
                /* an unquoted alias or column name: folded to lower case,
                ** as PostgreSQL folds unquoted identifiers */
                const char *p = name, *e = name + strlen(name);
                sqlv__token t1 = sqlv__lex_next(&p, e);
                if (t1.kind == SQLV__TOK_WORD && sqlv__lex_next(&p, e).kind == SQLV__TOK_END) {
                    expr_column_name(name, names[i], COLUMN_NAME_BYTES_MAX);
                    name = names[i];
                }
            }
        } else {
            oids[i] = have_row ? value_oid(type) : SQLV_OID_TEXT;
            bool span = scan && name_is_span(text, len, name);
            if (scan && (type == SQLITE_INTEGER || type == SQLITE_NULL)) {
                const char *es, *ee;
                if (span && expr_is_boolean(name, name + strlen(name))) {
                    oids[i] = SQLV_OID_BOOL; /* an expression without an alias */
                } else if (alias_expression(text, len, name, &es, &ee) &&
                           expr_is_boolean(es, ee)) {
                    oids[i] = SQLV_OID_BOOL; /* an aliased one */
                }
            }
            if (span) {
                expr_column_name(name, names[i], COLUMN_NAME_BYTES_MAX);
                name = names[i];
            }
        }
        cols[i].name = name;
        cols[i].type_oid = oids[i];
        cols[i].type_size = oid_size(oids[i]);
    }
    if (r->sink_rc == 0 && r->sink->row_description)
        r->sink_rc = r->sink->row_description(r->sink->ctx, n, cols);
    base_free(cols);
    base_free(names);
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

/* Does the statement (rewritten) read a system catalog relation? */
static bool mentions_system_catalog(const char *text, size_t len) {
    const char *p = text, *end = text + len;
    for (int guard = 0; guard < 1000000; guard++) {
        char w[SQLV__NAME_BYTES_MAX + 1];
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        if (t.kind == SQLV__TOK_WORD && sqlv__tok_ident(&t, w, sizeof(w)) == 0 &&
            sqlv__pgcat_relation_oid(w) != 0)
            return true;
    }
    return false;
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

    bool force_rw = false;
    if (len > (size_t)INT32_MAX) return fail(r, "54000", "statement too long");
again:
    /* Prepared first with the declarations of the session's last catalog:
    ** the read-only choice of the transaction needs the statement. */
    if (sync_tables(s) != 0) return fail(r, "53200", "out of memory");
    s->err_sqlstate[0] = 0;
    s->err_message[0] = 0;
    rc = prepare_text(s, text, len, &st, &tail);
    if (rc == SQLITE_OK && st == NULL) return emit_tag(r, "SELECT 0"); /* only comments */
    if (s->kv == NULL) {
        /* The transaction's first statement: begin it, and read the catalog
        ** version at its read timestamp. Once per transaction is enough:
        ** its snapshot never sees a later catalog, and a read-write one
        ** that read the version fails its commit (40001) if a DDL commits
        ** in between. */
        bool ro = !force_rw && s->status == 'I' &&
                  (rc == SQLITE_OK ? sqlite3_stmt_readonly(st) != 0
                                   : kind_of(text, text + len) == KIND_SELECT);
        int brc = sqlv__session_begin(s, ro, &err);
        if (brc != TXN_OK) {
            sqlite3_finalize(st);
            return fail_txn(r, brc, &err);
        }
        if (rc != SQLITE_OK || declarations_stale(s)) {
            /* planned against another catalog, or refused by it: again,
            ** with this transaction's */
            sqlite3_finalize(st);
            st = NULL;
            if (sync_tables(s) != 0) return fail(r, "53200", "out of memory");
            s->err_sqlstate[0] = 0;
            s->err_message[0] = 0;
            rc = prepare_text(s, text, len, &st, &tail);
            if (rc == SQLITE_OK && st == NULL) {
                txn_rollback(s->kv); /* 'I': the transaction was the statement's */
                s->kv = NULL;
                return emit_tag(r, "SELECT 0");
            }
            if (rc == SQLITE_OK && ro && !sqlite3_stmt_readonly(st)) {
                /* it writes after all: a read-write transaction instead
                ** (at most once: force_rw) */
                sqlite3_finalize(st);
                st = NULL;
                txn_rollback(s->kv);
                s->kv = NULL;
                force_rw = true;
                goto again;
            }
        }
    }
    if (rc != SQLITE_OK) {
        map_error(s, rc, state, msg, sizeof(msg));
        if (s->err_sqlstate[0] == 0 &&
            (strcmp(state, "42703") == 0 || strcmp(state, "42883") == 0 ||
             strcmp(state, "42601") == 0) &&
            mentions_system_catalog(text, len)) {
            /* drivers' introspection beyond what the catalogs provide */
            char m[sizeof(msg)];
            base_strlcpy(m, msg, sizeof(m));
            base_strlcpy(state, "0A000", sizeof(state));
            snprintf(msg, sizeof(msg),
                     "%.400s (a query on the system catalogs that Meridian does not support yet)",
                     m);
        }
        return fail(r, state, msg); /* 'I': rolls the transaction back */
    }
    if (tail && sqlv__lex_skip_space(tail, text + len) != text + len) {
        sqlite3_finalize(st);
        return fail(r, "42601", "syntax error: more than one statement");
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
        if (describe(r, st, text, len, rc == SQLITE_ROW, oids) != 0) {
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
        if (may_retry && rows == 0 && s->status == 'I' && strcmp(state, "40001") == 0) {
            /* a lock wait ended in 40001 (a deadlock's victim, a failed read
            ** refresh) before anything was sent: run it again */
            if (s->kv) txn_rollback(s->kv);
            s->kv = NULL;
            result = STMT_RETRY;
            goto cleanup;
        }
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
        txn_commit_info info;
        rc = txn_commit_with_info(kv, &info, &err);
        if (rc == TXN_OK) sqlv__note_commit(s, &info);
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

/* TRUNCATE [TABLE] [ONLY] a [*] [, ...] [RESTART|CONTINUE IDENTITY]
** [CASCADE|RESTRICT]: deletes every row of each table in one transaction
** (the block's, or an implicit one), tag "TRUNCATE TABLE". */
static int do_truncate(run *r, const char *p, const char *end) {
    sqlv_session *s = r->s;
    char names[DROP_NAMES_MAX][SQLV__NAME_BYTES_MAX * 4 + 1];
    char msg[300];
    int n = 0;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "TABLE")) t = sqlv__lex_next(&p, end);
    /* the transaction first: names are looked up in its catalog ('I': an
    ** error below rolls it back) */
    if (block_begin(r) != STMT_OK) return STMT_FAILED;
    for (;;) {
        if (sqlv__tok_is(&t, "ONLY")) t = sqlv__lex_next(&p, end);
        if (n == DROP_NAMES_MAX) return fail(r, "54000", "too many tables in TRUNCATE");
        if (sqlv__tok_ident(&t, names[n], sizeof(names[n])) != 0)
            return fail(r, "42601", "syntax error in TRUNCATE");
        uint32_t id;
        (void)session_find(s, names[n], &id);
        if (id == 0) {
            snprintf(msg, sizeof(msg), "relation \"%.200s\" does not exist", names[n]);
            return fail(r, "42P01", msg);
        }
        if (view_refused(r, names[n], "\"%s\" is not a table")) return STMT_FAILED;
        n++;
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_punct(&t, '*')) t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_punct(&t, ',')) break;
        t = sqlv__lex_next(&p, end);
    }
    if (sqlv__tok_is(&t, "RESTART") || sqlv__tok_is(&t, "CONTINUE")) {
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "IDENTITY")) return fail(r, "42601", "syntax error in TRUNCATE");
        t = sqlv__lex_next(&p, end);
    }
    if (sqlv__tok_is(&t, "CASCADE") || sqlv__tok_is(&t, "RESTRICT")) t = sqlv__lex_next(&p, end);
    if (t.kind != SQLV__TOK_END) return fail(r, "42601", "syntax error in TRUNCATE");
    /* PostgreSQL's TRUNCATE privilege on every table before any row goes
    ** (DELETE is not needed, nor enough) */
    for (int i = 0; i < n; i++)
        if (sqlv__priv_require_table(r, names[i], SQLV__PRIV_TRUNCATE) != STMT_OK)
            return STMT_FAILED;
    /* The DELETEs run quietly: only errors and notices reach the client. */
    sqlv_sink quiet = *r->sink;
    quiet.row_description = NULL;
    quiet.data_row = NULL;
    quiet.command_complete = NULL;
    run q = {s, &quiet, 0};
    bool own = s->status == 'I';
    if (own) s->status = 'T'; /* one transaction for every table */
    int rc = STMT_OK;
    for (int i = 0; i < n && rc == STMT_OK && q.sink_rc == 0; i++) {
        char *del = sqlite3_mprintf("DELETE FROM \"%w\"", names[i]);
        if (del == NULL) {
            rc = fail(&q, "53200", "out of memory");
            break;
        }
        s->truncating = true;
        rc = run_sqlite(&q, del, strlen(del), false);
        s->truncating = false;
        sqlite3_free(del);
    }
    r->sink_rc = q.sink_rc;
    if (own) {
        if (rc != STMT_OK || r->sink_rc != 0) {
            if (s->kv) txn_rollback(s->kv);
            s->kv = NULL;
            s->status = 'I';
            return STMT_FAILED;
        }
        txn_error err = {{0}, {0}};
        if (do_commit_quiet(r, &err) != STMT_OK) return STMT_FAILED;
    } else if (rc != STMT_OK) {
        return STMT_FAILED;
    }
    return emit_tag(r, "TRUNCATE TABLE");
}

/* ---- ALTER TABLE ---------------------------------------------------------------------
** ALTER TABLE [IF EXISTS] [ONLY] t ADD ..., in one transaction (the
** block's, or an implicit one), looked up in that transaction's catalog;
** others see the change at their first transaction after the commit (a
** new catalog version). Two forms; any other is 0A000:
**   ADD [CONSTRAINT c] PRIMARY KEY (cols): pgbench adds its keys after
**     loading. The table is re-keyed: a new descriptor (new id) with the
**     key replaces the catalog entry under the same name, every row is
**     copied into it through SQLite (a duplicate or NULL key fails the
**     statement with 23505/23502 and changes nothing), and the old rows are
**     deleted.
**   ADD [COLUMN] [IF NOT EXISTS] c type [constraints]: the descriptor gains
**     the column under the same id and the stored rows stay as they are: a
**     row shorter than its table reads the column's missing value in the
**     columns it lacks (sqlv__row_decode_table), NULL without one. A DEFAULT
**     is evaluated once (PostgreSQL's "fast default") and, when the table
**     has rows, kept as the column's missing value (SQLV__MISSING_MARK in
**     the CREATE text); a volatile one (random(), nextval()...) is evaluated
**     per row instead, by an UPDATE of every row, as PostgreSQL's table
**     rewrite. NOT NULL with no value for the stored rows: 23502. SQLite's
**     own ALTER TABLE, in a scratch connection, writes the new CREATE text.
**   ALTER [COLUMN] c SET DEFAULT e | DROP DEFAULT | SET NOT NULL | DROP NOT
**     NULL: the column's definition in the CREATE text is rewritten (same
**     id, same rows; the missing value stays, as in PostgreSQL); SET NOT
**     NULL first reads the rows (23502 if one is NULL). */
#define REKEY_TABLE "__meridian_rekey"

/* ADD PRIMARY KEY (cols_start..cols_end) to table id (old, not created in
** this block) under the session's open transaction. STMT_OK or STMT_FAILED
** (error sent). */
static int alter_rekey(run *r, const char *name, uint32_t id, const sqlv__table *old,
                       const char *cols_start, const char *cols_end) {
    sqlv_session *s = r->s;
    sqlv__table *nt = NULL;
    sqlv__result res;
    char *sql = NULL, *q = NULL, msg[300];
    uint32_t sp;
    int result = STMT_FAILED;
    bool have_sp = false, declared = false, in_ddl = false;
    memset(&res, 0, sizeof(res));
    if (old->npk > 0) {
        snprintf(msg, sizeof(msg), "multiple primary keys for table \"%.200s\" are not allowed",
                 name);
        return fail(r, "42P16", msg);
    }
    /* the new descriptor: the old CREATE TABLE with the key added */
    const char *close = strrchr(old->create_sql, ')');
    if (close == NULL) return fail(r, "XX000", "malformed table descriptor");
    sql = sqlite3_mprintf("%.*s, PRIMARY KEY (%.*s))", (int)(close - old->create_sql),
                          old->create_sql, (int)(cols_end - cols_start), cols_start);
    if (sql == NULL) return fail(r, "53200", "out of memory");
    bool ine = false;
    int rc = sqlv__table_parse(sql, 0, &nt, &ine, res.sqlstate, res.message, sizeof(res.message));
    if (rc == 0 && sqlv__indexes_carry(nt, old, true) != 0) rc = SQLV_ERR_NOMEM; /* index.c */
    if (rc != 0) {
        result = rc < 0 ? fail(r, "53200", "out of memory") : fail(r, res.sqlstate, res.message);
        goto cleanup;
    }
    rc = sqlv__engine_allocate_table_id(s->engine, &nt->id, &res);
    if (rc < 0 || res.sqlstate[0]) {
        result = rc < 0 ? fail(r, "53200", "out of memory") : fail(r, res.sqlstate, res.message);
        goto cleanup;
    }
    if (grow_ids((void **)&s->ddl.created, &s->ddl.cap_created, s->ddl.ncreated + 1,
                 sizeof(*s->ddl.created)) != 0 ||
        grow_ids((void **)&s->ddl.dropped, &s->ddl.cap_dropped, s->ddl.ndropped + 1,
                 sizeof(*s->ddl.dropped)) != 0) {
        result = fail(r, "53200", "out of memory");
        goto cleanup;
    }
    if (sync_tables(s) != 0) { /* main."name" reads the old rows below */
        result = fail(r, "53200", "out of memory");
        goto cleanup;
    }
    if (block_kv(r, &sp) != STMT_OK) goto cleanup;
    have_sp = true;
    rc = sqlv__catalog_put(s->kv, nt, &res); /* the name now maps to the new id */
    if (rc < 0 || res.sqlstate[0]) {
        result = rc < 0 ? fail(r, "53200", "out of memory") : fail(r, res.sqlstate, res.message);
        goto cleanup;
    }
    {
        txn_error err = {{0}, {0}};
        rc = sqlv__priv_move_table(s->kv, id, nt->id, &err); /* its grants follow it */
        if (rc != TXN_OK) {
            result = fail_txn(r, rc, &err);
            goto cleanup;
        }
    }
    uint32_t new_id = nt->id;
    s->ddl.created[s->ddl.ncreated++] = nt;
    nt = NULL;
    s->ddl.dropped[s->ddl.ndropped++] = id;
    s->ddl_version++;
    in_ddl = true;
    /* copy: the new table under a temporary name, the old one still
    ** declared as main."name" (no sync until the next statement) */
    sqlite3_set_authorizer(s->db, NULL, NULL);
    q = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.\"" REKEY_TABLE "\" USING meridian(%u)", new_id);
    rc = q ? sqlite3_exec(s->db, q, NULL, NULL, NULL) : SQLITE_NOMEM;
    sqlite3_set_authorizer(s->db, authorizer, s);
    sqlite3_free(q);
    q = NULL;
    if (rc != SQLITE_OK) {
        result = fail(r, "XX000", "cannot declare the re-keyed table");
        goto cleanup;
    }
    declared = true;
    {
        /* the new id holds no rows: its uniqueness reads are answered by the
        ** write buffer instead of one GET per row (docs/txn.md 3.3) */
        base_buf a = {0}, b = {0};
        txn_error err = {{0}, {0}};
        rc = sqlv__table_span(new_id, &a, &b);
        if (rc == 0) rc = txn_delete_range(s->kv, a.data, a.len, b.data, b.len, &err);
        base_buf_free(&a);
        base_buf_free(&b);
        if (rc != 0) {
            result = fail_txn(r, rc, &err);
            goto cleanup;
        }
    }
    s->err_sqlstate[0] = 0;
    s->err_message[0] = 0;
    q = sqlite3_mprintf("INSERT INTO temp.\"" REKEY_TABLE "\" SELECT * FROM main.\"%w\"", name);
    rc = q ? sqlite3_exec(s->db, q, NULL, NULL, NULL) : SQLITE_NOMEM;
    if (rc != SQLITE_OK) {
        char state[6], m[600];
        map_error(s, rc, state, m, sizeof(m));
        if (strcmp(state, "23000") == 0) base_strlcpy(state, "23505", sizeof(state));
        result = fail(r, state, m);
        goto cleanup;
    }
    {
        base_buf a = {0}, b = {0};
        txn_error err = {{0}, {0}};
        rc = sqlv__table_span(id, &a, &b);
        if (rc == 0) rc = txn_delete_range(s->kv, a.data, a.len, b.data, b.len, &err);
        base_buf_free(&a);
        base_buf_free(&b);
        if (rc != 0) {
            result = fail_txn(r, rc, &err);
            goto cleanup;
        }
    }
    txn_release(s->kv, sp);
    have_sp = false;
    in_ddl = false;
    result = STMT_OK;
cleanup:
    if (declared) {
        sqlite3_set_authorizer(s->db, NULL, NULL);
        (void)sqlite3_exec(s->db, "DROP TABLE temp.\"" REKEY_TABLE "\"", NULL, NULL, NULL);
        sqlite3_set_authorizer(s->db, authorizer, s);
    }
    if (in_ddl) { /* undo the catalog overlay */
        s->ddl.ncreated--;
        sqlv__table_free(s->ddl.created[s->ddl.ncreated]);
        s->ddl.ndropped--;
        s->ddl_version++;
    }
    if (have_sp && s->kv) txn_rollback_to(s->kv, sp);
    sqlite3_free(q);
    sqlite3_free(sql);
    sqlv__table_free(nt);
    return result;
}

/* The CREATE text of table name with the column def added, written by
** SQLite's ALTER TABLE ADD COLUMN in a scratch connection (it places the
** column after the others, before the table constraints, and refuses
** PRIMARY KEY / UNIQUE columns). 0 with *out (owner: caller,
** sqlite3_free); 1 refused, with state/msg; <0 out of memory. */
static int add_column_sql(const char *create_sql, const char *name, const char *def,
                          size_t def_len, char **out, char state[6], char *msg, size_t size) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    char *q = NULL;
    int rc = SQLV_ERR_NOMEM;
    *out = NULL;
    if (def_len > SQLV__SQL_BYTES_MAX) {
        base_strlcpy(state, "54000", 6);
        snprintf(msg, size, "column definition too long");
        return 1;
    }
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK)
        goto cleanup;
    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    if (sqlite3_exec(db, create_sql, NULL, NULL, NULL) != SQLITE_OK) {
        base_strlcpy(state, "XX000", 6);
        snprintf(msg, size, "malformed table descriptor of \"%s\"", name);
        rc = 1;
        goto cleanup;
    }
    q = sqlite3_mprintf("ALTER TABLE main.\"%w\" ADD COLUMN %.*s", name, (int)def_len, def);
    if (q == NULL) goto cleanup;
    /* one statement only: the text after it never runs */
    int prc = sqlite3_prepare_v2(db, q, -1, &st, &tail);
    if (prc == SQLITE_OK && st != NULL && sqlv__lex_skip_space(tail, tail + strlen(tail))[0] == 0)
        prc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    else if (prc == SQLITE_OK)
        prc = SQLITE_MISUSE;
    if (prc != SQLITE_OK) {
        const char *m = prc == SQLITE_MISUSE ? "syntax error in ADD COLUMN" : sqlite3_errmsg(db);
        if (strstr(m, "duplicate column name"))
            base_strlcpy(state, "42701", 6);
        else if (prc == SQLITE_MISUSE || strstr(m, "syntax error") || strstr(m, "near \"") ||
                 strstr(m, "incomplete input"))
            base_strlcpy(state, "42601", 6);
        else
            base_strlcpy(state, "0A000", 6);
        snprintf(msg, size, "%s", m);
        rc = prc == SQLITE_NOMEM ? SQLV_ERR_NOMEM : 1;
        goto cleanup;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_schema WHERE type = 'table'", -1, &st,
                           NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        goto cleanup;
    *out = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(st, 0));
    rc = *out ? 0 : SQLV_ERR_NOMEM;
cleanup:
    sqlite3_finalize(st);
    sqlite3_free(q);
    sqlite3_close(db);
    return rc;
}

/* Does table id hold no row at the transaction's read timestamp? (The
** span read stays in the read set: a concurrent insert fails one commit.)
** STMT_OK with *empty, or STMT_FAILED (error sent). */
static int table_empty(run *r, uint32_t id, bool *empty) {
    base_buf a = {0}, b = {0};
    txn_error err = {{0}, {0}};
    txn_iter *it = NULL;
    const uint8_t *k, *v;
    size_t kl, vl;
    int rc = sqlv__table_span(id, &a, &b);
    if (rc == 0) rc = txn_scan(r->s->kv, a.data, a.len, b.data, b.len, false, &it, &err);
    if (rc == 0) {
        int n = txn_iter_next(it, &k, &kl, &v, &vl, &err);
        if (n < 0) rc = n;
        *empty = n == 0;
    } else {
        it = NULL;
    }
    if (it) txn_iter_close(it);
    base_buf_free(&a);
    base_buf_free(&b);
    if (rc == SQLV_ERR_NOMEM) return fail(r, "53200", "out of memory");
    return rc == 0 ? STMT_OK : fail_txn(r, rc, &err);
}

/* Write nt (old's id and name, a new shape) to the catalog under a
** statement savepoint and put it in the block's DDL overlay in old's place
** (old is s->ddl.created[created] when >= 0, else a table of s->cat). On
** STMT_OK *nt is taken (NULL); else the error is sent, the savepoint rolled
** back and *nt stays the caller's. */
static int ddl_replace_table(run *r, const sqlv__table *old, int created, sqlv__table **nt) {
    sqlv_session *s = r->s;
    sqlv__result res;
    uint32_t sp;
    memset(&res, 0, sizeof(res));
    if (created < 0 &&
        (grow_ids((void **)&s->ddl.created, &s->ddl.cap_created, s->ddl.ncreated + 1,
                  sizeof(*s->ddl.created)) != 0 ||
         grow_ids((void **)&s->ddl.dropped, &s->ddl.cap_dropped, s->ddl.ndropped + 1,
                  sizeof(*s->ddl.dropped)) != 0))
        return fail(r, "53200", "out of memory");
    if (block_kv(r, &sp) != STMT_OK) return STMT_FAILED;
    int rc = sqlv__catalog_put(s->kv, *nt, &res); /* same name, same id */
    if (rc < 0 || res.sqlstate[0]) {
        int result = rc < 0 ? fail(r, "53200", "out of memory") : fail(r, res.sqlstate, res.message);
        if (s->kv) txn_rollback_to(s->kv, sp);
        return result;
    }
    txn_release(s->kv, sp);
    /* the overlay: the new descriptor replaces the old one (same id) */
    if (created >= 0) {
        sqlv__table_free(s->ddl.created[created]);
        s->ddl.created[created] = *nt;
    } else {
        s->ddl.created[s->ddl.ncreated++] = *nt;
        s->ddl.dropped[s->ddl.ndropped++] = old->id;
    }
    *nt = NULL;
    s->ddl_version++;
    return STMT_OK;
}

static int rows_pass_check(run *r, const sqlv__table *t, const sqlv__check *c, bool *ok);

/* Do the stored rows of nt (read with its missing values) pass every CHECK
** of nt? STMT_OK (*failed: the first that fails, or NULL; owner: caller,
** base_free) or STMT_FAILED (error sent). */
static int rows_pass_checks(run *r, const sqlv__table *nt, char **failed) {
    sqlv__check *checks = NULL;
    int n = 0, result = STMT_OK;
    bool ok = true;
    *failed = NULL;
    if (sqlv__checks_of(nt, &checks, &n) != 0) return fail(r, "53200", "out of memory");
    for (int i = 0; i < n && ok && result == STMT_OK; i++) {
        result = rows_pass_check(r, nt, &checks[i], &ok);
        if (result == STMT_OK && !ok && (*failed = base_strdup(checks[i].name)) == NULL)
            result = fail(r, "53200", "out of memory");
    }
    sqlv__checks_free(checks, n);
    return result;
}

/* Is a default expression volatile (a value per row, PostgreSQL's
** VOLATILE functions)? Then ADD COLUMN evaluates it for each stored row. */
static bool default_is_volatile(const char *expr) {
    static const char *const fns[] = {"random",        "randomblob",     "nextval",
                                      "setval",        "gen_random_uuid", "uuid_generate_v4",
                                      "clock_timestamp", "timeofday",    "unique_rowid",
                                      "meridian_identity", "meridian_identity_always"};
    const char *p = expr, *end = expr + strlen(expr);
    sqlv__token prev = {SQLV__TOK_END, NULL, 0};
    for (int guard = 0; guard < 100000; guard++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        if (sqlv__tok_punct(&t, '(') && prev.kind == SQLV__TOK_WORD)
            for (size_t i = 0; i < BASE_ARRAY_LEN(fns); i++)
                if (sqlv__tok_is(&prev, fns[i])) return true;
        prev = t;
    }
    return false;
}

/* Column c's default evaluated once on the session's connection (its
** functions: now(), current_user...) and assigned as c stores it: *is_null,
** or the value as a one-column row appended to out. STMT_OK or STMT_FAILED
** (error sent: 22P02 for a value the column cannot take...). */
static int default_value(run *r, const sqlv__column *c, base_buf *out, bool *is_null) {
    sqlv_session *s = r->s;
    sqlv__rewrite rw;
    sqlite3_stmt *st = NULL;
    base_buf scratch = {0};
    char state[6], msg[300];
    int result = STMT_FAILED;
    *is_null = true;
    int rc = sqlv__dialect_rewrite(c->default_expr, strlen(c->default_expr), &rw);
    if (rc < 0) return fail(r, "53200", "out of memory");
    char *q = sqlite3_mprintf("SELECT (%s)", rc == 0 ? rw.text : c->default_expr);
    if (rc == 0) base_free(rw.text);
    if (q == NULL) return fail(r, "53200", "out of memory");
    s->err_sqlstate[0] = 0;
    s->err_message[0] = 0;
    rc = sqlite3_prepare_v2(s->db, q, -1, &st, NULL);
    if (rc == SQLITE_OK && st != NULL) rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        map_error(s, rc == SQLITE_OK ? SQLITE_ERROR : rc, state, msg, sizeof(msg));
        result = fail(r, state, msg);
        goto cleanup;
    }
    sqlite3_value *v = sqlite3_column_value(st, 0);
    sqlv__cell cell;
    if (base_buf_reserve(&scratch, 64 + (size_t)sqlite3_value_bytes(v)) != 0) {
        result = fail(r, "53200", "out of memory");
        goto cleanup;
    }
    rc = sqlv__assign(v, c->cls, c->decl_type[0] ? c->decl_type : "text", &scratch, &cell, state,
                      msg, sizeof(msg));
    if (rc != 0) {
        result = rc < 0 ? fail(r, "53200", "out of memory") : fail(r, state, msg);
        goto cleanup;
    }
    *is_null = cell.type == SQLITE_NULL;
    if (!*is_null && sqlv__row_encode(out, &cell, 1) != 0) {
        result = fail(r, "53200", "out of memory");
        goto cleanup;
    }
    result = STMT_OK;
cleanup:
    sqlite3_finalize(st);
    sqlite3_free(q);
    base_buf_free(&scratch);
    return result;
}

/* ADD COLUMN [def, def_end) (starting with the column's name col) to old,
** which is s->ddl.created[created] (>= 0) or a table of s->cat. */
static int alter_add_column(run *r, const sqlv__table *old, int created, const char *def,
                            const char *def_end, const char *col, bool if_not_exists) {
    sqlv_session *s = r->s;
    sqlv__table *nt = NULL;
    char *sql = NULL, state[6], msg[600];
    base_buf missing = {0}; /* the default as a one-column row; owner: here */
    bool empty = true;
    int result = STMT_FAILED;
    for (int i = 0; i < old->ncols; i++) {
        if (sqlite3_stricmp(old->cols[i].name, col) != 0) continue;
        snprintf(msg, sizeof(msg), "column \"%.100s\" of relation \"%.100s\" already exists%s",
                 col, old->name, if_not_exists ? ", skipping" : "");
        if (!if_not_exists) return fail(r, "42701", msg);
        emit_notice(r, msg);
        return STMT_OK;
    }
    int rc = add_column_sql(old->create_sql, old->name, def, (size_t)(def_end - def), &sql, state,
                            msg, sizeof(msg));
    if (rc < 0) return fail(r, "53200", "out of memory");
    if (rc > 0) return fail(r, state, msg);
    rc = sqlv__table_parse(sql, old->id, &nt, NULL, state, msg, sizeof(msg));
    if (rc < 0) {
        result = fail(r, "53200", "out of memory");
        goto cleanup;
    }
    if (rc > 0) {
        result = fail(r, state, msg);
        goto cleanup;
    }
    if (nt->ncols != old->ncols + 1 || nt->npk != old->npk ||
        sqlite3_stricmp(nt->name, old->name) != 0) {
        result = fail(r, "XX000", "unexpected table definition after ADD COLUMN");
        goto cleanup;
    }
    if (sqlv__indexes_carry(nt, old, false) != 0) { /* index.c */
        result = fail(r, "53200", "out of memory");
        goto cleanup;
    }
    const sqlv__column *nc = &nt->cols[nt->ncols - 1];
    bool per_row = nc->default_expr != NULL && default_is_volatile(nc->default_expr);
    bool is_null = true;
    if (nc->default_expr != NULL && !per_row &&
        default_value(r, nc, &missing, &is_null) != STMT_OK) /* once, as PostgreSQL */
        goto cleanup;
    if ((nc->not_null || nc->default_expr != NULL) &&
        table_empty(r, old->id, &empty) != STMT_OK)
        goto cleanup;
    if (!empty && nc->not_null && !per_row && is_null) {
        snprintf(msg, sizeof(msg), "column \"%.100s\" of relation \"%.100s\" contains null values",
                 nc->name, old->name);
        result = fail(r, "23502", msg);
        goto cleanup;
    }
    if (!empty && !per_row && !is_null) {
        /* the stored rows read the value: a comment before the final ')' */
        const char *close = strrchr(sql, ')');
        base_buf hex = {0};
        for (size_t i = 0; i < missing.len; i++)
            if (base_buf_printf(&hex, "%02x", missing.data[i]) != 0) break;
        char *marked =
            close && base_buf_append_byte(&hex, 0) == 0
                ? sqlite3_mprintf("%.*s " SQLV__MISSING_MARK "%d %s*/%s", (int)(close - sql), sql,
                                  nt->ncols - 1, (const char *)hex.data, close)
                : NULL;
        base_buf_free(&hex);
        sqlv__table_free(nt);
        nt = NULL;
        rc = marked ? sqlv__table_parse(marked, old->id, &nt, NULL, state, msg, sizeof(msg))
                    : SQLV_ERR_NOMEM;
        sqlite3_free(marked);
        if (rc == 0 && sqlv__indexes_carry(nt, old, false) != 0) rc = SQLV_ERR_NOMEM;
        if (rc != 0) {
            result = rc < 0 ? fail(r, "53200", "out of memory") : fail(r, state, msg);
            goto cleanup;
        }
    }
    if (!empty && !per_row && !is_null) {
        /* a CHECK of the new column sees the value in every stored row */
        sqlv__check *oc = NULL, *ncs = NULL;
        int on = 0, nn = 0;
        char *failed = NULL;
        if (sqlv__checks_of(old, &oc, &on) != 0 || sqlv__checks_of(nt, &ncs, &nn) != 0) {
            sqlv__checks_free(oc, on);
            result = fail(r, "53200", "out of memory");
            goto cleanup;
        }
        sqlv__checks_free(oc, on);
        sqlv__checks_free(ncs, nn);
        if (nn > on) {
            if (rows_pass_checks(r, nt, &failed) != STMT_OK) goto cleanup;
            if (failed != NULL) {
                snprintf(msg, sizeof(msg),
                         "check constraint \"%.100s\" of relation \"%.100s\" is violated by "
                         "some row",
                         failed, old->name);
                base_free(failed);
                result = fail(r, "23514", msg);
                goto cleanup;
            }
        }
    }
    char *expr = NULL; /* owner: this function (base_free) */
    if (!empty && per_row) {
        sqlv__rewrite rw;
        rc = sqlv__dialect_rewrite(nc->default_expr, strlen(nc->default_expr), &rw);
        if (rc < 0) {
            result = fail(r, "53200", "out of memory");
            goto cleanup;
        }
        expr = rc == 0 ? rw.text : base_strdup(nc->default_expr);
        if (expr == NULL) {
            result = fail(r, "53200", "out of memory");
            goto cleanup;
        }
    }
    char colname[SQLV__NAME_BYTES_MAX * 4 + 1];
    base_strlcpy(colname, nt->cols[nt->ncols - 1].name, sizeof(colname));
    result = ddl_replace_table(r, old, created, &nt); /* one more column */
    if (result == STMT_OK && expr != NULL) {
        /* a volatile default: every stored row gets its own value, through
        ** the new declaration (the statement's write set) */
        char *q = sqlite3_mprintf("UPDATE main.\"%w\" SET \"%w\" = (%s)", old->name, colname,
                                  expr);
        if (q == NULL || sync_tables(s) != 0) {
            result = fail(r, "53200", "out of memory");
        } else {
            s->err_sqlstate[0] = 0;
            s->err_message[0] = 0;
            int erc = sqlite3_exec(s->db, q, NULL, NULL, NULL);
            if (erc != SQLITE_OK) {
                map_error(s, erc, state, msg, sizeof(msg));
                result = fail(r, state, msg);
            }
        }
        sqlite3_free(q);
    }
    base_free(expr);
cleanup:
    base_buf_free(&missing);
    sqlite3_free(sql);
    sqlv__table_free(nt);
    return result;
}

/* ADD COLUMN c SERIAL / GENERATED ... AS IDENTITY: the sequence the column
** owns is created in the ALTER's transaction (sequence.c), then the column
** with its default, which fills the stored rows one value each (in key
** order; PostgreSQL's table rewrite). Other definitions go as they are. */
static int alter_add_column_seq(run *r, const sqlv__table *old, int created, const char *def,
                                const char *def_end, const char *col, bool if_not_exists) {
    char *probe = NULL, *full = NULL, state[6], msg[200];
    sqlv__seq_spec *specs = NULL; /* owner: this function */
    int nspecs = 0, result = STMT_FAILED;
    for (int i = 0; i < old->ncols; i++) /* already there: no sequence either */
        if (sqlite3_stricmp(old->cols[i].name, col) == 0)
            return alter_add_column(r, old, created, def, def_end, col, if_not_exists);
    /* the definition as a one-column CREATE TABLE, for the rewrite */
    probe = sqlite3_mprintf("CREATE TABLE \"%w\" (%.*s)", old->name, (int)(def_end - def), def);
    if (probe == NULL) return fail(r, "53200", "out of memory");
    int rc = sqlv__seq_table_rewrite(probe, strlen(probe), &full, &specs, &nspecs, state, msg,
                                     sizeof(msg));
    if (rc < 0) {
        result = fail(r, "53200", "out of memory");
    } else if (rc > 0) {
        result = fail(r, state, msg);
    } else if (full == NULL) {
        result = alter_add_column(r, old, created, def, def_end, col, if_not_exists);
    } else if (sqlv__seq_create_owned(r, specs, nspecs) == STMT_OK) {
        /* the rewritten definition: between "CREATE TABLE name (" and the last ')' */
        const char *open = strchr(full, '('), *close = strrchr(full, ')');
        if (open == NULL || close == NULL || close < open)
            result = fail(r, "XX000", "unexpected column definition");
        else
            result = alter_add_column(r, old, created, open + 1, close, col, if_not_exists);
    }
    base_free(full);
    sqlv__seq_specs_free(specs, nspecs);
    sqlite3_free(probe);
    return result;
}

typedef enum alter_col_action {
    ALTER_COL_NONE = 0,
    ALTER_COL_SET_DEFAULT,
    ALTER_COL_DROP_DEFAULT,
    ALTER_COL_SET_NOT_NULL,
    ALTER_COL_DROP_NOT_NULL,
} alter_col_action;

/* The definition of column col in a CREATE text: [*start, *end) from its
** name to the end of its last token. false if not found. */
static bool column_def_span(const char *create_sql, const char *col, const char **start,
                            const char **end) {
    const char *p = create_sql, *e = create_sql + strlen(create_sql);
    int depth = 0;
    bool item_start = false;
    char name[SQLV__NAME_BYTES_MAX * 4 + 1];
    *start = NULL;
    for (int guard = 0; guard < 10000000; guard++) {
        sqlv__token t = sqlv__lex_next(&p, e);
        if (t.kind == SQLV__TOK_END) return false;
        if (*start != NULL && depth == 1 && (sqlv__tok_punct(&t, ',') || sqlv__tok_punct(&t, ')')))
            return true;
        if (sqlv__tok_punct(&t, '(') && ++depth == 1) {
            item_start = true;
            continue;
        }
        if (sqlv__tok_punct(&t, ')')) depth--;
        if (depth == 1 && sqlv__tok_punct(&t, ',')) {
            item_start = true;
            continue;
        }
        if (*start != NULL) {
            *end = t.start + t.len;
            continue;
        }
        if (item_start && depth == 1 && !sqlv__tok_is(&t, "CONSTRAINT") &&
            !sqlv__tok_is(&t, "PRIMARY") && !sqlv__tok_is(&t, "UNIQUE") &&
            !sqlv__tok_is(&t, "CHECK") && !sqlv__tok_is(&t, "FOREIGN") &&
            sqlv__tok_ident(&t, name, sizeof(name)) == 0 && sqlite3_stricmp(name, col) == 0) {
            *start = t.start;
            *end = t.start + t.len;
        }
        item_start = false;
    }
    return false;
}

/* The column definition [d, e) without its DEFAULT clause (drop_default)
** and its NOT NULL / NULL constraint (drop_null), appended to out. 0 or -1. */
static int column_def_strip(const char *d, const char *e, bool drop_default, bool drop_null,
                            base_buf *out) {
    const char *p = d, *copied = d;
    sqlv__token prev = {SQLV__TOK_END, NULL, 0}, prev2 = prev;
    int depth = 0;
    for (int guard = 0; guard < 10000000; guard++) {
        sqlv__token t = sqlv__lex_next(&p, e);
        if (t.kind == SQLV__TOK_END) break;
        if (sqlv__tok_punct(&t, '(')) depth++;
        if (sqlv__tok_punct(&t, ')')) depth--;
        const char *cut = NULL; /* the start of a clause to leave out */
        if (depth == 0 && drop_default && sqlv__tok_is(&t, "DEFAULT") &&
            !sqlv__tok_is(&prev, "SET")) {
            cut = sqlv__tok_is(&prev2, "CONSTRAINT") ? prev2.start : t.start;
            const char *q = p;
            sqlv__token v = sqlv__lex_next(&q, e);
            if (sqlv__tok_punct(&v, '-') || sqlv__tok_punct(&v, '+')) v = sqlv__lex_next(&q, e);
            if (sqlv__tok_punct(&v, '(')) {
                for (int d2 = 1; d2 > 0 && v.kind != SQLV__TOK_END;) {
                    v = sqlv__lex_next(&q, e);
                    if (sqlv__tok_punct(&v, '(')) d2++;
                    if (sqlv__tok_punct(&v, ')')) d2--;
                }
            }
            p = q;
        } else if (depth == 0 && drop_null && sqlv__tok_is(&t, "NOT")) {
            const char *q = p;
            sqlv__token n = sqlv__lex_next(&q, e);
            if (sqlv__tok_is(&n, "NULL")) {
                cut = sqlv__tok_is(&prev2, "CONSTRAINT") ? prev2.start : t.start;
                p = q;
            }
        } else if (depth == 0 && drop_null && sqlv__tok_is(&t, "NULL") &&
                   !sqlv__tok_is(&prev, "SET") && !sqlv__tok_is(&prev, "DEFAULT")) {
            cut = sqlv__tok_is(&prev2, "CONSTRAINT") ? prev2.start : t.start;
        }
        if (cut != NULL) {
            /* and its ON CONFLICT clause */
            const char *q = p;
            sqlv__token o = sqlv__lex_next(&q, e);
            if (sqlv__tok_is(&o, "ON")) {
                sqlv__token c2 = sqlv__lex_next(&q, e);
                if (sqlv__tok_is(&c2, "CONFLICT")) {
                    (void)sqlv__lex_next(&q, e);
                    p = q;
                }
            }
            if (base_buf_append(out, copied, (size_t)(cut - copied)) != 0) return -1;
            copied = p;
            prev = prev2 = (sqlv__token){SQLV__TOK_END, NULL, 0};
            continue;
        }
        prev2 = prev;
        prev = t;
    }
    return base_buf_append(out, copied, (size_t)(e - copied)) == 0 ? 0 : -1;
}

/* ALTER [COLUMN] col SET DEFAULT [expr, expr + expr_len) / DROP DEFAULT /
** SET NOT NULL / DROP NOT NULL on old (s->ddl.created[created] when >= 0,
** else a table of s->cat): the column's definition in the CREATE text is
** rewritten; same id, the rows stay. */
static int alter_column(run *r, const sqlv__table *old, int created, const char *col,
                        alter_col_action action, const char *expr, size_t expr_len) {
    sqlv_session *s = r->s;
    sqlv__table *nt = NULL;
    sqlite3_stmt *st = NULL;
    base_buf b = {0};
    char state[6], msg[600];
    const char *ds = NULL, *de = NULL;
    int result = STMT_FAILED, ci = -1;
    for (int i = 0; i < old->ncols && ci < 0; i++)
        if (sqlite3_stricmp(old->cols[i].name, col) == 0) ci = i;
    if (ci < 0) {
        snprintf(msg, sizeof(msg), "column \"%.100s\" of relation \"%.100s\" does not exist", col,
                 old->name);
        return fail(r, "42703", msg);
    }
    const sqlv__column *c = &old->cols[ci];
    bool in_pk = false;
    for (int k = 0; k < old->npk; k++)
        in_pk = in_pk || old->pk[k] == ci;
    if (action == ALTER_COL_DROP_NOT_NULL && in_pk) {
        snprintf(msg, sizeof(msg), "column \"%.100s\" is in a primary key", c->name);
        return fail(r, "42P16", msg);
    }
    /* nothing to change: PostgreSQL says nothing either */
    if ((action == ALTER_COL_DROP_DEFAULT && c->default_expr == NULL) ||
        (action == ALTER_COL_SET_NOT_NULL && c->not_null) ||
        (action == ALTER_COL_DROP_NOT_NULL && !c->not_null))
        return STMT_OK;
    if (!column_def_span(old->create_sql, c->name, &ds, &de))
        return fail(r, "XX000", "column definition not found in the table descriptor");
    bool drop_default = action == ALTER_COL_SET_DEFAULT || action == ALTER_COL_DROP_DEFAULT;
    bool drop_null = action == ALTER_COL_SET_NOT_NULL || action == ALTER_COL_DROP_NOT_NULL;
    if (base_buf_append(&b, old->create_sql, (size_t)(ds - old->create_sql)) != 0 ||
        column_def_strip(ds, de, drop_default, drop_null, &b) != 0)
        goto nomem;
    while (b.len > 0 && (b.data[b.len - 1] == ' ' || b.data[b.len - 1] == '\t'))
        b.len--; /* the space before a clause left out */
    if (action == ALTER_COL_SET_DEFAULT &&
        base_buf_printf(&b, " DEFAULT (%.*s)", (int)expr_len, expr) != 0)
        goto nomem;
    if (action == ALTER_COL_SET_NOT_NULL && base_buf_printf(&b, " NOT NULL") != 0) goto nomem;
    if (base_buf_printf(&b, "%s", de) != 0 || base_buf_append_byte(&b, 0) != 0) goto nomem;
    int rc = sqlv__table_parse((const char *)b.data, old->id, &nt, NULL, state, msg, sizeof(msg));
    if (rc < 0) goto nomem;
    if (rc > 0) {
        result = fail(r, state, msg);
        goto cleanup;
    }
    bool default_ok = action == ALTER_COL_SET_DEFAULT    ? true /* SET DEFAULT NULL: none */
                      : action == ALTER_COL_DROP_DEFAULT ? nt->cols[ci].default_expr == NULL
                                                         : (c->default_expr != NULL) ==
                                                               (nt->cols[ci].default_expr != NULL);
    if (nt->ncols != old->ncols || nt->npk != old->npk || !default_ok ||
        nt->cols[ci].not_null != (action == ALTER_COL_SET_NOT_NULL ? true
                                  : action == ALTER_COL_DROP_NOT_NULL ? false
                                                                      : c->not_null)) {
        result = fail(r, "XX000", "unexpected table definition after ALTER COLUMN");
        goto cleanup;
    }
    if (sqlv__indexes_carry(nt, old, false) != 0) goto nomem; /* index.c */
    if (action == ALTER_COL_SET_NOT_NULL) {
        /* every row (with its missing value) through the current declaration */
        char *q = sqlite3_mprintf("SELECT 1 FROM main.\"%w\" WHERE \"%w\" IS NULL LIMIT 1",
                                  old->name, c->name);
        if (q == NULL || sync_tables(s) != 0) {
            sqlite3_free(q);
            goto nomem;
        }
        s->err_sqlstate[0] = 0;
        s->err_message[0] = 0;
        rc = sqlite3_prepare_v2(s->db, q, -1, &st, NULL);
        sqlite3_free(q);
        if (rc == SQLITE_OK) rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            snprintf(msg, sizeof(msg),
                     "column \"%.100s\" of relation \"%.100s\" contains null values", c->name,
                     old->name);
            result = fail(r, "23502", msg);
            goto cleanup;
        }
        if (rc != SQLITE_DONE) {
            map_error(s, rc, state, msg, sizeof(msg));
            result = fail(r, state, msg);
            goto cleanup;
        }
    }
    result = ddl_replace_table(r, old, created, &nt); /* the column's new definition */
    goto cleanup;
nomem:
    result = fail(r, "53200", "out of memory");
cleanup:
    sqlite3_finalize(st);
    base_buf_free(&b);
    sqlv__table_free(nt);
    return result;
}

/* One row of SPLIT AT / UNSPLIT on tbl: key (bytea, "\x...") and pretty
** (text, "/Table/accounts/1000", as SHOW RANGES prints it). hex and pretty
** are scratch. 0 or -1 (memory). */
static int split_row(run *r, const sqlv__table *tbl, const uint8_t *key, size_t len,
                     base_buf *hex, base_buf *pretty) {
    base_buf_reset(hex);
    base_buf_reset(pretty);
    if (base_buf_append(hex, "\\x", 2) != 0 ||
        sqlv__ranges_key_pretty(key, len, tbl->id, tbl->name, pretty) != 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char b[3];
        snprintf(b, sizeof(b), "%02x", key[i]);
        if (base_buf_append(hex, b, 2) != 0) return -1;
    }
    sqlv_cell cells[2] = {{(const char *)hex->data, hex->len},
                          {(const char *)pretty->data, pretty->len}};
    if (r->sink_rc == 0 && r->sink->data_row)
        r->sink_rc = r->sink->data_row(r->sink->ctx, 2, cells);
    return 0;
}

/* ALTER TABLE t UNSPLIT ALL: remove every manual split point of the table
** (one transaction), one row per point removed. */
static int alter_unsplit_all(run *r, const sqlv__table *tbl) {
    base_buf start = {0}, end = {0}, removed = {0}, hex = {0}, pretty = {0}; /* owner: here */
    txn_error err = {{0}, {0}};
    size_t n = 0;
    int result = STMT_FAILED;
    if (sqlv__table_span(tbl->id, &start, &end) != 0) goto nomem;
    int rc = sqlv__split_points_remove_span(r->s->engine, start.data, start.len, end.data,
                                            end.len, &removed, &n, &err);
    if (rc != TXN_OK) {
        result = fail_txn(r, rc, &err);
        goto cleanup;
    }
    sqlv_column cols[2] = {{"key", SQLV_OID_BYTEA, -1, 0}, {"pretty", SQLV_OID_TEXT, -1, 0}};
    if (r->sink_rc == 0 && r->sink->row_description)
        r->sink_rc = r->sink->row_description(r->sink->ctx, 2, cols);
    for (size_t off = 0; off + 4 <= removed.len;) {
        const uint8_t *q = removed.data + off;
        size_t len = (size_t)q[0] << 24 | (size_t)q[1] << 16 | (size_t)q[2] << 8 | q[3];
        if (off + 4 + len > removed.len) break;
        if (split_row(r, tbl, q + 4, len, &hex, &pretty) != 0) goto nomem;
        off += 4 + len;
    }
    if (n > 0)
        BASE_INFO(MOD, "table %s: %zu manual split point%s removed (UNSPLIT ALL)", tbl->name, n,
                  n == 1 ? "" : "s");
    result = emit_tag(r, "ALTER TABLE");
    goto cleanup;
nomem:
    result = fail(r, "53200", "out of memory");
cleanup:
    base_buf_free(&start);
    base_buf_free(&end);
    base_buf_free(&removed);
    base_buf_free(&hex);
    base_buf_free(&pretty);
    return result;
}

/* ALTER TABLE t SPLIT AT VALUES (v, ...)[, (...)]: make each row's
** primary-key prefix the start of a range (txn_db_split_at; docs/range.md,
** "Splits and addressing"), like CockroachDB's, and a manual split point
** (sql.h: recorded first, in a transaction of its own, so the merge queue
** never folds it back). Outside a transaction block only: a split is not
** transactional. A row names the first 1..npk primary-key columns (the
** hidden row id of a table without a primary key); a key that is a range
** boundary already only becomes a manual point. Answers one row per split
** point: key (bytea) and pretty (text).
** ALTER TABLE t UNSPLIT AT VALUES (...): remove those points (the ranges
** stay until the merge queue merges them); a key that is not a manual
** split point fails 22023 ("could not UNSPLIT AT (1000): ..."), the points
** before it stay removed. UNSPLIT ALL: every point of the table. */
#define SQLV__SPLIT_POINTS_MAX 1000
static int alter_split_at(run *r, const char *name, bool if_exists, bool unsplit, const char *p,
                          const char *end) {
    sqlv_session *s = r->s;
    sqlite3_stmt *st = NULL;
    sqlv__table *tbl = NULL;
    base_buf key = {0}, scratch = {0}, hex = {0}, pretty = {0}; /* owner: this function */
    char state[6] = {0}, msg[512];
    txn_error err = {{0}, {0}};
    uint32_t id = 0;
    int result = STMT_FAILED;
    const char *what = unsplit ? "ALTER TABLE ... UNSPLIT AT" : "ALTER TABLE ... SPLIT AT";
    bool all = false;
    const char *values = NULL;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (unsplit && sqlv__tok_is(&t, "ALL")) {
        all = true;
        what = "ALTER TABLE ... UNSPLIT ALL";
        if (sqlv__lex_next(&p, end).kind != SQLV__TOK_END)
            return fail(r, "42601", "syntax error in ALTER TABLE ... UNSPLIT ALL");
    } else {
        if (!sqlv__tok_is(&t, "AT")) {
            snprintf(msg, sizeof(msg), "syntax error in %s%s", what, unsplit ? " (or ALL)" : "");
            return fail(r, "42601", msg);
        }
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "VALUES")) {
            snprintf(msg, sizeof(msg), "%s supports VALUES (...) only", what);
            return fail(r, "0A000", msg);
        }
        values = t.start;
    }
    if (s->status != 'I') {
        snprintf(msg, sizeof(msg), "%s cannot run inside a transaction block", what);
        return fail(r, "25001", msg);
    }
    if (!txn_db_has_ranges(s->engine->db)) {
        snprintf(msg, sizeof(msg), "%s needs a cluster: this node's key space is one local store",
                 what);
        return fail(r, "0A000", msg);
    }
    /* the table as a fresh snapshot sees it */
    int rc = sqlv__session_begin(s, true, &err);
    if (rc != TXN_OK) return fail_txn(r, rc, &err);
    (void)session_find(s, name, &id);
    int trc = id != 0 ? sqlv__session_table(s, id, &tbl) : 1;
    txn_rollback(s->kv);
    s->kv = NULL;
    if (trc < 0) return fail(r, "53200", "out of memory");
    if (trc > 0) {
        snprintf(msg, sizeof(msg), "relation \"%.200s\" does not exist%s", name,
                 if_exists ? ", skipping" : "");
        if (!if_exists) return fail(r, "42P01", msg);
        emit_notice(r, msg);
        return emit_tag(r, "ALTER TABLE");
    }
    if (all) {
        result = alter_unsplit_all(r, tbl);
        goto cleanup;
    }
    /* SQLite evaluates the VALUES list (constants, casts, expressions) */
    rc = sqlite3_prepare_v2(s->db, values, (int)(end - values), &st, NULL);
    if (rc != SQLITE_OK) {
        map_error(s, rc, state, msg, sizeof(msg));
        result = fail(r, state, msg);
        goto cleanup;
    }
    int npk = tbl->npk > 0 ? tbl->npk : 1;
    int ncols = sqlite3_column_count(st);
    if (ncols > npk) {
        snprintf(msg, sizeof(msg), "too many %s values: the primary key of \"%.200s\" has %d "
                 "column%s", unsplit ? "unsplit" : "split", tbl->name, npk, npk == 1 ? "" : "s");
        result = fail(r, "42601", msg);
        goto cleanup;
    }
    sqlv_column cols[2] = {{"key", SQLV_OID_BYTEA, -1, 0}, {"pretty", SQLV_OID_TEXT, -1, 0}};
    if (r->sink_rc == 0 && r->sink->row_description)
        r->sink_rc = r->sink->row_description(r->sink->ctx, 2, cols);
    int points = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (++points > SQLV__SPLIT_POINTS_MAX) {
            snprintf(msg, sizeof(msg), "too many %s points (at most %d)",
                     unsplit ? "unsplit" : "split", SQLV__SPLIT_POINTS_MAX);
            result = fail(r, "54000", msg);
            goto cleanup;
        }
        base_buf_reset(&key);
        if (sqlv__table_prefix(&key, tbl->id) != 0) goto nomem;
        for (int c = 0; c < ncols; c++) {
            const sqlv__column *col = tbl->npk > 0 ? &tbl->cols[tbl->pk[c]] : NULL;
            sqlv__cell cell;
            enc_value ev;
            base_buf_reset(&scratch);
            int arc = sqlv__assign(sqlite3_column_value(st, c),
                                   col ? col->cls : SQLV__CLASS_INT8,
                                   col && col->decl_type[0] ? col->decl_type : "bigint",
                                   &scratch, &cell, state, msg, sizeof(msg));
            if (arc < 0) goto nomem;
            if (arc > 0) {
                result = fail(r, state, msg);
                goto cleanup;
            }
            sqlv__cell_to_enc(&cell, &ev);
            if (enc_key_append(&key, &ev) != ENC_OK) goto nomem;
        }
        memset(&err, 0, sizeof(err));
        if (unsplit) {
            bool removed = false;
            rc = sqlv__split_point_remove(s->engine, key.data, key.len, &removed, &err);
            if (rc != TXN_OK) {
                result = fail_txn(r, rc, &err);
                goto cleanup;
            }
            if (!removed) {
                base_buf_reset(&hex);
                base_buf_reset(&pretty);
                if (sqlv__ranges_key_tuple(key.data, key.len, &hex) != 0 ||
                    base_buf_append_byte(&hex, 0) != 0 ||
                    base_buf_append(&pretty, "/Table", 6) != 0 ||
                    enc_key_format(key.data, key.len, &pretty) != ENC_OK ||
                    base_buf_append_byte(&pretty, 0) != 0)
                    goto nomem;
                snprintf(msg, sizeof(msg), "could not UNSPLIT AT %.200s: key %.200s is not a "
                         "manual split point", (const char *)hex.data, (const char *)pretty.data);
                result = fail(r, "22023", msg);
                goto cleanup;
            }
        } else {
            /* the point first: a crash between leaves a point, not a range
            ** the merge queue would fold back */
            rc = sqlv__split_point_put(s->engine, key.data, key.len, &err);
            txn_split_result res;
            if (rc == TXN_OK) {
                memset(&err, 0, sizeof(err));
                rc = txn_db_split_at(s->engine->db, key.data, key.len, &res, &err);
            }
            if (rc != TXN_OK) {
                result = fail_txn(r, rc, &err);
                goto cleanup;
            }
            if (res.created) { /* the range event log (best effort) */
                base_buf_reset(&pretty);
                if (base_buf_append(&pretty, "manual split at ", 16) != 0 ||
                    sqlv__ranges_key_tuple(key.data, key.len, &pretty) != 0 ||
                    base_buf_append_byte(&pretty, 0) != 0)
                    goto nomem;
                sqlv__ranges_log_split(s->engine, res.left_range_id, res.right_range_id,
                                       (const char *)pretty.data);
            }
        }
        if (split_row(r, tbl, key.data, key.len, &hex, &pretty) != 0) goto nomem;
    }
    if (rc != SQLITE_DONE) {
        map_error(s, rc, state, msg, sizeof(msg));
        result = fail(r, state, msg);
        goto cleanup;
    }
    result = emit_tag(r, "ALTER TABLE");
    goto cleanup;
nomem:
    result = fail(r, "53200", "out of memory");
cleanup:
    if (st != NULL) sqlite3_finalize(st);
    sqlv__table_free(tbl);
    base_buf_free(&key);
    base_buf_free(&scratch);
    base_buf_free(&hex);
    base_buf_free(&pretty);
    return result;
}

/* Whether every stored row of t passes check c (the new one), read in the
** statement's transaction. STMT_OK with *ok, or STMT_FAILED (sent). */
static int rows_pass_check(run *r, const sqlv__table *t, const sqlv__check *c, bool *ok) {
    sqlv_session *s = r->s;
    base_buf a = {0}, b = {0}; /* owner: here */
    txn_error err = {{0}, {0}};
    txn_iter *it = NULL;
    sqlite3_stmt *st = NULL;
    sqlv__cell *cells = base_calloc((size_t)t->ncols, sizeof(*cells)); /* owner: here */
    char *q = sqlv__checks_select(t, c, 1);
    const uint8_t *k, *v;
    size_t kl, vl;
    int result = STMT_FAILED, rc;
    *ok = true;
    if (cells == NULL || q == NULL) goto nomem;
    if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK) {
        result = fail(r, "42601", sqlite3_errmsg(s->db));
        goto cleanup;
    }
    if (sqlv__index_span(t->id, SQLV__ROW_INDEX_ID, &a, &b) != 0) goto nomem;
    rc = txn_scan(s->kv, a.data, a.len, b.data, b.len, false, &it, &err);
    if (rc != TXN_OK) {
        it = NULL;
        result = fail_txn(r, rc, &err);
        goto cleanup;
    }
    for (;;) {
        int n = txn_iter_next(it, &k, &kl, &v, &vl, &err);
        if (n < 0) {
            result = fail_txn(r, n, &err);
            goto cleanup;
        }
        if (n == 0) break;
        for (int i = 0; i < t->ncols; i++)
            cells[i].type = SQLITE_NULL; /* a row from before an ADD COLUMN is shorter */
        if (sqlv__row_decode_table(t, v, vl, cells) != 0) {
            result = fail(r, "XX001", "malformed row value in the key space");
            goto cleanup;
        }
        if (sqlv__checks_bind(st, cells, t->ncols) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
            result = fail(r, "22000", sqlite3_errmsg(s->db));
            goto cleanup;
        }
        *ok = sqlite3_column_int(st, 0) != 0;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (!*ok) break;
    }
    result = STMT_OK;
    goto cleanup;
nomem:
    result = fail(r, "53200", "out of memory");
cleanup:
    if (it) txn_iter_close(it);
    sqlite3_finalize(st);
    sqlite3_free(q);
    base_free(cells);
    base_buf_free(&a);
    base_buf_free(&b);
    return result;
}

/* ADD [CONSTRAINT cname] CHECK (expr) to old (s->ddl.created[created] when
** >= 0, else a table of s->cat): the CREATE text gains a table constraint
** (check.c reads it from there), after every stored row passed it. */
static int alter_add_check(run *r, const sqlv__table *old, int created, const char *cname,
                           const char *expr, size_t expr_len) {
    sqlv__table *nt = NULL;
    sqlv__check *checks = NULL;
    int nchecks = 0;
    char *sql = NULL, state[6], msg[600];
    bool ok = true;
    int result = STMT_FAILED;
    if (sqlv__checks_of(old, &checks, &nchecks) != 0) goto nomem;
    for (int i = 0; cname && i < nchecks; i++) {
        if (sqlite3_stricmp(checks[i].name, cname) != 0) continue;
        snprintf(msg, sizeof(msg), "constraint \"%.100s\" for relation \"%.100s\" already exists",
                 cname, old->name);
        result = fail(r, "42710", msg);
        goto cleanup;
    }
    const char *close = strrchr(old->create_sql, ')');
    if (close == NULL) {
        result = fail(r, "XX000", "unexpected table definition");
        goto cleanup;
    }
    sql = cname ? sqlite3_mprintf("%.*s, CONSTRAINT \"%w\" CHECK (%.*s)%s",
                                  (int)(close - old->create_sql), old->create_sql, cname,
                                  (int)expr_len, expr, close)
                : sqlite3_mprintf("%.*s, CHECK (%.*s)%s", (int)(close - old->create_sql),
                                  old->create_sql, (int)expr_len, expr, close);
    if (sql == NULL) goto nomem;
    int rc = sqlv__table_parse(sql, old->id, &nt, NULL, state, msg, sizeof(msg));
    if (rc < 0) goto nomem;
    if (rc > 0) {
        result = fail(r, state, msg);
        goto cleanup;
    }
    if (nt->ncols != old->ncols || nt->npk != old->npk) {
        result = fail(r, "XX000", "unexpected table definition after ADD CONSTRAINT");
        goto cleanup;
    }
    if (sqlv__indexes_carry(nt, old, false) != 0) goto nomem; /* index.c */
    sqlv__checks_free(checks, nchecks);
    checks = NULL;
    if (sqlv__checks_of(nt, &checks, &nchecks) != 0) goto nomem;
    if (nchecks == 0) {
        result = fail(r, "XX000", "the check constraint was not recorded");
        goto cleanup;
    }
    /* the new one is the last written (the one appended) */
    if (rows_pass_check(r, nt, &checks[nchecks - 1], &ok) != STMT_OK) goto cleanup;
    if (!ok) {
        snprintf(msg, sizeof(msg),
                 "check constraint \"%.100s\" of relation \"%.100s\" is violated by some row",
                 checks[nchecks - 1].name, old->name);
        result = fail(r, "23514", msg);
        goto cleanup;
    }
    result = ddl_replace_table(r, old, created, &nt); /* one more check */
    goto cleanup;
nomem:
    result = fail(r, "53200", "out of memory");
cleanup:
    sqlv__checks_free(checks, nchecks);
    sqlite3_free(sql);
    sqlv__table_free(nt);
    return result;
}

static int do_alter_table(run *r, const char *text, size_t len) {
    sqlv_session *s = r->s;
    const char *p = text, *end = text + len, *cols_start = NULL, *cols_end = NULL;
    const char *def = NULL;
    char name[SQLV__NAME_BYTES_MAX * 4 + 1], col[SQLV__NAME_BYTES_MAX * 4 + 1], msg[300];
    sqlv__table *old = NULL;
    uint32_t id;
    int result = STMT_FAILED;
    bool if_exists = false, col_if_not_exists = false, add_pk = false, own = false;
    bool add_check = false, have_cname = false;
    char cname[SQLV__NAME_BYTES_MAX * 4 + 1];
    alter_col_action col_action = ALTER_COL_NONE;
    const char *expr = NULL, *expr_end = NULL; /* SET DEFAULT's expression */
    sqlv__token t = sqlv__lex_next(&p, end); /* ALTER */
    t = sqlv__lex_next(&p, end);             /* TABLE */
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "IF")) {
        sqlv__token e2 = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&e2, "EXISTS")) return fail(r, "42601", "syntax error in ALTER TABLE");
        if_exists = true;
        t = sqlv__lex_next(&p, end);
    }
    if (sqlv__tok_is(&t, "ONLY")) t = sqlv__lex_next(&p, end);
    if (sqlv__tok_ident(&t, name, sizeof(name)) != 0)
        return fail(r, "42601", "syntax error in ALTER TABLE");
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "SPLIT") || sqlv__tok_is(&t, "UNSPLIT")) {
        bool unsplit = sqlv__tok_is(&t, "UNSPLIT");
        if (sqlv__priv_require_admin(r, unsplit ? "unsplit a table's ranges"
                                                : "split a table's ranges") != STMT_OK)
            return STMT_FAILED;
        return alter_split_at(r, name, if_exists, unsplit, p, end);
    }
    if (sqlv__tok_is(&t, "OWNER")) { /* the owner's check, not DROP's (privileges.c) */
        result = sqlv__priv_alter_table_owner(r, name, if_exists, p, end);
        return result == STMT_OK ? emit_tag(r, "ALTER TABLE") : result;
    }
    if (view_refused(r, name, "\"%s\" is not a table")) return STMT_FAILED;
    if (sqlv__priv_require_table(r, name, SQLV__PRIV_DROP) != STMT_OK) return STMT_FAILED;
    if (sqlv__tok_is(&t, "ALTER")) {
        /* ALTER [COLUMN] c SET DEFAULT e | DROP DEFAULT | SET/DROP NOT NULL */
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&t, "COLUMN")) t = sqlv__lex_next(&p, end);
        if (sqlv__tok_ident(&t, col, sizeof(col)) != 0)
            return fail(r, "42601", "syntax error in ALTER TABLE ... ALTER COLUMN");
        sqlv__token a = sqlv__lex_next(&p, end), b = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&a, "SET") && sqlv__tok_is(&b, "DEFAULT")) {
            col_action = ALTER_COL_SET_DEFAULT;
            expr = sqlv__lex_skip_space(p, end);
            int depth = 0;
            for (int guard = 0;; guard++) {
                sqlv__token u = sqlv__lex_next(&p, end);
                if (u.kind == SQLV__TOK_END) break;
                if (guard > 100000) return fail(r, "54000", "default expression too long");
                if (sqlv__tok_punct(&u, '(')) depth++;
                if (sqlv__tok_punct(&u, ')')) depth--;
                if (depth == 0 && sqlv__tok_punct(&u, ','))
                    return fail(r, "0A000",
                                "ALTER TABLE with more than one action is not supported yet");
                expr_end = u.start + u.len;
            }
            if (expr_end == NULL)
                return fail(r, "42601", "syntax error at end of input");
            const char *q = expr;
            sqlv__token only = sqlv__lex_next(&q, expr_end);
            /* SET DEFAULT NULL: none, as PostgreSQL shows it */
            if (sqlv__tok_is(&only, "NULL") && sqlv__lex_next(&q, expr_end).kind == SQLV__TOK_END)
                col_action = ALTER_COL_DROP_DEFAULT;
        } else if ((sqlv__tok_is(&a, "SET") || sqlv__tok_is(&a, "DROP")) &&
                   (sqlv__tok_is(&b, "DEFAULT") || sqlv__tok_is(&b, "NOT"))) {
            bool set = sqlv__tok_is(&a, "SET");
            if (sqlv__tok_is(&b, "NOT")) {
                sqlv__token n = sqlv__lex_next(&p, end);
                if (!sqlv__tok_is(&n, "NULL"))
                    return fail(r, "42601", "syntax error in ALTER TABLE ... ALTER COLUMN");
                col_action = set ? ALTER_COL_SET_NOT_NULL : ALTER_COL_DROP_NOT_NULL;
            } else {
                col_action = ALTER_COL_DROP_DEFAULT;
            }
            sqlv__token rest = sqlv__lex_next(&p, end);
            if (sqlv__tok_punct(&rest, ','))
                return fail(r, "0A000",
                            "ALTER TABLE with more than one action is not supported yet");
            if (rest.kind != SQLV__TOK_END)
                return fail(r, "42601", "syntax error in ALTER TABLE ... ALTER COLUMN");
        } else if (sqlv__tok_is(&a, "TYPE") ||
                   (sqlv__tok_is(&a, "SET") && sqlv__tok_is(&b, "DATA"))) {
            return fail(r, "0A000", "ALTER TABLE ... ALTER COLUMN ... TYPE is not supported yet");
        } else {
            snprintf(msg, sizeof(msg),
                     "ALTER TABLE ... ALTER COLUMN ... %.*s is not supported yet (only SET/DROP "
                     "DEFAULT and SET/DROP NOT NULL)",
                     (int)BASE_MIN(a.len, 40), a.start ? a.start : "");
            return fail(r, "0A000", msg);
        }
        goto transaction;
    }
    if (!sqlv__tok_is(&t, "ADD")) goto unsupported;
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "CONSTRAINT")) {
        sqlv__token nm = sqlv__lex_next(&p, end); /* kept for CHECK only */
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&t, "CHECK")) {
            if (sqlv__tok_ident(&nm, cname, sizeof(cname)) != 0)
                return fail(r, "42601", "syntax error in ALTER TABLE");
            have_cname = true;
        } else if (!sqlv__tok_is(&t, "PRIMARY")) {
            goto unsupported;
        }
    }
    if (sqlv__tok_is(&t, "CHECK")) {
        add_check = true;
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_punct(&t, '(')) return fail(r, "42601", "syntax error in ALTER TABLE");
        cols_start = p;
        for (int depth = 1, guard = 0; depth > 0; guard++) {
            cols_end = p;
            t = sqlv__lex_next(&p, end);
            if (t.kind == SQLV__TOK_END || guard > 100000)
                return fail(r, "42601", "syntax error in ALTER TABLE");
            if (sqlv__tok_punct(&t, '(')) depth++;
            if (sqlv__tok_punct(&t, ')')) depth--;
        }
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&t, "NOT"))
            return fail(r, "0A000", "ALTER TABLE ... ADD CONSTRAINT ... NOT VALID is not supported");
        if (t.kind != SQLV__TOK_END)
            return fail(r, "0A000", "ALTER TABLE with more than one action is not supported yet");
    } else if (sqlv__tok_is(&t, "PRIMARY")) {
        add_pk = true;
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "KEY")) return fail(r, "42601", "syntax error in ALTER TABLE");
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_punct(&t, '(')) return fail(r, "42601", "syntax error in ALTER TABLE");
        cols_start = p;
        for (int guard = 0;; guard++) {
            cols_end = p;
            t = sqlv__lex_next(&p, end);
            if (t.kind == SQLV__TOK_END || guard > 10000)
                return fail(r, "42601", "syntax error in ALTER TABLE");
            if (sqlv__tok_punct(&t, ')')) break;
            if (t.kind != SQLV__TOK_WORD && t.kind != SQLV__TOK_QUOTED &&
                !sqlv__tok_punct(&t, ','))
                return fail(r, "42601", "syntax error in ALTER TABLE");
        }
        if (sqlv__lex_next(&p, end).kind != SQLV__TOK_END)
            return fail(r, "0A000", "ALTER TABLE with more than one action is not supported yet");
    } else {
        if (sqlv__tok_is(&t, "UNIQUE") || sqlv__tok_is(&t, "FOREIGN") ||
            sqlv__tok_is(&t, "EXCLUDE"))
            goto unsupported;
        if (sqlv__tok_is(&t, "COLUMN")) t = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&t, "IF")) {
            sqlv__token n2 = sqlv__lex_next(&p, end), e2 = sqlv__lex_next(&p, end);
            if (!sqlv__tok_is(&n2, "NOT") || !sqlv__tok_is(&e2, "EXISTS"))
                return fail(r, "42601", "syntax error in ALTER TABLE");
            col_if_not_exists = true;
            t = sqlv__lex_next(&p, end);
        }
        if (sqlv__tok_ident(&t, col, sizeof(col)) != 0)
            return fail(r, "42601", "syntax error in ALTER TABLE ADD COLUMN");
        def = t.start;
        /* one action: no ',' outside parentheses in the definition */
        int depth = 0;
        for (int guard = 0;; guard++) {
            sqlv__token u = sqlv__lex_next(&p, end);
            if (u.kind == SQLV__TOK_END) break;
            if (guard > 100000) return fail(r, "54000", "column definition too long");
            if (sqlv__tok_punct(&u, '(')) depth++;
            if (sqlv__tok_punct(&u, ')')) depth--;
            if (depth == 0 && sqlv__tok_punct(&u, ','))
                return fail(r, "0A000",
                            "ALTER TABLE with more than one action is not supported yet");
        }
    }
transaction:
    if (add_pk && s->status == 'I') { /* online, in transactions of its own (rekey.c) */
        result = sqlv__rekey_online(r, name, if_exists, cols_start, cols_end);
        return result == STMT_OK ? emit_tag(r, "ALTER TABLE") : result;
    }
    /* the transaction first: the name is looked up in its catalog */
    own = s->status == 'I';
    if (own) s->status = 'T';
    if (block_begin(r) != STMT_OK) goto cleanup;
    int k = session_find(s, name, &id);
    if (id == 0) {
        snprintf(msg, sizeof(msg), "relation \"%.200s\" does not exist%s", name,
                 if_exists ? ", skipping" : "");
        if (!if_exists) {
            result = fail(r, "42P01", msg);
            goto cleanup;
        }
        emit_notice(r, msg);
        result = STMT_OK;
        goto cleanup;
    }
    int trc = sqlv__session_table(s, id, &old);
    if (trc != 0) {
        result = trc < 0 ? fail(r, "53200", "out of memory") : fail(r, "XX000", "table vanished");
        goto cleanup;
    }
    if (add_pk && sqlv__table_rekey_index(old) != NULL) { /* another session's, online */
        snprintf(msg, sizeof(msg), "cannot add a primary key to table \"%.100s\" while index "
                 "\"%.100s\" is being built or invalid", name, sqlv__table_rekey_index(old)->name);
        result = fail(r, "55000", msg);
        goto cleanup;
    }
    if (add_pk && k >= 0) {
        result = fail(r, "0A000",
                      "ALTER TABLE ADD PRIMARY KEY on a table created or altered in the same "
                      "transaction block is not supported yet");
        goto cleanup;
    }
    if (col_action != ALTER_COL_NONE)
        result = alter_column(r, old, k, col, col_action, expr,
                              expr ? (size_t)(expr_end - expr) : 0);
    else if (add_check)
        result = alter_add_check(r, old, k, have_cname ? cname : NULL, cols_start,
                                 (size_t)(cols_end - cols_start));
    else if (add_pk)
        result = alter_rekey(r, name, id, old, cols_start, cols_end);
    else
        result = alter_add_column_seq(r, old, k, def, end, col, col_if_not_exists);
cleanup:
    if (own) {
        if (result != STMT_OK) {
            if (s->kv) txn_rollback(s->kv);
            s->kv = NULL;
            s->status = 'I';
            end_block_ddl(s);
        } else {
            txn_error err = {{0}, {0}};
            if (do_commit_quiet(r, &err) != STMT_OK) result = STMT_FAILED;
        }
    }
    sqlv__table_free(old);
    if (result == STMT_OK) return emit_tag(r, "ALTER TABLE");
    return result;
unsupported:
    snprintf(msg, sizeof(msg),
             "ALTER TABLE ... %.*s is not supported yet (only ADD COLUMN, ADD PRIMARY KEY, "
             "ADD CHECK, ALTER COLUMN, OWNER TO, SPLIT AT and UNSPLIT)",
             (int)BASE_MIN(t.len, 40), t.start ? t.start : "");
    return fail(r, "0A000", msg);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

/* CREATE INDEX ... ON t / DROP INDEX name: the table's DROP privilege (its
** owner's), checked before index.c writes anything. An index or table that
** does not exist passes: index.c reports it. */
static int index_privilege(run *r, const char *text, size_t len, bool create) {
    sqlv_session *s = r->s;
    const char *p = text, *end = text + len;
    char name[SQLV__NAME_BYTES_MAX * 4 + 1];
    if (strcmp(s->user, SQLV__ROLE_ROOT) == 0) return STMT_OK;
    if (create) {
        for (int guard = 0; guard < 64; guard++) {
            sqlv__token t = sqlv__lex_next(&p, end);
            if (t.kind == SQLV__TOK_END) return STMT_OK;
            if (!sqlv__tok_is(&t, "ON")) continue;
            t = sqlv__lex_next(&p, end);
            if (sqlv__tok_is(&t, "ONLY")) t = sqlv__lex_next(&p, end);
            if (sqlv__tok_ident(&t, name, sizeof(name)) != 0) return STMT_OK;
            return sqlv__priv_require_table(r, name, SQLV__PRIV_DROP);
        }
        return STMT_OK;
    }
    /* DROP INDEX [CONCURRENTLY] [IF EXISTS] name[, ...]: each one's table in
    ** the session's catalog (the block's; else the last one seen) */
    if (s->status == 'T' && block_begin(r) != STMT_OK) return STMT_FAILED;
    (void)sqlv__lex_next(&p, end);
    (void)sqlv__lex_next(&p, end);
    for (int guard = 0; guard < DROP_NAMES_MAX + 8; guard++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        if (sqlv__tok_is(&t, "CONCURRENTLY") || sqlv__tok_is(&t, "IF") ||
            sqlv__tok_is(&t, "EXISTS") || sqlv__tok_punct(&t, ',') ||
            sqlv__tok_is(&t, "CASCADE") || sqlv__tok_is(&t, "RESTRICT"))
            continue;
        if (sqlv__tok_ident(&t, name, sizeof(name)) != 0) break;
        for (int i = 0; i < s->cat->ntables; i++) {
            const sqlv__table *tb = s->cat->tables[i];
            if (sqlv__table_index_named(tb, name) == NULL) continue;
            if (sqlv__priv_require_table(r, tb->name, SQLV__PRIV_DROP) != STMT_OK)
                return STMT_FAILED;
        }
    }
    return STMT_OK;
}

/* INSERT: the text with every column default applied (default.c), in
** *full (owner: caller, base_free), or *full NULL when nothing changes.
** Outside a block the statement's (read-write) transaction begins here, so
** that the table is the one of its catalog. STMT result. */
static int insert_defaults(run *r, const char *text, size_t len, char **full) {
    sqlv_session *s = r->s;
    char name[SQLV__NAME_BYTES_MAX * 4 + 1], state[6], msg[512];
    *full = NULL;
    if (!sqlv__default_target(text, len, name, sizeof(name))) return STMT_OK;
    /* INSERT ... AS OF SYSTEM TIME: refused below (read-only), with no
    ** transaction begun here */
    const char *p = text, *end = text + len;
    sqlv__token a = {SQLV__TOK_END, NULL, 0}, b = a;
    for (int n = 0; n < SQLV__DIALECT_TOKENS_MAX; n++) {
        sqlv__token c = sqlv__lex_next(&p, end);
        if (c.kind == SQLV__TOK_END) break;
        if (sqlv__tok_is(&a, "AS") && sqlv__tok_is(&b, "OF") && sqlv__tok_is(&c, "SYSTEM"))
            return STMT_OK;
        a = b;
        b = c;
    }
    if (s->kv == NULL && s->status == 'I') {
        txn_error err = {{0}, {0}};
        int brc = sqlv__session_begin(s, false, &err);
        if (brc != TXN_OK) return fail_txn(r, brc, &err);
    }
    /* a block's first statement: its catalog too, not the last one seen */
    if (s->kv == NULL && s->status == 'T' && block_begin(r) != STMT_OK) return STMT_FAILED;
    /* GENERATED ALWAYS AS IDENTITY: 428C9 for a value (sequence.c) */
    char *checked = NULL; /* owner: this function */
    int rc = sqlv__seq_insert_check(s, text, len, &checked, state, msg, sizeof(msg));
    if (rc == 0 && checked != NULL) {
        rc = sqlv__default_apply(s, checked, strlen(checked), full, state, msg, sizeof(msg));
        if (rc == 0 && *full == NULL) { /* nothing to default: the text without OVERRIDING */
            *full = checked;
            checked = NULL;
        }
    } else if (rc == 0) {
        rc = sqlv__default_apply(s, text, len, full, state, msg, sizeof(msg));
    }
    base_free(checked);
    /* nothing derived runs again: the check's mark goes now */
    if (*full == NULL) sqlv__seq_insert_done(s);
    if (rc < 0) return fail(r, "53200", "out of memory");
    if (rc > 0) return fail(r, state, msg);
    return STMT_OK;
}

/* UPDATE: SET c = DEFAULT and the GENERATED ALWAYS identity rule
** (sequence.c), read from the statement's catalog as INSERT's defaults.
** *full the new text (owner: caller, base_free) or NULL. STMT result. */
static int update_defaults(run *r, const char *text, size_t len, char **full) {
    sqlv_session *s = r->s;
    char state[6], msg[512];
    *full = NULL;
    /* UPDATE ... AS OF SYSTEM TIME: refused below (read-only), no transaction begun here */
    const char *p = text, *end = text + len;
    sqlv__token a = {SQLV__TOK_END, NULL, 0}, b = a;
    for (int n = 0; n < SQLV__DIALECT_TOKENS_MAX; n++) {
        sqlv__token c = sqlv__lex_next(&p, end);
        if (c.kind == SQLV__TOK_END) break;
        if (sqlv__tok_is(&a, "AS") && sqlv__tok_is(&b, "OF") && sqlv__tok_is(&c, "SYSTEM"))
            return STMT_OK;
        a = b;
        b = c;
    }
    if (s->kv == NULL && s->status == 'I') {
        txn_error err = {{0}, {0}};
        int brc = sqlv__session_begin(s, false, &err);
        if (brc != TXN_OK) return fail_txn(r, brc, &err);
    }
    if (s->kv == NULL && s->status == 'T' && block_begin(r) != STMT_OK) return STMT_FAILED;
    int rc = sqlv__seq_update_check(s, text, len, full, state, msg, sizeof(msg));
    if (rc < 0) return fail(r, "53200", "out of memory");
    if (rc > 0) return fail(r, state, msg);
    return STMT_OK;
}

static int run_statement(run *r, const char *text, size_t len) {
    sqlv_session *s = r->s;
    const char *p = text, *end = text + len;
    char msg[160];
    sqlv__token t = sqlv__lex_next(&p, end);
    const char *after_first = p;
    sqlv__token t2 = sqlv__lex_next(&p, end);
    const char *after_second = p;

    if (s->awaiting_commit) return committed_block_statement(r, &t, &t2, after_second, end);
    if (sqlv__tok_is(&t, "BEGIN") ||
        (sqlv__tok_is(&t, "START") && sqlv__tok_is(&t2, "TRANSACTION"))) {
        /* BEGIN [WORK | TRANSACTION] [modes]; START TRANSACTION [modes].
        ** Every isolation level runs as SERIALIZABLE (upgraded silently). */
        const char *modes = after_second;
        if (sqlv__tok_is(&t, "BEGIN") && !sqlv__tok_is(&t2, "WORK") &&
            !sqlv__tok_is(&t2, "TRANSACTION"))
            modes = after_first;
        sqlv__txn_modes m;
        if (sqlv__parse_transaction_modes_ex(modes, end, &m, msg, sizeof(msg)) != 0)
            return fail(r, "42601", msg);
        if (s->status == 'E')
            return emit_error(r, "25P02",
                              "current transaction is aborted, commands ignored until end of "
                              "transaction block");
        /* a block that starts here takes the modes (AS OF SYSTEM TIME, READ
        ** ONLY), evaluated first: a bad one starts no block */
        bool starts = s->status == 'I' || s->implicit_block;
        hlc_timestamp as_of = HLC_ZERO;
        if (starts && block_modes_check(r, &m, &as_of) != STMT_OK) return STMT_FAILED;
        int brc = do_begin(r);
        if (starts) {
            s->block_as_of = as_of;
            s->block_read_only = m.read_only;
        }
        return brc;
    }
    if (sqlv__tok_is(&t, "COMMIT") || sqlv__tok_is(&t, "END")) return do_commit(r);
    if (sqlv__tok_is(&t, "ROLLBACK") || sqlv__tok_is(&t, "ABORT")) {
        /* ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name */
        const char *after_to = after_second;
        sqlv__token to = t2;
        if (sqlv__tok_is(&t2, "WORK") || sqlv__tok_is(&t2, "TRANSACTION")) {
            to = sqlv__lex_next(&p, end);
            after_to = p;
        }
        if (sqlv__tok_is(&to, "TO")) {
            if (sqlv__tok_is(&t, "ABORT"))
                return fail(r, "42601", "syntax error at or near \"TO\"");
            return do_rollback_to(r, after_to, end);
        }
        return do_rollback(r);
    }
    if (sqlv__tok_is(&t, "SAVEPOINT") && savepoint_restarts(s, after_first, end))
        return do_rollback_to(r, after_first, end); /* CockroachDB's restart by SAVEPOINT */
    if (s->status == 'E')
        return emit_error(r, "25P02",
                          "current transaction is aborted, commands ignored until end of "
                          "transaction block");
    if (sqlv__tok_is(&t, "SAVEPOINT")) return do_savepoint(r, after_first, end);
    if (sqlv__tok_is(&t, "RELEASE")) return do_release(r, after_first, end);
    if ((sqlv__tok_is(&t, "SET") || sqlv__tok_is(&t, "RESET")) && sqlv__tok_is(&t2, "CLUSTER"))
        return sqlv__cluster_setting_set(r, after_first, end, sqlv__tok_is(&t, "RESET"));
    if (sqlv__tok_is(&t, "SET") || sqlv__tok_is(&t, "RESET"))
        return do_set(r, after_first, end, sqlv__tok_is(&t, "RESET"));
    if (sqlv__tok_is(&t, "TRUNCATE")) return do_truncate(r, after_first, end);
    if (sqlv__tok_is(&t, "REASSIGN") && sqlv__tok_is(&t2, "OWNED"))
        return sqlv__priv_reassign_owned(r, after_second, end); /* privileges.c */
    if (sqlv__tok_is(&t, "DROP") && sqlv__tok_is(&t2, "OWNED"))
        return do_drop_owned(r, after_second, end);
    if (((sqlv__tok_is(&t, "CREATE") || sqlv__tok_is(&t, "ALTER") || sqlv__tok_is(&t, "DROP")) &&
         (sqlv__tok_is(&t2, "USER") || sqlv__tok_is(&t2, "ROLE"))) ||
        sqlv__tok_is(&t, "GRANT") || sqlv__tok_is(&t, "REVOKE"))
        return sqlv__users_stmt(r, text, len); /* users.c */
    if (sqlv__tok_is(&t, "ALTER") && sqlv__tok_is(&t2, "TABLE")) return do_alter_table(r, text, len);
    if (sqlv__tok_is(&t, "ALTER") && sqlv__tok_is(&t2, "SEQUENCE")) {
        if (s->status == 'T' && block_begin(r) != STMT_OK) return STMT_FAILED;
        return sqlv__seq_stmt(r, text, len); /* sequence.c: its owner's */
    }
    if (sqlv__tok_is(&t, "ALTER") && sqlv__tok_is(&t2, "RANGE")) {
        if (sqlv__priv_require_admin(r, "alter a range") != STMT_OK) return STMT_FAILED;
        return sqlv__ranges_alter(r, after_second, end);
    }
    if (sqlv__tok_is(&t, "VACUUM") || sqlv__tok_is(&t, "ANALYZE")) {
        /* statistics and space reclamation are the storage's business */
        if (sqlv__tok_is(&t, "VACUUM") && s->status == 'T' && !s->implicit_block)
            return fail(r, "25001", "VACUUM cannot run inside a transaction block");
        return emit_tag(r, sqlv__tok_is(&t, "VACUUM") ? "VACUUM" : "ANALYZE");
    }
    if (sqlv__tok_is(&t, "SHOW") && sqlv__tok_is(&t2, "GRANTS"))
        return sqlv__privileges_show(r, after_second, end); /* privileges.c */
    if (sqlv__tok_is(&t, "SHOW")) return do_show(r, after_first, end);
    if (sqlv__tok_is(&t, "CREATE")) {
        if (sqlv__tok_is(&t2, "INDEX") || sqlv__tok_is(&t2, "UNIQUE")) {
            char name[SQLV__NAME_BYTES_MAX * 4 + 1];
            bool from;
            if (s->status == 'T' && block_begin(r) != STMT_OK) return STMT_FAILED;
            if (target_of(text, len, false, name, sizeof(name), &from) &&
                view_refused(r, name, "cannot create index on relation \"%s\" (a view)"))
                return STMT_FAILED;
            if (index_privilege(r, text, len, true) != STMT_OK) return STMT_FAILED;
            return sqlv__index_create_stmt(r, text, len); /* index.c */
        }
        if (sqlv__tok_is(&t2, "TABLE") || sqlv__tok_is(&t2, "TEMP") ||
            sqlv__tok_is(&t2, "TEMPORARY") || sqlv__tok_is(&t2, "UNLOGGED"))
            return do_create_table(r, text, len);
        if (sqlv__tok_is(&t2, "SEQUENCE")) {
            if (s->status == 'T' && block_begin(r) != STMT_OK) return STMT_FAILED;
            if (sqlv__priv_require_database(r, SQLV__PRIV_CREATE) != STMT_OK) return STMT_FAILED;
            return sqlv__seq_stmt(r, text, len); /* sequence.c */
        }
        if (sqlv__tok_is(&t2, "VIEW") || sqlv__tok_is(&t2, "OR"))
            return do_create_view(r, text, len); /* CREATE [OR REPLACE] VIEW */
        snprintf(msg, sizeof(msg), "CREATE %.*s is not supported yet", (int)BASE_MIN(t2.len, 40),
                 t2.start ? t2.start : "");
        return fail(r, "0A000", msg);
    }
    if (sqlv__tok_is(&t, "DROP")) {
        if (sqlv__tok_is(&t2, "TABLE")) return do_drop_table(r, after_second, end);
        if (sqlv__tok_is(&t2, "SEQUENCE")) {
            char *copy = base_strndup(text, len); /* owner: this block */
            if (copy == NULL) return fail(r, "53200", "out of memory");
            int drc = s->status == 'I' && sqlv__seq_drop_cascades(text, len)
                          ? run_in_own_block(r, drop_sequence_in_block, copy, "DROP SEQUENCE")
                      : s->status == 'T' ? drop_sequence_in_block(r, copy)
                                         : sqlv__seq_stmt(r, text, len); /* sequence.c */
            base_free(copy);
            return drc;
        }
        if (sqlv__tok_is(&t2, "INDEX")) {
            if (index_privilege(r, text, len, false) != STMT_OK) return STMT_FAILED;
            return sqlv__index_drop_stmt(r, text, len); /* index.c */
        }
        if (sqlv__tok_is(&t2, "VIEW")) return do_drop_view(r, text, len);
        snprintf(msg, sizeof(msg), "DROP %.*s is not supported yet", (int)BASE_MIN(t2.len, 40),
                 t2.start ? t2.start : "");
        return fail(r, "0A000", msg);
    }
    if (sqlv__tok_is(&t, "EXPLAIN") && !sqlv__tok_is(&t2, "QUERY"))
        return sqlv__explain_stmt(r, after_first, end); /* explain.c; QUERY PLAN: SQLite's */
    if (sqlv__tok_is(&t, "UPDATE")) {
        /* SET c = DEFAULT: SQLite has none (sequence.c); the completed text
        ** runs through here once more, unchanged */
        char *full = NULL; /* owner: this block */
        if (update_defaults(r, text, len, &full) != STMT_OK) return STMT_FAILED;
        if (full) {
            int frc = run_statement(r, full, strlen(full));
            base_free(full);
            return frc;
        }
    }
    if (sqlv__tok_is(&t, "INSERT")) {
        /* SQLite applies no DEFAULT to virtual tables: ours. The completed
        ** text names every defaulted column, so it runs through here once
        ** more unchanged. */
        char *full = NULL; /* owner: this block */
        if (insert_defaults(r, text, len, &full) != STMT_OK) {
            sqlv__seq_insert_done(s); /* OVERRIDING ends with it (sequence.c) */
            return STMT_FAILED;
        }
        if (full) {
            sqlv__priv_insert_text(text, len); /* the columns the user named (privileges.c) */
            int frc = run_statement(r, full, strlen(full));
            sqlv__priv_insert_text(NULL, 0);
            base_free(full);
            sqlv__seq_insert_done(s);
            return frc;
        }
    }
    if ((sqlv__tok_is(&t, "INSERT") || sqlv__tok_is(&t, "UPDATE") || sqlv__tok_is(&t, "DELETE")) &&
        sqlv__dml_ext_wanted(text, len)) {
        /* INSERT ... SELECT DISTINCT ON ... ON CONFLICT: the source rewritten
        ** first (distinct_on.c; the INSERT's transaction is begun above) */
        char *don = NULL; /* owner: this block */
        char dstate[6], dmsg[300];
        int drc = sqlv__tok_is(&t, "INSERT")
                      ? sqlv__distinct_on_apply(s, text, len, &don, dstate, dmsg, sizeof(dmsg))
                      : 0;
        if (drc != 0) return drc < 0 ? fail(r, "53200", "out of memory") : fail(r, dstate, dmsg);
        int xrc = don ? sqlv__dml_ext_stmt(r, don, strlen(don)) : sqlv__dml_ext_stmt(r, text, len);
        base_free(don);
        return xrc; /* ON CONFLICT, RETURNING: upsert.c */
    }
    if (sqlv__tok_is(&t, "SELECT") || sqlv__tok_is(&t, "INSERT") || sqlv__tok_is(&t, "UPDATE") ||
        sqlv__tok_is(&t, "DELETE") || sqlv__tok_is(&t, "WITH") || sqlv__tok_is(&t, "VALUES") ||
        sqlv__tok_is(&t, "REPLACE") || sqlv__tok_is(&t, "EXPLAIN") || sqlv__tok_punct(&t, '(')) {
        /* SELECT ... AS OF SYSTEM TIME x: the clause goes, the statement
        ** runs in its own transaction at x (docs/sql.md "Stale reads") */
        char *stripped = NULL; /* owner: this block */
        char expr[128], state[6], amsg[200];
        bool found = false;
        int arc = sqlv__as_of_take(text, len, &stripped, expr, sizeof(expr), &found, state, amsg,
                                   sizeof(amsg));
        if (arc < 0) return fail(r, "53200", "out of memory");
        if (arc > 0) return fail(r, state, amsg);
        if (found) {
            hlc_timestamp ts = HLC_ZERO;
            int frc = STMT_OK;
            if (s->status != 'I' || s->kv != NULL)
                frc = fail(r, "0A000", "AS OF SYSTEM TIME in a statement inside a transaction "
                                       "block is not supported: give it to the block (BEGIN AS OF "
                                       "SYSTEM TIME ... or SET TRANSACTION AS OF SYSTEM TIME ...)");
            else
                frc = as_of_eval(r, expr, &ts);
            if (frc != STMT_OK) {
                base_free(stripped);
                return frc;
            }
            s->stmt_as_of = ts;
            text = stripped; /* same length, the clause blanked */
        }
        /* SELECT DISTINCT ON: SQLite has none (distinct_on.c) */
        char *don = NULL; /* owner: this block */
        if ((sqlv__tok_is(&t, "SELECT") || sqlv__tok_is(&t, "WITH") || sqlv__tok_punct(&t, '(') ||
             sqlv__tok_is(&t, "INSERT")) &&
            sqlv__distinct_on_wanted(text, len)) {
            char dstate[6], dmsg[300];
            if (s->kv == NULL && (s->status == 'I' || s->status == 'T') && !found) {
                /* its select lists are prepared with the statement's catalog */
                txn_error err = {{0}, {0}};
                bool ro = s->status == 'I' && !sqlv__tok_is(&t, "INSERT");
                int brc = sqlv__session_begin(s, ro, &err);
                if (brc != TXN_OK) {
                    base_free(stripped);
                    return fail_txn(r, brc, &err);
                }
            }
            int drc = sqlv__distinct_on_apply(s, text, len, &don, dstate, dmsg, sizeof(dmsg));
            if (drc != 0) {
                s->stmt_as_of = HLC_ZERO;
                base_free(stripped);
                return drc < 0 ? fail(r, "53200", "out of memory") : fail(r, dstate, dmsg);
            }
            if (don != NULL) {
                text = don;
                len = strlen(don);
            }
        }
        int rc = STMT_RETRY;
        for (int attempt = 0; rc == STMT_RETRY; attempt++) {
            if (attempt > 0) {
                BASE_DEBUG(MOD, "retrying implicit transaction (attempt %d)", attempt);
                retry_backoff(s, attempt);
                if (atomic_load(&s->cancel)) {
                    rc = fail(r, "57014", "canceling statement due to user request");
                    break;
                }
            }
            rc = run_sqlite(r, text, len, s->status == 'I' && attempt < IMPLICIT_RETRIES_MAX);
        }
        s->stmt_as_of = HLC_ZERO;
        base_free(stripped);
        base_free(don);
        return rc;
    }
    if (sqlv__tok_is(&t, "COPY")) {
        char name[SQLV__NAME_BYTES_MAX * 4 + 1];
        bool from = false;
        if (target_of(text, len, true, name, sizeof(name), &from) && from &&
            view_refused(r, name, "cannot copy to view \"%s\""))
            return STMT_FAILED;
        return sqlv__copy_begin(r, text, len);
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

/* Run one statement after the PostgreSQL dialect rewrite (dialect.c). */
static int run_rewritten(run *r, const char *text, size_t len) {
    sqlv__rewrite rw;
    int rc = sqlv__dialect_rewrite(text, len, &rw);
    if (rc < 0) return fail(r, "53200", "out of memory");
    if (rc > 0) return fail(r, rw.sqlstate, rw.message);
    if (rw.storage_options_ignored)
        emit_notice(r, "storage parameters (WITH (...)) are accepted and ignored by Meridian");
    rc = run_statement(r, rw.text, rw.len);
    base_free(rw.text);
    return rc;
}

/* The end of a query string that ran as an implicit block: commit it, or
** roll it back after an error (or when the client went away). */
static void end_implicit_block(run *r) {
    sqlv_session *s = r->s;
    txn_error err = {{0}, {0}};
    s->implicit_block = false;
    if (s->status == 'T' && r->sink_rc == 0) {
        (void)do_commit_quiet(r, &err);
        return;
    }
    if (s->kv) txn_rollback(s->kv);
    s->kv = NULL;
    s->status = 'I';
    end_block_ddl(s);
}

static int session_exec(sqlv_session *s, const char *query, size_t query_len,
                        const sqlv_sink *sink);

/* SQLite's memory while the query runs is the session's (memory.c). */
int sqlv_session_exec(sqlv_session *s, const char *query, size_t query_len, const sqlv_sink *sink) {
    sqlv__mem *prev = sqlv__mem_enter(s->mem);
    int rc = session_exec(s, query, query_len, sink);
    sqlv__mem_leave(prev);
    return rc;
}

static int session_exec(sqlv_session *s, const char *query, size_t query_len,
                        const sqlv_sink *sink) {
    run r = {s, sink, 0};
    char *copy;
    int nstmts = 0, rc = SQLV_OK;
    atomic_store(&s->cancel, 0);
    sqlv__copy_abort(s); /* a Query while copying: the copy is over */
    /* A simple Query ends every portal: their statements must not outlive
    ** a transaction the query may end. */
    sqlv__portals_clear(s);
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
    int done = 0;
    for (;;) {
        const char *before = p;
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END || t.kind == SQLV__TOK_SEMI) {
            const char *stmt_end = t.kind == SQLV__TOK_END ? before : t.start;
            if (has_tokens) {
                const char *st = sqlv__lex_skip_space(stmt_start, stmt_end);
                if (s->status == 'I' && nstmts - done > 1) {
                    /* the rest of the string is one implicit transaction */
                    s->implicit_block = true;
                    s->status = 'T';
                }
                done++;
                if (run_rewritten(&r, st, (size_t)(stmt_end - st)) != STMT_OK) break;
                if (s->copy) break; /* COPY FROM STDIN waits for its data */
                if (r.sink_rc != 0) break;
            }
            has_tokens = false;
            stmt_start = p;
            if (t.kind == SQLV__TOK_END) break;
            continue;
        }
        has_tokens = true;
    }
    if (s->implicit_block) end_implicit_block(&r);
    if (r.sink_rc != 0) rc = SQLV_ERR_ABORTED;
cleanup:
    base_free(copy);
    return rc;
}

/* ---- for prepared.c ---------------------------------------------------------------------- */

int sqlv__run_statement(run *r, const char *text, size_t len) {
    return run_statement(r, text, len);
}
int sqlv__fail(run *r, const char *state, const char *msg) { return fail(r, state, msg); }
int sqlv__emit_error(run *r, const char *state, const char *msg) {
    return emit_error(r, state, msg);
}
int sqlv__fail_txn(run *r, int rc, txn_error *err) {
    txn_error none = {{0}, {0}};
    return fail_txn(r, rc, err ? err : &none);
}
int sqlv__sync_tables(sqlv_session *s) { return sync_tables(s); }

int sqlv__prepare(sqlv_session *s, const char *text, size_t len, sqlite3_stmt **st,
                  const char **tail) {
    *st = NULL;
    s->err_sqlstate[0] = 0;
    s->err_message[0] = 0;
    if (len > (size_t)INT32_MAX) {
        sqlv__session_error(s, "54000", "statement too long");
        return SQLITE_TOOBIG;
    }
    if (sync_tables(s) != 0) {
        sqlv__session_error(s, "53200", "out of memory");
        return SQLITE_NOMEM;
    }
    return prepare_text(s, text, len, st, tail);
}
void sqlv__map_error(sqlv_session *s, int rc, char state[6], char *msg, size_t size) {
    map_error(s, rc, state, msg, size);
}
int sqlv__describe(run *r, sqlite3_stmt *st, const char *text, size_t len, bool have_row,
                   uint32_t *oids) {
    return describe(r, st, text, len, have_row, oids);
}
void sqlv__completion_tag(sqlv_session *s, const char *text, size_t len, uint64_t rows,
                          char *tag, size_t size) {
    switch (kind_of(text, text + len)) {
    case KIND_INSERT:
        snprintf(tag, size, "INSERT 0 %lld", (long long)sqlite3_changes64(s->db));
        break;
    case KIND_UPDATE: snprintf(tag, size, "UPDATE %lld", (long long)sqlite3_changes64(s->db)); break;
    case KIND_DELETE: snprintf(tag, size, "DELETE %lld", (long long)sqlite3_changes64(s->db)); break;
    default: snprintf(tag, size, "SELECT %llu", (unsigned long long)rows); break;
    }
}
void sqlv__end_implicit_block(run *r) { end_implicit_block(r); }
int sqlv__commit_quiet(run *r) {
    txn_error err = {{0}, {0}};
    return do_commit_quiet(r, &err) == STMT_OK ? 0 : -1;
}
uint32_t sqlv__session_find_id(sqlv_session *s, const char *name) {
    uint32_t id;
    (void)session_find(s, name, &id);
    return id;
}

const sqlv__table *sqlv__session_find_table(sqlv_session *s, const char *name) {
    uint32_t id;
    int i = session_find(s, name, &id);
    if (i >= 0) return s->ddl.created[i];
    return id != 0 ? sqlv__catalog_find(s->cat, name) : NULL;
}

/* ALTER TABLE table ALTER COLUMN column DROP DEFAULT in the block (DROP
** SEQUENCE ... CASCADE, sequence.c). */
int sqlv__drop_column_default(sqlv__run *r, const char *table, const char *column) {
    sqlv_session *s = r->s;
    sqlv__table *old = NULL;
    uint32_t id;
    int k = session_find(s, table, &id);
    if (id == 0) return STMT_OK; /* dropped meanwhile */
    int trc = sqlv__session_table(s, id, &old);
    if (trc != 0) return trc < 0 ? fail(r, "53200", "out of memory") : STMT_OK;
    int rc = alter_column(r, old, k, column, ALTER_COL_DROP_DEFAULT, NULL, 0);
    sqlv__table_free(old);
    return rc;
}
