/*
** security/sec_int.h: internals shared by the files of security/. No other
** folder includes it.
*/
#ifndef MERIDIAN_SEC_INT_H
#define MERIDIAN_SEC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "security/security.h"

/* Write a message to err (if err && err_size) and return rc. */
int sec__fail(int rc, char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Append the first openssl error of this thread's queue (and clear it). */
int sec__fail_ssl(int rc, char *err, size_t err_size, const char *what);

/* Strict base64 (RFC 4648, padded). encode: out_size >= 4*ceil(n/3)+1;
** returns 0 or SEC_ERR_LIMIT. decode: returns 0 and *out_len, or
** SEC_ERR_MALFORMED (bad character, bad padding, does not fit). */
int sec__b64_encode(const uint8_t *in, size_t n, char *out, size_t out_size);
int sec__b64_decode(const char *in, size_t n, uint8_t *out, size_t out_cap, size_t *out_len);

#endif
