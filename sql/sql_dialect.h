/* sql/ internal: the PostgreSQL dialect rewriter (dialect.c) and the
** session's PostgreSQL settings. Nothing outside sql/ includes it. */
#ifndef MERIDIAN_SQL_DIALECT_H
#define MERIDIAN_SQL_DIALECT_H

#include <stdbool.h>
#include <stddef.h>

/* Tokens of one statement, at most (more: 54000). */
#define SQLV__DIALECT_TOKENS_MAX (4 * 1024 * 1024)

typedef struct sqlv__rewrite {
    char *text; /* NUL-terminated; owner: caller, base_free (NULL on failure) */
    size_t len;
    bool storage_options_ignored; /* CREATE TABLE ... WITH (...) was dropped */
    char sqlstate[6];             /* set when the statement is rejected */
    char message[256];
} sqlv__rewrite;

/* Rewrite one statement (no ';' inside) of PostgreSQL into what SQLite
** parses, token by token; text between tokens (space, comments) and the
** tokens not rewritten are copied verbatim, so strings, quoted identifiers
** and comments are never touched. Rewrites: x::type => CAST(x AS type)
** (meridian_bool(x) for boolean); public./pg_catalog. qualifiers dropped,
** meridian_internal.x => meridian_internal_x (sql_ranges.h; unknown x:
** 42P01); another schema after FROM/JOIN/INTO/UPDATE/TABLE => 3F000; COLLATE "C"
** dropped; ILIKE => MATCH (the session's match() is a case-insensitive
** LIKE); LIMIT ALL => LIMIT -1; CREATE TABLE ... WITH (...) dropped;
** a DEFAULT expression of CREATE TABLE / ALTER TABLE parenthesized;
** bare CURRENT_TIMESTAMP/current_user/session_user/current_schema/
** current_catalog => function calls (not in CREATE statements);
** FROM generate_series(a, b) [AS] x => a subquery over meridian_series
** whose column is x; and the constructs of psql's and drivers' catalog
** queries (~, OPERATOR(pg_catalog.~), E'...', ARRAY(...), = ANY (...),
** x::regclass, information_schema.x...: dialect.c, docs/sql.md "Catalogs");
** a query's FOR [NO KEY] UPDATE / FOR [KEY] SHARE [OF ...] =>
** SQLV__LOCKING_MARK (NOWAIT, SKIP LOCKED => 0A000).
** Returns 0 (out->text set), 1 rejected (out->sqlstate/message set), or
** -1 out of memory. */
int sqlv__dialect_rewrite(const char *in, size_t len, sqlv__rewrite *out);

/* What a locking clause (SELECT ... FOR UPDATE / FOR SHARE) becomes: a
** comment SQLite ignores and keeps in sqlite3_sql(), by which vtab.c knows
** that the running statement's reads take locks (docs/txn.md section 5). */
#define SQLV__LOCKING_MARK "/*meridian:locking*/"


/* A PostgreSQL type name (lower case, modifiers removed: "int4",
** "double precision") => the SQLite CAST type ("INTEGER", ...), "BOOL" for
** boolean, NULL if unknown. */
const char *sqlv__dialect_cast_type(const char *pg_type);

#endif
