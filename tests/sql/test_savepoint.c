/*
** tests/sql/test_savepoint.c: SAVEPOINT / ROLLBACK TO SAVEPOINT / RELEASE
** SAVEPOINT (sql/session.c) with PostgreSQL's semantics, in process: rows
** undone and kept, nested and repeated savepoints, DDL undone, the client
** retry pattern out of a failed block, 3B001 / 25P01 / 25P02, the reads a
** rolled-back part made staying in the read set, the extended protocol,
** the restart of an aborted KV transaction (a key space that fails a read
** on demand), CockroachDB's retry protocol (RELEASE SAVEPOINT
** cockroach_restart commits; a 40001 there, ROLLBACK TO and retry; the
** committed block awaiting COMMIT; a failed commit), the portals a
** ROLLBACK TO drops, the savepoint limit and out of memory at every
** allocation.
** Transcript format: tests/sql/sql_harness.h.
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
#include "tests/sql/sql_harness.h"

#define NOT_IN_BLOCK(what) "E 25P01 " what " can only be used in transaction blocks\n"
#define ABORTED                                                                                    \
    "E 25P02 current transaction is aborted, commands ignored until end of transaction block\n"

/* Rows undone by ROLLBACK TO, kept by RELEASE; nested savepoints; a
** savepoint survives its own ROLLBACK TO and the later ones do not. */
static void test_rows_undone_and_kept(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f), *o = session(&f);
    EXPECT(s, "CREATE TABLE sp (id INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "BEGIN; INSERT INTO sp VALUES (1, 'a'); SAVEPOINT a; INSERT INTO sp VALUES (2, 'b')",
           "C BEGIN\nC INSERT 0 1\nC SAVEPOINT\nC INSERT 0 1\n");
    EXPECT(s, "SAVEPOINT b; INSERT INTO sp VALUES (3, 'c'); UPDATE sp SET v = 'A' WHERE id = 1",
           "C SAVEPOINT\nC INSERT 0 1\nC UPDATE 1\n");
    EXPECT(s, "SELECT id, v FROM sp ORDER BY id",
           "D id:23,v:25\nR 1|A\nR 2|b\nR 3|c\nC SELECT 3\n");
    EXPECT(s, "ROLLBACK TO SAVEPOINT b", "C ROLLBACK\n");
    EXPECT(s, "SELECT id, v FROM sp ORDER BY id", "D id:23,v:25\nR 1|a\nR 2|b\nC SELECT 2\n");
    /* b survives its own ROLLBACK TO */
    EXPECT(s, "DELETE FROM sp; ROLLBACK TO b", "C DELETE 2\nC ROLLBACK\n");
    EXPECT(s, "SELECT count(*) FROM sp", "D count:20\nR 2\nC SELECT 1\n");
    /* ROLLBACK TO a destroys b */
    EXPECT(s, "ROLLBACK TO a", "C ROLLBACK\n");
    EXPECT(s, "SELECT id, v FROM sp ORDER BY id", "D id:23,v:25\nR 1|a\nC SELECT 1\n");
    EXPECT(s, "RELEASE b", "E 3B001 savepoint \"b\" does not exist\n");
    assert_int_equal(sqlv_session_status(s), 'E');
    EXPECT(s, "ROLLBACK TO a", "C ROLLBACK\n");
    assert_int_equal(sqlv_session_status(s), 'T');
    /* RELEASE keeps the writes, and destroys the savepoint and later ones */
    EXPECT(s, "INSERT INTO sp VALUES (4, 'd'); SAVEPOINT c; UPDATE sp SET v = 'x' WHERE id = 1",
           "C INSERT 0 1\nC SAVEPOINT\nC UPDATE 1\n");
    EXPECT(s, "SAVEPOINT d; INSERT INTO sp VALUES (5, 'e'); RELEASE SAVEPOINT c",
           "C SAVEPOINT\nC INSERT 0 1\nC RELEASE\n");
    EXPECT(s, "ROLLBACK TO d", "E 3B001 savepoint \"d\" does not exist\n");
    EXPECT(s, "ROLLBACK TO c", "E 3B001 savepoint \"c\" does not exist\n");
    EXPECT(s, "ROLLBACK TRANSACTION TO SAVEPOINT a", "C ROLLBACK\n"); /* a is still there */
    EXPECT(s, "INSERT INTO sp VALUES (6, 'f'); SAVEPOINT e; INSERT INTO sp VALUES (7, 'g')",
           "C INSERT 0 1\nC SAVEPOINT\nC INSERT 0 1\n");
    EXPECT(s, "RELEASE e; RELEASE a", "C RELEASE\nC RELEASE\n");
    EXPECT(o, "SELECT count(*) FROM sp", "D count:20\nR 0\nC SELECT 1\n"); /* nothing yet */
    EXPECT(s, "COMMIT", "C COMMIT\n");
    EXPECT(o, "SELECT id, v FROM sp ORDER BY id",
           "D id:23,v:25\nR 1|a\nR 6|f\nR 7|g\nC SELECT 3\n");
    /* the savepoints ended with the block */
    EXPECT(s, "BEGIN; ROLLBACK TO a", "C BEGIN\nE 3B001 savepoint \"a\" does not exist\n");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

/* Repeated names (the newest wins), PostgreSQL's identifier folding, the
** spellings, and syntax errors. */
static void test_names(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE nm (id INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(s,
           "BEGIN; SAVEPOINT a; INSERT INTO nm VALUES (1); SAVEPOINT a; INSERT INTO nm VALUES (2); "
           "ROLLBACK TO a",
           "C BEGIN\nC SAVEPOINT\nC INSERT 0 1\nC SAVEPOINT\nC INSERT 0 1\nC ROLLBACK\n");
    EXPECT(s, "SELECT id FROM nm", "D id:23\nR 1\nC SELECT 1\n"); /* the newest a */
    EXPECT(s, "RELEASE a; ROLLBACK TO a", "C RELEASE\nC ROLLBACK\n"); /* then the older one */
    EXPECT(s, "SELECT count(*) FROM nm", "D count:20\nR 0\nC SELECT 1\n");
    /* unquoted names fold to lower case; quoted ones are exact */
    EXPECT(s, "SAVEPOINT MixedCase; ROLLBACK TO mixedcase; RELEASE MIXEDCASE",
           "C SAVEPOINT\nC ROLLBACK\nC RELEASE\n");
    EXPECT(s, "SAVEPOINT \"Q\"; RELEASE \"Q\"", "C SAVEPOINT\nC RELEASE\n");
    EXPECT(s, "SAVEPOINT \"Q\"; ROLLBACK TO q",
           "C SAVEPOINT\nE 3B001 savepoint \"q\" does not exist\n");
    EXPECT(s, "ROLLBACK WORK TO SAVEPOINT \"Q\"; ROLLBACK TO \"Q\"", "C ROLLBACK\nC ROLLBACK\n");
    EXPECT(s, "RELEASE SAVEPOINT \"Q\"", "C RELEASE\n");
    /* a savepoint may be named like a keyword */
    EXPECT(s, "SAVEPOINT savepoint; ROLLBACK TO SAVEPOINT savepoint; RELEASE savepoint",
           "C SAVEPOINT\nC ROLLBACK\nC RELEASE\n");
    expect_error(s, "SAVEPOINT", "42601");
    EXPECT(s, "ROLLBACK TO a", "C ROLLBACK\n");
    expect_error(s, "SAVEPOINT a b", "42601");
    EXPECT(s, "ROLLBACK TO a", "C ROLLBACK\n");
    expect_error(s, "RELEASE SAVEPOINT a b", "42601");
    expect_error(s, "ROLLBACK TO 'a'", "42601");
    expect_error(s, "ABORT TO a", "42601");
    EXPECT(s, "ROLLBACK TO a; ROLLBACK", "C ROLLBACK\nC ROLLBACK\n");
    assert_int_equal(sqlv_session_status(s), 'I');
    sqlv_session_close(s);
    close_all(&f);
}

/* 25P01 outside an explicit block (the implicit block of a string too),
** 25P02 for SAVEPOINT/RELEASE in a failed block, 3B001 for unknown names. */
static void test_outside_and_failed_block(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE ob (id INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(s, "SAVEPOINT a", NOT_IN_BLOCK("SAVEPOINT"));
    EXPECT(s, "ROLLBACK TO SAVEPOINT a", NOT_IN_BLOCK("ROLLBACK TO SAVEPOINT"));
    EXPECT(s, "RELEASE a", NOT_IN_BLOCK("RELEASE SAVEPOINT"));
    assert_int_equal(sqlv_session_status(s), 'I');
    /* a multi-statement string outside BEGIN: the error rolls it back */
    EXPECT(s, "INSERT INTO ob VALUES (1); SAVEPOINT a; INSERT INTO ob VALUES (2)",
           "C INSERT 0 1\n" NOT_IN_BLOCK("SAVEPOINT"));
    assert_int_equal(sqlv_session_status(s), 'I');
    EXPECT(s, "SELECT count(*) FROM ob", "D count:20\nR 0\nC SELECT 1\n");
    /* unknown name: 3B001, and the block fails (as PostgreSQL) */
    EXPECT(s, "BEGIN; INSERT INTO ob VALUES (1); ROLLBACK TO nope",
           "C BEGIN\nC INSERT 0 1\nE 3B001 savepoint \"nope\" does not exist\n");
    assert_int_equal(sqlv_session_status(s), 'E');
    EXPECT(s, "SAVEPOINT a", ABORTED);
    EXPECT(s, "RELEASE a", ABORTED);
    EXPECT(s, "ROLLBACK TO nope", "E 3B001 savepoint \"nope\" does not exist\n");
    assert_int_equal(sqlv_session_status(s), 'E');
    EXPECT(s, "COMMIT", "C ROLLBACK\n");
    EXPECT(s, "SELECT count(*) FROM ob", "D count:20\nR 0\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

/* The client retry pattern: an error inside the block, ROLLBACK TO, go on,
** COMMIT: exactly the rows outside the failed part are committed. */
static void test_error_recovery(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f), *o = session(&f);
    EXPECT(s, "CREATE TABLE er (id INT PRIMARY KEY, v INT NOT NULL)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO er VALUES (1, 1)", "C INSERT 0 1\n");
    EXPECT(s, "BEGIN; INSERT INTO er VALUES (10, 10); SAVEPOINT s1; INSERT INTO er VALUES (11, 11)",
           "C BEGIN\nC INSERT 0 1\nC SAVEPOINT\nC INSERT 0 1\n");
    expect_error(s, "INSERT INTO er VALUES (12, 12), (1, 0)", "23505");
    assert_int_equal(sqlv_session_status(s), 'E');
    EXPECT(s, "SELECT * FROM er", ABORTED);
    EXPECT(s, "ROLLBACK TO SAVEPOINT s1", "C ROLLBACK\n");
    assert_int_equal(sqlv_session_status(s), 'T');
    EXPECT(s, "INSERT INTO er VALUES (13, 13)", "C INSERT 0 1\n");
    /* once more, with a savepoint per statement as drivers do */
    for (int i = 0; i < 3; i++) {
        EXPECT(s, "SAVEPOINT stmt", "C SAVEPOINT\n");
        expect_error(s, "INSERT INTO er VALUES (14, NULL)", "23502");
        EXPECT(s, "ROLLBACK TO SAVEPOINT stmt", "C ROLLBACK\n");
    }
    EXPECT(s, "SAVEPOINT stmt; UPDATE er SET v = v + 100 WHERE id = 10; RELEASE stmt",
           "C SAVEPOINT\nC UPDATE 1\nC RELEASE\n");
    EXPECT(s, "COMMIT", "C COMMIT\n");
    EXPECT(o, "SELECT id, v FROM er ORDER BY id",
           "D id:23,v:23\nR 1|1\nR 10|110\nR 13|13\nC SELECT 3\n");
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

/* DDL after a savepoint is undone by ROLLBACK TO (the table is gone, or
** back with its rows, or without its new column); DDL before it stays. */
static void test_ddl_undone(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f), *o = session(&f);
    EXPECT(s, "CREATE TABLE keep (id INT PRIMARY KEY, v TEXT); INSERT INTO keep VALUES (1, 'k')",
           "C CREATE TABLE\nC INSERT 0 1\n");
    /* CREATE TABLE after the savepoint: gone */
    EXPECT(s, "BEGIN; SAVEPOINT a; CREATE TABLE t1 (id INT PRIMARY KEY); INSERT INTO t1 VALUES (1)",
           "C BEGIN\nC SAVEPOINT\nC CREATE TABLE\nC INSERT 0 1\n");
    EXPECT(s, "SELECT * FROM t1", "D id:23\nR 1\nC SELECT 1\n");
    EXPECT(s, "ROLLBACK TO a", "C ROLLBACK\n");
    expect_error(s, "SELECT * FROM t1", "42P01");
    EXPECT(s, "ROLLBACK TO a", "C ROLLBACK\n");
    /* the name is free again; this one is committed (empty) */
    EXPECT(s, "CREATE TABLE t1 (k TEXT PRIMARY KEY, w INT)", "C CREATE TABLE\n");
    /* DROP TABLE and ALTER TABLE ADD COLUMN after a savepoint: undone */
    EXPECT(s, "SAVEPOINT b; DROP TABLE keep", "C SAVEPOINT\nC DROP TABLE\n");
    expect_error(s, "SELECT * FROM keep", "42P01");
    EXPECT(s, "ROLLBACK TO b", "C ROLLBACK\n");
    EXPECT(s, "SELECT * FROM keep", "D id:23,v:25\nR 1|k\nC SELECT 1\n");
    EXPECT(s, "ALTER TABLE keep ADD COLUMN extra INT; SELECT * FROM keep",
           "C ALTER TABLE\nD id:23,v:25,extra:23\nR 1|k|NULL\nC SELECT 1\n");
    EXPECT(s, "ROLLBACK TO b; SELECT * FROM keep",
           "C ROLLBACK\nD id:23,v:25\nR 1|k\nC SELECT 1\n");
    /* DDL before a savepoint stays when it is rolled back to */
    EXPECT(s, "CREATE TABLE t2 (id INT PRIMARY KEY); SAVEPOINT c; DROP TABLE t2; DROP TABLE t1",
           "C CREATE TABLE\nC SAVEPOINT\nC DROP TABLE\nC DROP TABLE\n");
    EXPECT(s, "ROLLBACK TO c; INSERT INTO t2 VALUES (2); INSERT INTO t1 VALUES ('x', 1)",
           "C ROLLBACK\nC INSERT 0 1\nC INSERT 0 1\n");
    /* after a failed statement too */
    EXPECT(s, "SAVEPOINT d; CREATE TABLE t3 (id INT PRIMARY KEY)", "C SAVEPOINT\nC CREATE TABLE\n");
    expect_error(s, "CREATE TABLE t3 (id INT PRIMARY KEY)", "42P07");
    EXPECT(s, "ROLLBACK TO d; CREATE TABLE t3 (z INT PRIMARY KEY)", "C ROLLBACK\nC CREATE TABLE\n");
    expect_error(o, "SELECT * FROM t2", "42P01"); /* not before COMMIT */
    EXPECT(s, "COMMIT", "C COMMIT\n");
    EXPECT(o, "SELECT * FROM t1", "D k:25,w:23\nR x|1\nC SELECT 1\n");
    EXPECT(o, "SELECT * FROM t2", "D id:23\nR 2\nC SELECT 1\n");
    EXPECT(o, "SELECT * FROM t3", "D z:23\nC SELECT 0\n");
    EXPECT(o, "SELECT * FROM keep", "D id:23,v:25\nR 1|k\nC SELECT 1\n");
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

/* Reads made after a savepoint and rolled back stay in the read set: a
** write another session commits on a key read there still fails the
** commit with 40001 (safe for serializability, as CockroachDB). */
static void test_rolled_back_reads_stay(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f), *o = session(&f);
    EXPECT(s, "CREATE TABLE rr (id INT PRIMARY KEY, v INT); INSERT INTO rr VALUES (1, 1), (2, 2)",
           "C CREATE TABLE\nC INSERT 0 2\n");
    /* without the read, the same block commits */
    EXPECT(s, "BEGIN; SAVEPOINT a; UPDATE rr SET v = 2 WHERE id = 2; ROLLBACK TO a",
           "C BEGIN\nC SAVEPOINT\nC UPDATE 1\nC ROLLBACK\n");
    EXPECT(o, "UPDATE rr SET v = 1 WHERE id = 1", "C UPDATE 1\n");
    EXPECT(s, "UPDATE rr SET v = 2 WHERE id = 2; COMMIT", "C UPDATE 1\nC COMMIT\n");
    /* with it, 40001 */
    EXPECT(s, "BEGIN; SAVEPOINT a; SELECT v FROM rr WHERE id = 1",
           "C BEGIN\nC SAVEPOINT\nD v:23\nR 1\nC SELECT 1\n");
    EXPECT(s, "ROLLBACK TO a", "C ROLLBACK\n");
    EXPECT(o, "UPDATE rr SET v = 10 WHERE id = 1", "C UPDATE 1\n");
    EXPECT(s, "UPDATE rr SET v = 20 WHERE id = 2", "C UPDATE 1\n");
    expect_error(s, "COMMIT", "40001");
    assert_int_equal(sqlv_session_status(s), 'I');
    EXPECT(o, "SELECT id, v FROM rr ORDER BY id", "D id:23,v:23\nR 1|10\nR 2|2\nC SELECT 2\n");
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

/* ---- CockroachDB's client-side retry protocol ---------------------------------------
** BEGIN; SAVEPOINT cockroach_restart; ...; RELEASE SAVEPOINT cockroach_restart;
** COMMIT. RELEASE of that savepoint commits; on 40001 (at RELEASE too) the
** client sends ROLLBACK TO SAVEPOINT cockroach_restart and the statements
** again. */

#define COMMITTED                                                                                  \
    "E 25000 current transaction is committed, commands ignored until end of transaction block\n"

/* One attempt of the loop: the statements, then RELEASE. true when it
** committed; false after a 40001 (the block is then failed, 'E'). */
static bool retry_attempt(sqlv_session *s, sqlv_session *o, int attempt) {
    EXPECT(s, "UPDATE rl SET v = v + 1 WHERE id = 1; INSERT INTO rl VALUES (3, 3)",
           "C UPDATE 1\nC INSERT 0 1\n");
    /* the first attempt loses: another session commits the row it read */
    if (attempt == 0) EXPECT(o, "UPDATE rl SET v = v + 10 WHERE id = 1", "C UPDATE 1\n");
    char *got = run(s, "RELEASE SAVEPOINT cockroach_restart");
    bool committed = strcmp(got, "C COMMIT\n") == 0;
    if (!committed) {
        if (strncmp(got, "E 40001 restart transaction", 27) != 0) print_error("got: %s", got);
        assert_true(strncmp(got, "E 40001 restart transaction", 27) == 0);
        assert_int_equal(sqlv_session_status(s), 'E');
        EXPECT(s, "SELECT 1", ABORTED);
    }
    free(got);
    return committed;
}

/* The loop as CockroachDB documents it, with a forced 40001 at the first
** RELEASE; the retry runs in a new transaction (it sees the other write)
** and commits at RELEASE; the final rows are exact. Then the same with the
** other restart spelling, SAVEPOINT cockroach_restart again. */
static void test_retry_loop(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f), *o = session(&f);
    EXPECT(s, "CREATE TABLE rl (id INT PRIMARY KEY, v INT); INSERT INTO rl VALUES (1, 0), (2, 0)",
           "C CREATE TABLE\nC INSERT 0 2\n");
    for (int round = 0; round < 2; round++) {
        EXPECT(s, "BEGIN; SAVEPOINT cockroach_restart", "C BEGIN\nC SAVEPOINT\n");
        int attempt = 0;
        while (!retry_attempt(s, o, attempt)) {
            attempt++;
            assert_true(attempt < 5);
            EXPECT(s,
                   round == 0 ? "ROLLBACK TO SAVEPOINT cockroach_restart"
                              : "SAVEPOINT cockroach_restart",
                   "C ROLLBACK\n");
            assert_int_equal(sqlv_session_status(s), 'T');
        }
        assert_int_equal(attempt, 1);
        /* committed at RELEASE: visible before COMMIT */
        assert_int_equal(sqlv_session_status(s), 'T');
        EXPECT(o, "SELECT id, v FROM rl ORDER BY id",
               round == 0 ? "D id:23,v:23\nR 1|11\nR 2|0\nR 3|3\nC SELECT 3\n"
                          : "D id:23,v:23\nR 1|22\nR 2|0\nR 3|3\nC SELECT 3\n");
        EXPECT(s, "COMMIT", "C COMMIT\n");
        assert_int_equal(sqlv_session_status(s), 'I');
        EXPECT(s, "DELETE FROM rl WHERE id = 3", "C DELETE 1\n");
    }
    EXPECT(s, "SELECT id, v FROM rl ORDER BY id", "D id:23,v:23\nR 1|22\nR 2|0\nC SELECT 2\n");
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

/* After a committing RELEASE: COMMIT or ROLLBACK ends the block (tag
** COMMIT, the data stays); anything else is 25000 and changes nothing.
** Other savepoints, and cockroach_restart when not first or not
** outermost, keep PostgreSQL's RELEASE. DDL commits at RELEASE too. */
static void test_committed_awaiting_commit(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f), *o = session(&f);
    EXPECT(s, "CREATE TABLE aw (id INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(s,
           "BEGIN; SAVEPOINT cockroach_restart; INSERT INTO aw VALUES (1); "
           "RELEASE SAVEPOINT cockroach_restart",
           "C BEGIN\nC SAVEPOINT\nC INSERT 0 1\nC COMMIT\n");
    static const char *const refused[] = {
        "SELECT 1",
        "INSERT INTO aw VALUES (2)",
        "SAVEPOINT cockroach_restart",
        "ROLLBACK TO SAVEPOINT cockroach_restart",
        "ROLLBACK WORK TO cockroach_restart",
        "RELEASE SAVEPOINT cockroach_restart",
        "BEGIN",
        "SET application_name = 'x'",
        "SHOW application_name",
        "CREATE TABLE aw2 (id INT PRIMARY KEY)",
        "SELECT 1; COMMIT", /* the string stops at its first error */
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        EXPECT(s, refused[i], COMMITTED);
        assert_int_equal(sqlv_session_status(s), 'T');
    }
    EXPECT(o, "SELECT id FROM aw", "D id:23\nR 1\nC SELECT 1\n");
    EXPECT(s, "ROLLBACK", "C COMMIT\n"); /* the data stays */
    assert_int_equal(sqlv_session_status(s), 'I');
    EXPECT(s, "SELECT id FROM aw", "D id:23\nR 1\nC SELECT 1\n");
    /* COMMIT / END / ROLLBACK WORK spellings; DDL committed at RELEASE */
    EXPECT(s,
           "BEGIN; SAVEPOINT cockroach_restart; CREATE TABLE aw3 (id INT PRIMARY KEY); "
           "INSERT INTO aw3 VALUES (3); RELEASE cockroach_restart",
           "C BEGIN\nC SAVEPOINT\nC CREATE TABLE\nC INSERT 0 1\nC COMMIT\n");
    EXPECT(o, "SELECT id FROM aw3", "D id:23\nR 3\nC SELECT 1\n");
    EXPECT(s, "END", "C COMMIT\n");
    EXPECT(s, "SELECT id FROM aw3", "D id:23\nR 3\nC SELECT 1\n");
    EXPECT(s, "BEGIN; SAVEPOINT cockroach_restart; RELEASE SAVEPOINT cockroach_restart",
           "C BEGIN\nC SAVEPOINT\nC COMMIT\n");
    EXPECT(s, "ROLLBACK WORK", "C COMMIT\n");
    assert_int_equal(sqlv_session_status(s), 'I');
    /* an ordinary savepoint's RELEASE does not commit */
    EXPECT(s, "BEGIN; SAVEPOINT a; INSERT INTO aw VALUES (4); RELEASE a",
           "C BEGIN\nC SAVEPOINT\nC INSERT 0 1\nC RELEASE\n");
    EXPECT(o, "SELECT count(*) FROM aw", "D count:20\nR 1\nC SELECT 1\n");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    /* nor cockroach_restart taken after the first statement */
    EXPECT(s,
           "BEGIN; INSERT INTO aw VALUES (5); SAVEPOINT cockroach_restart; "
           "RELEASE SAVEPOINT cockroach_restart",
           "C BEGIN\nC INSERT 0 1\nC SAVEPOINT\nC RELEASE\n");
    EXPECT(o, "SELECT count(*) FROM aw", "D count:20\nR 1\nC SELECT 1\n");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    /* nor a nested one of the same name; the outermost then does */
    EXPECT(s,
           "BEGIN; SAVEPOINT cockroach_restart; INSERT INTO aw VALUES (6); "
           "SAVEPOINT cockroach_restart; RELEASE SAVEPOINT cockroach_restart",
           "C BEGIN\nC SAVEPOINT\nC INSERT 0 1\nC SAVEPOINT\nC RELEASE\n");
    EXPECT(o, "SELECT count(*) FROM aw", "D count:20\nR 1\nC SELECT 1\n");
    EXPECT(s, "RELEASE SAVEPOINT cockroach_restart; COMMIT", "C COMMIT\nC COMMIT\n");
    EXPECT(o, "SELECT id FROM aw ORDER BY id", "D id:23\nR 1\nR 6\nC SELECT 2\n");
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

/* ---- extended protocol ------------------------------------------------------------ */

static int c_params(void *ctx, int n, const uint32_t *oids) {
    capture *c = ctx;
    base_buf_printf(&c->out, "P");
    for (int i = 0; i < n; i++)
        base_buf_printf(&c->out, " %u", oids[i]);
    base_buf_printf(&c->out, "\n");
    return 0;
}
static int c_nodata(void *ctx) { return base_buf_printf(&((capture *)ctx)->out, "n\n"), 0; }
static int c_suspended(void *ctx) { return base_buf_printf(&((capture *)ctx)->out, "s\n"), 0; }

/* Parse, Bind, Execute of one statement (unnamed), as drivers send it;
** "sync" sends Sync. Appends to the transcript. */
static void ext_statement(sqlv_session *s, capture *c, const char *sql) {
    sqlv_sink sink = {c,       c_desc,   c_row,    c_tag,   c_empty,
                      c_error, c_notice, c_params, c_nodata, c_suspended};
    if (strcmp(sql, "sync") == 0) {
        assert_int_equal(sqlv_session_sync(s, &sink), SQLV_OK);
        return;
    }
    /* after an error the gateway skips to Sync: so do we */
    if (sqlv_session_prepare(s, "", sql, strlen(sql), 0, NULL, &sink) != SQLV_OK) return;
    if (sqlv_session_bind(s, "", "", 0, NULL, 0, NULL, 0, NULL, &sink) != SQLV_OK) return;
    (void)sqlv_session_execute(s, "", 0, &sink);
}

static void ext_expect(sqlv_session *s, const char *const *sqls, const char *want) {
    capture c;
    memset(&c, 0, sizeof(c));
    for (int i = 0; sqls[i]; i++)
        ext_statement(s, &c, sqls[i]);
    base_buf_append_byte(&c.out, 0);
    if (strcmp((const char *)c.out.data, want) != 0)
        print_error("want:\n%sgot:\n%s", want, (const char *)c.out.data);
    assert_string_equal((const char *)c.out.data, want);
    base_buf_free(&c.out);
}

static void test_extended_protocol(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE ex (id INT PRIMARY KEY)", "C CREATE TABLE\n");
    const char *a[] = {"BEGIN",          "SAVEPOINT a",       "INSERT INTO ex VALUES (1)",
                       "sync",           "SAVEPOINT b",       "INSERT INTO ex VALUES (2)",
                       "ROLLBACK TO b",  "RELEASE SAVEPOINT b", "sync",
                       "INSERT INTO ex VALUES (1)", "sync", NULL};
    ext_expect(s, a,
               "C BEGIN\nC SAVEPOINT\nC INSERT 0 1\nC SAVEPOINT\nC INSERT 0 1\nC ROLLBACK\n"
               "C RELEASE\nE 23505 duplicate key value violates unique constraint \"ex_pkey\"\n");
    assert_int_equal(sqlv_session_status(s), 'E');
    /* out of the failed block through the extended protocol */
    const char *b[] = {"ROLLBACK TO SAVEPOINT a", "INSERT INTO ex VALUES (3)", "COMMIT", "sync",
                       NULL};
    ext_expect(s, b, "C ROLLBACK\nC INSERT 0 1\nC COMMIT\n");
    assert_int_equal(sqlv_session_status(s), 'I');
    EXPECT(s, "SELECT id FROM ex ORDER BY id", "D id:23\nR 3\nC SELECT 1\n");
    /* outside a block: the implicit block of the extended protocol */
    const char *c[] = {"SAVEPOINT x", "sync", "RELEASE x", "sync", NULL};
    ext_expect(s, c, NOT_IN_BLOCK("SAVEPOINT") NOT_IN_BLOCK("RELEASE SAVEPOINT"));
    assert_int_equal(sqlv_session_status(s), 'I');
    sqlv_session_close(s);
    close_all(&f);
}

/* The committing RELEASE through the extended protocol: then a SQLite
** statement is 25000 at Bind, the block stays committed, COMMIT ends it. */
static void test_extended_release_commits(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f), *o = session(&f);
    EXPECT(s, "CREATE TABLE xr (id INT PRIMARY KEY)", "C CREATE TABLE\n");
    const char *a[] = {"BEGIN", "SAVEPOINT cockroach_restart", "INSERT INTO xr VALUES (1)",
                       "RELEASE SAVEPOINT cockroach_restart", "sync", "SELECT 1", "sync",
                       "ROLLBACK TO SAVEPOINT cockroach_restart", "sync", NULL};
    ext_expect(s, a, "C BEGIN\nC SAVEPOINT\nC INSERT 0 1\nC COMMIT\n" COMMITTED COMMITTED);
    assert_int_equal(sqlv_session_status(s), 'T');
    EXPECT(o, "SELECT id FROM xr", "D id:23\nR 1\nC SELECT 1\n");
    const char *b[] = {"COMMIT", "sync", NULL};
    ext_expect(s, b, "C COMMIT\n");
    assert_int_equal(sqlv_session_status(s), 'I');
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

/* Named statements and portals, one message at a time. */
static int x_prepare(sqlv_session *s, capture *c, const char *name, const char *sql) {
    sqlv_sink sink = {c,       c_desc,   c_row,    c_tag,   c_empty,
                      c_error, c_notice, c_params, c_nodata, c_suspended};
    return sqlv_session_prepare(s, name, sql, strlen(sql), 0, NULL, &sink);
}
static int x_bind(sqlv_session *s, capture *c, const char *portal, const char *stmt) {
    sqlv_sink sink = {c,       c_desc,   c_row,    c_tag,   c_empty,
                      c_error, c_notice, c_params, c_nodata, c_suspended};
    return sqlv_session_bind(s, portal, stmt, 0, NULL, 0, NULL, 0, NULL, &sink);
}
static int x_execute(sqlv_session *s, capture *c, const char *portal) {
    sqlv_sink sink = {c,       c_desc,   c_row,    c_tag,   c_empty,
                      c_error, c_notice, c_params, c_nodata, c_suspended};
    return sqlv_session_execute(s, portal, 0, &sink);
}
/* Parse, Bind and Execute of a session statement on the unnamed portal. */
static void x_run(sqlv_session *s, capture *c, const char *sql) {
    assert_int_equal(x_prepare(s, c, "", sql), SQLV_OK);
    assert_int_equal(x_bind(s, c, "", ""), SQLV_OK);
    assert_int_equal(x_execute(s, c, ""), SQLV_OK);
}
static void x_expect(capture *c, const char *want) {
    base_buf_append_byte(&c->out, 0);
    if (strcmp((const char *)c->out.data, want) != 0)
        print_error("want:\n%sgot:\n%s", want, (const char *)c->out.data);
    assert_string_equal((const char *)c->out.data, want);
    base_buf_free(&c->out);
    memset(c, 0, sizeof(*c));
}

/* ROLLBACK TO drops the portals bound after its savepoint (PostgreSQL's
** rule) and keeps the older ones; a committing RELEASE drops them all. */
static void test_portals_after_savepoint(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    capture c;
    memset(&c, 0, sizeof(c));
    EXPECT(s, "CREATE TABLE pt (id INT PRIMARY KEY); INSERT INTO pt VALUES (1), (2)",
           "C CREATE TABLE\nC INSERT 0 2\n");
    x_run(s, &c, "BEGIN");
    assert_int_equal(x_prepare(s, &c, "q", "SELECT id FROM pt ORDER BY id"), SQLV_OK);
    assert_int_equal(x_bind(s, &c, "before", "q"), SQLV_OK);
    x_run(s, &c, "SAVEPOINT a");
    assert_int_equal(x_bind(s, &c, "after", "q"), SQLV_OK);
    assert_int_equal(x_bind(s, &c, "after2", "q"), SQLV_OK);
    x_run(s, &c, "ROLLBACK TO SAVEPOINT a");
    x_expect(&c, "C BEGIN\nC SAVEPOINT\nC ROLLBACK\n");
    assert_int_equal(x_execute(s, &c, "before"), SQLV_OK);
    x_expect(&c, "R 1\nR 2\nC SELECT 2\n");
    /* RELEASE keeps them (PostgreSQL too) */
    assert_int_equal(x_bind(s, &c, "kept", "q"), SQLV_OK);
    x_run(s, &c, "SAVEPOINT b");
    assert_int_equal(x_bind(s, &c, "kept2", "q"), SQLV_OK);
    x_run(s, &c, "RELEASE b");
    assert_int_equal(x_execute(s, &c, "kept2"), SQLV_OK);
    x_expect(&c, "C SAVEPOINT\nC RELEASE\nR 1\nR 2\nC SELECT 2\n");
    assert_int_equal(x_execute(s, &c, "after"), SQLV_ERR_FAILED);
    x_expect(&c, "E 34000 portal \"after\" does not exist\n");
    assert_int_equal(sqlv_session_status(s), 'E'); /* an error fails the block */
    x_run(s, &c, "ROLLBACK");
    x_expect(&c, "C ROLLBACK\n");
    /* the restart savepoint: ROLLBACK TO drops the later portals, RELEASE
    ** (which commits) every one */
    x_run(s, &c, "BEGIN");
    x_run(s, &c, "SAVEPOINT cockroach_restart");
    assert_int_equal(x_bind(s, &c, "p1", "q"), SQLV_OK);
    x_run(s, &c, "ROLLBACK TO SAVEPOINT cockroach_restart");
    assert_int_equal(x_execute(s, &c, "p1"), SQLV_ERR_FAILED);
    x_run(s, &c, "ROLLBACK TO SAVEPOINT cockroach_restart");
    assert_int_equal(x_bind(s, &c, "p2", "q"), SQLV_OK);
    x_run(s, &c, "RELEASE SAVEPOINT cockroach_restart");
    assert_int_equal(x_execute(s, &c, "p2"), SQLV_ERR_FAILED);
    assert_int_equal(sqlv_session_status(s), 'T'); /* still committed */
    x_run(s, &c, "COMMIT");
    x_expect(&c, "C BEGIN\nC SAVEPOINT\nC ROLLBACK\nE 34000 portal \"p1\" does not exist\n"
                 "C ROLLBACK\nC COMMIT\nE 34000 portal \"p2\" does not exist\nC COMMIT\n");
    assert_int_equal(sqlv_session_status(s), 'I');
    assert_int_equal(sqlv_session_sync(s, &(sqlv_sink){0}), SQLV_OK);
    sqlv_session_close(s);
    close_all(&f);
}

/* ---- an aborted KV transaction ---------------------------------------------------
** A key space that delegates to a local store and fails the next point
** read with RANGE_ERR_IO when armed: the KV transaction is then aborted (as
** a 40001 of a lock wait aborts it in a cluster). */

typedef struct failing_kv {
    wrapped_kv w; /* first member */
    bool fail_next_get;
    bool fail_next_commit;
} failing_kv;

static int fk_get(range_kv *kv, const uint8_t *k, size_t kl, hlc_timestamp ts, base_buf *out) {
    failing_kv *f = (failing_kv *)kv;
    if (f->fail_next_get) {
        f->fail_next_get = false;
        return RANGE_ERR_IO;
    }
    return f->w.inner->ops->get(f->w.inner, k, kl, ts, out);
}
static int fk_commit(range_kv *kv, const range_commit_request *req, hlc_timestamp *ts,
                     range_conflict *c) {
    failing_kv *f = (failing_kv *)kv;
    if (f->fail_next_commit) {
        f->fail_next_commit = false;
        return RANGE_ERR_IO;
    }
    return f->w.inner->ops->commit(f->w.inner, req, ts, c);
}
static void failing_wrap(wrapped_kv *w) {
    w->ops.get = fk_get;
    w->ops.commit = fk_commit;
}

typedef struct failing_fixture {
    kv_fixture k;
    failing_kv kv;
} failing_fixture;

static void failing_open(failing_fixture *f) {
    memset(&f->kv, 0, sizeof(f->kv));
    kv_fixture_open(&f->k, &f->kv.w, failing_wrap);
}

/* ROLLBACK TO a savepoint taken before the block's first statement
** (SAVEPOINT cockroach_restart right after BEGIN) restarts an aborted KV
** transaction; a later savepoint cannot (40001, the block stays failed). */
static void test_aborted_transaction_restart(void **state) {
    failing_fixture f;
    (void)state;
    failing_open(&f);
    sqlv_session *s = session(&f.k.base), *o = session(&f.k.base);
    EXPECT(s, "CREATE TABLE ab (id INT PRIMARY KEY, v INT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO ab VALUES (1, 1)", "C INSERT 0 1\n");
    /* the retry protocol */
    EXPECT(s, "BEGIN; SAVEPOINT cockroach_restart; INSERT INTO ab VALUES (2, 2)",
           "C BEGIN\nC SAVEPOINT\nC INSERT 0 1\n");
    f.kv.fail_next_get = true;
    expect_error(s, "SELECT v FROM ab WHERE id = 1", "58030");
    assert_int_equal(sqlv_session_status(s), 'E');
    EXPECT(s, "ROLLBACK TO SAVEPOINT cockroach_restart", "C ROLLBACK\n");
    assert_int_equal(sqlv_session_status(s), 'T');
    EXPECT(s, "SELECT id, v FROM ab ORDER BY id", "D id:23,v:23\nR 1|1\nC SELECT 1\n");
    EXPECT(s, "INSERT INTO ab VALUES (3, 3); RELEASE SAVEPOINT cockroach_restart; COMMIT",
           "C INSERT 0 1\nC COMMIT\nC COMMIT\n"); /* RELEASE committed */
    EXPECT(o, "SELECT id, v FROM ab ORDER BY id", "D id:23,v:23\nR 1|1\nR 3|3\nC SELECT 2\n");
    /* a savepoint after the first statement cannot restart it */
    EXPECT(s, "BEGIN; INSERT INTO ab VALUES (4, 4); SAVEPOINT a; INSERT INTO ab VALUES (5, 5)",
           "C BEGIN\nC INSERT 0 1\nC SAVEPOINT\nC INSERT 0 1\n");
    f.kv.fail_next_get = true;
    expect_error(s, "SELECT v FROM ab WHERE id = 1", "58030");
    expect_error(s, "ROLLBACK TO a", "40001");
    assert_int_equal(sqlv_session_status(s), 'E');
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    /* and DDL after the restart point goes with the old transaction */
    EXPECT(s, "BEGIN; SAVEPOINT r; CREATE TABLE gone (id INT PRIMARY KEY)",
           "C BEGIN\nC SAVEPOINT\nC CREATE TABLE\n");
    f.kv.fail_next_get = true;
    expect_error(s, "SELECT v FROM ab WHERE id = 1", "58030");
    EXPECT(s, "ROLLBACK TO r", "C ROLLBACK\n");
    expect_error(s, "SELECT * FROM gone", "42P01");
    EXPECT(s, "ROLLBACK TO r; COMMIT", "C ROLLBACK\nC COMMIT\n");
    EXPECT(o, "SELECT count(*) FROM ab", "D count:20\nR 2\nC SELECT 1\n");
    sqlv_session_close(o);
    sqlv_session_close(s);
    kv_fixture_close(&f.k);
}

/* A RELEASE whose commit fails with anything but 40001 (here an I/O
** error): the block fails without its savepoints, as CockroachDB's (the
** commit may have happened); only ROLLBACK is left. */
static void test_release_commit_fails(void **state) {
    failing_fixture f;
    (void)state;
    failing_open(&f);
    sqlv_session *s = session(&f.k.base), *o = session(&f.k.base);
    EXPECT(s, "CREATE TABLE rf (id INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(s, "BEGIN; SAVEPOINT cockroach_restart; INSERT INTO rf VALUES (1)",
           "C BEGIN\nC SAVEPOINT\nC INSERT 0 1\n");
    f.kv.fail_next_commit = true;
    expect_error(s, "RELEASE SAVEPOINT cockroach_restart", "58030");
    assert_int_equal(sqlv_session_status(s), 'E');
    EXPECT(s, "ROLLBACK TO SAVEPOINT cockroach_restart",
           "E 3B001 savepoint \"cockroach_restart\" does not exist\n");
    EXPECT(s, "SAVEPOINT cockroach_restart", ABORTED);
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    EXPECT(o, "SELECT count(*) FROM rf", "D count:20\nR 0\nC SELECT 1\n");
    /* and the loop goes on from BEGIN */
    EXPECT(s,
           "BEGIN; SAVEPOINT cockroach_restart; INSERT INTO rf VALUES (1); "
           "RELEASE SAVEPOINT cockroach_restart; COMMIT",
           "C BEGIN\nC SAVEPOINT\nC INSERT 0 1\nC COMMIT\nC COMMIT\n");
    EXPECT(o, "SELECT count(*) FROM rf", "D count:20\nR 1\nC SELECT 1\n");
    sqlv_session_close(o);
    sqlv_session_close(s);
    kv_fixture_close(&f.k);
}

/* ---- limits and out of memory ----------------------------------------------------- */

static void test_savepoint_limit(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "BEGIN", "C BEGIN\n");
    char *r = NULL;
    int ok = 0;
    for (int i = 0; i < 20000; i++) {
        r = run(s, "SAVEPOINT many");
        if (strcmp(r, "C SAVEPOINT\n") != 0) break;
        ok++;
        free(r);
        r = NULL;
    }
    assert_non_null(r);
    assert_non_null(strstr(r, "E 54000 too many savepoints"));
    free(r);
    assert_true(ok > 1000 && ok < 20000);
    EXPECT(s, "ROLLBACK TO many; RELEASE many", "C ROLLBACK\nC RELEASE\n");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_alloc_failures(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE af (id INT PRIMARY KEY)", "C CREATE TABLE\n");
    static const char *const q =
        "BEGIN; CREATE TABLE ag (k INT PRIMARY KEY); SAVEPOINT a; INSERT INTO af VALUES (1); "
        "CREATE TABLE ah (k INT PRIMARY KEY); DROP TABLE ag; SAVEPOINT b; ROLLBACK TO a; "
        "INSERT INTO ag VALUES (2); RELEASE a; SAVEPOINT c; ROLLBACK TO c; COMMIT";
    for (int n = 0; n < 400; n++) {
        bool ok = run_failing(s, q, "C COMMIT\n", n);
        /* the last rounds fail nothing: every allocation point was reached */
        if (n == 399) assert_true(ok);
        free(run(s, "DROP TABLE IF EXISTS ag, ah; DELETE FROM af"));
    }
    EXPECT(s, q,
           "C BEGIN\nC CREATE TABLE\nC SAVEPOINT\nC INSERT 0 1\nC CREATE TABLE\nC DROP TABLE\n"
           "C SAVEPOINT\nC ROLLBACK\nC INSERT 0 1\nC RELEASE\nC SAVEPOINT\nC ROLLBACK\nC COMMIT\n");
    EXPECT(s, "SELECT (SELECT count(*) FROM af), (SELECT count(*) FROM ag)",
           "D ?column?:20,?column?:20\nR 0|1\nC SELECT 1\n");
    expect_error(s, "SELECT * FROM ah", "42P01");
    sqlv_session_close(s);
    close_all(&f);
}

/* Out of memory at every allocation of the retry protocol's block: the
** session always ends in a state COMMIT/ROLLBACK leaves cleanly. */
static void test_release_alloc_failures(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    static const char *const q =
        "BEGIN; SAVEPOINT cockroach_restart; CREATE TABLE ra (k INT PRIMARY KEY); "
        "INSERT INTO ra VALUES (1); RELEASE SAVEPOINT cockroach_restart; COMMIT";
    for (int n = 0; n < 300; n++) {
        bool ok = run_failing(s, q, "C COMMIT\nC COMMIT\n", n);
        if (n == 299) assert_true(ok);
        assert_int_equal(sqlv_session_status(s), 'I');
        free(run(s, "DROP TABLE IF EXISTS ra"));
    }
    EXPECT(s, q, "C BEGIN\nC SAVEPOINT\nC CREATE TABLE\nC INSERT 0 1\nC COMMIT\nC COMMIT\n");
    EXPECT(s, "SELECT k FROM ra", "D k:23\nR 1\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

int main(void) {
    base_log_set_level(BASE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_undone_and_kept),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_outside_and_failed_block),
        cmocka_unit_test(test_error_recovery),
        cmocka_unit_test(test_ddl_undone),
        cmocka_unit_test(test_rolled_back_reads_stay),
        cmocka_unit_test(test_retry_loop),
        cmocka_unit_test(test_committed_awaiting_commit),
        cmocka_unit_test(test_extended_protocol),
        cmocka_unit_test(test_extended_release_commits),
        cmocka_unit_test(test_portals_after_savepoint),
        cmocka_unit_test(test_aborted_transaction_restart),
        cmocka_unit_test(test_release_commit_fails),
        cmocka_unit_test(test_savepoint_limit),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_release_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
