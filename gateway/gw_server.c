/*
** gw_server.c: the libuv side of the gateway. One loop thread owns the
** listener and every client socket: it reads, frames and dispatches
** messages, and writes every byte that goes out. SQL runs on the
** connection's worker thread (gw_worker.c).
**
** Connection life:
**   STARTUP --startup packet--> BUSY (worker opens the session)
**   BUSY --login needs a SASL message--> AUTH --'p'--> BUSY (worker) ...
**   BUSY --job done--> READY --'Q'--> BUSY ...
**   READY --Parse/Bind/Describe/Execute/Close/Sync--> BUSY (worker)
**   BUSY --extended message failed--> DISCARD --Sync--> BUSY --> READY
**   BUSY --COPY FROM STDIN entered--> COPY --any message--> BUSY (worker)
**   BUSY --a CopyData failed (Query COPY)--> COPY_DISCARD
**        --CopyDone/CopyFail--> READY (ReadyForQuery from the loop)
**   any --EOF, error, 'X', bad input, gw_stop--> CLOSING --> freed
**
** Critical invariants:
**   - Only the loop thread touches a socket; workers only append to
**     gw_conn.out under gw_conn.mu and wake the loop with server->wake.
**   - The loop processes a connection's input only when no job runs
**     (state READY/DISCARD/COPY/COPY_DISCARD/STARTUP/AUTH), so response bytes keep protocol order:
**     the loop writes a worker's bytes before it looks at job_done.
**   - A gw_conn is freed only when its handle is closed and its worker
**     thread is joined; the worker closes the session (rolling back) first.
**   - server->wake stays open until every connection is freed, so a worker
**     may always uv_async_send it.
**   - Bad input from a client never asserts: it gets an ErrorResponse and
**     its own connection is closed.
**   - TLS (server->tls set): after 'S' every byte to or from the socket
**     passes through c->tls (conn_write encrypts, tls_input decrypts into
**     c->in), so the framing above never sees ciphertext. A startup packet
**     that arrives without TLS gets FATAL 28000 (only CancelRequest, whose
**     secret is its authentication, is served in the clear). A TLS failure
**     closes only its own connection, with a log line.
**   - Authentication (auth_required): until the login is done
**     (c->authenticated) the startup timer runs, only 'p' (at most
**     GW_AUTH_MESSAGE_MAX_BYTES) and 'X' are accepted from the client, and
**     an address over its limit of failed logins is refused at its startup
**     packet, before any thread or lookup.
**   - Hostile input (issue 9): input_timer bounds the startup and login
**     (startup_timeout_ms), then each incomplete message
**     (message_timeout_ms; restarted only when a message completes);
**     stmt_timer runs statement_timeout while a Query/extended job runs (it
**     only cancels, again every GW_CANCEL_REPEAT_MS) and
**     idle_in_transaction_session_timeout while idle in a block (FATAL
**     25P03), or idle_session_timeout while idle outside one (FATAL
**     57P05). Both are closed with the socket.
**   - Adopted sockets (gw_adopt_connection, from another thread) wait in
**     server->adopt_head under adopt_mu; the loop takes them on the
**     `adopt` async. Once on_stop sets adopt_closed (under adopt_mu) no
**     record is added and the async is no longer sent, so closing it is
**     safe; every fd is closed exactly once (by its record or its handle).
*/
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gw_int.h"

#define GW_LISTEN_BACKLOG 128
/* Plaintext room reserved per sec_tls_conn_read (one TLS record). */
#define GW_TLS_READ_BYTES (16u * 1024 + 256)
/* take_out rounds per flush (one suffices: a memory BIO gives all it has). */
#define GW_TLS_FLUSH_ROUNDS_MAX 16

typedef struct gw_write {
    uv_write_t req;
    gw_conn *c;
    uint8_t *data; /* owner: this write, base_free */
    size_t len;
} gw_write;

static void conn_process(gw_conn *c);
static void conn_close(gw_conn *c);
static void tls_flush(gw_conn *c);
static void on_stmt_timer(uv_timer_t *t);
static void on_input_timeout(uv_timer_t *t);

/* ---- freeing --------------------------------------------------------------- */

static void server_maybe_finish(gw_server *s)
{
    if (s->stopping && s->conns == NULL && !uv_is_closing((uv_handle_t *)&s->wake))
        uv_close((uv_handle_t *)&s->wake, NULL);
}

static void conn_maybe_free(gw_conn *c)
{
    if (c->handles_open > 0 || c->has_worker)
        return;
    gw_server *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (c->user_counted) { /* the worker is joined: no lock needed for c */
        uv_mutex_lock(&s->auth_mu);
        gw_user_release(&s->user_counts, c->user);
        uv_mutex_unlock(&s->auth_mu);
    }
    if (c->counted) {
        s->nsessions--;
        BASE_INFO("gateway", "session %u closed", c->pid);
    } else {
        BASE_DEBUG("gateway", "connection %u closed", c->pid);
    }
    sec_tls_conn_free(c->tls);
    base_buf_free(&c->raw);
    base_buf_free(&c->in);
    base_buf_free(&c->out);
    base_buf_free(&c->wbuf);
    base_free(c->job_query);
    base_free(c->user);
    base_free(c->database);
    base_free(c->application_name);
    base_free(c->options);
    base_free(c->cert_user);
    uv_cond_destroy(&c->cond);
    uv_mutex_destroy(&c->mu);
    base_free(c);
    server_maybe_finish(s);
}

static void on_close(uv_handle_t *h)
{
    gw_conn *c = h->data;
    assert(c->handles_open > 0);
    c->handles_open--;
    conn_maybe_free(c);
}

static void conn_close_timer(gw_conn *c)
{
    if (!c->timer_closing) {
        c->timer_closing = true;
        uv_close((uv_handle_t *)&c->input_timer, on_close);
        uv_close((uv_handle_t *)&c->stmt_timer, on_close);
    }
}

/* Tell the worker to finish (cancelling a running statement). */
static void conn_stop_worker(gw_conn *c)
{
    uv_mutex_lock(&c->mu);
    c->closing = true;
    if (c->job_running && c->live_session != NULL)
        sqlv_session_cancel(c->live_session);
    uv_cond_broadcast(&c->cond);
    uv_mutex_unlock(&c->mu);
}

/* Close now: pending writes are dropped. */
static void conn_close(gw_conn *c)
{
    c->state = GW_CONN_CLOSING;
    conn_stop_worker(c);
    conn_close_timer(c);
    if (!c->handle_closing) {
        c->handle_closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_close);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    gw_conn *c = req->data;
    if (!c->handle_closing) {
        c->handle_closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_close);
    }
}

/* Close once the bytes already queued are written (an error message). */
static void conn_close_after_flush(gw_conn *c)
{
    if (c->handle_closing || c->shutting_down)
        return;
    c->state = GW_CONN_CLOSING;
    conn_stop_worker(c);
    conn_close_timer(c);
    if (c->tls != NULL && sec_tls_conn_handshake_done(c->tls) &&
        sec_tls_conn_shutdown(c->tls) == 0)
        tls_flush(c); /* close_notify */
    if (c->handle_closing)
        return;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) == 0)
        c->shutting_down = true;
    else
        conn_close(c);
}

/* ---- writing ------------------------------------------------------------------ */

static void inflight_sub(gw_conn *c, size_t len)
{
    uv_mutex_lock(&c->mu);
    assert(c->inflight_bytes >= len);
    c->inflight_bytes -= len;
    uv_cond_broadcast(&c->cond);
    uv_mutex_unlock(&c->mu);
}

static void on_write(uv_write_t *req, int status)
{
    gw_write *w = (gw_write *)req;
    gw_conn *c = w->c;
    inflight_sub(c, w->len);
    base_free(w->data);
    base_free(w);
    if (status < 0 && !c->handle_closing) {
        BASE_DEBUG("gateway", "connection %u write failed: %s", c->pid, uv_strerror(status));
        conn_close(c);
    }
}

/* Write data to the socket as is (owner: moves to this call). counted:
** len is already in inflight_bytes. */
static void conn_write_raw(gw_conn *c, uint8_t *data, size_t len, bool counted)
{
    if (len == 0 || c->handle_closing || c->shutting_down) {
        base_free(data);
        if (counted)
            inflight_sub(c, len);
        return;
    }
    gw_write *w = base_malloc(sizeof *w);
    if (w == NULL) {
        base_free(data);
        if (counted)
            inflight_sub(c, len);
        conn_close(c);
        return;
    }
    if (!counted) {
        uv_mutex_lock(&c->mu);
        c->inflight_bytes += len;
        uv_mutex_unlock(&c->mu);
    }
    w->c = c;
    w->data = data;
    w->len = len;
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned int)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
    if (rc < 0) {
        inflight_sub(c, len);
        base_free(data);
        base_free(w);
        conn_close(c);
    }
}

/* Move the ciphertext the TLS stream holds to the socket. */
static void tls_flush(gw_conn *c)
{
    for (int round = 0; round < GW_TLS_FLUSH_ROUNDS_MAX && !c->handle_closing; round++) {
        size_t n = sec_tls_conn_pending_out(c->tls);
        if (n == 0)
            return;
        uint8_t *data = base_malloc(n);
        if (data == NULL) {
            conn_close(c);
            return;
        }
        size_t got = sec_tls_conn_take_out(c->tls, data, n);
        conn_write_raw(c, data, got, false);
    }
}

/* Write protocol bytes (owner of data: moves to this call), encrypted when
** the connection uses TLS. counted: len is already in inflight_bytes. */
static void conn_write(gw_conn *c, uint8_t *data, size_t len, bool counted)
{
    if (c->tls == NULL) {
        conn_write_raw(c, data, len, counted);
        return;
    }
    int rc = 0;
    if (len > 0 && !c->handle_closing && !c->shutting_down)
        rc = sec_tls_conn_write(c->tls, data, len);
    base_free(data);
    if (rc == 0)
        tls_flush(c);
    if (counted)
        inflight_sub(c, len);
    if (rc != 0) {
        BASE_WARN("gateway", "connection %u: TLS write failed: %s (%s)", c->pid,
                  sec_error_str(rc), sec_tls_conn_error(c->tls));
        conn_close(c);
    }
}

/* Write and release b (owner: the caller's buffer, emptied). */
static void conn_send_buf(gw_conn *c, base_buf *b)
{
    uint8_t *data = b->data;
    size_t len = b->len;
    *b = (base_buf){0};
    conn_write(c, data, len, false);
}

/* Send an error (FATAL) and close the connection once it is written. */
static void conn_fatal(gw_conn *c, const char *sqlstate, const char *message)
{
    BASE_DEBUG("gateway", "connection %u: %s %s", c->pid, sqlstate, message);
    base_buf b = {0};
    if (gw_msg_error(&b, "FATAL", sqlstate, message) == 0)
        conn_send_buf(c, &b);
    base_buf_free(&b);
    conn_close_after_flush(c);
}

static void conn_send_error(gw_conn *c, const char *sqlstate, const char *message)
{
    base_buf b = {0};
    if (gw_msg_error(&b, "ERROR", sqlstate, message) != 0) {
        conn_close(c);
        return;
    }
    conn_send_buf(c, &b);
}

static char conn_txn_status(gw_conn *c)
{
    uv_mutex_lock(&c->mu);
    char st = c->txn_status;
    uv_mutex_unlock(&c->mu);
    return st;
}

static void conn_send_ready(gw_conn *c)
{
    base_buf b = {0};
    if (gw_msg_ready_for_query(&b, conn_txn_status(c)) != 0) {
        conn_close(c);
        return;
    }
    conn_send_buf(c, &b);
}

/* ---- input ------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    gw_conn *c = h->data;
    base_buf *b = c->tls != NULL ? &c->raw : &c->in;
    if (base_buf_reserve(b, GW_READ_CHUNK_BYTES) != 0) {
        *buf = uv_buf_init(NULL, 0); /* read callback gets UV_ENOBUFS */
        return;
    }
    *buf = uv_buf_init((char *)b->data + b->len, (unsigned int)(b->cap - b->len));
}

/* Log the handshake outcome once: version and the client certificate's CN
** (handle_startup takes the CN for the login, docs/security.md). */
static void tls_log_handshake(gw_conn *c)
{
    if (c->tls_logged || !sec_tls_conn_handshake_done(c->tls))
        return;
    c->tls_logged = true;
    char cn[SEC_USER_SIZE_MAX + 1];
    if (sec_tls_conn_peer_cn(c->tls, cn, sizeof cn) == 0)
        BASE_INFO("gateway", "connection %u: %s established, client certificate CN=%s", c->pid,
                  sec_tls_conn_version(c->tls), cn);
    else
        BASE_INFO("gateway", "connection %u: %s established, no client certificate", c->pid,
                  sec_tls_conn_version(c->tls));
}

/* Ciphertext in c->raw: feed it, decrypt everything into c->in, send what
** the stream wants sent (handshake records, alerts), then frame. */
static void tls_input(gw_conn *c)
{
    int rc = sec_tls_conn_feed(c->tls, c->raw.data, c->raw.len);
    c->raw.len = 0;
    if (c->raw.cap > GW_INPUT_KEEP_BYTES)
        base_buf_free(&c->raw);
    /* Bounded by the ciphertext fed (at most SEC_TLS_IN_PENDING_MAX): each
    ** round consumes at least one record, and the loop ends at 0 bytes. */
    while (rc == 0) {
        if (base_buf_reserve(&c->in, GW_TLS_READ_BYTES) != 0) {
            rc = SEC_ERR_NOMEM;
            break;
        }
        size_t n = 0;
        rc = sec_tls_conn_read(c->tls, c->in.data + c->in.len, c->in.cap - c->in.len, &n);
        if (n == 0)
            break;
        c->in.len += n;
    }
    tls_log_handshake(c);
    tls_flush(c);
    if (rc == SEC_ERR_CLOSED) {
        BASE_DEBUG("gateway", "connection %u: TLS close_notify", c->pid);
        conn_close(c);
        return;
    }
    if (rc != 0) {
        BASE_WARN("gateway", "connection %u: TLS %s failed: %s (%s); closing", c->pid,
                  sec_tls_conn_handshake_done(c->tls) ? "stream" : "handshake",
                  sec_tls_conn_error(c->tls), sec_error_str(rc));
        conn_close_after_flush(c); /* the alert, if any, goes out first */
        return;
    }
    if (!c->handle_closing)
        conn_process(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    gw_conn *c = stream->data;
    if (nread < 0) {
        if (nread != UV_EOF)
            BASE_DEBUG("gateway", "connection %u read: %s", c->pid, uv_strerror((int)nread));
        conn_close(c); /* a running statement is cancelled; the worker closes the session */
        return;
    }
    if (c->tls != NULL) {
        c->raw.len += (size_t)nread;
        tls_input(c);
        return;
    }
    c->in.len += (size_t)nread;
    conn_process(c);
}

static gw_conn *find_conn(gw_server *s, uint32_t pid)
{
    for (gw_conn *c = s->conns; c != NULL; c = c->next)
        if (c->pid == pid)
            return c;
    return NULL;
}

static void handle_cancel(gw_conn *c, const gw_startup *st)
{
    gw_conn *target = find_conn(c->server, st->cancel_pid);
    if (target != NULL && target != c && target->counted && target->secret == st->cancel_secret) {
        BASE_INFO("gateway", "cancel request for session %u", target->pid);
        uv_mutex_lock(&target->mu);
        if (target->job_running && target->live_session != NULL)
            sqlv_session_cancel(target->live_session);
        uv_mutex_unlock(&target->mu);
    }
    conn_close(c); /* no response, as in PostgreSQL */
}

static void handle_startup(gw_conn *c, const uint8_t *pkt, uint32_t len)
{
    gw_server *s = c->server;
    gw_startup st;
    const char *why = NULL;
    int rc = gw_parse_startup(pkt, len, &st, &why);
    if (rc == GW_STARTUP_VERSION) {
        conn_fatal(c, "0A000", why);
        return;
    }
    if (rc != GW_STARTUP_OK) {
        conn_fatal(c, "08P01", why);
        return;
    }
    if (st.code == GW_CANCEL_REQUEST_CODE) {
        handle_cancel(c, &st);
        return;
    }
    if ((st.code == GW_SSL_REQUEST_CODE || st.code == GW_GSSENC_REQUEST_CODE) &&
        c->tls != NULL) {
        conn_fatal(c, "08P01", "unsupported encryption request inside TLS");
        return;
    }
    if (st.code == GW_SSL_REQUEST_CODE && s->tls != NULL) {
        /* Bytes after the SSLRequest that came before our 'S' would be
        ** plaintext injected ahead of the handshake (CVE-2021-23214):
        ** refuse them, as PostgreSQL does. */
        if (c->in.len > c->in_pos) {
            conn_fatal(c, "08P01", "received unencrypted data after SSL request");
            return;
        }
        int rc2 = sec_tls_conn_new(s->tls, true, NULL, &c->tls);
        if (rc2 != 0) {
            BASE_WARN("gateway", "connection %u: cannot start TLS: %s", c->pid,
                      sec_error_str(rc2));
            c->tls = NULL;
            conn_fatal(c, "53200", "cannot start TLS");
            return;
        }
        uint8_t *yes = base_malloc(1);
        if (yes == NULL) {
            conn_close(c);
            return;
        }
        yes[0] = 'S';
        conn_write_raw(c, yes, 1, false); /* the last byte in the clear */
        return;
    }
    if (st.code == GW_SSL_REQUEST_CODE || st.code == GW_GSSENC_REQUEST_CODE) {
        /* No TLS (--insecure) / no GSS encryption: 'N', then the client
        ** sends its startup packet in the clear (or gives up). */
        uint8_t *n = base_malloc(1);
        if (n == NULL) {
            conn_close(c);
            return;
        }
        n[0] = 'N';
        conn_write(c, n, 1, false);
        return;
    }
    if (s->tls != NULL && c->tls == NULL) {
        /* Secure node, client without TLS (sslmode=disable): hostssl-like. */
        BASE_INFO("gateway", "connection %u refused: startup packet without TLS", c->pid);
        conn_fatal(c, "28000", "connection requires SSL/TLS");
        return;
    }
    if (s->nsessions >= s->max_connections) {
        conn_fatal(c, "53300", "sorry, too many clients already");
        return;
    }
    if (s->auth_required) {
        char cn[SEC_USER_SIZE_MAX + 1];
        if (c->tls != NULL && sec_tls_conn_peer_cn(c->tls, cn, sizeof cn) == 0) {
            c->cert_user = base_strdup(cn); /* verified against the CA by the handshake */
            if (c->cert_user == NULL) {
                conn_fatal(c, "53200", "out of memory");
                return;
            }
        }
        /* A certificate for the user cannot be guessed: its login is not
        ** held up by the password failures of its address. */
        bool by_cert = c->cert_user != NULL && strcmp(c->cert_user, st.user) == 0;
        uv_mutex_lock(&s->auth_mu);
        bool limited = !by_cert &&
                       gw_auth_limited(&s->limiter, c->peer_addr, base_monotonic_ns() / 1000000);
        uv_mutex_unlock(&s->auth_mu);
        if (limited) {
            BASE_DEBUG("gateway", "connection %u from %s refused: too many failed logins", c->pid,
                       c->peer_addr);
            conn_fatal(c, "28000",
                       "too many failed authentication attempts from this address; try again "
                       "later");
            return;
        }
    }
    c->user = base_strdup(st.user);
    c->database = base_strdup(st.database);
    c->application_name = base_strdup(st.application_name);
    c->options = base_strdup(st.options);
    if (c->user == NULL || c->database == NULL || c->application_name == NULL ||
        c->options == NULL) {
        conn_fatal(c, "53200", "out of memory");
        return;
    }
    uint32_t minor = st.code & 0xffffu;
    if (minor > 0 || st.nunknown_options > 0) {
        base_buf b = {0};
        if (gw_msg_negotiate_version(&b, 0, st.nunknown_options, st.unknown_options) != 0) {
            conn_close(c);
            return;
        }
        conn_send_buf(c, &b);
    }
    if (!s->auth_required) {
        c->authenticated = true; /* trust */
        uv_timer_stop(&c->input_timer); /* from now on: incomplete messages */
    }
    c->counted = true;
    s->nsessions++;
    c->state = GW_CONN_BUSY;
    if (gw_worker_start(c) != 0) {
        conn_fatal(c, "53200", "out of memory: cannot start a session thread");
        return;
    }
    BASE_INFO("gateway", "session %u opened: user=%s database=%s from %s", c->pid, c->user,
              c->database, c->peer_addr[0] ? c->peer_addr : "?");
}

/* A SASL message of the login: to the worker. */
static void start_auth(gw_conn *c, const uint8_t *body, uint32_t body_len)
{
    char *m = base_malloc(body_len + 1u);
    if (m == NULL) {
        conn_fatal(c, "53200", "out of memory");
        return;
    }
    if (body_len > 0)
        memcpy(m, body, body_len);
    m[body_len] = '\0';
    uv_mutex_lock(&c->mu);
    assert(c->job == GW_JOB_NONE && !c->job_running);
    c->job = GW_JOB_AUTH;
    c->job_query = m; /* owner: moves to the worker */
    c->job_query_len = body_len;
    uv_cond_broadcast(&c->cond);
    uv_mutex_unlock(&c->mu);
    c->state = GW_CONN_BUSY;
}

/* A Query or extended job was handed to the worker: statement_timeout
** starts (it replaces an idle-in-transaction timer). Called under c->mu. */
static void stmt_timer_start_locked(gw_conn *c)
{
    c->stmt_timed_out = false;
    if (c->statement_timeout_ms > 0)
        uv_timer_start(&c->stmt_timer, on_stmt_timer, c->statement_timeout_ms,
                       GW_CANCEL_REPEAT_MS);
    else
        uv_timer_stop(&c->stmt_timer);
}

static void start_query(gw_conn *c, const uint8_t *body, uint32_t body_len)
{
    if (body_len == 0 || body[body_len - 1] != '\0') {
        conn_fatal(c, "08P01", "invalid query message: missing string terminator");
        return;
    }
    size_t qlen = strlen((const char *)body);
    if (qlen > GW_STATEMENT_MAX_BYTES) {
        /* before any copy is made; the session goes on */
        char msg[96];
        snprintf(msg, sizeof msg, "statement too long: %zu bytes (at most %u)", qlen,
                 GW_STATEMENT_MAX_BYTES);
        conn_send_error(c, "54000", msg);
        if (c->state != GW_CONN_CLOSING)
            conn_send_ready(c);
        return;
    }
    char *q = base_strndup((const char *)body, qlen);
    if (q == NULL) {
        conn_fatal(c, "53200", "out of memory");
        return;
    }
    uv_mutex_lock(&c->mu);
    assert(c->job == GW_JOB_NONE && !c->job_running);
    c->job = GW_JOB_QUERY;
    c->job_query = q;
    c->job_query_len = qlen;
    stmt_timer_start_locked(c);
    uv_cond_broadcast(&c->cond);
    uv_mutex_unlock(&c->mu);
    c->state = GW_CONN_BUSY;
}

static bool is_ext_type(uint8_t t)
{
    return t == 'P' || t == 'B' || t == 'D' || t == 'E' || t == 'C' || t == 'H' || t == 'S';
}

static bool is_copy_type(uint8_t t)
{
    return t == 'd' || t == 'H' || t == 'S' || t == 'c' || t == 'f';
}

static int append_frame(base_buf *b, uint8_t type, const uint8_t *body, uint32_t body_len)
{
    uint8_t hdr[5] = {type, (uint8_t)(body_len >> 24), (uint8_t)(body_len >> 16),
                      (uint8_t)(body_len >> 8), (uint8_t)body_len};
    if (base_buf_append(b, hdr, sizeof hdr) != 0)
        return -1;
    return body_len ? base_buf_append(b, body, body_len) : 0;
}

/* Hand extended-protocol messages to the worker as one job: this one and
** the complete ones buffered after it, up to and including a Sync (a
** pipeline costs one round trip to the worker, not one per message).
** The job is a sequence of frames: type, u32 body length, body. */
static void start_ext(gw_conn *c, uint8_t type, const uint8_t *body, uint32_t body_len)
{
    base_buf job = {0};
    if (append_frame(&job, type, body, body_len) != 0)
        goto nomem;
    size_t pos = c->in_pos;
    int n = 1;
    bool copy = c->state == GW_CONN_COPY;
    /* a copy job ends at CopyDone/CopyFail (or an unexpected message) */
    bool synced = copy ? !is_copy_type(type) || type == 'c' || type == 'f' : type == 'S';
    while (!synced && n < GW_EXT_BATCH_MESSAGES_MAX && job.len < GW_EXT_BATCH_BYTES) {
        size_t avail = c->in.len - pos;
        if (avail < 5)
            break;
        const uint8_t *p = c->in.data + pos;
        uint32_t len = gw_get_u32(p + 1);
        if (!(copy ? is_copy_type(p[0]) : is_ext_type(p[0])) || len < 4 || len > c->server->max_message_bytes ||
            avail - 1 < len)
            break; /* conn_process deals with it after the job */
        if (append_frame(&job, p[0], p + 5, len - 4) != 0)
            goto nomem;
        synced = copy ? p[0] == 'c' || p[0] == 'f' : p[0] == 'S';
        pos += 1 + (size_t)len;
        n++;
    }
    c->in_pos = pos;
    uv_mutex_lock(&c->mu);
    assert(c->job == GW_JOB_NONE && !c->job_running);
    c->job = GW_JOB_EXT;
    c->job_query = (char *)job.data; /* owner: moves to the worker */
    c->job_query_len = job.len;
    stmt_timer_start_locked(c);
    uv_cond_broadcast(&c->cond);
    uv_mutex_unlock(&c->mu);
    c->state = GW_CONN_BUSY;
    return;
nomem:
    base_buf_free(&job);
    conn_fatal(c, "53200", "out of memory");
}

static void handle_message(gw_conn *c, uint8_t type, const uint8_t *body, uint32_t body_len)
{
    if (c->state == GW_CONN_AUTH) {
        /* The login asked for a SASL message: nothing else until it is done. */
        if (type == 'p') {
            start_auth(c, body, body_len);
        } else if (type == 'X') {
            conn_close(c);
        } else {
            char msg[64];
            snprintf(msg, sizeof msg, "expected SASL response, got message type %d", (int)type);
            conn_fatal(c, "08P01", msg);
        }
        return;
    }
    if (c->state == GW_CONN_DISCARD) {
        /* After an extended-protocol error, everything up to Sync is
        ** skipped, as the protocol requires; Sync ends the implicit
        ** transaction (on the worker) and sends ReadyForQuery. */
        if (type == 'S') {
            start_ext(c, type, body, body_len);
        } else if (type == 'X') {
            conn_close(c);
        }
        return;
    }
    if (c->state == GW_CONN_COPY) {
        /* COPY FROM STDIN: everything goes to the worker, which answers an
        ** unexpected message with 08P01 and ends the copy. */
        if (type == 'X')
            conn_close(c);
        else
            start_ext(c, type, body, body_len);
        return;
    }
    if (c->state == GW_CONN_COPY_DISCARD) {
        /* The copy failed and its error was sent: CopyData is dropped
        ** until CopyDone/CopyFail, which get ReadyForQuery. */
        if (type == 'X') {
            conn_close(c);
        } else if (type == 'c' || type == 'f') {
            c->state = GW_CONN_READY;
            conn_send_ready(c);
        } else if (!is_copy_type(type)) {
            c->state = GW_CONN_READY;
            char msg[96];
            snprintf(msg, sizeof msg, "unexpected message type 0x%02X during COPY from stdin",
                     (unsigned)type);
            conn_send_error(c, "08P01", msg);
            if (c->state != GW_CONN_CLOSING)
                conn_send_ready(c);
        }
        return;
    }
    switch (type) {
    case 'Q':
        start_query(c, body, body_len);
        break;
    case 'X':
        BASE_DEBUG("gateway", "connection %u: terminate", c->pid);
        conn_close(c);
        break;
    case 'P': case 'B': case 'E': case 'D': case 'C': case 'S':
        start_ext(c, type, body, body_len);
        break;
    case 'H': /* Flush: nothing is held back (each job's output goes out) */
    case 'd': case 'c': case 'f': /* copy messages outside COPY: ignored */
        break;
    case 'F':
        conn_send_error(c, "0A000", "function call protocol not supported");
        if (c->state != GW_CONN_CLOSING)
            conn_send_ready(c);
        break;
    default: {
        char msg[64];
        snprintf(msg, sizeof msg, "invalid frontend message type %d", (int)type);
        conn_fatal(c, "08P01", msg);
        break;
    }
    }
}

/* Parse and dispatch every complete message while no job runs. Each turn
** consumes input, so the loop ends when the buffer is drained or a job
** starts. */
static void conn_process(gw_conn *c)
{
    gw_server *s = c->server;
    bool consumed = false; /* a message (or the startup packet) was taken */
    while (c->state != GW_CONN_BUSY && c->state != GW_CONN_CLOSING) {
        size_t avail = c->in.len - c->in_pos;
        const uint8_t *p = c->in.data + c->in_pos;
        if (c->state == GW_CONN_STARTUP) {
            if (avail < 4)
                break;
            uint32_t len = gw_get_u32(p);
            if (len < 8 || len > GW_STARTUP_PACKET_MAX_BYTES) {
                conn_fatal(c, "08P01", "invalid length of startup packet");
                break;
            }
            if (avail < len)
                break;
            c->in_pos += len;
            consumed = true;
            handle_startup(c, p, len);
        } else {
            if (avail < 5)
                break;
            uint8_t type = p[0];
            uint32_t len = gw_get_u32(p + 1);
            /* before the login ends, only small SASL messages */
            uint32_t max = c->authenticated ? s->max_message_bytes : GW_AUTH_MESSAGE_MAX_BYTES;
            if (len < 4 || len > max) {
                char msg[96];
                snprintf(msg, sizeof msg, "invalid message length %u (type %d)", len, (int)type);
                conn_fatal(c, "08P01", msg);
                break;
            }
            if (avail - 1 < len)
                break;
            c->in_pos += 1 + (size_t)len;
            consumed = true;
            handle_message(c, type, p + 5, len - 4);
        }
    }
    /* Compact: drop consumed bytes. */
    if (c->in_pos == c->in.len) {
        c->in.len = 0;
        c->in_pos = 0;
        if (c->in.cap > GW_INPUT_KEEP_BYTES)
            base_buf_free(&c->in); /* give back the space of a big message */
    } else if (c->in_pos > 0 && c->state != GW_CONN_CLOSING) {
        memmove(c->in.data, c->in.data + c->in_pos, c->in.len - c->in_pos);
        c->in.len -= c->in_pos;
        c->in_pos = 0;
    }
    /* Slowloris after the login: each message must arrive whole within
    ** message_timeout_ms of the loop seeing its first bytes. The clock
    ** restarts with each new message, not with each byte. */
    if (c->authenticated && !c->timer_closing) {
        bool partial = c->in.len > c->in_pos && c->state != GW_CONN_BUSY &&
                       c->state != GW_CONN_CLOSING;
        if (partial && (!c->input_timer_armed || consumed)) {
            uv_timer_start(&c->input_timer, on_input_timeout, s->message_timeout_ms, 0);
            c->input_timer_armed = true;
        } else if (!partial && c->input_timer_armed) {
            uv_timer_stop(&c->input_timer);
            c->input_timer_armed = false;
        }
    }
    /* Keep reading while a job runs (to notice a client that goes away)
    ** unless too much pipelined input is waiting. */
    if (c->state == GW_CONN_BUSY && c->reading && c->in.len > GW_INPUT_PAUSE_BYTES) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* ---- worker notifications ------------------------------------------------------ */

static void on_wake(uv_async_t *a)
{
    gw_server *s = a->data;
    gw_conn *next = NULL;
    for (gw_conn *c = s->conns; c != NULL; c = next) {
        next = c->next;
        if (!c->has_worker)
            continue;
        uv_mutex_lock(&c->mu);
        uint8_t *data = NULL; /* owner: this function once taken */
        size_t len = c->out.len;
        if (len > 0) {
            data = c->out.data;
            c->out = (base_buf){0};
            c->inflight_bytes += len;
        }
        bool done = c->job_done;
        c->job_done = false;
        bool ext_failed = c->ext_failed;
        char copy_state = c->copy_state;
        bool fatal = c->fatal;
        bool exited = c->worker_exited;
        bool auth_wait = c->auth_wait;
        char txn_status = c->txn_status;
        uint32_t idle_timeout_ms = c->idle_timeout_ms;
        uint32_t idle_session_timeout_ms = c->idle_session_timeout_ms;
        uv_mutex_unlock(&c->mu);
        if (len > 0)
            conn_write(c, data, len, true);
        if (exited) {
            uv_thread_join(&c->thread);
            c->has_worker = false;
            conn_maybe_free(c); /* c may be gone */
            continue;
        }
        if (fatal) {
            conn_close_after_flush(c);
            continue;
        }
        if (done && c->state == GW_CONN_BUSY && !auth_wait && !c->authenticated) {
            c->authenticated = true; /* the session is open */
            uv_timer_stop(&c->input_timer); /* from now on: incomplete messages */
        }
        if (done && c->state == GW_CONN_BUSY) {
            /* The statement is over; idle in a block, the
            ** idle-in-transaction timer runs until the next job, idle
            ** outside one the idle-session timer. */
            bool idle = c->authenticated && copy_state == 0 && !auth_wait;
            bool in_block = txn_status == 'T' || txn_status == 'E';
            if (idle && in_block && idle_timeout_ms > 0)
                uv_timer_start(&c->stmt_timer, on_stmt_timer, idle_timeout_ms, 0);
            else if (idle && !in_block && idle_session_timeout_ms > 0)
                uv_timer_start(&c->stmt_timer, on_stmt_timer, idle_session_timeout_ms, 0);
            else
                uv_timer_stop(&c->stmt_timer);
            /* auth_wait: the login waits for the client's next SASL message */
            c->state = auth_wait           ? GW_CONN_AUTH
                       : copy_state == 'A' ? GW_CONN_COPY
                       : copy_state == 'D' ? GW_CONN_COPY_DISCARD
                       : ext_failed        ? GW_CONN_DISCARD
                                           : GW_CONN_READY;
            if (!c->reading && !c->handle_closing) {
                if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
                    c->reading = true;
            }
            conn_process(c);
        }
    }
}

/* ---- accepting ------------------------------------------------------------------ */

/* Before the login ends: the startup timeout. After it: a message left
** incomplete for message_timeout_ms (conn_process arms it). */
static void on_input_timeout(uv_timer_t *t)
{
    gw_conn *c = t->data;
    c->input_timer_armed = false;
    if (c->state == GW_CONN_STARTUP) {
        conn_fatal(c, "08P01", "timeout waiting for the startup packet");
    } else if (!c->authenticated && c->state != GW_CONN_CLOSING) {
        conn_fatal(c, "57014", "canceling authentication due to timeout");
    } else if (c->state != GW_CONN_BUSY && c->state != GW_CONN_CLOSING &&
               c->in.len > c->in_pos) {
        BASE_INFO("gateway", "session %u: incomplete message for %u ms; closing", c->pid,
                  c->server->message_timeout_ms);
        conn_fatal(c, "08P01", "terminating connection: timeout waiting for the rest of a message");
    }
}

/* statement_timeout (a job runs: cancel it, again every
** GW_CANCEL_REPEAT_MS until it ends) or idle_in_transaction_session_timeout
** (idle in a block: terminate; closing rolls the transaction back and
** releases its locks) or idle_session_timeout (idle outside a block:
** terminate). */
static void on_stmt_timer(uv_timer_t *t)
{
    gw_conn *c = t->data;
    if (c->state == GW_CONN_CLOSING)
        return;
    if (c->state == GW_CONN_BUSY) {
        uv_mutex_lock(&c->mu);
        if (c->job != GW_JOB_NONE || c->job_running) {
            if (!c->stmt_timed_out)
                BASE_INFO("gateway", "session %u: statement timeout (%u ms)", c->pid,
                          c->statement_timeout_ms);
            c->stmt_timed_out = true;
            if (c->live_session != NULL)
                sqlv_session_cancel(c->live_session);
        }
        uv_mutex_unlock(&c->mu);
        return;
    }
    uv_timer_stop(&c->stmt_timer);
    uv_mutex_lock(&c->mu);
    bool in_block = c->txn_status == 'T' || c->txn_status == 'E';
    uv_mutex_unlock(&c->mu);
    if (!in_block) {
        BASE_INFO("gateway", "session %u: idle too long; terminating", c->pid);
        conn_fatal(c, "57P05", "terminating connection due to idle-session timeout");
        return;
    }
    BASE_INFO("gateway", "session %u: idle in transaction too long; terminating", c->pid);
    conn_fatal(c, "25P03", "terminating connection due to idle-in-transaction timeout");
}

/* The client's IP address into c->peer_addr ("" when unknown). */
static void conn_peer_addr(gw_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    c->peer_addr[0] = '\0';
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)&ss, c->peer_addr, sizeof c->peer_addr);
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)&ss, c->peer_addr, sizeof c->peer_addr);
}

static uint32_t random_u32(void)
{
    uint32_t v = 0;
    if (uv_random(NULL, NULL, &v, sizeof v, 0, NULL) != 0)
        v = (uint32_t)base_monotonic_ns() * 2654435761u;
    return v;
}

static void on_reject_closed(uv_handle_t *h)
{
    gw_server *s = h->data;
    s->reject_busy = false;
}

/* Accept the pending socket without a connection and close it. */
static void reject_socket(gw_server *s)
{
    if (s->reject_busy)
        return; /* the listener waits until the next close; rare */
    uv_tcp_init(&s->loop, &s->reject);
    s->reject.data = s;
    s->reject_busy = true;
    uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&s->reject);
    uv_close((uv_handle_t *)&s->reject, on_reject_closed);
}

/* A connection on the server's list, its handles initialized (the socket
** not yet attached). owner: the server's list, freed by conn_maybe_free.
** NULL: out of memory. */
static gw_conn *conn_new(gw_server *s)
{
    gw_conn *c = base_calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    if (uv_mutex_init(&c->mu) != 0) {
        base_free(c);
        return NULL;
    }
    if (uv_cond_init(&c->cond) != 0) {
        uv_mutex_destroy(&c->mu);
        base_free(c);
        return NULL;
    }
    c->server = s;
    c->pid = s->next_pid++;
    if (s->next_pid > INT32_MAX)
        s->next_pid = 1;
    c->secret = random_u32();
    c->txn_status = 'I';
    c->state = GW_CONN_STARTUP;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    uv_tcp_init(&s->loop, &c->tcp);
    c->tcp.data = c;
    uv_timer_init(&s->loop, &c->input_timer);
    c->input_timer.data = c;
    uv_timer_init(&s->loop, &c->stmt_timer);
    c->stmt_timer.data = c;
    c->handles_open = 3;
    return c;
}

/* c->tcp holds its socket: start the startup timer and reading. False: c
** was closed (too many sockets, read error). */
static bool conn_start(gw_conn *c, const char *how)
{
    gw_server *s = c->server;
    if (s->nconns > s->max_connections + GW_EXTRA_SOCKETS) {
        BASE_WARN("gateway", "too many sockets (%d): closing a new one", s->nconns);
        conn_close(c);
        return false;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_peer_addr(c);
    uv_timer_start(&c->input_timer, on_input_timeout, s->startup_timeout_ms, 0);
    BASE_DEBUG("gateway", "connection %u opened (%s)", c->pid, how);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return false;
    }
    c->reading = true;
    return true;
}

static void on_connection(uv_stream_t *listener, int status)
{
    gw_server *s = listener->data;
    if (status < 0) {
        BASE_WARN("gateway", "accept: %s", uv_strerror(status));
        return;
    }
    gw_conn *c = conn_new(s);
    if (c == NULL) {
        BASE_WARN("gateway", "accept: out of memory");
        reject_socket(s);
        return;
    }
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    (void)conn_start(c, "accepted");
}

/* Serve an adopted socket; its prefix is processed as if just read. Takes
** a->fd (a itself stays the caller's). */
static void adopt_one(gw_server *s, gw_adopt *a)
{
    gw_conn *c = conn_new(s);
    if (c == NULL) {
        BASE_WARN("gateway", "adopt: out of memory");
        close(a->fd);
        return;
    }
    if (uv_tcp_open(&c->tcp, a->fd) != 0) {
        BASE_WARN("gateway", "adopt: cannot use socket %d", a->fd);
        close(a->fd); /* the handle did not take it */
        conn_close(c);
        return;
    }
    if (!conn_start(c, "handed over by the RPC port"))
        return;
    if (base_buf_append(&c->in, a->prefix, a->prefix_len) != 0) {
        conn_close(c);
        return;
    }
    conn_process(c);
}

static void on_adopt(uv_async_t *h)
{
    gw_server *s = h->data;
    uv_mutex_lock(&s->adopt_mu);
    gw_adopt *list = s->adopt_head;
    s->adopt_head = s->adopt_tail = NULL;
    s->adopt_pending = 0;
    uv_mutex_unlock(&s->adopt_mu);
    while (list != NULL) { /* bounded by GW_ADOPT_PENDING_MAX */
        gw_adopt *next = list->next;
        if (s->stopping)
            close(list->fd);
        else
            adopt_one(s, list);
        base_free(list);
        list = next;
    }
}

int gw_adopt_connection(gw_server *s, int fd, const uint8_t *prefix, size_t prefix_len)
{
    if (fd < 0)
        return GW_ERR_INVALID;
    int rc = GW_ERR_INVALID;
    gw_adopt *a = NULL; /* owner: this call until queued */
    if (prefix_len > GW_ADOPT_PREFIX_MAX_BYTES || (prefix_len > 0 && prefix == NULL))
        goto fail;
    rc = GW_ERR_NOMEM;
    a = base_malloc(sizeof *a + prefix_len);
    if (a == NULL)
        goto fail;
    a->next = NULL;
    a->fd = fd;
    a->prefix_len = prefix_len;
    if (prefix_len > 0)
        memcpy(a->prefix, prefix, prefix_len);
    uv_mutex_lock(&s->adopt_mu);
    if (s->adopt_closed || s->adopt_pending >= GW_ADOPT_PENDING_MAX) {
        rc = s->adopt_closed ? GW_ERR_STOPPED : GW_ERR_LIMIT;
        uv_mutex_unlock(&s->adopt_mu);
        goto fail;
    }
    if (s->adopt_tail)
        s->adopt_tail->next = a;
    else
        s->adopt_head = a;
    s->adopt_tail = a;
    s->adopt_pending++;
    /* Under the lock: on_stop closes the async only after adopt_closed. */
    uv_async_send(&s->adopt);
    uv_mutex_unlock(&s->adopt_mu);
    return GW_OK;
fail:
    if (rc == GW_ERR_LIMIT)
        BASE_WARN("gateway", "adopt: %d sockets already waiting; closing one",
                  GW_ADOPT_PENDING_MAX);
    base_free(a);
    close(fd);
    return rc;
}

/* ---- start / stop ------------------------------------------------------------------ */

static void on_stop(uv_async_t *a)
{
    gw_server *s = a->data;
    s->stopping = true;
    uv_mutex_lock(&s->adopt_mu);
    s->adopt_closed = true;
    uv_mutex_unlock(&s->adopt_mu);
    on_adopt(&s->adopt); /* closes whatever was handed over meanwhile */
    uv_close((uv_handle_t *)&s->adopt, NULL);
    if (s->has_listener)
        uv_close((uv_handle_t *)&s->listener, NULL);
    uv_close((uv_handle_t *)&s->stop, NULL);
    gw_conn *next = NULL;
    for (gw_conn *c = s->conns; c != NULL; c = next) {
        next = c->next;
        conn_close(c);
    }
    server_maybe_finish(s);
}

static void loop_main(void *arg)
{
    gw_server *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
}

int gw_start(sqlv_engine *engine, const gw_options *opts, gw_server **out)
{
    int rc = GW_ERR_LISTEN;
    int urc;
    *out = NULL;
    gw_server *s = base_calloc(1, sizeof *s);
    if (s == NULL)
        return GW_ERR_NOMEM;
    s->engine = engine;
    s->tls = opts ? opts->tls : NULL;
    s->max_connections = opts && opts->max_connections > 0 ? opts->max_connections
                                                            : GW_DEFAULT_MAX_CONNECTIONS;
    s->max_message_bytes = opts && opts->max_message_bytes > 0 ? opts->max_message_bytes
                                                                : GW_DEFAULT_MAX_MESSAGE_BYTES;
    s->startup_timeout_ms = opts && opts->startup_timeout_ms > 0 ? opts->startup_timeout_ms
                                                                  : GW_DEFAULT_STARTUP_TIMEOUT_MS;
    s->message_timeout_ms = opts && opts->message_timeout_ms > 0 ? opts->message_timeout_ms
                                                                  : GW_DEFAULT_MESSAGE_TIMEOUT_MS;
    s->max_result_bytes = opts && opts->max_result_bytes > 0 ? opts->max_result_bytes
                                                              : GW_DEFAULT_MAX_RESULT_BYTES;
    s->max_connections_per_user = opts && opts->max_connections_per_user > 0
                                      ? opts->max_connections_per_user
                                      : 0;
    s->next_pid = 1;
    gw_auth_mode auth = opts ? opts->auth : GW_AUTH_DEFAULT;
    s->auth_required = auth == GW_AUTH_REQUIRED || (auth == GW_AUTH_DEFAULT && s->tls != NULL);
    const char *host = opts && opts->host ? opts->host : "127.0.0.1";
    int port = opts ? opts->port : 0;

    /* Writes to a socket the peer closed must fail with EPIPE, not kill
    ** the process. Only replaces the default disposition. */
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);

    if (uv_loop_init(&s->loop) != 0) {
        base_free(s);
        return GW_ERR_NOMEM;
    }
    if (uv_mutex_init(&s->adopt_mu) != 0) {
        uv_loop_close(&s->loop);
        base_free(s);
        return GW_ERR_NOMEM;
    }
    if (uv_random(NULL, NULL, s->auth_secret, sizeof s->auth_secret, 0, NULL) != 0 ||
        uv_mutex_init(&s->auth_mu) != 0) {
        uv_mutex_destroy(&s->adopt_mu);
        uv_loop_close(&s->loop);
        base_free(s);
        return GW_ERR_NOMEM;
    }
    if (gw_auth_limiter_init(&s->limiter) != GW_OK) {
        uv_mutex_destroy(&s->auth_mu);
        uv_mutex_destroy(&s->adopt_mu);
        uv_loop_close(&s->loop);
        base_free(s);
        return GW_ERR_NOMEM;
    }
    s->port = GW_PORT_NONE;
    if (port != GW_PORT_NONE) {
        uv_tcp_init(&s->loop, &s->listener);
        s->listener.data = s;
        s->has_listener = true;
        struct sockaddr_storage addr;
        if (port < 0 || port > 65535)
            urc = UV_EINVAL;
        else if (strchr(host, ':') != NULL)
            urc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
        else
            urc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
        if (urc != 0) {
            BASE_ERROR("gateway", "bad listen address %s:%d: %s", host, port, uv_strerror(urc));
            goto err_after_listener;
        }
        urc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
        if (urc == 0)
            urc = uv_listen((uv_stream_t *)&s->listener, GW_LISTEN_BACKLOG, on_connection);
        if (urc != 0) {
            BASE_ERROR("gateway", "listen on %s:%d: %s", host, port, uv_strerror(urc));
            goto err_after_listener;
        }
        struct sockaddr_storage bound;
        int namelen = sizeof bound;
        if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &namelen) != 0)
            goto err_after_listener;
        s->port = bound.ss_family == AF_INET6
                      ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                      : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    }
    rc = GW_ERR_NOMEM;
    if (uv_async_init(&s->loop, &s->wake, on_wake) != 0)
        goto err_after_listener;
    s->wake.data = s;
    if (uv_async_init(&s->loop, &s->stop, on_stop) != 0)
        goto err_after_wake;
    s->stop.data = s;
    if (uv_async_init(&s->loop, &s->adopt, on_adopt) != 0)
        goto err_after_stop;
    s->adopt.data = s;
    if (uv_thread_create(&s->thread, loop_main, s) != 0)
        goto err_after_adopt;
    const char *how = s->tls != NULL
                          ? (s->auth_required ? "TLS required, authentication required"
                                              : "TLS required, trust: no authentication")
                          : (s->auth_required ? "insecure: no TLS, authentication required"
                                              : "insecure: no TLS, no authentication");
    if (s->has_listener)
        BASE_INFO("gateway", "listening on %s:%d (%s)", host, s->port, how);
    else
        BASE_INFO("gateway", "serving connections handed over by the RPC port (%s)", how);
    *out = s;
    return GW_OK;

err_after_adopt:
    uv_close((uv_handle_t *)&s->adopt, NULL);
err_after_stop:
    uv_close((uv_handle_t *)&s->stop, NULL);
err_after_wake:
    uv_close((uv_handle_t *)&s->wake, NULL);
err_after_listener:
    if (s->has_listener)
        uv_close((uv_handle_t *)&s->listener, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    gw_auth_limiter_free(&s->limiter);
    uv_mutex_destroy(&s->auth_mu);
    uv_mutex_destroy(&s->adopt_mu);
    base_free(s);
    return rc;
}

int gw_port(const gw_server *s)
{
    return s->port;
}

void gw_stop(gw_server *s)
{
    if (s == NULL)
        return;
    uv_async_send(&s->stop);
    uv_thread_join(&s->thread);
    int rc = uv_loop_close(&s->loop);
    assert(rc == 0);
    (void)rc;
    assert(s->adopt_head == NULL); /* on_stop drained it and closed the door */
    uv_mutex_destroy(&s->adopt_mu);
    gw_auth_limiter_free(&s->limiter);
    gw_user_counts_free(&s->user_counts);
    uv_mutex_destroy(&s->auth_mu);
    explicit_bzero(s->auth_secret, sizeof s->auth_secret);
    BASE_INFO("gateway", "stopped");
    base_free(s);
}
