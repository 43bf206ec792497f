/*
** End-to-end: one real `meridian start` process (temp store, free port) for
** the whole group, driven over the wire by libpq, psql and `meridian sql`.
** Covers: DDL and DML, the issue's transaction session, constraint errors
** with their SQLSTATEs, an error inside a transaction block (25P02 until
** ROLLBACK), SAVEPOINT / ROLLBACK TO / RELEASE (simple and extended
** protocol), CockroachDB's retry loop (SAVEPOINT cockroach_restart), psql
** output that looks like PostgreSQL's (column names, booleans, DDL inside
** BEGIN, an all-or-nothing multi-statement -c), the shell's output (-e
** and stdin), and bad wire input (the node stays up and other sessions
** keep working).
*/
#include "tests/e2e/e2e_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define E2E_CMD_TIMEOUT_MS (60 * 1000)
#define E2E_FUZZ_ROUNDS 40

static void test_ddl_dml_and_issue_session(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    PGresult *r = e2e_exec_status(
        c, "CREATE TABLE accounts (id INT PRIMARY KEY, owner TEXT NOT NULL, balance INT)",
        PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "CREATE TABLE");
    PQclear(r);
    r = e2e_exec_status(c, "INSERT INTO accounts VALUES (1, 'ada', 100), (2, 'bob', 50)",
                        PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "INSERT 0 2");
    PQclear(r);
    /* The issue's transaction, as one multi-statement query string. */
    r = e2e_exec_status(c,
                        "BEGIN; UPDATE accounts SET balance = balance - 10 WHERE id = 1; "
                        "UPDATE accounts SET balance = balance + 10 WHERE id = 2; COMMIT;",
                        PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "COMMIT");
    PQclear(r);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    e2e_rows_equal(c, "SELECT * FROM accounts WHERE id BETWEEN 1 AND 2 ORDER BY id",
                   "1|ada|90\n2|bob|60\n");

    /* Column names and types as the PostgreSQL protocol reports them. */
    r = e2e_exec_status(c, "SELECT id, owner FROM accounts WHERE id = 1", PGRES_TUPLES_OK);
    assert_int_equal(PQnfields(r), 2);
    assert_string_equal(PQfname(r, 0), "id");
    assert_string_equal(PQfname(r, 1), "owner");
    PQclear(r);

    /* Statements one by one inside an explicit transaction. */
    e2e_ok(c, "BEGIN");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS);
    r = e2e_exec_status(c, "UPDATE accounts SET owner = 'ADA' WHERE id = 1", PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "UPDATE 1");
    PQclear(r);
    e2e_rows_equal(c, "SELECT owner FROM accounts WHERE id = 1", "ADA\n");
    e2e_ok(c, "ROLLBACK");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    e2e_rows_equal(c, "SELECT owner FROM accounts WHERE id = 1", "ada\n");

    /* Another session sees committed data. */
    PGconn *c2 = e2e_conn();
    e2e_rows_equal(c2, "SELECT count(*), sum(balance) FROM accounts", "2|150\n");
    PQfinish(c2);

    /* DELETE, DROP TABLE. */
    e2e_ok(c, "CREATE TABLE scratch (k INT PRIMARY KEY, v TEXT)");
    e2e_ok(c, "INSERT INTO scratch VALUES (1, 'a'), (2, 'b'), (3, NULL)");
    r = e2e_exec_status(c, "DELETE FROM scratch WHERE k >= 2", PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "DELETE 2");
    PQclear(r);
    e2e_rows_equal(c, "SELECT k, v FROM scratch ORDER BY k", "1|a\n");
    e2e_ok(c, "DROP TABLE scratch");
    r = PQexec(c, "SELECT * FROM scratch");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    e2e_ok(c, "CREATE TABLE scratch (k INT PRIMARY KEY, v TEXT)");
    e2e_rows_equal(c, "SELECT count(*) FROM scratch", "0\n"); /* the old rows went */
    e2e_ok(c, "DROP TABLE scratch");

    /* An empty query string. */
    r = PQexec(c, "");
    assert_int_equal(PQresultStatus(r), PGRES_EMPTY_QUERY);
    PQclear(r);
    PQfinish(c);
}

static void test_constraint_errors(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE users (id INT PRIMARY KEY, name TEXT NOT NULL)");
    e2e_ok(c, "INSERT INTO users VALUES (1, 'ada')");
    e2e_fails(c, "INSERT INTO users VALUES (1, 'again')", "23505");
    e2e_fails(c, "INSERT INTO users VALUES (2, NULL)", "23502");
    e2e_fails(c, "UPDATE users SET name = NULL WHERE id = 1", "23502");
    /* Statement atomicity: the good first row of a failing statement stays out. */
    e2e_fails(c, "INSERT INTO users VALUES (3, 'cy'), (1, 'dup')", "23505");
    e2e_rows_equal(c, "SELECT id, name FROM users ORDER BY id", "1|ada\n");
    e2e_fails(c, "SELECT * FROM no_such_table", "42P01");
    /* A syntax error has a SQLSTATE too; the session goes on. */
    PGresult *r = PQexec(c, "SELEC 1");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_non_null(PQresultErrorField(r, PG_DIAG_SQLSTATE));
    PQclear(r);
    e2e_rows_equal(c, "SELECT 1", "1\n");
    PQfinish(c);
}

static void test_error_inside_transaction_block(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE t_block (id INT PRIMARY KEY, v INT)");
    e2e_ok(c, "INSERT INTO t_block VALUES (1, 1)");
    e2e_ok(c, "BEGIN");
    e2e_ok(c, "INSERT INTO t_block VALUES (2, 2)");
    e2e_fails(c, "INSERT INTO t_block VALUES (1, 9)", "23505");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INERROR);
    e2e_fails(c, "SELECT * FROM t_block", "25P02");
    e2e_fails(c, "INSERT INTO t_block VALUES (3, 3)", "25P02");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INERROR);
    e2e_ok(c, "ROLLBACK");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    e2e_rows_equal(c, "SELECT id, v FROM t_block ORDER BY id", "1|1\n");

    /* COMMIT of a failed block rolls back (PostgreSQL answers ROLLBACK). */
    e2e_ok(c, "BEGIN");
    e2e_ok(c, "INSERT INTO t_block VALUES (4, 4)");
    e2e_fails(c, "INSERT INTO t_block VALUES (1, 1)", "23505");
    PGresult *r = PQexec(c, "COMMIT");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    PQclear(r);
    e2e_rows_equal(c, "SELECT count(*) FROM t_block", "1\n");
    PQfinish(c);
}

/* Run sql through the extended protocol (Parse/Bind/Execute/Sync, as
** drivers do); the SQLSTATE of its error, or "" (success). */
static void e2e_extended(PGconn *c, const char *sql, const char *want_sqlstate) {
    PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0);
    const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (got == NULL) got = "";
    if (strcmp(got, want_sqlstate) != 0) {
        print_error("%s (extended): sqlstate \"%s\", want \"%s\": %s\n", sql, got,
                    want_sqlstate, PQresultErrorMessage(r));
        PQclear(r);
        fail();
    }
    PQclear(r);
}

/* SAVEPOINT / ROLLBACK TO / RELEASE over the wire, simple and extended:
** the client retry pattern out of a failed block, DDL undone, 3B001 and
** 25P01; the committed rows are exactly the expected ones. */
static void test_savepoints(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE t_sp (id INT PRIMARY KEY, v TEXT)");
    e2e_fails(c, "SAVEPOINT a", "25P01");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    /* simple protocol */
    e2e_ok(c, "BEGIN");
    e2e_ok(c, "INSERT INTO t_sp VALUES (1, 'kept')");
    PGresult *r = e2e_exec_status(c, "SAVEPOINT a", PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "SAVEPOINT");
    PQclear(r);
    e2e_ok(c, "INSERT INTO t_sp VALUES (2, 'undone')");
    e2e_ok(c, "CREATE TABLE t_sp_gone (id INT PRIMARY KEY)");
    e2e_fails(c, "INSERT INTO t_sp VALUES (1, 'dup')", "23505");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INERROR);
    e2e_fails(c, "SELECT 1", "25P02");
    r = e2e_exec_status(c, "ROLLBACK TO SAVEPOINT a", PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "ROLLBACK");
    PQclear(r);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS);
    e2e_fails(c, "SELECT * FROM t_sp_gone", "42P01");
    e2e_ok(c, "ROLLBACK TO a");
    e2e_ok(c, "INSERT INTO t_sp VALUES (3, 'kept')");
    e2e_ok(c, "SAVEPOINT b");
    e2e_ok(c, "INSERT INTO t_sp VALUES (4, 'released')");
    r = e2e_exec_status(c, "RELEASE SAVEPOINT b", PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "RELEASE");
    PQclear(r);
    e2e_fails(c, "ROLLBACK TO b", "3B001");
    e2e_ok(c, "ROLLBACK TO a; INSERT INTO t_sp VALUES (3, 'kept'), (4, 'released')");
    e2e_ok(c, "COMMIT");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    e2e_rows_equal(c, "SELECT id, v FROM t_sp ORDER BY id", "1|kept\n3|kept\n4|released\n");
    e2e_fails(c, "SELECT * FROM t_sp_gone", "42P01");

    /* extended protocol (a driver's savepoint per statement) */
    e2e_extended(c, "BEGIN", "");
    e2e_extended(c, "SAVEPOINT s", "");
    e2e_extended(c, "INSERT INTO t_sp VALUES (5, 'ext')", "");
    e2e_extended(c, "RELEASE SAVEPOINT s", "");
    e2e_extended(c, "SAVEPOINT s", "");
    e2e_extended(c, "INSERT INTO t_sp VALUES (1, 'dup')", "23505");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INERROR);
    e2e_extended(c, "ROLLBACK TO SAVEPOINT s", "");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS);
    e2e_extended(c, "INSERT INTO t_sp VALUES (6, 'ext')", "");
    e2e_extended(c, "RELEASE s", "");
    e2e_extended(c, "ROLLBACK TO nope", "3B001");
    e2e_extended(c, "ROLLBACK TO nope", "3B001");
    e2e_extended(c, "COMMIT", ""); /* a failed block: PostgreSQL answers ROLLBACK */
    e2e_rows_equal(c, "SELECT count(*) FROM t_sp WHERE id >= 5", "0\n");
    e2e_extended(c, "BEGIN", "");
    e2e_extended(c, "SAVEPOINT s", "");
    e2e_extended(c, "INSERT INTO t_sp VALUES (5, 'ext')", "");
    e2e_extended(c, "SAVEPOINT t", "");
    e2e_extended(c, "INSERT INTO t_sp VALUES (6, 'undone')", "");
    e2e_extended(c, "ROLLBACK TO t", "");
    e2e_extended(c, "COMMIT", "");
    e2e_rows_equal(c, "SELECT id, v FROM t_sp ORDER BY id",
                   "1|kept\n3|kept\n4|released\n5|ext\n");
    PQfinish(c);
}

/* One statement of a cockroach_restart attempt: true if it succeeded (with
** want_tag as its command tag, or want_value as its one value when not
** NULL), false if it failed with 40001 (the attempt must restart); any
** other outcome fails the test. */
static bool e2e_attempt(PGconn *c, const char *sql, const char *want_tag,
                        const char *want_value) {
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (want_tag != NULL) assert_string_equal(PQcmdStatus(r), want_tag);
        if (want_value != NULL) {
            assert_int_equal(PQntuples(r), 1);
            assert_string_equal(PQgetvalue(r, 0, 0), want_value);
        }
        PQclear(r);
        return true;
    }
    const char *sqlstate = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (sqlstate == NULL || strcmp(sqlstate, "40001") != 0) {
        print_error("%s: sqlstate \"%s\", want success or 40001: %s\n", sql,
                    sqlstate != NULL ? sqlstate : "", PQresultErrorMessage(r));
        PQclear(r);
        fail();
    }
    PQclear(r);
    return false;
}

/* CockroachDB's client-side retry protocol over libpq: an attempt that read
** a row another session then changed (committed) fails with 40001, at its
** write or at RELEASE SAVEPOINT cockroach_restart; ROLLBACK TO SAVEPOINT
** cockroach_restart and the statements again then commit (RELEASE answers
** tag COMMIT); until COMMIT the block answers 25000; the final rows are
** exact. The other session only writes after the attempt's read, so it
** never waits on a lock the attempt holds: one thread drives both. */
static void test_cockroach_restart(void **state) {
    (void)state;
    PGconn *c = e2e_conn(), *other = e2e_conn();
    e2e_ok(c, "CREATE TABLE t_rs (id INT PRIMARY KEY, v INT)");
    e2e_ok(c, "INSERT INTO t_rs VALUES (1, 0)");
    e2e_ok(c, "BEGIN");
    e2e_ok(c, "SAVEPOINT cockroach_restart");
    int attempt = 0;
    for (;; attempt++) {
        assert_true(attempt < 5);
        bool ok = e2e_attempt(c, "SELECT v FROM t_rs WHERE id = 1", NULL,
                              attempt == 0 ? "0" : "10");
        assert_true(ok); /* a read of committed data does not conflict */
        if (attempt == 0) e2e_ok(other, "UPDATE t_rs SET v = v + 10 WHERE id = 1");
        ok = e2e_attempt(c, "UPDATE t_rs SET v = v + 1 WHERE id = 1", NULL, NULL) &&
             e2e_attempt(c, "INSERT INTO t_rs VALUES (2, 2)", NULL, NULL) &&
             e2e_attempt(c, "RELEASE SAVEPOINT cockroach_restart", "COMMIT", NULL);
        if (ok) break;
        assert_int_equal(PQtransactionStatus(c), PQTRANS_INERROR);
        e2e_ok(c, "ROLLBACK TO SAVEPOINT cockroach_restart");
        assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS);
    }
    assert_int_equal(attempt, 1);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS);
    e2e_rows_equal(other, "SELECT id, v FROM t_rs ORDER BY id", "1|11\n2|2\n");
    e2e_fails(c, "SELECT 1", "25000");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS);
    PGresult *r = e2e_exec_status(c, "COMMIT", PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "COMMIT");
    PQclear(r);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    e2e_rows_equal(c, "SELECT id, v FROM t_rs ORDER BY id", "1|11\n2|2\n");
    PQfinish(other);
    PQfinish(c);
}

static void test_psql_session(void **state) {
    (void)state;
    const char *argv[] = {
        "psql", "-X", "-v", "ON_ERROR_STOP=1", e2e_node.url,
        "-c", "CREATE TABLE accounts_psql (id INT PRIMARY KEY, owner TEXT NOT NULL, balance INT)",
        "-c", "INSERT INTO accounts_psql VALUES (1, 'ada', 100), (2, 'bob', 50)",
        "-c", "BEGIN; UPDATE accounts_psql SET balance = balance - 10 WHERE id = 1; "
              "UPDATE accounts_psql SET balance = balance + 10 WHERE id = 2; COMMIT;",
        "-c", "SELECT * FROM accounts_psql WHERE id BETWEEN 1 AND 2 ORDER BY id",
        NULL};
    char *out = NULL, *err = NULL;
    int st = mtest_run(argv, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    if (st != 0) print_error("psql exit %d\nstdout:\n%s\nstderr:\n%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "CREATE TABLE\n"));
    assert_non_null(strstr(out, "INSERT 0 2\n"));
    assert_non_null(strstr(out, "COMMIT\n"));
    const char *table = " id | owner | balance \n"
                        "----+-------+---------\n"
                        "  1 | ada   |      90\n"
                        "  2 | bob   |      60\n"
                        "(2 rows)\n";
    if (strstr(out, table) == NULL) print_error("psql stdout:\n%s\n", out);
    assert_non_null(strstr(out, table));
    base_free(out);
    base_free(err);

    /* psql -A -t gives the bare rows; and an error makes psql exit 1 (3 with
    ** ON_ERROR_STOP in a script, 1 with -c). */
    const char *argv2[] = {"psql", "-X", "-A", "-t", e2e_node.url, "-c",
                           "SELECT owner, balance FROM accounts_psql ORDER BY id", NULL};
    st = mtest_run(argv2, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    assert_int_equal(st, 0);
    assert_string_equal(out, "ada|90\nbob|60\n");
    base_free(out);
    base_free(err);
    const char *argv3[] = {"psql", "-X", "-v", "ON_ERROR_STOP=1", e2e_node.url, "-c",
                           "INSERT INTO accounts_psql VALUES (1, 'dup', 0)", NULL};
    st = mtest_run(argv3, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    assert_int_not_equal(st, 0);
    assert_non_null(strstr(err, "ERROR"));
    base_free(out);
    base_free(err);
}

/* What a psql user sees first: PostgreSQL's column names and booleans, DDL
** inside BEGIN, and a multi-statement -c string that is all or nothing. */
static void test_psql_looks_like_postgres(void **state) {
    (void)state;
    const char *argv[] = {
        "psql", "-X", e2e_node.url,
        "-c", "BEGIN; CREATE TABLE pg_look (id INT PRIMARY KEY, balance INT); "
              "INSERT INTO pg_look VALUES (1, 100), (2, 50); COMMIT;",
        "-c", "SELECT count(*), sum(balance), 2, true, balance > 60 AS rich FROM pg_look "
              "WHERE id = 1 GROUP BY balance",
        "-c", "INSERT INTO pg_look VALUES (3, 1); INSERT INTO pg_look VALUES (1, 0)",
        "-c", "SELECT count(*) FROM pg_look",
        NULL};
    char *out = NULL, *err = NULL;
    int st = mtest_run(argv, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    const char *want_sel = " count | sum | ?column? | bool | rich \n"
                           "-------+-----+----------+------+------\n"
                           "     1 | 100 |        2 | t    | t\n"
                           "(1 row)\n";
    const char *want_count = " count \n-------\n     2\n(1 row)\n"; /* row 3 rolled back */
    if (st != 0 || strstr(out, want_sel) == NULL || strstr(out, want_count) == NULL)
        print_error("psql exit %d\nstdout:\n%s\nstderr:\n%s\n", st, out, err);
    assert_non_null(strstr(out, "CREATE TABLE\n"));
    assert_non_null(strstr(out, want_sel));
    assert_non_null(strstr(out, want_count));
    assert_non_null(strstr(err, "duplicate key value"));
    base_free(out);
    base_free(err);
}

static const char *shell_table = " id | owner | balance \n"
                                 "----+-------+---------\n"
                                 "  1 | ada   |      90\n"
                                 "  2 | bob   |      60\n"
                                 "(2 rows)\n\n";

static void test_meridian_sql_execute(void **state) {
    (void)state;
    const char *argv[] = {
        mtest_meridian_bin(), "sql", "--url", e2e_node.url,
        "-e", "CREATE TABLE accounts_e (id INT PRIMARY KEY, owner TEXT NOT NULL, balance INT);",
        "-e", "INSERT INTO accounts_e VALUES (1, 'ada', 100), (2, 'bob', 50);",
        "-e", "BEGIN; UPDATE accounts_e SET balance = balance - 10 WHERE id = 1; "
              "UPDATE accounts_e SET balance = balance + 10 WHERE id = 2; COMMIT;",
        "-e", "SELECT * FROM accounts_e WHERE id BETWEEN 1 AND 2 ORDER BY id",
        NULL};
    char *out = NULL, *err = NULL;
    int st = mtest_run(argv, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    if (st != 0) print_error("exit %d\nstdout:\n%s\nstderr:\n%s\n", st, out, err);
    assert_int_equal(st, 0);
    base_buf want = {0};
    base_buf_printf(&want, "CREATE TABLE\nINSERT 0 2\nBEGIN\nUPDATE 1\nUPDATE 1\nCOMMIT\n%s",
                    shell_table);
    base_buf_append_byte(&want, 0);
    if (strcmp(out, (char *)want.data) != 0) print_error("stdout:\n%s\n", out);
    assert_string_equal(out, (char *)want.data);
    base_buf_free(&want);
    base_free(out);
    base_free(err);

    /* A failing statement: ERROR and SQLSTATE on stderr, exit code 1. */
    const char *argv2[] = {mtest_meridian_bin(), "sql", "--url", e2e_node.url, "-e",
                           "INSERT INTO accounts_e VALUES (1, 'dup', 0)", NULL};
    st = mtest_run(argv2, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, "ERROR: "));
    assert_non_null(strstr(err, "SQLSTATE: 23505"));
    base_free(out);
    base_free(err);

    /* --host overrides the URL's address; a bad flag is exit 2. */
    char hostport[64];
    snprintf(hostport, sizeof hostport, "127.0.0.1:%d", e2e_node.port);
    const char *argv3[] = {mtest_meridian_bin(), "sql", "--host", hostport, "-e",
                           "SELECT count(*) FROM accounts_e", NULL};
    st = mtest_run(argv3, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "(1 row)"));
    base_free(out);
    base_free(err);
    const char *argv4[] = {mtest_meridian_bin(), "sql", "--no-such-flag", NULL};
    st = mtest_run(argv4, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    assert_int_equal(st, 2);
    base_free(out);
    base_free(err);
}

static void test_meridian_sql_stdin(void **state) {
    (void)state;
    const char *argv[] = {mtest_meridian_bin(), "sql", "--url", e2e_node.url, NULL};
    const char *input =
        "-- the issue's session, typed over several lines\n"
        "CREATE TABLE accounts_in (id INT PRIMARY KEY,\n"
        "    owner TEXT NOT NULL, balance INT);\n"
        "INSERT INTO accounts_in VALUES (1, 'ada', 100),\n"
        "  (2, 'bob', 50);\n"
        "BEGIN; UPDATE accounts_in SET balance = balance - 10 WHERE id = 1; "
        "UPDATE accounts_in SET balance = balance + 10 WHERE id = 2; COMMIT;\n"
        "\\?\n"
        "SELECT * FROM accounts_in /* a comment; with a semicolon */\n"
        "  WHERE id BETWEEN 1 AND 2 ORDER BY id;\n";
    char *out = NULL, *err = NULL;
    int st = mtest_run(argv, input, E2E_CMD_TIMEOUT_MS, &out, &err);
    if (st != 0) print_error("exit %d\nstdout:\n%s\nstderr:\n%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_null(strstr(out, "meridian>")); /* no prompts when stdin is not a tty */
    assert_non_null(strstr(out, "CREATE TABLE\nINSERT 0 2\nBEGIN\nUPDATE 1\nUPDATE 1\nCOMMIT\n"));
    assert_non_null(strstr(out, "\\timing"));
    assert_non_null(strstr(out, shell_table));
    base_free(out);
    base_free(err);

    /* Errors do not stop the script but make the exit code 1; the last
    ** statement may lack its ';'. */
    const char *input2 = "SELECT * FROM nothing_here;\nSELECT 40 + 2 AS answer\n";
    st = mtest_run(argv, input2, E2E_CMD_TIMEOUT_MS, &out, &err);
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, "SQLSTATE: 42P01"));
    assert_non_null(strstr(out, " answer \n--------\n     42\n(1 row)\n"));
    base_free(out);
    base_free(err);
}

/* Read from the pty into acc until it contains want (after position
** *from), bounded by E2E_CMD_TIMEOUT_MS. Returns true when found and moves
** *from past it. */
static bool pty_expect(int fd, base_buf *acc, size_t *from, const char *want) {
    int64_t deadline = base_monotonic_ns() / 1000000 + E2E_CMD_TIMEOUT_MS;
    for (;;) {
        base_buf_append_byte(acc, 0);
        acc->len--;
        const char *hit = strstr((const char *)acc->data + *from, want);
        if (hit != NULL) {
            *from = (size_t)(hit - (const char *)acc->data) + strlen(want);
            return true;
        }
        int64_t left = deadline - base_monotonic_ns() / 1000000;
        if (left <= 0) return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0) return false;
        char chunk[1024];
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r <= 0) return false; /* EIO: the child closed the terminal */
        base_buf_append(acc, chunk, (size_t)r);
    }
}

static void pty_send(int fd, const char *text) {
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
}

/* The interactive shell on a pseudo-terminal: prompts, a multi-line
** statement with the continuation prompt, \timing, \q, the history file. */
static void test_meridian_sql_interactive(void **state) {
    (void)state;
    char home[] = "/tmp/meridian-home-XXXXXX";
    assert_non_null(mkdtemp(home));
    int fd = -1;
    pid_t pid = forkpty(&fd, NULL, NULL, NULL);
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("HOME", home, 1);
        setenv("TERM", "dumb", 1);
        execl(mtest_meridian_bin(), mtest_meridian_bin(), "sql", "--url", e2e_node.url, (char *)NULL);
        _exit(127);
    }
    base_buf acc = {0};
    size_t from = 0;
    bool ok = pty_expect(fd, &acc, &from, "meridian> ");
    if (ok) {
        pty_send(fd, "SELECT 40 +\n");
        ok = pty_expect(fd, &acc, &from, "       -> ");
    }
    if (ok) {
        pty_send(fd, "2 AS answer;\n");
        ok = pty_expect(fd, &acc, &from, "     42") && pty_expect(fd, &acc, &from, "(1 row)") &&
             pty_expect(fd, &acc, &from, "meridian> ");
    }
    if (ok) {
        pty_send(fd, "\\timing\n");
        ok = pty_expect(fd, &acc, &from, "Timing is on.") &&
             pty_expect(fd, &acc, &from, "meridian> ");
    }
    if (ok) {
        pty_send(fd, "SELECT 1;\n");
        ok = pty_expect(fd, &acc, &from, "Time: ") && pty_expect(fd, &acc, &from, " ms") &&
             pty_expect(fd, &acc, &from, "meridian> ");
    }
    if (ok) {
        pty_send(fd, "SELECT * FROM nope;\n");
        ok = pty_expect(fd, &acc, &from, "SQLSTATE: 42P01") &&
             pty_expect(fd, &acc, &from, "meridian> ");
    }
    if (ok) pty_send(fd, "\\q\n");
    if (!ok) {
        base_buf_append_byte(&acc, 0);
        print_error("terminal so far:\n%s\n", (const char *)acc.data);
        kill(pid, SIGKILL);
    }
    /* Reap, bounded: after \q the shell exits; past the bound it is killed. */
    int st = -1, wst;
    int64_t deadline = base_monotonic_ns() / 1000000 + E2E_CMD_TIMEOUT_MS;
    for (;;) {
        pid_t r = waitpid(pid, &wst, WNOHANG);
        if (r == pid) {
            st = WIFEXITED(wst) ? WEXITSTATUS(wst) : -1;
            break;
        }
        if (base_monotonic_ns() / 1000000 > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &wst, 0);
            break;
        }
        char chunk[256];
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0 && read(fd, chunk, sizeof chunk) <= 0) {
            struct timespec ts = {0, 5 * 1000 * 1000}; /* closed pty: retry step */
            nanosleep(&ts, NULL);
        }
    }
    close(fd);
    base_buf_free(&acc);
    char path[128];
    snprintf(path, sizeof path, "%s/.meridian_history", home);
    FILE *f = fopen(path, "r");
    char hist[4096] = {0};
    if (f != NULL) {
        size_t n = fread(hist, 1, sizeof hist - 1, f);
        hist[n] = 0;
        fclose(f);
    }
    mtest_remove_tree(home);
    assert_true(ok);
    assert_int_equal(st, 0);
    assert_non_null(strstr(hist, "answer")); /* the statement, as one history entry */
}

/* Connect a raw TCP socket to the e2e_node. */
static int raw_connect(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)e2e_node.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Send bytes, then read until the server closes or 1 s passes (whichever
** first); the server's answer is not checked, only that it survives. */
static void raw_send(const void *data, size_t len, bool half_close) {
    int fd = raw_connect();
    ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
    (void)w;
    if (half_close) shutdown(fd, SHUT_WR);
    char buf[4096];
    for (int i = 0; i < 64; i++) { /* bounded: 64 reads or a 1 s silence */
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1000) <= 0) break;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0) break;
    }
    close(fd);
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void test_bad_wire_input(void **state) {
    (void)state;
    /* Pure garbage. */
    uint8_t junk[256];
    memset(junk, 0xff, sizeof junk);
    raw_send(junk, sizeof junk, true);
    /* A startup packet that claims 100 bytes and sends 10, then closes. */
    uint8_t trunc[10];
    put32(trunc, 100);
    put32(trunc + 4, 196608);
    trunc[8] = 'u';
    trunc[9] = 0;
    raw_send(trunc, sizeof trunc, true);
    /* A startup packet announcing a huge length. */
    uint8_t huge[8];
    put32(huge, 0x7fffffff);
    put32(huge + 4, 196608);
    raw_send(huge, sizeof huge, false);
    /* A length smaller than the header. */
    uint8_t tiny[8];
    put32(tiny, 2);
    put32(tiny + 4, 196608);
    raw_send(tiny, sizeof tiny, false);
    /* A valid startup, then a message of unknown type and a bad length. */
    uint8_t startup[64];
    size_t n = 8;
    const char kv[] = "user\0root\0database\0defaultdb\0";
    memcpy(startup + n, kv, sizeof kv); /* includes the final NUL */
    n += sizeof kv;
    put32(startup, (uint32_t)n);
    put32(startup + 4, 196608);
    uint8_t msg[64];
    memcpy(msg, startup, n);
    msg[n] = 'Z';
    put32(msg + n + 1, 0xfffffff0);
    raw_send(msg, n + 5, false);
    /* A valid startup then a Query whose length points past the data. */
    memcpy(msg, startup, n);
    msg[n] = 'Q';
    put32(msg + n + 1, 1000);
    memcpy(msg + n + 5, "SELECT 1", 8);
    raw_send(msg, n + 13, true);
    /* A CancelRequest for a session that does not exist. */
    uint8_t cancel[16];
    put32(cancel, 16);
    put32(cancel + 4, 80877102);
    put32(cancel + 8, 12345);
    put32(cancel + 12, 67890);
    raw_send(cancel, sizeof cancel, false);
    /* Random bytes, with and without a valid startup in front. */
    uint64_t seed = (uint64_t)base_monotonic_ns();
    print_message("bad wire input seed: %llu\n", (unsigned long long)seed);
    for (int round = 0; round < E2E_FUZZ_ROUNDS; round++) {
        uint8_t buf[512];
        size_t len = 0;
        if (round % 2 == 1) {
            memcpy(buf, startup, n);
            len = n;
        }
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t extra = (size_t)(seed >> 33) % (sizeof buf - len);
        for (size_t i = 0; i < extra; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            buf[len++] = (uint8_t)(seed >> 56);
        }
        raw_send(buf, len, true);
    }
    /* The node is alive and a normal session works. */
    assert_true(mtest_node_alive(&e2e_node));
    PGconn *c = e2e_conn();
    e2e_rows_equal(c, "SELECT 1 + 1", "2\n");
    PQfinish(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ddl_dml_and_issue_session),
        cmocka_unit_test(test_constraint_errors),
        cmocka_unit_test(test_error_inside_transaction_block),
        cmocka_unit_test(test_savepoints),
        cmocka_unit_test(test_cockroach_restart),
        cmocka_unit_test(test_psql_session),
        cmocka_unit_test(test_psql_looks_like_postgres),
        cmocka_unit_test(test_meridian_sql_execute),
        cmocka_unit_test(test_meridian_sql_stdin),
        cmocka_unit_test(test_meridian_sql_interactive),
        cmocka_unit_test(test_bad_wire_input),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup, e2e_group_teardown);
}
