/*
** CHECK constraints: read from a table's CREATE text, named as PostgreSQL
** names them. vtab.c evaluates them on every row written (INSERT, UPDATE,
** upsert, COPY: all go through its xUpdate), session.c's ALTER TABLE ...
** ADD CONSTRAINT ... CHECK appends one to the CREATE text, pgcatalog.c
** lists them in pg_constraint (docs/sql.md "Constraints").
**
** Invariants:
**   - the CREATE text is the one source: a descriptor carries no separate
**     list, so a catalog reload, a clone and an ADD COLUMN keep the checks
**     exactly (the text is SQLite's, which has already resolved each
**     expression against the columns and refused subqueries).
**   - names: "CONSTRAINT name" as written; otherwise <table>_<column>_check
**     when the expression names exactly one column, else <table>_check
**     (PostgreSQL's rule), then 1, 2, ... appended until no earlier check
**     and no index of the table has the name.
**   - a row passes when every expression is true or NULL (PostgreSQL).
*/
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sql_int.h"
#include "sql_lex.h"

#define NAME_BYTES (SQLV__NAME_BYTES_MAX * 4 + 1)

void sqlv__checks_free(sqlv__check *c, int n) {
    for (int i = 0; c != NULL && i < n; i++) {
        base_free(c[i].name);
        base_free(c[i].expr);
    }
    base_free(c);
}

/* The column t's expression text names when it names exactly one, else
** -1. Words followed by '(' are functions; anything else matching a
** column name (as SQLite matches: ignoring ASCII case) is a reference. */
static int single_column(const sqlv__table *t, const char *expr) {
    const char *p = expr, *end = expr + strlen(expr);
    int found = -1;
    char w[NAME_BYTES];
    sqlv__token tk = sqlv__lex_next(&p, end);
    for (int guard = 0; tk.kind != SQLV__TOK_END && guard < 100000; guard++) {
        sqlv__token next = sqlv__lex_next(&p, end);
        if ((tk.kind == SQLV__TOK_WORD || tk.kind == SQLV__TOK_QUOTED) &&
            !sqlv__tok_punct(&next, '(') && sqlv__tok_ident(&tk, w, sizeof(w)) == 0) {
            for (int c = 0; c < t->ncols; c++) {
                if (sqlite3_stricmp(t->cols[c].name, w) != 0) continue;
                if (found >= 0 && found != c) return -1;
                found = c;
            }
        }
        tk = next;
    }
    return found;
}

static bool name_taken(const sqlv__table *t, const sqlv__check *c, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (c[i].name != NULL && sqlite3_stricmp(c[i].name, name) == 0) return true;
    return sqlv__table_index_named(t, name) != NULL;
}

/* PostgreSQL's makeObjectName: name1[_name2]_label, the longer of name1 and
** name2 shortened until it fits the name limit (bytes, not characters). */
static void object_name(const char *name1, const char *name2, const char *label, char *out,
                        size_t size) {
    size_t l1 = strlen(name1), l2 = name2 ? strlen(name2) : 0, ll = strlen(label);
    size_t over = (name2 ? 1 : 0) + 1 + ll;
    while (l1 + l2 + over > SQLV__NAME_BYTES_MAX && l1 + l2 > 0) {
        if (l1 >= l2)
            l1--;
        else
            l2--;
    }
    if (name2)
        snprintf(out, size, "%.*s_%.*s_%s", (int)l1, name1, (int)l2, name2, label);
    else
        snprintf(out, size, "%.*s_%s", (int)l1, name1, label);
}

/* PostgreSQL's ChooseConstraintName. */
static void choose_name(const sqlv__table *t, const sqlv__check *c, int n, const char *expr,
                        char *out, size_t size) {
    int col = single_column(t, expr);
    for (int pass = 0; pass < 100000; pass++) {
        char label[24];
        if (pass == 0)
            snprintf(label, sizeof(label), "check");
        else
            snprintf(label, sizeof(label), "check%d", pass);
        object_name(t->name, col >= 0 ? t->cols[col].name : NULL, label, out, size);
        if (!name_taken(t, c, n, out)) return;
    }
}

static int add_check(sqlv__check **arr, int *n, int *cap, const char *name, const char *expr,
                     size_t expr_len) {
    if (*n == *cap) {
        int ncap = *cap ? *cap * 2 : 4;
        sqlv__check *na = base_realloc(*arr, sizeof(*na) * (size_t)ncap);
        if (na == NULL) return SQLV_ERR_NOMEM;
        *arr = na;
        *cap = ncap;
    }
    sqlv__check *c = &(*arr)[*n];
    c->name = name ? base_strdup(name) : NULL;
    c->expr = base_strndup(expr, expr_len);
    (*n)++; /* counted first: sqlv__checks_free frees what was set */
    if ((name && c->name == NULL) || c->expr == NULL) return SQLV_ERR_NOMEM;
    return 0;
}

/* After a CHECK token: "( expr )"; the expression's text. false if absent. */
static bool paren_expr(const char **pp, const char *end, const char **start, size_t *len) {
    sqlv__token o = sqlv__lex_next(pp, end);
    if (!sqlv__tok_punct(&o, '(')) return false;
    const char *from = *pp, *before = *pp;
    int depth = 1;
    for (int guard = 0; guard < 1000000; guard++) {
        before = *pp;
        sqlv__token t = sqlv__lex_next(pp, end);
        if (t.kind == SQLV__TOK_END) return false;
        if (sqlv__tok_punct(&t, '(')) depth++;
        if (sqlv__tok_punct(&t, ')') && --depth == 0) {
            from = sqlv__lex_skip_space(from, before);
            *start = from;
            *len = (size_t)(t.start - from);
            while (*len > 0 && (from[*len - 1] == ' ' || from[*len - 1] == '\n' ||
                                from[*len - 1] == '\t' || from[*len - 1] == '\r'))
                (*len)--;
            return true;
        }
    }
    return false;
}

int sqlv__checks_of(const sqlv__table *t, sqlv__check **out, int *nout) {
    const char *p = t->create_sql, *end = p + strlen(p);
    sqlv__check *arr = NULL;
    int n = 0, cap = 0, depth = 0;
    char pending[NAME_BYTES] = ""; /* "CONSTRAINT name" just read */
    bool have_pending = false;
    *out = NULL;
    *nout = 0;
    for (int guard = 0; guard < 1000000; guard++) {
        sqlv__token tk = sqlv__lex_next(&p, end);
        if (tk.kind == SQLV__TOK_END) break;
        if (sqlv__tok_punct(&tk, '(')) {
            depth++;
            continue;
        }
        if (sqlv__tok_punct(&tk, ')')) {
            depth--;
            continue;
        }
        if (depth != 1) continue;
        if (sqlv__tok_punct(&tk, ',')) {
            have_pending = false;
            continue;
        }
        bool named = have_pending;
        have_pending = false;
        if (tk.kind == SQLV__TOK_WORD && sqlv__tok_is(&tk, "CONSTRAINT")) {
            sqlv__token nm = sqlv__lex_next(&p, end);
            if (sqlv__tok_ident(&nm, pending, sizeof(pending)) == 0) have_pending = true;
            continue;
        }
        if (tk.kind != SQLV__TOK_WORD || !sqlv__tok_is(&tk, "CHECK")) continue;
        const char *e = NULL;
        size_t elen = 0;
        if (!paren_expr(&p, end, &e, &elen)) break; /* SQLite accepted it: not reached */
        if (add_check(&arr, &n, &cap, named ? pending : NULL, e, elen) != 0) goto nomem;
    }
    /* default names, in order, after the written ones are known */
    for (int i = 0; i < n; i++) {
        if (arr[i].name != NULL) continue;
        char name[NAME_BYTES];
        choose_name(t, arr, n, arr[i].expr, name, sizeof(name));
        arr[i].name = base_strdup(name);
        if (arr[i].name == NULL) goto nomem;
    }
    *out = arr;
    *nout = n;
    return 0;
nomem:
    sqlv__checks_free(arr, n);
    return SQLV_ERR_NOMEM;
}
