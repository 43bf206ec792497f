/*
** tests/sql/test_strfuncs.c: PostgreSQL's string, regular-expression and
** JSON functions (sql/strfuncs.c) and the syntax the dialect rewriter turns
** into them (sql/dialect.c: substring/trim FROM, left/right, SIMILAR TO, ^,
** OFFSET/FETCH, generate_series in a select list, the refused constructs),
** with PostgreSQL's results. The transcript format is test_sql.c's.
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

#include "base/base.h"
#include "sql/sql.h"
#include "sql/sql_dialect.h"
#include "tests/sql/sql_harness.h"

static void test_rewrite_strings(void **state) {
    (void)state;
    expect_rewrite("SELECT substring('abc' from 2 for 1)", "SELECT substring('abc', 2, 1)");
    expect_rewrite("SELECT substring(a FROM 2)", "SELECT substring(a, 2)");
    expect_rewrite("SELECT substring(a for 2)", "SELECT substring(a, 1, 2)");
    expect_rewrite("SELECT substring(a for 2 from 3)", "SELECT substring(a, 3, 2)");
    expect_rewrite("SELECT substring(a, 1, 2)", "SELECT substring(a, 1, 2)");
    expect_rewrite("SELECT trim(both 'x' from 'xax')", "SELECT btrim('xax', 'x')");
    expect_rewrite("SELECT trim(leading from a), trim(trailing 'y' from t.b)",
                   "SELECT ltrim(a), rtrim(t.b, 'y')");
    expect_rewrite("SELECT trim('x' from a || 'b')", "SELECT btrim(a || 'b', 'x')");
    expect_rewrite("SELECT trim(a), trim(a, 'x')", "SELECT trim(a), trim(a, 'x')");
    expect_rewrite("SELECT trim(both from trim(leading 'x' from a))",
                   "SELECT btrim(ltrim(a, 'x'))");
    expect_rewrite("SELECT left('abc', 2), right(a, -1) FROM t LEFT JOIN u ON true",
                   "SELECT \"left\"('abc', 2), \"right\"(a, -1) FROM t LEFT JOIN u ON true");
}

static void test_rewrite_operators_and_clauses(void **state) {
    (void)state;
    expect_rewrite("SELECT 2^3", "SELECT (power(2,3))");
    expect_rewrite("SELECT 2 ^ 3 ^ 2, a * b ^ -c::int",
                   "SELECT (power((power(2, 3)), 2)), a * (power(b, -CAST(c AS INTEGER)))");
    expect_rewrite("SELECT f(x) ^ (1 + 1)", "SELECT (power(f(x), (1 + 1)))");
    expect_rewrite("SELECT a SIMILAR TO 'a%'", "SELECT a REGEXP meridian_similar('a%')");
    expect_rewrite("SELECT a NOT SIMILAR TO b ESCAPE '#' AND c",
                   "SELECT a NOT REGEXP meridian_similar(b, '#') AND c");
    expect_rewrite("SELECT 1 FETCH FIRST 1 ROWS ONLY", "SELECT 1 LIMIT 1");
    expect_rewrite("SELECT a FROM t ORDER BY a FETCH NEXT ROW ONLY",
                   "SELECT a FROM t ORDER BY a LIMIT 1");
    expect_rewrite("SELECT a FROM t FETCH FIRST $1 ROWS ONLY", "SELECT a FROM t LIMIT $1");
    expect_rewrite("SELECT 1 OFFSET 0 ROWS", "SELECT 1 LIMIT -1 OFFSET 0");
    expect_rewrite("SELECT a FROM t OFFSET 2 ROWS FETCH FIRST 3 ROWS ONLY",
                   "SELECT a FROM t LIMIT 3 OFFSET 2");
    expect_rewrite("SELECT a FROM t OFFSET 2 LIMIT 3", "SELECT a FROM t LIMIT 3 OFFSET 2");
    expect_rewrite("SELECT a FROM t LIMIT 3 OFFSET 2", "SELECT a FROM t LIMIT 3 OFFSET 2");
    expect_rewrite("SELECT (SELECT a FROM t OFFSET 1) FROM u LIMIT 1",
                   "SELECT (SELECT a FROM t LIMIT -1 OFFSET 1) FROM u LIMIT 1");
    expect_rewrite("CREATE TABLE t (id int, offset int)", "CREATE TABLE t (id int, offset int)");
    expect_rewrite("SELECT generate_series(1,3)",
                   "SELECT generate_series FROM (SELECT value AS generate_series FROM "
                   "meridian_series(1,3)) AS generate_series");
    expect_rewrite("SELECT generate_series(1, 5, 2) * 2 AS x ORDER BY 1",
                   "SELECT generate_series * 2 AS x FROM (SELECT value AS generate_series FROM "
                   "meridian_series(1, 5, 2)) AS generate_series ORDER BY 1");
    expect_rewrite("INSERT INTO t (a) SELECT generate_series(1, 2)",
                   "INSERT INTO t (a) SELECT generate_series FROM (SELECT value AS generate_series "
                   "FROM meridian_series(1, 2)) AS generate_series");
    expect_rewrite("SELECT (SELECT generate_series(1, 2) FROM t)",
                   "SELECT (SELECT generate_series(1, 2) FROM t)");
    expect_rewrite("SELECT t.a, lateral_col FROM t, LATERAL generate_series(1, 2) g",
                   "SELECT t.a, lateral_col FROM t, (SELECT value AS g FROM "
                   "meridian_series(1, 2)) AS g");
    expect_rejected("SELECT generate_series(1,2), generate_series(1,3)", "0A000",
                    "set-returning");
    expect_rejected("SELECT * FROM t TABLESAMPLE system(10)", "0A000", "TABLESAMPLE");
    expect_rejected("SELECT * FROM t, LATERAL (SELECT 1) x", "0A000", "LATERAL");
    expect_rejected("CLUSTER t", "0A000", "CLUSTER");
    expect_rejected("SELECT a, count(*) FROM t GROUP BY ROLLUP (a)", "0A000", "ROLLUP");
    expect_rejected("SELECT a FROM t GROUP BY GROUPING SETS ((a), ())", "0A000", "GROUPING SETS");
    expect_rejected("SELECT a FROM t ORDER BY a FETCH FIRST 2 ROWS WITH TIES", "0A000", "TIES");
}

/* Every prefix of these statements (cut constructs, unbalanced
** parentheses) is rewritten or rejected, never read past its end. */
static void test_rewrite_prefixes(void **state) {
    (void)state;
    static const char *const stmts[] = {
        "SELECT substring(a for 2 from 3), trim(both 'x' from trim(leading from b))",
        "SELECT a NOT SIMILAR TO b ESCAPE '#', 2 ^ -(3)::int ^ f(x)",
        "SELECT a FROM t ORDER BY a OFFSET 2 ROWS FETCH FIRST (1 + 1) ROWS ONLY",
        "INSERT INTO t SELECT generate_series(1, 3) * 2 AS x WHERE true ORDER BY 1",
        "SELECT left(a, 1) FROM t, LATERAL generate_series(1, 2) g OFFSET 1 LIMIT 1",
    };
    for (size_t k = 0; k < sizeof(stmts) / sizeof(stmts[0]); k++) {
        for (size_t n = 0; n <= strlen(stmts[k]); n++) {
            char *cut = malloc(n + 1); /* exactly n bytes for ASan, and a NUL */
            assert_non_null(cut);
            memcpy(cut, stmts[k], n);
            cut[n] = 0;
            sqlv__rewrite rw;
            int rc = sqlv__dialect_rewrite(cut, n, &rw);
            assert_true(rc == 0 || rc == 1);
            base_free(rw.text);
            free(cut);
        }
    }
}

static void test_string_functions(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "SELECT substring('abc' from 2 for 1), trim(both 'x' from 'xax'), left('abc',2), right('abc',2)",
           "D substring:25,btrim:25,left:25,right:25\nR b|a|ab|bc\nC SELECT 1\n");
    EXPECT_ROWS(s, "SELECT substring('héllo' from 2 for 3), substring('abc' from 0 for 2), substring('abc' from -1 for 3), substring('abc' from 5)",
                "R éll|a|a|\n");
    EXPECT_ROWS(s, "SELECT substring('foobar' from 'o.b'), substring('foobar' from 'o(.)b'), substring('foobar' from 'x')",
                "R oob|o|NULL\n");
    EXPECT_ROWS(s, "SELECT left('héllo', -2), right('héllo', -2), left(NULL, 1)", "R hél|llo|NULL\n");
    EXPECT_ROWS(s, "SELECT split_part('a,b,c', ',', 2), split_part('a,b,c', ',', -1), split_part('a,b', ',', 5), split_part('abc', '', 1)",
                "R b|c||abc\n");
    expect_error(s, "SELECT split_part('a,b', ',', 0)", "22023");
    EXPECT_ROWS(s, "SELECT lpad('hi', 5, 'xy'), rpad('hi', 5, 'xy'), lpad('hello', 2), rpad('é', 3), lpad('x', -1)",
                "R xyxhi|hixyx|he|é  |\n");
    EXPECT_ROWS(s, "SELECT repeat('ab', 3), repeat('x', 0), reverse('héllo'), initcap('hi THOMAS o''neil')",
                "R ababab||olléh|Hi Thomas O'Neil\n");
    expect_error(s, "SELECT repeat('x', 2000000000)", "54000");
    EXPECT_ROWS(s, "SELECT concat('a', NULL, 1, 2.5), concat_ws('-', 'a', NULL, 'b'), concat_ws(NULL, 'a'), concat()",
                "R a12.5|a-b|NULL|\n");
    EXPECT_ROWS(s, "SELECT strpos('héllo', 'l'), strpos('abc', 'x'), md5('abc'), md5(''), chr(233), ascii('é')",
                "R 3|0|900150983cd24fb0d6963f7d28e17f72|d41d8cd98f00b204e9800998ecf8427e|é|233\n");
    EXPECT_ROWS(s, "SELECT md5(repeat('a', 100))", "R 36a92cc94a9e0fa21f625f8bfb007adf\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_regex_and_operators(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT_ROWS(s, "SELECT 'abc' ~ 'b', 'abc' ~* 'B', 'abc' !~ 'b', 'abc' !~* 'X'", "R t|t|f|t\n");
    EXPECT_ROWS(s, "SELECT 'abc' SIMILAR TO 'a%', 'abc' SIMILAR TO 'b%', 'abc' NOT SIMILAR TO '(a|x)bc', 'a.c' SIMILAR TO 'a#.c' ESCAPE '#', 'abc' SIMILAR TO 'a.c'",
                "R t|f|f|t|f\n");
    EXPECT_ROWS(s, "SELECT regexp_replace('foobarbaz', 'b..', 'X'), regexp_replace('foobarbaz', 'b(.)(.)', '<\\2\\1>', 'g'), regexp_replace('ABC', 'b', 'x', 'i'), regexp_replace('abc', '', '-', 'g')",
                "R fooXbaz|foo<ra><za>|AxC|-a-b-c-\n");
    expect_error(s, "SELECT regexp_replace('a', 'a', 'b', 'q')", "22023");
    expect_error(s, "SELECT regexp_replace('a', '(', 'b')", "2201B");
    EXPECT(s, "SELECT 2^3, 2^3^2, 2 * 3 ^ 2", "D ?column?:701,?column?:701,?column?:701\nR 8|64|18\nC SELECT 1\n");
    EXPECT(s, "SELECT true and 'yes'::boolean, true, not true or false",
           "D ?column?:16,bool:16,?column?:16\nR t|t|f\nC SELECT 1\n");
    EXPECT_ROWS(s, "SELECT greatest(1, NULL, 3, 2), least(NULL, 'b', 'a'), greatest(NULL, NULL), greatest(1, '2'), least(1.5, 2)",
                "R 3|a|NULL|2|1.5\n");
    EXPECT_ROWS(s, "SELECT pg_typeof(1), pg_typeof('a'::text), pg_typeof(1.5), pg_typeof(NULL), pg_typeof(5000000000)",
                "R integer|text|double precision|unknown|bigint\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_json_and_clauses(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    exec_ok(s, "CREATE TABLE sf_items (id INT PRIMARY KEY, name TEXT, qty INT)");
    exec_ok(s, "INSERT INTO sf_items VALUES (1, 'a\"b', 2), (2, NULL, 3), (3, 'c', NULL)");
    EXPECT_ROWS(s, "SELECT json_agg(name), jsonb_agg(qty) FROM (SELECT * FROM sf_items ORDER BY id) s",
                "R [\"a\\\"b\", null, \"c\"]|[2, 3, null]\n");
    EXPECT_ROWS(s, "SELECT json_agg(id) FROM sf_items WHERE id > 5", "R NULL\n");
    EXPECT_ROWS(s, "SELECT json_build_object('a', 1, 'b', 'x', 'c', NULL), jsonb_build_object('a', 1, 'n', json_build_object('k', 2.5))",
                "R {\"a\" : 1, \"b\" : \"x\", \"c\" : null}|{\"a\": 1, \"n\": {\"k\" : 2.5}}\n");
    EXPECT_ROWS(s, "SELECT to_json('a\nb'::text), to_json(1), json_build_array(1, 'x', json_build_array())",
                "R \"a\\nb\"|1|[1, \"x\", []]\n");
    expect_error(s, "SELECT json_build_object('a')", "22023");
    expect_error(s, "SELECT json_build_object(NULL, 1)", "22004");
    /* FETCH FIRST / OFFSET ROWS (Hibernate 6) */
    EXPECT_ROWS(s, "SELECT id FROM sf_items ORDER BY id OFFSET 1 ROWS FETCH FIRST 1 ROWS ONLY", "R 2\n");
    EXPECT_ROWS(s, "SELECT id FROM sf_items ORDER BY id OFFSET 2 ROWS", "R 3\n");
    EXPECT_ROWS(s, "SELECT 1 FETCH FIRST 1 ROWS ONLY", "R 1\n");
    EXPECT_ROWS(s, "SELECT 1 OFFSET 0 ROWS", "R 1\n");
    /* generate_series in the select list */
    EXPECT(s, "SELECT generate_series(1,3)",
           "D generate_series:23\nR 1\nR 2\nR 3\nC SELECT 3\n");
    EXPECT_ROWS(s, "SELECT generate_series(1, 10, 4) * 2 AS x ORDER BY x DESC", "R 18\nR 10\nR 2\n");
    exec_ok(s, "INSERT INTO sf_items (id, name) SELECT generate_series(10, 12), 'gen'");
    EXPECT_ROWS(s, "SELECT count(*), min(id), max(id) FROM sf_items WHERE name = 'gen'", "R 3|10|12\n");
    expect_error(s, "SELECT generate_series(1,2), generate_series(1,3)", "0A000");
    expect_error(s, "SELECT * FROM sf_items TABLESAMPLE system(10)", "0A000");
    expect_error(s, "SELECT * FROM sf_items, LATERAL (SELECT 1) x", "0A000");
    expect_error(s, "CLUSTER sf_items", "0A000");
    sqlv_session_close(s);
    close_all(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrite_strings),
        cmocka_unit_test(test_rewrite_operators_and_clauses),
        cmocka_unit_test(test_rewrite_prefixes),
        cmocka_unit_test(test_string_functions),
        cmocka_unit_test(test_regex_and_operators),
        cmocka_unit_test(test_json_and_clauses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
