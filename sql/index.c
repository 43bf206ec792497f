/*
** Secondary indexes: CREATE [UNIQUE] INDEX, DROP INDEX, UNIQUE constraints
** of CREATE TABLE, the descriptor's index list and its catalog encoding,
** and the keys of index entries (sql_int.h, "secondary indexes"; the
** writers' maintenance and the plans that read indexes are in vtab.c).
**
** Online index creation (outside a transaction block), after F1's and
** CockroachDB's schema changes:
**   1. one transaction adds the index to the table's descriptor in state
**      WRITE_ONLY (and bumps the catalog version);
**   2. backfill: transactions of at most SQLV__BACKFILL_ROWS_MAX rows each
**      read the next rows of the table and write their entries (a unique
**      index checks each exact key first); a batch that fails with 40001
**      is retried with half the rows it read (sqlv__backfill_run, the
**      driver rekey.c's backfill shares);
**   3. one transaction makes the index PUBLIC.
** A failure (a duplicate for a unique index, cancel, an error) removes
** the index and its entries in a transaction of its own.
** Why the index is complete when it becomes PUBLIC: every transaction reads
** the catalog version through itself at its first statement, and a
** read-write transaction that read a version older than its commit's
** fails with 40001 (docs/sql.md "The catalog across nodes"). So every
** write that commits after step 1 was made with a descriptor that lists
** the index, and maintained it; every write that committed before step 1
** is visible to the backfill, whose transactions begin after step 1
** committed (commit wait: after its timestamp on every node). A batch
** reads its rows and writes their entries in one serializable
** transaction: a row changed after the batch read it fails the batch (it
** is retried), a row changed after the batch committed is the writer's to
** maintain, and writing the entry a writer already wrote is idempotent.
** Nothing is held between batches: writers wait for nothing; they pay the
** entries of a WRITE_ONLY index and a 40001 when they overlap a DDL
** transaction (steps 1 and 3) or a batch's rows. On a cluster this is the
** same on every gateway: no gateway caches a descriptor across
** transactions without checking the version, so there is no lease to wait
** out (F1's "at most two versions" holds with one), at the price of that
** version read per transaction and of the 40001s of in-flight read-write
** transactions at each step.
** Inside a transaction block the index is built in the block's own
** transaction (PUBLIC at once: nobody sees it before COMMIT, and the rows
** it read are validated at commit).
**
** Invariants (besides sql_int.h's):
**   - a descriptor's index ids are distinct, in [SQLV__INDEX_FIRST_ID,
**     next_index_id), and next_index_id never decreases.
**   - index names are unique among every relation of the catalog (tables,
**     "<t>_pkey", indexes), checked in the DDL transaction that reads the
**     catalog version.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sql_int.h"
#include "sql_lex.h"
#include "sql_pgcatalog.h"

#define MOD "sql"

enum { STMT_OK = 0, STMT_FAILED = 1 }; /* session.c's */

sqlv__backfill_hook_fn sqlv__backfill_hook = NULL;
void *sqlv__backfill_hook_arg = NULL;
int sqlv__backfill_rows = 0;

#define DROP_INDEX_NAMES_MAX 64
#define BACKFILL_BACKOFF_MAX_US 50000

/* ---- descriptors ------------------------------------------------------------------ */

static void index_clear(sqlv__index *ix) {
    base_free(ix->name);
    base_free(ix->cols);
    base_free(ix->desc);
    memset(ix, 0, sizeof(*ix));
}

void sqlv__indexes_free(sqlv__table *t) {
    for (int i = 0; i < t->nindexes; i++)
        index_clear(&t->indexes[i]);
    base_free(t->indexes);
    t->indexes = NULL;
    t->nindexes = 0;
}

/* A deep copy of src into *dst. 0 or SQLV_ERR_NOMEM (dst cleared). */
static int index_copy(sqlv__index *dst, const sqlv__index *src) {
    *dst = *src;
    dst->name = base_strdup(src->name);
    dst->cols = base_calloc((size_t)src->ncols, sizeof(int));
    dst->desc = base_calloc((size_t)src->ncols, sizeof(bool));
    if (dst->name == NULL || dst->cols == NULL || dst->desc == NULL) {
        index_clear(dst);
        return SQLV_ERR_NOMEM;
    }
    memcpy(dst->cols, src->cols, sizeof(int) * (size_t)src->ncols);
    memcpy(dst->desc, src->desc, sizeof(bool) * (size_t)src->ncols);
    return 0;
}

int sqlv__indexes_copy(sqlv__table *dst, const sqlv__table *src) {
    sqlv__index *l = NULL;
    if (src->nindexes > 0) {
        l = base_calloc((size_t)src->nindexes, sizeof(*l));
        if (l == NULL) return SQLV_ERR_NOMEM;
        for (int i = 0; i < src->nindexes; i++) {
            if (index_copy(&l[i], &src->indexes[i]) != 0) {
                for (int j = 0; j < i; j++)
                    index_clear(&l[j]);
                base_free(l);
                return SQLV_ERR_NOMEM;
            }
        }
    }
    sqlv__indexes_free(dst);
    dst->indexes = l;
    dst->nindexes = src->nindexes;
    dst->next_index_id = src->next_index_id;
    return 0;
}

int sqlv__indexes_carry(sqlv__table *nt, const sqlv__table *old, bool all_public) {
    if (sqlv__indexes_copy(nt, old) != 0) return SQLV_ERR_NOMEM;
    for (int i = 0; all_public && i < nt->nindexes; i++)
        nt->indexes[i].state = SQLV__INDEX_PUBLIC;
    nt->shape = sqlv__table_shape(nt);
    return 0;
}

/* Append an index (its id the table's next one; name and columns copied).
** 0, 1 limit reached (state/msg: 54000), SQLV_ERR_NOMEM. */
static int index_add(sqlv__table *t, const char *name, bool unique, bool constraint, int state,
                     const int *cols, const bool *desc, int ncols, char sqlstate[6], char *msg,
                     size_t msg_size) {
    if (t->next_index_id < SQLV__INDEX_FIRST_ID) t->next_index_id = SQLV__INDEX_FIRST_ID;
    if (t->nindexes >= SQLV__INDEXES_MAX || t->next_index_id > SQLV__INDEX_ID_MAX) {
        base_strlcpy(sqlstate, "54000", 6);
        snprintf(msg, msg_size, "table \"%s\" has too many indexes (at most %d at a time, %u "
                 "over its life)", t->name, SQLV__INDEXES_MAX, SQLV__INDEX_ID_MAX - 1);
        return 1;
    }
    sqlv__index src = {t->next_index_id, (char *)name, unique, constraint, (uint8_t)state, ncols,
                       (int *)cols, (bool *)desc, 0};
    sqlv__index *l = base_realloc(t->indexes, sizeof(*l) * (size_t)(t->nindexes + 1));
    if (l == NULL) return SQLV_ERR_NOMEM;
    t->indexes = l;
    if (index_copy(&l[t->nindexes], &src) != 0) return SQLV_ERR_NOMEM;
    t->nindexes++;
    t->next_index_id++;
    return 0;
}

static void index_remove(sqlv__table *t, int pos) {
    index_clear(&t->indexes[pos]);
    memmove(&t->indexes[pos], &t->indexes[pos + 1],
            sizeof(*t->indexes) * (size_t)(t->nindexes - pos - 1));
    t->nindexes--;
}

void sqlv__index_remove(sqlv__table *t, int pos) { index_remove(t, pos); }

const sqlv__index *sqlv__table_rekey_index(const sqlv__table *t) {
    for (int i = 0; i < t->nindexes; i++)
        if (t->indexes[i].rekey_table != 0) return &t->indexes[i];
    return NULL;
}

int sqlv__index_add_rekey(sqlv__table *t, const char *name, const int *cols, int ncols,
                          uint32_t new_id, char sqlstate[6], char *msg, size_t msg_size) {
    bool desc[SQLV__INDEX_COLUMNS_MAX] = {false};
    if (ncols > SQLV__INDEX_COLUMNS_MAX) {
        base_strlcpy(sqlstate, "54011", 6);
        snprintf(msg, msg_size, "cannot use more than %d columns in an index",
                 SQLV__INDEX_COLUMNS_MAX);
        return 1;
    }
    int rc = index_add(t, name, true, false, SQLV__INDEX_WRITE_ONLY, cols, desc, ncols, sqlstate,
                       msg, msg_size);
    if (rc == 0) t->indexes[t->nindexes - 1].rekey_table = new_id;
    return rc;
}

static int index_pos(const sqlv__table *t, uint32_t id) {
    for (int i = 0; i < t->nindexes; i++)
        if (t->indexes[i].id == id) return i;
    return -1;
}

const sqlv__index *sqlv__table_index_named(const sqlv__table *t, const char *name) {
    for (int i = 0; i < t->nindexes; i++)
        if (sqlite3_stricmp(t->indexes[i].name, name) == 0) return &t->indexes[i];
    return NULL;
}

static void pkey_name(const sqlv__table *t, char *out, size_t size) {
    snprintf(out, size, "%.58s_pkey", t->name); /* as pgcatalog.c names it */
}

bool sqlv__relation_taken(const sqlv__table *const *tables, int n, const char *name) {
    for (int i = 0; i < n; i++) {
        const sqlv__table *t = tables[i];
        char pk[128];
        if (sqlite3_stricmp(t->name, name) == 0) return true;
        if (sqlv__table_index_named(t, name) != NULL) return true;
        pkey_name(t, pk, sizeof(pk));
        if (t->npk > 0 && sqlite3_stricmp(pk, name) == 0) return true;
    }
    return false;
}

/* ---- the catalog row's index section ----------------------------------------------- */

static int put16(base_buf *b, uint32_t v) {
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return base_buf_append(b, x, 2);
}

static int put32(base_buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return base_buf_append(b, x, 4);
}

int sqlv__index_section_encode(const sqlv__table *t, base_buf *out) {
    if (t->nindexes == 0 && t->next_index_id <= SQLV__INDEX_FIRST_ID) return 0;
    int rc = put32(out, t->next_index_id) | put16(out, (uint32_t)t->nindexes);
    for (int i = 0; i < t->nindexes && rc == 0; i++) {
        const sqlv__index *ix = &t->indexes[i];
        size_t nl = strlen(ix->name);
        uint8_t flags[2] = {(uint8_t)((ix->unique ? 1 : 0) | (ix->constraint ? 2 : 0) |
                                      (ix->rekey_table ? 4 : 0)),
                            ix->state};
        rc = put32(out, ix->id) | base_buf_append(out, flags, 2) | put16(out, (uint32_t)nl) |
             base_buf_append(out, ix->name, nl) | put16(out, (uint32_t)ix->ncols);
        for (int c = 0; c < ix->ncols && rc == 0; c++)
            rc = put16(out, (uint32_t)ix->cols[c]) | base_buf_append_byte(out, ix->desc[c] ? 1 : 0);
        if (rc == 0 && ix->rekey_table) rc = put32(out, ix->rekey_table);
    }
    return rc == 0 ? 0 : SQLV_ERR_NOMEM;
}

typedef struct reader {
    const uint8_t *p;
    size_t left;
    bool bad;
} reader;

static uint32_t get_n(reader *r, int bytes) {
    uint32_t v = 0;
    if (r->bad || r->left < (size_t)bytes) {
        r->bad = true;
        return 0;
    }
    for (int i = 0; i < bytes; i++)
        v = v << 8 | r->p[i];
    r->p += bytes;
    r->left -= (size_t)bytes;
    return v;
}

int sqlv__index_section_decode(sqlv__table *t, const uint8_t *p, size_t len) {
    reader r = {p, len, false};
    sqlv__table tmp; /* only its index fields */
    memset(&tmp, 0, sizeof(tmp));
    int rc = -1;
    uint32_t next = get_n(&r, 4), n = get_n(&r, 2);
    if (r.bad || next < SQLV__INDEX_FIRST_ID || next > SQLV__INDEX_ID_MAX + 1 ||
        n > SQLV__INDEXES_MAX)
        return -1;
    tmp.next_index_id = next;
    if (n > 0) {
        tmp.indexes = base_calloc(n, sizeof(*tmp.indexes));
        if (tmp.indexes == NULL) return SQLV_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        sqlv__index *ix = &tmp.indexes[i];
        tmp.nindexes = (int)i + 1;
        ix->id = get_n(&r, 4);
        uint32_t flags = get_n(&r, 1);
        ix->state = (uint8_t)get_n(&r, 1);
        uint32_t nl = get_n(&r, 2);
        if (r.bad || ix->id < SQLV__INDEX_FIRST_ID || ix->id >= next || flags > 7 ||
            (ix->state != SQLV__INDEX_WRITE_ONLY && ix->state != SQLV__INDEX_PUBLIC) || nl == 0 ||
            nl > SQLV__NAME_BYTES_MAX * 4 || nl > r.left || memchr(r.p, 0, nl) != NULL)
            goto cleanup;
        for (uint32_t j = 0; j < i; j++)
            if (tmp.indexes[j].id == ix->id) goto cleanup;
        ix->unique = (flags & 1) != 0;
        ix->constraint = (flags & 2) != 0;
        rc = SQLV_ERR_NOMEM;
        ix->name = base_strndup((const char *)r.p, nl);
        if (ix->name == NULL) goto cleanup;
        rc = -1;
        r.p += nl;
        r.left -= nl;
        uint32_t nc = get_n(&r, 2);
        if (r.bad || nc == 0 || nc > SQLV__INDEX_COLUMNS_MAX) goto cleanup;
        rc = SQLV_ERR_NOMEM;
        ix->cols = base_calloc(nc, sizeof(int));
        ix->desc = base_calloc(nc, sizeof(bool));
        if (ix->cols == NULL || ix->desc == NULL) goto cleanup;
        rc = -1;
        ix->ncols = (int)nc;
        for (uint32_t c = 0; c < nc; c++) {
            uint32_t col = get_n(&r, 2), d = get_n(&r, 1);
            if (r.bad || col >= (uint32_t)t->ncols || d > 1) goto cleanup;
            ix->cols[c] = (int)col;
            ix->desc[c] = d != 0;
        }
        if (flags & 4) { /* an ADD PRIMARY KEY's shadow: unique, write-only */
            ix->rekey_table = get_n(&r, 4);
            if (r.bad || ix->rekey_table == 0 || !ix->unique ||
                ix->state != SQLV__INDEX_WRITE_ONLY)
                goto cleanup;
        }
    }
    if (r.left != 0) goto cleanup;
    sqlv__indexes_free(t);
    t->indexes = tmp.indexes;
    t->nindexes = tmp.nindexes;
    t->next_index_id = tmp.next_index_id;
    return 0;
cleanup:
    sqlv__indexes_free(&tmp);
    return rc;
}

/* ---- keys ------------------------------------------------------------------------- */

int sqlv__index_entry(const sqlv__table *t, const sqlv__index *ix, const sqlv__cell *cells,
                      const uint8_t *suffix, size_t suffix_len, base_buf *key, bool *exact) {
    bool null = false;
    base_buf_reset(key);
    if (enc_key_prefix(key, t->id, ix->id) != ENC_OK) return SQLV_ERR_NOMEM;
    for (int c = 0; c < ix->ncols; c++) {
        enc_value ev;
        sqlv__cell_to_enc(&cells[ix->cols[c]], &ev);
        null |= ev.type == ENC_NULL;
        if (enc_key_append(key, &ev) != ENC_OK) return SQLV_ERR_NOMEM;
    }
    *exact = ix->unique && !null;
    if (!*exact && base_buf_append(key, suffix, suffix_len) != 0) return SQLV_ERR_NOMEM;
    return 0;
}

int sqlv__index_span(uint32_t table_id, uint32_t index_id, base_buf *start, base_buf *end) {
    base_buf_reset(start);
    base_buf_reset(end);
    if (enc_key_prefix(start, table_id, index_id) != ENC_OK ||
        enc_prefix_end(start->data, start->len, end) != ENC_OK)
        return SQLV_ERR_NOMEM;
    return 0;
}

#define KEY_TEXT_VALUE_MAX 200 /* bytes of one value in a DETAIL */

int sqlv__index_key_text(const sqlv__table *t, const sqlv__index *ix, const sqlv__cell *cells,
                         base_buf *out) {
    int rc = base_buf_append_byte(out, '(');
    for (int c = 0; c < ix->ncols && rc == 0; c++)
        rc = base_buf_printf(out, "%s%s", c ? ", " : "", t->cols[ix->cols[c]].name);
    if (rc == 0) rc = base_buf_printf(out, ")=(");
    for (int c = 0; c < ix->ncols && rc == 0; c++) {
        const sqlv__cell *v = &cells[ix->cols[c]];
        if (c) rc = base_buf_printf(out, ", ");
        if (rc != 0) break;
        char num[64];
        switch (v->type) {
        case SQLITE_INTEGER:
            if (t->cols[ix->cols[c]].cls == SQLV__CLASS_BOOL)
                rc = base_buf_printf(out, "%s", v->i ? "t" : "f");
            else
                rc = base_buf_printf(out, "%lld", (long long)v->i);
            break;
        case SQLITE_FLOAT:
            sqlv__format_double(v->r, num, sizeof(num));
            rc = base_buf_printf(out, "%s", num);
            break;
        case SQLITE_TEXT:
            rc = base_buf_append(out, v->p, BASE_MIN(v->n, (size_t)KEY_TEXT_VALUE_MAX));
            break;
        case SQLITE_BLOB:
            rc = base_buf_printf(out, "\\x");
            for (size_t i = 0; i < BASE_MIN(v->n, (size_t)KEY_TEXT_VALUE_MAX / 2) && rc == 0; i++)
                rc = base_buf_printf(out, "%02x", v->p[i]);
            break;
        default: rc = base_buf_printf(out, "null"); break;
        }
    }
    if (rc == 0) rc = base_buf_append_byte(out, ')');
    return rc == 0 ? 0 : -1;
}

/* ---- names ------------------------------------------------------------------------ */

/* PostgreSQL's makeObjectName: "<n1>_<n2>_<label>" cut to 63 bytes by
** shortening the longer of n1 and n2 (n2 may be ""). */
static void object_name(const char *n1, const char *n2, const char *label, char *out,
                        size_t size) {
    size_t l1 = strlen(n1), l2 = strlen(n2), ll = strlen(label);
    size_t total = l1 + (l2 ? l2 + 1 : 0) + 1 + ll;
    while (total > SQLV__NAME_BYTES_MAX && (l1 > 1 || l2 > 1)) {
        if (l1 > l2)
            l1--;
        else
            l2--;
        total--;
    }
    snprintf(out, size, "%.*s%s%.*s_%s", (int)l1, n1, l2 ? "_" : "", (int)l2, n2, label);
}

/* The columns' part of a default index name: "a_b" (at most 63 bytes). */
static void columns_part(const sqlv__table *t, const int *cols, int ncols, char *out,
                         size_t size) {
    size_t o = 0;
    out[0] = 0;
    for (int c = 0; c < ncols && o + 1 < size; c++) {
        int w = snprintf(out + o, size - o, "%s%s", c ? "_" : "", t->cols[cols[c]].name);
        if (w < 0) break;
        o = BASE_MIN(size - 1, o + (size_t)w);
    }
    if (o > SQLV__NAME_BYTES_MAX) out[SQLV__NAME_BYTES_MAX] = 0;
}

/* A name for a new index of t that no relation of tables[0..n) and no
** index of t has: <t>_<cols>_<label>, then <label>1, <label>2...
** (PostgreSQL's ChooseRelationName). */
static void choose_name(const sqlv__table *const *tables, int n, const sqlv__table *t,
                        const int *cols, int ncols, const char *label, char *out, size_t size) {
    char part[SQLV__NAME_BYTES_MAX + 1], lab[32];
    columns_part(t, cols, ncols, part, sizeof(part));
    for (int pass = 0; pass < 100000; pass++) {
        if (pass == 0)
            snprintf(lab, sizeof(lab), "%s", label);
        else
            snprintf(lab, sizeof(lab), "%s%d", label, pass);
        object_name(t->name, part, lab, out, size);
        if (!sqlv__relation_taken(tables, n, out) && sqlv__table_index_named(t, out) == NULL)
            return;
    }
}

/* ---- UNIQUE constraints of CREATE TABLE ------------------------------------------- */

#define NAMED_MAX 64

typedef struct named_unique {
    char name[SQLV__NAME_BYTES_MAX * 4 + 1];
    int ncols;
    char cols[SQLV__INDEX_COLUMNS_MAX][SQLV__NAME_BYTES_MAX * 4 + 1];
    bool used;
} named_unique;

/* "CONSTRAINT name UNIQUE (cols)" and "col type ... CONSTRAINT name UNIQUE"
** in the CREATE text (depth 1 of its parentheses). Unnamed ones need no
** entry: their name comes from their columns. */
static int scan_named(const char *sql, named_unique *out, int max) {
    const char *p = sql, *end = sql + strlen(sql);
    int n = 0, depth = 0;
    bool seg_start = false;
    char col[SQLV__NAME_BYTES_MAX * 4 + 1] = "";
    for (int guard = 0; guard < 1000000; guard++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        if (sqlv__tok_punct(&t, '(')) {
            if (++depth == 1) seg_start = true;
            continue;
        }
        if (sqlv__tok_punct(&t, ')')) {
            depth--;
            continue;
        }
        if (depth != 1) continue;
        if (sqlv__tok_punct(&t, ',')) {
            seg_start = true;
            continue;
        }
        bool first = seg_start;
        seg_start = false;
        if (!sqlv__tok_is(&t, "CONSTRAINT")) {
            if (first && sqlv__tok_ident(&t, col, sizeof(col)) != 0) col[0] = 0;
            if (first && (sqlv__tok_is(&t, "UNIQUE") || sqlv__tok_is(&t, "PRIMARY") ||
                          sqlv__tok_is(&t, "CHECK") || sqlv__tok_is(&t, "FOREIGN")))
                col[0] = 0; /* a table constraint */
            continue;
        }
        sqlv__token nm = sqlv__lex_next(&p, end), kind = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&kind, "UNIQUE") || n >= max) {
            if (sqlv__tok_punct(&kind, '(')) depth++;
            continue;
        }
        named_unique *u = &out[n];
        memset(u, 0, sizeof(*u));
        /* as written, like every Meridian name (lookups ignore case) */
        if (sqlv__tok_ident(&nm, u->name, sizeof(u->name)) != 0) continue;
        if (first) { /* a table constraint: its column list follows */
            sqlv__token o = sqlv__lex_next(&p, end);
            if (!sqlv__tok_punct(&o, '(')) continue;
            for (int g = 0; g < 10000; g++) {
                sqlv__token c = sqlv__lex_next(&p, end);
                if (c.kind == SQLV__TOK_END || sqlv__tok_punct(&c, ')')) break;
                if (sqlv__tok_punct(&c, ',')) continue;
                if (u->ncols < SQLV__INDEX_COLUMNS_MAX &&
                    sqlv__tok_ident(&c, u->cols[u->ncols], sizeof(u->cols[0])) == 0)
                    u->ncols++;
            }
        } else if (col[0]) {
            base_strlcpy(u->cols[0], col, sizeof(u->cols[0]));
            u->ncols = 1;
        }
        if (u->ncols > 0) n++;
    }
    return n;
}

typedef struct auto_index {
    long order; /* N of sqlite_autoindex_<t>_N: the constraint's place in the text */
    char name[160];
} auto_index;

static int auto_cmp(const void *a, const void *b) {
    long x = ((const auto_index *)a)->order, y = ((const auto_index *)b)->order;
    return x < y ? -1 : x > y;
}

int sqlv__index_from_constraints(sqlite3 *db, sqlv__table *t, char sqlstate[6], char *message,
                                 size_t message_size) {
    sqlite3_stmt *st = NULL;
    auto_index found[SQLV__INDEXES_MAX + 1];
    named_unique *named = NULL;
    int nfound = 0, nnamed = 0, rc = SQLV_ERR_NOMEM;
    if (sqlite3_prepare_v2(db, "SELECT name FROM pragma_index_list(?1) WHERE origin = 'u'", -1,
                           &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC) != SQLITE_OK)
        goto cleanup;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *nm = (const char *)sqlite3_column_text(st, 0);
        if (nm == NULL) goto cleanup;
        if (nfound == SQLV__INDEXES_MAX) {
            base_strlcpy(sqlstate, "54000", 6);
            snprintf(message, message_size, "too many UNIQUE constraints (at most %d)",
                     SQLV__INDEXES_MAX);
            rc = 1;
            goto cleanup;
        }
        const char *us = strrchr(nm, '_');
        found[nfound].order = us ? strtol(us + 1, NULL, 10) : 0;
        base_strlcpy(found[nfound].name, nm, sizeof(found[nfound].name));
        nfound++;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (nfound == 0) return 0;
    qsort(found, (size_t)nfound, sizeof(found[0]), auto_cmp);
    named = base_calloc(NAMED_MAX, sizeof(*named));
    if (named == NULL) goto cleanup;
    nnamed = scan_named(t->create_sql, named, NAMED_MAX);
    for (int f = 0; f < nfound; f++) {
        int cols[SQLV__INDEX_COLUMNS_MAX];
        bool desc[SQLV__INDEX_COLUMNS_MAX] = {false};
        int ncols = 0;
        if (sqlite3_prepare_v2(db, "SELECT cid FROM pragma_index_info(?1) ORDER BY seqno", -1,
                               &st, NULL) != SQLITE_OK ||
            sqlite3_bind_text(st, 1, found[f].name, -1, SQLITE_STATIC) != SQLITE_OK)
            goto cleanup;
        while (sqlite3_step(st) == SQLITE_ROW) {
            int cid = sqlite3_column_int(st, 0);
            if (ncols == SQLV__INDEX_COLUMNS_MAX) {
                base_strlcpy(sqlstate, "54011", 6);
                snprintf(message, message_size, "cannot use more than %d columns in an index",
                         SQLV__INDEX_COLUMNS_MAX);
                rc = 1;
                goto cleanup;
            }
            if (cid < 0 || cid >= t->ncols) {
                base_strlcpy(sqlstate, "0A000", 6);
                snprintf(message, message_size, "UNIQUE constraints on expressions are not "
                         "supported");
                rc = 1;
                goto cleanup;
            }
            cols[ncols++] = cid;
        }
        sqlite3_finalize(st);
        st = NULL;
        if (ncols == 0) continue;
        /* the constraint's own name when it has one, else PostgreSQL's */
        char name[SQLV__NAME_BYTES_MAX * 4 + 1] = "";
        for (int k = 0; k < nnamed && !name[0]; k++) {
            named_unique *u = &named[k];
            bool same = !u->used && u->ncols == ncols;
            for (int c = 0; same && c < ncols; c++)
                same = sqlite3_stricmp(u->cols[c], t->cols[cols[c]].name) == 0;
            if (!same) continue;
            u->used = true;
            base_strlcpy(name, u->name, sizeof(name));
        }
        if (!name[0]) choose_name(NULL, 0, t, cols, ncols, "key", name, sizeof(name));
        if (sqlv__table_index_named(t, name) != NULL) {
            base_strlcpy(sqlstate, "42P07", 6);
            snprintf(message, message_size, "relation \"%s\" already exists", name);
            rc = 1;
            goto cleanup;
        }
        int arc = index_add(t, name, true, true, SQLV__INDEX_PUBLIC, cols, desc, ncols, sqlstate,
                            message, message_size);
        if (arc != 0) {
            rc = arc;
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    sqlite3_finalize(st);
    base_free(named);
    return rc;
}

/* ---- statement helpers (session.c's, through the run) ------------------------------ */

static int emit_tag(sqlv__run *r, const char *tag) {
    if (r->sink_rc == 0 && r->sink->command_complete)
        r->sink_rc = r->sink->command_complete(r->sink->ctx, tag);
    return STMT_OK;
}

static void emit_notice(sqlv__run *r, const char *msg) {
    if (r->sink_rc == 0 && r->sink->notice) r->sink_rc = r->sink->notice(r->sink->ctx, msg);
}

static int fail_res(sqlv__run *r, const sqlv__result *res) {
    return sqlv__fail(r, res->sqlstate, res->message);
}

void sqlv__result_set(sqlv__result *res, const char *state, const char *fmt, ...) {
    va_list ap;
    base_strlcpy(res->sqlstate, state, sizeof(res->sqlstate));
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
}

void sqlv__result_txn(sqlv__result *res, int rc, txn_error *err) {
    txn_error_set(err, rc);
    sqlv__result_set(res, err->sqlstate[0] ? err->sqlstate : "XX000", "%s",
                     err->message[0] ? err->message : "transaction failed");
}

int sqlv__backfill_txn_failed(sqlv__result *res, int trc, txn_error *err, int *txn_rc) {
    *txn_rc = trc;
    sqlv__result_txn(res, trc, err);
    return trc == TXN_ERR_NOMEM ? SQLV_ERR_NOMEM : 0;
}

/* ---- CREATE INDEX: the statement --------------------------------------------------- */

typedef struct index_spec {
    bool unique, concurrently, if_not_exists;
    char name[SQLV__NAME_BYTES_MAX * 4 + 1]; /* "" : chosen from the columns */
    char table[SQLV__NAME_BYTES_MAX * 4 + 1];
    int ncols;
    char cols[SQLV__INDEX_COLUMNS_MAX][SQLV__NAME_BYTES_MAX * 4 + 1];
    bool desc[SQLV__INDEX_COLUMNS_MAX];
} index_spec;

static int syntax(sqlv__result *res, const sqlv__token *t) {
    if (t->kind == SQLV__TOK_END)
        sqlv__result_set(res, "42601", "syntax error at end of input");
    else
        sqlv__result_set(res, "42601", "syntax error at or near \"%.*s\"",
                         (int)BASE_MIN(t->len, 64), t->start);
    return 1;
}

/* Skip a parenthesized group whose '(' was just read. */
static void skip_group(const char **p, const char *end) {
    int depth = 1;
    for (int guard = 0; depth > 0 && guard < 1000000; guard++) {
        sqlv__token t = sqlv__lex_next(p, end);
        if (t.kind == SQLV__TOK_END) return;
        if (sqlv__tok_punct(&t, '(')) depth++;
        if (sqlv__tok_punct(&t, ')')) depth--;
    }
}

/* CREATE [UNIQUE] INDEX [CONCURRENTLY] [[IF NOT EXISTS] name] ON [ONLY] t
** [USING btree] (col [COLLATE c] [opclass] [ASC|DESC] [NULLS FIRST|LAST],
** ...) [WITH (...)] [TABLESPACE x]. 0, or 1 with res set. */
static int parse_create(const char *text, size_t len, index_spec *spec, sqlv__result *res) {
    const char *p = text, *end = text + len;
    memset(spec, 0, sizeof(*spec));
    sqlv__token t = sqlv__lex_next(&p, end); /* CREATE */
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "UNIQUE")) {
        spec->unique = true;
        t = sqlv__lex_next(&p, end);
    }
    if (!sqlv__tok_is(&t, "INDEX")) return syntax(res, &t);
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "CONCURRENTLY")) {
        spec->concurrently = true;
        t = sqlv__lex_next(&p, end);
    }
    if (sqlv__tok_is(&t, "IF")) {
        sqlv__token n = sqlv__lex_next(&p, end), e = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&n, "NOT") || !sqlv__tok_is(&e, "EXISTS")) return syntax(res, &n);
        spec->if_not_exists = true;
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_is(&t, "ON")) return syntax(res, &t); /* IF NOT EXISTS needs a name */
    }
    if (!sqlv__tok_is(&t, "ON")) {
        if (sqlv__tok_ident(&t, spec->name, sizeof(spec->name)) != 0) return syntax(res, &t);
        if (strlen(spec->name) > SQLV__NAME_BYTES_MAX) {
            sqlv__result_set(res, "42622", "index name \"%s\" is too long", spec->name);
            return 1;
        }
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_punct(&t, '.')) {
            sqlv__result_set(res, "0A000", "schema-qualified index names are not supported yet");
            return 1;
        }
        if (!sqlv__tok_is(&t, "ON")) return syntax(res, &t);
    }
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "ONLY")) t = sqlv__lex_next(&p, end);
    if (sqlv__tok_ident(&t, spec->table, sizeof(spec->table)) != 0) return syntax(res, &t);
    t = sqlv__lex_next(&p, end);
    if (sqlv__tok_punct(&t, '.')) {
        sqlv__result_set(res, "0A000", "schema-qualified table names are not supported yet");
        return 1;
    }
    if (sqlv__tok_is(&t, "USING")) {
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "btree")) {
            sqlv__result_set(res, "0A000", "access method \"%.*s\" is not supported (only btree)",
                             (int)BASE_MIN(t.len, 64), t.start ? t.start : "");
            return 1;
        }
        t = sqlv__lex_next(&p, end);
    }
    if (!sqlv__tok_punct(&t, '(')) return syntax(res, &t);
    for (;;) {
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_punct(&t, '(')) {
            sqlv__result_set(res, "0A000", "index expressions are not supported yet");
            return 1;
        }
        if (spec->ncols == SQLV__INDEX_COLUMNS_MAX) {
            sqlv__result_set(res, "54011", "cannot use more than %d columns in an index",
                             SQLV__INDEX_COLUMNS_MAX);
            return 1;
        }
        if (sqlv__tok_ident(&t, spec->cols[spec->ncols], sizeof(spec->cols[0])) != 0)
            return syntax(res, &t);
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_punct(&t, '(') || sqlv__tok_punct(&t, ':') || sqlv__tok_punct(&t, '+') ||
            sqlv__tok_punct(&t, '-') || sqlv__tok_punct(&t, '*') || sqlv__tok_punct(&t, '|')) {
            sqlv__result_set(res, "0A000", "index expressions are not supported yet");
            return 1;
        }
        if (sqlv__tok_is(&t, "COLLATE")) {
            sqlv__token c = sqlv__lex_next(&p, end);
            char coll[64];
            if (sqlv__tok_ident(&c, coll, sizeof(coll)) != 0) return syntax(res, &c);
            if (sqlite3_stricmp(coll, "C") != 0 && sqlite3_stricmp(coll, "POSIX") != 0 &&
                sqlite3_stricmp(coll, "default") != 0) {
                sqlv__result_set(res, "0A000", "collation \"%s\" is not supported in an index",
                                 coll);
                return 1;
            }
            t = sqlv__lex_next(&p, end);
        }
        if (t.kind == SQLV__TOK_WORD && !sqlv__tok_is(&t, "ASC") && !sqlv__tok_is(&t, "DESC") &&
            !sqlv__tok_is(&t, "NULLS"))
            t = sqlv__lex_next(&p, end); /* an operator class: one order, ours */
        if (sqlv__tok_is(&t, "ASC") || sqlv__tok_is(&t, "DESC")) {
            spec->desc[spec->ncols] = sqlv__tok_is(&t, "DESC");
            t = sqlv__lex_next(&p, end);
        }
        if (sqlv__tok_is(&t, "NULLS")) { /* where NULLs sort: no plan uses index order */
            sqlv__token w = sqlv__lex_next(&p, end);
            if (!sqlv__tok_is(&w, "FIRST") && !sqlv__tok_is(&w, "LAST")) return syntax(res, &w);
            t = sqlv__lex_next(&p, end);
        }
        spec->ncols++;
        if (sqlv__tok_punct(&t, ')')) break;
        if (!sqlv__tok_punct(&t, ',')) return syntax(res, &t);
    }
    for (int guard = 0; guard < 100; guard++) {
        t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) return 0;
        if (sqlv__tok_is(&t, "INCLUDE")) {
            sqlv__result_set(res, "0A000", "INCLUDE columns are not supported yet");
            return 1;
        }
        if (sqlv__tok_is(&t, "WHERE")) {
            sqlv__result_set(res, "0A000", "partial indexes (WHERE) are not supported yet");
            return 1;
        }
        if (sqlv__tok_is(&t, "NULLS")) {
            sqlv__result_set(res, "0A000", "NULLS [NOT] DISTINCT is not supported yet");
            return 1;
        }
        if (sqlv__tok_is(&t, "WITH")) { /* storage parameters: nothing to tune */
            t = sqlv__lex_next(&p, end);
            if (!sqlv__tok_punct(&t, '(')) return syntax(res, &t);
            skip_group(&p, end);
            continue;
        }
        if (sqlv__tok_is(&t, "TABLESPACE")) {
            t = sqlv__lex_next(&p, end);
            if (t.kind != SQLV__TOK_WORD && t.kind != SQLV__TOK_QUOTED) return syntax(res, &t);
            continue;
        }
        return syntax(res, &t);
    }
    return syntax(res, &t);
}

/* The descriptor t with the index of spec added (a copy; owner of *out:
** caller). Checks names against tables[0..n) (which hold t). 0 with *out;
** 0 with *out NULL and res->notice set (IF NOT EXISTS); 1 with res set;
** SQLV_ERR_NOMEM. */
static int with_index(const sqlv__table *const *tables, int n, const sqlv__table *t,
                      const index_spec *spec, int state, sqlv__table **out, sqlv__result *res) {
    int cols[SQLV__INDEX_COLUMNS_MAX];
    char name[SQLV__NAME_BYTES_MAX * 4 + 1];
    *out = NULL;
    if (sqlv__table_rekey_index(t) != NULL) { /* its shadow copies the indexes it knows */
        sqlv__result_set(res, "55000", "cannot create an index on table \"%s\" while ALTER "
                         "TABLE ADD PRIMARY KEY is in progress", t->name);
        return 1;
    }
    for (int c = 0; c < spec->ncols; c++) {
        cols[c] = -1;
        for (int k = 0; k < t->ncols && cols[c] < 0; k++)
            if (sqlite3_stricmp(t->cols[k].name, spec->cols[c]) == 0) cols[c] = k;
        if (cols[c] < 0) {
            sqlv__result_set(res, "42703", "column \"%s\" does not exist", spec->cols[c]);
            return 1;
        }
    }
    if (spec->name[0]) {
        base_strlcpy(name, spec->name, sizeof(name));
        if (sqlv__relation_taken(tables, n, name)) {
            if (spec->if_not_exists) {
                snprintf(res->notice, sizeof(res->notice),
                         "relation \"%.200s\" already exists, skipping", name);
                return 0;
            }
            sqlv__result_set(res, "42P07", "relation \"%s\" already exists", name);
            return 1;
        }
    } else {
        choose_name(tables, n, t, cols, spec->ncols, "idx", name, sizeof(name));
    }
    sqlv__table *nt = NULL;
    if (sqlv__table_clone(t, &nt) != 0) return SQLV_ERR_NOMEM;
    int rc = index_add(nt, name, spec->unique, false, state, cols, spec->desc, spec->ncols,
                       res->sqlstate, res->message, sizeof(res->message));
    if (rc != 0) {
        sqlv__table_free(nt);
        return rc;
    }
    nt->shape = sqlv__table_shape(nt);
    *out = nt;
    return 0;
}

/* Build (or continue building) the entries of ix for the rows of t in
** [*from, end of the table's rows) through kv, at most max_rows rows (0:
** no limit). *from moves past the last row done; *done when the table
** ended; *nread the rows done (0 after a failure). A duplicate of a unique
** index: res 23505 "could not create unique index". 0 (res may be set) or
** SQLV_ERR_NOMEM; a txn error goes to res with *txn_rc. */
static int build_entries(txn *kv, const sqlv__table *t, const sqlv__index *ix, base_buf *from,
                         int max_rows, bool *done, int *nread, int *txn_rc, sqlv__result *res) {
    base_buf rows_start = {0}, rows_end = {0}, key = {0}, found = {0}, detail = {0};
    txn_error err = {{0}, {0}};
    txn_iter *it = NULL;
    sqlv__cell *cells = base_calloc((size_t)t->ncols, sizeof(*cells));
    int rc = SQLV_ERR_NOMEM, nrows = 0;
    *done = false;
    *nread = 0;
    *txn_rc = TXN_OK;
    if (cells == NULL) goto cleanup;
    if (sqlv__table_prefix(&rows_start, t->id) != 0 ||
        enc_prefix_end(rows_start.data, rows_start.len, &rows_end) != ENC_OK)
        goto cleanup;
    if (from->len == 0 && base_buf_append(from, rows_start.data, rows_start.len) != 0)
        goto cleanup;
    int trc = txn_scan(kv, from->data, from->len, rows_end.data, rows_end.len, false, &it, &err);
    if (trc != TXN_OK) {
        it = NULL;
        goto txn_failed;
    }
    for (;;) {
        const uint8_t *k, *v;
        size_t kl, vl;
        if (max_rows > 0 && nrows >= max_rows) break;
        int n = txn_iter_next(it, &k, &kl, &v, &vl, &err);
        if (n < 0) {
            trc = n;
            goto txn_failed;
        }
        if (n == 0) {
            *done = true;
            break;
        }
        nrows++;
        if (kl <= ENC_PREFIX_BYTES || sqlv__row_decode_table(t, v, vl, cells) != 0) {
            sqlv__result_set(res, "XX001", "malformed row of table \"%s\" in the key space",
                             t->name);
            rc = 0;
            goto cleanup;
        }
        bool exact;
        if (sqlv__index_entry(t, ix, cells, k + ENC_PREFIX_BYTES, kl - ENC_PREFIX_BYTES, &key,
                              &exact) != 0)
            goto cleanup;
        if (exact) {
            trc = txn_get(kv, key.data, key.len, &found, &err);
            if (trc == TXN_OK && (found.len != kl - ENC_PREFIX_BYTES ||
                                  memcmp(found.data, k + ENC_PREFIX_BYTES, found.len) != 0)) {
                if (sqlv__index_key_text(t, ix, cells, &detail) != 0) goto cleanup;
                sqlv__result_set(res, "23505", "could not create unique index \"%s\"\nDETAIL:  "
                                 "Key %.*s is duplicated.", ix->name,
                                 (int)BASE_MIN(detail.len, 400), (const char *)detail.data);
                rc = 0;
                goto cleanup;
            }
            if (trc != TXN_OK && trc != TXN_NOT_FOUND) goto txn_failed;
        }
        trc = txn_put(kv, key.data, key.len, k + ENC_PREFIX_BYTES, kl - ENC_PREFIX_BYTES, &err);
        if (trc != TXN_OK) goto txn_failed;
        base_buf_reset(from);
        if (enc_key_next(k, kl, from) != ENC_OK) goto cleanup;
    }
    *nread = nrows;
    rc = 0;
    goto cleanup;
txn_failed:
    rc = sqlv__backfill_txn_failed(res, trc, &err, txn_rc);
cleanup:
    if (it) txn_iter_close(it);
    base_free(cells);
    base_buf_free(&rows_start);
    base_buf_free(&rows_end);
    base_buf_free(&key);
    base_buf_free(&found);
    base_buf_free(&detail);
    return rc;
}

/* ---- CREATE INDEX inside a transaction block ------------------------------------------ */

/* The session's overlay arrays with room for k more created and dropped
** tables. 0 or -1. */
static int ddl_room(sqlv_session *s, int k) {
    sqlv__pending_ddl *p = &s->ddl;
    if (p->ncreated + k > p->cap_created) {
        int cap = p->cap_created ? p->cap_created : 8;
        while (cap < p->ncreated + k)
            cap *= 2;
        sqlv__table **l = base_realloc(p->created, sizeof(*l) * (size_t)cap);
        if (l == NULL) return -1;
        p->created = l;
        p->cap_created = cap;
    }
    if (p->ndropped + k > p->cap_dropped) {
        int cap = p->cap_dropped ? p->cap_dropped : 8;
        while (cap < p->ndropped + k)
            cap *= 2;
        uint32_t *l = base_realloc(p->dropped, sizeof(*l) * (size_t)cap);
        if (l == NULL) return -1;
        p->dropped = l;
        p->cap_dropped = cap;
    }
    return 0;
}

/* The block's overlay gets nt (owner: the overlay from now) in place of
** the descriptor of its id: a table the block created is replaced, a
** committed one is dropped and created (as ALTER TABLE does). ddl_room(s,
** 1) was called. */
static void overlay_replace(sqlv_session *s, sqlv__table *nt) {
    sqlv__pending_ddl *p = &s->ddl;
    for (int i = 0; i < p->ncreated; i++) {
        if (p->created[i]->id != nt->id) continue;
        sqlv__table_free(p->created[i]);
        p->created[i] = nt;
        s->ddl_version++;
        return;
    }
    p->created[p->ncreated++] = nt;
    p->dropped[p->ndropped++] = nt->id;
    s->ddl_version++;
}

/* The block's transaction, begun if needed (it fixes s->cat). */
static int block_begin(sqlv__run *r) {
    txn_error err = {{0}, {0}};
    if (r->s->kv != NULL) return STMT_OK;
    int rc = sqlv__session_begin(r->s, false, &err);
    return rc == TXN_OK ? STMT_OK : sqlv__fail_txn(r, rc, &err);
}

static const sqlv__table *find_named(const sqlv__table *const *l, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (sqlite3_stricmp(l[i]->name, name) == 0) return l[i];
    return NULL;
}

static int create_in_block(sqlv__run *r, const index_spec *spec) {
    sqlv_session *s = r->s;
    sqlv__result res;
    const sqlv__table **list = NULL;
    sqlv__table *nt = NULL;
    base_buf from = {0};
    uint32_t sp = 0;
    int n = 0, result = STMT_FAILED, txn_rc, nread;
    bool have_sp = false, done;
    memset(&res, 0, sizeof(res));
    if (spec->concurrently)
        return sqlv__fail(r, "25001", "CREATE INDEX CONCURRENTLY cannot run inside a transaction "
                                      "block");
    if (block_begin(r) != STMT_OK) return STMT_FAILED;
    if (sqlv__pgcat_tables(s, &list, &n) != 0) return sqlv__fail(r, "53200", "out of memory");
    const sqlv__table *t = find_named(list, n, spec->table);
    if (t == NULL) {
        sqlv__result_set(&res, "42P01", "relation \"%s\" does not exist", spec->table);
        result = fail_res(r, &res);
        goto cleanup;
    }
    int rc = with_index(list, n, t, spec, SQLV__INDEX_PUBLIC, &nt, &res);
    if (rc < 0 || ddl_room(s, 1) != 0) {
        result = sqlv__fail(r, "53200", "out of memory");
        goto cleanup;
    }
    if (rc > 0) {
        result = fail_res(r, &res);
        goto cleanup;
    }
    if (nt == NULL) { /* IF NOT EXISTS */
        emit_notice(r, res.notice);
        result = emit_tag(r, "CREATE INDEX");
        goto cleanup;
    }
    txn_error err = {{0}, {0}};
    int trc = txn_savepoint(s->kv, &sp);
    if (trc != TXN_OK) {
        result = sqlv__fail_txn(r, trc, &err);
        goto cleanup;
    }
    have_sp = true;
    rc = sqlv__catalog_put(s->kv, nt, &res);
    if (rc == 0 && !res.sqlstate[0])
        rc = build_entries(s->kv, nt, &nt->indexes[nt->nindexes - 1], &from, 0, &done, &nread,
                           &txn_rc, &res);
    if (rc < 0) {
        result = sqlv__fail(r, "53200", "out of memory");
        goto cleanup;
    }
    if (res.sqlstate[0]) {
        result = fail_res(r, &res);
        goto cleanup;
    }
    txn_release(s->kv, sp);
    have_sp = false;
    overlay_replace(s, nt);
    nt = NULL;
    result = emit_tag(r, "CREATE INDEX");
cleanup:
    if (have_sp && s->kv) txn_rollback_to(s->kv, sp);
    base_free(list);
    sqlv__table_free(nt);
    base_buf_free(&from);
    return result;
}

/* ---- CREATE INDEX outside a block: online ------------------------------------------- */

typedef struct online_args {
    const index_spec *spec;
    uint32_t table_id, index_id; /* set by step 1 */
    char index_name[SQLV__NAME_BYTES_MAX * 4 + 1];
} online_args;

/* Step 1: the index in state WRITE_ONLY. */
static int add_write_only(sqlv_engine *e, txn *kv, const sqlv__catalog *cat, void *arg,
                          sqlv__result *res) {
    (void)e;
    online_args *a = arg;
    const sqlv__table *const *all = (const sqlv__table *const *)cat->tables;
    const sqlv__table *t = sqlv__catalog_find(cat, a->spec->table);
    sqlv__table *nt = NULL;
    if (t == NULL) {
        sqlv__result_set(res, "42P01", "relation \"%s\" does not exist", a->spec->table);
        return 0;
    }
    int rc = with_index(all, cat->ntables, t, a->spec, SQLV__INDEX_WRITE_ONLY, &nt, res);
    if (rc < 0) return rc;
    if (rc > 0 || nt == NULL) return 0;
    const sqlv__index *ix = &nt->indexes[nt->nindexes - 1];
    a->table_id = nt->id;
    a->index_id = ix->id;
    base_strlcpy(a->index_name, ix->name, sizeof(a->index_name));
    rc = sqlv__catalog_put(kv, nt, res);
    sqlv__table_free(nt);
    return rc;
}

/* The table and the index the online build works on, as cat has them, or
** res set (dropped meanwhile). */
static const sqlv__table *building(const sqlv__catalog *cat, const online_args *a,
                                   int *pos, sqlv__result *res) {
    const sqlv__table *t = sqlv__catalog_find_id(cat, a->table_id);
    *pos = t ? index_pos(t, a->index_id) : -1;
    if (t == NULL || *pos < 0) {
        sqlv__result_set(res, "55000", "index \"%s\" was dropped while it was being built",
                         a->index_name);
        return NULL;
    }
    return t;
}

/* Step 3: PUBLIC. */
static int make_public(sqlv_engine *e, txn *kv, const sqlv__catalog *cat, void *arg,
                       sqlv__result *res) {
    (void)e;
    online_args *a = arg;
    int pos;
    sqlv__table *nt = NULL;
    const sqlv__table *t = building(cat, a, &pos, res);
    if (t == NULL) return 0;
    if (sqlv__table_clone(t, &nt) != 0) return SQLV_ERR_NOMEM;
    nt->indexes[pos].state = SQLV__INDEX_PUBLIC;
    nt->shape = sqlv__table_shape(nt);
    int rc = sqlv__catalog_put(kv, nt, res);
    sqlv__table_free(nt);
    return rc;
}

/* After a failure: the index and its entries go. */
static int remove_index(sqlv_engine *e, txn *kv, const sqlv__catalog *cat, void *arg,
                        sqlv__result *res) {
    (void)e;
    online_args *a = arg;
    int pos;
    sqlv__table *nt = NULL;
    base_buf start = {0}, end = {0};
    txn_error err = {{0}, {0}};
    const sqlv__table *t = building(cat, a, &pos, res);
    if (t == NULL) {
        memset(res, 0, sizeof(*res)); /* gone already: nothing to do */
        return 0;
    }
    int rc = SQLV_ERR_NOMEM;
    if (sqlv__table_clone(t, &nt) != 0 || sqlv__index_span(t->id, a->index_id, &start, &end) != 0)
        goto cleanup;
    index_remove(nt, pos);
    nt->shape = sqlv__table_shape(nt);
    rc = sqlv__catalog_put(kv, nt, res);
    if (rc == 0 && !res->sqlstate[0]) {
        int trc = txn_delete_range(kv, start.data, start.len, end.data, end.len, &err);
        if (trc != TXN_OK) sqlv__result_txn(res, trc, &err);
    }
cleanup:
    sqlv__table_free(nt);
    base_buf_free(&start);
    base_buf_free(&end);
    return rc;
}

void sqlv__backfill_backoff(int attempt) {
    long us = 100L << (attempt < 9 ? attempt : 9);
    if (us > BACKFILL_BACKOFF_MAX_US) us = BACKFILL_BACKOFF_MAX_US;
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* The one driver of the online backfills: this file's index entries and
** rekey.c's copies under the new key (sql_int.h). */
int sqlv__backfill_run(sqlv_session *s, sqlv__backfill_step_fn step, void *arg, int rows_max,
                       uint32_t table_id, uint32_t index_id, sqlv__result *res) {
    sqlv_engine *e = s->engine;
    sqlv__catalog *cat = NULL;
    base_buf from = {0}, tried = {0};
    int rc = 0, rows = sqlv__backfill_rows > 0 ? sqlv__backfill_rows : rows_max;
    bool done = false;
    for (int batch = 0; !done; batch++) {
        int batch_rows = rows;
        for (int attempt = 0;; attempt++) {
            txn *kv = NULL;
            txn_error err = {{0}, {0}};
            int txn_rc = TXN_OK, nrows = 0;
            memset(res, 0, sizeof(*res));
            if (atomic_load(&s->cancel)) {
                sqlv__result_set(res, "57014", "canceling statement due to user request");
                goto out;
            }
            base_buf_reset(&tried);
            if (base_buf_append(&tried, from.data, from.len) != 0) {
                rc = SQLV_ERR_NOMEM;
                goto out;
            }
            int trc = txn_begin(e->db, NULL, &kv);
            if (trc == TXN_OK) trc = sqlv__engine_catalog_at(e, kv, &cat, &err);
            if (trc != TXN_OK) {
                if (kv) txn_rollback(kv);
                sqlv__result_txn(res, trc, &err);
                goto out;
            }
            /* cat through kv: its version read makes any DDL since fail this batch */
            rc = step(arg, kv, cat, &tried, batch_rows, &done, &nrows, &txn_rc, res);
            if (rc != 0 || res->sqlstate[0]) {
                txn_rollback(kv);
                if (rc != 0 || txn_rc != TXN_ERR_RETRY) goto out;
            } else {
                trc = txn_commit(kv, NULL, &err);
                if (trc == TXN_OK) break;
                sqlv__result_txn(res, trc, &err);
                if (trc != TXN_ERR_RETRY) goto out;
            }
            /* 40001: the rows changed under the batch, or a DDL committed;
            ** again from the batch's start, with half the rows it read (a
            ** step may stop short of batch_rows: the rows ended, or its
            ** bytes bound it), bounded */
            if (attempt + 1 >= SQLV__BACKFILL_RETRIES_MAX) goto out;
            done = false;
            if (nrows > 0 && nrows < batch_rows) batch_rows = nrows;
            batch_rows = batch_rows > 16 ? batch_rows / 2 : batch_rows;
            sqlv__backfill_backoff(attempt);
        }
        memset(res, 0, sizeof(*res));
        base_buf_reset(&from);
        if (base_buf_append(&from, tried.data, tried.len) != 0) {
            rc = SQLV_ERR_NOMEM;
            goto out;
        }
        if (sqlv__backfill_hook)
            sqlv__backfill_hook(sqlv__backfill_hook_arg, table_id, index_id, batch);
    }
out:
    sqlv__catalog_unref(cat);
    base_buf_free(&from);
    base_buf_free(&tried);
    return rc;
}

/* Step 2's batch (sqlv__backfill_step_fn): the entries of the next rows. */
static int backfill_step(void *arg, txn *kv, const sqlv__catalog *cat, base_buf *from,
                         int max_rows, bool *done, int *nrows, int *txn_rc, sqlv__result *res) {
    int pos;
    const sqlv__table *t = building(cat, arg, &pos, res);
    if (t == NULL) return 0;
    return build_entries(kv, t, &t->indexes[pos], from, max_rows, done, nrows, txn_rc, res);
}

static int create_online(sqlv__run *r, const index_spec *spec) {
    sqlv_session *s = r->s;
    sqlv_engine *e = s->engine;
    online_args a;
    sqlv__result res, cleanup_res;
    memset(&a, 0, sizeof(a));
    a.spec = spec;
    int rc = sqlv__engine_run_ddl(e, add_write_only, &a, &res);
    if (rc < 0) return sqlv__fail(r, "53200", "out of memory");
    if (res.sqlstate[0]) return fail_res(r, &res);
    if (res.notice[0]) {
        emit_notice(r, res.notice);
        return emit_tag(r, "CREATE INDEX");
    }
    BASE_INFO(MOD, "index %s (id %u) of table id %u: write-only, backfilling", a.index_name,
              a.index_id, a.table_id);
    rc = sqlv__backfill_run(s, backfill_step, &a, SQLV__BACKFILL_ROWS_MAX, a.table_id, a.index_id,
                            &res);
    if (rc == 0 && !res.sqlstate[0]) rc = sqlv__engine_run_ddl(e, make_public, &a, &res);
    if (rc == 0 && !res.sqlstate[0]) {
        BASE_INFO(MOD, "index %s of table id %u is public", a.index_name, a.table_id);
        return emit_tag(r, "CREATE INDEX");
    }
    /* failed: the index goes (best effort; if it stays, it is WRITE_ONLY:
    ** maintained, never read, shown INVALID; DROP INDEX removes it) */
    if (sqlv__engine_run_ddl(e, remove_index, &a, &cleanup_res) != 0 || cleanup_res.sqlstate[0])
        BASE_WARN(MOD, "index %s of table id %u not removed after a failed build: %s",
                  a.index_name, a.table_id, cleanup_res.message);
    if (rc < 0) return sqlv__fail(r, "53200", "out of memory");
    return fail_res(r, &res);
}

int sqlv__index_create_stmt(sqlv__run *r, const char *text, size_t len) {
    index_spec *spec = base_calloc(1, sizeof(*spec)); /* owner: this function */
    sqlv__result res;
    int result;
    memset(&res, 0, sizeof(res));
    if (spec == NULL) return sqlv__fail(r, "53200", "out of memory");
    if (parse_create(text, len, spec, &res) != 0)
        result = fail_res(r, &res);
    else if (r->s->status == 'T')
        result = create_in_block(r, spec);
    else
        result = create_online(r, spec);
    base_free(spec);
    return result;
}

/* ---- DROP INDEX -------------------------------------------------------------------- */

typedef struct drop_args {
    char names[DROP_INDEX_NAMES_MAX][SQLV__NAME_BYTES_MAX * 4 + 1];
    int n;
    bool if_exists;
    /* the new descriptors of the tables that lose indexes; owner: this */
    sqlv__table *changed[DROP_INDEX_NAMES_MAX];
    int nchanged;
} drop_args;

static void drop_args_clear(drop_args *a) {
    for (int i = 0; i < a->nchanged; i++)
        sqlv__table_free(a->changed[i]);
    a->nchanged = 0;
}

/* Remove the named indexes from the tables of tables[0..n) into
** a->changed, write their catalog rows and delete their entries through
** kv. 0 (res set on a user error, notice for IF EXISTS) or <0. */
static int drop_from(txn *kv, const sqlv__table *const *tables, int n, drop_args *a,
                     sqlv__result *res) {
    base_buf start = {0}, end = {0};
    txn_error err = {{0}, {0}};
    int rc = 0;
    drop_args_clear(a);
    for (int i = 0; i < a->n && rc == 0; i++) {
        const char *name = a->names[i];
        const sqlv__table *t = NULL;
        int pos = -1;
        for (int k = 0; k < a->nchanged && pos < 0; k++) { /* one table, two of its indexes */
            const sqlv__index *ix = sqlv__table_index_named(a->changed[k], name);
            if (ix) t = a->changed[k], pos = (int)(ix - a->changed[k]->indexes);
        }
        for (int k = 0; k < n && pos < 0; k++) {
            bool mine = false;
            for (int c = 0; c < a->nchanged; c++)
                mine |= a->changed[c]->id == tables[k]->id;
            const sqlv__index *ix = mine ? NULL : sqlv__table_index_named(tables[k], name);
            if (ix) t = tables[k], pos = (int)(ix - tables[k]->indexes);
        }
        if (pos < 0) {
            char pk[128];
            for (int k = 0; k < n; k++) {
                pkey_name(tables[k], pk, sizeof(pk));
                if (tables[k]->npk > 0 && sqlite3_stricmp(pk, name) == 0) {
                    sqlv__result_set(res, "2BP01", "cannot drop index %s because constraint %s "
                                     "on table %s requires it", pk, pk, tables[k]->name);
                    goto cleanup;
                }
                if (sqlite3_stricmp(tables[k]->name, name) == 0) {
                    sqlv__result_set(res, "42809", "\"%s\" is not an index", name);
                    goto cleanup;
                }
            }
            if (!a->if_exists) {
                sqlv__result_set(res, "42704", "index \"%s\" does not exist", name);
                goto cleanup;
            }
            snprintf(res->notice, sizeof(res->notice), "index \"%.200s\" does not exist, skipping",
                     name);
            continue;
        }
        const sqlv__index *ix = &t->indexes[pos];
        if (ix->constraint) {
            sqlv__result_set(res, "2BP01", "cannot drop index %s because constraint %s on table %s "
                             "requires it", ix->name, ix->name, t->name);
            goto cleanup;
        }
        rc = SQLV_ERR_NOMEM;
        if (sqlv__index_span(t->id, ix->id, &start, &end) != 0) goto cleanup;
        int trc = txn_delete_range(kv, start.data, start.len, end.data, end.len, &err);
        if (trc != TXN_OK) {
            sqlv__result_txn(res, trc, &err);
            rc = 0;
            goto cleanup;
        }
        bool changed = false;
        for (int k = 0; k < a->nchanged; k++)
            changed |= a->changed[k] == t;
        if (!changed) {
            sqlv__table *nt = NULL;
            if (sqlv__table_clone(t, &nt) != 0) goto cleanup;
            a->changed[a->nchanged++] = nt;
            t = nt;
        }
        index_remove((sqlv__table *)t, pos);
        rc = 0;
    }
    for (int k = 0; k < a->nchanged && rc == 0 && !res->sqlstate[0]; k++) {
        a->changed[k]->shape = sqlv__table_shape(a->changed[k]);
        rc = sqlv__catalog_put(kv, a->changed[k], res);
    }
cleanup:
    base_buf_free(&start);
    base_buf_free(&end);
    return rc;
}

static int drop_attempt(sqlv_engine *e, txn *kv, const sqlv__catalog *cat, void *arg,
                        sqlv__result *res) {
    (void)e;
    return drop_from(kv, (const sqlv__table *const *)cat->tables, cat->ntables, arg, res);
}

int sqlv__index_drop_stmt(sqlv__run *r, const char *text, size_t len) {
    sqlv_session *s = r->s;
    const char *p = text, *end = text + len;
    sqlv__result res;
    drop_args *a = base_calloc(1, sizeof(*a)); /* owner: this function */
    int result = STMT_FAILED;
    memset(&res, 0, sizeof(res));
    if (a == NULL) return sqlv__fail(r, "53200", "out of memory");
    sqlv__token t = sqlv__lex_next(&p, end); /* DROP */
    t = sqlv__lex_next(&p, end);             /* INDEX */
    t = sqlv__lex_next(&p, end);
    bool concurrently = sqlv__tok_is(&t, "CONCURRENTLY");
    if (concurrently) t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "IF")) {
        t = sqlv__lex_next(&p, end);
        if (!sqlv__tok_is(&t, "EXISTS")) {
            syntax(&res, &t);
            result = fail_res(r, &res);
            goto cleanup;
        }
        a->if_exists = true;
        t = sqlv__lex_next(&p, end);
    }
    for (;;) {
        if (a->n == DROP_INDEX_NAMES_MAX) {
            result = sqlv__fail(r, "54000", "too many indexes in DROP INDEX");
            goto cleanup;
        }
        if (sqlv__tok_ident(&t, a->names[a->n], sizeof(a->names[0])) != 0) {
            syntax(&res, &t);
            result = fail_res(r, &res);
            goto cleanup;
        }
        a->n++;
        t = sqlv__lex_next(&p, end);
        if (sqlv__tok_punct(&t, '.')) {
            result = sqlv__fail(r, "0A000", "schema-qualified index names are not supported yet");
            goto cleanup;
        }
        if (!sqlv__tok_punct(&t, ',')) break;
        t = sqlv__lex_next(&p, end);
    }
    if (sqlv__tok_is(&t, "CASCADE") || sqlv__tok_is(&t, "RESTRICT")) t = sqlv__lex_next(&p, end);
    if (t.kind != SQLV__TOK_END) {
        syntax(&res, &t);
        result = fail_res(r, &res);
        goto cleanup;
    }
    if (s->status == 'T') {
        const sqlv__table **list = NULL;
        int n = 0;
        uint32_t sp;
        txn_error err = {{0}, {0}};
        if (concurrently) {
            result = sqlv__fail(r, "25001", "DROP INDEX CONCURRENTLY cannot run inside a "
                                            "transaction block");
            goto cleanup;
        }
        if (block_begin(r) != STMT_OK) goto cleanup;
        if (sqlv__pgcat_tables(s, &list, &n) != 0) {
            result = sqlv__fail(r, "53200", "out of memory");
            goto cleanup;
        }
        int trc = txn_savepoint(s->kv, &sp);
        if (trc != TXN_OK) {
            base_free(list);
            result = sqlv__fail_txn(r, trc, &err);
            goto cleanup;
        }
        int rc = drop_from(s->kv, (const sqlv__table *const *)list, n, a, &res);
        base_free(list); /* before the overlay changes what it points to */
        if (rc == 0 && !res.sqlstate[0] && ddl_room(s, a->nchanged) != 0) rc = SQLV_ERR_NOMEM;
        if (rc < 0 || res.sqlstate[0]) {
            txn_rollback_to(s->kv, sp);
            result = rc < 0 ? sqlv__fail(r, "53200", "out of memory") : fail_res(r, &res);
            goto cleanup;
        }
        txn_release(s->kv, sp);
        for (int k = 0; k < a->nchanged; k++) { /* room was made for each */
            overlay_replace(s, a->changed[k]);
            a->changed[k] = NULL;
        }
        a->nchanged = 0;
    } else {
        int rc = sqlv__engine_run_ddl(s->engine, drop_attempt, a, &res);
        if (rc < 0) {
            result = sqlv__fail(r, "53200", "out of memory");
            goto cleanup;
        }
        if (res.sqlstate[0]) {
            result = fail_res(r, &res);
            goto cleanup;
        }
    }
    if (res.notice[0]) emit_notice(r, res.notice);
    result = emit_tag(r, "DROP INDEX");
cleanup:
    drop_args_clear(a);
    base_free(a);
    return result;
}
