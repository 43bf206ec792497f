/*
** Tests for security/ certificates and TLS: the cert functions write a CA,
** node and client certificates into a temporary directory (keys 0600,
** refusal to overwrite); then TLS handshakes between server and client
** contexts through memory BIOs (bytes moved by hand, as an event loop
** would): valid (name, IP, mutual), expired certificate, wrong CA, wrong
** hostname/IP, missing client certificate when required, reload with old
** connections kept, garbage input. Random input prints its seed; set
** MERIDIAN_SEED to replay.
*/
#define _GNU_SOURCE /* mkdtemp, nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "base/base.h"
#include "security/security.h"

#define PUMP_ROUNDS_MAX 64

static char root_dir[256];    /* temp root */
static char certs[512];       /* CA + node + client.root */
static char ca_key[512];
static char other[512];       /* a foreign CA, its node and client certs */
static char other_key[512];
static char expired[512];     /* the good CA, an expired node certificate */
static char rotate[512];      /* the good CA, certificates replaced during a test */
static char err[SEC_ERR_MSG_SIZE];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static void copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb");
    assert_non_null(in);
    FILE *out = fopen(to, "wb");
    assert_non_null(out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
}

static mode_t file_mode(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return st.st_mode & 0777;
}

static void check(int rc) {
    if (rc != 0) fail_msg("rc %d (%s): %s", rc, sec_error_str(rc), err);
}

static const char *const node_hosts[] = {"127.0.0.1", "localhost", "node1.example", "::1"};

static int setup_all(void **state) {
    (void)state;
    snprintf(root_dir, sizeof root_dir, "/tmp/meridian-sec-XXXXXX");
    if (mkdtemp(root_dir) == NULL) return -1;
    snprintf(certs, sizeof certs, "%s/certs", root_dir);
    snprintf(ca_key, sizeof ca_key, "%s/ca.key", root_dir);
    snprintf(other, sizeof other, "%s/other", root_dir);
    snprintf(other_key, sizeof other_key, "%s/other-ca.key", root_dir);
    snprintf(expired, sizeof expired, "%s/expired", root_dir);
    snprintf(rotate, sizeof rotate, "%s/rotate", root_dir);
    check(sec_cert_create_ca(certs, ca_key, NULL, err, sizeof err));
    check(sec_cert_create_node(certs, ca_key, node_hosts, 4, NULL, err, sizeof err));
    check(sec_cert_create_client(certs, ca_key, "root", NULL, err, sizeof err));
    check(sec_cert_create_ca(other, other_key, NULL, err, sizeof err));
    check(sec_cert_create_node(other, other_key, node_hosts, 4, NULL, err, sizeof err));
    check(sec_cert_create_client(other, other_key, "root", NULL, err, sizeof err));
    /* expired: the good CA, a node certificate valid for one day ten days ago */
    mkdir(expired, 0700);
    char from[1024], to[1024];
    snprintf(from, sizeof from, "%s/ca.crt", certs);
    snprintf(to, sizeof to, "%s/ca.crt", expired);
    copy_file(from, to);
    sec_cert_options past = {.not_before_unix_s = (int64_t)time(NULL) - 10 * 86400,
                             .lifetime_s = 86400};
    check(sec_cert_create_node(expired, ca_key, node_hosts, 4, &past, err, sizeof err));
    check(sec_cert_create_client(expired, ca_key, "root", &past, err, sizeof err));
    mkdir(rotate, 0700);
    snprintf(to, sizeof to, "%s/ca.crt", rotate);
    copy_file(from, to);
    check(sec_cert_create_node(rotate, ca_key, node_hosts, 4, NULL, err, sizeof err));
    return 0;
}

static int teardown_all(void **state) {
    (void)state;
    nftw(root_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- certificate files -------------------------------------------------- */

static void test_cert_files(void **state) {
    (void)state;
    assert_int_equal(file_mode(root_dir, "ca.key"), 0600);
    assert_int_equal(file_mode(certs, "node.key"), 0600);
    assert_int_equal(file_mode(certs, "client.root.key"), 0600);
    assert_int_equal(file_mode(certs, "ca.crt"), 0644);
    assert_int_equal(file_mode(certs, "node.crt"), 0644);
    assert_int_equal(file_mode(certs, "client.root.crt"), 0644);
    /* umask does not loosen or tighten the key mode */
    mode_t old = umask(0077);
    char d[600], k[600];
    snprintf(d, sizeof d, "%s/umask", root_dir);
    snprintf(k, sizeof k, "%s/umask.key", root_dir);
    check(sec_cert_create_ca(d, k, NULL, err, sizeof err));
    umask(old);
    assert_int_equal(file_mode(root_dir, "umask.key"), 0600);
}

static void test_cert_refuse_overwrite(void **state) {
    (void)state;
    struct stat before, after;
    char p[1024];
    snprintf(p, sizeof p, "%s/ca.crt", certs);
    assert_int_equal(stat(p, &before), 0);
    assert_int_equal(sec_cert_create_ca(certs, ca_key, NULL, err, sizeof err), SEC_ERR_EXISTS);
    assert_non_null(strstr(err, "--overwrite"));
    assert_int_equal(sec_cert_create_node(certs, ca_key, node_hosts, 1, NULL, err, sizeof err),
                     SEC_ERR_EXISTS);
    assert_int_equal(sec_cert_create_client(certs, ca_key, "root", NULL, err, sizeof err),
                     SEC_ERR_EXISTS);
    /* a new CA key alone is refused too: nothing is written */
    char k2[600];
    snprintf(k2, sizeof k2, "%s/ca2.key", root_dir);
    assert_int_equal(sec_cert_create_ca(certs, k2, NULL, err, sizeof err), SEC_ERR_EXISTS);
    assert_int_not_equal(access(k2, F_OK), 0);
    assert_int_equal(stat(p, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    assert_int_equal(before.st_mtime, after.st_mtime);

    /* with overwrite, in a scratch dir */
    char d[600], k[600];
    snprintf(d, sizeof d, "%s/scratch", root_dir);
    snprintf(k, sizeof k, "%s/scratch.key", root_dir);
    check(sec_cert_create_ca(d, k, NULL, err, sizeof err));
    check(sec_cert_create_client(d, k, "app", NULL, err, sizeof err));
    sec_cert_options ow = {.overwrite = true};
    check(sec_cert_create_client(d, k, "app", &ow, err, sizeof err));
    assert_int_equal(file_mode(d, "client.app.key"), 0600);
    check(sec_cert_create_ca(d, k, &ow, err, sizeof err));
    /* the old client certificate is now of a foreign CA; the old CA key is gone */
}

static void test_cert_bad_input(void **state) {
    (void)state;
    const char *bad_hosts[] = {"a,b", "", "DNS:x", "a b", "1:2:3", "x/y"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(bad_hosts); i++) {
        assert_int_equal(sec_cert_create_node(certs, ca_key, &bad_hosts[i], 1, NULL, err,
                                              sizeof err),
                         SEC_ERR_INVALID);
        assert_non_null(strstr(err, "invalid"));
    }
    assert_int_equal(sec_cert_create_node(certs, ca_key, node_hosts, 0, NULL, err, sizeof err),
                     SEC_ERR_INVALID);
    const char *bad_users[] = {"", "../x", "a/b", ".hidden", "-x", "a b", "a,b", "node",
                               "0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(bad_users); i++)
        assert_int_equal(sec_cert_create_client(certs, ca_key, bad_users[i], NULL, err, sizeof err),
                         SEC_ERR_INVALID);
    /* wrong CA key for this certs dir */
    assert_int_equal(sec_cert_create_client(certs, other_key, "bob", NULL, err, sizeof err),
                     SEC_ERR_CRYPTO);
    assert_non_null(strstr(err, "does not match"));
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope.key", root_dir);
    assert_int_equal(sec_cert_create_client(certs, missing, "bob", NULL, err, sizeof err),
                     SEC_ERR_NOT_FOUND);
}

static void test_cert_list(void **state) {
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    check(sec_cert_list(certs, f, err, sizeof err));
    check(sec_cert_list(expired, f, err, sizeof err));
    fclose(f);
    assert_non_null(strstr(text, "ca.crt\n  kind: CA"));
    assert_non_null(strstr(text, "node.crt\n  kind: node\n  subject CN: node"));
    assert_non_null(strstr(text, "hosts: 127.0.0.1 localhost node1.example ::1"));
    assert_non_null(strstr(text, "client.root.crt\n  kind: client\n  subject CN: root"));
    assert_non_null(strstr(text, "key: node.key (mode 0600)"));
    assert_non_null(strstr(text, "EXPIRED"));
    free(text);
    assert_int_equal(sec_cert_list("/nonexistent/meridian", stdout, err, sizeof err),
                     SEC_ERR_NOT_FOUND);
}

/* ---- TLS ------------------------------------------------------------------- */

typedef struct pair {
    sec_tls_ctx *server_ctx, *client_ctx;
    sec_tls_conn *server, *client;
    int server_rc, client_rc; /* first failure seen on each side */
} pair;

static bool move_bytes(sec_tls_conn *from, sec_tls_conn *to, int *to_rc) {
    static uint8_t buf[65536];
    bool any = false;
    size_t n;
    while ((n = sec_tls_conn_take_out(from, buf, sizeof buf)) > 0) {
        any = true;
        if (*to_rc == 0) *to_rc = sec_tls_conn_feed(to, buf, n);
    }
    return any;
}

static void pump(pair *p) {
    for (int i = 0; i < PUMP_ROUNDS_MAX; i++) {
        bool a = move_bytes(p->client, p->server, &p->server_rc);
        bool b = move_bytes(p->server, p->client, &p->client_rc);
        if (!a && !b) return;
    }
    fail_msg("TLS pump did not settle in %d rounds", PUMP_ROUNDS_MAX);
}

static void pair_open(pair *p, const char *server_dir, const sec_tls_options *sopt,
                      const char *client_dir, const sec_tls_options *copt, const char *host) {
    memset(p, 0, sizeof *p);
    check(sec_tls_server_ctx_new(server_dir, sopt, &p->server_ctx, err, sizeof err));
    check(sec_tls_client_ctx_new(client_dir, copt, &p->client_ctx, err, sizeof err));
    check(sec_tls_conn_new(p->server_ctx, true, NULL, &p->server));
    check(sec_tls_conn_new(p->client_ctx, false, host, &p->client));
    assert_true(sec_tls_conn_pending_out(p->client) > 0); /* ClientHello */
    pump(p);
}

static void pair_close(pair *p) {
    sec_tls_conn_free(p->server);
    sec_tls_conn_free(p->client);
    sec_tls_ctx_free(p->server_ctx);
    sec_tls_ctx_free(p->client_ctx);
}

/* Read what is available into buf; returns the read rc. */
static int read_some(sec_tls_conn *c, char *buf, size_t cap, size_t *total) {
    *total = 0;
    for (int i = 0; i < 1000; i++) {
        size_t n = 0;
        int rc = sec_tls_conn_read(c, buf + *total, cap - *total, &n);
        if (rc != 0) return rc;
        if (n == 0) return 0;
        *total += n;
    }
    return 0;
}

static void exchange(pair *p, const char *msg) {
    char buf[256];
    size_t n;
    check(sec_tls_conn_write(p->client, msg, strlen(msg)));
    pump(p);
    assert_int_equal(read_some(p->server, buf, sizeof buf, &n), 0);
    assert_int_equal(n, strlen(msg));
    assert_memory_equal(buf, msg, n);
    check(sec_tls_conn_write(p->server, msg, strlen(msg)));
    pump(p);
    assert_int_equal(read_some(p->client, buf, sizeof buf, &n), 0);
    assert_int_equal(n, strlen(msg));
    assert_memory_equal(buf, msg, n);
}

static const sec_tls_options mutual = {.cert_name = "node", .require_peer_cert = true};
static const sec_tls_options as_root = {.cert_name = "client.root"};
static const sec_tls_options as_node = {.cert_name = "node"};

static void test_tls_valid(void **state) {
    (void)state;
    const char *hosts[] = {"localhost", "127.0.0.1", "node1.example", "::1", "LOCALHOST"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(hosts); i++) {
        pair p;
        pair_open(&p, certs, &mutual, certs, &as_root, hosts[i]);
        assert_int_equal(p.server_rc, 0);
        assert_int_equal(p.client_rc, 0);
        assert_true(sec_tls_conn_handshake_done(p.server));
        assert_true(sec_tls_conn_handshake_done(p.client));
        assert_string_equal(sec_tls_conn_version(p.client), "TLSv1.3");
        char cn[64];
        check(sec_tls_conn_peer_cn(p.server, cn, sizeof cn));
        assert_string_equal(cn, "root");
        check(sec_tls_conn_peer_cn(p.client, cn, sizeof cn));
        assert_string_equal(cn, "node");
        assert_int_equal(sec_tls_conn_peer_cn(p.client, cn, 3), SEC_ERR_LIMIT);
        exchange(&p, "SELECT 1;");
        pair_close(&p);
    }
}

static void test_tls_node_to_node_and_bulk(void **state) {
    (void)state;
    pair p;
    memset(&p, 0, sizeof p);
    check(sec_tls_server_ctx_new(certs, &mutual, &p.server_ctx, err, sizeof err));
    check(sec_tls_client_ctx_new(certs, &as_node, &p.client_ctx, err, sizeof err));
    check(sec_tls_conn_new(p.server_ctx, true, NULL, &p.server));
    check(sec_tls_conn_new(p.client_ctx, false, "127.0.0.1", &p.client));
    /* written before the handshake: queued, then sent */
    check(sec_tls_conn_write(p.client, "early", 5));
    pump(&p);
    assert_int_equal(p.server_rc, 0);
    char cn[64];
    check(sec_tls_conn_peer_cn(p.server, cn, sizeof cn));
    assert_string_equal(cn, "node");
    /* 300 KB in 1 KB writes, read back in order */
    size_t total = 300 * 1024;
    char *in = malloc(total + 5), *chunk = malloc(1024);
    for (size_t i = 0; i < 1024; i++) chunk[i] = (char)(i * 7);
    size_t got = 0;
    char tmp[70000];
    for (size_t off = 0; off < total; off += 1024) {
        check(sec_tls_conn_write(p.client, chunk, 1024));
        if (off % (64 * 1024) == 0) pump(&p);
    }
    pump(&p);
    for (;;) {
        size_t n = 0;
        check(sec_tls_conn_read(p.server, tmp, sizeof tmp, &n));
        if (n == 0) break;
        assert_true(got + n <= total + 5);
        memcpy(in + got, tmp, n);
        got += n;
    }
    assert_int_equal(got, total + 5);
    assert_memory_equal(in, "early", 5);
    for (size_t off = 5; off < got; off += 1024) assert_memory_equal(in + off, chunk, 1024);
    free(in);
    free(chunk);
    /* clean close */
    check(sec_tls_conn_shutdown(p.client));
    pump(&p);
    size_t n;
    assert_int_equal(sec_tls_conn_read(p.server, tmp, sizeof tmp, &n), SEC_ERR_CLOSED);
    pair_close(&p);
}

static void test_tls_node_peer_only(void **state) {
    (void)state;
    sec_tls_options nodes_only = {.cert_name = "node", .require_peer_node = true};
    pair p;
    pair_open(&p, certs, &nodes_only, certs, &as_node, "node1.example");
    assert_int_equal(p.server_rc, 0);
    assert_int_equal(p.client_rc, 0);
    exchange(&p, "raft: append entries");
    pair_close(&p);
    /* a user's certificate from the same CA is not a node */
    pair_open(&p, certs, &nodes_only, certs, &as_root, "node1.example");
    assert_int_equal(p.server_rc, SEC_ERR_TLS);
    assert_non_null(strstr(sec_tls_conn_error(p.server), "application verification failure"));
    char buf[16];
    size_t n;
    assert_int_equal(read_some(p.client, buf, sizeof buf, &n), SEC_ERR_TLS);
    pair_close(&p);
    /* nor is no certificate */
    pair_open(&p, certs, &nodes_only, certs, NULL, "node1.example");
    assert_int_equal(p.server_rc, SEC_ERR_TLS);
    pair_close(&p);
}

/* allow_peer_client: a node certificate and a user's both get in, and
** sec_tls_conn_peer_kind tells them apart (rpc/ limits the user to the
** admin methods); no certificate still fails. */
static void test_tls_node_or_client_peer(void **state) {
    (void)state;
    sec_tls_options admin_port = {.cert_name = "node", .require_peer_node = true,
                                  .allow_peer_client = true};
    pair p;
    pair_open(&p, certs, &admin_port, certs, &as_node, "node1.example");
    assert_int_equal(p.server_rc, 0);
    exchange(&p, "raft: append entries");
    assert_int_equal(sec_tls_conn_peer_kind(p.server), SEC_PEER_NODE);
    pair_close(&p);
    pair_open(&p, certs, &admin_port, certs, &as_root, "node1.example");
    assert_int_equal(p.server_rc, 0);
    exchange(&p, "drain");
    assert_int_equal(sec_tls_conn_peer_kind(p.server), SEC_PEER_CLIENT);
    char cn[SEC_USER_SIZE_MAX + 1];
    check(sec_tls_conn_peer_cn(p.server, cn, sizeof cn));
    assert_string_equal(cn, "root");
    pair_close(&p);
    pair_open(&p, certs, &admin_port, certs, NULL, "node1.example");
    assert_int_equal(p.server_rc, SEC_ERR_TLS);
    assert_int_equal(sec_tls_conn_peer_kind(p.server), SEC_PEER_NONE);
    pair_close(&p);
    /* without require_peer_node the option means nothing: any client */
    sec_tls_options plain = {.cert_name = "node", .allow_peer_client = true};
    pair_open(&p, certs, &plain, certs, NULL, "node1.example");
    assert_int_equal(p.server_rc, 0);
    exchange(&p, "hello");
    assert_int_equal(sec_tls_conn_peer_kind(p.server), SEC_PEER_NONE);
    pair_close(&p);
}

/* A writer whose ciphertext is not taken out hits SEC_TLS_OUT_PENDING_MAX. */
static void test_tls_output_limit(void **state) {
    (void)state;
    pair p;
    pair_open(&p, certs, &mutual, certs, &as_root, "localhost");
    assert_int_equal(p.server_rc, 0);
    size_t chunk = 1u << 20;
    char *buf = calloc(1, chunk);
    int writes = 0, rc = 0;
    while (writes < 100 && (rc = sec_tls_conn_write(p.server, buf, chunk)) == 0) writes++;
    assert_int_equal(rc, SEC_ERR_LIMIT);
    assert_in_range(writes, 15, 16);
    assert_true(sec_tls_conn_pending_out(p.server) <= SEC_TLS_OUT_PENDING_MAX);
    free(buf);
    pair_close(&p);
}

/* A plain OpenSSL client limited to one protocol version, against our
** server: TLS 1.2 is accepted (with an AEAD suite), TLS 1.1 and 1.0 are not. */
static int raw_client_handshake(int version, char *cipher, size_t cipher_size) {
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(cctx);
    SSL_CTX_set_min_proto_version(cctx, version);
    SSL_CTX_set_max_proto_version(cctx, version);
    SSL_CTX_set_security_level(cctx, 0); /* let old versions try */
    char path[1024];
    snprintf(path, sizeof path, "%s/ca.crt", certs);
    assert_int_equal(SSL_CTX_load_verify_locations(cctx, path, NULL), 1);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(cctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(rb, -1);
    SSL_set_bio(ssl, rb, wb);
    SSL_set_connect_state(ssl);
    sec_tls_ctx *sctx;
    check(sec_tls_server_ctx_new(certs, NULL, &sctx, err, sizeof err));
    sec_tls_conn *s;
    check(sec_tls_conn_new(sctx, true, NULL, &s));
    int server_rc = 0, done = 0;
    static uint8_t buf[65536];
    for (int i = 0; i < PUMP_ROUNDS_MAX && !done; i++) {
        int r = SSL_do_handshake(ssl);
        if (r == 1) done = 1;
        else if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ) done = -1;
        int n;
        bool moved = false;
        while ((n = BIO_read(wb, buf, sizeof buf)) > 0) {
            moved = true;
            if (server_rc == 0) server_rc = sec_tls_conn_feed(s, buf, (size_t)n);
        }
        size_t m;
        while ((m = sec_tls_conn_take_out(s, buf, sizeof buf)) > 0) {
            moved = true;
            BIO_write(rb, buf, (int)m);
        }
        if (!moved && !done) done = -1;
    }
    if (done == 1) snprintf(cipher, cipher_size, "%s", SSL_get_cipher_name(ssl));
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(cctx);
    sec_tls_conn_free(s);
    sec_tls_ctx_free(sctx);
    return done == 1 && server_rc == 0 ? 0 : -1;
}

static void test_tls_versions(void **state) {
    (void)state;
    char cipher[128] = "";
    assert_int_equal(raw_client_handshake(TLS1_2_VERSION, cipher, sizeof cipher), 0);
    assert_non_null(strstr(cipher, "ECDHE-ECDSA-"));
    assert_true(strstr(cipher, "GCM") != NULL || strstr(cipher, "CHACHA20") != NULL);
    assert_int_equal(raw_client_handshake(TLS1_3_VERSION, cipher, sizeof cipher), 0);
    assert_int_equal(raw_client_handshake(TLS1_1_VERSION, cipher, sizeof cipher), -1);
    assert_int_equal(raw_client_handshake(TLS1_VERSION, cipher, sizeof cipher), -1);
}

static void expect_client_failure(pair *p, const char *needle) {
    assert_int_equal(p->client_rc, SEC_ERR_TLS);
    const char *e = sec_tls_conn_error(p->client);
    if (strstr(e, needle) == NULL) fail_msg("error \"%s\" lacks \"%s\"", e, needle);
    assert_false(sec_tls_conn_handshake_done(p->client));
    /* the server learns of it through the alert */
    char buf[16];
    size_t n;
    assert_int_not_equal(read_some(p->server, buf, sizeof buf, &n), 0);
    assert_int_equal(n, 0);
    /* a failed stream stays failed */
    assert_int_equal(sec_tls_conn_feed(p->client, "x", 1), SEC_ERR_TLS);
    assert_int_equal(sec_tls_conn_write(p->client, "x", 1), SEC_ERR_TLS);
}

static void test_tls_expired(void **state) {
    (void)state;
    pair p;
    pair_open(&p, expired, &mutual, certs, &as_root, "localhost");
    expect_client_failure(&p, "expired");
    pair_close(&p);
    /* and an expired client certificate is refused by the server */
    pair_open(&p, certs, &mutual, expired, &as_root, "localhost");
    size_t n;
    char buf[16];
    assert_int_equal(p.server_rc, SEC_ERR_TLS);
    assert_non_null(strstr(sec_tls_conn_error(p.server), "expired"));
    assert_int_not_equal(read_some(p.client, buf, sizeof buf, &n), 0);
    pair_close(&p);
}

static void test_tls_wrong_ca(void **state) {
    (void)state;
    pair p;
    /* the server's certificate is from a foreign CA */
    pair_open(&p, other, &mutual, certs, &as_root, "localhost");
    expect_client_failure(&p, "certificate verification failed");
    pair_close(&p);
    /* the client's certificate is from a foreign CA (its ca.crt trusts the server) */
    char dir[600], from[1024], to[1024];
    snprintf(dir, sizeof dir, "%s/mixed", root_dir);
    mkdir(dir, 0700);
    snprintf(from, sizeof from, "%s/ca.crt", certs);
    snprintf(to, sizeof to, "%s/ca.crt", dir);
    copy_file(from, to);
    snprintf(from, sizeof from, "%s/client.root.crt", other);
    snprintf(to, sizeof to, "%s/client.root.crt", dir);
    copy_file(from, to);
    snprintf(from, sizeof from, "%s/client.root.key", other);
    snprintf(to, sizeof to, "%s/client.root.key", dir);
    copy_file(from, to);
    chmod(to, 0600);
    pair_open(&p, certs, &mutual, dir, &as_root, "localhost");
    assert_int_equal(p.server_rc, SEC_ERR_TLS);
    assert_non_null(strstr(sec_tls_conn_error(p.server), "certificate verification failed"));
    pair_close(&p);
}

static void test_tls_wrong_host(void **state) {
    (void)state;
    const char *hosts[] = {"evil.example", "127.0.0.2", "node2.example", "example", "::2"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(hosts); i++) {
        pair p;
        pair_open(&p, certs, &mutual, certs, &as_root, hosts[i]);
        expect_client_failure(&p, "mismatch");
        pair_close(&p);
    }
}

static void test_tls_client_without_cert(void **state) {
    (void)state;
    pair p;
    /* required: the server refuses; the TLS 1.3 client sees the alert on read */
    pair_open(&p, certs, &mutual, certs, NULL, "localhost");
    assert_int_equal(p.server_rc, SEC_ERR_TLS);
    assert_false(sec_tls_conn_handshake_done(p.server));
    char buf[16];
    size_t n;
    assert_int_equal(read_some(p.client, buf, sizeof buf, &n), SEC_ERR_TLS);
    pair_close(&p);
    /* not required: accepted, and the server knows there is no certificate */
    sec_tls_options optional = {.cert_name = "node"};
    pair_open(&p, certs, &optional, certs, NULL, "localhost");
    assert_int_equal(p.server_rc, 0);
    assert_int_equal(p.client_rc, 0);
    char cn[64];
    assert_int_equal(sec_tls_conn_peer_cn(p.server, cn, sizeof cn), SEC_ERR_NOT_FOUND);
    exchange(&p, "hello");
    pair_close(&p);
}

static void test_tls_reload(void **state) {
    (void)state;
    pair live;
    pair_open(&live, rotate, &mutual, certs, &as_root, "localhost");
    assert_int_equal(live.server_rc, 0);
    /* rotate: a node certificate for other names */
    const char *new_hosts[] = {"rotated.example"};
    sec_cert_options ow = {.overwrite = true};
    check(sec_cert_create_node(rotate, ca_key, new_hosts, 1, &ow, err, sizeof err));
    check(sec_tls_reload(live.server_ctx, err, sizeof err));
    /* the live connection keeps working */
    exchange(&live, "still here");
    /* new connections get the new certificate */
    sec_tls_conn *s, *c;
    pair p = {.server_ctx = live.server_ctx, .client_ctx = live.client_ctx};
    check(sec_tls_conn_new(live.server_ctx, true, NULL, &s));
    check(sec_tls_conn_new(live.client_ctx, false, "rotated.example", &c));
    p.server = s;
    p.client = c;
    pump(&p);
    assert_int_equal(p.client_rc, 0);
    assert_int_equal(p.server_rc, 0);
    sec_tls_conn_free(s);
    sec_tls_conn_free(c);
    check(sec_tls_conn_new(live.server_ctx, true, NULL, &s));
    check(sec_tls_conn_new(live.client_ctx, false, "localhost", &c));
    p.server = s;
    p.client = c;
    p.server_rc = p.client_rc = 0;
    pump(&p);
    assert_int_equal(p.client_rc, SEC_ERR_TLS);
    sec_tls_conn_free(s);
    sec_tls_conn_free(c);
    /* a failed reload changes nothing */
    char key[1024];
    snprintf(key, sizeof key, "%s/node.key", rotate);
    assert_int_equal(unlink(key), 0);
    assert_int_equal(sec_tls_reload(live.server_ctx, err, sizeof err), SEC_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "node.key"));
    check(sec_tls_conn_new(live.server_ctx, true, NULL, &s));
    check(sec_tls_conn_new(live.client_ctx, false, "rotated.example", &c));
    p.server = s;
    p.client = c;
    p.server_rc = p.client_rc = 0;
    pump(&p);
    assert_int_equal(p.client_rc, 0);
    sec_tls_conn_free(s);
    sec_tls_conn_free(c);
    exchange(&live, "and still");
    pair_close(&live);
}

static void test_tls_ctx_errors(void **state) {
    (void)state;
    sec_tls_ctx *ctx = NULL;
    assert_int_equal(sec_tls_server_ctx_new("/nonexistent/x", NULL, &ctx, err, sizeof err),
                     SEC_ERR_NOT_FOUND);
    assert_null(ctx);
    /* a key readable by others is refused */
    char key[1024];
    snprintf(key, sizeof key, "%s/node.key", certs);
    chmod(key, 0644);
    assert_int_equal(sec_tls_server_ctx_new(certs, NULL, &ctx, err, sizeof err), SEC_ERR_INVALID);
    assert_non_null(strstr(err, "chmod 600"));
    chmod(key, 0600);
    assert_int_equal(sec_tls_client_ctx_new(certs, &(sec_tls_options){.cert_name = "client.nobody"},
                                            &ctx, err, sizeof err),
                     SEC_ERR_NOT_FOUND);
    check(sec_tls_client_ctx_new(certs, NULL, &ctx, err, sizeof err));
    sec_tls_conn *c = NULL;
    assert_int_equal(sec_tls_conn_new(ctx, false, NULL, &c), SEC_ERR_INVALID);
    assert_int_equal(sec_tls_conn_new(ctx, true, NULL, &c), SEC_ERR_INVALID);
    sec_tls_ctx_free(ctx);
}

static void test_tls_out_of_memory(void **state) {
    (void)state;
    sec_tls_ctx *ctx = NULL;
    base_alloc_fail_after(0);
    assert_int_equal(sec_tls_server_ctx_new(certs, NULL, &ctx, err, sizeof err), SEC_ERR_NOMEM);
    base_alloc_fail_after(-1);
    assert_null(ctx);
    check(sec_tls_server_ctx_new(certs, NULL, &ctx, err, sizeof err));
    sec_tls_conn *c = NULL;
    base_alloc_fail_after(0);
    assert_int_equal(sec_tls_conn_new(ctx, true, NULL, &c), SEC_ERR_NOMEM);
    base_alloc_fail_after(-1);
    assert_null(c);
    check(sec_tls_conn_new(ctx, true, NULL, &c));
    base_alloc_fail_after(0);
    assert_int_equal(sec_tls_conn_write(c, "early", 5), SEC_ERR_NOMEM); /* queued plaintext */
    base_alloc_fail_after(-1);
    check(sec_tls_conn_write(c, "early", 5));
    static uint8_t big[SEC_TLS_EARLY_PLAIN_MAX];
    assert_int_equal(sec_tls_conn_write(c, big, sizeof big), SEC_ERR_LIMIT);
    sec_tls_conn_free(c);
    char list_err[SEC_ERR_MSG_SIZE];
    base_alloc_fail_after(0);
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(sec_cert_list(certs, devnull, list_err, sizeof list_err), SEC_ERR_NOMEM);
    base_alloc_fail_after(1);
    assert_int_equal(sec_cert_list(certs, devnull, list_err, sizeof list_err), SEC_ERR_NOMEM);
    base_alloc_fail_after(-1);
    fclose(devnull);
    sec_tls_ctx_free(ctx);
}

static uint64_t rng_state;
static uint64_t rng_next(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static void test_tls_garbage(void **state) {
    (void)state;
    const char *env = getenv("MERIDIAN_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
    printf("test_tls_garbage seed %llu (MERIDIAN_SEED to replay)\n", (unsigned long long)seed);
    rng_state = seed | 1;
    sec_tls_ctx *sctx;
    check(sec_tls_server_ctx_new(certs, &mutual, &sctx, err, sizeof err));
    sec_tls_ctx *cctx;
    check(sec_tls_client_ctx_new(certs, &as_root, &cctx, err, sizeof err));
    for (int round = 0; round < 200; round++) {
        sec_tls_conn *s;
        check(sec_tls_conn_new(sctx, true, NULL, &s));
        uint8_t buf[2048];
        size_t len;
        if (round % 2 == 0) {
            /* pure noise */
            len = 1 + rng_next() % sizeof buf;
            for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)rng_next();
        } else {
            /* a real ClientHello with a few bytes changed */
            sec_tls_conn *c;
            check(sec_tls_conn_new(cctx, false, "localhost", &c));
            len = sec_tls_conn_take_out(c, buf, sizeof buf);
            sec_tls_conn_free(c);
            for (int k = 0; k < 3; k++) buf[rng_next() % len] = (uint8_t)rng_next();
            if (rng_next() % 2) len = 1 + rng_next() % len;
        }
        int rc = sec_tls_conn_feed(s, buf, len);
        assert_true(rc == 0 || rc == SEC_ERR_TLS);
        char out[4096];
        size_t n;
        rc = sec_tls_conn_read(s, out, sizeof out, &n);
        assert_true(rc == 0 || rc == SEC_ERR_TLS);
        assert_int_equal(n, 0);
        sec_tls_conn_take_out(s, out, sizeof out);
        sec_tls_conn_free(s);
    }
    /* the input limit */
    sec_tls_conn *s;
    check(sec_tls_conn_new(sctx, true, NULL, &s));
    static uint8_t big[SEC_TLS_IN_PENDING_MAX + 1];
    assert_int_equal(sec_tls_conn_feed(s, big, sizeof big), SEC_ERR_LIMIT);
    sec_tls_conn_free(s);
    sec_tls_ctx_free(sctx);
    sec_tls_ctx_free(cctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cert_files),
        cmocka_unit_test(test_cert_refuse_overwrite),
        cmocka_unit_test(test_cert_bad_input),
        cmocka_unit_test(test_cert_list),
        cmocka_unit_test(test_tls_valid),
        cmocka_unit_test(test_tls_node_to_node_and_bulk),
        cmocka_unit_test(test_tls_node_peer_only),
        cmocka_unit_test(test_tls_node_or_client_peer),
        cmocka_unit_test(test_tls_output_limit),
        cmocka_unit_test(test_tls_versions),
        cmocka_unit_test(test_tls_expired),
        cmocka_unit_test(test_tls_wrong_ca),
        cmocka_unit_test(test_tls_wrong_host),
        cmocka_unit_test(test_tls_client_without_cert),
        cmocka_unit_test(test_tls_reload),
        cmocka_unit_test(test_tls_ctx_errors),
        cmocka_unit_test(test_tls_out_of_memory),
        cmocka_unit_test(test_tls_garbage),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
