/*
** security/sec_cert.c: the cluster CA, node and client certificates.
**
** Files in certs_dir:
**   ca.crt                     the cluster CA (PEM), 0644
**   node.crt, node.key         this node: CN=node, SAN = its names and IPs,
**                              EKU serverAuth+clientAuth
**   client.USER.crt/.key       a user: CN=USER, EKU clientAuth
** The CA key lives wherever --ca-key says (keep it off the nodes).
** Keys: EC P-256, unencrypted PKCS#8 PEM, mode 0600, created with
** open(O_CREAT|O_EXCL|O_NOFOLLOW, 0600) then fchmod 0600 (umask-proof).
** Signatures: ECDSA with SHA-256. Serial numbers: 127 random bits.
**
** Invariants: an existing file is never replaced unless overwrite is asked
** (then it is unlinked and recreated, never opened through a symlink); the
** existence of every output file is checked before the first one is
** written, so a refusal writes nothing; host and user names are validated
** and put in certificates as typed values (never through a config string).
*/
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "security/sec_int.h"

#define CLOCK_SKEW_S 3600 /* not_before default: an hour ago */
#define LIST_FILES_MAX 1024

/* ---- errors ---------------------------------------------------------------- */

const char *sec_error_str(int rc) {
    switch (rc) {
    case SEC_OK: return "ok";
    case SEC_ERR_NOMEM: return "out of memory";
    case SEC_ERR_INVALID: return "invalid argument";
    case SEC_ERR_IO: return "I/O error";
    case SEC_ERR_EXISTS: return "file exists";
    case SEC_ERR_NOT_FOUND: return "not found";
    case SEC_ERR_CRYPTO: return "cryptographic library error";
    case SEC_ERR_TLS: return "TLS failure";
    case SEC_ERR_CLOSED: return "TLS stream closed";
    case SEC_ERR_LIMIT: return "limit exceeded";
    case SEC_ERR_MALFORMED: return "malformed message";
    case SEC_ERR_AUTH: return "authentication failed";
    case SEC_ERR_STATE: return "call out of order";
    default: return "unknown error";
    }
}

int sec__fail(int rc, char *err, size_t err_size, const char *fmt, ...) {
    if (err != NULL && err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int sec__fail_ssl(int rc, char *err, size_t err_size, const char *what) {
    unsigned long e = ERR_peek_last_error();
    char buf[200] = "";
    if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return sec__fail(rc, err, err_size, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

/* ---- files ---------------------------------------------------------------- */

static int path_join(char *out, const char *dir, const char *name, char *err, size_t err_size) {
    int n = snprintf(out, SEC_PATH_SIZE_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= SEC_PATH_SIZE_MAX)
        return sec__fail(SEC_ERR_INVALID, err, err_size, "path too long: %s/%s", dir, name);
    return 0;
}

static int ensure_dir(const char *dir, char *err, size_t err_size) {
    if (mkdir(dir, 0700) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
        return sec__fail(SEC_ERR_IO, err, err_size, "%s is not a directory", dir);
    }
    return sec__fail(SEC_ERR_IO, err, err_size, "cannot create directory %s: %s", dir,
                     strerror(errno));
}

/* Refuse when path exists and overwrite is off. */
static int check_absent(const char *path, bool overwrite, char *err, size_t err_size) {
    struct stat st;
    if (overwrite || lstat(path, &st) != 0) return 0;
    return sec__fail(SEC_ERR_EXISTS, err, err_size,
                     "%s already exists (use --overwrite to replace it)", path);
}

/* Write data to a new file with this mode. */
static int write_file(const char *path, const void *data, size_t len, mode_t mode, bool overwrite,
                      char *err, size_t err_size) {
    if (overwrite && unlink(path) != 0 && errno != ENOENT)
        return sec__fail(SEC_ERR_IO, err, err_size, "cannot remove %s: %s", path, strerror(errno));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        int rc = errno == EEXIST ? SEC_ERR_EXISTS : SEC_ERR_IO;
        return sec__fail(rc, err, err_size, "cannot create %s: %s", path, strerror(errno));
    }
    int rc = 0;
    if (fchmod(fd, mode) != 0) rc = SEC_ERR_IO;
    const uint8_t *p = data;
    for (size_t off = 0; rc == 0 && off < len;) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) rc = SEC_ERR_IO;
        else off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0) rc = SEC_ERR_IO;
    int saved = errno;
    if (close(fd) != 0 && rc == 0) rc = SEC_ERR_IO;
    if (rc != 0) {
        unlink(path);
        return sec__fail(rc, err, err_size, "cannot write %s: %s", path, strerror(saved));
    }
    return 0;
}

static int write_pem(const char *path, EVP_PKEY *key, X509 *cert, bool overwrite, char *err,
                     size_t err_size) {
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) return sec__fail(SEC_ERR_NOMEM, err, err_size, "out of memory");
    int ok = key ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
                 : PEM_write_bio_X509(bio, cert);
    int rc;
    if (!ok) {
        rc = sec__fail_ssl(SEC_ERR_CRYPTO, err, err_size, "cannot encode PEM");
    } else {
        char *data = NULL;
        long len = BIO_get_mem_data(bio, &data);
        rc = write_file(path, data, (size_t)len, key ? 0600 : 0644, overwrite, err, err_size);
    }
    BIO_free(bio);
    return rc;
}

static int read_key(const char *path, EVP_PKEY **out, char *err, size_t err_size) {
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return sec__fail(errno == ENOENT ? SEC_ERR_NOT_FOUND : SEC_ERR_IO, err, err_size,
                         "cannot open key %s: %s", path, strerror(errno));
    *out = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (*out == NULL) return sec__fail_ssl(SEC_ERR_CRYPTO, err, err_size, "cannot read key");
    return 0;
}

static int read_cert(const char *path, X509 **out, char *err, size_t err_size) {
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return sec__fail(errno == ENOENT ? SEC_ERR_NOT_FOUND : SEC_ERR_IO, err, err_size,
                         "cannot open certificate %s: %s", path, strerror(errno));
    *out = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (*out == NULL)
        return sec__fail_ssl(SEC_ERR_CRYPTO, err, err_size, "cannot read certificate");
    return 0;
}

/* ---- building certificates -------------------------------------------------- */

static EVP_PKEY *new_key(void) { return EVP_EC_gen("P-256"); }

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A certificate for key, CN=cn, signed by issuer_key (self-signed when
** issuer is NULL). Extensions by kind: 0 CA, 1 node, 2 client. */
static X509 *build_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                        const sec_cert_options *opt, int64_t default_lifetime_s, int kind,
                        GENERAL_NAMES *san) {
    X509 *cert = X509_new();
    BIGNUM *serial = BN_new();
    bool ok = false;
    if (cert == NULL || serial == NULL) goto cleanup;
    if (!X509_set_version(cert, 2)) goto cleanup;
    if (!BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
        BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) == NULL)
        goto cleanup;
    int64_t nb = opt && opt->not_before_unix_s ? opt->not_before_unix_s
                                               : (int64_t)time(NULL) - CLOCK_SKEW_S;
    int64_t life = opt && opt->lifetime_s > 0 ? opt->lifetime_s : default_lifetime_s;
    if (ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)nb) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)(nb + life)) == NULL)
        goto cleanup;
    if (!X509_set_pubkey(cert, key)) goto cleanup;
    X509_NAME *name = X509_get_subject_name(cert);
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Meridian",
                                    -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0))
        goto cleanup;
    if (!X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name)) goto cleanup;
    X509 *iss = issuer ? issuer : cert;
    if (add_ext(cert, iss, NID_subject_key_identifier, "hash") != 0) goto cleanup;
    if (add_ext(cert, iss, NID_authority_key_identifier, "keyid:always") != 0) goto cleanup;
    if (kind == 0) {
        if (add_ext(cert, iss, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
            add_ext(cert, iss, NID_key_usage, "critical,keyCertSign,cRLSign") != 0)
            goto cleanup;
    } else {
        if (add_ext(cert, iss, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
            add_ext(cert, iss, NID_key_usage, "critical,digitalSignature,keyEncipherment") != 0 ||
            add_ext(cert, iss, NID_ext_key_usage,
                    kind == 1 ? "serverAuth,clientAuth" : "clientAuth") != 0)
            goto cleanup;
    }
    if (san != NULL && !X509_add1_ext_i2d(cert, NID_subject_alt_name, san, 0, X509V3_ADD_DEFAULT))
        goto cleanup;
    if (!X509_sign(cert, issuer_key ? issuer_key : key, EVP_sha256())) goto cleanup;
    ok = true;
cleanup:
    BN_free(serial);
    if (!ok) {
        X509_free(cert);
        cert = NULL;
    }
    return cert;
}

static bool valid_host(const char *h) {
    size_t n = strlen(h);
    if (n == 0 || n > SEC_HOST_SIZE_MAX) return false;
    for (const char *p = h; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == '*' || c == ':'))
            return false;
    }
    return true;
}

static bool valid_user(const char *u) {
    size_t n = strlen(u);
    if (n == 0 || n > SEC_USER_SIZE_MAX || u[0] == '.' || u[0] == '-') return false;
    if (strcmp(u, "node") == 0) return false; /* CN=node means a node certificate */
    for (const char *p = u; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return false;
    }
    return true;
}

static GENERAL_NAMES *make_san(const char *const *hosts, size_t count) {
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    if (names == NULL) return NULL;
    for (size_t i = 0; i < count; i++) {
        GENERAL_NAME *gn = GENERAL_NAME_new();
        if (gn == NULL) goto fail;
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(hosts[i]); /* NULL: not an IP literal */
        if (ip != NULL) {
            GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
        } else {
            ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
            if (dns == NULL || !ASN1_STRING_set(dns, hosts[i], (int)strlen(hosts[i]))) {
                ASN1_IA5STRING_free(dns);
                GENERAL_NAME_free(gn);
                goto fail;
            }
            GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
        }
        if (!sk_GENERAL_NAME_push(names, gn)) {
            GENERAL_NAME_free(gn);
            goto fail;
        }
    }
    return names;
fail:
    GENERAL_NAMES_free(names);
    return NULL;
}

/* Load the CA (ca.crt in certs_dir, key at ca_key_path) and check they match. */
static int load_ca(const char *certs_dir, const char *ca_key_path, X509 **ca, EVP_PKEY **ca_key,
                   char *err, size_t err_size) {
    char path[SEC_PATH_SIZE_MAX];
    int rc = path_join(path, certs_dir, SEC_CA_CERT_FILE, err, err_size);
    if (rc != 0) return rc;
    *ca = NULL;
    *ca_key = NULL;
    if ((rc = read_cert(path, ca, err, err_size)) != 0) goto fail;
    if ((rc = read_key(ca_key_path, ca_key, err, err_size)) != 0) goto fail;
    if (X509_check_private_key(*ca, *ca_key) != 1) {
        ERR_clear_error();
        rc = sec__fail(SEC_ERR_CRYPTO, err, err_size, "CA key %s does not match %s", ca_key_path,
                       path);
        goto fail;
    }
    return 0;
fail:
    X509_free(*ca);
    EVP_PKEY_free(*ca_key);
    *ca = NULL;
    *ca_key = NULL;
    return rc;
}

int sec_cert_create_ca(const char *certs_dir, const char *ca_key_path, const sec_cert_options *opt,
                       char *err, size_t err_size) {
    if (certs_dir == NULL || ca_key_path == NULL)
        return sec__fail(SEC_ERR_INVALID, err, err_size, "certs dir and CA key path are required");
    bool overwrite = opt && opt->overwrite;
    char crt[SEC_PATH_SIZE_MAX];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int rc;
    if ((rc = ensure_dir(certs_dir, err, err_size)) != 0) return rc;
    if ((rc = path_join(crt, certs_dir, SEC_CA_CERT_FILE, err, err_size)) != 0) return rc;
    if ((rc = check_absent(crt, overwrite, err, err_size)) != 0) return rc;
    if ((rc = check_absent(ca_key_path, overwrite, err, err_size)) != 0) return rc;
    rc = SEC_ERR_CRYPTO;
    if ((key = new_key()) == NULL) {
        rc = sec__fail_ssl(rc, err, err_size, "cannot generate a key");
        goto cleanup;
    }
    cert = build_cert(key, "Meridian CA", NULL, NULL, opt, SEC_CA_LIFETIME_DEFAULT_S, 0, NULL);
    if (cert == NULL) {
        rc = sec__fail_ssl(rc, err, err_size, "cannot build the CA certificate");
        goto cleanup;
    }
    if ((rc = write_pem(ca_key_path, key, NULL, overwrite, err, err_size)) != 0) goto cleanup;
    if ((rc = write_pem(crt, NULL, cert, overwrite, err, err_size)) != 0) {
        unlink(ca_key_path);
        goto cleanup;
    }
cleanup:
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

/* A leaf certificate and key named <stem>.crt/.key in certs_dir. */
static int create_leaf(const char *certs_dir, const char *ca_key_path, const char *stem,
                       const char *cn, int kind, GENERAL_NAMES *san, const sec_cert_options *opt,
                       char *err, size_t err_size) {
    bool overwrite = opt && opt->overwrite;
    char crt[SEC_PATH_SIZE_MAX], keyp[SEC_PATH_SIZE_MAX], name[256];
    X509 *ca = NULL, *cert = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    int rc;
    snprintf(name, sizeof name, "%s.crt", stem);
    if ((rc = path_join(crt, certs_dir, name, err, err_size)) != 0) return rc;
    snprintf(name, sizeof name, "%s.key", stem);
    if ((rc = path_join(keyp, certs_dir, name, err, err_size)) != 0) return rc;
    if ((rc = check_absent(crt, overwrite, err, err_size)) != 0) return rc;
    if ((rc = check_absent(keyp, overwrite, err, err_size)) != 0) return rc;
    if ((rc = load_ca(certs_dir, ca_key_path, &ca, &ca_key, err, err_size)) != 0) return rc;
    if ((key = new_key()) == NULL) {
        rc = sec__fail_ssl(SEC_ERR_CRYPTO, err, err_size, "cannot generate a key");
        goto cleanup;
    }
    cert = build_cert(key, cn, ca, ca_key, opt, SEC_CERT_LIFETIME_DEFAULT_S, kind, san);
    if (cert == NULL) {
        rc = sec__fail_ssl(SEC_ERR_CRYPTO, err, err_size, "cannot build the certificate");
        goto cleanup;
    }
    if ((rc = write_pem(keyp, key, NULL, overwrite, err, err_size)) != 0) goto cleanup;
    if ((rc = write_pem(crt, NULL, cert, overwrite, err, err_size)) != 0) {
        unlink(keyp);
        goto cleanup;
    }
cleanup:
    X509_free(ca);
    X509_free(cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    return rc;
}

int sec_cert_create_node(const char *certs_dir, const char *ca_key_path, const char *const *hosts,
                         size_t host_count, const sec_cert_options *opt, char *err,
                         size_t err_size) {
    if (certs_dir == NULL || ca_key_path == NULL)
        return sec__fail(SEC_ERR_INVALID, err, err_size, "certs dir and CA key path are required");
    if (host_count == 0 || host_count > SEC_HOSTS_MAX)
        return sec__fail(SEC_ERR_INVALID, err, err_size, "a node certificate needs 1 to %d hosts",
                         SEC_HOSTS_MAX);
    for (size_t i = 0; i < host_count; i++) {
        if (!valid_host(hosts[i]))
            return sec__fail(SEC_ERR_INVALID, err, err_size,
                             "invalid host \"%s\": expected a DNS name or an IP address",
                             hosts[i]);
        if (strchr(hosts[i], ':') != NULL) { /* only as an IPv6 literal */
            struct in6_addr a;
            if (inet_pton(AF_INET6, hosts[i], &a) != 1)
                return sec__fail(SEC_ERR_INVALID, err, err_size, "invalid IPv6 address \"%s\"",
                                 hosts[i]);
        }
    }
    GENERAL_NAMES *san = make_san(hosts, host_count);
    if (san == NULL) return sec__fail(SEC_ERR_NOMEM, err, err_size, "out of memory");
    int rc = create_leaf(certs_dir, ca_key_path, "node", "node", 1, san, opt, err, err_size);
    GENERAL_NAMES_free(san);
    return rc;
}

int sec_cert_create_client(const char *certs_dir, const char *ca_key_path, const char *user,
                           const sec_cert_options *opt, char *err, size_t err_size) {
    if (certs_dir == NULL || ca_key_path == NULL || user == NULL)
        return sec__fail(SEC_ERR_INVALID, err, err_size,
                         "certs dir, CA key path and user are required");
    if (!valid_user(user))
        return sec__fail(SEC_ERR_INVALID, err, err_size,
                         "invalid user name \"%s\": 1 to %d of A-Z a-z 0-9 _ . - (and not "
                         "\"node\")",
                         user, SEC_USER_SIZE_MAX);
    char stem[SEC_USER_SIZE_MAX + 16];
    snprintf(stem, sizeof stem, "client.%s", user);
    return create_leaf(certs_dir, ca_key_path, stem, user, 2, NULL, opt, err, err_size);
}

/* ---- list ---------------------------------------------------------------- */

static void print_time(FILE *out, const ASN1_TIME *t) {
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) == 1) {
        char buf[64];
        strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
        fputs(buf, out);
    } else {
        fputs("?", out);
    }
}

static void list_one(const char *dir, const char *file, FILE *out) {
    char path[SEC_PATH_SIZE_MAX];
    X509 *cert = NULL;
    char e[SEC_ERR_MSG_SIZE];
    if (path_join(path, dir, file, NULL, 0) != 0) return;
    if (read_cert(path, &cert, e, sizeof e) != 0) {
        fprintf(out, "%s\n  error: %s\n", file, e);
        return;
    }
    const char *kind = strcmp(file, SEC_CA_CERT_FILE) == 0       ? "CA"
                       : strcmp(file, SEC_NODE_CERT_FILE) == 0   ? "node"
                       : strncmp(file, "client.", 7) == 0        ? "client"
                                                                 : "other";
    char cn[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    fprintf(out, "%s\n  kind: %s\n  subject CN: %s\n  valid: ", file, kind, cn);
    print_time(out, X509_get0_notBefore(cert));
    fputs(" .. ", out);
    print_time(out, X509_get0_notAfter(cert));
    time_t now = time(NULL);
    if (X509_cmp_time(X509_get0_notAfter(cert), &now) < 0) fputs("  EXPIRED", out);
    else if (X509_cmp_time(X509_get0_notBefore(cert), &now) > 0) fputs("  NOT YET VALID", out);
    fputc('\n', out);
    GENERAL_NAMES *san = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (san != NULL) {
        fputs("  hosts:", out);
        for (int i = 0; i < sk_GENERAL_NAME_num(san); i++) {
            GENERAL_NAME *gn = sk_GENERAL_NAME_value(san, i);
            if (gn->type == GEN_DNS) {
                fprintf(out, " %.*s", ASN1_STRING_length(gn->d.dNSName),
                        (const char *)ASN1_STRING_get0_data(gn->d.dNSName));
            } else if (gn->type == GEN_IPADD) {
                int len = ASN1_STRING_length(gn->d.iPAddress);
                const unsigned char *b = ASN1_STRING_get0_data(gn->d.iPAddress);
                char txt[INET6_ADDRSTRLEN] = "?";
                if (len == 4) inet_ntop(AF_INET, b, txt, sizeof txt);
                else if (len == 16) inet_ntop(AF_INET6, b, txt, sizeof txt);
                fprintf(out, " %s", txt);
            }
        }
        fputc('\n', out);
        GENERAL_NAMES_free(san);
    }
    /* the key beside it */
    size_t n = strlen(file);
    if (n > 4 && strcmp(file, SEC_CA_CERT_FILE) != 0) {
        char keyname[512];
        snprintf(keyname, sizeof keyname, "%.*s.key", (int)(n - 4), file);
        struct stat st;
        if (path_join(path, dir, keyname, NULL, 0) == 0 && stat(path, &st) == 0) {
            unsigned mode = (unsigned)(st.st_mode & 0777);
            fprintf(out, "  key: %s (mode %04o%s)\n", keyname, mode,
                    (mode & 077) ? ", TOO OPEN: chmod 600" : "");
        } else {
            fprintf(out, "  key: %s missing\n", keyname);
        }
    }
    X509_free(cert);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sec_cert_list(const char *certs_dir, FILE *out, char *err, size_t err_size) {
    if (certs_dir == NULL || out == NULL)
        return sec__fail(SEC_ERR_INVALID, err, err_size, "certs dir is required");
    DIR *d = opendir(certs_dir);
    if (d == NULL)
        return sec__fail(errno == ENOENT ? SEC_ERR_NOT_FOUND : SEC_ERR_IO, err, err_size,
                         "cannot open %s: %s", certs_dir, strerror(errno));
    char **names = base_calloc(LIST_FILES_MAX, sizeof *names);
    size_t count = 0;
    int rc = 0;
    if (names == NULL) {
        rc = sec__fail(SEC_ERR_NOMEM, err, err_size, "out of memory");
        goto cleanup;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL && count < LIST_FILES_MAX) {
        size_t n = strlen(de->d_name);
        if (n > 4 && strcmp(de->d_name + n - 4, ".crt") == 0) {
            names[count] = base_strdup(de->d_name);
            if (names[count] == NULL) {
                rc = sec__fail(SEC_ERR_NOMEM, err, err_size, "out of memory");
                goto cleanup;
            }
            count++;
        }
    }
    qsort(names, count, sizeof *names, cmp_names);
    if (count == 0) fprintf(out, "no certificates in %s\n", certs_dir);
    for (size_t i = 0; i < count; i++) list_one(certs_dir, names[i], out);
cleanup:
    if (names != NULL) {
        for (size_t i = 0; i < count; i++) base_free(names[i]);
        base_free(names);
    }
    closedir(d);
    return rc;
}
