/*
** fuzz/fuzz_scram.c: the server side of a SCRAM-SHA-256 login
** (security/sec_scram.c) against a stored verifier, as the gateway's worker
** runs it: sec_scram_server_init, then sec_scram_server_step with the
** client-first message and, if that continued, with the client-final one.
**
** Input: byte 0 picks the verifier: 0 the user's (password "pencil", a fixed
** salt), 1 an unknown user's mock verifier, 2 a verifier parsed from the
** input text (sec_scram_verifier_parse; the exchange then runs against it
** when it parses), anything else like 0. The rest splits at its first NUL:
** client-first before, client-final after (a second NUL inside a message
** is for the module to refuse). Each message is copied into an allocation
** of its exact size (no terminator), as the gateway hands it over.
**
** Invariants: see fuzz.h. The server nonce is fixed, so a client-final
** that echoes the combined nonce reaches the proof check.
*/
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fuzz/fuzz.h"
#include "security/security.h"

/* What fuzz/corpus/scram/ was made with (fuzz/gen_scram_seeds.c). */
#define FUZZ_SCRAM_PASSWORD "pencil"
#define FUZZ_SCRAM_SERVER_NONCE "3rfcNHYJY1ZVvWVs7j"
#define FUZZ_SCRAM_ITERATIONS 4096

static const uint8_t fuzz_scram_salt[SEC_SCRAM_SALT_SIZE] = {
    0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x73, 0x61, 0x6c, 0x74, 0x2d, 0x31, 0x36, 0x62, 0x79, 0x74, 0x65};
static const uint8_t fuzz_scram_secret[32] = {7, 1, 4, 2, 8, 5, 7, 1, 4, 2, 8, 5, 7, 1, 4, 2,
                                              8, 5, 7, 1, 4, 2, 8, 5, 7, 1, 4, 2, 8, 5, 7, 1};

/* The user's verifier, derived once (PBKDF2 is the slow part). */
static int stored_verifier(sec_scram_verifier *out)
{
    static sec_scram_verifier v;
    static int ready; /* 0 not yet, 1 ok, -1 failed */
    if (ready == 0) {
        char text[SEC_SCRAM_VERIFIER_SIZE_MAX];
        ready = -1;
        if (sec_scram_verifier_make(FUZZ_SCRAM_PASSWORD, fuzz_scram_salt, sizeof fuzz_scram_salt,
                                    FUZZ_SCRAM_ITERATIONS, text, sizeof text) == 0 &&
            sec_scram_verifier_parse(text, &v) == 0)
            ready = 1;
    }
    if (ready != 1)
        return -1;
    *out = v;
    return 0;
}

/* One step with an exact-size copy of msg. */
static int step(sec_scram_server *s, const uint8_t *msg, size_t len, base_buf *out)
{
    uint8_t *copy = base_malloc(len ? len : 1);
    if (copy == NULL)
        return SEC_ERR_NOMEM;
    memcpy(copy, msg, len);
    int rc = sec_scram_server_step(s, copy, len, out);
    base_free(copy);
    return rc;
}

static void exchange(const sec_scram_verifier *user, const sec_scram_verifier *mock,
                     const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t first_len = nul ? (size_t)(nul - data) : size;
    sec_scram_server s;
    if (sec_scram_server_init(&s, user, mock, FUZZ_SCRAM_SERVER_NONCE) != 0)
        return;
    base_buf out = {0};
    int rc = step(&s, data, first_len, &out);
    if (rc == SEC_SCRAM_CONTINUE && nul != NULL) {
        base_buf_reset(&out);
        rc = step(&s, nul + 1, size - first_len - 1, &out);
        if (rc == 0 || rc == SEC_SCRAM_CONTINUE) {
            /* after the end, every step is refused */
            (void)step(&s, data, first_len, &out);
        }
    }
    base_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_INPUT_MAX_BYTES)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    sec_scram_verifier v;
    if (mode == 1) {
        /* the name is the first message's bytes up to 64, as a C string */
        char user[65];
        size_t n = size < sizeof user - 1 ? size : sizeof user - 1;
        memcpy(user, data, n);
        user[n] = '\0';
        sec_scram_mock_verifier(user, fuzz_scram_secret, &v);
        exchange(NULL, &v, data, size);
    } else if (mode == 2) {
        /* verifier text up to the first NUL; the exchange follows it */
        const uint8_t *nul = memchr(data, '\0', size);
        size_t n = nul ? (size_t)(nul - data) : size;
        char *text = base_malloc(n + 1);
        if (text == NULL)
            return 0;
        memcpy(text, data, n);
        text[n] = '\0';
        int rc = sec_scram_verifier_parse(text, &v);
        base_free(text);
        if (rc == 0 && nul != NULL)
            exchange(&v, NULL, nul + 1, size - n - 1);
    } else {
        if (stored_verifier(&v) != 0)
            abort(); /* the harness itself is broken */
        exchange(&v, NULL, data, size);
    }
    return 0;
}
