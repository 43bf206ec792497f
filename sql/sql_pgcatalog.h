/* sql/ internal: PostgreSQL's system catalogs over Meridian's catalog
** (pgcatalog.c: the relations; pgcatalog_fn.c: the functions psql and
** drivers call on them, and SHOW TABLES / CREATE TABLE / COLUMNS).
** Nothing outside sql/ includes it. docs/sql.md, "Catalogs". */
#ifndef MERIDIAN_SQL_PGCATALOG_H
#define MERIDIAN_SQL_PGCATALOG_H

#include <stdbool.h>
#include <stdint.h>

#include "sql_int.h"

/* Fixed OIDs (PostgreSQL's where PostgreSQL has them). */
#define SQLV__PGCAT_OID_ROOT_ROLE 10u       /* "root", the bootstrap superuser */
#define SQLV__PGCAT_OID_SESSION_ROLE 16380u /* the session's user when not root */
#define SQLV__PGCAT_OID_DATABASE 16381u     /* the session's database */
#define SQLV__PGCAT_OID_NS_CATALOG 11u
#define SQLV__PGCAT_OID_NS_TOAST 99u
#define SQLV__PGCAT_OID_NS_PUBLIC 2200u
#define SQLV__PGCAT_OID_NS_INFO 13000u
#define SQLV__PGCAT_OID_AM_HEAP 2u
#define SQLV__PGCAT_OID_AM_BTREE 403u
#define SQLV__PGCAT_OID_COLL_DEFAULT 100u
/* A user table's OIDs, from its never-reused table id: four per table,
** PostgreSQL's first user OID for the first table. */
#define SQLV__PGCAT_OID_FIRST 16384u
enum {
    SQLV__PGCAT_KIND_TABLE = 0,    /* pg_class row of the table */
    SQLV__PGCAT_KIND_PKEY = 1,     /* its primary key index "<t>_pkey" */
    SQLV__PGCAT_KIND_PKEY_CON = 2, /* the PRIMARY KEY constraint */
    SQLV__PGCAT_KIND_ROWTYPE = 3,  /* its row type in pg_type */
    SQLV__PGCAT_KIND_INDEX = 4,    /* (parse only) one of its secondary indexes */
    SQLV__PGCAT_KIND_INDEX_CON = 5, /* (parse only) the UNIQUE constraint of one */
};
int64_t sqlv__pgcat_oid(uint32_t table_id, int kind);
/* A role's OID from its never-reused role id (users.c): root's is 10, as
** PostgreSQL's bootstrap superuser; the others above the tables' OIDs and
** below the indexes'. */
#define SQLV__PGCAT_OID_ROLE_FIRST 0x30000000LL
int64_t sqlv__pgcat_role_oid(uint32_t role_id);
/* The table id and kind an OID stands for; false if none. */
bool sqlv__pgcat_oid_parse(int64_t oid, uint32_t *table_id, int *kind);
/* A secondary index's OIDs: its pg_class row and (a UNIQUE constraint's
** index) its pg_constraint row, two per index id, above the tables'. */
#define SQLV__PGCAT_OID_INDEX_FIRST 0x40000000LL
int64_t sqlv__pgcat_index_oid(uint32_t table_id, uint32_t index_id, bool constraint);
bool sqlv__pgcat_index_oid_parse(int64_t oid, uint32_t *table_id, uint32_t *index_id,
                                 bool *constraint);
/* A CHECK constraint's pg_constraint OID: the k-th check of a table (in
** check.c's order), at most SQLV__PGCAT_CHECKS_MAX listed per table, in a
** range below the roles' and the indexes'. */
#define SQLV__PGCAT_OID_CHECK_FIRST 0x20000000LL
#define SQLV__PGCAT_CHECKS_MAX 64
int64_t sqlv__pgcat_check_oid(uint32_t table_id, int k);
bool sqlv__pgcat_check_oid_parse(int64_t oid, uint32_t *table_id, int *k);
/* The secondary index (and its table, *t) an index or constraint OID
** stands for, as the session sees them; NULL if none. Lives as
** sqlv__pgcat_tables' pointers. */
const sqlv__index *sqlv__pgcat_index_by_oid(sqlv_session *s, int64_t oid, const sqlv__table **t);
/* The index named name among the session's tables (and its table). */
const sqlv__index *sqlv__pgcat_index_by_name(sqlv_session *s, const char *name,
                                             const sqlv__table **t);
/* pg_get_indexdef of a secondary index: "CREATE [UNIQUE] INDEX i ON
** public.t USING btree (a, b DESC)" (appended). 0 or -1. */
int sqlv__pgcat_index_def(const sqlv__table *t, const sqlv__index *ix, base_buf *out);

/* The PostgreSQL type of a declared column type ("VARCHAR(20)",
** "double precision", "int[]"): its OID and typmod (-1 none). Unknown
** types take the OID of the column's class. */
void sqlv__pgcat_column_type(const char *decl, sqlv__class cls, uint32_t *oid, int32_t *typmod);
/* format_type(oid, typmod) into out: "integer", "character varying(20)".
** false for an unknown OID. */
bool sqlv__pgcat_format_type(uint32_t oid, int32_t typmod, char *out, size_t size);

/* The tables this session sees now: its transaction's catalog (s->cat)
** minus the tables its open block dropped, plus those it created. The
** pointers live until the catalog or the block's DDL changes (at least
** for the current statement). owner of *out: caller, base_free. */
int sqlv__pgcat_tables(sqlv_session *s, const sqlv__table ***out, int *n);
/* The table (pg_class OID of the table or of its primary key index) or
** NULL. Lives as sqlv__pgcat_tables' pointers. */
const sqlv__table *sqlv__pgcat_table_by_oid(sqlv_session *s, int64_t oid);
const sqlv__table *sqlv__pgcat_table_by_name(sqlv_session *s, const char *name);
/* The OID of a catalog relation ("pg_class": 1259), 0 if unknown. */
uint32_t sqlv__pgcat_relation_oid(const char *name);
/* The name psql's "information_schema.x" has for SQLite
** ("information_schema_tables"), static; NULL if x is not provided. */
const char *sqlv__pgcat_information_schema(const char *x);

/* quote_ident: name, quoted when PostgreSQL would. */
void sqlv__pgcat_quote_ident(const char *name, char *out, size_t size);

/* Register the catalog relations (eponymous virtual tables) and the
** functions on the session's connection. 0 or -1. */
int sqlv__pgcatalog_register(sqlv_session *s);
/* Is name[0..len) (any case) a function registered above that PostgreSQL
** declares boolean? Result columns of a call to one are typed bool. */
bool sqlv__pgcatalog_fn_is_boolean(const char *name, size_t len);
/* pgcatalog.c: the relations only. */
int sqlv__pgcatalog_register_relations(sqlv_session *s);

/* SHOW TABLES, SHOW CREATE [TABLE] t, SHOW COLUMNS FROM t: p..end is the
** text after SHOW. Returns -1 when it is none of them (the caller goes on
** with the settings), else the statement's STMT result. */
int sqlv__pgcatalog_show(sqlv__run *r, const char *p, const char *end);

#endif
