/*
** The functions psql's describe queries and drivers call on the system
** catalogs (pgcatalog.c), registered on each session's connection, and
** Meridian's own introspection: SHOW TABLES, SHOW CREATE TABLE t, SHOW
** COLUMNS FROM t (run as SELECTs over the catalogs). docs/sql.md,
** "Catalogs".
**
** regexp(pattern, value) serves SQLite's REGEXP operator, into which the
** dialect rewriter turns PostgreSQL's ~, ~*, !~ and OPERATOR(pg_catalog.~):
** POSIX extended expressions (glibc), with PostgreSQL's leading embedded
** options "(?i)" / "(?c)" and \d, \D; back-references are refused (they can
** make matching exponential) and patterns are bounded in length.
**
** Arrays are their PostgreSQL text form ("{a,b}"): array_to_string parses
** it; array_agg and meridian_array_agg (ARRAY(SELECT ...)) build it.
**
** Invariants: no function keeps a pointer into the catalog past its call;
** errors are reported with a SQLSTATE through sqlv__session_error; every
** loop is bounded by its input's length.
*/
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql_lex.h"
#include "sql_pgcatalog.h"

#define REGEX_PATTERN_BYTES_MAX 4096

static sqlv_session *session_of(sqlite3_context *ctx) { return sqlite3_user_data(ctx); }

static void fail(sqlite3_context *ctx, const char *state, const char *msg) {
    sqlv__session_error(session_of(ctx), state, "%s", msg);
    sqlite3_result_error(ctx, msg, -1);
}

static bool any_null(int argc, sqlite3_value **argv) {
    for (int i = 0; i < argc; i++)
        if (sqlite3_value_type(argv[i]) == SQLITE_NULL) return true;
    return false;
}

/* ---- quote_ident --------------------------------------------------------------------- */

/* PostgreSQL's keywords that are not "unreserved": an identifier equal to
** one of them is quoted. */
static const char *const keywords[] = {"all",
                                       "analyse",
                                       "analyze",
                                       "and",
                                       "any",
                                       "array",
                                       "as",
                                       "asc",
                                       "asymmetric",
                                       "authorization",
                                       "between",
                                       "bigint",
                                       "binary",
                                       "bit",
                                       "boolean",
                                       "both",
                                       "case",
                                       "cast",
                                       "char",
                                       "character",
                                       "check",
                                       "coalesce",
                                       "collate",
                                       "collation",
                                       "column",
                                       "concurrently",
                                       "constraint",
                                       "create",
                                       "cross",
                                       "current_catalog",
                                       "current_date",
                                       "current_role",
                                       "current_schema",
                                       "current_time",
                                       "current_timestamp",
                                       "current_user",
                                       "dec",
                                       "decimal",
                                       "default",
                                       "deferrable",
                                       "desc",
                                       "distinct",
                                       "do",
                                       "else",
                                       "end",
                                       "except",
                                       "exists",
                                       "extract",
                                       "false",
                                       "fetch",
                                       "float",
                                       "for",
                                       "foreign",
                                       "freeze",
                                       "from",
                                       "full",
                                       "grant",
                                       "greatest",
                                       "group",
                                       "grouping",
                                       "having",
                                       "ilike",
                                       "in",
                                       "initially",
                                       "inner",
                                       "inout",
                                       "int",
                                       "integer",
                                       "intersect",
                                       "interval",
                                       "into",
                                       "is",
                                       "isnull",
                                       "join",
                                       "lateral",
                                       "leading",
                                       "least",
                                       "left",
                                       "like",
                                       "limit",
                                       "localtime",
                                       "localtimestamp",
                                       "national",
                                       "natural",
                                       "nchar",
                                       "none",
                                       "normalize",
                                       "not",
                                       "notnull",
                                       "null",
                                       "nullif",
                                       "numeric",
                                       "offset",
                                       "on",
                                       "only",
                                       "or",
                                       "order",
                                       "out",
                                       "outer",
                                       "overlaps",
                                       "overlay",
                                       "placing",
                                       "position",
                                       "precision",
                                       "primary",
                                       "real",
                                       "references",
                                       "returning",
                                       "right",
                                       "row",
                                       "select",
                                       "session_user",
                                       "setof",
                                       "similar",
                                       "smallint",
                                       "some",
                                       "substring",
                                       "symmetric",
                                       "table",
                                       "tablesample",
                                       "then",
                                       "time",
                                       "timestamp",
                                       "to",
                                       "trailing",
                                       "treat",
                                       "trim",
                                       "true",
                                       "union",
                                       "unique",
                                       "user",
                                       "using",
                                       "values",
                                       "varchar",
                                       "variadic",
                                       "verbose",
                                       "when",
                                       "where",
                                       "window",
                                       "with"};

void sqlv__pgcat_quote_ident(const char *name, char *out, size_t size) {
    bool plain = name[0] != 0 && (islower((unsigned char)name[0]) || name[0] == '_');
    for (const char *p = name; *p && plain; p++)
        plain = islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_';
    for (size_t i = 0; i < BASE_ARRAY_LEN(keywords) && plain; i++)
        plain = strcmp(name, keywords[i]) != 0;
    if (plain) {
        base_strlcpy(out, name, size);
        return;
    }
    size_t o = 0;
    if (size < 3) {
        if (size) out[0] = 0;
        return;
    }
    out[o++] = '"';
    for (const char *p = name; *p && o + 3 < size; p++) {
        if (*p == '"') out[o++] = '"';
        out[o++] = *p;
    }
    out[o++] = '"';
    out[o] = 0;
}

static void fn_quote_ident(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    if (any_null(argc, argv)) {
        sqlite3_result_null(ctx);
        return;
    }
    const char *s = (const char *)sqlite3_value_text(argv[0]);
    if (s == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    size_t n = strlen(s) * 2 + 3;
    char *out = sqlite3_malloc64(n);
    if (out == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlv__pgcat_quote_ident(s, out, n);
    sqlite3_result_text(ctx, out, -1, sqlite3_free);
}

/* ---- regexp ---------------------------------------------------------------------------- */

typedef struct compiled {
    regex_t re;
} compiled;

static void compiled_free(void *p) {
    compiled *c = p;
    regfree(&c->re);
    base_free(c);
}

/* PostgreSQL's pattern into a POSIX ERE for regcomp (sql_int.h). */
int sqlv__regex_translate(const char *pat, base_buf *out, int *flags, char *msg, size_t size) {
    const char *p = pat;
    *flags = REG_EXTENDED | REG_NOSUB;
    if (strncmp(p, "(?", 2) == 0) { /* embedded options */
        const char *q = p + 2;
        for (; *q && *q != ')'; q++) {
            if (*q == 'i')
                *flags |= REG_ICASE;
            else if (*q == 'c')
                *flags &= ~REG_ICASE;
            else {
                snprintf(msg, size, "regular expression option \"%c\" is not supported", *q);
                return -1;
            }
        }
        if (*q != ')') {
            snprintf(msg, size, "invalid regular expression: unterminated options");
            return -1;
        }
        p = q + 1;
    }
    bool bracket = false;
    for (; *p; p++) {
        if (*p == '\\' && p[1]) {
            char e = p[1];
            if (e >= '1' && e <= '9') {
                snprintf(msg, size, "regular expression back-references are not supported");
                return -1;
            }
            if (!bracket && (e == 'd' || e == 'D')) {
                const char *r = e == 'd' ? "[0-9]" : "[^0-9]";
                if (base_buf_append(out, r, strlen(r)) != 0) return -2;
                p++;
                continue;
            }
            if (base_buf_append(out, p, 2) != 0) return -2;
            p++;
            continue;
        }
        if (*p == '[' && !bracket)
            bracket = true;
        else if (*p == ']' && bracket && p[-1] != '[' && !(p[-1] == '^' && p[-2] == '['))
            bracket = false;
        if (base_buf_append_byte(out, (uint8_t)*p) != 0) return -2;
    }
    if (base_buf_append_byte(out, 0) != 0) return -2;
    return 0;
}

/* x REGEXP y calls regexp(y, x). */
static void fn_regexp(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    char msg[300];
    if (any_null(argc, argv)) {
        sqlite3_result_null(ctx);
        return;
    }
    const char *value = (const char *)sqlite3_value_text(argv[1]);
    if (value == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    compiled *c = sqlite3_get_auxdata(ctx, 0);
    bool fresh = false;
    if (c == NULL) {
        const char *pat = (const char *)sqlite3_value_text(argv[0]);
        if (pat == NULL) {
            sqlite3_result_error_nomem(ctx);
            return;
        }
        if (strlen(pat) > REGEX_PATTERN_BYTES_MAX) {
            snprintf(msg, sizeof(msg), "regular expression too long (at most %d bytes)",
                     REGEX_PATTERN_BYTES_MAX);
            fail(ctx, "54000", msg);
            return;
        }
        base_buf ere = {0};
        int flags;
        int trc = sqlv__regex_translate(pat, &ere, &flags, msg, sizeof(msg));
        if (trc != 0) {
            base_buf_free(&ere);
            if (trc == -2) {
                sqlite3_result_error_nomem(ctx);
                return;
            }
            fail(ctx, strstr(msg, "not supported") ? "0A000" : "2201B", msg);
            return;
        }
        c = base_malloc(sizeof(*c));
        if (c == NULL) {
            base_buf_free(&ere);
            sqlite3_result_error_nomem(ctx);
            return;
        }
        int rc = regcomp(&c->re, (const char *)ere.data, flags);
        base_buf_free(&ere);
        if (rc != 0) {
            char err[200];
            regerror(rc, &c->re, err, sizeof(err));
            base_free(c);
            snprintf(msg, sizeof(msg), "invalid regular expression: %s", err);
            fail(ctx, "2201B", msg);
            return;
        }
        fresh = true;
    }
    sqlite3_result_int(ctx, regexec(&c->re, value, 0, NULL, 0) == 0);
    /* last: SQLite may free c at once */
    if (fresh) sqlite3_set_auxdata(ctx, 0, c, compiled_free);
}

/* ---- arrays in their text form ------------------------------------------------------ */

/* Calls fn for each element of the text form "{a,"b c",NULL}" (nested
** braces are flattened). 0, or the first non-zero fn result, or -1. */
static int array_elements(const char *a, int (*fn)(void *ctx, const base_buf *el, bool is_null),
                          void *ctx) {
    base_buf el = {0};
    int rc = 0;
    const char *p = a;
    while (*p == ' ')
        p++;
    if (*p == '{') p++;
    while (*p && rc == 0) {
        while (*p == ' ' || *p == '{' || *p == '}')
            p++;
        if (*p == 0) break;
        bool quoted = *p == '"';
        base_buf_reset(&el);
        if (quoted) {
            for (p++; *p && *p != '"' && rc == 0; p++) {
                if (*p == '\\' && p[1]) p++;
                rc = base_buf_append_byte(&el, (uint8_t)*p);
            }
            if (*p == '"') p++;
        } else {
            for (; *p && *p != ',' && *p != '}' && rc == 0; p++)
                rc = base_buf_append_byte(&el, (uint8_t)*p);
            while (el.len > 0 && el.data[el.len - 1] == ' ')
                el.len--;
        }
        while (*p == ' ' || *p == '}')
            p++;
        if (*p == ',') p++;
        bool is_null = !quoted && el.len == 4 && strncasecmp((const char *)el.data, "NULL", 4) == 0;
        if (rc == 0) rc = fn(ctx, &el, is_null);
    }
    base_buf_free(&el);
    return rc;
}

typedef struct join_ctx {
    base_buf out;
    const char *sep, *null_string;
    int n;
} join_ctx;

static int join_element(void *ctx, const base_buf *el, bool is_null) {
    join_ctx *j = ctx;
    int rc = 0;
    if (is_null && j->null_string == NULL) return 0;
    if (j->n++ > 0) rc = base_buf_append(&j->out, j->sep, strlen(j->sep));
    if (rc == 0 && is_null) rc = base_buf_append(&j->out, j->null_string, strlen(j->null_string));
    if (rc == 0 && !is_null && el->len) rc = base_buf_append(&j->out, el->data, el->len);
    return rc;
}

/* array_to_string(array, sep [, null_string]): the elements joined by
** sep; NULL elements are left out unless null_string is given. */
static void fn_array_to_string(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    const char *a = (const char *)sqlite3_value_text(argv[0]);
    join_ctx j = {{0}, (const char *)sqlite3_value_text(argv[1]), NULL, 0};
    if (argc > 2 && sqlite3_value_type(argv[2]) != SQLITE_NULL)
        j.null_string = (const char *)sqlite3_value_text(argv[2]);
    if (a == NULL || j.sep == NULL || array_elements(a, join_element, &j) != 0)
        sqlite3_result_error_nomem(ctx);
    else
        sqlite3_result_text(ctx, j.out.data ? (const char *)j.out.data : "", (int)j.out.len,
                            SQLITE_TRANSIENT);
    base_buf_free(&j.out);
}

static bool json_number(const base_buf *el) {
    size_t i = 0, n = el->len, digits = 0;
    const uint8_t *d = el->data;
    if (i < n && d[i] == '-') i++;
    for (; i < n && isdigit(d[i]); i++)
        digits++;
    if (digits == 0 || (digits > 1 && d[n > 0 && d[0] == '-' ? 1 : 0] == '0')) return false;
    if (i < n && d[i] == '.') {
        size_t f = 0;
        for (i++; i < n && isdigit(d[i]); i++)
            f++;
        if (f == 0) return false;
    }
    return i == n;
}

static int json_element(void *ctx, const base_buf *el, bool is_null) {
    join_ctx *j = ctx;
    int rc = base_buf_append_byte(&j->out, j->n++ > 0 ? ',' : '[');
    if (rc == 0 && is_null) return base_buf_append(&j->out, "null", 4);
    if (rc == 0 && json_number(el)) return base_buf_append(&j->out, el->data, el->len);
    if (rc == 0) rc = base_buf_append_byte(&j->out, '"');
    for (size_t i = 0; i < el->len && rc == 0; i++) {
        uint8_t c = el->data[i];
        if (c == '"' || c == '\\')
            rc = base_buf_printf(&j->out, "\\%c", c);
        else if (c < 0x20)
            rc = base_buf_printf(&j->out, "\\u%04x", c);
        else
            rc = base_buf_append_byte(&j->out, c);
    }
    if (rc == 0) rc = base_buf_append_byte(&j->out, '"');
    return rc;
}

/* meridian_array_json(array): the elements as a JSON array (numbers as
** numbers), for json_each: the dialect's "x = ANY (array)". */
static void fn_array_json(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_text(ctx, "[]", 2, SQLITE_STATIC);
        return;
    }
    const char *a = (const char *)sqlite3_value_text(argv[0]);
    join_ctx j = {{0}, NULL, NULL, 0};
    int rc = a == NULL ? -1 : array_elements(a, json_element, &j);
    if (rc == 0 && j.n == 0) rc = base_buf_append_byte(&j.out, '[');
    if (rc == 0) rc = base_buf_append_byte(&j.out, ']');
    if (rc != 0)
        sqlite3_result_error_nomem(ctx);
    else
        sqlite3_result_text(ctx, (const char *)j.out.data, (int)j.out.len, SQLITE_TRANSIENT);
    base_buf_free(&j.out);
}

typedef struct pick_ctx {
    int64_t want, n;
    base_buf el; /* the element picked; owner: this */
    bool found, is_null;
} pick_ctx;

static int pick_element(void *ctx, const base_buf *el, bool is_null) {
    pick_ctx *p = ctx;
    if (++p->n != p->want) return 0;
    p->found = true;
    p->is_null = is_null;
    return base_buf_append(&p->el, el->data ? el->data : (const uint8_t *)"", el->len);
}

/* a[i] (1-based): the element, an integer when it looks like one (so
** "attnum = prattrs[s]" compares numbers); NULL out of range. */
static void fn_array_at(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    if (any_null(2, argv)) {
        sqlite3_result_null(ctx);
        return;
    }
    const char *a = (const char *)sqlite3_value_text(argv[0]);
    pick_ctx p = {sqlite3_value_int64(argv[1]), 0, {0}, false, false};
    if (a == NULL || array_elements(a, pick_element, &p) != 0 ||
        base_buf_append_byte(&p.el, 0) != 0) {
        sqlite3_result_error_nomem(ctx);
    } else if (!p.found || p.is_null) {
        sqlite3_result_null(ctx);
    } else {
        char *e;
        const char *v = (const char *)p.el.data;
        long long x = strtoll(v, &e, 10);
        if (*v && *e == 0 && !isspace((unsigned char)*v))
            sqlite3_result_int64(ctx, x);
        else
            sqlite3_result_text(ctx, v, -1, SQLITE_TRANSIENT);
    }
    base_buf_free(&p.el);
}

static int count_element(void *ctx, const base_buf *el, bool is_null) {
    (void)el;
    (void)is_null;
    ++*(int64_t *)ctx;
    return 0;
}

/* array_upper(a, 1), array_length(a, 1), cardinality(a): the element
** count (NULL for an empty array, as PostgreSQL); array_lower: 1. */
static void fn_array_count(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    int64_t n = 0;
    if (any_null(argc, argv) || (argc > 1 && sqlite3_value_int64(argv[1]) != 1)) {
        sqlite3_result_null(ctx);
        return;
    }
    const char *a = (const char *)sqlite3_value_text(argv[0]);
    if (a == NULL || array_elements(a, count_element, &n) != 0) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    if (n == 0 && argc > 1)
        sqlite3_result_null(ctx);
    else
        sqlite3_result_int64(ctx, n);
}

static void fn_array_lower(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    int64_t n = 0;
    if (any_null(argc, argv) || sqlite3_value_int64(argv[1]) != 1) {
        sqlite3_result_null(ctx);
        return;
    }
    const char *a = (const char *)sqlite3_value_text(argv[0]);
    if (a == NULL || array_elements(a, count_element, &n) != 0) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    if (n == 0)
        sqlite3_result_null(ctx);
    else
        sqlite3_result_int64(ctx, 1);
}

typedef struct string_acc {
    base_buf buf; /* owner: this, freed at final */
    bool any;
} string_acc;

/* string_agg(value, delimiter): NULL values are skipped; NULL over none. */
static void string_agg_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
    string_acc *a = sqlite3_aggregate_context(ctx, sizeof(*a));
    const char *v = (const char *)sqlite3_value_text(argv[0]);
    const char *sep = sqlite3_value_type(argv[1]) == SQLITE_NULL
                          ? ""
                          : (const char *)sqlite3_value_text(argv[1]);
    if (a == NULL || v == NULL || sep == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    int rc = a->any ? base_buf_append(&a->buf, sep, strlen(sep)) : 0;
    if (rc == 0) rc = base_buf_append(&a->buf, v, strlen(v));
    a->any = true;
    if (rc != 0) sqlite3_result_error_nomem(ctx);
}

static void string_agg_final(sqlite3_context *ctx) {
    string_acc *a = sqlite3_aggregate_context(ctx, 0);
    if (a == NULL || !a->any)
        sqlite3_result_null(ctx);
    else
        sqlite3_result_text(ctx, a->buf.data ? (const char *)a->buf.data : "", (int)a->buf.len,
                            SQLITE_TRANSIENT);
    if (a) base_buf_free(&a->buf);
}

typedef struct array_acc {
    base_buf buf; /* "{a,b" so far; owner: this, freed at final */
    int64_t n;
} array_acc;

/* One element in PostgreSQL's array text form: quoted when empty, "NULL",
** or holding a delimiter, brace, quote, backslash or space. */
/* Append v as one element of an array's text form. 0, or -1 (memory). */
static int array_append(base_buf *b, sqlite3_value *v) {
    if (sqlite3_value_type(v) == SQLITE_NULL) return base_buf_append(b, "NULL", 4);
    const char *t = (const char *)sqlite3_value_text(v);
    if (t == NULL) return -1;
    bool quote = t[0] == 0 || strcasecmp(t, "NULL") == 0;
    for (const char *p = t; *p && !quote; p++)
        quote = strchr("{},\"\\", *p) != NULL || isspace((unsigned char)*p);
    int rc = quote ? base_buf_append_byte(b, '"') : 0;
    for (const char *p = t; *p && rc == 0; p++) {
        if (quote && (*p == '"' || *p == '\\')) rc = base_buf_append_byte(b, '\\');
        if (rc == 0) rc = base_buf_append_byte(b, (uint8_t)*p);
    }
    if (rc == 0 && quote) rc = base_buf_append_byte(b, '"');
    return rc;
}

static void array_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    array_acc *a = sqlite3_aggregate_context(ctx, sizeof(*a));
    if (a == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    int rc = base_buf_append_byte(&a->buf, a->n++ == 0 ? '{' : ',');
    if (rc == 0) rc = array_append(&a->buf, argv[0]);
    if (rc != 0) sqlite3_result_error_nomem(ctx);
}

/* ARRAY[a, b, ...] (the dialect's meridian_array(a, b, ...)). */
static void fn_array(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    base_buf b = {0};
    int rc = base_buf_append_byte(&b, '{');
    for (int i = 0; i < argc && rc == 0; i++) {
        if (i > 0) rc = base_buf_append_byte(&b, ',');
        if (rc == 0) rc = array_append(&b, argv[i]);
    }
    if (rc == 0) rc = base_buf_append_byte(&b, '}');
    if (rc == 0)
        sqlite3_result_text(ctx, (const char *)b.data, (int)b.len, SQLITE_TRANSIENT);
    else
        sqlite3_result_error_nomem(ctx);
    base_buf_free(&b);
}

static void array_final(sqlite3_context *ctx, bool empty_is_null) {
    array_acc *a = sqlite3_aggregate_context(ctx, 0);
    if (a == NULL || a->n == 0) {
        if (empty_is_null)
            sqlite3_result_null(ctx);
        else
            sqlite3_result_text(ctx, "{}", 2, SQLITE_STATIC);
        if (a) base_buf_free(&a->buf);
        return;
    }
    if (base_buf_append_byte(&a->buf, '}') != 0)
        sqlite3_result_error_nomem(ctx);
    else
        sqlite3_result_text(ctx, (const char *)a->buf.data, (int)a->buf.len, SQLITE_TRANSIENT);
    base_buf_free(&a->buf);
}
/* array_agg(x): NULL over no rows, as PostgreSQL. */
static void array_agg_final(sqlite3_context *ctx) { array_final(ctx, true); }
/* ARRAY(SELECT ...): '{}' over no rows. */
static void array_ctor_final(sqlite3_context *ctx) { array_final(ctx, false); }

/* ---- names, OIDs, definitions ----------------------------------------------------------- */

static void fn_true(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    sqlite3_result_int(ctx, 1);
}

static void fn_false(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    sqlite3_result_int(ctx, 0);
}

static void fn_null(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    sqlite3_result_null(ctx);
}

static void fn_empty(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
}

static void fn_zero(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    sqlite3_result_int64(ctx, 0);
}

static void fn_format_type(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    char out[128];
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    int64_t oid = sqlite3_value_int64(argv[0]);
    int64_t typmod =
        argc > 1 && sqlite3_value_type(argv[1]) != SQLITE_NULL ? sqlite3_value_int64(argv[1]) : -1;
    if (typmod < INT32_MIN || typmod > INT32_MAX) typmod = -1;
    if (oid >= 0 && oid <= UINT32_MAX &&
        sqlv__pgcat_format_type((uint32_t)oid, (int32_t)typmod, out, sizeof(out))) {
        sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
        return;
    }
    uint32_t id;
    int kind;
    const sqlv__table *t = sqlv__pgcat_table_by_oid(session_of(ctx), oid);
    if (t && sqlv__pgcat_oid_parse(oid, &id, &kind) && kind == SQLV__PGCAT_KIND_ROWTYPE) {
        sqlite3_result_text(ctx, t->name, -1, SQLITE_TRANSIENT);
        return;
    }
    sqlite3_result_text(ctx, oid == 0 ? "-" : "???", -1, SQLITE_STATIC);
}

static void fn_get_userbyid(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    char out[64];
    sqlv_session *s = session_of(ctx);
    if (any_null(argc, argv)) {
        sqlite3_result_null(ctx);
        return;
    }
    int64_t oid = sqlite3_value_int64(argv[0]);
    if (oid == SQLV__PGCAT_OID_ROOT_ROLE) {
        sqlite3_result_text(ctx, "root", -1, SQLITE_STATIC);
        return;
    }
    if (oid == SQLV__PGCAT_OID_SESSION_ROLE) {
        sqlite3_result_text(ctx, s->user, -1, SQLITE_TRANSIENT);
        return;
    }
    if (oid > SQLV__PGCAT_OID_ROLE_FIRST && oid < SQLV__PGCAT_OID_INDEX_FIRST && s->kv != NULL) {
        /* a role of users.c: its name through the statement's transaction */
        sqlv__role *list = NULL; /* owner: this block */
        int n = 0;
        txn_error err = {{0}, {0}};
        bool found = false;
        if (sqlv__roles_list(s->kv, &list, &n, &err) == TXN_OK) {
            for (int i = 0; i < n && !found; i++) {
                if (sqlv__pgcat_role_oid(list[i].id) != oid) continue;
                sqlite3_result_text(ctx, list[i].name, -1, SQLITE_TRANSIENT);
                found = true;
            }
        }
        base_free(list);
        if (found) return;
    }
    snprintf(out, sizeof(out), "unknown (OID=%lld)", (long long)oid);
    sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

/* pg_get_indexdef(index oid [, column, pretty]) */
static void fn_get_indexdef(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    uint32_t id;
    int kind;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    int64_t oid = sqlite3_value_int64(argv[0]);
    int64_t col = argc > 1 ? sqlite3_value_int64(argv[1]) : 0;
    char q[300];
    const sqlv__table *xt = NULL;
    const sqlv__index *ix = sqlv__pgcat_index_by_oid(session_of(ctx), oid, &xt);
    if (ix != NULL && oid == sqlv__pgcat_index_oid(xt->id, ix->id, false)) {
        base_buf b = {0};
        if (col > ix->ncols) {
            sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
            return;
        }
        if (col > 0) {
            sqlv__pgcat_quote_ident(xt->cols[ix->cols[col - 1]].name, q, sizeof(q));
            sqlite3_result_text(ctx, q, -1, SQLITE_TRANSIENT);
            return;
        }
        if (sqlv__pgcat_index_def(xt, ix, &b) == 0)
            sqlite3_result_text(ctx, (const char *)b.data, (int)b.len, SQLITE_TRANSIENT);
        else
            sqlite3_result_error_nomem(ctx);
        base_buf_free(&b);
        return;
    }
    const sqlv__table *t = sqlv__pgcat_table_by_oid(session_of(ctx), oid);
    if (t == NULL || !sqlv__pgcat_oid_parse(oid, &id, &kind) || kind != SQLV__PGCAT_KIND_PKEY ||
        t->npk == 0) {
        sqlite3_result_null(ctx);
        return;
    }
    if (col > 0) {
        if (col > t->npk) {
            sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
            return;
        }
        sqlv__pgcat_quote_ident(t->cols[t->pk[col - 1]].name, q, sizeof(q));
        sqlite3_result_text(ctx, q, -1, SQLITE_TRANSIENT);
        return;
    }
    base_buf b = {0};
    char name[128];
    snprintf(name, sizeof(name), "%.58s_pkey", t->name);
    sqlv__pgcat_quote_ident(name, q, sizeof(q));
    int rc = base_buf_printf(&b, "CREATE UNIQUE INDEX %s ON public.", q);
    sqlv__pgcat_quote_ident(t->name, q, sizeof(q));
    if (rc == 0) rc = base_buf_printf(&b, "%s USING btree (", q);
    for (int k = 0; k < t->npk && rc == 0; k++) {
        sqlv__pgcat_quote_ident(t->cols[t->pk[k]].name, q, sizeof(q));
        rc = base_buf_printf(&b, "%s%s", k > 0 ? ", " : "", q);
    }
    if (rc == 0) rc = base_buf_append_byte(&b, ')');
    if (rc == 0)
        sqlite3_result_text(ctx, (const char *)b.data, (int)b.len, SQLITE_TRANSIENT);
    else
        sqlite3_result_error_nomem(ctx);
    base_buf_free(&b);
}

/* pg_get_constraintdef(constraint oid [, pretty]) */
static void fn_get_constraintdef(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    uint32_t id;
    int kind;
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    int64_t oid = sqlite3_value_int64(argv[0]);
    base_buf b = {0};
    char q[300];
    int rc;
    const sqlv__table *xt = NULL;
    int k;
    if (sqlv__pgcat_check_oid_parse(oid, &id, &k)) { /* CHECK (expr), as written */
        sqlv__check *checks = NULL;
        int nchecks = 0;
        xt = sqlv__pgcat_table_by_oid(session_of(ctx),
                                      sqlv__pgcat_oid(id, SQLV__PGCAT_KIND_TABLE));
        if (xt == NULL) {
            sqlite3_result_null(ctx);
            return;
        }
        if (sqlv__checks_of(xt, &checks, &nchecks) != 0) {
            sqlite3_result_error_nomem(ctx);
            return;
        }
        if (k < nchecks) {
            char *def = sqlite3_mprintf("CHECK (%s)", checks[k].expr);
            if (def == NULL)
                sqlite3_result_error_nomem(ctx);
            else
                sqlite3_result_text(ctx, def, -1, sqlite3_free);
        } else {
            sqlite3_result_null(ctx);
        }
        sqlv__checks_free(checks, nchecks);
        return;
    }
    const sqlv__index *ix = sqlv__pgcat_index_by_oid(session_of(ctx), oid, &xt);
    if (ix != NULL && ix->constraint && oid == sqlv__pgcat_index_oid(xt->id, ix->id, true)) {
        rc = base_buf_printf(&b, "UNIQUE (");
        for (int c = 0; c < ix->ncols && rc == 0; c++) {
            sqlv__pgcat_quote_ident(xt->cols[ix->cols[c]].name, q, sizeof(q));
            rc = base_buf_printf(&b, "%s%s", c > 0 ? ", " : "", q);
        }
        if (rc == 0) rc = base_buf_append_byte(&b, ')');
        if (rc == 0)
            sqlite3_result_text(ctx, (const char *)b.data, (int)b.len, SQLITE_TRANSIENT);
        else
            sqlite3_result_error_nomem(ctx);
        base_buf_free(&b);
        return;
    }
    const sqlv__table *t = sqlv__pgcat_table_by_oid(session_of(ctx), oid);
    if (t == NULL || !sqlv__pgcat_oid_parse(oid, &id, &kind) || kind != SQLV__PGCAT_KIND_PKEY_CON ||
        t->npk == 0) {
        sqlite3_result_null(ctx);
        return;
    }
    rc = base_buf_printf(&b, "PRIMARY KEY (");
    for (int k = 0; k < t->npk && rc == 0; k++) {
        sqlv__pgcat_quote_ident(t->cols[t->pk[k]].name, q, sizeof(q));
        rc = base_buf_printf(&b, "%s%s", k > 0 ? ", " : "", q);
    }
    if (rc == 0) rc = base_buf_append_byte(&b, ')');
    if (rc == 0)
        sqlite3_result_text(ctx, (const char *)b.data, (int)b.len, SQLITE_TRANSIENT);
    else
        sqlite3_result_error_nomem(ctx);
    base_buf_free(&b);
}

/* pg_get_expr(expr, relation [, pretty]): Meridian stores no expression
** trees; an expression is its own text. */
static void fn_get_expr(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    sqlite3_result_value(ctx, argv[0]);
}

static void fn_encoding_to_char(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    if (any_null(argc, argv)) {
        sqlite3_result_null(ctx);
        return;
    }
    int64_t e = sqlite3_value_int64(argv[0]);
    sqlite3_result_text(ctx, e == 6 ? "UTF8" : e == 0 ? "SQL_ASCII" : "", -1, SQLITE_STATIC);
}

static void fn_current_schemas(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    bool implicit = sqlite3_value_type(argv[0]) != SQLITE_NULL && sqlite3_value_int(argv[0]);
    sqlite3_result_text(ctx, implicit ? "{pg_catalog,public}" : "{public}", -1, SQLITE_STATIC);
}

/* substring(s, from [, for]) in characters (UTF-8), as PostgreSQL counts. */
static void fn_substring(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    if (any_null(argc, argv)) {
        sqlite3_result_null(ctx);
        return;
    }
    const unsigned char *s = sqlite3_value_text(argv[0]);
    if (s == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    int64_t from = sqlite3_value_int64(argv[1]);
    int64_t end = INT64_MAX;
    if (argc > 2) {
        int64_t len = sqlite3_value_int64(argv[2]);
        if (len < 0) {
            fail(ctx, "22011", "negative substring length not allowed");
            return;
        }
        end = from > INT64_MAX - len ? INT64_MAX : from + len;
    }
    if (from < 1) from = 1;
    const unsigned char *a = NULL, *b = NULL, *p = s;
    int64_t pos = 1;
    for (;; pos++) {
        if (pos == from) a = p;
        if (pos == end || *p == 0) {
            b = p;
            break;
        }
        p++;
        while ((*p & 0xC0) == 0x80)
            p++;
    }
    if (a == NULL || b < a) {
        sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
        return;
    }
    sqlite3_result_text(ctx, (const char *)a, (int)(b - a), SQLITE_TRANSIENT);
}

/* pg_size_pretty(bytes) */
static void fn_size_pretty(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    static const char *const units[] = {"bytes", "kB", "MB", "GB", "TB", "PB"};
    char out[64];
    if (any_null(argc, argv)) {
        sqlite3_result_null(ctx);
        return;
    }
    int64_t v = sqlite3_value_int64(argv[0]);
    size_t u = 0;
    while (u + 1 < BASE_ARRAY_LEN(units) && (v >= 10 * 1024 || v <= -10 * 1024)) {
        v = (v + (v >= 0 ? 512 : -512)) / 1024;
        u++;
    }
    snprintf(out, sizeof(out), "%lld %s", (long long)v, units[u]);
    sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

/* A relation name as regclass input: "t", "public.t", "\"T\"". The
** table's OID (or a catalog relation's), or 0 if there is none. */
static int64_t regclass_lookup(sqlv_session *s, const char *name) {
    char part[2][256];
    int nparts = 0;
    const char *p = name, *end = name + strlen(name);
    for (int guard = 0; guard < 8; guard++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (nparts == 2 || sqlv__tok_ident(&t, part[nparts], sizeof(part[0])) != 0) return 0;
        if (t.kind == SQLV__TOK_WORD)
            for (char *c = part[nparts]; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        nparts++;
        sqlv__token dot = sqlv__lex_next(&p, end);
        if (dot.kind == SQLV__TOK_END) break;
        if (!sqlv__tok_punct(&dot, '.')) return 0;
    }
    const char *rel = part[nparts - 1];
    const char *schema = nparts == 2 ? part[0] : NULL;
    if (schema == NULL || strcmp(schema, "public") == 0) {
        const sqlv__table *t = sqlv__pgcat_table_by_name(s, rel);
        if (t != NULL) return sqlv__pgcat_oid(t->id, SQLV__PGCAT_KIND_TABLE);
        /* "<t>_pkey" */
        size_t n = strlen(rel);
        if (n > 5 && strcmp(rel + n - 5, "_pkey") == 0) {
            char tn[256];
            snprintf(tn, sizeof(tn), "%.*s", (int)(n - 5), rel);
            t = sqlv__pgcat_table_by_name(s, tn);
            if (t != NULL && t->npk > 0) return sqlv__pgcat_oid(t->id, SQLV__PGCAT_KIND_PKEY);
        }
        const sqlv__index *ix = sqlv__pgcat_index_by_name(s, rel, &t);
        if (ix != NULL) return sqlv__pgcat_index_oid(t->id, ix->id, false);
        sqlv__seq_def d; /* a sequence (sequence.c) */
        bool found = false;
        if (sqlv__seq_lookup(s, rel, 0, &d, &found) == TXN_OK && found)
            return sqlv__pgcat_oid(d.id, SQLV__PGCAT_KIND_TABLE);
    }
    if (schema == NULL || strcmp(schema, "pg_catalog") == 0) return sqlv__pgcat_relation_oid(rel);
    if (strcmp(schema, "information_schema") == 0) {
        const char *n = sqlv__pgcat_information_schema(rel);
        return n ? sqlv__pgcat_relation_oid(n) : 0;
    }
    return 0;
}

/* pg_get_viewdef(view oid or name [, pretty]): the stored query (view.c)
** with PostgreSQL's leading space and closing ';'; NULL for anything else. */
static void fn_get_viewdef(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = session_of(ctx);
    if (argc < 1 || argc > 2 || sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    int64_t oid = sqlite3_value_type(argv[0]) == SQLITE_TEXT
                      ? regclass_lookup(s, (const char *)sqlite3_value_text(argv[0]))
                      : sqlite3_value_int64(argv[0]);
    const sqlv__table *t = sqlv__pgcat_table_by_oid(s, oid);
    if (t == NULL || !t->is_view || oid != sqlv__pgcat_oid(t->id, SQLV__PGCAT_KIND_TABLE)) {
        sqlite3_result_null(ctx);
        return;
    }
    char *def = sqlite3_mprintf(" %s;", t->view_query); /* owner: SQLite's result */
    if (def == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_text(ctx, def, -1, sqlite3_free);
}

/* x::regclass: an OID gives the relation's name (a regclass prints as
** one), a name gives its OID (a regclass compares as one). */
static void regclass(sqlite3_context *ctx, sqlite3_value *v, bool missing_ok) {
    sqlv_session *s = session_of(ctx);
    int type = sqlite3_value_type(v);
    if (type == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    const char *text = (const char *)sqlite3_value_text(v);
    if (text == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    bool digits =
        type == SQLITE_INTEGER || (text[0] != 0 && strspn(text, "0123456789") == strlen(text));
    if (digits) {
        int64_t oid = sqlite3_value_int64(v);
        uint32_t id;
        int kind;
        const sqlv__table *t = sqlv__pgcat_table_by_oid(s, oid);
        char q[300];
        if (t && sqlv__pgcat_oid_parse(oid, &id, &kind) && kind == SQLV__PGCAT_KIND_TABLE) {
            sqlv__pgcat_quote_ident(t->name, q, sizeof(q));
            sqlite3_result_text(ctx, q, -1, SQLITE_TRANSIENT);
            return;
        }
        const sqlv__index *ix = NULL;
        if (t && kind == SQLV__PGCAT_KIND_INDEX &&
            (ix = sqlv__pgcat_index_by_oid(s, oid, NULL)) != NULL) {
            sqlv__pgcat_quote_ident(ix->name, q, sizeof(q));
            sqlite3_result_text(ctx, q, -1, SQLITE_TRANSIENT);
            return;
        }
        sqlv__seq_def d;
        bool found = false;
        if (t == NULL && sqlv__pgcat_oid_parse(oid, &id, &kind) && kind == SQLV__PGCAT_KIND_TABLE &&
            sqlv__seq_lookup(s, NULL, id, &d, &found) == TXN_OK && found) {
            sqlv__pgcat_quote_ident(d.name, q, sizeof(q));
            sqlite3_result_text(ctx, q, -1, SQLITE_TRANSIENT);
            return;
        }
        if (t && kind == SQLV__PGCAT_KIND_PKEY) {
            char name[128];
            snprintf(name, sizeof(name), "%.58s_pkey", t->name);
            sqlv__pgcat_quote_ident(name, q, sizeof(q));
            sqlite3_result_text(ctx, q, -1, SQLITE_TRANSIENT);
            return;
        }
        sqlite3_result_text(ctx, text, -1, SQLITE_TRANSIENT);
        return;
    }
    int64_t oid = regclass_lookup(s, text);
    if (oid != 0) {
        sqlite3_result_int64(ctx, oid);
        return;
    }
    if (missing_ok) {
        sqlite3_result_null(ctx);
        return;
    }
    char msg[400];
    snprintf(msg, sizeof(msg), "relation \"%.300s\" does not exist", text);
    fail(ctx, "42P01", msg);
}

static void fn_regclass(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    regclass(ctx, argv[0], false);
}

static void fn_to_regclass(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_INTEGER) {
        sqlite3_result_null(ctx);
        return;
    }
    regclass(ctx, argv[0], true);
}

/* ---- Meridian's own: SHOW CREATE TABLE / COLUMNS helpers ---------------------------- */

static const sqlv__table *named_table(sqlite3_context *ctx, sqlite3_value *v) {
    const char *name = (const char *)sqlite3_value_text(v);
    if (name == NULL) return NULL;
    const sqlv__table *t = sqlv__pgcat_table_by_name(session_of(ctx), name);
    if (t == NULL) {
        char msg[400];
        snprintf(msg, sizeof(msg), "relation \"%.300s\" does not exist", name);
        fail(ctx, "42P01", msg);
    }
    return t;
}

/* At tokens v[i..]: "f ( 'x' )" or, for nextval, "nextval ( meridian_regclass
** ( 'x' ) )": the index of the string, and of the call's last ')' in *close;
** 0 when it is not that shape. */
static size_t call_string(const sqlv__token *v, size_t n, size_t i, size_t *close) {
    if (i + 3 >= n || !sqlv__tok_punct(&v[i + 1], '(')) return 0;
    if (v[i + 2].kind == SQLV__TOK_STRING && sqlv__tok_punct(&v[i + 3], ')')) {
        *close = i + 3;
        return i + 2;
    }
    if (i + 6 < n && sqlv__tok_is(&v[i + 2], "meridian_regclass") &&
        sqlv__tok_punct(&v[i + 3], '(') && v[i + 4].kind == SQLV__TOK_STRING &&
        sqlv__tok_punct(&v[i + 5], ')') && sqlv__tok_punct(&v[i + 6], ')')) {
        *close = i + 6;
        return i + 4;
    }
    return 0;
}

/* Is there space between two tokens once each comment goes with the blank
** before it (the one ADD COLUMN's missing-value mark brought)? */
static bool gap_is_space(const char *a, const char *b) {
    for (const char *c = a; c < b; c++) {
        if (c + 2 < b && c[0] == ' ' && c[1] == '/' && c[2] == '*') continue;
        if (c + 1 < b && c[0] == '/' && c[1] == '*') {
            const char *e = c + 2;
            while (e + 1 < b && !(e[0] == '*' && e[1] == '/'))
                e++;
            c = e + 1;
            continue;
        }
        return true;
    }
    return false;
}

/* A CREATE TABLE text as PostgreSQL would write it: no internal comments
** (a column's missing value), identity columns as GENERATED ... AS
** IDENTITY, nextval('s'::regclass), 'x'::regclass; space between tokens as
** one blank. 0, or -1 out of memory. */
static int display_create(const char *sql, base_buf *out) {
    enum { TOKENS_MAX = 100000 };
    const char *p = sql, *end = sql + strlen(sql);
    sqlv__token *v = NULL; /* owner: this function */
    size_t n = 0, cap = 0;
    int rc = 0;
    for (size_t g = 0; g < TOKENS_MAX; g++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            sqlv__token *nv = base_realloc(v, ncap * sizeof(*nv));
            if (nv == NULL) {
                base_free(v);
                return -1;
            }
            v = nv;
            cap = ncap;
        }
        v[n++] = t;
    }
    const char *prev_end = NULL;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const sqlv__token *t = &v[i];
        if (prev_end != NULL && gap_is_space(prev_end, t->start)) rc = base_buf_append_byte(out, ' ');
        prev_end = t->start + t->len;
        size_t close = 0, str = 0;
        /* DEFAULT (f(...)): the parentheses around a sequence's call go */
        size_t f = i + 1;
        bool wrapped = false;
        if (sqlv__tok_is(t, "DEFAULT") && i + 1 < n && sqlv__tok_punct(&v[i + 1], '(')) {
            f = i + 2;
            wrapped = true;
        }
        if (sqlv__tok_is(t, "DEFAULT") && f < n &&
            (sqlv__tok_is(&v[f], "meridian_identity_always") ||
             sqlv__tok_is(&v[f], "meridian_identity") || sqlv__tok_is(&v[f], "nextval")) &&
            (str = call_string(v, n, f, &close)) != 0 &&
            (!wrapped || (close + 1 < n && sqlv__tok_punct(&v[close + 1], ')')))) {
            if (sqlv__tok_is(&v[f], "nextval"))
                rc = base_buf_printf(out, "DEFAULT nextval(%.*s::regclass)", (int)v[str].len,
                                     v[str].start);
            else
                rc = base_buf_printf(out, "GENERATED %s AS IDENTITY",
                                     sqlv__tok_is(&v[f], "meridian_identity") ? "BY DEFAULT"
                                                                              : "ALWAYS");
            i = wrapped ? close + 1 : close;
            prev_end = v[i].start + v[i].len;
            continue;
        }
        if (sqlv__tok_is(t, "meridian_regclass") && (str = call_string(v, n, i, &close)) != 0) {
            rc = base_buf_printf(out, "%.*s::regclass", (int)v[str].len, v[str].start);
            i = close;
            prev_end = v[i].start + v[i].len;
            continue;
        }
        rc = base_buf_append(out, t->start, t->len);
    }
    base_free(v);
    return rc == 0 ? 0 : -1;
}

static void fn_create_statement(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    const sqlv__table *t = named_table(ctx, argv[0]);
    if (t == NULL) return;
    if (t->is_view) { /* its stored query (view.c) */
        char *v = sqlite3_mprintf("CREATE VIEW %s AS %s", t->name, t->view_query);
        if (v == NULL) sqlite3_result_error_nomem(ctx);
        else sqlite3_result_text(ctx, v, -1, sqlite3_free);
        return;
    }
    base_buf b = {0};
    if (display_create(t->create_sql, &b) != 0) {
        base_buf_free(&b);
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_text(ctx, b.data ? (const char *)b.data : "", (int)b.len, SQLITE_TRANSIENT);
    base_buf_free(&b);
}

static void fn_table_oid(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    const sqlv__table *t = named_table(ctx, argv[0]);
    if (t != NULL) sqlite3_result_int64(ctx, sqlv__pgcat_oid(t->id, SQLV__PGCAT_KIND_TABLE));
}

/* meridian_column_indices(table oid, attnum): the indexes over the column,
** "{t_pkey,t_b_idx}" or "{}". */
static void fn_column_indices(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    const sqlv__table *t = sqlv__pgcat_table_by_oid(session_of(ctx), sqlite3_value_int64(argv[0]));
    int64_t attnum = sqlite3_value_int64(argv[1]);
    base_buf b = {0};
    bool in_pk = false;
    for (int k = 0; t && k < t->npk; k++)
        in_pk |= t->pk[k] + 1 == attnum;
    int rc = base_buf_append_byte(&b, '{');
    if (in_pk) rc = base_buf_printf(&b, "%.58s_pkey", t->name);
    for (int x = 0; t && x < t->nindexes && rc == 0; x++) {
        bool in = false;
        for (int c = 0; c < t->indexes[x].ncols; c++)
            in |= t->indexes[x].cols[c] + 1 == attnum;
        if (in) rc = base_buf_printf(&b, "%s%s", b.len > 1 ? "," : "", t->indexes[x].name);
    }
    if (rc == 0) rc = base_buf_append_byte(&b, '}');
    if (rc == 0)
        sqlite3_result_text(ctx, (const char *)b.data, (int)b.len, SQLITE_TRANSIENT);
    else
        sqlite3_result_error_nomem(ctx);
    base_buf_free(&b);
}

/* ---- has_*_privilege, pg_has_role ------------------------------------------------------
** PostgreSQL's forms: ([user,] object, privileges), has_column_privilege
** ([user,] table, column, privileges); a user by name (or "public") or OID,
** an object by name or OID. privileges: a comma-separated list, each maybe
** "WITH GRANT OPTION"; true when any is held (privileges.c's rows: roles,
** PUBLIC, ownership; root and admins hold everything, as a superuser).
** Strict: NULL in, NULL out; an OID that names nothing gives NULL, a name
** that names nothing an error (42704, 42P01, 42703, 3D000, 3F000). */

#define PRIV_FN_ALWAYS 0x80000000u /* PUBLIC's by default: CONNECT, TEMP, USAGE of a schema */
#define PRIV_FN_SUPER 0x40000000u  /* root and admins only (a superuser's) */
#define PRIV_FN_LIST_MAX 16        /* privileges one call names */
#define PRIV_FN_ALL 0xFFFFFFFFu    /* sqlv__priv_held: root and admins */

typedef struct priv_name {
    const char *name;
    uint32_t bit;
} priv_name;

static const priv_name table_privs[] = {
    {"SELECT", SQLV__PRIV_SELECT},         {"INSERT", SQLV__PRIV_INSERT},
    {"UPDATE", SQLV__PRIV_UPDATE},         {"DELETE", SQLV__PRIV_DELETE},
    {"TRUNCATE", SQLV__PRIV_TRUNCATE},
    {"REFERENCES", SQLV__PRIV_REFERENCES}, {"TRIGGER", SQLV__PRIV_TRIGGER},
    {NULL, 0}};
static const priv_name column_privs[] = {{"SELECT", SQLV__PRIV_SELECT},
                                         {"INSERT", SQLV__PRIV_INSERT},
                                         {"UPDATE", SQLV__PRIV_UPDATE},
                                         {"REFERENCES", SQLV__PRIV_REFERENCES},
                                         {NULL, 0}};
static const priv_name sequence_privs[] = {{"USAGE", SQLV__PRIV_USAGE},
                                           {"SELECT", SQLV__PRIV_SELECT},
                                           {"UPDATE", SQLV__PRIV_UPDATE},
                                           {NULL, 0}};
static const priv_name database_privs[] = {{"CREATE", SQLV__PRIV_CREATE},
                                           {"CONNECT", PRIV_FN_ALWAYS},
                                           {"TEMPORARY", PRIV_FN_ALWAYS},
                                           {"TEMP", PRIV_FN_ALWAYS},
                                           {NULL, 0}};
/* public's CREATE is the database's (CREATE TABLE takes it); the system schemas' a superuser's */
static const priv_name schema_privs[] = {
    {"CREATE", SQLV__PRIV_CREATE}, {"USAGE", PRIV_FN_ALWAYS}, {NULL, 0}};
static const priv_name function_privs[] = {{"EXECUTE", PRIV_FN_ALWAYS}, {NULL, 0}};
static const priv_name type_privs[] = {{"USAGE", PRIV_FN_ALWAYS}, {NULL, 0}};
static const priv_name tablespace_privs[] = {{"CREATE", PRIV_FN_SUPER}, {NULL, 0}};
static const priv_name role_privs[] = {{"MEMBER", 1}, {"USAGE", 1}, {NULL, 0}};

typedef struct priv_want {
    uint32_t bit;
    bool grant; /* WITH GRANT OPTION */
} priv_want;

/* PostgreSQL's convert_any_priv_string: "select, UPDATE WITH GRANT OPTION".
** The count, or -1 with 22023 reported. */
static int priv_parse(sqlite3_context *ctx, const char *text, const priv_name *names,
                      priv_want out[PRIV_FN_LIST_MAX]) {
    int n = 0;
    const char *p = text;
    for (int guard = 0; guard < PRIV_FN_LIST_MAX * 4; guard++) {
        const char *comma = strchr(p, ',');
        const char *e = comma ? comma : p + strlen(p);
        while (p < e && isspace((unsigned char)*p))
            p++;
        const char *q = e;
        while (q > p && isspace((unsigned char)q[-1]))
            q--;
        size_t len = (size_t)(q - p);
        bool found = false;
        for (int i = 0; names[i].name != NULL && !found; i++) {
            size_t nl = strlen(names[i].name);
            bool grant = len == nl + 18 && strncasecmp(p + nl, " WITH GRANT OPTION", 18) == 0;
            if ((len != nl && !grant) || strncasecmp(p, names[i].name, nl) != 0) continue;
            if (n < PRIV_FN_LIST_MAX) out[n++] = (priv_want){names[i].bit, grant};
            found = true;
        }
        if (!found) {
            char msg[200];
            snprintf(msg, sizeof(msg), "unrecognized privilege type: \"%.*s\"",
                     (int)BASE_MIN(len, 120), p);
            fail(ctx, "22023", msg);
            return -1;
        }
        if (comma == NULL) return n;
        p = comma + 1;
    }
    fail(ctx, "54000", "too many privilege types");
    return -1;
}

/* Does bits (sqlv__priv_held's) hold any of want? */
static bool priv_any(uint32_t bits, const priv_want *want, int n) {
    bool super = bits == PRIV_FN_ALL;
    for (int i = 0; i < n; i++) {
        uint32_t b = want[i].bit;
        if (b == PRIV_FN_ALWAYS ? (!want[i].grant || super)
            : b == PRIV_FN_SUPER ? super
            : ((want[i].grant ? bits >> SQLV__PRIV_GRANT_SHIFT : bits) & b) != 0)
            return true;
    }
    return false;
}

static void priv_txn_fail(sqlite3_context *ctx, int rc, txn_error *err) {
    txn_error_set(err, rc);
    fail(ctx, err->sqlstate[0] ? err->sqlstate : "XX000", err->message);
}

/* The user argument: a name (PostgreSQL's name type: as written; "public"
** is PUBLIC) or a role's OID (an unknown one holds what PUBLIC holds). 0,
** or -1 with the error reported. */
static int priv_user(sqlite3_context *ctx, sqlite3_value *v, char out[SQLV__NAME_BYTES_MAX + 1],
                     bool public_ok) {
    sqlv_session *s = session_of(ctx);
    txn_error err = {{0}, {0}};
    if (sqlite3_value_type(v) == SQLITE_INTEGER) {
        int64_t oid = sqlite3_value_int64(v);
        base_strlcpy(out, "public", SQLV__NAME_BYTES_MAX + 1);
        if (oid == SQLV__PGCAT_OID_ROOT_ROLE) base_strlcpy(out, "root", SQLV__NAME_BYTES_MAX + 1);
        if (oid == SQLV__PGCAT_OID_SESSION_ROLE)
            base_strlcpy(out, s->user, SQLV__NAME_BYTES_MAX + 1);
        if (oid > SQLV__PGCAT_OID_ROLE_FIRST && oid < SQLV__PGCAT_OID_INDEX_FIRST && s->kv) {
            sqlv__role *list = NULL; /* owner: this block */
            int n = 0;
            int rc = sqlv__roles_list(s->kv, &list, &n, &err);
            for (int i = 0; rc == TXN_OK && i < n; i++)
                if (sqlv__pgcat_role_oid(list[i].id) == oid)
                    base_strlcpy(out, list[i].name, SQLV__NAME_BYTES_MAX + 1);
            base_free(list);
            if (rc != TXN_OK) {
                priv_txn_fail(ctx, rc, &err);
                return -1;
            }
        }
        return 0;
    }
    const char *name = (const char *)sqlite3_value_text(v);
    bool found = false;
    if (name == NULL) {
        sqlite3_result_error_nomem(ctx);
        return -1;
    }
    int rc = strlen(name) > SQLV__NAME_BYTES_MAX ? TXN_OK
                                                 : sqlv__priv_role_known(s, name, &found, &err);
    if (rc != TXN_OK) {
        priv_txn_fail(ctx, rc, &err);
        return -1;
    }
    if (!found || (!public_ok && strcmp(name, "public") == 0)) {
        char msg[200];
        snprintf(msg, sizeof(msg), "role \"%.100s\" does not exist", name);
        fail(ctx, "42704", msg);
        return -1;
    }
    base_strlcpy(out, name, SQLV__NAME_BYTES_MAX + 1);
    return 0;
}

/* A relation argument: *t a table, or *seq a sequence, or *catalog a
** system relation; all unset: an OID that names nothing (NULL). 0, or -1
** with 42P01 reported (a name that names nothing). */
static int priv_relation(sqlite3_context *ctx, sqlite3_value *v, const sqlv__table **t,
                         sqlv__seq_def *seq, bool *catalog) {
    sqlv_session *s = session_of(ctx);
    int64_t oid;
    *t = NULL;
    *catalog = false;
    seq->id = 0;
    if (sqlite3_value_type(v) == SQLITE_INTEGER) {
        oid = sqlite3_value_int64(v);
    } else {
        const char *name = (const char *)sqlite3_value_text(v);
        if (name == NULL) {
            sqlite3_result_error_nomem(ctx);
            return -1;
        }
        if ((oid = regclass_lookup(s, name)) == 0) {
            char msg[400];
            snprintf(msg, sizeof(msg), "relation \"%.300s\" does not exist", name);
            fail(ctx, "42P01", msg);
            return -1;
        }
    }
    uint32_t id;
    int kind;
    bool found = false;
    if (oid > 0 && oid < SQLV__PGCAT_OID_FIRST) {
        *catalog = true;
    } else if ((*t = sqlv__pgcat_table_by_oid(s, oid)) != NULL) {
        /* an index's OID: its table's privileges, as PostgreSQL has none of its own */
    } else if (sqlv__pgcat_oid_parse(oid, &id, &kind) && kind == SQLV__PGCAT_KIND_TABLE &&
               sqlv__seq_lookup(s, NULL, id, seq, &found) == TXN_OK && found) {
        /* a sequence */
    } else {
        seq->id = 0;
    }
    return 0;
}

/* What user holds on table or sequence id (a sequence: what its table's
** owner holds too), for has_table_privilege. TXN_OK or a txn error. */
static int priv_held_relation(sqlv_session *s, const char *user, const sqlv__table *t,
                              const sqlv__seq_def *seq, uint32_t *bits, txn_error *err) {
    const uint32_t seq_all = SQLV__PRIV_SEQUENCE_ALL | SQLV__PRIV_SEQUENCE_ALL
                                                           << SQLV__PRIV_GRANT_SHIFT;
    if (t != NULL) return sqlv__priv_held(s, user, 't', t->id, NULL, bits, err);
    int rc = sqlv__priv_held(s, user, 't', seq->id, NULL, bits, err);
    if (rc != TXN_OK || *bits == PRIV_FN_ALL) return rc;
    const sqlv__table *owning =
        seq->owner_table[0] ? sqlv__pgcat_table_by_name(s, seq->owner_table) : NULL;
    uint32_t tb = 0;
    if (owning != NULL) rc = sqlv__priv_held(s, user, 't', owning->id, NULL, &tb, err);
    if (rc != TXN_OK) return rc;
    if (tb == PRIV_FN_ALL) *bits = PRIV_FN_ALL;
    else if (tb & SQLV__PRIV_OWNER) *bits |= seq_all;
    if (*bits != PRIV_FN_ALL) *bits &= seq_all; /* a sequence has no other privilege */
    return TXN_OK;
}

enum {
    PRIV_ON_TABLE,
    PRIV_ON_COLUMN,
    PRIV_ON_ANY_COLUMN,
    PRIV_ON_SEQUENCE,
    PRIV_ON_DATABASE,
    PRIV_ON_SCHEMA,
    PRIV_ON_FUNCTION,
    PRIV_ON_TYPE,
    PRIV_ON_TABLESPACE,
    PRIV_ON_ROLE,
};

static const priv_name *const priv_names_of[] = {
    table_privs,    column_privs,  table_privs, sequence_privs,   database_privs,
    schema_privs,   function_privs, type_privs, tablespace_privs, role_privs};

static void has_privilege(sqlite3_context *ctx, int on, int argc, sqlite3_value **argv) {
    sqlv_session *s = session_of(ctx);
    char user[SQLV__NAME_BYTES_MAX + 1], msg[400];
    priv_want want[PRIV_FN_LIST_MAX];
    txn_error err = {{0}, {0}};
    uint32_t bits = 0, more = 0;
    int nobj = on == PRIV_ON_COLUMN ? 2 : 1, rc = TXN_OK;
    if (argc != nobj + 1 && argc != nobj + 2) {
        fail(ctx, "42883", "function has_*_privilege does not exist with that many arguments");
        return;
    }
    if (any_null(argc, argv)) {
        sqlite3_result_null(ctx);
        return;
    }
    sqlite3_value **obj = argv + (argc - nobj - 1);
    const char *privs = (const char *)sqlite3_value_text(argv[argc - 1]);
    if (privs == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    if (argc == nobj + 2) {
        if (priv_user(ctx, argv[0], user, on != PRIV_ON_ROLE) != 0) return;
    } else {
        base_strlcpy(user, s->user, sizeof(user));
    }
    bool by_oid = sqlite3_value_type(obj[0]) == SQLITE_INTEGER;
    const char *name = (const char *)sqlite3_value_text(obj[0]);
    if (name == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    const sqlv__table *t = NULL;
    sqlv__seq_def seq;
    bool catalog = false;
    memset(&seq, 0, sizeof(seq));
    switch (on) {
    case PRIV_ON_TABLE:
    case PRIV_ON_COLUMN:
    case PRIV_ON_ANY_COLUMN:
    case PRIV_ON_SEQUENCE:
        if (priv_relation(ctx, obj[0], &t, &seq, &catalog) != 0) return;
        break;
    case PRIV_ON_DATABASE:
        if (by_oid ? sqlite3_value_int64(obj[0]) != SQLV__PGCAT_OID_DATABASE
                   : strcmp(name, s->database) != 0) {
            if (by_oid) break;
            snprintf(msg, sizeof(msg), "database \"%.300s\" does not exist", name);
            fail(ctx, "3D000", msg);
            return;
        }
        catalog = true; /* found */
        break;
    case PRIV_ON_SCHEMA: {
        static const struct {
            const char *name;
            int64_t oid;
        } schemas[] = {{"public", SQLV__PGCAT_OID_NS_PUBLIC},
                       {"pg_catalog", SQLV__PGCAT_OID_NS_CATALOG},
                       {"pg_toast", SQLV__PGCAT_OID_NS_TOAST},
                       {"information_schema", SQLV__PGCAT_OID_NS_INFO}};
        int k = -1;
        for (size_t i = 0; i < BASE_ARRAY_LEN(schemas) && k < 0; i++)
            if (by_oid ? sqlite3_value_int64(obj[0]) == schemas[i].oid
                       : strcmp(name, schemas[i].name) == 0)
                k = (int)i;
        if (k < 0 && !by_oid) {
            snprintf(msg, sizeof(msg), "schema \"%.300s\" does not exist", name);
            fail(ctx, "3F000", msg);
            return;
        }
        catalog = k >= 0;
        seq.id = k == 0; /* public: CREATE is the database's */
        break;
    }
    case PRIV_ON_TABLESPACE:
        catalog = by_oid ? (sqlite3_value_int64(obj[0]) == 1663 ||
                            sqlite3_value_int64(obj[0]) == 1664)
                         : (strcmp(name, "pg_default") == 0 || strcmp(name, "pg_global") == 0);
        if (!catalog && !by_oid) {
            snprintf(msg, sizeof(msg), "tablespace \"%.300s\" does not exist", name);
            fail(ctx, "42704", msg);
            return;
        }
        break;
    case PRIV_ON_ROLE:
        if (priv_user(ctx, obj[0], seq.name, false) != 0) return;
        catalog = true;
        break;
    default: /* functions and types: PUBLIC's, not looked up */
        catalog = true;
        break;
    }
    int n = priv_parse(ctx, privs, priv_names_of[on], want);
    if (n < 0) return;
    bool found = t != NULL || seq.id != 0 || catalog;
    const char *column = NULL;
    if (found && on == PRIV_ON_COLUMN) { /* by name, or by attnum (an unknown one: NULL) */
        const char *cname = (const char *)sqlite3_value_text(obj[1]);
        bool by_num = sqlite3_value_type(obj[1]) == SQLITE_INTEGER;
        int64_t attnum = sqlite3_value_int64(obj[1]);
        for (int i = 0; t != NULL && cname != NULL && i < t->ncols && column == NULL; i++)
            if (by_num ? attnum == i + 1 : sqlite3_stricmp(t->cols[i].name, cname) == 0)
                column = t->cols[i].name;
        if (column == NULL && !by_num && cname != NULL) {
            snprintf(msg, sizeof(msg), "column \"%.100s\" of relation \"%.100s\" does not exist",
                     cname, t ? t->name : seq.id ? seq.name : name);
            fail(ctx, "42703", msg);
            return;
        }
        found = column != NULL;
    }
    if (!found) { /* an OID that names nothing */
        sqlite3_result_null(ctx);
        return;
    }
    switch (on) {
    case PRIV_ON_TABLE:
    case PRIV_ON_ANY_COLUMN:
    case PRIV_ON_COLUMN:
        if (catalog) { /* system catalogs: everyone reads them, a superuser writes */
            rc = sqlv__priv_held(s, user, 'd', 0, NULL, &bits, &err);
            if (bits != PRIV_FN_ALL) bits = SQLV__PRIV_SELECT;
            break;
        }
        if (on == PRIV_ON_SEQUENCE || t == NULL) {
            rc = priv_held_relation(s, user, t, &seq, &bits, &err);
            break;
        }
        rc = sqlv__priv_held(s, user, 't', t->id, NULL, &bits, &err);
        if (rc == TXN_OK && on != PRIV_ON_TABLE && bits != PRIV_FN_ALL)
            rc = sqlv__priv_held(s, user, on == PRIV_ON_COLUMN ? 'c' : 'a', t->id, column, &more,
                                 &err);
        bits |= more;
        break;
    case PRIV_ON_SEQUENCE:
        if (seq.id == 0) { /* a table, an index or a catalog */
            char q[300];
            sqlv__pgcat_quote_ident(t ? t->name : name, q, sizeof(q));
            snprintf(msg, sizeof(msg), "\"%s\" is not a sequence", by_oid && t == NULL ? name : q);
            fail(ctx, "42809", msg);
            return;
        }
        rc = priv_held_relation(s, user, NULL, &seq, &bits, &err);
        break;
    case PRIV_ON_DATABASE:
    case PRIV_ON_TABLESPACE:
    case PRIV_ON_FUNCTION:
    case PRIV_ON_TYPE:
        rc = sqlv__priv_held(s, user, 'd', 0, NULL, &bits, &err);
        break;
    case PRIV_ON_SCHEMA:
        rc = sqlv__priv_held(s, user, 'd', 0, NULL, &bits, &err);
        if (seq.id == 0 && bits != PRIV_FN_ALL) bits = 0; /* a system schema: no CREATE */
        break;
    case PRIV_ON_ROLE: {
        bool member = false;
        rc = sqlv__priv_role_member(s, user, seq.name, &member, &err);
        bits = member ? 1 : 0;
        break;
    }
    default: break;
    }
    if (rc != TXN_OK) {
        priv_txn_fail(ctx, rc, &err);
        return;
    }
    sqlite3_result_int(ctx, priv_any(bits, want, n));
}

static void fn_has_table_privilege(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    has_privilege(ctx, PRIV_ON_TABLE, argc, argv);
}
static void fn_has_column_privilege(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    has_privilege(ctx, PRIV_ON_COLUMN, argc, argv);
}
static void fn_has_any_column_privilege(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    has_privilege(ctx, PRIV_ON_ANY_COLUMN, argc, argv);
}
static void fn_has_sequence_privilege(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    has_privilege(ctx, PRIV_ON_SEQUENCE, argc, argv);
}
static void fn_has_database_privilege(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    has_privilege(ctx, PRIV_ON_DATABASE, argc, argv);
}
static void fn_has_schema_privilege(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    has_privilege(ctx, PRIV_ON_SCHEMA, argc, argv);
}
static void fn_has_function_privilege(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    has_privilege(ctx, PRIV_ON_FUNCTION, argc, argv);
}
static void fn_has_type_privilege(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    has_privilege(ctx, PRIV_ON_TYPE, argc, argv);
}
static void fn_has_tablespace_privilege(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    has_privilege(ctx, PRIV_ON_TABLESPACE, argc, argv);
}
static void fn_pg_has_role(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    has_privilege(ctx, PRIV_ON_ROLE, argc, argv);
}

/* ---- registration --------------------------------------------------------------------- */

/* The functions below that PostgreSQL declares boolean: their 1/0 go out
** as t/f (type 16), which psql and drivers expect. */
static const char *const boolean_fns[] = {
    "pg_table_is_visible",     "pg_type_is_visible",           "pg_function_is_visible",
    "pg_collation_is_visible", "pg_opclass_is_visible",        "pg_operator_is_visible",
    "pg_statistics_obj_is_visible", "has_table_privilege",     "has_schema_privilege",
    "has_database_privilege",  "has_column_privilege",         "has_any_column_privilege",
    "has_function_privilege",  "has_sequence_privilege",       "has_type_privilege",
    "has_tablespace_privilege", "pg_has_role",                 "pg_is_in_recovery",
    "pg_relation_is_publishable"};

bool sqlv__pgcatalog_fn_is_boolean(const char *name, size_t len) {
    for (size_t i = 0; i < BASE_ARRAY_LEN(boolean_fns); i++)
        if (strlen(boolean_fns[i]) == len && strncasecmp(boolean_fns[i], name, len) == 0)
            return true;
    return false;
}

int sqlv__pgcatalog_register(sqlv_session *s) {
    static const struct {
        const char *name;
        int nargs;
        void (*fn)(sqlite3_context *, int, sqlite3_value **);
    } fns[] = {
        {"regexp", 2, fn_regexp},
        {"quote_ident", 1, fn_quote_ident},
        {"pg_table_is_visible", 1, fn_true},
        {"pg_type_is_visible", 1, fn_true},
        {"pg_function_is_visible", 1, fn_true},
        {"pg_collation_is_visible", 1, fn_true},
        {"pg_opclass_is_visible", 1, fn_true},
        {"pg_operator_is_visible", 1, fn_true},
        {"pg_statistics_obj_is_visible", 1, fn_true},
        {"has_table_privilege", -1, fn_has_table_privilege},
        {"has_schema_privilege", -1, fn_has_schema_privilege},
        {"has_database_privilege", -1, fn_has_database_privilege},
        {"has_column_privilege", -1, fn_has_column_privilege},
        {"has_any_column_privilege", -1, fn_has_any_column_privilege},
        {"has_function_privilege", -1, fn_has_function_privilege},
        {"has_sequence_privilege", -1, fn_has_sequence_privilege},
        {"has_type_privilege", -1, fn_has_type_privilege},
        {"has_tablespace_privilege", -1, fn_has_tablespace_privilege},
        {"pg_has_role", -1, fn_pg_has_role},
        {"pg_is_in_recovery", 0, fn_false},
        {"format_type", 2, fn_format_type},
        {"pg_get_userbyid", 1, fn_get_userbyid},
        {"pg_get_indexdef", 1, fn_get_indexdef},
        {"pg_get_indexdef", 3, fn_get_indexdef},
        {"pg_get_constraintdef", 1, fn_get_constraintdef},
        {"pg_get_constraintdef", 2, fn_get_constraintdef},
        {"pg_get_expr", 2, fn_get_expr},
        {"pg_get_expr", 3, fn_get_expr},
        {"pg_get_viewdef", -1, fn_get_viewdef},
        {"pg_get_partkeydef", 1, fn_null},
        {"pg_get_statisticsobjdef_columns", 1, fn_null},
        {"pg_tablespace_location", 1, fn_empty},
        {"obj_description", 1, fn_null},
        {"obj_description", 2, fn_null},
        {"col_description", 2, fn_null},
        {"shobj_description", 2, fn_null},
        {"pg_encoding_to_char", 1, fn_encoding_to_char},
        {"array_to_string", 2, fn_array_to_string},
        {"array_to_string", 3, fn_array_to_string},
        {"meridian_array_json", 1, fn_array_json},
        {"meridian_array_at", 2, fn_array_at},
        {"meridian_array", -1, fn_array},
        {"array_upper", 2, fn_array_count},
        {"array_length", 2, fn_array_count},
        {"cardinality", 1, fn_array_count},
        {"array_lower", 2, fn_array_lower},
        {"pg_relation_is_publishable", 1, fn_false},
        {"current_schemas", 1, fn_current_schemas},
        {"substring", 2, fn_substring},
        {"substring", 3, fn_substring},
        {"pg_size_pretty", 1, fn_size_pretty},
        {"pg_table_size", 1, fn_zero},
        {"pg_relation_size", -1, fn_zero},
        {"pg_total_relation_size", 1, fn_zero},
        {"pg_indexes_size", 1, fn_zero},
        {"pg_database_size", 1, fn_zero},
        {"meridian_regclass", 1, fn_regclass},
        {"to_regclass", 1, fn_to_regclass},
        {"meridian_create_statement", 1, fn_create_statement},
        {"meridian_table_oid", 1, fn_table_oid},
        {"meridian_column_indices", 2, fn_column_indices},
    };
    if (sqlv__pgcatalog_register_relations(s) != 0) return -1;
    for (size_t i = 0; i < BASE_ARRAY_LEN(fns); i++)
        if (sqlite3_create_function(s->db, fns[i].name, fns[i].nargs, SQLITE_UTF8, s, fns[i].fn,
                                    NULL, NULL) != SQLITE_OK)
            return -1;
    if (sqlite3_create_function(s->db, "array_agg", 1, SQLITE_UTF8, s, NULL, array_step,
                                array_agg_final) != SQLITE_OK ||
        sqlite3_create_function(s->db, "meridian_array_agg", 1, SQLITE_UTF8, s, NULL, array_step,
                                array_ctor_final) != SQLITE_OK ||
        sqlite3_create_function(s->db, "string_agg", 2, SQLITE_UTF8, s, NULL, string_agg_step,
                                string_agg_final) != SQLITE_OK)
        return -1;
    return 0;
}

/* ---- SHOW TABLES / CREATE TABLE / COLUMNS --------------------------------------------- */

/* The table name at *pp, then the end of the statement: 0, or -1. */
static int show_name(const char **pp, const char *end, char *name, size_t size) {
    sqlv__token t = sqlv__lex_next(pp, end);
    if (sqlv__tok_ident(&t, name, size) != 0) return -1;
    return sqlv__lex_next(pp, end).kind == SQLV__TOK_END ? 0 : -1;
}

int sqlv__pgcatalog_show(sqlv__run *r, const char *p, const char *end) {
    char name[SQLV__NAME_BYTES_MAX * 4 + 1];
    char *q = NULL;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "TABLES")) {
        if (sqlv__lex_next(&p, end).kind != SQLV__TOK_END)
            return sqlv__fail(r, "42601", "syntax error in SHOW TABLES");
        q = sqlite3_mprintf(
            "SELECT n.nspname AS schema_name, c.relname AS table_name, 'table' AS type, "
            "pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = "
            "c.relnamespace WHERE c.relkind = 'r' ORDER BY 1, 2");
    } else if (sqlv__tok_is(&t, "CREATE")) {
        const char *save = p;
        sqlv__token t2 = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t2, "TABLE") && !sqlv__tok_is(&t2, "VIEW")) p = save;
        if (show_name(&p, end, name, sizeof(name)) != 0)
            return sqlv__fail(r, "42601", "syntax error in SHOW CREATE TABLE");
        q = sqlite3_mprintf("SELECT %Q AS table_name, meridian_create_statement(%Q) AS "
                            "create_statement",
                            name, name);
    } else if (sqlv__tok_is(&t, "COLUMNS")) {
        sqlv__token from = sqlv__lex_next(&p, end);
        if ((!sqlv__tok_is(&from, "FROM") && !sqlv__tok_is(&from, "IN")) ||
            show_name(&p, end, name, sizeof(name)) != 0)
            return sqlv__fail(r, "42601", "syntax error in SHOW COLUMNS FROM");
        q = sqlite3_mprintf(
            "SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS data_type, "
            "NOT a.attnotnull AS is_nullable, CAST(NULL AS TEXT) AS column_default, "
            "meridian_column_indices(a.attrelid, a.attnum) AS indices FROM pg_attribute a WHERE "
            "a.attrelid = meridian_table_oid(%Q) AND a.attnum > 0 ORDER BY a.attnum",
            name);
    } else {
        return -1;
    }
    if (q == NULL) return sqlv__fail(r, "53200", "out of memory");
    int rc = sqlv__run_statement(r, q, strlen(q));
    sqlite3_free(q);
    return rc;
}
