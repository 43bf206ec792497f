/*
** cli/main.c: the `meridian` binary: dispatches to its commands.
**   meridian start ...   run a node (cli_start.c)
**   meridian sql ...     the SQL shell (cli_shell.c)
**   meridian cert ...    certificates (cli_cert.c)
**   meridian init ...    make a cluster (cli_node.c)
**   meridian node ...    status, drain, decommission (cli_node.c)
**   meridian ranges ...  the cluster's ranges (cli_ranges.c)
**   meridian demo ...    a local cluster and a shell (cli_demo.c)
**   meridian debug ...   hidden, test-only fault control (cli_debug.c)
**   meridian version | help
** Exit codes: 0 ok, 1 failure, 2 bad command line.
*/
#include "cli/cli_int.h"

#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "Meridian %s: a distributed transactional SQL database.\n"
            "\n"
            "usage: meridian <command> [flags]\n"
            "\n"
            "commands:\n"
            "  demo      a local 3-node cluster and a SQL shell: meridian demo --help\n"
            "  start     start a node (single, or a cluster node with --join)\n"
            "  init      make a cluster of started nodes: meridian init --help\n"
            "  node      node status, drain, decommission: meridian node --help\n"
            "  ranges    the cluster's ranges (SHOW RANGES): meridian ranges --help\n"
            "  sql       open a SQL shell on a node: meridian sql --help\n"
            "  cert      create and list TLS certificates: meridian cert --help\n"
            "  version   print the version\n"
            "  help      this text\n",
            CLI_VERSION);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "start") == 0) return cli_start_main(argc - 1, argv + 1);
    if (strcmp(cmd, "sql") == 0) return cli_sql_main(argc - 1, argv + 1);
    if (strcmp(cmd, "cert") == 0) return cli_cert_main(argc - 1, argv + 1);
    if (strcmp(cmd, "init") == 0) return cli_init_main(argc - 1, argv + 1);
    if (strcmp(cmd, "node") == 0) return cli_node_main(argc - 1, argv + 1);
    if (strcmp(cmd, "ranges") == 0) return cli_ranges_main(argc - 1, argv + 1);
    if (strcmp(cmd, "demo") == 0) return cli_demo_main(argc - 1, argv + 1);
    if (strcmp(cmd, "debug") == 0) return cli_debug_main(argc - 1, argv + 1); /* hidden */
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("meridian %s\n", CLI_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "meridian: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
