/*
** tests/sql/test_sequence.c: sequences (sql/sequence.c; docs/sql.md
** "Sequences"): CREATE/ALTER/DROP SEQUENCE and their options, nextval /
** currval / lastval / setval and their errors, nextval outside the user's
** transaction (a rollback keeps the values consumed), the node cache shared
** by sessions, SERIAL / BIGSERIAL / IDENTITY columns and the sequences they
** own, 428C9 for GENERATED ALWAYS, the catalogs (pg_class 'S', \d's default,
** pg_get_serial_sequence, pg_sequences, information_schema.sequences), and
** threads calling nextval at once getting distinct values.
** Transcript format: tests/sql/sql_harness.h.
*/
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sql.h"
#include "tests/sql/sql_harness.h"

static void test_basic_functions(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE SEQUENCE s", "C CREATE SEQUENCE\n");
    expect_error(s, "SELECT currval('s')", "55000");
    expect_error(s, "SELECT lastval()", "55000");
    EXPECT(s, "SELECT nextval('s'), nextval('s')", "D nextval:20,nextval:20\nR 1|2\nC SELECT 1\n");
    EXPECT(s, "SELECT currval('s'), lastval()", "D currval:20,lastval:20\nR 2|2\nC SELECT 1\n");
    EXPECT(s, "SELECT setval('s', 10)", "D setval:20\nR 10\nC SELECT 1\n");
    EXPECT_ROWS(s, "SELECT nextval('s')", "R 11\n");
    EXPECT(s, "SELECT setval('s', 20, false)", "D setval:20\nR 20\nC SELECT 1\n");
    EXPECT_ROWS(s, "SELECT nextval('s')", "R 20\n");
    /* the regclass form and case folding */
    EXPECT_ROWS(s, "SELECT nextval('S'::regclass), nextval('public.s')", "R 21|22\n");
    expect_error(s, "SELECT nextval('nope')", "42P01");
    expect_error(s, "SELECT currval('nope')", "42P01");
    expect_error(s, "SELECT setval('s', 0)", "22003");
    expect_error(s, "CREATE SEQUENCE s", "42P07");
    EXPECT(s, "CREATE SEQUENCE IF NOT EXISTS s",
           "N relation \"s\" already exists, skipping\nC CREATE SEQUENCE\n");
    /* options */
    EXPECT(s, "CREATE SEQUENCE t INCREMENT BY 5 MINVALUE 10 MAXVALUE 21 START WITH 11",
           "C CREATE SEQUENCE\n");
    EXPECT_ROWS(s, "SELECT nextval('t'), nextval('t'), nextval('t')", "R 11|16|21\n");
    expect_error(s, "SELECT nextval('t')", "2200H");
    EXPECT(s, "ALTER SEQUENCE t RESTART", "C ALTER SEQUENCE\n");
    EXPECT_ROWS(s, "SELECT nextval('t')", "R 11\n");
    EXPECT(s, "ALTER SEQUENCE t RESTART WITH 12 CYCLE", "C ALTER SEQUENCE\n");
    EXPECT_ROWS(s, "SELECT nextval('t'), nextval('t'), nextval('t')", "R 12|17|10\n");
    EXPECT(s, "CREATE SEQUENCE d INCREMENT -1", "C CREATE SEQUENCE\n");
    EXPECT_ROWS(s, "SELECT nextval('d'), nextval('d')", "R -1|-2\n");
    EXPECT(s, "CREATE SEQUENCE small AS smallint START 32766", "C CREATE SEQUENCE\n");
    EXPECT_ROWS(s, "SELECT nextval('small'), nextval('small')", "R 32766|32767\n");
    expect_error(s, "SELECT nextval('small')", "2200H");
    expect_error(s, "CREATE SEQUENCE bad INCREMENT 0", "22023");
    expect_error(s, "CREATE SEQUENCE bad MINVALUE 5 MAXVALUE 5", "22023");
    expect_error(s, "CREATE SEQUENCE bad START 0", "22023");
    expect_error(s, "CREATE SEQUENCE bad AS text", "22023");
    expect_error(s, "CREATE SEQUENCE bad CACHE 0", "22023");
    expect_error(s, "CREATE SEQUENCE bad FROB", "42601");
    /* INCREMENT after nextval: the next value follows the last one handed out */
    EXPECT(s, "CREATE SEQUENCE inc", "C CREATE SEQUENCE\n");
    EXPECT_ROWS(s, "SELECT nextval('inc'), nextval('inc')", "R 1|2\n");
    EXPECT(s, "ALTER SEQUENCE inc INCREMENT BY 10", "C ALTER SEQUENCE\n");
    EXPECT_ROWS(s, "SELECT nextval('inc')", "R 12\n");
    /* DROP */
    EXPECT(s, "DROP SEQUENCE s, t", "C DROP SEQUENCE\n");
    expect_error(s, "SELECT nextval('s')", "42P01");
    expect_error(s, "DROP SEQUENCE s", "42P01");
    EXPECT(s, "DROP SEQUENCE IF EXISTS s",
           "N sequence \"s\" does not exist, skipping\nC DROP SEQUENCE\n");
    EXPECT(s, "CREATE SEQUENCE s", "C CREATE SEQUENCE\n");
    EXPECT_ROWS(s, "SELECT nextval('s')", "R 1\n");
    /* a table's name is taken */
    EXPECT(s, "CREATE TABLE tab (a INT)", "C CREATE TABLE\n");
    expect_error(s, "CREATE SEQUENCE tab", "42P07");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_not_transactional(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *a = session(&f), *b = session(&f);
    EXPECT(a, "CREATE SEQUENCE s CACHE 1", "C CREATE SEQUENCE\n");
    EXPECT(a, "BEGIN", "C BEGIN\n");
    EXPECT_ROWS(a, "SELECT nextval('s')", "R 1\n");
    /* another session's nextval does not wait for, or conflict with, a's block */
    EXPECT_ROWS(b, "SELECT nextval('s')", "R 2\n");
    EXPECT_ROWS(a, "SELECT nextval('s')", "R 3\n");
    EXPECT(a, "ROLLBACK", "C ROLLBACK\n");
    EXPECT_ROWS(a, "SELECT nextval('s'), currval('s')", "R 4|4\n");
    /* b's currval is its own */
    EXPECT_ROWS(b, "SELECT currval('s')", "R 2\n");
    /* a block's nextval commits with no conflict while b also takes values */
    EXPECT(a, "CREATE TABLE t (k INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(a, "BEGIN", "C BEGIN\n");
    EXPECT(a, "INSERT INTO t VALUES (nextval('s'))", "C INSERT 0 1\n");
    EXPECT_ROWS(b, "SELECT nextval('s')", "R 6\n");
    EXPECT(a, "INSERT INTO t VALUES (nextval('s'))", "C INSERT 0 1\n");
    EXPECT(a, "COMMIT", "C COMMIT\n");
    EXPECT_ROWS(a, "SELECT k FROM t ORDER BY k", "R 5\nR 7\n");
    /* a sequence created in a block: used there, gone with its rollback */
    EXPECT(a, "BEGIN", "C BEGIN\n");
    EXPECT(a, "CREATE SEQUENCE inblock", "C CREATE SEQUENCE\n");
    EXPECT_ROWS(a, "SELECT nextval('inblock'), nextval('inblock')", "R 1|2\n");
    EXPECT(a, "ROLLBACK", "C ROLLBACK\n");
    expect_error(a, "SELECT nextval('inblock')", "42P01");
    sqlv_session_close(a);
    sqlv_session_close(b);
    close_all(&f);
}

static void test_node_cache(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *a = session(&f), *b = session(&f);
    /* no CACHE given: the node reserves a block, both sessions draw from it */
    EXPECT(a, "CREATE SEQUENCE s", "C CREATE SEQUENCE\n");
    EXPECT_ROWS(a, "SELECT nextval('s')", "R 1\n");
    EXPECT_ROWS(b, "SELECT nextval('s')", "R 2\n");
    EXPECT_ROWS(a, "SELECT nextval('s')", "R 3\n");
    /* the state row says the block's end; pg_sequences shows it */
    EXPECT_ROWS(a, "SELECT last_value, cache_size FROM pg_sequences WHERE sequencename = 's'",
                "R 32|1\n");
    /* setval through this node drops the block */
    EXPECT_ROWS(a, "SELECT setval('s', 100)", "R 100\n");
    EXPECT_ROWS(b, "SELECT nextval('s')", "R 101\n");
    /* CACHE 3: blocks of 3 */
    EXPECT(a, "CREATE SEQUENCE c CACHE 3", "C CREATE SEQUENCE\n");
    EXPECT_ROWS(a, "SELECT nextval('c')", "R 1\n");
    EXPECT_ROWS(a, "SELECT last_value FROM pg_sequences WHERE sequencename = 'c'", "R 3\n");
    EXPECT_ROWS(b, "SELECT nextval('c'), nextval('c'), nextval('c')", "R 2|3|4\n");
    EXPECT_ROWS(a, "SELECT last_value FROM pg_sequences WHERE sequencename = 'c'", "R 6\n");
    sqlv_session_close(a);
    sqlv_session_close(b);
    close_all(&f);
}

static void test_serial_identity(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE t (id SERIAL PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO t (v) VALUES ('a'), ('b')", "C INSERT 0 2\n");
    EXPECT(s, "INSERT INTO t VALUES (DEFAULT, 'c')", "C INSERT 0 1\n");
    EXPECT_ROWS(s, "SELECT id, v FROM t ORDER BY id", "R 1|a\nR 2|b\nR 3|c\n");
    EXPECT_ROWS(s, "SELECT currval('t_id_seq'), pg_get_serial_sequence('t', 'id')",
                "R 3|public.t_id_seq\n");
    EXPECT_ROWS(s, "SELECT pg_get_serial_sequence('t', 'v')", "R NULL\n");
    expect_error(s, "INSERT INTO t (id, v) VALUES (NULL, 'x')", "23502");
    /* \d t's default, the column types */
    EXPECT_ROWS(s,
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
                "(SELECT pg_get_expr(d.adbin, d.adrelid, true) FROM pg_attrdef d WHERE "
                "d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef), a.attidentity "
                "FROM pg_attribute a WHERE a.attrelid = 't'::regclass AND a.attnum > 0 ORDER BY "
                "a.attnum",
                "R id|integer|t|nextval('t_id_seq'::regclass)|\nR v|text|f|NULL|\n");
    /* \ds */
    EXPECT_ROWS(s,
                "SELECT c.relname, CASE c.relkind WHEN 'S' THEN 'sequence' END FROM pg_class c "
                "WHERE c.relkind IN ('S', '') ORDER BY 1",
                "R t_id_seq|sequence\n");
    EXPECT_ROWS(s,
                "SELECT sequence_name, data_type, start_value, increment FROM "
                "information_schema.sequences",
                "R t_id_seq|integer|1|1\n");
    EXPECT_ROWS(s,
                "SELECT relname, oid::regclass FROM pg_class WHERE oid = 't_id_seq'::regclass",
                "R t_id_seq|t_id_seq\n");
    /* psql's \d of the sequence: pg_sequence, and its owner through pg_depend */
    EXPECT_ROWS(s,
                "SELECT format_type(seqtypid, NULL), seqstart, seqmin, seqmax, seqincrement, "
                "seqcycle, seqcache FROM pg_sequence WHERE seqrelid = 't_id_seq'::regclass",
                "R integer|1|1|2147483647|1|f|1\n");
    EXPECT_ROWS(s,
                "SELECT c.relname || '.' || a.attname, d.deptype FROM pg_class c JOIN pg_depend d "
                "ON c.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = "
                "d.refobjsubid WHERE d.objid = 't_id_seq'::regclass",
                "R t.id|a\n");
    /* BIGSERIAL, SMALLSERIAL */
    EXPECT(s, "CREATE TABLE b (id BIGSERIAL, s SMALLSERIAL, v INT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO b (v) VALUES (1)", "C INSERT 0 1\n");
    EXPECT(s, "SELECT id, s, v FROM b", "D id:20,s:21,v:23\nR 1|1|1\nC SELECT 1\n");
    /* DROP TABLE drops what it owns */
    EXPECT(s, "DROP TABLE t, b", "C DROP TABLE\n");
    expect_error(s, "SELECT nextval('t_id_seq')", "42P01");
    expect_error(s, "SELECT nextval('b_s_seq')", "42P01");
    EXPECT_ROWS(s, "SELECT count(*) FROM pg_class WHERE relkind = 'S'", "R 0\n");
    /* the same table again starts over */
    EXPECT(s, "CREATE TABLE t (id SERIAL PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO t (v) VALUES ('a') RETURNING id", "D id:23\nR 1\nC INSERT 0 1\n");
    EXPECT(s, "CREATE TABLE IF NOT EXISTS t (id SERIAL PRIMARY KEY)",
           "N relation \"t\" already exists, skipping\nC CREATE TABLE\n");
    EXPECT_ROWS(s, "SELECT nextval('t_id_seq')", "R 2\n");
    EXPECT(s, "CREATE TABLE t (id SERIAL PRIMARY KEY)", "E 42P07 relation \"t\" already exists\n");
    /* IDENTITY */
    EXPECT(s,
           "CREATE TABLE ga (id INT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v TEXT); "
           "CREATE TABLE gd (id BIGINT GENERATED BY DEFAULT AS IDENTITY (START WITH 100 "
           "INCREMENT BY 10), v TEXT)",
           "C CREATE TABLE\nC CREATE TABLE\n");
    EXPECT(s, "INSERT INTO ga (v) VALUES ('a')", "C INSERT 0 1\n");
    EXPECT(s, "INSERT INTO ga (id, v) VALUES (DEFAULT, 'b')", "C INSERT 0 1\n");
    expect_error(s, "INSERT INTO ga (id, v) VALUES (7, 'x')", "428C9");
    expect_error(s, "INSERT INTO ga VALUES (7, 'x')", "428C9");
    expect_error(s, "INSERT INTO ga (id, v) SELECT 8, 'y'", "428C9");
    EXPECT(s, "INSERT INTO ga (id, v) OVERRIDING SYSTEM VALUE VALUES (7, 'x')",
           "C INSERT 0 1\n");
    EXPECT_ROWS(s, "SELECT id, v FROM ga ORDER BY id", "R 1|a\nR 2|b\nR 7|x\n");
    EXPECT(s, "INSERT INTO ga DEFAULT VALUES", "C INSERT 0 1\n");
    EXPECT(s, "INSERT INTO gd (v) VALUES ('a'), ('b')", "C INSERT 0 2\n");
    EXPECT(s, "INSERT INTO gd (id, v) VALUES (5, 'c')", "C INSERT 0 1\n");
    EXPECT_ROWS(s, "SELECT id, v FROM gd ORDER BY id", "R 5|c\nR 100|a\nR 110|b\n");
    EXPECT_ROWS(s,
                "SELECT attname, attidentity, atthasdef FROM pg_attribute WHERE attrelid IN "
                "('ga'::regclass, 'gd'::regclass) AND attname = 'id' ORDER BY attrelid",
                "R id|a|f\nR id|d|f\n");
    EXPECT_ROWS(s,
                "SELECT table_name, is_identity, identity_generation FROM "
                "information_schema.columns WHERE column_name = 'id' AND table_name LIKE 'g%' "
                "ORDER BY 1",
                "R ga|YES|ALWAYS\nR gd|YES|BY DEFAULT\n");
    expect_error(s, "CREATE TABLE gt (id TEXT GENERATED ALWAYS AS IDENTITY)", "22023");
    /* in a block: the table and its sequence together, gone with a rollback */
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT(s, "CREATE TABLE blk (id SERIAL, v INT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO blk (v) VALUES (1), (2)", "C INSERT 0 2\n");
    EXPECT_ROWS(s, "SELECT id FROM blk ORDER BY id", "R 1\nR 2\n");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    expect_error(s, "SELECT nextval('blk_id_seq')", "42P01");
    /* OWNED BY */
    EXPECT(s, "CREATE TABLE o (x INT)", "C CREATE TABLE\n");
    EXPECT(s, "CREATE SEQUENCE os OWNED BY o.x", "C CREATE SEQUENCE\n");
    expect_error(s, "CREATE SEQUENCE os2 OWNED BY o.nope", "42703");
    EXPECT(s, "DROP TABLE o", "C DROP TABLE\n");
    expect_error(s, "SELECT nextval('os')", "42P01");
    sqlv_session_close(s);
    close_all(&f);
}

/* Two engines over one key space stand for two nodes: each reserves its
** own blocks; DDL through one makes the other distrust its block. */
static void test_two_nodes(void **state) {
    fixture f;
    sqlv_engine *e2 = NULL;
    sqlv_session *b = NULL;
    (void)state;
    open_all(&f);
    assert_int_equal(sqlv_engine_open(f.db, &e2), SQLV_OK);
    assert_int_equal(sqlv_session_open(e2, "root", "defaultdb", &b), SQLV_OK);
    sqlv_session *a = session(&f);
    EXPECT(a, "CREATE SEQUENCE s", "C CREATE SEQUENCE\n");
    EXPECT_ROWS(a, "SELECT nextval('s')", "R 1\n");
    EXPECT_ROWS(b, "SELECT nextval('s')", "R 33\n");
    EXPECT_ROWS(a, "SELECT nextval('s')", "R 2\n");
    EXPECT_ROWS(b, "SELECT nextval('s')", "R 34\n");
    /* DDL elsewhere (a table): a's block is distrusted once, then resumed */
    EXPECT(b, "CREATE TABLE other (x INT)", "C CREATE TABLE\n");
    EXPECT_ROWS(a, "SELECT nextval('s')", "R 65\n");
    /* a single node loses nothing to DDL */
    EXPECT(a, "CREATE TABLE mine (x INT)", "C CREATE TABLE\n");
    EXPECT_ROWS(a, "SELECT nextval('s')", "R 66\n");
    /* DROP and CREATE on b: a does not hand out the old sequence's block */
    EXPECT(b, "DROP SEQUENCE s", "C DROP SEQUENCE\n");
    EXPECT(b, "CREATE SEQUENCE s START 1000", "C CREATE SEQUENCE\n");
    EXPECT_ROWS(a, "SELECT nextval('s')", "R 1000\n");
    EXPECT_ROWS(b, "SELECT nextval('s')", "R 1032\n");
    /* RESTART on a: b's block is stale (the state moved) */
    EXPECT(a, "ALTER SEQUENCE s RESTART WITH 5", "C ALTER SEQUENCE\n");
    EXPECT_ROWS(b, "SELECT nextval('s')", "R 5\n");
    EXPECT_ROWS(a, "SELECT nextval('s')", "R 37\n");
    sqlv_session_close(a);
    sqlv_session_close(b);
    sqlv_engine_close(e2);
    close_all(&f);
}

/* Threads on their own sessions take values at once: all distinct, and
** increasing within each session. */
#define THREADS 4
#define PER_THREAD 200

typedef struct worker {
    fixture *f;
    int64_t got[PER_THREAD];
    int n;
} worker;

static void *worker_main(void *arg) {
    worker *w = arg;
    sqlv_session *s = session(w->f);
    for (int i = 0; i < PER_THREAD; i++) {
        char *r = rows_of(s, "SELECT nextval('s')");
        if (strncmp(r, "R ", 2) == 0) w->got[w->n++] = strtoll(r + 2, NULL, 10);
        free(r);
    }
    sqlv_session_close(s);
    return NULL;
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_concurrent_nextval(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    /* CACHE 1: every value is its own state write, so they race on one key */
    EXPECT(s, "CREATE SEQUENCE s CACHE 1", "C CREATE SEQUENCE\n");
    static worker w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].f = &f;
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    static int64_t all[THREADS * PER_THREAD];
    int n = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(w[i].n, PER_THREAD);
        for (int k = 0; k < w[i].n; k++) {
            if (k > 0) assert_true(w[i].got[k] > w[i].got[k - 1]);
            all[n++] = w[i].got[k];
        }
    }
    qsort(all, (size_t)n, sizeof(all[0]), cmp64);
    for (int i = 1; i < n; i++)
        assert_true(all[i] != all[i - 1]);
    /* CACHE 1: no gaps either */
    assert_int_equal(all[0], 1);
    assert_int_equal(all[n - 1], n);
    sqlv_session_close(s);
    close_all(&f);
}

int main(void) {
    base_log_set_level(BASE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_functions),
        cmocka_unit_test(test_not_transactional),
        cmocka_unit_test(test_node_cache),
        cmocka_unit_test(test_serial_identity),
        cmocka_unit_test(test_two_nodes),
        cmocka_unit_test(test_concurrent_nextval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
