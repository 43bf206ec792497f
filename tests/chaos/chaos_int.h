/*
** tests/chaos/chaos_int.h: internals shared by the checkers (not for use
** outside tests/chaos/).
**
** chaos__map: open-addressing hash map from a pair of int64 to a uint64
** value; capacity is a power of two, load factor <= 1/2. Never shrinks.
*/
#ifndef MERIDIAN_CHAOS_INT_H
#define MERIDIAN_CHAOS_INT_H

#include "tests/chaos/chaos.h"

typedef struct chaos__map_slot {
    int64_t a, b;
    uint64_t value;
    bool used;
} chaos__map_slot;

/* owner: whoever declared it (zeroed); release with chaos__map_free. */
typedef struct chaos__map {
    chaos__map_slot *slots;
    size_t cap;
    size_t len;
} chaos__map;

/* Insert or overwrite. 0 or CHAOS_ENOMEM. */
int chaos__map_put(chaos__map *m, int64_t a, int64_t b, uint64_t value);
/* Pointer to the value or NULL; valid until the next put. */
uint64_t *chaos__map_get(const chaos__map *m, int64_t a, int64_t b);
void chaos__map_free(chaos__map *m);

/* Record one anomaly of class a; prints the formatted line into the report
** only for the first CHAOS_REPORT_PER_CLASS_MAX of the class. Sets verdict
** INVALID. Returns 0 or CHAOS_ENOMEM. */
int chaos__anomaly(chaos_result *r, chaos_anomaly a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Append free text to the report. 0 or CHAOS_ENOMEM. */
int chaos__note(chaos_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Add "valid"/"invalid"/"unknown" summary line, NUL-terminate. */
int chaos__finish(chaos_result *r, const char *checker);
/* One-line description of an op for reports, into buf (size bytes,
** NUL-terminated); cut visibly as chaos__fit when it does not fit. */
void chaos__describe_op(const chaos_op *op, char *buf, size_t size);

/* Visible cuts (history.c, "cuts"): the room a cut's mark
** "...(+N bytes)" may take, N up to 20 digits. */
#define CHAOS_CUT_MARK_MAX 32
/* Copy text[0..len) into buf (size bytes), NUL-terminated. When it does
** not fit, what is kept ends on a boundary (never inside a UTF-8 sequence
** or an escape) and "...(+N bytes)" follows, N the bytes of text dropped.
** Returns N (0: whole). With size <= CHAOS_CUT_MARK_MAX only the mark,
** itself cut, is written. */
size_t chaos__fit(char *buf, size_t size, const char *text, size_t len);
/* The length a cut to at most max bytes keeps of text[0..len): the
** greatest boundary <= max, or one just after a space a little before it. */
size_t chaos__cut_point(const char *text, size_t len, size_t max);

#endif
