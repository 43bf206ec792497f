/*
** base/base.c: allocation wrapper, byte buffers, logging, time.
** Invariant: base_alloc_fail_after's counter is only touched atomically, so
** fault injection is safe with several threads.
*/
#include "base/base.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_long alloc_fail_countdown = -1;

static int alloc_should_fail(void) {
    long v = atomic_load(&alloc_fail_countdown);
    while (v >= 0) {
        if (v == 0) return 1;
        if (atomic_compare_exchange_weak(&alloc_fail_countdown, &v, v - 1)) return 0;
    }
    return 0;
}

void base_alloc_fail_after(long count) { atomic_store(&alloc_fail_countdown, count); }

void *base_malloc(size_t size_bytes) {
    if (alloc_should_fail()) return NULL;
    return malloc(size_bytes ? size_bytes : 1);
}

void *base_calloc(size_t count, size_t size_bytes) {
    if (alloc_should_fail()) return NULL;
    if (count == 0 || size_bytes == 0) return calloc(1, 1);
    return calloc(count, size_bytes);
}

void *base_realloc(void *ptr, size_t size_bytes) {
    if (alloc_should_fail()) return NULL;
    return realloc(ptr, size_bytes ? size_bytes : 1);
}

char *base_strndup(const char *s, size_t len) {
    char *p = base_malloc(len + 1);
    if (p == NULL) return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *base_strdup(const char *s) { return base_strndup(s, strlen(s)); }

void base_free(void *ptr) { free(ptr); }

int base_buf_reserve(base_buf *b, size_t extra_bytes) {
    if (b->len + extra_bytes <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra_bytes) {
        if (cap > SIZE_MAX / 2) return -ENOMEM;
        cap *= 2;
    }
    uint8_t *p = base_realloc(b->data, cap);
    if (p == NULL) return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int base_buf_append(base_buf *b, const void *p, size_t n) {
    int rc = base_buf_reserve(b, n);
    if (rc != 0) return rc;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int base_buf_append_byte(base_buf *b, uint8_t c) { return base_buf_append(b, &c, 1); }

int base_buf_printf(base_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return -EINVAL;
    int rc = base_buf_reserve(b, (size_t)n + 1);
    if (rc != 0) return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void base_buf_reset(base_buf *b) { b->len = 0; }

void base_buf_free(base_buf *b) {
    base_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static base_log_level log_level = BASE_LOG_INFO;
static FILE *log_file; /* owner: this file; closed when replaced */

void base_log_set_level(base_log_level level) { log_level = level; }

int base_log_set_file(const char *path) {
    FILE *f = NULL;
    if (path != NULL) {
        f = fopen(path, "a");
        if (f == NULL) return -errno;
        setvbuf(f, NULL, _IOLBF, 0);
    }
    pthread_mutex_lock(&log_mutex);
    FILE *old = log_file;
    log_file = f;
    pthread_mutex_unlock(&log_mutex);
    if (old) fclose(old);
    return 0;
}

void base_log(base_log_level level, const char *module, const char *fmt, ...) {
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < log_level) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_mutex_lock(&log_mutex);
    fprintf(stderr, "%s.%06ldZ %s [%s] %s\n", when, ts.tv_nsec / 1000, names[level], module, msg);
    if (log_file)
        fprintf(log_file, "%s.%06ldZ %s [%s] %s\n", when, ts.tv_nsec / 1000, names[level], module, msg);
    pthread_mutex_unlock(&log_mutex);
}

int64_t base_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t base_realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void base_strlcpy(char *dst, const char *src, size_t dst_size) {
    if (dst_size == 0) return;
    size_t n = strlen(src);
    if (n >= dst_size) n = dst_size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}
