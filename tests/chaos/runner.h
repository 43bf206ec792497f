/*
** tests/chaos/runner.h: the chaos runner (issue 7), shared by its files.
** Not a public header: only tests/chaos/runner_*.c include it.
**
**   runner_main.c      arguments, the nemesis schedule, the run's phases,
**                      the summary and the exit code
**   runner_net.c       network namespaces (one per node, veth pairs on a
**                      bridge), partitions, spawning processes into them
**   runner_cluster.c   the meridian processes: start, kill -9, pause,
**                      restart, stop, init, readiness
**   runner_client.c    libpq with deadlines, reconnects, the history record
**   runner_workload.c  bank, register, set, list-append: setup, one
**                      operation, final reads, checking, the teeth mutation
**
** Invariants (the whole runner):
**   - Every process the runner makes is forked by the MAIN thread (nodes,
**     namespace holders, `ip`, `meridian init`): PR_SET_PDEATHSIG fires
**     when the forking *thread* ends, and the main thread lives until exit,
**     so a child dies with the runner on every exit path, SIGKILL included.
**   - Every network object lives inside a namespace owned by a process the
**     runner made (the runner's own, after unshare, holds the bridge; one
**     holder per node holds its veth end), so none outlives the runner.
**   - At most one fault is active at a time and it takes down at most a
**     minority of the nodes; every fault is healed before the final reads.
**   - Every wait has a deadline (CRUN_*_MS); client threads never fork and
**     never block longer than op_timeout_ms on one operation.
**   - The history holds every operation a client invoked: ok, fail (did not
**     take effect), or info (outcome unknown: a commit whose connection
**     broke or timed out, or SQLSTATE 40003).
*/
#ifndef MERIDIAN_CHAOS_RUNNER_H
#define MERIDIAN_CHAOS_RUNNER_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "base/base.h"
#include "tests/chaos/chaos.h"

/* ---- limits ------------------------------------------------------------ */
#define CRUN_NODES_MAX 7
#define CRUN_CLIENTS_MAX 64
#define CRUN_PATH_MAX 1024
#define CRUN_TIME_S_MAX (24 * 3600)
#define CRUN_CMD_MS (30 * 1000)          /* one `ip` or `meridian` tool run */
#define CRUN_INIT_MS (90 * 1000)         /* meridian init answers */
#define CRUN_READY_MS (90 * 1000)        /* SQL through every node */
#define CRUN_RECOVER_MS (90 * 1000)      /* after healing, before final reads */
#define CRUN_STOP_MS (30 * 1000)         /* SIGTERM, then SIGKILL */
#define CRUN_CONNECT_TIMEOUT_S 2         /* libpq connect_timeout */
#define CRUN_SQLSTATES_MAX 32            /* distinct SQLSTATEs counted */
#define CRUN_RESULTS_MAX 64              /* results of one statement string */

/* Network plan when nodes have namespaces: node i is 10.99.0.(i+1), the
** runner (on the bridge) 10.99.0.254. The addresses are private to the
** runner's namespace, so concurrent runs never collide. */
#define CRUN_NET_PREFIX "10.99.0."
#define CRUN_NET_RUNNER_HOST 254
#define CRUN_NET_PORT 26257

typedef enum crun_workload {
    CRUN_WL_BANK = 0,
    CRUN_WL_REGISTER = 1,
    CRUN_WL_SET = 2,
    CRUN_WL_APPEND = 3,
} crun_workload;

enum { /* nemesis bits */
    CRUN_NEM_KILL = 1u << 0,
    CRUN_NEM_PAUSE = 1u << 1,
    CRUN_NEM_PARTITION = 1u << 2,
    CRUN_NEM_SKEW = 1u << 3,     /* restart a node with its clock off, within --max-offset */
    CRUN_NEM_SPLIT = 1u << 4,    /* ALTER TABLE ... SPLIT AT a random key (instant) */
    CRUN_NEM_MOVE = 1u << 5,     /* ALTER RANGE ... RELOCATE LEASE / VOTERS (instant) */
    CRUN_NEM_LATENCY = 1u << 6,  /* the nodes' test hook delays what they receive */
    CRUN_NEM_LOSS = 1u << 7,     /* ... or drops it */
    CRUN_NEM_BIGSKEW = 1u << 8,  /* restart one node with its clock off BEYOND --max-offset */
    CRUN_NEM_DISK = 1u << 9,     /* the Raft log's or store's fsync fails (the node exits) or stalls */
    CRUN_NEM_MERGE = 1u << 10,   /* ALTER TABLE ... UNSPLIT: the merge queue folds ranges back */
};
#define CRUN_NEM_TEST_FAULTS (CRUN_NEM_LATENCY | CRUN_NEM_LOSS | CRUN_NEM_DISK) /* need the flag */
#define CRUN_SKEW_MS_MIN 20          /* skew: |offset| in [MIN, MAX] ms, under the */
#define CRUN_SKEW_MS_MAX 150         /* nodes' default --max-offset (250 ms) */
#define CRUN_MAX_OFFSET_MS 250       /* the nodes' --max-offset (meridian's default) */
#define CRUN_BIGSKEW_MS_MIN 350      /* bigskew: |offset| in [MIN, MAX] ms, beyond it */
#define CRUN_BIGSKEW_MS_MAX 900
#define CRUN_LATENCY_MS_MIN 20       /* latency: delay in [MIN, MAX] ms plus jitter up to */
#define CRUN_LATENCY_MS_MAX 150      /* half of it (the clock pings' uncertainty stays well */
                                     /* under --max-offset) */
#define CRUN_LOSS_PPM_MIN 50000      /* loss: probability in [MIN, MAX] per million */
#define CRUN_LOSS_PPM_MAX 300000
#define CRUN_EXIT_LOG_FAILED 74      /* SRV_EXIT_LOG_FAILED: a node after its log's or store's */
                                     /* failed fsync */
#define CRUN_MERGE_QPS_THRESHOLD 1000000000 /* merge: split_qps_threshold, so that every range */
                                            /* is "cold" to the merge queue (load splits off) */

typedef struct crun_config {
    crun_workload workload;
    unsigned nemeses;            /* CRUN_NEM_* bits */
    int nodes;
    int clients;
    int time_s;
    uint64_t seed;
    char results[CRUN_PATH_MAX]; /* results directory (absolute) */
    char bin[CRUN_PATH_MAX];     /* the meridian binary */
    bool teeth;                  /* also check a history with an injected fault */
    bool no_netns;               /* force loopback */
    bool keep_data;              /* keep the nodes' data/ even when valid */
    int op_timeout_ms;           /* one client operation, all its statements */
    int rate;                    /* ops per second per client, 0: as fast as it goes */
    int fault_gap_ms_min, fault_gap_ms_max;   /* between faults */
    int fault_hold_ms_min, fault_hold_ms_max; /* how long a fault lasts */
    const char *node_log_level;
    /* workload sizes */
    int accounts;                /* bank */
    int register_ops_per_key;    /* register: ops before moving to new keys */
    int append_writes_per_key;   /* list-append */
} crun_config;

/* ---- nodes and the network (runner_net.c, runner_cluster.c) ------------ */
typedef struct crun_node {
    int index;                   /* 0-based; its node id is index + 1 */
    pid_t pid;                   /* 0: not running */
    pid_t holder;                /* namespace holder, 0 without namespaces */
    bool paused;                 /* SIGSTOPped by the nemesis */
    int64_t clock_offset_ms;     /* skew: --clock-offset of its next start (0: none) */
    bool expect_exit;            /* disk: an injected fsync failure must end it (status 74) */
    int expected_exits;          /* exits with status 74 while expect_exit */
    char host[64];
    int port;
    char url[256];               /* libpq URL of its SQL port */
    char dir[CRUN_PATH_MAX + 16];   /* RESULTS/nI */
    char store[CRUN_PATH_MAX + 32]; /* RESULTS/nI/store */
    int starts;                  /* processes started */
    int unexpected_exits;        /* exits nobody asked for */
    int final_status;            /* exit status at the final stop, -1 unknown */
} crun_node;

typedef struct crun_cluster {
    const crun_config *cfg;
    bool netns;                  /* nodes in their own network namespaces */
    char netns_why[256];         /* why not, when !netns */
    int n;
    crun_node nodes[CRUN_NODES_MAX];
    char join[1024];             /* --join list */
    bool cut[CRUN_NODES_MAX][CRUN_NODES_MAX]; /* i's packets to j dropped */
    int64_t t0_ns;               /* start of the run (monotonic) */
    FILE *fault_log;             /* RESULTS/faults.log; owner: the cluster */
    pthread_mutex_t log_mu;      /* fault_log and history comments */
    struct crun_history *history;
} crun_cluster;

/* Spawn argv in node ns_holder's network namespace (0: the runner's),
** in its own process group, stdout+stderr to out_fd (-1: /dev/null).
** Main thread only. Returns the pid or -1. */
pid_t crun_spawn(pid_t ns_holder, const char *const *argv, int out_fd);
/* Run argv to completion (bounded by CRUN_CMD_MS); output into out
** (NUL-terminated, may be NULL). Returns the exit status, or -1. */
/* Wait up to timeout_ms for pid to exit and reap it: its status (128 +
** signal when killed), -2 on timeout (still running), -1 on error. */
int crun_wait_pid(pid_t pid, int timeout_ms);
int crun_cmd(pid_t ns_holder, const char *const *argv, char *out, size_t out_size,
             int timeout_ms);
/* Enter a new network namespace with a bridge and one namespace + veth per
** node. On failure to unshare, c->netns = false with the reason (the
** caller falls back to loopback); other failures return -1. */
int crun_net_setup(crun_cluster *c);
/* Drop packets from i to j (one way) / heal every cut. 0 or -1. */
int crun_net_cut(crun_cluster *c, int from, int to);
int crun_net_heal_all(crun_cluster *c);

int crun_cluster_init(crun_cluster *c, const crun_config *cfg);
int crun_node_start(crun_cluster *c, int i);
int crun_node_kill(crun_cluster *c, int i);        /* SIGKILL and reap */
int crun_node_pause(crun_cluster *c, int i);       /* SIGSTOP */
int crun_node_resume(crun_cluster *c, int i);      /* SIGCONT */
/* Reap nodes that exited on their own; logs them and returns how many did
** so unexpectedly (an exit with CRUN_EXIT_LOG_FAILED while expect_exit is
** expected: logged, counted in expected_exits, not returned). */
int crun_cluster_reap(crun_cluster *c);
/* `meridian debug ARGS... --host <node i>` (the test-only fault control):
** its exit status (0 ok), its output into out (may be NULL). Main thread. */
int crun_node_debug(crun_cluster *c, int i, const char *const *args, char *out, size_t out_size);
/* meridian init through node 0, then SQL through every node. 0 or -1. */
int crun_cluster_bootstrap(crun_cluster *c);
/* SIGCONT, SIGTERM, wait, SIGKILL, for every node; records final_status. */
void crun_cluster_stop(crun_cluster *c);
/* The node holding the lease per `meridian node status`, or -1. */
int crun_cluster_leaseholder(crun_cluster *c);
/* Log a line "T_ms text" to faults.log, stdout, and the history. */
void crun_log(crun_cluster *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ms since the start of the run. */
int64_t crun_elapsed_ms(const crun_cluster *c);
/* A connection to node i (CONNECTION_OK) or NULL; owner: caller. */
PGconn *crun_connect(const crun_cluster *c, int i);

/* ---- history and clients (runner_client.c) ----------------------------- */
typedef enum crun_outcome {
    CRUN_OK = 0,
    CRUN_FAIL = 1,
    CRUN_INFO = 2,
} crun_outcome;

/* owner: the run; every field behind mu. */
typedef struct crun_history {
    pthread_mutex_t mu;
    base_buf text;               /* history lines of the run */
    int64_t t0_ns;
    uint64_t counts[3];          /* by crun_outcome */
    struct {
        char code[6];
        uint64_t n;
    } states[CRUN_SQLSTATES_MAX]; /* failures by SQLSTATE ("conn", "tmout") */
    int n_states;
    uint64_t dropped;            /* lines lost to out of memory */
    uint64_t oddities;           /* results a correct database cannot give */
    char oddity_first[256];
} crun_history;

int crun_history_init(crun_history *h, int64_t t0_ns);
void crun_history_free(crun_history *h);
/* Append one operation line (mops as text). Times are monotonic ns. */
void crun_history_add(crun_history *h, int64_t process, crun_outcome type, int64_t invoke_ns,
                      int64_t complete_ns, const char *mops);
void crun_history_comment(crun_history *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void crun_history_count_state(crun_history *h, const char *code);
void crun_history_oddity(crun_history *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

typedef struct crun_ctx crun_ctx;

/* One client thread's state; owner: the ctx. */
typedef struct crun_client {
    crun_ctx *ctx;
    int index;
    int64_t process;             /* history process id; += clients after info */
    PGconn *pg;                  /* NULL: not connected */
    int node;                    /* node of pg, or the next to try */
    uint64_t rng;
    int64_t seq;                 /* bank: transfers begun (ledger row ids) */
    pthread_t thread;
    bool started;
} crun_client;

typedef enum crun_exec_rc {
    CRUN_EXEC_OK = 0,            /* *res is the last result (any status) */
    CRUN_EXEC_TIMEOUT = 1,       /* deadline passed: the connection was closed */
    CRUN_EXEC_BROKEN = 2,        /* the connection broke: it was closed */
} crun_exec_rc;

/* Run sql on c->pg with a deadline (monotonic ns). On OK *res (owner:
** caller, PQclear) holds the last result; a broken or timed-out connection
** is finished and c->pg set to NULL. */
crun_exec_rc crun_exec(crun_client *c, const char *sql, int64_t deadline_ns, PGresult **res);
/* Connect c to the next node that accepts (round robin from c->node);
** false when none did (the caller retries later). */
bool crun_client_connect(crun_client *c);
void crun_client_disconnect(crun_client *c);
/* Outcome of one statement of an operation: commit_point says whether
** the database may have committed because of it. Counts failures by
** SQLSTATE. res may be NULL when rc != CRUN_EXEC_OK. */
crun_outcome crun_classify(crun_client *c, crun_exec_rc rc, const PGresult *res,
                           bool commit_point);
/* splitmix64 */
uint64_t crun_rand(uint64_t *state);
/* Uniform in [lo, hi]. */
int64_t crun_rand_range(uint64_t *state, int64_t lo, int64_t hi);

/* ---- workloads (runner_workload.c) ------------------------------------- */
typedef struct crun_final crun_final;   /* final reads, per workload */

struct crun_ctx {
    const crun_config *cfg;
    crun_cluster *cluster;
    crun_history *history;
    atomic_bool stop;
    struct crun_wl *wl;          /* workload state; owner: the ctx */
    crun_client clients[CRUN_CLIENTS_MAX];
};

const char *crun_workload_name(crun_workload w);
/* The split nemesis: a statement splitting the workload's table at a
** random key of its key domain, into sql. */
void crun_wl_split_sql(crun_ctx *ctx, uint64_t *rng, char *sql, size_t size);
/* The move nemesis: SHOW RANGES FROM TABLE <the workload's table> through
** node via, then one relocation of a random range into sql: its lease to
** another replica, or (voters, when some node outside its replicas is in
** live[]) a voter from one of its replicas to such a node. *kind: 'L' or
** 'V'. 0, or -1 (why says it). Main thread only. */
int crun_wl_move_sql(crun_ctx *ctx, int via, uint64_t *rng, bool voters, const bool *live,
                     char *sql, size_t size, char *kind, char *why, size_t why_size);
/* The merge nemesis: SHOW RANGES FROM TABLE <the workload's table> through
** node via, then, for one range starting at a key inside the table (a split
** point: the table's first key never merges), `ALTER TABLE t UNSPLIT AT
** VALUES (...)` of its start into sql; one time in all_one_in, `UNSPLIT ALL`
** instead. *boundaries: the table's split points seen. 0, or -1 (why says
** it: no split point to merge away). Main thread only. */
int crun_wl_merge_sql(crun_ctx *ctx, int via, uint64_t *rng, int all_one_in, char *sql,
                      size_t size, int *boundaries, char *why, size_t why_size);
/* Run one statement through node i on a connection of its own, bounded by
** timeout_ms. 0 ok, -1 failed (why says it). Main thread only. */
int crun_admin_exec(crun_ctx *ctx, int i, const char *sql, int timeout_ms, char *why,
                    size_t why_size);
/* The same for a query answering one integer (the first column of the first
** row) into *out. 0 or -1. */
int crun_admin_query_int(crun_ctx *ctx, int i, const char *sql, int timeout_ms, int64_t *out,
                         char *why, size_t why_size);
/* Tables and initial rows through node 0 (retried, bounded). 0 or -1. */
int crun_wl_setup(crun_ctx *ctx);
/* One operation by client c, recorded in the history; its outcome. */
crun_outcome crun_wl_op(crun_client *c);
/* Final reads through every node, after the clients stopped and faults
** healed (bounded retries). 0, or -1 when some node gave none. */
int crun_wl_final(crun_ctx *ctx);
/* Run the checker over the history and final reads; the report appended to
** report. With mutate, first inject the workload's known fault into a copy
** of the final reads (the teeth check; *mutation describes it). Returns
** the verdict, or -1 on a checker or parse error (message in report). */
int crun_wl_check(crun_ctx *ctx, bool mutate, base_buf *report, char *mutation,
                  size_t mutation_size);
/* Append the final reads to the history text (for history.txt). */
int crun_wl_final_text(crun_ctx *ctx, base_buf *out);
void crun_wl_free(crun_ctx *ctx);

#endif
