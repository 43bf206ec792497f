/*
** End-to-end: the real psql binary's \d family against one real `meridian
** start` process (temp store, free port): \d on an empty database, then
** \dt, \d accounts, \di, \du, \l, \dn naming the table, its columns and
** types and its primary key, a dropped table gone from \dt, SHOW TABLES /
** SHOW CREATE TABLE, \dv and \d of a view, and tab completion on a
** pseudo-terminal. Every psql run is bounded by E2E_CMD_TIMEOUT_MS. The
** catalogs: sql/pgcatalog.c.
*/
#include "tests/e2e/e2e_util.h"

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define E2E_CMD_TIMEOUT_MS (60 * 1000)

/* psql -X -A [-t] -v ON_ERROR_STOP=1 URL -c cmd...; asserts exit 0.
** owner of *out: caller, base_free. */
static void psql(bool tuples_only, const char *const *cmds, char **out) {
    const char *argv[32];
    int n = 0;
    argv[n++] = "psql";
    argv[n++] = "-X";
    argv[n++] = "-A";
    if (tuples_only) argv[n++] = "-t";
    argv[n++] = "-v";
    argv[n++] = "ON_ERROR_STOP=1";
    argv[n++] = e2e_node.url;
    for (int i = 0; cmds[i] != NULL && n + 3 < (int)BASE_ARRAY_LEN(argv); i++) {
        argv[n++] = "-c";
        argv[n++] = cmds[i];
    }
    argv[n] = NULL;
    char *err = NULL;
    int st = mtest_run(argv, NULL, E2E_CMD_TIMEOUT_MS, out, &err);
    if (st != 0) print_error("psql exit %d\nstdout:\n%s\nstderr:\n%s\n", st, *out, err);
    assert_int_equal(st, 0);
    base_free(err);
}

static void expect_in(const char *out, const char *want) {
    if (strstr(out, want) == NULL) print_error("want %s in psql output:\n%s\n", want, out);
    assert_non_null(strstr(out, want));
}

/* First, on the fresh node: \d finds nothing, and says so. */
static void test_empty_database(void **state) {
    (void)state;
    const char *argv[] = {"psql", "-X", "-A", "-t", e2e_node.url, "-c", "\\d", NULL};
    char *out = NULL, *err = NULL;
    int st = mtest_run(argv, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    if (st != 0 || strstr(err, "Did not find any relations.") == NULL)
        print_error("psql exit %d\nstdout:\n%s\nstderr:\n%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "Did not find any relations."));
    base_free(out);
    base_free(err);
}

static void test_describe(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL, "
              "owner VARCHAR(20), opened TIMESTAMPTZ)");
    e2e_ok(c, "CREATE TABLE history (v TEXT)");
    char *out = NULL;
    const char *cmds[] = {"\\dt", "\\d accounts", "\\di", "\\du", "\\l", "\\dn", NULL};
    psql(true, cmds, &out);
    /* \dt */
    expect_in(out, "public|accounts|table|root\npublic|history|table|root\n");
    /* \d accounts: columns, types, nullability */
    expect_in(out, "id|integer||not null|\n"
                   "balance|bigint||not null|\n"
                   "owner|character varying(20)|||\n"
                   "opened|timestamp with time zone|||\n");
    /* \di */
    expect_in(out, "public|accounts_pkey|index|root|accounts\n");
    /* \du, \l, \dn */
    /* root is always in admin (issue 9: users and roles) */
    expect_in(out, "admin|Create role, Create DB, Cannot login|{}\n");
    expect_in(out, "root|Superuser, Create role, Create DB, Replication, Bypass RLS|{admin}\n");
    expect_in(out, "defaultdb|root|UTF8|C|C||libc|\n");
    expect_in(out, "public|root\n");
    base_free(out);

    /* \d accounts with its footer: the primary key */
    const char *cmds2[] = {"\\d accounts", "\\d accounts_pkey", NULL};
    psql(false, cmds2, &out);
    expect_in(out, "Table \"public.accounts\"\n");
    expect_in(out, "Indexes:\n    \"accounts_pkey\" PRIMARY KEY, btree (id)\n");
    expect_in(out, "primary key, btree, for table \"public.accounts\"\n");
    base_free(out);

    /* Meridian's own, through psql */
    const char *cmds3[] = {"SHOW TABLES", "SHOW CREATE TABLE history", "SHOW COLUMNS FROM accounts",
                           NULL};
    psql(true, cmds3, &out);
    expect_in(out, "public|accounts|table|root\npublic|history|table|root\n");
    expect_in(out, "history|CREATE TABLE history (v TEXT)\n");
    expect_in(out, "id|integer|f||{accounts_pkey}\n");
    base_free(out);

    /* the same catalogs through libpq; what they do not provide is 0A000 */
    e2e_rows_equal(c,
                   "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) FROM "
                   "pg_catalog.pg_attribute a WHERE a.attrelid = 'accounts'::regclass AND "
                   "a.attnum > 0 ORDER BY a.attnum",
                   "id|integer\nbalance|bigint\nowner|character varying(20)\n"
                   "opened|timestamp with time zone\n");
    e2e_rows_equal(c,
                   "SELECT column_name, is_nullable FROM information_schema.columns WHERE "
                   "table_name = 'history'",
                   "v|YES\n");
    e2e_fails(c, "SELECT proname FROM pg_catalog.pg_proc", "0A000");
    /* drivers' way: the extended protocol with a parameter */
    const char *param[1] = {"accounts"};
    PGresult *r = PQexecParams(c,
                               "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = "
                               "$1::regclass AND attnum > 0",
                               1, NULL, param, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) print_error("%s\n", PQresultErrorMessage(r));
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "4");
    PQclear(r);

    /* dropped through another connection: gone from \dt */
    e2e_ok(c, "DROP TABLE history");
    const char *cmds4[] = {"\\dt", NULL};
    psql(true, cmds4, &out);
    assert_string_equal(out, "public|accounts|table|root\n");
    base_free(out);
    PQfinish(c);
}

/* Views (docs/sql.md "Views"): \dv lists them, \dt does not, \d v shows
** the columns and \d+ v the "View definition:" footer (pg_get_viewdef). */
static void test_views(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE stock (id INT PRIMARY KEY, qty INT)");
    e2e_ok(c, "INSERT INTO stock VALUES (1, 5), (2, 0)");
    e2e_ok(c, "CREATE VIEW in_stock AS SELECT id, qty FROM stock WHERE qty > 0");
    e2e_rows_equal(c, "SELECT id FROM in_stock", "1\n");
    char *out = NULL;
    const char *cmds[] = {"\\dv", "\\dt", NULL};
    psql(true, cmds, &out);
    expect_in(out, "public|in_stock|view|root\n");
    if (strstr(out, "public|in_stock|table") != NULL) print_error("\\dt lists a view:\n%s\n", out);
    assert_null(strstr(out, "public|in_stock|table"));
    base_free(out);
    const char *cmds2[] = {"\\d in_stock", "\\d+ in_stock", NULL};
    psql(false, cmds2, &out);
    expect_in(out, "View \"public.in_stock\"\n");
    expect_in(out, "View definition:\n");
    expect_in(out, "SELECT id, qty FROM stock WHERE qty > 0");
    base_free(out);
    e2e_fails(c, "DROP TABLE stock", "2BP01");
    e2e_ok(c, "DROP TABLE stock CASCADE");
    PQfinish(c);
}

/* ---- tab completion on a pseudo-terminal ---------------------------------------------- */

/* Read from fd into acc until it holds want past *from, bounded by
** E2E_CMD_TIMEOUT_MS; moves *from past it. */
static bool pty_expect(int fd, base_buf *acc, size_t *from, const char *want) {
    int64_t deadline = base_monotonic_ns() / 1000000 + E2E_CMD_TIMEOUT_MS;
    for (;;) {
        base_buf_append_byte(acc, 0);
        acc->len--;
        const char *hit = strstr((const char *)acc->data + *from, want);
        if (hit != NULL) {
            *from = (size_t)(hit - (const char *)acc->data) + strlen(want);
            return true;
        }
        int64_t left = deadline - base_monotonic_ns() / 1000000;
        if (left <= 0) return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0) return false;
        char chunk[1024];
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r <= 0) return false;
        base_buf_append(acc, chunk, (size_t)r);
    }
}

static void pty_send(int fd, const char *text) {
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
}

/* psql completes table names from pg_class (its own catalog queries), and
** the session goes on working. */
static void test_tab_completion(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE completion_target (k INT PRIMARY KEY)");
    PQfinish(c);
    int fd = -1;
    pid_t pid = forkpty(&fd, NULL, NULL, NULL);
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("TERM", "dumb", 1);
        execlp("psql", "psql", "-X", "-P", "pager=off", e2e_node.url, (char *)NULL);
        _exit(127);
    }
    base_buf acc = {0};
    size_t from = 0;
    bool ok = pty_expect(fd, &acc, &from, "=# ");
    if (ok) {
        pty_send(fd, "SELECT count(*) FROM completion_ta\t");
        ok = pty_expect(fd, &acc, &from, "completion_target ");
    }
    if (ok) {
        pty_send(fd, ";\n");
        ok = pty_expect(fd, &acc, &from, "(1 row)") && pty_expect(fd, &acc, &from, "=# ");
    }
    if (ok) pty_send(fd, "\\q\n");
    if (!ok) {
        base_buf_append_byte(&acc, 0);
        print_error("terminal so far:\n%s\n", (const char *)acc.data);
        kill(pid, SIGKILL);
    }
    /* reap, bounded: psql exits after \q; past the bound it is killed */
    int st = -1, wst;
    int64_t deadline = base_monotonic_ns() / 1000000 + E2E_CMD_TIMEOUT_MS;
    for (;;) {
        pid_t r = waitpid(pid, &wst, WNOHANG);
        if (r == pid) {
            st = WIFEXITED(wst) ? WEXITSTATUS(wst) : -1;
            break;
        }
        if (base_monotonic_ns() / 1000000 > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &wst, 0);
            break;
        }
        char chunk[256];
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0 && read(fd, chunk, sizeof chunk) <= 0) {
            struct timespec ts = {0, 5 * 1000 * 1000}; /* closed pty: retry step */
            nanosleep(&ts, NULL);
        }
    }
    close(fd);
    base_buf_free(&acc);
    assert_true(ok);
    assert_int_equal(st, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_database), /* first: the node is empty */
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_tab_completion),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup, e2e_group_teardown);
}
