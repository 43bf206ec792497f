/*
** tests/sql/test_default.c: column DEFAULTs (sql/default.c, the INSERT
** rewrite; DEFAULT <function call> in CREATE TABLE through sql/dialect.c):
** omitted columns, the DEFAULT keyword in VALUES, DEFAULT VALUES, INSERT ...
** SELECT, upsert and RETURNING, inside a block, the extended protocol and
** COPY FROM with a column list; ALTER TABLE ADD COLUMN ... DEFAULT (the
** missing value), ALTER COLUMN SET/DROP DEFAULT and SET/DROP NOT NULL, a
** prepared INSERT after the default changed. Transcript format:
** tests/sql/sql_harness.h.
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

/* ALTER TABLE ADD COLUMN ... DEFAULT: the rows stored before read the value
** computed once (the missing value), through scans, point reads, UPDATE,
** a new index and a CHECK; a volatile default is evaluated per row; NOT NULL
** without a value for the rows is 23502. */
static void test_add_column_default(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE ac (id INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO ac VALUES (1, 'a'), (2, 'b')", "C INSERT 0 2\n");
    EXPECT(s, "ALTER TABLE ac ADD COLUMN n INT DEFAULT 7", "C ALTER TABLE\n");
    EXPECT(s, "ALTER TABLE ac ADD COLUMN t TEXT NOT NULL DEFAULT 'x' || 'y'", "C ALTER TABLE\n");
    expect_error(s, "ALTER TABLE ac ADD COLUMN bad INT NOT NULL", "23502");
    expect_error(s, "ALTER TABLE ac ADD COLUMN bad INT NOT NULL DEFAULT NULL", "23502");
    expect_error(s, "ALTER TABLE ac ADD COLUMN bad INT DEFAULT 'abc'", "22P02");
    expect_error(s, "ALTER TABLE ac ADD COLUMN bad INT DEFAULT -1 CHECK (bad > 0)", "23514");
    EXPECT(s, "ALTER TABLE ac ADD COLUMN r FLOAT8 DEFAULT random()", "C ALTER TABLE\n");
    EXPECT(s, "INSERT INTO ac (id, v) VALUES (3, 'c')", "C INSERT 0 1\n");
    EXPECT(s, "SELECT id, v, n, t, r IS NOT NULL FROM ac ORDER BY id",
           "D id:23,v:25,n:23,t:25,?column?:16\nR 1|a|7|xy|t\nR 2|b|7|xy|t\nR 3|c|7|xy|t\n"
           "C SELECT 3\n");
    EXPECT(s, "SELECT count(DISTINCT r) FROM ac", "D count:20\nR 3\nC SELECT 1\n");
    EXPECT(s, "SELECT n FROM ac WHERE id = 1", "D n:23\nR 7\nC SELECT 1\n");
    /* an UPDATE of an old row keeps the value; a new index and a CHECK see it */
    EXPECT(s, "UPDATE ac SET v = 'A' WHERE id = 1", "C UPDATE 1\n");
    EXPECT(s, "CREATE INDEX ac_n ON ac (n)", "C CREATE INDEX\n");
    EXPECT(s, "SELECT id FROM ac WHERE n = 7 ORDER BY id", "D id:23\nR 1\nR 2\nR 3\nC SELECT 3\n");
    expect_error(s, "ALTER TABLE ac ADD CONSTRAINT small CHECK (n < 5)", "23514");
    /* SET DEFAULT changes new rows only: the stored rows keep theirs */
    EXPECT(s, "ALTER TABLE ac ALTER COLUMN n SET DEFAULT 8", "C ALTER TABLE\n");
    EXPECT(s, "INSERT INTO ac (id) VALUES (4)", "C INSERT 0 1\n");
    EXPECT(s, "SELECT id, n FROM ac ORDER BY id",
           "D id:23,n:23\nR 1|7\nR 2|7\nR 3|7\nR 4|8\nC SELECT 4\n");
    /* in a block that rolls back: nothing stays */
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT(s, "ALTER TABLE ac ADD COLUMN z INT DEFAULT 1", "C ALTER TABLE\n");
    EXPECT(s, "SELECT sum(z) FROM ac", "D sum:20\nR 4\nC SELECT 1\n");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    expect_error(s, "SELECT z FROM ac", "42703");
    /* an empty table keeps no missing value: a later row stores its own */
    EXPECT(s, "CREATE TABLE ae (id INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(s, "ALTER TABLE ae ADD COLUMN n INT NOT NULL DEFAULT 3", "C ALTER TABLE\n");
    EXPECT(s, "INSERT INTO ae (id) VALUES (1)", "C INSERT 0 1\n");
    EXPECT(s, "SELECT id, n FROM ae", "D id:23,n:23\nR 1|3\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

/* ALTER [COLUMN] c SET/DROP DEFAULT, SET/DROP NOT NULL. */
static void test_alter_column(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE al (id INT PRIMARY KEY, a INT DEFAULT 1 NOT NULL, b TEXT NULL, "
              "c INT CHECK (c IS NOT NULL OR c IS NULL))",
           "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO al (id, b) VALUES (1, 'x')", "C INSERT 0 1\n");
    EXPECT(s, "ALTER TABLE al ALTER a DROP DEFAULT", "C ALTER TABLE\n");
    expect_error(s, "INSERT INTO al (id) VALUES (2)", "23502");
    EXPECT(s, "ALTER TABLE al ALTER COLUMN a DROP NOT NULL", "C ALTER TABLE\n");
    EXPECT(s, "INSERT INTO al (id) VALUES (2)", "C INSERT 0 1\n");
    expect_error(s, "ALTER TABLE al ALTER COLUMN a SET NOT NULL", "23502");
    expect_error(s, "ALTER TABLE al ALTER COLUMN b SET NOT NULL", "23502");
    EXPECT(s, "UPDATE al SET a = 0, b = '' WHERE id = 2", "C UPDATE 1\n");
    EXPECT(s, "ALTER TABLE al ALTER COLUMN b SET NOT NULL", "C ALTER TABLE\n");
    expect_error(s, "INSERT INTO al (id, a) VALUES (3, 3)", "23502");
    EXPECT(s, "ALTER TABLE al ALTER COLUMN b SET DEFAULT upper('d') || 'ef'", "C ALTER TABLE\n");
    EXPECT(s, "ALTER TABLE al ALTER COLUMN c SET DEFAULT -5", "C ALTER TABLE\n");
    EXPECT(s, "INSERT INTO al (id, a) VALUES (3, 3)", "C INSERT 0 1\n");
    EXPECT(s, "SELECT id, a, b, c FROM al ORDER BY id",
           "D id:23,a:23,b:25,c:23\nR 1|1|x|NULL\nR 2|0||NULL\nR 3|3|Def|-5\nC SELECT 3\n");
    /* NOT NULL and the default each leave the other as it is; the CHECK stays */
    EXPECT(s, "ALTER TABLE al ALTER COLUMN b DROP NOT NULL", "C ALTER TABLE\n");
    EXPECT(s, "ALTER TABLE al ALTER COLUMN b SET NOT NULL", "C ALTER TABLE\n");
    EXPECT(s, "INSERT INTO al (id) VALUES (4)", "C INSERT 0 1\n");
    EXPECT(s, "SELECT b, c FROM al WHERE id = 4", "D b:25,c:23\nR Def|-5\nC SELECT 1\n");
    EXPECT(s, "DELETE FROM al WHERE id = 4", "C DELETE 1\n");
    expect_error(s, "ALTER TABLE al ADD CONSTRAINT c_pos CHECK (c > 0)", "23514");
    expect_error(s, "ALTER TABLE al ALTER COLUMN id DROP NOT NULL", "42P16");
    expect_error(s, "ALTER TABLE al ALTER COLUMN nope SET NOT NULL", "42703");
    expect_error(s, "ALTER TABLE al ALTER COLUMN a TYPE BIGINT", "0A000");
    expect_error(s, "ALTER TABLE al ALTER COLUMN a SET DEFAULT 1, ALTER b DROP DEFAULT", "0A000");
    /* a block's first INSERT takes the default the ALTER before it set */
    EXPECT(s, "ALTER TABLE al ALTER COLUMN c SET DEFAULT 6", "C ALTER TABLE\n");
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT(s, "INSERT INTO al (id, a) VALUES (5, 5)", "C INSERT 0 1\n");
    EXPECT(s, "SELECT b, c FROM al WHERE id = 5", "D b:25,c:23\nR Def|6\nC SELECT 1\n");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    /* a table created in the block */
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT(s, "CREATE TABLE ab (id INT PRIMARY KEY, v INT)", "C CREATE TABLE\n");
    EXPECT(s, "ALTER TABLE ab ALTER COLUMN v SET DEFAULT 11", "C ALTER TABLE\n");
    EXPECT(s, "INSERT INTO ab (id) VALUES (1)", "C INSERT 0 1\n");
    EXPECT(s, "COMMIT", "C COMMIT\n");
    EXPECT(s, "SELECT v FROM ab", "D v:23\nR 11\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

/* Bind and run prepared statement stmt with $1 = a; the transcript must
** contain want. */
static void run_prepared(sqlv_session *s, const char *stmt, const char *a, const char *want) {
    capture c;
    memset(&c, 0, sizeof(c));
    sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
    sqlv_cell v[1] = {{a, strlen(a)}};
    assert_int_equal(sqlv_session_bind(s, "", stmt, 1, v, 0, NULL, 0, NULL, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_execute(s, "", 0, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_sync(s, &sink), SQLV_OK);
    base_buf_append_byte(&c.out, 0);
    if (strstr((const char *)c.out.data, want) == NULL)
        print_error("want %s, got:\n%s", want, (const char *)c.out.data);
    assert_non_null(strstr((const char *)c.out.data, want));
    base_buf_free(&c.out);
}

/* Prepared INSERTs run again after ALTER ... SET/DROP DEFAULT take the new
** defaults (the statement is not kept with the old ones). */
static void test_prepared_after_alter(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE pa (a INT PRIMARY KEY, b INT DEFAULT 1, c INT)", "C CREATE TABLE\n");
    capture c;
    memset(&c, 0, sizeof(c));
    sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
    const char *q = "INSERT INTO pa (a) VALUES ($1)";
    assert_int_equal(sqlv_session_prepare(s, "ins", q, strlen(q), 0, NULL, &sink), SQLV_OK);
    q = "INSERT INTO pa (a) VALUES ($1) RETURNING b, c";
    assert_int_equal(sqlv_session_prepare(s, "insr", q, strlen(q), 0, NULL, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_sync(s, &sink), SQLV_OK);
    base_buf_free(&c.out);
    run_prepared(s, "ins", "1", "C INSERT 0 1");
    EXPECT(s, "ALTER TABLE pa ALTER COLUMN b SET DEFAULT 2", "C ALTER TABLE\n");
    EXPECT(s, "ALTER TABLE pa ALTER COLUMN c SET DEFAULT 20", "C ALTER TABLE\n");
    run_prepared(s, "ins", "2", "C INSERT 0 1");
    run_prepared(s, "insr", "3", "R 2|20");
    EXPECT(s, "ALTER TABLE pa ALTER COLUMN b DROP DEFAULT", "C ALTER TABLE\n");
    run_prepared(s, "ins", "4", "C INSERT 0 1");
    run_prepared(s, "insr", "5", "R NULL|20");
    EXPECT(s, "SELECT a, b, c FROM pa ORDER BY a",
           "D a:23,b:23,c:23\nR 1|1|NULL\nR 2|2|20\nR 3|2|20\nR 4|NULL|20\nR 5|NULL|20\n"
           "C SELECT 5\n");
    sqlv_session_close(s);
    close_all(&f);
}

int main(void) {
    base_log_set_level(BASE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_forms),
        cmocka_unit_test(test_function_defaults),
        cmocka_unit_test(test_extended_and_copy),
        cmocka_unit_test(test_add_column_default),
        cmocka_unit_test(test_alter_column),
        cmocka_unit_test(test_prepared_after_alter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
