/* sql/ internal: the operator's view of ranges (ranges.c): SHOW RANGES,
** SHOW RANGE ... FOR ROW, ALTER RANGE ... RELOCATE, and the range event
** log as meridian_internal.range_events. Nothing outside sql/ includes it.
** docs/operations.md. */
#ifndef MERIDIAN_SQL_RANGES_H
#define MERIDIAN_SQL_RANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sql_int.h"

/* Rows one SHOW RANGES answers at most (more: 54000). */
#define SQLV__RANGES_ROWS_MAX 100000

/* SHOW RANGES [FROM TABLE t] and SHOW RANGE FROM TABLE t FOR ROW (v, ...):
** p..end is the text after SHOW. Returns -1 when it is neither (the caller
** goes on), else the statement's STMT result. */
int sqlv__ranges_show(sqlv__run *r, const char *p, const char *end);
/* ALTER RANGE id RELOCATE ...: p..end is the text after ALTER RANGE.
** The statement's STMT result. */
int sqlv__ranges_alter(sqlv__run *r, const char *p, const char *end);

/* The SQLite name of "meridian_internal.x" (static), NULL when there is
** no such relation. */
const char *sqlv__ranges_internal_relation(const char *x);
/* Register meridian_internal_range_events and _node_metrics (eponymous virtual tables) on
** the session's connection. 0 or -1. */
int sqlv__ranges_register(sqlv_session *s);

/* Record a split made through this engine in the range event log (best
** effort: a failure is logged). reason: "manual split at (1000)". */
void sqlv__ranges_log_split(sqlv_engine *e, uint64_t left_range_id, uint64_t right_range_id,
                            const char *reason);

/* Manual split points (sql.h): each change is a transaction of its own,
** retried on 40001 (at most SQLV__SPLIT_POINT_ATTEMPTS_MAX times); TXN_OK
** or the last error with err set. */
#define SQLV__SPLIT_POINT_VERSION 1
#define SQLV__SPLIT_POINT_ATTEMPTS_MAX 5
#define SQLV__SPLIT_POINTS_SCAN_MAX 10000 /* points one UNSPLIT ALL removes at most */
/* Record key[0..len) as a manual split point. */
int sqlv__split_point_put(sqlv_engine *e, const uint8_t *key, size_t len, txn_error *err);
/* Remove key's point; *removed false when it was none (nothing written). */
int sqlv__split_point_remove(sqlv_engine *e, const uint8_t *key, size_t len, bool *removed,
                             txn_error *err);
/* Remove every point whose key lies in [start, end) (a table's span):
** removed gets (reset first) u32 length | key for each, *n of them. */
int sqlv__split_points_remove_span(sqlv_engine *e, const uint8_t *start, size_t start_len,
                                   const uint8_t *end, size_t end_len, base_buf *removed,
                                   size_t *n, txn_error *err);

/* A key's values after its table prefix as a tuple: "(1000, 'a')" into
** out (appended); "()" for a bare prefix. 0 or -1 (memory). */
int sqlv__ranges_key_tuple(const uint8_t *key, size_t len, base_buf *out);

/* A key as SHOW RANGES prints a range's start ("/Table/accounts/1000"),
** appended to out; table_id's name is name (NULL: shown by id). 0 or -1
** (memory). */
int sqlv__ranges_key_pretty(const uint8_t *key, size_t len, uint32_t table_id, const char *name,
                            base_buf *out);

#endif
