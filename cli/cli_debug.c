/*
** cli/cli_debug.c: `meridian debug`, hidden test-only commands (not in
** `meridian help`): the fault control of the chaos harness (docs/chaos.md,
** "latency", "loss", "disk"). The node must have been started with the
** hidden --enable-test-faults; any other node refuses.
**
**   meridian debug net-fault --host H:P [--peer ID] [--delay D] [--jitter D]
**                            [--loss P] [--clear-all]
**       frames node H:P receives (from node ID, else from every peer) are
**       delayed by D (+ up to the jitter) and lost with probability P in
**       [0, 1]; --delay 0 --loss 0 (the defaults) removes that fault.
**   meridian debug disk-fault --host H:P (--fail | --stall D | --clear)
**       the next fdatasync of the node's shared Raft log fails (the node
**       then exits with status 74) / every one in the next D waits until D
**       has passed / no disk fault.
**   meridian debug store-fault --host H:P (--fail | --stall D | --clear)
**       the same for the node's RocksDB store: its next synced write or WAL
**       sync fails (the node exits with status 74) / they stall / none.
**   meridian debug faults --host H:P
**       the node's faults now.
** Each prints the node's faults after the change (one line). Plaintext or
** --certs-dir as `meridian node`. Exit codes: 0 ok, 1 refused or
** unreachable, 2 usage.
*/
#include "cli/cli_int.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "raft/raft.h"
#include "rpc/rpc.h"
#include "security/security.h"

#define CLI_DEBUG_TIMEOUT_MS 10000
#define CLI_DEBUG_DEFAULT_HOST "127.0.0.1:26257"

static void usage(FILE *f) {
    fprintf(f,
            "usage (test-only; the node needs --enable-test-faults):\n"
            "  meridian debug net-fault --host H:P [--peer ID] [--delay D] [--jitter D]\n"
            "                           [--loss P] [--clear-all]\n"
            "  meridian debug disk-fault --host H:P (--fail | --stall D | --clear)\n"
            "  meridian debug store-fault --host H:P (--fail | --stall D | --clear)\n"
            "  meridian debug faults --host H:P\n"
            "  common: [--timeout D] [--certs-dir DIR | --insecure]\n");
}

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "meridian debug: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    usage(stderr);
    return CLI_EXIT_USAGE;
}

/* A duration in whole ms in [0, max_ms]. 0 or -1. */
static int parse_ms(const char *s, int64_t max_ms, uint32_t *out) {
    int64_t ns;
    if (cli_parse_duration_ns(s, &ns) != 0 || ns < 0 || ns / 1000000 > max_ms) return -1;
    *out = (uint32_t)(ns / 1000000);
    return 0;
}

int cli_debug_main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    srv_fault_request q = {0};
    const char *sub = argv[1];
    if (strcmp(sub, "net-fault") == 0) q.kind = SRV_FAULT_NET;
    else if (strcmp(sub, "disk-fault") == 0) q.kind = SRV_FAULT_DISK;
    else if (strcmp(sub, "store-fault") == 0) q.kind = SRV_FAULT_STORE;
    else if (strcmp(sub, "faults") == 0) q.kind = SRV_FAULT_SHOW;
    else return usage_error("unknown command \"%s\"", sub);

    enum { F_HOST = 1000, F_PEER, F_DELAY, F_JITTER, F_LOSS, F_CLEAR_ALL, F_FAIL, F_STALL,
           F_CLEAR, F_TIMEOUT, F_CERTS, F_INSECURE };
    static const struct option longopts[] = {
        {"host", required_argument, NULL, F_HOST},
        {"peer", required_argument, NULL, F_PEER},
        {"delay", required_argument, NULL, F_DELAY},
        {"jitter", required_argument, NULL, F_JITTER},
        {"loss", required_argument, NULL, F_LOSS},
        {"clear-all", no_argument, NULL, F_CLEAR_ALL},
        {"fail", no_argument, NULL, F_FAIL},
        {"stall", required_argument, NULL, F_STALL},
        {"clear", no_argument, NULL, F_CLEAR},
        {"timeout", required_argument, NULL, F_TIMEOUT},
        {"certs-dir", required_argument, NULL, F_CERTS},
        {"insecure", no_argument, NULL, F_INSECURE},
        {NULL, 0, NULL, 0},
    };
    const char *host = CLI_DEBUG_DEFAULT_HOST, *certs_dir = NULL;
    bool insecure = false, disk_given = false, net_given = false;
    int64_t timeout_ms = CLI_DEBUG_TIMEOUT_MS;
    int ac = argc - 1; /* the subcommand is getopt's argv[0] */
    char **av = argv + 1;
    optind = 0;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(ac, av, "+", longopts, NULL)) != -1) {
        switch (opt) {
        case F_HOST: host = optarg; break;
        case F_PEER: {
            char *end = NULL;
            unsigned long long id = strtoull(optarg, &end, 10);
            if (end == optarg || *end != '\0' || id == 0 || id > (unsigned long long)INT64_MAX)
                return usage_error("bad --peer \"%s\" (want a node id)", optarg);
            q.peer = id;
            net_given = true;
            break;
        }
        case F_DELAY:
            if (parse_ms(optarg, RPC_FAULT_DELAY_MS_MAX, &q.delay_ms) != 0)
                return usage_error("bad --delay \"%s\" (0 to 60s)", optarg);
            net_given = true;
            break;
        case F_JITTER:
            if (parse_ms(optarg, RPC_FAULT_DELAY_MS_MAX, &q.jitter_ms) != 0)
                return usage_error("bad --jitter \"%s\" (0 to 60s)", optarg);
            net_given = true;
            break;
        case F_LOSS: {
            char *end = NULL;
            double p = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(p >= 0.0 && p <= 1.0))
                return usage_error("bad --loss \"%s\" (a probability in [0, 1])", optarg);
            q.loss_per_million = (uint32_t)(p * 1e6 + 0.5);
            net_given = true;
            break;
        }
        case F_CLEAR_ALL: q.clear_all = true; net_given = true; break;
        case F_FAIL: q.fail_next = true; disk_given = true; break;
        case F_STALL: {
            int64_t ns;
            if (cli_parse_duration_ns(optarg, &ns) != 0 || ns <= 0 ||
                ns / 1000000 > RAFT_LOG_FAULT_STALL_MS_MAX)
                return usage_error("bad --stall \"%s\" (1ms to 600s)", optarg);
            q.stall_ms = (uint32_t)(ns / 1000000);
            disk_given = true;
            break;
        }
        case F_CLEAR: disk_given = true; break;
        case F_TIMEOUT: {
            int64_t ns;
            if (cli_parse_duration_ns(optarg, &ns) != 0 || ns < 1000000)
                return usage_error("bad --timeout \"%s\"", optarg);
            timeout_ms = ns / 1000000;
            break;
        }
        case F_CERTS:
            if (optarg[0] == '\0' || strlen(optarg) >= CLI_PATH_SIZE_MAX - 64)
                return usage_error("bad --certs-dir \"%s\"", optarg);
            certs_dir = optarg;
            break;
        case F_INSECURE: insecure = true; break;
        default:
            return usage_error("bad flag or missing value: %s", av[optind - 1]);
        }
    }
    if (optind < ac) return usage_error("unexpected argument \"%s\"", av[optind]);
    bool disk_kind = q.kind == SRV_FAULT_DISK || q.kind == SRV_FAULT_STORE;
    if ((q.kind != SRV_FAULT_NET && net_given) || (!disk_kind && disk_given))
        return usage_error("flags of another command given to %s", sub);
    if (disk_kind && !disk_given)
        return usage_error("%s needs --fail, --stall D or --clear", sub);
    if (insecure && certs_dir != NULL)
        return usage_error("--certs-dir and --insecure exclude each other%s", "");
    srv_addr addr;
    if (cli_parse_hostport(host, "127.0.0.1", CLI_DEFAULT_SQL_PORT, addr.host, &addr.port) != 0 ||
        addr.port == 0)
        return usage_error("bad --host \"%s\" (want HOST:PORT)", host);

    sec_tls_ctx *tls = NULL;
    if (certs_dir != NULL) {
        char err[SEC_ERR_MSG_SIZE];
        sec_tls_options o = {.cert_name = "node"};
        if (sec_tls_client_ctx_new(certs_dir, &o, &tls, err, sizeof err) != 0) {
            fprintf(stderr, "meridian debug: cannot load the TLS certificates of %s: %s\n",
                    certs_dir, err);
            return CLI_EXIT_FAILURE;
        }
        srv_client_set_tls(tls);
    }
    char answer[1024], err[SRV_MESSAGE_SIZE_MAX] = "";
    int rc = srv_client_fault(&addr, &q, timeout_ms, answer, sizeof answer, err, sizeof err);
    srv_client_set_tls(NULL);
    sec_tls_ctx_free(tls);
    if (rc != SRV_OK) {
        fprintf(stderr, "meridian debug %s: %s\n", sub, err[0] ? err : "failed");
        return CLI_EXIT_FAILURE;
    }
    printf("%s\n", answer);
    return CLI_EXIT_OK;
}
