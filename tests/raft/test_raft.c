/*
** tests/raft/test_raft.c: unit tests of the raft/ core API: configuration
** and restart validation, the persist-before-send routing of messages,
** single-node commit only after PERSISTED, malformed peer messages
** (rejected, no effect), proposal limits, and out-of-memory injected at
** every step of a scripted three-node scenario (no crash, no leak, every
** simulator invariant still holds).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rsim.h"

static raft_config config3(uint64_t id) {
    raft_config c;
    raft_config_default(&c);
    c.id = id;
    c.voters[0] = 1;
    c.voters[1] = 2;
    c.voters[2] = 3;
    c.n_voters = 3;
    c.random_seed = 42;
    return c;
}

static void test_config_validation(void **unused) {
    raft_config c = config3(1);
    raft_node *n = NULL;
    (void)unused;
    c.id = 0;
    assert_int_equal(raft_node_new(&c, NULL, NULL, 0, &n), RAFT_ERR_INVALID);
    c = config3(4); /* not a voter: needs learners */
    assert_int_equal(raft_node_new(&c, NULL, NULL, 0, &n), RAFT_ERR_UNSUPPORTED);
    c = config3(1);
    c.voters[2] = 2; /* duplicate */
    assert_int_equal(raft_node_new(&c, NULL, NULL, 0, &n), RAFT_ERR_INVALID);
    c = config3(1);
    c.lease_drift_ticks = c.election_ticks;
    assert_int_equal(raft_node_new(&c, NULL, NULL, 0, &n), RAFT_ERR_INVALID);
    c = config3(1);
    c.election_ticks = 1;
    assert_int_equal(raft_node_new(&c, NULL, NULL, 0, &n), RAFT_ERR_INVALID);
    c = config3(1);
    c.n_learners = 1;
    c.learners[0] = 9;
    assert_int_equal(raft_node_new(&c, NULL, NULL, 0, &n), RAFT_ERR_UNSUPPORTED);
    c = config3(1);
    c.max_inflight_msgs = 100000;
    assert_int_equal(raft_node_new(&c, NULL, NULL, 0, &n), RAFT_ERR_INVALID);
    assert_null(n);
}

static void test_restart_validation(void **unused) {
    raft_config c = config3(1);
    raft_hard_state hs = {3, 2, 5};
    raft_entry log[3];
    raft_node *n = NULL;
    raft_status st;
    uint8_t byte = 7;
    (void)unused;
    memset(log, 0, sizeof(log));
    log[0] = (raft_entry){1, 1, RAFT_ENTRY_EMPTY, NULL, 0};
    log[1] = (raft_entry){2, 2, RAFT_ENTRY_NORMAL, &byte, 1};
    log[2] = (raft_entry){3, 3, RAFT_ENTRY_NORMAL, &byte, 1};
    /* commit 5 beyond the log is clamped to 3 */
    assert_int_equal(raft_node_new(&c, &hs, log, 3, &n), 0);
    raft_node_status(n, &st);
    assert_int_equal(st.term, 3);
    assert_int_equal(st.vote, 2);
    assert_int_equal(st.commit, 3);
    assert_int_equal(st.last_index, 3);
    assert_int_equal(st.stable_index, 3);
    raft_node_free(n);
    /* term going down along the log */
    log[2].term = 1;
    assert_int_equal(raft_node_new(&c, &hs, log, 3, &n), RAFT_ERR_INVALID);
    log[2].term = 3;
    /* entry of a term above the hard state */
    hs.term = 2;
    assert_int_equal(raft_node_new(&c, &hs, log, 3, &n), RAFT_ERR_INVALID);
    hs.term = 3;
    /* a gap in the indices */
    log[1].index = 5;
    assert_int_equal(raft_node_new(&c, &hs, log, 3, &n), RAFT_ERR_INVALID);
    log[1].index = 2;
    /* entries without a hard state */
    assert_int_equal(raft_node_new(&c, NULL, log, 3, &n), RAFT_ERR_INVALID);
    /* applied above the log */
    c.applied = 4;
    assert_int_equal(raft_node_new(&c, &hs, log, 3, &n), RAFT_ERR_INVALID);
}

static void test_single_node_commits_after_persist(void **unused) {
    raft_config c;
    raft_node *n = NULL;
    raft_event ev = {0};
    raft_update up;
    raft_proposal p = {(const uint8_t *)"hello", 5};
    uint64_t seq;
    (void)unused;
    raft_config_default(&c);
    c.id = 1;
    c.voters[0] = 1;
    c.n_voters = 1;
    assert_int_equal(raft_node_new(&c, NULL, NULL, 0, &n), 0);
    ev.type = RAFT_EVENT_CAMPAIGN;
    assert_int_equal(raft_step(n, &ev, &up), 0);
    assert_int_equal(up.role, RAFT_LEADER);
    assert_int_equal(up.term, 1);
    assert_true(up.hard_state_changed);
    assert_int_equal(up.hard_state.term, 1);
    assert_int_equal(up.hard_state.vote, 1);
    assert_int_equal(up.n_entries, 1); /* the empty entry of term 1 */
    assert_int_equal(up.n_committed, 0); /* not durable yet */
    assert_int_equal(up.n_messages + up.n_messages_after_persist, 0);
    seq = up.persist_seq;
    assert_true(seq != 0);
    ev.type = RAFT_EVENT_PROPOSE;
    ev.proposals = &p;
    ev.n_proposals = 1;
    assert_int_equal(raft_step(n, &ev, &up), 0);
    assert_int_equal(up.proposed_index, 2);
    assert_int_equal(up.n_entries, 1);
    assert_int_equal(up.entries[0].index, 2);
    assert_memory_equal(up.entries[0].data, "hello", 5);
    assert_int_equal(up.n_committed, 0);
    /* only the first write is durable: index 1 commits, not 2 */
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_PERSISTED;
    ev.persist_seq = seq;
    assert_int_equal(raft_step(n, &ev, &up), 0);
    assert_int_equal(up.n_committed, 1);
    assert_int_equal(up.committed[0].index, 1);
    seq = up.persist_seq; /* the commit index changed: a new hard state */
    assert_true(seq != 0);
    ev.persist_seq = seq;
    assert_int_equal(raft_step(n, &ev, &up), 0);
    assert_int_equal(up.n_committed, 1);
    assert_int_equal(up.committed[0].index, 2);
    /* an oversized proposal and an empty batch are refused */
    {
        static uint8_t big[2 << 20];
        raft_proposal bp = {big, sizeof(big)};
        memset(&ev, 0, sizeof(ev));
        ev.type = RAFT_EVENT_PROPOSE;
        ev.proposals = &bp;
        ev.n_proposals = 1;
        assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_TOO_LARGE);
        ev.n_proposals = 0;
        assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    }
    /* a lease read of a single node is immediate once it has ticked */
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_TICK;
    assert_int_equal(raft_step(n, &ev, &up), 0);
    ev.type = RAFT_EVENT_READ;
    ev.read_id = 9;
    ev.allow_lease = true;
    assert_int_equal(raft_step(n, &ev, &up), 0);
    assert_int_equal(up.n_reads, 1);
    assert_int_equal(up.reads[0].read_id, 9);
    assert_int_equal(up.reads[0].index, 2);
    raft_node_free(n);
}

/* Pre-votes go out at once (no state change); the real vote requests and
** a granted vote wait for the persist of the new term and vote. */
static void test_persist_before_send(void **unused) {
    raft_config c1 = config3(1), c2 = config3(2);
    raft_node *n1 = NULL, *n2 = NULL;
    raft_event ev = {0};
    raft_update up;
    raft_message pre, vote, resp;
    (void)unused;
    assert_int_equal(raft_node_new(&c1, NULL, NULL, 0, &n1), 0);
    assert_int_equal(raft_node_new(&c2, NULL, NULL, 0, &n2), 0);
    ev.type = RAFT_EVENT_CAMPAIGN;
    assert_int_equal(raft_step(n1, &ev, &up), 0);
    assert_int_equal(up.role, RAFT_PRE_CANDIDATE);
    assert_int_equal(up.term, 0);
    assert_false(up.hard_state_changed);
    assert_int_equal(up.persist_seq, 0);
    assert_int_equal(up.n_messages, 2);
    assert_int_equal(up.n_messages_after_persist, 0);
    assert_int_equal(up.messages[0].type, RAFT_MSG_PRE_VOTE);
    assert_int_equal(up.messages[0].term, 1);
    pre = up.messages[0];
    assert_int_equal(pre.to, 2);
    /* node 2 grants the pre-vote without changing its own term */
    ev.type = RAFT_EVENT_MESSAGE;
    ev.message = &pre;
    assert_int_equal(raft_step(n2, &ev, &up), 0);
    assert_int_equal(up.term, 0);
    assert_int_equal(up.n_messages, 1);
    assert_int_equal(up.messages[0].type, RAFT_MSG_PRE_VOTE_RESP);
    assert_false(up.messages[0].reject);
    assert_int_equal(raft_message_clone(&up.messages[0], &resp), 0);
    /* node 1: pre-vote quorum -> candidate of term 1 -> votes after persist */
    ev.message = &resp;
    assert_int_equal(raft_step(n1, &ev, &up), 0);
    raft_message_release(&resp);
    assert_int_equal(up.role, RAFT_CANDIDATE);
    assert_int_equal(up.term, 1);
    assert_true(up.hard_state_changed);
    assert_true(up.persist_seq != 0);
    assert_int_equal(up.n_messages, 0);
    assert_int_equal(up.n_messages_after_persist, 2);
    assert_int_equal(up.messages_after_persist[0].type, RAFT_MSG_VOTE);
    assert_int_equal(raft_message_clone(&up.messages_after_persist[0], &vote), 0);
    /* node 2 grants: the answer waits for its vote to be durable */
    ev.message = &vote;
    assert_int_equal(raft_step(n2, &ev, &up), 0);
    raft_message_release(&vote);
    assert_int_equal(up.term, 1);
    assert_true(up.hard_state_changed);
    assert_int_equal(up.hard_state.vote, 1);
    assert_int_equal(up.n_messages, 0);
    assert_int_equal(up.n_messages_after_persist, 1);
    assert_int_equal(up.messages_after_persist[0].type, RAFT_MSG_VOTE_RESP);
    assert_false(up.messages_after_persist[0].reject);
    raft_node_free(n1);
    raft_node_free(n2);
}

static void test_malformed_messages(void **unused) {
    raft_config c = config3(2);
    raft_node *n = NULL;
    raft_event ev = {0};
    raft_update up;
    raft_message m;
    raft_entry e[2];
    raft_status before, after;
    (void)unused;
    assert_int_equal(raft_node_new(&c, NULL, NULL, 0, &n), 0);
    raft_node_status(n, &before);
    ev.type = RAFT_EVENT_MESSAGE;
    ev.message = &m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_APPEND;
    m.from = 9; /* unknown peer */
    m.to = 2;
    m.term = 5;
    assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    m.from = 1;
    m.to = 3; /* not for us */
    assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    m.to = 2;
    m.term = 0;
    assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    m.term = 5;
    m.type = (raft_message_type)99;
    assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    m.type = RAFT_MSG_APPEND;
    memset(e, 0, sizeof(e));
    e[0].index = 1;
    e[0].term = 5;
    e[1].index = 3; /* gap */
    e[1].term = 5;
    m.entries = e;
    m.n_entries = 2;
    assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    e[1].index = 2;
    e[1].term = 6; /* above the message term */
    assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    e[1].term = 4; /* terms going down */
    assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    e[1].term = 5;
    e[1].len = 3; /* data missing */
    assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    m.type = RAFT_MSG_HEARTBEAT; /* entries on a heartbeat */
    e[1].len = 0;
    assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    raft_node_status(n, &after);
    assert_memory_equal(&before, &after, sizeof(before));
    assert_int_equal(raft_step(n, NULL, &up), RAFT_ERR_INVALID);
    raft_node_free(n);
}

/* Out of memory at every allocation of every step of a scripted scenario:
** the step reports RAFT_ERR_NOMEM or succeeds, nothing leaks, and every
** invariant the simulator checks still holds. */
static void run_oom_scenario(rsim *s) {
    int i, k;
    rsim_step(s, 1, &(raft_event){.type = RAFT_EVENT_CAMPAIGN}, NULL);
    rsim_deliver(s, 0, 0, 100);
    for (k = 0; k < 3; k++) {
        rsim_propose(s, 1, (uint8_t)k, (uint64_t)k);
        rsim_read(s, 1, k & 1);
        for (i = 1; i <= 3; i++)
            rsim_tick(s, i);
        rsim_deliver(s, 0, 0, 100);
    }
    rsim_step(s, 1, &(raft_event){.type = RAFT_EVENT_TRANSFER, .transfer_to = 2}, NULL);
    rsim_deliver(s, 0, 0, 100);
    for (k = 0; k < 30; k++) {
        for (i = 1; i <= 3; i++)
            rsim_tick(s, i);
        rsim_deliver(s, 0, 0, 100);
    }
}

static void test_oom_every_step(void **unused) {
    rsim s;
    uint64_t total_steps, step;
    long after;
    int runs = 0, nomem = 0;
    (void)unused;
    assert_int_equal(rsim_init(&s, 3, 7, true, NULL), 0);
    run_oom_scenario(&s);
    assert_false(s.failed);
    total_steps = s.steps;
    rsim_free(&s);
    for (step = 1; step <= total_steps; step++) {
        for (after = 0; after < 4; after++) {
            assert_int_equal(rsim_init(&s, 3, 7, true, NULL), 0);
            s.oom_step = step;
            s.oom_after = after;
            run_oom_scenario(&s);
            if (s.failed)
                fail_msg("oom at step %llu after %ld: %s", (unsigned long long)step, after, s.fail_msg);
            nomem += s.oom_errors > 0;
            runs++;
            rsim_free(&s);
        }
    }
    printf("oom: %d runs over %llu steps, %d hit RAFT_ERR_NOMEM\n", runs,
           (unsigned long long)total_steps, nomem);
    assert_true(nomem > 0);
}

static void test_message_clone_oom(void **unused) {
    raft_entry e[2] = {{1, 1, RAFT_ENTRY_NORMAL, (uint8_t *)"ab", 2},
                       {1, 2, RAFT_ENTRY_NORMAL, (uint8_t *)"cd", 2}};
    raft_message m = {0}, c;
    long k;
    (void)unused;
    m.type = RAFT_MSG_APPEND;
    m.entries = e;
    m.n_entries = 2;
    for (k = 0; k < 3; k++) {
        base_alloc_fail_after(k);
        assert_int_equal(raft_message_clone(&m, &c), RAFT_ERR_NOMEM);
        base_alloc_fail_after(-1);
        assert_null(c.entries);
    }
    assert_int_equal(raft_message_clone(&m, &c), 0);
    assert_memory_equal(c.entries[1].data, "cd", 2);
    raft_message_release(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_validation),
        cmocka_unit_test(test_restart_validation),
        cmocka_unit_test(test_single_node_commits_after_persist),
        cmocka_unit_test(test_persist_before_send),
        cmocka_unit_test(test_malformed_messages),
        cmocka_unit_test(test_message_clone_oom),
        cmocka_unit_test(test_oom_every_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
