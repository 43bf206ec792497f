/*
** tests/sql/test_ranges.c: the operator's view of ranges in sql/
** (sql/ranges.c; docs/operations.md) over a fake node: SHOW RANGES, SHOW
** RANGES FROM TABLE, SHOW RANGE ... FOR ROW (keys named after tables,
** values as SQL literals, the span asked for), ALTER RANGE ... RELOCATE
** (parsing, what reaches the node, its refusals passed through, 25001 in a
** block), the 0A000 of a single node, and the range event log: its codec
** (round trip, every truncation and bad byte refused) and
** meridian_internal.range_events read through SQL; node_metrics (any
** user, after a commit); manual split points
** (their keys, put, get, remove, a table's all) and UNSPLIT's refusals on a
** single node. The transcript format
** is test_sql.c's (D/R/C/E/N/Q lines).
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
#include "sql/sql_ranges.h"
#include "tests/sql/sql_harness.h"

/* ---- a fake node ---------------------------------------------------------------------- */

#define FAKE_RANGES_MAX 8

typedef struct fake_range {
    uint64_t id, generation, lease;
    base_buf start, end; /* end empty: +inf */
    uint64_t replicas[3];
    int64_t size;
    bool load; /* reads/writes known */
    double reads, writes;
} fake_range;

typedef struct fake_node {
    fake_range r[FAKE_RANGES_MAX];
    int n;
    base_buf asked_start, asked_end; /* the span of the last ranges() call */
    int calls;
    /* the last relocation */
    char last[128];
    const char *refuse_state; /* non-NULL: refuse with this */
} fake_node;

static fake_node fake;

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
    int c = al && bl ? memcmp(a, b, al < bl ? al : bl) : 0;
    return c != 0 ? c : al < bl ? -1 : al > bl ? 1 : 0;
}

static int fake_ranges(void *ctx, const uint8_t *start, size_t start_len, const uint8_t *end,
                       size_t end_len, sqlv_range_info **out, size_t *n, char sqlstate[6],
                       char *message, size_t message_size) {
    fake_node *f = ctx;
    f->calls++;
    base_buf_reset(&f->asked_start);
    base_buf_reset(&f->asked_end);
    base_buf_append(&f->asked_start, start, start_len);
    base_buf_append(&f->asked_end, end, end_len);
    if (f->refuse_state != NULL) {
        base_strlcpy(sqlstate, f->refuse_state, 6);
        snprintf(message, message_size, "refused by the fake");
        return 1;
    }
    sqlv_range_info *v = base_calloc(FAKE_RANGES_MAX, sizeof *v);
    assert_non_null(v);
    size_t k = 0;
    for (int i = f->n - 1; i >= 0; i--) { /* backwards: sql/ sorts */
        const fake_range *r = &f->r[i];
        bool before_end = end_len == 0 || key_cmp(r->start.data, r->start.len, end, end_len) < 0;
        bool after_start =
            r->end.len == 0 || key_cmp(start, start_len, r->end.data, r->end.len) < 0;
        if (!before_end || !after_start) continue;
        sqlv_range_info *x = &v[k++];
        x->range_id = r->id;
        x->generation = r->generation;
        if (r->start.len) {
            x->start_key = base_malloc(r->start.len);
            memcpy(x->start_key, r->start.data, r->start.len);
            x->start_len = r->start.len;
        }
        if (r->end.len) {
            x->end_key = base_malloc(r->end.len);
            memcpy(x->end_key, r->end.data, r->end.len);
            x->end_len = r->end.len;
        }
        memcpy(x->replicas, r->replicas, sizeof r->replicas);
        x->n_replicas = 3;
        x->lease_holder = r->lease;
        x->size_bytes = r->size;
        x->load_known = r->load;
        x->reads_per_second = r->reads;
        x->writes_per_second = r->writes;
    }
    *out = v;
    *n = k;
    return 0;
}

static int fake_lease(void *ctx, uint64_t range_id, uint64_t target, char sqlstate[6],
                      char *message, size_t message_size) {
    fake_node *f = ctx;
    snprintf(f->last, sizeof f->last, "lease r%llu -> n%llu", (unsigned long long)range_id,
             (unsigned long long)target);
    if (f->refuse_state != NULL) {
        base_strlcpy(sqlstate, f->refuse_state, 6);
        snprintf(message, message_size, "node %llu is dead", (unsigned long long)target);
        return 1;
    }
    return 0;
}

static int fake_voter(void *ctx, uint64_t range_id, uint64_t from, uint64_t to, char sqlstate[6],
                      char *message, size_t message_size) {
    fake_node *f = ctx;
    snprintf(f->last, sizeof f->last, "voter r%llu n%llu -> n%llu", (unsigned long long)range_id,
             (unsigned long long)from, (unsigned long long)to);
    if (f->refuse_state != NULL) {
        base_strlcpy(sqlstate, f->refuse_state, 6);
        snprintf(message, message_size, "range %llu does not exist",
                 (unsigned long long)range_id);
        return 1;
    }
    return 0;
}

/* prefix(table, 1) + integer values (n of them) into b; no values: the
** table's first key, prefix(table, 0), where its range starts. */
static void int_key(base_buf *b, uint32_t table, const int64_t *vals, int n) {
    base_buf_reset(b);
    assert_int_equal(enc_key_prefix(b, table, n > 0 ? 1 : 0), ENC_OK);
    for (int i = 0; i < n; i++) {
        enc_value v = {.type = ENC_INTEGER, .u.i = vals[i]};
        assert_int_equal(enc_key_append(b, &v), ENC_OK);
    }
}

static void fake_add(uint64_t id, const base_buf *start, const base_buf *end, uint64_t lease,
                     int64_t size) {
    fake_range *r = &fake.r[fake.n++];
    memset(r, 0, sizeof *r);
    r->id = id;
    r->generation = id + 1;
    r->lease = lease;
    r->size = size;
    r->replicas[0] = 3;
    r->replicas[1] = 1;
    r->replicas[2] = 2;
    if (start) base_buf_append(&r->start, start->data, start->len);
    if (end) base_buf_append(&r->end, end->data, end->len);
}

static void fake_reset(void) {
    for (int i = 0; i < fake.n; i++) {
        base_buf_free(&fake.r[i].start);
        base_buf_free(&fake.r[i].end);
    }
    base_buf_free(&fake.asked_start);
    base_buf_free(&fake.asked_end);
    memset(&fake, 0, sizeof fake);
}

static fixture fx;

static int setup(void **state) {
    (void)state;
    open_all(&fx);
    fake_reset();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fake_reset();
    close_all(&fx);
    return 0;
}

static void set_fake_admin(void) {
    sqlv_admin a = {.ctx = &fake, .node_id = 7, .ranges = fake_ranges,
                    .relocate_lease = fake_lease, .relocate_voter = fake_voter};
    sqlv_engine_set_admin(fx.sql, &a);
}

#define COLS                                                                                      \
    "D range_id:20,start_key:25,end_key:25,table_name:25,replicas:25,lease_holder:20,"            \
    "generation:20,size_bytes:20,reads_per_second:701,writes_per_second:701\n"

/* ---- tests ------------------------------------------------------------------------------- */

/* A single node (no callbacks): the statements are 0A000, parsing first. */
static void test_single_node_refuses(void **state) {
    (void)state;
    sqlv_session *s = session(&fx);
    expect_error(s, "SHOW RANGES", "0A000");
    expect_error(s, "SHOW RANGES FROM TABLE t", "0A000");
    expect_error(s, "ALTER RANGE 1 RELOCATE LEASE TO 2", "0A000");
    expect_error(s, "ALTER RANGE x RELOCATE LEASE TO 2", "42601");
    expect_error(s, "SHOW RANGES FROM t", "42601");
    sqlv_session_close(s);
}

static void test_show_ranges(void **state) {
    (void)state;
    set_fake_admin();
    sqlv_session *s = session(&fx);
    EXPECT(s, "CREATE TABLE accounts (id INT PRIMARY KEY, v TEXT)", "C CREATE TABLE\n");
    EXPECT(s, "CREATE TABLE names (n TEXT, k INT, PRIMARY KEY (n, k))", "C CREATE TABLE\n");
    base_buf a = {0}, b = {0}, c = {0}, d = {0}, e = {0};
    int64_t v1000 = 1000, v2000 = 2000;
    int_key(&a, 100, NULL, 0);
    int_key(&b, 100, &v1000, 1);
    int_key(&c, 100, &v2000, 1);
    int_key(&d, 101, NULL, 0);
    /* names: ('it''s', 5) */
    base_buf_reset(&e);
    enc_key_prefix(&e, 101, 1);
    enc_value tv = {.type = ENC_TEXT, .u.bytes = {(const uint8_t *)"it's", 4}};
    enc_value iv = {.type = ENC_INTEGER, .u.i = 5};
    enc_key_append(&e, &tv);
    enc_key_append(&e, &iv);
    fake_add(1, NULL, &a, 1, 4096);
    fake_add(2, &a, &b, 2, 0);
    fake_add(5, &b, &c, 0, -1);
    fake_add(6, &c, &d, 3, 10);
    fake_add(7, &d, &e, 1, 10);
    fake_add(8, &e, NULL, 1, 20);
    EXPECT(s, "SHOW RANGES",
           COLS "R 1|/Min|/Table/accounts|NULL|{1,2,3}|1|2|4096|NULL|NULL\n"
                "R 2|/Table/accounts|/Table/accounts/1000|accounts|{1,2,3}|2|3|0|NULL|NULL\n"
                "R 5|/Table/accounts/1000|/Table/accounts/2000|accounts|{1,2,3}|NULL|6|NULL|NULL|"
                "NULL\n"
                "R 6|/Table/accounts/2000|/Table/names|accounts|{1,2,3}|3|7|10|NULL|NULL\n"
                "R 7|/Table/names|/Table/names/'it''s'/5|names|{1,2,3}|1|8|10|NULL|NULL\n"
                "R 8|/Table/names/'it''s'/5|/Max|names|{1,2,3}|1|9|20|NULL|NULL\n"
                "C SHOW RANGES\n");
    /* the whole key space was asked for */
    assert_int_equal(fake.asked_start.len, 0);
    assert_int_equal(fake.asked_end.len, 0);
    EXPECT(s, "SHOW RANGES FROM TABLE accounts",
           COLS "R 2|/Table/accounts|/Table/accounts/1000|accounts|{1,2,3}|2|3|0|NULL|NULL\n"
                "R 5|/Table/accounts/1000|/Table/accounts/2000|accounts|{1,2,3}|NULL|6|NULL|NULL|"
                "NULL\n"
                "R 6|/Table/accounts/2000|/Table/names|accounts|{1,2,3}|3|7|10|NULL|NULL\n"
                "C SHOW RANGES\n");
    /* the table's span: [prefix(100), prefix(101)) */
    assert_int_equal(fake.asked_start.len, a.len);
    assert_memory_equal(fake.asked_start.data, a.data, a.len);
    assert_true(fake.asked_end.len > 0);
    EXPECT(s, "SHOW RANGES FROM TABLE public.\"names\"",
           COLS "R 7|/Table/names|/Table/names/'it''s'/5|names|{1,2,3}|1|8|10|NULL|NULL\n"
                "R 8|/Table/names/'it''s'/5|/Max|names|{1,2,3}|1|9|20|NULL|NULL\n"
                "C SHOW RANGES\n");
    EXPECT(s, "SHOW RANGES FROM DATABASE defaultdb; SELECT 1",
           COLS "R 1|/Min|/Table/accounts|NULL|{1,2,3}|1|2|4096|NULL|NULL\n"
                "R 2|/Table/accounts|/Table/accounts/1000|accounts|{1,2,3}|2|3|0|NULL|NULL\n"
                "R 5|/Table/accounts/1000|/Table/accounts/2000|accounts|{1,2,3}|NULL|6|NULL|NULL|"
                "NULL\n"
                "R 6|/Table/accounts/2000|/Table/names|accounts|{1,2,3}|3|7|10|NULL|NULL\n"
                "R 7|/Table/names|/Table/names/'it''s'/5|names|{1,2,3}|1|8|10|NULL|NULL\n"
                "R 8|/Table/names/'it''s'/5|/Max|names|{1,2,3}|1|9|20|NULL|NULL\n"
                "C SHOW RANGES\nD ?column?:20\nR 1\nC SELECT 1\n");
    /* FOR ROW: the range holding the row's key */
    EXPECT(s, "SHOW RANGE FROM TABLE accounts FOR ROW (42)",
           COLS "R 2|/Table/accounts|/Table/accounts/1000|accounts|{1,2,3}|2|3|0|NULL|NULL\n"
                "C SHOW RANGE\n");
    int64_t v42 = 42;
    base_buf k42 = {0};
    int_key(&k42, 100, &v42, 1);
    assert_int_equal(fake.asked_start.len, k42.len);
    assert_memory_equal(fake.asked_start.data, k42.data, k42.len);
    EXPECT(s, "show range from table accounts for row (1000)",
           COLS "R 5|/Table/accounts/1000|/Table/accounts/2000|accounts|{1,2,3}|NULL|6|NULL|NULL|"
                "NULL\n"
                "C SHOW RANGE\n");
    EXPECT(s, "SHOW RANGE FROM TABLE accounts FOR ROW ('1999')", /* assignment: text to int */
           COLS "R 5|/Table/accounts/1000|/Table/accounts/2000|accounts|{1,2,3}|NULL|6|NULL|NULL|"
                "NULL\n"
                "C SHOW RANGE\n");
    EXPECT(s, "SHOW RANGE FROM TABLE names FOR ROW ('it''s', 5)",
           COLS "R 8|/Table/names/'it''s'/5|/Max|names|{1,2,3}|1|9|20|NULL|NULL\n"
                "C SHOW RANGE\n");
    EXPECT(s, "SHOW RANGE FROM TABLE names FOR ROW ('a')", /* a prefix of the key */
           COLS "R 7|/Table/names|/Table/names/'it''s'/5|names|{1,2,3}|1|8|10|NULL|NULL\n"
                "C SHOW RANGE\n");
    /* inside a block, on the block's catalog */
    EXPECT(s, "BEGIN", "C BEGIN\n");
    EXPECT(s, "CREATE TABLE later (id INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(s, "SHOW RANGE FROM TABLE accounts FOR ROW (1)",
           COLS "R 2|/Table/accounts|/Table/accounts/1000|accounts|{1,2,3}|2|3|0|NULL|NULL\n"
                "C SHOW RANGE\n");
    expect_error(s, "ALTER RANGE 5 RELOCATE LEASE TO 2", "25001");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    /* refusals */
    expect_error(s, "SHOW RANGES FROM TABLE nosuch", "42P01");
    expect_error(s, "SHOW RANGE FROM TABLE accounts FOR ROW (1, 2)", "42601");
    expect_error(s, "SHOW RANGE FROM TABLE accounts FOR ROW ('x')", "22P02");
    expect_error(s, "SHOW RANGE FROM TABLE accounts FOR ROW 1", "42601");
    expect_error(s, "SHOW RANGE FROM TABLE accounts", "42601");
    expect_error(s, "SHOW RANGE", "42601");
    expect_error(s, "SHOW RANGES FROM TABLE accounts extra", "42601");
    fake.refuse_state = "57P03";
    expect_error(s, "SHOW RANGES", "57P03");
    fake.refuse_state = NULL;
    EXPECT(s, "SELECT count(*) FROM accounts", "D count:20\nR 0\nC SELECT 1\n");
    base_buf_free(&a);
    base_buf_free(&b);
    base_buf_free(&c);
    base_buf_free(&d);
    base_buf_free(&e);
    base_buf_free(&k42);
    sqlv_session_close(s);
}

static void test_alter_range(void **state) {
    (void)state;
    set_fake_admin();
    sqlv_session *s = session(&fx);
    EXPECT(s, "ALTER RANGE 17 RELOCATE LEASE TO 3", "C ALTER RANGE\n");
    assert_string_equal(fake.last, "lease r17 -> n3");
    EXPECT(s, "alter range 17 relocate voters from 2 to 4;", "C ALTER RANGE\n");
    assert_string_equal(fake.last, "voter r17 n2 -> n4");
    EXPECT(s, "ALTER RANGE 9 RELOCATE FROM 1 TO 5", "C ALTER RANGE\n");
    assert_string_equal(fake.last, "voter r9 n1 -> n5");
    EXPECT(s, "SELECT 1; ALTER RANGE 17 RELOCATE LEASE TO 4", /* an implicit block is fine */
           "D ?column?:20\nR 1\nC SELECT 1\nC ALTER RANGE\n");
    assert_string_equal(fake.last, "lease r17 -> n4");
    fake.last[0] = '\0';
    expect_error(s, "ALTER RANGE 17 RELOCATE VOTERS FROM 2 TO 2", "22023");
    expect_error(s, "ALTER RANGE 0 RELOCATE LEASE TO 2", "22023");
    expect_error(s, "ALTER RANGE 17 RELOCATE LEASE TO 0", "22023");
    expect_error(s, "ALTER RANGE 17 RELOCATE LEASE 3", "42601");
    expect_error(s, "ALTER RANGE 17 RELOCATE LEASE TO 3 4", "42601");
    expect_error(s, "ALTER RANGE 17 RELOCATE VOTERS FROM 2", "42601");
    expect_error(s, "ALTER RANGE 17 RELOCATE VOTERS FROM -2 TO 3", "42601");
    expect_error(s, "ALTER RANGE 99999999999999999999 RELOCATE LEASE TO 3", "42601");
    expect_error(s, "ALTER RANGE 17 RELOCATE NONVOTERS FROM 2 TO 3", "0A000");
    expect_error(s, "ALTER RANGE 17 SPLIT AT VALUES (1)", "0A000");
    expect_error(s, "ALTER RANGE", "42601");
    assert_string_equal(fake.last, ""); /* no refusal reached the node */
    fake.refuse_state = "55000";
    char *got = run(s, "ALTER RANGE 17 RELOCATE LEASE TO 3");
    assert_string_equal(got, "E 55000 node 3 is dead\n");
    free(got);
    fake.refuse_state = "42704";
    expect_error(s, "ALTER RANGE 42 RELOCATE VOTERS FROM 1 TO 2", "42704");
    fake.refuse_state = NULL;
    sqlv_session_close(s);
}

/* ---- the range event log ----------------------------------------------------------------- */

static void test_event_codec(void **state) {
    (void)state;
    txn_range_event e, back;
    memset(&e, 0, sizeof e);
    e.wall_ns = 1765000000123456789;
    e.range_id = 17;
    e.kind = TXN_RANGE_EVENT_REMOVE_REPLICA;
    e.node_id = 2;
    e.recorded_by = 1;
    e.n_replicas = 3;
    e.replicas[0] = 1;
    e.replicas[1] = 3;
    e.replicas[2] = 4;
    base_strlcpy(e.reason, "manual relocate", sizeof e.reason);
    base_buf b = {0};
    assert_int_equal(txn_range_event_encode(&e, &b), TXN_OK);
    assert_int_equal(txn_range_event_decode(b.data, b.len, &back), TXN_OK);
    assert_memory_equal(&e, &back, sizeof e);
    assert_string_equal(txn_range_event_kind_name(back.kind), "remove_replica");
    assert_string_equal(txn_range_event_kind_name(0), "unknown");
    /* every strict prefix, a trailing byte, and each header byte flipped */
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(txn_range_event_decode(b.data, n, &back), TXN_ERR_INVALID);
    base_buf longer = {0};
    base_buf_append(&longer, b.data, b.len);
    base_buf_append_byte(&longer, 'x');
    assert_int_equal(txn_range_event_decode(longer.data, longer.len, &back), TXN_ERR_INVALID);
    b.data[0] = 2; /* version */
    assert_int_equal(txn_range_event_decode(b.data, b.len, &back), TXN_ERR_INVALID);
    b.data[0] = 1;
    b.data[17] = 9; /* kind */
    assert_int_equal(txn_range_event_decode(b.data, b.len, &back), TXN_ERR_INVALID);
    b.data[17] = TXN_RANGE_EVENT_REMOVE_REPLICA;
    b.data[42] = 17; /* replica count */
    assert_int_equal(txn_range_event_decode(b.data, b.len, &back), TXN_ERR_INVALID);
    /* encode refuses what decode would */
    e.kind = 0;
    assert_int_equal(txn_range_event_encode(&e, &b), TXN_ERR_INVALID);
    e.kind = TXN_RANGE_EVENT_SPLIT;
    e.n_replicas = TXN_RANGE_EVENT_REPLICAS_MAX + 1;
    assert_int_equal(txn_range_event_encode(&e, &b), TXN_ERR_INVALID);
    base_buf_free(&b);
    base_buf_free(&longer);
}

static void test_event_log_in_sql(void **state) {
    (void)state;
    sqlv_session *s = session(&fx);
    EXPECT(s, "SELECT count(*) FROM meridian_internal.range_events",
           "D count:20\nR 0\nC SELECT 1\n");
    txn_range_event ev[3];
    memset(ev, 0, sizeof ev);
    ev[0].wall_ns = 1765000000000000000; /* 2025-12-06 05:46:40 UTC */
    ev[0].range_id = 2;
    ev[0].kind = TXN_RANGE_EVENT_SPLIT;
    ev[0].other_range_id = 5;
    ev[0].recorded_by = 1;
    base_strlcpy(ev[0].reason, "manual split at (1000)", sizeof ev[0].reason);
    ev[1] = ev[0];
    ev[1].wall_ns += 1500;
    ev[1].range_id = 5;
    ev[1].kind = TXN_RANGE_EVENT_LEASE_TRANSFER;
    ev[1].other_range_id = 0;
    ev[1].node_id = 3;
    ev[1].n_replicas = 3;
    ev[1].replicas[0] = 1;
    ev[1].replicas[1] = 2;
    ev[1].replicas[2] = 3;
    base_strlcpy(ev[1].reason, "manual relocate", sizeof ev[1].reason);
    ev[2] = ev[1];
    ev[2].wall_ns = 0; /* the writer's timestamp: now, after the others */
    ev[2].kind = TXN_RANGE_EVENT_ADD_REPLICA;
    ev[2].node_id = 4;
    base_strlcpy(ev[2].reason, "replace dead node 3", sizeof ev[2].reason);
    txn_error err = {{0}, {0}};
    assert_int_equal(txn_db_log_range_events(fx.db, ev, 3, &err), TXN_OK);
    EXPECT(s,
           "SELECT ts, range_id, event, reason, other_range_id, node_id, replicas, recorded_by "
           "FROM meridian_internal.range_events WHERE event <> 'add_replica' ORDER BY ts DESC",
           "D ts:25,range_id:20,event:25,reason:25,other_range_id:20,node_id:20,replicas:25,"
           "recorded_by:20\n"
           "R 2025-12-06 05:46:40.000001+00|5|lease_transfer|manual relocate|NULL|3|{1,2,3}|1\n"
           "R 2025-12-06 05:46:40.000000+00|2|split|manual split at (1000)|5|NULL|NULL|1\n"
           "C SELECT 2\n");
    EXPECT(s,
           "SELECT event, reason FROM meridian_internal.range_events ORDER BY ts DESC LIMIT 1",
           "D event:25,reason:25\nR add_replica|replace dead node 3\nC SELECT 1\n");
    EXPECT(s, "SELECT count(*) FROM MERIDIAN_INTERNAL.RANGE_EVENTS WHERE event = 'split'",
           "D count:20\nR 1\nC SELECT 1\n");
    expect_error(s, "SELECT * FROM meridian_internal.nosuch", "42P01");
    expect_error(s, "INSERT INTO meridian_internal.range_events (range_id) VALUES (1)", "0A000");
    /* limits of a write */
    assert_int_equal(txn_db_log_range_events(fx.db, ev, TXN_RANGE_EVENTS_BATCH_MAX + 1, &err),
                     TXN_ERR_INVALID);
    assert_int_equal(txn_db_log_range_events(fx.db, ev, 0, &err), TXN_OK);
    sqlv_session_close(s);
}

/* meridian_internal.node_metrics: after a commit, txn.commits > 0 and the
** clock rows are there; any user reads it; read-only. Values other than
** the counters' signs are not asserted (the clock's epsilon, the waits). */
static void test_node_metrics(void **state) {
    (void)state;
    sqlv_session *s = session(&fx);
    EXPECT(s, "CREATE TABLE nm (k INT PRIMARY KEY)", "C CREATE TABLE\n");
    EXPECT(s, "INSERT INTO nm VALUES (1)", "C INSERT 0 1\n");
    EXPECT(s, "SELECT value > 0 FROM meridian_internal.node_metrics WHERE name = 'txn.commits'",
           "D ?column?:16\nR t\nC SELECT 1\n");
    EXPECT(s,
           "SELECT name, value >= 0, description IS NOT NULL FROM meridian_internal.node_metrics "
           "WHERE name LIKE 'clock.%' AND name <> 'clock.peers_tracked' AND "
           "name <> 'clock.peers_good' ORDER BY name",
           "D name:25,?column?:16,?column?:16\n"
           "R clock.epsilon_bounded|t|t\nR clock.epsilon_ns|t|t\nR clock.epsilon_source|t|t\n"
           "R clock.max_offset_ns|t|t\nC SELECT 4\n");
    EXPECT(s,
           "SELECT count(*) FROM meridian_internal.node_metrics WHERE name IN "
           "('txn.commits_1pc', 'txn.commits_2pc', 'txn.commit_waits', "
           "'txn.commit_wait_ns_total', 'txn.commit_wait_ns_max', 'txn.conflicts')",
           "D count:20\nR 6\nC SELECT 1\n");
    /* node-level numbers, no row values: not admins only */
    sqlv_session *app = user_session(&fx, s, "metrics_reader");
    EXPECT(app, "SELECT value > 0 FROM meridian_internal.node_metrics WHERE name = 'txn.commits'",
           "D ?column?:16\nR t\nC SELECT 1\n");
    expect_error(app, "SELECT * FROM meridian_internal.range_events", "42501");
    expect_error(s, "INSERT INTO meridian_internal.node_metrics (name) VALUES ('x')", "0A000");
    expect_error(s, "DELETE FROM meridian_internal.node_metrics", "0A000");
    sqlv_session_close(app);
    sqlv_session_close(s);
}

/* UNSPLIT on a single node: parsing first, then 25001 in a block, then
** 0A000 (no ranges), like SPLIT AT. */
static void test_unsplit_single_node(void **state) {
    (void)state;
    sqlv_session *s = session(&fx);
    EXPECT(s, "CREATE TABLE us (k INT PRIMARY KEY)", "C CREATE TABLE\n");
    expect_error(s, "ALTER TABLE us UNSPLIT AT VALUES (5)", "0A000");
    expect_error(s, "ALTER TABLE us UNSPLIT ALL", "0A000");
    expect_error(s, "ALTER TABLE us UNSPLIT VALUES (5)", "42601");
    expect_error(s, "ALTER TABLE us UNSPLIT ALL (5)", "42601");
    expect_error(s, "ALTER TABLE us UNSPLIT AT SELECT 5", "0A000");
    EXPECT(s, "BEGIN", "C BEGIN\n");
    expect_error(s, "ALTER TABLE us UNSPLIT ALL", "25001");
    EXPECT(s, "ROLLBACK", "C ROLLBACK\n");
    sqlv_session_close(s);
}

static bool point_is(const base_buf *key) {
    txn *t = NULL;
    txn_error err = {{0}, {0}};
    bool is = true;
    assert_int_equal(txn_begin(fx.db, NULL, &t), TXN_OK);
    assert_int_equal(sqlv_split_point_get(t, key->data, key->len, &is, &err), TXN_OK);
    txn_rollback(t);
    return is;
}

/* Manual split points in the key space (sql.h): their keys, put, get,
** remove one, remove a table's span (its points only, in key order). */
static void test_split_points(void **state) {
    (void)state;
    base_buf k = {0}, pk = {0}, a = {0}, b = {0}, removed = {0};
    txn_error err = {{0}, {0}};
    const int64_t v1000[] = {1000}, v5[] = {5}, v2000[] = {2000};
    int_key(&k, 105, v1000, 1);
    assert_int_equal(sqlv_split_point_key(k.data, k.len, &pk), 0);
    assert_int_equal(pk.len, SQLV_SPLIT_POINT_PREFIX_LEN + k.len);
    assert_memory_equal(pk.data, SQLV_SPLIT_POINT_PREFIX, SQLV_SPLIT_POINT_PREFIX_LEN);
    assert_memory_equal(pk.data + SQLV_SPLIT_POINT_PREFIX_LEN, k.data, k.len);
    assert_false(point_is(&k));
    assert_int_equal(sqlv__split_point_put(fx.sql, k.data, k.len, &err), TXN_OK);
    assert_int_equal(sqlv__split_point_put(fx.sql, k.data, k.len, &err), TXN_OK); /* again */
    assert_true(point_is(&k));
    bool was = false;
    assert_int_equal(sqlv__split_point_remove(fx.sql, k.data, k.len, &was, &err), TXN_OK);
    assert_true(was);
    assert_false(point_is(&k));
    assert_int_equal(sqlv__split_point_remove(fx.sql, k.data, k.len, &was, &err), TXN_OK);
    assert_false(was);
    /* three points of table 105, one of table 106 */
    const int64_t *vals[] = {v2000, v5, v1000};
    for (int i = 0; i < 3; i++) {
        int_key(&k, 105, vals[i], 1);
        assert_int_equal(sqlv__split_point_put(fx.sql, k.data, k.len, &err), TXN_OK);
    }
    int_key(&k, 106, v5, 1);
    assert_int_equal(sqlv__split_point_put(fx.sql, k.data, k.len, &err), TXN_OK);
    int_key(&a, 105, NULL, 0);
    int_key(&b, 106, NULL, 0);
    size_t n = 0;
    assert_int_equal(sqlv__split_points_remove_span(fx.sql, a.data, a.len, b.data, b.len,
                                                    &removed, &n, &err),
                     TXN_OK);
    assert_int_equal(n, 3);
    const int64_t *order[] = {v5, v1000, v2000};
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        int_key(&k, 105, order[i], 1);
        assert_true(off + 4 + k.len <= removed.len);
        const uint8_t *q = removed.data + off;
        assert_int_equal((size_t)q[0] << 24 | (size_t)q[1] << 16 | (size_t)q[2] << 8 | q[3], k.len);
        assert_memory_equal(q + 4, k.data, k.len);
        assert_false(point_is(&k));
        off += 4 + k.len;
    }
    assert_int_equal(off, removed.len);
    int_key(&k, 106, v5, 1);
    assert_true(point_is(&k)); /* another table's point stays */
    assert_int_equal(sqlv__split_points_remove_span(fx.sql, a.data, a.len, b.data, b.len,
                                                    &removed, &n, &err),
                     TXN_OK);
    assert_int_equal(n, 0);
    assert_int_equal(removed.len, 0);
    base_buf_free(&k);
    base_buf_free(&pk);
    base_buf_free(&a);
    base_buf_free(&b);
    base_buf_free(&removed);
}

/* SPLIT AT / UNSPLIT's pretty column: a key as SHOW RANGES prints a
** range's start, by the table's name, or by id without one. */
static void test_key_pretty(void **state) {
    (void)state;
    base_buf k = {0}, out = {0};
    const int64_t v1000[] = {1000}, two[] = {5, -2};
    int_key(&k, 105, v1000, 1);
    assert_int_equal(sqlv__ranges_key_pretty(k.data, k.len, 105, "accounts", &out), 0);
    assert_int_equal(base_buf_append_byte(&out, 0), 0);
    assert_string_equal((const char *)out.data, "/Table/accounts/1000");
    base_buf_reset(&out);
    assert_int_equal(sqlv__ranges_key_pretty(k.data, k.len, 105, NULL, &out), 0);
    assert_int_equal(base_buf_append_byte(&out, 0), 0);
    assert_string_equal((const char *)out.data, "/Table/105/1000");
    base_buf_reset(&out);
    int_key(&k, 106, two, 2);
    assert_int_equal(sqlv__ranges_key_pretty(k.data, k.len, 106, "t", &out), 0);
    assert_int_equal(base_buf_append_byte(&out, 0), 0);
    assert_string_equal((const char *)out.data, "/Table/t/5/-2");
    base_buf_free(&k);
    base_buf_free(&out);
}

/* reads_per_second and writes_per_second: the leaseholder's figures, one
** decimal; NULL when no leaseholder reported load. */
static void test_show_ranges_load(void **state) {
    (void)state;
    set_fake_admin();
    sqlv_session *s = session(&fx);
    EXPECT(s, "CREATE TABLE hot (id INT PRIMARY KEY)", "C CREATE TABLE\n");
    base_buf a = {0}, b = {0};
    int64_t v500 = 500;
    int_key(&a, 100, NULL, 0);
    int_key(&b, 100, &v500, 1);
    fake_add(2, &a, &b, 1, 100);
    fake_add(9, &b, NULL, 2, 100);
    fake.r[0].load = true;
    fake.r[0].reads = 3100.04;
    fake.r[0].writes = 0.25;
    EXPECT(s, "SHOW RANGES FROM TABLE hot",
           COLS "R 2|/Table/hot|/Table/hot/500|hot|{1,2,3}|1|3|100|3100.0|0.2\n"
                "R 9|/Table/hot/500|/Max|hot|{1,2,3}|2|10|100|NULL|NULL\n"
                "C SHOW RANGES\n");
    base_buf_free(&a);
    base_buf_free(&b);
    sqlv_session_close(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_single_node_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_ranges_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alter_range, setup, teardown),
        cmocka_unit_test(test_event_codec),
        cmocka_unit_test_setup_teardown(test_event_log_in_sql, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsplit_single_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_points, setup, teardown),
        cmocka_unit_test(test_key_pretty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
