/*
** EXPLAIN and COPY TO on a 3-node cluster of real processes (issue 8): a
** table split in two by ALTER TABLE ... SPLIT AT; EXPLAIN names the one
** range a point lookup touches on either side of the split and both for a
** full scan (the router's view, sql.h sqlv_admin.ranges); EXPLAIN ANALYZE
** of a write counts its KV requests and shows its commit wait; COPY TO
** STDOUT through another node streams every row across both ranges.
*/
#define NODES 3
#include "e2e_cluster.h"

/* The "ranges: ..." line of an EXPLAIN (owner: caller, base_free). */
static char *ranges_of(PGconn *c, const char *sql) {
    PGresult *r = e2e_exec_status(c, sql, PGRES_TUPLES_OK);
    char *line = NULL;
    for (int i = 0; i < PQntuples(r) && line == NULL; i++) {
        const char *v = strstr(PQgetvalue(r, i, 0), "ranges: ");
        if (v) line = base_strdup(v + strlen("ranges: "));
    }
    if (line == NULL) {
        for (int i = 0; i < PQntuples(r); i++) print_error("%s\n", PQgetvalue(r, i, 0));
        fail_msg("%s: no ranges line", sql);
    }
    PQclear(r);
    printf("%s => ranges: %s\n", sql, line);
    return line;
}

static void test_explain_split_table(void **state) {
    (void)state;
    PGconn *c1 = conn(0), *c2 = conn(1);
    e2e_ok(c1, "CREATE TABLE accts (id INT PRIMARY KEY, balance INT)");
    e2e_ok(c1, "INSERT INTO accts SELECT g, 100 FROM generate_series(1, 40) AS g");
    PGresult *r = e2e_exec_status(c1, "ALTER TABLE accts SPLIT AT VALUES (20)", PGRES_TUPLES_OK);
    PQclear(r);
    char *left = ranges_of(c2, "EXPLAIN SELECT * FROM accts WHERE id = 5");
    char *right = ranges_of(c2, "EXPLAIN SELECT * FROM accts WHERE id = 30");
    char *all = ranges_of(c2, "EXPLAIN SELECT * FROM accts");
    /* one range each side, different; the full scan sees both */
    assert_null(strchr(left, ','));
    assert_null(strchr(right, ','));
    assert_string_not_equal(left, right);
    char both[128];
    unsigned long long a = strtoull(left, NULL, 10), b = strtoull(right, NULL, 10);
    snprintf(both, sizeof both, "%llu, %llu", a < b ? a : b, a < b ? b : a);
    assert_non_null(strstr(all, both));
    base_free(left);
    base_free(right);
    base_free(all);
    /* ANALYZE: it runs (the write lands), with its figures */
    r = e2e_exec_status(c2, "EXPLAIN ANALYZE UPDATE accts SET balance = balance + 1 WHERE id = 30",
                        PGRES_TUPLES_OK);
    bool rows = false, kv = false, wait = false;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *v = PQgetvalue(r, i, 0);
        rows |= strcmp(v, "rows: 1") == 0;
        kv |= strncmp(v, "KV requests: ", 13) == 0 && atoi(v + 13) >= 2;
        wait |= strncmp(v, "commit wait: ", 13) == 0 && strstr(v, "us (epsilon") != NULL;
    }
    PQclear(r);
    assert_true(rows && kv && wait);
    e2e_rows_equal(c1, "SELECT balance FROM accts WHERE id = 30", "101\n");
    e2e_fails(c1, "EXPLAIN (FORMAT JSON) SELECT * FROM accts", "0A000");
    PQfinish(c1);
    PQfinish(c2);
}

static void test_copy_to_across_ranges(void **state) {
    (void)state;
    PGconn *c3 = conn(2);
    PGresult *r = e2e_exec_status(c3, "COPY accts TO STDOUT WITH (FORMAT csv)", PGRES_COPY_OUT);
    PQclear(r);
    char *buf = NULL;
    int n = 0, got;
    long long sum = 0;
    while ((got = PQgetCopyData(c3, &buf, 0)) > 0) {
        n++;
        sum += atoll(strchr(buf, ',') + 1);
        PQfreemem(buf);
    }
    assert_int_equal(got, -1);
    r = PQgetResult(c3);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "COPY 40");
    PQclear(r);
    while ((r = PQgetResult(c3)) != NULL) PQclear(r);
    assert_int_equal(n, 40);
    assert_int_equal(sum, 4001);
    PQfinish(c3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_explain_split_table),
        cmocka_unit_test(test_copy_to_across_ranges),
    };
    return cmocka_run_group_tests(tests, cluster_group_setup, cluster_group_teardown);
}
