/*
** COPY t [(cols)] FROM STDIN: the session side of PostgreSQL's copy-in
** sub-protocol (sql.h). Rows in text format (tab-separated, \N for NULL,
** backslash escapes) or CSV (quotes, HEADER) are inserted through one
** prepared INSERT, each value bound as text so the table's column classes
** convert it as for any INSERT.
**
** COPY t [(cols)] TO STDOUT and COPY (query) TO STDOUT: the SELECT runs as
** any statement does (session.c: its own implicit transaction or the
** block's, retries, AS OF SYSTEM TIME) into a sink that turns each row into
** one line of the copy format and hands it to the copy-out callbacks as
** one CopyData: rows stream, nothing holds the whole result.
**
** Invariants:
**   - s->copy != NULL exactly while the session is in copy-in mode; the
**     INSERT statement and the transaction (s->kv) live until done, fail
**     or abort.
**   - outside a block the copy owns its transactions (status 'T' while
**     copying, c->own). With copy_from_atomic_enabled it is one, committed
**     at done or rolled back. Otherwise (c->batched, the default) a batch
**     of at most SQLV__COPY_BATCH_ROWS_MAX rows or SQLV__COPY_BATCH_BYTES_MAX
**     bytes of lines is one transaction, committed when it is full and at
**     done; s->kv is NULL between a commit and the next row. rows -
**     committed rows are in the open batch, and c->batch holds exactly
**     their lines, so a 40001 replays the batch in a fresh transaction (at
**     most SQLV__COPY_BATCH_RETRIES_MAX times). A failure rolls back the
**     open batch only; its error says how many rows stay committed.
**   - inside a block the rows are part of the block's transaction.
**   - a line is at most SQLV__COPY_LINE_BYTES_MAX bytes (54000 beyond);
**     buffered input never exceeds one line.
**   - copy-out: begin (CopyOutResponse) comes before any data and done
**     (CopyDone) after the last row and before "COPY n"; an error after
**     begin ends the copy with the error alone, as PostgreSQL does.
*/
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sql_int.h"
#include "sql_lex.h"

#define SQLV__COPY_LINE_BYTES_MAX (64 * 1024 * 1024)
#define SQLV__COPY_COLUMNS_MAX 1600
/* A batch of a COPY outside a block commits after this many rows or bytes
** of line text, whichever comes first. Small enough that a batch's writes
** usually fit one Raft command (the router's chunk: 10,000 writes, 512 KiB),
** so it commits in one phase and leaves no intents to resolve: measured on
** one node, 10,000-row batches (two-phase, in chunks) loaded at half the
** rate; and a batch's memory and locks stay small. Large enough that a
** commit is a small part of a batch's time (decision 013). */
#define SQLV__COPY_BATCH_ROWS_MAX 4000
#define SQLV__COPY_BATCH_BYTES_MAX (256 * 1024)
/* Replays of one batch after a 40001, then the 40001 ends the copy. */
#define SQLV__COPY_BATCH_RETRIES_MAX 8
/* Before replay n (from 1) a pause of n times this, so a batch does not
** collide again at once with the writer it met. */
#define SQLV__COPY_RETRY_PAUSE_US 1000

int sqlv__copy_batch_rows = 0;

typedef struct sqlv__copy {
    sqlite3_stmt *insert; /* owner: copy */
    int ncols;
    bool csv, header_pending, own, ended; /* ended: saw "\." */
    bool quote_open;                      /* CSV: line holds an open quoted field */
    char delim;
    char null_str[64];
    base_buf line;   /* an incomplete line */
    base_buf fields; /* decoded fields of the current line */
    size_t *offs;    /* ncols+1 field offsets into fields; owner: copy */
    bool *nulls;
    uint64_t rows;      /* rows inserted (committed and in the open batch) */
    bool batched;       /* own, and commits every batch */
    uint64_t committed; /* batched: rows of the batches committed */
    base_buf batch;     /* batched: the open batch's lines, each a uint32_t
                        ** length then its bytes (for a replay) */
    int replays;        /* batched: replays of the open batch so far */
} sqlv__copy;

bool sqlv_session_in_copy(const sqlv_session *s) { return s->copy != NULL; }
void sqlv_session_set_copy_in(sqlv_session *s, sqlv_copy_in_fn fn) { s->copy_in = fn; }
void sqlv_session_set_copy_out(sqlv_session *s, const sqlv_copy_out_fns *fns) {
    if (fns == NULL)
        memset(&s->copy_out, 0, sizeof(s->copy_out));
    else
        s->copy_out = *fns;
}

static void copy_free(sqlv_session *s) {
    sqlv__copy *c = s->copy;
    if (c == NULL) return;
    if (c->insert) sqlite3_finalize(c->insert);
    base_buf_free(&c->line);
    base_buf_free(&c->fields);
    base_buf_free(&c->batch);
    base_free(c->offs);
    base_free(c->nulls);
    base_free(c);
    s->copy = NULL;
}

/* Leave copy-in mode after a failure (the error was sent): an own
** transaction rolls back; a block is already 'E'. */
static void copy_end_failed(sqlv_session *s) {
    bool own = s->copy && s->copy->own;
    copy_free(s);
    if (own) {
        if (s->kv) txn_rollback(s->kv);
        s->kv = NULL;
        s->status = 'I';
    }
}

void sqlv__copy_abort(sqlv_session *s) {
    if (s->copy == NULL) return;
    if (s->status == 'T' && !s->copy->own) s->status = 'E';
    copy_end_failed(s);
}

static int syntax(sqlv__run *r, const char *what) {
    char msg[160];
    snprintf(msg, sizeof(msg), "syntax error in COPY%s%s", what[0] ? ": " : "", what);
    return sqlv__fail(r, "42601", msg);
}

/* A one-character or short string option value. */
static int string_option(sqlv__token *t, char *out, size_t size) {
    if (t->kind != SQLV__TOK_STRING || t->start[0] != '\'' || t->len < 2) return -1;
    size_t o = 0;
    for (size_t i = 1; i + 1 < t->len; i++) {
        if (t->start[i] == '\'' && t->start[i + 1] == '\'') i++;
        if (o + 1 >= size) return -1;
        out[o++] = t->start[i];
    }
    out[o] = 0;
    return 0;
}

/* The options of either direction. */
typedef struct copy_opts {
    bool csv, header, delim_set, null_set;
    char delim;
    char null_str[64];
} copy_opts;

/* A boolean option's optional value (HEADER [true|false]): *on. */
static void bool_value(const char **pp, const char *end, bool *on) {
    const char *save = *pp;
    sqlv__token t = sqlv__lex_next(pp, end);
    *on = true;
    if (sqlv__tok_is(&t, "on") || sqlv__tok_is(&t, "true") || sqlv__tok_is(&t, "1")) return;
    if (sqlv__tok_is(&t, "off") || sqlv__tok_is(&t, "false") || sqlv__tok_is(&t, "0")) {
        *on = false;
        return;
    }
    *pp = save;
}

/* A QUOTE or ESCAPE value: only '"' (the default) is supported. */
static int quote_value(sqlv__token *t) {
    char v[8];
    return string_option(t, v, sizeof(v)) == 0 && strcmp(v, "\"") == 0 ? 0 : -1;
}

/* The options after STDIN/STDOUT: [WITH] (opt [value], ...) or the older
** [WITH] [BINARY] [DELIMITER [AS] 'c'] [NULL [AS] 's'] [CSV [HEADER]
** [QUOTE [AS] '"'] [ESCAPE [AS] '"']] that psql's \copy passes along.
** 0, 1 (syntax), 2 (an unsupported format: msg set). */
static int parse_options(const char **pp, const char *end, copy_opts *o, char *msg, size_t size) {
    const char *p = *pp;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "WITH")) t = sqlv__lex_next(&p, end);
    if (sqlv__tok_punct(&t, '(')) {
        for (int guard = 0; guard < 64; guard++) {
            t = sqlv__lex_next(&p, end);
            if (sqlv__tok_is(&t, "FORMAT")) {
                t = sqlv__lex_next(&p, end);
                if (sqlv__tok_is(&t, "csv")) {
                    o->csv = true;
                } else if (!sqlv__tok_is(&t, "text")) {
                    snprintf(msg, size, "COPY format must be text or csv");
                    return 2;
                }
            } else if (sqlv__tok_is(&t, "HEADER")) {
                bool_value(&p, end, &o->header);
            } else if (sqlv__tok_is(&t, "FREEZE")) {
                bool on;
                bool_value(&p, end, &on);
            } else if (sqlv__tok_is(&t, "DELIMITER")) {
                char v[8];
                t = sqlv__lex_next(&p, end);
                if (string_option(&t, v, sizeof(v)) != 0 || strlen(v) != 1) return 1;
                o->delim = v[0];
                o->delim_set = true;
            } else if (sqlv__tok_is(&t, "NULL")) {
                t = sqlv__lex_next(&p, end);
                if (string_option(&t, o->null_str, sizeof(o->null_str)) != 0) return 1;
                o->null_set = true;
            } else if (sqlv__tok_is(&t, "QUOTE") || sqlv__tok_is(&t, "ESCAPE")) {
                t = sqlv__lex_next(&p, end);
                if (quote_value(&t) != 0) {
                    snprintf(msg, size, "COPY QUOTE and ESCAPE other than '\"' are not supported");
                    return 2;
                }
            } else if (sqlv__tok_is(&t, "ENCODING")) {
                char v[32];
                t = sqlv__lex_next(&p, end);
                if (string_option(&t, v, sizeof(v)) != 0) return 1;
                if (strcasecmp(v, "utf8") != 0 && strcasecmp(v, "utf-8") != 0) {
                    snprintf(msg, size, "COPY ENCODING other than UTF8 is not supported");
                    return 2;
                }
            } else {
                return 1;
            }
            t = sqlv__lex_next(&p, end);
            if (sqlv__tok_punct(&t, ')')) break;
            if (!sqlv__tok_punct(&t, ',')) return 1;
        }
        t = sqlv__lex_next(&p, end);
    } else {
        for (int guard = 0; guard < 16 && t.kind != SQLV__TOK_END; guard++) {
            if (sqlv__tok_is(&t, "BINARY")) {
                snprintf(msg, size, "COPY format must be text or csv");
                return 2;
            } else if (sqlv__tok_is(&t, "CSV")) {
                o->csv = true;
            } else if (sqlv__tok_is(&t, "HEADER")) {
                o->header = true;
            } else if (sqlv__tok_is(&t, "DELIMITER") || sqlv__tok_is(&t, "NULL") ||
                       sqlv__tok_is(&t, "QUOTE") || sqlv__tok_is(&t, "ESCAPE")) {
                bool delim = sqlv__tok_is(&t, "DELIMITER"), null = sqlv__tok_is(&t, "NULL");
                char v[8];
                t = sqlv__lex_next(&p, end);
                if (sqlv__tok_is(&t, "AS")) t = sqlv__lex_next(&p, end);
                if (delim) {
                    if (string_option(&t, v, sizeof(v)) != 0 || strlen(v) != 1) return 1;
                    o->delim = v[0];
                    o->delim_set = true;
                } else if (null) {
                    if (string_option(&t, o->null_str, sizeof(o->null_str)) != 0) return 1;
                    o->null_set = true;
                } else if (quote_value(&t) != 0) {
                    snprintf(msg, size, "COPY QUOTE and ESCAPE other than '\"' are not supported");
                    return 2;
                }
            } else {
                return 1;
            }
            t = sqlv__lex_next(&p, end);
        }
    }
    if (t.kind != SQLV__TOK_END) return 1;
    if (!o->delim_set) o->delim = o->csv ? ',' : '\t';
    if (!o->null_set) base_strlcpy(o->null_str, o->csv ? "" : "\\N", sizeof(o->null_str));
    if (o->delim == '\n' || o->delim == '\r' || o->delim == '\\' || (o->csv && o->delim == '"'))
        return 1;
    *pp = p;
    return 0;
}

static int copy_to(sqlv__run *r, const char *select, size_t select_len, const copy_opts *o);

int sqlv__copy_begin(sqlv__run *r, const char *text, size_t len) {
    sqlv_session *s = r->s;
    const char *p = text, *end = text + len;
    char name[SQLV__NAME_BYTES_MAX * 4 + 1], col[SQLV__NAME_BYTES_MAX * 4 + 1], omsg[160];
    base_buf sql = {0}, cols = {0};
    sqlv__copy *c = NULL;
    copy_opts o = {0};
    const char *query = NULL, *query_end = NULL; /* COPY (query) TO */
    int ncols = 0;
    name[0] = 0;
    sqlv__token t = sqlv__lex_next(&p, end); /* COPY */
    const char *before = p;
    t = sqlv__lex_next(&p, end);
    int rc = 0;
    if (sqlv__tok_punct(&t, '(')) {
        /* COPY (query) TO: up to the matching parenthesis */
        int depth = 1;
        query = p;
        for (int guard = 0; guard < 10000000 && depth > 0; guard++) {
            query_end = p;
            t = sqlv__lex_next(&p, end);
            if (t.kind == SQLV__TOK_END) return syntax(r, "unbalanced parentheses");
            if (sqlv__tok_punct(&t, '(')) depth++;
            if (sqlv__tok_punct(&t, ')')) depth--;
        }
        if (depth > 0) return syntax(r, "");
    } else {
        p = before;
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_ident(&t, name, sizeof(name)) != 0) return syntax(r, "table name");
    }
    t = sqlv__lex_next(&p, end);
    if (query == NULL && sqlv__tok_punct(&t, '(')) {
        for (;;) {
            t = sqlv__lex_next(&p, end);
            if (sqlv__tok_ident(&t, col, sizeof(col)) != 0) goto bad_syntax;
            if (ncols >= SQLV__COPY_COLUMNS_MAX) goto bad_syntax;
            rc = rc == 0 ? base_buf_printf(&cols, "%s\"", ncols ? ", " : "") : rc;
            for (const char *q = col; rc == 0 && *q; q++)
                rc = *q == '"' ? base_buf_printf(&cols, "\"\"")
                               : base_buf_append_byte(&cols, (uint8_t)*q);
            rc = rc == 0 ? base_buf_printf(&cols, "\"") : rc;
            ncols++;
            t = sqlv__lex_next(&p, end);
            if (sqlv__tok_punct(&t, ')')) break;
            if (!sqlv__tok_punct(&t, ',')) goto bad_syntax;
        }
        t = sqlv__lex_next(&p, end);
    }
    if (rc != 0) goto nomem;
    bool to = sqlv__tok_is(&t, "TO");
    if (!to && !sqlv__tok_is(&t, "FROM")) {
        base_buf_free(&cols);
        return syntax(r, "expected FROM STDIN or TO STDOUT");
    }
    if (!to && query != NULL) {
        base_buf_free(&cols);
        return syntax(r, "COPY (query) FROM is not possible");
    }
    t = sqlv__lex_next(&p, end);
    if (!sqlv__tok_is(&t, to ? "STDOUT" : "STDIN")) {
        base_buf_free(&cols);
        return sqlv__fail(r, "0A000",
                          to ? "COPY TO a file is not supported (use TO STDOUT, or psql's \\copy)"
                             : "COPY FROM a file is not supported (use FROM STDIN)");
    }
    int orc = parse_options(&p, end, &o, omsg, sizeof(omsg));
    if (orc == 2) {
        base_buf_free(&cols);
        return sqlv__fail(r, "0A000", omsg);
    }
    if (orc != 0) goto bad_syntax;
    if (to) {
        /* the SELECT: the query as given, or the table's (listed) columns */
        if (query == NULL) {
            rc = base_buf_printf(&sql, "SELECT %s FROM main.\"",
                                 ncols ? (const char *)cols.data : "*");
            for (const char *q = name; rc == 0 && *q; q++)
                rc = *q == '"' ? base_buf_printf(&sql, "\"\"")
                               : base_buf_append_byte(&sql, (uint8_t)*q);
            if (rc == 0) rc = base_buf_printf(&sql, "\"");
            if (rc != 0) goto nomem;
            rc = copy_to(r, (const char *)sql.data, sql.len, &o);
        } else {
            const char *qp = query;
            sqlv__token first = sqlv__lex_next(&qp, query_end);
            if (!sqlv__tok_is(&first, "SELECT") && !sqlv__tok_is(&first, "WITH") &&
                !sqlv__tok_is(&first, "VALUES")) {
                base_buf_free(&cols);
                return sqlv__fail(r, "0A000", "COPY (query) TO supports SELECT, WITH and VALUES");
            }
            rc = copy_to(r, query, (size_t)(query_end - query), &o);
        }
        base_buf_free(&sql);
        base_buf_free(&cols);
        return rc;
    }
    if (s->copy_in == NULL) {
        base_buf_free(&cols);
        return sqlv__fail(r, "0A000", "COPY FROM STDIN is not supported on this connection");
    }
    if (s->implicit_block) {
        base_buf_free(&cols);
        return sqlv__fail(r, "0A000",
                          "COPY FROM STDIN must be the only statement of its query string");
    }
    c = base_calloc(1, sizeof(*c));
    if (c == NULL) goto nomem;
    c->csv = o.csv;
    c->delim = o.delim;
    c->header_pending = o.header;
    base_strlcpy(c->null_str, o.null_str, sizeof(c->null_str));
    rc = base_buf_printf(&sql, "INSERT INTO main.\"");
    for (const char *q = name; rc == 0 && *q; q++)
        rc = *q == '"' ? base_buf_printf(&sql, "\"\"") : base_buf_append_byte(&sql, (uint8_t)*q);
    if (rc == 0) rc = base_buf_printf(&sql, "\"");
    if (rc == 0 && ncols > 0) rc = base_buf_printf(&sql, " (%s)", (const char *)cols.data);
    base_buf_free(&cols);
    if (rc != 0) goto nomem;
    /* The transaction first: the table is looked up in its catalog. In 'I'
    ** a failure below rolls it back (sqlv__fail). */
    if (s->kv == NULL) {
        txn_error err = {{0}, {0}};
        int trc = sqlv__session_begin(s, false, &err);
        if (trc != TXN_OK) {
            base_buf_free(&sql);
            base_free(c);
            return sqlv__fail_txn(r, trc, &err);
        }
    }
    /* the INSERT: one ? per column */
    if (sqlv__sync_tables(s) != 0) goto nomem;
    if (ncols == 0) {
        /* every column of the table, in order: ask SQLite */
        char *q = sqlite3_mprintf("SELECT * FROM main.\"%w\"", name);
        sqlite3_stmt *st = NULL;
        if (q == NULL) goto nomem;
        int prc = sqlite3_prepare_v2(s->db, q, -1, &st, NULL);
        sqlite3_free(q);
        if (prc != SQLITE_OK) {
            char state[6], m[600];
            sqlv__map_error(s, prc, state, m, sizeof(m));
            base_buf_free(&sql);
            base_free(c);
            return sqlv__fail(r, state, m);
        }
        ncols = sqlite3_column_count(st);
        sqlite3_finalize(st);
    }
    rc = base_buf_printf(&sql, " VALUES (");
    for (int i = 0; rc == 0 && i < ncols; i++)
        rc = base_buf_printf(&sql, "%s?", i ? ", " : "");
    if (rc == 0) rc = base_buf_printf(&sql, ")");
    if (rc == 0) rc = base_buf_append_byte(&sql, 0);
    if (rc != 0) goto nomem;
    /* the defaults of the columns the list leaves out (default.c) */
    char *full = NULL; /* owner: this block */
    char dstate[6], dmsg[200];
    int drc = sqlv__default_apply(s, (const char *)sql.data, sql.len - 1, &full, dstate, dmsg,
                                  sizeof(dmsg));
    if (drc < 0) goto nomem;
    if (drc > 0) {
        base_buf_free(&sql);
        base_free(c);
        return sqlv__fail(r, dstate, dmsg);
    }
    s->err_sqlstate[0] = 0;
    int prc = sqlite3_prepare_v2(s->db, full ? full : (const char *)sql.data, -1, &c->insert,
                                 NULL);
    base_free(full);
    if (prc != SQLITE_OK) {
        char state[6], m[600];
        sqlv__map_error(s, prc, state, m, sizeof(m));
        base_buf_free(&sql);
        base_free(c);
        return sqlv__fail(r, state, m);
    }
    base_buf_free(&sql);
    c->ncols = ncols;
    c->offs = base_calloc((size_t)ncols + 1, sizeof(*c->offs));
    c->nulls = base_calloc((size_t)ncols + 1, sizeof(*c->nulls));
    if (c->offs == NULL || c->nulls == NULL) {
        s->copy = c;
        copy_free(s);
        return sqlv__fail(r, "53200", "out of memory");
    }
    c->own = s->status == 'I';
    c->batched = c->own && !sqlv__copy_from_atomic(s);
    if (c->own) s->status = 'T';
    s->copy = c;
    if (r->sink_rc == 0) r->sink_rc = s->copy_in(r->sink->ctx, ncols);
    return 0;
bad_syntax:
    base_buf_free(&sql);
    base_buf_free(&cols);
    base_free(c);
    return syntax(r, "");
nomem:
    base_buf_free(&sql);
    base_buf_free(&cols);
    base_free(c);
    return sqlv__fail(r, "53200", "out of memory");
}

/* Split one text-format line into fields (decoded). 0, or 1 with msg. */
static int split_text(sqlv__copy *c, const char *l, size_t n, int *nf, char *msg, size_t size) {
    base_buf_reset(&c->fields);
    int f = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && l[i] != c->delim) continue;
        if (f >= c->ncols) {
            snprintf(msg, size, "extra data after last expected column");
            return 1;
        }
        const char *v = l + start;
        size_t vn = i - start;
        c->offs[f] = c->fields.len;
        c->nulls[f] = vn == strlen(c->null_str) && memcmp(v, c->null_str, vn) == 0;
        for (size_t k = 0; k < vn && !c->nulls[f]; k++) {
            char ch = v[k];
            if (ch == '\\' && k + 1 < vn) {
                char e = v[++k];
                switch (e) {
                case 'b': ch = '\b'; break;
                case 'f': ch = '\f'; break;
                case 'n': ch = '\n'; break;
                case 'r': ch = '\r'; break;
                case 't': ch = '\t'; break;
                case 'v': ch = '\v'; break;
                default:
                    if (e >= '0' && e <= '7') {
                        int val = e - '0';
                        for (int d = 0; d < 2 && k + 1 < vn && v[k + 1] >= '0' && v[k + 1] <= '7'; d++)
                            val = val * 8 + (v[++k] - '0');
                        ch = (char)val;
                    } else {
                        ch = e;
                    }
                }
            }
            if (base_buf_append_byte(&c->fields, (uint8_t)ch) != 0) return -1;
        }
        f++;
        start = i + 1;
    }
    c->offs[f] = c->fields.len;
    *nf = f;
    return 0;
}

/* CSV: quotes "" inside quoted fields; an unquoted empty field is NULL
** (or the NULL string). A quoted field may hold line breaks (the caller
** joins the lines of such a row). */
static int split_csv(sqlv__copy *c, const char *l, size_t n, int *nf, char *msg, size_t size) {
    base_buf_reset(&c->fields);
    int f = 0;
    size_t i = 0;
    for (;;) {
        if (f >= c->ncols) {
            snprintf(msg, size, "extra data after last expected column");
            return 1;
        }
        c->offs[f] = c->fields.len;
        bool quoted = false;
        size_t start = i;
        if (i < n && l[i] == '"') {
            quoted = true;
            i++;
            for (;;) {
                if (i >= n) {
                    snprintf(msg, size, "unterminated CSV quoted field");
                    return 1;
                }
                if (l[i] == '"') {
                    if (i + 1 < n && l[i + 1] == '"') {
                        if (base_buf_append_byte(&c->fields, '"') != 0) return -1;
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (base_buf_append_byte(&c->fields, (uint8_t)l[i]) != 0) return -1;
                i++;
            }
        }
        while (i < n && l[i] != c->delim) {
            if (base_buf_append_byte(&c->fields, (uint8_t)l[i]) != 0) return -1;
            i++;
        }
        size_t vn = c->fields.len - c->offs[f];
        c->nulls[f] = !quoted && vn == strlen(c->null_str) &&
                      memcmp(l + start, c->null_str, vn) == 0;
        f++;
        if (i >= n) break;
        i++; /* the delimiter */
    }
    c->offs[f] = c->fields.len;
    *nf = f;
    return 0;
}

/* Insert one line's row. 0; 1 with state/msg (not sent); -1 no memory.
** line_no counts the lines from 1 (for the message). */
static int insert_row(sqlv_session *s, const char *l, size_t n, uint64_t line_no, char state[6],
                      char *msg, size_t size) {
    sqlv__copy *c = s->copy;
    char why[600];
    int nf = 0;
    int rc = c->csv ? split_csv(c, l, n, &nf, why, sizeof(why))
                    : split_text(c, l, n, &nf, why, sizeof(why));
    if (rc < 0) return -1;
    if (rc == 0 && nf < c->ncols) {
        snprintf(why, sizeof(why), "missing data for column %d", nf + 1);
        rc = 1;
    }
    if (rc != 0) {
        base_strlcpy(state, "22P04", 6);
        snprintf(msg, size, "%.200s (COPY line %llu)", why, (unsigned long long)line_no);
        return 1;
    }
    for (int i = 0; i < c->ncols; i++) {
        if (c->nulls[i]) {
            sqlite3_bind_null(c->insert, i + 1);
        } else {
            const char *v = c->fields.data ? (const char *)c->fields.data + c->offs[i] : "";
            sqlite3_bind_text(c->insert, i + 1, v, (int)(c->offs[i + 1] - c->offs[i]),
                              SQLITE_STATIC);
        }
    }
    s->err_sqlstate[0] = 0;
    s->err_message[0] = 0;
    rc = sqlite3_step(c->insert);
    sqlite3_reset(c->insert);
    sqlite3_clear_bindings(c->insert);
    if (rc != SQLITE_DONE) {
        sqlv__map_error(s, rc, state, msg, size);
        return 1;
    }
    return 0;
}

/* Send a failure of the copy. Rows of committed batches stay: the message
** says so (a DETAIL), since PostgreSQL users expect all or nothing. */
static int copy_error(sqlv__run *r, const char *state, const char *msg) {
    sqlv__copy *c = r->s->copy;
    char m[1200];
    if (c == NULL || !c->batched || c->committed == 0) return sqlv__fail(r, state, msg);
    snprintf(m, sizeof(m),
             "%.600s\nDETAIL:  %llu rows were committed by earlier batches of this COPY and stay "
             "committed; the failed batch (from COPY line %llu) was rolled back.\nHINT:  SET "
             "copy_from_atomic_enabled = on, or a COPY inside BEGIN, makes a COPY all or nothing.",
             msg, (unsigned long long)c->committed, (unsigned long long)c->committed + 1);
    return sqlv__fail(r, state, m);
}

/* Keep a line of the open batch for a replay. 0, or -1 no memory. */
static int batch_keep(sqlv__copy *c, const char *l, size_t n) {
    uint32_t len = (uint32_t)n; /* n <= SQLV__COPY_LINE_BYTES_MAX */
    if (base_buf_append(&c->batch, &len, sizeof(len)) != 0) return -1;
    return base_buf_append(&c->batch, l, n);
}

/* The open batch's transaction, when none is open. 0, or 1 with state/msg. */
static int batch_begin(sqlv_session *s, char state[6], char *msg, size_t size) {
    if (s->kv != NULL) return 0;
    txn_error err = {{0}, {0}};
    int trc = sqlv__session_begin(s, false, &err);
    if (trc != TXN_OK) {
        txn_error_set(&err, trc);
        base_strlcpy(state, err.sqlstate[0] ? err.sqlstate : "XX000", 6);
        base_strlcpy(msg, err.message[0] ? err.message : "transaction error", size);
        return 1;
    }
    /* the catalog may have moved on since the last batch */
    if (sqlv__sync_tables(s) != 0) {
        base_strlcpy(state, "53200", 6);
        base_strlcpy(msg, "out of memory", size);
        return 1;
    }
    return 0;
}

/* A 40001 hit the open batch (in a row or at its commit): roll it back and
** insert its kept lines again in a fresh transaction, until that works or
** the batch's replays run out. On entry state/msg hold the 40001. 0, or 1 with
** state/msg (the last error), or -1 no memory. */
static int batch_replay(sqlv_session *s, char state[6], char *msg, size_t size) {
    sqlv__copy *c = s->copy;
    while (strcmp(state, "40001") == 0 && c->replays < SQLV__COPY_BATCH_RETRIES_MAX) {
        c->replays++;
        if (s->kv) txn_rollback(s->kv);
        s->kv = NULL;
        int64_t pause_ns = (int64_t)c->replays * SQLV__COPY_RETRY_PAUSE_US * 1000;
        struct timespec ts = {(time_t)(pause_ns / 1000000000), (long)(pause_ns % 1000000000)};
        nanosleep(&ts, NULL);
        if (atomic_load(&s->cancel)) {
            base_strlcpy(state, "57014", 6);
            base_strlcpy(msg, "canceling statement due to user request", size);
            return 1;
        }
        int rc = batch_begin(s, state, msg, size);
        uint64_t line_no = c->committed + 1;
        for (size_t at = 0; rc == 0 && at < c->batch.len; line_no++) {
            uint32_t len;
            memcpy(&len, c->batch.data + at, sizeof(len));
            at += sizeof(len);
            rc = insert_row(s, (const char *)c->batch.data + at, len, line_no, state, msg, size);
            at += len;
        }
        if (rc <= 0) return rc;
    }
    return 1;
}

/* Commit the open batch (when it has a transaction), replaying it after a
** 40001. 0, or 1 after sending the error. */
static int batch_commit(sqlv__run *r) {
    sqlv_session *s = r->s;
    sqlv__copy *c = s->copy;
    char state[6], msg[600];
    while (s->kv != NULL) {
        txn *kv = s->kv;
        txn_error err = {{0}, {0}};
        txn_commit_info info;
        s->kv = NULL;
        int trc = txn_commit_with_info(kv, &info, &err); /* frees kv */
        if (trc == TXN_OK) {
            sqlv__note_commit(s, &info);
            break;
        }
        txn_error_set(&err, trc);
        base_strlcpy(state, err.sqlstate[0] ? err.sqlstate : "XX000", sizeof(state));
        base_strlcpy(msg, err.message[0] ? err.message : "transaction error", sizeof(msg));
        int rc = batch_replay(s, state, msg, sizeof(msg));
        if (rc < 0) return copy_error(r, "53200", "out of memory");
        if (rc > 0) return copy_error(r, state, msg);
    }
    c->committed = c->rows;
    c->replays = 0;
    base_buf_reset(&c->batch);
    return 0;
}

/* One line: insert its row. 0, or 1 after sending the error. */
static int copy_line(sqlv__run *r, const char *l, size_t n) {
    sqlv_session *s = r->s;
    sqlv__copy *c = s->copy;
    char msg[600], state[6];
    if (n > 0 && l[n - 1] == '\r') n--;
    if (c->ended) return 0;
    if (!c->csv && n == 2 && l[0] == '\\' && l[1] == '.') {
        c->ended = true;
        return 0;
    }
    if (c->header_pending) {
        c->header_pending = false;
        return 0;
    }
    int rc = c->batched ? batch_begin(s, state, msg, sizeof(msg)) : 0;
    if (rc == 0) rc = insert_row(s, l, n, c->rows + 1, state, msg, sizeof(msg));
    if (rc > 0 && c->batched && strcmp(state, "40001") == 0) {
        /* the batch replays with this line at its end */
        rc = batch_keep(c, l, n);
        if (rc == 0) rc = batch_replay(s, state, msg, sizeof(msg));
        if (rc == 0) {
            c->rows++;
            goto full;
        }
    }
    if (rc < 0) return copy_error(r, "53200", "out of memory");
    if (rc > 0) return copy_error(r, state, msg);
    if (c->batched && batch_keep(c, l, n) != 0) return copy_error(r, "53200", "out of memory");
    c->rows++;
full:
    if (!c->batched) return 0;
    uint64_t rows_max = sqlv__copy_batch_rows > 0 ? (uint64_t)sqlv__copy_batch_rows
                                                   : SQLV__COPY_BATCH_ROWS_MAX;
    if (c->rows - c->committed < rows_max && c->batch.len < SQLV__COPY_BATCH_BYTES_MAX) return 0;
    return batch_commit(r);
}

static int copy_data(sqlv_session *s, const char *data, size_t len, const sqlv_sink *sink);

/* SQLite's memory while the rows go in is the session's (memory.c). */
int sqlv_session_copy_data(sqlv_session *s, const char *data, size_t len, const sqlv_sink *sink) {
    sqlv__mem *prev = sqlv__mem_enter(s->mem);
    int rc = copy_data(s, data, len, sink);
    sqlv__mem_leave(prev);
    return rc;
}

static int copy_data(sqlv_session *s, const char *data, size_t len, const sqlv_sink *sink) {
    sqlv__run r = {s, sink, 0};
    sqlv__copy *c = s->copy;
    if (c == NULL) return SQLV_OK; /* after a failure: discarded */
    atomic_store(&s->cancel, 0);
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (data + i)) : len - i;
        if (c->line.len + n > SQLV__COPY_LINE_BYTES_MAX) {
            sqlv__fail(&r, "54000", "COPY line too long");
            copy_end_failed(s);
            return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
        }
        /* CSV: a line break inside quotes belongs to the field (the row
        ** goes on); with '"' as quote and escape, the quotes so far are
        ** odd exactly while a quoted field is open */
        bool odd = false;
        for (size_t k = 0; c->csv && k < n; k++)
            odd ^= data[i + k] == '"';
        if (nl == NULL) {
            if (base_buf_append(&c->line, data + i, n) != 0) goto nomem;
            c->quote_open ^= odd;
            break;
        }
        if (c->quote_open ^ odd) {
            if (base_buf_append(&c->line, data + i, n + 1) != 0) goto nomem;
            c->quote_open = true;
            i += n + 1;
            continue;
        }
        c->quote_open = false;
        int rc;
        if (c->line.len > 0) {
            if (base_buf_append(&c->line, data + i, n) != 0) goto nomem;
            rc = copy_line(&r, (const char *)c->line.data, c->line.len);
            base_buf_reset(&c->line);
        } else {
            rc = copy_line(&r, data + i, n);
        }
        if (rc != 0) {
            copy_end_failed(s);
            return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
        }
        i += n + 1;
    }
    return SQLV_OK;
nomem:
    sqlv__fail(&r, "53200", "out of memory");
    copy_end_failed(s);
    return SQLV_ERR_FAILED;
}

int sqlv_session_copy_done(sqlv_session *s, const sqlv_sink *sink) {
    sqlv__run r = {s, sink, 0};
    sqlv__copy *c = s->copy;
    char tag[64];
    if (c == NULL) return SQLV_OK;
    if (c->line.len > 0) { /* a last line without '\n' */
        int rc = copy_line(&r, (const char *)c->line.data, c->line.len);
        if (rc != 0) {
            copy_end_failed(s);
            return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
        }
    }
    snprintf(tag, sizeof(tag), "COPY %llu", (unsigned long long)c->rows);
    if (c->batched) {
        /* the last batch; then as after the commit of an own transaction */
        if (batch_commit(&r) != 0) {
            copy_end_failed(s);
            return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
        }
        s->status = 'I';
        copy_free(s);
        if (r.sink_rc == 0 && sink->command_complete)
            r.sink_rc = sink->command_complete(sink->ctx, tag);
        return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_OK;
    }
    bool own = c->own;
    copy_free(s);
    if (own && sqlv__commit_quiet(&r) != 0) return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    if (r.sink_rc == 0 && sink->command_complete) r.sink_rc = sink->command_complete(sink->ctx, tag);
    return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_OK;
}

int sqlv_session_copy_fail(sqlv_session *s, const char *message, const sqlv_sink *sink) {
    sqlv__run r = {s, sink, 0};
    char msg[300];
    if (s->copy == NULL) return SQLV_OK;
    snprintf(msg, sizeof(msg), "COPY from stdin failed: %.200s", message ? message : "");
    copy_error(&r, "57014", msg);
    copy_end_failed(s);
    return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_OK;
}

/* ---- COPY ... TO STDOUT --------------------------------------------------------- */

typedef struct copy_out {
    sqlv__run *outer;
    const sqlv_copy_out_fns *fns; /* the session's */
    copy_opts o;
    base_buf line; /* the row being formatted */
    uint64_t rows;
    bool begun;
    bool failed; /* formatting failed (memory, line too long): not the client */
} copy_out;

/* One value in text format: backslash escapes for the backslash, control
** characters and the delimiter. */
static int text_value(base_buf *b, const char *v, size_t n, char delim) {
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char ch = v[i], e = 0;
        switch (ch) {
        case '\\': e = '\\'; break;
        case '\b': e = 'b'; break;
        case '\f': e = 'f'; break;
        case '\n': e = 'n'; break;
        case '\r': e = 'r'; break;
        case '\t': e = 't'; break;
        case '\v': e = 'v'; break;
        default:
            if (ch == delim) e = ch;
        }
        if (e) {
            rc = base_buf_append_byte(b, '\\');
            if (rc == 0) rc = base_buf_append_byte(b, (uint8_t)e);
        } else {
            rc = base_buf_append_byte(b, (uint8_t)ch);
        }
    }
    return rc;
}

/* One value in CSV: quoted when it holds the delimiter, a quote, a line
** break, equals the NULL string, or is a lone "\." (which would read back as
** the end marker). */
static int csv_value(base_buf *b, const char *v, size_t n, const copy_opts *o, bool only) {
    bool quote = (n == strlen(o->null_str) && memcmp(v, o->null_str, n) == 0) ||
                 (only && n == 2 && v[0] == '\\' && v[1] == '.');
    for (size_t i = 0; !quote && i < n; i++)
        quote = v[i] == o->delim || v[i] == '"' || v[i] == '\n' || v[i] == '\r';
    if (!quote) return base_buf_append(b, v, n);
    int rc = base_buf_append_byte(b, '"');
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (v[i] == '"') rc = base_buf_append_byte(b, '"');
        if (rc == 0) rc = base_buf_append_byte(b, (uint8_t)v[i]);
    }
    return rc == 0 ? base_buf_append_byte(b, '"') : rc;
}

static int out_value(copy_out *co, const char *v, size_t n, bool is_null, bool first, bool only) {
    base_buf *b = &co->line;
    int rc = first ? 0 : base_buf_append_byte(b, (uint8_t)co->o.delim);
    if (rc != 0) return rc;
    if (is_null) return base_buf_printf(b, "%s", co->o.null_str);
    return co->o.csv ? csv_value(b, v, n, &co->o, only) : text_value(b, v, n, co->o.delim);
}

/* Hand the formatted line to the client (one CopyData per row). */
static int out_line(copy_out *co) {
    sqlv__run *r = co->outer;
    if (base_buf_append_byte(&co->line, '\n') != 0 || co->line.len > SQLV__COPY_LINE_BYTES_MAX) {
        co->failed = true;
        return -1;
    }
    if (r->sink_rc == 0)
        r->sink_rc = co->fns->data(r->sink->ctx, (const char *)co->line.data, co->line.len);
    return r->sink_rc;
}

static int out_row_description(void *ctx, int ncols, const sqlv_column *cols) {
    copy_out *co = ctx;
    sqlv__run *r = co->outer;
    if (r->sink_rc == 0) r->sink_rc = co->fns->begin(r->sink->ctx, ncols);
    co->begun = true;
    if (r->sink_rc != 0 || !co->o.header) return r->sink_rc;
    base_buf_reset(&co->line);
    for (int i = 0; i < ncols; i++) {
        const char *n = cols[i].name ? cols[i].name : "?column?";
        if (out_value(co, n, strlen(n), false, i == 0, ncols == 1) != 0) {
            co->failed = true;
            return -1;
        }
    }
    return out_line(co);
}

static int out_data_row(void *ctx, int ncols, const sqlv_cell *cells) {
    copy_out *co = ctx;
    base_buf_reset(&co->line);
    for (int i = 0; i < ncols; i++)
        if (out_value(co, cells[i].data, cells[i].len, cells[i].data == NULL, i == 0,
                      ncols == 1) != 0) {
            co->failed = true;
            return -1;
        }
    co->rows++;
    return out_line(co);
}

/* The SELECT's tag: CopyDone, then "COPY n". */
static int out_command_complete(void *ctx, const char *tag) {
    copy_out *co = ctx;
    sqlv__run *r = co->outer;
    char t[64];
    (void)tag;
    if (r->sink_rc == 0 && !co->begun) r->sink_rc = co->fns->begin(r->sink->ctx, 0);
    if (r->sink_rc == 0) r->sink_rc = co->fns->done(r->sink->ctx);
    snprintf(t, sizeof(t), "COPY %llu", (unsigned long long)co->rows);
    if (r->sink_rc == 0 && r->sink->command_complete)
        r->sink_rc = r->sink->command_complete(r->sink->ctx, t);
    return r->sink_rc;
}

static int out_error(void *ctx, const char *sqlstate, const char *message) {
    copy_out *co = ctx;
    sqlv__run *r = co->outer;
    if (co->failed) return 0; /* the statement's "client gone": ours is sent after */
    if (r->sink_rc == 0 && r->sink->error)
        r->sink_rc = r->sink->error(r->sink->ctx, sqlstate, message);
    return r->sink_rc;
}

static int out_notice(void *ctx, const char *message) {
    copy_out *co = ctx;
    sqlv__run *r = co->outer;
    if (r->sink_rc == 0 && r->sink->notice) r->sink_rc = r->sink->notice(r->sink->ctx, message);
    return r->sink_rc;
}

/* Run select (rewritten already) into the copy-out callbacks. A data or
** format failure (memory, a line over the limit) stops the statement as a
** gone client would; it is reported as 53200. */
static int copy_to(sqlv__run *r, const char *select, size_t select_len, const copy_opts *o) {
    sqlv_session *s = r->s;
    if (s->copy_out.begin == NULL || s->copy_out.data == NULL || s->copy_out.done == NULL)
        return sqlv__fail(r, "0A000", "COPY TO STDOUT is not supported on this connection");
    copy_out co = {.outer = r, .fns = &s->copy_out, .o = *o};
    const sqlv_sink sink = {
        .ctx = &co,
        .row_description = out_row_description,
        .data_row = out_data_row,
        .command_complete = out_command_complete,
        .error = out_error,
        .notice = out_notice,
    };
    sqlv__run inner = {s, &sink, 0};
    int rc = sqlv__run_statement(&inner, select, select_len);
    base_buf_free(&co.line);
    if (co.failed && r->sink_rc == 0) /* ours, not the client's */
        return sqlv__emit_error(r, "54000", "a COPY row is too long or memory ran out");
    return rc;
}
