/*
** End-to-end: the example apps of examples/ (examples/README.md) against one
** real `meridian start --insecure` process: the libpq program (prepared and
** one-shot parameterized statements in text and binary, a bank transfer
** retried on 40001, the SAVEPOINT cockroach_restart protocol) and the
** Node.js program on the `pg` package (parameterized queries, concurrent
** transfers retried on 40001). The Node.js run skips, saying why, when
** node or examples/node/node_modules is missing (scripts/setup.sh runs
** npm ci there when the registry is reachable).
*/
#include <sys/stat.h>

#include "tests/e2e/e2e_util.h"

#define EXAMPLE_TIMEOUT_MS (120 * 1000)

/* Run argv; assert exit 0 and a "bank: ok" line; print its output. */
static void run_example(const char *const *argv) {
    char *out = NULL, *err = NULL;
    int st = mtest_run(argv, NULL, EXAMPLE_TIMEOUT_MS, &out, &err);
    printf("%s: exit %d\n%s%s", argv[0], st, out ? out : "", err ? err : "");
    assert_int_equal(st, 0);
    assert_non_null(out);
    assert_non_null(strstr(out, "bank: ok: "));
    base_free(out);
    base_free(err);
}

static void test_example_c(void **state) {
    (void)state;
    const char *argv[] = {MERIDIAN_EXAMPLE_C_BIN, e2e_node.url, NULL};
    run_example(argv);
    /* what it left: the money adds up */
    PGconn *c = e2e_conn();
    e2e_rows_equal(c, "SELECT sum(balance), count(*) FROM bank_accounts", "10000|10\n");
    e2e_ok(c, "SELECT count(*) FROM bank_transfers");
    e2e_fails(c, "INSERT INTO bank_transfers (id, from_id, to_id, amount) VALUES (1, 1, 2, 3)",
              "23505"); /* its history rows are keyed */
    PQfinish(c);
}

static bool on_path(const char *name) {
    const char *argv[] = {"sh", "-c", "command -v \"$0\" >/dev/null", name, NULL};
    return mtest_run(argv, NULL, 10000, NULL, NULL) == 0;
}

static void test_example_node(void **state) {
    (void)state;
    const char *src = getenv("MERIDIAN_SOURCE_DIR");
    char script[MTEST_PATH_MAX], modules[MTEST_PATH_MAX];
    struct stat sb;
    assert_non_null(src);
    snprintf(script, sizeof script, "%s/examples/node/bank.js", src);
    snprintf(modules, sizeof modules, "%s/examples/node/node_modules/pg", src);
    if (!on_path("node")) {
        printf("SKIPPED: node is not installed (scripts/setup.sh installs nodejs and npm)\n");
        skip();
    }
    if (stat(modules, &sb) != 0) {
        printf("SKIPPED: %s is missing: run `npm ci` in examples/node (scripts/setup.sh does when "
               "the npm registry is reachable)\n",
               modules);
        skip();
    }
    const char *argv[] = {"node", script, e2e_node.url, NULL};
    run_example(argv);
    PGconn *c = e2e_conn();
    e2e_rows_equal(c, "SELECT sum(balance), count(*) FROM node_accounts", "6000|6\n");
    PQfinish(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_c),
        cmocka_unit_test(test_example_node),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup, e2e_group_teardown);
}
