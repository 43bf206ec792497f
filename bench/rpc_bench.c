/*
** bench/rpc_bench.c: rpc_uv figures between two transports on loopback,
** in plaintext and over TLS (mutual, node certificates made with the
** sec_cert_* API in a temporary directory). Requests/s and p50/p99 latency
** of an echo request (64-byte payload) with 1 and 64 requests in flight, of
** a 64 KiB echo with 8 in flight (MB/s: where encryption costs), and
** one-way messages/s. Prints figures; never fails on timing. Built by
** tests/rpc/CMakeLists.txt (it needs meridian_rpc, which
** bench/CMakeLists.txt does not link) as <build>/rpc_bench.
**
** usage: rpc_bench [seconds per case, default 2] [plain|tls, default both]
*/
#define _GNU_SOURCE /* mkdtemp, nftw */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/base.h"
#include "rpc/rpc.h"
#include "security/security.h"

#define PAYLOAD_BYTES 64
#define BIG_PAYLOAD_BYTES (64 * 1024)
#define SAMPLES_MAX 4000000

static uv_mutex_t mu;
static uv_cond_t cv;

typedef struct run {
    rpc_transport *client;
    size_t payload_len;
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
    static const uint8_t payload[BIG_PAYLOAD_BYTES];
    s->sent_ns = uv_hrtime();
    if (rpc_request(s->r->client, 2, 1, payload, s->r->payload_len, 10000, on_reply, s) != 0) {
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

static void bench_requests(rpc_transport *client, int depth, size_t payload_len,
                           double seconds)
{
    run r = {0};
    r.client = client;
    r.payload_len = payload_len;
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
    double rate = (double)r.nlat / elapsed;
    printf("requests, %6zu B, %2d in flight: %9.0f req/s   p50 %7.1f us   p99 %7.1f us   "
           "%7.1f MB/s each way   (%zu samples, %d errors)\n",
           payload_len, depth, rate, (double)p50 / 1e3, (double)p99 / 1e3,
           rate * (double)payload_len / 1e6, r.nlat, r.errors);
    free(slots);
    free(r.lat_ns);
}

static uint64_t received; /* guarded by mu */
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
    uv_mutex_lock(&mu);
    received = 0;
    uv_mutex_unlock(&mu);
    rpc_uv_stats st0;
    rpc_uv_get_stats(client_uv, &st0);
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
    uint64_t want = sent - (st.messages_dropped - st0.messages_dropped);
    uv_mutex_lock(&mu);
    while (received < want)
        uv_cond_timedwait(&cv, &mu, 100000000);
    uv_mutex_unlock(&mu);
    double elapsed = (double)(uv_hrtime() - start) / 1e9;
    rpc_uv_get_stats(client_uv, &st);
    uint64_t writes = st.writes - st0.writes, frames = st.frames_sent - st0.frames_sent;
    printf("one-way messages:                %9.0f msg/s   (%llu sent, %llu dropped, %.1f "
           "frames per write)\n",
           (double)received / elapsed, (unsigned long long)sent,
           (unsigned long long)(st.messages_dropped - st0.messages_dropped),
           writes ? (double)frames / (double)writes : 0.0);
    rpc_set_handler(server, echo, NULL);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Certificates for the TLS run in a temporary directory: dir (the certs
** dir) and root (to remove). 0 or -1. */
static int make_certs(char *root, size_t root_size, char *dir, size_t dir_size)
{
    char err[SEC_ERR_MSG_SIZE], key[512];
    snprintf(root, root_size, "/tmp/meridian-rpcbench-XXXXXX");
    if (mkdtemp(root) == NULL) {
        root[0] = '\0';
        return -1;
    }
    snprintf(dir, dir_size, "%s/certs", root);
    snprintf(key, sizeof(key), "%s/ca.key", root);
    static const char *const hosts[] = {"127.0.0.1"};
    if (sec_cert_create_ca(dir, key, NULL, err, sizeof(err)) != 0 ||
        sec_cert_create_node(dir, key, hosts, 1, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "cannot make certificates: %s\n", err);
        return -1;
    }
    return 0;
}

/* One run of every case: plaintext (certs NULL) or TLS. 0 or -1. */
static int run_mode(const char *certs, double seconds)
{
    char err[SEC_ERR_MSG_SIZE];
    sec_tls_ctx *srv = NULL, *cli = NULL;
    if (certs != NULL) {
        sec_tls_options so = {.require_peer_node = true};
        sec_tls_options co = {.cert_name = "node"};
        if (sec_tls_server_ctx_new(certs, &so, &srv, err, sizeof(err)) != 0 ||
            sec_tls_client_ctx_new(certs, &co, &cli, err, sizeof(err)) != 0) {
            fprintf(stderr, "cannot load certificates: %s\n", err);
            sec_tls_ctx_free(srv);
            return -1;
        }
    }
    rpc_uv *a = NULL, *b = NULL;
    rpc_uv_config c;
    rpc_uv_config_init(&c);
    c.node_id = 2;
    c.handler = echo;
    c.tls_server = srv;
    c.tls_client = cli;
    int rc = -1;
    if (rpc_uv_start(&c, &b) != 0) {
        fprintf(stderr, "cannot start server transport\n");
        goto done;
    }
    rpc_uv_config_init(&c);
    c.node_id = 1;
    c.listen_host = NULL;
    c.tls_client = cli;
    if (rpc_uv_start(&c, &a) != 0) {
        fprintf(stderr, "cannot start client transport\n");
        goto done;
    }
    rpc_uv_add_peer(a, 2, "127.0.0.1", rpc_uv_listen_port(b));
    printf("rpc_uv on loopback, %s, %.1f s per case\n",
           certs ? "TLS (mutual, node certificates)" : "plaintext", seconds);
    bench_requests(rpc_uv_transport(a), 1, PAYLOAD_BYTES, seconds);
    bench_requests(rpc_uv_transport(a), 64, PAYLOAD_BYTES, seconds);
    bench_requests(rpc_uv_transport(a), 8, BIG_PAYLOAD_BYTES, seconds);
    bench_messages(a, rpc_uv_transport(a), rpc_uv_transport(b), seconds);
    rc = 0;
done:
    rpc_uv_free(a);
    rpc_uv_free(b);
    sec_tls_ctx_free(srv);
    sec_tls_ctx_free(cli);
    return rc;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    if (seconds <= 0)
        seconds = 2.0;
    const char *mode = argc > 2 ? argv[2] : "both";
    bool plain = strcmp(mode, "tls") != 0, tls = strcmp(mode, "plain") != 0;
    uv_mutex_init(&mu);
    uv_cond_init(&cv);
    base_log_set_level(BASE_LOG_WARN);
    int rc = 0;
    if (plain)
        rc |= run_mode(NULL, seconds);
    if (tls) {
        char root[256], dir[320];
        if (make_certs(root, sizeof(root), dir, sizeof(dir)) != 0)
            rc = -1;
        else
            rc |= run_mode(dir, seconds);
        if (root[0] != '\0')
            nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    uv_cond_destroy(&cv);
    uv_mutex_destroy(&mu);
    return rc == 0 ? 0 : 1;
}
