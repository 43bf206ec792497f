/*
** security/sec_hba.c: host-based authentication rules, a subset of
** PostgreSQL's pg_hba.conf (format: security.h, "host-based authentication
** rules"; docs/security.md "Host-based authentication").
**
** Invariants:
**   - pure: no I/O, no clock; the text is never trusted: every line, field
**     and rule count is bounded (SEC_HBA_TEXT_BYTES_MAX,
**     SEC_HBA_RULES_MAX, SEC_HBA_FIELD_BYTES_MAX), and anything not
**     understood is an error naming its line, never skipped: a rule read
**     differently from what its author meant could let someone in.
**   - matching is a pass over at most SEC_HBA_RULES_MAX rules; the first
**     match decides.
*/
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "security/security.h"

#define HBA_FIELDS_MAX 6 /* one more than a rule has: extra fields are errors */
#define HBA_LINE_SHOWN_MAX 80

static const struct {
    const char *name;
    sec_hba_method method;
} methods[] = {
    {"cert", SEC_HBA_CERT},
    {"password", SEC_HBA_PASSWORD},
    {"scram-sha-256", SEC_HBA_PASSWORD},
    {"cert-password", SEC_HBA_CERT_PASSWORD},
    {"trust", SEC_HBA_TRUST},
    {"reject", SEC_HBA_REJECT},
};

const char *sec_hba_method_name(sec_hba_method m)
{
    for (size_t i = 0; i < BASE_ARRAY_LEN(methods); i++)
        if (methods[i].method == m)
            return methods[i].name;
    return "unknown";
}

void sec_hba_free(sec_hba *h)
{
    base_free(h);
}

/* A message about line (its text, shortened) into err. */
static int line_error(char *err, size_t err_size, int line, const char *text, size_t len,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int line_error(char *err, size_t err_size, int line, const char *text, size_t len,
                      const char *fmt, ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\r'))
        len--;
    if (err != NULL && err_size > 0)
        snprintf(err, err_size, "line %d (%.*s%s): %s", line,
                 (int)BASE_MIN(len, (size_t)HBA_LINE_SHOWN_MAX), text,
                 len > HBA_LINE_SHOWN_MAX ? "..." : "", why);
    return SEC_ERR_INVALID;
}

/* An address "a.b.c.d[/n]" or "x:y::z[/n]" into r. 0, or -1. */
static int parse_address(const char *field, sec_hba_rule *r)
{
    char ip[64];
    const char *slash = strchr(field, '/');
    size_t iplen = slash ? (size_t)(slash - field) : strlen(field);
    if (iplen == 0 || iplen >= sizeof ip)
        return -1;
    memcpy(ip, field, iplen);
    ip[iplen] = '\0';
    if (inet_pton(AF_INET, ip, r->addr) == 1)
        r->family = 4;
    else if (inet_pton(AF_INET6, ip, r->addr) == 1)
        r->family = 6;
    else
        return -1;
    int max = r->family == 4 ? 32 : 128;
    r->prefix_bits = max;
    if (slash != NULL) {
        const char *p = slash + 1;
        int bits = 0;
        if (*p == '\0')
            return -1;
        for (; *p != '\0'; p++) {
            if (*p < '0' || *p > '9' || bits > max)
                return -1;
            bits = bits * 10 + (*p - '0');
        }
        if (bits > max)
            return -1;
        r->prefix_bits = bits;
    }
    return 0;
}

/* A DATABASE or USER field: "all" or names separated by commas. 0, or -1
** with *why set. */
static int check_names(const char *field, const char **why)
{
    if (strcmp(field, "all") == 0)
        return 0;
    if (field[0] == '+' || field[0] == '@' || strchr(field, '+') != NULL) {
        *why = "group (+role) and file (@file) references are not supported";
        return -1;
    }
    if (field[0] == ',' || field[strlen(field) - 1] == ',' || strstr(field, ",,") != NULL) {
        *why = "an empty name in a list";
        return -1;
    }
    if (strchr(field, '"') != NULL) {
        *why = "quoted names are not supported";
        return -1;
    }
    return 0;
}

/* One line [start, start + len) into *r (when it holds a rule: *is_rule). */
static int parse_line(const char *start, size_t len, int line, sec_hba_rule *r, bool *is_rule,
                      char *err, size_t err_size)
{
    char buf[SEC_HBA_TEXT_BYTES_MAX + 1];
    char *fields[HBA_FIELDS_MAX];
    int nf = 0;
    *is_rule = false;
    memcpy(buf, start, len);
    buf[len] = '\0';
    char *hash = strchr(buf, '#');
    if (hash != NULL)
        *hash = '\0';
    for (char *p = buf; *p != '\0';) {
        while (*p == ' ' || *p == '\t' || *p == '\r')
            *p++ = '\0';
        if (*p == '\0')
            break;
        if (nf == HBA_FIELDS_MAX)
            return line_error(err, err_size, line, start, len,
                              "too many fields (options after the method are not supported)");
        fields[nf++] = p;
        while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r')
            p++;
    }
    if (nf == 0)
        return SEC_OK; /* blank or a comment */
    memset(r, 0, sizeof *r);
    r->line = line;
    static const struct {
        const char *name;
        sec_hba_conn_type type;
    } types[] = {{"local", SEC_HBA_LOCAL},
                 {"host", SEC_HBA_HOST},
                 {"hostssl", SEC_HBA_HOSTSSL},
                 {"hostnossl", SEC_HBA_HOSTNOSSL}};
    for (size_t i = 0; i < BASE_ARRAY_LEN(types); i++)
        if (strcmp(fields[0], types[i].name) == 0)
            r->type = types[i].type;
    if (r->type == 0)
        return line_error(err, err_size, line, start, len,
                          "unknown connection type \"%.40s\" (want host, hostssl, hostnossl or "
                          "local)",
                          fields[0]);
    int want = r->type == SEC_HBA_LOCAL ? 4 : 5;
    if (nf < want)
        return line_error(err, err_size, line, start, len, "%s rule needs %d fields",
                          r->type == SEC_HBA_LOCAL ? "a local" : "a host", want);
    if (nf > want)
        return line_error(err, err_size, line, start, len,
                          "too many fields (options after the method are not supported)");
    const char *why = NULL;
    for (int i = 1; i <= 2; i++) {
        if (strlen(fields[i]) > SEC_HBA_FIELD_BYTES_MAX)
            return line_error(err, err_size, line, start, len,
                              "the %s field is too long (at most %d bytes)",
                              i == 1 ? "database" : "user", SEC_HBA_FIELD_BYTES_MAX);
        if (check_names(fields[i], &why) != 0)
            return line_error(err, err_size, line, start, len, "%s field: %s",
                              i == 1 ? "database" : "user", why);
    }
    base_strlcpy(r->databases, fields[1], sizeof r->databases);
    base_strlcpy(r->users, fields[2], sizeof r->users);
    if (r->type != SEC_HBA_LOCAL) {
        if (strcmp(fields[3], "all") == 0)
            r->addr_all = true;
        else if (parse_address(fields[3], r) != 0)
            return line_error(err, err_size, line, start, len,
                              "invalid address \"%.64s\" (want all, an IP address or "
                              "address/prefix length)",
                              fields[3]);
    } else {
        r->addr_all = true;
    }
    const char *m = fields[want - 1];
    for (size_t i = 0; i < BASE_ARRAY_LEN(methods); i++)
        if (strcmp(m, methods[i].name) == 0)
            r->method = methods[i].method;
    if (r->method == 0)
        return line_error(err, err_size, line, start, len,
                          "unknown authentication method \"%.40s\" (want cert, password, "
                          "scram-sha-256, cert-password, trust or reject)",
                          m);
    *is_rule = true;
    return SEC_OK;
}

int sec_hba_parse(const char *text, sec_hba **out, char *err, size_t err_size)
{
    *out = NULL;
    if (err != NULL && err_size > 0)
        err[0] = '\0';
    size_t total = strnlen(text, SEC_HBA_TEXT_BYTES_MAX + 1);
    if (total > SEC_HBA_TEXT_BYTES_MAX) {
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "the configuration is too long (at most %d bytes)",
                     SEC_HBA_TEXT_BYTES_MAX);
        return SEC_ERR_INVALID;
    }
    sec_hba *h = base_calloc(1, sizeof *h); /* owner: *out on success */
    if (h == NULL)
        return SEC_ERR_NOMEM;
    const char *p = text, *end = text + total;
    int line = 0;
    while (p < end) { /* one line per turn: ends at end */
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        sec_hba_rule r;
        bool is_rule = false;
        line++;
        int rc = parse_line(p, len, line, &r, &is_rule, err, err_size);
        if (rc == SEC_OK && is_rule && h->n == SEC_HBA_RULES_MAX)
            rc = line_error(err, err_size, line, p, len, "too many rules (at most %d)",
                            SEC_HBA_RULES_MAX);
        if (rc != SEC_OK) {
            base_free(h);
            return rc;
        }
        if (is_rule)
            h->rules[h->n++] = r;
        p += len + (nl ? 1 : 0);
    }
    *out = h;
    return SEC_OK;
}

/* Is name one of list ("all" or "a,b,c")? */
static bool name_in(const char *list, const char *name)
{
    if (strcmp(list, "all") == 0)
        return true;
    if (name == NULL)
        return false;
    size_t n = strlen(name);
    for (const char *p = list; *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return true;
        p += len + (comma ? 1 : 0);
    }
    return false;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, int bits)
{
    int bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)bytes) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFF << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

static bool addr_in(const sec_hba_rule *r, const char *addr)
{
    if (r->addr_all)
        return true;
    uint8_t ip[16];
    if (addr == NULL || addr[0] == '\0')
        return false;
    if (inet_pton(AF_INET, addr, ip) == 1)
        return r->family == 4 && prefix_equal(ip, r->addr, r->prefix_bits);
    if (inet_pton(AF_INET6, addr, ip) != 1)
        return false;
    if (r->family == 6)
        return prefix_equal(ip, r->addr, r->prefix_bits);
    /* an IPv4 client seen through an IPv6 socket (::ffff:a.b.c.d) */
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    return memcmp(ip, mapped, sizeof mapped) == 0 && prefix_equal(ip + 12, r->addr, r->prefix_bits);
}

int sec_hba_match(const sec_hba *h, const sec_hba_conn *c)
{
    for (int i = 0; i < h->n; i++) {
        const sec_hba_rule *r = &h->rules[i];
        bool type_ok;
        switch (r->type) {
        case SEC_HBA_LOCAL: type_ok = c->local; break;
        case SEC_HBA_HOST: type_ok = !c->local; break;
        case SEC_HBA_HOSTSSL: type_ok = !c->local && c->tls; break;
        case SEC_HBA_HOSTNOSSL: type_ok = !c->local && !c->tls; break;
        default: type_ok = false; break;
        }
        if (type_ok && name_in(r->databases, c->database) && name_in(r->users, c->user) &&
            (c->local || addr_in(r, c->addr)))
            return i;
    }
    return -1;
}
