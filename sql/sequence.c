/*
** Sequences (docs/sql.md "Sequences"): CREATE / ALTER / DROP SEQUENCE,
** nextval, currval, lastval, setval, and the SERIAL / IDENTITY columns that
** own one.
**
** Key space (a system table, below SQLV__FIRST_USER_TABLE_ID):
**   table 6 index 1: definitions  key = prefix(6,1) + TEXT(lower(name))
**       value = 0x01 | u32 id | u8 type bytes (2, 4, 8) | i64 increment |
**               i64 min | i64 max | i64 start | i64 cache | u8 flags (1 CYCLE,
**               2 CACHE given) | u16 name length | name | u16 owner table
**               length | table | u16 owner column length | column   (BE)
**   table 6 index 2: state        key = prefix(6,2) + INTEGER(id)
**       value = 0x01 | i64 last value | u8 is_called (absent: start, not called)
** id is a table id (sqlv__engine_allocate_table_id, never reused), so a
** sequence's pg_class OID is sqlv__pgcat_oid(id, TABLE) and a sequence
** dropped and created again starts from a fresh state row.
**
** Definitions change only by DDL (which bumps the catalog version, so a
** concurrent CREATE TABLE of the same name conflicts). The state row changes
** only in short transactions of their own (nextval, setval; retried on
** 40001), never in the user's: nextval is not transactional, and two
** sessions' nextval never conflict through a user transaction. The one
** exception is a sequence created in the session's open block (invisible to
** any other transaction): its state goes through the block's transaction.
**
** Node cache: a node reserves a block of values per state write (CACHE n,
** or SQLV__SEQ_NODE_CACHE_DEFAULT when CREATE gave no CACHE) and hands them
** to its sessions in order. setval / ALTER / DROP through this node drop
** its block (ALTER first gives the unused values back when no other node
** moved the state since); another node's block lives until it is used up,
** as PostgreSQL's per-session caches do.
**
** Identity and SERIAL columns (docs/sql.md "Sequences"): INSERT and UPDATE
** texts are checked and completed before SQLite sees them (both protocols):
** 428C9 for a value of a GENERATED ALWAYS column, OVERRIDING cut, SET c =
** DEFAULT replaced by the default. A sequence a column default draws from
** is not dropped without CASCADE (2BP01), which drops the default in the
** same transaction; a FROM item naming a sequence reads
** meridian_sequence_state (pgcatalog.c) when SQLite finds no such table.
**
** Invariants:
**   - every value handed out was reserved by a committed state write that
**     moved past it: values are unique cluster-wide until a CYCLE wrap,
**     setval or RESTART reuses them.
**   - a block never crosses MINVALUE / MAXVALUE; arithmetic never overflows
**     (checked with __builtin_*_overflow and 128-bit products).
**   - loops are bounded: SQLV__SEQ_RETRIES_MAX attempts, SQLV__SEQUENCES_MAX
**     definitions per scan, the statement's tokens.
*/
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sql_dialect.h"
#include "sql_int.h"
#include "sql_lex.h"
#include "sql_pgcatalog.h"

enum { STMT_OK = 0, STMT_FAILED = 1 }; /* session.c's */

#define NAME_BYTES (SQLV__NAME_BYTES_MAX * 4 + 1)
#define SEQ_FORMAT_VERSION 1
#define SEQ_RETRY_PAUSE_US 200

/* ---- definitions and their rows ------------------------------------------------------- */

static void lower_into(char *dst, const char *src, size_t size) {
    size_t i = 0;
    for (; src[i] && i + 1 < size; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = 0;
}

static void put_u16(base_buf *b, size_t v, int *rc) {
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    if (*rc == 0) *rc = base_buf_append(b, x, 2);
}
static void put_u64(base_buf *b, uint64_t v, int *rc) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (56 - 8 * i));
    if (*rc == 0) *rc = base_buf_append(b, x, 8);
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static int def_key(base_buf *out, const char *name) {
    char low[NAME_BYTES];
    lower_into(low, name, sizeof(low));
    enc_value v = {.type = ENC_TEXT};
    v.u.bytes.data = (const uint8_t *)low;
    v.u.bytes.len = strlen(low);
    out->len = 0;
    if (enc_key_prefix(out, SQLV__SEQUENCES_TABLE_ID, 1) != ENC_OK) return SQLV_ERR_NOMEM;
    return enc_key_append(out, &v) == ENC_OK ? 0 : SQLV_ERR_NOMEM;
}

static int state_key(base_buf *out, uint32_t id) {
    enc_value v = {.type = ENC_INTEGER};
    v.u.i = id;
    out->len = 0;
    if (enc_key_prefix(out, SQLV__SEQUENCES_TABLE_ID, 2) != ENC_OK) return SQLV_ERR_NOMEM;
    return enc_key_append(out, &v) == ENC_OK ? 0 : SQLV_ERR_NOMEM;
}

static int def_encode(const sqlv__seq_def *d, base_buf *out) {
    int rc = base_buf_append_byte(out, SEQ_FORMAT_VERSION);
    uint8_t id[5] = {(uint8_t)(d->id >> 24), (uint8_t)(d->id >> 16), (uint8_t)(d->id >> 8),
                     (uint8_t)d->id, (uint8_t)d->type_bytes};
    if (rc == 0) rc = base_buf_append(out, id, 5);
    put_u64(out, (uint64_t)d->increment, &rc);
    put_u64(out, (uint64_t)d->min, &rc);
    put_u64(out, (uint64_t)d->max, &rc);
    put_u64(out, (uint64_t)d->start, &rc);
    put_u64(out, (uint64_t)d->cache, &rc);
    uint8_t flags = (uint8_t)((d->cycle ? 1 : 0) | (d->cache_given ? 2 : 0));
    if (rc == 0) rc = base_buf_append_byte(out, flags);
    const char *strs[3] = {d->name, d->owner_table, d->owner_column};
    for (int i = 0; i < 3; i++) {
        put_u16(out, strlen(strs[i]), &rc);
        if (rc == 0) rc = base_buf_append(out, strs[i], strlen(strs[i]));
    }
    return rc == 0 ? 0 : SQLV_ERR_NOMEM;
}

/* -1 when malformed. */
static int def_decode(const uint8_t *p, size_t len, sqlv__seq_def *d) {
    memset(d, 0, sizeof(*d));
    if (len < 1 + 5 + 40 + 1 || p[0] != SEQ_FORMAT_VERSION) return -1;
    d->id = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    d->type_bytes = p[5];
    d->increment = (int64_t)get_u64(p + 6);
    d->min = (int64_t)get_u64(p + 14);
    d->max = (int64_t)get_u64(p + 22);
    d->start = (int64_t)get_u64(p + 30);
    d->cache = (int64_t)get_u64(p + 38);
    d->cycle = (p[46] & 1) != 0;
    d->cache_given = (p[46] & 2) != 0;
    size_t o = 47;
    char *strs[3] = {d->name, d->owner_table, d->owner_column};
    for (int i = 0; i < 3; i++) {
        if (o + 2 > len) return -1;
        size_t n = (size_t)p[o] << 8 | p[o + 1];
        o += 2;
        if (n >= NAME_BYTES || o + n > len) return -1;
        memcpy(strs[i], p + o, n);
        strs[i][n] = 0;
        o += n;
    }
    if (d->increment == 0 || d->min >= d->max || d->cache < 1) return -1;
    return 0;
}

/* TXN_OK with *found; a txn error (err set); SQLV_ERR_NOMEM. A malformed
** row is an error (XX001), not a crash. */
static int def_get(txn *kv, const char *name, sqlv__seq_def *d, bool *found, txn_error *err) {
    base_buf k = {0}, v = {0};
    *found = false;
    int rc = def_key(&k, name);
    if (rc == 0) rc = txn_get(kv, k.data, k.len, &v, err);
    if (rc == TXN_NOT_FOUND) {
        rc = TXN_OK;
    } else if (rc == TXN_OK) {
        if (def_decode(v.data, v.len, d) != 0) {
            base_strlcpy(err->sqlstate, "XX001", sizeof(err->sqlstate));
            snprintf(err->message, sizeof(err->message), "malformed sequence row for \"%s\"", name);
            rc = TXN_ERR_INVALID;
        } else {
            *found = true;
        }
    }
    base_buf_free(&k);
    base_buf_free(&v);
    return rc;
}

static int def_put(txn *kv, const sqlv__seq_def *d, txn_error *err) {
    base_buf k = {0}, v = {0};
    int rc = def_key(&k, d->name);
    if (rc == 0) rc = def_encode(d, &v);
    if (rc == 0) rc = txn_put(kv, k.data, k.len, v.data, v.len, err);
    base_buf_free(&k);
    base_buf_free(&v);
    return rc;
}

static int state_get(txn *kv, const sqlv__seq_def *d, int64_t *last, bool *called,
                     txn_error *err) {
    base_buf k = {0}, v = {0};
    *last = d->start;
    *called = false;
    int rc = state_key(&k, d->id);
    if (rc == 0) rc = txn_get(kv, k.data, k.len, &v, err);
    if (rc == TXN_NOT_FOUND) rc = TXN_OK;
    else if (rc == TXN_OK && v.len == 10 && v.data[0] == SEQ_FORMAT_VERSION) {
        *last = (int64_t)get_u64(v.data + 1);
        *called = v.data[9] != 0;
    } else if (rc == TXN_OK) {
        base_strlcpy(err->sqlstate, "XX001", sizeof(err->sqlstate));
        snprintf(err->message, sizeof(err->message), "malformed state of sequence \"%s\"", d->name);
        rc = TXN_ERR_INVALID;
    }
    base_buf_free(&k);
    base_buf_free(&v);
    return rc;
}

static int state_put(txn *kv, uint32_t id, int64_t last, bool called, txn_error *err) {
    base_buf k = {0}, v = {0};
    int rc = state_key(&k, id);
    if (rc == 0) rc = base_buf_append_byte(&v, SEQ_FORMAT_VERSION);
    put_u64(&v, (uint64_t)last, &rc);
    if (rc == 0) rc = base_buf_append_byte(&v, called ? 1 : 0);
    if (rc != 0) rc = SQLV_ERR_NOMEM;
    if (rc == 0) rc = txn_put(kv, k.data, k.len, v.data, v.len, err);
    base_buf_free(&k);
    base_buf_free(&v);
    return rc;
}

static int def_delete(txn *kv, const sqlv__seq_def *d, txn_error *err) {
    base_buf k = {0};
    int rc = def_key(&k, d->name);
    if (rc == 0) rc = txn_delete(kv, k.data, k.len, err);
    if (rc == TXN_OK) rc = state_key(&k, d->id);
    if (rc == 0) rc = txn_delete(kv, k.data, k.len, err);
    base_buf_free(&k);
    return rc;
}

int sqlv__seq_list(txn *kv, sqlv__seq_def **out, int *n, txn_error *err) {
    base_buf s = {0}, e = {0};
    txn_iter *it = NULL;
    sqlv__seq_def *v = NULL;
    int cap = 0, rc = SQLV_ERR_NOMEM;
    *out = NULL;
    *n = 0;
    if (enc_key_prefix(&s, SQLV__SEQUENCES_TABLE_ID, 1) != ENC_OK ||
        enc_key_prefix(&e, SQLV__SEQUENCES_TABLE_ID, 2) != ENC_OK)
        goto cleanup;
    rc = txn_scan(kv, s.data, s.len, e.data, e.len, false, &it, err);
    for (int guard = 0; rc == TXN_OK; guard++) {
        const uint8_t *key, *val;
        size_t klen, vlen;
        int nrc = txn_iter_next(it, &key, &klen, &val, &vlen, err);
        if (nrc <= 0) {
            rc = nrc;
            break;
        }
        (void)key;
        (void)klen;
        if (guard >= SQLV__SEQUENCES_MAX) {
            rc = TXN_ERR_LIMIT;
            break;
        }
        if (*n == cap) {
            int ncap = cap ? cap * 2 : 8;
            sqlv__seq_def *nv = base_realloc(v, sizeof(*nv) * (size_t)ncap);
            if (nv == NULL) {
                rc = SQLV_ERR_NOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        if (def_decode(val, vlen, &v[*n]) == 0) (*n)++; /* a malformed row is skipped */
    }
cleanup:
    if (it) txn_iter_close(it);
    base_buf_free(&s);
    base_buf_free(&e);
    if (rc == TXN_OK) {
        *out = v;
    } else {
        base_free(v);
        *n = 0;
    }
    return rc;
}

/* The definition whose id is id, through kv. */
static int def_by_id(txn *kv, uint32_t id, sqlv__seq_def *d, bool *found, txn_error *err) {
    sqlv__seq_def *list = NULL;
    int n = 0;
    *found = false;
    int rc = sqlv__seq_list(kv, &list, &n, err);
    for (int i = 0; rc == TXN_OK && i < n; i++) {
        if (list[i].id != id) continue;
        *d = list[i];
        *found = true;
        break;
    }
    base_free(list);
    return rc;
}

int sqlv__seq_lookup(sqlv_session *s, const char *name, uint32_t id, sqlv__seq_def *d,
                     bool *found) {
    txn_error err = {{0}, {0}};
    txn *kv = s->kv;
    *found = false;
    if (kv == NULL && txn_begin(s->engine->db, &(txn_options){.read_only = true}, &kv) != TXN_OK)
        return TXN_ERR_UNAVAILABLE;
    int rc = name ? def_get(kv, name, d, found, &err) : def_by_id(kv, id, d, found, &err);
    if (kv != s->kv) txn_rollback(kv);
    return rc;
}

int sqlv__seq_last_value(sqlv_session *s, const sqlv__seq_def *d, int64_t *last, bool *called) {
    txn_error err = {{0}, {0}};
    txn *kv = NULL;
    /* a transaction of its own: the state row never enters the user's read set */
    int rc = txn_begin(s->engine->db, &(txn_options){.read_only = true}, &kv);
    if (rc != TXN_OK) return rc;
    rc = state_get(kv, d, last, called, &err);
    txn_rollback(kv);
    if (rc == TXN_OK && !*called && s->kv != NULL) { /* created in the open block? */
        bool in_block = false;
        sqlv__seq_def bd;
        if (def_get(s->kv, d->name, &bd, &in_block, &err) == TXN_OK && in_block)
            rc = state_get(s->kv, d, last, called, &err);
    }
    return rc;
}

/* ---- value arithmetic -------------------------------------------------------------- */

static void type_bounds(int type_bytes, int64_t *lo, int64_t *hi) {
    *lo = type_bytes == 2 ? INT16_MIN : type_bytes == 4 ? INT32_MIN : INT64_MIN;
    *hi = type_bytes == 2 ? INT16_MAX : type_bytes == 4 ? INT32_MAX : INT64_MAX;
}

static const char *type_name(int type_bytes) {
    return type_bytes == 2 ? "smallint" : type_bytes == 4 ? "integer" : "bigint";
}

/* Reserve up to want values after (last, called): the first, how many, and
** the new last. 1 with state/msg at the end of a sequence without CYCLE. */
static int reserve(const sqlv__seq_def *d, int64_t last, bool called, int64_t want,
                   int64_t *first, int64_t *count, int64_t *new_last, char state[6], char *msg,
                   size_t size) {
    int64_t v = last;
    if (called && (__builtin_add_overflow(last, d->increment, &v) || v > d->max || v < d->min)) {
        if (!d->cycle) {
            base_strlcpy(state, "2200H", 6);
            snprintf(msg, size, "nextval: reached %s value of sequence \"%.150s\" (%lld)",
                     d->increment > 0 ? "maximum" : "minimum", d->name,
                     (long long)(d->increment > 0 ? d->max : d->min));
            return 1;
        }
        v = d->increment > 0 ? d->min : d->max;
    }
    if (v > d->max || v < d->min) { /* a state outside ALTERed bounds */
        base_strlcpy(state, "2200H", 6);
        snprintf(msg, size, "nextval: reached %s value of sequence \"%.150s\" (%lld)",
                 v > d->max ? "maximum" : "minimum", d->name,
                 (long long)(v > d->max ? d->max : d->min));
        return 1;
    }
    __int128 room = d->increment > 0 ? ((__int128)d->max - v) / d->increment
                                     : ((__int128)v - d->min) / -(__int128)d->increment;
    int64_t n = want < 1 ? 1 : want;
    if ((__int128)n > room + 1) n = (int64_t)(room + 1);
    *first = v;
    *count = n;
    *new_last = (int64_t)((__int128)v + (__int128)(n - 1) * d->increment);
    return 0;
}

/* ---- the node cache ------------------------------------------------------------------ */

typedef struct seq_block {
    uint32_t id;
    char lname[NAME_BYTES]; /* lower(name) */
    int64_t next;           /* the next value handed out */
    int64_t left;           /* values left in the block */
    int64_t increment;
    int64_t last; /* the block's last value: what the state row says */
    /* The catalog version of the session that reserved it: a session that
    ** sees a newer one (DDL since, maybe a DROP and CREATE of the name on
    ** another node) does not trust the block (cache_take). */
    uint64_t version;
} seq_block;

struct sqlv__seq_cache {
    pthread_mutex_t mu;
    seq_block *v; /* n; owner: this */
    int n, cap;
};

static pthread_mutex_t cache_create_mu = PTHREAD_MUTEX_INITIALIZER;

static struct sqlv__seq_cache *cache_of(sqlv_engine *e) {
    pthread_mutex_lock(&cache_create_mu);
    if (e->seq_cache == NULL) {
        struct sqlv__seq_cache *c = base_calloc(1, sizeof(*c));
        if (c != NULL) {
            pthread_mutex_init(&c->mu, NULL);
            e->seq_cache = c;
        }
    }
    struct sqlv__seq_cache *c = e->seq_cache;
    pthread_mutex_unlock(&cache_create_mu);
    return c;
}

void sqlv__seq_engine_free(sqlv_engine *e) {
    struct sqlv__seq_cache *c = e->seq_cache;
    if (c == NULL) return;
    pthread_mutex_destroy(&c->mu);
    base_free(c->v);
    base_free(c);
    e->seq_cache = NULL;
}

/* Take one value of name's (or id's, lname NULL) block: true with *v, the
** block's id and name. A block reserved under an older catalog version
** than the session's (version) is taken out whole into *stale (stale->left
** > 0) instead: the next reservation checks it against the state row. */
static bool cache_take(sqlv_engine *e, const char *lname, uint32_t id, uint64_t version,
                       int64_t *v, uint32_t *got_id, char *got_name, size_t size,
                       seq_block *stale) {
    struct sqlv__seq_cache *c = cache_of(e);
    bool hit = false;
    stale->left = 0;
    if (c == NULL) return false;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n; i++) {
        seq_block *b = &c->v[i];
        if (lname ? strcmp(b->lname, lname) != 0 : b->id != id) continue;
        if (b->version < version) {
            *stale = *b;
            c->v[i] = c->v[--c->n];
        } else if (b->left > 0) {
            *v = b->next;
            *got_id = b->id;
            base_strlcpy(got_name, b->lname, size);
            b->left--;
            if (b->left > 0) b->next += b->increment; /* stays within the block */
            hit = true;
        }
        break;
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

/* Take id's block out of the cache (nobody hands out its values any more):
** true with a copy when it had values left. */
static bool cache_steal(sqlv_engine *e, uint32_t id, seq_block *out) {
    struct sqlv__seq_cache *c = cache_of(e);
    bool found = false;
    if (c == NULL) return false;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n; i++) {
        if (c->v[i].id != id) continue;
        *out = c->v[i];
        found = out->left > 0;
        c->v[i] = c->v[--c->n];
        break;
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}

static void cache_drop(sqlv_engine *e, uint32_t id) {
    seq_block b;
    (void)cache_steal(e, id, &b);
}

/* Install a new block for d. One already there with values left and ahead
** of it (another session of this node reserved after us) stays: values
** keep increasing for every session of the node; the other one's values
** are gaps. */
static void cache_put(sqlv_engine *e, const sqlv__seq_def *d, int64_t next, int64_t left,
                      int64_t last, uint64_t version) {
    struct sqlv__seq_cache *c = cache_of(e);
    if (c == NULL || left <= 0) return;
    char lname[NAME_BYTES];
    lower_into(lname, d->name, sizeof(lname));
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n; i++) {
        seq_block *b = &c->v[i];
        if (b->id != d->id && strcmp(b->lname, lname) != 0) continue;
        if (b->id == d->id && b->left > 0 && b->version >= version &&
            (d->increment > 0 ? b->next > next : b->next < next)) {
            pthread_mutex_unlock(&c->mu);
            return;
        }
        c->v[i--] = c->v[--c->n];
    }
    if (c->n == c->cap && c->cap < SQLV__SEQ_CACHE_ENTRIES_MAX) {
        int ncap = c->cap ? c->cap * 2 : 8;
        seq_block *nv = base_realloc(c->v, sizeof(*nv) * (size_t)ncap);
        if (nv != NULL) {
            c->v = nv;
            c->cap = ncap;
        }
    }
    if (c->n == c->cap && c->n > 0) c->n--; /* full: the last one goes (its values are gaps) */
    if (c->n < c->cap) {
        seq_block *b = &c->v[c->n++];
        b->id = d->id;
        base_strlcpy(b->lname, lname, sizeof(b->lname));
        b->next = next;
        b->left = left;
        b->increment = d->increment;
        b->last = last;
        b->version = version;
    }
    pthread_mutex_unlock(&c->mu);
}

/* ---- the session's currval / lastval --------------------------------------------------- */

typedef struct seq_seen {
    char lname[NAME_BYTES];
    uint32_t id;
    int64_t value;
} seq_seen;

struct sqlv__seq_session {
    seq_seen *v; /* n; owner: this */
    int n, cap;
    int last; /* lastval(): index in v, -1 none */
    /* The INSERT running now said OVERRIDING SYSTEM VALUE: the texts the
    ** session derives from it (without the clause) are not checked again.
    ** Cleared when that INSERT ends (sqlv__seq_insert_done). */
    bool overriding;
};

static struct sqlv__seq_session *seq_session(sqlv_session *s) {
    if (s->seq == NULL) {
        s->seq = base_calloc(1, sizeof(*s->seq));
        if (s->seq != NULL) s->seq->last = -1;
    }
    return s->seq;
}

void sqlv__seq_insert_done(sqlv_session *s) {
    if (s->seq != NULL) s->seq->overriding = false;
}

void sqlv__seq_session_free(sqlv_session *s) {
    if (s->seq == NULL) return;
    base_free(s->seq->v);
    base_free(s->seq);
    s->seq = NULL;
}

static void seen_note(sqlv_session *s, const sqlv__seq_def *d, int64_t value, bool as_last) {
    struct sqlv__seq_session *q = seq_session(s);
    if (q == NULL) return;
    char lname[NAME_BYTES];
    lower_into(lname, d->name, sizeof(lname));
    int i = 0;
    for (; i < q->n; i++)
        if (strcmp(q->v[i].lname, lname) == 0) break;
    if (i == q->n) {
        if (q->n == q->cap) {
            if (q->cap >= SQLV__SEQ_SESSION_MAX) return; /* currval of this one stays undefined */
            int ncap = q->cap ? q->cap * 2 : 4;
            seq_seen *nv = base_realloc(q->v, sizeof(*nv) * (size_t)ncap);
            if (nv == NULL) return;
            q->v = nv;
            q->cap = ncap;
        }
        base_strlcpy(q->v[i].lname, lname, sizeof(q->v[i].lname));
        q->n++;
    }
    q->v[i].id = d->id;
    q->v[i].value = value;
    if (as_last) q->last = i;
}

static void seen_forget(sqlv_session *s, const char *name) {
    struct sqlv__seq_session *q = s->seq;
    char lname[NAME_BYTES];
    if (q == NULL) return;
    lower_into(lname, name, sizeof(lname));
    for (int i = 0; i < q->n; i++) {
        if (strcmp(q->v[i].lname, lname) != 0) continue;
        q->v[i] = q->v[--q->n];
        if (q->last == i) q->last = -1;
        else if (q->last == q->n) q->last = i;
        return;
    }
}

/* ---- the functions ------------------------------------------------------------------- */

/* A function's sequence argument: a name ("s", "public.s", "\"S\"") folded
** as PostgreSQL folds it, or an OID (x::regclass): *id. 0, or 1 with the
** error recorded. */
static int seq_arg(sqlite3_context *ctx, sqlite3_value *v, char *name, size_t size,
                   uint32_t *id) {
    sqlv_session *s = sqlite3_user_data(ctx);
    *id = 0;
    name[0] = 0;
    if (sqlite3_value_type(v) == SQLITE_INTEGER) {
        int kind;
        if (!sqlv__pgcat_oid_parse(sqlite3_value_int64(v), id, &kind) ||
            kind != SQLV__PGCAT_KIND_TABLE) {
            sqlv__session_error(s, "42P01", "could not open relation with OID %lld",
                                (long long)sqlite3_value_int64(v));
            sqlite3_result_error(ctx, "could not open relation", -1);
            return 1;
        }
        return 0;
    }
    const char *text = (const char *)sqlite3_value_text(v);
    if (text == NULL) text = "";
    const char *p = text, *end = text + strlen(text);
    for (int guard = 0; guard < 3; guard++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (sqlv__tok_ident(&t, name, size) != 0) break;
        if (t.kind == SQLV__TOK_WORD) lower_into(name, name, size);
        sqlv__token dot = sqlv__lex_next(&p, end);
        if (dot.kind == SQLV__TOK_END) return 0;
        if (!sqlv__tok_punct(&dot, '.')) break;
    }
    sqlv__session_error(s, "42602", "invalid name syntax");
    sqlite3_result_error(ctx, "invalid name syntax", -1);
    return 1;
}

static void not_found(sqlite3_context *ctx, const char *name, uint32_t id) {
    sqlv_session *s = sqlite3_user_data(ctx);
    if (name[0])
        sqlv__session_error(s, "42P01", "relation \"%s\" does not exist", name);
    else
        sqlv__session_error(s, "42P01", "could not open relation with OID %lld",
                            (long long)sqlv__pgcat_oid(id, SQLV__PGCAT_KIND_TABLE));
    sqlite3_result_error(ctx, "relation does not exist", -1);
}

static void txn_failed(sqlite3_context *ctx, int rc, txn_error *err) {
    sqlv_session *s = sqlite3_user_data(ctx);
    if (rc == SQLV_ERR_NOMEM) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    txn_error_set(err, rc);
    sqlv__session_error(s, err->sqlstate[0] ? err->sqlstate : "XX000", "%s",
                        err->message[0] ? err->message : "transaction failed");
    sqlite3_result_error(ctx, err->message[0] ? err->message : "transaction failed", -1);
}

static void pause_before_retry(int attempt) {
    /* jitter, so that nodes racing for one state row stop colliding in step */
    long us = SEQ_RETRY_PAUSE_US * (long)(attempt < 16 ? attempt : 16) +
              (long)((base_monotonic_ns() / 1000) % SEQ_RETRY_PAUSE_US);
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* How many values one state write reserves for this node. */
static int64_t block_size(const sqlv__seq_def *d) {
    return d->cache_given ? d->cache : BASE_MAX(d->cache, SQLV__SEQ_NODE_CACHE_DEFAULT);
}

typedef enum seq_op { OP_NEXT, OP_SET } seq_op;

/* One operation on a sequence's state. */
typedef struct op_args {
    seq_op op;
    int64_t set_value;
    bool set_called;
    bool node_block; /* OP_NEXT: reserve a block for the node cache */
    seq_block stale; /* OP_NEXT: a block the cache distrusted (left > 0), or none */
    /* results */
    sqlv__seq_def d;
    int64_t first, count, last;
    char state[6];
    char msg[256];
} op_args;

/* The state change of a through kv; TXN_OK (a->state set on a user
** error), TXN_NOT_FOUND when the sequence is not there, a txn error. */
static int op_apply(txn *kv, const char *name, uint32_t id, op_args *a, txn_error *err) {
    bool found = false;
    int rc = name[0] ? def_get(kv, name, &a->d, &found, err)
                     : def_by_id(kv, id, &a->d, &found, err);
    if (rc != TXN_OK) return rc;
    if (!found) return TXN_NOT_FOUND;
    if (a->op == OP_SET) {
        if (a->set_value < a->d.min || a->set_value > a->d.max) {
            base_strlcpy(a->state, "22003", sizeof(a->state));
            snprintf(a->msg, sizeof(a->msg),
                     "setval: value %lld is out of bounds for sequence \"%.150s\" (%lld..%lld)",
                     (long long)a->set_value, a->d.name, (long long)a->d.min,
                     (long long)a->d.max);
            return TXN_OK;
        }
        return state_put(kv, a->d.id, a->set_value, a->set_called, err);
    }
    int64_t last;
    bool called;
    rc = state_get(kv, &a->d, &last, &called, err);
    if (rc != TXN_OK) return rc;
    /* a distrusted block of this very sequence that nobody moved past:
    ** its unused values are still ours (a single node loses none to DDL) */
    const seq_block *b = &a->stale;
    if (b->left > 0 && b->id == a->d.id && called && last == b->last &&
        b->increment == a->d.increment && b->next >= a->d.min && b->next <= a->d.max)
        last = b->next - b->increment;
    if (reserve(&a->d, last, called, a->node_block ? block_size(&a->d) : 1, &a->first, &a->count,
                &a->last, a->state, a->msg, sizeof(a->msg)) != 0)
        return TXN_OK;
    return state_put(kv, a->d.id, a->last, true, err);
}

/* Run a: in a transaction of its own, retried on 40001; a sequence it does
** not find is looked for in the session's open transaction (created in its
** block), where a runs without a block. 1 with the error given to ctx. */
static int op_run(sqlite3_context *ctx, const char *name, uint32_t id, op_args *a) {
    sqlv_session *s = sqlite3_user_data(ctx);
    txn_error err = {{0}, {0}};
    int rc = TXN_OK;
    a->node_block = a->op == OP_NEXT;
    for (int attempt = 0; attempt < SQLV__SEQ_RETRIES_MAX; attempt++) {
        txn *kv = NULL;
        memset(&err, 0, sizeof(err));
        a->state[0] = 0;
        if (attempt > 0) pause_before_retry(attempt);
        if ((rc = txn_begin(s->engine->db, NULL, &kv)) != TXN_OK) break;
        rc = op_apply(kv, name, id, a, &err);
        if (rc != TXN_OK || a->state[0]) {
            txn_rollback(kv);
            if (rc == TXN_ERR_RETRY) continue;
            break;
        }
        rc = txn_commit(kv, NULL, &err); /* frees kv */
        if (rc != TXN_ERR_RETRY) break;
    }
    if (rc == TXN_NOT_FOUND && s->kv != NULL && !s->kv_read_only) {
        /* created in the session's open block: only its transaction sees it */
        memset(&err, 0, sizeof(err));
        a->state[0] = 0;
        a->node_block = false;
        rc = op_apply(s->kv, name, id, a, &err);
    } else if (rc == TXN_OK && !a->state[0] && a->op == OP_NEXT) {
        if (a->count > 1)
            cache_put(s->engine, &a->d, a->first + a->d.increment, a->count - 1, a->last,
                      s->cat->version);
    }
    if (rc == TXN_NOT_FOUND) {
        not_found(ctx, name, id);
        return 1;
    }
    if (rc != TXN_OK) {
        txn_failed(ctx, rc, &err);
        return 1;
    }
    if (a->state[0]) {
        sqlv__session_error(s, a->state, "%s", a->msg);
        sqlite3_result_error(ctx, a->msg, -1);
        return 1;
    }
    return 0;
}

static void fn_nextval(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    char name[NAME_BYTES];
    uint32_t id, got_id;
    int64_t v;
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    if (seq_arg(ctx, argv[0], name, sizeof(name), &id) != 0) return;
    if (sqlv__priv_sequence(s, name, id, SQLV__PRIV_USAGE | SQLV__PRIV_UPDATE) != 0) {
        sqlite3_result_error(ctx, "permission denied for sequence", -1);
        return;
    }
    op_args *a = base_calloc(1, sizeof(*a)); /* owner: this function */
    if (a == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    char lname[NAME_BYTES];
    lower_into(lname, name, sizeof(lname));
    if (cache_take(s->engine, name[0] ? lname : NULL, id, s->cat->version, &v, &got_id, a->d.name,
                   sizeof(a->d.name), &a->stale)) {
        a->d.id = got_id;
        seen_note(s, &a->d, v, true);
        sqlite3_result_int64(ctx, v);
    } else {
        a->op = OP_NEXT;
        if (op_run(ctx, name, id, a) == 0) {
            seen_note(s, &a->d, a->first, true);
            sqlite3_result_int64(ctx, a->first);
        }
    }
    base_free(a);
}

static void fn_setval(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    char name[NAME_BYTES];
    uint32_t id;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL ||
        (argc > 2 && sqlite3_value_type(argv[2]) == SQLITE_NULL)) {
        sqlite3_result_null(ctx);
        return;
    }
    if (seq_arg(ctx, argv[0], name, sizeof(name), &id) != 0) return;
    if (sqlv__priv_sequence(s, name, id, SQLV__PRIV_UPDATE) != 0) {
        sqlite3_result_error(ctx, "permission denied for sequence", -1);
        return;
    }
    op_args *a = base_calloc(1, sizeof(*a)); /* owner: this function */
    if (a == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    a->op = OP_SET;
    a->set_value = sqlite3_value_int64(argv[1]);
    a->set_called = argc > 2 ? sqlite3_value_int(argv[2]) != 0 : true;
    if (op_run(ctx, name, id, a) == 0) {
        cache_drop(s->engine, a->d.id);
        if (a->set_called) seen_note(s, &a->d, a->set_value, false);
        sqlite3_result_int64(ctx, a->set_value);
    }
    base_free(a);
}

/* Does the sequence exist (for currval's 42P01 before 55000)? */
static bool seq_exists(sqlv_session *s, const char *name) {
    txn *kv = NULL;
    txn_error err = {{0}, {0}};
    sqlv__seq_def d;
    bool found = false;
    if (txn_begin(s->engine->db, &(txn_options){.read_only = true}, &kv) == TXN_OK) {
        (void)def_get(kv, name, &d, &found, &err);
        txn_rollback(kv);
    }
    if (!found && s->kv != NULL) (void)def_get(s->kv, name, &d, &found, &err);
    return found;
}

static void fn_currval(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    char name[NAME_BYTES], lname[NAME_BYTES];
    uint32_t id;
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    if (seq_arg(ctx, argv[0], name, sizeof(name), &id) != 0) return;
    if (sqlv__priv_sequence(s, name, id, SQLV__PRIV_USAGE | SQLV__PRIV_SELECT) != 0) {
        sqlite3_result_error(ctx, "permission denied for sequence", -1);
        return;
    }
    lower_into(lname, name, sizeof(lname));
    for (int i = 0; s->seq && i < s->seq->n; i++) {
        const seq_seen *e = &s->seq->v[i];
        if (name[0] ? strcmp(e->lname, lname) == 0 : e->id == id) {
            sqlite3_result_int64(ctx, e->value);
            return;
        }
    }
    if (name[0] && !seq_exists(s, name)) {
        not_found(ctx, name, id);
        return;
    }
    sqlv__session_error(s, "55000", "currval of sequence \"%s\" is not yet defined in this session",
                        name);
    sqlite3_result_error(ctx, "currval is not yet defined in this session", -1);
}

static void fn_lastval(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    (void)argc;
    (void)argv;
    if (s->seq == NULL || s->seq->last < 0) {
        sqlv__session_error(s, "55000", "lastval is not yet defined in this session");
        sqlite3_result_error(ctx, "lastval is not yet defined in this session", -1);
        return;
    }
    if (sqlv__priv_sequence(s, "", s->seq->v[s->seq->last].id,
                            SQLV__PRIV_USAGE | SQLV__PRIV_SELECT) != 0) {
        sqlite3_result_error(ctx, "permission denied for sequence", -1);
        return;
    }
    sqlite3_result_int64(ctx, s->seq->v[s->seq->last].value);
}

/* The sequence a column default draws from: "nextval('x')" and the
** identity forms; true with the name. */
static bool default_sequence(const char *expr, char *name, size_t size, char *identity) {
    const char *p = expr, *end = expr + strlen(expr);
    sqlv__token t = sqlv__lex_next(&p, end);
    if (sqlv__tok_punct(&t, '(')) t = sqlv__lex_next(&p, end);
    *identity = 0;
    if (sqlv__tok_is(&t, "meridian_identity_always")) *identity = 'a';
    else if (sqlv__tok_is(&t, "meridian_identity")) *identity = 'd';
    else if (!sqlv__tok_is(&t, "nextval")) return false;
    if (!sqlv__tok_punct((sqlv__token[]){sqlv__lex_next(&p, end)}, '(')) return false;
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "meridian_regclass") || sqlv__tok_is(&t, "CAST")) {
        if (!sqlv__tok_punct((sqlv__token[]){sqlv__lex_next(&p, end)}, '(')) return false;
        t = sqlv__lex_next(&p, end);
    }
    if (t.kind != SQLV__TOK_STRING || t.len < 2 || t.start[0] != '\'') return false;
    /* the literal's text, '' undoubled, then parsed as a name */
    char lit[NAME_BYTES * 2];
    size_t o = 0;
    for (size_t i = 1; i + 1 < t.len && o + 1 < sizeof(lit); i++) {
        lit[o++] = t.start[i];
        if (t.start[i] == '\'' && i + 2 < t.len && t.start[i + 1] == '\'') i++;
    }
    lit[o] = 0;
    const char *q = lit, *qend = lit + o;
    for (int guard = 0; guard < 3; guard++) {
        sqlv__token n = sqlv__lex_next(&q, qend);
        if (sqlv__tok_ident(&n, name, size) != 0) return false;
        if (n.kind == SQLV__TOK_WORD) lower_into(name, name, size);
        sqlv__token dot = sqlv__lex_next(&q, qend);
        if (dot.kind == SQLV__TOK_END) return true;
        if (!sqlv__tok_punct(&dot, '.')) return false;
    }
    return false;
}

char sqlv__seq_column_identity(const sqlv__column *c) {
    char name[NAME_BYTES], identity = 0;
    if (c->default_expr == NULL) return 0;
    return default_sequence(c->default_expr, name, sizeof(name), &identity) ? identity : 0;
}

bool sqlv__seq_column_sequence(const sqlv__column *c, char *name, size_t size) {
    char identity = 0;
    return c->default_expr != NULL && default_sequence(c->default_expr, name, size, &identity);
}

/* pg_get_serial_sequence(table, column): "public.t_id_seq", or NULL. */
static void fn_get_serial_sequence(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sqlv_session *s = sqlite3_user_data(ctx);
    char tname[NAME_BYTES], cname[NAME_BYTES], seq[NAME_BYTES], out[NAME_BYTES * 2 + 16];
    (void)argc;
    const char *ta = (const char *)sqlite3_value_text(argv[0]);
    const char *ca = (const char *)sqlite3_value_text(argv[1]);
    if (ta == NULL || ca == NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    /* the table argument is a (maybe qualified) name; the column is verbatim */
    const char *p = ta, *end = ta + strlen(ta);
    tname[0] = 0;
    for (int guard = 0; guard < 3; guard++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (sqlv__tok_ident(&t, tname, sizeof(tname)) != 0) break;
        if (t.kind == SQLV__TOK_WORD) lower_into(tname, tname, sizeof(tname));
        if (!sqlv__tok_punct((sqlv__token[]){sqlv__lex_next(&p, end)}, '.')) break;
    }
    base_strlcpy(cname, ca, sizeof(cname));
    const sqlv__table *t = tname[0] ? sqlv__pgcat_table_by_name(s, tname) : NULL;
    if (t == NULL) {
        sqlv__session_error(s, "42P01", "relation \"%s\" does not exist", ta);
        sqlite3_result_error(ctx, "relation does not exist", -1);
        return;
    }
    for (int i = 0; i < t->ncols; i++) {
        if (strcmp(t->cols[i].name, cname) != 0) continue;
        if (!sqlv__seq_column_sequence(&t->cols[i], seq, sizeof(seq))) break;
        char q[NAME_BYTES + 8];
        sqlv__pgcat_quote_ident(seq, q, sizeof(q));
        snprintf(out, sizeof(out), "public.%s", q);
        sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
        return;
    }
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i].name, cname) == 0) {
            sqlite3_result_null(ctx);
            return;
        }
    sqlv__session_error(s, "42703", "column \"%s\" of relation \"%s\" does not exist", cname,
                        t->name);
    sqlite3_result_error(ctx, "column does not exist", -1);
}

int sqlv__seq_register(sqlv_session *s) {
    static const struct {
        const char *name;
        int nargs;
        void (*fn)(sqlite3_context *, int, sqlite3_value **);
    } fns[] = {
        {"nextval", 1, fn_nextval},
        {"meridian_identity", 1, fn_nextval},
        {"meridian_identity_always", 1, fn_nextval},
        {"currval", 1, fn_currval},
        {"lastval", 0, fn_lastval},
        {"setval", 2, fn_setval},
        {"setval", 3, fn_setval},
        {"pg_get_serial_sequence", 2, fn_get_serial_sequence},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(fns); i++)
        if (sqlite3_create_function(s->db, fns[i].name, fns[i].nargs, SQLITE_UTF8, s, fns[i].fn,
                                    NULL, NULL) != SQLITE_OK)
            return -1;
    return 0;
}

/* ---- CREATE / ALTER / DROP SEQUENCE ------------------------------------------------------ */

/* The options of CREATE / ALTER SEQUENCE (and of an IDENTITY column). */
typedef struct seq_opts {
    bool has_type, has_inc, has_min, no_min, has_max, no_max, has_start, has_cache, has_cycle;
    bool restart, has_restart_value, has_owned, owned_none;
    int type_bytes;
    int64_t inc, min, max, start, cache, restart_value;
    bool cycle;
    char owned_table[NAME_BYTES], owned_column[NAME_BYTES];
} seq_opts;

typedef struct parser {
    const char *p, *end;
    char state[6];
    char msg[640]; /* a 2BP01's DETAIL and HINT too */
} parser;

static sqlv__token next_tok(parser *ps) { return sqlv__lex_next(&ps->p, ps->end); }
static sqlv__token peek_tok(const parser *ps) {
    const char *q = ps->p;
    return sqlv__lex_next(&q, ps->end);
}

static int syntax(parser *ps, const sqlv__token *t) {
    base_strlcpy(ps->state, "42601", sizeof(ps->state));
    if (t->kind == SQLV__TOK_END)
        snprintf(ps->msg, sizeof(ps->msg), "syntax error at end of input");
    else
        snprintf(ps->msg, sizeof(ps->msg), "syntax error at or near \"%.*s\"",
                 (int)BASE_MIN(t->len, 60), t->start);
    return -1;
}

/* A name (folded unless quoted) into out. */
static int parse_name(parser *ps, char *out, size_t size) {
    sqlv__token t = next_tok(ps);
    if (t.kind != SQLV__TOK_WORD && t.kind != SQLV__TOK_QUOTED) return syntax(ps, &t);
    if (sqlv__tok_ident(&t, out, size) != 0) return syntax(ps, &t);
    if (t.kind == SQLV__TOK_WORD) lower_into(out, out, size);
    return 0;
}

/* [schema.]name: public or none. */
static int parse_qualified(parser *ps, char *out, size_t size) {
    if (parse_name(ps, out, size) != 0) return -1;
    sqlv__token t = peek_tok(ps);
    if (!sqlv__tok_punct(&t, '.')) return 0;
    (void)next_tok(ps);
    if (strcmp(out, "public") != 0) {
        base_strlcpy(ps->state, "3F000", sizeof(ps->state));
        snprintf(ps->msg, sizeof(ps->msg), "schema \"%s\" does not exist", out);
        return -1;
    }
    return parse_name(ps, out, size);
}

static int parse_int(parser *ps, int64_t *v) {
    sqlv__token t = next_tok(ps);
    bool neg = false;
    if (sqlv__tok_punct(&t, '-') || sqlv__tok_punct(&t, '+')) {
        neg = sqlv__tok_punct(&t, '-');
        t = next_tok(ps);
    }
    char buf[32];
    if (t.kind != SQLV__TOK_OTHER || t.len == 0 || t.len >= sizeof(buf)) return syntax(ps, &t);
    memcpy(buf, t.start, t.len);
    buf[t.len] = 0;
    for (size_t i = 0; i < t.len; i++)
        if (!isdigit((unsigned char)buf[i])) return syntax(ps, &t);
    /* parse the magnitude as unsigned: -9223372036854775808 fits */
    errno = 0;
    unsigned long long m = strtoull(buf, NULL, 10);
    if (errno != 0 || m > (unsigned long long)INT64_MAX + (neg ? 1 : 0)) {
        base_strlcpy(ps->state, "22003", sizeof(ps->state));
        snprintf(ps->msg, sizeof(ps->msg), "value \"%s%s\" is out of range for type bigint",
                 neg ? "-" : "", buf);
        return -1;
    }
    *v = neg ? (int64_t)(0 - m) : (int64_t)m;
    return 0;
}

/* Options until the end (or a ')' when in_parens, left unread). */
static int parse_opts(parser *ps, seq_opts *o, bool alter, bool in_parens) {
    for (int guard = 0; guard < 1000; guard++) {
        sqlv__token t = peek_tok(ps);
        if (t.kind == SQLV__TOK_END || (in_parens && sqlv__tok_punct(&t, ')'))) return 0;
        t = next_tok(ps);
        if (sqlv__tok_is(&t, "AS")) {
            sqlv__token ty = next_tok(ps);
            o->has_type = true;
            if (sqlv__tok_is(&ty, "smallint") || sqlv__tok_is(&ty, "int2")) o->type_bytes = 2;
            else if (sqlv__tok_is(&ty, "integer") || sqlv__tok_is(&ty, "int") ||
                     sqlv__tok_is(&ty, "int4"))
                o->type_bytes = 4;
            else if (sqlv__tok_is(&ty, "bigint") || sqlv__tok_is(&ty, "int8")) o->type_bytes = 8;
            else {
                base_strlcpy(ps->state, "22023", sizeof(ps->state));
                snprintf(ps->msg, sizeof(ps->msg),
                         "sequence type must be smallint, integer, or bigint");
                return -1;
            }
        } else if (sqlv__tok_is(&t, "INCREMENT")) {
            if (sqlv__tok_is((sqlv__token[]){peek_tok(ps)}, "BY")) (void)next_tok(ps);
            if (parse_int(ps, &o->inc) != 0) return -1;
            o->has_inc = true;
        } else if (sqlv__tok_is(&t, "MINVALUE")) {
            if (parse_int(ps, &o->min) != 0) return -1;
            o->has_min = true;
            o->no_min = false;
        } else if (sqlv__tok_is(&t, "MAXVALUE")) {
            if (parse_int(ps, &o->max) != 0) return -1;
            o->has_max = true;
            o->no_max = false;
        } else if (sqlv__tok_is(&t, "NO")) {
            sqlv__token w = next_tok(ps);
            if (sqlv__tok_is(&w, "MINVALUE")) {
                o->no_min = true;
                o->has_min = false;
            } else if (sqlv__tok_is(&w, "MAXVALUE")) {
                o->no_max = true;
                o->has_max = false;
            } else if (sqlv__tok_is(&w, "CYCLE")) {
                o->has_cycle = true;
                o->cycle = false;
            } else {
                return syntax(ps, &w);
            }
        } else if (sqlv__tok_is(&t, "START")) {
            if (sqlv__tok_is((sqlv__token[]){peek_tok(ps)}, "WITH")) (void)next_tok(ps);
            if (parse_int(ps, &o->start) != 0) return -1;
            o->has_start = true;
        } else if (alter && sqlv__tok_is(&t, "RESTART")) {
            o->restart = true;
            sqlv__token w = peek_tok(ps);
            if (sqlv__tok_is(&w, "WITH")) {
                (void)next_tok(ps);
                w = peek_tok(ps);
                if (w.kind != SQLV__TOK_OTHER && !sqlv__tok_punct(&w, '-') &&
                    !sqlv__tok_punct(&w, '+'))
                    return syntax(ps, &w);
            }
            if (w.kind == SQLV__TOK_OTHER || sqlv__tok_punct(&w, '-') ||
                sqlv__tok_punct(&w, '+')) {
                if (parse_int(ps, &o->restart_value) != 0) return -1;
                o->has_restart_value = true;
            }
        } else if (sqlv__tok_is(&t, "CACHE")) {
            if (parse_int(ps, &o->cache) != 0) return -1;
            o->has_cache = true;
        } else if (sqlv__tok_is(&t, "CYCLE")) {
            o->has_cycle = true;
            o->cycle = true;
        } else if (sqlv__tok_is(&t, "OWNED")) {
            sqlv__token by = next_tok(ps);
            if (!sqlv__tok_is(&by, "BY")) return syntax(ps, &by);
            o->has_owned = true;
            sqlv__token w = peek_tok(ps);
            if (sqlv__tok_is(&w, "NONE")) {
                (void)next_tok(ps);
                o->owned_none = true;
                continue;
            }
            o->owned_none = false;
            char a[NAME_BYTES], b[NAME_BYTES];
            if (parse_name(ps, a, sizeof(a)) != 0) return -1;
            sqlv__token dot = next_tok(ps);
            if (!sqlv__tok_punct(&dot, '.')) {
                base_strlcpy(ps->state, "42601", sizeof(ps->state));
                snprintf(ps->msg, sizeof(ps->msg), "invalid OWNED BY option");
                return -1;
            }
            if (parse_name(ps, b, sizeof(b)) != 0) return -1;
            if (sqlv__tok_punct((sqlv__token[]){peek_tok(ps)}, '.')) { /* schema.table.column */
                (void)next_tok(ps);
                base_strlcpy(a, b, sizeof(a));
                if (parse_name(ps, b, sizeof(b)) != 0) return -1;
            }
            base_strlcpy(o->owned_table, a, sizeof(o->owned_table));
            base_strlcpy(o->owned_column, b, sizeof(o->owned_column));
        } else if (sqlv__tok_is(&t, "SEQUENCE") && in_parens) {
            /* IDENTITY (SEQUENCE NAME x ...): the name is ours to choose */
            sqlv__token w = next_tok(ps);
            if (!sqlv__tok_is(&w, "NAME")) return syntax(ps, &w);
            char skip[NAME_BYTES];
            if (parse_qualified(ps, skip, sizeof(skip)) != 0) return -1;
        } else {
            return syntax(ps, &t);
        }
    }
    return syntax(ps, (sqlv__token[]){peek_tok(ps)});
}

static int opt_error(parser *ps, const char *fmt, long long a, long long b) {
    base_strlcpy(ps->state, "22023", sizeof(ps->state));
    snprintf(ps->msg, sizeof(ps->msg), fmt, a, b);
    return -1;
}

/* d (the old definition for ALTER, zeroed for CREATE) with o applied, then
** checked as PostgreSQL checks it. 0, or -1 with ps's error. */
static int opts_apply(parser *ps, const seq_opts *o, sqlv__seq_def *d, bool create) {
    int64_t tlo, thi, old_lo, old_hi;
    type_bounds(d->type_bytes ? d->type_bytes : 8, &old_lo, &old_hi);
    if (create) {
        d->type_bytes = 8;
        d->increment = 1;
        d->cache = 1;
    }
    bool was_type_min = !create && d->min == old_lo, was_type_max = !create && d->max == old_hi;
    bool was_default_min = !create && (d->min == 1 || was_type_min);
    bool was_default_max = !create && (d->max == -1 || was_type_max);
    if (o->has_type) d->type_bytes = o->type_bytes;
    type_bounds(d->type_bytes, &tlo, &thi);
    if (o->has_inc) d->increment = o->inc;
    if (d->increment == 0) {
        base_strlcpy(ps->state, "22023", sizeof(ps->state));
        snprintf(ps->msg, sizeof(ps->msg), "INCREMENT must not be zero");
        return -1;
    }
    bool asc = d->increment > 0;
    if (o->has_max) d->max = o->max;
    else if (create || o->no_max || (o->has_type && was_type_max) ||
             (o->has_inc && was_default_max))
        d->max = asc ? thi : -1;
    if (o->has_min) d->min = o->min;
    else if (create || o->no_min || (o->has_type && was_type_min) ||
             (o->has_inc && was_default_min))
        d->min = asc ? 1 : tlo;
    if (d->max > thi || d->max < tlo) {
        base_strlcpy(ps->state, "22023", sizeof(ps->state));
        snprintf(ps->msg, sizeof(ps->msg),
                 "MAXVALUE (%lld) is out of range for sequence data type %s",
                 (long long)d->max, type_name(d->type_bytes));
        return -1;
    }
    if (d->min > thi || d->min < tlo) {
        base_strlcpy(ps->state, "22023", sizeof(ps->state));
        snprintf(ps->msg, sizeof(ps->msg),
                 "MINVALUE (%lld) is out of range for sequence data type %s",
                 (long long)d->min, type_name(d->type_bytes));
        return -1;
    }
    if (d->min >= d->max)
        return opt_error(ps, "MINVALUE (%lld) must be less than MAXVALUE (%lld)", d->min, d->max);
    if (o->has_start) d->start = o->start;
    else if (create) d->start = asc ? d->min : d->max;
    if (d->start < d->min)
        return opt_error(ps, "START value (%lld) cannot be less than MINVALUE (%lld)", d->start,
                         d->min);
    if (d->start > d->max)
        return opt_error(ps, "START value (%lld) cannot be greater than MAXVALUE (%lld)",
                         d->start, d->max);
    if (o->has_restart_value && o->restart_value < d->min)
        return opt_error(ps, "RESTART value (%lld) cannot be less than MINVALUE (%lld)",
                         o->restart_value, d->min);
    if (o->has_restart_value && o->restart_value > d->max)
        return opt_error(ps, "RESTART value (%lld) cannot be greater than MAXVALUE (%lld)",
                         o->restart_value, d->max);
    if (o->has_cache) {
        if (o->cache < 1) {
            base_strlcpy(ps->state, "22023", sizeof(ps->state));
            snprintf(ps->msg, sizeof(ps->msg), "CACHE (%lld) must be greater than zero",
                     (long long)o->cache);
            return -1;
        }
        if (o->cache > SQLV__SEQ_CACHE_MAX)
            return opt_error(ps, "CACHE (%lld) must be at most %lld", o->cache,
                             SQLV__SEQ_CACHE_MAX);
        d->cache = o->cache;
        d->cache_given = true;
    }
    if (o->has_cycle) d->cycle = o->cycle;
    if (o->has_owned) {
        base_strlcpy(d->owner_table, o->owned_none ? "" : o->owned_table, sizeof(d->owner_table));
        base_strlcpy(d->owner_column, o->owned_none ? "" : o->owned_column,
                     sizeof(d->owner_column));
    }
    return 0;
}

/* A statement's work, done by attempt() in one transaction. */
typedef enum stmt_kind { K_CREATE, K_ALTER, K_DROP, K_CREATE_OWNED } stmt_kind;

#define DROP_NAMES_MAX 64
#define DEPS_MAX 64 /* column defaults one DROP SEQUENCE ... CASCADE drops */

typedef struct seq_stmt {
    stmt_kind kind;
    sqlv_session *s;
    bool if_exists, if_not_exists;
    char names[DROP_NAMES_MAX][NAME_BYTES];
    int nnames;
    seq_opts opts;
    uint32_t new_id; /* CREATE: allocated before the transaction */
    /* K_CREATE_OWNED: one sequence per spec, owned by a column */
    const sqlv__seq_spec *specs;
    int nspecs;
    const uint32_t *spec_ids;
    /* K_DROP: CASCADE given; the owner's DROP TABLE (no dependency or owner check) */
    bool cascade, owned_drop;
    /* K_ALTER ... OWNER TO: the new owner (privileges.c moves the owner row) */
    char new_owner[SQLV__NAME_BYTES_MAX + 1];
    /* results */
    uint32_t touched[DROP_NAMES_MAX]; /* ids whose node block goes after the commit */
    int ntouched;
    /* K_DROP ... CASCADE: the column defaults that go with the sequences */
    char dep_table[DEPS_MAX][NAME_BYTES], dep_column[DEPS_MAX][NAME_BYTES];
    int ndeps;
    char notice[256];
    parser ps; /* the error */
} seq_stmt;

/* The columns whose default draws from sequence d (2BP01 unless CASCADE,
** which notes them in st), as the statement's transaction sees the tables;
** an identity column's own sequence cannot go at all (PostgreSQL's
** internal dependency). 0 (st->ps.state set when refused), or
** SQLV_ERR_NOMEM. */
static int check_dependents(seq_stmt *st, const sqlv__catalog *cat, const sqlv__seq_def *d) {
    const sqlv__table **list = NULL; /* owner: this function (the array) */
    const sqlv__table *const *tables = (const sqlv__table *const *)cat->tables;
    int n = cat->ntables, ndeps = 0;
    char seq[NAME_BYTES], detail[512] = "";
    if (st->s->status == 'T') {
        if (sqlv__pgcat_tables(st->s, &list, &n) != 0) return SQLV_ERR_NOMEM;
        tables = list;
    }
    for (int i = 0; i < n && !st->ps.state[0]; i++) {
        const sqlv__table *t = tables[i];
        for (int c = 0; c < t->ncols && !st->ps.state[0]; c++) {
            if (!sqlv__seq_column_sequence(&t->cols[c], seq, sizeof(seq)) ||
                strcmp(seq, d->name) != 0)
                continue;
            if (sqlv__seq_column_identity(&t->cols[c]) != 0) {
                base_strlcpy(st->ps.state, "2BP01", sizeof(st->ps.state));
                snprintf(st->ps.msg, sizeof(st->ps.msg),
                         "cannot drop sequence %.63s because column %.63s of table %.63s "
                         "requires it\nHINT:  You can drop column %.63s of table %.63s instead.",
                         d->name, t->cols[c].name, t->name, t->cols[c].name, t->name);
                break;
            }
            ndeps++;
            size_t used = strlen(detail);
            if (used + 1 < sizeof(detail))
                snprintf(detail + used, sizeof(detail) - used,
                         "%sdefault value for column %s of table %s depends on sequence %s",
                         used ? "\n" : "", t->cols[c].name, t->name, d->name);
            if (st->cascade && st->ndeps < DEPS_MAX) {
                base_strlcpy(st->dep_table[st->ndeps], t->name, NAME_BYTES);
                base_strlcpy(st->dep_column[st->ndeps], t->cols[c].name, NAME_BYTES);
                st->ndeps++;
            }
        }
    }
    if (!st->ps.state[0] && ndeps > 0 && !st->cascade) {
        base_strlcpy(st->ps.state, "2BP01", sizeof(st->ps.state));
        snprintf(st->ps.msg, sizeof(st->ps.msg),
                 "cannot drop sequence %.63s because other objects depend on it\nDETAIL:  "
                 "%.300s\nHINT:  Use DROP ... CASCADE to drop the dependent objects too.",
                 d->name, detail);
    }
    base_free(list);
    return 0;
}

/* Is there a table (or index) named name, as the statement's transaction sees it? */
static bool table_taken(seq_stmt *st, const sqlv__catalog *cat, const char *name) {
    if (st->s->status == 'T') return sqlv__session_find_id(st->s, name) != 0;
    return sqlv__relation_taken((const sqlv__table *const *)cat->tables, cat->ntables, name);
}

/* The column's table exists with that column (OWNED BY). */
static int check_owner(seq_stmt *st, const sqlv__catalog *cat, const char *table,
                       const char *column) {
    sqlv__table *t = NULL;
    uint32_t id = 0;
    if (st->s->status == 'T') {
        id = sqlv__session_find_id(st->s, table);
        if (id != 0 && sqlv__session_table(st->s, id, &t) < 0) return SQLV_ERR_NOMEM;
    } else {
        const sqlv__table *ct = sqlv__catalog_find(cat, table);
        if (ct != NULL && sqlv__table_clone(ct, &t) != 0) return SQLV_ERR_NOMEM;
    }
    if (t == NULL) {
        base_strlcpy(st->ps.state, "42P01", sizeof(st->ps.state));
        snprintf(st->ps.msg, sizeof(st->ps.msg), "relation \"%s\" does not exist", table);
        return 0;
    }
    bool found = false;
    for (int i = 0; i < t->ncols; i++)
        found |= strcasecmp(t->cols[i].name, column) == 0;
    if (!found) {
        base_strlcpy(st->ps.state, "42703", sizeof(st->ps.state));
        snprintf(st->ps.msg, sizeof(st->ps.msg), "column \"%s\" of relation \"%s\" does not exist",
                 column, table);
    }
    sqlv__table_free(t);
    return 0;
}

/* Create one sequence (d complete but for the checks of its name). */
static int create_one(seq_stmt *st, txn *kv, const sqlv__catalog *cat, sqlv__seq_def *d,
                      txn_error *err) {
    sqlv__seq_def old;
    bool found = false;
    int rc = def_get(kv, d->name, &old, &found, err);
    if (rc != TXN_OK) return rc;
    if (found || table_taken(st, cat, d->name)) {
        snprintf(st->notice, sizeof(st->notice), "relation \"%.200s\" already exists%s", d->name,
                 st->if_not_exists ? ", skipping" : "");
        if (!st->if_not_exists) {
            base_strlcpy(st->ps.state, "42P07", sizeof(st->ps.state));
            base_strlcpy(st->ps.msg, st->notice, sizeof(st->ps.msg));
            st->notice[0] = 0;
        }
        return TXN_OK;
    }
    return def_put(kv, d, err);
}

/* ALTER and DROP take the sequence's owner (privileges.c; or the
** database's DROP, but for OWNER TO): 0 with st->ps.state set when the user
** may not (42501, as PostgreSQL), or a txn error. */
static int check_may_alter(seq_stmt *st, txn *kv, const sqlv__catalog *cat,
                           const sqlv__seq_def *d, txn_error *err) {
    bool ok = false;
    int rc = sqlv__priv_sequence_owner(st->s, kv, cat, d->id, d->owner_table,
                                       st->new_owner[0] == 0, &ok, err);
    if (rc != TXN_OK || ok) return rc;
    base_strlcpy(st->ps.state, "42501", sizeof(st->ps.state));
    snprintf(st->ps.msg, sizeof(st->ps.msg), "must be owner of sequence %.63s", d->name);
    return TXN_OK;
}

static int attempt(seq_stmt *st, txn *kv, const sqlv__catalog *cat, txn_error *err) {
    int rc = TXN_OK;
    st->ps.state[0] = 0;
    st->notice[0] = 0;
    st->ntouched = 0;
    st->ndeps = 0;
    switch (st->kind) {
    case K_CREATE: {
        sqlv__seq_def d;
        memset(&d, 0, sizeof(d));
        if (opts_apply(&st->ps, &st->opts, &d, true) != 0) return TXN_OK;
        d.id = st->new_id;
        base_strlcpy(d.name, st->names[0], sizeof(d.name));
        if (st->opts.has_owned && !st->opts.owned_none) {
            rc = check_owner(st, cat, d.owner_table, d.owner_column);
            if (rc != 0 || st->ps.state[0]) return rc;
        }
        rc = create_one(st, kv, cat, &d, err);
        break;
    }
    case K_CREATE_OWNED:
        for (int i = 0; i < st->nspecs && rc == TXN_OK && !st->ps.state[0]; i++) {
            const sqlv__seq_spec *sp = &st->specs[i];
            sqlv__seq_def d;
            seq_opts o;
            memset(&d, 0, sizeof(d));
            memset(&o, 0, sizeof(o));
            parser ps = {.p = sp->options, .end = sp->options + strlen(sp->options)};
            if (parse_opts(&ps, &o, false, true) != 0) {
                st->ps = ps;
                return TXN_OK;
            }
            o.has_type = true;
            o.type_bytes = sp->type_bytes;
            if (opts_apply(&st->ps, &o, &d, true) != 0) return TXN_OK;
            d.id = st->spec_ids[i];
            base_strlcpy(d.name, sp->name, sizeof(d.name));
            base_strlcpy(d.owner_table, sp->table, sizeof(d.owner_table));
            base_strlcpy(d.owner_column, sp->column, sizeof(d.owner_column));
            rc = create_one(st, kv, cat, &d, err);
        }
        break;
    case K_ALTER: {
        sqlv__seq_def d;
        bool found = false;
        rc = def_get(kv, st->names[0], &d, &found, err);
        if (rc != TXN_OK) return rc;
        if (!found) {
            snprintf(st->notice, sizeof(st->notice), "relation \"%.200s\" does not exist%s",
                     st->names[0], st->if_exists ? ", skipping" : "");
            if (!st->if_exists) {
                base_strlcpy(st->ps.state, "42P01", sizeof(st->ps.state));
                base_strlcpy(st->ps.msg, st->notice, sizeof(st->ps.msg));
                st->notice[0] = 0;
            }
            return TXN_OK;
        }
        rc = check_may_alter(st, kv, cat, &d, err);
        if (rc != TXN_OK || st->ps.state[0]) return rc;
        if (st->new_owner[0]) {
            if (d.owner_table[0]) { /* PostgreSQL's: it follows its table */
                base_strlcpy(st->ps.state, "0A000", sizeof(st->ps.state));
                snprintf(st->ps.msg, sizeof(st->ps.msg),
                         "cannot change owner of sequence \"%.63s\"\nDETAIL:  Sequence \"%.63s\" "
                         "is linked to table \"%.63s\".",
                         d.name, d.name, d.owner_table);
                return TXN_OK;
            }
            rc = sqlv__priv_set_owner(st->s, kv, d.id, st->new_owner, st->ps.state, st->ps.msg,
                                      sizeof(st->ps.msg), err);
            break;
        }
        if (opts_apply(&st->ps, &st->opts, &d, false) != 0) return TXN_OK;
        if (st->opts.has_owned && !st->opts.owned_none) {
            rc = check_owner(st, cat, d.owner_table, d.owner_column);
            if (rc != 0 || st->ps.state[0]) return rc;
        }
        rc = def_put(kv, &d, err);
        seq_block b;
        if (rc == TXN_OK && st->opts.restart) {
            rc = state_put(kv, d.id, st->opts.has_restart_value ? st->opts.restart_value : d.start,
                           false, err);
        } else if (rc == TXN_OK && cache_steal(st->s->engine, d.id, &b)) {
            /* give this node's unused values back, unless another node
            ** moved the state since it took them */
            int64_t last;
            bool called;
            rc = state_get(kv, &d, &last, &called, err);
            if (rc == TXN_OK && called && last == b.last)
                rc = state_put(kv, d.id, b.next - b.increment, true, err);
        }
        st->touched[st->ntouched++] = d.id;
        break;
    }
    case K_DROP:
        for (int i = 0; i < st->nnames && rc == TXN_OK; i++) {
            sqlv__seq_def d;
            bool found = false;
            rc = def_get(kv, st->names[i], &d, &found, err);
            if (rc != TXN_OK) break;
            if (!found) {
                snprintf(st->notice, sizeof(st->notice), "sequence \"%.200s\" does not exist%s",
                         st->names[i], st->if_exists ? ", skipping" : "");
                if (!st->if_exists) {
                    base_strlcpy(st->ps.state, "42P01", sizeof(st->ps.state));
                    base_strlcpy(st->ps.msg, st->notice, sizeof(st->ps.msg));
                    st->notice[0] = 0;
                    return TXN_OK;
                }
                continue;
            }
            if (!st->owned_drop) {
                rc = check_may_alter(st, kv, cat, &d, err);
                if (rc != TXN_OK || st->ps.state[0]) return rc;
                rc = check_dependents(st, cat, &d);
                if (rc != 0 || st->ps.state[0]) return rc;
            }
            rc = def_delete(kv, &d, err);
            st->touched[st->ntouched++] = d.id;
        }
        break;
    }
    if (rc == TXN_OK && !st->ps.state[0]) rc = sqlv__catalog_bump_version(kv, err);
    return rc;
}

static int run_ddl_attempt(sqlv_engine *e, txn *kv, const sqlv__catalog *cat, void *arg,
                           sqlv__result *res) {
    seq_stmt *st = arg;
    txn_error err = {{0}, {0}};
    (void)e;
    int rc = attempt(st, kv, cat, &err);
    if (rc == SQLV_ERR_NOMEM) return rc;
    if (rc != TXN_OK) {
        txn_error_set(&err, rc);
        base_strlcpy(res->sqlstate, err.sqlstate[0] ? err.sqlstate : "XX000",
                     sizeof(res->sqlstate));
        base_strlcpy(res->message, err.message, sizeof(res->message));
        return 0;
    }
    if (st->ps.state[0]) {
        base_strlcpy(res->sqlstate, st->ps.state, sizeof(res->sqlstate));
        base_strlcpy(res->message, st->ps.msg, sizeof(res->message));
    }
    base_strlcpy(res->notice, st->notice, sizeof(res->notice));
    return 0;
}

static int emit_tag(sqlv__run *r, const char *tag) {
    if (r->sink_rc == 0 && r->sink->command_complete)
        r->sink_rc = r->sink->command_complete(r->sink->ctx, tag);
    return STMT_OK;
}

static void emit_notice(sqlv__run *r, const char *msg) {
    if (r->sink_rc == 0 && r->sink->notice) r->sink_rc = r->sink->notice(r->sink->ctx, msg);
}

/* Run st: in the open block's transaction under a statement savepoint, or in
** one of its own (retried on 40001). STMT_OK with the notice sent, or
** STMT_FAILED with the error sent. */
static int execute(sqlv__run *r, seq_stmt *st) {
    sqlv_session *s = r->s;
    sqlv__result res;
    memset(&res, 0, sizeof(res));
    int rc;
    if (s->status == 'T') {
        txn_error err = {{0}, {0}};
        uint32_t sp;
        if (s->kv == NULL && (rc = sqlv__session_begin(s, false, &err)) != TXN_OK)
            return sqlv__fail_txn(r, rc, &err);
        if ((rc = txn_savepoint(s->kv, &sp)) != TXN_OK) return sqlv__fail_txn(r, rc, &err);
        rc = attempt(st, s->kv, s->cat, &err);
        if (rc != TXN_OK || st->ps.state[0]) {
            (void)txn_rollback_to(s->kv, sp);
            if (rc == SQLV_ERR_NOMEM) return sqlv__fail(r, "53200", "out of memory");
            return rc != TXN_OK ? sqlv__fail_txn(r, rc, &err)
                                : sqlv__fail(r, st->ps.state, st->ps.msg);
        }
        (void)txn_release(s->kv, sp);
        base_strlcpy(res.notice, st->notice, sizeof(res.notice));
    } else {
        rc = sqlv__engine_run_ddl(s->engine, run_ddl_attempt, st, &res);
        if (rc < 0) return sqlv__fail(r, "53200", "out of memory");
        if (res.sqlstate[0]) return sqlv__fail(r, res.sqlstate, res.message);
    }
    /* this node's blocks of what changed go (another node's live on:
    ** docs/sql.md "Sequences") */
    for (int i = 0; i < st->ntouched; i++)
        cache_drop(s->engine, st->touched[i]);
    if (res.notice[0]) emit_notice(r, res.notice);
    return STMT_OK;
}

/* An optional "IF EXISTS" (or "IF NOT EXISTS" when not_exists) next in ps:
** *present says whether it stood there. 0, or -1 with the syntax error (at
** the IF) in ps. */
static int parse_if_exists(parser *ps, bool not_exists, bool *present) {
    *present = false;
    sqlv__token w = peek_tok(ps);
    if (!sqlv__tok_is(&w, "IF")) return 0;
    (void)next_tok(ps);
    if ((not_exists && !sqlv__tok_is((sqlv__token[]){next_tok(ps)}, "NOT")) ||
        !sqlv__tok_is((sqlv__token[]){next_tok(ps)}, "EXISTS"))
        return syntax(ps, &w);
    *present = true;
    return 0;
}

/* "OWNER TO role" up to the end: the role, folded unless quoted (CURRENT_USER,
** SESSION_USER, CURRENT_ROLE, also as the dialect's "current_user()": the
** session's user). 0, or -1 with ps's error. */
static int parse_owner_to(parser *ps, const sqlv_session *s, char *out, size_t size) {
    char name[NAME_BYTES];
    (void)next_tok(ps); /* OWNER */
    sqlv__token w = next_tok(ps);
    if (!sqlv__tok_is(&w, "TO")) return syntax(ps, &w);
    w = peek_tok(ps);
    bool current = w.kind == SQLV__TOK_WORD &&
                   (sqlv__tok_is(&w, "CURRENT_USER") || sqlv__tok_is(&w, "SESSION_USER") ||
                    sqlv__tok_is(&w, "CURRENT_ROLE"));
    if (parse_name(ps, name, sizeof(name)) != 0) return -1;
    w = next_tok(ps);
    if (current && sqlv__tok_punct(&w, '(')) { /* the dialect's current_user() */
        w = next_tok(ps);
        if (!sqlv__tok_punct(&w, ')')) return syntax(ps, &w);
        w = next_tok(ps);
    }
    if (w.kind != SQLV__TOK_END) return syntax(ps, &w);
    if (current) base_strlcpy(name, s->user, sizeof(name));
    if (strlen(name) >= size) { /* longer than any role's name */
        base_strlcpy(ps->state, "42704", sizeof(ps->state));
        snprintf(ps->msg, sizeof(ps->msg), "role \"%.63s\" does not exist", name);
        return -1;
    }
    base_strlcpy(out, name, size);
    return 0;
}

int sqlv__seq_stmt(sqlv__run *r, const char *text, size_t len) {
    seq_stmt *st = base_calloc(1, sizeof(*st)); /* owner: this function */
    if (st == NULL) return sqlv__fail(r, "53200", "out of memory");
    st->s = r->s;
    parser *ps = &st->ps;
    ps->p = text;
    ps->end = text + len;
    int rc = STMT_FAILED;
    const char *tag = NULL;
    sqlv__token verb = next_tok(ps);
    sqlv__token t = next_tok(ps); /* SEQUENCE */
    (void)t;
    if (sqlv__tok_is(&verb, "CREATE")) {
        st->kind = K_CREATE;
        tag = "CREATE SEQUENCE";
        if (parse_if_exists(ps, true, &st->if_not_exists) != 0) goto failed;
        if (parse_qualified(ps, st->names[0], sizeof(st->names[0])) != 0) goto failed;
        if (parse_opts(ps, &st->opts, false, false) != 0) goto failed;
        sqlv__result res;
        memset(&res, 0, sizeof(res));
        if (sqlv__engine_allocate_table_id(r->s->engine, &st->new_id, &res) < 0) {
            rc = sqlv__fail(r, "53200", "out of memory");
            goto done;
        }
        if (res.sqlstate[0]) {
            rc = sqlv__fail(r, res.sqlstate, res.message);
            goto done;
        }
    } else if (sqlv__tok_is(&verb, "ALTER")) {
        st->kind = K_ALTER;
        tag = "ALTER SEQUENCE";
        if (parse_if_exists(ps, false, &st->if_exists) != 0) goto failed;
        if (parse_qualified(ps, st->names[0], sizeof(st->names[0])) != 0) goto failed;
        if (sqlv__tok_is((sqlv__token[]){peek_tok(ps)}, "OWNER")) {
            if (parse_owner_to(ps, r->s, st->new_owner, sizeof(st->new_owner)) != 0)
                goto failed;
        } else if (parse_opts(ps, &st->opts, true, false) != 0) {
            goto failed;
        }
    } else {
        st->kind = K_DROP;
        tag = "DROP SEQUENCE";
        if (parse_if_exists(ps, false, &st->if_exists) != 0) goto failed;
        sqlv__token w;
        for (;;) {
            if (st->nnames == DROP_NAMES_MAX) {
                rc = sqlv__fail(r, "54000", "too many sequences in DROP SEQUENCE");
                goto done;
            }
            if (parse_qualified(ps, st->names[st->nnames], sizeof(st->names[0])) != 0) goto failed;
            st->nnames++;
            w = next_tok(ps);
            if (!sqlv__tok_punct(&w, ',')) break;
        }
        st->cascade = sqlv__tok_is(&w, "CASCADE");
        if (sqlv__tok_is(&w, "CASCADE") || sqlv__tok_is(&w, "RESTRICT")) w = next_tok(ps);
        /* the defaults CASCADE drops are ALTERs of the block's (session.c) */
        if (st->cascade && r->s->status != 'T') {
            rc = sqlv__fail(r, "XX000", "DROP SEQUENCE ... CASCADE outside a transaction");
            goto done;
        }
        if (w.kind != SQLV__TOK_END) {
            (void)syntax(ps, &w);
            goto failed;
        }
    }
    if (execute(r, st) != STMT_OK) goto done;
    /* its creator owns it (privileges.c: USAGE, SELECT, UPDATE and granting them) */
    if (st->kind == K_CREATE) sqlv__priv_record_owner_id(r->s, st->new_id);
    if (st->new_owner[0]) sqlv__priv_invalidate(r->s); /* its own rights changed */
    /* CASCADE: the defaults that drew from them go in the same block */
    if (st->ndeps == 1) {
        snprintf(st->notice, sizeof(st->notice),
                 "drop cascades to default value for column %.63s of table %.63s",
                 st->dep_column[0], st->dep_table[0]);
        emit_notice(r, st->notice);
    } else if (st->ndeps > 1) {
        base_buf nb = {0};
        int nrc = base_buf_printf(&nb, "drop cascades to %d other objects\nDETAIL:  ", st->ndeps);
        for (int i = 0; i < st->ndeps && nrc == 0; i++)
            nrc = base_buf_printf(&nb, "%sdrop cascades to default value for column %s of table %s",
                                  i ? "\n" : "", st->dep_column[i], st->dep_table[i]);
        if (nrc == 0 && base_buf_append(&nb, "", 1) == 0) emit_notice(r, (const char *)nb.data);
        base_buf_free(&nb);
    }
    for (int i = 0; i < st->ndeps; i++)
        if (sqlv__drop_column_default(r, st->dep_table[i], st->dep_column[i]) != STMT_OK)
            goto done;
    /* a dropped sequence's currval goes with it */
    for (int i = 0; st->kind == K_DROP && i < st->nnames; i++)
        seen_forget(r->s, st->names[i]);
    rc = emit_tag(r, tag);
    goto done;
failed:
    rc = sqlv__fail(r, ps->state[0] ? ps->state : "42601", ps->msg[0] ? ps->msg : "syntax error");
done:
    base_free(st);
    return rc;
}

/* ---- SERIAL and IDENTITY columns ------------------------------------------------------ */

/* "<table>_<column>_seq" in at most SQLV__NAME_BYTES_MAX bytes, as
** PostgreSQL shortens it (the longer part first). */
static void owned_name(const char *table, const char *column, char *out, size_t size) {
    size_t tl = strlen(table), cl = strlen(column);
    while (tl + cl + 5 > SQLV__NAME_BYTES_MAX) {
        if (tl >= cl) tl--;
        else cl--;
    }
    snprintf(out, size, "%.*s_%.*s_seq", (int)tl, table, (int)cl, column);
}

/* The SQL literal 'name' (quoted as an identifier when it must be). */
static int append_seq_literal(base_buf *b, const char *name) {
    char q[NAME_BYTES + 8];
    sqlv__pgcat_quote_ident(name, q, sizeof(q));
    int rc = base_buf_append_byte(b, '\'');
    for (const char *c = q; rc == 0 && *c; c++)
        rc = *c == '\'' ? base_buf_append(b, "''", 2) : base_buf_append_byte(b, (uint8_t)*c);
    if (rc == 0) rc = base_buf_append_byte(b, '\'');
    return rc;
}

static int serial_type(const sqlv__token *t) {
    if (sqlv__tok_is(t, "serial") || sqlv__tok_is(t, "serial4")) return 4;
    if (sqlv__tok_is(t, "bigserial") || sqlv__tok_is(t, "serial8")) return 8;
    if (sqlv__tok_is(t, "smallserial") || sqlv__tok_is(t, "serial2")) return 2;
    return 0;
}

static int decl_bytes(const sqlv__token *t) {
    if (sqlv__tok_is(t, "smallint") || sqlv__tok_is(t, "int2")) return 2;
    if (sqlv__tok_is(t, "bigint") || sqlv__tok_is(t, "int8")) return 8;
    if (sqlv__tok_is(t, "integer") || sqlv__tok_is(t, "int") || sqlv__tok_is(t, "int4")) return 4;
    return 0;
}

void sqlv__seq_specs_free(sqlv__seq_spec *specs, int n) {
    for (int i = 0; specs && i < n; i++)
        base_free(specs[i].options);
    base_free(specs);
}

int sqlv__seq_table_rewrite(const char *text, size_t len, char **out, sqlv__seq_spec **specs,
                            int *nspecs, char state[6], char *msg, size_t size) {
    const char *p = text, *end = text + len;
    char table[NAME_BYTES];
    base_buf b = {0};
    sqlv__seq_spec *v = NULL;
    int n = 0, cap = 0, rc = SQLV_ERR_NOMEM;
    *out = NULL;
    *specs = NULL;
    *nspecs = 0;
    /* CREATE [TEMP|TEMPORARY|UNLOGGED] TABLE [IF NOT EXISTS] name ( */
    sqlv__token t = sqlv__lex_next(&p, end);
    t = sqlv__lex_next(&p, end);
    while (sqlv__tok_is(&t, "TEMP") || sqlv__tok_is(&t, "TEMPORARY") ||
           sqlv__tok_is(&t, "UNLOGGED"))
        t = sqlv__lex_next(&p, end);
    if (!sqlv__tok_is(&t, "TABLE")) return 0;
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "IF")) { /* IF NOT EXISTS */
        (void)sqlv__lex_next(&p, end);
        (void)sqlv__lex_next(&p, end);
        t = sqlv__lex_next(&p, end);
    }
    if (sqlv__tok_ident(&t, table, sizeof(table)) != 0) return 0;
    if (t.kind == SQLV__TOK_WORD) lower_into(table, table, sizeof(table));
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_punct(&t, '.')) {
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_ident(&t, table, sizeof(table)) != 0) return 0;
        if (t.kind == SQLV__TOK_WORD) lower_into(table, table, sizeof(table));
        t = sqlv__lex_next(&p, end);
    }
    if (!sqlv__tok_punct(&t, '(')) return 0;
    const char *copied = text;
    /* each element of the list: column name, type, constraints */
    for (int guard = 0; guard < SQLV__COLUMNS_MAX * 4; guard++) {
        sqlv__token first = sqlv__lex_next(&p, end);
        if (first.kind == SQLV__TOK_END) break;
        bool constraint = sqlv__tok_is(&first, "CONSTRAINT") || sqlv__tok_is(&first, "PRIMARY") ||
                          sqlv__tok_is(&first, "UNIQUE") || sqlv__tok_is(&first, "CHECK") ||
                          sqlv__tok_is(&first, "FOREIGN") || sqlv__tok_is(&first, "EXCLUDE") ||
                          sqlv__tok_is(&first, "LIKE");
        char column[NAME_BYTES] = "";
        sqlv__token type = {SQLV__TOK_END, NULL, 0};
        if (!constraint && sqlv__tok_ident(&first, column, sizeof(column)) == 0) {
            if (first.kind == SQLV__TOK_WORD) lower_into(column, column, sizeof(column));
            type = sqlv__lex_next(&p, end);
        }
        int serial = type.kind == SQLV__TOK_WORD ? serial_type(&type) : 0;
        int bytes = serial ? serial : type.kind == SQLV__TOK_WORD ? decl_bytes(&type) : 0;
        /* to the element's end: a depth-0 ',' or the list's ')' */
        int depth = 0;
        const char *elem_end = NULL, *gen_start = NULL, *gen_end = NULL, *opt_start = NULL,
                   *opt_end = NULL;
        bool always = false, last = false;
        sqlv__token prev = type;
        for (int g2 = 0; g2 < 100000; g2++) {
            const char *before = p;
            sqlv__token x = sqlv__lex_next(&p, end);
            if (x.kind == SQLV__TOK_END) {
                last = true;
                elem_end = before;
                break;
            }
            if (depth == 0 && (sqlv__tok_punct(&x, ',') || sqlv__tok_punct(&x, ')'))) {
                elem_end = x.start;
                last = sqlv__tok_punct(&x, ')');
                break;
            }
            if (sqlv__tok_punct(&x, '(')) depth++;
            if (sqlv__tok_punct(&x, ')')) depth--;
            /* GENERATED {ALWAYS | BY DEFAULT} AS IDENTITY [( options )] */
            if (depth == 0 && sqlv__tok_is(&x, "GENERATED") && column[0]) {
                const char *q = p;
                sqlv__token a = sqlv__lex_next(&q, end);
                bool is_always = sqlv__tok_is(&a, "ALWAYS");
                if (sqlv__tok_is(&a, "BY")) a = sqlv__lex_next(&q, end); /* DEFAULT */
                sqlv__token as = sqlv__lex_next(&q, end), id = sqlv__lex_next(&q, end);
                if ((is_always || sqlv__tok_is(&a, "DEFAULT")) && sqlv__tok_is(&as, "AS") &&
                    sqlv__tok_is(&id, "IDENTITY")) {
                    gen_start = x.start;
                    always = is_always;
                    p = q;
                    gen_end = q;
                    const char *q2 = q;
                    sqlv__token lp = sqlv__lex_next(&q2, end);
                    if (sqlv__tok_punct(&lp, '(')) {
                        opt_start = q2;
                        int d2 = 1;
                        for (int g3 = 0; g3 < 10000; g3++) {
                            const char *b2 = q2;
                            sqlv__token y = sqlv__lex_next(&q2, end);
                            if (y.kind == SQLV__TOK_END) break;
                            if (sqlv__tok_punct(&y, '(')) d2++;
                            if (sqlv__tok_punct(&y, ')') && --d2 == 0) {
                                opt_end = b2;
                                break;
                            }
                        }
                        p = q2;
                        gen_end = q2;
                    }
                }
            }
            prev = x;
        }
        (void)prev;
        if (elem_end == NULL) break;
        if (serial || gen_start) {
            if (gen_start && !bytes) {
                base_strlcpy(state, "22023", 6);
                snprintf(msg, size, "identity column type must be smallint, integer, or bigint");
                rc = 1;
                goto cleanup;
            }
            if (n == cap) {
                int ncap = cap ? cap * 2 : 4;
                sqlv__seq_spec *nv = base_realloc(v, sizeof(*nv) * (size_t)ncap);
                if (nv == NULL) goto cleanup;
                v = nv;
                cap = ncap;
            }
            sqlv__seq_spec *sp = &v[n];
            memset(sp, 0, sizeof(*sp));
            n++;
            owned_name(table, column, sp->name, sizeof(sp->name));
            base_strlcpy(sp->table, table, sizeof(sp->table));
            base_strlcpy(sp->column, column, sizeof(sp->column));
            sp->type_bytes = bytes;
            sp->identity = gen_start ? (always ? 'a' : 'd') : 0;
            size_t olen = opt_start && opt_end ? (size_t)(opt_end - opt_start) : 0;
            sp->options = opt_start ? base_strndup(opt_start, olen) : base_strdup("");
            if (sp->options == NULL) goto cleanup;
            const char *fn = !gen_start ? "nextval" : always ? "meridian_identity_always"
                                                             : "meridian_identity";
            if (serial) { /* the type word becomes the integer type */
                const char *ty = bytes == 2 ? "SMALLINT" : bytes == 8 ? "BIGINT" : "INTEGER";
                if (base_buf_append(&b, copied, (size_t)(type.start - copied)) != 0 ||
                    base_buf_printf(&b, "%s", ty) != 0)
                    goto cleanup;
                copied = type.start + type.len;
            }
            if (gen_start) { /* the GENERATED clause goes */
                if (base_buf_append(&b, copied, (size_t)(gen_start - copied)) != 0) goto cleanup;
                copied = gen_end;
            }
            if (base_buf_append(&b, copied, (size_t)(elem_end - copied)) != 0 ||
                base_buf_printf(&b, " NOT NULL DEFAULT (%s(", fn) != 0 ||
                append_seq_literal(&b, sp->name) != 0 || base_buf_printf(&b, "))") != 0)
                goto cleanup;
            copied = elem_end;
        }
        if (last) break;
    }
    if (n == 0) {
        rc = 0;
        goto cleanup;
    }
    if (base_buf_append(&b, copied, (size_t)(end - copied)) != 0 || base_buf_append(&b, "", 1) != 0)
        goto cleanup;
    *out = (char *)b.data;
    b.data = NULL;
    *specs = v;
    *nspecs = n;
    v = NULL;
    n = 0;
    rc = 0;
cleanup:
    base_buf_free(&b);
    sqlv__seq_specs_free(v, n);
    return rc;
}

int sqlv__seq_create_owned(sqlv__run *r, const sqlv__seq_spec *specs, int n) {
    if (n > DROP_NAMES_MAX) return sqlv__fail(r, "54000", "too many SERIAL or IDENTITY columns");
    seq_stmt *st = base_calloc(1, sizeof(*st)); /* owner: this function */
    uint32_t ids[DROP_NAMES_MAX];
    int rc = STMT_FAILED;
    if (st == NULL) return sqlv__fail(r, "53200", "out of memory");
    st->s = r->s;
    st->kind = K_CREATE_OWNED;
    st->specs = specs;
    st->nspecs = n;
    st->spec_ids = ids;
    for (int i = 0; i < n; i++) {
        sqlv__result res;
        memset(&res, 0, sizeof(res));
        if (sqlv__engine_allocate_table_id(r->s->engine, &ids[i], &res) < 0) {
            rc = sqlv__fail(r, "53200", "out of memory");
            goto done;
        }
        if (res.sqlstate[0]) {
            rc = sqlv__fail(r, res.sqlstate, res.message);
            goto done;
        }
    }
    rc = execute(r, st);
done:
    base_free(st);
    return rc;
}

static int drop_quiet_attempt(sqlv_engine *e, txn *kv, const sqlv__catalog *cat, void *arg,
                              sqlv__result *res) {
    seq_stmt *st = arg;
    txn_error err = {{0}, {0}};
    (void)e;
    (void)res;
    int rc = attempt(st, kv, cat, &err);
    return rc == SQLV_ERR_NOMEM ? rc : 0; /* a txn error: nothing committed, nothing to do */
}

void sqlv__seq_drop_specs(sqlv_session *s, const sqlv__seq_spec *specs, int n) {
    seq_stmt *st = base_calloc(1, sizeof(*st)); /* owner: this function */
    sqlv__result res;
    if (st == NULL) return;
    st->s = s;
    st->kind = K_DROP;
    st->owned_drop = true;
    st->if_exists = true;
    for (int i = 0; i < n && i < DROP_NAMES_MAX; i++)
        base_strlcpy(st->names[st->nnames++], specs[i].name, sizeof(st->names[0]));
    if (sqlv__engine_run_ddl(s->engine, drop_quiet_attempt, st, &res) != 0)
        BASE_WARN("sql", "could not drop the sequences of a table that failed");
    base_free(st);
}

int sqlv__seq_drop_owned(sqlv__run *r, char **tables, int ntables) {
    sqlv_session *s = r->s;
    sqlv__seq_def *list = NULL;
    txn_error err = {{0}, {0}};
    int n = 0, rc;
    /* which sequences: read in the block's transaction, or a fresh one */
    if (s->status == 'T' && s->kv != NULL) {
        rc = sqlv__seq_list(s->kv, &list, &n, &err);
    } else {
        txn *kv = NULL;
        rc = txn_begin(s->engine->db, &(txn_options){.read_only = true}, &kv);
        if (rc == TXN_OK) {
            rc = sqlv__seq_list(kv, &list, &n, &err);
            txn_rollback(kv);
        }
    }
    if (rc == SQLV_ERR_NOMEM) return sqlv__fail(r, "53200", "out of memory");
    if (rc != TXN_OK) return sqlv__fail_txn(r, rc, &err);
    seq_stmt *st = base_calloc(1, sizeof(*st)); /* owner: this function */
    if (st == NULL) {
        base_free(list);
        return sqlv__fail(r, "53200", "out of memory");
    }
    st->s = s;
    st->kind = K_DROP;
    st->owned_drop = true; /* its tables go too */
    st->if_exists = true;  /* dropped meanwhile: fine */
    for (int i = 0; i < n && st->nnames < DROP_NAMES_MAX; i++)
        for (int j = 0; j < ntables; j++)
            if (list[i].owner_table[0] && strcasecmp(list[i].owner_table, tables[j]) == 0) {
                base_strlcpy(st->names[st->nnames++], list[i].name, sizeof(st->names[0]));
                break;
            }
    rc = STMT_OK;
    if (st->nnames > 0) {
        rc = execute(r, st);
        for (int i = 0; rc == STMT_OK && i < st->nnames; i++)
            seen_forget(s, st->names[i]);
    }
    base_free(st);
    base_free(list);
    return rc;
}

/* ---- GENERATED ALWAYS AS IDENTITY on INSERT and UPDATE -------------------------------- */

/* Is the VALUES item [a, b) DEFAULT or the identity's own default (the
** completed text of default.c)? */
static bool item_is_default(const char *a, const char *b) {
    sqlv__token t = sqlv__lex_next(&a, b);
    if (sqlv__tok_is(&t, "DEFAULT")) return sqlv__lex_next(&a, b).kind == SQLV__TOK_END;
    if (sqlv__tok_punct(&t, '(')) t = sqlv__lex_next(&a, b);
    return sqlv__tok_is(&t, "meridian_identity_always");
}

/* Walks the items of a parenthesised list whose "(" *q has just passed (a
** VALUES row, a ROW(...)): fn(ctx, i, start, end) for item i's text [start,
** end), in order, at the depth-1 commas; *q ends past the closing ")" (or
** at end). 0, or fn's nonzero, which stops the walk. */
typedef int (*seq_item_fn)(void *ctx, int item, const char *start, const char *end);
static int seq_paren_items(const char **q, const char *end, seq_item_fn fn, void *ctx) {
    int depth = 1, item = 0;
    const char *istart = *q;
    for (int g = 0; g < 1000000; g++) {
        const char *before = *q;
        sqlv__token y = sqlv__lex_next(q, end);
        if (y.kind == SQLV__TOK_END) break;
        if (sqlv__tok_punct(&y, '(')) depth++;
        bool close = sqlv__tok_punct(&y, ')') && --depth == 0;
        if ((depth == 1 && sqlv__tok_punct(&y, ',')) || close) {
            int rc = fn(ctx, item++, istart, before);
            if (rc != 0) return rc;
            istart = *q;
            if (close) break;
        }
    }
    return 0;
}

/* sqlv__seq_insert_check's VALUES rows: is item pos given (not DEFAULT)? */
typedef struct item_check {
    int pos;
    bool given;
} item_check;
static int check_item(void *ctx, int item, const char *start, const char *end) {
    item_check *ic = ctx;
    if (item == ic->pos && !item_is_default(start, end)) ic->given = true;
    return 0;
}

/* sqlv__seq_update_check's ROW(...): each item's [a[i], b[i]), at most
** SQLV__COLUMNS_MAX of them. */
typedef struct item_spans {
    const char **a, **b;
    int n;
} item_spans;
static int span_item(void *ctx, int item, const char *start, const char *end) {
    item_spans *sp = ctx;
    (void)item;
    if (sp->n < SQLV__COLUMNS_MAX) {
        sp->a[sp->n] = start;
        sp->b[sp->n++] = end;
    }
    return 0;
}

/* The position of column name in the column list [cols, cols_end), -1 if absent. */
static int list_position(const char *cols, const char *cols_end, const char *name) {
    const char *q = cols;
    char cn[NAME_BYTES];
    for (int k = 0, g = 0; g < 100000; g++) {
        sqlv__token x = sqlv__lex_next(&q, cols_end);
        if (x.kind == SQLV__TOK_END) break;
        if (sqlv__tok_punct(&x, ',')) {
            k++;
            continue;
        }
        if (sqlv__tok_ident(&x, cn, sizeof(cn)) == 0 && strcasecmp(cn, name) == 0) return k;
    }
    return -1;
}

static int append_quoted(base_buf *b, const char *name) {
    int rc = base_buf_append_byte(b, '"');
    for (const char *c = name; rc == 0 && *c; c++)
        rc = *c == '"' ? base_buf_append(b, "\"\"", 2) : base_buf_append_byte(b, (uint8_t)*c);
    if (rc == 0) rc = base_buf_append_byte(b, '"');
    return rc;
}

/* user_value_rewrite's VALUES rows: the text up to each dropped item is
** copied to b, " DEFAULT" in the item's place. */
typedef struct drop_items {
    base_buf *b;
    const bool *drop; /* by source position, nsrc */
    int nsrc;
    const char *copied; /* the text is copied up to here */
} drop_items;
static int drop_item(void *ctx, int item, const char *start, const char *end) {
    drop_items *di = ctx;
    if (item >= di->nsrc || !di->drop[item]) return 0;
    if (base_buf_append(di->b, di->copied, (size_t)(start - di->copied)) != 0 ||
        base_buf_printf(di->b, " DEFAULT") != 0)
        return SQLV_ERR_NOMEM;
    di->copied = end;
    return 0;
}

/* OVERRIDING USER VALUE: the text [text, end) without the clause [ov_start,
** ov_end), the values of the identity columns (ident[c] for t's column c)
** ignored: each VALUES row's item for one becomes DEFAULT; a query's rows
** go through a CTE that leaves those columns out of the column list (all
** the table's other columns listed when the INSERT named none). *out
** (owner: caller, base_free). 0, 1 refused, SQLV_ERR_NOMEM. */
static int user_value_rewrite(const sqlv__table *t, const bool *ident, const char *text,
                              const char *end, const char *ov_start, const char *ov_end,
                              const char *cols, const char *cols_end, const char *src,
                              char **out, char state[6], char *msg, size_t size) {
    base_buf b = {0};
    int rc = SQLV_ERR_NOMEM;
    bool *drop = base_calloc((size_t)t->ncols + 1, sizeof(bool)); /* by source position */
    if (drop == NULL) return SQLV_ERR_NOMEM;
    int nsrc = 0, nkept = 0; /* the source's columns, those that stay */
    if (cols != NULL) {
        const char *q = cols;
        char cn[NAME_BYTES];
        for (int g = 0; g < 100000 && nsrc <= t->ncols; g++) {
            sqlv__token x = sqlv__lex_next(&q, cols_end);
            if (x.kind == SQLV__TOK_END) break;
            if (sqlv__tok_punct(&x, ',')) continue;
            if (sqlv__tok_ident(&x, cn, sizeof(cn)) != 0) continue;
            bool id = false;
            for (int c = 0; c < t->ncols; c++)
                id |= ident[c] && strcasecmp(cn, t->cols[c].name) == 0;
            drop[nsrc++] = id;
        }
    } else {
        for (int c = 0; c < t->ncols; c++)
            drop[nsrc++] = ident[c];
    }
    for (int i = 0; i < nsrc; i++)
        nkept += !drop[i];
    const char *q = src;
    sqlv__token x = sqlv__lex_next(&q, end);
    if (sqlv__tok_is(&x, "DEFAULT")) { /* DEFAULT VALUES: nothing given */
        if (base_buf_append(&b, text, (size_t)(ov_start - text)) != 0 ||
            base_buf_append(&b, ov_end, (size_t)(end - ov_end)) != 0)
            goto cleanup;
    } else if (sqlv__tok_is(&x, "VALUES")) {
        if (base_buf_append(&b, text, (size_t)(ov_start - text)) != 0) goto cleanup;
        drop_items di = {&b, drop, nsrc, ov_end};
        for (int g = 0; g < 1000000; g++) {
            x = sqlv__lex_next(&q, end);
            if (x.kind == SQLV__TOK_END || !sqlv__tok_punct(&x, '(')) break;
            if (seq_paren_items(&q, end, drop_item, &di) != 0) goto cleanup;
            x = sqlv__lex_next(&q, end);
            if (!sqlv__tok_punct(&x, ',')) break;
        }
        if (base_buf_append(&b, di.copied, (size_t)(end - di.copied)) != 0) goto cleanup;
    } else {
        /* a query: its end is ON CONFLICT / RETURNING at depth 0, or the end */
        const char *src_end = end;
        int depth = 0;
        q = src;
        for (int g = 0; g < 1000000; g++) {
            sqlv__token y = sqlv__lex_next(&q, end);
            if (y.kind == SQLV__TOK_END) break;
            if (sqlv__tok_punct(&y, '(')) depth++;
            if (sqlv__tok_punct(&y, ')')) depth--;
            if (depth != 0) continue;
            const char *q2 = q;
            if (sqlv__tok_is(&y, "RETURNING") ||
                (sqlv__tok_is(&y, "ON") &&
                 sqlv__tok_is((sqlv__token[]){sqlv__lex_next(&q2, end)}, "CONFLICT"))) {
                src_end = y.start;
                break;
            }
        }
        if (nkept == 0) {
            base_strlcpy(state, "0A000", 6);
            snprintf(msg, size, "OVERRIDING USER VALUE with a query that gives only identity "
                                "columns is not supported yet");
            rc = 1;
            goto cleanup;
        }
        /* the column list without the identity columns, then the source */
        const char *after_table = cols != NULL ? cols - 1 : ov_start;
        /* the text before the list (or before OVERRIDING), trimmed to the table */
        if (base_buf_append(&b, text, (size_t)(after_table - text)) != 0 ||
            base_buf_printf(&b, " (") != 0)
            goto cleanup;
        int k = 0;
        if (cols != NULL) {
            const char *c2 = cols;
            char cn[NAME_BYTES];
            for (int g = 0, i = 0; g < 100000; g++) {
                sqlv__token y = sqlv__lex_next(&c2, cols_end);
                if (y.kind == SQLV__TOK_END) break;
                if (sqlv__tok_punct(&y, ',')) continue;
                if (sqlv__tok_ident(&y, cn, sizeof(cn)) != 0) continue;
                if (i < nsrc && !drop[i] &&
                    ((k++ > 0 && base_buf_printf(&b, ", ") != 0) || append_quoted(&b, cn) != 0))
                    goto cleanup;
                i++;
            }
        } else {
            for (int c = 0; c < t->ncols; c++)
                if (!drop[c] && ((k++ > 0 && base_buf_printf(&b, ", ") != 0) ||
                                 append_quoted(&b, t->cols[c].name) != 0))
                    goto cleanup;
        }
        if (base_buf_printf(&b, ") WITH meridian_ov(") != 0) goto cleanup;
        for (int i = 0; i < nsrc; i++)
            if (base_buf_printf(&b, "%smeridian_o%d", i ? ", " : "", i + 1) != 0) goto cleanup;
        if (base_buf_printf(&b, ") AS (") != 0 ||
            base_buf_append(&b, src, (size_t)(src_end - src)) != 0 ||
            base_buf_printf(&b, ") SELECT ") != 0)
            goto cleanup;
        k = 0;
        for (int i = 0; i < nsrc; i++)
            if (!drop[i] && base_buf_printf(&b, "%smeridian_o%d", k++ ? ", " : "", i + 1) != 0)
                goto cleanup;
        if (base_buf_printf(&b, " FROM meridian_ov ") != 0 ||
            base_buf_append(&b, src_end, (size_t)(end - src_end)) != 0)
            goto cleanup;
    }
    if (base_buf_append(&b, "", 1) != 0) goto cleanup;
    *out = (char *)b.data;
    b.data = NULL;
    rc = 0;
cleanup:
    base_buf_free(&b);
    base_free(drop);
    return rc;
}

int sqlv__seq_insert_check(sqlv_session *s, const char *text, size_t len, char **out,
                           char state[6], char *msg, size_t size) {
    const char *p = text, *end = text + len;
    char name[NAME_BYTES];
    *out = NULL;
    if (!sqlv__default_target(text, len, name, sizeof(name))) return 0;
    if (s->seq != NULL && s->seq->overriding) return 0; /* derived from a checked INSERT */
    /* OVERRIDING {SYSTEM | USER} VALUE before the source: noted, and cut */
    const char *ov_start = NULL, *ov_end = NULL, *cols = NULL, *cols_end = NULL, *src = NULL;
    bool system_value = false, user_value = false;
    int depth = 0;
    for (int guard = 0; guard < 100000; guard++) {
        const char *before = p;
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        if (sqlv__tok_punct(&t, '(')) {
            if (depth == 0 && cols == NULL && src == NULL) cols = p;
            depth++;
        }
        if (sqlv__tok_punct(&t, ')') && --depth == 0 && cols != NULL && cols_end == NULL &&
            src == NULL)
            cols_end = before;
        if (depth != 0) continue;
        if (sqlv__tok_is(&t, "OVERRIDING")) {
            sqlv__token w = sqlv__lex_next(&p, end);
            sqlv__token v = sqlv__lex_next(&p, end);
            if (!sqlv__tok_is(&v, "VALUE") ||
                (!sqlv__tok_is(&w, "SYSTEM") && !sqlv__tok_is(&w, "USER"))) {
                base_strlcpy(state, "42601", 6);
                snprintf(msg, size, "syntax error at or near \"OVERRIDING\"");
                return 1;
            }
            user_value = sqlv__tok_is(&w, "USER");
            system_value = !user_value;
            ov_start = t.start;
            ov_end = p;
            continue;
        }
        if (src == NULL && (sqlv__tok_is(&t, "VALUES") || sqlv__tok_is(&t, "SELECT") ||
                            sqlv__tok_is(&t, "WITH") || sqlv__tok_is(&t, "DEFAULT"))) {
            src = t.start;
            break;
        }
    }
    if (cols != NULL && cols_end == NULL) cols = NULL;
    bool default_values = false; /* INSERT ... DEFAULT VALUES */
    if (src != NULL) {
        const char *q = src;
        sqlv__token x = sqlv__lex_next(&q, end);
        default_values = sqlv__tok_is(&x, "DEFAULT");
    }
    if (seq_session(s) == NULL) return SQLV_ERR_NOMEM;
    if (system_value) {
        base_buf b = {0};
        if (base_buf_append(&b, text, (size_t)(ov_start - text)) != 0 ||
            base_buf_append(&b, ov_end, (size_t)(end - ov_end)) != 0 ||
            base_buf_append(&b, "", 1) != 0) {
            base_buf_free(&b);
            return SQLV_ERR_NOMEM;
        }
        s->seq->overriding = true;
        *out = (char *)b.data;
        return 0;
    }
    uint32_t id = sqlv__session_find_id(s, name);
    sqlv__table *t = NULL; /* owner: this function */
    int trc = id != 0 ? sqlv__session_table(s, id, &t) : 1;
    if (trc < 0) return SQLV_ERR_NOMEM;
    if (trc > 0) return 0; /* SQLite reports an unknown table */
    int result = 0;
    if (user_value) {
        bool *ident = base_calloc((size_t)t->ncols + 1, sizeof(bool)); /* owner: this block */
        if (ident == NULL) {
            sqlv__table_free(t);
            return SQLV_ERR_NOMEM;
        }
        for (int c = 0; c < t->ncols; c++)
            ident[c] = sqlv__seq_column_identity(&t->cols[c]) != 0;
        result = src == NULL ? 0
                             : user_value_rewrite(t, ident, text, end, ov_start, ov_end, cols,
                                                  cols_end, src, out, state, msg, size);
        base_free(ident);
        sqlv__table_free(t);
        if (result == 0) s->seq->overriding = true;
        return result;
    }
    int bad = -1;
    for (int c = 0; c < t->ncols && bad < 0; c++) {
        if (sqlv__seq_column_identity(&t->cols[c]) != 'a') continue;
        /* the column's position in the INSERT, -1 when not named */
        int pos = -1;
        if (cols != NULL) pos = list_position(cols, cols_end, t->cols[c].name);
        else if (src != NULL && !default_values) pos = c;
        if (pos < 0 || src == NULL) continue;
        const char *q = src;
        sqlv__token x = sqlv__lex_next(&q, end);
        if (!sqlv__tok_is(&x, "VALUES")) {
            bad = c; /* a query's rows give the column */
            break;
        }
        /* every row's item pos must be DEFAULT */
        for (int g = 0; g < 1000000 && bad < 0; g++) {
            x = sqlv__lex_next(&q, end);
            if (x.kind == SQLV__TOK_END || !sqlv__tok_punct(&x, '(')) break;
            item_check ic = {pos, false};
            (void)seq_paren_items(&q, end, check_item, &ic); /* check_item never stops it */
            if (ic.given) bad = c;
            x = sqlv__lex_next(&q, end);
            if (!sqlv__tok_punct(&x, ',')) break;
        }
    }
    if (bad >= 0) {
        base_strlcpy(state, "428C9", 6);
        snprintf(msg, size,
                 "cannot insert a non-DEFAULT value into column \"%s\"\nDETAIL:  Column \"%s\" is "
                 "an identity column defined as GENERATED ALWAYS.\nHINT:  Use OVERRIDING SYSTEM "
                 "VALUE to override.",
                 t->cols[bad].name, t->cols[bad].name);
        result = 1;
    } else {
        s->seq->overriding = true; /* checked: its derived texts are not checked again */
    }
    sqlv__table_free(t);
    return result;
}

/* UPDATE t SET c = DEFAULT: c's default (NULL when it has none), as SQLite
** has no DEFAULT there; an identity column GENERATED ALWAYS takes nothing
** else (428C9). The SET list's items "c = e" and "(c, ...) = (e, ...)" are
** read; a row source ("(c, ...) = (SELECT ...)") for an ALWAYS column is
** refused as PostgreSQL does. 0 (*out NULL: unchanged), 1 refused, or
** SQLV_ERR_NOMEM. */
int sqlv__seq_update_check(sqlv_session *s, const char *text, size_t len, char **out,
                           char state[6], char *msg, size_t size) {
    const char *p = text, *end = text + len;
    char name[NAME_BYTES], cn[NAME_BYTES];
    *out = NULL;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (!sqlv__tok_is(&t, "UPDATE")) return 0;
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "ONLY")) t = sqlv__lex_next(&p, end);
    if (sqlv__tok_ident(&t, name, sizeof(name)) != 0) return 0;
    const char *q = p;
    if (sqlv__tok_punct((sqlv__token[]){sqlv__lex_next(&q, end)}, '.')) {
        t = sqlv__lex_next(&q, end);
        if (sqlv__tok_ident(&t, name, sizeof(name)) != 0) return 0;
        p = q;
    }
    /* to SET (an alias between) */
    const char *set = NULL;
    for (int g = 0; g < 4; g++) {
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&t, "SET")) {
            set = p;
            break;
        }
    }
    if (set == NULL) return 0;
    /* anything to do at all? a DEFAULT, or a table with an ALWAYS column */
    uint32_t id = sqlv__session_find_id(s, name);
    sqlv__table *tb = NULL; /* owner: this function */
    int trc = id != 0 ? sqlv__session_table(s, id, &tb) : 1;
    if (trc < 0) return SQLV_ERR_NOMEM;
    if (trc > 0) return 0; /* SQLite reports an unknown table */
    base_buf b = {0};
    const char *copied = text;
    int rc = 0;
    /* items up to FROM / WHERE / RETURNING at depth 0 */
    for (int g = 0; g < 100000 && rc == 0; g++) {
        sqlv__token first = sqlv__lex_next(&p, end);
        if (first.kind == SQLV__TOK_END) break;
        /* targets: one name, or a parenthesized list */
        int targets[SQLV__COLUMNS_MAX];
        int ntargets = 0;
        bool tuple = sqlv__tok_punct(&first, '(');
        if (tuple) {
            for (int g2 = 0; g2 < SQLV__COLUMNS_MAX * 2; g2++) {
                sqlv__token x = sqlv__lex_next(&p, end);
                if (x.kind == SQLV__TOK_END || sqlv__tok_punct(&x, ')')) break;
                if (sqlv__tok_punct(&x, ',')) continue;
                int c = -1;
                if (sqlv__tok_ident(&x, cn, sizeof(cn)) == 0)
                    for (int k = 0; k < tb->ncols && c < 0; k++)
                        if (strcasecmp(tb->cols[k].name, cn) == 0) c = k;
                if (ntargets < SQLV__COLUMNS_MAX) targets[ntargets++] = c;
            }
        } else {
            int c = -1;
            if (sqlv__tok_ident(&first, cn, sizeof(cn)) == 0)
                for (int k = 0; k < tb->ncols && c < 0; k++)
                    if (strcasecmp(tb->cols[k].name, cn) == 0) c = k;
            targets[ntargets++] = c;
        }
        if (!sqlv__tok_punct((sqlv__token[]){sqlv__lex_next(&p, end)}, '=')) break;
        /* the value(s): to a depth-0 ',' or the end of the SET list */
        const char *vstart = p, *vend = end;
        bool last = false;
        int depth = 0;
        for (int g2 = 0; g2 < 1000000; g2++) {
            const char *before = p;
            sqlv__token x = sqlv__lex_next(&p, end);
            if (x.kind == SQLV__TOK_END) {
                vend = before;
                last = true;
                break;
            }
            if (sqlv__tok_punct(&x, '(')) depth++;
            if (sqlv__tok_punct(&x, ')')) depth--;
            if (depth != 0) continue;
            if (sqlv__tok_punct(&x, ',')) {
                vend = before;
                break;
            }
            if (sqlv__tok_is(&x, "FROM") || sqlv__tok_is(&x, "WHERE") ||
                sqlv__tok_is(&x, "RETURNING")) {
                vend = before;
                p = before;
                last = true;
                break;
            }
        }
        /* each value: [a, b) for target k */
        const char *va[SQLV__COLUMNS_MAX], *vb[SQLV__COLUMNS_MAX];
        int nvals = 0;
        const char *v = vstart;
        sqlv__token open = sqlv__lex_next(&v, vend);
        bool row_source = false;
        if (!tuple) {
            va[0] = vstart;
            vb[0] = vend;
            nvals = 1;
        } else if (sqlv__tok_punct(&open, '(') || sqlv__tok_is(&open, "ROW")) {
            if (sqlv__tok_is(&open, "ROW")) open = sqlv__lex_next(&v, vend);
            const char *q2 = v;
            sqlv__token sel = sqlv__lex_next(&q2, vend);
            row_source = sqlv__tok_is(&sel, "SELECT") || sqlv__tok_is(&sel, "WITH");
            item_spans sp = {va, vb, 0};
            if (!row_source) (void)seq_paren_items(&v, vend, span_item, &sp); /* never stops */
            nvals = sp.n;
        } else {
            row_source = true;
        }
        for (int k = 0; k < ntargets && rc == 0; k++) {
            int c = targets[k];
            if (c < 0) continue; /* SQLite reports it */
            bool always = sqlv__seq_column_identity(&tb->cols[c]) == 'a';
            bool is_default = false, word = false;
            if (!row_source && k < nvals) {
                const char *a = va[k];
                sqlv__token x = sqlv__lex_next(&a, vb[k]);
                word = sqlv__tok_is(&x, "DEFAULT") &&
                       sqlv__lex_next(&a, vb[k]).kind == SQLV__TOK_END;
                /* or the identity's own default: this text again, completed */
                is_default = word || item_is_default(va[k], vb[k]);
            }
            if (always && !is_default) {
                base_strlcpy(state, "428C9", 6);
                snprintf(msg, size,
                         "column \"%s\" can only be updated to DEFAULT\nDETAIL:  Column \"%s\" is "
                         "an identity column defined as GENERATED ALWAYS.",
                         tb->cols[c].name, tb->cols[c].name);
                rc = 1;
                break;
            }
            if (!word) continue;
            /* the default's dialect form in place of the word */
            const char *dw = sqlv__lex_skip_space(va[k], vb[k]);
            if (base_buf_append(&b, copied, (size_t)(dw - copied)) != 0) {
                rc = SQLV_ERR_NOMEM;
                break;
            }
            if (tb->cols[c].default_expr == NULL) {
                if (base_buf_printf(&b, "NULL") != 0) rc = SQLV_ERR_NOMEM;
            } else {
                sqlv__rewrite rw;
                int wrc = sqlv__dialect_rewrite(tb->cols[c].default_expr,
                                                strlen(tb->cols[c].default_expr), &rw);
                if (wrc < 0 || base_buf_printf(&b, "(%s)", wrc == 0 ? rw.text
                                                                 : tb->cols[c].default_expr) != 0)
                    rc = SQLV_ERR_NOMEM;
                if (wrc == 0) base_free(rw.text);
            }
            const char *after = dw;
            (void)sqlv__lex_next(&after, vb[k]); /* DEFAULT */
            copied = after;
        }
        if (last) break;
    }
    if (rc == 0 && copied != text) {
        if (base_buf_append(&b, copied, (size_t)(end - copied)) != 0 ||
            base_buf_append(&b, "", 1) != 0) {
            rc = SQLV_ERR_NOMEM;
        } else {
            *out = (char *)b.data;
            b.data = NULL;
        }
    }
    base_buf_free(&b);
    sqlv__table_free(tb);
    return rc;
}

/* ---- SELECT ... FROM a sequence ------------------------------------------------------- */

int sqlv__seq_last_value_seen(sqlv_session *s, const sqlv__seq_def *d, int64_t *last,
                              bool *called) {
    int rc = sqlv__seq_last_value(s, d, last, called);
    if (rc != TXN_OK || !*called) return rc;
    struct sqlv__seq_cache *c = cache_of(s->engine);
    if (c == NULL) return rc;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n; i++) {
        const seq_block *b = &c->v[i];
        if (b->id != d->id || b->last != *last) continue; /* another node moved past it */
        *last = b->left > 0 ? b->next - b->increment : b->next;
        break;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* Is the word before a FROM item's name one that starts a clause (so the
** next token is no alias)? */
static bool clause_word(const sqlv__token *t) {
    static const char *const words[] = {
        "WHERE", "JOIN",  "INNER",  "LEFT",      "RIGHT",  "FULL",   "CROSS",     "NATURAL",
        "ON",    "USING", "GROUP",  "ORDER",     "LIMIT",  "OFFSET", "UNION",     "INTERSECT",
        "EXCEPT", "HAVING", "WINDOW", "FETCH",   "FOR",    "RETURNING", "SET",    "AS",
        "OUTER", "TABLESAMPLE"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(words); i++)
        if (sqlv__tok_is(t, words[i])) return true;
    return false;
}

int sqlv__seq_from_rewrite(sqlv_session *s, const char *text, size_t len, const char *missing,
                           char **out) {
    char name[NAME_BYTES], tok[NAME_BYTES];
    *out = NULL;
    base_strlcpy(name, missing, sizeof(name));
    if (strncmp(name, "main.", 5) == 0) memmove(name, name + 5, strlen(name + 5) + 1);
    sqlv__seq_def d;
    bool found = false;
    if (sqlv__seq_lookup(s, name, 0, &d, &found) != TXN_OK || !found) return 0;
    const char *p = text, *end = text + len, *copied = text;
    base_buf b = {0};
    /* the last clause word at each depth: a name after FROM, JOIN or a
    ** FROM list's ',' is a relation */
    enum { DEPTH_MAX = 64 };
    bool in_from[DEPTH_MAX] = {false};
    int depth = 0, n = 0;
    sqlv__token prev = {SQLV__TOK_END, NULL, 0};
    for (int g = 0; g < SQLV__DIALECT_TOKENS_MAX; g++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        if (sqlv__tok_punct(&t, '(')) {
            if (depth + 1 < DEPTH_MAX) in_from[++depth] = false;
            prev = t;
            continue;
        }
        if (sqlv__tok_punct(&t, ')')) {
            if (depth > 0) depth--;
            prev = t;
            continue;
        }
        if (t.kind == SQLV__TOK_WORD && !sqlv__tok_is(&t, "FROM") && !sqlv__tok_is(&t, "JOIN") &&
            clause_word(&t) && !sqlv__tok_is(&t, "AS") && !sqlv__tok_is(&t, "ON") &&
            !sqlv__tok_is(&t, "USING"))
            in_from[depth] = false;
        if (sqlv__tok_is(&t, "FROM") || sqlv__tok_is(&t, "JOIN")) in_from[depth] = true;
        if (sqlv__tok_is(&t, "SELECT")) in_from[depth] = false;
        bool relation = sqlv__tok_is(&prev, "FROM") || sqlv__tok_is(&prev, "JOIN") ||
                        (sqlv__tok_punct(&prev, ',') && in_from[depth]);
        prev = t;
        if (!relation || (t.kind != SQLV__TOK_WORD && t.kind != SQLV__TOK_QUOTED) ||
            sqlv__tok_ident(&t, tok, sizeof(tok)) != 0)
            continue;
        if (t.kind == SQLV__TOK_WORD) lower_into(tok, tok, sizeof(tok));
        if (strcmp(tok, d.name) != 0) continue;
        /* an alias after it stays the name; else the sequence's own */
        const char *q = p;
        sqlv__token next = sqlv__lex_next(&q, end);
        bool alias = next.kind == SQLV__TOK_QUOTED ||
                     (next.kind == SQLV__TOK_WORD && !clause_word(&next)) ||
                     sqlv__tok_is(&next, "AS");
        char lit[NAME_BYTES * 2 + 3];
        size_t o = 0;
        for (const char *c = d.name; *c && o + 3 < sizeof(lit); c++) {
            if (*c == '\'') lit[o++] = '\'';
            lit[o++] = *c;
        }
        lit[o] = 0;
        if (base_buf_append(&b, copied, (size_t)(t.start - copied)) != 0 ||
            base_buf_printf(&b, "(SELECT last_value, log_cnt, is_called FROM "
                                "meridian_sequence_state WHERE sequencename = '%s')",
                            lit) != 0 ||
            (!alias && (base_buf_printf(&b, " AS ") != 0 ||
                        base_buf_append(&b, t.start, t.len) != 0)))
            goto nomem;
        copied = t.start + t.len;
        n++;
    }
    if (n == 0) {
        base_buf_free(&b);
        return 0;
    }
    if (base_buf_append(&b, copied, (size_t)(end - copied)) != 0 || base_buf_append(&b, "", 1) != 0)
        goto nomem;
    *out = (char *)b.data;
    return 1;
nomem:
    base_buf_free(&b);
    return SQLV_ERR_NOMEM;
}

bool sqlv__seq_drop_cascades(const char *text, size_t len) {
    const char *p = text, *end = text + len;
    sqlv__token last = {SQLV__TOK_END, NULL, 0};
    for (int g = 0; g < SQLV__DIALECT_TOKENS_MAX; g++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END || t.kind == SQLV__TOK_SEMI) break;
        last = t;
    }
    return sqlv__tok_is(&last, "CASCADE");
}

bool sqlv__seq_tables_own_any(sqlv_session *s, char **tables, int ntables) {
    sqlv__seq_def *list = NULL; /* owner: this function */
    txn_error err = {{0}, {0}};
    txn *kv = NULL;
    int n = 0;
    if (txn_begin(s->engine->db, &(txn_options){.read_only = true}, &kv) != TXN_OK) return true;
    int rc = sqlv__seq_list(kv, &list, &n, &err);
    txn_rollback(kv);
    if (rc != TXN_OK) return true; /* unknown: as if they did */
    bool any = false;
    for (int i = 0; i < n && !any; i++)
        for (int j = 0; j < ntables && !any; j++)
            any = list[i].owner_table[0] && strcasecmp(list[i].owner_table, tables[j]) == 0;
    base_free(list);
    return any;
}
