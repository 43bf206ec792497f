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

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void test_crc32c_known(void **state)
{
    (void)state;
    /* RFC 3720 / iSCSI check value. */
    assert_int_equal(base_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(base_crc32c(0, "", 0), 0);
    uint8_t zeros[32] = {0};
    assert_int_equal(base_crc32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
    /* chaining equals one pass */
    uint32_t a = base_crc32c(0, "1234", 4);
    assert_int_equal(base_crc32c(a, "56789", 5), 0xE3069283u);
}

static void test_crc32c_sw_equals_hw(void **state)
{
    (void)state;
    const char *v = "123456789";
    assert_int_equal(base__crc32c_sw(0, v, 9), 0xE3069283u);
    assert_int_equal(base__crc32c_hw(0, v, 9), 0xE3069283u);
    assert_int_equal(base_crc32c(0, v, 9), 0xE3069283u);
    assert_int_equal(base_crc32c(base_crc32c(0, v, 4), v + 4, 5), 0xE3069283u);
    uint8_t buf[1000];
    uint64_t s = 42; /* splitmix64 */
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)splitmix(&s);
    for (size_t len = 0; len < sizeof buf; len += 1 + len / 8)
        for (size_t off = 0; off < 9; off++)
            if (off + len <= sizeof buf)
                assert_int_equal(base__crc32c_sw(7, buf + off, len),
                                 base__crc32c_hw(7, buf + off, len));
    print_message("sse4.2 crc32c: %s\n", base__crc32c_hw_available() ? "yes" : "no (software)");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_grows_and_formats),
        cmocka_unit_test(test_alloc_fault_injection),
        cmocka_unit_test(test_strlcpy_truncates),
        cmocka_unit_test(test_crc32c_known),
        cmocka_unit_test(test_crc32c_sw_equals_hw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
