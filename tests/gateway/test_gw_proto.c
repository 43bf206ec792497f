/* Unit tests of the pure message encoding and startup decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gateway/gw_int.h"
#include "gw_test_util.h"

static void test_encode(void **state)
{
    base_buf b = {0};
    assert_int_equal(gw_msg_ready_for_query(&b, 'T'), 0);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "Z\0\0\0\5T", 6);
    base_buf_reset(&b);
    sqlv_cell cells[2] = {{"ab", 2}, {NULL, 0}};
    assert_int_equal(gw_msg_data_row(&b, 2, cells), 0);
    assert_int_equal(b.len, 1 + 4 + 2 + 4 + 2 + 4);
    assert_memory_equal(b.data, "D\0\0\0\20\0\2\0\0\0\2ab\xff\xff\xff\xff", b.len);
    base_buf_reset(&b);
    assert_int_equal(gw_msg_error(&b, "ERROR", "42601", "bad"), 0);
    assert_memory_equal(b.data, "E\0\0\0\37SERROR\0VERROR\0C42601\0Mbad\0\0", b.len);
    base_buf_reset(&b);
    /* a folded DETAIL and HINT go out as fields D and H */
    assert_int_equal(gw_msg_error(&b, "ERROR", "23505", "dup\nDETAIL:  Key (a)=(1).\nHINT:  h"), 0);
    assert_int_equal(b.len, 1 + 4 + 7 + 7 + 7 + 5 + 14 + 3 + 1);
    assert_memory_equal(b.data + 19, "C23505\0Mdup\0DKey (a)=(1).\0Hh\0\0", b.len - 19);
    base_buf_reset(&b);
    assert_int_equal(gw_msg_error(&b, "ERROR", "23505", "dup\nDETAIL:  d"), 0);
    assert_int_equal(b.len, 1 + 4 + 7 + 7 + 7 + 5 + 3 + 1);
    assert_memory_equal(b.data + 19, "C23505\0Mdup\0Dd\0\0", b.len - 19);
    base_buf_reset(&b);
    sqlv_column col = {"x", 23, 4, 0};
    assert_int_equal(gw_msg_row_description(&b, 1, &col), 0);
    assert_int_equal(b.len, 1 + 4 + 2 + 2 + 18);
    base_buf_reset(&b);
    /* CopyInResponse: text overall, 2 text columns */
    assert_int_equal(gw_msg_copy_in_response(&b, 2), 0);
    assert_int_equal(b.len, 1 + 4 + 1 + 2 + 2 * 2);
    assert_memory_equal(b.data, "G\0\0\0\13\0\0\2\0\0\0\0", b.len);
    base_buf_free(&b);
}

static void test_encode_out_of_memory_leaves_buffer(void **state)
{
    base_buf b = {0};
    assert_int_equal(gw_msg_command_complete(&b, "SELECT 1"), 0);
    size_t len = b.len;
    char big[200000];
    memset(big, 'x', sizeof big);
    sqlv_cell cell = {big, sizeof big};
    base_alloc_fail_after(0);
    int rc = gw_msg_data_row(&b, 1, &cell);
    base_alloc_fail_after(-1);
    assert_true(rc != 0);
    assert_int_equal(b.len, len);
    base_buf_free(&b);
}

static void test_parse_startup(void **state)
{
    base_buf b = {0};
    tu_startup(&b, "root", "defaultdb");
    gw_startup st;
    const char *why;
    assert_int_equal(gw_parse_startup(b.data, (uint32_t)b.len, &st, &why), GW_STARTUP_OK);
    assert_string_equal(st.user, "root");
    assert_string_equal(st.database, "defaultdb");
    /* Every truncation is rejected with the length fixed up. */
    for (size_t cut = 8; cut < b.len; cut++) {
        base_buf t = {0};
        tu_put_u32(&t, (uint32_t)cut);
        base_buf_append(&t, b.data + 4, cut - 4);
        assert_int_not_equal(gw_parse_startup(t.data, (uint32_t)cut, &st, &why), GW_STARTUP_OK);
        base_buf_free(&t);
    }
    base_buf_reset(&b);
    tu_startup(&b, "root", NULL);
    assert_int_equal(gw_parse_startup(b.data, (uint32_t)b.len, &st, &why), GW_STARTUP_OK);
    assert_string_equal(st.database, "root");
    base_buf_reset(&b);
    tu_put_u32(&b, 8);
    tu_put_u32(&b, 4u << 16);
    assert_int_equal(gw_parse_startup(b.data, 8, &st, &why), GW_STARTUP_VERSION);
    base_buf_free(&b);
}

/* Decoding of extended-protocol messages: valid ones, then every cut and
** many random bodies (ASan checks that nothing reads past the body). */
/* gw_option_fn: "name=value;" appended to the string arg. */
static int collect_option(void *arg, const char *name, const char *value, char state[6],
                          char *msg, size_t size)
{
    char *out = arg;
    size_t n = strlen(out);
    if (strcmp(name, "refused") == 0) {
        memcpy(state, "42704", 6);
        snprintf(msg, size, "refused by the session");
        return 1;
    }
    snprintf(out + n, 256 - n, "%s=%s;", name, value);
    return 0;
}

/* The startup options as PostgreSQL splits and reads them. */
static void test_startup_options(void **state)
{
    (void)state;
    static const struct {
        const char *options, *want, *state;
    } cases[] = {
        {"", "", NULL},
        {"   ", "", NULL},
        {"-c a=1", "a=1;", NULL},
        {" -c  a=1\t-cb=2 --c-d-e=x=y ", "a=1;b=2;c_d_e=x=y;", NULL},
        {"-c application_name=a\\ b\\\\c", "application_name=a b\\c;", NULL},
        {"-c a=", "a=;", NULL},
        {"-c", "", "42601"},
        {"-c a", "", "42601"},
        {"--a", "", "42601"},
        {"-c =1", "", "42601"},
        {"-c a=1 -B 100", "a=1;", "42601"},
        {"positional", "", "42601"},
        {"-c a=1 -c refused=1 -c b=2", "a=1;", "42704"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[256] = "", st[6] = "", msg[128] = "";
        int rc = gw_startup_options(cases[i].options, collect_option, got, st, msg, sizeof msg);
        if (cases[i].state == NULL) {
            if (rc != 0)
                fail_msg("%s: %s %s", cases[i].options, st, msg);
        } else {
            assert_int_not_equal(rc, 0);
            assert_string_equal(st, cases[i].state);
            assert_true(msg[0] != '\0');
        }
        assert_string_equal(got, cases[i].want);
    }
}

static void test_decode_ext(void **state)
{
    (void)state;
    gw_ext_msg m;
    const char *why = NULL;
    /* Bind "p" from "s": 2 formats (text, binary), 2 values ("ab", NULL),
    ** 1 result format (binary). */
    static const uint8_t bind[] = {'p', 0, 's', 0, 0, 2, 0, 0, 0, 1, 0, 2, 0, 0, 0, 2, 'a', 'b',
                                   0xff, 0xff, 0xff, 0xff, 0, 1, 0, 1};
    assert_int_equal(gw_decode_ext('B', bind, sizeof bind, &m, &why), 0);
    assert_string_equal(m.portal, "p");
    assert_string_equal(m.stmt, "s");
    assert_int_equal(m.nformats, 2);
    assert_int_equal(m.formats[1], 1);
    assert_int_equal(m.nvalues, 2);
    assert_int_equal(m.values[0].len, 2);
    assert_memory_equal(m.values[0].data, "ab", 2);
    assert_null(m.values[1].data);
    assert_int_equal(m.nresult_formats, 1);
    assert_int_equal(m.result_formats[0], 1);
    gw_ext_msg_free(&m);
    /* every strict prefix is malformed, never a crash */
    for (size_t n = 0; n < sizeof bind; n++) {
        uint8_t *copy = base_malloc(n + 1); /* exact size for ASan */
        memcpy(copy, bind, n);
        assert_int_equal(gw_decode_ext('B', copy, (uint32_t)n, &m, &why), -1);
        assert_non_null(why);
        base_free(copy);
    }
    /* negative length other than -1 */
    static const uint8_t neg[] = {0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xf0, 0, 0};
    assert_int_equal(gw_decode_ext('B', neg, sizeof neg, &m, &why), -1);
    /* a count larger than the message */
    static const uint8_t big[] = {0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0};
    assert_int_equal(gw_decode_ext('B', big, sizeof big, &m, &why), -1);
    /* Parse with 2 types */
    static const uint8_t parse[] = {'s', 0, 'S', 'E', 'L', 0, 0, 2, 0, 0, 0, 23, 0, 0, 0, 25};
    assert_int_equal(gw_decode_ext('P', parse, sizeof parse, &m, &why), 0);
    assert_int_equal(m.nparam_oids, 2);
    assert_int_equal(m.param_oids[1], 25);
    assert_int_equal(m.query_len, 3);
    gw_ext_msg_free(&m);
    static const uint8_t exec[] = {'p', 0, 0, 0, 0, 5};
    assert_int_equal(gw_decode_ext('E', exec, sizeof exec, &m, &why), 0);
    assert_int_equal(m.max_rows, 5);
    gw_ext_msg_free(&m);
    static const uint8_t desc_bad[] = {'X', 'p', 0};
    assert_int_equal(gw_decode_ext('D', desc_bad, sizeof desc_bad, &m, &why), -1);
    static const uint8_t extra[] = {'S', 'p', 0, 1};
    assert_int_equal(gw_decode_ext('C', extra, sizeof extra, &m, &why), -1);
    /* random bodies */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int iter = 0; iter < 20000; iter++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t n = (size_t)(x % 40);
        uint8_t *body = base_malloc(n + 1);
        uint64_t y = x;
        for (size_t i = 0; i < n; i++) {
            y = y * 6364136223846793005ull + 1442695040888963407ull;
            uint8_t v = (uint8_t)(y >> 56);
            body[i] = (v & 0x80) ? v : (uint8_t)(v & 3); /* many small counts */
        }
        char type = "PBDECSH"[x % 7];
        if (gw_decode_ext(type, body, (uint32_t)n, &m, &why) == 0)
            gw_ext_msg_free(&m);
        base_free(body);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_decode_ext),
        cmocka_unit_test(test_encode_out_of_memory_leaves_buffer),
        cmocka_unit_test(test_parse_startup),
        cmocka_unit_test(test_startup_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
