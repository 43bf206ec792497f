/*
** cli/cli_cert.c: `meridian cert ...`, certificates for a secure cluster.
**   meridian cert create-ca --certs-dir DIR --ca-key FILE [--lifetime 10y] [--overwrite]
**   meridian cert create-node HOST... --certs-dir DIR --ca-key FILE [--lifetime D] [--overwrite]
**   meridian cert create-client USER --certs-dir DIR --ca-key FILE [--lifetime D] [--overwrite]
**   meridian cert list --certs-dir DIR
** The work is done by security/ (sec_cert_*); this file parses flags.
** Exit codes: 0 ok, 1 failure (message on stderr), 2 bad command line.
*/
#include "cli/cli_int.h"

#include <ctype.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "security/security.h"


static void usage(FILE *f) {
    fprintf(f,
            "usage: meridian cert <command> [flags]\n"
            "\n"
            "commands:\n"
            "  create-ca --certs-dir DIR --ca-key FILE\n"
            "      a cluster CA: DIR/ca.crt and its key FILE (keep FILE off the nodes)\n"
            "  create-node HOST... --certs-dir DIR --ca-key FILE\n"
            "      DIR/node.crt and DIR/node.key for a node reachable as HOST... (DNS names\n"
            "      and IP addresses, all written into the certificate)\n"
            "  create-client USER --certs-dir DIR --ca-key FILE\n"
            "      DIR/client.USER.crt and DIR/client.USER.key to log in as USER\n"
            "  list --certs-dir DIR\n"
            "      the certificates in DIR, their names, validity and key modes\n"
            "\n"
            "flags:\n"
            "  --certs-dir DIR      the certificates directory (created 0700 if missing)\n"
            "  --ca-key FILE        the CA private key\n"
            "  --lifetime DURATION  validity, like 10y, 365d, 48h (default: 10y for the CA,\n"
            "                       5y for the others)\n"
            "  --overwrite          replace existing files (otherwise they are never touched)\n"
            "\n"
            "Keys are EC P-256, written with mode 0600.\n");
}

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "meridian cert: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see meridian cert --help)\n");
    return CLI_EXIT_USAGE;
}

/* "10y", "365d", "48h", "90m", "3600s": seconds. 0 or -1. */
static int parse_lifetime_s(const char *s, int64_t *out) {
    if (s == NULL || !isdigit((unsigned char)s[0])) return -1;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (v <= 0 || v > 1000000000LL) return -1;
    int64_t unit;
    if (strcmp(end, "y") == 0) unit = 365LL * 86400;
    else if (strcmp(end, "d") == 0) unit = 86400;
    else if (strcmp(end, "h") == 0) unit = 3600;
    else if (strcmp(end, "m") == 0) unit = 60;
    else if (strcmp(end, "s") == 0) unit = 1;
    else return -1;
    if (v > (int64_t)(200LL * 365 * 86400) / unit) return -1; /* 200 years at most */
    *out = v * unit;
    return 0;
}

int cli_cert_main(int argc, char **argv) {
    /* argv[0] is "cert", argv[1] the command */
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    enum { CA, NODE, CLIENT, LIST } which;
    if (strcmp(cmd, "create-ca") == 0) which = CA;
    else if (strcmp(cmd, "create-node") == 0) which = NODE;
    else if (strcmp(cmd, "create-client") == 0) which = CLIENT;
    else if (strcmp(cmd, "list") == 0) which = LIST;
    else return usage_error("unknown command \"%s\"", cmd);

    static const struct option longopts[] = {
        {"certs-dir", required_argument, NULL, 'd'}, {"ca-key", required_argument, NULL, 'k'},
        {"lifetime", required_argument, NULL, 'l'},  {"overwrite", no_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    const char *certs_dir = NULL, *ca_key = NULL;
    sec_cert_options opt = {0};
    int sub_argc = argc - 1;
    char **sub_argv = argv + 1;
    optind = 0; /* glibc: full reinitialization */
    opterr = 0;
    int ch;
    while ((ch = getopt_long(sub_argc, sub_argv, ":h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'd': certs_dir = optarg; break;
        case 'k': ca_key = optarg; break;
        case 'l':
            if (parse_lifetime_s(optarg, &opt.lifetime_s) != 0)
                return usage_error("invalid --lifetime \"%s\" (like 10y, 365d, 48h)", optarg);
            break;
        case 'o': opt.overwrite = true; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case ':': return usage_error("%s needs a value", sub_argv[optind - 1]);
        default: return usage_error("unknown flag \"%s\"", sub_argv[optind - 1]);
        }
    }
    const char *const *args = (const char *const *)(sub_argv + optind);
    int nargs = sub_argc - optind;
    if (certs_dir == NULL || certs_dir[0] == '\0')
        return usage_error("%s", "--certs-dir is required");
    if (which != LIST && (ca_key == NULL || ca_key[0] == '\0'))
        return usage_error("%s", "--ca-key is required");
    if (which == LIST && (ca_key != NULL || opt.lifetime_s != 0 || opt.overwrite))
        return usage_error("%s", "list takes only --certs-dir");
    if ((which == CA || which == LIST) && nargs > 0)
        return usage_error("unexpected argument \"%s\"", args[0]);
    if (which == NODE && nargs == 0)
        return usage_error("%s", "create-node needs at least one HOST (name or IP address)");
    if (which == NODE && nargs > SEC_HOSTS_MAX)
        return usage_error("%s", "too many hosts");
    if (which == CLIENT && nargs != 1)
        return usage_error("%s", "create-client needs exactly one USER");

    char err[SEC_ERR_MSG_SIZE] = "";
    int rc = 0;
    switch (which) {
    case CA:
        rc = sec_cert_create_ca(certs_dir, ca_key, &opt, err, sizeof err);
        if (rc == 0) printf("created %s/%s and %s\n", certs_dir, SEC_CA_CERT_FILE, ca_key);
        break;
    case NODE:
        rc = sec_cert_create_node(certs_dir, ca_key, args, (size_t)nargs, &opt, err, sizeof err);
        if (rc == 0)
            printf("created %s/%s and %s/%s\n", certs_dir, SEC_NODE_CERT_FILE, certs_dir,
                   SEC_NODE_KEY_FILE);
        break;
    case CLIENT:
        rc = sec_cert_create_client(certs_dir, ca_key, args[0], &opt, err, sizeof err);
        if (rc == 0)
            printf("created %s/client.%s.crt and %s/client.%s.key\n", certs_dir, args[0],
                   certs_dir, args[0]);
        break;
    case LIST: rc = sec_cert_list(certs_dir, stdout, err, sizeof err); break;
    }
    if (rc != 0) {
        fprintf(stderr, "meridian cert %s: %s\n", cmd, err[0] ? err : sec_error_str(rc));
        return rc == SEC_ERR_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}
