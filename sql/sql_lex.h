/* sql/ internal: a tiny tokenizer (lex.c). Nothing outside sql/ includes it. */
#ifndef MERIDIAN_SQL_LEX_H
#define MERIDIAN_SQL_LEX_H

#include <stdbool.h>
#include <stddef.h>

typedef enum sqlv__token_kind {
    SQLV__TOK_END = 0,
    SQLV__TOK_WORD,   /* identifier or keyword, unquoted */
    SQLV__TOK_QUOTED, /* "ident", `ident`, [ident] */
    SQLV__TOK_STRING, /* 'text', $$text$$ */
    SQLV__TOK_SEMI,   /* ; */
    SQLV__TOK_PUNCT,  /* any other single character */
    SQLV__TOK_OTHER,  /* numbers, parameters */
} sqlv__token_kind;

typedef struct sqlv__token {
    sqlv__token_kind kind;
    const char *start; /* borrowed from the input */
    size_t len;
} sqlv__token;

/* Next token from *pp (advanced past it); END at end. */
sqlv__token sqlv__lex_next(const char **pp, const char *end);
const char *sqlv__lex_skip_space(const char *p, const char *end);
/* Case-insensitive keyword match. */
bool sqlv__tok_is(const sqlv__token *t, const char *word);
bool sqlv__tok_punct(const sqlv__token *t, char c);
/* An identifier's name (quotes removed) into out; -1 if not an identifier
** or too long. */
int sqlv__tok_ident(const sqlv__token *t, char *out, size_t size);

#endif
