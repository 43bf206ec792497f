/*
** UPSERT and RETURNING (docs/sql.md "UPSERT and RETURNING"). SQLite refuses
** INSERT ... ON CONFLICT and UPDATE/DELETE ... RETURNING on virtual tables,
** so the session runs these statements here, as a sequence of plain
** statements that SQLite accepts on them:
**
**   INSERT INTO t [(cols)] <VALUES ...|SELECT ...> ON CONFLICT [target]
**       DO NOTHING | DO UPDATE SET ... [WHERE ...] [RETURNING ...]
**     the source runs first and is read whole; then, per source row: one
**     "SELECT _meridian_key FROM t WHERE c = ?..." per arbiter (the primary
**     key or unique index the target names; every one without a target),
**     then "INSERT INTO t (cols) VALUES (?...)" when none found a row, or
**     "UPDATE t SET ... WHERE _meridian_key = :mk [AND (...)]" with
**     excluded.c bound as a parameter.
**   INSERT/UPDATE ... RETURNING: the statement without the clause runs
**     while the module records the keys it writes (s->capture, vtab.c);
**     then "SELECT <list> FROM t WHERE _meridian_key = ?" reads each row
**     back (after the change).
**   DELETE ... RETURNING: "SELECT _meridian_key FROM <the DELETE's FROM and
**     WHERE>" collects the keys; each row is read back and sent, then
**     deleted by its key (before the change).
**
** Invariants:
**   - everything runs in one KV savepoint of the session's transaction (an
**     implicit one outside a block): an error anywhere rolls the whole
**     statement back; reads go through the same transaction (its read set
**     keeps the lookups serializable).
**   - the source rows are read before the first write: the statement does
**     not see its own writes (PostgreSQL's snapshot rule).
**   - a row is inserted or updated at most once per upsert: a conflict
**     with a key the statement already wrote is 21000 under DO UPDATE
**     (skipped under DO NOTHING).
**   - at most SQLV__CAPTURE_ROWS_MAX rows per statement (54000 past it).
**   - NOT NULL is checked on every proposed row before the arbiter
**     lookups, CHECK on a row that conflicts (the others' INSERT checks
**     it): a violation fails the statement (23502, 23514) even when the
**     row conflicts (PostgreSQL's order), DO NOTHING and DO UPDATE alike.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql_int.h"
#include "sql_lex.h"

#define STMT_OK 0
#define STMT_FAILED 1
#define UPSERT_ARBITERS_MAX (1 + SQLV__INDEXES_MAX)
#define NAME_BYTES (SQLV__NAME_BYTES_MAX * 4 + 1)

int sqlv__capture_add(sqlv__capture *c, const uint8_t *key, size_t len) {
    if (c->n >= SQLV__CAPTURE_ROWS_MAX || len > UINT32_MAX) return -1;
    uint8_t n4[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                     (uint8_t)len};
    if (base_buf_append(&c->keys, n4, 4) != 0 || base_buf_append(&c->keys, key, len) != 0)
        return -1;
    c->n++;
    return 0;
}

/* The key at *off of c's list (advanced past it); false at the end. */
static bool capture_next(const sqlv__capture *c, size_t *off, const uint8_t **key, size_t *len) {
    if (*off + 4 > c->keys.len) return false;
    const uint8_t *p = c->keys.data + *off;
    *len = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    *key = p + 4;
    *off += 4 + *len;
    return true;
}

static bool capture_has(const sqlv__capture *c, const void *key, size_t len) {
    size_t off = 0, n;
    const uint8_t *k;
    while (capture_next(c, &off, &k, &n))
        if (n == len && (n == 0 || memcmp(k, key, n) == 0)) return true;
    return false;
}

/* ---- parsing ----------------------------------------------------------------------- */

typedef struct span {
    const char *start, *end; /* start NULL: absent */
} span;

typedef struct dml {
    char kind; /* 'I', 'U', 'D' */
    char table[NAME_BYTES];
    span spec;      /* UPDATE/DELETE: the target as written ("t AS x") */
    span body;      /* the statement without RETURNING */
    span from_rest; /* DELETE: after FROM, without RETURNING */
    span cols;      /* INSERT: inside the column list's parentheses */
    span source;    /* INSERT: VALUES ... / SELECT ... */
    bool on_conflict, do_update;
    span target;                 /* inside the conflict target's parentheses */
    char constraint[NAME_BYTES]; /* ON CONSTRAINT name; "" none */
    span set, where;             /* DO UPDATE */
    span returning;              /* the list after RETURNING */
} dml;

static bool is_end(const sqlv__token *t) { return t->kind == SQLV__TOK_END; }

/* The token after the parenthesis group opened just before *pp: *pp past
** its ')', the inside in *in. false: unbalanced. */
static bool skip_group(const char **pp, const char *end, span *in) {
    int depth = 1;
    in->start = *pp;
    for (;;) {
        const char *before = *pp;
        sqlv__token t = sqlv__lex_next(pp, end);
        if (is_end(&t)) return false;
        if (sqlv__tok_punct(&t, '(')) depth++;
        if (sqlv__tok_punct(&t, ')') && --depth == 0) {
            in->end = before;
            return true;
        }
    }
}

/* The first top-level RETURNING in [p, end): its token start, and the list
** after it in *list; NULL if none. */
static const char *find_returning(const char *p, const char *end, span *list) {
    int depth = 0;
    for (;;) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (is_end(&t)) return NULL;
        if (sqlv__tok_punct(&t, '(')) depth++;
        if (sqlv__tok_punct(&t, ')')) depth--;
        if (depth == 0 && sqlv__tok_is(&t, "RETURNING")) {
            list->start = p;
            list->end = end;
            return t.start;
        }
    }
}

/* The first top-level ON CONFLICT in [p, end): the start of ON; NULL if none. */
static const char *find_on_conflict(const char *p, const char *end, const char **after) {
    int depth = 0;
    sqlv__token prev = {SQLV__TOK_END, NULL, 0};
    for (;;) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (is_end(&t)) return NULL;
        if (sqlv__tok_punct(&t, '(')) depth++;
        if (sqlv__tok_punct(&t, ')')) depth--;
        if (depth == 0 && sqlv__tok_is(&prev, "ON") && sqlv__tok_is(&t, "CONFLICT")) {
            *after = p;
            return prev.start;
        }
        prev = t;
    }
}

bool sqlv__dml_ext_wanted(const char *text, size_t len) {
    const char *p = text, *end = text + len, *after;
    span list;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "INSERT") && find_on_conflict(p, end, &after)) return true;
    if (!sqlv__tok_is(&t, "INSERT") && !sqlv__tok_is(&t, "UPDATE") && !sqlv__tok_is(&t, "DELETE"))
        return false;
    return find_returning(p, end, &list) != NULL;
}

/* 0 ok, 1 refused (state/msg set). */
static int parse(const char *text, size_t len, dml *d, char state[6], char *msg, size_t size) {
    const char *p = text, *end = text + len;
    memset(d, 0, sizeof(*d));
    base_strlcpy(state, "42601", 6);
    sqlv__token t = sqlv__lex_next(&p, end);
    d->kind = sqlv__tok_is(&t, "INSERT") ? 'I' : sqlv__tok_is(&t, "UPDATE") ? 'U' : 'D';
    const char *ret = find_returning(p, end, &d->returning);
    const char *body_end = ret ? ret : end;
    d->body.start = text;
    d->body.end = body_end;
    if (d->kind == 'U' || d->kind == 'D') {
        if (d->kind == 'D') {
            t = sqlv__lex_next(&p, end);
            if (!sqlv__tok_is(&t, "FROM")) goto syntax;
            d->from_rest.start = p;
            d->from_rest.end = body_end;
        }
        d->spec.start = p;
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&t, "ONLY")) t = sqlv__lex_next(&p, end);
        if (sqlv__tok_ident(&t, d->table, sizeof(d->table)) != 0) goto syntax;
        /* the target runs to SET / WHERE / the end, at the top level */
        for (;;) {
            const char *before = p;
            t = sqlv__lex_next(&p, body_end);
            if (is_end(&t) || sqlv__tok_is(&t, "SET") || sqlv__tok_is(&t, "WHERE")) {
                d->spec.end = is_end(&t) ? body_end : before;
                break;
            }
        }
        return 0;
    }
    t = sqlv__lex_next(&p, end);
    if (!sqlv__tok_is(&t, "INTO")) goto syntax;
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_ident(&t, d->table, sizeof(d->table)) != 0) goto syntax;
    const char *after_name = p;
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "AS")) {
        base_strlcpy(state, "0A000", 6);
        snprintf(msg, size, "an alias of the INSERT target is not supported with ON CONFLICT or "
                            "RETURNING");
        return 1;
    }
    if (sqlv__tok_punct(&t, '(')) {
        if (!skip_group(&p, end, &d->cols)) goto syntax;
    } else {
        p = after_name;
    }
    const char *after_conflict = NULL;
    const char *on = find_on_conflict(p, body_end, &after_conflict);
    d->source.start = sqlv__lex_skip_space(p, end);
    d->source.end = on ? on : body_end;
    if (on == NULL) return 0;
    d->on_conflict = true;
    p = after_conflict;
    t = sqlv__lex_next(&p, body_end);
    if (sqlv__tok_punct(&t, '(')) {
        if (!skip_group(&p, body_end, &d->target)) goto syntax;
        t = sqlv__lex_next(&p, body_end);
        if (sqlv__tok_is(&t, "WHERE")) {
            base_strlcpy(state, "0A000", 6);
            snprintf(msg, size, "ON CONFLICT with an index predicate (WHERE) is not supported");
            return 1;
        }
    } else if (sqlv__tok_is(&t, "ON")) {
        t = sqlv__lex_next(&p, body_end);
        if (!sqlv__tok_is(&t, "CONSTRAINT")) goto syntax;
        t = sqlv__lex_next(&p, body_end);
        if (sqlv__tok_ident(&t, d->constraint, sizeof(d->constraint)) != 0) goto syntax;
        t = sqlv__lex_next(&p, body_end);
    }
    if (!sqlv__tok_is(&t, "DO")) goto syntax;
    t = sqlv__lex_next(&p, body_end);
    if (sqlv__tok_is(&t, "NOTHING")) {
        t = sqlv__lex_next(&p, body_end);
        if (!is_end(&t)) goto syntax;
        return 0;
    }
    if (!sqlv__tok_is(&t, "UPDATE")) goto syntax;
    t = sqlv__lex_next(&p, body_end);
    if (!sqlv__tok_is(&t, "SET")) goto syntax;
    d->do_update = true;
    d->set.start = p;
    d->set.end = body_end;
    int depth = 0;
    for (;;) {
        const char *before = p;
        t = sqlv__lex_next(&p, body_end);
        if (is_end(&t)) break;
        if (sqlv__tok_punct(&t, '(')) depth++;
        if (sqlv__tok_punct(&t, ')')) depth--;
        if (depth == 0 && sqlv__tok_is(&t, "WHERE")) {
            d->set.end = before;
            d->where.start = p;
            d->where.end = body_end;
            break;
        }
    }
    if (sqlv__lex_skip_space(d->set.start, d->set.end) == d->set.end) goto syntax;
    if (d->where.start && sqlv__lex_skip_space(d->where.start, d->where.end) == d->where.end)
        goto syntax;
    return 0;
syntax:
    snprintf(msg, size, "syntax error in %s",
             d->kind == 'I' ? "INSERT" : d->kind == 'U' ? "UPDATE" : "DELETE");
    return 1;
}

/* ---- running ------------------------------------------------------------------------ */

typedef struct exec {
    sqlv__run *r;
    sqlv_session *s;
    bool own;       /* the statement began the transaction (status was 'I') */
    bool have_sp;
    uint32_t sp;
    sqlv__capture cap;
    sqlite3_value **params; /* $1..$nparams (extended protocol); borrowed */
    int nparams;
    /* RETURNING output */
    bool described;
    uint32_t *oids; /* owner: this */
    sqlv_cell *cells;
    size_t *offs;
    base_buf row;
} exec;

static int fail(exec *x, const char *state, const char *msg) {
    return sqlv__fail(x->r, state, msg);
}

/* A SQLite error of the session's connection. */
static int fail_sqlite(exec *x, int rc) {
    char state[6], msg[600];
    sqlv__map_error(x->s, rc, state, msg, sizeof(msg));
    return fail(x, state, msg);
}

/* Bind the statement's $n parameters (the client's values; absent: NULL).
** Our own parameters are named :m... so that they never share a slot with
** a $n (SQLite numbers ?N and $n in one space). */
static void bind_params(exec *x, sqlite3_stmt *st) {
    int n = sqlite3_bind_parameter_count(st);
    for (int i = 1; i <= n; i++) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        if (name == NULL || name[0] != '$') continue;
        long k = strtol(name + 1, NULL, 10);
        if (k >= 1 && k <= x->nparams) sqlite3_bind_value(st, i, x->params[k - 1]);
    }
}

static int prepare(exec *x, const char *sql, sqlite3_stmt **st) {
    const char *tail = NULL;
    int rc = sqlv__prepare(x->s, sql, strlen(sql), st, &tail);
    if (rc != SQLITE_OK || *st == NULL) {
        sqlite3_finalize(*st);
        *st = NULL;
        return fail_sqlite(x, rc == SQLITE_OK ? SQLITE_ERROR : rc);
    }
    bind_params(x, *st);
    return STMT_OK;
}

static void bind_key(sqlite3_stmt *st, const void *key, size_t len) {
    int i = sqlite3_bind_parameter_index(st, ":mk");
    if (i > 0) sqlite3_bind_blob(st, i, key, (int)len, SQLITE_TRANSIENT);
}

/* Step a statement that writes, with the capture on: STMT_OK at DONE. */
static int step_write(exec *x, sqlite3_stmt *st) {
    x->s->err_sqlstate[0] = 0;
    x->s->err_message[0] = 0;
    x->s->capture = &x->cap;
    int rc;
    do {
        rc = sqlite3_step(st);
    } while (rc == SQLITE_ROW);
    x->s->capture = NULL;
    if (rc != SQLITE_DONE) {
        if (x->cap.n >= SQLV__CAPTURE_ROWS_MAX && x->s->err_sqlstate[0] == 0)
            return fail(x, "54000", "too many rows in one statement with RETURNING or ON CONFLICT");
        return fail_sqlite(x, rc);
    }
    return STMT_OK;
}

static int bind_cell(sqlite3_stmt *st, int i, const sqlv__cell *c) {
    switch (c->type) {
    case SQLITE_INTEGER: return sqlite3_bind_int64(st, i, c->i);
    case SQLITE_FLOAT: return sqlite3_bind_double(st, i, c->r);
    case SQLITE_TEXT:
        return sqlite3_bind_text(st, i, c->n ? (const char *)c->p : "", (int)c->n,
                                 SQLITE_TRANSIENT);
    case SQLITE_BLOB:
        return sqlite3_bind_blob(st, i, c->n ? (const void *)c->p : (const void *)"", (int)c->n,
                                 SQLITE_TRANSIENT);
    default: return sqlite3_bind_null(st, i);
    }
}

/* Send the current row of st (a read-back): RowDescription first. */
static int send_row(exec *x, sqlite3_stmt *st, const char *sql) {
    sqlv__run *r = x->r;
    int n = sqlite3_column_count(st);
    if (!x->described) {
        x->oids = base_calloc((size_t)n + 1, sizeof(*x->oids));
        x->cells = base_calloc((size_t)n + 1, sizeof(*x->cells));
        x->offs = base_calloc((size_t)n + 1, sizeof(*x->offs));
        if (x->oids == NULL || x->cells == NULL || x->offs == NULL ||
            sqlv__describe(r, st, sql, strlen(sql), true, x->oids) != 0)
            return fail(x, "53200", "out of memory");
        x->described = true;
    }
    base_buf_reset(&x->row);
    for (int i = 0; i < n; i++) {
        bool is_null;
        x->offs[i] = x->row.len;
        if (sqlv__format_value(st, i, x->oids[i], &x->row, &is_null) != 0)
            return fail(x, "53200", "out of memory");
        x->cells[i].data = is_null ? (const char *)NULL : "";
        x->cells[i].len = x->row.len - x->offs[i];
    }
    for (int i = 0; i < n; i++)
        if (x->cells[i].data && x->row.data) x->cells[i].data = (char *)x->row.data + x->offs[i];
    if (r->sink_rc == 0 && r->sink->data_row)
        r->sink_rc = r->sink->data_row(r->sink->ctx, n, x->cells);
    if (r->sink_rc != 0) return fail(x, "57014", "client gone");
    return STMT_OK;
}

/* No row came back: the RowDescription alone (from a statement not run). */
static int describe_empty(exec *x, sqlite3_stmt *st, const char *sql) {
    if (x->described) return STMT_OK;
    int n = sqlite3_column_count(st);
    x->oids = base_calloc((size_t)n + 1, sizeof(*x->oids));
    if (x->oids == NULL || sqlv__describe(x->r, st, sql, strlen(sql), false, x->oids) != 0)
        return fail(x, "53200", "out of memory");
    x->described = true;
    return STMT_OK;
}

/* "SELECT <list> FROM <spec> WHERE "_meridian_key" = :mk" (sqlite3_mprintf). */
static char *readback_sql(const dml *d) {
    int ll = (int)(d->returning.end - d->returning.start);
    if (d->kind == 'I')
        return sqlite3_mprintf("SELECT %.*s FROM \"%w\" WHERE \"%w\" = :mk", ll,
                               d->returning.start, d->table, SQLV__KEY_COLUMN);
    return sqlite3_mprintf("SELECT %.*s FROM %.*s WHERE \"%w\" = :mk", ll, d->returning.start,
                           (int)(d->spec.end - d->spec.start), d->spec.start, SQLV__KEY_COLUMN);
}

/* Read each captured row back and send it. */
static int send_captured(exec *x, const dml *d) {
    char *sql = readback_sql(d); /* owner: this function */
    sqlite3_stmt *st = NULL;
    int result = STMT_FAILED;
    if (sql == NULL) return fail(x, "53200", "out of memory");
    if (prepare(x, sql, &st) != STMT_OK) goto cleanup;
    size_t off = 0, n;
    const uint8_t *k;
    while (capture_next(&x->cap, &off, &k, &n)) {
        sqlite3_reset(st);
        bind_key(st, k, n);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            if (send_row(x, st, sql) != STMT_OK) goto cleanup;
            rc = sqlite3_step(st);
        }
        if (rc != SQLITE_DONE) {
            fail_sqlite(x, rc);
            goto cleanup;
        }
    }
    result = describe_empty(x, st, sql);
cleanup:
    sqlite3_finalize(st);
    sqlite3_free(sql);
    return result;
}

static int column_of(const sqlv__table *t, const char *name) {
    for (int i = 0; i < t->ncols; i++)
        if (strcasecmp(t->cols[i].name, name) == 0) return i;
    return -1;
}

/* Parse a list of column names into idx (n of them). */
static int column_list(exec *x, const sqlv__table *t, span sp, int *idx, int *n, int max) {
    const char *p = sp.start;
    char name[NAME_BYTES], msg[300];
    *n = 0;
    for (;;) {
        sqlv__token tk = sqlv__lex_next(&p, sp.end);
        if (*n == max || sqlv__tok_ident(&tk, name, sizeof(name)) != 0)
            return fail(x, "42601", "syntax error in a column list");
        int c = column_of(t, name);
        if (c < 0) {
            snprintf(msg, sizeof(msg), "column \"%.100s\" of relation \"%.100s\" does not exist",
                     name, t->name);
            return fail(x, "42703", msg);
        }
        idx[(*n)++] = c;
        tk = sqlv__lex_next(&p, sp.end);
        if (is_end(&tk)) return STMT_OK;
        if (!sqlv__tok_punct(&tk, ',')) return fail(x, "42601", "syntax error in a column list");
    }
}

typedef struct arbiter {
    int ncols;
    const int *cols; /* table columns; borrowed from the descriptor */
} arbiter;

static bool same_set(const int *a, int na, const int *b, int nb) {
    if (na != nb) return false;
    for (int i = 0; i < na; i++) {
        bool found = false;
        for (int j = 0; j < nb && !found; j++)
            found = a[i] == b[j];
        if (!found) return false;
    }
    return true;
}

/* The arbiters of the conflict clause (PostgreSQL's inference). */
static int arbiters_of(exec *x, const dml *d, const sqlv__table *t, arbiter *arb, int *narb) {
    char msg[300];
    *narb = 0;
    if (d->target.start) {
        int cols[SQLV__INDEX_COLUMNS_MAX], n;
        if (column_list(x, t, d->target, cols, &n, SQLV__INDEX_COLUMNS_MAX) != STMT_OK)
            return STMT_FAILED;
        if (t->npk > 0 && same_set(cols, n, t->pk, t->npk))
            arb[(*narb)++] = (arbiter){t->npk, t->pk};
        for (int i = 0; i < t->nindexes; i++)
            if (t->indexes[i].unique &&
                same_set(cols, n, t->indexes[i].cols, t->indexes[i].ncols))
                arb[(*narb)++] = (arbiter){t->indexes[i].ncols, t->indexes[i].cols};
        if (*narb == 0)
            return fail(x, "42P10", "there is no unique or exclusion constraint matching the ON "
                                    "CONFLICT specification");
        return STMT_OK;
    }
    if (d->constraint[0]) {
        char pkey[NAME_BYTES + 8];
        snprintf(pkey, sizeof(pkey), "%s_pkey", t->name);
        if (t->npk > 0 && strcasecmp(pkey, d->constraint) == 0) {
            arb[(*narb)++] = (arbiter){t->npk, t->pk};
            return STMT_OK;
        }
        const sqlv__index *ix = sqlv__table_index_named(t, d->constraint);
        if (ix && ix->unique && ix->constraint) {
            arb[(*narb)++] = (arbiter){ix->ncols, ix->cols};
            return STMT_OK;
        }
        snprintf(msg, sizeof(msg), "constraint \"%.100s\" for table \"%.100s\" does not exist",
                 d->constraint, t->name);
        return fail(x, "42704", msg);
    }
    if (d->do_update)
        return fail(x, "42601",
                    "ON CONFLICT DO UPDATE requires inference specification or constraint name");
    if (t->npk > 0) arb[(*narb)++] = (arbiter){t->npk, t->pk};
    for (int i = 0; i < t->nindexes; i++)
        if (t->indexes[i].unique)
            arb[(*narb)++] = (arbiter){t->indexes[i].ncols, t->indexes[i].cols};
    return STMT_OK;
}

/* The SET / WHERE text with excluded.c made :mx<column of c>. */
static int rewrite_excluded(exec *x, const sqlv__table *t, span sp, base_buf *out) {
    const char *p = sp.start, *last = sp.start;
    char name[NAME_BYTES], msg[300];
    for (;;) {
        sqlv__token tk = sqlv__lex_next(&p, sp.end);
        if (is_end(&tk)) break;
        if (!(tk.kind == SQLV__TOK_WORD && sqlv__tok_is(&tk, "EXCLUDED"))) continue;
        const char *q = p;
        sqlv__token dot = sqlv__lex_next(&q, sp.end);
        if (!sqlv__tok_punct(&dot, '.')) continue;
        sqlv__token col = sqlv__lex_next(&q, sp.end);
        if (sqlv__tok_ident(&col, name, sizeof(name)) != 0)
            return fail(x, "42601", "syntax error after excluded.");
        int c = column_of(t, name);
        if (c < 0) {
            snprintf(msg, sizeof(msg), "column excluded.%.100s does not exist", name);
            return fail(x, "42703", msg);
        }
        if (base_buf_append(out, last, (size_t)(tk.start - last)) != 0 ||
            base_buf_printf(out, ":mx%d", c) != 0)
            return fail(x, "53200", "out of memory");
        p = q;
        last = q;
    }
    if (base_buf_append(out, last, (size_t)(sp.end - last)) != 0 ||
        base_buf_append_byte(out, 0) != 0)
        return fail(x, "53200", "out of memory");
    return STMT_OK;
}

/* The source's rows, read whole (the statement must not see its writes). */
typedef struct source {
    sqlite3_value **v; /* nrows x ncols; owner: this */
    int ncols;
    size_t nrows, cap;
} source;

static void source_free(source *src) {
    for (size_t i = 0; i < src->nrows * (size_t)src->ncols; i++)
        sqlite3_value_free(src->v[i]);
    base_free(src->v);
}

/* ninsert: the target columns; without a column list (explicit false) a
** row may give fewer, the first ones (PostgreSQL). */
static int source_read(exec *x, const dml *d, int ninsert, bool explicit, source *src) {
    char *sql = base_strndup(d->source.start, (size_t)(d->source.end - d->source.start));
    sqlite3_stmt *st = NULL;
    int result = STMT_FAILED, rc;
    if (sql == NULL) return fail(x, "53200", "out of memory");
    const char *p = sql, *e = sql + strlen(sql);
    sqlv__token first = sqlv__lex_next(&p, e);
    if (sqlv__tok_is(&first, "DEFAULT")) {
        fail(x, "0A000", "DEFAULT VALUES with ON CONFLICT or RETURNING is not supported");
        goto cleanup;
    }
    if (prepare(x, sql, &st) != STMT_OK) goto cleanup;
    src->ncols = sqlite3_column_count(st);
    if (src->ncols > ninsert) {
        fail(x, "42601", "INSERT has more expressions than target columns");
        goto cleanup;
    }
    if (src->ncols < ninsert && explicit) {
        fail(x, "42601", "INSERT has more target columns than expressions");
        goto cleanup;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (src->nrows >= SQLV__CAPTURE_ROWS_MAX) {
            fail(x, "54000", "too many rows in one INSERT ... ON CONFLICT");
            goto cleanup;
        }
        if (src->nrows == src->cap) {
            size_t cap = src->cap ? src->cap * 2 : 16;
            sqlite3_value **v = base_realloc(src->v, cap * (size_t)src->ncols * sizeof(*v));
            if (v == NULL) {
                fail(x, "53200", "out of memory");
                goto cleanup;
            }
            src->v = v;
            src->cap = cap;
        }
        for (int i = 0; i < src->ncols; i++) {
            sqlite3_value *dup = sqlite3_value_dup(sqlite3_column_value(st, i));
            src->v[src->nrows * (size_t)src->ncols + (size_t)i] = dup;
            if (dup == NULL) {
                for (int j = i + 1; j < src->ncols; j++)
                    src->v[src->nrows * (size_t)src->ncols + (size_t)j] = NULL;
                src->nrows++;
                fail(x, "53200", "out of memory");
                goto cleanup;
            }
        }
        src->nrows++;
    }
    if (rc != SQLITE_DONE) {
        fail_sqlite(x, rc);
        goto cleanup;
    }
    result = STMT_OK;
cleanup:
    sqlite3_finalize(st);
    base_free(sql);
    return result;
}

/* The upsert proper; *count the rows inserted or updated. */
static int run_upsert(exec *x, const dml *d, const sqlv__table *t, uint64_t *count) {
    sqlv_session *s = x->s;
    int *icols = base_calloc((size_t)t->ncols + 1, sizeof(*icols)); /* owner: this */
    sqlv__cell *row = base_calloc((size_t)t->ncols + 1, sizeof(*row)); /* by table column */
    arbiter arb[UPSERT_ARBITERS_MAX];
    sqlite3_stmt *look[UPSERT_ARBITERS_MAX] = {0};
    sqlite3_stmt *ins = NULL, *upd = NULL, *chk = NULL;
    sqlv__check *checks = NULL; /* the table's CHECKs; owner: this */
    int nchecks = 0;
    source src = {0};
    base_buf sql = {0}, scratch = {0}, set = {0}, where = {0};
    char state[6], msg[300];
    int narb = 0, ninsert = 0, result = STMT_FAILED;
    if (icols == NULL || row == NULL) {
        fail(x, "53200", "out of memory");
        goto cleanup;
    }
    if (d->cols.start) {
        if (column_list(x, t, d->cols, icols, &ninsert, t->ncols) != STMT_OK) goto cleanup;
    } else {
        for (int i = 0; i < t->ncols; i++)
            icols[ninsert++] = i;
    }
    if (arbiters_of(x, d, t, arb, &narb) != STMT_OK) goto cleanup;
    if (source_read(x, d, ninsert, d->cols.start != NULL, &src) != STMT_OK) goto cleanup;
    if (src.ncols < ninsert) ninsert = src.ncols;
    /* the statements */
    for (int a = 0; a < narb; a++) {
        base_buf_reset(&sql);
        if (base_buf_printf(&sql, "SELECT \"%s\" FROM \"%s\" WHERE ", SQLV__KEY_COLUMN,
                            t->name) != 0)
            goto nomem;
        for (int k = 0; k < arb[a].ncols; k++) {
            char *q = sqlite3_mprintf("%s\"%w\" = ?%d", k ? " AND " : "",
                                      t->cols[arb[a].cols[k]].name, k + 1);
            int arc = q ? base_buf_printf(&sql, "%s", q) : -1;
            sqlite3_free(q);
            if (arc != 0 || base_buf_append_byte(&sql, 0) != 0) goto nomem;
            sql.len--;
        }
        if (base_buf_append_byte(&sql, 0) != 0) goto nomem;
        if (prepare(x, (const char *)sql.data, &look[a]) != STMT_OK) goto cleanup;
    }
    base_buf_reset(&sql);
    if (base_buf_printf(&sql, "INSERT INTO \"%s\" (", t->name) != 0) goto nomem;
    for (int i = 0; i < ninsert; i++) {
        char *q = sqlite3_mprintf("%s\"%w\"", i ? ", " : "", t->cols[icols[i]].name);
        int arc = q ? base_buf_printf(&sql, "%s", q) : -1;
        sqlite3_free(q);
        if (arc != 0) goto nomem;
    }
    if (base_buf_printf(&sql, ") VALUES (") != 0) goto nomem;
    for (int i = 0; i < ninsert; i++)
        if (base_buf_printf(&sql, "%s?%d", i ? ", " : "", i + 1) != 0) goto nomem;
    if (base_buf_printf(&sql, ")") != 0 || base_buf_append_byte(&sql, 0) != 0) goto nomem;
    if (prepare(x, (const char *)sql.data, &ins) != STMT_OK) goto cleanup;
    if (d->do_update) {
        if (rewrite_excluded(x, t, d->set, &set) != STMT_OK) goto cleanup;
        if (d->where.start && rewrite_excluded(x, t, d->where, &where) != STMT_OK) goto cleanup;
        char *q = sqlite3_mprintf("UPDATE \"%w\" SET %s WHERE \"%w\" = :mk%s%s%s", t->name,
                                  (const char *)set.data, SQLV__KEY_COLUMN,
                                  d->where.start ? " AND (" : "",
                                  d->where.start ? (const char *)where.data : "",
                                  d->where.start ? ")" : "");
        if (q == NULL) goto nomem;
        int prc = prepare(x, q, &upd);
        sqlite3_free(q);
        if (prc != STMT_OK) goto cleanup;
    }
    /* the CHECKs, for a row that conflicts (the others go through INSERT's) */
    if (sqlv__checks_of(t, &checks, &nchecks) != 0) goto nomem;
    if (nchecks > 0) {
        char *q = sqlv__checks_select(t, checks, nchecks);
        if (q == NULL) goto nomem;
        int prc = prepare(x, q, &chk);
        sqlite3_free(q);
        if (prc != STMT_OK) goto cleanup;
    }
    /* per source row */
    for (size_t rn = 0; rn < src.nrows; rn++) {
        sqlite3_value **v = src.v + rn * (size_t)src.ncols;
        size_t need = 64;
        for (int i = 0; i < ninsert; i++)
            need += 64 + (size_t)sqlite3_value_bytes(v[i]);
        base_buf_reset(&scratch);
        if (base_buf_reserve(&scratch, need) != 0) goto nomem;
        for (int i = 0; i < t->ncols; i++)
            row[i] = (sqlv__cell){.type = SQLITE_NULL};
        /* assigned as the column will store it: lookups and excluded see
        ** the stored values (PostgreSQL's excluded is the row to insert) */
        for (int i = 0; i < ninsert; i++) {
            const sqlv__column *col = &t->cols[icols[i]];
            int arc = sqlv__assign(v[i], col->cls, col->decl_type[0] ? col->decl_type : "text",
                                   &scratch, &row[icols[i]], state, msg, sizeof(msg));
            if (arc < 0) goto nomem;
            if (arc > 0) {
                fail(x, state, msg);
                goto cleanup;
            }
        }
        /* NOT NULL holds for the proposed row, conflict or not: PostgreSQL
        ** checks it before it looks for a conflict (DO NOTHING included) */
        for (int i = 0; i < t->ncols; i++) {
            if (!t->cols[i].not_null || row[i].type != SQLITE_NULL) continue;
            snprintf(msg, sizeof(msg),
                     "null value in column \"%.100s\" of relation \"%.100s\" violates not-null "
                     "constraint",
                     t->cols[i].name, t->name);
            fail(x, "23502", msg);
            goto cleanup;
        }
        const void *hit = NULL;
        size_t hit_len = 0;
        int a;
        for (a = 0; a < narb; a++) {
            bool has_null = false;
            for (int k = 0; k < arb[a].ncols; k++)
                has_null = has_null || row[arb[a].cols[k]].type == SQLITE_NULL;
            if (has_null) continue; /* NULLs never conflict */
            sqlite3_reset(look[a]);
            for (int k = 0; k < arb[a].ncols; k++)
                bind_cell(look[a], k + 1, &row[arb[a].cols[k]]);
            s->err_sqlstate[0] = 0;
            int rc = sqlite3_step(look[a]);
            if (rc == SQLITE_ROW) {
                hit = sqlite3_column_blob(look[a], 0);
                hit_len = (size_t)sqlite3_column_bytes(look[a], 0);
                break;
            }
            if (rc != SQLITE_DONE) {
                fail_sqlite(x, rc);
                goto cleanup;
            }
        }
        if (hit == NULL) {
            sqlite3_reset(ins);
            for (int i = 0; i < ninsert; i++)
                bind_cell(ins, i + 1, &row[icols[i]]);
            if (step_write(x, ins) != STMT_OK) goto cleanup;
            (*count)++;
            continue;
        }
        if (chk != NULL) {
            /* a CHECK holds for the proposed row too, as PostgreSQL checks
            ** it before it looks for a conflict */
            sqlite3_reset(chk);
            sqlite3_clear_bindings(chk);
            int crc = sqlv__checks_bind(chk, row, t->ncols);
            if (crc == SQLITE_OK) crc = sqlite3_step(chk);
            if (crc != SQLITE_ROW) {
                fail_sqlite(x, crc);
                goto cleanup;
            }
            for (int k = 0; k < nchecks; k++) {
                if (sqlite3_column_int(chk, k) != 0) continue;
                snprintf(msg, sizeof(msg),
                         "new row for relation \"%.100s\" violates check constraint \"%.100s\"",
                         t->name, checks[k].name);
                fail(x, "23514", msg);
                goto cleanup;
            }
            sqlite3_reset(chk);
        }
        if (!d->do_update) {
            sqlite3_reset(look[a]);
            continue;
        }
        if (capture_has(&x->cap, hit, hit_len)) {
            fail(x, "21000", "ON CONFLICT DO UPDATE command cannot affect row a second time");
            goto cleanup;
        }
        sqlite3_reset(upd);
        bind_key(upd, hit, hit_len);
        sqlite3_reset(look[a]); /* hit is no longer needed */
        for (int c = 0; c < t->ncols; c++) {
            char pn[16];
            snprintf(pn, sizeof(pn), ":mx%d", c);
            int pi = sqlite3_bind_parameter_index(upd, pn);
            if (pi > 0) bind_cell(upd, pi, &row[c]);
        }
        uint64_t before = x->cap.n;
        if (step_write(x, upd) != STMT_OK) goto cleanup;
        if (x->cap.n > before) (*count)++;
    }
    result = STMT_OK;
    goto cleanup;
nomem:
    fail(x, "53200", "out of memory");
cleanup:
    for (int a = 0; a < narb; a++)
        sqlite3_finalize(look[a]);
    sqlite3_finalize(ins);
    sqlite3_finalize(upd);
    sqlite3_finalize(chk);
    sqlv__checks_free(checks, nchecks);
    source_free(&src);
    base_buf_free(&sql);
    base_buf_free(&scratch);
    base_buf_free(&set);
    base_buf_free(&where);
    base_free(icols);
    base_free(row);
    return result;
}

/* DELETE ... RETURNING: keys first, then per key: read back, send, delete. */
static int run_delete(exec *x, const dml *d, uint64_t *count) {
    char *keys_sql = sqlite3_mprintf("SELECT \"%w\" FROM %.*s", SQLV__KEY_COLUMN,
                                     (int)(d->from_rest.end - d->from_rest.start),
                                     d->from_rest.start);
    char *read_sql = readback_sql(d);
    char *del_sql = sqlite3_mprintf("DELETE FROM %.*s WHERE \"%w\" = :mk",
                                    (int)(d->spec.end - d->spec.start), d->spec.start,
                                    SQLV__KEY_COLUMN);
    sqlite3_stmt *keys = NULL, *rd = NULL, *del = NULL;
    int result = STMT_FAILED, rc;
    if (keys_sql == NULL || read_sql == NULL || del_sql == NULL) {
        fail(x, "53200", "out of memory");
        goto cleanup;
    }
    if (prepare(x, keys_sql, &keys) != STMT_OK || prepare(x, read_sql, &rd) != STMT_OK ||
        prepare(x, del_sql, &del) != STMT_OK)
        goto cleanup;
    x->s->err_sqlstate[0] = 0;
    while ((rc = sqlite3_step(keys)) == SQLITE_ROW) {
        if (sqlite3_column_type(keys, 0) != SQLITE_BLOB) continue;
        if (sqlv__capture_add(&x->cap, sqlite3_column_blob(keys, 0),
                              (size_t)sqlite3_column_bytes(keys, 0)) != 0) {
            fail(x, "54000", "too many rows in one DELETE ... RETURNING");
            goto cleanup;
        }
    }
    if (rc != SQLITE_DONE) {
        fail_sqlite(x, rc);
        goto cleanup;
    }
    size_t off = 0, n;
    const uint8_t *k;
    while (capture_next(&x->cap, &off, &k, &n)) {
        sqlite3_reset(rd);
        bind_key(rd, k, n);
        x->s->err_sqlstate[0] = 0;
        rc = sqlite3_step(rd);
        if (rc == SQLITE_ROW) {
            if (send_row(x, rd, read_sql) != STMT_OK) goto cleanup;
            rc = sqlite3_step(rd);
        }
        if (rc != SQLITE_DONE) {
            fail_sqlite(x, rc);
            goto cleanup;
        }
        sqlite3_reset(rd);
        sqlite3_reset(del);
        bind_key(del, k, n);
        x->s->err_sqlstate[0] = 0;
        rc = sqlite3_step(del);
        if (rc != SQLITE_DONE) {
            fail_sqlite(x, rc);
            goto cleanup;
        }
        *count += (uint64_t)sqlite3_changes64(x->s->db);
    }
    result = describe_empty(x, rd, read_sql);
cleanup:
    sqlite3_finalize(keys);
    sqlite3_finalize(rd);
    sqlite3_finalize(del);
    sqlite3_free(keys_sql);
    sqlite3_free(read_sql);
    sqlite3_free(del_sql);
    return result;
}

/* INSERT/UPDATE without ON CONFLICT: the statement without RETURNING. */
static int run_plain(exec *x, const dml *d, uint64_t *count) {
    char *sql = base_strndup(d->body.start, (size_t)(d->body.end - d->body.start));
    sqlite3_stmt *st = NULL;
    int result = STMT_FAILED;
    if (sql == NULL) return fail(x, "53200", "out of memory");
    if (prepare(x, sql, &st) == STMT_OK && step_write(x, st) == STMT_OK) {
        *count = (uint64_t)sqlite3_changes64(x->s->db);
        result = STMT_OK;
    }
    sqlite3_finalize(st);
    base_free(sql);
    return result;
}

static int dml_run(sqlv__run *r, const char *text, size_t len, sqlite3_value **params,
                   int nparams) {
    sqlv_session *s = r->s;
    exec x = {.r = r, .s = s, .params = params, .nparams = nparams};
    dml d;
    char state[6], msg[300], tag[64];
    sqlv__table *t = NULL; /* owner: this function */
    uint64_t count = 0;
    txn_error err = {{0}, {0}};
    int result = STMT_FAILED;
    if (parse(text, len, &d, state, msg, sizeof(msg)) != 0) return sqlv__fail(r, state, msg);
    if (d.returning.start &&
        sqlv__lex_skip_space(d.returning.start, d.returning.end) == d.returning.end)
        return sqlv__fail(r, "42601", "syntax error at end of input");
    /* the statement's transaction: the block's, or its own */
    if (s->kv == NULL) {
        int brc = sqlv__session_begin(s, false, &err);
        if (brc != TXN_OK) return sqlv__fail_txn(r, brc, &err);
    }
    x.own = s->status == 'I';
    if (x.own) s->status = 'T';
    if (txn_savepoint(s->kv, &x.sp) != TXN_OK) {
        sqlv__fail(r, "53200", "out of memory");
        goto done;
    }
    x.have_sp = true;
    uint32_t id = sqlv__session_find_id(s, d.table);
    int trc = id ? sqlv__session_table(s, id, &t) : 1;
    if (trc < 0) {
        fail(&x, "53200", "out of memory");
        goto done;
    }
    if (trc > 0) {
        snprintf(msg, sizeof(msg), "relation \"%.200s\" does not exist", d.table);
        fail(&x, "42P01", msg);
        goto done;
    }
    x.cap.table_id = t->id;
    int rc;
    if (d.kind == 'D') {
        rc = run_delete(&x, &d, &count);
    } else {
        rc = d.on_conflict ? run_upsert(&x, &d, t, &count) : run_plain(&x, &d, &count);
        if (rc == STMT_OK && d.returning.start) rc = send_captured(&x, &d);
    }
    if (rc != STMT_OK) goto done;
    if (d.kind == 'I')
        snprintf(tag, sizeof(tag), "INSERT 0 %llu", (unsigned long long)count);
    else
        snprintf(tag, sizeof(tag), "%s %llu", d.kind == 'U' ? "UPDATE" : "DELETE",
                 (unsigned long long)count);
    txn_release(s->kv, x.sp);
    x.have_sp = false;
    if (x.own && sqlv__commit_quiet(r) != 0) {
        x.own = false; /* committed or rolled back: the error went out */
        goto done;
    }
    x.own = false;
    if (r->sink_rc == 0 && r->sink->command_complete)
        r->sink_rc = r->sink->command_complete(r->sink->ctx, tag);
    result = STMT_OK;
done:
    s->capture = NULL;
    if (result != STMT_OK) {
        if (x.have_sp && s->kv) txn_rollback_to(s->kv, x.sp);
        if (x.own) {
            if (s->kv) txn_rollback(s->kv);
            s->kv = NULL;
            s->status = 'I';
        }
    }
    sqlv__table_free(t);
    base_buf_free(&x.cap.keys);
    base_free(x.oids);
    base_free(x.cells);
    base_free(x.offs);
    base_buf_free(&x.row);
    return result;
}

int sqlv__dml_ext_stmt(sqlv__run *r, const char *text, size_t len) {
    return dml_run(r, text, len, NULL, 0);
}

/* ---- the extended protocol -------------------------------------------------------------
** Parse prepares a parameter carrier, "SELECT $1, ..., $n", in place of
** the statement: Bind binds the client's values to it as to any statement.
** The portal's first Describe or Execute steps the carrier once and runs
** the statement with its row as the parameters; the output (RowDescription,
** rows, tag) is kept in the portal (sqlv__dml_out) and sent by Describe and
** Execute. */

/* The highest $n of text. */
static long max_param(const char *text, size_t len) {
    const char *p = text, *end = text + len;
    long max = 0;
    for (;;) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (is_end(&t)) return max;
        if (t.kind != SQLV__TOK_OTHER || t.len < 2 || t.start[0] != '$') continue;
        long k = 0;
        size_t i;
        for (i = 1; i < t.len && t.start[i] >= '0' && t.start[i] <= '9' && k <= SQLV_PARAMS_MAX;
             i++)
            k = k * 10 + (t.start[i] - '0');
        if (i == t.len && k > max) max = k;
    }
}

int sqlv__dml_ext_carrier(const char *text, size_t len, char **out) {
    long n = max_param(text, len);
    base_buf b = {0};
    *out = NULL;
    if (n > SQLV_PARAMS_MAX) n = SQLV_PARAMS_MAX;
    if (base_buf_printf(&b, "SELECT ") != 0) goto nomem;
    if (n == 0 && base_buf_printf(&b, "NULL") != 0) goto nomem;
    for (long k = 1; k <= n; k++)
        if (base_buf_printf(&b, "%s$%ld", k > 1 ? ", " : "", k) != 0) goto nomem;
    if (base_buf_append_byte(&b, 0) != 0) goto nomem;
    *out = (char *)b.data;
    return 0;
nomem:
    base_buf_free(&b);
    return -1;
}

int sqlv__dml_ext_describe(sqlv__run *r, const char *text, size_t len) {
    dml d;
    char state[6], msg[300];
    if (parse(text, len, &d, state, msg, sizeof(msg)) != 0) return sqlv__emit_error(r, state, msg);
    if (d.returning.start == NULL) {
        if (r->sink_rc == 0 && r->sink->no_data) r->sink_rc = r->sink->no_data(r->sink->ctx);
        return STMT_OK;
    }
    char *sql = readback_sql(&d); /* owner: this function */
    sqlite3_stmt *st = NULL;
    if (sql == NULL) return sqlv__emit_error(r, "53200", "out of memory");
    int rc = sqlv__prepare(r->s, sql, strlen(sql), &st, NULL);
    int result = STMT_FAILED;
    if (rc != SQLITE_OK || st == NULL) {
        sqlv__map_error(r->s, rc == SQLITE_OK ? SQLITE_ERROR : rc, state, msg, sizeof(msg));
        sqlv__emit_error(r, state, msg);
    } else {
        int n = sqlite3_column_count(st);
        uint32_t *oids = base_calloc((size_t)n + 1, sizeof(*oids));
        if (oids == NULL || sqlv__describe(r, st, sql, strlen(sql), false, oids) != 0)
            sqlv__emit_error(r, "53200", "out of memory");
        else
            result = STMT_OK;
        base_free(oids);
    }
    sqlite3_finalize(st);
    sqlite3_free(sql);
    return result;
}

struct sqlv__dml_out {
    bool described;
    int ncols;
    sqlv_column *cols; /* names owned by names */
    char **names;      /* ncols; owner: this */
    base_buf rows;     /* per row, per column: u32 length (UINT32_MAX: NULL) | bytes */
    uint64_t nrows;
    char tag[64];
};

void sqlv__dml_out_free(sqlv__dml_out *o) {
    if (o == NULL) return;
    for (int i = 0; i < o->ncols; i++)
        base_free(o->names ? o->names[i] : NULL);
    base_free(o->names);
    base_free(o->cols);
    base_buf_free(&o->rows);
    base_free(o);
}

/* The portal run's sink: output into o, errors and notices to the client. */
typedef struct out_ctx {
    sqlv__dml_out *o;
    const sqlv_sink *sink; /* the client's */
} out_ctx;

static int out_desc(void *ctx, int n, const sqlv_column *cols) {
    sqlv__dml_out *o = ((out_ctx *)ctx)->o;
    if (o->described) return 0;
    o->cols = base_calloc((size_t)n + 1, sizeof(*o->cols));
    o->names = base_calloc((size_t)n + 1, sizeof(*o->names));
    if (o->cols == NULL || o->names == NULL) return -1;
    o->ncols = n;
    for (int i = 0; i < n; i++) {
        o->cols[i] = cols[i];
        o->names[i] = base_strdup(cols[i].name ? cols[i].name : "?column?");
        if (o->names[i] == NULL) return -1;
        o->cols[i].name = o->names[i];
        o->cols[i].format = SQLV_FORMAT_TEXT;
    }
    o->described = true;
    return 0;
}

static int out_row(void *ctx, int n, const sqlv_cell *cells) {
    sqlv__dml_out *o = ((out_ctx *)ctx)->o;
    for (int i = 0; i < n; i++) {
        uint32_t l = cells[i].data ? (uint32_t)cells[i].len : UINT32_MAX;
        uint8_t n4[4] = {(uint8_t)(l >> 24), (uint8_t)(l >> 16), (uint8_t)(l >> 8), (uint8_t)l};
        if (base_buf_append(&o->rows, n4, 4) != 0) return -1;
        if (cells[i].data && base_buf_append(&o->rows, cells[i].data, cells[i].len) != 0)
            return -1;
    }
    o->nrows++;
    return 0;
}

static int out_tag(void *ctx, const char *tag) {
    base_strlcpy(((out_ctx *)ctx)->o->tag, tag, sizeof(((out_ctx *)ctx)->o->tag));
    return 0;
}

static int out_error(void *ctx, const char *state, const char *msg) {
    const sqlv_sink *k = ((out_ctx *)ctx)->sink;
    return k->error ? k->error(k->ctx, state, msg) : 0;
}

static int out_notice(void *ctx, const char *msg) {
    const sqlv_sink *k = ((out_ctx *)ctx)->sink;
    return k->notice ? k->notice(k->ctx, msg) : 0;
}

int sqlv__dml_ext_portal_run(sqlv__run *r, const char *text, size_t len, sqlite3_stmt *carrier,
                             sqlv__dml_out **out) {
    sqlv__dml_out *o = base_calloc(1, sizeof(*o)); /* owner: *out once run */
    sqlite3_value **params = NULL;                 /* owner: this function */
    int n = 0, result = STMT_FAILED;
    *out = NULL;
    if (o == NULL) return sqlv__fail(r, "53200", "out of memory");
    int rc = sqlite3_step(carrier);
    if (rc != SQLITE_ROW) {
        char state[6], msg[300];
        sqlv__map_error(r->s, rc, state, msg, sizeof(msg));
        sqlv__fail(r, state, msg);
        goto cleanup;
    }
    n = sqlite3_column_count(carrier);
    params = base_calloc((size_t)n + 1, sizeof(*params));
    if (params == NULL) {
        sqlv__fail(r, "53200", "out of memory");
        goto cleanup;
    }
    for (int i = 0; i < n; i++)
        if ((params[i] = sqlite3_value_dup(sqlite3_column_value(carrier, i))) == NULL) {
            sqlv__fail(r, "53200", "out of memory");
            goto cleanup;
        }
    sqlite3_reset(carrier);
    out_ctx oc = {o, r->sink};
    sqlv_sink buffer = {.ctx = &oc,
                        .row_description = out_desc,
                        .data_row = out_row,
                        .command_complete = out_tag,
                        .error = out_error,
                        .notice = out_notice};
    sqlv__run q = {r->s, &buffer, 0};
    int drc = dml_run(&q, text, len, params, n);
    r->sink_rc = q.sink_rc;
    if (drc != STMT_OK) goto cleanup;
    if (q.sink_rc != 0) {
        sqlv__fail(r, "53200", "out of memory");
        goto cleanup;
    }
    *out = o;
    o = NULL;
    result = STMT_OK;
cleanup:
    sqlite3_reset(carrier);
    for (int i = 0; params && i < n; i++)
        sqlite3_value_free(params[i]);
    base_free(params);
    sqlv__dml_out_free(o);
    return result;
}

int sqlv__dml_out_describe(sqlv__run *r, const sqlv__dml_out *o) {
    const sqlv_sink *k = r->sink;
    if (r->sink_rc != 0) return STMT_OK;
    if (o->described) {
        if (k->row_description) r->sink_rc = k->row_description(k->ctx, o->ncols, o->cols);
    } else if (k->no_data) {
        r->sink_rc = k->no_data(k->ctx);
    }
    return STMT_OK;
}

int sqlv__dml_out_send(sqlv__run *r, const sqlv__dml_out *o, char *tag, size_t tag_size) {
    const sqlv_sink *k = r->sink;
    base_strlcpy(tag, o->tag, tag_size);
    sqlv_cell *cells = base_calloc((size_t)o->ncols + 1, sizeof(*cells)); /* owner: this */
    if (cells == NULL) return sqlv__fail(r, "53200", "out of memory");
    size_t off = 0;
    for (uint64_t row = 0; row < o->nrows && r->sink_rc == 0; row++) {
        for (int i = 0; i < o->ncols; i++) {
            const uint8_t *p = o->rows.data + off;
            uint32_t l = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            off += 4;
            cells[i].data = l == UINT32_MAX ? NULL : (const char *)o->rows.data + off;
            cells[i].len = l == UINT32_MAX ? 0 : l;
            if (l != UINT32_MAX) off += l;
        }
        if (k->data_row) r->sink_rc = k->data_row(k->ctx, o->ncols, cells);
    }
    base_free(cells);
    if (r->sink_rc == 0 && k->command_complete) r->sink_rc = k->command_complete(k->ctx, o->tag);
    return STMT_OK;
}
