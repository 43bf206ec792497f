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
** Secure by default: --certs-dir DIR (ca.crt, node.crt, node.key) serves
** SQL over TLS only; --insecure serves it in the clear; neither is a usage
** error (exit 2) naming both, and so is both.
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
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/gateway.h"
#include "security/security.h"
#include "sql/sql.h"
#include "storage/storage.h"
#include "timestamp/timestamp.h"
#include "txn/txn.h"

#define CLI_PATH_SIZE_MAX 4096
#define CLI_BACKGROUND_WAIT_MS (120 * 1000) /* parent waits this long for ready */
#define CLI_DEFAULT_STORE "meridian-data"

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
} start_options;

static void usage(FILE *f) {
    fprintf(f,
            "usage: meridian start [flags]\n"
            "  --store DIR              data directory (default ./%s)\n"
            "  --sql-addr HOST:PORT     PostgreSQL protocol address (default 127.0.0.1:%d;\n"
            "                           port 0 picks a free port, see STORE/sql-url)\n"
            "  --listen-addr HOST:PORT  node-to-node RPC address (default 127.0.0.1:%d;\n"
            "                           recorded for the multi-node version, not used yet)\n"
            "  --max-offset DURATION    the largest clock offset tolerated between nodes\n"
            "                           (default 250ms; units ns, us, ms, s)\n"
            "  --certs-dir DIR          TLS certificates: DIR/ca.crt, DIR/node.crt and\n"
            "                           DIR/node.key (see meridian cert); SIGHUP reloads them\n"
            "  --insecure               no TLS, no authentication (local demos only)\n"
            "  one of --certs-dir and --insecure is required\n"
            "  --log-level LEVEL        debug, info, warn or error (default info)\n"
            "  --background             return once the node is ready; it keeps running\n",
            CLI_DEFAULT_STORE, CLI_DEFAULT_SQL_PORT, CLI_DEFAULT_LISTEN_PORT);
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

/* 0, 1 for --help, or CLI_EXIT_USAGE (message printed). */
static int parse_flags(int argc, char **argv, start_options *o) {
    enum { F_STORE = 1000, F_SQL, F_LISTEN, F_OFFSET, F_INSECURE, F_LOG, F_BG, F_CLOCK, F_HELP,
           F_CERTS };
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
            break;
        case F_LISTEN:
            if (cli_parse_hostport(optarg, "127.0.0.1", CLI_DEFAULT_LISTEN_PORT, o->listen_host,
                                   &o->listen_port) != 0)
                return usage_error("bad --listen-addr \"%s\" (want HOST:PORT)", optarg);
            break;
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

/* mkdir -p. 0 or -errno. */
static int mkdir_p(const char *path) {
    char tmp[CLI_PATH_SIZE_MAX];
    base_strlcpy(tmp, path, sizeof tmp);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -errno;
    struct stat st;
    if (stat(tmp, &st) != 0) return -errno;
    if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
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
** clients verify the node with (sslmode=verify-full). */
static void format_url(char *out, size_t size, const char *host, int port, const char *ca_path) {
    bool v6 = strchr(host, ':') != NULL;
    if (ca_path == NULL)
        snprintf(out, size, "postgresql://root@%s%s%s:%d/defaultdb?sslmode=disable",
                 v6 ? "[" : "", host, v6 ? "]" : "", port);
    else
        snprintf(out, size, "postgresql://root@%s%s%s:%d/defaultdb?sslmode=verify-full&sslrootcert=%s",
                 v6 ? "[" : "", host, v6 ? "]" : "", port, ca_path);
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

int cli_start_main(int argc, char **argv) {
    start_options o;
    int rc = parse_flags(argc, argv, &o);
    if (rc == 1) return CLI_EXIT_OK;
    if (rc != 0) return rc;

    int status = CLI_EXIT_FAILURE, lock_fd = -1, sig_fd = -1, ready_fd = -1;
    storage_engine *storage = NULL;
    hlc_clock *clock = NULL;
    txn_db *db = NULL;
    sqlv_engine *engine = NULL;
    gw_server *gw = NULL;
    sec_tls_ctx *tls = NULL;
    char ca_path[CLI_PATH_SIZE_MAX] = "";
    bool pid_written = false, url_written = false;
    char path[CLI_PATH_SIZE_MAX], pid_path[CLI_PATH_SIZE_MAX], url_path[CLI_PATH_SIZE_MAX];
    char url[CLI_HOST_SIZE_MAX + CLI_PATH_SIZE_MAX + 160];
    base_buf banner = {0};

    if ((rc = mkdir_p(o.store)) != 0) {
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
    if ((rc = mkdir_p(path)) != 0) {
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
        char abs[CLI_PATH_SIZE_MAX];
        if (realpath(o.certs_dir, abs) == NULL) base_strlcpy(abs, o.certs_dir, sizeof abs);
        snprintf(ca_path, sizeof ca_path, "%.*s/%s", (int)(sizeof ca_path - 16), abs,
                 SEC_CA_CERT_FILE);
        BASE_INFO("cli", "TLS on: certificates from %s (SQL clients must use TLS)", o.certs_dir);
    } else {
        BASE_WARN("cli", "running --insecure: SQL connections are neither encrypted nor "
                  "authenticated");
    }
    BASE_INFO("cli", "--listen-addr %s:%d recorded; node-to-node RPC arrives with the cluster",
              o.listen_host, o.listen_port);
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
    gw_options go = {.host = o.sql_host, .port = o.sql_port, .tls = tls};
    if ((rc = gw_start(engine, &go, &gw)) != 0) {
        BASE_ERROR("cli", "cannot serve SQL on %s:%d (error %d; is the port in use?)", o.sql_host,
                   o.sql_port, rc);
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
                    "Meridian node ready (single node, %s).\n"
                    "sql:     %s\n"
                    "psql:    psql \"%s\"\n"
                    "shell:   meridian sql --url \"%s\"\n"
                    "listen:  %s:%d (node-to-node RPC, not used yet)\n"
                    "store:   %s\n"
                    "logs:    %s/logs/meridian.log\n"
                    "pid:     %d\n",
                    tls != NULL ? "TLS" : "insecure", url, url, url, o.listen_host, o.listen_port, o.store, o.store, (int)getpid());
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
            if (sec_tls_reload(tls, err, sizeof err) == 0)
                BASE_INFO("cli", "received SIGHUP: TLS certificates reloaded from %s; new "
                          "connections use them", o.certs_dir);
            else
                BASE_ERROR("cli", "received SIGHUP: TLS reload from %s failed, keeping the "
                           "current certificates: %s", o.certs_dir, err);
            continue;
        }
        BASE_INFO("cli", "received %s, shutting down", strsignal((int)si.ssi_signo));
        break;
    }
    status = CLI_EXIT_OK;

cleanup:
    if (url_written) unlink(url_path);
    if (gw != NULL) gw_stop(gw);
    if (tls != NULL) sec_tls_ctx_free(tls);
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
