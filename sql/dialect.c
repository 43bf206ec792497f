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
#include "sql_pgcatalog.h"
#include "sql_ranges.h"

typedef struct tok {
    sqlv__token_kind kind;
    const char *s; /* borrowed from the input or a static string */
    size_t len;
    const char *ws; /* space/comments before the token */
    size_t wslen;
} tok;

typedef struct owned {
    struct owned *next;
    char s[];
} owned;

typedef struct toks {
    tok *v;
    size_t n, cap;
    owned *owned; /* text of new tokens (E'...', ARRAY[...], unnest); owner: this */
} toks;

static void toks_free_owned(toks *t) {
    while (t->owned) {
        owned *n = t->owned->next;
        base_free(t->owned);
        t->owned = n;
    }
}

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

/* Whether the token at k (FROM, JOIN, INTO, UPDATE, TABLE) is followed by
** a relation name, so that "x.y" after it is schema.table. A FROM of
** "IS [NOT] DISTINCT FROM" or inside EXTRACT/SUBSTRING/TRIM/OVERLAY(...) is
** followed by an expression, where "x.y" is a qualified column. */
static bool names_relation(const tok *v, size_t k) {
    const tok *t = &v[k];
    if (!is(t, "JOIN") && !is(t, "INTO") && !is(t, "UPDATE") && !is(t, "TABLE")) {
        if (!is(t, "FROM")) return false;
        if (k > 0 && is(&v[k - 1], "DISTINCT")) return false;
        int depth = 0; /* the innermost open parenthesis before FROM */
        for (size_t j = k; j-- > 0;) {
            if (punct(&v[j], ')')) depth++;
            if (punct(&v[j], '(') && depth-- == 0) {
                if (j == 0) return true;
                const tok *f = &v[j - 1];
                return !(is(f, "EXTRACT") || is(f, "SUBSTRING") || is(f, "TRIM") ||
                         is(f, "OVERLAY") || is(f, "SUBSTR"));
            }
        }
        return true;
    }
    /* ON CONFLICT ... DO UPDATE SET, FOR UPDATE: no relation follows */
    return !(is(t, "UPDATE") && k > 0 && (is(&v[k - 1], "DO") || is(&v[k - 1], "FOR")));
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
    {"name", "TEXT"},            {"regclass", "REGCLASS"},
    {"regtype", "TEXT"},         {"regproc", "TEXT"},
    {"regnamespace", "TEXT"},    {"regrole", "TEXT"},
    {"regprocedure", "TEXT"},    {"regoper", "TEXT"},
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

/* ---- the constructs of psql's and drivers' catalog queries -------------------------
**   E'a\nb'                        a standard string with the escapes applied
**   a ~ b, ~*, !~, !~*             a REGEXP b (~*: REGEXP '(?i)' || b), NOT REGEXP
**   a ~~ b, ~~*, !~~, !~~*         LIKE, MATCH (ILIKE), NOT ...
**   OPERATOR(pg_catalog.op)        op, as above
**   ARRAY(SELECT ...)              (WITH meridian_array(v) AS (SELECT ...)
**                                   SELECT meridian_array_agg(v) FROM meridian_array)
**   x = ANY (a), x <> ALL (a)      x [NOT] IN (SELECT value FROM
**                                   json_each(meridian_array_json(a)))
**   x = ANY (SELECT ...)           x IN (SELECT ...)
**   a[i]                           meridian_array_at(a, i)
**   FROM unnest(a) [AS] x          FROM (SELECT value AS x FROM
**                                   json_each(meridian_array_json(a))) [AS] x
**   x LIKE 'a\_b%'                x LIKE 'a\_b%' ESCAPE '\' (PostgreSQL's default)
** (x::regclass, information_schema.x and COLLATE pg_catalog.default are
** handled with their neighbours above.) */

static const char array_open[] = "(WITH meridian_array(v) AS (";
static const char array_close[] = ") SELECT meridian_array_agg(v) FROM meridian_array)";
static const char any_open[] = "(SELECT value FROM json_each(meridian_array_json(";
static const char any_close[] = ")))";

/* The index of the ')' closing the '(' at in->v[open], or in->n. */
static size_t matching_close(const toks *in, size_t open) {
    int d = 0;
    size_t k = open;
    for (; k < in->n; k++) {
        if (punct(&in->v[k], '(')) d++;
        if (punct(&in->v[k], ')') && --d == 0) break;
    }
    return k;
}

/* Does t end an operand (so a following ~ is binary)? */
static bool operand_end(const tok *t) {
    if (t == NULL) return false;
    if (punct(t, ')')) return true;
    if (t->kind == SQLV__TOK_STRING || t->kind == SQLV__TOK_OTHER) return true;
    return identish(t) && (!is_keyword(t) || is(t, "END"));
}

/* Push the tokens of PostgreSQL operator op. 0, 1 unknown, -1 memory. */
static int push_operator(toks *o, const char *op, const char *ws) {
    static const char *const map[][5] = {
        {"~", "REGEXP"},
        {"~*", "REGEXP", "'(?i)'", "||"},
        {"!~", "NOT", "REGEXP"},
        {"!~*", "NOT", "REGEXP", "'(?i)'", "||"},
        {"~~", "LIKE"},
        {"~~*", "MATCH"},
        {"!~~", "NOT", "LIKE"},
        {"!~~*", "NOT", "MATCH"},
        {"=", "="},
        {"<>", "<>"},
        {"!=", "<>"},
        {"<", "<"},
        {">", ">"},
        {"<=", "<="},
        {">=", ">="},
        {"+", "+"},
        {"-", "-"},
        {"*", "*"},
        {"/", "/"},
        {"%", "%"},
        {"||", "||"},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(map); i++) {
        if (strcmp(map[i][0], op) != 0) continue;
        for (size_t k = 1; k < 5 && map[i][k]; k++) {
            const char *w = map[i][k];
            sqlv__token_kind kind = w[0] == '\'' ? SQLV__TOK_STRING
                                    : isalpha((unsigned char)w[0]) ? SQLV__TOK_WORD
                                                                    : SQLV__TOK_PUNCT;
            if (push(o, mk(kind, w, k == 1 && ws[0] ? ws : " ")) != 0) return -1;
        }
        return 0;
    }
    return 1;
}

static void put_utf8(base_buf *b, uint32_t c, int *rc) {
    uint8_t u[4];
    size_t n;
    if (c < 0x80) {
        u[0] = (uint8_t)c;
        n = 1;
    } else if (c < 0x800) {
        u[0] = (uint8_t)(0xC0 | (c >> 6));
        u[1] = (uint8_t)(0x80 | (c & 0x3F));
        n = 2;
    } else if (c < 0x10000) {
        u[0] = (uint8_t)(0xE0 | (c >> 12));
        u[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        u[2] = (uint8_t)(0x80 | (c & 0x3F));
        n = 3;
    } else {
        u[0] = (uint8_t)(0xF0 | (c >> 18));
        u[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
        u[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        u[3] = (uint8_t)(0x80 | (c & 0x3F));
        n = 4;
    }
    if (*rc == 0) *rc = base_buf_append(b, u, n);
}

/* E'...' starting at its quote q (the lexer's token ends at tok_end): a
** standard literal in b. 0, 1 rejected (out set), -1 memory. */
static int e_string(const char *q, const char *lim, const char *tok_end, base_buf *b,
                    sqlv__rewrite *out) {
    int rc = base_buf_append_byte(b, '\'');
    const char *p = q + 1;
    for (; p < lim && rc == 0; p++) {
        uint32_t c = (unsigned char)*p;
        if (c == '\'') {
            if (p + 1 < lim && p[1] == '\'') {
                p++;
            } else {
                break; /* the closing quote */
            }
        } else if (c == '\\' && p + 1 < lim) {
            char e = *++p;
            int ndig = 0, base = 8, max = 3;
            c = (unsigned char)e;
            switch (e) {
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'x': base = 16, max = 2; break;
            case 'u': base = 16, max = 4; break;
            case 'U': base = 16, max = 8; break;
            default: base = e >= '0' && e <= '7' ? 8 : 0; break;
            }
            if (base != 0 && (e == 'x' || e == 'u' || e == 'U' || (e >= '0' && e <= '7'))) {
                const char *d = e >= '0' && e <= '7' ? p : p + 1;
                c = 0;
                for (; d < lim && ndig < max && isxdigit((unsigned char)*d) &&
                       (base == 16 || (*d >= '0' && *d <= '7'));
                     d++, ndig++)
                    c = c * (uint32_t)base +
                        (uint32_t)(isdigit((unsigned char)*d)
                                       ? *d - '0'
                                       : tolower((unsigned char)*d) - 'a' + 10);
                if (ndig == 0 || ((e == 'u' || e == 'U') && ndig != max))
                    return reject(out, "22025", "invalid Unicode escape%.*s", "", 0);
                p = d - 1;
                if (c == 0)
                    return reject(out, "22021",
                                  "invalid byte sequence for encoding \"UTF8\": 0x00%.*s", "", 0);
                if (e == 'u' || e == 'U') {
                    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
                        return reject(out, "22025", "invalid Unicode escape value%.*s", "", 0);
                    put_utf8(b, c, &rc);
                    continue;
                }
            }
        }
        if (c == '\'') rc = base_buf_append_byte(b, '\'');
        if (rc == 0) rc = base_buf_append_byte(b, (uint8_t)c);
    }
    if (rc != 0) return -1;
    if (p >= lim || p + 1 != tok_end)
        return reject(out, "0A000",
                      "E'...' strings with \\' are not supported yet (write '' for a quote)%.*s",
                      "", 0);
    rc = base_buf_append_byte(b, '\'');
    if (rc == 0) rc = base_buf_append_byte(b, 0);
    return rc == 0 ? 0 : -1;
}

/* Is out's last token the word w (the tokens before t that survived the
** rewrite: a dropped COLLATE "C" between them does not count, so a second
** rewrite of the output decides exactly as the first)? */
static bool last_is(const toks *o, size_t back, const char *w) {
    return o->n > back && is(&o->v[o->n - 1 - back], w);
}

static bool starts_query(const toks *in, size_t k) {
    return k < in->n &&
           (is(&in->v[k], "SELECT") || is(&in->v[k], "WITH") || is(&in->v[k], "VALUES"));
}

/* One of the constructs above at in->v[*i]: 2 rewritten into o (*i on its
** last token), 0 not one of them, 1 rejected (out set), -1 memory. Each is
** recognised at its last token looking back at the output (E'...' at the
** string, ARRAY( / ANY( / OPERATOR( / unnest( at the parenthesis). */
static int catalog_rewrite(toks *in, size_t *i, toks *o, const char *text, size_t len,
                           sqlv__rewrite *out) {
    tok *t = &in->v[*i];
    const tok *prev = o->n > 0 ? &o->v[o->n - 1] : NULL;
    /* E'...': an E immediately before the string */
    if (t->kind == SQLV__TOK_STRING && t->s[0] == '\'' && t->wslen == 0 && prev &&
        prev->kind == SQLV__TOK_WORD && prev->len == 1 &&
        (prev->s[0] == 'E' || prev->s[0] == 'e')) {
        base_buf b = {0};
        int rc = e_string(t->s, text + len, t->s + t->len, &b, out);
        if (rc != 0) {
            base_buf_free(&b);
            return rc;
        }
        owned *w = base_malloc(sizeof(*w) + b.len);
        if (w == NULL) {
            base_buf_free(&b);
            return -1;
        }
        memcpy(w->s, b.data, b.len);
        base_buf_free(&b);
        w->next = o->owned;
        o->owned = w;
        tok x = mk(SQLV__TOK_STRING, w->s, "");
        x.ws = prev->ws;
        x.wslen = prev->wslen;
        o->v[o->n - 1] = x; /* replaces the E */
        return 2;
    }
    /* LIKE 'a\_b%': PostgreSQL's LIKE escapes with \ by default (psql's
    ** tab completion relies on it); SQLite's only with ESCAPE */
    if (t->kind == SQLV__TOK_STRING && t->s[0] == '\'' && last_is(o, 0, "LIKE") &&
        memchr(t->s, '\\', t->len) != NULL && !(*i + 1 < in->n && is(&in->v[*i + 1], "ESCAPE"))) {
        if (push(o, *t) != 0 || push(o, mk(SQLV__TOK_WORD, "ESCAPE", " ")) != 0 ||
            push(o, mk(SQLV__TOK_STRING, "'\\'", " ")) != 0)
            return -1;
        return 2;
    }
    /* ARRAY[a, b] (one bracket token, as the lexer reads it): meridian_array(a, b) */
    if (t->kind == SQLV__TOK_QUOTED && t->s[0] == '[' && last_is(o, 0, "ARRAY")) {
        size_t quotes = 0;
        for (size_t k = 0; k < t->len; k++)
            quotes += t->s[k] == '\'';
        if (t->len < 2 || t->s[t->len - 1] != ']' || memchr(t->s + 1, '[', t->len - 1) != NULL ||
            quotes % 2 != 0)
            return reject(out, "0A000",
                          "this ARRAY[...] constructor is not supported yet (nested arrays, or "
                          "a ']' inside a string)%.*s",
                          "", 0);
        /* the elements are rewritten on their own (no '[' inside: bounded) */
        sqlv__rewrite sub;
        int rc = sqlv__dialect_rewrite(t->s + 1, t->len - 2, &sub);
        if (rc != 0) {
            if (rc == 1) {
                base_strlcpy(out->sqlstate, sub.sqlstate, sizeof(out->sqlstate));
                base_strlcpy(out->message, sub.message, sizeof(out->message));
            }
            return rc;
        }
        owned *w = base_malloc(sizeof(*w) + sub.len + 1);
        if (w == NULL) {
            base_free(sub.text);
            return -1;
        }
        memcpy(w->s, sub.text, sub.len + 1);
        base_free(sub.text);
        w->next = o->owned;
        o->owned = w;
        tok fn = mk(SQLV__TOK_WORD, "meridian_array", "");
        fn.ws = prev->ws;
        fn.wslen = prev->wslen;
        o->v[o->n - 1] = fn; /* replaces ARRAY */
        tok inner = {SQLV__TOK_OTHER, w->s, sub.len, "", 0};
        if (push(o, mk(SQLV__TOK_PUNCT, "(", "")) != 0 || (inner.len > 0 && push(o, inner) != 0) ||
            push(o, mk(SQLV__TOK_PUNCT, ")", "")) != 0)
            return -1;
        return 2;
    }
    if (punct(t, '(') && prev != NULL) {
        size_t k = matching_close(in, *i);
        /* ARRAY(SELECT ...): the parentheses become the CTE's (their text
        ** changes, their depth does not) */
        if (last_is(o, 0, "ARRAY") && starts_query(in, *i + 1)) {
            if (k == in->n) return reject(out, "42601", "syntax error at end of input%.*s", "", 0);
            tok open = *t;
            open.s = array_open;
            open.len = sizeof(array_open) - 1;
            open.ws = prev->ws;
            open.wslen = prev->wslen;
            o->v[o->n - 1] = open; /* replaces ARRAY */
            in->v[k].s = array_close;
            in->v[k].len = sizeof(array_close) - 1;
            return 2;
        }
        /* x = ANY (...), x <> ALL (...) */
        if ((last_is(o, 0, "ANY") || last_is(o, 0, "SOME") || last_is(o, 0, "ALL")) &&
            o->n >= 2 && o->v[o->n - 2].kind == SQLV__TOK_PUNCT &&
            strchr("=<>!", o->v[o->n - 2].s[0]) != NULL) {
            bool all = last_is(o, 0, "ALL");
            const tok *p1 = &o->v[o->n - 2], *p0 = o->n >= 3 ? &o->v[o->n - 3] : NULL;
            bool two = p0 && p0->kind == SQLV__TOK_PUNCT && p1->s == p0->s + 1 &&
                       strchr("<>!", p0->s[0]) != NULL;
            char op[3] = {two ? p0->s[0] : p1->s[0], two ? p1->s[0] : 0, 0};
            bool in_ = strcmp(op, "=") == 0 && !all;
            bool not_in = (strcmp(op, "<>") == 0 || strcmp(op, "!=") == 0) && all;
            if (!in_ && !not_in)
                return reject(out, "0A000", "%.*s ANY/ALL (...) is not supported yet", op,
                              strlen(op));
            if (k == in->n) return reject(out, "42601", "syntax error at end of input%.*s", "", 0);
            o->n -= two ? 3 : 2; /* the operator and ANY */
            if (not_in && push(o, mk(SQLV__TOK_WORD, "NOT", " ")) != 0) return -1;
            if (push(o, mk(SQLV__TOK_WORD, "IN", " ")) != 0) return -1;
            tok open = *t;
            open.ws = " ";
            open.wslen = 1;
            if (!starts_query(in, *i + 1)) {
                open.s = any_open;
                open.len = sizeof(any_open) - 1;
                in->v[k].s = any_close;
                in->v[k].len = sizeof(any_close) - 1;
            }
            return push(o, open) != 0 ? -1 : 2;
        }
        /* OPERATOR(schema.op) */
        if (last_is(o, 0, "OPERATOR")) {
            char op[8];
            size_t n = 0, j = *i + 1;
            if (j + 1 < in->n && identish(&in->v[j]) && punct(&in->v[j + 1], '.')) j += 2;
            for (; j < in->n && in->v[j].kind == SQLV__TOK_PUNCT && !punct(&in->v[j], ')'); j++) {
                if (n + 1 >= sizeof(op)) break;
                op[n++] = in->v[j].s[0];
            }
            op[n] = 0;
            if (j >= in->n || !punct(&in->v[j], ')') || n == 0)
                return reject(out, "42601", "syntax error at or near \"%.*s\"", "OPERATOR", 8);
            const tok word = o->v[--o->n]; /* OPERATOR goes */
            int rc = push_operator(o, op, word.wslen ? " " : "");
            if (rc < 0) return -1;
            if (rc > 0)
                return reject(out, "0A000", "operator %.*s is not supported yet", op, strlen(op));
            if (j + 1 < in->n && in->v[j + 1].wslen == 0) {
                in->v[j + 1].ws = " ";
                in->v[j + 1].wslen = 1;
            }
            *i = j;
            return 2;
        }
        /* FROM unnest(a) [AS] x: the '(' and ')' stay the call's */
        if (last_is(o, 0, "unnest") &&
            (last_is(o, 1, "FROM") || last_is(o, 1, "JOIN") || last_is(o, 1, "LATERAL"))) {
            if (k == in->n) return reject(out, "42601", "syntax error at end of input%.*s", "", 0);
            size_t a = k + 1;
            if (a < in->n && is(&in->v[a], "AS")) a++;
            bool alias = a < in->n && identish(&in->v[a]) && !is_keyword(&in->v[a]) &&
                         !is(&in->v[a], "WHERE") && !is(&in->v[a], "ON") &&
                         !is(&in->v[a], "LEFT") && !is(&in->v[a], "CROSS") &&
                         !is(&in->v[a], "INNER") && !is(&in->v[a], "ORDER") &&
                         !is(&in->v[a], "GROUP") && !is(&in->v[a], "NATURAL") &&
                         !is(&in->v[a], "WINDOW") && !is(&in->v[a], "WITH");
            const char *name = alias ? in->v[a].s : "unnest";
            size_t name_len = alias ? in->v[a].len : 6;
            static const char head[] = "(SELECT value AS ",
                              tail[] = " FROM json_each(meridian_array_json";
            size_t size = sizeof(head) + name_len + sizeof(tail);
            owned *w = base_malloc(sizeof(*w) + size);
            if (w == NULL) return -1;
            snprintf(w->s, size, "%s%.*s%s", head, (int)name_len, name, tail);
            w->next = o->owned;
            o->owned = w;
            tok x = mk(SQLV__TOK_OTHER, w->s, "");
            x.ws = prev->ws;
            x.wslen = prev->wslen;
            o->v[o->n - 1] = x; /* replaces unnest */
            tok open = *t;
            open.ws = "";
            open.wslen = 0;
            in->v[k].s = alias ? ")))" : "))) AS unnest";
            in->v[k].len = strlen(in->v[k].s);
            return push(o, open) != 0 ? -1 : 2;
        }
    }
    /* a[i] (the lexer reads "[i]" as a bracket-quoted identifier) */
    if (t->kind == SQLV__TOK_QUOTED && t->s[0] == '[' && t->len > 2 && t->s[t->len - 1] == ']' &&
        operand_end(prev) && !is(&in->v[0], "CREATE") && !is(&in->v[0], "ALTER")) {
        if (memchr(t->s, ':', t->len) != NULL)
            return reject(out, "0A000", "array slices are not supported yet%.*s", "", 0);
        long start = operand_start(o);
        if (start < 0) return 0;
        tok fn = mk(SQLV__TOK_WORD, "meridian_array_at", "");
        fn.ws = o->v[start].ws;
        fn.wslen = o->v[start].wslen;
        o->v[start].ws = "";
        o->v[start].wslen = 0;
        tok sub = {SQLV__TOK_OTHER, t->s + 1, t->len - 2, " ", 1};
        if (insert_at(o, (size_t)start, mk(SQLV__TOK_PUNCT, "(", "")) != 0 ||
            insert_at(o, (size_t)start, fn) != 0 || push(o, mk(SQLV__TOK_PUNCT, ",", "")) != 0 ||
            push(o, sub) != 0 || push(o, mk(SQLV__TOK_PUNCT, ")", "")) != 0)
            return -1;
        return 2;
    }
    /* a ~ b and its family, written as adjacent characters */
    if (t->kind == SQLV__TOK_PUNCT && (t->s[0] == '~' || t->s[0] == '!') && operand_end(prev)) {
        char op[8];
        size_t n = 0, k = *i;
        for (; k < in->n && n + 1 < sizeof(op) && in->v[k].kind == SQLV__TOK_PUNCT &&
               strchr("!~*", in->v[k].s[0]) != NULL &&
               (k == *i || in->v[k].s == in->v[k - 1].s + 1);
             k++)
            op[n++] = in->v[k].s[0];
        op[n] = 0;
        if (strchr(op, '~') == NULL) return 0; /* not ours: "!=" and the like */
        int rc = push_operator(o, op, " ");
        if (rc != 0) return rc < 0 ? -1 : 0; /* "~~~": SQLite's syntax error */
        if (k < in->n && in->v[k].wslen == 0) {
            in->v[k].ws = " ";
            in->v[k].wslen = 1;
        }
        *i = k - 1;
        return 2;
    }
    return 0;
}

/* ---- dates and times (datetime.c; docs/sql.md "Dates and times") ---------------------
**   x::date, CAST(x AS date)       meridian_cast_date(x); also time, timestamp
**                                   [without time zone], timestamptz /
**                                   timestamp with time zone, interval
**   date '2024-01-02', interval '1 hour'   the same casts of the literal
**   extract(field FROM x)          extract('field', x)
**   x AT TIME ZONE z               timezone(x, z, 'kind of x') (PostgreSQL's
**                                   timezone(z, x) takes two arguments)
**   a + b, a - b                   (meridian_dt_add(a, b, 'kind_a,kind_b')),
**                                   (meridian_dt_sub(...)) when a is visibly a
**                                   date/time (a cast above, now(),
**                                   current_date, another such rewrite) or b
**                                   is visibly an interval/date/timestamp;
**                                   a kind not visible is '' (the value tells);
**                                   also a - b of any operands inside extract,
**                                   date_part, date_trunc, age, to_char;
**                                   a and b as PostgreSQL's precedence takes
**                                   them (x * y + i is (x * y) + i)
**   -i, x * i, i / x               (meridian_dt_mul(-1, i, ...)), (meridian_dt_mul
**                                   ...), (meridian_dt_div ...) when i is visibly
**                                   an interval
** The rewriter does not know column types: created_at + 1 stays SQLite's. */

/* The kind names of datetime.c's meridian_dt_add. */
static const char *const dt_kinds[] = {"", "date", "time", "timestamp", "timestamptz",
                                       "interval", "number"};
enum { DTK_NONE, DTK_DATE, DTK_TIME, DTK_TS, DTK_TSTZ, DTK_INTERVAL, DTK_NUMBER, DTK_OTHER };

/* The date/time kind of a type written at in[*k] (advanced past it): one of
** DTK_DATE..DTK_INTERVAL, DTK_OTHER for another type; 1 rejected. */
static int dt_type_at(const toks *in, size_t *k, int *kind, sqlv__rewrite *out) {
    char name[64];
    size_t start = *k;
    int rc = parse_type(in->v, in->n, k, name, sizeof(name), out);
    if (rc != 0) return rc;
    bool with_tz = *k >= start + 4 && is(&in->v[*k - 3], "with") && is(&in->v[*k - 2], "time") &&
                   is(&in->v[*k - 1], "zone");
    *kind = DTK_OTHER;
    if (strcmp(name, "date") == 0) *kind = DTK_DATE;
    if (strcmp(name, "time") == 0 && !with_tz) *kind = DTK_TIME;
    if (strcmp(name, "timestamp") == 0) *kind = with_tz ? DTK_TSTZ : DTK_TS;
    if (strcmp(name, "timestamptz") == 0) *kind = DTK_TSTZ;
    if (strcmp(name, "interval") == 0) *kind = DTK_INTERVAL;
    if (strcmp(name, "int") == 0 || strcmp(name, "integer") == 0 || strcmp(name, "int4") == 0 ||
        strcmp(name, "bigint") == 0 || strcmp(name, "int8") == 0)
        *kind = DTK_NUMBER;
    return 0;
}

static const char *dt_cast_fn(int kind) {
    static const char *const fns[] = {"", "meridian_cast_date", "meridian_cast_time",
                                      "meridian_cast_timestamp", "meridian_cast_timestamptz",
                                      "meridian_cast_interval"};
    return fns[kind];
}

/* The precision of a type written at in[start..end): timestamp(0),
** time(3) with time zone: its number token, or NULL. */
static const tok *dt_precision(const toks *in, size_t start, size_t end) {
    if (start + 3 < end && punct(&in->v[start + 1], '(') &&
        in->v[start + 2].kind == SQLV__TOK_OTHER && isdigit((unsigned char)in->v[start + 2].s[0]) &&
        punct(&in->v[start + 3], ')'))
        return &in->v[start + 2];
    return NULL;
}

/* A typed literal at in[k]: date 'x', timestamp [with[out] time zone] 'x'...:
** its kind, and *last the index of the string; DTK_NONE if not one. */
static int dt_typed_literal(const toks *in, size_t k, size_t *last) {
    static const struct {
        const char *word;
        int kind;
    } words[] = {{"date", DTK_DATE},          {"time", DTK_TIME},
                 {"timestamp", DTK_TS},       {"timestamptz", DTK_TSTZ},
                 {"interval", DTK_INTERVAL}};
    if (k >= in->n || in->v[k].kind != SQLV__TOK_WORD) return DTK_NONE;
    for (size_t w = 0; w < BASE_ARRAY_LEN(words); w++) {
        if (!is(&in->v[k], words[w].word)) continue;
        size_t s = k + 1;
        int kind = words[w].kind;
        if ((kind == DTK_TS || kind == DTK_TIME) && s + 2 < in->n &&
            (is(&in->v[s], "with") || is(&in->v[s], "without")) && is(&in->v[s + 1], "time") &&
            is(&in->v[s + 2], "zone")) {
            if (is(&in->v[s], "with")) kind = kind == DTK_TS ? DTK_TSTZ : DTK_OTHER;
            s += 3;
        }
        if (s < in->n && in->v[s].kind == SQLV__TOK_STRING && kind != DTK_OTHER) {
            *last = s;
            return kind;
        }
        return DTK_NONE;
    }
    return DTK_NONE;
}

/* The kind of a function's result, by its name (DTK_NONE: not ours). */
static int dt_function_kind(const tok *t) {
    static const struct {
        const char *name;
        int kind;
    } fns[] = {{"now", DTK_TSTZ},           {"now()", DTK_TSTZ},
               {"transaction_timestamp", DTK_TSTZ}, {"statement_timestamp", DTK_TSTZ},
               {"clock_timestamp", DTK_TSTZ}, {"to_timestamp", DTK_TSTZ},
               {"make_timestamptz", DTK_TSTZ}, {"make_timestamp", DTK_TS},
               {"make_date", DTK_DATE},       {"to_date", DTK_DATE},
               {"current_date", DTK_DATE},    {"age", DTK_INTERVAL},
               {"justify_days", DTK_INTERVAL}, {"justify_hours", DTK_INTERVAL},
               {"justify_interval", DTK_INTERVAL}, {"meridian_cast_date", DTK_DATE},
               {"meridian_cast_time", DTK_TIME}, {"meridian_cast_timestamp", DTK_TS},
               {"meridian_cast_timestamptz", DTK_TSTZ},
               {"meridian_cast_interval", DTK_INTERVAL}, {"date_trunc", DTK_OTHER},
               {"timezone", DTK_OTHER}};
    for (size_t i = 0; i < BASE_ARRAY_LEN(fns); i++)
        if (is(t, fns[i].name)) return fns[i].kind;
    return DTK_NONE;
}

/* The kind of the operand o->v[start..] (already rewritten); DTK_NONE when
** it is not visibly a date/time, DTK_OTHER when it is, of a kind unknown. */
static int dt_left_kind(const toks *o, size_t start) {
    const tok *t = &o->v[start];
    if (punct(t, '(') && start + 1 < o->n &&
        (is(&o->v[start + 1], "meridian_dt_mul") || is(&o->v[start + 1], "meridian_dt_div")))
        return DTK_INTERVAL;
    if (punct(t, '(') && start + 1 < o->n &&
        (is(&o->v[start + 1], "meridian_dt_add") || is(&o->v[start + 1], "meridian_dt_sub")))
        return DTK_OTHER;
    if (t->kind != SQLV__TOK_WORD) return DTK_NONE;
    bool call = start + 1 < o->n && punct(&o->v[start + 1], '(');
    if (is(t, "current_date") || is(t, "now()")) return start + 1 == o->n ? dt_function_kind(t) : DTK_NONE;
    return call ? dt_function_kind(t) : DTK_NONE;
}

/* One operand starting at in[r] (a literal, a column, a call, a
** parenthesized expression, a typed literal, CAST(...), each with its
** x::type casts): *end one past it, *kind its kind (DTK_NONE unknown).
** false when there is none. */
static bool dt_operand(const toks *in, size_t r, size_t *end, int *kind, sqlv__rewrite *out,
                       int *rc) {
    size_t e, last;
    *kind = DTK_NONE;
    *rc = 0;
    if (r >= in->n) return false;
    const tok *t = &in->v[r];
    int lit = dt_typed_literal(in, r, &last);
    if (lit != DTK_NONE) {
        *kind = lit;
        e = last + 1;
    } else if (is(t, "CAST") && r + 1 < in->n && punct(&in->v[r + 1], '(')) {
        size_t close = matching_close(in, r + 1);
        if (close == in->n) return false;
        int d = 0;
        for (size_t k = r + 1; k < close; k++) {
            if (punct(&in->v[k], '(')) d++;
            if (punct(&in->v[k], ')')) d--;
            if (d == 1 && is(&in->v[k], "AS")) {
                size_t k2 = k + 1;
                sqlv__rewrite scratch;
                if (dt_type_at(in, &k2, kind, &scratch) != 0 || k2 != close) *kind = DTK_NONE;
            }
        }
        e = close + 1;
    } else if (punct(t, '(')) {
        e = matching_close(in, r);
        if (e == in->n) return false;
        e++;
    } else if (identish(t) && !is_keyword(t)) {
        e = r + 1;
        while (e + 1 < in->n && punct(&in->v[e], '.') && identish(&in->v[e + 1]))
            e += 2;
        if (e < in->n && punct(&in->v[e], '(')) {
            *kind = dt_function_kind(&in->v[e - 1]);
            e = matching_close(in, e);
            if (e == in->n) return false;
            e++;
        } else if (is(t, "current_date")) {
            *kind = DTK_DATE;
        } else if (is(t, "current_timestamp") || is(t, "localtimestamp")) {
            *kind = DTK_TSTZ;
        }
    } else if (t->kind == SQLV__TOK_STRING || t->kind == SQLV__TOK_OTHER) {
        if (t->kind == SQLV__TOK_OTHER && isdigit((unsigned char)t->s[0])) *kind = DTK_NUMBER;
        e = r + 1;
    } else {
        return false;
    }
    /* x::type... */
    while (e + 1 < in->n && punct(&in->v[e], ':') && punct(&in->v[e + 1], ':') &&
           in->v[e + 1].s == in->v[e].s + 1) {
        size_t k = e + 2;
        int rc2 = dt_type_at(in, &k, kind, out);
        if (rc2 != 0) {
            *rc = rc2;
            return false;
        }
        if (*kind == DTK_OTHER) *kind = DTK_NONE;
        e = k;
    }
    if (*kind == DTK_OTHER) *kind = DTK_NONE;
    *end = e;
    return true;
}

/* Tokens looked back over for the call around an operator. */
#define DT_CONTEXT_LOOKBACK 256

/* Is o->v[start] inside an argument of extract, date_part, date_trunc,
** age or to_char (through plain parentheses), where a - b of two columns
** is a date/time difference? */
static bool dt_in_datetime_call(const toks *o, size_t start) {
    static const char *const fns[] = {"extract", "date_part", "date_trunc", "age", "to_char",
                                      "justify_days", "justify_hours", "justify_interval"};
    int depth = 0;
    for (size_t k = start, steps = 0; k-- > 0 && steps < DT_CONTEXT_LOOKBACK; steps++) {
        if (punct(&o->v[k], ')')) depth++;
        if (!punct(&o->v[k], '(')) continue;
        if (depth-- > 0) continue;
        depth = 0;
        if (k == 0 || o->v[k - 1].kind != SQLV__TOK_WORD) continue; /* a plain group: go up */
        for (size_t f = 0; f < BASE_ARRAY_LEN(fns); f++)
            if (is(&o->v[k - 1], fns[f])) return true;
        return false;
    }
    return false;
}

static bool dt_higher_operator(const toks *in, size_t e, const char *ops) {
    return e < in->n && in->v[e].kind == SQLV__TOK_PUNCT && in->v[e].len > 0 &&
           strchr(ops, in->v[e].s[0]) != NULL;
}

/* Levels of PostgreSQL's operator precedence the rewrites take operands
** at, lowest first (its docs, "Operator Precedence"): + -, then * / %,
** then ^, then AT TIME ZONE, then unary - +, then :: (inside dt_operand).
** Comparisons, ||, other operators, IS, LIKE, BETWEEN, IN, NOT, AND, OR,
** keywords, commas and parentheses are all lower: an operand stops there. */
enum { DT_LEVEL_UNARY, DT_LEVEL_AT, DT_LEVEL_POWER, DT_LEVEL_MUL, DT_LEVEL_ADD };

/* Is the + or - at o->v[k] the end of a longer operator (#-, @-, |-)? A
** PostgreSQL operator ends in + or - only when it holds one of these. */
static bool dt_operator_tail(const toks *o, size_t k) {
    if (k == 0) return false;
    const tok *p = &o->v[k - 1];
    return p->kind == SQLV__TOK_PUNCT && p->len == 1 && p->s + 1 == o->v[k].s &&
           strchr("~!@#%^&|`?", p->s[0]) != NULL;
}

/* The start of the left operand of an operator of level (DT_LEVEL_MUL or
** DT_LEVEL_ADD) whose last operand starts at o->v[start]: it extends back
** over unary signs and over binary operators of the same level or higher
** (left-associative), so x * y + i is (x * y) + i and a - b + i is
** (a - b) + i. */
static size_t dt_left_start(const toks *o, size_t start, int level) {
    const char *binary = level == DT_LEVEL_ADD ? "*/%^+-" : "*/%^";
    for (size_t steps = 0; start > 0 && steps < DT_CONTEXT_LOOKBACK; steps++) {
        const tok *op = &o->v[start - 1];
        if (op->kind != SQLV__TOK_PUNCT || op->len != 1) break;
        bool sign = op->s[0] == '+' || op->s[0] == '-';
        if (sign && dt_operator_tail(o, start - 1)) break;
        if (start >= 2 && operand_end(&o->v[start - 2])) {
            if (strchr(binary, op->s[0]) == NULL) break;
            toks before = *o; /* a view of the tokens before the operator */
            before.n = start - 1;
            long s = operand_start(&before);
            if (s < 0) break;
            start = (size_t)s;
        } else if (sign) {
            start--; /* unary: binds tighter than any binary operator */
        } else {
            break;
        }
    }
    return start;
}

/* The kind of a op b at level (DT_LEVEL_AT: a AT TIME ZONE b). */
static int dt_combine(int level, int a, int b) {
    if (level == DT_LEVEL_AT) return a == DTK_TS ? DTK_TSTZ : a == DTK_TSTZ ? DTK_TS : DTK_NONE;
    if (level == DT_LEVEL_MUL && (a == DTK_INTERVAL || b == DTK_INTERVAL)) return DTK_INTERVAL;
    return a == DTK_NUMBER && b == DTK_NUMBER ? DTK_NUMBER : DTK_NONE;
}

/* The right operand at in[r] of an operator one level above level:
**   DT_LEVEL_UNARY  [- +]... operand (dt_operand)
**   DT_LEVEL_AT     unary [AT TIME ZONE unary]...
**   DT_LEVEL_POWER  at [^ at]...
**   DT_LEVEL_MUL    power [* / % power]...
** *end one past it, *kind its kind (DTK_NONE unknown); false when there
** is none. Recursion depth: the level (at most 3). */
static bool dt_right(const toks *in, size_t r, int level, size_t *end, int *kind,
                     sqlv__rewrite *out, int *rc) {
    *rc = 0;
    if (level == DT_LEVEL_UNARY) {
        size_t k = r;
        while (k < in->n && in->v[k].kind == SQLV__TOK_PUNCT && in->v[k].len == 1 &&
               (in->v[k].s[0] == '-' || in->v[k].s[0] == '+'))
            k++;
        return dt_operand(in, k, end, kind, out, rc);
    }
    size_t e;
    if (!dt_right(in, r, level - 1, &e, kind, out, rc)) return false;
    for (;;) { /* e grows each turn: bounded by in->n */
        size_t next;
        if (level == DT_LEVEL_AT && e + 3 < in->n && is(&in->v[e], "AT") &&
            is(&in->v[e + 1], "TIME") && is(&in->v[e + 2], "ZONE"))
            next = e + 3;
        else if (level == DT_LEVEL_POWER && e < in->n && in->v[e].len == 1 &&
                 punct(&in->v[e], '^'))
            next = e + 1;
        else if (level == DT_LEVEL_MUL && e < in->n && in->v[e].len == 1 &&
                 (punct(&in->v[e], '*') || punct(&in->v[e], '/') || punct(&in->v[e], '%')))
            next = e + 1;
        else
            break;
        size_t e2;
        int k2;
        if (!dt_right(in, next, level - 1, &e2, &k2, out, rc)) return false;
        *kind = dt_combine(level, *kind, k2);
        e = e2;
    }
    *end = e;
    return !dt_higher_operator(in, e, ".[");
}

/* Wrap o->v[start..] in fn( ... ) where the caller pushes the rest and ')'. */
static int dt_open_call(toks *o, size_t start, const char *fn, bool paren) {
    tok *first = &o->v[start];
    const char *ws = first->ws;
    size_t wslen = first->wslen;
    first->ws = "";
    first->wslen = 0;
    tok f = mk(SQLV__TOK_WORD, fn, "");
    tok open = mk(SQLV__TOK_PUNCT, "(", "");
    if (insert_at(o, start, open) != 0 || insert_at(o, start, f) != 0) return -1;
    if (paren && insert_at(o, start, mk(SQLV__TOK_PUNCT, "(", "")) != 0) return -1;
    o->v[start].ws = ws;
    o->v[start].wslen = wslen;
    return 0;
}

/* Keep text (a rewrite's output) for the life of o; its token. */
static int dt_own(toks *o, const char *s, size_t len, tok *x) {
    owned *w = base_malloc(sizeof(*w) + len + 1);
    if (w == NULL) return -1;
    memcpy(w->s, s, len);
    w->s[len] = 0;
    w->next = o->owned;
    o->owned = w;
    *x = (tok){SQLV__TOK_OTHER, w->s, len, "", 0};
    return 0;
}

/* o->v[start..] (the left operand) and in->v[r..end) (the right one,
** rewritten on its own: a shorter text, so bounded) become
** fn(left, right, 'kinds'), in parentheses if paren (an operator's result
** is named ?column?); *i goes to end - 1. 2, 1 rejected, -1 memory. */
static int dt_fold(toks *in, size_t *i, toks *o, size_t start, size_t r, size_t end,
                   const char *fn, bool paren, const char *kinds, sqlv__rewrite *out) {
    const tok *r0 = &in->v[r], *r1 = &in->v[end - 1];
    sqlv__rewrite sub;
    int rc = sqlv__dialect_rewrite(r0->s, (size_t)(r1->s + r1->len - r0->s), &sub);
    if (rc != 0) {
        if (rc == 1) {
            base_strlcpy(out->sqlstate, sub.sqlstate, sizeof(out->sqlstate));
            base_strlcpy(out->message, sub.message, sizeof(out->message));
        }
        return rc;
    }
    tok rt, kt;
    rc = dt_own(o, sub.text, sub.len, &rt);
    base_free(sub.text);
    if (rc != 0) return -1;
    rt.ws = " ";
    rt.wslen = 1;
    char quoted[48];
    int n = snprintf(quoted, sizeof(quoted), "'%s'", kinds);
    if (dt_own(o, quoted, (size_t)n, &kt) != 0) return -1;
    kt.kind = SQLV__TOK_STRING;
    kt.ws = " ";
    kt.wslen = 1;
    if (dt_open_call(o, start, fn, paren) != 0 || push(o, mk(SQLV__TOK_PUNCT, ",", "")) != 0 ||
        push(o, rt) != 0 || push(o, mk(SQLV__TOK_PUNCT, ",", "")) != 0 || push(o, kt) != 0 ||
        push(o, mk(SQLV__TOK_PUNCT, ")", "")) != 0 ||
        (paren && push(o, mk(SQLV__TOK_PUNCT, ")", "")) != 0))
        return -1;
    *i = end - 1;
    return 2;
}

/* One of the constructs above at in->v[*i]: 2 rewritten into o (*i on its
** last token), 0 not one of them, 1 rejected (out set), -1 memory. */
static int datetime_rewrite(toks *in, size_t *i, toks *o, sqlv__rewrite *out) {
    tok *t = &in->v[*i];
    tok *next = *i + 1 < in->n ? &in->v[*i + 1] : NULL;
    const tok *prev = o->n > 0 ? &o->v[o->n - 1] : NULL;
    if (in->n > 0 && (is(&in->v[0], "SET") || is(&in->v[0], "SHOW") || is(&in->v[0], "RESET")))
        return 0;
    /* AS OF SYSTEM TIME '...' / INTERVAL '...': asof.c reads them */
    if (last_is(o, 0, "SYSTEM") || (last_is(o, 0, "TIME") && last_is(o, 1, "SYSTEM"))) return 0;
    /* x::date */
    if (punct(t, ':') && next && punct(next, ':') && next->s == t->s + 1) {
        size_t k = *i + 2;
        int kind;
        sqlv__rewrite scratch;
        if (dt_type_at(in, &k, &kind, &scratch) != 0 || kind < DTK_DATE || kind > DTK_INTERVAL)
            return 0; /* not ours: the generic cast (and its errors) */
        long start = operand_start(o);
        if (start < 0) return 0;
        const tok *prec = dt_precision(in, *i + 2, k);
        if (dt_open_call(o, (size_t)start, dt_cast_fn(kind), false) != 0) return -1;
        if (prec != NULL) {
            tok p = *prec;
            p.ws = " ";
            p.wslen = 1;
            if (push(o, mk(SQLV__TOK_PUNCT, ",", "")) != 0 || push(o, p) != 0) return -1;
        }
        if (push(o, mk(SQLV__TOK_PUNCT, ")", "")) != 0) return -1;
        *i = k - 1;
        return 2;
    }
    /* CAST(x AS date): the CAST becomes the function, "AS date" goes */
    if (is(t, "CAST") && next && punct(next, '(')) {
        size_t close = matching_close(in, *i + 1);
        int d = 0;
        for (size_t k = *i + 1; k < close; k++) {
            if (punct(&in->v[k], '(')) d++;
            if (punct(&in->v[k], ')')) d--;
            if (d != 1 || !is(&in->v[k], "AS")) continue;
            size_t k2 = k + 1;
            int kind;
            sqlv__rewrite scratch;
            if (dt_type_at(in, &k2, &kind, &scratch) != 0 || k2 != close || kind < DTK_DATE ||
                kind > DTK_INTERVAL)
                return 0;
            const tok *prec = dt_precision(in, k + 1, close);
            tok p = prec ? *prec : (tok){SQLV__TOK_PUNCT, "", 0, "", 0};
            for (size_t j = k; j < close; j++)
                in->v[j] = (tok){SQLV__TOK_PUNCT, "", 0, "", 0};
            if (prec != NULL) { /* CAST(x AS timestamp(0)) => f(x, 0) */
                in->v[k] = mk(SQLV__TOK_PUNCT, ",", "");
                p.ws = " ";
                p.wslen = 1;
                in->v[k + 1] = p;
            }
            tok f = mk(SQLV__TOK_WORD, dt_cast_fn(kind), "");
            f.ws = t->ws;
            f.wslen = t->wslen;
            return push(o, f) != 0 ? -1 : 2;
        }
        return 0;
    }
    /* date '2024-01-02', interval '1 hour' */
    size_t last;
    int lit = prev && punct(prev, '.') ? DTK_NONE : dt_typed_literal(in, *i, &last);
    if (lit != DTK_NONE) {
        tok f = mk(SQLV__TOK_WORD, dt_cast_fn(lit), "");
        f.ws = t->ws;
        f.wslen = t->wslen;
        tok s = in->v[last];
        s.ws = "";
        s.wslen = 0;
        if (push(o, f) != 0 || push(o, mk(SQLV__TOK_PUNCT, "(", "")) != 0 || push(o, s) != 0 ||
            push(o, mk(SQLV__TOK_PUNCT, ")", "")) != 0)
            return -1;
        *i = last;
        return 2;
    }
    /* extract(field FROM x) => extract('field', x) */
    if (is(t, "extract") && next && punct(next, '(') && *i + 3 < in->n &&
        (in->v[*i + 2].kind == SQLV__TOK_WORD || in->v[*i + 2].kind == SQLV__TOK_STRING) &&
        is(&in->v[*i + 3], "FROM")) {
        tok *field = &in->v[*i + 2];
        if (field->kind == SQLV__TOK_WORD) {
            char q[72];
            int n = snprintf(q, sizeof(q), "'%.*s'", (int)BASE_MIN(field->len, 64), field->s);
            tok x;
            if (dt_own(o, q, (size_t)n, &x) != 0) return -1;
            x.kind = SQLV__TOK_STRING;
            x.ws = field->ws;
            x.wslen = field->wslen;
            *field = x;
        }
        in->v[*i + 3].kind = SQLV__TOK_PUNCT;
        in->v[*i + 3].s = ",";
        in->v[*i + 3].len = 1;
        in->v[*i + 3].ws = "";
        in->v[*i + 3].wslen = 0;
        return 0; /* extract itself is pushed as it is */
    }
    /* x AT TIME ZONE z => timezone(x, z, 'kind of x') */
    if (is(t, "AT") && *i + 3 < in->n && is(&in->v[*i + 1], "TIME") &&
        is(&in->v[*i + 2], "ZONE") && operand_end(prev)) {
        long start = operand_start(o);
        size_t end;
        int rk, rc;
        if (start < 0) return 0;
        if (!dt_right(in, *i + 3, DT_LEVEL_UNARY, &end, &rk, out, &rc)) return rc;
        int lk = dt_left_kind(o, (size_t)start);
        if (lk == DTK_OTHER) lk = DTK_NONE;
        return dt_fold(in, i, o, (size_t)start, *i + 3, end, "timezone", false, dt_kinds[lk],
                       out);
    }
    /* -interval '1 day' => (meridian_dt_mul(-1, interval '1 day', 'number,interval')):
    ** SQLite's unary minus of the interval's text would be a number */
    if (punct(t, '-') && t->len == 1 && !operand_end(prev)) {
        size_t end;
        int rk, rc;
        if (!dt_right(in, *i + 1, DT_LEVEL_UNARY, &end, &rk, out, &rc)) return rc;
        if (rk != DTK_INTERVAL) return 0;
        tok m = mk(SQLV__TOK_OTHER, "-1", "");
        m.ws = t->ws;
        m.wslen = t->wslen;
        if (push(o, m) != 0) return -1;
        return dt_fold(in, i, o, o->n - 1, *i + 1, end, "meridian_dt_mul", true,
                       "number,interval", out);
    }
    /* interval * number, number * interval, interval / number; the left
    ** operand extends back over * / % ^ (x / 2 * i is (x / 2) * i) */
    if ((punct(t, '*') || punct(t, '/')) && operand_end(prev) && !(prev && punct(prev, '.'))) {
        long last = operand_start(o);
        if (last < 0) return 0;
        size_t start = dt_left_start(o, (size_t)last, DT_LEVEL_MUL);
        int lk = start == (size_t)last ? dt_left_kind(o, start) : DTK_NONE, rk;
        size_t end;
        int rc;
        if (!dt_right(in, *i + 1, DT_LEVEL_POWER, &end, &rk, out, &rc)) return rc;
        if (lk != DTK_INTERVAL && rk != DTK_INTERVAL) return 0;
        char kinds[40];
        snprintf(kinds, sizeof(kinds), "%s,%s", dt_kinds[lk == DTK_OTHER ? DTK_NONE : lk],
                 dt_kinds[rk]);
        return dt_fold(in, i, o, start, *i + 1, end,
                       t->s[0] == '*' ? "meridian_dt_mul" : "meridian_dt_div", true, kinds, out);
    }
    /* a + b, a - b: a extends back over * / % ^ + - and unary signs, b
    ** forward over * / % ^ (PostgreSQL's precedence, left-associative) */
    if (t->kind == SQLV__TOK_PUNCT && t->len == 1 && (t->s[0] == '+' || t->s[0] == '-') &&
        operand_end(prev) && !(next && next->kind == SQLV__TOK_PUNCT && next->s == t->s + 1)) {
        long last = operand_start(o);
        if (last < 0) return 0;
        size_t start = dt_left_start(o, (size_t)last, DT_LEVEL_ADD);
        int lk = start == (size_t)last ? dt_left_kind(o, start) : DTK_NONE, rk;
        size_t end;
        int rc;
        if (!dt_right(in, *i + 1, DT_LEVEL_MUL, &end, &rk, out, &rc)) return rc;
        bool fold = lk != DTK_NONE || (rk >= DTK_DATE && rk <= DTK_INTERVAL) ||
                    (rk == DTK_NONE && dt_in_datetime_call(o, start));
        if (!fold) return 0;
        if (lk == DTK_OTHER) lk = DTK_NONE;
        char kinds[40];
        snprintf(kinds, sizeof(kinds), "%s,%s", dt_kinds[lk], dt_kinds[rk]);
        return dt_fold(in, i, o, start, *i + 1, end,
                       t->s[0] == '+' ? "meridian_dt_add" : "meridian_dt_sub", true, kinds,
                       out);
    }
    return 0;
}

/* ---- strings, operators and clauses (strfuncs.c; docs/sql.md "Strings, regular
** expressions and JSON") ------------------------------------------------------------------
**   substring(x FROM a FOR b)      substring(x, a, b); FROM only: substring(x, a)
**                                   (a text a is a regular expression); FOR only:
**                                   substring(x, 1, b)
**   trim([BOTH|LEADING|TRAILING] [c] FROM x)   btrim|ltrim|rtrim(x [, c])
**   left(s, n), right(s, n)        "left"(s, n), "right"(s, n) (SQLite's keywords)
**   a [NOT] SIMILAR TO b [ESCAPE e]   a [NOT] REGEXP meridian_similar(b [, e])
**   a ^ b                          (power(a, b)) (left-associative, as PostgreSQL)
**   OFFSET n ROWS, FETCH {FIRST|NEXT} [n] ROWS ONLY   LIMIT n OFFSET m, in SQLite's
**                                   order; an OFFSET alone gets LIMIT -1
**   SELECT generate_series(a, b) ... without FROM   SELECT generate_series ...
**                                   FROM generate_series(a, b) (then as above)
**   TABLESAMPLE, LATERAL (subquery), CLUSTER, ROLLUP, CUBE, GROUPING SETS,
**   FETCH ... WITH TIES, a second set-returning call   0A000 naming it
** (LATERAL before a function call is dropped: SQLite's table-valued functions
** take the columns of the tables before them.) */

/* Remove t->v[at..at+count). */
static void drop_tokens(toks *t, size_t at, size_t count) {
    memmove(&t->v[at], &t->v[at + count], (t->n - at - count) * sizeof(*t->v));
    t->n -= count;
}

static void reverse_tokens(tok *v, size_t a, size_t b) {
    for (; a + 1 < b; a++, b--) {
        tok x = v[a];
        v[a] = v[b - 1];
        v[b - 1] = x;
    }
}

/* Move v[m..b) before v[a..m). */
static void rotate_tokens(tok *v, size_t a, size_t m, size_t b) {
    reverse_tokens(v, a, m);
    reverse_tokens(v, m, b);
    reverse_tokens(v, a, b);
}

/* One past the primary expression at in->v[k]: signs, then a literal, a
** parameter, E'...', a typed literal, a (qualified) name, a call, CASE ...
** END or a parenthesized expression, then its ::type casts. k if none. */
static size_t primary_end(const toks *in, size_t k) {
    size_t n = in->n, start = k;
    while (k < n && (punct(&in->v[k], '-') || punct(&in->v[k], '+')))
        k++;
    if (k >= n) return start;
    const tok *t = &in->v[k];
    if (punct(t, '(')) {
        k = matching_close(in, k);
        if (k == n) return start;
        k++;
    } else if (is(t, "CASE")) {
        int d = 0;
        for (; k < n; k++) {
            if (is(&in->v[k], "CASE")) d++;
            if (is(&in->v[k], "END") && --d == 0) break;
        }
        if (k == n) return start;
        k++;
    } else if (t->kind == SQLV__TOK_STRING || t->kind == SQLV__TOK_OTHER) {
        k++;
    } else if (identish(t) && !is_keyword(t)) {
        k++;
        if (k < n && in->v[k].kind == SQLV__TOK_STRING) return k + 1; /* E'..', date '..' */
        while (k + 1 < n && punct(&in->v[k], '.') && identish(&in->v[k + 1]))
            k += 2;
        if (k < n && punct(&in->v[k], '(')) {
            k = matching_close(in, k);
            if (k == n) return start;
            k++;
        }
    } else {
        return start;
    }
    while (k + 1 < n && punct(&in->v[k], ':') && punct(&in->v[k + 1], ':') &&
           in->v[k + 1].s == in->v[k].s + 1) {
        size_t j = k + 2;
        char name[64];
        sqlv__rewrite ignored;
        if (parse_type(in->v, n, &j, name, sizeof(name), &ignored) != 0) break;
        k = j;
    }
    return k;
}

/* FETCH {FIRST|NEXT} [count] {ROW|ROWS} {ONLY|WITH TIES} at in->v[k]: the
** count in [*count_at, *count_end), one past the clause in *end. */
static bool fetch_clause(const toks *in, size_t k, size_t *count_at, size_t *count_end,
                         size_t *end, bool *ties) {
    size_t n = in->n;
    if (k + 1 >= n || !is(&in->v[k], "FETCH") ||
        !(is(&in->v[k + 1], "FIRST") || is(&in->v[k + 1], "NEXT")))
        return false;
    size_t j = k + 2;
    int d = 0;
    for (; j < n; j++) {
        if (punct(&in->v[j], '(')) d++;
        if (punct(&in->v[j], ')') && --d < 0) return false;
        if (d == 0 && (is(&in->v[j], "ROW") || is(&in->v[j], "ROWS"))) break;
    }
    if (j >= n) return false;
    *count_at = k + 2;
    *count_end = j;
    *ties = j + 2 < n && is(&in->v[j + 1], "WITH") && is(&in->v[j + 2], "TIES");
    if (*ties) {
        *end = j + 3;
        return true;
    }
    if (j + 1 >= n || !is(&in->v[j + 1], "ONLY")) return false;
    *end = j + 2;
    return true;
}

/* One past the expression of a LIMIT or OFFSET clause starting at k (its
** first token): the next depth-0 ROW(S)/FETCH/LIMIT/OFFSET/FOR or ')'. */
static size_t clause_expr_end(const toks *in, size_t k) {
    int d = 0;
    for (; k < in->n; k++) {
        const tok *e = &in->v[k];
        if (punct(e, '(')) d++;
        if (punct(e, ')') && --d < 0) break;
        if (d == 0 && (is(e, "ROW") || is(e, "ROWS") || is(e, "FETCH") || is(e, "LIMIT") ||
                       is(e, "OFFSET") || is(e, "FOR")))
            break;
    }
    return k;
}

/* A LIMIT or FETCH earlier in the same query as in->v[k]? */
static bool limit_before(const toks *in, size_t k) {
    int d = 0;
    for (size_t j = k; j-- > 0;) {
        if (punct(&in->v[j], ')')) d++;
        if (punct(&in->v[j], '(') && --d < 0) return false;
        if (d == 0 && (is(&in->v[j], "LIMIT") || is(&in->v[j], "FETCH"))) return true;
    }
    return false;
}

/* SELECT ... generate_series(a, b) ... without a FROM: the call moves into a
** FROM clause (the main loop then rewrites it as any FROM generate_series)
** and a column of that name takes its place. 0, 1 rejected, -1 memory. */
static int srf_select_list(toks *in, sqlv__rewrite *out) {
    size_t n = in->n, list_end = n, call = SIZE_MAX, sel = 0;
    int d = 0, calls = 0;
    /* the statement's own SELECT (also of INSERT ... SELECT, CREATE TABLE AS) */
    for (; sel < n; sel++) {
        if (punct(&in->v[sel], '(')) d++;
        if (punct(&in->v[sel], ')')) d--;
        if (d == 0 && is(&in->v[sel], "SELECT")) break;
    }
    if (sel + 3 > n || d != 0) return 0;
    for (size_t k = sel + 1; k < n; k++) {
        const tok *e = &in->v[k];
        if (punct(e, '(')) d++;
        if (punct(e, ')')) d--;
        if (d != 0) continue;
        if (is(e, "FROM") || is(e, "UNION") || is(e, "INTERSECT") || is(e, "EXCEPT") ||
            is(e, "INTO"))
            return 0;
        if (list_end == n && (is(e, "WHERE") || is(e, "GROUP") || is(e, "HAVING") ||
                              is(e, "ORDER") || is(e, "LIMIT") || is(e, "OFFSET") ||
                              is(e, "FETCH") || is(e, "WINDOW") || is(e, "FOR")))
            list_end = k;
    }
    for (size_t k = sel + 1; k < list_end; k++) {
        if (is(&in->v[k], "SELECT")) return 0; /* a subquery: not ours */
        if (is(&in->v[k], "generate_series") && k + 1 < list_end && punct(&in->v[k + 1], '(') &&
            !punct(&in->v[k - 1], '.')) {
            calls++;
            call = k;
        }
    }
    if (calls == 0) return 0;
    if (calls > 1)
        return reject(out, "0A000",
                      "more than one set-returning function in a select list is not "
                      "supported%.*s",
                      "", 0);
    size_t close = matching_close(in, call + 1);
    if (close >= list_end) return 0; /* unbalanced: SQLite's syntax error */
    const char *ws = in->v[call].ws;
    size_t wslen = in->v[call].wslen;
    size_t rest = list_end - (close + 1);
    rotate_tokens(in->v, call, close + 1, list_end); /* the rest of the list, then the call */
    in->v[call + rest].ws = " ";
    in->v[call + rest].wslen = 1;
    tok col = mk(SQLV__TOK_WORD, "generate_series", "");
    col.ws = ws;
    col.wslen = wslen;
    if (insert_at(in, call + rest, mk(SQLV__TOK_WORD, "FROM", " ")) != 0 ||
        insert_at(in, call, col) != 0)
        return -1;
    return 0;
}

/* One of the constructs above at in->v[*i]: 2 rewritten into o (*i on its
** last token, or before the token to read next), 0 not one of them, 1
** rejected (out set), -1 memory. *depth is the main loop's parenthesis
** depth, kept right when a '(' goes to o alone. */
static int pgsyntax_rewrite(toks *in, size_t *i, toks *o, int *depth, sqlv__rewrite *out) {
    const tok *t = &in->v[*i];
    const tok *next = *i + 1 < in->n ? &in->v[*i + 1] : NULL;
    const tok *prev = o->n > 0 ? &o->v[o->n - 1] : NULL;
    bool call = t->kind == SQLV__TOK_WORD && next && punct(next, '(') && !(prev && punct(prev, '.'));
    if (t->kind == SQLV__TOK_WORD) {
        static const char *const refused[] = {"TABLESAMPLE", "ROLLUP", "CUBE"};
        for (size_t k = 0; k < BASE_ARRAY_LEN(refused); k++)
            if (is(t, refused[k]) && (k == 0 || (call && prev && (is(prev, "BY") || punct(prev, ',')))))
                return reject(out, "0A000", "%.*s is not supported", refused[k],
                              strlen(refused[k]));
        if (is(t, "GROUPING") && next && is(next, "SETS"))
            return reject(out, "0A000", "GROUPING SETS is not supported%.*s", "", 0);
        if (*i == 0 && is(t, "CLUSTER"))
            return reject(out, "0A000",
                          "CLUSTER is not supported (a table is stored in primary key "
                          "order)%.*s",
                          "", 0);
        if (is(t, "LATERAL") && next) {
            if (punct(next, '('))
                return reject(out, "0A000", "LATERAL subqueries are not supported%.*s", "", 0);
            if (is(next, "generate_series")) return 2; /* dropped */
        }
    }
    /* left(s, n), right(s, n) */
    if (call && (is(t, "left") || is(t, "right"))) {
        tok q = mk(SQLV__TOK_QUOTED, is(t, "left") ? "\"left\"" : "\"right\"", "");
        q.ws = t->ws;
        q.wslen = t->wslen;
        return push(o, q) != 0 ? -1 : 2;
    }
    /* substring(x FROM a FOR b) */
    if (call && is(t, "substring")) {
        size_t close = matching_close(in, *i + 1), f = SIZE_MAX, r = SIZE_MAX;
        int d = 0;
        for (size_t k = *i + 1; k < close; k++) {
            if (punct(&in->v[k], '(')) d++;
            if (punct(&in->v[k], ')')) d--;
            if (d == 1 && is(&in->v[k], "FROM") && f == SIZE_MAX) f = k;
            if (d == 1 && is(&in->v[k], "FOR") && r == SIZE_MAX) r = k;
        }
        if (close == in->n || (f == SIZE_MAX && r == SIZE_MAX)) return 0;
        if (f != SIZE_MAX && r != SIZE_MAX && r < f) { /* x FOR b FROM a */
            rotate_tokens(in->v, r, f, close);
            f = r;
            r = f + 1;
            while (!is(&in->v[r], "FOR"))
                r++;
        }
        if (f != SIZE_MAX) in->v[f] = mk(SQLV__TOK_PUNCT, ",", "");
        if (r != SIZE_MAX) in->v[r] = f != SIZE_MAX ? mk(SQLV__TOK_PUNCT, ",", "")
                                                    : mk(SQLV__TOK_OTHER, ", 1,", "");
        return push(o, *t) != 0 ? -1 : 2;
    }
    /* trim([BOTH|LEADING|TRAILING] [chars] FROM x) */
    if (call && is(t, "trim")) {
        size_t close = matching_close(in, *i + 1), k = *i + 2, f = SIZE_MAX;
        if (close == in->n) return 0;
        const char *fn = "btrim";
        bool mode = k < close && (is(&in->v[k], "BOTH") || is(&in->v[k], "LEADING") ||
                                  is(&in->v[k], "TRAILING"));
        if (mode) fn = is(&in->v[k], "LEADING") ? "ltrim" : is(&in->v[k], "TRAILING") ? "rtrim" : fn;
        int d = 0;
        for (size_t j = k; j < close; j++) {
            if (punct(&in->v[j], '(')) d++;
            if (punct(&in->v[j], ')')) d--;
            if (d == 0 && is(&in->v[j], "FROM")) {
                f = j;
                break;
            }
        }
        if (!mode && f == SIZE_MAX) return 0; /* trim(x [, chars]): SQLite's */
        if (mode) {
            drop_tokens(in, k, 1);
            close--;
            if (f != SIZE_MAX) f--;
        }
        if (f != SIZE_MAX && f == k) { /* no characters: trim(BOTH FROM x) */
            drop_tokens(in, f, 1);
        } else if (f != SIZE_MAX) { /* chars FROM x => x, chars */
            size_t len = close - f - 1;
            rotate_tokens(in->v, k, f, close);          /* FROM x chars */
            rotate_tokens(in->v, k, k + 1, k + 1 + len); /* x FROM chars */
            in->v[k + len] = mk(SQLV__TOK_PUNCT, ",", "");
            in->v[k + len + 1].ws = " ";
            in->v[k + len + 1].wslen = 1;
        }
        if (k < in->n) {
            in->v[k].ws = "";
            in->v[k].wslen = 0;
        }
        tok w = mk(SQLV__TOK_WORD, fn, "");
        w.ws = t->ws;
        w.wslen = t->wslen;
        return push(o, w) != 0 ? -1 : 2;
    }
    /* a [NOT] SIMILAR TO b [ESCAPE e] */
    if (is(t, "SIMILAR") && next && is(next, "TO")) {
        size_t a = *i + 2, e = primary_end(in, a), close_at = e;
        if (e == a) return 0;
        if (e < in->n && is(&in->v[e], "ESCAPE")) {
            close_at = primary_end(in, e + 1);
            if (close_at == e + 1) return 0;
            in->v[e] = mk(SQLV__TOK_PUNCT, ",", "");
        }
        tok w = mk(SQLV__TOK_WORD, "REGEXP", "");
        w.ws = t->ws;
        w.wslen = t->wslen;
        in->v[a].ws = "";
        in->v[a].wslen = 0;
        if (insert_at(in, close_at, mk(SQLV__TOK_PUNCT, ")", "")) != 0 || push(o, w) != 0 ||
            push(o, mk(SQLV__TOK_WORD, "meridian_similar", " ")) != 0 ||
            push(o, mk(SQLV__TOK_PUNCT, "(", "")) != 0)
            return -1;
        (*depth)++;
        *i = a - 1;
        return 2;
    }
    /* a ^ b: parenthesized, so that the column is "?column?", as PostgreSQL
    ** names an operator's result (and not "power") */
    if (punct(t, '^')) {
        long start = operand_start(o);
        size_t e = primary_end(in, *i + 1);
        if (start < 0 || e == *i + 1) return 0;
        tok open = mk(SQLV__TOK_PUNCT, "(", "");
        open.ws = o->v[start].ws;
        open.wslen = o->v[start].wslen;
        o->v[start].ws = "";
        o->v[start].wslen = 0;
        if (insert_at(in, e, mk(SQLV__TOK_PUNCT, ")", "")) != 0 ||
            insert_at(in, e, mk(SQLV__TOK_PUNCT, ")", "")) != 0 ||
            insert_at(o, (size_t)start, mk(SQLV__TOK_PUNCT, "(", "")) != 0 ||
            insert_at(o, (size_t)start, mk(SQLV__TOK_WORD, "power", "")) != 0 ||
            insert_at(o, (size_t)start, open) != 0 || push(o, mk(SQLV__TOK_PUNCT, ",", "")) != 0)
            return -1;
        *depth += 2;
        return 2;
    }
    /* FETCH FIRST n ROWS ONLY => LIMIT n */
    size_t count_at, count_end, end;
    bool ties;
    if (is(t, "FETCH") && operand_end(prev) &&
        fetch_clause(in, *i, &count_at, &count_end, &end, &ties)) {
        if (ties) return reject(out, "0A000", "FETCH ... WITH TIES is not supported%.*s", "", 0);
        tok w = mk(SQLV__TOK_WORD, "LIMIT", "");
        w.ws = t->ws;
        w.wslen = t->wslen;
        if (push(o, w) != 0) return -1;
        drop_tokens(in, count_end, end - count_end);
        *i = count_at - 1; /* on FIRST/NEXT: the count is read next */
        if (count_end == count_at && push(o, mk(SQLV__TOK_OTHER, "1", " ")) != 0) return -1;
        return 2;
    }
    /* OFFSET n [ROW|ROWS]: before a LIMIT (SQLite's order), or with LIMIT -1 */
    if (is(t, "OFFSET") && operand_end(prev) && *i > 0) {
        size_t e = clause_expr_end(in, *i + 1);
        if (e < in->n && (is(&in->v[e], "ROW") || is(&in->v[e], "ROWS"))) drop_tokens(in, e, 1);
        if (e < in->n && (is(&in->v[e], "LIMIT") || is(&in->v[e], "FETCH"))) {
            size_t ce = clause_expr_end(in, e + 1);
            if (is(&in->v[e], "FETCH") && !fetch_clause(in, e, &count_at, &count_end, &ce, &ties))
                return 0;
            const char *ws = in->v[*i].ws;
            size_t wslen = in->v[*i].wslen;
            in->v[*i].ws = " ";
            in->v[*i].wslen = 1;
            in->v[e].ws = ws;
            in->v[e].wslen = wslen;
            rotate_tokens(in->v, *i, e, ce);
            (*i)--; /* read the LIMIT/FETCH next */
            return 2;
        }
        if (limit_before(in, *i)) return 0;
        tok w = mk(SQLV__TOK_WORD, "LIMIT", "");
        w.ws = t->ws;
        w.wslen = t->wslen;
        tok off = *t;
        off.ws = " ";
        off.wslen = 1;
        if (push(o, w) != 0 || push(o, mk(SQLV__TOK_OTHER, "-1", " ")) != 0 || push(o, off) != 0)
            return -1;
        return 2;
    }
    return 0;
}

/* Does a locking clause (FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY
** SHARE) start at v[i] of a query (SELECT, WITH, or a parenthesized one)? */
static bool locking_clause(const tok *v, size_t n, size_t i) {
    if (n == 0 || !(is(&v[0], "SELECT") || is(&v[0], "WITH") || punct(&v[0], '(')) ||
        !is(&v[i], "FOR") || i + 1 >= n)
        return false;
    size_t k = i + 1;
    if (is(&v[k], "UPDATE") || is(&v[k], "SHARE")) return true;
    if (is(&v[k], "NO")) return k + 2 < n && is(&v[k + 1], "KEY") && is(&v[k + 2], "UPDATE");
    return is(&v[k], "KEY") && k + 1 < n && is(&v[k + 1], "SHARE");
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
    /* SELECT generate_series(...) without FROM (pgsyntax_rewrite's block) */
    rc = srf_select_list(&in, out);
    if (rc != 0) goto cleanup;
    rc = -1;
    bool create = in.n > 0 && is(&in.v[0], "CREATE");
    bool create_table = is_create_table(in.v, in.n);
    /* ALTER TABLE ... ADD COLUMN / ALTER COLUMN ... SET DEFAULT: its DEFAULT
    ** is at depth 0 (session.c builds the CREATE text from it) */
    bool alter_table = in.n > 1 && is(&in.v[0], "ALTER") && is(&in.v[1], "TABLE");
    int depth = 0;
    bool saw_columns = false; /* CREATE TABLE: the column list closed */
    bool from_seen = false;   /* a depth-0 FROM was seen */
    size_t series_close = SIZE_MAX; /* index of generate_series' ')', or none */
    size_t series_skip_to = 0;
    tok series_alias = {0};
    size_t default_close = SIZE_MAX; /* CREATE TABLE: where a DEFAULT's ( closes */
    for (size_t i = 0; i < in.n; i++) {
        tok *t = &in.v[i];
        tok *next = i + 1 < in.n ? &in.v[i + 1] : NULL;
        const tok *prev = o.n > 0 ? &o.v[o.n - 1] : NULL;
        if (default_close == i) {
            if (push(&o, mk(SQLV__TOK_PUNCT, ")", "")) != 0) goto cleanup;
            default_close = SIZE_MAX;
        }
        /* CREATE TABLE: DEFAULT now(), DEFAULT 'x'::text... SQLite takes
        ** only a literal or a parenthesized expression there */
        if (((create_table && !saw_columns && depth == 1) || (alter_table && depth == 0)) &&
            default_close == SIZE_MAX && is(t, "DEFAULT") &&
            !(i > 0 && is(&in.v[i - 1], "BY"))) { /* GENERATED BY DEFAULT AS IDENTITY */
            size_t k = i + 1;
            int d = 0;
            for (; k < in.n; k++) {
                const tok *e = &in.v[k];
                if (punct(e, '(')) d++;
                if (punct(e, ')') && --d < 0) break;
                if (d == 0 && (punct(e, ',') ||
                               (k > i + 1 && (is(e, "NOT") || is(e, "NULL") || is(e, "PRIMARY") ||
                                              is(e, "UNIQUE") || is(e, "CHECK") ||
                                              is(e, "REFERENCES") || is(e, "CONSTRAINT") ||
                                              is(e, "COLLATE") || is(e, "GENERATED")))))
                    break;
            }
            size_t n = k - (i + 1);
            bool signed_literal = n == 2 && (punct(&in.v[i + 1], '-') || punct(&in.v[i + 1], '+'));
            /* ALTER: a bare word (CURRENT_TIMESTAMP becomes now() below) too */
            bool alter_word = alter_table && n == 1 && in.v[i + 1].kind == SQLV__TOK_WORD &&
                              !is(&in.v[i + 1], "NULL");
            if ((n > 1 && !signed_literal) || alter_word) {
                if (push(&o, *t) != 0 || push(&o, mk(SQLV__TOK_PUNCT, "(", " ")) != 0)
                    goto cleanup;
                default_close = k;
                continue;
            }
        }
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
                    !is(&in.v[a], "NATURAL") && !is(&in.v[a], "WINDOW") &&
                    !is(&in.v[a], "FETCH")) {
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
        /* dates and times: casts, typed literals, extract, + and - (above) */
        {
            int drc = datetime_rewrite(&in, &i, &o, out);
            if (drc < 0) goto cleanup;
            if (drc == 1) {
                rc = 1;
                goto cleanup;
            }
            if (drc == 2) continue;
        }
        /* strings, operators and clauses: substring, trim, ^, FETCH... (above) */
        {
            int prc = pgsyntax_rewrite(&in, &i, &o, &depth, out);
            if (prc < 0) goto cleanup;
            if (prc == 1) {
                rc = 1;
                goto cleanup;
            }
            if (prc == 2) continue;
        }
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
            bool regclass = strcmp(ty, "REGCLASS") == 0; /* name <-> OID (pgcatalog_fn.c) */
            tok open = mk(SQLV__TOK_PUNCT, "(", "");
            tok fn = mk(SQLV__TOK_WORD,
                        boolean ? "meridian_bool" : regclass ? "meridian_regclass" : "CAST", "");
            fn.ws = ws;
            fn.wslen = wslen;
            if (insert_at(&o, (size_t)start, open) != 0 || insert_at(&o, (size_t)start, fn) != 0)
                goto cleanup;
            if (!boolean && !regclass) {
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
            if (strcasecmp(w, "information_schema") == 0) { /* the catalogs (pgcatalog.c) */
                char x[64];
                const char *rel = ident(&in.v[i + 2], x, sizeof(x)) == 0
                                      ? sqlv__pgcat_information_schema(x)
                                      : NULL;
                if (rel == NULL) {
                    rc = reject(out, "0A000",
                                "system catalog relation \"information_schema.%.*s\" is not "
                                "supported yet",
                                in.v[i + 2].s, in.v[i + 2].len);
                    goto cleanup;
                }
                tok m = mk(SQLV__TOK_WORD, rel, "");
                m.ws = t->ws;
                m.wslen = t->wslen;
                if (push(&o, m) != 0) goto cleanup;
                i += 2;
                continue;
            }
            if (strcasecmp(w, "meridian_internal") == 0) { /* system tables (ranges.c) */
                char x[64];
                const char *rel = ident(&in.v[i + 2], x, sizeof(x)) == 0
                                      ? sqlv__ranges_internal_relation(x)
                                      : NULL;
                if (rel == NULL) {
                    rc = reject(out, "42P01", "relation \"meridian_internal.%.*s\" does not exist",
                                in.v[i + 2].s, in.v[i + 2].len);
                    goto cleanup;
                }
                tok m = mk(SQLV__TOK_WORD, rel, "");
                m.ws = t->ws;
                m.wslen = t->wslen;
                if (push(&o, m) != 0) goto cleanup;
                i += 2;
                continue;
            }
            if (prev && names_relation(o.v, o.n - 1)) {
                rc = reject(out, "3F000", "schema \"%.*s\" does not exist", w, strlen(w));
                goto cleanup;
            }
        }
        /* COLLATE "C", COLLATE pg_catalog.default */
        if (is(t, "COLLATE") && next) {
            char w[64];
            if (i + 3 < in.n && is(next, "pg_catalog") && punct(&in.v[i + 2], '.')) {
                next = &in.v[i + 3];
                if (ident(next, w, sizeof(w)) == 0 &&
                    (strcmp(w, "C") == 0 || strcmp(w, "POSIX") == 0 ||
                     strcasecmp(w, "default") == 0)) {
                    i += 3;
                    continue;
                }
                next = &in.v[i + 1];
            }
            if (ident(next, w, sizeof(w)) == 0 &&
                (strcmp(w, "C") == 0 || strcmp(w, "POSIX") == 0 || strcasecmp(w, "default") == 0 ||
                 strcasecmp(w, "ucs_basic") == 0)) {
                i++;
                continue;
            }
        }
        /* The constructs of psql's and drivers' catalog queries (below). */
        {
            int crc = catalog_rewrite(&in, &i, &o, text, len, out);
            if (crc < 0) goto cleanup;
            if (crc == 1) {
                rc = 1;
                goto cleanup;
            }
            if (crc == 2) continue;
        }
        /* SELECT ... FOR [NO KEY] UPDATE | FOR [KEY] SHARE [OF t, ...]: SQLite
        ** has no row locks; the clause becomes SQLV__LOCKING_MARK, a comment
        ** by which vtab.c knows the statement's reads lock (docs/txn.md 5) */
        if (locking_clause(in.v, in.n, i)) {
            size_t k = i + 1;
            if (is(&in.v[k], "NO") || is(&in.v[k], "KEY")) k++;
            if (is(&in.v[k], "KEY")) k++;
            k++; /* UPDATE or SHARE */
            if (k < in.n && is(&in.v[k], "OF")) {
                for (k++; k < in.n && (identish(&in.v[k]) || punct(&in.v[k], '.') ||
                                       punct(&in.v[k], ','));
                     k++) {
                }
            }
            if (k < in.n && (is(&in.v[k], "NOWAIT") || is(&in.v[k], "SKIP"))) {
                rc = reject(out, "0A000", "%.*s is not supported in a locking clause: Meridian "
                            "waits for the lock", in.v[k].s, in.v[k].len);
                goto cleanup;
            }
            tok m = mk(SQLV__TOK_OTHER, SQLV__LOCKING_MARK, "");
            m.ws = t->ws;
            m.wslen = t->wslen;
            if (push(&o, m) != 0) goto cleanup;
            i = k - 1;
            continue;
        }
        /* position(x IN y): the IN at the call's own depth becomes a comma;
        ** position(x, y) is the session's function (settings.c) */
        if (is(t, "position") && next && punct(next, '(') && !(prev && punct(prev, '.'))) {
            int d = 0;
            for (size_t k = i + 1; k < in.n; k++) {
                if (punct(&in.v[k], '(')) d++;
                if (punct(&in.v[k], ')') && --d == 0) break;
                if (d == 1 && is(&in.v[k], "IN")) {
                    in.v[k].kind = SQLV__TOK_PUNCT;
                    in.v[k].s = ",";
                    in.v[k].len = 1;
                    break;
                }
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
    if (default_close == in.n && push(&o, mk(SQLV__TOK_PUNCT, ")", "")) != 0) /* ALTER: at the end */
        goto cleanup;
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
    toks_free_owned(&o);
    base_free(o.v);
    return rc;
}
