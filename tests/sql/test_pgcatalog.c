/*
** tests/sql/test_pgcatalog.c: PostgreSQL's system catalogs over Meridian's
** catalog (sql/pgcatalog.c, sql/pgcatalog_fn.c): the queries psql 15
** sends for \d, \dt, \d t, \di, \du, \l, \dn (verbatim, as `psql -E`
** prints them), the pg_catalog and information_schema rows of a created
** table, its columns and primary key, a dropped table disappearing, DDL of
** another node and of an open block, SHOW TABLES / CREATE TABLE / COLUMNS,
** the dialect constructs the queries use (~, OPERATOR(pg_catalog.~),
** E'...', ARRAY(SELECT ...), ::regclass) and the clear 0A000 of what is not
** provided. The transcript format is test_sql.c's (D/R/C/E/N/Q lines).
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

/* ---- psql 15's queries, verbatim ------------------------------------------------- */

static const char *const psql_dt =
    "SELECT n.nspname as \"Schema\",\n"
    "  c.relname as \"Name\",\n"
    "  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized "
    "view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' "
    "THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' "
    "END as \"Type\",\n"
    "  pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\"\n"
    "FROM pg_catalog.pg_class c\n"
    "     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
    "     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam\n"
    "WHERE c.relkind IN ('r','p','')\n"
    "      AND n.nspname <> 'pg_catalog'\n"
    "      AND n.nspname !~ '^pg_toast'\n"
    "      AND n.nspname <> 'information_schema'\n"
    "  AND pg_catalog.pg_table_is_visible(c.oid)\n"
    "ORDER BY 1,2;";

static const char *const psql_d =
    "SELECT n.nspname as \"Schema\",\n"
    "  c.relname as \"Name\",\n"
    "  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized "
    "view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' "
    "THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' "
    "END as \"Type\",\n"
    "  pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\"\n"
    "FROM pg_catalog.pg_class c\n"
    "     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
    "     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam\n"
    "WHERE c.relkind IN ('r','p','v','m','S','f','')\n"
    "      AND n.nspname <> 'pg_catalog'\n"
    "      AND n.nspname !~ '^pg_toast'\n"
    "      AND n.nspname <> 'information_schema'\n"
    "  AND pg_catalog.pg_table_is_visible(c.oid)\n"
    "ORDER BY 1,2;";

static const char *const psql_di =
    "SELECT n.nspname as \"Schema\",\n"
    "  c.relname as \"Name\",\n"
    "  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized "
    "view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' "
    "THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' "
    "END as \"Type\",\n"
    "  pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\",\n"
    " c2.relname as \"Table\"\n"
    "FROM pg_catalog.pg_class c\n"
    "     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
    "     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam\n"
    "     LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid\n"
    "     LEFT JOIN pg_catalog.pg_class c2 ON i.indrelid = c2.oid\n"
    "WHERE c.relkind IN ('i','I','')\n"
    "      AND n.nspname <> 'pg_catalog'\n"
    "      AND n.nspname !~ '^pg_toast'\n"
    "      AND n.nspname <> 'information_schema'\n"
    "  AND pg_catalog.pg_table_is_visible(c.oid)\n"
    "ORDER BY 1,2;";

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

static const char *const psql_l =
    "SELECT d.datname as \"Name\",\n"
    "       pg_catalog.pg_get_userbyid(d.datdba) as \"Owner\",\n"
    "       pg_catalog.pg_encoding_to_char(d.encoding) as \"Encoding\",\n"
    "       d.datcollate as \"Collate\",\n"
    "       d.datctype as \"Ctype\",\n"
    "       d.daticulocale as \"ICU Locale\",\n"
    "       CASE d.datlocprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' END AS \"Locale "
    "Provider\",\n"
    "       pg_catalog.array_to_string(d.datacl, E'\\n') AS \"Access privileges\"\n"
    "FROM pg_catalog.pg_database d\n"
    "ORDER BY 1;";

static const char *const psql_dn =
    "SELECT n.nspname AS \"Name\",\n"
    "  pg_catalog.pg_get_userbyid(n.nspowner) AS \"Owner\"\n"
    "FROM pg_catalog.pg_namespace n\n"
    "WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'\n"
    "ORDER BY 1;";

/* \d accounts: the table's OID first */
static const char *const psql_d_name =
    "SELECT c.oid,\n"
    "  n.nspname,\n"
    "  c.relname\n"
    "FROM pg_catalog.pg_class c\n"
    "     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
    "WHERE c.relname OPERATOR(pg_catalog.~) '^(accounts)$' COLLATE pg_catalog.default\n"
    "  AND pg_catalog.pg_table_is_visible(c.oid)\n"
    "ORDER BY 2, 3;";

/* pgbench's partition probe: it must fail or answer, never be empty */
static const char *const pgbench_probe =
    "select o.n, p.partstrat, pg_catalog.count(i.inhparent) from pg_catalog.pg_class as c join "
    "pg_catalog.pg_namespace as n on (n.oid = c.relnamespace) cross join lateral (select "
    "pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname)) as o(n) left join "
    "pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) left join "
    "pg_catalog.pg_inherits as i on (c.oid = i.inhparent) where c.relname = 'pgbench_accounts' "
    "and o.n is not null group by 1, 2 order by 1 asc limit 1";

static const char *const create_accounts =
    "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL, owner VARCHAR(20), "
    "opened TIMESTAMPTZ, rate NUMERIC(10,2), flags TEXT[])";

/* ---- tests ------------------------------------------------------------------------ */

static void test_psql_list_queries(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    /* an empty database: \d finds nothing (psql: "Did not find any relations.") */
    EXPECT(s, psql_d,
           "D Schema:25,Name:25,Type:25,Owner:25\nC SELECT 0\n");
    EXPECT(s, create_accounts, "C CREATE TABLE\n");
    EXPECT(s, "CREATE TABLE history (v TEXT)", "C CREATE TABLE\n");
    EXPECT(s, psql_dt,
           "D Schema:25,Name:25,Type:25,Owner:25\n"
           "R public|accounts|table|root\nR public|history|table|root\nC SELECT 2\n");
    EXPECT_ROWS(s, psql_d, "R public|accounts|table|root\nR public|history|table|root\n");
    EXPECT_ROWS(s, psql_di, "R public|accounts_pkey|index|root|accounts\n");
    EXPECT(s, psql_du,
           "D rolname:25,rolsuper:16,rolinherit:16,rolcreaterole:16,rolcreatedb:16,"
           "rolcanlogin:16,rolconnlimit:23,rolvaliduntil:25,memberof:25,rolreplication:16,"
           "rolbypassrls:16\n"
           "R admin|f|t|t|t|f|-1|NULL|{}|f|f\nR root|t|t|t|t|t|-1|NULL|{admin}|t|t\n"
           "C SELECT 2\n");
    EXPECT_ROWS(s, psql_l, "R defaultdb|root|UTF8|C|C|NULL|libc|NULL\n");
    EXPECT_ROWS(s, psql_dn, "R public|root\n");
    EXPECT_ROWS(s, psql_d_name, "R 16384|public|accounts\n");
    /* psql's patterns: \d acc*, \dt public.* */
    EXPECT_ROWS(s,
                "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname "
                "OPERATOR(pg_catalog.~) '^(acc.*)$' COLLATE pg_catalog.default ORDER BY 1",
                "R accounts\nR accounts_pkey\n");
    sqlv_session_close(s);
    close_all(&f);
}

static void test_table_rows(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, create_accounts, "C CREATE TABLE\n");
    EXPECT_ROWS(s,
                "SELECT c.oid, c.relname, c.relkind, c.relnatts, c.relhasindex, c.relam "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' ORDER BY 1",
                "R 16384|accounts|r|6|t|2\nR 16385|accounts_pkey|i|1|f|403\n");
    EXPECT_ROWS(s, "SELECT 'accounts'::regclass, 16384::regclass, 'public.accounts'::regclass::oid",
                "R 16384|accounts|16384\n");
    EXPECT(s,
           "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, "
           "a.atttypid FROM pg_catalog.pg_attribute a WHERE a.attrelid = 'accounts'::regclass "
           "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
           "D attname:25,format_type:25,attnotnull:16,atttypid:23\n"
           "R id|integer|t|23\nR balance|bigint|t|20\nR owner|character varying(20)|f|1043\n"
           "R opened|timestamp with time zone|f|1184\nR rate|numeric(10,2)|f|1700\n"
           "R flags|text[]|f|1009\nC SELECT 6\n");
    EXPECT_ROWS(s,
                "SELECT c2.relname, i.indisprimary, i.indisunique, i.indkey, "
                "pg_catalog.pg_get_indexdef(i.indexrelid, 0, true), "
                "pg_catalog.pg_get_constraintdef(con.oid, true), contype FROM pg_catalog.pg_class "
                "c, pg_catalog.pg_class c2, pg_catalog.pg_index i LEFT JOIN "
                "pg_catalog.pg_constraint con ON (conrelid = i.indrelid AND conindid = "
                "i.indexrelid AND contype IN ('p','u','x')) WHERE c.oid = '16384' AND c.oid = "
                "i.indrelid AND i.indexrelid = c2.oid ORDER BY i.indisprimary DESC, c2.relname",
                "R accounts_pkey|t|t|1|CREATE UNIQUE INDEX accounts_pkey ON public.accounts "
                "USING btree (id)|PRIMARY KEY (id)|p\n");
    EXPECT_ROWS(s, "SELECT typname, typlen, typarray FROM pg_type WHERE oid IN (16, 23, 25, 1700)"
                   " ORDER BY oid",
                "R bool|1|1000\nR int4|4|1007\nR text|-1|1009\nR numeric|-1|1231\n");
    EXPECT_ROWS(s,
                "SELECT table_schema, table_name, table_type FROM information_schema.tables "
                "WHERE table_schema = 'public'",
                "R public|accounts|BASE TABLE\n");
    EXPECT_ROWS(s,
                "SELECT column_name, ordinal_position, is_nullable, data_type, udt_name, "
                "character_maximum_length, numeric_precision, numeric_scale FROM "
                "information_schema.columns WHERE table_name = 'accounts' ORDER BY 2",
                "R id|1|NO|integer|int4|NULL|32|0\nR balance|2|NO|bigint|int8|NULL|64|0\n"
                "R owner|3|YES|character varying|varchar|20|NULL|NULL\n"
                "R opened|4|YES|timestamp with time zone|timestamptz|NULL|NULL|NULL\n"
                "R rate|5|YES|numeric|numeric|NULL|10|2\n"
                "R flags|6|YES|ARRAY|_text|NULL|NULL|NULL\n");
    EXPECT_ROWS(s,
                "SELECT tc.constraint_type, k.constraint_name, k.column_name, k.ordinal_position "
                "FROM information_schema.table_constraints tc JOIN "
                "information_schema.key_column_usage k ON k.constraint_name = tc.constraint_name "
                "WHERE tc.table_name = 'accounts'",
                "R PRIMARY KEY|accounts_pkey|id|1\n");
    EXPECT_ROWS(s, "SELECT schema_name FROM information_schema.schemata ORDER BY 1",
                "R information_schema\nR pg_catalog\nR pg_toast\nR public\n");
    EXPECT_ROWS(s, "SELECT count(*) FROM pg_catalog.pg_settings WHERE name = 'TimeZone'", "R 1\n");
    /* a composite key: indkey, conkey and the definitions follow the key order */
    EXPECT(s, "CREATE TABLE pairs (a INT, b TEXT, c INT, PRIMARY KEY (c, a))", "C CREATE TABLE\n");
    EXPECT_ROWS(s,
                "SELECT i.indkey, con.conkey, pg_get_indexdef(i.indexrelid), "
                "pg_get_indexdef(i.indexrelid, 2, true), pg_get_constraintdef(con.oid) FROM "
                "pg_index i JOIN pg_constraint con ON con.conindid = i.indexrelid WHERE i.indrelid "
                "= 'pairs'::regclass",
                "R 3 1|{3,1}|CREATE UNIQUE INDEX pairs_pkey ON public.pairs USING btree (c, a)|a|"
                "PRIMARY KEY (c, a)\n");
    /* dropped: gone from every relation */
    EXPECT(s, "DROP TABLE accounts", "C DROP TABLE\n");
    EXPECT_ROWS(s, "SELECT relname FROM pg_class ORDER BY 1", "R pairs\nR pairs_pkey\n");
    EXPECT_ROWS(s, "SELECT count(*) FROM pg_attribute WHERE attrelid IN (16384, 16385)", "R 0\n");
    EXPECT_ROWS(s, "SELECT table_name FROM information_schema.columns GROUP BY 1", "R pairs\n");
    expect_error(s, "SELECT 'accounts'::regclass", "42P01");
    sqlv_session_close(s);
    close_all(&f);
}

/* Two engines over one key space stand for two nodes: the catalogs follow
** the other node's DDL at the next transaction, and a block's own DDL at
** once (only for itself). */
static void test_other_node_and_blocks(void **state) {
    fixture f;
    sqlv_engine *b_engine = NULL;
    (void)state;
    open_all(&f);
    assert_int_equal(sqlv_engine_open(f.db, &b_engine), SQLV_OK);
    sqlv_session *a = session(&f), *b = NULL;
    assert_int_equal(sqlv_session_open(b_engine, "root", "defaultdb", &b), SQLV_OK);
    EXPECT_ROWS(b, "SELECT count(*) FROM pg_class", "R 0\n");
    EXPECT(a, "CREATE TABLE t1 (k INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT_ROWS(b, "SELECT relname FROM pg_class WHERE relkind = 'r'", "R t1\n");
    EXPECT(a, "BEGIN; CREATE TABLE t2 (x TEXT); DROP TABLE t1",
           "C BEGIN\nC CREATE TABLE\nC DROP TABLE\n");
    EXPECT_ROWS(a, "SELECT relname FROM pg_class WHERE relkind = 'r'", "R t2\n");
    EXPECT_ROWS(b, "SELECT relname FROM pg_class WHERE relkind = 'r'", "R t1\n");
    EXPECT(a, "COMMIT", "C COMMIT\n");
    EXPECT_ROWS(b, "SELECT table_name FROM information_schema.tables", "R t2\n");
    EXPECT(b, "ALTER TABLE t2 ADD COLUMN y INT NOT NULL", "C ALTER TABLE\n");
    EXPECT_ROWS(a, "SELECT attname, attnotnull FROM pg_attribute ORDER BY attnum",
                "R x|f\nR y|t\n");
    sqlv_session_close(a);
    sqlv_session_close(b);
    sqlv_engine_close(b_engine);
    close_all(&f);
}

static void test_show(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, "SHOW TABLES", "D schema_name:25,table_name:25,type:25,owner:25\nC SELECT 0\n");
    EXPECT(s, "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL, note TEXT)",
           "C CREATE TABLE\n");
    EXPECT(s, "SHOW TABLES",
           "D schema_name:25,table_name:25,type:25,owner:25\nR public|accounts|table|root\n"
           "C SELECT 1\n");
    EXPECT(s, "SHOW CREATE TABLE accounts",
           "D table_name:25,create_statement:25\nR accounts|CREATE TABLE accounts (id INT "
           "PRIMARY KEY, balance BIGINT NOT NULL, note TEXT)\nC SELECT 1\n");
    EXPECT_ROWS(s, "SHOW CREATE public.accounts",
                "R accounts|CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL, "
                "note TEXT)\n");
    EXPECT(s, "SHOW COLUMNS FROM accounts",
           "D column_name:25,data_type:25,is_nullable:16,column_default:25,indices:25\n"
           "R id|integer|f|NULL|{accounts_pkey}\nR balance|bigint|f|NULL|{}\n"
           "R note|text|t|NULL|{}\nC SELECT 3\n");
    expect_error(s, "SHOW CREATE TABLE nope", "42P01");
    expect_error(s, "SHOW COLUMNS FROM nope", "42P01");
    expect_error(s, "SHOW COLUMNS accounts", "42601");
    EXPECT(s, "SHOW TimeZone", "D TimeZone:25\nR UTC\nC SHOW\n"); /* settings still */
    sqlv_session_close(s);
    close_all(&f);
}

static void test_dialect_and_functions(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT_ROWS(s,
                "SELECT 'abc' ~ '^a', 'abc' !~ 'b', 'ABC' ~* 'abc', 'ABC' !~* 'x', "
                "'abc' OPERATOR(pg_catalog.~) 'c$', 'a1' ~ '\\d$', 'ab' ~~ 'a%'",
                "R t|f|t|t|t|t|t\n");
    expect_error(s, "SELECT 'x' ~ '(a'", "2201B");
    expect_error(s, "SELECT 'aa' ~ '(a)\\1'", "0A000");
    EXPECT_ROWS(s, "SELECT E'a\\tb', E'it''s', E'\\x41\\101\\u00e9', quote_ident('A b'), "
                   "quote_ident('ab'), quote_ident('select')",
                "R a\tb|it's|AAé|\"A b\"|ab|\"select\"\n");
    expect_error(s, "SELECT E'\\0'", "22021");
    EXPECT_ROWS(s, "SELECT ARRAY(SELECT 1 UNION SELECT 2), ARRAY(SELECT 'a b' WHERE false), "
                   "(SELECT array_agg(x) FROM (SELECT 'x,y' AS x UNION ALL SELECT NULL))",
                "R {1,2}|{}|{\"x,y\",NULL}\n");
    EXPECT_ROWS(s, "SELECT array_to_string('{a,\"b c\",NULL}', '-'), "
                   "array_to_string('{a,NULL}', ',', '*'), substring('héllo', 2, 3), "
                   "pg_size_pretty(123456789), format_type(1043, 24), format_type(1042, -1)",
                "R a-b c|a,*|éll|118 MB|character varying(20)|bpchar\n");
    EXPECT_ROWS(s, "SELECT has_table_privilege('pg_class', 'SELECT'), pg_get_userbyid(10), "
                   "pg_encoding_to_char(6), current_schemas(true), to_regclass('nope')",
                "R t|root|UTF8|{pg_catalog,public}|NULL\n");
    /* the catalog's boolean functions answer bool (t/f, type 16), as psql expects */
    EXPECT(s, "SELECT has_table_privilege('pg_class','select')",
           "D has_table_privilege:16\nR t\nC SELECT 1\n");
    EXPECT(s,
           "SELECT pg_catalog.pg_table_is_visible(1259) AS v, pg_is_in_recovery(), "
           "pg_has_role('root', 'MEMBER'), PG_TYPE_IS_VISIBLE(23), length('ab') AS n",
           "D v:16,pg_is_in_recovery:16,pg_has_role:16,pg_type_is_visible:16,n:20\n"
           "R t|f|t|t|2\nC SELECT 1\n");
    EXPECT_ROWS(s, "SELECT ARRAY[1, 'a b', NULL], 'x' = ANY (ARRAY['y', 'x']), 3 <> ALL ('{1,2}')",
                "R {1,\"a b\",NULL}|t|t\n");
    EXPECT(s, "CREATE TABLE a_b (k INT)", "C CREATE TABLE\n");
    EXPECT_ROWS(s, "SELECT relname FROM pg_class WHERE relname LIKE 'a\\_b%' OR relname LIKE 'ab'",
                "R a_b\n");
    /* not provided: a clear 0A000 */
    expect_error(s, "SELECT * FROM pg_catalog.pg_proc", "0A000");
    expect_error(s, "SELECT * FROM information_schema.routines", "0A000");
    expect_error(s, "SELECT relnope FROM pg_class", "0A000");
    expect_error(s, "SELECT ARRAY[[1, 2]]", "0A000");
    expect_error(s, "SELECT 1 OPERATOR(pg_catalog.@>) 2", "0A000");
    /* pgbench's probe fails (it then assumes no partitions) rather than
    ** answering no row (which would make pgbench exit) */
    EXPECT(s, "CREATE TABLE pgbench_accounts (aid INT PRIMARY KEY)", "C CREATE TABLE\n");
    expect_error(s, pgbench_probe, "0A000");
    /* a user table of a catalog's name shadows it */
    EXPECT(s, "CREATE TABLE pg_am (x INT)", "C CREATE TABLE\n");
    EXPECT_ROWS(s, "SELECT count(*) FROM pg_am", "R 0\n");
    sqlv_session_close(s);
    close_all(&f);
}

/* Every relation scans (each row has its relation's width: a mismatch
** asserts), empty or not, with a table, a composite key and a block. */
static void test_every_relation(void **state) {
    static const char *const names[] = {
        "pg_class", "pg_namespace", "pg_attribute", "pg_type", "pg_index", "pg_constraint",
        "pg_database", "pg_roles", "pg_user", "pg_auth_members", "pg_settings", "pg_description",
        "pg_db_role_setting",
        "pg_shdescription", "pg_am", "pg_collation", "pg_tablespace", "pg_attrdef", "pg_inherits",
        "pg_policy", "pg_trigger", "pg_rewrite", "pg_statistic_ext", "pg_publication",
        "pg_publication_rel", "pg_publication_namespace", "pg_partitioned_table",
        "pg_foreign_table", "pg_extension", "pg_tables", "pg_indexes", "pg_views", "pg_matviews",
        "information_schema.tables", "information_schema.columns", "information_schema.schemata",
        "information_schema.key_column_usage", "information_schema.table_constraints"};
    fixture f;
    sqlv_session *s = NULL;
    (void)state;
    open_all(&f);
    /* alice (no role of her own) may create tables: owner of what she makes */
    assert_int_equal(sqlv_session_open(f.sql, "root", "shop", &s), SQLV_OK);
    EXPECT(s, "GRANT CREATE ON DATABASE shop TO PUBLIC", "C GRANT\n");
    sqlv_session_close(s);
    assert_int_equal(sqlv_session_open(f.sql, "alice", "shop", &s), SQLV_OK);
    EXPECT(s, "CREATE TABLE t (a INT, b TEXT, c BYTEA, PRIMARY KEY (b, a)); CREATE TABLE u (x INT)",
           "C CREATE TABLE\nC CREATE TABLE\n");
    EXPECT(s, "BEGIN; CREATE TABLE v (k TEXT PRIMARY KEY)", "C BEGIN\nC CREATE TABLE\n");
    for (size_t i = 0; i < BASE_ARRAY_LEN(names); i++) {
        char q[128];
        snprintf(q, sizeof(q), "SELECT * FROM %s%s",
                 strncmp(names[i], "information", 11) == 0 ? "" : "pg_catalog.", names[i]);
        char *got = run(s, q);
        bool failed = strstr(got, "\nE ") != NULL || strncmp(got, "E ", 2) == 0;
        if (failed) print_error("%s:\n%s", names[i], got);
        assert_false(failed);
        free(got);
    }
    EXPECT(s, "COMMIT", "C COMMIT\n");
    EXPECT_ROWS(s, "SELECT usename, usesysid FROM pg_user ORDER BY 2",
                "R root|10\nR alice|16380\n");
    EXPECT_ROWS(s, "SELECT datname FROM pg_database", "R shop\n");
    EXPECT_ROWS(s, "SELECT r.relname, pg_get_userbyid(16380) FROM pg_class r WHERE r.oid = 16388",
                "R u|alice\n");
    EXPECT_ROWS(s, "SELECT tablename, hasindexes FROM pg_tables ORDER BY 1",
                "R t|t\nR u|f\nR v|t\n");
    EXPECT_ROWS(s, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 't'",
                "R t_pkey|CREATE UNIQUE INDEX t_pkey ON public.t USING btree (b, a)\n");
    EXPECT_ROWS(s, "SELECT typname, typtype, typrelid FROM pg_type WHERE oid = 16387",
                "R t|c|16384\n");
    sqlv_session_close(s);
    close_all(&f);
}

/* Out of memory at every allocation of a catalog query (the rewrite, the
** scans, the functions): the statement fails cleanly (53200) or works, and
** the next one works. */
static void test_alloc_failures(void **state) {
    fixture f;
    (void)state;
    open_all(&f);
    sqlv_session *s = session(&f);
    EXPECT(s, create_accounts, "C CREATE TABLE\n");
    const char *const queries[] = {psql_dt, psql_du, psql_l, psql_d_name,
                                   "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
                                   "pg_get_indexdef(16385), pg_get_constraintdef(16386), "
                                   "array_to_string(ARRAY[1, 2], E'\\n') FROM pg_attribute a "
                                   "WHERE a.attrelid = 'accounts'::regclass AND 'x' = ANY "
                                   "('{x}') AND a.attname ~ '^[a-z]'"};
    for (size_t q = 0; q < BASE_ARRAY_LEN(queries); q++) {
        char *want = run(s, queries[q]);
        for (int n = 0; n < 400; n++) {
            capture c;
            memset(&c, 0, sizeof(c));
            sqlv_sink sink = {&c, c_desc, c_row, c_tag, c_empty, c_error, c_notice, NULL, NULL,
                              NULL};
            base_alloc_fail_after(n);
            int rc = sqlv_session_exec(s, queries[q], strlen(queries[q]), &sink);
            base_alloc_fail_after(-1);
            assert_true(rc == SQLV_OK || rc == SQLV_ERR_NOMEM);
            base_buf_free(&c.out);
            assert_int_equal(sqlv_session_status(s), 'I');
        }
        EXPECT(s, queries[q], want);
        free(want);
    }
    sqlv_session_close(s);
    close_all(&f);
}

int main(void) {
    base_log_set_level(BASE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_relation),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_psql_list_queries),
        cmocka_unit_test(test_table_rows),
        cmocka_unit_test(test_other_node_and_blocks),
        cmocka_unit_test(test_show),
        cmocka_unit_test(test_dialect_and_functions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
