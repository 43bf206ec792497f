/*
** PostgreSQL session settings (SET / RESET / SHOW / current_setting) and
** the PostgreSQL functions registered on each session's connection.
**
** Invariants:
**   - s->settings holds at most SQLV__SETTINGS_MAX overridden settings,
**     each with a canonical name from the defaults table or a custom
**     "prefix.name"; a setting not in it has its default.
**   - read-only settings (server_version...) never change.
**   - every value is NUL-terminated and shorter than its buffer (longer
**     values are refused with 22023, never truncated).
**   - a duration setting (statement_timeout...) holds a valid duration of
**     0 .. INT32_MAX ms in PostgreSQL's form ("0", "250ms", "2s", "5min",
**     "1h"); a bare number is milliseconds, as in PostgreSQL.
**   - a boolean setting (copy_from_atomic_enabled) holds "on" or "off".
*/
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cluster_settings.h"
#include "sql_int.h"
#include "sql_lex.h"

/* pg_sleep sleeps in slices this long, checking for a cancel between them. */
#define PG_SLEEP_SLICE_NS (10 * 1000 * 1000)

typedef struct setting_def {
    const char *name; /* canonical spelling: SHOW's column name */
    const char *value;
    bool read_only;
} setting_def;

static const setting_def defaults[] = {
    {"application_name", "", false},
    {"client_encoding", "UTF8", false},
    {"client_min_messages", "notice", false},
    /* Meridian (CockroachDB's name): on, COPY FROM outside a block is one
    ** transaction; off, it commits in batches (copy.c, decision 013) */
    {"copy_from_atomic_enabled", "off", false},
    /* Meridian: the last read-write commit's commit wait (sqlv__note_commit) */
    {"commit_wait", "0us (no read-write commit yet)", true},
    {"DateStyle", "ISO, MDY", false},
    {"default_transaction_isolation", "serializable", false},
    {"default_transaction_read_only", "off", false},
    {"extra_float_digits", "1", false},
    {"idle_in_transaction_session_timeout", "0", false},
    {"idle_session_timeout", "0", false},
    {"integer_datetimes", "on", true},
    {"IntervalStyle", "postgres", false},
    {"is_superuser", "on", true},
    {"lock_timeout", "0", false},
    {"max_identifier_length", "63", true},
    {"search_path", "\"$user\", public", false},
    {"server_encoding", "UTF8", true},
    {"server_version", "15.0", true},
    {"server_version_num", "150000", true},
    /* Meridian: SQLite's memory for this session (memory.c); 0 none */
    {"session_memory_limit", SQLV__SESSION_MEMORY_LIMIT_DEFAULT, false},
    {"standard_conforming_strings", "on", false},
    {"statement_timeout", "0", false},
    {"synchronous_commit", "on", false},
    {"TimeZone", "UTC", false},
    {"transaction_isolation", "serializable", false},
    {"transaction_read_only", "off", false},
    /* Meridian: stale reads of this node (docs/txn.md section 8) */
    {"follower_reads", "", true},
};

/* Settings whose value is a duration (validated, kept canonical). */
static bool is_duration(const char *canonical) {
    return strcmp(canonical, "statement_timeout") == 0 ||
           strcmp(canonical, "idle_in_transaction_session_timeout") == 0 ||
           strcmp(canonical, "idle_session_timeout") == 0 ||
           strcmp(canonical, "lock_timeout") == 0;
}

/* Settings whose value is a byte size (kept as sqlv_setting_format
** writes it, "256 MiB"). */
static bool is_bytes(const char *canonical) {
    return strcmp(canonical, "session_memory_limit") == 0;
}

/* Settings whose value is a boolean (kept as "on" or "off"). */
static bool is_boolean(const char *canonical) {
    return strcmp(canonical, "copy_from_atomic_enabled") == 0;
}

/* PostgreSQL's spellings of a boolean (whole words only). 1 on, 0 off,
** -1 neither. */
static int boolean_value(const char *lv) {
    static const char *const yes[] = {"on", "true", "yes", "1", "t", "y"};
    static const char *const no[] = {"off", "false", "no", "0", "f", "n"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(yes); i++) {
        if (strcmp(lv, yes[i]) == 0) return 1;
        if (strcmp(lv, no[i]) == 0) return 0;
    }
    return -1;
}

/* PostgreSQL's spelling of ms: the largest unit that divides it. */
static void format_duration_ms(int64_t ms, char *out, size_t size) {
    static const struct {
        const char *unit;
        int64_t factor;
    } units[] = {{"h", 3600000}, {"min", 60000}, {"s", 1000}};
    for (size_t i = 0; ms != 0 && i < BASE_ARRAY_LEN(units); i++) {
        if (ms % units[i].factor == 0) {
            snprintf(out, size, "%lld%s", (long long)(ms / units[i].factor), units[i].unit);
            return;
        }
    }
    snprintf(out, size, ms == 0 ? "0" : "%lldms", (long long)ms);
}

static const setting_def *find_def(const char *name) {
    for (size_t i = 0; i < BASE_ARRAY_LEN(defaults); i++)
        if (strcasecmp(defaults[i].name, name) == 0) return &defaults[i];
    return NULL;
}

static int find_override(const sqlv_session *s, const char *name) {
    for (int i = 0; i < s->nsettings; i++)
        if (strcasecmp(s->settings[i].name, name) == 0) return i;
    return -1;
}

const char *sqlv__setting_get(const sqlv_session *s, const char *name, const char **canonical) {
    const setting_def *d = find_def(name);
    int i = find_override(s, name);
    if (i >= 0) {
        if (canonical) *canonical = d ? d->name : s->settings[i].name;
        return s->settings[i].value;
    }
    if (d == NULL) return NULL;
    if (canonical) *canonical = d->name;
    if (strcmp(d->name, "commit_wait") == 0 && s->commit_wait[0] != '\0') return s->commit_wait;
    if (strcmp(d->name, "follower_reads") == 0) {
        /* the node's counters now: valid until this thread's next call */
        static _Thread_local char text[256];
        txn_db_stats st;
        memset(&st, 0, sizeof(st));
        txn_db_get_stats(s->engine->db, &st);
        snprintf(text, sizeof(text),
                 "served here as a follower: %llu; stale reads sent: %llu (answered by this "
                 "node's replica: %llu, by the leaseholder after a refusal: %llu); AS OF "
                 "SYSTEM TIME transactions: %llu",
                 (unsigned long long)st.follower_reads_served, (unsigned long long)st.stale_reads,
                 (unsigned long long)st.stale_reads_local,
                 (unsigned long long)st.stale_reads_fallback, (unsigned long long)st.stale_txns);
        return text;
    }
    if (strcmp(d->name, "transaction_read_only") == 0 && s->status == 'T' &&
        !s->implicit_block && (s->block_read_only || !hlc_is_zero(s->block_as_of)))
        return "on";
    return d->value;
}

/* "<wait>us (epsilon <e>us)": whole microseconds, rounded up, so a wait
** that happened never shows as 0. docs/clocks.md, section 5. */
void sqlv__note_commit(sqlv_session *s, const txn_commit_info *info) {
    if (s->explain != NULL) sqlv__explain_note_commit(s, info); /* EXPLAIN ANALYZE */
    if (info == NULL || !info->wrote) return;
    snprintf(s->commit_wait, sizeof(s->commit_wait), "%lldus (epsilon %lldus%s%s)",
             (long long)((info->wait_ns + 999) / 1000), (long long)((info->epsilon_ns + 999) / 1000),
             info->epsilon_unbounded ? ", unbounded: the max offset" : "",
             info->wait_capped ? ", cut at the limit" : "");
}

/* A duration setting's value in ms (validated by SET; 0 when unreadable). */
static uint32_t duration_setting_ms(const sqlv_session *s, const char *name) {
    int i = find_override(s, name);
    int64_t ms = 0;
    char why[160];
    if (i < 0) return 0; /* every default is 0 */
    if (sqlv_setting_parse_type(SQLV_SETTING_DURATION, s->settings[i].value, &ms, why,
                                sizeof(why)) != 0 ||
        ms < 0 || ms > INT32_MAX)
        return 0;
    return (uint32_t)ms;
}

uint32_t sqlv_session_statement_timeout_ms(const sqlv_session *s) {
    return duration_setting_ms(s, "statement_timeout");
}

uint32_t sqlv_session_idle_in_transaction_timeout_ms(const sqlv_session *s) {
    return duration_setting_ms(s, "idle_in_transaction_session_timeout");
}

int64_t sqlv__session_memory_limit_bytes(const sqlv_session *s) {
    const char *v = sqlv__setting_get(s, "session_memory_limit", NULL);
    int64_t bytes = 0;
    char why[160];
    if (v == NULL || sqlv_setting_parse_type(SQLV_SETTING_BYTES, v, &bytes, why, sizeof(why)) != 0)
        return 0; /* validated by SET: unreachable */
    return bytes;
}

uint32_t sqlv_session_idle_session_timeout_ms(const sqlv_session *s) {
    return duration_setting_ms(s, "idle_session_timeout");
}

const char *sqlv_session_setting(const sqlv_session *s, const char *name) {
    return sqlv__setting_get(s, name, NULL);
}

bool sqlv__copy_from_atomic(const sqlv_session *s) {
    int i = find_override(s, "copy_from_atomic_enabled");
    return i >= 0 && strcmp(s->settings[i].value, "on") == 0; /* canonical (SET) */
}

bool sqlv__setting_at(const sqlv_session *s, int i, const char **name, const char **value) {
    if (i < 0 || (size_t)i >= BASE_ARRAY_LEN(defaults)) return false;
    *value = sqlv__setting_get(s, defaults[i].name, name);
    return true;
}

static void lower(char *d, const char *s, size_t size) {
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++)
        d[i] = (char)tolower((unsigned char)s[i]);
    d[i] = 0;
}

int sqlv__setting_canonical(const char *name, const char *value, char *cname, size_t cname_size,
                            char *cvalue, size_t cvalue_size, char state[6], char *msg,
                            size_t size) {
    /* a scratch session: SET's own checks and spellings, nothing else */
    sqlv_session *scratch = base_calloc(1, sizeof(*scratch)); /* owner: this function */
    if (scratch == NULL) {
        base_strlcpy(state, "53200", 6);
        snprintf(msg, size, "out of memory");
        return 1;
    }
    int rc = sqlv__setting_set(scratch, name, value, state, msg, size);
    const char *canonical = NULL;
    if (rc == 0 && value == NULL) { /* RESET: the name is known (or custom) */
        if (sqlv__setting_get(scratch, name, &canonical) != NULL && canonical != NULL)
            base_strlcpy(cname, canonical, cname_size);
        else
            lower(cname, name, cname_size);
        if (cvalue_size > 0) cvalue[0] = '\0';
    } else if (rc == 0 && scratch->nsettings == 1) {
        base_strlcpy(cname, scratch->settings[0].name, cname_size);
        base_strlcpy(cvalue, scratch->settings[0].value, cvalue_size);
    } else if (rc == 0) {
        rc = 1; /* unreachable: one SET makes one override */
        base_strlcpy(state, "XX000", 6);
        snprintf(msg, size, "cannot check the setting");
    }
    base_free(scratch);
    return rc;
}

int sqlv_session_set(sqlv_session *s, const char *name, const char *value, char state[6],
                     char *msg, size_t size) {
    if (value == NULL) value = "";
    return sqlv__setting_set(s, name, value, state, msg, size);
}

int sqlv__setting_set(sqlv_session *s, const char *name, const char *value, char state[6],
                      char *msg, size_t size) {
    const setting_def *d = find_def(name);
    char v[256], lv[256];
    if (d == NULL && strchr(name, '.') == NULL) {
        base_strlcpy(state, "42704", 6);
        snprintf(msg, size, "unrecognized configuration parameter \"%.64s\"", name);
        return 1;
    }
    if (d && d->read_only) {
        base_strlcpy(state, "55P02", 6);
        snprintf(msg, size, "parameter \"%s\" cannot be changed", d->name);
        return 1;
    }
    if (strlen(name) >= sizeof(s->settings[0].name) ||
        (value && strlen(value) >= sizeof(s->settings[0].value))) {
        base_strlcpy(state, "22023", 6);
        snprintf(msg, size, "value for parameter \"%.64s\" is too long", name);
        return 1;
    }
    int i = find_override(s, name);
    if (value == NULL) { /* RESET */
        if (i >= 0) {
            s->settings[i] = s->settings[s->nsettings - 1];
            s->nsettings--;
        }
        if (d && is_bytes(d->name)) sqlv__mem_set_limit(s->mem, sqlv__session_memory_limit_bytes(s));
        return 0;
    }
    base_strlcpy(v, value, sizeof(v));
    lower(lv, value, sizeof(lv));
    if (d && strcmp(d->name, "client_encoding") == 0) {
        if (strcmp(lv, "utf8") != 0 && strcmp(lv, "utf-8") != 0 && strcmp(lv, "unicode") != 0) {
            base_strlcpy(state, "0A000", 6);
            snprintf(msg, size, "client_encoding \"%.64s\" is not supported: Meridian speaks UTF8",
                     value);
            return 1;
        }
        base_strlcpy(v, "UTF8", sizeof(v));
    }
    if (d && (strcmp(d->name, "default_transaction_isolation") == 0 ||
              strcmp(d->name, "transaction_isolation") == 0)) {
        if (strcmp(lv, "serializable") != 0 && strcmp(lv, "repeatable read") != 0 &&
            strcmp(lv, "read committed") != 0 && strcmp(lv, "read uncommitted") != 0) {
            base_strlcpy(state, "22023", 6);
            snprintf(msg, size, "invalid value for parameter \"%s\": \"%.64s\"", d->name, value);
            return 1;
        }
        base_strlcpy(v, "serializable", sizeof(v)); /* always serializable */
    }
    if (d && is_duration(d->name)) {
        int64_t ms = 0;
        char why[160];
        if (sqlv_setting_parse_type(SQLV_SETTING_DURATION, value, &ms, why, sizeof(why)) != 0 ||
            ms < 0 || ms > INT32_MAX) {
            base_strlcpy(state, "22023", 6);
            snprintf(msg, size,
                     "invalid value for parameter \"%s\": \"%.64s\" (want a duration of at most "
                     "%d ms such as '2s', '500ms' or 2000; 0 turns it off)",
                     d->name, value, INT32_MAX);
            return 1;
        }
        format_duration_ms(ms, v, sizeof(v));
    }
    if (d && is_bytes(d->name)) {
        int64_t bytes = 0;
        char why[160];
        if (sqlv_setting_parse_type(SQLV_SETTING_BYTES, value, &bytes, why, sizeof(why)) != 0 ||
            (bytes != 0 && bytes < SQLV__SESSION_MEMORY_LIMIT_MIN_BYTES)) {
            base_strlcpy(state, "22023", 6);
            snprintf(msg, size,
                     "invalid value for parameter \"%s\": \"%.64s\" (want a byte size of at "
                     "least 4 MiB such as '64MiB' or '1GiB'; 0 turns it off)",
                     d->name, value);
            return 1;
        }
        if (bytes == 0)
            base_strlcpy(v, "0", sizeof(v)); /* off, as SHOW says it */
        else
            sqlv_setting_format(SQLV_SETTING_BYTES, bytes, v, sizeof(v));
    }
    if (d && is_boolean(d->name)) {
        int on = boolean_value(lv);
        if (on < 0) {
            base_strlcpy(state, "22023", 6);
            snprintf(msg, size, "parameter \"%s\" requires a Boolean value", d->name);
            return 1;
        }
        base_strlcpy(v, on ? "on" : "off", sizeof(v));
    }
    if (i < 0) {
        if (s->nsettings >= SQLV__SETTINGS_MAX) {
            base_strlcpy(state, "54000", 6);
            snprintf(msg, size, "too many settings in one session");
            return 1;
        }
        i = s->nsettings++;
        base_strlcpy(s->settings[i].name, d ? d->name : name, sizeof(s->settings[i].name));
        if (d == NULL) lower(s->settings[i].name, name, sizeof(s->settings[i].name));
    }
    base_strlcpy(s->settings[i].value, v, sizeof(s->settings[i].value));
    if (d && is_bytes(d->name)) sqlv__mem_set_limit(s->mem, sqlv__session_memory_limit_bytes(s));
    return 0;
}

int sqlv__parse_transaction_modes(const char *p, const char *end, char *msg, size_t size) {
    return sqlv__parse_transaction_modes_ex(p, end, NULL, msg, size);
}

int sqlv__parse_transaction_modes_ex(const char *p, const char *end, sqlv__txn_modes *modes,
                                     char *msg, size_t size) {
    sqlv__txn_modes scratch;
    if (modes == NULL) modes = &scratch;
    memset(modes, 0, sizeof(*modes));
    for (int guard = 0; guard < 64; guard++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) return 0;
        if (guard > 0 && sqlv__tok_punct(&t, ',')) t = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&t, "ISOLATION")) {
            sqlv__token l = sqlv__lex_next(&p, end);
            sqlv__token a = sqlv__lex_next(&p, end);
            if (!sqlv__tok_is(&l, "LEVEL")) goto syntax;
            if (sqlv__tok_is(&a, "SERIALIZABLE")) continue;
            sqlv__token b = sqlv__lex_next(&p, end);
            if (sqlv__tok_is(&a, "REPEATABLE") && sqlv__tok_is(&b, "READ")) continue;
            if (sqlv__tok_is(&a, "READ") &&
                (sqlv__tok_is(&b, "COMMITTED") || sqlv__tok_is(&b, "UNCOMMITTED")))
                continue;
            t = b;
            goto syntax;
        }
        if (sqlv__tok_is(&t, "READ")) {
            sqlv__token a = sqlv__lex_next(&p, end);
            if (sqlv__tok_is(&a, "WRITE") || sqlv__tok_is(&a, "ONLY")) {
                modes->read_only = sqlv__tok_is(&a, "ONLY");
                modes->read_write = !modes->read_only;
                continue;
            }
            t = a;
            goto syntax;
        }
        if (sqlv__tok_is(&t, "AS")) {
            /* AS OF SYSTEM TIME <expr> (CockroachDB; docs/sql.md "Stale reads") */
            sqlv__token o = sqlv__lex_next(&p, end), sy = sqlv__lex_next(&p, end),
                        ti = sqlv__lex_next(&p, end);
            char state[6];
            if (!sqlv__tok_is(&o, "OF") || !sqlv__tok_is(&sy, "SYSTEM") ||
                !sqlv__tok_is(&ti, "TIME")) {
                t = !sqlv__tok_is(&o, "OF") ? o : !sqlv__tok_is(&sy, "SYSTEM") ? sy : ti;
                goto syntax;
            }
            if (sqlv__as_of_expr(&p, end, modes->expr, sizeof(modes->expr), state, msg, size) != 0)
                return 1;
            modes->as_of = true;
            continue;
        }
        if (sqlv__tok_is(&t, "NOT")) t = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&t, "DEFERRABLE")) continue;
    syntax:
        if (t.kind == SQLV__TOK_END)
            snprintf(msg, size, "syntax error at end of input");
        else
            snprintf(msg, size, "syntax error at or near \"%.*s\"", (int)BASE_MIN(t.len, 60),
                     t.start);
        return 1;
    }
    snprintf(msg, size, "too many transaction modes");
    return 1;
}

/* ---- functions ------------------------------------------------------------------- */

/* follower_read_timestamp(): now - 4.8 s, as now() prints it (asof.c). */
static void fn_follower_read_timestamp(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    char out[64];
    struct tm tm;
    (void)argc;
    (void)argv;
    int64_t ns = txn_db_now(s->engine->db).wall_ns - SQLV__FOLLOWER_READ_LAG_NS;
    time_t sec = (time_t)(ns / 1000000000);
    long us = (long)((ns % 1000000000) / 1000);
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, sizeof(out), "%Y-%m-%d %H:%M:%S", &tm);
    n += (size_t)snprintf(out + n, sizeof(out) - n, ".%06ld", us);
    snprintf(out + n, sizeof(out) - n, "+00");
    sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

static void fn_current_setting(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    const char *name = (const char *)sqlite3_value_text(argv[0]);
    bool missing_ok = argc > 1 && sqlite3_value_int(argv[1]) != 0;
    if (name == NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    const char *v = sqlv__setting_get(s, name, NULL);
    if (v == NULL) {
        if (missing_ok) {
            sqlite3_result_null(ctx);
            return;
        }
        sqlv__session_error(s, "42704", "unrecognized configuration parameter \"%.64s\"", name);
        sqlite3_result_error(ctx, "unrecognized configuration parameter", -1);
        return;
    }
    sqlite3_result_text(ctx, v, -1, SQLITE_TRANSIENT);
}

static void fn_current_user(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    (void)argc;
    (void)argv;
    sqlite3_result_text(ctx, s->user, -1, SQLITE_TRANSIENT);
}

static void fn_backend_pid(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    (void)argc;
    (void)argv;
    sqlite3_result_int(ctx, s->backend_pid);
}

/* x::boolean with PostgreSQL's spellings. */
static void fn_bool(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    (void)argc;
    switch (sqlite3_value_type(argv[0])) {
    case SQLITE_NULL: sqlite3_result_null(ctx); return;
    case SQLITE_INTEGER: sqlite3_result_int(ctx, sqlite3_value_int64(argv[0]) != 0); return;
    case SQLITE_FLOAT: sqlite3_result_int(ctx, sqlite3_value_double(argv[0]) != 0); return;
    default: break;
    }
    const char *t = (const char *)sqlite3_value_text(argv[0]);
    char w[16];
    size_t n = 0;
    if (t == NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    while (isspace((unsigned char)*t))
        t++;
    for (; t[n] && !isspace((unsigned char)t[n]) && n + 1 < sizeof(w); n++)
        w[n] = (char)tolower((unsigned char)t[n]);
    w[n] = 0;
    static const char *const yes[] = {"t", "true", "y", "yes", "on", "1"};
    static const char *const no[] = {"f", "false", "n", "no", "off", "0"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(yes); i++) {
        if (strcmp(w, yes[i]) == 0) {
            sqlite3_result_int(ctx, 1);
            return;
        }
        if (strcmp(w, no[i]) == 0) {
            sqlite3_result_int(ctx, 0);
            return;
        }
    }
    sqlv__session_error(s, "22P02", "invalid input syntax for type boolean: \"%.64s\"", t);
    sqlite3_result_error(ctx, "invalid input syntax for type boolean", -1);
}

static int fold(int c) { return c < 0x80 ? tolower(c) : c; }

/* Case-insensitive LIKE (ASCII folding) with PostgreSQL's default escape
** '\': % any run, _ one UTF-8 character. Iterative, backtracking to the
** last % only: O(len(p) * len(v)). */
static bool ilike(const unsigned char *p, const unsigned char *v) {
    const unsigned char *star_p = NULL, *star_v = NULL;
    for (;;) {
        if (*p == '%') {
            while (*p == '%')
                p++;
            if (*p == 0) return true;
            star_p = p;
            star_v = v;
            continue;
        }
        if (*v == 0) return *p == 0;
        if (*p == '_') {
            p++;
            v++;
            while ((*v & 0xC0) == 0x80)
                v++;
            continue;
        }
        const unsigned char *pc = p;
        if (*pc == '\\' && pc[1]) pc++;
        if (*pc != 0 && fold(*pc) == fold(*v)) {
            p = pc + 1;
            v++;
            continue;
        }
        if (star_p == NULL) return false;
        p = star_p;
        v = ++star_v;
        while ((*v & 0xC0) == 0x80)
            v = ++star_v;
    }
}

/* X MATCH Y calls match(Y, X): the rewriter turns ILIKE into MATCH. */
static void fn_match(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    const unsigned char *pat = sqlite3_value_text(argv[0]);
    const unsigned char *val = sqlite3_value_text(argv[1]);
    if (pat == NULL || val == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_int(ctx, ilike(pat, val));
}

/* pg_sleep(seconds): sleeps in slices, checking the session's cancel flag
** (CancelRequest, the gateway's statement_timeout, a client gone) between
** them, so it never holds a session longer than a cancel takes. Returns
** NULL (PostgreSQL's void). */
static void fn_pg_sleep(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    double secs = sqlite3_value_double(argv[0]);
    if (!(secs > 0)) secs = 0; /* negative, NaN: no sleep, as PostgreSQL */
    if (secs > 1e9) secs = 1e9; /* about 31 years: only a cancel ends it */
    int64_t end = base_monotonic_ns() + (int64_t)(secs * 1e9);
    for (;;) { /* each turn sleeps at most one slice, then checks */
        if (atomic_load(&s->cancel)) {
            sqlv__session_error(s, "57014", "canceling statement due to user request");
            sqlite3_result_error_code(ctx, SQLITE_INTERRUPT);
            return;
        }
        int64_t left = end - base_monotonic_ns();
        if (left <= 0) break;
        int64_t ns = left < PG_SLEEP_SLICE_NS ? left : PG_SLEEP_SLICE_NS;
        struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
        nanosleep(&ts, NULL);
    }
    sqlite3_result_null(ctx);
}

/* position(needle, haystack) (the dialect rewrites position(x IN y)): the
** 1-based character index of the first match, 0 when none, NULL on NULL. */
static void fn_position(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    const char *needle = (const char *)sqlite3_value_text(argv[0]);
    const char *hay = (const char *)sqlite3_value_text(argv[1]);
    if (needle == NULL || hay == NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    const char *at = strstr(hay, needle);
    if (at == NULL) {
        sqlite3_result_int64(ctx, 0);
        return;
    }
    int64_t chars = 1;
    for (const char *p = hay; p < at; p++)
        if (((unsigned char)*p & 0xC0) != 0x80) chars++; /* UTF-8 lead bytes */
    sqlite3_result_int64(ctx, chars);
}

/* gen_random_uuid(): a version 4 UUID as text, from SQLite's PRNG (seeded
** from the OS; uniqueness, not secrecy, is what callers need). */
static void fn_gen_random_uuid(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    unsigned char u[16];
    sqlite3_randomness(sizeof u, u);
    u[6] = (unsigned char)((u[6] & 0x0F) | 0x40); /* version 4 */
    u[8] = (unsigned char)((u[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    char out[37];
    size_t k = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[k++] = '-';
        k += (size_t)snprintf(out + k, sizeof out - k, "%02x", u[i]);
    }
    sqlite3_result_text(ctx, out, (int)k, SQLITE_TRANSIENT);
}

int sqlv__register_pg_functions(sqlv_session *s) {
    static _Atomic int32_t next_pid = 10000;
    s->backend_pid = atomic_fetch_add(&next_pid, 1);
    struct {
        const char *name;
        int nargs;
        void (*fn)(sqlite3_context *, int, sqlite3_value **);
    } fns[] = {
        {"current_setting", 1, fn_current_setting},
        {"current_setting", 2, fn_current_setting},
        {"current_user", 0, fn_current_user},
        {"session_user", 0, fn_current_user},
        {"pg_backend_pid", 0, fn_backend_pid},
        {"follower_read_timestamp", 0, fn_follower_read_timestamp},
        {"meridian_bool", 1, fn_bool},
        {"match", 2, fn_match},
        {"pg_sleep", 1, fn_pg_sleep},
        {"position", 2, fn_position},
        {"gen_random_uuid", 0, fn_gen_random_uuid},
    };
    if (sqlv__series_register(s) != 0) return -1;
    for (size_t i = 0; i < BASE_ARRAY_LEN(fns); i++)
        if (sqlite3_create_function(s->db, fns[i].name, fns[i].nargs, SQLITE_UTF8, s, fns[i].fn,
                                    NULL, NULL) != SQLITE_OK)
            return -1;
    return 0;
}
