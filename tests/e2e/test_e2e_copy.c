/*
** End-to-end: COPY FROM STDIN against one real `meridian start --insecure`
** process, driven by psql's \copy (text and CSV with HEADER, a bad file
** that inserts nothing, a few thousand rows) and libpq copy-in; and COPY
** TO STDOUT: psql's \copy to a file and back with \copy from, files equal,
** in text and in CSV with quotes, NULLs, a delimiter and a NULL string.
*/
#include "tests/e2e/e2e_util.h"

#define E2E_CMD_TIMEOUT_MS (60 * 1000)

/* Write text to <e2e_node.dir>/name; path gets the full name. */
static void write_file(const char *name, const char *text, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", e2e_node.dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* psql -X -c cmd; returns the exit status, *out the stdout (owner: caller). */
static int psql(const char *cmd, char **out) {
    const char *argv[] = {"psql", "-X", "-v", "ON_ERROR_STOP=1", e2e_node.url, "-c", cmd, NULL};
    char *err = NULL;
    int st = mtest_run(argv, NULL, E2E_CMD_TIMEOUT_MS, out, &err);
    if (st != 0) fprintf(stderr, "psql %s: exit %d\n%s\n", cmd, st, err ? err : "");
    base_free(err);
    return st;
}

static void test_psql_copy_text_and_csv(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE people (id INT PRIMARY KEY, name TEXT, age INT)");
    char path[MTEST_PATH_MAX + 64], cmd[2 * MTEST_PATH_MAX];
    write_file("people.txt", "1\tada\t36\n2\tbob\t\\N\n3\tcarol\\tx\t41\n", path, sizeof path);
    snprintf(cmd, sizeof cmd, "\\copy people FROM '%s'", path);
    char *out = NULL;
    assert_int_equal(psql(cmd, &out), 0);
    assert_non_null(strstr(out, "COPY 3"));
    base_free(out);
    write_file("people.csv", "id,name,age\n4,\"dan, jr\",5\n5,\"say \"\"hi\"\"\",\n", path,
               sizeof path);
    snprintf(cmd, sizeof cmd, "\\copy people FROM '%s' WITH (FORMAT csv, HEADER)", path);
    assert_int_equal(psql(cmd, &out), 0);
    assert_non_null(strstr(out, "COPY 2"));
    base_free(out);
    e2e_rows_equal(c, "SELECT id, name, age FROM people ORDER BY id",
                   "1|ada|36\n2|bob|NULL\n3|carol\tx|41\n4|dan, jr|5\n5|say \"hi\"|NULL\n");
    PQfinish(c);
}

static void test_psql_copy_bad_file(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE bad_copy (id INT PRIMARY KEY, v INT)");
    char path[MTEST_PATH_MAX + 64], cmd[2 * MTEST_PATH_MAX];
    write_file("bad.txt", "1\t10\n2\t20\n3\t30\textra\n4\t40\n", path, sizeof path);
    snprintf(cmd, sizeof cmd, "\\copy bad_copy FROM '%s'", path);
    char *out = NULL;
    assert_int_not_equal(psql(cmd, &out), 0);
    base_free(out);
    e2e_rows_equal(c, "SELECT count(*) FROM bad_copy", "0\n");
    PQfinish(c);
}

static void test_psql_copy_many_rows(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE many (id INT PRIMARY KEY, filler TEXT)");
    base_buf text = {0};
    for (int i = 1; i <= 5000; i++)
        assert_int_equal(base_buf_printf(&text, "%d\trow number %d\n", i, i), 0);
    assert_int_equal(base_buf_append_byte(&text, 0), 0);
    char path[MTEST_PATH_MAX + 64], cmd[2 * MTEST_PATH_MAX];
    write_file("many.txt", (const char *)text.data, path, sizeof path);
    base_buf_free(&text);
    snprintf(cmd, sizeof cmd, "\\copy many FROM '%s'", path);
    char *out = NULL;
    assert_int_equal(psql(cmd, &out), 0);
    assert_non_null(strstr(out, "COPY 5000"));
    base_free(out);
    e2e_rows_equal(c, "SELECT count(*), sum(id) FROM many", "5000|12502500\n");
    PQfinish(c);
}

static void test_libpq_copy_fail(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE lib_copy (id INT PRIMARY KEY)");
    PGresult *r = e2e_exec_status(c, "COPY lib_copy FROM STDIN", PGRES_COPY_IN);
    PQclear(r);
    assert_int_equal(PQputCopyData(c, "1\n2\n", 4), 1);
    assert_int_equal(PQputCopyEnd(c, "changed my mind"), 1);
    r = PQgetResult(c);
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "57014");
    PQclear(r);
    while ((r = PQgetResult(c)) != NULL) PQclear(r);
    e2e_rows_equal(c, "SELECT count(*) FROM lib_copy", "0\n");
    /* COPY FROM STDIN must be alone in its query string */
    e2e_fails(c, "COPY lib_copy FROM STDIN; SELECT 1", "0A000");
    e2e_rows_equal(c, "SELECT count(*) FROM lib_copy", "0\n");
    PQfinish(c);
}

/* The whole of a file (owner: caller, base_free). */
static char *read_file(const char *path) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    base_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) assert_int_equal(base_buf_append(&b, chunk, n), 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(base_buf_append_byte(&b, 0), 0);
    return (char *)b.data;
}

/* \copy src to a file with opts, \copy it into dst, \copy dst out again:
** the two files are equal; returns the first (owner: caller, base_free). */
static char *round_trip(const char *src, const char *dst, const char *opts, const char *name) {
    char a[MTEST_PATH_MAX + 64], b[MTEST_PATH_MAX + 64], cmd[3 * MTEST_PATH_MAX];
    char *out = NULL;
    snprintf(a, sizeof a, "%s/%s.a", e2e_node.dir, name);
    snprintf(b, sizeof b, "%s/%s.b", e2e_node.dir, name);
    snprintf(cmd, sizeof cmd, "\\copy %s TO '%s' %s", src, a, opts);
    assert_int_equal(psql(cmd, &out), 0);
    assert_non_null(strstr(out, "COPY "));
    base_free(out);
    snprintf(cmd, sizeof cmd, "\\copy %s FROM '%s' %s", dst, a, opts);
    assert_int_equal(psql(cmd, &out), 0);
    base_free(out);
    snprintf(cmd, sizeof cmd, "\\copy %s TO '%s' %s", dst, b, opts);
    assert_int_equal(psql(cmd, &out), 0);
    base_free(out);
    char *fa = read_file(a), *fb = read_file(b);
    if (strcmp(fa, fb) != 0) print_error("%s differs from %s:\n%s\n---\n%s\n", a, b, fa, fb);
    assert_string_equal(fa, fb);
    base_free(fb);
    return fa;
}

static void test_psql_copy_to_and_back(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE src (id INT PRIMARY KEY, name TEXT, score FLOAT, ok BOOLEAN)");
    e2e_ok(c, "INSERT INTO src VALUES (1, 'plain', 1.5, true), (2, 'comma, inside', NULL, false), "
              "(3, 'say \"hi\"', -2, NULL), (4, E'tab\\there', 0, true), (5, '', 3.25, false), "
              "(6, E'line\\nbreak', 7, true), (7, 'semi;colon', 8, false), (8, NULL, 9, true)");
    e2e_ok(c, "CREATE TABLE dst_text (id INT PRIMARY KEY, name TEXT, score FLOAT, ok BOOLEAN)");
    e2e_ok(c, "CREATE TABLE dst_csv (id INT PRIMARY KEY, name TEXT, score FLOAT, ok BOOLEAN)");
    e2e_ok(c, "CREATE TABLE dst_semi (id INT PRIMARY KEY, name TEXT, score FLOAT, ok BOOLEAN)");
    char *t = round_trip("src", "dst_text", "", "text");
    assert_non_null(strstr(t, "2\tcomma, inside\t\\N\tf\n"));
    assert_non_null(strstr(t, "4\ttab\\there\t0\tt\n"));
    base_free(t);
    t = round_trip("src", "dst_csv", "WITH (FORMAT csv, HEADER)", "csv");
    assert_non_null(strstr(t, "id,name,score,ok\n"));
    assert_non_null(strstr(t, "2,\"comma, inside\",,f\n"));
    assert_non_null(strstr(t, "3,\"say \"\"hi\"\"\",-2,\n"));
    assert_non_null(strstr(t, "5,\"\",3.25,f\n")); /* empty string: quoted; NULL: bare */
    assert_non_null(strstr(t, "8,,9,t\n"));
    base_free(t);
    t = round_trip("src", "dst_semi", "CSV HEADER DELIMITER ';' NULL 'NIL'", "semi");
    assert_non_null(strstr(t, "7;\"semi;colon\";8;f\n"));
    assert_non_null(strstr(t, "8;NIL;9;t\n"));
    base_free(t);
    char *want = e2e_rows(c, "SELECT * FROM src ORDER BY id");
    e2e_rows_equal(c, "SELECT * FROM dst_text ORDER BY id", want);
    e2e_rows_equal(c, "SELECT * FROM dst_csv ORDER BY id", want);
    e2e_rows_equal(c, "SELECT * FROM dst_semi ORDER BY id", want);
    base_free(want);
    /* a query's rows */
    char path[MTEST_PATH_MAX + 64], cmd[2 * MTEST_PATH_MAX];
    char *out = NULL;
    snprintf(path, sizeof path, "%s/query.csv", e2e_node.dir);
    snprintf(cmd, sizeof cmd, "\\copy (SELECT id, name FROM src WHERE id <= 2 ORDER BY id) TO '%s' CSV",
             path);
    assert_int_equal(psql(cmd, &out), 0);
    assert_non_null(strstr(out, "COPY 2"));
    base_free(out);
    t = read_file(path);
    assert_string_equal(t, "1,plain\n2,\"comma, inside\"\n");
    base_free(t);
    PQfinish(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_psql_copy_text_and_csv),
        cmocka_unit_test(test_psql_copy_bad_file),
        cmocka_unit_test(test_psql_copy_many_rows),
        cmocka_unit_test(test_libpq_copy_fail),
        cmocka_unit_test(test_psql_copy_to_and_back),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup, e2e_group_teardown);
}
