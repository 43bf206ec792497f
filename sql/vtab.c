/*
** The "meridian" SQLite module: each user table is a virtual table in the
** session's connection, declared as
**
**   CREATE TABLE x("_meridian_key" BLOB HIDDEN, c1 T1, ..., cn Tn,
**                  PRIMARY KEY("_meridian_key")) WITHOUT ROWID
**
** (a writable WITHOUT ROWID virtual table cannot have a composite primary
** key, so the encoded key is the one SQLite-visible key). T is a canonical
** type name per column class so SQLite's comparison affinity matches what
** is stored.
**
** Invariants:
**   - every read and write goes through the session's one KV transaction
**     (sqlv__session_kv); the module never begins or ends it, and its
**     xBegin/xSync/xCommit/xRollback and savepoint methods do nothing: the
**     session drives the KV transaction and statement savepoints itself
**     (SQLite stays in autocommit; see docs/decisions/003).
**   - a key range computed in xFilter always contains every row that can
**     satisfy the constraints it came from (constraints are never omitted,
**     SQLite re-checks them): when a value cannot be converted the way
**     SQLite's affinity would, the range widens instead of guessing.
**   - the row key is prefix(table id, 1) + enc(PK values in PK order), or
**     + enc(INTEGER hidden row id) for a table without a primary key.
**   - the reads of UPDATE, DELETE and SELECT ... FOR UPDATE/SHARE lock the
**     rows they return (txn_set_locking, docs/txn.md section 5); the KV
**     transaction is in locking mode only inside xFilter's reads (and an
**     index scan's row fetches).
**   - secondary indexes (index.c): every write maintains every index of the
**     descriptor, WRITE_ONLY or PUBLIC, in the same KV transaction as the
**     row, and checks a unique index before anything is written (OR IGNORE
**     then skips the row whole); plans read PUBLIC indexes only. An index
**     plan scans the entries of its equality prefix (or range) and fetches
**     each row by its key; a unique index with every column bound reads one
**     entry.
**   - while an ADD PRIMARY KEY is in progress (rekey.c), a write also
**     writes or deletes the row and its entries under the shadow's new
**     table id, in the same KV transaction, after the shadow index's
**     uniqueness check; the new key's columns are NOT NULL already.
**   - every row written (INSERT, UPDATE, upsert, COPY) passes the table's
**     CHECK constraints (check.c) before anything is written; the one
**     statement that evaluates them is the vtab's and runs on the
**     session's connection, touching no table.
**   - while the session's capture is set (upsert.c), every row written to
**     its table has its key recorded, after the write and only when it
**     succeeded; an equality on the hidden key column is a point read.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql_dialect.h"
#include "sql_int.h"
#include "sql_lex.h"

typedef struct mvtab {
    sqlite3_vtab base;
    sqlv_session *s; /* borrowed: the session owns the connection */
    sqlv__table *t;  /* owner: this vtab */
    /* CHECK constraints (check.c), read at the first write: */
    bool checks_read;
    int nchecks;
    sqlv__check *checks; /* owner: this vtab */
    sqlite3_stmt *check; /* evaluates them all for one bound row; owner: this vtab */
} mvtab;

typedef struct mcursor {
    sqlite3_vtab_cursor base;
    txn_iter *it;
    const sqlv__index *ix; /* an index scan: it walks ix's entries; NULL: rows */
    bool locking;          /* an index scan's row fetches lock (the statement's) */
    bool eof;
    base_buf key;      /* current row's key (copy) */
    base_buf value;    /* current row's value (copy) */
    sqlv__cell *cells; /* decoded columns, pointing into value */
} mcursor;

/* idxNum layout */
#define IDX_NEQ_MASK 0x3ff
#define IDX_HAS_LO (1 << 16)
#define IDX_LO_INCL (1 << 17)
#define IDX_HAS_HI (1 << 18)
#define IDX_HI_INCL (1 << 19)
#define IDX_REVERSE (1 << 20)
#define IDX_SLOT_SHIFT 21 /* 1 + the secondary index's position, 0: the rows */
#define IDX_SLOT_MASK 0x7f
#define IDX_KEY_EQ (1 << 28) /* "_meridian_key" = ?: one row by its encoded key */

static const char *class_decl(sqlv__class c) {
    switch (c) {
    case SQLV__CLASS_INT4: return "INT";
    case SQLV__CLASS_INT8: return "BIGINT";
    case SQLV__CLASS_INT2: return "SMALLINT";
    case SQLV__CLASS_BOOL: return "BOOLEAN";
    case SQLV__CLASS_REAL: return "DOUBLE";
    case SQLV__CLASS_NUMERIC: return "NUMERIC";
    case SQLV__CLASS_TEXT: return "TEXT";
    case SQLV__CLASS_BLOB: return "BLOB";
    }
    return "TEXT";
}

static void vt_error(mvtab *v, const char *sqlstate, const char *msg) {
    sqlv__session_error(v->s, sqlstate, "%s", msg);
    sqlite3_free(v->base.zErrMsg);
    v->base.zErrMsg = sqlite3_mprintf("%s", msg);
}

static void vt_txn_error(mvtab *v, int rc, txn_error *err) {
    txn_error_set(err, rc);
    vt_error(v, err->sqlstate[0] ? err->sqlstate : "XX000",
             err->message[0] ? err->message : "transaction error");
}

static int m_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                     char **pzErr) {
    sqlv_session *s = aux;
    mvtab *v = NULL;
    sqlv__table *t = NULL;
    char *decl = NULL;
    int rc = SQLITE_ERROR;
    if (argc < 4) {
        *pzErr = sqlite3_mprintf("meridian: missing table id");
        return SQLITE_ERROR;
    }
    uint32_t id = (uint32_t)strtoul(argv[3], NULL, 10);
    int frc = sqlv__session_table(s, id, &t);
    if (frc != 0) {
        /* declared from an older catalog (SQLite reconnecting it): gone */
        if (frc > 0) sqlv__session_error(s, "42P01", "relation \"%s\" does not exist", argv[2]);
        *pzErr = sqlite3_mprintf("meridian: table %u not in the catalog", id);
        return frc < 0 ? SQLITE_NOMEM : SQLITE_ERROR;
    }
    decl = sqlite3_mprintf("CREATE TABLE x(\"%w\" BLOB HIDDEN", SQLV__KEY_COLUMN);
    for (int i = 0; decl && i < t->ncols; i++) {
        char *d =
            sqlite3_mprintf("%s, \"%w\" %s", decl, t->cols[i].name, class_decl(t->cols[i].cls));
        sqlite3_free(decl);
        decl = d;
    }
    if (decl) {
        char *d = sqlite3_mprintf("%s, PRIMARY KEY(\"%w\")) WITHOUT ROWID", decl, SQLV__KEY_COLUMN);
        sqlite3_free(decl);
        decl = d;
    }
    if (decl == NULL) {
        rc = SQLITE_NOMEM;
        goto cleanup;
    }
    rc = sqlite3_declare_vtab(db, decl);
    if (rc != SQLITE_OK) {
        *pzErr = sqlite3_mprintf("meridian: %s", sqlite3_errmsg(db));
        goto cleanup;
    }
    sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
    v = sqlite3_malloc(sizeof(*v));
    if (v == NULL) {
        rc = SQLITE_NOMEM;
        goto cleanup;
    }
    memset(v, 0, sizeof(*v));
    v->s = s;
    v->t = t;
    t = NULL;
    *out = &v->base;
    rc = SQLITE_OK;
cleanup:
    sqlite3_free(decl);
    sqlv__table_free(t);
    return rc;
}

static int m_disconnect(sqlite3_vtab *vt) {
    mvtab *v = (mvtab *)vt;
    sqlite3_finalize(v->check);
    sqlv__checks_free(v->checks, v->nchecks);
    sqlv__table_free(v->t);
    sqlite3_free(v);
    return SQLITE_OK;
}

static bool binary_collation(sqlite3_index_info *info, int i) {
    const char *coll = sqlite3_vtab_collation(info, i);
    return coll == NULL || sqlite3_stricmp(coll, "BINARY") == 0;
}

/* A plan over a PUBLIC secondary index: equalities on its leading columns
** (and a range on the next one), each row then fetched by its key. It
** replaces the key plan already in info when cheaper (a full scan costs
** 1e6, a key range 100 + rows, a point read 10). */
static void best_index_plan(const sqlv__table *t, sqlite3_index_info *info) {
    int best = -1, best_neq = 0, best_lo = -1, best_hi = -1;
    int best_eq[SQLV__INDEX_COLUMNS_MAX];
    double best_cost = info->estimatedCost, best_rows = 0;
    bool best_unique = false;
    for (int x = 0; x < t->nindexes && x < IDX_SLOT_MASK; x++) {
        const sqlv__index *ix = &t->indexes[x];
        int eqs[SQLV__INDEX_COLUMNS_MAX], n = 0, lo = -1, hi = -1;
        if (ix->state != SQLV__INDEX_PUBLIC) continue;
        for (int k = 0; k < ix->ncols; k++) {
            int vcol = ix->cols[k] + 1, eq = -1;
            for (int i = 0; i < info->nConstraint && eq < 0; i++) {
                const struct sqlite3_index_constraint *c = &info->aConstraint[i];
                if (c->usable && c->iColumn == vcol && c->op == SQLITE_INDEX_CONSTRAINT_EQ &&
                    binary_collation(info, i))
                    eq = i;
            }
            if (eq >= 0) {
                eqs[n++] = eq;
                continue;
            }
            for (int i = 0; i < info->nConstraint; i++) {
                const struct sqlite3_index_constraint *c = &info->aConstraint[i];
                if (!c->usable || c->iColumn != vcol || !binary_collation(info, i)) continue;
                if (lo < 0 &&
                    (c->op == SQLITE_INDEX_CONSTRAINT_GT || c->op == SQLITE_INDEX_CONSTRAINT_GE))
                    lo = i;
                if (hi < 0 &&
                    (c->op == SQLITE_INDEX_CONSTRAINT_LT || c->op == SQLITE_INDEX_CONSTRAINT_LE))
                    hi = i;
            }
            break;
        }
        if (n == 0 && lo < 0 && hi < 0) continue;
        bool unique = ix->unique && n == ix->ncols;
        /* a fetch per row: dearer per row than the key plan's ranges (100 +
        ** rows), cheaper than a range of the key with one bound */
        double rows = unique ? 1 : 1000.0 / (1 + n * 4 + (lo >= 0) + (hi >= 0));
        double cost = unique ? 20.0 : 150.0 + 1.5 * rows;
        if (cost >= best_cost) continue;
        best = x;
        best_cost = cost;
        best_rows = rows;
        best_unique = unique;
        best_neq = n;
        best_lo = lo;
        best_hi = hi;
        memcpy(best_eq, eqs, sizeof(int) * (size_t)n);
    }
    if (best < 0) return;
    for (int i = 0; i < info->nConstraint; i++)
        info->aConstraintUsage[i].argvIndex = 0; /* never omitted: SQLite re-checks */
    info->orderByConsumed = 0;
    int argv_next = 1, idx = best_neq | ((best + 1) << IDX_SLOT_SHIFT);
    for (int k = 0; k < best_neq; k++)
        info->aConstraintUsage[best_eq[k]].argvIndex = argv_next++;
    if (best_lo >= 0) {
        info->aConstraintUsage[best_lo].argvIndex = argv_next++;
        idx |= IDX_HAS_LO;
        if (info->aConstraint[best_lo].op == SQLITE_INDEX_CONSTRAINT_GE) idx |= IDX_LO_INCL;
    }
    if (best_hi >= 0) {
        info->aConstraintUsage[best_hi].argvIndex = argv_next++;
        idx |= IDX_HAS_HI;
        if (info->aConstraint[best_hi].op == SQLITE_INDEX_CONSTRAINT_LE) idx |= IDX_HI_INCL;
    }
    info->idxNum = idx;
    info->estimatedCost = best_cost;
    info->estimatedRows = (sqlite3_int64)best_rows;
    info->idxFlags = best_unique ? SQLITE_INDEX_SCAN_UNIQUE : 0;
}

int sqlv__vtab_plan_kind(const sqlv__table *t, int idx_num, int *slot) {
    int neq = idx_num & IDX_NEQ_MASK;
    bool bounded = (idx_num & (IDX_HAS_LO | IDX_HAS_HI)) != 0;
    *slot = (idx_num >> IDX_SLOT_SHIFT) & IDX_SLOT_MASK;
    if (idx_num & IDX_KEY_EQ) return SQLV__ACCESS_POINT;
    if (*slot > 0) {
        if (*slot > t->nindexes) return SQLV__ACCESS_INDEX;
        const sqlv__index *ix = &t->indexes[*slot - 1];
        return ix->unique && neq == ix->ncols && !bounded ? SQLV__ACCESS_INDEX_POINT
                                                          : SQLV__ACCESS_INDEX;
    }
    if (t->npk > 0 && neq == t->npk) return SQLV__ACCESS_POINT;
    return neq > 0 || bounded ? SQLV__ACCESS_SCAN : SQLV__ACCESS_FULL;
}

static int m_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
    mvtab *v = (mvtab *)vt;
    const sqlv__table *t = v->t;
    int idx = 0, argv_next = 1, neq = 0;
    int lo = -1, hi = -1;
    /* The hidden key column bound: the row at that key (RETURNING reads the
    ** rows a statement wrote back by their keys, upsert.c). */
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (!c->usable || c->iColumn != 0 || c->op != SQLITE_INDEX_CONSTRAINT_EQ ||
            !binary_collation(info, i))
            continue;
        info->aConstraintUsage[i].argvIndex = 1;
        info->idxNum = IDX_KEY_EQ;
        info->estimatedCost = 1.0;
        info->estimatedRows = 1;
        info->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
        return SQLITE_OK;
    }
    for (int k = 0; k < t->npk; k++) {
        int vcol = t->pk[k] + 1; /* vtab column 0 is the hidden key */
        int eq = -1;
        for (int i = 0; i < info->nConstraint; i++) {
            const struct sqlite3_index_constraint *c = &info->aConstraint[i];
            if (!c->usable || c->iColumn != vcol || !binary_collation(info, i)) continue;
            if (c->op == SQLITE_INDEX_CONSTRAINT_EQ) {
                eq = i;
                break;
            }
        }
        if (eq >= 0) {
            info->aConstraintUsage[eq].argvIndex = argv_next++;
            neq++;
            continue;
        }
        for (int i = 0; i < info->nConstraint; i++) {
            const struct sqlite3_index_constraint *c = &info->aConstraint[i];
            if (!c->usable || c->iColumn != vcol || !binary_collation(info, i)) continue;
            if (lo < 0 &&
                (c->op == SQLITE_INDEX_CONSTRAINT_GT || c->op == SQLITE_INDEX_CONSTRAINT_GE))
                lo = i;
            if (hi < 0 &&
                (c->op == SQLITE_INDEX_CONSTRAINT_LT || c->op == SQLITE_INDEX_CONSTRAINT_LE))
                hi = i;
        }
        break;
    }
    idx = neq;
    if (lo >= 0) {
        info->aConstraintUsage[lo].argvIndex = argv_next++;
        idx |= IDX_HAS_LO;
        if (info->aConstraint[lo].op == SQLITE_INDEX_CONSTRAINT_GE) idx |= IDX_LO_INCL;
    }
    if (hi >= 0) {
        info->aConstraintUsage[hi].argvIndex = argv_next++;
        idx |= IDX_HAS_HI;
        if (info->aConstraint[hi].op == SQLITE_INDEX_CONSTRAINT_LE) idx |= IDX_HI_INCL;
    }
    /* Constraints are never omitted: SQLite re-checks every row, so a range
    ** that had to widen (see xFilter) is still correct. */

    /* ORDER BY on the key columns, all in one direction: scanning the key
    ** range (forward or reverse) already gives that order. The ORDER BY may
    ** name the key columns from the first one, or from the first one after
    ** the equality-bound prefix. */
    if (info->nOrderBy > 0 && t->npk > 0) {
        bool desc = info->aOrderBy[0].desc;
        for (int off = 0; off <= neq; off += (neq ? neq : 1)) {
            bool ok = info->nOrderBy + off <= t->npk;
            for (int i = 0; ok && i < info->nOrderBy; i++)
                ok = info->aOrderBy[i].desc == desc &&
                     info->aOrderBy[i].iColumn == t->pk[off + i] + 1;
            if (ok) {
                info->orderByConsumed = 1;
                if (desc) idx |= IDX_REVERSE;
                break;
            }
            if (neq == 0) break;
        }
    }
    info->idxNum = idx;
    if (t->npk > 0 && neq == t->npk) {
        info->estimatedCost = 10.0;
        info->estimatedRows = 1;
        info->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
    } else if (neq > 0 || lo >= 0 || hi >= 0) {
        double rows = 1000.0 / (1 + neq * 4 + (lo >= 0) + (hi >= 0));
        info->estimatedCost = 100.0 + rows;
        info->estimatedRows = (sqlite3_int64)rows;
    } else {
        info->estimatedCost = 1e6;
        info->estimatedRows = 100000;
    }
    best_index_plan(t, info);
    return SQLITE_OK;
}

static int m_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
    mvtab *v = (mvtab *)vt;
    mcursor *c = sqlite3_malloc(sizeof(*c));
    if (c == NULL) return SQLITE_NOMEM;
    memset(c, 0, sizeof(*c));
    c->cells = base_calloc((size_t)v->t->ncols, sizeof(*c->cells));
    if (c->cells == NULL) {
        sqlite3_free(c);
        return SQLITE_NOMEM;
    }
    c->eof = true;
    *out = &c->base;
    return SQLITE_OK;
}

static int m_close(sqlite3_vtab_cursor *cur) {
    mcursor *c = (mcursor *)cur;
    if (c->it) txn_iter_close(c->it);
    base_buf_free(&c->key);
    base_buf_free(&c->value);
    base_free(c->cells);
    sqlite3_free(c);
    return SQLITE_OK;
}

/* The row at prefix(t, 1) + suffix (an index entry's value) into the
** cursor's key, value and cells, read in the cursor's locking mode.
** SQLITE_OK (c->eof false), or an error recorded. */
static int fetch_indexed_row(mcursor *c, mvtab *v, txn *kv, const uint8_t *suffix, size_t len) {
    txn_error err = {{0}, {0}};
    const sqlv__table *t = v->t;
    base_buf_reset(&c->key);
    if (len == 0 || sqlv__table_prefix(&c->key, t->id) != 0 ||
        base_buf_append(&c->key, suffix, len) != 0) {
        if (len != 0) return SQLITE_NOMEM;
        vt_error(v, "XX001", "malformed index entry in the key space");
        return SQLITE_ERROR;
    }
    if (v->s->explain != NULL) sqlv__explain_note_fetch(v->s);
    txn_set_locking(kv, c->locking);
    int grc = txn_get(kv, c->key.data, c->key.len, &c->value, &err);
    txn_set_locking(kv, false);
    if (grc == TXN_NOT_FOUND) {
        char msg[200];
        snprintf(msg, sizeof(msg), "index \"%.100s\" has an entry without a row", c->ix->name);
        vt_error(v, "XX001", msg);
        return SQLITE_ERROR;
    }
    if (grc != TXN_OK) {
        vt_txn_error(v, grc, &err);
        return SQLITE_ERROR;
    }
    if (sqlv__row_decode_table(t, c->value.data, c->value.len, c->cells) != 0) {
        vt_error(v, "XX001", "malformed row value in the key space");
        return SQLITE_ERROR;
    }
    c->eof = false;
    return SQLITE_OK;
}

static int m_next(sqlite3_vtab_cursor *cur) {
    mcursor *c = (mcursor *)cur;
    mvtab *v = (mvtab *)cur->pVtab;
    const uint8_t *k, *val;
    size_t kl, vl;
    txn_error err = {{0}, {0}};
    if (c->it == NULL) {
        c->eof = true; /* also the step after a point lookup's row */
        return SQLITE_OK;
    }
    int n = txn_iter_next(c->it, &k, &kl, &val, &vl, &err);
    if (n > 0 && c->ix != NULL) { /* an entry: its row */
        txn *kv = sqlv__session_kv(v->s);
        base_buf suffix = {0}; /* owner: this block; val dies at the next read */
        if (kv == NULL || base_buf_append(&suffix, val, vl) != 0) {
            c->eof = true;
            return kv == NULL ? SQLITE_ERROR : SQLITE_NOMEM;
        }
        int frc = fetch_indexed_row(c, v, kv, suffix.data, suffix.len);
        base_buf_free(&suffix);
        if (frc != SQLITE_OK) c->eof = true;
        return frc;
    }
    if (n < 0) {
        vt_txn_error(v, n, &err);
        c->eof = true;
        return SQLITE_ERROR;
    }
    if (n == 0) {
        c->eof = true;
        return SQLITE_OK;
    }
    base_buf_reset(&c->key);
    base_buf_reset(&c->value);
    if (base_buf_append(&c->key, k, kl) != 0 || base_buf_append(&c->value, val, vl) != 0)
        return SQLITE_NOMEM;
    if (sqlv__row_decode_table(v->t, c->value.data, c->value.len, c->cells) != 0) {
        vt_error(v, "XX001", "malformed row value in the key space");
        c->eof = true;
        return SQLITE_ERROR;
    }
    c->eof = false;
    return SQLITE_OK;
}

/* Convert a constraint value the way SQLite's comparison affinity for a
** column of class cls would. 0: usable (cell set, may borrow from v or
** *dup); 1: NULL (no row can match); 2: not usable for a key range. */
static int key_value(sqlite3_value *v, sqlv__class cls, sqlv__cell *cell, sqlite3_value **dup) {
    int type = sqlite3_value_type(v);
    memset(cell, 0, sizeof(*cell));
    if (type == SQLITE_NULL) return 1;
    switch (cls) {
    case SQLV__CLASS_TEXT:
        if (type != SQLITE_TEXT) return 2;
        cell->type = SQLITE_TEXT;
        cell->p = sqlite3_value_text(v);
        cell->n = (size_t)sqlite3_value_bytes(v);
        return cell->p ? 0 : 2;
    case SQLV__CLASS_BLOB:
        if (type != SQLITE_BLOB) return 2;
        cell->type = SQLITE_BLOB;
        cell->p = sqlite3_value_blob(v);
        cell->n = (size_t)sqlite3_value_bytes(v);
        if (cell->p == NULL) cell->p = (const uint8_t *)"";
        return 0;
    default:
        if (type == SQLITE_TEXT) {
            *dup = sqlite3_value_dup(v);
            if (*dup == NULL) return 2;
            type = sqlite3_value_numeric_type(*dup);
            v = *dup;
        }
        if (type == SQLITE_INTEGER) {
            cell->type = SQLITE_INTEGER;
            cell->i = sqlite3_value_int64(v);
            return 0;
        }
        if (type == SQLITE_FLOAT) {
            cell->type = SQLITE_FLOAT;
            cell->r = sqlite3_value_double(v);
            return 0;
        }
        return 2;
    }
}

static int buf_cmp(const base_buf *a, const base_buf *b) {
    size_t n = BASE_MIN(a->len, b->len);
    int c = n ? memcmp(a->data, b->data, n) : 0;
    if (c != 0) return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* UPDATE or DELETE (also after a WITH)? */
static bool writes_rows(const char *sql) {
    const char *p = sql, *end = sql + strlen(sql);
    sqlv__token t = sqlv__lex_next(&p, end);
    if (sqlv__tok_is(&t, "UPDATE") || sqlv__tok_is(&t, "DELETE")) return true;
    if (!sqlv__tok_is(&t, "WITH")) return false;
    int depth = 0;
    for (int guard = 0; guard < 1000000; guard++) { /* the first statement word at depth 0 */
        t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) return false;
        if (t.kind == SQLV__TOK_PUNCT && t.start[0] == '(') depth++;
        if (t.kind == SQLV__TOK_PUNCT && t.start[0] == ')') depth--;
        if (depth == 0 && (sqlv__tok_is(&t, "SELECT") || sqlv__tok_is(&t, "INSERT") ||
                           sqlv__tok_is(&t, "VALUES")))
            return false;
        if (depth == 0 && (sqlv__tok_is(&t, "UPDATE") || sqlv__tok_is(&t, "DELETE")))
            return true;
    }
    return false;
}

/* Do the reads of the statement running now lock their rows: an UPDATE, a
** DELETE, or a query whose locking clause the dialect marked? A virtual
** table is not told which statement reads it, so: any statement of the
** connection that is running and is one of these. */
static bool statement_locks(sqlite3 *db) {
    for (sqlite3_stmt *st = sqlite3_next_stmt(db, NULL); st != NULL;
         st = sqlite3_next_stmt(db, st)) {
        if (!sqlite3_stmt_busy(st)) continue;
        const char *sql = sqlite3_sql(st);
        if (sql == NULL) continue;
        if (strstr(sql, SQLV__LOCKING_MARK) != NULL) return true;
        if (!sqlite3_stmt_readonly(st) && writes_rows(sql)) return true;
    }
    return false;
}

/* The key range of a plan over the key columns cols[0..ncols) (the primary
** key, or an index's columns) below the prefix in *base: the first neq
** columns bound by equality (none when skip_eq: a point plan's argv[0] is
** the whole key), then the optional lo/hi bounds of idx on cols[neq]; argv
** in that order. *base becomes the equality prefix and [*start, *end) the
** range. A value that does not convert to its column's class widens the
** range (never narrows it: SQLite rechecks every row); one that can match
** nothing sets *empty. 0, or -1 out of memory. */
static int key_range(const sqlv__table *t, const int *cols, int ncols, int neq, bool skip_eq,
                     int idx, int argc, sqlite3_value **argv, base_buf *base, base_buf *start,
                     base_buf *end, bool *empty, bool *widened) {
    base_buf tmp = {0}; /* owner: this function */
    int a = 0, rc = -1;
    for (int k = 0; !skip_eq && k < neq && k < ncols && a < argc; k++, a++) {
        sqlv__cell cell;
        enc_value ev;
        sqlite3_value *dup = NULL;
        int kr = key_value(argv[a], t->cols[cols[k]].cls, &cell, &dup);
        if (kr == 1) *empty = true;
        if (kr == 2) *widened = true;
        if (kr == 0 && !*widened) {
            sqlv__cell_to_enc(&cell, &ev);
            if (enc_key_append(base, &ev) != ENC_OK) {
                sqlite3_value_free(dup);
                goto out;
            }
        }
        sqlite3_value_free(dup);
    }
    if (base_buf_append(start, base->data, base->len) != 0) goto out;
    if (enc_prefix_end(base->data, base->len, end) != ENC_OK) goto out;
    for (int side = 0; side < 2; side++) {
        bool has = side == 0 ? (idx & IDX_HAS_LO) : (idx & IDX_HAS_HI);
        bool incl = side == 0 ? (idx & IDX_LO_INCL) : (idx & IDX_HI_INCL);
        if (!has || a >= argc) continue;
        sqlite3_value *arg = argv[a++];
        if (*widened || neq >= ncols) continue;
        sqlv__cell cell;
        enc_value ev;
        sqlite3_value *dup = NULL;
        int kr = key_value(arg, t->cols[cols[neq]].cls, &cell, &dup);
        if (kr == 1) *empty = true;
        if (kr == 0) {
            base_buf_reset(&tmp);
            sqlv__cell_to_enc(&cell, &ev);
            if (base_buf_append(&tmp, base->data, base->len) != 0 ||
                enc_key_append(&tmp, &ev) != ENC_OK) {
                sqlite3_value_free(dup);
                goto out;
            }
            base_buf *dst = side == 0 ? start : end;
            base_buf_reset(dst);
            /* lo inclusive: >= tmp; lo exclusive: past every key starting
            ** with tmp; hi inclusive: past every key starting with tmp; hi
            ** exclusive: < tmp. */
            if ((side == 0) == incl) {
                if (base_buf_append(dst, tmp.data, tmp.len) != 0) {
                    sqlite3_value_free(dup);
                    goto out;
                }
            } else if (enc_prefix_end(tmp.data, tmp.len, dst) != ENC_OK) {
                sqlite3_value_free(dup);
                goto out;
            }
        }
        sqlite3_value_free(dup);
    }
    rc = 0;
out:
    base_buf_free(&tmp);
    return rc;
}

/* xFilter of an index plan: the entries of ix in the range of its bound
** columns (built as the key plan builds its range: widened, never
** narrowed, when a value does not convert), each row fetched by its key. */
static int filter_index(mcursor *c, mvtab *v, txn *kv, const sqlv__index *ix, int idx, int argc,
                        sqlite3_value **argv) {
    const sqlv__table *t = v->t;
    base_buf base = {0}, start = {0}, end = {0}, entry = {0};
    txn_error err = {{0}, {0}};
    int rc = SQLITE_NOMEM, neq = idx & IDX_NEQ_MASK;
    bool empty = false, widened = false;
    if (enc_key_prefix(&base, t->id, ix->id) != ENC_OK) goto cleanup;
    if (key_range(t, ix->cols, ix->ncols, neq, false, idx, argc, argv, &base, &start, &end,
                  &empty, &widened) != 0)
        goto cleanup;
    rc = SQLITE_OK;
    if (empty || buf_cmp(&start, &end) >= 0) goto cleanup;
    bool exact = ix->unique && neq == ix->ncols && !widened && (idx & (IDX_HAS_LO | IDX_HAS_HI)) == 0;
    if (v->s->explain != NULL &&
        sqlv__explain_note_read(v->s, t, (int)(ix - t->indexes) + 1,
                                exact ? SQLV__ACCESS_INDEX_POINT : SQLV__ACCESS_INDEX,
                                exact ? &base : &start, exact ? NULL : &end))
        goto cleanup; /* EXPLAIN: the span, not the rows */
    c->ix = ix;
    c->locking = statement_locks(v->s->db);
    if (exact) {
        /* every column bound, none NULL: the one exact entry */
        int grc = txn_get(kv, base.data, base.len, &entry, &err);
        if (grc == TXN_NOT_FOUND) goto cleanup;
        if (grc != TXN_OK) {
            vt_txn_error(v, grc, &err);
            rc = SQLITE_ERROR;
            goto cleanup;
        }
        rc = fetch_indexed_row(c, v, kv, entry.data, entry.len);
        goto cleanup;
    }
    int trc = txn_scan(kv, start.data, start.len, end.data, end.len, false, &c->it, &err);
    if (trc != TXN_OK) {
        c->it = NULL;
        vt_txn_error(v, trc, &err);
        rc = SQLITE_ERROR;
        goto cleanup;
    }
    rc = m_next(&c->base);
cleanup:
    base_buf_free(&base);
    base_buf_free(&start);
    base_buf_free(&end);
    base_buf_free(&entry);
    return rc;
}

static int m_filter(sqlite3_vtab_cursor *cur, int idx, const char *idx_str, int argc,
                    sqlite3_value **argv) {
    mcursor *c = (mcursor *)cur;
    mvtab *v = (mvtab *)cur->pVtab;
    const sqlv__table *t = v->t;
    base_buf base = {0}, start = {0}, end = {0};
    txn_error err = {{0}, {0}};
    int rc = SQLITE_NOMEM, neq = idx & IDX_NEQ_MASK;
    int slot = (idx >> IDX_SLOT_SHIFT) & IDX_SLOT_MASK;
    bool empty = false, widened = false, point = false;
    txn *kv;
    if (c->it) {
        txn_iter_close(c->it);
        c->it = NULL;
    }
    c->ix = NULL;
    c->eof = true;
    kv = sqlv__session_kv(v->s);
    if (kv == NULL) {
        vt_error(v, v->s->err_sqlstate[0] ? v->s->err_sqlstate : "XX000",
                 v->s->err_message[0] ? v->s->err_message : "no transaction");
        return SQLITE_ERROR;
    }
    if (slot > 0) {
        if (slot > t->nindexes) {
            vt_error(v, "XX000", "plan names an index the table does not have");
            return SQLITE_ERROR;
        }
        return filter_index(c, v, kv, &t->indexes[slot - 1], idx, argc, argv);
    }
    if (sqlv__table_prefix(&base, t->id) != 0) goto cleanup;
    if (idx & IDX_KEY_EQ) {
        /* a key of this table's rows, else no row */
        point = true;
        if (argc < 1 || sqlite3_value_type(argv[0]) != SQLITE_BLOB ||
            (size_t)sqlite3_value_bytes(argv[0]) <= base.len ||
            memcmp(sqlite3_value_blob(argv[0]), base.data, base.len) != 0) {
            empty = true;
        } else {
            base_buf_reset(&base);
            if (base_buf_append(&base, sqlite3_value_blob(argv[0]),
                                (size_t)sqlite3_value_bytes(argv[0])) != 0)
                goto cleanup;
        }
    }
    if (key_range(t, t->pk, t->npk, neq, point, idx, argc, argv, &base, &start, &end, &empty,
                  &widened) != 0)
        goto cleanup;
    (void)idx_str;
    rc = SQLITE_OK;
    if (empty || buf_cmp(&start, &end) >= 0) goto cleanup;
    bool locking = statement_locks(v->s->db);
    bool one = point || (t->npk > 0 && neq == t->npk && !widened);
    if (v->s->explain != NULL &&
        sqlv__explain_note_read(v->s, t, 0,
                                one ? SQLV__ACCESS_POINT
                                : neq > 0 || (idx & (IDX_HAS_LO | IDX_HAS_HI)) != 0
                                    ? SQLV__ACCESS_SCAN
                                    : SQLV__ACCESS_FULL,
                                one ? &base : &start, one ? NULL : &end))
        goto cleanup; /* EXPLAIN: the span, not the rows */
    if (one) {
        /* Every key column bound: a point read instead of a scan. */
        base_buf_reset(&c->value);
        txn_set_locking(kv, locking);
        int grc = txn_get(kv, base.data, base.len, &c->value, &err);
        txn_set_locking(kv, false);
        if (grc == TXN_NOT_FOUND) goto cleanup;
        if (grc != TXN_OK) {
            vt_txn_error(v, grc, &err);
            rc = SQLITE_ERROR;
            goto cleanup;
        }
        base_buf_reset(&c->key);
        if (base_buf_append(&c->key, base.data, base.len) != 0) {
            rc = SQLITE_NOMEM;
            goto cleanup;
        }
        if (sqlv__row_decode_table(t, c->value.data, c->value.len, c->cells) != 0) {
            vt_error(v, "XX001", "malformed row value in the key space");
            rc = SQLITE_ERROR;
            goto cleanup;
        }
        c->eof = false;
        goto cleanup;
    }
    txn_set_locking(kv, locking); /* the iterator keeps it */
    int trc = txn_scan(kv, start.data, start.len, end.data, end.len, (idx & IDX_REVERSE) != 0,
                       &c->it, &err);
    txn_set_locking(kv, false);
    if (trc != TXN_OK) {
        c->it = NULL;
        vt_txn_error(v, trc, &err);
        rc = SQLITE_ERROR;
        goto cleanup;
    }
    rc = m_next(cur);
cleanup:
    base_buf_free(&base);
    base_buf_free(&start);
    base_buf_free(&end);
    return rc;
}

static int m_eof(sqlite3_vtab_cursor *cur) { return ((mcursor *)cur)->eof; }

static int m_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
    mcursor *c = (mcursor *)cur;
    mvtab *v = (mvtab *)cur->pVtab;
    if (col == 0) {
        sqlite3_result_blob(ctx, c->key.data, (int)c->key.len, SQLITE_TRANSIENT);
        return SQLITE_OK;
    }
    if (col < 1 || col > v->t->ncols) return SQLITE_ERROR;
    const sqlv__cell *cell = &c->cells[col - 1];
    switch (cell->type) {
    case SQLITE_INTEGER: sqlite3_result_int64(ctx, cell->i); break;
    case SQLITE_FLOAT: sqlite3_result_double(ctx, cell->r); break;
    case SQLITE_TEXT:
        sqlite3_result_text(ctx, (const char *)cell->p, (int)cell->n, SQLITE_TRANSIENT);
        break;
    case SQLITE_BLOB: sqlite3_result_blob(ctx, cell->p, (int)cell->n, SQLITE_TRANSIENT); break;
    default: sqlite3_result_null(ctx); break;
    }
    return SQLITE_OK;
}

static int m_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid) {
    (void)cur;
    *rowid = 0;
    return SQLITE_ERROR; /* WITHOUT ROWID: never called */
}

static int row_key(mvtab *v, const sqlv__cell *cells, base_buf *key) {
    const sqlv__table *t = v->t;
    if (sqlv__table_prefix(key, t->id) != 0) return -1;
    for (int k = 0; k < t->npk; k++) {
        enc_value ev;
        sqlv__cell_to_enc(&cells[t->pk[k]], &ev);
        if (enc_key_append(key, &ev) != ENC_OK) return -1;
    }
    if (t->npk == 0) {
        enc_value ev = {.type = ENC_INTEGER};
        ev.u.i = (int64_t)sqlv__engine_row_id(v->s->engine);
        if (enc_key_append(key, &ev) != ENC_OK) return -1;
    }
    return 0;
}

/* ---- index maintenance ---------------------------------------------------------- */

static bool same_bytes(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
    return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

/* The row at key, decoded into cells (pointing into buf). TXN_OK,
** TXN_NOT_FOUND, a txn error (err set), or 1: malformed (error recorded). */
static int read_row(mvtab *v, txn *kv, const uint8_t *key, size_t key_len, base_buf *buf,
                    sqlv__cell *cells, txn_error *err) {
    int rc = txn_get(kv, key, key_len, buf, err);
    if (rc != TXN_OK) return rc;
    if (sqlv__row_decode_table(v->t, buf->data, buf->len, cells) != 0) {
        vt_error(v, "XX001", "malformed row value in the key space");
        return 1;
    }
    return TXN_OK;
}

/* ADD PRIMARY KEY's shadow sx (rekey.c): the row (cells; row its encoded
** value, NULL to delete it) under the new table id, keyed by sx's columns,
** with its entries of every other index there (the new table has the same
** columns and index ids). TXN_OK or a txn error (err set). */
static int shadow_write(mvtab *v, txn *kv, const sqlv__index *sx, const sqlv__cell *cells,
                        const base_buf *row, txn_error *err) {
    const sqlv__table *t = v->t;
    sqlv__table nt = *t; /* a view for entry keys only: same columns, the new id */
    base_buf key = {0}, entry = {0};
    int rc = TXN_ERR_NOMEM;
    nt.id = sx->rekey_table;
    if (sqlv__table_prefix(&key, nt.id) != 0) goto done;
    for (int c = 0; c < sx->ncols; c++) {
        enc_value ev;
        sqlv__cell_to_enc(&cells[sx->cols[c]], &ev);
        if (enc_key_append(&key, &ev) != ENC_OK) goto done;
    }
    const uint8_t *suffix = key.data + ENC_PREFIX_BYTES;
    size_t suffix_len = key.len - ENC_PREFIX_BYTES;
    rc = row ? txn_put(kv, key.data, key.len, row->data, row->len, err)
             : txn_delete(kv, key.data, key.len, err);
    for (int x = 0; x < t->nindexes && rc == TXN_OK; x++) {
        const sqlv__index *ix = &t->indexes[x];
        bool exact;
        if (ix == sx) continue;
        if (sqlv__index_entry(&nt, ix, cells, suffix, suffix_len, &entry, &exact) != 0) {
            rc = TXN_ERR_NOMEM;
            break;
        }
        rc = row ? txn_put(kv, entry.data, entry.len, suffix, suffix_len, err)
                 : txn_delete(kv, entry.data, entry.len, err);
    }
done:
    base_buf_free(&key);
    base_buf_free(&entry);
    return rc;
}

/* Delete the entries of the row (cells, key) from every index. */
static int delete_entries(mvtab *v, txn *kv, const sqlv__cell *cells, const uint8_t *key,
                          size_t key_len, base_buf *scratch, txn_error *err) {
    const sqlv__table *t = v->t;
    for (int x = 0; x < t->nindexes; x++) {
        bool exact;
        if (sqlv__index_entry(t, &t->indexes[x], cells, key + ENC_PREFIX_BYTES,
                              key_len - ENC_PREFIX_BYTES, scratch, &exact) != 0)
            return TXN_ERR_NOMEM;
        int rc = txn_delete(kv, scratch->data, scratch->len, err);
        if (rc != TXN_OK) return rc;
    }
    const sqlv__index *sx = sqlv__table_rekey_index(t);
    return sx ? shadow_write(v, kv, sx, cells, NULL, err) : TXN_OK;
}

/* Delete the row at key and its entries (a DELETE, or OR REPLACE removing
** a row that conflicts in a unique index). SQLITE_OK or an error recorded. */
static int delete_row(mvtab *v, txn *kv, const uint8_t *key, size_t key_len) {
    const sqlv__table *t = v->t;
    txn_error err = {{0}, {0}};
    base_buf row = {0}, scratch = {0};
    sqlv__cell *cells = NULL;
    int trc = TXN_OK, rc = SQLITE_ERROR;
    if (key_len <= ENC_PREFIX_BYTES) {
        vt_error(v, "XX000", "malformed row key");
        return SQLITE_ERROR;
    }
    if (t->nindexes > 0) {
        cells = base_calloc((size_t)t->ncols, sizeof(*cells));
        if (cells == NULL) return SQLITE_NOMEM;
        trc = read_row(v, kv, key, key_len, &row, cells, &err);
        if (trc == 1) goto cleanup;
        if (trc == TXN_OK) trc = delete_entries(v, kv, cells, key, key_len, &scratch, &err);
        if (trc == TXN_NOT_FOUND) trc = TXN_OK; /* no row: no entries */
    }
    if (trc == TXN_OK) trc = txn_delete(kv, key, key_len, &err);
    if (trc != TXN_OK) {
        if (trc == TXN_ERR_NOMEM) {
            rc = SQLITE_NOMEM;
            goto cleanup;
        }
        vt_txn_error(v, trc, &err);
        goto cleanup;
    }
    rc = SQLITE_OK;
cleanup:
    base_free(cells);
    base_buf_free(&row);
    base_buf_free(&scratch);
    return rc;
}

/* The row as PostgreSQL's "Failing row contains (...)" shows it. */
static void row_text(const mvtab *v, const sqlv__cell *cells, char *out, size_t size) {
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < v->t->ncols && o + 1 < size; i++) {
        const sqlv__cell *c = &cells[i];
        const char *sep = i ? ", " : "";
        int w;
        switch (c->type) {
        case SQLITE_INTEGER:
            if (v->t->cols[i].cls == SQLV__CLASS_BOOL)
                w = snprintf(out + o, size - o, "%s%s", sep, c->i ? "t" : "f");
            else
                w = snprintf(out + o, size - o, "%s%lld", sep, (long long)c->i);
            break;
        case SQLITE_FLOAT: w = snprintf(out + o, size - o, "%s%.15g", sep, c->r); break;
        case SQLITE_TEXT:
            w = snprintf(out + o, size - o, "%s%.*s", sep, (int)BASE_MIN(c->n, 200),
                         (const char *)c->p);
            break;
        case SQLITE_BLOB: w = snprintf(out + o, size - o, "%s\\x...", sep); break;
        default: w = snprintf(out + o, size - o, "%snull", sep); break;
        }
        if (w < 0) break;
        o = BASE_MIN(size - 1, o + (size_t)w);
    }
}

char *sqlv__checks_select(const sqlv__table *t, const sqlv__check *c, int n) {
    char *q = sqlite3_mprintf("SELECT");
    for (int k = 0; q && k < n; k++) {
        char *x = sqlite3_mprintf("%s%s (%s) IS NOT FALSE", q, k ? "," : "", c[k].expr);
        sqlite3_free(q);
        q = x;
    }
    for (int i = 0; q && i < t->ncols; i++) {
        char *x = sqlite3_mprintf("%s%s CAST(?%d AS %s) AS \"%w\"", q, i ? "," : " FROM (SELECT",
                                  i + 1, class_decl(t->cols[i].cls), t->cols[i].name);
        sqlite3_free(q);
        q = x;
    }
    if (q) {
        char *x = sqlite3_mprintf("%s)", q);
        sqlite3_free(q);
        q = x;
    }
    return q;
}

int sqlv__checks_bind(sqlite3_stmt *st, const sqlv__cell *cells, int ncols) {
    for (int i = 0; i < ncols; i++) {
        const sqlv__cell *c = &cells[i];
        int brc;
        switch (c->type) {
        case SQLITE_INTEGER: brc = sqlite3_bind_int64(st, i + 1, c->i); break;
        case SQLITE_FLOAT: brc = sqlite3_bind_double(st, i + 1, c->r); break;
        case SQLITE_TEXT:
            brc = sqlite3_bind_text(st, i + 1, (const char *)c->p, (int)c->n, SQLITE_STATIC);
            break;
        case SQLITE_BLOB: brc = sqlite3_bind_blob(st, i + 1, c->p, (int)c->n, SQLITE_STATIC); break;
        default: brc = sqlite3_bind_null(st, i + 1); break;
        }
        if (brc != SQLITE_OK) return brc;
    }
    return SQLITE_OK;
}

/* The row against every CHECK of the table: one SELECT (above), prepared
** at the first write and kept. SQLITE_OK, or an error set (23514 for a
** violation); the statement is reset either way. */
static int check_row(mvtab *v, const sqlv__cell *cells, int mode) {
    const sqlv__table *t = v->t;
    char msg[512], row[300];
    int rc = SQLITE_NOMEM;
    if (!v->checks_read) {
        if (sqlv__checks_of(t, &v->checks, &v->nchecks) != 0) return SQLITE_NOMEM;
        v->checks_read = true;
    }
    if (v->nchecks == 0) return SQLITE_OK;
    if (v->check == NULL) {
        char *q = sqlv__checks_select(t, v->checks, v->nchecks);
        if (q == NULL) return SQLITE_NOMEM;
        int prc = sqlite3_prepare_v2(v->s->db, q, -1, &v->check, NULL);
        sqlite3_free(q);
        if (prc != SQLITE_OK) {
            snprintf(msg, sizeof(msg), "cannot evaluate the check constraints of \"%s\": %s",
                     t->name, sqlite3_errmsg(v->s->db));
            vt_error(v, "XX000", msg);
            return SQLITE_ERROR;
        }
    }
    if (sqlv__checks_bind(v->check, cells, t->ncols) != SQLITE_OK) goto done;
    int src = sqlite3_step(v->check);
    if (src != SQLITE_ROW) {
        snprintf(msg, sizeof(msg), "%s", sqlite3_errmsg(v->s->db));
        vt_error(v, "22000", msg);
        rc = SQLITE_ERROR;
        goto done;
    }
    rc = SQLITE_OK;
    for (int k = 0; k < v->nchecks; k++) {
        if (sqlite3_column_int(v->check, k) != 0) continue;
        row_text(v, cells, row, sizeof(row));
        snprintf(msg, sizeof(msg),
                 "new row for relation \"%s\" violates check constraint \"%s\"\nDETAIL:  "
                 "Failing row contains (%s).",
                 t->name, v->checks[k].name, row);
        vt_error(v, "23514", msg);
        /* not SQLITE_CONSTRAINT under OR IGNORE (ON CONFLICT DO NOTHING):
        ** that would skip the row, and PostgreSQL fails the statement */
        rc = mode == SQLITE_IGNORE ? SQLITE_ERROR : SQLITE_CONSTRAINT;
        break;
    }
done:
    sqlite3_reset(v->check);
    sqlite3_clear_bindings(v->check);
    return rc;
}

static int m_update(sqlite3_vtab *vt, int argc, sqlite3_value **argv, sqlite3_int64 *rowid) {
    mvtab *v = (mvtab *)vt;
    const sqlv__table *t = v->t;
    txn_error err = {{0}, {0}};
    base_buf scratch = {0}, key = {0}, row = {0}, existing = {0}, oldrow = {0}, found = {0};
    base_buf *nkeys = NULL, *okeys = NULL; /* each index's new and old entry */
    base_buf conflicts = {0};               /* OR REPLACE: u32 length | row suffix, ... */
    sqlv__cell *cells = NULL, *old_cells = NULL, *rep_cells = NULL;
    bool *nexact = NULL;
    int rc = SQLITE_NOMEM, trc;
    char state[6] = {0}, msg[512];
    (void)rowid;
    txn *kv = sqlv__session_kv(v->s);
    if (kv == NULL) {
        vt_error(v, v->s->err_sqlstate[0] ? v->s->err_sqlstate : "XX000",
                 v->s->err_message[0] ? v->s->err_message : "no transaction");
        return SQLITE_ERROR;
    }
    if (v->s->explain != NULL && sqlv__explain_note_write(v->s, t))
        return SQLITE_OK; /* EXPLAIN without ANALYZE writes nothing */
    if (argc == 1) { /* DELETE */
        if (sqlite3_value_type(argv[0]) != SQLITE_BLOB) return SQLITE_ERROR;
        return delete_row(v, kv, sqlite3_value_blob(argv[0]),
                          (size_t)sqlite3_value_bytes(argv[0]));
    }
    /* argv: old key, new key, then every vtab column: the hidden key column
    ** (argv[2], ignored: the key is computed from the columns) and the user
    ** columns from argv[3]. */
    if (argc != t->ncols + 3) {
        vt_error(v, "XX000", "unexpected argument count in xUpdate");
        return SQLITE_ERROR;
    }
    sqlite3_value **colv = argv + 3;
    bool is_insert = sqlite3_value_type(argv[0]) == SQLITE_NULL;
    int mode = sqlite3_vtab_on_conflict(v->s->db);
    /* sqlv__assign may put converted bytes in scratch: reserve enough up
    ** front that it never reallocates while cells point into it. */
    size_t need = 64;
    for (int i = 0; i < t->ncols; i++)
        need += 64 + (size_t)sqlite3_value_bytes(colv[i]);
    cells = base_calloc((size_t)t->ncols, sizeof(*cells));
    if (cells == NULL || base_buf_reserve(&scratch, need) != 0) goto cleanup;
    for (int i = 0; i < t->ncols; i++) {
        const sqlv__column *col = &t->cols[i];
        int arc = sqlv__assign(colv[i], col->cls, col->decl_type[0] ? col->decl_type : "text",
                               &scratch, &cells[i], state, msg, sizeof(msg));
        if (arc < 0) goto cleanup;
        if (arc > 0) {
            vt_error(v, state, msg);
            rc = SQLITE_ERROR;
            goto cleanup;
        }
        if (cells[i].type == SQLITE_NULL && col->not_null) {
            snprintf(msg, sizeof(msg),
                     "null value in column \"%s\" of relation \"%s\" violates not-null constraint",
                     col->name, t->name);
            vt_error(v, "23502", msg);
            rc = SQLITE_CONSTRAINT;
            goto cleanup;
        }
    }
    const sqlv__index *sx = sqlv__table_rekey_index(t);
    for (int c = 0; sx && c < sx->ncols; c++) {
        /* the primary key being added makes its columns NOT NULL already */
        const sqlv__column *col = &t->cols[sx->cols[c]];
        if (cells[sx->cols[c]].type != SQLITE_NULL) continue;
        snprintf(msg, sizeof(msg),
                 "null value in column \"%s\" of relation \"%s\" violates not-null constraint",
                 col->name, t->name);
        vt_error(v, "23502", msg);
        rc = SQLITE_CONSTRAINT;
        goto cleanup;
    }
    rc = check_row(v, cells, mode);
    if (rc != SQLITE_OK) goto cleanup;
    rc = SQLITE_NOMEM;
    if (!is_insert && t->npk == 0) {
        if (sqlite3_value_type(argv[0]) != SQLITE_BLOB) goto cleanup;
        if (base_buf_append(&key, sqlite3_value_blob(argv[0]),
                            (size_t)sqlite3_value_bytes(argv[0])) != 0)
            goto cleanup;
    } else if (row_key(v, cells, &key) != 0) {
        goto cleanup;
    }
    if (sqlv__row_encode(&row, cells, t->ncols) != 0) goto cleanup;
    bool moved = false, has_old = false, replacing = false;
    const uint8_t *old = NULL;
    size_t old_len = 0;
    if (!is_insert) {
        old = sqlite3_value_blob(argv[0]);
        old_len = (size_t)sqlite3_value_bytes(argv[0]);
        moved = old_len != key.len || (old_len && memcmp(old, key.data, old_len) != 0);
    }
    if (t->nindexes > 0) {
        nkeys = base_calloc((size_t)t->nindexes, sizeof(*nkeys));
        okeys = base_calloc((size_t)t->nindexes, sizeof(*okeys));
        nexact = base_calloc((size_t)t->nindexes, sizeof(*nexact));
        old_cells = base_calloc((size_t)t->ncols, sizeof(*old_cells));
        rep_cells = base_calloc((size_t)t->ncols, sizeof(*rep_cells));
        if (nkeys == NULL || okeys == NULL || nexact == NULL || old_cells == NULL ||
            rep_cells == NULL)
            goto cleanup;
        if (!is_insert && old_len > ENC_PREFIX_BYTES) {
            /* the row as stored: its entries are the ones to replace */
            trc = read_row(v, kv, old, old_len, &oldrow, old_cells, &err);
            if (trc == 1) {
                rc = SQLITE_ERROR;
                goto cleanup;
            }
            if (trc != TXN_OK && trc != TXN_NOT_FOUND) {
                vt_txn_error(v, trc, &err);
                rc = SQLITE_ERROR;
                goto cleanup;
            }
            has_old = trc == TXN_OK;
        }
    }
    /* The uniqueness checks come before any write: under OR IGNORE a
    ** SQLITE_CONSTRAINT skips the row, and a key-moving UPDATE must then
    ** leave the old row where it was. */
    if (t->npk > 0 && (is_insert || moved)) {
        trc = txn_get(kv, key.data, key.len, &existing, &err);
        if (trc == TXN_OK) {
            if (mode == SQLITE_IGNORE) {
                /* With constraint support, SQLITE_CONSTRAINT under OR
                ** IGNORE skips the row without counting it as a change. */
                rc = SQLITE_CONSTRAINT;
                goto cleanup;
            }
            if (mode != SQLITE_REPLACE) {
                snprintf(msg, sizeof(msg),
                         "duplicate key value violates unique constraint \"%s_pkey\"", t->name);
                vt_error(v, "23505", msg);
                rc = SQLITE_CONSTRAINT;
                goto cleanup;
            }
            /* REPLACE overwrites that row: its entries go */
            if (t->nindexes > 0) {
                if (sqlv__row_decode_table(t, existing.data, existing.len, rep_cells) != 0) {
                    vt_error(v, "XX001", "malformed row value in the key space");
                    rc = SQLITE_ERROR;
                    goto cleanup;
                }
                replacing = true;
            }
        } else if (trc != TXN_NOT_FOUND) {
            vt_txn_error(v, trc, &err);
            rc = SQLITE_ERROR;
            goto cleanup;
        }
    }
    const uint8_t *suffix = key.data + ENC_PREFIX_BYTES;
    size_t suffix_len = key.len - ENC_PREFIX_BYTES;
    for (int x = 0; x < t->nindexes; x++) {
        const sqlv__index *ix = &t->indexes[x];
        bool oexact;
        if (sqlv__index_entry(t, ix, cells, suffix, suffix_len, &nkeys[x], &nexact[x]) != 0)
            goto cleanup;
        if (has_old && sqlv__index_entry(t, ix, old_cells, old + ENC_PREFIX_BYTES,
                                         old_len - ENC_PREFIX_BYTES, &okeys[x], &oexact) != 0)
            goto cleanup;
        if (!nexact[x]) continue; /* not unique, or a NULL: no conflict possible */
        if (has_old && same_bytes(okeys[x].data, okeys[x].len, nkeys[x].data, nkeys[x].len))
            continue; /* unchanged: the entry is this row's */
        trc = txn_get(kv, nkeys[x].data, nkeys[x].len, &found, &err);
        if (trc == TXN_NOT_FOUND) continue;
        if (trc != TXN_OK) {
            vt_txn_error(v, trc, &err);
            rc = SQLITE_ERROR;
            goto cleanup;
        }
        /* this row's own entry (OR REPLACE of the row at the same key), or
        ** its entry before this UPDATE: no conflict */
        if (same_bytes(found.data, found.len, suffix, suffix_len)) continue;
        if (!is_insert &&
            same_bytes(found.data, found.len, old + ENC_PREFIX_BYTES, old_len - ENC_PREFIX_BYTES))
            continue;
        if (mode == SQLITE_IGNORE) {
            rc = SQLITE_CONSTRAINT;
            goto cleanup;
        }
        if (mode == SQLITE_REPLACE) { /* that row goes, below */
            uint8_t n4[4] = {(uint8_t)(found.len >> 24), (uint8_t)(found.len >> 16),
                             (uint8_t)(found.len >> 8), (uint8_t)found.len};
            if (base_buf_append(&conflicts, n4, 4) != 0 ||
                base_buf_append(&conflicts, found.data, found.len) != 0)
                goto cleanup;
            continue;
        }
        base_buf detail = {0};
        if (sqlv__index_key_text(t, ix, cells, &detail) != 0) {
            base_buf_free(&detail);
            goto cleanup;
        }
        snprintf(msg, sizeof(msg),
                 "duplicate key value violates unique constraint \"%s\"\nDETAIL:  Key %.*s "
                 "already exists.",
                 ix->name, (int)BASE_MIN(detail.len, 300), (const char *)detail.data);
        base_buf_free(&detail);
        vt_error(v, "23505", msg);
        rc = SQLITE_CONSTRAINT;
        goto cleanup;
    }
    /* The writes: rows OR REPLACE removes, the entries that change, the row. */
    for (size_t off = 0; off + 4 <= conflicts.len;) {
        const uint8_t *p = conflicts.data + off;
        size_t n = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        base_buf other = {0};
        int drc = SQLITE_NOMEM;
        if (sqlv__table_prefix(&other, t->id) == 0 && base_buf_append(&other, p + 4, n) == 0)
            drc = delete_row(v, kv, other.data, other.len);
        base_buf_free(&other);
        if (drc != SQLITE_OK) {
            rc = drc;
            goto cleanup;
        }
        off += 4 + n;
    }
    if (replacing) {
        trc = delete_entries(v, kv, rep_cells, key.data, key.len, &found, &err);
        if (trc != TXN_OK) goto txn_failed;
    }
    for (int x = 0; has_old && x < t->nindexes; x++) {
        if (same_bytes(okeys[x].data, okeys[x].len, nkeys[x].data, nkeys[x].len)) continue;
        trc = txn_delete(kv, okeys[x].data, okeys[x].len, &err);
        if (trc != TXN_OK) goto txn_failed;
    }
    if (sx && has_old) {
        trc = shadow_write(v, kv, sx, old_cells, NULL, &err);
        if (trc != TXN_OK) goto txn_failed;
    }
    if (moved) {
        trc = txn_delete(kv, old, old_len, &err);
        if (trc != TXN_OK) goto txn_failed;
    }
    trc = txn_put(kv, key.data, key.len, row.data, row.len, &err);
    if (trc != TXN_OK) goto txn_failed;
    for (int x = 0; x < t->nindexes; x++) {
        if (has_old && !moved && !replacing &&
            same_bytes(okeys[x].data, okeys[x].len, nkeys[x].data, nkeys[x].len))
            continue; /* the same entry, the same row */
        trc = txn_put(kv, nkeys[x].data, nkeys[x].len, suffix, suffix_len, &err);
        if (trc != TXN_OK) goto txn_failed;
    }
    if (sx) {
        trc = shadow_write(v, kv, sx, cells, &row, &err);
        if (trc != TXN_OK) goto txn_failed;
    }
    if (v->s->capture && v->s->capture->table_id == t->id &&
        sqlv__capture_add(v->s->capture, key.data, key.len) != 0)
        goto cleanup; /* SQLITE_NOMEM */
    rc = SQLITE_OK;
    goto cleanup;
txn_failed:
    if (trc == TXN_ERR_NOMEM) {
        rc = SQLITE_NOMEM;
        goto cleanup;
    }
    vt_txn_error(v, trc, &err);
    rc = SQLITE_ERROR;
cleanup:
    for (int x = 0; nkeys && x < t->nindexes; x++)
        base_buf_free(&nkeys[x]);
    for (int x = 0; okeys && x < t->nindexes; x++)
        base_buf_free(&okeys[x]);
    base_free(nkeys);
    base_free(okeys);
    base_free(nexact);
    base_free(cells);
    base_free(old_cells);
    base_free(rep_cells);
    base_buf_free(&scratch);
    base_buf_free(&key);
    base_buf_free(&row);
    base_buf_free(&existing);
    base_buf_free(&oldrow);
    base_buf_free(&found);
    base_buf_free(&conflicts);
    return rc;
}

static int m_noop(sqlite3_vtab *vt) {
    (void)vt;
    return SQLITE_OK;
}

static int m_noop_savepoint(sqlite3_vtab *vt, int n) {
    (void)vt;
    (void)n;
    return SQLITE_OK;
}

static int m_rename(sqlite3_vtab *vt, const char *name) {
    mvtab *v = (mvtab *)vt;
    (void)name;
    vt_error(v, "0A000", "ALTER TABLE RENAME is not supported yet");
    return SQLITE_ERROR;
}

static const sqlite3_module meridian_module = {
    .iVersion = 2,
    .xCreate = m_connect,
    .xConnect = m_connect,
    .xBestIndex = m_best_index,
    .xDisconnect = m_disconnect,
    .xDestroy = m_disconnect,
    .xOpen = m_open,
    .xClose = m_close,
    .xFilter = m_filter,
    .xNext = m_next,
    .xEof = m_eof,
    .xColumn = m_column,
    .xRowid = m_rowid,
    .xUpdate = m_update,
    .xBegin = m_noop,
    .xSync = m_noop,
    .xCommit = m_noop,
    .xRollback = m_noop,
    .xRename = m_rename,
    .xSavepoint = m_noop_savepoint,
    .xRelease = m_noop_savepoint,
    .xRollbackTo = m_noop_savepoint,
};

int sqlv__module_register(sqlv_session *s) {
    return sqlite3_create_module_v2(s->db, "meridian", &meridian_module, s, NULL) == SQLITE_OK
               ? 0
               : SQLV_ERR_INTERNAL;
}
