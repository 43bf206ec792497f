/*
** Views (docs/sql.md "Views"): CREATE [OR REPLACE] VIEW and DROP VIEW.
**
** A view is a relation of the replicated catalog like a table: a row of
** table 1 keyed by its name (so a table and a view never share a name),
** written and versioned as a table's (sqlv__catalog_put bumps the catalog
** version), loaded into each catalog snapshot as a descriptor with is_view
** set. Each session declares it in its SQLite connection as a plain SQLite
** view over the virtual tables (session.c, sync_tables): SQLite expands
** it into every query that names it, so it has no executor of its own.
**
** Row format (sql_int.h, "views"):
**   0x03 | u32 id | u32 n | SQLite declaration | u32 n | query |
**   u16 ncols | ncols x (u16 n | name | u16 n | declared type) |
**   u16 ndeps | ndeps x u32 id                               (all BE)
** The query is stored after the dialect rewrite (what SQLite runs), so a
** later change of the rewriter never changes what an existing view means,
** as PostgreSQL stores a parsed tree, not text.
**
** Invariants:
**   - a view's descriptor has no key, no index and no rows: npk 0,
**     nindexes 0; its id is a table id (never reused) so its pg_class OID
**     and its privilege object are a table's.
**   - view_deps lists the relations the query reads directly (SQLite's
**     authorizer reads outside a view while it is prepared); DROP of one of
**     them fails with 2BP01 unless CASCADE drops the view too.
**   - every loop is bounded: SQLV__COLUMNS_MAX columns, SQLV__VIEW_DEPS_MAX
**     dependencies, the catalog's SQLV__TABLES_MAX relations.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql_int.h"
#include "sql_lex.h"

#define VIEW_QUERY_TOKENS_MAX (1 << 22) /* tokens scanned for WITH CHECK OPTION */

/* ---- row format ---------------------------------------------------------------- */

static int put_u32(base_buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return base_buf_append(b, x, 4);
}

static int put_u16(base_buf *b, size_t v) {
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return base_buf_append(b, x, 2);
}

static int put_text32(base_buf *b, const char *s) {
    size_t n = strlen(s);
    return put_u32(b, (uint32_t)n) != 0 || base_buf_append(b, s, n) != 0 ? -1 : 0;
}

static int put_text16(base_buf *b, const char *s) {
    size_t n = strlen(s);
    if (n > 0xffff) n = 0xffff; /* names are at most 63 characters; types short */
    return put_u16(b, n) != 0 || base_buf_append(b, s, n) != 0 ? -1 : 0;
}

int sqlv__view_encode(const sqlv__table *t, base_buf *out) {
    if (base_buf_append_byte(out, SQLV__CATALOG_VIEW_VERSION) != 0 || put_u32(out, t->id) != 0 ||
        put_text32(out, t->create_sql) != 0 || put_text32(out, t->view_query) != 0 ||
        put_u16(out, (size_t)t->ncols) != 0)
        return SQLV_ERR_NOMEM;
    for (int i = 0; i < t->ncols; i++)
        if (put_text16(out, t->cols[i].name) != 0 || put_text16(out, t->cols[i].decl_type) != 0)
            return SQLV_ERR_NOMEM;
    if (put_u16(out, (size_t)t->nview_deps) != 0) return SQLV_ERR_NOMEM;
    for (int i = 0; i < t->nview_deps; i++)
        if (put_u32(out, t->view_deps[i]) != 0) return SQLV_ERR_NOMEM;
    return 0;
}

typedef struct reader {
    const uint8_t *p, *end;
    bool bad;
} reader;

static uint32_t get_n(reader *r, int bytes) {
    uint32_t v = 0;
    if (r->bad || r->end - r->p < bytes) {
        r->bad = true;
        return 0;
    }
    for (int i = 0; i < bytes; i++)
        v = v << 8 | *r->p++;
    return v;
}

/* A text of the given length prefix as a new string (owner: caller); NULL
** with r->bad when malformed, NULL alone when out of memory. */
static char *get_text(reader *r, int bytes) {
    uint32_t n = get_n(r, bytes);
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    char *s = base_strndup((const char *)r->p, n);
    r->p += n;
    return s;
}

/* The name of the view in its declaration: CREATE VIEW main."name"(... */
static char *name_of_declaration(const char *sql) {
    const char *q = strstr(sql, "main.\"");
    if (q == NULL) return NULL;
    q += 6;
    base_buf b = {0};
    for (; *q; q++) {
        if (*q == '"' && q[1] == '"') q++;
        else if (*q == '"') break;
        if (base_buf_append_byte(&b, (uint8_t)*q) != 0) {
            base_buf_free(&b);
            return NULL;
        }
    }
    if (*q != '"' || base_buf_append_byte(&b, 0) != 0) {
        base_buf_free(&b);
        return NULL;
    }
    return (char *)b.data; /* owner: caller */
}

int sqlv__view_decode(const uint8_t *v, size_t vl, sqlv__table **out) {
    reader r = {v, v + vl, false};
    sqlv__table *t = base_calloc(1, sizeof(*t));
    int rc = SQLV_ERR_NOMEM;
    if (t == NULL) return SQLV_ERR_NOMEM;
    t->is_view = true;
    t->next_index_id = SQLV__INDEX_FIRST_ID;
    if (get_n(&r, 1) != SQLV__CATALOG_VIEW_VERSION) goto bad;
    t->id = get_n(&r, 4);
    t->create_sql = get_text(&r, 4);
    if (t->create_sql == NULL) goto fail;
    t->view_query = get_text(&r, 4);
    if (t->view_query == NULL) goto fail;
    uint32_t ncols = get_n(&r, 2);
    if (r.bad || ncols > SQLV__COLUMNS_MAX) goto bad;
    t->cols = base_calloc(ncols ? ncols : 1, sizeof(*t->cols));
    if (t->cols == NULL) goto fail;
    for (uint32_t i = 0; i < ncols; i++) {
        t->ncols = (int)i + 1;
        t->cols[i].name = get_text(&r, 2);
        if (t->cols[i].name == NULL) goto fail;
        t->cols[i].decl_type = get_text(&r, 2);
        if (t->cols[i].decl_type == NULL) goto fail;
        t->cols[i].cls = sqlv__class_of_decl(t->cols[i].decl_type);
    }
    uint32_t ndeps = get_n(&r, 2);
    if (r.bad || ndeps > SQLV__VIEW_DEPS_MAX) goto bad;
    t->view_deps = base_calloc(ndeps ? ndeps : 1, sizeof(*t->view_deps));
    if (t->view_deps == NULL) goto fail;
    for (uint32_t i = 0; i < ndeps; i++)
        t->view_deps[i] = get_n(&r, 4);
    t->nview_deps = (int)ndeps;
    if (r.bad || r.p != r.end) goto bad;
    t->pk = base_calloc(1, sizeof(int));
    t->name = name_of_declaration(t->create_sql);
    if (t->pk == NULL) goto fail;
    if (t->name == NULL) goto bad;
    t->shape = sqlv__table_shape(t);
    *out = t;
    return 0;
fail:
    if (r.bad) goto bad;
    sqlv__table_free(t);
    return rc;
bad:
    sqlv__table_free(t);
    return 1;
}

/* ---- dependencies ------------------------------------------------------------------ */

static bool has_id(const uint32_t *ids, int n, uint32_t id) {
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

int sqlv__view_dependents(const sqlv__table *const *rels, int n, const uint32_t *ids, int nids,
                          uint32_t *deps, int *ndeps, int deps_cap) {
    /* a fixed point: each pass adds the views reading one already in; at
    ** most n passes add something */
    for (int pass = 0; pass <= n; pass++) {
        bool added = false;
        for (int i = 0; i < n; i++) {
            const sqlv__table *v = rels[i];
            if (!v->is_view || has_id(ids, nids, v->id) || has_id(deps, *ndeps, v->id)) continue;
            bool reads = false;
            for (int d = 0; d < v->nview_deps && !reads; d++)
                reads = has_id(ids, nids, v->view_deps[d]) || has_id(deps, *ndeps, v->view_deps[d]);
            if (!reads) continue;
            if (*ndeps >= deps_cap) return 1;
            deps[(*ndeps)++] = v->id;
            added = true;
        }
        if (!added) break;
    }
    return 0;
}

/* ---- CREATE VIEW's reads ---------------------------------------------------------- */

struct sqlv__view_reads {
    char names[SQLV__VIEW_DEPS_MAX][SQLV__NAME_BYTES_MAX * 4 + 1];
    int n;
    bool overflow;
};

void sqlv__view_note_read(sqlv_session *s, const char *table) {
    struct sqlv__view_reads *v = s->view_reads;
    if (v == NULL || table == NULL) return;
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->names[i], table) == 0) return;
    if (v->n == SQLV__VIEW_DEPS_MAX) {
        v->overflow = true;
        return;
    }
    base_strlcpy(v->names[v->n++], table, sizeof(v->names[0]));
}

int sqlv__view_reads_begin(sqlv_session *s) {
    s->view_reads = base_calloc(1, sizeof(*s->view_reads));
    return s->view_reads ? 0 : SQLV_ERR_NOMEM;
}

void sqlv__view_reads_end(sqlv_session *s) {
    base_free(s->view_reads);
    s->view_reads = NULL;
}

/* ---- the descriptor -------------------------------------------------------------- */

static int append_quoted(base_buf *b, const char *name) {
    if (base_buf_append_byte(b, '"') != 0) return -1;
    for (const char *c = name; *c; c++) {
        if (*c == '"' && base_buf_append_byte(b, '"') != 0) return -1;
        if (base_buf_append_byte(b, (uint8_t)*c) != 0) return -1;
    }
    return base_buf_append_byte(b, '"');
}

int sqlv__view_make(sqlv_session *s, const char *name,
                    char (*colnames)[SQLV__NAME_BYTES_MAX * 4 + 1], int ncolnames,
                    const char *query, sqlite3_stmt *st, sqlv__table **out, char state[6],
                    char *msg, size_t size) {
    sqlv__table *t = base_calloc(1, sizeof(*t));
    base_buf decl = {0};
    int rc = SQLV_ERR_NOMEM;
    int ncols = sqlite3_column_count(st);
    if (t == NULL) return SQLV_ERR_NOMEM;
    t->is_view = true;
    t->next_index_id = SQLV__INDEX_FIRST_ID;
    if (ncols == 0) {
        base_strlcpy(state, "42601", 6);
        snprintf(msg, size, "a view's query must return rows (SELECT, VALUES, WITH ... SELECT)");
        rc = 1;
        goto done;
    }
    if (ncolnames > ncols) {
        base_strlcpy(state, "42601", 6);
        snprintf(msg, size, "CREATE VIEW specifies more column names than columns");
        rc = 1;
        goto done;
    }
    if (ncols > SQLV__COLUMNS_MAX) {
        base_strlcpy(state, "54011", 6);
        snprintf(msg, size, "views can have at most %d columns", SQLV__COLUMNS_MAX);
        rc = 1;
        goto done;
    }
    t->name = base_strdup(name);
    t->view_query = base_strdup(query);
    t->cols = base_calloc((size_t)ncols, sizeof(*t->cols));
    t->pk = base_calloc(1, sizeof(int));
    if (t->name == NULL || t->view_query == NULL || t->cols == NULL || t->pk == NULL) goto done;
    for (int i = 0; i < ncols; i++) {
        const char *cn = i < ncolnames ? colnames[i] : sqlite3_column_name(st, i);
        const char *dt = sqlite3_column_decltype(st, i);
        t->ncols = i + 1;
        t->cols[i].name = base_strdup(cn ? cn : "?column?");
        t->cols[i].decl_type = base_strdup(dt ? dt : "TEXT");
        if (t->cols[i].name == NULL || t->cols[i].decl_type == NULL) goto done;
        t->cols[i].cls = sqlv__class_of_decl(t->cols[i].decl_type);
        for (int k = 0; k < i; k++) {
            if (sqlite3_stricmp(t->cols[k].name, t->cols[i].name) != 0) continue;
            base_strlcpy(state, "42701", 6);
            snprintf(msg, size, "column \"%.63s\" specified more than once", t->cols[i].name);
            rc = 1;
            goto done;
        }
    }
    /* what the query read directly: its dependencies */
    struct sqlv__view_reads *reads = s->view_reads;
    int nreads = reads ? reads->n : 0;
    if (reads != NULL && reads->overflow) {
        base_strlcpy(state, "54000", 6);
        snprintf(msg, size, "a view may read at most %d relations", SQLV__VIEW_DEPS_MAX);
        rc = 1;
        goto done;
    }
    t->view_deps = base_calloc((size_t)(nreads ? nreads : 1), sizeof(*t->view_deps));
    if (t->view_deps == NULL) goto done;
    for (int i = 0; i < nreads; i++) {
        uint32_t id = sqlv__session_find_id(s, reads->names[i]);
        if (id != 0 && !has_id(t->view_deps, t->nview_deps, id))
            t->view_deps[t->nview_deps++] = id; /* 0: a system catalog */
    }
    if (base_buf_append(&decl, "CREATE VIEW main.", 17) != 0 || append_quoted(&decl, name) != 0 ||
        base_buf_append_byte(&decl, '(') != 0)
        goto done;
    for (int i = 0; i < ncols; i++)
        if ((i > 0 && base_buf_append_byte(&decl, ',') != 0) ||
            append_quoted(&decl, t->cols[i].name) != 0)
            goto done;
    if (base_buf_append(&decl, ") AS ", 5) != 0 ||
        base_buf_append(&decl, query, strlen(query)) != 0 || base_buf_append_byte(&decl, 0) != 0)
        goto done;
    t->create_sql = (char *)decl.data;
    decl.data = NULL;
    t->shape = sqlv__table_shape(t);
    *out = t;
    t = NULL;
    rc = 0;
done:
    base_buf_free(&decl);
    sqlv__table_free(t);
    return rc;
}

/* ---- statements ---------------------------------------------------------------------- */

static void fold(char *s, const sqlv__token *t) {
    if (t->kind != SQLV__TOK_WORD) return;
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s + 32);
}

int sqlv__view_parse(const char *text, size_t len, sqlv__view_stmt *v, char state[6], char *msg,
                     size_t size) {
    const char *p = text, *end = text + len;
    memset(v, 0, sizeof(*v));
    base_strlcpy(state, "42601", 6);
    sqlv__token t = sqlv__lex_next(&p, end); /* CREATE */
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "OR")) {
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "REPLACE")) goto syntax;
        v->or_replace = true;
        t = sqlv__lex_next(&p, end);
    }
    if (sqlv__tok_is(&t, "TEMP") || sqlv__tok_is(&t, "TEMPORARY") ||
        sqlv__tok_is(&t, "RECURSIVE") || sqlv__tok_is(&t, "MATERIALIZED")) {
        base_strlcpy(state, "0A000", 6);
        snprintf(msg, size, "CREATE %.*s VIEW is not supported yet", (int)BASE_MIN(t.len, 20),
                 t.start);
        return 1;
    }
    if (!sqlv__tok_is(&t, "VIEW")) {
        if (!v->or_replace) goto syntax;
        base_strlcpy(state, "0A000", 6);
        snprintf(msg, size, "CREATE OR REPLACE %.*s is not supported yet",
                 (int)BASE_MIN(t.len, 40), t.start ? t.start : "");
        return 1;
    }
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_ident(&t, v->name, sizeof(v->name)) != 0) goto syntax;
    fold(v->name, &t);
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_punct(&t, '.')) {
        base_strlcpy(state, "0A000", 6);
        snprintf(msg, size, "schema-qualified view names are not supported yet");
        return 1;
    }
    if (sqlv__tok_punct(&t, '(')) {
        v->cols = base_calloc(SQLV__COLUMNS_MAX, sizeof(*v->cols));
        if (v->cols == NULL) {
            base_strlcpy(state, "53200", 6);
            snprintf(msg, size, "out of memory");
            return 1;
        }
        for (;;) {
            t = sqlv__lex_next(&p, end);
            if (v->ncols == SQLV__COLUMNS_MAX) {
                base_strlcpy(state, "54011", 6);
                snprintf(msg, size, "views can have at most %d columns", SQLV__COLUMNS_MAX);
                return 1;
            }
            if (sqlv__tok_ident(&t, v->cols[v->ncols], sizeof(v->cols[0])) != 0) goto syntax;
            fold(v->cols[v->ncols++], &t);
            t = sqlv__lex_next(&p, end);
            if (sqlv__tok_punct(&t, ')')) break;
            if (!sqlv__tok_punct(&t, ',')) goto syntax;
        }
        t = sqlv__lex_next(&p, end);
    }
    if (sqlv__tok_is(&t, "WITH")) {
        base_strlcpy(state, "0A000", 6);
        snprintf(msg, size, "view options (WITH (...)) are not supported yet");
        return 1;
    }
    if (!sqlv__tok_is(&t, "AS")) goto syntax;
    const char *q = sqlv__lex_skip_space(p, end);
    /* the query up to its end, without a trailing ';' or WITH CHECK OPTION */
    const char *qend = q, *scan = q;
    sqlv__token b = {SQLV__TOK_END, NULL, 0};
    for (int n = 0; n < VIEW_QUERY_TOKENS_MAX; n++) {
        sqlv__token c = sqlv__lex_next(&scan, end);
        if (c.kind == SQLV__TOK_END || c.kind == SQLV__TOK_SEMI) break;
        if (sqlv__tok_is(&b, "CHECK") && sqlv__tok_is(&c, "OPTION")) {
            base_strlcpy(state, "0A000", 6);
            snprintf(msg, size, "WITH CHECK OPTION is not supported (views are read-only)");
            return 1;
        }
        b = c;
        qend = c.start + c.len;
    }
    if (qend == q) goto syntax;
    v->query = q;
    v->query_len = (size_t)(qend - q);
    return 0;
syntax:
    if (t.len == 0)
        snprintf(msg, size, "syntax error at end of input");
    else
        snprintf(msg, size, "syntax error at or near \"%.*s\"", (int)BASE_MIN(t.len, 60), t.start);
    return 1;
}

int sqlv__view_drop_parse(const char *text, size_t len, sqlv__view_drop *d, char state[6],
                          char *msg, size_t size) {
    const char *p = text, *end = text + len;
    memset(d, 0, sizeof(*d));
    base_strlcpy(state, "42601", 6);
    sqlv__token t = sqlv__lex_next(&p, end); /* DROP */
    t = sqlv__lex_next(&p, end);             /* VIEW */
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "IF")) {
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "EXISTS")) goto syntax;
        d->if_exists = true;
        t = sqlv__lex_next(&p, end);
    }
    for (;;) {
        if (d->n == SQLV__VIEW_DROP_MAX) {
            base_strlcpy(state, "54000", 6);
            snprintf(msg, size, "too many views in DROP VIEW");
            return 1;
        }
        if (sqlv__tok_ident(&t, d->names[d->n], sizeof(d->names[0])) != 0) goto syntax;
        fold(d->names[d->n++], &t);
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_punct(&t, '.')) {
            base_strlcpy(state, "0A000", 6);
            snprintf(msg, size, "schema-qualified view names are not supported yet");
            return 1;
        }
        if (!sqlv__tok_punct(&t, ',')) break;
        t = sqlv__lex_next(&p, end);
    }
    if (sqlv__tok_is(&t, "CASCADE") || sqlv__tok_is(&t, "RESTRICT")) {
        d->cascade = sqlv__tok_is(&t, "CASCADE");
        t = sqlv__lex_next(&p, end);
    }
    if (t.kind == SQLV__TOK_SEMI) t = sqlv__lex_next(&p, end);
    if (t.kind != SQLV__TOK_END) goto syntax;
    return 0;
syntax:
    if (t.len == 0)
        snprintf(msg, size, "syntax error at end of input");
    else
        snprintf(msg, size, "syntax error at or near \"%.*s\"", (int)BASE_MIN(t.len, 60), t.start);
    return 1;
}
