/*
** tests/lib/sim_net.c: the outbox transport of the simulation harnesses
** (read sim_net.h first).
**
** Invariants:
**   - ob->head..tail is a FIFO of ob->len <= SIM_NET_OUTBOX_MAX frames,
**     changed only under ob->mu; a taken batch belongs to the driver.
**   - A push that returned RPC_OK hands its request callback to rpc_sim
**     (or, when rpc_sim refuses it, calls it once with that error): the
**     callback runs exactly once unless the harness drops the outbox
**     without fail_requests.
** Under dsched (tests/lib/dsched.h) the pthread and clock calls here are
** wrapped like the harness's own: their order is part of the schedule.
*/
#include "tests/lib/sim_net.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const rpc_transport_ops sim_net_tp_ops = {sim_net_tp_send, sim_net_tp_request, sim_net_tp_respond,
                                          sim_net_tp_set_handler, sim_net_tp_node_id};

static int sim_net__push(sim_net_tp *tp, sim_net_kind kind, rpc_node_id to, uint32_t method,
                         uint64_t request_id, int32_t status, const void *payload, size_t len,
                         int64_t timeout_ms, rpc_response_fn cb, void *ctx) {
    sim_net_outbox *ob = tp->outbox;
    sim_net_item *it = malloc(sizeof(*it) + len); /* owner: the outbox, then the driver */
    if (it == NULL) return RPC_ERR_NOMEM;
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    it->from = tp;
    it->to = to;
    it->method = method;
    it->request_id = request_id;
    it->status = status;
    it->timeout_ms = timeout_ms;
    it->cb = cb;
    it->ctx = ctx;
    it->len = len;
    if (len > 0) memcpy(it->data, payload, len);
    pthread_mutex_lock(&ob->mu);
    if (ob->len >= SIM_NET_OUTBOX_MAX) {
        pthread_mutex_unlock(&ob->mu);
        free(it);
        return RPC_ERR_QUEUE_FULL;
    }
    if (ob->tail != NULL) ob->tail->next = it;
    else ob->head = it;
    ob->tail = it;
    ob->len++;
    pthread_cond_signal(&ob->cv);
    pthread_mutex_unlock(&ob->mu);
    return RPC_OK;
}

int sim_net_tp_send(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload, size_t len) {
    return sim_net__push((sim_net_tp *)t, SIM_NET_SEND, to, method, 0, 0, payload, len, 0, NULL, NULL);
}

int sim_net_tp_request(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload, size_t len,
                       int64_t timeout_ms, rpc_response_fn cb, void *ctx) {
    return sim_net__push((sim_net_tp *)t, SIM_NET_REQUEST, to, method, 0, 0, payload, len, timeout_ms, cb,
                         ctx);
}

int sim_net_tp_respond(rpc_transport *t, rpc_node_id to, uint64_t request_id, int32_t status,
                       const void *payload, size_t len) {
    return sim_net__push((sim_net_tp *)t, SIM_NET_RESPOND, to, 0, request_id, status, payload, len, 0, NULL,
                         NULL);
}

void sim_net_tp_set_handler(rpc_transport *t, rpc_handler_fn fn, void *ctx) {
    (void)t;
    (void)fn;
    (void)ctx; /* the nodes run with no_handler; the harness's dispatch is the handler */
}

rpc_node_id sim_net_tp_node_id(rpc_transport *t) { return ((sim_net_tp *)t)->id; }

void sim_net_outbox_init(sim_net_outbox *ob) {
    pthread_mutex_init(&ob->mu, NULL);
    pthread_cond_init(&ob->cv, NULL);
    ob->head = ob->tail = NULL;
    ob->len = 0;
}

void sim_net_outbox_drop(sim_net_outbox *ob, bool fail_requests) {
    while (ob->head != NULL) {
        sim_net_item *it = ob->head;
        ob->head = it->next;
        if (fail_requests && it->kind == SIM_NET_REQUEST) it->cb(it->ctx, RPC_ERR_STOPPED, NULL);
        free(it);
    }
    ob->tail = NULL;
    ob->len = 0;
}

void sim_net_outbox_destroy(sim_net_outbox *ob) {
    sim_net_outbox_drop(ob, false);
    pthread_mutex_destroy(&ob->mu);
    pthread_cond_destroy(&ob->cv);
}

sim_net_item *sim_net_take(sim_net_outbox *ob) {
    pthread_mutex_lock(&ob->mu);
    sim_net_item *batch = ob->head;
    ob->head = ob->tail = NULL;
    ob->len = 0;
    pthread_mutex_unlock(&ob->mu);
    return batch;
}

void sim_net_deliver(sim_net_item *batch) {
    while (batch != NULL) {
        sim_net_item *it = batch;
        batch = it->next;
        rpc_transport *ep = it->from->sim;
        int rc = RPC_OK;
        if (it->kind == SIM_NET_SEND)
            rc = rpc_send(ep, it->to, it->method, it->data, it->len);
        else if (it->kind == SIM_NET_REQUEST)
            rc = rpc_request(ep, it->to, it->method, it->data, it->len, it->timeout_ms, it->cb, it->ctx);
        else
            rc = rpc_respond(ep, it->to, it->request_id, it->status, it->data, it->len);
        if (rc != RPC_OK && it->kind == SIM_NET_REQUEST) it->cb(it->ctx, rc, NULL); /* the caller was told RPC_OK */
        free(it);
    }
}

void sim_net_flush(sim_net_outbox *ob) { sim_net_deliver(sim_net_take(ob)); }

void sim_net_wait(sim_net_outbox *ob, const atomic_bool *stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += SIM_NET_PACE_NS;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ob->mu);
    if (ob->head == NULL && !atomic_load(stop)) pthread_cond_timedwait(&ob->cv, &ob->mu, &ts);
    pthread_mutex_unlock(&ob->mu);
}

void sim_net_wake(sim_net_outbox *ob) {
    pthread_mutex_lock(&ob->mu);
    pthread_cond_signal(&ob->cv);
    pthread_mutex_unlock(&ob->mu);
}
