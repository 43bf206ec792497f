/*
** The extended query protocol against the real SQL engine (sqlv on txn on
** the in-memory storage twin): libpq's PQprepare / PQexecPrepared /
** PQexecParams with text and binary parameters and results, pipelines, and
** hand-built message sequences (errors in the middle of a pipeline and
** recovery at Sync, row-limited Execute with PortalSuspended).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdbool.h>
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

static int port_of(void **state)
{
    return gw_port(((tu_real_fixture *)*state)->server);
}

static void check_ok(PGresult *r, ExecStatusType want, const char *what)
{
    if (PQresultStatus(r) != want)
        fail_msg("%s: %s: %s", what, PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
}

static void check_state(PGresult *r, const char *sqlstate, const char *what)
{
    const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQresultStatus(r) != PGRES_FATAL_ERROR || got == NULL || strcmp(got, sqlstate) != 0)
        fail_msg("%s: want %s, got %s %s: %s", what, sqlstate, PQresStatus(PQresultStatus(r)),
                 got ? got : "(none)", PQresultErrorMessage(r));
}

static char *rows(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    check_ok(r, PGRES_TUPLES_OK, sql);
    base_buf b = {0};
    for (int i = 0; i < PQntuples(r); i++) {
        for (int j = 0; j < PQnfields(r); j++) {
            if (j > 0)
                base_buf_append_byte(&b, '|');
            const char *v = PQgetisnull(r, i, j) ? "NULL" : PQgetvalue(r, i, j);
            base_buf_append(&b, v, strlen(v));
        }
        base_buf_append_byte(&b, '\n');
    }
    base_buf_append_byte(&b, 0);
    PQclear(r);
    return (char *)b.data;
}

static void rows_equal(PGconn *c, const char *sql, const char *want)
{
    char *got = rows(c, sql);
    if (strcmp(got, want) != 0) {
        print_error("%s:\n got: %s\nwant: %s\n", sql, got, want);
        base_free(got);
        fail();
    }
    base_free(got);
}

/* ---- libpq --------------------------------------------------------------------- */

static void test_prepare_text_params(void **state)
{
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE kinds (id INT PRIMARY KEY, name TEXT, score DOUBLE PRECISION, "
               "ok BOOL, big BIGINT, data BYTEA)");
    PGresult *r = PQprepare(c, "ins", "INSERT INTO kinds VALUES ($1, $2, $3, $4, $5, $6)", 0, NULL);
    check_ok(r, PGRES_COMMAND_OK, "prepare ins");
    PQclear(r);
    /* parameter types inferred from the target columns */
    r = PQdescribePrepared(c, "ins");
    check_ok(r, PGRES_COMMAND_OK, "describe ins");
    assert_int_equal(PQnparams(r), 6);
    assert_int_equal(PQparamtype(r, 0), 23);
    assert_int_equal(PQparamtype(r, 1), 25);
    assert_int_equal(PQparamtype(r, 2), 701);
    assert_int_equal(PQparamtype(r, 3), 16);
    assert_int_equal(PQparamtype(r, 4), 20);
    assert_int_equal(PQparamtype(r, 5), 17);
    assert_int_equal(PQnfields(r), 0);
    PQclear(r);
    const char *v1[] = {"1", "ada", "1.5", "true", "9000000000", "\\x00ff"};
    r = PQexecPrepared(c, "ins", 6, v1, NULL, NULL, 0);
    check_ok(r, PGRES_COMMAND_OK, "exec ins 1");
    assert_string_equal(PQcmdTuples(r), "1");
    PQclear(r);
    const char *v2[] = {"2", NULL, NULL, "f", NULL, NULL}; /* NULLs */
    r = PQexecPrepared(c, "ins", 6, v2, NULL, NULL, 0);
    check_ok(r, PGRES_COMMAND_OK, "exec ins 2");
    PQclear(r);
    /* bad input for an int parameter */
    const char *v3[] = {"x", "a", "1", "t", "1", "\\x"};
    r = PQexecPrepared(c, "ins", 6, v3, NULL, NULL, 0);
    check_state(r, "22P02", "bad int");
    PQclear(r);
    rows_equal(c, "SELECT id, name, score, ok, big, data FROM kinds ORDER BY id",
               "1|ada|1.5|t|9000000000|\\x00ff\n2|NULL|NULL|f|NULL|NULL\n");
    /* PQexecParams (unnamed statement), a parameter compared with a column */
    const char *p[] = {"1"};
    r = PQexecParams(c, "SELECT name, big FROM kinds WHERE id = $1", 1, NULL, p, NULL, NULL, 0);
    check_ok(r, PGRES_TUPLES_OK, "select by id");
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQfname(r, 0), "name");
    assert_int_equal(PQftype(r, 1), 20);
    assert_string_equal(PQgetvalue(r, 0, 0), "ada");
    assert_string_equal(PQgetvalue(r, 0, 1), "9000000000");
    PQclear(r);
    /* a named statement is parsed once and reused; a duplicate name fails */
    r = PQprepare(c, "ins", "SELECT 1", 0, NULL);
    check_state(r, "42P05", "duplicate statement");
    PQclear(r);
    /* the statement survives transactions and Syncs */
    const char *v4[] = {"3", "cy", "2", "no", "3", NULL};
    r = PQexecPrepared(c, "ins", 6, v4, NULL, NULL, 0);
    check_ok(r, PGRES_COMMAND_OK, "exec ins 3");
    PQclear(r);
    r = PQexecPrepared(c, "nope", 0, NULL, NULL, NULL, 0);
    check_state(r, "26000", "missing statement");
    PQclear(r);
    /* wrong parameter count */
    r = PQexecPrepared(c, "ins", 1, v4, NULL, NULL, 0);
    check_state(r, "08P01", "wrong count");
    PQclear(r);
    rows_equal(c, "SELECT count(*) FROM kinds", "3\n");
    /* multiple statements cannot be prepared */
    r = PQprepare(c, "two", "SELECT 1; SELECT 2", 0, NULL);
    check_state(r, "42601", "two statements");
    PQclear(r);
    PQfinish(c);
}

static uint32_t get_be32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return ntohl(v);
}

static uint64_t get_be64(const char *p)
{
    return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}

static void test_binary_params_and_results(void **state)
{
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE bin (id INT PRIMARY KEY, big BIGINT, f DOUBLE PRECISION, b BOOL, "
               "t TEXT, data BYTEA)");
    const Oid types[] = {23, 20, 701, 16, 25, 17};
    uint32_t id = htonl(7);
    uint64_t big = 0xFFFFFFFFFFFFFFFEull; /* -2 */
    double d = -2.25;
    uint64_t dbits;
    memcpy(&dbits, &d, 8);
    char bigbe[8], fbe[8];
    for (int i = 0; i < 8; i++) {
        bigbe[i] = (char)(big >> (56 - 8 * i));
        fbe[i] = (char)(dbits >> (56 - 8 * i));
    }
    char bval = 1;
    const char blob[] = {0, 1, 2, (char)0xff};
    const char *vals[] = {(const char *)&id, bigbe, fbe, &bval, "héllo", blob};
    const int lens[] = {4, 8, 8, 1, (int)strlen("héllo"), 4};
    const int fmts[] = {1, 1, 1, 1, 1, 1};
    PGresult *r = PQexecParams(c, "INSERT INTO bin VALUES ($1, $2, $3, $4, $5, $6)", 6, types,
                               vals, lens, fmts, 0);
    check_ok(r, PGRES_COMMAND_OK, "binary insert");
    PQclear(r);
    /* a NULL in binary too */
    uint32_t id2 = htonl(8);
    const char *vals2[] = {(const char *)&id2, NULL, NULL, NULL, NULL, NULL};
    r = PQexecParams(c, "INSERT INTO bin VALUES ($1, $2, $3, $4, $5, $6)", 6, types, vals2, lens,
                     fmts, 0);
    check_ok(r, PGRES_COMMAND_OK, "binary insert NULLs");
    PQclear(r);
    rows_equal(c, "SELECT id, big, f, b, t, data FROM bin ORDER BY id",
               "7|-2|-2.25|t|héllo|\\x000102ff\n8|NULL|NULL|NULL|NULL|NULL\n");
    /* binary results */
    const char *p[] = {(const char *)&id};
    const int plen[] = {4};
    const int pfmt[] = {1};
    const Oid ptype[] = {23};
    r = PQexecParams(c, "SELECT id, big, f, b, t, data FROM bin WHERE id = $1", 1, ptype, p, plen,
                     pfmt, 1);
    check_ok(r, PGRES_TUPLES_OK, "binary select");
    assert_int_equal(PQntuples(r), 1);
    assert_int_equal(PQfformat(r, 0), 1);
    assert_int_equal(PQftype(r, 0), 23);
    assert_int_equal(PQgetlength(r, 0, 0), 4);
    assert_int_equal(get_be32(PQgetvalue(r, 0, 0)), 7);
    assert_int_equal(PQftype(r, 1), 20);
    assert_int_equal(PQgetlength(r, 0, 1), 8);
    assert_true((int64_t)get_be64(PQgetvalue(r, 0, 1)) == -2);
    assert_int_equal(PQftype(r, 2), 701);
    uint64_t fb = get_be64(PQgetvalue(r, 0, 2));
    double got;
    memcpy(&got, &fb, 8);
    assert_true(got == -2.25);
    assert_int_equal(PQftype(r, 3), 16);
    assert_int_equal(PQgetlength(r, 0, 3), 1);
    assert_int_equal(PQgetvalue(r, 0, 3)[0], 1);
    assert_int_equal(PQgetlength(r, 0, 4), (int)strlen("héllo"));
    assert_memory_equal(PQgetvalue(r, 0, 4), "héllo", strlen("héllo"));
    assert_int_equal(PQftype(r, 5), 17);
    assert_int_equal(PQgetlength(r, 0, 5), 4);
    assert_memory_equal(PQgetvalue(r, 0, 5), blob, 4);
    PQclear(r);
    /* a binary value of the wrong size */
    const int badlen[] = {3};
    r = PQexecParams(c, "SELECT id FROM bin WHERE id = $1", 1, ptype, p, badlen, pfmt, 0);
    check_state(r, "22P03", "bad binary length");
    PQclear(r);
    /* binary of a type we only take as text */
    const Oid numeric[] = {1700};
    r = PQexecParams(c, "SELECT id FROM bin WHERE id = $1", 1, numeric, p, plen, pfmt, 0);
    check_state(r, "0A000", "binary numeric");
    PQclear(r);
    PQfinish(c);
}

static void test_transaction_and_accounts(void **state)
{
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE accts (id INT PRIMARY KEY, owner TEXT NOT NULL, balance INT)");
    const char *a[] = {"1", "ada", "100"}, *b[] = {"2", "bob", "50"};
    const char *ins = "INSERT INTO accts VALUES ($1, $2, $3)";
    PGresult *r = PQexecParams(c, ins, 3, NULL, a, NULL, NULL, 0);
    check_ok(r, PGRES_COMMAND_OK, "ins a");
    PQclear(r);
    r = PQexecParams(c, ins, 3, NULL, b, NULL, NULL, 0);
    check_ok(r, PGRES_COMMAND_OK, "ins b");
    PQclear(r);
    /* a transfer inside BEGIN through parameters */
    tu_exec_ok(c, "BEGIN");
    const char *upd = "UPDATE accts SET balance = balance + $1 WHERE id = $2";
    const char *d1[] = {"-30", "1"}, *d2[] = {"30", "2"};
    r = PQexecParams(c, upd, 2, NULL, d1, NULL, NULL, 0);
    check_ok(r, PGRES_COMMAND_OK, "debit");
    assert_string_equal(PQcmdTuples(r), "1");
    PQclear(r);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS);
    r = PQexecParams(c, upd, 2, NULL, d2, NULL, NULL, 0);
    check_ok(r, PGRES_COMMAND_OK, "credit");
    PQclear(r);
    /* another session does not see it yet */
    PGconn *c2 = tu_real_connect(state);
    rows_equal(c2, "SELECT sum(balance) FROM accts WHERE id = 1", "100\n");
    tu_exec_ok(c, "COMMIT");
    rows_equal(c2, "SELECT id, balance FROM accts ORDER BY id", "1|70\n2|80\n");
    /* an error inside a block: 'E' until ROLLBACK, even through Execute */
    tu_exec_ok(c, "BEGIN");
    const char *dup[] = {"1", "again", "0"};
    r = PQexecParams(c, ins, 3, NULL, dup, NULL, NULL, 0);
    check_state(r, "23505", "duplicate key");
    PQclear(r);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INERROR);
    r = PQexecParams(c, upd, 2, NULL, d1, NULL, NULL, 0);
    check_state(r, "25P02", "aborted block");
    PQclear(r);
    r = PQexecParams(c, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
    check_ok(r, PGRES_COMMAND_OK, "rollback via extended");
    PQclear(r);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    /* BEGIN/COMMIT through the extended protocol too */
    r = PQexecParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    check_ok(r, PGRES_COMMAND_OK, "begin via extended");
    PQclear(r);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS);
    r = PQexecParams(c, upd, 2, NULL, d1, NULL, NULL, 0);
    check_ok(r, PGRES_COMMAND_OK, "debit 2");
    PQclear(r);
    r = PQexecParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
    check_ok(r, PGRES_COMMAND_OK, "commit via extended");
    PQclear(r);
    rows_equal(c2, "SELECT sum(balance) FROM accts", "120\n");
    /* SHOW through Describe/Execute */
    r = PQexecParams(c, "SHOW server_version", 0, NULL, NULL, NULL, NULL, 0);
    check_ok(r, PGRES_TUPLES_OK, "show");
    assert_string_equal(PQgetvalue(r, 0, 0), "15.0");
    PQclear(r);
    /* the empty query */
    r = PQexecParams(c, "", 0, NULL, NULL, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_EMPTY_QUERY);
    PQclear(r);
    PQfinish(c2);
    PQfinish(c);
}

static void test_pipeline(void **state)
{
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE pipe (id INT PRIMARY KEY, v TEXT)");
    assert_int_equal(PQenterPipelineMode(c), 1);
    const char *ins = "INSERT INTO pipe VALUES ($1, $2)";
    const char *a[] = {"1", "a"}, *b[] = {"2", "b"};
    assert_int_equal(PQsendQueryParams(c, ins, 2, NULL, a, NULL, NULL, 0), 1);
    assert_int_equal(PQsendQueryParams(c, ins, 2, NULL, b, NULL, NULL, 0), 1);
    assert_int_equal(PQpipelineSync(c), 1);
    /* the second group fails in the middle: its earlier insert rolls back */
    const char *x[] = {"3", "c"}, *dup[] = {"1", "dup"}, *y[] = {"4", "d"};
    assert_int_equal(PQsendQueryParams(c, ins, 2, NULL, x, NULL, NULL, 0), 1);
    assert_int_equal(PQsendQueryParams(c, ins, 2, NULL, dup, NULL, NULL, 0), 1);
    assert_int_equal(PQsendQueryParams(c, ins, 2, NULL, y, NULL, NULL, 0), 1);
    assert_int_equal(PQpipelineSync(c), 1);
    assert_int_equal(PQsendQueryParams(c, "SELECT count(*) FROM pipe", 0, NULL, NULL, NULL, NULL,
                                       0),
                     1);
    assert_int_equal(PQpipelineSync(c), 1);
    ExecStatusType want[] = {PGRES_COMMAND_OK,  PGRES_COMMAND_OK,   PGRES_PIPELINE_SYNC,
                             PGRES_COMMAND_OK,  PGRES_FATAL_ERROR,  PGRES_PIPELINE_ABORTED,
                             PGRES_PIPELINE_SYNC, PGRES_TUPLES_OK,   PGRES_PIPELINE_SYNC};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        PGresult *r = PQgetResult(c);
        assert_non_null(r);
        if (PQresultStatus(r) != want[i])
            fail_msg("pipeline result %zu: %s, want %s: %s", i, PQresStatus(PQresultStatus(r)),
                     PQresStatus(want[i]), PQresultErrorMessage(r));
        if (want[i] == PGRES_TUPLES_OK)
            assert_string_equal(PQgetvalue(r, 0, 0), "2");
        PQclear(r);
        if (want[i] != PGRES_PIPELINE_SYNC)
            assert_null(PQgetResult(c)); /* end of this query's results */
    }
    assert_int_equal(PQexitPipelineMode(c), 1);
    rows_equal(c, "SELECT id, v FROM pipe ORDER BY id", "1|a\n2|b\n");
    PQfinish(c);
}

/* ---- raw protocol --------------------------------------------------------------- */

static void put_u16(base_buf *b, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    base_buf_append(b, p, 2);
}

static void put_str(base_buf *b, const char *s)
{
    base_buf_append(b, s, strlen(s) + 1);
}

static void msg_parse(base_buf *out, const char *name, const char *sql)
{
    base_buf m = {0};
    put_str(&m, name);
    put_str(&m, sql);
    put_u16(&m, 0);
    tu_msg(out, 'P', m.data, m.len);
    base_buf_free(&m);
}

/* Bind with text parameters (NULL values as SQL NULL). */
static void msg_bind(base_buf *out, const char *portal, const char *stmt, int n,
                     const char *const *vals)
{
    base_buf m = {0};
    put_str(&m, portal);
    put_str(&m, stmt);
    put_u16(&m, 0);
    put_u16(&m, (uint16_t)n);
    for (int i = 0; i < n; i++) {
        if (vals[i] == NULL) {
            tu_put_u32(&m, 0xffffffffu);
        } else {
            tu_put_u32(&m, (uint32_t)strlen(vals[i]));
            base_buf_append(&m, vals[i], strlen(vals[i]));
        }
    }
    put_u16(&m, 0);
    tu_msg(out, 'B', m.data, m.len);
    base_buf_free(&m);
}

static void msg_describe(base_buf *out, char kind, const char *name)
{
    base_buf m = {0};
    base_buf_append_byte(&m, (uint8_t)kind);
    put_str(&m, name);
    tu_msg(out, 'D', m.data, m.len);
    base_buf_free(&m);
}

static void msg_execute(base_buf *out, const char *portal, uint32_t max_rows)
{
    base_buf m = {0};
    put_str(&m, portal);
    tu_put_u32(&m, max_rows);
    tu_msg(out, 'E', m.data, m.len);
    base_buf_free(&m);
}

static void msg_close(base_buf *out, char kind, const char *name)
{
    base_buf m = {0};
    base_buf_append_byte(&m, (uint8_t)kind);
    put_str(&m, name);
    tu_msg(out, 'C', m.data, m.len);
    base_buf_free(&m);
}

static void send_expect(int fd, base_buf *b, const char *want_types, char want_status,
                        const char *want_state)
{
    char types[128], status, st[6];
    assert_int_equal(tu_send(fd, b->data, b->len), 0);
    base_buf_reset(b);
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, st), 0);
    if (strcmp(types, want_types) != 0 || status != want_status ||
        strcmp(st, want_state) != 0)
        fail_msg("got %s %c '%s', want %s %c '%s'", types, status, st, want_types, want_status,
                 want_state);
}

static void test_raw_pipeline_errors(void **state)
{
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE raw (id INT PRIMARY KEY, v TEXT)");
    tu_exec_ok(c, "INSERT INTO raw VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e')");
    int fd = tu_session(port_of(state), "root", NULL, NULL);
    assert_true(fd >= 0);
    base_buf b = {0};
    const char *one[] = {"1"};
    /* Parse ok, Bind error (wrong count), Execute, Sync: the error, then Z */
    msg_parse(&b, "", "SELECT v FROM raw WHERE id = $1");
    msg_bind(&b, "", "", 0, NULL);
    msg_execute(&b, "", 0);
    tu_msg(&b, 'S', NULL, 0);
    send_expect(fd, &b, "1EZ", 'I', "08P01");
    /* recovery */
    msg_parse(&b, "", "SELECT v FROM raw WHERE id = $1");
    msg_bind(&b, "", "", 1, one);
    msg_describe(&b, 'P', "");
    msg_execute(&b, "", 0);
    tu_msg(&b, 'S', NULL, 0);
    send_expect(fd, &b, "12TDCZ", 'I', "");
    /* Describe statement: ParameterDescription + RowDescription; NoData */
    msg_parse(&b, "s1", "SELECT id, v FROM raw WHERE id > $1 ORDER BY id");
    msg_describe(&b, 'S', "s1");
    msg_parse(&b, "s2", "UPDATE raw SET v = $1 WHERE id = $2");
    msg_describe(&b, 'S', "s2");
    tu_msg(&b, 'S', NULL, 0);
    send_expect(fd, &b, "1tT1tnZ", 'I', "");
    /* row-limited Execute: PortalSuspended until the last rows */
    const char *zero[] = {"0"};
    msg_bind(&b, "p1", "s1", 1, zero);
    msg_describe(&b, 'P', "p1");
    msg_execute(&b, "p1", 2);
    msg_execute(&b, "p1", 2);
    msg_execute(&b, "p1", 2);
    tu_msg(&b, 'H', NULL, 0);
    msg_close(&b, 'P', "p1");
    tu_msg(&b, 'S', NULL, 0);
    send_expect(fd, &b, "2TDDsDDsDC3Z", 'I', "");
    /* the portal is gone; the statement lives on */
    msg_execute(&b, "p1", 0);
    tu_msg(&b, 'S', NULL, 0);
    send_expect(fd, &b, "EZ", 'I', "34000");
    msg_bind(&b, "", "s1", 1, one);
    msg_execute(&b, "", 1);
    tu_msg(&b, 'S', NULL, 0);
    send_expect(fd, &b, "2DsZ", 'I', "");
    /* an error in an implicit transaction rolls back what came before */
    const char *upd1[] = {"X", "1"}, *bad[] = {"Y", "not a number"};
    msg_bind(&b, "", "s2", 2, upd1);
    msg_execute(&b, "", 0);
    msg_bind(&b, "", "s2", 2, bad);
    msg_execute(&b, "", 0);
    msg_parse(&b, "ignored", "SELECT 1");
    tu_msg(&b, 'S', NULL, 0);
    send_expect(fd, &b, "2CEZ", 'I', "22P02");
    rows_equal(c, "SELECT v FROM raw WHERE id = 1", "a\n");
    /* "ignored" was discarded: describing it fails */
    msg_describe(&b, 'S', "ignored");
    tu_msg(&b, 'S', NULL, 0);
    send_expect(fd, &b, "EZ", 'I', "26000");
    /* Close of a statement; Close of what does not exist is fine */
    msg_close(&b, 'S', "s1");
    msg_close(&b, 'S', "never");
    msg_describe(&b, 'S', "s1");
    tu_msg(&b, 'S', NULL, 0);
    send_expect(fd, &b, "33EZ", 'I', "26000");
    /* a simple Query still works afterwards */
    tu_query(&b, "SELECT count(*) FROM raw");
    send_expect(fd, &b, "TDCZ", 'I', "");
    /* malformed: a negative length other than -1 */
    base_buf m = {0};
    put_str(&m, "");
    put_str(&m, "s2");
    put_u16(&m, 0);
    put_u16(&m, 2);
    tu_put_u32(&m, 0xfffffff0u);
    put_u16(&m, 0);
    tu_msg(&b, 'B', m.data, m.len);
    base_buf_free(&m);
    tu_msg(&b, 'S', NULL, 0);
    send_expect(fd, &b, "EZ", 'I', "08P01");
    /* a Sync alone */
    tu_msg(&b, 'S', NULL, 0);
    send_expect(fd, &b, "Z", 'I', "");
    base_buf_free(&b);
    close(fd);
    PQfinish(c);
}

static void test_param_inference(void **state)
{
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE inf (id BIGINT PRIMARY KEY, small SMALLINT, name TEXT, n NUMERIC)");
    struct {
        const char *sql;
        int n;
        Oid want[3];
    } cases[] = {
        {"SELECT * FROM inf WHERE id = $1", 1, {20}},
        {"SELECT * FROM inf WHERE $1 < small AND name <> $2", 2, {21, 25}},
        {"SELECT * FROM inf WHERE inf.id >= $1", 1, {20}},
        {"UPDATE inf SET n = $1 WHERE id = $2", 2, {1700, 20}},
        {"INSERT INTO inf (name, id) VALUES ($1, $2)", 2, {25, 20}},
        {"SELECT $1", 1, {25}},
        {"SELECT CAST($1 AS INTEGER) + $2", 2, {23, 25}},
        {"SELECT * FROM inf ORDER BY id LIMIT $1 OFFSET $2", 2, {20, 20}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        PGresult *r = PQprepare(c, "", cases[i].sql, 0, NULL);
        check_ok(r, PGRES_COMMAND_OK, cases[i].sql);
        PQclear(r);
        r = PQdescribePrepared(c, "");
        check_ok(r, PGRES_COMMAND_OK, cases[i].sql);
        assert_int_equal(PQnparams(r), cases[i].n);
        for (int k = 0; k < cases[i].n; k++)
            if (PQparamtype(r, k) != cases[i].want[k])
                fail_msg("%s: $%d is %u, want %u", cases[i].sql, k + 1, PQparamtype(r, k),
                         cases[i].want[k]);
        PQclear(r);
    }
    /* client-given types win */
    const Oid t[] = {23};
    PGresult *r = PQprepare(c, "", "SELECT $1", 1, t);
    check_ok(r, PGRES_COMMAND_OK, "typed");
    PQclear(r);
    r = PQdescribePrepared(c, "");
    assert_int_equal(PQparamtype(r, 0), 23);
    PQclear(r);
    const char *v[] = {"41"};
    r = PQexecPrepared(c, "", 1, v, NULL, NULL, 0);
    check_ok(r, PGRES_TUPLES_OK, "typed exec");
    assert_string_equal(PQgetvalue(r, 0, 0), "41");
    PQclear(r);
    /* ? and :name parameters are refused */
    r = PQprepare(c, "", "SELECT ?", 0, NULL);
    check_state(r, "42601", "question mark");
    PQclear(r);
    PQfinish(c);
}

/* Many named statements and portals: the limits hold, memory is freed. */
static void test_limits(void **state)
{
    PGconn *c = tu_real_connect(state);
    char name[32];
    for (int i = 0; i < SQLV_STATEMENTS_MAX; i++) {
        snprintf(name, sizeof name, "s%d", i);
        PGresult *r = PQprepare(c, name, "SELECT 1", 0, NULL);
        check_ok(r, PGRES_COMMAND_OK, name);
        PQclear(r);
    }
    PGresult *r = PQprepare(c, "one_more", "SELECT 1", 0, NULL);
    check_state(r, "54000", "statement limit");
    PQclear(r);
    /* the unnamed statement does not count */
    r = PQexecParams(c, "SELECT 2", 0, NULL, NULL, NULL, NULL, 0);
    check_ok(r, PGRES_TUPLES_OK, "unnamed");
    PQclear(r);
    PQfinish(c);
}


/* Seeded random extended-protocol sequences against the real engine:
** statements with and without parameters, utility statements, BEGIN /
** COMMIT / ROLLBACK, bad names and counts, interleaved portals, row limits.
** Each round ends with a Sync; the session must answer it and still run a
** simple query. MERIDIAN_SEED=<n> replays. */
static uint64_t rng;

static uint32_t rnd_below(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (uint32_t)(rng % n) : 0;
}

static void test_random_sequences(void **state)
{
    static const struct {
        const char *sql;
        int nparams;
    } queries[] = {
        {"SELECT id, v FROM rnd WHERE id > $1 ORDER BY id", 1},
        {"INSERT INTO rnd VALUES ($1, $2)", 2},
        {"UPDATE rnd SET v = $2 WHERE id = $1", 2},
        {"DELETE FROM rnd WHERE id = $1", 1},
        {"SELECT count(*), $1 FROM rnd", 1},
        {"SELECT * FROM rnd", 0},
        {"BEGIN", 0},
        {"COMMIT", 0},
        {"ROLLBACK", 0},
        {"SHOW client_encoding", 0},
        {"", 0},
        {"SELEC nonsense", 0},
        {"SELECT * FROM no_such_table", 0},
        {"CREATE TABLE IF NOT EXISTS rnd2 (k INT PRIMARY KEY)", 0},
        {"SELECT $1, $2, $3", 3},
    };
    static const char *const names[] = {"", "a", "b"};
    static const char *const good[] = {"1", "2", "3", "4", "5"};
    static const char *const values[] = {"1", "2", "0", "-1", "x", "", "99999999999", NULL};
    int nparams_of[3] = {0, 0, 0};
    const char *env = getenv("MERIDIAN_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)base_realtime_ns();
    rng = seed | 1;
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE rnd (id INT PRIMARY KEY, v TEXT)");
    int fd = tu_session(port_of(state), "root", NULL, NULL);
    assert_true(fd >= 0);
    base_buf b = {0};
    int counts[128] = {0};
    for (int round = 0; round < 300; round++) {
        /* mostly coherent groups: Parse, Bind with fitting values,
        ** Describe, Executes with row limits */
        for (int g = (int)rnd_below(3); g > 0; g--) {
            int si = (int)rnd_below(3), q = (int)rnd_below(6);
            const char *v[3];
            for (int j = 0; j < queries[q].nparams; j++)
                v[j] = good[rnd_below(5)];
            msg_close(&b, 'S', names[si]);
            msg_close(&b, 'P', names[si]);
            msg_parse(&b, names[si], queries[q].sql);
            nparams_of[si] = queries[q].nparams;
            msg_bind(&b, names[si], names[si], queries[q].nparams, v);
            if (rnd_below(2))
                msg_describe(&b, 'P', names[si]);
            for (int e = 1 + (int)rnd_below(3); e > 0; e--)
                msg_execute(&b, names[si], rnd_below(3));
        }
        int n = (int)rnd_below(6);
        for (int i = 0; i < n; i++) {
            int si = (int)rnd_below(3);
            const char *sn = names[si], *pn = names[rnd_below(3)];
            switch (rnd_below(8)) {
            case 0:
            case 1: {
                int q = (int)rnd_below(sizeof queries / sizeof queries[0]);
                msg_parse(&b, sn, queries[q].sql);
                nparams_of[si] = queries[q].nparams;
                break;
            }
            case 2:
            case 3: {
                const char *v[3];
                bool valid = rnd_below(5) != 0;
                int k = valid ? nparams_of[si] : (int)rnd_below(4);
                for (int j = 0; j < k; j++)
                    v[j] = valid ? good[rnd_below(5)]
                                 : values[rnd_below(sizeof values / sizeof values[0])];
                msg_bind(&b, pn, sn, k, v);
                break;
            }
            case 4:
            case 5: msg_execute(&b, pn, rnd_below(3)); break;
            default:
                if (rnd_below(3) == 0)
                    msg_describe(&b, rnd_below(2) ? 'S' : 'P', rnd_below(2) ? sn : pn);
                else if (rnd_below(2))
                    msg_close(&b, rnd_below(2) ? 'S' : 'P', rnd_below(2) ? sn : pn);
                else
                    tu_msg(&b, rnd_below(2) ? 'S' : 'H', NULL, 0);
                break;
            }
        }
        tu_msg(&b, 'S', NULL, 0);
        tu_query(&b, "SELECT 1");
        assert_int_equal(tu_send(fd, b.data, b.len), 0);
        base_buf_reset(&b);
        /* read through the last ReadyForQuery: the simple query's */
        char type = 0;
        base_buf body = {0};
        bool saw_one = false;
        for (int guard = 0; guard < 100000; guard++) {
            if (tu_read_msg(fd, &type, &body) != 0)
                fail_msg("seed=%llu round %d: connection lost", (unsigned long long)seed, round);
            counts[(unsigned char)type & 127]++;
            if (type == 'D' && body.len == 7 && memcmp(body.data, "\0\1\0\0\0\1" "1", 7) == 0)
                saw_one = true;
            if (type == 'Z' && saw_one)
                break;
        }
        base_buf_free(&body);
        if (!saw_one)
            fail_msg("seed=%llu round %d: no answer to SELECT 1", (unsigned long long)seed, round);
        /* end any block the round left open */
        tu_query(&b, "ROLLBACK");
        char types[64], status;
        assert_int_equal(tu_send(fd, b.data, b.len), 0);
        base_buf_reset(&b);
        assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, NULL), 0);
        assert_int_equal(status, 'I');
    }
    print_message("seed=%llu: %d ParseComplete, %d BindComplete, %d rows, %d CommandComplete, "
                  "%d PortalSuspended, %d errors\n",
                  (unsigned long long)seed, counts['1'], counts['2'], counts['D'], counts['C'],
                  counts['s'], counts['E']);
    /* every error path taken above must also have been recovered from */
    assert_true(counts['1'] > 0 && counts['C'] > 0 && counts['E'] > 0);
    base_buf_free(&b);
    close(fd);
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prepare_text_params),
        cmocka_unit_test(test_binary_params_and_results),
        cmocka_unit_test(test_transaction_and_accounts),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_raw_pipeline_errors),
        cmocka_unit_test(test_param_inference),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_random_sequences),
    };
    return cmocka_run_group_tests(tests, tu_real_setup, tu_real_teardown);
}
