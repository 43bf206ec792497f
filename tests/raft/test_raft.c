/*
** tests/raft/test_raft.c: unit tests of the raft/ core API: configuration
** and restart validation, the persist-before-send routing of messages,
** single-node commit only after PERSISTED, malformed peer messages
** (rejected, no effect), proposal limits, and out-of-memory injected at
** every step of a scripted three-node scenario (no crash, no leak, every
** simulator invariant still holds); membership encoding, configuration
** change refusals, compaction and restart from a snapshot, and the same
** out-of-memory sweep over a membership + snapshot scenario; a group
** started at an initial term (raft_config.initial_term): no stickiness
** until a term above it, and an empty node's vote.
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
    c = config3(4); /* not a member: a joining node */
    assert_int_equal(raft_node_new(&c, NULL, NULL, 0, &n), RAFT_OK);
    raft_node_free(n);
    n = NULL;
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
    c.learners[0] = 2; /* a voter cannot also be a learner */
    assert_int_equal(raft_node_new(&c, NULL, NULL, 0, &n), RAFT_ERR_INVALID);
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

/* A group that starts at an initial point (index 10, term 5) with no leader
** ever: with initial_term 5 its nodes are in no lease, so the first
** campaign is answered at once; restored without it, a node at term 5 is
** sticky for election_ticks (the ~1.5 s a range made by a split used to
** wait for its first leader). A node with no log and no configuration (a
** replica made on demand) votes too, and its answer waits for the persist
** of its vote. Above the initial term, stickiness is back. */
static void test_initial_term(void **unused) {
    raft_config c1 = config3(1), c2 = config3(2), c3;
    raft_hard_state hs = {.term = 5, .vote = RAFT_NONE, .commit = 10};
    raft_snapshot sn;
    raft_node *n1 = NULL, *n2 = NULL, *n3 = NULL;
    raft_event ev = {0};
    raft_update up;
    raft_message pre, resp, vote, pre7;
    (void)unused;
    memset(&sn, 0, sizeof(sn));
    sn.index = 10;
    sn.term = 5;
    sn.membership.voters[0] = 1;
    sn.membership.voters[1] = 2;
    sn.membership.voters[2] = 3;
    sn.membership.n_voters = 3;
    c1.applied = c2.applied = 10;
    /* without it: sticky, the campaign is refused */
    assert_int_equal(raft_node_restore(&c1, &hs, &sn, NULL, 0, &n1), 0);
    ev.type = RAFT_EVENT_CAMPAIGN;
    assert_int_equal(raft_step(n1, &ev, &up), RAFT_ERR_BUSY);
    raft_node_free(n1);
    /* with it: pre-vote at once, granted at once */
    c1.initial_term = c2.initial_term = 5;
    assert_int_equal(raft_node_restore(&c1, &hs, &sn, NULL, 0, &n1), 0);
    assert_int_equal(raft_node_restore(&c2, &hs, &sn, NULL, 0, &n2), 0);
    assert_int_equal(raft_step(n1, &ev, &up), 0);
    assert_int_equal(up.role, RAFT_PRE_CANDIDATE);
    assert_int_equal(up.n_messages, 2);
    pre = up.messages[0];
    assert_int_equal(pre.type, RAFT_MSG_PRE_VOTE);
    assert_int_equal(pre.to, 2);
    assert_int_equal(pre.term, 6);
    assert_int_equal(pre.index, 10);
    assert_int_equal(pre.log_term, 5);
    ev.type = RAFT_EVENT_MESSAGE;
    ev.message = &pre;
    assert_int_equal(raft_step(n2, &ev, &up), 0);
    assert_int_equal(up.n_messages, 1);
    assert_int_equal(up.messages[0].type, RAFT_MSG_PRE_VOTE_RESP);
    assert_false(up.messages[0].reject);
    assert_int_equal(raft_message_clone(&up.messages[0], &resp), 0);
    ev.message = &resp;
    assert_int_equal(raft_step(n1, &ev, &up), 0);
    raft_message_release(&resp);
    assert_int_equal(up.role, RAFT_CANDIDATE);
    assert_int_equal(up.term, 6);
    assert_int_equal(up.n_messages_after_persist, 2);
    assert_int_equal(raft_message_clone(&up.messages_after_persist[1], &vote), 0);
    assert_int_equal(vote.type, RAFT_MSG_VOTE);
    assert_int_equal(vote.to, 3);
    /* node 3 has nothing: no log, no hard state, no configuration */
    raft_config_default(&c3);
    c3.id = 3;
    c3.random_seed = 7;
    assert_int_equal(raft_node_new(&c3, NULL, NULL, 0, &n3), 0);
    ev.message = &vote;
    assert_int_equal(raft_step(n3, &ev, &up), 0);
    raft_message_release(&vote);
    assert_true(up.hard_state_changed);
    assert_int_equal(up.hard_state.term, 6);
    assert_int_equal(up.hard_state.vote, 1);
    assert_true(up.persist_seq != 0);
    assert_int_equal(up.n_messages, 0); /* the grant waits for the persist */
    assert_int_equal(up.n_messages_after_persist, 1);
    assert_int_equal(up.messages_after_persist[0].type, RAFT_MSG_VOTE_RESP);
    assert_false(up.messages_after_persist[0].reject);
    assert_int_equal(raft_message_clone(&up.messages_after_persist[0], &resp), 0);
    ev.message = &resp;
    assert_int_equal(raft_step(n1, &ev, &up), 0);
    raft_message_release(&resp);
    assert_int_equal(up.role, RAFT_LEADER);
    assert_int_equal(up.term, 6);
    /* node 2 took term 6 from a heartbeat of the leader: sticky again */
    memset(&pre7, 0, sizeof(pre7));
    pre7.type = RAFT_MSG_HEARTBEAT;
    pre7.from = 1;
    pre7.to = 2;
    pre7.term = 6;
    ev.message = &pre7;
    assert_int_equal(raft_step(n2, &ev, &up), 0);
    pre7.type = RAFT_MSG_PRE_VOTE;
    pre7.from = 3;
    pre7.term = 7;
    pre7.index = 10;
    pre7.log_term = 5;
    assert_int_equal(raft_step(n2, &ev, &up), 0);
    assert_int_equal(up.n_messages + up.n_messages_after_persist, 0); /* ignored */
    raft_node_free(n1);
    raft_node_free(n2);
    raft_node_free(n3);
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
    m.from = RAFT_NONE; /* no sender (unknown peers are heard: joining members) */
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

static void test_membership_encoding(void **unused) {
    raft_membership m, d;
    uint8_t buf[RAFT_MEMBERSHIP_MAX_BYTES];
    size_t len, cut;
    (void)unused;
    memset(&m, 0, sizeof(m));
    m.voters[0] = 1;
    m.voters[1] = 0x0102030405060708ULL;
    m.n_voters = 2;
    m.learners[0] = 7;
    m.n_learners = 1;
    len = raft_membership_encode(&m, buf);
    assert_int_equal(len, 4 + 3 * 8);
    assert_int_equal(raft_membership_decode(buf, len, &d), (int)len);
    assert_memory_equal(&m, &d, sizeof(m));
    assert_true(raft_membership_is_voter(&d, 1));
    assert_true(raft_membership_is_learner(&d, 7));
    assert_false(raft_membership_is_voter(&d, 7));
    for (cut = 0; cut < len; cut++) /* every truncation is refused */
        assert_int_equal(raft_membership_decode(buf, cut, &d), RAFT_ERR_INVALID);
    buf[4 + 2 * 8] = 1; /* learner 1 is also a voter */
    memset(buf + 4 + 2 * 8 + 1, 0, 7);
    assert_int_equal(raft_membership_decode(buf, len, &d), RAFT_ERR_INVALID);
    len = raft_membership_encode(&m, buf);
    buf[2] = 200; /* too many members */
    assert_int_equal(raft_membership_decode(buf, sizeof(buf), &d), RAFT_ERR_INVALID);
    assert_int_equal(raft_membership_decode(NULL, 0, &d), RAFT_ERR_INVALID);
}

/* Elect node 1 of a manual cluster and commit its empty entry. */
static void elect1(rsim *s) {
    rsim_step(s, 1, &(raft_event){.type = RAFT_EVENT_CAMPAIGN}, NULL);
    rsim_deliver(s, 0, 0, 100);
}

static int conf(rsim *s, int id, raft_conf_change_type t, uint64_t node) {
    raft_event ev = {.type = RAFT_EVENT_CONF_CHANGE, .conf_change = t, .conf_node = node};
    return rsim_step(s, id, &ev, NULL);
}

static void test_conf_change_refusals(void **unused) {
    rsim s;
    raft_config c;
    raft_membership m;
    (void)unused;
    raft_config_default(&c);
    c.n_voters = 3;
    assert_int_equal(rsim_init(&s, 4, 3, true, &c), 0);
    assert_int_equal(conf(&s, 1, RAFT_CONF_ADD_LEARNER, 4), RAFT_ERR_NOT_LEADER);
    rsim_step(&s, 1, &(raft_event){.type = RAFT_EVENT_CAMPAIGN}, NULL);
    rsim_deliver(&s, 0, 2, 1);
    rsim_deliver(&s, 2, 0, 1);
    rsim_deliver(&s, 0, 2, 1);
    rsim_deliver(&s, 2, 0, 1);
    /* leader, but its empty entry is not committed yet: the safety fix */
    raft_node_membership(s.nodes[0].raft, &m);
    assert_int_equal(m.n_voters, 3);
    assert_int_equal(conf(&s, 1, RAFT_CONF_ADD_LEARNER, 4), RAFT_ERR_CONF_PENDING);
    rsim_deliver(&s, 0, 0, 100);
    assert_int_equal(conf(&s, 1, RAFT_CONF_REMOVE, 4), RAFT_ERR_INVALID);  /* not a member */
    assert_int_equal(conf(&s, 1, RAFT_CONF_PROMOTE, 2), RAFT_ERR_INVALID); /* not a learner */
    assert_int_equal(conf(&s, 1, RAFT_CONF_ADD_VOTER, 2), RAFT_ERR_INVALID);
    assert_int_equal(conf(&s, 1, RAFT_CONF_ADD_LEARNER, RAFT_NONE), RAFT_ERR_INVALID);
    assert_int_equal(conf(&s, 1, (raft_conf_change_type)42, 4), RAFT_ERR_INVALID);
    assert_int_equal(conf(&s, 1, RAFT_CONF_ADD_LEARNER, 4), 0);
    assert_int_equal(conf(&s, 1, RAFT_CONF_REMOVE, 3), RAFT_ERR_CONF_PENDING);
    rsim_deliver(&s, 0, 0, 100);
    assert_int_equal(conf(&s, 1, RAFT_CONF_PROMOTE, 4), 0);
    rsim_deliver(&s, 0, 0, 100);
    assert_int_equal(conf(&s, 1, RAFT_CONF_REMOVE, 3), 0);
    rsim_deliver(&s, 0, 0, 100);
    assert_int_equal(conf(&s, 1, RAFT_CONF_REMOVE, 2), 0);
    rsim_deliver(&s, 0, 0, 100);
    assert_int_equal(conf(&s, 1, RAFT_CONF_REMOVE, 4), 0);
    rsim_deliver(&s, 0, 0, 100);
    raft_node_membership(s.nodes[0].raft, &m);
    assert_int_equal(m.n_voters, 1);
    assert_int_equal(m.voters[0], 1);
    assert_int_equal(conf(&s, 1, RAFT_CONF_REMOVE, 1), RAFT_ERR_INVALID); /* the last voter */
    /* a group of one still commits */
    assert_int_equal(rsim_propose(&s, 1, 1, 5), 0);
    assert_int_equal(s.nodes[0].applied, 7);
    assert_false(s.failed);
    rsim_free(&s);
}

static void test_compact_and_restore(void **unused) {
    rsim s;
    raft_snapshot sn;
    raft_status st;
    raft_event ev = {.type = RAFT_EVENT_COMPACT};
    raft_config c = config3(1);
    raft_hard_state hs = {.term = 1, .vote = 1, .commit = 3};
    raft_entry e[2];
    raft_node *n = NULL;
    uint8_t data[4] = {1, 2, 3, 4};
    (void)unused;
    assert_int_equal(rsim_init(&s, 3, 5, true, NULL), 0);
    elect1(&s);
    rsim_propose(&s, 1, 1, 1);
    rsim_deliver(&s, 0, 0, 100);
    ev.compact_index = 99; /* above applied */
    assert_int_equal(rsim_step(&s, 1, &ev, NULL), RAFT_ERR_INVALID);
    ev.compact_index = 2;
    ev.snapshot_len = 4; /* no data */
    assert_int_equal(rsim_step(&s, 1, &ev, NULL), RAFT_ERR_INVALID);
    assert_int_equal(rsim_compact(&s, 1), 0);
    raft_node_status(s.nodes[0].raft, &st);
    assert_int_equal(st.snapshot_index, 2);
    assert_int_equal(st.first_index, 3);
    assert_int_equal(st.last_index, 2);
    assert_null(raft_node_entry_at(s.nodes[0].raft, 2));
    raft_node_snapshot(s.nodes[0].raft, &sn);
    assert_int_equal(sn.index, 2);
    assert_int_equal(sn.term, 1);
    assert_int_equal(sn.membership.n_voters, 3);
    /* compacting again at the same index is a no-op */
    ev.compact_index = 2;
    ev.snapshot_len = 0;
    assert_int_equal(rsim_step(&s, 1, &ev, NULL), 0);
    /* a restart from snapshot + suffix replicates on */
    rsim_crash(&s, 1, false);
    assert_int_equal(rsim_restart(&s, 1), 0);
    raft_node_status(s.nodes[0].raft, &st);
    assert_int_equal(st.snapshot_index, 2);
    assert_int_equal(st.commit, 2);
    assert_int_equal(s.nodes[0].applied, 2);
    assert_false(s.failed);
    rsim_free(&s);

    /* restore validation */
    memset(&sn, 0, sizeof(sn));
    sn.index = 2;
    sn.term = 1;
    sn.membership.voters[0] = 1;
    sn.membership.n_voters = 1;
    sn.data = data;
    sn.len = sizeof(data);
    memset(e, 0, sizeof(e));
    e[0].index = 3;
    e[0].term = 1;
    e[1].index = 4;
    e[1].term = 1;
    assert_int_equal(raft_node_restore(&c, &hs, &sn, e, 2, &n), 0);
    raft_node_status(n, &st);
    assert_int_equal(st.first_index, 3);
    assert_int_equal(st.last_index, 4);
    assert_int_equal(st.commit, 3);
    assert_int_equal(st.applied, 2);
    assert_true(st.voter);
    raft_node_snapshot(n, &sn);
    assert_int_equal(sn.len, 4);
    assert_memory_equal(sn.data, data, 4);
    raft_node_free(n);
    n = NULL;
    sn.data = data;
    e[0].index = 4; /* a gap after the snapshot */
    assert_int_equal(raft_node_restore(&c, &hs, &sn, e, 1, &n), RAFT_ERR_INVALID);
    e[0].index = 3;
    sn.term = 2; /* above the durable term */
    assert_int_equal(raft_node_restore(&c, &hs, &sn, e, 1, &n), RAFT_ERR_INVALID);
    sn.term = 1;
    assert_int_equal(raft_node_restore(&c, NULL, &sn, NULL, 0, &n), RAFT_ERR_INVALID);
    sn.membership.voters[1] = 1; /* duplicate */
    sn.membership.n_voters = 2;
    assert_int_equal(raft_node_restore(&c, &hs, &sn, e, 1, &n), RAFT_ERR_INVALID);
    assert_null(n);
}

static void test_malformed_snapshot_messages(void **unused) {
    raft_config c = config3(2);
    raft_node *n = NULL;
    raft_event ev = {.type = RAFT_EVENT_MESSAGE};
    raft_update up;
    raft_message m;
    uint8_t junk[8] = {0};
    (void)unused;
    assert_int_equal(raft_node_new(&c, NULL, NULL, 0, &n), 0);
    ev.message = &m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_SNAPSHOT;
    m.from = 1;
    m.to = 2;
    m.term = 1;
    m.index = 5;
    m.log_term = 1;
    m.len = 8; /* no data */
    assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    m.data = junk;
    m.log_term = 2; /* above the message term */
    assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    m.log_term = 1;
    m.seq = (uint64_t)1 << 40; /* absurd offset */
    assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    m.seq = 0;
    m.type = RAFT_MSG_APPEND; /* data on a non-snapshot message */
    assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    /* a complete stream whose header is garbage: refused, nothing installed */
    m.type = RAFT_MSG_SNAPSHOT;
    m.force = true;
    assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    assert_null(up.snapshot);
    raft_node_free(n);
}

/* snapshot_check for the lazy test: refuses while refuse_left > 0. */
static int refuse_left, checks_seen;
static bool lazy_check(void *ctx, uint64_t index, const uint8_t *data, size_t len) {
    (void)ctx;
    (void)index;
    checks_seen++;
    if (len != 8 * 8 || data == NULL) /* RSIM_SNAP_BYTES: the map */
        return false;
    return refuse_left-- <= 0;
}

/* Lazy snapshots: COMPACT keeps no bytes; a learner behind first_index makes
** the leader ask (snapshot_wanted); RAFT_EVENT_SNAPSHOT at applied is
** streamed; a snapshot the check refuses is not installed and comes again. */
static void test_lazy_snapshots(void **unused) {
    rsim s;
    raft_config c;
    raft_status st;
    raft_snapshot sn;
    raft_event ev;
    raft_node *n = NULL;
    raft_update up;
    uint8_t data[4] = {1, 2, 3, 4};
    int k, i;
    (void)unused;
    raft_config_default(&c);
    c.n_voters = 3;
    c.snapshot_chunk_bytes = 16;
    c.snapshot_resend_ticks = 3;
    c.lazy_snapshots = true;
    c.snapshot_check = lazy_check;
    assert_int_equal(rsim_init(&s, 4, 5, true, &c), 0);
    elect1(&s);
    for (k = 0; k < 4; k++)
        rsim_propose(&s, 1, (uint8_t)k, (uint64_t)k + 10);
    rsim_deliver(&s, 0, 0, 100);
    assert_int_equal(rsim_compact(&s, 1), 0);
    raft_node_snapshot(s.nodes[0].raft, &sn);
    assert_true(sn.index > 0);
    assert_null(sn.data); /* no bytes kept */
    assert_int_equal(sn.len, 0);
    /* out of range: above applied, or below the snapshot index */
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_SNAPSHOT;
    ev.snapshot_index = s.nodes[0].applied + 1;
    ev.snapshot_data = data;
    ev.snapshot_len = sizeof(data);
    assert_int_equal(rsim_step(&s, 1, &ev, NULL), RAFT_ERR_INVALID);
    rsim_propose(&s, 1, 7, 77);
    rsim_deliver(&s, 0, 0, 100);
    ev.snapshot_index = sn.index - 1;
    assert_int_equal(rsim_step(&s, 1, &ev, NULL), RAFT_ERR_INVALID);
    ev.snapshot_index = 0;
    assert_int_equal(rsim_step(&s, 1, &ev, NULL), RAFT_ERR_INVALID);
    /* a learner: probed, behind first_index, the leader asks */
    assert_false(s.nodes[0].snap_wanted);
    assert_int_equal(conf(&s, 1, RAFT_CONF_ADD_LEARNER, 4), 0);
    rsim_deliver(&s, 0, 0, 100);
    assert_true(s.nodes[0].snap_wanted);
    assert_int_equal(s.stat_installs, 0);
    /* first stream refused by the receiver's check: nothing installed */
    refuse_left = 1;
    checks_seen = 0;
    assert_int_equal(rsim_serve_snapshot(&s, 1), 0);
    rsim_deliver(&s, 0, 0, 100);
    assert_int_equal(checks_seen, 1);
    assert_int_equal(s.stat_installs, 0);
    assert_int_equal(s.nodes[3].applied, 0);
    /* the leader resends after its timeout; the learner starts over */
    for (k = 0; k < 10 && s.stat_installs == 0; k++) {
        for (i = 1; i <= 4; i++)
            rsim_tick(&s, i);
        rsim_deliver(&s, 0, 0, 100);
        if (s.nodes[0].snap_wanted)
            rsim_serve_snapshot(&s, 1);
    }
    assert_int_equal(s.stat_installs, 1);
    assert_int_equal(checks_seen, 2);
    for (k = 0; k < 5; k++) {
        for (i = 1; i <= 4; i++)
            rsim_tick(&s, i);
        rsim_deliver(&s, 0, 0, 100);
    }
    raft_node_status(s.nodes[3].raft, &st);
    assert_int_equal(s.nodes[3].applied, s.nodes[0].applied);
    assert_memory_equal(s.nodes[3].kv, s.nodes[0].kv, sizeof(s.nodes[0].kv));
    assert_int_equal(conf(&s, 1, RAFT_CONF_PROMOTE, 4), 0);
    rsim_deliver(&s, 0, 0, 100);
    assert_false(s.failed);
    rsim_free(&s);

    /* without lazy_snapshots the event is refused */
    c = config3(1);
    assert_int_equal(raft_node_new(&c, NULL, NULL, 0, &n), 0);
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_SNAPSHOT;
    ev.snapshot_index = 1;
    assert_int_equal(raft_step(n, &ev, &up), RAFT_ERR_INVALID);
    assert_false(up.snapshot_wanted);
    raft_node_free(n);
}

/* Membership and snapshots under out-of-memory at every step. */
static void run_oom_membership_scenario(rsim *s) {
    int i, k;
    elect1(s);
    for (k = 0; k < 3; k++)
        rsim_propose(s, 1, (uint8_t)k, (uint64_t)k);
    rsim_deliver(s, 0, 0, 100);
    rsim_compact(s, 1);
    conf(s, 1, RAFT_CONF_ADD_LEARNER, 4);
    rsim_deliver(s, 0, 0, 100);
    if (s->nodes[0].snap_wanted)
        rsim_serve_snapshot(s, 1);
    rsim_deliver(s, 0, 0, 100);
    conf(s, 1, RAFT_CONF_PROMOTE, 4);
    rsim_deliver(s, 0, 0, 100);
    conf(s, 1, RAFT_CONF_REMOVE, 1);
    rsim_deliver(s, 0, 0, 100);
    for (k = 0; k < 30; k++) {
        for (i = 1; i <= 4; i++) {
            rsim_tick(s, i);
            if (s->nodes[i - 1].snap_wanted)
                rsim_serve_snapshot(s, i);
        }
        rsim_deliver(s, 0, 0, 100);
    }
}

static void test_oom_membership(void **unused) {
    rsim s;
    raft_config c;
    uint64_t total_steps, step;
    long after;
    int nomem = 0;
    raft_config_default(&c);
    c.n_voters = 3;
    c.snapshot_chunk_bytes = 16;
    c.lazy_snapshots = *(bool *)*unused; /* the same scenario, both ways */
    assert_int_equal(rsim_init(&s, 4, 9, true, &c), 0);
    run_oom_membership_scenario(&s);
    assert_false(s.failed);
    assert_true(s.stat_installs > 0);
    assert_true(c.lazy_snapshots == (s.stat_lazy_snapshots > 0));
    total_steps = s.steps;
    rsim_free(&s);
    for (step = 1; step <= total_steps; step++) {
        for (after = 0; after < 3; after++) {
            assert_int_equal(rsim_init(&s, 4, 9, true, &c), 0);
            s.oom_step = step;
            s.oom_after = after;
            run_oom_membership_scenario(&s);
            if (s.failed)
                fail_msg("oom at step %llu after %ld: %s", (unsigned long long)step, after, s.fail_msg);
            nomem += s.oom_errors > 0;
            rsim_free(&s);
        }
    }
    assert_true(nomem > 0);
}

int main(void) {
    static bool eager = false, lazy = true;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_membership_encoding),
        cmocka_unit_test(test_conf_change_refusals),
        cmocka_unit_test(test_compact_and_restore),
        cmocka_unit_test(test_malformed_snapshot_messages),
        cmocka_unit_test_prestate(test_oom_membership, &eager),
        cmocka_unit_test_prestate(test_oom_membership, &lazy),
        cmocka_unit_test(test_lazy_snapshots),
        cmocka_unit_test(test_config_validation),
        cmocka_unit_test(test_restart_validation),
        cmocka_unit_test(test_single_node_commits_after_persist),
        cmocka_unit_test(test_persist_before_send),
        cmocka_unit_test(test_initial_term),
        cmocka_unit_test(test_malformed_messages),
        cmocka_unit_test(test_message_clone_oom),
        cmocka_unit_test(test_oom_every_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
