/*
** bench/bench_util.h: what the wire benches share for --start: run a
** `meridian start` node on a free port with a temp store, and stop it.
**
** Header only (static inline): bench/CMakeLists.txt makes one executable of
** every bench_*.c, so a shared .c would need its own rule.
** Limits: the node has BENCH_START_WAIT_MS to print its "sql:" banner line
** and 30 s to exit on SIGTERM before SIGKILL.
** Needs _GNU_SOURCE (pipe2) defined before the first include.
*/
#ifndef MERIDIAN_BENCH_UTIL_H
#define MERIDIAN_BENCH_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"

#define BENCH_START_WAIT_MS 60000

#define BENCH_EXTRA_ARGS_MAX 8 /* more `meridian start` flags of bench_start_node_with */

/* Runs `meridian start` (bin) on a free port with a store under a new temp
** directory, written to dir (caller's buffer; remove it with
** bench_stop_node), and extra (NULL, or up to BENCH_EXTRA_ARGS_MAX flags and
** values ending in NULL; borrowed for the call); the URL is read from its
** banner into url. Returns the pid or -1. */
static inline pid_t bench_start_node_with(const char *bin, const char *const *extra, char *dir,
                                          size_t dir_size, char *url, size_t url_size) {
    int n_extra = 0;
    while (extra != NULL && extra[n_extra] != NULL)
        if (++n_extra > BENCH_EXTRA_ARGS_MAX) return -1;
    snprintf(dir, dir_size, "/tmp/meridian-bench-XXXXXX");
    if (mkdtemp(dir) == NULL) return -1;
    char store[1200];
    snprintf(store, sizeof store, "%s/store", dir);
    const char *argv[9 + BENCH_EXTRA_ARGS_MAX + 1] = {bin, "start", "--store", store,
                                                       "--sql-addr", "127.0.0.1:0", "--insecure",
                                                       "--log-level", "warn"};
    int argc = 9;
    for (int i = 0; i < n_extra; i++) argv[argc++] = extra[i];
    argv[argc] = NULL;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(p[1], STDOUT_FILENO);
        execv(bin, (char *const *)argv);
        fprintf(stderr, "bench: exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(p[1]);
    char buf[4096];
    size_t got = 0;
    int64_t deadline = base_monotonic_ns() + (int64_t)BENCH_START_WAIT_MS * 1000000;
    char *line = NULL;
    while (line == NULL && got < sizeof buf - 1) {
        int left = (int)((deadline - base_monotonic_ns()) / 1000000);
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, left) <= 0) break;
        ssize_t r = read(p[0], buf + got, sizeof buf - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        buf[got] = 0;
        char *s = strstr(buf, "sql:");
        if (s != NULL && strchr(s, '\n') != NULL) line = s;
    }
    close(p[0]);
    if (line == NULL) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    line += 4;
    while (*line == ' ') line++;
    size_t len = strcspn(line, "\n");
    if (len >= url_size) len = url_size - 1;
    memcpy(url, line, len);
    url[len] = 0;
    return pid;
}

/* bench_start_node_with, no extra flags. */
static inline pid_t bench_start_node(const char *bin, char *dir, size_t dir_size, char *url,
                                     size_t url_size) {
    return bench_start_node_with(bin, NULL, dir, dir_size, url, url_size);
}

/* Stops the node of bench_start_node (SIGTERM, SIGKILL after 30 s) and
** removes its temp directory dir. */
static inline void bench_stop_node(pid_t node, const char *dir) {
    kill(node, SIGTERM);
    int64_t deadline = base_monotonic_ns() + 30LL * 1000000000;
    while (waitpid(node, NULL, WNOHANG) == 0) { /* bounded: 30 s, then SIGKILL */
        if (base_monotonic_ns() > deadline) {
            kill(node, SIGKILL);
            waitpid(node, NULL, 0);
            break;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench: could not remove %s\n", dir);
}

#endif
