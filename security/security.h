/*
** security/: what keeps a Meridian cluster closed to strangers (issue 9).
**
**   - Certificates: a cluster CA, node certificates (serverAuth+clientAuth,
**     the node's names and addresses as SAN entries) and client certificates
**     (CN=user, clientAuth). EC P-256 keys, ECDSA-SHA256 signatures. Keys
**     are written 0600 with open(O_CREAT|O_EXCL): never overwritten unless
**     asked to. Used by `meridian cert ...` (cli/cli_cert.c) and the tests.
**   - TLS: server and client contexts (TLS 1.2 minimum, 1.3 preferred, AEAD
**     ciphers only, peer verified against the cluster CA, hostname/IP checked
**     by clients, optional mutual TLS), reloadable on SIGHUP; a TLS stream
**     over memory BIOs for event loops: ciphertext in, plaintext out and
**     back. No socket is touched here: gateway/ and rpc/ move the bytes.
**   - SCRAM-SHA-256 (RFC 5802/7677 as PostgreSQL does it): verifiers in
**     PostgreSQL's format, a pure server state machine (nonces passed in),
**     and a client.
**
** Errors: functions return 0 or a negative sec_error. Functions that take
** `char *err, size_t err_size` also write a one-line message for users
** there (always NUL-terminated when err_size > 0; err may be NULL).
** Thread safety: a sec_tls_ctx may be shared by threads (connections are
** created under its lock); a sec_tls_conn and the SCRAM states belong to
** one thread at a time.
*/
#ifndef MERIDIAN_SECURITY_H
#define MERIDIAN_SECURITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/base.h"

typedef enum sec_error {
    SEC_OK = 0,
    SEC_ERR_NOMEM = -1,       /* out of memory */
    SEC_ERR_INVALID = -2,     /* bad argument (a host name, a user name, ...) */
    SEC_ERR_IO = -3,          /* a file could not be read or written */
    SEC_ERR_EXISTS = -4,      /* a file exists and overwrite was not asked */
    SEC_ERR_NOT_FOUND = -5,   /* a certificate or key file is missing */
    SEC_ERR_CRYPTO = -6,      /* openssl failed (bad key, bad PEM, ...) */
    SEC_ERR_TLS = -7,         /* handshake or record failure, peer rejected */
    SEC_ERR_CLOSED = -8,      /* the peer closed the TLS stream cleanly */
    SEC_ERR_LIMIT = -9,       /* a named limit was hit */
    SEC_ERR_MALFORMED = -10,  /* a malformed SCRAM message or verifier */
    SEC_ERR_AUTH = -11,       /* wrong password (or unknown user) */
    SEC_ERR_STATE = -12,      /* call out of order (a bug in the caller) */
} sec_error;

/* Static text for a sec_error. */
const char *sec_error_str(int rc);

/* ======================= certificates ================================== */

#define SEC_CA_CERT_FILE "ca.crt"
#define SEC_NODE_CERT_FILE "node.crt"
#define SEC_NODE_KEY_FILE "node.key"
#define SEC_HOSTS_MAX 64          /* SAN entries of one node certificate */
#define SEC_HOST_SIZE_MAX 253     /* a DNS name or an IP literal */
#define SEC_USER_SIZE_MAX 63      /* a client certificate's user name */
#define SEC_PATH_SIZE_MAX 4096
#define SEC_ERR_MSG_SIZE 256      /* a good size for err buffers */
#define SEC_CA_LIFETIME_DEFAULT_S (10LL * 365 * 24 * 3600)
#define SEC_CERT_LIFETIME_DEFAULT_S (5LL * 365 * 24 * 3600)

typedef struct sec_cert_options {
    /* Validity: [not_before, not_before + lifetime). not_before_unix_s == 0
    ** means now minus one hour (tolerates clock offsets between machines);
    ** lifetime_s == 0 means the default for the kind of certificate. Tests
    ** use a past window to make an expired certificate. */
    int64_t not_before_unix_s;
    int64_t lifetime_s;
    bool overwrite; /* replace existing files instead of failing */
} sec_cert_options;

/* ca.crt in certs_dir (created if missing, 0700) and the CA key at
** ca_key_path (0600). Refuses (SEC_ERR_EXISTS) when either exists, unless
** opt->overwrite. opt may be NULL (defaults). */
int sec_cert_create_ca(const char *certs_dir, const char *ca_key_path, const sec_cert_options *opt,
                       char *err, size_t err_size);

/* node.crt and node.key in certs_dir, signed by ca.crt/ca_key_path. hosts:
** 1..SEC_HOSTS_MAX DNS names or IP literals (v4/v6), all put in the SAN;
** CN=node; EKU serverAuth and clientAuth. */
int sec_cert_create_node(const char *certs_dir, const char *ca_key_path, const char *const *hosts,
                         size_t host_count, const sec_cert_options *opt, char *err,
                         size_t err_size);

/* client.USER.crt and client.USER.key in certs_dir; CN=USER, EKU clientAuth.
** user: 1..SEC_USER_SIZE_MAX of [A-Za-z0-9_.-], not starting with '.' or '-',
** and not "node" (the CN of node certificates). */
int sec_cert_create_client(const char *certs_dir, const char *ca_key_path, const char *user,
                           const sec_cert_options *opt, char *err, size_t err_size);

/* Print every *.crt of certs_dir to out: file, kind, subject CN, SAN,
** validity and whether it is expired, and the mode of its key. */
int sec_cert_list(const char *certs_dir, FILE *out, char *err, size_t err_size);

/* ======================= TLS =========================================== */

/* owner: the creator, free with sec_tls_ctx_free (connections made from it
** keep what they need and may outlive it). */
typedef struct sec_tls_ctx sec_tls_ctx;
/* owner: the creator, free with sec_tls_conn_free. */
typedef struct sec_tls_conn sec_tls_conn;

typedef struct sec_tls_options {
    /* File stem in certs_dir of our certificate and key: "node" for nodes,
    ** "client.root" for a client of user root. NULL: "node" for a server;
    ** no certificate at all for a client. */
    const char *cert_name;
    /* Server: fail the handshake of a client that presents no certificate
    ** (mutual TLS, node-to-node). Without it a certificate is still asked
    ** for and verified when presented. */
    bool require_peer_cert;
    /* Server, node-to-node: the client must present a node certificate
    ** (CN=node with EKU serverAuth and clientAuth, as sec_cert_create_node
    ** makes), else the handshake fails. Implies require_peer_cert. */
    bool require_peer_node;
    /* Server, with require_peer_node: also accept a client (user)
    ** certificate of the CA (EKU clientAuth, a CN). The caller must then
    ** tell the two apart (sec_tls_conn_peer_kind) and limit what a client
    ** may do: rpc/ lets it call only the admin methods (docs/security.md). */
    bool allow_peer_client;
} sec_tls_options;

/* Read ca.crt and <cert_name>.crt/.key from certs_dir. opt may be NULL.
** *out: owner caller, sec_tls_ctx_free. err as above. */
int sec_tls_server_ctx_new(const char *certs_dir, const sec_tls_options *opt, sec_tls_ctx **out,
                           char *err, size_t err_size);
int sec_tls_client_ctx_new(const char *certs_dir, const sec_tls_options *opt, sec_tls_ctx **out,
                           char *err, size_t err_size);
/* Re-read the files (SIGHUP). On success new connections use the new
** certificates; live ones keep theirs. On failure nothing changes. */
int sec_tls_reload(sec_tls_ctx *ctx, char *err, size_t err_size);
void sec_tls_ctx_free(sec_tls_ctx *ctx);

/* Limits of one stream. */
#define SEC_TLS_IN_PENDING_MAX (1u << 20)   /* ciphertext fed but not yet read */
#define SEC_TLS_EARLY_PLAIN_MAX (1u << 20)  /* plaintext written before the handshake ends */
#define SEC_TLS_OUT_PENDING_MAX (16u << 20) /* ciphertext not yet taken */

/* A stream. peer_host: for a client, the name or IP literal the peer's
** certificate must carry (required); for a server, NULL. A client queues its
** ClientHello at once: send what sec_tls_conn_take_out gives.
** Usage from an event loop: on bytes from the socket -> feed, then read
** until it returns 0; to send -> write; after EVERY call, while
** pending_out > 0 -> take_out and write those bytes to the socket. */
int sec_tls_conn_new(sec_tls_ctx *ctx, bool is_server, const char *peer_host,
                     sec_tls_conn **out);
void sec_tls_conn_free(sec_tls_conn *conn);

/* Ciphertext from the network; advances the handshake. 0, SEC_ERR_TLS
** (handshake failed: see sec_tls_conn_error; an alert may be pending out),
** SEC_ERR_LIMIT, SEC_ERR_NOMEM. */
int sec_tls_conn_feed(sec_tls_conn *conn, const void *data, size_t len);
/* Plaintext received: *out_len bytes (0: nothing yet). 0, SEC_ERR_CLOSED
** (close_notify received), SEC_ERR_TLS. */
int sec_tls_conn_read(sec_tls_conn *conn, void *buf, size_t cap, size_t *out_len);
/* Plaintext to send, all of it (queued until the handshake is done).
** 0, SEC_ERR_LIMIT (take_out has not kept up), SEC_ERR_TLS, SEC_ERR_NOMEM. */
int sec_tls_conn_write(sec_tls_conn *conn, const void *data, size_t len);
/* Ciphertext waiting to go to the network. */
size_t sec_tls_conn_pending_out(const sec_tls_conn *conn);
/* Move up to cap bytes of it into buf; returns how many. */
size_t sec_tls_conn_take_out(sec_tls_conn *conn, void *buf, size_t cap);
/* Queue a close_notify. */
int sec_tls_conn_shutdown(sec_tls_conn *conn);

bool sec_tls_conn_handshake_done(const sec_tls_conn *conn);
/* The last failure, for logs ("certificate has expired", ...); "" if none.
** Valid until the next call on conn. */
const char *sec_tls_conn_error(const sec_tls_conn *conn);
/* The peer certificate's CN (client-certificate login: the user name).
** 0, SEC_ERR_NOT_FOUND (no certificate), SEC_ERR_LIMIT (does not fit). */
int sec_tls_conn_peer_cn(const sec_tls_conn *conn, char *buf, size_t size);
/* "TLSv1.3", ... (static). */
const char *sec_tls_conn_version(const sec_tls_conn *conn);
/* Whether the verified peer certificate's SAN carries host (an IP literal:
** an IP entry; else a DNS name, no partial wildcards), the check a client
** makes of the server it dialed. False before the handshake is done or
** without a verified certificate. rpc/ binds a node's claimed id to it. */
bool sec_tls_conn_peer_has_host(const sec_tls_conn *conn, const char *host);

/* What the verified peer certificate is: a node certificate (CN=node with
** EKU serverAuth), anything else the CA signed (a client certificate: its
** CN is the user, sec_tls_conn_peer_cn), or none (no certificate, not
** verified, or the handshake is not done). */
typedef enum sec_peer_kind {
    SEC_PEER_NONE = 0,
    SEC_PEER_NODE = 1,
    SEC_PEER_CLIENT = 2,
} sec_peer_kind;
sec_peer_kind sec_tls_conn_peer_kind(const sec_tls_conn *conn);

/* ======================= SCRAM-SHA-256 ================================= */

#define SEC_SCRAM_MECHANISM "SCRAM-SHA-256"
#define SEC_SCRAM_KEY_SIZE 32
#define SEC_SCRAM_SALT_SIZE 16            /* what we generate */
#define SEC_SCRAM_SALT_SIZE_MAX 64        /* what we accept */
#define SEC_SCRAM_ITERATIONS_DEFAULT 4096 /* PostgreSQL's default */
#define SEC_SCRAM_ITERATIONS_MAX 1000000  /* clients refuse more (DoS) */
#define SEC_SCRAM_NONCE_RAW_SIZE 18       /* random bytes in a nonce, as PostgreSQL */
#define SEC_SCRAM_NONCE_SIZE_MAX 128      /* base64 nonce text, accepted */
#define SEC_SCRAM_MESSAGE_SIZE_MAX 1024   /* any SCRAM message, accepted */
#define SEC_SCRAM_VERIFIER_SIZE_MAX 256

/* A verifier: "SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>". */
typedef struct sec_scram_verifier {
    int iterations;
    uint8_t salt[SEC_SCRAM_SALT_SIZE_MAX];
    size_t salt_len;
    uint8_t stored_key[SEC_SCRAM_KEY_SIZE];
    uint8_t server_key[SEC_SCRAM_KEY_SIZE];
} sec_scram_verifier;

/* Pure: the verifier of password with this salt and iteration count.
** Passwords are used as their bytes (PostgreSQL applies SASLprep, which is
** the identity on ASCII; see docs/security.md). out: at least
** SEC_SCRAM_VERIFIER_SIZE_MAX bytes. */
int sec_scram_verifier_make(const char *password, const uint8_t *salt, size_t salt_len,
                            int iterations, char *out, size_t out_size);
/* The same with SEC_SCRAM_SALT_SIZE random bytes from the OS and the
** default iterations (not pure). */
int sec_scram_verifier_new(const char *password, char *out, size_t out_size);
/* 0 or SEC_ERR_MALFORMED. */
int sec_scram_verifier_parse(const char *text, sec_scram_verifier *out);
/* A made-up verifier for an unknown user, stable per user name so that
** probing cannot tell users apart (secret: per-node random bytes). */
void sec_scram_mock_verifier(const char *user, const uint8_t secret[32],
                             sec_scram_verifier *out);

/* Nonce text from random bytes (base64; raw_len <= 96). out_size must hold
** 4*ceil(raw_len/3)+1. */
int sec_scram_nonce_encode(const uint8_t *raw, size_t raw_len, char *out, size_t out_size);

/* Returned by the step functions when another message must be exchanged. */
#define SEC_SCRAM_CONTINUE 1

/* Server side. Pure. State lives in the struct (no allocation besides out).
** step #1: client-first in -> server-first out, SEC_SCRAM_CONTINUE
** step #2: client-final in -> server-final out, 0 (authenticated)
** Errors: SEC_ERR_MALFORMED (s->error says why), SEC_ERR_AUTH (wrong
** password, or unknown user: same result), SEC_ERR_STATE. After an error the
** exchange is over. */
typedef struct sec_scram_server {
    int state;
    bool mock;            /* unknown user: fail at the proof */
    bool cbind_y;         /* client sent "y,,", not "n,," */
    sec_scram_verifier verifier;
    char nonce[2 * SEC_SCRAM_NONCE_SIZE_MAX + 1];   /* client + server */
    char client_first_bare[SEC_SCRAM_MESSAGE_SIZE_MAX + 1];
    char server_first[SEC_SCRAM_MESSAGE_SIZE_MAX + 1];
    const char *error;    /* static text after SEC_ERR_MALFORMED */
} sec_scram_server;

/* verifier: the user's, or NULL for an unknown user together with a mock
** from sec_scram_mock_verifier in `mock` (then the exchange fails as a wrong
** password would). server_nonce: printable, no ',' (sec_scram_nonce_encode). */
int sec_scram_server_init(sec_scram_server *s, const sec_scram_verifier *verifier,
                          const sec_scram_verifier *mock, const char *server_nonce);
/* in: the message (need not be NUL-terminated). out: appended to. */
int sec_scram_server_step(sec_scram_server *s, const void *in, size_t in_len, base_buf *out);

/* Client side (tests, and the shell later). Pure.
** step #1 with in = NULL: client-first out, SEC_SCRAM_CONTINUE
** step #2: server-first in -> client-final out, SEC_SCRAM_CONTINUE
** step #3: server-final in -> 0 (the server proved it knows the password)
** Errors: SEC_ERR_MALFORMED, SEC_ERR_AUTH (server signature wrong),
** SEC_ERR_LIMIT (iteration count above SEC_SCRAM_ITERATIONS_MAX). */
typedef struct sec_scram_client {
    int state;
    /* Send "y,," instead of "n,,": "I could bind to the channel but you do
    ** not offer it", what libpq says over TLS. Set after init, before step 1. */
    bool cbind_y;
    char password[1024];
    char user[SEC_USER_SIZE_MAX + 1];
    char client_nonce[SEC_SCRAM_NONCE_SIZE_MAX + 1];
    char client_first_bare[SEC_SCRAM_MESSAGE_SIZE_MAX + 1];
    uint8_t server_signature[SEC_SCRAM_KEY_SIZE];
    const char *error;
} sec_scram_client;

/* user may be "" (PostgreSQL takes the user from the startup packet). */
int sec_scram_client_init(sec_scram_client *c, const char *user, const char *password,
                          const char *client_nonce);
int sec_scram_client_step(sec_scram_client *c, const void *in, size_t in_len, base_buf *out);
/* Wipe the password. */
void sec_scram_client_clear(sec_scram_client *c);

/* ======================= host-based authentication rules ================= */

/* A subset of PostgreSQL's pg_hba.conf, the text of the cluster setting
** server.host_based_authentication.configuration (sec_hba.c; docs/
** security.md "Host-based authentication"). One rule per line:
**   host | hostssl | hostnossl   DATABASE  USER  ADDRESS  METHOD
**   local                        DATABASE  USER           METHOD
** DATABASE, USER: "all" or names separated by commas (no spaces); ADDRESS:
** "all", or an IPv4/IPv6 address with an optional "/prefix length" (without
** one: that host only); METHOD: cert, password, scram-sha-256 (= password),
** cert-password, trust, reject. '#' starts a comment; blank lines are
** skipped. The first rule whose connection type, database, user and address
** match decides; none: refused. Names compare exactly (as stored: lower case
** unless created quoted). Pure: no I/O. */
#define SEC_HBA_TEXT_BYTES_MAX 4096  /* the whole configuration */
#define SEC_HBA_RULES_MAX 64         /* rules in it */
#define SEC_HBA_FIELD_BYTES_MAX 255  /* one DATABASE or USER field */

typedef enum sec_hba_method {
    SEC_HBA_CERT = 1,          /* a client certificate whose CN is the user */
    SEC_HBA_PASSWORD,          /* SCRAM-SHA-256, even when a certificate came */
    SEC_HBA_CERT_PASSWORD,     /* the certificate if one names the user, else password */
    SEC_HBA_TRUST,             /* no credentials */
    SEC_HBA_REJECT,            /* refused */
} sec_hba_method;

typedef enum sec_hba_conn_type {
    SEC_HBA_LOCAL = 1, /* a Unix socket (Meridian listens on none: never matches) */
    SEC_HBA_HOST,      /* TCP, with or without TLS */
    SEC_HBA_HOSTSSL,   /* TCP with TLS */
    SEC_HBA_HOSTNOSSL, /* TCP without TLS */
} sec_hba_conn_type;

typedef struct sec_hba_rule {
    int line; /* 1-based line of the text */
    sec_hba_conn_type type;
    char databases[SEC_HBA_FIELD_BYTES_MAX + 1]; /* "all" or "a,b,c" */
    char users[SEC_HBA_FIELD_BYTES_MAX + 1];
    bool addr_all;
    int family;      /* 4 or 6 (addr_all false) */
    uint8_t addr[16];
    int prefix_bits; /* of addr that must match */
    sec_hba_method method;
} sec_hba_rule;

typedef struct sec_hba {
    sec_hba_rule rules[SEC_HBA_RULES_MAX];
    int n;
} sec_hba;

/* What one connection is, for matching. */
typedef struct sec_hba_conn {
    bool local;           /* a Unix socket */
    bool tls;
    const char *database;
    const char *user;
    const char *addr;     /* the client's IP as text ("" or NULL: unknown, matches "all" only) */
} sec_hba_conn;

/* Parse text (NUL-terminated, at most SEC_HBA_TEXT_BYTES_MAX bytes) into
** *out (owner: caller, sec_hba_free). "" or only comments: a configuration
** with no rule (n == 0). SEC_OK; SEC_ERR_INVALID with a message naming the
** bad line ("line 2 (host all all 10.0.0.1 foo): unknown authentication
** method \"foo\"") in err; SEC_ERR_NOMEM. */
int sec_hba_parse(const char *text, sec_hba **out, char *err, size_t err_size);
void sec_hba_free(sec_hba *h); /* NULL: nothing */
/* The index of the first rule matching c, or -1. */
int sec_hba_match(const sec_hba *h, const sec_hba_conn *c);
/* "cert", "password", ... (static). */
const char *sec_hba_method_name(sec_hba_method m);

#endif
