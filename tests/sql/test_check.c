/*
** tests/sql/test_check.c: CHECK constraints (sql/check.c, sql/vtab.c,
** ALTER TABLE ... ADD CONSTRAINT ... CHECK in sql/session.c) with
** PostgreSQL's names, message and NULL rule, on INSERT, UPDATE, upsert and
** COPY FROM; and EXPLAIN over the extended protocol (sql/prepared.c).
** Transcript format: tests/sql/sql_harness.h.
*/
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sql.h"
#include "tests/sql/sql_harness.h"

/* The first line of q's transcript starts with want. */
static void expect_first(sqlv_session *s, const char *q, const char *want) {
    char *got = run(s, q);
    if (strncmp(got, want, strlen(want)) != 0)
        print_error("query: %s\nwant prefix:\n%s\ngot:\n%s", q, want, got);
    assert_true(strncmp(got, want, strlen(want)) == 0);
    free(got);
}

static void test_column_and_table_checks(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE t (a INT CHECK (a > 0), b TEXT, c INT, CHECK (c > a), "
              "CONSTRAINT b_short CHECK (length(b) < 4))",
           "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO t VALUES (1, 'x', 2)", "C INSERT 0 1\n");
    expect_first(s, "INSERT INTO t VALUES (-1, 'x', 2)",
                 "E 23514 new row for relation \"t\" violates check constraint \"t_a_check\"\n"
                 "DETAIL:  Failing row contains (-1, x, 2).");
    expect_first(s, "INSERT INTO t VALUES (5, 'x', 2)",
                 "E 23514 new row for relation \"t\" violates check constraint \"t_check\"");
    expect_first(s, "INSERT INTO t VALUES (5, 'long', 9)",
                 "E 23514 new row for relation \"t\" violates check constraint \"b_short\"");
    /* NULL passes, as in PostgreSQL */
    EXPECT(s, "INSERT INTO t VALUES (NULL, NULL, NULL)", "C INSERT 0 1\n");
    /* a value the column converts: '-3' is the integer -3 */
    expect_error(s, "INSERT INTO t VALUES ('-3', 'x', 1)", "23514");
    /* a multi-row INSERT fails whole */
    expect_error(s, "INSERT INTO t VALUES (7, 'a', 8), (-7, 'b', 8)", "23514");
    EXPECT(s, "SELECT count(*) FROM t", "D count:20\nR 2\nC SELECT 1\n");
    /* UPDATE */
    expect_error(s, "UPDATE t SET a = 0 WHERE a = 1", "23514");
    EXPECT(s, "UPDATE t SET a = 2, c = 3 WHERE a = 1", "C UPDATE 1\n");
    /* in a block: the statement fails, the block is aborted as PostgreSQL's */
    EXPECT(s, "BEGIN", "C BEGIN\n");
    expect_error(s, "INSERT INTO t VALUES (-1, 'x', 1)", "23514");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    EXPECT(s, "SELECT a, b, c FROM t ORDER BY a", "D a:23,b:25,c:23\nR NULL|NULL|NULL\nR 2|x|3\nC SELECT 2\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_upsert_and_names(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE acc (id INT PRIMARY KEY, bal INT NOT NULL CHECK (bal >= 0), "
              "CHECK (bal < 1000), CHECK (bal <> 7))",
           "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO acc VALUES (1, 10)", "C INSERT 0 1\n");
    expect_first(s, "INSERT INTO acc VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET bal = acc.bal - 20",
                 "E 23514 new row for relation \"acc\" violates check constraint \"acc_bal_check\"");
    /* one column each: PostgreSQL's names then take a number */
    expect_first(s, "INSERT INTO acc VALUES (2, 5000)",
                 "E 23514 new row for relation \"acc\" violates check constraint \"acc_bal_check1\"");
    expect_first(s, "INSERT INTO acc VALUES (2, 7)",
                 "E 23514 new row for relation \"acc\" violates check constraint \"acc_bal_check2\"");
    /* DO NOTHING does not skip a check violation */
    expect_error(s, "INSERT INTO acc VALUES (3, -1) ON CONFLICT DO NOTHING", "23514");
    EXPECT(s, "INSERT INTO acc VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET bal = acc.bal + 5",
           "C INSERT 0 1\n");
    EXPECT(s, "SELECT id, bal FROM acc", "D id:23,bal:23\nR 1|15\nC SELECT 1\n");
    /* catalogs */
    EXPECT(s, "SELECT conname, contype FROM pg_constraint WHERE contype = 'c' ORDER BY conname",
           "D conname:25,contype:25\nR acc_bal_check|c\nR acc_bal_check1|c\nR acc_bal_check2|c\n"
           "C SELECT 3\n");
    /* psql's \d query for the check constraints of a table */
    EXPECT(s, "SELECT r.conname, pg_catalog.pg_get_constraintdef(r.oid, true) FROM "
              "pg_catalog.pg_constraint r WHERE r.conrelid = 'acc'::regclass AND r.contype = 'c' "
              "ORDER BY 1 LIMIT 1",
           "D conname:25,pg_get_constraintdef:25\nR acc_bal_check|CHECK (bal >= 0)\nC SELECT 1\n");
    EXPECT(s, "SELECT relchecks FROM pg_class WHERE relname = 'acc'",
           "D relchecks:21\nR 3\nC SELECT 1\n");
    /* ADD COLUMN keeps them */
    EXPECT(s, "ALTER TABLE acc ADD COLUMN note TEXT", "C ALTER TABLE\n");
    expect_error(s, "INSERT INTO acc VALUES (9, -1, 'x')", "23514");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_alter_add_check(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE p (k INT PRIMARY KEY, v INT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO p VALUES (1, 5), (2, -5)", "C INSERT 0 2\n");
    /* an existing row violates it: refused, as PostgreSQL's message */
    expect_first(s, "ALTER TABLE p ADD CONSTRAINT v_pos CHECK (v > 0)",
                 "E 23514 check constraint \"v_pos\" of relation \"p\" is violated by some row");
    EXPECT(s, "INSERT INTO p VALUES (3, -1)", "C INSERT 0 1\n");
    EXPECT(s, "DELETE FROM p WHERE v < 0", "C DELETE 2\n");
    EXPECT(s, "ALTER TABLE p ADD CONSTRAINT v_pos CHECK (v > 0)", "C ALTER TABLE\n");
    expect_first(s, "INSERT INTO p VALUES (4, -1)",
                 "E 23514 new row for relation \"p\" violates check constraint \"v_pos\"");
    EXPECT(s, "ALTER TABLE p ADD CHECK (v < 100)", "C ALTER TABLE\n");
    expect_first(s, "UPDATE p SET v = 100",
                 "E 23514 new row for relation \"p\" violates check constraint \"p_v_check\"");
    expect_error(s, "ALTER TABLE p ADD CONSTRAINT bad CHECK (nosuch > 0)", "42703");
    EXPECT(s, "INSERT INTO p VALUES (5, 50)", "C INSERT 0 1\n");
    EXPECT(s, "SELECT k, v FROM p ORDER BY k", "D k:23,v:23\nR 1|5\nR 5|50\nC SELECT 2\n");
    sqlv_session_close(s);
    close_all(&f);
}

/* COPY FROM STDIN: each row checked like an INSERT's. */
static int c_copy_in(void *ctx, int ncols) {
    return base_buf_printf(&((capture *)ctx)->out, "I %d\n", ncols), 0;
}

static void test_copy_checked(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE cp (a INT CHECK (a > 0), b TEXT)", "C CREATE TABLE\n");
    capture c;
    memset(&c, 0, sizeof(c));
    sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
    sqlv_session_set_copy_in(s, c_copy_in);
    const char *q = "COPY cp FROM STDIN";
    assert_int_equal(sqlv_session_exec(s, q, strlen(q), &sink), SQLV_OK);
    const char *data = "1\tx\n-2\ty\n";
    if (sqlv_session_in_copy(s)) {
        int rc = sqlv_session_copy_data(s, data, strlen(data), &sink);
        assert_true(rc == SQLV_OK || rc == SQLV_ERR_FAILED);
    }
    assert_int_equal(sqlv_session_copy_done(s, &sink), SQLV_OK);
    assert_false(sqlv_session_in_copy(s));
    base_buf_append_byte(&c.out, 0);
    if (strstr((const char *)c.out.data, "E 23514 new row for relation \"cp\"") == NULL)
        print_error("got:\n%s", (const char *)c.out.data);
    assert_non_null(strstr((const char *)c.out.data, "E 23514 new row for relation \"cp\""));
    base_buf_free(&c.out);
    EXPECT(s, "SELECT count(*) FROM cp", "D count:20\nR 0\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

/* EXPLAIN through Parse/Bind/Describe/Execute: ours, not SQLite's bytecode. */
static void test_explain_extended(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE e (k INT PRIMARY KEY, v INT)", "C CREATE TABLE\n");
    capture c;
    memset(&c, 0, sizeof(c));
    sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
    const char *q = "EXPLAIN SELECT * FROM e WHERE k = 5";
    assert_int_equal(sqlv_session_prepare(s, "", q, strlen(q), 0, NULL, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_bind(s, "", "", 0, NULL, 0, NULL, 0, NULL, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_describe(s, 'P', "", &sink), SQLV_OK);
    assert_int_equal(sqlv_session_execute(s, "", 0, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_sync(s, &sink), SQLV_OK);
    base_buf_append_byte(&c.out, 0);
    const char *got = (const char *)c.out.data;
    const char *want = "D QUERY PLAN:25\nR select\nR   -> point lookup e@primary\n";
    if (strncmp(got, want, strlen(want)) != 0) print_error("got:\n%s", got);
    assert_true(strncmp(got, want, strlen(want)) == 0);
    assert_null(strstr(got, "Init")); /* SQLite's bytecode listing */
    assert_non_null(strstr(got, "C EXPLAIN\n"));
    base_buf_free(&c.out);
    /* parameters: nothing would bind them, a clear 0A000 at Parse */
    memset(&c, 0, sizeof(c));
    q = "EXPLAIN SELECT * FROM e WHERE k = $1";
    assert_int_equal(sqlv_session_prepare(s, "", q, strlen(q), 0, NULL, &sink), SQLV_ERR_FAILED);
    assert_int_equal(sqlv_session_sync(s, &sink), SQLV_OK);
    base_buf_append_byte(&c.out, 0);
    assert_true(strncmp((const char *)c.out.data, "E 0A000 EXPLAIN with parameters", 31) == 0);
    base_buf_free(&c.out);
    sqlv_session_close(s);
    close_all(&f);
}

int main(void) {
    base_log_set_level(BASE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_column_and_table_checks),
        cmocka_unit_test(test_upsert_and_names),
        cmocka_unit_test(test_alter_add_check),
        cmocka_unit_test(test_copy_checked),
        cmocka_unit_test(test_explain_extended),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
