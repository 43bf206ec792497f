/*
** Privileges (issue 9, docs/security.md "Authorization"): GRANT and REVOKE
** of SELECT, INSERT, UPDATE, DELETE, TRUNCATE, DROP, REFERENCES, TRIGGER on tables,
** SELECT, INSERT, UPDATE, REFERENCES on columns, USAGE, SELECT, UPDATE on
** sequences and CREATE, DROP on the database, with their grantors and
** REVOKE ... CASCADE; SHOW GRANTS, pg_class.relacl and relowner, owners
** (OWNER TO of a sequence or a table), what a role holds (has_*_privilege),
** REASSIGN OWNED and DROP OWNED (its privilege part),
** and the per-session cache of the effective privileges that
** every check reads (format: sql_int.h, "privileges").
**
** Invariants:
**   - root and members of admin (directly or not) hold every privilege;
**     nobody else holds one that no row of theirs or of a role they are in
**     (transitively) gives. A table's creator holds its owner row.
**   - GRANT and REVOKE of a privilege on an object: admins, the table's
**     owner, or a holder of that privilege's grant option (WITH GRANT
**     OPTION, held like a privilege) on the object; nobody else (42501).
**     Only admins and the owner take an owner's rights away. A grant option
**     never outlives its privilege (REVOKE of a privilege clears both).
**   - every grant row names its grantor (owner rows excepted), and no grant
**     outlives the grant option its grantor made it with: a REVOKE that
**     would leave one fails (2BP01) unless CASCADE, which revokes it too.
**   - a table privilege covers its columns; a column privilege covers only
**     its column (a read, an update, an INSERT that names it).
**   - every GRANT/REVOKE of a privilege or of a role membership bumps the
**     catalog version in its own transaction, so a session's cache, tagged
**     with the catalog version it was read at, is stale exactly when a
**     newer privilege state may exist: it is read again (one scan) at the
**     first check of a transaction that sees a new version, never per
**     statement otherwise.
**   - a denied statement fails before it writes anything: checks run at
**     prepare time (SQLite's authorizer) or before the statement's first
**     write (DDL, cluster settings, range operations).
**   - privilege rows name tables (and their columns) and sequences by id:
**     ids are never reused, so a dropped object's rows can never apply to
**     another. A role a live object's row names is not dropped (users.c).
**   - ALTER and DROP SEQUENCE: admins, the sequence's owner (or its
**     table's, or a member of either) or the database's DROP; checked in
**     the statement's transaction before it writes (42501). OWNER TO moves
**     the owner row and the old owner's grants in one transaction (a
**     table's: with the sequences its columns own; the user in the old
**     owner and in the new, the new one may create tables, or an admin).
**   - REFERENCES, TRIGGER and TRUNCATE (0x10000, 0x20000, 0x40000) sit
**     above the grant options of the low byte; their own options are << 8
**     as every other. TRUNCATE is no DELETE: a row stored before it existed
**     never holds it (an owner does, by its owner bit).
**   - REASSIGN OWNED and DROP OWNED: admins, or a member of every role
**     named (and, for REASSIGN, of the new owner); root's objects stay
**     (2BP01, as PostgreSQL's bootstrap superuser's).
**   - every loop is bounded: SQLV__PRIVILEGES_MAX rows per scan,
**     SQLV__ROLE_NAMES_MAX names, PRIV_OBJECTS_MAX objects and
**     PRIV_COLUMNS_MAX columns per statement; the cascade only takes bits.
*/
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sql_int.h"
#include "sql_lex.h"

#define MOD "sql"
#define PRIV_FORMAT_VERSION 1 /* a row without a grantor (owner rows, and grants before 2) */
#define PRIV_FORMAT_GRANTOR 2 /* a row with its grantor (PostgreSQL's aclitem grantor) */
#define PRIV_RETRIES_MAX 10 /* an implicit GRANT/REVOKE, tried this often on 40001 */
#define PRIV_RETRY_PAUSE_US 2000
#define PRIV_OBJECT_BYTES_MAX 80
#define PRIV_OBJECTS_MAX 64 /* tables in one GRANT/REVOKE/SHOW GRANTS ON */
#define PRIV_COLUMNS_MAX 64 /* columns named in one GRANT/REVOKE */
#define PRIV_ALL_OBJECTS_MAX 100000 /* ON ALL TABLES/SEQUENCES IN SCHEMA */
#define PRIV_TOKENS_MAX 1000000 /* tokens of a CREATE TABLE searched for REFERENCES */
#define PRIV_COLUMN_BITS                                                                           \
    (SQLV__PRIV_SELECT | SQLV__PRIV_INSERT | SQLV__PRIV_UPDATE | SQLV__PRIV_REFERENCES)
#define PRIV_PUBLIC "public" /* the grantee every role is in (never a role's name) */

enum { STMT_OK = 0, STMT_FAILED = 1 };

/* One effective (object, bits) of the session's user. */
typedef struct priv_entry {
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    uint32_t bits;
} priv_entry;

/* The owner of one table or view (owner rows). */
typedef struct priv_owner {
    uint32_t id;
    char role[SQLV__NAME_BYTES_MAX + 1];
} priv_owner;

struct sqlv__priv_cache {
    bool valid;
    uint64_t version; /* the catalog version it was read at */
    bool admin;
    priv_entry *items; /* owner: this cache */
    int n;
    priv_owner *owners; /* every owner row's (id, role); owner: this cache */
    int nowners;
    /* A view's reads are checked against its owner's privileges: the
    ** last owner's, read at the same version (sqlv__priv_authorize_view). */
    struct sqlv__priv_cache *as_owner; /* owner: this cache */
    char as_role[SQLV__NAME_BYTES_MAX + 1];
};

/* ---- keys and records ------------------------------------------------------------ */

static void table_object(uint32_t id, char out[PRIV_OBJECT_BYTES_MAX + 1]) {
    snprintf(out, PRIV_OBJECT_BYTES_MAX + 1, "t:%u", id);
}

static void database_object(const char *name, char out[PRIV_OBJECT_BYTES_MAX + 1]) {
    snprintf(out, PRIV_OBJECT_BYTES_MAX + 1, "d:%.63s", name);
}

/* "c:<table id>:<column, lower case>"; -1 when the name does not fit. */
static int column_object(uint32_t id, const char *column, char out[PRIV_OBJECT_BYTES_MAX + 1]) {
    int n = snprintf(out, PRIV_OBJECT_BYTES_MAX + 1, "c:%u:%s", id, column);
    if (n < 0 || n > PRIV_OBJECT_BYTES_MAX) return -1;
    for (char *c = strchr(out + 2, ':') + 1; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    return 0;
}

/* Is object a column of the table object "t:<id>"? */
static bool column_of(const char *object, const char *table_object) {
    size_t n = strlen(table_object);
    return object[0] == 'c' && strncmp(object + 1, table_object + 1, n - 1) == 0 &&
           object[n] == ':';
}

/* The key of (object, grantee) and, when one is recorded, its grantor: a
** grantee holds one row per grantor, as PostgreSQL's aclitems. */
static int priv_key(base_buf *out, const char *object, const char *grantee, const char *grantor) {
    enc_value v;
    v.type = ENC_TEXT;
    base_buf_reset(out); /* a key per call, though the buffer is reused */
    if (enc_key_prefix(out, SQLV__PRIVILEGES_TABLE_ID, SQLV__ROW_INDEX_ID) != ENC_OK)
        return SQLV_ERR_NOMEM;
    const char *parts[3] = {object, grantee, grantor};
    for (int i = 0; i < (grantor[0] ? 3 : 2); i++) {
        v.u.bytes.data = (const uint8_t *)parts[i];
        v.u.bytes.len = strlen(parts[i]);
        if (enc_key_append(out, &v) != ENC_OK) return SQLV_ERR_NOMEM;
    }
    return 0;
}

typedef struct priv_row {
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    char grantee[SQLV__NAME_BYTES_MAX + 1];
    char grantor[SQLV__NAME_BYTES_MAX + 1]; /* "": an owner row, or a grant before format 2 */
    uint32_t bits;
} priv_row;

static int priv_encode(const priv_row *p, base_buf *out) {
    size_t ol = strlen(p->object), gl = strlen(p->grantee), rl = strlen(p->grantor);
    uint8_t hdr[5] = {rl ? PRIV_FORMAT_GRANTOR : PRIV_FORMAT_VERSION, (uint8_t)(p->bits >> 24),
                      (uint8_t)(p->bits >> 16), (uint8_t)(p->bits >> 8), (uint8_t)p->bits};
    uint8_t olen = (uint8_t)ol, glen = (uint8_t)gl, rlen = (uint8_t)rl;
    assert(ol <= PRIV_OBJECT_BYTES_MAX && gl <= SQLV__NAME_BYTES_MAX && rl <= SQLV__NAME_BYTES_MAX);
    base_buf_reset(out);
    if (base_buf_append(out, hdr, sizeof(hdr)) != 0 || base_buf_append(out, &olen, 1) != 0 ||
        base_buf_append(out, p->object, ol) != 0 || base_buf_append(out, &glen, 1) != 0 ||
        base_buf_append(out, p->grantee, gl) != 0 ||
        (rl && (base_buf_append(out, &rlen, 1) != 0 || base_buf_append(out, p->grantor, rl) != 0)))
        return SQLV_ERR_NOMEM;
    return 0;
}

/* Bytes from the disk: never trusted. 0, or -1 when malformed. */
static int priv_decode(const uint8_t *v, size_t n, priv_row *p) {
    memset(p, 0, sizeof(*p));
    if (n < 6 || (v[0] != PRIV_FORMAT_VERSION && v[0] != PRIV_FORMAT_GRANTOR)) return -1;
    p->bits = (uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 8 | v[4];
    size_t ol = v[5];
    if (ol == 0 || ol > PRIV_OBJECT_BYTES_MAX || n < 6 + ol + 1) return -1;
    size_t gl = v[6 + ol];
    if (gl == 0 || gl > SQLV__NAME_BYTES_MAX || n < 6 + ol + 1 + gl) return -1;
    if (memchr(v + 6, 0, ol) != NULL || memchr(v + 7 + ol, 0, gl) != NULL) return -1;
    size_t rest = n - (6 + ol + 1 + gl);
    if (v[0] == PRIV_FORMAT_VERSION ? rest != 0 : rest < 2) return -1;
    if (v[0] == PRIV_FORMAT_GRANTOR) {
        const uint8_t *r = v + 7 + ol + gl;
        size_t rl = r[0];
        if (rl == 0 || rl > SQLV__NAME_BYTES_MAX || rest != 1 + rl || memchr(r + 1, 0, rl) != NULL)
            return -1;
        memcpy(p->grantor, r + 1, rl);
    }
    memcpy(p->object, v + 6, ol);
    memcpy(p->grantee, v + 7 + ol, gl);
    return 0;
}

/* A row's bits with the owner's implicit rights spelled out: every table
** (and sequence) privilege and its grant option. */
static uint32_t expand_owner(uint32_t b) {
    uint32_t all = SQLV__PRIV_TABLE_ALL | SQLV__PRIV_USAGE;
    if (b & SQLV__PRIV_OWNER) b |= all | (all << SQLV__PRIV_GRANT_SHIFT);
    return b;
}

/* A growing list of privilege rows (rows_list). */
typedef struct priv_list {
    priv_row *rows; /* owner: the caller of rows_list */
    int n, cap;
} priv_list;

static int push_row(void *arg, const uint8_t *v, size_t n) {
    priv_list *l = arg;
    if (l->n == l->cap) {
        int ncap = l->cap ? l->cap * 2 : 16;
        priv_row *g = base_realloc(l->rows, sizeof(*l->rows) * (size_t)ncap);
        if (g == NULL) return SQLV_ERR_NOMEM;
        l->rows = g;
        l->cap = ncap;
    }
    if (priv_decode(v, n, &l->rows[l->n]) != 0) return -1;
    l->n++;
    return 0;
}

/* Every privilege row through kv. owner of *out: caller, base_free. */
static int rows_list(txn *kv, priv_row **out, int *n, txn_error *err) {
    priv_list l = {NULL, 0, 0};
    *out = NULL;
    *n = 0;
    int rc = sqlv__scan_system_table(kv, SQLV__PRIVILEGES_TABLE_ID, SQLV__PRIVILEGES_MAX,
                                     push_row, &l, "privilege", err);
    if (rc != TXN_OK) {
        base_free(l.rows);
        return rc;
    }
    *out = l.rows;
    *n = l.n;
    return TXN_OK;
}

/* ---- the session's cache ------------------------------------------------------ */

void sqlv__priv_cache_free(sqlv__priv_cache *c) {
    if (c == NULL) return;
    base_free(c->items);
    base_free(c->owners);
    sqlv__priv_cache_free(c->as_owner);
    base_free(c);
}

void sqlv__priv_invalidate(sqlv_session *s) {
    if (s->priv != NULL) s->priv->valid = false;
}

static bool is_root(const sqlv_session *s) { return strcmp(s->user, SQLV__ROLE_ROOT) == 0; }

/* Read user's effective privileges through kv into c (and the owners). */
static int cache_fill_for(const char *user, sqlv__priv_cache *c, txn *kv, txn_error *err) {
    sqlv__membership *members = NULL;
    priv_row *rows = NULL;
    int nm = 0, nr = 0;
    int rc = sqlv__memberships_list(kv, &members, &nm, err);
    if (rc != TXN_OK) return rc;
    rc = rows_list(kv, &rows, &nr, err);
    if (rc != TXN_OK) goto done;
    base_free(c->items);
    base_free(c->owners);
    c->items = NULL;
    c->owners = NULL;
    c->n = c->nowners = 0;
    c->admin = sqlv__role_in(members, nm, user, SQLV__ROLE_ADMIN);
    c->items = base_calloc((size_t)nr + 1, sizeof(*c->items));
    c->owners = base_calloc((size_t)nr + 1, sizeof(*c->owners));
    if (c->items == NULL || c->owners == NULL) {
        rc = TXN_ERR_NOMEM;
        txn_error_set(err, rc);
        goto done;
    }
    for (int i = 0; i < nr; i++) {
        unsigned id;
        char tail;
        if ((rows[i].bits & SQLV__PRIV_OWNER) &&
            sscanf(rows[i].object, "t:%u%c", &id, &tail) == 1) {
            c->owners[c->nowners].id = id;
            base_strlcpy(c->owners[c->nowners++].role, rows[i].grantee, SQLV__NAME_BYTES_MAX + 1);
        }
        if (strcmp(rows[i].grantee, PRIV_PUBLIC) != 0 &&
            !sqlv__role_in(members, nm, user, rows[i].grantee))
            continue;
        int j = 0;
        while (j < c->n && strcmp(c->items[j].object, rows[i].object) != 0)
            j++;
        if (j == c->n) {
            base_strlcpy(c->items[j].object, rows[i].object, sizeof(c->items[j].object));
            c->n++;
        }
        c->items[j].bits |= rows[i].bits;
    }
done:
    base_free(members);
    base_free(rows);
    return rc;
}

static int cache_fill(sqlv_session *s, sqlv__priv_cache *c, txn *kv, txn_error *err) {
    return cache_fill_for(s->user, c, kv, err);
}

/* cache_fill_for(user, c) through s->kv when the session has one, else
** through a read-only transaction of its own. TXN_OK or a txn error with
** err set. */
static int cache_fill_read(sqlv_session *s, const char *user, sqlv__priv_cache *c,
                           txn_error *err) {
    if (s->kv != NULL) return cache_fill_for(user, c, s->kv, err);
    txn_options o = {.read_only = true};
    txn *kv = NULL;
    int rc = txn_begin(s->engine->db, &o, &kv);
    if (rc != TXN_OK) {
        txn_error_set(err, rc);
        return rc;
    }
    rc = cache_fill_for(user, c, kv, err);
    txn_rollback(kv); /* read only: nothing to commit */
    return rc;
}

/* s->priv, current for s->cat->version: read through s->kv when there is
** one, else through a read-only transaction of its own (tagged with the
** older s->cat version: the next transaction that sees a newer one reads
** again). Without a transaction, a valid cache is used as it is unless
** fresh: a statement prepared then is prepared again once its transaction
** sees a newer catalog version (session.c), a DDL check is not. TXN_OK or a
** txn error with err set. */
static int cache_get(sqlv_session *s, sqlv__priv_cache **out, bool fresh, txn_error *err) {
    sqlv__priv_cache *c = s->priv;
    *out = NULL;
    if (c == NULL) {
        c = base_calloc(1, sizeof(*c)); /* owner: the session (s->priv) */
        if (c == NULL) {
            txn_error_set(err, TXN_ERR_NOMEM);
            return TXN_ERR_NOMEM;
        }
        s->priv = c;
    }
    if (c->valid && (s->kv == NULL ? !fresh : c->version == s->cat->version)) {
        *out = c;
        return TXN_OK;
    }
    c->valid = false;
    int rc = cache_fill_read(s, s->user, c, err);
    if (rc != TXN_OK) return rc;
    c->version = s->cat->version;
    c->valid = true;
    *out = c;
    return TXN_OK;
}

static uint32_t effective(const sqlv__priv_cache *c, const char *object) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->items[i].object, object) == 0) {
            return expand_owner(c->items[i].bits);
        }
    return 0;
}

/* Does the session's user hold every bit of want on object? 0 yes, 1 no,
** <0 a txn error (err set). */
static int holds(sqlv_session *s, const char *object, uint32_t want, bool fresh,
                 txn_error *err) {
    if (is_root(s)) return 0;
    sqlv__priv_cache *c;
    int rc = cache_get(s, &c, fresh, err);
    if (rc != TXN_OK) return rc;
    if (c->admin) return 0;
    return (effective(c, object) & want) == want ? 0 : 1;
}

static const char *priv_word(uint32_t bit) {
    switch (bit) {
    case SQLV__PRIV_SELECT: return "SELECT";
    case SQLV__PRIV_INSERT: return "INSERT";
    case SQLV__PRIV_UPDATE: return "UPDATE";
    case SQLV__PRIV_DELETE: return "DELETE";
    case SQLV__PRIV_CREATE: return "CREATE";
    case SQLV__PRIV_DROP: return "DROP";
    case SQLV__PRIV_USAGE: return "USAGE";
    case SQLV__PRIV_REFERENCES: return "REFERENCES";
    case SQLV__PRIV_TRIGGER: return "TRIGGER";
    case SQLV__PRIV_TRUNCATE: return "TRUNCATE";
    default: return "ALL";
    }
}

/* The statement SQLite prepares on this thread (sqlv__priv_statement). */
static _Thread_local const char *stmt_text;
static _Thread_local size_t stmt_len;

static _Thread_local const char *insert_text; /* sqlv__priv_insert_text */
static _Thread_local size_t insert_len;

void sqlv__priv_statement(const char *text, size_t len) {
    stmt_text = text;
    stmt_len = len;
}

void sqlv__priv_insert_text(const char *text, size_t len) {
    insert_text = text;
    insert_len = len;
}

/* Does some column of table id hold every bit of want? */
static bool any_column_holds(const sqlv__priv_cache *c, const char *table_object,
                             uint32_t want) {
    for (int i = 0; i < c->n; i++)
        if (column_of(c->items[i].object, table_object) && (c->items[i].bits & want) == want)
            return true;
    return false;
}

static bool column_holds(const sqlv__priv_cache *c, uint32_t id, const char *column,
                         uint32_t want) {
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    if (column_object(id, column, object) != 0) return false;
    return (effective(c, object) & want) == want;
}

/* INSERT without the table's privilege: the columns the statement names
** (INSERT INTO t [AS a] (c, ...)) each need theirs; without a list (or
** without the text), every column of the table. */
static bool insert_columns_held(sqlv_session *s, const sqlv__priv_cache *c, const char *table,
                                uint32_t id) {
    const char *text = insert_text != NULL ? insert_text : stmt_text;
    if (text != NULL) {
        const char *p = text, *end = text + (insert_text != NULL ? insert_len : stmt_len);
        char name[SQLV__NAME_BYTES_MAX * 4 + 1];
        sqlv__token t = sqlv__lex_next(&p, end);
        for (int guard = 0; guard < 4096 && t.kind != SQLV__TOK_END; guard++) {
            if (sqlv__tok_is(&t, "INTO")) break;
            t = sqlv__lex_next(&p, end);
        }
        t = sqlv__lex_next(&p, end);
        bool ours = sqlv__tok_ident(&t, name, sizeof(name)) == 0;
        t = sqlv__lex_next(&p, end);
        if (ours && sqlv__tok_punct(&t, '.')) { /* public.t */
            t = sqlv__lex_next(&p, end);
            ours = sqlv__tok_ident(&t, name, sizeof(name)) == 0;
            t = sqlv__lex_next(&p, end);
        }
        ours = ours && sqlite3_stricmp(name, table) == 0;
        if (ours && sqlv__tok_is(&t, "AS")) {
            t = sqlv__lex_next(&p, end);
            t = sqlv__lex_next(&p, end);
        }
        if (ours && sqlv__tok_punct(&t, '(')) {
            int n = 0;
            for (int guard = 0; guard < SQLV__COLUMNS_MAX; guard++) {
                t = sqlv__lex_next(&p, end);
                if (sqlv__tok_ident(&t, name, sizeof(name)) != 0) break;
                if (!column_holds(c, id, name, SQLV__PRIV_INSERT)) return false;
                n++;
                t = sqlv__lex_next(&p, end);
                if (sqlv__tok_punct(&t, ')')) return n > 0;
                if (!sqlv__tok_punct(&t, ',')) break;
            }
            /* not a column list after all (INSERT ... SELECT in parentheses): every column */
        }
    }
    const sqlv__table *tt = sqlv__session_find_table(s, table);
    if (tt == NULL || tt->ncols == 0) return false;
    for (int i = 0; i < tt->ncols; i++)
        if (!column_holds(c, id, tt->cols[i].name, SQLV__PRIV_INSERT)) return false;
    return true;
}

int sqlv__priv_authorize(sqlv_session *s, const char *table, const char *column, uint32_t want) {
    if (table == NULL || is_root(s)) return SQLITE_OK;
    uint32_t id = sqlv__session_find_id(s, table);
    if (id == 0) return SQLITE_OK; /* a system catalog or no table: everyone reads them */
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    table_object(id, object);
    txn_error err = {{0}, {0}};
    sqlv__priv_cache *c;
    int rc = cache_get(s, &c, false, &err);
    if (rc == TXN_OK) {
        if (c->admin || (effective(c, object) & want) == want) return SQLITE_OK;
        /* column privileges (PostgreSQL's attacl): SELECT, INSERT, UPDATE */
        if (want == SQLV__PRIV_INSERT && insert_columns_held(s, c, table, id)) return SQLITE_OK;
        if (column != NULL && want != SQLV__PRIV_DELETE &&
            (column[0] ? column_holds(c, id, column, want) : any_column_holds(c, object, want)))
            return SQLITE_OK;
        sqlv__session_error(s, "42501", "permission denied for table %s", table);
    } else {
        txn_error_set(&err, rc);
        sqlv__session_error(s, err.sqlstate[0] ? err.sqlstate : "XX000", "%s", err.message);
    }
    return SQLITE_DENY;
}

/* The privileges of role (the owner of a view) at the version of the
** session's cache c: c->as_owner, read again when it is another role's or
** older. TXN_OK or a txn error with err set. */
static int owner_cache(sqlv_session *s, sqlv__priv_cache *c, const char *role,
                       sqlv__priv_cache **out, txn_error *err) {
    sqlv__priv_cache *o = c->as_owner;
    if (o != NULL && o->valid && o->version == c->version && strcmp(c->as_role, role) == 0) {
        *out = o;
        return TXN_OK;
    }
    if (o == NULL && (o = c->as_owner = base_calloc(1, sizeof(*o))) == NULL) {
        txn_error_set(err, TXN_ERR_NOMEM);
        return TXN_ERR_NOMEM;
    }
    o->valid = false;
    int rc = cache_fill_read(s, role, o, err);
    if (rc != TXN_OK) return rc;
    base_strlcpy(c->as_role, role, sizeof(c->as_role));
    o->version = c->version;
    o->valid = true;
    *out = o;
    return TXN_OK;
}

int sqlv__priv_authorize_view(sqlv_session *s, const char *view, const char *table,
                              const char *column) {
    if (table == NULL) return SQLITE_OK;
    uint32_t id = sqlv__session_find_id(s, table);
    if (id == 0) return SQLITE_OK; /* a system catalog: everyone reads them */
    uint32_t vid = sqlv__session_find_id(s, view);
    txn_error err = {{0}, {0}};
    sqlv__priv_cache *c, *o;
    int rc = cache_get(s, &c, false, &err);
    if (rc != TXN_OK) goto txn_failed;
    const char *owner = NULL;
    for (int i = 0; i < c->nowners && vid != 0; i++)
        if (c->owners[i].id == vid) owner = c->owners[i].role;
    if (owner == NULL) return SQLITE_OK; /* root's or an admin's view: every privilege */
    if (strcmp(owner, s->user) == 0) return sqlv__priv_authorize(s, table, column,
                                                                 SQLV__PRIV_SELECT);
    char role[SQLV__NAME_BYTES_MAX + 1], object[PRIV_OBJECT_BYTES_MAX + 1];
    base_strlcpy(role, owner, sizeof(role)); /* owner points into c, which a fill replaces */
    rc = owner_cache(s, c, role, &o, &err);
    if (rc != TXN_OK) goto txn_failed;
    table_object(id, object);
    if (o->admin || (effective(o, object) & SQLV__PRIV_SELECT) ||
        (column != NULL && (column[0] ? column_holds(o, id, column, SQLV__PRIV_SELECT)
                                      : any_column_holds(o, object, SQLV__PRIV_SELECT))))
        return SQLITE_OK;
    sqlv__session_error(s, "42501", "permission denied for table %s", table);
    return SQLITE_DENY;
txn_failed:
    txn_error_set(&err, rc);
    sqlv__session_error(s, err.sqlstate[0] ? err.sqlstate : "XX000", "%s", err.message);
    return SQLITE_DENY;
}

/* Does the statement being prepared name table (any identifier token
** equal to it)? true also when the text is unknown: the strict answer. */
static bool named_in_statement(const char *table) {
    if (stmt_text == NULL) return true;
    const char *p = stmt_text, *end = stmt_text + stmt_len;
    char name[SQLV__NAME_BYTES_MAX * 4 + 1];
    for (size_t guard = 0; guard <= stmt_len; guard++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        if (sqlv__tok_ident(&t, name, sizeof(name)) == 0 && sqlite3_stricmp(name, table) == 0)
            return true;
    }
    return false;
}

int sqlv__priv_authorize_no_columns(sqlv_session *s, const char *table) {
    if (named_in_statement(table)) return sqlv__priv_authorize(s, table, "", SQLV__PRIV_SELECT);
    /* reached through a view SQLite flattened: the invoker's SELECT on every
    ** view the statement names (their owners' were checked at CREATE) */
    const char *p = stmt_text, *end = stmt_text + stmt_len;
    char name[SQLV__NAME_BYTES_MAX * 4 + 1];
    for (size_t guard = 0; guard <= stmt_len; guard++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        if (sqlv__tok_ident(&t, name, sizeof(name)) != 0) continue;
        const sqlv__table *v = sqlv__session_find_table(s, name);
        if (v != NULL && v->is_view &&
            sqlv__priv_authorize(s, name, "", SQLV__PRIV_SELECT) != SQLITE_OK)
            return SQLITE_DENY;
    }
    return SQLITE_OK;
}

/* Without a transaction, the table's id and the privileges are read
** afresh in a read-only transaction of their own: s->cat may be older than
** the table. */
int sqlv__priv_require_table(sqlv__run *r, const char *table, uint32_t want) {
    sqlv_session *s = r->s;
    char object[PRIV_OBJECT_BYTES_MAX + 1], msg[160];
    txn_error err = {{0}, {0}};
    txn *own = NULL;
    sqlv__catalog *cat = NULL;
    uint32_t id = 0;
    int rc = TXN_OK;
    if (is_root(s)) return STMT_OK;
    if (s->kv != NULL) {
        id = sqlv__session_find_id(s, table);
    } else {
        txn_options o = {.read_only = true};
        if ((rc = txn_begin(s->engine->db, &o, &own)) != TXN_OK) {
            own = NULL;
            goto done;
        }
        cat = sqlv__engine_catalog(s->engine);
        if ((rc = sqlv__engine_catalog_at(s->engine, own, &cat, &err)) != TXN_OK) goto done;
        const sqlv__table *t = sqlv__catalog_find(cat, table);
        id = t ? t->id : 0;
        if (s->priv != NULL) s->priv->valid = false;
        if (s->priv == NULL && (s->priv = base_calloc(1, sizeof(*s->priv))) == NULL) {
            rc = TXN_ERR_NOMEM;
            txn_error_set(&err, rc);
            goto done;
        }
        if ((rc = cache_fill(s, s->priv, own, &err)) != TXN_OK) goto done;
        s->priv->version = s->cat->version; /* as cache_get tags it */
        s->priv->valid = true;
    }
    if (id == 0) goto done; /* the statement reports 42P01 itself */
    table_object(id, object);
    rc = holds(s, object, want, false, &err);
    if (rc == 1 && want == SQLV__PRIV_DROP) { /* the database's DROP will do too */
        database_object(s->database, object);
        rc = holds(s, object, SQLV__PRIV_DROP, false, &err);
    }
done:
    if (own != NULL) txn_rollback(own); /* read only: nothing to commit */
    sqlv__catalog_unref(cat);
    if (rc < 0) return sqlv__fail_txn(r, rc, &err);
    if (rc == 0) return STMT_OK;
    snprintf(msg, sizeof(msg), "permission denied for table %.63s", table);
    return sqlv__fail(r, "42501", msg);
}

/* Does the user hold REFERENCES on table id, or on each of its columns
** cols (none: its primary key's, PostgreSQL's default target; -1: more
** than a statement may name, the table's privilege only)? */
static bool references_held(sqlv_session *s, const sqlv__priv_cache *c, const sqlv__table *t,
                            char (*cols)[SQLV__NAME_BYTES_MAX * 4 + 1], int ncols) {
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    table_object(t->id, object);
    if (is_root(s) || c->admin || (effective(c, object) & SQLV__PRIV_REFERENCES)) return true;
    if (ncols < 0 || (ncols == 0 && t->npk == 0)) return false;
    for (int i = 0; i < (ncols > 0 ? ncols : t->npk); i++)
        if (!column_holds(c, t->id, ncols > 0 ? cols[i] : t->cols[t->pk[i]].name,
                          SQLV__PRIV_REFERENCES))
            return false;
    return true;
}

int sqlv__priv_require_references(sqlv__run *r, const char *text, size_t len) {
    sqlv_session *s = r->s;
    char name[SQLV__NAME_BYTES_MAX * 4 + 1], msg[160];
    char cols[PRIV_COLUMNS_MAX][SQLV__NAME_BYTES_MAX * 4 + 1];
    const char *p = text, *end = text + len;
    txn_error err = {{0}, {0}};
    txn *own = NULL;
    sqlv__catalog *cat = NULL;
    int rc = TXN_OK, ncols = 0;
    bool denied = false;
    if (is_root(s)) return STMT_OK;
    sqlv__token t = sqlv__lex_next(&p, end);
    for (int guard = 0; guard < PRIV_TOKENS_MAX && t.kind != SQLV__TOK_END; guard++) {
        if (!sqlv__tok_is(&t, "REFERENCES")) {
            t = sqlv__lex_next(&p, end);
            continue;
        }
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_ident(&t, name, sizeof(name)) != 0) break; /* SQLite reports it */
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_punct(&t, '.')) { /* public.t */
            t = sqlv__lex_next(&p, end);
            if (sqlv__tok_ident(&t, name, sizeof(name)) != 0) break;
            t = sqlv__lex_next(&p, end);
        }
        ncols = 0;
        if (sqlv__tok_punct(&t, '(')) {
            for (t = sqlv__lex_next(&p, end);
                 ncols < PRIV_COLUMNS_MAX && sqlv__tok_ident(&t, cols[ncols], sizeof(cols[0])) == 0;
                 t = sqlv__lex_next(&p, end)) {
                ncols++;
                t = sqlv__lex_next(&p, end);
                if (!sqlv__tok_punct(&t, ',')) break;
            }
            if (ncols == PRIV_COLUMNS_MAX && !sqlv__tok_punct(&t, ')')) ncols = -1;
        }
        /* the privileges and the table as they are now (s->cat may be older
        ** without a transaction), as sqlv__priv_require_table reads them */
        const sqlv__table *tt = NULL;
        sqlv__priv_cache *c = NULL;
        if (s->kv != NULL) {
            tt = sqlv__session_find_table(s, name);
            rc = cache_get(s, &c, false, &err);
        } else {
            if (own == NULL) {
                txn_options o = {.read_only = true};
                if ((rc = txn_begin(s->engine->db, &o, &own)) != TXN_OK) {
                    own = NULL;
                    break;
                }
                cat = sqlv__engine_catalog(s->engine);
                if ((rc = sqlv__engine_catalog_at(s->engine, own, &cat, &err)) != TXN_OK) break;
                if (s->priv == NULL && (s->priv = base_calloc(1, sizeof(*s->priv))) == NULL) {
                    rc = TXN_ERR_NOMEM;
                    txn_error_set(&err, rc);
                    break;
                }
                if ((rc = cache_fill(s, s->priv, own, &err)) != TXN_OK) break;
                s->priv->version = s->cat->version; /* as cache_get tags it */
                s->priv->valid = true;
            }
            tt = sqlv__catalog_find(cat, name);
            c = s->priv;
        }
        if (rc != TXN_OK) break;
        /* a table that does not exist (or the one being created) passes */
        if (tt != NULL && !references_held(s, c, tt, cols, ncols)) {
            denied = true;
            break;
        }
    }
    if (own != NULL) txn_rollback(own); /* read only: nothing to commit */
    sqlv__catalog_unref(cat);
    if (rc != TXN_OK) return sqlv__fail_txn(r, rc, &err);
    if (!denied) return STMT_OK;
    snprintf(msg, sizeof(msg), "permission denied for table %.63s", name);
    return sqlv__fail(r, "42501", msg);
}

/* The sequence name (or id) as the session sees it: *d, or d->id == 0 when
** there is none. TXN_OK or a txn error (err set). */
static int sequence_find(sqlv_session *s, const char *name, uint32_t id, sqlv__seq_def *d,
                         txn_error *err) {
    bool found = false;
    memset(d, 0, sizeof(*d));
    int rc = sqlv__seq_lookup(s, name[0] ? name : NULL, id, d, &found);
    if (rc != TXN_OK) {
        txn_error_set(err, rc);
        return rc;
    }
    if (!found) d->id = 0;
    return TXN_OK;
}

/* Does the user hold one bit of any_of on sequence d: a privilege, its
** ownership, or the ownership of the table that owns it (SERIAL,
** IDENTITY: the table's owner owns its sequences)? */
static bool sequence_held(sqlv_session *s, const sqlv__priv_cache *c, const sqlv__seq_def *d,
                          uint32_t any_of) {
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    table_object(d->id, object);
    if ((effective(c, object) & any_of) != 0) return true;
    uint32_t table = d->owner_table[0] ? sqlv__session_find_id(s, d->owner_table) : 0;
    if (table == 0) return false;
    table_object(table, object);
    return (effective(c, object) & SQLV__PRIV_OWNER) != 0;
}

int sqlv__priv_sequence(sqlv_session *s, const char *name, uint32_t id, uint32_t any_of) {
    if (is_root(s)) return 0;
    txn_error err = {{0}, {0}};
    sqlv__priv_cache *c;
    sqlv__seq_def d;
    int rc = cache_get(s, &c, false, &err);
    if (rc == TXN_OK && c->admin) return 0;
    if (rc == TXN_OK) rc = sequence_find(s, name, id, &d, &err);
    if (rc != TXN_OK) {
        sqlv__session_error(s, err.sqlstate[0] ? err.sqlstate : "XX000", "%s", err.message);
        return 1;
    }
    if (d.id == 0 || sequence_held(s, c, &d, any_of)) return 0;
    sqlv__session_error(s, "42501", "permission denied for sequence %s", d.name);
    return 1;
}

int sqlv__priv_require_database(sqlv__run *r, uint32_t want) {
    sqlv_session *s = r->s;
    char object[PRIV_OBJECT_BYTES_MAX + 1], msg[160];
    database_object(s->database, object);
    txn_error err = {{0}, {0}};
    int rc = holds(s, object, want, true, &err);
    if (rc < 0) return sqlv__fail_txn(r, rc, &err);
    if (rc == 0) return STMT_OK;
    snprintf(msg, sizeof(msg), "permission denied for database %.63s (%s)", s->database,
             priv_word(want));
    return sqlv__fail(r, "42501", msg);
}

int sqlv__priv_require_admin(sqlv__run *r, const char *what) {
    sqlv_session *s = r->s;
    char msg[200];
    if (is_root(s)) return STMT_OK;
    sqlv__priv_cache *c;
    txn_error err = {{0}, {0}};
    int rc = cache_get(s, &c, true, &err);
    if (rc != TXN_OK) return sqlv__fail_txn(r, rc, &err);
    if (c->admin) return STMT_OK;
    snprintf(msg, sizeof(msg), "permission denied to %.100s: only root and members of admin may",
             what);
    return sqlv__fail(r, "42501", msg);
}

/* The owner row of table id for the session's user (not for root and
** admins: they hold everything anyway). Through kv; TXN_OK or an error. */
static int put_owner(sqlv_session *s, txn *kv, uint32_t id, txn_error *err) {
    priv_row p;
    base_buf key = {0}, val = {0};
    memset(&p, 0, sizeof(p));
    table_object(id, p.object);
    base_strlcpy(p.grantee, s->user, sizeof(p.grantee));
    p.bits = SQLV__PRIV_OWNER;
    int rc = TXN_ERR_NOMEM;
    if (priv_key(&key, p.object, p.grantee, p.grantor) == 0 && priv_encode(&p, &val) == 0)
        rc = txn_put(kv, key.data, key.len, val.data, val.len, err);
    else
        txn_error_set(err, rc);
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

void sqlv__priv_record_owner_id(sqlv_session *s, uint32_t id) {
    if (is_root(s)) return;
    txn_error err = {{0}, {0}};
    sqlv__priv_cache *c;
    if (cache_get(s, &c, false, &err) == TXN_OK && c->admin) return;
    int rc = TXN_OK;
    if (s->kv != NULL) { /* in the block's transaction: commits or rolls back with it */
        rc = put_owner(s, s->kv, id, &err);
    } else {
        for (int attempt = 0; attempt < PRIV_RETRIES_MAX; attempt++) {
            txn *kv = NULL;
            memset(&err, 0, sizeof(err));
            if ((rc = txn_begin(s->engine->db, NULL, &kv)) != TXN_OK) break;
            rc = put_owner(s, kv, id, &err);
            if (rc == TXN_OK) rc = sqlv__catalog_bump_version(kv, &err);
            if (rc == TXN_OK) rc = txn_commit(kv, NULL, &err); /* frees kv */
            else txn_rollback(kv);
            if (rc != TXN_ERR_RETRY) break;
        }
    }
    if (rc != TXN_OK) BASE_WARN(MOD, "cannot record the owner of object %u: %s", id, err.message);
    sqlv__priv_invalidate(s);
}

void sqlv__priv_record_owner(sqlv_session *s, const char *table) {
    if (is_root(s)) return;
    txn_error err = {{0}, {0}};
    sqlv__priv_cache *c;
    if (cache_get(s, &c, false, &err) == TXN_OK && c->admin) return;
    if (s->kv != NULL) { /* in the block's transaction: commits or rolls back with it */
        uint32_t id = sqlv__session_find_id(s, table);
        if (id != 0 && put_owner(s, s->kv, id, &err) == TXN_OK) {
            sqlv__priv_invalidate(s);
            return;
        }
        BASE_WARN(MOD, "cannot record the owner of table %s: %s", table, err.message);
        return;
    }
    /* An implicit CREATE committed in its own transaction: the owner row in
    ** one of its own (best effort; without it the creator holds only what
    ** was granted). */
    for (int attempt = 0; attempt < PRIV_RETRIES_MAX; attempt++) {
        txn *kv = NULL;
        sqlv__catalog *cat = sqlv__engine_catalog(s->engine);
        memset(&err, 0, sizeof(err));
        int rc = txn_begin(s->engine->db, NULL, &kv);
        if (rc == TXN_OK) rc = sqlv__engine_catalog_at(s->engine, kv, &cat, &err);
        const sqlv__table *t = rc == TXN_OK ? sqlv__catalog_find(cat, table) : NULL;
        uint32_t id = t != NULL ? t->id : 0;
        if (rc == TXN_OK && id != 0) rc = put_owner(s, kv, id, &err);
        if (rc == TXN_OK && id != 0) rc = sqlv__catalog_bump_version(kv, &err);
        if (rc == TXN_OK && id != 0) {
            rc = txn_commit(kv, NULL, &err); /* frees kv */
            kv = NULL;
        }
        if (kv != NULL) txn_rollback(kv);
        sqlv__catalog_unref(cat);
        if (rc != TXN_ERR_RETRY) {
            if (rc != TXN_OK)
                BASE_WARN(MOD, "cannot record the owner of table %s: %s", table, err.message);
            sqlv__priv_invalidate(s);
            return;
        }
    }
}

int sqlv__priv_move_table(txn *kv, uint32_t old_id, uint32_t new_id, txn_error *err) {
    char object[PRIV_OBJECT_BYTES_MAX + 1], moved[PRIV_OBJECT_BYTES_MAX + 1];
    priv_row *rows = NULL;
    base_buf key = {0}, val = {0};
    int n = 0, rc = rows_list(kv, &rows, &n, err);
    table_object(old_id, object);
    size_t object_len = strlen(object); /* "c:<old id>" is as long */
    for (int i = 0; i < n && rc == TXN_OK; i++) {
        priv_row *p = &rows[i];
        bool column = column_of(p->object, object);
        if (!column && strcmp(p->object, object) != 0) continue;
        rc = TXN_ERR_NOMEM;
        if (priv_key(&key, p->object, p->grantee, p->grantor) != 0) break;
        if ((rc = txn_delete(kv, key.data, key.len, err)) != TXN_OK) break;
        if (column) {
            if (column_object(new_id, p->object + object_len + 1, moved) != 0) {
                rc = TXN_ERR_LIMIT; /* the longer id leaves the name no room */
                break;
            }
        } else {
            table_object(new_id, moved);
        }
        base_strlcpy(p->object, moved, sizeof(p->object));
        rc = TXN_ERR_NOMEM;
        if (priv_key(&key, p->object, p->grantee, p->grantor) != 0 || priv_encode(p, &val) != 0)
            break;
        rc = txn_put(kv, key.data, key.len, val.data, val.len, err);
    }
    if (rc == TXN_ERR_NOMEM || rc == TXN_ERR_LIMIT) txn_error_set(err, rc);
    base_free(rows);
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

/* ---- GRANT / REVOKE ---------------------------------------------------------------- */

typedef struct priv_column {
    char name[SQLV__NAME_BYTES_MAX * 4 + 1]; /* as written */
    uint32_t bits;                           /* the privileges named with it */
} priv_column;

typedef struct priv_op {
    bool grant;
    bool grant_option; /* GRANT ... WITH GRANT OPTION; REVOKE GRANT OPTION FOR ... */
    bool cascade;      /* REVOKE ... CASCADE: the grants that depend on it too */
    bool on_database;
    bool on_sequence;  /* ON SEQUENCE s, ON ALL SEQUENCES IN SCHEMA public */
    bool all_in_schema; /* ON ALL {TABLES | SEQUENCES} IN SCHEMA public */
    uint32_t bits;      /* on the objects themselves */
    char objects[PRIV_OBJECTS_MAX][SQLV__NAME_BYTES_MAX * 4 + 1]; /* as written */
    int nobjects;
    priv_column columns[PRIV_COLUMNS_MAX]; /* GRANT SELECT (a, b) ON t: per column */
    int ncolumns;
    char roles[SQLV__ROLE_NAMES_MAX][SQLV__NAME_BYTES_MAX + 1];
    int nroles;
    char state[6];
    char msg[256];
} priv_op;

static int op_error(priv_op *o, const char *state, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int op_error(priv_op *o, const char *state, const char *fmt, ...) {
    va_list ap;
    base_strlcpy(o->state, state, sizeof(o->state));
    va_start(ap, fmt);
    vsnprintf(o->msg, sizeof(o->msg), fmt, ap);
    va_end(ap);
    return -1;
}

static int syntax(priv_op *o, const sqlv__token *t) {
    if (t->kind == SQLV__TOK_END) return op_error(o, "42601", "syntax error at end of input");
    return op_error(o, "42601", "syntax error at or near \"%.*s\"", (int)BASE_MIN(t->len, 60),
                    t->start);
}

static uint32_t priv_bit(const sqlv__token *t) {
    static const struct {
        const char *word;
        uint32_t bit;
    } words[] = {{"SELECT", SQLV__PRIV_SELECT}, {"INSERT", SQLV__PRIV_INSERT},
                 {"UPDATE", SQLV__PRIV_UPDATE}, {"DELETE", SQLV__PRIV_DELETE},
                 {"CREATE", SQLV__PRIV_CREATE}, {"DROP", SQLV__PRIV_DROP},
                 {"USAGE", SQLV__PRIV_USAGE},   {"REFERENCES", SQLV__PRIV_REFERENCES},
                 {"TRIGGER", SQLV__PRIV_TRIGGER}, {"TRUNCATE", SQLV__PRIV_TRUNCATE}};
    for (size_t i = 0; i < BASE_ARRAY_LEN(words); i++)
        if (sqlv__tok_is(t, words[i].word)) return words[i].bit;
    return 0;
}

/* A role name: an identifier, folded to lower case unless quoted. */
static int role_word(priv_op *o, const sqlv__token *t, char *out) {
    char buf[SQLV__NAME_BYTES_MAX * 4 + 2];
    if (sqlv__tok_ident(t, buf, sizeof(buf)) != 0 || strlen(buf) > SQLV__NAME_BYTES_MAX)
        return syntax(o, t);
    if (t->kind == SQLV__TOK_WORD)
        for (char *c = buf; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    memcpy(out, buf, strlen(buf) + 1);
    return 0;
}

/* "(a, b, ...)" after a privilege: each column gets bit. t is the "(";
** on return the token after ")". 0 or -1 (o->state set). */
static int parse_columns(priv_op *o, sqlv__token *t, const char **p, const char *end,
                         uint32_t bit) {
    for (;;) {
        char name[SQLV__NAME_BYTES_MAX * 4 + 1];
        *t = sqlv__lex_next(p, end);
        if (sqlv__tok_ident(t, name, sizeof(name)) != 0) return syntax(o, t);
        if (t->kind == SQLV__TOK_WORD)
            for (char *c = name; *c; c++)
                if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
        int i = 0;
        while (i < o->ncolumns && strcmp(o->columns[i].name, name) != 0)
            i++;
        if (i == o->ncolumns) {
            if (o->ncolumns == PRIV_COLUMNS_MAX)
                return op_error(o, "54000", "too many columns in one statement (maximum %d)",
                                PRIV_COLUMNS_MAX);
            base_strlcpy(o->columns[i].name, name, sizeof(o->columns[i].name));
            o->ncolumns++;
        }
        o->columns[i].bits |= bit;
        *t = sqlv__lex_next(p, end);
        if (sqlv__tok_punct(t, ')')) break;
        if (!sqlv__tok_punct(t, ',')) return syntax(o, t);
    }
    *t = sqlv__lex_next(p, end);
    return 0;
}

/* GRANT {ALL [PRIVILEGES] [(col, ...)] | priv [(col, ...)][, ...]} ON
** {[TABLE] t[, ...] | DATABASE d | SEQUENCE s[, ...] | ALL {TABLES |
** SEQUENCES} IN SCHEMA public} TO role[, ...] [WITH GRANT OPTION];
** REVOKE [GRANT OPTION FOR] ... FROM ... [CASCADE | RESTRICT]. 0 or -1
** (o->state set). */
static int parse_grant(priv_op *o, const char *p, const char *end) {
    sqlv__token t = sqlv__lex_next(&p, end);
    o->grant = sqlv__tok_is(&t, "GRANT");
    t = sqlv__lex_next(&p, end);
    if (!o->grant && sqlv__tok_is(&t, "GRANT")) { /* REVOKE GRANT OPTION FOR */
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "OPTION")) return syntax(o, &t);
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "FOR")) return syntax(o, &t);
        t = sqlv__lex_next(&p, end);
        o->grant_option = true;
    }
    bool all = false;
    if (sqlv__tok_is(&t, "ALL")) {
        all = true;
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&t, "PRIVILEGES")) t = sqlv__lex_next(&p, end);
        if (sqlv__tok_punct(&t, '(')) {
            if (parse_columns(o, &t, &p, end, PRIV_COLUMN_BITS) != 0) return -1;
            all = false;
        }
    } else {
        for (int guard = 0; guard < 16; guard++) {
            uint32_t b = priv_bit(&t);
            if (b == 0) {
                if (t.kind == SQLV__TOK_WORD)
                    return op_error(o, "0LP01", "unrecognized privilege type \"%.*s\"",
                                    (int)BASE_MIN(t.len, 40), t.start);
                return syntax(o, &t);
            }
            t = sqlv__lex_next(&p, end);
            if (sqlv__tok_punct(&t, '(')) {
                if ((b & PRIV_COLUMN_BITS) == 0)
                    return op_error(o, "0LP01", "invalid privilege type %s for column",
                                    priv_word(b));
                if (parse_columns(o, &t, &p, end, b) != 0) return -1;
            } else {
                o->bits |= b;
            }
            if (!sqlv__tok_punct(&t, ',')) break;
            t = sqlv__lex_next(&p, end);
        }
    }
    if (!sqlv__tok_is(&t, "ON")) return syntax(o, &t);
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "DATABASE")) {
        o->on_database = true;
        t = sqlv__lex_next(&p, end);
    } else if (sqlv__tok_is(&t, "TABLE")) {
        t = sqlv__lex_next(&p, end);
    } else if (sqlv__tok_is(&t, "SEQUENCE")) {
        o->on_sequence = true;
        t = sqlv__lex_next(&p, end);
    } else if (sqlv__tok_is(&t, "ALL")) {
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&t, "SEQUENCES")) o->on_sequence = true;
        else if (!sqlv__tok_is(&t, "TABLES")) return syntax(o, &t);
        o->all_in_schema = true;
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "IN")) return syntax(o, &t);
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "SCHEMA")) return syntax(o, &t);
        t = sqlv__lex_next(&p, end);
    } else if (sqlv__tok_is(&t, "SCHEMA") || sqlv__tok_is(&t, "FUNCTION") ||
               sqlv__tok_is(&t, "TYPE")) {
        return op_error(o, "0A000", "privileges on %.*s objects are not supported yet",
                        (int)t.len, t.start);
    }
    for (;;) {
        if (o->nobjects == PRIV_OBJECTS_MAX)
            return op_error(o, "54000", "too many objects in one statement (maximum %d)",
                            PRIV_OBJECTS_MAX);
        if (sqlv__tok_ident(&t, o->objects[o->nobjects], sizeof(o->objects[0])) != 0)
            return syntax(o, &t);
        o->nobjects++;
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_punct(&t, '.'))
            return op_error(o, "0A000", "schema-qualified table names are not supported yet");
        if (o->all_in_schema || !sqlv__tok_punct(&t, ',')) break;
        t = sqlv__lex_next(&p, end);
    }
    if (o->all_in_schema && sqlite3_stricmp(o->objects[0], "public") != 0)
        return op_error(o, "3F000", "schema \"%.63s\" does not exist", o->objects[0]);
    if (!sqlv__tok_is(&t, o->grant ? "TO" : "FROM")) return syntax(o, &t);
    t = sqlv__lex_next(&p, end);
    for (;;) {
        if (o->nroles == SQLV__ROLE_NAMES_MAX)
            return op_error(o, "54000", "too many role names in one statement (maximum %d)",
                            SQLV__ROLE_NAMES_MAX);
        if (role_word(o, &t, o->roles[o->nroles]) != 0) return -1;
        o->nroles++;
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_punct(&t, ',')) break;
        t = sqlv__lex_next(&p, end);
    }
    if (o->grant && sqlv__tok_is(&t, "WITH")) {
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "GRANT")) return syntax(o, &t);
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "OPTION")) return syntax(o, &t);
        t = sqlv__lex_next(&p, end);
        o->grant_option = true;
    }
    if (!o->grant && (sqlv__tok_is(&t, "CASCADE") || sqlv__tok_is(&t, "RESTRICT"))) {
        o->cascade = sqlv__tok_is(&t, "CASCADE");
        t = sqlv__lex_next(&p, end);
    }
    if (t.kind != SQLV__TOK_END) return syntax(o, &t);
    if (o->grant && o->grant_option)
        for (int j = 0; j < o->nroles; j++)
            if (strcmp(o->roles[j], PRIV_PUBLIC) == 0)
                return op_error(o, "0LP01", "grant options can only be granted to roles");
    if (o->ncolumns > 0 && (o->on_database || o->on_sequence))
        return op_error(o, "0LP01", "column privileges are only valid for relations");
    uint32_t allowed = o->on_database   ? SQLV__PRIV_DATABASE_ALL
                       : o->on_sequence ? SQLV__PRIV_SEQUENCE_ALL
                                        : SQLV__PRIV_TABLE_ALL;
    if (all) o->bits = allowed;
    if (!o->on_database && !o->on_sequence) /* ON [TABLE] may name a sequence: checked then */
        allowed |= SQLV__PRIV_USAGE;
    uint32_t bad = o->bits & ~allowed;
    if (bad != 0)
        return op_error(o, "0LP01", "invalid privilege type %s for %s",
                        priv_word(bad & (~bad + 1)), /* the lowest one */
                        o->on_database ? "database" : o->on_sequence ? "sequence" : "table");
    return 0;
}

/* One object a GRANT/REVOKE changes. */
typedef struct priv_target {
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    char owner_object[PRIV_OBJECT_BYTES_MAX + 1]; /* a column's table; else object */
    char owning_table[PRIV_OBJECT_BYTES_MAX + 1]; /* of a SERIAL's sequence: its owner's */
    char kind;                                    /* 'd' database, 't' table, 's' sequence, 'c' */
    uint32_t bits;
    char name[SQLV__NAME_BYTES_MAX * 4 + 1]; /* for messages */
} priv_target;

/* Every privilege row, changed in memory, then written back. */
typedef struct priv_work {
    priv_row *rows; /* owner: this work (work_free) */
    bool *dirty;    /* n; owner: this work */
    int n, cap;
    sqlv__membership *members; /* owner: this work */
    int nm;
    priv_target *targets; /* owner: this work */
    int ntargets, targets_cap;
    struct { /* REVOKE: a grantee's grant options lost on an object (the cascade's queue) */
        int row;
        uint32_t lost;
    } *queue; /* owner: this work */
    int nqueue, queue_cap;
} priv_work;

static void work_free(priv_work *w) {
    base_free(w->rows);
    base_free(w->dirty);
    base_free(w->members);
    base_free(w->targets);
    base_free(w->queue);
}

static int grow(void **arr, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int ncap = *cap ? *cap * 2 : 16;
    while (ncap < need) ncap *= 2;
    void *g = base_realloc(*arr, elem * (size_t)ncap);
    if (g == NULL) return -1;
    *arr = g;
    *cap = ncap;
    return 0;
}

static priv_target *add_target(priv_work *w, char kind, const char *name, uint32_t bits) {
    if (grow((void **)&w->targets, &w->targets_cap, w->ntargets + 1, sizeof(*w->targets)) != 0)
        return NULL;
    priv_target *t = &w->targets[w->ntargets++];
    memset(t, 0, sizeof(*t));
    t->kind = kind;
    base_strlcpy(t->name, name, sizeof(t->name));
    t->bits = bits;
    return t;
}

/* The row (object, grantee, grantor); with add, a new empty one when there
** is none. Its index, or -1 (none, or out of memory with add). */
static int find_row(priv_work *w, const char *object, const char *grantee, const char *grantor,
                    bool add) {
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->rows[i].object, object) == 0 && strcmp(w->rows[i].grantee, grantee) == 0 &&
            strcmp(w->rows[i].grantor, grantor) == 0)
            return i;
    if (!add) return -1;
    int cap = w->cap;
    if (grow((void **)&w->rows, &w->cap, w->n + 1, sizeof(*w->rows)) != 0) return -1;
    if (w->cap != cap) {
        bool *d = base_realloc(w->dirty, sizeof(*d) * (size_t)w->cap);
        if (d == NULL) return -1;
        w->dirty = d;
    }
    priv_row *r = &w->rows[w->n];
    memset(r, 0, sizeof(*r));
    base_strlcpy(r->object, object, sizeof(r->object));
    base_strlcpy(r->grantee, grantee, sizeof(r->grantee));
    base_strlcpy(r->grantor, grantor, sizeof(r->grantor));
    w->dirty[w->n] = false;
    return w->n++;
}

/* The bits user holds on object: its rows, its roles' and PUBLIC's. */
static uint32_t held_on(const priv_work *w, const char *object, const char *user) {
    uint32_t b = 0;
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->rows[i].object, object) == 0 &&
            (strcmp(w->rows[i].grantee, PRIV_PUBLIC) == 0 ||
             sqlv__role_in(w->members, w->nm, user, w->rows[i].grantee)))
            b |= expand_owner(w->rows[i].bits);
    return b;
}

/* The bits role holds on object by its own rows (any grantor). */
static uint32_t held_directly(const priv_work *w, const char *object, const char *role) {
    uint32_t b = 0;
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->rows[i].object, object) == 0 && strcmp(w->rows[i].grantee, role) == 0)
            b |= expand_owner(w->rows[i].bits);
    return b;
}

/* The owner of a table or sequence object, or NULL (root's or an admin's). */
static const char *owner_of(const priv_work *w, const char *object) {
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->rows[i].object, object) == 0 && (w->rows[i].bits & SQLV__PRIV_OWNER))
            return w->rows[i].grantee;
    return NULL;
}

/* The grantor of the user's GRANT/REVOKE on t when not an admin or the
** owner (PostgreSQL's select_best_grantor): the user when it holds the
** grant options itself, else the first role of its holding them all. */
static const char *grantor_of(const priv_work *w, const priv_target *t, const char *user,
                              uint32_t need) {
    const char *objects[2] = {t->object, t->owner_object};
    for (int k = 0; k < 2; k++)
        if ((held_directly(w, objects[k], user) & need) == need) return user;
    for (int i = 0; i < w->n; i++) {
        const char *g = w->rows[i].grantee;
        if (strcmp(g, PRIV_PUBLIC) == 0 || strcmp(g, user) == 0 ||
            !sqlv__role_in(w->members, w->nm, user, g))
            continue;
        for (int k = 0; k < 2; k++)
            if (strcmp(w->rows[i].object, objects[k]) == 0 &&
                (held_directly(w, objects[k], g) & need) == need)
                return g;
    }
    return user;
}

static int queue_push(priv_work *w, int row, uint32_t lost) {
    if (lost == 0) return 0;
    if (grow((void **)&w->queue, &w->queue_cap, w->nqueue + 1, sizeof(*w->queue)) != 0) return -1;
    w->queue[w->nqueue].row = row;
    w->queue[w->nqueue].lost = lost;
    w->nqueue++;
    return 0;
}

#define PRIV_OPTION_BITS ((SQLV__PRIV_TABLE_ALL | SQLV__PRIV_DATABASE_ALL | SQLV__PRIV_USAGE) \
                          << SQLV__PRIV_GRANT_SHIFT)

/* Take bits (privileges and their options) from row i; what options it
** lost goes to the cascade's queue. 0 or -1 (memory). */
static int take_bits(priv_work *w, int i, uint32_t bits) {
    uint32_t raw = w->rows[i].bits, before = expand_owner(raw);
    w->rows[i].bits &= ~bits;
    if (w->rows[i].bits == raw) return 0;
    w->dirty[i] = true;
    return queue_push(w, i, before & ~expand_owner(w->rows[i].bits) & PRIV_OPTION_BITS);
}

/* REVOKE's cascade: a grantee that lost a grant option, and holds it no
** more by another grant, takes back what it granted with it: without
** CASCADE that is 2BP01, as PostgreSQL. Bounded: a row only loses bits. */
static int revoke_dependents(priv_work *w, priv_op *o) {
    for (int k = 0; k < w->nqueue; k++) {
        const priv_row *from = &w->rows[w->queue[k].row];
        char table[PRIV_OBJECT_BYTES_MAX + 1] = "";
        if (from->object[0] == 'c') { /* a column's: the table's options count too */
            const char *colon = strchr(from->object + 2, ':');
            snprintf(table, sizeof(table), "t:%.*s", (int)(colon - from->object - 2),
                     from->object + 2);
        }
        uint32_t still = held_directly(w, from->object, from->grantee) |
                         (table[0] ? held_directly(w, table, from->grantee) : 0);
        uint32_t gone = w->queue[k].lost & ~still;
        if (gone == 0) continue;
        uint32_t dep = gone | (gone >> SQLV__PRIV_GRANT_SHIFT);
        for (int j = 0; j < w->n; j++) {
            const priv_row *r = &w->rows[j];
            if (strcmp(r->grantor, from->grantee) != 0 || (r->bits & dep) == 0) continue;
            if (strcmp(r->object, from->object) != 0 && !column_of(r->object, from->object))
                continue;
            if (!o->cascade) return op_error(o, "2BP01", "dependent privileges exist");
            if (take_bits(w, j, dep) != 0) return SQLV_ERR_NOMEM;
        }
    }
    return 0;
}

/* A SERIAL's (or IDENTITY's) sequence: the table that owns it, whose
** owner owns the sequence too. */
static void owning_table(sqlv_session *s, const sqlv__catalog *cat, bool in_block,
                         const sqlv__seq_def *d, priv_target *t) {
    if (d->owner_table[0] == 0) return;
    const sqlv__table *tt = in_block ? sqlv__session_find_table(s, d->owner_table)
                                     : sqlv__catalog_find(cat, d->owner_table);
    if (tt != NULL) table_object(tt->id, t->owning_table);
}

/* The objects o names, as targets; 0, or -1 with o->state set, or
** SQLV_ERR_NOMEM / a txn error. */
static int resolve(sqlv_session *s, priv_op *o, priv_work *w, txn *kv, const sqlv__catalog *cat,
                   bool in_block, txn_error *err) {
    sqlv__seq_def *seqs = NULL;
    int nseqs = 0, rc = 0;
    if (o->on_sequence || !o->on_database) {
        if ((rc = sqlv__seq_list(kv, &seqs, &nseqs, err)) != TXN_OK) return rc;
    }
    priv_target *t;
    if (o->all_in_schema && o->on_sequence) {
        for (int i = 0; i < nseqs && i < PRIV_ALL_OBJECTS_MAX; i++) {
            if ((t = add_target(w, 's', seqs[i].name, o->bits)) == NULL) goto nomem;
            table_object(seqs[i].id, t->object);
            owning_table(s, cat, in_block, &seqs[i], t);
        }
        goto done;
    }
    if (o->all_in_schema) {
        for (int i = 0; i < cat->ntables && i < PRIV_ALL_OBJECTS_MAX; i++) {
            if ((t = add_target(w, 't', cat->tables[i]->name, o->bits)) == NULL) goto nomem;
            table_object(cat->tables[i]->id, t->object);
        }
        goto done;
    }
    for (int i = 0; i < o->nobjects; i++) {
        const char *name = o->objects[i];
        if (o->on_database) {
            if (sqlite3_stricmp(name, s->database) != 0) {
                rc = op_error(o, "3D000", "database \"%.63s\" does not exist", name);
                goto done;
            }
            if ((t = add_target(w, 'd', name, o->bits)) == NULL) goto nomem;
            database_object(s->database, t->object);
            continue;
        }
        const sqlv__table *tt = o->on_sequence ? NULL
                                : in_block     ? sqlv__session_find_table(s, name)
                                               : sqlv__catalog_find(cat, name);
        if (tt == NULL) { /* a sequence (ON TABLE names one too, as in PostgreSQL) */
            const sqlv__seq_def *d = NULL;
            for (int k = 0; k < nseqs && d == NULL; k++)
                if (sqlite3_stricmp(seqs[k].name, name) == 0) d = &seqs[k];
            if (d == NULL) {
                rc = op_error(o, "42P01", "%s \"%.63s\" does not exist",
                              o->on_sequence ? "sequence" : "relation", name);
                goto done;
            }
            if (o->ncolumns > 0) {
                rc = op_error(o, "0LP01", "column privileges are only valid for relations");
                goto done;
            }
            uint32_t bits = o->bits;
            if (!o->on_sequence) /* PostgreSQL keeps what a sequence supports (ALL: its ALL) */
                bits = (bits & SQLV__PRIV_TABLE_ALL) == SQLV__PRIV_TABLE_ALL
                           ? SQLV__PRIV_SEQUENCE_ALL
                           : bits & SQLV__PRIV_SEQUENCE_ALL;
            if ((t = add_target(w, 's', name, bits)) == NULL) goto nomem;
            table_object(d->id, t->object);
            owning_table(s, cat, in_block, d, t);
            base_strlcpy(t->owner_object, t->object, sizeof(t->owner_object));
            continue;
        }
        if (o->bits & SQLV__PRIV_USAGE) {
            rc = op_error(o, "0LP01", "invalid privilege type USAGE for table");
            goto done;
        }
        if (o->bits != 0 || o->ncolumns == 0) {
            if ((t = add_target(w, 't', name, o->bits)) == NULL) goto nomem;
            table_object(tt->id, t->object);
        }
        for (int c = 0; c < o->ncolumns; c++) {
            int k = 0;
            while (k < tt->ncols && sqlite3_stricmp(tt->cols[k].name, o->columns[c].name) != 0)
                k++;
            if (k == tt->ncols) {
                rc = op_error(o, "42703", "column \"%.63s\" of relation \"%.63s\" does not exist",
                              o->columns[c].name, name);
                goto done;
            }
            if ((t = add_target(w, 'c', name, o->columns[c].bits)) == NULL) goto nomem;
            if (column_object(tt->id, tt->cols[k].name, t->object) != 0) {
                rc = op_error(o, "42622", "column name \"%.63s\" is too long", tt->cols[k].name);
                goto done;
            }
            table_object(tt->id, t->owner_object);
        }
    }
    goto done;
nomem:
    rc = TXN_ERR_NOMEM;
    txn_error_set(err, rc);
done:
    for (int i = 0; i < w->ntargets; i++)
        if (w->targets[i].owner_object[0] == 0)
            base_strlcpy(w->targets[i].owner_object, w->targets[i].object,
                         sizeof(w->targets[i].owner_object));
    base_free(seqs);
    return rc;
}

/* One attempt in kv with catalog cat (the block's view when in_block). TXN_OK
** (o->state set on a user error) or a txn error. */
static int apply(sqlv_session *s, priv_op *o, txn *kv, const sqlv__catalog *cat, bool in_block,
                 txn_error *err) {
    bool admin = false;
    int rc = sqlv__role_is_admin(kv, s->user, &admin, err);
    if (rc != TXN_OK) return rc;
    sqlv__role *roles = NULL;
    int nroles = 0;
    base_buf key = {0}, val = {0};
    priv_work w;
    memset(&w, 0, sizeof(w));
    rc = resolve(s, o, &w, kv, cat, in_block, err);
    if (rc == -1) { /* o->state set */
        rc = TXN_OK;
        goto done;
    }
    if (rc != TXN_OK) goto done;
    if ((rc = sqlv__memberships_list(kv, &w.members, &w.nm, err)) != TXN_OK) goto done;
    if ((rc = rows_list(kv, &w.rows, &w.n, err)) != TXN_OK) goto done;
    w.cap = w.n;
    if ((w.dirty = base_calloc((size_t)w.n + 1, sizeof(*w.dirty))) == NULL) goto nomem;
    if ((rc = sqlv__roles_list(kv, &roles, &nroles, err)) != TXN_OK) goto done;
    for (int j = 0; j < o->nroles; j++) {
        bool found = strcmp(o->roles[j], PRIV_PUBLIC) == 0; /* every role */
        for (int k = 0; k < nroles && !found; k++)
            found = strcmp(roles[k].name, o->roles[j]) == 0;
        if (!found) {
            op_error(o, "42704", "role \"%s\" does not exist", o->roles[j]);
            goto done;
        }
    }
    for (int i = 0; i < w.ntargets; i++) {
        const priv_target t = w.targets[i];
        if (t.bits == 0) continue;
        const char *owner = t.kind == 'd' ? NULL : owner_of(&w, t.owner_object);
        if (owner == NULL && t.owning_table[0]) owner = owner_of(&w, t.owning_table);
        bool owns = owner != NULL && sqlv__role_in(w.members, w.nm, s->user, owner);
        uint32_t need = t.bits << SQLV__PRIV_GRANT_SHIFT;
        const char *grantor;
        char grantor_buf[SQLV__NAME_BYTES_MAX + 1];
        /* who may: admins; else the owner, or the grant option of every
        ** privilege named (held directly, through a role, or by PUBLIC; on
        ** a column, the table's counts too) */
        if (admin || owns) {
            grantor = owner != NULL ? owner : SQLV__ROLE_ROOT;
        } else {
            uint32_t held = held_on(&w, t.object, s->user);
            if (t.kind == 'c') held |= held_on(&w, t.owner_object, s->user);
            if ((held & need) != need) {
                if (t.kind == 'd')
                    op_error(o, "42501", "permission denied for database %.63s", s->database);
                else
                    op_error(o, "42501",
                             "permission denied for %s %.63s: granting and revoking its "
                             "privileges takes its owner, an admin or WITH GRANT OPTION",
                             t.kind == 's' ? "sequence" : "table", t.name);
                goto done;
            }
            grantor = grantor_of(&w, &t, s->user, need);
        }
        base_strlcpy(grantor_buf, grantor, sizeof(grantor_buf)); /* rows may move below */
        for (int j = 0; j < o->nroles; j++) {
            if (o->grant) {
                int k = find_row(&w, t.object, o->roles[j], grantor_buf, true);
                if (k < 0) goto nomem;
                uint32_t before = w.rows[k].bits;
                w.rows[k].bits |= t.bits | (o->grant_option ? need : 0);
                if (w.rows[k].bits != before || before == 0) w.dirty[k] = true;
                continue;
            }
            uint32_t take = o->grant_option ? need : need | t.bits;
            bool all = !o->grant_option && (admin || owns) && t.kind != 'c' &&
                       (t.bits & SQLV__PRIV_TABLE_ALL) == SQLV__PRIV_TABLE_ALL;
            if (!o->grant_option && (admin || owns) && t.kind == 's' &&
                (t.bits & SQLV__PRIV_SEQUENCE_ALL) == SQLV__PRIV_SEQUENCE_ALL)
                all = true;
            for (int k = 0; k < w.n; k++) {
                priv_row *r = &w.rows[k];
                if (strcmp(r->grantee, o->roles[j]) != 0) continue;
                /* a table's REVOKE reaches its columns' privileges too (PostgreSQL) */
                if (strcmp(r->object, t.object) != 0 &&
                    !(t.kind == 't' && column_of(r->object, t.object)))
                    continue;
                /* an admin or the owner revokes every grantor's grant; others their own */
                if (!admin && !owns && strcmp(r->grantor, grantor_buf) != 0) continue;
                uint32_t bits = take;
                if (all && strcmp(r->object, t.object) == 0)
                    bits |= SQLV__PRIV_OWNER; /* REVOKE ALL: the owner's implicit rights too */
                if (take_bits(&w, k, bits) != 0) goto nomem;
            }
        }
    }
    if (!o->grant && (rc = revoke_dependents(&w, o)) != 0) {
        if (rc == SQLV_ERR_NOMEM) goto nomem;
        rc = TXN_OK; /* o->state set */
        goto done;
    }
    for (int k = 0; k < w.n; k++) {
        if (!w.dirty[k]) continue;
        const priv_row *r = &w.rows[k];
        if (priv_key(&key, r->object, r->grantee, r->grantor) != 0) goto nomem;
        if (r->bits == 0) {
            rc = txn_delete(kv, key.data, key.len, err);
        } else if (priv_encode(r, &val) == 0) {
            rc = txn_put(kv, key.data, key.len, val.data, val.len, err);
        } else {
            goto nomem;
        }
        if (rc != TXN_OK) goto done;
    }
    rc = sqlv__catalog_bump_version(kv, err); /* every session's cache goes stale */
    goto done;
nomem:
    rc = TXN_ERR_NOMEM;
    txn_error_set(err, rc);
done:
    work_free(&w);
    base_free(roles);
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

int sqlv__privileges_stmt(sqlv__run *r, const char *text, size_t len) {
    sqlv_session *s = r->s;
    priv_op *o = base_calloc(1, sizeof(*o)); /* owner: this function */
    txn_error err = {{0}, {0}};
    int rc = TXN_OK, result;
    if (o == NULL) return sqlv__fail(r, "53200", "out of memory");
    if (parse_grant(o, text, text + len) != 0) {
        result = sqlv__fail(r, o->state, o->msg);
        goto done;
    }
    if (s->status == 'T') {
        uint32_t sp;
        if (s->kv == NULL && (rc = sqlv__session_begin(s, false, &err)) != TXN_OK) {
            result = sqlv__fail_txn(r, rc, &err);
            goto done;
        }
        if ((rc = txn_savepoint(s->kv, &sp)) != TXN_OK) {
            result = sqlv__fail_txn(r, rc, &err);
            goto done;
        }
        rc = apply(s, o, s->kv, s->cat, true, &err);
        if (rc != TXN_OK || o->state[0]) {
            (void)txn_rollback_to(s->kv, sp);
            result = rc != TXN_OK ? sqlv__fail_txn(r, rc, &err) : sqlv__fail(r, o->state, o->msg);
            goto done;
        }
        (void)txn_release(s->kv, sp);
    } else {
        for (int attempt = 0; attempt < PRIV_RETRIES_MAX; attempt++) {
            txn *kv = NULL;
            sqlv__catalog *cat = sqlv__engine_catalog(s->engine);
            memset(&err, 0, sizeof(err));
            o->state[0] = 0;
            if (attempt > 0) {
                struct timespec ts = {0, (long)PRIV_RETRY_PAUSE_US * 1000 * attempt};
                nanosleep(&ts, NULL);
            }
            rc = txn_begin(s->engine->db, NULL, &kv);
            if (rc != TXN_OK) {
                sqlv__catalog_unref(cat);
                break;
            }
            rc = sqlv__engine_catalog_at(s->engine, kv, &cat, &err);
            if (rc == TXN_OK) rc = apply(s, o, kv, cat, false, &err);
            sqlv__catalog_unref(cat);
            if (rc != TXN_OK || o->state[0]) {
                txn_rollback(kv);
                if (rc == TXN_ERR_RETRY) continue;
                break;
            }
            rc = txn_commit(kv, NULL, &err); /* frees kv */
            if (rc != TXN_ERR_RETRY) break;
        }
        if (rc != TXN_OK) {
            result = sqlv__fail_txn(r, rc, &err);
            goto done;
        }
        if (o->state[0]) {
            result = sqlv__fail(r, o->state, o->msg);
            goto done;
        }
    }
    sqlv__priv_invalidate(s);
    result = STMT_OK;
    if (r->sink_rc == 0 && r->sink->command_complete)
        r->sink_rc = r->sink->command_complete(r->sink->ctx, o->grant ? "GRANT" : "REVOKE");
done:
    base_free(o);
    return result;
}

/* ---- owners: ALTER and DROP SEQUENCE, OWNER TO ------------------------------------- */

int sqlv__priv_sequence_owner(sqlv_session *s, txn *kv, const sqlv__catalog *cat, uint32_t id,
                              const char *owner_table, bool database_drop, bool *ok,
                              txn_error *err) {
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    bool admin = false;
    priv_work w;
    memset(&w, 0, sizeof(w));
    *ok = true;
    if (is_root(s)) return TXN_OK;
    int rc = sqlv__role_is_admin(kv, s->user, &admin, err);
    if (rc != TXN_OK || admin) return rc;
    if ((rc = sqlv__memberships_list(kv, &w.members, &w.nm, err)) != TXN_OK) goto done;
    if ((rc = rows_list(kv, &w.rows, &w.n, err)) != TXN_OK) goto done;
    table_object(id, object);
    const char *owner = owner_of(&w, object);
    if (owner == NULL && owner_table[0]) { /* SERIAL, IDENTITY: the table's owner owns it */
        const sqlv__table *tt = s->status == 'T' ? sqlv__session_find_table(s, owner_table)
                                                 : sqlv__catalog_find(cat, owner_table);
        if (tt != NULL) {
            table_object(tt->id, object);
            owner = owner_of(&w, object);
        }
    }
    *ok = owner != NULL && sqlv__role_in(w.members, w.nm, s->user, owner);
    if (!*ok && database_drop) { /* Meridian's own: the database's DROP drops any table */
        database_object(s->database, object);
        *ok = (held_on(&w, object, s->user) & SQLV__PRIV_DROP) != 0;
    }
done:
    work_free(&w);
    return rc;
}

/* Move row i's bits to the row (its object, its grantee, grantor to) and
** empty row i. 0 or -1 (memory). */
static int move_grantor(priv_work *w, int i, const char *to) {
    priv_row from = w->rows[i]; /* a copy: find_row may move the rows */
    int k = find_row(w, from.object, from.grantee, to, true);
    if (k < 0) return -1;
    w->rows[k].bits |= from.bits;
    w->dirty[k] = true;
    w->rows[i].bits = 0;
    w->dirty[i] = true;
    return 0;
}

/* Object's owner goes from from to to in w (dirty rows; the caller writes
** them): the old owner row's rights go; what from granted on object (and on
** its columns), to did (PostgreSQL's aclnewowner); to's grants to itself
** merge into its ownership. with_row: to gets the owner row (root owns
** without one; a SERIAL's sequence follows its table's owner without one).
** 0, or -1 (memory). */
static int owner_move(priv_work *w, const char *object, const char *from, const char *to,
                      bool with_row) {
    int n = w->n;
    for (int i = 0; i < n; i++) {
        if (strcmp(w->rows[i].object, object) != 0 && !column_of(w->rows[i].object, object))
            continue;
        if (w->rows[i].bits & SQLV__PRIV_OWNER) { /* the old owner's rights go */
            w->rows[i].bits &= ~SQLV__PRIV_OWNER;
            w->dirty[i] = true;
        }
        if (w->rows[i].bits != 0 && strcmp(w->rows[i].grantor, from) == 0 &&
            move_grantor(w, i, to) != 0)
            return -1;
    }
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->rows[i].object, object) == 0 && strcmp(w->rows[i].grantee, to) == 0 &&
            strcmp(w->rows[i].grantor, to) == 0 && w->rows[i].bits != 0) {
            w->rows[i].bits = 0;
            w->dirty[i] = true;
        }
    if (with_row && strcmp(to, SQLV__ROLE_ROOT) != 0) {
        int k = find_row(w, object, to, "", true);
        if (k < 0) return -1;
        w->rows[k].bits |= SQLV__PRIV_OWNER;
        w->dirty[k] = true;
    }
    return 0;
}

/* Write w's dirty rows through kv (an empty row is deleted). */
static int rows_write(priv_work *w, txn *kv, txn_error *err) {
    base_buf key = {0}, val = {0};
    int rc = TXN_OK;
    for (int k = 0; k < w->n && rc == TXN_OK; k++) {
        if (!w->dirty[k]) continue;
        const priv_row *r = &w->rows[k];
        if (priv_key(&key, r->object, r->grantee, r->grantor) != 0) {
            rc = TXN_ERR_NOMEM;
        } else if (r->bits == 0) {
            rc = txn_delete(kv, key.data, key.len, err);
        } else if (priv_encode(r, &val) == 0) {
            rc = txn_put(kv, key.data, key.len, val.data, val.len, err);
        } else {
            rc = TXN_ERR_NOMEM;
        }
    }
    if (rc == TXN_ERR_NOMEM) txn_error_set(err, rc);
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

/* Is role one of the stored roles (or a built-in one)? */
static int role_exists(txn *kv, const char *role, bool *found, txn_error *err) {
    sqlv__role *roles = NULL;
    int nroles = 0;
    *found = false;
    int rc = sqlv__roles_list(kv, &roles, &nroles, err);
    for (int k = 0; rc == TXN_OK && k < nroles && !*found; k++)
        *found = strcmp(roles[k].name, role) == 0;
    base_free(roles);
    return rc;
}

int sqlv__priv_set_owner(sqlv_session *s, txn *kv, uint32_t id, const char *role,
                         char state[6], char *msg, size_t msg_size, txn_error *err) {
    char object[PRIV_OBJECT_BYTES_MAX + 1], from[SQLV__NAME_BYTES_MAX + 1];
    bool admin = false, found = false;
    priv_work w;
    memset(&w, 0, sizeof(w));
    state[0] = 0;
    int rc = sqlv__role_is_admin(kv, s->user, &admin, err);
    if (rc != TXN_OK) return rc;
    if ((rc = role_exists(kv, role, &found, err)) != TXN_OK) goto done;
    if ((rc = sqlv__memberships_list(kv, &w.members, &w.nm, err)) != TXN_OK) goto done;
    if (!found) {
        base_strlcpy(state, "42704", 6);
        snprintf(msg, msg_size, "role \"%.63s\" does not exist", role);
        goto done;
    }
    /* PostgreSQL: the new owner must be a role the user could become */
    if (!admin && !sqlv__role_in(w.members, w.nm, s->user, role)) {
        base_strlcpy(state, "42501", 6);
        snprintf(msg, msg_size, "must be member of role \"%.63s\"", role);
        goto done;
    }
    if ((rc = rows_list(kv, &w.rows, &w.n, err)) != TXN_OK) goto done;
    w.cap = w.n;
    if ((w.dirty = base_calloc((size_t)w.n + 1, sizeof(*w.dirty))) == NULL) goto nomem;
    table_object(id, object);
    const char *old = owner_of(&w, object);
    base_strlcpy(from, old != NULL ? old : SQLV__ROLE_ROOT, sizeof(from));
    if (strcmp(from, role) == 0) goto done; /* already its owner */
    if (owner_move(&w, object, from, role, true) != 0) goto nomem;
    rc = rows_write(&w, kv, err);
    goto done;
nomem:
    rc = TXN_ERR_NOMEM;
    txn_error_set(err, rc);
done:
    work_free(&w);
    return rc;
}

/* Does object (a row's) still name something: a table or sequence of cat or
** seqs, a column of such a table, the database? (Rows outlive their
** objects: ids are never reused, so they never apply to another.) */
static bool object_live(const char *object, const sqlv__catalog *cat, const sqlv__seq_def *seqs,
                        int nseqs) {
    if (object[0] == 'd') return true;
    uint32_t id = (uint32_t)strtoul(object + 2, NULL, 10);
    const sqlv__table *t = sqlv__catalog_find_id(cat, id);
    if (object[0] == 'c') {
        const char *column = strchr(object + 2, ':');
        for (int i = 0; t != NULL && column != NULL && i < t->ncols; i++)
            if (sqlite3_stricmp(t->cols[i].name, column + 1) == 0) return true;
        return false;
    }
    for (int i = 0; t == NULL && i < nseqs; i++)
        if (seqs[i].id == id) return true;
    return t != NULL;
}

int sqlv__priv_role_objects(sqlv_engine *e, txn *kv, const char *role, int *nobjects,
                            txn_error *err) {
    priv_row *rows = NULL;
    sqlv__seq_def *seqs = NULL;
    sqlv__catalog *cat = sqlv__engine_catalog(e);
    int nr = 0, nseqs = 0;
    *nobjects = 0;
    int rc = sqlv__engine_catalog_at(e, kv, &cat, err);
    if (rc == TXN_OK) rc = sqlv__seq_list(kv, &seqs, &nseqs, err);
    if (rc == TXN_OK) rc = rows_list(kv, &rows, &nr, err);
    for (int i = 0; rc == TXN_OK && i < nr; i++) {
        if (strcmp(rows[i].grantee, role) != 0 && strcmp(rows[i].grantor, role) != 0) continue;
        if (!object_live(rows[i].object, cat, seqs, nseqs)) continue;
        bool seen = false; /* each object once */
        for (int k = 0; k < i && !seen; k++)
            seen = strcmp(rows[k].object, rows[i].object) == 0 &&
                   (strcmp(rows[k].grantee, role) == 0 || strcmp(rows[k].grantor, role) == 0);
        if (!seen) (*nobjects)++;
    }
    base_free(rows);
    base_free(seqs);
    sqlv__catalog_unref(cat);
    return rc;
}

/* ---- SHOW GRANTS -------------------------------------------------------------------- */

static const uint32_t show_order[] = {
    SQLV__PRIV_CREATE, SQLV__PRIV_DELETE,  SQLV__PRIV_DROP,   SQLV__PRIV_INSERT,
    SQLV__PRIV_REFERENCES, SQLV__PRIV_SELECT, SQLV__PRIV_TRIGGER, SQLV__PRIV_TRUNCATE,
    SQLV__PRIV_UPDATE};

static void show_row(sqlv__run *r, const char *database, const char *table, const char *grantee,
                     const char *privilege, bool grantable) {
    sqlv_cell cells[6] = {{database, strlen(database)},
                          {table ? "public" : NULL, table ? 6 : 0},
                          {table, table ? strlen(table) : 0},
                          {grantee, strlen(grantee)},
                          {privilege, strlen(privilege)},
                          {grantable ? "t" : "f", 1}};
    if (r->sink_rc == 0 && r->sink->data_row)
        r->sink_rc = r->sink->data_row(r->sink->ctx, 6, cells);
}

/* The rows of one object: root and admin (ALL) first, then the stored ones.
** ALL stands for every privilege of the object when all are held; it is
** grantable when every grant option is held too (else one row each). */
static void show_object(sqlv__run *r, const char *object, const char *table, const priv_row *rows,
                        int nr, const char *for_role) {
    const char *db = r->s->database;
    const char *builtin[2] = {SQLV__ROLE_ADMIN, SQLV__ROLE_ROOT};
    for (int i = 0; i < 2; i++)
        if (for_role == NULL || strcmp(for_role, builtin[i]) == 0)
            show_row(r, db, table, builtin[i], "ALL", true);
    for (int i = 0; i < nr; i++) {
        if (strcmp(rows[i].object, object) != 0) continue;
        if (for_role != NULL && strcmp(for_role, rows[i].grantee) != 0) continue;
        bool seen = false; /* one line per grantee: its rows of every grantor together */
        for (int k = 0; k < i && !seen; k++)
            seen = strcmp(rows[k].object, object) == 0 &&
                   strcmp(rows[k].grantee, rows[i].grantee) == 0;
        if (seen) continue;
        uint32_t bits = 0;
        for (int k = i; k < nr; k++)
            if (strcmp(rows[k].object, object) == 0 &&
                strcmp(rows[k].grantee, rows[i].grantee) == 0)
                bits |= expand_owner(rows[k].bits);
        uint32_t all = table ? SQLV__PRIV_TABLE_ALL : SQLV__PRIV_DATABASE_ALL;
        uint32_t options = bits >> SQLV__PRIV_GRANT_SHIFT;
        if ((bits & all) == all && ((options & all) == all || (options & all) == 0)) {
            show_row(r, db, table, rows[i].grantee, "ALL", (options & all) == all);
            continue;
        }
        for (size_t b = 0; b < BASE_ARRAY_LEN(show_order); b++)
            if (bits & show_order[b])
                show_row(r, db, table, rows[i].grantee, priv_word(show_order[b]),
                         (options & show_order[b]) != 0);
    }
}

/* SHOW GRANTS [ON [TABLE] t[, ...] | ON DATABASE d] [FOR role]; p after GRANTS. */
int sqlv__privileges_show(sqlv__run *r, const char *p, const char *end) {
    sqlv_session *s = r->s;
    priv_op *o = base_calloc(1, sizeof(*o)); /* owner: this function (the names) */
    char for_role[SQLV__NAME_BYTES_MAX + 1] = "";
    priv_row *rows = NULL;
    int nr = 0, result = STMT_FAILED;
    txn *kv = NULL;
    sqlv__catalog *cat = NULL;
    txn_error err = {{0}, {0}};
    bool on = false;
    if (o == NULL) return sqlv__fail(r, "53200", "out of memory");
    sqlv__token t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "ON")) {
        on = true;
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&t, "DATABASE")) {
            o->on_database = true;
            t = sqlv__lex_next(&p, end);
        } else if (sqlv__tok_is(&t, "TABLE")) {
            t = sqlv__lex_next(&p, end);
        }
        for (;;) {
            if (o->nobjects == PRIV_OBJECTS_MAX ||
                sqlv__tok_ident(&t, o->objects[o->nobjects], sizeof(o->objects[0])) != 0) {
                syntax(o, &t);
                goto fail;
            }
            o->nobjects++;
            t = sqlv__lex_next(&p, end);
            if (!sqlv__tok_punct(&t, ',')) break;
            t = sqlv__lex_next(&p, end);
        }
    }
    if (sqlv__tok_is(&t, "FOR")) {
        t = sqlv__lex_next(&p, end);
        if (role_word(o, &t, for_role) != 0) goto fail;
        t = sqlv__lex_next(&p, end);
    }
    if (t.kind != SQLV__TOK_END) {
        syntax(o, &t);
        goto fail;
    }
    /* the block's transaction and view, else a read-only one of its own */
    int rc;
    bool own = s->status != 'T';
    if (!own) {
        if (s->kv == NULL && (rc = sqlv__session_begin(s, false, &err)) != TXN_OK) goto txn_fail;
        kv = s->kv;
    } else {
        txn_options ro = {.read_only = true};
        if ((rc = txn_begin(s->engine->db, &ro, &kv)) != TXN_OK) {
            kv = NULL;
            goto txn_fail;
        }
        cat = sqlv__engine_catalog(s->engine);
        if ((rc = sqlv__engine_catalog_at(s->engine, kv, &cat, &err)) != TXN_OK) goto txn_fail;
    }
    if ((rc = rows_list(kv, &rows, &nr, &err)) != TXN_OK) goto txn_fail;
    const sqlv__catalog *view = own ? cat : s->cat;
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    for (int i = 0; i < o->nobjects; i++) { /* every name first: 42P01 before any row */
        bool ok = o->on_database ? sqlite3_stricmp(o->objects[i], s->database) == 0
                                 : (own ? sqlv__catalog_find(view, o->objects[i]) != NULL
                                        : sqlv__session_find_id(s, o->objects[i]) != 0);
        if (!ok) {
            op_error(o, o->on_database ? "3D000" : "42P01", "%s \"%.63s\" does not exist",
                     o->on_database ? "database" : "relation", o->objects[i]);
            goto fail;
        }
    }
    sqlv_column cols[6] = {{"database_name", SQLV_OID_TEXT, -1, 0},
                           {"schema_name", SQLV_OID_TEXT, -1, 0},
                           {"table_name", SQLV_OID_TEXT, -1, 0},
                           {"grantee", SQLV_OID_TEXT, -1, 0},
                           {"privilege_type", SQLV_OID_TEXT, -1, 0},
                           {"is_grantable", SQLV_OID_BOOL, -1, 0}};
    if (r->sink_rc == 0 && r->sink->row_description)
        r->sink_rc = r->sink->row_description(r->sink->ctx, 6, cols);
    const char *role = for_role[0] ? for_role : NULL;
    if (!on || o->on_database) {
        database_object(s->database, object);
        show_object(r, object, NULL, rows, nr, role);
    }
    if (!on) {
        for (int i = 0; i < view->ntables; i++) {
            table_object(view->tables[i]->id, object);
            show_object(r, object, view->tables[i]->name, rows, nr, role);
        }
    } else if (!o->on_database) {
        for (int i = 0; i < o->nobjects; i++) {
            uint32_t id;
            const char *name = o->objects[i];
            if (own) {
                const sqlv__table *tt = sqlv__catalog_find(view, name);
                id = tt->id;
                name = tt->name;
            } else {
                id = sqlv__session_find_id(s, name);
            }
            table_object(id, object);
            show_object(r, object, name, rows, nr, role);
        }
    }
    result = STMT_OK;
    if (r->sink_rc == 0 && r->sink->command_complete)
        r->sink_rc = r->sink->command_complete(r->sink->ctx, "SHOW GRANTS");
    goto done;
txn_fail:
    result = sqlv__fail_txn(r, rc, &err);
    goto done;
fail:
    result = sqlv__fail(r, o->state, o->msg);
done:
    if (kv != NULL && kv != s->kv) txn_rollback(kv); /* read only: nothing to commit */
    sqlv__catalog_unref(cat);
    base_free(rows);
    base_free(o);
    return result;
}

/* ---- information_schema.table_privileges, column_privileges ------------------------ */

/* The grantor information_schema shows for row r of a table: the recorded
** one; for a row without one, the owner itself (its owner row), else the
** table's owner, else root (grants stored before grantors were). */
static const char *shown_grantor(const priv_row *rows, int nr, const priv_row *r,
                                 const char *table_object) {
    if (r->grantor[0]) return r->grantor;
    if (r->bits & SQLV__PRIV_OWNER) return r->grantee;
    for (int i = 0; i < nr; i++)
        if (strcmp(rows[i].object, table_object) == 0 && (rows[i].bits & SQLV__PRIV_OWNER))
            return rows[i].grantee;
    return SQLV__ROLE_ROOT;
}

int sqlv__priv_table_privileges(txn *kv, const sqlv__table *const *tables, int ntables,
                                sqlv__table_privilege_fn fn, void *arg, txn_error *err) {
    /* PostgreSQL's privilege types only (DROP is Meridian's own) */
    static const uint32_t order[] = {SQLV__PRIV_SELECT,     SQLV__PRIV_INSERT,
                                     SQLV__PRIV_UPDATE,     SQLV__PRIV_DELETE,
                                     SQLV__PRIV_TRUNCATE,   SQLV__PRIV_REFERENCES,
                                     SQLV__PRIV_TRIGGER};
    priv_row *rows = NULL;
    int nr = 0, rc = rows_list(kv, &rows, &nr, err);
    if (rc != TXN_OK) return rc;
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    for (int t = 0; t < ntables && rc == 0; t++) {
        table_object(tables[t]->id, object);
        for (int i = 0; i < nr && rc == 0; i++) {
            if (strcmp(rows[i].object, object) != 0) continue;
            const char *grantor = shown_grantor(rows, nr, &rows[i], object);
            uint32_t bits = expand_owner(rows[i].bits);
            for (size_t b = 0; b < BASE_ARRAY_LEN(order) && rc == 0; b++)
                if (bits & order[b])
                    rc = fn(arg, tables[t]->name, grantor, rows[i].grantee, priv_word(order[b]),
                            ((bits >> SQLV__PRIV_GRANT_SHIFT) & order[b]) != 0);
        }
    }
    base_free(rows);
    return rc;
}

int sqlv__priv_column_privileges(txn *kv, const sqlv__table *const *tables, int ntables,
                                 sqlv__column_privilege_fn fn, void *arg, txn_error *err) {
    static const uint32_t order[] = {SQLV__PRIV_SELECT, SQLV__PRIV_INSERT, SQLV__PRIV_UPDATE,
                                     SQLV__PRIV_REFERENCES};
    priv_row *rows = NULL;
    int nr = 0, rc = rows_list(kv, &rows, &nr, err);
    if (rc != TXN_OK) return rc;
    char object[PRIV_OBJECT_BYTES_MAX + 1], column[PRIV_OBJECT_BYTES_MAX + 1];
    for (int t = 0; t < ntables && rc == 0; t++) {
        const sqlv__table *tt = tables[t];
        table_object(tt->id, object);
        for (int c = 0; c < tt->ncols && rc == 0; c++) {
            if (column_object(tt->id, tt->cols[c].name, column) != 0) continue;
            for (int i = 0; i < nr && rc == 0; i++) {
                bool table_row = strcmp(rows[i].object, object) == 0;
                if (!table_row && strcmp(rows[i].object, column) != 0) continue;
                const char *grantor = shown_grantor(rows, nr, &rows[i], object);
                uint32_t bits = expand_owner(rows[i].bits);
                for (int k = 0; !table_row && k < nr; k++) /* once, as PostgreSQL's view */
                    if (strcmp(rows[k].object, object) == 0 &&
                        strcmp(rows[k].grantee, rows[i].grantee) == 0 &&
                        strcmp(shown_grantor(rows, nr, &rows[k], object), grantor) == 0)
                        bits &= ~(expand_owner(rows[k].bits) & PRIV_COLUMN_BITS);
                for (size_t b = 0; b < BASE_ARRAY_LEN(order) && rc == 0; b++)
                    if (bits & order[b])
                        rc = fn(arg, tt->name, tt->cols[c].name, grantor, rows[i].grantee,
                                priv_word(order[b]),
                                ((bits >> SQLV__PRIV_GRANT_SHIFT) & order[b]) != 0);
            }
        }
    }
    base_free(rows);
    return rc;
}

/* ---- pg_class.relacl -------------------------------------------------------------- */

struct sqlv__priv_rows {
    priv_row *rows; /* owner: this */
    int n;
};

int sqlv__priv_rows_read(txn *kv, sqlv__priv_rows **out, txn_error *err) {
    *out = NULL;
    sqlv__priv_rows *p = base_calloc(1, sizeof(*p)); /* owner: the caller */
    if (p == NULL) {
        txn_error_set(err, TXN_ERR_NOMEM);
        return TXN_ERR_NOMEM;
    }
    int rc = rows_list(kv, &p->rows, &p->n, err);
    if (rc != TXN_OK) {
        base_free(p);
        return rc;
    }
    *out = p;
    return TXN_OK;
}

void sqlv__priv_rows_free(sqlv__priv_rows *p) {
    if (p == NULL) return;
    base_free(p->rows);
    base_free(p);
}

/* PostgreSQL's aclitem letters, in its order (DROP has none: Meridian's own). */
static const struct {
    uint32_t bit;
    char letter;
} acl_letters[] = {{SQLV__PRIV_INSERT, 'a'},     {SQLV__PRIV_SELECT, 'r'},
                   {SQLV__PRIV_UPDATE, 'w'},     {SQLV__PRIV_DELETE, 'd'},
                   {SQLV__PRIV_TRUNCATE, 'D'},   {SQLV__PRIV_REFERENCES, 'x'},
                   {SQLV__PRIV_TRIGGER, 't'},
                   {SQLV__PRIV_USAGE, 'U'}};

/* A role name as aclitem text writes it: quoted unless letters, digits, _. */
static int acl_name(base_buf *b, const char *name) {
    bool plain = name[0] != 0;
    for (const char *c = name; *c; c++)
        plain = plain && ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                          (*c >= '0' && *c <= '9') || *c == '_');
    if (plain) return base_buf_append(b, name, strlen(name));
    int rc = base_buf_append(b, "\"", 1);
    for (const char *c = name; *c && rc == 0; c++)
        rc = base_buf_append(b, *c == '"' ? "\"\"" : c, *c == '"' ? 2 : 1);
    return rc == 0 ? base_buf_append(b, "\"", 1) : rc;
}

/* One "grantee=letters/grantor" (grantee "" for PUBLIC); nothing when no
** letter is left. options: print each grant option as '*'. */
static int acl_item(base_buf *b, const char *grantee, uint32_t bits, uint32_t allowed,
                    bool options, const char *grantor) {
    char letters[2 * BASE_ARRAY_LEN(acl_letters) + 1];
    size_t n = 0;
    for (size_t i = 0; i < BASE_ARRAY_LEN(acl_letters); i++) {
        if ((bits & allowed & acl_letters[i].bit) == 0) continue;
        letters[n++] = acl_letters[i].letter;
        if (options && ((bits >> SQLV__PRIV_GRANT_SHIFT) & acl_letters[i].bit)) letters[n++] = '*';
    }
    if (n == 0) return 0;
    int rc = b->len > 1 ? base_buf_append(b, ",", 1) : 0; /* after the "{" */
    if (rc == 0 && strcmp(grantee, PRIV_PUBLIC) != 0) rc = acl_name(b, grantee);
    if (rc == 0) rc = base_buf_append(b, "=", 1);
    if (rc == 0) rc = base_buf_append(b, letters, n);
    if (rc == 0) rc = base_buf_append(b, "/", 1);
    if (rc == 0) rc = acl_name(b, grantor);
    return rc;
}

int sqlv__priv_relacl(const sqlv__priv_rows *p, uint32_t id, bool sequence, base_buf *out,
                      bool *null) {
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    uint32_t allowed = sequence ? SQLV__PRIV_SEQUENCE_ALL
                                : SQLV__PRIV_TABLE_ALL & ~(uint32_t)SQLV__PRIV_DROP;
    const char *owner = SQLV__ROLE_ROOT; /* an object without an owner row: root's */
    bool granted = false;
    table_object(id, object);
    *null = true;
    for (int i = 0; i < p->n; i++) {
        if (strcmp(p->rows[i].object, object) != 0) continue;
        if (p->rows[i].bits & SQLV__PRIV_OWNER) owner = p->rows[i].grantee;
        if (p->rows[i].bits & ~(uint32_t)SQLV__PRIV_OWNER) granted = true;
    }
    if (!granted) return 0; /* NULL: the owner's defaults, as PostgreSQL before any GRANT */
    *null = false;
    base_buf_reset(out);
    /* the owner first, its rights implicit (no '*'), as PostgreSQL's acldefault */
    int rc = base_buf_append(out, "{", 1);
    if (rc == 0) rc = acl_item(out, owner, allowed, allowed, false, owner);
    for (int i = 0; i < p->n && rc == 0; i++) {
        const priv_row *r = &p->rows[i];
        if (strcmp(r->object, object) != 0) continue;
        rc = acl_item(out, r->grantee, r->bits, allowed, true,
                      shown_grantor(p->rows, p->n, r, object));
    }
    if (rc == 0) rc = base_buf_append(out, "}", 2); /* with its NUL */
    return rc == 0 ? 0 : SQLV_ERR_NOMEM;
}

/* ---- owners in pg_class, has_*_privilege, ALTER TABLE ... OWNER TO ------------------ */

const char *sqlv__priv_owner(const sqlv__priv_rows *p, uint32_t id) {
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    table_object(id, object);
    for (int i = 0; p != NULL && i < p->n; i++)
        if (strcmp(p->rows[i].object, object) == 0 && (p->rows[i].bits & SQLV__PRIV_OWNER))
            return p->rows[i].grantee;
    return NULL;
}

/* The bits user holds on object by w's rows; on 'a', on any column of the
** table object. */
static uint32_t held_by(const priv_work *w, const char *object, char on, const char *user) {
    if (on != 'a') return held_on(w, object, user);
    uint32_t b = 0;
    for (int i = 0; i < w->n; i++)
        if (column_of(w->rows[i].object, object) &&
            (strcmp(w->rows[i].grantee, PRIV_PUBLIC) == 0 ||
             sqlv__role_in(w->members, w->nm, user, w->rows[i].grantee)))
            b |= w->rows[i].bits;
    return b;
}

int sqlv__priv_held(sqlv_session *s, const char *user, char on, uint32_t id, const char *column,
                    uint32_t *bits, txn_error *err) {
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    priv_work w;
    txn *own = NULL, *kv = s->kv;
    memset(&w, 0, sizeof(w));
    *bits = 0;
    if (strcmp(user, SQLV__ROLE_ROOT) == 0) {
        *bits = UINT32_MAX;
        return TXN_OK;
    }
    if (on == 'd') database_object(s->database, object);
    else if (on != 'c') table_object(id, object);
    else if (column_object(id, column, object) != 0) return TXN_OK; /* no such column */
    if (strcmp(user, s->user) == 0) { /* the session's cache: no scan */
        sqlv__priv_cache *c;
        int rc = cache_get(s, &c, false, err);
        if (rc != TXN_OK) return rc;
        if (c->admin) {
            *bits = UINT32_MAX;
        } else if (on != 'a') {
            *bits = effective(c, object);
        } else {
            for (int i = 0; i < c->n; i++)
                if (column_of(c->items[i].object, object)) *bits |= c->items[i].bits;
        }
        return TXN_OK;
    }
    if (kv == NULL) {
        txn_options o = {.read_only = true};
        int rc = txn_begin(s->engine->db, &o, &own);
        if (rc != TXN_OK) {
            txn_error_set(err, rc);
            return rc;
        }
        kv = own;
    }
    int rc = sqlv__memberships_list(kv, &w.members, &w.nm, err);
    if (rc == TXN_OK && sqlv__role_in(w.members, w.nm, user, SQLV__ROLE_ADMIN))
        *bits = UINT32_MAX;
    else if (rc == TXN_OK && (rc = rows_list(kv, &w.rows, &w.n, err)) == TXN_OK)
        *bits = held_by(&w, object, on, user);
    if (own != NULL) txn_rollback(own); /* read only: nothing to commit */
    work_free(&w);
    return rc;
}

int sqlv__priv_role_known(sqlv_session *s, const char *role, bool *found, txn_error *err) {
    txn *own = NULL, *kv = s->kv;
    *found = strcmp(role, s->user) == 0 || strcmp(role, PRIV_PUBLIC) == 0;
    if (*found) return TXN_OK;
    if (kv == NULL) {
        txn_options o = {.read_only = true};
        int rc = txn_begin(s->engine->db, &o, &own);
        if (rc != TXN_OK) {
            txn_error_set(err, rc);
            return rc;
        }
        kv = own;
    }
    int rc = role_exists(kv, role, found, err);
    if (own != NULL) txn_rollback(own); /* read only: nothing to commit */
    return rc;
}

int sqlv__priv_role_member(sqlv_session *s, const char *user, const char *role, bool *member,
                           txn_error *err) {
    sqlv__membership *members = NULL;
    txn *own = NULL, *kv = s->kv;
    int nm = 0;
    *member = strcmp(user, SQLV__ROLE_ROOT) == 0 || strcmp(user, role) == 0;
    if (*member) return TXN_OK;
    if (kv == NULL) {
        txn_options o = {.read_only = true};
        int rc = txn_begin(s->engine->db, &o, &own);
        if (rc != TXN_OK) {
            txn_error_set(err, rc);
            return rc;
        }
        kv = own;
    }
    int rc = sqlv__memberships_list(kv, &members, &nm, err);
    if (rc == TXN_OK)
        *member = sqlv__role_in(members, nm, user, SQLV__ROLE_ADMIN) ||
                  sqlv__role_in(members, nm, user, role);
    if (own != NULL) txn_rollback(own); /* read only: nothing to commit */
    base_free(members);
    return rc;
}

/* ALTER TABLE t OWNER TO role through kv: t is table id (its sequences
** seqs, which follow it); state/msg set on a refusal. PostgreSQL's order:
** 42704 an unknown role; nothing when role owns it already; then, for a
** non-admin, 42501 unless the user is in t's owner, in role, and role
** holds CREATE where tables are made (PostgreSQL: the schema's; here the
** database's). */
static int table_owner(sqlv_session *s, txn *kv, const char *table, uint32_t id,
                       const sqlv__seq_def *seqs, int nseqs, const char *role, char state[6],
                       char *msg, size_t msg_size, txn_error *err) {
    char object[PRIV_OBJECT_BYTES_MAX + 1], from[SQLV__NAME_BYTES_MAX + 1];
    bool admin = false, found = false;
    priv_work w;
    memset(&w, 0, sizeof(w));
    state[0] = 0;
    int rc = sqlv__role_is_admin(kv, s->user, &admin, err);
    if (rc != TXN_OK) return rc;
    if ((rc = role_exists(kv, role, &found, err)) != TXN_OK) goto done;
    if (!found) {
        base_strlcpy(state, "42704", 6);
        snprintf(msg, msg_size, "role \"%.63s\" does not exist", role);
        goto done;
    }
    if ((rc = sqlv__memberships_list(kv, &w.members, &w.nm, err)) != TXN_OK) goto done;
    if ((rc = rows_list(kv, &w.rows, &w.n, err)) != TXN_OK) goto done;
    w.cap = w.n;
    if ((w.dirty = base_calloc((size_t)w.n + 1, sizeof(*w.dirty))) == NULL) goto nomem;
    table_object(id, object);
    const char *old = owner_of(&w, object);
    base_strlcpy(from, old != NULL ? old : SQLV__ROLE_ROOT, sizeof(from));
    if (strcmp(from, role) == 0) goto done; /* already its owner: PostgreSQL checks nothing */
    if (!admin && !sqlv__role_in(w.members, w.nm, s->user, from)) {
        base_strlcpy(state, "42501", 6);
        snprintf(msg, msg_size, "must be owner of table %.63s", table);
        goto done;
    }
    if (!admin && !sqlv__role_in(w.members, w.nm, s->user, role)) {
        base_strlcpy(state, "42501", 6);
        snprintf(msg, msg_size, "must be member of role \"%.63s\"", role);
        goto done;
    }
    if (!admin && !sqlv__role_in(w.members, w.nm, role, SQLV__ROLE_ADMIN)) {
        char db[PRIV_OBJECT_BYTES_MAX + 1];
        database_object(s->database, db);
        if ((held_on(&w, db, role) & SQLV__PRIV_CREATE) == 0) {
            base_strlcpy(state, "42501", 6);
            snprintf(msg, msg_size, "permission denied for schema public");
            goto done;
        }
    }
    if (owner_move(&w, object, from, role, true) != 0) goto nomem;
    for (int i = 0; i < nseqs; i++) { /* PostgreSQL moves the sequences its columns own */
        char seq[PRIV_OBJECT_BYTES_MAX + 1], seq_from[SQLV__NAME_BYTES_MAX + 1];
        if (sqlite3_stricmp(seqs[i].owner_table, table) != 0) continue;
        table_object(seqs[i].id, seq);
        const char *o = owner_of(&w, seq);
        base_strlcpy(seq_from, o != NULL ? o : from, sizeof(seq_from));
        if (owner_move(&w, seq, seq_from, role, o != NULL) != 0) goto nomem;
    }
    if ((rc = rows_write(&w, kv, err)) == TXN_OK)
        rc = sqlv__catalog_bump_version(kv, err); /* every session's cache goes stale */
    goto done;
nomem:
    rc = TXN_ERR_NOMEM;
    txn_error_set(err, rc);
done:
    work_free(&w);
    return rc;
}

/* One try of ALTER TABLE ... OWNER TO through kv and cat (NULL: the
** session's own tables, in its block). *missing when there is no table. */
static int table_owner_attempt(sqlv_session *s, txn *kv, const sqlv__catalog *cat,
                               const char *table, const char *role, bool *missing, char state[6],
                               char *msg, size_t msg_size, txn_error *err) {
    sqlv__seq_def *seqs = NULL;
    int nseqs = 0;
    const sqlv__table *t = cat != NULL ? sqlv__catalog_find(cat, table)
                                       : sqlv__session_find_table(s, table);
    *missing = t == NULL;
    state[0] = 0;
    if (t == NULL) return TXN_OK;
    uint32_t id = t->id;
    int rc = sqlv__seq_list(kv, &seqs, &nseqs, err);
    if (rc == TXN_OK)
        rc = table_owner(s, kv, t->name, id, seqs, nseqs, role, state, msg, msg_size, err);
    base_free(seqs);
    return rc;
}

int sqlv__priv_alter_table_owner(sqlv__run *r, const char *table, bool if_exists, const char *p,
                                 const char *end) {
    sqlv_session *s = r->s;
    char role[SQLV__NAME_BYTES_MAX * 4 + 1], state[6] = {0}, msg[200];
    txn_error err = {{0}, {0}};
    bool missing = false;
    int rc = TXN_OK;
    /* TO role | CURRENT_USER | SESSION_USER | CURRENT_ROLE (the dialect's "current_user()") */
    sqlv__token t = sqlv__lex_next(&p, end);
    if (!sqlv__tok_is(&t, "TO")) return sqlv__fail(r, "42601", "syntax error in ALTER TABLE");
    t = sqlv__lex_next(&p, end);
    bool current = t.kind == SQLV__TOK_WORD &&
                   (sqlv__tok_is(&t, "CURRENT_USER") || sqlv__tok_is(&t, "SESSION_USER") ||
                    sqlv__tok_is(&t, "CURRENT_ROLE"));
    if (sqlv__tok_ident(&t, role, sizeof(role)) != 0)
        return sqlv__fail(r, "42601", "syntax error in ALTER TABLE ... OWNER TO");
    if (t.kind == SQLV__TOK_WORD)
        for (char *c = role; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    t = sqlv__lex_next(&p, end);
    if (current && sqlv__tok_punct(&t, '(')) {
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_punct(&t, ')')) return sqlv__fail(r, "42601", "syntax error in ALTER TABLE");
        t = sqlv__lex_next(&p, end);
    }
    if (t.kind != SQLV__TOK_END)
        return sqlv__fail(r, "0A000", "ALTER TABLE with more than one action is not supported yet");
    if (current) base_strlcpy(role, s->user, sizeof(role));
    if (strlen(role) > SQLV__NAME_BYTES_MAX) {
        snprintf(msg, sizeof(msg), "role \"%.63s\" does not exist", role);
        return sqlv__fail(r, "42704", msg);
    }
    if (s->status == 'T') {
        uint32_t sp;
        if (s->kv == NULL && (rc = sqlv__session_begin(s, false, &err)) != TXN_OK)
            return sqlv__fail_txn(r, rc, &err);
        if ((rc = txn_savepoint(s->kv, &sp)) != TXN_OK) return sqlv__fail_txn(r, rc, &err);
        rc = table_owner_attempt(s, s->kv, NULL, table, role, &missing, state, msg, sizeof(msg),
                                 &err);
        if (rc != TXN_OK || state[0]) (void)txn_rollback_to(s->kv, sp);
        else (void)txn_release(s->kv, sp);
    } else {
        for (int attempt = 0; attempt < PRIV_RETRIES_MAX; attempt++) {
            txn *kv = NULL;
            sqlv__catalog *cat = sqlv__engine_catalog(s->engine);
            memset(&err, 0, sizeof(err));
            if (attempt > 0) {
                struct timespec ts = {0, (long)PRIV_RETRY_PAUSE_US * 1000 * attempt};
                nanosleep(&ts, NULL);
            }
            if ((rc = txn_begin(s->engine->db, NULL, &kv)) != TXN_OK) {
                txn_error_set(&err, rc);
                sqlv__catalog_unref(cat);
                break;
            }
            rc = sqlv__engine_catalog_at(s->engine, kv, &cat, &err);
            if (rc == TXN_OK)
                rc = table_owner_attempt(s, kv, cat, table, role, &missing, state, msg,
                                         sizeof(msg), &err);
            sqlv__catalog_unref(cat);
            if (rc != TXN_OK || state[0] || missing) {
                txn_rollback(kv);
                if (rc == TXN_ERR_RETRY) continue;
                break;
            }
            rc = txn_commit(kv, NULL, &err); /* frees kv */
            if (rc != TXN_ERR_RETRY) break;
        }
    }
    if (rc != TXN_OK) return sqlv__fail_txn(r, rc, &err);
    if (state[0]) return sqlv__fail(r, state, msg);
    if (missing) {
        snprintf(msg, sizeof(msg), "relation \"%.63s\" does not exist%s", table,
                 if_exists ? ", skipping" : "");
        if (!if_exists) return sqlv__fail(r, "42P01", msg);
        if (r->sink_rc == 0 && r->sink->notice) r->sink_rc = r->sink->notice(r->sink->ctx, msg);
        return STMT_OK;
    }
    sqlv__priv_invalidate(s);
    return STMT_OK;
}

/* ---- REASSIGN OWNED, DROP OWNED ----------------------------------------------------- */

/* One role of a BY or TO list into out: a name (folded unless quoted), or
** CURRENT_USER / SESSION_USER / CURRENT_ROLE (the dialect's
** "current_user()"): the session's user. *t: the token after it. */
static int owned_role(sqlv_session *s, sqlv__token *t, const char **p, const char *end,
                      char out[SQLV__NAME_BYTES_MAX + 1], char state[6], char *msg,
                      size_t msg_size) {
    char name[SQLV__NAME_BYTES_MAX * 4 + 1];
    bool current = t->kind == SQLV__TOK_WORD &&
                   (sqlv__tok_is(t, "CURRENT_USER") || sqlv__tok_is(t, "SESSION_USER") ||
                    sqlv__tok_is(t, "CURRENT_ROLE"));
    if (sqlv__tok_ident(t, name, sizeof(name)) != 0) {
        base_strlcpy(state, "42601", 6);
        snprintf(msg, msg_size, "syntax error at or near \"%.*s\"",
                 (int)BASE_MIN(t->len, 60), t->start ? t->start : "");
        return 1;
    }
    if (t->kind == SQLV__TOK_WORD)
        for (char *c = name; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    *t = sqlv__lex_next(p, end);
    if (current && sqlv__tok_punct(t, '(')) {
        *t = sqlv__lex_next(p, end);
        if (!sqlv__tok_punct(t, ')')) {
            base_strlcpy(state, "42601", 6);
            snprintf(msg, msg_size, "syntax error at or near \"(\"");
            return 1;
        }
        *t = sqlv__lex_next(p, end);
    }
    if (current) base_strlcpy(name, s->user, sizeof(name));
    if (strlen(name) > SQLV__NAME_BYTES_MAX) {
        base_strlcpy(state, "42704", 6);
        snprintf(msg, msg_size, "role \"%.63s\" does not exist", name);
        return 1;
    }
    base_strlcpy(out, name, SQLV__NAME_BYTES_MAX + 1);
    return 0;
}

int sqlv__priv_owned_parse(sqlv_session *s, const char *p, const char *end, bool reassign,
                           sqlv__owned_stmt *o, char state[6], char *msg, size_t msg_size) {
    memset(o, 0, sizeof(*o));
    state[0] = 0;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (!sqlv__tok_is(&t, "BY")) goto syntax;
    t = sqlv__lex_next(&p, end);
    for (;;) {
        if (o->nroles == SQLV__ROLE_NAMES_MAX) {
            base_strlcpy(state, "54000", 6);
            snprintf(msg, msg_size, "too many role names in one statement (maximum %d)",
                     SQLV__ROLE_NAMES_MAX);
            return 1;
        }
        if (owned_role(s, &t, &p, end, o->roles[o->nroles], state, msg, msg_size) != 0) return 1;
        o->nroles++;
        if (!sqlv__tok_punct(&t, ',')) break;
        t = sqlv__lex_next(&p, end);
    }
    if (reassign) {
        if (!sqlv__tok_is(&t, "TO")) goto syntax;
        t = sqlv__lex_next(&p, end);
        if (owned_role(s, &t, &p, end, o->to, state, msg, msg_size) != 0) return 1;
    } else if (sqlv__tok_is(&t, "CASCADE") || sqlv__tok_is(&t, "RESTRICT")) {
        o->cascade = sqlv__tok_is(&t, "CASCADE");
        t = sqlv__lex_next(&p, end);
    }
    if (t.kind == SQLV__TOK_END) return 0;
syntax:
    base_strlcpy(state, "42601", 6);
    if (t.kind == SQLV__TOK_END)
        snprintf(msg, msg_size, "syntax error at end of input");
    else
        snprintf(msg, msg_size, "syntax error at or near \"%.*s\"", (int)BASE_MIN(t.len, 60),
                 t.start);
    return 1;
}

void sqlv__priv_owned_free(sqlv__owned_stmt *o) {
    base_free(o->ids);
    o->ids = NULL;
    o->nids = 0;
}

static bool owned_named(const sqlv__owned_stmt *o, const char *role) {
    for (int j = 0; j < o->nroles; j++)
        if (strcmp(o->roles[j], role) == 0) return true;
    return false;
}

/* The checks both statements share, PostgreSQL's order: every role exists
** (42704), the user has the privileges of each (and of the new owner:
** 42501), root's objects stay (2BP01, PostgreSQL's pinned bootstrap
** superuser). w->members read. TXN_OK (state set on a refusal) or a txn
** error. */
static int owned_allowed(sqlv_session *s, txn *kv, const sqlv__owned_stmt *o, bool reassign,
                         priv_work *w, char state[6], char *msg, size_t msg_size,
                         txn_error *err) {
    bool admin = false, found = false;
    int rc = sqlv__role_is_admin(kv, s->user, &admin, err);
    for (int j = 0; rc == TXN_OK && j <= o->nroles; j++) {
        const char *role = j < o->nroles ? o->roles[j] : o->to;
        if (j == o->nroles && !reassign) break;
        if ((rc = role_exists(kv, role, &found, err)) != TXN_OK) break;
        if (!found) {
            base_strlcpy(state, "42704", 6);
            snprintf(msg, msg_size, "role \"%.63s\" does not exist", role);
            return TXN_OK;
        }
    }
    if (rc == TXN_OK) rc = sqlv__memberships_list(kv, &w->members, &w->nm, err);
    if (rc != TXN_OK) return rc;
    for (int j = 0; !admin && j <= o->nroles; j++) {
        const char *role = j < o->nroles ? o->roles[j] : o->to;
        if (j == o->nroles && !reassign) break;
        if (sqlv__role_in(w->members, w->nm, s->user, role)) continue;
        base_strlcpy(state, "42501", 6);
        snprintf(msg, msg_size, "permission denied to %s objects",
                 reassign ? "reassign" : "drop");
        return TXN_OK;
    }
    for (int j = 0; j < o->nroles; j++) {
        if (strcmp(o->roles[j], SQLV__ROLE_ROOT) != 0) continue;
        base_strlcpy(state, "2BP01", 6);
        snprintf(msg, msg_size,
                 "cannot %s objects owned by role %s because they are required by the "
                 "database system",
                 reassign ? "reassign ownership of" : "drop", SQLV__ROLE_ROOT);
        return TXN_OK;
    }
    return TXN_OK;
}

/* One try of REASSIGN OWNED through kv with catalog cat: every live table,
** view and sequence whose owner row names one of o's roles moves to o->to
** as ALTER ... OWNER TO moves it (the old owner's grants go with it; a
** SERIAL's sequence, which has no owner row, follows its table). */
static int reassign_attempt(sqlv_session *s, txn *kv, const sqlv__catalog *cat,
                            const sqlv__owned_stmt *o, char state[6], char *msg, size_t msg_size,
                            txn_error *err) {
    typedef struct {
        char object[PRIV_OBJECT_BYTES_MAX + 1];
        char from[SQLV__NAME_BYTES_MAX + 1];
    } moved;
    moved *m = NULL; /* owner: this function */
    sqlv__seq_def *seqs = NULL;
    int nseqs = 0, nm = 0;
    priv_work w;
    memset(&w, 0, sizeof(w));
    state[0] = 0;
    int rc = owned_allowed(s, kv, o, true, &w, state, msg, msg_size, err);
    if (rc != TXN_OK || state[0]) goto done;
    if ((rc = rows_list(kv, &w.rows, &w.n, err)) != TXN_OK) goto done;
    if ((rc = sqlv__seq_list(kv, &seqs, &nseqs, err)) != TXN_OK) goto done;
    w.cap = w.n;
    w.dirty = base_calloc((size_t)w.n + 1, sizeof(*w.dirty));
    m = base_calloc((size_t)w.n + 1, sizeof(*m));
    if (w.dirty == NULL || m == NULL) goto nomem;
    for (int i = 0; i < w.n; i++) { /* first the list: owner_move changes the rows */
        const priv_row *r = &w.rows[i];
        if ((r->bits & SQLV__PRIV_OWNER) == 0 || r->object[0] != 't' ||
            !owned_named(o, r->grantee) || strcmp(r->grantee, o->to) == 0 ||
            !object_live(r->object, cat, seqs, nseqs))
            continue;
        base_strlcpy(m[nm].object, r->object, sizeof(m[nm].object));
        base_strlcpy(m[nm].from, r->grantee, sizeof(m[nm].from));
        nm++;
    }
    for (int i = 0; i < nm; i++)
        if (owner_move(&w, m[i].object, m[i].from, o->to, true) != 0) goto nomem;
    if (nm > 0 && (rc = rows_write(&w, kv, err)) == TXN_OK)
        rc = sqlv__catalog_bump_version(kv, err); /* every session's cache goes stale */
    goto done;
nomem:
    rc = TXN_ERR_NOMEM;
    txn_error_set(err, rc);
done:
    work_free(&w);
    base_free(seqs);
    base_free(m);
    return rc;
}

int sqlv__priv_reassign_owned(sqlv__run *r, const char *p, const char *end) {
    sqlv_session *s = r->s;
    char state[6] = {0}, msg[200];
    txn_error err = {{0}, {0}};
    int rc = TXN_OK;
    sqlv__owned_stmt *o = base_calloc(1, sizeof(*o)); /* owner: this function */
    if (o == NULL) return sqlv__fail(r, "53200", "out of memory");
    if (sqlv__priv_owned_parse(s, p, end, true, o, state, msg, sizeof(msg)) != 0) {
        base_free(o);
        return sqlv__fail(r, state, msg);
    }
    if (s->status == 'T') {
        uint32_t sp;
        if (s->kv == NULL && (rc = sqlv__session_begin(s, false, &err)) != TXN_OK) goto done;
        if ((rc = txn_savepoint(s->kv, &sp)) != TXN_OK) goto done;
        rc = reassign_attempt(s, s->kv, s->cat, o, state, msg, sizeof(msg), &err);
        if (rc != TXN_OK || state[0]) (void)txn_rollback_to(s->kv, sp);
        else (void)txn_release(s->kv, sp);
    } else {
        for (int attempt = 0; attempt < PRIV_RETRIES_MAX; attempt++) {
            txn *kv = NULL;
            sqlv__catalog *cat = sqlv__engine_catalog(s->engine);
            memset(&err, 0, sizeof(err));
            state[0] = 0;
            if (attempt > 0) {
                struct timespec ts = {0, (long)PRIV_RETRY_PAUSE_US * 1000 * attempt};
                nanosleep(&ts, NULL);
            }
            if ((rc = txn_begin(s->engine->db, NULL, &kv)) != TXN_OK) {
                txn_error_set(&err, rc);
                sqlv__catalog_unref(cat);
                break;
            }
            rc = sqlv__engine_catalog_at(s->engine, kv, &cat, &err);
            if (rc == TXN_OK) rc = reassign_attempt(s, kv, cat, o, state, msg, sizeof(msg), &err);
            sqlv__catalog_unref(cat);
            if (rc != TXN_OK || state[0]) {
                txn_rollback(kv);
                if (rc == TXN_ERR_RETRY) continue;
                break;
            }
            rc = txn_commit(kv, NULL, &err); /* frees kv */
            if (rc != TXN_ERR_RETRY) break;
        }
    }
done:
    base_free(o);
    if (rc != TXN_OK) return sqlv__fail_txn(r, rc, &err);
    if (state[0]) return sqlv__fail(r, state, msg);
    sqlv__priv_invalidate(s);
    if (r->sink_rc == 0 && r->sink->command_complete)
        r->sink_rc = r->sink->command_complete(r->sink->ctx, "REASSIGN OWNED");
    return STMT_OK;
}

int sqlv__priv_drop_owned_check(sqlv_session *s, txn *kv, sqlv__owned_stmt *o, char state[6],
                                char *msg, size_t msg_size, txn_error *err) {
    priv_work w;
    memset(&w, 0, sizeof(w));
    state[0] = 0;
    sqlv__priv_owned_free(o);
    int rc = owned_allowed(s, kv, o, false, &w, state, msg, msg_size, err);
    if (rc != TXN_OK || state[0]) goto done;
    if ((rc = rows_list(kv, &w.rows, &w.n, err)) != TXN_OK) goto done;
    if ((o->ids = base_calloc((size_t)w.n + 1, sizeof(*o->ids))) == NULL) {
        rc = TXN_ERR_NOMEM;
        txn_error_set(err, rc);
        goto done;
    }
    for (int i = 0; i < w.n; i++) {
        unsigned id;
        char tail;
        if ((w.rows[i].bits & SQLV__PRIV_OWNER) && owned_named(o, w.rows[i].grantee) &&
            sscanf(w.rows[i].object, "t:%u%c", &id, &tail) == 1)
            o->ids[o->nids++] = id; /* live or not: the caller looks them up */
    }
done:
    work_free(&w);
    return rc;
}

int sqlv__priv_drop_owned_revoke(txn *kv, const sqlv__owned_stmt *o, txn_error *err) {
    priv_work w;
    priv_op *op = base_calloc(1, sizeof(*op)); /* owner: this function (the cascade's flag) */
    memset(&w, 0, sizeof(w));
    int rc = TXN_OK;
    if (op == NULL) goto nomem;
    op->cascade = true; /* PostgreSQL revokes with DROP_CASCADE */
    if ((rc = rows_list(kv, &w.rows, &w.n, err)) != TXN_OK) goto done;
    w.cap = w.n;
    if ((w.dirty = base_calloc((size_t)w.n + 1, sizeof(*w.dirty))) == NULL) goto nomem;
    int n = w.n; /* take_bits adds no row */
    for (int i = 0; i < n; i++)
        if ((owned_named(o, w.rows[i].grantee) || owned_named(o, w.rows[i].grantor)) &&
            take_bits(&w, i, 0xFFFFFFFFu) != 0)
            goto nomem;
    if (revoke_dependents(&w, op) == SQLV_ERR_NOMEM) goto nomem;
    if ((rc = rows_write(&w, kv, err)) == TXN_OK)
        rc = sqlv__catalog_bump_version(kv, err); /* every session's cache goes stale */
    goto done;
nomem:
    rc = TXN_ERR_NOMEM;
    txn_error_set(err, rc);
done:
    work_free(&w);
    base_free(op);
    return rc;
}
