/*
** tests/rpc/test_rpc_fuzz.c: random bytes at a listening transport while a
** normal peer keeps working. Seeded (RPC_FUZZ_SEED overrides; the seed is
** printed) and bounded (RPC_FUZZ_ROUNDS connections, default 300). Each fuzz connection
** sends one of: pure random bytes; a valid frame with one byte corrupted; a
** valid handshake followed by random bytes; a header claiming a huge length;
** a frame of a wrong protocol version; a truncated valid frame then EOF; a
** side connection (handshake by address from a provisional id) with
** requests, then garbage; a PostgreSQL startup header at a transport that
** serves no SQL.
** After every few fuzz connections the good peer's request must succeed, and
** at the end the target has counted bad frames and is still healthy.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "base/base.h"
#include "rpc/rpc_int.h"

#define RPC_FUZZ_ROUNDS_DEFAULT 300 /* RPC_FUZZ_ROUNDS overrides (bounded: 100000) */
#define WAIT_MS 20000

static uv_mutex_t mu;
static uv_cond_t cv;
static int replies_ok, replies_bad;

static void handler(void *ctx, rpc_transport *t, const rpc_message *m)
{
    (void)ctx;
    if (m->request_id)
        rpc_respond(t, m->from, m->request_id, 0, m->payload, m->payload_len);
}

static void on_reply(void *ctx, int rc, const rpc_message *m)
{
    uint64_t want = *(uint64_t *)ctx, got = 0;
    uv_mutex_lock(&mu);
    if (rc == RPC_OK && m->payload_len == 8 && (memcpy(&got, m->payload, 8), got == want))
        replies_ok++;
    else
        replies_bad++;
    uv_cond_broadcast(&cv);
    uv_mutex_unlock(&mu);
}

static bool wait_replies(int want)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_MS * 1000000;
    uv_mutex_lock(&mu);
    while (replies_ok + replies_bad < want && uv_hrtime() < deadline)
        uv_cond_timedwait(&cv, &mu, 2000000);
    bool ok = replies_ok + replies_bad >= want;
    uv_mutex_unlock(&mu);
    return ok;
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
    return rpc__splitmix64(&rng_state);
}

static size_t valid_frame(uint8_t *out, uint8_t kind, uint64_t sender, const void *payload,
                          size_t len)
{
    rpc__header h = {0};
    h.version = RPC_PROTOCOL_VERSION;
    h.kind = kind;
    h.sender = sender;
    h.payload_len = (uint32_t)len;
    if (kind == RPC_FRAME_REQUEST)
        h.request_id = 1;
    rpc__frame_encode(&h, payload, len, out);
    return RPC_FRAME_HEADER_SIZE + len;
}

static size_t handshake_frame(uint8_t *out, uint64_t sender, uint64_t target)
{
    uint8_t hs[RPC_HANDSHAKE_SIZE];
    rpc__handshake h = {RPC_PROTOCOL_VERSION, 0, sender, target};
    rpc__handshake_encode(&h, hs);
    return valid_frame(out, RPC_FRAME_HANDSHAKE, sender, hs, sizeof(hs));
}

static void fuzz_one(int port, int variant)
{
    uint8_t buf[8192];
    size_t len = 0;
    switch (variant) {
    case 0: /* pure random */
        len = rnd() % sizeof(buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rnd();
        break;
    case 1: { /* valid handshake with one corrupted byte */
        len = handshake_frame(buf, 50 + rnd() % 50, 1);
        buf[rnd() % len] ^= (uint8_t)(1 + rnd() % 255);
        break;
    }
    case 2: { /* valid handshake then garbage */
        len = handshake_frame(buf, 50 + rnd() % 50, 1);
        size_t extra = rnd() % 2000;
        for (size_t i = 0; i < extra; i++)
            buf[len + i] = (uint8_t)rnd();
        len += extra;
        break;
    }
    case 3: { /* huge length */
        len = handshake_frame(buf, 77, 1);
        rpc__put_u32(buf, 0x7FFFFFFFu - (uint32_t)(rnd() % 1000));
        break;
    }
    case 4: { /* wrong version */
        len = handshake_frame(buf, 78, 1);
        buf[4] = (uint8_t)(2 + rnd() % 200);
        break;
    }
    case 5: { /* valid handshake, then a truncated request, then EOF */
        len = handshake_frame(buf, 79, 1);
        uint8_t req[200];
        size_t rl = valid_frame(req, RPC_FRAME_REQUEST, 79, "payload", 7);
        size_t cut = rnd() % rl;
        memcpy(buf + len, req, cut);
        len += cut;
        break;
    }
    case 6: { /* handshake to the wrong node id, then a request anyway */
        len = handshake_frame(buf, 80, 12345);
        len += valid_frame(buf + len, RPC_FRAME_REQUEST, 80, "x", 1);
        break;
    }
    case 7: { /* by address, from a provisional id: requests, then garbage */
        uint64_t prov = RPC_NODE_ID_PROVISIONAL_MIN | (rnd() >> 1);
        len = handshake_frame(buf, prov, 0);
        size_t nreq = 1 + rnd() % 20;
        for (size_t i = 0; i < nreq; i++)
            len += valid_frame(buf + len, RPC_FRAME_REQUEST, prov, "payload", 7);
        size_t extra = rnd() % 500;
        for (size_t i = 0; i < extra; i++)
            buf[len + i] = (uint8_t)rnd();
        len += extra;
        break;
    }
    case 8: { /* a PostgreSQL client: startup header, then random bytes */
        rpc__put_u32(buf, 8 + (uint32_t)(rnd() % 100));
        rpc__put_u32(buf + 4, rnd() % 2 ? 196608u : 80877103u);
        len = 8 + rnd() % 100;
        for (size_t i = 8; i < len; i++)
            buf[i] = (uint8_t)rnd();
        break;
    }
    default: { /* a request before any handshake */
        len = valid_frame(buf, RPC_FRAME_REQUEST, 81, "x", 1);
        break;
    }
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    size_t off = 0;
    while (off < len) { /* the target may close early: stop then */
        ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fd);
}

static void test_fuzz_listener(void **state)
{
    (void)state;
    uint64_t seed = 0xF022;
    if (getenv("RPC_FUZZ_SEED"))
        seed = strtoull(getenv("RPC_FUZZ_SEED"), NULL, 0);
    printf("rpc fuzz: seed %llu (RPC_FUZZ_SEED=%llu reproduces)\n", (unsigned long long)seed,
           (unsigned long long)seed);
    rng_state = seed;
    int rounds = RPC_FUZZ_ROUNDS_DEFAULT;
    if (getenv("RPC_FUZZ_ROUNDS"))
        rounds = atoi(getenv("RPC_FUZZ_ROUNDS"));
    if (rounds < 1 || rounds > 100000)
        rounds = RPC_FUZZ_ROUNDS_DEFAULT;

    rpc_uv *target, *good;
    rpc_uv_config c;
    rpc_uv_config_init(&c);
    c.node_id = 1;
    c.handler = handler;
    assert_int_equal(rpc_uv_start(&c, &target), 0);
    rpc_uv_config_init(&c);
    c.node_id = 2;
    c.listen_host = NULL; /* dial only */
    assert_int_equal(rpc_uv_start(&c, &good), 0);
    assert_int_equal(rpc_uv_listen_port(good), -1);
    int port = rpc_uv_listen_port(target);
    assert_int_equal(rpc_uv_add_peer(good, 1, "127.0.0.1", port), 0);

    uint64_t *values = calloc((size_t)rounds, sizeof(uint64_t));
    int asked = 0;
    for (int i = 0; i < rounds; i++) {
        fuzz_one(port, (int)(rnd() % 10));
        if (i % 10 == 0) {
            values[asked] = rnd();
            assert_int_equal(rpc_request(rpc_uv_transport(good), 1, 7, &values[asked], 8,
                                         WAIT_MS, on_reply, &values[asked]), 0);
            asked++;
            assert_true(wait_replies(asked));
            uv_mutex_lock(&mu);
            assert_int_equal(replies_bad, 0);
            uv_mutex_unlock(&mu);
        }
    }
    rpc_uv_stats st, gs;
    uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_MS * 1000000;
    do { /* the last fuzz connections may still be in flight */
        rpc_uv_get_stats(target, &st);
        if (st.bad_frames + st.handshake_failures > (uint64_t)rounds / 4)
            break;
        uv_mutex_lock(&mu);
        uv_cond_timedwait(&cv, &mu, 2000000);
        uv_mutex_unlock(&mu);
    } while (uv_hrtime() < deadline);
    rpc_uv_get_stats(good, &gs);
    printf("target: bad frames %llu, handshake failures %llu, handshakes ok %llu; "
           "good peer: %d requests ok, %llu disconnects\n",
           (unsigned long long)st.bad_frames, (unsigned long long)st.handshake_failures,
           (unsigned long long)st.handshakes_ok, replies_ok,
           (unsigned long long)gs.requests_disconnected);
    assert_true(st.bad_frames > 0);
    assert_int_equal(replies_ok, asked);
    assert_int_equal(gs.requests_disconnected, 0);
    assert_int_equal(gs.handshakes_ok, 1); /* never disturbed */
    rpc_uv_free(good);
    rpc_uv_free(target);
    free(values);
}

/* A peer that connects and says nothing (or half a handshake) is closed
** after handshake_timeout_ms; the socket sees EOF. */
static void test_silent_connection_closed(void **state)
{
    (void)state;
    rpc_uv *target;
    rpc_uv_config c;
    rpc_uv_config_init(&c);
    c.node_id = 1;
    c.handshake_timeout_ms = 100;
    assert_int_equal(rpc_uv_start(&c, &target), 0);
    int port = rpc_uv_listen_port(target);
    for (int variant = 0; variant < 2; variant++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct timeval tv = {WAIT_MS / 1000, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        if (variant == 1) {
            uint8_t buf[256];
            size_t len = handshake_frame(buf, 5, 1);
            assert_true(send(fd, buf, len / 2, MSG_NOSIGNAL) > 0);
        }
        char b;
        ssize_t r = recv(fd, &b, 1, 0); /* blocks until the target closes (bounded) */
        assert_int_equal(r, 0);
        close(fd);
    }
    rpc_uv_stats st;
    rpc_uv_get_stats(target, &st);
    assert_int_equal(st.handshake_failures, 2);
    rpc_uv_free(target);
}

int main(void)
{
    uv_mutex_init(&mu);
    uv_cond_init(&cv);
    /* bad input is logged at ERROR by design; keep the output short */
    base_log_set_level(getenv("RPC_TEST_DEBUG") ? BASE_LOG_DEBUG : (base_log_level)(BASE_LOG_ERROR + 1));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz_listener),
        cmocka_unit_test(test_silent_connection_closed),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    uv_cond_destroy(&cv);
    uv_mutex_destroy(&mu);
    return rc;
}
