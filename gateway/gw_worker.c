/*
** gw_worker.c: one thread per connection that runs the session's SQL.
**
** The worker serializes responses into its private wbuf and hands them to
** the loop through gw_conn.out (under gw_conn.mu), waking the loop with
** server->wake. It never touches the socket.
**
** Critical invariants:
**   - The session is opened, used and closed on this thread only; the loop
**     reaches it only through sqlv_session_cancel, under gw_conn.mu, while
**     live_session is set.
**   - Backpressure: the worker blocks while out + in-flight bytes reach
**     GW_OUTPUT_LIMIT_BYTES, until the loop's writes complete or the
**     connection closes (closing set): memory per connection is bounded.
**   - Every job ends with job_done set (and for a query, ReadyForQuery in
**     the output unless the connection is closing or the query entered
**     COPY FROM STDIN), so the loop resumes.
**   - copy_mode is 'A' exactly while the session is in copy-in mode
**     (sqlv_session_in_copy); 'D' only after a simple-query copy failed,
**     until its CopyDone/CopyFail; it is published as copy_state at the
**     end of each job, which is how the loop picks its next state.
**   - COPY TO STDOUT needs no state of the loop: its CopyOutResponse,
**     CopyData (one per row, bounded by max_result_bytes like a DataRow)
**     and CopyDone are written inside the Query/Execute job, under the
**     same backpressure as rows.
**   - The thread ends only after closing is set; it closes the session
**     (rolling back its transaction) before setting worker_exited.
**   - Authentication (gw_server.auth_required): no session is opened and no
**     SQL runs before the login succeeded: by a client certificate whose CN
**     is the startup user (a role that exists, never "node"), else by a
**     SCRAM-SHA-256 exchange against the user's verifier. An unknown user,
**     or one without a password, runs the same exchange against a mock
**     verifier, so every failure looks the same to the client: FATAL 28P01
**     'password authentication failed for user "x"', recorded against the
**     client's address (gw_auth.c). Then NOLOGIN roles get 28000.
**   - Host-based rules (the cluster setting, read with the user's record in
**     one transaction; security/sec_hba.c): when set, the first matching
**     rule picks the method (cert, password, cert-password, trust, reject)
**     and no match is 28000; root with its own client certificate is never
**     held to them, so no setting can lock the cluster out.
**   - Neither a password (never received) nor a verifier is ever logged;
**     the login's state is wiped when the login ends or the thread exits.
**   - Hostile input (issue 9): a session holds a slot of its user in
**     server->user_counts from its login (refused with 53300 beyond
**     max_connections_per_user or the role's CONNECTION LIMIT, whichever is
**     lower; superusers have no role limit) until the loop frees it; a
**     DataRow larger than max_result_bytes is never built: the statement is
**     cancelled and fails with 53200, the session goes on; a 57014 after the
**     loop's statement timer fired says "statement timeout".
*/
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "gateway/gw_int.h"

/* Move wbuf to out. Called with c->mu held. Returns 0 or -ENOMEM. */
static int hand_over_locked(gw_conn *c)
{
    if (c->wbuf.len == 0)
        return 0;
    if (c->out.len == 0) {
        base_buf tmp = c->out;
        c->out = c->wbuf;
        c->wbuf = tmp;
        return 0;
    }
    int rc = base_buf_append(&c->out, c->wbuf.data, c->wbuf.len);
    base_buf_reset(&c->wbuf);
    return rc;
}

/* Hand the bytes to the loop and wait for room. 0, or 1 to stop (the
** connection is closing or memory ran out). */
static int flush(gw_conn *c)
{
    uv_mutex_lock(&c->mu);
    bool stop = c->closing;
    if (!stop && hand_over_locked(c) != 0) {
        c->sink_failed = true;
        stop = true;
    }
    uv_mutex_unlock(&c->mu);
    uv_async_send(&c->server->wake);
    if (stop) {
        base_buf_reset(&c->wbuf);
        return 1;
    }
    uv_mutex_lock(&c->mu);
    while (!c->closing && c->out.len + c->inflight_bytes >= GW_OUTPUT_LIMIT_BYTES)
        uv_cond_wait(&c->cond, &c->mu);
    stop = c->closing;
    uv_mutex_unlock(&c->mu);
    return stop ? 1 : 0;
}

static int after_append(gw_conn *c, int rc)
{
    if (rc != 0) {
        c->sink_failed = true;
        return 1;
    }
    if (c->wbuf.len >= GW_OUTPUT_FLUSH_BYTES)
        return flush(c);
    return 0;
}

/* ---- the sink: sqlv callbacks, on this thread ---------------------------- */

static int sink_row_description(void *ctx, int ncols, const sqlv_column *cols)
{
    gw_conn *c = ctx;
    return after_append(c, gw_msg_row_description(&c->wbuf, ncols, cols));
}

/* The 53200 of a statement whose row was over max_result_bytes. */
static int result_too_big_error(gw_conn *c)
{
    char msg[160];
    snprintf(msg, sizeof msg,
             "out of memory: a result row of %zu bytes exceeds the session's result buffer "
             "limit of %u bytes",
             c->result_too_big, c->server->max_result_bytes);
    c->result_too_big = 0;
    return after_append(c, gw_msg_error(&c->wbuf, "ERROR", "53200", msg));
}

static int sink_data_row(void *ctx, int ncols, const sqlv_cell *cells)
{
    gw_conn *c = ctx;
    if (c->result_too_big > 0)
        return 0; /* the statement is being cancelled: drop its rows */
    size_t bytes = 7; /* type, length, column count */
    for (int i = 0; i < ncols; i++)
        bytes += 4 + (cells[i].data != NULL ? cells[i].len : 0);
    if (bytes > c->server->max_result_bytes) {
        /* Never built: the statement stops at its next cancel check and
        ** its error becomes 53200; the session goes on. */
        c->result_too_big = bytes;
        sqlv_session_cancel(c->session);
        return 0;
    }
    return after_append(c, gw_msg_data_row(&c->wbuf, ncols, cells));
}

static int sink_command_complete(void *ctx, const char *tag)
{
    gw_conn *c = ctx;
    if (c->result_too_big > 0) /* it ended before the cancel was seen */
        return result_too_big_error(c);
    return after_append(c, gw_msg_command_complete(&c->wbuf, tag));
}

static int sink_empty_query(void *ctx)
{
    gw_conn *c = ctx;
    return after_append(c, gw_msg_empty_query(&c->wbuf));
}

static int sink_error(void *ctx, const char *sqlstate, const char *message)
{
    gw_conn *c = ctx;
    char state[6] = "XX000";
    if (sqlstate != NULL && strlen(sqlstate) == 5)
        memcpy(state, sqlstate, 6);
    if (strcmp(state, "57014") == 0) {
        if (c->result_too_big > 0)
            return result_too_big_error(c);
        uv_mutex_lock(&c->mu);
        bool timed_out = c->stmt_timed_out;
        uv_mutex_unlock(&c->mu);
        if (timed_out) /* the cancel came from the loop's statement timer */
            message = "canceling statement due to statement timeout";
    }
    return after_append(c, gw_msg_error(&c->wbuf, "ERROR", state, message));
}

static int sink_notice(void *ctx, const char *message)
{
    gw_conn *c = ctx;
    return after_append(c, gw_msg_notice(&c->wbuf, message));
}

static int sink_parameter_description(void *ctx, int nparams, const uint32_t *oids)
{
    gw_conn *c = ctx;
    return after_append(c, gw_msg_parameter_description(&c->wbuf, nparams, oids));
}

static int sink_no_data(void *ctx)
{
    gw_conn *c = ctx;
    return after_append(c, gw_msg_empty(&c->wbuf, 'n'));
}

static int sink_portal_suspended(void *ctx)
{
    gw_conn *c = ctx;
    return after_append(c, gw_msg_empty(&c->wbuf, 's'));
}

/* COPY FROM STDIN started (sqlv copy-in callback): CopyInResponse. */
static int copy_in_started(void *ctx, int ncols)
{
    gw_conn *c = ctx;
    c->copy_mode = 'A';
    return after_append(c, gw_msg_copy_in_response(&c->wbuf, ncols));
}

/* COPY TO STDOUT (sqlv copy-out callbacks): rows go out as they come,
** under the same backpressure as DataRows. */
static int copy_out_begin(void *ctx, int ncols)
{
    gw_conn *c = ctx;
    return after_append(c, gw_msg_copy_out_response(&c->wbuf, ncols));
}

static int copy_out_data(void *ctx, const char *data, size_t len)
{
    gw_conn *c = ctx;
    if (c->result_too_big > 0)
        return 0; /* the statement is being cancelled: drop its rows */
    if (len + 5 > c->server->max_result_bytes) {
        /* as for a DataRow: never sent, the statement fails with 53200 */
        c->result_too_big = len + 5;
        sqlv_session_cancel(c->session);
        return 0;
    }
    return after_append(c, gw_msg_copy_data(&c->wbuf, data, len));
}

static int copy_out_done(void *ctx)
{
    gw_conn *c = ctx;
    if (c->result_too_big > 0)
        return 0; /* no CopyDone: the 53200 ends the copy */
    return after_append(c, gw_msg_empty(&c->wbuf, 'c'));
}

static const sqlv_copy_out_fns copy_out_fns = {copy_out_begin, copy_out_data, copy_out_done};

static int drop_error(void *ctx, const char *sqlstate, const char *message)
{
    (void)ctx, (void)sqlstate, (void)message;
    return 0;
}

/* ---- jobs ------------------------------------------------------------------ */

/* gw_option_fn: one setting of the startup options (arg: the session). */
static int apply_startup_option(void *arg, const char *name, const char *value, char state[6],
                                char *msg, size_t size)
{
    return sqlv_session_set(arg, name, value, state, msg, size);
}

/* Open the session and send AuthenticationOk and the startup messages.
** superuser: the is_superuser parameter. role_limit: the role's CONNECTION
** LIMIT (-1: none; superusers have none, as in PostgreSQL). Returns true
** when the connection must be closed after the output. */
static bool open_session(gw_conn *c, char *status, bool superuser, int role_limit)
{
    gw_server *s = c->server;
    sqlv_session *session = NULL;
    /* The tighter of the node's per-user limit and the role's own; a role
    ** limit of 0 lets nobody in (gw_user_acquire's 0 means none). */
    int limit = s->max_connections_per_user;
    if (!superuser && role_limit >= 0 && (limit <= 0 || role_limit < limit))
        limit = role_limit;
    /* Counted once the user is known to be who they say (after the login),
    ** so nobody can lock a user out by claiming its name. */
    int urc = GW_ERR_LIMIT;
    if (superuser || role_limit != 0) {
        uv_mutex_lock(&s->auth_mu);
        urc = gw_user_acquire(&s->user_counts, c->user, limit);
        uv_mutex_unlock(&s->auth_mu);
    }
    if (urc != GW_OK) {
        char msg[128];
        if (urc == GW_ERR_LIMIT)
            BASE_INFO("gateway", "session %u: role \"%s\" has %d connections already", c->pid,
                      c->user, limit);
        snprintf(msg, sizeof msg, urc == GW_ERR_LIMIT ? "too many connections for role \"%.63s\""
                                                      : "out of memory",
                 c->user);
        gw_msg_error(&c->wbuf, "FATAL", urc == GW_ERR_LIMIT ? "53300" : "53200", msg);
        return true;
    }
    uv_mutex_lock(&c->mu);
    c->user_counted = true;
    uv_mutex_unlock(&c->mu);
    int rc = sqlv_session_open(c->server->engine, c->user, c->database, &session);
    if (rc != SQLV_OK) {
        BASE_WARN("gateway", "session %u: open failed (%d)", c->pid, rc);
        gw_msg_error(&c->wbuf, "FATAL", rc == SQLV_ERR_NOMEM ? "53200" : "XX000",
                     "could not open a SQL session");
        return true;
    }
    c->session = session;
    /* The role's settings (ALTER ROLE ... SET), then the startup packet's
    ** options (PGOPTIONS), as PostgreSQL applies them; a bad option ends
    ** the login. */
    rc = sqlv_session_apply_role_settings(session);
    if (rc != SQLV_OK) {
        gw_msg_error(&c->wbuf, "FATAL", rc == SQLV_ERR_NOMEM ? "53200" : "XX000",
                     "could not read the role's settings");
        return true;
    }
    if (c->options != NULL && c->options[0] != '\0') {
        char state[6], msg[256];
        if (gw_startup_options(c->options, apply_startup_option, session, state, msg,
                               sizeof msg) != 0) {
            BASE_INFO("gateway", "session %u: startup options refused: %s", c->pid, msg);
            gw_msg_error(&c->wbuf, "FATAL", state, msg);
            return true;
        }
    }
    if (c->application_name != NULL && c->application_name[0] != '\0') {
        /* the packet's own parameter comes after the options, as in
        ** PostgreSQL; cut to 63 bytes (NAMEDATALEN) at a character's start */
        char app[64], state[6], msg[128];
        const char *full = c->application_name;
        size_t n = strnlen(full, sizeof app);
        while (n == sizeof app || (n > 0 && ((unsigned char)full[n] & 0xC0) == 0x80))
            n--; /* full[n] (the cut) is a character's first byte or the end */
        memcpy(app, full, n);
        app[n] = '\0';
        if (sqlv_session_set(session, "application_name", app, state, msg, sizeof msg) != 0)
            BASE_INFO("gateway", "session %u: application_name refused: %s", c->pid, msg);
    }
    sqlv_session_set_copy_in(session, copy_in_started);
    sqlv_session_set_copy_out(session, &copy_out_fns);
    c->result_too_big = 0;
    *status = sqlv_session_status(session);
    uv_mutex_lock(&c->mu);
    c->live_session = session;
    uv_mutex_unlock(&c->mu);
    /* PostgreSQL's GUC_REPORT settings, with the values the session has
    ** after the role's settings and the options (as SHOW says them) */
    static const char *const reported[] = {
        "server_version", "server_encoding", "client_encoding", "DateStyle", "IntervalStyle",
        "integer_datetimes", "standard_conforming_strings", "TimeZone",
        "is_superuser",          /* superuser */
        "session_authorization", /* the user */
        "application_name",
    };
    rc = gw_msg_auth_ok(&c->wbuf);
    for (size_t i = 0; rc == 0 && i < BASE_ARRAY_LEN(reported); i++) {
        const char *value = NULL;
        if (strcmp(reported[i], "is_superuser") == 0)
            value = superuser ? "on" : "off";
        else if (strcmp(reported[i], "session_authorization") == 0)
            value = c->user;
        else
            value = sqlv_session_setting(session, reported[i]);
        rc = gw_msg_parameter_status(&c->wbuf, reported[i], value != NULL ? value : "");
    }
    if (rc == 0)
        rc = gw_msg_backend_key_data(&c->wbuf, c->pid, c->secret);
    if (rc == 0)
        rc = gw_msg_ready_for_query(&c->wbuf, *status);
    return rc != 0;
}

/* ---- authentication -------------------------------------------------------------- */

static void auth_clear(gw_conn *c)
{
    if (c->auth != NULL) {
        explicit_bzero(c->auth, sizeof *c->auth);
        base_free(c->auth);
        c->auth = NULL;
    }
    if (c->scram != NULL) {
        explicit_bzero(c->scram, sizeof *c->scram);
        base_free(c->scram);
        c->scram = NULL;
    }
}

/* A FATAL error for the login: the connection closes after it. */
static bool auth_fatal(gw_conn *c, const char *sqlstate, const char *message)
{
    auth_clear(c);
    (void)gw_msg_error(&c->wbuf, "FATAL", sqlstate, message);
    return true;
}

/* The login failed (wrong password, unknown user, no credentials): one
** answer for all, and one more failure for the client's address. */
static bool auth_failed(gw_conn *c)
{
    char msg[128];
    gw_server *s = c->server;
    uv_mutex_lock(&s->auth_mu);
    gw_auth_failed(&s->limiter, c->peer_addr, base_monotonic_ns() / 1000000);
    uv_mutex_unlock(&s->auth_mu);
    BASE_INFO("gateway", "session %u: authentication failed for user \"%s\" from %s", c->pid,
              c->user, c->peer_addr[0] ? c->peer_addr : "?");
    snprintf(msg, sizeof msg, "password authentication failed for user \"%.63s\"", c->user);
    return auth_fatal(c, "28P01", msg);
}

/* Authenticated (method: for the log): NOLOGIN roles stop here. */
static bool auth_done(gw_conn *c, char *status, const char *method)
{
    if (!c->auth->can_login) {
        char msg[128];
        BASE_INFO("gateway", "session %u: role \"%s\" is not permitted to log in", c->pid,
                  c->user);
        snprintf(msg, sizeof msg, "role \"%.63s\" is not permitted to log in", c->user);
        return auth_fatal(c, "28000", msg);
    }
    bool superuser = c->auth->is_admin;
    int role_limit = c->auth->conn_limited ? c->auth->conn_limit : -1;
    BASE_INFO("gateway", "session %u: user \"%s\" authenticated by %s", c->pid, c->user, method);
    auth_clear(c);
    return open_session(c, status, superuser, role_limit);
}

/* The host-based rules (c->auth->hba_conf, not empty) for this login. Sets
** *done when they decided it (the return value then says whether to close
** the connection); else the login goes on with *cert_ok (false when the
** rule wants a password even from a client with a certificate). */
static bool auth_rules(gw_conn *c, char *status, bool *cert_ok, bool *done)
{
    char msg[256];
    const char *where = c->peer_addr[0] ? c->peer_addr : "?";
    sec_hba *h = NULL;
    *done = true;
    int rc = sec_hba_parse(c->auth->hba_conf, &h, msg, sizeof msg);
    if (rc != SEC_OK) { /* checked when set and when read: out of memory */
        BASE_WARN("gateway", "session %u: the host-based authentication rules do not parse: %s",
                  c->pid, rc == SEC_ERR_NOMEM ? "out of memory" : msg);
        return auth_fatal(c, rc == SEC_ERR_NOMEM ? "53200" : "28000",
                          "cannot read the host-based authentication rules");
    }
    sec_hba_conn hc = {.local = false, .tls = c->over_tls, .database = c->database,
                       .user = c->user, .addr = c->peer_addr};
    int i = sec_hba_match(h, &hc);
    sec_hba_method method = i >= 0 ? h->rules[i].method : SEC_HBA_REJECT;
    sec_hba_free(h);
    if (i < 0) {
        BASE_INFO("gateway", "session %u: no host-based rule for host %s, user \"%s\"", c->pid,
                  where, c->user);
        snprintf(msg, sizeof msg,
                 "no pg_hba entry for host \"%s\", user \"%.63s\", database \"%.63s\", %s",
                 where, c->user, c->database ? c->database : "",
                 c->over_tls ? "SSL on" : "SSL off");
        return auth_fatal(c, "28000", msg);
    }
    switch (method) {
    case SEC_HBA_REJECT:
        BASE_INFO("gateway", "session %u: user \"%s\" from %s rejected by host-based rule %d",
                  c->pid, c->user, where, i + 1);
        snprintf(msg, sizeof msg,
                 "connection for host \"%s\", user \"%.63s\" rejected by rule %d of "
                 "server.host_based_authentication.configuration",
                 where, c->user, i + 1);
        return auth_fatal(c, "28000", msg);
    case SEC_HBA_TRUST:
        if (!c->auth->exists) { /* trust tells nothing an attacker could not try */
            snprintf(msg, sizeof msg, "role \"%.63s\" does not exist", c->user);
            return auth_fatal(c, "28000", msg);
        }
        snprintf(msg, sizeof msg, "trust (host-based rule %d)", i + 1);
        return auth_done(c, status, msg);
    case SEC_HBA_CERT:
        if (*cert_ok)
            return auth_done(c, status, "client certificate");
        {
            gw_server *s = c->server;
            uv_mutex_lock(&s->auth_mu);
            gw_auth_failed(&s->limiter, c->peer_addr, base_monotonic_ns() / 1000000);
            uv_mutex_unlock(&s->auth_mu);
        }
        BASE_INFO("gateway", "session %u: certificate authentication failed for user \"%s\" "
                  "from %s (host-based rule %d)", c->pid, c->user, where, i + 1);
        snprintf(msg, sizeof msg, "certificate authentication failed for user \"%.63s\"",
                 c->user);
        return auth_fatal(c, "28000", msg);
    case SEC_HBA_PASSWORD:
        *cert_ok = false;
        break;
    case SEC_HBA_CERT_PASSWORD:
        break;
    }
    *done = false;
    return false;
}

/* The start of a login: the user's record, then a client certificate that
** names the user, else AuthenticationSASL. Returns true when the
** connection must be closed after the output. */
static bool auth_begin(gw_conn *c, char *status)
{
    gw_server *s = c->server;
    c->auth = base_calloc(1, sizeof *c->auth);
    c->scram = base_calloc(1, sizeof *c->scram);
    if (c->auth == NULL || c->scram == NULL)
        return auth_fatal(c, "53200", "out of memory");
    int rc = sqlv_auth_lookup(s->engine, c->user, c->auth);
    if (rc != SQLV_OK)
        return auth_fatal(c, rc == SQLV_ERR_NOMEM ? "53200" : "57P03",
                          "cannot authenticate now: the users cannot be read");
    bool cert_ok = c->cert_user != NULL && strcmp(c->cert_user, c->user) == 0 &&
                   strcmp(c->user, "node") != 0 && c->auth->exists;
    /* root's certificate always logs in (nobody can lock the cluster out) */
    if (c->auth->hba_conf[0] != '\0' && !(cert_ok && strcmp(c->user, "root") == 0)) {
        bool done = false, fatal = auth_rules(c, status, &cert_ok, &done);
        if (done)
            return fatal;
    }
    if (cert_ok)
        return auth_done(c, status, "client certificate");
    sec_scram_verifier v, mock;
    bool have = false;
    if (c->auth->exists && c->auth->verifier[0] != '\0') {
        have = sec_scram_verifier_parse(c->auth->verifier, &v) == 0;
        if (!have)
            BASE_WARN("gateway", "session %u: the stored password of user \"%s\" is malformed",
                      c->pid, c->user);
    }
    sec_scram_mock_verifier(c->user, s->auth_secret, &mock);
    uint8_t raw[SEC_SCRAM_NONCE_RAW_SIZE];
    char nonce[SEC_SCRAM_NONCE_SIZE_MAX + 1];
    rc = uv_random(NULL, NULL, raw, sizeof raw, 0, NULL);
    if (rc == 0)
        rc = sec_scram_nonce_encode(raw, sizeof raw, nonce, sizeof nonce);
    if (rc == 0)
        rc = sec_scram_server_init(c->scram, have ? &v : NULL, have ? NULL : &mock, nonce);
    explicit_bzero(&v, sizeof v);
    explicit_bzero(&mock, sizeof mock);
    if (rc != 0)
        return auth_fatal(c, "XX000", "cannot start the authentication");
    if (gw_msg_auth_sasl(&c->wbuf) != 0)
        return auth_fatal(c, "53200", "out of memory");
    c->auth_step = 0;
    c->auth_waiting = true;
    return false;
}

/* One SASL message ('p'): SASLInitialResponse first, then SASLResponse. */
static bool job_auth(gw_conn *c, const uint8_t *body, size_t len, char *status)
{
    const uint8_t *data = body;
    size_t data_len = len;
    base_buf out = {0};
    if (c->scram == NULL || c->auth_step >= 2) /* the loop sends only what is asked */
        return auth_fatal(c, "08P01", "unexpected SASL message");
    if (c->auth_step == 0) {
        const char *mechanism = NULL, *why = NULL;
        if (gw_parse_sasl_initial(body, (uint32_t)len, &mechanism, &data, &data_len, &why) != 0)
            return auth_fatal(c, "08P01", why);
        if (strcmp(mechanism, SEC_SCRAM_MECHANISM) != 0)
            return auth_fatal(c, "08P01",
                              "client selected an invalid SASL authentication mechanism");
    }
    c->auth_step++;
    int rc = sec_scram_server_step(c->scram, data, data_len, &out);
    bool fatal = false;
    if (rc == SEC_SCRAM_CONTINUE) {
        if (gw_msg_auth_sasl_data(&c->wbuf, GW_AUTH_SASL_CONTINUE, out.data, out.len) != 0)
            fatal = auth_fatal(c, "53200", "out of memory");
        else
            c->auth_waiting = true;
    } else if (rc == 0) {
        if (gw_msg_auth_sasl_data(&c->wbuf, GW_AUTH_SASL_FINAL, out.data, out.len) != 0)
            fatal = auth_fatal(c, "53200", "out of memory");
        else
            fatal = auth_done(c, status, "password (SCRAM-SHA-256)");
    } else if (rc == SEC_ERR_AUTH) {
        fatal = auth_failed(c);
    } else if (rc == SEC_ERR_NOMEM) {
        fatal = auth_fatal(c, "53200", "out of memory");
    } else {
        char msg[160];
        const char *why = c->scram->error ? c->scram->error : "malformed SCRAM message";
        BASE_DEBUG("gateway", "session %u: SCRAM exchange failed: %s", c->pid, why);
        snprintf(msg, sizeof msg, "%s", why);
        fatal = auth_fatal(c, "08P01", msg);
    }
    base_buf_free(&out);
    return fatal;
}

/* Returns true when the connection must be closed after the output. */
static bool job_open(gw_conn *c, char *status)
{
    if (!c->server->auth_required)
        return open_session(c, status, true, -1); /* trust: --insecure */
    return auth_begin(c, status);
}

/* The sink that serializes results onto c's output buffer. */
static sqlv_sink conn_sink(gw_conn *c)
{
    return (sqlv_sink){
        .ctx = c,
        .row_description = sink_row_description,
        .data_row = sink_data_row,
        .command_complete = sink_command_complete,
        .empty_query = sink_empty_query,
        .error = sink_error,
        .notice = sink_notice,
        .parameter_description = sink_parameter_description,
        .no_data = sink_no_data,
        .portal_suspended = sink_portal_suspended,
    };
}

static bool job_query(gw_conn *c, const char *query, size_t query_len, char *status)
{
    const sqlv_sink sink = conn_sink(c);
    c->sink_failed = false;
    c->result_too_big = 0;
    c->copy_mode = 0;
    int rc = sqlv_session_exec(c->session, query, query_len, &sink);
    *status = sqlv_session_status(c->session);
    if (c->sink_failed)
        return true;
    uv_mutex_lock(&c->mu);
    bool closing = c->closing;
    uv_mutex_unlock(&c->mu);
    if (closing)
        return true;
    if (sqlv_session_in_copy(c->session)) {
        /* COPY FROM STDIN: no ReadyForQuery until CopyDone/CopyFail */
        c->copy_mode = 'A';
        c->copy_ext = false;
        return false;
    }
    c->copy_mode = 0;
    if (rc == SQLV_ERR_NOMEM)
        rc = gw_msg_error(&c->wbuf, "ERROR", "53200", "out of memory");
    else if (rc != SQLV_OK)
        rc = gw_msg_error(&c->wbuf, "ERROR", "XX000", "internal error while executing the query");
    if (rc != 0)
        return true;
    return gw_msg_ready_for_query(&c->wbuf, *status) != 0;
}

/* One extended-protocol message. *failed: it failed and its error was sent
** (the loop discards until Sync). Returns true when the connection must be
** closed after the output. */
static bool job_ext(gw_conn *c, char type, const uint8_t *body, size_t len, char *status,
                    bool *failed)
{
    const sqlv_sink sink = conn_sink(c);
    gw_ext_msg m;
    const char *why = NULL;
    int rc = SQLV_OK, wrc = 0;
    *failed = false;
    c->sink_failed = false;
    c->result_too_big = 0;
    if (gw_decode_ext(type, body, (uint32_t)len, &m, &why) != 0) {
        *failed = true;
        bool oom = strcmp(why, "out of memory") == 0;
        wrc = gw_msg_error(&c->wbuf, "ERROR", oom ? "53200" : "08P01", why);
        *status = sqlv_session_status(c->session);
        return wrc != 0;
    }
    switch (type) {
    case 'P':
        rc = sqlv_session_prepare(c->session, m.stmt, m.query, m.query_len, m.nparam_oids,
                                  m.param_oids, &sink);
        if (rc == SQLV_OK)
            wrc = gw_msg_empty(&c->wbuf, '1');
        break;
    case 'B':
        rc = sqlv_session_bind(c->session, m.portal, m.stmt, m.nvalues, m.values, m.nformats,
                               m.formats, m.nresult_formats, m.result_formats, &sink);
        if (rc == SQLV_OK)
            wrc = gw_msg_empty(&c->wbuf, '2');
        break;
    case 'D':
        rc = sqlv_session_describe(c->session, m.kind, m.kind == 'S' ? m.stmt : m.portal, &sink);
        break;
    case 'E':
        c->copy_mode = 0;
        rc = sqlv_session_execute(c->session, m.portal, m.max_rows, &sink);
        if (sqlv_session_in_copy(c->session)) {
            c->copy_mode = 'A';
            c->copy_ext = true;
        } else {
            c->copy_mode = 0;
        }
        break;
    case 'C':
        rc = sqlv_session_close_object(c->session, m.kind, m.kind == 'S' ? m.stmt : m.portal);
        if (rc == SQLV_OK)
            wrc = gw_msg_empty(&c->wbuf, '3');
        break;
    case 'S':
        rc = sqlv_session_sync(c->session, &sink);
        break;
    default:
        break;
    }
    gw_ext_msg_free(&m);
    *status = sqlv_session_status(c->session);
    if (c->sink_failed || rc == SQLV_ERR_ABORTED || wrc != 0)
        return true;
    uv_mutex_lock(&c->mu);
    bool closing = c->closing;
    uv_mutex_unlock(&c->mu);
    if (closing)
        return true;
    if (rc == SQLV_ERR_FAILED) {
        *failed = true;
    } else if (rc != SQLV_OK) {
        *failed = true;
        if (gw_msg_error(&c->wbuf, "ERROR", rc == SQLV_ERR_NOMEM ? "53200" : "XX000",
                         rc == SQLV_ERR_NOMEM ? "out of memory" : "internal error") != 0)
            return true;
    }
    if (type == 'S') {
        *failed = false; /* Sync ends the error recovery */
        return gw_msg_ready_for_query(&c->wbuf, *status) != 0;
    }
    return false;
}

/* One message while copying (copy_mode set). *failed: the copy of an
** Execute failed (discard until Sync). Returns true when the connection
** must be closed after the output. */
static bool job_copy_msg(gw_conn *c, char type, const uint8_t *body, size_t len, char *status,
                         bool *failed)
{
    const sqlv_sink sink = {
        .ctx = c,
        .command_complete = sink_command_complete,
        .error = sink_error,
        .notice = sink_notice,
    };
    int rc = SQLV_OK, wrc = 0;
    bool ended = false, error = false;
    *failed = false;
    c->sink_failed = false;
    if (c->copy_mode == 'D') { /* failed simple-query copy: wait for its end */
        if (type == 'c' || type == 'f') {
            c->copy_mode = 0;
            return gw_msg_ready_for_query(&c->wbuf, *status) != 0;
        }
        return false; /* the loop keeps other messages out of this job */
    }
    switch (type) {
    case 'd':
        rc = sqlv_session_copy_data(c->session, (const char *)body, len, &sink);
        break;
    case 'c':
        rc = sqlv_session_copy_done(c->session, &sink);
        ended = true;
        break;
    case 'f': {
        char why[256];
        if (len == 0 || memchr(body, '\0', len) == NULL)
            base_strlcpy(why, "invalid CopyFail message", sizeof why);
        else /* at most sizeof why - 1 bytes of the client's message */
            base_strlcpy(why, (const char *)body, sizeof why);
        rc = sqlv_session_copy_fail(c->session, why, &sink);
        ended = error = true;
        break;
    }
    case 'H':
    case 'S':
        return false; /* ignored during COPY, as the protocol says */
    default: {
        const sqlv_sink quiet = {.ctx = c, .error = drop_error};
        char msg[96];
        rc = sqlv_session_copy_fail(c->session, "", &quiet);
        snprintf(msg, sizeof msg, "unexpected message type 0x%02X during COPY from stdin",
                 (unsigned)(uint8_t)type);
        wrc = gw_msg_error(&c->wbuf, "ERROR", "08P01", msg);
        ended = error = true;
        break;
    }
    }
    *status = sqlv_session_status(c->session);
    if (c->sink_failed || rc == SQLV_ERR_ABORTED || wrc != 0)
        return true;
    if (rc == SQLV_ERR_FAILED) {
        error = true;
    } else if (rc != SQLV_OK) {
        error = true;
        if (gw_msg_error(&c->wbuf, "ERROR", rc == SQLV_ERR_NOMEM ? "53200" : "XX000",
                         rc == SQLV_ERR_NOMEM ? "out of memory" : "internal error") != 0)
            return true;
    }
    if (sqlv_session_in_copy(c->session) && !ended && !error)
        return false; /* more data to come */
    if (sqlv_session_in_copy(c->session)) {
        /* an error left the session copying: end it quietly */
        const sqlv_sink quiet = {.ctx = c, .error = drop_error};
        (void)sqlv_session_copy_fail(c->session, "", &quiet);
        *status = sqlv_session_status(c->session);
    }
    if (c->copy_ext) {
        c->copy_mode = 0;
        *failed = error; /* CommandComplete or the error; Sync ends it */
        return false;
    }
    if (!ended) { /* a CopyData failed: discard until CopyDone/CopyFail */
        c->copy_mode = 'D';
        return false;
    }
    c->copy_mode = 0;
    return gw_msg_ready_for_query(&c->wbuf, *status) != 0;
}

/* A GW_JOB_EXT job: its frames in order. After a failure the messages up
** to the next Sync are skipped (the protocol's error recovery); *failed
** tells the loop to keep skipping when no Sync came in this job. */
static bool job_ext_batch(gw_conn *c, const uint8_t *frames, size_t len, char *status,
                          bool *failed)
{
    size_t pos = 0;
    bool discarding = false;
    *status = sqlv_session_status(c->session);
    while (pos + 5 <= len) { /* frames built by the loop: trusted */
        char type = (char)frames[pos];
        uint32_t body_len = gw_get_u32(frames + pos + 1);
        const uint8_t *body = frames + pos + 5;
        assert(pos + 5 + body_len <= len);
        pos += 5 + (size_t)body_len;
        if (c->copy_mode != 0) {
            bool copy_failed = false;
            if (job_copy_msg(c, type, body, body_len, status, &copy_failed))
                return true;
            discarding = copy_failed;
            continue;
        }
        if (type == 'H')
            continue; /* Flush: the job's output goes out when it ends */
        if (discarding && type != 'S')
            continue;
        bool one_failed = false;
        if (job_ext(c, type, body, body_len, status, &one_failed))
            return true;
        discarding = one_failed;
    }
    *failed = discarding;
    return false;
}

void gw_worker_main(void *arg)
{
    gw_conn *c = arg;
    uv_mutex_lock(&c->mu);
    for (;;) { /* one turn per job; ends when the connection closes */
        while (c->job == GW_JOB_NONE && !c->closing)
            uv_cond_wait(&c->cond, &c->mu);
        if (c->closing)
            break;
        gw_job_kind kind = c->job;
        char *query = c->job_query;
        size_t query_len = c->job_query_len;
        bool failed = false;
        char status = c->txn_status;
        c->job = GW_JOB_NONE;
        c->job_query = NULL;
        c->job_running = true;
        uv_mutex_unlock(&c->mu);

        bool fatal;
        c->auth_waiting = false;
        if (kind == GW_JOB_OPEN)
            fatal = job_open(c, &status);
        else if (kind == GW_JOB_AUTH)
            fatal = job_auth(c, (const uint8_t *)query, query_len, &status);
        else if (kind == GW_JOB_EXT)
            fatal = job_ext_batch(c, (const uint8_t *)query, query_len, &status, &failed);
        else
            fatal = job_query(c, query, query_len, &status);
        base_free(query);

        uv_mutex_lock(&c->mu);
        if (!c->closing && hand_over_locked(c) != 0)
            fatal = true;
        base_buf_reset(&c->wbuf);
        c->txn_status = status;
        if (c->session != NULL) { /* SET may have changed them */
            c->statement_timeout_ms = sqlv_session_statement_timeout_ms(c->session);
            c->idle_timeout_ms = sqlv_session_idle_in_transaction_timeout_ms(c->session);
            c->idle_session_timeout_ms = sqlv_session_idle_session_timeout_ms(c->session);
        }
        c->ext_failed = failed;
        c->copy_state = c->copy_mode;
        c->auth_wait = c->auth_waiting && !fatal;
        c->job_running = false;
        c->job_done = true;
        if (fatal)
            c->fatal = true;
        uv_mutex_unlock(&c->mu);
        uv_async_send(&c->server->wake);
        uv_mutex_lock(&c->mu);
    }
    c->live_session = NULL;
    uv_mutex_unlock(&c->mu);
    auth_clear(c);
    if (c->session != NULL) {
        sqlv_session_close(c->session); /* rolls back an open transaction */
        c->session = NULL;
    }
    base_buf_free(&c->wbuf);
    uv_mutex_lock(&c->mu);
    c->worker_exited = true;
    uv_mutex_unlock(&c->mu);
    uv_async_send(&c->server->wake);
}

int gw_worker_start(gw_conn *c)
{
    assert(!c->has_worker);
    c->over_tls = c->tls != NULL; /* read by the worker: never changes after this */
    uv_mutex_lock(&c->mu);
    c->job = GW_JOB_OPEN;
    uv_mutex_unlock(&c->mu);
    if (uv_thread_create(&c->thread, gw_worker_main, c) != 0) {
        uv_mutex_lock(&c->mu);
        c->job = GW_JOB_NONE;
        uv_mutex_unlock(&c->mu);
        return GW_ERR_NOMEM;
    }
    c->has_worker = true;
    return GW_OK;
}
