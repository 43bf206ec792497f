/*
** Row values, column classes and PostgreSQL text output.
**
** Invariants:
**   - a stored value of a column always has the storage class its column
**     class dictates (INT2/4/8 and BOOL: integer, REAL: real, NUMERIC: integer or
**     real, TEXT: text, BLOB: blob) or NULL; sqlv__assign guarantees it, so
**     SQLite's comparisons with the declared affinity agree with key order.
**   - sqlv__row_decode never reads outside [row, row + len).
**   - a row stores the columns its table had when it was written, in order;
**     sqlv__row_decode_table gives the later ones their missing value.
** The row format is documented in sql_int.h.
*/
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql_int.h"

/* ---- classes ---------------------------------------------------------------- */

static bool decl_has(const char *up, const char *word) { return strstr(up, word) != NULL; }

sqlv__class sqlv__class_of_decl(const char *decl) {
    char up[128];
    size_t i = 0;
    if (decl == NULL) return SQLV__CLASS_TEXT;
    for (; decl[i] && i + 1 < sizeof(up); i++)
        up[i] = (char)toupper((unsigned char)decl[i]);
    up[i] = 0;
    if (up[0] == 0) return SQLV__CLASS_TEXT;
    if (decl_has(up, "[]")) return SQLV__CLASS_TEXT;
    if (decl_has(up, "BIGINT") || decl_has(up, "INT8") || decl_has(up, "BIGSERIAL"))
        return SQLV__CLASS_INT8;
    if (decl_has(up, "SMALLINT") || decl_has(up, "INT2") || decl_has(up, "TINYINT") ||
        decl_has(up, "SMALLSERIAL"))
        return SQLV__CLASS_INT2;
    if (decl_has(up, "INTERVAL") || decl_has(up, "POINT")) return SQLV__CLASS_TEXT;
    if (decl_has(up, "INT") || decl_has(up, "SERIAL")) return SQLV__CLASS_INT4;
    if (decl_has(up, "BOOL")) return SQLV__CLASS_BOOL;
    if (decl_has(up, "REAL") || decl_has(up, "FLOA") || decl_has(up, "DOUB"))
        return SQLV__CLASS_REAL;
    if (decl_has(up, "NUMERIC") || decl_has(up, "DECIMAL")) return SQLV__CLASS_NUMERIC;
    if (decl_has(up, "BYTEA") || decl_has(up, "BLOB")) return SQLV__CLASS_BLOB;
    return SQLV__CLASS_TEXT;
}

uint32_t sqlv__class_oid(sqlv__class c) {
    switch (c) {
    case SQLV__CLASS_INT4: return SQLV_OID_INT4;
    case SQLV__CLASS_INT8: return SQLV_OID_INT8;
    case SQLV__CLASS_INT2: return SQLV_OID_INT2;
    case SQLV__CLASS_BOOL: return SQLV_OID_BOOL;
    case SQLV__CLASS_REAL: return SQLV_OID_FLOAT8;
    case SQLV__CLASS_NUMERIC: return SQLV_OID_NUMERIC;
    case SQLV__CLASS_TEXT: return SQLV_OID_TEXT;
    case SQLV__CLASS_BLOB: return SQLV_OID_BYTEA;
    }
    return SQLV_OID_TEXT;
}

/* ---- row format ----------------------------------------------------------------- */

static int put_varint(base_buf *b, uint64_t v) {
    uint8_t tmp[10];
    int n = 0;
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        if (v) c |= 0x80;
        tmp[n++] = c;
    } while (v && n < 10);
    return base_buf_append(b, tmp, (size_t)n);
}

static int get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= len) return -1;
        uint8_t c = p[(*pos)++];
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static int put_u64(base_buf *b, uint64_t v) {
    uint8_t tmp[8];
    for (int i = 0; i < 8; i++)
        tmp[i] = (uint8_t)(v >> (56 - 8 * i));
    return base_buf_append(b, tmp, 8);
}

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

int sqlv__row_encode(base_buf *out, const sqlv__cell *cells, int n) {
    if (base_buf_append_byte(out, SQLV__ROW_FORMAT_VERSION) != 0) return -1;
    if (put_varint(out, (uint64_t)n) != 0) return -1;
    for (int i = 0; i < n; i++) {
        const sqlv__cell *c = &cells[i];
        int rc = 0;
        switch (c->type) {
        case SQLITE_INTEGER:
            rc = base_buf_append_byte(out, 1);
            if (rc == 0) rc = put_u64(out, (uint64_t)c->i);
            break;
        case SQLITE_FLOAT: {
            uint64_t bits;
            memcpy(&bits, &c->r, 8);
            rc = base_buf_append_byte(out, 2);
            if (rc == 0) rc = put_u64(out, bits);
            break;
        }
        case SQLITE_TEXT:
        case SQLITE_BLOB:
            rc = base_buf_append_byte(out, c->type == SQLITE_TEXT ? 3 : 4);
            if (rc == 0) rc = put_varint(out, c->n);
            if (rc == 0 && c->n) rc = base_buf_append(out, c->p, c->n);
            break;
        default: rc = base_buf_append_byte(out, 0); break;
        }
        if (rc != 0) return -1;
    }
    return 0;
}

int sqlv__row_decode(const uint8_t *row, size_t len, sqlv__cell *cells, int n) {
    size_t pos = 0;
    uint64_t stored;
    for (int i = 0; i < n; i++)
        memset(&cells[i], 0, sizeof(cells[i])), cells[i].type = SQLITE_NULL;
    if (len < 1 || row[0] != SQLV__ROW_FORMAT_VERSION) return -1;
    pos = 1;
    if (get_varint(row, len, &pos, &stored) != 0) return -1;
    for (uint64_t i = 0; i < stored; i++) {
        sqlv__cell tmp;
        sqlv__cell *c = (int64_t)i < n ? &cells[i] : &tmp;
        memset(c, 0, sizeof(*c));
        if (pos >= len) return -1;
        uint8_t tag = row[pos++];
        switch (tag) {
        case 0: c->type = SQLITE_NULL; break;
        case 1:
            if (len - pos < 8) return -1;
            c->type = SQLITE_INTEGER;
            c->i = (int64_t)get_u64(row + pos);
            pos += 8;
            break;
        case 2: {
            if (len - pos < 8) return -1;
            uint64_t bits = get_u64(row + pos);
            c->type = SQLITE_FLOAT;
            memcpy(&c->r, &bits, 8);
            pos += 8;
            break;
        }
        case 3:
        case 4: {
            uint64_t l;
            if (get_varint(row, len, &pos, &l) != 0 || l > len - pos) return -1;
            c->type = tag == 3 ? SQLITE_TEXT : SQLITE_BLOB;
            c->p = row + pos;
            c->n = (size_t)l;
            pos += (size_t)l;
            break;
        }
        default: return -1;
        }
    }
    return pos == len ? 0 : -1;
}

int sqlv__row_decode_table(const sqlv__table *t, const uint8_t *row, size_t len,
                           sqlv__cell *cells) {
    if (sqlv__row_decode(row, len, cells, t->ncols) != 0) return -1;
    size_t pos = 1;
    uint64_t stored;
    if (get_varint(row, len, &pos, &stored) != 0) return -1; /* decoded above: cannot fail */
    /* the columns added after the row was written: their missing values */
    for (int i = stored < (uint64_t)t->ncols ? (int)stored : t->ncols; i < t->ncols; i++) {
        const sqlv__column *c = &t->cols[i];
        if (c->missing != NULL && sqlv__row_decode(c->missing, c->missing_len, &cells[i], 1) != 0)
            return -1;
    }
    return 0;
}

void sqlv__cell_to_enc(const sqlv__cell *c, enc_value *v) {
    memset(v, 0, sizeof(*v));
    switch (c->type) {
    case SQLITE_INTEGER:
        v->type = ENC_INTEGER;
        v->u.i = c->i;
        break;
    case SQLITE_FLOAT:
        v->type = ENC_REAL;
        v->u.r = c->r;
        break;
    case SQLITE_TEXT:
        v->type = ENC_TEXT;
        v->u.bytes.data = c->p;
        v->u.bytes.len = c->n;
        break;
    case SQLITE_BLOB:
        v->type = ENC_BLOB;
        v->u.bytes.data = c->p;
        v->u.bytes.len = c->n;
        break;
    default: v->type = ENC_NULL; break;
    }
}

/* ---- assignment ------------------------------------------------------------------ */

static void set_err(char sqlstate[6], char *message, size_t size, const char *state,
                    const char *type_name, const char *text, size_t text_len) {
    base_strlcpy(sqlstate, state, 6);
    snprintf(message, size, "invalid input syntax for type %s: \"%.*s\"", type_name,
             (int)BASE_MIN(text_len, 200), text);
}

static bool text_is_bool(const char *p, size_t n, int64_t *out) {
    static const char *const yes[] = {"t", "true", "y", "yes", "on", "1"};
    static const char *const no[] = {"f", "false", "n", "no", "off", "0"};
    while (n && isspace((unsigned char)*p))
        p++, n--;
    while (n && isspace((unsigned char)p[n - 1]))
        n--;
    for (size_t i = 0; i < BASE_ARRAY_LEN(yes); i++) {
        if (strlen(yes[i]) == n && strncasecmp(p, yes[i], n) == 0) return *out = 1, true;
        if (strlen(no[i]) == n && strncasecmp(p, no[i], n) == 0) return *out = 0, true;
    }
    return false;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int sqlv__assign(sqlite3_value *v, sqlv__class cls, const char *type_name, base_buf *scratch,
                 sqlv__cell *out, char sqlstate[6], char *message, size_t message_size) {
    int type = sqlite3_value_type(v);
    memset(out, 0, sizeof(*out));
    out->type = SQLITE_NULL;
    if (type == SQLITE_NULL) return 0;
    switch (cls) {
    case SQLV__CLASS_INT4:
    case SQLV__CLASS_INT8:
    case SQLV__CLASS_INT2:
    case SQLV__CLASS_NUMERIC:
    case SQLV__CLASS_REAL: {
        double d;
        int64_t i;
        bool is_int;
        if (type == SQLITE_INTEGER) {
            is_int = true;
            i = sqlite3_value_int64(v);
            d = (double)i;
        } else if (type == SQLITE_FLOAT) {
            is_int = false;
            d = sqlite3_value_double(v);
            i = 0;
        } else {
            /* TEXT or BLOB: convert the way SQLite's numeric affinity does,
            ** and fail on anything that is not a number. */
            const char *txt = (const char *)sqlite3_value_text(v);
            size_t n = (size_t)sqlite3_value_bytes(v);
            sqlite3_value *dup = sqlite3_value_dup(v);
            int nt;
            if (dup == NULL) return -1;
            if (type == SQLITE_BLOB) {
                sqlite3_value_free(dup);
                set_err(sqlstate, message, message_size, "22P02", type_name, txt ? txt : "", n);
                return 1;
            }
            nt = sqlite3_value_numeric_type(dup);
            if (nt == SQLITE_INTEGER) {
                is_int = true;
                i = sqlite3_value_int64(dup);
                d = (double)i;
            } else if (nt == SQLITE_FLOAT && cls != SQLV__CLASS_INT4 && cls != SQLV__CLASS_INT8 &&
                       cls != SQLV__CLASS_INT2) {
                is_int = false;
                d = sqlite3_value_double(dup);
                i = 0;
            } else {
                sqlite3_value_free(dup);
                set_err(sqlstate, message, message_size, "22P02", type_name, txt ? txt : "", n);
                return 1;
            }
            sqlite3_value_free(dup);
        }
        if (cls == SQLV__CLASS_REAL) {
            out->type = SQLITE_FLOAT;
            out->r = d;
            return 0;
        }
        if (!is_int) {
            if (cls == SQLV__CLASS_NUMERIC) {
                out->type = SQLITE_FLOAT;
                out->r = d;
                return 0;
            }
            /* PostgreSQL rounds a float assigned to an integer column. */
            if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) {
                base_strlcpy(sqlstate, "22003", 6);
                snprintf(message, message_size, "%s out of range", type_name);
                return 1;
            }
            i = (int64_t)llround(d);
        }
        if ((cls == SQLV__CLASS_INT4 && (i < INT32_MIN || i > INT32_MAX)) ||
            (cls == SQLV__CLASS_INT2 && (i < INT16_MIN || i > INT16_MAX))) {
            base_strlcpy(sqlstate, "22003", 6);
            snprintf(message, message_size, "%s out of range",
                     cls == SQLV__CLASS_INT2 ? "smallint" : "integer");
            return 1;
        }
        out->type = SQLITE_INTEGER;
        out->i = i;
        return 0;
    }
    case SQLV__CLASS_BOOL: {
        int64_t b;
        if (type == SQLITE_INTEGER) {
            out->type = SQLITE_INTEGER;
            out->i = sqlite3_value_int64(v) != 0;
            return 0;
        }
        if (type == SQLITE_FLOAT) {
            out->type = SQLITE_INTEGER;
            out->i = sqlite3_value_double(v) != 0.0;
            return 0;
        }
        const char *txt = (const char *)sqlite3_value_text(v);
        size_t n = (size_t)sqlite3_value_bytes(v);
        if (txt == NULL) return -1;
        if (type == SQLITE_TEXT && text_is_bool(txt, n, &b)) {
            out->type = SQLITE_INTEGER;
            out->i = b;
            return 0;
        }
        set_err(sqlstate, message, message_size, "22P02", "boolean", txt, n);
        return 1;
    }
    case SQLV__CLASS_TEXT: {
        if (type == SQLITE_BLOB) {
            out->type = SQLITE_TEXT;
            out->p = sqlite3_value_blob(v);
            out->n = (size_t)sqlite3_value_bytes(v);
            return 0;
        }
        if (type == SQLITE_FLOAT) {
            char buf[64];
            sqlv__format_double(sqlite3_value_double(v), buf, sizeof(buf));
            size_t off = scratch->len;
            if (base_buf_append(scratch, buf, strlen(buf)) != 0) return -1;
            out->type = SQLITE_TEXT;
            out->p = scratch->data + off; /* caller must not grow scratch after */
            out->n = strlen(buf);
            return 0;
        }
        const unsigned char *txt = sqlite3_value_text(v);
        if (txt == NULL) return -1;
        out->type = SQLITE_TEXT;
        out->p = txt;
        out->n = (size_t)sqlite3_value_bytes(v);
        return 0;
    }
    case SQLV__CLASS_BLOB: {
        if (type == SQLITE_BLOB) {
            out->type = SQLITE_BLOB;
            out->p = sqlite3_value_blob(v);
            out->n = (size_t)sqlite3_value_bytes(v);
            if (out->p == NULL) out->p = (const uint8_t *)"";
            return 0;
        }
        const char *txt = (const char *)sqlite3_value_text(v);
        size_t n = (size_t)sqlite3_value_bytes(v);
        if (txt == NULL) return -1;
        if (type == SQLITE_TEXT && n >= 2 && txt[0] == '\\' && txt[1] == 'x') {
            /* PostgreSQL's hex bytea input: \x0102... */
            if ((n - 2) % 2 != 0) goto bad_bytea;
            size_t off = scratch->len;
            for (size_t k = 2; k < n; k += 2) {
                int h = hexval(txt[k]), l = hexval(txt[k + 1]);
                if (h < 0 || l < 0) goto bad_bytea;
                if (base_buf_append_byte(scratch, (uint8_t)(h * 16 + l)) != 0) return -1;
            }
            out->type = SQLITE_BLOB;
            out->p = scratch->len > off ? scratch->data + off : (const uint8_t *)"";
            out->n = scratch->len - off;
            return 0;
        }
        out->type = SQLITE_BLOB;
        out->p = (const uint8_t *)txt;
        out->n = n;
        return 0;
    bad_bytea:
        set_err(sqlstate, message, message_size, "22P02", "bytea", txt, n);
        return 1;
    }
    }
    return -1;
}

/* ---- output ------------------------------------------------------------------------ */

void sqlv__format_double(double d, char *buf, size_t size) {
    if (isnan(d)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, size, d > 0 ? "Infinity" : "-Infinity");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    /* PostgreSQL prints exponents as e+NN with at least two digits, as %g
    ** does; nothing more to adjust. */
}

int sqlv__format_value(sqlite3_stmt *stmt, int col, uint32_t oid, base_buf *out, bool *is_null) {
    int type = sqlite3_column_type(stmt, col);
    *is_null = false;
    switch (type) {
    case SQLITE_NULL: *is_null = true; return 0;
    case SQLITE_INTEGER: {
        int64_t i = sqlite3_column_int64(stmt, col);
        if (oid == SQLV_OID_BOOL) return base_buf_append(out, i ? "t" : "f", 1);
        if (oid == SQLV_OID_FLOAT8) {
            char buf[64];
            sqlv__format_double((double)i, buf, sizeof(buf));
            return base_buf_append(out, buf, strlen(buf));
        }
        return base_buf_printf(out, "%lld", (long long)i);
    }
    case SQLITE_FLOAT: {
        char buf[64];
        double d = sqlite3_column_double(stmt, col);
        if (oid == SQLV_OID_BOOL) return base_buf_append(out, d != 0.0 ? "t" : "f", 1);
        sqlv__format_double(d, buf, sizeof(buf));
        return base_buf_append(out, buf, strlen(buf));
    }
    case SQLITE_TEXT: {
        const unsigned char *p = sqlite3_column_text(stmt, col);
        int n = sqlite3_column_bytes(stmt, col);
        if (p == NULL) return -1;
        return base_buf_append(out, p, (size_t)n);
    }
    case SQLITE_BLOB: {
        static const char hex[] = "0123456789abcdef";
        const uint8_t *p = sqlite3_column_blob(stmt, col);
        int n = sqlite3_column_bytes(stmt, col);
        if (base_buf_append(out, "\\x", 2) != 0) return -1;
        if (base_buf_reserve(out, (size_t)n * 2) != 0) return -1;
        for (int i = 0; i < n; i++) {
            out->data[out->len++] = (uint8_t)hex[p[i] >> 4];
            out->data[out->len++] = (uint8_t)hex[p[i] & 15];
        }
        return 0;
    }
    }
    return -1;
}
