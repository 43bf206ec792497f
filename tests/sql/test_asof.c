/*
** tests/sql/test_asof.c: AS OF SYSTEM TIME and READ ONLY (docs/sql.md "Stale
** reads", docs/txn.md section 8) on a single node: the clause's parser and
** its expressions (sql/asof.c, pure), then the SQL surface through sessions
** (the harness's transcript: D/R/C/E/N lines): a statement at a decimal HLC
** timestamp and at an absolute timestamp sees exactly the rows committed at
** or below it, relative intervals and follower_read_timestamp() before the
** table existed find no table, the future and malformed expressions are
** refused with their SQLSTATEs, BEGIN / SET TRANSACTION AS OF SYSTEM TIME
** and BEGIN READ ONLY make read-only blocks (25006), and SHOW
** follower_reads. Times come from the engine's clock: a row committed before
** a timestamp we take is at or below it, one committed after is above.
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
#include <time.h>

#include "sql/sql.h"
#include "sql/sql_int.h"
#include "tests/sql/sql_harness.h"

/* ---- the clause and its expressions (pure) ------------------------------------ */

static void take(const char *in, const char *want_text, const char *want_expr) {
    char *out = NULL, expr[128], state[6] = "", msg[200] = "";
    bool found = false;
    int rc = sqlv__as_of_take(in, strlen(in), &out, expr, sizeof(expr), &found, state, msg,
                              sizeof(msg));
    assert_int_equal(rc, 0);
    if (want_expr == NULL) {
        assert_false(found);
        assert_null(out);
        return;
    }
    assert_true(found);
    assert_non_null(out);
    assert_string_equal(expr, want_expr);
    assert_string_equal(out, want_text);
    base_free(out);
}

static void take_error(const char *in, const char *want_state) {
    char *out = NULL, expr[128], state[6] = "", msg[200] = "";
    bool found = false;
    assert_int_equal(sqlv__as_of_take(in, strlen(in), &out, expr, sizeof(expr), &found, state, msg,
                                      sizeof(msg)),
                     1);
    assert_string_equal(state, want_state);
    assert_null(out);
}

static void test_clause(void **state) {
    (void)state;
    take("SELECT * FROM t AS OF SYSTEM TIME '-5s' WHERE k = 1",
         "SELECT * FROM t                         WHERE k = 1",
         "-5s");
    take("SELECT * FROM t as of system time INTERVAL '-1m'",
         "SELECT * FROM t                                 ",
         "-1m");
    take("SELECT 1 AS OF SYSTEM TIME 1700000000000000000.0000000002",
         "SELECT 1                                                 ",
         "1700000000000000000.0000000002");
    take("SELECT * FROM t AS OF SYSTEM TIME follower_read_timestamp ( )",
         "SELECT * FROM t                                              ",
         "follower_read_timestamp()");
    take("SELECT * FROM t AS OF SYSTEM TIME 'it''s'",
         "SELECT * FROM t                          ",
         "it's");
    /* not the clause: inside parentheses, strings, comments, an alias */
    take("SELECT (SELECT 1 AS OF SYSTEM TIME '-1s')", NULL, NULL);
    take("SELECT 'AS OF SYSTEM TIME ''-1s''' /* AS OF SYSTEM TIME '-1s' */", NULL, NULL);
    take("SELECT 1 AS of_system", NULL, NULL);
    take_error("SELECT * FROM t AS OF SYSTEM TIME", "42601");
    take_error("SELECT * FROM t AS OF SYSTEM TIME now()", "42601");
    take_error("SELECT * FROM t AS OF SYSTEM TIME '-1s' AS OF SYSTEM TIME '-2s'", "42601");
}

static void eval_ok(const char *expr, hlc_timestamp now, hlc_timestamp want) {
    hlc_timestamp got = HLC_ZERO;
    char state[6] = "", msg[320] = "";
    int rc = sqlv__as_of_eval(expr, now, &got, state, msg, sizeof(msg));
    if (rc != 0) fail_msg("%s: %s %s", expr, state, msg);
    if (hlc_compare(got, want) != 0)
        fail_msg("%s: got %lld.%d want %lld.%d", expr, (long long)got.wall_ns, got.logical,
                 (long long)want.wall_ns, want.logical);
}

static void eval_error(const char *expr, hlc_timestamp now, const char *want_state) {
    hlc_timestamp got = HLC_ZERO;
    char state[6] = "", msg[320] = "";
    assert_int_equal(sqlv__as_of_eval(expr, now, &got, state, msg, sizeof(msg)), 1);
    if (strcmp(state, want_state) != 0) fail_msg("%s: %s %s, want %s", expr, state, msg, want_state);
    assert_true(strstr(msg, "AS OF SYSTEM TIME") != NULL);
}

static void test_expressions(void **state) {
    (void)state;
    /* 2026-12-06 07:00:00 UTC */
    const int64_t base = 1796540400LL * 1000000000LL;
    hlc_timestamp now = {base + 123456789, 7};
    eval_ok("-5s", now, (hlc_timestamp){base + 123456789 - 5000000000LL, 0});
    eval_ok("-1m", now, (hlc_timestamp){base + 123456789 - 60000000000LL, 0});
    eval_ok("-500ms", now, (hlc_timestamp){base + 123456789 - 500000000LL, 0});
    eval_ok("-1h30m", now, (hlc_timestamp){base + 123456789 - 5400000000000LL, 0});
    eval_ok("-10 seconds", now, (hlc_timestamp){base + 123456789 - 10000000000LL, 0});
    eval_ok("-1.5s", now, (hlc_timestamp){base + 123456789 - 1500000000LL, 0});
    eval_ok("-0s", now, (hlc_timestamp){base + 123456789, 0});
    eval_ok("follower_read_timestamp()", now,
            (hlc_timestamp){base + 123456789 - SQLV__FOLLOWER_READ_LAG_NS, 0});
    eval_ok("2026-12-06 07:00:00", now, (hlc_timestamp){base, 0});
    eval_ok("2026-12-06 07:00:00+00", now, (hlc_timestamp){base, 0});
    eval_ok("2026-12-06 07:00:00Z", now, (hlc_timestamp){base, 0});
    eval_ok("2026-12-06T08:00:00+01:00", now, (hlc_timestamp){base, 0});
    eval_ok("2026-12-06 06:30:00.1-00:30", now, (hlc_timestamp){base + 100000000LL, 0});
    eval_ok("2026-12-06", now, (hlc_timestamp){base - 7 * 3600 * 1000000000LL, 0});
    eval_ok("1796540400000000000", now, (hlc_timestamp){base, 0});
    eval_ok("1796540400000000000.5", now, (hlc_timestamp){base, 5});
    eval_ok("1796540400123456789.0000000007", now, now); /* == now is allowed */
    /* the future: a positive interval, a later time, a later logical tick */
    eval_error("5s", now, "22008");
    eval_error("+1m", now, "22008");
    eval_error("2026-12-06 07:00:01", now, "22008");
    eval_error("1796540400123456789.8", now, "22008");
    /* not a time */
    eval_error("banana", now, "22007");
    eval_error("-5 parsecs", now, "22007");
    eval_error("2026-13-01", now, "22007");
    eval_error("2026-12-06 25:00:00", now, "22007");
    eval_error("12abc", now, "22007");
    eval_error("", now, "22007");
    eval_error("-", now, "22007");
    /* out of range */
    eval_error("-1000000h", now, "22008");
    eval_error("2999-01-01", now, "22008");
}

/* ---- through sessions ------------------------------------------------------------ */

/* The clock's now as a decimal HLC literal. */
static void decimal_now(fixture *f, char *out, size_t size, hlc_timestamp *ts) {
    *ts = hlc_now(f->clock);
    snprintf(out, size, "%lld.%d", (long long)ts->wall_ns, ts->logical);
}

/* Wait (bounded, on the clock) until its wall time passes ts by ns. */
static void clock_pass(fixture *f, hlc_timestamp ts, int64_t ns) {
    int64_t deadline = base_monotonic_ns() + 5LL * 1000000000LL;
    while (hlc_now(f->clock).wall_ns <= ts.wall_ns + ns) {
        assert_true(base_monotonic_ns() < deadline);
        struct timespec t = {0, 100000L};
        nanosleep(&t, NULL); /* polling the clock itself */
    }
}

static void test_statements(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    char q[512], lit[64], want[256];
    hlc_timestamp t1;
    EXPECT(s, "CREATE TABLE t (k INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO t VALUES (1, 'one')", "C INSERT 0 1\n");
    clock_pass(&f, hlc_now(f.clock), 2000000); /* t1 strictly after the row's commit */
    decimal_now(&f, lit, sizeof(lit), &t1);
    clock_pass(&f, t1, 2000000);
    EXPECT(s, "INSERT INTO t VALUES (2, 'two')", "C INSERT 0 1\n");
    /* at t1: row 1 only, as a statement in its own transaction */
    snprintf(q, sizeof(q), "SELECT k, v FROM t AS OF SYSTEM TIME '%s' ORDER BY k", lit);
    EXPECT(s, q, "D k:23,v:25\nR 1|one\nC SELECT 1\n");
    snprintf(q, sizeof(q), "SELECT count(*) FROM t AS OF SYSTEM TIME %s", lit);
    EXPECT(s, q, "D count:20\nR 1\nC SELECT 1\n");
    assert_int_equal(sqlv_session_status(s), 'I');
    /* an absolute timestamp (microseconds, UTC) between the two rows */
    time_t sec = (time_t)(t1.wall_ns / 1000000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char stamp[64];
    size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(stamp + n, sizeof(stamp) - n, ".%06lld+00",
             (long long)((t1.wall_ns % 1000000000) / 1000));
    snprintf(q, sizeof(q), "SELECT k FROM t AS OF SYSTEM TIME '%s'", stamp);
    EXPECT(s, q, "D k:23\nR 1\nC SELECT 1\n");
    /* now: both rows; an hour ago and follower_read_timestamp(): no table yet */
    EXPECT(s, "SELECT count(*) FROM t AS OF SYSTEM TIME '-0s'", "D count:20\nR 2\nC SELECT 1\n");
    expect_error(s, "SELECT * FROM t AS OF SYSTEM TIME '-1h'", "42P01");
    expect_error(s, "SELECT * FROM t AS OF SYSTEM TIME follower_read_timestamp()", "42P01");
    /* refused: the future, not a time, no expression, inside a block */
    expect_error(s, "SELECT * FROM t AS OF SYSTEM TIME '10s'", "22008");
    expect_error(s, "SELECT * FROM t AS OF SYSTEM TIME '2200-01-01 00:00:00'", "22008");
    expect_error(s, "SELECT * FROM t AS OF SYSTEM TIME 'yesterday-ish'", "22007");
    expect_error(s, "SELECT * FROM t AS OF SYSTEM TIME", "42601");
    expect_error(s, "SELECT 1; SELECT * FROM t AS OF SYSTEM TIME '-0s'", "0A000");
    /* a write under AS OF SYSTEM TIME is read-only */
    snprintf(q, sizeof(q), "INSERT INTO t SELECT k + 10, v FROM t AS OF SYSTEM TIME '%s'", lit);
    expect_error(s, q, "25006");
    EXPECT(s, "SELECT count(*) FROM t", "D count:20\nR 2\nC SELECT 1\n");

    /* BEGIN AS OF SYSTEM TIME: every statement of the block at t1, read-only */
    snprintf(q, sizeof(q), "BEGIN AS OF SYSTEM TIME '%s'", lit);
    EXPECT(s, q, "C BEGIN\n");
    EXPECT(s, "SELECT k FROM t", "D k:23\nR 1\nC SELECT 1\n");
    EXPECT(s, "SHOW transaction_read_only", "D transaction_read_only:25\nR on\nC SHOW\n");
    EXPECT(s, "SELECT v FROM t WHERE k = 2", "D v:25\nC SELECT 0\n");
    expect_error(s, "INSERT INTO t VALUES (3, 'three')", "25006");
    assert_int_equal(sqlv_session_status(s), 'E');
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    /* the next block is an ordinary one again */
    EXPECT(s, "BEGIN; INSERT INTO t VALUES (3, 'three'); COMMIT",
           "C BEGIN\nC INSERT 0 1\nC COMMIT\n");
    /* SET TRANSACTION AS OF SYSTEM TIME, first in the block */
    snprintf(q, sizeof(q), "BEGIN; SET TRANSACTION AS OF SYSTEM TIME '%s'; SELECT k FROM t", lit);
    EXPECT(s, q, "C BEGIN\nC SET\nD k:23\nR 1\nC SELECT 1\n");
    expect_error(s, "SELECT * FROM t AS OF SYSTEM TIME '-0s'", "0A000");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    EXPECT(s, "BEGIN; SELECT 1", "C BEGIN\nD ?column?:20\nR 1\nC SELECT 1\n");
    snprintf(q, sizeof(q), "SET TRANSACTION AS OF SYSTEM TIME '%s'", lit);
    expect_error(s, q, "25001"); /* after the block's first query */
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    /* outside a block it changes nothing (PostgreSQL warns too) */
    snprintf(q, sizeof(q), "SET TRANSACTION AS OF SYSTEM TIME '%s'", lit);
    EXPECT(s, q, "N SET TRANSACTION can only be used in transaction blocks\nC SET\n");
    EXPECT(s, "SELECT count(*) FROM t", "D count:20\nR 3\nC SELECT 1\n");
    /* a bad BEGIN starts no block */
    expect_error(s, "BEGIN AS OF SYSTEM TIME 'soon'", "22007");
    assert_int_equal(sqlv_session_status(s), 'I');
    expect_error(s, "BEGIN AS OF SYSTEM TIME '1h'", "22008");
    assert_int_equal(sqlv_session_status(s), 'I');
    snprintf(q, sizeof(q), "BEGIN READ WRITE, AS OF SYSTEM TIME '%s'", lit);
    expect_error(s, q, "25006");
    assert_int_equal(sqlv_session_status(s), 'I');
    expect_error(s, "START TRANSACTION AS OF SYSTEM", "42601");

    /* BEGIN READ ONLY and SET TRANSACTION READ ONLY */
    EXPECT(s, "BEGIN READ ONLY", "C BEGIN\n");
    EXPECT(s, "SELECT count(*) FROM t", "D count:20\nR 3\nC SELECT 1\n");
    expect_error(s, "UPDATE t SET v = 'x'", "25006");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    EXPECT(s, "BEGIN; SET TRANSACTION READ ONLY", "C BEGIN\nC SET\n");
    expect_error(s, "DELETE FROM t", "25006");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    EXPECT(s, "START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE; DELETE FROM t "
              "WHERE k = 3; COMMIT",
           "C BEGIN\nC DELETE 1\nC COMMIT\n");

    /* the counters */
    char *got = run(s, "SHOW follower_reads");
    snprintf(want, sizeof(want), "D follower_reads:25\nR served here as a follower: 0;");
    assert_true(strncmp(got, want, strlen(want)) == 0);
    assert_non_null(strstr(got, "AS OF SYSTEM TIME transactions: "));
    free(got);
    got = run(s, "SELECT follower_read_timestamp() < now()");
    assert_string_equal(got, "D ?column?:16\nR t\nC SELECT 1\n");
    free(got);
    sqlv_session_close(s);
    close_all(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clause),
        cmocka_unit_test(test_expressions),
        cmocka_unit_test(test_statements),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
