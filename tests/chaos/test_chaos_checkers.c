/*
** tests/chaos/test_chaos_checkers.c: hand-made histories with known
** anomalies (each must be flagged with the right class) and valid ones
** (each must pass); parser errors; out-of-memory at every allocation;
** descriptions and quoted tokens cut visibly, never inside a UTF-8
** sequence or an escape (test_cut_marks).
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
#include "tests/chaos/chaos_int.h" /* chaos__describe_op, chaos__fit */

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

/* ---- visible cuts (history.c, "cuts") ----------------------------------------- */

/* out = text[0..k) "...(+N bytes)" with k + N == len: returns k. */
static size_t cut_kept(const char *out, const char *text, size_t len) {
    const char *mark = strstr(out, "...(+");
    assert_non_null(mark);
    size_t k = (size_t)(mark - out);
    assert_memory_equal(out, text, k);
    char *end = NULL;
    unsigned long long dropped = strtoull(mark + 5, &end, 10);
    assert_string_equal(end, " bytes)");
    assert_int_equal(k + dropped, len);
    return k;
}

/* Well-formed UTF-8, nothing left half. */
static bool utf8_ok(const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; u[i];) {
        size_t n = u[i] < 0x80 ? 1 : u[i] >= 0xf0 ? 4 : u[i] >= 0xe0 ? 3 : u[i] >= 0xc0 ? 2 : 0;
        if (n == 0) return false;
        for (size_t k = 1; k < n; k++)
            if ((u[i + k] & 0xc0) != 0x80) return false;
        i += n;
    }
    return true;
}

/* A description longer than its buffer (check_append's are 512 bytes) and
** a text of UTF-8 sequences and escapes, cut at every size: the kept part
** is a prefix ending on a boundary, the mark says how much went. */
static void test_cut_marks(void **state) {
    (void)state;
    /* a lost update whose read lists hold 300 values */
    base_buf t = {0};
    base_buf_printf(&t, "0 ok 0 10 read 1 [");
    for (int v = 1; v <= 300; v++) base_buf_printf(&t, v > 1 ? " %d" : "%d", 1000 + v);
    base_buf_printf(&t, "]; append 1 7\n1 ok 0 10 read 1 [");
    for (int v = 1; v <= 300; v++) base_buf_printf(&t, v > 1 ? " %d" : "%d", 1000 + v);
    base_buf_printf(&t, "]; append 1 8\n2 ok 20 30 read 1 [");
    for (int v = 1; v <= 300; v++) base_buf_printf(&t, "%d ", 1000 + v);
    base_buf_printf(&t, "7 8]\n0 ok 0 5 append 1 1001\n");
    chaos_history *h = parse("");
    chaos_history_free(h);
    h = NULL;
    char err[256];
    assert_int_equal(chaos_history_parse((const char *)t.data, t.len, &h, err, sizeof err), 0);
    static char full[65536];
    char d[512];
    const chaos_op *op = chaos_history_op(h, 0);
    chaos__describe_op(op, full, sizeof full);
    assert_null(strstr(full, "...(+"));
    assert_true(strlen(full) > 2 * sizeof d);
    chaos__describe_op(op, d, sizeof d);
    printf("%s\n", d);
    size_t k = cut_kept(d, full, strlen(full));
    assert_true(k + 1 + CHAOS_CUT_MARK_MAX <= sizeof d && k > sizeof d / 2);
    assert_true(full[k - 1] == ' '); /* never half a number */
    for (size_t size = 0; size < 200; size++) { /* every size: never past the buffer */
        char small[200];
        memset(small, 'x', sizeof small);
        chaos__describe_op(op, small, size);
        if (size > CHAOS_CUT_MARK_MAX + 1) cut_kept(small, full, strlen(full));
        if (size > 0) assert_true(strlen(small) < size);
        for (size_t i = size; i < sizeof small; i++) assert_int_equal(small[i], 'x');
    }
    chaos_result r;
    assert_int_equal(chaos_check_list_append(h, &(chaos_append_opts){.realtime = true}, &r), 0);
    assert_int_equal(r.verdict, CHAOS_INVALID);
    assert_non_null(strstr((const char *)r.report.data, " bytes)"));
    chaos_result_free(&r);
    chaos_history_free(h);
    base_buf_free(&t);

    /* atoms: a cut may fall between two, never inside one */
    static const char *const atoms[] = {
        "a", " ", "\xc3\xa9", "b", "\xe2\x82\xac", "\\x41", "c", "\x1b[1;31m", " ", "\\n",
        "\xf0\x9f\x98\x80", "\\u00e9", "\\123", "\x1b]0;title\x07", "d", "\\\\", "\x1b\x5c" "e",
        "\xe2\x82\xac", "\\U0001F600", "f", "\x1b[0m", "\xc3\xa9", " ", "g",
    };
    char text[256] = "";
    size_t cuts[64], n_cuts = 0, len = 0;
    cuts[n_cuts++] = 0;
    for (size_t i = 0; i < sizeof atoms / sizeof *atoms; i++) {
        len += strlen(atoms[i]);
        strcat(text, atoms[i]);
        cuts[n_cuts++] = len;
    }
    for (size_t size = 0; size <= len + 1; size++) {
        char out[256];
        size_t dropped = chaos__fit(out, size, text, len);
        if (size > len) {
            assert_int_equal(dropped, 0);
            assert_string_equal(out, text);
            continue;
        }
        if (size <= CHAOS_CUT_MARK_MAX) continue; /* only the mark fits */
        assert_true(strlen(out) < size);
        size_t kept = cut_kept(out, text, len);
        assert_int_equal(dropped, len - kept);
        bool on_cut = false;
        for (size_t c = 0; c < n_cuts; c++) on_cut |= cuts[c] == kept;
        assert_true(on_cut);
        assert_true(utf8_ok(out));
    }
    for (size_t max = 0; max <= len; max++) {
        size_t kept = chaos__cut_point(text, len, max);
        bool on_cut = false;
        for (size_t c = 0; c < n_cuts; c++) on_cut |= cuts[c] == kept;
        assert_true(on_cut && kept <= max);
    }

    /* a parse error quotes a long token of the input cut the same way */
    const char *bad = "0 ok 0 1 \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 1\n";
    h = (chaos_history *)1;
    assert_int_equal(chaos_history_parse(bad, strlen(bad), &h, err, sizeof err), CHAOS_EPARSE);
    printf("%s\n", err);
    assert_non_null(strstr(err, "...(+"));
    assert_true(utf8_ok(err));
    char tiny[40]; /* the message itself cut */
    assert_int_equal(chaos_history_parse(bad, strlen(bad), &h, tiny, sizeof tiny), CHAOS_EPARSE);
    assert_true(strlen(tiny) < sizeof tiny && utf8_ok(tiny));
    assert_non_null(strstr(tiny, "...(+"));
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

/* Bank with a ledger: transfers name their row's id; the final read holds
** balances and the ledger (accounts 0 and 1 start at 50 each). */
static void test_bank_ledger(void **state) {
    (void)state;
    /* ok: row present; fail: absent; info: either (7 present, 8 absent); an
    ** ok transfer concurrent with the final read may be absent (9) */
    expect(W_BANK,
           "0 ok 0 10 transfer 0 1 10 1\n"
           "1 fail 0 10 transfer 1 0 5 2\n"
           "2 info 0 - transfer 1 0 3 7\n"
           "3 info 0 - transfer 0 1 4 8\n"
           "4 ok 15 40 transfer 1 0 2 9\n"
           "100 ok 20 30 balance 0 43; balance 1 57; ledger [1 0 1 10 7 1 0 3]\n",
           CHAOS_VALID, -1);
    /* an old history (no ids, no ledger) still parses and checks */
    expect(W_BANK, "0 ok 0 10 transfer 0 1 10\n1 ok 20 30 balance 0 40; balance 1 60\n", CHAOS_VALID, -1);
    /* a missing acknowledged row */
    expect(W_BANK,
           "0 ok 0 10 transfer 0 1 10 1\n"
           "1 ok 0 10 transfer 1 0 5 2\n"
           "100 ok 20 30 balance 0 40; balance 1 60; ledger [1 0 1 10]\n",
           CHAOS_INVALID, CHAOS_ANOM_BANK_LEDGER_LOST);
    /* a row of a transfer that failed definitely (its money moved with it:
    ** the sum and the balances agree with the rows) */
    expect(W_BANK,
           "0 ok 0 10 transfer 0 1 10 1\n"
           "1 fail 0 10 transfer 1 0 5 2\n"
           "100 ok 20 30 balance 0 45; balance 1 55; ledger [1 0 1 10 2 1 0 5]\n",
           CHAOS_INVALID, CHAOS_ANOM_BANK_LEDGER_UNEXPECTED);
    /* a row naming no transfer, and a row that differs from its transfer */
    expect(W_BANK, "0 ok 0 10 balance 0 50; balance 1 50; ledger [5 0 1 0]\n", CHAOS_INVALID,
           CHAOS_ANOM_BANK_LEDGER_UNEXPECTED);
    expect(W_BANK,
           "0 ok 0 10 transfer 0 1 10 1\n"
           "100 ok 20 30 balance 0 40; balance 1 60; ledger [1 0 1 9]\n",
           CHAOS_INVALID, CHAOS_ANOM_BANK_LEDGER_UNEXPECTED);
    /* money moved without its row (the sum holds: only the ledger sees it) */
    expect(W_BANK,
           "0 ok 0 10 transfer 0 1 10 1\n"
           "2 info 0 - transfer 1 0 3 7\n"
           "100 ok 20 30 balance 0 43; balance 1 57; ledger [1 0 1 10]\n",
           CHAOS_INVALID, CHAOS_ANOM_BANK_LEDGER_MISMATCH);
    /* a row twice */
    expect(W_BANK,
           "0 ok 0 10 transfer 0 1 10 1\n"
           "100 ok 20 30 balance 0 30; balance 1 70; ledger [1 0 1 10 1 0 1 10]\n",
           CHAOS_INVALID, CHAOS_ANOM_BANK_LEDGER_UNEXPECTED);
    /* an id used by two transfers, a ledger in a transfer op: not a bank
    ** history the checker can judge */
    const char *bad[] = {
        "0 ok 0 10 transfer 0 1 10 1\n1 ok 0 10 transfer 0 1 10 1\n",
        "0 ok 0 10 transfer 0 1 10 1; ledger []\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        chaos_history *h = parse(bad[i]);
        chaos_result r;
        assert_int_equal(chaos_check_bank(h, &(chaos_bank_opts){.total = 100, .accounts = 2}, &r),
                         CHAOS_EWORKLOAD);
        chaos_result_free(&r);
        chaos_history_free(h);
    }
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
        "0 ok 0 1 ledger [1 0 1]",
        "0 ok 0 1 transfer 0 1 5 x",
        "0 ok 0 1 transfer 0 1 5 7 8",
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
        "0 ok 0 10 balance 0 50; balance 1 50\n0 ok 0 5 transfer 0 1 10 1\n1 info 0 - transfer 1 0 2 2\n"
        "2 ok 6 10 balance 0 40; balance 1 60; ledger [1 0 1 10 3 0 1 1]\n",
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
            if (t == 2) rc = chaos_check_bank(h, &(chaos_bank_opts){.total = 100, .accounts = 2}, &r);
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
        cmocka_unit_test(test_cut_marks),
        cmocka_unit_test(test_register_valid),
        cmocka_unit_test(test_register_stale_read),
        cmocka_unit_test(test_register_budget_unknown),
        cmocka_unit_test(test_bank),
        cmocka_unit_test(test_bank_ledger),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_parser_errors),
        cmocka_unit_test(test_parser_fuzz),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
