/*
** cli/cli_shell.c: `meridian sql`, the SQL shell on libpq and libedit.
**
** Three modes: -e "SQL" (one-shot, may repeat), statements on stdin when it
** is not a terminal (no prompts), and the interactive prompt with line
** editing and history in ~/.meridian_history. In every mode the input goes
** through the statement splitter and each complete statement is sent alone
** (simple query protocol); every result it yields is printed. A line that
** starts with a backslash when no statement is pending is a meta-command.
**
** Exit code: 0; 1 when a statement failed (non-interactive modes) or the
** connection failed; 2 for a bad command line.
**
** TLS: --certs-dir DIR connects with sslmode=verify-full and
** sslrootcert=DIR/ca.crt, plus sslcert/sslkey=DIR/client.USER.crt/.key when
** that certificate exists (USER: --user, else the URL's user); --insecure
** forces sslmode=disable; otherwise the URL's sslmode, or libpq's "prefer"
** when it has none (the default URL has none).
**
** Passwords (docs/security.md, "Authentication"): --password takes
** PGPASSWORD when it is set, else asks on the terminal without echo; without
** it libpq's own sources apply (PGPASSWORD, ~/.pgpass, the URL), and when
** the server asks for a password none of them gave, the shell asks on the
** terminal if there is one (as psql does). A password is never printed, and
** is wiped once the connection is made.
**
** Limits: CLI_EXEC_MAX -e options; CLI_HISTORY_MAX history entries; the
** splitter's CLI_STATEMENT_SIZE_MAX; SHELL_PASSWORD_SIZE_MAX.
*/
#include "cli/cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <editline/readline.h>

#define CLI_EXEC_MAX 256
/* The shell's default: CLI_DEFAULT_URL without its sslmode=disable, so
** that a secure node is reached with TLS (sslmode=prefer). */
#define SHELL_DEFAULT_URL "postgresql://root@127.0.0.1:26257/defaultdb"
#define SHELL_PATH_SIZE_MAX 4096
#define SHELL_CONN_PARAMS_MAX 16
#define CLI_HISTORY_MAX 1000
#define SHELL_PASSWORD_SIZE_MAX 1024
#define CLI_PROMPT "meridian> "
#define CLI_PROMPT_CONT "       -> "

typedef struct shell {
    PGconn *conn;
    bool timing;
    bool interactive;
    bool failed;    /* some statement failed */
    bool quit;      /* \q seen */
    bool conn_lost; /* the connection broke and could not be restored */
} shell;

/* The query being run, for SIGINT -> CancelRequest. PQcancel is documented
** as safe to call from a signal handler. */
static PGcancel *volatile running_cancel;
/* Set by SIGINT: at the prompt, ^C drops the statement being typed. */
static volatile sig_atomic_t sigint_seen;

static void on_sigint(int sig) {
    (void)sig;
    sigint_seen = 1;
    PGcancel *c = running_cancel;
    if (c != NULL) {
        char errbuf[256];
        (void)PQcancel(c, errbuf, sizeof errbuf);
    }
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: meridian sql [--url URL] [--host HOST:PORT] [--user USER]\n"
            "                    [--database DB] [--certs-dir DIR | --insecure] [--password]\n"
            "                    [-e SQL]...\n"
            "  --url URL          postgresql://... (default %s)\n"
            "  --certs-dir DIR    TLS, verifying the node with DIR/ca.crt (verify-full);\n"
            "                     DIR/client.USER.crt/.key as client certificate if present\n"
            "  --insecure         no TLS (sslmode=disable)\n"
            "  --host HOST:PORT   override the URL's host and port\n"
            "  --user USER        override the URL's user\n"
            "  --database DB      override the URL's database (-d)\n"
            "  --password         log in with a password: PGPASSWORD if set, else asked\n"
            "                     on the terminal (without echo)\n"
            "  -e, --execute SQL  run SQL and exit (may repeat)\n"
            "Without -e, statements come from stdin when it is not a terminal.\n",
            SHELL_DEFAULT_URL);
}

/* The user the connection will log in as: --user, else the URL's; NULL
** when neither names one. out: SHELL_PATH_SIZE_MAX bytes. */
static const char *conn_user(const char *url, const char *user, char *out) {
    if (user != NULL) return user;
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    const char *found = NULL;
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "user") == 0 && o->val != NULL && o->val[0] != '\0') {
            base_strlcpy(out, o->val, SHELL_PATH_SIZE_MAX);
            found = out;
        }
    }
    PQconninfoFree(opts);
    return found;
}

/* Ask for user's password on the terminal, without echo. 0, or -1 (no
** terminal, or nothing read). out: size bytes, NUL-terminated. */
static int ask_password(const char *user, char *out, size_t size) {
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct termios old, quiet;
    bool restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t)~(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        (void)tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    char prompt[160];
    int n = snprintf(prompt, sizeof prompt, "Password for user %.100s: ", user ? user : "root");
    if (n > 0) (void)!write(fd, prompt, (size_t)n);
    size_t len = 0;
    int rc = -1;
    for (;;) { /* one byte at a time: bounded by size */
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (c == '\n' || c == '\r') {
            rc = 0;
            break;
        }
        if (len + 1 < size) out[len++] = c;
    }
    out[len] = '\0';
    if (restore) (void)tcsetattr(fd, TCSAFLUSH, &old);
    (void)!write(fd, "\n", 1);
    close(fd);
    return rc;
}

static void help_meta(void) {
    printf("Meta-commands (at the start of a line):\n"
           "  \\q              quit\n"
           "  \\?              this help\n"
           "  \\timing [on|off] show how long each statement takes\n"
           "Statements end with ';' and may span lines.\n");
}

static void notice_processor(void *arg, const char *message) {
    (void)arg;
    fflush(stdout);
    fputs(message, stderr);
}

/* Run one meta-command line ("\q", "\timing on"). */
static void run_meta(shell *sh, const char *line) {
    char cmd[64] = {0}, arg[64] = {0};
    if (sscanf(line, "%63s %63s", cmd, arg) < 1) return;
    if (strcmp(cmd, "\\q") == 0 || strcmp(cmd, "\\quit") == 0) {
        sh->quit = true;
    } else if (strcmp(cmd, "\\?") == 0 || strcmp(cmd, "\\help") == 0 || strcmp(cmd, "\\h") == 0) {
        help_meta();
    } else if (strcmp(cmd, "\\timing") == 0) {
        if (arg[0] == '\0') sh->timing = !sh->timing;
        else if (strcmp(arg, "on") == 0) sh->timing = true;
        else if (strcmp(arg, "off") == 0) sh->timing = false;
        else {
            fprintf(stderr, "\\timing: expected on or off, got \"%s\"\n", arg);
            sh->failed = true;
            return;
        }
        printf("Timing is %s.\n", sh->timing ? "on" : "off");
    } else {
        fprintf(stderr, "invalid command %s: try \\? for help\n", cmd);
        sh->failed = true;
    }
    fflush(stdout);
}

static void run_statement(shell *sh, const char *sql) {
    if (PQstatus(sh->conn) == CONNECTION_BAD) {
        if (!sh->interactive) {
            sh->conn_lost = true;
            return;
        }
        PQreset(sh->conn);
        if (PQstatus(sh->conn) == CONNECTION_BAD) {
            fprintf(stderr, "ERROR: not connected: %s", PQerrorMessage(sh->conn));
            sh->failed = true;
            return;
        }
        fprintf(stderr, "reconnected\n");
    }
    int64_t t0 = base_monotonic_ns();
    if (!PQsendQuery(sh->conn, sql)) {
        fprintf(stderr, "ERROR: %s", PQerrorMessage(sh->conn));
        sh->failed = true;
    } else {
        running_cancel = PQgetCancel(sh->conn);
        PGresult *res;
        while ((res = PQgetResult(sh->conn)) != NULL) {
            if (cli_print_result(res, stdout, stderr) != 0) sh->failed = true;
            PQclear(res);
        }
        PGcancel *c = running_cancel;
        running_cancel = NULL;
        if (c != NULL) PQfreeCancel(c);
    }
    if (sh->timing) printf("Time: %.3f ms\n", (double)(base_monotonic_ns() - t0) / 1e6);
    fflush(stdout);
    fflush(stderr);
    if (PQstatus(sh->conn) == CONNECTION_BAD) {
        fprintf(stderr, "ERROR: connection to the server was lost\n");
        sh->failed = true;
        if (!sh->interactive) sh->conn_lost = true;
    }
}

/* Feed text to the splitter and run every statement it completes. */
static void run_text(shell *sh, cli_splitter *sp, const char *text, size_t len) {
    int rc = cli_splitter_push(sp, text, len);
    if (rc != 0) {
        fprintf(stderr, "ERROR: statement too large (limit %u bytes) or out of memory\n",
                CLI_STATEMENT_SIZE_MAX);
        sh->failed = true;
        return;
    }
    char *stmt = NULL;
    while (!sh->conn_lost && (rc = cli_splitter_next(sp, &stmt)) == 1) {
        run_statement(sh, stmt);
        base_free(stmt);
    }
    if (rc < 0) {
        fprintf(stderr, "ERROR: out of memory\n");
        sh->failed = true;
    }
}

static void run_rest(shell *sh, cli_splitter *sp) {
    char *stmt = NULL;
    int rc;
    while (!sh->conn_lost && (rc = cli_splitter_finish(sp, &stmt)) == 1) {
        run_statement(sh, stmt);
        base_free(stmt);
    }
    cli_splitter_reset(sp);
}

static bool is_meta_line(const cli_splitter *sp, const char *line) {
    if (cli_splitter_pending(sp)) return false;
    while (*line == ' ' || *line == '\t') line++;
    return *line == '\\';
}

static void run_stdin(shell *sh) {
    cli_splitter sp;
    cli_splitter_init(&sp);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (!sh->quit && !sh->conn_lost && (n = getline(&line, &cap, stdin)) >= 0) {
        if (is_meta_line(&sp, line)) {
            if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
            run_meta(sh, line);
            continue;
        }
        run_text(sh, &sp, line, (size_t)n);
    }
    free(line); /* allocated by getline */
    if (!sh->quit) run_rest(sh, &sp);
    cli_splitter_free(&sp);
}

static void history_path(char *out, size_t size) {
    const char *home = getenv("HOME");
    out[0] = '\0';
    if (home != NULL && home[0] != '\0') snprintf(out, size, "%s/.meridian_history", home);
}

static void run_interactive(shell *sh) {
    char hist_file[4096];
    history_path(hist_file, sizeof hist_file);
    using_history();
    stifle_history(CLI_HISTORY_MAX);
    if (hist_file[0]) read_history(hist_file);

    printf("# Welcome to the Meridian SQL shell.\n"
           "# Connected to %s:%s, database %s, as %s.\n"
           "# Statements end with ';'. Type \\? for help, \\q to quit.\n",
           PQhost(sh->conn), PQport(sh->conn), PQdb(sh->conn), PQuser(sh->conn));

    cli_splitter sp;
    cli_splitter_init(&sp);
    base_buf entry = {0}; /* the lines of the statement, for the history */
    while (!sh->quit) {
        sigint_seen = 0;
        char *line = readline(cli_splitter_pending(&sp) ? CLI_PROMPT_CONT : CLI_PROMPT);
        if (line == NULL && sigint_seen) { /* ^C: forget the input, new prompt */
            printf("\n");
            cli_splitter_reset(&sp);
            base_buf_reset(&entry);
            continue;
        }
        if (line == NULL) { /* ^D */
            printf("\n");
            break;
        }
        if (is_meta_line(&sp, line)) {
            add_history(line);
            run_meta(sh, line);
            free(line); /* allocated by readline */
            continue;
        }
        if (entry.len > 0) base_buf_append_byte(&entry, ' ');
        base_buf_append(&entry, line, strlen(line));
        size_t len = strlen(line);
        line[len] = '\n'; /* readline strips it; the splitter needs it */
        run_text(sh, &sp, line, len + 1);
        line[len] = '\0';
        free(line); /* allocated by readline */
        if (!cli_splitter_pending(&sp)) {
            if (entry.len > 0 && base_buf_append_byte(&entry, '\0') == 0) {
                bool blank = strspn((const char *)entry.data, " \t") == entry.len - 1;
                if (!blank) add_history((const char *)entry.data);
            }
            base_buf_reset(&entry);
        }
    }
    base_buf_free(&entry);
    cli_splitter_free(&sp);
    if (hist_file[0]) write_history(hist_file);
    clear_history();
}

int cli_sql_main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"host", required_argument, NULL, 'H'},
        {"user", required_argument, NULL, 'U'},
        {"database", required_argument, NULL, 'd'},
        {"execute", required_argument, NULL, 'e'},
        {"certs-dir", required_argument, NULL, 'C'},
        {"insecure", no_argument, NULL, 'I'},
        {"password", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = SHELL_DEFAULT_URL, *hostport = NULL, *user = NULL, *database = NULL;
    const char *certs_dir = NULL;
    bool insecure = false, want_password = false;
    const char *execs[CLI_EXEC_MAX];
    int nexec = 0, opt;
    optind = 0; /* reinitialize getopt for this subcommand */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+e:d:U:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'u': url = optarg; break;
        case 'H': hostport = optarg; break;
        case 'U': user = optarg; break;
        case 'd': database = optarg; break;
        case 'C': certs_dir = optarg; break;
        case 'I': insecure = true; break;
        case 'P': want_password = true; break;
        case 'e':
            if (nexec == CLI_EXEC_MAX) {
                fprintf(stderr, "meridian sql: at most %d -e options\n", CLI_EXEC_MAX);
                return CLI_EXIT_USAGE;
            }
            execs[nexec++] = optarg;
            break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default:
            fprintf(stderr, "meridian sql: unknown option, or option without its value: %s\n",
                    argv[optind - 1]);
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "meridian sql: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }

    if (certs_dir != NULL && insecure) {
        fprintf(stderr, "meridian sql: --certs-dir and --insecure exclude each other\n");
        return CLI_EXIT_USAGE;
    }
    if (certs_dir != NULL && (certs_dir[0] == '\0' ||
                              strlen(certs_dir) > SHELL_PATH_SIZE_MAX - 2 * CLI_HOST_SIZE_MAX)) {
        fprintf(stderr, "meridian sql: bad --certs-dir \"%s\"\n", certs_dir);
        return CLI_EXIT_USAGE;
    }

    char host[CLI_HOST_SIZE_MAX], port[16];
    char root_cert[SHELL_PATH_SIZE_MAX], client_cert[SHELL_PATH_SIZE_MAX],
        client_key[SHELL_PATH_SIZE_MAX], user_buf[SHELL_PATH_SIZE_MAX];
    const char *keys[SHELL_CONN_PARAMS_MAX], *vals[SHELL_CONN_PARAMS_MAX];
    int k = 0;
    keys[k] = "dbname"; vals[k++] = url; /* expanded: a URL or conninfo */
    if (hostport != NULL) {
        int p;
        if (cli_parse_hostport(hostport, "127.0.0.1", CLI_DEFAULT_SQL_PORT, host, &p) != 0) {
            fprintf(stderr, "meridian sql: bad --host \"%s\" (want HOST:PORT)\n", hostport);
            return CLI_EXIT_USAGE;
        }
        snprintf(port, sizeof port, "%d", p);
        keys[k] = "host"; vals[k++] = host;
        keys[k] = "port"; vals[k++] = port;
    }
    if (user != NULL) { keys[k] = "user"; vals[k++] = user; }
    if (database != NULL) { keys[k] = "dbname"; vals[k++] = database; }
    if (insecure) { keys[k] = "sslmode"; vals[k++] = "disable"; }
    if (certs_dir != NULL) {
        snprintf(root_cert, sizeof root_cert, "%s/ca.crt", certs_dir);
        keys[k] = "sslmode"; vals[k++] = "verify-full";
        keys[k] = "sslrootcert"; vals[k++] = root_cert;
        const char *u = conn_user(url, user, user_buf);
        if (u != NULL && strlen(u) < CLI_HOST_SIZE_MAX && strchr(u, '/') == NULL) {
            snprintf(client_cert, sizeof client_cert, "%s/client.%s.crt", certs_dir, u);
            snprintf(client_key, sizeof client_key, "%s/client.%s.key", certs_dir, u);
            if (access(client_cert, R_OK) == 0 && access(client_key, R_OK) == 0) {
                keys[k] = "sslcert"; vals[k++] = client_cert;
                keys[k] = "sslkey"; vals[k++] = client_key;
            }
        }
    }
    keys[k] = "connect_timeout"; vals[k++] = "10";
    keys[k] = "application_name"; vals[k++] = "meridian sql";
    /* the password, when there is one, goes last (k is bounded: at most
    ** 13 of SHELL_CONN_PARAMS_MAX entries are ever used) */
    char password[SHELL_PASSWORD_SIZE_MAX];
    int password_at = k;
    password[0] = '\0';
    const char *pw_user = conn_user(url, user, user_buf);
    if (want_password) {
        const char *env = getenv("PGPASSWORD");
        if (env != NULL) {
            base_strlcpy(password, env, sizeof password);
        } else if (ask_password(pw_user, password, sizeof password) != 0) {
            fprintf(stderr, "meridian sql: --password: no terminal to ask on (set PGPASSWORD)\n");
            return CLI_EXIT_USAGE;
        }
        keys[k] = "password"; vals[k++] = password;
    }
    keys[k] = NULL; vals[k] = NULL;

    shell sh = {0};
    sh.conn = PQconnectdbParams(keys, vals, 1);
    if (sh.conn != NULL && PQstatus(sh.conn) != CONNECTION_OK && !want_password &&
        PQconnectionNeedsPassword(sh.conn) && isatty(STDIN_FILENO) &&
        ask_password(pw_user, password, sizeof password) == 0) {
        /* the server asked for a password none of libpq's sources had */
        PQfinish(sh.conn);
        keys[password_at] = "password"; vals[password_at] = password;
        keys[password_at + 1] = NULL; vals[password_at + 1] = NULL;
        sh.conn = PQconnectdbParams(keys, vals, 1);
    }
    explicit_bzero(password, sizeof password);
    if (sh.conn == NULL || PQstatus(sh.conn) != CONNECTION_OK) {
        fprintf(stderr, "ERROR: cannot connect: %s",
                sh.conn ? PQerrorMessage(sh.conn) : "out of memory\n");
        PQfinish(sh.conn);
        return CLI_EXIT_FAILURE;
    }
    PQsetNoticeProcessor(sh.conn, notice_processor, NULL);

    struct sigaction sa = {0}, old_int;
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    signal(SIGPIPE, SIG_IGN);

    if (nexec > 0) {
        cli_splitter sp;
        cli_splitter_init(&sp);
        for (int i = 0; i < nexec && !sh.quit && !sh.conn_lost; i++) {
            if (is_meta_line(&sp, execs[i])) {
                run_meta(&sh, execs[i]);
                continue;
            }
            run_text(&sh, &sp, execs[i], strlen(execs[i]));
            run_rest(&sh, &sp); /* each -e is complete on its own */
        }
        cli_splitter_free(&sp);
    } else if (!isatty(STDIN_FILENO)) {
        run_stdin(&sh);
    } else {
        sh.interactive = true;
        run_interactive(&sh);
    }
    sigaction(SIGINT, &old_int, NULL);
    PQfinish(sh.conn);
    if (sh.interactive) return CLI_EXIT_OK;
    return (sh.failed || sh.conn_lost) ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
