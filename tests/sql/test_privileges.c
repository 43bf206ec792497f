/*
** tests/sql/test_privileges.c: privileges (sql/privileges.c; docs/security.md
** "Authorization"): a user without grants is denied SELECT, INSERT,
** UPDATE, DELETE, TRUNCATE, CREATE TABLE, DROP TABLE, CREATE INDEX and SET
** CLUSTER SETTING with 42501 and nothing changes (row counts checked);
** grants through a role work; REVOKE (of a privilege or of the role)
** takes effect in an open session at its next statement; ALL; a table's
** owner; admin bypass; GRANT ON DATABASE; SHOW GRANTS; a prepared
** statement checked again after a REVOKE; grantors, REVOKE ... CASCADE
** (2BP01 without it); column privileges; privileges on sequences;
** REFERENCES (a FOREIGN KEY's check) and TRIGGER, pg_class.relacl; a
** sequence's owner (ALTER, DROP, OWNER TO); DROP ROLE of a role privileges
** name (2BP01); has_*_privilege and pg_has_role; pg_class.relowner and
** ALTER TABLE ... OWNER TO; the TRUNCATE privilege; REASSIGN OWNED and
** DROP OWNED; the range statements and range_events are
** admins' only. The transcript
** format is test_sql.c's (D/R/C/E/N/Q lines).
*/
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>

#include "tests/sql/sql_harness.h"

#define DENIED(s, q, table) EXPECT((s), (q), "E 42501 permission denied for table " table "\n")

/* root's count of the rows of table. */
static void expect_count(sqlv_session *root, const char *table, const char *n) {
    char q[128], want[160];
    snprintf(q, sizeof q, "SELECT count(*) FROM %s", table);
    snprintf(want, sizeof want, "D count:20\nR %s\nC SELECT 1\n", n);
    EXPECT(root, q, want);
}

/* root: accounts with two rows, user app, role reader. */
static void setup(fixture *f, sqlv_session **root, sqlv_session **app) {
    open_all(f);
    *root = session(f);
    EXPECT(*root, "CREATE TABLE accounts (id INT PRIMARY KEY, balance INT)", "C CREATE TABLE\n");
    EXPECT(*root, "INSERT INTO accounts VALUES (1, 100), (2, 200)", "C INSERT 0 2\n");
    EXPECT(*root, "CREATE USER app", "C CREATE ROLE\n");
    EXPECT(*root, "CREATE ROLE reader", "C CREATE ROLE\n");
    *app = session_as(f, "app");
}

static void teardown(fixture *f, sqlv_session *root, sqlv_session *app) {
    sqlv_session_close(app);
    sqlv_session_close(root);
    close_all(f);
}

static void test_denied_changes_nothing(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    DENIED(app, "SELECT * FROM accounts", "accounts");
    DENIED(app, "SELECT count(*) FROM accounts", "accounts");
    DENIED(app, "INSERT INTO accounts VALUES (3, 300)", "accounts");
    DENIED(app, "UPDATE accounts SET balance = 0", "accounts");
    DENIED(app, "DELETE FROM accounts", "accounts");
    DENIED(app, "TRUNCATE accounts", "accounts");
    DENIED(app, "DROP TABLE accounts", "accounts");
    DENIED(app, "CREATE INDEX accounts_balance ON accounts (balance)", "accounts");
    DENIED(app, "ALTER TABLE accounts ADD COLUMN note TEXT", "accounts");
    EXPECT(app, "CREATE TABLE mine (a INT)",
           "E 42501 permission denied for database defaultdb (CREATE)\n");
    expect_error(app, "SET CLUSTER SETTING range_max_bytes = '128MiB'", "42501");
    /* inside a block: the block fails, nothing is written */
    EXPECT(app, "BEGIN", "C BEGIN\n");
    DENIED(app, "INSERT INTO accounts VALUES (4, 400)", "accounts");
    EXPECT(app, "ROLLBACK", "C ROLLBACK\n");
    /* system catalogs stay readable */
    EXPECT(app, "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'accounts'",
           "D count:20\nR 1\nC SELECT 1\n");
    expect_count(root, "accounts", "2");
    EXPECT(root, "SELECT balance FROM accounts ORDER BY id",
           "D balance:23\nR 100\nR 200\nC SELECT 2\n");
    EXPECT(root, "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'mine'",
           "D count:20\nR 0\nC SELECT 1\n");
    teardown(&f, root, app);
}

static void test_role_grant_and_revoke(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    DENIED(app, "SELECT id FROM accounts", "accounts"); /* caches "nothing" first */
    EXPECT(root, "GRANT SELECT ON accounts TO reader", "C GRANT\n");
    EXPECT(root, "GRANT reader TO app", "C GRANT ROLE\n");
    /* the same open session, its next statement */
    EXPECT(app, "SELECT id FROM accounts ORDER BY id", "D id:23\nR 1\nR 2\nC SELECT 2\n");
    DENIED(app, "INSERT INTO accounts VALUES (3, 300)", "accounts");
    /* revoking the privilege from the role */
    EXPECT(root, "REVOKE SELECT ON TABLE accounts FROM reader", "C REVOKE\n");
    DENIED(app, "SELECT id FROM accounts", "accounts");
    /* again, then revoking the membership */
    EXPECT(root, "GRANT SELECT ON accounts TO reader", "C GRANT\n");
    EXPECT(app, "SELECT count(*) FROM accounts", "D count:20\nR 2\nC SELECT 1\n");
    EXPECT(root, "REVOKE reader FROM app", "C REVOKE ROLE\n");
    DENIED(app, "SELECT count(*) FROM accounts", "accounts");
    /* REVOKE ALL from the role */
    EXPECT(root, "GRANT reader TO app", "C GRANT ROLE\n");
    EXPECT(app, "SELECT count(*) FROM accounts", "D count:20\nR 2\nC SELECT 1\n");
    EXPECT(root, "REVOKE ALL ON accounts FROM reader", "C REVOKE\n");
    DENIED(app, "SELECT count(*) FROM accounts", "accounts");
    /* unknown roles, tables and privilege words */
    expect_error(root, "GRANT SELECT ON accounts TO nobody", "42704");
    expect_error(root, "GRANT SELECT ON missing TO reader", "42P01");
    expect_error(root, "GRANT FLY ON accounts TO reader", "0LP01");
    expect_error(root, "GRANT CREATE ON accounts TO reader", "0LP01");
    /* only admins and owners grant */
    expect_error(app, "GRANT SELECT ON accounts TO app", "42501");
    teardown(&f, root, app);
}

static void test_all_and_writes(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    EXPECT(root, "GRANT INSERT ON accounts TO app", "C GRANT\n");
    /* INSERT alone: no SELECT needed for a plain INSERT, but a WHERE reads */
    EXPECT(app, "INSERT INTO accounts VALUES (3, 300)", "C INSERT 0 1\n");
    DENIED(app, "DELETE FROM accounts WHERE id = 3", "accounts");
    EXPECT(root, "GRANT ALL PRIVILEGES ON accounts TO app", "C GRANT\n");
    EXPECT(app, "UPDATE accounts SET balance = balance + 1 WHERE id = 1", "C UPDATE 1\n");
    EXPECT(app, "DELETE FROM accounts WHERE id = 2", "C DELETE 1\n");
    EXPECT(app, "SELECT id, balance FROM accounts ORDER BY id",
           "D id:23,balance:23\nR 1|101\nR 3|300\nC SELECT 2\n");
    EXPECT(root, "REVOKE DELETE, UPDATE ON accounts FROM app", "C REVOKE\n");
    DENIED(app, "DELETE FROM accounts", "accounts");
    expect_count(root, "accounts", "2");
    teardown(&f, root, app);
}

static void test_owner_and_database(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    sqlv_session *bob = user_session(&f, root, "bob");
    EXPECT(root, "GRANT CREATE ON DATABASE defaultdb TO app", "C GRANT\n");
    EXPECT(app, "CREATE TABLE mine (a INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(app, "INSERT INTO mine VALUES (1)", "C INSERT 0 1\n");
    EXPECT(app, "SELECT a FROM mine", "D a:23\nR 1\nC SELECT 1\n");
    EXPECT(app, "CREATE INDEX mine_a ON mine (a)", "C CREATE INDEX\n");
    DENIED(bob, "SELECT a FROM mine", "mine");
    DENIED(bob, "DROP TABLE mine", "mine");
    /* the owner grants on its table */
    EXPECT(app, "GRANT SELECT ON mine TO bob", "C GRANT\n");
    EXPECT(bob, "SELECT a FROM mine", "D a:23\nR 1\nC SELECT 1\n");
    EXPECT(app, "REVOKE SELECT ON mine FROM bob", "C REVOKE\n");
    DENIED(bob, "SELECT a FROM mine", "mine");
    /* created in a block: owned at commit */
    EXPECT(app, "BEGIN; CREATE TABLE mine2 (a INT); INSERT INTO mine2 VALUES (5); COMMIT",
           "C BEGIN\nC CREATE TABLE\nC INSERT 0 1\nC COMMIT\n");
    EXPECT(app, "SELECT a FROM mine2", "D a:23\nR 5\nC SELECT 1\n");
    EXPECT(app, "DROP TABLE mine, mine2", "C DROP TABLE\n");
    /* CREATE revoked */
    EXPECT(root, "REVOKE CREATE ON DATABASE defaultdb FROM app", "C REVOKE\n");
    expect_error(app, "CREATE TABLE mine3 (a INT)", "42501");
    sqlv_session_close(bob);
    teardown(&f, root, app);
}

static void test_admin_bypass(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    DENIED(app, "SELECT count(*) FROM accounts", "accounts");
    EXPECT(root, "GRANT admin TO app", "C GRANT ROLE\n");
    EXPECT(app, "SELECT count(*) FROM accounts", "D count:20\nR 2\nC SELECT 1\n");
    EXPECT(app, "CREATE TABLE t2 (a INT)", "C CREATE TABLE\n");
    EXPECT(app, "DROP TABLE t2", "C DROP TABLE\n");
    EXPECT(app, "SET CLUSTER SETTING split_qps_threshold = 3000", "C SET CLUSTER SETTING\n");
    EXPECT(root, "REVOKE admin FROM app", "C REVOKE ROLE\n");
    DENIED(app, "SELECT count(*) FROM accounts", "accounts");
    teardown(&f, root, app);
}

/* The admin statements (docs/security.md, "Admin operations"): range
** operations, the range overview and event log, cluster settings (set,
** reset and read: they hold the host-based rules). A user who may read
** the table is still refused (42501) before anything runs;
** a member of admin passes the check (this engine has no cluster, so the
** range statements then stop at 0A000, as root's do). */
static void test_range_statements_need_admin(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    EXPECT(root, "GRANT ALL ON accounts TO app", "C GRANT\n");
    static const char *const admin_only[] = {
        "SHOW RANGES",
        "SHOW RANGES FROM TABLE accounts",
        "SHOW RANGES FROM DATABASE defaultdb",
        "SHOW RANGE FROM TABLE accounts FOR ROW (1)",
        "SELECT * FROM meridian_internal.range_events",
        "SELECT count(*) FROM meridian_internal.range_events",
        "ALTER TABLE accounts SPLIT AT VALUES (2)",
        "ALTER TABLE accounts UNSPLIT AT VALUES (2)",
        "ALTER TABLE accounts UNSPLIT ALL",
        "ALTER RANGE 1 RELOCATE LEASE TO 2",
        "ALTER RANGE 1 RELOCATE VOTERS FROM 1 TO 2",
        "SET CLUSTER SETTING range_max_bytes = '128MiB'",
        "RESET CLUSTER SETTING range_max_bytes",
        "SHOW CLUSTER SETTING range_max_bytes",
        "SHOW CLUSTER SETTING server.host_based_authentication.configuration",
        "SHOW CLUSTER SETTING no_such_setting", /* no hint which names exist */
        "SHOW CLUSTER SETTINGS",
        "SHOW ALL CLUSTER SETTINGS",
    };
    char *before = run(root, "SHOW CLUSTER SETTING range_max_bytes"); /* owner: here */
    for (size_t i = 0; i < sizeof admin_only / sizeof admin_only[0]; i++)
        expect_error(app, admin_only[i], "42501");
    EXPECT(root, "SHOW CLUSTER SETTING range_max_bytes", before);
    expect_count(root, "accounts", "2");
    /* root and admins pass the check */
    expect_error(root, "SHOW RANGES", "0A000");
    EXPECT(root, "SELECT count(*) FROM meridian_internal.range_events",
           "D count:20\nR 0\nC SELECT 1\n");
    EXPECT(root, "GRANT admin TO app", "C GRANT ROLE\n");
    expect_error(app, "SHOW RANGES", "0A000");
    expect_error(app, "ALTER RANGE 1 RELOCATE LEASE TO 2", "0A000");
    EXPECT(app, "SELECT count(*) FROM meridian_internal.range_events",
           "D count:20\nR 0\nC SELECT 1\n");
    EXPECT(app, "SHOW CLUSTER SETTING range_max_bytes", before);
    expect_error(app, "SHOW CLUSTER SETTING no_such_setting", "42704");
    char *all = run(app, "SHOW ALL CLUSTER SETTINGS"); /* owner: here */
    assert_non_null(strstr(all, "\nR range_max_bytes|"));
    free(all);
    EXPECT(root, "REVOKE admin FROM app", "C REVOKE ROLE\n");
    expect_error(app, "SHOW RANGES", "42501");
    expect_error(app, "SHOW CLUSTER SETTING range_max_bytes", "42501");
    free(before);
    teardown(&f, root, app);
}

static void test_show_grants(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    EXPECT(root, "GRANT SELECT, INSERT ON accounts TO reader", "C GRANT\n");
    EXPECT(root, "GRANT ALL ON accounts TO app", "C GRANT\n");
    const char *head = "D database_name:25,schema_name:25,table_name:25,grantee:25,"
                       "privilege_type:25,is_grantable:16\n";
    char want[1024];
    snprintf(want, sizeof want,
             "%sR defaultdb|public|accounts|admin|ALL|t\n"
             "R defaultdb|public|accounts|root|ALL|t\n"
             "R defaultdb|public|accounts|app|ALL|f\n"
             "R defaultdb|public|accounts|reader|INSERT|f\n"
             "R defaultdb|public|accounts|reader|SELECT|f\n"
             "C SHOW GRANTS\n",
             head);
    EXPECT(root, "SHOW GRANTS ON accounts", want);
    snprintf(want, sizeof want,
             "%sR defaultdb|public|accounts|reader|INSERT|f\n"
             "R defaultdb|public|accounts|reader|SELECT|f\n"
             "C SHOW GRANTS\n",
             head);
    EXPECT(app, "SHOW GRANTS ON TABLE accounts FOR reader", want);
    snprintf(want, sizeof want,
             "%sR defaultdb|NULL|NULL|admin|ALL|t\n"
             "R defaultdb|NULL|NULL|root|ALL|t\n"
             "C SHOW GRANTS\n",
             head);
    EXPECT(root, "SHOW GRANTS ON DATABASE defaultdb", want);
    expect_error(root, "SHOW GRANTS ON missing", "42P01");
    teardown(&f, root, app);
}

/* A statement prepared (extended protocol) while the privilege held is
** checked again at its next execution after a REVOKE: the new catalog
** version expires it and SQLite prepares it again through the authorizer. */
static void test_prepared_statement_rechecked(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    EXPECT(root, "GRANT SELECT ON accounts TO app", "C GRANT\n");
    capture c;
    memset(&c, 0, sizeof(c));
    sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL, NULL};
    const char *q = "SELECT count(*) FROM accounts";
    assert_int_equal(sqlv_session_prepare(app, "p", q, strlen(q), 0, NULL, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_bind(app, "", "p", 0, NULL, 0, NULL, 0, NULL, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_execute(app, "", 0, &sink), SQLV_OK);
    assert_int_equal(sqlv_session_sync(app, &sink), SQLV_OK);
    EXPECT(root, "REVOKE SELECT ON accounts FROM app", "C REVOKE\n");
    int rc = sqlv_session_bind(app, "", "p", 0, NULL, 0, NULL, 0, NULL, &sink);
    if (rc == SQLV_OK) rc = sqlv_session_execute(app, "", 0, &sink);
    assert_int_equal(rc, SQLV_ERR_FAILED);
    assert_int_equal(sqlv_session_sync(app, &sink), SQLV_OK);
    base_buf_append_byte(&c.out, 0);
    const char *want = "R 2\nC SELECT 1\nE 42501 permission denied for table accounts\n";
    if (strcmp((const char *)c.out.data, want) != 0)
        print_error("got:\n%s", (const char *)c.out.data);
    assert_string_equal((const char *)c.out.data, want);
    base_buf_free(&c.out);
    teardown(&f, root, app);
}

/* WITH GRANT OPTION: its holder grants (and revokes) that privilege on that
** table, nothing more; REVOKE GRANT OPTION FOR keeps the privilege; SHOW
** GRANTS and information_schema.table_privileges say who may grant. */
static void test_grant_option(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    sqlv_session *bob = user_session(&f, root, "bob"), *carol = user_session(&f, root, "carol");
    /* without the option: 42501, nothing granted */
    EXPECT(root, "GRANT SELECT ON accounts TO app", "C GRANT\n");
    expect_error(app, "GRANT SELECT ON accounts TO bob", "42501");
    DENIED(bob, "SELECT id FROM accounts", "accounts");
    /* with it: SELECT only, on accounts only */
    EXPECT(root, "GRANT SELECT, INSERT ON accounts TO app WITH GRANT OPTION", "C GRANT\n");
    EXPECT(app, "GRANT SELECT ON accounts TO bob", "C GRANT\n");
    EXPECT(bob, "SELECT count(*) FROM accounts", "D count:20\nR 2\nC SELECT 1\n");
    expect_error(app, "GRANT UPDATE ON accounts TO bob", "42501");
    expect_error(app, "GRANT ALL ON accounts TO bob", "42501");
    expect_error(bob, "GRANT SELECT ON accounts TO carol", "42501"); /* bob has no option */
    EXPECT(root, "CREATE TABLE other (a INT PRIMARY KEY)", "C CREATE TABLE\n");
    expect_error(app, "GRANT SELECT ON other TO bob", "42501");
    expect_error(root, "GRANT SELECT ON accounts TO public WITH GRANT OPTION", "0LP01");
    /* a holder passes the option on; through a role it counts too */
    EXPECT(app, "GRANT INSERT ON accounts TO reader WITH GRANT OPTION", "C GRANT\n");
    EXPECT(root, "GRANT reader TO carol", "C GRANT ROLE\n");
    EXPECT(carol, "GRANT INSERT ON accounts TO bob", "C GRANT\n");
    EXPECT(bob, "INSERT INTO accounts VALUES (3, 300)", "C INSERT 0 1\n");
    /* a holder may revoke what it may grant */
    EXPECT(app, "REVOKE SELECT ON accounts FROM bob", "C REVOKE\n");
    DENIED(bob, "SELECT id FROM accounts", "accounts");
    const char *head = "D database_name:25,schema_name:25,table_name:25,grantee:25,"
                       "privilege_type:25,is_grantable:16\n";
    char want[1024];
    snprintf(want, sizeof want,
             "%sR defaultdb|public|accounts|app|INSERT|t\n"
             "R defaultdb|public|accounts|app|SELECT|t\n"
             "C SHOW GRANTS\n",
             head);
    EXPECT(root, "SHOW GRANTS ON accounts FOR app", want);
    EXPECT_ROWS(root,
                "SELECT grantor, grantee, table_catalog, table_schema, table_name, "
                "privilege_type, is_grantable FROM information_schema.table_privileges "
                "WHERE table_name = 'accounts' ORDER BY grantee, privilege_type",
                "R root|app|defaultdb|public|accounts|INSERT|YES\n"
                "R root|app|defaultdb|public|accounts|SELECT|YES\n"
                "R reader|bob|defaultdb|public|accounts|INSERT|NO\n"
                "R app|reader|defaultdb|public|accounts|INSERT|YES\n");
    /* REVOKE GRANT OPTION FOR: the privilege stays, the option goes */
    EXPECT(root, "REVOKE GRANT OPTION FOR SELECT ON accounts FROM app", "C REVOKE\n");
    EXPECT(app, "SELECT count(*) FROM accounts", "D count:20\nR 3\nC SELECT 1\n");
    expect_error(app, "GRANT SELECT ON accounts TO bob", "42501");
    EXPECT(app, "GRANT INSERT ON accounts TO bob", "C GRANT\n"); /* INSERT's option stays */
    snprintf(want, sizeof want,
             "%sR defaultdb|public|accounts|app|INSERT|t\n"
             "R defaultdb|public|accounts|app|SELECT|f\n"
             "C SHOW GRANTS\n",
             head);
    EXPECT(root, "SHOW GRANTS ON accounts FOR app", want);
    /* the grantor is recorded (PostgreSQL's): carol granted through reader */
    EXPECT_ROWS(root,
                "SELECT grantor, grantee, privilege_type, is_grantable FROM "
                "information_schema.table_privileges WHERE table_name = 'accounts' ORDER BY "
                "grantee, grantor, privilege_type",
                "R root|app|INSERT|YES\nR root|app|SELECT|NO\nR app|bob|INSERT|NO\n"
                "R reader|bob|INSERT|NO\nR app|reader|INSERT|YES\n");
    /* revoking the privilege takes its option with it: app's grants depend on
    ** it (2BP01, nothing changed) unless CASCADE, which takes them too, and
    ** what reader granted with the option it loses */
    EXPECT(root, "REVOKE INSERT ON accounts FROM app",
           "E 2BP01 dependent privileges exist\n");
    EXPECT(root, "REVOKE GRANT OPTION FOR INSERT ON accounts FROM app RESTRICT",
           "E 2BP01 dependent privileges exist\n");
    EXPECT(bob, "INSERT INTO accounts VALUES (4, 400)", "C INSERT 0 1\n");
    EXPECT(root, "REVOKE INSERT ON accounts FROM app CASCADE", "C REVOKE\n");
    EXPECT_ROWS(root,
                "SELECT grantor, grantee, privilege_type, is_grantable FROM "
                "information_schema.table_privileges WHERE table_name = 'accounts' ORDER BY "
                "grantee, grantor, privilege_type",
                "R root|app|SELECT|NO\n");
    DENIED(bob, "INSERT INTO accounts VALUES (5, 500)", "accounts");
    DENIED(carol, "INSERT INTO accounts VALUES (5, 500)", "accounts");
    EXPECT(root, "GRANT INSERT ON accounts TO app", "C GRANT\n");
    expect_error(app, "GRANT INSERT ON accounts TO bob", "42501");
    /* two grantors, two grants: a holder's REVOKE takes only its own; an
    ** admin's (or the owner's) takes every grantor's (docs/security.md) */
    EXPECT(root, "GRANT SELECT ON accounts TO app WITH GRANT OPTION", "C GRANT\n");
    EXPECT(app, "GRANT SELECT ON accounts TO carol", "C GRANT\n");
    EXPECT(root, "GRANT SELECT ON accounts TO carol", "C GRANT\n");
    const char *carol_rows = "SELECT grantor FROM information_schema.table_privileges WHERE "
                             "table_name = 'accounts' AND grantee = 'carol' ORDER BY grantor";
    EXPECT_ROWS(root, carol_rows, "R app\nR root\n");
    EXPECT(app, "REVOKE SELECT ON accounts FROM carol", "C REVOKE\n");
    EXPECT_ROWS(root, carol_rows, "R root\n");
    EXPECT(carol, "SELECT count(*) FROM accounts", "D count:20\nR 4\nC SELECT 1\n");
    EXPECT(app, "GRANT SELECT ON accounts TO carol", "C GRANT\n");
    EXPECT(root, "REVOKE SELECT ON accounts FROM carol", "C REVOKE\n");
    EXPECT_ROWS(root, carol_rows, "");
    EXPECT(root, "REVOKE GRANT OPTION FOR SELECT ON accounts FROM app", "C REVOKE\n");
    expect_error(root, "REVOKE GRANT OPTION SELECT ON accounts FROM app", "42601");
    expect_error(root, "GRANT SELECT ON accounts TO app WITH ADMIN OPTION", "42601");
    /* an owner grants with or without the option, and shows as grantor */
    EXPECT(root, "GRANT CREATE ON DATABASE defaultdb TO carol", "C GRANT\n");
    EXPECT(carol, "CREATE TABLE notes (id INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(carol, "GRANT SELECT ON notes TO bob WITH GRANT OPTION", "C GRANT\n");
    EXPECT(bob, "GRANT SELECT ON notes TO app", "C GRANT\n");
    expect_error(bob, "REVOKE ALL ON notes FROM carol", "42501"); /* not the owner's rights */
    EXPECT_ROWS(root,
                "SELECT grantor, grantee, privilege_type, is_grantable FROM "
                "information_schema.table_privileges WHERE table_name = 'notes' AND "
                "privilege_type = 'SELECT' ORDER BY grantee",
                "R bob|app|SELECT|NO\nR carol|bob|SELECT|YES\nR carol|carol|SELECT|YES\n");
    sqlv_session_close(bob);
    sqlv_session_close(carol);
    teardown(&f, root, app);
}

/* Column privileges (PostgreSQL's): GRANT SELECT (a, b), UPDATE (c),
** INSERT (a, b) ON t; a statement touching another column fails 42501
** "permission denied for table t"; count(*) needs one column; a table
** REVOKE takes the column privileges too; information_schema.
** column_privileges. Results checked against PostgreSQL 15. */
static void test_column_privileges(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    EXPECT(root, "CREATE TABLE emp (id INT PRIMARY KEY, name TEXT, salary INT, note TEXT)",
           "C CREATE TABLE\n");
    EXPECT(root, "INSERT INTO emp VALUES (1, 'a', 10, 'x')", "C INSERT 0 1\n");
    EXPECT(root, "GRANT SELECT (id, name), UPDATE (note), INSERT (id, name) ON emp TO app",
           "C GRANT\n");
    EXPECT(app, "SELECT id, name FROM emp", "D id:23,name:25\nR 1|a\nC SELECT 1\n");
    DENIED(app, "SELECT salary FROM emp", "emp");
    DENIED(app, "SELECT * FROM emp", "emp");
    EXPECT(app, "SELECT count(*) FROM emp", "D count:20\nR 1\nC SELECT 1\n");
    DENIED(app, "SELECT id FROM emp WHERE salary > 0", "emp");
    EXPECT(app, "UPDATE emp SET note = 'y' WHERE id = 1", "C UPDATE 1\n");
    DENIED(app, "UPDATE emp SET salary = 1", "emp");
    DENIED(app, "UPDATE emp SET note = 'z' WHERE salary = 10", "emp");
    EXPECT(app, "INSERT INTO emp (id, name) VALUES (2, 'b')", "C INSERT 0 1\n");
    EXPECT(app, "INSERT INTO public.emp AS e (name, id) VALUES ('c', 3)", "C INSERT 0 1\n");
    DENIED(app, "INSERT INTO emp (id, name, salary) VALUES (4, 'd', 1)", "emp");
    DENIED(app, "INSERT INTO emp VALUES (4, 'd', 1, 'n')", "emp");
    DENIED(app, "DELETE FROM emp", "emp");
    expect_count(root, "emp", "3");
    EXPECT(root, "SELECT note FROM emp WHERE id = 1", "D note:25\nR y\nC SELECT 1\n");
    /* a role's column privileges count too, and ALL (cols) */
    EXPECT(root, "GRANT ALL (salary) ON emp TO reader", "C GRANT\n");
    EXPECT(root, "GRANT reader TO app", "C GRANT ROLE\n");
    EXPECT(app, "SELECT salary FROM emp WHERE id = 1", "D salary:23\nR 10\nC SELECT 1\n");
    EXPECT(root, "REVOKE reader FROM app", "C REVOKE ROLE\n");
    DENIED(app, "SELECT salary FROM emp", "emp");
    const char *q = "SELECT grantor, grantee, table_name, column_name, privilege_type, "
                    "is_grantable FROM information_schema.column_privileges WHERE table_name = "
                    "'emp' AND grantee = 'app' ORDER BY column_name, privilege_type";
    EXPECT_ROWS(root, q,
                "R root|app|emp|id|INSERT|NO\nR root|app|emp|id|SELECT|NO\n"
                "R root|app|emp|name|INSERT|NO\nR root|app|emp|name|SELECT|NO\n"
                "R root|app|emp|note|UPDATE|NO\n");
    EXPECT(root, "GRANT SELECT ON emp TO app", "C GRANT\n");
    EXPECT_ROWS(root, q,
                "R root|app|emp|id|INSERT|NO\nR root|app|emp|id|SELECT|NO\n"
                "R root|app|emp|name|INSERT|NO\nR root|app|emp|name|SELECT|NO\n"
                "R root|app|emp|note|SELECT|NO\nR root|app|emp|note|UPDATE|NO\n"
                "R root|app|emp|salary|SELECT|NO\n");
    EXPECT(app, "SELECT salary FROM emp WHERE id = 1", "D salary:23\nR 10\nC SELECT 1\n");
    /* a table's REVOKE takes its columns' privileges of that kind too */
    EXPECT(root, "REVOKE SELECT ON emp FROM app", "C REVOKE\n");
    EXPECT_ROWS(root, q,
                "R root|app|emp|id|INSERT|NO\nR root|app|emp|name|INSERT|NO\n"
                "R root|app|emp|note|UPDATE|NO\n");
    DENIED(app, "SELECT id FROM emp", "emp");
    /* a column grant option passes that column on, with the grantor recorded */
    EXPECT(root, "GRANT SELECT (name) ON emp TO app WITH GRANT OPTION", "C GRANT\n");
    EXPECT(root, "CREATE USER bob", "C CREATE ROLE\n");
    EXPECT(app, "GRANT SELECT (name) ON emp TO bob", "C GRANT\n");
    expect_error(app, "GRANT SELECT (salary) ON emp TO bob", "42501");
    EXPECT_ROWS(root,
                "SELECT grantor, column_name, privilege_type FROM "
                "information_schema.column_privileges WHERE grantee = 'bob'",
                "R app|name|SELECT\n");
    EXPECT(root, "REVOKE SELECT (name) ON emp FROM app", "E 2BP01 dependent privileges exist\n");
    EXPECT(root, "REVOKE SELECT (name) ON emp FROM app CASCADE", "C REVOKE\n");
    EXPECT_ROWS(root,
                "SELECT grantor, column_name, privilege_type FROM "
                "information_schema.column_privileges WHERE grantee = 'bob'",
                "");
    /* a column left to its DEFAULT needs no privilege */
    EXPECT(root, "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT, at INT DEFAULT 42)",
           "C CREATE TABLE\n");
    EXPECT(root, "GRANT INSERT (id, body), SELECT (id, at) ON notes TO app", "C GRANT\n");
    EXPECT(app, "INSERT INTO notes (id, body) VALUES (1, 'b')", "C INSERT 0 1\n");
    EXPECT(app, "SELECT id, at FROM notes", "D id:23,at:23\nR 1|42\nC SELECT 1\n");
    DENIED(app, "INSERT INTO notes VALUES (2, 'c', 1)", "notes");
    DENIED(app, "INSERT INTO notes (id, body) VALUES (3, 'd') RETURNING body", "notes");
    /* errors as PostgreSQL's */
    expect_error(root, "GRANT SELECT (nope) ON emp TO app", "42703");
    expect_error(root, "GRANT DELETE (id) ON emp TO app", "0LP01");
    expect_error(root, "GRANT SELECT (id) ON DATABASE defaultdb TO app", "0LP01");
    teardown(&f, root, app);
}

/* Sequences: USAGE (nextval, currval, lastval), SELECT (currval, lastval),
** UPDATE (nextval, setval); ON SEQUENCE, ON ALL SEQUENCES IN SCHEMA public,
** ON [TABLE] s; 42501 otherwise; a creator owns its sequence, a SERIAL column's is its
** table owner's. Checked against PostgreSQL 15. */
static void test_sequence_privileges(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    EXPECT(root, "CREATE SEQUENCE s1", "C CREATE SEQUENCE\n");
    EXPECT(root, "CREATE SEQUENCE s2", "C CREATE SEQUENCE\n");
    EXPECT(app, "SELECT nextval('s1')", "E 42501 permission denied for sequence s1\n");
    EXPECT(app, "SELECT currval('s1')", "E 42501 permission denied for sequence s1\n");
    EXPECT(app, "SELECT setval('s1', 5)", "E 42501 permission denied for sequence s1\n");
    EXPECT(root, "GRANT USAGE ON SEQUENCE s1 TO app", "C GRANT\n");
    EXPECT(app, "SELECT nextval('s1')", "D nextval:20\nR 1\nC SELECT 1\n");
    EXPECT(app, "SELECT currval('s1')", "D currval:20\nR 1\nC SELECT 1\n");
    EXPECT(app, "SELECT setval('s1', 5)", "E 42501 permission denied for sequence s1\n");
    EXPECT(root, "GRANT UPDATE ON SEQUENCE s1 TO app", "C GRANT\n");
    EXPECT(root, "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO app", "C GRANT\n");
    EXPECT(app, "SELECT setval('s1', 5)", "D setval:20\nR 5\nC SELECT 1\n");
    EXPECT(app, "SELECT currval('s2')",
           "E 55000 currval of sequence \"s2\" is not yet defined in this session\n");
    EXPECT(app, "SELECT nextval('s2')", "E 42501 permission denied for sequence s2\n");
    /* DDL on sequences: the database's CREATE; ALTER and DROP the owner's */
    expect_error(app, "ALTER SEQUENCE s1 RESTART", "42501");
    expect_error(app, "DROP SEQUENCE s2", "42501");
    expect_error(app, "CREATE SEQUENCE mine", "42501");
    EXPECT(root, "REVOKE ALL ON SEQUENCE s1 FROM app", "C REVOKE\n");
    EXPECT(app, "SELECT nextval('s1')", "E 42501 permission denied for sequence s1\n");
    /* ON [TABLE] s: what a sequence supports; errors as PostgreSQL's */
    EXPECT(root, "GRANT USAGE ON TABLE s1 TO app", "C GRANT\n");
    EXPECT(app, "SELECT nextval('s1')", "D nextval:20\nR 6\nC SELECT 1\n");
    EXPECT(root, "GRANT ALL ON s2 TO app", "C GRANT\n");
    EXPECT(app, "SELECT nextval('s2')", "D nextval:20\nR 1\nC SELECT 1\n");
    expect_error(root, "GRANT INSERT ON SEQUENCE s1 TO app", "0LP01");
    expect_error(root, "GRANT SELECT (a) ON SEQUENCE s1 TO app", "0LP01");
    expect_error(root, "GRANT USAGE ON ALL SEQUENCES IN SCHEMA nope TO app", "3F000");
    expect_error(root, "GRANT USAGE ON SEQUENCE nope TO app", "42P01");
    expect_error(root, "GRANT USAGE ON accounts TO app", "0LP01");
    /* a creator owns its sequence; a SERIAL column's is its table owner's */
    EXPECT(root, "GRANT CREATE ON DATABASE defaultdb TO app", "C GRANT\n");
    EXPECT(app, "CREATE SEQUENCE mine", "C CREATE SEQUENCE\n");
    EXPECT(app, "SELECT nextval('mine')", "D nextval:20\nR 1\nC SELECT 1\n");
    EXPECT(app, "SELECT setval('mine', 9)", "D setval:20\nR 9\nC SELECT 1\n");
    EXPECT(app, "CREATE TABLE items (id SERIAL PRIMARY KEY, v INT)", "C CREATE TABLE\n");
    EXPECT(app, "INSERT INTO items (v) VALUES (7)", "C INSERT 0 1\n");
    sqlv_session *bob = user_session(&f, root, "bob");
    EXPECT(app, "GRANT INSERT ON items TO bob", "C GRANT\n");
    EXPECT(bob, "INSERT INTO items (v) VALUES (8)",
           "E 42501 permission denied for sequence items_id_seq\n");
    EXPECT(app, "GRANT USAGE ON SEQUENCE items_id_seq TO bob", "C GRANT\n");
    EXPECT(bob, "INSERT INTO items (v) VALUES (8)", "C INSERT 0 1\n");
    EXPECT(bob, "SELECT nextval('mine')", "E 42501 permission denied for sequence mine\n");
    EXPECT(app, "GRANT UPDATE ON SEQUENCE mine TO bob", "C GRANT\n");
    EXPECT(bob, "SELECT nextval('mine')", "D nextval:20\nR 10\nC SELECT 1\n");
    EXPECT(bob, "SELECT lastval()", "E 42501 permission denied for sequence mine\n");
    EXPECT(bob, "SELECT currval('mine')", "E 42501 permission denied for sequence mine\n");
    EXPECT(app, "GRANT SELECT ON SEQUENCE mine TO bob", "C GRANT\n");
    EXPECT(bob, "SELECT currval('mine')", "D currval:20\nR 10\nC SELECT 1\n");
    EXPECT(bob, "SELECT lastval()", "D lastval:20\nR 10\nC SELECT 1\n");
    sqlv_session_close(bob);
    teardown(&f, root, app);
}

/* REFERENCES and TRIGGER (PostgreSQL's): granted, revoked, part of ALL,
** shown by SHOW GRANTS, information_schema and pg_class.relacl (psql's
** \dp); a FOREIGN KEY (kept, not enforced yet) needs REFERENCES on the
** table it names, or on its columns (none named: the primary key's), and a
** denied CREATE TABLE creates nothing. Checked against PostgreSQL 15. */
static void test_references_and_trigger(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    sqlv_session *bob = user_session(&f, root, "bob");
    EXPECT(root, "GRANT CREATE ON DATABASE defaultdb TO app", "C GRANT\n");
    DENIED(app, "CREATE TABLE child (id INT PRIMARY KEY, a INT REFERENCES accounts (id))",
           "accounts");
    DENIED(app, "CREATE TABLE child (id INT PRIMARY KEY, a INT, FOREIGN KEY (a) REFERENCES "
                "public.accounts)",
           "accounts");
    DENIED(app, "CREATE TABLE child (id SERIAL PRIMARY KEY, a INT REFERENCES accounts)",
           "accounts");
    expect_error(root, "SELECT * FROM child", "42P01");
    expect_error(root, "SELECT nextval('child_id_seq')", "42P01");
    /* column REFERENCES: the columns named, or the primary key's */
    EXPECT(root, "GRANT REFERENCES (balance) ON accounts TO app", "C GRANT\n");
    DENIED(app, "CREATE TABLE child (id INT PRIMARY KEY, a INT REFERENCES accounts (id))",
           "accounts");
    EXPECT(root, "REVOKE REFERENCES (balance) ON accounts FROM app", "C REVOKE\n");
    EXPECT(root, "GRANT REFERENCES (id) ON accounts TO app", "C GRANT\n");
    EXPECT(app, "CREATE TABLE child (id INT PRIMARY KEY, a INT REFERENCES accounts (id))",
           "C CREATE TABLE\n");
    EXPECT(app, "CREATE TABLE child2 (id INT PRIMARY KEY, a INT REFERENCES accounts)",
           "C CREATE TABLE\n");
    EXPECT(app, "CREATE TABLE child3 (id INT PRIMARY KEY, a INT REFERENCES child3)",
           "C CREATE TABLE\n"); /* its own table: being created, the creator's */
    EXPECT_ROWS(root,
                "SELECT grantee, column_name, privilege_type FROM "
                "information_schema.column_privileges WHERE table_name = 'accounts'",
                "R app|id|REFERENCES\n");
    /* only the owner, an admin or a holder of the option grants them */
    expect_error(app, "GRANT REFERENCES ON accounts TO bob", "42501");
    expect_error(app, "GRANT TRIGGER ON accounts TO bob", "42501");
    EXPECT_ROWS(root,
                "SELECT count(*) FROM information_schema.table_privileges WHERE grantee = 'bob'",
                "R 0\n");
    EXPECT(root, "GRANT TRIGGER ON accounts TO reader", "C GRANT\n");
    EXPECT(root, "GRANT REFERENCES ON accounts TO app WITH GRANT OPTION", "C GRANT\n");
    EXPECT(app, "GRANT REFERENCES ON accounts TO bob", "C GRANT\n");
    expect_error(app, "GRANT TRIGGER ON accounts TO bob", "42501");
    EXPECT(bob, "CREATE TABLE child4 (a INT REFERENCES accounts)",
           "E 42501 permission denied for database defaultdb (CREATE)\n");
    const char *head = "D database_name:25,schema_name:25,table_name:25,grantee:25,"
                       "privilege_type:25,is_grantable:16\n";
    char want[1024];
    snprintf(want, sizeof want,
             "%sR defaultdb|public|accounts|app|REFERENCES|t\nC SHOW GRANTS\n", head);
    EXPECT(root, "SHOW GRANTS ON accounts FOR app", want);
    EXPECT_ROWS(root,
                "SELECT grantor, grantee, privilege_type, is_grantable FROM "
                "information_schema.table_privileges WHERE table_name = 'accounts' ORDER BY "
                "grantee, privilege_type",
                "R root|app|REFERENCES|YES\nR app|bob|REFERENCES|NO\n"
                "R root|reader|TRIGGER|NO\n");
    EXPECT_ROWS(root, "SELECT relacl FROM pg_class WHERE relname = 'accounts'",
                "R {root=arwdDxt/root,app=x*/root,bob=x/app,reader=t/root}\n");
    EXPECT_ROWS(root, "SELECT relacl FROM pg_class WHERE relname = 'child'",
                "R NULL\n"); /* no grant: the owner's defaults */
    /* the owner holds them too, and ALL includes them */
    EXPECT_ROWS(root,
                "SELECT privilege_type FROM information_schema.table_privileges WHERE "
                "table_name = 'child' AND grantee = 'app' ORDER BY privilege_type",
                "R DELETE\nR INSERT\nR REFERENCES\nR SELECT\nR TRIGGER\nR TRUNCATE\nR UPDATE\n");
    EXPECT(root, "GRANT ALL ON accounts TO bob", "C GRANT\n");
    snprintf(want, sizeof want, "%sR defaultdb|public|accounts|bob|ALL|f\nC SHOW GRANTS\n",
             head);
    EXPECT(root, "SHOW GRANTS ON accounts FOR bob", want);
    EXPECT(root, "REVOKE TRIGGER ON accounts FROM bob", "C REVOKE\n");
    snprintf(want, sizeof want,
             "%sR defaultdb|public|accounts|bob|DELETE|f\n"
             "R defaultdb|public|accounts|bob|DROP|f\n"
             "R defaultdb|public|accounts|bob|INSERT|f\n"
             "R defaultdb|public|accounts|bob|REFERENCES|f\n"
             "R defaultdb|public|accounts|bob|SELECT|f\n"
             "R defaultdb|public|accounts|bob|TRUNCATE|f\n"
             "R defaultdb|public|accounts|bob|UPDATE|f\n"
             "C SHOW GRANTS\n",
             head);
    EXPECT(root, "SHOW GRANTS ON accounts FOR bob", want);
    /* REVOKE: app's option goes, bob's grant from app with it (CASCADE) */
    EXPECT(root, "REVOKE REFERENCES ON accounts FROM app", "E 2BP01 dependent privileges exist\n");
    EXPECT(root, "REVOKE REFERENCES ON accounts FROM app CASCADE", "C REVOKE\n");
    DENIED(app, "CREATE TABLE child5 (a INT REFERENCES accounts)", "accounts"); /* (id) too */
    EXPECT_ROWS(root,
                "SELECT grantor, grantee, privilege_type FROM "
                "information_schema.table_privileges WHERE table_name = 'accounts' AND "
                "privilege_type IN ('REFERENCES', 'TRIGGER') ORDER BY grantee, grantor",
                "R root|bob|REFERENCES\nR root|reader|TRIGGER\n");
    /* errors as PostgreSQL's */
    expect_error(root, "GRANT TRIGGER (id) ON accounts TO app", "0LP01");
    expect_error(root, "GRANT TRIGGER ON DATABASE defaultdb TO app", "0LP01");
    EXPECT(root, "CREATE SEQUENCE s", "C CREATE SEQUENCE\n");
    expect_error(root, "GRANT REFERENCES ON SEQUENCE s TO app", "0LP01");
    sqlv_session_close(bob);
    teardown(&f, root, app);
}

/* A sequence's owner (its creator, or its SERIAL table's owner) alters and
** drops it; anyone else but an admin (or a holder of the database's DROP,
** Meridian's own) gets 42501 "must be owner of sequence s" and nothing
** changes. ALTER SEQUENCE ... OWNER TO moves the ownership and the grants
** the old owner made. Checked against PostgreSQL 15. */
static void test_sequence_owner(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    sqlv_session *bob = user_session(&f, root, "bob"), *carol = user_session(&f, root, "carol");
    EXPECT(root, "CREATE SEQUENCE s_root", "C CREATE SEQUENCE\n");
    EXPECT(root, "GRANT ALL ON SEQUENCE s_root TO app", "C GRANT\n");
    EXPECT(app, "ALTER SEQUENCE s_root INCREMENT BY 10",
           "E 42501 must be owner of sequence s_root\n");
    EXPECT(app, "DROP SEQUENCE s_root", "E 42501 must be owner of sequence s_root\n");
    EXPECT(app, "BEGIN; ALTER SEQUENCE s_root RESTART WITH 50",
           "C BEGIN\nE 42501 must be owner of sequence s_root\n");
    EXPECT(app, "ROLLBACK", "C ROLLBACK\n");
    EXPECT(app, "ALTER SEQUENCE s_root OWNER TO app", "E 42501 must be owner of sequence s_root\n");
    EXPECT(root, "SELECT nextval('s_root'), nextval('s_root')",
           "D nextval:20,nextval:20\nR 1|2\nC SELECT 1\n");
    /* its creator owns it; others may use it, not change it */
    EXPECT(root, "GRANT CREATE ON DATABASE defaultdb TO app", "C GRANT\n");
    EXPECT(app, "CREATE SEQUENCE s_app", "C CREATE SEQUENCE\n");
    EXPECT(app, "ALTER SEQUENCE s_app INCREMENT BY 10", "C ALTER SEQUENCE\n");
    EXPECT(app, "GRANT USAGE ON SEQUENCE s_app TO bob", "C GRANT\n");
    EXPECT(app, "GRANT SELECT ON SEQUENCE s_app TO reader WITH GRANT OPTION", "C GRANT\n");
    EXPECT(bob, "SELECT nextval('s_app')", "D nextval:20\nR 1\nC SELECT 1\n");
    EXPECT(bob, "ALTER SEQUENCE s_app RESTART", "E 42501 must be owner of sequence s_app\n");
    EXPECT(bob, "DROP SEQUENCE s_app", "E 42501 must be owner of sequence s_app\n");
    EXPECT(bob, "DROP SEQUENCE IF EXISTS nope",
           "N sequence \"nope\" does not exist, skipping\nC DROP SEQUENCE\n");
    EXPECT(bob, "SELECT nextval('s_app')", "D nextval:20\nR 11\nC SELECT 1\n");
    /* OWNER TO: an admin gives it to anyone; the owner only to a role of its own */
    EXPECT(app, "ALTER SEQUENCE s_app OWNER TO bob", "E 42501 must be member of role \"bob\"\n");
    EXPECT(root, "ALTER SEQUENCE s_app OWNER TO nobody", "E 42704 role \"nobody\" does not exist\n");
    EXPECT_ROWS(root, "SELECT relacl FROM pg_class WHERE relname = 's_app'",
                "R {app=rwU/app,bob=U/app,reader=r*/app}\n"); /* unchanged */
    EXPECT(root, "ALTER SEQUENCE s_app OWNER TO bob", "C ALTER SEQUENCE\n");
    EXPECT(app, "ALTER SEQUENCE s_app RESTART", "E 42501 must be owner of sequence s_app\n");
    EXPECT(app, "SELECT nextval('s_app')", "E 42501 permission denied for sequence s_app\n");
    EXPECT_ROWS(root, "SELECT relacl FROM pg_class WHERE relname = 's_app'",
                "R {bob=rwU/bob,reader=r*/bob}\n");
    EXPECT(bob, "ALTER SEQUENCE s_app RESTART WITH 5", "C ALTER SEQUENCE\n");
    EXPECT(bob, "SELECT nextval('s_app')", "D nextval:20\nR 5\nC SELECT 1\n");
    EXPECT(root, "GRANT bob TO app", "C GRANT ROLE\n");
    EXPECT(app, "ALTER SEQUENCE s_app INCREMENT BY 1", "C ALTER SEQUENCE\n"); /* through bob */
    EXPECT(app, "ALTER SEQUENCE s_app OWNER TO app", "C ALTER SEQUENCE\n");
    EXPECT(bob, "DROP SEQUENCE s_app", "E 42501 must be owner of sequence s_app\n");
    EXPECT(app, "DROP SEQUENCE s_app", "C DROP SEQUENCE\n");
    /* a SERIAL's sequence is its table owner's, and follows the table */
    EXPECT(app, "CREATE TABLE items (id SERIAL PRIMARY KEY, v INT)", "C CREATE TABLE\n");
    EXPECT(app, "ALTER SEQUENCE items_id_seq RESTART WITH 100", "C ALTER SEQUENCE\n");
    EXPECT(carol, "ALTER SEQUENCE items_id_seq RESTART",
           "E 42501 must be owner of sequence items_id_seq\n");
    expect_error(carol, "ALTER SEQUENCE items_id_seq OWNER TO carol", "42501");
    expect_error(app, "ALTER SEQUENCE items_id_seq OWNER TO carol", "0A000");
    EXPECT(app, "INSERT INTO items (v) VALUES (1) RETURNING id", "D id:23\nR 100\nC INSERT 0 1\n");
    /* Meridian's own: the database's DROP drops any table, and any sequence */
    EXPECT(root, "GRANT DROP ON DATABASE defaultdb TO carol", "C GRANT\n");
    EXPECT(carol, "ALTER SEQUENCE s_root OWNER TO carol",
           "E 42501 must be owner of sequence s_root\n"); /* ownership takes the owner */
    EXPECT(carol, "DROP SEQUENCE s_root", "C DROP SEQUENCE\n");
    /* a role that holds, granted or owns privileges is not dropped (PostgreSQL's
    ** 2BP01): one created again by its name would inherit them */
    expect_error(root, "DROP USER carol", "2BP01");
    expect_error(root, "DROP USER app", "2BP01"); /* owns items */
    EXPECT(root, "DROP ROLE reader", "C DROP ROLE\n"); /* its grants were on s_app, dropped */
    EXPECT(root, "REVOKE DROP ON DATABASE defaultdb FROM carol", "C REVOKE\n");
    sqlv_session_close(carol);
    carol = NULL;
    EXPECT(root, "DROP USER carol", "C DROP ROLE\n");
    sqlv_session_close(bob);
    teardown(&f, root, app);
}

/* has_table_privilege and its kin as PostgreSQL's: every argument form
** ((user,) object, privileges; by name or OID), lists of privileges (any
** held), WITH GRANT OPTION, roles and PUBLIC, owners, admins; the errors
** (42704, 42P01, 22023, 42703, 42809, 3D000, 3F000); NULL for an OID that
** names nothing. Checked against PostgreSQL 15 (tests/sql/slt/17_has_privilege.slt). */
static void test_has_privilege(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    EXPECT(root, "CREATE USER bob", "C CREATE ROLE\n");
    EXPECT(root, "GRANT SELECT ON accounts TO reader", "C GRANT\n");
    EXPECT(root, "GRANT reader TO app", "C GRANT ROLE\n");
    EXPECT(root, "GRANT INSERT ON accounts TO app WITH GRANT OPTION", "C GRANT\n");
    EXPECT(root, "GRANT UPDATE (balance) ON accounts TO bob", "C GRANT\n");
    EXPECT_ROWS(root,
                "SELECT has_table_privilege('app', 'accounts', 'SELECT'), "
                "has_table_privilege('app', 'accounts', 'insert with grant option'), "
                "has_table_privilege('app', 'accounts', 'SELECT WITH GRANT OPTION'), "
                "has_table_privilege('app', 'accounts', 'DELETE'), "
                "has_table_privilege('bob', 'accounts', 'SELECT, DELETE'), "
                "has_table_privilege('bob', 'accounts', ' delete , UPDATE'), "
                "has_table_privilege('public', 'accounts', 'SELECT'), "
                "has_table_privilege('root', 'accounts', 'TRIGGER WITH GRANT OPTION')",
                "R t|t|f|f|f|f|f|t\n");
    /* the session's own user, by OID, through the regclass cast */
    EXPECT_ROWS(app,
                "SELECT has_table_privilege('accounts', 'SELECT'), "
                "has_table_privilege('accounts'::regclass, 'UPDATE'), "
                "has_table_privilege(current_user, 'accounts', 'INSERT WITH GRANT OPTION')",
                "R t|f|t\n");
    EXPECT_ROWS(root,
                "SELECT has_table_privilege(r.oid, c.oid, 'SELECT') FROM pg_class c, pg_roles r "
                "WHERE c.relname = 'accounts' AND r.rolname IN ('app', 'bob') ORDER BY r.rolname",
                "R t\nR f\n");
    EXPECT_ROWS(root, "SELECT has_table_privilege('app', 999999, 'SELECT')", "R NULL\n");
    /* columns: the table's privilege or the column's own */
    EXPECT_ROWS(root,
                "SELECT has_column_privilege('bob', 'accounts', 'balance', 'UPDATE'), "
                "has_column_privilege('bob', 'accounts', 'id', 'UPDATE'), "
                "has_column_privilege('app', 'accounts', 'id', 'SELECT'), "
                "has_column_privilege('bob', 'accounts', 2, 'UPDATE'), "
                "has_column_privilege('bob', 'accounts', 9, 'UPDATE'), "
                "has_any_column_privilege('bob', 'accounts', 'UPDATE'), "
                "has_any_column_privilege('bob', 'accounts', 'SELECT')",
                "R t|f|t|t|NULL|t|f\n");
    /* the database, schemas, sequences */
    EXPECT_ROWS(root,
                "SELECT has_database_privilege('app', 'defaultdb', 'CREATE'), "
                "has_database_privilege('app', 'defaultdb', 'CONNECT, TEMP'), "
                "has_schema_privilege('app', 'public', 'CREATE'), "
                "has_schema_privilege('app', 'public', 'USAGE'), "
                "has_schema_privilege('app', 'pg_catalog', 'CREATE')",
                "R f|t|f|t|f\n");
    EXPECT(root, "GRANT CREATE ON DATABASE defaultdb TO app", "C GRANT\n");
    EXPECT_ROWS(app,
                "SELECT has_database_privilege('defaultdb', 'CREATE'), "
                "has_schema_privilege('public', 'CREATE')",
                "R t|t\n");
    EXPECT(root, "CREATE SEQUENCE hs", "C CREATE SEQUENCE\n");
    EXPECT(root, "GRANT USAGE ON SEQUENCE hs TO bob", "C GRANT\n");
    EXPECT(app, "CREATE TABLE mine (id SERIAL PRIMARY KEY, v INT)", "C CREATE TABLE\n");
    EXPECT_ROWS(root,
                "SELECT has_sequence_privilege('bob', 'hs', 'USAGE'), "
                "has_sequence_privilege('bob', 'hs', 'UPDATE'), "
                "has_table_privilege('bob', 'hs', 'SELECT'), "
                "has_sequence_privilege('app', 'mine_id_seq', 'UPDATE WITH GRANT OPTION'), "
                "has_table_privilege('app', 'mine', 'DELETE WITH GRANT OPTION'), "
                "has_table_privilege('bob', 'mine', 'SELECT')",
                "R t|f|f|t|t|f\n");
    /* roles */
    EXPECT_ROWS(root,
                "SELECT pg_has_role('app', 'reader', 'MEMBER'), pg_has_role('bob', 'reader', "
                "'USAGE'), pg_has_role('root', 'reader', 'MEMBER')",
                "R t|f|t\n");
    EXPECT_ROWS(app, "SELECT pg_has_role('reader', 'MEMBER')", "R t\n");
    /* errors, as PostgreSQL's */
    expect_error(root, "SELECT has_table_privilege('nobody', 'accounts', 'SELECT')", "42704");
    expect_error(root, "SELECT has_table_privilege('app', 'missing', 'SELECT')", "42P01");
    expect_error(root, "SELECT has_table_privilege('app', 'accounts', 'FLY')", "22023");
    expect_error(root, "SELECT has_table_privilege('accounts', 'SELECT,')", "22023");
    expect_error(root, "SELECT has_table_privilege('accounts', 'USAGE')", "22023");
    expect_error(root, "SELECT has_column_privilege('accounts', 'nope', 'SELECT')", "42703");
    expect_error(root, "SELECT has_sequence_privilege('accounts', 'USAGE')", "42809");
    expect_error(root, "SELECT has_database_privilege('otherdb', 'CREATE')", "3D000");
    expect_error(root, "SELECT has_schema_privilege('nope', 'USAGE')", "3F000");
    expect_error(root, "SELECT pg_has_role('app', 'nobody', 'MEMBER')", "42704");
    /* a REVOKE shows at the next statement of an open session */
    EXPECT(root, "REVOKE reader FROM app", "C REVOKE ROLE\n");
    EXPECT_ROWS(app, "SELECT has_table_privilege('accounts', 'SELECT')", "R f\n");
    sqlv_session *bob = session_as(&f, "bob");
    EXPECT_ROWS(bob,
                "SELECT has_table_privilege('app', 'accounts', 'INSERT'), "
                "has_table_privilege('accounts', 'INSERT')",
                "R t|f\n");
    sqlv_session_close(bob);
    teardown(&f, root, app);
}

/* pg_class.relowner (psql's \dt Owner) and ALTER TABLE ... OWNER TO with
** PostgreSQL's rules: the owner (or a member of it) gives the table to a
** role it is in that may create tables (42501 otherwise); admins to anyone;
** 42704 an unknown role. The ownership, the grants the old owner made and
** the sequences its columns own follow. Checked against PostgreSQL 15. */
static void test_table_owner_to(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    sqlv_session *bob = user_session(&f, root, "bob"), *carol = user_session(&f, root, "carol");
    EXPECT(root, "GRANT CREATE ON DATABASE defaultdb TO app", "C GRANT\n");
    EXPECT(app, "CREATE TABLE mine (id SERIAL PRIMARY KEY, v INT)", "C CREATE TABLE\n");
    EXPECT(app, "GRANT SELECT ON mine TO reader", "C GRANT\n");
    EXPECT_ROWS(root,
                "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.relname "
                "IN ('accounts', 'mine', 'mine_pkey', 'mine_id_seq') ORDER BY 1",
                "R accounts|root\nR mine|app\nR mine_id_seq|app\nR mine_pkey|app\n");
    EXPECT_ROWS(app, "SHOW TABLES", "R public|accounts|table|root\nR public|mine|table|app\n");
    /* pg_tables, pg_sequences and pg_views agree with relowner */
    EXPECT(app, "CREATE VIEW mine_v AS SELECT v FROM mine", "C CREATE VIEW\n");
    EXPECT_ROWS(root,
                "SELECT tablename, tableowner FROM pg_tables WHERE tablename IN ('accounts', "
                "'mine') UNION ALL SELECT sequencename, sequenceowner FROM pg_sequences UNION ALL "
                "SELECT viewname, viewowner FROM pg_views ORDER BY 1",
                "R accounts|root\nR mine|app\nR mine_id_seq|app\nR mine_v|app\n");
    EXPECT(app, "DROP VIEW mine_v", "C DROP VIEW\n");
    /* refusals change nothing */
    EXPECT(bob, "ALTER TABLE mine OWNER TO bob", "E 42501 must be owner of table mine\n");
    EXPECT(app, "ALTER TABLE mine OWNER TO bob", "E 42501 must be member of role \"bob\"\n");
    EXPECT(app, "ALTER TABLE mine OWNER TO nobody", "E 42704 role \"nobody\" does not exist\n");
    EXPECT(app, "ALTER TABLE missing OWNER TO bob",
           "E 42P01 relation \"missing\" does not exist\n");
    EXPECT(app, "ALTER TABLE IF EXISTS missing OWNER TO bob",
           "N relation \"missing\" does not exist, skipping\nC ALTER TABLE\n");
    EXPECT(root, "GRANT bob TO app", "C GRANT ROLE\n");
    EXPECT(app, "ALTER TABLE mine OWNER TO bob", "E 42501 permission denied for schema public\n");
    EXPECT(app, "ALTER TABLE mine OWNER TO app", "C ALTER TABLE\n"); /* its owner already */
    EXPECT(app, "BEGIN; ALTER TABLE mine OWNER TO root",
           "C BEGIN\nE 42501 must be member of role \"root\"\n");
    EXPECT(app, "ROLLBACK", "C ROLLBACK\n");
    EXPECT_ROWS(root, "SELECT relacl FROM pg_class WHERE relname = 'mine'",
                "R {app=arwdDxt/app,reader=r/app}\n");
    /* the owner gives it to a role it is in that may create tables */
    EXPECT(root, "GRANT CREATE ON DATABASE defaultdb TO bob", "C GRANT\n");
    EXPECT(app, "ALTER TABLE mine OWNER TO bob", "C ALTER TABLE\n");
    EXPECT_ROWS(root, "SELECT relacl FROM pg_class WHERE relname = 'mine'",
                "R {bob=arwdDxt/bob,reader=r/bob}\n");
    EXPECT(bob, "INSERT INTO mine (v) VALUES (1)", "C INSERT 0 1\n");
    /* an admin gives it to anyone; the old owner loses what ownership gave */
    EXPECT(root, "BEGIN; ALTER TABLE mine OWNER TO carol; COMMIT",
           "C BEGIN\nC ALTER TABLE\nC COMMIT\n");
    EXPECT_ROWS(root,
                "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.relname "
                "IN ('mine', 'mine_id_seq') ORDER BY 1",
                "R mine|carol\nR mine_id_seq|carol\n");
    EXPECT_ROWS(root,
                "SELECT tableowner FROM pg_tables WHERE tablename = 'mine' UNION ALL "
                "SELECT sequenceowner FROM pg_sequences WHERE sequencename = 'mine_id_seq'",
                "R carol\nR carol\n");
    DENIED(bob, "SELECT * FROM mine", "mine");
    EXPECT(bob, "ALTER SEQUENCE mine_id_seq RESTART",
           "E 42501 must be owner of sequence mine_id_seq\n");
    EXPECT(carol, "INSERT INTO mine (v) VALUES (2) RETURNING v", "D v:23\nR 2\nC INSERT 0 1\n");
    EXPECT(carol, "ALTER SEQUENCE mine_id_seq RESTART WITH 10", "C ALTER SEQUENCE\n");
    EXPECT(carol, "GRANT SELECT ON mine TO bob", "C GRANT\n");
    EXPECT_ROWS(bob, "SELECT count(*) FROM mine", "R 2\n");
    EXPECT_ROWS(root, "SELECT has_table_privilege('carol', 'mine', 'DELETE WITH GRANT OPTION')",
                "R t\n");
    /* root takes it back: root owns without an owner row */
    EXPECT(root, "ALTER TABLE mine OWNER TO root", "C ALTER TABLE\n");
    EXPECT_ROWS(root, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'mine'",
                "R root\n");
    expect_error(carol, "ALTER TABLE mine OWNER TO carol", "42501");
    sqlv_session_close(carol);
    sqlv_session_close(bob);
    teardown(&f, root, app);
}

/* The TRUNCATE privilege (PostgreSQL's, aclitem letter D): TRUNCATE needs
** it on every table named (DELETE neither needed nor enough), checked
** before any row goes; granted, revoked, part of ALL and of an owner's
** rights; shown by SHOW GRANTS, information_schema, has_table_privilege
** and pg_class.relacl. A DELETE grant never becomes TRUNCATE. */
static void test_truncate_privilege(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    EXPECT(root, "CREATE TABLE other (a INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(root, "INSERT INTO other VALUES (1)", "C INSERT 0 1\n");
    EXPECT(root, "GRANT DELETE ON accounts TO app", "C GRANT\n");
    DENIED(app, "TRUNCATE accounts", "accounts");
    EXPECT(app, "BEGIN", "C BEGIN\n");
    DENIED(app, "TRUNCATE TABLE accounts", "accounts");
    EXPECT(app, "ROLLBACK", "C ROLLBACK\n");
    expect_count(root, "accounts", "2");
    EXPECT_ROWS(root, "SELECT has_table_privilege('app', 'accounts', 'TRUNCATE')", "R f\n");
    /* through a role, and without DELETE */
    EXPECT(root, "GRANT TRUNCATE ON accounts TO reader", "C GRANT\n");
    EXPECT(root, "GRANT reader TO app", "C GRANT ROLE\n");
    EXPECT(root, "REVOKE DELETE ON accounts FROM app", "C REVOKE\n");
    EXPECT_ROWS(root,
                "SELECT has_table_privilege('app', 'accounts', 'TRUNCATE'), "
                "has_table_privilege('app', 'accounts', 'DELETE'), "
                "has_table_privilege('reader', 'accounts', 'TRUNCATE')",
                "R t|f|t\n");
    EXPECT_ROWS(root, "SELECT relacl FROM pg_class WHERE relname = 'accounts'",
                "R {root=arwdDxt/root,reader=D/root}\n");
    EXPECT_ROWS(root,
                "SELECT grantor, grantee, privilege_type, is_grantable FROM "
                "information_schema.table_privileges WHERE table_name = 'accounts'",
                "R root|reader|TRUNCATE|NO\n");
    const char *head = "D database_name:25,schema_name:25,table_name:25,grantee:25,"
                       "privilege_type:25,is_grantable:16\n";
    char want[512];
    snprintf(want, sizeof want,
             "%sR defaultdb|public|accounts|reader|TRUNCATE|f\nC SHOW GRANTS\n", head);
    EXPECT(root, "SHOW GRANTS ON accounts FOR reader", want);
    /* every table named, before any row goes */
    DENIED(app, "TRUNCATE accounts, other", "other");
    expect_count(root, "accounts", "2");
    DENIED(app, "DELETE FROM accounts", "accounts");
    EXPECT(app, "TRUNCATE accounts", "C TRUNCATE TABLE\n");
    expect_count(root, "accounts", "0");
    EXPECT(root, "REVOKE TRUNCATE ON accounts FROM reader", "C REVOKE\n");
    DENIED(app, "TRUNCATE accounts", "accounts");
    /* ALL includes it; so do an owner's rights */
    EXPECT(root, "GRANT ALL ON other TO app", "C GRANT\n");
    snprintf(want, sizeof want, "%sR defaultdb|public|other|app|ALL|f\nC SHOW GRANTS\n", head);
    EXPECT(root, "SHOW GRANTS ON other FOR app", want);
    EXPECT(app, "TRUNCATE other", "C TRUNCATE TABLE\n");
    expect_count(root, "other", "0");
    EXPECT(root, "GRANT CREATE ON DATABASE defaultdb TO app", "C GRANT\n");
    EXPECT(app, "CREATE TABLE mine (a INT); INSERT INTO mine VALUES (1)",
           "C CREATE TABLE\nC INSERT 0 1\n");
    EXPECT(app, "TRUNCATE mine", "C TRUNCATE TABLE\n");
    expect_count(root, "mine", "0");
    /* errors as PostgreSQL's */
    EXPECT(root, "CREATE SEQUENCE s", "C CREATE SEQUENCE\n");
    expect_error(root, "GRANT TRUNCATE ON SEQUENCE s TO app", "0LP01");
    expect_error(root, "GRANT TRUNCATE (id) ON accounts TO app", "0LP01");
    expect_error(root, "GRANT TRUNCATE ON DATABASE defaultdb TO app", "0LP01");
    teardown(&f, root, app);
}

/* REASSIGN OWNED BY ... TO ... (PostgreSQL's): a member of the old and of
** the new owner (or an admin) moves every table, view and sequence the old
** one owns, with the grants it made; refusals (42501, 42704, 2BP01 for
** root) change nothing. */
static void test_reassign_owned(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    EXPECT(root, "CREATE USER bob", "C CREATE ROLE\n");
    sqlv_session *bob = session_as(&f, "bob");
    EXPECT(root, "GRANT CREATE ON DATABASE defaultdb TO app", "C GRANT\n");
    EXPECT(app, "CREATE TABLE mine (id SERIAL PRIMARY KEY, v INT)", "C CREATE TABLE\n");
    EXPECT(app, "CREATE SEQUENCE ms", "C CREATE SEQUENCE\n");
    EXPECT(app, "CREATE VIEW mine_v AS SELECT v FROM mine", "C CREATE VIEW\n");
    EXPECT(app, "GRANT SELECT ON mine TO reader", "C GRANT\n");
    const char *owners = "SELECT relname, pg_get_userbyid(relowner) FROM pg_class WHERE relname "
                         "IN ('accounts', 'mine', 'mine_id_seq', 'mine_v', 'ms') ORDER BY 1";
    const char *before = "R accounts|root\nR mine|app\nR mine_id_seq|app\nR mine_v|app\nR ms|app\n";
    EXPECT(bob, "REASSIGN OWNED BY app TO bob", "E 42501 permission denied to reassign objects\n");
    EXPECT(app, "REASSIGN OWNED BY app TO bob", "E 42501 permission denied to reassign objects\n");
    EXPECT(app, "REASSIGN OWNED BY nobody TO app", "E 42704 role \"nobody\" does not exist\n");
    EXPECT(root, "REASSIGN OWNED BY app TO nobody", "E 42704 role \"nobody\" does not exist\n");
    EXPECT(root, "REASSIGN OWNED BY root TO app",
           "E 2BP01 cannot reassign ownership of objects owned by role root because they are "
           "required by the database system\n");
    expect_error(root, "REASSIGN OWNED app TO bob", "42601");
    expect_error(root, "REASSIGN OWNED BY app", "42601");
    EXPECT_ROWS(root, owners, before);
    /* in a block: undone by ROLLBACK */
    EXPECT(root, "BEGIN; REASSIGN OWNED BY app TO bob; ROLLBACK",
           "C BEGIN\nC REASSIGN OWNED\nC ROLLBACK\n");
    EXPECT_ROWS(root, owners, before);
    EXPECT(root, "GRANT bob TO app", "C GRANT ROLE\n");
    EXPECT(app, "REASSIGN OWNED BY CURRENT_USER TO bob", "C REASSIGN OWNED\n");
    EXPECT_ROWS(root, owners,
                "R accounts|root\nR mine|bob\nR mine_id_seq|bob\nR mine_v|bob\nR ms|bob\n");
    EXPECT_ROWS(root, "SELECT relacl FROM pg_class WHERE relname = 'mine'",
                "R {bob=arwdDxt/bob,reader=r/bob}\n");
    EXPECT(bob, "SELECT nextval('ms')", "D nextval:20\nR 1\nC SELECT 1\n");
    EXPECT(bob, "INSERT INTO mine (v) VALUES (1)", "C INSERT 0 1\n");
    /* nothing owned: nothing to do */
    EXPECT(root, "REASSIGN OWNED BY app, reader TO bob", "C REASSIGN OWNED\n");
    /* back to app by an admin; the privilege on the database stays app's */
    EXPECT(root, "REASSIGN OWNED BY bob TO app", "C REASSIGN OWNED\n");
    EXPECT_ROWS(root, owners, before);
    EXPECT_ROWS(root, "SELECT has_database_privilege('app', 'defaultdb', 'CREATE')", "R t\n");
    sqlv_session_close(bob);
    teardown(&f, root, app);
}

/* DROP OWNED BY ... [CASCADE | RESTRICT] (PostgreSQL's): the tables, views
** and sequences the roles own go (2BP01 while another's view reads one,
** unless CASCADE), every privilege granted to them is revoked (and, as
** REVOKE ... CASCADE, what they granted with it); then DROP ROLE works.
** Refusals change nothing. */
static void test_drop_owned(void **state) {
    (void)state;
    fixture f;
    sqlv_session *root, *app;
    setup(&f, &root, &app);
    EXPECT(root, "CREATE USER bob; CREATE USER carol", "C CREATE ROLE\nC CREATE ROLE\n");
    sqlv_session *bob = session_as(&f, "bob"), *carol = session_as(&f, "carol");
    EXPECT(root, "GRANT CREATE ON DATABASE defaultdb TO carol, bob", "C GRANT\n");
    EXPECT(carol, "CREATE TABLE ct (id SERIAL PRIMARY KEY, v INT)", "C CREATE TABLE\n");
    EXPECT(carol, "INSERT INTO ct (v) VALUES (7)", "C INSERT 0 1\n");
    EXPECT(carol, "CREATE VIEW cv AS SELECT v FROM ct", "C CREATE VIEW\n");
    EXPECT(carol, "CREATE SEQUENCE cs", "C CREATE SEQUENCE\n");
    EXPECT(carol, "GRANT SELECT ON ct TO bob", "C GRANT\n");
    EXPECT(bob, "CREATE VIEW bv AS SELECT v FROM ct", "C CREATE VIEW\n");
    EXPECT(root, "GRANT SELECT ON accounts TO carol WITH GRANT OPTION", "C GRANT\n");
    EXPECT(carol, "GRANT SELECT ON accounts TO bob", "C GRANT\n");
    expect_error(root, "DROP ROLE carol", "2BP01");
    /* refusals */
    EXPECT(app, "DROP OWNED BY carol", "E 42501 permission denied to drop objects\n");
    EXPECT(root, "DROP OWNED BY nobody", "E 42704 role \"nobody\" does not exist\n");
    EXPECT(root, "DROP OWNED BY root",
           "E 2BP01 cannot drop objects owned by role root because they are required by the "
           "database system\n");
    EXPECT(root, "DROP OWNED BY carol",
           "E 2BP01 cannot drop desired object(s) because other objects depend on them\n");
    EXPECT(root, "DROP OWNED BY carol RESTRICT",
           "E 2BP01 cannot drop desired object(s) because other objects depend on them\n");
    expect_error(root, "DROP OWNED carol", "42601");
    /* in a block: undone by ROLLBACK */
    EXPECT(root, "BEGIN; DROP OWNED BY carol CASCADE; ROLLBACK",
           "C BEGIN\nN drop cascades to view bv\nC DROP OWNED\nC ROLLBACK\n");
    expect_count(root, "ct", "1");
    expect_count(root, "bv", "1");
    EXPECT(carol, "SELECT count(*) FROM accounts", "D count:20\nR 2\nC SELECT 1\n");
    EXPECT(bob, "SELECT count(*) FROM accounts", "D count:20\nR 2\nC SELECT 1\n");
    /* CASCADE: bob's view goes too; carol's grants and those made with them */
    EXPECT(root, "DROP OWNED BY carol CASCADE", "N drop cascades to view bv\nC DROP OWNED\n");
    expect_error(root, "SELECT * FROM ct", "42P01");
    expect_error(root, "SELECT * FROM cv", "42P01");
    expect_error(root, "SELECT * FROM bv", "42P01");
    expect_error(root, "SELECT nextval('cs')", "42P01");
    expect_error(root, "SELECT nextval('ct_id_seq')", "42P01");
    DENIED(carol, "SELECT count(*) FROM accounts", "accounts");
    DENIED(bob, "SELECT count(*) FROM accounts", "accounts");
    EXPECT_ROWS(root,
                "SELECT has_database_privilege('carol', 'defaultdb', 'CREATE'), "
                "has_database_privilege('bob', 'defaultdb', 'CREATE')",
                "R f|t\n");
    EXPECT(root, "DROP ROLE carol", "C DROP ROLE\n");
    /* a member drops its own role's objects; RESTRICT with nothing depending */
    EXPECT(bob, "CREATE TABLE bt (a INT)", "C CREATE TABLE\n");
    EXPECT(bob, "DROP OWNED BY CURRENT_USER RESTRICT", "C DROP OWNED\n");
    expect_error(root, "SELECT * FROM bt", "42P01");
    EXPECT(root, "DROP ROLE bob", "C DROP ROLE\n");
    sqlv_session_close(carol);
    sqlv_session_close(bob);
    teardown(&f, root, app);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_denied_changes_nothing),
        cmocka_unit_test(test_role_grant_and_revoke),
        cmocka_unit_test(test_all_and_writes),
        cmocka_unit_test(test_owner_and_database),
        cmocka_unit_test(test_admin_bypass),
        cmocka_unit_test(test_range_statements_need_admin),
        cmocka_unit_test(test_show_grants),
        cmocka_unit_test(test_grant_option),
        cmocka_unit_test(test_prepared_statement_rechecked),
        cmocka_unit_test(test_column_privileges),
        cmocka_unit_test(test_sequence_privileges),
        cmocka_unit_test(test_references_and_trigger),
        cmocka_unit_test(test_sequence_owner),
        cmocka_unit_test(test_has_privilege),
        cmocka_unit_test(test_table_owner_to),
        cmocka_unit_test(test_truncate_privilege),
        cmocka_unit_test(test_reassign_owned),
        cmocka_unit_test(test_drop_owned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
