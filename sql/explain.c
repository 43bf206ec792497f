/*
** EXPLAIN [ANALYZE] stmt: which table accesses a statement makes (point
** lookup, scan or full scan of the primary key, or a secondary index), the
** key spans they read and the ranges holding those spans; with ANALYZE,
** the statement runs and the answer adds its rows, time, KV requests and
** commit wait. One text column "QUERY PLAN", as PostgreSQL answers.
**
** How: the plan of every table comes from SQLite's EXPLAIN QUERY PLAN
** (xBestIndex's idxNum, decoded by vtab.c); the spans from running the
** statement with s->explain set, so that the virtual tables report each
** read they make. Without ANALYZE the run is dry: a read reports its span
** and returns no row, a write does nothing, and the transaction (or the
** block's statement savepoint) is rolled back, so nothing is written and
** an inner table of a join reports no span (its plan still shows).
**
** Invariants:
**   - s->explain is set only for the duration of one statement run here,
**     and cleared on every path out.
**   - at most SQLV__EXPLAIN_ACCESSES_MAX accesses and, per access,
**     SQLV__EXPLAIN_SPANS_MAX spans are kept (more are counted); ranges
**     are looked up for the kept spans only.
**   - without ANALYZE nothing the statement did survives: its writes are
**     skipped and its transaction or savepoint is rolled back.
*/
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql_int.h"
#include "sql_lex.h"

#define SQLV__EXPLAIN_ACCESSES_MAX 32
#define SQLV__EXPLAIN_SPANS_MAX 8
#define SQLV__EXPLAIN_RANGES_SHOWN_MAX 32

typedef struct explain_span {
    base_buf start, end; /* end empty: the one key start */
} explain_span;

typedef struct explain_access {
    uint32_t table_id;
    int slot; /* 0 rows, 1 + index position, -1 a write */
    int kind; /* SQLV__ACCESS_*, 0 for a write */
    char path[512];
    explain_span spans[SQLV__EXPLAIN_SPANS_MAX];
    int nspans;
    uint64_t more_spans; /* spans beyond the kept ones */
} explain_access;

typedef struct sqlv__explain {
    bool dry;
    explain_access acc[SQLV__EXPLAIN_ACCESSES_MAX];
    int nacc;
    uint64_t kv_requests;
    bool committed; /* a commit of the statement's own transaction was noted */
    txn_commit_info commit;
} sqlv__explain;

static void quote_name(char *out, size_t size, const char *name) {
    bool plain = name[0] != 0 && !(name[0] >= '0' && name[0] <= '9');
    for (const char *c = name; plain && *c; c++)
        plain = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
    if (plain)
        snprintf(out, size, "%s", name);
    else
        snprintf(out, size, "\"%s\"", name);
}

static void access_path(const sqlv__table *t, int slot, int kind, char *out, size_t size) {
    char tn[128], ix[128];
    quote_name(tn, sizeof(tn), t->name);
    if (slot > 0 && slot <= t->nindexes)
        quote_name(ix, sizeof(ix), t->indexes[slot - 1].name);
    else
        base_strlcpy(ix, "primary", sizeof(ix));
    switch (kind) {
    case SQLV__ACCESS_POINT: snprintf(out, size, "point lookup %s@primary", tn); break;
    case SQLV__ACCESS_SCAN: snprintf(out, size, "scan %s@primary", tn); break;
    case SQLV__ACCESS_FULL: snprintf(out, size, "full scan %s", tn); break;
    case SQLV__ACCESS_INDEX:
        snprintf(out, size, "index lookup %s@%s, then a row fetch per entry", tn, ix);
        break;
    case SQLV__ACCESS_INDEX_POINT:
        snprintf(out, size, "index lookup %s@%s (unique: one entry), then its row", tn, ix);
        break;
    default: snprintf(out, size, "write %s", tn); break;
    }
}

/* The entry of (table, slot, kind), added when new; NULL when full. */
static explain_access *access_get(sqlv__explain *e, const sqlv__table *t, int slot, int kind) {
    for (int i = 0; i < e->nacc; i++)
        if (e->acc[i].table_id == t->id && e->acc[i].slot == slot && e->acc[i].kind == kind)
            return &e->acc[i];
    if (e->nacc == SQLV__EXPLAIN_ACCESSES_MAX) return NULL;
    explain_access *a = &e->acc[e->nacc++];
    memset(a, 0, sizeof(*a));
    a->table_id = t->id;
    a->slot = slot;
    a->kind = kind;
    access_path(t, slot, kind, a->path, sizeof(a->path));
    return a;
}

bool sqlv__explain_note_read(sqlv_session *s, const sqlv__table *t, int slot, int kind,
                             const base_buf *start, const base_buf *end) {
    sqlv__explain *e = s->explain;
    e->kv_requests++;
    explain_access *a = access_get(e, t, slot, kind);
    if (a == NULL) return e->dry;
    if (a->nspans == SQLV__EXPLAIN_SPANS_MAX) {
        a->more_spans++;
        return e->dry;
    }
    explain_span *sp = &a->spans[a->nspans];
    int rc = base_buf_append(&sp->start, start->data, start->len);
    if (rc == 0 && end != NULL) rc = base_buf_append(&sp->end, end->data, end->len);
    if (rc != 0) { /* the plan loses a span, the statement nothing */
        base_buf_free(&sp->start);
        base_buf_free(&sp->end);
        a->more_spans++;
        return e->dry;
    }
    a->nspans++;
    return e->dry;
}

void sqlv__explain_note_fetch(sqlv_session *s) { s->explain->kv_requests++; }

bool sqlv__explain_note_write(sqlv_session *s, const sqlv__table *t) {
    sqlv__explain *e = s->explain;
    if (!e->dry) e->kv_requests++;
    (void)access_get(e, t, -1, 0);
    return e->dry;
}

void sqlv__explain_note_commit(sqlv_session *s, const txn_commit_info *info) {
    sqlv__explain *e = s->explain;
    e->committed = true;
    if (info != NULL) e->commit = *info;
    if (info != NULL && info->wrote) e->kv_requests++; /* the commit itself */
}

static void explain_free(sqlv__explain *e) {
    for (int i = 0; i < e->nacc; i++)
        for (int k = 0; k < e->acc[i].nspans; k++) {
            base_buf_free(&e->acc[i].spans[k].start);
            base_buf_free(&e->acc[i].spans[k].end);
        }
    e->nacc = 0;
}

/* ---- output ------------------------------------------------------------------------ */

static int emit_line(sqlv__run *r, const char *line) {
    sqlv_cell cell = {line, strlen(line)};
    if (r->sink_rc == 0 && r->sink->data_row) r->sink_rc = r->sink->data_row(r->sink->ctx, 1, &cell);
    return r->sink_rc;
}

static int emit_linef(sqlv__run *r, base_buf *b, const char *fmt, const char *arg) {
    base_buf_reset(b);
    if (base_buf_printf(b, fmt, arg) != 0) return -1;
    return emit_line(r, (const char *)b->data);
}

/* "/Table/104/1/5" */
static int key_text(base_buf *out, const base_buf *key) {
    if (base_buf_printf(out, "/Table") != 0) return -1;
    return enc_key_format(key->data, key->len, out) == 0 ? 0 : -1;
}

/* A span's start: "[key", or "(bound" for an exclusive lower bound (the
** bound's successor, which does not decode). */
static int start_text(base_buf *out, const base_buf *start) {
    base_buf tmp = {0};
    int rc = -1;
    if (enc_key_format(start->data, start->len, &tmp) != 0) goto out;
    if (strstr((const char *)tmp.data, "/?") != NULL && start->len > 0 &&
        start->data[start->len - 1] > 0) {
        base_buf bound = {0};
        if (base_buf_append(&bound, start->data, start->len) != 0) goto out;
        bound.data[bound.len - 1]--;
        base_buf_reset(&tmp);
        int frc = enc_key_format(bound.data, bound.len, &tmp);
        base_buf_free(&bound);
        if (frc != 0) goto out;
        if (strstr((const char *)tmp.data, "/?") == NULL) {
            rc = base_buf_printf(out, "(/Table%s", (const char *)tmp.data);
            goto out;
        }
        base_buf_reset(&tmp);
        if (enc_key_format(start->data, start->len, &tmp) != 0) goto out;
    }
    rc = base_buf_printf(out, "[/Table%s", (const char *)tmp.data);
out:
    base_buf_free(&tmp);
    return rc;
}

/* A span's exclusive end for people. An inclusive bound ends the span at
** the bound's successor (its last byte plus one), which does not decode:
** shown as the bound itself and "]" when that decodes, else raw and ")". */
static int end_text(base_buf *out, const base_buf *end) {
    base_buf tmp = {0}, bound = {0};
    int rc = -1;
    if (enc_key_format(end->data, end->len, &tmp) != 0) goto out;
    if (tmp.len == 0 || strstr((const char *)tmp.data, "/?") == NULL) {
        rc = base_buf_printf(out, "/Table%s)", (const char *)tmp.data);
        goto out;
    }
    if (end->len > 0 && end->data[end->len - 1] > 0) {
        if (base_buf_append(&bound, end->data, end->len) != 0) goto out;
        bound.data[bound.len - 1]--;
        base_buf_reset(&tmp);
        if (enc_key_format(bound.data, bound.len, &tmp) != 0) goto out;
        if (strstr((const char *)tmp.data, "/?") == NULL) {
            rc = base_buf_printf(out, "/Table%s]", (const char *)tmp.data);
            goto out;
        }
    }
    rc = base_buf_printf(out, "/Table") != 0 || enc_key_format(end->data, end->len, out) != 0 ||
                 base_buf_printf(out, ")") != 0
             ? -1
             : 0;
out:
    base_buf_free(&tmp);
    base_buf_free(&bound);
    return rc;
}

/* The ranges holding the access's spans: "ranges: 3, 7" into b. */
static int ranges_line(sqlv__run *r, const explain_access *a, base_buf *b) {
    const sqlv_admin *adm = &r->s->engine->admin;
    uint64_t ids[SQLV__EXPLAIN_RANGES_SHOWN_MAX];
    size_t nids = 0;
    bool more = false;
    base_buf next = {0};
    if (base_buf_printf(b, "ranges: ") != 0) return -1;
    if (adm->ranges == NULL) return base_buf_printf(b, "n/a (a single node: one local store)");
    for (int k = 0; k < a->nspans; k++) {
        const explain_span *sp = &a->spans[k];
        const base_buf *end = &sp->end;
        if (sp->end.len == 0) { /* one key: [key, key + 0x00) */
            base_buf_reset(&next);
            if (enc_key_next(sp->start.data, sp->start.len, &next) != 0) goto nomem;
            end = &next;
        }
        sqlv_range_info *infos = NULL;
        size_t n = 0;
        char state[6] = {0}, msg[200] = {0};
        if (adm->ranges(adm->ctx, sp->start.data, sp->start.len, end->data, end->len, &infos, &n,
                        state, msg, sizeof(msg)) != 0) {
            base_buf_free(&next);
            return base_buf_printf(b, "unknown (%s)", msg);
        }
        for (size_t i = 0; i < n; i++) {
            bool seen = false;
            for (size_t j = 0; j < nids && !seen; j++)
                seen = ids[j] == infos[i].range_id;
            if (seen) continue;
            if (nids == SQLV__EXPLAIN_RANGES_SHOWN_MAX) {
                more = true;
                continue;
            }
            /* keep them sorted */
            size_t at = nids++;
            while (at > 0 && ids[at - 1] > infos[i].range_id) {
                ids[at] = ids[at - 1];
                at--;
            }
            ids[at] = infos[i].range_id;
        }
        sqlv_range_infos_free(infos, n);
    }
    base_buf_free(&next);
    if (nids == 0) return base_buf_printf(b, "none");
    for (size_t j = 0; j < nids; j++)
        if (base_buf_printf(b, "%s%llu", j ? ", " : "", (unsigned long long)ids[j]) != 0)
            return -1;
    return more ? base_buf_printf(b, ", ...") : 0;
nomem:
    base_buf_free(&next);
    return -1;
}

static int emit_access(sqlv__run *r, const explain_access *a, bool ran, base_buf *b) {
    if (emit_linef(r, b, "  -> %s", a->path) != 0) return -1;
    if (a->slot < 0) return 0; /* a write: its keys come from the rows */
    if (a->nspans == 0)
        return emit_line(r, ran ? "       spans: none read"
                                : "       spans: per row of the outer loop (not run)");
    base_buf_reset(b);
    if (base_buf_printf(b, "       spans: ") != 0) return -1;
    for (int k = 0; k < a->nspans; k++) {
        const explain_span *sp = &a->spans[k];
        if (k > 0 && base_buf_printf(b, ", ") != 0) return -1;
        if (sp->end.len == 0 ? base_buf_printf(b, "[") != 0 || key_text(b, &sp->start) != 0
                             : start_text(b, &sp->start) != 0)
            return -1;
        if (sp->end.len == 0) {
            if (base_buf_printf(b, " - ") != 0 || key_text(b, &sp->start) != 0 ||
                base_buf_printf(b, "]") != 0)
                return -1;
        } else if (base_buf_printf(b, " - ") != 0 || end_text(b, &sp->end) != 0) {
            return -1;
        }
    }
    if (a->more_spans > 0 &&
        base_buf_printf(b, " and %llu more", (unsigned long long)a->more_spans) != 0)
        return -1;
    if (emit_line(r, (const char *)b->data) != 0) return 0;
    base_buf_reset(b);
    if (base_buf_printf(b, "       ") != 0 || ranges_line(r, a, b) != 0) return -1;
    return emit_line(r, (const char *)b->data);
}

/* ---- the plan of every table: EXPLAIN QUERY PLAN --------------------------------- */

/* SQLite names a table by its alias when it has one: the table an alias
** stands for, from "t alias" or "t AS alias" in the statement; 0 if none. */
static uint32_t alias_table(sqlv_session *s, const char *text, size_t len, const char *alias) {
    const char *p = text, *end = text + len;
    char prev[SQLV__NAME_BYTES_MAX + 1] = "", prev2[SQLV__NAME_BYTES_MAX + 1] = "";
    char w[SQLV__NAME_BYTES_MAX + 1];
    for (int guard = 0; guard < 100000; guard++) {
        sqlv__token t = sqlv__lex_next(&p, end);
        if (t.kind == SQLV__TOK_END) break;
        if (sqlv__tok_ident(&t, w, sizeof(w)) != 0) {
            prev[0] = prev2[0] = 0;
            continue;
        }
        if (strcmp(w, alias) == 0) {
            const char *cand = strcasecmp(prev, "as") == 0 ? prev2 : prev;
            uint32_t id = cand[0] ? sqlv__session_find_id(s, cand) : 0;
            if (id != 0) return id;
        }
        base_strlcpy(prev2, prev, sizeof(prev2));
        base_strlcpy(prev, w, sizeof(prev));
    }
    return 0;
}

/* "SCAN t VIRTUAL TABLE INDEX 5:" / "SEARCH a VIRTUAL TABLE INDEX 5:" */
static void plan_detail(sqlv_session *s, sqlv__explain *e, const char *d, const char *text,
                        size_t len) {
    const char *p = strchr(d, ' ');
    const char *vt = strstr(d, " VIRTUAL TABLE INDEX ");
    char name[SQLV__NAME_BYTES_MAX + 1];
    if (p == NULL || vt == NULL) return;
    p++;
    size_t n = strcspn(p, " ");
    if (n == 0 || n >= sizeof(name)) return;
    memcpy(name, p, n);
    name[n] = 0;
    uint32_t id = sqlv__session_find_id(s, name);
    if (id == 0) id = alias_table(s, text, len, name);
    sqlv__table *t = NULL;
    if (id == 0 || sqlv__session_table(s, id, &t) != 0 || t == NULL) return;
    int slot = 0; /* t: a clone, owner: this function */
    int kind = sqlv__vtab_plan_kind(t, atoi(vt + strlen(" VIRTUAL TABLE INDEX ")), &slot);
    (void)access_get(e, t, slot, kind);
    sqlv__table_free(t);
}

static int query_plan(sqlv__run *r, sqlv__explain *e, const char *text, size_t len) {
    sqlv_session *s = r->s;
    base_buf q = {0};
    sqlite3_stmt *st = NULL;
    if (base_buf_printf(&q, "EXPLAIN QUERY PLAN ") != 0 || base_buf_append(&q, text, len) != 0) {
        base_buf_free(&q);
        return -1;
    }
    int rc = sqlv__prepare(s, (const char *)q.data, q.len, &st, NULL);
    base_buf_free(&q);
    if (rc != SQLITE_OK) return 1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(st, 3);
        if (d != NULL) plan_detail(s, e, d, text, len);
    }
    sqlite3_finalize(st);
    return 0;
}

/* ---- the statement ------------------------------------------------------------------ */

typedef struct analyze_sink {
    sqlv__run *outer;
    uint64_t rows;
    bool failed;
} analyze_sink;

static int an_data_row(void *ctx, int ncols, const sqlv_cell *cells) {
    (void)ncols, (void)cells;
    ((analyze_sink *)ctx)->rows++;
    return 0;
}

static int an_command_complete(void *ctx, const char *tag) {
    analyze_sink *a = ctx;
    /* INSERT/UPDATE/DELETE: the rows the tag counts */
    const char *sp = strrchr(tag, ' ');
    if (a->rows == 0 && sp != NULL) a->rows = strtoull(sp + 1, NULL, 10);
    return 0;
}

static int an_error(void *ctx, const char *sqlstate, const char *message) {
    analyze_sink *a = ctx;
    sqlv__run *r = a->outer;
    a->failed = true;
    if (r->sink_rc == 0 && r->sink->error)
        r->sink_rc = r->sink->error(r->sink->ctx, sqlstate, message);
    return r->sink_rc;
}

static int an_notice(void *ctx, const char *message) {
    analyze_sink *a = ctx;
    sqlv__run *r = a->outer;
    if (r->sink_rc == 0 && r->sink->notice) r->sink_rc = r->sink->notice(r->sink->ctx, message);
    return r->sink_rc;
}

/* Dry run: prepare and step the statement in the session's transaction (or
** one of its own), with reads reporting spans and writes skipped; then undo. */
static int dry_run(sqlv__run *r, sqlv__explain *e, const char *text, size_t len) {
    sqlv_session *s = r->s;
    txn_error err = {{0}, {0}};
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    bool own = false, have_sp = false;
    uint32_t sp = 0;
    char state[6], msg[600];
    if (s->kv == NULL) {
        int brc = sqlv__session_begin(s, false, &err);
        if (brc != TXN_OK) return sqlv__fail_txn(r, brc, &err);
        own = s->status == 'I';
    }
    if (!own) {
        int src = txn_savepoint(s->kv, &sp);
        if (src != TXN_OK) return sqlv__fail_txn(r, src, &err);
        have_sp = true;
    }
    int result = 0;
    int rc = sqlv__prepare(s, text, len, &st, &tail);
    if (rc == SQLITE_OK && st == NULL) {
        result = sqlv__fail(r, "42601", "EXPLAIN needs a statement");
        goto out;
    }
    if (rc != SQLITE_OK) {
        sqlv__map_error(s, rc, state, msg, sizeof(msg));
        result = sqlv__fail(r, state, msg);
        goto out;
    }
    if (tail && sqlv__lex_skip_space(tail, text + len) != text + len) {
        result = sqlv__fail(r, "42601", "syntax error: more than one statement");
        goto out;
    }
    if (query_plan(r, e, text, len) < 0) {
        result = sqlv__fail(r, "53200", "out of memory");
        goto out;
    }
    e->dry = true;
    s->explain = e;
    do
        rc = sqlite3_step(st);
    while (rc == SQLITE_ROW && !atomic_load(&s->cancel));
    s->explain = NULL;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        sqlv__map_error(s, rc, state, msg, sizeof(msg));
        sqlite3_finalize(st);
        st = NULL;
        result = sqlv__fail(r, state, msg);
    }
out:
    s->explain = NULL;
    if (st) sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (have_sp && s->kv) {
        txn_rollback_to(s->kv, sp);
        txn_release(s->kv, sp);
    }
    if (own && s->kv) { /* sqlv__fail may have rolled it back already */
        txn_rollback(s->kv);
        s->kv = NULL;
    }
    return result;
}

/* ANALYZE: the statement runs as it would alone (its own transaction and
** retries, or in the block), rows counted and dropped. */
static int analyze_run(sqlv__run *r, sqlv__explain *e, const char *text, size_t len,
                       uint64_t *rows, int64_t *elapsed_ns) {
    sqlv_session *s = r->s;
    analyze_sink a = {.outer = r};
    const sqlv_sink sink = {
        .ctx = &a,
        .data_row = an_data_row,
        .command_complete = an_command_complete,
        .error = an_error,
        .notice = an_notice,
    };
    sqlv__run inner = {s, &sink, 0};
    e->dry = false;
    int64_t t0 = base_monotonic_ns();
    s->explain = e;
    int rc = sqlv__run_statement(&inner, text, len);
    s->explain = NULL;
    *elapsed_ns = base_monotonic_ns() - t0;
    *rows = a.rows;
    if (a.failed || rc != 0) return 1;
    /* the plan of tables the run did not read (an inner loop never
    ** entered): from the block's transaction, or a read-only one of ours */
    if (s->kv != NULL) {
        if (query_plan(r, e, text, len) < 0) return sqlv__fail(r, "53200", "out of memory");
    } else if (s->status == 'I') {
        txn_error err = {{0}, {0}};
        if (sqlv__session_begin(s, true, &err) == TXN_OK) {
            int qrc = query_plan(r, e, text, len);
            txn_rollback(s->kv);
            s->kv = NULL;
            if (qrc < 0) return sqlv__fail(r, "53200", "out of memory");
        }
    }
    return 0;
}

int sqlv__explain_stmt(sqlv__run *r, const char *p, const char *end) {
    bool analyze = false;
    const char *save = p;
    sqlv__token t = sqlv__lex_next(&p, end);
    if (sqlv__tok_punct(&t, '(')) {
        for (int guard = 0; guard < 32; guard++) {
            t = sqlv__lex_next(&p, end);
            bool *flag = NULL, ignored = false;
            if (sqlv__tok_is(&t, "ANALYZE") || sqlv__tok_is(&t, "ANALYSE")) {
                flag = &analyze;
            } else if (sqlv__tok_is(&t, "FORMAT")) {
                t = sqlv__lex_next(&p, end);
                if (!sqlv__tok_is(&t, "TEXT"))
                    return sqlv__fail(r, "0A000", "EXPLAIN supports FORMAT TEXT only");
            } else if (sqlv__tok_is(&t, "VERBOSE") || sqlv__tok_is(&t, "COSTS") ||
                       sqlv__tok_is(&t, "BUFFERS") || sqlv__tok_is(&t, "TIMING") ||
                       sqlv__tok_is(&t, "SUMMARY") || sqlv__tok_is(&t, "SETTINGS") ||
                       sqlv__tok_is(&t, "WAL")) {
                flag = &ignored;
            } else {
                return sqlv__fail(r, "42601", "syntax error in EXPLAIN options");
            }
            if (flag != NULL) {
                const char *v = p;
                sqlv__token b = sqlv__lex_next(&p, end);
                *flag = true;
                if (sqlv__tok_is(&b, "false") || sqlv__tok_is(&b, "off") || sqlv__tok_is(&b, "0"))
                    *flag = false;
                else if (!sqlv__tok_is(&b, "true") && !sqlv__tok_is(&b, "on") &&
                         !sqlv__tok_is(&b, "1"))
                    p = v;
            }
            t = sqlv__lex_next(&p, end);
            if (sqlv__tok_punct(&t, ')')) break;
            if (!sqlv__tok_punct(&t, ',')) return sqlv__fail(r, "42601", "syntax error in EXPLAIN");
        }
    } else {
        p = save;
        for (int guard = 0; guard < 2; guard++) {
            const char *before = p;
            t = sqlv__lex_next(&p, end);
            if (sqlv__tok_is(&t, "ANALYZE") || sqlv__tok_is(&t, "ANALYSE")) {
                analyze = true;
            } else if (!sqlv__tok_is(&t, "VERBOSE")) {
                p = before;
                break;
            }
        }
    }
    const char *text = sqlv__lex_skip_space(p, end);
    size_t len = (size_t)(end - text);
    const char *q = text;
    sqlv__token first = sqlv__lex_next(&q, end);
    if (!sqlv__tok_is(&first, "SELECT") && !sqlv__tok_is(&first, "INSERT") &&
        !sqlv__tok_is(&first, "UPDATE") && !sqlv__tok_is(&first, "DELETE") &&
        !sqlv__tok_is(&first, "WITH") && !sqlv__tok_is(&first, "VALUES"))
        return sqlv__fail(r, first.kind == SQLV__TOK_END ? "42601" : "0A000",
                          "EXPLAIN supports SELECT, INSERT, UPDATE, DELETE, WITH and VALUES");
    if (!analyze && (sqlv__tok_is(&first, "INSERT") || sqlv__tok_is(&first, "UPDATE") ||
                     sqlv__tok_is(&first, "DELETE")) &&
        sqlv__dml_ext_wanted(text, len))
        return sqlv__fail(r, "0A000",
                          "EXPLAIN of ON CONFLICT or RETURNING is not supported (EXPLAIN ANALYZE "
                          "is)");

    /* SELECT DISTINCT ON: the rewritten query is the one planned (distinct_on.c) */
    char *don = NULL; /* owner: this function */
    char dstate[6], dmsg[300];
    int drc = sqlv__distinct_on_apply(r->s, text, len, &don, dstate, dmsg, sizeof(dmsg));
    if (drc != 0) return drc < 0 ? sqlv__fail(r, "53200", "out of memory")
                                 : sqlv__fail(r, dstate, dmsg);
    if (don != NULL) {
        text = don;
        len = strlen(don);
    }
    sqlv__explain *e = base_calloc(1, sizeof(*e)); /* owner: this function */
    if (e == NULL) {
        base_free(don);
        return sqlv__fail(r, "53200", "out of memory");
    }
    uint64_t rows = 0;
    int64_t elapsed_ns = 0;
    char kind[16];
    snprintf(kind, sizeof(kind), "%.*s", (int)BASE_MIN(first.len, sizeof(kind) - 1), first.start);
    for (char *c = kind; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
    int rc = analyze ? analyze_run(r, e, text, len, &rows, &elapsed_ns)
                     : dry_run(r, e, text, len);
    base_free(don); /* text is not read after the run */
    if (rc != 0) {
        explain_free(e);
        base_free(e);
        return 1; /* STMT_FAILED: the error went out */
    }
    static const sqlv_column col = {"QUERY PLAN", SQLV_OID_TEXT, -1, 0};
    base_buf b = {0};
    int orc = 0;
    if (r->sink_rc == 0 && r->sink->row_description)
        r->sink_rc = r->sink->row_description(r->sink->ctx, 1, &col);
    orc = emit_linef(r, &b, "%s", kind);
    for (int i = 0; orc == 0 && i < e->nacc; i++)
        orc = emit_access(r, &e->acc[i], analyze, &b);
    if (orc == 0 && e->nacc == 0) orc = emit_line(r, "  (no table read)");
    if (orc == 0 && analyze) {
        char line[256];
        snprintf(line, sizeof(line), "rows: %llu", (unsigned long long)rows);
        orc = emit_line(r, line);
        snprintf(line, sizeof(line), "execution time: %.3f ms", (double)elapsed_ns / 1e6);
        if (orc == 0) orc = emit_line(r, line);
        snprintf(line, sizeof(line), "KV requests: %llu", (unsigned long long)e->kv_requests);
        if (orc == 0) orc = emit_line(r, line);
        if (!e->committed)
            snprintf(line, sizeof(line),
                     "commit wait: none yet (in a transaction block: paid at COMMIT)");
        else if (!e->commit.wrote)
            snprintf(line, sizeof(line), "commit wait: 0us (read-only)");
        else
            snprintf(line, sizeof(line), "commit wait: %lldus (epsilon %lldus)",
                     (long long)((e->commit.wait_ns + 999) / 1000),
                     (long long)((e->commit.epsilon_ns + 999) / 1000));
        if (orc == 0) orc = emit_line(r, line);
    }
    base_buf_free(&b);
    explain_free(e);
    base_free(e);
    if (orc < 0) return sqlv__emit_error(r, "53200", "out of memory");
    if (r->sink_rc == 0 && r->sink->command_complete)
        r->sink_rc = r->sink->command_complete(r->sink->ctx, "EXPLAIN");
    return 0;
}
