/*
** tests/lib/mtest_node.h: run real `meridian` processes from tests.
**
** mtest_node_start runs `$MERIDIAN_BIN start` on a free loopback port
** (--sql-addr 127.0.0.1:0) with its store in a fresh mkdtemp directory (or a
** given one, for restarts), reads the SQL URL from the node's banner on its
** stdout (bounded wait), then waits (bounded) until libpq can connect.
** Nodes die with the test: the child has PR_SET_PDEATHSIG = SIGKILL, and an
** atexit handler kills any node still running, so a failing test never
** leaves a process behind.
**
** mtest_run runs any command with stdin text, captures stdout and stderr,
** and kills it after a timeout.
**
** All waits are bounded (MTEST_*_MS); none sleeps for a fixed time.
*/
#ifndef MERIDIAN_MTEST_NODE_H
#define MERIDIAN_MTEST_NODE_H

#include <stdbool.h>
#include <sys/types.h>

#include <libpq-fe.h>

#define MTEST_START_TIMEOUT_MS (60 * 1000)
#define MTEST_STOP_TIMEOUT_MS (30 * 1000)
#define MTEST_CONNECT_TIMEOUT_MS (30 * 1000)
#define MTEST_PATH_MAX 1024
#define MTEST_NODES_MAX 16
#define MTEST_EXTRA_ARGS_MAX 16

typedef struct mtest_node {
    pid_t pid;                      /* 0 when not running */
    int stdout_fd;                  /* the banner pipe, -1 when closed */
    char dir[MTEST_PATH_MAX - 64];  /* mkdtemp directory (owned), "" if none */
    char store[MTEST_PATH_MAX];     /* the --store directory */
    char url[512];                  /* postgresql://root@127.0.0.1:PORT/defaultdb?... */
    int port;
} mtest_node;

/* The binary under test: $MERIDIAN_BIN (set by tests/CMakeLists.txt). */
const char *mtest_meridian_bin(void);

/* Start a node. store NULL: a new temp store (n->dir owns it); else reuse
** that store (restart). extra: more flags, NULL-terminated, may be NULL;
** the node gets --insecure unless extra holds "--certs-dir" (TLS: n->url
** then says sslmode=verify-full and the node's sslrootcert).
** Returns 0, or -1 with a message on stderr (the process is gone then). */
int mtest_node_start(mtest_node *n, const char *store, const char *const *extra);
/* A cluster node (or any node whose flags the test chooses): runs
** `meridian start --store STORE <args> --log-level L` with exactly the flags
** in args (NULL-terminated, at most MTEST_EXTRA_ARGS_MAX; nothing else is
** added: the test gives --listen-addr, --join, --insecure), reads the banner
** up to its "sql:" line (n->url, n->port) and does NOT connect: a cluster
** node serves SQL only once the cluster is initialized (use mtest_connect,
** which retries, when it should). store NULL: a new temp store (n->dir);
** else that store (restart). Returns 0 or -1 (the process is gone then). */
int mtest_node_start_raw(mtest_node *n, const char *store, const char *const *args);
/* Same store, new process (the old one must be stopped). */
int mtest_node_restart(mtest_node *n, const char *const *extra);
/* SIGTERM, wait up to MTEST_STOP_TIMEOUT_MS, then SIGKILL. Returns the
** exit status (0..255), 128+signal if killed, or -1 if not running. */
int mtest_node_stop(mtest_node *n);
/* SIGKILL now and reap. Returns 0 or -1 if not running. */
int mtest_node_kill9(mtest_node *n);
/* True while the process has not exited. */
bool mtest_node_alive(mtest_node *n);
/* Stop if running and remove the temp directory. */
void mtest_node_destroy(mtest_node *n);

/* A libpq connection to the node (CONNECTION_OK), retried until
** MTEST_CONNECT_TIMEOUT_MS; NULL on failure. owner: caller, PQfinish. */
PGconn *mtest_connect(const mtest_node *n);

/* Run argv (argv[0] a path or a name on PATH) with stdin_text (may be
** NULL: empty stdin), collect stdout/stderr (owner: caller, base_free; may
** pass NULL to discard). Returns the exit status as in mtest_node_stop, or
** -1 when it could not run or timed out (then it was killed). */
int mtest_run(const char *const *argv, const char *stdin_text, int timeout_ms, char **out,
              char **err);

/* rm -rf path (for temp dirs only). */
void mtest_remove_tree(const char *path);

#endif
