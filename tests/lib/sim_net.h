/*
** tests/lib/sim_net.h: the outbox transport of the in-process simulation
** harnesses (tests/range/test_range_server.c, tests/txn/test_txn_sim.c).
**
** Every node (and client) of a harness sees a sim_net_tp: its send,
** request and respond only copy the frame into the harness's outbox (a
** bounded FIFO), from any thread, and return at once. One driver thread
** alone touches rpc_sim: it takes the outbox (sim_net_take), hands each
** frame to the sender's rpc_sim endpoint (sim_net_deliver), runs the sim,
** and paces itself with sim_net_wait (new frames, else 1 ms). So no node
** code runs inside an rpc_sim call made by another thread, and rpc_sim
** needs no lock of its own beyond the harness's.
**
** What stays in each harness: its driver loop (rounds, ticks, what it
** observes), the endpoints' handler (dispatch) and its teardown order.
**
** Limits: SIM_NET_OUTBOX_MAX frames wait at most; a push beyond it fails
** with RPC_ERR_QUEUE_FULL (as a full real transport would).
*/
#ifndef MERIDIAN_TESTS_SIM_NET_H
#define MERIDIAN_TESTS_SIM_NET_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/rpc.h"

#define SIM_NET_OUTBOX_MAX (1u << 20) /* frames waiting for the driver */
#define SIM_NET_PACE_NS 1000000L      /* the driver's wait when nothing is queued */

typedef enum sim_net_kind { SIM_NET_SEND, SIM_NET_REQUEST, SIM_NET_RESPOND } sim_net_kind;

typedef struct sim_net_tp sim_net_tp;

/* One frame in the outbox (owner: the outbox, then whoever took it). */
typedef struct sim_net_item {
    struct sim_net_item *next;
    sim_net_kind kind;
    sim_net_tp *from; /* the sender (lives as long as the harness) */
    rpc_node_id to;
    uint32_t method;
    uint64_t request_id;
    int32_t status;
    int64_t timeout_ms;
    rpc_response_fn cb;
    void *ctx;
    size_t len;
    uint8_t data[];
} sim_net_item;

typedef struct sim_net_outbox {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled on every push and by sim_net_wake */
    sim_net_item *head, *tail; /* owned */
    size_t len;
} sim_net_outbox;

/* The transport a node sees. Harnesses embed it first in their own (or use
** it as is) and fill it with a compound literal:
**     (sim_net_tp){{&sim_net_tp_ops}, &outbox, harness, id, NULL}
** then create `sim` with rpc_sim_add_node. */
struct sim_net_tp {
    rpc_transport base;     /* first member */
    sim_net_outbox *outbox; /* borrowed: the harness's */
    void *owner;            /* the harness (fixture, sim): for its callbacks */
    rpc_node_id id;
    rpc_transport *sim;     /* the sim endpoint; touched by the driver only */
};

/* The ops of a sim_net_tp; each one is exported so that a harness can
** wrap one of them in its own ops table. set_handler does nothing: the
** harness sets its handler on the sim endpoint. */
extern const rpc_transport_ops sim_net_tp_ops;
int sim_net_tp_send(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload, size_t len);
int sim_net_tp_request(rpc_transport *t, rpc_node_id to, uint32_t method, const void *payload, size_t len,
                       int64_t timeout_ms, rpc_response_fn cb, void *ctx);
int sim_net_tp_respond(rpc_transport *t, rpc_node_id to, uint64_t request_id, int32_t status,
                       const void *payload, size_t len);
void sim_net_tp_set_handler(rpc_transport *t, rpc_handler_fn fn, void *ctx);
rpc_node_id sim_net_tp_node_id(rpc_transport *t);

void sim_net_outbox_init(sim_net_outbox *ob);
/* Frees the frames still queued; fail_requests: each request's callback
** first gets RPC_ERR_STOPPED (only when its ctx is still alive). */
void sim_net_outbox_drop(sim_net_outbox *ob, bool fail_requests);
/* Drops what is queued (without callbacks), then the lock and condvar. */
void sim_net_outbox_destroy(sim_net_outbox *ob);

/* Driver side. sim_net_take empties the outbox and returns its frames in
** order (owner: the caller, who passes them to sim_net_deliver). */
sim_net_item *sim_net_take(sim_net_outbox *ob);
/* Hands each frame to its sender's sim endpoint and frees it; a request
** rpc_sim refuses gets its callback with that error (its sender was told
** RPC_OK). Call with the harness's sim lock held. */
void sim_net_deliver(sim_net_item *batch);
/* sim_net_take then sim_net_deliver. */
void sim_net_flush(sim_net_outbox *ob);
/* Waits until a frame is queued or SIM_NET_PACE_NS passed (realtime, so
** simulated under dsched); returns at once when *stop. */
void sim_net_wait(sim_net_outbox *ob, const atomic_bool *stop);
/* Wakes a driver in sim_net_wait (after setting its stop flag). */
void sim_net_wake(sim_net_outbox *ob);

#endif
