/*
** sql/: SQL sessions. SQLite parses and executes; every user table is a
** SQLite virtual table whose rows live in the key space through txn/. The
** catalog (table ids, schemas) is itself stored in the key space.
**
** A session is one client connection's SQL state: its SQLite connection, its
** open KV transaction, its transaction status. It is used by one thread at a
** time; the engine is shared.
**
** Results go to a sink of callbacks, in the order the PostgreSQL protocol
** wants them: per statement, either (row_description, data_row*,
** command_complete) or command_complete alone, or empty_query, or error. A
** sink callback returning non-zero stops execution (client gone).
*/
#ifndef MERIDIAN_SQL_H
#define MERIDIAN_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "txn/txn.h"

enum {
    SQLV_OK = 0,
    SQLV_ERR_NOMEM = -5001,
    SQLV_ERR_INTERNAL = -5002,
    SQLV_ERR_ABORTED = -5003, /* sink asked to stop */
};

/* PostgreSQL type OIDs we report. */
enum {
    SQLV_OID_BOOL = 16,
    SQLV_OID_BYTEA = 17,
    SQLV_OID_INT8 = 20,
    SQLV_OID_INT2 = 21,
    SQLV_OID_INT4 = 23,
    SQLV_OID_TEXT = 25,
    SQLV_OID_FLOAT8 = 701,
    SQLV_OID_UNKNOWN = 705,
    SQLV_OID_NUMERIC = 1700,
};

typedef struct sqlv_column {
    const char *name;
    uint32_t type_oid;
    int16_t type_size; /* -1 variable */
} sqlv_column;

/* A value in PostgreSQL text format; data NULL means SQL NULL. */
typedef struct sqlv_cell {
    const char *data;
    size_t len;
} sqlv_cell;

typedef struct sqlv_sink {
    void *ctx;
    int (*row_description)(void *ctx, int ncols, const sqlv_column *cols);
    int (*data_row)(void *ctx, int ncols, const sqlv_cell *cells);
    int (*command_complete)(void *ctx, const char *tag); /* "INSERT 0 2", "SELECT 3" */
    int (*empty_query)(void *ctx);
    /* sqlstate: 5 chars; message: human text. Execution of the rest of a
    ** multi-statement string stops after an error, as in PostgreSQL. */
    int (*error)(void *ctx, const char *sqlstate, const char *message);
    /* Optional (may be NULL): NOTICE messages. */
    int (*notice)(void *ctx, const char *message);
} sqlv_sink;

typedef struct sqlv_engine sqlv_engine;   /* opaque, shared */
typedef struct sqlv_session sqlv_session; /* opaque, one per connection */

/* Loads the catalog from the key space (creating the system tables on
** first start). db is borrowed and must outlive the engine.
** owner of *out: caller, sqlv_engine_close. */
int sqlv_engine_open(txn_db *db, sqlv_engine **out);
void sqlv_engine_close(sqlv_engine *e);

/* owner of *out: caller, sqlv_session_close (rolls back an open txn). */
int sqlv_session_open(sqlv_engine *e, const char *user, const char *database,
                      sqlv_session **out);
void sqlv_session_close(sqlv_session *s);

/* Run a simple-protocol query string (one or more statements separated by
** ';'). Without BEGIN each statement is its own transaction. Returns SQLV_OK
** even when a statement failed (the error went to the sink); an error code
** only for the engine's own failures or SQLV_ERR_ABORTED. */
int sqlv_session_exec(sqlv_session *s, const char *query, size_t query_len,
                      const sqlv_sink *sink);

/* 'I' idle, 'T' in a transaction block, 'E' in a failed transaction block. */
char sqlv_session_status(const sqlv_session *s);

/* Ask a running statement to stop at its next row (CancelRequest); safe to
** call from another thread. */
void sqlv_session_cancel(sqlv_session *s);

#endif
