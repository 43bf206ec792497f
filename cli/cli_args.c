/*
** cli/cli_args.c: parsing of command-line values (durations, addresses).
** Pure: no I/O. Invariant: on failure the out-parameters are untouched.
*/
#include "cli/cli_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int cli_parse_duration_ns(const char *s, int64_t *out_ns) {
    if (s == NULL || *s == '\0') return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !isfinite(v)) return -1;
    /* strtod accepts "inf", hex and leading spaces: keep to plain decimals. */
    for (const char *p = s; p < end; p++) {
        if (!(isdigit((unsigned char)*p) || *p == '.' || *p == '-' || *p == '+')) return -1;
    }
    double scale;
    if (*end == '\0' || strcmp(end, "ms") == 0) scale = 1e6;
    else if (strcmp(end, "ns") == 0) scale = 1.0;
    else if (strcmp(end, "us") == 0 || strcmp(end, "µs") == 0) scale = 1e3;
    else if (strcmp(end, "s") == 0) scale = 1e9;
    else if (strcmp(end, "m") == 0) scale = 60e9;
    else if (strcmp(end, "h") == 0) scale = 3600e9;
    else return -1;
    double ns = v * scale;
    if (ns >= 9.2e18 || ns <= -9.2e18) return -1;
    *out_ns = (int64_t)llround(ns);
    return 0;
}

static int parse_port(const char *s, int *port) {
    if (*s == '\0' || strlen(s) > 5) return -1;
    int v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p)) return -1;
        v = v * 10 + (*p - '0');
    }
    if (v > 65535) return -1;
    *port = v;
    return 0;
}

int cli_parse_hostport(const char *s, const char *default_host, int default_port, char *host,
                       int *port) {
    if (s == NULL || *s == '\0') return -1;
    char h[CLI_HOST_SIZE_MAX];
    int p = default_port;
    const char *colon;
    if (s[0] == '[') { /* [v6]:port */
        const char *close = strchr(s, ']');
        if (close == NULL || (size_t)(close - s - 1) >= sizeof h || close == s + 1) return -1;
        memcpy(h, s + 1, (size_t)(close - s - 1));
        h[close - s - 1] = '\0';
        if (close[1] == ':') {
            if (parse_port(close + 2, &p) != 0) return -1;
        } else if (close[1] != '\0') {
            return -1;
        }
    } else if ((colon = strrchr(s, ':')) != NULL) {
        if (strchr(s, ':') != colon) return -1; /* bare IPv6 needs brackets */
        size_t hl = (size_t)(colon - s);
        if (hl >= sizeof h) return -1;
        if (hl == 0) {
            base_strlcpy(h, default_host, sizeof h);
        } else {
            memcpy(h, s, hl);
            h[hl] = '\0';
        }
        if (parse_port(colon + 1, &p) != 0) return -1;
    } else {
        if (strlen(s) >= sizeof h) return -1;
        base_strlcpy(h, s, sizeof h);
    }
    for (const char *c = h; *c; c++) {
        if (isspace((unsigned char)*c) || *c == '/' || *c == '@') return -1;
    }
    base_strlcpy(host, h, CLI_HOST_SIZE_MAX);
    *port = p;
    return 0;
}

int cli_parse_join_list(const char *s, int default_port, srv_addr *out, size_t max, size_t *n) {
    if (s == NULL || *s == '\0') return -1;
    srv_addr parsed[SRV_JOIN_ADDRS_MAX]; /* out stays untouched on failure */
    if (max > SRV_JOIN_ADDRS_MAX) max = SRV_JOIN_ADDRS_MAX;
    size_t count = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= CLI_HOST_SIZE_MAX || count >= max) return -1;
        char item[CLI_HOST_SIZE_MAX], host[CLI_HOST_SIZE_MAX];
        memcpy(item, p, len);
        item[len] = '\0';
        int port;
        if (cli_parse_hostport(item, "127.0.0.1", default_port, host, &port) != 0 || port == 0)
            return -1;
        for (size_t i = 0; i < count; i++) {
            if (parsed[i].port == port && strcmp(parsed[i].host, host) == 0) return -1;
        }
        base_strlcpy(parsed[count].host, host, sizeof parsed[count].host);
        parsed[count].port = port;
        count++;
        if (comma == NULL) break;
        p = comma + 1;
    }
    memcpy(out, parsed, count * sizeof parsed[0]);
    *n = count;
    return 0;
}

void cli_demo_default_dir(char *out, size_t size) {
    const char *home = getenv("HOME");
    if (home != NULL && home[0] != '\0') {
        snprintf(out, size, "%s/.meridian/demo", home);
        return;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(out, size, "%s/meridian-demo", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
}

int cli_mkdir_p(const char *path) {
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
