/*
** gateway/: the PostgreSQL wire protocol (v3) server on libuv.
**
** The event loop owns the sockets and does all network I/O; SQL runs on
** worker threads (see docs/decisions/ for the threading decision). The
** gateway is started and stopped from one thread.
*/
#ifndef MERIDIAN_GATEWAY_H
#define MERIDIAN_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include "security/security.h"
#include "sql/sql.h"

enum {
    GW_OK = 0,
    GW_ERR_NOMEM = -6001,
    GW_ERR_LISTEN = -6002, /* bind/listen failed (message logged) */
    GW_ERR_INVALID = -6003, /* bad argument */
    GW_ERR_STOPPED = -6004, /* the gateway is stopping */
    GW_ERR_LIMIT = -6005,   /* a named limit was hit (GW_ADOPT_*) */
};

/* gw_options.port: no listener of its own; connections arrive only through
** gw_adopt_connection (SQL on the RPC port, see rpc_uv_config's
** foreign_connection). gw_port then returns GW_PORT_NONE. */
#define GW_PORT_NONE (-1)
/* gw_adopt_connection: sockets handed over and not yet taken by the loop;
** bytes of prefix accepted. */
#define GW_ADOPT_PENDING_MAX 256
#define GW_ADOPT_PREFIX_MAX_BYTES (1024u * 1024)

/* Who may log in (docs/security.md, "Authentication"). */
typedef enum gw_auth_mode {
    GW_AUTH_DEFAULT = 0, /* GW_AUTH_REQUIRED when tls is set, GW_AUTH_TRUST without */
    GW_AUTH_TRUST,       /* every user, without credentials (--insecure nodes) */
    /* A client certificate whose CN is the user (a role of the key space),
    ** else SCRAM-SHA-256 with the user's password; else refused. Without
    ** tls the exchange runs in the clear: tests only. */
    GW_AUTH_REQUIRED,
} gw_auth_mode;

/* Authentication limits: a source address that failed
** GW_AUTH_FAILURES_BURST logins in a row is refused (FATAL 28000) until
** GW_AUTH_REFILL_MS passes per further attempt (5 per 10 s); at most
** GW_AUTH_SOURCES_MAX addresses are remembered (the closest to forgiven
** goes first). An unauthenticated client may send SASL messages of
** GW_AUTH_MESSAGE_MAX_BYTES at most, and must finish within
** startup_timeout_ms of connecting. */
#define GW_AUTH_FAILURES_BURST 5
#define GW_AUTH_REFILL_MS 2000
#define GW_AUTH_SOURCES_MAX 1024
#define GW_AUTH_MESSAGE_MAX_BYTES 2048u

typedef struct gw_options {
    const char *host; /* "127.0.0.1" */
    int port;         /* 0: pick a free port (see gw_port); GW_PORT_NONE: no
                         listener, gw_adopt_connection only */
    int max_connections;          /* 0: default 256 */
    uint32_t max_message_bytes;   /* 0: default 64 MiB */
    /* Added: a socket that has not completed its startup packet within
    ** this time gets 08P01 and is closed; one that has not completed its
    ** login (TLS, SCRAM) gets 57014. 0: default 10000. */
    uint32_t startup_timeout_ms;
    /* Added (issue 9): TLS for client connections, borrowed (must outlive
    ** gw_stop; sec_tls_reload on it is fine while serving). NULL: insecure
    ** mode, SSLRequest answered 'N'. Non-NULL: SSLRequest answered 'S' and
    ** the handshake runs on the loop thread; a StartupMessage without TLS
    ** gets FATAL 28000 "connection requires SSL/TLS" (hostssl-like). */
    sec_tls_ctx *tls;
    /* Added (issue 9): see gw_auth_mode. The user record is read through
    ** sqlv_auth_lookup on the session's worker thread. */
    gw_auth_mode auth;
    /* Added (issue 9, hostile input; docs/gateway.md "Limits"). 0: default.
    ** Sessions of one user at once (counted when the login succeeds, so an
    ** unauthenticated client cannot lock a user out): beyond it FATAL 53300
    ** "too many connections for role". 0: no limit but max_connections. */
    int max_connections_per_user;
    /* An authenticated client that leaves a message incomplete this long
    ** (slowloris) gets FATAL 08P01 and is closed. 0: default 30000. */
    uint32_t message_timeout_ms;
    /* Result bytes a session may hold for its client at once (one DataRow
    ** larger than this fails its statement with 53200; the session goes
    ** on). 0: default 64 MiB. */
    uint32_t max_result_bytes;
} gw_options;

typedef struct gw_server gw_server; /* opaque */

/* Bind and start serving on a thread of its own. engine is borrowed.
** owner of *out: caller, gw_stop. Each session runs its SQL on a thread of
** its own (docs/decisions/002-session-threads.md). Sets SIGPIPE to ignored
** if it was the default. */
int gw_start(sqlv_engine *engine, const gw_options *opts, gw_server **out);
int gw_port(const gw_server *s); /* the bound port, or GW_PORT_NONE */
/* Serve socket fd (connected, from another loop: the RPC listener that
** recognised a PostgreSQL client) exactly as an accepted connection whose
** first bytes received were prefix[0..prefix_len): an SSLRequest in the
** prefix gets 'S' and TLS as usual. Thread-safe; call it from any thread
** until gw_stop starts (a node stops its RPC transport, the caller, first).
** fd: owned by the gateway from the call on, also when it fails (it is
** closed then). prefix is copied. 0, GW_ERR_INVALID (fd < 0, prefix over
** GW_ADOPT_PREFIX_MAX_BYTES), GW_ERR_LIMIT (GW_ADOPT_PENDING_MAX waiting),
** GW_ERR_STOPPED, GW_ERR_NOMEM. The usual limits (max_connections,
** startup timeout) apply once the loop takes it. */
int gw_adopt_connection(gw_server *gw, int fd, const uint8_t *prefix, size_t prefix_len);
/* Close the listener, terminate sessions (rolling back their txns), join
** threads, free. Running statements are cancelled with sqlv_session_cancel;
** gw_stop returns once each has returned. */
void gw_stop(gw_server *s);

#endif
