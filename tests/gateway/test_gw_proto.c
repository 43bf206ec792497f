/* Unit tests of the pure message encoding and startup decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

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
    sqlv_column col = {"x", 23, 4};
    assert_int_equal(gw_msg_row_description(&b, 1, &col), 0);
    assert_int_equal(b.len, 1 + 4 + 2 + 2 + 18);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_encode_out_of_memory_leaves_buffer),
        cmocka_unit_test(test_parse_startup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
