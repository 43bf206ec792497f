/*
** COPY FROM STDIN through the gateway against the real SQL engine: libpq
** PQputCopyData/PQputCopyEnd (text, CSV with HEADER, NULLs, quoting),
** CopyFail, a bad row in the middle, COPY inside a block, and hand-built
** protocol sequences (Flush/Sync ignored, unexpected messages => 08P01,
** discarding after an error, random CopyData) that must keep the server up.
** COPY TO STDOUT: libpq PQgetCopyData in text and CSV, a round trip back
** through COPY FROM, a result larger than the gateway's output buffer
** (backpressure), the extended protocol.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gateway.h"
#include "gw_real_stack.h"
#include "gw_test_util.h"
#include "storage/storage.h"
#include "timestamp/timestamp.h"
#include "txn/txn.h"

/* The single value of a one-row query, into out. */
static void query_value(PGconn *c, const char *sql, char *out, size_t cap)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    snprintf(out, cap, "%s", PQgetisnull(r, 0, 0) ? "<null>" : PQgetvalue(r, 0, 0));
    PQclear(r);
}

static void want_value(PGconn *c, const char *sql, const char *want)
{
    char got[256];
    query_value(c, sql, got, sizeof got);
    assert_string_equal(got, want);
}

/* Start COPY with sql, send the chunks, end with PQputCopyEnd(errmsg).
** Returns the final result (owner: caller, PQclear); drains the rest. */
static PGresult *copy_in(PGconn *c, const char *sql, const char *const *chunks, int n,
                         const char *errmsg)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN)
        fail_msg("%s: %s (%s)", sql, PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
    PQclear(r);
    for (int i = 0; i < n; i++)
        assert_int_equal(PQputCopyData(c, chunks[i], (int)strlen(chunks[i])), 1);
    assert_int_equal(PQputCopyEnd(c, errmsg), 1);
    PGresult *res = PQgetResult(c);
    PGresult *more;
    while ((more = PQgetResult(c)) != NULL)
        PQclear(more);
    return res;
}

static void expect_error(PGresult *r, const char *sqlstate)
{
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    assert_non_null(got);
    assert_string_equal(got, sqlstate);
    PQclear(r);
}

static void test_copy_text(void **state)
{
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE t1 (id INT PRIMARY KEY, name TEXT, score FLOAT)");
    /* rows split across CopyData messages at odd places */
    const char *chunks[] = {"1\talice\t1.5\n2\tb", "ob\t\\N\n", "3\ttab\\there\t2\n4\tx\t", "3\n"};
    PGresult *r = copy_in(c, "COPY t1 FROM STDIN", chunks, 4, NULL);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "COPY 4");
    PQclear(r);
    want_value(c, "SELECT count(*) FROM t1", "4");
    want_value(c, "SELECT name FROM t1 WHERE id = 3", "tab\there");
    want_value(c, "SELECT score FROM t1 WHERE id = 2", "<null>");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    PQfinish(c);
}

static void test_copy_csv_header(void **state)
{
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE t2 (id INT PRIMARY KEY, note TEXT)");
    const char *chunks[] = {"id,note\n", "1,\"a, quoted \"\"x\"\"\"\n2,\n3,plain\n"};
    PGresult *r = copy_in(c, "COPY t2 FROM STDIN WITH (FORMAT csv, HEADER)", chunks, 2, NULL);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "COPY 3");
    PQclear(r);
    want_value(c, "SELECT note FROM t2 WHERE id = 1", "a, quoted \"x\"");
    want_value(c, "SELECT note FROM t2 WHERE id = 2", "<null>");
    want_value(c, "SELECT note FROM t2 WHERE id = 3", "plain");
    PQfinish(c);
}

static void test_copy_fail_and_bad_row(void **state)
{
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE t3 (id INT PRIMARY KEY, v INT)");
    /* CopyFail from the client: 57014, nothing inserted */
    const char *rows[] = {"1\t10\n2\t20\n"};
    expect_error(copy_in(c, "COPY t3 FROM STDIN", rows, 1, "client gave up"), "57014");
    want_value(c, "SELECT count(*) FROM t3", "0");
    /* a bad row in the middle: its error, nothing inserted, data after it
    ** discarded, the connection usable */
    const char *bad[] = {"1\t10\n2\t20\n", "3\t30\t99\n4\t40\n", "5\t50\n"};
    PGresult *r = copy_in(c, "COPY t3 FROM STDIN", bad, 3, NULL);
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    want_value(c, "SELECT count(*) FROM t3", "0");
    /* a duplicate key */
    const char *dup[] = {"1\t10\n1\t11\n"};
    expect_error(copy_in(c, "COPY t3 FROM STDIN", dup, 1, NULL), "23505");
    want_value(c, "SELECT count(*) FROM t3", "0");
    const char *good[] = {"7\t70\n"};
    r = copy_in(c, "COPY t3 FROM STDIN", good, 1, NULL);
    assert_string_equal(PQcmdStatus(r), "COPY 1");
    PQclear(r);
    want_value(c, "SELECT v FROM t3", "70");
    PQfinish(c);
}

static void test_copy_in_block(void **state)
{
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE t4 (id INT PRIMARY KEY, v TEXT)");
    tu_exec_ok(c, "BEGIN");
    const char *rows[] = {"1\ta\n2\tb\n"};
    PGresult *r = copy_in(c, "COPY t4 FROM STDIN", rows, 1, NULL);
    assert_string_equal(PQcmdStatus(r), "COPY 2");
    PQclear(r);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS);
    want_value(c, "SELECT count(*) FROM t4", "2");
    tu_exec_ok(c, "ROLLBACK");
    want_value(c, "SELECT count(*) FROM t4", "0");
    /* a failed copy aborts the block */
    tu_exec_ok(c, "BEGIN");
    expect_error(copy_in(c, "COPY t4 FROM STDIN", rows, 1, "stop"), "57014");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INERROR);
    tu_exec_ok(c, "ROLLBACK");
    /* committed in a block */
    tu_exec_ok(c, "BEGIN");
    r = copy_in(c, "COPY t4 FROM STDIN", rows, 1, NULL);
    PQclear(r);
    tu_exec_ok(c, "COMMIT");
    want_value(c, "SELECT count(*) FROM t4", "2");
    PQfinish(c);
}

static void test_copy_extended_protocol(void **state)
{
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE t5 (id INT PRIMARY KEY)");
    /* COPY through Parse/Bind/Execute outside a block: sql/ refuses it
    ** (0A000, the implicit block of the extended protocol) or copies */
    PGresult *r = PQexecParams(c, "COPY t5 FROM STDIN", 0, NULL, NULL, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st == PGRES_COPY_IN) {
        assert_int_equal(PQputCopyData(c, "1\n", 2), 1);
        assert_int_equal(PQputCopyEnd(c, NULL), 1);
        while ((r = PQgetResult(c)) != NULL)
            PQclear(r);
    } else {
        assert_int_equal(st, PGRES_FATAL_ERROR);
    }
    want_value(c, "SELECT 1", "1");
    /* inside a block the session enters copy-in from Execute */
    tu_exec_ok(c, "BEGIN");
    r = PQexecParams(c, "COPY t5 FROM STDIN", 0, NULL, NULL, NULL, NULL, 0);
    st = PQresultStatus(r);
    PQclear(r);
    assert_int_equal(st, PGRES_COPY_IN);
    {
        assert_int_equal(PQputCopyData(c, "10\n11\n", 6), 1);
        assert_int_equal(PQputCopyEnd(c, NULL), 1);
        r = PQgetResult(c);
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        assert_string_equal(PQcmdStatus(r), "COPY 2");
        PQclear(r);
        while ((r = PQgetResult(c)) != NULL)
            PQclear(r);
        assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS);
        /* a failing one: the error, then the block is aborted */
        r = PQexecParams(c, "COPY t5 FROM STDIN", 0, NULL, NULL, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_COPY_IN);
        PQclear(r);
        assert_int_equal(PQputCopyData(c, "10\n", 3), 1);
        assert_int_equal(PQputCopyEnd(c, NULL), 1);
        r = PQgetResult(c);
        assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
        PQclear(r);
        while ((r = PQgetResult(c)) != NULL)
            PQclear(r);
        assert_int_equal(PQtransactionStatus(c), PQTRANS_INERROR);
    }
    tu_exec_ok(c, "ROLLBACK");
    want_value(c, "SELECT count(*) FROM t5", "0");
    PQfinish(c);
}

/* ---- hand-built protocol sequences ---------------------------------------------- */

static void raw_copy_start(int fd, const char *sql)
{
    base_buf b = {0};
    tu_query(&b, sql);
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    base_buf_free(&b);
    char type;
    base_buf body = {0};
    assert_int_equal(tu_read_msg(fd, &type, &body), 0);
    assert_int_equal(type, 'G');
    assert_true(body.len >= 3);
    assert_int_equal(body.data[0], 0); /* text */
    base_buf_free(&body);
}

static void test_raw_sequences(void **state)
{
    tu_real_fixture *f = *state;
    int port = gw_port(f->server);
    PGconn *pc = tu_real_connect(state);
    tu_exec_ok(pc, "CREATE TABLE t6 (id INT PRIMARY KEY, v TEXT)");
    int fd = tu_session(port, "root", NULL, NULL); /* root: t6 is its table */
    assert_true(fd >= 0);
    char types[64], status, sqlstate[6];

    /* Flush and Sync are ignored during COPY; CopyDone ends it */
    raw_copy_start(fd, "COPY t6 FROM STDIN");
    base_buf b = {0};
    tu_msg(&b, 'd', "1\tone\n", 6);
    tu_msg(&b, 'H', "", 0);
    tu_msg(&b, 'S', "", 0);
    tu_msg(&b, 'd', "2\ttwo\n", 6);
    tu_msg(&b, 'c', "", 0);
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    base_buf_reset(&b);
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, sqlstate), 0);
    assert_string_equal(types, "CZ");
    assert_int_equal(status, 'I');

    /* another message during COPY: 08P01, copy over, nothing inserted */
    raw_copy_start(fd, "COPY t6 FROM STDIN");
    tu_msg(&b, 'd', "3\tthree\n", 8);
    tu_query(&b, "SELECT 1");
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    base_buf_reset(&b);
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, sqlstate), 0);
    assert_string_equal(sqlstate, "08P01");
    assert_int_equal(status, 'I');
    want_value(pc, "SELECT count(*) FROM t6", "2");

    /* after a bad row: CopyData discarded, ReadyForQuery at CopyDone only */
    raw_copy_start(fd, "COPY t6 FROM STDIN");
    tu_msg(&b, 'd', "x\n", 2);
    tu_msg(&b, 'd', "4\tfour\n", 7);
    tu_msg(&b, 'H', "", 0);
    tu_msg(&b, 'c', "", 0);
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    base_buf_reset(&b);
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, sqlstate), 0);
    assert_string_equal(types, "EZ");
    /* the client keeps sending after the error came back */
    raw_copy_start(fd, "COPY t6 FROM STDIN");
    tu_msg(&b, 'd', "5\tfive\t6\n", 9);
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    base_buf_reset(&b);
    char type;
    base_buf body = {0};
    assert_int_equal(tu_read_msg(fd, &type, &body), 0);
    assert_int_equal(type, 'E');
    tu_msg(&b, 'd', "6\tsix\n", 6);
    tu_msg(&b, 'f', "bye", 4);
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    base_buf_reset(&b);
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, sqlstate), 0);
    assert_string_equal(types, "Z");
    want_value(pc, "SELECT count(*) FROM t6", "2");

    /* random CopyData, garbage CopyFail and random message types */
    srand(7);
    for (int round = 0; round < 30; round++) {
        raw_copy_start(fd, "COPY t6 FROM STDIN WITH (FORMAT csv)");
        int n = 1 + rand() % 5;
        for (int i = 0; i < n; i++) {
            char junk[64];
            size_t len = (size_t)(rand() % (int)sizeof junk);
            for (size_t k = 0; k < len; k++)
                junk[k] = (char)(rand() % 4 == 0 ? '\n' : rand() % 256);
            tu_msg(&b, 'd', junk, len);
        }
        int end = rand() % 4;
        if (end == 0)
            tu_msg(&b, 'c', "", 0);
        else if (end == 1)
            tu_msg(&b, 'f', "no-terminator", 13);
        else if (end == 2)
            tu_msg(&b, 'f', "", 0);
        else
            tu_msg(&b, (char)("PBDECFQ"[rand() % 7]), "\0\0\0\0", 4);
        assert_int_equal(tu_send(fd, b.data, b.len), 0);
        base_buf_reset(&b);
        assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, sqlstate), 0);
        if (end == 3) { /* a CopyData error may have left the copy discarding */
            if (strchr(types, 'E') == NULL || sqlstate[0] == 0)
                fail_msg("round %d: %s", round, types);
        }
    }
    want_value(pc, "SELECT 1", "1");
    base_buf_free(&b);
    base_buf_free(&body);
    close(fd);
    PQfinish(pc);
}

/* COPY ... TO STDOUT: every CopyData concatenated (owner: caller, free);
** *tag gets the command tag. */
static char *copy_out(PGconn *c, const char *sql, char *tag, size_t tag_cap, int *messages)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_OUT)
        fail_msg("%s: %s (%s)", sql, PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
    PQclear(r);
    size_t len = 0, cap = 256;
    char *all = malloc(cap);
    assert_non_null(all);
    int n = 0;
    char *buf = NULL;
    int got;
    while ((got = PQgetCopyData(c, &buf, 0)) > 0) {
        while (len + (size_t)got + 1 > cap) {
            cap *= 2;
            all = realloc(all, cap);
            assert_non_null(all);
        }
        memcpy(all + len, buf, (size_t)got);
        len += (size_t)got;
        n++;
        PQfreemem(buf);
    }
    assert_int_equal(got, -1); /* done, not an error */
    all[len] = 0;
    r = PQgetResult(c);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    snprintf(tag, tag_cap, "%s", PQcmdStatus(r));
    PQclear(r);
    while ((r = PQgetResult(c)) != NULL)
        PQclear(r);
    if (messages)
        *messages = n;
    return all;
}

static void test_copy_to_stdout(void **state)
{
    PGconn *c = tu_real_connect(state);
    char tag[64];
    int n = 0;
    tu_exec_ok(c, "CREATE TABLE o1 (id INT PRIMARY KEY, note TEXT, x FLOAT)");
    tu_exec_ok(c, "INSERT INTO o1 VALUES (1, 'plain', 1.5), (2, 'a,b', NULL), "
                  "(3, 'say \"hi\"', 2), (4, E'two\\nlines', 0), (5, '', -1)");
    char *got = copy_out(c, "COPY o1 TO STDOUT", tag, sizeof tag, &n);
    assert_string_equal(got, "1\tplain\t1.5\n2\ta,b\t\\N\n3\tsay \"hi\"\t2\n4\ttwo\\nlines\t0\n"
                             "5\t\t-1\n");
    assert_string_equal(tag, "COPY 5");
    assert_int_equal(n, 5); /* one CopyData per row */
    free(got);
    got = copy_out(c, "COPY o1 TO STDOUT WITH (FORMAT csv, HEADER, NULL 'NULL')", tag, sizeof tag,
                   NULL);
    assert_string_equal(got, "id,note,x\n1,plain,1.5\n2,\"a,b\",NULL\n3,\"say \"\"hi\"\"\",2\n"
                             "4,\"two\nlines\",0\n5,,-1\n");
    free(got);
    got = copy_out(c, "COPY (SELECT note FROM o1 WHERE id IN (1, 2)) TO STDOUT (DELIMITER '|')",
                   tag, sizeof tag, NULL);
    assert_string_equal(got, "plain\na,b\n");
    assert_string_equal(tag, "COPY 2");
    free(got);
    /* a round trip: out in text, back in through COPY FROM, equal */
    tu_exec_ok(c, "CREATE TABLE o2 (id INT PRIMARY KEY, note TEXT, x FLOAT)");
    got = copy_out(c, "COPY o1 TO STDOUT", tag, sizeof tag, NULL);
    const char *chunks[] = {got};
    PGresult *r = copy_in(c, "COPY o2 FROM STDIN", chunks, 1, NULL);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    char *again = copy_out(c, "COPY o2 TO STDOUT", tag, sizeof tag, NULL);
    assert_string_equal(again, got);
    free(again);
    free(got);
    /* errors: before any CopyOutResponse, the session goes on */
    expect_error(PQexec(c, "COPY nosuch TO STDOUT"), "42P01");
    expect_error(PQexec(c, "COPY o1 TO '/tmp/o1'"), "0A000");
    want_value(c, "SELECT count(*) FROM o2", "5");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    PQfinish(c);
}

/* More bytes than the gateway buffers at once: the rows stream under
** backpressure and all arrive, in order. */
static void test_copy_to_large(void **state)
{
    PGconn *c = tu_real_connect(state);
    char tag[64];
    int n = 0;
    tu_exec_ok(c, "CREATE TABLE big (id INT PRIMARY KEY, pad TEXT)");
    char pad[201], sql[400], want[300];
    memset(pad, 'p', 200);
    pad[200] = 0;
    snprintf(sql, sizeof sql, "INSERT INTO big SELECT g, g || '%s' FROM generate_series(1, 6000) AS g",
             pad);
    tu_exec_ok(c, sql);
    char *got = copy_out(c, "COPY big TO STDOUT", tag, sizeof tag, &n);
    assert_string_equal(tag, "COPY 6000");
    assert_int_equal(n, 6000);
    snprintf(want, sizeof want, "6000\t6000%s\n", pad);
    assert_true(strlen(got) > strlen(want));
    assert_string_equal(got + strlen(got) - strlen(want), want);
    free(got);
    PQfinish(c);
}

/* COPY TO through the extended protocol (PQexecParams): CopyOutResponse
** in answer to Execute. */
static void test_copy_to_extended(void **state)
{
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE o3 (id INT PRIMARY KEY)");
    tu_exec_ok(c, "INSERT INTO o3 VALUES (1), (2)");
    PGresult *r = PQexecParams(c, "COPY o3 TO STDOUT", 0, NULL, NULL, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_COPY_OUT);
    PQclear(r);
    char *buf = NULL;
    int rows = 0, got;
    while ((got = PQgetCopyData(c, &buf, 0)) > 0) {
        rows++;
        PQfreemem(buf);
    }
    assert_int_equal(got, -1);
    assert_int_equal(rows, 2);
    r = PQgetResult(c);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "COPY 2");
    PQclear(r);
    while ((r = PQgetResult(c)) != NULL)
        PQclear(r);
    want_value(c, "SELECT count(*) FROM o3", "2");
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_text),
        cmocka_unit_test(test_copy_csv_header),
        cmocka_unit_test(test_copy_fail_and_bad_row),
        cmocka_unit_test(test_copy_in_block),
        cmocka_unit_test(test_copy_extended_protocol),
        cmocka_unit_test(test_raw_sequences),
        cmocka_unit_test(test_copy_to_stdout),
        cmocka_unit_test(test_copy_to_large),
        cmocka_unit_test(test_copy_to_extended),
    };
    return cmocka_run_group_tests(tests, tu_real_setup, tu_real_teardown);
}
