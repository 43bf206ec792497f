/*
** Unit tests for the pure parts of the `meridian` binary: duration and
** address parsing, the shell's statement splitter, the psql-like table
** output. No node is started here.
*/
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/cli_int.h"

static void test_durations(void **state) {
    (void)state;
    int64_t v;
    assert_int_equal(cli_parse_duration_ns("250ms", &v), 0);
    assert_int_equal(v, 250000000LL);
    assert_int_equal(cli_parse_duration_ns("1s", &v), 0);
    assert_int_equal(v, 1000000000LL);
    assert_int_equal(cli_parse_duration_ns("1.5s", &v), 0);
    assert_int_equal(v, 1500000000LL);
    assert_int_equal(cli_parse_duration_ns("500", &v), 0); /* bare: ms */
    assert_int_equal(v, 500000000LL);
    assert_int_equal(cli_parse_duration_ns("-300ms", &v), 0);
    assert_int_equal(v, -300000000LL);
    assert_int_equal(cli_parse_duration_ns("10us", &v), 0);
    assert_int_equal(v, 10000);
    assert_int_equal(cli_parse_duration_ns("7ns", &v), 0);
    assert_int_equal(v, 7);
    v = 42;
    const char *bad[] = {"", "ms", "abc", "1x", "1 s", " 1s", "inf", "1e400s", "0x10ms", "s1"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(bad); i++) {
        assert_int_equal(cli_parse_duration_ns(bad[i], &v), -1);
        assert_int_equal(v, 42);
    }
}

static void test_hostport(void **state) {
    (void)state;
    char h[CLI_HOST_SIZE_MAX];
    int p;
    assert_int_equal(cli_parse_hostport("127.0.0.1:5432", "x", 1, h, &p), 0);
    assert_string_equal(h, "127.0.0.1");
    assert_int_equal(p, 5432);
    assert_int_equal(cli_parse_hostport(":0", "localhost", 1, h, &p), 0);
    assert_string_equal(h, "localhost");
    assert_int_equal(p, 0);
    assert_int_equal(cli_parse_hostport("db.example", "x", 26257, h, &p), 0);
    assert_string_equal(h, "db.example");
    assert_int_equal(p, 26257);
    assert_int_equal(cli_parse_hostport("[::1]:99", "x", 1, h, &p), 0);
    assert_string_equal(h, "::1");
    assert_int_equal(p, 99);
    const char *bad[] = {"", "h:", "h:65536", "h:-1", "h:12a", "::1:5", "[::1", "[]:5",
                         "a b:5", "[::1]x"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(bad); i++)
        assert_int_equal(cli_parse_hostport(bad[i], "x", 1, h, &p), -1);
}

/* Push text in pieces of `chunk` bytes, collect statements joined by '\n'. */
static char *split_all(const char *text, size_t chunk) {
    cli_splitter s;
    cli_splitter_init(&s);
    base_buf out = {0};
    size_t len = strlen(text);
    char *stmt;
    for (size_t i = 0; i < len; i += chunk) {
        size_t n = BASE_MIN(chunk, len - i);
        assert_int_equal(cli_splitter_push(&s, text + i, n), 0);
        while (cli_splitter_next(&s, &stmt) == 1) {
            base_buf_printf(&out, "[%s]", stmt);
            base_free(stmt);
        }
    }
    while (cli_splitter_finish(&s, &stmt) == 1) {
        base_buf_printf(&out, "<%s>", stmt);
        base_free(stmt);
    }
    assert_false(cli_splitter_pending(&s));
    cli_splitter_free(&s);
    base_buf_append_byte(&out, 0);
    return (char *)out.data;
}

static void check_split(const char *text, const char *want) {
    size_t len = strlen(text);
    for (size_t chunk = 1; chunk <= len + 1; chunk++) {
        char *got = split_all(text, chunk);
        if (strcmp(got, want) != 0) {
            print_error("input %s chunk %zu: got %s want %s\n", text, chunk, got, want);
            base_free(got);
            fail();
        }
        base_free(got);
    }
}

static void test_join_list(void **state) {
    (void)state;
    srv_addr a[SRV_JOIN_ADDRS_MAX];
    size_t n = 99;
    assert_int_equal(cli_parse_join_list("127.0.0.1:1,127.0.0.1:2,[::1]:3,host4", 26257, a,
                                         SRV_JOIN_ADDRS_MAX, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(a[0].host, "127.0.0.1");
    assert_int_equal(a[1].port, 2);
    assert_string_equal(a[2].host, "::1");
    assert_int_equal(a[2].port, 3);
    assert_string_equal(a[3].host, "host4");
    assert_int_equal(a[3].port, 26257);
    assert_int_equal(cli_parse_join_list(":7", 26257, a, SRV_JOIN_ADDRS_MAX, &n), 0);
    assert_string_equal(a[0].host, "127.0.0.1");
    assert_int_equal(a[0].port, 7);
    /* Refused, and the outputs left alone. */
    n = 99;
    const char *bad[] = {"", ",", "a:1,", ",a:1", "a:1,,b:2", "a:1,a:1", "a:0", "a:99999",
                         "a b:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cli_parse_join_list(bad[i], 26257, a, SRV_JOIN_ADDRS_MAX, &n), -1);
    assert_int_equal(n, 99);
    assert_int_equal(cli_parse_join_list("a:1,b:2,c:3", 26257, a, 2, &n), -1); /* over max */
    char dir[256];
    cli_demo_default_dir(dir, sizeof dir);
    assert_true(strstr(dir, "demo") != NULL);
}

static void test_splitter(void **state) {
    (void)state;
    check_split("SELECT 1;", "[SELECT 1;]");
    check_split("  SELECT 1 ;  SELECT 2;\n", "[SELECT 1 ;][SELECT 2;]");
    check_split("BEGIN; UPDATE t SET a = 1; COMMIT;", "[BEGIN;][UPDATE t SET a = 1;][COMMIT;]");
    check_split("SELECT 'a;b', \"c;d\";", "[SELECT 'a;b', \"c;d\";]");
    check_split("SELECT 'it''s;';", "[SELECT 'it''s;';]");
    check_split("SELECT E'x\\';y';", "[SELECT E'x\\';y';]");
    check_split("SELECT 1 -- not; here\n;", "[SELECT 1 -- not; here\n;]");
    check_split("SELECT /* a; /* nested; */ b; */ 1;", "[SELECT /* a; /* nested; */ b; */ 1;]");
    check_split("SELECT $$a;b$$, $tag$ $$; $tag$;", "[SELECT $$a;b$$, $tag$ $$; $tag$;]");
    check_split("SELECT a$b; SELECT $1;", "[SELECT a$b;][SELECT $1;]");
    check_split(";;  ; -- only comments;\n /* x; */ ;", "");
    check_split("SELECT 1; SELECT 2", "[SELECT 1;]<SELECT 2>");
    check_split("SELECT 'unterminated;", "<SELECT 'unterminated;>");
    check_split("SELECT 1 - 2 / 3;", "[SELECT 1 - 2 / 3;]");
    check_split("-", "<->");
}

static void test_splitter_pending(void **state) {
    (void)state;
    cli_splitter s;
    cli_splitter_init(&s);
    char *stmt = NULL;
    assert_false(cli_splitter_pending(&s));
    assert_int_equal(cli_splitter_push(&s, "-- hello\n", 9), 0);
    assert_int_equal(cli_splitter_next(&s, &stmt), 0);
    assert_false(cli_splitter_pending(&s));
    assert_int_equal(cli_splitter_push(&s, "SELECT\n", 7), 0);
    assert_int_equal(cli_splitter_next(&s, &stmt), 0);
    assert_true(cli_splitter_pending(&s));
    assert_int_equal(cli_splitter_push(&s, "'a\n", 3), 0);
    assert_int_equal(cli_splitter_next(&s, &stmt), 0);
    assert_int_equal(cli_splitter_push(&s, "b';\n", 4), 0);
    assert_int_equal(cli_splitter_next(&s, &stmt), 1);
    assert_string_equal(stmt, "SELECT\n'a\nb';");
    base_free(stmt);
    assert_false(cli_splitter_pending(&s));
    assert_int_equal(cli_splitter_push(&s, "/* open\n", 8), 0);
    assert_int_equal(cli_splitter_next(&s, &stmt), 0);
    assert_true(cli_splitter_pending(&s));
    cli_splitter_reset(&s);
    assert_false(cli_splitter_pending(&s));
    cli_splitter_free(&s);
}

static void test_splitter_oom(void **state) {
    (void)state;
    for (long k = 0; k < 4; k++) {
        cli_splitter s;
        cli_splitter_init(&s);
        char *stmt = NULL;
        base_alloc_fail_after(k);
        int rc = cli_splitter_push(&s, "SELECT 1; SELECT 2;", 19);
        int n = 0;
        if (rc == 0) {
            while ((rc = cli_splitter_next(&s, &stmt)) == 1) {
                base_free(stmt);
                n++;
            }
        }
        base_alloc_fail_after(-1);
        assert_true(rc == 0 || rc == -ENOMEM);
        cli_splitter_free(&s);
    }
}

static PGresult *make_result(int ncols, const char *const *names, const Oid *types, int nrows,
                             const char *const *cells /* row-major, NULL = SQL NULL */) {
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    assert_non_null(r);
    PGresAttDesc att[8];
    assert_true(ncols <= 8);
    memset(att, 0, sizeof att);
    for (int c = 0; c < ncols; c++) {
        att[c].name = (char *)names[c];
        att[c].typid = types[c];
        att[c].typlen = -1;
        att[c].atttypmod = -1;
    }
    assert_int_equal(PQsetResultAttrs(r, ncols, att), 1);
    for (int i = 0; i < nrows; i++) {
        for (int c = 0; c < ncols; c++) {
            const char *v = cells[i * ncols + c];
            assert_int_equal(PQsetvalue(r, i, c, (char *)v, v ? (int)strlen(v) : -1), 1);
        }
    }
    return r;
}

static char *print_to_string(const PGresult *r) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cli_print_result(r, f, f);
    fclose(f);
    return buf; /* owner: caller, free() (open_memstream) */
}

static void test_table_output(void **state) {
    (void)state;
    const char *names[] = {"id", "owner", "balance"};
    Oid types[] = {20, 25, 20};
    const char *cells[] = {"1", "ada", "90", "2", "bob", "60", "3", "çé漢", NULL};
    PGresult *r = make_result(3, names, types, 3, cells);
    char *s = print_to_string(r);
    /* Byte for byte what psql 15 prints for the same result. */
    assert_string_equal(s, " id | owner | balance \n"
                           "----+-------+---------\n"
                           "  1 | ada   |      90\n"
                           "  2 | bob   |      60\n"
                           "  3 | çé漢  |        \n"
                           "(3 rows)\n\n");
    free(s);
    PQclear(r);

    const char *n2[] = {"a", "longername", "f"};
    Oid t2[] = {23, 25, 701};
    const char *c2[] = {"1", "x", "1.5"};
    r = make_result(3, n2, t2, 1, c2);
    s = print_to_string(r);
    assert_string_equal(s, " a | longername |  f  \n"
                           "---+------------+-----\n"
                           " 1 | x          | 1.5\n"
                           "(1 row)\n\n");
    free(s);
    PQclear(r);

    const char *n3[] = {"?column?"};
    Oid t3[] = {23};
    r = make_result(1, n3, t3, 0, NULL);
    s = print_to_string(r);
    assert_string_equal(s, " ?column? \n----------\n(0 rows)\n\n");
    free(s);
    PQclear(r);
}

static void test_command_and_error_output(void **state) {
    (void)state;
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_EMPTY_QUERY);
    char *s = print_to_string(r);
    assert_string_equal(s, "");
    free(s);
    PQclear(r);
    r = PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR);
    s = print_to_string(r);
    assert_non_null(strstr(s, "ERROR:"));
    free(s);
    PQclear(r);
    assert_int_equal(cli_display_width("abc"), 3);
    assert_int_equal(cli_display_width("漢字"), 4);
    assert_int_equal(cli_display_width("\xff\xfe"), 2);
    assert_int_equal(cli_display_width("\xe6\xbc"), 2); /* truncated sequence */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_join_list),
        cmocka_unit_test(test_splitter),
        cmocka_unit_test(test_splitter_pending),
        cmocka_unit_test(test_splitter_oom),
        cmocka_unit_test(test_table_output),
        cmocka_unit_test(test_command_and_error_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
