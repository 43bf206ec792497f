/*
** End-to-end: TLS on the SQL port of a real `meridian start --certs-dir`
** process (issue 9). Certificates come from the `meridian cert` commands in
** a temp dir: a cluster CA, a node certificate for 127.0.0.1 only, a client
** certificate for root, and a second, foreign CA.
**
** Checked: secure by default (no --certs-dir and no --insecure: exit 2);
** libpq verify-full works (PQsslInUse; root logs in with its client
** certificate, from the banner's URL too: authentication is
** test_e2e_auth.c's); sslmode=disable is refused; a foreign CA root and a wrong
** host name fail verification; a client certificate of a foreign CA and an
** expired one are refused at the handshake (logged, the node serves on);
** psql verify-full (and sslmode=require) runs a query; `meridian sql
** --certs-dir` / default prefer / --insecure; SIGHUP with a new node
** certificate: new connections get it, a live one keeps working, a failed
** reload keeps the old certificates.
**
** All waits are bounded; the node dies with the test (mtest_node).
*/
#include "tests/e2e/e2e_util.h"
#include "security/security.h"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define E2E_CMD_TIMEOUT_MS (60 * 1000)
#define E2E_RELOAD_TIMEOUT_MS (30 * 1000)
#define E2E_RELOAD_POLL_MS 20

static char g_dir[256];        /* mkdtemp */
static char g_certs[320];      /* g_dir/certs: the cluster's */
static char g_ca_key[320];     /* g_dir/ca.key */
static char g_other[320];      /* g_dir/other: a foreign CA */
static char g_other_key[320];
static mtest_node g_node;
static bool g_started;

static void run_ok(const char *const *argv) {
    char *out = NULL, *err = NULL;
    int st = mtest_run(argv, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    if (st != 0) print_error("%s %s: exit %d\n%s%s\n", argv[0], argv[1], st, out, err);
    base_free(out);
    base_free(err);
    assert_int_equal(st, 0);
}

static int group_setup(void **state) {
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/meridian-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(g_dir) == NULL) return -1;
    snprintf(g_certs, sizeof g_certs, "%s/certs", g_dir);
    snprintf(g_ca_key, sizeof g_ca_key, "%s/ca.key", g_dir);
    snprintf(g_other, sizeof g_other, "%s/other", g_dir);
    snprintf(g_other_key, sizeof g_other_key, "%s/other.key", g_dir);
    const char *bin = mtest_meridian_bin();
    const char *ca[] = {bin, "cert", "create-ca", "--certs-dir", g_certs, "--ca-key", g_ca_key,
                        NULL};
    const char *node[] = {bin, "cert", "create-node", "127.0.0.1", "--certs-dir", g_certs,
                          "--ca-key", g_ca_key, NULL};
    const char *client[] = {bin, "cert", "create-client", "root", "--certs-dir", g_certs,
                            "--ca-key", g_ca_key, NULL};
    const char *other[] = {bin, "cert", "create-ca", "--certs-dir", g_other, "--ca-key",
                           g_other_key, NULL};
    const char *const *cmds[] = {ca, node, client, other};
    for (size_t i = 0; i < BASE_ARRAY_LEN(cmds); i++) {
        char *out = NULL, *err = NULL;
        int st = mtest_run(cmds[i], NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
        if (st != 0) fprintf(stderr, "%s: exit %d: %s%s\n", cmds[i][2], st, out, err);
        base_free(out);
        base_free(err);
        if (st != 0) return -1;
    }
    const char *extra[] = {"--certs-dir", g_certs, "--log-level", "info", NULL};
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

/* A connection to the node with extra conninfo; NULL on failure, with the
** libpq message in err. root logs in with its client certificate (issue 9:
** authentication; test_e2e_auth.c). */
static PGconn *connect_with(const char *conninfo_extra, char *err, size_t err_size) {
    char ci[4096];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=root dbname=defaultdb "
             "connect_timeout=10 sslcert=%s/client.root.crt sslkey=%s/client.root.key %s",
             g_node.port, g_certs, g_certs, conninfo_extra);
    PGconn *c = PQconnectdb(ci);
    if (c != NULL && PQstatus(c) == CONNECTION_OK) return c;
    snprintf(err, err_size, "%s", c ? PQerrorMessage(c) : "out of memory");
    PQfinish(c);
    return NULL;
}

static PGconn *connect_verified(const char *more) {
    char extra[2048], err[1024];
    snprintf(extra, sizeof extra, "sslmode=verify-full sslrootcert=%s/ca.crt %s", g_certs,
             more ? more : "");
    PGconn *c = connect_with(extra, err, sizeof err);
    if (c == NULL) print_error("connect (%s): %s\n", extra, err);
    return c;
}

/* The serial number of the certificate the server presented, as hex text. */
static void peer_serial(PGconn *c, char *out, size_t size) {
    SSL *ssl = PQsslStruct(c, "OpenSSL");
    assert_non_null(ssl);
    X509 *x = SSL_get_peer_certificate(ssl);
    assert_non_null(x);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), NULL);
    char *hex = BN_bn2hex(bn);
    snprintf(out, size, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(x);
}

/* The serial of certs/node.crt on disk. */
static void file_serial(char *out, size_t size) {
    char path[400];
    snprintf(path, sizeof path, "%s/node.crt", g_certs);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), NULL);
    char *hex = BN_bn2hex(bn);
    snprintf(out, size, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(x);
}

static bool log_contains(const char *needle) {
    char path[MTEST_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/logs/meridian.log", g_node.store);
    FILE *f = fopen(path, "r");
    if (f == NULL) return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL) found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void test_secure_by_default(void **state) {
    (void)state;
    const char *bin = mtest_meridian_bin();
    char store[400];
    snprintf(store, sizeof store, "%s/never", g_dir);
    const char *none[] = {bin, "start", "--store", store, "--sql-addr", "127.0.0.1:0", NULL};
    const char *both[] = {bin, "start", "--store", store, "--sql-addr", "127.0.0.1:0",
                          "--insecure", "--certs-dir", g_certs, NULL};
    const char *const *cases[] = {none, both};
    for (size_t i = 0; i < BASE_ARRAY_LEN(cases); i++) {
        char *out = NULL, *err = NULL;
        int st = mtest_run(cases[i], NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
        if (st != 2 || strstr(err, "--certs-dir") == NULL || strstr(err, "--insecure") == NULL)
            print_error("case %zu: exit %d\nstderr: %s\n", i, st, err);
        assert_int_equal(st, 2);
        assert_non_null(strstr(err, "--certs-dir"));
        assert_non_null(strstr(err, "--insecure"));
        base_free(out);
        base_free(err);
    }
    /* A certs dir without a node certificate: a runtime failure (exit 1). */
    char empty[400];
    snprintf(empty, sizeof empty, "%s/empty", g_dir);
    assert_int_equal(mkdir(empty, 0700), 0);
    const char *missing[] = {bin, "start", "--store", store, "--sql-addr", "127.0.0.1:0",
                             "--certs-dir", empty, NULL};
    char *out = NULL, *err = NULL;
    int st = mtest_run(missing, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    if (st != 1) print_error("exit %d\nstderr: %s\n", st, err);
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, "TLS"));
    base_free(out);
    base_free(err);
}

static void test_verify_full_works(void **state) {
    (void)state;
    assert_non_null(strstr(g_node.url, "sslmode=verify-full"));
    PGconn *c = mtest_connect(&g_node); /* the URL of the banner */
    assert_non_null(c);
    assert_true(PQsslInUse(c));
    e2e_rows_equal(c, "SELECT 1 + 1", "2\n");
    e2e_ok(c, "CREATE TABLE tls_t (id INT PRIMARY KEY, v TEXT)");
    e2e_ok(c, "INSERT INTO tls_t VALUES (1, 'over tls')");
    PQfinish(c);

    char more[1024];
    snprintf(more, sizeof more, "sslcert=%s/client.root.crt sslkey=%s/client.root.key", g_certs,
             g_certs);
    c = connect_verified(more);
    assert_non_null(c);
    assert_true(PQsslInUse(c));
    const char *proto = PQsslAttribute(c, "protocol");
    assert_non_null(proto);
    assert_string_equal(proto, "TLSv1.3");
    e2e_rows_equal(c, "SELECT v FROM tls_t", "over tls\n");
    PQfinish(c);
    assert_true(log_contains("client certificate CN=root"));
}

static void test_plaintext_refused(void **state) {
    (void)state;
    char err[1024];
    PGconn *c = connect_with("sslmode=disable", err, sizeof err);
    assert_null(c);
    if (strstr(err, "connection requires SSL/TLS") == NULL) print_error("got: %s\n", err);
    assert_non_null(strstr(err, "connection requires SSL/TLS"));
    /* The node is fine. */
    c = connect_verified(NULL);
    assert_non_null(c);
    e2e_rows_equal(c, "SELECT 3", "3\n");
    e2e_fails(c, "SELECT * FROM no_such_table", "42P01"); /* errors travel over TLS too */
    PQfinish(c);
}

static void test_wrong_ca_fails(void **state) {
    (void)state;
    char extra[1024], err[1024];
    snprintf(extra, sizeof extra, "sslmode=verify-full sslrootcert=%s/ca.crt", g_other);
    PGconn *c = connect_with(extra, err, sizeof err);
    assert_null(c);
    if (strstr(err, "certificate verify failed") == NULL) print_error("got: %s\n", err);
    assert_non_null(strstr(err, "certificate verify failed"));
    /* verify-ca with the foreign root fails too. */
    snprintf(extra, sizeof extra, "sslmode=verify-ca sslrootcert=%s/ca.crt", g_other);
    c = connect_with(extra, err, sizeof err);
    assert_null(c);
}

static void test_wrong_host_fails(void **state) {
    (void)state;
    /* The node certificate names 127.0.0.1 only: "localhost" must fail under
    ** verify-full (hostaddr pins the address, the name is what is checked)
    ** and pass under verify-ca (chain only). */
    char extra[1024], err[1024];
    snprintf(extra, sizeof extra, "sslmode=verify-full sslrootcert=%s/ca.crt", g_certs);
    char ci[4096];
    snprintf(ci, sizeof ci, "host=localhost hostaddr=127.0.0.1 port=%d user=root "
             "dbname=defaultdb connect_timeout=10 %s", g_node.port, extra);
    PGconn *c = PQconnectdb(ci);
    assert_non_null(c);
    if (PQstatus(c) == CONNECTION_OK) print_error("connected with a wrong host name\n");
    assert_int_not_equal(PQstatus(c), CONNECTION_OK);
    assert_non_null(strstr(PQerrorMessage(c), "does not match host name"));
    PQfinish(c);
    snprintf(ci, sizeof ci, "host=localhost hostaddr=127.0.0.1 port=%d user=root "
             "dbname=defaultdb connect_timeout=10 sslmode=verify-ca sslrootcert=%s/ca.crt "
             "sslcert=%s/client.root.crt sslkey=%s/client.root.key",
             g_node.port, g_certs, g_certs, g_certs);
    c = PQconnectdb(ci);
    assert_non_null(c);
    if (PQstatus(c) != CONNECTION_OK) print_error("verify-ca: %s\n", PQerrorMessage(c));
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQfinish(c);
    (void)err;
}

/* Polls the node's log for needle (bounded: the WARN line is written by
** the loop thread right after the handshake fails). */
static bool log_shows(const char *needle) {
    for (int i = 0; i < E2E_RELOAD_TIMEOUT_MS / E2E_RELOAD_POLL_MS; i++) {
        if (log_contains(needle)) return true;
        poll(NULL, 0, E2E_RELOAD_POLL_MS);
    }
    return false;
}

/* A client certificate the node must refuse at the handshake: one of a
** foreign CA and an expired one of the cluster's CA (both for root, so only
** the certificate is wrong). The node logs why and keeps serving. */
static void test_bad_client_certificate_refused(void **state) {
    (void)state;
    const char *bin = mtest_meridian_bin();
    const char *foreign[] = {bin, "cert", "create-client", "root", "--certs-dir", g_other,
                             "--ca-key", g_other_key, NULL};
    run_ok(foreign);
    char expired[400], from[512], to[512], err[SEC_ERR_MSG_SIZE];
    snprintf(expired, sizeof expired, "%s/expired", g_dir);
    assert_int_equal(mkdir(expired, 0700), 0);
    snprintf(from, sizeof from, "%s/ca.crt", g_certs);
    snprintf(to, sizeof to, "%s/ca.crt", expired);
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
    /* valid for one day, ten days ago */
    sec_cert_options old = {.not_before_unix_s = (int64_t)time(NULL) - 10 * 24 * 3600,
                            .lifetime_s = 24 * 3600};
    if (sec_cert_create_client(expired, g_ca_key, "root", &old, err, sizeof err) != 0)
        print_error("expired client certificate: %s\n", err);
    const char *dirs[] = {g_other, expired};
    const char *why[] = {"certificate verification failed: unable to get local issuer",
                         "certificate verification failed: certificate has expired"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(dirs); i++) {
        char ci[4096];
        snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=root dbname=defaultdb "
                 "connect_timeout=10 sslmode=verify-full sslrootcert=%s/ca.crt "
                 "sslcert=%s/client.root.crt sslkey=%s/client.root.key",
                 g_node.port, g_certs, dirs[i], dirs[i]);
        PGconn *c = PQconnectdb(ci);
        assert_non_null(c);
        if (PQstatus(c) == CONNECTION_OK) print_error("connected with %s\n", dirs[i]);
        assert_int_not_equal(PQstatus(c), CONNECTION_OK);
        PQfinish(c);
        if (!log_shows(why[i])) print_error("no \"%s\" in the node's log\n", why[i]);
        assert_true(log_shows(why[i]));
    }
    /* The node is fine. */
    PGconn *c = connect_verified(NULL);
    assert_non_null(c);
    e2e_rows_equal(c, "SELECT 5", "5\n");
    PQfinish(c);
}

static void test_psql_verify_full(void **state) {
    (void)state;
    const char *argv[] = {"psql", g_node.url, "-X", "-A", "-t", "-c", "SELECT 40 + 2", NULL};
    char *out = NULL, *err = NULL;
    int st = mtest_run(argv, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    if (st != 0) print_error("psql exit %d: %s%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_string_equal(out, "42\n");
    base_free(out);
    base_free(err);
    /* sslmode=require (encrypted, nothing verified) works too */
    char ci[2048];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=root dbname=defaultdb sslmode=require "
             "sslcert=%s/client.root.crt sslkey=%s/client.root.key", g_node.port, g_certs,
             g_certs);
    const char *req[] = {"psql", ci, "-X", "-A", "-t", "-c",
                         "SELECT 7", NULL};
    out = NULL;
    err = NULL;
    st = mtest_run(req, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    if (st != 0) print_error("psql sslmode=require exit %d: %s%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_string_equal(out, "7\n"); /* the node takes TLS only: require cannot fall back */
    base_free(out);
    base_free(err);
}

static void test_shell_flags(void **state) {
    (void)state;
    const char *bin = mtest_meridian_bin();
    char hostport[64], plain_url[1024];
    snprintf(hostport, sizeof hostport, "127.0.0.1:%d", g_node.port);
    /* root's certificate: it logs in with it (issue 9) */
    snprintf(plain_url, sizeof plain_url,
             "postgresql://root@127.0.0.1:%d/defaultdb?sslcert=%s/client.root.crt&"
             "sslkey=%s/client.root.key",
             g_node.port, g_certs, g_certs);
    const char *certs[] = {bin, "sql", "--certs-dir", g_certs, "--host", hostport, "-e",
                           "SELECT 7", NULL};
    const char *prefer[] = {bin, "sql", "--url", plain_url, "-e", "SELECT 8", NULL};
    const char *insecure[] = {bin, "sql", "--insecure", "--url", plain_url, "-e", "SELECT 9",
                              NULL};
    const char *both[] = {bin, "sql", "--insecure", "--certs-dir", g_certs, "-e", "SELECT 1",
                          NULL};
    const char *other_ca[] = {bin, "sql", "--certs-dir", g_other, "--url", plain_url, "-e",
                              "SELECT 1", NULL};
    struct {
        const char *const *argv;
        int want;
        const char *in_out, *in_err;
    } cases[] = {
        {certs, 0, "7", NULL},
        {prefer, 0, "8", NULL},
        {insecure, 1, NULL, "connection requires SSL/TLS"},
        {both, 2, NULL, "exclude"},
        {other_ca, 1, NULL, "certificate verify failed"},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(cases); i++) {
        char *out = NULL, *err = NULL;
        int st = mtest_run(cases[i].argv, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
        bool ok = st == cases[i].want &&
                  (cases[i].in_out == NULL || (out && strstr(out, cases[i].in_out))) &&
                  (cases[i].in_err == NULL || (err && strstr(err, cases[i].in_err)));
        if (!ok) print_error("case %zu: exit %d\nstdout: %s\nstderr: %s\n", i, st, out, err);
        assert_true(ok);
        base_free(out);
        base_free(err);
    }
    assert_true(log_contains("client certificate CN=root")); /* --certs-dir sent client.root */
}

/* Connect until the presented serial equals want (the reload is handled by
** the node's main thread after the signal arrives). Bounded. */
static bool wait_serial(const char *want) {
    int64_t deadline = base_monotonic_ns() + (int64_t)E2E_RELOAD_TIMEOUT_MS * 1000000;
    char got[128] = "";
    while (base_monotonic_ns() < deadline) {
        PGconn *c = connect_verified(NULL);
        if (c == NULL) return false;
        peer_serial(c, got, sizeof got);
        PQfinish(c);
        if (strcmp(got, want) == 0) return true;
        poll(NULL, 0, E2E_RELOAD_POLL_MS);
    }
    print_error("serial still %s, want %s\n", got, want);
    return false;
}

static void test_sighup_reload(void **state) {
    (void)state;
    char before[128], now[128], after[128];
    file_serial(before, sizeof before);
    PGconn *live = connect_verified(NULL);
    assert_non_null(live);
    peer_serial(live, now, sizeof now);
    assert_string_equal(now, before);

    /* Rotate: a new node certificate (new key, new serial) in place. */
    const char *bin = mtest_meridian_bin();
    const char *rotate[] = {bin, "cert", "create-node", "127.0.0.1", "--certs-dir", g_certs,
                            "--ca-key", g_ca_key, "--overwrite", NULL};
    run_ok(rotate);
    file_serial(after, sizeof after);
    assert_string_not_equal(after, before);
    assert_int_equal(kill(g_node.pid, SIGHUP), 0);
    assert_true(wait_serial(after));
    assert_true(log_contains("TLS certificates reloaded"));
    /* The live connection keeps its session (and its certificate). */
    e2e_rows_equal(live, "SELECT 5", "5\n");
    peer_serial(live, now, sizeof now);
    assert_string_equal(now, before);
    PQfinish(live);

    /* A broken directory: the reload fails, is logged, and changes nothing. */
    char key[400], moved[400];
    snprintf(key, sizeof key, "%s/node.key", g_certs);
    snprintf(moved, sizeof moved, "%s/node.key.away", g_dir);
    assert_int_equal(rename(key, moved), 0);
    assert_int_equal(kill(g_node.pid, SIGHUP), 0);
    int64_t deadline = base_monotonic_ns() + (int64_t)E2E_RELOAD_TIMEOUT_MS * 1000000;
    while (!log_contains("TLS reload from") && base_monotonic_ns() < deadline)
        poll(NULL, 0, E2E_RELOAD_POLL_MS);
    assert_true(log_contains("TLS reload from"));
    assert_int_equal(rename(moved, key), 0);
    assert_true(mtest_node_alive(&g_node));
    assert_true(wait_serial(after));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secure_by_default),
        cmocka_unit_test(test_verify_full_works),
        cmocka_unit_test(test_plaintext_refused),
        cmocka_unit_test(test_wrong_ca_fails),
        cmocka_unit_test(test_wrong_host_fails),
        cmocka_unit_test(test_bad_client_certificate_refused),
        cmocka_unit_test(test_psql_verify_full),
        cmocka_unit_test(test_shell_flags),
        cmocka_unit_test(test_sighup_reload),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
