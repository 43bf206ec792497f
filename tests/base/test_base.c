/* Tests for base/: buffers and allocation fault injection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"

static void test_buf_grows_and_formats(void **state) {
    (void)state;
    base_buf b = {0};
    for (int i = 0; i < 1000; i++) assert_int_equal(base_buf_append_byte(&b, (uint8_t)i), 0);
    assert_int_equal(b.len, 1000);
    assert_int_equal(b.data[999], (uint8_t)999);
    base_buf_reset(&b);
    assert_int_equal(base_buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, "42-x", 4);
    base_buf_free(&b);
    assert_null(b.data);
}

static void test_alloc_fault_injection(void **state) {
    (void)state;
    base_alloc_fail_after(2);
    void *a = base_malloc(8), *b = base_malloc(8), *c = base_malloc(8);
    base_alloc_fail_after(-1);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    base_free(a);
    base_free(b);
    base_buf buf = {0};
    base_alloc_fail_after(0);
    assert_int_not_equal(base_buf_append(&buf, "x", 1), 0);
    base_alloc_fail_after(-1);
    assert_int_equal(buf.len, 0);
}

static void test_strlcpy_truncates(void **state) {
    (void)state;
    char d[4];
    base_strlcpy(d, "abcdef", sizeof d);
    assert_string_equal(d, "abc");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_grows_and_formats),
        cmocka_unit_test(test_alloc_fault_injection),
        cmocka_unit_test(test_strlcpy_truncates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
