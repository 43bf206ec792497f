/*
** The extended query protocol: prepared statements and portals.
**
** A statement run by SQLite is parsed once, at Parse, into ps->stmt. A
** portal borrows that sqlite3_stmt while no other portal runs it, and
** prepares a private one otherwise. Statements the session handles itself
** (BEGIN, COMMIT, SET, SHOW, CREATE/DROP TABLE...) are kept as text and
** run through the session's dispatcher at Execute.
**
** Transactions (as PostgreSQL's extended protocol): a Parse or Bind of a
** SQLite statement, an Execute (or a Describe of a portal, which runs its
** first step) outside a block opens the session's implicit block (status
** 'T', implicit_block), which sqlv_session_sync commits, or rolls back when
** a statement failed. Parse and Bind begin the KV transaction so that they
** plan with its catalog; a statement kept from an earlier transaction is
** prepared again by SQLite when the catalog (the declarations) changed,
** and an INSERT by us when its column defaults changed (defaults_refresh:
** they are part of its text, default.c).
**
** Invariants:
**   - a portal's stmt is used only while the transaction it started in is
**     open: every portal is dropped when the session returns to 'I' (Sync,
**     COMMIT/ROLLBACK through Execute) and at every simple Query; a
**     utility statement run through Execute first drops the other started
**     portals (it may end the transaction under them). ROLLBACK TO drops
**     the portals bound after its savepoint (PostgreSQL's rule), and a
**     RELEASE SAVEPOINT cockroach_restart that commits drops all of them;
**     neither drops the portal running it.
**   - while s->awaiting_commit (the block committed by RELEASE) no portal
**     starts and no transaction begins: only COMMIT/ROLLBACK do anything.
**   - ps->stmt_in_use is true exactly while one portal borrows ps->stmt.
**   - a portal's result types (oids) are fixed before its first row is
**     sent and every row is encoded with them: a Describe and the rows
**     always agree.
**   - counts: at most SQLV_STATEMENTS_MAX statements and SQLV_PORTALS_MAX
**     portals per session; at most SQLV_PARAMS_MAX parameters.
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql_dialect.h"
#include "sql_int.h"
#include "sql_lex.h"

#define STMT_OK 0
#define STMT_FAILED 1
/* Tokens scanned for parameter type inference; past it, text. */
#define INFER_TOKENS_MAX 20000
/* Tables a statement names that inference looks at. */
#define INFER_TABLES_MAX 16

/* ---- lists --------------------------------------------------------------------------- */

static void prepared_unref(sqlv__prepared *ps) {
    if (ps == NULL || --ps->refs > 0) return;
    if (ps->stmt) sqlite3_finalize(ps->stmt);
    base_free(ps->name);
    base_free(ps->text);
    base_free(ps->base_text);
    base_free(ps->param_oids);
    base_free(ps);
}

static void portal_free(sqlv__portal *p) {
    if (p == NULL) return;
    if (p->stmt) {
        if (p->own_stmt) {
            sqlite3_finalize(p->stmt);
        } else {
            sqlite3_reset(p->stmt);
            sqlite3_clear_bindings(p->stmt);
            p->ps->stmt_in_use = false;
        }
    }
    prepared_unref(p->ps);
    sqlv__dml_out_free(p->dml_out);
    base_free(p->name);
    base_free(p->oids);
    base_free(p->formats);
    base_free(p);
}

static int find_stmt(sqlv_session *s, const char *name) {
    for (int i = 0; i < s->nstmts; i++)
        if (strcmp(s->stmts[i]->name, name) == 0) return i;
    return -1;
}

static int find_portal(sqlv_session *s, const char *name) {
    for (int i = 0; i < s->nportals; i++)
        if (strcmp(s->portals[i]->name, name) == 0) return i;
    return -1;
}

static void remove_stmt(sqlv_session *s, int i) {
    sqlv__prepared *ps = s->stmts[i];
    s->stmts[i] = s->stmts[--s->nstmts];
    prepared_unref(ps);
}

static void remove_portal(sqlv_session *s, int i) {
    sqlv__portal *p = s->portals[i];
    s->portals[i] = s->portals[--s->nportals];
    portal_free(p);
}

void sqlv__portals_clear(sqlv_session *s) {
    while (s->nportals > 0)
        remove_portal(s, s->nportals - 1);
}

void sqlv__portals_drop_after(sqlv_session *s, uint64_t portal_seq) {
    for (int i = s->nportals - 1; i >= 0; i--)
        if (s->portals[i]->seq > portal_seq && !s->portals[i]->running) remove_portal(s, i);
}

void sqlv__extended_free(sqlv_session *s) {
    sqlv__portals_clear(s);
    while (s->nstmts > 0)
        remove_stmt(s, s->nstmts - 1);
    base_free(s->stmts);
    base_free(s->portals);
    s->stmts = NULL;
    s->portals = NULL;
    s->cap_stmts = s->cap_portals = 0;
}

static int grow(void **arr, int *cap, int need) {
    if (need <= *cap) return 0;
    int ncap = *cap ? *cap * 2 : 8;
    while (ncap < need) ncap *= 2;
    void *p = base_realloc(*arr, sizeof(void *) * (size_t)ncap);
    if (p == NULL) return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* ---- parameter type inference -----------------------------------------------------------
** Cheap and local: a parameter compared with a column (col = $1, $1 < t.col)
** takes the column's type; in INSERT INTO t (a, b) VALUES ($1, $2) the
** target column's; CAST($1 AS type) that type; LIMIT/OFFSET $1 int8;
** otherwise text (PostgreSQL resolves an unknown parameter to text as
** well). */

typedef struct infer_ctx {
    sqlv__table *tables[INFER_TABLES_MAX];
    int ntables;
} infer_ctx;

static const sqlv__column *infer_column(infer_ctx *ic, const sqlv__token *t) {
    char name[SQLV__NAME_BYTES_MAX * 4 + 1];
    if (t->kind != SQLV__TOK_WORD && t->kind != SQLV__TOK_QUOTED) return NULL;
    if (sqlv__tok_ident(t, name, sizeof(name)) != 0) return NULL;
    for (int i = 0; i < ic->ntables; i++)
        for (int c = 0; c < ic->tables[i]->ncols; c++)
            if (sqlite3_stricmp(ic->tables[i]->cols[c].name, name) == 0)
                return &ic->tables[i]->cols[c];
    return NULL;
}

static bool is_compare(const sqlv__token *a, const sqlv__token *b) {
    /* one or two punctuation tokens forming = <> != < > <= >= */
    if (a->kind != SQLV__TOK_PUNCT) return false;
    char c = a->start[0];
    if (b && b->kind == SQLV__TOK_PUNCT && b->start == a->start + 1) {
        char d = b->start[0];
        return (c == '<' && (d == '>' || d == '=')) || (c == '>' && d == '=') ||
               (c == '!' && d == '=') || (c == '=' && d == '=');
    }
    return c == '=' || c == '<' || c == '>';
}

/* $n -> n, or 0 if t is not a positional parameter. */
static long param_number(const sqlv__token *t) {
    if (t->len < 2 || t->len > 6 || t->start[0] != '$') return 0;
    long n = 0;
    for (size_t i = 1; i < t->len; i++) {
        if (t->start[i] < '0' || t->start[i] > '9') return 0;
        n = n * 10 + (t->start[i] - '0');
    }
    return n;
}

static void infer_types(sqlv_session *s, const char *text, size_t len, int nparams,
                        uint32_t *oids) {
    infer_ctx ic = {.ntables = 0};
    sqlv__token *toks = base_calloc(INFER_TOKENS_MAX, sizeof(*toks));
    int n = 0;
    const char *p = text, *end = text + len;
    if (toks == NULL) return;
    for (;;) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END || n == INFER_TOKENS_MAX) break;
        toks[n++] = t;
    }
    for (int i = 0; i < n && ic.ntables < INFER_TABLES_MAX; i++) {
        char name[SQLV__NAME_BYTES_MAX * 4 + 1];
        if (toks[i].kind != SQLV__TOK_WORD && toks[i].kind != SQLV__TOK_QUOTED) continue;
        if (sqlv__tok_ident(&toks[i], name, sizeof(name)) != 0) continue;
        uint32_t id = sqlv__session_find_id(s, name);
        if (id == 0) continue;
        bool dup = false;
        for (int j = 0; j < ic.ntables; j++)
            dup |= ic.tables[j]->id == id;
        sqlv__table *t = NULL;
        if (!dup && sqlv__session_table(s, id, &t) == 0) ic.tables[ic.ntables++] = t;
    }
    for (int i = 0; i < n; i++) {
        long k = param_number(&toks[i]);
        if (k < 1 || k > nparams || oids[k - 1] != 0) continue;
        const sqlv__column *col = NULL;
        /* col op $k */
        if (i >= 2 && is_compare(&toks[i - 1], NULL)) {
            int j = i - 1;
            if (j >= 1 && is_compare(&toks[j - 1], &toks[j])) j--;
            if (j >= 1) col = infer_column(&ic, &toks[j - 1]);
        }
        /* $k op col */
        if (col == NULL && i + 2 < n && is_compare(&toks[i + 1], &toks[i + 2])) {
            int j = i + 2;
            if (is_compare(&toks[i + 1], &toks[i + 2]) && toks[i + 2].kind == SQLV__TOK_PUNCT)
                j++;
            if (j < n) col = infer_column(&ic, &toks[j]);
            /* t.col */
            if (col == NULL && j + 2 < n && sqlv__tok_punct(&toks[j + 1], '.'))
                col = infer_column(&ic, &toks[j + 2]);
        }
        /* CAST($k AS type) */
        if (col == NULL && i >= 2 && i + 2 < n && sqlv__tok_punct(&toks[i - 1], '(') &&
            sqlv__tok_is(&toks[i - 2], "CAST") && sqlv__tok_is(&toks[i + 1], "AS")) {
            char decl[64];
            if (sqlv__tok_ident(&toks[i + 2], decl, sizeof(decl)) == 0)
                oids[k - 1] = sqlv__class_oid(sqlv__class_of_decl(decl));
            continue;
        }
        if (col) {
            oids[k - 1] = sqlv__class_oid(col->cls);
        } else if (i >= 1 && (sqlv__tok_is(&toks[i - 1], "LIMIT") ||
                              sqlv__tok_is(&toks[i - 1], "OFFSET"))) {
            oids[k - 1] = SQLV_OID_INT8; /* as PostgreSQL */
        }
    }
    /* INSERT INTO t (a, b, ...) VALUES (e1, e2, ...), (...) */
    if (n > 4 && sqlv__tok_is(&toks[0], "INSERT")) {
        int i = 1;
        while (i < n && !sqlv__tok_punct(&toks[i], '(') && !sqlv__tok_is(&toks[i], "VALUES"))
            i++;
        int cols_at = -1, ncols = 0;
        if (i < n && sqlv__tok_punct(&toks[i], '(')) {
            cols_at = i + 1;
            while (i < n && !sqlv__tok_punct(&toks[i], ')'))
                i++;
            ncols = (i - cols_at + 1) / 2;
            i++;
        }
        if (i < n && sqlv__tok_is(&toks[i], "VALUES") && ic.ntables > 0) {
            int pos = 0, depth = 0;
            for (i++; i < n; i++) {
                if (sqlv__tok_punct(&toks[i], '(')) {
                    if (depth++ == 0) pos = 0;
                    continue;
                }
                if (sqlv__tok_punct(&toks[i], ')')) {
                    depth--;
                    continue;
                }
                if (depth == 1 && sqlv__tok_punct(&toks[i], ',')) {
                    pos++;
                    continue;
                }
                long k = param_number(&toks[i]);
                if (depth != 1 || k < 1 || k > nparams || oids[k - 1] != 0) continue;
                bool alone = sqlv__tok_punct(&toks[i - 1], '(') || sqlv__tok_punct(&toks[i - 1], ',');
                if (!alone) continue;
                const sqlv__column *col = NULL;
                if (cols_at >= 0 && pos < ncols) {
                    col = infer_column(&ic, &toks[cols_at + 2 * pos]);
                } else if (cols_at < 0 && pos < ic.tables[0]->ncols) {
                    col = &ic.tables[0]->cols[pos];
                }
                if (col) oids[k - 1] = sqlv__class_oid(col->cls);
            }
        }
    }
    for (int i = 0; i < ic.ntables; i++)
        sqlv__table_free(ic.tables[i]);
    base_free(toks);
}

/* ---- the transaction ---------------------------------------------------------------------- */

static void open_implicit_block(sqlv_session *s) {
    if (s->status == 'I') {
        s->status = 'T';
        s->implicit_block = true;
    }
}

/* Parse, Bind and Execute of a SQLite statement run in the transaction, as
** PostgreSQL's do: begin it (outside BEGIN, the implicit block that Sync
** ends) so that the statement is planned with the catalog of that
** transaction's read timestamp. STMT_OK or STMT_FAILED (error sent). */
static int ext_begin(sqlv__run *r) {
    sqlv_session *s = r->s;
    if (s->kv != NULL || s->status == 'E' || s->awaiting_commit) return STMT_OK;
    open_implicit_block(s);
    txn_error err = {{0}, {0}};
    int rc = sqlv__session_begin(s, false, &err);
    return rc == TXN_OK ? STMT_OK : sqlv__fail_txn(r, rc, &err);
}

/* ---- Parse ------------------------------------------------------------------------------ */

static bool is_sqlite_statement(const char *text, size_t len) {
    const char *p = text, *end = text + len;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "EXPLAIN")) { /* ours (explain.c), as the simple protocol routes it */
        sqlv__token t2 = sqlv__lex_next(&p, end);
        return sqlv__tok_is(&t2, "QUERY");
    }
    return sqlv__tok_is(&t, "SELECT") || sqlv__tok_is(&t, "INSERT") ||
           sqlv__tok_is(&t, "UPDATE") || sqlv__tok_is(&t, "DELETE") || sqlv__tok_is(&t, "WITH") ||
           sqlv__tok_is(&t, "VALUES") || sqlv__tok_is(&t, "REPLACE") || sqlv__tok_punct(&t, '(');
}

/* EXPLAIN (ours: a statement the session runs as text) naming $n or ?
** parameters, which nothing would bind. */
static bool explain_has_params(const char *text, size_t len) {
    const char *p = text, *end = text + len;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (!sqlv__tok_is(&t, "EXPLAIN") || is_sqlite_statement(text, len)) return false;
    for (int guard = 0; guard < INFER_TOKENS_MAX; guard++) {
        t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        if (t.kind == SQLV__TOK_OTHER && (t.start[0] == '?' || t.start[0] == '$')) return true;
        if (t.kind == SQLV__TOK_PUNCT && t.start[0] == '?') return true;
    }
    return false;
}

/* An INSERT prepared under another catalog than the transaction's: its
** column defaults again (an ALTER ... SET/DROP DEFAULT since), and the
** statement prepared again when they changed. Left for a later Bind while
** another portal runs ps->stmt. STMT_OK or STMT_FAILED (error sent). */
static int defaults_refresh(sqlv__run *r, sqlv__prepared *ps) {
    sqlv_session *s = r->s;
    char state[6], msg[300];
    char *full = NULL, *don = NULL; /* owner: this function, then ps */
    int result = STMT_FAILED;
    if (ps->base_text == NULL || s->cat == NULL || ps->stmt_in_use ||
        (s->cat->version == ps->defaults_cat_version &&
         s->ddl_version == ps->defaults_ddl_version))
        return STMT_OK;
    int rc = sqlv__default_apply(s, ps->base_text, strlen(ps->base_text), &full, state, msg,
                                 sizeof(msg));
    if (rc == 0 && full == NULL && (full = base_strdup(ps->base_text)) == NULL) rc = -1;
    /* INSERT ... SELECT DISTINCT ON: as at Parse */
    if (rc == 0) rc = sqlv__distinct_on_apply(s, full, strlen(full), &don, state, msg, sizeof(msg));
    if (rc == 0 && don != NULL) {
        base_free(full);
        full = don;
    }
    if (rc != 0) {
        sqlv__emit_error(r, rc < 0 ? "53200" : state, rc < 0 ? "out of memory" : msg);
        goto cleanup;
    }
    if (strcmp(full, ps->text) != 0) {
        if (!ps->dml_ext) { /* a carrier holds only the parameters: it stays */
            sqlite3_stmt *st = NULL;
            rc = sqlv__prepare(s, full, strlen(full), &st, NULL);
            if (rc != SQLITE_OK || st == NULL) {
                sqlite3_finalize(st);
                sqlv__map_error(s, rc, state, msg, sizeof(msg));
                sqlv__emit_error(r, state, msg);
                goto cleanup;
            }
            sqlite3_finalize(ps->stmt);
            ps->stmt = st;
        }
        base_free(ps->text);
        ps->text = full;
        ps->len = strlen(full);
        full = NULL;
    }
    ps->defaults_cat_version = s->cat->version;
    ps->defaults_ddl_version = s->ddl_version;
    result = STMT_OK;
cleanup:
    base_free(full);
    return result;
}

static int ext_prepare_impl(sqlv_session *s, const char *name, const char *query, size_t query_len,
                         int nparam_types, const uint32_t *param_oids, const sqlv_sink *sink) {
    sqlv__run r = {s, sink, 0};
    sqlv__prepared *ps = NULL;
    char state[6], msg[600];
    int result = SQLV_ERR_FAILED;
    if (name == NULL) name = "";
    if (nparam_types < 0 || nparam_types > SQLV_PARAMS_MAX) {
        sqlv__emit_error(&r, "54000", "too many parameters");
        return SQLV_ERR_FAILED;
    }
    if (name[0] && find_stmt(s, name) >= 0) {
        snprintf(msg, sizeof(msg), "prepared statement \"%.200s\" already exists", name);
        sqlv__emit_error(&r, "42P05", msg);
        return SQLV_ERR_FAILED;
    }
    if (name[0] && s->nstmts >= SQLV_STATEMENTS_MAX) {
        sqlv__emit_error(&r, "54000", "too many prepared statements in this session");
        return SQLV_ERR_FAILED;
    }
    ps = base_calloc(1, sizeof(*ps));
    if (ps == NULL) goto nomem;
    ps->refs = 1;
    ps->name = base_strdup(name);
    ps->text = base_strndup(query ? query : "", query ? query_len : 0);
    if (ps->name == NULL || ps->text == NULL) goto nomem;
    ps->len = strlen(ps->text); /* an embedded NUL ends the query */
    /* Trim a trailing ';' and space; more than one statement is an error. */
    {
        const char *p = ps->text, *end = ps->text + ps->len, *last_end = ps->text;
        int nst = 0;
        bool has = false;
        for (;;) {
            const char *before = p;
            sqlv__token t = sqlv__lex_next(&p, end);
            if (t.kind == SQLV__TOK_END || t.kind == SQLV__TOK_SEMI) {
                if (has) {
                    nst++;
                    last_end = t.kind == SQLV__TOK_END ? before : t.start;
                }
                has = false;
                if (t.kind == SQLV__TOK_END) break;
                continue;
            }
            has = true;
        }
        if (nst > 1) {
            sqlv__emit_error(&r, "42601", "cannot insert multiple commands into a prepared statement");
            goto cleanup;
        }
        if (nst == 0) {
            ps->empty = true;
        } else {
            const char *st = sqlv__lex_skip_space(ps->text, last_end);
            size_t n = (size_t)(last_end - st);
            memmove(ps->text, st, n);
            ps->text[n] = 0;
            ps->len = n;
        }
    }
    if (!ps->empty) {
        /* the PostgreSQL dialect rewrite (dialect.c), once, at Parse */
        sqlv__rewrite rw;
        int wrc = sqlv__dialect_rewrite(ps->text, ps->len, &rw);
        if (wrc < 0) goto nomem;
        if (wrc > 0) {
            sqlv__emit_error(&r, rw.sqlstate, rw.message);
            goto cleanup;
        }
        base_free(ps->text);
        ps->text = rw.text;
        ps->len = rw.len;
        if (explain_has_params(ps->text, ps->len)) {
            sqlv__emit_error(&r, "0A000",
                             "EXPLAIN with parameters is not supported in the extended protocol "
                             "yet: send the values in the statement (or use the simple protocol)");
            goto cleanup;
        }
        /* a statement's AS OF SYSTEM TIME needs its transaction begun at it,
        ** which Parse (planning in the session's transaction) cannot do yet;
        ** a block's works: BEGIN AS OF SYSTEM TIME (docs/sql.md) */
        char *stripped = NULL, expr[128], astate[6], amsg[200];
        bool found = false;
        int arc = !is_sqlite_statement(ps->text, ps->len)
                      ? 0
                      : sqlv__as_of_take(ps->text, ps->len, &stripped, expr, sizeof(expr),
                                         &found, astate, amsg, sizeof(amsg));
        base_free(stripped);
        if (arc < 0) goto nomem;
        if (arc > 0 || found) {
            sqlv__emit_error(&r, arc > 0 ? astate : "0A000",
                             arc > 0 ? amsg
                                     : "AS OF SYSTEM TIME in a statement of the extended "
                                       "protocol is not supported yet: use BEGIN AS OF SYSTEM "
                                       "TIME ... (or the simple protocol)");
            goto cleanup;
        }
    }
    if (!ps->empty && is_sqlite_statement(ps->text, ps->len)) {
        const char *tail = NULL;
        /* planned with the transaction's catalog; a later transaction that
        ** sees another catalog version changes the declarations, and
        ** SQLite prepares the statement again at its next step */
        if (ext_begin(&r) != STMT_OK) goto cleanup;
        /* INSERT: the column defaults SQLite does not apply (default.c),
        ** from the catalog at Parse (again at a Bind under another one:
        ** defaults_refresh) */
        char *full = NULL; /* owner: this block, then ps */
        char target[SQLV__NAME_BYTES_MAX * 4 + 1];
        /* the identity rules, as the simple protocol (sequence.c): 428C9 for
        ** a value of a GENERATED ALWAYS column, OVERRIDING cut, UPDATE's SET c
        ** = DEFAULT; checked once, here (PostgreSQL checks at Parse too) */
        char *checked = NULL; /* owner: this block, then ps */
        int crc = sqlv__seq_insert_check(s, ps->text, ps->len, &checked, state, msg, sizeof(msg));
        sqlv__seq_insert_done(s); /* nothing derived from it runs through the check */
        if (crc == 0 && checked == NULL)
            crc = sqlv__seq_update_check(s, ps->text, ps->len, &checked, state, msg, sizeof(msg));
        if (crc < 0) goto nomem;
        if (crc > 0) {
            sqlv__emit_error(&r, state, msg);
            goto cleanup;
        }
        if (checked) {
            base_free(ps->text);
            ps->text = checked;
            ps->len = strlen(checked);
        }
        if (sqlv__default_target(ps->text, ps->len, target, sizeof(target))) {
            ps->base_text = base_strdup(ps->text);
            if (ps->base_text == NULL) goto nomem;
            ps->defaults_cat_version = s->cat ? s->cat->version : 0;
            ps->defaults_ddl_version = s->ddl_version;
        }
        int drc = sqlv__default_apply(s, ps->text, ps->len, &full, state, msg, sizeof(msg));
        if (drc < 0) goto nomem;
        if (drc > 0) {
            sqlv__emit_error(&r, state, msg);
            goto cleanup;
        }
        if (full) {
            base_free(ps->text);
            ps->text = full;
            ps->len = strlen(full);
        }
        /* SELECT DISTINCT ON (distinct_on.c) */
        char *don = NULL; /* owner: this block, then ps */
        drc = sqlv__distinct_on_apply(s, ps->text, ps->len, &don, state, msg, sizeof(msg));
        if (drc < 0) goto nomem;
        if (drc > 0) {
            sqlv__emit_error(&r, state, msg);
            goto cleanup;
        }
        if (don) {
            base_free(ps->text);
            ps->text = don;
            ps->len = strlen(don);
        }
        int rc;
        if (sqlv__dml_ext_wanted(ps->text, ps->len)) {
            /* ON CONFLICT / RETURNING: a parameter carrier (upsert.c) */
            char *carrier = NULL; /* owner: this block */
            if (sqlv__dml_ext_carrier(ps->text, ps->len, &carrier) != 0) goto nomem;
            rc = sqlv__prepare(s, carrier, strlen(carrier), &ps->stmt, &tail);
            base_free(carrier);
            ps->dml_ext = true;
        } else {
            rc = sqlv__prepare(s, ps->text, ps->len, &ps->stmt, &tail);
        }
        if (rc != SQLITE_OK || ps->stmt == NULL) {
            sqlv__map_error(s, rc, state, msg, sizeof(msg));
            sqlv__emit_error(&r, state, msg);
            goto cleanup;
        }
        /* $n parameters only: SQLite numbers "$1" by first appearance, so
        ** we bind by name and count by the highest n. */
        int count = sqlite3_bind_parameter_count(ps->stmt);
        for (int i = 1; i <= count; i++) {
            const char *pn = sqlite3_bind_parameter_name(ps->stmt, i);
            sqlv__token t = {SQLV__TOK_OTHER, pn, pn ? strlen(pn) : 0};
            long k = pn ? param_number(&t) : 0;
            if (k < 1 || k > SQLV_PARAMS_MAX) {
                snprintf(msg, sizeof(msg),
                         "unsupported parameter \"%.40s\": use $1, $2, ... (up to $%d)",
                         pn ? pn : "?", SQLV_PARAMS_MAX);
                sqlv__emit_error(&r, "42601", msg);
                goto cleanup;
            }
            if (k > ps->nparams) ps->nparams = (int)k;
        }
    }
    if (nparam_types > ps->nparams) ps->nparams = nparam_types;
    if (ps->nparams > 0) {
        ps->param_oids = base_calloc((size_t)ps->nparams, sizeof(uint32_t));
        if (ps->param_oids == NULL) goto nomem;
        for (int i = 0; i < nparam_types; i++)
            ps->param_oids[i] = param_oids[i];
        if (ps->stmt == NULL) {
            sqlv__emit_error(&r, "0A000", "parameters are supported only in SELECT, INSERT, "
                                          "UPDATE and DELETE");
            goto cleanup;
        }
        infer_types(s, ps->text, ps->len, ps->nparams, ps->param_oids);
        for (int i = 0; i < ps->nparams; i++)
            if (ps->param_oids[i] == 0 || ps->param_oids[i] == SQLV_OID_UNKNOWN)
                ps->param_oids[i] = SQLV_OID_TEXT;
    }
    ps->utility = !ps->empty && ps->stmt == NULL;
    {
        int i = find_stmt(s, name);
        if (i >= 0) remove_stmt(s, i); /* the unnamed statement is replaced */
    }
    if (grow((void **)&s->stmts, &s->cap_stmts, s->nstmts + 1) != 0) goto nomem;
    s->stmts[s->nstmts++] = ps;
    ps = NULL;
    result = SQLV_OK;
    goto cleanup;
nomem:
    sqlv__emit_error(&r, "53200", "out of memory");
cleanup:
    if (ps) prepared_unref(ps);
    if (r.sink_rc != 0) return SQLV_ERR_ABORTED;
    return result;
}

/* ---- Bind --------------------------------------------------------------------------------- */

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static uint64_t be(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Bind value v (format fmt) of parameter k to st as type oid. 0, or 1 with
** state/msg set. */
static int bind_value(sqlite3_stmt *st, int k, uint32_t oid, int fmt, const sqlv_cell *v,
                      char state[6], char *msg, size_t size) {
    char pname[16];
    snprintf(pname, sizeof(pname), "$%d", k);
    int idx = sqlite3_bind_parameter_index(st, pname);
    if (idx == 0) return 0; /* declared but not used */
    int rc = SQLITE_OK;
    if (v->data == NULL) {
        rc = sqlite3_bind_null(st, idx);
        goto done;
    }
    if (v->len > SQLV__VALUE_BYTES_MAX) {
        base_strlcpy(state, "54000", 6);
        snprintf(msg, size, "parameter $%d is too long", k);
        return 1;
    }
    const uint8_t *b = (const uint8_t *)v->data;
    if (fmt == SQLV_FORMAT_BINARY) {
        size_t want = 0;
        switch (oid) {
        case SQLV_OID_INT2: want = 2; break;
        case SQLV_OID_INT4:
        case SQLV_OID_FLOAT4: want = 4; break;
        case SQLV_OID_INT8:
        case SQLV_OID_FLOAT8: want = 8; break;
        case SQLV_OID_BOOL: want = 1; break;
        case SQLV_OID_BYTEA:
        case SQLV_OID_TEXT:
        case SQLV_OID_VARCHAR:
        case SQLV_OID_UNKNOWN: want = 0; break;
        default:
            base_strlcpy(state, "0A000", 6);
            snprintf(msg, size, "binary format for parameter $%d of type %u is not supported", k,
                     oid);
            return 1;
        }
        if (want && v->len != want) {
            base_strlcpy(state, "22P03", 6);
            snprintf(msg, size, "incorrect binary data format in bind parameter %d", k);
            return 1;
        }
        switch (oid) {
        case SQLV_OID_INT2: rc = sqlite3_bind_int64(st, idx, (int16_t)be(b, 2)); break;
        case SQLV_OID_INT4: rc = sqlite3_bind_int64(st, idx, (int32_t)be(b, 4)); break;
        case SQLV_OID_INT8: rc = sqlite3_bind_int64(st, idx, (int64_t)be(b, 8)); break;
        case SQLV_OID_FLOAT4: {
            uint32_t u = (uint32_t)be(b, 4);
            float f;
            memcpy(&f, &u, 4);
            rc = sqlite3_bind_double(st, idx, f);
            break;
        }
        case SQLV_OID_FLOAT8: {
            uint64_t u = be(b, 8);
            double d;
            memcpy(&d, &u, 8);
            rc = sqlite3_bind_double(st, idx, d);
            break;
        }
        case SQLV_OID_BOOL: rc = sqlite3_bind_int64(st, idx, b[0] != 0); break;
        case SQLV_OID_BYTEA: rc = sqlite3_bind_blob64(st, idx, b, v->len, SQLITE_TRANSIENT); break;
        default:
            rc = sqlite3_bind_text64(st, idx, v->data, v->len, SQLITE_TRANSIENT, SQLITE_UTF8);
            break;
        }
        goto done;
    }
    /* Text format. */
    char num[400];
    bool numeric = oid == SQLV_OID_INT2 || oid == SQLV_OID_INT4 || oid == SQLV_OID_INT8 ||
                   oid == SQLV_OID_FLOAT4 || oid == SQLV_OID_FLOAT8 || oid == SQLV_OID_NUMERIC ||
                   oid == SQLV_OID_BOOL;
    if (numeric) {
        size_t n = v->len;
        while (n > 0 && (b[n - 1] == ' ' || b[n - 1] == '\t' || b[n - 1] == '\n')) n--;
        size_t st0 = 0;
        while (st0 < n && (b[st0] == ' ' || b[st0] == '\t' || b[st0] == '\n')) st0++;
        if (n - st0 >= sizeof(num) || memchr(b + st0, 0, n - st0)) goto bad_input;
        memcpy(num, b + st0, n - st0);
        num[n - st0] = 0;
    }
    switch (oid) {
    case SQLV_OID_INT2:
    case SQLV_OID_INT4:
    case SQLV_OID_INT8: {
        char *e;
        errno = 0;
        long long x = strtoll(num, &e, 10);
        if (num[0] == 0 || *e != 0) goto bad_input;
        if (errno == ERANGE || (oid == SQLV_OID_INT4 && (x < INT32_MIN || x > INT32_MAX)) ||
            (oid == SQLV_OID_INT2 && (x < INT16_MIN || x > INT16_MAX))) {
            base_strlcpy(state, "22003", 6);
            snprintf(msg, size, "value \"%.60s\" is out of range for parameter $%d", num, k);
            return 1;
        }
        rc = sqlite3_bind_int64(st, idx, x);
        break;
    }
    case SQLV_OID_FLOAT4:
    case SQLV_OID_FLOAT8:
    case SQLV_OID_NUMERIC: {
        char *e;
        long long x;
        if (num[0] == 0) goto bad_input;
        if (oid == SQLV_OID_NUMERIC) {
            errno = 0;
            x = strtoll(num, &e, 10);
            if (*e == 0 && errno == 0) {
                rc = sqlite3_bind_int64(st, idx, x);
                break;
            }
        }
        double d = strtod(num, &e);
        if (*e != 0) goto bad_input;
        rc = sqlite3_bind_double(st, idx, d);
        break;
    }
    case SQLV_OID_BOOL: {
        static const char *const yes[] = {"t", "true", "y", "yes", "on", "1"};
        static const char *const no[] = {"f", "false", "n", "no", "off", "0"};
        int val = -1;
        for (size_t i = 0; i < BASE_ARRAY_LEN(yes) && val < 0; i++) {
            if (strcasecmp(num, yes[i]) == 0) val = 1;
            if (strcasecmp(num, no[i]) == 0) val = 0;
        }
        if (val < 0) goto bad_input;
        rc = sqlite3_bind_int64(st, idx, val);
        break;
    }
    case SQLV_OID_BYTEA:
        if (v->len >= 2 && b[0] == '\\' && b[1] == 'x') {
            size_t n = (v->len - 2) / 2;
            if ((v->len - 2) % 2 != 0) goto bad_input;
            uint8_t *out = base_malloc(n ? n : 1);
            if (out == NULL) {
                base_strlcpy(state, "53200", 6);
                base_strlcpy(msg, "out of memory", size);
                return 1;
            }
            for (size_t i = 0; i < n; i++) {
                int hi = hexval(b[2 + 2 * i]), lo = hexval(b[3 + 2 * i]);
                if (hi < 0 || lo < 0) {
                    base_free(out);
                    goto bad_input;
                }
                out[i] = (uint8_t)(hi << 4 | lo);
            }
            rc = sqlite3_bind_blob64(st, idx, out, n, SQLITE_TRANSIENT);
            base_free(out);
        } else {
            rc = sqlite3_bind_blob64(st, idx, b, v->len, SQLITE_TRANSIENT);
        }
        break;
    default:
        rc = sqlite3_bind_text64(st, idx, v->data, v->len, SQLITE_TRANSIENT, SQLITE_UTF8);
        break;
    }
done:
    if (rc != SQLITE_OK) {
        base_strlcpy(state, rc == SQLITE_NOMEM ? "53200" : "54000", 6);
        snprintf(msg, size, "cannot bind parameter $%d: %s", k, sqlite3_errstr(rc));
        return 1;
    }
    return 0;
bad_input:
    base_strlcpy(state, "22P02", 6);
    snprintf(msg, size, "invalid input syntax for parameter $%d of type %u", k, oid);
    return 1;
}

static int ext_bind_impl(sqlv_session *s, const char *portal, const char *statement, int nparams,
                      const sqlv_cell *values, int nformats, const int16_t *formats,
                      int nresult_formats, const int16_t *result_formats,
                      const sqlv_sink *sink) {
    sqlv__run r = {s, sink, 0};
    char state[6], msg[600];
    sqlv__portal *p = NULL;
    int result = SQLV_ERR_FAILED;
    if (portal == NULL) portal = "";
    if (statement == NULL) statement = "";
    int si = find_stmt(s, statement);
    if (si < 0) {
        snprintf(msg, sizeof(msg), "prepared statement \"%.200s\" does not exist", statement);
        sqlv__emit_error(&r, "26000", msg);
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    }
    sqlv__prepared *ps = s->stmts[si];
    if (portal[0] && find_portal(s, portal) >= 0) {
        snprintf(msg, sizeof(msg), "portal \"%.200s\" already exists", portal);
        sqlv__emit_error(&r, "42P03", msg);
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    }
    if (s->status == 'E' && !ps->utility) {
        /* only COMMIT/ROLLBACK can do anything now; the dispatcher answers
        ** the other utility statements with 25P02 at Execute */
        sqlv__emit_error(&r, "25P02", "current transaction is aborted, commands ignored until end "
                                      "of transaction block");
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    }
    if (s->awaiting_commit && !ps->utility) {
        sqlv__emit_error(&r, "25000", SQLV__COMMITTED_MESSAGE);
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    }
    if (nparams != ps->nparams) {
        snprintf(msg, sizeof(msg),
                 "bind message supplies %d parameters, but prepared statement \"%.200s\" requires %d",
                 nparams, statement, ps->nparams);
        sqlv__emit_error(&r, "08P01", msg);
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    }
    if (nformats != 0 && nformats != 1 && nformats != nparams) {
        sqlv__emit_error(&r, "08P01", "bind message has a bad number of parameter formats");
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    }
    if (s->nportals >= SQLV_PORTALS_MAX && find_portal(s, portal) < 0) {
        sqlv__emit_error(&r, "54000", "too many open portals in this session");
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    }
    {
        int i = find_portal(s, portal);
        if (i >= 0) remove_portal(s, i); /* the unnamed portal is replaced */
    }
    if (ps->stmt != NULL && ext_begin(&r) != STMT_OK) goto cleanup;
    if (ps->stmt != NULL && defaults_refresh(&r, ps) != STMT_OK) goto cleanup;
    p = base_calloc(1, sizeof(*p));
    if (p == NULL) goto nomem;
    p->name = base_strdup(portal);
    if (p->name == NULL) goto nomem;
    p->ps = ps;
    ps->refs++;
    if (ps->stmt) {
        p->ncols = sqlite3_column_count(ps->stmt);
        if (nresult_formats != 0 && nresult_formats != 1 && nresult_formats != p->ncols) {
            snprintf(msg, sizeof(msg), "bind message has %d result formats but query has %d columns",
                     nresult_formats, p->ncols);
            sqlv__emit_error(&r, "08P01", msg);
            goto cleanup;
        }
        if (p->ncols > 0) {
            p->oids = base_calloc((size_t)p->ncols, sizeof(*p->oids));
            p->formats = base_calloc((size_t)p->ncols, sizeof(*p->formats));
            if (p->oids == NULL || p->formats == NULL) goto nomem;
            for (int i = 0; i < p->ncols; i++) {
                int16_t f = nresult_formats == 0 ? 0
                            : nresult_formats == 1 ? result_formats[0]
                                                   : result_formats[i];
                if (f != SQLV_FORMAT_TEXT && f != SQLV_FORMAT_BINARY) {
                    sqlv__emit_error(&r, "22023", "unsupported result format code");
                    goto cleanup;
                }
                p->formats[i] = f;
            }
        }
        if (!ps->stmt_in_use) {
            p->stmt = ps->stmt;
            ps->stmt_in_use = true;
            sqlite3_reset(p->stmt);
            sqlite3_clear_bindings(p->stmt);
        } else {
            /* another portal runs the parsed statement: a private copy */
            char *carrier = NULL; /* owner: this block */
            if (ps->dml_ext && sqlv__dml_ext_carrier(ps->text, ps->len, &carrier) != 0)
                goto nomem;
            int rc = carrier ? sqlv__prepare(s, carrier, strlen(carrier), &p->stmt, NULL)
                             : sqlv__prepare(s, ps->text, ps->len, &p->stmt, NULL);
            base_free(carrier);
            if (rc != SQLITE_OK || p->stmt == NULL) {
                sqlv__map_error(s, rc, state, msg, sizeof(msg));
                sqlv__emit_error(&r, state, msg);
                goto cleanup;
            }
            p->own_stmt = true;
        }
        for (int i = 0; i < nparams; i++) {
            int16_t f = nformats == 0 ? 0 : nformats == 1 ? formats[0] : formats[i];
            if (f != SQLV_FORMAT_TEXT && f != SQLV_FORMAT_BINARY) {
                sqlv__emit_error(&r, "22023", "unsupported parameter format code");
                goto cleanup;
            }
            if (bind_value(p->stmt, i + 1, ps->param_oids[i], f, &values[i], state, msg,
                           sizeof(msg)) != 0) {
                sqlv__emit_error(&r, state, msg);
                goto cleanup;
            }
        }
    } else if (nresult_formats > 1) {
        sqlv__emit_error(&r, "08P01", "bind message has result formats but the query has no "
                                      "columns");
        goto cleanup;
    }
    if (grow((void **)&s->portals, &s->cap_portals, s->nportals + 1) != 0) goto nomem;
    p->seq = ++s->portal_seq;
    s->portals[s->nportals++] = p;
    p = NULL;
    result = SQLV_OK;
    goto cleanup;
nomem:
    sqlv__emit_error(&r, "53200", "out of memory");
cleanup:
    portal_free(p);
    if (r.sink_rc != 0) return SQLV_ERR_ABORTED;
    return result;
}

/* ---- running a portal -------------------------------------------------------------------- */

/* A ps->dml_ext portal's run (upsert.c), once, at its first Describe or
** Execute: the same transaction start as portal_start. */
static int dml_portal_start(sqlv__run *r, sqlv__portal *p) {
    sqlv_session *s = r->s;
    if (p->started) return p->dml_out ? STMT_OK : STMT_FAILED;
    if (s->status == 'E')
        return sqlv__emit_error(r, "25P02", "current transaction is aborted, commands ignored "
                                            "until end of transaction block");
    if (s->awaiting_commit) return sqlv__emit_error(r, "25000", SQLV__COMMITTED_MESSAGE);
    open_implicit_block(s);
    p->started = true;
    if (s->kv == NULL) {
        txn_error err = {{0}, {0}};
        int rc = sqlv__session_begin(s, false, &err);
        if (rc != TXN_OK) return sqlv__fail_txn(r, rc, &err);
    }
    atomic_store(&s->cancel, 0);
    return sqlv__dml_ext_portal_run(r, p->ps->text, p->ps->len, p->stmt, &p->dml_out);
}

/* Fetch the first row: begins the KV transaction and the statement
** savepoint, steps once and fixes the result types. STMT_OK or
** STMT_FAILED (error sent). */
static int portal_start(sqlv__run *r, sqlv__portal *p) {
    sqlv_session *s = r->s;
    char state[6], msg[600];
    if (p->started) return STMT_OK;
    if (s->status == 'E')
        return sqlv__emit_error(r, "25P02", "current transaction is aborted, commands ignored "
                                            "until end of transaction block");
    if (s->awaiting_commit) return sqlv__emit_error(r, "25000", SQLV__COMMITTED_MESSAGE);
    open_implicit_block(s);
    p->started = true;
    if (s->kv == NULL) {
        /* the transaction's first statement: its catalog version decides
        ** the declarations below */
        txn_error err = {{0}, {0}};
        int rc = sqlv__session_begin(s, false, &err);
        if (rc != TXN_OK) return sqlv__fail_txn(r, rc, &err);
    }
    /* A changed catalog changes the declarations, which expires p->stmt:
    ** SQLite prepares it again at the step (with its bindings), and a
    ** dropped table fails it there with 42P01. */
    if (sqlv__sync_tables(s) != 0) return sqlv__fail(r, "53200", "out of memory");
    s->err_sqlstate[0] = 0;
    s->err_message[0] = 0;
    if (txn_savepoint(s->kv, &p->sp) == TXN_OK) p->have_sp = true;
    atomic_store(&s->cancel, 0);
    int rc = sqlite3_step(p->stmt);
    if ((rc == SQLITE_ROW || rc == SQLITE_DONE) && sqlite3_column_count(p->stmt) != p->ncols) {
        /* prepared again over changed columns (SELECT * after ADD COLUMN):
        ** the Bind-time row shape no longer holds, as in PostgreSQL */
        rc = SQLITE_SCHEMA;
        s->err_sqlstate[0] = 0;
        sqlv__session_error(s, "0A000", "cached plan must not change result type");
    }
    if (rc == SQLITE_ROW) {
        p->have_row = true;
    } else if (rc != SQLITE_DONE) {
        sqlv__map_error(s, rc, state, msg, sizeof(msg));
        sqlite3_reset(p->stmt);
        if (p->have_sp && s->kv) txn_rollback_to(s->kv, p->sp);
        p->have_sp = false;
        p->done = true;
        p->tag[0] = 0;
        return sqlv__fail(r, state, msg);
    }
    if (!p->typed && p->ncols > 0) {
        sqlv_sink quiet = {0};
        sqlv__run q = {s, &quiet, 0};
        if (sqlv__describe(&q, p->stmt, p->ps->text, p->ps->len, p->have_row, p->oids) != 0)
            return sqlv__fail(r, "53200", "out of memory");
        p->typed = true;
    }
    if (!p->have_row) {
        sqlv__completion_tag(s, p->ps->text, p->ps->len, 0, p->tag, sizeof(p->tag));
        p->done = true;
        sqlite3_reset(p->stmt);
        if (p->have_sp && s->kv) txn_release(s->kv, p->sp);
        p->have_sp = false;
    }
    return STMT_OK;
}

static void put_be(base_buf *b, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; i--)
        b->data[b->len++] = (uint8_t)(v >> (8 * i));
}

/* One result value in binary format. 0, -1 memory, 1 unsupported (msg). */
static int format_binary(sqlite3_stmt *st, int col, uint32_t oid, base_buf *out, bool *is_null,
                         char *msg, size_t size) {
    int type = sqlite3_column_type(st, col);
    *is_null = type == SQLITE_NULL;
    if (*is_null) return 0;
    if (base_buf_reserve(out, 8) != 0) return -1;
    switch (oid) {
    case SQLV_OID_BOOL: put_be(out, sqlite3_column_int64(st, col) != 0, 1); return 0;
    case SQLV_OID_INT2: put_be(out, (uint64_t)(int16_t)sqlite3_column_int64(st, col), 2); return 0;
    case SQLV_OID_INT4: put_be(out, (uint64_t)(int32_t)sqlite3_column_int64(st, col), 4); return 0;
    case SQLV_OID_INT8: put_be(out, (uint64_t)sqlite3_column_int64(st, col), 8); return 0;
    case SQLV_OID_FLOAT8: {
        double d = sqlite3_column_double(st, col);
        uint64_t u;
        memcpy(&u, &d, 8);
        put_be(out, u, 8);
        return 0;
    }
    case SQLV_OID_BYTEA: {
        const void *p = sqlite3_column_blob(st, col);
        int n = sqlite3_column_bytes(st, col);
        return n > 0 ? base_buf_append(out, p, (size_t)n) : 0;
    }
    case SQLV_OID_TEXT:
    case SQLV_OID_VARCHAR:
    case SQLV_OID_UNKNOWN: return sqlv__format_value(st, col, oid, out, is_null);
    default:
        snprintf(msg, size, "binary format of result type %u is not supported", oid);
        return 1;
    }
}

static int send_portal_row(sqlv__run *r, sqlv__portal *p, base_buf *buf, sqlv_cell *cells,
                           size_t *offs) {
    char msg[200];
    base_buf_reset(buf);
    for (int i = 0; i < p->ncols; i++) {
        bool is_null;
        offs[i] = buf->len;
        int rc = p->formats[i] == SQLV_FORMAT_BINARY
                     ? format_binary(p->stmt, i, p->oids[i], buf, &is_null, msg, sizeof(msg))
                     : sqlv__format_value(p->stmt, i, p->oids[i], buf, &is_null);
        if (rc < 0) return sqlv__fail(r, "53200", "out of memory");
        if (rc > 0) return sqlv__fail(r, "0A000", msg);
        cells[i].data = is_null ? NULL : "";
        cells[i].len = buf->len - offs[i];
    }
    for (int i = 0; i < p->ncols; i++)
        if (cells[i].data && buf->data) cells[i].data = (const char *)buf->data + offs[i];
    if (r->sink_rc == 0 && r->sink->data_row)
        r->sink_rc = r->sink->data_row(r->sink->ctx, p->ncols, cells);
    return STMT_OK;
}

/* A sink that forwards everything but RowDescription (Execute never sends
** one; Describe did). */
static int drop_row_description(void *ctx, int ncols, const sqlv_column *cols) {
    (void)ctx;
    (void)ncols;
    (void)cols;
    return 0;
}

static int run_utility(sqlv__run *r, sqlv__portal *p) {
    sqlv_session *s = r->s;
    /* The statement may end the transaction under started portals. */
    for (int i = s->nportals - 1; i >= 0; i--)
        if (s->portals[i] != p && s->portals[i]->started && !s->portals[i]->done)
            remove_portal(s, i);
    sqlv_sink inner = *r->sink;
    inner.row_description = drop_row_description;
    sqlv__run u = {s, &inner, 0};
    bool was_idle = s->status == 'I';
    if (was_idle) {
        /* BEGIN from idle starts an explicit block directly. */
        const char *q = p->ps->text, *end = q + p->ps->len;
        sqlv__token t = sqlv__lex_next(&q, end);
        if (!sqlv__tok_is(&t, "BEGIN") && !sqlv__tok_is(&t, "START") &&
            !sqlv__tok_is(&t, "COMMIT") && !sqlv__tok_is(&t, "END") &&
            !sqlv__tok_is(&t, "ROLLBACK") && !sqlv__tok_is(&t, "ABORT"))
            open_implicit_block(s);
    }
    p->running = true; /* a ROLLBACK TO or RELEASE must not free it under us */
    int rc = sqlv__run_statement(&u, p->ps->text, p->ps->len);
    p->running = false;
    r->sink_rc = u.sink_rc;
    p->started = p->done = true;
    p->tag[0] = 0; /* a second Execute does nothing */
    return rc;
}

static int ext_execute_impl(sqlv_session *s, const char *portal, uint64_t max_rows,
                         const sqlv_sink *sink) {
    sqlv__run r = {s, sink, 0};
    char state[6], msg[600];
    base_buf buf = {0};
    sqlv_cell *cells = NULL;
    size_t *offs = NULL;
    int result = SQLV_ERR_FAILED;
    if (portal == NULL) portal = "";
    int pi = find_portal(s, portal);
    if (pi < 0) {
        snprintf(msg, sizeof(msg), "portal \"%.200s\" does not exist", portal);
        sqlv__emit_error(&r, "34000", msg);
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    }
    sqlv__portal *p = s->portals[pi];
    atomic_store(&s->cancel, 0);
    if (p->ps->empty) {
        if (sink->empty_query) r.sink_rc = sink->empty_query(sink->ctx);
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_OK;
    }
    if (p->ps->utility) {
        if (p->done) {
            result = SQLV_OK;
        } else {
            result = run_utility(&r, p) == STMT_OK ? SQLV_OK : SQLV_ERR_FAILED;
            if (s->status == 'I') sqlv__portals_clear(s); /* p may be gone */
        }
        return r.sink_rc ? SQLV_ERR_ABORTED : result;
    }
    if (p->done) {
        /* completed earlier: PostgreSQL answers with the empty tail */
        if (p->tag[0] == 0) {
            sqlv__emit_error(&r, "55000", "portal cannot be run again after an error");
            return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
        }
        if (sink->command_complete) r.sink_rc = sink->command_complete(sink->ctx, p->tag);
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_OK;
    }
    if (s->status == 'E') {
        sqlv__emit_error(&r, "25P02", "current transaction is aborted, commands ignored until end "
                                      "of transaction block");
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    }
    if (s->awaiting_commit) {
        sqlv__emit_error(&r, "25000", SQLV__COMMITTED_MESSAGE);
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    }
    if (p->ps->dml_ext) {
        if (dml_portal_start(&r, p) == STMT_OK) {
            sqlv__dml_out_send(&r, p->dml_out, p->tag, sizeof(p->tag));
            result = SQLV_OK;
        }
        p->done = true; /* a failed run has no tag: 55000 if run again */
        goto cleanup;
    }
    if (portal_start(&r, p) != STMT_OK) goto cleanup;
    if (p->ncols > 0) {
        cells = base_calloc((size_t)p->ncols, sizeof(*cells));
        offs = base_calloc((size_t)p->ncols, sizeof(*offs));
        if (cells == NULL || offs == NULL) {
            sqlv__fail(&r, "53200", "out of memory");
            goto cleanup;
        }
    }
    uint64_t sent = 0;
    while (p->have_row && r.sink_rc == 0 && (max_rows == 0 || sent < max_rows)) {
        if (send_portal_row(&r, p, &buf, cells, offs) != STMT_OK) goto failed_reset;
        sent++;
        p->rows++;
        int rc = sqlite3_step(p->stmt);
        if (rc == SQLITE_ROW) continue;
        p->have_row = false;
        if (rc != SQLITE_DONE) {
            sqlv__map_error(s, rc, state, msg, sizeof(msg));
            sqlv__fail(&r, state, msg);
            goto failed_reset;
        }
        sqlv__completion_tag(s, p->ps->text, p->ps->len, p->rows, p->tag, sizeof(p->tag));
    }
    if (r.sink_rc != 0) {
        sqlv__fail(&r, "57014", "client gone");
        goto failed_reset;
    }
    if (p->have_row) {
        if (sink->portal_suspended) r.sink_rc = sink->portal_suspended(sink->ctx);
        result = SQLV_OK;
        goto cleanup;
    }
    if (!p->done) {
        p->done = true;
        sqlite3_reset(p->stmt);
        if (p->have_sp && s->kv) txn_release(s->kv, p->sp);
        p->have_sp = false;
    }
    if (p->tag[0] == 0)
        sqlv__completion_tag(s, p->ps->text, p->ps->len, p->rows, p->tag, sizeof(p->tag));
    if (sink->command_complete) r.sink_rc = sink->command_complete(sink->ctx, p->tag);
    result = SQLV_OK;
    goto cleanup;
failed_reset:
    sqlite3_reset(p->stmt);
    if (p->have_sp && s->kv) txn_rollback_to(s->kv, p->sp);
    p->have_sp = false;
    p->have_row = false;
    p->done = true;
    p->tag[0] = 0;
cleanup:
    base_buf_free(&buf);
    base_free(cells);
    base_free(offs);
    if (r.sink_rc != 0) return SQLV_ERR_ABORTED;
    return result;
}

/* ---- Describe, Close, Sync ------------------------------------------------------------------ */

typedef struct describe_ctx {
    const sqlv_sink *sink;
    const int16_t *formats; /* NULL: text */
    const uint32_t *oids;   /* NULL: as described */
} describe_ctx;

static int16_t oid_size(uint32_t oid) {
    switch (oid) {
    case SQLV_OID_BOOL: return 1;
    case SQLV_OID_INT2: return 2;
    case SQLV_OID_INT4:
    case SQLV_OID_FLOAT4: return 4;
    case SQLV_OID_INT8:
    case SQLV_OID_FLOAT8: return 8;
    default: return -1;
    }
}

static int describe_forward(void *ctx, int ncols, const sqlv_column *cols) {
    describe_ctx *d = ctx;
    if (d->sink->row_description == NULL) return 0;
    sqlv_column *c = base_calloc((size_t)ncols + 1, sizeof(*c));
    if (c == NULL) return -1;
    for (int i = 0; i < ncols; i++) {
        c[i] = cols[i];
        c[i].format = d->formats ? d->formats[i] : 0;
        if (d->oids) {
            c[i].type_oid = d->oids[i];
            c[i].type_size = oid_size(d->oids[i]);
        }
    }
    int rc = d->sink->row_description(d->sink->ctx, ncols, c);
    base_free(c);
    return rc;
}

/* RowDescription of a SQLite statement (or NoData / SHOW's or EXPLAIN's one
** column). */
static int describe_rows(sqlv__run *r, sqlv__prepared *ps, sqlite3_stmt *st, bool have_row,
                         uint32_t *oids, const int16_t *formats) {
    const sqlv_sink *sink = r->sink;
    if (st == NULL) {
        const char *q = ps->text, *end = q + ps->len;
        sqlv__token t = sqlv__lex_next(&q, end);
        if (!ps->empty && sqlv__tok_is(&t, "SHOW")) {
            char name[64] = "?column?";
            sqlv__token t2 = sqlv__lex_next(&q, end);
            if (sqlv__tok_ident(&t2, name, sizeof(name)) == 0)
                for (char *c = name; *c; c++)
                    if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
            sqlv_column col = {name, SQLV_OID_TEXT, -1, 0};
            if (sink->row_description) r->sink_rc = sink->row_description(sink->ctx, 1, &col);
            return 0;
        }
        if (!ps->empty && sqlv__tok_is(&t, "EXPLAIN")) { /* explain.c's one column */
            sqlv_column col = {"QUERY PLAN", SQLV_OID_TEXT, -1, 0};
            if (sink->row_description) r->sink_rc = sink->row_description(sink->ctx, 1, &col);
            return 0;
        }
        if (sink->no_data) r->sink_rc = sink->no_data(sink->ctx);
        return 0;
    }
    if (sqlite3_column_count(st) == 0) {
        if (sink->no_data) r->sink_rc = sink->no_data(sink->ctx);
        return 0;
    }
    describe_ctx d = {sink, formats, NULL};
    sqlv_sink fwd = {.ctx = &d, .row_description = describe_forward};
    sqlv__run q = {r->s, &fwd, 0};
    int rc = sqlv__describe(&q, st, ps->text, ps->len, have_row, oids);
    r->sink_rc = q.sink_rc;
    return rc;
}

static int ext_describe_impl(sqlv_session *s, char kind, const char *name, const sqlv_sink *sink) {
    sqlv__run r = {s, sink, 0};
    char msg[300];
    if (name == NULL) name = "";
    if (kind == 'S') {
        int i = find_stmt(s, name);
        if (i < 0) {
            snprintf(msg, sizeof(msg), "prepared statement \"%.200s\" does not exist", name);
            sqlv__emit_error(&r, "26000", msg);
            return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
        }
        sqlv__prepared *ps = s->stmts[i];
        if (sink->parameter_description)
            r.sink_rc = sink->parameter_description(sink->ctx, ps->nparams, ps->param_oids);
        if (r.sink_rc == 0 && ps->dml_ext) {
            int drc = sqlv__dml_ext_describe(&r, ps->text, ps->len);
            return r.sink_rc ? SQLV_ERR_ABORTED : drc == STMT_OK ? SQLV_OK : SQLV_ERR_FAILED;
        }
        if (r.sink_rc == 0) {
            uint32_t *oids = NULL;
            int ncols = ps->stmt ? sqlite3_column_count(ps->stmt) : 0;
            if (ncols > 0 && (oids = base_calloc((size_t)ncols, sizeof(*oids))) == NULL) {
                sqlv__emit_error(&r, "53200", "out of memory");
                return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
            }
            int rc = describe_rows(&r, ps, ps->stmt, false, oids, NULL);
            base_free(oids);
            if (rc != 0) {
                sqlv__emit_error(&r, "53200", "out of memory");
                return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
            }
        }
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_OK;
    }
    if (kind != 'P') {
        snprintf(msg, sizeof(msg), "invalid DESCRIBE message subtype %d", (int)(unsigned char)kind);
        sqlv__emit_error(&r, "08P01", msg);
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    }
    int i = find_portal(s, name);
    if (i < 0) {
        snprintf(msg, sizeof(msg), "portal \"%.200s\" does not exist", name);
        sqlv__emit_error(&r, "34000", msg);
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    }
    sqlv__portal *p = s->portals[i];
    if (p->ps->dml_ext) {
        if (p->done && p->tag[0] == 0) {
            sqlv__emit_error(&r, "55000", "portal failed");
            return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
        }
        if (dml_portal_start(&r, p) != STMT_OK)
            return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
        sqlv__dml_out_describe(&r, p->dml_out);
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_OK;
    }
    if (p->ps->stmt == NULL || p->ncols == 0)
        return describe_rows(&r, p->ps, NULL, false, NULL, NULL) == 0 && r.sink_rc == 0
                   ? SQLV_OK
                   : SQLV_ERR_ABORTED;
    /* The types PostgreSQL knows from the plan we learn from the first row,
    ** as the simple protocol does: the portal starts here. */
    if (!p->started && portal_start(&r, p) != STMT_OK)
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    if (p->done && p->tag[0] == 0) {
        sqlv__emit_error(&r, "55000", "portal failed");
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    }
    /* column names and the fixed types */
    uint32_t *tmp = base_calloc((size_t)p->ncols, sizeof(*tmp));
    if (tmp == NULL) {
        sqlv__emit_error(&r, "53200", "out of memory");
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    }
    describe_ctx d = {sink, p->formats, p->oids};
    /* Names from the describe logic; types from p->oids (already fixed by
    ** portal_start with the same logic and the same first row). */
    sqlv_sink fwd = {.ctx = &d, .row_description = describe_forward};
    sqlv__run q = {s, &fwd, 0};
    int rc = sqlv__describe(&q, p->stmt, p->ps->text, p->ps->len, p->have_row, tmp);
    r.sink_rc = q.sink_rc;
    base_free(tmp);
    if (rc != 0) {
        sqlv__emit_error(&r, "53200", "out of memory");
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    }
    return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_OK;
}

int sqlv_session_close_object(sqlv_session *s, char kind, const char *name) {
    if (name == NULL) name = "";
    if (kind == 'S') {
        int i = find_stmt(s, name);
        if (i >= 0) remove_stmt(s, i);
        return SQLV_OK;
    }
    if (kind == 'P') {
        int i = find_portal(s, name);
        if (i >= 0) remove_portal(s, i);
        return SQLV_OK;
    }
    return SQLV_ERR_FAILED;
}

static int session_sync(sqlv_session *s, const sqlv_sink *sink);

/* The end of an implicit block may run SQLite: the session's memory. */
int sqlv_session_sync(sqlv_session *s, const sqlv_sink *sink) {
    sqlv__mem *prev = sqlv__mem_enter(s->mem);
    int rc = session_sync(s, sink);
    sqlv__mem_leave(prev);
    return rc;
}

static int session_sync(sqlv_session *s, const sqlv_sink *sink) {
    sqlv__run r = {s, sink, 0};
    if (s->implicit_block) {
        /* statements must be reset before their transaction ends */
        sqlv__portals_clear(s);
        sqlv__end_implicit_block(&r);
    }
    if (s->status == 'I') sqlv__portals_clear(s);
    return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_OK;
}

/* ---- the public entry points ------------------------------------------------------------
** Any error inside a transaction aborts it, as in PostgreSQL: an explicit
** block goes to 'E'; the implicit one is rolled back at Sync. A block
** already committed by RELEASE stays as it is (CockroachDB's CommitWait). */

static int abort_on_error(sqlv_session *s, int rc) {
    if (rc == SQLV_ERR_FAILED && s->status == 'T' && !s->awaiting_commit) s->status = 'E';
    return rc;
}

int sqlv_session_prepare(sqlv_session *s, const char *name, const char *query, size_t query_len,
                         int nparam_types, const uint32_t *param_oids, const sqlv_sink *sink) {
    sqlv__mem *prev = sqlv__mem_enter(s->mem); /* SQLite's memory: the session's */
    int rc = abort_on_error(
        s, ext_prepare_impl(s, name, query, query_len, nparam_types, param_oids, sink));
    sqlv__mem_leave(prev);
    return rc;
}

int sqlv_session_bind(sqlv_session *s, const char *portal, const char *statement, int nparams,
                      const sqlv_cell *values, int nformats, const int16_t *formats,
                      int nresult_formats, const int16_t *result_formats,
                      const sqlv_sink *sink) {
    sqlv__mem *prev = sqlv__mem_enter(s->mem);
    int rc = abort_on_error(s, ext_bind_impl(s, portal, statement, nparams, values, nformats,
                                             formats, nresult_formats, result_formats, sink));
    sqlv__mem_leave(prev);
    return rc;
}

int sqlv_session_describe(sqlv_session *s, char kind, const char *name, const sqlv_sink *sink) {
    sqlv__mem *prev = sqlv__mem_enter(s->mem);
    int rc = abort_on_error(s, ext_describe_impl(s, kind, name, sink));
    sqlv__mem_leave(prev);
    return rc;
}

int sqlv_session_execute(sqlv_session *s, const char *portal, uint64_t max_rows,
                         const sqlv_sink *sink) {
    sqlv__mem *prev = sqlv__mem_enter(s->mem);
    int rc = abort_on_error(s, ext_execute_impl(s, portal, max_rows, sink));
    sqlv__mem_leave(prev);
    return rc;
}
