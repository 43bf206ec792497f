/*
** cli/cli_split.c: cuts shell input into SQL statements.
**
** A statement ends at a ';' in the NORMAL state. The lexical states follow
** PostgreSQL's lexer closely enough for a shell:
**   NORMAL -'- SQUOTE ('' inside stays in the string: close then reopen),
**   NORMAL -E'- ESTRING (backslash escapes the next byte),
**   NORMAL -"- DQUOTE, NORMAL -$tag$- DOLLAR (until the same $tag$),
**   NORMAL -"--"- LINE_COMMENT (until newline), NORMAL -slash-star- BLOCK
**   (nested, as in PostgreSQL).
** Invariants: buf[start..scan) has been classified and the state describes
** the lexer at scan; bytes whose meaning depends on bytes not yet pushed are
** left unscanned until more input arrives (or cli_splitter_finish).
*/
#include "cli/cli_int.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

enum {
    ST_NORMAL = 0,
    ST_SQUOTE,
    ST_ESTRING,
    ST_DQUOTE,
    ST_DOLLAR,
    ST_LINE_COMMENT,
    ST_BLOCK_COMMENT,
};

void cli_splitter_init(cli_splitter *s) { memset(s, 0, sizeof *s); }

void cli_splitter_free(cli_splitter *s) {
    base_buf_free(&s->buf);
    memset(s, 0, sizeof *s);
}

void cli_splitter_reset(cli_splitter *s) {
    base_buf_reset(&s->buf);
    s->scan = s->start = 0;
    s->state = ST_NORMAL;
    s->comment_depth = 0;
    s->has_content = false;
    s->tag_len = 0;
}

int cli_splitter_push(cli_splitter *s, const char *text, size_t len) {
    if (s->start > 0) { /* compact: drop statements already returned */
        size_t keep = s->buf.len - s->start;
        memmove(s->buf.data, s->buf.data + s->start, keep);
        s->buf.len = keep;
        s->scan -= s->start;
        s->start = 0;
    }
    if (s->buf.len + len > CLI_STATEMENT_SIZE_MAX) {
        cli_splitter_reset(s);
        return -1;
    }
    if (base_buf_append(&s->buf, text, len) != 0) return -ENOMEM;
    return 0;
}

static bool ident_char(unsigned char c) { return isalnum(c) || c == '_' || c >= 0x80; }

/* At buf[i] == '$' in NORMAL: the length of a $tag$ opener starting there,
** 0 when it is not one, -1 when more input is needed to know. */
static long dollar_tag_len(const cli_splitter *s, size_t i, bool at_eof) {
    const char *b = (const char *)s->buf.data;
    size_t n = s->buf.len;
    if (i > s->start && ident_char((unsigned char)b[i - 1])) return 0; /* a$b */
    size_t j = i + 1;
    if (j < n && isdigit((unsigned char)b[j])) return 0; /* $1 parameter */
    while (j < n && (isalnum((unsigned char)b[j]) || b[j] == '_')) j++;
    if (j >= n) return at_eof ? 0 : -1;
    if (b[j] != '$') return 0;
    if (j + 1 - i > CLI_DOLLAR_TAG_SIZE_MAX) return 0;
    return (long)(j + 1 - i);
}

/* The first byte of a statement: leading whitespace and comments are not
** part of it. */
static void mark_content(cli_splitter *s, size_t i) {
    if (!s->has_content) {
        s->start = i;
        s->has_content = true;
    }
}

static int emit(cli_splitter *s, size_t end, char **out) {
    const char *b = (const char *)s->buf.data;
    size_t a = s->start, z = end;
    while (a < z && isspace((unsigned char)b[a])) a++;
    while (z > a && isspace((unsigned char)b[z - 1])) z--;
    char *stmt = base_strndup(b + a, z - a);
    if (stmt == NULL) return -ENOMEM;
    *out = stmt;
    return 1;
}

/* Scan forward; returns 1 with a statement end in *end_out, 0 when the
** input ran out (or needs more bytes). */
static int scan(cli_splitter *s, bool at_eof, size_t *end_out) {
    const char *b = (const char *)s->buf.data;
    size_t n = s->buf.len;
    size_t i = s->scan;
    while (i < n) {
        unsigned char c = (unsigned char)b[i];
        bool have_next = i + 1 < n;
        unsigned char nx = have_next ? (unsigned char)b[i + 1] : 0;
        switch (s->state) {
        case ST_NORMAL:
            if (c == ';') {
                s->scan = i + 1;
                *end_out = i + 1;
                return 1;
            } else if (c == '\'') {
                bool estring = i > s->start && (b[i - 1] == 'E' || b[i - 1] == 'e') &&
                               (i - 1 == s->start || !ident_char((unsigned char)b[i - 2]));
                s->state = estring ? ST_ESTRING : ST_SQUOTE;
                mark_content(s, i);
            } else if (c == '"') {
                s->state = ST_DQUOTE;
                mark_content(s, i);
            } else if (c == '-' || c == '/') {
                if (!have_next && !at_eof) goto need_more;
                if (c == '-' && nx == '-') {
                    s->state = ST_LINE_COMMENT;
                    i++;
                } else if (c == '/' && nx == '*') {
                    s->state = ST_BLOCK_COMMENT;
                    s->comment_depth = 1;
                    i++;
                } else {
                    mark_content(s, i);
                }
            } else if (c == '$') {
                long t = dollar_tag_len(s, i, at_eof);
                if (t < 0) goto need_more;
                mark_content(s, i);
                if (t > 0) {
                    memcpy(s->tag, b + i, (size_t)t);
                    s->tag_len = (size_t)t;
                    s->state = ST_DOLLAR;
                    i += (size_t)t - 1;
                }
            } else if (!isspace(c)) {
                mark_content(s, i);
            }
            break;
        case ST_SQUOTE:
            if (c == '\'') s->state = ST_NORMAL;
            break;
        case ST_ESTRING:
            if (c == '\\') {
                if (!have_next && !at_eof) goto need_more;
                i++;
            } else if (c == '\'') {
                s->state = ST_NORMAL;
            }
            break;
        case ST_DQUOTE:
            if (c == '"') s->state = ST_NORMAL;
            break;
        case ST_DOLLAR:
            if (c == '$') {
                if (n - i < s->tag_len && !at_eof) goto need_more;
                if (n - i >= s->tag_len && memcmp(b + i, s->tag, s->tag_len) == 0) {
                    i += s->tag_len - 1;
                    s->state = ST_NORMAL;
                }
            }
            break;
        case ST_LINE_COMMENT:
            if (c == '\n') s->state = ST_NORMAL;
            break;
        case ST_BLOCK_COMMENT:
            if (!have_next && !at_eof && (c == '*' || c == '/')) goto need_more;
            if (c == '*' && nx == '/') {
                if (--s->comment_depth == 0) s->state = ST_NORMAL;
                i++;
            } else if (c == '/' && nx == '*') {
                s->comment_depth++;
                i++;
            }
            break;
        default:
            break;
        }
        i++;
    }
need_more:
    s->scan = i;
    return 0;
}

int cli_splitter_next(cli_splitter *s, char **out) {
    size_t end;
    while (scan(s, false, &end) == 1) {
        bool content = s->has_content;
        int rc = content ? emit(s, end, out) : 0;
        s->start = end;
        s->has_content = false;
        if (rc != 0) return rc;
    }
    return 0;
}

int cli_splitter_finish(cli_splitter *s, char **out) {
    size_t end;
    /* Statements still complete in the buffer come first, then the rest. */
    while (scan(s, true, &end) == 1) {
        bool content = s->has_content;
        int rc = content ? emit(s, end, out) : 0;
        s->start = end;
        s->has_content = false;
        if (rc != 0) return rc;
    }
    int rc = s->has_content ? emit(s, s->buf.len, out) : 0;
    cli_splitter_reset(s);
    return rc;
}

bool cli_splitter_pending(const cli_splitter *s) {
    if (s->has_content || (s->state != ST_NORMAL && s->state != ST_LINE_COMMENT)) return true;
    /* Unscanned bytes that are not whitespace also count. */
    for (size_t i = s->scan; i < s->buf.len; i++) {
        if (!isspace(s->buf.data[i])) return true;
    }
    return false;
}
