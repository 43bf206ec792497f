/*
** tests/sql/test_users.c: users and roles (sql/users.c; docs/security.md
** "Users and roles"): CREATE USER/ROLE (passwords stored as SCRAM-SHA-256
** verifiers that a SCRAM exchange accepts, pre-hashed verifiers kept as
** given, the refusals: 42710, 42939, 0A000, 42601 without echoing the
** password), ALTER, DROP (built-in roles, the current user, memberships
** go too), GRANT/REVOKE of roles (cycles 0LP01, notices), who may do it
** (42501: root and members of admin; a user's own password), transaction
** blocks (rollback forgets, commit keeps), the catalogs (pg_roles,
** pg_user, pg_auth_members, psql's \du, pg_authid for admins only,
** pg_get_userbyid) and sqlv_auth_lookup, the gateway's door. The
** transcript format is test_sql.c's (D/R/C/E/N/Q lines).
*/
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>

#include "encoding/encoding.h"
#include "security/security.h"
#include "tests/sql/sql_harness.h"

/* Rows, errors and notices only (the D and C lines dropped); unlike the
   harness's EXPECT_ROWS it keeps N lines. */
#define EXPECT_RESULT(s, q, want)                                                                  \
    do {                                                                                           \
        char *got_ = result_of(run((s), (q)));                                                     \
        if (strcmp(got_, (want)) != 0)                                                             \
            print_error("query: %s\nwant:\n%sgot:\n%s", (q), (want), got_);                        \
        assert_string_equal(got_, (want));                                                         \
        free(got_);                                                                                \
    } while (0)

static char *result_of(char *t) {
    char *w = t;
    for (char *line = t; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);
        if (line[0] == 'R' || line[0] == 'E' || line[0] == 'N') {
            memmove(w, line, n);
            w += n;
        }
        line += n;
    }
    *w = 0;
    return t;
}

static sqlv_auth_info lookup(fixture *f, const char *user) {
    sqlv_auth_info info;
    assert_int_equal(sqlv_auth_lookup(f->sql, user, &info), SQLV_OK);
    return info;
}

/* A whole SCRAM exchange of a client with password against verifier. */
static int scram_login(const char *verifier, const char *password) {
    sec_scram_verifier v;
    sec_scram_server srv;
    sec_scram_client cli;
    base_buf a = {0}, b = {0};
    assert_int_equal(sec_scram_verifier_parse(verifier, &v), 0);
    assert_int_equal(sec_scram_server_init(&srv, &v, NULL, "c2VydmVybm9uY2U"), 0);
    assert_int_equal(sec_scram_client_init(&cli, "", password, "Y2xpZW50bm9uY2U"), 0);
    int rc = sec_scram_client_step(&cli, NULL, 0, &a);
    assert_int_equal(rc, SEC_SCRAM_CONTINUE);
    rc = sec_scram_server_step(&srv, a.data, a.len, &b);
    assert_int_equal(rc, SEC_SCRAM_CONTINUE);
    base_buf_reset(&a);
    rc = sec_scram_client_step(&cli, b.data, b.len, &a);
    assert_int_equal(rc, SEC_SCRAM_CONTINUE);
    base_buf_reset(&b);
    rc = sec_scram_server_step(&srv, a.data, a.len, &b);
    if (rc == 0) assert_int_equal(sec_scram_client_step(&cli, b.data, b.len, NULL), 0);
    sec_scram_client_clear(&cli);
    base_buf_free(&a);
    base_buf_free(&b);
    return rc;
}

static void no_text(sqlv_session *s, const char *q, const char *secret) {
    char *got = run(s, q);
    if (strstr(got, secret) != NULL) print_error("query: %s\nleaks %s:\n%s", q, secret, got);
    assert_null(strstr(got, secret));
    assert_non_null(strstr(got, "E "));
    free(got);
}

static void test_create(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE USER app WITH PASSWORD 'secret'", "C CREATE ROLE\n");
    sqlv_auth_info a = lookup(&f, "app");
    assert_true(a.exists);
    assert_true(a.can_login);
    assert_false(a.is_admin);
    assert_memory_equal(a.verifier, "SCRAM-SHA-256$4096:", 19);
    assert_int_equal(scram_login(a.verifier, "secret"), 0);
    assert_int_equal(scram_login(a.verifier, "Secret"), SEC_ERR_AUTH);

    expect_error(s, "CREATE USER app", "42710");
    EXPECT(s, "CREATE USER IF NOT EXISTS app",
           "N role \"app\" already exists, skipping\nC CREATE ROLE\n");
    /* a role: NOLOGIN, no password */
    EXPECT(s, "CREATE ROLE reader", "C CREATE ROLE\n");
    a = lookup(&f, "reader");
    assert_true(a.exists);
    assert_false(a.can_login);
    assert_string_equal(a.verifier, "");
    EXPECT(s, "CREATE ROLE writer WITH LOGIN PASSWORD NULL", "C CREATE ROLE\n");
    a = lookup(&f, "writer");
    assert_true(a.can_login);
    assert_string_equal(a.verifier, "");
    EXPECT(s, "CREATE USER nopw NOLOGIN PASSWORD ''",
           "N empty string is not a valid password, clearing password\nC CREATE ROLE\n");
    assert_false(lookup(&f, "nopw").can_login);
    /* a pre-hashed verifier is stored as given (and $$ strings work) */
    char v[SEC_SCRAM_VERIFIER_SIZE_MAX], q[512];
    const uint8_t salt[16] = "0123456789abcdef";
    assert_int_equal(sec_scram_verifier_make("hashed", salt, sizeof salt, 4096, v, sizeof v), 0);
    snprintf(q, sizeof q, "CREATE USER pre ENCRYPTED PASSWORD '%s'", v);
    EXPECT(s, q, "C CREATE ROLE\n");
    assert_string_equal(lookup(&f, "pre").verifier, v);
    assert_int_equal(scram_login(v, "hashed"), 0);
    EXPECT(s, "CREATE USER dollar PASSWORD $$it's$$", "C CREATE ROLE\n");
    assert_int_equal(scram_login(lookup(&f, "dollar").verifier, "it's"), 0);
    EXPECT(s, "CREATE USER quote PASSWORD 'it''s'", "C CREATE ROLE\n");
    assert_int_equal(scram_login(lookup(&f, "quote").verifier, "it's"), 0);
    /* names: folded unless quoted */
    EXPECT(s, "CREATE USER Bob", "C CREATE ROLE\n");
    EXPECT(s, "CREATE USER \"Carol\"", "C CREATE ROLE\n");
    assert_true(lookup(&f, "bob").exists);
    assert_false(lookup(&f, "Bob").exists);
    assert_true(lookup(&f, "Carol").exists);
    assert_false(lookup(&f, "carol").exists);
    assert_false(lookup(&f, "nosuch").exists);
    assert_false(lookup(&f, "").exists);
    /* refusals */
    expect_error(s, "CREATE USER root", "42710");
    expect_error(s, "CREATE ROLE admin", "42710");
    expect_error(s, "CREATE USER pg_monitor", "42939");
    expect_error(s, "CREATE USER public", "42939");
    expect_error(s, "CREATE USER node", "42939");
    expect_error(s, "CREATE USER current_user", "42939");
    expect_error(s, "CREATE USER x SUPERUSER", "0A000");
    expect_error(s, "CREATE USER x VALID UNTIL '2030-01-01'", "0A000");
    expect_error(s, "CREATE USER x PASSWORD 'md5d41d8cd98f00b204e9800998ecf8427e'", "0A000");
    expect_error(s, "CREATE USER x PASSWORD 'p\xc3\xa4ss'", "0A000");
    expect_error(s, "CREATE USER x UNENCRYPTED PASSWORD 'a'", "0A000");
    expect_error(s, "CREATE USER x PASSWORD 'a' PASSWORD 'b'", "42601");
    expect_error(s, "CREATE USER x LOGIN NOLOGIN", "42601");
    expect_error(s, "CREATE USER", "42601");
    expect_error(s, "CREATE USER \"\"", "42601");
    expect_error(s,
                 "CREATE USER aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                 "42622");
    no_text(s, "CREATE USER x WITH PASSWORD 'hunter2' 'again'", "hunter2");
    no_text(s, "CREATE USER x WITH PASSWORD 'hunter2' garbage", "hunter2");
    no_text(s, "ALTER USER nosuch WITH PASSWORD 'hunter2'", "hunter2");
    assert_false(lookup(&f, "x").exists);
    sqlv_session_close(s);
    close_all(&f);
}

static void test_alter_drop(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE USER app WITH PASSWORD 'one'", "C CREATE ROLE\n");
    EXPECT(s, "ALTER USER app WITH PASSWORD 'two'", "C ALTER ROLE\n");
    sqlv_auth_info a = lookup(&f, "app");
    assert_int_equal(scram_login(a.verifier, "two"), 0);
    assert_int_equal(scram_login(a.verifier, "one"), SEC_ERR_AUTH);
    EXPECT(s, "ALTER ROLE app NOLOGIN", "C ALTER ROLE\n");
    a = lookup(&f, "app");
    assert_false(a.can_login);
    assert_int_equal(scram_login(a.verifier, "two"), 0); /* the password stays */
    EXPECT(s, "ALTER ROLE app WITH LOGIN PASSWORD NULL", "C ALTER ROLE\n");
    a = lookup(&f, "app");
    assert_true(a.can_login);
    assert_string_equal(a.verifier, "");
    expect_error(s, "ALTER USER nosuch WITH PASSWORD 'x'", "42704");
    expect_error(s, "ALTER USER app", "42601");
    expect_error(s, "ALTER USER app RENAME TO b", "0A000");
    /* root: a password may be set, LOGIN stays */
    assert_string_equal(lookup(&f, "root").verifier, "");
    assert_true(lookup(&f, "root").is_admin);
    EXPECT(s, "ALTER USER root WITH PASSWORD 'rootpw'", "C ALTER ROLE\n");
    a = lookup(&f, "root");
    assert_true(a.exists && a.can_login && a.is_admin);
    assert_int_equal(scram_login(a.verifier, "rootpw"), 0);
    expect_error(s, "ALTER USER root NOLOGIN", "42501");
    EXPECT(s, "ALTER USER CURRENT_USER WITH PASSWORD NULL", "C ALTER ROLE\n");
    assert_string_equal(lookup(&f, "root").verifier, "");
    /* DROP */
    expect_error(s, "DROP USER root", "42501");
    expect_error(s, "DROP ROLE admin", "42501");
    expect_error(s, "DROP USER nosuch", "42704");
    EXPECT(s, "DROP USER IF EXISTS nosuch, app",
           "N role \"nosuch\" does not exist, skipping\nC DROP ROLE\n");
    assert_false(lookup(&f, "app").exists);
    expect_error(s, "DROP USER app", "42704");
    /* memberships go with the role, either side */
    EXPECT(s, "CREATE ROLE r1; CREATE ROLE r2; CREATE USER u1",
           "C CREATE ROLE\nC CREATE ROLE\nC CREATE ROLE\n");
    EXPECT(s, "GRANT r1, r2 TO u1; GRANT r1 TO r2", "C GRANT ROLE\nC GRANT ROLE\n");
    EXPECT_RESULT(s, "SELECT count(*) FROM pg_auth_members", "R 4\n"); /* + root in admin */
    EXPECT(s, "DROP ROLE r1", "C DROP ROLE\n");
    EXPECT_RESULT(s, "SELECT count(*) FROM pg_auth_members", "R 2\n");
    EXPECT(s, "DROP USER u1", "C DROP ROLE\n");
    EXPECT_RESULT(s, "SELECT count(*) FROM pg_auth_members", "R 1\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_grant_revoke(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE USER app; CREATE ROLE reader; CREATE ROLE staff",
           "C CREATE ROLE\nC CREATE ROLE\nC CREATE ROLE\n");
    EXPECT(s, "GRANT reader TO app", "C GRANT ROLE\n");
    EXPECT(s, "GRANT reader TO app",
           "N role \"app\" is already a member of role \"reader\"\nC GRANT ROLE\n");
    EXPECT(s, "GRANT staff TO reader", "C GRANT ROLE\n");
    expect_error(s, "GRANT app TO staff", "0LP01"); /* staff <- reader <- app: a cycle */
    expect_error(s, "GRANT app TO app", "0LP01");
    expect_error(s, "GRANT root TO admin", "0LP01");
    EXPECT(s, "GRANT admin TO root",
           "N role \"root\" is already a member of role \"admin\"\nC GRANT ROLE\n");
    expect_error(s, "GRANT nosuch TO app", "42704");
    expect_error(s, "GRANT reader TO nosuch", "42704");
    expect_error(s, "GRANT reader", "42601");
    /* privileges on objects go to privileges.c (tests/sql/test_privileges.c) */
    expect_error(s, "GRANT SELECT ON accounts TO reader", "42P01");
    EXPECT(s, "REVOKE ALL PRIVILEGES ON DATABASE defaultdb FROM reader", "C REVOKE\n");
    /* admin, transitively */
    assert_false(lookup(&f, "app").is_admin);
    EXPECT(s, "GRANT admin TO staff WITH ADMIN OPTION", "C GRANT ROLE\n");
    assert_true(lookup(&f, "app").is_admin);
    EXPECT(s, "REVOKE ADMIN OPTION FOR admin FROM staff", "C REVOKE ROLE\n");
    assert_true(lookup(&f, "app").is_admin);
    EXPECT_RESULT(s,
                "SELECT r.rolname, m.rolname, a.admin_option FROM pg_auth_members a "
                "JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
                "ORDER BY 1, 2",
                "R admin|root|t\nR admin|staff|f\nR reader|app|f\nR staff|reader|f\n");
    EXPECT(s, "REVOKE staff FROM reader", "C REVOKE ROLE\n");
    assert_false(lookup(&f, "app").is_admin);
    EXPECT(s, "REVOKE staff FROM reader",
           "N role \"reader\" is not a member of role \"staff\"\nC REVOKE ROLE\n");
    expect_error(s, "REVOKE admin FROM root", "42501");
    EXPECT(s, "REVOKE reader FROM app CASCADE", "C REVOKE ROLE\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_who_may(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *root = session(&f);
    EXPECT(root, "CREATE USER app PASSWORD 'a'; CREATE USER other PASSWORD 'o'",
           "C CREATE ROLE\nC CREATE ROLE\n");
    sqlv_session *app = session_as(&f, "app");
    expect_error(app, "CREATE USER x", "42501");
    expect_error(app, "DROP USER other", "42501");
    expect_error(app, "GRANT admin TO app", "42501");
    expect_error(app, "ALTER USER other PASSWORD 'x'", "42501");
    expect_error(app, "ALTER USER app LOGIN", "42501");
    expect_error(app, "SELECT rolname FROM pg_authid", "42501");
    /* a user's own password */
    EXPECT(app, "ALTER USER app WITH PASSWORD 'mine'", "C ALTER ROLE\n");
    EXPECT(app, "ALTER USER current_user PASSWORD 'mine2'", "C ALTER ROLE\n");
    assert_int_equal(scram_login(lookup(&f, "app").verifier, "mine2"), 0);
    /* everyone reads pg_roles (no verifier in it) */
    EXPECT_RESULT(app, "SELECT rolname, rolpassword FROM pg_roles WHERE rolcanlogin ORDER BY 1",
                "R app|********\nR other|********\nR root|NULL\n");
    /* a member of admin manages users (in a block too), but not itself away */
    EXPECT(root, "GRANT admin TO app", "C GRANT ROLE\n");
    EXPECT(app, "BEGIN; CREATE USER x; DROP USER other; COMMIT",
           "C BEGIN\nC CREATE ROLE\nC DROP ROLE\nC COMMIT\n");
    assert_true(lookup(&f, "x").exists);
    assert_false(lookup(&f, "other").exists);
    expect_error(app, "DROP USER app", "55006");
    EXPECT_RESULT(app, "SELECT rolname, rolpassword IS NOT NULL FROM pg_authid ORDER BY 1",
                "R admin|f\nR app|t\nR root|f\nR x|f\n");
    /* a session whose user is no role (trust on an --insecure node) */
    sqlv_session *ghost = session_as(&f, "ghost");
    expect_error(ghost, "CREATE USER y", "42501");
    EXPECT_RESULT(ghost, "SELECT rolname, oid FROM pg_roles WHERE rolname = 'ghost'",
                "R ghost|16380\n");
    sqlv_session_close(ghost);
    sqlv_session_close(app);
    sqlv_session_close(root);
    close_all(&f);
}

static void test_blocks(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT(s, "CREATE USER b1", "C CREATE ROLE\n");
    EXPECT_RESULT(s, "SELECT rolname FROM pg_roles WHERE rolname = 'b1'", "R b1\n");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    assert_false(lookup(&f, "b1").exists);
    /* a failed statement leaves the block failed, and nothing of it */
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT(s, "CREATE USER b2", "C CREATE ROLE\n");
    expect_error(s, "CREATE USER b2", "42710");
    expect_error(s, "CREATE USER b3", "25P02");
    EXPECT(s, "COMMIT", "C ROLLBACK\n");
    assert_false(lookup(&f, "b2").exists);
    /* savepoints undo role writes */
    EXPECT(s, "BEGIN; CREATE USER b4; SAVEPOINT sp; CREATE USER b5; ROLLBACK TO sp; COMMIT",
           "C BEGIN\nC CREATE ROLE\nC SAVEPOINT\nC CREATE ROLE\nC ROLLBACK\nC COMMIT\n");
    assert_true(lookup(&f, "b4").exists);
    assert_false(lookup(&f, "b5").exists);
    /* an implicit block (one string): all or nothing */
    char *got = run(s, "CREATE USER b6; CREATE USER b4");
    assert_non_null(strstr(got, "E 42710"));
    free(got);
    assert_false(lookup(&f, "b6").exists);
    sqlv_session_close(s);
    close_all(&f);
}

static const char *const psql_du =
    "SELECT r.rolname, r.rolsuper, r.rolinherit,\n"
    "  r.rolcreaterole, r.rolcreatedb, r.rolcanlogin,\n"
    "  r.rolconnlimit, r.rolvaliduntil,\n"
    "  ARRAY(SELECT b.rolname\n"
    "        FROM pg_catalog.pg_auth_members m\n"
    "        JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid)\n"
    "        WHERE m.member = r.oid) as memberof\n"
    ", r.rolreplication\n"
    ", r.rolbypassrls\n"
    "FROM pg_catalog.pg_roles r\n"
    "WHERE r.rolname !~ '^pg_'\n"
    "ORDER BY 1;";

static void test_catalogs(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s,
           "CREATE USER app PASSWORD 'p'; CREATE ROLE reader; CREATE ROLE writer; "
           "GRANT reader, writer TO app",
           "C CREATE ROLE\nC CREATE ROLE\nC CREATE ROLE\nC GRANT ROLE\n");
    EXPECT_RESULT(s, psql_du,
                "R admin|f|t|t|t|f|-1|NULL|{}|f|f\n"
                "R app|f|t|f|f|t|-1|NULL|{reader,writer}|f|f\n"
                "R reader|f|t|f|f|f|-1|NULL|{}|f|f\n"
                "R root|t|t|t|t|t|-1|NULL|{admin}|t|t\n"
                "R writer|f|t|f|f|f|-1|NULL|{}|f|f\n");
    EXPECT_RESULT(s, "SELECT usename, usesuper FROM pg_user ORDER BY 1", "R app|f\nR root|t\n");
    EXPECT_RESULT(s, "SELECT oid FROM pg_roles WHERE rolname IN ('root', 'app') ORDER BY 1",
                "R 10\nR 805306468\n");
    EXPECT_RESULT(s, "SELECT pg_get_userbyid(805306468), pg_get_userbyid(10)", "R app|root\n");
    EXPECT_RESULT(s, "SELECT rolname FROM pg_roles WHERE oid = 805306468", "R app\n");
    /* pg_authid: the verifier itself, for admins */
    EXPECT_RESULT(s, "SELECT substr(rolpassword, 1, 19) FROM pg_authid WHERE rolname = 'app'",
                "R SCRAM-SHA-256$4096:\n");
    sqlv_session_close(s);
    close_all(&f);
}

/* CONNECTION LIMIT: stored with the role, in pg_roles.rolconnlimit, and in
** what the gateway reads; a row of the first format (no limit) reads as -1. */
static void test_connection_limit(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE USER app CONNECTION LIMIT 2", "C CREATE ROLE\n");
    EXPECT(s, "CREATE ROLE grp WITH NOLOGIN CONNECTION LIMIT 0", "C CREATE ROLE\n");
    EXPECT(s, "CREATE USER free", "C CREATE ROLE\n");
    sqlv_auth_info a = lookup(&f, "app");
    assert_true(a.conn_limited);
    assert_int_equal(a.conn_limit, 2);
    assert_false(lookup(&f, "free").conn_limited);
    assert_false(lookup(&f, "root").conn_limited);
    EXPECT_RESULT(s, "SELECT rolname, rolconnlimit FROM pg_roles ORDER BY 1",
                  "R admin|-1\nR app|2\nR free|-1\nR grp|0\nR root|-1\n");
    EXPECT(s, "ALTER ROLE app CONNECTION LIMIT 5", "C ALTER ROLE\n");
    assert_int_equal(lookup(&f, "app").conn_limit, 5);
    EXPECT(s, "ALTER USER app WITH CONNECTION LIMIT -1 PASSWORD 'pw'", "C ALTER ROLE\n");
    a = lookup(&f, "app");
    assert_false(a.conn_limited);
    assert_int_equal(scram_login(a.verifier, "pw"), 0);
    EXPECT_RESULT(s, "SELECT rolconnlimit FROM pg_authid WHERE rolname = 'app'", "R -1\n");
    expect_error(s, "ALTER ROLE app CONNECTION LIMIT -2", "22023");
    expect_error(s, "ALTER ROLE app CONNECTION LIMIT 99999999999", "42601");
    expect_error(s, "ALTER ROLE app CONNECTION LIMIT lots", "42601");
    expect_error(s, "ALTER ROLE app CONNECTION 3", "42601");
    expect_error(s, "CREATE USER x CONNECTION LIMIT 1 CONNECTION LIMIT 2", "42601");
    /* a user may change their own password, not their own limit */
    sqlv_session *app = session_as(&f, "app");
    EXPECT(app, "ALTER USER CURRENT_USER WITH PASSWORD 'mine'", "C ALTER ROLE\n");
    expect_error(app, "ALTER USER CURRENT_USER CONNECTION LIMIT 100", "42501");
    sqlv_session_close(app);
    /* a role written in the first format (before CONNECTION LIMIT) */
    base_buf key = {0};
    enc_value v = {.type = ENC_TEXT};
    v.u.bytes.data = (const uint8_t *)"old";
    v.u.bytes.len = 3;
    assert_int_equal(enc_key_prefix(&key, 3, 1), ENC_OK);
    assert_int_equal(enc_key_append(&key, &v), ENC_OK);
    const uint8_t v1[] = {1, 1, 0, 0, 0x10, 0, 3, 'o', 'l', 'd', 0, 0};
    txn *t = NULL;
    txn_error err = {{0}, {0}};
    assert_int_equal(txn_begin(f.db, NULL, &t), TXN_OK);
    assert_int_equal(txn_put(t, key.data, key.len, v1, sizeof v1, &err), TXN_OK);
    assert_int_equal(txn_commit(t, NULL, &err), TXN_OK);
    base_buf_free(&key);
    a = lookup(&f, "old");
    assert_true(a.exists && a.can_login);
    assert_false(a.conn_limited);
    EXPECT_RESULT(s, "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'old'", "R -1\n");
    EXPECT(s, "ALTER USER old CONNECTION LIMIT 3", "C ALTER ROLE\n"); /* rewritten as v2 */
    assert_int_equal(lookup(&f, "old").conn_limit, 3);
    sqlv_session_close(s);
    close_all(&f);
}

/* The first byte of role name's row (its format version), 0 when none. */
static int row_version(fixture *f, const char *name) {
    base_buf key = {0}, val = {0};
    enc_value v = {.type = ENC_TEXT};
    v.u.bytes.data = (const uint8_t *)name;
    v.u.bytes.len = strlen(name);
    assert_int_equal(enc_key_prefix(&key, 3, 1), ENC_OK);
    assert_int_equal(enc_key_append(&key, &v), ENC_OK);
    txn *t = NULL;
    txn_error err = {{0}, {0}};
    assert_int_equal(txn_begin(f->db, NULL, &t), TXN_OK);
    int rc = txn_get(t, key.data, key.len, &val, &err);
    int version = rc == TXN_OK && val.len > 0 ? val.data[0] : 0;
    txn_rollback(t);
    base_buf_free(&key);
    base_buf_free(&val);
    return version;
}

/* ALTER ROLE ... SET: stored in the role row (format 3 only while the role
** has settings), applied by sqlv_session_apply_role_settings, kept by the
** role's other changes. */
static void test_role_settings(void **state) {
    (void)state;
    fixture f;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "CREATE USER app PASSWORD 'pw'", "C CREATE ROLE\n");
    assert_int_equal(row_version(&f, "app"), 2);
    EXPECT(s, "ALTER ROLE app SET statement_timeout = '1min'", "C ALTER ROLE\n");
    EXPECT(s, "ALTER ROLE app SET session_memory_limit = '64MiB'", "C ALTER ROLE\n");
    assert_int_equal(row_version(&f, "app"), 3);
    EXPECT(s, "ALTER ROLE app CONNECTION LIMIT 4", "C ALTER ROLE\n");
    sqlv_auth_info a = lookup(&f, "app");
    assert_int_equal(a.conn_limit, 4);
    assert_int_equal(scram_login(a.verifier, "pw"), 0);
    sqlv_session *app = session_as(&f, "app");
    assert_int_equal(sqlv_session_apply_role_settings(app), SQLV_OK);
    EXPECT_RESULT(app, "SHOW statement_timeout", "R 1min\n");
    EXPECT_RESULT(app, "SHOW session_memory_limit", "R 64 MiB\n");
    sqlv_session_close(app);
    /* shown as PostgreSQL does: pg_roles.rolconfig, pg_user.useconfig,
    ** pg_db_role_setting (psql's \drds, with '; ' for its E'\n': rows_of
    ** keeps only a row's first line); a value with a space is quoted */
    EXPECT(s, "ALTER ROLE app SET search_path = 'a, \"b\"'", "C ALTER ROLE\n");
    EXPECT_RESULT(s, "SELECT rolname, rolconfig FROM pg_roles ORDER BY 1",
                  "R admin|NULL\nR app|{statement_timeout=1min,\"session_memory_limit=64 "
                  "MiB\",\"search_path=a, \\\"b\\\"\"}\nR root|NULL\n");
    EXPECT_RESULT(s, "SELECT useconfig IS NOT NULL FROM pg_user WHERE usename = 'app'", "R t\n");
    EXPECT_RESULT(s,
                  "SELECT rolname AS \"Role\", datname AS \"Database\",\n"
                  "pg_catalog.array_to_string(s.setconfig, '; ') AS \"Settings\"\n"
                  "FROM pg_catalog.pg_db_role_setting s\n"
                  "LEFT JOIN pg_catalog.pg_database d ON d.oid = setdatabase\n"
                  "LEFT JOIN pg_catalog.pg_roles r ON r.oid = setrole\n"
                  "ORDER BY 1, 2;",
                  "R app|NULL|statement_timeout=1min; session_memory_limit=64 MiB; "
                  "search_path=a, \"b\"\n");
    EXPECT_RESULT(s, "SELECT setdatabase, setrole FROM pg_db_role_setting WHERE setrole = 805306468",
                  "R 0|805306468\n");
    EXPECT(s, "ALTER ROLE app RESET search_path", "C ALTER ROLE\n");
    expect_error(s, "ALTER ROLE app SET session_memory_limit = '1KiB'", "22023");
    expect_error(s, "ALTER ROLE app RESET no_such_setting", "42704");
    expect_error(s, "ALTER ROLE app IN DATABASE defaultdb SET statement_timeout = 1", "0A000");
    /* 512 bytes of pairs at most */
    char q[400];
    int i = 0;
    for (; i < 64; i++) {
        snprintf(q, sizeof q, "ALTER ROLE app SET custom.setting_number_%02d = 'value'", i);
        char *got = run(s, q);
        bool full = strstr(got, "E 54000") != NULL;
        free(got);
        if (full) break;
    }
    assert_true(i > 5 && i < 64);
    EXPECT(s, "ALTER ROLE app RESET ALL", "C ALTER ROLE\n");
    assert_int_equal(row_version(&f, "app"), 2); /* readable by the previous version */
    EXPECT_RESULT(s, "SELECT count(*) FROM pg_db_role_setting", "R 0\n");
    EXPECT_RESULT(s, "SELECT rolconfig FROM pg_roles WHERE rolname = 'app'", "R NULL\n");
    app = session_as(&f, "app");
    assert_int_equal(sqlv_session_apply_role_settings(app), SQLV_OK);
    EXPECT_RESULT(app, "SHOW statement_timeout", "R 0\n");
    sqlv_session_close(app);
    sqlv_session_close(s);
    close_all(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),       cmocka_unit_test(test_alter_drop),
        cmocka_unit_test(test_grant_revoke), cmocka_unit_test(test_who_may),
        cmocka_unit_test(test_blocks),       cmocka_unit_test(test_catalogs),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_role_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
