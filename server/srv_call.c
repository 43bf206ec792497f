/*
** server/srv_call.c: one request to an address, waited for on the calling
** thread. The rpc callback (loop thread) only copies the answer and
** signals; the caller owns the srv__call and must wait for it before
** freeing it, which is bounded because rpc_uv runs every accepted request's
** callback exactly once, at the latest at its deadline (or when the
** transport is freed).
*/
#include "server/srv_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void srv__call_init(srv__call *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &a);
    pthread_condattr_destroy(&a);
}

void srv__call_free(srv__call *c) {
    base_buf_free(&c->payload);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
}

static void on_response(void *ctx, int rc, const rpc_message *resp) {
    srv__call *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->rc = rc;
    if (rc == RPC_OK && resp != NULL) {
        c->status = resp->status;
        c->from = resp->from;
        base_buf_reset(&c->payload);
        if (resp->payload_len > 0 &&
            base_buf_append(&c->payload, resp->payload, resp->payload_len) != 0)
            c->rc = RPC_ERR_NOMEM;
    }
    c->done = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

int srv__call_start(srv__call *c, rpc_uv *uv, const srv_addr *addr, uint32_t method,
                    const void *payload, size_t len, int64_t timeout_ms) {
    c->done = false;
    c->rc = 0;
    c->status = 0;
    c->from = 0;
    int rc = rpc_uv_request_addr(uv, addr->host, addr->port, method, payload, len, timeout_ms,
                                 on_response, c);
    if (rc != RPC_OK) {
        c->rc = rc;
        c->done = true;
        c->started = false;
        return rc == RPC_ERR_NOMEM ? SRV_ERR_NOMEM : SRV_ERR_UNAVAILABLE;
    }
    c->started = true;
    return SRV_OK;
}

void srv__call_wait(srv__call *c) {
    pthread_mutex_lock(&c->mu);
    /* Bounded by the rpc deadline: rpc_uv calls back exactly once, at the
    ** latest when the deadline passes. The timed wait only lets us log. */
    while (!c->done) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 30;
        if (pthread_cond_timedwait(&c->cond, &c->mu, &ts) == ETIMEDOUT && !c->done)
            BASE_WARN("srv", "an rpc call is 30 s past its start without a callback");
    }
    pthread_mutex_unlock(&c->mu);
}

void srv__call_error(const srv__call *c, const srv_addr *addr, char *buf, size_t size) {
    char where[SRV_HOST_SIZE_MAX + 16];
    srv__addr_format(addr, where, sizeof where);
    if (c->rc != RPC_OK) {
        const char *why = c->rc == RPC_ERR_TIMEOUT        ? "timed out"
                          : c->rc == RPC_ERR_DISCONNECTED ? "connection lost"
                          : c->rc == RPC_ERR_HANDSHAKE    ? "handshake refused"
                                                          : rpc_strerror(c->rc);
        snprintf(buf, size, "cannot reach the node at %s: %s", where, why);
        return;
    }
    if (c->status < 0 && c->payload.len > 0) {
        size_t n = BASE_MIN(c->payload.len, size - 1);
        memcpy(buf, c->payload.data, n);
        buf[n] = '\0';
        return;
    }
    snprintf(buf, size, "the node at %s answered with error %d", where, (int)c->status);
}
