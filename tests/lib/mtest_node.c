/*
** tests/lib/mtest_node.c: start/stop real meridian processes; run commands.
** Invariants: every node started is in live_nodes until reaped, so the
** atexit handler can kill it; every wait has a deadline.
*/
#define _GNU_SOURCE
#include "mtest_node.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"

static pid_t live_nodes[MTEST_NODES_MAX];
static bool atexit_registered;

static void kill_live_nodes(void) {
    for (int i = 0; i < MTEST_NODES_MAX; i++) {
        if (live_nodes[i] > 0) {
            kill(live_nodes[i], SIGKILL);
            waitpid(live_nodes[i], NULL, 0);
            live_nodes[i] = 0;
        }
    }
}

static void track(pid_t pid) {
    if (!atexit_registered) {
        atexit(kill_live_nodes);
        atexit_registered = true;
    }
    for (int i = 0; i < MTEST_NODES_MAX; i++) {
        if (live_nodes[i] == 0) {
            live_nodes[i] = pid;
            return;
        }
    }
    fprintf(stderr, "mtest: more than %d live nodes\n", MTEST_NODES_MAX);
    abort();
}

static void untrack(pid_t pid) {
    for (int i = 0; i < MTEST_NODES_MAX; i++) {
        if (live_nodes[i] == pid) live_nodes[i] = 0;
    }
}

static int64_t now_ms(void) { return base_monotonic_ns() / 1000000; }

static void short_pause(void) { /* a bounded retry step, never a wait for an event */
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static int decode_status(int st) {
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

/* Wait for pid to exit, up to timeout_ms. Returns the status or -2 on
** timeout (still running). Uses a pidfd when the kernel has one. */
static int wait_exit(pid_t pid, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    int st;
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (pidfd >= 0) close(pidfd);
            return decode_status(st);
        }
        if (r < 0 && errno != EINTR) {
            if (pidfd >= 0) close(pidfd);
            return -1;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0) break;
        if (pidfd >= 0) {
            struct pollfd p = {.fd = pidfd, .events = POLLIN};
            poll(&p, 1, (int)left);
        } else {
            short_pause();
        }
    }
    if (pidfd >= 0) close(pidfd);
    return -2;
}

const char *mtest_meridian_bin(void) {
    const char *b = getenv("MERIDIAN_BIN");
    return (b != NULL && b[0] != '\0') ? b : "meridian";
}

/* Start `meridian start --store STORE` + flags; wait for the banner's
** "sql:" line; connect when `connect`. defaults: add the single-node
** defaults (free SQL and listen ports, --insecure unless --certs-dir). */
static int node_spawn(mtest_node *n, const char *store, const char *const *extra, bool defaults,
                      bool connect);

int mtest_node_start(mtest_node *n, const char *store, const char *const *extra) {
    return node_spawn(n, store, extra, true, true);
}

int mtest_node_start_raw(mtest_node *n, const char *store, const char *const *args) {
    return node_spawn(n, store, args, false, false);
}

static int node_spawn(mtest_node *n, const char *store, const char *const *extra, bool defaults,
                      bool connect) {
    if (store == NULL) {
        memset(n, 0, sizeof *n);
        n->stdout_fd = -1;
        const char *tmp = getenv("TMPDIR");
        snprintf(n->dir, sizeof n->dir, "%s/meridian-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (mkdtemp(n->dir) == NULL) {
            fprintf(stderr, "mtest: mkdtemp: %s\n", strerror(errno));
            n->dir[0] = '\0';
            return -1;
        }
        snprintf(n->store, sizeof n->store, "%s/store", n->dir);
    } else if (store != n->store) {
        base_strlcpy(n->store, store, sizeof n->store);
    }
    n->pid = 0;
    n->url[0] = '\0';
    n->port = 0;

    const char *argv[16 + MTEST_EXTRA_ARGS_MAX];
    int a = 0;
    argv[a++] = mtest_meridian_bin();
    argv[a++] = "start";
    argv[a++] = "--store";
    argv[a++] = n->store;
    if (defaults) {
        argv[a++] = "--sql-addr";
        argv[a++] = "127.0.0.1:0";
        argv[a++] = "--listen-addr";
        argv[a++] = "127.0.0.1:0";
        /* --insecure unless the test asks for TLS with --certs-dir. */
        bool secure = false;
        for (int i = 0; extra != NULL && extra[i] != NULL && i < MTEST_EXTRA_ARGS_MAX; i++)
            if (strcmp(extra[i], "--certs-dir") == 0) secure = true;
        if (!secure) argv[a++] = "--insecure";
    }
    argv[a++] = "--log-level";
    argv[a++] = getenv("MTEST_LOG_LEVEL") ? getenv("MTEST_LOG_LEVEL") : "warn";
    for (int i = 0; extra != NULL && extra[i] != NULL && i < MTEST_EXTRA_ARGS_MAX; i++)
        argv[a++] = extra[i];
    argv[a] = NULL;

    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        dup2(p[1], STDOUT_FILENO);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "mtest: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(p[1]);
    track(pid);
    n->pid = pid;
    n->stdout_fd = p[0];

    /* Read the banner until its "sql:" line. */
    char buf[8192];
    size_t got = 0;
    int64_t deadline = now_ms() + MTEST_START_TIMEOUT_MS;
    const char *found = NULL;
    while (found == NULL) {
        int64_t left = deadline - now_ms();
        if (left <= 0) break;
        struct pollfd pfd = {.fd = n->stdout_fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        ssize_t k = read(n->stdout_fd, buf + got, sizeof buf - 1 - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
        buf[got] = '\0';
        char *line = strstr(buf, "sql:");
        if (line != NULL && strchr(line, '\n') != NULL) found = line;
        if (got == sizeof buf - 1) break;
    }
    if (found == NULL) {
        fprintf(stderr, "mtest: node on %s printed no SQL URL (got: %.*s)\n", n->store, (int)got,
                buf);
        mtest_node_kill9(n);
        return -1;
    }
    found += 4;
    while (*found == ' ') found++;
    size_t len = strcspn(found, "\n");
    if (len >= sizeof n->url) len = sizeof n->url - 1;
    memcpy(n->url, found, len);
    n->url[len] = '\0';
    const char *colon = strrchr(n->url, ':');
    n->port = colon ? atoi(colon + 1) : 0;
    if (!connect) return 0;

    PGconn *c = mtest_connect(n);
    if (c == NULL) {
        mtest_node_kill9(n);
        return -1;
    }
    PQfinish(c);
    return 0;
}

int mtest_node_restart(mtest_node *n, const char *const *extra) {
    return mtest_node_start(n, n->store, extra);
}

static void close_stdout(mtest_node *n) {
    if (n->stdout_fd >= 0) close(n->stdout_fd);
    n->stdout_fd = -1;
}

int mtest_node_stop(mtest_node *n) {
    if (n->pid <= 0) return -1;
    kill(n->pid, SIGTERM);
    int st = wait_exit(n->pid, MTEST_STOP_TIMEOUT_MS);
    if (st == -2) {
        fprintf(stderr, "mtest: node %d ignored SIGTERM for %d ms: SIGKILL\n", (int)n->pid,
                MTEST_STOP_TIMEOUT_MS);
        kill(n->pid, SIGKILL);
        st = wait_exit(n->pid, MTEST_STOP_TIMEOUT_MS);
    }
    untrack(n->pid);
    n->pid = 0;
    close_stdout(n);
    return st;
}

int mtest_node_kill9(mtest_node *n) {
    if (n->pid <= 0) return -1;
    kill(n->pid, SIGKILL);
    wait_exit(n->pid, MTEST_STOP_TIMEOUT_MS);
    untrack(n->pid);
    n->pid = 0;
    close_stdout(n);
    return 0;
}

bool mtest_node_alive(mtest_node *n) {
    if (n->pid <= 0) return false;
    int st;
    pid_t r = waitpid(n->pid, &st, WNOHANG);
    if (r == 0) return true;
    untrack(n->pid);
    n->pid = 0;
    return false;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void mtest_remove_tree(const char *path) {
    if (path == NULL || path[0] == '\0' || strcmp(path, "/") == 0) return;
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void mtest_node_destroy(mtest_node *n) {
    if (n->pid > 0) mtest_node_stop(n);
    close_stdout(n);
    if (n->dir[0] != '\0' && getenv("MTEST_KEEP") == NULL) mtest_remove_tree(n->dir);
    n->dir[0] = '\0';
}

PGconn *mtest_connect(const mtest_node *n) {
    int64_t deadline = now_ms() + MTEST_CONNECT_TIMEOUT_MS;
    for (;;) {
        PGconn *c = PQconnectdb(n->url);
        if (c != NULL && PQstatus(c) == CONNECTION_OK) return c;
        if (now_ms() >= deadline) {
            fprintf(stderr, "mtest: cannot connect to %s: %s", n->url,
                    c ? PQerrorMessage(c) : "out of memory\n");
            PQfinish(c);
            return NULL;
        }
        PQfinish(c);
        short_pause();
    }
}

int mtest_run(const char *const *argv, const char *stdin_text, int timeout_ms, char **out,
              char **err) {
    int in_p[2], out_p[2], err_p[2];
    if (pipe2(in_p, O_CLOEXEC) != 0) return -1;
    if (pipe2(out_p, O_CLOEXEC) != 0) {
        close(in_p[0]); close(in_p[1]);
        return -1;
    }
    if (pipe2(err_p, O_CLOEXEC) != 0) {
        close(in_p[0]); close(in_p[1]); close(out_p[0]); close(out_p[1]);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        dup2(in_p[0], STDIN_FILENO);
        dup2(out_p[1], STDOUT_FILENO);
        dup2(err_p[1], STDERR_FILENO);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "mtest: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(in_p[0]);
    close(out_p[1]);
    close(err_p[1]);
    signal(SIGPIPE, SIG_IGN);
    int fl = fcntl(in_p[1], F_GETFL);
    fcntl(in_p[1], F_SETFL, fl | O_NONBLOCK);
    const char *in = stdin_text ? stdin_text : "";
    size_t in_left = strlen(in);
    int in_fd = in_p[1];
    if (in_left == 0) {
        close(in_fd);
        in_fd = -1;
    }
    base_buf ob = {0}, eb = {0};
    int fds[2] = {out_p[0], err_p[0]};
    base_buf *bufs[2] = {&ob, &eb};
    int64_t deadline = now_ms() + timeout_ms;
    bool timed_out = false;
    while (fds[0] >= 0 || fds[1] >= 0) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd p[3];
        int np = 0, idx[3];
        for (int i = 0; i < 2; i++) {
            if (fds[i] >= 0) {
                p[np] = (struct pollfd){.fd = fds[i], .events = POLLIN};
                idx[np++] = i;
            }
        }
        if (in_fd >= 0) {
            p[np] = (struct pollfd){.fd = in_fd, .events = POLLOUT};
            idx[np++] = 2;
        }
        int r = poll(p, (nfds_t)np, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) break;
        for (int k = 0; k < np; k++) {
            if (p[k].revents == 0) continue;
            if (idx[k] == 2) {
                ssize_t w = write(in_fd, in, in_left);
                if (w > 0) {
                    in += w;
                    in_left -= (size_t)w;
                }
                if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_left == 0) {
                    close(in_fd);
                    in_fd = -1;
                }
                continue;
            }
            char chunk[4096];
            ssize_t rd = read(fds[idx[k]], chunk, sizeof chunk);
            if (rd > 0) {
                base_buf_append(bufs[idx[k]], chunk, (size_t)rd);
            } else if (rd == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(fds[idx[k]]);
                fds[idx[k]] = -1;
            }
        }
    }
    if (in_fd >= 0) close(in_fd);
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0) close(fds[i]);
    }
    int st;
    if (timed_out) {
        fprintf(stderr, "mtest: %s timed out after %d ms: killed\n", argv[0], timeout_ms);
        kill(pid, SIGKILL);
        wait_exit(pid, MTEST_STOP_TIMEOUT_MS);
        st = -1;
    } else {
        st = wait_exit(pid, timeout_ms);
        if (st == -2) {
            kill(pid, SIGKILL);
            wait_exit(pid, MTEST_STOP_TIMEOUT_MS);
            st = -1;
        }
    }
    base_buf_append_byte(&ob, 0);
    base_buf_append_byte(&eb, 0);
    if (out != NULL) *out = (char *)ob.data;
    else base_buf_free(&ob);
    if (err != NULL) *err = (char *)eb.data;
    else base_buf_free(&eb);
    return st;
}
