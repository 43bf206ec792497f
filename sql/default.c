/*
** Column defaults (docs/sql.md "DEFAULT"). SQLite does not apply DEFAULT to
** virtual tables (an omitted column arrives NULL, indistinguishable from an
** explicit NULL), so the session completes every INSERT before SQLite sees
** it:
**
**   INSERT INTO t (a) VALUES (1), (2)
**     => INSERT INTO t (a, "b") VALUES (1, (5)), (2, (5))
**   INSERT INTO t (a, b) VALUES (1, DEFAULT)   => ... VALUES (1, (5))
**   INSERT INTO t DEFAULT VALUES               => INSERT INTO t ("b") VALUES ((5))
**   INSERT INTO t (a) SELECT ...
**     => INSERT INTO t (a, "b") SELECT *, (5) FROM (SELECT ...)
**
** Invariants:
**   - the text is the dialect rewriter's output; only the column list, the
**     VALUES rows' items and the source's bounds are touched: everything
**     else (ON CONFLICT, RETURNING, strings, comments) is copied verbatim.
**   - each default expression is parenthesized and evaluated once per
**     row (nextval() and now() per row, as PostgreSQL).
**   - loops are bounded by the statement's tokens and t->ncols.
*/
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sql_dialect.h"
#include "sql_int.h"
#include "sql_lex.h"

#define NAME_BYTES (SQLV__NAME_BYTES_MAX * 4 + 1)

typedef struct ins {
    const char *after_table; /* just past the table name (and its alias) */
    const char *cols_start;  /* inside the column list's parentheses; NULL: none */
    const char *cols_end;    /* its ')' */
    const char *src_start;   /* VALUES / SELECT / WITH / DEFAULT */
    const char *src_end;     /* ON CONFLICT / RETURNING / the end */
} ins;

/* [schema.]name at *pp (advanced past it): the name; -1 if none. */
static int table_name(const char **pp, const char *end, char *name, size_t size) {
    sqlv__token t = sqlv__lex_next(pp, end);
    if (sqlv__tok_ident(&t, name, size) != 0) return -1;
    const char *p = *pp;
    t = sqlv__lex_next(&p, end);
    if (!sqlv__tok_punct(&t, '.')) return 0;
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_ident(&t, name, size) != 0) return -1;
    *pp = p;
    return 0;
}

bool sqlv__default_target(const char *text, size_t len, char *name, size_t size) {
    const char *p = text, *end = text + len;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (!sqlv__tok_is(&t, "INSERT")) return false;
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "OR")) {
        (void)sqlv__lex_next(&p, end);
        t = sqlv__lex_next(&p, end);
    }
    if (!sqlv__tok_is(&t, "INTO")) return false;
    return table_name(&p, end, name, size) == 0;
}

/* The parts of the INSERT; false when it is not one we understand (left
** to SQLite as it is). */
static bool parse(const char *text, size_t len, ins *in) {
    const char *p = text, *end = text + len;
    memset(in, 0, sizeof(*in));
    sqlv__token t = sqlv__lex_next(&p, end);
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "OR")) {
        (void)sqlv__lex_next(&p, end);
        t = sqlv__lex_next(&p, end);
    }
    if (!sqlv__tok_is(&t, "INTO")) return false;
    char name[NAME_BYTES];
    if (table_name(&p, end, name, sizeof(name)) != 0) return false;
    in->after_table = p;
    const char *before = p;
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "AS")) {
        (void)sqlv__lex_next(&p, end);
        in->after_table = p;
        before = p;
        t = sqlv__lex_next(&p, end);
    }
    if (sqlv__tok_punct(&t, '(')) {
        in->cols_start = p;
        int depth = 1;
        for (;;) {
            const char *b = p;
            t = sqlv__lex_next(&p, end);
            if (t.kind == SQLV__TOK_END) return false;
            if (sqlv__tok_punct(&t, '(')) depth++;
            if (sqlv__tok_punct(&t, ')') && --depth == 0) {
                in->cols_end = b;
                break;
            }
        }
        before = p;
        t = sqlv__lex_next(&p, end);
    }
    in->src_start = t.start ? t.start : before;
    if (!sqlv__tok_is(&t, "VALUES") && !sqlv__tok_is(&t, "SELECT") && !sqlv__tok_is(&t, "WITH") &&
        !sqlv__tok_is(&t, "DEFAULT") && !sqlv__tok_punct(&t, '('))
        return false;
    /* the source runs to a top-level ON CONFLICT / RETURNING */
    int depth = 0;
    sqlv__token prev = t;
    in->src_end = end;
    for (;;) {
        const char *b = p;
        t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        if (sqlv__tok_punct(&t, '(')) depth++;
        if (sqlv__tok_punct(&t, ')')) depth--;
        if (depth == 0 && sqlv__tok_is(&t, "RETURNING")) {
            in->src_end = b;
            break;
        }
        if (depth == 0 && sqlv__tok_is(&prev, "ON") && sqlv__tok_is(&t, "CONFLICT")) {
            in->src_end = prev.start;
            break;
        }
        prev = t;
    }
    return true;
}

/* The dialect form of column c's default, parenthesized, appended to out. */
static int append_default(base_buf *out, const sqlv__column *c) {
    if (c->default_expr == NULL) return base_buf_printf(out, "NULL") == 0 ? 0 : SQLV_ERR_NOMEM;
    sqlv__rewrite rw;
    int rc = sqlv__dialect_rewrite(c->default_expr, strlen(c->default_expr), &rw);
    if (rc < 0) return SQLV_ERR_NOMEM;
    /* a default the rewriter refuses was accepted by CREATE TABLE: keep it */
    const char *e = rc == 0 ? rw.text : c->default_expr;
    int prc = base_buf_printf(out, "(%s)", e);
    if (rc == 0) base_free(rw.text);
    return prc == 0 ? 0 : SQLV_ERR_NOMEM;
}

static int find_column(const sqlv__table *t, const char *name) {
    for (int i = 0; i < t->ncols; i++)
        if (strcasecmp(t->cols[i].name, name) == 0) return i;
    return -1;
}

/* ", " when sep, then "name" quoted (an embedded " doubled). */
static int append_ident(base_buf *out, bool sep, const char *name) {
    int rc = base_buf_printf(out, "%s\"", sep ? ", " : "");
    for (const char *q = name; rc == 0 && *q; q++)
        rc = *q == '"' ? base_buf_printf(out, "\"\"") : base_buf_append_byte(out, (uint8_t)*q);
    if (rc == 0) rc = base_buf_printf(out, "\"");
    return rc == 0 ? 0 : SQLV_ERR_NOMEM;
}

static int append(base_buf *out, const char *a, const char *b) {
    return base_buf_append(out, a, (size_t)(b - a)) == 0 ? 0 : SQLV_ERR_NOMEM;
}

int sqlv__default_rewrite(const sqlv__table *t, const char *text, size_t len, char **out,
                          char state[6], char *msg, size_t size) {
    *out = NULL;
    ins in;
    if (!parse(text, len, &in)) return 0;
    const char *end = text + len;
    int *target = base_calloc((size_t)t->ncols + 1, sizeof(int)); /* owner: this function */
    bool *listed = base_calloc((size_t)t->ncols + 1, sizeof(bool)); /* owner: this function */
    base_buf b = {0};
    int ntarget = 0, rc = SQLV_ERR_NOMEM;
    bool any_default_kw = false;
    if (target == NULL || listed == NULL) goto cleanup;
    if (in.cols_start) {
        const char *p = in.cols_start;
        char name[NAME_BYTES];
        for (;;) {
            sqlv__token tk = sqlv__lex_next(&p, in.cols_end);
            if (tk.kind == SQLV__TOK_END) break;
            if (sqlv__tok_punct(&tk, ',')) continue;
            int c = sqlv__tok_ident(&tk, name, sizeof(name)) == 0 ? find_column(t, name) : -1;
            if (c < 0 || ntarget >= t->ncols || listed[c]) {
                rc = 0; /* SQLite reports the unknown or repeated column */
                goto cleanup;
            }
            listed[c] = true;
            target[ntarget++] = c;
        }
    } else {
        for (int i = 0; i < t->ncols; i++) {
            listed[i] = true;
            target[ntarget++] = i;
        }
    }
    /* what is there to add? */
    int nomitted = 0;
    for (int i = 0; i < t->ncols; i++)
        if (!listed[i] && t->cols[i].default_expr) nomitted++;
    const char *p = in.src_start;
    sqlv__token first = sqlv__lex_next(&p, in.src_end);
    bool is_values = sqlv__tok_is(&first, "VALUES");
    bool is_default_values = sqlv__tok_is(&first, "DEFAULT");
    if (is_values) {
        const char *q = p;
        for (;;) {
            sqlv__token tk = sqlv__lex_next(&q, in.src_end);
            if (tk.kind == SQLV__TOK_END) break;
            if (sqlv__tok_is(&tk, "DEFAULT")) any_default_kw = true;
        }
    }
    if (is_default_values) {
        sqlv__token v = sqlv__lex_next(&p, in.src_end);
        if (!sqlv__tok_is(&v, "VALUES") || in.cols_start) {
            base_strlcpy(state, "42601", 6);
            snprintf(msg, size, "syntax error at or near \"DEFAULT\"");
            rc = 1;
            goto cleanup;
        }
        /* every column gets its default: the omitted ones are all */
        nomitted = 0;
        for (int i = 0; i < t->ncols; i++) {
            listed[i] = false;
            if (t->cols[i].default_expr) nomitted++;
        }
        ntarget = 0;
        if (nomitted == 0) {
            rc = 0; /* all NULL: SQLite's DEFAULT VALUES does that */
            goto cleanup;
        }
    }
    if (nomitted == 0 && !any_default_kw) {
        rc = 0;
        goto cleanup;
    }
    /* INSERT INTO t [AS x] */
    if (append(&b, text, in.after_table) != 0) goto cleanup;
    if (base_buf_printf(&b, " (") != 0) goto cleanup;
    bool sep = false;
    if (in.cols_start) {
        if (append(&b, in.cols_start, in.cols_end) != 0) goto cleanup;
        sep = true;
    } else if (!is_default_values) {
        for (int i = 0; i < t->ncols; i++) {
            if (append_ident(&b, sep, t->cols[i].name) != 0) goto cleanup;
            sep = true;
        }
    }
    for (int i = 0; i < t->ncols; i++) {
        if (listed[i] || t->cols[i].default_expr == NULL) continue;
        if (append_ident(&b, sep, t->cols[i].name) != 0) goto cleanup;
        sep = true;
    }
    if (base_buf_printf(&b, ") ") != 0) goto cleanup;
    if (is_default_values) {
        if (base_buf_printf(&b, "VALUES (") != 0) goto cleanup;
        sep = false;
        for (int i = 0; i < t->ncols; i++) {
            if (t->cols[i].default_expr == NULL) continue;
            if (base_buf_printf(&b, "%s", sep ? ", " : "") != 0) goto cleanup;
            if (append_default(&b, &t->cols[i]) != 0) goto cleanup;
            sep = true;
        }
        if (base_buf_printf(&b, ") ") != 0) goto cleanup;
    } else if (is_values) {
        /* VALUES (row), (row)...: each row's items, DEFAULT replaced, the
        ** omitted defaults appended */
        const char *q = p, *copied = in.src_start;
        for (;;) {
            sqlv__token tk = sqlv__lex_next(&q, in.src_end);
            if (tk.kind == SQLV__TOK_END) break;
            if (!sqlv__tok_punct(&tk, '(')) continue;
            int depth = 1, item = 0;
            if (append(&b, copied, q) != 0) goto cleanup;
            copied = q;
            for (;;) {
                const char *before = q;
                tk = sqlv__lex_next(&q, in.src_end);
                if (tk.kind == SQLV__TOK_END) {
                    rc = 0; /* unbalanced: SQLite reports it */
                    goto cleanup;
                }
                if (sqlv__tok_punct(&tk, '(')) depth++;
                if (sqlv__tok_punct(&tk, ')') && --depth == 0) {
                    if (append(&b, copied, before) != 0) goto cleanup;
                    for (int i = 0; i < t->ncols; i++) {
                        if (listed[i] || t->cols[i].default_expr == NULL) continue;
                        if (base_buf_printf(&b, ", ") != 0) goto cleanup;
                        if (append_default(&b, &t->cols[i]) != 0) goto cleanup;
                    }
                    copied = before;
                    break;
                }
                if (depth == 1 && sqlv__tok_punct(&tk, ',')) item++;
                if (depth == 1 && sqlv__tok_is(&tk, "DEFAULT")) {
                    if (append(&b, copied, tk.start) != 0) goto cleanup;
                    if (item < ntarget) {
                        if (append_default(&b, &t->cols[target[item]]) != 0) goto cleanup;
                    } else if (base_buf_printf(&b, "NULL") != 0) {
                        goto cleanup;
                    }
                    copied = q;
                }
            }
        }
        if (append(&b, copied, in.src_end) != 0) goto cleanup;
    } else {
        /* SELECT / WITH / (query): its rows, then the defaults */
        if (base_buf_printf(&b, "SELECT *") != 0) goto cleanup;
        for (int i = 0; i < t->ncols; i++) {
            if (listed[i] || t->cols[i].default_expr == NULL) continue;
            if (base_buf_printf(&b, ", ") != 0) goto cleanup;
            if (append_default(&b, &t->cols[i]) != 0) goto cleanup;
        }
        if (base_buf_printf(&b, " FROM (") != 0) goto cleanup;
        if (append(&b, in.src_start, in.src_end) != 0) goto cleanup;
        if (base_buf_printf(&b, ") ") != 0) goto cleanup;
    }
    if (append(&b, in.src_end, end) != 0) goto cleanup;
    if (base_buf_append(&b, "", 1) != 0) goto cleanup;
    *out = (char *)b.data;
    b.data = NULL;
    rc = 0;
cleanup:
    base_buf_free(&b);
    base_free(target);
    base_free(listed);
    return rc;
}

int sqlv__default_apply(sqlv_session *s, const char *text, size_t len, char **out, char state[6],
                        char *msg, size_t size) {
    char name[NAME_BYTES];
    sqlv__table *t = NULL; /* owner: this function */
    *out = NULL;
    if (!sqlv__default_target(text, len, name, sizeof(name))) return 0;
    uint32_t id = sqlv__session_find_id(s, name);
    int trc = id != 0 ? sqlv__session_table(s, id, &t) : 1;
    if (trc != 0) return trc < 0 ? SQLV_ERR_NOMEM : 0; /* SQLite reports an unknown table */
    int rc = sqlv__default_rewrite(t, text, len, out, state, msg, size);
    sqlv__table_free(t);
    return rc;
}
