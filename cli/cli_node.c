/*
** cli/cli_node.c: the cluster commands of the `meridian` tool.
**   meridian init --host HOST:PORT         make a cluster of that node and
**                                          the nodes of its --join list
**   meridian node status --host HOST:PORT  the node table with liveness
** Both talk RPC (server/'s client calls) to the node's --listen-addr.
** --certs-dir DIR: over TLS with DIR/node.crt (node-to-node RPC accepts
** node certificates only, so run them where one is, e.g. on a node),
** checking the node's certificate against DIR/ca.crt and the --host IP;
** --insecure or neither: plaintext, which a TLS node refuses ("this node
** requires TLS").
** Exit codes: 0 ok; 1 the node refused or could not be reached (the message
** says which; "cluster already initialized" for a second init); 2 usage.
*/
#include "cli/cli_int.h"

#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "security/security.h"

#define CLI_INIT_TIMEOUT_MS (90 * 1000)
#define CLI_STATUS_TIMEOUT_MS (20 * 1000)
#define CLI_DEFAULT_NODE_HOST "127.0.0.1:26257"

/* --host, --timeout, --certs-dir and --insecure of both commands. 0, 1
** (--help printed) or usage. *certs_dir: NULL for plaintext. */
static int parse_common(int argc, char **argv, const char *cmd, void (*usage)(FILE *),
                        srv_addr *addr, int64_t *timeout_ms, const char **certs_dir) {
    enum { F_HOST = 1000, F_TIMEOUT, F_CERTS, F_INSECURE, F_HELP };
    static const struct option longopts[] = {
        {"host", required_argument, NULL, F_HOST},
        {"timeout", required_argument, NULL, F_TIMEOUT},
        {"certs-dir", required_argument, NULL, F_CERTS},
        {"insecure", no_argument, NULL, F_INSECURE},
        {"help", no_argument, NULL, F_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *host = CLI_DEFAULT_NODE_HOST;
    bool insecure = false;
    *certs_dir = NULL;
    optind = 0;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (opt) {
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
    if (optind < argc) {
        fprintf(stderr, "meridian %s: unexpected argument \"%s\"\n", cmd, argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (insecure && *certs_dir != NULL) {
        fprintf(stderr, "meridian %s: --certs-dir and --insecure exclude each other\n", cmd);
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

/* TLS for the calls of this run: a client context with the node
** certificate of certs_dir (NULL: plaintext). *out: owner caller,
** client_tls_free after the call. 0 or CLI_EXIT_FAILURE (message printed). */
static int client_tls(const char *cmd, const char *certs_dir, sec_tls_ctx **out) {
    *out = NULL;
    if (certs_dir == NULL) return 0;
    char err[SEC_ERR_MSG_SIZE];
    sec_tls_options o = {.cert_name = "node"};
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
    "  --certs-dir DIR   TLS with DIR/ca.crt and the node certificate DIR/node.crt\n"        \
    "  --insecure        plaintext (the default; a node started with --certs-dir\n"          \
    "                    refuses it)\n"

static void init_usage(FILE *f) {
    fprintf(f,
            "usage: meridian init [--host HOST:PORT] [--timeout DURATION]\n"
            "                     [--certs-dir DIR | --insecure]\n"
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
    const char *certs_dir;
    sec_tls_ctx *tls;
    int rc = parse_common(argc, argv, "init", init_usage, &addr, &timeout_ms, &certs_dir);
    if (rc == 1) return CLI_EXIT_OK;
    if (rc != 0) return rc;
    if ((rc = client_tls("init", certs_dir, &tls)) != 0) return rc;
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
            "                            [--certs-dir DIR | --insecure]\n"
            "The nodes of the cluster as the node at HOST:PORT (default %s) sees\n"
            "them: id, addresses, liveness (live, suspect once its liveness record\n"
            "expired, dead after --dead-after; with the time since its last\n"
            "heartbeat), replicas (from the range descriptors in meta: a dead\n"
            "node's count falls as the replicate queue moves them) and leases held.\n"
            CLI_NODE_TLS_USAGE,
            CLI_DEFAULT_NODE_HOST);
}

int cli_node_main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "status") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            status_usage(stdout);
            return CLI_EXIT_OK;
        }
        fprintf(stderr, "meridian node: expected a subcommand: status\n");
        status_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    srv_addr addr;
    int64_t timeout_ms = CLI_STATUS_TIMEOUT_MS;
    const char *certs_dir;
    sec_tls_ctx *tls;
    int rc = parse_common(argc - 1, argv + 1, "node status", status_usage, &addr, &timeout_ms,
                          &certs_dir);
    if (rc == 1) return CLI_EXIT_OK;
    if (rc != 0) return rc;
    if ((rc = client_tls("node status", certs_dir, &tls)) != 0) return rc;
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
