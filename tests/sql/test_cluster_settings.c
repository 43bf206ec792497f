/*
** tests/sql/test_cluster_settings.c: cluster settings (sql/cluster_settings.c;
** docs/operations.md "Cluster settings"): the text forms of every type
** (byte sizes with and without units and spaces, durations, bools,
** integers), their bounds, the canonical text round trip, the value codec
** (every truncation and bad byte refused), the human byte sizes of event
** reasons, and the statements over a single node's key space: SET / RESET
** / SHOW CLUSTER SETTING, SHOW [ALL] CLUSTER SETTINGS, 42704, 22023, 25001,
** and what sqlv_settings_read sees in the key space afterwards; the text
** setting server.host_based_authentication.configuration (checked by its
** parser: 22023 naming the bad line; stored, shown, reset, read back by
** sqlv_auth_lookup; admins only).
** The transcript format is test_sql.c's (D/R/C/E/N/Q lines).
*/
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>

#include "sql/cluster_settings.h"
#include "tests/sql/sql_harness.h"

#define KIB 1024LL
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

static int64_t parse_ok(sqlv_setting_type type, const char *text) {
    int64_t v = -12345;
    char msg[256] = "";
    if (sqlv_setting_parse_type(type, text, &v, msg, sizeof msg) != 0)
        fail_msg("\"%s\" refused: %s", text, msg);
    return v;
}

static void parse_bad(sqlv_setting_type type, const char *text) {
    int64_t v = 0;
    char msg[256] = "";
    if (sqlv_setting_parse_type(type, text, &v, msg, sizeof msg) == 0)
        fail_msg("\"%s\" accepted as %lld", text, (long long)v);
    assert_true(msg[0] != '\0');
}

static void test_parse_types(void **state) {
    (void)state;
    /* bytes: a bare number, binary and decimal units, spaces, fractions, case */
    assert_int_equal(parse_ok(SQLV_SETTING_BYTES, "65536"), 65536);
    assert_int_equal(parse_ok(SQLV_SETTING_BYTES, "64MiB"), 64 * MIB);
    assert_int_equal(parse_ok(SQLV_SETTING_BYTES, "512 KiB"), 512 * KIB);
    assert_int_equal(parse_ok(SQLV_SETTING_BYTES, " 256kib "), 256 * KIB);
    assert_int_equal(parse_ok(SQLV_SETTING_BYTES, "1.5GiB"), 3 * GIB / 2);
    assert_int_equal(parse_ok(SQLV_SETTING_BYTES, "2 MB"), 2000000);
    assert_int_equal(parse_ok(SQLV_SETTING_BYTES, "7B"), 7);
    assert_int_equal(parse_ok(SQLV_SETTING_BYTES, "1TiB"), 1024 * GIB);
    assert_int_equal(parse_ok(SQLV_SETTING_BYTES, "0.5KiB"), 512);
    parse_bad(SQLV_SETTING_BYTES, "");
    parse_bad(SQLV_SETTING_BYTES, "MiB");
    parse_bad(SQLV_SETTING_BYTES, "64 MiB x");
    parse_bad(SQLV_SETTING_BYTES, "64 furlongs");
    parse_bad(SQLV_SETTING_BYTES, "-5");
    parse_bad(SQLV_SETTING_BYTES, "1.2.3");
    parse_bad(SQLV_SETTING_BYTES, "99999999999999999999");
    parse_bad(SQLV_SETTING_BYTES, "9000000000 TiB"); /* overflows int64 */
    /* durations, stored as ms */
    assert_int_equal(parse_ok(SQLV_SETTING_DURATION, "10s"), 10000);
    assert_int_equal(parse_ok(SQLV_SETTING_DURATION, "250ms"), 250);
    assert_int_equal(parse_ok(SQLV_SETTING_DURATION, "1m30s"), 90000);
    assert_int_equal(parse_ok(SQLV_SETTING_DURATION, "1h 5m"), 3900000);
    assert_int_equal(parse_ok(SQLV_SETTING_DURATION, "1.5s"), 1500);
    assert_int_equal(parse_ok(SQLV_SETTING_DURATION, "2 min"), 120000);
    assert_int_equal(parse_ok(SQLV_SETTING_DURATION, "40"), 40);
    parse_bad(SQLV_SETTING_DURATION, "s");
    parse_bad(SQLV_SETTING_DURATION, "10 parsecs");
    parse_bad(SQLV_SETTING_DURATION, "1m x");
    parse_bad(SQLV_SETTING_DURATION, "");
    /* bools */
    assert_int_equal(parse_ok(SQLV_SETTING_BOOL, "true"), 1);
    assert_int_equal(parse_ok(SQLV_SETTING_BOOL, "OFF"), 0);
    assert_int_equal(parse_ok(SQLV_SETTING_BOOL, " yes "), 1);
    assert_int_equal(parse_ok(SQLV_SETTING_BOOL, "0"), 0);
    parse_bad(SQLV_SETTING_BOOL, "maybe");
    parse_bad(SQLV_SETTING_BOOL, "true false");
    parse_bad(SQLV_SETTING_BOOL, "truest");
    /* integers */
    assert_int_equal(parse_ok(SQLV_SETTING_INT, "2500"), 2500);
    assert_int_equal(parse_ok(SQLV_SETTING_INT, "-3"), -3);
    parse_bad(SQLV_SETTING_INT, "25k");
    parse_bad(SQLV_SETTING_INT, "9223372036854775808");
    parse_bad(SQLV_SETTING_INT, "");
    char longer[200];
    memset(longer, '1', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    parse_bad(SQLV_SETTING_INT, longer); /* too long: refused, never cut */
}

static void test_bounds_and_round_trip(void **state) {
    (void)state;
    int64_t v = 0;
    char msg[256];
    /* the table */
    assert_int_equal(sqlv_setting_lookup("range_max_bytes"), SQLV_SETTING_RANGE_MAX_BYTES);
    assert_int_equal(sqlv_setting_lookup("RANGE_MIN_BYTES"), SQLV_SETTING_RANGE_MIN_BYTES);
    assert_int_equal(sqlv_setting_lookup("split_qps_threshold"),
                     SQLV_SETTING_SPLIT_QPS_THRESHOLD);
    assert_int_equal(sqlv_setting_lookup("rebalance_enabled"), SQLV_SETTING_REBALANCE_ENABLED);
    assert_int_equal(sqlv_setting_lookup("split_enabled"), SQLV_SETTING_SPLIT_ENABLED);
    assert_int_equal(sqlv_setting_lookup("no_such_setting"), -1);
    assert_null(sqlv_setting_def_get(SQLV_SETTINGS_COUNT));
    assert_null(sqlv_setting_def_get(-1));
    sqlv_settings d;
    sqlv_settings_defaults(&d);
    assert_int_equal(d.values[SQLV_SETTING_RANGE_MAX_BYTES], 64 * MIB);
    assert_int_equal(d.values[SQLV_SETTING_RANGE_MIN_BYTES], 16 * MIB);
    assert_int_equal(d.values[SQLV_SETTING_SPLIT_QPS_THRESHOLD], 2500);
    assert_int_equal(d.values[SQLV_SETTING_REBALANCE_ENABLED], 1);
    assert_int_equal(d.values[SQLV_SETTING_SPLIT_ENABLED], 1);
    /* bounds: range_max_bytes has a 64 KiB floor (for tests) */
    assert_int_equal(sqlv_setting_parse(SQLV_SETTING_RANGE_MAX_BYTES, "64KiB", &v, msg, sizeof msg),
                     0);
    assert_int_equal(v, 64 * KIB);
    assert_int_equal(sqlv_setting_parse(SQLV_SETTING_RANGE_MAX_BYTES, "65535", &v, msg, sizeof msg),
                     -1);
    assert_non_null(strstr(msg, "between 64 KiB and 64 GiB"));
    assert_int_equal(sqlv_setting_parse(SQLV_SETTING_SPLIT_QPS_THRESHOLD, "0", &v, msg, sizeof msg),
                     -1);
    assert_int_equal(sqlv_setting_parse(SQLV_SETTING_SPLIT_ENABLED, "2s", &v, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "split_enabled"));
    assert_int_equal(sqlv_setting_parse(SQLV_SETTING_RANGE_MIN_BYTES, "0", &v, msg, sizeof msg), 0);
    /* the canonical text parses back to the same value */
    static const struct {
        sqlv_setting_type type;
        int64_t v;
        const char *text;
    } cases[] = {
        {SQLV_SETTING_BYTES, 64 * MIB, "64 MiB"},  {SQLV_SETTING_BYTES, 256 * KIB, "256 KiB"},
        {SQLV_SETTING_BYTES, 3 * GIB / 2, "1536 MiB"}, {SQLV_SETTING_BYTES, 1000, "1000 B"},
        {SQLV_SETTING_BYTES, 0, "0 B"},            {SQLV_SETTING_BYTES, 2048 * GIB, "2 TiB"},
        {SQLV_SETTING_DURATION, 10000, "10s"},     {SQLV_SETTING_DURATION, 90000, "90s"},
        {SQLV_SETTING_DURATION, 120000, "2m"},     {SQLV_SETTING_DURATION, 7200000, "2h"},
        {SQLV_SETTING_DURATION, 250, "250ms"},     {SQLV_SETTING_DURATION, 0, "0ms"},
        {SQLV_SETTING_BOOL, 1, "true"},            {SQLV_SETTING_BOOL, 0, "false"},
        {SQLV_SETTING_INT, 2500, "2500"},          {SQLV_SETTING_INT, -7, "-7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[SQLV_SETTING_TEXT_MAX];
        sqlv_setting_format(cases[i].type, cases[i].v, text, sizeof text);
        assert_string_equal(text, cases[i].text);
        assert_int_equal(parse_ok(cases[i].type, text), cases[i].v);
    }
    /* human sizes for event reasons */
    static const struct {
        uint64_t bytes;
        const char *text;
    } human[] = {{0, "0 B"},           {300, "300 B"},           {1024, "1 KiB"},
                 {1536, "1.5 KiB"},    {70 * MIB, "70 MiB"},     {64 * MIB, "64 MiB"},
                 {(uint64_t)(1.25 * MIB), "1.3 MiB"}, {5 * GIB, "5 GiB"}};
    for (size_t i = 0; i < sizeof human / sizeof human[0]; i++) {
        char text[32];
        sqlv_bytes_human(human[i].bytes, text, sizeof text);
        assert_string_equal(text, human[i].text);
    }
}

static void test_value_codec(void **state) {
    (void)state;
    base_buf b = {0}, k = {0};
    int64_t v = 0;
    assert_int_equal(sqlv_setting_value_encode(SQLV_SETTING_RANGE_MAX_BYTES, 256 * KIB, &b), 0);
    assert_int_equal(b.len, 10);
    assert_int_equal(sqlv_setting_value_decode(SQLV_SETTING_RANGE_MAX_BYTES, b.data, b.len, &v),
                     0);
    assert_int_equal(v, 256 * KIB);
    for (size_t n = 0; n < b.len; n++) /* every truncation */
        assert_int_equal(sqlv_setting_value_decode(SQLV_SETTING_RANGE_MAX_BYTES, b.data, n, &v),
                         -1);
    uint8_t longer[11];
    memcpy(longer, b.data, 10);
    longer[10] = 0;
    assert_int_equal(sqlv_setting_value_decode(SQLV_SETTING_RANGE_MAX_BYTES, longer, 11, &v), -1);
    /* another setting's type, a bad version, a value out of its bounds */
    assert_int_equal(sqlv_setting_value_decode(SQLV_SETTING_SPLIT_ENABLED, b.data, b.len, &v), -1);
    b.data[0] = 2;
    assert_int_equal(sqlv_setting_value_decode(SQLV_SETTING_RANGE_MAX_BYTES, b.data, b.len, &v),
                     -1);
    base_buf_reset(&b);
    assert_int_equal(sqlv_setting_value_encode(SQLV_SETTING_RANGE_MAX_BYTES, 1000, &b), 0);
    assert_int_equal(sqlv_setting_value_decode(SQLV_SETTING_RANGE_MAX_BYTES, b.data, b.len, &v),
                     -1);
    /* the key: the system prefix, then the name */
    assert_int_equal(sqlv_setting_key(SQLV_SETTING_SPLIT_ENABLED, &k), 0);
    assert_int_equal(k.len, SQLV_SETTING_PREFIX_LEN + strlen("split_enabled"));
    assert_memory_equal(k.data, SQLV_SETTING_PREFIX, SQLV_SETTING_PREFIX_LEN);
    assert_memory_equal(k.data + SQLV_SETTING_PREFIX_LEN, "split_enabled", 13);
    base_buf_free(&b);
    base_buf_free(&k);
}

/* ---- the statements over a single node's key space -------------------------------------- */

static fixture fx;

static int setup(void **state) {
    (void)state;
    open_all(&fx);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    close_all(&fx);
    return 0;
}

static void read_stored(sqlv_settings *out) {
    txn *t = NULL;
    txn_error err = {{0}, {0}};
    assert_int_equal(txn_begin(fx.db, NULL, &t), TXN_OK);
    assert_int_equal(sqlv_settings_read(t, out, &err), TXN_OK);
    txn_rollback(t);
}

static void test_statements(void **state) {
    (void)state;
    sqlv_session *s = session(&fx);
    EXPECT(s, "SHOW CLUSTER SETTING range_max_bytes",
           "D range_max_bytes:25\nR 64 MiB\nC SHOW\n");
    EXPECT(s, "SET CLUSTER SETTING range_max_bytes = '256KiB'", "C SET CLUSTER SETTING\n");
    EXPECT(s, "SHOW CLUSTER SETTING range_max_bytes",
           "D range_max_bytes:25\nR 256 KiB\nC SHOW\n");
    EXPECT(s, "SET CLUSTER SETTING range_max_bytes TO '512 KiB'", "C SET CLUSTER SETTING\n");
    EXPECT(s, "show cluster setting RANGE_MAX_BYTES;",
           "D range_max_bytes:25\nR 512 KiB\nC SHOW\n");
    EXPECT(s, "SET CLUSTER SETTING range_max_bytes = 131072", "C SET CLUSTER SETTING\n");
    EXPECT(s, "SHOW CLUSTER SETTING range_max_bytes", "D range_max_bytes:25\nR 128 KiB\nC SHOW\n");
    EXPECT(s, "SET CLUSTER SETTING split_enabled = false", "C SET CLUSTER SETTING\n");
    EXPECT(s, "SET CLUSTER SETTING split_qps_threshold = 3100", "C SET CLUSTER SETTING\n");
    EXPECT(s, "SHOW CLUSTER SETTING split_enabled", "D split_enabled:25\nR false\nC SHOW\n");
    sqlv_settings st;
    read_stored(&st);
    assert_true(st.stored[SQLV_SETTING_RANGE_MAX_BYTES]);
    assert_int_equal(st.values[SQLV_SETTING_RANGE_MAX_BYTES], 128 * KIB);
    assert_int_equal(st.values[SQLV_SETTING_SPLIT_ENABLED], 0);
    assert_int_equal(st.values[SQLV_SETTING_SPLIT_QPS_THRESHOLD], 3100);
    assert_false(st.stored[SQLV_SETTING_RANGE_MIN_BYTES]);
    assert_int_equal(st.values[SQLV_SETTING_RANGE_MIN_BYTES], 16 * MIB);
    /* every setting, with its type and description */
    char *all = run(s, "SHOW ALL CLUSTER SETTINGS");
    assert_non_null(strstr(all, "D name:25,value:25,type:25,description:25\n"));
    assert_non_null(strstr(all, "R range_max_bytes|128 KiB|bytes|"));
    assert_non_null(strstr(all, "R range_min_bytes|16 MiB|bytes|"));
    assert_non_null(strstr(all, "R split_qps_threshold|3100|int|"));
    assert_non_null(strstr(all, "R rebalance_enabled|true|bool|"));
    assert_non_null(strstr(all, "R split_enabled|false|bool|"));
    free(all);
    char *plain = run(s, "SHOW CLUSTER SETTINGS");
    assert_non_null(strstr(plain, "R split_enabled|false|bool|"));
    free(plain);
    /* RESET and = DEFAULT: the default again, the key gone */
    EXPECT(s, "RESET CLUSTER SETTING split_enabled", "C RESET CLUSTER SETTING\n");
    EXPECT(s, "SET CLUSTER SETTING range_max_bytes = DEFAULT", "C SET CLUSTER SETTING\n");
    EXPECT(s, "SHOW CLUSTER SETTING split_enabled", "D split_enabled:25\nR true\nC SHOW\n");
    EXPECT(s, "SHOW CLUSTER SETTING range_max_bytes", "D range_max_bytes:25\nR 64 MiB\nC SHOW\n");
    read_stored(&st);
    assert_false(st.stored[SQLV_SETTING_SPLIT_ENABLED]);
    assert_false(st.stored[SQLV_SETTING_RANGE_MAX_BYTES]);
    assert_true(st.stored[SQLV_SETTING_SPLIT_QPS_THRESHOLD]);
    /* refusals */
    expect_error(s, "SHOW CLUSTER SETTING no_such_thing", "42704");
    expect_error(s, "SET CLUSTER SETTING no_such_thing = 1", "42704");
    expect_error(s, "RESET CLUSTER SETTING no_such_thing", "42704");
    expect_error(s, "SET CLUSTER SETTING range_max_bytes = '1KiB'", "22023"); /* below the floor */
    expect_error(s, "SET CLUSTER SETTING range_max_bytes = 'lots'", "22023");
    expect_error(s, "SET CLUSTER SETTING split_enabled = 'sometimes'", "22023");
    expect_error(s, "SET CLUSTER SETTING range_max_bytes", "42601");
    expect_error(s, "SET CLUSTER SETTING = 5", "42601");
    expect_error(s, "SET CLUSTER range_max_bytes = 5", "42601");
    expect_error(s, "SHOW CLUSTER SETTING", "42601");
    expect_error(s, "SHOW ALL CLUSTER SETTING range_max_bytes", "42601");
    expect_error(s, "RESET CLUSTER SETTING range_max_bytes extra", "42601");
    EXPECT(s, "BEGIN", "C BEGIN\n");
    expect_error(s, "SET CLUSTER SETTING split_enabled = false", "25001");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    EXPECT(s, "BEGIN", "C BEGIN\n");
    /* SHOW works inside a block (its own read-only transaction) */
    EXPECT(s, "SHOW CLUSTER SETTING split_qps_threshold",
           "D split_qps_threshold:25\nR 3100\nC SHOW\n");
    EXPECT(s, "COMMIT", "C COMMIT\n");
    /* session settings are untouched by the new statements */
    EXPECT(s, "SET application_name = 'x'", "C SET\n");
    EXPECT(s, "SHOW application_name", "D application_name:25\nR x\nC SHOW\n");
    sqlv_session_close(s);
}

/* A value another version wrote (a bad one, an unknown name) reads as the
** default, never as an error. */
static void test_read_ignores_what_it_cannot_use(void **state) {
    (void)state;
    txn *t = NULL;
    txn_error err = {{0}, {0}};
    base_buf k = {0};
    assert_int_equal(txn_begin(fx.db, NULL, &t), TXN_OK);
    assert_int_equal(sqlv_setting_key(SQLV_SETTING_RANGE_MAX_BYTES, &k), 0);
    assert_int_equal(txn_put(t, k.data, k.len, (const uint8_t *)"junk", 4, &err), TXN_OK);
    base_buf_reset(&k);
    assert_int_equal(base_buf_append(&k, SQLV_SETTING_PREFIX, SQLV_SETTING_PREFIX_LEN), 0);
    assert_int_equal(base_buf_append(&k, "from_the_future", 15), 0);
    assert_int_equal(txn_put(t, k.data, k.len, (const uint8_t *)"x", 1, &err), TXN_OK);
    int64_t v = 4 * MIB;
    assert_int_equal(sqlv_setting_write(t, SQLV_SETTING_RANGE_MIN_BYTES, &v, &err), TXN_OK);
    v = 7; /* never stored: out of bounds */
    assert_int_equal(sqlv_setting_write(t, SQLV_SETTING_RANGE_MAX_BYTES, &v, &err),
                     TXN_ERR_INVALID);
    assert_int_equal(txn_commit(t, NULL, &err), TXN_OK);
    sqlv_settings st;
    read_stored(&st);
    assert_false(st.stored[SQLV_SETTING_RANGE_MAX_BYTES]);
    assert_int_equal(st.values[SQLV_SETTING_RANGE_MAX_BYTES], 64 * MIB);
    assert_true(st.stored[SQLV_SETTING_RANGE_MIN_BYTES]);
    assert_int_equal(st.values[SQLV_SETTING_RANGE_MIN_BYTES], 4 * MIB);
    sqlv_session *s = session(&fx);
    EXPECT(s, "SHOW CLUSTER SETTING range_max_bytes", "D range_max_bytes:25\nR 64 MiB\nC SHOW\n");
    sqlv_session_close(s);
    base_buf_free(&k);
}

#define HBA "server.host_based_authentication.configuration"

static void test_hba_setting(void **state) {
    (void)state;
    sqlv_session *s = session(&fx);
    sqlv_auth_info ai;
    EXPECT(s, "SHOW CLUSTER SETTING " HBA, "D " HBA ":25\nR \nC SHOW\n");
    EXPECT(s,
           "SET CLUSTER SETTING " HBA " = 'host all app 10.0.0.0/8 password\n"
           "# the rest by certificate\nhost all all all cert'",
           "C SET CLUSTER SETTING\n");
    EXPECT(s, "SHOW CLUSTER SETTING " HBA,
           "D " HBA ":25\nR host all app 10.0.0.0/8 password\n# the rest by certificate\n"
           "host all all all cert\nC SHOW\n");
    char *all = run(s, "SHOW ALL CLUSTER SETTINGS");
    assert_non_null(strstr(all, "R " HBA "|host all app 10.0.0.0/8 password\n"));
    assert_non_null(strstr(all, "|string|"));
    free(all);
    sqlv_settings st;
    read_stored(&st);
    assert_true(st.stored[SQLV_SETTING_HBA_CONF]);
    assert_string_equal(st.hba_conf, "host all app 10.0.0.0/8 password\n"
                                     "# the rest by certificate\nhost all all all cert");
    assert_int_equal(st.values[SQLV_SETTING_HBA_CONF], (int64_t)strlen(st.hba_conf));
    assert_int_equal(sqlv_auth_lookup(fx.sql, "nobody", &ai), SQLV_OK);
    assert_false(ai.exists);
    assert_string_equal(ai.hba_conf, st.hba_conf); /* read at every login */
    /* a bad rule is refused, naming its line; the stored text stays */
    char *bad = run(s, "SET CLUSTER SETTING " HBA " = 'host all all all cert\nhost all all all "
                       "sometimes'");
    assert_non_null(strstr(bad, "E 22023 "));
    assert_non_null(strstr(bad, "line 2 (host all all all sometimes): unknown authentication"));
    free(bad);
    expect_error(s, "SET CLUSTER SETTING " HBA " = 'host all all 1.2.3.4/40 cert'", "22023");
    expect_error(s, "SET CLUSTER SETTING " HBA " = 'hots all all all cert'", "22023");
    read_stored(&st);
    assert_non_null(strstr(st.hba_conf, "host all all all cert"));
    /* the text codec: round trip; every bad byte refused */
    base_buf b = {0};
    char back[SEC_HBA_TEXT_BYTES_MAX + 1];
    assert_int_equal(sqlv_setting_text_encode(SQLV_SETTING_HBA_CONF, "local all all reject", &b),
                     0);
    assert_int_equal(sqlv_setting_text_decode(SQLV_SETTING_HBA_CONF, b.data, b.len, back,
                                              sizeof back),
                     0);
    assert_string_equal(back, "local all all reject");
    assert_int_equal(sqlv_setting_text_decode(SQLV_SETTING_HBA_CONF, b.data, 1, back, sizeof back),
                     -1);
    assert_int_equal(sqlv_setting_text_decode(SQLV_SETTING_HBA_CONF, b.data, b.len - 3, back,
                                              sizeof back),
                     -1); /* "local all all rej": no such method */
    assert_int_equal(sqlv_setting_text_decode(SQLV_SETTING_RANGE_MAX_BYTES, b.data, b.len, back,
                                              sizeof back),
                     -1);
    b.data[5] = 0;
    assert_int_equal(sqlv_setting_text_decode(SQLV_SETTING_HBA_CONF, b.data, b.len, back,
                                              sizeof back),
                     -1);
    b.data[5] = 'l';
    b.data[0] = 9;
    assert_int_equal(sqlv_setting_text_decode(SQLV_SETTING_HBA_CONF, b.data, b.len, back,
                                              sizeof back),
                     -1);
    assert_int_equal(sqlv_setting_value_encode(SQLV_SETTING_HBA_CONF, 5, &b), -1);
    base_buf_free(&b);
    /* never stored unchecked */
    txn *t = NULL;
    txn_error err = {{0}, {0}};
    assert_int_equal(txn_begin(fx.db, NULL, &t), TXN_OK);
    assert_int_equal(sqlv_setting_write_text(t, SQLV_SETTING_HBA_CONF, "nonsense", &err),
                     TXN_ERR_INVALID);
    txn_rollback(t);
    /* admins only */
    sqlv_session *app = NULL;
    exec_ok(s, "CREATE USER app");
    assert_int_equal(sqlv_session_open(fx.sql, "app", "defaultdb", &app), SQLV_OK);
    expect_error(app, "SET CLUSTER SETTING " HBA " = 'host all all all trust'", "42501");
    expect_error(app, "RESET CLUSTER SETTING " HBA, "42501");
    expect_error(app, "SHOW CLUSTER SETTING " HBA, "42501"); /* nor read them */
    expect_error(app, "SHOW ALL CLUSTER SETTINGS", "42501");
    sqlv_session_close(app);
    /* RESET: the built-in rule again */
    EXPECT(s, "RESET CLUSTER SETTING " HBA, "C RESET CLUSTER SETTING\n");
    read_stored(&st);
    assert_false(st.stored[SQLV_SETTING_HBA_CONF]);
    assert_string_equal(st.hba_conf, "");
    assert_int_equal(sqlv_auth_lookup(fx.sql, "app", &ai), SQLV_OK);
    assert_true(ai.exists);
    assert_string_equal(ai.hba_conf, "");
    /* '' is a valid text too: no rule, which is the built-in rule */
    EXPECT(s, "SET CLUSTER SETTING " HBA " = ''", "C SET CLUSTER SETTING\n");
    sqlv_session_close(s);
}

int main(void) {
    base_log_set_level(BASE_LOG_ERROR); /* the bad values read above log a WARN */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_types),
        cmocka_unit_test(test_bounds_and_round_trip),
        cmocka_unit_test(test_value_codec),
        cmocka_unit_test_setup_teardown(test_statements, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_ignores_what_it_cannot_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hba_setting, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
