/*
** base/: what every module beneath and above shares.
**
**   - One allocation wrapper (base_malloc and friends) so that tests can
**     inject out-of-memory at the N-th allocation (base_alloc_fail_after).
**   - Logging with a level, to stderr and optionally to a file.
**   - Small helpers: monotonic time for adapters (never for pure cores),
**     bounded string copy.
**
** Invariants: nothing in base/ includes any other module.
*/
#ifndef MERIDIAN_BASE_H
#define MERIDIAN_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- allocation ---------------------------------------------------------
** All of Meridian allocates through these. They return NULL on failure like
** malloc; base_free(NULL) is a no-op. */
void *base_malloc(size_t size_bytes);
void *base_calloc(size_t count, size_t size_bytes);
void *base_realloc(void *ptr, size_t size_bytes);
char *base_strdup(const char *s);               /* owner: caller, base_free */
char *base_strndup(const char *s, size_t len);  /* owner: caller, base_free */
void base_free(void *ptr);

/* Test hook: the allocation after `count` more successful ones fails (and
** every later one until reset). A negative count disables injection. */
void base_alloc_fail_after(long count);

/* ---- growable byte buffer ----------------------------------------------
** owner: whoever declared it; release with base_buf_free. */
typedef struct base_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} base_buf;

int base_buf_reserve(base_buf *b, size_t extra_bytes);  /* 0 or -ENOMEM */
int base_buf_append(base_buf *b, const void *p, size_t n);
int base_buf_append_byte(base_buf *b, uint8_t c);
int base_buf_printf(base_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void base_buf_reset(base_buf *b);  /* len = 0, keeps memory */
void base_buf_free(base_buf *b);

/* ---- logging ------------------------------------------------------------ */
typedef enum base_log_level {
    BASE_LOG_DEBUG = 0,
    BASE_LOG_INFO = 1,
    BASE_LOG_WARN = 2,
    BASE_LOG_ERROR = 3,
} base_log_level;

void base_log_set_level(base_log_level level);
/* Also append log lines to `path` (NULL: stop). Returns 0 or -errno. */
int base_log_set_file(const char *path);
void base_log(base_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define BASE_DEBUG(mod, ...) base_log(BASE_LOG_DEBUG, mod, __VA_ARGS__)
#define BASE_INFO(mod, ...) base_log(BASE_LOG_INFO, mod, __VA_ARGS__)
#define BASE_WARN(mod, ...) base_log(BASE_LOG_WARN, mod, __VA_ARGS__)
#define BASE_ERROR(mod, ...) base_log(BASE_LOG_ERROR, mod, __VA_ARGS__)

/* ---- time for adapters --------------------------------------------------
** Pure cores (raft, txn state machines, hlc) never call these; they are for
** the real implementations of the clock interface and for I/O adapters. */
int64_t base_monotonic_ns(void);
int64_t base_realtime_ns(void);

/* ---- checksums ------------------------------------------------------------
** CRC32C (Castagnoli, reflected polynomial 0x82F63B78). crc is the value of
** the bytes before (0 to start): base_crc32c(base_crc32c(0, a), b) == crc of
** a||b. Uses the SSE4.2 instruction when the CPU has it (checked once), else
** slicing-by-8 tables. The _sw/_hw variants are for tests that prove both
** paths agree. */
uint32_t base_crc32c(uint32_t crc, const void *data, size_t len);
uint32_t base__crc32c_sw(uint32_t crc, const void *data, size_t len);
uint32_t base__crc32c_hw(uint32_t crc, const void *data, size_t len); /* sw if no SSE4.2 */
int base__crc32c_hw_available(void);

/* Copy at most dst_size-1 bytes and always NUL-terminate. */
void base_strlcpy(char *dst, const char *src, size_t dst_size);

#define BASE_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BASE_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BASE_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
