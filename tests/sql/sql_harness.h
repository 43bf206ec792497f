/*
** tests/sql/sql_harness.h: what the sql/ tests share: an engine over txn/
** on the in-memory storage twin (or over a key space the test wraps),
** sessions (of users too), the dialect rewriter's checks, the out-of-memory
** loop's step (run_failing), and a capture sink that records what the
** gateway would send as a transcript:
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
#include "range/range.h"
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
/* A session of user on f (owner: caller, sqlv_session_close). */
sqlv_session *session_as(fixture *f, const char *user);
/* root (a session that may) creates user (CREATE USER); a session of it
** (owner: caller, sqlv_session_close). */
sqlv_session *user_session(fixture *f, sqlv_session *root, const char *user);
/* Runs q with the n-th allocation (and every later one) failing, then
** ROLLBACK if a block is left open; true when q ran to the end (its
** transcript ends with last) without an error line. For the tests that fail
** every allocation in turn. */
bool run_failing(sqlv_session *s, const char *q, const char *last, long n);

/* The dialect rewriter (sql/sql_dialect.h) turns in into want, and want
** into itself. */
void expect_rewrite(const char *in, const char *want);
/* The rewriter refuses in with state, and (needle not NULL) a message
** holding needle. */
void expect_rejected(const char *in, const char *state, const char *needle);

/* ---- an engine over a wrapped key space -------------------------------------------
** For tests that fail or count the calls of the key space: txn/ runs over
** kv, a wrapper of a local range store's. The wrapper's ops start as the
** store's, those that take the key space (wait_visible, get, iter_open,
** commit, stats) passing it the store's, last_error NULL; the test's wrap
** then replaces what it wants, before txn/ sees them. A test's own wrapper
** struct has a wrapped_kv as its first member and casts the range_kv *
** its ops get. */
typedef struct wrapped_kv {
    range_kv kv;      /* first member: what txn/ is given */
    range_kv *inner;  /* the store's */
    range_kv_ops ops; /* kv.ops */
} wrapped_kv;

typedef struct kv_fixture {
    fixture base; /* for session(&f.base); closed by kv_fixture_close, not close_all */
    range_store *store;
} kv_fixture;

/* Opens f with txn/ over w (its kv, inner and ops set; the rest of the
** test's struct is the test's); wrap (may be NULL) is called once the
** ops are set. */
void kv_fixture_open(kv_fixture *f, wrapped_kv *w, void (*wrap)(wrapped_kv *w));
void kv_fixture_close(kv_fixture *f);

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
