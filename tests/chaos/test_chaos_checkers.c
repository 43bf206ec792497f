/*
** tests/chaos/test_chaos_checkers.c: hand-made histories with known
** anomalies (each must be flagged with the right class) and valid ones
** (each must pass); parser errors; out-of-memory at every allocation.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/chaos/chaos.h"

static chaos_history *parse(const char *text) {
    chaos_history *h = NULL;
    char err[256];
    int rc = chaos_history_parse(text, strlen(text), &h, err, sizeof err);
    if (rc) fprintf(stderr, "parse error: %s\n", err);
    assert_int_equal(rc, 0);
    return h;
}

typedef enum { W_APPEND, W_APPEND_SER, W_REGISTER, W_BANK, W_SET } which;

/* Run a checker; the verdict must be `want`, and when want_anomaly >= 0
** that class must be among the anomalies. Prints the report. */
static void expect(which w, const char *text, chaos_verdict want, int want_anomaly) {
    chaos_history *h = parse(text);
    chaos_result r;
    int rc = 0;
    switch (w) {
    case W_APPEND: rc = chaos_check_list_append(h, &(chaos_append_opts){.realtime = true}, &r); break;
    case W_APPEND_SER: rc = chaos_check_list_append(h, &(chaos_append_opts){.realtime = false}, &r); break;
    case W_REGISTER: rc = chaos_check_register(h, &(chaos_register_opts){.initial = CHAOS_NIL}, &r); break;
    case W_BANK: rc = chaos_check_bank(h, &(chaos_bank_opts){.total = 100, .accounts = 2}, &r); break;
    case W_SET: rc = chaos_check_set(h, &r); break;
    }
    assert_int_equal(rc, 0);
    printf("---\n%s", (const char *)r.report.data);
    assert_int_equal(r.verdict, want);
    if (want_anomaly >= 0) assert_true(chaos_result_has(&r, (chaos_anomaly)want_anomaly));
    if (want == CHAOS_VALID) assert_int_equal(r.anomalies, 0);
    chaos_result_free(&r);
    chaos_history_free(h);
}

/* ---- list-append: valid ----------------------------------------------- */
static void test_append_serial_valid(void **state) {
    (void)state;
    expect(W_APPEND,
           "# serial\n"
           "0 ok 0 10 append 1 1; read 1 [1]\n"
           "1 ok 20 30 read 1 [1]; append 1 2; append 2 1\n"
           "0 ok 40 50 read 1 [1 2]; read 2 [1]\n",
           CHAOS_VALID, -1);
}

static void test_append_concurrent_valid(void **state) {
    (void)state;
    /* T1 and T2 overlap: T2 may serialize before T1 even though it reads
    ** after T1 was invoked. */
    expect(W_APPEND,
           "0 ok 0 100 append 1 1; read 2 []\n"
           "1 ok 10 90 read 1 []; append 2 1\n"
           "2 ok 200 210 read 1 [1]; read 2 [1]\n",
           CHAOS_INVALID, CHAOS_ANOM_G2);  /* write skew shape: rw both ways */
    expect(W_APPEND,
           "0 ok 0 100 append 1 1; read 2 [1]\n"
           "1 ok 10 90 read 1 []; append 2 1\n"
           "2 ok 200 210 read 1 [1]; read 2 [1]\n",
           CHAOS_VALID, -1);
}

static void test_append_indeterminate_valid(void **state) {
    (void)state;
    expect(W_APPEND,
           "0 info 0 10 append 1 1\n"            /* observed: committed */
           "1 info 5 - append 1 7\n"             /* never observed */
           "2 fail 6 8 append 1 9\n"             /* failed, never observed */
           "3 invoke 7 - append 2 1; read 1 ?\n" /* never completed */
           "4 ok 20 30 read 1 [1]; append 1 2\n"
           "4 ok 40 50 read 1 [1 2]; read 2 [1]\n",
           CHAOS_VALID, -1);
}

/* ---- list-append: anomalies ------------------------------------------- */
static void test_append_lost_update(void **state) {
    (void)state;
    expect(W_APPEND,
           "0 ok 0 10 read 1 []; append 1 1\n"
           "1 ok 0 10 read 1 []; append 1 2\n"
           "2 ok 20 30 read 1 [1 2]\n",
           CHAOS_INVALID, CHAOS_ANOM_G_SINGLE);
}

static void test_append_write_skew(void **state) {
    (void)state;
    expect(W_APPEND_SER,
           "0 ok 0 10 read 1 []; read 2 []; append 1 1\n"
           "1 ok 0 10 read 1 []; read 2 []; append 2 1\n"
           "2 ok 20 30 read 1 [1]; read 2 [1]\n",
           CHAOS_INVALID, CHAOS_ANOM_G2);
}

static void test_append_g1c(void **state) {
    (void)state;
    expect(W_APPEND_SER,
           "0 ok 0 10 append 1 1; read 2 [1]\n"
           "1 ok 0 10 append 2 1; read 1 [1]\n",
           CHAOS_INVALID, CHAOS_ANOM_G1C);
}

static void test_append_g0(void **state) {
    (void)state;
    expect(W_APPEND_SER,
           "0 ok 0 10 append 1 1; append 2 1\n"
           "1 ok 0 10 append 1 2; append 2 2\n"
           "2 ok 20 30 read 1 [1 2]; read 2 [2 1]\n",
           CHAOS_INVALID, CHAOS_ANOM_G0);
}

static void test_append_aborted_read(void **state) {
    (void)state;
    expect(W_APPEND,
           "0 fail 0 10 append 1 1\n"
           "1 ok 20 30 read 1 [1]\n",
           CHAOS_INVALID, CHAOS_ANOM_G1A);
}

static void test_append_intermediate_read(void **state) {
    (void)state;
    expect(W_APPEND,
           "0 ok 0 10 append 1 1; append 1 2\n"
           "1 ok 0 10 read 1 [1]\n",
           CHAOS_INVALID, CHAOS_ANOM_G1B);
}

static void test_append_stale_read_realtime(void **state) {
    (void)state;
    const char *h =
        "0 ok 0 10 append 1 1\n"
        "1 ok 20 30 read 1 []\n"   /* invoked after the append completed */
        "2 ok 40 50 read 1 [1]\n";
    expect(W_APPEND, h, CHAOS_INVALID, CHAOS_ANOM_REALTIME);
    expect(W_APPEND_SER, h, CHAOS_VALID, -1);  /* serializable, not strict */
    /* a lost acknowledged append: never read, though read after it completed */
    const char *lost =
        "0 ok 0 10 append 1 1\n"
        "1 ok 5 15 append 1 2\n"
        "2 ok 20 30 read 1 [2]\n";
    expect(W_APPEND, lost, CHAOS_INVALID, CHAOS_ANOM_REALTIME);
    expect(W_APPEND_SER, lost, CHAOS_VALID, -1);
    /* an indeterminate or concurrent append that is never read is fine */
    expect(W_APPEND, "0 info 0 10 append 1 1\n1 ok 5 25 append 1 2\n2 ok 20 30 read 1 [2]\n", CHAOS_VALID, -1);
}

static void test_append_garbage_duplicate_internal_incompatible(void **state) {
    (void)state;
    expect(W_APPEND, "0 ok 0 10 read 1 [5]\n", CHAOS_INVALID, CHAOS_ANOM_GARBAGE_READ);
    expect(W_APPEND, "0 ok 0 10 append 1 1\n1 ok 0 10 append 1 1\n", CHAOS_INVALID, CHAOS_ANOM_DUPLICATE_APPEND);
    expect(W_APPEND, "0 ok 0 10 append 1 1\n1 ok 20 30 read 1 [1 1]\n", CHAOS_INVALID, CHAOS_ANOM_DUPLICATE_APPEND);
    expect(W_APPEND, "0 ok 0 10 append 1 1; read 1 []\n", CHAOS_INVALID, CHAOS_ANOM_INTERNAL);
    expect(W_APPEND, "0 ok 0 10 read 1 []; append 1 1; read 1 [1]\n", CHAOS_VALID, -1);
    expect(W_APPEND,
           "0 ok 0 10 append 1 1\n1 ok 0 10 append 1 2\n"
           "2 ok 20 30 read 1 [1 2]\n3 ok 20 30 read 1 [2 1]\n",
           CHAOS_INVALID, CHAOS_ANOM_INCOMPATIBLE_ORDER);
}

static void test_append_fractured_and_future_reads(void **state) {
    (void)state;
    /* T0 sees T1's append to key 0 but not its append to key 1, which no
    ** one ever reads: the unread append still follows [] in key 1's order */
    expect(W_APPEND_SER,
           "0 ok 0 10 read 1 []; read 0 [1]\n"
           "1 ok 0 10 append 0 1; append 1 2\n",
           CHAOS_INVALID, CHAOS_ANOM_G_SINGLE);
    /* an info txn whose append was seen committed: same inference */
    expect(W_APPEND_SER,
           "0 ok 0 10 read 1 []; read 0 [1]\n"
           "1 info 0 - append 0 1; append 1 2\n",
           CHAOS_INVALID, CHAOS_ANOM_G_SINGLE);
    /* a read shows a txn's second append without its first */
    expect(W_APPEND,
           "0 ok 0 10 append 0 1; append 0 2\n"
           "1 ok 20 30 read 0 [2]\n",
           CHAOS_INVALID, CHAOS_ANOM_INCOMPATIBLE_ORDER);
    /* a read of a value its own txn appends only later */
    expect(W_APPEND, "0 ok 0 10 read 0 [1]; append 0 1\n", CHAOS_INVALID, CHAOS_ANOM_INTERNAL);
}

static void test_nothing_checked_is_unknown(void **state) {
    (void)state;
    expect(W_APPEND, "# empty\n", CHAOS_UNKNOWN, -1);
    expect(W_APPEND, "0 ok 0 10 append 1 1\n", CHAOS_UNKNOWN, -1);
    expect(W_REGISTER, "0 info 0 - write 1 1\n0 fail 0 1 read 1 ?\n", CHAOS_UNKNOWN, -1);
}

/* With no budget left the cycle is still reported (class unknown), never
** dropped. */
static void test_append_budget(void **state) {
    (void)state;
    chaos_history *h = parse(
        "0 ok 0 10 read 1 []; read 2 []; append 1 1\n"
        "1 ok 0 10 read 1 []; read 2 []; append 2 1\n"
        "2 ok 20 30 read 1 [1]; read 2 [1]\n");
    chaos_result r;
    assert_int_equal(chaos_check_list_append(h, &(chaos_append_opts){.realtime = true, .search_budget = 1}, &r), 0);
    printf("%s", (const char *)r.report.data);
    assert_int_equal(r.verdict, CHAOS_INVALID);
    assert_true(chaos_result_has(&r, CHAOS_ANOM_CYCLE));
    chaos_result_free(&r);
    chaos_history_free(h);
}

static void test_append_wrong_workload(void **state) {
    (void)state;
    chaos_history *h = parse("0 ok 0 1 write 1 1\n");
    chaos_result r;
    assert_int_equal(chaos_check_list_append(h, NULL, &r), CHAOS_EWORKLOAD);
    chaos_result_free(&r);
    assert_int_equal(chaos_check_set(h, &r), CHAOS_EWORKLOAD);
    chaos_result_free(&r);
    assert_int_equal(chaos_check_bank(h, &(chaos_bank_opts){0}, &r), CHAOS_EWORKLOAD);
    chaos_result_free(&r);
    chaos_history_free(h);
    h = parse("0 ok 0 1 append 1 1\n");
    assert_int_equal(chaos_check_register(h, NULL, &r), CHAOS_EWORKLOAD);
    chaos_result_free(&r);
    chaos_history_free(h);
}

/* ---- register ------------------------------------------------------------ */
static void test_register_valid(void **state) {
    (void)state;
    expect(W_REGISTER,
           "0 ok 0 10 read 1 nil\n"
           "0 ok 20 30 write 1 1\n"
           "1 ok 40 50 read 1 1\n"
           "1 ok 60 70 cas 1 1 2\n"
           "0 fail 60 70 cas 1 5 6\n"
           "0 ok 80 90 read 1 2\n"
           "2 ok 0 10 write 2 7\n",
           CHAOS_VALID, -1);
    /* concurrent: the write may take effect after the first read */
    expect(W_REGISTER,
           "0 ok 0 100 write 1 1\n"
           "1 ok 10 20 read 1 nil\n"
           "2 ok 30 40 read 1 1\n"
           "2 ok 50 60 read 1 1\n",
           CHAOS_VALID, -1);
    /* indeterminate write observed later, and one never observed */
    expect(W_REGISTER,
           "0 info 0 - write 1 5\n"
           "1 info 0 - write 1 9\n"
           "1 ok 20 30 read 1 nil\n"
           "2 ok 100 110 read 1 5\n",
           CHAOS_VALID, -1);
}

static void test_register_stale_read(void **state) {
    (void)state;
    expect(W_REGISTER,
           "0 ok 0 10 write 1 1\n"
           "1 ok 20 30 read 1 nil\n",
           CHAOS_INVALID, CHAOS_ANOM_NONLINEARIZABLE);
    /* an info write cannot be un-done: nil, 5, nil is impossible */
    expect(W_REGISTER,
           "0 info 0 - write 1 5\n"
           "1 ok 20 30 read 1 5\n"
           "1 ok 40 50 read 1 nil\n",
           CHAOS_INVALID, CHAOS_ANOM_NONLINEARIZABLE);
    /* a cas that succeeded from a value the register never held */
    expect(W_REGISTER,
           "0 ok 0 10 write 1 1\n"
           "1 ok 20 30 cas 1 2 3\n",
           CHAOS_INVALID, CHAOS_ANOM_NONLINEARIZABLE);
}

static void test_register_budget_unknown(void **state) {
    (void)state;
    /* many concurrent writes and a final impossible read: the search must
    ** explore many orders; a tiny budget gives unknown, never valid. */
    base_buf b = {0};
    for (int i = 0; i < 12; i++) assert_int_equal(base_buf_printf(&b, "%d ok 0 100 write 1 %d\n", i, i), 0);
    assert_int_equal(base_buf_printf(&b, "99 ok 200 300 read 1 77\n"), 0);
    chaos_history *h = parse((const char *)b.data);
    chaos_result r;
    assert_int_equal(chaos_check_register(h, &(chaos_register_opts){.initial = CHAOS_NIL, .search_budget = 50}, &r), 0);
    printf("%s", (const char *)r.report.data);
    assert_int_equal(r.verdict, CHAOS_UNKNOWN);
    chaos_result_free(&r);
    assert_int_equal(chaos_check_register(h, &(chaos_register_opts){.initial = CHAOS_NIL}, &r), 0);
    assert_int_equal(r.verdict, CHAOS_INVALID);
    chaos_result_free(&r);
    chaos_history_free(h);
    base_buf_free(&b);
}

/* ---- bank ---------------------------------------------------------------- */
static void test_bank(void **state) {
    (void)state;
    expect(W_BANK,
           "0 ok 0 10 balance 0 50; balance 1 50\n"
           "1 ok 5 15 transfer 0 1 10\n"
           "2 info 5 - transfer 1 0 5\n"
           "0 ok 20 30 balance 0 40; balance 1 60\n",
           CHAOS_VALID, -1);
    expect(W_BANK,
           "0 ok 0 10 balance 0 50; balance 1 50\n"
           "0 ok 20 30 balance 0 40; balance 1 50\n",
           CHAOS_INVALID, CHAOS_ANOM_BANK_WRONG_SUM);
    expect(W_BANK, "0 ok 0 10 balance 0 110; balance 1 -10\n", CHAOS_INVALID, CHAOS_ANOM_BANK_NEGATIVE);
    expect(W_BANK, "0 ok 0 10 balance 0 100\n", CHAOS_INVALID, CHAOS_ANOM_BANK_WRONG_SUM);  /* account missing */
    expect(W_BANK, "0 ok 0 10 transfer 0 1 5\n", CHAOS_UNKNOWN, -1);  /* nothing read */
    chaos_history *h = parse("0 ok 0 10 balance 0 110; balance 1 -10\n");
    chaos_result r;
    assert_int_equal(chaos_check_bank(h, &(chaos_bank_opts){.total = 100, .allow_negative = true}, &r), 0);
    assert_int_equal(r.verdict, CHAOS_VALID);
    chaos_result_free(&r);
    chaos_history_free(h);
}

/* ---- set ----------------------------------------------------------------- */
static void test_set(void **state) {
    (void)state;
    expect(W_SET,
           "0 ok 0 10 add 1\n"
           "1 info 0 - add 2\n"
           "2 info 0 - add 3\n"
           "3 fail 0 10 add 4\n"
           "0 ok 15 25 members [1]\n"
           "1 ok 20 30 add 5\n"       /* concurrent with the final read */
           "0 ok 26 40 members [1 3]\n",
           CHAOS_VALID, -1);
    expect(W_SET,
           "0 ok 0 10 add 1\n"
           "1 ok 0 10 add 2\n"
           "0 ok 20 30 members [1]\n",
           CHAOS_INVALID, CHAOS_ANOM_SET_LOST);
    expect(W_SET, "0 ok 20 30 members [8]\n", CHAOS_INVALID, CHAOS_ANOM_SET_UNEXPECTED);
    expect(W_SET, "0 fail 0 10 add 8\n0 ok 20 30 members [8]\n", CHAOS_INVALID, CHAOS_ANOM_SET_UNEXPECTED);
    expect(W_SET, "0 ok 0 10 add 8\n", CHAOS_UNKNOWN, -1);
}

/* ---- parser ---------------------------------------------------------------- */
static void test_parser_errors(void **state) {
    (void)state;
    static const char *const bad[] = {
        "x ok 0 1 append 1 1",
        "0 maybe 0 1 append 1 1",
        "0 ok 0",
        "0 ok 10 5 append 1 1",
        "0 ok 0 - append 1 1",
        "0 ok 0 1",
        "0 ok 0 1 append 1",
        "0 ok 0 1 append 1 1;",
        "0 ok 0 1 append 1 1 read 1 []",
        "0 ok 0 1 read 1 [1 2",
        "0 ok 0 1 read 1 [1 x]",
        "0 ok 0 1 read 1 ?",
        "0 ok 0 1 frobnicate 1",
        "0 ok 0 1 append 99999999999999999999 1",
        "0 ok 0 1 append -9223372036854775808 1",
        "0 ok 0 1 members [1] ]",
        "0 ok 0 1 cas 1 2",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[256], err[256];
        snprintf(text, sizeof text, "# header\n0 ok 0 1 append 7 7\n%s\n", bad[i]);
        chaos_history *h = (chaos_history *)1;
        int rc = chaos_history_parse(text, strlen(text), &h, err, sizeof err);
        printf("%-45s -> %s\n", bad[i], err);
        assert_int_equal(rc, CHAOS_EPARSE);
        assert_null(h);
        assert_non_null(strstr(err, "line 3:"));
    }
    /* no newline at the end, tabs, compact brackets, comments */
    chaos_history *h = parse("\t# c\n\n1 ok 0 1 read 1 [1 2];append 1 3\n2 info 5 - read 3 ?");
    assert_int_equal(chaos_history_count(h), 2);
    const chaos_op *op = chaos_history_op(h, 0);
    assert_int_equal(op->mop_count, 2);
    assert_int_equal(op->mops[0].list_len, 2);
    assert_int_equal(op->mops[0].list[1], 2);
    assert_int_equal(op->mops[1].value, 3);
    assert_int_equal(op->line, 3);
    assert_true(chaos_history_op(h, 1)->complete_ns == CHAOS_TIME_INFINITE);
    assert_true(chaos_history_op(h, 1)->mops[0].unknown);
    assert_null(chaos_history_op(h, 2));
    chaos_history_free(h);
    char err[128];
    assert_int_equal(chaos_history_load("/nonexistent/history", &h, err, sizeof err), CHAOS_EIO);
}

/* Random mutations of a valid history never crash the parser or checkers. */
static void test_parser_fuzz(void **state) {
    (void)state;
    const char *seed_text =
        "0 ok 0 10 append 1 1; read 1 [1]\n1 info 5 - write 2 nil\n2 fail 0 3 cas 1 2 3\n"
        "3 ok 1 2 balance 0 5; transfer 0 1 2\n4 ok 0 9 members [1 2 3]; add 4\n";
    size_t len = strlen(seed_text);
    unsigned seed = 12345;
    const char alphabet[] = "0123456789 -;[]?\n\tokfailinfo#xappendreadnil";
    for (int iter = 0; iter < 20000; iter++) {
        char buf[512];
        memcpy(buf, seed_text, len);
        int muts = 1 + rand_r(&seed) % 4;
        for (int m = 0; m < muts; m++)
            buf[rand_r(&seed) % len] = alphabet[rand_r(&seed) % (sizeof alphabet - 1)];
        chaos_history *h = NULL;
        char err[128];
        int rc = chaos_history_parse(buf, len, &h, err, sizeof err);
        assert_true(rc == 0 || rc == CHAOS_EPARSE);
        if (rc) continue;
        chaos_result r;
        chaos_check_list_append(h, &(chaos_append_opts){.realtime = true}, &r);
        chaos_result_free(&r);
        chaos_check_register(h, NULL, &r);
        chaos_result_free(&r);
        chaos_check_bank(h, &(chaos_bank_opts){.total = 5}, &r);
        chaos_result_free(&r);
        chaos_check_set(h, &r);
        chaos_result_free(&r);
        chaos_history_free(h);
    }
}

/* Out of memory at every allocation in turn: an error code, no leak, no
** crash (ASan checks the leaks). */
static void test_out_of_memory(void **state) {
    (void)state;
    const char *texts[] = {
        "0 ok 0 10 read 1 []; append 1 1\n1 ok 0 10 read 1 []; append 1 2\n2 ok 20 30 read 1 [1 2]\n"
        "3 ok 40 50 read 1 [1 2]; read 2 []\n",
        "0 ok 0 10 write 1 1\n1 ok 20 30 read 1 nil\n2 ok 0 100 cas 1 1 2\n",
        "0 ok 0 10 balance 0 50; balance 1 50\n",
        "0 ok 0 10 add 1\n1 ok 20 30 members [1 2]\n",
    };
    for (size_t t = 0; t < 4; t++) {
        for (long n = 0; n < 200; n++) {
            base_alloc_fail_after(n);
            chaos_history *h = NULL;
            int rc = chaos_history_parse(texts[t], strlen(texts[t]), &h, NULL, 0);
            if (rc) {
                base_alloc_fail_after(-1);
                assert_int_equal(rc, CHAOS_ENOMEM);
                continue;
            }
            chaos_result r;
            if (t == 0) rc = chaos_check_list_append(h, &(chaos_append_opts){.realtime = true}, &r);
            if (t == 1) rc = chaos_check_register(h, NULL, &r);
            if (t == 2) rc = chaos_check_bank(h, &(chaos_bank_opts){.total = 100}, &r);
            if (t == 3) rc = chaos_check_set(h, &r);
            base_alloc_fail_after(-1);
            assert_true(rc == 0 || rc == CHAOS_ENOMEM);
            chaos_result_free(&r);
            chaos_history_free(h);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_serial_valid),
        cmocka_unit_test(test_append_concurrent_valid),
        cmocka_unit_test(test_append_indeterminate_valid),
        cmocka_unit_test(test_append_lost_update),
        cmocka_unit_test(test_append_write_skew),
        cmocka_unit_test(test_append_g1c),
        cmocka_unit_test(test_append_g0),
        cmocka_unit_test(test_append_aborted_read),
        cmocka_unit_test(test_append_intermediate_read),
        cmocka_unit_test(test_append_stale_read_realtime),
        cmocka_unit_test(test_append_garbage_duplicate_internal_incompatible),
        cmocka_unit_test(test_append_fractured_and_future_reads),
        cmocka_unit_test(test_nothing_checked_is_unknown),
        cmocka_unit_test(test_append_budget),
        cmocka_unit_test(test_append_wrong_workload),
        cmocka_unit_test(test_register_valid),
        cmocka_unit_test(test_register_stale_read),
        cmocka_unit_test(test_register_budget_unknown),
        cmocka_unit_test(test_bank),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_parser_errors),
        cmocka_unit_test(test_parser_fuzz),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
