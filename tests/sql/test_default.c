/*
** tests/sql/test_default.c: column DEFAULTs (sql/default.c, the INSERT
** rewrite; DEFAULT <function call> in CREATE TABLE through sql/dialect.c):
** omitted columns, the DEFAULT keyword in VALUES, DEFAULT VALUES, INSERT ...
** SELECT, upsert and RETURNING, inside a block, the extended protocol and
** COPY FROM with a column list. Transcript format: tests/sql/sql_harness.h.
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

static void test_insert_forms(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE t (a INT PRIMARY KEY, b INT DEFAULT 5, c TEXT DEFAULT 'x' || 'y', "
              "d TEXT)",
           "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO t (a) VALUES (1), (2)", "C INSERT 0 2\n");
    /* an explicit NULL stays NULL */
    EXPECT(s, "INSERT INTO t (a, b) VALUES (3, NULL)", "C INSERT 0 1\n");
    EXPECT(s, "INSERT INTO t VALUES (4, DEFAULT, 'c', DEFAULT)", "C INSERT 0 1\n");
    EXPECT(s, "INSERT INTO t (d, a) SELECT 'sel', 5", "C INSERT 0 1\n");
    EXPECT(s, "SELECT a, b, c, d FROM t ORDER BY a",
           "D a:23,b:23,c:25,d:25\nR 1|5|xy|NULL\nR 2|5|xy|NULL\nR 3|NULL|xy|NULL\n"
           "R 4|5|c|NULL\nR 5|5|xy|sel\nC SELECT 5\n");
    /* DEFAULT VALUES: the key has no default, as PostgreSQL 23502 */
    expect_error(s, "INSERT INTO t DEFAULT VALUES", "23502");
    /* the rewrite keeps RETURNING and ON CONFLICT */
    EXPECT(s, "INSERT INTO t (a) VALUES (6) RETURNING b, c",
           "D b:23,c:25\nR 5|xy\nC INSERT 0 1\n");
    EXPECT(s, "INSERT INTO t (a, d) VALUES (6, 'z') ON CONFLICT (a) DO UPDATE SET d = excluded.c",
           "C INSERT 0 1\n");
    EXPECT(s, "SELECT d FROM t WHERE a = 6", "D d:25\nR xy\nC SELECT 1\n");
    /* inside a block, a table the block created */
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT(s, "CREATE TABLE u (k INT PRIMARY KEY, v INT DEFAULT 42)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO u (k) VALUES (1)", "C INSERT 0 1\n");
    EXPECT(s, "SELECT v FROM u", "D v:23\nR 42\nC SELECT 1\n");
    EXPECT(s, "COMMIT", "C COMMIT\n");
    EXPECT(s, "CREATE TABLE dv (a INT DEFAULT 1, b TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO dv DEFAULT VALUES", "C INSERT 0 1\n");
    EXPECT(s, "SELECT a, b FROM dv", "D a:23,b:25\nR 1|NULL\nC SELECT 1\n");
    /* a quoted name with a quote inside */
    EXPECT(s, "CREATE TABLE q (k INT PRIMARY KEY, \"we\"\"ird\" INT DEFAULT 3)",
           "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO q (k) VALUES (1)", "C INSERT 0 1\n");
    EXPECT(s, "SELECT \"we\"\"ird\" FROM q", "D we\"ird:23\nR 3\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

/* DEFAULT now(), gen_random_uuid(), a cast: parsed at CREATE TABLE (wrapped
** in parentheses by the dialect rewrite), evaluated per row. */
static void test_function_defaults(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE ev (id INT PRIMARY KEY, at TIMESTAMPTZ DEFAULT now(), "
              "u UUID DEFAULT gen_random_uuid() NOT NULL, n INT DEFAULT '7'::int, "
              "ts TIMESTAMP DEFAULT CURRENT_TIMESTAMP, m INT DEFAULT -1)",
           "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO ev (id) VALUES (1), (2)", "C INSERT 0 2\n");
    EXPECT(s, "SELECT id, at IS NOT NULL, ts IS NOT NULL, length(u), n, m FROM ev ORDER BY id",
           "D id:23,?column?:16,?column?:16,length:20,n:23,m:23\nR 1|t|t|36|7|-1\n"
           "R 2|t|t|36|7|-1\nC SELECT 2\n");
    EXPECT(s, "SELECT count(DISTINCT u) FROM ev", "D count:20\nR 2\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

static int c_copy_in(void *ctx, int ncols) {
    return base_buf_printf(&((capture *)ctx)->out, "I %d\n", ncols), 0;
}

/* The extended protocol (the rewrite at Parse) and COPY FROM with a list. */
static void test_extended_and_copy(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE p (a INT PRIMARY KEY, b INT DEFAULT 9, c TEXT)", "C CREATE TABLE\n");
    capture c;
    memset(&c, 0, sizeof(c));
    sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
    const char *q = "INSERT INTO p (a, c) VALUES ($1, $2)";
    sqlv_cell v[2] = {{"1", 1}, {"one", 3}};
    assert_int_equal(sqlv_session_prepare(s, "ins", q, strlen(q), 0, NULL, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_bind(s, "", "ins", 2, v, 0, NULL, 0, NULL, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_execute(s, "", 0, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_sync(s, &sink), SQLV_OK);
    base_buf_append_byte(&c.out, 0);
    if (strstr((const char *)c.out.data, "C INSERT 0 1") == NULL)
        print_error("got:\n%s", (const char *)c.out.data);
    assert_non_null(strstr((const char *)c.out.data, "C INSERT 0 1"));
    base_buf_free(&c.out);
    memset(&c, 0, sizeof(c));
    sqlv_session_set_copy_in(s, c_copy_in);
    q = "COPY p (a, c) FROM STDIN";
    assert_int_equal(sqlv_session_exec(s, q, strlen(q), &sink), SQLV_OK);
    assert_true(sqlv_session_in_copy(s));
    const char *data = "2\ttwo\n3\tthree\n";
    assert_int_equal(sqlv_session_copy_data(s, data, strlen(data), &sink), SQLV_OK);
    assert_int_equal(sqlv_session_copy_done(s, &sink), SQLV_OK);
    base_buf_append_byte(&c.out, 0);
    if (strstr((const char *)c.out.data, "C COPY 2") == NULL)
        print_error("got:\n%s", (const char *)c.out.data);
    assert_non_null(strstr((const char *)c.out.data, "C COPY 2"));
    base_buf_free(&c.out);
    EXPECT(s, "SELECT a, b, c FROM p ORDER BY a",
           "D a:23,b:23,c:25\nR 1|9|one\nR 2|9|two\nR 3|9|three\nC SELECT 3\n");
    sqlv_session_close(s);
    close_all(&f);
}

int main(void) {
    base_log_set_level(BASE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_forms),
        cmocka_unit_test(test_function_defaults),
        cmocka_unit_test(test_extended_and_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
