/*
** sql/cluster_settings.c: cluster settings (cluster_settings.h; docs/
** operations.md "Cluster settings"): the table, the text forms, the codec,
** the KV read and write, and the statements SET / RESET CLUSTER SETTING,
** SHOW CLUSTER SETTING name and SHOW [ALL] CLUSTER SETTINGS.
**
** Invariants:
**   - the one table below is the only list of settings; ids index it;
**   - a value reaches the key space only through sqlv_setting_parse (type
**     and bounds), and a value read back is checked the same way;
**   - SET / RESET CLUSTER SETTING run in a transaction of their own,
**     outside transaction blocks (25001): a setting is not transactional
**     data, and a node may act on it at once;
**   - every parse is bounded by its text (SQLV_SETTING_TEXT_MAX; a text
**     setting by its own maximum, the def's max) and refuses overflow
**     instead of wrapping;
**   - a text setting's stored text always passed its parser
**     (sqlv_setting_check_text), and is checked again when read back;
**   - only root and members of admin set, reset or read settings (42501,
**     sqlv__priv_require_admin): the host-based rules are one of them.
*/
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cluster_settings_int.h"
#include "sql_lex.h"

#define MOD "sql"
enum { STMT_OK = 0, STMT_FAILED = 1 }; /* session.c's */
#define VALUE_VERSION 1
#define VALUE_LEN 10               /* u8 version | u8 type | i64 */
#define SET_ATTEMPTS_MAX 5         /* a SET retried on 40001 */
#define KIB 1024LL
#define MIB (1024LL * KIB)
#define GIB (1024LL * MIB)

static const sqlv_setting_def defs[SQLV_SETTINGS_COUNT] = {
    [SQLV_SETTING_RANGE_MAX_BYTES] =
        {"range_max_bytes", SQLV_SETTING_BYTES, 64 * MIB, 64 * KIB, 64 * GIB,
         "a range larger than this splits at a key near its middle (the floor, 64 KiB, is "
         "for tests)"},
    [SQLV_SETTING_RANGE_MIN_BYTES] =
        {"range_min_bytes", SQLV_SETTING_BYTES, 16 * MIB, 0, 64 * GIB,
         "adjacent ranges both smaller than this, cold and not split by hand merge (the merge "
         "queue)"},
    [SQLV_SETTING_SPLIT_QPS_THRESHOLD] =
        {"split_qps_threshold", SQLV_SETTING_INT, 2500, 1, 1000000000,
         "a range serving more requests per second than this for 10 s splits by load, at a key "
         "that divides it (never at a single hot row)"},
    [SQLV_SETTING_REBALANCE_ENABLED] =
        {"rebalance_enabled", SQLV_SETTING_BOOL, 1, 0, 1,
         "one node at a time (the rebalancer) moves replicas and leases so that live nodes "
         "hold a fair share of each"},
    [SQLV_SETTING_SPLIT_ENABLED] =
        {"split_enabled", SQLV_SETTING_BOOL, 1, 0, 1,
         "each node's split queue splits the ranges it holds the lease of that are larger "
         "than range_max_bytes"},
    [SQLV_SETTING_MERGE_ENABLED] =
        {"merge_enabled", SQLV_SETTING_BOOL, 1, 0, 1,
         "each node's merge queue merges the ranges it holds the lease of with their right-hand "
         "neighbours when both are smaller than range_min_bytes and cold"},
    [SQLV_SETTING_REBALANCE_COOLDOWN] =
        {"rebalance_cooldown", SQLV_SETTING_DURATION, 60 * 1000, 0, 24 * 3600 * 1000LL,
         "a range the rebalancer moved (or failed to move) is not moved by it again for this "
         "long"},
    [SQLV_SETTING_REBALANCE_LEASES] =
        {"rebalance_leases", SQLV_SETTING_BOOL, 1, 0, 1,
         "the rebalancer also moves leases toward the nodes holding the fewest"},
    [SQLV_SETTING_HBA_CONF] =
        {"server.host_based_authentication.configuration", SQLV_SETTING_TEXT, 0, 0,
         SEC_HBA_TEXT_BYTES_MAX,
         "host-based authentication rules for SQL logins, a subset of pg_hba.conf (empty: a "
         "client certificate, else the password); root's client certificate always logs in"},
    [SQLV_SETTING_GC_TTL_SECONDS] =
        {"gc_ttl_seconds", SQLV_SETTING_INT, 14400, 1, 10 * 365 * 24 * 3600LL,
         "an MVCC version overwritten (or deleted) longer ago than this many seconds is "
         "garbage collected; reads and AS OF SYSTEM TIME below the GC threshold fail"},
};

const sqlv_setting_def *sqlv_setting_def_get(int id) {
    if (id < 0 || id >= SQLV_SETTINGS_COUNT) return NULL;
    return &defs[id];
}

int sqlv_setting_lookup(const char *name) {
    for (int i = 0; i < SQLV_SETTINGS_COUNT; i++)
        if (strcasecmp(defs[i].name, name) == 0) return i;
    return -1;
}

const char *sqlv_setting_type_name(sqlv_setting_type type) {
    switch (type) {
    case SQLV_SETTING_BYTES: return "bytes";
    case SQLV_SETTING_INT: return "int";
    case SQLV_SETTING_DURATION: return "duration";
    case SQLV_SETTING_BOOL: return "bool";
    case SQLV_SETTING_TEXT: return "string";
    }
    return "unknown";
}

/* ---- text -> value ------------------------------------------------------------------ */

typedef struct unit {
    const char *name;
    int64_t factor;
} unit;

static const unit byte_units[] = {
    {"b", 1},          {"kib", KIB},    {"mib", MIB},    {"gib", GIB},
    {"tib", 1024 * GIB}, {"kb", 1000},  {"mb", 1000000}, {"gb", 1000000000},
    {"tb", 1000000000000LL},
};
static const unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"min", 60000}, {"h", 3600000},
};

static const char *skip_space(const char *p) {
    while (*p != '\0' && isspace((unsigned char)*p)) p++;
    return p;
}

/* A number "123" or "1.25" times factor, into *out (truncated toward
** zero); *pp advanced past it. 0, or -1 when there is no digit or it
** overflows. */
static int scaled_number(const char **pp, int64_t factor, int64_t *out) {
    const char *p = *pp;
    int64_t whole = 0;
    bool digits = false;
    for (; isdigit((unsigned char)*p); p++, digits = true) {
        if (whole > (INT64_MAX - (*p - '0')) / 10) return -1;
        whole = whole * 10 + (*p - '0');
    }
    int64_t frac = 0, scale = 1;
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++, digits = true) {
            if (scale < 1000000000) { /* nine decimals are plenty */
                frac = frac * 10 + (*p - '0');
                scale *= 10;
            }
        }
    }
    if (!digits || whole > INT64_MAX / factor) return -1;
    int64_t v = whole * factor;
    /* frac / scale * factor without overflow: factor <= 2^40, frac < 10^9 */
    __int128 part = (__int128)frac * factor / scale;
    if (part > INT64_MAX - v) return -1;
    *out = v + (int64_t)part;
    *pp = p;
    return 0;
}

/* The unit at *pp (letters, case-insensitive) in units; "" matches the
** unit with factor `bare`. */
static int take_unit(const char **pp, const unit *units, size_t n, int64_t bare,
                     int64_t *factor) {
    const char *p = *pp;
    char word[8];
    size_t len = 0;
    while (isalpha((unsigned char)p[len])) {
        if (len + 1 >= sizeof word) return -1;
        word[len] = (char)tolower((unsigned char)p[len]);
        len++;
    }
    word[len] = '\0';
    if (len == 0) {
        *factor = bare;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(units[i].name, word) == 0) {
            *factor = units[i].factor;
            *pp = p + len;
            return 0;
        }
    }
    return -1;
}

/* "<number>[ ]<unit>": the unit decides the factor, so the number is read
** after it is known. */
static int number_with_unit(const char **pp, const unit *units, size_t n, int64_t bare,
                            int64_t *out) {
    const char *p = *pp, *num = p;
    while (isdigit((unsigned char)*p) || *p == '.') p++;
    if (p == num) return -1;
    const char *u = skip_space(p);
    int64_t factor = 1;
    if (take_unit(&u, units, n, bare, &factor) != 0) return -1;
    const char *q = num;
    if (scaled_number(&q, factor, out) != 0 || q != p) return -1;
    *pp = u;
    return 0;
}

static int parse_bytes(const char *text, int64_t *out) {
    const char *p = skip_space(text);
    if (number_with_unit(&p, byte_units, BASE_ARRAY_LEN(byte_units), 1, out) != 0) return -1;
    return *skip_space(p) == '\0' ? 0 : -1;
}

/* A sequence "1m30s", "1h 5m", "250ms", "1.5s"; a bare number is ms. */
static int parse_duration(const char *text, int64_t *out) {
    const char *p = skip_space(text);
    int64_t total = 0;
    int parts = 0;
    while (*p != '\0') {
        int64_t v = 0;
        if (parts > 0 && !isdigit((unsigned char)*p)) return -1;
        if (number_with_unit(&p, duration_units, BASE_ARRAY_LEN(duration_units), 1, &v) != 0 ||
            v > INT64_MAX - total)
            return -1;
        total += v;
        parts++;
        p = skip_space(p);
    }
    if (parts == 0) return -1;
    *out = total;
    return 0;
}

static int parse_int(const char *text, int64_t *out) {
    const char *p = skip_space(text);
    bool neg = *p == '-';
    if (*p == '-' || *p == '+') p++;
    int64_t v = 0;
    if (!isdigit((unsigned char)*p)) return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (INT64_MAX - (*p - '0')) / 10) return -1;
        v = v * 10 + (*p - '0');
    }
    if (*skip_space(p) != '\0') return -1;
    *out = neg ? -v : v;
    return 0;
}

static int parse_bool(const char *text, int64_t *out) {
    static const char *const yes[] = {"true", "on", "yes", "t", "1"};
    static const char *const no[] = {"false", "off", "no", "f", "0"};
    char word[8];
    const char *p = skip_space(text);
    size_t len = 0;
    while (p[len] != '\0' && !isspace((unsigned char)p[len])) {
        if (len + 1 >= sizeof word) return -1;
        word[len] = p[len];
        len++;
    }
    word[len] = '\0';
    if (*skip_space(p + len) != '\0') return -1;
    for (size_t i = 0; i < BASE_ARRAY_LEN(yes); i++) {
        if (strcasecmp(word, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(word, no[i]) == 0) return *out = 0, 0;
    }
    return -1;
}

int sqlv_setting_parse_type(sqlv_setting_type type, const char *text, int64_t *value,
                            char *msg, size_t msg_size) {
    int rc = -1;
    const char *want = "";
    if (strnlen(text, SQLV_SETTING_TEXT_MAX) >= SQLV_SETTING_TEXT_MAX) {
        snprintf(msg, msg_size, "the value is too long (at most %d bytes)",
                 SQLV_SETTING_TEXT_MAX - 1);
        return -1;
    }
    switch (type) {
    case SQLV_SETTING_BYTES:
        rc = parse_bytes(text, value);
        want = "a byte size such as 65536, '512 KiB', '64MiB' or '1GiB' (KiB = 1024 bytes, "
               "KB = 1000)";
        break;
    case SQLV_SETTING_INT:
        rc = parse_int(text, value);
        want = "an integer";
        break;
    case SQLV_SETTING_DURATION:
        rc = parse_duration(text, value);
        want = "a duration such as '10s', '1m30s' or '250ms'";
        break;
    case SQLV_SETTING_BOOL:
        rc = parse_bool(text, value);
        want = "a boolean (true or false)";
        break;
    case SQLV_SETTING_TEXT:
        want = "a text setting's own form (sqlv_setting_check_text)";
        break;
    }
    if (rc != 0) snprintf(msg, msg_size, "invalid value \"%.64s\": want %s", text, want);
    return rc;
}

int sqlv_setting_parse(sqlv_setting_id id, const char *text, int64_t *value, char *msg,
                       size_t msg_size) {
    const sqlv_setting_def *d = sqlv_setting_def_get((int)id);
    if (d == NULL) {
        snprintf(msg, msg_size, "unknown cluster setting");
        return -1;
    }
    int64_t v = 0;
    if (d->type == SQLV_SETTING_TEXT) { /* the value is the text's length */
        if (sqlv_setting_check_text(id, text, msg, msg_size) != 0) return -1;
        *value = (int64_t)strlen(text);
        return 0;
    }
    if (sqlv_setting_parse_type(d->type, text, &v, msg, msg_size) != 0) {
        char inner[256];
        snprintf(inner, sizeof inner, "%s", msg);
        snprintf(msg, msg_size, "%s: %s", d->name, inner);
        return -1;
    }
    if (v < d->min || v > d->max) {
        char lo[SQLV_SETTING_TEXT_MAX], hi[SQLV_SETTING_TEXT_MAX];
        sqlv_setting_format(d->type, d->min, lo, sizeof lo);
        sqlv_setting_format(d->type, d->max, hi, sizeof hi);
        snprintf(msg, msg_size, "%s: \"%.64s\" is out of range: it must be between %s and %s",
                 d->name, text, lo, hi);
        return -1;
    }
    *value = v;
    return 0;
}

/* ---- value -> text -------------------------------------------------------------------- */

void sqlv_setting_format(sqlv_setting_type type, int64_t value, char *buf, size_t size) {
    static const unit exact_bytes[] = {{"TiB", 1024 * GIB}, {"GiB", GIB}, {"MiB", MIB},
                                       {"KiB", KIB}};
    static const unit exact_durations[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}};
    switch (type) {
    case SQLV_SETTING_BYTES:
        for (size_t i = 0; value != 0 && i < BASE_ARRAY_LEN(exact_bytes); i++) {
            if (value % exact_bytes[i].factor == 0) {
                snprintf(buf, size, "%" PRId64 " %s", value / exact_bytes[i].factor,
                         exact_bytes[i].name);
                return;
            }
        }
        snprintf(buf, size, "%" PRId64 " B", value);
        return;
    case SQLV_SETTING_DURATION:
        for (size_t i = 0; value != 0 && i < BASE_ARRAY_LEN(exact_durations); i++) {
            if (value % exact_durations[i].factor == 0) {
                snprintf(buf, size, "%" PRId64 "%s", value / exact_durations[i].factor,
                         exact_durations[i].name);
                return;
            }
        }
        snprintf(buf, size, "%" PRId64 "ms", value);
        return;
    case SQLV_SETTING_BOOL:
        snprintf(buf, size, "%s", value != 0 ? "true" : "false");
        return;
    case SQLV_SETTING_TEXT: /* only the length is here (logs): the text is beside it */
        snprintf(buf, size, "(%" PRId64 " bytes of text)", value);
        return;
    case SQLV_SETTING_INT:
        break;
    }
    snprintf(buf, size, "%" PRId64, value);
}

void sqlv_bytes_human(uint64_t bytes, char *buf, size_t size) {
    static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t i = 0;
    uint64_t scale = 1;
    while (i + 1 < BASE_ARRAY_LEN(names) && bytes >= scale * 1024) {
        scale *= 1024;
        i++;
    }
    uint64_t tenths = (uint64_t)(((unsigned __int128)bytes * 10 + scale / 2) / scale);
    if (tenths % 10 == 0 || i == 0)
        snprintf(buf, size, "%" PRIu64 " %s", tenths / 10, names[i]);
    else
        snprintf(buf, size, "%" PRIu64 ".%" PRIu64 " %s", tenths / 10, tenths % 10, names[i]);
}

/* ---- codec and key space ------------------------------------------------------------------ */

int sqlv_setting_key(sqlv_setting_id id, base_buf *out) {
    const sqlv_setting_def *d = sqlv_setting_def_get((int)id);
    if (d == NULL) return -1;
    size_t before = out->len;
    if (base_buf_append(out, SQLV_SETTING_PREFIX, SQLV_SETTING_PREFIX_LEN) != 0 ||
        base_buf_append(out, d->name, strlen(d->name)) != 0) {
        out->len = before;
        return -1;
    }
    return 0;
}

int sqlv_setting_value_encode(sqlv_setting_id id, int64_t value, base_buf *out) {
    const sqlv_setting_def *d = sqlv_setting_def_get((int)id);
    if (d == NULL || d->type == SQLV_SETTING_TEXT) return -1;
    uint8_t b[VALUE_LEN] = {VALUE_VERSION, (uint8_t)d->type};
    uint64_t u = (uint64_t)value;
    for (int i = 9; i >= 2; i--, u >>= 8) b[i] = (uint8_t)u;
    return base_buf_append(out, b, sizeof b) == 0 ? 0 : -1;
}

int sqlv_setting_value_decode(sqlv_setting_id id, const uint8_t *p, size_t len,
                              int64_t *value) {
    const sqlv_setting_def *d = sqlv_setting_def_get((int)id);
    if (d == NULL || len != VALUE_LEN || p[0] != VALUE_VERSION || p[1] != (uint8_t)d->type)
        return -1;
    uint64_t u = 0;
    for (int i = 2; i < VALUE_LEN; i++) u = u << 8 | p[i];
    int64_t v = (int64_t)u;
    if (v < d->min || v > d->max) return -1;
    *value = v;
    return 0;
}

void sqlv_settings_defaults(sqlv_settings *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < SQLV_SETTINGS_COUNT; i++) out->values[i] = defs[i].default_value;
}

int sqlv_settings_read(txn *t, sqlv_settings *out, txn_error *err) {
    base_buf end = {0};
    txn_iter *it = NULL;
    sqlv_settings_defaults(out);
    int rc = TXN_ERR_NOMEM;
    /* the prefix ends in '/': its successor ends in '0' */
    if (base_buf_append(&end, SQLV_SETTING_PREFIX, SQLV_SETTING_PREFIX_LEN) != 0) goto done;
    end.data[end.len - 1]++;
    rc = txn_scan(t, (const uint8_t *)SQLV_SETTING_PREFIX, SQLV_SETTING_PREFIX_LEN, end.data,
                  end.len, false, &it, err);
    for (size_t n = 0; rc == TXN_OK && n < SQLV_SETTINGS_SCAN_MAX; n++) {
        const uint8_t *k, *v;
        size_t kl, vl;
        int more = txn_iter_next(it, &k, &kl, &v, &vl, err);
        if (more <= 0) {
            rc = more;
            break;
        }
        char name[SQLV_SETTING_NAME_MAX];
        size_t nl = kl - SQLV_SETTING_PREFIX_LEN;
        int id = -1;
        if (nl < sizeof name) {
            memcpy(name, k + SQLV_SETTING_PREFIX_LEN, nl);
            name[nl] = '\0';
            if (memchr(name, '\0', nl) == NULL) id = sqlv_setting_lookup(name);
        }
        int64_t value = 0;
        if (id < 0) {
            BASE_DEBUG(MOD, "cluster settings: an unknown setting is stored (%.*s): ignored",
                       (int)BASE_MIN(nl, (size_t)64), (const char *)k + SQLV_SETTING_PREFIX_LEN);
        } else if (defs[id].type == SQLV_SETTING_TEXT) {
            if (sqlv_setting_text_decode((sqlv_setting_id)id, v, vl, out->hba_conf,
                                         sizeof out->hba_conf) != 0) {
                BASE_WARN(MOD, "cluster settings: the stored value of %s does not decode: its "
                          "default applies", defs[id].name);
                out->hba_conf[0] = '\0';
            } else {
                out->values[id] = (int64_t)strlen(out->hba_conf);
                out->stored[id] = true;
            }
        } else if (sqlv_setting_value_decode((sqlv_setting_id)id, v, vl, &value) != 0) {
            BASE_WARN(MOD, "cluster settings: the stored value of %s does not decode: its "
                      "default applies", defs[id].name);
        } else {
            out->values[id] = value;
            out->stored[id] = true;
        }
    }
    if (rc > 0) rc = TXN_OK; /* stopped at the bound */
done:
    txn_iter_close(it);
    base_buf_free(&end);
    if (rc != TXN_OK) txn_error_set(err, rc);
    return rc;
}

int sqlv_setting_write(txn *t, sqlv_setting_id id, const int64_t *value, txn_error *err) {
    base_buf key = {0}, val = {0};
    int64_t check = 0;
    int rc = TXN_ERR_NOMEM;
    if (sqlv_setting_key(id, &key) != 0) goto done;
    if (value == NULL) {
        rc = txn_delete(t, key.data, key.len, err);
        goto done;
    }
    if (sqlv_setting_value_encode(id, *value, &val) != 0) goto done;
    rc = TXN_ERR_INVALID; /* never store what a reader would refuse */
    if (sqlv_setting_value_decode(id, val.data, val.len, &check) != 0) goto done;
    rc = txn_put(t, key.data, key.len, val.data, val.len, err);
done:
    base_buf_free(&key);
    base_buf_free(&val);
    if (rc != TXN_OK) txn_error_set(err, rc);
    return rc;
}

/* ---- text settings ------------------------------------------------------------------------ */

int sqlv_setting_check_text(sqlv_setting_id id, const char *text, char *msg, size_t msg_size) {
    const sqlv_setting_def *d = sqlv_setting_def_get((int)id);
    char why[256];
    if (d == NULL || d->type != SQLV_SETTING_TEXT) {
        snprintf(msg, msg_size, "not a text setting");
        return -1;
    }
    if (strnlen(text, (size_t)d->max + 1) > (size_t)d->max) {
        snprintf(msg, msg_size, "%s: the value is too long (at most %" PRId64 " bytes)", d->name,
                 d->max);
        return -1;
    }
    /* the only text setting: its parser is the check */
    sec_hba *h = NULL;
    int rc = sec_hba_parse(text, &h, why, sizeof why);
    sec_hba_free(h);
    if (rc == SEC_OK) return 0;
    snprintf(msg, msg_size, "%s: %s", d->name, rc == SEC_ERR_NOMEM ? "out of memory" : why);
    return -1;
}

int sqlv_setting_text_encode(sqlv_setting_id id, const char *text, base_buf *out) {
    const sqlv_setting_def *d = sqlv_setting_def_get((int)id);
    if (d == NULL || d->type != SQLV_SETTING_TEXT || strlen(text) > (size_t)d->max) return -1;
    uint8_t b[2] = {VALUE_VERSION, (uint8_t)d->type};
    size_t before = out->len;
    if (base_buf_append(out, b, sizeof b) != 0 || base_buf_append(out, text, strlen(text)) != 0) {
        out->len = before;
        return -1;
    }
    return 0;
}

int sqlv_setting_text_decode(sqlv_setting_id id, const uint8_t *p, size_t len, char *out,
                             size_t size) {
    const sqlv_setting_def *d = sqlv_setting_def_get((int)id);
    char msg[256];
    if (d == NULL || d->type != SQLV_SETTING_TEXT || len < 2 || p[0] != VALUE_VERSION ||
        p[1] != (uint8_t)d->type || len - 2 > (size_t)d->max || len - 2 >= size ||
        memchr(p + 2, '\0', len - 2) != NULL)
        return -1;
    memcpy(out, p + 2, len - 2);
    out[len - 2] = '\0';
    if (sqlv_setting_check_text(id, out, msg, sizeof msg) != 0) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

int sqlv_setting_write_text(txn *t, sqlv_setting_id id, const char *text, txn_error *err) {
    base_buf key = {0}, val = {0};
    char msg[256];
    int rc = TXN_ERR_NOMEM;
    if (sqlv_setting_key(id, &key) != 0) goto done;
    if (text == NULL) {
        rc = txn_delete(t, key.data, key.len, err);
        goto done;
    }
    rc = TXN_ERR_INVALID; /* never store what a reader would refuse */
    if (sqlv_setting_check_text(id, text, msg, sizeof msg) != 0) goto done;
    rc = TXN_ERR_NOMEM;
    if (sqlv_setting_text_encode(id, text, &val) != 0) goto done;
    rc = txn_put(t, key.data, key.len, val.data, val.len, err);
done:
    base_buf_free(&key);
    base_buf_free(&val);
    if (rc != TXN_OK) txn_error_set(err, rc);
    return rc;
}

int sqlv_setting_read_text(txn *t, sqlv_setting_id id, char *out, size_t size, txn_error *err) {
    base_buf key = {0}, val = {0};
    int rc = TXN_ERR_NOMEM;
    out[0] = '\0';
    if (sqlv_setting_key(id, &key) != 0) {
        txn_error_set(err, rc);
        goto done;
    }
    rc = txn_get(t, key.data, key.len, &val, err);
    if (rc == TXN_NOT_FOUND) {
        rc = TXN_OK;
    } else if (rc == TXN_OK && sqlv_setting_text_decode(id, val.data, val.len, out, size) != 0) {
        BASE_WARN(MOD, "cluster settings: the stored value of %s does not decode: its default "
                  "applies", defs[id].name);
    }
done:
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

/* ---- statements ----------------------------------------------------------------------------- */

static int emit_tag(sqlv__run *r, const char *tag) {
    if (r->sink_rc == 0 && r->sink->command_complete)
        r->sink_rc = r->sink->command_complete(r->sink->ctx, tag);
    return STMT_OK;
}

static bool at_end(const char **pp, const char *end) {
    sqlv__token t = sqlv__lex_next(pp, end);
    return t.kind == SQLV__TOK_END || (t.kind == SQLV__TOK_SEMI &&
                                       sqlv__lex_next(pp, end).kind == SQLV__TOK_END);
}

static int unknown(sqlv__run *r, const char *name) {
    char msg[160];
    snprintf(msg, sizeof msg, "unrecognized cluster setting \"%.64s\"", name);
    return sqlv__fail(r, "42704", msg);
}

/* The value of SET CLUSTER SETTING: one quoted string (unquoted), DEFAULT
** (*is_default), or the raw text of the tokens up to the end joined
** without spaces (64MiB, -5, true). 0, or -1 for a syntax error. */
static int setting_value(const char *p, const char *end, char *out, size_t size,
                         bool *is_default) {
    size_t o = 0;
    int ntok = 0;
    *is_default = false;
    out[0] = '\0';
    for (int guard = 0; guard < 64; guard++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END || t.kind == SQLV__TOK_SEMI) return ntok > 0 ? 0 : -1;
        if (ntok == 0 && sqlv__tok_is(&t, "DEFAULT")) {
            *is_default = true;
            return at_end(&p, end) ? 0 : -1;
        }
        if (t.kind == SQLV__TOK_STRING) {
            if (ntok > 0 || t.len < 2 || t.start[0] != '\'') return -1;
            for (size_t i = 1; i + 1 < t.len; i++) {
                if (t.start[i] == '\'' && t.start[i + 1] == '\'') i++;
                if (o + 1 >= size) return -1;
                out[o++] = t.start[i];
            }
            out[o] = '\0';
            return at_end(&p, end) ? 0 : -1;
        }
        if (t.kind == SQLV__TOK_QUOTED || o + t.len + 1 >= size) return -1;
        memcpy(out + o, t.start, t.len);
        o += t.len;
        out[o] = '\0';
        ntok++;
    }
    return -1;
}

/* name or name.name... (server.host_based_authentication.configuration). */
static int setting_name(const char **pp, const char *end, char *name, size_t size) {
    sqlv__token t = sqlv__lex_next(pp, end);
    if (sqlv__tok_ident(&t, name, size) != 0) return -1;
    for (int guard = 0; guard < 8; guard++) { /* a name has few parts */
        const char *save = *pp;
        sqlv__token dot = sqlv__lex_next(pp, end);
        if (!sqlv__tok_punct(&dot, '.')) {
            *pp = save;
            return 0;
        }
        char part[SQLV_SETTING_NAME_MAX];
        t = sqlv__lex_next(pp, end);
        size_t used = strlen(name);
        if (sqlv__tok_ident(&t, part, sizeof part) != 0 || used + 1 + strlen(part) >= size)
            return -1;
        name[used] = '.';
        memcpy(name + used + 1, part, strlen(part) + 1);
    }
    return -1;
}

int sqlv__cluster_setting_set(sqlv__run *r, const char *p, const char *end, bool reset) {
    sqlv_session *s = r->s;
    /* text: a text setting's whole value (the largest: SEC_HBA_TEXT_BYTES_MAX) */
    char name[SQLV_SETTING_NAME_MAX], text[SEC_HBA_TEXT_BYTES_MAX + 2], msg[512];
    const char *usage = reset ? "syntax error: RESET CLUSTER SETTING name"
                              : "syntax error: SET CLUSTER SETTING name = value";
    sqlv__token t = sqlv__lex_next(&p, end);
    sqlv__token t2 = sqlv__lex_next(&p, end);
    if (!sqlv__tok_is(&t, "CLUSTER")) return -1;
    if (!sqlv__tok_is(&t2, "SETTING")) return sqlv__fail(r, "42601", usage);
    if (setting_name(&p, end, name, sizeof name) != 0) return sqlv__fail(r, "42601", usage);
    bool is_default = reset;
    if (reset) {
        if (!at_end(&p, end)) return sqlv__fail(r, "42601", usage);
    } else {
        sqlv__token eq = sqlv__lex_next(&p, end);
        if ((!sqlv__tok_punct(&eq, '=') && !sqlv__tok_is(&eq, "TO")) ||
            setting_value(p, end, text, sizeof text, &is_default) != 0)
            return sqlv__fail(r, "42601", usage);
    }
    int id = sqlv_setting_lookup(name);
    if (id < 0) return unknown(r, name);
    /* admins only (42501), before the value is parsed or written */
    if (sqlv__priv_require_admin(r, reset ? "reset a cluster setting" : "set a cluster setting") !=
        STMT_OK)
        return STMT_FAILED; /* the error was sent */
    if (s->status == 'E' || (s->status == 'T' && !s->implicit_block))
        return sqlv__fail(r, "25001", reset ? "RESET CLUSTER SETTING cannot run inside a "
                                              "transaction block"
                                            : "SET CLUSTER SETTING cannot run inside a "
                                              "transaction block");
    int64_t value = 0;
    bool is_text = defs[id].type == SQLV_SETTING_TEXT;
    if (!is_default && sqlv_setting_parse((sqlv_setting_id)id, text, &value, msg, sizeof msg) != 0)
        return sqlv__fail(r, "22023", msg);
    txn_error err = {{0}, {0}};
    int rc = TXN_OK;
    for (int attempt = 0; attempt < SET_ATTEMPTS_MAX; attempt++) {
        txn *kv = NULL;
        memset(&err, 0, sizeof err);
        if ((rc = txn_begin(s->engine->db, NULL, &kv)) != TXN_OK) break;
        if (is_text)
            rc = sqlv_setting_write_text(kv, (sqlv_setting_id)id, is_default ? NULL : text, &err);
        else
            rc = sqlv_setting_write(kv, (sqlv_setting_id)id, is_default ? NULL : &value, &err);
        if (rc != TXN_OK) {
            txn_rollback(kv);
            break;
        }
        if ((rc = txn_commit(kv, NULL, &err)) != TXN_ERR_RETRY) break;
    }
    if (rc != TXN_OK) return sqlv__fail_txn(r, rc, &err);
    if (is_default)
        BASE_INFO(MOD, "cluster setting %s reset to its default", defs[id].name);
    else if (is_text)
        BASE_INFO(MOD, "cluster setting %s set (%zu bytes)", defs[id].name, strlen(text));
    else
        BASE_INFO(MOD, "cluster setting %s set to %s", defs[id].name, text);
    return emit_tag(r, reset ? "RESET CLUSTER SETTING" : "SET CLUSTER SETTING");
}

/* The stored settings, read in a read-only transaction of their own. */
static int read_all(sqlv__run *r, sqlv_settings *out) {
    txn *kv = NULL;
    txn_error err = {{0}, {0}};
    txn_options ro = {.read_only = true};
    int rc = txn_begin(r->s->engine->db, &ro, &kv);
    if (rc == TXN_OK) {
        rc = sqlv_settings_read(kv, out, &err);
        if (rc == TXN_OK) rc = txn_commit(kv, NULL, &err);
        else txn_rollback(kv);
    }
    return rc == TXN_OK ? 0 : sqlv__fail_txn(r, rc, &err);
}

int sqlv__cluster_settings_show(sqlv__run *r, const char *p, const char *end) {
    char name[SQLV_SETTING_NAME_MAX], text[SQLV_SETTING_TEXT_MAX];
    sqlv__token t = sqlv__lex_next(&p, end);
    bool all = sqlv__tok_is(&t, "ALL");
    if (all) t = sqlv__lex_next(&p, end);
    if (!sqlv__tok_is(&t, "CLUSTER")) return -1;
    sqlv__token t2 = sqlv__lex_next(&p, end);
    sqlv_settings st;
    if (sqlv__tok_is(&t2, "SETTINGS")) {
        if (!at_end(&p, end))
            return sqlv__fail(r, "42601", "syntax error in SHOW CLUSTER SETTINGS");
        /* admins only (42501), before anything is read */
        if (sqlv__priv_require_admin(r, "show cluster settings") != STMT_OK) return STMT_FAILED;
        if (read_all(r, &st) != 0) return STMT_FAILED; /* the error was sent */
        sqlv_column cols[4] = {{"name", SQLV_OID_TEXT, -1, 0}, {"value", SQLV_OID_TEXT, -1, 0},
                               {"type", SQLV_OID_TEXT, -1, 0},
                               {"description", SQLV_OID_TEXT, -1, 0}};
        if (r->sink_rc == 0 && r->sink->row_description)
            r->sink_rc = r->sink->row_description(r->sink->ctx, 4, cols);
        for (int i = 0; i < SQLV_SETTINGS_COUNT; i++) {
            const char *type = sqlv_setting_type_name(defs[i].type);
            sqlv_setting_format(defs[i].type, st.values[i], text, sizeof text);
            const char *shown = defs[i].type == SQLV_SETTING_TEXT ? st.hba_conf : text;
            sqlv_cell cells[4] = {{defs[i].name, strlen(defs[i].name)},
                                  {shown, strlen(shown)},
                                  {type, strlen(type)},
                                  {defs[i].description, strlen(defs[i].description)}};
            if (r->sink_rc == 0 && r->sink->data_row)
                r->sink_rc = r->sink->data_row(r->sink->ctx, 4, cells);
        }
        return emit_tag(r, "SHOW");
    }
    if (all || !sqlv__tok_is(&t2, "SETTING"))
        return sqlv__fail(r, "42601", "syntax error: SHOW CLUSTER SETTING name | SHOW [ALL] "
                                      "CLUSTER SETTINGS");
    if (setting_name(&p, end, name, sizeof name) != 0 || !at_end(&p, end))
        return sqlv__fail(r, "42601", "syntax error: SHOW CLUSTER SETTING name");
    /* admins only (42501), before the name is looked up: a non-admin gets
    ** the same answer for every name */
    if (sqlv__priv_require_admin(r, "show a cluster setting") != STMT_OK) return STMT_FAILED;
    int id = sqlv_setting_lookup(name);
    if (id < 0) return unknown(r, name);
    if (read_all(r, &st) != 0) return STMT_FAILED;
    sqlv_setting_format(defs[id].type, st.values[id], text, sizeof text);
    const char *shown = defs[id].type == SQLV_SETTING_TEXT ? st.hba_conf : text;
    sqlv_column col = {defs[id].name, SQLV_OID_TEXT, -1, 0};
    sqlv_cell cell = {shown, strlen(shown)};
    if (r->sink_rc == 0 && r->sink->row_description)
        r->sink_rc = r->sink->row_description(r->sink->ctx, 1, &col);
    if (r->sink_rc == 0 && r->sink->data_row)
        r->sink_rc = r->sink->data_row(r->sink->ctx, 1, &cell);
    return emit_tag(r, "SHOW");
}
