/*
** sql/ internals. Nothing outside sql/ includes this file.
**
** Pieces:
**   engine.c   the shared engine: catalog snapshots (the newest one cached
**              under a mutex), implicit DDL, catalog persistence and the
**              catalog version in the key space.
**   session.c  one client connection: its SQLite connection, its KV
**              transaction, statement splitting, BEGIN/COMMIT/ROLLBACK,
**              results to the sink, SQLSTATE mapping.
**   vtab.c     the "meridian" SQLite module: one virtual table per user
**              table, scans through txn_scan, writes through txn_put.
**   value.c    the row value format, column affinity, PostgreSQL text
**              output of values.
**   index.c    secondary indexes: CREATE/DROP INDEX, UNIQUE constraints,
**              the online backfill, index entry keys.
**   upsert.c   INSERT ... ON CONFLICT and ... RETURNING, which SQLite
**              refuses on virtual tables, as sequences of plain statements.
**
** Key space layout (see docs/decisions/003-sql-on-sqlite-vtabs.md):
**   table 1 index 1: catalog      key = prefix(1,1) + TEXT(lower(name))
**                                 value = 0x01 | u32 table id BE | CREATE sql
**   table 2 index 1: counters     key = prefix(2,1) + TEXT("table_id")
**                                 value = u64 next table id BE
**                                 key = prefix(2,1) + TEXT("catalog_version")
**                                 value = u64 catalog version BE (absent: 0);
**                                 every transaction that writes the catalog
**                                 reads it and writes it + 1
**   table >= 100 index 1: rows    key = prefix(id,1) + PK values (or the
**                                 hidden INTEGER row id); value = row format
**   table >= 100 index >= 2:      secondary index entries (index.c):
**                                 key = prefix(id,ix) + indexed values
**                                 [+ the row's key suffix]; value = the
**                                 row's key suffix
** A catalog row with secondary indexes (or whose table ever had one) is
** version 2: 0x02 | u32 id | u32 CREATE length | CREATE sql | index
** section (sqlv__index_section_encode); version 1 rows still load.
*/
#ifndef MERIDIAN_SQL_INT_H
#define MERIDIAN_SQL_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "encoding/encoding.h"
#include "sql/sql.h"

#define SQLV__CATALOG_TABLE_ID 1u
#define SQLV__COUNTER_TABLE_ID 2u
#define SQLV__FIRST_USER_TABLE_ID 100u
#define SQLV__ROW_INDEX_ID 1u

#define SQLV__COLUMNS_MAX 1000                   /* columns per table */
#define SQLV__TABLES_MAX 100000                  /* tables in the catalog */
#define SQLV__STATEMENTS_MAX 10000               /* statements per query string */
#define SQLV__VALUE_BYTES_MAX (32 * 1024 * 1024) /* one value; = STORAGE_VALUE_SIZE_MAX */
#define SQLV__SQL_BYTES_MAX (16 * 1024 * 1024)   /* one statement's text */
#define SQLV__NAME_BYTES_MAX 63                  /* identifier length, as PostgreSQL */
#define SQLV__ROW_FORMAT_VERSION 1
#define SQLV__CATALOG_FORMAT_VERSION 1
#define SQLV__KEY_COLUMN "_meridian_key" /* the hidden encoded-key column */

/* Column classes: what a column stores and how a value is converted on the
** way in (PostgreSQL-like assignment) and reported (type OID). */
typedef enum sqlv__class {
    SQLV__CLASS_INT4 = 0, /* INT, INTEGER, INT4, MEDIUMINT: integer */
    SQLV__CLASS_INT8,     /* BIGINT, INT8: integer */
    SQLV__CLASS_INT2,     /* SMALLINT, INT2, TINYINT: integer */
    SQLV__CLASS_BOOL,     /* BOOL, BOOLEAN: integer 0/1 */
    SQLV__CLASS_REAL,     /* REAL, FLOAT*, DOUBLE*: real */
    SQLV__CLASS_NUMERIC,  /* NUMERIC, DECIMAL: integer or real */
    SQLV__CLASS_TEXT,     /* TEXT, VARCHAR, CHAR, and any type we do not know */
    SQLV__CLASS_BLOB,     /* BYTEA, BLOB */
} sqlv__class;

typedef struct sqlv__column {
    char *name;      /* owner: the table */
    char *decl_type; /* as written; owner: the table */
    sqlv__class cls;
    bool not_null; /* declared NOT NULL or part of the PK */
    /* DEFAULT expression as SQLite keeps it (pragma table_xinfo), NULL when
    ** none: applied by our INSERT rewrite (default.c), since SQLite does
    ** not apply defaults to virtual tables; owner: the table */
    char *default_expr;
    /* ADD COLUMN ... DEFAULT on a table with rows: the value the rows stored
    ** before it read (PostgreSQL's attmissingval, computed once), as a
    ** one-column row (row format); NULL: none, they read NULL. Kept in the
    ** CREATE text as a comment (SQLV__MISSING_MARK); owner: the table */
    uint8_t *missing;
    size_t missing_len;
} sqlv__column;

/* The comment in a CREATE text that gives column k (0-based) its missing
** value: SQLV__MISSING_MARK "k HEX*" "/", HEX the one-column row. Only a
** comment between tokens counts (never text inside a string literal). */
#define SQLV__MISSING_MARK "/*meridian:missing "


/* A table descriptor. Immutable once built; owned by one catalog snapshot
** (or a session's pending DDL), copied (sqlv__table_clone) by whoever
** keeps it longer. */
typedef struct sqlv__table {
    uint32_t id;
    char *name;       /* owner: the table */
    char *create_sql; /* normalized CREATE TABLE text; owner: the table */
    uint64_t shape;   /* hash of create_sql: same id and shape, same columns */
    int ncols;
    sqlv__column *cols; /* owner: the table */
    int npk;            /* 0: hidden row id */
    int *pk;            /* npk column indexes in key order; owner: the table */
    /* Secondary indexes (index.c, "secondary indexes" below). */
    int nindexes;
    struct sqlv__index *indexes; /* nindexes; owner: the table */
    uint32_t next_index_id;      /* the id the next index takes (never reused) */
    /* A view (view.c): create_sql is its SQLite declaration, no rows, no
    ** key, no index; cols are its output columns. */
    bool is_view;
    char *view_query;    /* the query as stored (dialect-rewritten); owner: the table */
    uint32_t *view_deps; /* ids of the relations it reads directly; owner: the table */
    int nview_deps;
} sqlv__table;

void sqlv__table_free(sqlv__table *t);
/* owner of *out: caller, sqlv__table_free. */
int sqlv__table_clone(const sqlv__table *t, sqlv__table **out);
/* Parse a CREATE TABLE statement in a scratch SQLite connection.
** On a user error returns 1 and fills sqlstate/message; 0 ok; <0 internal.
** owner of *out: caller, sqlv__table_free. */
int sqlv__table_parse(const char *sql, uint32_t id, sqlv__table **out, bool *if_not_exists,
                      char sqlstate[6], char *message, size_t message_size);
uint32_t sqlv__class_oid(sqlv__class c);
sqlv__class sqlv__class_of_decl(const char *decl_type);

/* ---- column defaults (default.c) --------------------------------------------
** An INSERT into t (dialect-rewritten text) completed so that SQLite gets a
** value for every column with a DEFAULT: omitted columns are appended to
** the column list with their default expression in each VALUES row (or
** around an INSERT ... SELECT), a DEFAULT item in VALUES becomes the
** column's expression, DEFAULT VALUES a VALUES row. 0 with *out NULL when
** nothing changes; 0 with *out (owner: caller, base_free); 1 refused
** (state/msg set); SQLV_ERR_NOMEM. */
int sqlv__default_rewrite(const sqlv__table *t, const char *text, size_t len, char **out,
                          char state[6], char *msg, size_t size);
/* The INSERT's target table name (folded as an identifier) into name;
** false when text is not an INSERT INTO name. */
bool sqlv__default_target(const char *text, size_t len, char *name, size_t size);
/* sqlv__default_rewrite of an INSERT into the table the session sees now
** (s->cat and its block's DDL); not an INSERT, or an unknown table: 0 with
** *out NULL. */
int sqlv__default_apply(sqlv_session *s, const char *text, size_t len, char **out, char state[6],
                        char *msg, size_t size);

/* ---- views (view.c; docs/sql.md "Views") ----------------------------------------------
** A view is a catalog row (table 1, keyed by its name like a table's: one
** namespace) of its own format:
**   0x03 | u32 id | u32 n | SQLite declaration (n bytes) | u32 n | query |
**   u16 ncols | ncols x (u16 n | name | u16 n | declared type) |
**   u16 ndeps | ndeps x u32 id                               (all BE)
** and a descriptor (is_view) in the catalog snapshot beside the tables. */
#define SQLV__CATALOG_VIEW_VERSION 3
#define SQLV__VIEW_DEPS_MAX 1000 /* relations one view reads */
/* The row of view t appended to out. 0 or SQLV_ERR_NOMEM. */
int sqlv__view_encode(const sqlv__table *t, base_buf *out);
/* A view's descriptor from its row (v[0] == SQLV__CATALOG_VIEW_VERSION).
** 0, SQLV_ERR_NOMEM, or 1 when malformed. owner of *out: caller. */
int sqlv__view_decode(const uint8_t *v, size_t vl, sqlv__table **out);
/* The views among rels[0..n) (a session's or an attempt's relations) that
** read, directly or through other views, one of ids[0..nids) and are not
** themselves in ids: appended to *deps (cap SQLV__VIEW_DEPS_MAX + nids
** given by the caller in *ndeps / deps_cap), in an order that drops each
** view before the views it reads. 0, or 1 when there are more than
** deps_cap. */
int sqlv__view_dependents(const sqlv__table *const *rels, int n, const uint32_t *ids, int nids,
                          uint32_t *deps, int *ndeps, int deps_cap);
#define SQLV__VIEW_DROP_MAX 64 /* names in one DROP VIEW */
/* CREATE [OR REPLACE] VIEW name [(cols)] AS query, parsed (names folded
** as PostgreSQL folds identifiers; query borrowed from the text). */
typedef struct sqlv__view_stmt {
    bool or_replace;
    char name[SQLV__NAME_BYTES_MAX * 4 + 1];
    char (*cols)[SQLV__NAME_BYTES_MAX * 4 + 1]; /* ncols; owner: caller, base_free */
    int ncols;
    const char *query;
    size_t query_len;
} sqlv__view_stmt;
/* 0, or 1 with state/msg (42601, 0A000). v->cols is allocated by the call
** (NULL when none); free it with base_free whatever the result. */
int sqlv__view_parse(const char *text, size_t len, sqlv__view_stmt *v, char state[6], char *msg,
                     size_t size);
typedef struct sqlv__view_drop {
    char names[SQLV__VIEW_DROP_MAX][SQLV__NAME_BYTES_MAX * 4 + 1];
    int n;
    bool if_exists, cascade;
} sqlv__view_drop;
int sqlv__view_drop_parse(const char *text, size_t len, sqlv__view_drop *d, char state[6],
                          char *msg, size_t size);
/* Collect the relations SQLite reads directly while the view's query is
** prepared on s's connection (between begin and end). */
int sqlv__view_reads_begin(sqlv_session *s);
void sqlv__view_reads_end(sqlv_session *s);
/* The descriptor of view name (id 0) from its query prepared as st (with
** the reads collected): columns named colnames[0..ncolnames) then as the
** query names them. 0, 1 with state/msg (42601, 42701, 54000), or
** SQLV_ERR_NOMEM. owner of *out: caller, sqlv__table_free. */
int sqlv__view_make(sqlv_session *s, const char *name,
                    char (*colnames)[SQLV__NAME_BYTES_MAX * 4 + 1], int ncolnames,
                    const char *query, sqlite3_stmt *st, sqlv__table **out, char state[6],
                    char *msg, size_t size);

/* ---- SELECT DISTINCT ON (distinct_on.c) ---------------------------------------
** A statement (dialect text) with SELECT DISTINCT ON (...) queries (its own
** query, a parenthesized subquery, a WITH query, INSERT ... SELECT's
** source) rewritten into what SQLite runs: a CTE over the select list and a
** row_number() window per group (the file's header). Each select list is
** prepared alone on s's connection for its columns. 0 with *out NULL: no
** DISTINCT ON; 0 with *out (owner: caller, base_free); 1 refused
** (state/msg: 42P10, 0A000, or the select list's own error);
** SQLV_ERR_NOMEM. */
int sqlv__distinct_on_apply(sqlv_session *s, const char *text, size_t len, char **out,
                            char state[6], char *msg, size_t size);
/* Does text have a DISTINCT ON at all? (A token pass, nothing kept.) */
bool sqlv__distinct_on_wanted(const char *text, size_t len);

/* ---- CHECK constraints (check.c) ----------------------------------------------
** Read from the table's CREATE text each time (no copy in the descriptor). */
typedef struct sqlv__check {
    char *name; /* as written, or PostgreSQL's default name; owner: the array */
    char *expr; /* the expression's text (SQLite's); owner: the array */
} sqlv__check;

/* t's CHECK constraints in the order written. 0 or SQLV_ERR_NOMEM.
** owner of *out: caller, sqlv__checks_free(*out, *n). */
int sqlv__checks_of(const sqlv__table *t, sqlv__check **out, int *n);
void sqlv__checks_free(sqlv__check *c, int n); /* NULL: nothing */
struct sqlv__cell;
/* vtab.c: the SELECT that evaluates c[0..n) over one row of t bound as ?1..?ncols
** (each cast to its column's declared class), one column per check: 1 when
** it passes (true or NULL), 0 when it fails. NULL: out of memory.
** owner of the result: caller, sqlite3_free. */
char *sqlv__checks_select(const sqlv__table *t, const sqlv__check *c, int n);
/* Binds cells[0..ncols) to ?1..?ncols of that SELECT without copying: the
** cells' bytes must stay until the statement is reset. An SQLite code. */
int sqlv__checks_bind(sqlite3_stmt *st, const struct sqlv__cell *cells, int ncols);

/* ---- catalog snapshots ------------------------------------------------------
** A catalog is the list of tables at one catalog version (the value of the
** version key). Every DDL transaction reads and bumps that key, so a
** version names exactly one list; a snapshot is immutable once built and
** shared by counted references: the engine holds its newest one, each
** session the one its transaction read (s->cat). */
typedef struct sqlv__catalog {
    uint64_t version;
    sqlv__table **tables; /* ntables; owner: this catalog */
    int ntables;
    _Atomic int refs;
} sqlv__catalog;

void sqlv__catalog_ref(sqlv__catalog *c);
void sqlv__catalog_unref(sqlv__catalog *c); /* NULL: nothing */
/* Lookups; the pointer lives as long as the caller's reference to c. */
const sqlv__table *sqlv__catalog_find(const sqlv__catalog *c, const char *name);
const sqlv__table *sqlv__catalog_find_id(const sqlv__catalog *c, uint32_t id);

/* ---- engine ------------------------------------------------------------ */
#define SQLV__DDL_RETRIES_MAX 10 /* implicit DDL transactions tried on 40001 */

struct sqlv_engine {
    txn_db *db;              /* borrowed */
    pthread_mutex_t mu;      /* guards current (the pointer, not the snapshot) */
    sqlv__catalog *current;  /* the newest catalog loaded; counted reference */
    /* Serializes this engine's implicit DDL and table id allocation, so
    ** that local DDL does not fail with 40001 against itself; DDL of other
    ** engines (nodes) and of transaction blocks meets in the version key. */
    pthread_mutex_t ddl_mu;
    _Atomic uint64_t next_row_id;
    uint8_t version_key[32];        /* the encoded version key (set at open) */
    size_t version_key_len;
    sqlv_admin admin; /* the node's range callbacks (ranges.c); ranges NULL: none */
    struct sqlv__seq_cache *seq_cache; /* sequence blocks (sequence.c); owner: engine */
};

/* The engine's newest catalog: counted reference (sqlv__catalog_unref). */
sqlv__catalog *sqlv__engine_catalog(sqlv_engine *e);
/* Make *cat (a counted reference, may be NULL) the catalog at kv's read
** timestamp: reads the version key through kv (so a read-write kv has it
** in its read set) and, only when it differs from (*cat)->version, takes
** the engine's newest catalog if it has that version or loads it through
** kv (publishing it as the newest when it is newer). TXN_OK, or a txn
** error with err set (kv stays usable for rollback). */
int sqlv__engine_catalog_at(sqlv_engine *e, txn *kv, sqlv__catalog **cat, txn_error *err);

/* A snapshot of the catalog's (name, id, shape) list: what a session has
** declared in its SQLite connection. */
typedef struct sqlv__catalog_entry {
    char *name;
    uint32_t id;
    uint64_t shape;
    char *view_sql; /* a view's SQLite declaration, NULL for a table; owner: the entry */
} sqlv__catalog_entry;
void sqlv__catalog_list_free(sqlv__catalog_entry *list, int n);
uint64_t sqlv__engine_row_id(sqlv_engine *e);

/* Results of a DDL statement: sqlstate[0] == 0 on success. */
typedef struct sqlv__result {
    char sqlstate[6];
    char message[512];
    char notice[256];
} sqlv__result;
/* Sets res's sqlstate to state and its message from fmt (index.c; rekey.c uses it). */
void sqlv__result_set(sqlv__result *res, const char *state, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* res from the txn error rc (err set from it): its sqlstate and message, or
** XX000 "transaction failed". */
void sqlv__result_txn(sqlv__result *res, int rc, txn_error *err);
/* Implicit (outside a block) CREATE TABLE / DROP TABLE: each in its own
** KV transaction whose catalog is read at its own read timestamp, retried
** up to SQLV__DDL_RETRIES_MAX times on 40001. */
int sqlv__engine_create_table(sqlv_engine *e, const char *sql, sqlv__result *res);
/* names: n names to drop; cascade: the views that read them too (else
** 2BP01 when one does). */
int sqlv__engine_drop_tables(sqlv_engine *e, char **names, int n, bool if_exists, bool cascade,
                             sqlv__result *res);
/* One attempt of an implicit DDL statement: reads the catalog cat (at kv's
** read timestamp) and writes through kv. 0 (res set on a user or txn
** error; a notice alone commits) or <0. */
typedef int (*sqlv__ddl_attempt_fn)(sqlv_engine *e, txn *kv, const sqlv__catalog *cat, void *arg,
                                    sqlv__result *res);
/* Runs fn in its own KV transaction under e->ddl_mu (one DDL of this
** engine at a time), committing, retried up to SQLV__DDL_RETRIES_MAX times
** on 40001. res: a user error, or the failed commit's (its notice cleared).
** 0 or fn's <0. */
int sqlv__engine_run_ddl(sqlv_engine *e, sqlv__ddl_attempt_fn fn, void *arg, sqlv__result *res);

/* ---- DDL inside a transaction block -----------------------------------------
** CREATE TABLE / DROP TABLE / ALTER TABLE inside BEGIN write the catalog
** (and bump the version) through the session's own KV transaction; others
** see the change after COMMIT, at their next transaction (a new version).
** Until then the session sees its own changes through this overlay on
** s->cat; ROLLBACK clears it. A concurrent DDL, or a read-write transaction
** that read the version, makes one of the commits fail with 40001. An
** altered table (same id, new columns) is both dropped and created. */
typedef struct sqlv__pending_ddl {
    sqlv__table **created; /* tables created in the txn; owner: this struct */
    int ncreated, cap_created;
    uint32_t *dropped; /* ids of committed tables dropped in the txn */
    int ndropped, cap_dropped;
} sqlv__pending_ddl;
void sqlv__pending_ddl_clear(sqlv__pending_ddl *p);
/* Catalog writes of one CREATE TABLE in kv: allocates the id (counter key)
** and writes the catalog row. On a user error res->sqlstate is set.
** t->id is set on success. Returns 0 or <0 (internal). */
int sqlv__catalog_create(txn *kv, sqlv__table *t, sqlv__result *res);
/* Write only the catalog row of t (t->id already allocated), and bump the
** catalog version. */
int sqlv__catalog_put(txn *kv, const sqlv__table *t, sqlv__result *res);
/* A fresh table id, in its own committed KV transaction: ids handed to a
** transaction block that later rolls back are never reused, so a session's
** stale declaration (name, id) can never match another table. */
int sqlv__engine_allocate_table_id(sqlv_engine *e, uint32_t *id, sqlv__result *res);
/* Catalog writes of dropping table (name, id) in kv: catalog row, the
** catalog version bump, and (with_rows) every key of the table. In a
** cluster the rows live in the table's own range, so they go afterwards in
** a transaction of their own (sqlv__engine_after_ddl): the table id is
** never reused, so they are unreachable from the moment the drop commits. */
int sqlv__catalog_drop(txn *kv, const char *name, uint32_t id, bool with_rows,
                       sqlv__result *res);
/* After a committed DDL transaction (docs/range.md, "Splits and
** addressing"), in a cluster only: each created table gets its own range (a
** split at its first key), and the rows of each dropped table are deleted.
** Best effort: failures are logged, never returned (the DDL committed). */
void sqlv__engine_after_ddl(sqlv_engine *e, const uint32_t *created, int ncreated,
                            const uint32_t *dropped, int ndropped);
/* The first key of table id's span (its range's start once it has one). */
int sqlv__table_split_key(uint32_t table_id, base_buf *out);

/* ---- keys ---------------------------------------------------------------- */
int sqlv__table_prefix(base_buf *out, uint32_t table_id);
/* [start, end) of every key of the table (all its indexes). */
int sqlv__table_span(uint32_t table_id, base_buf *start, base_buf *end);

/* ---- row values ------------------------------------------------------------
** Row format, version 1:
**   u8 version (1) | varint ncols | ncols x column
**   column := u8 tag | payload
**     tag 0 NULL    (no payload)
**     tag 1 INTEGER 8 bytes big-endian two's complement
**     tag 2 REAL    8 bytes big-endian IEEE 754 bits
**     tag 3 TEXT    varint length | bytes
**     tag 4 BLOB    varint length | bytes
** A row shorter than the table (fewer columns) reads the missing ones as
** NULL (room for ADD COLUMN later). Decoding never trusts the bytes: a
** malformed row is an error, not a crash. */
typedef struct sqlv__cell {
    int type; /* SQLITE_NULL, SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB */
    int64_t i;
    double r;
    const uint8_t *p; /* TEXT/BLOB bytes; borrowed */
    size_t n;
} sqlv__cell;

int sqlv__row_encode(base_buf *out, const sqlv__cell *cells, int n);
/* Decodes up to n columns into cells (pointing into row); returns 0 or -1 on
** malformed input. */
int sqlv__row_decode(const uint8_t *row, size_t len, sqlv__cell *cells, int n);
/* sqlv__row_decode of a row of t (t->ncols cells): a column the row does
** not store (added after it was written) reads its missing value, or NULL.
** The cells borrow from row and from t. 0 or -1 (malformed). */
int sqlv__row_decode_table(const sqlv__table *t, const uint8_t *row, size_t len,
                           sqlv__cell *cells);
/* sqlv__cell -> enc_value (borrowed bytes). */
void sqlv__cell_to_enc(const sqlv__cell *c, enc_value *v);

/* Convert a value for storage into a column of class cls (PostgreSQL-like
** assignment). scratch holds converted bytes (owner: caller). Returns 0, or
** 1 with sqlstate/message set (22P02 etc). *out borrows from v or scratch. */
int sqlv__assign(sqlite3_value *v, sqlv__class cls, const char *type_name, base_buf *scratch,
                 sqlv__cell *out, char sqlstate[6], char *message, size_t message_size);

/* PostgreSQL text form of a value into out (appends). */
int sqlv__format_value(sqlite3_stmt *stmt, int col, uint32_t oid, base_buf *out, bool *is_null);
/* Shortest round-trip representation of a double, as PostgreSQL 12+. */
void sqlv__format_double(double d, char *buf, size_t size);

/* ---- extended protocol (prepared.c) ------------------------------------------ */
/* A prepared statement. Referenced by the session's list (until Close or
** replacement) and by each portal bound from it; freed at refs == 0. */
typedef struct sqlv__prepared {
    char *name;          /* owner: this */
    char *text;          /* the statement, NUL-terminated; owner: this */
    size_t len;
    bool empty;          /* the empty query */
    bool utility;        /* run by the session's dispatcher (BEGIN, SET, DDL...) */
    sqlite3_stmt *stmt;  /* SQLite statements: parsed once at Parse; owner: this */
    bool stmt_in_use;    /* a portal is running stmt */
    bool dml_ext;        /* stmt is upsert.c's parameter carrier (ON CONFLICT, RETURNING) */
    /* An INSERT: its text before the column defaults were applied (NULL:
    ** not one; owner: this), and the catalog they were read from; a Bind
    ** under another catalog applies them again (ALTER ... SET DEFAULT). */
    char *base_text;
    uint64_t defaults_cat_version, defaults_ddl_version;
    int nparams;
    uint32_t *param_oids; /* nparams; owner: this */
    int refs;
} sqlv__prepared;

typedef struct sqlv__portal {
    char *name;            /* owner: this */
    sqlv__prepared *ps;    /* counted reference */
    sqlite3_stmt *stmt;    /* ps->stmt (own_stmt false) or a fresh one */
    bool own_stmt;
    int ncols;
    uint32_t *oids;        /* ncols; valid once typed */
    int16_t *formats;      /* ncols result formats; owner: this */
    bool typed;            /* oids computed */
    bool started, done, have_row;
    bool have_sp;
    uint32_t sp;
    uint64_t rows;
    char tag[64];          /* the completion tag once done */
    uint64_t seq;          /* creation order: s->portal_seq when bound (> 0) */
    bool running;          /* its utility statement runs now (run_utility):
                              sqlv__portals_drop_after leaves it */
    struct sqlv__dml_out *dml_out; /* ps->dml_ext: the run's output; owner: this */
} sqlv__portal;

/* Drop every portal (at the end of a transaction); prepared.c. */
void sqlv__portals_clear(sqlv_session *s);
/* Drop the portals bound after portal_seq (seq > portal_seq), but not one
** that is running: ROLLBACK TO drops those created after its savepoint, as
** PostgreSQL does; 0 drops all (a transaction RELEASE ended). prepared.c. */
void sqlv__portals_drop_after(sqlv_session *s, uint64_t portal_seq);
/* Free every statement and portal (session close). */
void sqlv__extended_free(sqlv_session *s);

/* The session.c pieces prepared.c reuses. */
typedef struct sqlv__run {
    sqlv_session *s;
    const sqlv_sink *sink;
    int sink_rc; /* non-zero: the sink asked to stop */
} sqlv__run;
/* 0 STMT_OK, 1 STMT_FAILED (error sent, status updated). */
int sqlv__run_statement(sqlv__run *r, const char *text, size_t len);
int sqlv__fail(sqlv__run *r, const char *state, const char *msg);
int sqlv__emit_error(sqlv__run *r, const char *state, const char *msg);
/* A txn error (err may be NULL: the generic message of rc). */
int sqlv__fail_txn(sqlv__run *r, int rc, txn_error *err);
int sqlv__sync_tables(sqlv_session *s);
/* Begin the session's KV transaction (s->kv == NULL before) and make s->cat
** the catalog at its read timestamp (sqlv__engine_catalog_at). TXN_OK, or
** a txn error with err set and s->kv NULL. */
int sqlv__session_begin(sqlv_session *s, bool read_only, txn_error *err);
/* Prepare text on the session's connection with its declarations synced
** to s->cat (the open transaction's catalog). SQLite's result code (an
** error of ours is recorded as the session's error); *st as
** sqlite3_prepare_v2. */
int sqlv__prepare(sqlv_session *s, const char *text, size_t len, sqlite3_stmt **st,
                  const char **tail);
void sqlv__map_error(sqlv_session *s, int rc, char state[6], char *msg, size_t size);
/* Column names/types of st as sent in a RowDescription (to r's sink if it
** has row_description); oids gets each column's type. 0 or -1 (memory). */
int sqlv__describe(sqlv__run *r, sqlite3_stmt *st, const char *text, size_t len, bool have_row,
                   uint32_t *oids);
/* The CommandComplete tag of a finished SQLite statement. */
void sqlv__completion_tag(sqlv_session *s, const char *text, size_t len, uint64_t rows,
                          char *tag, size_t size);
void sqlv__end_implicit_block(sqlv__run *r);
/* The name of a table id-less lookup for parameter inference: id or 0. */
uint32_t sqlv__session_find_id(sqlv_session *s, const char *name);
/* The table name as the session sees it (its block's DDL included), or
** NULL; valid until the session's next statement. */
const sqlv__table *sqlv__session_find_table(sqlv_session *s, const char *name);

/* ---- savepoints (session.c) --------------------------------------------------
** SAVEPOINT name inside an explicit block: a KV savepoint of the block's
** transaction (its later writes undo) and a copy of the block's DDL overlay
** (s->ddl) as it was, so ROLLBACK TO brings both back. */
#define SQLV__SAVEPOINTS_MAX 10000 /* alive per block (54000 past it) */
/* CockroachDB's restart savepoint: taken first in a block, its RELEASE
** commits (session.c, docs/sql.md "Savepoints"). */
#define SQLV__RESTART_SAVEPOINT "cockroach_restart"
/* 25000: any statement but COMMIT/ROLLBACK once RELEASE committed the block
** (CockroachDB's words). */
#define SQLV__COMMITTED_MESSAGE                                                                    \
    "current transaction is committed, commands ignored until end of transaction block"

typedef struct sqlv__savepoint {
    char *name;            /* as PostgreSQL folds it (lower case unless quoted); owner: this */
    uint32_t kv_sp;        /* txn_savepoint id in s->kv */
    bool at_start;         /* taken before the block's first statement (s->kv was
                              NULL): ROLLBACK TO it may begin the block's KV
                              transaction anew when the old one was aborted */
    sqlv__pending_ddl ddl; /* s->ddl when taken; owner: this */
    uint64_t portal_seq;   /* s->portal_seq when taken: ROLLBACK TO drops the
                              portals bound after it */
} sqlv__savepoint;

/* ---- sessions and the module ------------------------------------------------ */
struct sqlv_session {
    sqlv_engine *engine;
    sqlite3 *db;
    txn *kv;           /* the open KV transaction or NULL */
    char status;       /* 'I', 'T', 'E' */
    bool kv_read_only; /* kv was begun read-only (implicit SELECT) */
    /* TRUNCATE's DELETEs run: the authorizer's DELETE takes TRUNCATE */
    bool truncating;
    /* status 'T' stands for PostgreSQL's implicit transaction block: the
    ** statements of one multi-statement query string outside BEGIN, which
    ** commit together at the end of the string (or roll back on an error). */
    bool implicit_block;
    _Atomic int cancel;
    /* The catalog of the open transaction (read at its first statement), or
    ** of the last one: counted reference, never NULL. */
    sqlv__catalog *cat;
    uint64_t synced_version;     /* cat->version the declarations reflect */
    bool sync_complete;          /* every table of synced_version is declared */
    sqlv__catalog_entry *synced; /* tables declared in db; owner: session */
    int nsynced;
    sqlv__pending_ddl ddl;      /* DDL of the open transaction block */
    uint64_t ddl_version;        /* bumped whenever ddl changes */
    uint64_t synced_ddl_version; /* ddl_version the declarations reflect */
    /* User savepoints of the open explicit block, oldest first (newest
    ** last: a repeated name finds the newest); owner: session. */
    sqlv__savepoint *savepoints;
    int nsavepoints, cap_savepoints;
    /* RELEASE SAVEPOINT cockroach_restart committed the explicit block
    ** (CockroachDB's CommitWait): status 'T', s->kv NULL, no savepoints;
    ** COMMIT or ROLLBACK ends the block (tag COMMIT), anything else is
    ** 25000 and leaves it as it is. */
    bool awaiting_commit;
    uint64_t retry_rng;          /* jitter of the implicit-retry backoff */
    char *user;
    char *database;
    /* The first error a virtual table hit during the current statement:
    ** reported instead of SQLite's own message. */
    char err_sqlstate[6];
    char err_message[512];
    /* Extended protocol (prepared.c). */
    sqlv__prepared **stmts; /* named and unnamed statements; owner: session */
    int nstmts, cap_stmts;
    sqlv__portal **portals; /* owner: session */
    int nportals, cap_portals;
    uint64_t portal_seq;    /* portals bound so far (their seq) */
    /* PostgreSQL settings changed by SET (settings.c); the others have
    ** their defaults. */
    struct {
        char name[64];
        char value[256];
    } settings[32];
    int nsettings;
    int32_t backend_pid; /* pg_backend_pid(): unique per process run */
    /* SHOW commit_wait: the last read-write commit's wait, formatted by
    ** sqlv__note_commit ("" before the first one). */
    char commit_wait[96];
    /* AS OF SYSTEM TIME and READ ONLY (asof.c; docs/sql.md "Stale reads"):
    ** the explicit block's modes (BEGIN / SET TRANSACTION; applied when the
    ** block's KV transaction begins, reset by the next BEGIN), and the
    ** timestamp of the statement running in 'I' with the clause (HLC_ZERO
    ** otherwise). */
    hlc_timestamp block_as_of;
    bool block_read_only;
    hlc_timestamp stmt_as_of;
    struct sqlv__copy *copy; /* COPY FROM STDIN in progress (copy.c); owner: session */
    sqlv_copy_in_fn copy_in; /* NULL: COPY FROM STDIN refused */
    sqlv_copy_out_fns copy_out; /* begin NULL: COPY TO STDOUT refused (copy.c) */
    struct sqlv__capture *capture; /* keys the running statement writes (upsert.c); borrowed */
    /* SQLite's memory charged to this session (memory.c); owner: session,
    ** released after db is closed. */
    struct sqlv__mem *mem;
    struct sqlv__priv_cache *priv; /* effective privileges (privileges.c); owner: session */
    struct sqlv__explain *explain; /* the EXPLAIN running a statement (explain.c); borrowed */
    struct sqlv__seq_session *seq; /* currval/lastval (sequence.c); owner: session */
    /* While CREATE VIEW prepares its query: the relations SQLite reads
    ** directly (the authorizer's SQLITE_READ outside a view); borrowed. */
    struct sqlv__view_reads *view_reads;
};
/* view.c: the authorizer saw a direct read of table (NULL-safe). */
void sqlv__view_note_read(sqlv_session *s, const char *table);

/* explain.c: EXPLAIN [ANALYZE] stmt (docs/sql.md "EXPLAIN"). p..end is the
** text after EXPLAIN. The statement's STMT result. */
int sqlv__explain_stmt(sqlv__run *r, const char *p, const char *end);
/* How a table is read (vtab.c plans, recorded while s->explain is set). */
enum {
    SQLV__ACCESS_POINT = 1,   /* one row by its primary key */
    SQLV__ACCESS_SCAN,        /* a range of the primary key */
    SQLV__ACCESS_FULL,        /* every row */
    SQLV__ACCESS_INDEX,       /* a range of a secondary index, then each row */
    SQLV__ACCESS_INDEX_POINT, /* one unique index entry, then its row */
};
/* vtab.c: the access kind of an xBestIndex plan (idx_num) of t; *slot 0
** the rows, else 1 + the index's position. */
int sqlv__vtab_plan_kind(const sqlv__table *t, int idx_num, int *slot);
/* vtab.c -> explain.c, only while s->explain is set. A read of t through
** slot of [start, end) (end NULL: the one key start). true: EXPLAIN without
** ANALYZE, the read must not happen (the cursor stays empty). */
bool sqlv__explain_note_read(sqlv_session *s, const sqlv__table *t, int slot, int kind,
                             const base_buf *start, const base_buf *end);
/* An index scan's row fetch (one KV request). */
void sqlv__explain_note_fetch(sqlv_session *s);
/* A row write to t. true: EXPLAIN without ANALYZE, do not write. */
bool sqlv__explain_note_write(sqlv_session *s, const sqlv__table *t);
/* settings.c: a commit of the statement EXPLAIN ANALYZE runs. */
void sqlv__explain_note_commit(sqlv_session *s, const txn_commit_info *info);

/* copy.c */
/* COPY statement: enter copy-in mode. STMT result codes of session.c. */
int sqlv__copy_begin(sqlv__run *r, const char *text, size_t len);
/* Leave copy-in mode, rolling back an implicit transaction. */
void sqlv__copy_abort(sqlv_session *s);
/* Tests: > 0, rows per batch of a COPY outside a block instead of
** SQLV__COPY_BATCH_ROWS_MAX (copy.c). */
extern int sqlv__copy_batch_rows;
/* session.c: commit the open block (its DDL too); 0 ok, else the error
** went to the sink. */
int sqlv__commit_quiet(sqlv__run *r);

#define SQLV__SETTINGS_MAX 32

/* session_memory_limit's default and least value other than 0 (off). */
#define SQLV__SESSION_MEMORY_LIMIT_DEFAULT "256 MiB"
#define SQLV__SESSION_MEMORY_LIMIT_MIN_BYTES (4LL * 1024 * 1024)
/* settings.c: SET name = value checked without a session: 0 with the
** canonical name and value (value NULL: the name only, for RESET), or 1
** with state/msg (42704, 55P02, 22023) as SET would fail. */
int sqlv__setting_canonical(const char *name, const char *value, char *cname, size_t cname_size,
                            char *cvalue, size_t cvalue_size, char state[6], char *msg,
                            size_t size);
/* settings.c: the session's session_memory_limit in bytes (0: none). */
int64_t sqlv__session_memory_limit_bytes(const sqlv_session *s);
/* memory.c: SQLite's memory per session (a budget) and per node. */
typedef struct sqlv__mem sqlv__mem;
/* Install the counting allocator (once per process, before SQLite's first
** use; later calls do nothing) and the default node cap. */
void sqlv__mem_init(void);
/* A budget of limit_bytes (0: none). owner: caller, sqlv__mem_release
** (after the session's connection is closed). NULL: out of memory. */
sqlv__mem *sqlv__mem_new(int64_t limit_bytes);
void sqlv__mem_release(sqlv__mem *m);
/* Charge this thread's SQLite allocations to m (NULL: nobody) until the
** matching leave; returns the budget to restore. */
sqlv__mem *sqlv__mem_enter(sqlv__mem *m);
void sqlv__mem_leave(sqlv__mem *prev);
void sqlv__mem_set_limit(sqlv__mem *m, int64_t limit_bytes);
int64_t sqlv__mem_used(const sqlv__mem *m);
bool sqlv__mem_enforced(void);
/* The 53200 message of an SQLITE_NOMEM: names the session's limit when it
** refused an allocation since the entry point began. */
void sqlv__mem_nomem_message(const sqlv_session *s, char *msg, size_t size);

/* settings.c. Look name up (case-insensitive): its value (owned by the
** session or static, valid until the next SET) and canonical name; NULL if
** unknown. */
const char *sqlv__setting_get(const sqlv_session *s, const char *name, const char **canonical);
/* SET name = value (value NULL: RESET to the default). 0 ok; 1 refused
** with state/msg set. */
int sqlv__setting_set(sqlv_session *s, const char *name, const char *value, char state[6],
                      char *msg, size_t size);
/* The session's copy_from_atomic_enabled: true, a COPY FROM outside a block
** is one transaction; false (the default), it commits in batches (copy.c). */
bool sqlv__copy_from_atomic(const sqlv_session *s);
/* Parse the transaction modes of BEGIN/START TRANSACTION/SET TRANSACTION
** from [p, end): 0 ok (every isolation level is accepted: Meridian is
** always serializable), 1 syntax error (msg set). */
int sqlv__parse_transaction_modes(const char *p, const char *end, char *msg, size_t size);
/* The same, keeping what Meridian acts on: READ ONLY / READ WRITE and AS OF
** SYSTEM TIME <expr> (its expression as sqlv__as_of_take gives it). modes
** may be NULL. */
typedef struct sqlv__txn_modes {
    bool read_only, read_write;
    bool as_of;        /* AS OF SYSTEM TIME given: expr holds it */
    char expr[128];
} sqlv__txn_modes;
int sqlv__parse_transaction_modes_ex(const char *p, const char *end, sqlv__txn_modes *modes,
                                     char *msg, size_t size);

/* ---- AS OF SYSTEM TIME (asof.c) ----------------------------------------------
** follower_read_timestamp() = now - SQLV__FOLLOWER_READ_LAG_NS (CockroachDB's
** 4.8 s: below the 3 s closed-timestamp target with room, so a follower can
** serve it; docs/txn.md section 8). */
#define SQLV__FOLLOWER_READ_LAG_NS 4800000000LL
/* Find the top-level AS OF SYSTEM TIME clause of a statement. 0 with
** *found false (nothing to do), or *found true, its expression in expr
** (NUL-terminated) and the statement without the clause in *out_text
** (NUL-terminated, same length, the clause blanked; owner: caller,
** base_free); 1 refused (state/msg: 42601); -1 out of memory. */
int sqlv__as_of_take(const char *text, size_t len, char **out_text, char *expr, size_t expr_size,
                     bool *found, char state[6], char *msg, size_t size);
/* The expression after AS OF SYSTEM TIME at *pp (advanced past it) into
** expr: 0, or 1 with state/msg (42601). */
int sqlv__as_of_expr(const char **pp, const char *end, char *expr, size_t expr_size, char state[6],
                     char *msg, size_t size);
/* The timestamp of an expression, given the clock's now: 0 with *out; 1
** with state/msg (22007 not a time, 22008 in the future or out of range). */
int sqlv__as_of_eval(const char *expr, hlc_timestamp now, hlc_timestamp *out, char state[6],
                     char *msg, size_t size);
/* Register current_setting(), current_user(), pg_backend_pid(),
** meridian_bool(), match() (ILIKE) on the session's connection (now():
** datetime.c). */
int sqlv__register_pg_functions(sqlv_session *s);
/* series.c: the meridian_series table-valued function (generate_series). */
int sqlv__series_register(sqlv_session *s);
/* datetime.c: PostgreSQL's date/time casts, operators and functions
** (meridian_cast_date..., extract, date_trunc, to_char...; docs/sql.md
** "Dates and times"). */
int sqlv__datetime_register(sqlv_session *s);
/* strfuncs.c: PostgreSQL's string, regular-expression and JSON functions
** (left, split_part, regexp_replace, concat, greatest, json_agg...;
** docs/sql.md "Strings, regular expressions and JSON"). */
int sqlv__strfuncs_register(sqlv_session *s);
/* pgcatalog_fn.c: a PostgreSQL regular expression (leading (?i)/(?c), \d,
** \D) into a NUL-terminated POSIX ERE in out (owner: caller) and regcomp's
** *flags (REG_EXTENDED | REG_NOSUB [| REG_ICASE]). 0; -1 refused (msg set:
** back-references, unknown options); -2 out of memory. */
int sqlv__regex_translate(const char *pat, base_buf *out, int *flags, char *msg, size_t size);
/* Record a commit's wait for SHOW commit_wait (read-write commits only;
** the others leave the last value). */
void sqlv__note_commit(sqlv_session *s, const txn_commit_info *info);
/* SHOW ALL rows: i-th setting (0..), false past the end. */
bool sqlv__setting_at(const sqlv_session *s, int i, const char **name, const char **value);

/* The descriptor of table id as this session sees it (its own pending
** CREATEs first, then s->cat). 0, 1 not found, <0 out of memory.
** owner of *out: caller, sqlv__table_free. */
int sqlv__session_table(sqlv_session *s, uint32_t id, sqlv__table **out);
/* Register the module on the session's connection. */
int sqlv__module_register(sqlv_session *s);
/* Record an error for the current statement (first one wins). */
void sqlv__session_error(sqlv_session *s, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The session's KV transaction (begun by the statement). NULL when there
** is none (error recorded). */
txn *sqlv__session_kv(sqlv_session *s);

/* ---- secondary indexes (index.c; docs/sql.md "Indexes") ---------------------------
** A table's descriptor lists its secondary indexes. Index id 1 is the rows;
** secondary indexes take ids from SQLV__INDEX_FIRST_ID up, never reused
** within the table (next_index_id): entries of a dropped index that were
** not deleted can never be read as another index's.
** Entry key:   prefix(table id, index id) + enc(indexed column values),
**              then, for a non-unique index or a unique one with a NULL
**              among the values (NULLs never conflict), the row's key
**              suffix, which makes the entry one per row.
** Entry value: the row's key suffix (its key without the 8-byte prefix:
**              the encoded PK values or hidden row id); the row is at
**              prefix(table id, 1) + value.
** States: WRITE_ONLY (every writer maintains it, no plan reads it: it is
** being backfilled), PUBLIC (maintained and used by plans).
** Invariants:
**   - a PUBLIC index has exactly one entry per row of its table, made from
**     the row's stored values, in every committed state.
**   - a unique index never holds two exact entries (no suffix) with the
**     same key; a writer checks it (txn_get of the exact key, which stays in
**     its read set) before writing.
**   - descending columns are recorded (pg_index, indexdef) but stored
**     ascending: plans use indexes for lookups and ranges, not for order. */
#define SQLV__CATALOG_INDEXES_VERSION 2 /* catalog rows with an index section */
#define SQLV__INDEX_FIRST_ID 2u
#define SQLV__INDEX_ID_MAX 1023u    /* index ids one table hands out over its life */
#define SQLV__INDEXES_MAX 64        /* secondary indexes of one table at a time */
#define SQLV__INDEX_COLUMNS_MAX 32  /* columns of one index (PostgreSQL's INDEX_MAX_KEYS) */
#define SQLV__BACKFILL_ROWS_MAX 1000 /* rows one backfill transaction writes at most */
#define SQLV__BACKFILL_RETRIES_MAX 64 /* attempts of one backfill batch (40001) */

typedef enum sqlv__index_state {
    SQLV__INDEX_WRITE_ONLY = 1,
    SQLV__INDEX_PUBLIC = 2,
} sqlv__index_state;

typedef struct sqlv__index {
    uint32_t id;     /* >= SQLV__INDEX_FIRST_ID */
    char *name;      /* owner: the table */
    bool unique;
    bool constraint; /* made by a UNIQUE constraint: pg_constraint 'u'; DROP INDEX refuses it */
    uint8_t state;   /* sqlv__index_state */
    int ncols;       /* 1..SQLV__INDEX_COLUMNS_MAX */
    int *cols;       /* table column indexes, in index order; owner: the table */
    bool *desc;      /* ncols: DESC given; owner: the table */
    /* != 0: the shadow of an online ADD PRIMARY KEY (rekey.c): a unique
    ** WRITE_ONLY index over the new key's columns (the uniqueness check),
    ** and every writer also writes the row and its entries under this new
    ** table id, keyed by those columns. */
    uint32_t rekey_table;
} sqlv__index;

/* Is name (case-insensitive) a relation among tables[0..n): a table, its
** "<t>_pkey" or one of its indexes? PostgreSQL's indexes and tables share
** one namespace. */
bool sqlv__relation_taken(const sqlv__table *const *tables, int n, const char *name);
/* Free t's indexes (t keeps none). */
void sqlv__indexes_free(sqlv__table *t);
/* Make dst's index list (and next_index_id) a copy of src's: a descriptor
** rebuilt from new CREATE text (ALTER TABLE) keeps its indexes. Column
** positions must mean the same columns in both. 0 or SQLV_ERR_NOMEM (dst
** unchanged). */
int sqlv__indexes_copy(sqlv__table *dst, const sqlv__table *src);
/* ALTER TABLE's new descriptor nt of old takes old's indexes (and its
** shape follows); all_public: its rows are all copied through the new
** descriptor (ADD PRIMARY KEY), so every index is complete. 0 or
** SQLV_ERR_NOMEM. */
int sqlv__indexes_carry(sqlv__table *nt, const sqlv__table *old, bool all_public);
/* The index section of t's catalog row (appended to out): nothing for a
** table that never had an index (its row stays version 1). Format: u32
** next_index_id | u16 n | n x (u32 id | u8 flags (1 unique, 2 constraint,
** 4 rekey) | u8 state | u16 name length | name | u16 ncols | ncols x (u16
** column | u8 desc) | with flag 4: u32 rekey_table). 0 or SQLV_ERR_NOMEM. */
int sqlv__index_section_encode(const sqlv__table *t, base_buf *out);
/* Replace t's indexes by the section's; -1 when malformed (t unchanged),
** SQLV_ERR_NOMEM. */
int sqlv__index_section_decode(sqlv__table *t, const uint8_t *p, size_t len);
/* The index named name (case-insensitive), or NULL. */
const sqlv__index *sqlv__table_index_named(const sqlv__table *t, const char *name);
/* The descriptor's shape (sqlv__table.shape): a hash of its CREATE text
** and, once it has or had indexes, of the index list. */
uint64_t sqlv__table_shape(const sqlv__table *t);
/* At CREATE TABLE (sqlv__table_parse): one unique PUBLIC index per UNIQUE
** constraint of the table just created in db, named as PostgreSQL names
** them (the constraint's name, else <table>_<columns>_key). 0; 1 refused
** (sqlstate/message set); SQLV_ERR_NOMEM. */
int sqlv__index_from_constraints(sqlite3 *db, sqlv__table *t, char sqlstate[6], char *message,
                                 size_t message_size);

/* The key of row (cells: its stored values; suffix: its key without the
** prefix) in ix, into key (reset first). *exact: a unique index and no NULL
** among the values (the key holds no suffix). 0 or SQLV_ERR_NOMEM. */
int sqlv__index_entry(const sqlv__table *t, const sqlv__index *ix, const sqlv__cell *cells,
                      const uint8_t *suffix, size_t suffix_len, base_buf *key, bool *exact);
/* [start, end) of every entry of index id of table id (reset first). */
int sqlv__index_span(uint32_t table_id, uint32_t index_id, base_buf *start, base_buf *end);
/* "(a, b)=(1, x)" for a unique violation's DETAIL (appended). 0 or -1. */
int sqlv__index_key_text(const sqlv__table *t, const sqlv__index *ix, const sqlv__cell *cells,
                         base_buf *out);

/* The shadow index of an ADD PRIMARY KEY in progress on t, or NULL. */
const sqlv__index *sqlv__table_rekey_index(const sqlv__table *t);
/* Append to t the shadow index of ADD PRIMARY KEY (rekey.c): unique,
** WRITE_ONLY, over cols[0..ncols), rows also written under new_id. 0, 1
** limit reached (sqlstate/msg set), SQLV_ERR_NOMEM. */
int sqlv__index_add_rekey(sqlv__table *t, const char *name, const int *cols, int ncols,
                          uint32_t new_id, char sqlstate[6], char *msg, size_t msg_size);
/* Remove t's index at position pos (its entries are the caller's). */
void sqlv__index_remove(sqlv__table *t, int pos);

/* ALTER TABLE name ADD PRIMARY KEY (cols_start..cols_end) outside a
** transaction block, as an online schema change (rekey.c; docs/sql.md
** "Online ADD PRIMARY KEY"). The session has no transaction open. STMT
** result codes of session.c. */
int sqlv__rekey_online(sqlv__run *r, const char *name, bool if_exists, const char *cols_start,
                       const char *cols_end);

/* CREATE [UNIQUE] INDEX and DROP INDEX (session.c dispatches; text is the
** whole statement). STMT result codes of session.c (0 ok, 1 failed). */
int sqlv__index_create_stmt(sqlv__run *r, const char *text, size_t len);
int sqlv__index_drop_stmt(sqlv__run *r, const char *text, size_t len);

/* One batch of an online backfill (index.c's entries, rekey.c's copies
** under the new key), through kv, which the driver began for it: find the
** work in cat (read through kv, so a DDL since fails the batch; res set
** when the work is gone), then go on from *from (empty: the table's first
** row) for at most max_rows rows. *from moves past the last row done;
** *done when the rows ended; *nrows the rows the batch read (0 when it
** failed before it read them all). 0 (res set on a user error, or a txn
** error with *txn_rc) or SQLV_ERR_NOMEM. */
typedef int (*sqlv__backfill_step_fn)(void *arg, txn *kv, const sqlv__catalog *cat,
                                      base_buf *from, int max_rows, bool *done, int *nrows,
                                      int *txn_rc, sqlv__result *res);
/* A step's txn error trc (err set from it): *txn_rc and res set; returns
** the step's result (SQLV_ERR_NOMEM for TXN_ERR_NOMEM, else 0). */
int sqlv__backfill_txn_failed(sqlv__result *res, int trc, txn_error *err, int *txn_rc);
/* Run step in batches of their own transactions until the rows end (index.c):
** at most rows_max rows a batch (sqlv__backfill_rows when set). A batch
** failing with 40001 is tried again from its start with half the rows it
** read (at most SQLV__BACKFILL_RETRIES_MAX attempts, backing off); cancel
** is 57014. sqlv__backfill_hook gets table_id and index_id after each
** committed batch. 0 (res set on failure) or SQLV_ERR_NOMEM. */
int sqlv__backfill_run(sqlv_session *s, sqlv__backfill_step_fn step, void *arg, int rows_max,
                       uint32_t table_id, uint32_t index_id, sqlv__result *res);
/* Sleep before attempt + 1 of a transaction that failed with 40001: 100 us,
** doubling, at most 50 ms. */
void sqlv__backfill_backoff(int attempt);

/* Test hooks (tests/sql/test_index.c, test_rekey.c); zero in production.
** Called after each committed backfill batch of an implicit CREATE INDEX
** or ADD PRIMARY KEY, on the session's thread (no transaction of the
** session is open). */
typedef void (*sqlv__backfill_hook_fn)(void *arg, uint32_t table_id, uint32_t index_id,
                                       int batch);
extern sqlv__backfill_hook_fn sqlv__backfill_hook;
extern void *sqlv__backfill_hook_arg;
extern int sqlv__backfill_rows; /* > 0: rows per batch instead of SQLV__BACKFILL_ROWS_MAX */

/* ---- users and roles (users.c; docs/security.md "Users and roles") ----------------
** Key space (system tables, below SQLV__FIRST_USER_TABLE_ID):
**   table 3 index 1: roles        key = prefix(3,1) + TEXT(name)
**                                 value = 0x02 | u8 flags (1 LOGIN) | u32 role id BE |
**                                 u8 name length | name | u16 verifier length BE |
**                                 verifier ("SCRAM-SHA-256$...", empty: no password) |
**                                 i32 connection limit BE (-1: none)
**                                 (version 0x01: the same without the limit;
**                                 version 0x03, written only for a role with
**                                 ALTER ROLE ... SET settings: 0x02's fields,
**                                 then u16 length BE | "name\0value\0"...)
**   table 4 index 1: memberships  key = prefix(4,1) + TEXT(role) + TEXT(member)
**                                 value = 0x01 | u8 flags (1 ADMIN OPTION) |
**                                 u8 role length | role | u8 member length | member
**   table 2 index 1: counters     key = prefix(2,1) + TEXT("role_id")
**                                 value = u64 next role id BE (absent: SQLV__FIRST_ROLE_ID)
** The built-in roles root (LOGIN, no password) and admin (NOLOGIN) exist
** without a row; a row of theirs (ALTER USER root WITH PASSWORD ...)
** overrides the defaults. root is always a member of admin (no row). Names
** are exact (an unquoted identifier is folded to lower case first).
** Passwords are stored only as SCRAM-SHA-256 verifiers. */
#define SQLV__ROLES_TABLE_ID 3u
#define SQLV__MEMBERS_TABLE_ID 4u
#define SQLV__ROLE_ID_ROOT 1u
#define SQLV__ROLE_ID_ADMIN 2u
#define SQLV__FIRST_ROLE_ID 100u
#define SQLV__ROLE_ROOT "root"
#define SQLV__ROLE_ADMIN "admin"
#define SQLV__ROLE_SETTINGS_BYTES_MAX 512 /* one role's ALTER ROLE ... SET pairs */
#define SQLV__ROLES_MAX 100000        /* roles one listing reads (54000 past it) */
#define SQLV__MEMBERSHIPS_MAX 1000000 /* memberships one listing reads (54000 past it) */
#define SQLV__PASSWORD_BYTES_MAX 1024 /* a clear-text password in CREATE/ALTER ROLE */
#define SQLV__ROLE_NAMES_MAX 64       /* names in one DROP ROLE / GRANT / REVOKE */

typedef struct sqlv__role {
    char name[SQLV__NAME_BYTES_MAX + 1];
    uint32_t id;
    bool login;
    bool builtin; /* root or admin */
    char verifier[SQLV_AUTH_VERIFIER_SIZE_MAX + 1]; /* "": no password */
    int32_t conn_limit; /* CONNECTION LIMIT: sessions per node, -1: none */
    /* ALTER ROLE ... SET: "name\0value\0" pairs, canonical (validated by
    ** sqlv__setting_canonical), applied at each login of the role. */
    char settings[SQLV__ROLE_SETTINGS_BYTES_MAX];
    uint16_t settings_len;
} sqlv__role;

typedef struct sqlv__membership {
    char role[SQLV__NAME_BYTES_MAX + 1];   /* the role granted */
    char member[SQLV__NAME_BYTES_MAX + 1]; /* to this role or user */
    bool admin_option;
} sqlv__membership;

/* Every role through kv (its own writes included): the built-in ones, then
** the stored ones in name order. owner of *out: caller, base_free. TXN_OK,
** or a txn error with err set (TXN_ERR_LIMIT past SQLV__ROLES_MAX). */
int sqlv__roles_list(txn *kv, sqlv__role **out, int *n, txn_error *err);
/* Every membership through kv, root in admin first. As sqlv__roles_list. */
int sqlv__memberships_list(txn *kv, sqlv__membership **out, int *n, txn_error *err);
/* Is member in role, directly or through other roles? (A role is in itself.) */
bool sqlv__role_in(const sqlv__membership *list, int n, const char *member, const char *role);
/* Is user root or in admin (who may manage users and roles)? */
int sqlv__role_is_admin(txn *kv, const char *user, bool *out, txn_error *err);
/* Every value of system table table_id through kv, to fn in key order (fn
** returns 0, SQLV_ERR_NOMEM, or -1 when the value is malformed: XX001
** "malformed <what> in the key space"). At most max rows (54000 past it).
** TXN_OK or a txn error with err set. The one scan loop of users.c and
** privileges.c. */
typedef int (*sqlv__row_fn)(void *arg, const uint8_t *v, size_t n);
int sqlv__scan_system_table(txn *kv, uint32_t table_id, int max, sqlv__row_fn fn, void *arg,
                            const char *what, txn_error *err);
/* CREATE USER/ROLE, ALTER USER/ROLE, DROP USER/ROLE, GRANT/REVOKE (session.c
** dispatches; text is the whole statement). STMT result codes of session.c. */
int sqlv__users_stmt(sqlv__run *r, const char *text, size_t len);
/* GRANT/REVOKE <privileges> ON <object> ... (privileges.c). */
int sqlv__privileges_stmt(sqlv__run *r, const char *text, size_t len);

/* ---- privileges (privileges.c; docs/security.md "Authorization") -----------------
** Key space:
**   table 5 index 1: privileges   key = prefix(5,1) + TEXT(object) + TEXT(grantee)
**                                       [+ TEXT(grantor)]
**                                 value = 0x01 | u32 bits BE | u8 object length |
**                                 object | u8 grantee length | grantee
**                                 (0x02: the same, then u8 grantor length | grantor)
** object is "t:<table or sequence id>", "c:<table id>:<column, lower case>"
** or "d:<database name>"; bits are SQLV__PRIV_*, and each privilege's bit <<
** SQLV__PRIV_GRANT_SHIFT is its grant option (WITH GRANT OPTION: the
** grantee may grant and revoke it on the object). A grantee has one row per
** grantor (the role whose grant option, or ownership, the grant used), as
** PostgreSQL's aclitems; owner rows (and grants stored before format 2)
** have none.
** A table's creator (not root or an admin) holds its OWNER bit: every table
** privilege, and GRANT/REVOKE on it. Root and members of admin hold every
** privilege without a row. Every write of this table or of memberships
** bumps the catalog version (sqlv__catalog_bump_version), which sessions
** read at each transaction: their caches follow it. */
#define SQLV__PRIVILEGES_TABLE_ID 5u
#define SQLV__PRIVILEGES_MAX 1000000 /* privilege rows one scan reads (54000 past it) */
#define SQLV__PRIV_SELECT 0x01u
#define SQLV__PRIV_INSERT 0x02u
#define SQLV__PRIV_UPDATE 0x04u
#define SQLV__PRIV_DELETE 0x08u
#define SQLV__PRIV_CREATE 0x10u /* on the database: CREATE TABLE */
#define SQLV__PRIV_DROP 0x20u   /* on a table: DROP, ALTER, indexes; on the database: any table */
#define SQLV__PRIV_OWNER 0x40u  /* a table's (or a sequence's) creator */
#define SQLV__PRIV_USAGE 0x80u  /* on a sequence: nextval, currval */
/* Past the grant options of the bits above (0x100..0x8000): their own
** options are 0x1000000 and 0x2000000. Kept and shown; foreign keys and
** triggers do not exist yet. */
#define SQLV__PRIV_REFERENCES 0x10000u /* on a table or a column */
#define SQLV__PRIV_TRIGGER 0x20000u    /* on a table */
/* A bit of its own (option 0x4000000), not DELETE's: rows stored before it
** existed (a DELETE, or an ALL of then) do not hold it; owners do. */
#define SQLV__PRIV_TRUNCATE 0x40000u /* on a table: TRUNCATE */
#define SQLV__PRIV_TABLE_ALL                                                                       \
    (SQLV__PRIV_SELECT | SQLV__PRIV_INSERT | SQLV__PRIV_UPDATE | SQLV__PRIV_DELETE |              \
     SQLV__PRIV_DROP | SQLV__PRIV_REFERENCES | SQLV__PRIV_TRIGGER | SQLV__PRIV_TRUNCATE)
#define SQLV__PRIV_DATABASE_ALL (SQLV__PRIV_CREATE | SQLV__PRIV_DROP)
#define SQLV__PRIV_SEQUENCE_ALL (SQLV__PRIV_USAGE | SQLV__PRIV_SELECT | SQLV__PRIV_UPDATE)
#define SQLV__PRIV_GRANT_SHIFT 8 /* privilege bits << 8: their grant options */

typedef struct sqlv__priv_cache sqlv__priv_cache;
void sqlv__priv_cache_free(sqlv__priv_cache *c); /* NULL: nothing */
/* Forget the session's cache (after its own GRANT/REVOKE or DDL). */
void sqlv__priv_invalidate(sqlv_session *s);
/* engine.c: read the catalog version through kv and write it + 1. TXN_OK or
** a txn error with err set. */
int sqlv__catalog_bump_version(txn *kv, txn_error *err);
/* SQLite's authorizer for one table access: SQLITE_OK, or SQLITE_DENY with
** the session's error set (42501 "permission denied for table t"). Tables
** that are not the catalog's (system catalogs) are everyone's. A table
** privilege covers every column; else each column needs its own (GRANT
** SELECT (a) ON t). column: the one SQLite reads or updates ("" for none in particular: any
** column privilege will do), NULL for INSERT (the columns of the statement
** being prepared, sqlv__priv_statement) and DELETE. */
int sqlv__priv_authorize(sqlv_session *s, const char *table, const char *column, uint32_t want);
/* A read of table (column) through view: checked against the view's
** owner's SELECT privileges, as PostgreSQL does (root's and admins' views
** read everything; docs/sql.md "Views"). SQLITE_OK, or SQLITE_DENY with the
** session's error set (42501, or a txn error). */
int sqlv__priv_authorize_view(sqlv_session *s, const char *view, const char *table,
                              const char *column);
/* SQLite's read of table with no column (count(*), or a table a view
** SQLite flattened brought in): the invoker's SELECT on it when the
** statement names it (or its text is unknown), else on every view the
** statement names. SQLITE_OK or SQLITE_DENY (error set). */
int sqlv__priv_authorize_no_columns(sqlv_session *s, const char *table);
/* The text SQLite is preparing on this thread (for INSERT's column list),
** NULL after it: valid only while set. Without it an INSERT needs every
** column's privilege. */
void sqlv__priv_statement(const char *text, size_t len);
/* The INSERT as the user wrote it while its DEFAULT-completed text runs
** (session.c): its column list is the one privileges are checked against
** (a column left to its default needs none, as in PostgreSQL). */
void sqlv__priv_insert_text(const char *text, size_t len);
/* nextval (USAGE or UPDATE), currval and lastval (USAGE or SELECT), setval (UPDATE) of
** the sequence name (or id when name is ""): 0, or 1 with the session's
** error set (42501 "permission denied for sequence s"), or with a txn error
** set. A sequence that does not exist passes (the function reports it). */
int sqlv__priv_sequence(sqlv_session *s, const char *name, uint32_t id, uint32_t any_of);
/* ALTER and DROP SEQUENCE of sequence id (owner_table: the table whose
** SERIAL/IDENTITY/OWNED BY column owns it, "" none) through kv and cat (the
** statement's view; the session's own in a block): *ok for root, admins,
** its owner (or its table's) and members of that owner, and with
** database_drop holders of the database's DROP (PostgreSQL: the owner;
** OWNER TO takes the owner). TXN_OK or a txn error (err set). */
int sqlv__priv_sequence_owner(sqlv_session *s, txn *kv, const sqlv__catalog *cat, uint32_t id,
                              const char *owner_table, bool database_drop, bool *ok,
                              txn_error *err);
/* ... OWNER TO role of the object id (the caller checked that s may alter
** it): through kv, the owner row goes to role (root owns without one) and
** the grants the old owner made are the new one's (PostgreSQL's
** aclnewowner). TXN_OK with state[0] == 0, or state/msg set (42704 no such
** role, 42501 s is not a member of role: PostgreSQL's rule for non-admins),
** or a txn error (err set). */
int sqlv__priv_set_owner(sqlv_session *s, txn *kv, uint32_t id, const char *role,
                         char state[6], char *msg, size_t msg_size, txn_error *err);
/* DROP ROLE (users.c): the live objects (tables, sequences, columns, the
** database) whose privilege rows name role as grantee, grantor or owner,
** through kv and e's catalog (PostgreSQL refuses to drop such a
** role, 2BP01: a role created again by that name would inherit them).
** TXN_OK or a txn error (err set). */
int sqlv__priv_role_objects(sqlv_engine *e, txn *kv, const char *role, int *nobjects,
                            txn_error *err);
/* REASSIGN OWNED and DROP OWNED (PostgreSQL's; privileges.c). */
typedef struct sqlv__owned_stmt {
    char roles[SQLV__ROLE_NAMES_MAX][SQLV__NAME_BYTES_MAX + 1]; /* BY role, ... */
    int nroles;
    char to[SQLV__NAME_BYTES_MAX + 1]; /* REASSIGN's new owner */
    bool cascade;                      /* DROP OWNED ... CASCADE */
    uint32_t *ids; /* DROP OWNED: what the roles own; owner: this (sqlv__priv_owned_free) */
    int nids;
} sqlv__owned_stmt;
/* The statement after OWNED (BY role[, ...] then TO role, or [CASCADE |
** RESTRICT]); CURRENT_USER and friends become the session's user. 0, or 1
** with state/msg set. */
int sqlv__priv_owned_parse(sqlv_session *s, const char *p, const char *end, bool reassign,
                           sqlv__owned_stmt *o, char state[6], char *msg, size_t msg_size);
void sqlv__priv_owned_free(sqlv__owned_stmt *o); /* its ids; o itself stays */
/* REASSIGN OWNED BY ... TO ...: the whole statement (p after OWNED), in the
** block or a transaction of its own. STMT result (the error sent). */
int sqlv__priv_reassign_owned(sqlv__run *r, const char *p, const char *end);
/* DROP OWNED, before anything is dropped, through kv: 42704 an unknown
** role, 42501 unless an admin or a member of every role, 2BP01 for root;
** o->ids: the ids of the tables, views and sequences the roles own. TXN_OK
** (state set on a refusal) or a txn error (err set). */
int sqlv__priv_drop_owned_check(sqlv_session *s, txn *kv, sqlv__owned_stmt *o, char state[6],
                                char *msg, size_t msg_size, txn_error *err);
/* DROP OWNED, after the drops: every privilege granted to the roles (and,
** as a REVOKE ... CASCADE, what they granted with them) is revoked, their
** owner rows go; the catalog version is bumped. TXN_OK or a txn error. */
int sqlv__priv_drop_owned_revoke(txn *kv, const sqlv__owned_stmt *o, txn_error *err);

/* Explicit checks of the session's own statement paths: STMT_OK, or the
** error sent (42501) and STMT_FAILED. A table that does not exist passes
** (the statement reports it). DROP of a table also passes with the
** database's DROP. */
int sqlv__priv_require_table(sqlv__run *r, const char *table, uint32_t want);
int sqlv__priv_require_database(sqlv__run *r, uint32_t want);
int sqlv__priv_require_admin(sqlv__run *r, const char *what);
/* CREATE TABLE text: each REFERENCES t [(cols)] (a foreign key, kept but
** not enforced yet) needs REFERENCES on t, or on each column named (none
** named: t's primary key's), as PostgreSQL. A table that does not exist
** passes. */
int sqlv__priv_require_references(sqlv__run *r, const char *text, size_t len);
/* After a CREATE TABLE of the session's user: its
** owner row (in the open block's transaction, else in one of its own; best
** effort, logged). */
void sqlv__priv_record_owner(sqlv_session *s, const char *table);
/* The same for the table or sequence id (ids are never reused: an id a
** skipped CREATE ... IF NOT EXISTS allocated names nothing). */
void sqlv__priv_record_owner_id(sqlv_session *s, uint32_t id);
/* ADD PRIMARY KEY moved table old_id to new_id (rekey.c's swap; session.c
** in a block): every privilege row of the table and of its columns (owner
** rows too) moves to the new id through kv, the transaction of the move,
** which bumps the catalog version. TXN_OK or a txn error with err set. */
int sqlv__priv_move_table(txn *kv, uint32_t old_id, uint32_t new_id, txn_error *err);
/* SHOW GRANTS ...: p just after GRANTS. */
int sqlv__privileges_show(sqlv__run *r, const char *p, const char *end);
/* information_schema.table_privileges (pgcatalog.c): every privilege held
** on the ntables tables, through kv, one call of fn per (table, grantor,
** grantee, privilege) in table order; grantor is the recorded one (for a
** row without one: the owner itself, else the table's owner, else root).
** fn returns 0 to go on. TXN_OK, a txn error with err set, or what fn
** returned. */
typedef int (*sqlv__table_privilege_fn)(void *arg, const char *table, const char *grantor,
                                        const char *grantee, const char *privilege,
                                        bool grantable);
int sqlv__priv_table_privileges(txn *kv, const sqlv__table *const *tables, int ntables,
                                sqlv__table_privilege_fn fn, void *arg, txn_error *err);
/* information_schema.column_privileges: as above per column: the
** column's own privileges and those its table's privileges give (SELECT,
** INSERT, UPDATE), as PostgreSQL shows them. */
typedef int (*sqlv__column_privilege_fn)(void *arg, const char *table, const char *column,
                                         const char *grantor, const char *grantee,
                                         const char *privilege, bool grantable);
int sqlv__priv_column_privileges(txn *kv, const sqlv__table *const *tables, int ntables,
                                 sqlv__column_privilege_fn fn, void *arg, txn_error *err);
/* pg_class.relacl: every privilege row, read once per scan through kv
** (owner of *out: the caller, sqlv__priv_rows_free; NULL: nothing). */
typedef struct sqlv__priv_rows sqlv__priv_rows;
int sqlv__priv_rows_read(txn *kv, sqlv__priv_rows **out, txn_error *err);
void sqlv__priv_rows_free(sqlv__priv_rows *p);
/* The relacl of table (or sequence) id as PostgreSQL's aclitem[] text
** ({owner=arwdDxt/owner,app=r/owner,=r/owner}, '*' after a letter for its
** grant option; D: TRUNCATE; DROP has no letter) into out, NUL-terminated;
** *null when no grant is stored (the owner's defaults). 0 or SQLV_ERR_NOMEM. */
int sqlv__priv_relacl(const sqlv__priv_rows *p, uint32_t id, bool sequence, base_buf *out,
                      bool *null);
/* pg_class.relowner: the role whose owner row table or sequence id has, or
** NULL (root's: no owner row). Lives as p. */
const char *sqlv__priv_owner(const sqlv__priv_rows *p, uint32_t id);
/* has_*_privilege (pgcatalog_fn.c): what user (a role's name; "public":
** PUBLIC's alone) holds, on: 't' table or sequence id, 'c' its column
** column, 'a' any of its columns (column privileges only), 'd' the
** session's database. *bits: SQLV__PRIV_* and their grant options (<<
** SQLV__PRIV_GRANT_SHIFT), an owner's rights spelled out with
** SQLV__PRIV_OWNER; every bit for root and admins. Through the statement's
** transaction (or a read-only one of its own); the session's user from its
** cache. TXN_OK or a txn error (err set). */
int sqlv__priv_held(sqlv_session *s, const char *user, char on, uint32_t id, const char *column,
                    uint32_t *bits, txn_error *err);
/* Is role a stored or built-in role, "public", or the session's user? */
int sqlv__priv_role_known(sqlv_session *s, const char *role, bool *found, txn_error *err);
/* pg_has_role's MEMBER/USAGE: is user in role (directly or not; root and
** admins are in every role, as PostgreSQL's superuser)? */
int sqlv__priv_role_member(sqlv_session *s, const char *user, const char *role, bool *member,
                           txn_error *err);
/* ALTER TABLE [IF EXISTS] table OWNER TO role: p..end just after OWNER.
** PostgreSQL's rules (docs/security.md); the sequences its columns own
** follow. STMT_OK (no tag sent) or the error sent and STMT_FAILED. */
int sqlv__priv_alter_table_owner(sqlv__run *r, const char *table, bool if_exists, const char *p,
                                 const char *end);

/* ---- UPSERT and RETURNING (upsert.c; docs/sql.md "UPSERT and RETURNING") --------------
** SQLite refuses INSERT ... ON CONFLICT and UPDATE/DELETE ... RETURNING on
** virtual tables: the session runs them as a sequence of plain statements
** in one KV savepoint. While s->capture is set, the module records the key
** of every row it writes to capture->table_id (insert or update, after the
** change), so the statement can read exactly those rows back. */
#define SQLV__CAPTURE_ROWS_MAX 1000000 /* rows one RETURNING / upsert statement affects */
typedef struct sqlv__capture {
    uint32_t table_id;
    base_buf keys; /* u32 length BE | key, ...; owner: this */
    uint64_t n;
} sqlv__capture;
/* Record key (vtab.c calls it). 0, or -1 out of memory / past the limit. */
int sqlv__capture_add(sqlv__capture *c, const uint8_t *key, size_t len);
/* Does the statement need upsert.c: INSERT ... ON CONFLICT, or INSERT/
** UPDATE/DELETE ... RETURNING (at the top level)? */
bool sqlv__dml_ext_wanted(const char *text, size_t len);
/* Run such a statement (session.c dispatches). STMT result codes. */
int sqlv__dml_ext_stmt(sqlv__run *r, const char *text, size_t len);
/* The extended protocol (prepared.c): Parse prepares the parameter carrier
** "SELECT $1, ..., $n" (n: the highest $n of text; owner of *out: caller,
** base_free; 0 or -1 out of memory) in place of the statement. */
int sqlv__dml_ext_carrier(const char *text, size_t len, char **out);
/* Describe of the statement: RowDescription of its RETURNING, or NoData. */
int sqlv__dml_ext_describe(sqlv__run *r, const char *text, size_t len);
/* The portal's run: steps the bound carrier once and runs text with its row
** as $1..$n; errors go to r's sink, the output into *out (owner: the
** portal, sqlv__dml_out_free). STMT result codes. */
typedef struct sqlv__dml_out sqlv__dml_out;
int sqlv__dml_ext_portal_run(sqlv__run *r, const char *text, size_t len, sqlite3_stmt *carrier,
                             sqlv__dml_out **out);
int sqlv__dml_out_describe(sqlv__run *r, const sqlv__dml_out *o); /* RowDescription or NoData */
/* Rows and the tag (also copied into tag). */
int sqlv__dml_out_send(sqlv__run *r, const sqlv__dml_out *o, char *tag, size_t tag_size);
void sqlv__dml_out_free(sqlv__dml_out *o);

/* ---- sequences (sequence.c; docs/sql.md "Sequences") -------------------------------------
** Key space: table 6 (definitions, index 1; state, index 2), format at the
** top of sequence.c. */
#define SQLV__SEQUENCES_TABLE_ID 6u
#define SQLV__SEQUENCES_MAX 100000          /* definitions one listing reads (54000 past it) */
#define SQLV__SEQ_RETRIES_MAX 64            /* attempts of one nextval/setval transaction (40001) */
/* values a node reserves at once when CREATE gave no CACHE (docs/sql.md "Sequences") */
#define SQLV__SEQ_NODE_CACHE_DEFAULT 32
#define SQLV__SEQ_CACHE_MAX 1000000         /* CACHE n at most */
#define SQLV__SEQ_CACHE_ENTRIES_MAX 4096    /* sequences with a block in one node's cache */
#define SQLV__SEQ_SESSION_MAX 4096          /* sequences one session remembers for currval */

typedef struct sqlv__seq_def {
    uint32_t id;    /* a table id: OID sqlv__pgcat_oid(id, TABLE) */
    char name[SQLV__NAME_BYTES_MAX * 4 + 1];
    int type_bytes; /* 2 smallint, 4 integer, 8 bigint */
    int64_t increment, min, max, start, cache;
    bool cycle;
    bool cache_given; /* CACHE was written (else the node reserves SQLV__SEQ_NODE_CACHE_DEFAULT) */
    char owner_table[SQLV__NAME_BYTES_MAX * 4 + 1]; /* OWNED BY; "" none */
    char owner_column[SQLV__NAME_BYTES_MAX * 4 + 1];
} sqlv__seq_def;

/* A sequence a SERIAL / IDENTITY column of a new table owns. */
typedef struct sqlv__seq_spec {
    char name[SQLV__NAME_BYTES_MAX * 4 + 1]; /* <table>_<column>_seq */
    char table[SQLV__NAME_BYTES_MAX * 4 + 1];
    char column[SQLV__NAME_BYTES_MAX * 4 + 1];
    int type_bytes;
    char identity; /* 0 SERIAL, 'a' ALWAYS, 'd' BY DEFAULT */
    char *options; /* IDENTITY ( options ): sequence options; owner: the array */
} sqlv__seq_spec;
void sqlv__seq_specs_free(sqlv__seq_spec *specs, int n); /* NULL: nothing */

/* nextval, currval, lastval, setval, pg_get_serial_sequence on s's connection. */
int sqlv__seq_register(sqlv_session *s);
void sqlv__seq_session_free(sqlv_session *s); /* at session close */
void sqlv__seq_engine_free(sqlv_engine *e);   /* at engine close */
/* CREATE / ALTER / DROP SEQUENCE (session.c dispatches; text is the whole
** statement). STMT result codes of session.c. */
int sqlv__seq_stmt(sqlv__run *r, const char *text, size_t len);
/* CREATE TABLE text (dialect-rewritten): each SERIAL column becomes its
** integer type NOT NULL DEFAULT (nextval('<t>_<c>_seq')), each GENERATED ...
** AS IDENTITY clause NOT NULL DEFAULT (meridian_identity[_always]('...')).
** 0 with *out NULL when there is none; 0 with *out (owner: caller,
** base_free) and the sequences to create (owner: caller,
** sqlv__seq_specs_free); 1 refused (state/msg); SQLV_ERR_NOMEM. */
int sqlv__seq_table_rewrite(const char *text, size_t len, char **out, sqlv__seq_spec **specs,
                            int *nspecs, char state[6], char *msg, size_t size);
/* After the CREATE TABLE: its sequences, in the block's transaction or one
** of their own. STMT result codes (the error sent). */
int sqlv__seq_create_owned(sqlv__run *r, const sqlv__seq_spec *specs, int n);
/* Take them back after the table failed (implicit DDL; best effort, quiet). */
void sqlv__seq_drop_specs(sqlv_session *s, const sqlv__seq_spec *specs, int n);
/* After DROP TABLE of tables[0..n): the sequences they owned. STMT codes. */
int sqlv__seq_drop_owned(sqlv__run *r, char **tables, int n);
/* INSERT into a table with a GENERATED ALWAYS identity: 1 with 428C9 when
** the statement gives it a value (not DEFAULT); OVERRIDING SYSTEM VALUE
** allows it and is cut: *out the text without it (owner: caller,
** base_free). 0 (*out maybe NULL), 1, SQLV_ERR_NOMEM. */
int sqlv__seq_insert_check(sqlv_session *s, const char *text, size_t len, char **out,
                           char state[6], char *msg, size_t size);
/* The INSERT that sqlv__seq_insert_check saw ended (its derived texts ran). */
void sqlv__seq_insert_done(sqlv_session *s);
/* UPDATE: SET c = DEFAULT becomes c's default; an identity column GENERATED
** ALWAYS takes only DEFAULT (428C9). 0 (*out the new text, owner: caller,
** base_free; NULL unchanged), 1 refused (state/msg), SQLV_ERR_NOMEM. */
int sqlv__seq_update_check(sqlv_session *s, const char *text, size_t len, char **out,
                           char state[6], char *msg, size_t size);
/* The text with each FROM / JOIN item naming the sequence missing (SQLite's
** "no such table" name) read from meridian_sequence_state (SELECT * FROM s:
** last_value, log_cnt, is_called). 1 with *out (owner: caller, base_free),
** 0 not a sequence (or not named there), SQLV_ERR_NOMEM. */
int sqlv__seq_from_rewrite(sqlv_session *s, const char *text, size_t len, const char *missing,
                           char **out);
/* Do any of these tables own a sequence (true when it cannot tell)? */
bool sqlv__seq_tables_own_any(sqlv_session *s, char **tables, int ntables);
/* Does this DROP SEQUENCE say CASCADE? (Then session.c runs it in a block:
** the column defaults it drops go in the same transaction.) */
bool sqlv__seq_drop_cascades(const char *text, size_t len);
/* ALTER COLUMN ... DROP DEFAULT of table.column in the session's block
** (session.c; for DROP SEQUENCE ... CASCADE). STMT result codes. */
int sqlv__drop_column_default(sqlv__run *r, const char *table, const char *column);
/* As sqlv__seq_last_value, but a block of this node's cache that no other
** node moved past shows its last value handed out (PostgreSQL's view
** through one session). */
int sqlv__seq_last_value_seen(sqlv_session *s, const sqlv__seq_def *d, int64_t *last,
                              bool *called);
/* Every definition through kv, in name order. owner of *out: caller,
** base_free. TXN_OK or a txn error (err set); SQLV_ERR_NOMEM. */
int sqlv__seq_list(txn *kv, sqlv__seq_def **out, int *n, txn_error *err);
/* The sequence named name (NULL: the one with id) as s sees it: through its
** open transaction, else a read-only one of its own. TXN_OK with *found, or
** a txn error. */
int sqlv__seq_lookup(sqlv_session *s, const char *name, uint32_t id, sqlv__seq_def *d,
                     bool *found);
/* The state row of d, read in a transaction of its own (never the user's).
** TXN_OK or a txn error. */
int sqlv__seq_last_value(sqlv_session *s, const sqlv__seq_def *d, int64_t *last, bool *called);
/* The sequence a column's default draws from (nextval or identity): true
** with its name. */
bool sqlv__seq_column_sequence(const sqlv__column *c, char *name, size_t size);
/* pg_attribute.attidentity of c: 'a', 'd' or 0. */
char sqlv__seq_column_identity(const sqlv__column *c);

#endif
