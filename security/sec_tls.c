/*
** security/sec_tls.c: TLS contexts and a TLS stream over memory BIOs.
**
** Context policy: TLS 1.2 minimum (1.3 negotiated whenever both sides can);
** TLS 1.2 ciphers ECDHE with AES-GCM or ChaCha20-Poly1305 only, TLS 1.3
** suites OpenSSL's defaults (all AEAD); groups X25519 and P-256; no
** renegotiation, no compression; the server's cipher order wins. The peer is
** verified against ca.crt of the certs dir; a client checks the server's
** name or IP (SAN) per connection; a server asks for a client certificate
** and, with require_peer_cert, refuses a client without one; with
** require_peer_node only a node certificate gets in, and with
** allow_peer_client a client (user) certificate too, which the caller tells
** apart by sec_tls_conn_peer_kind.
**
** Reload: a sec_tls_ctx holds the current SSL_CTX behind a mutex. A reload
** builds a complete new SSL_CTX outside the lock and swaps the pointer under
** it; SSL_new takes its own reference to the SSL_CTX, so a live connection
** keeps the one it started with and the old one is freed with its last user.
**
** Stream: rbio holds ciphertext fed in, wbio ciphertext to send. Both are
** memory BIOs owned by the SSL. Plaintext written before the handshake ends
** waits in `early` and is flushed when it completes.
**
** Invariants: every buffer is bounded (SEC_TLS_*_MAX); after a fatal error
** the stream only gives out what is pending (an alert) and fails every
** other call; the thread's openssl error queue is empty on return.
*/
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "security/sec_int.h"

#define TLS12_CIPHERS                                                                            \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"  \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256"
#define READ_CHUNK 16384

struct sec_tls_ctx {
    pthread_mutex_t mu;
    SSL_CTX *current; /* guarded by mu */
    bool is_server;
    bool require_peer_cert;
    bool require_peer_node;
    bool allow_peer_client; /* with require_peer_node: client certificates too */
    char certs_dir[SEC_PATH_SIZE_MAX];
    char cert_name[SEC_USER_SIZE_MAX + 16]; /* "" = none (client) */
};

struct sec_tls_conn {
    SSL *ssl;
    BIO *rbio; /* owned by ssl */
    BIO *wbio; /* owned by ssl */
    bool is_server;
    bool handshake_done;
    bool failed;
    base_buf early; /* plaintext written before the handshake ended */
    char error[SEC_ERR_MSG_SIZE];
};

/* ---- contexts -------------------------------------------------------------- */

/* A node certificate: CN=node and EKU serverAuth (sec_cert_create_node). */
static bool cert_is_node(X509 *cert) {
    char cn[16] = "";
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    ERR_clear_error(); /* no CN is an answer, not an error */
    return n == 4 && strcmp(cn, "node") == 0 &&
           (X509_get_extended_key_usage(cert) & XKU_SSL_SERVER) != 0;
}

/* Verify callback of node-to-node servers: the leaf must be a node
** certificate, not a user's. */
static int verify_node_peer(int preverify_ok, X509_STORE_CTX *store) {
    if (!preverify_ok || X509_STORE_CTX_get_error_depth(store) != 0) return preverify_ok;
    if (!cert_is_node(X509_STORE_CTX_get_current_cert(store))) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return 1;
}

/* Verify callback of node-to-node servers that also take admin tools
** (allow_peer_client): a node certificate, or a client certificate (EKU
** clientAuth and a CN); the caller tells them apart (sec_tls_conn_peer_kind). */
static int verify_node_or_client_peer(int preverify_ok, X509_STORE_CTX *store) {
    if (!preverify_ok || X509_STORE_CTX_get_error_depth(store) != 0) return preverify_ok;
    X509 *cert = X509_STORE_CTX_get_current_cert(store);
    if (cert_is_node(cert)) return 1;
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, NULL, 0);
    ERR_clear_error();
    if (n <= 0 || (X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT) == 0) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return 1;
}

static int build_ssl_ctx(const sec_tls_ctx *c, SSL_CTX **out, char *err, size_t err_size) {
    char ca[SEC_PATH_SIZE_MAX + 256], crt[SEC_PATH_SIZE_MAX + 256], key[SEC_PATH_SIZE_MAX + 256];
    struct stat st;
    int rc;
    snprintf(ca, sizeof ca, "%s/%s", c->certs_dir, SEC_CA_CERT_FILE);
    snprintf(crt, sizeof crt, "%s/%s.crt", c->certs_dir, c->cert_name);
    snprintf(key, sizeof key, "%s/%s.key", c->certs_dir, c->cert_name);
    if (stat(ca, &st) != 0)
        return sec__fail(SEC_ERR_NOT_FOUND, err, err_size, "missing CA certificate %s", ca);
    if (c->cert_name[0] != '\0') {
        if (stat(crt, &st) != 0)
            return sec__fail(SEC_ERR_NOT_FOUND, err, err_size, "missing certificate %s", crt);
        if (stat(key, &st) != 0)
            return sec__fail(SEC_ERR_NOT_FOUND, err, err_size, "missing key %s", key);
        if ((st.st_mode & 077) != 0)
            return sec__fail(SEC_ERR_INVALID, err, err_size,
                             "key %s is readable by others (mode %04o): chmod 600 it", key,
                             (unsigned)(st.st_mode & 0777));
    }
    SSL_CTX *ctx = SSL_CTX_new(c->is_server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) return sec__fail_ssl(SEC_ERR_NOMEM, err, err_size, "cannot create SSL_CTX");
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) ||
        !SSL_CTX_set1_groups_list(ctx, TLS_GROUPS)) {
        rc = sec__fail_ssl(SEC_ERR_CRYPTO, err, err_size, "cannot configure TLS");
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        rc = sec__fail_ssl(SEC_ERR_CRYPTO, err, err_size, "cannot load the CA certificate");
        goto fail;
    }
    if (c->cert_name[0] != '\0') {
        if (SSL_CTX_use_certificate_chain_file(ctx, crt) != 1) {
            rc = sec__fail_ssl(SEC_ERR_CRYPTO, err, err_size, "cannot load the certificate");
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            rc = sec__fail_ssl(SEC_ERR_CRYPTO, err, err_size, "cannot load the key");
            goto fail;
        }
    }
    int mode = SSL_VERIFY_PEER;
    if (c->is_server) {
        if (c->require_peer_cert || c->require_peer_node) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
        if (names == NULL) {
            rc = sec__fail_ssl(SEC_ERR_CRYPTO, err, err_size, "cannot read the CA name");
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        /* Session resumption would skip client verification on reload; keep
        ** it off until it is needed. */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    SSL_verify_cb cb = NULL;
    if (c->is_server && c->require_peer_node)
        cb = c->allow_peer_client ? verify_node_or_client_peer : verify_node_peer;
    SSL_CTX_set_verify(ctx, mode, cb);
    SSL_CTX_set_verify_depth(ctx, 4);
    *out = ctx;
    ERR_clear_error();
    return 0;
fail:
    SSL_CTX_free(ctx);
    return rc;
}

static int ctx_new(bool is_server, const char *certs_dir, const sec_tls_options *opt,
                   sec_tls_ctx **out, char *err, size_t err_size) {
    *out = NULL;
    if (certs_dir == NULL || strlen(certs_dir) >= SEC_PATH_SIZE_MAX - 64)
        return sec__fail(SEC_ERR_INVALID, err, err_size, "a certs dir is required");
    const char *name = opt && opt->cert_name ? opt->cert_name : (is_server ? "node" : "");
    sec_tls_ctx *c = base_calloc(1, sizeof *c);
    if (c == NULL) return sec__fail(SEC_ERR_NOMEM, err, err_size, "out of memory");
    if (strlen(name) >= sizeof c->cert_name || strchr(name, '/') != NULL) {
        base_free(c);
        return sec__fail(SEC_ERR_INVALID, err, err_size, "invalid certificate name \"%s\"", name);
    }
    c->is_server = is_server;
    c->require_peer_cert = opt && opt->require_peer_cert;
    c->require_peer_node = opt && opt->require_peer_node;
    c->allow_peer_client = c->require_peer_node && opt->allow_peer_client;
    base_strlcpy(c->certs_dir, certs_dir, sizeof c->certs_dir);
    base_strlcpy(c->cert_name, name, sizeof c->cert_name);
    int rc = build_ssl_ctx(c, &c->current, err, err_size);
    if (rc != 0) {
        base_free(c);
        return rc;
    }
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return 0;
}

int sec_tls_server_ctx_new(const char *certs_dir, const sec_tls_options *opt, sec_tls_ctx **out,
                           char *err, size_t err_size) {
    return ctx_new(true, certs_dir, opt, out, err, err_size);
}

int sec_tls_client_ctx_new(const char *certs_dir, const sec_tls_options *opt, sec_tls_ctx **out,
                           char *err, size_t err_size) {
    return ctx_new(false, certs_dir, opt, out, err, err_size);
}

int sec_tls_reload(sec_tls_ctx *ctx, char *err, size_t err_size) {
    SSL_CTX *fresh = NULL;
    int rc = build_ssl_ctx(ctx, &fresh, err, err_size);
    if (rc != 0) return rc;
    pthread_mutex_lock(&ctx->mu);
    SSL_CTX *old = ctx->current;
    ctx->current = fresh;
    pthread_mutex_unlock(&ctx->mu);
    SSL_CTX_free(old); /* live connections hold their own reference */
    return 0;
}

void sec_tls_ctx_free(sec_tls_ctx *ctx) {
    if (ctx == NULL) return;
    SSL_CTX_free(ctx->current);
    pthread_mutex_destroy(&ctx->mu);
    base_free(ctx);
}

/* ---- streams ----------------------------------------------------------------- */

static void conn_set_error(sec_tls_conn *c, const char *what) {
    long v = SSL_get_verify_result(c->ssl);
    unsigned long e = ERR_peek_last_error();
    char ssl_err[160] = "";
    if (e != 0) ERR_error_string_n(e, ssl_err, sizeof ssl_err);
    ERR_clear_error();
    bool clients_too =
        SSL_CTX_get_verify_callback(SSL_get_SSL_CTX(c->ssl)) == verify_node_or_client_peer;
    if (v == X509_V_ERR_APPLICATION_VERIFICATION && clients_too) /* our callbacks set it */
        snprintf(c->error, sizeof c->error, "%s: certificate verification failed: %s (neither "
                 "a node certificate nor a client certificate with a CN and clientAuth)", what,
                 X509_verify_cert_error_string(v));
    else if (v == X509_V_ERR_APPLICATION_VERIFICATION)
        snprintf(c->error, sizeof c->error, "%s: certificate verification failed: %s (not a "
                 "node certificate: CN=node with serverAuth and clientAuth required)", what,
                 X509_verify_cert_error_string(v));
    else if (v != X509_V_OK)
        snprintf(c->error, sizeof c->error, "%s: certificate verification failed: %s", what,
                 X509_verify_cert_error_string(v));
    else
        snprintf(c->error, sizeof c->error, "%s%s%s", what, ssl_err[0] ? ": " : "", ssl_err);
}

static int conn_fail(sec_tls_conn *c, const char *what) {
    conn_set_error(c, what);
    c->failed = true;
    return SEC_ERR_TLS;
}

int sec_tls_conn_new(sec_tls_ctx *ctx, bool is_server, const char *peer_host,
                     sec_tls_conn **out) {
    *out = NULL;
    if (ctx == NULL || is_server != ctx->is_server) return SEC_ERR_INVALID;
    if (!is_server && (peer_host == NULL || peer_host[0] == '\0' ||
                       strlen(peer_host) > SEC_HOST_SIZE_MAX))
        return SEC_ERR_INVALID;
    sec_tls_conn *c = base_calloc(1, sizeof *c);
    if (c == NULL) return SEC_ERR_NOMEM;
    c->is_server = is_server;
    int rc = SEC_ERR_NOMEM;
    pthread_mutex_lock(&ctx->mu);
    c->ssl = SSL_new(ctx->current);
    pthread_mutex_unlock(&ctx->mu);
    if (c->ssl == NULL) goto fail;
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->rbio == NULL || c->wbio == NULL) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        goto fail;
    }
    BIO_set_mem_eof_return(c->rbio, -1); /* empty means "want more", not EOF */
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    if (is_server) {
        SSL_set_accept_state(c->ssl);
    } else {
        SSL_set_connect_state(c->ssl);
        X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
        unsigned char ip[16];
        bool is_ip =
            inet_pton(AF_INET, peer_host, ip) == 1 || inet_pton(AF_INET6, peer_host, ip) == 1;
        rc = SEC_ERR_INVALID;
        if (is_ip) {
            if (X509_VERIFY_PARAM_set1_ip_asc(param, peer_host) != 1) goto fail;
        } else {
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (X509_VERIFY_PARAM_set1_host(param, peer_host, 0) != 1) goto fail;
            if (SSL_set_tlsext_host_name(c->ssl, peer_host) != 1) goto fail;
        }
        /* ClientHello now, so the caller has something to send. */
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        int e = SSL_get_error(c->ssl, r);
        if (r != 1 && e != SSL_ERROR_WANT_READ) {
            rc = SEC_ERR_TLS;
            goto fail;
        }
    }
    ERR_clear_error();
    *out = c;
    return 0;
fail:
    ERR_clear_error();
    SSL_free(c->ssl);
    base_free(c);
    return rc;
}

void sec_tls_conn_free(sec_tls_conn *c) {
    if (c == NULL) return;
    SSL_free(c->ssl);
    base_buf_free(&c->early);
    base_free(c);
}

static int write_all(sec_tls_conn *c, const void *data, size_t len) {
    if (len == 0) return 0;
    size_t written = 0;
    ERR_clear_error();
    if (SSL_write_ex(c->ssl, data, len, &written) != 1 || written != len)
        return conn_fail(c, "TLS write failed");
    return 0;
}

static int advance_handshake(sec_tls_conn *c) {
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->handshake_done = true;
        int rc = write_all(c, c->early.data, c->early.len);
        base_buf_free(&c->early);
        return rc;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    return conn_fail(c, "TLS handshake failed");
}

int sec_tls_conn_feed(sec_tls_conn *c, const void *data, size_t len) {
    if (c->failed) return SEC_ERR_TLS;
    size_t pending = BIO_ctrl_pending(c->rbio);
    if (len > SEC_TLS_IN_PENDING_MAX || pending > SEC_TLS_IN_PENDING_MAX - len) {
        snprintf(c->error, sizeof c->error, "more than %u bytes of TLS input unread",
                 SEC_TLS_IN_PENDING_MAX);
        return SEC_ERR_LIMIT;
    }
    if (len > 0) {
        int n = BIO_write(c->rbio, data, (int)len);
        if (n != (int)len) {
            ERR_clear_error();
            return SEC_ERR_NOMEM;
        }
    }
    if (!c->handshake_done) return advance_handshake(c);
    return 0;
}

int sec_tls_conn_read(sec_tls_conn *c, void *buf, size_t cap, size_t *out_len) {
    *out_len = 0;
    if (c->failed) return SEC_ERR_TLS;
    if (!c->handshake_done) {
        int rc = advance_handshake(c);
        if (rc != 0 || !c->handshake_done) return rc;
    }
    if (cap == 0) return 0;
    ERR_clear_error();
    size_t n = 0;
    if (SSL_read_ex(c->ssl, buf, cap, &n) == 1) {
        *out_len = n;
        return 0;
    }
    int e = SSL_get_error(c->ssl, 0);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        snprintf(c->error, sizeof c->error, "the peer closed the TLS stream");
        return SEC_ERR_CLOSED;
    }
    return conn_fail(c, "TLS read failed");
}

int sec_tls_conn_write(sec_tls_conn *c, const void *data, size_t len) {
    if (c->failed) return SEC_ERR_TLS;
    if (!c->handshake_done) {
        if (len > SEC_TLS_EARLY_PLAIN_MAX || c->early.len > SEC_TLS_EARLY_PLAIN_MAX - len)
            return SEC_ERR_LIMIT;
        return base_buf_append(&c->early, data, len) == 0 ? 0 : SEC_ERR_NOMEM;
    }
    size_t pending = BIO_ctrl_pending(c->wbio);
    if (len > SEC_TLS_OUT_PENDING_MAX || pending > SEC_TLS_OUT_PENDING_MAX - len)
        return SEC_ERR_LIMIT;
    return write_all(c, data, len);
}

size_t sec_tls_conn_pending_out(const sec_tls_conn *c) { return BIO_ctrl_pending(c->wbio); }

size_t sec_tls_conn_take_out(sec_tls_conn *c, void *buf, size_t cap) {
    size_t pending = BIO_ctrl_pending(c->wbio);
    size_t n = BASE_MIN(pending, cap);
    if (n == 0) return 0;
    int r = BIO_read(c->wbio, buf, (int)BASE_MIN(n, (size_t)0x7fffffff));
    return r > 0 ? (size_t)r : 0;
}

int sec_tls_conn_shutdown(sec_tls_conn *c) {
    if (c->failed || !c->handshake_done) return SEC_ERR_STATE;
    ERR_clear_error();
    int r = SSL_shutdown(c->ssl);
    ERR_clear_error();
    return r >= 0 ? 0 : SEC_ERR_TLS;
}

bool sec_tls_conn_handshake_done(const sec_tls_conn *c) { return c->handshake_done; }

const char *sec_tls_conn_error(const sec_tls_conn *c) { return c->error; }

int sec_tls_conn_peer_cn(const sec_tls_conn *c, char *buf, size_t size) {
    if (!c->handshake_done) return SEC_ERR_STATE;
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    if (peer == NULL || SSL_get_verify_result(c->ssl) != X509_V_OK) return SEC_ERR_NOT_FOUND;
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, NULL, 0);
    if (n < 0) {
        ERR_clear_error();
        return SEC_ERR_NOT_FOUND;
    }
    if ((size_t)n + 1 > size) return SEC_ERR_LIMIT;
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf, (int)size);
    if (strlen(buf) != (size_t)n) return SEC_ERR_INVALID; /* embedded NUL */
    return 0;
}

const char *sec_tls_conn_version(const sec_tls_conn *c) { return SSL_get_version(c->ssl); }

bool sec_tls_conn_peer_has_host(const sec_tls_conn *c, const char *host) {
    if (!c->handshake_done || c->failed || host == NULL || host[0] == '\0' ||
        strlen(host) > SEC_HOST_SIZE_MAX)
        return false;
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    if (peer == NULL || SSL_get_verify_result(c->ssl) != X509_V_OK) return false;
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    /* the flags sec_tls_conn_new gives the client's check */
    int rc = is_ip ? X509_check_ip_asc(peer, host, 0)
                   : X509_check_host(peer, host, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL);
    ERR_clear_error();
    return rc == 1;
}

sec_peer_kind sec_tls_conn_peer_kind(const sec_tls_conn *c) {
    if (!c->handshake_done || c->failed) return SEC_PEER_NONE;
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    if (peer == NULL || SSL_get_verify_result(c->ssl) != X509_V_OK) return SEC_PEER_NONE;
    return cert_is_node(peer) ? SEC_PEER_NODE : SEC_PEER_CLIENT;
}
