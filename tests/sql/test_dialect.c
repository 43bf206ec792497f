/*
** tests/sql/test_dialect.c: the PostgreSQL dialect layer: the rewriter's
** token streams in and out (sql/dialect.c), and each rewrite, setting and
** function through sessions, with PostgreSQL's results and tags. The
** transcript format is test_sql.c's (D/R/C/E/N/Q lines).
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

#include "base/base.h"
#include "sql/sql.h"
#include "sql/sql_dialect.h"
#include "tests/sql/sql_harness.h"


/* ---- the rewriter, token streams in and out ------------------------------------ */

static void test_rewrite_casts(void **state) {
    (void)state;
    expect_rewrite("SELECT 1::int", "SELECT CAST(1 AS INTEGER)");
    expect_rewrite("SELECT 1 :: int4", "SELECT CAST(1 AS INTEGER)");
    expect_rewrite("SELECT $1::int8, $2::text", "SELECT CAST($1 AS BIGINT), CAST($2 AS TEXT)");
    expect_rewrite("SELECT a::varchar(10)::int FROM t",
                   "SELECT CAST(CAST(a AS TEXT) AS INTEGER) FROM t");
    expect_rewrite("SELECT (a + 1)::numeric(10,2)", "SELECT CAST((a + 1) AS NUMERIC)");
    expect_rewrite("SELECT count(*)::int FROM t", "SELECT CAST(count(*) AS INTEGER) FROM t");
    expect_rewrite("SELECT t.a::text FROM t", "SELECT CAST(t.a AS TEXT) FROM t");
    expect_rewrite("SELECT x::double precision, y::timestamp with time zone, z::int[]",
                   "SELECT CAST(x AS REAL), meridian_cast_timestamptz(y), CAST(z AS TEXT)");
    expect_rewrite("SELECT 'true'::boolean, a::bool", "SELECT meridian_bool('true'), meridian_bool(a)");
    expect_rewrite("SELECT CASE WHEN a THEN 1 END::text", "SELECT CAST(CASE WHEN a THEN 1 END AS TEXT)");
    expect_rewrite("SELECT 'pgbench_accounts'::regclass, 2::smallint, 3::bigint, 'x'::bytea, 1.5::float8, 1::real, 'a'::char(3), 'a'::character varying(4), 1::pg_catalog.int4",
                   "SELECT meridian_regclass('pgbench_accounts'), CAST(2 AS SMALLINT), CAST(3 AS BIGINT), CAST('x' AS BLOB), CAST(1.5 AS REAL), CAST(1 AS REAL), CAST('a' AS TEXT), CAST('a' AS TEXT), CAST(1 AS INTEGER)");
    expect_rewrite("SELECT f(a, b::int)::text", "SELECT CAST(f(a, CAST(b AS INTEGER)) AS TEXT)");
    expect_rewrite("SELECT -1::int", "SELECT -CAST(1 AS INTEGER)");
    /* not rewritten inside strings, quoted identifiers, comments, dollar quotes */
    expect_rewrite("SELECT 'a::b', \"x::y\" -- c::d public.t\n, $$p::q public.t$$ /* public.t::int */, $tag$ a::b $tag$",
                   "SELECT 'a::b', \"x::y\" -- c::d public.t\n, 'p::q public.t' /* public.t::int */, ' a::b '");
    /* dollar quotes become standard literals (SQLite would read $$ as a parameter) */
    expect_rewrite("SELECT $$it's$$, $q$a$$b$q$, $$$$", "SELECT 'it''s', 'a$$b', ''");
    expect_rewrite("SELECT ':' || ':'", "SELECT ':' || ':'");
    expect_rejected("SELECT 1::nosuchtype", "42704", NULL);
    expect_rejected("SELECT ::int", "42601", NULL);
    expect_rejected("SELECT 1::", "42601", NULL);
    expect_rejected("SELECT 1::numeric(10", "42601", NULL);
}

static void test_rewrite_names_and_clauses(void **state) {
    (void)state;
    expect_rewrite("SELECT * FROM public.t JOIN pg_catalog.pg_class c ON true",
                   "SELECT * FROM t JOIN pg_class c ON true");
    expect_rewrite("SELECT pg_catalog.count(*) FROM \"public\".\"T\"", "SELECT count(*) FROM \"T\"");
    expect_rewrite("INSERT INTO public.t VALUES (1)", "INSERT INTO t VALUES (1)");
    expect_rewrite("SELECT t.public FROM t", "SELECT t.public FROM t");
    expect_rewrite("SELECT * FROM information_schema.tables", "SELECT * FROM information_schema_tables");
    expect_rejected("SELECT * FROM information_schema.nosuch", "0A000", NULL);
    expect_rejected("SELECT * FROM other.t", "3F000", NULL);
    expect_rejected("UPDATE s.t SET a = 1", "3F000", NULL);
    expect_rejected("INSERT INTO s.t VALUES (1)", "3F000", NULL);
    /* a qualified column after an operator keyword is not schema.table */
    expect_rewrite("SELECT * FROM t d WHERE a IS NOT DISTINCT FROM d.name",
                   "SELECT * FROM t d WHERE a IS NOT DISTINCT FROM d.name");
    expect_rewrite("SELECT * FROM t d JOIN u ON u.a IS DISTINCT FROM d.a",
                   "SELECT * FROM t d JOIN u ON u.a IS DISTINCT FROM d.a");
    expect_rewrite("SELECT extract(year FROM d.ts), substring(d.s FROM 2), trim(both FROM d.s) FROM t d",
                   "SELECT extract('year', d.ts), substring(d.s, 2), btrim(d.s) FROM t d");
    expect_rewrite("SELECT * FROM t WHERE a IN (SELECT b FROM public.u)",
                   "SELECT * FROM t WHERE a IN (SELECT b FROM u)");
    expect_rejected("SELECT * FROM t WHERE a IN (SELECT b FROM s.u)", "3F000", NULL);
    expect_rewrite("INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET b = excluded.b",
                   "INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET b = excluded.b");
    expect_rewrite("CREATE TABLE t (a int, b text COLLATE \"C\") WITH (fillfactor=100)",
                   "CREATE TABLE t (a int, b text)");
    expect_rewrite("CREATE TABLE t (a int) with (fillfactor=100, autovacuum_enabled=off)",
                   "CREATE TABLE t (a int)");
    expect_rewrite("WITH x AS (SELECT 1) SELECT * FROM x", "WITH x AS (SELECT 1) SELECT * FROM x");
    expect_rewrite("SELECT a COLLATE \"default\" FROM t ORDER BY a COLLATE \"C\"",
                   "SELECT a FROM t ORDER BY a");
    expect_rewrite("SELECT a COLLATE NOCASE FROM t", "SELECT a COLLATE NOCASE FROM t");
    expect_rewrite("SELECT * FROM t WHERE a ILIKE 'x%' AND b NOT ILIKE 'y' LIMIT ALL",
                   "SELECT * FROM t WHERE a MATCH 'x%' AND b NOT MATCH 'y' LIMIT -1");
    expect_rewrite("SELECT * FROM t LIMIT ALL OFFSET 2", "SELECT * FROM t LIMIT -1 OFFSET 2");
    expect_rewrite("SELECT current_timestamp, CURRENT_USER, session_user, current_schema, current_catalog, t.current_user FROM t",
                   "SELECT now(), current_user(), session_user(), current_schema(), current_database(), t.current_user FROM t");
    expect_rewrite("SELECT current_timestamp::text", "SELECT CAST(now() AS TEXT)");
    expect_rewrite("CREATE TABLE h (m timestamp DEFAULT current_timestamp)",
                   "CREATE TABLE h (m timestamp DEFAULT current_timestamp)");
    expect_rewrite("insert into a(aid) select aid from generate_series(1, 100000) as aid",
                   "insert into a(aid) select aid from (SELECT value AS aid FROM meridian_series(1, 100000)) AS aid");
    expect_rewrite("SELECT * FROM generate_series(1, $1::int) WHERE generate_series > 1",
                   "SELECT * FROM (SELECT value AS generate_series FROM meridian_series(1, CAST($1 AS INTEGER))) AS generate_series WHERE generate_series > 1");
    expect_rewrite("SELECT * FROM t, generate_series(1,2) g", "SELECT * FROM t, (SELECT value AS g FROM meridian_series(1,2)) AS g");
    /* in a select list without FROM: moved into one (test_strfuncs.c) */
    expect_rewrite("SELECT generate_series(1,2)",
                   "SELECT generate_series FROM (SELECT value AS generate_series FROM "
                   "meridian_series(1,2)) AS generate_series");
    expect_rewrite("", "");
    expect_rewrite("  -- only a comment", "");
    sqlv__rewrite rw;
    const char *q = "create table x(a int) with (fillfactor=100)";
    assert_int_equal(sqlv__dialect_rewrite(q, strlen(q), &rw), 0);
    assert_true(rw.storage_options_ignored);
    base_free(rw.text);
    q = "create table x(a int)";
    assert_int_equal(sqlv__dialect_rewrite(q, strlen(q), &rw), 0);
    assert_false(rw.storage_options_ignored);
    base_free(rw.text);
}

/* The constructs of psql's and drivers' catalog queries (sql/dialect.c,
** catalog_rewrite; run through sessions in test_pgcatalog.c). */
static void test_rewrite_catalog_constructs(void **state) {
    (void)state;
    expect_rewrite("SELECT E'a\\nb', E'it''s', E'\\x41\\101\\u00e9\\\\'",
                   "SELECT 'a\nb', 'it''s', 'AA\xc3\xa9\\'");
    expect_rewrite("SELECT E 'x'", "SELECT E 'x'"); /* not adjacent: an alias */
    expect_rejected("SELECT E'it\\'s'", "0A000", NULL);
    expect_rejected("SELECT E'\\0'", "22021", NULL);
    expect_rejected("SELECT E'\\u12'", "22025", NULL);
    expect_rewrite("SELECT a ~ 'x', a !~ '^pg_', a ~* b, a !~* b, a~~'x%', a !~~ b, a ~~* b",
                   "SELECT a REGEXP 'x', a NOT REGEXP '^pg_', a REGEXP '(?i)' || b, a NOT REGEXP "
                   "'(?i)' || b, a LIKE 'x%', a NOT LIKE b, a MATCH b");
    expect_rewrite("SELECT ~5, (a) ~ 'y' FROM t", "SELECT ~5, (a) REGEXP 'y' FROM t");
    expect_rewrite("WHERE c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default AND x",
                   "WHERE c.relname REGEXP '^(t)$' AND x");
    expect_rewrite("SELECT 1 OPERATOR(pg_catalog.=) 1, 2 OPERATOR(<>)3", "SELECT 1 = 1, 2 <> 3");
    expect_rejected("SELECT a OPERATOR(pg_catalog.@@) b", "0A000", NULL);
    expect_rejected("SELECT a OPERATOR(pg_catalog.~", "42601", NULL);
    expect_rewrite("SELECT ARRAY(SELECT b FROM t WHERE c = r.oid) AS m FROM r",
                   "SELECT (WITH meridian_array(v) AS (SELECT b FROM t WHERE c = r.oid) SELECT "
                   "meridian_array_agg(v) FROM meridian_array) AS m FROM r");
    expect_rewrite("SELECT array(select 1)::text",
                   "SELECT CAST((WITH meridian_array(v) AS (select 1) SELECT "
                   "meridian_array_agg(v) FROM meridian_array) AS TEXT)");
    expect_rewrite("SELECT ARRAY[1, x::int], ARRAY[]", "SELECT meridian_array(1, CAST(x AS INTEGER)), meridian_array()");
    expect_rewrite("WHERE relkind = ANY (ARRAY['r', 'p'])",
                   "WHERE relkind IN (SELECT value FROM json_each(meridian_array_json(meridian_array('r', 'p'))))");
    expect_rejected("SELECT ARRAY[[1]]", "0A000", NULL);
    expect_rejected("SELECT ARRAY[1::nosuchtype]", "42704", NULL);
    expect_rewrite("WHERE oid = any (pol.polroles) AND 'd' = ANY(k) AND x <> ALL (y) AND z != all(w)",
                   "WHERE oid IN (SELECT value FROM json_each(meridian_array_json(pol.polroles))) "
                   "AND 'd' IN (SELECT value FROM json_each(meridian_array_json(k))) AND x NOT IN "
                   "(SELECT value FROM json_each(meridian_array_json(y))) AND z NOT IN (SELECT "
                   "value FROM json_each(meridian_array_json(w)))");
    expect_rewrite("WHERE a = ANY (SELECT b FROM t)", "WHERE a IN (SELECT b FROM t)");
    expect_rewrite("SELECT 1 UNION ALL (SELECT 2)", "SELECT 1 UNION ALL (SELECT 2)");
    expect_rejected("WHERE a < ANY (b)", "0A000", NULL);
    expect_rewrite("WHERE attnum = prattrs[s] AND f(x)[2] > 0",
                   "WHERE attnum = meridian_array_at(prattrs, s) AND meridian_array_at(f(x), 2) > 0");
    expect_rejected("SELECT a[1:2] FROM t", "0A000", NULL);
    expect_rewrite("CREATE TABLE t (a int[3])", "CREATE TABLE t (a int[3])");
    expect_rewrite("select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x",
                   "select 'toast.' || x from (SELECT value AS x FROM "
                   "json_each(meridian_array_json(tc.reloptions))) x");
    expect_rewrite("SELECT * FROM unnest(a)",
                   "SELECT * FROM (SELECT value AS unnest FROM json_each(meridian_array_json(a))) "
                   "AS unnest");
    /* PostgreSQL's LIKE escapes with \ (psql 15's tab completion) */
    expect_rewrite("WHERE c.relname LIKE 'a\\_b%' AND x NOT LIKE 'c\\%' AND y LIKE 'd%'",
                   "WHERE c.relname LIKE 'a\\_b%' ESCAPE '\\' AND x NOT LIKE 'c\\%' ESCAPE '\\' "
                   "AND y LIKE 'd%'");
    expect_rewrite("WHERE a LIKE 'x\\_' ESCAPE '!'", "WHERE a LIKE 'x\\_' ESCAPE '!'");
    expect_rewrite("SELECT c.oid::pg_catalog.regclass, x::regnamespace::text",
                   "SELECT meridian_regclass(c.oid), CAST(CAST(x AS TEXT) AS TEXT)");
}

/* Rewrites of random token soup never crash, and always rewrite to
** something that rewrites to itself. */
static void test_rewrite_soup(void **state) {
    (void)state;
    static const char *const parts[] = {"::", ":", "int", "(", ")", "public", ".", "t", "'s::x'",
                                        "$1", "ILIKE", "LIMIT", "ALL", "WITH", "CREATE", "TABLE",
                                        "COLLATE", "\"C\"", "CASE", "END", ",", "1", "--c\n",
                                        "double", "precision", "[]", "$$", "current_user",
                                        "~", "!", "*", "OPERATOR", "ARRAY", "ANY", "=", "E",
                                        "'x'", "[1]", "SELECT", "FROM", "unnest"};
    uint64_t x = 88172645463325252ull;
    char q[512];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0;
        int ntok = 1 + (int)(x % 12);
        q[0] = 0;
        for (int k = 0; k < ntok; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            const char *p = parts[x % BASE_ARRAY_LEN(parts)];
            n += (size_t)snprintf(q + n, sizeof(q) - n, "%s%s", (x >> 20) & 1 ? " " : "", p);
        }
        sqlv__rewrite rw;
        int rc = sqlv__dialect_rewrite(q, strlen(q), &rw);
        assert_true(rc == 0 || rc == 1);
        if (rc == 0) {
            sqlv__rewrite again;
            int rc2 = sqlv__dialect_rewrite(rw.text, rw.len, &again);
            if (rc2 != 0)
                print_error("in: %s\nout: %s\nrewritten again: %s %s\n", q, rw.text,
                            again.sqlstate, again.message);
            assert_int_equal(rc2, 0);
            base_free(again.text);
            base_free(rw.text);
        }
    }
}

/* ---- through sessions -------------------------------------------------------------- */

static void test_session_settings(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "SHOW application_name", "D application_name:25\nR \nC SHOW\n");
    EXPECT(s, "SET application_name = 'pgbench'; SHOW application_name",
           "C SET\nD application_name:25\nR pgbench\nC SHOW\n");
    EXPECT(s, "SET SESSION application_name TO app2", "C SET\n");
    EXPECT(s, "SELECT current_setting('application_name')", "D current_setting:25\nR app2\nC SELECT 1\n");
    EXPECT(s, "SET DateStyle TO ISO, MDY; SHOW datestyle",
           "C SET\nD DateStyle:25\nR ISO, MDY\nC SHOW\n");
    EXPECT(s, "SET TIME ZONE 'UTC'; SHOW TimeZone", "C SET\nD TimeZone:25\nR UTC\nC SHOW\n");
    EXPECT(s, "SET extra_float_digits = 3; SHOW extra_float_digits",
           "C SET\nD extra_float_digits:25\nR 3\nC SHOW\n");
    EXPECT(s, "SET statement_timeout = 1500; SHOW statement_timeout",
           "C SET\nD statement_timeout:25\nR 1500ms\nC SHOW\n");
    expect_error(s, "SET statement_timeout = -1", "22023"); /* as PostgreSQL: 0 .. INT_MAX ms */
    EXPECT(s, "RESET statement_timeout", "C RESET\n");
    EXPECT(s, "SET client_encoding = 'utf8'; SHOW client_encoding",
           "C SET\nD client_encoding:25\nR UTF8\nC SHOW\n");
    expect_error(s, "SET client_encoding = 'LATIN1'", "0A000");
    EXPECT(s, "SET search_path = public; SHOW search_path",
           "C SET\nD search_path:25\nR public\nC SHOW\n");
    EXPECT(s, "SET standard_conforming_strings = on; SET default_transaction_isolation = 'read committed'; SHOW default_transaction_isolation",
           "C SET\nC SET\nD default_transaction_isolation:25\nR serializable\nC SHOW\n");
    EXPECT(s, "SHOW server_version; SHOW integer_datetimes",
           "D server_version:25\nR 15.0\nC SHOW\nD integer_datetimes:25\nR on\nC SHOW\n");
    EXPECT(s, "RESET application_name; SHOW application_name",
           "C RESET\nD application_name:25\nR \nC SHOW\n");
    EXPECT(s, "SET extra_float_digits TO DEFAULT; SHOW extra_float_digits",
           "C SET\nD extra_float_digits:25\nR 1\nC SHOW\n");
    EXPECT(s, "SET myapp.x = 'v'; SELECT current_setting('myapp.x')",
           "C SET\nD current_setting:25\nR v\nC SELECT 1\n");
    EXPECT(s, "RESET ALL; SHOW search_path", "C RESET\nD search_path:25\nR \"$user\", public\nC SHOW\n");
    expect_error(s, "SET nosuch = 1", "42704");
    expect_error(s, "SHOW nosuch", "42704");
    expect_error(s, "RESET nosuch", "42704");
    expect_error(s, "SELECT current_setting('nosuch')", "42704");
    expect_error(s, "SET server_version = '9'", "55P02");
    expect_error(s, "SET application_name", "42601");
    expect_error(s, "SET application_name = ", "42601");
    /* settings are per session */
    sqlv_session *o = session(&f);
    EXPECT(s, "SET application_name = 'one'", "C SET\n");
    EXPECT(o, "SHOW application_name", "D application_name:25\nR \nC SHOW\n");
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

static void test_session_transactions(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "BEGIN ISOLATION LEVEL READ COMMITTED", "C BEGIN\n");
    assert_int_equal(sqlv_session_status(s), 'T');
    EXPECT(s, "SHOW transaction_isolation; SHOW TRANSACTION ISOLATION LEVEL",
           "D transaction_isolation:25\nR serializable\nC SHOW\n"
           "D transaction_isolation:25\nR serializable\nC SHOW\n");
    EXPECT(s, "COMMIT", "C COMMIT\n");
    EXPECT(s, "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ WRITE", "C BEGIN\n");
    EXPECT(s, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "C SET\n");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    EXPECT(s, "BEGIN TRANSACTION; COMMIT", "C BEGIN\nC COMMIT\n");
    EXPECT(s, "BEGIN WORK READ ONLY NOT DEFERRABLE; END", "C BEGIN\nC COMMIT\n");
    EXPECT(s, "START TRANSACTION; COMMIT", "C BEGIN\nC COMMIT\n");
    EXPECT(s, "BEGIN ISOLATION LEVEL READ UNCOMMITTED; COMMIT", "C BEGIN\nC COMMIT\n");
    EXPECT(s, "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED", "C SET\n");
    expect_error(s, "BEGIN ISOLATION LEVEL bogus", "42601");
    assert_int_equal(sqlv_session_status(s), 'I');
    expect_error(s, "START TRANSACTION READ", "42601");
    expect_error(s, "SET TRANSACTION banana", "42601");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_session_functions(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "SELECT version() LIKE 'PostgreSQL 15%', current_database(), current_user, current_schema(), pg_backend_pid() > 0",
           "D ?column?:16,current_database:25,current_user:25,current_schema:25,?column?:16\n"
           "R t|defaultdb|root|public|t\nC SELECT 1\n");
    EXPECT(s, "SELECT session_user, current_schema", "D session_user:25,current_schema:25\nR root|public\nC SELECT 1\n");
    EXPECT(s, "SELECT now() LIKE '20__-__-__ __:__:__%+00', now() = current_timestamp",
           "D ?column?:16,?column?:16\nR t|t\nC SELECT 1\n");
    /* the transaction's timestamp: the same for every statement of a block */
    EXPECT(s, "BEGIN; SELECT 1", "C BEGIN\nD ?column?:20\nR 1\nC SELECT 1\n");
    char *a = run(s, "SELECT now()");
    char *b = run(s, "SELECT now()");
    assert_string_equal(a, b);
    free(a);
    free(b);
    EXPECT(s, "COMMIT", "C COMMIT\n");
    /* casts at run time */
    EXPECT(s, "SELECT 1::int + 1, '42'::int8, 3.5::int, 'x'::text, 'yes'::boolean, 0::bool, '1.50'::numeric(10,2)",
           /* known differences from PostgreSQL (docs/sql.md): expression
           ** types come from the value (int8, float8), 3.5::int truncates
           ** (PostgreSQL rounds: 4), numeric is a double (1.5, not 1.50) */
           "D ?column?:20,int8:20,int4:20,text:25,bool:16,bool:16,numeric:701\n"
           "R 2|42|3|x|t|f|1.5\nC SELECT 1\n");
    /* regclass: a name gives the OID, an OID the name (test_pgcatalog.c) */
    expect_error(s, "SELECT 'pgbench_accounts'::regclass", "42P01");
    expect_error(s, "SELECT 'maybe'::boolean", "22P02");
    expect_error(s, "SELECT 1::nosuchtype", "42704");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_session_pgbench_ddl(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    /* pgbench -i's statements, verbatim */
    EXPECT(s, "drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers",
           "N table \"pgbench_tellers\" does not exist, skipping\nC DROP TABLE\n");
    EXPECT(s, "create table pgbench_history(tid int,bid int,aid    int,delta int,mtime timestamp,filler char(22))",
           "C CREATE TABLE\n");
    EXPECT(s, "create table pgbench_tellers(tid int not null,bid int,tbalance int,filler char(84)) with (fillfactor=100)",
           "N storage parameters (WITH (...)) are accepted and ignored by Meridian\nC CREATE TABLE\n");
    EXPECT(s, "create table pgbench_branches(bid int not null,bbalance int,filler character(88)) with (fillfactor=100)",
           "N storage parameters (WITH (...)) are accepted and ignored by Meridian\nC CREATE TABLE\n");
    EXPECT(s, "begin", "C BEGIN\n");
    EXPECT(s, "truncate table pgbench_branches, pgbench_history, pgbench_tellers", "C TRUNCATE TABLE\n");
    EXPECT(s, "insert into pgbench_branches(bid,bbalance) values(1,0)", "C INSERT 0 1\n");
    EXPECT(s, "insert into pgbench_tellers(tid,bid,tbalance) values (1,1,0)", "C INSERT 0 1\n");
    EXPECT(s, "commit", "C COMMIT\n");
    EXPECT(s, "vacuum analyze pgbench_branches", "C VACUUM\n");
    EXPECT(s, "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 5, CURRENT_TIMESTAMP)",
           "C INSERT 0 1\n");
    EXPECT(s, "SELECT count(*) FROM public.pgbench_history WHERE mtime LIKE '20%+00'",
           "D count:20\nR 1\nC SELECT 1\n");
    EXPECT(s, "truncate pgbench_history", "C TRUNCATE TABLE\n");
    EXPECT(s, "SELECT count(*) FROM pgbench_history", "D count:20\nR 0\nC SELECT 1\n");
    /* TRUNCATE is transactional */
    EXPECT(s, "BEGIN; TRUNCATE pgbench_tellers; SELECT count(*) FROM pgbench_tellers; ROLLBACK",
           "C BEGIN\nC TRUNCATE TABLE\nD count:20\nR 0\nC SELECT 1\nC ROLLBACK\n");
    EXPECT(s, "SELECT count(*) FROM pgbench_tellers", "D count:20\nR 1\nC SELECT 1\n");
    expect_error(s, "TRUNCATE nosuch", "42P01");
    expect_error(s, "TRUNCATE pgbench_tellers, nosuch", "42P01");
    EXPECT(s, "SELECT count(*) FROM pgbench_tellers", "D count:20\nR 1\nC SELECT 1\n");
    expect_error(s, "BEGIN; VACUUM", "25001");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    expect_error(s, "SELECT * FROM other.pgbench_tellers", "3F000");
    EXPECT(s, "drop table if exists public.pgbench_branches, pgbench_history, pgbench_tellers",
           "C DROP TABLE\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_session_add_primary_key(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    sqlv_session *o = session(&f);
    EXPECT(s, "create table pgbench_branches(bid int not null,bbalance int,filler char(88)) with (fillfactor=100)",
           "N storage parameters (WITH (...)) are accepted and ignored by Meridian\nC CREATE TABLE\n");
    EXPECT(s, "insert into pgbench_branches(bid,bbalance) select bid, 0 from generate_series(1, 50) as bid",
           "C INSERT 0 50\n");
    EXPECT(o, "SELECT count(*) FROM pgbench_branches", "D count:20\nR 50\nC SELECT 1\n");
    EXPECT(s, "alter table pgbench_branches add primary key (bid)", "C ALTER TABLE\n");
    EXPECT(s, "SELECT count(*), sum(bid) FROM pgbench_branches", "D count:20,sum:20\nR 50|1275\nC SELECT 1\n");
    EXPECT(o, "SELECT count(*), sum(bid) FROM pgbench_branches", "D count:20,sum:20\nR 50|1275\nC SELECT 1\n");
    /* the key is enforced and used */
    expect_error(s, "insert into pgbench_branches(bid,bbalance) values (7, 1)", "23505");
    EXPECT(o, "UPDATE pgbench_branches SET bbalance = bbalance + 5 WHERE bid = 7", "C UPDATE 1\n");
    EXPECT(s, "SELECT bbalance FROM pgbench_branches WHERE bid = 7", "D bbalance:23\nR 5\nC SELECT 1\n");
    expect_error(s, "alter table pgbench_branches add primary key (bid)", "42P16");
    /* duplicates: 23505, nothing changes */
    EXPECT(s, "create table d (a int, b int); insert into d values (1, 1), (1, 2), (2, 3)",
           "C CREATE TABLE\nC INSERT 0 3\n");
    expect_error(s, "alter table d add constraint d_pkey primary key (a)", "23505");
    EXPECT(s, "SELECT count(*) FROM d", "D count:20\nR 3\nC SELECT 1\n");
    EXPECT(s, "insert into d values (1, 4)", "C INSERT 0 1\n");
    /* inside a block, rolled back */
    EXPECT(s, "BEGIN; alter table d add primary key (b); insert into d values (9, 4)",
           "C BEGIN\nC ALTER TABLE\nE 23505 duplicate key value violates unique constraint \"d_pkey\"\n");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    EXPECT(s, "insert into d values (9, 4); SELECT count(*) FROM d", "C INSERT 0 1\nD count:20\nR 5\nC SELECT 1\n");
    EXPECT(s, "BEGIN; delete from d where b = 4; alter table d add primary key (b); COMMIT",
           "C BEGIN\nC DELETE 2\nC ALTER TABLE\nC COMMIT\n");
    EXPECT(o, "SELECT a, b FROM d ORDER BY b", "D a:23,b:23\nR 1|1\nR 1|2\nR 2|3\nC SELECT 3\n");
    expect_error(s, "alter table nosuch add primary key (a)", "42P01");
    EXPECT(s, "alter table if exists nosuch add primary key (a)",
           "N relation \"nosuch\" does not exist, skipping\nC ALTER TABLE\n");
    /* ADD COLUMN (tests/sql/test_catalog.c has the rest): stored rows read NULL */
    EXPECT(s, "alter table d add column c int", "C ALTER TABLE\n");
    EXPECT(o, "SELECT a, b, c FROM d ORDER BY b",
           "D a:23,b:23,c:23\nR 1|1|NULL\nR 1|2|NULL\nR 2|3|NULL\nC SELECT 3\n");
    expect_error(s, "alter table d add unique (a)", "0A000");
    expect_error(s, "alter table d add constraint f foreign key (a) references pgbench_branches", "0A000");
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

static int c_copy_in(void *ctx, int ncols) {
    return base_buf_printf(&((capture *)ctx)->out, "I %d\n", ncols), 0;
}

/* Runs a COPY statement then feeds the chunks (NULL-terminated list);
** done: CopyDone, else CopyFail. Returns the transcript (free). */
static char *run_copy(sqlv_session *s, const char *q, const char *const *chunks, bool done) {
    capture c;
    memset(&c, 0, sizeof(c));
    sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
    sqlv_session_set_copy_in(s, c_copy_in);
    assert_int_equal(sqlv_session_exec(s, q, strlen(q), &sink), SQLV_OK);
    for (int i = 0; chunks[i] && sqlv_session_in_copy(s); i++) {
        int rc = sqlv_session_copy_data(s, chunks[i], strlen(chunks[i]), &sink);
        assert_true(rc == SQLV_OK || rc == SQLV_ERR_FAILED);
    }
    if (done)
        assert_int_equal(sqlv_session_copy_done(s, &sink), sqlv_session_in_copy(s) ? SQLV_OK : SQLV_OK);
    else
        assert_int_equal(sqlv_session_copy_fail(s, "client gave up", &sink), SQLV_OK);
    assert_false(sqlv_session_in_copy(s));
    base_buf_append_byte(&c.out, 0);
    char *r = strdup((const char *)c.out.data);
    base_buf_free(&c.out);
    return r;
}

#define EXPECT_COPY(s, q, chunks, done, want)                                                      \
    do {                                                                                           \
        char *got_ = run_copy((s), (q), (chunks), (done));                                         \
        if (strcmp(got_, (want)) != 0) print_error("copy: %s\nwant:\n%sgot:\n%s", (q), (want), got_); \
        assert_string_equal(got_, (want));                                                         \
        free(got_);                                                                                \
    } while (0)

static void test_session_copy(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "create table pgbench_accounts(aid int not null,bid int,abalance int,filler char(84)) with (fillfactor=100)",
           "N storage parameters (WITH (...)) are accepted and ignored by Meridian\nC CREATE TABLE\n");
    /* pgbench's load: one CopyData per row, "\." then CopyDone, in a block */
    EXPECT(s, "begin; truncate table pgbench_accounts", "C BEGIN\nC TRUNCATE TABLE\n");
    const char *rows[] = {"1\t1\t0\t\n", "2\t1\t0\t\n", "3\t1\t0\t\n", "\\.\n", NULL};
    EXPECT_COPY(s, "copy pgbench_accounts from stdin with (freeze on)", rows, true, "I 4\nC COPY 3\n");
    EXPECT(s, "commit", "C COMMIT\n");
    EXPECT(s, "alter table pgbench_accounts add primary key (aid)", "C ALTER TABLE\n");
    EXPECT(s, "SELECT aid, bid, abalance, filler FROM pgbench_accounts ORDER BY aid",
           "D aid:23,bid:23,abalance:23,filler:25\nR 1|1|0|\nR 2|1|0|\nR 3|1|0|\nC SELECT 3\n");
    /* text format: NULL, escapes, rows split across messages, column list */
    EXPECT(s, "create table c (a int primary key, b text, n int)", "C CREATE TABLE\n");
    const char *split[] = {"1\tx\\ty\t\\N\n2\t", "tab\\\\z\t7\n", "3\t\\101\t8", NULL};
    EXPECT_COPY(s, "COPY c (a, b, n) FROM STDIN", split, true, "I 3\nC COPY 3\n");
    EXPECT(s, "SELECT a, b, n FROM c ORDER BY a",
           "D a:23,b:25,n:23\nR 1|x\ty|NULL\nR 2|tab\\z|7\nR 3|A|8\nC SELECT 3\n");
    /* CSV with header, quotes, NULL option and a delimiter */
    const char *csv[] = {"a;b;n\r\n", "4;\"q;\"\"uote\"\"\";9\n5;;NIL\n6;\"\";NIL\n", NULL};
    EXPECT_COPY(s, "COPY public.c FROM STDIN WITH (FORMAT csv, HEADER true, DELIMITER ';', NULL 'NIL')",
                csv, true, "I 3\nC COPY 3\n");
    EXPECT(s, "SELECT a, b, n FROM c WHERE a > 3 ORDER BY a",
           "D a:23,b:25,n:23\nR 4|q;\"uote\"|9\nR 5||NULL\nR 6||NULL\nC SELECT 3\n");
    /* a bad row: the whole COPY is undone */
    const char *bad[] = {"10\ta\t1\n", "11\tb\n", "12\tc\t1\n", NULL};
    EXPECT_COPY(s, "COPY c FROM STDIN", bad, true,
                "I 3\nE 22P04 missing data for column 3 (COPY line 2)\n");
    const char *dup[] = {"20\ta\t1\n", "1\tb\t1\n", NULL};
    char *got = run_copy(s, "COPY c FROM STDIN", dup, true);
    assert_non_null(strstr(got, "E 23505"));
    free(got);
    const char *extra[] = {"30\ta\t1\t2\n", NULL};
    EXPECT_COPY(s, "COPY c FROM STDIN", extra, true,
                "I 3\nE 22P04 extra data after last expected column (COPY line 1)\n");
    const char *fine[] = {"40\ta\t1\n", NULL};
    EXPECT_COPY(s, "COPY c FROM STDIN", fine, false,
                "I 3\nE 57014 COPY from stdin failed: client gave up\n");
    EXPECT(s, "SELECT count(*) FROM c", "D count:20\nR 6\nC SELECT 1\n");
    assert_int_equal(sqlv_session_status(s), 'I');
    /* inside a block a failed COPY aborts the block */
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT_COPY(s, "COPY c FROM STDIN", bad, true, "I 3\nE 22P04 missing data for column 3 (COPY line 2)\n");
    assert_int_equal(sqlv_session_status(s), 'E');
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    /* a query in the middle of a copy ends it */
    const char *none[] = {"50\ta\t1\n", NULL};
    capture c;
    memset(&c, 0, sizeof(c));
    sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
    const char *q = "COPY c FROM STDIN";
    assert_int_equal(sqlv_session_exec(s, q, strlen(q), &sink), SQLV_OK);
    assert_true(sqlv_session_in_copy(s));
    assert_int_equal(sqlv_session_copy_data(s, none[0], strlen(none[0]), &sink), SQLV_OK);
    base_buf_free(&c.out);
    EXPECT(s, "SELECT count(*) FROM c", "D count:20\nR 6\nC SELECT 1\n");
    assert_false(sqlv_session_in_copy(s));
    /* errors at the statement */
    sqlv_session_set_copy_in(s, NULL);
    expect_error(s, "COPY c FROM STDIN", "0A000"); /* the caller cannot copy */
    const char *nothing[] = {NULL};
    EXPECT_COPY(s, "COPY nosuch FROM STDIN", nothing, true, "E 42P01 relation \"nosuch\" does not exist\n");
    EXPECT_COPY(s, "COPY c TO STDOUT", nothing, true,
                "E 0A000 COPY TO STDOUT is not supported on this connection\n"); /* no callbacks */
    EXPECT_COPY(s, "COPY c FROM '/etc/passwd'", nothing, true,
                "E 0A000 COPY FROM a file is not supported (use FROM STDIN)\n");
    EXPECT_COPY(s, "COPY c FROM STDIN WITH (FORMAT binary)", nothing, true,
                "E 0A000 COPY format must be text or csv\n");
    EXPECT_COPY(s, "SELECT 1; COPY c FROM STDIN", nothing, true,
                "D ?column?:20\nR 1\nC SELECT 1\nE 0A000 COPY FROM STDIN must be the only statement of its query string\n");
    sqlv_session_close(s);
    /* closing a session in the middle of a copy */
    s = session(&f);
    sqlv_session_set_copy_in(s, c_copy_in);
    assert_int_equal(sqlv_session_exec(s, q, strlen(q), &sink), SQLV_OK);
    assert_int_equal(sqlv_session_copy_data(s, none[0], strlen(none[0]), &sink), SQLV_OK);
    sqlv_session_close(s);
    base_buf_free(&c.out);
    close_all(&f);
}

static void test_session_like_limit(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE w (id int PRIMARY KEY, name text COLLATE \"C\")", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO w VALUES (1, 'Alpha'), (2, 'beta'), (3, 'ALPHABET'), (4, NULL), (5, 'a_c')",
           "C INSERT 0 5\n");
    EXPECT(s, "SELECT id FROM w WHERE name ILIKE 'alpha%' ORDER BY id", "D id:23\nR 1\nR 3\nC SELECT 2\n");
    EXPECT(s, "SELECT id FROM w WHERE name LIKE 'alpha%' ORDER BY id", "D id:23\nC SELECT 0\n");
    EXPECT(s, "SELECT id FROM w WHERE name NOT ILIKE '%L%' ORDER BY id", "D id:23\nR 2\nR 5\nC SELECT 2\n");
    EXPECT(s, "SELECT id FROM w WHERE name ILIKE 'A\\_C'", "D id:23\nR 5\nC SELECT 1\n");
    EXPECT(s, "SELECT 'ÀB' ILIKE '_b', NULL ILIKE 'a', 'abc' ILIKE 'a%c%'",
           "D ?column?:16,?column?:16,?column?:16\nR t|NULL|t\nC SELECT 1\n");
    EXPECT(s, "SELECT id FROM w ORDER BY id LIMIT ALL OFFSET 3", "D id:23\nR 4\nR 5\nC SELECT 2\n");
    EXPECT(s, "SELECT id FROM public.w ORDER BY id LIMIT ALL", "D id:23\nR 1\nR 2\nR 3\nR 4\nR 5\nC SELECT 5\n");
    EXPECT(s, "SELECT sum(x), count(*) FROM generate_series(1, 10) AS x", "D sum:20,count:20\nR 55|10\nC SELECT 1\n");
    EXPECT(s, "SELECT generate_series FROM generate_series(10, 1, -4)",
           "D generate_series:23\nR 10\nR 6\nR 2\nC SELECT 3\n");
    EXPECT(s, "SELECT count(*) FROM generate_series(9223372036854775806, 9223372036854775807, 5)",
           "D count:20\nR 1\nC SELECT 1\n");
    expect_error(s, "SELECT * FROM generate_series(1, 2, 0)", "22023");
    EXPECT(s, "CREATE TABLE acc (aid int not null, bid int, abalance int, filler char(84))", "C CREATE TABLE\n");
    EXPECT(s, "insert into acc(aid,bid,abalance,filler) select aid, (aid - 1) / 100 + 1, 0, '' from generate_series(1, 1000) as aid",
           "C INSERT 0 1000\n");
    EXPECT(s, "SELECT count(*), sum(aid), max(bid) FROM acc", "D count:20,sum:20,max:20\nR 1000|500500|10\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_session_prepared_cast(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    capture c;
    memset(&c, 0, sizeof(c));
    sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
    const char *q = "SELECT $1::int + 1, $2::text";
    assert_int_equal(sqlv_session_prepare(s, "p", q, strlen(q), 0, NULL, &sink), SQLV_OK);
    sqlv_cell vals[2] = {{"41", 2}, {"x", 1}};
    assert_int_equal(sqlv_session_bind(s, "", "p", 2, vals, 0, NULL, 0, NULL, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_execute(s, "", 0, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_sync(s, &sink), SQLV_OK);
    const char *pq = "SELECT 1 FROM other.t";
    assert_int_equal(sqlv_session_prepare(s, "", pq, strlen(pq), 0, NULL, &sink), SQLV_ERR_FAILED);
    assert_int_equal(sqlv_session_sync(s, &sink), SQLV_OK);
    base_buf_append_byte(&c.out, 0);
    const char *want = "R 42|x\nC SELECT 1\nE 3F000 schema \"other\" does not exist\n";
    if (strcmp((const char *)c.out.data, want) != 0) print_error("got:\n%s", (const char *)c.out.data);
    assert_string_equal((const char *)c.out.data, want);
    base_buf_free(&c.out);
    sqlv_session_close(s);
    close_all(&f);
}

/* SELECT DISTINCT ON (sql/distinct_on.c): the first row of each group in
** the ORDER BY's order, names and types as written, PostgreSQL's 42P10. */
static void test_session_distinct_on(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE dn (a INT, b INT, c TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO dn VALUES (1, 2, 'x'), (1, 1, 'y'), (2, 5, 'z'), (NULL, 3, 'n'), "
              "(NULL, 4, 'm'), (2, NULL, 'q')",
           "C INSERT 0 6\n");
    EXPECT(s, "SELECT DISTINCT ON (a) a, b, c FROM dn ORDER BY a, b",
           "D a:23,b:23,c:25\nR 1|1|y\nR 2|5|z\nR NULL|3|n\nC SELECT 3\n");
    /* DESC and NULLS: PostgreSQL's NULL placement picks the row */
    EXPECT(s, "SELECT DISTINCT ON (a) * FROM dn ORDER BY a DESC, b DESC",
           "D a:23,b:23,c:25\nR NULL|4|m\nR 2|NULL|q\nR 1|2|x\nC SELECT 3\n");
    EXPECT(s, "SELECT DISTINCT ON (a) c FROM dn ORDER BY a, b DESC NULLS LAST",
           "D c:25\nR x\nR z\nR m\nC SELECT 3\n");
    /* an alias, a position, an expression of the select list */
    EXPECT(s, "SELECT DISTINCT ON (x) a AS x, count(*) OVER () AS n FROM dn ORDER BY x, b LIMIT 2",
           "D x:23,n:20\nR 1|6\nR 2|6\nC SELECT 2\n");
    EXPECT(s, "SELECT DISTINCT ON (1) a + 1, b FROM dn WHERE b > 1 ORDER BY 1, 2 LIMIT 5 OFFSET 1",
           "D ?column?:20,b:23\nR 3|5\nR NULL|3\nC SELECT 2\n");
    EXPECT(s, "SELECT DISTINCT ON ((dn.a)) b FROM dn ORDER BY a, b",
           "D b:23\nR 1\nR 5\nR 3\nC SELECT 3\n");
    /* without ORDER BY: one row per group, sorted by the groups */
    EXPECT(s, "SELECT DISTINCT ON (a, b > 2) a FROM dn WHERE b IS NOT NULL",
           "D a:23\nR 1\nR 2\nR NULL\nC SELECT 3\n");
    expect_error(s, "SELECT DISTINCT ON (a) a, b FROM dn ORDER BY b", "42P10");
    expect_error(s, "SELECT DISTINCT ON (a) a, b FROM dn ORDER BY b, a", "42P10");
    expect_error(s, "SELECT DISTINCT ON (a + 0) a FROM dn ORDER BY a, b", "42P10");
    expect_error(s, "SELECT DISTINCT ON (a) a FROM dn ORDER BY 3", "42P10");
    expect_error(s, "SELECT DISTINCT ON (nope) a FROM dn", "42703");
    /* in a subquery, a WITH query (and after a WITH list), INSERT ... SELECT */
    EXPECT(s, "SELECT * FROM (SELECT DISTINCT ON (a) a, b FROM dn ORDER BY a, b) s ORDER BY b",
           "D a:23,b:23\nR 1|1\nR NULL|3\nR 2|5\nC SELECT 3\n");
    EXPECT(s, "WITH x AS (SELECT DISTINCT ON (a) * FROM dn ORDER BY a, b DESC) SELECT c FROM x "
              "ORDER BY c",
           "D c:25\nR m\nR q\nR x\nC SELECT 3\n");
    EXPECT(s, "WITH x AS (SELECT * FROM dn WHERE b > 1) SELECT DISTINCT ON (a) a, c FROM x "
              "ORDER BY a, b",
           "D a:23,c:25\nR 1|x\nR 2|z\nR NULL|n\nC SELECT 3\n");
    EXPECT(s, "SELECT d1.c, (SELECT z.c FROM (SELECT DISTINCT ON (a) a, c FROM dn d2 "
              "WHERE d2.a = d1.a ORDER BY a, b DESC) z) AS top FROM dn d1 WHERE b = 1",
           "D c:25,top:25\nR y|x\nC SELECT 1\n");
    EXPECT(s, "CREATE TABLE dn2 (a INT, c TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO dn2 SELECT DISTINCT ON (a) a, c FROM dn ORDER BY a, b",
           "C INSERT 0 3\n");
    EXPECT(s, "SELECT a, c FROM dn2 ORDER BY a", "D a:23,c:25\nR NULL|n\nR 1|y\nR 2|z\nC SELECT 3\n");
    /* a branch of UNION: SELECT * FROM (the rewrite); the ORDER BY is the compound's */
    EXPECT(s, "SELECT DISTINCT ON (a) a FROM dn WHERE a IS NOT NULL UNION SELECT 7 ORDER BY 1",
           "D a:23\nR 1\nR 2\nR 7\nC SELECT 3\n");
    EXPECT(s, "SELECT 7 AS a UNION ALL SELECT DISTINCT ON (a) a FROM dn WHERE a > 1 ORDER BY 1",
           "D a:20\nR 2\nR 7\nC SELECT 2\n");
    exec_ok(s, "EXPLAIN SELECT DISTINCT ON (a) a FROM dn ORDER BY a");
    /* the extended protocol */
    capture c;
    memset(&c, 0, sizeof(c));
    sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
    const char *q = "SELECT DISTINCT ON (a) a, c FROM dn WHERE b >= $1 ORDER BY a, b";
    assert_int_equal(sqlv_session_prepare(s, "d", q, strlen(q), 0, NULL, &sink), SQLV_OK);
    sqlv_cell vals[1] = {{"2", 1}};
    assert_int_equal(sqlv_session_bind(s, "", "d", 1, vals, 0, NULL, 0, NULL, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_execute(s, "", 0, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_sync(s, &sink), SQLV_OK);
    base_buf_append_byte(&c.out, 0);
    const char *want = "R 1|x\nR 2|z\nR NULL|n\nC SELECT 3\n";
    if (strcmp((const char *)c.out.data, want) != 0) print_error("got:\n%s", (const char *)c.out.data);
    assert_string_equal((const char *)c.out.data, want);
    base_buf_free(&c.out);
    sqlv_session_close(s);
    close_all(&f);
}

int main(void) {
    base_log_set_level(BASE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrite_casts),
        cmocka_unit_test(test_rewrite_names_and_clauses),
        cmocka_unit_test(test_rewrite_catalog_constructs),
        cmocka_unit_test(test_rewrite_soup),
        cmocka_unit_test(test_session_settings),
        cmocka_unit_test(test_session_transactions),
        cmocka_unit_test(test_session_functions),
        cmocka_unit_test(test_session_pgbench_ddl),
        cmocka_unit_test(test_session_add_primary_key),
        cmocka_unit_test(test_session_copy),
        cmocka_unit_test(test_session_like_limit),
        cmocka_unit_test(test_session_prepared_cast),
        cmocka_unit_test(test_session_distinct_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
