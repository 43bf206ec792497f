#include "gw_test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int tu_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {TU_IO_TIMEOUT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int tu_send(int fd, const void *p, size_t n)
{
    const uint8_t *q = p;
    while (n > 0) {
        ssize_t w = send(fd, q, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

void tu_put_u32(base_buf *b, uint32_t v)
{
    uint8_t p[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    base_buf_append(b, p, 4);
}

void tu_startup(base_buf *b, const char *user, const char *database)
{
    base_buf body = {0};
    tu_put_u32(&body, 196608);
    if (user) {
        base_buf_append(&body, "user", 5);
        base_buf_append(&body, user, strlen(user) + 1);
    }
    if (database) {
        base_buf_append(&body, "database", 9);
        base_buf_append(&body, database, strlen(database) + 1);
    }
    base_buf_append_byte(&body, 0);
    tu_put_u32(b, (uint32_t)(body.len + 4));
    base_buf_append(b, body.data, body.len);
    base_buf_free(&body);
}

void tu_msg(base_buf *b, char type, const void *body, size_t n)
{
    base_buf_append_byte(b, (uint8_t)type);
    tu_put_u32(b, (uint32_t)(n + 4));
    if (n > 0)
        base_buf_append(b, body, n);
}

void tu_query(base_buf *b, const char *sql)
{
    tu_msg(b, 'Q', sql, strlen(sql) + 1);
}

int tu_read_exact(int fd, void *p, size_t n)
{
    uint8_t *q = p;
    while (n > 0) {
        ssize_t r = recv(fd, q, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        q += r;
        n -= (size_t)r;
    }
    return 0;
}

int tu_read_msg(int fd, char *type, base_buf *body)
{
    uint8_t hdr[5];
    base_buf_reset(body);
    if (tu_read_exact(fd, hdr, 5) != 0)
        return -1;
    uint32_t len = ((uint32_t)hdr[1] << 24) | ((uint32_t)hdr[2] << 16) | ((uint32_t)hdr[3] << 8) | hdr[4];
    if (len < 4 || len > (1u << 30))
        return -1;
    if (base_buf_reserve(body, len - 4 + 1) != 0)
        return -1;
    if (tu_read_exact(fd, body->data, len - 4) != 0)
        return -1;
    body->len = len - 4;
    body->data[body->len] = 0;
    *type = (char)hdr[0];
    return 0;
}

void tu_error_field(const base_buf *body, char code, char *out, size_t cap)
{
    out[0] = 0;
    size_t i = 0;
    while (i < body->len && body->data[i] != 0) {
        char f = (char)body->data[i++];
        const char *v = (const char *)body->data + i;
        size_t vl = strnlen(v, body->len - i);
        if (f == code) {
            snprintf(out, cap, "%.*s", (int)vl, v);
            return;
        }
        i += vl + 1;
    }
}

int tu_read_until_ready(int fd, char *types, size_t cap, char *status, char sqlstate[6])
{
    base_buf body = {0};
    size_t n = 0;
    int rc = -1;
    if (sqlstate)
        sqlstate[0] = 0;
    for (int i = 0; i < 10000000; i++) {
        char t;
        if (tu_read_msg(fd, &t, &body) != 0)
            break;
        if (types && n + 1 < cap)
            types[n++] = t;
        if (t == 'E' && sqlstate && sqlstate[0] == 0)
            tu_error_field(&body, 'C', sqlstate, 6);
        if (t == 'Z') {
            if (status)
                *status = body.len > 0 ? (char)body.data[0] : '?';
            rc = 0;
            break;
        }
    }
    if (types)
        types[n] = 0;
    base_buf_free(&body);
    return rc;
}

bool tu_wait_closed(int fd)
{
    char buf[4096];
    for (int i = 0; i < 100000; i++) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r == 0)
            return true;
        if (r < 0)
            return errno == ECONNRESET || errno == EPIPE;
    }
    return false;
}

int tu_session(int port, const char *user, uint32_t *pid, uint32_t *secret)
{
    int fd = tu_connect(port);
    if (fd < 0)
        return -1;
    base_buf b = {0};
    tu_startup(&b, user, "defaultdb");
    int rc = tu_send(fd, b.data, b.len);
    base_buf_reset(&b);
    for (int i = 0; rc == 0 && i < 100; i++) {
        char t;
        if (tu_read_msg(fd, &t, &b) != 0) {
            rc = -1;
            break;
        }
        if (t == 'K' && b.len == 8) {
            if (pid)
                *pid = ((uint32_t)b.data[0] << 24) | ((uint32_t)b.data[1] << 16) | ((uint32_t)b.data[2] << 8) | b.data[3];
            if (secret)
                *secret = ((uint32_t)b.data[4] << 24) | ((uint32_t)b.data[5] << 16) | ((uint32_t)b.data[6] << 8) | b.data[7];
        }
        if (t == 'E')
            rc = -1;
        if (t == 'Z')
            break;
    }
    base_buf_free(&b);
    if (rc != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

PGconn *tu_pq(int port, const char *extra)
{
    char conninfo[512];
    snprintf(conninfo, sizeof conninfo,
             "host=127.0.0.1 port=%d user=root dbname=defaultdb connect_timeout=10 %s", port,
             extra ? extra : "");
    return PQconnectdb(conninfo);
}
