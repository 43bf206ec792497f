/*
** End-to-end: the life of a node process. Clean restart keeps the data;
** kill -9 right after an acknowledged COMMIT loses nothing; one process per
** store; bad flags exit 2; SIGTERM stops the node with exit 0.
*/
#include "tests/e2e/e2e_util.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#define E2E_CMD_TIMEOUT_MS (60 * 1000)
#define E2E_KILL_ROWS 200

static void test_restart_keeps_data(void **state) {
    (void)state;
    mtest_node n;
    assert_int_equal(mtest_node_start(&n, NULL, NULL), 0);
    PGconn *c = mtest_connect(&n);
    assert_non_null(c);
    e2e_ok(c, "CREATE TABLE accounts (id INT PRIMARY KEY, owner TEXT NOT NULL, balance INT)");
    e2e_ok(c, "CREATE TABLE notes (body TEXT)"); /* no primary key: hidden row id */
    e2e_ok(c, "INSERT INTO accounts VALUES (1, 'ada', 100), (2, 'bob', 50)");
    e2e_ok(c, "INSERT INTO notes VALUES ('x'), ('x'), ('y')");
    e2e_ok(c, "BEGIN; UPDATE accounts SET balance = balance - 10 WHERE id = 1; "
              "UPDATE accounts SET balance = balance + 10 WHERE id = 2; COMMIT;");
    PQfinish(c);

    char pid_path[MTEST_PATH_MAX + 32], log_path[MTEST_PATH_MAX + 32];
    snprintf(pid_path, sizeof pid_path, "%s/meridian.pid", n.store);
    snprintf(log_path, sizeof log_path, "%s/logs/meridian.log", n.store);
    struct stat st;
    assert_int_equal(stat(pid_path, &st), 0);
    assert_int_equal(mtest_node_stop(&n), 0); /* SIGTERM: clean exit */
    assert_int_not_equal(stat(pid_path, &st), 0);
    assert_int_equal(stat(log_path, &st), 0);
    assert_true(st.st_size > 0);

    assert_int_equal(mtest_node_restart(&n, NULL), 0);
    c = mtest_connect(&n);
    assert_non_null(c);
    e2e_rows_equal(c, "SELECT * FROM accounts WHERE id BETWEEN 1 AND 2 ORDER BY id",
                   "1|ada|90\n2|bob|60\n");
    e2e_rows_equal(c, "SELECT body, count(*) FROM notes GROUP BY body ORDER BY body",
                   "x|2\ny|1\n");
    e2e_fails(c, "INSERT INTO accounts VALUES (1, 'dup', 0)", "23505"); /* schema back too */
    e2e_ok(c, "INSERT INTO accounts VALUES (3, 'cy', 7)");
    e2e_rows_equal(c, "SELECT count(*) FROM accounts", "3\n");
    PQfinish(c);
    assert_int_equal(mtest_node_stop(&n), 0);
    mtest_node_destroy(&n);
}

static void test_kill9_after_acknowledged_commit(void **state) {
    (void)state;
    mtest_node n;
    assert_int_equal(mtest_node_start(&n, NULL, NULL), 0);
    PGconn *c = mtest_connect(&n);
    assert_non_null(c);
    e2e_ok(c, "CREATE TABLE ledger (id INT PRIMARY KEY, amount INT)");
    char sql[128];
    for (int i = 1; i <= E2E_KILL_ROWS; i++) {
        snprintf(sql, sizeof sql, "INSERT INTO ledger VALUES (%d, %d)", i, i * 3);
        e2e_ok(c, sql); /* autocommit: acknowledged = committed */
    }
    /* The last one in an explicit transaction. */
    e2e_ok(c, "BEGIN");
    e2e_ok(c, "UPDATE ledger SET amount = 0 WHERE id = 1");
    /* DDL inside the block commits with it */
    e2e_ok(c, "CREATE TABLE audit (id INT PRIMARY KEY, note TEXT)");
    e2e_ok(c, "INSERT INTO audit VALUES (1, 'zeroed')");
    PGresult *r = e2e_exec_status(c, "COMMIT", PGRES_COMMAND_OK);
    PQclear(r);
    assert_int_equal(mtest_node_kill9(&n), 0); /* right after the ack */
    PQfinish(c);

    assert_int_equal(mtest_node_restart(&n, NULL), 0);
    c = mtest_connect(&n);
    assert_non_null(c);
    char want[64];
    long sum = 0;
    for (int i = 2; i <= E2E_KILL_ROWS; i++) sum += i * 3;
    snprintf(want, sizeof want, "%d|%ld\n", E2E_KILL_ROWS, sum);
    e2e_rows_equal(c, "SELECT count(*), sum(amount) FROM ledger", want);
    e2e_rows_equal(c, "SELECT amount FROM ledger WHERE id = 1", "0\n");
    e2e_rows_equal(c, "SELECT id, note FROM audit", "1|zeroed\n");
    PQfinish(c);
    assert_int_equal(mtest_node_stop(&n), 0);
    mtest_node_destroy(&n);
}

static void test_one_process_per_store(void **state) {
    (void)state;
    mtest_node n;
    assert_int_equal(mtest_node_start(&n, NULL, NULL), 0);
    const char *argv[] = {mtest_meridian_bin(), "start", "--store", n.store, "--sql-addr",
                          "127.0.0.1:0", "--insecure", NULL};
    char *out = NULL, *err = NULL;
    int st = mtest_run(argv, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    if (st != 1) print_error("exit %d\nstdout:\n%s\nstderr:\n%s\n", st, out, err);
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, "in use by another meridian process"));
    base_free(out);
    base_free(err);
    assert_true(mtest_node_alive(&n));
    PGconn *c = mtest_connect(&n);
    assert_non_null(c);
    e2e_rows_equal(c, "SELECT 1", "1\n");
    PQfinish(c);
    mtest_node_destroy(&n);
}

static void test_command_line(void **state) {
    (void)state;
    const char *bin = mtest_meridian_bin();
    struct {
        const char *argv[8];
        int want;
        const char *in_err; /* expected in stderr, or NULL */
    } cases[] = {
        {{bin, "start", "--max-offset", "abc", NULL}, 2, "--max-offset"},
        {{bin, "start", "--max-offset", "0s", NULL}, 2, "--max-offset"},
        {{bin, "start", "--sql-addr", "127.0.0.1:99999", NULL}, 2, "--sql-addr"},
        {{bin, "start", "--log-level", "loud", NULL}, 2, "--log-level"},
        {{bin, "start", "--no-such-flag", NULL}, 2, "unknown flag"},
        {{bin, "start", "--store", NULL}, 2, "needs a value"},
        {{bin, "start", "extra", NULL}, 2, "unexpected"},
        {{bin, "frobnicate", NULL}, 2, "unknown command"},
        {{bin, NULL}, 2, "usage"},
        {{bin, "version", NULL}, 0, NULL},
        {{bin, "help", NULL}, 0, NULL},
        {{bin, "start", "--help", NULL}, 0, NULL},
        {{bin, "sql", "--help", NULL}, 0, NULL},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(cases); i++) {
        char *out = NULL, *err = NULL;
        int st = mtest_run(cases[i].argv, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
        if (st != cases[i].want ||
            (cases[i].in_err != NULL && strstr(err, cases[i].in_err) == NULL)) {
            print_error("case %zu (%s %s): exit %d want %d\nstderr: %s\n", i,
                        cases[i].argv[1] ? cases[i].argv[1] : "",
                        cases[i].argv[1] && cases[i].argv[2] ? cases[i].argv[2] : "", st,
                        cases[i].want, err);
            base_free(out);
            base_free(err);
            fail();
        }
        base_free(out);
        base_free(err);
    }
    /* The shell reports a node that is not there. */
    const char *argv[] = {bin, "sql", "--url",
                          "postgresql://root@127.0.0.1:1/defaultdb?sslmode=disable", "-e",
                          "SELECT 1", NULL};
    char *out = NULL, *err = NULL;
    int st = mtest_run(argv, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, "cannot connect"));
    base_free(out);
    base_free(err);
}

static void test_flags_accepted(void **state) {
    (void)state;
    /* --max-offset with units, --listen-addr, the test-only --clock-offset. */
    const char *extra[] = {"--max-offset", "500ms", "--clock-offset", "-100ms", NULL};
    mtest_node n;
    assert_int_equal(mtest_node_start(&n, NULL, extra), 0);
    PGconn *c = mtest_connect(&n);
    assert_non_null(c);
    e2e_ok(c, "CREATE TABLE t (k INT PRIMARY KEY)");
    e2e_ok(c, "INSERT INTO t VALUES (1)");
    e2e_rows_equal(c, "SELECT k FROM t", "1\n");
    PQfinish(c);
    /* SIGINT stops it cleanly as well. */
    kill(n.pid, SIGINT);
    assert_int_equal(mtest_node_stop(&n), 0);
    mtest_node_destroy(&n);
}

/* --background: the command returns once the node serves; the node runs on
** detached (not our child) until SIGTERM. */
static pid_t background_pid;
static char background_dir[64];

static int background_teardown(void **state) {
    (void)state;
    if (background_pid > 0) kill(background_pid, SIGKILL);
    background_pid = 0;
    if (background_dir[0]) mtest_remove_tree(background_dir);
    background_dir[0] = 0;
    return 0;
}

static char *read_small_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL) return NULL;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
    return base_strdup(buf);
}

static void test_background_start(void **state) {
    (void)state;
    snprintf(background_dir, sizeof background_dir, "/tmp/meridian-bg-XXXXXX");
    assert_non_null(mkdtemp(background_dir));
    char store[128], path[192];
    snprintf(store, sizeof store, "%s/store", background_dir);
    const char *argv[] = {mtest_meridian_bin(), "start", "--background", "--store", store,
                          "--sql-addr", "127.0.0.1:0", "--insecure", NULL};
    char *out = NULL, *err = NULL;
    int st = mtest_run(argv, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    if (st != 0) print_error("exit %d\nstdout:\n%s\nstderr:\n%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "sql:"));
    base_free(out);
    base_free(err);
    snprintf(path, sizeof path, "%s/meridian.pid", store);
    char *pid_text = read_small_file(path);
    assert_non_null(pid_text);
    background_pid = (pid_t)atoi(pid_text);
    base_free(pid_text);
    assert_true(background_pid > 0);
    snprintf(path, sizeof path, "%s/sql-url", store);
    char *url = read_small_file(path);
    assert_non_null(url);
    PGconn *c = PQconnectdb(url);
    base_free(url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    e2e_rows_equal(c, "SELECT 7", "7\n");
    PQfinish(c);

    /* Stop it; it is not our child, so watch it through a pidfd (bounded). */
    int pidfd = (int)syscall(SYS_pidfd_open, background_pid, 0);
    assert_true(pidfd >= 0);
    assert_int_equal(kill(background_pid, SIGTERM), 0);
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, MTEST_STOP_TIMEOUT_MS), 1);
    close(pidfd);
    background_pid = 0;
    snprintf(path, sizeof path, "%s/meridian.pid", store);
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0); /* removed by the clean shutdown */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_restart_keeps_data),
        cmocka_unit_test(test_kill9_after_acknowledged_commit),
        cmocka_unit_test(test_one_process_per_store),
        cmocka_unit_test(test_flags_accepted),
        cmocka_unit_test_teardown(test_background_start, background_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
