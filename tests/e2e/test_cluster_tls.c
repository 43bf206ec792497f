/*
** tests/e2e/test_cluster_tls.c: a 3-node cluster of real `meridian`
** processes started with --certs-dir (issue 9: TLS for every node-to-node
** connection, mutual authentication by node certificates of the cluster CA).
**
** Certificates come from `meridian cert` (the cluster CA, one node
** certificate for 127.0.0.1 shared by the nodes, client.root; a foreign CA
** with its own node certificate). The group setup starts three nodes with
** --certs-dir, runs `meridian init --certs-dir` (the certs dir holds
** client.root.crt, so the tool shows root's client certificate) and waits
** until SQL works through every node. Then, in order:
**   - SQL through every node with sslmode=verify-full (TLSv1.3), a write
**     through one read through the others;
**   - `meridian node status --certs-dir` lists 3 live nodes; the tool
**     without certificates is refused (and the node logs why);
**   - node drain/decommission/recommission with a non-admin user's client
**     certificate are refused with "permission denied" (by the tool
**     without --user; by the node with --user app, and with app's
**     certificate posing as node.crt) and change nothing;
**   - admin commands from a certs dir with only ca.crt and client.root.*:
**     node status, and node drain of node 3 (which then shows draining);
**     a user granted admin (--user ops) may, and no longer after REVOKE;
**     a certs dir with only ca.crt and node.* still works (node status);
**   - root's client certificate on a transport of its own (rpc_uv, as the
**     tool's) sending node-internal methods to real nodes: a KV request
**     and a JOIN by address, a Raft message by node id; each closes its
**     connection (the node logs it), nothing reaches the handlers, the
**     cluster is unaffected;
**   - PROBE with a client certificate: refused to a user who is not root
**     or in admin, answered to root and to a member of admin;
**   - SIGHUP reloads the certificates (logged), RPC and SQL still work;
**   - kill -9 of a node while writing through another, restart with the
**     same flags: every acknowledged write readable through every node;
**   - a node of a foreign CA and an --insecure node try to join: both are
**     refused with a clear log line on each side, the cluster stays at 3.
** Every process dies with the test (mtest: PR_SET_PDEATHSIG and atexit);
** every wait is bounded.
*/
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "e2e_util.h"
#include "range/range.h" /* RANGE_RPC_METHOD_KV, RANGE_RPC_METHOD_RAFT */
#include "rpc/rpc.h"

#define NODES 3
#define READY_MS (60 * 1000)    /* SQL through a node after init / restart */
#define CMD_MS (60 * 1000)      /* one meridian command */
#define STATUS_MS (30 * 1000)   /* node status shows what we wait for */
#define LOG_MS (20 * 1000)      /* a line appears in a node's log */
#define WRITE_MS (45 * 1000)    /* one write succeeds (through a failover) */
#define WRITES 30

static mtest_node nodes[NODES + 1];
static int ports[NODES + 1];
static char join_list[256];
static char g_dir[256];
static char g_certs[320], g_ca_key[320];       /* the cluster's */
static char g_foreign[320], g_foreign_key[320]; /* another CA */

static int64_t now_ms(void) { return base_monotonic_ns() / 1000000; }

static void pause_ms(int ms) { /* a bounded polling step, not a wait for an event */
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

static int free_ports(int *out, int n) {
    int fds[8];
    if (n > 8) return -1;
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0)
            return -1;
        out[i] = ntohs(a.sin_port);
    }
    for (int i = 0; i < n; i++) close(fds[i]);
    return 0;
}

/* Node i on ports[i], joining the cluster, with certs (NULL: --insecure).
** Node 1 logs at INFO (the SIGHUP outcome is an INFO line). */
static int start_node(int i, const char *store, const char *certs) {
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", ports[i]);
    const char *args[10];
    int a = 0;
    args[a++] = "--listen-addr";
    args[a++] = listen;
    args[a++] = "--join";
    args[a++] = join_list;
    if (certs != NULL) {
        args[a++] = "--certs-dir";
        args[a++] = certs;
    } else {
        args[a++] = "--insecure";
    }
    args[a++] = "--log-level";
    args[a++] = i == 0 ? "info" : "warn";
    args[a] = NULL;
    return mtest_node_start_raw(&nodes[i], store, args);
}

/* meridian <cmd> [<sub>] --host 127.0.0.1:port [--certs-dir certs]. */
static int run_tool(const char *cmd, const char *sub, int port, const char *certs, char **out,
                    char **err) {
    char host[32];
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    const char *argv[10];
    int a = 0;
    argv[a++] = mtest_meridian_bin();
    argv[a++] = cmd;
    if (sub != NULL) argv[a++] = sub;
    argv[a++] = "--host";
    argv[a++] = host;
    if (certs != NULL) {
        argv[a++] = "--certs-dir";
        argv[a++] = certs;
    }
    argv[a] = NULL;
    return mtest_run(argv, NULL, CMD_MS, out, err);
}

/* True when node i's log holds `text` now. */
static bool log_holds(int i, const char *text) {
    char path[MTEST_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/logs/meridian.log", nodes[i].store);
    FILE *f = fopen(path, "r");
    if (f == NULL) return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL) found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

/* True once the log of node `first`, or of any node in [first, last],
** holds `text` (bounded by LOG_MS). */
static bool log_has_in(int first, int last, const char *text) {
    for (int64_t deadline = now_ms() + LOG_MS; now_ms() < deadline; pause_ms(100))
        for (int i = first; i <= last; i++)
            if (log_holds(i, text)) return true;
    print_error("no log of nodes %d..%d has a line with \"%s\"\n", first + 1, last + 1, text);
    return false;
}

static bool log_has(int i, const char *text) { return log_has_in(i, i, text); }

/* Live nodes per `meridian node status --certs-dir` through port; -1 when
** the command failed. */
static int live_nodes(int port, int *rows_out) {
    char *out = NULL, *err = NULL;
    int st = run_tool("node", "status", port, g_certs, &out, &err);
    int live = -1, rows = 0;
    if (st == 0) {
        live = 0;
        char *save = NULL;
        for (char *line = strtok_r(out, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save)) {
            const char *p = line + strspn(line, " "); /* ids are right-aligned */
            if (*p < '0' || *p > '9') continue;
            rows++;
            live += strstr(line, " live ") != NULL;
        }
    }
    base_free(out);
    base_free(err);
    if (rows_out) *rows_out = rows;
    return live;
}

static void wait_live(int port, int want) {
    int live = -1, rows = 0;
    for (int64_t deadline = now_ms() + STATUS_MS; now_ms() < deadline; pause_ms(200))
        if ((live = live_nodes(port, &rows)) == want && rows == want) break;
    if (live != want || rows != want)
        print_error("node status: %d live of %d nodes, want %d\n", live, rows, want);
    assert_int_equal(live, want);
    assert_int_equal(rows, want);
}

static PGconn *conn(int i) {
    PGconn *c = mtest_connect(&nodes[i]);
    assert_non_null(c);
    assert_true(PQsslInUse(c));
    return c;
}

static int cert_cmd(const char *const *argv) {
    char *out = NULL, *err = NULL;
    int st = mtest_run(argv, NULL, CMD_MS, &out, &err);
    if (st != 0) fprintf(stderr, "%s %s: exit %d: %s%s\n", argv[1], argv[2], st, out, err);
    base_free(out);
    base_free(err);
    return st;
}

static int group_setup(void **state) {
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/meridian-ctls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(g_dir) == NULL) return -1;
    snprintf(g_certs, sizeof g_certs, "%s/certs", g_dir);
    snprintf(g_ca_key, sizeof g_ca_key, "%s/ca.key", g_dir);
    snprintf(g_foreign, sizeof g_foreign, "%s/foreign", g_dir);
    snprintf(g_foreign_key, sizeof g_foreign_key, "%s/foreign.key", g_dir);
    const char *bin = mtest_meridian_bin();
    const char *ca[] = {bin, "cert", "create-ca", "--certs-dir", g_certs, "--ca-key", g_ca_key,
                        NULL};
    const char *node[] = {bin, "cert", "create-node", "127.0.0.1", "localhost", "--certs-dir",
                          g_certs, "--ca-key", g_ca_key, NULL};
    const char *client[] = {bin, "cert", "create-client", "root", "--certs-dir", g_certs,
                            "--ca-key", g_ca_key, NULL};
    const char *fca[] = {bin, "cert", "create-ca", "--certs-dir", g_foreign, "--ca-key",
                         g_foreign_key, NULL};
    const char *fnode[] = {bin, "cert", "create-node", "127.0.0.1", "localhost", "--certs-dir",
                           g_foreign, "--ca-key", g_foreign_key, NULL};
    const char *const *cmds[] = {ca, node, client, fca, fnode};
    for (size_t i = 0; i < BASE_ARRAY_LEN(cmds); i++)
        if (cert_cmd(cmds[i]) != 0) return -1;

    if (free_ports(ports, NODES + 1) != 0) return -1;
    size_t pos = 0;
    for (int i = 0; i < NODES; i++)
        pos += (size_t)snprintf(join_list + pos, sizeof join_list - pos, "%s127.0.0.1:%d",
                                i ? "," : "", ports[i]);
    for (int i = 0; i < NODES; i++)
        if (start_node(i, NULL, g_certs) != 0) return -1;
    char *out = NULL, *err = NULL;
    int64_t t0 = now_ms();
    int st = run_tool("init", NULL, ports[0], g_certs, &out, &err);
    printf("meridian init --certs-dir: exit %d in %lld ms\n%s%s", st, (long long)(now_ms() - t0),
           out ? out : "", err ? err : "");
    char want[64];
    snprintf(want, sizeof want, "initialized with %d nodes", NODES);
    bool ok = st == 0 && out != NULL && strstr(out, want) != NULL;
    base_free(out);
    base_free(err);
    if (!ok) return -1;
    for (int i = 0; i < NODES; i++) {
        PGconn *c = mtest_connect(&nodes[i]);
        if (c == NULL) return -1;
        PQfinish(c);
    }
    printf("TLS cluster ready %lld ms after init started\n", (long long)(now_ms() - t0));
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    int bad = 0;
    for (int i = 0; i <= NODES; i++) {
        if (nodes[i].pid > 0) {
            int st = mtest_node_stop(&nodes[i]);
            if (st != 0) {
                fprintf(stderr, "node %d exit status after SIGTERM: %d (want 0)\n", i + 1, st);
                bad = 1;
            }
        }
        mtest_node_destroy(&nodes[i]);
    }
    if (g_dir[0]) mtest_remove_tree(g_dir);
    return bad ? -1 : 0;
}

/* ---- tests ----------------------------------------------------------------------- */

static void test_sql_verify_full_every_node(void **state) {
    (void)state;
    PGconn *c[NODES];
    for (int i = 0; i < NODES; i++) {
        c[i] = conn(i);
        assert_non_null(strstr(nodes[i].url, "sslmode=verify-full"));
        const char *proto = PQsslAttribute(c[i], "protocol");
        assert_non_null(proto);
        assert_string_equal(proto, "TLSv1.3");
    }
    e2e_ok(c[0], "CREATE TABLE kv (k INT PRIMARY KEY, v TEXT)");
    e2e_ok(c[0], "INSERT INTO kv VALUES (1, 'one'), (2, 'two')");
    e2e_rows_equal(c[1], "SELECT k, v FROM kv ORDER BY k", "1|one\n2|two\n");
    e2e_rows_equal(c[2], "SELECT k, v FROM kv ORDER BY k", "1|one\n2|two\n");
    e2e_ok(c[2], "INSERT INTO kv VALUES (3, 'three')");
    e2e_rows_equal(c[0], "SELECT v FROM kv WHERE k = 3", "three\n");
    e2e_fails(c[1], "INSERT INTO kv VALUES (1, 'again')", "23505"); /* written through node 1 */
    for (int i = 0; i < NODES; i++) PQfinish(c[i]);
}

static void test_node_status_needs_tls(void **state) {
    (void)state;
    wait_live(ports[1], NODES);
    /* The tool in plaintext: refused before anything is read, both sides say why. */
    char *out = NULL, *err = NULL;
    int st = run_tool("node", "status", ports[1], NULL, &out, &err);
    printf("node status without --certs-dir: exit %d: %s", st, err ? err : "");
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, "cannot reach the node"));
    base_free(out);
    base_free(err);
    assert_true(log_has(1, "plaintext RPC connection from"));
    /* And `meridian init` on the running cluster says it is initialized. */
    out = err = NULL;
    st = run_tool("init", NULL, ports[2], g_certs, &out, &err);
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, "cluster already initialized"));
    base_free(out);
    base_free(err);
}

/* Copy src to dst (created with mode: the TLS loader refuses a key readable
** by others). 0 or -1. */
static int copy_file(const char *src, const char *dst, mode_t mode) {
    FILE *in = fopen(src, "rb");
    if (in == NULL) return -1;
    int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL, mode);
    FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
    char buf[4096];
    size_t n;
    int rc = out != NULL ? 0 : -1;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) rc = -1;
    if (ferror(in)) rc = -1;
    fclose(in);
    if (out != NULL && fclose(out) != 0) rc = -1;
    if (out == NULL && fd >= 0) close(fd);
    return rc;
}

/* A certs dir holding ca.crt and user's client certificate, under the
** names given (node.crt/node.key: a client certificate posing as a node's). */
static void user_certs_dir(const char *dir, const char *user, const char *crt_name) {
    char src[400], dst[400];
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(src, sizeof src, "%s/ca.crt", g_certs);
    snprintf(dst, sizeof dst, "%s/ca.crt", dir);
    assert_int_equal(copy_file(src, dst, 0644), 0);
    snprintf(src, sizeof src, "%s/client.%s.crt", g_certs, user);
    snprintf(dst, sizeof dst, "%s/%s.crt", dir, crt_name);
    assert_int_equal(copy_file(src, dst, 0644), 0);
    snprintf(src, sizeof src, "%s/client.%s.key", g_certs, user);
    snprintf(dst, sizeof dst, "%s/%s.key", dir, crt_name);
    assert_int_equal(copy_file(src, dst, 0600), 0);
}

/* meridian node <sub> [id] --host 127.0.0.1:port --certs-dir certs
** [--user user]. */
static int run_node_cmd(const char *sub, const char *id, int port, const char *certs,
                        const char *user, char **out, char **err) {
    char host[32];
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    const char *argv[12];
    int a = 0;
    argv[a++] = mtest_meridian_bin();
    argv[a++] = "node";
    argv[a++] = sub;
    argv[a++] = "--host";
    argv[a++] = host;
    argv[a++] = "--certs-dir";
    argv[a++] = certs;
    if (user != NULL) {
        argv[a++] = "--user";
        argv[a++] = user;
    }
    if (id != NULL) argv[a++] = id;
    argv[a] = NULL;
    return mtest_run(argv, NULL, CMD_MS, out, err);
}

/* Admin RPCs (drain, decommission, recommission) from a user who is not an
** admin: with only the user's certificates and no --user the tool refuses
** (no root or node certificate to show); with --user app, and with app's
** certificate posing as node.crt, the node refuses: app is not root or a
** member of admin. Nothing changes: every node stays active and not
** draining. */
static void test_admin_rpcs_refuse_user_certificates(void **state) {
    (void)state;
    const char *bin = mtest_meridian_bin();
    const char *client[] = {bin, "cert", "create-client", "app", "--certs-dir", g_certs,
                            "--ca-key", g_ca_key, NULL};
    assert_int_equal(cert_cmd(client), 0);
    char user[400], posing[400];
    snprintf(user, sizeof user, "%s/app-certs", g_dir);
    snprintf(posing, sizeof posing, "%s/app-as-node", g_dir);
    user_certs_dir(user, "app", "client.app");
    user_certs_dir(posing, "app", "node");

    static const char *const subs[][2] = {{"drain", NULL}, {"decommission", "3"},
                                          {"recommission", "3"}};
    for (size_t i = 0; i < BASE_ARRAY_LEN(subs); i++) {
        char *out = NULL, *err = NULL;
        int st = run_node_cmd(subs[i][0], subs[i][1], ports[2], user, NULL, &out, &err);
        printf("node %s with app's certificates: exit %d: %s", subs[i][0], st, err ? err : "");
        assert_int_equal(st, 1);
        assert_non_null(strstr(err, "permission denied"));
        assert_non_null(strstr(err, "client.root.crt"));
        base_free(out);
        base_free(err);
        out = err = NULL;
        st = run_node_cmd(subs[i][0], subs[i][1], ports[2], user, "app", &out, &err);
        printf("node %s --user app: exit %d: %s", subs[i][0], st, err ? err : "");
        assert_int_equal(st, 1);
        assert_non_null(strstr(err, "permission denied: user \"app\" is not root or a member "
                                    "of admin"));
        base_free(out);
        base_free(err);
    }
    for (size_t i = 0; i < 2; i++) {
        char *out = NULL, *err = NULL;
        int st = run_node_cmd(subs[i][0], subs[i][1], ports[2], posing, NULL, &out, &err);
        printf("node %s with app's certificate as node.crt: exit %d: %s", subs[i][0], st,
               err ? err : "");
        assert_int_equal(st, 1);
        assert_non_null(strstr(err, "permission denied"));
        base_free(out);
        base_free(err);
    }
    /* The node says why it refused. */
    assert_true(log_has(2, "from a client certificate of user \"app\" refused"));
    /* Nothing changed. */
    char *out = NULL, *err = NULL;
    assert_int_equal(run_tool("node", "status", ports[0], g_certs, &out, &err), 0);
    printf("%s", out);
    assert_null(strstr(out, "decommission"));
    assert_null(strstr(out, " yes "));
    base_free(out);
    base_free(err);
    wait_live(ports[0], NODES);
}

/* SQL as root through node 1 (its client certificate). */
static void sql_ok(const char *statement) {
    PGconn *c = conn(0);
    e2e_ok(c, statement);
    PQfinish(c);
}

/* Admin commands with root's client certificate and nothing else (no node
** certificate in the certs dir): node status, and node drain of node 3,
** which then shows draining (a restart ends it: test_kill9_and_restart
** restarts node 3). A user granted admin may too, until REVOKE. A certs
** dir with only the node certificate still works. */
static void test_admin_rpcs_with_root_client_certificate(void **state) {
    (void)state;
    char root[400], ops[400], node_only[400];
    snprintf(root, sizeof root, "%s/root-certs", g_dir);
    snprintf(ops, sizeof ops, "%s/ops-certs", g_dir);
    snprintf(node_only, sizeof node_only, "%s/node-certs", g_dir);
    user_certs_dir(root, "root", "client.root");
    char *out = NULL, *err = NULL;
    int st = run_node_cmd("status", NULL, ports[1], root, NULL, &out, &err);
    printf("node status with client.root only: exit %d\n%s%s", st, out ? out : "",
           err ? err : "");
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, " live "));
    base_free(out);
    base_free(err);

    out = err = NULL;
    st = run_node_cmd("drain", NULL, ports[2], root, NULL, &out, &err);
    printf("node drain with client.root only: exit %d\n%s%s", st, out ? out : "",
           err ? err : "");
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "drained"));
    base_free(out);
    base_free(err);
    out = err = NULL;
    assert_int_equal(run_tool("node", "status", ports[0], root, &out, &err), 0);
    printf("%s", out);
    assert_non_null(strstr(out, " yes ")); /* node 3 draining */
    base_free(out);
    base_free(err);

    /* A member of admin, by its own client certificate. */
    sql_ok("CREATE USER ops");
    sql_ok("GRANT admin TO ops");
    const char *bin = mtest_meridian_bin();
    const char *client[] = {bin, "cert", "create-client", "ops", "--certs-dir", g_certs,
                            "--ca-key", g_ca_key, NULL};
    assert_int_equal(cert_cmd(client), 0);
    user_certs_dir(ops, "ops", "client.ops");
    out = err = NULL;
    st = run_node_cmd("status", NULL, ports[0], ops, "ops", &out, &err);
    printf("node status --user ops (admin): exit %d: %s", st, err ? err : "");
    assert_int_equal(st, 0);
    base_free(out);
    base_free(err);
    sql_ok("REVOKE admin FROM ops");
    out = err = NULL;
    st = run_node_cmd("status", NULL, ports[0], ops, "ops", &out, &err);
    printf("node status --user ops (revoked): exit %d: %s", st, err ? err : "");
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, "not root or a member of admin"));
    base_free(out);
    base_free(err);

    /* The node certificate alone: as before. */
    char src[600], dst[600];
    assert_int_equal(mkdir(node_only, 0700), 0);
    static const struct { const char *name; mode_t mode; } files[] = {
        {"ca.crt", 0644}, {"node.crt", 0644}, {"node.key", 0600}};
    for (size_t i = 0; i < BASE_ARRAY_LEN(files); i++) {
        snprintf(src, sizeof src, "%s/%s", g_certs, files[i].name);
        snprintf(dst, sizeof dst, "%s/%s", node_only, files[i].name);
        assert_int_equal(copy_file(src, dst, files[i].mode), 0);
    }
    out = err = NULL;
    st = run_node_cmd("status", NULL, ports[1], node_only, NULL, &out, &err);
    assert_int_equal(st, 0);
    base_free(out);
    base_free(err);
}

/* The outcome of one rpc request, filled by its callback (loop thread). */
typedef struct rpc_outcome {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
    int32_t status;
} rpc_outcome;

static void on_rpc_outcome(void *ctx, int rc, const rpc_message *m) {
    rpc_outcome *o = ctx;
    pthread_mutex_lock(&o->mu);
    o->done = true;
    o->rc = rc;
    o->status = rc == RPC_OK ? m->status : 0;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

/* One request by address from uv to 127.0.0.1:port; its rc (bounded wait),
** the node's status in *status when status is not NULL. */
static int request_status_by_addr(rpc_uv *uv, int port, uint32_t method, int32_t *status) {
    rpc_outcome o = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    uint8_t junk[16] = {1, 2, 3};
    assert_int_equal(rpc_uv_request_addr(uv, "127.0.0.1", port, method, junk, sizeof junk,
                                         CMD_MS, on_rpc_outcome, &o), RPC_OK);
    pthread_mutex_lock(&o.mu); /* the callback runs exactly once, by CMD_MS at the latest */
    while (!o.done) pthread_cond_wait(&o.cv, &o.mu);
    pthread_mutex_unlock(&o.mu);
    printf("method %u from a client certificate: rc %s, status %d\n", (unsigned)method,
           rpc_strerror(o.rc), (int)o.status);
    if (status != NULL) *status = o.status;
    return o.rc;
}

static int request_by_addr(rpc_uv *uv, int port, uint32_t method) {
    return request_status_by_addr(uv, port, method, NULL);
}

/* A dial-only transport (as the tool's) showing client.<user> of g_certs. */
static rpc_uv *client_transport(const char *user, sec_tls_ctx **tls) {
    char err[SEC_ERR_MSG_SIZE], name[64];
    snprintf(name, sizeof name, "client.%s", user);
    sec_tls_options co = {.cert_name = name};
    assert_int_equal(sec_tls_client_ctx_new(g_certs, &co, tls, err, sizeof err), 0);
    rpc_uv_config cfg;
    rpc_uv_config_init(&cfg);
    cfg.node_id = RPC_NODE_ID_PROVISIONAL_MIN | (uint64_t)getpid();
    cfg.random_seed = cfg.node_id;
    cfg.listen_host = NULL; /* dial only */
    cfg.tls_client = *tls;
    rpc_uv *uv = NULL;
    assert_int_equal(rpc_uv_start(&cfg, &uv), RPC_OK);
    return uv;
}

/* PROBE is an admin method like the others: a client certificate of a
** user who is not root or in admin is refused by the node (status
** SRV_ERR_REFUSED, logged), root's is answered, and a member of admin's
** too (ops was granted admin and then revoked by the test before: refused;
** granted again: answered). */
static void test_probe_needs_admin_certificate(void **state) {
    (void)state;
    const uint32_t probe = 0x5052u; /* SRV_METHOD_PROBE */
    const int32_t refused = -7008;  /* SRV_ERR_REFUSED */
    int32_t status = 0;
    sec_tls_ctx *tls = NULL;
    rpc_uv *uv = client_transport("app", &tls);
    assert_int_equal(request_status_by_addr(uv, ports[1], probe, &status), RPC_OK);
    assert_int_equal(status, refused);
    assert_true(log_has(1, "admin request (method 20562) from a client certificate of user "
                           "\"app\" refused"));
    rpc_uv_free(uv);
    sec_tls_ctx_free(tls);

    uv = client_transport("root", &tls);
    assert_int_equal(request_status_by_addr(uv, ports[1], probe, &status), RPC_OK);
    assert_int_equal(status, 0);
    rpc_uv_free(uv);
    sec_tls_ctx_free(tls);

    uv = client_transport("ops", &tls); /* REVOKEd from admin above */
    assert_int_equal(request_status_by_addr(uv, ports[0], probe, &status), RPC_OK);
    assert_int_equal(status, refused);
    sql_ok("GRANT admin TO ops");
    assert_int_equal(request_status_by_addr(uv, ports[0], probe, &status), RPC_OK);
    assert_int_equal(status, 0);
    sql_ok("REVOKE admin FROM ops");
    rpc_uv_free(uv);
    sec_tls_ctx_free(tls);
}

/* Root's client certificate cannot reach node-internal methods: the
** node's transport closes the connection at the first such frame. */
static void test_client_cert_cannot_send_node_methods(void **state) {
    (void)state;
    char err[SEC_ERR_MSG_SIZE];
    sec_tls_ctx *tls = NULL;
    sec_tls_options co = {.cert_name = "client.root"};
    assert_int_equal(sec_tls_client_ctx_new(g_certs, &co, &tls, err, sizeof err), 0);
    rpc_uv_config cfg;
    rpc_uv_config_init(&cfg);
    cfg.node_id = RPC_NODE_ID_PROVISIONAL_MIN | (uint64_t)getpid(); /* as the tool's */
    cfg.random_seed = cfg.node_id;
    cfg.listen_host = NULL; /* dial only */
    cfg.tls_client = tls;
    rpc_uv *uv = NULL;
    assert_int_equal(rpc_uv_start(&cfg, &uv), RPC_OK);

    assert_int_not_equal(request_by_addr(uv, ports[1], RANGE_RPC_METHOD_KV), RPC_OK);
    char line[160];
    snprintf(line, sizeof line, "(user \"root\"): it sent a request of method %u",
             (unsigned)RANGE_RPC_METHOD_KV);
    assert_true(log_has(1, line));
    assert_int_not_equal(request_by_addr(uv, ports[2], 0x4A4Eu /* SRV_METHOD_JOIN */), RPC_OK);
    snprintf(line, sizeof line, "(user \"root\"): it sent a request of method %u", 0x4A4Eu);
    assert_true(log_has(2, line));
    /* Raft traffic is one-way, by node id: a side connection, closed at it. */
    assert_int_equal(rpc_uv_add_peer(uv, 1, "127.0.0.1", ports[0]), RPC_OK);
    uint8_t junk[8] = {0};
    assert_int_equal(rpc_send(rpc_uv_transport(uv), 1, RANGE_RPC_METHOD_RAFT, junk, sizeof junk),
                     RPC_OK);
    snprintf(line, sizeof line, "(user \"root\"): it sent a message of method %u",
             (unsigned)RANGE_RPC_METHOD_RAFT);
    assert_true(log_has(0, line));
    rpc_uv_free(uv);
    sec_tls_ctx_free(tls);
    wait_live(ports[0], NODES);
}

static void test_sighup_reload(void **state) {
    (void)state;
    assert_int_equal(kill(nodes[0].pid, SIGHUP), 0);
    assert_true(log_has(0, "TLS certificates reloaded"));
    assert_true(mtest_node_alive(&nodes[0]));
    PGconn *c = conn(0); /* a new SQL connection with the reloaded context */
    e2e_rows_equal(c, "SELECT count(*) FROM kv", "3\n");
    PQfinish(c);
    wait_live(ports[0], NODES);
}

/* INSERT id through c, retried (bounded by WRITE_MS) across a failover;
** reconnects a broken connection. True once acknowledged. */
static bool write_acked(PGconn **c, int node, int id) {
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO acked VALUES (%d)", id);
    for (int64_t deadline = now_ms() + WRITE_MS; now_ms() < deadline; pause_ms(100)) {
        PGresult *r = PQexec(*c, sql);
        ExecStatusType s = PQresultStatus(r);
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        bool dup = state != NULL && strcmp(state, "23505") == 0; /* an earlier try committed */
        PQclear(r);
        if (s == PGRES_COMMAND_OK || dup) return true;
        if (PQstatus(*c) == CONNECTION_BAD) {
            PQfinish(*c);
            *c = mtest_connect(&nodes[node]);
            if (*c == NULL) return false;
        }
    }
    return false;
}

static void test_kill9_and_restart(void **state) {
    (void)state;
    PGconn *c = conn(0);
    e2e_ok(c, "CREATE TABLE acked (id INT PRIMARY KEY)");
    for (int id = 1; id <= WRITES; id++) assert_true(write_acked(&c, 0, id));
    const int victim = 2;
    assert_int_equal(mtest_node_kill9(&nodes[victim]), 0);
    int64_t t0 = now_ms();
    for (int id = WRITES + 1; id <= 2 * WRITES; id++) assert_true(write_acked(&c, 0, id));
    printf("%d writes through node 1 acknowledged %lld ms after kill -9 of node 3\n", WRITES,
           (long long)(now_ms() - t0));
    PQfinish(c);
    assert_int_equal(start_node(victim, nodes[victim].store, g_certs), 0);
    for (int i = 0; i < NODES; i++) {
        PGconn *ci = conn(i);
        bool ok = false;
        for (int64_t d = now_ms() + READY_MS; !ok && now_ms() < d;) {
            PGresult *r = PQexec(ci, "SELECT count(*), min(id), max(id) FROM acked");
            ok = PQresultStatus(r) == PGRES_TUPLES_OK &&
                 atoi(PQgetvalue(r, 0, 0)) == 2 * WRITES && atoi(PQgetvalue(r, 0, 1)) == 1 &&
                 atoi(PQgetvalue(r, 0, 2)) == 2 * WRITES;
            PQclear(r);
            if (!ok) {
                if (PQstatus(ci) == CONNECTION_BAD) PQreset(ci);
                pause_ms(200);
            }
        }
        if (!ok) print_error("node %d does not show the %d acknowledged writes\n", i + 1,
                             2 * WRITES);
        assert_true(ok);
        PQfinish(ci);
    }
    wait_live(ports[victim], NODES);
}

/* A 4th node that must not get in: its log and a member's say why, and
** the cluster stays at NODES nodes. */
static void check_refused_joiner(const char *certs, const char *joiner_says,
                                 const char *node1_says) {
    assert_int_equal(start_node(NODES, NULL, certs), 0);
    assert_true(log_has(NODES, joiner_says));
    assert_true(log_has_in(0, NODES - 1, node1_says)); /* the --join list is all of them */
    int rows = 0;
    assert_int_equal(live_nodes(ports[0], &rows), NODES);
    assert_int_equal(rows, NODES);
    assert_int_equal(mtest_node_stop(&nodes[NODES]), 0);
    mtest_node_destroy(&nodes[NODES]);
}

static void test_foreign_ca_node_cannot_join(void **state) {
    (void)state;
    /* It dials the cluster; its client rejects our certificate, our server
    ** sees the alert (or its certificate if it got that far). */
    check_refused_joiner(g_foreign, "certificate verification failed", "TLS connection from");
}

static void test_insecure_node_cannot_join(void **state) {
    (void)state;
    check_refused_joiner(NULL, "refused the connection: this node requires TLS",
                         "plaintext RPC connection from");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sql_verify_full_every_node),
        cmocka_unit_test(test_node_status_needs_tls),
        cmocka_unit_test(test_admin_rpcs_refuse_user_certificates),
        cmocka_unit_test(test_admin_rpcs_with_root_client_certificate),
        cmocka_unit_test(test_client_cert_cannot_send_node_methods),
        cmocka_unit_test(test_probe_needs_admin_certificate),
        cmocka_unit_test(test_sighup_reload),
        cmocka_unit_test(test_kill9_and_restart),
        cmocka_unit_test(test_foreign_ca_node_cannot_join),
        cmocka_unit_test(test_insecure_node_cannot_join),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
