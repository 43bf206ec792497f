/* tests/gateway/gw_real_stack.c: see gw_real_stack.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include "gw_real_stack.h"
#include "gw_test_util.h"

int tu_real_setup(void **state)
{
    base_log_set_level(BASE_LOG_WARN);
    tu_real_fixture *f = base_calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(hlc_clock_new(hlc_system_clock(), HLC_DEFAULT_MAX_OFFSET_NS, &f->clock), 0);
    storage_options so = {.dir = NULL, .create_if_missing = true};
    assert_int_equal(storage_open(&so, &f->storage), 0);
    txn_db_options to = {.engine = f->storage, .clock = f->clock, .sync_commits = false};
    assert_int_equal(txn_db_open(&to, &f->db), 0);
    assert_int_equal(sqlv_engine_open(f->db, &f->engine), SQLV_OK);
    gw_options go = {.host = "127.0.0.1", .port = 0};
    assert_int_equal(gw_start(f->engine, &go, &f->server), GW_OK);
    *state = f;
    return 0;
}

int tu_real_teardown(void **state)
{
    tu_real_fixture *f = *state;
    gw_stop(f->server);
    sqlv_engine_close(f->engine);
    txn_db_close(f->db);
    storage_close(f->storage);
    hlc_clock_free(f->clock);
    base_free(f);
    return 0;
}

PGconn *tu_real_connect(void **state)
{
    tu_real_fixture *f = *state;
    PGconn *c = tu_pq(gw_port(f->server), "sslmode=disable");
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

void tu_exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}
