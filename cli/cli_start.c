/*
** cli/cli_start.c: `meridian start`, one node.
**
** Order of start: parse flags (exit 2 on a bad one) -> create the store dir
** -> lock it (flock on STORE/LOCK: one process per store) -> [--background:
** fork; the parent waits for the child's banner on a pipe] -> logs to
** STORE/logs/meridian.log and stderr -> block SIGINT/SIGTERM/SIGHUP in every
** thread (a signalfd receives them) -> storage, clock, txn_db, sql engine,
** gateway -> STORE/meridian.pid and STORE/sql-url -> banner -> wait for a
** signal -> stop in reverse order. SIGHUP does not stop the node: it
** reloads the TLS certificates (sec_tls_reload; new connections use the
** new ones, live ones keep theirs) and logs the outcome.
**
** Cluster mode (issue 4): with --join, or on a store that already has a
** cluster identity, the node is a cluster member run by server/ (srv_node:
** transport, Raft replicas, range server, router, txn_db, SQL, gateway).
** Without --sql-addr SQL then shares the --listen-addr port (default
** 127.0.0.1:26257); STORE/sql-url is written once SQL is served (after
** `meridian init` for a new cluster). Without --join on a new store the
** node is a one-node cluster (issue 8): srv_node with replication 1, RPC on
** --listen-addr (default 127.0.0.1 and a free port), SQL on --sql-addr as
** before; we send it INIT ourselves and print the banner once SQL is served.
** STORE/single-node marks such a store so that a restart keeps replication
** 1. A store that holds single-node data from before this (no identity, MVCC
** data) still opens the old way: txn/ over the local store, no RPC.
**
** Secure by default: --certs-dir DIR (ca.crt, node.crt, node.key) serves
** SQL over TLS only and runs node-to-node RPC over mutual TLS (node
** certificates of the same CA only); --insecure does neither; neither is a
** usage error (exit 2) naming both, and so is both. SIGHUP reloads the SQL
** and the RPC contexts.
**
** Invariants: the store lock is held from before the storage opens until
** the process exits; no work is done in a signal handler (there is none: the
** signals are blocked and read from a signalfd); STORE/sql-url exists only
** while the SQL port accepts connections (written by rename, so readers see
** all or nothing).
*/
#define _GNU_SOURCE /* pipe2, strsignal */
#include "cli/cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gateway/gateway.h"
#include "security/security.h"
#include "server/server.h"
#include "sql/sql.h"
#include "storage/storage.h"
#include "timestamp/timestamp.h"
#include "txn/txn.h"

#define CLI_BACKGROUND_WAIT_MS (120 * 1000) /* parent waits this long for ready */
#define CLI_DEFAULT_STORE "meridian-data"
#define CLI_SINGLE_NODE_MARK "single-node" /* STORE/single-node: a one-node cluster */
#define CLI_SINGLE_NODE_INIT_MS (30 * 1000) /* our own INIT, and SQL after it */

typedef struct start_options {
    const char *store;
    char sql_host[CLI_HOST_SIZE_MAX];
    int sql_port;
    char listen_host[CLI_HOST_SIZE_MAX];
    int listen_port;
    int64_t max_offset_ns;
    bool insecure;
    const char *certs_dir; /* NULL: none (then insecure must be set) */
    bool background;
    base_log_level log_level;
    bool clock_offset_set;
    int64_t clock_offset_ns;
    bool sql_addr_set;    /* --sql-addr given: SQL on its own port */
    bool listen_addr_set; /* --listen-addr given */
    srv_addr join[SRV_JOIN_ADDRS_MAX];
    size_t n_join;
    int64_t dead_after_ms;
    int64_t liveness_ttl_ms;
    bool enable_test_faults; /* hidden: obey `meridian debug` faults (docs/chaos.md) */
    int max_sql_connections;          /* 0: the gateway's default */
    int max_sql_connections_per_user; /* 0: no limit per user */
    int64_t max_sql_memory_bytes;     /* 0: sql/'s default (a quarter of RAM) */
} start_options;

static void usage(FILE *f) {
    fprintf(f,
            "usage: meridian start [flags]\n"
            "  --store DIR              data directory (default ./%s)\n"
            "  --sql-addr HOST:PORT     PostgreSQL protocol address (default 127.0.0.1:%d;\n"
            "                           port 0 picks a free port, see STORE/sql-url)\n"
            "  --listen-addr HOST:PORT  node-to-node RPC address (default 127.0.0.1:%d;\n"
            "                           in a cluster 127.0.0.1:%d, and SQL shares it unless\n"
            "                           --sql-addr is given)\n"
            "  --join HOST:PORT,...     run as a cluster node: the --listen-addr of the\n"
            "                           cluster's nodes (this one may be among them); a new\n"
            "                           cluster starts with `meridian init`\n"
            "  --dead-after DURATION    a node without heartbeat this long is dead and\n"
            "                           its replicas move to live nodes (default 45s;\n"
            "                           suspect as soon as its liveness record expires,\n"
            "                           4.5s after its last heartbeat)\n"
            "  --max-offset DURATION    the largest clock offset tolerated between nodes\n"
            "                           (default 250ms; units ns, us, ms, s)\n"
            "  --certs-dir DIR          TLS certificates: DIR/ca.crt, DIR/node.crt and\n"
            "                           DIR/node.key (see meridian cert) for SQL and for\n"
            "                           node-to-node RPC (mutual TLS: node certificates of\n"
            "                           the same CA only; the node's --listen-addr IP must\n"
            "                           be in node.crt); SIGHUP reloads them\n"
            "  --insecure               no TLS, no authentication (local demos only)\n"
            "  one of --certs-dir and --insecure is required\n"
            "  --max-sql-connections N  SQL sessions at once on this node (default 256);\n"
            "                           beyond: FATAL 53300 too many clients\n"
            "  --max-sql-connections-per-user N\n"
            "                           SQL sessions of one user at once (default: no\n"
            "                           limit but the node's)\n"
            "  --max-sql-memory SIZE    SQLite's memory, all sessions together: a size\n"
            "                           (4GiB, 512MiB) or a share of RAM (25%%, .25);\n"
            "                           default 25%% (at least 256MiB); beyond: 53200\n"
            "  --log-level LEVEL        debug, info, warn or error (default info)\n"
            "  --background             return once the node is ready; it keeps running\n",
            CLI_DEFAULT_STORE, CLI_DEFAULT_SQL_PORT, CLI_DEFAULT_LISTEN_PORT,
            CLI_DEFAULT_SQL_PORT);
}

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "meridian start: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see meridian start --help)\n");
    return CLI_EXIT_USAGE;
}

static int parse_log_level(const char *s, base_log_level *out) {
    if (strcmp(s, "debug") == 0) *out = BASE_LOG_DEBUG;
    else if (strcmp(s, "info") == 0) *out = BASE_LOG_INFO;
    else if (strcmp(s, "warn") == 0 || strcmp(s, "warning") == 0) *out = BASE_LOG_WARN;
    else if (strcmp(s, "error") == 0) *out = BASE_LOG_ERROR;
    else return -1;
    return 0;
}

/* --max-sql-memory (CockroachDB's flag): "25%" or ".25" of the machine's
** memory, or a size with an optional unit (B, KiB, MiB, GiB, TiB; kB, MB,
** GB, TB). 0 with *out (>= 64 MiB), or -1. */
static int parse_memory(const char *s, int64_t *out) {
    static const struct {
        const char *unit;
        double factor;
    } units[] = {{"", 1},           {"b", 1},         {"kib", 1024.0},   {"mib", 1048576.0},
                 {"gib", 1073741824.0}, {"tib", 1099511627776.0}, {"kb", 1e3}, {"mb", 1e6},
                 {"gb", 1e9},       {"tb", 1e12}};
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !(v > 0)) return -1;
    while (*end == ' ')
        end++;
    double bytes = -1;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double ram = pages > 0 && page > 0 ? (double)pages * (double)page : 0;
    if (strcmp(end, "%") == 0 && v <= 100) {
        bytes = ram * v / 100;
    } else if (*end == '\0' && v < 1) {
        bytes = ram * v;
    } else {
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strcasecmp(end, units[i].unit) == 0) bytes = v * units[i].factor;
    }
    if (!(bytes >= 64.0 * 1048576.0) || bytes > 9e18) return -1;
    *out = (int64_t)bytes;
    return 0;
}

/* 0, 1 for --help, or CLI_EXIT_USAGE (message printed). */
static int parse_flags(int argc, char **argv, start_options *o) {
    enum { F_STORE = 1000, F_SQL, F_LISTEN, F_OFFSET, F_INSECURE, F_LOG, F_BG, F_CLOCK, F_HELP,
           F_CERTS, F_JOIN, F_DEAD, F_TTL, F_TEST_FAULTS, F_MAX_CONN, F_MAX_CONN_USER,
           F_MAX_MEM };
    static const struct option longopts[] = {
        {"store", required_argument, NULL, F_STORE},
        {"sql-addr", required_argument, NULL, F_SQL},
        {"listen-addr", required_argument, NULL, F_LISTEN},
        {"max-offset", required_argument, NULL, F_OFFSET},
        {"insecure", no_argument, NULL, F_INSECURE},
        {"certs-dir", required_argument, NULL, F_CERTS},
        {"log-level", required_argument, NULL, F_LOG},
        {"background", no_argument, NULL, F_BG},
        {"clock-offset", required_argument, NULL, F_CLOCK}, /* hidden, tests only */
        {"join", required_argument, NULL, F_JOIN},
        {"dead-after", required_argument, NULL, F_DEAD},
        {"liveness-ttl", required_argument, NULL, F_TTL}, /* hidden, tests only */
        {"enable-test-faults", no_argument, NULL, F_TEST_FAULTS}, /* hidden, tests only */
        {"max-sql-connections", required_argument, NULL, F_MAX_CONN},
        {"max-sql-connections-per-user", required_argument, NULL, F_MAX_CONN_USER},
        {"max-sql-memory", required_argument, NULL, F_MAX_MEM},
        {"help", no_argument, NULL, F_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->store = CLI_DEFAULT_STORE;
    base_strlcpy(o->sql_host, "127.0.0.1", sizeof o->sql_host);
    o->sql_port = CLI_DEFAULT_SQL_PORT;
    base_strlcpy(o->listen_host, "127.0.0.1", sizeof o->listen_host);
    o->listen_port = CLI_DEFAULT_LISTEN_PORT;
    o->max_offset_ns = HLC_DEFAULT_MAX_OFFSET_NS;
    o->log_level = BASE_LOG_INFO;
    optind = 0;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (opt) {
        case F_STORE:
            if (optarg[0] == '\0') return usage_error("--store needs a directory%s", "");
            if (strlen(optarg) > CLI_PATH_SIZE_MAX - 64)
                return usage_error("--store path too long: %s", optarg);
            o->store = optarg;
            break;
        case F_SQL:
            if (cli_parse_hostport(optarg, "127.0.0.1", CLI_DEFAULT_SQL_PORT, o->sql_host,
                                   &o->sql_port) != 0)
                return usage_error("bad --sql-addr \"%s\" (want HOST:PORT)", optarg);
            o->sql_addr_set = true;
            break;
        case F_LISTEN:
            if (cli_parse_hostport(optarg, "127.0.0.1", CLI_DEFAULT_LISTEN_PORT, o->listen_host,
                                   &o->listen_port) != 0)
                return usage_error("bad --listen-addr \"%s\" (want HOST:PORT)", optarg);
            o->listen_addr_set = true;
            break;
        case F_JOIN: {
            size_t n = 0;
            if (cli_parse_join_list(optarg, CLI_DEFAULT_SQL_PORT, o->join, SRV_JOIN_ADDRS_MAX,
                                    &n) != 0)
                return usage_error("bad --join \"%s\" (want HOST:PORT,HOST:PORT,...)", optarg);
            o->n_join = n;
            break;
        }
        case F_DEAD: {
            int64_t ns;
            if (cli_parse_duration_ns(optarg, &ns) != 0 || ns < 1000000)
                return usage_error("bad --dead-after \"%s\" (want a duration like 60s)", optarg);
            o->dead_after_ms = ns / 1000000;
            break;
        }
        case F_TTL: {
            int64_t ns;
            if (cli_parse_duration_ns(optarg, &ns) != 0 || ns < 1000000)
                return usage_error("bad --liveness-ttl \"%s\"", optarg);
            o->liveness_ttl_ms = ns / 1000000;
            break;
        }
        case F_OFFSET:
            if (cli_parse_duration_ns(optarg, &o->max_offset_ns) != 0 || o->max_offset_ns <= 0)
                return usage_error("bad --max-offset \"%s\" (want a positive duration like "
                                   "250ms or 1s)", optarg);
            break;
        case F_INSECURE: o->insecure = true; break;
        case F_CERTS:
            if (optarg[0] == '\0') return usage_error("--certs-dir needs a directory%s", "");
            if (strlen(optarg) > CLI_PATH_SIZE_MAX - 64)
                return usage_error("--certs-dir path too long: %s", optarg);
            o->certs_dir = optarg;
            break;
        case F_LOG:
            if (parse_log_level(optarg, &o->log_level) != 0)
                return usage_error("bad --log-level \"%s\" (debug, info, warn, error)", optarg);
            break;
        case F_BG: o->background = true; break;
        case F_MAX_CONN:
        case F_MAX_CONN_USER: {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || v < 1 || v > 100000)
                return usage_error("bad connection limit \"%s\" (want 1 .. 100000)", optarg);
            if (opt == F_MAX_CONN)
                o->max_sql_connections = (int)v;
            else
                o->max_sql_connections_per_user = (int)v;
            break;
        }
        case F_MAX_MEM:
            if (parse_memory(optarg, &o->max_sql_memory_bytes) != 0)
                return usage_error("bad --max-sql-memory \"%s\" (want a size such as 4GiB or "
                                   "512MiB of at least 64MiB, or a share of RAM such as 25%% "
                                   "or .25)",
                                   optarg);
            break;
        case F_TEST_FAULTS: o->enable_test_faults = true; break;
        case F_CLOCK:
            if (cli_parse_duration_ns(optarg, &o->clock_offset_ns) != 0)
                return usage_error("bad --clock-offset \"%s\"", optarg);
            o->clock_offset_set = true;
            break;
        case F_HELP:
        case 'h': usage(stdout); return 1;
        default:
            if (optopt >= F_STORE) return usage_error("%s needs a value", argv[optind - 1]);
            return usage_error("unknown flag %s", argv[optind - 1]);
        }
    }
    if (optind < argc) return usage_error("unexpected argument \"%s\"", argv[optind]);
    if (o->certs_dir == NULL && !o->insecure)
        return usage_error("refusing to start without TLS: give --certs-dir DIR (certificates "
                           "made with `meridian cert`) or, for a local demo, --insecure%s", "");
    if (o->certs_dir != NULL && o->insecure)
        return usage_error("--certs-dir and --insecure exclude each other%s", "");
    return 0;
}

/* Write path atomically (tmp + rename). 0 or -errno. */
static int write_file_atomic(const char *path, const char *text) {
    char tmp[CLI_PATH_SIZE_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) return -errno;
    int rc = fputs(text, f) < 0 ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0) rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0) rc = -errno;
    if (rc != 0) unlink(tmp);
    return rc;
}

/* ca_path: NULL for an insecure node (sslmode=disable), else the CA file
** clients verify the node with (sslmode=verify-full). root logs in with its
** client certificate (docs/security.md): when client.root.crt/.key lie
** beside the CA, the URL names them (as CockroachDB's does). */
static void format_url(char *out, size_t size, const char *host, int port, const char *ca_path) {
    bool v6 = strchr(host, ':') != NULL;
    if (ca_path == NULL) {
        snprintf(out, size, "postgresql://root@%s%s%s:%d/defaultdb?sslmode=disable",
                 v6 ? "[" : "", host, v6 ? "]" : "", port);
        return;
    }
    char dir[CLI_PATH_SIZE_MAX], crt[CLI_PATH_SIZE_MAX + 32], key[CLI_PATH_SIZE_MAX + 32];
    base_strlcpy(dir, ca_path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) *slash = '\0';
    else base_strlcpy(dir, ".", sizeof dir);
    snprintf(crt, sizeof crt, "%s/client.root.crt", dir);
    snprintf(key, sizeof key, "%s/client.root.key", dir);
    bool cert = access(crt, R_OK) == 0 && access(key, R_OK) == 0;
    int n = snprintf(out, size,
                     "postgresql://root@%s%s%s:%d/defaultdb?sslmode=verify-full&sslrootcert=%s%s%s"
                     "%s%s",
                     v6 ? "[" : "", host, v6 ? "]" : "", port, ca_path, cert ? "&sslcert=" : "",
                     cert ? crt : "", cert ? "&sslkey=" : "", cert ? key : "");
    if (cert && (n < 0 || (size_t)n >= size)) /* paths too long: the URL without them */
        n = snprintf(out, size,
                     "postgresql://root@%s%s%s:%d/defaultdb?sslmode=verify-full&sslrootcert=%s",
                     v6 ? "[" : "", host, v6 ? "]" : "", port, ca_path);
    (void)n;
}

/* The ERROR lines among the last bytes of the log, for a failed background
** start (the child's stderr is /dev/null). */
static void print_log_errors(const char *store) {
    char path[CLI_PATH_SIZE_MAX], tail[8192];
    snprintf(path, sizeof path, "%s/logs/meridian.log", store);
    FILE *f = fopen(path, "r");
    if (f == NULL) return;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > (long)sizeof tail - 1) fseek(f, size - (long)sizeof tail + 1, SEEK_SET);
        else fseek(f, 0, SEEK_SET);
    }
    size_t n = fread(tail, 1, sizeof tail - 1, f);
    fclose(f);
    tail[n] = '\0';
    for (char *line = tail, *next; line != NULL && *line; line = next) {
        next = strchr(line, '\n');
        if (next != NULL) *next++ = '\0';
        if (strstr(line, " ERROR ") != NULL) fprintf(stderr, "  %s\n", line);
    }
}

/* --background: fork. Returns in the child (0, *ready_fd set) or, in the
** parent, never (exits with the child's outcome). -errno on fork failure. */
static int daemonize(const char *store, int *ready_fd) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return -e;
    }
    if (pid == 0) {
        close(p[0]);
        setsid();
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
            dup2(devnull, STDERR_FILENO);
            if (devnull > STDERR_FILENO) close(devnull);
        }
        *ready_fd = p[1];
        return 0;
    }
    close(p[1]);
    /* Parent: relay the banner; EOF without one means the child failed. */
    char buf[4096];
    size_t got = 0;
    int64_t deadline = base_monotonic_ns() + (int64_t)CLI_BACKGROUND_WAIT_MS * 1000000;
    for (;;) {
        int64_t left_ms = (deadline - base_monotonic_ns()) / 1000000;
        if (left_ms <= 0) break;
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        int n = poll(&pfd, 1, (int)left_ms);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        ssize_t r = read(p[0], buf + got, sizeof buf - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
        if (got == sizeof buf - 1) break;
    }
    close(p[0]);
    buf[got] = '\0';
    if (got > 0) {
        fputs(buf, stdout);
        fprintf(stdout, "running in the background as pid %d; stop it with: kill %d\n", (int)pid,
                (int)pid);
        exit(CLI_EXIT_OK);
    }
    fprintf(stderr, "meridian start: the node did not start; see %s/logs/meridian.log\n", store);
    print_log_errors(store);
    exit(CLI_EXIT_FAILURE);
}

/* ---- cluster mode --------------------------------------------------------- */

/* What the node's callbacks need (they run on node threads). */
static struct {
    const char *url_path;
    const char *ca_path; /* NULL: insecure */
    atomic_bool url_written;
    atomic_bool fatal;
} cluster_cb;

static void on_sql_ready(void *ctx, const char *host, int port) {
    (void)ctx;
    char url[CLI_HOST_SIZE_MAX + CLI_PATH_SIZE_MAX + 160], line[sizeof url + 2];
    format_url(url, sizeof url, host, port, cluster_cb.ca_path);
    snprintf(line, sizeof line, "%s\n", url);
    int rc = write_file_atomic(cluster_cb.url_path, line);
    if (rc != 0) {
        BASE_ERROR("cli", "cannot write %s: %s", cluster_cb.url_path, strerror(-rc));
        return;
    }
    atomic_store(&cluster_cb.url_written, true);
    BASE_INFO("cli", "ready for SQL: %s", url);
}

static void on_fatal(void *ctx, const char *message) {
    (void)ctx;
    BASE_ERROR("cli", "the node cannot go on (%s): stopping", message);
    atomic_store(&cluster_cb.fatal, true);
    kill(getpid(), SIGTERM); /* read by the main thread's signalfd */
}

/* A one-node cluster just started: INIT it if new (over loopback RPC, as
** `meridian init` would), wait until it serves SQL, fill the banner. 0 or -1. */
static int start_single_node(const start_options *o, const srv_config *c, srv_node *node,
                             sec_tls_ctx *tls, const char *ca_path, char *url, size_t url_size,
                             base_buf *banner) {
    srv_node_info info;
    srv_node_get_info(node, &info);
    if (!info.initialized) {
        srv_addr self = {.port = info.rpc_port};
        /* a wildcard listen address is not one to dial */
        bool any = strcmp(c->listen.host, "0.0.0.0") == 0 || strcmp(c->listen.host, "::") == 0;
        base_strlcpy(self.host, any ? "127.0.0.1" : c->listen.host, sizeof self.host);
        uint64_t cluster_id = 0;
        srv_peer *peers = NULL; /* owner: here */
        size_t n_peers = 0;
        char err[SRV_MESSAGE_SIZE_MAX] = "";
        /* The mark first: a crash after INIT must not restart with replication 3. */
        char mark[CLI_PATH_SIZE_MAX];
        snprintf(mark, sizeof mark, "%s/%s", o->store, CLI_SINGLE_NODE_MARK);
        int rc = write_file_atomic(mark, "replication 1\n");
        if (rc != 0) {
            BASE_ERROR("cli", "cannot write %s: %s", mark, strerror(-rc));
            return -1;
        }
        srv_client_set_tls(c->rpc_tls_client);
        rc = srv_client_init(&self, CLI_SINGLE_NODE_INIT_MS, &cluster_id, &peers, &n_peers, err,
                             sizeof err);
        srv_client_set_tls(NULL);
        base_free(peers);
        if (rc != SRV_OK) {
            BASE_ERROR("cli", "cannot initialize the one-node cluster (error %d): %s", rc, err);
            return -1;
        }
        BASE_INFO("cli", "one-node cluster %016llx initialized", (unsigned long long)cluster_id);
    }
    int64_t deadline = base_monotonic_ns() + (int64_t)CLI_SINGLE_NODE_INIT_MS * 1000000;
    for (;;) { /* bounded: the node opens SQL from its periodic thread */
        srv_node_get_info(node, &info);
        if (info.sql_serving || atomic_load(&cluster_cb.fatal)) break;
        if (base_monotonic_ns() > deadline) break;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (!info.sql_serving) {
        BASE_ERROR("cli", "the one-node cluster did not serve SQL within %d s",
                   CLI_SINGLE_NODE_INIT_MS / 1000);
        return -1;
    }
    format_url(url, url_size, c->sql.host, info.sql_port, tls != NULL ? ca_path : NULL);
    base_buf_printf(banner,
                    "Meridian node ready (single node, %s).\n"
                    "sql:     %s\n"
                    "psql:    psql \"%s\"\n"
                    "shell:   meridian sql --url \"%s\"\n"
                    "listen:  %s:%d (node-to-node RPC; a one-node cluster, replication 1)\n"
                    "store:   %s\n"
                    "logs:    %s/logs/meridian.log\n"
                    "pid:     %d\n",
                    tls != NULL ? "TLS" : "insecure", url, url, url, c->listen.host,
                    info.rpc_port, o->store, o->store, (int)getpid());
    return 0;
}

/* Start the node as a cluster member and fill the banner. 0 or -1. */
static int start_cluster(const start_options *o, storage_engine *storage, hlc_clock *clock,
                         sec_tls_ctx *tls, sec_tls_ctx *const rpc_tls[2], const char *ca_path,
                         const char *url_path, bool single_node, srv_node **node, char *url,
                         size_t url_size, base_buf *banner) {
    char raft_dir[CLI_PATH_SIZE_MAX];
    snprintf(raft_dir, sizeof raft_dir, "%s/raft", o->store);
    srv_config c = {.engine = storage, .clock = clock, .tls = tls, .sync = true,
                    .rpc_tls_server = rpc_tls[0], .rpc_tls_client = rpc_tls[1],
                    .raft_log_dir = raft_dir, /* the shared Raft log of every range */
                    .dead_after_ms = o->dead_after_ms, .liveness_ttl_ms = o->liveness_ttl_ms,
                    .on_sql_ready = on_sql_ready, .on_fatal = on_fatal,
                    .enable_test_faults = o->enable_test_faults,
                    .sql_max_connections = o->max_sql_connections,
                    .sql_max_connections_per_user = o->max_sql_connections_per_user};
    if (o->enable_test_faults)
        BASE_WARN("cli", "test-only --enable-test-faults: this node obeys `meridian debug` "
                  "network and disk faults");
    /* In a cluster the RPC port is the well-known one (SQL shares it). */
    base_strlcpy(c.listen.host, o->listen_host, sizeof c.listen.host);
    c.listen.port = o->listen_addr_set ? o->listen_port : CLI_DEFAULT_SQL_PORT;
    c.sql_separate = o->sql_addr_set;
    if (single_node) {
        /* One node: nobody dials it, so RPC stays on loopback and a free
        ** port unless --listen-addr says otherwise; SQL keeps its address. */
        c.single_node = true;
        c.replication = 1;
        if (!o->listen_addr_set) {
            base_strlcpy(c.listen.host, "127.0.0.1", sizeof c.listen.host);
            c.listen.port = 0;
        }
        c.sql_separate = true;
    }
    base_strlcpy(c.sql.host, o->sql_host, sizeof c.sql.host);
    c.sql.port = o->sql_port;
    memcpy(c.join, o->join, o->n_join * sizeof o->join[0]);
    c.n_join = o->n_join;
    cluster_cb.url_path = url_path;
    cluster_cb.ca_path = tls != NULL ? ca_path : NULL;
    int rc = srv_node_start(&c, node);
    if (rc != SRV_OK) {
        BASE_ERROR("cli", "cannot start the cluster node on %s:%d (error %d)", c.listen.host,
                   c.listen.port, rc);
        return -1;
    }
    srv_node_info info;
    srv_node_get_info(*node, &info);
    if (single_node) return start_single_node(o, &c, *node, tls, ca_path, url, url_size, banner);
    char state[128];
    if (info.initialized)
        snprintf(state, sizeof state, "node %llu of cluster %016llx",
                 (unsigned long long)info.node_id, (unsigned long long)info.cluster_id);
    else
        snprintf(state, sizeof state, "not initialized: waiting for `meridian init` or a "
                 "cluster to join");
    char sql_line[sizeof state + CLI_HOST_SIZE_MAX + 64];
    if (c.sql_separate && c.sql.port == 0) {
        snprintf(url, url_size, "(a free port, chosen once SQL starts: see %s)", url_path);
    } else {
        int sql_port = c.sql_separate ? c.sql.port : info.rpc_port;
        format_url(url, url_size, c.sql_separate ? c.sql.host : c.listen.host, sql_port,
                   tls != NULL ? ca_path : NULL);
    }
    snprintf(sql_line, sizeof sql_line, "%s", c.sql_separate ? "its own port" : "shares the "
             "listen port");
    base_buf_printf(banner,
                    "Meridian node ready (cluster mode, %s; %s).\n"
                    "sql:     %s\n"
                    "psql:    psql \"%s\"\n"
                    "shell:   meridian sql --url \"%s\"\n"
                    "listen:  %s:%d (node-to-node RPC; SQL %s)\n"
                    "store:   %s\n"
                    "logs:    %s/logs/meridian.log\n"
                    "pid:     %d\n",
                    state, tls != NULL ? "TLS" : "insecure", url, url, url, c.listen.host,
                    info.rpc_port, sql_line, o->store, o->store, (int)getpid());
    return 0;
}

int cli_start_main(int argc, char **argv) {
    start_options o;
    int rc = parse_flags(argc, argv, &o);
    if (rc == 1) return CLI_EXIT_OK;
    if (rc != 0) return rc;
    /* process-wide, before any SQL session (sql/memory.c) */
    if (o.max_sql_memory_bytes > 0) sqlv_memory_set_node_limit(o.max_sql_memory_bytes);

    int status = CLI_EXIT_FAILURE, lock_fd = -1, sig_fd = -1, ready_fd = -1;
    storage_engine *storage = NULL;
    hlc_clock *clock = NULL;
    txn_db *db = NULL;
    sqlv_engine *engine = NULL;
    gw_server *gw = NULL;
    srv_node *node = NULL;
    sec_tls_ctx *tls = NULL;
    sec_tls_ctx *rpc_tls[2] = {NULL, NULL}; /* node-to-node: server, client */
    char ca_path[CLI_PATH_SIZE_MAX] = "";
    bool pid_written = false, url_written = false;
    char path[CLI_PATH_SIZE_MAX], pid_path[CLI_PATH_SIZE_MAX], url_path[CLI_PATH_SIZE_MAX];
    char url[CLI_HOST_SIZE_MAX + CLI_PATH_SIZE_MAX + 160];
    base_buf banner = {0};

    if ((rc = cli_mkdir_p(o.store)) != 0) {
        fprintf(stderr, "meridian start: cannot create store directory %s: %s\n", o.store,
                strerror(-rc));
        goto cleanup;
    }
    snprintf(pid_path, sizeof pid_path, "%s/meridian.pid", o.store);
    snprintf(url_path, sizeof url_path, "%s/sql-url", o.store);

    /* One process per store. flock is released by the kernel when we die. */
    snprintf(path, sizeof path, "%s/LOCK", o.store);
    lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0) {
        fprintf(stderr, "meridian start: cannot open %s: %s\n", path, strerror(errno));
        goto cleanup;
    }
    if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char pid_text[32] = "unknown";
        FILE *f = fopen(pid_path, "r");
        if (f != NULL) {
            if (fgets(pid_text, sizeof pid_text, f) != NULL) pid_text[strcspn(pid_text, "\n")] = 0;
            fclose(f);
        }
        fprintf(stderr,
                "meridian start: store %s is in use by another meridian process (pid %s); "
                "stop it first or use another --store\n",
                o.store, pid_text);
        goto cleanup;
    }

    if (o.background && (rc = daemonize(o.store, &ready_fd)) != 0) {
        fprintf(stderr, "meridian start: cannot fork: %s\n", strerror(-rc));
        goto cleanup;
    }

    snprintf(path, sizeof path, "%s/logs", o.store);
    if ((rc = cli_mkdir_p(path)) != 0) {
        fprintf(stderr, "meridian start: cannot create %s: %s\n", path, strerror(-rc));
        goto cleanup;
    }
    snprintf(path, sizeof path, "%s/logs/meridian.log", o.store);
    base_log_set_level(o.log_level);
    if ((rc = base_log_set_file(path)) != 0) {
        fprintf(stderr, "meridian start: cannot open log file %s: %s\n", path, strerror(-rc));
        goto cleanup;
    }

    /* Block the stop signals before any thread exists so that every thread
    ** inherits the mask; the main thread reads them from a signalfd. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    sig_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
    if (sig_fd < 0) {
        BASE_ERROR("cli", "signalfd: %s", strerror(errno));
        goto cleanup;
    }

    unlink(url_path); /* stale from a previous run that was killed */
    char pid_text[32];
    snprintf(pid_text, sizeof pid_text, "%d\n", (int)getpid());
    if ((rc = write_file_atomic(pid_path, pid_text)) != 0) {
        BASE_ERROR("cli", "cannot write %s: %s", pid_path, strerror(-rc));
        goto cleanup;
    }
    pid_written = true;

    BASE_INFO("cli", "meridian %s starting: store %s, sql %s:%d, listen %s:%d, max-offset %lld ns",
              CLI_VERSION, o.store, o.sql_host, o.sql_port, o.listen_host, o.listen_port,
              (long long)o.max_offset_ns);
    if (o.certs_dir != NULL) {
        char err[SEC_ERR_MSG_SIZE];
        if ((rc = sec_tls_server_ctx_new(o.certs_dir, NULL, &tls, err, sizeof err)) != 0) {
            BASE_ERROR("cli", "cannot load the TLS certificates of %s: %s", o.certs_dir, err);
            goto cleanup;
        }
        /* RPC: node certificates of our CA, and client certificates of admin
        ** tools (server/ limits those to the admin methods); we show ours. */
        sec_tls_options rpc_server = {.require_peer_node = true, .allow_peer_client = true};
        sec_tls_options rpc_client = {.cert_name = "node"};
        if ((rc = sec_tls_server_ctx_new(o.certs_dir, &rpc_server, &rpc_tls[0], err,
                                         sizeof err)) != 0 ||
            (rc = sec_tls_client_ctx_new(o.certs_dir, &rpc_client, &rpc_tls[1], err,
                                         sizeof err)) != 0) {
            BASE_ERROR("cli", "cannot load the node-to-node TLS certificates of %s: %s",
                       o.certs_dir, err);
            goto cleanup;
        }
        char abs[CLI_PATH_SIZE_MAX];
        if (realpath(o.certs_dir, abs) == NULL) base_strlcpy(abs, o.certs_dir, sizeof abs);
        snprintf(ca_path, sizeof ca_path, "%.*s/%s", (int)(sizeof ca_path - 16), abs,
                 SEC_CA_CERT_FILE);
        BASE_INFO("cli", "TLS on: certificates from %s (SQL clients must use TLS; node-to-node "
                  "RPC uses mutual TLS)", o.certs_dir);
    } else {
        BASE_WARN("cli", "running --insecure: SQL and node-to-node connections are neither "
                  "encrypted nor authenticated");
    }
    if (o.clock_offset_set) {
        BASE_WARN("cli", "test-only --clock-offset %lld ns applied to the system clock",
                  (long long)o.clock_offset_ns);
        hlc_system_clock_set_offset_ns(o.clock_offset_ns);
    }

    snprintf(path, sizeof path, "%s/data", o.store);
    storage_options so = {.dir = path, .create_if_missing = true};
    if ((rc = storage_open(&so, &storage)) != 0) {
        BASE_ERROR("cli", "cannot open the storage at %s (error %d)", path, rc);
        goto cleanup;
    }
    if ((rc = hlc_clock_new(hlc_system_clock(), o.max_offset_ns, &clock)) != 0) {
        BASE_ERROR("cli", "cannot create the clock (error %d)", rc);
        goto cleanup;
    }
    srv_identity ident;
    if ((rc = srv_store_identity(storage, &ident)) != SRV_OK) {
        BASE_ERROR("cli", "cannot read the cluster identity of the store (error %d)", rc);
        goto cleanup;
    }
    /* Issue 8: without --join a new store becomes a one-node cluster; an
    ** old single-node store (data but no identity) keeps the local path. */
    char mark[CLI_PATH_SIZE_MAX];
    snprintf(mark, sizeof mark, "%s/%s", o.store, CLI_SINGLE_NODE_MARK);
    bool marked = access(mark, F_OK) == 0, legacy = false;
    if (!ident.initialized && o.n_join == 0 && !marked) { /* marked: ours, not legacy */
        if ((rc = srv_store_has_data(storage, &legacy)) != SRV_OK) {
            BASE_ERROR("cli", "cannot read the store (error %d)", rc);
            goto cleanup;
        }
        if (legacy)
            BASE_WARN("cli",
                      "store %s holds data written by a single node of an older version "
                      "(no cluster identity), so it opens the old way: a local single node "
                      "without a lock table, where concurrent transactions that touch the "
                      "same rows fail with SQLSTATE 40001 and must be retried by the "
                      "client; copy the data into a new store (started without --join) "
                      "to run it as a one-node cluster (docs/decisions/012-single-node-cluster.md)",
                      o.store);
    }
    bool single_node = !legacy && ((!ident.initialized && o.n_join == 0) || marked);
    if (single_node) hlc_epsilon_set_alone(clock, true); /* no other clock to differ from */
    if (ident.initialized || o.n_join > 0 || single_node) {
        if ((rc = start_cluster(&o, storage, clock, tls, rpc_tls, ca_path, url_path, single_node,
                                &node, url, sizeof url, &banner)) != 0)
            goto cleanup;
    } else {
        BASE_INFO("cli", "--listen-addr %s:%d recorded; a single node uses no RPC",
                  o.listen_host, o.listen_port);
        hlc_epsilon_set_alone(clock, true); /* single node: no other clock to differ from */
        txn_db_options to = {.engine = storage, .clock = clock, .sync_commits = true};
        if ((rc = txn_db_open(&to, &db)) != 0) {
            BASE_ERROR("cli", "cannot open the transaction layer (error %d)", rc);
            goto cleanup;
        }
        if ((rc = sqlv_engine_open(db, &engine)) != 0) {
            BASE_ERROR("cli", "cannot open the SQL engine (error %d)", rc);
            goto cleanup;
        }
        gw_options go = {.host = o.sql_host, .port = o.sql_port, .tls = tls,
                         .max_connections = o.max_sql_connections,
                         .max_connections_per_user = o.max_sql_connections_per_user};
        if ((rc = gw_start(engine, &go, &gw)) != 0) {
            BASE_ERROR("cli", "cannot serve SQL on %s:%d (error %d; is the port in use?)",
                       o.sql_host, o.sql_port, rc);
            goto cleanup;
        }
        int port = gw_port(gw);
        format_url(url, sizeof url, o.sql_host, port, tls != NULL ? ca_path : NULL);
        char url_line[sizeof url + 2];
        snprintf(url_line, sizeof url_line, "%s\n", url);
        if ((rc = write_file_atomic(url_path, url_line)) != 0) {
            BASE_ERROR("cli", "cannot write %s: %s", url_path, strerror(-rc));
            goto cleanup;
        }
        url_written = true;

        base_buf_printf(&banner,
                        "Meridian node ready (old local single node, %s).\n"
                        "sql:     %s\n"
                        "psql:    psql \"%s\"\n"
                        "shell:   meridian sql --url \"%s\"\n"
                        "listen:  %s:%d (not used: a store from before one-node clusters,"
                        " no lock table; see the WARN in the log)\n"
                        "store:   %s\n"
                        "logs:    %s/logs/meridian.log\n"
                        "pid:     %d\n",
                        tls != NULL ? "TLS" : "insecure", url, url, url, o.listen_host, o.listen_port, o.store, o.store, (int)getpid());
    }
    BASE_INFO("cli", "ready: %s", url);
    if (ready_fd >= 0) {
        const uint8_t *p = banner.data;
        size_t left = banner.len;
        while (left > 0) {
            ssize_t w = write(ready_fd, p, left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            p += w;
            left -= (size_t)w;
        }
        close(ready_fd);
        ready_fd = -1;
    } else if (banner.len > 0) {
        fwrite(banner.data, 1, banner.len, stdout);
        fflush(stdout);
    }

    for (;;) { /* ends at the first stop signal (SIGHUP only reloads) */
        struct signalfd_siginfo si;
        ssize_t r = read(sig_fd, &si, sizeof si);
        if (r < 0 && errno == EINTR) continue;
        if (r != (ssize_t)sizeof si) {
            BASE_ERROR("cli", "reading the signalfd: %s", strerror(errno));
            break;
        }
        if (si.ssi_signo == SIGHUP) {
            if (tls == NULL) {
                BASE_INFO("cli", "received SIGHUP: insecure node, no certificates to reload");
                continue;
            }
            char err[SEC_ERR_MSG_SIZE];
            /* The same files for SQL and RPC; each context keeps its
            ** current certificates when its reload fails. */
            int rrc = sec_tls_reload(rpc_tls[0], err, sizeof err);
            if (rrc == 0) rrc = sec_tls_reload(rpc_tls[1], err, sizeof err);
            if (rrc == 0) rrc = sec_tls_reload(tls, err, sizeof err);
            if (rrc == 0)
                BASE_INFO("cli", "received SIGHUP: TLS certificates reloaded from %s; new "
                          "connections (SQL and RPC) use them", o.certs_dir);
            else
                BASE_ERROR("cli", "received SIGHUP: TLS reload from %s failed, keeping the "
                           "current certificates: %s", o.certs_dir, err);
            continue;
        }
        BASE_INFO("cli", "received %s, shutting down", strsignal((int)si.ssi_signo));
        break;
    }
    status = atomic_load(&cluster_cb.fatal) ? CLI_EXIT_FAILURE : CLI_EXIT_OK;

cleanup:
    if (url_written || atomic_load(&cluster_cb.url_written)) unlink(url_path);
    if (node != NULL) srv_node_stop(node);
    if (gw != NULL) gw_stop(gw);
    if (tls != NULL) sec_tls_ctx_free(tls);
    sec_tls_ctx_free(rpc_tls[0]); /* after srv_node_stop: its transports borrow them */
    sec_tls_ctx_free(rpc_tls[1]);
    if (engine != NULL) sqlv_engine_close(engine);
    if (db != NULL) txn_db_close(db);
    if (clock != NULL) hlc_clock_free(clock);
    if (storage != NULL) storage_close(storage);
    if (status == CLI_EXIT_OK) BASE_INFO("cli", "stopped cleanly");
    else if (pid_written) BASE_ERROR("cli", "failed to start; exiting");
    if (pid_written) unlink(pid_path);
    if (ready_fd >= 0) close(ready_fd); /* the waiting parent sees EOF: failure */
    if (sig_fd >= 0) close(sig_fd);
    if (lock_fd >= 0) close(lock_fd);
    base_buf_free(&banner);
    base_log_set_file(NULL);
    return status;
}
