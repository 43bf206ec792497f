/*
** End-to-end: the extended query protocol against one real `meridian
** start` process. The issue 2 accounts scenario through PQexecParams and
** PQprepare/PQexecPrepared inside transactions, binary parameters and
** results, a pipeline with an error in the middle, and a second session
** that sees only committed transfers.
*/
#include "tests/e2e/e2e_util.h"

#include <arpa/inet.h>

static void params_ok(PGconn *c, const char *sql, int n, const char *const *v, const char *tuples) {
    PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        print_error("%s: %s: %s\n", sql, PQresStatus(st), PQresultErrorMessage(r));
        PQclear(r);
        fail();
    }
    if (tuples != NULL) assert_string_equal(PQcmdTuples(r), tuples);
    PQclear(r);
}

static void params_fail(PGconn *c, const char *sql, int n, const char *const *v,
                        const char *sqlstate) {
    PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
    const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQresultStatus(r) != PGRES_FATAL_ERROR || got == NULL || strcmp(got, sqlstate) != 0) {
        print_error("%s: %s %s, want %s\n", sql, PQresStatus(PQresultStatus(r)),
                    got ? got : "(none)", sqlstate);
        PQclear(r);
        fail();
    }
    PQclear(r);
}

static void test_accounts_with_parameters(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE accounts (id INT PRIMARY KEY, owner TEXT NOT NULL, balance INT)");
    const char *ins = "INSERT INTO accounts VALUES ($1, $2, $3)";
    const char *a[] = {"1", "ada", "100"}, *b[] = {"2", "bob", "50"};
    params_ok(c, ins, 3, a, "1");
    params_ok(c, ins, 3, b, "1");
    e2e_rows_equal(c, "SELECT id, owner, balance FROM accounts ORDER BY id",
                   "1|ada|100\n2|bob|50\n");

    /* a transfer inside a transaction, through prepared statements */
    PGresult *r = PQprepare(c, "move", "UPDATE accounts SET balance = balance + $1 WHERE id = $2",
                            0, NULL);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    e2e_ok(c, "BEGIN");
    const char *debit[] = {"-30", "1"}, *credit[] = {"30", "2"};
    r = PQexecPrepared(c, "move", 2, debit, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdTuples(r), "1");
    PQclear(r);
    PGconn *other = e2e_conn();
    e2e_rows_equal(other, "SELECT balance FROM accounts WHERE id = 1", "100\n");
    r = PQexecPrepared(c, "move", 2, credit, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    const char *one[] = {"1"};
    r = PQexecParams(c, "SELECT balance FROM accounts WHERE id = $1", 1, NULL, one, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "70"); /* its own write */
    PQclear(r);
    e2e_ok(c, "COMMIT");
    e2e_rows_equal(other, "SELECT id, balance FROM accounts ORDER BY id", "1|70\n2|80\n");

    /* a transfer that is rolled back */
    e2e_ok(c, "BEGIN");
    r = PQexecPrepared(c, "move", 2, debit, NULL, NULL, 0);
    PQclear(r);
    e2e_ok(c, "ROLLBACK");
    e2e_rows_equal(other, "SELECT sum(balance) FROM accounts", "150\n");

    /* an error inside the block: 25P02 until ROLLBACK */
    e2e_ok(c, "BEGIN");
    const char *dup[] = {"1", "again", "0"};
    params_fail(c, ins, 3, dup, "23505");
    params_fail(c, "SELECT balance FROM accounts WHERE id = $1", 1, one, "25P02");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INERROR);
    e2e_ok(c, "ROLLBACK");
    /* a NOT NULL violation through a NULL parameter */
    const char *nul[] = {"3", NULL, "1"};
    params_fail(c, ins, 3, nul, "23502");

    /* binary parameter and result */
    uint32_t id = htonl(2);
    const char *bv[] = {(const char *)&id};
    const int blen[] = {4}, bfmt[] = {1};
    const Oid btype[] = {23};
    r = PQexecParams(c, "SELECT id, owner, balance FROM accounts WHERE id = $1", 1, btype, bv,
                     blen, bfmt, 1);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    uint32_t got;
    memcpy(&got, PQgetvalue(r, 0, 2), 4);
    assert_int_equal(ntohl(got), 80);
    assert_string_equal(PQgetvalue(r, 0, 1), "bob");
    PQclear(r);
    PQfinish(other);
    PQfinish(c);
}

static void test_pipeline_error_rolls_back(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE pipe (id INT PRIMARY KEY, v TEXT)");
    assert_int_equal(PQenterPipelineMode(c), 1);
    const char *ins = "INSERT INTO pipe VALUES ($1, $2)";
    const char *a[] = {"1", "a"}, *bad[] = {"x", "b"}, *c3[] = {"3", "c"};
    assert_int_equal(PQsendQueryParams(c, ins, 2, NULL, a, NULL, NULL, 0), 1);
    assert_int_equal(PQsendQueryParams(c, ins, 2, NULL, bad, NULL, NULL, 0), 1);
    assert_int_equal(PQsendQueryParams(c, ins, 2, NULL, c3, NULL, NULL, 0), 1);
    assert_int_equal(PQpipelineSync(c), 1);
    ExecStatusType want[] = {PGRES_COMMAND_OK, PGRES_FATAL_ERROR, PGRES_PIPELINE_ABORTED,
                             PGRES_PIPELINE_SYNC};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        PGresult *r = PQgetResult(c);
        assert_non_null(r);
        assert_int_equal(PQresultStatus(r), want[i]);
        PQclear(r);
        if (want[i] != PGRES_PIPELINE_SYNC) assert_null(PQgetResult(c));
    }
    assert_int_equal(PQexitPipelineMode(c), 1);
    e2e_rows_equal(c, "SELECT count(*) FROM pipe", "0\n"); /* all or nothing */
    e2e_fails(c, "SELECT * FROM no_such_table", "42P01"); /* simple protocol still fine */
    PQfinish(c);
}

/* Issue 8: RETURNING through PQexecParams (Parse/Bind/Describe/Execute),
** and ON CONFLICT / UPDATE / DELETE ... RETURNING over the wire. */
static void test_upsert_and_returning(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE ups (id INT PRIMARY KEY, name TEXT UNIQUE, n INT)");
    const char *v[] = {"1", "ann"};
    PGresult *r = PQexecParams(c, "INSERT INTO ups (id, name, n) VALUES ($1, $2, 1) RETURNING id, "
                                  "name, n * 10 AS tens",
                               2, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        print_error("INSERT RETURNING: %s\n", PQresultErrorMessage(r));
        PQclear(r);
        fail();
    }
    assert_int_equal(PQnfields(r), 3);
    assert_string_equal(PQfname(r, 0), "id");
    assert_string_equal(PQfname(r, 2), "tens");
    assert_int_equal(PQftype(r, 0), 23);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 1), "ann");
    assert_string_equal(PQgetvalue(r, 0, 2), "10");
    assert_string_equal(PQcmdTuples(r), "1");
    PQclear(r);
    /* the simple protocol runs the ones SQLite refuses on virtual tables */
    e2e_rows_equal(c,
                   "INSERT INTO ups VALUES (1, 'ann', 5), (2, 'bob', 7) ON CONFLICT (id) DO UPDATE "
                   "SET n = ups.n + excluded.n RETURNING id, n",
                   "1|6\n2|7\n");
    e2e_ok(c, "INSERT INTO ups VALUES (3, 'ann', 0) ON CONFLICT DO NOTHING");
    e2e_fails(c, "INSERT INTO ups VALUES (3, 'x', 0) ON CONFLICT (n) DO NOTHING", "42P10");
    e2e_fails(c,
              "INSERT INTO ups VALUES (4, 'x', 0), (4, 'y', 0) ON CONFLICT (id) DO UPDATE SET "
              "n = 1",
              "21000");
    e2e_rows_equal(c, "UPDATE ups SET n = n + 100 WHERE id = 2 RETURNING *", "2|bob|107\n");
    e2e_rows_equal(c, "DELETE FROM ups WHERE id = 1 RETURNING name", "ann\n");
    e2e_rows_equal(c, "SELECT id, name, n FROM ups ORDER BY id", "2|bob|107\n");
    /* and through Parse/Bind/Execute with parameters */
    const char *w[] = {"2", "bob", "3"};
    r = PQexecParams(c, "INSERT INTO ups VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET n = "
                        "ups.n + excluded.n RETURNING n",
                     3, NULL, w, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQfname(r, 0), "n");
    assert_int_equal(PQftype(r, 0), 23);
    assert_string_equal(PQgetvalue(r, 0, 0), "110");
    assert_string_equal(PQcmdTuples(r), "1");
    PQclear(r);
    const char *two[] = {"2"};
    r = PQexecParams(c, "DELETE FROM ups WHERE id = $1 RETURNING id, name", 1, NULL, two, NULL,
                     NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 1), "bob");
    assert_string_equal(PQcmdTuples(r), "1");
    PQclear(r);
    params_fail(c, "INSERT INTO ups VALUES ($1, 'z', 0), ($1, 'y', 0) ON CONFLICT (id) DO UPDATE "
                   "SET n = 1", 1, two, "21000");
    e2e_rows_equal(c, "SELECT count(*) FROM ups", "0\n");
    PQfinish(c);
}

/* Issue 8: the identity rules through Parse/Bind/Execute, as the simple
** protocol has them (428C9, OVERRIDING SYSTEM/USER VALUE, UPDATE of an
** ALWAYS column only to DEFAULT), and SELECT from a sequence. */
static void test_identity_prepared(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE idp (id INT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v TEXT)");
    e2e_ok(c, "CREATE TABLE idd (id INT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v TEXT)");
    const char *a[] = {"a"}, *given[] = {"50", "b"}, *sys[] = {"70", "c"};
    params_ok(c, "INSERT INTO idp (v) VALUES ($1)", 1, a, "1");
    params_fail(c, "INSERT INTO idp (id, v) VALUES ($1, $2)", 2, given, "428C9");
    params_fail(c, "INSERT INTO idp SELECT $1::int, $2", 2, given, "428C9");
    params_ok(c, "INSERT INTO idp (id, v) OVERRIDING USER VALUE VALUES ($1, $2)", 2, given, "1");
    params_ok(c, "INSERT INTO idp (id, v) OVERRIDING SYSTEM VALUE VALUES ($1, $2)", 2, sys, "1");
    e2e_rows_equal(c, "SELECT id, v FROM idp ORDER BY id", "1|a\n2|b\n70|c\n");
    /* BY DEFAULT: a value is taken, unless OVERRIDING USER VALUE */
    params_ok(c, "INSERT INTO idd (id, v) VALUES ($1, $2)", 2, given, "1");
    params_ok(c, "INSERT INTO idd (id, v) OVERRIDING USER VALUE VALUES ($1, $2)", 2, sys, "1");
    e2e_rows_equal(c, "SELECT id, v FROM idd ORDER BY id", "1|c\n50|b\n");
    /* a prepared statement, executed twice */
    PGresult *r = PQprepare(c, "ins_idp", "INSERT INTO idp (v) VALUES ($1)", 0, NULL);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    const char *d[] = {"d"}, *e[] = {"e"};
    r = PQexecPrepared(c, "ins_idp", 1, d, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    r = PQexecPrepared(c, "ins_idp", 1, e, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    e2e_rows_equal(c, "SELECT id FROM idp WHERE v IN ('d', 'e') ORDER BY id", "3\n4\n");
    /* UPDATE: only to DEFAULT */
    const char *nine[] = {"9", "a"}, *av[] = {"a"};
    params_fail(c, "UPDATE idp SET id = $1 WHERE v = $2", 2, nine, "428C9");
    r = PQprepare(c, "upd_idp", "UPDATE idp SET id = $1 WHERE v = 'a'", 0, NULL);
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "428C9");
    PQclear(r);
    params_ok(c, "UPDATE idp SET id = DEFAULT WHERE v = $1", 1, av, "1");
    e2e_rows_equal(c, "SELECT id FROM idp WHERE v = 'a'", "5\n");
    /* a sequence read as a relation */
    e2e_ok(c, "CREATE SEQUENCE idp_s START 10");
    e2e_rows_equal(c, "SELECT last_value, log_cnt, is_called FROM idp_s", "10|0|f\n");
    e2e_ok(c, "SELECT nextval('idp_s')");
    r = PQexecParams(c, "SELECT last_value, is_called FROM idp_s WHERE last_value > $1", 1, NULL,
                     (const char *const[]){"0"}, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "10");
    assert_string_equal(PQgetvalue(r, 0, 1), "t");
    PQclear(r);
    PQfinish(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accounts_with_parameters),
        cmocka_unit_test(test_pipeline_error_rolls_back),
        cmocka_unit_test(test_upsert_and_returning),
        cmocka_unit_test(test_identity_prepared),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup, e2e_group_teardown);
}
