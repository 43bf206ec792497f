/*
** bench/bench_hostile.c: a normal workload alone, then under hostile
** clients (issue 9), on loopback.
**
**   bench_hostile [--url URL | --start [--bin PATH]] [--duration SECONDS]
**                 [--clients N] [--slowloris N] [--max-conns N] [--rate N]
**
** Normal workload: --clients libpq threads (default 4), each alternating a
** point SELECT on a 1000-row table and an INSERT of a fresh id (autocommit);
** every INSERT the server acknowledged is remembered.
** Phase 1: the workload alone for --duration seconds (default 5).
** Phase 2: the same while hostile threads run:
**   - slowloris: --slowloris sockets (default 64) that stall: half send part
**     of a startup packet, half log in and send part of a Query, then each
**     trickles one byte every 500 ms; a socket the server closes is
**     reopened;
**   - oversized: log in, announce a 2 GB Query, expect 08P01 and the close;
**     repeat;
**   - flood: open libpq sessions as users flood0..flood3 in turn until the
**     server refuses one (53300: the per-user or the node's limit), hold
**     them 200 ms, close them; repeat;
**   - garbage: connect, send random bytes, wait for the close; repeat.
** The workload's connections are opened once, before phase 1 (sessions
** that exist are what the limits protect); a probe opens a fresh session
** every 200 ms during phase 2 and counts how many got in.
** --rate N paces the oversized, flood-round and garbage loops to N
** attempts per second each (default 100; 0: as fast as they go, which
** mostly measures how much CPU the attacking threads take from the node on
** the same machine).
** Then prints both throughputs and their ratio, the hostile counts, and
** checks that every acknowledged INSERT is in the table.
** Exit status: 0; 1 only when an acknowledged row is missing (lost data) or
** the node cannot be reached or set up. Timing never fails the run.
** With --start it runs its own node (`meridian start --insecure
** --max-sql-connections N --max-sql-connections-per-user N/3`, N default
** 128, temp store, free port).
** Limits: BENCH_CLIENTS_MAX normal clients, BENCH_SLOW_MAX slowloris
** sockets, BENCH_INSERTS_MAX acknowledged inserts tracked per run.
*/
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "base/base.h"
#include "bench_util.h"

#define BENCH_CLIENTS_MAX 64
#define BENCH_SLOW_MAX 512
#define BENCH_FLOOD_MAX 1024
#define BENCH_INSERTS_MAX (4 * 1024 * 1024)
#define BENCH_ROWS 1000
#define BENCH_FIRST_INSERT_ID 1000000
#define BENCH_IO_TIMEOUT_S 15

static char g_url[600];
static char g_host[128] = "127.0.0.1";
static int g_port;
static atomic_bool g_stop_hostile;
static atomic_long g_next_id = BENCH_FIRST_INSERT_ID;
static _Atomic uint8_t *g_acked; /* BENCH_INSERTS_MAX flags */
static atomic_long g_slow_opened, g_slow_closed_by_server, g_oversized, g_oversized_08p01,
    g_flood_sessions, g_flood_refused, g_garbage, g_garbage_closed;

static void ms_sleep(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- a node of our own (--start) ------------------------------------------- */

/* bench_util.h's node with the connection limits: max_conns for the node,
** a third of it per user. */
static pid_t start_node(const char *bin, const char *max_conns, char *dir, size_t dir_size) {
    char per_user[16];
    snprintf(per_user, sizeof per_user, "%d", atoi(max_conns) / 3 > 0 ? atoi(max_conns) / 3 : 1);
    const char *extra[] = {"--max-sql-connections", max_conns, "--max-sql-connections-per-user",
                           per_user, NULL};
    return bench_start_node_with(bin, extra, dir, dir_size, g_url, sizeof g_url);
}

/* ---- raw sockets -------------------------------------------------------------- */

static int raw_connect(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {BENCH_IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    if (inet_pton(AF_INET, g_host, &a.sin_addr) != 1) a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

/* Log in as user over fd (trust): false unless ReadyForQuery came. */
static bool raw_login(int fd, const char *user) {
    uint8_t pkt[128];
    size_t n = 8, ulen = strlen(user) + 1;
    put_u32(pkt + 4, 196608);
    memcpy(pkt + n, "user", 5);
    n += 5;
    memcpy(pkt + n, user, ulen);
    n += ulen;
    pkt[n++] = 0;
    put_u32(pkt, (uint32_t)n);
    if (send(fd, pkt, n, MSG_NOSIGNAL) != (ssize_t)n) return false;
    for (int i = 0; i < 64; i++) { /* a login is a handful of messages */
        uint8_t hdr[5];
        if (recv(fd, hdr, 5, MSG_WAITALL) != 5) return false;
        uint32_t len = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 |
                       hdr[4];
        if (len < 4 || len > 8192) return false;
        char body[8192];
        if (len > 4 && recv(fd, body, len - 4, MSG_WAITALL) != (ssize_t)(len - 4)) return false;
        if (hdr[0] == 'Z') return true;
        if (hdr[0] == 'E') return false;
    }
    return false;
}

/* Read until the server closes (or the receive timeout): true when it did,
** *saw_08p01 when an ErrorResponse with 08P01 came first. */
static bool read_until_closed(int fd, bool *saw_08p01) {
    char buf[4096];
    *saw_08p01 = false;
    for (int i = 0; i < 1024; i++) { /* bounded: each recv waits at most the timeout */
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0) return true;
        if (n < 0) return errno == ECONNRESET;
        if (memmem(buf, (size_t)n, "C08P01", 7) != NULL) *saw_08p01 = true;
    }
    return false;
}

/* ---- hostile threads --------------------------------------------------------------- */

typedef struct slow_sock {
    int fd;
    int sent; /* bytes of its stalled message sent so far */
} slow_sock;

static int g_nslow = 64;
static int g_rate = 100; /* attempts per second per loop; 0: unpaced */

/* Sleep what is left of this attempt's 1/g_rate second. */
static void pace(int64_t started_ns) {
    if (g_rate <= 0) return;
    int64_t left = 1000000000 / g_rate - (base_monotonic_ns() - started_ns);
    if (left > 0) {
        struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
        nanosleep(&ts, NULL);
    }
}

/* Half stall in the startup packet, half mid-Query after a login. */
static int slow_open(int i) {
    int fd = raw_connect();
    if (fd < 0) return -1;
    if (i % 2 == 1) {
        if (!raw_login(fd, "slowloris")) {
            close(fd);
            return -1;
        }
        const uint8_t q[] = {'Q', 0, 0, 0x10, 0, 'S'}; /* announces 4 KiB */
        if (send(fd, q, sizeof q, MSG_NOSIGNAL) != (ssize_t)sizeof q) {
            close(fd);
            return -1;
        }
    } else {
        const uint8_t st[] = {0, 0, 0x02, 0}; /* announces 512 bytes */
        if (send(fd, st, sizeof st, MSG_NOSIGNAL) != (ssize_t)sizeof st) {
            close(fd);
            return -1;
        }
    }
    atomic_fetch_add(&g_slow_opened, 1);
    return fd;
}

static void *slowloris_main(void *arg) {
    (void)arg;
    slow_sock socks[BENCH_SLOW_MAX];
    for (int i = 0; i < g_nslow; i++)
        socks[i] = (slow_sock){.fd = slow_open(i)};
    while (!atomic_load(&g_stop_hostile)) {
        for (int i = 0; i < g_nslow && !atomic_load(&g_stop_hostile); i++) {
            slow_sock *s = &socks[i];
            if (s->fd < 0) {
                s->fd = slow_open(i);
                s->sent = 0;
                continue;
            }
            struct pollfd p = {.fd = s->fd, .events = POLLIN};
            bool closed = false;
            if (poll(&p, 1, 0) == 1) { /* the server spoke: its error, then the close */
                char buf[512];
                ssize_t n = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);
                closed = n == 0 || (n < 0 && errno != EAGAIN);
                if (n > 0) closed = true; /* a FATAL: it is closing */
            }
            if (!closed && s->sent < 400) { /* one more byte, never the whole message */
                closed = send(s->fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1;
                s->sent++;
            }
            if (closed) {
                atomic_fetch_add(&g_slow_closed_by_server, 1);
                close(s->fd);
                s->fd = -1;
            }
        }
        ms_sleep(500);
    }
    for (int i = 0; i < g_nslow; i++)
        if (socks[i].fd >= 0) close(socks[i].fd);
    return NULL;
}

static void *oversized_main(void *arg) {
    (void)arg;
    while (!atomic_load(&g_stop_hostile)) {
        int64_t t0 = base_monotonic_ns();
        int fd = raw_connect();
        if (fd < 0) {
            ms_sleep(10);
            continue;
        }
        if (raw_login(fd, "oversized")) {
            const uint8_t q[] = {'Q', 0x7f, 0xff, 0xff, 0xf0, 'S', 'E', 'L'};
            bool e = false;
            if (send(fd, q, sizeof q, MSG_NOSIGNAL) == (ssize_t)sizeof q) {
                read_until_closed(fd, &e);
                atomic_fetch_add(&g_oversized, 1);
                if (e) atomic_fetch_add(&g_oversized_08p01, 1);
            }
        } else {
            ms_sleep(5); /* refused (the flood holds every slot): try again */
        }
        close(fd);
        pace(t0);
    }
    return NULL;
}

static void *flood_main(void *arg) {
    (void)arg;
    char conninfo[4][700];
    for (int u = 0; u < 4; u++)
        snprintf(conninfo[u], sizeof conninfo[u], "%s%suser=flood%d&connect_timeout=10", g_url,
                 strchr(g_url, '?') ? "&" : "?", u);
    PGconn *held[BENCH_FLOOD_MAX];
    while (!atomic_load(&g_stop_hostile)) {
        int64_t t0 = base_monotonic_ns();
        int n = 0;
        for (int u = 0; u < 4 && !atomic_load(&g_stop_hostile); u++) {
            while (n < BENCH_FLOOD_MAX && !atomic_load(&g_stop_hostile)) {
                PGconn *c = PQconnectdb(conninfo[u]);
                if (PQstatus(c) != CONNECTION_OK) {
                    atomic_fetch_add(&g_flood_refused, 1);
                    PQfinish(c);
                    break; /* this user's or the node's limit */
                }
                atomic_fetch_add(&g_flood_sessions, 1);
                held[n++] = c;
            }
        }
        ms_sleep(200);
        for (int i = 0; i < n; i++)
            PQfinish(held[i]);
        pace(t0);
    }
    return NULL;
}

static void *garbage_main(void *arg) {
    (void)arg;
    uint64_t x = 0x9E3779B97F4A7C15ull ^ (uint64_t)base_monotonic_ns();
    while (!atomic_load(&g_stop_hostile)) {
        int64_t t0 = base_monotonic_ns();
        int fd = raw_connect();
        if (fd < 0) {
            ms_sleep(10);
            continue;
        }
        uint8_t junk[256];
        for (size_t i = 0; i < sizeof junk; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            junk[i] = (uint8_t)x;
        }
        bool e = false;
        if (send(fd, junk, sizeof junk, MSG_NOSIGNAL) >= 0) {
            atomic_fetch_add(&g_garbage, 1);
            if (read_until_closed(fd, &e)) atomic_fetch_add(&g_garbage_closed, 1);
        }
        close(fd);
        pace(t0);
    }
    return NULL;
}

/* ---- the normal workload ---------------------------------------------------------- */

typedef struct client {
    pthread_t thread;
    PGconn *conn; /* opened before phase 1, owner: main */
    int index;
    int64_t deadline_ns;
    uint64_t done, errors;
    char first_error[256];
} client;

static void *client_main(void *arg) {
    client *cl = arg;
    PGconn *c = cl->conn;
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(cl->first_error, sizeof cl->first_error, "connection lost: %s",
                 PQerrorMessage(c));
        cl->errors++;
        return NULL;
    }
    uint64_t x = 88172645463325252ull + (uint64_t)cl->index * 7919;
    char sql[160];
    for (uint64_t i = 0; base_monotonic_ns() < cl->deadline_ns; i++) {
        long id = -1;
        if (i % 2 == 0) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            snprintf(sql, sizeof sql, "SELECT v FROM bench_hostile WHERE id = %d",
                     (int)(x % BENCH_ROWS) + 1);
        } else {
            id = atomic_fetch_add(&g_next_id, 1);
            snprintf(sql, sizeof sql, "INSERT INTO bench_hostile VALUES (%ld, %d)", id,
                     cl->index);
        }
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            cl->done++;
            if (id >= 0 && id - BENCH_FIRST_INSERT_ID < BENCH_INSERTS_MAX)
                atomic_store(&g_acked[id - BENCH_FIRST_INSERT_ID], 1);
        } else {
            if (cl->errors++ == 0)
                snprintf(cl->first_error, sizeof cl->first_error, "%s", PQresultErrorMessage(r));
        }
        PQclear(r);
        if (PQstatus(c) != CONNECTION_OK) break;
    }
    return NULL;
}

static atomic_long g_probe_ok, g_probe_refused;

/* A fresh session every 200 ms while the hostile threads run. */
static void *probe_main(void *arg) {
    (void)arg;
    while (!atomic_load(&g_stop_hostile)) {
        PGconn *c = PQconnectdb(g_url);
        atomic_fetch_add(PQstatus(c) == CONNECTION_OK ? &g_probe_ok : &g_probe_refused, 1);
        PQfinish(c);
        ms_sleep(200);
    }
    return NULL;
}

/* One phase: nclients (connections in conns) for seconds; returns
** statements per second. */
static double run_phase(const char *name, PGconn **conns, int nclients, int seconds) {
    client cls[BENCH_CLIENTS_MAX];
    int64_t start = base_monotonic_ns();
    for (int i = 0; i < nclients; i++) {
        cls[i] = (client){.index = i, .conn = conns[i],
                          .deadline_ns = start + (int64_t)seconds * 1000000000};
        pthread_create(&cls[i].thread, NULL, client_main, &cls[i]);
    }
    uint64_t done = 0, errors = 0;
    for (int i = 0; i < nclients; i++) {
        pthread_join(cls[i].thread, NULL);
        done += cls[i].done;
        errors += cls[i].errors;
        if (cls[i].errors > 0) printf("  client %d: first error: %s", i, cls[i].first_error);
    }
    double secs = (double)(base_monotonic_ns() - start) / 1e9;
    double tps = (double)done / secs;
    printf("%-24s %8.0f statements/s (%llu ok, %llu errors, %.1f s, %d clients)\n", name, tps,
           (unsigned long long)done, (unsigned long long)errors, secs, nclients);
    return tps;
}

static int setup_table(void) {
    PGconn *c = PQconnectdb(g_url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bench: cannot connect to %s: %s", g_url, PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    const char *host = PQhost(c), *port = PQport(c);
    if (host != NULL && host[0] != '\0' && host[0] != '/')
        base_strlcpy(g_host, host, sizeof g_host);
    g_port = port != NULL ? atoi(port) : 0;
    const char *stmts[] = {"DROP TABLE IF EXISTS bench_hostile",
                           "CREATE TABLE bench_hostile (id INT PRIMARY KEY, v INT)",
                           "INSERT INTO bench_hostile SELECT g, 0 FROM generate_series(1, 1000) AS g"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(stmts); i++) {
        PGresult *r = PQexec(c, stmts[i]);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "bench: %s: %s", stmts[i], PQresultErrorMessage(r));
            PQclear(r);
            PQfinish(c);
            return -1;
        }
        PQclear(r);
    }
    PQfinish(c);
    return 0;
}

/* Every acknowledged insert is in the table: 0, or the number missing (or
** -1: cannot check). */
static long check_acked(long *acked_out) {
    PGconn *c = PQconnectdb(g_url);
    if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        return -1;
    }
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT id FROM bench_hostile WHERE id >= %d",
             BENCH_FIRST_INSERT_ID);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "bench: %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(c);
        return -1;
    }
    uint8_t *found = calloc(BENCH_INSERTS_MAX, 1);
    if (found == NULL) {
        PQclear(r);
        PQfinish(c);
        return -1;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        long id = atol(PQgetvalue(r, i, 0)) - BENCH_FIRST_INSERT_ID;
        if (id >= 0 && id < BENCH_INSERTS_MAX) found[id] = 1;
    }
    long missing = 0, acked = 0;
    for (long i = 0; i < BENCH_INSERTS_MAX; i++) {
        if (!atomic_load(&g_acked[i])) continue;
        acked++;
        if (!found[i]) missing++;
    }
    printf("rows: %d inserted rows found, %ld acknowledged, %ld acknowledged but missing\n",
           PQntuples(r), acked, missing);
    free(found);
    PQclear(r);
    PQfinish(c);
    *acked_out = acked;
    return missing;
}

int main(int argc, char **argv) {
    const char *bin = NULL, *max_conns = "128";
    bool start = false;
    int seconds = 5, nclients = 4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--url") == 0 && v) base_strlcpy(g_url, v, sizeof g_url), i++;
        else if (strcmp(a, "--start") == 0) start = true;
        else if (strcmp(a, "--bin") == 0 && v) bin = v, i++;
        else if (strcmp(a, "--duration") == 0 && v) seconds = atoi(v), i++;
        else if (strcmp(a, "--clients") == 0 && v) nclients = atoi(v), i++;
        else if (strcmp(a, "--slowloris") == 0 && v) g_nslow = atoi(v), i++;
        else if (strcmp(a, "--max-conns") == 0 && v) max_conns = v, i++;
        else if (strcmp(a, "--rate") == 0 && v) g_rate = atoi(v), i++;
        else {
            fprintf(stderr,
                    "usage: bench_hostile [--url URL | --start [--bin PATH]] [--duration S]\n"
                    "                     [--clients N] [--slowloris N] [--max-conns N] [--rate N]\n");
            return 2;
        }
    }
    if (seconds < 1) seconds = 1;
    if (nclients < 1 || nclients > BENCH_CLIENTS_MAX) nclients = 4;
    if (g_nslow < 0 || g_nslow > BENCH_SLOW_MAX) g_nslow = 64;
    signal(SIGPIPE, SIG_IGN);
    g_acked = calloc(BENCH_INSERTS_MAX, 1);
    if (g_acked == NULL) return 1;
    pid_t node = -1;
    char dir[256] = "";
    if (start) {
        if (bin == NULL) bin = getenv("MERIDIAN_BIN");
        if (bin == NULL) bin = "./meridian";
        node = start_node(bin, max_conns, dir, sizeof dir);
        if (node < 0) {
            fprintf(stderr, "bench: cannot start %s\n", bin);
            return 1;
        }
    }
    if (g_url[0] == '\0') {
        fprintf(stderr, "bench: give --url or --start\n");
        return 2;
    }
    int rc = 1;
    if (setup_table() != 0) goto out;
    printf("bench_hostile: %s, %d clients, %d s per phase, %d slowloris sockets, "
           "--max-sql-connections %s, hostile loops at %s%d/s\n",
           g_url, nclients, seconds, g_nslow, start ? max_conns : "(the node's)",
           g_rate > 0 ? "" : "unpaced ", g_rate);
    PGconn *conns[BENCH_CLIENTS_MAX];
    for (int i = 0; i < nclients; i++)
        conns[i] = PQconnectdb(g_url);
    double alone = run_phase("alone", conns, nclients, seconds);

    pthread_t hostile[5];
    void *(*fns[5])(void *) = {slowloris_main, oversized_main, flood_main, garbage_main,
                               probe_main};
    atomic_store(&g_stop_hostile, false);
    for (int i = 0; i < 5; i++)
        pthread_create(&hostile[i], NULL, fns[i], NULL);
    ms_sleep(500); /* let the flood reach the limit first */
    double attacked = run_phase("under hostile clients", conns, nclients, seconds);
    atomic_store(&g_stop_hostile, true);
    for (int i = 0; i < 5; i++)
        pthread_join(hostile[i], NULL);
    for (int i = 0; i < nclients; i++)
        PQfinish(conns[i]);
    printf("fresh sessions during the attack: %ld got in, %ld refused\n",
           atomic_load(&g_probe_ok), atomic_load(&g_probe_refused));

    printf("ratio (under attack / alone): %.2f\n", alone > 0 ? attacked / alone : 0.0);
    printf("hostile: slowloris %ld opened, %ld closed by the server; oversized %ld (%ld got "
           "08P01); flood %ld sessions, %ld refused at the limit; garbage %ld (%ld closed)\n",
           atomic_load(&g_slow_opened), atomic_load(&g_slow_closed_by_server),
           atomic_load(&g_oversized), atomic_load(&g_oversized_08p01),
           atomic_load(&g_flood_sessions), atomic_load(&g_flood_refused),
           atomic_load(&g_garbage), atomic_load(&g_garbage_closed));
    long acked = 0;
    long missing = check_acked(&acked);
    if (missing < 0) {
        fprintf(stderr, "bench: cannot check the rows\n");
    } else if (missing > 0) {
        printf("LOST DATA: %ld acknowledged inserts missing\n", missing);
    } else {
        printf("no acknowledged insert lost\n");
        rc = 0;
    }
out:
    if (node > 0) bench_stop_node(node, dir);
    free((void *)g_acked);
    return rc;
}
