/*
** tests/sql/test_upsert.c: INSERT ... ON CONFLICT and RETURNING (sql/upsert.c)
** with PostgreSQL's semantics, in process: DO NOTHING (with and without a
** target), DO UPDATE with excluded and WHERE, a unique index as the
** target, multi-row sources, the row affected twice (21000), a target
** matching no constraint (42P10), RETURNING on INSERT/UPDATE/DELETE (*,
** expressions, zero rows), and statement atomicity (an error midway leaves
** nothing, in a block and outside one).
** Transcript format: tests/sql/sql_harness.h.
*/
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sql.h"
#include "tests/sql/sql_harness.h"

static void test_do_nothing(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE kv (k INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO kv VALUES (1, 'a'), (2, 'b')", "C INSERT 0 2\n");
    EXPECT(s, "INSERT INTO kv VALUES (2, 'x'), (3, 'c') ON CONFLICT (k) DO NOTHING",
           "C INSERT 0 1\n");
    EXPECT(s, "INSERT INTO kv VALUES (1, 'x') ON CONFLICT DO NOTHING", "C INSERT 0 0\n");
    EXPECT(s, "INSERT INTO kv (v, k) VALUES ('d', 4) ON CONFLICT ON CONSTRAINT kv_pkey DO NOTHING",
           "C INSERT 0 1\n");
    /* the same key twice in one statement: the second one is skipped */
    EXPECT(s, "INSERT INTO kv VALUES (5, 'e'), (5, 'f') ON CONFLICT DO NOTHING", "C INSERT 0 1\n");
    EXPECT(s, "SELECT k, v FROM kv ORDER BY k",
           "D k:23,v:25\nR 1|a\nR 2|b\nR 3|c\nR 4|d\nR 5|e\nC SELECT 5\n");
    /* a source query, and a value that the column converts ('6' to 6) */
    EXPECT(s, "INSERT INTO kv SELECT k + 5, v FROM kv WHERE k >= 1 ON CONFLICT (k) DO NOTHING",
           "C INSERT 0 5\n");
    EXPECT(s, "INSERT INTO kv VALUES ('6', 'z') ON CONFLICT (k) DO NOTHING", "C INSERT 0 0\n");
    EXPECT(s, "SELECT count(*) FROM kv", "D count:20\nR 10\nC SELECT 1\n");
    /* fewer values than columns without a column list: the first ones */
    EXPECT(s, "INSERT INTO kv VALUES (20) ON CONFLICT DO NOTHING RETURNING k, v",
           "D k:23,v:25\nR 20|NULL\nC INSERT 0 1\n");
    expect_error(s, "INSERT INTO kv (k, v) VALUES (21) ON CONFLICT DO NOTHING", "42601");
    expect_error(s, "INSERT INTO kv VALUES (22, 'a', 3) ON CONFLICT DO NOTHING", "42601");
    EXPECT(s, "INSERT INTO KV (K, V) VALUES (21, 'u') ON CONFLICT (K) DO NOTHING RETURNING v",
           "D v:25\nR u\nC INSERT 0 1\n");
    expect_error(s, "INSERT INTO nope VALUES (1) ON CONFLICT DO NOTHING", "42P01");
    expect_error(s, "UPDATE nope SET a = 1 RETURNING a", "42P01");
    expect_error(s, "INSERT INTO kv VALUES (1, 'a') ON CONFLICT (k) DO SOMETHING", "42601");
    expect_error(s, "INSERT INTO kv VALUES (1, 'a') RETURNING", "42601");
    /* NOT NULL holds for the proposed row even when it conflicts (23502 as
    ** PostgreSQL, which checks it before looking for a conflict) */
    EXPECT(s, "CREATE TABLE nn (k INT PRIMARY KEY, v TEXT NOT NULL, w INT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO nn VALUES (1, 'a', 1)", "C INSERT 0 1\n");
    expect_error(s, "INSERT INTO nn VALUES (1, NULL, 1) ON CONFLICT DO NOTHING", "23502");
    expect_error(s, "INSERT INTO nn VALUES (1, NULL, 1) ON CONFLICT (k) DO NOTHING", "23502");
    expect_error(s, "INSERT INTO nn (k) VALUES (1) ON CONFLICT (k) DO NOTHING", "23502");
    expect_error(s, "INSERT INTO nn VALUES (2, NULL, 1) ON CONFLICT DO NOTHING", "23502");
    expect_error(s, "INSERT INTO nn VALUES (1, NULL, 1) ON CONFLICT (k) DO UPDATE SET w = 5",
                 "23502");
    EXPECT(s, "INSERT INTO nn VALUES (1, 'b', 2), (3, 'c', 3) ON CONFLICT DO NOTHING",
           "C INSERT 0 1\n");
    EXPECT(s, "SELECT k, v, w FROM nn ORDER BY k", "D k:23,v:25,w:23\nR 1|a|1\nR 3|c|3\nC SELECT 2\n");
    /* CHECK too */
    EXPECT(s, "CREATE TABLE cn (k INT PRIMARY KEY, v INT CHECK (v > 0))", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO cn VALUES (1, 1)", "C INSERT 0 1\n");
    expect_error(s, "INSERT INTO cn VALUES (1, -1) ON CONFLICT DO NOTHING", "23514");
    expect_error(s, "INSERT INTO cn VALUES (1, -1) ON CONFLICT (k) DO UPDATE SET v = 5", "23514");
    EXPECT(s, "INSERT INTO cn VALUES (1, 2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
           "C INSERT 0 1\n");
    EXPECT(s, "SELECT v FROM cn", "D v:23\nR 2\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_do_update(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE c (k INT PRIMARY KEY, n INT, note TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO c VALUES (1, 1, 'one')", "C INSERT 0 1\n");
    EXPECT(s,
           "INSERT INTO c VALUES (1, 5, 'x'), (2, 7, 'two') ON CONFLICT (k) DO UPDATE SET n = c.n "
           "+ excluded.n, note = excluded.note || '!'",
           "C INSERT 0 2\n");
    EXPECT(s, "SELECT k, n, note FROM c ORDER BY k",
           "D k:23,n:23,note:25\nR 1|6|x!\nR 2|7|two\nC SELECT 2\n");
    /* WHERE: a conflict whose row fails it is neither updated nor counted */
    EXPECT(s,
           "INSERT INTO c VALUES (1, 100, 'a'), (2, 100, 'b') ON CONFLICT (k) DO UPDATE SET n = "
           "excluded.n WHERE c.n < 7",
           "C INSERT 0 1\n");
    EXPECT(s, "SELECT k, n FROM c ORDER BY k", "D k:23,n:23\nR 1|100\nR 2|7\nC SELECT 2\n");
    /* the same row twice: 21000, and nothing of the statement stays */
    EXPECT(s,
           "INSERT INTO c VALUES (3, 1, 'new'), (3, 2, 'again') ON CONFLICT (k) DO UPDATE SET n "
           "= excluded.n",
           "E 21000 ON CONFLICT DO UPDATE command cannot affect row a second time\n");
    EXPECT(s,
           "INSERT INTO c VALUES (1, 1, 'x'), (1, 2, 'y') ON CONFLICT (k) DO UPDATE SET n = "
           "excluded.n",
           "E 21000 ON CONFLICT DO UPDATE command cannot affect row a second time\n");
    EXPECT(s, "SELECT k, n FROM c ORDER BY k", "D k:23,n:23\nR 1|100\nR 2|7\nC SELECT 2\n");
    /* no target with DO UPDATE, a target that matches no constraint */
    expect_error(s, "INSERT INTO c VALUES (1, 1, 'x') ON CONFLICT DO UPDATE SET n = 1", "42601");
    EXPECT(s, "INSERT INTO c VALUES (1, 1, 'x') ON CONFLICT (n) DO NOTHING",
           "E 42P10 there is no unique or exclusion constraint matching the ON CONFLICT "
           "specification\n");
    expect_error(s, "INSERT INTO c VALUES (1, 1, 'x') ON CONFLICT ON CONSTRAINT nope DO NOTHING",
                 "42704");
    expect_error(s,
                 "INSERT INTO c VALUES (1, 1, 'x') ON CONFLICT (k) DO UPDATE SET n = excluded.zz",
                 "42703");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_unique_index(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE u (id INT PRIMARY KEY, email TEXT UNIQUE, hits INT)",
           "C CREATE TABLE\n");
    EXPECT(s, "CREATE TABLE h (v TEXT, w INT)", "C CREATE TABLE\n");
    EXPECT(s, "CREATE UNIQUE INDEX h_v ON h (v)", "C CREATE INDEX\n");
    EXPECT(s, "INSERT INTO u VALUES (1, 'a@x', 0)", "C INSERT 0 1\n");
    EXPECT(s,
           "INSERT INTO u VALUES (2, 'a@x', 1) ON CONFLICT (email) DO UPDATE SET hits = u.hits + "
           "excluded.hits",
           "C INSERT 0 1\n");
    EXPECT(s, "SELECT id, email, hits FROM u", "D id:23,email:25,hits:23\nR 1|a@x|1\nC SELECT 1\n");
    /* no target: any unique violation is skipped */
    EXPECT(s,
           "INSERT INTO u VALUES (3, 'a@x', 0), (1, 'b@x', 0), (4, NULL, 0) ON CONFLICT DO "
           "NOTHING",
           "C INSERT 0 1\n");
    EXPECT(s, "INSERT INTO u VALUES (5, 'c@x', 0) ON CONFLICT ON CONSTRAINT u_email_key DO NOTHING",
           "C INSERT 0 1\n");
    /* a table without a primary key, its unique index the target */
    EXPECT(s, "INSERT INTO h VALUES ('p', 1), ('q', 1)", "C INSERT 0 2\n");
    EXPECT(s,
           "INSERT INTO h VALUES ('p', 5), ('r', 5) ON CONFLICT (v) DO UPDATE SET w = excluded.w",
           "C INSERT 0 2\n");
    EXPECT(s, "SELECT v, w FROM h ORDER BY v", "D v:25,w:23\nR p|5\nR q|1\nR r|5\nC SELECT 3\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_returning(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE r (id INT PRIMARY KEY, v TEXT, n INT)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO r VALUES (1, 'a', 10), (2, 'b', 20) RETURNING *",
           "D id:23,v:25,n:23\nR 1|a|10\nR 2|b|20\nC INSERT 0 2\n");
    EXPECT(s, "INSERT INTO r (id, v) VALUES ('3', 'c') RETURNING id, n, id * 2 AS dbl",
           "D id:23,n:23,dbl:20\nR 3|NULL|6\nC INSERT 0 1\n");
    EXPECT(s, "UPDATE r SET n = n + 1 WHERE id <= 2 RETURNING id, n",
           "D id:23,n:23\nR 1|11\nR 2|21\nC UPDATE 2\n");
    EXPECT(s, "UPDATE r SET n = 0 WHERE id > 100 RETURNING id", "D id:23\nC UPDATE 0\n");
    /* a moved key: the row after the change */
    EXPECT(s, "UPDATE r SET id = 30 WHERE id = 3 RETURNING id, v",
           "D id:23,v:25\nR 30|c\nC UPDATE 1\n");
    EXPECT(s, "DELETE FROM r WHERE id = 2 RETURNING *",
           "D id:23,v:25,n:23\nR 2|b|21\nC DELETE 1\n");
    EXPECT(s, "DELETE FROM r WHERE id = 2 RETURNING id", "D id:23\nC DELETE 0\n");
    EXPECT(s,
           "INSERT INTO r VALUES (1, 'z', 0), (4, 'd', 4) ON CONFLICT (id) DO UPDATE SET v = "
           "excluded.v RETURNING id, v",
           "D id:23,v:25\nR 1|z\nR 4|d\nC INSERT 0 2\n");
    EXPECT(s, "INSERT INTO r VALUES (1, 'y', 0) ON CONFLICT DO NOTHING RETURNING id",
           "D id:23\nC INSERT 0 0\n");
    EXPECT(s, "SELECT id, v, n FROM r ORDER BY id",
           "D id:23,v:25,n:23\nR 1|z|11\nR 4|d|4\nR 30|c|NULL\nC SELECT 3\n");
    /* in a block: the rows are its own, and ROLLBACK undoes them */
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT(s, "DELETE FROM r RETURNING id", "D id:23\nR 1\nR 4\nR 30\nC DELETE 3\n");
    EXPECT(s, "SELECT count(*) FROM r", "D count:20\nR 0\nC SELECT 1\n");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    EXPECT(s, "SELECT count(*) FROM r", "D count:20\nR 3\nC SELECT 1\n");
    /* a table created in the same block */
    EXPECT(s,
           "BEGIN; CREATE TABLE nb (id INT PRIMARY KEY, v TEXT); INSERT INTO nb VALUES (1, 'a') "
           "ON CONFLICT (id) DO UPDATE SET v = excluded.v RETURNING v; INSERT INTO nb VALUES (1, "
           "'b') ON CONFLICT (id) DO UPDATE SET v = nb.v || excluded.v RETURNING v; COMMIT",
           "C BEGIN\nC CREATE TABLE\nD v:25\nR a\nC INSERT 0 1\nD v:25\nR ab\nC INSERT 0 1\n"
           "C COMMIT\n");
    sqlv_session_close(s);
    close_all(&f);
}

/* An error midway leaves nothing of the statement, outside and inside a
** block (where the block survives through a savepoint). */
static void test_atomicity(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE a (id INT PRIMARY KEY, e TEXT UNIQUE, n INT NOT NULL)",
           "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO a VALUES (1, 'x', 1)", "C INSERT 0 1\n");
    /* the third row's NOT NULL fails after two rows were written */
    expect_error(s,
                 "INSERT INTO a VALUES (2, 'y', 2), (1, 'z', 5), (3, 'w', NULL) ON CONFLICT (id) "
                 "DO UPDATE SET n = excluded.n",
                 "23502");
    EXPECT(s, "SELECT id, e, n FROM a ORDER BY id", "D id:23,e:25,n:23\nR 1|x|1\nC SELECT 1\n");
    /* a unique violation not covered by the target is an error */
    expect_error(s, "INSERT INTO a VALUES (5, 'q', 1), (6, 'x', 1) ON CONFLICT (id) DO NOTHING",
                 "23505");
    expect_error(s, "UPDATE a SET n = NULL RETURNING id", "23502");
    EXPECT(s, "SELECT id, e, n FROM a ORDER BY id", "D id:23,e:25,n:23\nR 1|x|1\nC SELECT 1\n");
    EXPECT(s, "BEGIN; SAVEPOINT p", "C BEGIN\nC SAVEPOINT\n");
    expect_error(s, "INSERT INTO a VALUES (7, 'k', 1), (8, 'k', 1) RETURNING id", "23505");
    EXPECT(s, "ROLLBACK TO p", "C ROLLBACK\n");
    EXPECT(s, "INSERT INTO a VALUES (9, 'm', 9) ON CONFLICT DO NOTHING RETURNING e",
           "D e:25\nR m\nC INSERT 0 1\n");
    EXPECT(s, "COMMIT", "C COMMIT\n");
    EXPECT(s, "SELECT id FROM a ORDER BY id", "D id:23\nR 1\nR 9\nC SELECT 2\n");
    sqlv_session_close(s);
    close_all(&f);
}

static int c_params(void *ctx, int n, const uint32_t *oids) {
    base_buf *b = &((capture *)ctx)->out;
    base_buf_printf(b, "P");
    for (int i = 0; i < n; i++)
        base_buf_printf(b, "%s%u", i ? "," : " ", oids[i]);
    return base_buf_printf(b, "\n"), 0;
}
static int c_no_data(void *ctx) { return base_buf_printf(&((capture *)ctx)->out, "X\n"), 0; }

/* Parse, Describe statement, Bind (text values), Describe portal, Execute,
** Execute again, Sync; the transcript (P params, X no data) is compared. */
static void ext_expect(sqlv_session *s, const char *sql, int n, const char *const *values,
                       const char *want) {
    capture c;
    memset(&c, 0, sizeof(c));
    sqlv_sink k = {.ctx = &c,
                   .row_description = c_desc,
                   .data_row = c_row,
                   .command_complete = c_tag,
                   .empty_query = c_empty,
                   .error = c_error,
                   .notice = c_notice,
                   .parameter_description = c_params,
                   .no_data = c_no_data};
    sqlv_cell cells[8];
    for (int i = 0; i < n; i++)
        cells[i] = (sqlv_cell){values[i], values[i] ? strlen(values[i]) : 0};
    if (sqlv_session_prepare(s, "", sql, strlen(sql), 0, NULL, &k) == SQLV_OK &&
        sqlv_session_describe(s, 'S', "", &k) == SQLV_OK &&
        sqlv_session_bind(s, "", "", n, cells, 0, NULL, 0, NULL, &k) == SQLV_OK &&
        sqlv_session_describe(s, 'P', "", &k) == SQLV_OK &&
        sqlv_session_execute(s, "", 0, &k) == SQLV_OK)
        (void)sqlv_session_execute(s, "", 0, &k);
    (void)sqlv_session_sync(s, &k);
    base_buf_append_byte(&c.out, 0);
    if (strcmp((const char *)c.out.data, want) != 0)
        print_error("query: %s\nwant:\n%sgot:\n%s", sql, want, (const char *)c.out.data);
    assert_string_equal((const char *)c.out.data, want);
    base_buf_free(&c.out);
}

/* Parse/Bind/Describe/Execute: the statement runs with the portal's
** parameters at its first Describe or Execute; a second Execute repeats
** only the tag. Describe of the statement reports an expression as text
** (no row yet), as for any statement. */
static void test_extended_protocol(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE e (id INT PRIMARY KEY, v TEXT, n INT)", "C CREATE TABLE\n");
    const char *a[] = {"1", "one", "5"};
    ext_expect(s,
               "INSERT INTO e VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET n = e.n + $3 "
               "RETURNING id, v, n * 2 AS twice",
               3, a,
               "P 23,25,23\nD id:23,v:25,twice:25\nD id:23,v:25,twice:20\nR 1|one|10\n"
               "C INSERT 0 1\nC INSERT 0 1\n");
    ext_expect(s,
               "INSERT INTO e VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET n = e.n + $3 "
               "RETURNING id, v, n * 2 AS twice",
               3, a, "P 23,25,23\nD id:23,v:25,twice:25\nD id:23,v:25,twice:20\nR 1|one|20\n"
               "C INSERT 0 1\nC INSERT 0 1\n");
    const char *b[] = {"1"};
    ext_expect(s, "UPDATE e SET v = v || '!' WHERE id = $1 RETURNING v", 1, b,
               "P 23\nD v:25\nD v:25\nR one!\nC UPDATE 1\nC UPDATE 1\n");
    ext_expect(s, "INSERT INTO e VALUES ($1, 'x', 0) ON CONFLICT DO NOTHING", 1, b,
               "P 23\nX\nX\nC INSERT 0 0\nC INSERT 0 0\n");
    ext_expect(s, "DELETE FROM e WHERE id = $1 RETURNING *", 1, b,
               "P 23\nD id:23,v:25,n:23\nD id:23,v:25,n:23\nR 1|one!|10\nC DELETE 1\n"
               "C DELETE 1\n");
    /* an error at the run: the implicit block rolls back at Sync */
    const char *c2[] = {"7", "7"};
    ext_expect(s, "INSERT INTO e VALUES ($1, 'a', 1), ($2, 'b', 2) ON CONFLICT (id) DO UPDATE "
                  "SET n = 0 RETURNING id",
               2, c2,
               "P 23,23\nD id:23\nE 21000 ON CONFLICT DO UPDATE command cannot affect row a "
               "second time\n");
    EXPECT(s, "SELECT count(*) FROM e", "D count:20\nR 0\nC SELECT 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

/* Out of memory at every allocation point in turn: each statement either
** happens whole or not at all, and the session stays usable. */
static void test_alloc_failures(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE TABLE o (id INT PRIMARY KEY, v TEXT UNIQUE)", "C CREATE TABLE\n");
    static const char *const qs[] = {
        "INSERT INTO o VALUES (1, 'a'), (2, 'b') ON CONFLICT (id) DO UPDATE SET v = excluded.v "
        "RETURNING *",
        "UPDATE o SET v = v || '!' RETURNING id, v",
        "DELETE FROM o WHERE id >= 1 RETURNING v",
    };
    static const char *const after[] = {"R 1|a\nR 2|b\n", "R 1|x!\n", ""};
    static const char *const tags[] = {"C INSERT 0 2\n", "C UPDATE 1\n", "C DELETE 1\n"};
    for (size_t qi = 0; qi < sizeof(qs) / sizeof(qs[0]); qi++) {
        bool completed = false;
        for (int n = 0; n < 300 && !completed; n++) {
            free(run(s, "DELETE FROM o; INSERT INTO o VALUES (1, 'x')"));
            capture c;
            memset(&c, 0, sizeof(c));
            sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL,
                              NULL};
            base_alloc_fail_after(n);
            (void)sqlv_session_exec(s, qs[qi], strlen(qs[qi]), &sink);
            base_alloc_fail_after(-1);
            base_buf_append_byte(&c.out, 0);
            completed = strstr((const char *)c.out.data, tags[qi]) != NULL;
            base_buf_free(&c.out);
            assert_int_equal(sqlv_session_status(s), 'I');
            char *got = run(s, "SELECT id, v FROM o ORDER BY id");
            const char *rows = strchr(got, '\n') + 1; /* past the description */
            char want[64];
            snprintf(want, sizeof(want), "%sC SELECT %d\n", completed ? after[qi] : "R 1|x\n",
                     completed ? (qi == 0 ? 2 : qi == 1 ? 1 : 0) : 1);
            if (strcmp(rows, want) != 0) print_error("%s (fail after %d):\n%s", qs[qi], n, got);
            assert_string_equal(rows, want);
            free(got);
        }
        assert_true(completed);
    }
    /* the extended protocol: Parse, Bind, Describe, Execute under failures,
    ** Sync without */
    static const char *const xq =
        "INSERT INTO o VALUES ($1, 'p') ON CONFLICT (id) DO UPDATE SET v = excluded.v || $2 "
        "RETURNING id, v";
    bool completed = false;
    for (int n = 0; n < 400 && !completed; n++) {
        free(run(s, "DELETE FROM o; INSERT INTO o VALUES (1, 'x')"));
        capture c;
        memset(&c, 0, sizeof(c));
        sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
        sqlv_cell v[2] = {{"1", 1}, {"q", 1}};
        base_alloc_fail_after(n);
        if (sqlv_session_prepare(s, "", xq, strlen(xq), 0, NULL, &sink) == SQLV_OK &&
            sqlv_session_bind(s, "", "", 2, v, 0, NULL, 0, NULL, &sink) == SQLV_OK &&
            sqlv_session_describe(s, 'P', "", &sink) == SQLV_OK)
            (void)sqlv_session_execute(s, "", 0, &sink);
        base_alloc_fail_after(-1);
        (void)sqlv_session_sync(s, &sink);
        base_buf_append_byte(&c.out, 0);
        completed = strstr((const char *)c.out.data, "R 1|pq\nC INSERT 0 1\n") != NULL;
        base_buf_free(&c.out);
        assert_int_equal(sqlv_session_status(s), 'I');
        char *got = run(s, "SELECT id, v FROM o");
        const char *want = completed ? "D id:23,v:25\nR 1|pq\nC SELECT 1\n"
                                     : "D id:23,v:25\nR 1|x\nC SELECT 1\n";
        if (strcmp(got, want) != 0) print_error("extended (fail after %d):\n%s", n, got);
        assert_string_equal(got, want);
        free(got);
    }
    assert_true(completed);
    sqlv_session_close(s);
    close_all(&f);
}

int main(void) {
    base_log_set_level(BASE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_do_nothing),  cmocka_unit_test(test_do_update),
        cmocka_unit_test(test_unique_index), cmocka_unit_test(test_returning),
        cmocka_unit_test(test_atomicity), cmocka_unit_test(test_extended_protocol),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
