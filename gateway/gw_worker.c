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
**     the output unless the connection is closing), so the loop resumes.
**   - The thread ends only after closing is set; it closes the session
**     (rolling back its transaction) before setting worker_exited.
*/
#include <assert.h>
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

static int sink_data_row(void *ctx, int ncols, const sqlv_cell *cells)
{
    gw_conn *c = ctx;
    return after_append(c, gw_msg_data_row(&c->wbuf, ncols, cells));
}

static int sink_command_complete(void *ctx, const char *tag)
{
    gw_conn *c = ctx;
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
    return after_append(c, gw_msg_error(&c->wbuf, "ERROR", state, message));
}

static int sink_notice(void *ctx, const char *message)
{
    gw_conn *c = ctx;
    return after_append(c, gw_msg_notice(&c->wbuf, message));
}

/* ---- jobs ------------------------------------------------------------------ */

/* Returns true when the connection must be closed after the output. */
static bool job_open(gw_conn *c, char *status)
{
    sqlv_session *session = NULL;
    int rc = sqlv_session_open(c->server->engine, c->user, c->database, &session);
    if (rc != SQLV_OK) {
        BASE_WARN("gateway", "session %u: open failed (%d)", c->pid, rc);
        gw_msg_error(&c->wbuf, "FATAL", rc == SQLV_ERR_NOMEM ? "53200" : "XX000",
                     "could not open a SQL session");
        return true;
    }
    c->session = session;
    *status = sqlv_session_status(session);
    uv_mutex_lock(&c->mu);
    c->live_session = session;
    uv_mutex_unlock(&c->mu);
    static const char *const fixed[][2] = {
        {"server_version", "15.0"},
        {"server_encoding", "UTF8"},
        {"client_encoding", "UTF8"},
        {"DateStyle", "ISO, MDY"},
        {"IntervalStyle", "postgres"},
        {"integer_datetimes", "on"},
        {"standard_conforming_strings", "on"},
        {"TimeZone", "UTC"},
        {"is_superuser", "on"},
        {"session_authorization", NULL}, /* the user */
        {"application_name", NULL},      /* echoed */
    };
    rc = gw_msg_auth_ok(&c->wbuf);
    for (size_t i = 0; rc == 0 && i < BASE_ARRAY_LEN(fixed); i++) {
        const char *value = fixed[i][1];
        if (value == NULL)
            value = strcmp(fixed[i][0], "application_name") == 0 ? c->application_name : c->user;
        rc = gw_msg_parameter_status(&c->wbuf, fixed[i][0], value);
    }
    if (rc == 0)
        rc = gw_msg_backend_key_data(&c->wbuf, c->pid, c->secret);
    if (rc == 0)
        rc = gw_msg_ready_for_query(&c->wbuf, *status);
    return rc != 0;
}

static bool job_query(gw_conn *c, const char *query, size_t query_len, char *status)
{
    const sqlv_sink sink = {
        .ctx = c,
        .row_description = sink_row_description,
        .data_row = sink_data_row,
        .command_complete = sink_command_complete,
        .empty_query = sink_empty_query,
        .error = sink_error,
        .notice = sink_notice,
    };
    c->sink_failed = false;
    int rc = sqlv_session_exec(c->session, query, query_len, &sink);
    *status = sqlv_session_status(c->session);
    if (c->sink_failed)
        return true;
    uv_mutex_lock(&c->mu);
    bool closing = c->closing;
    uv_mutex_unlock(&c->mu);
    if (closing)
        return true;
    if (rc == SQLV_ERR_NOMEM)
        rc = gw_msg_error(&c->wbuf, "ERROR", "53200", "out of memory");
    else if (rc != SQLV_OK)
        rc = gw_msg_error(&c->wbuf, "ERROR", "XX000", "internal error while executing the query");
    if (rc != 0)
        return true;
    return gw_msg_ready_for_query(&c->wbuf, *status) != 0;
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
        char status = c->txn_status;
        c->job = GW_JOB_NONE;
        c->job_query = NULL;
        c->job_running = true;
        uv_mutex_unlock(&c->mu);

        bool fatal;
        if (kind == GW_JOB_OPEN)
            fatal = job_open(c, &status);
        else
            fatal = job_query(c, query, query_len, &status);
        base_free(query);

        uv_mutex_lock(&c->mu);
        if (!c->closing && hand_over_locked(c) != 0)
            fatal = true;
        base_buf_reset(&c->wbuf);
        c->txn_status = status;
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
