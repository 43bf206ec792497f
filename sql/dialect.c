/*
** The PostgreSQL dialect rewriter: a pass over one statement's tokens
** (sql_lex.h) before SQLite's parser sees it. See sql_dialect.h for the
** rewrites.
**
** Invariants:
**   - only whole tokens are rewritten: the text between tokens (space,
**     comments) and every string, quoted identifier and dollar-quoted
**     string is copied byte for byte; so "::" or "public." inside them
**     stays as is.
**   - every loop is bounded by the token count (SQLV__DIALECT_TOKENS_MAX).
**   - the output of a rewrite contains nothing the rewriter would rewrite
**     again ("CAST(", "LIMIT -1", "MATCH"), so rewriting twice is harmless.
*/
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "sql_dialect.h"
#include "sql_lex.h"

typedef struct tok {
    sqlv__token_kind kind;
    const char *s; /* borrowed from the input or a static string */
    size_t len;
    const char *ws; /* space/comments before the token */
    size_t wslen;
} tok;

typedef struct toks {
    tok *v;
    size_t n, cap;
} toks;

static int push(toks *t, tok x) {
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        tok *nv = base_realloc(t->v, ncap * sizeof(*nv));
        if (nv == NULL) return -1;
        t->v = nv;
        t->cap = ncap;
    }
    t->v[t->n++] = x;
    return 0;
}

/* Insert x at index at (0..n). */
static int insert_at(toks *t, size_t at, tok x) {
    if (push(t, x) != 0) return -1;
    memmove(&t->v[at + 1], &t->v[at], (t->n - 1 - at) * sizeof(*t->v));
    t->v[at] = x;
    return 0;
}

static tok mk(sqlv__token_kind kind, const char *s, const char *ws) {
    tok x = {kind, s, strlen(s), ws, strlen(ws)};
    return x;
}

static bool is(const tok *t, const char *word) {
    sqlv__token k = {t->kind, t->s, t->len};
    return sqlv__tok_is(&k, word);
}
static bool punct(const tok *t, char c) { return t->kind == SQLV__TOK_PUNCT && t->s[0] == c; }
static bool identish(const tok *t) {
    return t->kind == SQLV__TOK_WORD || t->kind == SQLV__TOK_QUOTED;
}
static int ident(const tok *t, char *out, size_t size) {
    sqlv__token k = {t->kind, t->s, t->len};
    return sqlv__tok_ident(&k, out, size);
}

static const char *const cast_types[][2] = {
    {"int", "INTEGER"},          {"int4", "INTEGER"},
    {"integer", "INTEGER"},      {"serial", "INTEGER"},
    {"bigint", "BIGINT"},        {"int8", "BIGINT"},
    {"bigserial", "BIGINT"},     {"smallint", "SMALLINT"},
    {"int2", "SMALLINT"},        {"oid", "BIGINT"},
    {"text", "TEXT"},            {"varchar", "TEXT"},
    {"character varying", "TEXT"}, {"char", "TEXT"},
    {"character", "TEXT"},       {"bpchar", "TEXT"},
    {"name", "TEXT"},            {"regclass", "TEXT"},
    {"regtype", "TEXT"},         {"regproc", "TEXT"},
    {"uuid", "TEXT"},            {"json", "TEXT"},
    {"jsonb", "TEXT"},           {"date", "TEXT"},
    {"time", "TEXT"},            {"timetz", "TEXT"},
    {"timestamp", "TEXT"},       {"timestamptz", "TEXT"},
    {"interval", "TEXT"},        {"unknown", "TEXT"},
    {"numeric", "NUMERIC"},      {"decimal", "NUMERIC"},
    {"float8", "REAL"},          {"double precision", "REAL"},
    {"float", "REAL"},           {"float4", "REAL"},
    {"real", "REAL"},            {"boolean", "BOOL"},
    {"bool", "BOOL"},            {"bytea", "BLOB"},
};

const char *sqlv__dialect_cast_type(const char *pg_type) {
    for (size_t i = 0; i < BASE_ARRAY_LEN(cast_types); i++)
        if (strcasecmp(pg_type, cast_types[i][0]) == 0) return cast_types[i][1];
    return NULL;
}

/* Words before '(' that are not function names. */
static bool is_keyword(const tok *t) {
    static const char *const kw[] = {
        "SELECT", "WHERE",  "AND",    "OR",     "NOT",    "IN",       "ON",     "AS",
        "WHEN",   "THEN",   "ELSE",   "VALUES", "BY",     "HAVING",   "FROM",   "JOIN",
        "SET",    "IS",     "LIKE",   "BETWEEN", "CASE",  "DISTINCT", "ALL",    "ANY",
        "USING",  "LIMIT",  "OFFSET", "WITH",   "INTO",   "TABLE",    "UNION",  "EXCEPT",
        "INTERSECT", "RETURNING", "MATCH", "GLOB", "ESCAPE", "SOME", "OVER", "FILTER"};
    if (t->kind != SQLV__TOK_WORD) return false;
    for (size_t i = 0; i < BASE_ARRAY_LEN(kw); i++)
        if (is(t, kw[i])) return true;
    return false;
}

/* The index in out where the operand ending at out->v[n-1] starts; -1 if
** there is none. */
static long operand_start(const toks *out) {
    if (out->n == 0) return -1;
    size_t j = out->n - 1;
    const tok *t = &out->v[j];
    if (punct(t, ')')) {
        int depth = 0;
        for (size_t k = j + 1; k-- > 0;) {
            if (punct(&out->v[k], ')')) depth++;
            if (punct(&out->v[k], '(')) depth--;
            if (depth == 0) {
                /* f(...), schema.f(...) */
                if (k > 0 && identish(&out->v[k - 1]) && !is_keyword(&out->v[k - 1])) {
                    k--;
                    while (k >= 2 && punct(&out->v[k - 1], '.') && identish(&out->v[k - 2]))
                        k -= 2;
                }
                return (long)k;
            }
        }
        return -1;
    }
    if (is(t, "END")) { /* CASE ... END */
        int depth = 0;
        for (size_t k = j + 1; k-- > 0;) {
            if (is(&out->v[k], "END")) depth++;
            if (is(&out->v[k], "CASE")) depth--;
            if (depth == 0) return (long)k;
        }
        return -1;
    }
    if (t->kind == SQLV__TOK_STRING || t->kind == SQLV__TOK_OTHER) return (long)j;
    if (identish(t) && !is_keyword(t)) {
        size_t k = j;
        while (k >= 2 && punct(&out->v[k - 1], '.') && identish(&out->v[k - 2]))
            k -= 2;
        return (long)k;
    }
    return -1;
}

static int reject(sqlv__rewrite *out, const char *state, const char *fmt, const char *arg,
                  size_t arglen) {
    base_strlcpy(out->sqlstate, state, sizeof(out->sqlstate));
    snprintf(out->message, sizeof(out->message), fmt, (int)BASE_MIN(arglen, 60), arg);
    return 1;
}

/* Parse a type name at in[*i] (after "::"); advances *i past it. The
** lower-case base name goes to name. 0 ok, 1 rejected. */
static int parse_type(const tok *in, size_t n, size_t *i, char *name, size_t size,
                      sqlv__rewrite *out) {
    size_t k = *i;
    char w[64];
    name[0] = 0;
    if (k >= n || ident(&in[k], w, sizeof(w)) != 0)
        return reject(out, "42601", "syntax error at or near \"%.*s\"", k < n ? in[k].s : "::",
                      k < n ? in[k].len : 2);
    /* pg_catalog.int4 */
    if (k + 2 < n && (strcasecmp(w, "pg_catalog") == 0) && punct(&in[k + 1], '.')) {
        k += 2;
        if (ident(&in[k], w, sizeof(w)) != 0)
            return reject(out, "42601", "syntax error at or near \"%.*s\"", in[k].s, in[k].len);
    }
    for (char *c = w; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    base_strlcpy(name, w, size);
    k++;
    if ((strcmp(w, "double") == 0 && k < n && is(&in[k], "precision")) ||
        (strcmp(w, "character") == 0 && k < n && is(&in[k], "varying"))) {
        base_strlcpy(name, strcmp(w, "double") == 0 ? "double precision" : "character varying",
                     size);
        k++;
    }
    if (k < n && punct(&in[k], '(')) { /* modifiers: (n), (p,s) */
        int depth = 0;
        for (; k < n; k++) {
            if (punct(&in[k], '(')) depth++;
            if (punct(&in[k], ')') && --depth == 0) break;
        }
        if (k == n) return reject(out, "42601", "syntax error at end of input%.*s", "", 0);
        k++;
    }
    if ((strcmp(w, "timestamp") == 0 || strcmp(w, "time") == 0) && k + 2 < n &&
        (is(&in[k], "with") || is(&in[k], "without")) && is(&in[k + 1], "time") &&
        is(&in[k + 2], "zone"))
        k += 3;
    if (k < n && in[k].kind == SQLV__TOK_QUOTED && in[k].len == 2 && in[k].s[0] == '[') {
        base_strlcpy(name, "text", size); /* an array: its text form */
        k++;
    }
    *i = k;
    return 0;
}

/* A dollar-quoted string token ($tag$body$tag$, tag possibly empty) as a
** '...' literal with quotes doubled. An unterminated one (the lexer ran to
** the end of input) is copied as it is, for SQLite to refuse. */
static int append_dollar_string(base_buf *b, const char *s, size_t len) {
    const char *close = memchr(s + 1, '$', len - 1);
    size_t taglen = close != NULL ? (size_t)(close - s) + 1 : 0;
    if (taglen == 0 || len < 2 * taglen || memcmp(s + len - taglen, s, taglen) != 0)
        return base_buf_append(b, s, len);
    if (base_buf_append_byte(b, '\'') != 0) return -1;
    for (size_t i = taglen; i < len - taglen; i++) {
        if (s[i] == '\'' && base_buf_append_byte(b, '\'') != 0) return -1;
        if (base_buf_append_byte(b, (uint8_t)s[i]) != 0) return -1;
    }
    return base_buf_append_byte(b, '\'');
}

static bool is_create_table(const tok *in, size_t n) {
    size_t k = 1;
    if (n < 2 || !is(&in[0], "CREATE")) return false;
    if (is(&in[k], "TEMP") || is(&in[k], "TEMPORARY") || is(&in[k], "UNLOGGED")) k++;
    return k < n && is(&in[k], "TABLE");
}

int sqlv__dialect_rewrite(const char *text, size_t len, sqlv__rewrite *out) {
    toks in = {0}, o = {0};
    base_buf b = {0};
    int rc = -1;
    const char *p = text, *end = text + len;
    memset(out, 0, sizeof(*out));
    for (;;) {
        const char *before = p;
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        if (in.n >= SQLV__DIALECT_TOKENS_MAX) {
            rc = reject(out, "54000", "statement too long%.*s", "", 0);
            goto cleanup;
        }
        tok x = {t.kind, t.start, t.len, before, (size_t)(t.start - before)};
        if (push(&in, x) != 0) goto cleanup;
    }
    const char *trailing = p; /* never past end; space after the last token */
    (void)trailing;
    bool create = in.n > 0 && is(&in.v[0], "CREATE");
    bool create_table = is_create_table(in.v, in.n);
    int depth = 0;
    bool saw_columns = false; /* CREATE TABLE: the column list closed */
    bool from_seen = false;   /* a depth-0 FROM was seen */
    size_t series_close = SIZE_MAX; /* index of generate_series' ')', or none */
    size_t series_skip_to = 0;
    tok series_alias = {0};
    for (size_t i = 0; i < in.n; i++) {
        tok *t = &in.v[i];
        tok *next = i + 1 < in.n ? &in.v[i + 1] : NULL;
        const tok *prev = o.n > 0 ? &o.v[o.n - 1] : NULL;
        if (punct(t, '(')) depth++;
        if (punct(t, ')')) {
            depth--;
            if (create_table && depth == 0) saw_columns = true;
        }
        /* the end of a rewritten generate_series(...) [AS] alias */
        if (series_close == i) {
            if (push(&o, *t) != 0 || push(&o, mk(SQLV__TOK_PUNCT, ")", "")) != 0 ||
                push(&o, mk(SQLV__TOK_WORD, "AS", " ")) != 0 || push(&o, series_alias) != 0)
                goto cleanup;
            series_close = SIZE_MAX;
            i = series_skip_to;
            continue;
        }
        /* FROM generate_series(a, b) [AS] x: PostgreSQL names the column x */
        if (series_close == SIZE_MAX && is(t, "generate_series") && next && punct(next, '(') && prev &&
            (is(prev, "FROM") || is(prev, "JOIN") || is(prev, "LATERAL") ||
             (punct(prev, ',') && depth == 0 && from_seen))) {
            int d = 0;
            size_t k = i + 1;
            for (; k < in.n; k++) {
                if (punct(&in.v[k], '(')) d++;
                if (punct(&in.v[k], ')') && --d == 0) break;
            }
            if (k < in.n) {
                size_t a = k + 1;
                series_alias = mk(SQLV__TOK_WORD, "generate_series", " ");
                series_skip_to = k;
                if (a < in.n && is(&in.v[a], "AS")) a++;
                if (a < in.n && identish(&in.v[a]) && !is_keyword(&in.v[a]) &&
                    !is(&in.v[a], "WHERE") && !is(&in.v[a], "ON") && !is(&in.v[a], "LEFT") &&
                    !is(&in.v[a], "CROSS") && !is(&in.v[a], "INNER") &&
                    !is(&in.v[a], "ORDER") && !is(&in.v[a], "GROUP") &&
                    !is(&in.v[a], "NATURAL") && !is(&in.v[a], "WINDOW")) {
                    series_alias = in.v[a];
                    series_alias.ws = " ";
                    series_alias.wslen = 1;
                    series_skip_to = a;
                }
                tok open = mk(SQLV__TOK_PUNCT, "(", "");
                open.ws = t->ws;
                open.wslen = t->wslen;
                tok col = series_alias;
                if (push(&o, open) != 0 || push(&o, mk(SQLV__TOK_WORD, "SELECT", "")) != 0 ||
                    push(&o, mk(SQLV__TOK_WORD, "value", " ")) != 0 ||
                    push(&o, mk(SQLV__TOK_WORD, "AS", " ")) != 0 || push(&o, col) != 0 ||
                    push(&o, mk(SQLV__TOK_WORD, "FROM", " ")) != 0 ||
                    push(&o, mk(SQLV__TOK_WORD, "meridian_series", " ")) != 0)
                    goto cleanup;
                series_close = k;
                continue;
            }
        }
        if (is(t, "FROM") && depth == 0) from_seen = true;
        /* x::type */
        if (punct(t, ':') && next && punct(next, ':') && next->s == t->s + 1) {
            char name[64];
            size_t k = i + 2;
            long start = operand_start(&o);
            if (start < 0) {
                rc = reject(out, "42601", "syntax error at or near \"%.*s\"", "::", 2);
                goto cleanup;
            }
            rc = parse_type(in.v, in.n, &k, name, sizeof(name), out);
            if (rc != 0) goto cleanup;
            rc = -1;
            const char *ty = sqlv__dialect_cast_type(name);
            if (ty == NULL) {
                rc = reject(out, "42704", "type \"%.*s\" does not exist", name, strlen(name));
                goto cleanup;
            }
            tok *first = &o.v[start];
            const char *ws = first->ws;
            size_t wslen = first->wslen;
            first->ws = "";
            first->wslen = 0;
            bool boolean = strcmp(ty, "BOOL") == 0;
            tok open = mk(SQLV__TOK_PUNCT, "(", "");
            tok fn = mk(SQLV__TOK_WORD, boolean ? "meridian_bool" : "CAST", "");
            fn.ws = ws;
            fn.wslen = wslen;
            if (insert_at(&o, (size_t)start, open) != 0 || insert_at(&o, (size_t)start, fn) != 0)
                goto cleanup;
            if (!boolean) {
                if (push(&o, mk(SQLV__TOK_WORD, "AS", " ")) != 0 ||
                    push(&o, mk(SQLV__TOK_WORD, ty, " ")) != 0)
                    goto cleanup;
            }
            if (push(&o, mk(SQLV__TOK_PUNCT, ")", "")) != 0) goto cleanup;
            i = k - 1;
            continue;
        }
        /* public.t, pg_catalog.f */
        if (identish(t) && next && punct(next, '.') && i + 2 < in.n && identish(&in.v[i + 2]) &&
            !(prev && punct(prev, '.'))) {
            char w[64];
            if (ident(t, w, sizeof(w)) == 0 &&
                (strcasecmp(w, "public") == 0 || strcasecmp(w, "pg_catalog") == 0)) {
                in.v[i + 2].ws = t->ws;
                in.v[i + 2].wslen = t->wslen;
                i++;
                continue;
            }
            if (prev && (is(prev, "FROM") || is(prev, "JOIN") || is(prev, "INTO") ||
                         is(prev, "UPDATE") || is(prev, "TABLE")) &&
                strcmp(w, "information_schema") != 0) {
                rc = reject(out, "3F000", "schema \"%.*s\" does not exist", w, strlen(w));
                goto cleanup;
            }
        }
        /* COLLATE "C" */
        if (is(t, "COLLATE") && next) {
            char w[64];
            if (ident(next, w, sizeof(w)) == 0 &&
                (strcmp(w, "C") == 0 || strcmp(w, "POSIX") == 0 || strcasecmp(w, "default") == 0 ||
                 strcasecmp(w, "ucs_basic") == 0)) {
                i++;
                continue;
            }
        }
        /* ILIKE: MATCH calls the session's match(pattern, value) */
        if (is(t, "ILIKE")) {
            tok m = *t;
            m.s = "MATCH";
            m.len = 5;
            if (push(&o, m) != 0) goto cleanup;
            continue;
        }
        /* LIMIT ALL */
        if (is(t, "ALL") && prev && is(prev, "LIMIT")) {
            tok m = *t;
            m.s = "-1";
            m.len = 2;
            m.kind = SQLV__TOK_OTHER;
            if (push(&o, m) != 0) goto cleanup;
            continue;
        }
        /* CREATE TABLE t (...) WITH (fillfactor=100) */
        if (create_table && saw_columns && depth == 0 && is(t, "WITH") && next &&
            punct(next, '(')) {
            int d = 0;
            size_t k = i + 1;
            for (; k < in.n; k++) {
                if (punct(&in.v[k], '(')) d++;
                if (punct(&in.v[k], ')') && --d == 0) break;
            }
            if (k == in.n) {
                rc = reject(out, "42601", "syntax error at end of input%.*s", "", 0);
                goto cleanup;
            }
            out->storage_options_ignored = true;
            i = k;
            continue;
        }
        /* bare CURRENT_TIMESTAMP, current_user... */
        if (!create && t->kind == SQLV__TOK_WORD && !(next && punct(next, '(')) &&
            !(prev && punct(prev, '.'))) {
            static const char *const bare[][2] = {
                {"current_timestamp", "now()"},      {"localtimestamp", "now()"},
                {"current_user", "current_user()"}, {"session_user", "session_user()"},
                {"current_role", "current_user()"}, {"current_schema", "current_schema()"},
                {"current_catalog", "current_database()"}};
            bool done = false;
            for (size_t b2 = 0; b2 < BASE_ARRAY_LEN(bare) && !done; b2++) {
                if (!is(t, bare[b2][0])) continue;
                tok m = *t;
                m.s = bare[b2][1];
                m.len = strlen(m.s);
                if (push(&o, m) != 0) goto cleanup;
                done = true;
            }
            if (done) continue;
        }
        if (push(&o, *t) != 0) goto cleanup;
    }
    for (size_t i = 0; i < o.n; i++) {
        if (base_buf_append(&b, o.v[i].ws, o.v[i].wslen) != 0) goto cleanup;
        if (o.v[i].kind == SQLV__TOK_STRING && o.v[i].len > 0 && o.v[i].s[0] == '$') {
            /* SQLite has no dollar quoting ($$...$$ would be a parameter): emit
            ** the body as a standard string literal. */
            if (append_dollar_string(&b, o.v[i].s, o.v[i].len) != 0) goto cleanup;
            continue;
        }
        if (base_buf_append(&b, o.v[i].s, o.v[i].len) != 0) goto cleanup;
    }
    if (base_buf_append(&b, "", 1) != 0) goto cleanup;
    out->text = (char *)b.data;
    out->len = b.len - 1;
    b.data = NULL;
    rc = 0;
cleanup:
    base_buf_free(&b);
    base_free(in.v);
    base_free(o.v);
    return rc;
}
