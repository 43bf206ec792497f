/*
** tests/e2e/e2e_cluster.h: a cluster of real `meridian` processes on
** 127.0.0.1 for the e2e tests (header-only; each test binary includes it
** once, after defining NODES, the nodes `meridian init` makes; one more slot
** is free for a joining node).
**
** cluster_group_setup starts NODES `meridian start --listen-addr P --join
** P1,..,PN --insecure` processes (SQL shares the RPC port), runs `meridian
** init --host P1` and waits until SQL works through every node;
** cluster_group_teardown stops them (SIGTERM, exit status 0 wanted). Every
** process dies with the test (mtest: PR_SET_PDEATHSIG and atexit); every
** wait is bounded (CLUSTER_*_MS).
*/
#ifndef MERIDIAN_E2E_CLUSTER_H
#define MERIDIAN_E2E_CLUSTER_H

#define _GNU_SOURCE
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "e2e_util.h"

#ifndef NODES
#error "define NODES before including e2e_cluster.h"
#endif
#define CLUSTER_READY_MS (60 * 1000)     /* SQL through a node after init */
#define CLUSTER_STATUS_MS (30 * 1000)    /* node status shows what we wait for */
#define CLUSTER_CMD_MS (60 * 1000)       /* one meridian init / node status */

static mtest_node nodes[NODES + 1];
static int ports[NODES + 1];
static char join_list[256];

static int64_t now_ms(void) { return base_monotonic_ns() / 1000000; }

static void pause_ms(int ms) { /* a bounded polling step, not a wait for an event */
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* n ports free on 127.0.0.1 now (held together so they differ). */
static int free_ports(int *out, int n) {
    int fds[8];
    if (n > 8) return -1;
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0)
            return -1;
        out[i] = ntohs(a.sin_port);
    }
    for (int i = 0; i < n; i++) close(fds[i]);
    return 0;
}

/* More `meridian start` flags for every node a test starts here, as a
** comma-separated list of string literals ending in a comma (e.g.
** `"--dead-after", "3s",`); none by default. */
#ifndef CLUSTER_EXTRA_ARGS
#define CLUSTER_EXTRA_ARGS
#endif

static int start_node(int i, const char *store) {
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", ports[i]);
    const char *args[] = {"--listen-addr", listen, "--join", join_list, "--insecure",
                          CLUSTER_EXTRA_ARGS NULL};
    return mtest_node_start_raw(&nodes[i], store, args);
}

/* meridian <cmd...> --host 127.0.0.1:port; returns the exit status. */
static int run_tool(const char *cmd, const char *sub, int port, char **out, char **err) {
    char host[32];
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    const char *argv[8];
    int a = 0;
    argv[a++] = mtest_meridian_bin();
    argv[a++] = cmd;
    if (sub != NULL) argv[a++] = sub;
    argv[a++] = "--host";
    argv[a++] = host;
    argv[a] = NULL;
    return mtest_run(argv, NULL, CLUSTER_CMD_MS, out, err);
}

typedef struct status_row {
    unsigned long id;
    char state[32];
    int replicas, leases;
} status_row;

/* `meridian node status` through node i, parsed. Returns the row count or
** -1 when the command failed. */
static int node_status(int port, status_row *rows, int max) {
    char *out = NULL, *err = NULL;
    int st = run_tool("node", "status", port, &out, &err);
    int n = -1;
    if (st == 0) {
        n = 0;
        char *save = NULL;
        for (char *line = strtok_r(out, "\n", &save); line != NULL && n < max;
             line = strtok_r(NULL, "\n", &save)) {
            char *tok[16];
            int k = 0;
            char *s2 = NULL;
            for (char *t = strtok_r(line, " ", &s2); t != NULL && k < 16; t = strtok_r(NULL, " ", &s2))
                tok[k++] = t;
            if (k < 6 || tok[0][0] < '0' || tok[0][0] > '9') continue;
            rows[n].id = strtoul(tok[0], NULL, 10);
            snprintf(rows[n].state, sizeof rows[n].state, "%s", tok[3]);
            rows[n].replicas = atoi(tok[k - 2]);
            rows[n].leases = atoi(tok[k - 1]);
            n++;
        }
    } else {
        fprintf(stderr, "node status via %d: exit %d: %s", port, st, err ? err : "");
    }
    base_free(out);
    base_free(err);
    return n;
}

static int cluster_group_setup(void **state) {
    (void)state;
    if (free_ports(ports, NODES + 1) != 0) return -1;
    size_t pos = 0;
    for (int i = 0; i < NODES; i++)
        pos += (size_t)snprintf(join_list + pos, sizeof join_list - pos, "%s127.0.0.1:%d",
                                i ? "," : "", ports[i]);
    for (int i = 0; i < NODES; i++) {
        if (start_node(i, NULL) != 0) return -1;
    }
    char *out = NULL, *err = NULL;
    int64_t t0 = now_ms();
    int st = run_tool("init", NULL, ports[0], &out, &err);
    printf("meridian init: exit %d in %lld ms\n%s%s", st, (long long)(now_ms() - t0),
           out ? out : "", err ? err : "");
    char want[64];
    snprintf(want, sizeof want, "initialized with %d nodes", NODES);
    bool ok = st == 0 && out != NULL && strstr(out, want) != NULL;
    base_free(out);
    base_free(err);
    if (!ok) return -1;
    for (int i = 0; i < NODES; i++) { /* SQL through every node */
        PGconn *c = mtest_connect(&nodes[i]);
        if (c == NULL) return -1;
        PQfinish(c);
    }
    printf("cluster ready %lld ms after init started\n", (long long)(now_ms() - t0));
    return 0;
}

static int cluster_group_teardown(void **state) {
    (void)state;
    int bad = 0;
    for (int i = 0; i <= NODES; i++) {
        if (nodes[i].pid > 0) {
            int st = mtest_node_stop(&nodes[i]);
            if (st != 0) {
                fprintf(stderr, "node %d exit status after SIGTERM: %d (want 0)\n", i + 1, st);
                bad = 1;
            }
        }
        mtest_node_destroy(&nodes[i]);
    }
    return bad ? -1 : 0;
}

static PGconn *conn(int i) {
    PGconn *c = mtest_connect(&nodes[i]);
    assert_non_null(c);
    return c;
}

/* Wait until node status (through port) shows `want` live nodes. */
__attribute__((unused)) static void wait_live(int port, int want, status_row *rows, int *n_out) {
    int64_t deadline = now_ms() + CLUSTER_STATUS_MS;
    int live = 0, n = 0;
    while (now_ms() < deadline) {
        n = node_status(port, rows, 8);
        live = 0;
        for (int i = 0; i < n; i++) live += strcmp(rows[i].state, "live") == 0;
        if (live == want) break;
        pause_ms(200);
    }
    if (live != want) print_error("node status: %d live nodes, want %d\n", live, want);
    assert_int_equal(live, want);
    *n_out = n;
}

#endif
