/*
** PostgreSQL's date/time types and functions on each session's connection
** (docs/sql.md "Dates and times"). The dialect rewriter (dialect.c) turns
** x::date, CAST(x AS timestamp), interval '1 hour', a + interval 'x',
** date + 3 and extract(f FROM x) into calls of the functions here.
**
** Format: every date/time value is TEXT in PostgreSQL's output format
** (DateStyle ISO, IntervalStyle postgres), the format now() and the
** date/timestamp columns already use:
**   date         2024-01-02
**   time         10:00:00[.ffffff]
**   timestamp    2024-01-02 10:00:00[.ffffff]
**   timestamptz  2024-01-02 10:00:00[.ffffff]+00   (offset of TimeZone)
**   interval     1 year 2 mons -3 days +04:05:06.5
** (fractions with their trailing zeros cut), so that values of one type and
** one offset compare as text in time order.
**
** Invariants:
**   - a value is parsed into microseconds since 1970-01-01 (the wall clock
**     for date/timestamp, UTC for timestamptz) or a {months, days, us}
**     interval, computed on, and printed again; nothing keeps state
**     between calls but the session's TimeZone setting, read per call.
**   - years stay within 1..9999 (DT_YEAR_MAX) and intervals within
**     DT_INTERVAL_*_MAX, for what is parsed and what is returned: larger
**     results are 22008, so no arithmetic overflows int64 microseconds.
**   - bad input is 22007 (syntax) or 22008 (field out of range), recorded
**     with sqlv__session_error, never an assert.
**   - TimeZone: UTC/GMT and fixed offsets ("+05:30" and "UTC+3" in
**     PostgreSQL's POSIX sign, west positive; a bare number, hours east);
**     another name counts as UTC. now() prints at this offset too.
*/
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql_int.h"

#define US_PER_SEC INT64_C(1000000)
#define US_PER_MIN (60 * US_PER_SEC)
#define US_PER_HOUR (60 * US_PER_MIN)
#define US_PER_DAY (24 * US_PER_HOUR)
#define DT_YEAR_MAX 9999
/* An interval's fields are at most this large (about 19,000 years each):
** a timestamp plus an interval then stays far inside int64. Larger
** intervals are 22008 (PostgreSQL's are larger). */
#define DT_INTERVAL_US_MAX INT64_C(600000000000000000)
#define DT_INTERVAL_DAYS_MAX INT64_C(7000000)
#define DT_INTERVAL_MONTHS_MAX INT64_C(230000)
/* A to_char/to_timestamp format or an input text longer than this is 22007. */
#define DT_TEXT_BYTES_MAX 512

typedef enum {
    DT_NONE = 0,
    DT_DATE,
    DT_TIME,
    DT_TS,
    DT_TSTZ,
    DT_INTERVAL,
    DT_NUMBER,
} dt_kind;

typedef struct dt_interval {
    int64_t months, days, us;
} dt_interval;

typedef struct dt_value {
    dt_kind kind;
    int64_t us; /* DATE, TS: wall clock; TSTZ: UTC; TIME: of the day */
    dt_interval iv;
    double num;
} dt_value;

static const char *const kind_names[] = {
    [DT_NONE] = "unknown", [DT_DATE] = "date", [DT_TIME] = "time without time zone",
    [DT_TS] = "timestamp without time zone", [DT_TSTZ] = "timestamp with time zone",
    [DT_INTERVAL] = "interval", [DT_NUMBER] = "integer"};

/* ---- the calendar (proleptic Gregorian; H. Hinnant's algorithms) ---------------- */

static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int64_t y, int m) {
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }
static int64_t floor_mod(int64_t a, int64_t b) { return a - floor_div(a, b) * b; }

/* Broken-down wall clock time. */
typedef struct dt_fields {
    int64_t year;
    int mon, mday, hour, min, sec, us;
} dt_fields;

static void split(int64_t us, dt_fields *f) {
    int64_t days = floor_div(us, US_PER_DAY), rest = floor_mod(us, US_PER_DAY);
    civil_from_days(days, &f->year, &f->mon, &f->mday);
    f->hour = (int)(rest / US_PER_HOUR);
    f->min = (int)(rest / US_PER_MIN % 60);
    f->sec = (int)(rest / US_PER_SEC % 60);
    f->us = (int)(rest % US_PER_SEC);
}

static int64_t join(const dt_fields *f) {
    return days_from_civil(f->year, f->mon, f->mday) * US_PER_DAY + f->hour * US_PER_HOUR +
           f->min * US_PER_MIN + f->sec * US_PER_SEC + f->us;
}

static bool interval_ok(const dt_interval *iv) {
    return llabs(iv->us) <= DT_INTERVAL_US_MAX && llabs(iv->days) <= DT_INTERVAL_DAYS_MAX &&
           llabs(iv->months) <= DT_INTERVAL_MONTHS_MAX;
}

static bool year_ok(int64_t us) {
    dt_fields f;
    split(us, &f);
    return f.year >= 1 && f.year <= DT_YEAR_MAX;
}

/* ---- the session: its clock and TimeZone ------------------------------------------ */

static int64_t session_now_us(sqlv_session *s) {
    int64_t ns = s->kv ? txn_read_timestamp(s->kv).wall_ns : base_realtime_ns();
    return ns / 1000;
}

/* [+-]h[h][[:]mm[[:]ss]] at p: seconds (sign applied) or false. */
static bool parse_offset(const char *p, int32_t *out) {
    int sign = *p == '-' ? -1 : 1, h = 0, m = 0, sec = 0, n = 0;
    if (*p == '+' || *p == '-') p++;
    for (; isdigit((unsigned char)*p) && n < 2; p++, n++)
        h = h * 10 + (*p - '0');
    if (n == 0) return false;
    if (*p == ':') p++;
    if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1])) {
        m = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        if (*p == ':') p++;
        if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1])) {
            sec = (p[0] - '0') * 10 + (p[1] - '0');
            p += 2;
        }
    }
    if (*p != 0 || h > 15 || m > 59 || sec > 59) return false;
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
}

/* SET TIME ZONE -8 (a number: hours east, PostgreSQL's ISO reading) as
** the setting keeps it: "-8", "5", "5.5"; "+05" and "-08" are POSIX. */
static bool iso_hours(const char *tz, int32_t *off) {
    const char *p = tz + (*tz == '-');
    if (!isdigit((unsigned char)*p) || (*p == '0' && isdigit((unsigned char)p[1]))) return false;
    char *end = NULL;
    double hours = strtod(tz, &end);
    if (end == tz || *end != 0 || fabs(hours) > 15) return false;
    *off = (int32_t)lround(hours * 3600);
    return true;
}

/* The session's offset east of UTC, in seconds. */
static int32_t session_offset_s(sqlv_session *s) {
    const char *tz = sqlv__setting_get(s, "TimeZone", NULL);
    int32_t off = 0;
    if (tz == NULL) return 0;
    if (iso_hours(tz, &off)) return off; /* SET TIME ZONE -8 */
    const char *p = tz;
    if (strncasecmp(p, "UTC", 3) == 0 || strncasecmp(p, "GMT", 3) == 0) p += 3;
    if ((*p == '+' || *p == '-') && parse_offset(p, &off)) return -off; /* POSIX: west positive */
    return 0;
}

/* The TZ abbreviation to_char prints: "UTC", else the offset. */
static void format_offset(int32_t off, char *out, size_t size) {
    int32_t a = off < 0 ? -off : off;
    int n = snprintf(out, size, "%c%02d", off < 0 ? '-' : '+', a / 3600);
    if (a % 3600 != 0) n += snprintf(out + n, size - (size_t)n, ":%02d", a / 60 % 60);
    if (a % 60 != 0) snprintf(out + n, size - (size_t)n, ":%02d", a % 60);
}

/* ---- text in ------------------------------------------------------------------- */

typedef struct dt_parsed {
    bool has_date, has_time, has_tz;
    dt_fields f;
    int32_t tz_s;
} dt_parsed;

/* 0 ok, 1 syntax (22007), 2 field out of range (22008). */
static int parse_datetime(const char *s, dt_parsed *r) {
    const char *p = s;
    memset(r, 0, sizeof(*r));
    r->f.year = 1970; /* a time alone: on the epoch's day */
    r->f.mon = r->f.mday = 1;
    while (isspace((unsigned char)*p))
        p++;
    /* date: y-m-d, or yyyymmdd */
    const char *q = p;
    while (isdigit((unsigned char)*q))
        q++;
    if (q > p && *q == '-') {
        int64_t y = 0, m = 0, d = 0;
        if (q - p > 7) return 1;
        for (; p < q; p++)
            y = y * 10 + (*p - '0');
        p++;
        int n = 0;
        for (; isdigit((unsigned char)*p) && n < 3; p++, n++)
            m = m * 10 + (*p - '0');
        if (n == 0 || n > 2 || *p++ != '-') return 1;
        n = 0;
        for (; isdigit((unsigned char)*p) && n < 3; p++, n++)
            d = d * 10 + (*p - '0');
        if (n == 0 || n > 2) return 1;
        r->f.year = y;
        r->f.mon = (int)m;
        r->f.mday = (int)d;
        r->has_date = true;
    } else if (q - p == 8 && (*q == 0 || *q == ' ' || *q == 'T')) {
        r->f.year = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
        r->f.mon = (p[4] - '0') * 10 + (p[5] - '0');
        r->f.mday = (p[6] - '0') * 10 + (p[7] - '0');
        r->has_date = true;
        p = q;
    }
    if (r->has_date) {
        if (*p == 'T' || *p == 't') {
            p++;
        } else {
            while (*p == ' ')
                p++;
        }
    }
    /* time: h[h]:mm[:ss[.f]] */
    q = p;
    while (isdigit((unsigned char)*q))
        q++;
    if (q > p && q - p <= 2 && *q == ':') {
        int h = 0, mi = 0, sec = 0, us = 0, n = 0;
        for (; p < q; p++)
            h = h * 10 + (*p - '0');
        p++;
        if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1])) return 1;
        mi = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        if (*p == ':') {
            p++;
            if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1])) return 1;
            sec = (p[0] - '0') * 10 + (p[1] - '0');
            p += 2;
            if (*p == '.') {
                p++;
                int scale = 100000;
                if (!isdigit((unsigned char)*p)) return 1;
                for (; isdigit((unsigned char)*p); p++, n++) {
                    if (n < 6) us += (*p - '0') * scale;
                    if (n == 6 && *p >= '5') us++; /* PostgreSQL rounds to microseconds */
                    scale /= 10;
                }
            }
        }
        r->f.hour = h;
        r->f.min = mi;
        r->f.sec = sec;
        r->f.us = us;
        r->has_time = true;
    }
    if (!r->has_date && !r->has_time) return 1;
    /* zone: Z, UTC, GMT, +hh[:mm] */
    while (*p == ' ')
        p++;
    if (*p == 'Z' || *p == 'z') {
        p++;
        r->has_tz = true;
    } else if (strncasecmp(p, "UTC", 3) == 0 || strncasecmp(p, "GMT", 3) == 0) {
        p += 3;
        r->has_tz = true;
    } else if ((*p == '+' || *p == '-') && r->has_time) {
        char z[16];
        size_t n = 0;
        while ((isdigit((unsigned char)p[n]) || p[n] == ':' || (n == 0)) && n + 1 < sizeof(z)) {
            z[n] = p[n];
            n++;
        }
        z[n] = 0;
        if (!parse_offset(z, &r->tz_s)) return 1;
        p += n;
        r->has_tz = true;
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p != 0) return 1;
    dt_fields *f = &r->f;
    if (f->mon < 1 || f->mon > 12 || f->mday < 1 || f->year < 1 || f->year > DT_YEAR_MAX ||
        f->mday > days_in_month(f->year, f->mon))
        return 2;
    if (f->min > 59 || f->sec > 60 || f->hour > 24 ||
        (f->hour == 24 && (f->min || f->sec || f->us)))
        return 2;
    return 0;
}

/* 'now', 'today', 'epoch'...: true with *us (a wall clock in the session's zone). */
static bool special_word(sqlv_session *s, const char *text, dt_kind kind, int64_t *us) {
    char w[16];
    size_t n = 0;
    while (isspace((unsigned char)*text))
        text++;
    for (; text[n] && !isspace((unsigned char)text[n]) && n + 1 < sizeof(w); n++)
        w[n] = (char)tolower((unsigned char)text[n]);
    w[n] = 0;
    for (const char *t = text + n; *t; t++)
        if (!isspace((unsigned char)*t)) return false;
    int64_t now = session_now_us(s);
    int64_t local = now + (int64_t)session_offset_s(s) * US_PER_SEC;
    int64_t midnight = floor_div(local, US_PER_DAY) * US_PER_DAY;
    if (strcmp(w, "now") == 0) *us = kind == DT_TSTZ ? now : local;
    else if (strcmp(w, "today") == 0) *us = midnight;
    else if (strcmp(w, "tomorrow") == 0) *us = midnight + US_PER_DAY;
    else if (strcmp(w, "yesterday") == 0) *us = midnight - US_PER_DAY;
    else if (strcmp(w, "epoch") == 0) *us = 0;
    else return false;
    if (kind == DT_TSTZ && strcmp(w, "now") != 0) *us -= (int64_t)session_offset_s(s) * US_PER_SEC;
    return true;
}

static void input_error(sqlite3_context *ctx, int rc, dt_kind kind, const char *text) {
    sqlv_session *s = sqlite3_user_data(ctx);
    if (rc == 2)
        sqlv__session_error(s, "22008", "date/time field value out of range: \"%.64s\"", text);
    else
        sqlv__session_error(s, "22007", "invalid input syntax for type %s: \"%.64s\"",
                            kind_names[kind], text);
    sqlite3_result_error(ctx, rc == 2 ? "date/time field value out of range"
                                      : "invalid input syntax for a date/time type", -1);
}

/* Text to a value of kind (DATE, TIME, TS, TSTZ). 0 ok, else 1/2 as above. */
static int parse_as(sqlv_session *s, const char *text, dt_kind kind, dt_value *v) {
    dt_parsed r;
    v->kind = kind;
    if (strlen(text) > DT_TEXT_BYTES_MAX) return 1;
    if (kind != DT_TIME && special_word(s, text, kind, &v->us)) {
        if (kind == DT_DATE) v->us = floor_div(v->us, US_PER_DAY) * US_PER_DAY;
        return 0;
    }
    int rc = parse_datetime(text, &r);
    if (rc != 0) return rc;
    int32_t zone = session_offset_s(s);
    int64_t us = join(&r.f);
    switch (kind) {
    case DT_DATE:
        if (!r.has_date) return 1;
        v->us = floor_div(us, US_PER_DAY) * US_PER_DAY;
        return 0;
    case DT_TIME:
        if (!r.has_time) return r.has_date ? 0 : 1; /* a date alone: 00:00:00 */
        v->us = floor_mod(us, US_PER_DAY);
        if (r.f.hour == 24) v->us = US_PER_DAY; /* 24:00:00 is a time of its own */
        return 0;
    case DT_TS:
        if (!r.has_date) return 1;
        /* an offset (a timestamptz's text): the wall clock of the session's zone */
        v->us = r.has_tz ? us - (int64_t)r.tz_s * US_PER_SEC + (int64_t)zone * US_PER_SEC : us;
        return 0;
    case DT_TSTZ:
        if (!r.has_date) return 1;
        v->us = us - (int64_t)(r.has_tz ? r.tz_s : zone) * US_PER_SEC;
        return 0;
    default: return 1;
    }
}

/* ---- intervals ------------------------------------------------------------------ */

/* PostgreSQL's interval input: "1 day 2 hours", "-1.5 days", "01:30:00",
** "1 year 2 mons 3 days 04:05:06.5", "2 weeks ago", "@ 1 hour", "P1DT2H" is
** not taken. 0 ok, 1 syntax, 2 out of range. */
static int parse_interval(const char *s, dt_interval *out) {
    static const struct {
        const char *name;
        int64_t months, days, us;
    } units[] = {
        {"microsecond", 0, 0, 1},          {"microseconds", 0, 0, 1},
        {"us", 0, 0, 1},                   {"usec", 0, 0, 1},
        {"usecs", 0, 0, 1},                {"millisecond", 0, 0, 1000},
        {"milliseconds", 0, 0, 1000},      {"ms", 0, 0, 1000},
        {"msec", 0, 0, 1000},              {"msecs", 0, 0, 1000},
        {"second", 0, 0, US_PER_SEC},      {"seconds", 0, 0, US_PER_SEC},
        {"sec", 0, 0, US_PER_SEC},         {"secs", 0, 0, US_PER_SEC},
        {"s", 0, 0, US_PER_SEC},           {"minute", 0, 0, US_PER_MIN},
        {"minutes", 0, 0, US_PER_MIN},     {"min", 0, 0, US_PER_MIN},
        {"mins", 0, 0, US_PER_MIN},        {"m", 0, 0, US_PER_MIN},
        {"hour", 0, 0, US_PER_HOUR},       {"hours", 0, 0, US_PER_HOUR},
        {"hr", 0, 0, US_PER_HOUR},         {"hrs", 0, 0, US_PER_HOUR},
        {"h", 0, 0, US_PER_HOUR},          {"day", 0, 1, 0},
        {"days", 0, 1, 0},                 {"d", 0, 1, 0},
        {"week", 0, 7, 0},                 {"weeks", 0, 7, 0},
        {"w", 0, 7, 0},                    {"month", 1, 0, 0},
        {"months", 1, 0, 0},               {"mon", 1, 0, 0},
        {"mons", 1, 0, 0},                 {"year", 12, 0, 0},
        {"years", 12, 0, 0},               {"yr", 12, 0, 0},
        {"yrs", 12, 0, 0},                 {"y", 12, 0, 0},
        {"decade", 120, 0, 0},             {"decades", 120, 0, 0},
        {"century", 1200, 0, 0},           {"centuries", 1200, 0, 0},
        {"millennium", 12000, 0, 0},       {"millennia", 12000, 0, 0},
    };
    dt_interval iv = {0, 0, 0};
    const char *p = s;
    bool any = false, ago = false;
    if (strlen(s) > DT_TEXT_BYTES_MAX) return 1;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '@') p++;
    for (int guard = 0; guard < 64; guard++) {
        while (isspace((unsigned char)*p))
            p++;
        if (*p == 0) break;
        if (strncasecmp(p, "ago", 3) == 0 && (p[3] == 0 || isspace((unsigned char)p[3]))) {
            ago = true;
            p += 3;
            continue;
        }
        /* a number */
        const char *start = p;
        int sign = 1;
        if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
        const char *digits = p;
        while (isdigit((unsigned char)*p))
            p++;
        if (*p == ':' && p > digits) { /* [-]h:mm[:ss[.f]] */
            if (p - digits > 9) return 2;
            int64_t h = 0, mi = 0, sec = 0, frac = 0;
            for (const char *d = digits; d < p; d++)
                h = h * 10 + (*d - '0');
            p++;
            if (!isdigit((unsigned char)p[0])) return 1;
            for (int n = 0; isdigit((unsigned char)*p) && n < 2; p++, n++)
                mi = mi * 10 + (*p - '0');
            if (*p == ':') {
                p++;
                for (int n = 0; isdigit((unsigned char)*p) && n < 2; p++, n++)
                    sec = sec * 10 + (*p - '0');
                if (*p == '.') {
                    int64_t scale = 100000;
                    for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
                        frac += (*p - '0') * scale;
                }
            }
            if (mi > 59 || sec > 59) return 2;
            iv.us += sign * (h * US_PER_HOUR + mi * US_PER_MIN + sec * US_PER_SEC + frac);
            if (!interval_ok(&iv)) return 2;
            any = true;
            continue;
        }
        p = start;
        char *end = NULL;
        double num = strtod(p, &end);
        if (end == p || !isfinite(num) || fabs(num) > 1e9) return end == p ? 1 : 2;
        p = end;
        while (isspace((unsigned char)*p))
            p++;
        char u[16];
        size_t n = 0;
        for (; isalpha((unsigned char)p[n]) && n + 1 < sizeof(u); n++)
            u[n] = (char)tolower((unsigned char)p[n]);
        u[n] = 0;
        if (isalpha((unsigned char)p[n])) return 1;
        size_t k = 0;
        if (n == 0) { /* a bare number: seconds */
            k = 10;
        } else {
            for (; k < BASE_ARRAY_LEN(units); k++)
                if (strcmp(units[k].name, u) == 0) break;
            if (k == BASE_ARRAY_LEN(units)) return 1;
        }
        p += n;
        /* a fraction spills into the next smaller field, as PostgreSQL's */
        double months = num * (double)units[k].months;
        double whole_months = trunc(months);
        double days = num * (double)units[k].days + (months - whole_months) * 30;
        double whole_days = trunc(days);
        double us = num * (double)units[k].us + (days - whole_days) * (double)US_PER_DAY;
        if (fabs(us) > (double)DT_INTERVAL_US_MAX || fabs(whole_days) > (double)DT_INTERVAL_DAYS_MAX ||
            fabs(whole_months) > (double)DT_INTERVAL_MONTHS_MAX)
            return 2;
        iv.months += (int64_t)whole_months;
        iv.days += (int64_t)whole_days;
        iv.us += (int64_t)llround(us);
        if (!interval_ok(&iv)) return 2;
        any = true;
    }
    if (!any) return 1;
    if (ago) {
        iv.months = -iv.months;
        iv.days = -iv.days;
        iv.us = -iv.us;
    }
    *out = iv;
    return 0;
}

/* PostgreSQL's postgres IntervalStyle. */
static void format_interval(const dt_interval *iv, char *out, size_t size) {
    size_t n = 0;
    bool zero = true, before = false;
    int64_t parts[3] = {iv->months / 12, iv->months % 12, iv->days};
    static const char *const names[3] = {"year", "mon", "day"};
    out[0] = 0;
    for (int i = 0; i < 3; i++) {
        int64_t v = parts[i];
        if (v == 0) continue;
        n += (size_t)snprintf(out + n, size - n, "%s%s%lld %s%s", zero ? "" : " ",
                              before && v > 0 ? "+" : "", (long long)v, names[i],
                              v != 1 ? "s" : "");
        before = v < 0;
        zero = false;
        if (n >= size) return;
    }
    if (zero || iv->us != 0) {
        int64_t a = iv->us < 0 ? -iv->us : iv->us;
        n += (size_t)snprintf(out + n, size - n, "%s%s%02lld:%02lld:%02lld", zero ? "" : " ",
                              iv->us < 0 ? "-" : before ? "+" : "", (long long)(a / US_PER_HOUR),
                              (long long)(a / US_PER_MIN % 60), (long long)(a / US_PER_SEC % 60));
        if (a % US_PER_SEC != 0 && n < size) {
            n += (size_t)snprintf(out + n, size - n, ".%06lld", (long long)(a % US_PER_SEC));
            while (n > 0 && out[n - 1] == '0')
                out[--n] = 0;
        }
    }
}

/* ---- text out ------------------------------------------------------------------- */

static size_t format_clock(int64_t us_of_day, char *out, size_t size) {
    int n = snprintf(out, size, "%02lld:%02lld:%02lld", (long long)(us_of_day / US_PER_HOUR),
                     (long long)(us_of_day / US_PER_MIN % 60),
                     (long long)(us_of_day / US_PER_SEC % 60));
    int64_t frac = us_of_day % US_PER_SEC;
    if (frac != 0) {
        n += snprintf(out + n, size - (size_t)n, ".%06lld", (long long)frac);
        while (out[n - 1] == '0')
            out[--n] = 0;
    }
    return (size_t)n;
}

static void format_value(sqlv_session *s, const dt_value *v, char *out, size_t size) {
    dt_fields f;
    int64_t us = v->us;
    int32_t zone = 0;
    if (v->kind == DT_INTERVAL) {
        format_interval(&v->iv, out, size);
        return;
    }
    if (v->kind == DT_TIME) {
        format_clock(v->us, out, size);
        return;
    }
    if (v->kind == DT_TSTZ) {
        zone = session_offset_s(s);
        us += (int64_t)zone * US_PER_SEC;
    }
    split(us, &f);
    size_t n = (size_t)snprintf(out, size, "%04lld-%02d-%02d", (long long)f.year, f.mon, f.mday);
    if (v->kind == DT_DATE) return;
    out[n++] = ' ';
    n += format_clock(floor_mod(us, US_PER_DAY), out + n, size - n);
    if (v->kind == DT_TSTZ) format_offset(zone, out + n, size - n);
}

static void result_value(sqlite3_context *ctx, const dt_value *v) {
    sqlv_session *s = sqlite3_user_data(ctx);
    char out[128];
    if (v->kind == DT_NUMBER) {
        if (v->num == trunc(v->num) && fabs(v->num) < 9e15)
            sqlite3_result_int64(ctx, (sqlite3_int64)v->num);
        else
            sqlite3_result_double(ctx, v->num);
        return;
    }
    if (v->kind == DT_INTERVAL && !interval_ok(&v->iv)) {
        sqlv__session_error(s, "22008", "interval out of range");
        sqlite3_result_error(ctx, "interval out of range", -1);
        return;
    }
    if (v->kind != DT_INTERVAL && v->kind != DT_TIME && !year_ok(v->us)) {
        sqlv__session_error(s, "22008", "timestamp out of range");
        sqlite3_result_error(ctx, "timestamp out of range", -1);
        return;
    }
    format_value(s, v, out, sizeof(out));
    sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

/* ---- values of unknown kind --------------------------------------------------- */

/* The kind of a hint word ("date", "timestamptz"...), DT_NONE for "". */
static dt_kind kind_of_name(const char *w, size_t n) {
    static const struct {
        const char *name;
        dt_kind kind;
    } names[] = {{"date", DT_DATE},     {"time", DT_TIME},         {"timestamp", DT_TS},
                 {"timestamptz", DT_TSTZ}, {"interval", DT_INTERVAL}, {"number", DT_NUMBER}};
    for (size_t i = 0; i < BASE_ARRAY_LEN(names); i++)
        if (strlen(names[i].name) == n && strncasecmp(w, names[i].name, n) == 0)
            return names[i].kind;
    return DT_NONE;
}

/* Read argument a as kind (DT_NONE: guess from its value: a number, a
** date/timestamp[tz] by its text, else an interval). 0 ok, 1/2 input error
** (kind set for the message), 3 NULL. */
static int read_arg(sqlv_session *s, sqlite3_value *a, dt_kind kind, dt_value *v) {
    memset(v, 0, sizeof(*v));
    int type = sqlite3_value_type(a);
    if (type == SQLITE_NULL) return 3;
    if ((kind == DT_NONE || kind == DT_NUMBER) && (type == SQLITE_INTEGER || type == SQLITE_FLOAT)) {
        v->kind = DT_NUMBER;
        v->num = sqlite3_value_double(a);
        return 0;
    }
    const char *text = (const char *)sqlite3_value_text(a);
    if (text == NULL) return 3;
    if (kind == DT_NONE) {
        dt_parsed r;
        /* else an interval: "01:00:00" too (it adds as one) */
        if (parse_datetime(text, &r) == 0 && r.has_date)
            kind = !r.has_time ? DT_DATE : r.has_tz ? DT_TSTZ : DT_TS;
        else
            kind = DT_INTERVAL;
    }
    v->kind = kind;
    if (kind == DT_INTERVAL) return parse_interval(text, &v->iv);
    if (kind == DT_NUMBER) {
        char *end = NULL;
        v->num = strtod(text, &end);
        return end == text ? 1 : 0;
    }
    return parse_as(s, text, kind, v);
}

static const char *arg_text(sqlite3_value *a) {
    const char *t = (const char *)sqlite3_value_text(a);
    return t ? t : "";
}

/* ---- casts ---------------------------------------------------------------------- */

/* Round microseconds to p fractional digits (0..6), half away from zero. */
static int64_t round_us(int64_t us, int64_t p) {
    static const int64_t scale[] = {1000000, 100000, 10000, 1000, 100, 10, 1};
    int64_t sc = scale[p < 0 ? 0 : p > 6 ? 6 : p];
    int64_t half = sc / 2;
    return us >= 0 ? (us + half) / sc * sc : -((-us + half) / sc * sc);
}

/* x::kind, x::kind(p) (argc 2: the precision). */
static void cast_to(sqlite3_context *ctx, int argc, sqlite3_value **argv, dt_kind kind) {
    sqlv_session *s = sqlite3_user_data(ctx);
    sqlite3_value *a = argv[0];
    dt_value v;
    int type = sqlite3_value_type(a);
    if (type == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    if ((type == SQLITE_INTEGER || type == SQLITE_FLOAT) && kind != DT_INTERVAL) {
        sqlv__session_error(s, "42846", "cannot cast type %s to %s",
                            type == SQLITE_INTEGER ? "integer" : "numeric", kind_names[kind]);
        sqlite3_result_error(ctx, "cannot cast a number to a date/time type", -1);
        return;
    }
    int rc = read_arg(s, a, kind, &v);
    if (rc == 3) {
        sqlite3_result_null(ctx);
        return;
    }
    if (rc != 0 && kind == DT_INTERVAL && rc == 2) {
        sqlv__session_error(s, "22015", "interval field value out of range: \"%.64s\"", arg_text(a));
        sqlite3_result_error(ctx, "interval field value out of range", -1);
        return;
    }
    if (rc != 0) {
        input_error(ctx, rc, kind, arg_text(a));
        return;
    }
    if (argc == 2 && kind != DT_DATE) {
        int64_t p = sqlite3_value_int64(argv[1]);
        if (kind == DT_INTERVAL) {
            v.iv.us = round_us(v.iv.us, p);
        } else if (kind == DT_TIME) {
            v.us = round_us(v.us, p);
            if (v.us > US_PER_DAY) v.us = US_PER_DAY;
        } else {
            v.us = round_us(v.us, p);
        }
    }
    result_value(ctx, &v);
}

static void fn_cast_date(sqlite3_context *c, int n, sqlite3_value **a) { cast_to(c, n, a, DT_DATE); }
static void fn_cast_time(sqlite3_context *c, int n, sqlite3_value **a) { cast_to(c, n, a, DT_TIME); }
static void fn_cast_ts(sqlite3_context *c, int n, sqlite3_value **a) { cast_to(c, n, a, DT_TS); }
static void fn_cast_tstz(sqlite3_context *c, int n, sqlite3_value **a) { cast_to(c, n, a, DT_TSTZ); }
static void fn_cast_interval(sqlite3_context *c, int n, sqlite3_value **a) { cast_to(c, n, a, DT_INTERVAL); }

/* ---- arithmetic ----------------------------------------------------------------- */

/* A wall clock plus an interval: months (the day clamped to the month's
** end), then days, then time, as PostgreSQL's timestamp_pl_interval. */
static int64_t add_interval(int64_t us, const dt_interval *iv, int sign) {
    if (iv->months != 0) {
        dt_fields f;
        split(us, &f);
        int64_t m = f.year * 12 + (f.mon - 1) + sign * iv->months;
        f.year = floor_div(m, 12);
        f.mon = (int)floor_mod(m, 12) + 1;
        if (f.year < 1 || f.year > DT_YEAR_MAX) f.year = f.year < 1 ? 0 : DT_YEAR_MAX + 1;
        else if (f.mday > days_in_month(f.year, f.mon)) f.mday = days_in_month(f.year, f.mon);
        us = join(&f);
    }
    return us + sign * (iv->days * US_PER_DAY + iv->us);
}

/* justify_hours: whole days out of the time, signs made to agree. */
static dt_interval justify_hours(dt_interval iv) {
    iv.days += iv.us / US_PER_DAY;
    iv.us %= US_PER_DAY;
    if (iv.days > 0 && iv.us < 0) {
        iv.us += US_PER_DAY;
        iv.days--;
    } else if (iv.days < 0 && iv.us > 0) {
        iv.us -= US_PER_DAY;
        iv.days++;
    }
    return iv;
}

static dt_interval justify_days(dt_interval iv) {
    iv.months += iv.days / 30;
    iv.days %= 30;
    if (iv.months > 0 && iv.days < 0) {
        iv.days += 30;
        iv.months--;
    } else if (iv.months < 0 && iv.days > 0) {
        iv.days -= 30;
        iv.months++;
    }
    return iv;
}

/* justify_interval: PostgreSQL's, which also borrows across months when
** the time's sign disagrees ('1 mon -1 hour' is '29 days 23:00:00'). */
static dt_interval justify_interval(dt_interval iv) {
    iv.months += iv.days / 30;
    iv.days %= 30;
    iv.days += iv.us / US_PER_DAY;
    iv.us %= US_PER_DAY;
    if (iv.months > 0 && (iv.days < 0 || (iv.days == 0 && iv.us < 0))) {
        iv.days += 30;
        iv.months--;
    } else if (iv.months < 0 && (iv.days > 0 || (iv.days == 0 && iv.us > 0))) {
        iv.days -= 30;
        iv.months++;
    }
    if (iv.days > 0 && iv.us < 0) {
        iv.us += US_PER_DAY;
        iv.days--;
    } else if (iv.days < 0 && iv.us > 0) {
        iv.us -= US_PER_DAY;
        iv.days++;
    }
    return iv;
}

static bool is_point(dt_kind k) { return k == DT_DATE || k == DT_TS || k == DT_TSTZ; }

/* a + b (sign 1) or a - b (sign -1); 0 ok, 1 no such operator. */
static int arith(sqlv_session *s, dt_value *a, dt_value *b, int sign, dt_value *r) {
    memset(r, 0, sizeof(*r));
    /* interval + point, number + date: the point on the left */
    if (sign > 0 && (a->kind == DT_INTERVAL || a->kind == DT_NUMBER) &&
        (is_point(b->kind) || b->kind == DT_TIME)) {
        dt_value t = *a;
        *a = *b;
        *b = t;
    }
    /* a timestamptz against a wall clock: compare instants */
    if (a->kind == DT_TSTZ && (b->kind == DT_TS || b->kind == DT_DATE))
        b->us -= (int64_t)session_offset_s(s) * US_PER_SEC;
    if (b->kind == DT_TSTZ && (a->kind == DT_TS || a->kind == DT_DATE)) {
        a->us -= (int64_t)session_offset_s(s) * US_PER_SEC;
        a->kind = DT_TSTZ;
    }
    if (a->kind == DT_TIME && b->kind == DT_DATE && sign > 0) {
        r->kind = DT_TS;
        r->us = a->us + b->us;
        return 0;
    }
    if (a->kind == DT_DATE && b->kind == DT_NUMBER) {
        if (b->num != trunc(b->num) || fabs(b->num) > 1e7) return 1;
        r->kind = DT_DATE;
        r->us = a->us + sign * (int64_t)b->num * US_PER_DAY;
        return 0;
    }
    if (a->kind == DT_DATE && b->kind == DT_DATE && sign < 0) {
        r->kind = DT_NUMBER;
        r->num = (double)((a->us - b->us) / US_PER_DAY);
        return 0;
    }
    if (is_point(a->kind) && b->kind == DT_INTERVAL) {
        r->kind = a->kind == DT_DATE ? DT_TS : a->kind; /* date + interval: timestamp */
        if (a->kind == DT_TSTZ) { /* months and days count in the session's zone */
            int64_t zone = (int64_t)session_offset_s(s) * US_PER_SEC;
            r->us = add_interval(a->us + zone, &b->iv, sign) - zone;
        } else {
            r->us = add_interval(a->us, &b->iv, sign);
        }
        return 0;
    }
    if (is_point(a->kind) && is_point(b->kind) && sign < 0) {
        r->kind = DT_INTERVAL;
        r->iv = justify_hours((dt_interval){0, 0, a->us - b->us});
        return 0;
    }
    if (a->kind == DT_DATE && b->kind == DT_TIME && sign > 0) {
        r->kind = DT_TS;
        r->us = a->us + b->us;
        return 0;
    }
    if (a->kind == DT_TIME && b->kind == DT_INTERVAL) {
        r->kind = DT_TIME;
        r->us = floor_mod(a->us + sign * b->iv.us, US_PER_DAY);
        return 0;
    }
    if (a->kind == DT_TIME && b->kind == DT_TIME && sign < 0) {
        r->kind = DT_INTERVAL;
        r->iv.us = a->us - b->us;
        return 0;
    }
    if (a->kind == DT_INTERVAL && b->kind == DT_INTERVAL) {
        r->kind = DT_INTERVAL;
        r->iv.months = a->iv.months + sign * b->iv.months;
        r->iv.days = a->iv.days + sign * b->iv.days;
        r->iv.us = a->iv.us + sign * b->iv.us;
        return 0;
    }
    if (a->kind == DT_NUMBER && b->kind == DT_NUMBER) {
        r->kind = DT_NUMBER;
        r->num = a->num + sign * b->num;
        return 0;
    }
    return 1;
}

/* meridian_dt_add(a, b, 'kind_a,kind_b') and meridian_dt_sub: the
** rewrite of a + b and a - b when one side is visibly a date/time; a kind
** the rewriter could not see is "" (then the value tells). */
static void dt_op(sqlite3_context *ctx, sqlite3_value **argv, int sign) {
    sqlv_session *s = sqlite3_user_data(ctx);
    const char *kinds = arg_text(argv[2]);
    const char *comma = strchr(kinds, ',');
    dt_kind ka = kind_of_name(kinds, comma ? (size_t)(comma - kinds) : strlen(kinds));
    dt_kind kb = comma ? kind_of_name(comma + 1, strlen(comma + 1)) : DT_NONE;
    dt_value a = {0}, b = {0}, r;
    int rc = read_arg(s, argv[0], ka, &a);
    if (rc == 0) rc = read_arg(s, argv[1], kb, &b);
    if (rc == 3) {
        sqlite3_result_null(ctx);
        return;
    }
    if (rc != 0) {
        sqlite3_value *bad = a.kind == DT_NONE || rc == 0 ? argv[1] : argv[0];
        input_error(ctx, rc, a.kind != DT_NONE ? b.kind : a.kind, arg_text(bad));
        return;
    }
    dt_kind ak = a.kind, bk = b.kind;
    if (arith(s, &a, &b, sign, &r) != 0) {
        sqlv__session_error(s, "42883", "operator does not exist: %s %c %s", kind_names[ak],
                            sign > 0 ? '+' : '-', kind_names[bk]);
        sqlite3_result_error(ctx, "operator does not exist", -1);
        return;
    }
    result_value(ctx, &r);
}

/* meridian_dt_mul(a, b, kinds) / meridian_dt_div: interval * number,
** number * interval, interval / number; a fraction of a month spills into
** days (30), of a day into time, as PostgreSQL's interval_mul. */
static void dt_scale(sqlite3_context *ctx, sqlite3_value **argv, bool divide) {
    sqlv_session *s = sqlite3_user_data(ctx);
    const char *kinds = arg_text(argv[2]);
    const char *comma = strchr(kinds, ',');
    dt_kind ka = kind_of_name(kinds, comma ? (size_t)(comma - kinds) : strlen(kinds));
    dt_kind kb = comma ? kind_of_name(comma + 1, strlen(comma + 1)) : DT_NONE;
    dt_value a = {0}, b = {0};
    int rc = read_arg(s, argv[0], ka, &a);
    if (rc == 0) rc = read_arg(s, argv[1], kb == DT_NONE ? DT_NUMBER : kb, &b);
    if (rc == 3) {
        sqlite3_result_null(ctx);
        return;
    }
    if (rc == 0 && !divide && a.kind == DT_NUMBER && b.kind == DT_INTERVAL) {
        dt_value t = a;
        a = b;
        b = t;
    }
    if (rc != 0 || a.kind != DT_INTERVAL || b.kind != DT_NUMBER) {
        sqlv__session_error(s, "42883", "operator does not exist: %s %c %s", kind_names[a.kind],
                            divide ? '/' : '*', kind_names[b.kind]);
        sqlite3_result_error(ctx, "operator does not exist", -1);
        return;
    }
    if (divide && b.num == 0) {
        sqlv__session_error(s, "22012", "division by zero");
        sqlite3_result_error(ctx, "division by zero", -1);
        return;
    }
    double f = divide ? 1.0 / b.num : b.num;
    double months = (double)a.iv.months * f, days = (double)a.iv.days * f;
    double us = (double)a.iv.us * f;
    if (!isfinite(months) || !isfinite(us) || fabs(months) > (double)DT_INTERVAL_MONTHS_MAX ||
        fabs(days) > (double)DT_INTERVAL_DAYS_MAX || fabs(us) > (double)DT_INTERVAL_US_MAX) {
        sqlv__session_error(s, "22008", "interval out of range");
        sqlite3_result_error(ctx, "interval out of range", -1);
        return;
    }
    dt_value r = {.kind = DT_INTERVAL};
    r.iv.months = (int64_t)trunc(months);
    days += (months - trunc(months)) * 30;
    r.iv.days = (int64_t)trunc(days);
    r.iv.us = (int64_t)llround(us + (days - trunc(days)) * (double)US_PER_DAY);
    result_value(ctx, &r);
}

static void fn_dt_mul(sqlite3_context *c, int n, sqlite3_value **a) { (void)n; dt_scale(c, a, false); }
static void fn_dt_div(sqlite3_context *c, int n, sqlite3_value **a) { (void)n; dt_scale(c, a, true); }
static void fn_dt_add(sqlite3_context *c, int n, sqlite3_value **a) { (void)n; dt_op(c, a, 1); }
static void fn_dt_sub(sqlite3_context *c, int n, sqlite3_value **a) { (void)n; dt_op(c, a, -1); }

/* A zone name of AT TIME ZONE / timezone(): its offset east of UTC in
** seconds, as session_offset_s reads TimeZone. false if not UTC or an offset. */
static bool zone_offset(const char *tz, int32_t *off) {
    const char *p = tz;
    bool named = false;
    if (strncasecmp(p, "UTC", 3) == 0 || strncasecmp(p, "GMT", 3) == 0) {
        p += 3;
        named = true;
    }
    if (named && *p == 0) {
        *off = 0;
        return true;
    }
    if ((*p == '+' || *p == '-') && parse_offset(p, off)) {
        *off = -*off; /* POSIX: west positive */
        return true;
    }
    if (strcasecmp(tz, "Z") == 0 || strcasecmp(tz, "Etc/UTC") == 0 ||
        strcasecmp(tz, "Etc/GMT") == 0 || strcasecmp(tz, "Zulu") == 0 ||
        strcasecmp(tz, "Universal") == 0) {
        *off = 0;
        return true;
    }
    return false;
}

/* timezone(x, zone, 'kind of x') (the rewrite of x AT TIME ZONE zone) and
** PostgreSQL's timezone(zone, x): a timestamptz becomes the wall clock of zone
** (timestamp); a timestamp, read as zone's wall clock, a timestamptz. */
static void at_time_zone(sqlite3_context *ctx, sqlite3_value *x, sqlite3_value *zone,
                         dt_kind hint) {
    sqlv_session *s = sqlite3_user_data(ctx);
    dt_value v;
    int rc = read_arg(s, x, hint == DT_TSTZ || hint == DT_TS ? hint : DT_NONE, &v);
    if (rc == 3 || sqlite3_value_type(zone) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    if (rc != 0) {
        input_error(ctx, rc, v.kind, arg_text(x));
        return;
    }
    int32_t off = 0;
    const char *z = arg_text(zone);
    if (sqlite3_value_type(zone) == SQLITE_INTEGER) {
        off = (int32_t)(sqlite3_value_int64(zone) * 3600);
    } else if (!zone_offset(z, &off)) {
        dt_interval iv;
        if (parse_interval(z, &iv) != 0 || iv.months != 0 || iv.days != 0 ||
            llabs(iv.us) > 15 * US_PER_HOUR) {
            sqlv__session_error(s, "22023", "time zone \"%.64s\" not recognized (Meridian "
                                "knows UTC and fixed offsets)", z);
            sqlite3_result_error(ctx, "time zone not recognized", -1);
            return;
        }
        off = (int32_t)(iv.us / US_PER_SEC); /* an interval: east positive */
    }
    if (v.kind == DT_TSTZ) {
        v.kind = DT_TS;
        v.us += (int64_t)off * US_PER_SEC;
    } else if (v.kind == DT_TS || v.kind == DT_DATE) {
        v.kind = DT_TSTZ;
        v.us -= (int64_t)off * US_PER_SEC;
    } else {
        sqlv__session_error(s, "42883", "operator does not exist: %s AT TIME ZONE text",
                            kind_names[v.kind]);
        sqlite3_result_error(ctx, "operator does not exist", -1);
        return;
    }
    result_value(ctx, &v);
}

static void fn_at_time_zone(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    const char *k = arg_text(argv[2]);
    (void)argc;
    at_time_zone(ctx, argv[0], argv[1], kind_of_name(k, strlen(k)));
}

static void fn_timezone(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    at_time_zone(ctx, argv[1], argv[0], DT_NONE);
}

/* ---- extract, date_part, date_trunc ---------------------------------------------- */

/* A point as the session's wall clock (a timestamptz shifted by TimeZone). */
static int64_t wall_clock(sqlv_session *s, const dt_value *v) {
    return v->kind == DT_TSTZ ? v->us + (int64_t)session_offset_s(s) * US_PER_SEC : v->us;
}

/* ISO 8601 week number and its year. */
static int iso_week(int64_t days, int64_t *iso_year) {
    int64_t y, dummy_y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int64_t wday = floor_mod(days + 3, 7); /* Monday 0 */
    int64_t thursday = days - wday + 3;
    civil_from_days(thursday, &dummy_y, &m, &d);
    *iso_year = dummy_y;
    int64_t jan1 = days_from_civil(dummy_y, 1, 1);
    return (int)((thursday - jan1) / 7 + 1);
}

/* Field f of v: 0 ok (*out), 1 unknown field for the type. */
static int field_of(sqlv_session *s, const char *field, const dt_value *v, double *out) {
    char f[32];
    size_t n = 0;
    for (; field[n] && n + 1 < sizeof(f); n++)
        f[n] = (char)tolower((unsigned char)field[n]);
    f[n] = 0;
    if (n > 1 && f[n - 1] == 's' && strcmp(f, "microseconds") != 0 &&
        strcmp(f, "milliseconds") != 0 && strcmp(f, "seconds") != 0)
        f[n - 1] = 0; /* years, days... */
    if (strcmp(f, "seconds") == 0) strcpy(f, "second");
    if (v->kind == DT_INTERVAL) {
        const dt_interval *iv = &v->iv;
        int64_t t = iv->us;
        if (strcmp(f, "epoch") == 0)
            *out = (double)t / 1e6 + (double)iv->days * 86400 +
                   (double)(iv->months / 12) * 365.25 * 86400 + (double)(iv->months % 12) * 30 * 86400;
        else if (strcmp(f, "year") == 0) *out = (double)(iv->months / 12);
        else if (strcmp(f, "month") == 0) *out = (double)(iv->months % 12);
        else if (strcmp(f, "day") == 0) *out = (double)iv->days;
        else if (strcmp(f, "hour") == 0) *out = (double)(t / US_PER_HOUR);
        else if (strcmp(f, "minute") == 0) *out = (double)(t / US_PER_MIN % 60);
        else if (strcmp(f, "second") == 0) *out = (double)(t % US_PER_MIN) / 1e6;
        else if (strcmp(f, "milliseconds") == 0) *out = (double)(t % US_PER_MIN) / 1e3;
        else if (strcmp(f, "microseconds") == 0) *out = (double)(t % US_PER_MIN);
        else if (strcmp(f, "quarter") == 0) *out = (double)(iv->months % 12 / 3 + 1);
        else return 1;
        return 0;
    }
    if (v->kind == DT_TIME) {
        dt_fields tf;
        split(v->us, &tf);
        if (v->us == US_PER_DAY) tf.hour = 24;
        if (strcmp(f, "hour") == 0) *out = tf.hour;
        else if (strcmp(f, "minute") == 0) *out = tf.min;
        else if (strcmp(f, "second") == 0) *out = tf.sec + tf.us / 1e6;
        else if (strcmp(f, "milliseconds") == 0) *out = tf.sec * 1e3 + tf.us / 1e3;
        else if (strcmp(f, "microseconds") == 0) *out = tf.sec * 1e6 + tf.us;
        else if (strcmp(f, "epoch") == 0) *out = (double)v->us / 1e6;
        else return 1;
        return 0;
    }
    int64_t us = wall_clock(s, v);
    dt_fields t;
    split(us, &t);
    int64_t days = floor_div(us, US_PER_DAY);
    int64_t iso_year;
    if (strcmp(f, "year") == 0) *out = (double)t.year;
    else if (strcmp(f, "month") == 0) *out = t.mon;
    else if (strcmp(f, "day") == 0) *out = t.mday;
    else if (strcmp(f, "hour") == 0) *out = t.hour;
    else if (strcmp(f, "minute") == 0) *out = t.min;
    else if (strcmp(f, "second") == 0) *out = t.sec + t.us / 1e6;
    else if (strcmp(f, "milliseconds") == 0) *out = t.sec * 1e3 + t.us / 1e3;
    else if (strcmp(f, "microseconds") == 0) *out = t.sec * 1e6 + t.us;
    else if (strcmp(f, "epoch") == 0) *out = (double)v->us / 1e6; /* tz: the instant */
    else if (strcmp(f, "dow") == 0) *out = (double)floor_mod(days + 4, 7);
    else if (strcmp(f, "isodow") == 0) *out = (double)(floor_mod(days + 3, 7) + 1);
    else if (strcmp(f, "doy") == 0) *out = (double)(days - days_from_civil(t.year, 1, 1) + 1);
    else if (strcmp(f, "week") == 0) *out = iso_week(days, &iso_year);
    else if (strcmp(f, "isoyear") == 0) {
        iso_week(days, &iso_year);
        *out = (double)iso_year;
    } else if (strcmp(f, "quarter") == 0) *out = (t.mon - 1) / 3 + 1;
    else if (strcmp(f, "decade") == 0) *out = (double)(t.year / 10);
    else if (strcmp(f, "century") == 0) *out = (double)((t.year + 99) / 100);
    else if (strcmp(f, "millennium") == 0) *out = (double)((t.year + 999) / 1000);
    else if (strcmp(f, "julian") == 0) *out = (double)(days + 2440588) + (double)floor_mod(us, US_PER_DAY) / 86400e6;
    else if (strcmp(f, "timezone") == 0 && v->kind == DT_TSTZ) *out = session_offset_s(s);
    else return 1;
    return 0;
}

/* extract(field, x) (the rewrite of extract(field FROM x)) and
** date_part(field, x): the same numbers; PostgreSQL's extract is numeric
** ("5.000000"), here whole values are integers and others reals. */
static void fn_date_part(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    dt_value v;
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    int rc = read_arg(s, argv[1], DT_NONE, &v);
    if (rc == 3) {
        sqlite3_result_null(ctx);
        return;
    }
    if (rc != 0) {
        input_error(ctx, rc, v.kind, arg_text(argv[1]));
        return;
    }
    double d = 0;
    const char *field = arg_text(argv[0]);
    if (v.kind == DT_NUMBER || field_of(s, field, &v, &d) != 0) {
        sqlv__session_error(s, "0A000", "unit \"%.32s\" not supported for type %s", field,
                            kind_names[v.kind]);
        sqlite3_result_error(ctx, "unit not supported", -1);
        return;
    }
    dt_value r = {.kind = DT_NUMBER, .num = d};
    result_value(ctx, &r);
}

static void fn_date_trunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    dt_value v;
    (void)argc;
    int rc = read_arg(s, argv[1], DT_NONE, &v);
    if (rc == 3 || sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    if (rc != 0) {
        input_error(ctx, rc, v.kind, arg_text(argv[1]));
        return;
    }
    char u[16];
    const char *unit = arg_text(argv[0]);
    size_t n = 0;
    for (; unit[n] && n + 1 < sizeof(u); n++)
        u[n] = (char)tolower((unsigned char)unit[n]);
    u[n] = 0;
    if (n > 1 && u[n - 1] == 's') u[n - 1] = 0;
    if (v.kind == DT_DATE) { /* PostgreSQL: date_trunc(text, timestamptz) */
        v.kind = DT_TSTZ;
        v.us -= (int64_t)session_offset_s(s) * US_PER_SEC;
    }
    if (v.kind == DT_INTERVAL) {
        dt_interval *iv = &v.iv;
        static const char *const order[] = {"millennium", "century", "decade", "year", "quarter",
                                            "month", "day", "hour", "minute", "second",
                                            "millisecond", "microsecond"};
        size_t k = 0;
        for (; k < BASE_ARRAY_LEN(order); k++)
            if (strcmp(order[k], u) == 0) break;
        if (k == BASE_ARRAY_LEN(order)) goto bad_unit;
        static const int64_t month_units[] = {12000, 1200, 120, 12, 3, 1};
        if (k <= 5) {
            iv->months -= iv->months % month_units[k];
            iv->days = 0;
            iv->us = 0;
        } else if (k == 6) {
            iv->us = 0;
        } else {
            static const int64_t us_units[] = {US_PER_HOUR, US_PER_MIN, US_PER_SEC, 1000, 1};
            iv->us -= iv->us % us_units[k - 7];
        }
        result_value(ctx, &v);
        return;
    }
    if (!is_point(v.kind)) goto bad_unit;
    int64_t zone = v.kind == DT_TSTZ ? (int64_t)session_offset_s(s) * US_PER_SEC : 0;
    int64_t us = v.us + zone;
    dt_fields f;
    split(us, &f);
    int64_t days = floor_div(us, US_PER_DAY);
    if (strcmp(u, "microsecond") == 0) {
    } else if (strcmp(u, "millisecond") == 0) {
        f.us -= f.us % 1000;
    } else if (strcmp(u, "second") == 0) {
        f.us = 0;
    } else if (strcmp(u, "minute") == 0) {
        f.us = f.sec = 0;
    } else if (strcmp(u, "hour") == 0) {
        f.us = f.sec = f.min = 0;
    } else if (strcmp(u, "day") == 0) {
        f.us = f.sec = f.min = f.hour = 0;
    } else if (strcmp(u, "week") == 0) { /* the Monday */
        civil_from_days(days - floor_mod(days + 3, 7), &f.year, &f.mon, &f.mday);
        f.us = f.sec = f.min = f.hour = 0;
    } else if (strcmp(u, "month") == 0 || strcmp(u, "quarter") == 0 || strcmp(u, "year") == 0 ||
               strcmp(u, "decade") == 0 || strcmp(u, "century") == 0 ||
               strcmp(u, "millennium") == 0) {
        f.us = f.sec = f.min = f.hour = 0;
        f.mday = 1;
        if (strcmp(u, "quarter") == 0) f.mon = (f.mon - 1) / 3 * 3 + 1;
        if (strcmp(u, "month") != 0 && strcmp(u, "quarter") != 0) f.mon = 1;
        if (strcmp(u, "decade") == 0) f.year -= f.year % 10;
        if (strcmp(u, "century") == 0) f.year = (f.year - 1) / 100 * 100 + 1;
        if (strcmp(u, "millennium") == 0) f.year = (f.year - 1) / 1000 * 1000 + 1;
    } else {
        goto bad_unit;
    }
    v.us = join(&f) - zone;
    result_value(ctx, &v);
    return;
bad_unit:
    sqlv__session_error(s, "22023", "unit \"%.32s\" not recognized for type %s", unit,
                        kind_names[v.kind]);
    sqlite3_result_error(ctx, "unit not recognized", -1);
}

/* ---- age, justify ------------------------------------------------------------------ */

/* age(a, b): a - b in years, months and days of the calendar (PostgreSQL's
** timestamp_age: fields subtracted, then borrowed upwards). */
static dt_interval age_of(int64_t a, int64_t b) {
    dt_fields f1, f2;
    split(a, &f1);
    split(b, &f2);
    int64_t us = (int64_t)(f1.hour - f2.hour) * US_PER_HOUR + (f1.min - f2.min) * US_PER_MIN +
                 (f1.sec - f2.sec) * US_PER_SEC + (f1.us - f2.us);
    int64_t mday = f1.mday - f2.mday, mon = f1.mon - f2.mon, year = f1.year - f2.year;
    int sign = a < b ? -1 : 1;
    /* on the absolute difference, as PostgreSQL flips the sign first */
    us *= sign;
    mday *= sign;
    mon *= sign;
    year *= sign;
    while (us < 0) {
        us += US_PER_DAY;
        mday--;
    }
    while (mday < 0) {
        const dt_fields *m = a < b ? &f1 : &f2;
        mday += days_in_month(m->year, m->mon);
        mon--;
    }
    while (mon < 0) {
        mon += 12;
        year--;
    }
    dt_interval iv = {sign * (year * 12 + mon), sign * mday, sign * us};
    return iv;
}

static void fn_age(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    dt_value a = {0}, b = {0};
    int rc = read_arg(s, argv[0], DT_NONE, &a);
    if (rc == 0 && argc == 2) rc = read_arg(s, argv[1], DT_NONE, &b);
    if (rc == 3) {
        sqlite3_result_null(ctx);
        return;
    }
    if (rc != 0) {
        input_error(ctx, rc, DT_TS, arg_text(argv[argc == 2 && rc != 0 ? 1 : 0]));
        return;
    }
    if (argc == 1) { /* age(x): from today's midnight */
        b = a;
        a.kind = DT_TS;
        int64_t local = session_now_us(s) + (int64_t)session_offset_s(s) * US_PER_SEC;
        a.us = floor_div(local, US_PER_DAY) * US_PER_DAY;
    }
    if (!is_point(a.kind) || !is_point(b.kind)) {
        sqlv__session_error(s, "42883", "function age(%s, %s) does not exist", kind_names[a.kind],
                            kind_names[b.kind]);
        sqlite3_result_error(ctx, "function age does not exist", -1);
        return;
    }
    dt_value r = {.kind = DT_INTERVAL};
    r.iv = age_of(wall_clock(s, &a), wall_clock(s, &b));
    result_value(ctx, &r);
}

static void justify(sqlite3_context *ctx, sqlite3_value *arg, int which) {
    sqlv_session *s = sqlite3_user_data(ctx);
    dt_value v;
    int rc = read_arg(s, arg, DT_INTERVAL, &v);
    if (rc == 3) {
        sqlite3_result_null(ctx);
        return;
    }
    if (rc != 0) {
        input_error(ctx, rc, DT_INTERVAL, arg_text(arg));
        return;
    }
    if (which == 1) v.iv = justify_hours(v.iv);
    if (which == 2) v.iv = justify_days(v.iv);
    if (which == 3) v.iv = justify_interval(v.iv);
    result_value(ctx, &v);
}

static void fn_justify_hours(sqlite3_context *c, int n, sqlite3_value **a) { (void)n; justify(c, a[0], 1); }
static void fn_justify_days(sqlite3_context *c, int n, sqlite3_value **a) { (void)n; justify(c, a[0], 2); }
static void fn_justify_interval(sqlite3_context *c, int n, sqlite3_value **a) { (void)n; justify(c, a[0], 3); }

/* ---- to_char, to_timestamp, to_date ------------------------------------------------ */

static const char *const month_names[] = {"January", "February", "March",     "April",
                                          "May",     "June",     "July",      "August",
                                          "September", "October", "November", "December"};
static const char *const day_names[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};

/* A name in the case of the pattern (Month, MONTH, month), padded to 9
** unless fill mode. */
static int put_name(base_buf *b, const char *name, size_t len, const char *pat, bool fm) {
    char w[16];
    bool upper = isupper((unsigned char)pat[0]) && isupper((unsigned char)pat[1]);
    bool lower = islower((unsigned char)pat[0]);
    size_t n = 0;
    for (; n < len && name[n]; n++)
        w[n] = (char)(upper ? toupper((unsigned char)name[n])
                            : lower ? tolower((unsigned char)name[n]) : name[n]);
    if (!fm && len == 9)
        for (; n < 9; n++)
            w[n] = ' ';
    return base_buf_append(b, w, n);
}

static bool pat_is(const char *p, const char *pat) { return strncasecmp(p, pat, strlen(pat)) == 0; }

static const char *ordinal(int64_t v) {
    int64_t t = v % 100;
    if (t >= 11 && t <= 13) return "th";
    switch (v % 10) {
    case 1: return "st";
    case 2: return "nd";
    case 3: return "rd";
    default: return "th";
    }
}

/* to_char(x, fmt) for the common patterns; other characters are copied,
** "text" is literal, FM (fill mode) and the TH/th suffix apply. */
static int to_char(sqlv_session *s, const dt_value *v, const char *fmt, base_buf *b) {
    int64_t us = v->kind == DT_INTERVAL ? 0 : wall_clock(s, v);
    dt_fields f;
    split(us, &f);
    int64_t days = floor_div(us, US_PER_DAY), iso_year;
    bool interval = v->kind == DT_INTERVAL;
    if (interval) { /* its fields, as they are: HH24 may pass 24, signs stay */
        const dt_interval *iv = &v->iv;
        f.year = iv->months / 12;
        f.mon = (int)(iv->months % 12);
        f.mday = (int)iv->days;
        f.hour = (int)(iv->us / US_PER_HOUR);
        f.min = (int)(iv->us / US_PER_MIN % 60);
        f.sec = (int)(iv->us / US_PER_SEC % 60);
        f.us = (int)(iv->us % US_PER_SEC);
        days = iv->days;
    }
    int rc = 0;
    for (const char *p = fmt; *p && rc == 0;) {
        bool fm = false, matched = true;
        int64_t num = 0;
        int width = 0;
        if (pat_is(p, "FM")) {
            fm = true;
            p += 2;
        }
        if (*p == '"') { /* literal text */
            for (p++; *p && *p != '"' && rc == 0; p++) {
                if (*p == '\\' && p[1]) p++;
                rc = base_buf_append_byte(b, (uint8_t)*p);
            }
            if (*p == '"') p++;
            continue;
        }
        if (*p == '\\' && p[1]) {
            rc = base_buf_append_byte(b, (uint8_t)p[1]);
            p += 2;
            continue;
        }
        if (pat_is(p, "YYYY")) num = f.year, width = 4, p += 4;
        else if (pat_is(p, "YYY")) num = f.year % 1000, width = 3, p += 3;
        else if (pat_is(p, "YY")) num = f.year % 100, width = 2, p += 2;
        else if (pat_is(p, "IYYY")) num = (iso_week(days, &iso_year), iso_year), width = 4, p += 4;
        else if (pat_is(p, "IW")) num = iso_week(days, &iso_year), width = 2, p += 2;
        else if (pat_is(p, "Y")) num = f.year % 10, width = 1, p += 1;
        else if (pat_is(p, "HH24")) num = f.hour, width = 2, p += 4;
        else if (pat_is(p, "HH12")) num = floor_mod(f.hour + 11, 12) + 1, width = 2, p += 4;
        else if (pat_is(p, "HH")) num = floor_mod(f.hour + 11, 12) + 1, width = 2, p += 2;
        else if (pat_is(p, "MI")) num = f.min, width = 2, p += 2;
        else if (pat_is(p, "SSSS")) num = f.hour * 3600 + f.min * 60 + f.sec, width = 1, p += 4;
        else if (pat_is(p, "SS")) num = f.sec, width = 2, p += 2;
        else if (pat_is(p, "MS")) num = f.us / 1000, width = 3, p += 2;
        else if (pat_is(p, "US")) num = f.us, width = 6, p += 2;
        else if (pat_is(p, "MM")) num = f.mon, width = 2, p += 2;
        else if (pat_is(p, "DDD")) num = days - days_from_civil(f.year, 1, 1) + 1, width = 3, p += 3;
        else if (pat_is(p, "DD")) num = f.mday, width = 2, p += 2;
        else if (pat_is(p, "ID")) num = floor_mod(days + 3, 7) + 1, width = 1, p += 2;
        else if (pat_is(p, "D") && !pat_is(p, "DAY") && !pat_is(p, "DY"))
            num = floor_mod(days + 4, 7) + 1, width = 1, p += 1;
        else if (pat_is(p, "WW")) num = (days - days_from_civil(f.year, 1, 1)) / 7 + 1, width = 2, p += 2;
        else if (pat_is(p, "Q")) num = (f.mon - 1) / 3 + 1, width = 1, p += 1;
        else if (pat_is(p, "CC")) num = (f.year + 99) / 100, width = 2, p += 2;
        else if (pat_is(p, "J")) num = days + 2440588, width = 1, p += 1;
        else matched = false;
        if (matched) { /* a negative field of an interval: "-01" */
            rc = base_buf_printf(b, "%s%0*lld", num < 0 ? "-" : "", fm ? 1 : width,
                                 (long long)(num < 0 ? -num : num));
            if (rc == 0 && (pat_is(p, "TH"))) {
                const char *o = ordinal(num < 0 ? -num : num);
                rc = base_buf_printf(b, "%s", isupper((unsigned char)p[1]) ? (o[0] == 's' ? "ST" : o[0] == 'n' ? "ND" : o[0] == 'r' ? "RD" : "TH") : o);
                p += 2;
            }
            continue;
        }
        if (interval && (pat_is(p, "MON") || pat_is(p, "DAY") || pat_is(p, "DY"))) {
            p += pat_is(p, "MONTH") ? 5 : pat_is(p, "DY") ? 2 : 3; /* no names for an interval */
        } else if (pat_is(p, "MONTH")) {
            rc = put_name(b, month_names[f.mon - 1], 9, p, fm);
            p += 5;
        } else if (pat_is(p, "MON")) {
            rc = put_name(b, month_names[f.mon - 1], 3, p, fm);
            p += 3;
        } else if (pat_is(p, "DAY")) {
            rc = put_name(b, day_names[floor_mod(days + 4, 7)], 9, p, fm);
            p += 3;
        } else if (pat_is(p, "DY")) {
            rc = put_name(b, day_names[floor_mod(days + 4, 7)], 3, p, fm);
            p += 2;
        } else if (pat_is(p, "AM") || pat_is(p, "PM")) {
            const char *w = f.hour < 12 ? "AM" : "PM";
            rc = base_buf_printf(b, "%s", islower((unsigned char)p[0]) ? (f.hour < 12 ? "am" : "pm") : w);
            p += 2;
        } else if (pat_is(p, "A.M.") || pat_is(p, "P.M.")) {
            bool lo = islower((unsigned char)p[0]);
            rc = base_buf_printf(b, "%s", f.hour < 12 ? (lo ? "a.m." : "A.M.") : (lo ? "p.m." : "P.M."));
            p += 4;
        } else if (pat_is(p, "TZ")) {
            char z[16] = "";
            if (v->kind == DT_TSTZ) {
                int32_t off = session_offset_s(s);
                if (off == 0) base_strlcpy(z, "UTC", sizeof(z));
                else format_offset(off, z, sizeof(z));
                if (islower((unsigned char)p[0]))
                    for (char *c = z; *c; c++)
                        *c = (char)tolower((unsigned char)*c);
            }
            rc = base_buf_printf(b, "%s", z);
            p += 2;
        } else if (pat_is(p, "OF")) {
            char z[16];
            format_offset(v->kind == DT_TSTZ ? session_offset_s(s) : 0, z, sizeof(z));
            rc = base_buf_printf(b, "%s", z);
            p += 2;
        } else {
            rc = base_buf_append_byte(b, (uint8_t)*p++);
        }
    }
    return rc;
}

static void fn_to_char(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    dt_value v;
    (void)argc;
    int rc = read_arg(s, argv[0], DT_NONE, &v);
    if (rc == 3 || sqlite3_value_type(argv[1]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    if (rc != 0) {
        input_error(ctx, rc, v.kind, arg_text(argv[0]));
        return;
    }
    if (!is_point(v.kind) && v.kind != DT_INTERVAL) {
        sqlv__session_error(s, "0A000", "to_char(%s, text) is not supported", kind_names[v.kind]);
        sqlite3_result_error(ctx, "to_char of this type is not supported", -1);
        return;
    }
    const char *fmt = arg_text(argv[1]);
    base_buf b = {0};
    if (strlen(fmt) > DT_TEXT_BYTES_MAX || to_char(s, &v, fmt, &b) != 0) {
        base_buf_free(&b);
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_text(ctx, b.data ? (const char *)b.data : "", (int)b.len, SQLITE_TRANSIENT);
    base_buf_free(&b);
}

/* A name (month or day) at *p, matched by its first three letters. */
static int match_name(const char **p, const char *const *names, int count) {
    for (int i = 0; i < count; i++) {
        size_t full = strlen(names[i]);
        if (strncasecmp(*p, names[i], full) == 0) {
            *p += full;
            return i;
        }
    }
    for (int i = 0; i < count; i++) {
        if (strncasecmp(*p, names[i], 3) == 0) {
            *p += 3;
            return i;
        }
    }
    return -1;
}

/* to_timestamp(text, fmt) / to_date: the text read by the patterns of
** to_char; a separator in the format skips one in the text. 0 ok, 1 bad. */
static int parse_by_format(const char *text, const char *fmt, dt_fields *f, bool *pm_set,
                           bool *pm) {
    const char *t = text;
    memset(f, 0, sizeof(*f));
    f->year = 1;
    f->mon = f->mday = 1;
    *pm_set = false;
    for (const char *p = fmt; *p;) {
        int width = 0;
        int64_t *dst64 = NULL;
        int *dst = NULL;
        int scale = 1;
        if (pat_is(p, "FM") || pat_is(p, "FX")) {
            p += 2;
            continue;
        }
        if (pat_is(p, "YYYY")) dst64 = &f->year, width = 4, p += 4;
        else if (pat_is(p, "HH24")) dst = &f->hour, width = 2, p += 4;
        else if (pat_is(p, "HH12")) dst = &f->hour, width = 2, p += 4;
        else if (pat_is(p, "HH")) dst = &f->hour, width = 2, p += 2;
        else if (pat_is(p, "MI")) dst = &f->min, width = 2, p += 2;
        else if (pat_is(p, "SS")) dst = &f->sec, width = 2, p += 2;
        else if (pat_is(p, "MS")) dst = &f->us, width = 3, scale = 1000, p += 2;
        else if (pat_is(p, "US")) dst = &f->us, width = 6, p += 2;
        else if (pat_is(p, "MM")) dst = &f->mon, width = 2, p += 2;
        else if (pat_is(p, "DD")) dst = &f->mday, width = 2, p += 2;
        else if (pat_is(p, "YY")) dst64 = &f->year, width = 2, p += 2;
        if (width > 0) {
            while (*t == ' ')
                t++;
            int64_t v = 0;
            int n = 0;
            for (; isdigit((unsigned char)*t) && (n < width || (dst64 && width == 4 && n < 9));
                 t++, n++)
                v = v * 10 + (*t - '0');
            if (n == 0) return 1;
            if (dst == &f->us && scale == 1000)
                for (int k = n; k < 3; k++)
                    v *= 10;
            if (dst == &f->us && scale == 1)
                for (int k = n; k < 6; k++)
                    v *= 10;
            if (dst64 && width == 2) v += v < 70 ? 2000 : 1900;
            if (dst64) *dst64 = v;
            else *dst = (int)(v * scale);
            continue;
        }
        if (pat_is(p, "MONTH") || pat_is(p, "MON")) {
            while (*t == ' ')
                t++;
            int m = match_name(&t, month_names, 12);
            if (m < 0) return 1;
            f->mon = m + 1;
            p += pat_is(p, "MONTH") ? 5 : 3;
            continue;
        }
        if (pat_is(p, "DAY") || pat_is(p, "DY")) {
            while (*t == ' ')
                t++;
            if (match_name(&t, day_names, 7) < 0) return 1;
            p += pat_is(p, "DAY") ? 3 : 2;
            continue;
        }
        if (pat_is(p, "AM") || pat_is(p, "PM")) {
            while (*t == ' ')
                t++;
            if (strncasecmp(t, "AM", 2) != 0 && strncasecmp(t, "PM", 2) != 0) return 1;
            *pm_set = true;
            *pm = toupper((unsigned char)t[0]) == 'P';
            t += 2;
            p += 2;
            continue;
        }
        /* a separator or literal: skips one non-alphanumeric character */
        if (*t && !isalnum((unsigned char)*t)) t++;
        else if (*t && toupper((unsigned char)*t) == toupper((unsigned char)*p)) t++;
        p++;
    }
    while (isspace((unsigned char)*t))
        t++;
    return *t == 0 ? 0 : 1;
}

static void to_point(sqlite3_context *ctx, sqlite3_value **argv, dt_kind kind) {
    sqlv_session *s = sqlite3_user_data(ctx);
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    const char *text = arg_text(argv[0]), *fmt = arg_text(argv[1]);
    dt_fields f;
    bool pm_set, pm;
    if (strlen(text) > DT_TEXT_BYTES_MAX || strlen(fmt) > DT_TEXT_BYTES_MAX ||
        parse_by_format(text, fmt, &f, &pm_set, &pm) != 0) {
        sqlv__session_error(s, "22007", "invalid value \"%.64s\" for \"%.32s\"", text, fmt);
        sqlite3_result_error(ctx, "invalid value for the format", -1);
        return;
    }
    if (pm_set) {
        if (f.hour < 1 || f.hour > 12) goto range;
        f.hour = f.hour % 12 + (pm ? 12 : 0);
    }
    if (f.year < 1 || f.year > DT_YEAR_MAX || f.mon < 1 || f.mon > 12 || f.mday < 1 ||
        f.mday > days_in_month(f.year, f.mon) || f.hour > 24 || f.min > 59 || f.sec > 60)
        goto range;
    dt_value v = {.kind = kind, .us = join(&f)};
    if (kind == DT_DATE) v.us = floor_div(v.us, US_PER_DAY) * US_PER_DAY;
    if (kind == DT_TSTZ) v.us -= (int64_t)session_offset_s(s) * US_PER_SEC;
    result_value(ctx, &v);
    return;
range:
    sqlv__session_error(s, "22008", "date/time field value out of range: \"%.64s\"", text);
    sqlite3_result_error(ctx, "date/time field value out of range", -1);
}

/* to_timestamp(epoch seconds) and to_timestamp(text, fmt): timestamptz. */
static void fn_to_timestamp(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    if (argc == 2) {
        to_point(ctx, argv, DT_TSTZ);
        return;
    }
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    double sec = sqlite3_value_double(argv[0]);
    if (sqlite3_value_type(argv[0]) == SQLITE_TEXT) {
        char *end = NULL;
        sec = strtod(arg_text(argv[0]), &end);
        if (end == arg_text(argv[0])) {
            sqlv__session_error(s, "22P02", "invalid input syntax for type double precision: \"%.64s\"",
                                arg_text(argv[0]));
            sqlite3_result_error(ctx, "invalid input syntax for type double precision", -1);
            return;
        }
    }
    if (!isfinite(sec) || fabs(sec) > 253402300799.0) {
        sqlv__session_error(s, "22008", "timestamp out of range: \"%g\"", sec);
        sqlite3_result_error(ctx, "timestamp out of range", -1);
        return;
    }
    dt_value v = {.kind = DT_TSTZ, .us = (int64_t)llround(sec * 1e6)};
    result_value(ctx, &v);
}

static void fn_to_date(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    to_point(ctx, argv, DT_DATE);
}

/* ---- constructors and clocks ------------------------------------------------------- */

static void make_point(sqlite3_context *ctx, int argc, sqlite3_value **argv, dt_kind kind) {
    sqlv_session *s = sqlite3_user_data(ctx);
    for (int i = 0; i < argc; i++)
        if (sqlite3_value_type(argv[i]) == SQLITE_NULL) {
            sqlite3_result_null(ctx);
            return;
        }
    dt_fields f = {0};
    f.year = sqlite3_value_int64(argv[0]);
    f.mon = sqlite3_value_int(argv[1]);
    f.mday = sqlite3_value_int(argv[2]);
    double sec = 0;
    if (argc == 6) {
        f.hour = sqlite3_value_int(argv[3]);
        f.min = sqlite3_value_int(argv[4]);
        sec = sqlite3_value_double(argv[5]);
    }
    if (f.year < 1 || f.year > DT_YEAR_MAX || f.mon < 1 || f.mon > 12 || f.mday < 1 ||
        f.mday > days_in_month(f.year, f.mon) || f.hour < 0 || f.hour > 23 || f.min < 0 ||
        f.min > 59 || !(sec >= 0 && sec < 60)) {
        sqlv__session_error(s, "22008", "date field value out of range: %lld-%02d-%02d",
                            (long long)f.year, f.mon, f.mday);
        sqlite3_result_error(ctx, "date field value out of range", -1);
        return;
    }
    int64_t sec_us = (int64_t)llround(sec * 1e6);
    f.sec = (int)(sec_us / US_PER_SEC);
    f.us = (int)(sec_us % US_PER_SEC);
    dt_value v = {.kind = kind, .us = join(&f)};
    if (kind == DT_TSTZ) v.us -= (int64_t)session_offset_s(s) * US_PER_SEC;
    result_value(ctx, &v);
}

static void fn_make_date(sqlite3_context *c, int n, sqlite3_value **a) { make_point(c, n, a, DT_DATE); }
static void fn_make_timestamp(sqlite3_context *c, int n, sqlite3_value **a) { make_point(c, n, a, DT_TS); }
static void fn_make_timestamptz(sqlite3_context *c, int n, sqlite3_value **a) { make_point(c, n, a, DT_TSTZ); }

/* now(), transaction_timestamp(), statement_timestamp(): the transaction's
** timestamp, printed at the session's TimeZone offset as any timestamptz. */
static void fn_now(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    dt_value v = {.kind = DT_TSTZ, .us = session_now_us(sqlite3_user_data(ctx))};
    result_value(ctx, &v);
}

/* clock_timestamp(): the node's clock now (changes within a statement). */
static void fn_clock_timestamp(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    dt_value v = {.kind = DT_TSTZ, .us = base_realtime_ns() / 1000};
    result_value(ctx, &v);
}

int sqlv__datetime_register(sqlv_session *s) {
    static const struct {
        const char *name;
        int nargs;
        bool deterministic; /* no clock, no session setting read */
        void (*fn)(sqlite3_context *, int, sqlite3_value **);
    } fns[] = {
        {"meridian_cast_date", 1, false, fn_cast_date},
        {"meridian_cast_time", 1, false, fn_cast_time},
        {"meridian_cast_timestamp", 1, false, fn_cast_ts},
        {"meridian_cast_timestamptz", 1, false, fn_cast_tstz},
        {"meridian_cast_interval", 1, true, fn_cast_interval},
        {"meridian_cast_time", 2, false, fn_cast_time},
        {"meridian_cast_timestamp", 2, false, fn_cast_ts},
        {"meridian_cast_timestamptz", 2, false, fn_cast_tstz},
        {"meridian_cast_interval", 2, true, fn_cast_interval},
        {"timezone", 3, false, fn_at_time_zone},
        {"timezone", 2, false, fn_timezone},
        {"meridian_dt_add", 3, false, fn_dt_add},
        {"meridian_dt_sub", 3, false, fn_dt_sub},
        {"meridian_dt_mul", 3, false, fn_dt_mul},
        {"meridian_dt_div", 3, false, fn_dt_div},
        {"extract", 2, false, fn_date_part},
        {"date_part", 2, false, fn_date_part},
        {"date_trunc", 2, false, fn_date_trunc},
        {"age", 1, false, fn_age},
        {"age", 2, false, fn_age},
        {"to_char", 2, false, fn_to_char},
        {"to_timestamp", 1, false, fn_to_timestamp},
        {"to_timestamp", 2, false, fn_to_timestamp},
        {"to_date", 2, false, fn_to_date},
        {"make_date", 3, true, fn_make_date},
        {"make_timestamp", 6, true, fn_make_timestamp},
        {"make_timestamptz", 6, false, fn_make_timestamptz},
        {"clock_timestamp", 0, false, fn_clock_timestamp},
        {"now", 0, false, fn_now},
        {"transaction_timestamp", 0, false, fn_now},
        {"statement_timestamp", 0, false, fn_now},
        {"justify_hours", 1, true, fn_justify_hours},
        {"justify_days", 1, true, fn_justify_days},
        {"justify_interval", 1, true, fn_justify_interval},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(fns); i++) {
        int flags = SQLITE_UTF8 | (fns[i].deterministic ? SQLITE_DETERMINISTIC : 0);
        if (sqlite3_create_function(s->db, fns[i].name, fns[i].nargs, flags, s, fns[i].fn, NULL,
                                    NULL) != SQLITE_OK)
            return -1;
    }
    return 0;
}
