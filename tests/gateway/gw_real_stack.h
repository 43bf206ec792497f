/*
** Gateway tests against the real engine: sql -> txn -> storage in memory,
** with a gateway on a free loopback port. Include after cmocka.h.
*/
#ifndef MERIDIAN_TESTS_GW_REAL_STACK_H
#define MERIDIAN_TESTS_GW_REAL_STACK_H

#include <libpq-fe.h>

#include "gateway/gateway.h"
#include "storage/storage.h"
#include "timestamp/timestamp.h"
#include "txn/txn.h"

typedef struct tu_real_fixture {
    hlc_clock *clock;
    storage_engine *storage;
    txn_db *db;
    sqlv_engine *engine;
    gw_server *server;
} tu_real_fixture;

/* cmocka group setup/teardown: *state is the tu_real_fixture (owner: these). */
int tu_real_setup(void **state);
int tu_real_teardown(void **state); /* every session is closed when gw_stop returns */
/* A libpq connection to the fixture's gateway (owner: caller, PQfinish). */
PGconn *tu_real_connect(void **state);
/* Run sql; fail the test unless it returns COMMAND_OK or TUPLES_OK. */
void tu_exec_ok(PGconn *c, const char *sql);

#endif
