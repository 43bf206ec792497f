/*
** tests/raft/test_raft_datadriven.c: runs the .txt files of tests/raft/testdata/ against a
** manual-mode rsim cluster (rsim.h): messages wait in a FIFO queue until a
** command delivers them, writes are synced at once (or on command), and every delivery,
** role change, crash and read result is printed. Commands:
**
**   cluster n=3 [election=10] [heartbeat=1] [drift=2] [inflight=8]
**           [max-entries=64] [seed=1] [sync=manual] [voters=K]
**           [chunk=B] [resend=T]
**                                           a fresh cluster, ids 1..n; writes
**                                           are synced at once unless
**                                           sync=manual; voters=K: only 1..K
**                                           are bootstrap voters, the rest
**                                           spares; chunk: snapshot chunk
**                                           bytes; resend: its resend ticks
**   conf ID add-learner|promote|add-voter|remove NODE
**                                           membership change at ID
**   compact ID                              snapshot ID's map at its applied
**                                           index and compact its log
**   members ID                              config in effect and snapshot
**   campaign ID                             RAFT_EVENT_CAMPAIGN on ID
**   tick [ID... | all] [n=K] [stabilize]    K ticks on each (default all, 1),
**                                           stabilizing after each round
** Any command takes `quiet`: deliveries and drops are left out of its output.
**   stabilize [rounds=100]                  deliver until the queue is empty
**   deliver [from=ID] [to=ID] [rounds=1]    deliver matching queued messages
**   drop [from=ID] [to=ID]                  drop matching queued messages
**   propose ID [key=K] [value=V]            a put on the key-value map
**   read ID [lease]                         a read (lease allowed or not)
**   transfer ID TO                          leadership transfer
**   partition A.. | B.. [| C..]             cut links between groups
**   block FROM TO                           cut one direction only
**   heal                                    restore every link
**   crash ID / restart ID                   lose / recover volatile state
**   sync ID                                 with `cluster sync=manual`:
**                                           fsync ID's queued writes, then
**                                           release its held messages
**   status [ID...]                          one line per node
**   log ID                                  index/term of each entry
** Every check of the simulator runs after every step here too.
** MERIDIAN_REWRITE=1 rewrites the expected outputs (review the diff!).
*/
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rsim.h"
#include "tests/lib/datadriven.h"

#ifndef RAFT_TESTDATA_DIR
#error "RAFT_TESTDATA_DIR must be defined"
#endif

typedef struct dd_state {
    rsim sim;
    bool have;
    base_buf trace;
} dd_state;

static int node_arg(const dd_state *st, const char *tok) {
    long id = strtol(tok, NULL, 10);
    return id >= 1 && id <= st->sim.n ? (int)id : 0;
}

static void print_status(dd_state *st, int id, base_buf *out) {
    rsim_node *nd = &st->sim.nodes[id - 1];
    raft_status s;
    if (!nd->up) {
        base_buf_printf(out, "%d: down\n", id);
        return;
    }
    raft_node_status(nd->raft, &s);
    base_buf_printf(out, "%d: %s term=%llu vote=%llu leader=%llu commit=%llu applied=%llu last=%llu/%llu%s\n",
                    id, raft_role_name(s.role), (unsigned long long)s.term,
                    (unsigned long long)s.vote, (unsigned long long)s.leader,
                    (unsigned long long)s.commit, (unsigned long long)s.applied,
                    (unsigned long long)s.last_index, (unsigned long long)s.last_term,
                    s.role == RAFT_LEADER ? (s.lease_valid ? " lease=valid" : " lease=none") : "");
}

static void print_rc(int rc, const raft_update *up, base_buf *out) {
    if (rc == RAFT_ERR_NOT_LEADER || rc == RAFT_ERR_TRANSFERRING)
        base_buf_printf(out, "error: %s (hint %llu)\n", raft_strerror(rc),
                        (unsigned long long)up->leader_hint);
    else if (rc != 0)
        base_buf_printf(out, "error: %s\n", raft_strerror(rc));
}

static int run_case(void *ctx, const dd_case *c, base_buf *out) {
    dd_state *st = ctx;
    rsim *s = &st->sim;
    int i, rc = 0;
    raft_update up;
    raft_event ev;

    base_buf_reset(&st->trace);
    if (strcmp(c->cmd, "cluster") == 0) {
        raft_config cfg;
        if (st->have)
            rsim_free(s);
        raft_config_default(&cfg);
        cfg.election_ticks = (int)dd_arg_int(c, "election", 10);
        cfg.heartbeat_ticks = (int)dd_arg_int(c, "heartbeat", 1);
        cfg.lease_drift_ticks = (int)dd_arg_int(c, "drift", 2);
        cfg.max_inflight_msgs = (int)dd_arg_int(c, "inflight", 8);
        cfg.max_msg_entries = (size_t)dd_arg_int(c, "max-entries", 64);
        cfg.n_voters = (size_t)dd_arg_int(c, "voters", 0);
        cfg.snapshot_chunk_bytes = (size_t)dd_arg_int(c, "chunk", 0);
        cfg.snapshot_resend_ticks = (int)dd_arg_int(c, "resend", 0);
        rc = rsim_init(s, (int)dd_arg_int(c, "n", 3), (uint64_t)dd_arg_int(c, "seed", 1), true, &cfg);
        st->have = rc == 0;
        if (rc != 0) {
            base_buf_printf(out, "error: %s\n", raft_strerror(rc));
            return 1;
        }
        s->trace = &st->trace;
        s->manual_sync = dd_arg_find(c, "sync") != NULL &&
                         strcmp(dd_arg_find(c, "sync")->vals[0], "manual") == 0;
        base_buf_printf(out, "ok\n");
        return 0;
    }
    if (!st->have) {
        base_buf_printf(out, "error: no cluster\n");
        return 1;
    }
    memset(&ev, 0, sizeof(ev));
    memset(&up, 0, sizeof(up));
    if (strcmp(c->cmd, "campaign") == 0 && c->n_args >= 1) {
        ev.type = RAFT_EVENT_CAMPAIGN;
        rc = rsim_step(s, node_arg(st, c->args[0].key), &ev, &up);
        print_rc(rc, &up, &st->trace);
    } else if (strcmp(c->cmd, "tick") == 0) {
        long k, times = dd_arg_int(c, "n", 1);
        int ids[RSIM_MAX_NODES], n_ids = 0;
        for (i = 0; i < c->n_args; i++)
            if (c->args[i].n_vals == 0 && node_arg(st, c->args[i].key) != 0 && n_ids < RSIM_MAX_NODES)
                ids[n_ids++] = node_arg(st, c->args[i].key);
        if (n_ids == 0)
            for (i = 0; i < s->n; i++)
                ids[n_ids++] = i + 1;
        for (k = 0; k < times && k < 10000; k++) {
            for (i = 0; i < n_ids; i++)
                if (ids[i] != 0 && s->nodes[ids[i] - 1].up)
                    rsim_tick(s, ids[i]);
            if (dd_has(c, "stabilize"))
                rsim_deliver(s, 0, 0, 100);
        }
    } else if (strcmp(c->cmd, "stabilize") == 0) {
        rsim_deliver(s, 0, 0, (int)dd_arg_int(c, "rounds", 100));
        if (s->n_net > 0)
            base_buf_printf(&st->trace, "  (%zu messages still queued)\n", s->n_net);
    } else if (strcmp(c->cmd, "deliver") == 0) {
        rsim_deliver(s, (int)dd_arg_int(c, "from", 0), (int)dd_arg_int(c, "to", 0),
                     (int)dd_arg_int(c, "rounds", 1));
    } else if (strcmp(c->cmd, "drop") == 0) {
        int n = rsim_drop(s, (int)dd_arg_int(c, "from", 0), (int)dd_arg_int(c, "to", 0));
        base_buf_printf(&st->trace, "dropped %d\n", n);
    } else if (strcmp(c->cmd, "propose") == 0 && c->n_args >= 1) {
        uint8_t buf[17] = {0};
        uint64_t value = (uint64_t)dd_arg_int(c, "value", 1);
        raft_proposal p = {buf, sizeof(buf)};
        buf[0] = (uint8_t)dd_arg_int(c, "key", 0);
        memcpy(buf + 1, &value, 8);
        ev.type = RAFT_EVENT_PROPOSE;
        ev.proposals = &p;
        ev.n_proposals = 1;
        rc = rsim_step(s, node_arg(st, c->args[0].key), &ev, &up);
        if (rc == 0)
            base_buf_printf(&st->trace, "proposed index=%llu term=%llu\n",
                            (unsigned long long)up.proposed_index, (unsigned long long)up.proposed_term);
        print_rc(rc, &up, &st->trace);
    } else if (strcmp(c->cmd, "read") == 0 && c->n_args >= 1) {
        uint64_t rid = s->next_read_id;
        s->read_floor[rid % RSIM_MAX_READS] = s->n_committed;
        s->next_read_id++;
        ev.type = RAFT_EVENT_READ;
        ev.read_id = rid;
        ev.allow_lease = dd_has(c, "lease");
        rc = rsim_step(s, node_arg(st, c->args[0].key), &ev, &up);
        if (rc == 0 && up.n_reads == 0)
            base_buf_printf(&st->trace, "read %llu pending (read-index round)\n", (unsigned long long)rid);
        print_rc(rc, &up, &st->trace);
    } else if (strcmp(c->cmd, "transfer") == 0 && c->n_args >= 2) {
        ev.type = RAFT_EVENT_TRANSFER;
        ev.transfer_to = (uint64_t)node_arg(st, c->args[1].key);
        rc = rsim_step(s, node_arg(st, c->args[0].key), &ev, &up);
        print_rc(rc, &up, &st->trace);
    } else if (strcmp(c->cmd, "partition") == 0) {
        int group[RSIM_MAX_NODES], g = 0, j;
        for (i = 0; i < RSIM_MAX_NODES; i++)
            group[i] = -1;
        for (i = 0; i < c->n_args; i++) {
            if (strcmp(c->args[i].key, "|") == 0)
                g++;
            else if (node_arg(st, c->args[i].key))
                group[node_arg(st, c->args[i].key) - 1] = g;
        }
        rsim_heal(s);
        for (i = 0; i < s->n; i++)
            for (j = 0; j < s->n; j++)
                if (group[i] != group[j])
                    s->blocked[i][j] = true;
    } else if (strcmp(c->cmd, "block") == 0 && c->n_args >= 2) {
        int a = node_arg(st, c->args[0].key), b = node_arg(st, c->args[1].key);
        if (a && b)
            s->blocked[a - 1][b - 1] = true;
    } else if (strcmp(c->cmd, "heal") == 0) {
        rsim_heal(s);
    } else if (strcmp(c->cmd, "sync") == 0 && c->n_args >= 1) {
        int id = node_arg(st, c->args[0].key);
        if (id != 0) {
            base_buf_printf(&st->trace, "%d: synced %zu writes, releasing %zu messages\n", id,
                            s->nodes[id - 1].n_pending, s->nodes[id - 1].n_held);
            rsim_sync(s, id);
        }
    } else if (strcmp(c->cmd, "crash") == 0 && c->n_args >= 1) {
        rsim_crash(s, node_arg(st, c->args[0].key), false);
    } else if (strcmp(c->cmd, "restart") == 0 && c->n_args >= 1) {
        rsim_restart(s, node_arg(st, c->args[0].key));
    } else if (strcmp(c->cmd, "conf") == 0 && c->n_args >= 3) {
        const char *op = c->args[1].key;
        raft_conf_change_type t = strcmp(op, "add-learner") == 0 ? RAFT_CONF_ADD_LEARNER
                                  : strcmp(op, "promote") == 0   ? RAFT_CONF_PROMOTE
                                  : strcmp(op, "add-voter") == 0 ? RAFT_CONF_ADD_VOTER
                                  : strcmp(op, "remove") == 0    ? RAFT_CONF_REMOVE
                                                                 : (raft_conf_change_type)0;
        ev.type = RAFT_EVENT_CONF_CHANGE;
        ev.conf_change = t;
        ev.conf_node = (uint64_t)node_arg(st, c->args[2].key);
        rc = rsim_step(s, node_arg(st, c->args[0].key), &ev, &up);
        if (rc == 0)
            base_buf_printf(&st->trace, "proposed config index=%llu term=%llu\n",
                            (unsigned long long)up.proposed_index, (unsigned long long)up.proposed_term);
        print_rc(rc, &up, &st->trace);
    } else if (strcmp(c->cmd, "compact") == 0 && c->n_args >= 1) {
        rc = rsim_compact(s, node_arg(st, c->args[0].key));
        print_rc(rc, &up, &st->trace);
    } else if (strcmp(c->cmd, "members") == 0 && c->n_args >= 1) {
        int id = node_arg(st, c->args[0].key);
        if (id == 0 || !s->nodes[id - 1].up) {
            base_buf_printf(&st->trace, "down\n");
        } else {
            raft_membership m;
            raft_status rs;
            size_t k;
            raft_node_membership(s->nodes[id - 1].raft, &m);
            raft_node_status(s->nodes[id - 1].raft, &rs);
            base_buf_printf(&st->trace, "%d: voters=[", id);
            for (k = 0; k < m.n_voters; k++)
                base_buf_printf(&st->trace, "%s%llu", k ? " " : "", (unsigned long long)m.voters[k]);
            base_buf_printf(&st->trace, "] learners=[");
            for (k = 0; k < m.n_learners; k++)
                base_buf_printf(&st->trace, "%s%llu", k ? " " : "", (unsigned long long)m.learners[k]);
            base_buf_printf(&st->trace, "] conf_index=%llu snapshot=%llu/%llu first=%llu\n",
                            (unsigned long long)rs.conf_index, (unsigned long long)rs.snapshot_index,
                            (unsigned long long)rs.snapshot_term, (unsigned long long)rs.first_index);
        }
    } else if (strcmp(c->cmd, "min-match") == 0 && c->n_args >= 1) {
        /* the leader's compaction bound: every member has the log up to it */
        int id = node_arg(st, c->args[0].key);
        uint64_t m = 0;
        if (id == 0 || !s->nodes[id - 1].up)
            base_buf_printf(&st->trace, "down\n");
        else if (raft_node_min_match(s->nodes[id - 1].raft, &m) != RAFT_OK)
            base_buf_printf(&st->trace, "%d: not leader (min_match=%llu)\n", id, (unsigned long long)m);
        else
            base_buf_printf(&st->trace, "%d: min_match=%llu\n", id, (unsigned long long)m);
    } else if (strcmp(c->cmd, "status") == 0) {
        int shown = 0;
        for (i = 0; i < c->n_args; i++)
            if (node_arg(st, c->args[i].key)) {
                print_status(st, node_arg(st, c->args[i].key), &st->trace);
                shown++;
            }
        for (i = 0; shown == 0 && i < s->n; i++)
            print_status(st, i + 1, &st->trace);
    } else if (strcmp(c->cmd, "log") == 0 && c->n_args >= 1) {
        int id = node_arg(st, c->args[0].key);
        raft_status rs;
        uint64_t k;
        if (id == 0 || !s->nodes[id - 1].up) {
            base_buf_printf(&st->trace, "down\n");
        } else {
            raft_node_status(s->nodes[id - 1].raft, &rs);
            base_buf_printf(&st->trace, "%d:", id);
            if (rs.snapshot_index > 0)
                base_buf_printf(&st->trace, " (snapshot %llu/%llu)", (unsigned long long)rs.snapshot_index,
                                (unsigned long long)rs.snapshot_term);
            for (k = rs.first_index; k <= rs.last_index; k++) {
                const raft_entry *e = raft_node_entry_at(s->nodes[id - 1].raft, k);
                base_buf_printf(&st->trace, " %llu/%llu%s", (unsigned long long)k,
                                (unsigned long long)e->term, e->type == RAFT_ENTRY_CONFIG ? "c" : "");
            }
            base_buf_printf(&st->trace, "%s\n", rs.last_index == 0 ? " (empty)" : "");
        }
    } else {
        base_buf_printf(out, "error: unknown command %s\n", c->cmd);
        return 1;
    }
    if (dd_has(c, "quiet")) {
        /* keep what changed (role changes, reads, errors), not each delivery */
        size_t p = 0;
        while (p < st->trace.len) {
            const char *line = (const char *)st->trace.data + p;
            const char *nl = memchr(line, '\n', st->trace.len - p);
            size_t n = nl ? (size_t)(nl - line) + 1 : st->trace.len - p;
            bool delivery = (n > 0 && line[0] >= '0' && line[0] <= '9' &&
                             memchr(line, '>', n) != NULL && memchr(line, '-', n) != NULL) ||
                            (n > 10 && memcmp(line, "  dropped ", 10) == 0);
            if (!delivery)
                base_buf_append(out, line, n);
            p += n;
        }
    } else {
        base_buf_append(out, st->trace.data, st->trace.len);
    }
    if (out->len == 0)
        base_buf_printf(out, "ok\n");
    if (s->failed) {
        base_buf_printf(out, "CHECK FAILED: %s\n", s->fail_msg);
        return 1;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_testdata(void **unused) {
    DIR *d = opendir(RAFT_TESTDATA_DIR);
    struct dirent *de;
    char *names[256];
    int n = 0, i, failures = 0;
    (void)unused;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL && n < 256) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".txt") == 0)
            names[n++] = base_strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(char *), cmp_str);
    assert_true(n > 0);
    for (i = 0; i < n; i++) {
        char path[1024];
        dd_state st;
        int f;
        memset(&st, 0, sizeof(st));
        snprintf(path, sizeof(path), "%s/%s", RAFT_TESTDATA_DIR, names[i]);
        f = dd_run_file(path, run_case, &st);
        printf("%s: %s\n", names[i], f == 0 ? "ok" : "FAILED");
        if (f != 0)
            failures++;
        if (st.have)
            rsim_free(&st.sim);
        base_buf_free(&st.trace);
        base_free(names[i]);
    }
    assert_int_equal(failures, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_testdata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
