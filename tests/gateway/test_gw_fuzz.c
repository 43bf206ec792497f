/*
** Fuzz the gateway with random, truncated and garbled wire messages on many
** connections; after every round a normal libpq query must still work, on
** a long-lived connection and on a fresh one. Seeded: set MERIDIAN_SEED to
** reproduce; the seed is printed at the start and on failure. Bounded by
** FUZZ_ROUNDS_MAX and FUZZ_TIME_BUDGET_MS.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_sql.h"
#include "gateway/gateway.h"
#include "gw_test_util.h"

#define FUZZ_ROUNDS_MAX 2000
#define FUZZ_TIME_BUDGET_MS 4000
#define FUZZ_CONNS_PER_ROUND 8
#define FUZZ_MAX_MESSAGE_BYTES (256u * 1024)

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static uint32_t rnd_below(uint32_t n)
{
    return n == 0 ? 0 : (uint32_t)(rnd() % n);
}

static void rnd_bytes(base_buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        base_buf_append_byte(b, (uint8_t)rnd());
}

static const char message_types[] = "QXPBEDCSHFdcfpy\0Z";

static void random_message(base_buf *b)
{
    char type = rnd_below(4) == 0 ? (char)rnd() : message_types[rnd_below(sizeof message_types - 1)];
    uint32_t body = rnd_below(64);
    uint32_t len;
    switch (rnd_below(6)) {
    case 0: len = (uint32_t)rnd(); break;                  /* anything */
    case 1: len = rnd_below(4); break;                     /* too small */
    case 2: len = FUZZ_MAX_MESSAGE_BYTES + 1 + rnd_below(1000); break; /* too big */
    case 3: len = body + 4 + rnd_below(8); break;          /* longer than sent */
    default: len = body + 4; break;                        /* consistent */
    }
    base_buf_append_byte(b, (uint8_t)type);
    tu_put_u32(b, len);
    if (rnd_below(2) == 0) {
        rnd_bytes(b, body);
    } else { /* printable text, usually NUL-terminated */
        for (uint32_t i = 0; i < body; i++)
            base_buf_append_byte(b, (uint8_t)(' ' + rnd_below(95)));
        if (body > 0 && rnd_below(4) != 0)
            b->data[b->len - 1] = 0;
    }
}

/* An extended-protocol message that is well-formed most of the time, with
** random names, counts, formats and value lengths (-1, negative, longer
** than the message) and, sometimes, a cut or a flipped byte. */
static void random_ext_message(base_buf *b)
{
    static const char *const names[] = {"", "s", "p", "x"};
    static const char *const queries[] = {"SELECT 1", "fail", "", "SELECT $1", "ROWS 5"};
    base_buf body = {0};
    char type = "PBDECSH"[rnd_below(7)];
    switch (type) {
    case 'P': {
        const char *n = names[rnd_below(4)], *q = queries[rnd_below(5)];
        base_buf_append(&body, n, strlen(n) + 1);
        base_buf_append(&body, q, strlen(q) + 1);
        uint16_t k = (uint16_t)(rnd_below(4) == 0 ? rnd() : rnd_below(4));
        base_buf_append_byte(&body, (uint8_t)(k >> 8));
        base_buf_append_byte(&body, (uint8_t)k);
        for (uint32_t i = 0; i < rnd_below(5); i++)
            tu_put_u32(&body, rnd_below(2) ? 23 : (uint32_t)rnd());
        break;
    }
    case 'B': {
        const char *n = names[rnd_below(4)];
        base_buf_append(&body, n, strlen(n) + 1);
        n = names[rnd_below(4)];
        base_buf_append(&body, n, strlen(n) + 1);
        for (int part = 0; part < 3; part++) {
            uint16_t k = (uint16_t)(rnd_below(8) == 0 ? rnd() : rnd_below(4));
            base_buf_append_byte(&body, (uint8_t)(k >> 8));
            base_buf_append_byte(&body, (uint8_t)k);
            uint32_t m = rnd_below(2) ? k : rnd_below(6);
            for (uint32_t i = 0; i < m && i < 8; i++) {
                if (part == 1) { /* values */
                    uint32_t len;
                    switch (rnd_below(5)) {
                    case 0: len = 0xffffffffu; break;
                    case 1: len = (uint32_t)rnd(); break;
                    default: len = rnd_below(9); break;
                    }
                    tu_put_u32(&body, len);
                    if (len < 16)
                        rnd_bytes(&body, len);
                } else { /* format codes */
                    uint16_t f = (uint16_t)(rnd_below(4) == 0 ? rnd() : rnd_below(2));
                    base_buf_append_byte(&body, (uint8_t)(f >> 8));
                    base_buf_append_byte(&body, (uint8_t)f);
                }
            }
        }
        break;
    }
    case 'D':
    case 'C': {
        base_buf_append_byte(&body, rnd_below(4) == 0 ? (uint8_t)rnd() : (rnd_below(2) ? 'S' : 'P'));
        const char *n = names[rnd_below(4)];
        base_buf_append(&body, n, strlen(n) + 1);
        break;
    }
    case 'E': {
        const char *n = names[rnd_below(4)];
        base_buf_append(&body, n, strlen(n) + 1);
        tu_put_u32(&body, rnd_below(2) ? rnd_below(3) : (uint32_t)rnd());
        break;
    }
    default:
        break;
    }
    if (body.len > 0 && rnd_below(6) == 0)
        body.len = rnd_below((uint32_t)body.len); /* cut */
    if (body.len > 0 && rnd_below(6) == 0)
        body.data[rnd_below((uint32_t)body.len)] ^= (uint8_t)(1 + rnd_below(255));
    tu_msg(b, type, body.data, body.len);
    base_buf_free(&body);
}

/* One connection's worth of hostile bytes. */
static void make_garbage(base_buf *b)
{
    base_buf_reset(b);
    switch (rnd_below(13)) {
    case 11: /* extended-protocol sequences */
    case 12: {
        tu_startup(b, "root", "defaultdb");
        uint32_t n = 1 + rnd_below(12);
        for (uint32_t i = 0; i < n; i++)
            random_ext_message(b);
        if (rnd_below(2))
            tu_msg(b, 'S', NULL, 0);
        break;
    }
    case 9: /* a big result, then garbage; the client may vanish mid-output */
        tu_startup(b, "root", "defaultdb");
        tu_query(b, "ROWS 3000");
        if (rnd_below(2))
            random_message(b);
        break;
    case 10: /* a statement that runs until cancelled, then disconnect */
        tu_startup(b, "root", "defaultdb");
        tu_query(b, rnd_below(2) ? "WAIT" : "BEGIN; SELECT 1");
        if (rnd_below(2))
            tu_query(b, "SELECT 1");
        break;
    case 0: /* random bytes from the first byte */
        rnd_bytes(b, 1 + rnd_below(512));
        break;
    case 1: { /* truncated startup packet */
        tu_startup(b, "root", "defaultdb");
        b->len = rnd_below((uint32_t)b->len);
        break;
    }
    case 2: { /* startup: random length and body */
        tu_put_u32(b, rnd_below(3) == 0 ? (uint32_t)rnd() : rnd_below(64));
        tu_put_u32(b, rnd_below(2) ? 196608u : (uint32_t)rnd());
        rnd_bytes(b, rnd_below(64));
        break;
    }
    case 3: /* valid startup, then random messages */
    case 4: {
        tu_startup(b, "root", "defaultdb");
        uint32_t n = 1 + rnd_below(6);
        for (uint32_t i = 0; i < n; i++)
            random_message(b);
        break;
    }
    case 5: /* valid startup and query, then a cut-off message */
        tu_startup(b, "root", "defaultdb");
        tu_query(b, "SELECT 1; BEGIN; nonsense; SELECT 1");
        random_message(b);
        b->len -= rnd_below((uint32_t)b->len / 4 + 1);
        break;
    case 6: /* encryption request, then garbage */
        tu_put_u32(b, 8);
        tu_put_u32(b, rnd_below(2) ? 80877103u : 80877104u);
        if (rnd_below(2))
            tu_startup(b, "root", NULL);
        rnd_bytes(b, rnd_below(128));
        break;
    case 7: /* cancel requests with random keys */
        tu_put_u32(b, 16);
        tu_put_u32(b, 80877102u);
        tu_put_u32(b, rnd_below(64));
        tu_put_u32(b, (uint32_t)rnd());
        if (rnd_below(2))
            rnd_bytes(b, rnd_below(32));
        break;
    default: { /* extended protocol without Sync, huge declared length */
        tu_startup(b, "root", "defaultdb");
        tu_msg(b, 'P', "\0SELECT 1\0\0\0", 12);
        base_buf_append_byte(b, 'Q');
        tu_put_u32(b, FUZZ_MAX_MESSAGE_BYTES - rnd_below(16));
        rnd_bytes(b, rnd_below(256));
        break;
    }
    }
}

static bool witness_ok(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT 1");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
              strcmp(PQgetvalue(r, 0, 0), "1") == 0;
    PQclear(r);
    return ok;
}

static void test_fuzz(void **state)
{
    base_log_set_level(BASE_LOG_ERROR);
    const char *env = getenv("MERIDIAN_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)base_realtime_ns();
    if (seed == 0)
        seed = 1;
    rng_state = seed;
    printf("test_gw_fuzz: seed=%llu (MERIDIAN_SEED to reproduce)\n", (unsigned long long)seed);

    gw_options o = {.host = "127.0.0.1", .max_connections = 64,
                    .max_message_bytes = FUZZ_MAX_MESSAGE_BYTES};
    gw_server *s = NULL;
    assert_int_equal(gw_start(fake_engine(), &o, &s), GW_OK);
    int port = gw_port(s);
    PGconn *witness = tu_pq(port, "sslmode=disable");
    assert_int_equal(PQstatus(witness), CONNECTION_OK);

    int64_t start = base_monotonic_ns();
    int rounds = 0;
    base_buf garbage = {0};
    for (; rounds < FUZZ_ROUNDS_MAX; rounds++) {
        if ((base_monotonic_ns() - start) / 1000000 > FUZZ_TIME_BUDGET_MS)
            break;
        int fds[FUZZ_CONNS_PER_ROUND];
        bool abort_close[FUZZ_CONNS_PER_ROUND];
        for (int i = 0; i < FUZZ_CONNS_PER_ROUND; i++) {
            fds[i] = tu_connect(port);
            if (fds[i] < 0)
                fail_msg("seed=%llu round %d: connect failed", (unsigned long long)seed, rounds);
            make_garbage(&garbage);
            /* Send in random pieces so frames straddle reads. */
            size_t off = 0;
            while (off < garbage.len) {
                size_t n = 1 + rnd_below((uint32_t)(garbage.len - off));
                if (tu_send(fds[i], garbage.data + off, n) != 0)
                    break; /* the server may already have closed it */
                off += n;
            }
            abort_close[i] = rnd_below(3) == 0;
        }
        for (int i = 0; i < FUZZ_CONNS_PER_ROUND; i++) {
            if (abort_close[i]) {
                struct linger lg = {1, 0}; /* RST */
                setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            } else {
                shutdown(fds[i], SHUT_WR);
                if (!tu_wait_closed(fds[i]))
                    fail_msg("seed=%llu round %d: server did not close a connection",
                             (unsigned long long)seed, rounds);
            }
            close(fds[i]);
        }
        if (!witness_ok(witness))
            fail_msg("seed=%llu round %d: long-lived session broken: %s", (unsigned long long)seed,
                     rounds, PQerrorMessage(witness));
        PGconn *fresh = tu_pq(port, rounds % 2 ? "sslmode=disable" : "");
        bool ok = PQstatus(fresh) == CONNECTION_OK && witness_ok(fresh);
        if (!ok)
            fail_msg("seed=%llu round %d: new session failed: %s", (unsigned long long)seed,
                     rounds, PQerrorMessage(fresh));
        PQfinish(fresh);
    }
    printf("test_gw_fuzz: %d rounds of %d connections\n", rounds, FUZZ_CONNS_PER_ROUND);
    base_buf_free(&garbage);
    PQfinish(witness);
    gw_stop(s);
    assert_true(fake_wait_sessions_open(0, 5000));
    assert_true(rounds > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
