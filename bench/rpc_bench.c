/*
** bench/rpc_bench.c: rpc_uv figures between two transports on loopback.
** Requests/s and p50/p99 latency of an echo request (64-byte payload) with
** 1 and 64 requests in flight, and one-way messages/s. Prints figures; never
** fails on timing. Built by tests/rpc/CMakeLists.txt (it needs meridian_rpc,
** which bench/CMakeLists.txt does not link) as <build>/rpc_bench.
**
** usage: rpc_bench [seconds per case, default 2]
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/base.h"
#include "rpc/rpc.h"

#define PAYLOAD_BYTES 64
#define SAMPLES_MAX 4000000

static uv_mutex_t mu;
static uv_cond_t cv;

typedef struct run {
    rpc_transport *client;
    uint64_t deadline_ns;
    uint64_t *lat_ns; /* samples */
    size_t nlat;
    int in_flight;
    int errors;
    bool stopping;
} run;

typedef struct slot {
    run *r;
    uint64_t sent_ns;
} slot;

static void echo(void *ctx, rpc_transport *t, const rpc_message *m)
{
    (void)ctx;
    if (m->request_id)
        rpc_respond(t, m->from, m->request_id, 0, m->payload, m->payload_len);
}

static void on_reply(void *ctx, int rc, const rpc_message *m);

static void issue(slot *s)
{
    uint8_t payload[PAYLOAD_BYTES] = {0};
    s->sent_ns = uv_hrtime();
    if (rpc_request(s->r->client, 2, 1, payload, sizeof(payload), 10000, on_reply, s) != 0) {
        uv_mutex_lock(&mu);
        s->r->errors++;
        s->r->in_flight--;
        uv_cond_signal(&cv);
        uv_mutex_unlock(&mu);
    }
}

/* Runs on the client's loop thread: record, then issue the next one. */
static void on_reply(void *ctx, int rc, const rpc_message *m)
{
    (void)m;
    slot *s = ctx;
    run *r = s->r;
    uint64_t now = uv_hrtime();
    uv_mutex_lock(&mu);
    if (rc != RPC_OK)
        r->errors++;
    else if (r->nlat < SAMPLES_MAX)
        r->lat_ns[r->nlat++] = now - s->sent_ns;
    bool again = now < r->deadline_ns && r->nlat < SAMPLES_MAX;
    if (!again) {
        r->in_flight--;
        uv_cond_signal(&cv);
    }
    uv_mutex_unlock(&mu);
    if (again)
        issue(s);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void bench_requests(rpc_transport *client, int depth, double seconds)
{
    run r = {0};
    r.client = client;
    r.lat_ns = malloc(sizeof(uint64_t) * SAMPLES_MAX);
    slot *slots = calloc((size_t)depth, sizeof(slot));
    uint64_t start = uv_hrtime();
    r.deadline_ns = start + (uint64_t)(seconds * 1e9);
    r.in_flight = depth;
    for (int i = 0; i < depth; i++) {
        slots[i].r = &r;
        issue(&slots[i]);
    }
    uv_mutex_lock(&mu);
    while (r.in_flight > 0)
        uv_cond_wait(&cv, &mu);
    uv_mutex_unlock(&mu);
    double elapsed = (double)(uv_hrtime() - start) / 1e9;
    qsort(r.lat_ns, r.nlat, sizeof(uint64_t), cmp_u64);
    uint64_t p50 = r.nlat ? r.lat_ns[r.nlat / 2] : 0;
    uint64_t p99 = r.nlat ? r.lat_ns[(size_t)((double)r.nlat * 0.99)] : 0;
    printf("requests, %2d in flight: %9.0f req/s   p50 %7.1f us   p99 %7.1f us   (%zu samples, "
           "%d errors)\n",
           depth, (double)r.nlat / elapsed, (double)p50 / 1e3, (double)p99 / 1e3, r.nlat,
           r.errors);
    free(slots);
    free(r.lat_ns);
}

static uint64_t received;
static void count(void *ctx, rpc_transport *t, const rpc_message *m)
{
    (void)ctx;
    (void)t;
    (void)m;
    uv_mutex_lock(&mu);
    received++;
    uv_cond_signal(&cv);
    uv_mutex_unlock(&mu);
}

static void bench_messages(rpc_uv *client_uv, rpc_transport *client, rpc_transport *server,
                           double seconds)
{
    rpc_set_handler(server, count, NULL);
    uint8_t payload[PAYLOAD_BYTES] = {0};
    uint64_t start = uv_hrtime(), deadline = start + (uint64_t)(seconds * 1e9), sent = 0;
    /* A window of 4000 unacknowledged messages, below the peer queue's 8192,
    ** so nothing is dropped. */
    while (uv_hrtime() < deadline) {
        for (int i = 0; i < 1000; i++)
            if (rpc_send(client, 2, 1, payload, sizeof(payload)) == 0)
                sent++;
        uv_mutex_lock(&mu);
        while (sent - received > 4000)
            uv_cond_timedwait(&cv, &mu, 100000000);
        uv_mutex_unlock(&mu);
    }
    rpc_uv_stats st;
    rpc_uv_get_stats(client_uv, &st);
    uint64_t want = sent - st.messages_dropped;
    uv_mutex_lock(&mu);
    while (received < want)
        uv_cond_timedwait(&cv, &mu, 100000000);
    uv_mutex_unlock(&mu);
    double elapsed = (double)(uv_hrtime() - start) / 1e9;
    rpc_uv_get_stats(client_uv, &st);
    printf("one-way messages:       %9.0f msg/s   (%llu sent, %llu dropped, %.1f frames per write)\n",
           (double)received / elapsed, (unsigned long long)sent,
           (unsigned long long)st.messages_dropped,
           st.writes ? (double)st.frames_sent / (double)st.writes : 0.0);
    rpc_set_handler(server, echo, NULL);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    if (seconds <= 0)
        seconds = 2.0;
    uv_mutex_init(&mu);
    uv_cond_init(&cv);
    base_log_set_level(BASE_LOG_WARN);
    rpc_uv *a, *b;
    rpc_uv_config c;
    rpc_uv_config_init(&c);
    c.node_id = 2;
    c.handler = echo;
    if (rpc_uv_start(&c, &b) != 0) {
        fprintf(stderr, "cannot start server transport\n");
        return 1;
    }
    rpc_uv_config_init(&c);
    c.node_id = 1;
    c.listen_host = NULL;
    if (rpc_uv_start(&c, &a) != 0) {
        fprintf(stderr, "cannot start client transport\n");
        return 1;
    }
    rpc_uv_add_peer(a, 2, "127.0.0.1", rpc_uv_listen_port(b));
    printf("rpc_uv on loopback, %d-byte payloads, %.1f s per case\n", PAYLOAD_BYTES, seconds);
    bench_requests(rpc_uv_transport(a), 1, seconds);
    bench_requests(rpc_uv_transport(a), 64, seconds);
    bench_messages(a, rpc_uv_transport(a), rpc_uv_transport(b), seconds);
    rpc_uv_free(a);
    rpc_uv_free(b);
    uv_cond_destroy(&cv);
    uv_mutex_destroy(&mu);
    return 0;
}
