/*
** COPY t [(cols)] FROM STDIN: the session side of PostgreSQL's copy-in
** sub-protocol (sql.h). Rows in text format (tab-separated, \N for NULL,
** backslash escapes) or CSV (quotes, HEADER) are inserted through one
** prepared INSERT, each value bound as text so the table's column classes
** convert it as for any INSERT.
**
** Invariants:
**   - s->copy != NULL exactly while the session is in copy-in mode; the
**     INSERT statement and the transaction (s->kv) live until done, fail
**     or abort.
**   - outside a block the copy owns an implicit transaction (status 'T'
**     while copying, c->own), committed at done or rolled back.
**   - a line is at most SQLV__COPY_LINE_BYTES_MAX bytes (54000 beyond);
**     buffered input never exceeds one line.
*/
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sql_int.h"
#include "sql_lex.h"

#define SQLV__COPY_LINE_BYTES_MAX (64 * 1024 * 1024)
#define SQLV__COPY_COLUMNS_MAX 1600

typedef struct sqlv__copy {
    sqlite3_stmt *insert; /* owner: copy */
    int ncols;
    bool csv, header_pending, own, ended; /* ended: saw "\." */
    char delim;
    char null_str[64];
    base_buf line;   /* an incomplete line */
    base_buf fields; /* decoded fields of the current line */
    size_t *offs;    /* ncols+1 field offsets into fields; owner: copy */
    bool *nulls;
    uint64_t rows;
} sqlv__copy;

bool sqlv_session_in_copy(const sqlv_session *s) { return s->copy != NULL; }
void sqlv_session_set_copy_in(sqlv_session *s, sqlv_copy_in_fn fn) { s->copy_in = fn; }

static void copy_free(sqlv_session *s) {
    sqlv__copy *c = s->copy;
    if (c == NULL) return;
    if (c->insert) sqlite3_finalize(c->insert);
    base_buf_free(&c->line);
    base_buf_free(&c->fields);
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

int sqlv__copy_begin(sqlv__run *r, const char *text, size_t len) {
    sqlv_session *s = r->s;
    const char *p = text, *end = text + len;
    char name[SQLV__NAME_BYTES_MAX * 4 + 1], col[SQLV__NAME_BYTES_MAX * 4 + 1], opt[64];
    base_buf sql = {0};
    sqlv__copy *c = NULL;
    int ncols = 0;
    if (s->copy_in == NULL)
        return sqlv__fail(r, "0A000", "COPY FROM STDIN is not supported on this connection");
    if (s->implicit_block)
        return sqlv__fail(r, "0A000",
                          "COPY FROM STDIN must be the only statement of its query string");
    sqlv__token t = sqlv__lex_next(&p, end); /* COPY */
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_ident(&t, name, sizeof(name)) != 0) return syntax(r, "table name");
    c = base_calloc(1, sizeof(*c));
    if (c == NULL) return sqlv__fail(r, "53200", "out of memory");
    c->delim = '\t';
    base_strlcpy(c->null_str, "\\N", sizeof(c->null_str));
    int rc = base_buf_printf(&sql, "INSERT INTO main.\"");
    for (const char *q = name; rc == 0 && *q; q++)
        rc = *q == '"' ? base_buf_printf(&sql, "\"\"") : base_buf_append_byte(&sql, (uint8_t)*q);
    if (rc == 0) rc = base_buf_printf(&sql, "\"");
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_punct(&t, '(')) {
        rc = rc == 0 ? base_buf_printf(&sql, " (") : rc;
        for (;;) {
            t = sqlv__lex_next(&p, end);
            if (sqlv__tok_ident(&t, col, sizeof(col)) != 0) goto bad_syntax;
            if (ncols >= SQLV__COPY_COLUMNS_MAX) goto bad_syntax;
            rc = rc == 0 ? base_buf_printf(&sql, "%s\"", ncols ? ", " : "") : rc;
            for (const char *q = col; rc == 0 && *q; q++)
                rc = *q == '"' ? base_buf_printf(&sql, "\"\"")
                               : base_buf_append_byte(&sql, (uint8_t)*q);
            rc = rc == 0 ? base_buf_printf(&sql, "\"") : rc;
            ncols++;
            t = sqlv__lex_next(&p, end);
            if (sqlv__tok_punct(&t, ')')) break;
            if (!sqlv__tok_punct(&t, ',')) goto bad_syntax;
        }
        rc = rc == 0 ? base_buf_printf(&sql, ")") : rc;
        t = sqlv__lex_next(&p, end);
    }
    if (!sqlv__tok_is(&t, "FROM")) {
        base_buf_free(&sql);
        base_free(c);
        if (sqlv__tok_is(&t, "TO")) return sqlv__fail(r, "0A000", "COPY ... TO is not supported yet");
        return syntax(r, "expected FROM STDIN");
    }
    t = sqlv__lex_next(&p, end);
    if (!sqlv__tok_is(&t, "STDIN")) {
        base_buf_free(&sql);
        base_free(c);
        return sqlv__fail(r, "0A000", "COPY FROM a file is not supported (use FROM STDIN)");
    }
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "WITH")) t = sqlv__lex_next(&p, end);
    if (sqlv__tok_punct(&t, '(')) {
        for (int guard = 0; guard < 64; guard++) {
            t = sqlv__lex_next(&p, end);
            if (sqlv__tok_is(&t, "FORMAT")) {
                t = sqlv__lex_next(&p, end);
                if (sqlv__tok_is(&t, "csv")) {
                    c->csv = true;
                    c->delim = ',';
                    c->null_str[0] = 0;
                } else if (!sqlv__tok_is(&t, "text")) {
                    base_buf_free(&sql);
                    base_free(c);
                    return sqlv__fail(r, "0A000", "COPY format must be text or csv");
                }
            } else if (sqlv__tok_is(&t, "HEADER") || sqlv__tok_is(&t, "FREEZE")) {
                bool header = sqlv__tok_is(&t, "HEADER"), on = true;
                const char *save = p;
                t = sqlv__lex_next(&p, end);
                if (sqlv__tok_is(&t, "on") || sqlv__tok_is(&t, "true") || sqlv__tok_is(&t, "1")) {
                } else if (sqlv__tok_is(&t, "off") || sqlv__tok_is(&t, "false") ||
                           sqlv__tok_is(&t, "0")) {
                    on = false;
                } else {
                    p = save;
                }
                if (header) c->header_pending = on;
            } else if (sqlv__tok_is(&t, "DELIMITER")) {
                t = sqlv__lex_next(&p, end);
                if (string_option(&t, opt, sizeof(opt)) != 0 || strlen(opt) != 1) goto bad_syntax;
                c->delim = opt[0];
            } else if (sqlv__tok_is(&t, "NULL")) {
                t = sqlv__lex_next(&p, end);
                if (string_option(&t, c->null_str, sizeof(c->null_str)) != 0) goto bad_syntax;
            } else {
                goto bad_syntax;
            }
            t = sqlv__lex_next(&p, end);
            if (sqlv__tok_punct(&t, ')')) break;
            if (!sqlv__tok_punct(&t, ',')) goto bad_syntax;
        }
        t = sqlv__lex_next(&p, end);
    }
    if (t.kind != SQLV__TOK_END) goto bad_syntax;
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
    s->err_sqlstate[0] = 0;
    int prc = sqlite3_prepare_v2(s->db, (const char *)sql.data, -1, &c->insert, NULL);
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
    if (c->own) s->status = 'T';
    s->copy = c;
    if (r->sink_rc == 0) r->sink_rc = s->copy_in(r->sink->ctx, ncols);
    return 0;
bad_syntax:
    base_buf_free(&sql);
    base_free(c);
    return syntax(r, "");
nomem:
    base_buf_free(&sql);
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
** (or the NULL string). Quoted newlines are not supported (one line is
** one row). */
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

/* One line: insert its row. 0, or 1 after sending the error. */
static int copy_line(sqlv__run *r, const char *l, size_t n) {
    sqlv_session *s = r->s;
    sqlv__copy *c = s->copy;
    char msg[600], state[6];
    int nf = 0;
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
    int rc = c->csv ? split_csv(c, l, n, &nf, msg, sizeof(msg))
                    : split_text(c, l, n, &nf, msg, sizeof(msg));
    if (rc < 0) return sqlv__fail(r, "53200", "out of memory");
    if (rc == 0 && nf < c->ncols) {
        snprintf(msg, sizeof(msg), "missing data for column %d", nf + 1);
        rc = 1;
    }
    if (rc != 0) {
        char m2[700];
        snprintf(m2, sizeof(m2), "%s (COPY line %llu)", msg, (unsigned long long)c->rows + 1);
        return sqlv__fail(r, "22P04", m2);
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
        sqlv__map_error(s, rc, state, msg, sizeof(msg));
        return sqlv__fail(r, state, msg);
    }
    c->rows++;
    return 0;
}

int sqlv_session_copy_data(sqlv_session *s, const char *data, size_t len, const sqlv_sink *sink) {
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
        if (nl == NULL) {
            if (base_buf_append(&c->line, data + i, n) != 0) goto nomem;
            break;
        }
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
    sqlv__fail(&r, "57014", msg);
    copy_end_failed(s);
    return r.sink_rc ? SQLV_ERR_ABORTED : SQLV_OK;
}
