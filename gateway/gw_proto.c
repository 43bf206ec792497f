/*
** gw_proto.c: PostgreSQL frontend/backend protocol v3, pure encoding and
** decoding. No I/O.
**
** Format (all integers big-endian):
**   startup packet: int32 len (self-inclusive), int32 code, then for 3.x a
**                   list of NUL-terminated name/value pairs ending in '\0'.
**   other messages: byte type, int32 len (self-inclusive, excludes type).
**
** Invariants: every gw_msg_* either appends one whole message or leaves the
** buffer unchanged (on -ENOMEM), so a half-written message never goes out.
*/
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gateway/gw_int.h"

uint32_t gw_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
           (uint32_t)p[3];
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A message under construction: begin records where it starts; the length
** is patched in by end. On any append failure, rollback truncates. */
typedef struct msg {
    base_buf *b;
    size_t start;
    int rc;
} msg;

static msg msg_begin(base_buf *b, char type)
{
    msg m = {b, b->len, 0};
    uint8_t hdr[5] = {(uint8_t)type, 0, 0, 0, 0};
    if (base_buf_append(b, hdr, sizeof hdr) != 0)
        m.rc = -ENOMEM;
    return m;
}

static void msg_bytes(msg *m, const void *p, size_t n)
{
    if (m->rc == 0 && n > 0 && base_buf_append(m->b, p, n) != 0)
        m->rc = -ENOMEM;
}

static void msg_u32(msg *m, uint32_t v)
{
    uint8_t p[4];
    put_u32(p, v);
    msg_bytes(m, p, 4);
}

static void msg_u16(msg *m, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    msg_bytes(m, p, 2);
}

static void msg_str(msg *m, const char *s)
{
    msg_bytes(m, s, strlen(s) + 1);
}

static int msg_end(msg *m)
{
    if (m->rc != 0) {
        m->b->len = m->start;
        return m->rc;
    }
    size_t body = m->b->len - m->start - 1;
    if (body > INT32_MAX) { /* a row this big cannot be framed */
        m->b->len = m->start;
        return -ENOMEM;
    }
    put_u32(m->b->data + m->start + 1, (uint32_t)body);
    return 0;
}

int gw_msg_auth_ok(base_buf *b)
{
    msg m = msg_begin(b, 'R');
    msg_u32(&m, 0);
    return msg_end(&m);
}

int gw_msg_auth_sasl(base_buf *b)
{
    msg m = msg_begin(b, 'R');
    msg_u32(&m, 10);
    msg_str(&m, SEC_SCRAM_MECHANISM);
    msg_bytes(&m, "", 1); /* the list ends with an empty name */
    return msg_end(&m);
}

int gw_msg_auth_sasl_data(base_buf *b, uint32_t code, const void *data, size_t len)
{
    msg m = msg_begin(b, 'R');
    msg_u32(&m, code);
    msg_bytes(&m, data, len);
    return msg_end(&m);
}

int gw_parse_sasl_initial(const uint8_t *body, uint32_t len, const char **mechanism,
                          const uint8_t **data, size_t *data_len, const char **why)
{
    /* String mechanism, Int32 length of the data (-1: none), Byte[n] data. */
    const uint8_t *nul = memchr(body, '\0', len);
    *why = "malformed SASLInitialResponse message";
    if (nul == NULL || nul == body)
        return -1;
    size_t rest = len - (size_t)(nul + 1 - body);
    if (rest < 4)
        return -1;
    uint32_t n = gw_get_u32(nul + 1);
    if (n == 0xffffffffu || n != rest - 4)
        return -1;
    *mechanism = (const char *)body;
    *data = nul + 5;
    *data_len = n;
    return 0;
}

int gw_msg_parameter_status(base_buf *b, const char *name, const char *value)
{
    msg m = msg_begin(b, 'S');
    msg_str(&m, name);
    msg_str(&m, value);
    return msg_end(&m);
}

int gw_msg_backend_key_data(base_buf *b, uint32_t pid, uint32_t secret)
{
    msg m = msg_begin(b, 'K');
    msg_u32(&m, pid);
    msg_u32(&m, secret);
    return msg_end(&m);
}

int gw_msg_ready_for_query(base_buf *b, char status)
{
    msg m = msg_begin(b, 'Z');
    msg_bytes(&m, &status, 1);
    return msg_end(&m);
}

int gw_msg_row_description(base_buf *b, int ncols, const sqlv_column *cols)
{
    msg m = msg_begin(b, 'T');
    msg_u16(&m, (uint16_t)ncols);
    for (int i = 0; i < ncols; i++) {
        msg_str(&m, cols[i].name ? cols[i].name : "?column?");
        msg_u32(&m, 0);                      /* table oid */
        msg_u16(&m, 0);                      /* column attnum */
        msg_u32(&m, cols[i].type_oid);
        msg_u16(&m, (uint16_t)cols[i].type_size);
        msg_u32(&m, 0xffffffffu);            /* typmod -1 */
        msg_u16(&m, (uint16_t)cols[i].format); /* 0 text, 1 binary */
    }
    return msg_end(&m);
}

int gw_msg_data_row(base_buf *b, int ncols, const sqlv_cell *cells)
{
    msg m = msg_begin(b, 'D');
    msg_u16(&m, (uint16_t)ncols);
    for (int i = 0; i < ncols; i++) {
        if (cells[i].data == NULL) {
            msg_u32(&m, 0xffffffffu);
        } else if (cells[i].len > INT32_MAX) {
            m.rc = -ENOMEM;
        } else {
            msg_u32(&m, (uint32_t)cells[i].len);
            msg_bytes(&m, cells[i].data, cells[i].len);
        }
    }
    return msg_end(&m);
}

int gw_msg_command_complete(base_buf *b, const char *tag)
{
    msg m = msg_begin(b, 'C');
    msg_str(&m, tag ? tag : "");
    return msg_end(&m);
}

int gw_msg_empty_query(base_buf *b)
{
    msg m = msg_begin(b, 'I');
    return msg_end(&m);
}

/* One field: its code, then text[0..n) NUL-terminated. */
static void msg_field(msg *m, char code, const char *text, size_t n)
{
    msg_bytes(m, &code, 1);
    msg_bytes(m, text, n);
    msg_bytes(m, "", 1);
}

/* sql/ folds a detail and a hint into the message the way psql prints them
** ("msg\nDETAIL:  d\nHINT:  h"); they go out as their own fields D and H. */
static int notice_or_error(base_buf *b, char type, const char *severity,
                           const char *sqlstate, const char *message)
{
    static const char detail_mark[] = "\nDETAIL:  ", hint_mark[] = "\nHINT:  ";
    const char *text = message ? message : "";
    const char *detail = strstr(text, detail_mark);
    const char *hint = strstr(detail ? detail : text, hint_mark);
    const char *text_end = detail ? detail : hint ? hint : text + strlen(text);
    msg m = msg_begin(b, type);
    msg_bytes(&m, "S", 1);
    msg_str(&m, severity);
    msg_bytes(&m, "V", 1);
    msg_str(&m, severity);
    msg_bytes(&m, "C", 1);
    msg_str(&m, sqlstate);
    msg_field(&m, 'M', text, (size_t)(text_end - text));
    if (detail) {
        const char *d = detail + strlen(detail_mark);
        msg_field(&m, 'D', d, hint ? (size_t)(hint - d) : strlen(d));
    }
    if (hint) {
        const char *h = hint + strlen(hint_mark);
        msg_field(&m, 'H', h, strlen(h));
    }
    msg_bytes(&m, "", 1);
    return msg_end(&m);
}

int gw_msg_error(base_buf *b, const char *severity, const char *sqlstate,
                 const char *message)
{
    return notice_or_error(b, 'E', severity, sqlstate, message);
}

int gw_msg_notice(base_buf *b, const char *message)
{
    return notice_or_error(b, 'N', "NOTICE", "00000", message);
}

int gw_msg_negotiate_version(base_buf *b, uint32_t minor, int noptions,
                             const char *const *options)
{
    msg m = msg_begin(b, 'v');
    msg_u32(&m, GW_PROTOCOL_3_0 | minor);
    msg_u32(&m, (uint32_t)noptions);
    for (int i = 0; i < noptions; i++)
        msg_str(&m, options[i]);
    return msg_end(&m);
}

int gw_parse_startup(const uint8_t *pkt, uint32_t len, gw_startup *out,
                     const char **why)
{
    memset(out, 0, sizeof *out);
    if (len < 8 || len > GW_STARTUP_PACKET_MAX_BYTES || gw_get_u32(pkt) != len) {
        *why = "invalid length of startup packet";
        return GW_STARTUP_BAD;
    }
    out->code = gw_get_u32(pkt + 4);
    if (out->code == GW_CANCEL_REQUEST_CODE) {
        if (len != 16) {
            *why = "invalid length of cancel request packet";
            return GW_STARTUP_BAD;
        }
        out->cancel_pid = gw_get_u32(pkt + 8);
        out->cancel_secret = gw_get_u32(pkt + 12);
        return GW_STARTUP_OK;
    }
    if (out->code == GW_SSL_REQUEST_CODE || out->code == GW_GSSENC_REQUEST_CODE) {
        if (len != 8) {
            *why = "invalid length of encryption request packet";
            return GW_STARTUP_BAD;
        }
        return GW_STARTUP_OK;
    }
    if ((out->code >> 16) != 3) {
        *why = "unsupported frontend protocol: server supports 3.0";
        return GW_STARTUP_VERSION;
    }
    /* name\0value\0 ... \0: the last byte must be the list terminator. */
    const char *p = (const char *)pkt + 8;
    const char *end = (const char *)pkt + len;
    if (p == end || end[-1] != '\0') {
        *why = "invalid startup packet layout: expected terminator as last byte";
        return GW_STARTUP_BAD;
    }
    int npairs = 0;
    while (*p != '\0') {
        const char *name = p;
        const char *nul = memchr(p, '\0', (size_t)(end - p));
        if (nul == NULL || nul + 1 >= end) {
            *why = "invalid startup packet layout: missing value";
            return GW_STARTUP_BAD;
        }
        const char *value = nul + 1;
        const char *vnul = memchr(value, '\0', (size_t)(end - value));
        if (vnul == NULL || vnul + 1 >= end) {
            *why = "invalid startup packet layout: expected terminator as last byte";
            return GW_STARTUP_BAD;
        }
        if (++npairs > GW_STARTUP_PARAMS_MAX) {
            *why = "too many startup parameters";
            return GW_STARTUP_BAD;
        }
        if (strcmp(name, "user") == 0)
            out->user = value;
        else if (strcmp(name, "database") == 0)
            out->database = value;
        else if (strcmp(name, "application_name") == 0)
            out->application_name = value;
        else if (strcmp(name, "options") == 0)
            out->options = value; /* applied at the login (gw_startup_options) */
        else if (strncmp(name, "_pq_.", 5) == 0)
            out->unknown_options[out->nunknown_options++] = name;
        /* client_encoding, DateStyle...: accepted and ignored. */
        p = vnul + 1;
    }
    if (out->user == NULL || out->user[0] == '\0') {
        *why = "no user name specified in startup packet";
        return GW_STARTUP_BAD;
    }
    if (out->database == NULL || out->database[0] == '\0')
        out->database = out->user;
    if (out->application_name == NULL)
        out->application_name = "";
    if (out->options == NULL)
        out->options = "";
    return GW_STARTUP_OK;
}

/* One switch of the options: "name=value" (after -c) or "name=value"
** (after --; dash), into fn. */
static int option_setting(char *word, bool dash, gw_option_fn fn, void *arg, char state[6],
                          char *msg, size_t size)
{
    char *eq = strchr(word, '=');
    if (eq == NULL || eq == word) {
        memcpy(state, "42601", 6);
        snprintf(msg, size, dash ? "--%.64s requires a value" : "-c %.64s requires a value", word);
        return -1;
    }
    *eq = '\0';
    for (char *p = word; *p; p++)
        if (*p == '-')
            *p = '_';
    return fn(arg, word, eq + 1, state, msg, size);
}

int gw_startup_options(const char *options, gw_option_fn fn, void *arg, char state[6],
                       char *msg, size_t size)
{
    size_t len = strlen(options);
    /* the words, each NUL-terminated: never longer than the text */
    char *words = base_malloc(len + 1); /* owner: this function */
    if (words == NULL) {
        memcpy(state, "53200", 6);
        snprintf(msg, size, "out of memory");
        return -1;
    }
    size_t n = 0, nwords = 0;
    const char *p = options, *end = options + len;
    while (p < end) { /* each turn ends one word; the text bounds the loop */
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (p == end)
            break;
        while (p < end && !isspace((unsigned char)*p)) {
            if (*p == '\\' && p + 1 < end)
                p++;
            words[n++] = *p++;
        }
        words[n++] = '\0';
        nwords++;
    }
    int rc = 0;
    char *next = words; /* option_setting cuts its word: step before */
    for (size_t i = 0; rc == 0 && i < nwords; i++) {
        char *w = next;
        next = w + strlen(w) + 1;
        if (strncmp(w, "--", 2) == 0) {
            rc = option_setting(w + 2, true, fn, arg, state, msg, size);
        } else if (strcmp(w, "-c") == 0) {
            if (i + 1 == nwords) {
                memcpy(state, "42601", 6);
                snprintf(msg, size, "-c requires a value");
                rc = -1;
                break;
            }
            i++;
            w = next;
            next = w + strlen(w) + 1;
            rc = option_setting(w, false, fn, arg, state, msg, size);
        } else if (strncmp(w, "-c", 2) == 0) {
            rc = option_setting(w + 2, false, fn, arg, state, msg, size);
        } else {
            memcpy(state, "42601", 6);
            snprintf(msg, size, "invalid command-line argument for server process: %.64s", w);
            rc = -1;
        }
    }
    base_free(words);
    return rc;
}

/* ---- extended query protocol: responses -------------------------------------------- */

int gw_msg_empty(base_buf *b, char type)
{
    msg m = msg_begin(b, type);
    return msg_end(&m);
}

int gw_msg_copy_in_response(base_buf *b, int ncols)
{
    msg m = msg_begin(b, 'G');
    uint8_t overall = 0; /* text */
    msg_bytes(&m, &overall, 1);
    msg_u16(&m, (uint16_t)ncols);
    for (int i = 0; i < ncols; i++)
        msg_u16(&m, 0);
    return msg_end(&m);
}

int gw_msg_copy_out_response(base_buf *b, int ncols)
{
    msg m = msg_begin(b, 'H');
    uint8_t overall = 0; /* text */
    msg_bytes(&m, &overall, 1);
    msg_u16(&m, (uint16_t)ncols);
    for (int i = 0; i < ncols; i++)
        msg_u16(&m, 0);
    return msg_end(&m);
}

int gw_msg_copy_data(base_buf *b, const void *data, size_t len)
{
    msg m = msg_begin(b, 'd');
    msg_bytes(&m, data, len);
    return msg_end(&m);
}

int gw_msg_parameter_description(base_buf *b, int nparams, const uint32_t *oids)
{
    msg m = msg_begin(b, 't');
    msg_u16(&m, (uint16_t)nparams);
    for (int i = 0; i < nparams; i++)
        msg_u32(&m, oids[i]);
    return msg_end(&m);
}

/* ---- extended query protocol: decoding ------------------------------------------------
** A reader over one message body. Every read checks the bytes left; the
** first failure sets why and later reads return zeros. */
typedef struct rd {
    const uint8_t *p, *end;
    const char *why;
} rd;

static bool rd_need(rd *r, size_t n)
{
    if (r->why)
        return false;
    if ((size_t)(r->end - r->p) < n) {
        r->why = "invalid message format: message too short";
        return false;
    }
    return true;
}

static uint32_t rd_u32(rd *r)
{
    if (!rd_need(r, 4))
        return 0;
    uint32_t v = gw_get_u32(r->p);
    r->p += 4;
    return v;
}

static uint16_t rd_u16(rd *r)
{
    if (!rd_need(r, 2))
        return 0;
    uint16_t v = (uint16_t)((r->p[0] << 8) | r->p[1]);
    r->p += 2;
    return v;
}

static const char *rd_str(rd *r, size_t *len)
{
    if (r->why)
        return "";
    const uint8_t *nul = memchr(r->p, 0, (size_t)(r->end - r->p));
    if (nul == NULL) {
        r->why = "invalid message format: missing string terminator";
        return "";
    }
    const char *str = (const char *)r->p;
    if (len)
        *len = (size_t)(nul - r->p);
    r->p = nul + 1;
    return str;
}

static int rd_finish(rd *r, const char **why)
{
    if (!r->why && r->p != r->end)
        r->why = "invalid message format: extra bytes at the end of the message";
    *why = r->why;
    return r->why ? -1 : 0;
}

static bool name_ok(rd *r, const char *name)
{
    if (!r->why && strlen(name) > GW_EXT_NAME_BYTES_MAX)
        r->why = "invalid message format: statement or portal name too long";
    return r->why == NULL;
}

void gw_ext_msg_free(gw_ext_msg *m)
{
    base_free(m->param_oids);
    base_free(m->values);
    base_free(m->formats);
    base_free(m->result_formats);
    memset(m, 0, sizeof *m);
}

static int16_t *rd_formats(rd *r, int *n)
{
    uint16_t k = rd_u16(r);
    *n = k;
    if (k == 0 || !rd_need(r, (size_t)k * 2))
        return NULL;
    int16_t *f = base_malloc(sizeof(int16_t) * k);
    if (f == NULL) {
        r->why = "out of memory";
        return NULL;
    }
    for (int i = 0; i < k; i++) {
        f[i] = (int16_t)rd_u16(r);
        if (f[i] != 0 && f[i] != 1 && !r->why)
            r->why = "invalid message format: format code must be 0 or 1";
    }
    return f;
}

int gw_decode_ext(char type, const uint8_t *body, uint32_t len, gw_ext_msg *out,
                  const char **why)
{
    rd r = {body, body + len, NULL};
    memset(out, 0, sizeof *out);
    out->type = type;
    switch (type) {
    case 'P': {
        out->stmt = rd_str(&r, NULL);
        name_ok(&r, out->stmt);
        out->query = rd_str(&r, &out->query_len);
        uint16_t n = rd_u16(&r);
        /* n is a u16: at most GW_EXT_PARAMS_MAX (65535) by construction */
        if (n > 0 && rd_need(&r, (size_t)n * 4)) {
            out->param_oids = base_malloc(sizeof(uint32_t) * n);
            if (out->param_oids == NULL) {
                r.why = "out of memory";
                break;
            }
            for (int i = 0; i < n; i++)
                out->param_oids[i] = rd_u32(&r);
            out->nparam_oids = n;
        }
        break;
    }
    case 'B': {
        out->portal = rd_str(&r, NULL);
        name_ok(&r, out->portal);
        out->stmt = rd_str(&r, NULL);
        name_ok(&r, out->stmt);
        out->formats = rd_formats(&r, &out->nformats);
        if (r.why)
            break;
        uint16_t n = rd_u16(&r);
        /* each value takes at least its 4 length bytes: the count is
        ** bounded by the message, so is the array */
        if (n > 0 && rd_need(&r, (size_t)n * 4)) {
            out->values = base_calloc(n, sizeof(sqlv_cell));
            if (out->values == NULL) {
                r.why = "out of memory";
                break;
            }
            out->nvalues = n;
            for (int i = 0; i < n && !r.why; i++) {
                uint32_t vlen = rd_u32(&r);
                if (vlen == 0xffffffffu) {
                    out->values[i].data = NULL; /* NULL */
                    continue;
                }
                if (vlen > INT32_MAX) {
                    r.why = "invalid message format: negative parameter length";
                    break;
                }
                if (!rd_need(&r, vlen))
                    break;
                out->values[i].data = (const char *)r.p;
                out->values[i].len = vlen;
                r.p += vlen;
            }
        }
        if (r.why)
            break;
        if (out->nformats > 1 && out->nformats != out->nvalues) {
            r.why = "invalid message format: parameter format count does not match";
            break;
        }
        out->result_formats = rd_formats(&r, &out->nresult_formats);
        break;
    }
    case 'D':
    case 'C': {
        out->kind = (char)(rd_need(&r, 1) ? *r.p++ : 0);
        if (!r.why && out->kind != 'S' && out->kind != 'P')
            r.why = type == 'D' ? "invalid DESCRIBE message subtype"
                                : "invalid CLOSE message subtype";
        const char *name = rd_str(&r, NULL);
        name_ok(&r, name);
        if (out->kind == 'S')
            out->stmt = name;
        else
            out->portal = name;
        break;
    }
    case 'E':
        out->portal = rd_str(&r, NULL);
        name_ok(&r, out->portal);
        out->max_rows = rd_u32(&r);
        if (out->max_rows > INT32_MAX)
            out->max_rows = 0; /* a negative count: all rows, as PostgreSQL */
        break;
    case 'S':
    case 'H':
        break;
    default:
        r.why = "not an extended-protocol message";
        break;
    }
    if (rd_finish(&r, why) != 0) {
        gw_ext_msg_free(out);
        return -1;
    }
    return 0;
}
