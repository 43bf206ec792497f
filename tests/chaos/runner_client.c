/*
** tests/chaos/runner_client.c: the clients' side of a chaos run: libpq
** statements with a deadline, reconnecting, classifying outcomes, and the
** shared history record.
**
** Outcome rules (docs/chaos.md, "The runner"):
**   - a statement that returned CommandComplete/rows: ok;
**   - an error with a SQLSTATE on a live connection: fail (nothing
**     committed: 40001, 0A000, 57P03, 23505...), except 40003, whose commit
**     may or may not have applied: info;
**   - a connection that broke or a deadline that passed (the connection is
**     then closed): info at a commit point (an autocommit write, a COMMIT),
**     fail anywhere else (the server rolls back an open transaction whose
**     client went away, and a read has no effect).
**
** Invariants: a client's connection is either NULL or was usable after
** its last statement; a statement never outlives its deadline by more than
** one poll step; history lines are appended whole under the mutex.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/chaos/runner.h"

/* ---- history -------------------------------------------------------------- */

int crun_history_init(crun_history *h, int64_t t0_ns) {
    memset(h, 0, sizeof *h);
    h->t0_ns = t0_ns;
    return pthread_mutex_init(&h->mu, NULL) == 0 ? 0 : -1;
}

void crun_history_free(crun_history *h) {
    base_buf_free(&h->text);
    pthread_mutex_destroy(&h->mu);
}

static const char *type_name(crun_outcome t) {
    return t == CRUN_OK ? "ok" : t == CRUN_FAIL ? "fail" : "info";
}

void crun_history_add(crun_history *h, int64_t process, crun_outcome type, int64_t invoke_ns,
                      int64_t complete_ns, const char *mops) {
    char complete[32];
    if (type == CRUN_INFO) snprintf(complete, sizeof complete, "-");
    else snprintf(complete, sizeof complete, "%lld", (long long)(complete_ns - h->t0_ns));
    pthread_mutex_lock(&h->mu);
        if (base_buf_printf(&h->text, "%lld %s %lld %s %s\n", (long long)process, type_name(type),
                        (long long)(invoke_ns - h->t0_ns), complete, mops) == 0)
        h->counts[type]++;
    else
        h->dropped++; /* the history is incomplete: the run gives no verdict */
    pthread_mutex_unlock(&h->mu);
}

void crun_history_comment(crun_history *h, const char *fmt, ...) {
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    for (char *p = text; *p; p++) {
        if (*p == '\n') *p = ' ';
    }
    pthread_mutex_lock(&h->mu);
    base_buf_printf(&h->text, "# %s\n", text);
    pthread_mutex_unlock(&h->mu);
}

void crun_history_count_state(crun_history *h, const char *code) {
    pthread_mutex_lock(&h->mu);
    int i = 0;
    while (i < h->n_states && strcmp(h->states[i].code, code) != 0) i++;
    if (i == h->n_states && h->n_states < CRUN_SQLSTATES_MAX) {
        base_strlcpy(h->states[i].code, code, sizeof h->states[i].code);
        h->n_states++;
    }
    if (i < h->n_states) h->states[i].n++;
    pthread_mutex_unlock(&h->mu);
}

void crun_history_oddity(crun_history *h, const char *fmt, ...) {
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&h->mu);
    if (h->oddities++ == 0) base_strlcpy(h->oddity_first, text, sizeof h->oddity_first);
    base_buf_printf(&h->text, "# ODDITY %s\n", text);
    pthread_mutex_unlock(&h->mu);
}

/* ---- randomness ----------------------------------------------------------- */

uint64_t crun_rand(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int64_t crun_rand_range(uint64_t *state, int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    return lo + (int64_t)(crun_rand(state) % (uint64_t)(hi - lo + 1));
}

/* ---- connections ------------------------------------------------------------ */

bool crun_client_connect(crun_client *c) {
    crun_cluster *cl = c->ctx->cluster;
    for (int k = 0; k < cl->n; k++) {
        if (atomic_load(&c->ctx->stop)) return false;
        int i = (c->node + k) % cl->n;
        PGconn *pg = crun_connect(cl, i);
        if (pg != NULL) {
            c->pg = pg;
            c->node = i;
            crun_history_comment(c->ctx->history, "client %d (process %lld) connected to n%d",
                                 c->index, (long long)c->process, i + 1);
            return true;
        }
    }
    return false;
}

void crun_client_disconnect(crun_client *c) {
    if (c->pg == NULL) return;
    PQfinish(c->pg);
    c->pg = NULL;
    c->node = (c->node + 1) % c->ctx->cluster->n; /* the next connect tries another node */
}

/* Wait for events on the connection's socket until the deadline: 1 ready,
** 0 deadline passed, -1 error. */
static int wait_socket(PGconn *pg, short events, int64_t deadline_ns) {
    int fd = PQsocket(pg);
    if (fd < 0) return -1;
    for (;;) {
        int64_t left_ms = (deadline_ns - base_monotonic_ns()) / 1000000;
        if (left_ms <= 0) return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)BASE_MIN(left_ms, 1000));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r > 0) return 1;
    }
}

crun_exec_rc crun_exec(crun_client *c, const char *sql, int64_t deadline_ns, PGresult **res) {
    *res = NULL;
    PGresult *keep = NULL;
    crun_exec_rc rc = CRUN_EXEC_BROKEN;
    if (c->pg == NULL) return CRUN_EXEC_BROKEN;
    if (!PQsendQuery(c->pg, sql)) goto cleanup;
    for (;;) { /* the query may not fit the socket buffer at once */
        int f = PQflush(c->pg);
        if (f == 0) break;
        if (f < 0) goto cleanup;
        int w = wait_socket(c->pg, POLLOUT | POLLIN, deadline_ns);
        if (w == 0) {
            rc = CRUN_EXEC_TIMEOUT;
            goto cleanup;
        }
        if (w < 0 || !PQconsumeInput(c->pg)) goto cleanup;
    }
    for (int results = 0;; results++) {
        if (results == CRUN_RESULTS_MAX) goto cleanup; /* not our workload's statements */
        while (PQisBusy(c->pg)) {
            int w = wait_socket(c->pg, POLLIN, deadline_ns);
            if (w == 0) {
                rc = CRUN_EXEC_TIMEOUT;
                goto cleanup;
            }
            if (w < 0 || !PQconsumeInput(c->pg)) goto cleanup;
        }
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) break;
        /* Keep the first error, else the last result. */
        if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
            PQclear(r);
        } else {
            PQclear(keep);
            keep = r;
        }
    }
    if (PQstatus(c->pg) == CONNECTION_BAD || keep == NULL) goto cleanup;
    *res = keep;
    keep = NULL;
    rc = CRUN_EXEC_OK;
cleanup:
    PQclear(keep);
    if (rc != CRUN_EXEC_OK) crun_client_disconnect(c);
    return rc;
}

crun_outcome crun_classify(crun_client *c, crun_exec_rc rc, const PGresult *res,
                           bool commit_point) {
    crun_history *h = c->ctx->history;
    if (rc == CRUN_EXEC_TIMEOUT) {
        crun_history_count_state(h, "tmout");
        return commit_point ? CRUN_INFO : CRUN_FAIL;
    }
    if (rc == CRUN_EXEC_BROKEN || res == NULL) {
        crun_history_count_state(h, "conn");
        return commit_point ? CRUN_INFO : CRUN_FAIL;
    }
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return CRUN_OK;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state == NULL || state[0] == '\0') state = "none";
    crun_history_count_state(h, state);
    if (strcmp(state, "40003") == 0) return CRUN_INFO;
    return CRUN_FAIL;
}
