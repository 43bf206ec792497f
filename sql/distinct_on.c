/*
** SELECT DISTINCT ON (docs/sql.md "DISTINCT ON"). SQLite has no DISTINCT ON,
** so the session rewrites the statement (dialect text) before SQLite sees it:
**
**   SELECT DISTINCT ON (d1, ...) L FROM ... [ORDER BY o1 [mods], ...] [LIMIT ...]
**     => WITH meridian_don(meridian_c1..meridian_cN, meridian_x1..) AS
**          (SELECT L, x1, ... FROM ...)
**        SELECT meridian_c1 AS "name1", ... FROM
**          (SELECT *, row_number() OVER (PARTITION BY d.. ORDER BY o.. mods)
**           AS meridian_rn FROM meridian_don)
**        WHERE meridian_rn = 1 ORDER BY o.. mods [LIMIT ...]
**
** the first row of each group of equal d values, in the ORDER BY's order,
** as PostgreSQL. An item of DISTINCT ON or ORDER BY that names an output
** column (its position, or its name alone) is that column; any other
** expression is an extra column x of the CTE. N and the names of L's
** columns (L may be *) come from "SELECT L FROM ..." prepared alone on the
** session's connection; the outer aliases are those names, so the result
** is described as the original would be (session.c describe()).
**
** Invariants:
**   - PostgreSQL's rule (42P10): once an ORDER BY item that is not a
**     DISTINCT ON expression appears, every DISTINCT ON expression must have
**     appeared before it. Expressions are compared by their tokens (case of
**     words, whitespace, outer parentheses and table qualifiers aside) or
**     by the output column they name.
**   - an ORDER BY item without NULLS FIRST/LAST gets PostgreSQL's default
**     (ASC: NULLS LAST, DESC: NULLS FIRST): SQLite's is the opposite, and
**     which row of a group comes first depends on it.
**   - a DISTINCT ON query is rewritten where it is the statement's own
**     query (after its WITH list, which the CTE then joins), a
**     parenthesized subquery, a WITH query or INSERT ... SELECT's source;
**     one at a time, the last in the text first (it contains no other), at
**     most DON_ROUNDS_MAX. A subquery that cannot be prepared alone (it
**     refers to its outer query) takes its names from the text (no * then).
**     A branch of UNION / INTERSECT / EXCEPT becomes SELECT * FROM (the
**     rewrite), up to the next operator or the compound's own ORDER BY /
**     LIMIT / OFFSET. Elsewhere 0A000.
**   - loops are bounded by the statement's tokens (SQLV__DIALECT_TOKENS_MAX).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql_dialect.h"
#include "sql_int.h"
#include "sql_lex.h"

#define NAME_BYTES (SQLV__NAME_BYTES_MAX * 4 + 1)
#define DON_ITEMS_MAX 1000 /* DISTINCT ON and ORDER BY items, each */
#define DON_ROUNDS_MAX 64  /* DISTINCT ON queries in one statement */

typedef struct toks {
    sqlv__token *v; /* owner: this */
    size_t n, cap;
} toks;

/* One DISTINCT ON or ORDER BY item: tokens [a, b) of the expression, then
** its modifiers (ASC/DESC, NULLS FIRST/LAST) up to m. */
typedef struct item {
    size_t a, b, m;
    int col;    /* the output column (0-based) it names, or -1 */
    int extra;  /* its extra column (1-based) when col < 0 */
    char *norm; /* normalized tokens (col < 0); owner: this */
    bool desc, nulls;
} item;

static int push(toks *t, sqlv__token x) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        sqlv__token *v = base_realloc(t->v, cap * sizeof(*v));
        if (v == NULL) return -1;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = x;
    return 0;
}

static int refuse(char state[6], char *msg, size_t size, const char *st, const char *m) {
    base_strlcpy(state, st, 6);
    snprintf(msg, size, "%s", m);
    return 1;
}

/* The index of the ')' matching the '(' at open, or n. */
static size_t matching(const toks *t, size_t open) {
    int depth = 0;
    for (size_t i = open; i < t->n; i++) {
        if (sqlv__tok_punct(&t->v[i], '(')) depth++;
        if (sqlv__tok_punct(&t->v[i], ')') && --depth == 0) return i;
    }
    return t->n;
}

/* Split tokens [a, b) at depth-0 commas into items (expression only). */
static int split(const toks *t, size_t a, size_t b, item *items, int *n) {
    int depth = 0;
    size_t s = a;
    *n = 0;
    for (size_t i = a; i <= b; i++) {
        bool at_end = i == b;
        if (!at_end && sqlv__tok_punct(&t->v[i], '(')) depth++;
        if (!at_end && sqlv__tok_punct(&t->v[i], ')')) depth--;
        if (at_end || (depth == 0 && sqlv__tok_punct(&t->v[i], ','))) {
            if (i == s || *n >= DON_ITEMS_MAX) return -1;
            items[*n] = (item){.a = s, .b = i, .m = i, .col = -1};
            (*n)++;
            s = i + 1;
        }
    }
    return 0;
}

/* An ORDER BY item's trailing ASC/DESC and NULLS FIRST/LAST (at its
** depth 0). 0, or 1 for one we do not take (USING op). */
static int modifiers(const toks *t, item *it) {
    int depth = 0;
    for (size_t i = it->a; i < it->m; i++) {
        const sqlv__token *k = &t->v[i];
        if (sqlv__tok_punct(k, '(')) depth++;
        if (sqlv__tok_punct(k, ')')) depth--;
        if (depth != 0 || i == it->a) continue;
        if (sqlv__tok_is(k, "USING")) return 1;
        if (!sqlv__tok_is(k, "ASC") && !sqlv__tok_is(k, "DESC") && !sqlv__tok_is(k, "NULLS"))
            continue;
        it->b = i;
        for (size_t j = i; j < it->m; j++) {
            if (sqlv__tok_is(&t->v[j], "DESC")) it->desc = true;
            if (sqlv__tok_is(&t->v[j], "NULLS")) it->nulls = true;
        }
        return 0;
    }
    return 0;
}

static bool identish(const sqlv__token *k) {
    return k->kind == SQLV__TOK_WORD || k->kind == SQLV__TOK_QUOTED;
}

/* The item's tokens, outer parentheses and table qualifiers (t.a: a)
** dropped, words in lower case, joined by one space: how two expressions
** are compared. NULL: memory. */
static char *normalize(const toks *t, size_t a, size_t b) {
    while (b - a >= 2 && sqlv__tok_punct(&t->v[a], '(') && matching(t, a) == b - 1) {
        a++;
        b--;
    }
    base_buf out = {0};
    for (size_t i = a; i < b; i++) {
        const sqlv__token *k = &t->v[i];
        if (i + 2 < b && identish(k) && sqlv__tok_punct(&t->v[i + 1], '.') &&
            identish(&t->v[i + 2]) && !(i > a && sqlv__tok_punct(&t->v[i - 1], '.'))) {
            i++; /* the qualifier and its '.' */
            continue;
        }
        if (out.len > 0 && base_buf_append_byte(&out, ' ') != 0) goto nomem;
        for (size_t c = 0; c < k->len; c++) {
            char ch = k->start[c];
            if (k->kind == SQLV__TOK_WORD && ch >= 'A' && ch <= 'Z') ch = (char)(ch + 32);
            if (base_buf_append_byte(&out, (uint8_t)ch) != 0) goto nomem;
        }
    }
    if (base_buf_append_byte(&out, 0) != 0) goto nomem;
    return (char *)out.data;
nomem:
    base_buf_free(&out);
    return NULL;
}

/* Which output column item names: its position, its name alone, or the
** same expression as a select list item (lnorm: the normalized expressions
** of the first nl items, those before any *). */
static int resolve(const toks *t, item *it, char **names, int ncols, char **lnorm, int nl,
                   char state[6], char *msg, size_t size) {
    size_t a = it->a, b = it->b;
    it->col = -1;
    while (b - a >= 2 && sqlv__tok_punct(&t->v[a], '(') && matching(t, a) == b - 1) {
        a++;
        b--;
    }
    if (b - a != 1) {
        char *n = normalize(t, a, b);
        if (n == NULL) return SQLV_ERR_NOMEM;
        for (int c = 0; c < nl && it->col < 0; c++)
            if (lnorm[c] != NULL && strcmp(lnorm[c], n) == 0) it->col = c;
        base_free(n);
        return 0;
    }
    const sqlv__token *k = &t->v[a];
    if (k->kind == SQLV__TOK_OTHER && k->len > 0 && k->start[0] >= '0' && k->start[0] <= '9') {
        char num[24];
        if (k->len >= sizeof(num))
            return refuse(state, msg, size, "42P10", "position is not in select list");
        memcpy(num, k->start, k->len);
        num[k->len] = 0;
        char *e = NULL;
        long v = strtol(num, &e, 10);
        if (e == NULL || *e != 0) return 0; /* 1.5: an expression */
        if (v < 1 || v > ncols) {
            base_strlcpy(state, "42P10", 6);
            snprintf(msg, size, "ORDER BY position %ld is not in select list", v);
            return 1;
        }
        it->col = (int)v - 1;
        return 0;
    }
    char name[NAME_BYTES];
    if (sqlv__tok_ident(k, name, sizeof(name)) != 0) return 0;
    for (int c = 0; c < ncols; c++) {
        const char *cn = names[c];
        if (k->kind == SQLV__TOK_WORD ? strcasecmp(cn, name) == 0 : strcmp(cn, name) == 0) {
            it->col = c;
            return 0;
        }
    }
    char *n = normalize(t, a, b); /* t.x: the select list's t.x */
    if (n == NULL) return SQLV_ERR_NOMEM;
    for (int c = 0; c < nl && it->col < 0; c++)
        if (lnorm[c] != NULL && strcmp(lnorm[c], n) == 0) it->col = c;
    base_free(n);
    return 0;
}

/* The normalized expressions of the select list's items [a, b) before the
** first * (an "AS alias" dropped) into lnorm (owner: caller, each
** base_free), their number in *nl. 0 or SQLV_ERR_NOMEM. */
static int select_items(const toks *t, size_t a, size_t b, char **lnorm, int *nl) {
    int depth = 0;
    size_t s = a;
    *nl = 0;
    for (size_t i = a; i <= b && *nl < DON_ITEMS_MAX; i++) {
        bool at_end = i == b;
        if (!at_end && sqlv__tok_punct(&t->v[i], '(')) depth++;
        if (!at_end && sqlv__tok_punct(&t->v[i], ')')) depth--;
        if (!at_end && !(depth == 0 && sqlv__tok_punct(&t->v[i], ','))) continue;
        if (i == s) return 0;
        size_t e = i;
        if (sqlv__tok_punct(&t->v[e - 1], '*') &&
            (e - 1 == s || sqlv__tok_punct(&t->v[e - 2], '.')))
            return 0; /* * or t.*: the positions after it are unknown */
        if (e - s >= 3 && sqlv__tok_is(&t->v[e - 2], "AS")) e -= 2;
        lnorm[*nl] = normalize(t, s, e);
        if (lnorm[*nl] == NULL) return SQLV_ERR_NOMEM;
        (*nl)++;
        s = i + 1;
    }
    return 0;
}

static bool same(const item *x, const item *y) {
    if (x->col >= 0 || y->col >= 0) return x->col == y->col;
    return strcmp(x->norm, y->norm) == 0;
}

static int append(base_buf *b, const char *s, size_t n) { return base_buf_append(b, s, n); }

/* Text of tokens [a, b) as written (with what lies between them). */
static int append_span(base_buf *b, const toks *t, size_t a, size_t bnd) {
    if (a >= bnd) return 0;
    const char *s = t->v[a].start, *e = t->v[bnd - 1].start + t->v[bnd - 1].len;
    return append(b, s, (size_t)(e - s));
}

/* The column an item stands for in the CTE. */
static int append_ref(base_buf *b, const item *it) {
    return it->col >= 0 ? base_buf_printf(b, "meridian_c%d", it->col + 1)
                        : base_buf_printf(b, "meridian_x%d", it->extra);
}

/* ", "-separated ORDER BY list of items with their modifiers and
** PostgreSQL's NULL placement. */
static int append_order(base_buf *b, const toks *t, const item *o, int no) {
    for (int i = 0; i < no; i++) {
        if (i > 0 && base_buf_printf(b, ", ") != 0) return -1;
        if (append_ref(b, &o[i]) != 0) return -1;
        if (o[i].m > o[i].b) {
            if (base_buf_printf(b, " ") != 0 || append_span(b, t, o[i].b, o[i].m) != 0) return -1;
        }
        if (!o[i].nulls && base_buf_printf(b, o[i].desc ? " NULLS FIRST" : " NULLS LAST") != 0)
            return -1;
    }
    return 0;
}

static bool ends_select_list(const toks *t, size_t i) {
    const sqlv__token *k = &t->v[i];
    if (sqlv__tok_is(k, "FROM")) return !(i > 0 && sqlv__tok_is(&t->v[i - 1], "DISTINCT"));
    static const char *const words[] = {"WHERE",  "GROUP", "HAVING", "WINDOW",    "ORDER", "LIMIT",
                                        "OFFSET", "FETCH", "UNION",  "INTERSECT", "EXCEPT"};
    for (size_t w = 0; w < BASE_ARRAY_LEN(words); w++)
        if (sqlv__tok_is(k, words[w])) return true;
    return false;
}

/* The output names of the select list [a, b) without preparing it (a
** subquery that cannot run alone): an alias, a column's name, else the
** expression's text, as SQLite names them; -1 when it has a * (unknown
** columns); else the count, names[i] owned by the caller (base_free). */
static int names_from_text(const toks *t, size_t a, size_t b, char **names) {
    int depth = 0, n = 0;
    size_t s = a;
    for (size_t i = a; i <= b; i++) {
        bool at_end = i == b;
        if (!at_end && sqlv__tok_punct(&t->v[i], '(')) depth++;
        if (!at_end && sqlv__tok_punct(&t->v[i], ')')) depth--;
        if (!at_end && !(depth == 0 && sqlv__tok_punct(&t->v[i], ','))) continue;
        if (i == s || n >= DON_ITEMS_MAX) return -1;
        const sqlv__token *last = &t->v[i - 1];
        if (sqlv__tok_punct(last, '*') && (i - 1 == s || sqlv__tok_punct(&t->v[i - 2], '.')))
            return -1;
        char name[NAME_BYTES];
        bool alias = i - s >= 3 && sqlv__tok_is(&t->v[i - 2], "AS");
        bool column =
            (i - s == 1 || (i - s == 3 && sqlv__tok_punct(&t->v[i - 2], '.'))) && identish(last);
        if ((alias || column) && sqlv__tok_ident(last, name, sizeof(name)) == 0) {
            names[n] = base_strdup(name);
        } else {
            const char *e = last->start + last->len;
            names[n] = base_strndup(t->v[s].start, (size_t)(e - t->v[s].start));
        }
        if (names[n++] == NULL) return -2;
        s = i + 1;
    }
    return n;
}

/* The replacement of the query [sel, stop) of t (SELECT DISTINCT ON at sel)
** into piece. prefix: the text before sel when it is the statement's own
** WITH list (the query is the statement's main one): prepared with it, and
** the CTE joins that list. nested: a parenthesized subquery (its names
** from the text when it cannot be prepared alone). 0, 1 refused, or
** SQLV_ERR_NOMEM. */
static int rewrite_one(sqlv_session *s, const toks *tk, size_t sel, size_t stop, const char *prefix,
                       size_t prefix_len, bool nested, base_buf *piece, char state[6], char *msg,
                       size_t size) {
    const toks t = *tk; /* borrowed */
    item *d = NULL, *o = NULL;
    int nd = 0, no = 0, rc = SQLV_ERR_NOMEM, ncols = 0, nl = 0;
    char **lnorm = NULL; /* the select list's expressions; owner: here */
    char **names = NULL; /* the output names; owner: here */
    sqlite3_stmt *probe = NULL;
    base_buf b = {0};
    size_t dclose = matching(&t, sel + 3);
    if (dclose + 1 >= stop) {
        rc = refuse(state, msg, size, "42601", "syntax error in SELECT DISTINCT ON");
        goto cleanup;
    }
    d = base_calloc(DON_ITEMS_MAX, sizeof(*d));
    o = base_calloc(DON_ITEMS_MAX, sizeof(*o));
    names = base_calloc(DON_ITEMS_MAX, sizeof(*names));
    lnorm = base_calloc(DON_ITEMS_MAX, sizeof(*lnorm));
    if (d == NULL || o == NULL || names == NULL || lnorm == NULL) goto cleanup;
    if (split(&t, sel + 4, dclose, d, &nd) != 0) {
        rc = refuse(state, msg, size, "42601", "syntax error in SELECT DISTINCT ON (...)");
        goto cleanup;
    }
    /* the select list [lstart, lend), the body up to ORDER BY / LIMIT, the tail */
    size_t lstart = dclose + 1, lend = stop, ostart = stop, oend = stop, tail = stop;
    int depth = 0;
    for (size_t i = lstart; i < stop; i++) {
        if (sqlv__tok_punct(&t.v[i], '(')) depth++;
        if (sqlv__tok_punct(&t.v[i], ')')) depth--;
        if (depth != 0) continue;
        if (lend == stop && ends_select_list(&t, i)) lend = i;
        if (lend == stop) continue;
        const sqlv__token *k = &t.v[i];
        if (sqlv__tok_is(k, "UNION") || sqlv__tok_is(k, "INTERSECT") || sqlv__tok_is(k, "EXCEPT")) {
            rc = refuse(state, msg, size, "0A000",
                        "DISTINCT ON with UNION, INTERSECT or EXCEPT is not supported yet");
            goto cleanup;
        }
        if (ostart == stop && sqlv__tok_is(k, "ORDER") && i + 1 < stop &&
            sqlv__tok_is(&t.v[i + 1], "BY"))
            ostart = i;
        if (tail == stop && (sqlv__tok_is(k, "LIMIT") || sqlv__tok_is(k, "OFFSET") ||
                             sqlv__tok_is(k, "FETCH") || sqlv__tok_is(k, "FOR")))
            tail = i;
    }
    if (lend == lstart) {
        rc = refuse(state, msg, size, "42601", "syntax error in SELECT DISTINCT ON");
        goto cleanup;
    }
    size_t body_end = ostart < tail ? ostart : tail;
    if (ostart < stop) {
        oend = tail > ostart ? tail : stop;
        if (split(&t, ostart + 2, oend, o, &no) != 0) {
            rc = refuse(state, msg, size, "42601", "syntax error in ORDER BY");
            goto cleanup;
        }
        for (int i = 0; i < no; i++) {
            if (modifiers(&t, &o[i]) != 0) {
                rc = refuse(state, msg, size, "0A000",
                            "ORDER BY ... USING with DISTINCT ON is not supported");
                goto cleanup;
            }
        }
    }
    /* the select list alone: its column count and names */
    if (append(&b, prefix, prefix_len) != 0 || base_buf_printf(&b, "SELECT ") != 0 ||
        append_span(&b, &t, lstart, body_end) != 0)
        goto cleanup;
    int prc = sqlv__prepare(s, (const char *)b.data, b.len, &probe, NULL);
    if (prc == SQLITE_NOMEM) goto cleanup;
    if ((prc != SQLITE_OK || probe == NULL) && nested) {
        ncols = names_from_text(&t, lstart, lend, names);
        if (ncols == -2) goto cleanup;
        if (ncols < 0) {
            rc = refuse(state, msg, size, "0A000",
                        "DISTINCT ON with * in a subquery that refers to its outer query is not "
                        "supported yet");
            goto cleanup;
        }
    } else if (prc != SQLITE_OK || probe == NULL) {
        sqlv__map_error(s, prc == SQLITE_OK ? SQLITE_ERROR : prc, state, msg, size);
        rc = 1;
        goto cleanup;
    } else {
        ncols = sqlite3_column_count(probe);
        for (int c = 0; c < ncols && c < DON_ITEMS_MAX; c++) {
            const char *cn = sqlite3_column_name(probe, c);
            if ((names[c] = base_strdup(cn ? cn : "?column?")) == NULL) goto cleanup;
        }
        if (ncols > DON_ITEMS_MAX) ncols = DON_ITEMS_MAX;
    }
    if (select_items(&t, lstart, lend, lnorm, &nl) != 0) goto cleanup;
    if (nl > ncols) nl = ncols;
    int nextra = 0;
    for (int pass = 0; pass < 2; pass++) {
        item *its = pass == 0 ? d : o;
        int n = pass == 0 ? nd : no;
        for (int i = 0; i < n; i++) {
            int r2 = resolve(&t, &its[i], names, ncols, lnorm, nl, state, msg, size);
            if (r2 != 0) {
                rc = r2;
                goto cleanup;
            }
            if (its[i].col >= 0) continue;
            its[i].norm = normalize(&t, its[i].a, its[i].b);
            if (its[i].norm == NULL) goto cleanup;
            its[i].extra = ++nextra;
        }
    }
    /* PostgreSQL's rule: the DISTINCT ON expressions lead the ORDER BY */
    {
        bool skipped = false;
        for (int i = 0; i < no; i++) {
            bool member = false;
            for (int j = 0; j < nd && !member; j++)
                member = same(&o[i], &d[j]);
            if (!member) {
                skipped = true;
                continue;
            }
            if (skipped) goto mismatch;
        }
        for (int j = 0; j < nd && skipped; j++) {
            bool in_order = false;
            for (int i = 0; i < no && !in_order; i++)
                in_order = same(&o[i], &d[j]);
            if (!in_order) goto mismatch;
        }
    }
    /* the query */
    if (base_buf_printf(piece, prefix_len ? ", meridian_don(" : "WITH meridian_don(") != 0)
        goto cleanup;
    for (int c = 0; c < ncols; c++)
        if (base_buf_printf(piece, "%smeridian_c%d", c ? ", " : "", c + 1) != 0) goto cleanup;
    for (int x = 1; x <= nextra; x++)
        if (base_buf_printf(piece, ", meridian_x%d", x) != 0) goto cleanup;
    if (base_buf_printf(piece, ") AS (SELECT ") != 0 || append_span(piece, &t, lstart, lend) != 0)
        goto cleanup;
    for (int pass = 0; pass < 2; pass++) {
        item *its = pass == 0 ? d : o;
        int n = pass == 0 ? nd : no;
        for (int i = 0; i < n; i++) {
            if (its[i].col >= 0) continue;
            if (base_buf_printf(piece, ", (") != 0 ||
                append_span(piece, &t, its[i].a, its[i].b) != 0 || base_buf_printf(piece, ")") != 0)
                goto cleanup;
        }
    }
    if (base_buf_printf(piece, " ") != 0 || append_span(piece, &t, lend, body_end) != 0 ||
        base_buf_printf(piece, ") SELECT ") != 0)
        goto cleanup;
    for (int c = 0; c < ncols; c++) {
        if (base_buf_printf(piece, "%smeridian_c%d AS \"", c ? ", " : "", c + 1) != 0) goto cleanup;
        for (const char *q = names[c]; *q; q++)
            if ((*q == '"' && base_buf_append_byte(piece, '"') != 0) ||
                base_buf_append_byte(piece, (uint8_t)*q) != 0)
                goto cleanup;
        if (base_buf_append_byte(piece, '"') != 0) goto cleanup;
    }
    if (base_buf_printf(piece, " FROM (SELECT *, row_number() OVER (PARTITION BY ") != 0)
        goto cleanup;
    for (int j = 0; j < nd; j++)
        if ((j > 0 && base_buf_printf(piece, ", ") != 0) || append_ref(piece, &d[j]) != 0)
            goto cleanup;
    /* the DISTINCT ON items the ORDER BY lacks follow it, as PostgreSQL sorts */
    int no_written = no;
    for (int j = 0; j < nd && no_written > 0 && no < DON_ITEMS_MAX; j++) {
        bool in_order = false;
        for (int i = 0; i < no_written && !in_order; i++)
            in_order = same(&o[i], &d[j]);
        if (in_order) continue;
        o[no] = d[j];
        o[no++].norm = NULL; /* d[j] owns it */
    }
    if (no > 0 &&
        (base_buf_printf(piece, " ORDER BY ") != 0 || append_order(piece, &t, o, no) != 0))
        goto cleanup;
    if (base_buf_printf(piece, ") AS meridian_rn FROM meridian_don) WHERE meridian_rn = 1 "
                               "ORDER BY ") != 0)
        goto cleanup;
    if (no > 0) {
        if (append_order(piece, &t, o, no) != 0) goto cleanup;
    } else {
        /* PostgreSQL sorts by the DISTINCT ON expressions to find the groups */
        for (int j = 0; j < nd; j++)
            if ((j > 0 && base_buf_printf(piece, ", ") != 0) || append_ref(piece, &d[j]) != 0 ||
                base_buf_printf(piece, " NULLS LAST") != 0)
                goto cleanup;
    }
    if (tail < stop &&
        (base_buf_printf(piece, " ") != 0 || append_span(piece, &t, tail, stop) != 0))
        goto cleanup;
    rc = 0;
    goto cleanup;
mismatch:
    rc = refuse(state, msg, size, "42P10",
                "SELECT DISTINCT ON expressions must match initial ORDER BY expressions");
cleanup:
    sqlite3_finalize(probe);
    for (int i = 0; d && i < nd; i++)
        base_free(d[i].norm);
    for (int i = 0; o && i < no; i++) /* the appended ones hold NULL */
        base_free(o[i].norm);
    for (int i = 0; lnorm && i < DON_ITEMS_MAX; i++)
        base_free(lnorm[i]);
    for (int i = 0; names && i < DON_ITEMS_MAX; i++)
        base_free(names[i]);
    base_free(lnorm);
    base_free(names);
    base_free(d);
    base_free(o);
    base_buf_free(&b);
    return rc;
}

/* Where the query at sel ends as a compound's branch: the first token at
** its depth that is UNION / INTERSECT / EXCEPT, or one that ends the
** compound (ORDER BY, LIMIT... apply to all of it; ON CONFLICT, RETURNING,
** a closing parenthesis), or t->n. */
static size_t branch_end(const toks *t, size_t sel, bool tail_too) {
    int depth = 0;
    for (size_t i = sel + 1; i < t->n; i++) {
        const sqlv__token *k = &t->v[i];
        if (sqlv__tok_punct(k, '(')) depth++;
        if (sqlv__tok_punct(k, ')') && --depth < 0) return i;
        if (depth != 0) continue;
        if (sqlv__tok_is(k, "UNION") || sqlv__tok_is(k, "INTERSECT") ||
            sqlv__tok_is(k, "EXCEPT") || sqlv__tok_is(k, "RETURNING") ||
            (sqlv__tok_is(k, "ON") && i + 1 < t->n && sqlv__tok_is(&t->v[i + 1], "CONFLICT")) ||
            k->kind == SQLV__TOK_SEMI)
            return i;
        if (tail_too && ((sqlv__tok_is(k, "ORDER") && i + 1 < t->n &&
                          sqlv__tok_is(&t->v[i + 1], "BY")) ||
                         sqlv__tok_is(k, "LIMIT") || sqlv__tok_is(k, "OFFSET") ||
                         sqlv__tok_is(k, "FETCH")))
            return i;
    }
    return t->n;
}

/* The last SELECT DISTINCT ON of t (it contains no other), or t->n. */
static size_t last_occurrence(const toks *t) {
    for (size_t i = t->n; i-- > 2;)
        if (sqlv__tok_is(&t->v[i], "ON") && sqlv__tok_is(&t->v[i - 1], "DISTINCT")) return i - 2;
    return t->n;
}

bool sqlv__distinct_on_wanted(const char *text, size_t len) {
    const char *p = text, *end = text + len;
    sqlv__token prev = {SQLV__TOK_END, NULL, 0};
    for (size_t n = 0; n < SQLV__DIALECT_TOKENS_MAX; n++) {
        sqlv__token k = sqlv__lex_next(&p, end);
        if (k.kind == SQLV__TOK_END) return false;
        if (sqlv__tok_is(&prev, "DISTINCT") && sqlv__tok_is(&k, "ON")) return true;
        prev = k;
    }
    return false;
}

int sqlv__distinct_on_apply(sqlv_session *s, const char *text, size_t len, char **out,
                            char state[6], char *msg, size_t size) {
    toks t = {0};
    char *cur = NULL; /* the text rewritten so far; owner: here */
    base_buf piece = {0}, next = {0};
    int rc = 0;
    *out = NULL;
    /* most statements have none: a pass that keeps nothing first */
    if (!sqlv__distinct_on_wanted(text, len)) return 0;
    const char *p, *end;
    /* one occurrence at a time, the last first (it contains no other) */
    bool done = false;
    for (int round = 0; round <= DON_ROUNDS_MAX && !done; round++) {
        const char *txt = cur ? cur : text;
        size_t tlen = cur ? strlen(cur) : len;
        t.n = 0;
        p = txt;
        end = txt + tlen;
        for (;;) {
            sqlv__token k = sqlv__lex_next(&p, end);
            if (k.kind == SQLV__TOK_END) break;
            if (t.n >= SQLV__DIALECT_TOKENS_MAX) {
                rc = refuse(state, msg, size, "54000", "statement too long");
                goto cleanup;
            }
            if (push(&t, k) != 0) goto nomem;
        }
        size_t sel = last_occurrence(&t);
        done = sel == t.n;
        if (done) break;
        if (round == DON_ROUNDS_MAX) {
            rc = refuse(state, msg, size, "54000", "too many DISTINCT ON in one statement");
            goto cleanup;
        }
        size_t stop = t.n;
        bool nested = false, branch = false;
        const char *prefix = "";
        size_t prefix_len = 0;
        if (!sqlv__tok_is(&t.v[sel], "SELECT") || sel + 3 >= t.n ||
            !sqlv__tok_punct(&t.v[sel + 3], '('))
            goto unsupported;
        /* a branch of UNION / INTERSECT / EXCEPT: after one of them, or
        ** before one at its own depth */
        size_t bend = branch_end(&t, sel, false);
        if (bend < t.n && (sqlv__tok_is(&t.v[bend], "UNION") ||
                           sqlv__tok_is(&t.v[bend], "INTERSECT") ||
                           sqlv__tok_is(&t.v[bend], "EXCEPT")))
            branch = true;
        if (sel > 0 && (sqlv__tok_is(&t.v[sel - 1], "UNION") || sqlv__tok_is(&t.v[sel - 1], "ALL") ||
                        sqlv__tok_is(&t.v[sel - 1], "INTERSECT") ||
                        sqlv__tok_is(&t.v[sel - 1], "EXCEPT") ||
                        (sqlv__tok_is(&t.v[sel - 1], "DISTINCT") && sel > 1 &&
                         sqlv__tok_is(&t.v[sel - 2], "UNION"))))
            branch = true;
        if (branch) {
            /* SELECT * FROM (the rewrite): a compound's branch cannot
            ** begin with WITH in SQLite; an ORDER BY or LIMIT after the
            ** branch is the compound's */
            stop = branch_end(&t, sel, true);
            nested = true;
        } else if (sel > 0 && sqlv__tok_punct(&t.v[sel - 1], '(')) {
            stop = matching(&t, sel - 1);
            if (stop == t.n) goto unsupported;
            nested = true;
        } else if (sel > 0 && sqlv__tok_is(&t.v[0], "INSERT")) {
            /* INSERT INTO t [(cols)] SELECT DISTINCT ON ... [ON CONFLICT | RETURNING] */
            int depth = 0;
            for (size_t i = 0; i < t.n; i++) {
                if (sqlv__tok_punct(&t.v[i], '(')) depth++;
                if (sqlv__tok_punct(&t.v[i], ')')) depth--;
                if (i == sel && depth != 0) goto unsupported;
                if (i <= sel || depth != 0) continue;
                if (sqlv__tok_is(&t.v[i], "RETURNING") ||
                    (sqlv__tok_is(&t.v[i], "ON") && i + 1 < t.n &&
                     sqlv__tok_is(&t.v[i + 1], "CONFLICT"))) {
                    stop = i;
                    break;
                }
            }
        } else if (sel > 0) {
            /* WITH ... SELECT DISTINCT ON: the statement's main query */
            int depth = 0;
            for (size_t i = 0; i < sel; i++) {
                if (sqlv__tok_punct(&t.v[i], '(')) depth++;
                if (sqlv__tok_punct(&t.v[i], ')')) depth--;
            }
            if (!sqlv__tok_is(&t.v[0], "WITH") || depth != 0 ||
                !sqlv__tok_punct(&t.v[sel - 1], ')'))
                goto unsupported;
            prefix = txt;
            prefix_len = (size_t)(t.v[sel].start - txt);
        }
        base_buf_reset(&piece);
        if (branch && base_buf_printf(&piece, "SELECT * FROM (") != 0) goto nomem;
        rc = rewrite_one(s, &t, sel, stop, prefix, prefix_len, nested, &piece, state, msg, size);
        if (rc != 0) goto cleanup;
        if (branch && base_buf_printf(&piece, ")") != 0) goto nomem;
        /* before it, the piece, after it */
        base_buf_reset(&next);
        const char *after = stop < t.n ? t.v[stop].start : end;
        if (append(&next, txt, (size_t)(t.v[sel].start - txt)) != 0 ||
            append(&next, (const char *)piece.data, piece.len) != 0 ||
            (stop < t.n && base_buf_printf(&next, " ") != 0) ||
            append(&next, after, (size_t)(end - after)) != 0 || base_buf_append_byte(&next, 0) != 0)
            goto nomem;
        base_free(cur);
        cur = (char *)next.data;
        next = (base_buf){0};
    }
    *out = cur;
    cur = NULL;
    rc = 0;
    goto cleanup;
unsupported:
    rc = refuse(state, msg, size, "0A000",
                "DISTINCT ON is supported in a statement's own SELECT, a parenthesized "
                "subquery or a WITH query, not here yet");
    goto cleanup;
nomem:
    rc = SQLV_ERR_NOMEM;
cleanup:
    base_free(cur);
    base_free(t.v);
    base_buf_free(&piece);
    base_buf_free(&next);
    return rc;
}
