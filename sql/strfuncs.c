/*
** PostgreSQL's string, regular-expression and JSON functions, registered
** on each session's connection (docs/sql.md "Strings, regular expressions
** and JSON"): left, right, substring, btrim, split_part, lpad, rpad,
** repeat, reverse, initcap, concat, concat_ws, strpos, chr, ascii, md5,
** regexp_replace, greatest, least, pg_typeof, to_json(b), json(b)_build_
** object, json(b)_build_array, json_agg, jsonb_agg; and meridian_similar,
** which turns a SIMILAR TO pattern into the regular expression the dialect
** rewriter (dialect.c) hands to REGEXP.
**
** Regular expressions are POSIX extended ones (glibc's regcomp), translated
** as for ~ (sqlv__regex_translate in pgcatalog_fn.c): not PostgreSQL's ARE
** (no back-references, lookahead, non-greedy quantifiers, \w class
** shorthands beyond \d).
**
** Invariants: strings are UTF-8 and counted in characters, as PostgreSQL
** counts them; a function whose arguments include a NULL returns NULL,
** except concat, concat_ws (after the separator), greatest, least and the
** JSON builders, which take NULL as PostgreSQL does; no result grows past
** SQLV__VALUE_BYTES_MAX (54000); every loop is bounded by its input's
** length or the requested length, itself bounded.
*/
#define _GNU_SOURCE /* memmem */
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sql_int.h"

/* Longest pattern compiled (as for ~, pgcatalog_fn.c). */
#define STRFUNCS_PATTERN_BYTES_MAX 4096
/* SQLite's JSON subtype: a value built by a JSON function is embedded in
** another as JSON, not as a string. */
#define STRFUNCS_JSON_SUBTYPE 74

static void fail(sqlite3_context *ctx, const char *state, const char *msg) {
    sqlv__session_error(sqlite3_user_data(ctx), state, "%s", msg);
    sqlite3_result_error(ctx, msg, -1);
}

static bool any_null(int argc, sqlite3_value **argv) {
    for (int i = 0; i < argc; i++)
        if (sqlite3_value_type(argv[i]) == SQLITE_NULL) return true;
    return false;
}

/* The text of argv[i] (NULL after setting the out-of-memory error). */
static const char *text_arg(sqlite3_context *ctx, sqlite3_value *v, size_t *len) {
    const char *s = (const char *)sqlite3_value_text(v);
    if (s == NULL) {
        sqlite3_result_error_nomem(ctx);
        return NULL;
    }
    *len = (size_t)sqlite3_value_bytes(v);
    return s;
}

/* Result b's bytes (or the error that it grew too long / ran out of
** memory: rc) and free b. */
static void result_buf(sqlite3_context *ctx, base_buf *b, int rc) {
    if (rc == 0 && b->len > SQLV__VALUE_BYTES_MAX) {
        fail(ctx, "54000", "requested length too large");
    } else if (rc != 0) {
        sqlite3_result_error_nomem(ctx);
    } else {
        sqlite3_result_text(ctx, b->len ? (const char *)b->data : "", (int)b->len,
                            SQLITE_TRANSIENT);
    }
    base_buf_free(b);
}

/* Bytes of the UTF-8 character starting at p (at most the bytes left). */
static size_t char_len(const char *p, size_t left) {
    size_t n = 1;
    while (n < left && ((unsigned char)p[n] & 0xC0) == 0x80)
        n++;
    return n;
}

static int64_t char_count(const char *s, size_t len) {
    int64_t n = 0;
    for (size_t i = 0; i < len; i += char_len(s + i, len - i))
        n++;
    return n;
}

/* The byte offset of character k (0-based; clamped to len). */
static size_t char_offset(const char *s, size_t len, int64_t k) {
    size_t i = 0;
    for (; k > 0 && i < len; k--)
        i += char_len(s + i, len - i);
    return i;
}

/* ---- left, right, substring, btrim -------------------------------------------------- */

/* left(s, n): the first n characters; n < 0: all but the last -n. */
static void fn_left(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    size_t len;
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const char *s = text_arg(ctx, argv[0], &len);
    if (s == NULL) return;
    int64_t n = sqlite3_value_int64(argv[1]);
    if (n < 0) n = BASE_MAX(char_count(s, len) + n, 0);
    sqlite3_result_text(ctx, s, (int)char_offset(s, len, n), SQLITE_TRANSIENT);
}

/* right(s, n): the last n characters; n < 0: all but the first -n. */
static void fn_right(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    size_t len;
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const char *s = text_arg(ctx, argv[0], &len);
    if (s == NULL) return;
    int64_t n = sqlite3_value_int64(argv[1]);
    int64_t count = char_count(s, len);
    int64_t skip = n < 0 ? BASE_MIN(-n, count) : BASE_MAX(count - n, 0);
    size_t at = char_offset(s, len, skip);
    sqlite3_result_text(ctx, s + at, (int)(len - at), SQLITE_TRANSIENT);
}

typedef struct compiled {
    regex_t re;
    int cflags;
} compiled;

static void compiled_free(void *p) {
    compiled *c = p;
    regfree(&c->re);
    base_free(c);
}

/* The compiled pattern of argv[arg] with extra cflags (REG_ICASE): the
** statement's cached one, or a new one (*fresh) that the caller hands to
** keep_compiled when done with it; NULL after an error. */
static compiled *compile_arg(sqlite3_context *ctx, sqlite3_value **argv, int arg, int cflags,
                             bool *fresh) {
    char msg[300];
    compiled *c = sqlite3_get_auxdata(ctx, arg);
    *fresh = false;
    if (c != NULL && c->cflags == cflags) return c;
    size_t len;
    const char *pat = text_arg(ctx, argv[arg], &len);
    if (pat == NULL) return NULL;
    if (len > STRFUNCS_PATTERN_BYTES_MAX) {
        snprintf(msg, sizeof(msg), "regular expression too long (at most %d bytes)",
                 STRFUNCS_PATTERN_BYTES_MAX);
        fail(ctx, "54000", msg);
        return NULL;
    }
    base_buf ere = {0};
    int flags;
    int trc = sqlv__regex_translate(pat, &ere, &flags, msg, sizeof(msg));
    if (trc != 0) {
        base_buf_free(&ere);
        if (trc == -2)
            sqlite3_result_error_nomem(ctx);
        else
            fail(ctx, strstr(msg, "not supported") ? "0A000" : "2201B", msg);
        return NULL;
    }
    c = base_malloc(sizeof(*c));
    if (c == NULL) {
        base_buf_free(&ere);
        sqlite3_result_error_nomem(ctx);
        return NULL;
    }
    c->cflags = cflags;
    int rc = regcomp(&c->re, (const char *)ere.data, (flags & ~REG_NOSUB) | cflags);
    base_buf_free(&ere);
    if (rc != 0) {
        char err[200];
        regerror(rc, &c->re, err, sizeof(err));
        base_free(c);
        snprintf(msg, sizeof(msg), "invalid regular expression: %s", err);
        fail(ctx, "2201B", msg);
        return NULL;
    }
    *fresh = true;
    return c;
}

/* Hand a fresh c to SQLite's cache (last: SQLite may free it at once). */
static void keep_compiled(sqlite3_context *ctx, int arg, compiled *c, bool fresh) {
    if (fresh) sqlite3_set_auxdata(ctx, arg, c, compiled_free);
}

/* substring(s, pattern): the part matching the first parenthesized
** subexpression, or the whole match without one; NULL without a match. */
static void substring_regex(sqlite3_context *ctx, sqlite3_value **argv) {
    size_t len;
    bool fresh;
    const char *s = text_arg(ctx, argv[0], &len);
    if (s == NULL) return;
    compiled *c = compile_arg(ctx, argv, 1, 0, &fresh);
    if (c == NULL) return;
    regmatch_t m[2];
    regmatch_t *g = c->re.re_nsub > 0 ? &m[1] : &m[0];
    if (regexec(&c->re, s, 2, m, 0) != 0 || g->rm_so < 0)
        sqlite3_result_null(ctx);
    else
        sqlite3_result_text(ctx, s + g->rm_so, (int)(g->rm_eo - g->rm_so), SQLITE_TRANSIENT);
    keep_compiled(ctx, 1, c, fresh);
}

/* substring(s, from [, for]) in characters; substring(s, 'pattern'): a
** text second argument is a regular expression, as PostgreSQL resolves
** substring(text, text). */
static void fn_substring(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    size_t len;
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    if (argc == 2 && sqlite3_value_type(argv[1]) == SQLITE_TEXT) return substring_regex(ctx, argv);
    const char *s = text_arg(ctx, argv[0], &len);
    if (s == NULL) return;
    int64_t from = sqlite3_value_int64(argv[1]), end = INT64_MAX;
    if (argc > 2) {
        int64_t n = sqlite3_value_int64(argv[2]);
        if (n < 0) return fail(ctx, "22011", "negative substring length not allowed");
        end = from > INT64_MAX - n ? INT64_MAX : from + n;
    }
    if (from < 1) from = 1;
    if (end <= from) return sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
    size_t a = char_offset(s, len, from - 1);
    size_t b = end == INT64_MAX ? len : a + char_offset(s + a, len - a, end - from);
    sqlite3_result_text(ctx, s + a, (int)(b - a), SQLITE_TRANSIENT);
}

/* Is the character at p (n bytes) one of set's characters? */
static bool in_set(const char *p, size_t n, const char *set, size_t set_len) {
    for (size_t i = 0; i < set_len;) {
        size_t k = char_len(set + i, set_len - i);
        if (k == n && memcmp(set + i, p, n) == 0) return true;
        i += k;
    }
    return false;
}

/* btrim(s [, characters]): trim(BOTH ...) (SQLite's ltrim and rtrim serve
** LEADING and TRAILING). */
static void fn_btrim(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    size_t len, set_len = 1;
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const char *s = text_arg(ctx, argv[0], &len), *set = " ";
    if (s == NULL) return;
    if (argc > 1 && (set = text_arg(ctx, argv[1], &set_len)) == NULL) return;
    size_t a = 0, b = len;
    while (a < b) {
        size_t k = char_len(s + a, b - a);
        if (!in_set(s + a, k, set, set_len)) break;
        a += k;
    }
    while (b > a) {
        size_t k = b - 1;
        while (k > a && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
        if (!in_set(s + k, b - k, set, set_len)) break;
        b = k;
    }
    sqlite3_result_text(ctx, s + a, (int)(b - a), SQLITE_TRANSIENT);
}

/* ---- split_part, lpad, rpad, repeat, reverse, initcap, strpos, chr, ascii ----------- */

static void fn_split_part(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    size_t len, dlen;
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const char *s = text_arg(ctx, argv[0], &len);
    if (s == NULL) return;
    const char *d = text_arg(ctx, argv[1], &dlen);
    if (d == NULL) return;
    int64_t n = sqlite3_value_int64(argv[2]);
    if (n == 0) return fail(ctx, "22023", "field position must not be zero");
    if (dlen == 0) { /* the whole string is the one field */
        if (n == 1 || n == -1) return sqlite3_result_text(ctx, s, (int)len, SQLITE_TRANSIENT);
        return sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
    }
    /* the fields' count, for n < 0 */
    int64_t fields = 1;
    for (const char *p = s; (p = memmem(p, len - (size_t)(p - s), d, dlen)) != NULL; p += dlen)
        fields++;
    if (n < 0) n = fields + n + 1;
    if (n < 1 || n > fields) return sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
    const char *a = s;
    for (int64_t k = 1; k < n; k++)
        a = (const char *)memmem(a, len - (size_t)(a - s), d, dlen) + dlen;
    const char *b = memmem(a, len - (size_t)(a - s), d, dlen);
    sqlite3_result_text(ctx, a, (int)((b ? b : s + len) - a), SQLITE_TRANSIENT);
}

/* lpad/rpad(s, length [, fill]): s cut or filled to length characters. */
static void pad(sqlite3_context *ctx, int argc, sqlite3_value **argv, bool left) {
    size_t len, flen = 1;
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const char *s = text_arg(ctx, argv[0], &len), *fill = " ";
    if (s == NULL) return;
    if (argc > 2 && (fill = text_arg(ctx, argv[2], &flen)) == NULL) return;
    int64_t want = sqlite3_value_int64(argv[1]);
    if (want <= 0) return sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
    if (want > SQLV__VALUE_BYTES_MAX) return fail(ctx, "54000", "requested length too large");
    int64_t have = char_count(s, len);
    if (have >= want || flen == 0) {
        sqlite3_result_text(ctx, s, (int)char_offset(s, len, want), SQLITE_TRANSIENT);
        return;
    }
    base_buf b = {0};
    int rc = left ? 0 : base_buf_append(&b, s, len);
    size_t f = 0;
    for (int64_t k = have; k < want && rc == 0 && b.len <= SQLV__VALUE_BYTES_MAX; k++) {
        size_t n = char_len(fill + f, flen - f);
        rc = base_buf_append(&b, fill + f, n);
        f = f + n < flen ? f + n : 0;
    }
    if (rc == 0 && left) rc = base_buf_append(&b, s, len);
    result_buf(ctx, &b, rc);
}
static void fn_lpad(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    pad(ctx, argc, argv, true);
}
static void fn_rpad(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    pad(ctx, argc, argv, false);
}

static void fn_repeat(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    size_t len;
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const char *s = text_arg(ctx, argv[0], &len);
    if (s == NULL) return;
    int64_t n = sqlite3_value_int64(argv[1]);
    if (n <= 0 || len == 0) return sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
    if ((uint64_t)n > SQLV__VALUE_BYTES_MAX / len)
        return fail(ctx, "54000", "requested length too large");
    base_buf b = {0};
    int rc = 0;
    for (int64_t k = 0; k < n && rc == 0; k++)
        rc = base_buf_append(&b, s, len);
    result_buf(ctx, &b, rc);
}

static void fn_reverse(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    size_t len;
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const char *s = text_arg(ctx, argv[0], &len);
    if (s == NULL) return;
    char *r = base_malloc(len + 1); /* owner: this call */
    if (r == NULL) return sqlite3_result_error_nomem(ctx);
    for (size_t i = 0; i < len;) {
        size_t n = char_len(s + i, len - i);
        memcpy(r + len - i - n, s + i, n);
        i += n;
    }
    sqlite3_result_text(ctx, r, (int)len, SQLITE_TRANSIENT);
    base_free(r);
}

/* initcap: the first letter of each word (a run of letters and digits)
** upper case, the others lower case; ASCII letters only. */
static void fn_initcap(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    size_t len;
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const char *s = text_arg(ctx, argv[0], &len);
    if (s == NULL) return;
    char *r = base_malloc(len + 1); /* owner: this call */
    if (r == NULL) return sqlite3_result_error_nomem(ctx);
    bool in_word = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c >= 0x80;
        if (c >= 'a' && c <= 'z' && !in_word) c = (unsigned char)(c - 32);
        else if (c >= 'A' && c <= 'Z' && in_word) c = (unsigned char)(c + 32);
        r[i] = (char)c;
        in_word = alnum;
    }
    sqlite3_result_text(ctx, r, (int)len, SQLITE_TRANSIENT);
    base_free(r);
}

/* strpos(s, sub): sub's first position in characters, 0 if absent. */
static void fn_strpos(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    size_t len, sub_len;
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const char *s = text_arg(ctx, argv[0], &len);
    if (s == NULL) return;
    const char *sub = text_arg(ctx, argv[1], &sub_len);
    if (sub == NULL) return;
    const char *hit = sub_len == 0 ? s : memmem(s, len, sub, sub_len);
    sqlite3_result_int64(ctx, hit == NULL ? 0 : char_count(s, (size_t)(hit - s)) + 1);
}

static void fn_chr(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    int64_t c = sqlite3_value_int64(argv[0]);
    if (c == 0) return fail(ctx, "54000", "null character not permitted");
    if (c < 0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return fail(ctx, "54000", "requested character too large for encoding");
    char u[4];
    int n;
    if (c < 0x80) {
        u[0] = (char)c;
        n = 1;
    } else if (c < 0x800) {
        u[0] = (char)(0xC0 | (c >> 6));
        u[1] = (char)(0x80 | (c & 0x3F));
        n = 2;
    } else if (c < 0x10000) {
        u[0] = (char)(0xE0 | (c >> 12));
        u[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        u[2] = (char)(0x80 | (c & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (c >> 18));
        u[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        u[3] = (char)(0x80 | (c & 0x3F));
        n = 4;
    }
    sqlite3_result_text(ctx, u, n, SQLITE_TRANSIENT);
}

/* ascii(s): the code point of the first character, 0 for ''. */
static void fn_ascii(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    size_t len;
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const unsigned char *s = (const unsigned char *)text_arg(ctx, argv[0], &len);
    if (s == NULL) return;
    if (len == 0) return sqlite3_result_int(ctx, 0);
    size_t n = char_len((const char *)s, len);
    int64_t c = n == 1 ? s[0] : s[0] & (0x7F >> n);
    for (size_t i = 1; i < n; i++)
        c = (c << 6) | (s[i] & 0x3F);
    sqlite3_result_int64(ctx, c);
}

/* ---- concat, concat_ws -------------------------------------------------------------- */

/* The text PostgreSQL would print for v (a float as float8 prints). */
static int append_text(base_buf *b, sqlite3_value *v) {
    if (sqlite3_value_type(v) == SQLITE_FLOAT) {
        char num[64];
        sqlv__format_double(sqlite3_value_double(v), num, sizeof(num));
        return base_buf_append(b, num, strlen(num));
    }
    const unsigned char *s = sqlite3_value_text(v);
    if (s == NULL) return -1;
    return base_buf_append(b, s, (size_t)sqlite3_value_bytes(v));
}

/* concat(...): the arguments' text, NULLs skipped. */
static void fn_concat(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    base_buf b = {0};
    int rc = 0;
    for (int i = 0; i < argc && rc == 0 && b.len <= SQLV__VALUE_BYTES_MAX; i++)
        if (sqlite3_value_type(argv[i]) != SQLITE_NULL) rc = append_text(&b, argv[i]);
    result_buf(ctx, &b, rc);
}

/* concat_ws(sep, ...): NULL with a NULL separator; NULL arguments skipped. */
static void fn_concat_ws(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    if (argc < 1 || sqlite3_value_type(argv[0]) == SQLITE_NULL) return sqlite3_result_null(ctx);
    base_buf b = {0};
    int rc = 0;
    bool first = true;
    for (int i = 1; i < argc && rc == 0 && b.len <= SQLV__VALUE_BYTES_MAX; i++) {
        if (sqlite3_value_type(argv[i]) == SQLITE_NULL) continue;
        if (!first) rc = append_text(&b, argv[0]);
        if (rc == 0) rc = append_text(&b, argv[i]);
        first = false;
    }
    result_buf(ctx, &b, rc);
}

/* ---- md5 (RFC 1321) ------------------------------------------------------------------ */

typedef struct md5_state {
    uint32_t h[4];
    uint8_t block[64];
    uint64_t total_bytes;
} md5_state;

static uint32_t rotl(uint32_t x, int c) { return (x << c) | (x >> (32 - c)); }

static void md5_block(md5_state *m, const uint8_t *p) {
    static const uint32_t k[64] = {
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391};
    static const int r[16] = {7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21};
    uint32_t w[16];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    uint32_t a = m->h[0], b = m->h[1], c = m->h[2], d = m->h[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) % 16;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) % 16;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) % 16;
        }
        uint32_t t = d;
        d = c;
        c = b;
        b = b + rotl(a + f + k[i] + w[g], r[(i / 16) * 4 + i % 4]);
        a = t;
    }
    m->h[0] += a;
    m->h[1] += b;
    m->h[2] += c;
    m->h[3] += d;
}

static void md5_hex(const uint8_t *p, size_t len, char out[33]) {
    md5_state m = {{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}, {0}, len};
    size_t i = 0;
    for (; i + 64 <= len; i += 64)
        md5_block(&m, p + i);
    size_t rest = len - i;
    memcpy(m.block, p + i, rest);
    m.block[rest++] = 0x80;
    if (rest > 56) {
        memset(m.block + rest, 0, 64 - rest);
        md5_block(&m, m.block);
        rest = 0;
    }
    memset(m.block + rest, 0, 56 - rest);
    uint64_t bits = m.total_bytes * 8;
    for (int k = 0; k < 8; k++)
        m.block[56 + k] = (uint8_t)(bits >> (8 * k));
    md5_block(&m, m.block);
    static const char hex[] = "0123456789abcdef";
    for (int k = 0; k < 16; k++) {
        uint8_t byte = (uint8_t)(m.h[k / 4] >> (8 * (k % 4)));
        out[2 * k] = hex[byte >> 4];
        out[2 * k + 1] = hex[byte & 15];
    }
    out[32] = 0;
}

static void fn_md5(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    char out[33];
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const void *p = sqlite3_value_type(argv[0]) == SQLITE_BLOB ? sqlite3_value_blob(argv[0])
                                                              : sqlite3_value_text(argv[0]);
    size_t len = (size_t)sqlite3_value_bytes(argv[0]);
    if (p == NULL && len > 0) return sqlite3_result_error_nomem(ctx);
    md5_hex(p ? p : (const void *)"", len, out);
    sqlite3_result_text(ctx, out, 32, SQLITE_TRANSIENT);
}

/* ---- regexp_replace, SIMILAR TO ------------------------------------------------------ */

/* regexp_replace(s, pattern, replacement [, flags]): the first match (every
** one with flag g) replaced; \1..\9 and \& in the replacement name the
** subexpressions and the match, \\ a backslash. Flags: g, i, c. */
static void fn_regexp_replace(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    size_t len, rlen, flen = 0;
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const char *s = text_arg(ctx, argv[0], &len), *flags = "";
    if (s == NULL) return;
    const char *repl = text_arg(ctx, argv[2], &rlen);
    if (repl == NULL) return;
    if (argc > 3 && (flags = text_arg(ctx, argv[3], &flen)) == NULL) return;
    bool global = false;
    int cflags = 0;
    for (size_t i = 0; i < flen; i++) {
        if (flags[i] == 'g') global = true;
        else if (flags[i] == 'i') cflags = REG_ICASE;
        else if (flags[i] == 'c') cflags = 0;
        else {
            char msg[80];
            snprintf(msg, sizeof(msg), "invalid regular expression option: \"%c\"", flags[i]);
            return fail(ctx, "22023", msg);
        }
    }
    bool fresh;
    compiled *c = compile_arg(ctx, argv, 1, cflags, &fresh);
    if (c == NULL) return;
    base_buf b = {0};
    int rc = 0;
    size_t at = 0;
    regmatch_t m[10];
    while (rc == 0 && at <= len && b.len <= SQLV__VALUE_BYTES_MAX) {
        if (regexec(&c->re, s + at, 10, m, at > 0 ? REG_NOTBOL : 0) != 0) break;
        rc = base_buf_append(&b, s + at, (size_t)m[0].rm_so);
        for (size_t i = 0; i < rlen && rc == 0; i++) {
            if (repl[i] != '\\' || i + 1 == rlen) {
                rc = base_buf_append_byte(&b, (uint8_t)repl[i]);
                continue;
            }
            char e = repl[++i];
            int g = e == '&' ? 0 : e >= '1' && e <= '9' ? e - '0' : -1;
            if (g < 0) {
                rc = e == '\\' ? base_buf_append_byte(&b, '\\') : base_buf_append(&b, repl + i - 1, 2);
            } else if ((size_t)g <= c->re.re_nsub && m[g].rm_so >= 0) {
                rc = base_buf_append(&b, s + at + m[g].rm_so, (size_t)(m[g].rm_eo - m[g].rm_so));
            }
        }
        size_t next = at + (size_t)m[0].rm_eo;
        if (m[0].rm_eo == m[0].rm_so) { /* an empty match: keep one character, go on */
            if (next >= len) {
                at = next;
                break;
            }
            size_t n = char_len(s + next, len - next);
            if (rc == 0) rc = base_buf_append(&b, s + next, n);
            next += n;
        }
        at = next;
        if (!global) break;
    }
    if (rc == 0 && at < len) rc = base_buf_append(&b, s + at, len - at);
    keep_compiled(ctx, 1, c, fresh);
    result_buf(ctx, &b, rc);
}

/* meridian_similar(pattern [, escape]): SIMILAR TO's pattern as an anchored
** POSIX extended expression: % => .*, _ => ., the escape character (\ by
** default) quotes the next one; | * + ? {} () [] stay operators. */
static void fn_similar(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    size_t len, elen = 1;
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const char *p = text_arg(ctx, argv[0], &len), *esc = "\\";
    if (p == NULL) return;
    if (argc > 1 && (esc = text_arg(ctx, argv[1], &elen)) == NULL) return;
    if (elen > 1) return fail(ctx, "22019", "invalid escape string");
    base_buf b = {0};
    int rc = base_buf_append(&b, "^(", 2);
    bool bracket = false;
    for (size_t i = 0; i < len && rc == 0; i++) {
        char c = p[i];
        if (elen == 1 && c == esc[0] && i + 1 < len) {
            char q = p[++i];
            bool alnum = (q >= 'a' && q <= 'z') || (q >= 'A' && q <= 'Z') || (q >= '0' && q <= '9');
            if (!alnum && (unsigned char)q < 0x80) rc = base_buf_append_byte(&b, '\\');
            if (rc == 0) rc = base_buf_append_byte(&b, (uint8_t)q);
            continue;
        }
        if (bracket) {
            if (c == ']') bracket = false;
            rc = base_buf_append_byte(&b, (uint8_t)c);
        } else if (c == '[') {
            bracket = true;
            rc = base_buf_append_byte(&b, '[');
            if (rc == 0 && i + 1 < len && p[i + 1] == '^') rc = base_buf_append_byte(&b, (uint8_t)p[++i]);
            if (rc == 0 && i + 1 < len && p[i + 1] == ']') rc = base_buf_append_byte(&b, (uint8_t)p[++i]);
        } else if (c == '%') {
            rc = base_buf_append(&b, ".*", 2);
        } else if (c == '_') {
            rc = base_buf_append_byte(&b, '.');
        } else if (c == '.' || c == '^' || c == '$' || c == '\\') {
            rc = base_buf_append_byte(&b, '\\');
            if (rc == 0) rc = base_buf_append_byte(&b, (uint8_t)c);
        } else {
            rc = base_buf_append_byte(&b, (uint8_t)c);
        }
    }
    if (rc == 0) rc = base_buf_append(&b, ")$", 2);
    result_buf(ctx, &b, rc);
}

/* ---- greatest, least, pg_typeof ---------------------------------------------------- */

/* <0, 0, >0 as a < b, a = b, a > b (neither NULL): numbers by value, text
** by bytes (collation "C"), numbers before text. */
static int compare(sqlite3_value *a, sqlite3_value *b) {
    int ta = sqlite3_value_type(a), tb = sqlite3_value_type(b);
    bool na = ta == SQLITE_INTEGER || ta == SQLITE_FLOAT, nb = tb == SQLITE_INTEGER || tb == SQLITE_FLOAT;
    if (na && nb) {
        if (ta == SQLITE_INTEGER && tb == SQLITE_INTEGER) {
            int64_t x = sqlite3_value_int64(a), y = sqlite3_value_int64(b);
            return (x > y) - (x < y);
        }
        double x = sqlite3_value_double(a), y = sqlite3_value_double(b);
        return (x > y) - (x < y);
    }
    if (na != nb) return na ? -1 : 1;
    const void *x = ta == SQLITE_BLOB ? sqlite3_value_blob(a) : sqlite3_value_text(a);
    const void *y = tb == SQLITE_BLOB ? sqlite3_value_blob(b) : sqlite3_value_text(b);
    size_t nx = (size_t)sqlite3_value_bytes(a), ny = (size_t)sqlite3_value_bytes(b);
    int c = x && y ? memcmp(x, y, BASE_MIN(nx, ny)) : 0;
    return c != 0 ? c : (nx > ny) - (nx < ny);
}

/* greatest/least(...): NULLs skipped; NULL when all are. With a number
** among the arguments, text that reads as a number is one (PostgreSQL
** resolves them to one type). */
static void extreme(sqlite3_context *ctx, int argc, sqlite3_value **argv, int sign) {
    bool numeric = false;
    for (int i = 0; i < argc; i++) {
        int t = sqlite3_value_type(argv[i]);
        numeric |= t == SQLITE_INTEGER || t == SQLITE_FLOAT;
    }
    sqlite3_value *best = NULL;
    for (int i = 0; i < argc; i++) {
        if (sqlite3_value_type(argv[i]) == SQLITE_NULL) continue;
        if (numeric) sqlite3_value_numeric_type(argv[i]);
        if (best == NULL || sign * compare(argv[i], best) > 0) best = argv[i];
    }
    if (best == NULL) return sqlite3_result_null(ctx);
    sqlite3_result_value(ctx, best);
}
static void fn_greatest(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    extreme(ctx, argc, argv, 1);
}
static void fn_least(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    extreme(ctx, argc, argv, -1);
}

/* pg_typeof(x): by the value's storage class (a boolean is an integer,
** a numeric a double; a JSON function's result is json). */
static void fn_pg_typeof(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    const char *name = "unknown";
    switch (sqlite3_value_type(argv[0])) {
    case SQLITE_INTEGER: {
        int64_t v = sqlite3_value_int64(argv[0]);
        name = v >= INT32_MIN && v <= INT32_MAX ? "integer" : "bigint";
        break;
    }
    case SQLITE_FLOAT: name = "double precision"; break;
    case SQLITE_TEXT:
        name = sqlite3_value_subtype(argv[0]) == STRFUNCS_JSON_SUBTYPE ? "json" : "text";
        break;
    case SQLITE_BLOB: name = "bytea"; break;
    default: break;
    }
    sqlite3_result_text(ctx, name, -1, SQLITE_STATIC);
}

/* ---- JSON ---------------------------------------------------------------------------- */

static int json_string(base_buf *b, const char *s, size_t len) {
    int rc = base_buf_append_byte(b, '"');
    for (size_t i = 0; i < len && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == '\b' ? "\\b"
                        : c == '\f' ? "\\f" : NULL;
        if (e != NULL)
            rc = base_buf_append(b, e, 2);
        else if (c < 0x20)
            rc = base_buf_printf(b, "\\u%04x", c);
        else
            rc = base_buf_append_byte(b, c);
    }
    return rc == 0 ? base_buf_append_byte(b, '"') : rc;
}

/* v as a JSON value, as to_json writes it. */
static int json_value(base_buf *b, sqlite3_value *v) {
    switch (sqlite3_value_type(v)) {
    case SQLITE_NULL: return base_buf_append(b, "null", 4);
    case SQLITE_INTEGER: return base_buf_printf(b, "%lld", (long long)sqlite3_value_int64(v));
    case SQLITE_FLOAT: {
        char num[64];
        double d = sqlite3_value_double(v);
        sqlv__format_double(d, num, sizeof(num));
        return d != d || d - d != 0 ? json_string(b, num, strlen(num))
                                    : base_buf_append(b, num, strlen(num));
    }
    case SQLITE_BLOB: {
        static const char hex[] = "0123456789abcdef";
        const uint8_t *p = sqlite3_value_blob(v);
        size_t n = (size_t)sqlite3_value_bytes(v);
        int rc = base_buf_append(b, "\"\\\\x", 4);
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = base_buf_append_byte(b, (uint8_t)hex[p[i] >> 4]);
            if (rc == 0) rc = base_buf_append_byte(b, (uint8_t)hex[p[i] & 15]);
        }
        return rc == 0 ? base_buf_append_byte(b, '"') : rc;
    }
    default: {
        const unsigned char *s = sqlite3_value_text(v);
        size_t n = (size_t)sqlite3_value_bytes(v);
        if (s == NULL) return -1;
        if (sqlite3_value_subtype(v) == STRFUNCS_JSON_SUBTYPE) return base_buf_append(b, s, n);
        return json_string(b, (const char *)s, n);
    }
    }
}

static void result_json(sqlite3_context *ctx, base_buf *b, int rc) {
    bool ok = rc == 0 && b->len <= SQLV__VALUE_BYTES_MAX;
    result_buf(ctx, b, rc);
    if (ok) sqlite3_result_subtype(ctx, STRFUNCS_JSON_SUBTYPE);
}

static void fn_to_json(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return sqlite3_result_null(ctx);
    base_buf b = {0};
    result_json(ctx, &b, json_value(&b, argv[0]));
}

/* json_build_object(k, v, ...): {"k" : v, ...}; jsonb_build_object writes
** jsonb's form {"k": v, ...} (keys neither sorted nor deduplicated). */
static void build_object(sqlite3_context *ctx, int argc, sqlite3_value **argv, bool jsonb) {
    if (argc % 2 != 0)
        return fail(ctx, "22023", "argument list must have even number of elements");
    base_buf b = {0};
    int rc = base_buf_append_byte(&b, '{');
    for (int i = 0; i < argc && rc == 0; i += 2) {
        if (sqlite3_value_type(argv[i]) == SQLITE_NULL) {
            base_buf_free(&b);
            return fail(ctx, "22004", "null value not allowed for object key");
        }
        if (i > 0) rc = base_buf_append(&b, ", ", 2);
        if (rc == 0) {
            base_buf key = {0};
            rc = append_text(&key, argv[i]);
            if (rc == 0) rc = json_string(&b, key.len ? (const char *)key.data : "", key.len);
            base_buf_free(&key);
        }
        if (rc == 0) rc = base_buf_append(&b, jsonb ? ": " : " : ", jsonb ? 2 : 3);
        if (rc == 0) rc = json_value(&b, argv[i + 1]);
    }
    if (rc == 0) rc = base_buf_append_byte(&b, '}');
    result_json(ctx, &b, rc);
}
static void fn_json_build_object(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    build_object(ctx, argc, argv, false);
}
static void fn_jsonb_build_object(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    build_object(ctx, argc, argv, true);
}

static void fn_json_build_array(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    base_buf b = {0};
    int rc = base_buf_append_byte(&b, '[');
    for (int i = 0; i < argc && rc == 0; i++) {
        if (i > 0) rc = base_buf_append(&b, ", ", 2);
        if (rc == 0) rc = json_value(&b, argv[i]);
    }
    if (rc == 0) rc = base_buf_append_byte(&b, ']');
    result_json(ctx, &b, rc);
}

/* json_agg(x) / jsonb_agg(x): [x1, x2, ...] (NULLs as null), NULL over no rows. */
typedef struct json_agg_state {
    base_buf b; /* owner: this state; freed by agg_final */
    int rc;
} json_agg_state;

static void agg_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    json_agg_state *a = sqlite3_aggregate_context(ctx, sizeof(*a));
    if (a == NULL) return sqlite3_result_error_nomem(ctx);
    if (a->rc != 0) return;
    a->rc = base_buf_append(&a->b, a->b.len == 0 ? "[" : ", ", a->b.len == 0 ? 1 : 2);
    if (a->rc == 0) a->rc = json_value(&a->b, argv[0]);
    if (a->rc == 0 && a->b.len > SQLV__VALUE_BYTES_MAX) a->rc = 1;
}

static void agg_final(sqlite3_context *ctx) {
    json_agg_state *a = sqlite3_aggregate_context(ctx, 0);
    if (a == NULL || (a->b.len == 0 && a->rc == 0)) return sqlite3_result_null(ctx);
    int rc = a->rc;
    if (rc == 1) {
        base_buf_free(&a->b);
        return fail(ctx, "54000", "requested length too large");
    }
    if (rc == 0) rc = base_buf_append_byte(&a->b, ']');
    result_json(ctx, &a->b, rc);
}

/* ---- registration -------------------------------------------------------------------- */

int sqlv__strfuncs_register(sqlv_session *s) {
    static const struct {
        const char *name;
        int nargs;
        void (*fn)(sqlite3_context *, int, sqlite3_value **);
    } fns[] = {
        {"left", 2, fn_left},
        {"right", 2, fn_right},
        {"substring", 2, fn_substring},
        {"substring", 3, fn_substring},
        {"btrim", 1, fn_btrim},
        {"btrim", 2, fn_btrim},
        {"split_part", 3, fn_split_part},
        {"lpad", 2, fn_lpad},
        {"lpad", 3, fn_lpad},
        {"rpad", 2, fn_rpad},
        {"rpad", 3, fn_rpad},
        {"repeat", 2, fn_repeat},
        {"reverse", 1, fn_reverse},
        {"initcap", 1, fn_initcap},
        {"strpos", 2, fn_strpos},
        {"chr", 1, fn_chr},
        {"ascii", 1, fn_ascii},
        {"concat", -1, fn_concat},
        {"concat_ws", -1, fn_concat_ws},
        {"md5", 1, fn_md5},
        {"regexp_replace", 3, fn_regexp_replace},
        {"regexp_replace", 4, fn_regexp_replace},
        {"meridian_similar", 1, fn_similar},
        {"meridian_similar", 2, fn_similar},
        {"greatest", -1, fn_greatest},
        {"least", -1, fn_least},
        {"pg_typeof", 1, fn_pg_typeof},
        {"to_json", 1, fn_to_json},
        {"to_jsonb", 1, fn_to_json},
        {"json_build_object", -1, fn_json_build_object},
        {"jsonb_build_object", -1, fn_jsonb_build_object},
        {"json_build_array", -1, fn_json_build_array},
        {"jsonb_build_array", -1, fn_json_build_array},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(fns); i++)
        if (sqlite3_create_function(s->db, fns[i].name, fns[i].nargs,
                                    SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_SUBTYPE, s,
                                    fns[i].fn, NULL, NULL) != SQLITE_OK)
            return -1;
    static const char *const aggs[] = {"json_agg", "jsonb_agg"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(aggs); i++)
        if (sqlite3_create_function(s->db, aggs[i], 1, SQLITE_UTF8 | SQLITE_SUBTYPE, s, NULL,
                                    agg_step, agg_final) != SQLITE_OK)
            return -1;
    return 0;
}
