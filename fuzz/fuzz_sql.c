/*
** fuzz/fuzz_sql.c: the SQL entry point. Statement text goes through the
** PostgreSQL dialect rewriter alone (sql/dialect.c:
** sqlv__dialect_rewrite), then through a whole session (sqlv_session_exec:
** splitting, the rewriter, SQLite, the virtual tables, txn/, the in-memory
** storage twin) on a single-node engine made for this input.
**
** Input: query text, as a Query message carries it (up to the first NUL).
** The session is root's (every privilege; the authorizer still runs).
**
** Invariants: see fuzz.h. A fresh engine per input keeps inputs
** independent (a crash reproduces from its file alone). A statement that
** runs longer than FUZZ_SQL_STATEMENT_MS (WITH RECURSIVE without end, a
** huge generate_series) is cancelled by a watchdog thread, as a client's
** CancelRequest would: slow SQL is not what this harness hunts.
*/
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "fuzz/fuzz.h"
#include "sql/sql.h"
#include "sql/sql_dialect.h"

#define FUZZ_SQL_STATEMENT_MS 1000
#define FUZZ_SQL_QUERY_MAX_BYTES (64 * 1024)

/* ---- watchdog ---------------------------------------------------------------- */
static pthread_mutex_t wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond = PTHREAD_COND_INITIALIZER;
static sqlv_session *wd_session; /* [wd_mu] the running input's, or NULL */
static struct timespec wd_deadline; /* [wd_mu] */

static bool after(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec >= b->tv_nsec);
}

/* Runs for the life of the process (the harness never ends on its own
** terms: libFuzzer or the replay main exits). */
static void *wd_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wd_mu);
    for (;;) {
        struct timespec now, next;
        clock_gettime(CLOCK_REALTIME, &now);
        if (wd_session != NULL && after(&now, &wd_deadline))
            sqlv_session_cancel(wd_session); /* again each turn: each statement resets it */
        next = now;
        next.tv_nsec += 100 * 1000 * 1000;
        if (next.tv_nsec >= 1000000000) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&wd_cond, &wd_mu, &next);
    }
    return NULL;
}

static void wd_start(void)
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, wd_main, NULL) != 0)
        abort();
    pthread_detach(thread);
}

/* Watch s from now on (NULL: nothing runs). */
static void wd_watch(sqlv_session *s)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, wd_start);
    pthread_mutex_lock(&wd_mu);
    wd_session = s;
    clock_gettime(CLOCK_REALTIME, &wd_deadline);
    wd_deadline.tv_sec += FUZZ_SQL_STATEMENT_MS / 1000;
    pthread_mutex_unlock(&wd_mu);
}

/* ---- a sink that drops everything ------------------------------------------------ */
static int sink_desc(void *ctx, int n, const sqlv_column *cols) { return 0; }
static int sink_row(void *ctx, int n, const sqlv_cell *cells)
{
    /* touch every byte of every value, as the gateway's DataRow does */
    size_t *sum = ctx;
    for (int i = 0; i < n; i++)
        for (size_t j = 0; cells[i].data != NULL && j < cells[i].len; j++)
            *sum += (uint8_t)cells[i].data[j];
    return 0;
}
static int sink_tag(void *ctx, const char *tag) { return 0; }
static int sink_empty(void *ctx) { return 0; }
static int sink_error(void *ctx, const char *state, const char *msg) { return 0; }
static int sink_notice(void *ctx, const char *msg) { return 0; }

/* ---- the input --------------------------------------------------------------- */
static void rewrite_alone(const char *q, size_t len)
{
    sqlv__rewrite rw;
    memset(&rw, 0, sizeof rw);
    if (sqlv__dialect_rewrite(q, len, &rw) == 0)
        base_free(rw.text);
}

static void run_session(const char *q, size_t len)
{
    hlc_clock *clock = NULL;
    storage_engine *engine = NULL;
    txn_db *db = NULL;
    sqlv_engine *sql = NULL;
    sqlv_session *s = NULL;
    storage_options so = {.dir = NULL, .create_if_missing = true};
    if (hlc_clock_new(hlc_system_clock(), HLC_DEFAULT_MAX_OFFSET_NS, &clock) != 0)
        abort();
    if (storage_open(&so, &engine) != STORAGE_OK)
        abort();
    txn_db_options o = {.engine = engine, .clock = clock, .sync_commits = false};
    if (txn_db_open(&o, &db) != TXN_OK)
        abort();
    if (sqlv_engine_open(db, &sql) != SQLV_OK)
        abort();
    if (sqlv_session_open(sql, "root", "defaultdb", &s) != SQLV_OK)
        abort();
    size_t sum = 0;
    sqlv_sink sink = {&sum, sink_desc, sink_row, sink_tag, sink_empty, sink_error, sink_notice,
                      NULL, NULL, NULL};
    wd_watch(s);
    (void)sqlv_session_exec(s, q, len, &sink);
    wd_watch(NULL);
    sqlv_session_close(s);
    sqlv_engine_close(sql);
    txn_db_close(db);
    storage_close(engine);
    hlc_clock_free(clock);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_SQL_QUERY_MAX_BYTES)
        return 0;
    base_log_set_level(BASE_LOG_ERROR); /* no INFO line per engine opened */
    const uint8_t *nul = memchr(data, '\0', size);
    size_t len = nul ? (size_t)(nul - data) : size;
    /* the gateway hands the session a NUL-terminated copy */
    char *q = base_malloc(len + 1);
    if (q == NULL)
        return 0;
    memcpy(q, data, len);
    q[len] = '\0';
    rewrite_alone(q, len);
    run_session(q, len);
    base_free(q);
    return 0;
}
