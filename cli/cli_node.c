/*
** cli/cli_node.c: the cluster commands of the `meridian` tool.
**   meridian init --host HOST:PORT         make a cluster of that node and
**                                          the nodes of its --join list
**   meridian node status --host HOST:PORT  the node table with liveness
**   meridian node drain --host HOST:PORT   that node hands its leases away
**   meridian node decommission ID [--wait=all|none] --host HOST:PORT
**   meridian node recommission ID --host HOST:PORT
**                                          move every replica off node ID
**                                          and retire it; undo while it runs
** All talk RPC (server/'s client calls) to the node's --listen-addr.
** --certs-dir DIR: over TLS, checking the node's certificate against
** DIR/ca.crt and the --host IP, and showing (decided, docs/security.md
** "Admin operations") the client certificate DIR/client.USER.crt of
** --user USER; without --user DIR/client.root.crt when it exists, else
** the node certificate DIR/node.crt. A client certificate may call only
** these admin methods, and only for root or a member of admin (the node
** says "permission denied: ..." otherwise). --insecure or neither:
** plaintext, which a TLS node refuses ("this node requires TLS").
** Exit codes: 0 ok; 1 the node refused or could not be reached (the message
** says which; "cluster already initialized" for a second init); 2 usage.
*/
#include "cli/cli_int.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "security/security.h"

#define CLI_INIT_TIMEOUT_MS (90 * 1000)
#define CLI_STATUS_TIMEOUT_MS (20 * 1000)
#define CLI_DRAIN_TIMEOUT_MS (10 * 60 * 1000)        /* CockroachDB's drain wait */
#define CLI_DECOMMISSION_TIMEOUT_MS (60 * 60 * 1000) /* a node of many ranges */
#define CLI_DEFAULT_NODE_HOST "127.0.0.1:26257"

/* What a command takes beyond the common flags: a node id (decommission,
** recommission) and --wait (decommission). NULL fields: not taken. */
typedef struct node_args {
    uint64_t *node_id; /* the one positional argument */
    bool *wait;        /* --wait=all (true, the default) | none */
} node_args;

/* A user name of a client certificate file (sec_cert_create_client's rule). */
static bool valid_user(const char *u) {
    size_t len = strlen(u);
    if (len == 0 || len > SEC_USER_SIZE_MAX || u[0] == '.' || u[0] == '-') return false;
    for (size_t i = 0; i < len; i++)
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", u[i]) ==
            NULL)
            return false;
    return true;
}

/* --host, --timeout, --certs-dir, --user and --insecure of every command,
** and extra's. 0, 1 (--help printed) or usage. *certs_dir: NULL for
** plaintext; *user: NULL when not given. */
static int parse_args(int argc, char **argv, const char *cmd, void (*usage)(FILE *),
                      srv_addr *addr, int64_t *timeout_ms, const char **certs_dir,
                      const char **user, const node_args *extra) {
    enum { F_HOST = 1000, F_TIMEOUT, F_CERTS, F_INSECURE, F_HELP, F_WAIT, F_USER };
    static const struct option longopts[] = {
        {"host", required_argument, NULL, F_HOST},
        {"timeout", required_argument, NULL, F_TIMEOUT},
        {"certs-dir", required_argument, NULL, F_CERTS},
        {"user", required_argument, NULL, F_USER},
        {"insecure", no_argument, NULL, F_INSECURE},
        {"help", no_argument, NULL, F_HELP},
        {"wait", required_argument, NULL, F_WAIT},
        {NULL, 0, NULL, 0},
    };
    const char *host = CLI_DEFAULT_NODE_HOST;
    bool insecure = false;
    *certs_dir = NULL;
    *user = NULL;
    optind = 0;
    opterr = 0;
    int opt;
    /* with a positional node id, flags may come after it (permuted) */
    const char *optstring = extra != NULL && extra->node_id != NULL ? "h" : "+h";
    while ((opt = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
        switch (opt) {
        case F_WAIT:
            if (extra == NULL || extra->wait == NULL) {
                fprintf(stderr, "meridian %s: unknown flag --wait\n", cmd);
                usage(stderr);
                return CLI_EXIT_USAGE;
            }
            if (strcmp(optarg, "all") == 0) *extra->wait = true;
            else if (strcmp(optarg, "none") == 0) *extra->wait = false;
            else {
                fprintf(stderr, "meridian %s: bad --wait \"%s\" (want all or none)\n", cmd,
                        optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case F_HOST: host = optarg; break;
        case F_TIMEOUT: {
            int64_t ns;
            if (cli_parse_duration_ns(optarg, &ns) != 0 || ns < 1000000) {
                fprintf(stderr, "meridian %s: bad --timeout \"%s\"\n", cmd, optarg);
                return CLI_EXIT_USAGE;
            }
            *timeout_ms = ns / 1000000;
            break;
        }
        case F_CERTS:
            if (optarg[0] == '\0' || strlen(optarg) >= CLI_PATH_SIZE_MAX - 64) {
                fprintf(stderr, "meridian %s: bad --certs-dir \"%s\"\n", cmd, optarg);
                return CLI_EXIT_USAGE;
            }
            *certs_dir = optarg;
            break;
        case F_USER:
            if (!valid_user(optarg)) {
                fprintf(stderr, "meridian %s: bad --user \"%s\"\n", cmd, optarg);
                return CLI_EXIT_USAGE;
            }
            *user = optarg;
            break;
        case F_INSECURE: insecure = true; break;
        case F_HELP:
        case 'h': usage(stdout); return 1;
        default:
            fprintf(stderr, "meridian %s: %s %s\n", cmd,
                    optopt >= F_HOST ? "missing value for" : "unknown flag", argv[optind - 1]);
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (extra != NULL && extra->node_id != NULL) {
        char *endp = NULL;
        unsigned long long id = 0;
        if (optind < argc) id = strtoull(argv[optind], &endp, 10);
        if (optind >= argc || endp == argv[optind] || *endp != '\0' || id == 0 ||
            id > (unsigned long long)INT64_MAX) { /* provisional ids are no node */
            fprintf(stderr, "meridian %s: want a node id (1, 2, ...)%s%s\n", cmd,
                    optind < argc ? ", not " : "", optind < argc ? argv[optind] : "");
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
        *extra->node_id = id;
        optind++;
    }
    if (optind < argc) {
        fprintf(stderr, "meridian %s: unexpected argument \"%s\"\n", cmd, argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (insecure && *certs_dir != NULL) {
        fprintf(stderr, "meridian %s: --certs-dir and --insecure exclude each other\n", cmd);
        return CLI_EXIT_USAGE;
    }
    if (*user != NULL && *certs_dir == NULL) {
        fprintf(stderr, "meridian %s: --user needs --certs-dir (it names the client "
                "certificate DIR/client.USER.crt)\n", cmd);
        return CLI_EXIT_USAGE;
    }
    char h[CLI_HOST_SIZE_MAX];
    int port;
    if (cli_parse_hostport(host, "127.0.0.1", CLI_DEFAULT_SQL_PORT, h, &port) != 0 || port == 0) {
        fprintf(stderr, "meridian %s: bad --host \"%s\" (want HOST:PORT)\n", cmd, host);
        return CLI_EXIT_USAGE;
    }
    base_strlcpy(addr->host, h, sizeof addr->host);
    addr->port = port;
    return 0;
}

/* TLS for the calls of this run (NULL certs_dir: plaintext): a client
** context showing DIR/client.USER.crt (--user), else DIR/client.root.crt
** when it exists, else DIR/node.crt. A client certificate runs the request
** as that user (root, or a member of admin: the node checks), a node
** certificate as the cluster itself: the user's is preferred, so that what
** an operator does is checked and logged as theirs. *out: owner caller,
** client_tls_free after the call. 0 or CLI_EXIT_FAILURE (message printed). */
static int client_tls(const char *cmd, const char *certs_dir, const char *user,
                      sec_tls_ctx **out) {
    *out = NULL;
    if (certs_dir == NULL) return 0;
    char path[CLI_PATH_SIZE_MAX + 96], name[SEC_USER_SIZE_MAX + 16];
    snprintf(name, sizeof name, "client.%s", user != NULL ? user : "root");
    snprintf(path, sizeof path, "%s/%s.crt", certs_dir, name);
    if (access(path, F_OK) != 0) {
        if (user != NULL) {
            fprintf(stderr, "meridian %s: %s has no client certificate for user \"%s\" (%s.crt): "
                    "create it with `meridian cert create-client %s`\n", cmd, certs_dir, user,
                    name, user);
            return CLI_EXIT_FAILURE;
        }
        snprintf(path, sizeof path, "%s/%s", certs_dir, SEC_NODE_CERT_FILE);
        if (access(path, F_OK) != 0) {
            fprintf(stderr,
                    "meridian %s: permission denied: %s has neither root's client certificate "
                    "(client.root.crt) nor a node certificate (node.crt); node commands need "
                    "one of them (or --user USER with client.USER.crt of a member of admin)\n",
                    cmd, certs_dir);
            return CLI_EXIT_FAILURE;
        }
        base_strlcpy(name, "node", sizeof name);
    }
    char err[SEC_ERR_MSG_SIZE];
    sec_tls_options o = {.cert_name = name};
    if (sec_tls_client_ctx_new(certs_dir, &o, out, err, sizeof err) != 0) {
        fprintf(stderr, "meridian %s: cannot load the TLS certificates of %s: %s\n", cmd,
                certs_dir, err);
        return CLI_EXIT_FAILURE;
    }
    srv_client_set_tls(*out);
    return 0;
}

static void client_tls_free(sec_tls_ctx *tls) {
    srv_client_set_tls(NULL);
    sec_tls_ctx_free(tls);
}

#define CLI_NODE_TLS_USAGE                                                                   \
    "  --certs-dir DIR   TLS, verifying the node with DIR/ca.crt and showing the\n"          \
    "                    client certificate DIR/client.root.crt if present, else the\n"     \
    "                    node certificate DIR/node.crt\n"                                    \
    "  --user USER       show DIR/client.USER.crt instead (USER must be root or a\n"         \
    "                    member of admin)\n"                                                  \
    "  --insecure        plaintext (the default; a node started with --certs-dir\n"          \
    "                    refuses it)\n"

static void init_usage(FILE *f) {
    fprintf(f,
            "usage: meridian init [--host HOST:PORT] [--timeout DURATION]\n"
            "                     [--certs-dir DIR [--user USER] | --insecure]\n"
            "Make a new cluster of the node listening at HOST:PORT (its --listen-addr,\n"
            "default %s) and of the uninitialized nodes of its --join list that\n"
            "answer. Node ids go 1 (that node), 2, 3, ... in --join order; the first\n"
            "range gets 3 replicas (fewer with fewer nodes). Fails with \"cluster already\n"
            "initialized\" on a node that is part of a cluster.\n" CLI_NODE_TLS_USAGE,
            CLI_DEFAULT_NODE_HOST);
}

int cli_init_main(int argc, char **argv) {
    srv_addr addr;
    int64_t timeout_ms = CLI_INIT_TIMEOUT_MS;
    const char *certs_dir, *user;
    sec_tls_ctx *tls;
    int rc = parse_args(argc, argv, "init", init_usage, &addr, &timeout_ms, &certs_dir, &user,
                        NULL);
    if (rc == 1) return CLI_EXIT_OK;
    if (rc != 0) return rc;
    if ((rc = client_tls("init", certs_dir, user, &tls)) != 0) return rc;
    uint64_t cluster_id;
    srv_peer *peers = NULL;
    size_t n = 0;
    char err[SRV_MESSAGE_SIZE_MAX] = "";
    rc = srv_client_init(&addr, timeout_ms, &cluster_id, &peers, &n, err, sizeof err);
    client_tls_free(tls);
    if (rc != SRV_OK) {
        fprintf(stderr, "meridian init: %s\n", err[0] ? err : "failed");
        return CLI_EXIT_FAILURE;
    }
    printf("Cluster %016" PRIx64 " initialized with %zu node%s:\n", cluster_id, n,
           n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        char rpc[SRV_HOST_SIZE_MAX + 16], sql[SRV_HOST_SIZE_MAX + 16];
        snprintf(rpc, sizeof rpc, "%s:%d", peers[i].rpc.host, peers[i].rpc.port);
        snprintf(sql, sizeof sql, "%s:%d", peers[i].sql.host, peers[i].sql.port);
        printf("  node %" PRIu64 "  rpc %s  sql %s\n", peers[i].node_id, rpc, sql);
    }
    base_free(peers);
    return CLI_EXIT_OK;
}

static void status_usage(FILE *f) {
    fprintf(f,
            "usage: meridian node status [--host HOST:PORT] [--timeout DURATION]\n"
            "                            [--certs-dir DIR [--user USER] | --insecure]\n"
            "The nodes of the cluster as the node at HOST:PORT (default %s) sees\n"
            "them: id, addresses, liveness (live, suspect once its liveness record\n"
            "expired, dead after --dead-after; with the time since its last\n"
            "heartbeat), membership (active, decommissioning, decommissioned),\n"
            "draining (yes after `meridian node drain`, until it restarts), replicas\n"
            "(from the range descriptors in meta for a dead or leaving node: its\n"
            "count falls as the replicate queue moves them) and leases held.\n"
            CLI_NODE_TLS_USAGE,
            CLI_DEFAULT_NODE_HOST);
}

static void drain_usage(FILE *f) {
    fprintf(f,
            "usage: meridian node drain [--host HOST:PORT] [--timeout DURATION]\n"
            "                           [--certs-dir DIR [--user USER] | --insecure]\n"
            "Drain the node at HOST:PORT (default %s) before stopping it: its\n"
            "liveness record says draining (no replica or lease is placed on it),\n"
            "new SQL connections on its RPC port are refused (57P01), and it hands\n"
            "every lease it holds to another live voter and keeps handing away any\n"
            "it gets. Prints \"leases left: N\" as it goes and exits 0 at 0; then\n"
            "stop the node (SIGTERM). Its replicas stay; a restart ends the drain.\n"
            "--timeout (default 10m): exit 1 if leases are still held then.\n"
            CLI_NODE_TLS_USAGE,
            CLI_DEFAULT_NODE_HOST);
}

static void decommission_usage(FILE *f) {
    fprintf(f,
            "usage: meridian node decommission ID [--wait=all|none] [--host HOST:PORT]\n"
            "                                  [--timeout DURATION]\n"
            "                                  [--certs-dir DIR [--user USER] | --insecure]\n"
            "       meridian node recommission ID [--host HOST:PORT] ...\n"
            "Decommission node ID through any node (HOST:PORT, default %s): it\n"
            "becomes decommissioning (never a target; the replicate queue moves each\n"
            "of its replicas to live nodes, reason \"decommission\" in the range event\n"
            "log), the command prints \"replicas left: N\" until 0, then marks it\n"
            "decommissioned and exits 0: it can be stopped with no range losing its\n"
            "quorum, and the other nodes refuse its rpc (it cannot rejoin with that\n"
            "id). Refused when fewer than the replication factor of live, active,\n"
            "not draining nodes would be left. --wait=none: mark it decommissioning\n"
            "and return at once (run it again with --wait=all to finish).\n"
            "--timeout (default 1h): exit 1 if replicas are left then (it stays\n"
            "decommissioning). recommission: back to active, while not finished.\n"
            CLI_NODE_TLS_USAGE,
            CLI_DEFAULT_NODE_HOST);
}

static void node_usage(FILE *f) {
    fprintf(f, "usage: meridian node status|drain|decommission|recommission ... (each has "
               "--help)\n\n");
    status_usage(f);
}

static int node_status_main(int argc, char **argv) {
    srv_addr addr;
    int64_t timeout_ms = CLI_STATUS_TIMEOUT_MS;
    const char *certs_dir, *user;
    sec_tls_ctx *tls;
    int rc = parse_args(argc, argv, "node status", status_usage, &addr, &timeout_ms, &certs_dir,
                        &user, NULL);
    if (rc == 1) return CLI_EXIT_OK;
    if (rc != 0) return rc;
    if ((rc = client_tls("node status", certs_dir, user, &tls)) != 0) return rc;
    srv_status s;
    char err[SRV_MESSAGE_SIZE_MAX] = "";
    rc = srv_client_status(&addr, timeout_ms, &s, err, sizeof err);
    client_tls_free(tls);
    if (rc != SRV_OK) {
        fprintf(stderr, "meridian node status: %s\n", err[0] ? err : "failed");
        return CLI_EXIT_FAILURE;
    }
    base_buf out = {0};
    rc = srv_status_format(&s, &out);
    if (rc == SRV_OK) fwrite(out.data, 1, out.len, stdout);
    base_buf_free(&out);
    srv_status_free(&s);
    if (rc != SRV_OK) {
        fprintf(stderr, "meridian node status: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

/* Progress lines, printed when something changed. */
typedef struct progress_state {
    bool any;
    uint32_t leases, replicas;
    bool recorded;
    uint8_t membership;
} progress_state;

static void drain_progress(void *ctx, const srv_drain_status *s) {
    progress_state *p = ctx;
    if (p->any && p->leases == s->leases && p->recorded == s->recorded) return;
    printf("node %" PRIu64 ": leases left: %" PRIu32 " (replicas: %" PRIu32 "%s)\n", s->node_id,
           s->leases, s->replicas, s->recorded ? "" : "; liveness record not updated yet");
    fflush(stdout);
    *p = (progress_state){.any = true, .leases = s->leases, .recorded = s->recorded};
}

static void decommission_progress(void *ctx, const srv_decommission_status *s) {
    progress_state *p = ctx;
    if (p->any && p->replicas == s->replicas && p->membership == s->membership) return;
    printf("node %" PRIu64 ": %s, %s, replicas left: %" PRIu32 "\n", s->node_id,
           srv_membership_name((srv_membership)s->membership),
           srv_liveness_name((srv_liveness)s->liveness), s->replicas);
    fflush(stdout);
    *p = (progress_state){.any = true, .replicas = s->replicas, .membership = s->membership};
}

static int node_drain_main(int argc, char **argv) {
    srv_addr addr;
    int64_t timeout_ms = CLI_DRAIN_TIMEOUT_MS;
    const char *certs_dir, *user;
    sec_tls_ctx *tls;
    int rc = parse_args(argc, argv, "node drain", drain_usage, &addr, &timeout_ms, &certs_dir,
                        &user, NULL);
    if (rc == 1) return CLI_EXIT_OK;
    if (rc != 0) return rc;
    if ((rc = client_tls("node drain", certs_dir, user, &tls)) != 0) return rc;
    srv_drain_status s;
    progress_state p = {0};
    char err[SRV_MESSAGE_SIZE_MAX] = "";
    rc = srv_client_drain(&addr, timeout_ms, drain_progress, &p, &s, err, sizeof err);
    client_tls_free(tls);
    if (rc != SRV_OK) {
        fprintf(stderr, "meridian node drain: %s\n", err[0] ? err : "failed");
        return CLI_EXIT_FAILURE;
    }
    printf("node %" PRIu64 " drained: it holds no lease; it can be stopped now\n", s.node_id);
    return CLI_EXIT_OK;
}

static int node_decommission_main(int argc, char **argv, srv_decommission_action action) {
    const char *cmd = action == SRV_DECOMMISSION ? "node decommission" : "node recommission";
    srv_addr addr;
    int64_t timeout_ms = CLI_DECOMMISSION_TIMEOUT_MS;
    const char *certs_dir, *user;
    sec_tls_ctx *tls;
    uint64_t id = 0;
    bool wait = true;
    node_args extra = {.node_id = &id, .wait = action == SRV_DECOMMISSION ? &wait : NULL};
    int rc = parse_args(argc, argv, cmd, decommission_usage, &addr, &timeout_ms, &certs_dir,
                        &user, &extra);
    if (rc == 1) return CLI_EXIT_OK;
    if (rc != 0) return rc;
    if ((rc = client_tls(cmd, certs_dir, user, &tls)) != 0) return rc;
    srv_decommission_status s;
    progress_state p = {0};
    char err[SRV_MESSAGE_SIZE_MAX] = "";
    rc = srv_client_decommission(&addr, id, action, wait, timeout_ms, decommission_progress, &p,
                                 &s, err, sizeof err);
    client_tls_free(tls);
    if (rc != SRV_OK) {
        fprintf(stderr, "meridian %s: %s\n", cmd, err[0] ? err : "failed");
        return CLI_EXIT_FAILURE;
    }
    if (action == SRV_DECOMMISSION && wait)
        printf("node %" PRIu64 " decommissioned: it holds no replica; it can be stopped now\n",
               id);
    return CLI_EXIT_OK;
}

int cli_node_main(int argc, char **argv) {
    const char *sub = argc >= 2 ? argv[1] : "";
    if (strcmp(sub, "status") == 0) return node_status_main(argc - 1, argv + 1);
    if (strcmp(sub, "drain") == 0) return node_drain_main(argc - 1, argv + 1);
    if (strcmp(sub, "decommission") == 0)
        return node_decommission_main(argc - 1, argv + 1, SRV_DECOMMISSION);
    if (strcmp(sub, "recommission") == 0)
        return node_decommission_main(argc - 1, argv + 1, SRV_RECOMMISSION);
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        node_usage(stdout);
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "meridian node: expected a subcommand: status, drain, decommission, "
                    "recommission\n");
    node_usage(stderr);
    return CLI_EXIT_USAGE;
}
