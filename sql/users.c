/*
** Users and roles: CREATE USER/ROLE, ALTER USER/ROLE, DROP USER/ROLE,
** GRANT role TO member, REVOKE role FROM member, and what the gateway reads
** to log a user in (sqlv_auth_lookup). Stored in system tables of the key
** space (format: sql_int.h, "users and roles"), so they are replicated and
** transactional like every row: a statement runs in the block's transaction
** (under a statement savepoint) or in one of its own, retried on 40001.
**
** Invariants:
**   - a password is stored only as a SCRAM-SHA-256 verifier (made here with
**     a random salt, or given pre-hashed as PostgreSQL accepts); neither a
**     password nor a verifier is ever logged or put in an error message.
**   - only root and members of admin (directly or not) create, alter, drop,
**     grant and revoke (42501), with one exception: a user may change their
**     own password. The check reads the memberships in the statement's own
**     transaction, so a concurrent REVOKE and the statement serialize.
**   - root and admin always exist, cannot be dropped, root keeps LOGIN and
**     stays in admin; "public", "none", "node" and "pg_*" are never role
**     names (42939).
**   - the membership graph has no cycle (GRANT refuses one with 0LP01), and
**     every membership names two existing roles (DROP removes a role's
**     memberships with it).
**   - a role that a privilege row names (grantee, grantor or owner) is not
**     dropped (2BP01, as PostgreSQL): a role created again by its name
**     never inherits its grants.
**   - role rows are written in format 2 (with the CONNECTION LIMIT, -1 or
**     more), or 3 (then with the ALTER ROLE ... SET pairs: u16 length and
**     "name\0value\0"...) when the role has settings, so a role without
**     any reads on a node of the previous version; rows of format 1 still
**     read, as having no limit.
**   - sqlv_auth_lookup reads the role and the host-based rules in one
**     read-only transaction: the gateway judges a login on one snapshot.
**   - every loop is bounded: SQLV__ROLES_MAX, SQLV__MEMBERSHIPS_MAX,
**     SQLV__ROLE_NAMES_MAX, USERS_RETRIES_MAX; system tables are scanned
**     by one loop (sqlv__scan_system_table), privileges.c's too.
*/
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cluster_settings.h"
#include "security/security.h"
#include "sql_int.h"
#include "sql_lex.h"

#define MOD "sql"
#define ROLE_FORMAT_VERSION 2    /* written; 1 (no connection limit) is still read */
#define ROLE_FORMAT_VERSION_SETTINGS 3 /* written when the role has settings */
#define ROLE_FORMAT_VERSION_V1 1
#define MEMBER_FORMAT_VERSION 1
#define ROLE_FLAG_LOGIN 1u
#define MEMBER_FLAG_ADMIN 1u
/* An implicit statement's own transaction, tried this often on 40001. */
#define USERS_RETRIES_MAX 10
#define USERS_RETRY_PAUSE_US 2000

_Static_assert(SQLV_AUTH_VERIFIER_SIZE_MAX == SEC_SCRAM_VERIFIER_SIZE_MAX,
               "sql.h mirrors security.h's verifier size");
_Static_assert(SQLV_AUTH_HBA_BYTES_MAX == SEC_HBA_TEXT_BYTES_MAX,
               "sql.h mirrors security.h's host-based authentication text size");

enum { STMT_OK = 0, STMT_FAILED = 1 };

/* ---- keys and records ---------------------------------------------------------- */

static int text_key(base_buf *out, uint32_t table_id, const char *a, const char *b) {
    enc_value v;
    v.type = ENC_TEXT;
    if (enc_key_prefix(out, table_id, SQLV__ROW_INDEX_ID) != ENC_OK) return SQLV_ERR_NOMEM;
    const char *parts[2] = {a, b};
    for (int i = 0; i < 2 && parts[i] != NULL; i++) {
        v.u.bytes.data = (const uint8_t *)parts[i];
        v.u.bytes.len = strlen(parts[i]);
        if (enc_key_append(out, &v) != ENC_OK) return SQLV_ERR_NOMEM;
    }
    return 0;
}

static int role_key(base_buf *out, const char *name) {
    return text_key(out, SQLV__ROLES_TABLE_ID, name, NULL);
}

/* member NULL: the prefix of every membership of role. */
static int member_key(base_buf *out, const char *role, const char *member) {
    return text_key(out, SQLV__MEMBERS_TABLE_ID, role, member);
}

static int role_id_key(base_buf *out) {
    return text_key(out, SQLV__COUNTER_TABLE_ID, "role_id", NULL);
}

static void put_be(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static int role_encode(const sqlv__role *r, base_buf *out) {
    uint8_t hdr[7];
    size_t nl = strlen(r->name), vl = strlen(r->verifier);
    assert(nl <= SQLV__NAME_BYTES_MAX && vl <= SQLV_AUTH_VERIFIER_SIZE_MAX);
    assert(r->settings_len <= sizeof(r->settings));
    hdr[0] = r->settings_len > 0 ? ROLE_FORMAT_VERSION_SETTINGS : ROLE_FORMAT_VERSION;
    hdr[1] = r->login ? ROLE_FLAG_LOGIN : 0;
    put_be(hdr + 2, r->id, 4);
    hdr[6] = (uint8_t)nl;
    uint8_t vlen[2], limit[4];
    put_be(vlen, vl, 2);
    put_be(limit, (uint32_t)r->conn_limit, 4);
    base_buf_reset(out);
    if (base_buf_append(out, hdr, sizeof(hdr)) != 0 || base_buf_append(out, r->name, nl) != 0 ||
        base_buf_append(out, vlen, 2) != 0 || base_buf_append(out, r->verifier, vl) != 0 ||
        base_buf_append(out, limit, 4) != 0)
        return SQLV_ERR_NOMEM;
    if (r->settings_len > 0) {
        uint8_t slen[2];
        put_be(slen, r->settings_len, 2);
        if (base_buf_append(out, slen, 2) != 0 ||
            base_buf_append(out, r->settings, r->settings_len) != 0)
            return SQLV_ERR_NOMEM;
    }
    return 0;
}

/* "name\0value\0" pairs, n bytes: each name non-empty. */
static bool settings_valid(const char *p, size_t n) {
    size_t i = 0;
    while (i < n) { /* each turn takes one pair */
        const char *nul = memchr(p + i, 0, n - i);
        if (nul == NULL || nul == p + i) return false;
        i = (size_t)(nul - p) + 1;
        nul = memchr(p + i, 0, n - i);
        if (nul == NULL) return false;
        i = (size_t)(nul - p) + 1;
    }
    return true;
}

/* A name of n bytes at p into out: -1 when it cannot be one. */
static int copy_name(const uint8_t *p, size_t n, char *out) {
    if (n == 0 || n > SQLV__NAME_BYTES_MAX || memchr(p, 0, n) != NULL) return -1;
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

/* Bytes from the disk: never trusted. 0, or -1 when malformed. */
static int role_decode(const uint8_t *v, size_t n, sqlv__role *r) {
    memset(r, 0, sizeof(*r));
    if (n < 7 || (v[0] != ROLE_FORMAT_VERSION && v[0] != ROLE_FORMAT_VERSION_V1 &&
                  v[0] != ROLE_FORMAT_VERSION_SETTINGS))
        return -1;
    size_t nl = v[6], tail = v[0] == ROLE_FORMAT_VERSION_V1 ? 0 : 4;
    if (n < 7 + nl + 2 || copy_name(v + 7, nl, r->name) != 0) return -1;
    size_t vl = (size_t)get_be(v + 7 + nl, 2);
    if (vl > SQLV_AUTH_VERIFIER_SIZE_MAX || n < 7 + nl + 2 + vl + tail) return -1;
    if (v[0] == ROLE_FORMAT_VERSION_SETTINGS) {
        size_t at = 7 + nl + 2 + vl + tail;
        if (n < at + 2) return -1;
        size_t sl = (size_t)get_be(v + at, 2);
        if (sl == 0 || sl > sizeof(r->settings) || n != at + 2 + sl ||
            !settings_valid((const char *)v + at + 2, sl))
            return -1;
        memcpy(r->settings, v + at + 2, sl);
        r->settings_len = (uint16_t)sl;
    } else if (n != 7 + nl + 2 + vl + tail) {
        return -1;
    }
    r->conn_limit = tail ? (int32_t)(uint32_t)get_be(v + 7 + nl + 2 + vl, 4) : -1;
    if (r->conn_limit < -1) return -1;
    memcpy(r->verifier, v + 7 + nl + 2, vl);
    r->verifier[vl] = 0;
    if (strlen(r->verifier) != vl) return -1;
    r->login = (v[1] & ROLE_FLAG_LOGIN) != 0;
    r->id = (uint32_t)get_be(v + 2, 4);
    return 0;
}

static int member_encode(const sqlv__membership *m, base_buf *out) {
    size_t rl = strlen(m->role), ml = strlen(m->member);
    uint8_t hdr[3] = {MEMBER_FORMAT_VERSION, m->admin_option ? MEMBER_FLAG_ADMIN : 0,
                      (uint8_t)rl};
    uint8_t mlen = (uint8_t)ml;
    base_buf_reset(out);
    if (base_buf_append(out, hdr, sizeof(hdr)) != 0 || base_buf_append(out, m->role, rl) != 0 ||
        base_buf_append(out, &mlen, 1) != 0 || base_buf_append(out, m->member, ml) != 0)
        return SQLV_ERR_NOMEM;
    return 0;
}

static int member_decode(const uint8_t *v, size_t n, sqlv__membership *m) {
    memset(m, 0, sizeof(*m));
    if (n < 3 || v[0] != MEMBER_FORMAT_VERSION) return -1;
    size_t rl = v[2];
    if (n < 3 + rl + 1 || copy_name(v + 3, rl, m->role) != 0) return -1;
    size_t ml = v[3 + rl];
    if (n != 3 + rl + 1 + ml || copy_name(v + 4 + rl, ml, m->member) != 0) return -1;
    m->admin_option = (v[1] & MEMBER_FLAG_ADMIN) != 0;
    return 0;
}

static int malformed(txn_error *err, const char *what) {
    base_strlcpy(err->sqlstate, "XX001", sizeof(err->sqlstate));
    snprintf(err->message, sizeof(err->message), "malformed %s in the key space", what);
    return TXN_ERR_IO;
}

static bool builtin_role(const char *name, sqlv__role *out) {
    memset(out, 0, sizeof(*out));
    out->conn_limit = -1;
    if (strcmp(name, SQLV__ROLE_ROOT) == 0) {
        out->id = SQLV__ROLE_ID_ROOT;
        out->login = true;
    } else if (strcmp(name, SQLV__ROLE_ADMIN) == 0) {
        out->id = SQLV__ROLE_ID_ADMIN;
    } else {
        return false;
    }
    base_strlcpy(out->name, name, sizeof(out->name));
    out->builtin = true;
    return true;
}

/* ---- reads ------------------------------------------------------------------- */

/* The role named name (its row, else the built-in defaults): TXN_OK with
** *found, or a txn error. */
static int role_get(txn *kv, const char *name, sqlv__role *out, bool *found, txn_error *err) {
    base_buf key = {0}, val = {0};
    int rc = TXN_ERR_NOMEM;
    bool builtin = builtin_role(name, out);
    *found = false;
    if (strlen(name) == 0 || strlen(name) > SQLV__NAME_BYTES_MAX) {
        rc = TXN_OK; /* no role can have it */
        goto done;
    }
    if (role_key(&key, name) != 0) goto done;
    rc = txn_get(kv, key.data, key.len, &val, err);
    if (rc == TXN_NOT_FOUND) {
        *found = builtin;
        rc = TXN_OK;
    } else if (rc == TXN_OK) {
        if (role_decode(val.data, val.len, out) != 0 || strcmp(out->name, name) != 0) {
            rc = malformed(err, "role");
        } else {
            out->builtin = builtin;
            *found = true;
        }
    }
done:
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

int sqlv__scan_system_table(txn *kv, uint32_t table_id, int max, sqlv__row_fn fn, void *arg,
                            const char *what, txn_error *err) {
    base_buf a = {0}, b = {0};
    txn_iter *it = NULL;
    int rc = TXN_ERR_NOMEM, rows = 0;
    if (sqlv__table_span(table_id, &a, &b) != 0) goto done;
    rc = txn_scan(kv, a.data, a.len, b.data, b.len, false, &it, err);
    if (rc != TXN_OK) {
        it = NULL;
        goto done;
    }
    for (;;) {
        const uint8_t *k, *v;
        size_t kl, vl;
        int n = txn_iter_next(it, &k, &kl, &v, &vl, err);
        if (n < 0) {
            rc = n;
            break;
        }
        if (n == 0) break;
        if (++rows > max) {
            base_strlcpy(err->sqlstate, "54000", sizeof(err->sqlstate));
            snprintf(err->message, sizeof(err->message), "too many %ss (maximum %d)", what, max);
            rc = TXN_ERR_LIMIT;
            break;
        }
        int frc = fn(arg, v, vl);
        if (frc == SQLV_ERR_NOMEM) {
            rc = TXN_ERR_NOMEM;
            break;
        }
        if (frc != 0) {
            rc = malformed(err, what);
            break;
        }
    }
done:
    if (it != NULL) txn_iter_close(it);
    base_buf_free(&a);
    base_buf_free(&b);
    if (rc == TXN_ERR_NOMEM) txn_error_set(err, rc);
    return rc;
}

/* A growing array of elem-sized items. */
typedef struct grow_list {
    void *items;
    int n, cap;
    size_t elem;
} grow_list;

static void *list_push(grow_list *l) {
    if (l->n == l->cap) {
        int ncap = l->cap ? l->cap * 2 : 16;
        void *p = base_realloc(l->items, l->elem * (size_t)ncap);
        if (p == NULL) return NULL;
        l->items = p;
        l->cap = ncap;
    }
    return (char *)l->items + l->elem * (size_t)l->n++;
}

static int push_role(void *arg, const uint8_t *v, size_t n) {
    grow_list *l = arg;
    sqlv__role r;
    if (role_decode(v, n, &r) != 0) return -1;
    sqlv__role *builtins = l->items; /* the first two: root, admin */
    for (int i = 0; i < 2; i++) {
        if (strcmp(builtins[i].name, r.name) == 0) {
            r.builtin = true;
            builtins[i] = r; /* the stored row overrides the defaults */
            return 0;
        }
    }
    sqlv__role *slot = list_push(l);
    if (slot == NULL) return SQLV_ERR_NOMEM;
    *slot = r;
    return 0;
}

int sqlv__roles_list(txn *kv, sqlv__role **out, int *n, txn_error *err) {
    grow_list l = {NULL, 0, 0, sizeof(sqlv__role)};
    *out = NULL;
    *n = 0;
    sqlv__role *root = list_push(&l), *admin = root ? list_push(&l) : NULL;
    if (admin == NULL) {
        base_free(l.items);
        txn_error_set(err, TXN_ERR_NOMEM);
        return TXN_ERR_NOMEM;
    }
    builtin_role(SQLV__ROLE_ROOT, root);
    builtin_role(SQLV__ROLE_ADMIN, admin);
    int rc = sqlv__scan_system_table(kv, SQLV__ROLES_TABLE_ID, SQLV__ROLES_MAX, push_role, &l,
                                     "role", err);
    if (rc != TXN_OK) {
        base_free(l.items);
        return rc;
    }
    *out = l.items;
    *n = l.n;
    return TXN_OK;
}

static int push_member(void *arg, const uint8_t *v, size_t n) {
    grow_list *l = arg;
    sqlv__membership m;
    if (member_decode(v, n, &m) != 0) return -1;
    sqlv__membership *slot = list_push(l);
    if (slot == NULL) return SQLV_ERR_NOMEM;
    *slot = m;
    return 0;
}

int sqlv__memberships_list(txn *kv, sqlv__membership **out, int *n, txn_error *err) {
    grow_list l = {NULL, 0, 0, sizeof(sqlv__membership)};
    *out = NULL;
    *n = 0;
    sqlv__membership *implicit = list_push(&l);
    if (implicit == NULL) {
        txn_error_set(err, TXN_ERR_NOMEM);
        return TXN_ERR_NOMEM;
    }
    memset(implicit, 0, sizeof(*implicit));
    base_strlcpy(implicit->role, SQLV__ROLE_ADMIN, sizeof(implicit->role));
    base_strlcpy(implicit->member, SQLV__ROLE_ROOT, sizeof(implicit->member));
    implicit->admin_option = true;
    int rc = sqlv__scan_system_table(kv, SQLV__MEMBERS_TABLE_ID, SQLV__MEMBERSHIPS_MAX,
                                     push_member, &l, "role membership", err);
    if (rc != TXN_OK) {
        base_free(l.items);
        return rc;
    }
    *out = l.items;
    *n = l.n;
    return TXN_OK;
}

bool sqlv__role_in(const sqlv__membership *list, int n, const char *member, const char *role) {
    if (strcmp(member, role) == 0) return true;
    /* Breadth first over the roles member is in; each membership is used
    ** at most once (seen), so the walk ends even on a cyclic graph. */
    bool *seen = base_calloc((size_t)n + 1, sizeof(bool));
    const char **queue = base_calloc((size_t)n + 1, sizeof(char *));
    bool found = false;
    int head = 0, tail = 0;
    if (seen == NULL || queue == NULL) {
        /* out of memory: direct memberships only (never more than granted) */
        for (int i = 0; i < n && !found; i++)
            found = strcmp(list[i].member, member) == 0 && strcmp(list[i].role, role) == 0;
        goto done;
    }
    queue[tail++] = member;
    while (head < tail && !found) {
        const char *m = queue[head++];
        for (int i = 0; i < n && !found; i++) {
            if (seen[i] || strcmp(list[i].member, m) != 0) continue;
            seen[i] = true;
            if (strcmp(list[i].role, role) == 0) found = true;
            else queue[tail++] = list[i].role; /* at most n pushes: one per membership */
        }
    }
done:
    base_free(seen);
    base_free(queue);
    return found;
}

int sqlv__role_is_admin(txn *kv, const char *user, bool *out, txn_error *err) {
    sqlv__membership *list = NULL;
    int n = 0;
    *out = strcmp(user, SQLV__ROLE_ROOT) == 0;
    if (*out) return TXN_OK;
    int rc = sqlv__memberships_list(kv, &list, &n, err);
    if (rc != TXN_OK) return rc;
    *out = sqlv__role_in(list, n, user, SQLV__ROLE_ADMIN);
    base_free(list);
    return TXN_OK;
}

/* ---- the gateway's lookup ---------------------------------------------------- */

int sqlv_auth_lookup(sqlv_engine *e, const char *user, sqlv_auth_info *out) {
    txn_options o = {.read_only = true};
    txn_error err = {{0}, {0}};
    txn *kv = NULL;
    sqlv__role r;
    bool found = false;
    memset(out, 0, sizeof(*out));
    if (user == NULL) return SQLV_OK;
    int rc = txn_begin(e->db, &o, &kv);
    if (rc == TXN_OK) rc = role_get(kv, user, &r, &found, &err);
    if (rc == TXN_OK && found) {
        out->exists = true;
        out->can_login = r.login;
        out->conn_limited = r.conn_limit >= 0;
        out->conn_limit = r.conn_limit >= 0 ? r.conn_limit : 0;
        base_strlcpy(out->verifier, r.verifier, sizeof(out->verifier));
        rc = sqlv__role_is_admin(kv, user, &out->is_admin, &err);
    }
    /* the rules, in the same snapshot: a SET applies to the next login on
    ** every node, and no cache can be older than the role it checks */
    if (rc == TXN_OK)
        rc = sqlv_setting_read_text(kv, SQLV_SETTING_HBA_CONF, out->hba_conf,
                                    sizeof(out->hba_conf), &err);
    if (kv != NULL) txn_rollback(kv); /* read only: nothing to commit */
    memset(&r, 0, sizeof(r));
    if (rc == TXN_OK) return SQLV_OK;
    memset(out, 0, sizeof(*out));
    txn_error_set(&err, rc);
    BASE_WARN(MOD, "cannot read the roles to authenticate a user: %s %s", err.sqlstate,
              err.message);
    return rc == TXN_ERR_NOMEM ? SQLV_ERR_NOMEM : SQLV_ERR_INTERNAL;
}

/* The role's ALTER ROLE ... SET pairs, applied at its login; a stored
** value SET now refuses (written by another version) is logged and
** skipped, as PostgreSQL warns and goes on. */
int sqlv_session_apply_role_settings(sqlv_session *s) {
    txn_options o = {.read_only = true};
    txn_error err = {{0}, {0}};
    txn *kv = NULL;
    sqlv__role r;
    bool found = false;
    int rc = txn_begin(s->engine->db, &o, &kv);
    if (rc == TXN_OK) rc = role_get(kv, s->user, &r, &found, &err);
    if (kv != NULL) txn_rollback(kv); /* read only: nothing to commit */
    if (rc != TXN_OK) {
        txn_error_set(&err, rc);
        BASE_WARN(MOD, "cannot read the settings of role \"%s\": %s %s", s->user, err.sqlstate,
                  err.message);
        return rc == TXN_ERR_NOMEM ? SQLV_ERR_NOMEM : SQLV_ERR_INTERNAL;
    }
    for (size_t i = 0; found && i < r.settings_len;) { /* pairs checked when read */
        const char *name = r.settings + i, *value = name + strlen(name) + 1;
        char state[6], msg[200];
        if (sqlv__setting_set(s, name, value, state, msg, sizeof(msg)) != 0)
            BASE_WARN(MOD, "role \"%s\": setting %s not applied: %s", s->user, name, msg);
        i = (size_t)(value - r.settings) + strlen(value) + 1;
    }
    memset(&r, 0, sizeof(r));
    return SQLV_OK;
}

/* ---- statements: parsing -------------------------------------------------------- */

typedef enum op_kind { OP_CREATE, OP_ALTER, OP_DROP, OP_GRANT, OP_REVOKE } op_kind;

typedef struct user_op {
    op_kind kind;
    bool is_role;       /* CREATE ROLE: NOLOGIN unless LOGIN is given */
    bool if_exists;     /* DROP ... IF EXISTS */
    bool if_not_exists; /* CREATE ... IF NOT EXISTS (CockroachDB's) */
    char names[SQLV__ROLE_NAMES_MAX][SQLV__NAME_BYTES_MAX + 1]; /* target(s), roles granted */
    int nnames;
    char members[SQLV__ROLE_NAMES_MAX][SQLV__NAME_BYTES_MAX + 1]; /* GRANT TO / REVOKE FROM */
    int nmembers;
    bool set_password; /* verifier holds the new one ("" : PASSWORD NULL) */
    char verifier[SQLV_AUTH_VERIFIER_SIZE_MAX + 1];
    bool set_login, login;
    bool set_conn_limit; /* CONNECTION LIMIT n (-1: none) */
    int32_t conn_limit;
    bool admin_option; /* GRANT ... WITH ADMIN OPTION; REVOKE ADMIN OPTION FOR */
    /* ALTER ROLE ... SET name = value (canonical) / RESET name / RESET ALL */
    enum { SETTING_NONE, SETTING_SET, SETTING_RESET, SETTING_RESET_ALL } setting_op;
    char setting_name[64];
    char setting_value[256];
    /* Results of one attempt (reset before each). */
    char state[6];
    char msg[256];
    char notices[SQLV__ROLE_NAMES_MAX * 2][160];
    int nnotices;
    int nparse_notices; /* the first ones, from parsing: kept across attempts */
} user_op;

static int op_error(user_op *o, const char *state, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int op_error(user_op *o, const char *state, const char *fmt, ...) {
    va_list ap;
    base_strlcpy(o->state, state, sizeof(o->state));
    va_start(ap, fmt);
    vsnprintf(o->msg, sizeof(o->msg), fmt, ap);
    va_end(ap);
    return TXN_OK; /* a user error: the caller rolls back and reports it */
}

static void op_notice(user_op *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void op_notice(user_op *o, const char *fmt, ...) {
    va_list ap;
    if (o->nnotices >= (int)BASE_ARRAY_LEN(o->notices)) return;
    va_start(ap, fmt);
    vsnprintf(o->notices[o->nnotices++], sizeof(o->notices[0]), fmt, ap);
    va_end(ap);
}

typedef struct parser {
    const char *p, *end;
    sqlv__token t; /* the current token */
    const char *user; /* the session's user (CURRENT_USER) */
    char state[6];
    char msg[256];
} parser;

static void next(parser *ps) { ps->t = sqlv__lex_next(&ps->p, ps->end); }

static int syntax(parser *ps) {
    base_strlcpy(ps->state, "42601", sizeof(ps->state));
    if (ps->t.kind == SQLV__TOK_END)
        snprintf(ps->msg, sizeof(ps->msg), "syntax error at end of input");
    else if (ps->t.kind == SQLV__TOK_STRING)
        snprintf(ps->msg, sizeof(ps->msg), "syntax error at or near a string constant");
    else /* never echo a string: it may be a password */
        snprintf(ps->msg, sizeof(ps->msg), "syntax error at or near \"%.*s\"",
                 (int)BASE_MIN(ps->t.len, 60), ps->t.start);
    return -1;
}

static int refuse(parser *ps, const char *state, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(parser *ps, const char *state, const char *fmt, ...) {
    va_list ap;
    base_strlcpy(ps->state, state, sizeof(ps->state));
    va_start(ap, fmt);
    vsnprintf(ps->msg, sizeof(ps->msg), fmt, ap);
    va_end(ap);
    return -1;
}

/* A role name at the current token: an identifier (unquoted: folded to
** lower case, as PostgreSQL folds), or CURRENT_USER / SESSION_USER /
** CURRENT_ROLE (also as the dialect's "current_user()") when allow_current.
** Reserved names are refused for creation only (for_create). 0 or -1. */
static int role_name(parser *ps, char *out, bool allow_current, bool for_create) {
    sqlv__token t = ps->t;
    if (t.kind == SQLV__TOK_WORD &&
        (sqlv__tok_is(&t, "CURRENT_USER") || sqlv__tok_is(&t, "SESSION_USER") ||
         sqlv__tok_is(&t, "CURRENT_ROLE"))) {
        if (!allow_current)
            return refuse(ps, "42939", "role name \"%.*s\" is reserved", (int)t.len, t.start);
        next(ps);
        const char *save = ps->p;
        sqlv__token save_t = ps->t;
        if (sqlv__tok_punct(&ps->t, '(')) { /* the dialect's current_user() */
            next(ps);
            if (!sqlv__tok_punct(&ps->t, ')')) {
                ps->p = save;
                ps->t = save_t;
                return syntax(ps);
            }
            next(ps);
        }
        base_strlcpy(out, ps->user, SQLV__NAME_BYTES_MAX + 1);
        return 0;
    }
    if (t.kind != SQLV__TOK_WORD && t.kind != SQLV__TOK_QUOTED) return syntax(ps);
    char buf[SQLV__NAME_BYTES_MAX * 4 + 2];
    if (sqlv__tok_ident(&t, buf, sizeof(buf)) != 0) {
        if (t.len <= SQLV__NAME_BYTES_MAX) return syntax(ps); /* "" */
        buf[0] = 0;
    }
    if (buf[0] == 0 || strlen(buf) > SQLV__NAME_BYTES_MAX)
        return refuse(ps, "42622", "role name \"%.*s...\" is too long (maximum %d bytes)", 20,
                      t.start, SQLV__NAME_BYTES_MAX);
    if (t.kind == SQLV__TOK_WORD)
        for (char *c = buf; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    if (for_create) {
        if (strncmp(buf, "pg_", 3) == 0)
            return refuse(ps, "42939",
                          "role name \"%s\" is reserved: names starting with \"pg_\" are", buf);
        if (strcmp(buf, "public") == 0 || strcmp(buf, "none") == 0 || strcmp(buf, "node") == 0)
            return refuse(ps, "42939", "role name \"%s\" is reserved", buf);
    }
    memcpy(out, buf, strlen(buf) + 1);
    next(ps);
    return 0;
}

/* name [, name ...] into names (at most SQLV__ROLE_NAMES_MAX). */
static int name_list(parser *ps, char (*names)[SQLV__NAME_BYTES_MAX + 1], int *n,
                     bool allow_current) {
    *n = 0;
    for (;;) {
        if (*n == SQLV__ROLE_NAMES_MAX)
            return refuse(ps, "54000", "too many role names in one statement (maximum %d)",
                          SQLV__ROLE_NAMES_MAX);
        if (role_name(ps, names[*n], allow_current, false) != 0) return -1;
        (*n)++;
        if (!sqlv__tok_punct(&ps->t, ',')) return 0;
        next(ps);
    }
}

/* The text of a string constant: '...' ('' is a quote) or $tag$...$tag$.
** 0, or -1 (not a string, or longer than size - 1: too_long). */
static int string_value(const sqlv__token *t, char *out, size_t size, bool *too_long) {
    size_t o = 0;
    *too_long = false;
    if (t->kind != SQLV__TOK_STRING || t->len < 2) return -1;
    const char *s = t->start, *e = t->start + t->len;
    if (s[0] == '\'') {
        if (e[-1] != '\'') return -1;
        for (const char *c = s + 1; c < e - 1; c++) {
            if (*c == '\'') c++; /* '' */
            if (o + 1 >= size) {
                *too_long = true;
                return -1;
            }
            out[o++] = *c;
        }
    } else { /* $tag$body$tag$ */
        const char *q = memchr(s + 1, '$', (size_t)(e - s - 1));
        if (q == NULL) return -1;
        size_t tag = (size_t)(q - s) + 1;
        if (t->len < 2 * tag || memcmp(e - tag, s, tag) != 0) return -1;
        size_t n = t->len - 2 * tag;
        if (n + 1 > size) {
            *too_long = true;
            return -1;
        }
        memcpy(out, s + tag, n);
        o = n;
    }
    out[o] = 0;
    return 0;
}

/* PASSWORD 'x' / NULL: the verifier to store into o. A text that parses as
** a SCRAM-SHA-256 verifier is taken as one (PostgreSQL does the same);
** anything else is a password, hashed here with a fresh salt. */
static int password_value(parser *ps, user_op *o) {
    char pw[SQLV__PASSWORD_BYTES_MAX + 1];
    bool too_long = false;
    int rc = 0;
    o->set_password = true;
    o->verifier[0] = 0;
    if (sqlv__tok_is(&ps->t, "NULL")) {
        next(ps);
        return 0;
    }
    if (string_value(&ps->t, pw, sizeof(pw), &too_long) != 0) {
        if (too_long)
            return refuse(ps, "22023", "password too long (maximum %d bytes)",
                          SQLV__PASSWORD_BYTES_MAX);
        return syntax(ps);
    }
    next(ps);
    size_t n = strlen(pw);
    sec_scram_verifier v;
    if (n == 0) {
        op_notice(o, "empty string is not a valid password, clearing password");
    } else if (sec_scram_verifier_parse(pw, &v) == 0) {
        base_strlcpy(o->verifier, pw, sizeof(o->verifier)); /* pre-hashed */
    } else if (n == 35 && strncmp(pw, "md5", 3) == 0 && strspn(pw + 3, "0123456789abcdef") == 32) {
        rc = refuse(ps, "0A000", "MD5 password verifiers are not supported: use SCRAM-SHA-256");
    } else {
        for (size_t i = 0; i < n && rc == 0; i++)
            if ((unsigned char)pw[i] >= 0x80)
                rc = refuse(ps, "0A000", "passwords must be ASCII (SASLprep is not implemented)");
        if (rc == 0 && sec_scram_verifier_new(pw, o->verifier, sizeof(o->verifier)) != 0)
            rc = refuse(ps, "XX000", "cannot hash the password");
    }
    memset(pw, 0, sizeof(pw));
    memset(&v, 0, sizeof(v));
    return rc;
}

/* CONNECTION LIMIT's value: an integer from -1 (none) up. 0 or -1. */
static int conn_limit_value(parser *ps, int32_t *out) {
    bool neg = false;
    if (sqlv__tok_punct(&ps->t, '-')) {
        neg = true;
        next(ps);
    }
    sqlv__token t = ps->t;
    int64_t v = 0;
    if (t.kind != SQLV__TOK_OTHER || t.len == 0 || t.len > 10) return syntax(ps);
    for (size_t i = 0; i < t.len; i++) {
        if (t.start[i] < '0' || t.start[i] > '9') return syntax(ps);
        v = v * 10 + (t.start[i] - '0');
    }
    if (neg) v = -v;
    if (v < -1 || v > INT32_MAX)
        return refuse(ps, "22023", "invalid connection limit: %lld (want -1 or more)",
                      (long long)v);
    *out = (int32_t)v;
    next(ps);
    return 0;
}

/* [WITH] option ... to the end, for CREATE and ALTER. */
static int role_options(parser *ps, user_op *o) {
    if (sqlv__tok_is(&ps->t, "WITH")) next(ps);
    while (ps->t.kind != SQLV__TOK_END) { /* each turn consumes a token or fails */
        sqlv__token t = ps->t;
        if (sqlv__tok_is(&t, "PASSWORD") || sqlv__tok_is(&t, "ENCRYPTED")) {
            if (sqlv__tok_is(&t, "ENCRYPTED")) {
                next(ps);
                if (!sqlv__tok_is(&ps->t, "PASSWORD")) return syntax(ps);
            }
            if (o->set_password) return refuse(ps, "42601", "conflicting or redundant options");
            next(ps);
            if (password_value(ps, o) != 0) return -1;
        } else if (sqlv__tok_is(&t, "LOGIN") || sqlv__tok_is(&t, "NOLOGIN")) {
            if (o->set_login) return refuse(ps, "42601", "conflicting or redundant options");
            o->set_login = true;
            o->login = sqlv__tok_is(&t, "LOGIN");
            next(ps);
        } else if (sqlv__tok_is(&t, "CONNECTION")) {
            if (o->set_conn_limit) return refuse(ps, "42601", "conflicting or redundant options");
            next(ps);
            if (!sqlv__tok_is(&ps->t, "LIMIT")) return syntax(ps);
            next(ps);
            if (conn_limit_value(ps, &o->conn_limit) != 0) return -1;
            o->set_conn_limit = true;
        } else if (sqlv__tok_is(&t, "UNENCRYPTED")) {
            return refuse(ps, "0A000", "UNENCRYPTED PASSWORD is no longer supported");
        } else if (sqlv__tok_is(&t, "NOSUPERUSER") || sqlv__tok_is(&t, "NOCREATEDB") ||
                   sqlv__tok_is(&t, "NOCREATEROLE") || sqlv__tok_is(&t, "INHERIT") ||
                   sqlv__tok_is(&t, "NOREPLICATION") || sqlv__tok_is(&t, "NOBYPASSRLS")) {
            next(ps); /* what every role is */
        } else if (sqlv__tok_is(&t, "SUPERUSER") || sqlv__tok_is(&t, "CREATEROLE") ||
                   sqlv__tok_is(&t, "CREATEDB")) {
            return refuse(ps, "0A000",
                          "%.*s is not supported: GRANT admin TO a user lets it manage users "
                          "and roles",
                          (int)t.len, t.start);
        } else if (t.kind == SQLV__TOK_WORD) {
            return refuse(ps, "0A000", "role option %.*s is not supported yet",
                          (int)BASE_MIN(t.len, 40), t.start);
        } else {
            return syntax(ps);
        }
    }
    return 0;
}

/* ALTER ROLE name SET setting {= | TO} {value | DEFAULT}, RESET setting,
** RESET ALL (after the role name), checked as SET would check it. */
static int role_setting(parser *ps, user_op *o) {
    bool set = sqlv__tok_is(&ps->t, "SET");
    char name[128] = "", value[256] = "", state[6];
    next(ps);
    if (!set && sqlv__tok_is(&ps->t, "ALL")) {
        next(ps);
        o->setting_op = SETTING_RESET_ALL;
        return ps->t.kind == SQLV__TOK_END ? 0 : syntax(ps);
    }
    /* name or prefix.name */
    for (int part = 0; part < 2; part++) {
        if (ps->t.kind != SQLV__TOK_WORD && ps->t.kind != SQLV__TOK_QUOTED) return syntax(ps);
        size_t have = strlen(name);
        const char *w = ps->t.kind == SQLV__TOK_QUOTED ? ps->t.start + 1 : ps->t.start;
        size_t wl = ps->t.kind == SQLV__TOK_QUOTED ? ps->t.len - 2 : ps->t.len;
        if (have + wl + 2 > sizeof(name)) return refuse(ps, "42622", "setting name too long");
        memcpy(name + have, w, wl);
        name[have + wl] = '\0';
        next(ps);
        if (part > 0 || !sqlv__tok_punct(&ps->t, '.')) break;
        strcat(name, ".");
        next(ps);
    }
    bool reset = !set;
    if (set) {
        if (!sqlv__tok_punct(&ps->t, '=') && !sqlv__tok_is(&ps->t, "TO")) return syntax(ps);
        next(ps);
        bool too_long = false;
        if (sqlv__tok_is(&ps->t, "DEFAULT")) {
            reset = true;
        } else if (ps->t.kind == SQLV__TOK_STRING) {
            if (string_value(&ps->t, value, sizeof(value), &too_long) != 0)
                return too_long ? refuse(ps, "22023", "value for \"%.64s\" is too long", name)
                                : syntax(ps);
        } else if (ps->t.kind == SQLV__TOK_WORD || ps->t.kind == SQLV__TOK_OTHER) {
            if (ps->t.len >= sizeof(value)) return refuse(ps, "22023", "value too long");
            memcpy(value, ps->t.start, ps->t.len);
            value[ps->t.len] = '\0';
        } else {
            return syntax(ps);
        }
        next(ps);
    }
    if (ps->t.kind != SQLV__TOK_END) {
        if (sqlv__tok_punct(&ps->t, ','))
            return refuse(ps, "0A000", "ALTER ROLE ... SET takes one value (not a list) here");
        return syntax(ps);
    }
    if (sqlv__setting_canonical(name, reset ? NULL : value, o->setting_name,
                                sizeof(o->setting_name), o->setting_value,
                                sizeof(o->setting_value), state, ps->msg, sizeof(ps->msg)) != 0) {
        memcpy(ps->state, state, sizeof(ps->state));
        return -1;
    }
    o->setting_op = reset ? SETTING_RESET : SETTING_SET;
    return 0;
}

/* The statement into o. 0, or -1 with ps->state/msg set. */
static int parse(parser *ps, user_op *o) {
    next(ps);
    sqlv__token verb = ps->t;
    next(ps);
    if (sqlv__tok_is(&verb, "GRANT") || sqlv__tok_is(&verb, "REVOKE")) {
        bool grant = sqlv__tok_is(&verb, "GRANT");
        o->kind = grant ? OP_GRANT : OP_REVOKE;
        const char *save = ps->p;
        sqlv__token peek = sqlv__lex_next(&save, ps->end);
        if (!grant && sqlv__tok_is(&ps->t, "ADMIN") && sqlv__tok_is(&peek, "OPTION")) {
            /* REVOKE ADMIN OPTION FOR role ... (not the role named admin) */
            next(ps);
            next(ps);
            if (!sqlv__tok_is(&ps->t, "FOR")) return syntax(ps);
            next(ps);
            o->admin_option = true;
        }
        if (name_list(ps, o->names, &o->nnames, true) != 0) return -1;
        if (!sqlv__tok_is(&ps->t, grant ? "TO" : "FROM")) return syntax(ps);
        next(ps);
        if (name_list(ps, o->members, &o->nmembers, true) != 0) return -1;
        if (grant && sqlv__tok_is(&ps->t, "WITH")) {
            next(ps);
            if (!sqlv__tok_is(&ps->t, "ADMIN")) return syntax(ps);
            next(ps);
            if (!sqlv__tok_is(&ps->t, "OPTION")) return syntax(ps);
            next(ps);
            o->admin_option = true;
        }
        if (sqlv__tok_is(&ps->t, "GRANTED")) {
            char by[SQLV__NAME_BYTES_MAX + 1];
            next(ps);
            if (!sqlv__tok_is(&ps->t, "BY")) return syntax(ps);
            next(ps);
            if (role_name(ps, by, true, false) != 0) return -1;
        }
        if (!grant && (sqlv__tok_is(&ps->t, "CASCADE") || sqlv__tok_is(&ps->t, "RESTRICT")))
            next(ps);
        return ps->t.kind == SQLV__TOK_END ? 0 : syntax(ps);
    }
    o->is_role = sqlv__tok_is(&ps->t, "ROLE");
    next(ps); /* USER or ROLE (the dispatcher checked) */
    if (sqlv__tok_is(&verb, "DROP")) {
        o->kind = OP_DROP;
        if (sqlv__tok_is(&ps->t, "IF")) {
            next(ps);
            if (!sqlv__tok_is(&ps->t, "EXISTS")) return syntax(ps);
            next(ps);
            o->if_exists = true;
        }
        if (name_list(ps, o->names, &o->nnames, false) != 0) return -1;
        return ps->t.kind == SQLV__TOK_END ? 0 : syntax(ps);
    }
    bool create = sqlv__tok_is(&verb, "CREATE");
    o->kind = create ? OP_CREATE : OP_ALTER;
    if (create && sqlv__tok_is(&ps->t, "IF")) {
        next(ps);
        if (!sqlv__tok_is(&ps->t, "NOT")) return syntax(ps);
        next(ps);
        if (!sqlv__tok_is(&ps->t, "EXISTS")) return syntax(ps);
        next(ps);
        o->if_not_exists = true;
    }
    if (role_name(ps, o->names[0], !create, create) != 0) return -1;
    o->nnames = 1;
    if (!create && (sqlv__tok_is(&ps->t, "SET") || sqlv__tok_is(&ps->t, "RESET")))
        return role_setting(ps, o);
    if (!create && (sqlv__tok_is(&ps->t, "RENAME") || sqlv__tok_is(&ps->t, "IN")))
        return refuse(ps, "0A000", "ALTER ROLE ... %.*s is not supported yet", (int)ps->t.len,
                      ps->t.start);
    if (role_options(ps, o) != 0) return -1;
    if (!create && !o->set_password && !o->set_login && !o->set_conn_limit) return syntax(ps);
    return 0;
}

/* ---- statements: execution ----------------------------------------------------- */

static int put_role(txn *kv, const sqlv__role *r, txn_error *err) {
    base_buf key = {0}, val = {0};
    int rc = TXN_ERR_NOMEM;
    if (role_key(&key, r->name) == 0 && role_encode(r, &val) == 0)
        rc = txn_put(kv, key.data, key.len, val.data, val.len, err);
    else
        txn_error_set(err, rc);
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

static int put_member(txn *kv, const sqlv__membership *m, txn_error *err) {
    base_buf key = {0}, val = {0};
    int rc = TXN_ERR_NOMEM;
    if (member_key(&key, m->role, m->member) == 0 && member_encode(m, &val) == 0)
        rc = txn_put(kv, key.data, key.len, val.data, val.len, err);
    else
        txn_error_set(err, rc);
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

static int delete_member(txn *kv, const char *role, const char *member, txn_error *err) {
    base_buf key = {0};
    int rc = TXN_ERR_NOMEM;
    if (member_key(&key, role, member) == 0) rc = txn_delete(kv, key.data, key.len, err);
    else txn_error_set(err, rc);
    base_buf_free(&key);
    return rc;
}

/* The next role id (the counter key read and bumped in kv). */
static int next_role_id(txn *kv, uint32_t *id, txn_error *err) {
    base_buf key = {0}, val = {0};
    int rc = TXN_ERR_NOMEM;
    uint64_t next_id = SQLV__FIRST_ROLE_ID;
    if (role_id_key(&key) != 0) {
        txn_error_set(err, rc);
        goto done;
    }
    rc = txn_get(kv, key.data, key.len, &val, err);
    if (rc == TXN_OK) {
        if (val.len != 8) {
            rc = malformed(err, "role id counter");
            goto done;
        }
        next_id = get_be(val.data, 8);
    } else if (rc != TXN_NOT_FOUND) {
        goto done;
    }
    if (next_id < SQLV__FIRST_ROLE_ID || next_id >= UINT32_MAX) {
        base_strlcpy(err->sqlstate, "54000", sizeof(err->sqlstate));
        snprintf(err->message, sizeof(err->message), "role ids are exhausted");
        rc = TXN_ERR_LIMIT;
        goto done;
    }
    uint8_t buf[8];
    put_be(buf, next_id + 1, 8);
    rc = txn_put(kv, key.data, key.len, buf, sizeof(buf), err);
    *id = (uint32_t)next_id;
done:
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

static bool direct_member(const sqlv__membership *list, int n, const char *role,
                          const char *member, int *at) {
    for (int i = 0; i < n; i++) {
        if (strcmp(list[i].role, role) == 0 && strcmp(list[i].member, member) == 0) {
            if (at) *at = i;
            return true;
        }
    }
    return false;
}

static int apply_create(user_op *o, txn *kv, txn_error *err) {
    sqlv__role r;
    bool found;
    int rc = role_get(kv, o->names[0], &r, &found, err);
    if (rc != TXN_OK) return rc;
    if (found) {
        if (!o->if_not_exists)
            return op_error(o, "42710", "role \"%s\" already exists", o->names[0]);
        op_notice(o, "role \"%s\" already exists, skipping", o->names[0]);
        return TXN_OK;
    }
    memset(&r, 0, sizeof(r));
    base_strlcpy(r.name, o->names[0], sizeof(r.name));
    r.login = o->set_login ? o->login : !o->is_role;
    r.conn_limit = o->set_conn_limit ? o->conn_limit : -1;
    base_strlcpy(r.verifier, o->verifier, sizeof(r.verifier));
    rc = next_role_id(kv, &r.id, err);
    if (rc == TXN_OK) rc = put_role(kv, &r, err);
    memset(&r, 0, sizeof(r));
    return rc;
}

/* o's SET/RESET on r's pairs: 0, or -1 with o->state (54000: full). */
static int role_settings_change(user_op *o, sqlv__role *r) {
    if (o->setting_op == SETTING_RESET_ALL) {
        r->settings_len = 0;
        return 0;
    }
    /* drop the pair of that name, if any */
    size_t i = 0, n = r->settings_len;
    while (i < n) { /* each turn steps over one pair (checked when read) */
        size_t nl = strlen(r->settings + i) + 1;
        size_t pl = nl + strlen(r->settings + i + nl) + 1;
        if (strcmp(r->settings + i, o->setting_name) == 0) {
            memmove(r->settings + i, r->settings + i + pl, n - i - pl);
            n -= pl;
            continue;
        }
        i += pl;
    }
    if (o->setting_op == SETTING_SET) {
        size_t nl = strlen(o->setting_name) + 1, vl = strlen(o->setting_value) + 1;
        if (n + nl + vl > sizeof(r->settings)) {
            op_error(o, "54000", "too many settings for role \"%s\" (at most %zu bytes)",
                     r->name, sizeof(r->settings));
            return -1;
        }
        memcpy(r->settings + n, o->setting_name, nl);
        memcpy(r->settings + n + nl, o->setting_value, vl);
        n += nl + vl;
    }
    r->settings_len = (uint16_t)n;
    return 0;
}

static int apply_alter(user_op *o, txn *kv, txn_error *err) {
    sqlv__role r;
    bool found;
    int rc = role_get(kv, o->names[0], &r, &found, err);
    if (rc != TXN_OK) return rc;
    if (!found) return op_error(o, "42704", "role \"%s\" does not exist", o->names[0]);
    if (o->set_login && !o->login && strcmp(r.name, SQLV__ROLE_ROOT) == 0)
        return op_error(o, "42501", "root cannot be made NOLOGIN");
    if (o->set_login) r.login = o->login;
    if (o->set_conn_limit) r.conn_limit = o->conn_limit;
    if (o->set_password) base_strlcpy(r.verifier, o->verifier, sizeof(r.verifier));
    if (o->setting_op != SETTING_NONE && role_settings_change(o, &r) != 0) {
        memset(&r, 0, sizeof(r));
        return TXN_OK; /* o->state says why */
    }
    rc = put_role(kv, &r, err);
    memset(&r, 0, sizeof(r));
    return rc;
}

static int apply_drop(user_op *o, sqlv_engine *e, const char *session_user, txn *kv,
                      txn_error *err) {
    sqlv__membership *list = NULL;
    int n = 0, rc = TXN_OK;
    for (int i = 0; i < o->nnames; i++) {
        const char *name = o->names[i];
        sqlv__role r;
        bool found;
        if ((rc = role_get(kv, name, &r, &found, err)) != TXN_OK) goto done;
        if (found && r.builtin) {
            op_error(o, "42501", "cannot drop role \"%s\": it is built in", name);
            goto done;
        }
        if (found && strcmp(name, session_user) == 0) {
            op_error(o, "55006", "current user cannot be dropped");
            goto done;
        }
        if (!found) {
            if (!o->if_exists) {
                op_error(o, "42704", "role \"%s\" does not exist", name);
                goto done;
            }
            op_notice(o, "role \"%s\" does not exist, skipping", name);
            continue;
        }
        /* its grants would pass to a role created by that name (privileges.c) */
        int nobjects = 0;
        if ((rc = sqlv__priv_role_objects(e, kv, name, &nobjects, err)) != TXN_OK) goto done;
        if (nobjects > 0) {
            op_error(o, "2BP01",
                     "role \"%s\" cannot be dropped because some objects depend on it\n"
                     "DETAIL:  privileges or ownership on %d object%s (REVOKE them first)",
                     name, nobjects, nobjects == 1 ? "" : "s");
            goto done;
        }
        base_buf key = {0};
        rc = TXN_ERR_NOMEM;
        if (role_key(&key, name) == 0) rc = txn_delete(kv, key.data, key.len, err);
        else txn_error_set(err, rc);
        base_buf_free(&key);
        if (rc != TXN_OK) goto done;
        /* its memberships, as a role and as a member */
        base_free(list);
        list = NULL;
        if ((rc = sqlv__memberships_list(kv, &list, &n, err)) != TXN_OK) goto done;
        for (int j = 0; j < n && rc == TXN_OK; j++)
            if (strcmp(list[j].role, name) == 0 || strcmp(list[j].member, name) == 0)
                rc = delete_member(kv, list[j].role, list[j].member, err);
        if (rc != TXN_OK) goto done;
    }
done:
    base_free(list);
    return rc;
}

/* GRANT and REVOKE of role memberships. */
static int apply_grant(user_op *o, txn *kv, txn_error *err) {
    sqlv__membership *list = NULL;
    int n = 0, rc;
    bool grant = o->kind == OP_GRANT;
    for (int i = 0; i < o->nnames; i++) {
        for (int j = 0; j < o->nmembers; j++) {
            const char *names[2] = {o->names[i], o->members[j]};
            for (int k = 0; k < 2; k++) {
                sqlv__role r;
                bool found;
                if ((rc = role_get(kv, names[k], &r, &found, err)) != TXN_OK) goto done;
                if (!found) {
                    op_error(o, "42704", "role \"%s\" does not exist", names[k]);
                    goto done;
                }
            }
        }
    }
    if ((rc = sqlv__memberships_list(kv, &list, &n, err)) != TXN_OK) goto done;
    for (int i = 0; i < o->nnames; i++) {
        for (int j = 0; j < o->nmembers; j++) {
            const char *role = o->names[i], *member = o->members[j];
            bool implicit = strcmp(role, SQLV__ROLE_ADMIN) == 0 &&
                            strcmp(member, SQLV__ROLE_ROOT) == 0;
            int at = -1;
            bool is = direct_member(list, n, role, member, &at);
            if (!grant) {
                if (implicit) {
                    op_error(o, "42501", "root is always a member of admin");
                    goto done;
                }
                if (!is) {
                    op_notice(o, "role \"%s\" is not a member of role \"%s\"", member, role);
                    continue;
                }
                if (o->admin_option) { /* REVOKE ADMIN OPTION FOR: keep the membership */
                    list[at].admin_option = false;
                    rc = put_member(kv, &list[at], err);
                } else {
                    rc = delete_member(kv, role, member, err);
                    list[at].member[0] = 0; /* gone for the rest of the statement */
                }
                if (rc != TXN_OK) goto done;
                continue;
            }
            if (strcmp(role, member) == 0 || sqlv__role_in(list, n, role, member)) {
                op_error(o, "0LP01", "role \"%s\" is a member of role \"%s\"", role, member);
                goto done;
            }
            if (is && (!o->admin_option || list[at].admin_option)) {
                op_notice(o, "role \"%s\" is already a member of role \"%s\"", member, role);
                continue;
            }
            sqlv__membership m;
            memset(&m, 0, sizeof(m));
            base_strlcpy(m.role, role, sizeof(m.role));
            base_strlcpy(m.member, member, sizeof(m.member));
            m.admin_option = o->admin_option;
            if ((rc = put_member(kv, &m, err)) != TXN_OK) goto done;
            if (is) {
                list[at].admin_option = true;
                continue;
            }
            sqlv__membership *grown = base_realloc(list, sizeof(*list) * (size_t)(n + 1));
            if (grown == NULL) {
                rc = TXN_ERR_NOMEM;
                txn_error_set(err, rc);
                goto done;
            }
            list = grown;
            list[n++] = m; /* later pairs see it (cycles within one statement) */
        }
    }
    rc = TXN_OK;
done:
    base_free(list);
    return rc;
}

/* One attempt of the statement in kv: TXN_OK (o->state set on a user
** error: the caller rolls back) or a txn error with err set. */
static int apply(user_op *o, sqlv_engine *e, const char *session_user, txn *kv,
                 txn_error *err) {
    bool admin = false;
    int rc = sqlv__role_is_admin(kv, session_user, &admin, err);
    if (rc != TXN_OK) return rc;
    bool own_password = o->kind == OP_ALTER && !o->set_login && !o->set_conn_limit &&
                        strcmp(o->names[0], session_user) == 0;
    if (!admin && !own_password) {
        static const char *const what[] = {"create role", "alter role", "drop role",
                                           "grant role", "revoke role"};
        return op_error(o, "42501",
                        "permission denied to %s: only root and members of admin manage users "
                        "and roles",
                        what[o->kind]);
    }
    switch (o->kind) {
    case OP_CREATE: return apply_create(o, kv, err);
    case OP_ALTER: return apply_alter(o, kv, err);
    case OP_DROP: rc = apply_drop(o, e, session_user, kv, err); break;
    case OP_GRANT:
    case OP_REVOKE: rc = apply_grant(o, kv, err); break;
    }
    /* memberships changed: sessions' privilege caches follow the catalog
    ** version (privileges.c) */
    if (rc == TXN_OK && !o->state[0]) rc = sqlv__catalog_bump_version(kv, err);
    return rc;
}

static void emit_notices(sqlv__run *r, const user_op *o) {
    for (int i = 0; i < o->nnotices && r->sink_rc == 0; i++)
        if (r->sink->notice) r->sink_rc = r->sink->notice(r->sink->ctx, o->notices[i]);
}

static int emit_tag(sqlv__run *r, const char *tag) {
    if (r->sink_rc == 0 && r->sink->command_complete)
        r->sink_rc = r->sink->command_complete(r->sink->ctx, tag);
    return STMT_OK;
}

static void op_reset(user_op *o) {
    o->state[0] = 0;
    o->msg[0] = 0;
    o->nnotices = o->nparse_notices;
}

/* Inside a block: the block's transaction under a statement savepoint. */
static int run_in_block(sqlv__run *r, user_op *o) {
    sqlv_session *s = r->s;
    txn_error err = {{0}, {0}};
    uint32_t sp;
    int rc = TXN_OK;
    if (s->kv == NULL && (rc = sqlv__session_begin(s, false, &err)) != TXN_OK)
        return sqlv__fail_txn(r, rc, &err);
    if ((rc = txn_savepoint(s->kv, &sp)) != TXN_OK) return sqlv__fail_txn(r, rc, &err);
    op_reset(o);
    rc = apply(o, s->engine, s->user, s->kv, &err);
    if (rc != TXN_OK || o->state[0]) {
        (void)txn_rollback_to(s->kv, sp);
        return rc != TXN_OK ? sqlv__fail_txn(r, rc, &err) : sqlv__fail(r, o->state, o->msg);
    }
    (void)txn_release(s->kv, sp);
    return STMT_OK;
}

/* Outside a block: a transaction of its own, retried on 40001 (nothing
** reaches the sink before it commits). */
static int run_alone(sqlv__run *r, user_op *o) {
    sqlv_session *s = r->s;
    txn_error err = {{0}, {0}};
    int rc = TXN_OK;
    for (int attempt = 0; attempt < USERS_RETRIES_MAX; attempt++) {
        txn *kv = NULL;
        memset(&err, 0, sizeof(err));
        if (attempt > 0) {
            struct timespec ts = {0, (long)USERS_RETRY_PAUSE_US * 1000 * attempt};
            nanosleep(&ts, NULL);
        }
        if ((rc = txn_begin(s->engine->db, NULL, &kv)) != TXN_OK) break;
        op_reset(o);
        rc = apply(o, s->engine, s->user, kv, &err);
        if (rc != TXN_OK || o->state[0]) {
            txn_rollback(kv);
            if (rc == TXN_ERR_RETRY) continue;
            break;
        }
        rc = txn_commit(kv, NULL, &err); /* frees kv */
        if (rc != TXN_ERR_RETRY) break;
    }
    if (rc != TXN_OK) return sqlv__fail_txn(r, rc, &err);
    if (o->state[0]) return sqlv__fail(r, o->state, o->msg);
    return STMT_OK;
}

int sqlv__users_stmt(sqlv__run *r, const char *text, size_t len) {
    sqlv_session *s = r->s;
    {
        /* GRANT/REVOKE <privileges> ON ...: the privileges hook */
        const char *p = text, *end = text + len;
        sqlv__token t = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&t, "GRANT") || sqlv__tok_is(&t, "REVOKE")) {
            for (int guard = 0; guard < 100000; guard++) {
                t = sqlv__lex_next(&p, end);
                if (t.kind == SQLV__TOK_END || sqlv__tok_is(&t, "TO") ||
                    sqlv__tok_is(&t, "FROM"))
                    break;
                if (sqlv__tok_is(&t, "ON")) return sqlv__privileges_stmt(r, text, len);
            }
        }
    }
    user_op *o = base_calloc(1, sizeof(*o)); /* owner: this function */
    if (o == NULL) return sqlv__fail(r, "53200", "out of memory");
    parser ps = {.p = text, .end = text + len, .user = s->user};
    int rc;
    if (parse(&ps, o) != 0) {
        rc = sqlv__fail(r, ps.state, ps.msg);
        goto done;
    }
    o->nparse_notices = o->nnotices;
    rc = s->status == 'T' ? run_in_block(r, o) : run_alone(r, o);
    sqlv__priv_invalidate(s); /* memberships may have changed */
    if (rc != STMT_OK) goto done;
    emit_notices(r, o);
    static const char *const tags[] = {"CREATE ROLE", "ALTER ROLE", "DROP ROLE", "GRANT ROLE",
                                       "REVOKE ROLE"};
    rc = emit_tag(r, tags[o->kind]);
done:
    memset(o->verifier, 0, sizeof(o->verifier));
    base_free(o);
    return rc;
}
