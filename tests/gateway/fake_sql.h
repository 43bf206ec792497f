/*
** A fake of the sqlv_ session functions for gateway tests, so they do not
** depend on sql/. Canned statements (split on ';', trimmed):
**   SELECT 1   -> one int4 column "?column?", one row "1", "SELECT 1"
**   NULL       -> one text column, one NULL cell, "SELECT 1"
**   ROWS n     -> n rows (id int8, payload text of 100 bytes), "SELECT n"
**   BEGIN / COMMIT / ROLLBACK -> transaction status T / I
**   NOTICE     -> a NoticeResponse "hello from fake", then "DO"
**   WAIT       -> blocks until sqlv_session_cancel (bounded by 20 s), then
**                 57014; counts as a waiter while blocked
**   anything else -> 42601 syntax error (status E inside a block)
** In status E every statement but COMMIT/ROLLBACK fails with 25P02.
*/
#ifndef MERIDIAN_TESTS_GW_FAKE_SQL_H
#define MERIDIAN_TESTS_GW_FAKE_SQL_H

#include <stdbool.h>

#include "sql/sql.h"

sqlv_engine *fake_engine(void);
int fake_sessions_open(void);
/* Wait (bounded by timeout_ms) until exactly n sessions are open. */
bool fake_wait_sessions_open(int n, int timeout_ms);
/* Wait (bounded) until at least n statements are blocked in WAIT. */
bool fake_wait_waiters(int n, int timeout_ms);

/* Roles for sqlv_auth_lookup (FAKE_USERS_MAX at most; "root" is not
** implicit here): verifier "" for none. A name given again is replaced. */
#define FAKE_USERS_MAX 16
void fake_set_user(const char *name, const char *verifier, bool can_login, bool is_admin);
void fake_clear_users(void); /* and the rules (fake_set_hba) */
/* A user's CONNECTION LIMIT (-1: none), for users set already. */
void fake_set_conn_limit(const char *name, int limit);
/* The host-based rules every lookup returns ("" : none). */
void fake_set_hba(const char *text);
/* While on, sqlv_auth_lookup fails with SQLV_ERR_INTERNAL. */
void fake_fail_lookups(bool on);
/* Lookups made so far. */
int fake_lookups(void);

#endif
