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
    /* Extended protocol: the request failed and its error went to the sink
    ** (the caller then discards messages until Sync). */
    SQLV_ERR_FAILED = -5004,
};

/* PostgreSQL type OIDs we report. */
enum {
    SQLV_OID_BOOL = 16,
    SQLV_OID_BYTEA = 17,
    SQLV_OID_INT8 = 20,
    SQLV_OID_INT2 = 21,
    SQLV_OID_INT4 = 23,
    SQLV_OID_TEXT = 25,
    SQLV_OID_FLOAT4 = 700,
    SQLV_OID_FLOAT8 = 701,
    SQLV_OID_VARCHAR = 1043,
    SQLV_OID_UNKNOWN = 705,
    SQLV_OID_NUMERIC = 1700,
};

typedef struct sqlv_column {
    const char *name;
    uint32_t type_oid;
    int16_t type_size; /* -1 variable */
    /* Added (extended protocol): 0 text, 1 binary; the simple protocol
    ** always leaves it 0. */
    int16_t format;
} sqlv_column;

/* A value in PostgreSQL text format (or, for an extended-protocol column
** or parameter in binary format, its binary form); data NULL means SQL
** NULL. */
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
    /* Added for the extended query protocol (may be NULL for the simple
    ** protocol, which never calls them). */
    int (*parameter_description)(void *ctx, int nparams, const uint32_t *oids);
    int (*no_data)(void *ctx);
    int (*portal_suspended)(void *ctx);
} sqlv_sink;

typedef struct sqlv_engine sqlv_engine;   /* opaque, shared */
typedef struct sqlv_session sqlv_session; /* opaque, one per connection */

/* Loads the catalog from the key space. db is borrowed and must outlive the
** engine. Several engines (one per node) may share one key space: each
** session sees the others' committed DDL at its next transaction (the
** catalog version key, docs/sql.md). Close every session first.
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

/* Added (issue 9): the session's statement_timeout and
** idle_in_transaction_session_timeout in milliseconds (0: none), as SET
** last left them. The caller (the gateway) enforces them: it cancels a
** statement running too long (57014) and ends a session idle in a block too
** long (25P03). Call on the session's thread. */
uint32_t sqlv_session_statement_timeout_ms(const sqlv_session *s);
uint32_t sqlv_session_idle_in_transaction_timeout_ms(const sqlv_session *s);
/* SET name = value for this session, as the SET statement does (used for
** the startup packet's options). 0, or 1 with a SQLSTATE (42704 unknown,
** 55P02 read-only, 22023 a bad value) and a message in state/msg. */
int sqlv_session_set(sqlv_session *s, const char *name, const char *value, char state[6],
                     char *msg, size_t size);
/* Apply the settings of the session's role (ALTER ROLE ... SET), read in a
** transaction of their own; the gateway calls it at the login, before the
** startup options (which win, as in PostgreSQL). SQLV_OK, or
** SQLV_ERR_NOMEM / SQLV_ERR_INTERNAL when the role cannot be read. */
int sqlv_session_apply_role_settings(sqlv_session *s);
/* idle_session_timeout in milliseconds (0: none): the gateway ends a
** session idle outside a block that long (FATAL 57P05), as PostgreSQL 14. */
uint32_t sqlv_session_idle_session_timeout_ms(const sqlv_session *s);
/* A setting's value as SHOW gives it (NULL: unknown name); the gateway
** reports the GUC_REPORT ones (application_name, DateStyle...) with
** ParameterStatus at the login. Valid until the session's next SET or
** statement. Call on the session's thread. */
const char *sqlv_session_setting(const sqlv_session *s, const char *name);

/* SQLite's memory on this node, all sessions together (sqlite3's hard heap
** limit): an allocation past it fails its statement with 53200. The default,
** set when the first engine opens, is a quarter of the machine's memory, at
** least SQLV_MEMORY_NODE_LIMIT_MIN_BYTES (the default's floor; an explicit
** limit may be lower); 0 removes the cap. Process-wide: call before opening
** sessions (`meridian start --max-sql-memory`). */
#define SQLV_MEMORY_NODE_LIMIT_MIN_BYTES (256LL * 1024 * 1024)
int sqlv_memory_set_node_limit(int64_t bytes);
int64_t sqlv_memory_node_limit(void);
int64_t sqlv_memory_default_node_limit(void);

/* ---- extended query protocol -------------------------------------------------
** Prepared statements and portals live in the session. A named statement
** lives until closed or the session ends; the unnamed one ("") is replaced
** by the next Parse of "". Portals end with the transaction that ran them
** (at Sync outside BEGIN, at COMMIT/ROLLBACK inside), at every simple
** query (sqlv_session_exec), or when closed; the unnamed portal is
** replaced by the next Bind of "".
**
** Transactions as in PostgreSQL: outside BEGIN, the messages up to Sync run
** in one implicit transaction that sqlv_session_sync commits (or rolls back
** after an error); inside BEGIN a failed Execute moves the block to 'E'.
**
** Each call returns SQLV_OK; SQLV_ERR_FAILED when the request failed and
** its error went to the sink (the caller discards until Sync); or an
** engine error / SQLV_ERR_ABORTED as sqlv_session_exec. Names are
** NUL-terminated strings. Nothing passed in is kept after the call. */

#define SQLV_PARAMS_MAX 65535     /* parameters of one statement ($1..$65535) */
#define SQLV_STATEMENTS_MAX 1000  /* named prepared statements per session */
#define SQLV_PORTALS_MAX 1000     /* open portals per session */
#define SQLV_NAME_BYTES_MAX 1024  /* statement/portal name length */

enum { SQLV_FORMAT_TEXT = 0, SQLV_FORMAT_BINARY = 1 };

/* Parse: prepare query (one statement; "" is the empty query) under name.
** param_oids: nparam_types OIDs the client gave (0: infer). A name in use
** (other than "") is 42P05. */
int sqlv_session_prepare(sqlv_session *s, const char *name, const char *query, size_t query_len,
                         int nparam_types, const uint32_t *param_oids, const sqlv_sink *sink);

/* Bind: create portal from statement with nparams values (cell data NULL:
** SQL NULL). formats: nformats = 0 (all text), 1 (one for all) or nparams
** codes; result_formats likewise for the result columns. */
int sqlv_session_bind(sqlv_session *s, const char *portal, const char *statement, int nparams,
                      const sqlv_cell *values, int nformats, const int16_t *formats,
                      int nresult_formats, const int16_t *result_formats,
                      const sqlv_sink *sink);

/* Describe: kind 'S' statement (parameter_description, then
** row_description or no_data) or 'P' portal (row_description or no_data,
** with the formats given at Bind). */
int sqlv_session_describe(sqlv_session *s, char kind, const char *name, const sqlv_sink *sink);

/* Execute: run portal for up to max_rows rows (0: all). Sends data_row*,
** then command_complete, or portal_suspended when rows remain (a later
** Execute continues), or empty_query. */
int sqlv_session_execute(sqlv_session *s, const char *portal, uint64_t max_rows,
                         const sqlv_sink *sink);

/* Close: kind 'S' or 'P'; closing a name that does not exist is not an
** error (PostgreSQL). */
int sqlv_session_close_object(sqlv_session *s, char kind, const char *name);

/* Sync: end the implicit transaction (commit, or roll back after an error;
** a commit failure goes to the sink as an error). The caller then sends
** ReadyForQuery with sqlv_session_status. */
int sqlv_session_sync(sqlv_session *s, const sqlv_sink *sink);

/* ---- COPY t [(cols)] FROM STDIN [[WITH] (FORMAT text|csv, HEADER, DELIMITER 'c',
** NULL 's', FREEZE)] ------------------------------------------------------------------
** Sent through sqlv_session_exec (as the only statement of its string), it
** calls the copy-in callback (sqlv_session_set_copy_in) and returns with the session in
** copy-in mode (sqlv_session_in_copy). The caller then passes the
** CopyData payloads in order (any split) to sqlv_session_copy_data, and
** ends with sqlv_session_copy_done (CopyDone: sends "COPY n" or the error)
** or sqlv_session_copy_fail (CopyFail: 57014). All rows go in one
** transaction: the open block's, or an implicit one committed at done.
** A bad row ends the copy at once: copy_data sends the error, returns
** SQLV_ERR_FAILED and the session leaves copy-in mode (the caller then
** discards CopyData until CopyDone/CopyFail, as PostgreSQL does). */
/* The copy-in callback (not in sqlv_sink, whose positional initializers
** must keep compiling): called with the running sink's ctx when a COPY
** FROM STDIN statement entered copy-in mode with ncols columns in text
** format; the caller then sends CopyInResponse. NULL (the default): COPY
** FROM STDIN is 0A000. Non-zero return: client gone. */
typedef int (*sqlv_copy_in_fn)(void *ctx, int ncols);
void sqlv_session_set_copy_in(sqlv_session *s, sqlv_copy_in_fn fn);
bool sqlv_session_in_copy(const sqlv_session *s);
int sqlv_session_copy_data(sqlv_session *s, const char *data, size_t len, const sqlv_sink *sink);
int sqlv_session_copy_done(sqlv_session *s, const sqlv_sink *sink);
int sqlv_session_copy_fail(sqlv_session *s, const char *message, const sqlv_sink *sink);

/* ---- COPY t [(cols)] TO STDOUT, COPY (query) TO STDOUT [[WITH] (options)] --------
** Same options as FROM (also psql's older "CSV HEADER DELIMITER 'c'"). The
** SELECT runs as any statement (its own implicit transaction, or the
** block's); rows stream through the copy-out callbacks, called with the
** running sink's ctx: begin (CopyOutResponse, text format, ncols), one
** data per row (a whole line with its '
', valid during the call), done
** (CopyDone); then command_complete "COPY n". An error after begin goes
** to the sink's error alone. Not set (the default): COPY TO is 0A000.
** Non-zero from a callback: client gone. */
typedef struct sqlv_copy_out_fns {
    int (*begin)(void *ctx, int ncols);
    int (*data)(void *ctx, const char *data, size_t len);
    int (*done)(void *ctx);
} sqlv_copy_out_fns;
/* Copied into the session; NULL removes them. */
void sqlv_session_set_copy_out(sqlv_session *s, const sqlv_copy_out_fns *fns);

/* ---- ranges: SHOW RANGES, ALTER RANGE ... RELOCATE (docs/operations.md) -------
** sql/ knows no cluster. The node (server/) hands the engine these callbacks
** once, after sqlv_engine_open and before any session runs (the gateway is
** started after); without them the statements answer 0A000. The callbacks
** run on a session's thread, concurrently for several sessions, and may
** block (bounded by the node's own deadlines). They return 0, or non-zero
** with sqlstate (5 chars, NUL-terminated) and message set. */
#define SQLV_RANGE_REPLICAS_MAX 16
typedef struct sqlv_range_info {
    uint64_t range_id;
    uint64_t generation;
    uint8_t *start_key; /* owner: the array (sqlv_range_infos_free); NULL when start_len 0 */
    size_t start_len;
    uint8_t *end_key;   /* end_len 0: to +infinity */
    size_t end_len;
    uint64_t replicas[SQLV_RANGE_REPLICAS_MAX]; /* the voters */
    size_t n_replicas;
    uint64_t lease_holder; /* 0: unknown (no replica holding the lease answered) */
    int64_t size_bytes;    /* approximate bytes of the span; -1: unknown */
    bool load_known;       /* the leaseholder's load figures (false: NULL) */
    double reads_per_second, writes_per_second;
} sqlv_range_info;
/* Frees each info's keys (base_free) and the array (base_free). */
void sqlv_range_infos_free(sqlv_range_info *infos, size_t n);

typedef struct sqlv_admin {
    void *ctx;
    uint64_t node_id; /* this node, recorded in the range event log */
    /* The ranges overlapping [start, end) (end_len 0: to +infinity), any
    ** order. 0 with *out (owner: caller, sqlv_range_infos_free) and *n. */
    int (*ranges)(void *ctx, const uint8_t *start, size_t start_len, const uint8_t *end,
                  size_t end_len, sqlv_range_info **out, size_t *n, char sqlstate[6],
                  char *message, size_t message_size);
    /* ALTER RANGE id RELOCATE LEASE TO target. */
    int (*relocate_lease)(void *ctx, uint64_t range_id, uint64_t target, char sqlstate[6],
                          char *message, size_t message_size);
    /* ALTER RANGE id RELOCATE VOTERS FROM from TO to. */
    int (*relocate_voter)(void *ctx, uint64_t range_id, uint64_t from, uint64_t to,
                          char sqlstate[6], char *message, size_t message_size);
} sqlv_admin;
/* Copied into the engine; NULL removes them. See above for when to call. */
void sqlv_engine_set_admin(sqlv_engine *e, const sqlv_admin *admin);

/* ---- manual split points (ranges.c; docs/operations.md "Splits and merges by hand")
** ALTER TABLE t SPLIT AT records each key it splits at as a manual split
** point, in a transaction of its own BEFORE the split (a crash leaves a
** point, never a range the merge queue could fold back); UNSPLIT AT / ALL
** removes points. server/'s merge queue never merges away a range that
** starts at one. System keys of range 1 (docs/cluster.md "System keys"):
**   SQLV_SPLIT_POINT_PREFIX | key  ->  u8 version (1) */
#define SQLV_SPLIT_POINT_PREFIX "\0\0\0\0\0\0\0\0ssplitpt/"
#define SQLV_SPLIT_POINT_PREFIX_LEN 17
/* The point key of key[0..len) appended to out. 0 or -1 (memory). */
int sqlv_split_point_key(const uint8_t *key, size_t len, base_buf *out);
/* Whether key[0..len) is a manual split point, read through t. TXN_OK with
** *is set, or t's error with err set. */
int sqlv_split_point_get(txn *t, const uint8_t *key, size_t len, bool *is, txn_error *err);

/* ---- authentication (users.c; docs/security.md "Users and roles") --------------
** What the gateway needs to log a user in, read from the roles stored in the
** key space (table 3) in a read-only transaction of its own. The verifier is
** PostgreSQL's "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>"; it is
** a secret (whoever has it can impersonate the server to the user): never
** log it. Thread-safe: any thread, concurrently with sessions. */
#define SQLV_AUTH_VERIFIER_SIZE_MAX 256 /* = SEC_SCRAM_VERIFIER_SIZE_MAX */
#define SQLV_AUTH_HBA_BYTES_MAX 4096 /* = SEC_HBA_TEXT_BYTES_MAX */
typedef struct sqlv_auth_info {
    bool exists;    /* a role of that name (root always exists) */
    bool can_login; /* LOGIN (users), not NOLOGIN (roles) */
    bool is_admin;  /* root, or a member of admin, directly or not */
    char verifier[SQLV_AUTH_VERIFIER_SIZE_MAX + 1]; /* "": no password */
    bool conn_limited; /* the role has a CONNECTION LIMIT: */
    int conn_limit;    /* at most this many sessions per node (0: none may log in) */
    /* The cluster setting server.host_based_authentication.configuration,
    ** read in the same transaction ("": not set, the built-in rule). */
    char hba_conf[SQLV_AUTH_HBA_BYTES_MAX + 1];
} sqlv_auth_info;
/* SQLV_OK with *out filled (out->exists false for an unknown user or a name
** no role can have), SQLV_ERR_NOMEM, or SQLV_ERR_INTERNAL (the key space
** failed: a cluster without quorum...; the reason is logged). */
int sqlv_auth_lookup(sqlv_engine *e, const char *user, sqlv_auth_info *out);

#endif
