/*
** End-to-end: authentication of a real `meridian start --certs-dir` node
** (issue 9). Certificates from `meridian cert`: a cluster CA, a node
** certificate for 127.0.0.1, a client certificate for root.
**
** Checked: root logs in with its certificate (the banner's URL names it)
** and creates users and roles; app logs in with its password through
** libpq (PGPASSWORD, SCRAM-SHA-256 over TLS), psql (the password in the
** URL) and `meridian sql --password`; a wrong password and an unknown user
** fail alike (28P01), root without its certificate fails, a NOLOGIN role
** cannot log in even with its password; psql's \du lists the roles and
** their memberships; ALTER USER changes the password at once; repeated
** failures from one address are refused for a while, a certificate login
** is not; privileges: app with SELECT only (through its role) reads and
** is refused every write (42501) through libpq and psql; the node's log
** (at debug level) holds neither a password nor a verifier. Host-based
** rules in the cluster setting (a rule that rejects app, root's certificate
** past a rule that rejects everyone, a bad rule refused with its line, a
** password-only rule, RESET), a role's CONNECTION LIMIT (53300 past it,
** pg_roles.rolconnlimit) and WITH GRANT OPTION (app passes SELECT on,
** information_schema.table_privileges shows it with app as its grantor;
** REVOKE GRANT OPTION FOR fails 2BP01 while viewer's grant depends on it,
** and with CASCADE takes viewer's too).
**
** All waits are bounded; the node dies with the test (mtest_node).
*/
#include "tests/e2e/e2e_util.h"

#include <stdlib.h>
#include <unistd.h>

#define E2E_CMD_TIMEOUT_MS (60 * 1000)
/* Distinctive, so that finding them in the log means a leak. */
#define APP_PASSWORD "Tr0ub4dor-app-91"
#define APP_PASSWORD_2 "C0rrect-h0rse-92"
#define READER_PASSWORD "R3ader-only-93"

static char g_dir[256];   /* mkdtemp */
static char g_certs[320]; /* g_dir/certs */
static char g_ca_key[320];
static mtest_node g_node;
static bool g_started;

static int group_setup(void **state) {
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/meridian-auth-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(g_dir) == NULL) return -1;
    snprintf(g_certs, sizeof g_certs, "%s/certs", g_dir);
    snprintf(g_ca_key, sizeof g_ca_key, "%s/ca.key", g_dir);
    const char *bin = mtest_meridian_bin();
    const char *ca[] = {bin, "cert", "create-ca", "--certs-dir", g_certs, "--ca-key", g_ca_key,
                        NULL};
    const char *node[] = {bin, "cert", "create-node", "127.0.0.1", "--certs-dir", g_certs,
                          "--ca-key", g_ca_key, NULL};
    const char *client[] = {bin, "cert", "create-client", "root", "--certs-dir", g_certs,
                            "--ca-key", g_ca_key, NULL};
    const char *const *cmds[] = {ca, node, client};
    for (size_t i = 0; i < BASE_ARRAY_LEN(cmds); i++) {
        char *out = NULL, *err = NULL;
        int st = mtest_run(cmds[i], NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
        if (st != 0) fprintf(stderr, "%s: exit %d: %s%s\n", cmds[i][2], st, out, err);
        base_free(out);
        base_free(err);
        if (st != 0) return -1;
    }
    const char *extra[] = {"--certs-dir", g_certs, "--log-level", "debug", NULL};
    if (mtest_node_start(&g_node, NULL, extra) != 0) return -1;
    g_started = true;
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    int st = 0;
    if (g_started) {
        st = mtest_node_stop(&g_node);
        mtest_node_destroy(&g_node);
        if (st != 0) fprintf(stderr, "node exit status %d (sanitizer report?)\n", st);
    }
    if (g_dir[0]) mtest_remove_tree(g_dir);
    return st == 0 ? 0 : -1;
}

/* user over verify-full TLS with extra conninfo; NULL on failure with the
** libpq message in err. */
static PGconn *connect_as(const char *user, const char *extra, char *err, size_t err_size) {
    char ci[4096];
    snprintf(ci, sizeof ci,
             "host=127.0.0.1 port=%d user=%s dbname=defaultdb connect_timeout=10 "
             "sslmode=verify-full sslrootcert=%s/ca.crt %s",
             g_node.port, user, g_certs, extra ? extra : "");
    PGconn *c = PQconnectdb(ci);
    if (c != NULL && PQstatus(c) == CONNECTION_OK) return c;
    snprintf(err, err_size, "%s", c ? PQerrorMessage(c) : "out of memory");
    PQfinish(c);
    return NULL;
}

static void expect_refused(const char *user, const char *extra, const char *needle) {
    char err[1024];
    PGconn *c = connect_as(user, extra, err, sizeof err);
    if (c != NULL) print_error("%s logged in (%s)\n", user, extra ? extra : "");
    assert_null(c);
    if (strstr(err, needle) == NULL) print_error("want \"%s\", got: %s\n", needle, err);
    assert_non_null(strstr(err, needle));
}

static char *read_log(void) {
    char path[MTEST_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/logs/meridian.log", g_node.store);
    FILE *f = fopen(path, "r");
    if (f == NULL) return NULL;
    base_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) base_buf_append(&b, chunk, n);
    fclose(f);
    base_buf_append_byte(&b, 0);
    return (char *)b.data; /* owner: caller, base_free */
}

static void test_root_creates_users(void **state) {
    (void)state;
    assert_non_null(strstr(g_node.url, "sslcert="));
    PGconn *c = mtest_connect(&g_node); /* the banner's URL: root's certificate */
    assert_non_null(c);
    e2e_rows_equal(c, "SELECT current_user", "root\n");
    e2e_ok(c, "CREATE USER app WITH PASSWORD '" APP_PASSWORD "'");
    e2e_ok(c, "CREATE ROLE reader WITH PASSWORD '" READER_PASSWORD "'");
    e2e_ok(c, "GRANT reader TO app");
    e2e_fails(c, "CREATE USER app", "42710");
    /* the extended protocol reaches the same statements */
    PGresult *r = PQexecParams(c, "CREATE ROLE ext_role", 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) print_error("%s", PQresultErrorMessage(r));
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "CREATE ROLE");
    PQclear(r);
    e2e_fails(c, "DROP USER nosuch", "42704");
    PQfinish(c);
    char *log = read_log();
    assert_non_null(log);
    assert_non_null(strstr(log, "user \"root\" authenticated by client certificate"));
    base_free(log);
}

static void test_password_login(void **state) {
    (void)state;
    char err[1024];
    setenv("PGPASSWORD", APP_PASSWORD, 1);
    PGconn *c = connect_as("app", NULL, err, sizeof err);
    unsetenv("PGPASSWORD");
    if (c == NULL) print_error("app: %s\n", err);
    assert_non_null(c);
    assert_true(PQsslInUse(c));
    e2e_rows_equal(c, "SELECT current_user", "app\n");
    assert_string_equal(PQparameterStatus(c, "is_superuser"), "off");
    e2e_fails(c, "CREATE USER x", "42501"); /* not an admin */
    PQfinish(c);
    /* wrong password and unknown user: one answer */
    expect_refused("app", "password=wrong", "password authentication failed for user \"app\"");
    expect_refused("ghost", "password=" APP_PASSWORD,
                   "password authentication failed for user \"ghost\"");
    /* root: by certificate only (it has no password) */
    expect_refused("root", NULL, "password");
    expect_refused("root", "password=x", "password authentication failed for user \"root\"");
    /* NOLOGIN, with the right password */
    expect_refused("reader", "password=" READER_PASSWORD, "not permitted to log in");
}

static void test_psql_and_shell(void **state) {
    (void)state;
    char url[1024];
    snprintf(url, sizeof url,
             "postgresql://app:" APP_PASSWORD "@127.0.0.1:%d/defaultdb?sslmode=verify-full&"
             "sslrootcert=%s/ca.crt",
             g_node.port, g_certs);
    const char *psql[] = {"psql", url, "-X", "-A", "-t", "-c", "SELECT current_user", NULL};
    char *out = NULL, *err = NULL;
    int st = mtest_run(psql, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    if (st != 0) print_error("psql exit %d: %s%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_string_equal(out, "app\n");
    base_free(out);
    base_free(err);
    /* \du as root: the roles and their memberships */
    const char *du[] = {"psql", g_node.url, "-X", "-c", "\\du", NULL};
    st = mtest_run(du, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    if (st != 0 || out == NULL || strstr(out, "{reader}") == NULL)
        print_error("psql \\du exit %d: %s%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "app"));
    assert_non_null(strstr(out, "{reader}"));
    assert_non_null(strstr(out, "Cannot login"));
    base_free(out);
    base_free(err);
    /* meridian sql --password, from PGPASSWORD */
    char app_url[256];
    snprintf(app_url, sizeof app_url, "postgresql://app@127.0.0.1:%d/defaultdb", g_node.port);
    const char *bin = mtest_meridian_bin();
    const char *shell[] = {bin, "sql", "--certs-dir", g_certs, "--url", app_url, "--password",
                           "-e", "SELECT current_user", NULL};
    setenv("PGPASSWORD", APP_PASSWORD, 1);
    st = mtest_run(shell, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    if (st != 0 || out == NULL || strstr(out, "app") == NULL)
        print_error("meridian sql exit %d: %s%s\n", st, out, err);
    assert_int_equal(st, 0);
    base_free(out);
    base_free(err);
    setenv("PGPASSWORD", "wrong", 1);
    st = mtest_run(shell, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    unsetenv("PGPASSWORD");
    assert_int_equal(st, 1);
    assert_non_null(err);
    assert_non_null(strstr(err, "password authentication failed"));
    base_free(out);
    base_free(err);
}

static void test_alter_password(void **state) {
    (void)state;
    PGconn *root = mtest_connect(&g_node);
    assert_non_null(root);
    e2e_ok(root, "ALTER USER app WITH PASSWORD '" APP_PASSWORD_2 "'");
    PQfinish(root);
    char err[1024];
    PGconn *c = connect_as("app", "password=" APP_PASSWORD_2, err, sizeof err);
    if (c == NULL) print_error("app: %s\n", err);
    assert_non_null(c);
    /* a user changes its own password */
    e2e_ok(c, "ALTER USER app WITH PASSWORD '" APP_PASSWORD "'");
    PQfinish(c);
    c = connect_as("app", "password=" APP_PASSWORD, err, sizeof err);
    assert_non_null(c);
    PQfinish(c);
}

/* Privileges: app holds SELECT on accounts only through its role reader;
** through libpq and psql its reads work, every write fails with 42501 and
** changes nothing. */
static void test_select_only(void **state) {
    (void)state;
    PGconn *root = mtest_connect(&g_node);
    assert_non_null(root);
    e2e_ok(root, "CREATE TABLE accounts (id INT PRIMARY KEY, balance INT)");
    e2e_ok(root, "INSERT INTO accounts VALUES (1, 100), (2, 200)");
    char err[1024];
    PGconn *c = connect_as("app", "password=" APP_PASSWORD, err, sizeof err);
    if (c == NULL) print_error("app: %s\n", err);
    assert_non_null(c);
    e2e_fails(c, "SELECT count(*) FROM accounts", "42501");
    e2e_ok(root, "GRANT SELECT ON accounts TO reader"); /* app is in reader */
    e2e_rows_equal(c, "SELECT balance FROM accounts ORDER BY id", "100\n200\n");
    e2e_fails(c, "INSERT INTO accounts VALUES (3, 300)", "42501");
    e2e_fails(c, "UPDATE accounts SET balance = 0", "42501");
    e2e_fails(c, "DELETE FROM accounts", "42501");
    e2e_fails(c, "DROP TABLE accounts", "42501");
    e2e_fails(c, "CREATE TABLE mine (a INT)", "42501");
    PQfinish(c);
    char url[1024];
    snprintf(url, sizeof url,
             "postgresql://app:" APP_PASSWORD "@127.0.0.1:%d/defaultdb?sslmode=verify-full&"
             "sslrootcert=%s/ca.crt",
             g_node.port, g_certs);
    const char *sel[] = {"psql", url, "-X", "-A", "-t", "-c", "SELECT count(*) FROM accounts",
                         NULL};
    char *out = NULL, *perr = NULL;
    int st = mtest_run(sel, NULL, E2E_CMD_TIMEOUT_MS, &out, &perr);
    if (st != 0) print_error("psql exit %d: %s%s\n", st, out, perr);
    assert_int_equal(st, 0);
    assert_string_equal(out, "2\n");
    base_free(out);
    base_free(perr);
    const char *ins[] = {"psql", url, "-X", "-c", "INSERT INTO accounts VALUES (9, 9)", NULL};
    st = mtest_run(ins, NULL, E2E_CMD_TIMEOUT_MS, &out, &perr);
    if (st == 0 || perr == NULL || strstr(perr, "permission denied for table accounts") == NULL)
        print_error("psql INSERT exit %d: %s%s\n", st, out, perr);
    assert_int_not_equal(st, 0);
    assert_non_null(strstr(perr, "permission denied for table accounts"));
    base_free(out);
    base_free(perr);
    e2e_rows_equal(root, "SELECT count(*), sum(balance) FROM accounts", "2|300\n");
    PQfinish(root);
}

#define HBA_SET "SET CLUSTER SETTING server.host_based_authentication.configuration = "

static void test_hba_limits_grant_option(void **state) {
    (void)state;
    char err[1024];
    PGconn *root = mtest_connect(&g_node);
    assert_non_null(root);
    /* a rule rejecting app; root's certificate gets past one rejecting all */
    e2e_ok(root, HBA_SET "'host all app all reject\nhost all all all cert-password'");
    expect_refused("app", "password=" APP_PASSWORD, "rejected by rule 1");
    e2e_ok(root, HBA_SET "'host all all all reject'");
    PGconn *again = mtest_connect(&g_node);
    assert_non_null(again);
    e2e_rows_equal(again, "SELECT current_user", "root\n");
    PQfinish(again);
    expect_refused("app", "password=" APP_PASSWORD, "rejected by rule 1");
    /* a bad rule is refused whole, naming its line */
    PGresult *r = PQexec(root, HBA_SET "'host all all all cert\nhost all all nowhere cert'");
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "22023");
    assert_non_null(strstr(PQresultErrorMessage(r), "line 2 (host all all nowhere cert)"));
    PQclear(r);
    /* password only, from this address */
    e2e_ok(root, HBA_SET "'host all all 127.0.0.1/32 password'");
    PGconn *c = connect_as("app", "password=" APP_PASSWORD, err, sizeof err);
    if (c == NULL) print_error("app: %s\n", err);
    assert_non_null(c);
    PQfinish(c);
    e2e_ok(root, "RESET CLUSTER SETTING server.host_based_authentication.configuration");
    e2e_rows_equal(root, "SHOW CLUSTER SETTING server.host_based_authentication.configuration",
                   "\n");

    /* CONNECTION LIMIT (per node) */
    e2e_ok(root, "ALTER USER app CONNECTION LIMIT 1");
    e2e_rows_equal(root, "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'app'", "1\n");
    c = connect_as("app", "password=" APP_PASSWORD, err, sizeof err);
    if (c == NULL) print_error("app: %s\n", err);
    assert_non_null(c);
    expect_refused("app", "password=" APP_PASSWORD, "too many connections for role \"app\"");

    /* WITH GRANT OPTION: app passes SELECT on, and only that */
    e2e_ok(root, "CREATE USER viewer");
    e2e_fails(c, "GRANT SELECT ON accounts TO viewer", "42501");
    e2e_ok(root, "GRANT SELECT ON accounts TO app WITH GRANT OPTION");
    e2e_ok(c, "GRANT SELECT ON accounts TO viewer");
    e2e_fails(c, "GRANT INSERT ON accounts TO viewer", "42501");
    e2e_rows_equal(root,
                   "SELECT grantee, privilege_type, is_grantable FROM "
                   "information_schema.table_privileges WHERE table_name = 'accounts' "
                   "ORDER BY grantee",
                   "app|SELECT|YES\nreader|SELECT|NO\nviewer|SELECT|NO\n");
    e2e_rows_equal(root, "SHOW GRANTS ON accounts FOR app",
                   "defaultdb|public|accounts|app|SELECT|t\n");
    /* the grantor is recorded; viewer's SELECT depends on app's option */
    e2e_rows_equal(root,
                   "SELECT grantor, grantee FROM information_schema.table_privileges WHERE "
                   "table_name = 'accounts' AND grantee = 'viewer'",
                   "app|viewer\n");
    e2e_fails(root, "REVOKE GRANT OPTION FOR SELECT ON accounts FROM app", "2BP01");
    e2e_ok(root, "REVOKE GRANT OPTION FOR SELECT ON accounts FROM app CASCADE");
    e2e_rows_equal(root,
                   "SELECT grantee, privilege_type, is_grantable FROM "
                   "information_schema.table_privileges WHERE table_name = 'accounts' "
                   "ORDER BY grantee",
                   "app|SELECT|NO\nreader|SELECT|NO\n");
    e2e_fails(c, "GRANT SELECT ON accounts TO viewer", "42501");
    PQfinish(c);
    e2e_ok(root, "ALTER USER app CONNECTION LIMIT -1");
    PQfinish(root);
    char *log = read_log();
    assert_non_null(log);
    assert_non_null(strstr(log, "rejected by host-based rule 1"));
    base_free(log);
}

/* Failed logins from one address: refused for a while, except a login by
** certificate. Bounded: the limit must show within ATTEMPTS_MAX failures. */
#define ATTEMPTS_MAX 40
static void test_rate_limit(void **state) {
    (void)state;
    char err[1024];
    bool limited = false;
    for (int i = 0; i < ATTEMPTS_MAX && !limited; i++) {
        PGconn *c = connect_as("app", "password=guess", err, sizeof err);
        assert_null(c);
        limited = strstr(err, "too many failed authentication attempts") != NULL;
        if (!limited) assert_non_null(strstr(err, "password authentication failed"));
    }
    assert_true(limited);
    expect_refused("app", "password=" APP_PASSWORD, "too many failed authentication attempts");
    PGconn *root = mtest_connect(&g_node); /* root's certificate still gets in */
    assert_non_null(root);
    e2e_rows_equal(root, "SELECT 1", "1\n");
    PQfinish(root);
}

static void test_log_has_no_secrets(void **state) {
    (void)state;
    PGconn *root = mtest_connect(&g_node);
    assert_non_null(root);
    char *verifier = e2e_rows(root, "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'");
    PQfinish(root);
    assert_non_null(verifier);
    assert_non_null(strstr(verifier, "SCRAM-SHA-256$4096:"));
    char *nl = strchr(verifier, '\n');
    if (nl) *nl = '\0';
    char *stored_key = strchr(verifier, '$') ? strrchr(verifier, '$') + 1 : verifier;
    char *log = read_log();
    assert_non_null(log);
    assert_non_null(strstr(log, "authentication failed for user \"app\"")); /* it logs */
    const char *secrets[] = {APP_PASSWORD, APP_PASSWORD_2, READER_PASSWORD, "SCRAM-SHA-256$",
                             verifier, stored_key};
    for (size_t i = 0; i < BASE_ARRAY_LEN(secrets); i++) {
        if (strstr(log, secrets[i]) != NULL) print_error("the log holds \"%s\"\n", secrets[i]);
        assert_null(strstr(log, secrets[i]));
    }
    base_free(log);
    base_free(verifier);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_creates_users), cmocka_unit_test(test_password_login),
        cmocka_unit_test(test_psql_and_shell),     cmocka_unit_test(test_alter_password),
        cmocka_unit_test(test_select_only),        cmocka_unit_test(test_hba_limits_grant_option),
        cmocka_unit_test(test_rate_limit),         cmocka_unit_test(test_log_has_no_secrets),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
