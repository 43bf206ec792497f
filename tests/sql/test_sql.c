/*
** tests/sql/test_sql.c: sql/ end to end in process: an engine over txn/ on
** the in-memory storage twin, sessions driven with query strings, and a
** capture sink that records what the gateway would send as a transcript:
**
**   D name:oid,name:oid      row description
**   R v1|v2|NULL             data row
**   C tag                    command complete
**   E sqlstate message       error
**   N message                notice
**   Q                        empty query
**
** The randomized differential test prints its seed on failure
** (SQL_TEST_SEED=<n> to replay).
*/
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sql.h"
#include "tests/sql/sql_harness.h"

/* ---- tests ------------------------------------------------------------------------ */

static void test_issue_scenario(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE accounts (id INT PRIMARY KEY, owner TEXT NOT NULL, balance INT);",
           "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO accounts VALUES (1, 'ada', 100), (2, 'bob', 50);", "C INSERT 0 2\n");
    assert_int_equal(sqlv_session_status(s), 'I');
    EXPECT(s,
           "BEGIN; UPDATE accounts SET balance = balance - 10 WHERE id = 1; UPDATE accounts SET "
           "balance = balance + 10 WHERE id = 2;",
           "C BEGIN\nC UPDATE 1\nC UPDATE 1\n");
    assert_int_equal(sqlv_session_status(s), 'T');
    EXPECT(s, "COMMIT;", "C COMMIT\n");
    assert_int_equal(sqlv_session_status(s), 'I');
    EXPECT(s, "SELECT * FROM accounts WHERE id BETWEEN 1 AND 2 ORDER BY id;",
           "D id:23,owner:25,balance:23\nR 1|ada|90\nR 2|bob|60\nC SELECT 2\n");
    EXPECT(s, "SELECT count(*), sum(balance) FROM accounts",
           "D count:20,sum:20\nR 2|150\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_types_and_output(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s,
           "CREATE TABLE t (k BIGINT PRIMARY KEY, b BOOLEAN, r DOUBLE PRECISION, x BYTEA, "
           "v VARCHAR(10), n NUMERIC(10,2), sm SMALLINT)",
           "C CREATE TABLE\n");
    EXPECT(s,
           "INSERT INTO t VALUES ('7', 'true', 1.5, x'00ff', 42, '3.25', 3), (8, 0, 0.1, "
           "'\\x0a0b', 'x', 4, NULL)",
           "C INSERT 0 2\n");
    EXPECT(s, "SELECT * FROM t ORDER BY k",
           "D k:20,b:16,r:701,x:17,v:25,n:1700,sm:21\n"
           "R 7|t|1.5|\\x00ff|42|3.25|3\n"
           "R 8|f|0.1|\\x0a0b|x|4|NULL\n"
           "C SELECT 2\n");
    EXPECT(s, "SELECT 1, 2.5, 'a', NULL, x'01'",
           "D ?column?:20,?column?:701,?column?:25,?column?:25,?column?:17\n"
           "R 1|2.5|a|NULL|\\x01\nC SELECT 1\n");
    EXPECT(s, "SELECT k FROM t WHERE k = '8'", "D k:20\nR 8\nC SELECT 1\n");
    expect_error(s, "INSERT INTO t (k) VALUES ('abc')", "22P02");
    expect_error(s, "INSERT INTO t (k, b) VALUES (9, 'maybe')", "22P02");
    expect_error(s, "INSERT INTO t (k, sm) VALUES (9, 100000)", "22003");
    EXPECT(s, "SELECT count(*) FROM t", "D count:20\nR 2\nC SELECT 1\n");
    EXPECT(s, "SELECT version() LIKE 'PostgreSQL 15%'",
           "D ?column?:16\nR t\nC SELECT 1\n");
    EXPECT(s, "SET client_encoding = 'UTF8'; SHOW client_encoding",
           "C SET\nD client_encoding:25\nR UTF8\nC SHOW\n");
    expect_error(s, "SHOW nonsense", "42704");
    EXPECT(s, "", "Q\n");
    EXPECT(s, " ; -- nothing\n ;", "Q\n");
    EXPECT(s, "SELECT 1;; SELECT 2",
           "D ?column?:20\nR 1\nC SELECT 1\nD ?column?:20\nR 2\nC SELECT 1\n");
    /* The first error stops the rest of the string. */
    EXPECT(s, "SELECT 1; SELECT nope FROM t; SELECT 3",
           "D ?column?:20\nR 1\nC SELECT 1\nE 42703 column \"nope\" does not exist\n");
    expect_error(s, "SELECT * FROM missing", "42P01");
    expect_error(s, "SELEC 1", "42601");
    expect_error(s, "SELECT \"k\" FROM t WHERE \"nothere\" = 1", "42703");
    EXPECT(s, "SELECT 'A' LIKE 'a'", "D ?column?:16\nR f\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_constraints_and_atomicity(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE u (id INT PRIMARY KEY, name TEXT NOT NULL)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO u VALUES (1, 'a')", "C INSERT 0 1\n");
    EXPECT(s, "INSERT INTO u VALUES (2, 'b'), (3, 'c'), (1, 'dup')",
           "E 23505 duplicate key value violates unique constraint \"u_pkey\"\n");
    EXPECT(s, "SELECT id FROM u ORDER BY id", "D id:23\nR 1\nC SELECT 1\n");
    expect_error(s, "INSERT INTO u VALUES (5, NULL)", "23502");
    expect_error(s, "INSERT INTO u (name) VALUES ('x')", "23502");
    expect_error(s, "UPDATE u SET name = NULL", "23502");
    /* Inside a block: the failing statement aborts the block. */
    EXPECT(s, "BEGIN; INSERT INTO u VALUES (10, 'x');", "C BEGIN\nC INSERT 0 1\n");
    expect_error(s, "INSERT INTO u VALUES (11, 'y'), (12, 'z'), (10, 'dup')", "23505");
    assert_int_equal(sqlv_session_status(s), 'E');
    EXPECT(s, "SELECT 1",
           "E 25P02 current transaction is aborted, commands ignored until end of transaction "
           "block\n");
    EXPECT(s, "COMMIT", "C ROLLBACK\n");
    assert_int_equal(sqlv_session_status(s), 'I');
    EXPECT(s, "SELECT id FROM u ORDER BY id", "D id:23\nR 1\nC SELECT 1\n");
    /* ROLLBACK discards; ROLLBACK after an error too. */
    EXPECT(s, "BEGIN; INSERT INTO u VALUES (20, 'r'); ROLLBACK",
           "C BEGIN\nC INSERT 0 1\nC ROLLBACK\n");
    EXPECT(s, "BEGIN; SELECT nope; SELECT 1", "C BEGIN\nE 42703 column \"nope\" does not exist\n");
    assert_int_equal(sqlv_session_status(s), 'E');
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    EXPECT(s, "SELECT count(*) FROM u", "D count:20\nR 1\nC SELECT 1\n");
    /* PK update moves the row; onto an existing key fails. */
    EXPECT(s, "INSERT INTO u VALUES (2, 'b')", "C INSERT 0 1\n");
    EXPECT(s, "UPDATE u SET id = 7 WHERE id = 2", "C UPDATE 1\n");
    EXPECT(s, "SELECT * FROM u ORDER BY id", "D id:23,name:25\nR 1|a\nR 7|b\nC SELECT 2\n");
    expect_error(s, "UPDATE u SET id = 1 WHERE id = 7", "23505");
    EXPECT(s, "SELECT * FROM u ORDER BY id", "D id:23,name:25\nR 1|a\nR 7|b\nC SELECT 2\n");
    EXPECT(s, "INSERT OR REPLACE INTO u VALUES (1, 'A')", "C INSERT 0 1\n");
    EXPECT(s, "INSERT OR IGNORE INTO u VALUES (1, 'B')", "C INSERT 0 0\n");
    EXPECT(s, "SELECT name FROM u WHERE id = 1", "D name:25\nR A\nC SELECT 1\n");
    EXPECT(s, "DELETE FROM u WHERE id > 5", "C DELETE 1\n");
    /* Tables without a primary key get hidden row ids. */
    EXPECT(s, "CREATE TABLE nopk (a INT, b TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO nopk VALUES (1, 'x'), (1, 'x'), (2, NULL)", "C INSERT 0 3\n");
    EXPECT(s, "UPDATE nopk SET b = 'y' WHERE a = 1", "C UPDATE 2\n");
    EXPECT(s, "SELECT a, b FROM nopk ORDER BY a, b",
           "D a:23,b:25\nR 1|y\nR 1|y\nR 2|NULL\nC SELECT 3\n");
    /* Transaction trivia. */
    EXPECT(s, "COMMIT", "N there is no transaction in progress\nC COMMIT\n");
    EXPECT(s, "BEGIN; BEGIN; END",
           "C BEGIN\nN there is already a transaction in progress\nC BEGIN\nC COMMIT\n");
    EXPECT(s, "BEGIN; CREATE TABLE z (a INT)", "C BEGIN\nC CREATE TABLE\n");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    expect_error(s, "SELECT * FROM z", "42P01");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_composite_and_pushdown_plans(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE c (a INT, b TEXT, v INT, PRIMARY KEY (a, b))", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO c VALUES (2, 'x', 1), (1, 'z', 2), (1, 'y', 3), (2, 'a', 4)",
           "C INSERT 0 4\n");
    EXPECT(s, "SELECT a, b FROM c ORDER BY a, b",
           "D a:23,b:25\nR 1|y\nR 1|z\nR 2|a\nR 2|x\nC SELECT 4\n");
    EXPECT(s, "SELECT a, b FROM c ORDER BY a DESC, b DESC",
           "D a:23,b:25\nR 2|x\nR 2|a\nR 1|z\nR 1|y\nC SELECT 4\n");
    EXPECT(s, "SELECT b FROM c WHERE a = 1 ORDER BY b DESC", "D b:25\nR z\nR y\nC SELECT 2\n");
    EXPECT(s, "SELECT v FROM c WHERE a = 2 AND b = 'x'", "D v:23\nR 1\nC SELECT 1\n");
    EXPECT(s, "SELECT v FROM c WHERE a = 2 AND b > 'a'", "D v:23\nR 1\nC SELECT 1\n");
    EXPECT(s, "SELECT v FROM c WHERE a IN (1, 2) AND b = 'y'", "D v:23\nR 3\nC SELECT 1\n");
    EXPECT(s, "SELECT a, b FROM c ORDER BY a, b LIMIT 1 OFFSET 1",
           "D a:23,b:25\nR 1|z\nC SELECT 1\n");
    EXPECT(s, "UPDATE c SET b = 'w' WHERE a = 1 AND b = 'z'", "C UPDATE 1\n");
    EXPECT(s, "SELECT a, b FROM c WHERE a = 1 ORDER BY b",
           "D a:23,b:25\nR 1|w\nR 1|y\nC SELECT 2\n");
    /* Moving every row's key in one statement moves each row once. */
    EXPECT(s, "UPDATE c SET a = a + 10", "C UPDATE 4\n");
    EXPECT(s, "SELECT a, b, v FROM c ORDER BY a, b",
           "D a:23,b:25,v:23\nR 11|w|2\nR 11|y|3\nR 12|a|4\nR 12|x|1\nC SELECT 4\n");
    /* Constraint values that need conversion, or cannot use the key. */
    EXPECT(s, "CREATE TABLE tk (name TEXT PRIMARY KEY, r REAL)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO tk VALUES ('5', 1), ('05', 2), (7, 3), ('abc', 4)", "C INSERT 0 4\n");
    EXPECT(s, "SELECT r FROM tk WHERE name = 5", "D r:701\nR 1\nC SELECT 1\n");
    EXPECT(s, "SELECT r FROM tk WHERE name = '7'", "D r:701\nR 3\nC SELECT 1\n");
    EXPECT(s, "SELECT name FROM tk WHERE name > '1' AND name < 'b' ORDER BY name DESC",
           "D name:25\nR abc\nR 7\nR 5\nC SELECT 3\n");
    EXPECT(s, "CREATE TABLE rk (k REAL PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO rk VALUES (1), (1.5), ('2.5')", "C INSERT 0 3\n");
    expect_error(s, "INSERT INTO rk VALUES (1.0)", "23505");
    EXPECT(s, "SELECT k FROM rk WHERE k >= '1.5' ORDER BY k",
           "D k:701\nR 1.5\nR 2.5\nC SELECT 2\n");
    EXPECT(s, "SELECT k FROM rk WHERE k = 1", "D k:701\nR 1\nC SELECT 1\n");
    EXPECT(s, "SELECT k FROM rk WHERE k > 'x'", "D k:701\nC SELECT 0\n");
    EXPECT(s, "SELECT k FROM rk WHERE k < 'x'", "D k:701\nR 1\nR 1.5\nR 2.5\nC SELECT 3\n");
    EXPECT(s, "SELECT k FROM rk WHERE k = NULL", "D k:701\nC SELECT 0\n");
    /* The plan: key order consumed (no temp b-tree), constraints pushed. */
    char *plan = run(s, "EXPLAIN QUERY PLAN SELECT * FROM c WHERE a = 1 ORDER BY a, b");
    assert_null(strstr(plan, "TEMP B-TREE"));
    assert_non_null(strstr(plan, "VIRTUAL TABLE INDEX 1:"));
    free(plan);
    plan = run(s, "EXPLAIN QUERY PLAN SELECT * FROM c ORDER BY b");
    assert_non_null(strstr(plan, "TEMP B-TREE"));
    free(plan);
    plan = run(s, "EXPLAIN QUERY PLAN SELECT * FROM c ORDER BY a DESC");
    assert_null(strstr(plan, "TEMP B-TREE"));
    free(plan);
    sqlv_session_close(s);
    close_all(&f);
}

/* Same random data in a Meridian table and a plain SQLite table; queries
** with and without push-down-able predicates must agree. */
static char *native_rows(sqlite3 *db, const char *q) {
    sqlite3_stmt *st;
    base_buf b = {0};
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        base_buf_printf(&b, "R ");
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const char *t = (const char *)sqlite3_column_text(st, i);
            base_buf_printf(&b, "%s%s", i ? "|" : "", t ? t : "NULL");
        }
        base_buf_printf(&b, "\n");
        n++;
    }
    sqlite3_finalize(st);
    base_buf_printf(&b, "C SELECT %d\n", n);
    base_buf_append_byte(&b, 0);
    char *r = strdup((const char *)b.data);
    base_buf_free(&b);
    return r;
}

static void test_differential(void **state) {
    fixture f;
    sqlite3 *db;
    (void)state;
    unsigned seed = getenv("SQL_TEST_SEED") ? (unsigned)atoi(getenv("SQL_TEST_SEED"))
                                            : (unsigned)base_realtime_ns();
    srand(seed);
    open_all(&f);
    sqlv_session *s = session(&f);
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    const char *ddl = "CREATE TABLE d (a INT, b TEXT, c INT, v INT, PRIMARY KEY (a, b, c))";
    EXPECT(s, ddl, "C CREATE TABLE\n");
    assert_int_equal(sqlite3_exec(db, ddl, NULL, NULL, NULL), SQLITE_OK);
    static const char *const words[] = {"a", "b", "bb", "c", "x", "y", "ab", "B"};
    char q[512];
    for (int i = 0; i < 150; i++) {
        snprintf(q, sizeof(q), "INSERT OR IGNORE INTO d VALUES (%d, '%s', %d, %d)", rand() % 8 - 2,
                 words[rand() % 8], rand() % 5, rand() % 100);
        char *got = run(s, q);
        assert_non_null(strstr(got, "C INSERT"));
        free(got);
        assert_int_equal(sqlite3_exec(db, q, NULL, NULL, NULL), SQLITE_OK);
    }
    static const char *const ops[] = {"=", "<", "<=", ">", ">=", "<>"};
    for (int i = 0; i < 250; i++) {
        char where[256] = "1";
        int nterms = rand() % 4;
        for (int k = 0; k < nterms; k++) {
            char term[80];
            int col = rand() % 3;
            const char *op = ops[rand() % 6];
            if (col == 0)
                snprintf(term, sizeof(term), " AND a %s %d", op, rand() % 8 - 2);
            else if (col == 1)
                snprintf(term, sizeof(term), " AND b %s '%s'", op, words[rand() % 8]);
            else
                snprintf(term, sizeof(term), " AND c %s %d", op, rand() % 5);
            if (rand() % 10 == 0)
                snprintf(term, sizeof(term), " AND a BETWEEN %d AND %d", rand() % 4 - 2,
                         rand() % 5);
            if (rand() % 10 == 0)
                snprintf(term, sizeof(term), " AND a IN (%d, %d)", rand() % 6 - 2, rand() % 6 - 2);
            if (rand() % 12 == 0) snprintf(term, sizeof(term), " AND a = '%d'", rand() % 6 - 2);
            strncat(where, term, sizeof(where) - strlen(where) - 1);
        }
        static const char *const orders[] = {
            "a, b, c",    "a DESC, b DESC, c DESC",
            "v, a, b, c", "a, b, c LIMIT 3",
            "c, b, a",    "a DESC, b DESC, c DESC LIMIT 2 OFFSET 1"};
        snprintf(q, sizeof(q), "SELECT a, b, c, v FROM d WHERE %s ORDER BY %s", where,
                 orders[rand() % 6]);
        char *want = native_rows(db, q);
        char *got = run(s, q);
        char *body = strchr(got, '\n'); /* skip the row description */
        assert_non_null(body);
        if (strcmp(body + 1, want) != 0) {
            print_error("seed %u query %s\nwant:\n%s\ngot:\n%s", seed, q, want, got);
            fail();
        }
        free(want);
        free(got);
    }
    sqlite3_close(db);
    sqlv_session_close(s);
    close_all(&f);
}

static void test_ddl_and_restart(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE t1 (id INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    expect_error(s, "CREATE TABLE t1 (id INT)", "42P07");
    expect_error(s, "CREATE TABLE T1 (id INT)", "42P07");
    EXPECT(s, "CREATE TABLE IF NOT EXISTS t1 (id INT)",
           "N relation \"t1\" already exists, skipping\nC CREATE TABLE\n");
    expect_error(s, "CREATE TABLE bad (", "42601");
    expect_error(s, "CREATE TABLE bad (a INT, a INT)", "42701");
    expect_error(s, "CREATE TABLE bad AS SELECT 1", "0A000");
    expect_error(s, "CREATE INDEX i ON t1 ((lower(v)))", "0A000"); /* tests/sql/test_index.c */
    EXPECT(s, "INSERT INTO t1 VALUES (1, 'one'), (2, 'two')", "C INSERT 0 2\n");
    EXPECT(s, "DROP TABLE t1", "C DROP TABLE\n");
    expect_error(s, "SELECT * FROM t1", "42P01");
    expect_error(s, "DROP TABLE t1", "42P01");
    EXPECT(s, "DROP TABLE IF EXISTS t1", "N table \"t1\" does not exist, skipping\nC DROP TABLE\n");
    EXPECT(s, "CREATE TABLE t1 (id INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "SELECT count(*) FROM t1", "D count:20\nR 0\nC SELECT 1\n");
    EXPECT(s, "CREATE TABLE keep (id INT PRIMARY KEY, v TEXT); INSERT INTO keep VALUES (5, 'five')",
           "C CREATE TABLE\nC INSERT 0 1\n");
    sqlv_session *other = session(&f);
    EXPECT(other, "SELECT v FROM keep", "D v:25\nR five\nC SELECT 1\n");
    sqlv_session_close(other);
    sqlv_session_close(s);
    /* Reopen the engine (and the txn layer) on the same storage. */
    sqlv_engine_close(f.sql);
    txn_db_close(f.db);
    txn_db_options o = {.engine = f.engine, .clock = f.clock, .sync_commits = false};
    assert_int_equal(txn_db_open(&o, &f.db), TXN_OK);
    assert_int_equal(sqlv_engine_open(f.db, &f.sql), SQLV_OK);
    s = session(&f);
    EXPECT(s, "SELECT * FROM keep", "D id:23,v:25\nR 5|five\nC SELECT 1\n");
    EXPECT(s, "SELECT count(*) FROM t1", "D count:20\nR 0\nC SELECT 1\n");
    EXPECT(s, "CREATE TABLE t3 (x INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO t3 VALUES (1)", "C INSERT 0 1\n");
    EXPECT(s, "SELECT * FROM t3", "D x:23\nR 1\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_two_sessions(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *a = session(&f), *b = session(&f);
    EXPECT(a, "CREATE TABLE acc (id INT PRIMARY KEY, bal INT)", "C CREATE TABLE\n");
    EXPECT(a, "INSERT INTO acc VALUES (1, 100)", "C INSERT 0 1\n");
    EXPECT(a, "BEGIN; INSERT INTO acc VALUES (2, 5)", "C BEGIN\nC INSERT 0 1\n");
    EXPECT(b, "SELECT id FROM acc ORDER BY id", "D id:23\nR 1\nC SELECT 1\n");
    EXPECT(a, "SELECT id FROM acc ORDER BY id", "D id:23\nR 1\nR 2\nC SELECT 2\n");
    EXPECT(a, "COMMIT", "C COMMIT\n");
    EXPECT(b, "SELECT id FROM acc ORDER BY id", "D id:23\nR 1\nR 2\nC SELECT 2\n");
    /* Conflicting updates: exactly one of them fails with 40001. */
    EXPECT(a, "BEGIN; UPDATE acc SET bal = bal + 1 WHERE id = 1", "C BEGIN\nC UPDATE 1\n");
    EXPECT(b, "BEGIN; UPDATE acc SET bal = bal + 2 WHERE id = 1", "C BEGIN\nC UPDATE 1\n");
    char *ra = run(a, "COMMIT");
    char *rb = run(b, "COMMIT");
    int fails = (strstr(ra, "E 40001") != NULL) + (strstr(rb, "E 40001") != NULL);
    if (fails != 1) print_error("a: %s\nb: %s\n", ra, rb);
    assert_int_equal(fails, 1);
    free(ra);
    free(rb);
    assert_int_equal(sqlv_session_status(a), 'I');
    assert_int_equal(sqlv_session_status(b), 'I');
    char *r = run(a, "SELECT bal FROM acc WHERE id = 1");
    assert_true(strstr(r, "R 101\n") != NULL || strstr(r, "R 102\n") != NULL);
    free(r);
    sqlv_session_close(a);
    sqlv_session_close(b);
    close_all(&f);
}

static void test_garbage(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE g (id INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    static const char *const garbage[] = {
        "'",
        "\"",
        "/*",
        "--",
        "$$",
        "$1",
        "(((((",
        ")",
        "SELECT (",
        "SELECT * FROM g WHERE",
        "INSERT INTO g VALUES",
        "INSERT INTO g VALUES (1, 2, 3)",
        "UPDATE g SET",
        "DELETE",
        "PRAGMA table_info(g)",
        "ATTACH ':memory:' AS x",
        "DETACH main",
        "VACUUM",
        "CREATE TRIGGER tr AFTER INSERT ON g BEGIN SELECT 1; END",
        "CREATE VIEW vv AS SELECT 1",
        "CREATE VIRTUAL TABLE x USING meridian(1)",
        "CREATE TABLE",
        "CREATE TABLE (",
        "CREATE TABLE x (a INT GENERATED ALWAYS AS (1))",
        "DROP",
        "DROP TABLE",
        "DROP TABLE ,",
        "DROP INDEX x",
        "DROP TABLE \"\"",
        "SELECT _meridian_key FROM g",
        "INSERT INTO g (_meridian_key, id) VALUES (x'00', 1)",
        "SELECT * FROM sqlite_schema",
        "ALTER TABLE g RENAME TO h",
        "ALTER TABLE g ADD COLUMN z INT",
        "SELECT randomblob(-1)",
        "SELECT zeroblob(1000000000000)",
        "SELECT printf('%.*c', 2000000000, 'x')",
        "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x FROM r) SELECT count(*) FROM (SELECT "
        "* FROM r LIMIT 10)",
        "SELECT 1 UNION SELECT",
        "SHOW",
        "SHOW a b",
        "SET",
        "BEGIN; SAVEPOINT a; ROLLBACK",
        "ROLLBACK TO x",
        "\x01\x02\xff\xfe",
        "SELECT '\xff\xfe'",
        "SELECT load_extension('x')",
        "SELECT * FROM g, g, g, g WHERE g.id = 1",
        "SELECT * FROM pragma_table_info('g')",
        "INSERT INTO g SELECT id + 100, v FROM g",
        "UPDATE g SET _meridian_key = x'01'",
        "REPLACE INTO g VALUES (1, 'r')",
        "DELETE FROM g WHERE _meridian_key = x'00'",
        "SELECT * FROM g WHERE id = x'0102' OR v > 5 OR id IN (SELECT id FROM g)",
        "INSERT INTO g VALUES (1, 'a') RETURNING *",
        "UPDATE g SET v = 'q' RETURNING id",
        "INSERT INTO g VALUES (2, 'b') ON CONFLICT (id) DO NOTHING",
        "SELECT * FROM main.g",
        "SELECT * FROM temp.g",
        "CREATE TEMP TABLE tt (a)",
        "EXPLAIN SELECT 1",
        "END",
        "ABORT",
        "START TRANSACTION",
        "COMMIT",
    };
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        char *r = run(s, garbage[i]);
        if (getenv("SQL_TEST_VERBOSE")) printf("> %s\n%s", garbage[i], r);
        free(r);
        if (sqlv_session_status(s) != 'I') free(run(s, "ROLLBACK"));
    }
    /* Still works afterwards. */
    char *r = run(s, "SELECT count(*) >= 0 FROM g");
    assert_non_null(strstr(r, "C SELECT 1"));
    free(r);
    EXPECT(s, "SELECT name FROM sqlite_schema WHERE name = 'g'", "D name:25\nR g\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_cancel(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    capture c;
    memset(&c, 0, sizeof(c));
    c.cancel_on_row = s;
    sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
    const char *q = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < "
                    "100000000) SELECT x FROM r";
    assert_int_equal(sqlv_session_exec(s, q, strlen(q), &sink), SQLV_OK);
    base_buf_append_byte(&c.out, 0);
    assert_non_null(strstr((char *)c.out.data, "E 57014 canceling statement due to user request"));
    base_buf_free(&c.out);
    EXPECT(s, "SELECT 1", "D ?column?:20\nR 1\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

#define THREADS 4
#define ROWS_PER_THREAD 50

typedef struct worker {
    fixture *f;
    int n;
    int ok;
    bool counter; /* increment one shared row instead of inserting */
    int retry_failures;
} worker;

static void *worker_main(void *arg) {
    worker *w = arg;
    sqlv_session *s = NULL;
    if (sqlv_session_open(w->f->sql, "root", "defaultdb", &s) != 0) return NULL;
    for (int i = 0; i < ROWS_PER_THREAD; i++) {
        char q[128];
        if (w->counter)
            snprintf(q, sizeof(q), "UPDATE m SET v = v + 1 WHERE id = -1");
        else
            snprintf(q, sizeof(q), "INSERT INTO m VALUES (%d, %d)", w->n * 1000 + i, i);
        capture c;
        memset(&c, 0, sizeof(c));
        sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
        sqlv_session_exec(s, q, strlen(q), &sink);
        base_buf_append_byte(&c.out, 0);
        if (strstr((char *)c.out.data, w->counter ? "C UPDATE 1" : "C INSERT 0 1")) w->ok++;
        if (strstr((char *)c.out.data, "E 40001")) w->retry_failures++;
        base_buf_free(&c.out);
    }
    sqlv_session_close(s);
    return NULL;
}

static void test_threads(void **state) {
    fixture f;
    pthread_t th[THREADS];
    worker w[THREADS];
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE m (id INT PRIMARY KEY, v INT)", "C CREATE TABLE\n");
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){&f, i, 0, false, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
    }
    char want[128];
    snprintf(want, sizeof(want), "D count:20\nR %d\nC SELECT 1\n", ok);
    EXPECT(s, "SELECT count(*) FROM m", want);
    assert_true(ok > 0);
    /* Conflicting implicit updates of one row: no update is lost (those
    ** that fail report 40001 after the automatic retries). */
    EXPECT(s, "INSERT INTO m VALUES (-1, 0)", "C INSERT 0 1\n");
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){&f, i, 0, true, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    ok = 0;
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        failed += w[i].retry_failures;
    }
    assert_int_equal(ok + failed, THREADS * ROWS_PER_THREAD);
    snprintf(want, sizeof(want), "D v:23\nR %d\nC SELECT 1\n", ok);
    EXPECT(s, "SELECT v FROM m WHERE id = -1", want);
    sqlv_session_close(s);
    close_all(&f);
}

static int stop_row(void *ctx, int n, const sqlv_cell *cells) {
    (void)ctx;
    (void)n;
    (void)cells;
    return 1; /* the client went away */
}

/* A sink that asks to stop: SQLV_ERR_ABORTED, the implicit transaction is
** rolled back, a block is aborted, the session stays usable. */
static void test_sink_abort(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE sa (id INT PRIMARY KEY)", "C CREATE TABLE\n");
    capture c;
    memset(&c, 0, sizeof(c));
    sqlv_sink sink = {&c, c_desc, stop_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
    const char *q = "INSERT INTO sa VALUES (1) RETURNING id; INSERT INTO sa VALUES (2)";
    assert_int_equal(sqlv_session_exec(s, q, strlen(q), &sink), SQLV_ERR_ABORTED);
    assert_int_equal(sqlv_session_status(s), 'I');
    EXPECT(s, "SELECT count(*) FROM sa", "D count:20\nR 0\nC SELECT 1\n");
    EXPECT(s, "BEGIN", "C BEGIN\n");
    q = "SELECT 1";
    assert_int_equal(sqlv_session_exec(s, q, strlen(q), &sink), SQLV_ERR_ABORTED);
    assert_int_equal(sqlv_session_status(s), 'E');
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    base_buf_free(&c.out);
    sqlv_session_close(s);
    close_all(&f);
}

/* Out of memory at every allocation point of a few statements in turn:
** no crash, no leak (ASan), and the session works again afterwards. */
static void test_alloc_failures(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE fa (a INT, b TEXT, PRIMARY KEY (a, b))", "C CREATE TABLE\n");
    static const char *const qs[] = {
        "INSERT INTO fa VALUES (1, 'x'), (2, 'y')",
        "SELECT * FROM fa WHERE a = 1 ORDER BY a, b",
        "BEGIN; UPDATE fa SET a = a + 10 WHERE a < 5; DELETE FROM fa WHERE a > 100; COMMIT",
        "CREATE TABLE fb (k INT PRIMARY KEY); DROP TABLE fb",
        "SELECT 'x', 1.5, NULL; SHOW client_encoding",
        "BEGIN; CREATE TABLE fc (k INT PRIMARY KEY); INSERT INTO fc VALUES (1); DROP TABLE fc; "
        "CREATE TABLE fd (a INT); DROP TABLE IF EXISTS fb; COMMIT",
    };
    for (int n = 0; n < 400; n++) {
        for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
            capture c;
            memset(&c, 0, sizeof(c));
            sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
            base_alloc_fail_after(n);
            (void)sqlv_session_exec(s, qs[i], strlen(qs[i]), &sink);
            base_alloc_fail_after(-1);
            base_buf_free(&c.out);
            if (sqlv_session_status(s) != 'I') free(run(s, "ROLLBACK"));
        }
        free(run(s, "DROP TABLE IF EXISTS fb, fd"));
    }
    char *r = run(s, "SELECT count(*) >= 0 FROM fa");
    assert_non_null(strstr(r, "R t\n"));
    free(r);
    sqlv_session *t = NULL;
    for (int n = 0; n < 50; n++) {
        base_alloc_fail_after(n);
        int rc = sqlv_session_open(f.sql, "root", "defaultdb", &t);
        base_alloc_fail_after(-1);
        if (rc == 0) sqlv_session_close(t);
    }
    sqlv_session_close(s);
    close_all(&f);
}


/* ---- extended protocol (prepared.c) ----------------------------------------------- */

static int c_params(void *ctx, int n, const uint32_t *oids) {
    capture *c = ctx;
    base_buf_printf(&c->out, "P");
    for (int i = 0; i < n; i++) base_buf_printf(&c->out, " %u", oids[i]);
    base_buf_printf(&c->out, "\n");
    return 0;
}
static int c_nodata(void *ctx) { return base_buf_printf(&((capture *)ctx)->out, "n\n"), 0; }
static int c_suspended(void *ctx) { return base_buf_printf(&((capture *)ctx)->out, "s\n"), 0; }

/* One extended-protocol step: op is "parse name sql", "bind portal stmt
** v1 v2..." ("~" is NULL), "describe S|P name", "execute portal max",
** "close S|P name", "sync". Appends to the transcript in c. */
static int ext(sqlv_session *s, capture *c, const char *op) {
    sqlv_sink sink = {c,      c_desc,   c_row,   c_tag,       c_empty,
                      c_error, c_notice, c_params, c_nodata, c_suspended};
    char buf[512], *args[16] = {0};
    int n = 0;
    snprintf(buf, sizeof(buf), "%s", op);
    if (strncmp(buf, "parse ", 6) == 0) {
        char *name = buf + 6, *sp = strchr(name, ' ');
        *sp = 0;
        return sqlv_session_prepare(s, strcmp(name, "-") == 0 ? "" : name, sp + 1,
                                    strlen(sp + 1), 0, NULL, &sink);
    }
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && n < 16;
         t = strtok_r(NULL, " ", &save))
        args[n++] = strcmp(t, "-") == 0 ? "" : t;
    if (n == 0) fail_msg("empty op");
    if (strcmp(args[0], "bind") == 0) {
        sqlv_cell v[12];
        for (int i = 3; i < n; i++) {
            v[i - 3].data = strcmp(args[i], "~") == 0 ? NULL : args[i];
            v[i - 3].len = v[i - 3].data ? strlen(args[i]) : 0;
        }
        return sqlv_session_bind(s, args[1], args[2], n - 3, v, 0, NULL, 0, NULL, &sink);
    }
    if (strcmp(args[0], "describe") == 0) return sqlv_session_describe(s, args[1][0], args[2], &sink);
    if (strcmp(args[0], "execute") == 0)
        return sqlv_session_execute(s, args[1], strtoull(args[2], NULL, 10), &sink);
    if (strcmp(args[0], "close") == 0) return sqlv_session_close_object(s, args[1][0], args[2]);
    if (strcmp(args[0], "sync") == 0) return sqlv_session_sync(s, &sink);
    fail_msg("bad op %s", op);
    return -1;
}

/* Runs ops (NULL-terminated) and compares the transcript. */
static void ext_expect(sqlv_session *s, const char *const *ops, const char *want) {
    capture c;
    memset(&c, 0, sizeof(c));
    for (int i = 0; ops[i]; i++) {
        int rc = ext(s, &c, ops[i]);
        assert_true(rc == SQLV_OK || rc == SQLV_ERR_FAILED);
    }
    base_buf_append_byte(&c.out, 0);
    if (strcmp((const char *)c.out.data, want) != 0)
        print_error("want:\n%sgot:\n%s", want, (const char *)c.out.data);
    assert_string_equal((const char *)c.out.data, want);
    base_buf_free(&c.out);
}

static void test_prepared_portals(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE pp (id INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO pp VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, NULL)", "C INSERT 0 4\n");
    /* row-limited execution, then the rest */
    const char *a[] = {"parse q SELECT id, v FROM pp WHERE id > $1 ORDER BY id",
                       "describe S q",
                       "bind p1 q 0",
                       "describe P p1",
                       "execute p1 2",
                       "execute p1 0",
                       "execute p1 0",
                       "sync",
                       NULL};
    ext_expect(s, a,
               "P 23\nD id:23,v:25\nD id:23,v:25\nR 1|a\nR 2|b\ns\nR 3|c\nR 4|NULL\nC SELECT 4\n"
               "C SELECT 4\n");
    assert_int_equal(sqlv_session_status(s), 'I');
    /* two portals of one statement, interleaved (the second gets its own
    ** SQLite statement); the portals of the last Sync are gone */
    const char *b[] = {"execute p1 0", "sync",          "bind p1 q 2",   "bind p2 q 0",
                       "execute p1 1", "execute p2 1",  "execute p1 1",  "execute p2 0",
                       "close P p1",   "execute p1 1",  "sync",          NULL};
    ext_expect(s, b,
               "E 34000 portal \"p1\" does not exist\nR 3|c\ns\nR 1|a\ns\nR 4|NULL\nC SELECT 2\n"
               "R 2|b\nR 3|c\nR 4|NULL\nC SELECT 4\nE 34000 portal \"p1\" does not exist\n");
    /* writes up to Sync are one transaction: an error rolls back all */
    const char *c[] = {"parse ins INSERT INTO pp VALUES ($1, $2)",
                       "describe S ins",
                       "bind - ins 10 x",
                       "execute - 0",
                       "bind - ins 1 dup",
                       "execute - 0",
                       "sync",
                       NULL};
    ext_expect(s, c, "P 23 25\nn\nC INSERT 0 1\nE 23505 duplicate key value violates unique "
                     "constraint \"pp_pkey\"\n");
    EXPECT(s, "SELECT count(*) FROM pp", "D count:20\nR 4\nC SELECT 1\n");
    /* and commits at Sync otherwise; NULL parameters */
    const char *d[] = {"bind - ins 10 ~", "execute - 0", "bind - ins 11 y", "execute - 0",
                       "sync", NULL};
    ext_expect(s, d, "C INSERT 0 1\nC INSERT 0 1\n");
    EXPECT(s, "SELECT id, v FROM pp WHERE id >= 10 ORDER BY id",
           "D id:23,v:25\nR 10|NULL\nR 11|y\nC SELECT 2\n");
    /* inside BEGIN: an error moves to 'E'; only ROLLBACK helps */
    const char *e[] = {"parse begin BEGIN", "bind - begin", "execute - 0", "sync",
                       "bind - ins 1 dup",  "execute - 0",  "sync",        NULL};
    ext_expect(s, e,
               "C BEGIN\nE 23505 duplicate key value violates unique constraint \"pp_pkey\"\n");
    assert_int_equal(sqlv_session_status(s), 'E');
    const char *g[] = {"bind - ins 12 z", "parse rb ROLLBACK", "bind - rb", "execute - 0", "sync",
                       NULL};
    ext_expect(s, g,
               "E 25P02 current transaction is aborted, commands ignored until end of "
               "transaction block\nC ROLLBACK\n");
    assert_int_equal(sqlv_session_status(s), 'I');
    /* bad parameter input, the empty query, SHOW */
    const char *h[] = {"bind - ins abc x", "sync", "parse - ", "bind - -", "describe P -",
                       "execute - 0", "parse - SHOW client_encoding", "bind - -",
                       "describe P -", "execute - 0", "sync", NULL};
    ext_expect(s, h,
               "E 22P02 invalid input syntax for parameter $1 of type 23\nn\nQ\n"
               "D client_encoding:25\nR UTF8\nC SHOW\n");
    sqlv_session_close(s);
    close_all(&f);
}

/* Out of memory at every allocation point of an extended sequence. */
static void test_prepared_alloc_failures(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE pa (id INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    static const char *const ops[] = {"parse q SELECT id, v FROM pa WHERE id > $1",
                                      "bind p q 0",
                                      "describe P p",
                                      "execute p 1",
                                      "parse i INSERT INTO pa VALUES ($1, $2)",
                                      "bind - i 1 x",
                                      "execute - 0",
                                      "execute p 0",
                                      "bind p2 q 0",
                                      "close S q",
                                      "execute p2 0",
                                      "sync"};
    for (int n = 0; n < 200; n++) {
        capture c;
        memset(&c, 0, sizeof(c));
        base_alloc_fail_after(n);
        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) (void)ext(s, &c, ops[i]);
        base_alloc_fail_after(-1);
        (void)ext(s, &c, "sync");
        (void)ext(s, &c, "close S q");
        (void)ext(s, &c, "close S i");
        base_buf_free(&c.out);
        assert_int_equal(sqlv_session_status(s), 'I');
        free(run(s, "DELETE FROM pa"));
    }
    sqlv_session_close(s);
    close_all(&f);
}

/* Review regressions (each failed before its fix). */

/* UPDATE OR IGNORE that moves a row onto an existing key must skip the row,
** not delete it: the uniqueness check ran after the old key was deleted. */
static void test_update_or_ignore_keeps_row(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE t (id INT PRIMARY KEY, v INT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO t VALUES (1, 10), (2, 20)", "C INSERT 0 2\n");
    EXPECT(s, "UPDATE OR IGNORE t SET id = 2 WHERE id = 1", "C UPDATE 0\n");
    EXPECT(s, "SELECT * FROM t ORDER BY id", "D id:23,v:23\nR 1|10\nR 2|20\nC SELECT 2\n");
    /* the same inside a block, and a multi-row (two-pass) update */
    EXPECT(s, "BEGIN; UPDATE OR IGNORE t SET id = id + 1; COMMIT",
           "C BEGIN\nC UPDATE 1\nC COMMIT\n");
    EXPECT(s, "SELECT * FROM t ORDER BY id", "D id:23,v:23\nR 1|10\nR 3|20\nC SELECT 2\n");
    /* REPLACE still overwrites, and a plain move still works */
    EXPECT(s, "UPDATE OR REPLACE t SET id = 3 WHERE id = 1", "C UPDATE 1\n");
    EXPECT(s, "SELECT * FROM t ORDER BY id", "D id:23,v:23\nR 3|10\nC SELECT 1\n");
    EXPECT(s, "UPDATE t SET id = 4 WHERE id = 3", "C UPDATE 1\n");
    EXPECT(s, "SELECT * FROM t ORDER BY id", "D id:23,v:23\nR 4|10\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

/* Result columns are named and typed as PostgreSQL names them. */
static void test_pg_column_names(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE a (id INT PRIMARY KEY, owner TEXT, bal INT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO a VALUES (1, 'ada', 100)", "C INSERT 0 1\n");
    EXPECT(s, "SELECT 2, count(*), SUM(bal), upper(owner), max(bal) + 1 FROM a",
           "D ?column?:20,count:20,sum:20,upper:25,?column?:20\nR 2|1|100|ADA|101\nC SELECT 1\n");
    EXPECT(s, "SELECT true, false, 1 = 1, bal > 50, bal < 50 AND id = 1, id IS NULL, 1 < 2 FROM a",
           "D bool:16,bool:16,?column?:16,?column?:16,?column?:16,?column?:16,?column?:16\n"
           "R t|f|t|t|f|f|t\nC SELECT 1\n");
    /* arithmetic, shifts, CASE and parenthesized comparisons are not booleans */
    EXPECT(s, "SELECT bal << 1, (bal > 1) + 1, CASE WHEN bal > 1 THEN 5 END, NULL FROM a",
           "D ?column?:20,?column?:20,case:20,?column?:25\nR 200|2|5|NULL\nC SELECT 1\n");
    /* aliases: unquoted fold to lower case, quoted are kept; table columns */
    EXPECT(s, "SELECT bal AS Total, 1 AS \"My Col\", sum(bal) AS \"Sum\", id FROM a",
           "D total:23,My Col:20,Sum:20,id:23\nR 100|1|100|1\nC SELECT 1\n");
    EXPECT(s, "SELECT x FROM (SELECT 7 AS x)", "D x:20\nR 7\nC SELECT 1\n");
    EXPECT(s, "SELECT row_number() OVER (ORDER BY id), count(*) FILTER (WHERE bal > 1) FROM a",
           "D row_number:20,count:20\nR 1|1\nC SELECT 1\n");
    /* the system catalogs (test_pgcatalog.c): psql's \\dt */
    EXPECT(s,
           "SELECT n.nspname, pg_catalog.pg_get_userbyid(c.relowner) FROM "
           "pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n "
           "ON n.oid = c.relnamespace WHERE c.relname = 'a'",
           "D nspname:25,pg_get_userbyid:25\nR public|root\nC SELECT 1\n");
    /* an aliased comparison is still a boolean; an aliased sum is not */
    EXPECT(s,
           "SELECT bal > 60 AS rich, (bal + 1) AS \"Next\", id = 1 AND bal < 0 AS \"Odd\" "
           "FROM a",
           "D rich:16,Next:20,Odd:16\nR t|101|f\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

/* CREATE TABLE / DROP TABLE inside BEGIN: visible to the session at once,
** to others only after COMMIT, undone by ROLLBACK, durable after COMMIT. */
static void test_ddl_in_transaction(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *a = session(&f), *b = session(&f);
    EXPECT(a, "BEGIN; CREATE TABLE z (id INT PRIMARY KEY, v TEXT); INSERT INTO z VALUES (1, 'x')",
           "C BEGIN\nC CREATE TABLE\nC INSERT 0 1\n");
    EXPECT(a, "SELECT * FROM z", "D id:23,v:25\nR 1|x\nC SELECT 1\n");
    expect_error(a, "RELEASE nope", "3B001"); /* any error aborts the block... */
    EXPECT(a, "ROLLBACK", "C ROLLBACK\n");      /* ...and ROLLBACK forgets the table */
    expect_error(a, "SELECT * FROM z", "42P01");
    expect_error(b, "SELECT * FROM z", "42P01");
    EXPECT(a, "BEGIN; CREATE TABLE z (id INT PRIMARY KEY, v TEXT); INSERT INTO z VALUES (2, 'y')",
           "C BEGIN\nC CREATE TABLE\nC INSERT 0 1\n");
    expect_error(b, "SELECT * FROM z", "42P01"); /* not visible before COMMIT */
    expect_error(a, "CREATE TABLE z (a INT)", "42P07");
    EXPECT(a, "ROLLBACK", "C ROLLBACK\n");
    EXPECT(a, "BEGIN; CREATE TABLE z (id INT PRIMARY KEY, v TEXT); INSERT INTO z VALUES (3, 'z')",
           "C BEGIN\nC CREATE TABLE\nC INSERT 0 1\n");
    EXPECT(a, "CREATE TABLE IF NOT EXISTS z (a INT)",
           "N relation \"z\" already exists, skipping\nC CREATE TABLE\n");
    EXPECT(a, "COMMIT", "C COMMIT\n");
    EXPECT(b, "SELECT * FROM z", "D id:23,v:25\nR 3|z\nC SELECT 1\n");
    /* DROP inside a block: gone for the session, still there for others,
    ** back after ROLLBACK with its rows. */
    EXPECT(a, "BEGIN; DROP TABLE z", "C BEGIN\nC DROP TABLE\n");
    EXPECT(a, "DROP TABLE IF EXISTS z", "N table \"z\" does not exist, skipping\nC DROP TABLE\n");
    EXPECT(b, "SELECT * FROM z", "D id:23,v:25\nR 3|z\nC SELECT 1\n");
    expect_error(a, "SELECT * FROM z", "42P01");
    EXPECT(a, "ROLLBACK", "C ROLLBACK\n");
    EXPECT(a, "SELECT * FROM z", "D id:23,v:25\nR 3|z\nC SELECT 1\n");
    /* DROP and re-CREATE under the same name in one block */
    EXPECT(a,
           "BEGIN; DROP TABLE z; CREATE TABLE z (k TEXT PRIMARY KEY); "
           "INSERT INTO z VALUES ('n')",
           "C BEGIN\nC DROP TABLE\nC CREATE TABLE\nC INSERT 0 1\n");
    EXPECT(b, "SELECT * FROM z", "D id:23,v:25\nR 3|z\nC SELECT 1\n");
    EXPECT(a, "COMMIT", "C COMMIT\n");
    EXPECT(b, "SELECT * FROM z", "D k:25\nR n\nC SELECT 1\n");
    /* CREATE then DROP in one block leaves nothing */
    EXPECT(a, "BEGIN; CREATE TABLE tmp (a INT); DROP TABLE tmp; COMMIT",
           "C BEGIN\nC CREATE TABLE\nC DROP TABLE\nC COMMIT\n");
    expect_error(b, "SELECT * FROM tmp", "42P01");
    /* A concurrent CREATE of the same name: the block's COMMIT fails (40001)
    ** and the other table stands. */
    EXPECT(a, "BEGIN; CREATE TABLE w (a INT PRIMARY KEY)", "C BEGIN\nC CREATE TABLE\n");
    EXPECT(b, "CREATE TABLE w (b TEXT PRIMARY KEY)", "C CREATE TABLE\n");
    expect_error(a, "COMMIT", "40001");
    assert_int_equal(sqlv_session_status(a), 'I');
    EXPECT(a, "INSERT INTO w VALUES ('q'); SELECT * FROM w",
           "C INSERT 0 1\nD b:25\nR q\nC SELECT 1\n");
    /* A concurrent write into a table the block drops: the DROP loses. */
    EXPECT(a, "BEGIN; DROP TABLE w", "C BEGIN\nC DROP TABLE\n");
    EXPECT(b, "INSERT INTO w VALUES ('r')", "C INSERT 0 1\n");
    expect_error(a, "COMMIT", "40001");
    EXPECT(a, "SELECT count(*) FROM w", "D count:20\nR 2\nC SELECT 1\n");
    /* A rolled-back CREATE never lends its id to a later table of the same
    ** name: the session must not keep using its stale declaration. */
    EXPECT(a, "BEGIN; CREATE TABLE sx (a INT PRIMARY KEY); INSERT INTO sx VALUES (1); ROLLBACK",
           "C BEGIN\nC CREATE TABLE\nC INSERT 0 1\nC ROLLBACK\n");
    EXPECT(b, "CREATE TABLE sx (b TEXT PRIMARY KEY, c INT)", "C CREATE TABLE\n");
    EXPECT(a, "INSERT INTO sx VALUES ('k', 1)", "C INSERT 0 1\n");
    EXPECT(a, "SELECT * FROM sx", "D b:25,c:23\nR k|1\nC SELECT 1\n");
    /* two blocks creating different tables concurrently: catalog changes
    ** are serialized by the catalog version key, so the second COMMIT
    ** fails with 40001 (docs/sql.md) and its retry succeeds */
    EXPECT(a, "BEGIN; CREATE TABLE c1 (a INT)", "C BEGIN\nC CREATE TABLE\n");
    EXPECT(b, "BEGIN; CREATE TABLE c2 (a INT)", "C BEGIN\nC CREATE TABLE\n");
    EXPECT(a, "COMMIT", "C COMMIT\n");
    expect_error(b, "COMMIT", "40001");
    EXPECT(b, "BEGIN; CREATE TABLE c2 (a INT); COMMIT", "C BEGIN\nC CREATE TABLE\nC COMMIT\n");
    EXPECT(a, "SELECT count(*) FROM c1, c2", "D count:20\nR 0\nC SELECT 1\n");
    sqlv_session_close(b);
    /* Committed block DDL survives reopening the engine. */
    EXPECT(a, "BEGIN; CREATE TABLE kept (id INT PRIMARY KEY); INSERT INTO kept VALUES (9); COMMIT",
           "C BEGIN\nC CREATE TABLE\nC INSERT 0 1\nC COMMIT\n");
    /* a session closed with an open block forgets its DDL */
    EXPECT(a, "BEGIN; CREATE TABLE lost (id INT)", "C BEGIN\nC CREATE TABLE\n");
    sqlv_session_close(a);
    sqlv_engine_close(f.sql);
    txn_db_close(f.db);
    txn_db_options o = {.engine = f.engine, .clock = f.clock, .sync_commits = false};
    assert_int_equal(txn_db_open(&o, &f.db), TXN_OK);
    assert_int_equal(sqlv_engine_open(f.db, &f.sql), SQLV_OK);
    a = session(&f);
    EXPECT(a, "SELECT * FROM kept", "D id:23\nR 9\nC SELECT 1\n");
    EXPECT(a, "SELECT * FROM z", "D k:25\nR n\nC SELECT 1\n");
    expect_error(a, "SELECT * FROM lost", "42P01");
    expect_error(a, "SELECT * FROM tmp", "42P01");
    sqlv_session_close(a);
    close_all(&f);
}

/* A multi-statement query string outside BEGIN is one implicit transaction,
** as in PostgreSQL: an error rolls back the statements before it. */
/* A single node's key space is one local store: no ranges, so SPLIT AT is
** refused (and CREATE/DROP TABLE split nothing); syntax and blocks are
** checked first. */
static void test_split_at_single_node(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE sp (k INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO sp VALUES (1, 'a'), (9, 'b')", "C INSERT 0 2\n");
    expect_error(s, "ALTER TABLE sp SPLIT AT VALUES (5)", "0A000");
    expect_error(s, "ALTER TABLE sp SPLIT VALUES (5)", "42601");
    expect_error(s, "ALTER TABLE sp SPLIT AT SELECT 5", "0A000");
    EXPECT(s, "BEGIN", "C BEGIN\n");
    expect_error(s, "ALTER TABLE sp SPLIT AT VALUES (5)", "25001");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    EXPECT(s, "SELECT k, v FROM sp ORDER BY k", "D k:23,v:25\nR 1|a\nR 9|b\nC SELECT 2\n");
    /* a dropped name is free again (a new, empty table) */
    EXPECT(s, "DROP TABLE sp", "C DROP TABLE\n");
    EXPECT(s, "CREATE TABLE sp (k INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "SELECT count(*) FROM sp", "D count:20\nR 0\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_implicit_block(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f), *o = session(&f);
    EXPECT(s, "CREATE TABLE ib (id INT PRIMARY KEY); INSERT INTO ib VALUES (1)",
           "C CREATE TABLE\nC INSERT 0 1\n");
    assert_int_equal(sqlv_session_status(s), 'I');
    EXPECT(o, "SELECT * FROM ib", "D id:23\nR 1\nC SELECT 1\n");
    EXPECT(s, "INSERT INTO ib VALUES (2); INSERT INTO ib VALUES (1)",
           "C INSERT 0 1\nE 23505 duplicate key value violates unique constraint \"ib_pkey\"\n");
    assert_int_equal(sqlv_session_status(s), 'I');
    EXPECT(s, "SELECT * FROM ib", "D id:23\nR 1\nC SELECT 1\n"); /* 2 rolled back */
    /* COMMIT inside the string commits what came before (with a notice) */
    EXPECT(s, "INSERT INTO ib VALUES (3); COMMIT; INSERT INTO ib VALUES (1)",
           "C INSERT 0 1\nN there is no transaction in progress\nC COMMIT\n"
           "E 23505 duplicate key value violates unique constraint \"ib_pkey\"\n");
    /* ROLLBACK inside the string discards what came before */
    EXPECT(s, "INSERT INTO ib VALUES (4); ROLLBACK; INSERT INTO ib VALUES (5)",
           "C INSERT 0 1\nN there is no transaction in progress\nC ROLLBACK\nC INSERT 0 1\n");
    EXPECT(o, "SELECT * FROM ib ORDER BY id", "D id:23\nR 1\nR 3\nR 5\nC SELECT 3\n");
    /* BEGIN inside the string: the block becomes explicit, with the
    ** statements before it */
    EXPECT(s, "INSERT INTO ib VALUES (6); BEGIN; INSERT INTO ib VALUES (7)",
           "C INSERT 0 1\nC BEGIN\nC INSERT 0 1\n");
    assert_int_equal(sqlv_session_status(s), 'T');
    EXPECT(o, "SELECT count(*) FROM ib", "D count:20\nR 3\nC SELECT 1\n");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    EXPECT(s, "SELECT count(*) FROM ib; SELECT max(id) FROM ib",
           "D count:20\nR 3\nC SELECT 1\nD max:20\nR 5\nC SELECT 1\n");
    assert_int_equal(sqlv_session_status(s), 'I');
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

int main(void) {
    base_log_set_level(BASE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_scenario),
        cmocka_unit_test(test_types_and_output),
        cmocka_unit_test(test_constraints_and_atomicity),
        cmocka_unit_test(test_composite_and_pushdown_plans),
        cmocka_unit_test(test_differential),
        cmocka_unit_test(test_ddl_and_restart),
        cmocka_unit_test(test_two_sessions),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_sink_abort),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_prepared_portals),
        cmocka_unit_test(test_prepared_alloc_failures),
        cmocka_unit_test(test_update_or_ignore_keeps_row),
        cmocka_unit_test(test_pg_column_names),
        cmocka_unit_test(test_ddl_in_transaction),
        cmocka_unit_test(test_implicit_block),
        cmocka_unit_test(test_split_at_single_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
