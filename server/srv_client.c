/*
** server/srv_client.c: the calls of the `meridian` tool (init, node status,
** probe, drain, decommission). Each runs a private transport (provisional
** id, no listener) for the duration of the call.
**
** DRAIN and DECOMMISSION are idempotent and polled: the same request every
** SRV_CLIENT_POLL_MS until the node says it is done, bounded by the
** caller's timeout (a lost answer is only a lost poll).
**
** INIT is idempotent per tool run: it carries a random token; the node that
** ran it answers a retry with the same token with the same result, so an
** answer lost when the node restarts its transport (it does, to take its
** real node id) is recovered by asking again.
*/
#include "server/srv_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SRV_CLIENT_RETRY_MS 250
#define SRV_CLIENT_ATTEMPTS_MAX 400 /* bounded by the caller's timeout first */
#define SRV_CLIENT_POLL_MS 500      /* drain and decommission progress */
#define SRV_CLIENT_CALL_MS 20000    /* one poll's answer (the node may run a txn) */

typedef struct client {
    rpc_uv *uv;
    hlc_clock *clock;
} client;

static sec_tls_ctx *client_tls; /* borrowed; set before any call */

void srv_client_set_tls(sec_tls_ctx *client_ctx) { client_tls = client_ctx; }

static int client_open(client *c, char *err, size_t err_size) {
    memset(c, 0, sizeof *c);
    if (hlc_clock_new(hlc_system_clock(), HLC_DEFAULT_MAX_OFFSET_NS, &c->clock) != 0) {
        snprintf(err, err_size, "out of memory");
        return SRV_ERR_NOMEM;
    }
    rpc_uv_config cfg;
    rpc_uv_config_init(&cfg);
    cfg.node_id = srv__random_u64() | RPC_NODE_ID_PROVISIONAL_MIN;
    cfg.clock = c->clock;
    cfg.random_seed = cfg.node_id;
    cfg.listen_host = NULL; /* dial only */
    cfg.tls_client = client_tls;
    int rc = rpc_uv_start(&cfg, &c->uv);
    if (rc != RPC_OK) {
        snprintf(err, err_size, "cannot start the RPC client (%s)", rpc_strerror(rc));
        hlc_clock_free(c->clock);
        c->clock = NULL;
        return SRV_ERR_IO;
    }
    return SRV_OK;
}

static void client_close(client *c) {
    if (c->uv != NULL) rpc_uv_free(c->uv);
    if (c->clock != NULL) hlc_clock_free(c->clock);
    memset(c, 0, sizeof *c);
}

/* One call: SRV_OK with the answer in call (status SRV_OK), the node's own
** error status (message in err), or SRV_ERR_UNAVAILABLE (transport). */
static int call_once(client *c, const srv_addr *addr, uint32_t method, const base_buf *req,
                     int64_t timeout_ms, srv__call *call, char *err, size_t err_size) {
    int rc = srv__call_start(call, c->uv, addr, method, req ? req->data : NULL,
                             req ? req->len : 0, timeout_ms);
    if (rc == SRV_OK) srv__call_wait(call);
    if (call->rc == RPC_OK && call->status == SRV_OK) return SRV_OK;
    srv__call_error(call, addr, err, err_size);
    if (call->rc != RPC_OK) return SRV_ERR_UNAVAILABLE;
    return call->status < 0 ? call->status : SRV_ERR_REFUSED;
}

int srv_client_probe(const srv_addr *addr, int64_t timeout_ms, srv_probe_info *out, char *err,
                     size_t err_size) {
    memset(out, 0, sizeof *out);
    client c;
    srv__call call;
    int rc = client_open(&c, err, err_size);
    if (rc != SRV_OK) return rc;
    srv__call_init(&call);
    rc = call_once(&c, addr, SRV_METHOD_PROBE, NULL, timeout_ms, &call, err, err_size);
    if (rc == SRV_OK) {
        srv__probe_resp p;
        if (srv__probe_resp_decode(call.payload.data, call.payload.len, &p) != SRV_OK) {
            snprintf(err, err_size, "malformed answer from the node");
            rc = SRV_ERR_CORRUPT;
        } else {
            *out = (srv_probe_info){.initialized = p.initialized, .cluster_id = p.cluster_id,
                                    .node_id = p.node_id, .transport_id = call.from,
                                    .rpc = p.rpc, .sql = p.sql};
        }
    }
    srv__call_free(&call);
    client_close(&c);
    return rc;
}

int srv_client_init(const srv_addr *addr, int64_t timeout_ms, uint64_t *cluster_id,
                    srv_peer **peers, size_t *n_peers, char *err, size_t err_size) {
    *cluster_id = 0;
    *peers = NULL;
    *n_peers = 0;
    client c;
    srv__call call;
    base_buf req = {0};
    int rc = client_open(&c, err, err_size);
    if (rc != SRV_OK) return rc;
    srv__call_init(&call);
    int64_t deadline = base_monotonic_ns() + timeout_ms * 1000000;
    /* Reachable at all? Say so at once instead of retrying to the deadline. */
    rc = call_once(&c, addr, SRV_METHOD_PROBE, NULL, BASE_MIN(timeout_ms, 5000), &call, err,
                   err_size);
    if (rc != SRV_OK) goto done;
    if ((rc = srv__init_req_encode(srv__random_u64(), &req)) != SRV_OK) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    rc = SRV_ERR_UNAVAILABLE;
    for (int attempt = 0; attempt < SRV_CLIENT_ATTEMPTS_MAX; attempt++) {
        int64_t left_ms = (deadline - base_monotonic_ns()) / 1000000;
        if (left_ms <= 0) break;
        rc = call_once(&c, addr, SRV_METHOD_INIT, &req, left_ms, &call, err, err_size);
        if (rc != SRV_ERR_UNAVAILABLE && rc != SRV_ERR_BUSY) break;
        /* The answer was lost (the node restarts its transport right after
        ** it) or the node is busy: ask again with the same token. */
        struct timespec ts = {0, SRV_CLIENT_RETRY_MS * 1000000L};
        nanosleep(&ts, NULL); /* a bounded retry pause, not a wait for an event */
    }
    if (rc != SRV_OK) goto done;
    if (srv__init_resp_decode(call.payload.data, call.payload.len, cluster_id, peers, n_peers) !=
        SRV_OK) {
        snprintf(err, err_size, "malformed answer from the node");
        rc = SRV_ERR_CORRUPT;
    }
done:
    base_buf_free(&req);
    srv__call_free(&call);
    client_close(&c);
    return rc;
}

int srv_client_status(const srv_addr *addr, int64_t timeout_ms, srv_status *out, char *err,
                      size_t err_size) {
    memset(out, 0, sizeof *out);
    client c;
    srv__call call;
    int rc = client_open(&c, err, err_size);
    if (rc != SRV_OK) return rc;
    srv__call_init(&call);
    rc = call_once(&c, addr, SRV_METHOD_STATUS, NULL, timeout_ms, &call, err, err_size);
    if (rc == SRV_OK && srv__status_decode(call.payload.data, call.payload.len, out) != SRV_OK) {
        snprintf(err, err_size, "malformed answer from the node");
        rc = SRV_ERR_CORRUPT;
    }
    srv__call_free(&call);
    client_close(&c);
    return rc;
}

/* A bounded pause between two polls, not a wait for an event. */
static void poll_pause(void) {
    struct timespec ts = {0, SRV_CLIENT_POLL_MS * 1000000L};
    nanosleep(&ts, NULL);
}

int srv_client_drain(const srv_addr *addr, int64_t timeout_ms,
                     void (*progress)(void *ctx, const srv_drain_status *s), void *ctx,
                     srv_drain_status *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    client c;
    srv__call call;
    base_buf req = {0};
    int rc = client_open(&c, err, err_size);
    if (rc != SRV_OK) return rc;
    srv__call_init(&call);
    int64_t deadline = base_monotonic_ns() + timeout_ms * 1000000;
    if ((rc = srv__drain_req_encode(&req)) != SRV_OK) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    bool answered = false;
    for (;;) {
        int64_t left_ms = (deadline - base_monotonic_ns()) / 1000000;
        if (left_ms <= 0) {
            snprintf(err, err_size, "the node still holds %" PRIu32 " lease(s) after %" PRId64
                     " ms%s", out->leases, timeout_ms,
                     out->recorded ? "" : " (its liveness record does not say draining yet)");
            rc = SRV_ERR_UNAVAILABLE;
            break;
        }
        rc = call_once(&c, addr, SRV_METHOD_DRAIN, &req, BASE_MIN(left_ms, SRV_CLIENT_CALL_MS),
                       &call, err, err_size);
        if (rc == SRV_OK) {
            if (srv__drain_resp_decode(call.payload.data, call.payload.len, out) != SRV_OK) {
                snprintf(err, err_size, "malformed answer from the node");
                rc = SRV_ERR_CORRUPT;
                break;
            }
            answered = true;
            if (progress != NULL) progress(ctx, out);
            if (out->leases == 0 && out->recorded) break;
        } else if (rc != SRV_ERR_BUSY && (rc != SRV_ERR_UNAVAILABLE || !answered)) {
            break; /* refused, or not reachable at all: the message says why */
        }
        poll_pause();
    }
done:
    base_buf_free(&req);
    srv__call_free(&call);
    client_close(&c);
    return rc;
}

int srv_client_decommission(const srv_addr *addr, uint64_t node_id,
                            srv_decommission_action action, bool wait, int64_t timeout_ms,
                            void (*progress)(void *ctx, const srv_decommission_status *s),
                            void *ctx, srv_decommission_status *out, char *err,
                            size_t err_size) {
    memset(out, 0, sizeof *out);
    client c;
    srv__call call;
    base_buf req = {0};
    int rc = client_open(&c, err, err_size);
    if (rc != SRV_OK) return rc;
    srv__call_init(&call);
    int64_t deadline = base_monotonic_ns() + timeout_ms * 1000000;
    srv__decommission_req m = {.action = action, .node_id = node_id,
                               .finish = wait && action == SRV_DECOMMISSION};
    if ((rc = srv__decommission_req_encode(&m, &req)) != SRV_OK) {
        snprintf(err, err_size, rc == SRV_ERR_NOMEM ? "out of memory" : "bad node id");
        goto done;
    }
    bool answered = false;
    for (;;) {
        int64_t left_ms = (deadline - base_monotonic_ns()) / 1000000;
        if (left_ms <= 0) {
            if (answered)
                snprintf(err, err_size, "node %" PRIu64 " still holds %" PRIu32 " replica(s) "
                         "after %" PRId64 " ms (it stays decommissioning; run the command again "
                         "to wait more)", node_id, out->replicas, timeout_ms);
            rc = SRV_ERR_UNAVAILABLE;
            break;
        }
        rc = call_once(&c, addr, SRV_METHOD_DECOMMISSION, &req,
                       BASE_MIN(left_ms, SRV_CLIENT_CALL_MS), &call, err, err_size);
        if (rc == SRV_OK) {
            if (srv__decommission_resp_decode(call.payload.data, call.payload.len, out) !=
                SRV_OK) {
                snprintf(err, err_size, "malformed answer from the node");
                rc = SRV_ERR_CORRUPT;
                break;
            }
            answered = true;
            if (progress != NULL) progress(ctx, out);
            if (!m.finish || out->membership == SRV_MEMBERSHIP_DECOMMISSIONED) break;
            if (out->membership == SRV_MEMBERSHIP_ACTIVE) { /* recommissioned meanwhile */
                snprintf(err, err_size, "node %" PRIu64 " was recommissioned meanwhile", node_id);
                rc = SRV_ERR_REFUSED;
                break;
            }
        } else if (rc != SRV_ERR_BUSY && (rc != SRV_ERR_UNAVAILABLE || !answered)) {
            break; /* refused, no such node, not reachable: the message says why */
        }
        poll_pause();
    }
done:
    base_buf_free(&req);
    srv__call_free(&call);
    client_close(&c);
    return rc;
}

int srv_client_fault(const srv_addr *addr, const srv_fault_request *req, int64_t timeout_ms,
                     char *answer, size_t answer_size, char *err, size_t err_size) {
    if (answer_size > 0) answer[0] = '\0';
    client c;
    srv__call call;
    base_buf b = {0};
    int rc = client_open(&c, err, err_size);
    if (rc != SRV_OK) return rc;
    srv__call_init(&call);
    if ((rc = srv__fault_req_encode(req, &b)) != SRV_OK) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    /* One attempt: a fault request is not idempotent in time (a stall's
    ** window starts at its arrival), so a lost answer is reported. */
    rc = call_once(&c, addr, SRV_METHOD_FAULT, &b, timeout_ms, &call, err, err_size);
    if (rc == SRV_OK && answer_size > 0) {
        size_t n = BASE_MIN(call.payload.len, answer_size - 1);
        if (n > 0) memcpy(answer, call.payload.data, n);
        answer[n] = '\0';
    }
done:
    base_buf_free(&b);
    srv__call_free(&call);
    client_close(&c);
    return rc;
}
