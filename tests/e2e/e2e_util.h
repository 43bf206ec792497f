/*
** tests/e2e/e2e_util.h: small libpq helpers shared by the e2e tests
** (header-only; each test binary includes it once).
*/
#ifndef MERIDIAN_E2E_UTIL_H
#define MERIDIAN_E2E_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libpq-fe.h>

#include "base/base.h"
#include "tests/lib/mtest_node.h"

/* Run sql, assert the result status is `want`; returns the result
** (owner: caller, PQclear). */
static PGresult *e2e_exec_status(PGconn *c, const char *sql, ExecStatusType want) {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != want) {
        print_error("%s: status %s, want %s: %s\n", sql, PQresStatus(PQresultStatus(r)),
                    PQresStatus(want), PQresultErrorMessage(r));
        PQclear(r);
        fail();
    }
    return r;
}

static void e2e_ok(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        print_error("%s: %s: %s\n", sql, PQresStatus(st), PQresultErrorMessage(r));
        PQclear(r);
        fail();
    }
    PQclear(r);
}

/* Run sql expecting an error with this SQLSTATE. */
static void e2e_fails(PGconn *c, const char *sql, const char *sqlstate) {
    PGresult *r = PQexec(c, sql);
    const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQresultStatus(r) != PGRES_FATAL_ERROR || got == NULL || strcmp(got, sqlstate) != 0) {
        print_error("%s: status %s sqlstate %s, want error %s (%s)\n", sql,
                    PQresStatus(PQresultStatus(r)), got ? got : "(none)", sqlstate,
                    PQresultErrorMessage(r));
        PQclear(r);
        fail();
    }
    PQclear(r);
}

/* All rows of a query as "a|b\nc|d\n" (NULL as "NULL"). owner: caller,
** base_free. */
static char *e2e_rows(PGconn *c, const char *sql) {
    PGresult *r = e2e_exec_status(c, sql, PGRES_TUPLES_OK);
    base_buf b = {0};
    for (int i = 0; i < PQntuples(r); i++) {
        for (int j = 0; j < PQnfields(r); j++) {
            if (j > 0) base_buf_append_byte(&b, '|');
            const char *v = PQgetisnull(r, i, j) ? "NULL" : PQgetvalue(r, i, j);
            base_buf_append(&b, v, strlen(v));
        }
        base_buf_append_byte(&b, '\n');
    }
    base_buf_append_byte(&b, 0);
    PQclear(r);
    return (char *)b.data;
}

static void e2e_rows_equal(PGconn *c, const char *sql, const char *want) {
    char *got = e2e_rows(c, sql);
    if (strcmp(got, want) != 0) {
        print_error("%s:\n got: %s\nwant: %s\n", sql, got, want);
        base_free(got);
        fail();
    }
    base_free(got);
}

/* One node shared by every test of a binary: cmocka group setup/teardown
** start it and stop it (the teardown fails unless it exits 0 on SIGTERM).
** Unused in binaries that manage their own nodes. */
__attribute__((unused)) static mtest_node e2e_node;

__attribute__((unused)) static int e2e_group_setup(void **state) {
    (void)state;
    return mtest_node_start(&e2e_node, NULL, NULL) == 0 ? 0 : -1;
}

__attribute__((unused)) static int e2e_group_teardown(void **state) {
    (void)state;
    int st = mtest_node_stop(&e2e_node);
    mtest_node_destroy(&e2e_node);
    if (st != 0) {
        fprintf(stderr, "node exit status after SIGTERM: %d (want 0)\n", st);
        return -1;
    }
    return 0;
}

/* A connection to the shared node (owner: caller, PQfinish). */
__attribute__((unused)) static PGconn *e2e_conn(void) {
    PGconn *c = mtest_connect(&e2e_node);
    assert_non_null(c);
    return c;
}

#endif
