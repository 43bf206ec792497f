/*
** tests/sql/sql_harness.h: what the sql/ tests share: an engine over txn/
** on the in-memory storage twin, sessions, and a capture sink that records
** what the gateway would send as a transcript:
**
**   D name:oid,name:oid      row description
**   R v1|v2|NULL             data row
**   C tag                    command complete
**   E sqlstate message       error
**   N message                notice
**   Q                        empty query
**
** Include after cmocka.h.
*/
#ifndef MERIDIAN_TESTS_SQL_HARNESS_H
#define MERIDIAN_TESTS_SQL_HARNESS_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "sql/sql.h"

typedef struct fixture {
    hlc_clock *clock;
    storage_engine *engine;
    txn_db *db;
    sqlv_engine *sql;
} fixture;

typedef struct capture {
    base_buf out;
    sqlv_session *cancel_on_row; /* cancel this session at the first row */
} capture;

void open_all(fixture *f);
void close_all(fixture *f);
int c_desc(void *ctx, int n, const sqlv_column *cols);
int c_row(void *ctx, int n, const sqlv_cell *cells);
int c_tag(void *ctx, const char *tag);
int c_empty(void *ctx);
int c_error(void *ctx, const char *state, const char *msg);
int c_notice(void *ctx, const char *msg);
char *run(sqlv_session *s, const char *q);
char *rows_of(sqlv_session *s, const char *q);
void exec_ok(sqlv_session *s, const char *q);
void expect_error(sqlv_session *s, const char *q, const char *state);
sqlv_session *session(fixture *f);
/* Runs q with the n-th allocation (and every later one) failing, then
** ROLLBACK if a block is left open; true when q ran to the end (its
** transcript ends with last) without an error line. For the tests that fail
** every allocation in turn. */
bool run_failing(sqlv_session *s, const char *q, const char *last, long n);

#define EXPECT(s, q, want)                                                                         \
    do {                                                                                           \
        char *got_ = run((s), (q));                                                                \
        if (strcmp(got_, (want)) != 0)                                                             \
            print_error("query: %s\nwant:\n%sgot:\n%s", (q), (want), got_);                        \
        assert_string_equal(got_, (want));                                                         \
        free(got_);                                                                                \
    } while (0)

/* Like EXPECT, against the rows of the transcript only (see rows_of). */
#define EXPECT_ROWS(s, q, want)                                                                    \
    do {                                                                                           \
        char *got_ = rows_of((s), (q));                                                            \
        if (strcmp(got_, (want)) != 0)                                                             \
            print_error("query: %s\nwant:\n%sgot:\n%s", (q), (want), got_);                        \
        assert_string_equal(got_, (want));                                                         \
        free(got_);                                                                                \
    } while (0)

/* q (which can use an index or a key) and q_scan (which cannot) give the
** same rows, and some. */
#define EXPECT_SAME(s, q, q_scan)                                                                  \
    do {                                                                                           \
        char *a_ = rows_of((s), (q)), *b_ = rows_of((s), (q_scan));                                \
        if (strcmp(a_, b_) != 0) print_error("%s:\n%s\n%s:\n%s", (q), a_, (q_scan), b_);           \
        assert_string_equal(a_, b_);                                                               \
        assert_true(a_[0] != 0);                                                                   \
        free(a_);                                                                                  \
        free(b_);                                                                                  \
    } while (0)

#endif
