/*
** tests/chaos/runner_cluster.c: the meridian processes of a chaos run.
**
** Node i runs `meridian start --store RESULTS/nI/store --listen-addr H:P
** --join <all> --insecure` (SQL on the listen port) with its stdout and
** stderr appended to RESULTS/nI/console.log; its own log is
** RESULTS/nI/store/logs/meridian.log. With namespaces H:P is
** 10.99.0.(i+1):26257 inside node i's namespace; without, 127.0.0.1 and a
** port that was free at the start (kept across restarts).
**
** Invariants: nodes[i].pid != 0 exactly while the runner has a process for
** node i that it has not reaped; a node is paused only while running; every
** fork happens on the main thread (see runner.h); every wait is bounded.
*/
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/chaos/runner.h"

#define CLUSTER_BANNER_MS (60 * 1000)   /* a started node prints its banner */
#define CLUSTER_POLL_MS 50               /* bounded polling step of those waits */
#define CLUSTER_STATUS_ROWS_MAX 16

static int64_t now_ms(void) { return base_monotonic_ns() / 1000000; }

static void poll_step(void) { /* a bounded retry step, not a wait for an event */
    struct timespec ts = {0, CLUSTER_POLL_MS * 1000L * 1000L};
    nanosleep(&ts, NULL);
}

int64_t crun_elapsed_ms(const crun_cluster *c) { return (base_monotonic_ns() - c->t0_ns) / 1000000; }

void crun_log(crun_cluster *c, const char *fmt, ...) {
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    int64_t t = crun_elapsed_ms(c);
    pthread_mutex_lock(&c->log_mu);
    printf("[%7.3f s] %s\n", (double)t / 1000.0, text);
    fflush(stdout);
    if (c->fault_log != NULL) {
        fprintf(c->fault_log, "%lld %s\n", (long long)t, text);
        fflush(c->fault_log);
    }
    pthread_mutex_unlock(&c->log_mu);
    if (c->history != NULL) crun_history_comment(c->history, "runner %lld ms: %s", (long long)t, text);
}

/* n ports free on 127.0.0.1 now (held together so they differ). */
static int free_ports(int *out, int n) {
    int fds[CRUN_NODES_MAX];
    int rc = -1, opened = 0;
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0) goto cleanup;
        opened++;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        if (bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0)
            goto cleanup;
        out[i] = ntohs(a.sin_port);
    }
    rc = 0;
cleanup:
    for (int i = 0; i < opened; i++) close(fds[i]);
    return rc;
}

static int mkdir_one(const char *path) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "chaos: mkdir %s: %s\n", path, strerror(errno));
    return -1;
}

int crun_cluster_init(crun_cluster *c, const crun_config *cfg) {
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->n = cfg->nodes;
    c->t0_ns = base_monotonic_ns();
    pthread_mutex_init(&c->log_mu, NULL);
    char path[CRUN_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/faults.log", cfg->results);
    c->fault_log = fopen(path, "we");
    if (c->fault_log == NULL) {
        fprintf(stderr, "chaos: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < c->n; i++) {
        crun_node *n = &c->nodes[i];
        n->index = i;
        n->final_status = -1;
        snprintf(n->dir, sizeof n->dir, "%s/n%d", cfg->results, i + 1);
        char dir[sizeof n->dir];
        memcpy(dir, n->dir, sizeof dir);
        snprintf(n->store, sizeof n->store, "%s/store", dir);
        if (mkdir_one(n->dir) != 0) return -1;
    }
    if (cfg->no_netns) {
        snprintf(c->netns_why, sizeof c->netns_why, "disabled by --no-netns");
    } else if (crun_net_setup(c) != 0) {
        return -1;
    }
    if (!c->netns) {
        int ports[CRUN_NODES_MAX];
        if (free_ports(ports, c->n) != 0) {
            fprintf(stderr, "chaos: no free loopback ports: %s\n", strerror(errno));
            return -1;
        }
        for (int i = 0; i < c->n; i++) {
            snprintf(c->nodes[i].host, sizeof c->nodes[i].host, "127.0.0.1");
            c->nodes[i].port = ports[i];
        }
    }
    size_t used = 0;
    for (int i = 0; i < c->n; i++) {
        crun_node *n = &c->nodes[i];
        used += (size_t)snprintf(c->join + used, sizeof c->join - used, "%s%s:%d", i ? "," : "",
                                 n->host, n->port);
        char host[sizeof n->host];
        memcpy(host, n->host, sizeof host);
        snprintf(n->url, sizeof n->url,
                 "postgresql://root@%s:%d/defaultdb?sslmode=disable&connect_timeout=%d"
                 "&application_name=chaos",
                 host, n->port, CRUN_CONNECT_TIMEOUT_S);
    }
    return 0;
}

int crun_node_start(crun_cluster *c, int i) {
    crun_node *n = &c->nodes[i];
    assert(n->pid == 0);
    char console[CRUN_PATH_MAX + 32], listen[96];
    snprintf(console, sizeof console, "%s/console.log", n->dir);
    snprintf(listen, sizeof listen, "%s:%d", n->host, n->port);
    int fd = open(console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "chaos: %s: %s\n", console, strerror(errno));
        return -1;
    }
    dprintf(fd, "---- chaos: start %d of node %d at %lld ms (clock offset %lld ms)\n",
            n->starts + 1, i + 1, (long long)crun_elapsed_ms(c), (long long)n->clock_offset_ms);
    char offset[48];
    snprintf(offset, sizeof offset, "%lldms", (long long)n->clock_offset_ms);
    const char *argv[] = {c->cfg->bin, "start", "--store", n->store, "--listen-addr", listen,
                          "--join", c->join, "--insecure", "--log-level",
                          c->cfg->node_log_level, NULL, NULL, NULL, NULL};
    int k = 11;
    if (n->clock_offset_ms != 0) { /* the skew nemeses: test-only flag */
        argv[k++] = "--clock-offset";
        argv[k++] = offset;
    }
    if (c->cfg->nemeses & CRUN_NEM_TEST_FAULTS) /* `meridian debug` faults obeyed */
        argv[k++] = "--enable-test-faults";
    pid_t pid = crun_spawn(n->holder, argv, fd);
    close(fd);
    if (pid < 0) {
        fprintf(stderr, "chaos: fork: %s\n", strerror(errno));
        return -1;
    }
    n->pid = pid;
    n->paused = false;
    n->starts++;
    return 0;
}

int crun_node_kill(crun_cluster *c, int i) {
    crun_node *n = &c->nodes[i];
    if (n->pid == 0) return -1;
    kill(n->pid, SIGKILL); /* also ends a stopped process */
    int st = crun_wait_pid(n->pid, CRUN_STOP_MS);
    if (st == -2) return -1; /* cannot happen short of a kernel hang; leave it tracked */
    n->pid = 0;
    n->paused = false;
    return 0;
}

int crun_node_pause(crun_cluster *c, int i) {
    crun_node *n = &c->nodes[i];
    if (n->pid == 0 || n->paused || kill(n->pid, SIGSTOP) != 0) return -1;
    n->paused = true;
    return 0;
}

int crun_node_resume(crun_cluster *c, int i) {
    crun_node *n = &c->nodes[i];
    if (n->pid == 0 || !n->paused) return -1;
    kill(n->pid, SIGCONT);
    n->paused = false;
    return 0;
}

int crun_cluster_reap(crun_cluster *c) {
    int reaped = 0;
    for (int i = 0; i < c->n; i++) {
        crun_node *n = &c->nodes[i];
        if (n->pid == 0) continue;
        int st;
        pid_t r = waitpid(n->pid, &st, WNOHANG);
        if (r != n->pid) continue;
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
        n->pid = 0;
        n->paused = false;
        if (n->expect_exit && code == CRUN_EXIT_LOG_FAILED) {
            n->expect_exit = false;
            n->expected_exits++;
            crun_log(c, "disk: n%d exited with status %d after its injected fsync failure, as it "
                     "must (restarted at the heal)", i + 1, code);
            continue;
        }
        n->unexpected_exits++;
        reaped++;
        crun_log(c, "CRASH node n%d exited on its own (status %d); see %s/console.log", i + 1,
                 code, n->dir);
    }
    return reaped;
}

/* Wait until node i's console shows the banner's "sql:" line of its
** latest start, or the process exits. 0 or -1. */
static int wait_banner(crun_cluster *c, int i) {
    crun_node *n = &c->nodes[i];
    char console[CRUN_PATH_MAX + 32];
    snprintf(console, sizeof console, "%s/console.log", n->dir);
    int64_t deadline = now_ms() + CLUSTER_BANNER_MS;
    while (now_ms() < deadline) {
        FILE *f = fopen(console, "re");
        bool found = false;
        if (f != NULL) {
            char line[1024];
            while (fgets(line, sizeof line, f) != NULL) {
                if (strncmp(line, "---- chaos: start", 17) == 0) found = false;
                if (strncmp(line, "sql:", 4) == 0) found = true;
            }
            fclose(f);
        }
        if (found) return 0;
        if (crun_cluster_reap(c) > 0) return -1;
        poll_step();
    }
    fprintf(stderr, "chaos: node %d printed no banner in %d ms (see %s)\n", i + 1,
            CLUSTER_BANNER_MS, console);
    return -1;
}

PGconn *crun_connect(const crun_cluster *c, int i) {
    PGconn *pg = PQconnectdb(c->nodes[i].url);
    if (pg != NULL && PQstatus(pg) == CONNECTION_OK) return pg;
    PQfinish(pg);
    return NULL;
}

/* SQL works through node i (bounded). */
static int wait_sql(crun_cluster *c, int i, int64_t deadline_ms) {
    char last[256] = "";
    while (now_ms() < deadline_ms) {
        PGconn *pg = PQconnectdb(c->nodes[i].url);
        if (pg != NULL && PQstatus(pg) == CONNECTION_OK) {
            PGresult *r = PQexec(pg, "SELECT 1");
            bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
            if (!ok) snprintf(last, sizeof last, "%s", PQresultErrorMessage(r));
            PQclear(r);
            PQfinish(pg);
            if (ok) return 0;
        } else {
            snprintf(last, sizeof last, "%s", pg ? PQerrorMessage(pg) : "out of memory");
            PQfinish(pg);
        }
        poll_step();
    }
    fprintf(stderr, "chaos: no SQL through node %d: %s", i + 1, last);
    return -1;
}

int crun_cluster_bootstrap(crun_cluster *c) {
    for (int i = 0; i < c->n; i++) {
        if (crun_node_start(c, i) != 0) return -1;
    }
    for (int i = 0; i < c->n; i++) {
        if (wait_banner(c, i) != 0) return -1;
    }
    char host[96], out[4096];
    snprintf(host, sizeof host, "%s:%d", c->nodes[0].host, c->nodes[0].port);
    const char *argv[] = {c->cfg->bin, "init", "--host", host, NULL};
    int64_t t0 = now_ms();
    int st = crun_cmd(0, argv, out, sizeof out, CRUN_INIT_MS);
    if (st != 0) {
        fprintf(stderr, "chaos: meridian init --host %s: exit %d: %s", host, st, out);
        return -1;
    }
    int64_t deadline = now_ms() + CRUN_READY_MS;
    for (int i = 0; i < c->n; i++) {
        if (wait_sql(c, i, deadline) != 0) return -1;
    }
    crun_log(c, "cluster of %d nodes initialized; SQL through every node %lld ms after init",
             c->n, (long long)(now_ms() - t0));
    return 0;
}

void crun_cluster_stop(crun_cluster *c) {
    for (int i = 0; i < c->n; i++) {
        crun_node *n = &c->nodes[i];
        if (n->pid == 0) continue;
        if (n->paused) crun_node_resume(c, i);
        kill(n->pid, SIGTERM);
    }
    for (int i = 0; i < c->n; i++) {
        crun_node *n = &c->nodes[i];
        if (n->pid == 0) continue;
        int st = crun_wait_pid(n->pid, CRUN_STOP_MS);
        if (st == -2) {
            fprintf(stderr, "chaos: node %d ignored SIGTERM for %d ms: SIGKILL\n", i + 1,
                    CRUN_STOP_MS);
            kill(n->pid, SIGKILL);
            crun_wait_pid(n->pid, CRUN_STOP_MS);
            st = 128 + SIGKILL;
        }
        n->final_status = st;
        n->pid = 0;
    }
    for (int i = 0; i < c->n; i++) {
        crun_node *n = &c->nodes[i];
        if (n->holder > 0) {
            kill(n->holder, SIGKILL);
            crun_wait_pid(n->holder, CRUN_STOP_MS);
            n->holder = 0;
        }
    }
    if (c->fault_log != NULL) fclose(c->fault_log);
    c->fault_log = NULL;
}

int crun_cluster_leaseholder(crun_cluster *c) {
    int via = -1;
    for (int i = 0; i < c->n && via < 0; i++) {
        if (c->nodes[i].pid != 0 && !c->nodes[i].paused) via = i;
    }
    if (via < 0) return -1;
    char host[96], out[4096];
    snprintf(host, sizeof host, "%s:%d", c->nodes[via].host, c->nodes[via].port);
    const char *argv[] = {c->cfg->bin, "node", "status", "--host", host, NULL};
    if (crun_cmd(0, argv, out, sizeof out, 5000) != 0) return -1;
    /* rows: id rpc sql liveness... replicas leases (see docs/cluster.md) */
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *tok[CLUSTER_STATUS_ROWS_MAX];
        int k = 0;
        char *s2 = NULL;
        for (char *t = strtok_r(line, " ", &s2); t != NULL && k < CLUSTER_STATUS_ROWS_MAX;
             t = strtok_r(NULL, " ", &s2))
            tok[k++] = t;
        if (k < 6 || tok[0][0] < '0' || tok[0][0] > '9') continue;
        long id = strtol(tok[0], NULL, 10);
        if (strcmp(tok[3], "live") == 0 && atoi(tok[k - 1]) > 0 && id >= 1 && id <= c->n)
            return (int)id - 1;
    }
    return -1;
}

int crun_node_debug(crun_cluster *c, int i, const char *const *args, char *out, size_t out_size) {
    char host[96];
    snprintf(host, sizeof host, "%s:%d", c->nodes[i].host, c->nodes[i].port);
    const char *argv[16];
    int k = 0;
    argv[k++] = c->cfg->bin;
    argv[k++] = "debug";
    for (int j = 0; args[j] != NULL && k < 12; j++) argv[k++] = args[j];
    argv[k++] = "--host";
    argv[k++] = host;
    argv[k] = NULL;
    char buf[1024];
    int st = crun_cmd(0, argv, buf, sizeof buf, 15000);
    buf[strcspn(buf, "\n")] = '\0';
    if (out != NULL) base_strlcpy(out, buf, out_size);
    return st;
}
