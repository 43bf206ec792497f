/* fake_sql.c: see fake_sql.h. */
#include "fake_sql.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"

#define FAKE_WAIT_MAX_MS 20000
#define FAKE_ROWS_MAX 10000000L

struct sqlv_engine {
    int unused;
};

struct sqlv_session {
    char status;
    bool cancelled; /* guarded by fake_mu */
};

static struct sqlv_engine fake_the_engine;
static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fake_cond = PTHREAD_COND_INITIALIZER;
static int fake_open;
static int fake_waiters;

sqlv_engine *fake_engine(void)
{
    return &fake_the_engine;
}

static struct timespec deadline_after(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int fake_sessions_open(void)
{
    pthread_mutex_lock(&fake_mu);
    int n = fake_open;
    pthread_mutex_unlock(&fake_mu);
    return n;
}

bool fake_wait_sessions_open(int n, int timeout_ms)
{
    struct timespec dl = deadline_after(timeout_ms);
    pthread_mutex_lock(&fake_mu);
    int rc = 0;
    while (fake_open != n && rc == 0)
        rc = pthread_cond_timedwait(&fake_cond, &fake_mu, &dl);
    bool ok = fake_open == n;
    pthread_mutex_unlock(&fake_mu);
    return ok;
}

bool fake_wait_waiters(int n, int timeout_ms)
{
    struct timespec dl = deadline_after(timeout_ms);
    pthread_mutex_lock(&fake_mu);
    int rc = 0;
    while (fake_waiters < n && rc == 0)
        rc = pthread_cond_timedwait(&fake_cond, &fake_mu, &dl);
    bool ok = fake_waiters >= n;
    pthread_mutex_unlock(&fake_mu);
    return ok;
}

int sqlv_session_open(sqlv_engine *e, const char *user, const char *database, sqlv_session **out)
{
    if (strcmp(user, "nosession") == 0)
        return SQLV_ERR_INTERNAL;
    sqlv_session *s = base_calloc(1, sizeof *s);
    if (s == NULL)
        return SQLV_ERR_NOMEM;
    s->status = 'I';
    pthread_mutex_lock(&fake_mu);
    fake_open++;
    pthread_cond_broadcast(&fake_cond);
    pthread_mutex_unlock(&fake_mu);
    *out = s;
    return SQLV_OK;
}

void sqlv_session_close(sqlv_session *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&fake_mu);
    fake_open--;
    pthread_cond_broadcast(&fake_cond);
    pthread_mutex_unlock(&fake_mu);
    base_free(s);
}

char sqlv_session_status(const sqlv_session *s)
{
    return s->status;
}

uint32_t sqlv_session_statement_timeout_ms(const sqlv_session *s)
{
    (void)s;
    return 0; /* the fake has no settings */
}

uint32_t sqlv_session_idle_in_transaction_timeout_ms(const sqlv_session *s)
{
    (void)s;
    return 0;
}

uint32_t sqlv_session_idle_session_timeout_ms(const sqlv_session *s)
{
    (void)s;
    return 0;
}

int sqlv_session_apply_role_settings(sqlv_session *s)
{
    (void)s;
    return 0;
}

/* The startup options: the fake knows one setting, statement_timeout. */
int sqlv_session_set(sqlv_session *s, const char *name, const char *value, char state[6],
                     char *msg, size_t size)
{
    (void)s;
    (void)value;
    if (strcmp(name, "statement_timeout") == 0)
        return 0;
    memcpy(state, "42704", 6);
    snprintf(msg, size, "unrecognized configuration parameter \"%s\"", name);
    return 1;
}

/* The fake's settings are PostgreSQL's defaults (what SHOW would say). */
const char *sqlv_session_setting(const sqlv_session *s, const char *name)
{
    static const char *const defaults[][2] = {
        {"server_version", "15.0"},   {"server_encoding", "UTF8"},
        {"client_encoding", "UTF8"},  {"DateStyle", "ISO, MDY"},
        {"IntervalStyle", "postgres"}, {"integer_datetimes", "on"},
        {"standard_conforming_strings", "on"}, {"TimeZone", "UTC"},
        {"application_name", ""},
    };
    (void)s;
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (strcasecmp(defaults[i][0], name) == 0)
            return defaults[i][1];
    return NULL;
}

void sqlv_session_cancel(sqlv_session *s)
{
    pthread_mutex_lock(&fake_mu);
    s->cancelled = true;
    pthread_cond_broadcast(&fake_cond);
    pthread_mutex_unlock(&fake_mu);
}

static int fail(sqlv_session *s, const sqlv_sink *sink, const char *state, const char *msg)
{
    if (s->status == 'T')
        s->status = 'E';
    return sink->error(sink->ctx, state, msg) ? SQLV_ERR_ABORTED : 1;
}

/* 0 ok, 1 statement failed (stop), SQLV_ERR_ABORTED. */
static int run_one(sqlv_session *s, const char *stmt, const sqlv_sink *sink)
{
    if (s->status == 'E' && strcasecmp(stmt, "ROLLBACK") != 0 && strcasecmp(stmt, "COMMIT") != 0)
        return fail(s, sink, "25P02",
                    "current transaction is aborted, commands ignored until end of transaction block");
    if (strcasecmp(stmt, "SELECT 1") == 0) {
        sqlv_column col = {"?column?", SQLV_OID_INT4, 4, 0};
        sqlv_cell cell = {"1", 1};
        if (sink->row_description(sink->ctx, 1, &col) || sink->data_row(sink->ctx, 1, &cell) ||
            sink->command_complete(sink->ctx, "SELECT 1"))
            return SQLV_ERR_ABORTED;
        return 0;
    }
    if (strcasecmp(stmt, "NULL") == 0) {
        sqlv_column col = {"n", SQLV_OID_TEXT, -1, 0};
        sqlv_cell cell = {NULL, 0};
        if (sink->row_description(sink->ctx, 1, &col) || sink->data_row(sink->ctx, 1, &cell) ||
            sink->command_complete(sink->ctx, "SELECT 1"))
            return SQLV_ERR_ABORTED;
        return 0;
    }
    if (strncasecmp(stmt, "ROWS ", 5) == 0) {
        long n = strtol(stmt + 5, NULL, 10);
        if (n < 0 || n > FAKE_ROWS_MAX)
            return fail(s, sink, "22023", "bad row count");
        sqlv_column cols[2] = {{"id", SQLV_OID_INT8, 8, 0}, {"payload", SQLV_OID_TEXT, -1, 0}};
        if (sink->row_description(sink->ctx, 2, cols))
            return SQLV_ERR_ABORTED;
        char payload[100];
        memset(payload, 'x', sizeof payload);
        for (long i = 0; i < n; i++) {
            char id[24];
            int len = snprintf(id, sizeof id, "%ld", i);
            sqlv_cell cells[2] = {{id, (size_t)len}, {payload, sizeof payload}};
            if (sink->data_row(sink->ctx, 2, cells))
                return SQLV_ERR_ABORTED;
        }
        char tag[32];
        snprintf(tag, sizeof tag, "SELECT %ld", n);
        return sink->command_complete(sink->ctx, tag) ? SQLV_ERR_ABORTED : 0;
    }
    if (strcasecmp(stmt, "BEGIN") == 0) {
        if (s->status == 'I')
            s->status = 'T';
        return sink->command_complete(sink->ctx, "BEGIN") ? SQLV_ERR_ABORTED : 0;
    }
    if (strcasecmp(stmt, "COMMIT") == 0 || strcasecmp(stmt, "ROLLBACK") == 0) {
        const char *tag = s->status == 'E' ? "ROLLBACK" : (toupper((unsigned char)stmt[0]) == 'C' ? "COMMIT" : "ROLLBACK");
        s->status = 'I';
        return sink->command_complete(sink->ctx, tag) ? SQLV_ERR_ABORTED : 0;
    }
    if (strcasecmp(stmt, "NOTICE") == 0) {
        if (sink->notice && sink->notice(sink->ctx, "hello from fake"))
            return SQLV_ERR_ABORTED;
        return sink->command_complete(sink->ctx, "DO") ? SQLV_ERR_ABORTED : 0;
    }
    if (strcasecmp(stmt, "WAIT") == 0) {
        struct timespec dl = deadline_after(FAKE_WAIT_MAX_MS);
        pthread_mutex_lock(&fake_mu);
        fake_waiters++;
        pthread_cond_broadcast(&fake_cond);
        int rc = 0;
        while (!s->cancelled && rc == 0)
            rc = pthread_cond_timedwait(&fake_cond, &fake_mu, &dl);
        fake_waiters--;
        pthread_mutex_unlock(&fake_mu);
        return fail(s, sink, "57014", "canceling statement due to user request");
    }
    return fail(s, sink, "42601", "syntax error (fake engine)");
}

int sqlv_session_exec(sqlv_session *s, const char *query, size_t query_len, const sqlv_sink *sink)
{
    pthread_mutex_lock(&fake_mu);
    s->cancelled = false;
    pthread_mutex_unlock(&fake_mu);
    char *q = base_strndup(query, query_len);
    if (q == NULL)
        return SQLV_ERR_NOMEM;
    int rc = SQLV_OK;
    int nstatements = 0;
    char *save = NULL;
    for (char *tok = strtok_r(q, ";", &save); tok != NULL; tok = strtok_r(NULL, ";", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        size_t len = strlen(tok);
        while (len > 0 && isspace((unsigned char)tok[len - 1]))
            tok[--len] = '\0';
        if (len == 0)
            continue;
        nstatements++;
        int r = run_one(s, tok, sink);
        if (r == SQLV_ERR_ABORTED) {
            rc = r;
            break;
        }
        if (r != 0)
            break;
    }
    if (rc == SQLV_OK && nstatements == 0 && sink->empty_query(sink->ctx))
        rc = SQLV_ERR_ABORTED;
    base_free(q);
    return rc;
}

/* ---- extended protocol: a minimal fake ---------------------------------------
** Parse of a query containing "fail" fails; everything else succeeds.
** Execute answers "SELECT 0"; Describe answers NoData. */
int sqlv_session_prepare(sqlv_session *s, const char *name, const char *query, size_t query_len,
                         int nparam_types, const uint32_t *param_oids, const sqlv_sink *sink)
{
    (void)name;
    (void)nparam_types;
    (void)param_oids;
    char *q = base_strndup(query, query_len);
    if (q == NULL)
        return SQLV_ERR_NOMEM;
    bool bad = strstr(q, "fail") != NULL;
    base_free(q);
    if (bad)
        return fail(s, sink, "42601", "syntax error (fake engine)") == SQLV_ERR_ABORTED
                   ? SQLV_ERR_ABORTED : SQLV_ERR_FAILED;
    return SQLV_OK;
}

int sqlv_session_bind(sqlv_session *s, const char *portal, const char *statement, int nparams,
                      const sqlv_cell *values, int nformats, const int16_t *formats,
                      int nresult_formats, const int16_t *result_formats, const sqlv_sink *sink)
{
    (void)s; (void)portal; (void)statement; (void)values; (void)nformats; (void)formats;
    (void)nresult_formats; (void)result_formats; (void)sink;
    for (int i = 0; i < nparams; i++)
        if (values[i].data != NULL && values[i].len > 0)
            (void)values[i].data[values[i].len - 1]; /* ASan: the bytes are readable */
    return SQLV_OK;
}

int sqlv_session_describe(sqlv_session *s, char kind, const char *name, const sqlv_sink *sink)
{
    (void)s; (void)kind; (void)name;
    return sink->no_data && sink->no_data(sink->ctx) ? SQLV_ERR_ABORTED : SQLV_OK;
}

int sqlv_session_execute(sqlv_session *s, const char *portal, uint64_t max_rows,
                         const sqlv_sink *sink)
{
    (void)s; (void)portal; (void)max_rows;
    return sink->command_complete(sink->ctx, "SELECT 0") ? SQLV_ERR_ABORTED : SQLV_OK;
}

int sqlv_session_close_object(sqlv_session *s, char kind, const char *name)
{
    (void)s; (void)kind; (void)name;
    return SQLV_OK;
}

int sqlv_session_sync(sqlv_session *s, const sqlv_sink *sink)
{
    (void)sink;
    if (s->status == 'E')
        s->status = 'I';
    return SQLV_OK;
}

/* COPY FROM STDIN: the fake engine never enters copy-in mode. */
void sqlv_session_set_copy_in(sqlv_session *s, sqlv_copy_in_fn fn)
{
    (void)s, (void)fn;
}
/* COPY TO STDOUT: neither. */
void sqlv_session_set_copy_out(sqlv_session *s, const sqlv_copy_out_fns *fns)
{
    (void)s, (void)fns;
}
bool sqlv_session_in_copy(const sqlv_session *s)
{
    (void)s;
    return false;
}
int sqlv_session_copy_data(sqlv_session *s, const char *data, size_t len, const sqlv_sink *sink)
{
    (void)s, (void)data, (void)len, (void)sink;
    return SQLV_OK;
}
int sqlv_session_copy_done(sqlv_session *s, const sqlv_sink *sink)
{
    (void)s, (void)sink;
    return SQLV_OK;
}
int sqlv_session_copy_fail(sqlv_session *s, const char *message, const sqlv_sink *sink)
{
    (void)s, (void)message, (void)sink;
    return SQLV_OK;
}

/* ---- users (sqlv_auth_lookup) ------------------------------------------------- */

static sqlv_auth_info fake_users[FAKE_USERS_MAX];
static char fake_user_names[FAKE_USERS_MAX][64];
static int fake_nusers;
static bool fake_lookup_fails;
static int fake_lookup_count;
static char fake_hba[SQLV_AUTH_HBA_BYTES_MAX + 1];

void fake_set_user(const char *name, const char *verifier, bool can_login, bool is_admin)
{
    pthread_mutex_lock(&fake_mu);
    int i = 0;
    while (i < fake_nusers && strcmp(fake_user_names[i], name) != 0)
        i++;
    if (i < FAKE_USERS_MAX) {
        if (i == fake_nusers)
            fake_nusers++;
        base_strlcpy(fake_user_names[i], name, sizeof fake_user_names[i]);
        memset(&fake_users[i], 0, sizeof fake_users[i]);
        fake_users[i].exists = true;
        fake_users[i].can_login = can_login;
        fake_users[i].is_admin = is_admin;
        base_strlcpy(fake_users[i].verifier, verifier, sizeof fake_users[i].verifier);
    }
    pthread_mutex_unlock(&fake_mu);
}

void fake_clear_users(void)
{
    pthread_mutex_lock(&fake_mu);
    fake_nusers = 0;
    fake_hba[0] = '\0';
    pthread_mutex_unlock(&fake_mu);
}

void fake_set_conn_limit(const char *name, int limit)
{
    pthread_mutex_lock(&fake_mu);
    for (int i = 0; i < fake_nusers; i++) {
        if (strcmp(fake_user_names[i], name) == 0) {
            fake_users[i].conn_limited = limit >= 0;
            fake_users[i].conn_limit = limit >= 0 ? limit : 0;
        }
    }
    pthread_mutex_unlock(&fake_mu);
}

void fake_set_hba(const char *text)
{
    pthread_mutex_lock(&fake_mu);
    base_strlcpy(fake_hba, text, sizeof fake_hba);
    pthread_mutex_unlock(&fake_mu);
}

void fake_fail_lookups(bool on)
{
    pthread_mutex_lock(&fake_mu);
    fake_lookup_fails = on;
    pthread_mutex_unlock(&fake_mu);
}

int fake_lookups(void)
{
    pthread_mutex_lock(&fake_mu);
    int n = fake_lookup_count;
    pthread_mutex_unlock(&fake_mu);
    return n;
}

int sqlv_auth_lookup(sqlv_engine *e, const char *user, sqlv_auth_info *out)
{
    (void)e;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&fake_mu);
    fake_lookup_count++;
    int rc = fake_lookup_fails ? SQLV_ERR_INTERNAL : SQLV_OK;
    for (int i = 0; rc == SQLV_OK && i < fake_nusers; i++)
        if (strcmp(fake_user_names[i], user) == 0)
            *out = fake_users[i];
    if (rc == SQLV_OK)
        base_strlcpy(out->hba_conf, fake_hba, sizeof out->hba_conf);
    pthread_mutex_unlock(&fake_mu);
    return rc;
}
