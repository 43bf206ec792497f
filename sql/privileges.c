/*
** Privileges (issue 9, docs/security.md "Authorization"): GRANT and REVOKE
** of SELECT, INSERT, UPDATE, DELETE, DROP on tables and CREATE, DROP on the
** database, SHOW GRANTS, table owners, and the per-session cache of the
** effective privileges that every check reads (format: sql_int.h,
** "privileges").
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
**   - every GRANT/REVOKE of a privilege or of a role membership bumps the
**     catalog version in its own transaction, so a session's cache, tagged
**     with the catalog version it was read at, is stale exactly when a
**     newer privilege state may exist: it is read again (one scan) at the
**     first check of a transaction that sees a new version, never per
**     statement otherwise.
**   - a denied statement fails before it writes anything: checks run at
**     prepare time (SQLite's authorizer) or before the statement's first
**     write (DDL, cluster settings, range operations).
**   - privilege rows name tables by id: ids are never reused, so a dropped
**     table's rows can never apply to another table.
**   - every loop is bounded: SQLV__PRIVILEGES_MAX rows per scan,
**     SQLV__ROLE_NAMES_MAX names per statement.
*/
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sql_int.h"
#include "sql_lex.h"

#define MOD "sql"
#define PRIV_FORMAT_VERSION 1
#define PRIV_RETRIES_MAX 10 /* an implicit GRANT/REVOKE, tried this often on 40001 */
#define PRIV_RETRY_PAUSE_US 2000
#define PRIV_OBJECT_BYTES_MAX 80
#define PRIV_OBJECTS_MAX 64 /* tables in one GRANT/REVOKE/SHOW GRANTS ON */
#define PRIV_PUBLIC "public" /* the grantee every role is in (never a role's name) */

enum { STMT_OK = 0, STMT_FAILED = 1 };

/* One effective (object, bits) of the session's user. */
typedef struct priv_entry {
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    uint32_t bits;
} priv_entry;

struct sqlv__priv_cache {
    bool valid;
    uint64_t version; /* the catalog version it was read at */
    bool admin;
    priv_entry *items; /* owner: this cache */
    int n;
};

/* ---- keys and records ------------------------------------------------------------ */

static void table_object(uint32_t id, char out[PRIV_OBJECT_BYTES_MAX + 1]) {
    snprintf(out, PRIV_OBJECT_BYTES_MAX + 1, "t:%u", id);
}

static void database_object(const char *name, char out[PRIV_OBJECT_BYTES_MAX + 1]) {
    snprintf(out, PRIV_OBJECT_BYTES_MAX + 1, "d:%.63s", name);
}

static int priv_key(base_buf *out, const char *object, const char *grantee) {
    enc_value v;
    v.type = ENC_TEXT;
    if (enc_key_prefix(out, SQLV__PRIVILEGES_TABLE_ID, SQLV__ROW_INDEX_ID) != ENC_OK)
        return SQLV_ERR_NOMEM;
    const char *parts[2] = {object, grantee};
    for (int i = 0; i < 2; i++) {
        v.u.bytes.data = (const uint8_t *)parts[i];
        v.u.bytes.len = strlen(parts[i]);
        if (enc_key_append(out, &v) != ENC_OK) return SQLV_ERR_NOMEM;
    }
    return 0;
}

typedef struct priv_row {
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    char grantee[SQLV__NAME_BYTES_MAX + 1];
    uint32_t bits;
} priv_row;

static int priv_encode(const priv_row *p, base_buf *out) {
    size_t ol = strlen(p->object), gl = strlen(p->grantee);
    uint8_t hdr[5] = {PRIV_FORMAT_VERSION, (uint8_t)(p->bits >> 24), (uint8_t)(p->bits >> 16),
                      (uint8_t)(p->bits >> 8), (uint8_t)p->bits};
    uint8_t olen = (uint8_t)ol, glen = (uint8_t)gl;
    assert(ol <= PRIV_OBJECT_BYTES_MAX && gl <= SQLV__NAME_BYTES_MAX);
    base_buf_reset(out);
    if (base_buf_append(out, hdr, sizeof(hdr)) != 0 || base_buf_append(out, &olen, 1) != 0 ||
        base_buf_append(out, p->object, ol) != 0 || base_buf_append(out, &glen, 1) != 0 ||
        base_buf_append(out, p->grantee, gl) != 0)
        return SQLV_ERR_NOMEM;
    return 0;
}

/* Bytes from the disk: never trusted. 0, or -1 when malformed. */
static int priv_decode(const uint8_t *v, size_t n, priv_row *p) {
    memset(p, 0, sizeof(*p));
    if (n < 6 || v[0] != PRIV_FORMAT_VERSION) return -1;
    p->bits = (uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 8 | v[4];
    size_t ol = v[5];
    if (ol == 0 || ol > PRIV_OBJECT_BYTES_MAX || n < 6 + ol + 1) return -1;
    size_t gl = v[6 + ol];
    if (gl == 0 || gl > SQLV__NAME_BYTES_MAX || n != 6 + ol + 1 + gl) return -1;
    if (memchr(v + 6, 0, ol) != NULL || memchr(v + 7 + ol, 0, gl) != NULL) return -1;
    memcpy(p->object, v + 6, ol);
    memcpy(p->grantee, v + 7 + ol, gl);
    return 0;
}

static int malformed(txn_error *err) {
    base_strlcpy(err->sqlstate, "XX001", sizeof(err->sqlstate));
    snprintf(err->message, sizeof(err->message), "malformed privilege in the key space");
    return TXN_ERR_IO;
}

/* A row's bits with the owner's implicit rights spelled out: every table
** privilege and its grant option. */
static uint32_t expand_owner(uint32_t b) {
    if (b & SQLV__PRIV_OWNER)
        b |= SQLV__PRIV_TABLE_ALL | (SQLV__PRIV_TABLE_ALL << SQLV__PRIV_GRANT_SHIFT);
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
    base_free(c);
}

void sqlv__priv_invalidate(sqlv_session *s) {
    if (s->priv != NULL) s->priv->valid = false;
}

static bool is_root(const sqlv_session *s) { return strcmp(s->user, SQLV__ROLE_ROOT) == 0; }

/* Read the user's effective privileges through kv into c. */
static int cache_fill(sqlv_session *s, sqlv__priv_cache *c, txn *kv, txn_error *err) {
    sqlv__membership *members = NULL;
    priv_row *rows = NULL;
    int nm = 0, nr = 0;
    int rc = sqlv__memberships_list(kv, &members, &nm, err);
    if (rc != TXN_OK) return rc;
    rc = rows_list(kv, &rows, &nr, err);
    if (rc != TXN_OK) goto done;
    base_free(c->items);
    c->items = NULL;
    c->n = 0;
    c->admin = sqlv__role_in(members, nm, s->user, SQLV__ROLE_ADMIN);
    c->items = base_calloc((size_t)nr + 1, sizeof(*c->items));
    if (c->items == NULL) {
        rc = TXN_ERR_NOMEM;
        txn_error_set(err, rc);
        goto done;
    }
    for (int i = 0; i < nr; i++) {
        if (strcmp(rows[i].grantee, PRIV_PUBLIC) != 0 &&
            !sqlv__role_in(members, nm, s->user, rows[i].grantee))
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
    int rc;
    if (s->kv != NULL) {
        rc = cache_fill(s, c, s->kv, err);
    } else {
        txn_options o = {.read_only = true};
        txn *kv = NULL;
        rc = txn_begin(s->engine->db, &o, &kv);
        if (rc == TXN_OK) {
            rc = cache_fill(s, c, kv, err);
            txn_rollback(kv); /* read only: nothing to commit */
        } else {
            txn_error_set(err, rc);
        }
    }
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
    default: return "ALL";
    }
}

int sqlv__priv_authorize(sqlv_session *s, const char *table, uint32_t want) {
    if (table == NULL || is_root(s)) return SQLITE_OK;
    uint32_t id = sqlv__session_find_id(s, table);
    if (id == 0) return SQLITE_OK; /* a system catalog or no table: everyone reads them */
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    table_object(id, object);
    txn_error err = {{0}, {0}};
    int rc = holds(s, object, want, false, &err);
    if (rc == 0) return SQLITE_OK;
    if (rc < 0) {
        txn_error_set(&err, rc);
        sqlv__session_error(s, err.sqlstate[0] ? err.sqlstate : "XX000", "%s", err.message);
    } else {
        sqlv__session_error(s, "42501", "permission denied for table %s", table);
    }
    return SQLITE_DENY;
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
    if (priv_key(&key, p.object, p.grantee) == 0 && priv_encode(&p, &val) == 0)
        rc = txn_put(kv, key.data, key.len, val.data, val.len, err);
    else
        txn_error_set(err, rc);
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
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
        if (rc == TXN_OK && t != NULL) rc = put_owner(s, kv, t->id, &err);
        if (rc == TXN_OK && t != NULL) rc = sqlv__catalog_bump_version(kv, &err);
        if (rc == TXN_OK && t != NULL) {
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

/* ---- GRANT / REVOKE ---------------------------------------------------------------- */

typedef struct priv_op {
    bool grant;
    bool grant_option; /* GRANT ... WITH GRANT OPTION; REVOKE GRANT OPTION FOR ... */
    bool on_database;
    uint32_t bits;
    char objects[PRIV_OBJECTS_MAX][SQLV__NAME_BYTES_MAX * 4 + 1]; /* as written */
    int nobjects;
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
                 {"CREATE", SQLV__PRIV_CREATE}, {"DROP", SQLV__PRIV_DROP}};
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

/* GRANT {ALL [PRIVILEGES] | priv[, ...]} ON [TABLE | DATABASE] obj[, ...]
** TO role[, ...] [WITH GRANT OPTION]; REVOKE [GRANT OPTION FOR] ... FROM
** .... 0 or -1 (o->state set). */
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
    } else {
        for (int guard = 0; guard < 16; guard++) {
            uint32_t b = priv_bit(&t);
            if (b == 0) {
                if (t.kind == SQLV__TOK_WORD)
                    return op_error(o, "0LP01", "unrecognized privilege type \"%.*s\"",
                                    (int)BASE_MIN(t.len, 40), t.start);
                return syntax(o, &t);
            }
            o->bits |= b;
            t = sqlv__lex_next(&p, end);
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
    } else if (sqlv__tok_is(&t, "SCHEMA") || sqlv__tok_is(&t, "SEQUENCE") ||
               sqlv__tok_is(&t, "FUNCTION") || sqlv__tok_is(&t, "TYPE")) {
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
        if (!sqlv__tok_punct(&t, ',')) break;
        t = sqlv__lex_next(&p, end);
    }
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
    if (sqlv__tok_is(&t, "CASCADE") || sqlv__tok_is(&t, "RESTRICT")) t = sqlv__lex_next(&p, end);
    if (t.kind != SQLV__TOK_END) return syntax(o, &t);
    if (o->grant && o->grant_option)
        for (int j = 0; j < o->nroles; j++)
            if (strcmp(o->roles[j], PRIV_PUBLIC) == 0)
                return op_error(o, "0LP01", "grant options can only be granted to roles");
    uint32_t allowed = o->on_database ? SQLV__PRIV_DATABASE_ALL : SQLV__PRIV_TABLE_ALL;
    if (all) o->bits = allowed;
    uint32_t bad = o->bits & ~allowed;
    if (bad != 0)
        return op_error(o, "0LP01", "invalid privilege type %s for %s",
                        priv_word(bad & (~bad + 1)), /* the lowest one */
                        o->on_database ? "database" : "table");
    return 0;
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
    char objects[PRIV_OBJECTS_MAX][PRIV_OBJECT_BYTES_MAX + 1];
    bool owner[PRIV_OBJECTS_MAX] = {false}; /* the user owns objects[i] (through a role too) */
    for (int i = 0; i < o->nobjects; i++) {
        if (o->on_database) {
            if (sqlite3_stricmp(o->objects[i], s->database) != 0) {
                op_error(o, "3D000", "database \"%.63s\" does not exist", o->objects[i]);
                goto done;
            }
            database_object(s->database, objects[i]);
            continue;
        }
        uint32_t id = 0;
        if (in_block) {
            id = sqlv__session_find_id(s, o->objects[i]);
        } else {
            const sqlv__table *t = sqlv__catalog_find(cat, o->objects[i]);
            id = t ? t->id : 0;
        }
        if (id == 0) {
            op_error(o, "42P01", "relation \"%.63s\" does not exist", o->objects[i]);
            goto done;
        }
        table_object(id, objects[i]);
    }
    /* who may: admins; else per object the owner, or the grant option of
    ** every privilege named (held directly, through a role, or by PUBLIC) */
    if (!admin) {
        sqlv__membership *members = NULL;
        priv_row *rows = NULL;
        int nm = 0, nr = 0;
        if ((rc = sqlv__memberships_list(kv, &members, &nm, err)) == TXN_OK)
            rc = rows_list(kv, &rows, &nr, err);
        for (int i = 0; rc == TXN_OK && i < o->nobjects && !o->state[0]; i++) {
            uint32_t held = 0;
            for (int j = 0; j < nr; j++)
                if (strcmp(rows[j].object, objects[i]) == 0 &&
                    (strcmp(rows[j].grantee, PRIV_PUBLIC) == 0 ||
                     sqlv__role_in(members, nm, s->user, rows[j].grantee)))
                    held |= rows[j].bits;
            owner[i] = (held & SQLV__PRIV_OWNER) != 0;
            uint32_t need = o->bits << SQLV__PRIV_GRANT_SHIFT;
            if ((expand_owner(held) & need) == need) continue;
            if (o->on_database)
                op_error(o, "42501", "permission denied for database %.63s", s->database);
            else
                op_error(o, "42501",
                         "permission denied for table %.63s: granting and revoking its "
                         "privileges takes its owner, an admin or WITH GRANT OPTION",
                         o->objects[i]);
        }
        base_free(members);
        base_free(rows);
        if (rc != TXN_OK || o->state[0]) goto done;
    }
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
    for (int i = 0; i < o->nobjects; i++) {
        for (int j = 0; j < o->nroles; j++) {
            priv_row p;
            memset(&p, 0, sizeof(p));
            if (priv_key(&key, objects[i], o->roles[j]) != 0) {
                rc = TXN_ERR_NOMEM;
                txn_error_set(err, rc);
                goto done;
            }
            rc = txn_get(kv, key.data, key.len, &val, err);
            if (rc == TXN_OK) {
                if (priv_decode(val.data, val.len, &p) != 0) {
                    rc = malformed(err);
                    goto done;
                }
            } else if (rc != TXN_NOT_FOUND) {
                goto done;
            }
            base_strlcpy(p.object, objects[i], sizeof(p.object));
            base_strlcpy(p.grantee, o->roles[j], sizeof(p.grantee));
            uint32_t options = o->bits << SQLV__PRIV_GRANT_SHIFT;
            if (o->grant)
                p.bits |= o->bits | (o->grant_option ? options : 0);
            else /* a grant option never outlives its privilege */
                p.bits &= ~(options | (o->grant_option ? 0 : o->bits));
            if (!o->grant && !o->grant_option && (admin || owner[i]) &&
                (o->bits & SQLV__PRIV_TABLE_ALL) == SQLV__PRIV_TABLE_ALL)
                p.bits &= ~SQLV__PRIV_OWNER; /* REVOKE ALL: the owner's implicit rights too */
            if (p.bits == 0) {
                rc = txn_delete(kv, key.data, key.len, err);
            } else if (priv_encode(&p, &val) == 0) {
                rc = txn_put(kv, key.data, key.len, val.data, val.len, err);
            } else {
                rc = TXN_ERR_NOMEM;
                txn_error_set(err, rc);
            }
            if (rc != TXN_OK) goto done;
        }
    }
    rc = sqlv__catalog_bump_version(kv, err); /* every session's cache goes stale */
done:
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

/* ---- SHOW GRANTS -------------------------------------------------------------------- */

static const uint32_t show_order[] = {SQLV__PRIV_CREATE, SQLV__PRIV_DELETE, SQLV__PRIV_DROP,
                                      SQLV__PRIV_INSERT, SQLV__PRIV_SELECT, SQLV__PRIV_UPDATE};

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
        uint32_t all = table ? SQLV__PRIV_TABLE_ALL : SQLV__PRIV_DATABASE_ALL;
        uint32_t bits = expand_owner(rows[i].bits), options = bits >> SQLV__PRIV_GRANT_SHIFT;
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

/* ---- information_schema.table_privileges --------------------------------------------- */

int sqlv__priv_table_privileges(txn *kv, const sqlv__table *const *tables, int ntables,
                                sqlv__table_privilege_fn fn, void *arg, txn_error *err) {
    /* PostgreSQL's privilege types only (DROP is Meridian's own) */
    static const uint32_t order[] = {SQLV__PRIV_SELECT, SQLV__PRIV_INSERT, SQLV__PRIV_UPDATE,
                                     SQLV__PRIV_DELETE};
    priv_row *rows = NULL;
    int nr = 0, rc = rows_list(kv, &rows, &nr, err);
    if (rc != TXN_OK) return rc;
    char object[PRIV_OBJECT_BYTES_MAX + 1];
    for (int t = 0; t < ntables && rc == 0; t++) {
        table_object(tables[t]->id, object);
        const char *grantor = SQLV__ROLE_ROOT; /* no grantor is recorded: the owner's name */
        for (int i = 0; i < nr; i++)
            if (strcmp(rows[i].object, object) == 0 && (rows[i].bits & SQLV__PRIV_OWNER))
                grantor = rows[i].grantee;
        for (int i = 0; i < nr && rc == 0; i++) {
            if (strcmp(rows[i].object, object) != 0) continue;
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
