/*
** tests/sql/test_copy.c: COPY FROM STDIN's batches (sql/copy.c; docs/sql.md
** "COPY FROM STDIN", decision 013), in process, with a batch of 3 rows
** (sqlv__copy_batch_rows): outside a block every batch commits (another
** session sees them while the copy goes on) and the tag counts every row;
** a batch also ends at 256 KiB of lines; a bad row in batch 3 leaves
** batches 1-2 committed and its error says so (a CopyFail's too);
** with copy_from_atomic_enabled the copy is all or nothing; inside a block
** nothing commits before COMMIT; a 40001 at a batch's commit, or in one of
** its rows, replays the batch in a fresh transaction (a key space that
** fails commits or reads on demand), and too many end the copy.
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
#include "sql/sql_int.h"
#include "tests/sql/sql_harness.h"

#define BATCH_ROWS 3

static int c_copy_in(void *ctx, int ncols) {
    return base_buf_printf(&((capture *)ctx)->out, "I %d\n", ncols), 0;
}

/* A copy in progress: the transcript of the statement and its data. */
typedef struct copying {
    capture c;
    sqlv_sink sink;
} copying;

static void copy_start(sqlv_session *s, copying *cp, const char *q) {
    memset(cp, 0, sizeof(*cp));
    cp->sink = (sqlv_sink){&cp->c, c_desc, c_row, c_tag, c_empty, c_error, c_notice,
                           NULL,   NULL,   NULL};
    sqlv_session_set_copy_in(s, c_copy_in);
    assert_int_equal(sqlv_session_exec(s, q, strlen(q), &cp->sink), SQLV_OK);
    assert_true(sqlv_session_in_copy(s));
}

/* Rows first..last as "id\tv\n" lines in one CopyData. */
static int copy_rows(sqlv_session *s, copying *cp, int first, int last) {
    base_buf b = {0};
    for (int i = first; i <= last; i++)
        assert_int_equal(base_buf_printf(&b, "%d\tv%d\n", i, i), 0);
    int rc = sqlv_session_copy_data(s, (const char *)b.data, b.len, &cp->sink);
    base_buf_free(&b);
    return rc;
}

static void copy_line_raw(sqlv_session *s, copying *cp, const char *line, int want) {
    assert_int_equal(sqlv_session_copy_data(s, line, strlen(line), &cp->sink), want);
}

/* CopyDone; the transcript (free). */
static char *copy_end(sqlv_session *s, copying *cp) {
    (void)sqlv_session_copy_done(s, &cp->sink);
    assert_false(sqlv_session_in_copy(s));
    base_buf_append_byte(&cp->c.out, 0);
    char *r = strdup((const char *)cp->c.out.data);
    base_buf_free(&cp->c.out);
    return r;
}

static void expect_count(sqlv_session *o, const char *table, int n) {
    char q[128], want[64];
    snprintf(q, sizeof q, "SELECT count(*) FROM %s", table);
    snprintf(want, sizeof want, "D count:20\nR %d\nC SELECT 1\n", n);
    EXPECT(o, q, want);
}

static int setup(void **state) {
    (void)state;
    sqlv__copy_batch_rows = BATCH_ROWS;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    sqlv__copy_batch_rows = 0;
    return 0;
}

/* Ten rows in four batches: each full batch is visible to another session
** while the copy goes on; the tag counts all ten. */
static void test_batches_commit(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f), *o = session(&f);
    EXPECT(s, "CREATE TABLE cb (id INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    copying cp;
    copy_start(s, &cp, "COPY cb FROM STDIN");
    assert_int_equal(sqlv_session_status(s), 'T');
    assert_int_equal(copy_rows(s, &cp, 1, 7), SQLV_OK);
    expect_count(o, "cb", 6); /* batches 1-2 committed, row 7 open */
    assert_int_equal(copy_rows(s, &cp, 8, 10), SQLV_OK);
    expect_count(o, "cb", 9);
    char *got = copy_end(s, &cp);
    assert_string_equal(got, "I 2\nC COPY 10\n");
    free(got);
    assert_int_equal(sqlv_session_status(s), 'I');
    EXPECT(o, "SELECT min(id), max(id), count(*) FROM cb",
           "D min:20,max:20,count:20\nR 1|10|10\nC SELECT 1\n");
    /* a copy ending on a batch's boundary, with "\." */
    copy_start(s, &cp, "COPY cb FROM STDIN");
    assert_int_equal(copy_rows(s, &cp, 11, 16), SQLV_OK);
    copy_line_raw(s, &cp, "\\.\n", SQLV_OK);
    got = copy_end(s, &cp);
    assert_string_equal(got, "I 2\nC COPY 6\n");
    free(got);
    expect_count(o, "cb", 16);
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

/* A bad row in batch 3: batches 1-2 stay committed, the error says so,
** the rest of batch 3 is rolled back. Then a duplicate key, the same. */
static void test_bad_row_keeps_earlier_batches(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f), *o = session(&f);
    EXPECT(s, "CREATE TABLE cr (id INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    copying cp;
    copy_start(s, &cp, "COPY cr FROM STDIN");
    assert_int_equal(copy_rows(s, &cp, 1, 7), SQLV_OK);
    copy_line_raw(s, &cp, "8\n", SQLV_ERR_FAILED); /* one column short */
    assert_false(sqlv_session_in_copy(s));
    char *got = copy_end(s, &cp);
    assert_string_equal(
        got, "I 2\nE 22P04 missing data for column 2 (COPY line 8)\nDETAIL:  6 rows were "
             "committed by earlier batches of this COPY and stay committed; the failed batch "
             "(from COPY line 7) was rolled back.\nHINT:  SET copy_from_atomic_enabled = on, or "
             "a COPY inside BEGIN, makes a COPY all or nothing.\n");
    free(got);
    assert_int_equal(sqlv_session_status(s), 'I');
    EXPECT(o, "SELECT min(id), max(id), count(*) FROM cr",
           "D min:20,max:20,count:20\nR 1|6|6\nC SELECT 1\n");
    /* 23505 in the third batch */
    copy_start(s, &cp, "COPY cr FROM STDIN");
    assert_int_equal(copy_rows(s, &cp, 21, 27), SQLV_OK);
    copy_line_raw(s, &cp, "1\tdup\n", SQLV_ERR_FAILED);
    got = copy_end(s, &cp);
    assert_non_null(strstr(got, "E 23505 "));
    assert_non_null(strstr(got, "\nDETAIL:  6 rows were committed by earlier batches"));
    free(got);
    expect_count(o, "cr", 12);
    /* a bad first batch commits nothing and says nothing about batches */
    copy_start(s, &cp, "COPY cr FROM STDIN");
    copy_line_raw(s, &cp, "40\tx\n41\n", SQLV_ERR_FAILED);
    got = copy_end(s, &cp);
    assert_string_equal(got, "I 2\nE 22P04 missing data for column 2 (COPY line 2)\n");
    free(got);
    expect_count(o, "cr", 12);
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

/* Wide rows: a batch ends at 256 KiB of lines before its row count; a
** CopyFail after committed batches says what stayed. */
static void test_bytes_and_copy_fail(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f), *o = session(&f);
    sqlv__copy_batch_rows = 1000;
    EXPECT(s, "CREATE TABLE cw (id INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    size_t wide = 100 * 1024;
    char *line = malloc(wide + 32);
    assert_non_null(line);
    copying cp;
    copy_start(s, &cp, "COPY cw FROM STDIN");
    for (int i = 1; i <= 4; i++) {
        int n = snprintf(line, 32, "%d\t", i);
        memset(line + n, 'w', wide);
        line[n + wide] = '\n';
        line[n + wide + 1] = 0;
        copy_line_raw(s, &cp, line, SQLV_OK);
    }
    free(line);
    expect_count(o, "cw", 3); /* 3 lines passed 256 KiB */
    assert_int_equal(sqlv_session_copy_fail(s, "gave up", &cp.sink), SQLV_OK);
    assert_false(sqlv_session_in_copy(s));
    base_buf_append_byte(&cp.c.out, 0);
    assert_non_null(strstr((const char *)cp.c.out.data,
                           "E 57014 COPY from stdin failed: gave up\nDETAIL:  3 rows were "
                           "committed by earlier batches of this COPY and stay committed; the "
                           "failed batch (from COPY line 4) was rolled back."));
    base_buf_free(&cp.c.out);
    assert_int_equal(sqlv_session_status(s), 'I');
    expect_count(o, "cw", 3);
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

/* copy_from_atomic_enabled: SET/SHOW/RESET, and the copy is one
** transaction (nothing visible meanwhile, nothing left after a bad row). */
static void test_atomic_setting(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f), *o = session(&f);
    EXPECT(s, "SHOW copy_from_atomic_enabled", "D copy_from_atomic_enabled:25\nR off\nC SHOW\n");
    EXPECT(s, "SET copy_from_atomic_enabled = true", "C SET\n");
    EXPECT(s, "SHOW copy_from_atomic_enabled", "D copy_from_atomic_enabled:25\nR on\nC SHOW\n");
    expect_error(s, "SET copy_from_atomic_enabled = maybe", "22023");
    EXPECT(s, "CREATE TABLE ca (id INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    copying cp;
    copy_start(s, &cp, "COPY ca FROM STDIN");
    assert_int_equal(copy_rows(s, &cp, 1, 7), SQLV_OK);
    expect_count(o, "ca", 0);
    copy_line_raw(s, &cp, "8\n", SQLV_ERR_FAILED);
    char *got = copy_end(s, &cp);
    assert_string_equal(got, "I 2\nE 22P04 missing data for column 2 (COPY line 8)\n");
    free(got);
    expect_count(o, "ca", 0);
    assert_int_equal(sqlv_session_status(s), 'I');
    /* and a good one commits at done */
    copy_start(s, &cp, "COPY ca FROM STDIN");
    assert_int_equal(copy_rows(s, &cp, 1, 7), SQLV_OK);
    expect_count(o, "ca", 0);
    got = copy_end(s, &cp);
    assert_string_equal(got, "I 2\nC COPY 7\n");
    free(got);
    expect_count(o, "ca", 7);
    EXPECT(s, "RESET copy_from_atomic_enabled", "C RESET\n");
    EXPECT(s, "SHOW copy_from_atomic_enabled", "D copy_from_atomic_enabled:25\nR off\nC SHOW\n");
    EXPECT(s, "SET copy_from_atomic_enabled TO on; SET copy_from_atomic_enabled = off",
           "C SET\nC SET\n");
    EXPECT(s, "SHOW copy_from_atomic_enabled", "D copy_from_atomic_enabled:25\nR off\nC SHOW\n");
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

/* Inside BEGIN the copy is part of the block: nothing is visible before
** COMMIT, and ROLLBACK leaves nothing. */
static void test_in_block(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f), *o = session(&f);
    EXPECT(s, "CREATE TABLE ck (id INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "BEGIN", "C BEGIN\n");
    copying cp;
    copy_start(s, &cp, "COPY ck FROM STDIN");
    assert_int_equal(copy_rows(s, &cp, 1, 10), SQLV_OK);
    expect_count(o, "ck", 0);
    char *got = copy_end(s, &cp);
    assert_string_equal(got, "I 2\nC COPY 10\n");
    free(got);
    assert_int_equal(sqlv_session_status(s), 'T');
    expect_count(o, "ck", 0);
    expect_count(s, "ck", 10);
    EXPECT(s, "COMMIT", "C COMMIT\n");
    expect_count(o, "ck", 10);
    EXPECT(s, "BEGIN", "C BEGIN\n");
    copy_start(s, &cp, "COPY ck FROM STDIN");
    assert_int_equal(copy_rows(s, &cp, 11, 20), SQLV_OK);
    got = copy_end(s, &cp);
    assert_string_equal(got, "I 2\nC COPY 10\n");
    free(got);
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    expect_count(o, "ck", 10);
    /* a bad row in a block: the block fails, nothing of the copy stays */
    EXPECT(s, "BEGIN", "C BEGIN\n");
    copy_start(s, &cp, "COPY ck FROM STDIN");
    assert_int_equal(copy_rows(s, &cp, 11, 17), SQLV_OK);
    copy_line_raw(s, &cp, "18\n", SQLV_ERR_FAILED);
    got = copy_end(s, &cp);
    assert_string_equal(got, "I 2\nE 22P04 missing data for column 2 (COPY line 8)\n");
    free(got);
    assert_int_equal(sqlv_session_status(s), 'E');
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    expect_count(o, "ck", 10);
    sqlv_session_close(o);
    sqlv_session_close(s);
    close_all(&f);
}

/* ---- 40001 on demand -----------------------------------------------------------------
** A key space over a local store that fails the next fail_commits commits
** with a write-write conflict (40001) and the next fail_gets point reads
** with a conflict (40001 in the middle of a batch). */

typedef struct conflict_kv {
    wrapped_kv w; /* first member */
    int fail_commits;
    int fail_gets;
    int commits; /* commits that reached the store */
} conflict_kv;

static int ck_get(range_kv *kv, const uint8_t *k, size_t kl, hlc_timestamp ts, base_buf *out) {
    conflict_kv *f = (conflict_kv *)kv;
    if (f->fail_gets > 0) {
        f->fail_gets--;
        return RANGE_ERR_CONFLICT;
    }
    return f->w.inner->ops->get(f->w.inner, k, kl, ts, out);
}
static int ck_commit(range_kv *kv, const range_commit_request *req, hlc_timestamp *ts,
                     range_conflict *c) {
    conflict_kv *f = (conflict_kv *)kv;
    if (f->fail_commits > 0 && req->write_count > 0) {
        f->fail_commits--;
        c->kind = RANGE_CONFLICT_WRITE_WRITE;
        return RANGE_ERR_CONFLICT;
    }
    int rc = f->w.inner->ops->commit(f->w.inner, req, ts, c);
    if (rc == RANGE_OK && req->write_count > 0) f->commits++;
    return rc;
}
static void conflict_wrap(wrapped_kv *w) {
    w->ops.get = ck_get;
    w->ops.commit = ck_commit;
}

/* 40001 at a batch's commit (twice) and in a row of a batch: each batch is
** replayed and commits once; every row is there once. */
static void test_conflict_replays_batch(void **state) {
    (void)state;
    kv_fixture f;
    conflict_kv ck;
    memset(&ck, 0, sizeof(ck));
    kv_fixture_open(&f, &ck.w, conflict_wrap);
    sqlv_session *s = session(&f.base), *o = session(&f.base);
    EXPECT(s, "CREATE TABLE cc (id INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    copying cp;
    copy_start(s, &cp, "COPY cc FROM STDIN");
    assert_int_equal(copy_rows(s, &cp, 1, 4), SQLV_OK); /* batch 1 committed */
    int commits = ck.commits;
    ck.fail_commits = 2;
    assert_int_equal(copy_rows(s, &cp, 5, 6), SQLV_OK); /* batch 2: two replays */
    assert_int_equal(ck.fail_commits, 0);
    assert_int_equal(ck.commits, commits + 1);
    expect_count(o, "cc", 6);
    ck.fail_gets = 1; /* batch 3's first read: as it begins */
    assert_int_equal(copy_rows(s, &cp, 7, 7), SQLV_OK);
    assert_int_equal(ck.fail_gets, 0);
    ck.fail_gets = 1; /* row 8's read of its key: rows 7-8 replay */
    assert_int_equal(copy_rows(s, &cp, 8, 8), SQLV_OK);
    assert_int_equal(ck.fail_gets, 0);
    char *got = copy_end(s, &cp);
    assert_string_equal(got, "I 2\nC COPY 8\n");
    free(got);
    EXPECT(o, "SELECT id, v FROM cc ORDER BY id",
           "D id:23,v:25\nR 1|v1\nR 2|v2\nR 3|v3\nR 4|v4\nR 5|v5\nR 6|v6\nR 7|v7\nR 8|v8\n"
           "C SELECT 8\n");
    /* replays run out: the 40001 ends the copy; earlier batches stay */
    copy_start(s, &cp, "COPY cc FROM STDIN");
    assert_int_equal(copy_rows(s, &cp, 11, 13), SQLV_OK);
    ck.fail_commits = 1000;
    assert_int_equal(copy_rows(s, &cp, 14, 16), SQLV_ERR_FAILED);
    ck.fail_commits = 0;
    got = copy_end(s, &cp);
    assert_non_null(strstr(got, "E 40001 restart transaction"));
    assert_non_null(strstr(got, "\nDETAIL:  3 rows were committed by earlier batches"));
    free(got);
    assert_int_equal(sqlv_session_status(s), 'I');
    expect_count(o, "cc", 11);
    sqlv_session_close(o);
    sqlv_session_close(s);
    kv_fixture_close(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batches_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_row_keeps_earlier_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_and_copy_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_setting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_replays_batch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
