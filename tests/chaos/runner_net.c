/*
** tests/chaos/runner_net.c: processes and the network of a chaos run.
**
** Layout with namespaces (the runner is root and may unshare):
**
**   runner's own netns (unshared at start)      node i's netns (holder i)
**   ┌──────────────────────────────┐            ┌──────────────────────┐
**   │ crbr 10.99.0.254/24 (bridge) │── crhI ═══ │ crnI 10.99.0.(I+1)   │
**   │ clients, `meridian init`     │   veth     │ meridian, lo         │
**   └──────────────────────────────┘            └──────────────────────┘
**
** A holder is a child that unshares a network namespace and then only
** waits; node processes are spawned into it with setns, so the namespace,
** its veth and its address survive kill -9 and restart of the node. The
** runner's namespace dies with the runner, a node's namespace with its
** holder and node (both have PR_SET_PDEATHSIG = SIGKILL), and a veth pair
** with either end's namespace: nothing is left behind on any exit path.
**
** Partition: node i stops reaching node j when i's namespace gets a
** permanent neighbour entry mapping j's address to a MAC nobody has; its
** frames to j are then flooded by the bridge and dropped by every port, as
** a packet filter's DROP would (no RST, no ICMP: the peers time out).
** Clients on the bridge are never cut off. Healing deletes the entries.
**
** Invariants: c->cut[i][j] is true exactly when i's namespace holds the
** entry for j; every command runs with a deadline (CRUN_CMD_MS).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/chaos/runner.h"

#define NET_BRIDGE "crbr"
#define NET_BOGUS_MAC "02:00:00:c4:a0:5e" /* no interface has it */
#define NET_HOLDER_READY_MS 5000

static int64_t now_ms(void) { return base_monotonic_ns() / 1000000; }

static void child_say(int fd, const char *a, const char *b) {
    if (write(fd, a, strlen(a)) < 0 || write(fd, b, strlen(b)) < 0 || write(fd, "\n", 1) < 0)
        _exit(125);
}

/* Child side of a spawn: never returns. Runs between fork and exec in a
** threaded process, so only async-signal-safe calls (ns_path was built by
** the parent). */
static void child_exec(pid_t parent, const char *ns_path, const char *const *argv, int out_fd) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    setpgid(0, 0); /* terminal signals go to the runner, which stops us in order */
    signal(SIGPIPE, SIG_DFL);
    if (ns_path != NULL) {
        int fd = open(ns_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
            child_say(out_fd >= 0 ? out_fd : 2, "chaos: cannot enter the namespace ", ns_path);
            _exit(126);
        }
        close(fd);
    }
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    int o = out_fd >= 0 ? out_fd : null_fd;
    if (o >= 0) {
        dup2(o, STDOUT_FILENO);
        dup2(o, STDERR_FILENO);
    }
    execvp(argv[0], (char *const *)argv);
    int e = errno;
    char num[16];
    int k = (int)sizeof num - 1;
    num[k] = '\0';
    do { /* errno in decimal without printf (async-signal-safe) */
        num[--k] = (char)('0' + e % 10);
        e /= 10;
    } while (e > 0 && k > 0);
    child_say(STDERR_FILENO, "chaos: cannot exec, errno ", num + k);
    child_say(STDERR_FILENO, "chaos: the binary: ", argv[0]);
    _exit(127);
}

pid_t crun_spawn(pid_t ns_holder, const char *const *argv, int out_fd) {
    char ns_path[64];
    snprintf(ns_path, sizeof ns_path, "/proc/%d/ns/net", (int)ns_holder);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) child_exec(parent, ns_holder > 0 ? ns_path : NULL, argv, out_fd);
    setpgid(pid, pid); /* both sides: no race on who runs first */
    return pid;
}

/* Wait up to timeout_ms for pid; returns the decoded status (128+signal
** when killed) or -2 on timeout. */
static int wait_pid(pid_t pid, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int result = -2;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            result = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
            break;
        }
        if (r < 0 && errno != EINTR) {
            result = -1;
            break;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0) break;
        if (pidfd >= 0) {
            struct pollfd p = {.fd = pidfd, .events = POLLIN};
            poll(&p, 1, (int)BASE_MIN(left, 1000));
        } else { /* old kernel: a bounded polling step */
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (pidfd >= 0) close(pidfd);
    return result;
}

int crun_wait_pid(pid_t pid, int timeout_ms) { return wait_pid(pid, timeout_ms); }

int crun_cmd(pid_t ns_holder, const char *const *argv, char *out, size_t out_size,
             int timeout_ms) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -1;
    pid_t pid = crun_spawn(ns_holder, argv, p[1]);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    size_t got = 0;
    int64_t deadline = now_ms() + timeout_ms;
    bool timed_out = false;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        int r = poll(&pf, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            timed_out = r == 0;
            break;
        }
        char chunk[1024];
        ssize_t k = read(p[0], chunk, sizeof chunk);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        if (out != NULL && out_size > 1 && got < out_size - 1) {
            size_t take = BASE_MIN((size_t)k, out_size - 1 - got);
            memcpy(out + got, chunk, take);
            got += take;
        }
    }
    close(p[0]);
    if (out != NULL && out_size > 0) out[got] = '\0';
    if (timed_out) kill(pid, SIGKILL);
    int st = wait_pid(pid, timed_out ? CRUN_STOP_MS : timeout_ms);
    if (st == -2) {
        kill(pid, SIGKILL);
        wait_pid(pid, CRUN_STOP_MS);
        return -1;
    }
    return timed_out ? -1 : st;
}

/* Run an `ip` command; on failure print it with its output. 0 or -1. */
static int ip(pid_t ns, const char *const *argv) {
    char out[1024];
    int st = crun_cmd(ns, argv, out, sizeof out, CRUN_CMD_MS);
    if (st == 0) return 0;
    fprintf(stderr, "chaos: `");
    for (int i = 0; argv[i] != NULL; i++) fprintf(stderr, "%s%s", i ? " " : "", argv[i]);
    fprintf(stderr, "` (netns of %d) failed (%d): %s\n", (int)ns, st, out);
    return -1;
}

/* A child that owns a new network namespace and waits to die with us. */
static pid_t holder_start(void) {
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(ready[0]);
        close(ready[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        setpgid(0, 0);
        char ok = unshare(CLONE_NEWNET) == 0 ? 'K' : 'E';
        if (write(ready[1], &ok, 1) != 1 || ok != 'K') _exit(1);
        close(ready[1]);
        for (;;) pause(); /* until SIGKILL: the namespace's anchor */
    }
    setpgid(pid, pid);
    close(ready[1]);
    struct pollfd pf = {.fd = ready[0], .events = POLLIN};
    char got = 0;
    int r;
    do {
        r = poll(&pf, 1, NET_HOLDER_READY_MS);
    } while (r < 0 && errno == EINTR);
    if (r != 1 || read(ready[0], &got, 1) != 1 || got != 'K') {
        close(ready[0]);
        kill(pid, SIGKILL);
        wait_pid(pid, CRUN_STOP_MS);
        return -1;
    }
    close(ready[0]);
    return pid;
}

int crun_net_setup(crun_cluster *c) {
    if (unshare(CLONE_NEWNET) != 0) {
        c->netns = false;
        snprintf(c->netns_why, sizeof c->netns_why, "unshare(CLONE_NEWNET): %s", strerror(errno));
        return 0;
    }
    c->netns = true;
    char addr[64];
    snprintf(addr, sizeof addr, "%s%d/24", CRUN_NET_PREFIX, CRUN_NET_RUNNER_HOST);
    const char *lo_up[] = {"ip", "link", "set", "lo", "up", NULL};
    const char *br_add[] = {"ip", "link", "add", NET_BRIDGE, "type", "bridge", NULL};
    const char *br_addr[] = {"ip", "addr", "add", addr, "dev", NET_BRIDGE, NULL};
    const char *br_up[] = {"ip", "link", "set", NET_BRIDGE, "up", NULL};
    if (ip(0, lo_up) || ip(0, br_add) || ip(0, br_addr) || ip(0, br_up)) return -1;
    for (int i = 0; i < c->n; i++) {
        crun_node *n = &c->nodes[i];
        n->holder = holder_start();
        if (n->holder <= 0) {
            fprintf(stderr, "chaos: cannot start the namespace holder of node %d\n", i + 1);
            n->holder = 0;
            return -1;
        }
        char host_if[16], node_if[16], holder[16], node_addr[64];
        snprintf(host_if, sizeof host_if, "crh%d", i);
        snprintf(node_if, sizeof node_if, "crn%d", i);
        snprintf(holder, sizeof holder, "%d", (int)n->holder);
        snprintf(node_addr, sizeof node_addr, "%s%d/24", CRUN_NET_PREFIX, i + 1);
        const char *veth[] = {"ip", "link", "add", host_if, "type", "veth", "peer", "name",
                              node_if, NULL};
        const char *master[] = {"ip", "link", "set", host_if, "master", NET_BRIDGE, "up", NULL};
        const char *move[] = {"ip", "link", "set", node_if, "netns", holder, NULL};
        const char *in_addr[] = {"ip", "addr", "add", node_addr, "dev", node_if, NULL};
        const char *in_up[] = {"ip", "link", "set", node_if, "up", NULL};
        if (ip(0, veth) || ip(0, master) || ip(0, move) || ip(n->holder, lo_up) ||
            ip(n->holder, in_addr) || ip(n->holder, in_up))
            return -1;
        snprintf(n->host, sizeof n->host, "%s%d", CRUN_NET_PREFIX, i + 1);
        n->port = CRUN_NET_PORT;
    }
    return 0;
}

int crun_net_cut(crun_cluster *c, int from, int to) {
    if (!c->netns || from == to || c->cut[from][to]) return 0;
    char dev[16], peer[64];
    snprintf(dev, sizeof dev, "crn%d", from);
    snprintf(peer, sizeof peer, "%s%d", CRUN_NET_PREFIX, to + 1);
    const char *argv[] = {"ip", "neigh", "replace", peer, "lladdr", NET_BOGUS_MAC, "dev", dev,
                          "nud", "permanent", NULL};
    if (ip(c->nodes[from].holder, argv) != 0) return -1;
    c->cut[from][to] = true;
    return 0;
}

int crun_net_heal_all(crun_cluster *c) {
    int rc = 0;
    for (int i = 0; i < c->n; i++) {
        for (int j = 0; j < c->n; j++) {
            if (!c->cut[i][j]) continue;
            char dev[16], peer[64];
            snprintf(dev, sizeof dev, "crn%d", i);
            snprintf(peer, sizeof peer, "%s%d", CRUN_NET_PREFIX, j + 1);
            const char *argv[] = {"ip", "neigh", "del", peer, "dev", dev, NULL};
            if (ip(c->nodes[i].holder, argv) != 0) rc = -1;
            else c->cut[i][j] = false;
        }
    }
    return rc;
}
