/*
** tests/sql/test_catalog.c: the catalog stays right when another node
** changes the schema. Two sqlv_engine instances over one txn_db stand for
** two nodes over one key space: neither learns of the other's DDL except
** through the catalog version key, read by every transaction.
**
** SQL_TEST_SEED=n replays the random interleavings of
** test_random_interleavings (the seed is printed on failure).
*/
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "tests/sql/sql_harness.h"

/* ---- two nodes ------------------------------------------------------------------- */

typedef struct pair {
    fixture f;     /* f.sql is node A's engine */
    sqlv_engine *b; /* node B's engine over the same txn_db */
} pair;

static void open_pair(pair *p) {
    open_all(&p->f);
    assert_int_equal(sqlv_engine_open(p->f.db, &p->b), SQLV_OK);
}

static void close_pair(pair *p) {
    sqlv_engine_close(p->b);
    close_all(&p->f);
}

static sqlv_session *session_on(sqlv_engine *e) {
    sqlv_session *s = NULL;
    assert_int_equal(sqlv_session_open(e, "root", "defaultdb", &s), SQLV_OK);
    return s;
}

/* ---- the extended protocol, as in test_sql.c ------------------------------------------- */

static int c_params(void *ctx, int n, const uint32_t *oids) {
    capture *c = ctx;
    base_buf_printf(&c->out, "P");
    for (int i = 0; i < n; i++)
        base_buf_printf(&c->out, " %u", oids[i]);
    base_buf_printf(&c->out, "\n");
    return 0;
}
static int c_nodata(void *ctx) { return base_buf_printf(&((capture *)ctx)->out, "n\n"), 0; }
static int c_suspended(void *ctx) { return base_buf_printf(&((capture *)ctx)->out, "s\n"), 0; }

/* "parse name sql", "bind portal stmt v1 v2..." ("-": ""), "describe S|P
** name", "execute portal max", "close S|P name", "sync". */
static void ext(sqlv_session *s, capture *c, const char *op) {
    sqlv_sink sink = {c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, c_params, c_nodata,
                      c_suspended};
    char buf[512], *args[16] = {0};
    int n = 0, rc;
    snprintf(buf, sizeof(buf), "%s", op);
    if (strncmp(buf, "parse ", 6) == 0) {
        char *name = buf + 6, *sp = strchr(name, ' ');
        *sp = 0;
        rc = sqlv_session_prepare(s, strcmp(name, "-") == 0 ? "" : name, sp + 1, strlen(sp + 1),
                                  0, NULL, &sink);
        assert_true(rc == SQLV_OK || rc == SQLV_ERR_FAILED);
        return;
    }
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && n < 16;
         t = strtok_r(NULL, " ", &save))
        args[n++] = strcmp(t, "-") == 0 ? "" : t;
    assert_true(n > 0);
    if (strcmp(args[0], "bind") == 0) {
        sqlv_cell v[12];
        for (int i = 3; i < n; i++) {
            v[i - 3].data = args[i];
            v[i - 3].len = strlen(args[i]);
        }
        rc = sqlv_session_bind(s, args[1], args[2], n - 3, v, 0, NULL, 0, NULL, &sink);
    } else if (strcmp(args[0], "describe") == 0) {
        rc = sqlv_session_describe(s, args[1][0], args[2], &sink);
    } else if (strcmp(args[0], "execute") == 0) {
        rc = sqlv_session_execute(s, args[1], strtoull(args[2], NULL, 10), &sink);
    } else if (strcmp(args[0], "close") == 0) {
        rc = sqlv_session_close_object(s, args[1][0], args[2]);
    } else if (strcmp(args[0], "sync") == 0) {
        rc = sqlv_session_sync(s, &sink);
    } else {
        fail_msg("bad op %s", op);
        return;
    }
    assert_true(rc == SQLV_OK || rc == SQLV_ERR_FAILED);
}

/* Runs ops (NULL-terminated) and compares the transcript. */
static void ext_expect(sqlv_session *s, const char *const *ops, const char *want) {
    capture c;
    memset(&c, 0, sizeof(c));
    for (int i = 0; ops[i]; i++)
        ext(s, &c, ops[i]);
    base_buf_append_byte(&c.out, 0);
    if (strcmp((const char *)c.out.data, want) != 0)
        print_error("want:\n%sgot:\n%s", want, (const char *)c.out.data);
    assert_string_equal((const char *)c.out.data, want);
    base_buf_free(&c.out);
}

/* ---- directed scenarios ------------------------------------------------------------ */

static void test_create_across(void **state) {
    pair p;
    (void)state;
    open_pair(&p);
    sqlv_session *a = session(&p.f), *b = session_on(p.b);
    /* b has planned with its catalog before the CREATE on a */
    expect_error(b, "SELECT * FROM t", "42P01");
    EXPECT(a, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    EXPECT(a, "INSERT INTO t VALUES (1, 'one')", "C INSERT 0 1\n");
    EXPECT(b, "SELECT * FROM t", "D id:23,v:25\nR 1|one\nC SELECT 1\n");
    EXPECT(b, "INSERT INTO t VALUES (2, 'two')", "C INSERT 0 1\n");
    EXPECT(a, "SELECT count(*) FROM t", "D count:20\nR 2\nC SELECT 1\n");
    sqlv_session *b2 = session_on(p.b); /* a session opened after: the same */
    EXPECT(b2, "SELECT v FROM t WHERE id = 1", "D v:25\nR one\nC SELECT 1\n");
    sqlv_session_close(b2);
    /* b's DDL checks names against the newest catalog too */
    expect_error(b, "CREATE TABLE t (x INT)", "42P07");
    EXPECT(b, "CREATE TABLE IF NOT EXISTS T (x INT)",
           "N relation \"T\" already exists, skipping\nC CREATE TABLE\n");
    /* DDL in a block on a: not visible to b before COMMIT */
    EXPECT(a, "BEGIN; CREATE TABLE u (k INT PRIMARY KEY); INSERT INTO u VALUES (7)",
           "C BEGIN\nC CREATE TABLE\nC INSERT 0 1\n");
    expect_error(b, "SELECT * FROM u", "42P01");
    EXPECT(a, "COMMIT", "C COMMIT\n");
    EXPECT(b, "SELECT * FROM u", "D k:23\nR 7\nC SELECT 1\n");
    /* statements that look names up themselves: TRUNCATE, DROP, a block */
    EXPECT(a, "CREATE TABLE w (k INT PRIMARY KEY); INSERT INTO w VALUES (1), (2)",
           "C CREATE TABLE\nC INSERT 0 2\n");
    EXPECT(b, "TRUNCATE w", "C TRUNCATE TABLE\n");
    EXPECT(a, "SELECT count(*) FROM w", "D count:20\nR 0\nC SELECT 1\n");
    EXPECT(a, "CREATE TABLE w2 (k INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(b, "BEGIN; INSERT INTO w2 VALUES (5); COMMIT", "C BEGIN\nC INSERT 0 1\nC COMMIT\n");
    EXPECT(a, "CREATE TABLE w3 (k INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(b, "BEGIN; DROP TABLE w3; COMMIT", "C BEGIN\nC DROP TABLE\nC COMMIT\n");
    expect_error(a, "SELECT * FROM w3", "42P01");
    sqlv_session_close(a);
    sqlv_session_close(b);
    close_pair(&p);
}

static void test_drop_across(void **state) {
    pair p;
    (void)state;
    open_pair(&p);
    sqlv_session *a = session(&p.f), *b = session_on(p.b);
    EXPECT(a, "CREATE TABLE d (id INT PRIMARY KEY, v TEXT); INSERT INTO d VALUES (1, 'x')",
           "C CREATE TABLE\nC INSERT 0 1\n");
    EXPECT(a, "SELECT * FROM d", "D id:23,v:25\nR 1|x\nC SELECT 1\n"); /* declared on a */
    EXPECT(b, "DROP TABLE d", "C DROP TABLE\n");
    expect_error(a, "SELECT * FROM d", "42P01");
    expect_error(a, "INSERT INTO d VALUES (2, 'y')", "42P01");
    expect_error(a, "UPDATE d SET v = 'z'", "42P01");
    expect_error(a, "DELETE FROM d", "42P01");
    expect_error(a, "TRUNCATE d", "42P01");
    expect_error(a, "DROP TABLE d", "42P01");
    EXPECT(a, "DROP TABLE IF EXISTS d", "N table \"d\" does not exist, skipping\nC DROP TABLE\n");
    char *r = run(a, "SELECT * FROM d");
    assert_non_null(strstr(r, "E 42P01 relation \"d\" does not exist"));
    free(r);
    /* re-created with other columns on b: a sees the new shape, no old rows */
    EXPECT(b, "CREATE TABLE d (k TEXT PRIMARY KEY, n INT, flag BOOLEAN)", "C CREATE TABLE\n");
    EXPECT(a, "SELECT * FROM d", "D k:25,n:23,flag:16\nC SELECT 0\n");
    EXPECT(a, "INSERT INTO d VALUES ('q', 1, true)", "C INSERT 0 1\n");
    /* a block keeps the catalog of its snapshot; a read-only block commits */
    EXPECT(a, "BEGIN; SELECT count(*) FROM d", "C BEGIN\nD count:20\nR 1\nC SELECT 1\n");
    EXPECT(b, "DROP TABLE d", "C DROP TABLE\n");
    expect_error(b, "SELECT count(*) FROM d", "42P01");
    EXPECT(a, "SELECT k FROM d", "D k:25\nR q\nC SELECT 1\n");
    EXPECT(a, "COMMIT", "C COMMIT\n");
    expect_error(a, "SELECT count(*) FROM d", "42P01");
    /* ... but a block that writes into a table dropped meanwhile fails */
    EXPECT(a, "CREATE TABLE d (id INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(a, "BEGIN; INSERT INTO d VALUES (1)", "C BEGIN\nC INSERT 0 1\n");
    EXPECT(b, "DROP TABLE d", "C DROP TABLE\n");
    expect_error(a, "COMMIT", "40001");
    expect_error(b, "SELECT * FROM d", "42P01");
    sqlv_session_close(a);
    sqlv_session_close(b);
    close_pair(&p);
}

static void test_add_column_across(void **state) {
    pair p;
    (void)state;
    open_pair(&p);
    sqlv_session *a = session(&p.f), *b = session_on(p.b);
    EXPECT(a, "CREATE TABLE c (id INT PRIMARY KEY, v TEXT); INSERT INTO c VALUES (1, 'x'), (2, 'y')",
           "C CREATE TABLE\nC INSERT 0 2\n");
    EXPECT(b, "SELECT * FROM c ORDER BY id", "D id:23,v:25\nR 1|x\nR 2|y\nC SELECT 2\n");
    EXPECT(a, "ALTER TABLE c ADD COLUMN n INT", "C ALTER TABLE\n");
    /* DISTINCT ON prepares its select list with the statement's catalog */
    EXPECT(b, "SELECT DISTINCT ON (id) * FROM c ORDER BY id LIMIT 1",
           "D id:23,v:25,n:23\nR 1|x|NULL\nC SELECT 1\n");
    /* stored rows read NULL in the new column, on both nodes */
    EXPECT(b, "SELECT * FROM c ORDER BY id",
           "D id:23,v:25,n:23\nR 1|x|NULL\nR 2|y|NULL\nC SELECT 2\n");
    EXPECT(b, "INSERT INTO c VALUES (3, 'z', 7)", "C INSERT 0 1\n");
    EXPECT(b, "UPDATE c SET n = 5 WHERE id = 1", "C UPDATE 1\n");
    EXPECT(a, "SELECT id, n FROM c ORDER BY id", "D id:23,n:23\nR 1|5\nR 2|NULL\nR 3|7\nC SELECT 3\n");
    EXPECT(a, "SELECT count(*) FROM c WHERE n IS NULL", "D count:20\nR 1\nC SELECT 1\n");
    /* the forms and the refusals */
    EXPECT(b, "ALTER TABLE c ADD COLUMN IF NOT EXISTS n INT",
           "N column \"n\" of relation \"c\" already exists, skipping\nC ALTER TABLE\n");
    expect_error(b, "ALTER TABLE c ADD COLUMN n TEXT", "42701");
    expect_error(b, "ALTER TABLE c ADD COLUMN m INT NOT NULL", "23502");
    /* a DEFAULT: the stored rows read it on both nodes (the missing value) */
    EXPECT(b, "ALTER TABLE c ADD COLUMN d5 INT DEFAULT 5", "C ALTER TABLE\n");
    EXPECT(a, "SELECT id, d5 FROM c ORDER BY id",
           "D id:23,d5:23\nR 1|5\nR 2|5\nR 3|5\nC SELECT 3\n");
    expect_error(b, "ALTER TABLE c ADD COLUMN m INT PRIMARY KEY", "0A000");
    expect_error(b, "ALTER TABLE c ADD COLUMN m INT, ADD COLUMN q INT", "0A000");
    expect_error(b, "ALTER TABLE c ADD COLUMN m INT REFERENCES", "42601");
    expect_error(b, "ALTER TABLE c ADD COLUMN (m INT)", "42601");
    expect_error(b, "ALTER TABLE nosuch ADD COLUMN m INT", "42P01");
    EXPECT(b, "ALTER TABLE IF EXISTS nosuch ADD COLUMN m INT",
           "N relation \"nosuch\" does not exist, skipping\nC ALTER TABLE\n");
    EXPECT(b, "ALTER TABLE c ADD m TEXT DEFAULT NULL", "C ALTER TABLE\n"); /* COLUMN is optional */
    EXPECT(a, "SELECT * FROM c WHERE id = 3",
           "D id:23,v:25,n:23,d5:23,m:25\nR 3|z|7|5|NULL\nC SELECT 1\n");
    /* NOT NULL on an empty table: accepted and enforced */
    EXPECT(b, "CREATE TABLE e (id INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(a, "ALTER TABLE e ADD COLUMN req TEXT NOT NULL", "C ALTER TABLE\n");
    expect_error(b, "INSERT INTO e VALUES (1, NULL)", "23502");
    EXPECT(b, "INSERT INTO e VALUES (1, 'r')", "C INSERT 0 1\n");
    /* inside a block: seen by its session at once, by others after COMMIT,
    ** forgotten by ROLLBACK */
    EXPECT(a, "BEGIN; ALTER TABLE c ADD COLUMN blk INT; INSERT INTO c (id, blk) VALUES (10, 1)",
           "C BEGIN\nC ALTER TABLE\nC INSERT 0 1\n");
    EXPECT(a, "SELECT blk FROM c WHERE id = 10", "D blk:23\nR 1\nC SELECT 1\n");
    EXPECT(b, "SELECT * FROM c LIMIT 0", "D id:23,v:25,n:23,d5:23,m:25\nC SELECT 0\n");
    EXPECT(a, "ROLLBACK", "C ROLLBACK\n");
    expect_error(a, "SELECT blk FROM c", "42703");
    EXPECT(a, "BEGIN; ALTER TABLE c ADD COLUMN b2 INT; ALTER TABLE c ADD COLUMN b3 TEXT; COMMIT",
           "C BEGIN\nC ALTER TABLE\nC ALTER TABLE\nC COMMIT\n");
    EXPECT(b, "SELECT * FROM c LIMIT 0",
           "D id:23,v:25,n:23,d5:23,m:25,b2:23,b3:25\nC SELECT 0\n");
    /* created and altered in one block */
    EXPECT(a,
           "BEGIN; CREATE TABLE nb (id INT PRIMARY KEY); ALTER TABLE nb ADD COLUMN z TEXT; "
           "INSERT INTO nb VALUES (1, 'q'); COMMIT",
           "C BEGIN\nC CREATE TABLE\nC ALTER TABLE\nC INSERT 0 1\nC COMMIT\n");
    EXPECT(b, "SELECT * FROM nb", "D id:23,z:25\nR 1|q\nC SELECT 1\n");
    /* ADD PRIMARY KEY (a new table id) is seen across too */
    EXPECT(a, "CREATE TABLE pk (a INT, b TEXT); INSERT INTO pk VALUES (1, 'x')",
           "C CREATE TABLE\nC INSERT 0 1\n");
    EXPECT(b, "INSERT INTO pk VALUES (1, 'dup')", "C INSERT 0 1\n");
    expect_error(a, "ALTER TABLE pk ADD PRIMARY KEY (a)", "23505");
    EXPECT(b, "DELETE FROM pk WHERE b = 'dup'", "C DELETE 1\n");
    EXPECT(a, "ALTER TABLE pk ADD PRIMARY KEY (a)", "C ALTER TABLE\n");
    expect_error(b, "INSERT INTO pk VALUES (1, 'dup')", "23505");
    EXPECT(b, "SELECT * FROM pk", "D a:23,b:25\nR 1|x\nC SELECT 1\n");
    sqlv_session_close(a);
    sqlv_session_close(b);
    /* a third engine opened now (a node that restarts) sees it all */
    sqlv_engine *c3 = NULL;
    assert_int_equal(sqlv_engine_open(p.f.db, &c3), SQLV_OK);
    sqlv_session *s3 = session_on(c3);
    EXPECT(s3, "SELECT id, b3, d5 FROM c WHERE id = 1",
           "D id:23,b3:25,d5:23\nR 1|NULL|5\nC SELECT 1\n");
    sqlv_session_close(s3);
    sqlv_engine_close(c3);
    close_pair(&p);
}

static void test_prepared_across(void **state) {
    pair p;
    (void)state;
    open_pair(&p);
    sqlv_session *a = session(&p.f), *b = session_on(p.b);
    EXPECT(a, "CREATE TABLE ps (id INT PRIMARY KEY, v TEXT); INSERT INTO ps VALUES (1, 'a'), (2, 'b')",
           "C CREATE TABLE\nC INSERT 0 2\n");
    const char *prep[] = {"parse q SELECT v FROM ps WHERE id = $1", "parse star SELECT * FROM ps",
                          "bind - q 1", "execute - 0", "sync", NULL};
    ext_expect(b, prep, "R a\nC SELECT 1\n");
    /* dropped on a: b's prepared statements fail cleanly, every time */
    EXPECT(a, "DROP TABLE ps", "C DROP TABLE\n");
    const char *gone[] = {"bind - q 1", "execute - 0", "sync", NULL};
    ext_expect(b, gone, "E 42P01 relation \"ps\" does not exist\n");
    assert_int_equal(sqlv_session_status(b), 'I');
    ext_expect(b, gone, "E 42P01 relation \"ps\" does not exist\n");
    const char *gone_star[] = {"describe S star", "bind p star", "describe P p", "sync", NULL};
    ext_expect(b, gone_star, "P\nD id:23,v:25\nE 42P01 relation \"ps\" does not exist\n");
    /* re-created (another id, one more column): the same text is planned
    ** again; a statement whose row shape changed fails as in PostgreSQL */
    EXPECT(a, "CREATE TABLE ps (id INT PRIMARY KEY, v TEXT, w INT); INSERT INTO ps VALUES (1, 'new', 5)",
           "C CREATE TABLE\nC INSERT 0 1\n");
    ext_expect(b, gone, "R new\nC SELECT 1\n");
    const char *star[] = {"bind - star", "execute - 0", "sync", NULL};
    ext_expect(b, star, "E 0A000 cached plan must not change result type\n");
    const char *star2[] = {"close S star", "parse star SELECT * FROM ps", "bind - star",
                           "execute - 0", "sync", NULL};
    ext_expect(b, star2, "R 1|new|5\nC SELECT 1\n");
    /* Parse runs in a transaction: it sees a table created on a since b's
    ** last transaction */
    EXPECT(a, "CREATE TABLE fresh (k INT PRIMARY KEY)", "C CREATE TABLE\n");
    const char *fresh[] = {"parse f SELECT count(*) FROM fresh", "bind - f", "execute - 0", "sync",
                           NULL};
    ext_expect(b, fresh, "R 0\nC SELECT 1\n");
    /* ... and so does a parameter's type inference */
    EXPECT(a, "CREATE TABLE typed (k BIGINT PRIMARY KEY)", "C CREATE TABLE\n");
    const char *typed[] = {"parse ty SELECT k FROM typed WHERE k = $1", "describe S ty", "sync",
                           NULL};
    ext_expect(b, typed, "P 20\nD k:20\n");
    /* ADD COLUMN on a: a statement naming its columns keeps working */
    EXPECT(a, "ALTER TABLE ps ADD COLUMN extra TEXT", "C ALTER TABLE\n");
    ext_expect(b, gone, "R new\nC SELECT 1\n");
    /* Parse of a dropped table fails at Parse */
    EXPECT(a, "DROP TABLE fresh", "C DROP TABLE\n");
    const char *parse_gone[] = {"parse g SELECT * FROM fresh", "sync", NULL};
    ext_expect(b, parse_gone, "E 42P01 relation \"fresh\" does not exist\n");
    assert_int_equal(sqlv_session_status(b), 'I');
    sqlv_session_close(a);
    sqlv_session_close(b);
    close_pair(&p);
}

/* Serializable schema changes: a transaction that read the catalog version
** and writes fails its commit (40001) if a DDL committed in between; two
** DDL transactions likewise. Read-only transactions never fail for it. */
static void test_ddl_conflicts(void **state) {
    pair p;
    (void)state;
    open_pair(&p);
    sqlv_session *a = session(&p.f), *b = session_on(p.b);
    EXPECT(a, "CREATE TABLE k (id INT PRIMARY KEY, v INT); INSERT INTO k VALUES (1, 0)",
           "C CREATE TABLE\nC INSERT 0 1\n");
    EXPECT(b, "BEGIN; UPDATE k SET v = v + 1 WHERE id = 1", "C BEGIN\nC UPDATE 1\n");
    EXPECT(a, "CREATE TABLE other (x INT)", "C CREATE TABLE\n");
    expect_error(b, "COMMIT", "40001");
    EXPECT(b, "SELECT v FROM k", "D v:23\nR 0\nC SELECT 1\n");
    /* the writer first: the DDL block commits after it */
    EXPECT(a, "BEGIN; CREATE TABLE other2 (x INT)", "C BEGIN\nC CREATE TABLE\n");
    EXPECT(b, "UPDATE k SET v = 5 WHERE id = 1", "C UPDATE 1\n");
    EXPECT(a, "COMMIT", "C COMMIT\n");
    /* read-only transactions: never */
    EXPECT(b, "BEGIN; SELECT v FROM k", "C BEGIN\nD v:23\nR 5\nC SELECT 1\n");
    EXPECT(a, "DROP TABLE other", "C DROP TABLE\n");
    EXPECT(b, "SELECT v FROM k; COMMIT", "D v:23\nR 5\nC SELECT 1\nC COMMIT\n");
    /* DDL blocks on both nodes: the second COMMIT fails */
    EXPECT(a, "BEGIN; CREATE TABLE x1 (a INT)", "C BEGIN\nC CREATE TABLE\n");
    EXPECT(b, "BEGIN; CREATE TABLE x2 (a INT)", "C BEGIN\nC CREATE TABLE\n");
    EXPECT(a, "COMMIT", "C COMMIT\n");
    expect_error(b, "COMMIT", "40001");
    expect_error(b, "SELECT * FROM x2", "42P01");
    EXPECT(b, "SELECT * FROM x1", "D a:23\nC SELECT 0\n");
    /* one name on both nodes: one table */
    EXPECT(a, "BEGIN; CREATE TABLE same (a INT)", "C BEGIN\nC CREATE TABLE\n");
    EXPECT(b, "CREATE TABLE same (b TEXT)", "C CREATE TABLE\n"); /* implicit: commits */
    expect_error(a, "COMMIT", "40001");
    EXPECT(a, "SELECT * FROM same", "D b:25\nC SELECT 0\n");
    /* an implicit write statement read the version too: retried, it works */
    EXPECT(b, "INSERT INTO same VALUES ('s')", "C INSERT 0 1\n");
    sqlv_session_close(a);
    sqlv_session_close(b);
    close_pair(&p);
}

/* ---- random interleavings ------------------------------------------------------------
** Four sessions (two per node) run random DDL, writes, counts, blocks and
** prepared statements one at a time; a model of the committed catalog and
** row counts predicts every answer, including which block commits fail. */

#define RT_NAMES 4
#define RT_SESSIONS 4
#define RT_STEPS 1500
#define RT_COLS_MAX 5

typedef struct rt_table {
    bool exists;
    int ncols; /* besides id: c0..c(ncols-1) */
    long rows;
    uint64_t writes; /* commits that wrote rows into it */
} rt_table;

typedef struct rt_session {
    sqlv_session *s;
    bool in_block;
    rt_table snap[RT_NAMES]; /* the block's snapshot */
    long pending[RT_NAMES];  /* rows the block inserted */
    bool scanned[RT_NAMES];
    uint64_t ddl_at_start;
    bool prepared[RT_NAMES]; /* "q<i>": SELECT count(*) FROM t<i> */
} rt_session;

typedef struct rt {
    uint64_t seed, rng;
    int step;
    rt_table model[RT_NAMES];
    rt_session ss[RT_SESSIONS];
    uint64_t ddl;
    long next_key;
} rt;

static uint64_t rt_next(rt *t) {
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    return t->rng;
}
static int rt_pick(rt *t, int n) { return (int)(rt_next(t) % (uint64_t)n); }

static void rt_check(rt *t, int si, const char *what, const char *got, const char *want) {
    if (strcmp(got, want) == 0) return;
    print_error("SQL_TEST_SEED=%llu step %d session %d: %s\nwant:\n%sgot:\n%s",
                (unsigned long long)t->seed, t->step, si, what, want, got);
    fail();
}

static void rt_expect(rt *t, int si, const char *q, const char *want) {
    char *got = run(t->ss[si].s, q);
    rt_check(t, si, q, got, want);
    free(got);
}

static void rt_missing(char *want, size_t size, int ti) {
    snprintf(want, size, "E 42P01 relation \"t%d\" does not exist\n", ti);
}

static void rt_shape(char *want, size_t size, const rt_table *m) {
    int o = snprintf(want, size, "D id:20");
    for (int c = 0; c < m->ncols; c++)
        o += snprintf(want + o, size - (size_t)o, ",c%d:23", c);
    snprintf(want + o, size - (size_t)o, "\nC SELECT 0\n");
}

static void rt_block_end(rt_session *x) {
    x->in_block = false;
    memset(x->pending, 0, sizeof(x->pending));
    memset(x->scanned, 0, sizeof(x->scanned));
}

static void rt_step(rt *t) {
    int si = rt_pick(t, RT_SESSIONS), ti = rt_pick(t, RT_NAMES);
    rt_session *x = &t->ss[si];
    rt_table *m = &t->model[ti];
    char q[256], want[512];
    if (x->in_block) {
        rt_table *v = &x->snap[ti];
        switch (rt_pick(t, 4)) {
        case 0: /* insert in the block */
            snprintf(q, sizeof(q), "INSERT INTO t%d (id) VALUES (%ld)", ti, t->next_key++);
            if (!v->exists) break;
            rt_expect(t, si, q, "C INSERT 0 1\n");
            x->pending[ti]++;
            return;
        case 1: /* count in the block: its snapshot and its own rows */
            snprintf(q, sizeof(q), "SELECT count(*) FROM t%d", ti);
            if (!v->exists) break;
            snprintf(want, sizeof(want), "D count:20\nR %ld\nC SELECT 1\n",
                     v->rows + x->pending[ti]);
            rt_expect(t, si, q, want);
            x->scanned[ti] = true;
            return;
        default: { /* COMMIT */
            bool conflict = t->ddl != x->ddl_at_start;
            for (int i = 0; i < RT_NAMES; i++)
                conflict |= x->scanned[i] && t->model[i].writes != x->snap[i].writes;
            if (conflict) {
                char *got = run(x->s, "COMMIT");
                rt_check(t, si, "COMMIT (expected 40001)", strncmp(got, "E 40001", 7) == 0 ? "" : got,
                         "");
                free(got);
            } else {
                rt_expect(t, si, "COMMIT", "C COMMIT\n");
                for (int i = 0; i < RT_NAMES; i++) {
                    if (x->pending[i] == 0) continue;
                    t->model[i].rows += x->pending[i];
                    t->model[i].writes++;
                }
            }
            rt_block_end(x);
            return;
        }
        }
        /* the table is not in the block's snapshot: 42P01 aborts the block */
        rt_missing(want, sizeof(want), ti);
        rt_expect(t, si, q, want);
        rt_expect(t, si, "ROLLBACK", "C ROLLBACK\n");
        rt_block_end(x);
        return;
    }
    switch (rt_pick(t, 9)) {
    case 0: /* CREATE */
        snprintf(q, sizeof(q), "CREATE TABLE t%d (id BIGINT PRIMARY KEY, c0 INT)", ti);
        if (m->exists) {
            snprintf(want, sizeof(want), "E 42P07 relation \"t%d\" already exists\n", ti);
            rt_expect(t, si, q, want);
            return;
        }
        rt_expect(t, si, q, "C CREATE TABLE\n");
        *m = (rt_table){true, 1, 0, m->writes};
        t->ddl++;
        return;
    case 1: /* DROP */
        snprintf(q, sizeof(q), "DROP TABLE t%d", ti);
        if (!m->exists) {
            snprintf(want, sizeof(want), "E 42P01 table \"t%d\" does not exist\n", ti);
            rt_expect(t, si, q, want);
            return;
        }
        rt_expect(t, si, q, "C DROP TABLE\n");
        m->exists = false;
        t->ddl++;
        return;
    case 2: /* ADD COLUMN */
        if (m->exists && m->ncols >= RT_COLS_MAX) return;
        snprintf(q, sizeof(q), "ALTER TABLE t%d ADD COLUMN c%d INT", ti, m->exists ? m->ncols : 0);
        if (!m->exists) {
            rt_missing(want, sizeof(want), ti);
            rt_expect(t, si, q, want);
            return;
        }
        rt_expect(t, si, q, "C ALTER TABLE\n");
        m->ncols++;
        t->ddl++;
        return;
    case 3: /* implicit insert */
        snprintf(q, sizeof(q), "INSERT INTO t%d (id, c0) VALUES (%ld, 1)", ti, t->next_key++);
        if (!m->exists) break;
        rt_expect(t, si, q, "C INSERT 0 1\n");
        m->rows++;
        m->writes++;
        return;
    case 4: /* count */
        snprintf(q, sizeof(q), "SELECT count(*) FROM t%d", ti);
        if (!m->exists) break;
        snprintf(want, sizeof(want), "D count:20\nR %ld\nC SELECT 1\n", m->rows);
        rt_expect(t, si, q, want);
        return;
    case 5: /* the columns */
        snprintf(q, sizeof(q), "SELECT * FROM t%d LIMIT 0", ti);
        if (!m->exists) break;
        rt_shape(want, sizeof(want), m);
        rt_expect(t, si, q, want);
        return;
    case 6: /* a block, begun by an insert */
        snprintf(q, sizeof(q), "BEGIN; INSERT INTO t%d (id) VALUES (%ld)", ti, t->next_key++);
        if (!m->exists) {
            rt_missing(want + 8, sizeof(want) - 8, ti);
            memcpy(want, "C BEGIN\n", 8);
            rt_expect(t, si, q, want);
            rt_expect(t, si, "ROLLBACK", "C ROLLBACK\n");
            return;
        }
        rt_expect(t, si, q, "C BEGIN\nC INSERT 0 1\n");
        x->in_block = true;
        memcpy(x->snap, t->model, sizeof(x->snap));
        x->ddl_at_start = t->ddl;
        x->pending[ti] = 1;
        return;
    case 7: { /* Parse (and Sync) */
        capture c;
        char op[128];
        memset(&c, 0, sizeof(c));
        snprintf(op, sizeof(op), "close S q%d", ti);
        ext(x->s, &c, op);
        snprintf(op, sizeof(op), "parse q%d SELECT count(*) FROM t%d", ti, ti);
        ext(x->s, &c, op);
        ext(x->s, &c, "sync");
        base_buf_append_byte(&c.out, 0);
        want[0] = 0;
        if (!m->exists) rt_missing(want, sizeof(want), ti);
        rt_check(t, si, op, (const char *)c.out.data, want);
        base_buf_free(&c.out);
        x->prepared[ti] = m->exists;
        return;
    }
    default: { /* Bind/Execute/Sync of a statement parsed earlier */
        if (!x->prepared[ti]) return;
        capture c;
        char op[128];
        memset(&c, 0, sizeof(c));
        snprintf(op, sizeof(op), "bind - q%d", ti);
        ext(x->s, &c, op);
        ext(x->s, &c, "execute - 0");
        ext(x->s, &c, "sync");
        base_buf_append_byte(&c.out, 0);
        if (m->exists)
            snprintf(want, sizeof(want), "R %ld\nC SELECT 1\n", m->rows);
        else
            rt_missing(want, sizeof(want), ti);
        rt_check(t, si, op, (const char *)c.out.data, want);
        base_buf_free(&c.out);
        return;
    }
    }
    rt_missing(want, sizeof(want), ti);
    rt_expect(t, si, q, want);
}

static void test_random_interleavings(void **state) {
    pair p;
    rt t;
    (void)state;
    memset(&t, 0, sizeof(t));
    const char *env = getenv("SQL_TEST_SEED");
    t.seed = env ? strtoull(env, NULL, 10) : (uint64_t)base_realtime_ns();
    t.rng = t.seed * 0x9e3779b97f4a7c15ull + 1;
    t.next_key = 1;
    open_pair(&p);
    for (int i = 0; i < RT_SESSIONS; i++)
        t.ss[i].s = session_on(i < RT_SESSIONS / 2 ? p.f.sql : p.b);
    for (t.step = 0; t.step < RT_STEPS; t.step++)
        rt_step(&t);
    /* the end: every block ends, then all four agree with the model */
    for (int i = 0; i < RT_SESSIONS; i++) {
        if (t.ss[i].in_block) free(run(t.ss[i].s, "ROLLBACK"));
        rt_block_end(&t.ss[i]);
        for (int ti = 0; ti < RT_NAMES; ti++) {
            char q[64], want[128];
            snprintf(q, sizeof(q), "SELECT count(*) FROM t%d", ti);
            if (t.model[ti].exists)
                snprintf(want, sizeof(want), "D count:20\nR %ld\nC SELECT 1\n", t.model[ti].rows);
            else
                rt_missing(want, sizeof(want), ti);
            rt_expect(&t, i, q, want);
        }
    }
    for (int i = 0; i < RT_SESSIONS; i++)
        sqlv_session_close(t.ss[i].s);
    close_pair(&p);
}

/* ---- threads ---------------------------------------------------------------------------
** One session on node A changes the schema of three tables while sessions
** on both nodes read and write them: every answer is a result or one of
** the errors a concurrent schema change explains; no crash, no leak. */

#define TH_READERS 3
#define TH_DDL_OPS 400
#define TH_TABLES 3

typedef struct th_arg {
    sqlv_engine *e;
    int index;
    _Atomic int *stop;
    int ok, expected_errors;
    char unexpected[512];
} th_arg;

/* The first error line of a transcript, or NULL. */
static const char *th_error(const char *out) {
    if (strncmp(out, "E ", 2) == 0) return out;
    const char *e = strstr(out, "\nE ");
    return e ? e + 1 : NULL;
}

static bool th_expected(const char *out) {
    static const char *const allowed[] = {"E 42P01", "E 40001", "E 0A000 cached plan", "E 42P07"};
    const char *e = th_error(out);
    if (e == NULL) return true;
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (strncmp(e, allowed[i], strlen(allowed[i])) == 0) return true;
    return false;
}

static void th_run(th_arg *a, sqlv_session *s, const char *q) {
    char *out = run(s, q);
    if (th_error(out) == NULL)
        a->ok++;
    else if (th_expected(out))
        a->expected_errors++;
    else if (a->unexpected[0] == 0)
        snprintf(a->unexpected, sizeof(a->unexpected), "%s -> %s", q, out);
    free(out);
}

static void *th_reader(void *arg) {
    th_arg *a = arg;
    sqlv_session *s = NULL;
    if (sqlv_session_open(a->e, "root", "defaultdb", &s) != SQLV_OK) return NULL;
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(a->index + 1);
    long key = (long)a->index * 1000000;
    for (int i = 0; i < 100000 && !atomic_load(a->stop); i++) {
        char q[160];
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int ti = (int)(x % TH_TABLES);
        switch ((x >> 8) % 4) {
        case 0: snprintf(q, sizeof(q), "INSERT INTO tt%d (id) VALUES (%ld)", ti, key++); break;
        case 1: snprintf(q, sizeof(q), "SELECT count(*) FROM tt%d", ti); break;
        case 2: snprintf(q, sizeof(q), "SELECT * FROM tt%d WHERE id = %ld", ti, key - 1); break;
        default:
            snprintf(q, sizeof(q), "BEGIN; INSERT INTO tt%d (id) VALUES (%ld); COMMIT", ti, key++);
            break;
        }
        th_run(a, s, q);
        if (sqlv_session_status(s) != 'I') free(run(s, "ROLLBACK"));
        /* and a prepared statement across the changes */
        capture c;
        memset(&c, 0, sizeof(c));
        char op[96];
        snprintf(op, sizeof(op), "parse - SELECT * FROM tt%d WHERE id = $1", ti);
        ext(s, &c, op);
        ext(s, &c, "bind - - 1");
        ext(s, &c, "execute - 0");
        ext(s, &c, "sync");
        base_buf_append_byte(&c.out, 0);
        if (!th_expected((const char *)c.out.data) && a->unexpected[0] == 0)
            snprintf(a->unexpected, sizeof(a->unexpected), "prepared -> %s",
                     (const char *)c.out.data);
        base_buf_free(&c.out);
    }
    sqlv_session_close(s);
    return NULL;
}

static void test_threads_across(void **state) {
    pair p;
    pthread_t th[TH_READERS];
    th_arg args[TH_READERS];
    _Atomic int stop = 0;
    (void)state;
    open_pair(&p);
    for (int i = 0; i < TH_READERS; i++) {
        args[i] = (th_arg){.e = i == 0 ? p.f.sql : p.b, .index = i + 1, .stop = &stop};
        assert_int_equal(pthread_create(&th[i], NULL, th_reader, &args[i]), 0);
    }
    th_arg ddl = {.e = p.f.sql, .index = 0, .stop = &stop};
    sqlv_session *s = session(&p.f);
    uint64_t x = 12345;
    for (int i = 0; i < TH_DDL_OPS; i++) {
        char q[160];
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int ti = (int)(x % TH_TABLES);
        switch ((x >> 8) % 4) {
        case 0:
        case 1:
            snprintf(q, sizeof(q), "CREATE TABLE IF NOT EXISTS tt%d (id BIGINT PRIMARY KEY)", ti);
            break;
        case 2:
            snprintf(q, sizeof(q), "ALTER TABLE IF EXISTS tt%d ADD COLUMN IF NOT EXISTS c%d TEXT",
                     ti, (int)((x >> 16) % 4));
            break;
        default: snprintf(q, sizeof(q), "DROP TABLE IF EXISTS tt%d", ti); break;
        }
        th_run(&ddl, s, q);
    }
    atomic_store(&stop, 1);
    int ok = 0;
    for (int i = 0; i < TH_READERS; i++) {
        pthread_join(th[i], NULL);
        if (args[i].unexpected[0]) print_error("reader %d: %s\n", i, args[i].unexpected);
        assert_int_equal(args[i].unexpected[0], 0);
        ok += args[i].ok;
    }
    if (ddl.unexpected[0]) print_error("ddl: %s\n", ddl.unexpected);
    assert_int_equal(ddl.unexpected[0], 0);
    assert_true(ok > 0);
    if (getenv("SQL_TEST_VERBOSE")) {
        for (int i = 0; i < TH_READERS; i++)
            print_message("reader %d: %d ok, %d expected errors\n", i, args[i].ok,
                          args[i].expected_errors);
        print_message("ddl: %d ok, %d expected errors\n", ddl.ok, ddl.expected_errors);
    }
    /* afterwards both nodes answer alike */
    sqlv_session *b = session_on(p.b);
    for (int ti = 0; ti < TH_TABLES; ti++) {
        char q[64];
        snprintf(q, sizeof(q), "SELECT * FROM tt%d ORDER BY id", ti);
        char *ra = run(s, q), *rb = run(b, q);
        if (strcmp(ra, rb) != 0) print_error("A:\n%s\nB:\n%s\n", ra, rb);
        assert_string_equal(ra, rb);
        free(ra);
        free(rb);
    }
    sqlv_session_close(b);
    sqlv_session_close(s);
    close_pair(&p);
}

/* Out of memory at every allocation while a changed catalog is loaded and
** declared: the statement fails cleanly and the next one works. */
static void test_reload_alloc_failures(void **state) {
    pair p;
    (void)state;
    open_pair(&p);
    sqlv_session *a = session(&p.f), *b = session_on(p.b);
    EXPECT(a, "CREATE TABLE f0 (id INT PRIMARY KEY, v TEXT); INSERT INTO f0 VALUES (1, 'x')",
           "C CREATE TABLE\nC INSERT 0 1\n");
    EXPECT(b, "SELECT v FROM f0", "D v:25\nR x\nC SELECT 1\n");
    for (int n = 0; n < 300; n++) {
        char q[128];
        snprintf(q, sizeof(q), "ALTER TABLE f0 ADD COLUMN IF NOT EXISTS c%d INT", n % 3);
        free(run(a, q));
        snprintf(q, sizeof(q), "CREATE TABLE IF NOT EXISTS g%d (k INT PRIMARY KEY)", n % 2);
        free(run(a, q));
        snprintf(q, sizeof(q), "DROP TABLE IF EXISTS g%d", (n + 1) % 2);
        free(run(a, q));
        capture c;
        memset(&c, 0, sizeof(c));
        sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
        const char *sel = "SELECT v FROM f0 WHERE id = 1";
        base_alloc_fail_after(n);
        (void)sqlv_session_exec(b, sel, strlen(sel), &sink);
        base_alloc_fail_after(-1);
        base_buf_free(&c.out);
        assert_int_equal(sqlv_session_status(b), 'I');
        EXPECT(b, "SELECT v FROM f0 WHERE id = 1", "D v:25\nR x\nC SELECT 1\n");
    }
    sqlv_session_close(a);
    sqlv_session_close(b);
    close_pair(&p);
}

int main(void) {
    base_log_set_level(BASE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_across),
        cmocka_unit_test(test_drop_across),
        cmocka_unit_test(test_add_column_across),
        cmocka_unit_test(test_prepared_across),
        cmocka_unit_test(test_ddl_conflicts),
        cmocka_unit_test(test_random_interleavings),
        cmocka_unit_test(test_threads_across),
        cmocka_unit_test(test_reload_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
