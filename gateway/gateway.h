/*
** gateway/: the PostgreSQL wire protocol (v3) server on libuv.
**
** The event loop owns the sockets and does all network I/O; SQL runs on
** worker threads (see docs/decisions/ for the threading decision). The
** gateway is started and stopped from one thread.
*/
#ifndef MERIDIAN_GATEWAY_H
#define MERIDIAN_GATEWAY_H

#include <stdint.h>

#include "security/security.h"
#include "sql/sql.h"

enum {
    GW_OK = 0,
    GW_ERR_NOMEM = -6001,
    GW_ERR_LISTEN = -6002, /* bind/listen failed (message logged) */
};

typedef struct gw_options {
    const char *host; /* "127.0.0.1" */
    int port;         /* 0: pick a free port (see gw_port) */
    int max_connections;          /* 0: default 256 */
    uint32_t max_message_bytes;   /* 0: default 64 MiB */
    /* Added: a socket that has not completed its startup packet within
    ** this time gets 08P01 and is closed. 0: default 60000. */
    uint32_t startup_timeout_ms;
    /* Added (issue 9): TLS for client connections, borrowed (must outlive
    ** gw_stop; sec_tls_reload on it is fine while serving). NULL: insecure
    ** mode, SSLRequest answered 'N'. Non-NULL: SSLRequest answered 'S' and
    ** the handshake runs on the loop thread; a StartupMessage without TLS
    ** gets FATAL 28000 "connection requires SSL/TLS" (hostssl-like). */
    sec_tls_ctx *tls;
} gw_options;

typedef struct gw_server gw_server; /* opaque */

/* Bind and start serving on a thread of its own. engine is borrowed.
** owner of *out: caller, gw_stop. Each session runs its SQL on a thread of
** its own (docs/decisions/002-session-threads.md). Sets SIGPIPE to ignored
** if it was the default. */
int gw_start(sqlv_engine *engine, const gw_options *opts, gw_server **out);
int gw_port(const gw_server *s); /* the bound port */
/* Close the listener, terminate sessions (rolling back their txns), join
** threads, free. Running statements are cancelled with sqlv_session_cancel;
** gw_stop returns once each has returned. */
void gw_stop(gw_server *s);

#endif
