/*
** fuzz/fuzz_pgwire.c: the PostgreSQL wire protocol as a client's bytes
** reach gateway/ (gw_proto.c: gw_parse_startup, gw_startup_options, gw_decode_ext,
** gw_parse_sasl_initial), framed the way gw_server.c's conn_process frames
** them.
**
** Input: the byte stream of one connection. First startup packets (u32
** length with itself, then the code): SSLRequest/GSSENCRequest leave the
** harness waiting for another startup packet, as an --insecure node does
** after answering 'N'; a CancelRequest or a refused packet ends the input;
** a protocol 3.0 packet moves on to messages (type byte, u32 length with
** itself, body). Each body is copied into an allocation of its exact size
** so that AddressSanitizer sees a read past its end; each message goes to
** the decoder the gateway uses for its type, and what was decoded is
** encoded back into responses (echoing decoded strings).
**
** Invariants: see fuzz.h. The harness keeps the gateway's limits
** (GW_STARTUP_PACKET_MAX_BYTES, GW_AUTH_MESSAGE_MAX_BYTES before the
** login); the module functions must handle any body within them.
*/
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fuzz/fuzz.h"
#include "gateway/gw_int.h"
#include "security/security.h"

/* Messages of one input decoded at most (a bound on the work per input). */
#define FUZZ_PGWIRE_MESSAGES_MAX 4096
/* The message length limit after the login (the gateway's default is 64 MiB;
** inputs are far smaller, so any length that fits is accepted). */
#define FUZZ_PGWIRE_MESSAGE_MAX_BYTES (1024u * 1024)

typedef enum { ST_STARTUP, ST_AUTH, ST_READY } fuzz_state;

/* Encode a few responses from the decoded startup packet: the server echoes
** the unknown options (NegotiateProtocolVersion) and names in messages. */
/* gw_option_fn: each setting of the startup options, echoed as the
** session would report it. */
static int echo_option(void *arg, const char *name, const char *value, char state[6], char *msg,
                       size_t size)
{
    (void)state;
    (void)msg;
    (void)size;
    return gw_msg_parameter_status(arg, name, value) == 0 ? 0 : 1;
}

static void echo_startup(const gw_startup *st)
{
    base_buf b = {0};
    char state[6], msg[256];
    if (st->options != NULL) /* the worker splits them at the login */
        (void)gw_startup_options(st->options, echo_option, &b, state, msg, sizeof msg);
    if (st->nunknown_options > 0)
        (void)gw_msg_negotiate_version(&b, 0, st->nunknown_options, st->unknown_options);
    if (st->user != NULL)
        (void)gw_msg_parameter_status(&b, "session_authorization", st->user);
    if (st->application_name != NULL)
        (void)gw_msg_parameter_status(&b, "application_name", st->application_name);
    base_buf_free(&b);
}

static void echo_error(const char *why)
{
    base_buf b = {0};
    (void)gw_msg_error(&b, "ERROR", "08P01", why);
    base_buf_free(&b);
}

/* The SASLInitialResponse of a login: the mechanism and the client-first
** message, which the worker hands to sec_scram_server_step (fuzz_scram.c
** goes on from there). */
static void one_sasl(const uint8_t *body, uint32_t len)
{
    const char *mechanism = NULL;
    const uint8_t *data = NULL;
    size_t data_len = 0;
    const char *why = NULL;
    if (gw_parse_sasl_initial(body, len, &mechanism, &data, &data_len, &why) != 0) {
        echo_error(why);
        return;
    }
    /* the worker compares the mechanism and copies the data */
    if (strcmp(mechanism, SEC_SCRAM_MECHANISM) == 0 && data_len > 0) {
        char *copy = base_malloc(data_len);
        if (copy != NULL) {
            memcpy(copy, data, data_len);
            base_free(copy);
        }
    }
}

static void one_ext(char type, const uint8_t *body, uint32_t len)
{
    gw_ext_msg m;
    const char *why = NULL;
    if (gw_decode_ext(type, body, len, &m, &why) != 0) {
        echo_error(why);
        return;
    }
    base_buf b = {0};
    if (m.type == 'P' && m.nparam_oids > 0)
        (void)gw_msg_parameter_description(&b, m.nparam_oids, m.param_oids);
    if (m.type == 'B' && m.nvalues > 0) {
        /* a Bind's values as a row: every value's bytes are read */
        (void)gw_msg_data_row(&b, m.nvalues, m.values);
    }
    if (m.stmt != NULL)
        (void)gw_msg_command_complete(&b, m.stmt);
    if (m.portal != NULL)
        (void)gw_msg_command_complete(&b, m.portal);
    base_buf_free(&b);
    gw_ext_msg_free(&m);
}

/* One message body (exact-size copy). Returns false when the connection
** would be closed. */
static bool one_message(fuzz_state *state, uint8_t type, const uint8_t *body, uint32_t len)
{
    if (*state == ST_AUTH) {
        if (type != 'p')
            return false;
        one_sasl(body, len);
        *state = ST_READY; /* the login is the SCRAM harness's business */
        return true;
    }
    switch (type) {
    case 'Q':
        /* start_query: the body must end with the terminator */
        if (len == 0 || body[len - 1] != '\0')
            return false;
        return true;
    case 'P': case 'B': case 'E': case 'D': case 'C': case 'S': case 'H':
        one_ext((char)type, body, len);
        return true;
    case 'd': case 'c': case 'f': case 'F':
        return true;
    default:
        return false; /* 'X' and unknown types close the connection */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_INPUT_MAX_BYTES)
        return 0;
    fuzz_state state = ST_STARTUP;
    size_t pos = 0;
    for (int n = 0; n < FUZZ_PGWIRE_MESSAGES_MAX && pos < size; n++) {
        size_t avail = size - pos;
        const uint8_t *p = data + pos;
        if (state == ST_STARTUP) {
            if (avail < 4)
                break;
            uint32_t len = gw_get_u32(p);
            if (len < 8 || len > GW_STARTUP_PACKET_MAX_BYTES || avail < len)
                break;
            uint8_t *pkt = base_malloc(len);
            if (pkt == NULL)
                break;
            memcpy(pkt, p, len);
            pos += len;
            gw_startup st;
            const char *why = NULL;
            int rc = gw_parse_startup(pkt, len, &st, &why);
            bool more = false;
            if (rc != GW_STARTUP_OK) {
                echo_error(why);
            } else if (st.code == GW_SSL_REQUEST_CODE || st.code == GW_GSSENC_REQUEST_CODE) {
                more = true; /* 'N', then another startup packet */
            } else if (st.code != GW_CANCEL_REQUEST_CODE) {
                echo_startup(&st);
                /* a password login when a SASL message follows (the
                ** node's mode decides that; here the client does) */
                state = (pos < size && data[pos] == 'p') ? ST_AUTH : ST_READY;
                more = true;
            }
            base_free(pkt);
            if (!more)
                break;
            continue;
        }
        if (avail < 5)
            break;
        uint8_t type = p[0];
        uint32_t len = gw_get_u32(p + 1);
        uint32_t max = state == ST_AUTH ? GW_AUTH_MESSAGE_MAX_BYTES : FUZZ_PGWIRE_MESSAGE_MAX_BYTES;
        if (len < 4 || len > max || avail - 1 < len)
            break;
        uint32_t body_len = len - 4;
        /* malloc(0) may return NULL: keep one byte so a body always exists */
        uint8_t *body = base_malloc(body_len ? body_len : 1);
        if (body == NULL)
            break;
        memcpy(body, p + 5, body_len);
        pos += 1 + (size_t)len;
        bool keep = one_message(&state, type, body, body_len);
        base_free(body);
        if (!keep)
            break;
    }
    return 0;
}
