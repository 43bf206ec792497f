/*
** cli/cli_ranges.c: `meridian ranges`, the range overview from the command
** line: SHOW RANGES [FROM TABLE t] run through the SQL shell's one-shot
** mode (cli_sql_main -e), printed as the shell prints any result.
**
** Why SQL and not an rpc like `node status`: the overview is assembled by
** the node the client talks to (every node's replicas, meta, liveness:
** server/srv_ranges.c) and SHOW RANGES already is that request, so the
** command and the statement cannot drift apart; TLS and client
** certificates work exactly as for `meridian sql` (--certs-dir DIR with
** DIR/ca.crt and DIR/client.USER.crt). --host is the node's SQL address:
** its --listen-addr when SQL shares the port, else its --sql-addr.
**
** Exit codes: 0 ok; 1 the statement failed or the node could not be
** reached; 2 usage.
*/
#include "cli/cli_int.h"

#include <getopt.h>
#include <string.h>

#define RANGES_STATEMENT_MAX 512

static void usage(FILE *f) {
    fprintf(f,
            "usage: meridian ranges [--host HOST:PORT] [--table TABLE] [--user USER]\n"
            "                       [--certs-dir DIR | --insecure]\n"
            "The cluster's ranges as the node at HOST:PORT (its SQL address, default\n"
            "127.0.0.1:%d) sees them: SHOW RANGES [FROM TABLE TABLE]. One row per\n"
            "range: id, start and end key, table, replicas, leaseholder, generation,\n"
            "approximate size, reads/s and writes/s at its leaseholder.\n"
            "  --certs-dir DIR   TLS, verifying the node with DIR/ca.crt; DIR/client.USER.crt\n"
            "                    as client certificate if present (as meridian sql)\n"
            "  --insecure        plaintext\n",
            CLI_DEFAULT_SQL_PORT);
}

int cli_ranges_main(int argc, char **argv) {
    enum { F_HOST = 1000, F_TABLE, F_USER, F_CERTS, F_INSECURE, F_HELP };
    static const struct option longopts[] = {
        {"host", required_argument, NULL, F_HOST},
        {"table", required_argument, NULL, F_TABLE},
        {"user", required_argument, NULL, F_USER},
        {"certs-dir", required_argument, NULL, F_CERTS},
        {"insecure", no_argument, NULL, F_INSECURE},
        {"help", no_argument, NULL, F_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *host = NULL, *table = NULL, *user = NULL, *certs_dir = NULL;
    bool insecure = false;
    optind = 0;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (opt) {
        case F_HOST: host = optarg; break;
        case F_TABLE: table = optarg; break;
        case F_USER: user = optarg; break;
        case F_CERTS: certs_dir = optarg; break;
        case F_INSECURE: insecure = true; break;
        case F_HELP:
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default:
            fprintf(stderr, "meridian ranges: %s %s\n",
                    optopt >= F_HOST ? "missing value for" : "unknown flag", argv[optind - 1]);
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "meridian ranges: unexpected argument \"%s\"\n", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (insecure && certs_dir != NULL) {
        fprintf(stderr, "meridian ranges: --certs-dir and --insecure exclude each other\n");
        return CLI_EXIT_USAGE;
    }
    char statement[RANGES_STATEMENT_MAX];
    size_t o = (size_t)snprintf(statement, sizeof statement, "SHOW RANGES");
    if (table != NULL) { /* a quoted identifier: any name, "" for " */
        if (table[0] == '\0' || strlen(table) > 2 * 63) {
            fprintf(stderr, "meridian ranges: bad --table \"%s\"\n", table);
            return CLI_EXIT_USAGE;
        }
        o += (size_t)snprintf(statement + o, sizeof statement - o, " FROM TABLE \"");
        for (const char *p = table; *p && o + 4 < sizeof statement; p++) {
            if (*p == '"') statement[o++] = '"';
            statement[o++] = *p;
        }
        statement[o++] = '"';
        statement[o] = '\0';
    }
    const char *args[16];
    int k = 0;
    args[k++] = "sql";
    if (host != NULL) {
        args[k++] = "--host";
        args[k++] = host;
    }
    if (user != NULL) {
        args[k++] = "--user";
        args[k++] = user;
    }
    if (certs_dir != NULL) {
        args[k++] = "--certs-dir";
        args[k++] = certs_dir;
    }
    if (insecure) args[k++] = "--insecure";
    args[k++] = "-e";
    args[k++] = statement;
    args[k] = NULL;
    return cli_sql_main(k, (char **)args);
}
