/* tests/sql/sql_harness.c: see sql_harness.h. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>

#include "sql/sql_dialect.h"
#include "tests/sql/sql_harness.h"

/* f zeroed, then its clock and in-memory storage engine open. */
static void open_storage(fixture *f) {
    memset(f, 0, sizeof(*f));
    assert_int_equal(hlc_clock_new(hlc_system_clock(), HLC_DEFAULT_MAX_OFFSET_NS, &f->clock), 0);
    storage_options so;
    memset(&so, 0, sizeof(so));
    so.create_if_missing = true;
    assert_int_equal(storage_open(&so, &f->engine), STORAGE_OK);
}

void open_all(fixture *f) {
    open_storage(f);
    txn_db_options o = {.engine = f->engine, .clock = f->clock, .sync_commits = false};
    assert_int_equal(txn_db_open(&o, &f->db), TXN_OK);
    assert_int_equal(sqlv_engine_open(f->db, &f->sql), SQLV_OK);
}

void close_all(fixture *f) {
    sqlv_engine_close(f->sql);
    txn_db_close(f->db);
    storage_close(f->engine);
    hlc_clock_free(f->clock);
}

/* ---- capture sink ------------------------------------------------------------------ */


int c_desc(void *ctx, int n, const sqlv_column *cols) {
    capture *c = ctx;
    base_buf_printf(&c->out, "D ");
    for (int i = 0; i < n; i++)
        base_buf_printf(&c->out, "%s%s:%u", i ? "," : "", cols[i].name, cols[i].type_oid);
    base_buf_printf(&c->out, "\n");
    return 0;
}

int c_row(void *ctx, int n, const sqlv_cell *cells) {
    capture *c = ctx;
    if (c->cancel_on_row) sqlv_session_cancel(c->cancel_on_row);
    base_buf_printf(&c->out, "R ");
    for (int i = 0; i < n; i++) {
        if (i) base_buf_printf(&c->out, "|");
        if (cells[i].data == NULL)
            base_buf_printf(&c->out, "NULL");
        else
            base_buf_printf(&c->out, "%.*s", (int)cells[i].len, cells[i].data);
    }
    base_buf_printf(&c->out, "\n");
    return 0;
}

int c_tag(void *ctx, const char *tag) {
    return base_buf_printf(&((capture *)ctx)->out, "C %s\n", tag), 0;
}
int c_empty(void *ctx) { return base_buf_printf(&((capture *)ctx)->out, "Q\n"), 0; }
int c_error(void *ctx, const char *state, const char *msg) {
    return base_buf_printf(&((capture *)ctx)->out, "E %s %s\n", state, msg), 0;
}
int c_notice(void *ctx, const char *msg) {
    return base_buf_printf(&((capture *)ctx)->out, "N %s\n", msg), 0;
}

/* Runs q; returns the transcript (owner: caller, free). */
char *run(sqlv_session *s, const char *q) {
    capture c;
    memset(&c, 0, sizeof(c));
    sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
    assert_int_equal(sqlv_session_exec(s, q, strlen(q), &sink), SQLV_OK);
    base_buf_append_byte(&c.out, 0);
    char *r = strdup((const char *)c.out.data);
    base_buf_free(&c.out);
    return r;
}

/* The rows of a transcript only ("R ..." lines), or its error line
   (owner: caller, free). */
char *rows_of(sqlv_session *s, const char *q) {
    char *got = run(s, q);
    base_buf b = {0};
    for (char *line = got; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);
        if (strncmp(line, "R ", 2) == 0 || strncmp(line, "E ", 2) == 0)
            base_buf_append(&b, line, n);
        line += n;
    }
    base_buf_append_byte(&b, 0);
    free(got);
    char *r = strdup((const char *)b.data);
    base_buf_free(&b);
    return r;
}

/* Runs q and fails the test if the transcript has an error line. */
void exec_ok(sqlv_session *s, const char *q) {
    char *got = run(s, q);
    if (strstr(got, "\nE ") != NULL || strncmp(got, "E ", 2) == 0)
        print_error("query: %s\ngot:\n%s", q, got);
    assert_null(strstr(got, "\nE "));
    assert_false(strncmp(got, "E ", 2) == 0);
    free(got);
}

/* The first line starting with "E " carries this SQLSTATE. */
void expect_error(sqlv_session *s, const char *q, const char *state) {
    char *got = run(s, q);
    char *e = strstr(got, "E ");
    if (e == NULL || strncmp(e + 2, state, 5) != 0)
        print_error("query: %s\nwant error %s, got:\n%s", q, state, got);
    assert_non_null(e);
    assert_memory_equal(e + 2, state, 5);
    free(got);
}

sqlv_session *session(fixture *f) { return session_as(f, "root"); }

sqlv_session *session_as(fixture *f, const char *user) {
    sqlv_session *s = NULL;
    assert_int_equal(sqlv_session_open(f->sql, user, "defaultdb", &s), SQLV_OK);
    return s;
}

sqlv_session *user_session(fixture *f, sqlv_session *root, const char *user) {
    char q[128];
    snprintf(q, sizeof q, "CREATE USER %s", user);
    EXPECT(root, q, "C CREATE ROLE\n");
    return session_as(f, user);
}

bool run_failing(sqlv_session *s, const char *q, const char *last, long n) {
    capture c;
    memset(&c, 0, sizeof(c));
    sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
    base_alloc_fail_after(n);
    (void)sqlv_session_exec(s, q, strlen(q), &sink);
    base_alloc_fail_after(-1);
    base_buf_append_byte(&c.out, 0);
    const char *out = (const char *)c.out.data;
    size_t ol = strlen(out), ll = strlen(last);
    bool ok = strncmp(out, "E ", 2) != 0 && strstr(out, "\nE ") == NULL && ol >= ll &&
              strcmp(out + ol - ll, last) == 0;
    base_buf_free(&c.out);
    if (sqlv_session_status(s) != 'I') free(run(s, "ROLLBACK"));
    return ok;
}

/* ---- the dialect rewriter ----------------------------------------------------------- */

void expect_rewrite(const char *in, const char *want) {
    sqlv__rewrite rw;
    int rc = sqlv__dialect_rewrite(in, strlen(in), &rw);
    if (rc != 0) print_error("in: %s\nrejected: %s %s\n", in, rw.sqlstate, rw.message);
    assert_int_equal(rc, 0);
    if (strcmp(rw.text, want) != 0)
        print_error("in:   %s\nwant: %s\ngot:  %s\n", in, want, rw.text);
    assert_string_equal(rw.text, want);
    assert_int_equal(rw.len, strlen(want));
    /* rewriting the output again changes nothing */
    sqlv__rewrite again;
    assert_int_equal(sqlv__dialect_rewrite(rw.text, rw.len, &again), 0);
    if (strcmp(again.text, want) != 0) print_error("again: %s\n", again.text);
    assert_string_equal(again.text, want);
    base_free(again.text);
    base_free(rw.text);
}

void expect_rejected(const char *in, const char *state, const char *needle) {
    sqlv__rewrite rw;
    int rc = sqlv__dialect_rewrite(in, strlen(in), &rw);
    if (rc != 1) print_error("in: %s\nnot rejected: %s\n", in, rc == 0 ? rw.text : "?");
    assert_int_equal(rc, 1);
    assert_null(rw.text);
    assert_string_equal(rw.sqlstate, state);
    if (needle == NULL) return;
    if (strstr(rw.message, needle) == NULL) print_error("message: %s\n", rw.message);
    assert_non_null(strstr(rw.message, needle));
}

/* ---- an engine over a wrapped key space --------------------------------------------- */

static range_kv *inner_of(range_kv *kv) { return ((wrapped_kv *)kv)->inner; }

static int wk_wait(range_kv *kv, hlc_timestamp ts) {
    range_kv *in = inner_of(kv);
    return in->ops->wait_visible(in, ts);
}
static int wk_get(range_kv *kv, const uint8_t *k, size_t kl, hlc_timestamp ts, base_buf *out) {
    range_kv *in = inner_of(kv);
    return in->ops->get(in, k, kl, ts, out);
}
static int wk_iter_open(range_kv *kv, const uint8_t *s, size_t sl, const uint8_t *e, size_t el,
                        hlc_timestamp ts, bool reverse, range_kv_iter **out) {
    range_kv *in = inner_of(kv);
    return in->ops->iter_open(in, s, sl, e, el, ts, reverse, out);
}
static int wk_commit(range_kv *kv, const range_commit_request *req, hlc_timestamp *ts,
                     range_conflict *c) {
    range_kv *in = inner_of(kv);
    return in->ops->commit(in, req, ts, c);
}
static void wk_stats(range_kv *kv, range_stats *out) {
    range_kv *in = inner_of(kv);
    in->ops->stats(in, out);
}

void kv_fixture_open(kv_fixture *f, wrapped_kv *w, void (*wrap)(wrapped_kv *w)) {
    fixture *b = &f->base;
    f->store = NULL;
    open_storage(b);
    assert_int_equal(range_store_open(b->engine, b->clock, false, &f->store), RANGE_OK);
    w->inner = range_store_kv(f->store);
    w->ops = *w->inner->ops; /* the iterators and everything else: the store's */
    w->ops.wait_visible = wk_wait;
    w->ops.get = wk_get;
    w->ops.iter_open = wk_iter_open;
    w->ops.commit = wk_commit;
    w->ops.stats = wk_stats;
    w->ops.last_error = NULL;
    assert_null(w->ops.admin_split); /* a local store: nothing else takes kv */
    assert_null(w->ops.lock);
    w->kv.ops = &w->ops;
    if (wrap != NULL) wrap(w);
    txn_db_options o = {.clock = b->clock, .kv = &w->kv};
    assert_int_equal(txn_db_open(&o, &b->db), TXN_OK);
    assert_int_equal(sqlv_engine_open(b->db, &b->sql), SQLV_OK);
}

void kv_fixture_close(kv_fixture *f) {
    sqlv_engine_close(f->base.sql);
    txn_db_close(f->base.db);
    range_store_close(f->store);
    storage_close(f->base.engine);
    hlc_clock_free(f->base.clock);
}
