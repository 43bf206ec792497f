/*
** security/sec_scram.c: SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL
** speaks it, and the verifier format PostgreSQL stores:
**
**   SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>
**
**   SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, iterations, 32)
**   ClientKey = HMAC(SaltedPassword, "Client Key"); StoredKey = H(ClientKey)
**   ServerKey = HMAC(SaltedPassword, "Server Key")
**   AuthMessage = client-first-bare "," server-first "," client-final-without-proof
**   ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage)
**   ServerSignature = HMAC(ServerKey, AuthMessage)
**
** Messages:
**   client-first  = gs2-header client-first-bare
**   gs2-header    = ("n" | "y") "," ","        -- no channel binding, no authzid
**   client-first-bare = "n=" user "," "r=" cnonce ["," ext]*
**   server-first  = "r=" cnonce snonce "," "s=" salt "," "i=" iterations
**   client-final  = "c=" b64(gs2-header) "," "r=" nonce ["," ext]* "," "p=" proof
**   server-final  = "v=" b64(ServerSignature)
**
** Invariants: pure (no I/O, no clock, no randomness except in
** sec_scram_verifier_new); every input is bounded by
** SEC_SCRAM_MESSAGE_SIZE_MAX and parsed without trusting its content; the
** proof is compared in constant time; an unknown user (mock verifier) walks
** the same path as a known one and fails with SEC_ERR_AUTH at the same step.
** "y,," is accepted because we do not advertise SCRAM-SHA-256-PLUS (libpq
** sends "y" over TLS in that case); "p=" (channel binding) is refused.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "security/sec_int.h"

enum { SCRAM_START = 0, SCRAM_SENT_FIRST, SCRAM_SENT_FINAL, SCRAM_DONE, SCRAM_FAILED };

/* ---- base64 ------------------------------------------------------------- */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sec__b64_encode(const uint8_t *in, size_t n, char *out, size_t out_size) {
    size_t need = 4 * ((n + 2) / 3) + 1;
    if (out_size < need) return SEC_ERR_LIMIT;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = b64_chars[(v >> 18) & 63];
        out[o++] = b64_chars[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64_chars[v & 63] : '=';
    }
    out[o] = '\0';
    return 0;
}

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int sec__b64_decode(const char *in, size_t n, uint8_t *out, size_t out_cap, size_t *out_len) {
    if (n % 4 != 0) return SEC_ERR_MALFORMED;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = in[i + (size_t)k];
            if (c == '=') {
                /* padding only in the last quantum, only in its last two places */
                if (i + 4 != n || k < 2) return SEC_ERR_MALFORMED;
                pad++;
                v[k] = 0;
            } else {
                if (pad) return SEC_ERR_MALFORMED;
                v[k] = b64_value(c);
                if (v[k] < 0) return SEC_ERR_MALFORMED;
            }
        }
        uint32_t w = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) | ((uint32_t)v[2] << 6) |
                     (uint32_t)v[3];
        size_t bytes = 3 - (size_t)pad;
        /* Canonical encoding only (RFC 4648 3.5): the bits below the last
        ** byte must be zero, else two strings would decode to one proof. */
        if ((pad == 1 && (w & 0xff) != 0) || (pad == 2 && (w & 0xffff) != 0))
            return SEC_ERR_MALFORMED;
        if (o + bytes > out_cap) return SEC_ERR_MALFORMED;
        out[o++] = (uint8_t)(w >> 16);
        if (bytes > 1) out[o++] = (uint8_t)(w >> 8);
        if (bytes > 2) out[o++] = (uint8_t)w;
    }
    *out_len = o;
    return 0;
}

/* ---- primitives --------------------------------------------------------- */

static int hmac256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                   uint8_t out[SEC_SCRAM_KEY_SIZE]) {
    unsigned int out_len = 0;
    if (HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len) == NULL ||
        out_len != SEC_SCRAM_KEY_SIZE)
        return SEC_ERR_CRYPTO;
    return 0;
}

/* StoredKey, ServerKey and (optionally) ClientKey from the password. */
static int derive_keys(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
                       uint8_t stored_key[32], uint8_t server_key[32], uint8_t client_key_out[32]) {
    uint8_t salted[SEC_SCRAM_KEY_SIZE];
    uint8_t client_key[SEC_SCRAM_KEY_SIZE];
    int rc = SEC_ERR_CRYPTO;
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, iterations,
                          EVP_sha256(), SEC_SCRAM_KEY_SIZE, salted) != 1)
        goto cleanup;
    if (hmac256(salted, sizeof salted, "Client Key", 10, client_key) != 0) goto cleanup;
    if (SHA256(client_key, sizeof client_key, stored_key) == NULL) goto cleanup;
    if (hmac256(salted, sizeof salted, "Server Key", 10, server_key) != 0) goto cleanup;
    if (client_key_out) memcpy(client_key_out, client_key, sizeof client_key);
    rc = 0;
cleanup:
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client_key, sizeof client_key);
    return rc;
}

/* ---- verifiers ----------------------------------------------------------- */

int sec_scram_verifier_make(const char *password, const uint8_t *salt, size_t salt_len,
                            int iterations, char *out, size_t out_size) {
    if (password == NULL || salt == NULL || salt_len == 0 || salt_len > SEC_SCRAM_SALT_SIZE_MAX ||
        iterations < 1 || out == NULL)
        return SEC_ERR_INVALID;
    uint8_t stored[32], server[32];
    char salt64[SEC_SCRAM_SALT_SIZE_MAX * 2], stored64[48], server64[48];
    int rc = derive_keys(password, salt, salt_len, iterations, stored, server, NULL);
    if (rc != 0) return rc;
    sec__b64_encode(salt, salt_len, salt64, sizeof salt64);
    sec__b64_encode(stored, 32, stored64, sizeof stored64);
    sec__b64_encode(server, 32, server64, sizeof server64);
    int n = snprintf(out, out_size, "SCRAM-SHA-256$%d:%s$%s:%s", iterations, salt64, stored64,
                     server64);
    if (n < 0 || (size_t)n >= out_size) return SEC_ERR_LIMIT;
    return 0;
}

int sec_scram_verifier_new(const char *password, char *out, size_t out_size) {
    uint8_t salt[SEC_SCRAM_SALT_SIZE];
    if (RAND_bytes(salt, sizeof salt) != 1) return SEC_ERR_CRYPTO;
    return sec_scram_verifier_make(password, salt, sizeof salt, SEC_SCRAM_ITERATIONS_DEFAULT, out,
                                   out_size);
}

/* Decimal 1..max, the whole of [s, s+n). */
static int parse_int(const char *s, size_t n, int max, int *out) {
    if (n == 0 || n > 9) return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > max) return -1;
    *out = (int)v;
    return 0;
}

int sec_scram_verifier_parse(const char *text, sec_scram_verifier *out) {
    static const char prefix[] = "SCRAM-SHA-256$";
    if (text == NULL || out == NULL) return SEC_ERR_INVALID;
    size_t len = strnlen(text, SEC_SCRAM_VERIFIER_SIZE_MAX + 1);
    if (len > SEC_SCRAM_VERIFIER_SIZE_MAX || strncmp(text, prefix, sizeof prefix - 1) != 0)
        return SEC_ERR_MALFORMED;
    const char *p = text + sizeof prefix - 1;
    const char *colon1 = strchr(p, ':');
    const char *dollar = strchr(p, '$');
    if (colon1 == NULL || dollar == NULL || dollar < colon1) return SEC_ERR_MALFORMED;
    const char *colon2 = strchr(dollar, ':');
    if (colon2 == NULL || strchr(colon2 + 1, ':') || strchr(dollar + 1, '$'))
        return SEC_ERR_MALFORMED;
    sec_scram_verifier v;
    memset(&v, 0, sizeof v);
    size_t n;
    if (parse_int(p, (size_t)(colon1 - p), 0x7fffffff, &v.iterations) != 0)
        return SEC_ERR_MALFORMED;
    if (sec__b64_decode(colon1 + 1, (size_t)(dollar - colon1 - 1), v.salt, sizeof v.salt,
                        &v.salt_len) != 0 ||
        v.salt_len == 0)
        return SEC_ERR_MALFORMED;
    if (sec__b64_decode(dollar + 1, (size_t)(colon2 - dollar - 1), v.stored_key,
                        sizeof v.stored_key, &n) != 0 ||
        n != SEC_SCRAM_KEY_SIZE)
        return SEC_ERR_MALFORMED;
    if (sec__b64_decode(colon2 + 1, strlen(colon2 + 1), v.server_key, sizeof v.server_key, &n) !=
            0 ||
        n != SEC_SCRAM_KEY_SIZE)
        return SEC_ERR_MALFORMED;
    *out = v;
    return 0;
}

void sec_scram_mock_verifier(const char *user, const uint8_t secret[32], sec_scram_verifier *out) {
    uint8_t digest[32];
    memset(out, 0, sizeof *out);
    out->iterations = SEC_SCRAM_ITERATIONS_DEFAULT;
    hmac256(secret, 32, user, strlen(user), digest);
    memcpy(out->salt, digest, SEC_SCRAM_SALT_SIZE);
    out->salt_len = SEC_SCRAM_SALT_SIZE;
    hmac256(digest, 32, "stored", 6, out->stored_key);
    hmac256(digest, 32, "server", 6, out->server_key);
}

int sec_scram_nonce_encode(const uint8_t *raw, size_t raw_len, char *out, size_t out_size) {
    if (raw == NULL || raw_len == 0 || raw_len > 96) return SEC_ERR_INVALID;
    return sec__b64_encode(raw, raw_len, out, out_size);
}

/* ---- message parsing ------------------------------------------------------ */

/* A cursor over one NUL-terminated, comma-separated message. */
typedef struct cursor {
    char *p;
} cursor;

/* Read "<attr>=<value>" up to ',' or the end; the ',' becomes NUL. attr 0:
** any letter (returned in *attr_out). Returns the value or NULL. */
static char *read_attr(cursor *c, char attr, char *attr_out) {
    char a = c->p[0];
    if (!((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z'))) return NULL;
    if (attr != 0 && a != attr) return NULL;
    if (c->p[1] != '=') return NULL;
    char *value = c->p + 2;
    char *comma = strchr(value, ',');
    if (comma) {
        *comma = '\0';
        c->p = comma + 1;
        if (*c->p == '\0') return NULL; /* trailing comma */
    } else {
        c->p = value + strlen(value);
    }
    if (attr_out) *attr_out = a;
    return value;
}

static bool valid_nonce(const char *n) {
    size_t len = strlen(n);
    if (len == 0 || len > SEC_SCRAM_NONCE_SIZE_MAX) return false;
    for (const char *p = n; *p; p++) {
        if (*p < 0x21 || *p > 0x7e || *p == ',') return false;
    }
    return true;
}

/* RFC 5802 saslname: "=2C" and "=3D" are the only escapes. */
static bool valid_saslname(const char *n) {
    for (const char *p = n; *p; p++) {
        if (*p == '=') {
            if (!(p[1] == '2' && p[2] == 'C') && !(p[1] == '3' && p[2] == 'D')) return false;
            p += 2;
        }
    }
    return true;
}

/* Copy a message into buf (NUL-terminated); refuse NULs and oversize. */
static int copy_message(const void *in, size_t in_len, char *buf, size_t buf_size,
                        const char **error) {
    if (in == NULL || in_len == 0) {
        *error = "empty SCRAM message";
        return SEC_ERR_MALFORMED;
    }
    if (in_len >= buf_size || in_len > SEC_SCRAM_MESSAGE_SIZE_MAX) {
        *error = "SCRAM message too long";
        return SEC_ERR_MALFORMED;
    }
    if (memchr(in, '\0', in_len) != NULL) {
        *error = "SCRAM message contains a NUL byte";
        return SEC_ERR_MALFORMED;
    }
    memcpy(buf, in, in_len);
    buf[in_len] = '\0';
    return 0;
}

/* ---- server ------------------------------------------------------------------- */

int sec_scram_server_init(sec_scram_server *s, const sec_scram_verifier *verifier,
                          const sec_scram_verifier *mock, const char *server_nonce) {
    memset(s, 0, sizeof *s);
    s->state = SCRAM_FAILED;
    if ((verifier == NULL) == (mock == NULL)) return SEC_ERR_INVALID;
    if (server_nonce == NULL || !valid_nonce(server_nonce)) return SEC_ERR_INVALID;
    s->mock = verifier == NULL;
    s->verifier = verifier ? *verifier : *mock;
    if (s->verifier.iterations < 1 || s->verifier.salt_len == 0 ||
        s->verifier.salt_len > SEC_SCRAM_SALT_SIZE_MAX)
        return SEC_ERR_INVALID;
    base_strlcpy(s->nonce, server_nonce, sizeof s->nonce); /* client part prepended later */
    s->state = SCRAM_START;
    return 0;
}

static int server_fail(sec_scram_server *s, int rc, const char *error) {
    s->state = SCRAM_FAILED;
    s->error = error;
    return rc;
}

static int server_first(sec_scram_server *s, const void *in, size_t in_len, base_buf *out) {
    char msg[SEC_SCRAM_MESSAGE_SIZE_MAX + 1];
    const char *error = NULL;
    if (copy_message(in, in_len, msg, sizeof msg, &error) != 0)
        return server_fail(s, SEC_ERR_MALFORMED, error);
    /* gs2-header */
    if (msg[0] == 'p')
        return server_fail(s, SEC_ERR_MALFORMED, "SCRAM channel binding is not supported");
    if ((msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',')
        return server_fail(s, SEC_ERR_MALFORMED, "malformed SCRAM message (bad gs2 header)");
    s->cbind_y = msg[0] == 'y';
    if (msg[2] == 'a')
        return server_fail(s, SEC_ERR_MALFORMED,
                           "SCRAM authorization identity is not supported");
    if (msg[2] != ',')
        return server_fail(s, SEC_ERR_MALFORMED, "malformed SCRAM message (bad gs2 header)");
    char *bare = msg + 3;
    base_strlcpy(s->client_first_bare, bare, sizeof s->client_first_bare);
    cursor c = {bare};
    if (c.p[0] == 'm')
        return server_fail(s, SEC_ERR_MALFORMED, "SCRAM extension required but not supported");
    char *user = read_attr(&c, 'n', NULL);
    if (user == NULL || !valid_saslname(user))
        return server_fail(s, SEC_ERR_MALFORMED, "malformed SCRAM message (bad user name)");
    char *nonce = read_attr(&c, 'r', NULL);
    if (nonce == NULL || !valid_nonce(nonce))
        return server_fail(s, SEC_ERR_MALFORMED, "malformed SCRAM message (bad nonce)");
    /* Optional extensions: ignored, but each must be well formed. */
    for (int i = 0; *c.p != '\0'; i++) {
        if (i >= 16 || read_attr(&c, 0, NULL) == NULL)
            return server_fail(s, SEC_ERR_MALFORMED, "malformed SCRAM message (bad attribute)");
    }
    char combined[sizeof s->nonce];
    int n = snprintf(combined, sizeof combined, "%s%s", nonce, s->nonce);
    if (n < 0 || (size_t)n >= sizeof combined)
        return server_fail(s, SEC_ERR_MALFORMED, "SCRAM nonce too long");
    memcpy(s->nonce, combined, (size_t)n + 1);
    char salt64[SEC_SCRAM_SALT_SIZE_MAX * 2];
    sec__b64_encode(s->verifier.salt, s->verifier.salt_len, salt64, sizeof salt64);
    n = snprintf(s->server_first, sizeof s->server_first, "r=%s,s=%s,i=%d", s->nonce, salt64,
                 s->verifier.iterations);
    if (n < 0 || (size_t)n >= sizeof s->server_first)
        return server_fail(s, SEC_ERR_MALFORMED, "SCRAM nonce too long");
    if (base_buf_append(out, s->server_first, (size_t)n) != 0)
        return server_fail(s, SEC_ERR_NOMEM, "out of memory");
    s->state = SCRAM_SENT_FIRST;
    return SEC_SCRAM_CONTINUE;
}

static int server_final(sec_scram_server *s, const void *in, size_t in_len, base_buf *out) {
    char msg[SEC_SCRAM_MESSAGE_SIZE_MAX + 1];
    char copy[SEC_SCRAM_MESSAGE_SIZE_MAX + 1];
    const char *error = NULL;
    if (copy_message(in, in_len, msg, sizeof msg, &error) != 0)
        return server_fail(s, SEC_ERR_MALFORMED, error);
    memcpy(copy, msg, in_len + 1);
    cursor c = {msg};
    char *cbind = read_attr(&c, 'c', NULL);
    const char *expect = s->cbind_y ? "eSws" : "biws"; /* b64("y,,"), b64("n,,") */
    if (cbind == NULL || strcmp(cbind, expect) != 0)
        return server_fail(s, SEC_ERR_MALFORMED,
                           "SCRAM channel binding check failed (unexpected c= attribute)");
    char *nonce = read_attr(&c, 'r', NULL);
    if (nonce == NULL || strcmp(nonce, s->nonce) != 0)
        return server_fail(s, SEC_ERR_MALFORMED, "SCRAM nonce mismatch");
    char *proof64 = NULL;
    for (int i = 0;; i++) {
        if (*c.p == '\0' || i >= 16)
            return server_fail(s, SEC_ERR_MALFORMED, "malformed SCRAM message (no proof)");
        char *proof_start = c.p;
        char attr = 0;
        char *value = read_attr(&c, 0, &attr);
        if (value == NULL)
            return server_fail(s, SEC_ERR_MALFORMED, "malformed SCRAM message (bad attribute)");
        if (attr == 'p') {
            if (*c.p != '\0')
                return server_fail(s, SEC_ERR_MALFORMED,
                                   "malformed SCRAM message (garbage after the proof)");
            proof64 = value;
            /* client-final-without-proof ends before ",p=" */
            copy[proof_start - msg - 1] = '\0';
            break;
        }
    }
    uint8_t proof[SEC_SCRAM_KEY_SIZE];
    size_t proof_len = 0;
    if (sec__b64_decode(proof64, strlen(proof64), proof, sizeof proof, &proof_len) != 0 ||
        proof_len != SEC_SCRAM_KEY_SIZE)
        return server_fail(s, SEC_ERR_MALFORMED, "malformed SCRAM message (bad proof)");

    base_buf am = {0};
    int rc = SEC_ERR_NOMEM;
    uint8_t sig[32], client_key[32], stored[32], server_sig[32];
    if (base_buf_printf(&am, "%s,%s,%s", s->client_first_bare, s->server_first, copy) != 0)
        goto cleanup;
    rc = SEC_ERR_CRYPTO;
    if (hmac256(s->verifier.stored_key, 32, am.data, am.len, sig) != 0) goto cleanup;
    for (int i = 0; i < 32; i++) client_key[i] = proof[i] ^ sig[i];
    if (SHA256(client_key, 32, stored) == NULL) goto cleanup;
    bool ok = CRYPTO_memcmp(stored, s->verifier.stored_key, 32) == 0;
    if (!ok || s->mock) {
        rc = server_fail(s, SEC_ERR_AUTH, "password authentication failed");
        goto cleanup;
    }
    if (hmac256(s->verifier.server_key, 32, am.data, am.len, server_sig) != 0) goto cleanup;
    char sig64[48];
    sec__b64_encode(server_sig, 32, sig64, sizeof sig64);
    rc = SEC_ERR_NOMEM;
    if (base_buf_printf(out, "v=%s", sig64) != 0) goto cleanup;
    s->state = SCRAM_DONE;
    rc = 0;
cleanup:
    if (rc != 0 && s->state != SCRAM_FAILED) server_fail(s, rc, "internal error");
    OPENSSL_cleanse(client_key, sizeof client_key);
    base_buf_free(&am);
    return rc;
}

int sec_scram_server_step(sec_scram_server *s, const void *in, size_t in_len, base_buf *out) {
    switch (s->state) {
    case SCRAM_START: return server_first(s, in, in_len, out);
    case SCRAM_SENT_FIRST: return server_final(s, in, in_len, out);
    default: s->error = "SCRAM exchange is over"; return SEC_ERR_STATE;
    }
}

/* ---- client ------------------------------------------------------------------- */

int sec_scram_client_init(sec_scram_client *c, const char *user, const char *password,
                          const char *client_nonce) {
    memset(c, 0, sizeof *c);
    c->state = SCRAM_FAILED;
    if (user == NULL || password == NULL || client_nonce == NULL) return SEC_ERR_INVALID;
    if (strlen(user) > SEC_USER_SIZE_MAX || strlen(password) >= sizeof c->password ||
        !valid_nonce(client_nonce))
        return SEC_ERR_INVALID;
    base_strlcpy(c->user, user, sizeof c->user);
    base_strlcpy(c->password, password, sizeof c->password);
    base_strlcpy(c->client_nonce, client_nonce, sizeof c->client_nonce);
    c->state = SCRAM_START;
    return 0;
}

void sec_scram_client_clear(sec_scram_client *c) { OPENSSL_cleanse(c, sizeof *c); }

static int client_fail(sec_scram_client *c, int rc, const char *error) {
    c->state = SCRAM_FAILED;
    c->error = error;
    return rc;
}

static int client_first(sec_scram_client *c, base_buf *out) {
    base_buf b = {0};
    int rc = SEC_ERR_NOMEM;
    if (base_buf_printf(&b, "n=") != 0) goto cleanup;
    for (const char *p = c->user; *p; p++) {
        int r = *p == ',' ? base_buf_printf(&b, "=2C")
                : *p == '=' ? base_buf_printf(&b, "=3D")
                            : base_buf_append_byte(&b, (uint8_t)*p);
        if (r != 0) goto cleanup;
    }
    if (base_buf_printf(&b, ",r=%s", c->client_nonce) != 0) goto cleanup;
    if (b.len >= sizeof c->client_first_bare) {
        rc = SEC_ERR_LIMIT;
        goto cleanup;
    }
    memcpy(c->client_first_bare, b.data, b.len);
    c->client_first_bare[b.len] = '\0';
    if (base_buf_printf(out, "%c,,%s", c->cbind_y ? 'y' : 'n', c->client_first_bare) != 0)
        goto cleanup;
    c->state = SCRAM_SENT_FIRST;
    rc = SEC_SCRAM_CONTINUE;
cleanup:
    base_buf_free(&b);
    return rc == SEC_SCRAM_CONTINUE ? rc : client_fail(c, rc, "cannot build client-first");
}

static int client_final(sec_scram_client *c, const void *in, size_t in_len, base_buf *out) {
    char msg[SEC_SCRAM_MESSAGE_SIZE_MAX + 1];
    char server_first_text[SEC_SCRAM_MESSAGE_SIZE_MAX + 1];
    const char *error = NULL;
    if (copy_message(in, in_len, msg, sizeof msg, &error) != 0)
        return client_fail(c, SEC_ERR_MALFORMED, error);
    memcpy(server_first_text, msg, in_len + 1);
    cursor cur = {msg};
    if (cur.p[0] == 'm')
        return client_fail(c, SEC_ERR_MALFORMED, "SCRAM extension required but not supported");
    char *nonce = read_attr(&cur, 'r', NULL);
    size_t cn = strlen(c->client_nonce);
    if (nonce == NULL || !valid_nonce(nonce) || strlen(nonce) <= cn ||
        strncmp(nonce, c->client_nonce, cn) != 0)
        return client_fail(c, SEC_ERR_MALFORMED, "SCRAM server nonce does not extend ours");
    char *salt64 = read_attr(&cur, 's', NULL);
    uint8_t salt[SEC_SCRAM_SALT_SIZE_MAX];
    size_t salt_len = 0;
    if (salt64 == NULL ||
        sec__b64_decode(salt64, strlen(salt64), salt, sizeof salt, &salt_len) != 0 ||
        salt_len == 0)
        return client_fail(c, SEC_ERR_MALFORMED, "malformed SCRAM message (bad salt)");
    char *iter = read_attr(&cur, 'i', NULL);
    int iterations = 0;
    if (iter == NULL || parse_int(iter, strlen(iter), 0x7fffffff, &iterations) != 0)
        return client_fail(c, SEC_ERR_MALFORMED, "malformed SCRAM message (bad iteration count)");
    if (iterations > SEC_SCRAM_ITERATIONS_MAX)
        return client_fail(c, SEC_ERR_LIMIT, "SCRAM iteration count too large");
    for (int i = 0; *cur.p != '\0'; i++) {
        if (i >= 16 || read_attr(&cur, 0, NULL) == NULL)
            return client_fail(c, SEC_ERR_MALFORMED, "malformed SCRAM message (bad attribute)");
    }

    uint8_t stored[32], server_key[32], client_key[32], sig[32], proof[32];
    base_buf wo = {0}, am = {0};
    char proof64[48];
    int rc = derive_keys(c->password, salt, salt_len, iterations, stored, server_key, client_key);
    if (rc != 0) goto cleanup;
    rc = SEC_ERR_NOMEM;
    if (base_buf_printf(&wo, "c=%s,r=%s", c->cbind_y ? "eSws" : "biws", nonce) != 0)
        goto cleanup;
    if (base_buf_printf(&am, "%s,%s,%.*s", c->client_first_bare, server_first_text, (int)wo.len,
                        (const char *)wo.data) != 0)
        goto cleanup;
    rc = SEC_ERR_CRYPTO;
    if (hmac256(stored, 32, am.data, am.len, sig) != 0) goto cleanup;
    for (int i = 0; i < 32; i++) proof[i] = client_key[i] ^ sig[i];
    if (hmac256(server_key, 32, am.data, am.len, c->server_signature) != 0) goto cleanup;
    sec__b64_encode(proof, 32, proof64, sizeof proof64);
    rc = SEC_ERR_NOMEM;
    if (base_buf_printf(out, "%.*s,p=%s", (int)wo.len, (const char *)wo.data, proof64) != 0)
        goto cleanup;
    c->state = SCRAM_SENT_FINAL;
    rc = SEC_SCRAM_CONTINUE;
cleanup:
    OPENSSL_cleanse(client_key, sizeof client_key);
    base_buf_free(&wo);
    base_buf_free(&am);
    return rc == SEC_SCRAM_CONTINUE ? rc : client_fail(c, rc, "cannot compute the SCRAM proof");
}

static int client_verify(sec_scram_client *c, const void *in, size_t in_len) {
    char msg[SEC_SCRAM_MESSAGE_SIZE_MAX + 1];
    const char *error = NULL;
    if (copy_message(in, in_len, msg, sizeof msg, &error) != 0)
        return client_fail(c, SEC_ERR_MALFORMED, error);
    cursor cur = {msg};
    if (msg[0] == 'e') return client_fail(c, SEC_ERR_AUTH, "the server rejected the proof");
    char *v64 = read_attr(&cur, 'v', NULL);
    uint8_t sig[64];
    size_t n = 0;
    if (v64 == NULL || *cur.p != '\0' ||
        sec__b64_decode(v64, strlen(v64), sig, sizeof sig, &n) != 0 ||
        n != SEC_SCRAM_KEY_SIZE)
        return client_fail(c, SEC_ERR_MALFORMED, "malformed SCRAM server-final message");
    if (CRYPTO_memcmp(sig, c->server_signature, 32) != 0)
        return client_fail(c, SEC_ERR_AUTH, "the server's SCRAM signature is wrong");
    c->state = SCRAM_DONE;
    return 0;
}

int sec_scram_client_step(sec_scram_client *c, const void *in, size_t in_len, base_buf *out) {
    switch (c->state) {
    case SCRAM_START: return client_first(c, out);
    case SCRAM_SENT_FIRST: return client_final(c, in, in_len, out);
    case SCRAM_SENT_FINAL: return client_verify(c, in, in_len);
    default: c->error = "SCRAM exchange is over"; return SEC_ERR_STATE;
    }
}
