/*
** Tests for `meridian cert ...` (cli/cli_cert.c) through the binary named by
** MERIDIAN_BIN (set by ctest): exit codes 0/1/2, files and key modes, and
** that the certificates it writes make a working TLS connection. Skipped
** when the binary has not been built.
*/
#define _GNU_SOURCE /* mkdtemp, nftw */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/base.h"
#include "security/security.h"

static char dir[256];
static const char *bin;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

/* Run `meridian cert ARGS` in dir; returns its exit code. */
static int run(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' cert %s >/dev/null 2>&1", dir, bin, args);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static unsigned mode_of(const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return (unsigned)(st.st_mode & 0777);
}

static void test_cert_commands(void **state) {
    (void)state;
    bin = getenv("MERIDIAN_BIN");
    if (bin == NULL || access(bin, X_OK) != 0) skip();
    snprintf(dir, sizeof dir, "/tmp/meridian-seccli-XXXXXX");
    assert_non_null(mkdtemp(dir));

    assert_int_equal(run("create-ca --certs-dir certs --ca-key ca.key"), 0);
    assert_int_equal(run("create-node 127.0.0.1 localhost node1.example --certs-dir certs "
                         "--ca-key ca.key"),
                     0);
    assert_int_equal(run("create-client root --certs-dir certs --ca-key ca.key"), 0);
    assert_int_equal(run("list --certs-dir certs"), 0);
    assert_int_equal(mode_of("ca.key"), 0600);
    assert_int_equal(mode_of("certs/node.key"), 0600);
    assert_int_equal(mode_of("certs/client.root.key"), 0600);
    /* refusals: exit 1 */
    assert_int_equal(run("create-ca --certs-dir certs --ca-key ca.key"), 1);
    assert_int_equal(run("create-client root --certs-dir certs --ca-key ca.key"), 1);
    assert_int_equal(run("create-client app --certs-dir certs --ca-key missing.key"), 1);
    /* --overwrite */
    assert_int_equal(run("create-client root --certs-dir certs --ca-key ca.key --overwrite"), 0);
    /* bad command lines: exit 2 */
    assert_int_equal(run(""), 2);
    assert_int_equal(run("frobnicate"), 2);
    assert_int_equal(run("create-ca --certs-dir certs"), 2);
    assert_int_equal(run("create-ca --ca-key x.key"), 2);
    assert_int_equal(run("create-ca --certs-dir c2 --ca-key c2.key --bogus"), 2);
    assert_int_equal(run("create-ca --certs-dir c2 --ca-key c2.key --lifetime 10x"), 2);
    assert_int_equal(run("create-node --certs-dir certs --ca-key ca.key"), 2);
    assert_int_equal(run("create-node 'a,b' --certs-dir certs --ca-key ca.key --overwrite"), 2);
    assert_int_equal(run("create-client a b --certs-dir certs --ca-key ca.key"), 2);
    assert_int_equal(run("list --certs-dir certs --ca-key ca.key"), 2);
    assert_int_equal(run("--help"), 0);
    char c2[512];
    snprintf(c2, sizeof c2, "%s/c2", dir);
    assert_int_not_equal(access(c2, F_OK), 0); /* a bad command line writes nothing */

    /* the files work for mutual TLS */
    char certs[512], err[SEC_ERR_MSG_SIZE];
    snprintf(certs, sizeof certs, "%s/certs", dir);
    sec_tls_ctx *s = NULL, *c = NULL;
    sec_tls_options srv = {.cert_name = "node", .require_peer_cert = true};
    sec_tls_options cli = {.cert_name = "client.root"};
    assert_int_equal(sec_tls_server_ctx_new(certs, &srv, &s, err, sizeof err), 0);
    assert_int_equal(sec_tls_client_ctx_new(certs, &cli, &c, err, sizeof err), 0);
    sec_tls_conn *sc, *cc;
    assert_int_equal(sec_tls_conn_new(s, true, NULL, &sc), 0);
    assert_int_equal(sec_tls_conn_new(c, false, "node1.example", &cc), 0);
    uint8_t buf[65536];
    for (int i = 0; i < 16; i++) {
        size_t n;
        bool moved = false;
        while ((n = sec_tls_conn_take_out(cc, buf, sizeof buf)) > 0) {
            assert_int_equal(sec_tls_conn_feed(sc, buf, n), 0);
            moved = true;
        }
        while ((n = sec_tls_conn_take_out(sc, buf, sizeof buf)) > 0) {
            assert_int_equal(sec_tls_conn_feed(cc, buf, n), 0);
            moved = true;
        }
        if (!moved) break;
    }
    assert_true(sec_tls_conn_handshake_done(sc));
    assert_true(sec_tls_conn_handshake_done(cc));
    sec_tls_conn_free(sc);
    sec_tls_conn_free(cc);
    sec_tls_ctx_free(s);
    sec_tls_ctx_free(c);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cert_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
