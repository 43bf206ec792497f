/*
** generate_series(start, stop [, step]) for integers, as an eponymous
** table-valued function "meridian_series" on each session's connection;
** the dialect rewriter (dialect.c) turns PostgreSQL's
** "FROM generate_series(a, b) AS x" into
** "FROM (SELECT value AS x FROM meridian_series(a, b)) AS x", so the alias
** names the column as in PostgreSQL.
**
** Invariants: a cursor yields start, start+step, ... while not past stop
** (none when step is 0: PostgreSQL's error, reported as 22023); values
** never overflow (the cursor stops before it would). Long series are
** bounded by the session's cancel/progress handler.
*/
#include <string.h>

#include "sql_int.h"

enum { COL_VALUE = 0, COL_START, COL_STOP, COL_STEP };

typedef struct series_vtab {
    sqlite3_vtab base;
    sqlv_session *session; /* borrowed: the connection's session */
} series_vtab;

typedef struct series_cursor {
    sqlite3_vtab_cursor base;
    sqlite3_int64 value, stop, step;
    sqlite3_int64 rowid;
    bool eof;
} series_cursor;

static int s_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                     sqlite3_vtab **out, char **err) {
    (void)argc;
    (void)argv;
    (void)err;
    int rc = sqlite3_declare_vtab(
        db, "CREATE TABLE x(value INTEGER, start HIDDEN, stop HIDDEN, step HIDDEN)");
    if (rc != SQLITE_OK) return rc;
    series_vtab *v = sqlite3_malloc(sizeof(*v));
    if (v == NULL) return SQLITE_NOMEM;
    memset(v, 0, sizeof(*v));
    v->session = aux;
    sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
    *out = &v->base;
    return SQLITE_OK;
}

static int s_disconnect(sqlite3_vtab *v) {
    sqlite3_free(v);
    return SQLITE_OK;
}

/* idxNum bit i: argument i+1 (start, stop, step) is bound, in that order. */
static int s_best_index(sqlite3_vtab *v, sqlite3_index_info *info) {
    int where[3] = {-1, -1, -1};
    (void)v;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (c->iColumn < COL_START || c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
        if (!c->usable) return SQLITE_CONSTRAINT; /* try another plan */
        where[c->iColumn - COL_START] = i;
    }
    if (where[0] < 0 || where[1] < 0) {
        v->zErrMsg = sqlite3_mprintf("generate_series needs start and stop");
        return SQLITE_ERROR;
    }
    int n = 0, idx = 0;
    for (int k = 0; k < 3; k++) {
        if (where[k] < 0) continue;
        info->aConstraintUsage[where[k]].argvIndex = ++n;
        info->aConstraintUsage[where[k]].omit = 1;
        idx |= 1 << k;
    }
    info->idxNum = idx;
    info->estimatedCost = 1000;
    info->estimatedRows = 1000;
    return SQLITE_OK;
}

static int s_open(sqlite3_vtab *v, sqlite3_vtab_cursor **out) {
    (void)v;
    series_cursor *c = sqlite3_malloc(sizeof(*c));
    if (c == NULL) return SQLITE_NOMEM;
    memset(c, 0, sizeof(*c));
    *out = &c->base;
    return SQLITE_OK;
}

static int s_close(sqlite3_vtab_cursor *cur) {
    sqlite3_free(cur);
    return SQLITE_OK;
}

static int s_filter(sqlite3_vtab_cursor *cur, int idx, const char *idx_str, int argc,
                    sqlite3_value **argv) {
    series_cursor *c = (series_cursor *)cur;
    (void)idx_str;
    c->eof = true;
    c->rowid = 1;
    if (argc < 2 || (idx & 3) != 3) return SQLITE_OK;
    for (int i = 0; i < argc; i++)
        if (sqlite3_value_type(argv[i]) == SQLITE_NULL) return SQLITE_OK; /* no rows */
    c->value = sqlite3_value_int64(argv[0]);
    c->stop = sqlite3_value_int64(argv[1]);
    c->step = argc > 2 ? sqlite3_value_int64(argv[2]) : 1;
    if (c->step == 0) {
        sqlv__session_error(((series_vtab *)cur->pVtab)->session, "22023",
                            "step size cannot equal zero");
        cur->pVtab->zErrMsg = sqlite3_mprintf("step size cannot equal zero");
        return SQLITE_ERROR;
    }
    c->eof = c->step > 0 ? c->value > c->stop : c->value < c->stop;
    return SQLITE_OK;
}

static int s_next(sqlite3_vtab_cursor *cur) {
    series_cursor *c = (series_cursor *)cur;
    sqlite3_int64 next;
    if (__builtin_add_overflow(c->value, c->step, &next)) {
        c->eof = true;
        return SQLITE_OK;
    }
    c->value = next;
    c->rowid++;
    c->eof = c->step > 0 ? c->value > c->stop : c->value < c->stop;
    return SQLITE_OK;
}

static int s_eof(sqlite3_vtab_cursor *cur) { return ((series_cursor *)cur)->eof; }

static int s_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
    series_cursor *c = (series_cursor *)cur;
    switch (col) {
    case COL_VALUE: sqlite3_result_int64(ctx, c->value); break;
    case COL_STOP: sqlite3_result_int64(ctx, c->stop); break;
    case COL_STEP: sqlite3_result_int64(ctx, c->step); break;
    default: sqlite3_result_null(ctx); break;
    }
    return SQLITE_OK;
}

static int s_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid) {
    *rowid = ((series_cursor *)cur)->rowid;
    return SQLITE_OK;
}

static const sqlite3_module series_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only */
    .xConnect = s_connect,
    .xBestIndex = s_best_index,
    .xDisconnect = s_disconnect,
    .xDestroy = s_disconnect,
    .xOpen = s_open,
    .xClose = s_close,
    .xFilter = s_filter,
    .xNext = s_next,
    .xEof = s_eof,
    .xColumn = s_column,
    .xRowid = s_rowid,
};

int sqlv__series_register(sqlv_session *s) {
    return sqlite3_create_module(s->db, "meridian_series", &series_module, s) == SQLITE_OK
               ? 0
               : -1;
}
