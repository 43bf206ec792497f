/*
** tests/rpc/test_rpc_frame.c: the frame and handshake codecs (pure):
** round trips of every kind, every truncation waits for more bytes, every
** single-byte corruption and every bad header field is rejected, a huge
** length is refused from the header alone, CRC32C known answers.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"
#include "rpc/rpc_int.h"

static rpc__header mk(uint8_t kind)
{
    rpc__header h = {0};
    h.version = RPC_PROTOCOL_VERSION;
    h.kind = kind;
    h.sender = 7;
    h.sent_at = (hlc_timestamp){1700000000123456789LL, 42};
    if (kind == RPC_FRAME_REQUEST || kind == RPC_FRAME_RESPONSE)
        h.request_id = 0x0102030405060708ull;
    if (kind == RPC_FRAME_REQUEST || kind == RPC_FRAME_MESSAGE)
        h.method = 0xA0B0C0D0u;
    if (kind == RPC_FRAME_RESPONSE || kind == RPC_FRAME_HANDSHAKE)
        h.status = -12345;
    return h;
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *payload = "hello, meridian";
    for (uint8_t kind = RPC_FRAME_HANDSHAKE; kind <= RPC_FRAME_MESSAGE; kind++) {
        for (size_t len = 0; len <= strlen(payload); len += strlen(payload)) {
            rpc__header h = mk(kind);
            uint8_t *buf;
            size_t blen;
            assert_int_equal(rpc__frame_build(&h, payload, len, &buf, &blen), RPC_OK);
            assert_int_equal(blen, RPC_FRAME_HEADER_SIZE + len);
            rpc__header d;
            const uint8_t *p = NULL;
            size_t consumed;
            const char *why;
            assert_int_equal(rpc__frame_decode(buf, blen, RPC_FRAME_PAYLOAD_MAX, &d, &p, &consumed, &why),
                             RPC_OK);
            assert_int_equal(consumed, blen);
            assert_int_equal(d.kind, kind);
            assert_int_equal(d.payload_len, len);
            assert_true(d.request_id == h.request_id);
            assert_int_equal(d.method, h.method);
            assert_int_equal(d.status, h.status);
            assert_true(d.sender == 7);
            assert_int_equal(hlc_compare(d.sent_at, h.sent_at), 0);
            if (len)
                assert_memory_equal(p, payload, len);
            else
                assert_null(p);
            base_free(buf);
        }
    }
}

/* Two frames back to back decode one after the other. */
static void test_stream_of_frames(void **state)
{
    (void)state;
    rpc__header h1 = mk(RPC_FRAME_MESSAGE), h2 = mk(RPC_FRAME_REQUEST);
    uint8_t *b1, *b2;
    size_t l1, l2;
    assert_int_equal(rpc__frame_build(&h1, "a", 1, &b1, &l1), 0);
    assert_int_equal(rpc__frame_build(&h2, "bb", 2, &b2, &l2), 0);
    uint8_t all[256];
    memcpy(all, b1, l1);
    memcpy(all + l1, b2, l2);
    rpc__header d;
    const uint8_t *p;
    size_t c;
    const char *why;
    assert_int_equal(rpc__frame_decode(all, l1 + l2, RPC_FRAME_PAYLOAD_MAX, &d, &p, &c, &why), 0);
    assert_int_equal(c, l1);
    assert_int_equal(rpc__frame_decode(all + c, l1 + l2 - c, RPC_FRAME_PAYLOAD_MAX, &d, &p, &c, &why), 0);
    assert_int_equal(c, l2);
    assert_int_equal(d.kind, RPC_FRAME_REQUEST);
    base_free(b1);
    base_free(b2);
}

static void test_every_truncation_waits(void **state)
{
    (void)state;
    rpc__header h = mk(RPC_FRAME_REQUEST);
    uint8_t payload[100];
    for (int i = 0; i < 100; i++)
        payload[i] = (uint8_t)(i * 7);
    uint8_t *buf;
    size_t blen;
    assert_int_equal(rpc__frame_build(&h, payload, sizeof(payload), &buf, &blen), 0);
    for (size_t cut = 0; cut < blen; cut++) {
        uint8_t *copy = base_malloc(cut ? cut : 1); /* exact size: ASan sees over-reads */
        memcpy(copy, buf, cut);
        rpc__header d;
        const uint8_t *p;
        size_t consumed = 99;
        const char *why;
        assert_int_equal(rpc__frame_decode(copy, cut, RPC_FRAME_PAYLOAD_MAX, &d, &p, &consumed, &why), 0);
        assert_int_equal(consumed, 0);
        base_free(copy);
    }
    base_free(buf);
}

/* Flip each bit of each byte: the frame is rejected, or (length field grew)
** the decoder waits, and once the claimed bytes arrive it is rejected. */
static void test_every_corruption_rejected(void **state)
{
    (void)state;
    rpc__header h = mk(RPC_FRAME_RESPONSE);
    uint8_t payload[40];
    memset(payload, 0x5A, sizeof(payload));
    uint8_t *buf;
    size_t blen;
    assert_int_equal(rpc__frame_build(&h, payload, sizeof(payload), &buf, &blen), 0);
    int rejected = 0, waited = 0;
    for (size_t i = 0; i < blen; i++) {
        for (int bit = 0; bit < 8; bit++) {
            uint8_t *copy = base_malloc(blen);
            memcpy(copy, buf, blen);
            copy[i] ^= (uint8_t)(1u << bit);
            rpc__header d;
            const uint8_t *p;
            size_t consumed;
            const char *why = NULL;
            int rc = rpc__frame_decode(copy, blen, RPC_FRAME_PAYLOAD_MAX, &d, &p, &consumed, &why);
            if (rc == 0 && consumed == 0) {
                /* length grew: feed the claimed bytes (zeros), then it must fail */
                waited++;
                uint32_t claimed = rpc__get_u32(copy);
                size_t need = RPC_FRAME_HEADER_SIZE + (size_t)claimed;
                uint8_t *big = base_calloc(1, need);
                memcpy(big, copy, blen);
                rc = rpc__frame_decode(big, need, RPC_FRAME_PAYLOAD_MAX, &d, &p, &consumed, &why);
                base_free(big);
            }
            assert_true(rc == RPC_ERR_BAD_FRAME || rc == RPC_ERR_TOO_LARGE);
            assert_non_null(why);
            rejected++;
            base_free(copy);
        }
    }
    assert_int_equal(rejected, (int)blen * 8);
    assert_true(waited > 0);
    base_free(buf);
}

/* A header with a valid CRC but a bad field is still refused, from the
** header alone (no payload needed). */
static void test_bad_fields(void **state)
{
    (void)state;
    uint8_t raw[RPC_FRAME_HEADER_SIZE];
    rpc__header h, d;
    const char *why;

    h = mk(RPC_FRAME_MESSAGE);
    h.version = 2;
    rpc__frame_encode(&h, NULL, 0, raw);
    assert_int_equal(rpc__header_decode(raw, RPC_FRAME_PAYLOAD_MAX, &d, &why), RPC_ERR_BAD_FRAME);
    assert_string_equal(why, "unsupported protocol version");

    h = mk(RPC_FRAME_MESSAGE);
    h.kind = 9;
    rpc__frame_encode(&h, NULL, 0, raw);
    assert_int_equal(rpc__header_decode(raw, RPC_FRAME_PAYLOAD_MAX, &d, &why), RPC_ERR_BAD_FRAME);

    h = mk(RPC_FRAME_MESSAGE);
    h.flags = 1;
    rpc__frame_encode(&h, NULL, 0, raw);
    assert_int_equal(rpc__header_decode(raw, RPC_FRAME_PAYLOAD_MAX, &d, &why), RPC_ERR_BAD_FRAME);

    h = mk(RPC_FRAME_MESSAGE);
    h.request_id = 5;
    rpc__frame_encode(&h, NULL, 0, raw);
    assert_int_equal(rpc__header_decode(raw, RPC_FRAME_PAYLOAD_MAX, &d, &why), RPC_ERR_BAD_FRAME);

    h = mk(RPC_FRAME_REQUEST);
    h.request_id = 0;
    rpc__frame_encode(&h, NULL, 0, raw);
    assert_int_equal(rpc__header_decode(raw, RPC_FRAME_PAYLOAD_MAX, &d, &why), RPC_ERR_BAD_FRAME);

    h = mk(RPC_FRAME_REQUEST);
    h.sender = 0;
    rpc__frame_encode(&h, NULL, 0, raw);
    assert_int_equal(rpc__header_decode(raw, RPC_FRAME_PAYLOAD_MAX, &d, &why), RPC_ERR_BAD_FRAME);

    h = mk(RPC_FRAME_REQUEST);
    h.status = 3;
    rpc__frame_encode(&h, NULL, 0, raw);
    assert_int_equal(rpc__header_decode(raw, RPC_FRAME_PAYLOAD_MAX, &d, &why), RPC_ERR_BAD_FRAME);

    /* Huge length: refused with only the 48 header bytes present. */
    h = mk(RPC_FRAME_MESSAGE);
    rpc__frame_encode(&h, NULL, 0, raw);
    rpc__put_u32(raw, 0xFFFFFFF0u);
    const uint8_t *p;
    size_t consumed;
    assert_int_equal(rpc__frame_decode(raw, sizeof(raw), RPC_FRAME_PAYLOAD_MAX, &d, &p, &consumed, &why),
                     RPC_ERR_TOO_LARGE);
    /* A lower configured maximum applies too. */
    rpc__put_u32(raw, 1025);
    assert_int_equal(rpc__frame_decode(raw, sizeof(raw), 1024, &d, &p, &consumed, &why),
                     RPC_ERR_TOO_LARGE);

    /* Building above the maximum fails. */
    uint8_t *b;
    size_t bl;
    h = mk(RPC_FRAME_MESSAGE);
    assert_int_equal(rpc__frame_build(&h, raw, (size_t)RPC_FRAME_PAYLOAD_MAX + 1, &b, &bl),
                     RPC_ERR_TOO_LARGE);
}

static void test_handshake_codec(void **state)
{
    (void)state;
    rpc__handshake hs = {RPC_PROTOCOL_VERSION, 0xC0FFEEull, 3, 9}, d;
    uint8_t buf[RPC_HANDSHAKE_SIZE];
    rpc__handshake_encode(&hs, buf);
    assert_int_equal(rpc__handshake_decode(buf, sizeof(buf), &d), 0);
    assert_int_equal(d.version, RPC_PROTOCOL_VERSION);
    assert_true(d.cluster_id == 0xC0FFEEull && d.sender == 3 && d.target == 9);
    for (size_t cut = 0; cut < sizeof(buf); cut++)
        assert_int_equal(rpc__handshake_decode(buf, cut, &d), RPC_ERR_BAD_FRAME);
    buf[0] ^= 1;
    assert_int_equal(rpc__handshake_decode(buf, sizeof(buf), &d), RPC_ERR_BAD_FRAME);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(rpc_strerror(RPC_ERR_TIMEOUT), "RPC_ERR_TIMEOUT");
    assert_string_equal(rpc_strerror(RPC_OK), "RPC_OK");
    assert_string_equal(rpc_strerror(-1), "RPC_ERR_UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_stream_of_frames),
        cmocka_unit_test(test_every_truncation_waits),
        cmocka_unit_test(test_every_corruption_rejected),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_handshake_codec),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
