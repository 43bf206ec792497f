/* Helpers for gateway tests: raw protocol sockets and libpq connections. */
#ifndef MERIDIAN_TESTS_GW_TEST_UTIL_H
#define MERIDIAN_TESTS_GW_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "base/base.h"

/* Every blocking read in the tests gives up after this long. */
#define TU_IO_TIMEOUT_MS 10000

/* A blocking loopback socket with receive/send timeouts; -1 on failure. */
int tu_connect(int port);
int tu_send(int fd, const void *p, size_t n);   /* 0 or -1 (no SIGPIPE) */
void tu_put_u32(base_buf *b, uint32_t v);
/* Append a startup packet for protocol 3.0 (user may be NULL: omitted). */
void tu_startup(base_buf *b, const char *user, const char *database);
/* Append a message: type, length, body. */
void tu_msg(base_buf *b, char type, const void *body, size_t n);
void tu_query(base_buf *b, const char *sql);
/* Read exactly n bytes: 0, or -1 on EOF/error/timeout. */
int tu_read_exact(int fd, void *p, size_t n);
/* Read one message: 0 with *type and body (reset first), -1 on EOF. */
int tu_read_msg(int fd, char *type, base_buf *body);
/* Read messages until ReadyForQuery; types[] gets each type (NUL-ended,
** truncated to cap-1), *status the 'Z' status, sqlstate the first error's
** code ("" if none). 0, or -1 on EOF. */
int tu_read_until_ready(int fd, char *types, size_t cap, char *status, char sqlstate[6]);
/* Extract field code (e.g. 'C') from an ErrorResponse body into out. */
void tu_error_field(const base_buf *body, char code, char *out, size_t cap);
/* True when the peer closes (EOF or reset) within the timeout, after
** discarding whatever comes first. */
bool tu_wait_closed(int fd);
/* Open a session: startup, read until ReadyForQuery. pid/secret may be NULL. */
int tu_session(int port, const char *user, uint32_t *pid, uint32_t *secret);

/* libpq: connect to 127.0.0.1:port with extra conninfo (may be ""). */
PGconn *tu_pq(int port, const char *extra);

#endif
