/*
** cli/cli_demo.c: `meridian demo`, a local cluster on loopback and a shell.
**
**   meridian demo [--nodes N] [--dir DIR] [--keep-running]
**
** Starts N nodes (`meridian start --insecure --background`, each with its
** store in DIR/nodeI, on a free loopback port that serves RPC and SQL, and
** --join naming all of them), runs `meridian init` on node 1, waits until a
** SELECT works through every node, prints each node's psql URL and opens the
** SQL shell on node 1. When the shell exits the nodes are stopped (SIGTERM,
** a bounded wait, then SIGKILL) unless --keep-running, which prints the
** command that stops them.
**
** A second run with the same DIR: when the previous demo's N nodes are all
** still running it is reused as it is (and left running: this run did not
** start it); otherwise whatever of it still runs is stopped and its node
** directories are removed, and a new cluster starts (a demo always starts
** from a fresh cluster; only DIR/nodeI and DIR/meridian-demo are touched, and
** a non-empty DIR without the DIR/meridian-demo marker is refused).
**
** Limits: CLI_DEMO_NODES_MAX nodes; every wait is bounded (CLI_DEMO_*_MS).
*/
#define _GNU_SOURCE
#include "cli/cli_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLI_DEMO_NODES_MAX 9
#define CLI_DEMO_PATH_MAX 4096
#define CLI_DEMO_START_MS (90 * 1000)   /* one `meridian start --background` */
#define CLI_DEMO_INIT_MS (90 * 1000)
#define CLI_DEMO_READY_MS (120 * 1000)  /* SQL through every node */
#define CLI_DEMO_STOP_MS (30 * 1000)    /* SIGTERM, then SIGKILL */
#define CLI_DEMO_POLL_MS 100
#define CLI_DEMO_MARKER "meridian-demo"

typedef struct demo_node {
    char store[CLI_DEMO_PATH_MAX + 16];
    int port;
    pid_t pid;
    char url[CLI_HOST_SIZE_MAX + 128];
} demo_node;

static void usage(FILE *f) {
    char dir[CLI_DEMO_PATH_MAX];
    cli_demo_default_dir(dir, sizeof dir);
    fprintf(f,
            "usage: meridian demo [--nodes N] [--dir DIR] [--keep-running]\n"
            "A local cluster of N nodes (default 3, at most %d) on loopback, and the SQL\n"
            "shell connected to node 1.\n"
            "  --dir DIR        where the nodes' stores go (default %s)\n"
            "  --keep-running   leave the nodes running when the shell exits (the command\n"
            "                   that stops them is printed)\n"
            "A second demo on the same DIR reuses the cluster when all its nodes still\n"
            "run; otherwise it removes the old node directories and starts a new one.\n",
            CLI_DEMO_NODES_MAX, dir);
}

static void pause_ms(int ms) { /* a bounded polling step, not a wait for an event */
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* The pid in STORE/meridian.pid when that process is alive, else 0. */
static pid_t running_pid(const char *store) {
    char path[CLI_DEMO_PATH_MAX + 32];
    snprintf(path, sizeof path, "%.*s/meridian.pid", (int)(sizeof path - 16), store);
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1) pid = 0;
    fclose(f);
    if (pid <= 1 || kill((pid_t)pid, 0) != 0) return 0;
    return (pid_t)pid;
}

/* Wait (bounded) for a process that is not our child to exit. */
static bool wait_gone(pid_t pid, int timeout_ms) {
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    int64_t deadline = base_monotonic_ns() / 1000000 + timeout_ms;
    for (;;) {
        if (kill(pid, 0) != 0 && errno == ESRCH) break;
        int64_t left = deadline - base_monotonic_ns() / 1000000;
        if (left <= 0) {
            if (fd >= 0) close(fd);
            return false;
        }
        if (fd >= 0) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, (int)left) > 0) break;
        } else {
            pause_ms(CLI_DEMO_POLL_MS);
        }
    }
    if (fd >= 0) close(fd);
    return true;
}

static void stop_node(const demo_node *d) {
    pid_t pid = d->pid > 0 ? d->pid : running_pid(d->store);
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    if (!wait_gone(pid, CLI_DEMO_STOP_MS)) {
        fprintf(stderr, "demo: node %s did not stop within %d s: SIGKILL\n", d->store,
                CLI_DEMO_STOP_MS / 1000);
        kill(pid, SIGKILL);
        wait_gone(pid, CLI_DEMO_STOP_MS);
    }
}

/* Ports free on 127.0.0.1 right now (held together so they differ). */
static int free_ports(int *ports, int n) {
    int fds[CLI_DEMO_NODES_MAX];
    int rc = 0, opened = 0;
    for (; opened < n; opened++) {
        fds[opened] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        if (fds[opened] < 0 || bind(fds[opened], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fds[opened], (struct sockaddr *)&a, &len) != 0) {
            if (fds[opened] >= 0) close(fds[opened]);
            rc = -1;
            break;
        }
        ports[opened] = ntohs(a.sin_port);
    }
    for (int i = 0; i < opened; i++) close(fds[i]);
    return rc;
}

/* Run argv, stdout shown only on failure; bounded. Returns the exit status,
** or -1 (could not run, or killed at the deadline). */
static int run_quiet(char *const *argv, int timeout_ms, char *out, size_t out_size) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        dup2(p[1], STDERR_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t got = 0;
    int64_t deadline = base_monotonic_ns() / 1000000 + timeout_ms;
    for (;;) {
        int64_t left = deadline - base_monotonic_ns() / 1000000;
        if (left <= 0) break;
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        char chunk[1024];
        ssize_t k = read(p[0], chunk, sizeof chunk);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        size_t take = BASE_MIN((size_t)k, out_size - 1 - got);
        memcpy(out + got, chunk, take);
        got += take;
    }
    out[got] = '\0';
    close(p[0]);
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (base_monotonic_ns() / 1000000 >= deadline) break;
        pause_ms(CLI_DEMO_POLL_MS);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* SELECT 1 through url works now. */
static bool sql_works(const char *url) {
    char bounded[CLI_HOST_SIZE_MAX + 160];
    snprintf(bounded, sizeof bounded, "%s&connect_timeout=5", url); /* never hang here */
    PGconn *c = PQconnectdb(bounded);
    bool ok = false;
    if (c != NULL && PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, "SELECT 1");
        ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
    }
    PQfinish(c);
    return ok;
}

static void node_url(demo_node *d) {
    snprintf(d->url, sizeof d->url, "postgresql://root@127.0.0.1:%d/defaultdb?sslmode=disable",
             d->port);
}

/* The SQL port of a running node from its STORE/sql-url. */
static int read_port(demo_node *d) {
    char path[CLI_DEMO_PATH_MAX + 32], line[512];
    snprintf(path, sizeof path, "%.*s/sql-url", (int)(sizeof path - 16), d->store);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    char *got = fgets(line, sizeof line, f);
    fclose(f);
    if (got == NULL) return -1;
    const char *at = strstr(line, "@127.0.0.1:");
    if (at == NULL) return -1;
    d->port = atoi(at + strlen("@127.0.0.1:"));
    return d->port > 0 ? 0 : -1;
}

static int start_nodes(demo_node *nodes, int n, const char *bin) {
    int ports[CLI_DEMO_NODES_MAX];
    if (free_ports(ports, n) != 0) {
        fprintf(stderr, "demo: cannot find %d free ports on 127.0.0.1\n", n);
        return -1;
    }
    char join[CLI_DEMO_NODES_MAX * 24] = "";
    for (int i = 0; i < n; i++) {
        char one[32];
        snprintf(one, sizeof one, "%s127.0.0.1:%d", i ? "," : "", ports[i]);
        strncat(join, one, sizeof join - strlen(join) - 1);
    }
    for (int i = 0; i < n; i++) {
        demo_node *d = &nodes[i];
        d->port = ports[i];
        node_url(d);
        char listen[32], out[8192];
        snprintf(listen, sizeof listen, "127.0.0.1:%d", d->port);
        char *argv[] = {(char *)bin, "start", "--store", d->store, "--listen-addr", listen,
                        "--join", join, "--insecure", "--background", "--log-level", "warn",
                        NULL};
        printf("demo: starting node %d (%s, store %s)\n", i + 1, listen, d->store);
        fflush(stdout);
        int st = run_quiet(argv, CLI_DEMO_START_MS, out, sizeof out);
        if (st != 0) {
            fprintf(stderr, "demo: node %d did not start:\n%s", i + 1, out);
            return -1;
        }
        d->pid = running_pid(d->store);
    }
    return 0;
}

int cli_demo_main(int argc, char **argv) {
    enum { F_NODES = 1000, F_DIR, F_KEEP, F_HELP };
    static const struct option longopts[] = {
        {"nodes", required_argument, NULL, F_NODES},
        {"dir", required_argument, NULL, F_DIR},
        {"keep-running", no_argument, NULL, F_KEEP},
        {"help", no_argument, NULL, F_HELP},
        {NULL, 0, NULL, 0},
    };
    int n = 3;
    bool keep = false;
    char dir[CLI_DEMO_PATH_MAX];
    cli_demo_default_dir(dir, sizeof dir);
    optind = 0;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (opt) {
        case F_NODES: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < 1 || v > CLI_DEMO_NODES_MAX) {
                fprintf(stderr, "meridian demo: --nodes wants 1..%d, got \"%s\"\n",
                        CLI_DEMO_NODES_MAX, optarg);
                return CLI_EXIT_USAGE;
            }
            n = (int)v;
            break;
        }
        case F_DIR:
            if (optarg[0] == '\0' || strlen(optarg) > CLI_DEMO_PATH_MAX - 64) {
                fprintf(stderr, "meridian demo: bad --dir\n");
                return CLI_EXIT_USAGE;
            }
            base_strlcpy(dir, optarg, sizeof dir);
            break;
        case F_KEEP: keep = true; break;
        case F_HELP:
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default:
            fprintf(stderr, "meridian demo: %s %s\n",
                    optopt >= F_NODES ? "missing value for" : "unknown flag", argv[optind - 1]);
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "meridian demo: unexpected argument \"%s\"\n", argv[optind]);
        return CLI_EXIT_USAGE;
    }

    char bin[CLI_DEMO_PATH_MAX];
    ssize_t bl = readlink("/proc/self/exe", bin, sizeof bin - 1);
    if (bl <= 0) {
        fprintf(stderr, "meridian demo: cannot find the meridian binary: %s\n", strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    bin[bl] = '\0';
    if (cli_mkdir_p(dir) != 0) {
        fprintf(stderr, "meridian demo: cannot create %s: %s\n", dir, strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    char marker[CLI_DEMO_PATH_MAX + 32];
    snprintf(marker, sizeof marker, "%s/%s", dir, CLI_DEMO_MARKER);
    if (access(marker, F_OK) != 0) {
        DIR *dd = opendir(dir);
        int entries = 0;
        for (struct dirent *e; dd != NULL && (e = readdir(dd)) != NULL;) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) entries++;
        }
        if (dd != NULL) closedir(dd);
        if (entries > 0) {
            fprintf(stderr, "meridian demo: %s is not empty and is not a demo directory "
                    "(no %s file); choose another --dir\n", dir, CLI_DEMO_MARKER);
            return CLI_EXIT_FAILURE;
        }
    }

    demo_node nodes[CLI_DEMO_NODES_MAX];
    memset(nodes, 0, sizeof nodes);
    int alive = 0;
    for (int i = 0; i < CLI_DEMO_NODES_MAX; i++) {
        snprintf(nodes[i].store, sizeof nodes[i].store, "%s/node%d", dir, i + 1);
        if ((nodes[i].pid = running_pid(nodes[i].store)) > 0 && i < n) alive++;
    }
    bool reuse = alive == n && (n == CLI_DEMO_NODES_MAX || running_pid(nodes[n].store) == 0);
    for (int i = 0; reuse && i < n; i++) {
        if (read_port(&nodes[i]) != 0) reuse = false;
        else node_url(&nodes[i]);
    }
    bool started = false;
    int status = CLI_EXIT_FAILURE;
    if (reuse) {
        printf("demo: reusing the %d-node cluster already running in %s\n", n, dir);
    } else {
        for (int i = 0; i < CLI_DEMO_NODES_MAX; i++) {
            if (nodes[i].pid > 0) {
                printf("demo: stopping node %d of the previous demo (pid %d)\n", i + 1,
                       (int)nodes[i].pid);
                stop_node(&nodes[i]);
            }
            nodes[i].pid = 0;
            if (access(nodes[i].store, F_OK) == 0) {
                nftw(nodes[i].store, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
            }
        }
        FILE *f = fopen(marker, "w");
        if (f == NULL) {
            fprintf(stderr, "meridian demo: cannot write %s: %s\n", marker, strerror(errno));
            return CLI_EXIT_FAILURE;
        }
        fprintf(f, "a `meridian demo` directory: node stores node1..node%d\n", n);
        fclose(f);
        started = true;
        if (start_nodes(nodes, n, bin) != 0) goto stop;
        srv_addr a = {.host = "127.0.0.1", .port = nodes[0].port};
        uint64_t cluster_id;
        srv_peer *peers = NULL;
        size_t np = 0;
        char err[SRV_MESSAGE_SIZE_MAX] = "";
        printf("demo: meridian init --host 127.0.0.1:%d\n", nodes[0].port);
        fflush(stdout);
        if (srv_client_init(&a, CLI_DEMO_INIT_MS, &cluster_id, &peers, &np, err, sizeof err) !=
            SRV_OK) {
            fprintf(stderr, "demo: init failed: %s\n", err);
            goto stop;
        }
        base_free(peers);
        printf("demo: cluster %016llx initialized with %zu nodes\n",
               (unsigned long long)cluster_id, np);
    }
    /* Ready: a SELECT through every node. */
    int64_t deadline = base_monotonic_ns() / 1000000 + CLI_DEMO_READY_MS;
    for (int i = 0; i < n; i++) {
        while (!sql_works(nodes[i].url)) {
            if (base_monotonic_ns() / 1000000 >= deadline) {
                fprintf(stderr, "demo: node %d does not serve SQL after %d s; see %s/logs\n",
                        i + 1, CLI_DEMO_READY_MS / 1000, nodes[i].store);
                goto stop;
            }
            pause_ms(CLI_DEMO_POLL_MS * 2);
        }
    }
    printf("\nA %d-node Meridian cluster is running. Connect to any node:\n", n);
    for (int i = 0; i < n; i++) printf("  node %d: psql \"%s\"\n", i + 1, nodes[i].url);
    printf("Node status: %s node status --host 127.0.0.1:%d\n", bin, nodes[0].port);
    printf("Opening the SQL shell on node 1 (\\q to quit).\n\n");
    fflush(stdout);
    char *shell_argv[] = {"sql", "--url", nodes[0].url, NULL};
    status = cli_sql_main(3, shell_argv);
stop:
    if (started && !keep) {
        printf("demo: stopping the nodes\n");
        for (int i = 0; i < n; i++) stop_node(&nodes[i]);
    } else {
        printf("demo: the nodes keep running; stop them with:\n  kill");
        for (int i = 0; i < n; i++) {
            pid_t pid = running_pid(nodes[i].store);
            if (pid > 0) printf(" %d", (int)pid);
        }
        printf("\n");
    }
    return status;
}
