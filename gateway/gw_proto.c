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
#include <errno.h>
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
        msg_u16(&m, 0);                      /* text format */
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

static int notice_or_error(base_buf *b, char type, const char *severity,
                           const char *sqlstate, const char *message)
{
    msg m = msg_begin(b, type);
    msg_bytes(&m, "S", 1);
    msg_str(&m, severity);
    msg_bytes(&m, "V", 1);
    msg_str(&m, severity);
    msg_bytes(&m, "C", 1);
    msg_str(&m, sqlstate);
    msg_bytes(&m, "M", 1);
    msg_str(&m, message ? message : "");
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
        else if (strncmp(name, "_pq_.", 5) == 0)
            out->unknown_options[out->nunknown_options++] = name;
        /* options, client_encoding, DateStyle...: accepted and ignored. */
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
    return GW_STARTUP_OK;
}
