/*
** tests/sql/test_index.c: secondary indexes and UNIQUE constraints
** (sql/index.c, sql/vtab.c; docs/sql.md "Indexes"):
**   - CREATE [UNIQUE] INDEX / DROP INDEX: names (given, chosen), IF [NOT]
**     EXISTS, PostgreSQL's errors (42P07, 42P01, 42703, 42704, 42809,
**     2BP01, 0A000), UNIQUE constraints of CREATE TABLE (t_a_key, named,
**     several columns);
**   - maintenance on INSERT, UPDATE (indexed column, key move), DELETE, OR
**     REPLACE and OR IGNORE, on tables with and without a primary key,
**     checked against full scans (a lookup by "b" uses the index, one by
**     "b + 0" cannot);
**   - unique violations (one row, inside a multi-row INSERT, an UPDATE,
**     in a block), NULLs never conflicting, the DETAIL;
**   - the online backfill: batches, writers between batches (a test hook)
**     seen by the finished index, a duplicate failing CREATE UNIQUE INDEX
**     and the index removed, a writer's duplicate refused while the index
**     is write-only;
**   - CREATE/DROP INDEX inside blocks (ROLLBACK, savepoints), another
**     engine (node) maintaining and using the index, a restart, ALTER TABLE
**     keeping indexes;
**   - lookups reading few keys: a key space that counts reads, a
**     10,000-row table;
**   - pg_class, pg_index, pg_indexes, pg_constraint and psql 15's \di and
**     \d t queries.
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

#include "range/range.h"
#include "sql/sql.h"
#include "sql/sql_int.h"
#include "tests/sql/sql_harness.h"

static void execf(sqlv_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void execf(sqlv_session *s, const char *fmt, ...) {
    char q[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof(q), fmt, ap);
    va_end(ap);
    exec_ok(s, q);
}

/* Every value of column col (0..max) finds as many rows through the index
** ("col = v") as through a full scan ("col + 0 = v"), and the rows agree. */
static void check_consistent(sqlv_session *s, const char *table, const char *col, int max) {
    char q1[256], q2[256];
    for (int v = 0; v <= max; v++) {
        snprintf(q1, sizeof(q1), "SELECT * FROM %s WHERE %s = %d ORDER BY 1", table, col, v);
        snprintf(q2, sizeof(q2), "SELECT * FROM %s WHERE %s + 0 = %d ORDER BY 1", table, col, v);
        char *a = rows_of(s, q1), *b = rows_of(s, q2);
        if (strcmp(a, b) != 0) print_error("%s = %d:\nindex:\n%sscan:\n%s", col, v, a, b);
        assert_string_equal(a, b);
        free(a);
        free(b);
    }
}

/* ---- CREATE / DROP INDEX ----------------------------------------------------------- */

static void test_create_drop(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE t (id INT PRIMARY KEY, b INT, c TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "CREATE INDEX t_b ON t (b)", "C CREATE INDEX\n");
    EXPECT(s, "CREATE INDEX ON t (b, c DESC)", "C CREATE INDEX\n");  /* t_b_c_idx */
    EXPECT(s, "CREATE INDEX ON t USING btree (b)", "C CREATE INDEX\n"); /* t_b_idx */
    EXPECT(s, "CREATE INDEX ON t (b)", "C CREATE INDEX\n");             /* t_b_idx1 */
    EXPECT(s, "CREATE UNIQUE INDEX IF NOT EXISTS t_c ON t (c)", "C CREATE INDEX\n");
    EXPECT(s, "CREATE INDEX IF NOT EXISTS t_c ON t (b)",
           "N relation \"t_c\" already exists, skipping\nC CREATE INDEX\n");
    EXPECT_ROWS(s, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 't' ORDER BY 1",
                "R t_b|CREATE INDEX t_b ON public.t USING btree (b)\n"
                "R t_b_c_idx|CREATE INDEX t_b_c_idx ON public.t USING btree (b, c DESC)\n"
                "R t_b_idx|CREATE INDEX t_b_idx ON public.t USING btree (b)\n"
                "R t_b_idx1|CREATE INDEX t_b_idx1 ON public.t USING btree (b)\n"
                "R t_c|CREATE UNIQUE INDEX t_c ON public.t USING btree (c)\n"
                "R t_pkey|CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)\n");
    /* PostgreSQL's errors: tables and indexes share one namespace */
    expect_error(s, "CREATE INDEX t_b ON t (c)", "42P07");
    expect_error(s, "CREATE INDEX T_B ON t (c)", "42P07");
    expect_error(s, "CREATE INDEX t ON t (c)", "42P07");
    expect_error(s, "CREATE INDEX t_pkey ON t (c)", "42P07");
    expect_error(s, "CREATE TABLE t_b (x INT)", "42P07");
    expect_error(s, "CREATE INDEX i ON nosuch (c)", "42P01");
    expect_error(s, "CREATE INDEX i ON t (nosuch)", "42703");
    expect_error(s, "CREATE INDEX i ON t ((lower(c)))", "0A000");
    expect_error(s, "CREATE INDEX i ON t (lower(c))", "0A000");
    expect_error(s, "CREATE INDEX i ON t USING gin (c)", "0A000");
    expect_error(s, "CREATE INDEX i ON t (c) WHERE b > 0", "0A000");
    expect_error(s, "CREATE INDEX i ON t (c) INCLUDE (b)", "0A000");
    expect_error(s, "CREATE INDEX i ON t", "42601");
    expect_error(s, "CREATE INDEX i ON t (c", "42601");
    expect_error(s, "CREATE INDEX IF NOT EXISTS ON t (c)", "42601");
    EXPECT(s, "CREATE INDEX i ON t (c) WITH (fillfactor = 90)", "C CREATE INDEX\n");
    EXPECT(s, "DROP INDEX i", "C DROP INDEX\n");
    expect_error(s, "DROP INDEX i", "42704");
    EXPECT(s, "DROP INDEX IF EXISTS i", "N index \"i\" does not exist, skipping\nC DROP INDEX\n");
    expect_error(s, "DROP INDEX t", "42809");
    expect_error(s, "DROP INDEX t_pkey", "2BP01");
    EXPECT(s, "DROP INDEX t_b_idx, t_b_idx1 CASCADE", "C DROP INDEX\n");
    EXPECT(s, "DROP INDEX IF EXISTS nosuch, t_b_c_idx",
           "N index \"nosuch\" does not exist, skipping\nC DROP INDEX\n");
    EXPECT_ROWS(s, "SELECT indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1",
                "R t_b\nR t_c\nR t_pkey\n");
    /* a dropped index's name is free again; its id is not reused */
    EXPECT(s, "CREATE INDEX t_b_idx ON t (c)", "C CREATE INDEX\n");
    EXPECT(s, "INSERT INTO t VALUES (1, 10, 'x'), (2, 20, 'y')", "C INSERT 0 2\n");
    EXPECT_ROWS(s, "SELECT id FROM t WHERE c = 'y'", "R 2\n");
    /* dropping the table takes its indexes */
    EXPECT(s, "DROP TABLE t", "C DROP TABLE\n");
    EXPECT_ROWS(s, "SELECT count(*) FROM pg_indexes", "R 0\n");
    EXPECT(s, "CREATE TABLE t (id INT PRIMARY KEY, b INT)", "C CREATE TABLE\n");
    EXPECT(s, "CREATE INDEX t_b ON t (b)", "C CREATE INDEX\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_unique_constraints(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s,
           "CREATE TABLE u (id INT PRIMARY KEY, a INT UNIQUE, b TEXT, c INT, "
           "d INT CONSTRAINT d_uniq UNIQUE, CONSTRAINT u_bc UNIQUE (b, c))",
           "C CREATE TABLE\n");
    EXPECT_ROWS(s, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'u' ORDER BY 1",
                "R d_uniq|CREATE UNIQUE INDEX d_uniq ON public.u USING btree (d)\n"
                "R u_a_key|CREATE UNIQUE INDEX u_a_key ON public.u USING btree (a)\n"
                "R u_bc|CREATE UNIQUE INDEX u_bc ON public.u USING btree (b, c)\n"
                "R u_pkey|CREATE UNIQUE INDEX u_pkey ON public.u USING btree (id)\n");
    EXPECT_ROWS(s,
                "SELECT conname, contype, conkey, pg_get_constraintdef(oid) FROM pg_constraint "
                "ORDER BY 1",
                "R d_uniq|u|{5}|UNIQUE (d)\nR u_a_key|u|{2}|UNIQUE (a)\n"
                "R u_bc|u|{3,4}|UNIQUE (b, c)\nR u_pkey|p|{1}|PRIMARY KEY (id)\n");
    EXPECT_ROWS(s,
                "SELECT constraint_name, constraint_type FROM "
                "information_schema.table_constraints ORDER BY 1",
                "R d_uniq|UNIQUE\nR u_a_key|UNIQUE\nR u_bc|UNIQUE\nR u_pkey|PRIMARY KEY\n");
    expect_error(s, "DROP INDEX u_a_key", "2BP01");
    EXPECT(s, "INSERT INTO u VALUES (1, 1, 'x', 1, 1)", "C INSERT 0 1\n");
    EXPECT(s, "INSERT INTO u VALUES (2, 1, 'x', 2, 2)",
           "E 23505 duplicate key value violates unique constraint \"u_a_key\"\n"
           "DETAIL:  Key (a)=(1) already exists.\n");
    EXPECT(s, "INSERT INTO u VALUES (2, 2, 'x', 1, 2)",
           "E 23505 duplicate key value violates unique constraint \"u_bc\"\n"
           "DETAIL:  Key (b, c)=(x, 1) already exists.\n");
    EXPECT(s, "INSERT INTO u VALUES (2, 2, 'x', 2, 2)", "C INSERT 0 1\n");
    /* the table's name clashes, in CREATE TABLE, with a UNIQUE's index name */
    expect_error(s, "CREATE TABLE v (id INT, CONSTRAINT u_a_key UNIQUE (id))", "42P07");
    sqlv_session_close(s);
    close_all(&f);
}

/* ---- maintenance ----------------------------------------------------------------------- */

static void test_maintenance(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE t (id INT PRIMARY KEY, b INT, c TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "CREATE INDEX t_b ON t (b)", "C CREATE INDEX\n");
    EXPECT(s, "CREATE INDEX t_cb ON t (c, b)", "C CREATE INDEX\n");
    for (int i = 1; i <= 60; i++)
        execf(s, "INSERT INTO t VALUES (%d, %d, '%c')", i, i % 7, 'a' + i % 3);
    check_consistent(s, "t", "b", 8);
    EXPECT_ROWS(s, "SELECT count(*) FROM t WHERE b = 3", "R 9\n");
    EXPECT_SAME(s, "SELECT id FROM t WHERE c = 'b' AND b = 3 ORDER BY id",
                "SELECT id FROM t WHERE c || '' = 'b' AND b + 0 = 3 ORDER BY id");
    EXPECT_SAME(s, "SELECT id FROM t WHERE c = 'b' AND b > 3 ORDER BY id",
                "SELECT id FROM t WHERE c || '' = 'b' AND b + 0 > 3 ORDER BY id");
    EXPECT_SAME(s, "SELECT id FROM t WHERE c = 'b' AND b >= 3 AND b < 5 ORDER BY id",
                "SELECT id FROM t WHERE c || '' = 'b' AND b + 0 >= 3 AND b + 0 < 5 ORDER BY id");
    EXPECT_SAME(s, "SELECT id FROM t WHERE b > 2 AND b <= 4 ORDER BY id",
                "SELECT id FROM t WHERE b + 0 > 2 AND b + 0 <= 4 ORDER BY id");
    EXPECT_SAME(s, "SELECT id FROM t WHERE b IN (1, 2) ORDER BY id",
                "SELECT id FROM t WHERE b + 0 IN (1, 2) ORDER BY id");
    EXPECT_ROWS(s, "SELECT count(*) FROM t WHERE b = '3'", "R 9\n"); /* affinity */
    EXPECT_ROWS(s, "SELECT count(*) FROM t WHERE b = 3.0", "R 9\n");
    EXPECT_ROWS(s, "SELECT count(*) FROM t WHERE b = NULL", "R 0\n");
    /* updates of the indexed column, of another, of the key; deletes */
    EXPECT(s, "UPDATE t SET b = b + 100 WHERE b = 3", "C UPDATE 9\n");
    EXPECT(s, "UPDATE t SET c = 'z' WHERE id % 5 = 0", "C UPDATE 12\n");
    EXPECT(s, "UPDATE t SET id = id + 1000 WHERE id % 4 = 0", "C UPDATE 15\n");
    EXPECT(s, "DELETE FROM t WHERE b = 5", "C DELETE 8\n");
    exec_ok(s, "DELETE FROM t WHERE id % 6 = 1");
    exec_ok(s, "UPDATE t SET b = NULL WHERE id % 9 = 0");
    check_consistent(s, "t", "b", 110);
    EXPECT_SAME(s, "SELECT id FROM t WHERE b IS NULL ORDER BY id",
                "SELECT id FROM t WHERE b + 0 IS NULL ORDER BY id");
    for (char c = 'a'; c <= 'z'; c++) {
        char q1[128], q2[128];
        snprintf(q1, sizeof(q1), "SELECT id, b FROM t WHERE c = '%c' ORDER BY id", c);
        snprintf(q2, sizeof(q2), "SELECT id, b FROM t WHERE c || '' = '%c' ORDER BY id", c);
        char *a = rows_of(s, q1), *b = rows_of(s, q2);
        assert_string_equal(a, b);
        free(a);
        free(b);
    }
    /* OR REPLACE on the key replaces the row's entries too */
    EXPECT(s, "INSERT OR REPLACE INTO t VALUES (2, 555, 'q')", "C INSERT 0 1\n");
    check_consistent(s, "t", "b", 110);
    EXPECT_ROWS(s, "SELECT id FROM t WHERE b = 555", "R 2\n");
    /* an UPDATE through an index range that moves rows forward in it
    ** visits each row once (SQLite collects the rows first) */
    EXPECT(s, "CREATE TABLE r (id INT PRIMARY KEY, b INT)", "C CREATE TABLE\n");
    EXPECT(s, "CREATE INDEX r_b ON r (b)", "C CREATE INDEX\n");
    EXPECT(s, "INSERT INTO r VALUES (1, 6), (2, 7), (3, 8), (4, 9), (5, 1)", "C INSERT 0 5\n");
    EXPECT(s, "UPDATE r SET b = b + 1 WHERE b > 5", "C UPDATE 4\n");
    EXPECT_ROWS(s, "SELECT id, b FROM r WHERE b >= 0 ORDER BY b",
                "R 5|1\nR 1|7\nR 2|8\nR 3|9\nR 4|10\n");
    EXPECT(s, "DELETE FROM r WHERE b BETWEEN 7 AND 9", "C DELETE 3\n");
    check_consistent(s, "r", "b", 11);
    /* a table without a primary key (hidden row ids) */
    EXPECT(s, "CREATE TABLE h (b INT, c TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "CREATE INDEX h_b ON h (b)", "C CREATE INDEX\n");
    EXPECT(s, "INSERT INTO h VALUES (1, 'a'), (1, 'b'), (2, 'c'), (NULL, 'd')", "C INSERT 0 4\n");
    EXPECT(s, "UPDATE h SET b = 2 WHERE c = 'a'", "C UPDATE 1\n");
    EXPECT(s, "DELETE FROM h WHERE c = 'c'", "C DELETE 1\n");
    EXPECT_ROWS(s, "SELECT c FROM h WHERE b = 2", "R a\n");
    EXPECT_ROWS(s, "SELECT c FROM h WHERE b = 1", "R b\n");
    check_consistent(s, "h", "b", 3);
    /* TRUNCATE empties the indexes too */
    EXPECT(s, "TRUNCATE h", "C TRUNCATE TABLE\n");
    EXPECT_ROWS(s, "SELECT count(*) FROM h WHERE b = 1", "R 0\n");
    /* ALTER TABLE keeps the indexes (ADD COLUMN: same rows; ADD PRIMARY
    ** KEY: the rows and their entries copied under the new key) */
    EXPECT(s, "INSERT INTO h VALUES (1, 'a'), (2, 'b'), (3, 'c')", "C INSERT 0 3\n");
    EXPECT(s, "ALTER TABLE h ADD COLUMN d INT", "C ALTER TABLE\n");
    EXPECT_ROWS(s, "SELECT c FROM h WHERE b = 2", "R b\n");
    EXPECT(s, "ALTER TABLE h ADD PRIMARY KEY (c)", "C ALTER TABLE\n");
    EXPECT_ROWS(s, "SELECT c FROM h WHERE b = 3", "R c\n");
    EXPECT(s, "UPDATE h SET b = 30 WHERE c = 'c'", "C UPDATE 1\n");
    check_consistent(s, "h", "b", 31);
    EXPECT_ROWS(s, "SELECT indexname FROM pg_indexes WHERE tablename = 'h' ORDER BY 1",
                "R h_b\nR h_pkey\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_unique(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE t (id INT PRIMARY KEY, email TEXT, n INT)", "C CREATE TABLE\n");
    EXPECT(s, "CREATE UNIQUE INDEX t_email ON t (email)", "C CREATE INDEX\n");
    EXPECT(s, "INSERT INTO t VALUES (1, 'a@x', 1), (2, 'b@x', 2)", "C INSERT 0 2\n");
    const char *dup = "E 23505 duplicate key value violates unique constraint \"t_email\"\n"
                      "DETAIL:  Key (email)=(a@x) already exists.\n";
    EXPECT(s, "INSERT INTO t VALUES (3, 'a@x', 3)", dup);
    /* within one multi-row INSERT: nothing of it stays */
    EXPECT(s, "INSERT INTO t VALUES (3, 'c@x', 3), (4, 'd@x', 4), (5, 'c@x', 5)",
           "E 23505 duplicate key value violates unique constraint \"t_email\"\n"
           "DETAIL:  Key (email)=(c@x) already exists.\n");
    EXPECT_ROWS(s, "SELECT count(*) FROM t", "R 2\n");
    /* NULLs never conflict */
    EXPECT(s, "INSERT INTO t VALUES (3, NULL, 3), (4, NULL, 4)", "C INSERT 0 2\n");
    EXPECT(s, "UPDATE t SET email = NULL WHERE id = 1", "C UPDATE 1\n");
    EXPECT(s, "INSERT INTO t VALUES (5, 'a@x', 5)", "C INSERT 0 1\n");
    /* updates: into a taken value fails, to the same value is fine */
    EXPECT(s, "UPDATE t SET email = 'a@x' WHERE id = 2",
           "E 23505 duplicate key value violates unique constraint \"t_email\"\n"
           "DETAIL:  Key (email)=(a@x) already exists.\n");
    EXPECT(s, "UPDATE t SET email = email, n = n + 1", "C UPDATE 5\n");
    EXPECT(s, "UPDATE t SET id = id + 10 WHERE email = 'b@x'", "C UPDATE 1\n");
    EXPECT_ROWS(s, "SELECT id, n FROM t WHERE email = 'b@x'", "R 12|3\n");
    /* swap through a free value */
    EXPECT(s, "UPDATE t SET email = 'tmp' WHERE id = 5", "C UPDATE 1\n");
    EXPECT(s, "UPDATE t SET email = 'a@x' WHERE id = 12", "C UPDATE 1\n");
    EXPECT(s, "UPDATE t SET email = 'b@x' WHERE id = 5", "C UPDATE 1\n");
    EXPECT_ROWS(s, "SELECT id FROM t WHERE email IN ('a@x', 'b@x') ORDER BY id", "R 5\nR 12\n");
    /* OR IGNORE skips the row, OR REPLACE removes the row in the way */
    EXPECT(s, "INSERT OR IGNORE INTO t VALUES (20, 'a@x', 20), (21, 'new', 21)",
           "C INSERT 0 1\n");
    EXPECT(s, "INSERT OR REPLACE INTO t VALUES (22, 'a@x', 22)", "C INSERT 0 1\n");
    EXPECT_ROWS(s, "SELECT id FROM t WHERE email = 'a@x'", "R 22\n");
    EXPECT_ROWS(s, "SELECT count(*) FROM t WHERE id = 12", "R 0\n");
    /* inside a block: the statement fails, the block with it */
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT(s, "INSERT INTO t VALUES (30, 'z@x', 30)", "C INSERT 0 1\n");
    EXPECT(s, "INSERT INTO t VALUES (31, 'z@x', 31)",
           "E 23505 duplicate key value violates unique constraint \"t_email\"\n"
           "DETAIL:  Key (email)=(z@x) already exists.\n");
    assert_int_equal(sqlv_session_status(s), 'E');
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    /* two sessions inserting one value: one commit fails (the exact key is
    ** in both read sets) */
    sqlv_session *o = session(&f);
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT(o, "BEGIN", "C BEGIN\n");
    EXPECT(s, "INSERT INTO t VALUES (40, 'race', 40)", "C INSERT 0 1\n");
    EXPECT(o, "INSERT INTO t VALUES (41, 'race', 41)", "C INSERT 0 1\n");
    EXPECT(s, "COMMIT", "C COMMIT\n");
    expect_error(o, "COMMIT", "40001");
    EXPECT_ROWS(s, "SELECT id FROM t WHERE email = 'race'", "R 40\n");
    /* composite unique with booleans and reals in the DETAIL */
    EXPECT(s, "CREATE TABLE w (id INT PRIMARY KEY, f BOOLEAN, r DOUBLE PRECISION, UNIQUE (f, r))",
           "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO w VALUES (1, true, 1.5)", "C INSERT 0 1\n");
    EXPECT(s, "INSERT INTO w VALUES (2, true, 1.5)",
           "E 23505 duplicate key value violates unique constraint \"w_f_r_key\"\n"
           "DETAIL:  Key (f, r)=(t, 1.5) already exists.\n");
    EXPECT(s, "INSERT INTO w VALUES (2, true, NULL), (3, true, NULL)", "C INSERT 0 2\n");
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

/* ---- the online backfill --------------------------------------------------------------- */

typedef struct hook_state {
    sqlv_session *writer;
    int batches;
    const char *const *statements; /* run one per batch (NULL-terminated) */
    int next;
} hook_state;

static void hook(void *arg, uint32_t table_id, uint32_t index_id, int batch) {
    hook_state *h = arg;
    (void)table_id;
    (void)index_id;
    h->batches = batch + 1;
    if (h->statements == NULL || h->statements[h->next] == NULL) return;
    char *got = run(h->writer, h->statements[h->next++]);
    printf("between batches %d: %s-> %s", batch, h->statements[h->next - 1], got);
    free(got);
}

static void fill(sqlv_session *s, const char *table, int from, int to, int mod) {
    base_buf q = {0};
    for (int i = from; i <= to; i++) {
        if (q.len == 0) base_buf_printf(&q, "INSERT INTO %s VALUES ", table);
        base_buf_printf(&q, "%s(%d, %d)", (i - from) % 500 ? ", " : "", i, i % mod);
        if ((i - from) % 500 == 499 || i == to) {
            base_buf_append_byte(&q, 0);
            exec_ok(s, (const char *)q.data);
            base_buf_reset(&q);
        }
    }
    base_buf_free(&q);
}

static void test_backfill(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    hook_state h = {session(&f), 0, NULL, 0};
    sqlv__backfill_hook = hook;
    sqlv__backfill_hook_arg = &h;
    sqlv__backfill_rows = 300;
    EXPECT(s, "CREATE TABLE t (id INT PRIMARY KEY, b INT)", "C CREATE TABLE\n");
    fill(s, "t", 1, 2500, 50);
    /* writers between batches: behind the cursor, ahead of it, moving rows
    ** across it, deleting; all of them maintain the write-only index */
    static const char *const writes[] = {
        "INSERT INTO t VALUES (5000, 7), (5001, 7)",
        "UPDATE t SET b = 49 WHERE id = 10",
        "UPDATE t SET b = 48 WHERE id = 2400",
        "DELETE FROM t WHERE id IN (20, 2450)",
        "UPDATE t SET id = 6000 WHERE id = 30",
        "UPDATE t SET id = 7000 WHERE id = 2490",
        "INSERT INTO t VALUES (2, 0)", /* a key conflict: fails, changes nothing */
        NULL,
    };
    h.statements = writes;
    EXPECT(s, "CREATE INDEX t_b ON t (b)", "C CREATE INDEX\n");
    assert_int_equal(h.batches, 9); /* 2500 rows (about), 300 per batch */
    assert_int_equal(h.next, 7);
    check_consistent(s, "t", "b", 50);
    EXPECT_ROWS(s, "SELECT count(*) FROM t WHERE b = 7", "R 52\n");
    EXPECT_ROWS(s, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_b'::regclass", "R t\n");

    /* a unique index over duplicates fails, and is gone */
    h.statements = NULL;
    EXPECT(s, "CREATE UNIQUE INDEX t_b_u ON t (b)",
           "E 23505 could not create unique index \"t_b_u\"\n"
           "DETAIL:  Key (b)=(49) is duplicated.\n"); /* ids 10 (updated above) and 49 */
    EXPECT_ROWS(s, "SELECT count(*) FROM pg_class WHERE relname = 't_b_u'", "R 0\n");
    expect_error(s, "DROP INDEX t_b_u", "42704");
    /* a unique index over distinct values; a writer's duplicate while it is
    ** write-only is refused, another writer's duplicate of a row the
    ** backfill has not reached yet fails the build */
    EXPECT(s, "CREATE TABLE u (id INT PRIMARY KEY, b INT)", "C CREATE TABLE\n");
    fill(s, "u", 1, 1000, 1000000);
    static const char *const dup_behind[] = {"INSERT INTO u VALUES (9000, 5)", NULL};
    h.statements = dup_behind;
    h.next = 0;
    EXPECT(s, "CREATE UNIQUE INDEX u_b ON u (b)", "C CREATE INDEX\n");
    EXPECT_ROWS(s, "SELECT count(*) FROM u WHERE id = 9000", "R 0\n");
    static const char *const dup_ahead[] = {"INSERT INTO u VALUES (9001, 900)", NULL};
    h.statements = dup_ahead;
    h.next = 0;
    EXPECT(s, "DROP INDEX u_b", "C DROP INDEX\n");
    EXPECT(s, "CREATE UNIQUE INDEX u_b ON u (b)",
           "E 23505 could not create unique index \"u_b\"\n"
           "DETAIL:  Key (b)=(900) is duplicated.\n");
    EXPECT_ROWS(s, "SELECT count(*) FROM pg_indexes WHERE tablename = 'u'", "R 1\n"); /* pkey */
    /* its entries went with it: a new index of that name starts empty */
    EXPECT(s, "DELETE FROM u WHERE id = 9001", "C DELETE 1\n");
    EXPECT(s, "CREATE UNIQUE INDEX u_b ON u (b)", "C CREATE INDEX\n");
    check_consistent(s, "u", "b", 1000);
    /* an empty table: one batch */
    h.statements = NULL;
    h.batches = 0;
    EXPECT(s, "CREATE TABLE e (id INT PRIMARY KEY, b INT)", "C CREATE TABLE\n");
    EXPECT(s, "CREATE INDEX e_b ON e (b)", "C CREATE INDEX\n");
    assert_int_equal(h.batches, 1);
    sqlv__backfill_hook = NULL; /* also in hooks_off, when an assertion failed */
    sqlv_session_close(h.writer);
    sqlv_session_close(s);
    close_all(&f);
}

static int hooks_off(void **state) {
    (void)state;
    sqlv__backfill_hook = NULL;
    sqlv__backfill_hook_arg = NULL;
    sqlv__backfill_rows = 0;
    return 0;
}

/* ---- transaction blocks, other nodes, restarts ------------------------------------------ */

static void test_blocks(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f), *o = session(&f);
    EXPECT(s, "CREATE TABLE t (id INT PRIMARY KEY, b INT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO t VALUES (1, 1), (2, 2), (3, 2)", "C INSERT 0 3\n");
    /* built in the block's transaction, seen by others after COMMIT */
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT(s, "CREATE INDEX t_b ON t (b)", "C CREATE INDEX\n");
    EXPECT(s, "INSERT INTO t VALUES (4, 2)", "C INSERT 0 1\n");
    EXPECT_ROWS(s, "SELECT count(*) FROM t WHERE b = 2", "R 3\n");
    EXPECT_ROWS(o, "SELECT count(*) FROM pg_indexes WHERE indexname = 't_b'", "R 0\n");
    EXPECT(s, "COMMIT", "C COMMIT\n");
    EXPECT_ROWS(o, "SELECT count(*) FROM pg_indexes WHERE indexname = 't_b'", "R 1\n");
    check_consistent(o, "t", "b", 3);
    /* ROLLBACK forgets CREATE and DROP */
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT(s, "CREATE INDEX t_b2 ON t (b)", "C CREATE INDEX\n");
    EXPECT(s, "DROP INDEX t_b", "C DROP INDEX\n");
    EXPECT_ROWS(s, "SELECT indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1",
                "R t_b2\nR t_pkey\n");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    EXPECT_ROWS(s, "SELECT indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1",
                "R t_b\nR t_pkey\n");
    /* a unique index over duplicates fails the block */
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT(s, "CREATE UNIQUE INDEX t_bu ON t (b)",
           "E 23505 could not create unique index \"t_bu\"\n"
           "DETAIL:  Key (b)=(2) is duplicated.\n");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    expect_error(s, "BEGIN; CREATE INDEX CONCURRENTLY c ON t (b)", "25001");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    /* a table created in the block, indexed and filled in it; savepoints */
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT(s, "CREATE TABLE n (id INT PRIMARY KEY, v TEXT UNIQUE)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO n VALUES (1, 'a'), (2, 'b')", "C INSERT 0 2\n");
    EXPECT(s, "SAVEPOINT sp", "C SAVEPOINT\n");
    EXPECT(s, "CREATE INDEX n_id_v ON n (id, v)", "C CREATE INDEX\n");
    EXPECT(s, "ROLLBACK TO sp", "C ROLLBACK\n");
    EXPECT(s, "CREATE INDEX n_v2 ON n (v)", "C CREATE INDEX\n");
    expect_error(s, "INSERT INTO n VALUES (3, 'a')", "23505");
    EXPECT(s, "ROLLBACK TO sp", "C ROLLBACK\n");
    EXPECT(s, "INSERT INTO n VALUES (3, 'c')", "C INSERT 0 1\n");
    EXPECT(s, "COMMIT", "C COMMIT\n");
    EXPECT_ROWS(o, "SELECT indexname FROM pg_indexes WHERE tablename = 'n' ORDER BY 1",
                "R n_pkey\nR n_v_key\n");
    EXPECT_ROWS(o, "SELECT id FROM n WHERE v = 'c'", "R 3\n");
    /* the implicit block of a multi-statement string builds in it too */
    EXPECT(s, "CREATE INDEX n_v3 ON n (v); INSERT INTO n VALUES (4, 'd')",
           "C CREATE INDEX\nC INSERT 0 1\n");
    EXPECT_ROWS(o, "SELECT id FROM n WHERE v = 'd'", "R 4\n");
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

static void test_other_node_and_restart(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_engine *e2 = NULL;
    assert_int_equal(sqlv_engine_open(f.db, &e2), SQLV_OK);
    sqlv_session *s = session(&f), *o = NULL;
    assert_int_equal(sqlv_session_open(e2, "root", "defaultdb", &o), SQLV_OK);
    EXPECT(s, "CREATE TABLE t (id INT PRIMARY KEY, b INT, c TEXT UNIQUE)", "C CREATE TABLE\n");
    EXPECT(o, "INSERT INTO t VALUES (1, 1, 'a')", "C INSERT 0 1\n");
    EXPECT(s, "CREATE INDEX t_b ON t (b)", "C CREATE INDEX\n");
    /* the other node maintains it from its next transaction, and uses it */
    EXPECT(o, "INSERT INTO t VALUES (2, 1, 'b'), (3, 2, 'c')", "C INSERT 0 2\n");
    expect_error(o, "INSERT INTO t VALUES (4, 3, 'a')", "23505");
    EXPECT_ROWS(s, "SELECT id FROM t WHERE b = 1 ORDER BY id", "R 1\nR 2\n");
    EXPECT(o, "UPDATE t SET b = 5 WHERE id = 1", "C UPDATE 1\n");
    check_consistent(s, "t", "b", 6);
    check_consistent(o, "t", "b", 6);
    /* a transaction begun before the index exists fails to commit a write */
    EXPECT(o, "BEGIN", "C BEGIN\n");
    EXPECT(o, "INSERT INTO t VALUES (10, 10, 'j')", "C INSERT 0 1\n");
    EXPECT(s, "CREATE INDEX t_c ON t (c, b)", "C CREATE INDEX\n");
    expect_error(o, "COMMIT", "40001");
    /* the catalog rows (version 2) reload after a restart of both engines */
    sqlv_session_close(o);
    sqlv_session_close(s);
    sqlv_engine_close(e2);
    sqlv_engine_close(f.sql);
    assert_int_equal(sqlv_engine_open(f.db, &f.sql), SQLV_OK);
    s = session(&f);
    EXPECT_ROWS(s, "SELECT indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1",
                "R t_b\nR t_c\nR t_c_key\nR t_pkey\n");
    EXPECT_ROWS(s, "SELECT id FROM t WHERE b = 5", "R 1\n");
    expect_error(s, "INSERT INTO t VALUES (4, 3, 'a')", "23505");
    EXPECT(s, "INSERT INTO t VALUES (4, 3, 'd')", "C INSERT 0 1\n");
    check_consistent(s, "t", "b", 6);
    sqlv_session_close(s);
    close_all(&f);
}

/* ---- lookups read few keys --------------------------------------------------------------
** A key space that delegates to a local store and counts point reads and
** scanned keys. */

static _Atomic uint64_t kv_gets, kv_scanned;

static int ck_get(range_kv *kv, const uint8_t *k, size_t kl, hlc_timestamp ts, base_buf *out) {
    wrapped_kv *c = (wrapped_kv *)kv;
    kv_gets++;
    return c->inner->ops->get(c->inner, k, kl, ts, out);
}
static const range_kv_ops *inner_ops;
static int ck_iter_next(range_kv_iter *it, const uint8_t **k, size_t *kl, const uint8_t **v,
                        size_t *vl) {
    int n = inner_ops->iter_next(it, k, kl, v, vl);
    if (n > 0) kv_scanned++;
    return n;
}
static void counting_wrap(wrapped_kv *w) {
    inner_ops = w->inner->ops;
    w->ops.get = ck_get;
    w->ops.iter_next = ck_iter_next;
}

/* Reads (point reads + scanned keys) of one statement. */
static uint64_t reads_of(sqlv_session *s, const char *q, const char *want) {
    uint64_t g0 = kv_gets, s0 = kv_scanned;
    EXPECT_ROWS(s, q, want);
    uint64_t n = (kv_gets - g0) + (kv_scanned - s0);
    printf("%-60s %llu reads\n", q, (unsigned long long)n);
    return n;
}

static void test_lookups_read_few_keys(void **state) {
    kv_fixture f;
    wrapped_kv ck; /* a key space that counts point reads and scanned keys */
    (void)state;
    memset(&ck, 0, sizeof(ck));
    kv_fixture_open(&f, &ck, counting_wrap);
    sqlv_session *s = session(&f.base);

    EXPECT(s, "CREATE TABLE big (id INT PRIMARY KEY, b INT, u TEXT)", "C CREATE TABLE\n");
    base_buf q = {0};
    for (int i = 1; i <= 10000; i++) {
        if (q.len == 0) base_buf_printf(&q, "INSERT INTO big VALUES ");
        base_buf_printf(&q, "%s(%d, %d, 'u%d')", i % 1000 == 1 ? "" : ", ", i, i / 2, i);
        if (i % 1000 == 0) {
            base_buf_append_byte(&q, 0);
            exec_ok(s, (const char *)q.data);
            base_buf_reset(&q);
        }
    }
    base_buf_free(&q);
    uint64_t scan = reads_of(s, "SELECT id FROM big WHERE b = 2500 ORDER BY id",
                             "R 5000\nR 5001\n");
    assert_true(scan >= 10000);
    EXPECT(s, "CREATE INDEX big_b ON big (b)", "C CREATE INDEX\n");
    EXPECT(s, "CREATE UNIQUE INDEX big_u ON big (u)", "C CREATE INDEX\n");
    uint64_t idx = reads_of(s, "SELECT id FROM big WHERE b = 2500 ORDER BY id",
                            "R 5000\nR 5001\n");
    assert_true(idx <= 10); /* version key, 2 entries, 2 rows */
    idx = reads_of(s, "SELECT id, b FROM big WHERE u = 'u777'", "R 777|388\n");
    assert_true(idx <= 5); /* version key, 1 entry, 1 row */
    idx = reads_of(s, "SELECT count(*) FROM big WHERE b BETWEEN 100 AND 104", "R 10\n");
    assert_true(idx <= 30);
    /* an equality on the index beats a one-sided range of the key */
    idx = reads_of(s, "SELECT id FROM big WHERE b = 2500 AND id > 0 ORDER BY id",
                   "R 5000\nR 5001\n");
    assert_true(idx <= 10);
    /* writes through the index too */
    uint64_t g0 = kv_gets, s0 = kv_scanned;
    EXPECT(s, "UPDATE big SET b = -1 WHERE u = 'u9999'", "C UPDATE 1\n");
    assert_true((kv_gets - g0) + (kv_scanned - s0) <= 10);
    EXPECT_ROWS(s, "SELECT id FROM big WHERE b = -1", "R 9999\n");
    /* the key still wins for key lookups */
    idx = reads_of(s, "SELECT b FROM big WHERE id = 42 AND b = 21", "R 21\n");
    assert_true(idx <= 3);
    sqlv_session_close(s);
    kv_fixture_close(&f);
}

/* ---- the catalogs psql reads ------------------------------------------------------------ */

static const char *const psql_di =
    "SELECT n.nspname as \"Schema\",\n"
    "  c.relname as \"Name\",\n"
    "  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized "
    "view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' "
    "THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' "
    "END as \"Type\",\n"
    "  pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\",\n"
    " c2.relname as \"Table\"\n"
    "FROM pg_catalog.pg_class c\n"
    "     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
    "     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam\n"
    "     LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid\n"
    "     LEFT JOIN pg_catalog.pg_class c2 ON i.indrelid = c2.oid\n"
    "WHERE c.relkind IN ('i','I','')\n"
    "      AND n.nspname <> 'pg_catalog'\n"
    "      AND n.nspname !~ '^pg_toast'\n"
    "      AND n.nspname <> 'information_schema'\n"
    "  AND pg_catalog.pg_table_is_visible(c.oid)\n"
    "ORDER BY 1,2;";

/* psql 15's "Indexes:" query of \d t (describe.c), for table OID 16384 */
static const char *const psql_d_indexes =
    "SELECT c2.relname, i.indisprimary, i.indisunique, i.indisclustered, i.indisvalid, "
    "pg_catalog.pg_get_indexdef(i.indexrelid, 0, true),\n"
    "  pg_catalog.pg_get_constraintdef(con.oid, true), contype, condeferrable, condeferred, "
    "i.indisreplident, c2.reltablespace\n"
    "FROM pg_catalog.pg_class c, pg_catalog.pg_class c2, pg_catalog.pg_index i\n"
    "  LEFT JOIN pg_catalog.pg_constraint con ON (conrelid = i.indrelid AND conindid = "
    "i.indexrelid AND contype IN ('p','u','x'))\n"
    "WHERE c.oid = '16384' AND c.oid = i.indrelid AND i.indexrelid = c2.oid\n"
    "ORDER BY i.indisprimary DESC, c2.relname;";

static void test_catalogs(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE t (id INT PRIMARY KEY, a INT UNIQUE, b TEXT, c INT)",
           "C CREATE TABLE\n");
    EXPECT(s, "CREATE INDEX t_b_c ON t (b, c DESC)", "C CREATE INDEX\n");
    EXPECT(s, "CREATE UNIQUE INDEX t_c ON t (c)", "C CREATE INDEX\n");
    EXPECT_ROWS(s, psql_di,
                "R public|t_a_key|index|root|t\nR public|t_b_c|index|root|t\n"
                "R public|t_c|index|root|t\nR public|t_pkey|index|root|t\n");
    EXPECT_ROWS(s, psql_d_indexes,
                "R t_pkey|t|t|f|t|CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)|"
                "PRIMARY KEY (id)|p|f|f|f|0\n"
                "R t_a_key|f|t|f|t|CREATE UNIQUE INDEX t_a_key ON public.t USING btree (a)|"
                "UNIQUE (a)|u|f|f|f|0\n"
                "R t_b_c|f|f|f|t|CREATE INDEX t_b_c ON public.t USING btree (b, c DESC)|"
                "NULL|NULL|NULL|NULL|f|0\n"
                "R t_c|f|t|f|t|CREATE UNIQUE INDEX t_c ON public.t USING btree (c)|"
                "NULL|NULL|NULL|NULL|f|0\n");
    EXPECT_ROWS(s, "SELECT relhasindex FROM pg_class WHERE oid = 16384", "R t\n");
    EXPECT_ROWS(s,
                "SELECT i.indkey, i.indoption, i.indnatts, c.relnatts, c.relam FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 't_b_c'",
                "R 3 4|0 3|2|2|403\n");
    EXPECT_ROWS(s,
                "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = 't_b_c'::regclass "
                "ORDER BY a.attnum",
                "R b\nR c\n");
    EXPECT_ROWS(s, "SELECT 't_c'::regclass::oid = oid, oid::regclass FROM pg_class WHERE "
                   "relname = 't_c'",
                "R t|t_c\n");
    EXPECT_ROWS(s, "SELECT pg_get_indexdef('t_b_c'::regclass, 2, true)", "R c\n");
    EXPECT(s, "SHOW COLUMNS FROM t",
           "D column_name:25,data_type:25,is_nullable:16,column_default:25,indices:25\n"
           "R id|integer|f|NULL|{t_pkey}\nR a|integer|t|NULL|{t_a_key}\nR b|text|t|NULL|{t_b_c}\n"
           "R c|integer|t|NULL|{t_b_c,t_c}\nC SELECT 4\n");
    /* a table without a key but with an index has indexes */
    EXPECT(s, "CREATE TABLE h (x INT)", "C CREATE TABLE\n");
    EXPECT(s, "CREATE INDEX h_x ON h (x)", "C CREATE INDEX\n");
    EXPECT_ROWS(s, "SELECT hasindexes FROM pg_tables WHERE tablename = 'h'", "R t\n");
    sqlv_session_close(s);
    close_all(&f);
}

/* ---- out of memory ---------------------------------------------------------------------
** At every allocation of an online CREATE INDEX, of writes maintaining
** indexes, and of a block's CREATE/DROP INDEX: the statement fails cleanly
** (or an online build leaves a WRITE_ONLY index, which writers keep
** maintaining), and the index stays consistent with the rows. */

static void test_alloc_failures(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE af (id INT PRIMARY KEY, v INT, w TEXT UNIQUE)", "C CREATE TABLE\n");
    fill(s, "af (id, v)", 1, 40, 7);
    bool done = false;
    for (long n = 0; n < 5000 && !done; n++) {
        done = run_failing(s, "CREATE INDEX ai ON af (v)", "C CREATE INDEX\n", n);
        check_consistent(s, "af", "v", 7); /* whether or not ai exists */
        if (!done) free(run(s, "DROP INDEX IF EXISTS ai"));
    }
    assert_true(done);
    done = false;
    for (long n = 0; n < 5000 && !done; n++) {
        char q[256];
        snprintf(q, sizeof(q),
                 "INSERT INTO af VALUES (%ld, %ld, 'w%ld'); UPDATE af SET v = v + 1, w = 'x' || w "
                 "WHERE id = %ld; DELETE FROM af WHERE id = %ld",
                 100 + n, n % 7, n, 1 + n % 40, 2 + n % 40);
        done = run_failing(s, q, "C DELETE 1\n", n);
        check_consistent(s, "af", "v", 9);
    }
    assert_true(done);
    done = false;
    for (long n = 0; n < 5000 && !done; n++) {
        done = run_failing(s, "BEGIN; CREATE UNIQUE INDEX bi ON af (id, v); INSERT INTO af "
                              "VALUES (99999, 1, NULL); DROP INDEX ai; COMMIT",
                           "C COMMIT\n", n);
        check_consistent(s, "af", "v", 9);
        if (!done) free(run(s, "DELETE FROM af WHERE id = 99999"));
    }
    assert_true(done);
    EXPECT_ROWS(s, "SELECT indexname FROM pg_indexes WHERE tablename = 'af' ORDER BY 1",
                "R af_pkey\nR af_w_key\nR bi\n");
    sqlv_session_close(s);
    close_all(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_drop),
        cmocka_unit_test(test_unique_constraints),
        cmocka_unit_test(test_maintenance),
        cmocka_unit_test(test_unique),
        cmocka_unit_test_teardown(test_backfill, hooks_off),
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_other_node_and_restart),
        cmocka_unit_test(test_lookups_read_few_keys),
        cmocka_unit_test(test_catalogs),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
