/*
** A tiny SQL tokenizer: enough to split a query string into statements and
** to recognise the statements the session handles itself (BEGIN, COMMIT,
** ROLLBACK, SET, SHOW, CREATE TABLE, DROP TABLE). SQLite parses the rest.
**
** Invariants: never reads past end; every call advances or returns END, so
** loops over tokens terminate.
*/
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "sql_lex.h"

static bool is_ident_start(int c) { return isalpha(c) || c == '_' || c >= 0x80; }
static bool is_ident_char(int c) { return isalnum(c) || c == '_' || c == '$' || c >= 0x80; }

/* Skip whitespace and comments. */
static const char *skip_space(const char *p, const char *end) {
    for (;;) {
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
            while (p < end && *p != '\n')
                p++;
            continue;
        }
        if (end - p >= 2 && p[0] == '/' && p[1] == '*') {
            p += 2;
            while (end - p >= 2 && !(p[0] == '*' && p[1] == '/'))
                p++;
            p = end - p >= 2 ? p + 2 : end;
            continue;
        }
        return p;
    }
}

const char *sqlv__lex_skip_space(const char *p, const char *end) { return skip_space(p, end); }

sqlv__token sqlv__lex_next(const char **pp, const char *end) {
    sqlv__token t = {SQLV__TOK_END, NULL, 0};
    const char *p = skip_space(*pp, end);
    const char *s = p;
    if (p >= end) {
        *pp = end;
        t.start = end;
        return t;
    }
    unsigned char c = (unsigned char)*p;
    if (is_ident_start(c)) {
        while (p < end && is_ident_char((unsigned char)*p))
            p++;
        t.kind = SQLV__TOK_WORD;
    } else if (c == '"' || c == '\'' || c == '`') {
        char q = (char)c;
        p++;
        while (p < end) {
            if (*p == q) {
                if (p + 1 < end && p[1] == q) {
                    p += 2;
                    continue;
                }
                p++;
                break;
            }
            p++;
        }
        t.kind = c == '\'' ? SQLV__TOK_STRING : SQLV__TOK_QUOTED;
    } else if (c == '[') {
        while (p < end && *p != ']')
            p++;
        if (p < end) p++;
        t.kind = SQLV__TOK_QUOTED;
    } else if (c == '$' && p + 1 < end && (p[1] == '$' || is_ident_start((unsigned char)p[1]))) {
        /* $$...$$ or $tag$...$tag$ dollar quoting, or a $name parameter. */
        const char *q = p + 1;
        while (q < end && is_ident_char((unsigned char)*q) && *q != '$')
            q++;
        if (q < end && *q == '$') {
            size_t taglen = (size_t)(q - p) + 1;
            const char *body = q + 1;
            const char *r = body;
            while (r < end && !((size_t)(end - r) >= taglen && memcmp(r, p, taglen) == 0))
                r++;
            p = r < end ? r + taglen : end;
            t.kind = SQLV__TOK_STRING;
        } else {
            p = q;
            t.kind = SQLV__TOK_OTHER;
        }
    } else if (c == '$' && p + 1 < end && isdigit((unsigned char)p[1])) {
        /* a positional parameter: $1 */
        p++;
        while (p < end && isdigit((unsigned char)*p))
            p++;
        t.kind = SQLV__TOK_OTHER;
    } else if (isdigit(c)) {
        while (p < end && (isalnum((unsigned char)*p) || *p == '.'))
            p++;
        t.kind = SQLV__TOK_OTHER;
    } else {
        p++;
        t.kind = c == ';' ? SQLV__TOK_SEMI : SQLV__TOK_PUNCT;
    }
    t.start = s;
    t.len = (size_t)(p - s);
    *pp = p;
    return t;
}

bool sqlv__tok_is(const sqlv__token *t, const char *word) {
    size_t n = strlen(word);
    return t->kind == SQLV__TOK_WORD && t->len == n && strncasecmp(t->start, word, n) == 0;
}

bool sqlv__tok_punct(const sqlv__token *t, char c) {
    return t->kind == SQLV__TOK_PUNCT && t->len == 1 && t->start[0] == c;
}

int sqlv__tok_ident(const sqlv__token *t, char *out, size_t size) {
    size_t o = 0;
    if (t->kind == SQLV__TOK_WORD) {
        if (t->len + 1 > size) return -1;
        memcpy(out, t->start, t->len);
        out[t->len] = 0;
        return 0;
    }
    if (t->kind != SQLV__TOK_QUOTED || t->len < 2) return -1;
    char q = t->start[0];
    char close = q == '[' ? ']' : q;
    if (t->start[t->len - 1] != close) return -1;
    for (size_t i = 1; i + 1 < t->len; i++) {
        if (t->start[i] == close && close != ']' && i + 2 < t->len && t->start[i + 1] == close) i++;
        if (o + 1 >= size) return -1;
        out[o++] = t->start[i];
    }
    out[o] = 0;
    return o == 0 ? -1 : 0;
}
