/*
** sql/asof.c: AS OF SYSTEM TIME (docs/sql.md "Stale reads", docs/txn.md
** section 8): finding the clause in a statement and turning its expression
** into an HLC timestamp. Pure: no session, no clock (the caller passes now).
**
** The clause, at the top level of a statement (not inside parentheses):
**   AS OF SYSTEM TIME <expr>
**   expr := 'string' | [INTERVAL] 'string' | number | follower_read_timestamp()
** and the strings (evaluated by sqlv__as_of_eval):
**   - a negative interval: '-5s', '-1m', '-500ms', '-1h30m', '-10 seconds'
**     (units ns, us, ms, s, m, h and their long spellings), counted back
**     from now;
**   - a timestamp: 'YYYY-MM-DD[ HH:MM[:SS[.fraction]]][Z|+HH[:MM]|-HH[:MM]]'
**     (UTC unless an offset is given);
**   - a decimal HLC 'wall_nanos[.logical]' (what cluster_logical_timestamp()
**     and CockroachDB print; the digits after the point are the logical
**     counter, as an integer);
**   - follower_read_timestamp(): now - SQLV__FOLLOWER_READ_LAG_NS (4.8 s,
**     as CockroachDB: just below the 3 s closed-timestamp target plus
**     slack, so a follower can serve it).
** Errors (state set): 42601 a clause without an expression; 22007 an
** expression that is none of the above; 22008 a timestamp above now (a
** positive interval included), an out-of-range value.
**
** Invariants: the clause is found by tokens (sql_lex.h), so strings,
** quoted identifiers and comments are never mistaken for it; the text
** handed back is the statement with exactly the clause's bytes blanked.
*/
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sql_int.h"
#include "sql_lex.h"

#define ASOF__NUMBER_DIGITS_MAX 19 /* fits an int64 */

static void asof__err(char state[6], char *msg, size_t size, const char *code, const char *fmt,
                      const char *arg) {
    base_strlcpy(state, code, 6);
    snprintf(msg, size, fmt, arg);
}

int sqlv__as_of_expr(const char **pp, const char *end, char *expr, size_t expr_size, char state[6],
                     char *msg, size_t size) {
    const char *q = *pp;
    sqlv__token x = sqlv__lex_next(&q, end);
    if (sqlv__tok_is(&x, "INTERVAL")) x = sqlv__lex_next(&q, end);
    size_t n = 0;
    if (x.kind == SQLV__TOK_STRING && x.len >= 2 && x.start[0] == '\'') {
        /* 'text' with '' doubled quotes */
        for (size_t i = 1; i + 1 < x.len && n + 1 < expr_size; i++) {
            if (x.start[i] == '\'' && i + 2 < x.len && x.start[i + 1] == '\'') i++;
            expr[n++] = x.start[i];
        }
    } else if (x.kind == SQLV__TOK_OTHER && isdigit((unsigned char)x.start[0])) {
        for (size_t i = 0; i < x.len && n + 1 < expr_size; i++)
            expr[n++] = x.start[i];
    } else if (sqlv__tok_is(&x, "follower_read_timestamp")) {
        sqlv__token a = sqlv__lex_next(&q, end), b = sqlv__lex_next(&q, end);
        if (!sqlv__tok_punct(&a, '(') || !sqlv__tok_punct(&b, ')')) {
            asof__err(state, msg, size, "42601", "%s",
                      "syntax error in AS OF SYSTEM TIME: follower_read_timestamp()");
            return 1;
        }
        n = (size_t)snprintf(expr, expr_size, "follower_read_timestamp()");
        if (n >= expr_size) n = expr_size - 1;
    } else {
        asof__err(state, msg, size, "42601", "%s",
                  "syntax error in AS OF SYSTEM TIME: expected a string, a number or "
                  "follower_read_timestamp()");
        return 1;
    }
    expr[n] = 0;
    *pp = q;
    return 0;
}

int sqlv__as_of_take(const char *text, size_t len, char **out_text, char *expr, size_t expr_size,
                     bool *found, char state[6], char *msg, size_t size) {
    const char *p = text, *end = text + len;
    int depth = 0;
    *found = false;
    *out_text = NULL;
    expr[0] = 0;
    for (;;) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) return 0;
        if (sqlv__tok_punct(&t, '(')) depth++;
        if (sqlv__tok_punct(&t, ')') && depth > 0) depth--;
        if (depth != 0 || !sqlv__tok_is(&t, "AS")) continue;
        const char *q = p;
        sqlv__token o = sqlv__lex_next(&q, end), sy = sqlv__lex_next(&q, end),
                    ti = sqlv__lex_next(&q, end);
        if (!sqlv__tok_is(&o, "OF") || !sqlv__tok_is(&sy, "SYSTEM") || !sqlv__tok_is(&ti, "TIME"))
            continue;
        if (*found) {
            asof__err(state, msg, size, "42601", "%s",
                      "AS OF SYSTEM TIME may be given once per statement");
            base_free(*out_text);
            *out_text = NULL;
            return 1;
        }
        const char *clause_start = t.start;
        if (sqlv__as_of_expr(&q, end, expr, expr_size, state, msg, size) != 0) {
            base_free(*out_text);
            *out_text = NULL;
            return 1;
        }
        const char *clause_end = q;
        *found = true;
        if (*out_text == NULL) {
            *out_text = base_malloc(len + 1); /* owner: caller */
            if (*out_text == NULL) return -1;
            memcpy(*out_text, text, len);
            (*out_text)[len] = 0;
        }
        memset(*out_text + (clause_start - text), ' ', (size_t)(clause_end - clause_start));
        p = q;
    }
}

/* One number: digits with an optional fraction, into *v (as a double
** multiplier is enough for an interval's few significant digits). */
static const char *asof__number(const char *p, double *v) {
    char *e = NULL;
    if (!isdigit((unsigned char)*p) && *p != '.') return NULL;
    *v = strtod(p, &e);
    return e == p ? NULL : e;
}

typedef struct asof__unit {
    const char *name;
    int64_t ns;
} asof__unit;

static const asof__unit asof__units[] = {
    {"nanoseconds", 1},        {"nanosecond", 1},          {"ns", 1},
    {"microseconds", 1000},    {"microsecond", 1000},      {"us", 1000},
    {"milliseconds", 1000000}, {"millisecond", 1000000},   {"ms", 1000000},
    {"seconds", 1000000000LL}, {"second", 1000000000LL},   {"secs", 1000000000LL},
    {"sec", 1000000000LL},     {"s", 1000000000LL},        {"minutes", 60000000000LL},
    {"minute", 60000000000LL}, {"mins", 60000000000LL},    {"min", 60000000000LL},
    {"m", 60000000000LL},      {"hours", 3600000000000LL}, {"hour", 3600000000000LL},
    {"hrs", 3600000000000LL},  {"hr", 3600000000000LL},    {"h", 3600000000000LL},
};

/* "-5s", "-1h30m", "- 10 seconds": the interval in ns (negative), or 1
** when s is not an interval. */
static int asof__interval(const char *s, int64_t *out_ns) {
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    int sign = 1;
    if (*p == '-' || *p == '+') {
        sign = *p == '-' ? -1 : 1;
        p++;
    }
    double total = 0;
    int parts = 0;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (*p == 0) break;
        double v = 0;
        const char *q = asof__number(p, &v);
        if (q == NULL) return 1;
        while (isspace((unsigned char)*q))
            q++;
        size_t ulen = 0;
        while (isalpha((unsigned char)q[ulen]))
            ulen++;
        if (ulen == 0) return 1; /* a bare number is not an interval */
        const asof__unit *u = NULL;
        for (size_t i = 0; i < BASE_ARRAY_LEN(asof__units) && u == NULL; i++)
            if (strlen(asof__units[i].name) == ulen &&
                strncasecmp(q, asof__units[i].name, ulen) == 0)
                u = &asof__units[i];
        if (u == NULL) return 1;
        total += v * (double)u->ns;
        parts++;
        p = q + ulen;
    }
    if (parts == 0 || total > 9.0e18) return 1;
    *out_ns = (int64_t)total * sign;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t asof__days(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* n digits exactly into *v. */
static const char *asof__digits(const char *p, int n, int64_t *v) {
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i])) return NULL;
        *v = *v * 10 + (p[i] - '0');
    }
    return p + n;
}

/* 'YYYY-MM-DD[ HH:MM[:SS[.f]]][Z|+HH[:MM]|-HH[:MM]]' -> ns since the epoch
** (UTC); 1 when s is not one, 2 when it is one beyond what ns count. */
static int asof__timestamp(const char *s, int64_t *out_ns) {
    int64_t y, mo, d, h = 0, mi = 0, sec = 0, frac_ns = 0, off_s = 0;
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    if ((p = asof__digits(p, 4, &y)) == NULL || *p++ != '-' ||
        (p = asof__digits(p, 2, &mo)) == NULL || *p++ != '-' ||
        (p = asof__digits(p, 2, &d)) == NULL)
        return 1;
    if (*p == ' ' || *p == 'T' || *p == 't') {
        p++;
        if ((p = asof__digits(p, 2, &h)) == NULL || *p++ != ':' ||
            (p = asof__digits(p, 2, &mi)) == NULL)
            return 1;
        if (*p == ':') {
            if ((p = asof__digits(p + 1, 2, &sec)) == NULL) return 1;
            if (*p == '.') {
                p++;
                int64_t scale = 100000000;
                if (!isdigit((unsigned char)*p)) return 1;
                for (; isdigit((unsigned char)*p); p++) {
                    frac_ns += (*p - '0') * scale;
                    scale /= 10;
                }
            }
        }
    }
    while (*p == ' ')
        p++;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int64_t oh = 0, om = 0;
        if ((p = asof__digits(p + 1, 2, &oh)) == NULL) return 1;
        if (*p == ':') p++;
        if (isdigit((unsigned char)*p) && (p = asof__digits(p, 2, &om)) == NULL) return 1;
        off_s = sign * (oh * 3600 + om * 60);
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p != 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
        y < 1970)
        return 1;
    int64_t secs = asof__days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_s;
    if (secs < 0 || secs > INT64_MAX / 1000000000LL - 1) return 2;
    *out_ns = secs * 1000000000LL + frac_ns;
    return 0;
}

/* 'wall[.logical]', digits only -> an HLC timestamp, or 1. */
static int asof__decimal(const char *s, hlc_timestamp *out) {
    const char *p = s;
    int64_t wall = 0, logical = 0;
    int n = 0;
    for (; isdigit((unsigned char)*p); p++, n++) {
        if (n >= ASOF__NUMBER_DIGITS_MAX) return 1;
        wall = wall * 10 + (*p - '0');
    }
    if (n == 0) return 1;
    if (*p == '.') {
        p++;
        int m = 0;
        for (; isdigit((unsigned char)*p); p++, m++) {
            if (logical > (INT32_MAX - 9) / 10) return 1;
            logical = logical * 10 + (*p - '0');
        }
        if (m == 0) return 1;
    }
    if (*p != 0) return 1;
    *out = (hlc_timestamp){wall, (int32_t)logical};
    return 0;
}

int sqlv__as_of_eval(const char *expr, hlc_timestamp now, hlc_timestamp *out, char state[6],
                     char *msg, size_t size) {
    int64_t ns = 0;
    int trc = 1;
    hlc_timestamp ts = HLC_ZERO;
    if (strcmp(expr, "follower_read_timestamp()") == 0) {
        ts = hlc_add_ns((hlc_timestamp){now.wall_ns, 0}, -SQLV__FOLLOWER_READ_LAG_NS);
    } else if (asof__interval(expr, &ns) == 0) {
        if (ns > 0) {
            asof__err(state, msg, size, "22008",
                      "AS OF SYSTEM TIME: interval '%.64s' is positive: a read cannot be in the "
                      "future (use a negative interval, e.g. '-5s')",
                      expr);
            return 1;
        }
        ts = hlc_add_ns((hlc_timestamp){now.wall_ns, 0}, ns);
    } else if (asof__decimal(expr, &ts) == 0) {
        /* ts set */
    } else if ((trc = asof__timestamp(expr, &ns)) == 0) {
        ts = (hlc_timestamp){ns, 0};
    } else if (trc == 2) {
        asof__err(state, msg, size, "22008", "AS OF SYSTEM TIME: value '%.64s' is out of range",
                  expr);
        return 1;
    } else {
        asof__err(state, msg, size, "22007",
                  "AS OF SYSTEM TIME: value '%.64s' is neither a negative interval ('-5s'), a "
                  "timestamp ('2026-12-06 07:00:00+00'), a decimal HLC timestamp nor "
                  "follower_read_timestamp()",
                  expr);
        return 1;
    }
    if (ts.wall_ns <= 0 || ts.wall_ns >= HLC_WALL_LIMIT_NS) {
        asof__err(state, msg, size, "22008", "AS OF SYSTEM TIME: value '%.64s' is out of range",
                  expr);
        return 1;
    }
    if (hlc_compare(ts, now) > 0) {
        char a[HLC_FORMAT_SIZE], b[HLC_FORMAT_SIZE], m[96];
        snprintf(m, sizeof m, "%s above now %s", hlc_format(ts, a, sizeof a),
                 hlc_format(now, b, sizeof b));
        asof__err(state, msg, size, "22008",
                  "AS OF SYSTEM TIME: cannot read in the future (%s)", m);
        return 1;
    }
    *out = ts;
    return 0;
}
