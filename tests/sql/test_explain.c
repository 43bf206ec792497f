/*
** EXPLAIN [ANALYZE] (sql/explain.c) and COPY ... TO STDOUT (sql/copy.c) on
** one engine over the in-memory key space: the access path per table
** (point lookup, scan, full scan, index lookup), the spans, the ranges from
** a fake node's callbacks (one split), that EXPLAIN writes nothing, the
** figures of ANALYZE; and the copy-out callbacks' bytes in text and CSV.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "encoding/encoding.h"
#include "sql_harness.h"

static fixture fx;

static int setup(void **state) {
    (void)state;
    open_all(&fx);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    close_all(&fx);
    return 0;
}

/* Does the transcript have this row ("R " + line)? */
static bool has_row(const char *out, const char *line) {
    char want[512];
    snprintf(want, sizeof want, "R %s\n", line);
    return strstr(out, want) != NULL;
}

#define EXPECT_ROW(out, line)                                                                      \
    do {                                                                                           \
        if (!has_row((out), (line))) print_error("want row \"%s\" in:\n%s", (line), (out));        \
        assert_true(has_row((out), (line)));                                                       \
    } while (0)

/* ---- a fake node: two ranges split at /Table/100/1/100 ---------------------------------- */

static base_buf split_key;
static int ranges_calls;

static void range_info(sqlv_range_info *x, uint64_t id) {
    memset(x, 0, sizeof *x);
    x->range_id = id;
    x->size_bytes = -1;
}

static int fake_ranges(void *ctx, const uint8_t *start, size_t start_len, const uint8_t *end,
                       size_t end_len, sqlv_range_info **out, size_t *n, char sqlstate[6],
                       char *message, size_t message_size) {
    (void)ctx, (void)sqlstate, (void)message, (void)message_size;
    ranges_calls++;
    sqlv_range_info *v = base_calloc(2, sizeof *v);
    assert_non_null(v);
    size_t k = 0;
    size_t m = start_len < split_key.len ? start_len : split_key.len;
    int c = memcmp(start, split_key.data, m);
    bool starts_left = c < 0 || (c == 0 && start_len < split_key.len);
    m = end_len < split_key.len ? end_len : split_key.len;
    c = end_len ? memcmp(end, split_key.data, m) : 1;
    bool ends_right = end_len == 0 || c > 0 || (c == 0 && end_len > split_key.len);
    if (starts_left) range_info(&v[k++], 1);
    if (ends_right) range_info(&v[k++], 2);
    *out = v;
    *n = k;
    return 0;
}

static void set_fake_admin(void) {
    base_buf_reset(&split_key);
    assert_int_equal(enc_key_prefix(&split_key, 100, 1), ENC_OK);
    enc_value ev = {.type = ENC_INTEGER};
    ev.u.i = 100;
    assert_int_equal(enc_key_append(&split_key, &ev), ENC_OK);
    sqlv_admin a = {.ctx = NULL, .node_id = 1, .ranges = fake_ranges};
    sqlv_engine_set_admin(fx.sql, &a);
}

/* ---- EXPLAIN -------------------------------------------------------------------------- */

static void load(sqlv_session *s) {
    exec_ok(s, "CREATE TABLE accounts (id INT PRIMARY KEY, email TEXT, balance INT)");
    exec_ok(s, "CREATE INDEX accounts_email_idx ON accounts (email)");
    exec_ok(s, "INSERT INTO accounts VALUES (5, 'e@x', 50), (150, 'f@x', 10), (7, 'g@x', 0)");
}

static void test_explain_paths(void **state) {
    (void)state;
    sqlv_session *s = session(&fx);
    load(s);
    char *out = run(s, "EXPLAIN SELECT * FROM accounts WHERE id = 5");
    assert_non_null(strstr(out, "D QUERY PLAN:25\n"));
    EXPECT_ROW(out, "select");
    EXPECT_ROW(out, "  -> point lookup accounts@primary");
    EXPECT_ROW(out, "       spans: [/Table/100/1/5 - /Table/100/1/5]");
    EXPECT_ROW(out, "       ranges: n/a (a single node: one local store)");
    assert_non_null(strstr(out, "C EXPLAIN\n"));
    free(out);
    out = run(s, "EXPLAIN SELECT * FROM accounts WHERE id BETWEEN 2 AND 9");
    EXPECT_ROW(out, "  -> scan accounts@primary");
    EXPECT_ROW(out, "       spans: [/Table/100/1/2 - /Table/100/1/9]");
    free(out);
    out = run(s, "EXPLAIN SELECT * FROM accounts");
    EXPECT_ROW(out, "  -> full scan accounts");
    EXPECT_ROW(out, "       spans: [/Table/100/1 - /Table/100/2)");
    free(out);
    out = run(s, "EXPLAIN SELECT balance FROM accounts WHERE email = 'e@x'");
    EXPECT_ROW(out, "  -> index lookup accounts@accounts_email_idx, then a row fetch per entry");
    EXPECT_ROW(out, "       spans: [/Table/100/2/'e@x' - /Table/100/2/'e@x']");
    free(out);
    /* a join: the inner table's plan shows, its spans are per outer row */
    exec_ok(s, "CREATE TABLE owners (id INT PRIMARY KEY, name TEXT)");
    out = run(s, "EXPLAIN SELECT * FROM owners o JOIN accounts AS a ON a.id = o.id");
    EXPECT_ROW(out, "  -> full scan owners");
    EXPECT_ROW(out, "  -> point lookup accounts@primary");
    EXPECT_ROW(out, "       spans: per row of the outer loop (not run)");
    free(out);
    /* QUERY PLAN stays SQLite's; other statements are refused */
    out = run(s, "EXPLAIN QUERY PLAN SELECT * FROM accounts WHERE id = 5");
    assert_non_null(strstr(out, "VIRTUAL TABLE INDEX"));
    free(out);
    expect_error(s, "EXPLAIN CREATE TABLE x (a INT)", "0A000");
    expect_error(s, "EXPLAIN (FORMAT JSON) SELECT 1", "0A000");
    expect_error(s, "EXPLAIN SELECT * FROM nosuch", "42P01");
    assert_int_equal(sqlv_session_status(s), 'I');
    sqlv_session_close(s);
}

/* EXPLAIN runs nothing: no write lands, outside a block or in one. */
static void test_explain_writes_nothing(void **state) {
    (void)state;
    sqlv_session *s = session(&fx);
    char *out = run(s, "EXPLAIN UPDATE accounts SET balance = 0 WHERE id = 5");
    EXPECT_ROW(out, "update");
    EXPECT_ROW(out, "  -> point lookup accounts@primary");
    free(out);
    out = run(s, "EXPLAIN INSERT INTO accounts VALUES (9, 'z', 1)");
    EXPECT_ROW(out, "  -> write accounts");
    free(out);
    free(run(s, "EXPLAIN DELETE FROM accounts"));
    EXPECT_ROWS(s, "SELECT count(*), sum(balance) FROM accounts", "R 3|60\n");
    exec_ok(s, "BEGIN");
    free(run(s, "EXPLAIN DELETE FROM accounts WHERE id > 0"));
    free(run(s, "EXPLAIN INSERT INTO accounts VALUES (9, 'z', 1)"));
    EXPECT_ROWS(s, "SELECT count(*) FROM accounts", "R 3\n");
    exec_ok(s, "COMMIT");
    EXPECT_ROWS(s, "SELECT count(*) FROM accounts", "R 3\n");
    expect_error(s, "EXPLAIN INSERT INTO accounts VALUES (9, 'z', 1) RETURNING id", "0A000");
    sqlv_session_close(s);
}

static void test_explain_analyze(void **state) {
    (void)state;
    sqlv_session *s = session(&fx);
    char *out = run(s, "EXPLAIN ANALYZE SELECT * FROM accounts WHERE id < 100");
    EXPECT_ROW(out, "  -> scan accounts@primary");
    EXPECT_ROW(out, "rows: 2");
    EXPECT_ROW(out, "KV requests: 1");
    EXPECT_ROW(out, "commit wait: 0us (read-only)");
    assert_non_null(strstr(out, "R execution time: "));
    free(out);
    /* it runs: the write lands; the point read, the write and the commit */
    out = run(s, "EXPLAIN ANALYZE UPDATE accounts SET balance = balance + 1 WHERE id = 5");
    EXPECT_ROW(out, "rows: 1");
    EXPECT_ROW(out, "KV requests: 3");
    assert_non_null(strstr(out, "R commit wait: "));
    free(out);
    EXPECT_ROWS(s, "SELECT balance FROM accounts WHERE id = 5", "R 51\n");
    /* an index lookup: the entry scan and one fetch */
    out = run(s, "EXPLAIN (ANALYZE, COSTS off) SELECT id FROM accounts WHERE email = 'g@x'");
    EXPECT_ROW(out, "rows: 1");
    EXPECT_ROW(out, "KV requests: 2");
    free(out);
    /* in a block: the commit is the block's */
    exec_ok(s, "BEGIN");
    out = run(s, "EXPLAIN ANALYZE INSERT INTO accounts VALUES (8, 'h@x', 1)");
    EXPECT_ROW(out, "commit wait: none yet (in a transaction block: paid at COMMIT)");
    free(out);
    exec_ok(s, "ROLLBACK");
    EXPECT_ROWS(s, "SELECT count(*) FROM accounts", "R 3\n");
    /* a failing statement fails the EXPLAIN */
    expect_error(s, "EXPLAIN ANALYZE INSERT INTO accounts VALUES (5, 'dup', 1)", "23505");
    sqlv_session_close(s);
}

static void test_explain_ranges(void **state) {
    (void)state;
    set_fake_admin();
    sqlv_session *s = session(&fx);
    ranges_calls = 0;
    char *out = run(s, "EXPLAIN SELECT * FROM accounts");
    EXPECT_ROW(out, "       ranges: 1, 2");
    free(out);
    out = run(s, "EXPLAIN SELECT * FROM accounts WHERE id = 150");
    EXPECT_ROW(out, "       ranges: 2");
    free(out);
    out = run(s, "EXPLAIN SELECT * FROM accounts WHERE id < 50");
    EXPECT_ROW(out, "       ranges: 1");
    free(out);
    assert_int_equal(ranges_calls, 3);
    sqlv_engine_set_admin(fx.sql, NULL);
    sqlv_session_close(s);
}

/* ---- COPY ... TO STDOUT ----------------------------------------------------------------- */

/* The copy-out callbacks write into the harness's capture transcript. */
static int out_begin(void *ctx, int ncols) {
    capture *c = ctx;
    return base_buf_printf(&c->out, "H %d\n", ncols);
}
static int out_data(void *ctx, const char *data, size_t len) {
    capture *c = ctx;
    return base_buf_printf(&c->out, "d %.*s", (int)len, data);
}
static int out_done(void *ctx) {
    capture *c = ctx;
    return base_buf_printf(&c->out, "c\n");
}

static void test_copy_to(void **state) {
    (void)state;
    sqlv_session *s = session(&fx);
    expect_error(s, "COPY accounts TO STDOUT", "0A000"); /* no callbacks */
    const sqlv_copy_out_fns fns = {out_begin, out_data, out_done};
    sqlv_session_set_copy_out(s, &fns);
    exec_ok(s, "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT, n FLOAT)");
    exec_ok(s, "INSERT INTO notes VALUES (1, 'plain', 1.5), (2, 'a,b', NULL), "
               "(3, 'say \"hi\"', 2), (4, E'tab\\there\\\\', 0), (5, '', -1)");
    EXPECT(s, "COPY notes TO STDOUT",
           "H 3\nd 1\tplain\t1.5\nd 2\ta,b\t\\N\nd 3\tsay \"hi\"\t2\nd 4\ttab\\there\\\\\t0\n"
           "d 5\t\t-1\nc\nC COPY 5\n");
    EXPECT(s, "COPY notes (id, body) TO STDOUT WITH (FORMAT csv, HEADER)",
           "H 2\nd id,body\nd 1,plain\nd 2,\"a,b\"\nd 3,\"say \"\"hi\"\"\"\nd 4,tab\there\\\n"
           "d 5,\"\"\nc\nC COPY 5\n");
    EXPECT(s, "COPY (SELECT id, n FROM notes WHERE id <= 2 ORDER BY id) TO STDOUT "
              "CSV HEADER DELIMITER ';' NULL 'none'",
           "H 2\nd id;n\nd 1;1.5\nd 2;none\nc\nC COPY 2\n");
    EXPECT(s, "COPY (SELECT id FROM notes WHERE id > 99) TO STDOUT", "H 1\nc\nC COPY 0\n");
    expect_error(s, "COPY notes TO '/tmp/x'", "0A000");
    expect_error(s, "COPY notes TO STDOUT (FORMAT binary)", "0A000");
    expect_error(s, "COPY (DELETE FROM notes) TO STDOUT", "0A000");
    expect_error(s, "COPY nosuch TO STDOUT", "42P01");
    /* inside a block: the block's transaction sees its own writes */
    exec_ok(s, "BEGIN");
    exec_ok(s, "INSERT INTO notes VALUES (6, 'new', 6)");
    EXPECT(s, "COPY (SELECT count(*) FROM notes) TO STDOUT", "H 1\nd 6\nc\nC COPY 1\n");
    exec_ok(s, "ROLLBACK");
    assert_int_equal(sqlv_session_status(s), 'I');
    sqlv_session_close(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_explain_paths),
        cmocka_unit_test(test_explain_writes_nothing),
        cmocka_unit_test(test_explain_analyze),
        cmocka_unit_test(test_explain_ranges),
        cmocka_unit_test(test_copy_to),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    base_buf_free(&split_key);
    return rc;
}
