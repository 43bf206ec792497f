/*
** server/srv_fault.c: the test-only fault control of a node (the chaos
** harness, docs/chaos.md) and what a node does when its Raft log or its
** store fails.
**
**   FAULT (`meridian debug net-fault | disk-fault | store-fault --host H`):
**   delay and loss of the frames the node receives (rpc_uv_set_fault), a
**   failed or stalled fdatasync of its shared Raft log
**   (raft_log_inject_fault) or of its RocksDB store's synced writes
**   (storage_inject_fault). Answered on the transport's loop thread: the
**   calls only set fields under a short lock or atomics. The request comes
**   by address on a side connection, which the network faults never touch,
**   so a node under 100% loss still obeys.
**
**   A failed write or fdatasync of the Raft log, or a failed sync of the
**   store (real or injected): the node logs one FATAL line and exits at
**   once with SRV_EXIT_LOG_FAILED.
**   Not a clean stop: after a failed fsync the kernel may have dropped the
**   dirty pages and marked them clean, so nothing written since the last
**   good fsync may be trusted, and a retry could "succeed" over lost data
**   (PostgreSQL's fsync lesson, 2018). The restart recovers from what is
**   on disk, exactly as after kill -9; peers see a crash.
**
** Invariants:
**   - a node started without enable_test_faults changes nothing on a FAULT
**     request and answers SRV_ERR_REFUSED;
**   - nothing here blocks the loop thread (rpc_uv_set_fault,
**     raft_log_inject_fault and storage_inject_fault take no lock held
**     across I/O);
**   - srv__log_failure_exit and srv__store_failure_exit never return: no
**     thread of the process runs after a failed Raft-log write or fsync, or
**     a failed sync of the store, has been seen.
*/
#include "server/srv_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MOD "srv"
#define FAULT_ANSWER_MAX 512 /* the text answer */

int srv__fault_req_encode(const srv_fault_request *m, base_buf *out) {
    uint8_t flags = (uint8_t)((m->clear_all ? 1 : 0) | (m->fail_next ? 2 : 0));
    int rc = srv__put_u8(out, SRV_WIRE_VERSION);
    if (rc == SRV_OK) rc = srv__put_u8(out, m->kind);
    if (rc == SRV_OK) rc = srv__put_u8(out, flags);
    if (rc == SRV_OK) rc = srv__put_u64(out, m->peer);
    if (rc == SRV_OK) rc = srv__put_u32(out, m->delay_ms);
    if (rc == SRV_OK) rc = srv__put_u32(out, m->jitter_ms);
    if (rc == SRV_OK) rc = srv__put_u32(out, m->loss_per_million);
    if (rc == SRV_OK) rc = srv__put_u32(out, m->stall_ms);
    return rc;
}

int srv__fault_req_decode(const uint8_t *p, size_t len, srv_fault_request *out) {
    memset(out, 0, sizeof *out);
    srv__reader r = {p, len, false};
    if (srv__get_u8(&r) != SRV_WIRE_VERSION) r.bad = true;
    out->kind = srv__get_u8(&r);
    uint8_t flags = srv__get_u8(&r);
    out->peer = srv__get_u64(&r);
    out->delay_ms = srv__get_u32(&r);
    out->jitter_ms = srv__get_u32(&r);
    out->loss_per_million = srv__get_u32(&r);
    out->stall_ms = srv__get_u32(&r);
    if (out->kind > SRV_FAULT_STORE || flags > 3) r.bad = true;
    out->clear_all = (flags & 1) != 0;
    out->fail_next = (flags & 2) != 0;
    return (r.bad || r.left != 0) ? SRV_ERR_CORRUPT : SRV_OK;
}

/* The node's faults as one line of text. */
static void describe(rpc_uv *uv, raft_log *log, storage_engine *engine, char *out,
                     size_t size) {
    size_t used = 0;
    rpc_uv_fault f[RPC_FAULTS_MAX];
    size_t n = uv != NULL ? rpc_uv_get_faults(uv, f, RPC_FAULTS_MAX) : 0;
    used += (size_t)snprintf(out + used, size - used, "net:");
    if (n == 0 && used < size) used += (size_t)snprintf(out + used, size - used, " none");
    for (size_t i = 0; i < n && i < RPC_FAULTS_MAX && used < size; i++) {
        char who[32];
        if (f[i].peer == 0) snprintf(who, sizeof who, "all peers");
        else snprintf(who, sizeof who, "from n%" PRIu64, f[i].peer);
        used += (size_t)snprintf(out + used, size - used, " [%s: delay %" PRIu32 "+%" PRIu32
                                 " ms, loss %.4f]", who, f[i].delay_ms, f[i].jitter_ms,
                                 (double)f[i].loss_per_million / 1e6);
    }
    if (used >= size) return;
    bool armed, poisoned;
    int64_t stall_left_ms;
    if (log == NULL) {
        used += (size_t)snprintf(out + used, size - used, "; disk: no shared Raft log");
    } else {
        raft_log_fault_state(log, &armed, &stall_left_ms, &poisoned);
        used += (size_t)snprintf(out + used, size - used, "; disk (Raft log): next fdatasync "
                                 "fails: %s, stall left %" PRId64 " ms%s", armed ? "yes" : "no",
                                 stall_left_ms, poisoned ? ", LOG FAILED" : "");
    }
    if (used >= size || engine == NULL) return;
    storage_fault_state(engine, &armed, &stall_left_ms, &poisoned);
    snprintf(out + used, size - used, "; store: next sync fails: %s, stall left %" PRId64
             " ms%s", armed ? "yes" : "no", stall_left_ms, poisoned ? ", STORE FAILED" : "");
}

static void answer_text(rpc_transport *t, const rpc_message *msg, int32_t status,
                        const char *text) {
    rpc_respond(t, msg->from, msg->request_id, status, text, strlen(text));
}

void srv__fault_answer(rpc_transport *t, const rpc_message *msg, bool enabled, rpc_uv *uv,
                       raft_log *log, storage_engine *engine) {
    char text[FAULT_ANSWER_MAX];
    if (!enabled) {
        answer_text(t, msg, SRV_ERR_REFUSED, "test faults are disabled on this node (start it "
                    "with --enable-test-faults)");
        return;
    }
    srv_fault_request q;
    if (srv__fault_req_decode(msg->payload, msg->payload_len, &q) != SRV_OK) {
        answer_text(t, msg, SRV_ERR_CORRUPT, "malformed fault request");
        return;
    }
    if (q.kind == SRV_FAULT_NET) {
        if (uv == NULL) {
            answer_text(t, msg, SRV_ERR_INVALID, "no transport");
            return;
        }
        if (q.clear_all) rpc_uv_clear_faults(uv);
        rpc_uv_fault f = {.peer = q.peer, .delay_ms = q.delay_ms, .jitter_ms = q.jitter_ms,
                          .loss_per_million = q.loss_per_million};
        int rc = rpc_uv_set_fault(uv, &f);
        if (rc != RPC_OK) {
            snprintf(text, sizeof text, "cannot set the network fault: %s (delay and jitter at "
                     "most %d ms, loss at most 1)", rpc_strerror(rc), RPC_FAULT_DELAY_MS_MAX);
            answer_text(t, msg, SRV_ERR_INVALID, text);
            return;
        }
        char who[32] = "every peer";
        if (q.peer != 0) snprintf(who, sizeof who, "node %" PRIu64, q.peer);
        BASE_WARN(MOD, "test fault: frames received from %s delayed %" PRIu32 "+[0,%" PRIu32
                  "] ms, lost with probability %.4f%s", who, q.delay_ms, q.jitter_ms,
                  (double)q.loss_per_million / 1e6, q.clear_all ? " (other faults cleared)" : "");
    } else if (q.kind == SRV_FAULT_DISK) {
        if (log == NULL) {
            answer_text(t, msg, SRV_ERR_INVALID, "this node has no shared Raft log to fault "
                        "(store-fault faults its RocksDB store)");
            return;
        }
        if (raft_log_inject_fault(log, q.fail_next, q.stall_ms) != RAFT_LOG_OK) {
            snprintf(text, sizeof text, "stall at most %d ms", RAFT_LOG_FAULT_STALL_MS_MAX);
            answer_text(t, msg, SRV_ERR_INVALID, text);
            return;
        }
    } else if (q.kind == SRV_FAULT_STORE) {
        if (engine == NULL ||
            storage_inject_fault(engine, q.fail_next, q.stall_ms) != STORAGE_OK) {
            snprintf(text, sizeof text, "no RocksDB store to fault, or a stall above %d ms",
                     STORAGE_FAULT_STALL_MS_MAX);
            answer_text(t, msg, SRV_ERR_INVALID, text);
            return;
        }
    }
    describe(uv, log, engine, text, sizeof text);
    answer_text(t, msg, SRV_OK, text);
}

void srv__log_failure_exit(void *ctx, const char *what) {
    (void)ctx;
    BASE_ERROR(MOD, "FATAL: the shared Raft log failed (%s): exiting now with status %d, "
               "without a clean stop; a failed fsync is never retried. Restart the node: it "
               "recovers from what is on disk", what, SRV_EXIT_LOG_FAILED);
    _exit(SRV_EXIT_LOG_FAILED);
}

void srv__store_failure_exit(void *ctx, const char *what) {
    (void)ctx;
    BASE_ERROR(MOD, "FATAL: the store failed (%s): exiting now with status %d, without a clean "
               "stop; a failed fsync is never retried. Restart the node: it recovers from what "
               "is on disk", what, SRV_EXIT_LOG_FAILED);
    _exit(SRV_EXIT_LOG_FAILED);
}
