/*
** PostgreSQL's system catalogs, generated from Meridian's catalog: each
** relation psql's \d family and drivers read (pg_class, pg_attribute,
** information_schema.columns...) is a read-only eponymous virtual table on
** the session's connection whose rows are built at each scan (xFilter)
** from the tables the session sees: its transaction's catalog snapshot
** (s->cat, read at the transaction's first statement) plus the DDL of its
** open block (s->ddl). So they are always current, also after DDL through
** another node, and agree with the tables the same statement reads.
** docs/sql.md, "Catalogs".
**
** Names: the dialect rewriter drops "pg_catalog." (pg_catalog.pg_class is
** pg_class) and turns information_schema.x into information_schema_x.
** A user table of the same name shadows a catalog relation.
**
** OIDs are stable: PostgreSQL's for built-in objects (types, namespaces,
** access methods, catalog relations), and for a user table with id N
** (never reused) 16384 + 4 * (N - 100) + kind: the table, its primary key
** index "<t>_pkey", the PRIMARY KEY constraint, its row type; for its
** secondary index I (ids never reused either) 2^30 + 2 * ((N - 100) *
** (SQLV__INDEX_ID_MAX + 1) + I) + k: the index, its UNIQUE constraint.
**
** Invariants:
**   - a scan's rows are a superset of the rows its pushed-down equality
**     (xBestIndex offers one on an OID column) selects: SQLite re-checks
**     every constraint (omit is never set).
**   - a cursor owns its rows (copied at xFilter); nothing points into the
**     catalog snapshot after xFilter returns.
**   - every scan is bounded: SQLV__PGCAT_CELLS_MAX cells at most (54000).
*/
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql_pgcatalog.h"

/* Cells one scan may build (tables x columns bound it already; this makes
** the bound explicit). */
#define SQLV__PGCAT_CELLS_MAX (64 * 1024 * 1024)

/* ---- OIDs ------------------------------------------------------------------ */

int64_t sqlv__pgcat_oid(uint32_t table_id, int kind) {
    return (int64_t)SQLV__PGCAT_OID_FIRST +
           4 * ((int64_t)table_id - (int64_t)SQLV__FIRST_USER_TABLE_ID) + kind;
}

int64_t sqlv__pgcat_index_oid(uint32_t table_id, uint32_t index_id, bool constraint) {
    int64_t slot = ((int64_t)table_id - (int64_t)SQLV__FIRST_USER_TABLE_ID) *
                       ((int64_t)SQLV__INDEX_ID_MAX + 1) +
                   index_id;
    return SQLV__PGCAT_OID_INDEX_FIRST + 2 * slot + (constraint ? 1 : 0);
}

int64_t sqlv__pgcat_role_oid(uint32_t role_id) {
    if (role_id == SQLV__ROLE_ID_ROOT) return SQLV__PGCAT_OID_ROOT_ROLE;
    return SQLV__PGCAT_OID_ROLE_FIRST + role_id;
}

bool sqlv__pgcat_index_oid_parse(int64_t oid, uint32_t *table_id, uint32_t *index_id,
                                 bool *constraint) {
    if (oid < SQLV__PGCAT_OID_INDEX_FIRST) return false;
    int64_t d = oid - SQLV__PGCAT_OID_INDEX_FIRST, slot = d / 2;
    int64_t id = slot / ((int64_t)SQLV__INDEX_ID_MAX + 1) + SQLV__FIRST_USER_TABLE_ID;
    if (id > (int64_t)UINT32_MAX) return false;
    *table_id = (uint32_t)id;
    *index_id = (uint32_t)(slot % ((int64_t)SQLV__INDEX_ID_MAX + 1));
    *constraint = (d % 2) != 0;
    return *index_id >= SQLV__INDEX_FIRST_ID;
}

int64_t sqlv__pgcat_check_oid(uint32_t table_id, int k) {
    return SQLV__PGCAT_OID_CHECK_FIRST +
           ((int64_t)table_id - (int64_t)SQLV__FIRST_USER_TABLE_ID) * SQLV__PGCAT_CHECKS_MAX + k;
}

bool sqlv__pgcat_check_oid_parse(int64_t oid, uint32_t *table_id, int *k) {
    if (oid < SQLV__PGCAT_OID_CHECK_FIRST || oid >= SQLV__PGCAT_OID_ROLE_FIRST) return false;
    int64_t d = oid - SQLV__PGCAT_OID_CHECK_FIRST;
    *table_id = (uint32_t)(d / SQLV__PGCAT_CHECKS_MAX + SQLV__FIRST_USER_TABLE_ID);
    *k = (int)(d % SQLV__PGCAT_CHECKS_MAX);
    return true;
}

bool sqlv__pgcat_oid_parse(int64_t oid, uint32_t *table_id, int *kind) {
    uint32_t index_id;
    bool con;
    if (oid >= SQLV__PGCAT_OID_INDEX_FIRST) {
        if (!sqlv__pgcat_index_oid_parse(oid, table_id, &index_id, &con)) return false;
        *kind = con ? SQLV__PGCAT_KIND_INDEX_CON : SQLV__PGCAT_KIND_INDEX;
        return true;
    }
    if (oid < (int64_t)SQLV__PGCAT_OID_FIRST) return false;
    int64_t d = oid - SQLV__PGCAT_OID_FIRST;
    int64_t id = d / 4 + SQLV__FIRST_USER_TABLE_ID;
    if (id > (int64_t)UINT32_MAX) return false;
    *table_id = (uint32_t)id;
    *kind = (int)(d % 4);
    return true;
}

/* ---- types ------------------------------------------------------------------- */

typedef struct pgtype {
    uint32_t oid;
    const char *name;     /* typname */
    const char *sql_name; /* format_type without modifiers */
    int16_t len;
    bool byval;
    char category, align, storage;
    bool preferred;
    uint32_t array; /* its array type */
    uint32_t collation;
    bool underscore; /* I/O functions are "<name>_in", not "<name>in" */
} pgtype;

static const pgtype types[] = {
    {16, "bool", "boolean", 1, true, 'B', 'c', 'p', true, 1000, 0, false},
    {17, "bytea", "bytea", -1, false, 'U', 'i', 'x', false, 1001, 0, false},
    {18, "char", "\"char\"", 1, true, 'Z', 'c', 'p', false, 1002, 0, false},
    {19, "name", "name", 64, false, 'S', 'c', 'p', false, 1003, 950, false},
    {20, "int8", "bigint", 8, true, 'N', 'd', 'p', false, 1016, 0, false},
    {21, "int2", "smallint", 2, true, 'N', 's', 'p', false, 1005, 0, false},
    {23, "int4", "integer", 4, true, 'N', 'i', 'p', false, 1007, 0, false},
    {25, "text", "text", -1, false, 'S', 'i', 'x', true, 1009, 100, false},
    {26, "oid", "oid", 4, true, 'N', 'i', 'p', true, 1028, 0, false},
    {114, "json", "json", -1, false, 'U', 'i', 'x', false, 199, 0, true},
    {700, "float4", "real", 4, true, 'N', 'i', 'p', false, 1021, 0, false},
    {701, "float8", "double precision", 8, true, 'N', 'd', 'p', true, 1022, 0, false},
    {705, "unknown", "unknown", -2, false, 'X', 'c', 'p', false, 0, 0, false},
    {1042, "bpchar", "character", -1, false, 'S', 'i', 'x', false, 1014, 100, false},
    {1043, "varchar", "character varying", -1, false, 'S', 'i', 'x', false, 1015, 100, false},
    {1082, "date", "date", 4, true, 'D', 'i', 'p', false, 1182, 0, true},
    {1083, "time", "time without time zone", 8, true, 'D', 'd', 'p', false, 1183, 0, true},
    {1114, "timestamp", "timestamp without time zone", 8, true, 'D', 'd', 'p', false, 1115, 0,
     true},
    {1184, "timestamptz", "timestamp with time zone", 8, true, 'D', 'd', 'p', true, 1185, 0, true},
    {1186, "interval", "interval", 16, false, 'T', 'd', 'p', true, 1187, 0, true},
    {1266, "timetz", "time with time zone", 12, false, 'D', 'd', 'p', false, 1270, 0, true},
    {1700, "numeric", "numeric", -1, false, 'N', 'i', 'm', false, 1231, 0, true},
    {2950, "uuid", "uuid", 16, false, 'U', 'c', 'p', false, 2951, 0, true},
    {3802, "jsonb", "jsonb", -1, false, 'U', 'i', 'x', false, 3807, 0, true},
};

static const pgtype *type_by_oid(uint32_t oid) {
    for (size_t i = 0; i < BASE_ARRAY_LEN(types); i++)
        if (types[i].oid == oid) return &types[i];
    return NULL;
}

/* The element type of array type oid, or NULL. */
static const pgtype *array_elem(uint32_t oid) {
    for (size_t i = 0; i < BASE_ARRAY_LEN(types); i++)
        if (types[i].array == oid && oid != 0) return &types[i];
    return NULL;
}

static bool words_are(const char *w, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(w, list[i]) == 0) return true;
    return false;
}
#define WORDS_ARE(w, ...)                                                                          \
    words_are((w), (const char *const[]){__VA_ARGS__},                                             \
              sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

void sqlv__pgcat_column_type(const char *decl, sqlv__class cls, uint32_t *oid, int32_t *typmod) {
    char w[128];
    long mods[2] = {-1, -1};
    int nmods = 0;
    bool array = false, in_mod = false;
    size_t o = 0;
    *typmod = -1;
    /* upper case, "(...)" modifiers taken out, "[]" noted, spaces collapsed */
    for (const char *p = decl ? decl : ""; *p && o + 1 < sizeof(w); p++) {
        if (*p == '(') {
            in_mod = true;
            continue;
        }
        if (*p == ')') {
            in_mod = false;
            continue;
        }
        if (in_mod) {
            if (isdigit((unsigned char)*p) && nmods < 2) {
                char *e;
                mods[nmods++] = strtol(p, &e, 10);
                p = e - 1;
            }
            continue;
        }
        if (*p == '[') {
            array = true;
            break;
        }
        if (isspace((unsigned char)*p)) {
            if (o > 0 && w[o - 1] != ' ') w[o++] = ' ';
            continue;
        }
        w[o++] = (char)toupper((unsigned char)*p);
    }
    while (o > 0 && w[o - 1] == ' ')
        o--;
    w[o] = 0;
    uint32_t t = 0;
    if (WORDS_ARE(w, "INT", "INTEGER", "INT4", "MEDIUMINT", "SERIAL", "SERIAL4"))
        t = 23;
    else if (WORDS_ARE(w, "BIGINT", "INT8", "BIGSERIAL", "SERIAL8"))
        t = 20;
    else if (WORDS_ARE(w, "SMALLINT", "INT2", "TINYINT", "SMALLSERIAL", "SERIAL2"))
        t = 21;
    else if (WORDS_ARE(w, "BOOL", "BOOLEAN"))
        t = 16;
    else if (WORDS_ARE(w, "REAL", "FLOAT4"))
        t = 700;
    else if (strcmp(w, "FLOAT") == 0)
        t = nmods > 0 && mods[0] <= 24 ? 700 : 701;
    else if (WORDS_ARE(w, "DOUBLE", "DOUBLE PRECISION", "FLOAT8"))
        t = 701;
    else if (WORDS_ARE(w, "NUMERIC", "DECIMAL", "DEC")) {
        t = 1700;
        if (nmods > 0 && mods[0] > 0 && mods[0] <= 1000) {
            long scale = nmods > 1 ? mods[1] : 0;
            *typmod = (int32_t)(((mods[0] << 16) | (scale & 0xffff)) + 4);
        }
    } else if (WORDS_ARE(w, "TEXT", "CLOB", "STRING"))
        t = 25;
    else if (WORDS_ARE(w, "VARCHAR", "CHARACTER VARYING", "NVARCHAR", "VARYING CHARACTER")) {
        t = 1043;
        if (nmods > 0 && mods[0] > 0 && mods[0] < 10485760) *typmod = (int32_t)mods[0] + 4;
    } else if (WORDS_ARE(w, "CHAR", "CHARACTER", "NCHAR", "BPCHAR")) {
        t = 1042;
        if (nmods > 0 && mods[0] > 0 && mods[0] < 10485760)
            *typmod = (int32_t)mods[0] + 4;
        else if (strcmp(w, "BPCHAR") != 0)
            *typmod = 5; /* char means char(1) */
    } else if (WORDS_ARE(w, "BYTEA", "BLOB"))
        t = 17;
    else if (strcmp(w, "DATE") == 0)
        t = 1082;
    else if (WORDS_ARE(w, "TIME", "TIME WITHOUT TIME ZONE"))
        t = 1083;
    else if (WORDS_ARE(w, "TIMETZ", "TIME WITH TIME ZONE"))
        t = 1266;
    else if (WORDS_ARE(w, "TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE", "DATETIME"))
        t = 1114;
    else if (WORDS_ARE(w, "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"))
        t = 1184;
    else if (strcmp(w, "INTERVAL") == 0)
        t = 1186;
    else if (strcmp(w, "UUID") == 0)
        t = 2950;
    else if (strcmp(w, "JSON") == 0)
        t = 114;
    else if (strcmp(w, "JSONB") == 0)
        t = 3802;
    else if (strcmp(w, "NAME") == 0)
        t = 19;
    else if (strcmp(w, "OID") == 0)
        t = 26;
    if ((t == 1114 || t == 1184 || t == 1083 || t == 1266) && nmods > 0 && mods[0] >= 0 &&
        mods[0] <= 6)
        *typmod = (int32_t)mods[0];
    if (t == 0) {
        t = sqlv__class_oid(cls);
        *typmod = -1;
    }
    if (array) {
        const pgtype *b = type_by_oid(t);
        t = b && b->array ? b->array : 1009;
    }
    *oid = t;
}

bool sqlv__pgcat_format_type(uint32_t oid, int32_t typmod, char *out, size_t size) {
    const pgtype *t = type_by_oid(oid);
    const char *suffix = "";
    if (t == NULL) {
        t = array_elem(oid);
        if (t == NULL) return false;
        suffix = "[]";
    }
    if (typmod >= 4 && (t->oid == 1043 || t->oid == 1042)) {
        snprintf(out, size, "%s(%d)%s", t->sql_name, typmod - 4, suffix);
    } else if (typmod >= 4 && t->oid == 1700) {
        int m = typmod - 4;
        snprintf(out, size, "numeric(%d,%d)%s", (m >> 16) & 0xffff, m & 0xffff, suffix);
    } else if (typmod >= 0 &&
               (t->oid == 1114 || t->oid == 1184 || t->oid == 1083 || t->oid == 1266)) {
        const char *tz = t->oid == 1114 || t->oid == 1083 ? "without" : "with";
        snprintf(out, size, "%s(%d) %s time zone%s",
                 t->oid == 1114 || t->oid == 1184 ? "timestamp" : "time", typmod, tz, suffix);
    } else if (t->oid == 1042 && typmod < 0) {
        snprintf(out, size, "bpchar%s", suffix);
    } else {
        snprintf(out, size, "%s%s", t->sql_name, suffix);
    }
    return true;
}

/* ---- the tables a session sees ------------------------------------------------ */

static bool dropped_in_block(const sqlv_session *s, uint32_t id) {
    for (int d = 0; d < s->ddl.ndropped; d++)
        if (s->ddl.dropped[d] == id) return true;
    return false;
}

int sqlv__pgcat_tables(sqlv_session *s, const sqlv__table ***out, int *n) {
    const sqlv__catalog *c = s->cat;
    int m = 0;
    const sqlv__table **l = base_calloc((size_t)(c->ntables + s->ddl.ncreated + 1), sizeof(*l));
    if (l == NULL) return SQLV_ERR_NOMEM;
    for (int i = 0; i < c->ntables; i++)
        if (!dropped_in_block(s, c->tables[i]->id)) l[m++] = c->tables[i];
    for (int i = 0; i < s->ddl.ncreated; i++)
        l[m++] = s->ddl.created[i];
    *out = l;
    *n = m;
    return 0;
}

const sqlv__table *sqlv__pgcat_table_by_oid(sqlv_session *s, int64_t oid) {
    uint32_t id;
    int kind;
    if (!sqlv__pgcat_oid_parse(oid, &id, &kind)) return NULL;
    for (int i = 0; i < s->ddl.ncreated; i++)
        if (s->ddl.created[i]->id == id) return s->ddl.created[i];
    if (dropped_in_block(s, id)) return NULL;
    return sqlv__catalog_find_id(s->cat, id);
}

const sqlv__index *sqlv__pgcat_index_by_oid(sqlv_session *s, int64_t oid, const sqlv__table **t) {
    uint32_t table_id, index_id;
    bool con;
    if (!sqlv__pgcat_index_oid_parse(oid, &table_id, &index_id, &con)) return NULL;
    const sqlv__table *tab = sqlv__pgcat_table_by_oid(s, oid);
    for (int i = 0; tab && i < tab->nindexes; i++) {
        if (tab->indexes[i].id != index_id || (con && !tab->indexes[i].constraint)) continue;
        if (t) *t = tab;
        return &tab->indexes[i];
    }
    return NULL;
}

const sqlv__index *sqlv__pgcat_index_by_name(sqlv_session *s, const char *name,
                                             const sqlv__table **t) {
    const sqlv__table **list = NULL;
    const sqlv__index *found = NULL;
    int n = 0;
    if (sqlv__pgcat_tables(s, &list, &n) != 0) return NULL;
    for (int i = 0; i < n && found == NULL; i++) {
        found = sqlv__table_index_named(list[i], name);
        if (found && t) *t = list[i];
    }
    base_free(list);
    return found;
}

int sqlv__pgcat_index_def(const sqlv__table *t, const sqlv__index *ix, base_buf *out) {
    char q[300];
    sqlv__pgcat_quote_ident(ix->name, q, sizeof(q));
    int rc = base_buf_printf(out, "CREATE %sINDEX %s ON public.", ix->unique ? "UNIQUE " : "", q);
    sqlv__pgcat_quote_ident(t->name, q, sizeof(q));
    if (rc == 0) rc = base_buf_printf(out, "%s USING btree (", q);
    for (int c = 0; c < ix->ncols && rc == 0; c++) {
        sqlv__pgcat_quote_ident(t->cols[ix->cols[c]].name, q, sizeof(q));
        rc = base_buf_printf(out, "%s%s%s", c > 0 ? ", " : "", q, ix->desc[c] ? " DESC" : "");
    }
    if (rc == 0) rc = base_buf_append_byte(out, ')');
    return rc == 0 ? 0 : -1;
}

const sqlv__table *sqlv__pgcat_table_by_name(sqlv_session *s, const char *name) {
    for (int i = 0; i < s->ddl.ncreated; i++)
        if (sqlite3_stricmp(s->ddl.created[i]->name, name) == 0) return s->ddl.created[i];
    const sqlv__table *t = sqlv__catalog_find(s->cat, name);
    return t && !dropped_in_block(s, t->id) ? t : NULL;
}

/* ---- scans: rows built at xFilter ------------------------------------------------- */

/* A value handed to emit(): text is copied. */
typedef struct pgval {
    int type; /* SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_NULL */
    int64_t i;
    double r;
    const char *p;
} pgval;

/* A stored cell: text at text.data + off. */
typedef struct pgcell {
    int type;
    int64_t i;
    double r;
    size_t off, len;
} pgcell;

typedef struct pgcat_gen {
    sqlv_session *s;
    int ncols;
    int key_col; /* -1: no equality pushed down */
    bool key_null;
    int64_t key;
    pgcell *cells; /* nrows * ncols; owner: this */
    size_t ncells, cap;
    base_buf text; /* every text cell's bytes */
    bool too_big;
} pgcat_gen;

#define I(x) ((pgval){SQLITE_INTEGER, (int64_t)(x), 0, NULL})
#define B(x) I((x) ? 1 : 0)
#define T(x) ((pgval){(x) != NULL ? SQLITE_TEXT : SQLITE_NULL, 0, 0, (x)})
#define R(x) ((pgval){SQLITE_FLOAT, 0, (x), NULL})
#define NUL ((pgval){SQLITE_NULL, 0, 0, NULL})
#define ROW(g, ...)                                                                                \
    emit((g), (int)(sizeof((pgval[]){__VA_ARGS__}) / sizeof(pgval)), (pgval[]){__VA_ARGS__})

/* Append one row (n values, n == the relation's columns). A row whose key
** column cannot equal the pushed-down key is left out. 0 or -1 (memory,
** or too big: g->too_big). */
static int emit(pgcat_gen *g, int n, const pgval *v) {
    assert(n == g->ncols);
    if (g->key_col >= 0) {
        const pgval *k = &v[g->key_col];
        if (g->key_null || k->type != SQLITE_INTEGER || k->i != g->key) return 0;
    }
    if (g->ncells + (size_t)n > SQLV__PGCAT_CELLS_MAX) {
        g->too_big = true;
        return -1;
    }
    if (g->ncells + (size_t)n > g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 256;
        while (ncap < g->ncells + (size_t)n)
            ncap *= 2;
        pgcell *nc = base_realloc(g->cells, ncap * sizeof(*nc));
        if (nc == NULL) return -1;
        g->cells = nc;
        g->cap = ncap;
    }
    for (int i = 0; i < n; i++) {
        pgcell *c = &g->cells[g->ncells + (size_t)i];
        c->type = v[i].type;
        c->i = v[i].i;
        c->r = v[i].r;
        c->off = g->text.len;
        c->len = 0;
        if (v[i].type == SQLITE_TEXT) {
            c->len = strlen(v[i].p);
            if (base_buf_append(&g->text, v[i].p, c->len) != 0) return -1;
        }
    }
    g->ncells += (size_t)n;
    return 0;
}

/* Is the pushed-down key (on column col) possibly one of a..b? Prunes
** whole tables before their rows are built. */
static bool key_may_be(const pgcat_gen *g, int col, int64_t a, int64_t b) {
    if (g->key_col != col) return true;
    return !g->key_null && g->key >= a && g->key <= b;
}

/* The table list for one fill; owner: caller (base_free). */
#define WITH_TABLES(g, list, n)                                                                    \
    const sqlv__table **list = NULL;                                                               \
    int n = 0;                                                                                     \
    if (sqlv__pgcat_tables((g)->s, &list, &n) != 0) return -1

static const char *db_name(const pgcat_gen *g) { return g->s->database; }

/* The key's column numbers as an int2[] text: "{3,1}" (truncated for a
** key too long for size, which SQLV__COLUMNS_MAX makes impossible at 512). */
static void pk_conkey(const sqlv__table *t, char *out, size_t size) {
    size_t o = 0;
    out[o++] = '{';
    for (int k = 0; k < t->npk && o + 8 < size; k++) {
        int w = snprintf(out + o, size - o, "%s%d", k > 0 ? "," : "", t->pk[k] + 1);
        if (w > 0) o = BASE_MIN(size - 2, o + (size_t)w);
    }
    out[o++] = '}';
    out[o] = 0;
}

static void pkey_name(const sqlv__table *t, char *out, size_t size) {
    /* PostgreSQL truncates the table part so the name fits in 63 bytes */
    snprintf(out, size, "%.58s_pkey", t->name);
}

/* Sequences (sequence.c) through the session's transaction; owner of
** *list: caller (base_free). 0 or -1 (the error recorded). */
static int seqs_of(pgcat_gen *g, sqlv__seq_def **list, int *n) {
    txn_error err = {{0}, {0}};
    txn *kv = sqlv__session_kv(g->s);
    *list = NULL;
    *n = 0;
    if (kv == NULL) return -1;
    int rc = sqlv__seq_list(kv, list, n, &err);
    if (rc == TXN_OK) return 0;
    if (rc == SQLV_ERR_NOMEM) return -1;
    txn_error_set(&err, rc);
    sqlv__session_error(g->s, err.sqlstate, "%s", err.message);
    return -1;
}

/* A column's DEFAULT as PostgreSQL shows it (pg_attrdef, column_default):
** false for none and for an identity column (attidentity says it). */
static bool default_text(const sqlv__column *c, char *out, size_t size) {
    char seq[SQLV__NAME_BYTES_MAX * 4 + 1], q[SQLV__NAME_BYTES_MAX * 4 + 8];
    if (c->default_expr == NULL || sqlv__seq_column_identity(c) != 0) return false;
    if (sqlv__seq_column_sequence(c, seq, sizeof(seq))) {
        sqlv__pgcat_quote_ident(seq, q, sizeof(q));
        snprintf(out, size, "nextval('%s'::regclass)", q);
        return true;
    }
    base_strlcpy(out, c->default_expr, size);
    return true;
}

/* pg_class ------------------------------------------------------------------ */

/* acl: relacl (privileges.c), NULL for the owner's defaults; owner: relowner. */
static int class_row(pgcat_gen *g, int64_t oid, const char *name, int64_t reltype, int64_t am,
                     bool hasindex, const char *kind, int natts, int checks, const char *acl,
                     int64_t owner) {
    return ROW(g, I(oid), T(name), I(SQLV__PGCAT_OID_NS_PUBLIC), I(reltype), I(0), I(owner), I(am),
               I(oid), I(0), I(0), R(-1), I(0), I(0), B(hasindex), B(false), T("p"), T(kind),
               I(natts), I(checks), B(false), B(false), B(false), B(false), B(false), B(true),
               T("d"), B(false), I(0), I(0), I(0), T(acl), NUL, NUL);
}

/* relowner of table or sequence id: its owner row's role (privileges.c),
** root's without one (or without rows: read where there was no
** transaction). */
static int64_t class_owner(const pgcat_gen *g, const sqlv__priv_rows *privs,
                           const sqlv__role *roles, int nroles, uint32_t id) {
    const char *owner = sqlv__priv_owner(privs, id);
    if (owner == NULL) return SQLV__PGCAT_OID_ROOT_ROLE;
    for (int i = 0; i < nroles; i++)
        if (strcmp(roles[i].name, owner) == 0) return sqlv__pgcat_role_oid(roles[i].id);
    if (strcmp(owner, g->s->user) == 0) return SQLV__PGCAT_OID_SESSION_ROLE;
    return SQLV__PGCAT_OID_ROOT_ROLE;
}

/* The owner's name as pg_get_userbyid(relowner) prints it, so tableowner,
** viewowner and sequenceowner agree with pg_class. Lives as long as privs
** (or the session). */
static const char *class_owner_name(const pgcat_gen *g, const sqlv__priv_rows *privs,
                                    const sqlv__role *roles, int nroles, uint32_t id) {
    const char *owner = sqlv__priv_owner(privs, id);
    if (owner == NULL) return "root";
    for (int i = 0; i < nroles; i++)
        if (strcmp(roles[i].name, owner) == 0) return owner;
    return strcmp(owner, g->s->user) == 0 ? owner : "root";
}

/* The owner rows and roles of one fill (both NULL, 0 where there was no
** transaction: every owner is then root). 0, or -1 with the error
** recorded and nothing held. Owner of *privs and *roles: the caller
** (sqlv__priv_rows_free, base_free). */
static int owners_read(pgcat_gen *g, sqlv__priv_rows **privs, sqlv__role **roles, int *nroles) {
    txn_error err = {{0}, {0}};
    *privs = NULL;
    *roles = NULL;
    *nroles = 0;
    if (g->s->kv == NULL) return 0;
    if (sqlv__priv_rows_read(g->s->kv, privs, &err) == TXN_OK &&
        sqlv__roles_list(g->s->kv, roles, nroles, &err) == TXN_OK)
        return 0;
    sqlv__session_error(g->s, err.sqlstate[0] ? err.sqlstate : "XX000", "%s", err.message);
    sqlv__priv_rows_free(*privs);
    base_free(*roles);
    *privs = NULL;
    *roles = NULL;
    *nroles = 0;
    return -1;
}

/* The object whose owner a sequence shows: its own, or for a SERIAL's
** sequence without an owner row its table's. */
static uint32_t seq_owner_object(const pgcat_gen *g, const sqlv__priv_rows *privs,
                                 const sqlv__seq_def *d) {
    const sqlv__table *owning = d->owner_table[0] && sqlv__priv_owner(privs, d->id) == NULL
                                    ? sqlv__pgcat_table_by_name(g->s, d->owner_table)
                                    : NULL;
    return owning ? owning->id : d->id;
}

/* The relacl of table or sequence id into acl, or NULL (no grant, or no
** rows: read where there was no transaction). */
static const char *class_acl(const sqlv__priv_rows *privs, uint32_t id, bool sequence,
                             base_buf *acl, int *rc) {
    bool null = true;
    if (privs != NULL && sqlv__priv_relacl(privs, id, sequence, acl, &null) != 0) *rc = -1;
    return null || *rc != 0 ? NULL : (const char *)acl->data;
}

/* Could the pushed-down key on column col be an OID of one of t's
** secondary indexes (or their constraints)? */
static bool key_may_be_index(const pgcat_gen *g, int col, const sqlv__table *t) {
    if (t->nindexes == 0) return false;
    return key_may_be(g, col, sqlv__pgcat_index_oid(t->id, SQLV__INDEX_FIRST_ID, false),
                      sqlv__pgcat_index_oid(t->id, SQLV__INDEX_ID_MAX, true));
}

static int fill_class(pgcat_gen *g) {
    int rc = 0;
    sqlv__priv_rows *privs = NULL; /* relacl; owner: this function */
    sqlv__role *roles = NULL;      /* relowner; owner: this function */
    int nroles = 0;
    base_buf acl = {0};
    if (owners_read(g, &privs, &roles, &nroles) != 0) return -1;
    const sqlv__table **list = NULL; /* owner: this function */
    int n = 0;
    if (sqlv__pgcat_tables(g->s, &list, &n) != 0) rc = -1;
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__table *t = list[i];
        int64_t oid = sqlv__pgcat_oid(t->id, SQLV__PGCAT_KIND_TABLE);
        int64_t owner = class_owner(g, privs, roles, nroles, t->id); /* its indexes' too */
        if (key_may_be(g, 0, oid, oid + 3) && t->is_view) { /* relkind 'v' (view.c) */
            const char *relacl = class_acl(privs, t->id, false, &acl, &rc);
            if (rc == 0)
                rc = class_row(g, oid, t->name, oid + SQLV__PGCAT_KIND_ROWTYPE, 0, false, "v",
                               t->ncols, 0, relacl, owner);
        } else if (key_may_be(g, 0, oid, oid + 3)) {
            sqlv__check *checks = NULL; /* relchecks: psql's \d lists checks when > 0 */
            int nchecks = 0;
            if (sqlv__checks_of(t, &checks, &nchecks) != 0) {
                rc = -1;
                break;
            }
            sqlv__checks_free(checks, nchecks);
            const char *relacl = class_acl(privs, t->id, false, &acl, &rc);
            if (rc == 0)
                rc = class_row(g, oid, t->name, oid + SQLV__PGCAT_KIND_ROWTYPE,
                               SQLV__PGCAT_OID_AM_HEAP, t->npk > 0 || t->nindexes > 0, "r",
                               t->ncols, BASE_MIN(nchecks, SQLV__PGCAT_CHECKS_MAX), relacl, owner);
            if (rc == 0 && t->npk > 0) {
                char name[128];
                pkey_name(t, name, sizeof(name));
                rc = class_row(g, oid + SQLV__PGCAT_KIND_PKEY, name, 0, SQLV__PGCAT_OID_AM_BTREE,
                               false, "i", t->npk, 0, NULL, owner);
            }
        }
        if (!key_may_be_index(g, 0, t)) continue;
        for (int x = 0; x < t->nindexes && rc == 0; x++)
            rc = class_row(g, sqlv__pgcat_index_oid(t->id, t->indexes[x].id, false),
                           t->indexes[x].name, 0, SQLV__PGCAT_OID_AM_BTREE, false, "i",
                           t->indexes[x].ncols, 0, NULL, owner);
    }
    base_free(list);
    sqlv__seq_def *seqs = NULL; /* relkind 'S' */
    int nseqs = 0;
    if (rc == 0 && (rc = seqs_of(g, &seqs, &nseqs)) == 0)
        for (int i = 0; i < nseqs && rc == 0; i++) {
            const char *relacl = class_acl(privs, seqs[i].id, true, &acl, &rc);
            int64_t owner =
                class_owner(g, privs, roles, nroles, seq_owner_object(g, privs, &seqs[i]));
            if (rc == 0)
                rc = class_row(g, sqlv__pgcat_oid(seqs[i].id, SQLV__PGCAT_KIND_TABLE),
                               seqs[i].name, 0, 0, false, "S", 3, 0, relacl, owner);
        }
    base_free(seqs);
    base_free(roles);
    sqlv__priv_rows_free(privs);
    base_buf_free(&acl);
    return rc;
}

/* pg_sequence, pg_sequences, information_schema.sequences ------------------------------- */

static int fill_sequence(pgcat_gen *g) {
    sqlv__seq_def *seqs = NULL;
    int n = 0, rc = seqs_of(g, &seqs, &n);
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__seq_def *d = &seqs[i];
        rc = ROW(g, I(sqlv__pgcat_oid(d->id, SQLV__PGCAT_KIND_TABLE)),
                 I(d->type_bytes == 2 ? 21 : d->type_bytes == 4 ? 23 : 20), I(d->start),
                 I(d->increment), I(d->max), I(d->min), I(d->cache), B(d->cycle));
    }
    base_free(seqs);
    return rc;
}

static const char *seq_type(const sqlv__seq_def *d) {
    return d->type_bytes == 2 ? "smallint" : d->type_bytes == 4 ? "integer" : "bigint";
}

static int fill_sequences(pgcat_gen *g) {
    sqlv__priv_rows *privs = NULL; /* sequenceowner; owner: this function */
    sqlv__role *roles = NULL;      /* sequenceowner; owner: this function */
    int nroles = 0;
    if (owners_read(g, &privs, &roles, &nroles) != 0) return -1;
    sqlv__seq_def *seqs = NULL;
    int n = 0, rc = seqs_of(g, &seqs, &n);
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__seq_def *d = &seqs[i];
        int64_t last = 0;
        bool called = false;
        if (sqlv__seq_last_value(g->s, d, &last, &called) != TXN_OK) called = false;
        const char *owner =
            class_owner_name(g, privs, roles, nroles, seq_owner_object(g, privs, d));
        rc = ROW(g, T("public"), T(d->name), T(owner), T(seq_type(d)), I(d->start), I(d->min),
                 I(d->max), I(d->increment), B(d->cycle), I(d->cache), called ? I(last) : NUL);
    }
    base_free(seqs);
    base_free(roles);
    sqlv__priv_rows_free(privs);
    return rc;
}

/* meridian_sequence_state: what SELECT * FROM s reads (sequence.c rewrites
** the FROM item); log_cnt is always 0 (no WAL to pre-log values in). */
static int fill_seq_state(pgcat_gen *g) {
    sqlv__seq_def *seqs = NULL;
    int n = 0, rc = seqs_of(g, &seqs, &n);
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__seq_def *d = &seqs[i];
        int64_t last = d->start;
        bool called = false;
        if (sqlv__seq_last_value_seen(g->s, d, &last, &called) != TXN_OK) {
            last = d->start;
            called = false;
        }
        rc = ROW(g, T(d->name), I(last), I(0), B(called));
    }
    base_free(seqs);
    return rc;
}

static int fill_is_sequences(pgcat_gen *g) {
    sqlv__seq_def *seqs = NULL;
    int n = 0, rc = seqs_of(g, &seqs, &n);
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__seq_def *d = &seqs[i];
        char start[24], min[24], max[24], inc[24];
        snprintf(start, sizeof(start), "%lld", (long long)d->start);
        snprintf(min, sizeof(min), "%lld", (long long)d->min);
        snprintf(max, sizeof(max), "%lld", (long long)d->max);
        snprintf(inc, sizeof(inc), "%lld", (long long)d->increment);
        rc = ROW(g, T(db_name(g)), T("public"), T(d->name), T(seq_type(d)),
                 I(d->type_bytes * 8), I(2), I(0), T(start), T(min), T(max), T(inc),
                 T(d->cycle ? "YES" : "NO"));
    }
    base_free(seqs);
    return rc;
}

/* pg_depend: only what psql's \d of a sequence asks, its owner column
** ('a' for SERIAL and OWNED BY, 'i' for an identity). */
static int fill_depend(pgcat_gen *g) {
    sqlv__seq_def *seqs = NULL;
    int n = 0, rc = seqs_of(g, &seqs, &n);
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__seq_def *d = &seqs[i];
        const sqlv__table *t = d->owner_table[0] ? sqlv__pgcat_table_by_name(g->s, d->owner_table)
                                                 : NULL;
        for (int c = 0; t != NULL && c < t->ncols && rc == 0; c++) {
            if (strcasecmp(t->cols[c].name, d->owner_column) != 0) continue;
            const char *type = sqlv__seq_column_identity(&t->cols[c]) ? "i" : "a";
            rc = ROW(g, I(1259), I(sqlv__pgcat_oid(d->id, SQLV__PGCAT_KIND_TABLE)), I(0), I(1259),
                     I(sqlv__pgcat_oid(t->id, SQLV__PGCAT_KIND_TABLE)), I(c + 1), T(type));
        }
    }
    base_free(seqs);
    return rc;
}

/* pg_attrdef: the defaults of columns that have one (not identities). */
static int fill_attrdef(pgcat_gen *g) {
    int rc = 0;
    char text[1024];
    WITH_TABLES(g, list, n);
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__table *t = list[i];
        int64_t oid = sqlv__pgcat_oid(t->id, SQLV__PGCAT_KIND_TABLE);
        for (int c = 0; c < t->ncols && rc == 0; c++)
            if (default_text(&t->cols[c], text, sizeof(text)))
                rc = ROW(g, I(0), I(oid), I(c + 1), T(text));
    }
    base_free(list);
    return rc;
}

/* pg_namespace, pg_am, pg_collation, pg_tablespace, pg_database ------------------ */

static int fill_namespace(pgcat_gen *g) {
    const uint32_t root = SQLV__PGCAT_OID_ROOT_ROLE;
    if (ROW(g, I(SQLV__PGCAT_OID_NS_CATALOG), T("pg_catalog"), I(root), NUL) != 0 ||
        ROW(g, I(SQLV__PGCAT_OID_NS_TOAST), T("pg_toast"), I(root), NUL) != 0 ||
        ROW(g, I(SQLV__PGCAT_OID_NS_PUBLIC), T("public"), I(root), NUL) != 0 ||
        ROW(g, I(SQLV__PGCAT_OID_NS_INFO), T("information_schema"), I(root), NUL) != 0)
        return -1;
    return 0;
}

static int fill_am(pgcat_gen *g) {
    if (ROW(g, I(SQLV__PGCAT_OID_AM_HEAP), T("heap"), T("heap_tableam_handler"), T("t")) != 0 ||
        ROW(g, I(SQLV__PGCAT_OID_AM_BTREE), T("btree"), T("bthandler"), T("i")) != 0 ||
        ROW(g, I(405), T("hash"), T("hashhandler"), T("i")) != 0)
        return -1;
    return 0;
}

static int fill_collation(pgcat_gen *g) {
    const int64_t ns = SQLV__PGCAT_OID_NS_CATALOG, root = SQLV__PGCAT_OID_ROOT_ROLE;
    if (ROW(g, I(SQLV__PGCAT_OID_COLL_DEFAULT), T("default"), I(ns), I(root), T("d"), B(true),
            I(-1), NUL, NUL, NUL, NUL) != 0 ||
        ROW(g, I(950), T("C"), I(ns), I(root), T("c"), B(true), I(-1), T("C"), T("C"), NUL, NUL) !=
            0 ||
        ROW(g, I(951), T("POSIX"), I(ns), I(root), T("c"), B(true), I(-1), T("POSIX"), T("POSIX"),
            NUL, NUL) != 0)
        return -1;
    return 0;
}

static int fill_tablespace(pgcat_gen *g) {
    if (ROW(g, I(1663), T("pg_default"), I(SQLV__PGCAT_OID_ROOT_ROLE), NUL, NUL) != 0 ||
        ROW(g, I(1664), T("pg_global"), I(SQLV__PGCAT_OID_ROOT_ROLE), NUL, NUL) != 0)
        return -1;
    return 0;
}

static int fill_database(pgcat_gen *g) {
    /* encoding 6 is UTF8 */
    return ROW(g, I(SQLV__PGCAT_OID_DATABASE), T(db_name(g)), I(SQLV__PGCAT_OID_ROOT_ROLE), I(6),
               T("c"), B(false), B(true), I(-1), I(0), I(1), I(1663), T("C"), T("C"), NUL, NUL,
               NUL);
}

/* pg_roles, pg_user, pg_auth_members, pg_authid: the roles of the key space
** (users.c), read through the statement's transaction; and the session's
** user when no role has its name (an --insecure node lets anyone in) ------- */

/* The roles and (members not NULL) the memberships: owner of each list:
** caller, base_free. 0, or -1 with the session's error set. */
static int roles_of(pgcat_gen *g, sqlv__role **roles, int *nroles, sqlv__membership **members,
                    int *nmembers) {
    txn_error err = {{0}, {0}};
    txn *kv = sqlv__session_kv(g->s);
    *roles = NULL;
    *nroles = 0;
    if (members) *members = NULL;
    if (kv == NULL) return -1;
    int rc = sqlv__roles_list(kv, roles, nroles, &err);
    if (rc == TXN_OK && members) rc = sqlv__memberships_list(kv, members, nmembers, &err);
    if (rc == TXN_OK) return 0;
    base_free(*roles);
    *roles = NULL;
    txn_error_set(&err, rc);
    sqlv__session_error(g->s, err.sqlstate, "%s", err.message);
    return -1;
}

static const sqlv__role *role_named(const sqlv__role *list, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0) return &list[i];
    return NULL;
}

/* A text[] literal as PostgreSQL's array_out writes it ("{a=1,\"b=x y\"}"),
** one "name=value" element per ALTER ROLE ... SET pair; size must be at
** least SQLV__PGCAT_ROLE_CONFIG_SIZE. NULL when the role has none
** (rolconfig, setconfig). */
#define SQLV__PGCAT_ROLE_CONFIG_SIZE (3 * SQLV__ROLE_SETTINGS_BYTES_MAX + 8)
static const char *role_config(const sqlv__role *r, char *out, size_t size) {
    size_t o = 0;
    assert(size >= SQLV__PGCAT_ROLE_CONFIG_SIZE);
    if (r->settings_len == 0) return NULL;
    out[o++] = '{';
    /* each pair of n stored bytes ("name\0value\0") takes at most 2n + 1
    ** bytes here (escapes, quotes, comma): the size bounds the whole */
    for (size_t i = 0; i < r->settings_len;) { /* pairs checked when read */
        const char *name = r->settings + i, *value = name + strlen(name) + 1;
        char elem[SQLV__ROLE_SETTINGS_BYTES_MAX + 2];
        snprintf(elem, sizeof(elem), "%s=%s", name, value);
        bool quote = strpbrk(elem, "{}\",\\ \t\n\r\v\f") != NULL;
        if (i > 0) out[o++] = ',';
        if (quote) out[o++] = '"';
        for (const char *c = elem; *c && o + 4 < size; c++) {
            if (*c == '"' || *c == '\\') out[o++] = '\\';
            out[o++] = *c;
        }
        if (quote) out[o++] = '"';
        i = (size_t)(value - r->settings) + strlen(value) + 1;
    }
    out[o++] = '}';
    out[o] = 0;
    return out;
}

static int fill_roles(pgcat_gen *g) {
    sqlv__role *list = NULL; /* owner: this function */
    int n = 0, rc = 0;
    char config[SQLV__PGCAT_ROLE_CONFIG_SIZE];
    if (roles_of(g, &list, &n, NULL, NULL) != 0) return -1;
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__role *r = &list[i];
        bool root = r->id == SQLV__ROLE_ID_ROOT, admin = r->id == SQLV__ROLE_ID_ADMIN;
        rc = ROW(g, T(r->name), B(root), B(true), B(root || admin), B(root || admin), B(r->login),
                 B(root), I(r->conn_limit), T(r->verifier[0] ? "********" : NULL), NUL, B(root),
                 T(role_config(r, config, sizeof(config))), I(sqlv__pgcat_role_oid(r->id)));
    }
    if (rc == 0 && role_named(list, n, g->s->user) == NULL)
        rc = ROW(g, T(g->s->user), B(false), B(true), B(false), B(false), B(true), B(false), I(-1),
                 NUL, NUL, B(false), NUL, I(SQLV__PGCAT_OID_SESSION_ROLE));
    base_free(list);
    return rc;
}

static int fill_user(pgcat_gen *g) {
    sqlv__role *list = NULL; /* owner: this function */
    int n = 0, rc = 0;
    char config[SQLV__PGCAT_ROLE_CONFIG_SIZE];
    if (roles_of(g, &list, &n, NULL, NULL) != 0) return -1;
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__role *r = &list[i];
        bool root = r->id == SQLV__ROLE_ID_ROOT;
        if (!r->login) continue;
        rc = ROW(g, T(r->name), I(sqlv__pgcat_role_oid(r->id)), B(root), B(root), B(root), B(root),
                 T("********"), NUL, T(role_config(r, config, sizeof(config))));
    }
    if (rc == 0 && role_named(list, n, g->s->user) == NULL)
        rc = ROW(g, T(g->s->user), I(SQLV__PGCAT_OID_SESSION_ROLE), B(false), B(false), B(false),
                 B(false), T("********"), NUL, NUL);
    base_free(list);
    return rc;
}

static int fill_auth_members(pgcat_gen *g) {
    sqlv__role *list = NULL;          /* owner: this function */
    sqlv__membership *members = NULL; /* owner: this function */
    int n = 0, nm = 0, rc = 0;
    if (roles_of(g, &list, &n, &members, &nm) != 0) return -1;
    for (int i = 0; i < nm && rc == 0; i++) {
        const sqlv__role *role = role_named(list, n, members[i].role);
        const sqlv__role *member = role_named(list, n, members[i].member);
        if (role == NULL || member == NULL) continue; /* dropped together: never both */
        rc = ROW(g, I(sqlv__pgcat_role_oid(role->id)), I(sqlv__pgcat_role_oid(member->id)),
                 I(SQLV__PGCAT_OID_ROOT_ROLE), B(members[i].admin_option));
    }
    base_free(list);
    base_free(members);
    return rc;
}

/* pg_db_role_setting: one row per role with ALTER ROLE ... SET pairs
** (setdatabase 0: IN DATABASE is not supported), as psql's \drds reads it. */
static int fill_db_role_setting(pgcat_gen *g) {
    sqlv__role *list = NULL; /* owner: this function */
    int n = 0, rc = 0;
    char config[SQLV__PGCAT_ROLE_CONFIG_SIZE];
    if (roles_of(g, &list, &n, NULL, NULL) != 0) return -1;
    for (int i = 0; i < n && rc == 0; i++) {
        const char *c = role_config(&list[i], config, sizeof(config));
        if (c != NULL) rc = ROW(g, I(0), I(sqlv__pgcat_role_oid(list[i].id)), T(c));
    }
    base_free(list);
    return rc;
}

/* pg_authid holds the verifiers: root and members of admin only (42501). */
static int fill_authid(pgcat_gen *g) {
    txn_error err = {{0}, {0}};
    txn *kv = sqlv__session_kv(g->s);
    bool admin = false;
    if (kv == NULL) return -1;
    int rc = sqlv__role_is_admin(kv, g->s->user, &admin, &err);
    if (rc != TXN_OK) {
        txn_error_set(&err, rc);
        sqlv__session_error(g->s, err.sqlstate, "%s", err.message);
        return -1;
    }
    if (!admin) {
        sqlv__session_error(g->s, "42501", "permission denied for table pg_authid");
        return -1;
    }
    sqlv__role *list = NULL; /* owner: this function */
    int n = 0;
    rc = 0;
    if (roles_of(g, &list, &n, NULL, NULL) != 0) return -1;
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__role *r = &list[i];
        bool root = r->id == SQLV__ROLE_ID_ROOT, admin_role = r->id == SQLV__ROLE_ID_ADMIN;
        rc = ROW(g, I(sqlv__pgcat_role_oid(r->id)), T(r->name), B(root), B(true),
                 B(root || admin_role), B(root || admin_role), B(r->login), B(root), B(root),
                 I(r->conn_limit), T(r->verifier[0] ? r->verifier : NULL), NUL);
    }
    if (list != NULL) memset(list, 0, sizeof(*list) * (size_t)n); /* the verifiers */
    base_free(list);
    return rc;
}

/* pg_settings: the session's settings (SHOW ALL) ----------------------------------- */

static int fill_settings(pgcat_gen *g) {
    const char *name, *value;
    for (int i = 0; sqlv__setting_at(g->s, i, &name, &value); i++) {
        if (ROW(g, T(name), T(value), NUL, T("Meridian"), NUL, NUL, T("user"), T("string"),
                T("default"), NUL, NUL, NUL, T(value), T(value), NUL, NUL, B(false)) != 0)
            return -1;
    }
    return 0;
}

/* pg_type: the built-in types, their arrays, each table's row type ------------- */

static int type_row(pgcat_gen *g, const pgtype *t, bool array) {
    char name[64], in[64], out[64], recv[64], send[64];
    char category[2] = {t->category, 0}, align[2] = {t->align, 0}, storage[2] = {t->storage, 0};
    const char *us = t->underscore ? "_" : "";
    snprintf(name, sizeof(name), "%s%s", array ? "_" : "", t->name);
    if (array) {
        snprintf(in, sizeof(in), "array_in");
        snprintf(out, sizeof(out), "array_out");
        snprintf(recv, sizeof(recv), "array_recv");
        snprintf(send, sizeof(send), "array_send");
    } else {
        snprintf(in, sizeof(in), "%s%sin", t->name, us);
        snprintf(out, sizeof(out), "%s%sout", t->name, us);
        snprintf(recv, sizeof(recv), "%s%srecv", t->name, us);
        snprintf(send, sizeof(send), "%s%ssend", t->name, us);
    }
    return ROW(g, I(array ? t->array : t->oid), T(name), I(SQLV__PGCAT_OID_NS_CATALOG),
               I(SQLV__PGCAT_OID_ROOT_ROLE), I(array ? -1 : t->len), B(array ? false : t->byval),
               T("b"), T(array ? "A" : category), B(array ? false : t->preferred), B(true), T(","),
               I(0), T(array ? "array_subscript_handler" : "-"), I(array ? t->oid : 0),
               I(array ? 0 : t->array), T(in), T(out), T(recv), T(send), T("-"), T("-"),
               T(array ? "array_typanalyze" : "-"),
               T(array ? (t->align == 'd' ? "d" : "i") : align), T(array ? "x" : storage), B(false),
               I(0), I(-1), I(0), I(t->collation), NUL, NUL, NUL);
}

static int fill_type(pgcat_gen *g) {
    int rc = 0;
    for (size_t i = 0; i < BASE_ARRAY_LEN(types) && rc == 0; i++) {
        rc = type_row(g, &types[i], false);
        if (rc == 0 && types[i].array) rc = type_row(g, &types[i], true);
    }
    if (rc != 0 || !key_may_be(g, 0, SQLV__PGCAT_OID_FIRST, INT64_MAX)) return rc;
    WITH_TABLES(g, list, n);
    for (int i = 0; i < n && rc == 0; i++) {
        int64_t oid = sqlv__pgcat_oid(list[i]->id, SQLV__PGCAT_KIND_ROWTYPE);
        if (!key_may_be(g, 0, oid, oid)) continue;
        rc = ROW(g, I(oid), T(list[i]->name), I(SQLV__PGCAT_OID_NS_PUBLIC),
                 I(SQLV__PGCAT_OID_ROOT_ROLE), I(-1), B(false), T("c"), T("C"), B(false), B(true),
                 T(","), I(oid - SQLV__PGCAT_KIND_ROWTYPE), T("-"), I(0), I(0), T("record_in"),
                 T("record_out"), T("record_recv"), T("record_send"), T("-"), T("-"), T("-"),
                 T("d"), T("x"), B(false), I(0), I(-1), I(0), I(0), NUL, NUL, NUL);
    }
    base_free(list);
    return rc;
}

/* pg_attribute: every table's columns, and its primary key index's -------------- */

static int attribute_row(pgcat_gen *g, int64_t relid, const sqlv__column *c, int attnum) {
    uint32_t oid;
    int32_t typmod;
    sqlv__pgcat_column_type(c->decl_type, c->cls, &oid, &typmod);
    const pgtype *t = type_by_oid(oid);
    bool array = t == NULL;
    if (array) t = array_elem(oid);
    int16_t len = t && !array ? t->len : -1;
    bool byval = t && !array ? t->byval : false;
    char align[2] = {t ? (array && t->align != 'd' ? 'i' : t->align) : 'i', 0};
    char storage[2] = {t && !array ? t->storage : 'x', 0};
    uint32_t coll = t ? t->collation : 0;
    char identity[2] = {sqlv__seq_column_identity(c), 0}; /* "", "a" or "d" */
    bool hasdef = c->default_expr != NULL && identity[0] == 0;
    return ROW(g, I(relid), T(c->name), I(oid), I(-1), I(len), I(attnum), I(array ? 1 : 0), I(-1),
               I(typmod), B(byval), T(align), T(storage), T(""), B(c->not_null), B(hasdef),
               B(false), T(identity), T(""), B(false), B(true), I(0), I(coll), NUL, NUL, NUL, NUL);
}

static int fill_attribute(pgcat_gen *g) {
    int rc = 0;
    WITH_TABLES(g, list, n);
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__table *t = list[i];
        int64_t oid = sqlv__pgcat_oid(t->id, SQLV__PGCAT_KIND_TABLE);
        if (key_may_be(g, 0, oid, oid + SQLV__PGCAT_KIND_PKEY)) {
            for (int c = 0; c < t->ncols && rc == 0; c++)
                rc = attribute_row(g, oid, &t->cols[c], c + 1);
            for (int k = 0; k < t->npk && rc == 0; k++)
                rc = attribute_row(g, oid + SQLV__PGCAT_KIND_PKEY, &t->cols[t->pk[k]], k + 1);
        }
        if (!key_may_be_index(g, 0, t)) continue;
        for (int x = 0; x < t->nindexes && rc == 0; x++) {
            const sqlv__index *ix = &t->indexes[x];
            int64_t ioid = sqlv__pgcat_index_oid(t->id, ix->id, false);
            for (int c = 0; c < ix->ncols && rc == 0; c++)
                rc = attribute_row(g, ioid, &t->cols[ix->cols[c]], c + 1);
        }
    }
    base_free(list);
    return rc;
}

/* pg_index, pg_constraint, pg_indexes, pg_tables ------------------------------------ */

/* One pg_index row over columns cols[0..n) of t (desc: NULL for none). */
static int index_row(pgcat_gen *g, const sqlv__table *t, int64_t ioid, const int *cols,
                     const bool *desc, int n, bool unique, bool primary, bool valid) {
    char key[512], coll[512], cls[512], opt[512];
    size_t a = 0, b = 0, c = 0, d = 0;
    key[0] = coll[0] = cls[0] = opt[0] = 0;
    for (int k = 0; k < n; k++) {
        const sqlv__column *col = &t->cols[cols[k]];
        uint32_t ty;
        int32_t tm;
        sqlv__pgcat_column_type(col->decl_type, col->cls, &ty, &tm);
        const pgtype *pt = type_by_oid(ty);
        const char *sp = k > 0 ? " " : "";
        a += (size_t)snprintf(key + a, sizeof(key) - BASE_MIN(a, sizeof(key)), "%s%d", sp,
                              cols[k] + 1);
        b += (size_t)snprintf(coll + b, sizeof(coll) - BASE_MIN(b, sizeof(coll)), "%s%u", sp,
                              pt ? pt->collation : 0u);
        c += (size_t)snprintf(cls + c, sizeof(cls) - BASE_MIN(c, sizeof(cls)), "%s0", sp);
        /* PostgreSQL's INDOPTION_DESC | INDOPTION_NULLS_FIRST for DESC */
        d += (size_t)snprintf(opt + d, sizeof(opt) - BASE_MIN(d, sizeof(opt)), "%s%d", sp,
                              desc && desc[k] ? 3 : 0);
        if (a >= sizeof(key) || b >= sizeof(coll)) break; /* truncated: a huge key */
    }
    return ROW(g, I(ioid), I(sqlv__pgcat_oid(t->id, SQLV__PGCAT_KIND_TABLE)), I(n), I(n),
               B(unique), B(false), B(primary), B(false), B(true), B(false), B(valid), B(false),
               B(true), B(true), B(false), T(key), T(coll), T(cls), T(opt), NUL, NUL);
}

static int fill_index(pgcat_gen *g) {
    int rc = 0;
    WITH_TABLES(g, list, n);
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__table *t = list[i];
        int64_t oid = sqlv__pgcat_oid(t->id, SQLV__PGCAT_KIND_TABLE);
        if (t->npk > 0)
            rc = index_row(g, t, oid + SQLV__PGCAT_KIND_PKEY, t->pk, NULL, t->npk, true, true,
                           true);
        for (int x = 0; x < t->nindexes && rc == 0; x++) {
            const sqlv__index *ix = &t->indexes[x];
            rc = index_row(g, t, sqlv__pgcat_index_oid(t->id, ix->id, false), ix->cols, ix->desc,
                           ix->ncols, ix->unique, false, ix->state == SQLV__INDEX_PUBLIC);
        }
    }
    base_free(list);
    return rc;
}

static int fill_constraint(pgcat_gen *g) {
    int rc = 0;
    WITH_TABLES(g, list, n);
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__table *t = list[i];
        int64_t oid = sqlv__pgcat_oid(t->id, SQLV__PGCAT_KIND_TABLE);
        if (t->npk == 0) continue;
        char name[128], key[512];
        pkey_name(t, name, sizeof(name));
        pk_conkey(t, key, sizeof(key));
        rc = ROW(g, I(oid + SQLV__PGCAT_KIND_PKEY_CON), T(name), I(SQLV__PGCAT_OID_NS_PUBLIC),
                 T("p"), B(false), B(false), B(true), I(oid), I(0), I(oid + SQLV__PGCAT_KIND_PKEY),
                 I(0), I(0), T(" "), T(" "), T(" "), B(true), I(0), B(true), T(key), NUL, NUL, NUL,
                 NUL, NUL, NUL, NUL);
    }
    for (int i = 0; i < n && rc == 0; i++) { /* UNIQUE constraints */
        const sqlv__table *t = list[i];
        int64_t oid = sqlv__pgcat_oid(t->id, SQLV__PGCAT_KIND_TABLE);
        for (int x = 0; x < t->nindexes && rc == 0; x++) {
            const sqlv__index *ix = &t->indexes[x];
            if (!ix->constraint) continue;
            char key[512];
            size_t o = 0;
            key[o++] = '{';
            for (int c = 0; c < ix->ncols && o + 8 < sizeof(key); c++) {
                int w = snprintf(key + o, sizeof(key) - o, "%s%d", c > 0 ? "," : "",
                                 ix->cols[c] + 1);
                if (w > 0) o = BASE_MIN(sizeof(key) - 2, o + (size_t)w);
            }
            key[o++] = '}';
            key[o] = 0;
            rc = ROW(g, I(sqlv__pgcat_index_oid(t->id, ix->id, true)), T(ix->name),
                     I(SQLV__PGCAT_OID_NS_PUBLIC), T("u"), B(false), B(false), B(true), I(oid),
                     I(0), I(sqlv__pgcat_index_oid(t->id, ix->id, false)), I(0), I(0), T(" "),
                     T(" "), T(" "), B(true), I(0), B(true), T(key), NUL, NUL, NUL, NUL, NUL, NUL,
                     NUL);
        }
    }
    for (int i = 0; i < n && rc == 0; i++) { /* CHECK constraints (check.c) */
        const sqlv__table *t = list[i];
        int64_t oid = sqlv__pgcat_oid(t->id, SQLV__PGCAT_KIND_TABLE);
        sqlv__check *checks = NULL;
        int nchecks = 0;
        if (t->is_view) continue; /* a view has none */
        if (sqlv__checks_of(t, &checks, &nchecks) != 0) {
            rc = -1;
            break;
        }
        for (int k = 0; k < nchecks && k < SQLV__PGCAT_CHECKS_MAX && rc == 0; k++)
            rc = ROW(g, I(sqlv__pgcat_check_oid(t->id, k)), T(checks[k].name),
                     I(SQLV__PGCAT_OID_NS_PUBLIC), T("c"), B(false), B(false), B(true), I(oid),
                     I(0), I(0), I(0), I(0), T(" "), T(" "), T(" "), B(true), I(0), B(false), NUL,
                     NUL, NUL, NUL, NUL, NUL, NUL, T(checks[k].expr));
        sqlv__checks_free(checks, nchecks);
    }
    base_free(list);
    return rc;
}

/* pg_tables (views false) or pg_views: the owner as pg_class's relowner */
static int fill_tables_or_views(pgcat_gen *g, bool views) {
    int rc = 0;
    sqlv__priv_rows *privs = NULL; /* tableowner; owner: this function */
    sqlv__role *roles = NULL;      /* tableowner; owner: this function */
    int nroles = 0;
    if (owners_read(g, &privs, &roles, &nroles) != 0) return -1;
    const sqlv__table **list = NULL; /* owner: this function */
    int n = 0;
    if (sqlv__pgcat_tables(g->s, &list, &n) != 0) rc = -1;
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__table *t = list[i];
        if (t->is_view != views) continue;
        const char *owner = class_owner_name(g, privs, roles, nroles, t->id);
        rc = views ? ROW(g, T("public"), T(t->name), T(owner), T(t->view_query))
                   : ROW(g, T("public"), T(t->name), T(owner), NUL,
                         B(t->npk > 0 || t->nindexes > 0), B(false), B(false), B(false));
    }
    base_free(list);
    base_free(roles);
    sqlv__priv_rows_free(privs);
    return rc;
}

static int fill_tables(pgcat_gen *g) { return fill_tables_or_views(g, false); }

/* pg_views, information_schema.views: the stored query (view.c) */
static int fill_views(pgcat_gen *g) { return fill_tables_or_views(g, true); }

static int fill_is_views(pgcat_gen *g) {
    int rc = 0;
    WITH_TABLES(g, list, n);
    for (int i = 0; i < n && rc == 0; i++)
        if (list[i]->is_view)
            rc = ROW(g, T(db_name(g)), T("public"), T(list[i]->name), T(list[i]->view_query),
                     T("NONE"), T("NO"), T("NO"), T("NO"), T("NO"), T("NO"));
    base_free(list);
    return rc;
}

/* CREATE UNIQUE INDEX t_pkey ON public.t USING btree (cols) */
static void index_def(const sqlv__table *t, char *out, size_t size) {
    char name[128], qname[300], qt[300], cols[2048];
    pkey_name(t, name, sizeof(name));
    sqlv__pgcat_quote_ident(name, qname, sizeof(qname));
    sqlv__pgcat_quote_ident(t->name, qt, sizeof(qt));
    size_t o = 0;
    cols[0] = 0;
    for (int k = 0; k < t->npk && o + 1 < sizeof(cols); k++) {
        char q[300];
        sqlv__pgcat_quote_ident(t->cols[t->pk[k]].name, q, sizeof(q));
        int w = snprintf(cols + o, sizeof(cols) - o, "%s%s", k > 0 ? ", " : "", q);
        if (w > 0) o = BASE_MIN(sizeof(cols) - 1, o + (size_t)w);
    }
    snprintf(out, size, "CREATE UNIQUE INDEX %s ON public.%s USING btree (%s)", qname, qt, cols);
}

static int fill_indexes(pgcat_gen *g) {
    int rc = 0;
    base_buf def2 = {0};
    WITH_TABLES(g, list, n);
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__table *t = list[i];
        if (t->npk > 0) {
            char name[128], def[4096];
            pkey_name(t, name, sizeof(name));
            index_def(t, def, sizeof(def));
            rc = ROW(g, T("public"), T(t->name), T(name), NUL, T(def));
        }
        for (int x = 0; x < t->nindexes && rc == 0; x++) {
            base_buf_reset(&def2);
            rc = sqlv__pgcat_index_def(t, &t->indexes[x], &def2);
            if (rc == 0) rc = base_buf_append_byte(&def2, 0);
            if (rc == 0)
                rc = ROW(g, T("public"), T(t->name), T(t->indexes[x].name), NUL,
                         T((const char *)def2.data));
        }
    }
    base_free(list);
    base_buf_free(&def2);
    return rc;
}

/* information_schema ------------------------------------------------------------------ */

static int fill_is_tables(pgcat_gen *g) {
    int rc = 0;
    WITH_TABLES(g, list, n);
    for (int i = 0; i < n && rc == 0; i++)
        rc = ROW(g, T(db_name(g)), T("public"), T(list[i]->name),
                 T(list[i]->is_view ? "VIEW" : "BASE TABLE"), NUL, NUL, NUL, NUL, NUL,
                 T(list[i]->is_view ? "NO" : "YES"), T("NO"), NUL);
    base_free(list);
    return rc;
}

static int fill_is_schemata(pgcat_gen *g) {
    static const char *const names[] = {"pg_catalog", "pg_toast", "public", "information_schema"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(names); i++)
        if (ROW(g, T(db_name(g)), T(names[i]), T("root"), NUL, NUL, NUL, NUL) != 0) return -1;
    return 0;
}

static int is_column_row(pgcat_gen *g, const sqlv__table *t, int c) {
    const sqlv__column *col = &t->cols[c];
    uint32_t oid;
    int32_t typmod;
    char data_type[128], udt[64], dtd[16];
    sqlv__pgcat_column_type(col->decl_type, col->cls, &oid, &typmod);
    const pgtype *pt = type_by_oid(oid);
    bool array = pt == NULL;
    if (array) pt = array_elem(oid);
    if (array) {
        base_strlcpy(data_type, "ARRAY", sizeof(data_type));
    } else if (!sqlv__pgcat_format_type(oid, -1, data_type, sizeof(data_type))) {
        base_strlcpy(data_type, "text", sizeof(data_type));
    }
    if (oid == 1042) base_strlcpy(data_type, "character", sizeof(data_type));
    snprintf(udt, sizeof(udt), "%s%s", array ? "_" : "", pt ? pt->name : "text");
    snprintf(dtd, sizeof(dtd), "%d", c + 1);
    pgval charlen = NUL, octets = NUL, prec = NUL, radix = NUL, scale = NUL, dtprec = NUL;
    if (!array) {
        switch (oid) {
        case 1043:
        case 1042:
            if (typmod >= 4) {
                charlen = I(typmod - 4);
                octets = I((int64_t)(typmod - 4) * 4);
            } else {
                octets = I(1073741824);
            }
            break;
        case 25: octets = I(1073741824); break;
        case 21: prec = I(16), radix = I(2), scale = I(0); break;
        case 23: prec = I(32), radix = I(2), scale = I(0); break;
        case 20: prec = I(64), radix = I(2), scale = I(0); break;
        case 700: prec = I(24), radix = I(2); break;
        case 701: prec = I(53), radix = I(2); break;
        case 1700:
            radix = I(10);
            if (typmod >= 4) {
                prec = I(((typmod - 4) >> 16) & 0xffff);
                scale = I((typmod - 4) & 0xffff);
            }
            break;
        case 1082: dtprec = I(0); break;
        case 1083:
        case 1266:
        case 1114:
        case 1184:
        case 1186: dtprec = I(typmod >= 0 ? typmod : 6); break;
        default: break;
        }
    }
    char def[1024];
    bool has_def = default_text(col, def, sizeof(def));
    char identity = sqlv__seq_column_identity(col);
    return ROW(g, T(db_name(g)), T("public"), T(t->name), T(col->name), I(c + 1),
               has_def ? T(def) : NUL, T(col->not_null ? "NO" : "YES"), T(data_type), charlen,
               octets, prec, radix, scale, dtprec, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL,
               NUL, T(db_name(g)), T("pg_catalog"), T(udt), NUL, NUL, NUL, NUL, T(dtd), T("NO"),
               T(identity ? "YES" : "NO"),
               identity ? T(identity == 'a' ? "ALWAYS" : "BY DEFAULT") : NUL, NUL, NUL, NUL, NUL,
               T("NO"), T("NEVER"), NUL, T("YES"));
}

static int fill_is_columns(pgcat_gen *g) {
    int rc = 0;
    WITH_TABLES(g, list, n);
    for (int i = 0; i < n && rc == 0; i++)
        for (int c = 0; c < list[i]->ncols && rc == 0; c++)
            rc = is_column_row(g, list[i], c);
    base_free(list);
    return rc;
}

static int fill_is_key_column_usage(pgcat_gen *g) {
    int rc = 0;
    WITH_TABLES(g, list, n);
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__table *t = list[i];
        char name[128];
        pkey_name(t, name, sizeof(name));
        for (int k = 0; k < t->npk && rc == 0; k++)
            rc = ROW(g, T(db_name(g)), T("public"), T(name), T(db_name(g)), T("public"), T(t->name),
                     T(t->cols[t->pk[k]].name), I(k + 1), NUL);
        for (int x = 0; x < t->nindexes && rc == 0; x++) {
            const sqlv__index *ix = &t->indexes[x];
            for (int c = 0; ix->constraint && c < ix->ncols && rc == 0; c++)
                rc = ROW(g, T(db_name(g)), T("public"), T(ix->name), T(db_name(g)), T("public"),
                         T(t->name), T(t->cols[ix->cols[c]].name), I(c + 1), NUL);
        }
    }
    base_free(list);
    return rc;
}

static int fill_is_table_constraints(pgcat_gen *g) {
    int rc = 0;
    WITH_TABLES(g, list, n);
    for (int i = 0; i < n && rc == 0; i++) {
        const sqlv__table *t = list[i];
        if (t->npk > 0) {
            char name[128];
            pkey_name(t, name, sizeof(name));
            rc = ROW(g, T(db_name(g)), T("public"), T(name), T(db_name(g)), T("public"),
                     T(t->name), T("PRIMARY KEY"), T("NO"), T("NO"), T("YES"), NUL);
        }
        for (int x = 0; x < t->nindexes && rc == 0; x++)
            if (t->indexes[x].constraint)
                rc = ROW(g, T(db_name(g)), T("public"), T(t->indexes[x].name), T(db_name(g)),
                         T("public"), T(t->name), T("UNIQUE"), T("NO"), T("NO"), T("YES"),
                         T("YES"));
    }
    base_free(list);
    return rc;
}

/* information_schema.table_privileges: the stored privileges of every table
** (privileges.c), through the statement's transaction. */
static int is_table_privilege_row(void *arg, const char *table, const char *grantor,
                                  const char *grantee, const char *privilege, bool grantable) {
    pgcat_gen *g = arg;
    return ROW(g, T(grantor), T(strcmp(grantee, "public") == 0 ? "PUBLIC" : grantee),
               T(db_name(g)), T("public"), T(table), T(privilege), T(grantable ? "YES" : "NO"),
               T(strcmp(privilege, "SELECT") == 0 ? "YES" : "NO"));
}

/* information_schema.column_privileges: every column's own privileges and
** those of its table (privileges.c), through the statement's transaction. */
static int is_column_privilege_row(void *arg, const char *table, const char *column,
                                   const char *grantor, const char *grantee,
                                   const char *privilege, bool grantable) {
    pgcat_gen *g = arg;
    return ROW(g, T(grantor), T(strcmp(grantee, "public") == 0 ? "PUBLIC" : grantee),
               T(db_name(g)), T("public"), T(table), T(column), T(privilege),
               T(grantable ? "YES" : "NO"));
}

/* Both views' rows through the statement's transaction: columns, the
** column privileges, else the table privileges. */
static int fill_privileges(pgcat_gen *g, bool columns) {
    txn_error err = {{0}, {0}};
    txn *kv = sqlv__session_kv(g->s);
    if (kv == NULL) return -1;
    WITH_TABLES(g, list, n);
    int rc = columns ? sqlv__priv_column_privileges(kv, list, n, is_column_privilege_row, g, &err)
                     : sqlv__priv_table_privileges(kv, list, n, is_table_privilege_row, g, &err);
    base_free(list);
    if (rc < 0 && rc != -1) { /* a txn error (a row's -1 set g->too_big or ran out of memory) */
        txn_error_set(&err, rc);
        sqlv__session_error(g->s, err.sqlstate, "%s", err.message);
        return -1;
    }
    return rc;
}

static int fill_is_table_privileges(pgcat_gen *g) { return fill_privileges(g, false); }

static int fill_is_column_privileges(pgcat_gen *g) { return fill_privileges(g, true); }

/* ---- the relations ------------------------------------------------------------------ */

typedef struct pgcat_rel {
    const char *name; /* as SQLite sees it */
    uint32_t oid;     /* PostgreSQL's OID of the relation (regclass), or a fixed one */
    const char *columns;
    uint64_t keys;             /* bit c: column c takes a pushed-down equality (an OID) */
    int (*fill)(pgcat_gen *g); /* NULL: always empty */
} pgcat_rel;

/* Column types: INTEGER for oid/int columns (affinity INTEGER, so psql's
** "c.oid = '16384'" compares as numbers), BOOL for booleans (reported as
** bool), TEXT for names, "char", arrays (their text form) and the rest. */
static const pgcat_rel rels[] = {
    {"pg_class", 1259,
     "oid INTEGER, relname TEXT, relnamespace INTEGER, reltype INTEGER, reloftype INTEGER, "
     "relowner INTEGER, relam INTEGER, relfilenode INTEGER, reltablespace INTEGER, relpages "
     "INTEGER, reltuples REAL, relallvisible INTEGER, reltoastrelid INTEGER, relhasindex BOOL, "
     "relisshared BOOL, relpersistence TEXT, relkind TEXT, relnatts SMALLINT, relchecks "
     "SMALLINT, relhasrules BOOL, relhastriggers BOOL, relhassubclass BOOL, relrowsecurity BOOL, "
     "relforcerowsecurity BOOL, relispopulated BOOL, relreplident TEXT, relispartition BOOL, "
     "relrewrite INTEGER, relfrozenxid INTEGER, relminmxid INTEGER, relacl TEXT, reloptions TEXT, "
     "relpartbound TEXT",
     1u << 0, fill_class},
    {"pg_namespace", 2615, "oid INTEGER, nspname TEXT, nspowner INTEGER, nspacl TEXT", 1u << 0,
     fill_namespace},
    {"pg_attribute", 1249,
     "attrelid INTEGER, attname TEXT, atttypid INTEGER, attstattarget INTEGER, attlen SMALLINT, "
     "attnum SMALLINT, attndims INTEGER, attcacheoff INTEGER, atttypmod INTEGER, attbyval BOOL, "
     "attalign TEXT, attstorage TEXT, attcompression TEXT, attnotnull BOOL, atthasdef BOOL, "
     "atthasmissing BOOL, attidentity TEXT, attgenerated TEXT, attisdropped BOOL, attislocal "
     "BOOL, attinhcount INTEGER, attcollation INTEGER, attacl TEXT, attoptions TEXT, "
     "attfdwoptions TEXT, attmissingval TEXT",
     1u << 0, fill_attribute},
    {"pg_type", 1247,
     "oid INTEGER, typname TEXT, typnamespace INTEGER, typowner INTEGER, typlen SMALLINT, "
     "typbyval BOOL, typtype TEXT, typcategory TEXT, typispreferred BOOL, typisdefined BOOL, "
     "typdelim TEXT, typrelid INTEGER, typsubscript TEXT, typelem INTEGER, typarray INTEGER, "
     "typinput TEXT, typoutput TEXT, typreceive TEXT, typsend TEXT, typmodin TEXT, typmodout "
     "TEXT, typanalyze TEXT, typalign TEXT, typstorage TEXT, typnotnull BOOL, typbasetype "
     "INTEGER, typtypmod INTEGER, typndims INTEGER, typcollation INTEGER, typdefaultbin TEXT, "
     "typdefault TEXT, typacl TEXT",
     1u << 0, fill_type},
    {"pg_index", 2610,
     "indexrelid INTEGER, indrelid INTEGER, indnatts SMALLINT, indnkeyatts SMALLINT, indisunique "
     "BOOL, indnullsnotdistinct BOOL, indisprimary BOOL, indisexclusion BOOL, indimmediate BOOL, "
     "indisclustered BOOL, indisvalid BOOL, indcheckxmin BOOL, indisready BOOL, indislive BOOL, "
     "indisreplident BOOL, indkey TEXT, indcollation TEXT, indclass TEXT, indoption TEXT, "
     "indexprs TEXT, indpred TEXT",
     (1u << 0) | (1u << 1), fill_index},
    {"pg_constraint", 2606,
     "oid INTEGER, conname TEXT, connamespace INTEGER, contype TEXT, condeferrable BOOL, "
     "condeferred BOOL, convalidated BOOL, conrelid INTEGER, contypid INTEGER, conindid INTEGER, "
     "conparentid INTEGER, confrelid INTEGER, confupdtype TEXT, confdeltype TEXT, confmatchtype "
     "TEXT, conislocal BOOL, coninhcount INTEGER, connoinherit BOOL, conkey TEXT, confkey TEXT, "
     "conpfeqop TEXT, conppeqop TEXT, conffeqop TEXT, confdelsetcols TEXT, conexclop TEXT, conbin "
     "TEXT",
     (1u << 0) | (1u << 7), fill_constraint},
    {"pg_database", 1262,
     "oid INTEGER, datname TEXT, datdba INTEGER, encoding INTEGER, datlocprovider TEXT, "
     "datistemplate BOOL, datallowconn BOOL, datconnlimit INTEGER, datfrozenxid INTEGER, "
     "datminmxid INTEGER, dattablespace INTEGER, datcollate TEXT, datctype TEXT, daticulocale "
     "TEXT, datcollversion TEXT, datacl TEXT",
     1u << 0, fill_database},
    {"pg_roles", 12001,
     "rolname TEXT, rolsuper BOOL, rolinherit BOOL, rolcreaterole BOOL, rolcreatedb BOOL, "
     "rolcanlogin BOOL, rolreplication BOOL, rolconnlimit INTEGER, rolpassword TEXT, "
     "rolvaliduntil TEXT, rolbypassrls BOOL, rolconfig TEXT, oid INTEGER",
     1u << 12, fill_roles},
    {"pg_user", 12002,
     "usename TEXT, usesysid INTEGER, usecreatedb BOOL, usesuper BOOL, userepl BOOL, "
     "usebypassrls BOOL, passwd TEXT, valuntil TEXT, useconfig TEXT",
     1u << 1, fill_user},
    {"pg_auth_members", 1261, "roleid INTEGER, member INTEGER, grantor INTEGER, admin_option BOOL",
     (1u << 0) | (1u << 1), fill_auth_members},
    {"pg_db_role_setting", 2964, "setdatabase INTEGER, setrole INTEGER, setconfig TEXT",
     (1u << 0) | (1u << 1), fill_db_role_setting},
    {"pg_authid", 1260,
     "oid INTEGER, rolname TEXT, rolsuper BOOL, rolinherit BOOL, rolcreaterole BOOL, rolcreatedb "
     "BOOL, rolcanlogin BOOL, rolreplication BOOL, rolbypassrls BOOL, rolconnlimit INTEGER, "
     "rolpassword TEXT, rolvaliduntil TEXT",
     1u << 0, fill_authid},
    {"pg_settings", 12003,
     "name TEXT, setting TEXT, unit TEXT, category TEXT, short_desc TEXT, extra_desc TEXT, "
     "context TEXT, vartype TEXT, source TEXT, min_val TEXT, max_val TEXT, enumvals TEXT, "
     "boot_val TEXT, reset_val TEXT, sourcefile TEXT, sourceline INTEGER, pending_restart BOOL",
     0, fill_settings},
    {"pg_description", 2609, "objoid INTEGER, classoid INTEGER, objsubid INTEGER, description TEXT",
     1u << 0, NULL},
    {"pg_shdescription", 2396, "objoid INTEGER, classoid INTEGER, description TEXT", 1u << 0, NULL},
    {"pg_am", 2601, "oid INTEGER, amname TEXT, amhandler TEXT, amtype TEXT", 1u << 0, fill_am},
    {"pg_collation", 3456,
     "oid INTEGER, collname TEXT, collnamespace INTEGER, collowner INTEGER, collprovider TEXT, "
     "collisdeterministic BOOL, collencoding INTEGER, collcollate TEXT, collctype TEXT, "
     "colliculocale TEXT, collversion TEXT",
     1u << 0, fill_collation},
    {"pg_tablespace", 1213,
     "oid INTEGER, spcname TEXT, spcowner INTEGER, spcacl TEXT, spcoptions TEXT", 1u << 0,
     fill_tablespace},
    {"pg_attrdef", 2604, "oid INTEGER, adrelid INTEGER, adnum SMALLINT, adbin TEXT", 1u << 1,
     fill_attrdef},
    {"pg_depend", 2608,
     "classid INTEGER, objid INTEGER, objsubid INTEGER, refclassid INTEGER, refobjid INTEGER, "
     "refobjsubid INTEGER, deptype TEXT",
     (1u << 1) | (1u << 4), fill_depend},
    {"pg_sequence", 2224,
     "seqrelid INTEGER, seqtypid INTEGER, seqstart INTEGER, seqincrement INTEGER, seqmax "
     "INTEGER, seqmin INTEGER, seqcache INTEGER, seqcycle BOOL",
     1u << 0, fill_sequence},
    {"pg_sequences", 12008,
     "schemaname TEXT, sequencename TEXT, sequenceowner TEXT, data_type TEXT, start_value "
     "INTEGER, min_value INTEGER, max_value INTEGER, increment_by INTEGER, cycle BOOL, cache_size "
     "INTEGER, last_value INTEGER",
     0, fill_sequences},
    {"meridian_sequence_state", 13090,
     "sequencename TEXT, last_value INTEGER, log_cnt INTEGER, is_called BOOL", 0, fill_seq_state},
    {"pg_inherits", 2611,
     "inhrelid INTEGER, inhparent INTEGER, inhseqno INTEGER, inhdetachpending BOOL", 3, NULL},
    {"pg_policy", 3256,
     "oid INTEGER, polname TEXT, polrelid INTEGER, polcmd TEXT, polpermissive BOOL, polroles "
     "TEXT, polqual TEXT, polwithcheck TEXT",
     1u << 2, NULL},
    {"pg_trigger", 2620,
     "oid INTEGER, tgrelid INTEGER, tgparentid INTEGER, tgname TEXT, tgfoid INTEGER, tgtype "
     "SMALLINT, tgenabled TEXT, tgisinternal BOOL, tgconstrrelid INTEGER, tgconstrindid INTEGER, "
     "tgconstraint INTEGER, tgdeferrable BOOL, tginitdeferred BOOL, tgnargs SMALLINT, tgattr "
     "TEXT, tgargs TEXT, tgqual TEXT, tgoldtable TEXT, tgnewtable TEXT",
     1u << 1, NULL},
    {"pg_rewrite", 2618,
     "oid INTEGER, rulename TEXT, ev_class INTEGER, ev_type TEXT, ev_enabled TEXT, is_instead "
     "BOOL, ev_qual TEXT, ev_action TEXT",
     1u << 2, NULL},
    {"pg_statistic_ext", 3381,
     "oid INTEGER, stxrelid INTEGER, stxname TEXT, stxnamespace INTEGER, stxowner INTEGER, "
     "stxstattarget INTEGER, stxkeys TEXT, stxkind TEXT, stxexprs TEXT",
     1u << 1, NULL},
    {"pg_publication", 6104,
     "oid INTEGER, pubname TEXT, pubowner INTEGER, puballtables BOOL, pubinsert BOOL, pubupdate "
     "BOOL, pubdelete BOOL, pubtruncate BOOL, pubviaroot BOOL",
     1u << 0, NULL},
    {"pg_publication_rel", 6106,
     "oid INTEGER, prpubid INTEGER, prrelid INTEGER, prqual TEXT, prattrs TEXT", 1u << 2, NULL},
    {"pg_publication_namespace", 6237, "oid INTEGER, pnpubid INTEGER, pnnspid INTEGER", 1u << 2,
     NULL},
    {"pg_partitioned_table", 3350,
     "partrelid INTEGER, partstrat TEXT, partnatts SMALLINT, partdefid INTEGER, partattrs TEXT, "
     "partclass TEXT, partcollation TEXT, partexprs TEXT",
     1u << 0, NULL},
    {"pg_foreign_table", 3118, "ftrelid INTEGER, ftserver INTEGER, ftoptions TEXT", 1u << 0, NULL},
    {"pg_extension", 3079,
     "oid INTEGER, extname TEXT, extowner INTEGER, extnamespace INTEGER, extrelocatable BOOL, "
     "extversion TEXT, extconfig TEXT, extcondition TEXT",
     1u << 0, NULL},
    {"pg_tables", 12004,
     "schemaname TEXT, tablename TEXT, tableowner TEXT, tablespace TEXT, hasindexes BOOL, "
     "hasrules BOOL, hastriggers BOOL, rowsecurity BOOL",
     0, fill_tables},
    {"pg_indexes", 12005,
     "schemaname TEXT, tablename TEXT, indexname TEXT, tablespace TEXT, indexdef TEXT", 0,
     fill_indexes},
    {"pg_views", 12006, "schemaname TEXT, viewname TEXT, viewowner TEXT, definition TEXT", 0,
     fill_views},
    {"information_schema_views", 13030,
     "table_catalog TEXT, table_schema TEXT, table_name TEXT, view_definition TEXT, check_option "
     "TEXT, is_updatable TEXT, is_insertable_into TEXT, is_trigger_updatable TEXT, "
     "is_trigger_deletable TEXT, is_trigger_insertable_into TEXT",
     0, fill_is_views},
    {"pg_matviews", 12007,
     "schemaname TEXT, matviewname TEXT, matviewowner TEXT, tablespace TEXT, hasindexes BOOL, "
     "ispopulated BOOL, definition TEXT",
     0, NULL},
    {"information_schema_tables", 13001,
     "table_catalog TEXT, table_schema TEXT, table_name TEXT, table_type TEXT, "
     "self_referencing_column_name TEXT, reference_generation TEXT, user_defined_type_catalog "
     "TEXT, user_defined_type_schema TEXT, user_defined_type_name TEXT, is_insertable_into TEXT, "
     "is_typed TEXT, commit_action TEXT",
     0, fill_is_tables},
    {"information_schema_columns", 13002,
     "table_catalog TEXT, table_schema TEXT, table_name TEXT, column_name TEXT, ordinal_position "
     "INTEGER, column_default TEXT, is_nullable TEXT, data_type TEXT, character_maximum_length "
     "INTEGER, character_octet_length INTEGER, numeric_precision INTEGER, "
     "numeric_precision_radix INTEGER, numeric_scale INTEGER, datetime_precision INTEGER, "
     "interval_type TEXT, interval_precision INTEGER, character_set_catalog TEXT, "
     "character_set_schema TEXT, character_set_name TEXT, collation_catalog TEXT, "
     "collation_schema TEXT, collation_name TEXT, domain_catalog TEXT, domain_schema TEXT, "
     "domain_name TEXT, udt_catalog TEXT, udt_schema TEXT, udt_name TEXT, scope_catalog TEXT, "
     "scope_schema TEXT, scope_name TEXT, maximum_cardinality INTEGER, dtd_identifier TEXT, "
     "is_self_referencing TEXT, is_identity TEXT, identity_generation TEXT, identity_start TEXT, "
     "identity_increment TEXT, identity_maximum TEXT, identity_minimum TEXT, identity_cycle "
     "TEXT, is_generated TEXT, generation_expression TEXT, is_updatable TEXT",
     0, fill_is_columns},
    {"information_schema_schemata", 13003,
     "catalog_name TEXT, schema_name TEXT, schema_owner TEXT, default_character_set_catalog "
     "TEXT, default_character_set_schema TEXT, default_character_set_name TEXT, sql_path TEXT",
     0, fill_is_schemata},
    {"information_schema_key_column_usage", 13004,
     "constraint_catalog TEXT, constraint_schema TEXT, constraint_name TEXT, table_catalog TEXT, "
     "table_schema TEXT, table_name TEXT, column_name TEXT, ordinal_position INTEGER, "
     "position_in_unique_constraint INTEGER",
     0, fill_is_key_column_usage},
    {"information_schema_table_constraints", 13005,
     "constraint_catalog TEXT, constraint_schema TEXT, constraint_name TEXT, table_catalog TEXT, "
     "table_schema TEXT, table_name TEXT, constraint_type TEXT, is_deferrable TEXT, "
     "initially_deferred TEXT, enforced TEXT, nulls_distinct TEXT",
     0, fill_is_table_constraints},
    {"information_schema_table_privileges", 13020,
     "grantor TEXT, grantee TEXT, table_catalog TEXT, table_schema TEXT, table_name TEXT, "
     "privilege_type TEXT, is_grantable TEXT, with_hierarchy TEXT",
     0, fill_is_table_privileges},
    {"information_schema_column_privileges", 13021,
     "grantor TEXT, grantee TEXT, table_catalog TEXT, table_schema TEXT, table_name TEXT, "
     "column_name TEXT, privilege_type TEXT, is_grantable TEXT",
     0, fill_is_column_privileges},
    {"information_schema_sequences", 13006,
     "sequence_catalog TEXT, sequence_schema TEXT, sequence_name TEXT, data_type TEXT, "
     "numeric_precision INTEGER, numeric_precision_radix INTEGER, numeric_scale INTEGER, "
     "start_value TEXT, minimum_value TEXT, maximum_value TEXT, increment TEXT, cycle_option TEXT",
     0, fill_is_sequences},
};

uint32_t sqlv__pgcat_relation_oid(const char *name) {
    for (size_t i = 0; i < BASE_ARRAY_LEN(rels); i++)
        if (sqlite3_stricmp(rels[i].name, name) == 0) return rels[i].oid;
    return 0;
}

const char *sqlv__pgcat_information_schema(const char *x) {
    static const char prefix[] = "information_schema_";
    for (size_t i = 0; i < BASE_ARRAY_LEN(rels); i++)
        if (strncmp(rels[i].name, prefix, sizeof(prefix) - 1) == 0 &&
            sqlite3_stricmp(rels[i].name + sizeof(prefix) - 1, x) == 0)
            return rels[i].name;
    return NULL;
}

/* ---- the module ---------------------------------------------------------------------- */

typedef struct pgcat_aux {
    sqlv_session *s; /* borrowed: the session owns the connection */
    const pgcat_rel *rel;
} pgcat_aux;

typedef struct pgcat_vtab {
    sqlite3_vtab base;
    sqlv_session *s;
    const pgcat_rel *rel;
    int ncols;
} pgcat_vtab;

typedef struct pgcat_cursor {
    sqlite3_vtab_cursor base;
    pgcat_gen g;
    size_t row, nrows;
} pgcat_cursor;

static int count_columns(const char *cols) {
    int n = 1;
    for (const char *p = cols; *p; p++)
        n += *p == ',';
    return n;
}

static int p_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                     char **err) {
    const pgcat_aux *a = aux;
    (void)argc;
    (void)argv;
    (void)err;
    char *decl = sqlite3_mprintf("CREATE TABLE x(%s)", a->rel->columns);
    if (decl == NULL) return SQLITE_NOMEM;
    int rc = sqlite3_declare_vtab(db, decl);
    sqlite3_free(decl);
    if (rc != SQLITE_OK) return rc;
    pgcat_vtab *v = sqlite3_malloc(sizeof(*v));
    if (v == NULL) return SQLITE_NOMEM;
    memset(v, 0, sizeof(*v));
    v->s = a->s;
    v->rel = a->rel;
    v->ncols = count_columns(a->rel->columns);
    sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
    *out = &v->base;
    return SQLITE_OK;
}

static int p_disconnect(sqlite3_vtab *v) {
    sqlite3_free(v);
    return SQLITE_OK;
}

/* idxNum: 0 full scan, or 1 + the column whose equality is argv[0]. */
static int p_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
    const pgcat_vtab *v = (const pgcat_vtab *)vt;
    info->idxNum = 0;
    info->estimatedCost = 1000;
    info->estimatedRows = 1000;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (!c->usable || c->op != SQLITE_INDEX_CONSTRAINT_EQ || c->iColumn < 0 ||
            c->iColumn >= 64 || (v->rel->keys & (1ull << c->iColumn)) == 0)
            continue;
        info->aConstraintUsage[i].argvIndex = 1;
        info->aConstraintUsage[i].omit = 0; /* SQLite checks it again */
        info->idxNum = 1 + c->iColumn;
        info->estimatedCost = 10;
        info->estimatedRows = 4;
        break;
    }
    return SQLITE_OK;
}

static int p_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
    pgcat_cursor *c = sqlite3_malloc(sizeof(*c));
    if (c == NULL) return SQLITE_NOMEM;
    memset(c, 0, sizeof(*c));
    c->g.s = ((pgcat_vtab *)vt)->s;
    c->g.ncols = ((pgcat_vtab *)vt)->ncols;
    *out = &c->base;
    return SQLITE_OK;
}

static void gen_reset(pgcat_gen *g) {
    base_free(g->cells);
    base_buf_free(&g->text);
    g->cells = NULL;
    g->ncells = g->cap = 0;
    g->too_big = false;
}

static int p_close(sqlite3_vtab_cursor *cur) {
    pgcat_cursor *c = (pgcat_cursor *)cur;
    gen_reset(&c->g);
    sqlite3_free(c);
    return SQLITE_OK;
}

/* The OID an equality's value stands for (g->key): integers, and text or
** reals that are integers (psql writes c.oid = '16384'); NULL equals
** nothing (g->key_null); anything else prunes nothing (g->key_col -1:
** SQLite decides). */
static void key_of(sqlite3_value *v, pgcat_gen *g) {
    switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER: g->key = sqlite3_value_int64(v); return;
    case SQLITE_NULL: g->key_null = true; return;
    case SQLITE_FLOAT: {
        double d = sqlite3_value_double(v);
        if (d >= -9e18 && d <= 9e18 && d == (double)(int64_t)d) {
            g->key = (int64_t)d;
            return;
        }
        break;
    }
    case SQLITE_TEXT: {
        const char *p = (const char *)sqlite3_value_text(v);
        char *e;
        if (p != NULL && *p && !isspace((unsigned char)*p)) {
            long long x = strtoll(p, &e, 10);
            if (*e == 0) {
                g->key = x;
                return;
            }
        }
        break;
    }
    default: break;
    }
    g->key_col = -1; /* no pruning */
}

static int p_filter(sqlite3_vtab_cursor *cur, int idx, const char *idx_str, int argc,
                    sqlite3_value **argv) {
    pgcat_cursor *c = (pgcat_cursor *)cur;
    pgcat_vtab *v = (pgcat_vtab *)cur->pVtab;
    (void)idx_str;
    gen_reset(&c->g);
    c->row = c->nrows = 0;
    c->g.key_col = -1;
    c->g.key_null = false;
    if (idx > 0 && argc == 1) {
        c->g.key_col = idx - 1;
        key_of(argv[0], &c->g);
    }
    if (v->rel->fill != NULL && v->rel->fill(&c->g) != 0) {
        bool big = c->g.too_big;
        gen_reset(&c->g);
        if (v->s->err_sqlstate[0]) return SQLITE_ERROR; /* a read failed, or refused */
        if (big) {
            sqlv__session_error(v->s, "54000", "the catalog relation %s is too large to scan",
                                v->rel->name);
            return SQLITE_ERROR;
        }
        return SQLITE_NOMEM;
    }
    c->nrows = c->g.ncells / (size_t)c->g.ncols;
    return SQLITE_OK;
}

static int p_next(sqlite3_vtab_cursor *cur) {
    ((pgcat_cursor *)cur)->row++;
    return SQLITE_OK;
}

static int p_eof(sqlite3_vtab_cursor *cur) {
    const pgcat_cursor *c = (const pgcat_cursor *)cur;
    return c->row >= c->nrows;
}

static int p_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
    const pgcat_cursor *c = (const pgcat_cursor *)cur;
    if (c->row >= c->nrows || col < 0 || col >= c->g.ncols) {
        sqlite3_result_null(ctx);
        return SQLITE_OK;
    }
    const pgcell *x = &c->g.cells[c->row * (size_t)c->g.ncols + (size_t)col];
    switch (x->type) {
    case SQLITE_INTEGER: sqlite3_result_int64(ctx, x->i); break;
    case SQLITE_FLOAT: sqlite3_result_double(ctx, x->r); break;
    case SQLITE_TEXT:
        sqlite3_result_text(ctx, x->len ? (const char *)c->g.text.data + x->off : "", (int)x->len,
                            SQLITE_TRANSIENT);
        break;
    default: sqlite3_result_null(ctx); break;
    }
    return SQLITE_OK;
}

static int p_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid) {
    *rowid = (sqlite3_int64)((const pgcat_cursor *)cur)->row + 1;
    return SQLITE_OK;
}

static const sqlite3_module pgcat_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only: read-only, no CREATE VIRTUAL TABLE */
    .xConnect = p_connect,
    .xBestIndex = p_best_index,
    .xDisconnect = p_disconnect,
    .xDestroy = p_disconnect,
    .xOpen = p_open,
    .xClose = p_close,
    .xFilter = p_filter,
    .xNext = p_next,
    .xEof = p_eof,
    .xColumn = p_column,
    .xRowid = p_rowid,
};

int sqlv__pgcatalog_register_relations(sqlv_session *s) {
    for (size_t i = 0; i < BASE_ARRAY_LEN(rels); i++) {
        pgcat_aux *a = sqlite3_malloc(sizeof(*a));
        if (a == NULL) return -1;
        a->s = s;
        a->rel = &rels[i];
        /* on failure SQLite frees a itself (the destructor) */
        if (sqlite3_create_module_v2(s->db, rels[i].name, &pgcat_module, a, sqlite3_free) !=
            SQLITE_OK)
            return -1;
    }
    return 0;
}
