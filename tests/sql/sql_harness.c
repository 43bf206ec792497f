/* tests/sql/sql_harness.c: see sql_harness.h. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>

#include "tests/sql/sql_harness.h"

void open_all(fixture *f) {
    memset(f, 0, sizeof(*f));
    assert_int_equal(hlc_clock_new(hlc_system_clock(), HLC_DEFAULT_MAX_OFFSET_NS, &f->clock), 0);
    storage_options so;
    memset(&so, 0, sizeof(so));
    so.create_if_missing = true;
    assert_int_equal(storage_open(&so, &f->engine), STORAGE_OK);
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

sqlv_session *session(fixture *f) {
    sqlv_session *s = NULL;
    assert_int_equal(sqlv_session_open(f->sql, "root", "defaultdb", &s), SQLV_OK);
    return s;
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
