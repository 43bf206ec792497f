/*
** tests/chaos/runner_main.c: `chaos_run` (tests/chaos/run), the chaos
** runner of issue 7: a real cluster, real clients, faults, a checked
** history. docs/chaos.md ("The runner") is the manual.
**
**   chaos_run --workload bank|register|set|append
**             --nemesis kill,pause,partition,skew,split,merge,move,latency,loss,bigskew,disk (any subset)
**             --nodes 3|5 --time SECONDS --seed N [--results DIR] [--bin PATH]
**             [--clients K] [--teeth] [--no-netns] [--keep-data] ...
**
** Phases: namespaces and nodes, `meridian init`, tables; K client threads
** run the workload while the main thread runs the nemesis schedule (one
** fault at a time, each healed after its hold time); at the time limit the
** clients stop, every fault is healed, the final reads go through every
** node, the nodes are stopped (SIGTERM) and the checker judges the history.
**
** Exit: 0 valid; 1 a violation (checker invalid, a node crashed or exited
** uncleanly, a result no correct database gives); 2 no verdict (unknown,
** no progress, final reads failed, the teeth check not biting); 3 setup or
** usage error; 130 interrupted.
**
** Invariants: the main thread is the only one that forks (runner.h); the
** nemesis never has more than one fault active and never takes down more
** than a minority (bigskew and disk: one node; a bridge or ring partition
** cuts links, and every node still reaches a majority); on every exit path after
** the cluster exists, clients are joined and nodes stopped before main
** returns; a node exits on its own only as a crash (fails the run) or, with
** status 74, after the disk nemesis made its Raft log's or store's fsync
** fail.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/chaos/runner.h"
#include "tests/lib/mtest_node.h"

#define MAIN_TICK_MS 100                 /* nemesis loop step */
#define MAIN_CRASH_RESTARTS_MAX 5        /* restarts of a node that keeps crashing */
#define MAIN_SPLIT_MS 15000              /* one split statement (the split nemesis) */
#define MAIN_MOVE_MS 15000               /* one relocation statement (the move nemesis) */
#define MAIN_MERGE_MS 15000              /* one UNSPLIT statement (the merge nemesis) */
#define MAIN_MERGE_ALL_ONE_IN 4          /* merge: UNSPLIT ALL one time in this many */
#define MAIN_STORE_FAIL_HOLD_MS 8000     /* disk, store failure: past a merge queue round (5 s) */
#define MAIN_REPORT_LINE_MAX 240         /* a node's log line quoted in the summary */
#define MAIN_MARKER ".chaos-results"     /* a directory the runner may clear */

enum { EXIT_VALID = 0, EXIT_VIOLATION = 1, EXIT_NO_VERDICT = 2, EXIT_SETUP = 3, EXIT_INTR = 130 };

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) { interrupted = sig; }

static int64_t now_ms(void) { return base_monotonic_ns() / 1000000; }

static void usage(FILE *f) {
    fprintf(f,
            "usage: chaos_run --workload bank|register|set|append\n"
            "                 --nemesis kill,pause,partition,skew,split,merge,move,latency,loss,bigskew,disk\n"
            "                           (any subset)|none\n"
            "                 --nodes N --time SECONDS [--seed N] [--results DIR] [--bin PATH]\n"
            "  --clients K          client threads (default 5)\n"
            "  --teeth              also check the history with one injected fault: it must be invalid\n"
            "  --no-netns           nodes on loopback even when namespaces are possible\n"
            "  --keep-data          keep the nodes' data/ directories when the run is valid\n"
            "  --op-timeout MS      deadline of one client operation (default 4000)\n"
            "  --rate N             operations per second per client (default 0: unthrottled)\n"
            "  --gap MS             faults start GAP..2*GAP after the previous heal (default 1500)\n"
            "  --hold MS            a fault lasts HOLD..2*HOLD (default 2500)\n"
            "  --accounts N         bank accounts (default 5)\n"
            "  --ops-per-key N      register ops per key before moving on (default 100)\n"
            "  --writes-per-key N   list-append appends per key (default 32)\n"
            "  --log-level L        the nodes' log level (default info)\n"
            "exit: 0 valid, 1 violation, 2 no verdict, 3 setup/usage error, 130 interrupted\n");
}

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* The meridian next to this binary (BUILD/tests/chaos/chaos_run ->
** BUILD/meridian), else $MERIDIAN_BIN, else PATH. */
static void default_bin(char *out, size_t size) {
    const char *env = getenv("MERIDIAN_BIN");
    if (env != NULL && env[0] != '\0') {
        base_strlcpy(out, env, size);
        return;
    }
    char self[CRUN_PATH_MAX - 32]; /* room for "/../../meridian" in out */
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(out, size, "%s/../../meridian", self);
            char real[PATH_MAX];
            if (realpath(out, real) != NULL && access(real, X_OK) == 0) {
                base_strlcpy(out, real, size);
                return;
            }
        }
    }
    base_strlcpy(out, "meridian", size);
}

static int parse_nemeses(const char *s, unsigned *out) {
    *out = 0;
    if (strcmp(s, "none") == 0) return 0;
    char buf[128];
    base_strlcpy(buf, s, sizeof buf);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "kill") == 0) *out |= CRUN_NEM_KILL;
        else if (strcmp(t, "pause") == 0) *out |= CRUN_NEM_PAUSE;
        else if (strcmp(t, "partition") == 0) *out |= CRUN_NEM_PARTITION;
        else if (strcmp(t, "skew") == 0) *out |= CRUN_NEM_SKEW;
        else if (strcmp(t, "split") == 0) *out |= CRUN_NEM_SPLIT;
        else if (strcmp(t, "merge") == 0) *out |= CRUN_NEM_MERGE;
        else if (strcmp(t, "move") == 0) *out |= CRUN_NEM_MOVE;
        else if (strcmp(t, "latency") == 0) *out |= CRUN_NEM_LATENCY;
        else if (strcmp(t, "loss") == 0) *out |= CRUN_NEM_LOSS;
        else if (strcmp(t, "bigskew") == 0) *out |= CRUN_NEM_BIGSKEW;
        else if (strcmp(t, "disk") == 0) *out |= CRUN_NEM_DISK;
        else return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, crun_config *cfg) {
    enum { O_WORKLOAD = 1000, O_NEMESIS, O_NODES, O_TIME, O_SEED, O_RESULTS, O_BIN, O_CLIENTS,
           O_TEETH, O_NO_NETNS, O_KEEP, O_OP_TIMEOUT, O_GAP, O_HOLD, O_ACCOUNTS, O_OPS_PER_KEY,
           O_WRITES_PER_KEY, O_LOG, O_RATE, O_HELP };
    static const struct option opts[] = {
        {"workload", required_argument, NULL, O_WORKLOAD},
        {"nemesis", required_argument, NULL, O_NEMESIS},
        {"nodes", required_argument, NULL, O_NODES},
        {"time", required_argument, NULL, O_TIME},
        {"seed", required_argument, NULL, O_SEED},
        {"results", required_argument, NULL, O_RESULTS},
        {"bin", required_argument, NULL, O_BIN},
        {"clients", required_argument, NULL, O_CLIENTS},
        {"teeth", no_argument, NULL, O_TEETH},
        {"no-netns", no_argument, NULL, O_NO_NETNS},
        {"keep-data", no_argument, NULL, O_KEEP},
        {"op-timeout", required_argument, NULL, O_OP_TIMEOUT},
        {"gap", required_argument, NULL, O_GAP},
        {"hold", required_argument, NULL, O_HOLD},
        {"accounts", required_argument, NULL, O_ACCOUNTS},
        {"ops-per-key", required_argument, NULL, O_OPS_PER_KEY},
        {"writes-per-key", required_argument, NULL, O_WRITES_PER_KEY},
        {"log-level", required_argument, NULL, O_LOG},
        {"rate", required_argument, NULL, O_RATE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(cfg, 0, sizeof *cfg);
    cfg->workload = (crun_workload)-1;
    cfg->nodes = 3;
    cfg->clients = 5;
    cfg->time_s = 20;
    cfg->op_timeout_ms = 4000;
    cfg->node_log_level = "info";
    cfg->accounts = 5;
    cfg->register_ops_per_key = 100;
    cfg->append_writes_per_key = 32;
    int gap = 1500, hold = 2500;
    bool have_seed = false, have_nemesis = false;
    const char *results = NULL;
    int opt;
    long v;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case O_WORKLOAD:
            if (!strcmp(optarg, "bank")) cfg->workload = CRUN_WL_BANK;
            else if (!strcmp(optarg, "register")) cfg->workload = CRUN_WL_REGISTER;
            else if (!strcmp(optarg, "set")) cfg->workload = CRUN_WL_SET;
            else if (!strcmp(optarg, "append") || !strcmp(optarg, "list-append"))
                cfg->workload = CRUN_WL_APPEND;
            else goto bad;
            break;
        case O_NEMESIS:
            if (parse_nemeses(optarg, &cfg->nemeses) != 0) goto bad;
            have_nemesis = true;
            break;
        case O_NODES:
            if (parse_int(optarg, 1, CRUN_NODES_MAX, &v)) goto bad;
            cfg->nodes = (int)v;
            break;
        case O_TIME:
            if (parse_int(optarg, 1, CRUN_TIME_S_MAX, &v)) goto bad;
            cfg->time_s = (int)v;
            break;
        case O_SEED: {
            char *end = NULL;
            errno = 0;
            cfg->seed = strtoull(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0') goto bad;
            have_seed = true;
            break;
        }
        case O_RESULTS: results = optarg; break;
        case O_BIN: base_strlcpy(cfg->bin, optarg, sizeof cfg->bin); break;
        case O_CLIENTS:
            if (parse_int(optarg, 1, CRUN_CLIENTS_MAX, &v)) goto bad;
            cfg->clients = (int)v;
            break;
        case O_TEETH: cfg->teeth = true; break;
        case O_NO_NETNS: cfg->no_netns = true; break;
        case O_KEEP: cfg->keep_data = true; break;
        case O_OP_TIMEOUT:
            if (parse_int(optarg, 100, 600000, &v)) goto bad;
            cfg->op_timeout_ms = (int)v;
            break;
        case O_GAP:
            if (parse_int(optarg, 0, 3600000, &v)) goto bad;
            gap = (int)v;
            break;
        case O_HOLD:
            if (parse_int(optarg, 0, 3600000, &v)) goto bad;
            hold = (int)v;
            break;
        case O_ACCOUNTS:
            if (parse_int(optarg, 2, 64, &v)) goto bad;
            cfg->accounts = (int)v;
            break;
        case O_OPS_PER_KEY:
            if (parse_int(optarg, 1, 100000, &v)) goto bad;
            cfg->register_ops_per_key = (int)v;
            break;
        case O_WRITES_PER_KEY:
            if (parse_int(optarg, 1, 100000, &v)) goto bad;
            cfg->append_writes_per_key = (int)v;
            break;
        case O_LOG: cfg->node_log_level = optarg; break;
        case O_RATE:
            if (parse_int(optarg, 0, 100000, &v)) goto bad;
            cfg->rate = (int)v;
            break;
        case O_HELP:
        case 'h': usage(stdout); return 1;
        default: goto bad;
        }
    }
    if (optind < argc || (int)cfg->workload < 0 || !have_nemesis) goto bad;
    cfg->fault_gap_ms_min = gap;
    cfg->fault_gap_ms_max = 2 * gap;
    cfg->fault_hold_ms_min = hold;
    cfg->fault_hold_ms_max = 2 * hold;
    if (!have_seed) {
        const char *env = getenv("MERIDIAN_SEED");
        cfg->seed = env != NULL && env[0] ? strtoull(env, NULL, 10)
                                          : (uint64_t)base_realtime_ns() ^ (uint64_t)getpid();
        cfg->seed %= 1000000000000ull; /* short enough to type */
    }
    if (cfg->bin[0] == '\0') default_bin(cfg->bin, sizeof cfg->bin);
    if (results == NULL) {
        snprintf(cfg->results, sizeof cfg->results, "chaos-results/%s-%" PRIu64,
                 crun_workload_name(cfg->workload), cfg->seed);
    } else {
        base_strlcpy(cfg->results, results, sizeof cfg->results);
    }
    return 0;
bad:
    usage(stderr);
    return -1;
}

/* mkdir -p */
static int mkdirs(const char *path) {
    char tmp[CRUN_PATH_MAX];
    base_strlcpy(tmp, path, sizeof tmp);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* Create the results directory: new, empty, or one of ours (cleared). */
static int results_dir(crun_config *cfg) {
    char marker[CRUN_PATH_MAX + 32];
    snprintf(marker, sizeof marker, "%s/%s", cfg->results, MAIN_MARKER);
    if (access(marker, F_OK) == 0) {
        mtest_remove_tree(cfg->results);
    } else if (access(cfg->results, F_OK) == 0 && rmdir(cfg->results) != 0 && errno != ENOENT) {
        fprintf(stderr, "chaos: %s exists and is not a chaos results directory\n", cfg->results);
        return -1;
    }
    if (mkdirs(cfg->results) != 0) {
        fprintf(stderr, "chaos: mkdir %s: %s\n", cfg->results, strerror(errno));
        return -1;
    }
    char real[PATH_MAX];
    if (realpath(cfg->results, real) == NULL) return -1;
    base_strlcpy(cfg->results, real, sizeof cfg->results);
    snprintf(marker, sizeof marker, "%s/%s", cfg->results, MAIN_MARKER);
    FILE *f = fopen(marker, "we");
    if (f == NULL) return -1;
    fclose(f);
    return 0;
}

/* ---- clients ------------------------------------------------------------------ */

static void *client_main(void *arg) {
    crun_client *c = arg;
    crun_ctx *ctx = c->ctx;
    int64_t next_ns = base_monotonic_ns();
    while (!atomic_load(&ctx->stop)) {
        if (ctx->cfg->rate > 0) { /* the schedule of --rate, not a wait for a condition */
            next_ns += 1000000000ll / ctx->cfg->rate;
            int64_t wait_ns = next_ns - base_monotonic_ns();
            if (wait_ns > 0) {
                struct timespec ts = {wait_ns / 1000000000ll, wait_ns % 1000000000ll};
                nanosleep(&ts, NULL);
            } else {
                next_ns = base_monotonic_ns(); /* behind: no burst to catch up */
            }
        }
        if (c->pg == NULL && !crun_client_connect(c)) {
            struct timespec ts = {0, 100 * 1000L * 1000L}; /* no node answers: retry step */
            nanosleep(&ts, NULL);
            continue;
        }
        /* After an indeterminate op, continue as a new process, as Jepsen
        ** does: the old one may still be "running" it. */
        if (crun_wl_op(c) == CRUN_INFO) c->process += ctx->cfg->clients;
    }
    crun_client_disconnect(c);
    return NULL;
}

/* ---- nemesis ------------------------------------------------------------------ */

typedef struct fault {
    bool active;
    unsigned kind;               /* one CRUN_NEM_* bit */
    int targets[CRUN_NODES_MAX];
    int n_targets;
    bool one_way;                /* partition: only the targets' outbound packets */
    bool disk_fail;              /* disk: a failure (else a stall) */
    bool disk_store;             /* disk: of the RocksDB store (else of the Raft log) */
    long log_offset;             /* bigskew: the target's log size at the fault's start */
    int64_t started_ms;          /* crun_elapsed_ms at the start */
    int64_t heal_at_ms;
} fault;

typedef struct fault_stats {
    int kills, pauses, partitions, skews, splits, crashes;
    int partitions_one_way, partitions_bridge, partitions_ring; /* shapes, of partitions */
    int moves_lease, moves_voters, moves_failed;
    int latencies, losses, bigskews, disk_fails, disk_stalls;
    int disk_store_fails, disk_store_stalls; /* of those, on the store */
    int merges, merges_failed, merges_none;  /* UNSPLIT done / failed / nothing to merge */
    int merges_pending;          /* UNSPLIT of a boundary whose point is gone (merge to come) */
    int64_t merges_done;         /* merge events in the range event log at the end, -1 unknown */
    int disk_no_exit;            /* disk failures injected that no fsync consumed */
    int bigskew_served;          /* a bigskewed node said it serves: a clock-safety violation */
    base_buf report;             /* what nodes did under bigskew and disk (summary lines) */
} fault_stats;

static void describe_targets(const fault *f, char *out, size_t size) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < f->n_targets && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%sn%d", i ? "," : "", f->targets[i] + 1);
}

/* The split nemesis: instant, nothing to heal. Through a random node. */
static void split_now(crun_ctx *ctx, uint64_t *rng, fault_stats *st) {
    crun_cluster *c = ctx->cluster;
    char sql[160], why[256] = "";
    crun_wl_split_sql(ctx, rng, sql, sizeof sql);
    int i = (int)crun_rand_range(rng, 0, c->n - 1);
    int rc = crun_admin_exec(ctx, i, sql, MAIN_SPLIT_MS, why, sizeof why);
    for (char *p = why; *p != '\0'; p++)
        if (*p == '\n') *p = ' ';
    crun_log(c, "split through n%d: %s: %s%s", i + 1, sql, rc == 0 ? "done" : "failed: ",
             rc == 0 ? "" : why);
    st->splits++;
}

static void one_line(char *s) {
    for (char *p = s; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

/* The move nemesis: instant. A relocation of a random range of the
** workload's table, through a random running node; an error of the
** statement (a replica change in flight, a target down) is logged, never
** a failure of the run. Voter moves only with 4+ nodes (3 nodes hold 3
** replicas already). */
static void move_now(crun_ctx *ctx, uint64_t *rng, fault_stats *st) {
    crun_cluster *c = ctx->cluster;
    bool live[CRUN_NODES_MAX] = {false};
    int n_live = 0, pick[CRUN_NODES_MAX];
    for (int i = 0; i < c->n; i++) {
        live[i] = c->nodes[i].pid != 0 && !c->nodes[i].paused;
        if (live[i]) pick[n_live++] = i;
    }
    if (n_live == 0) return;
    int via = pick[crun_rand_range(rng, 0, n_live - 1)];
    bool voters = c->n >= 4 && crun_rand(rng) % 2 == 0;
    char sql[160] = "", why[256] = "", kind = '?';
    int rc = crun_wl_move_sql(ctx, via, rng, voters, live, sql, sizeof sql, &kind, why, sizeof why);
    if (rc == 0) rc = crun_admin_exec(ctx, via, sql, MAIN_MOVE_MS, why, sizeof why);
    one_line(why);
    crun_log(c, "move through n%d: %s: %s%s", via + 1, sql[0] ? sql : "(none)",
             rc == 0 ? "done" : "failed (expected at times): ", rc == 0 ? "" : why);
    if (rc != 0) st->moves_failed++;
    else if (kind == 'V') st->moves_voters++;
    else st->moves_lease++;
}

/* The merge nemesis: instant. A split point of the workload's table (or,
** one time in MAIN_MERGE_ALL_ONE_IN, all of them) UNSPLIT through a random
** running node; the merge queue then folds the ranges back (docs/range.md
** "Merge queue": every ~5 s, co-locating replicas and taking leases), while
** the other nemeses go on: merges run under kills, pauses and partitions.
** The split nemesis makes new points; with none in the table, this one
** splits first (a split undone at once). An error of the statement:
** logged, never a failure of the run. */
static void merge_now(crun_ctx *ctx, uint64_t *rng, fault_stats *st) {
    crun_cluster *c = ctx->cluster;
    int n_live = 0, pick[CRUN_NODES_MAX];
    for (int i = 0; i < c->n; i++)
        if (c->nodes[i].pid != 0 && !c->nodes[i].paused) pick[n_live++] = i;
    if (n_live == 0) return;
    int via = pick[crun_rand_range(rng, 0, n_live - 1)];
    char sql[192] = "", why[256] = "";
    int boundaries = 0;
    int rc = crun_wl_merge_sql(ctx, via, rng, MAIN_MERGE_ALL_ONE_IN, sql, sizeof sql, &boundaries,
                               why, sizeof why);
    if (rc != 0 && boundaries == 0 && strncmp(why, "no split point", 14) == 0) {
        /* nothing to merge yet: make a point and take it away at once */
        one_line(why);
        crun_log(c, "merge through n%d: nothing to merge (%s): a split first", via + 1, why);
        split_now(ctx, rng, st);
        rc = crun_wl_merge_sql(ctx, via, rng, 0, sql, sizeof sql, &boundaries, why, sizeof why);
        if (rc != 0 && boundaries == 0) {
            one_line(why);
            crun_log(c, "merge through n%d: still nothing to merge (%s)", via + 1, why);
            st->merges_none++;
            return;
        }
    }
    if (rc == 0) rc = crun_admin_exec(ctx, via, sql, MAIN_MERGE_MS, why, sizeof why);
    one_line(why);
    crun_log(c, "merge through n%d: %s (%d split point(s)): %s%s", via + 1, sql[0] ? sql : "(none)",
             boundaries, rc == 0 ? "done; the merge queue folds it back" : "failed: ",
             rc == 0 ? "" : why);
    if (rc != 0 && strstr(why, "is not a manual split point") != NULL)
        st->merges_pending++; /* unsplit already, its merge still to come */
    else if (rc != 0) st->merges_failed++;
    else st->merges++;
}

/* Run `meridian debug ARGS` on node i; log and count a failure. */
static int debug_node(crun_cluster *c, int i, const char *const *args, int *failures) {
    char out[512];
    int st = crun_node_debug(c, i, args, out, sizeof out);
    if (st != 0) {
        crun_log(c, "WARNING: meridian debug %s on n%d: exit %d: %s", args[0], i + 1, st, out);
        (*failures)++;
    }
    return st;
}

static long file_size_of(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : 0;
}

/* What node i logged about its clock from byte `from` of its log on (the
** bigskew nemesis): appended to st->report. A line saying it serves counts
** as a clock-safety violation. */
static void bigskew_report(crun_cluster *c, int i, long from, int64_t offset_ms, int64_t held_ms,
                           fault_stats *st) {
    char path[CRUN_PATH_MAX + 64], line[2048], first[MAIN_REPORT_LINE_MAX] = "";
    snprintf(path, sizeof path, "%s/logs/meridian.log", c->nodes[i].store);
    int unavailable = 0, serving = 0, leases = 0, refusals = 0;
    FILE *f = fopen(path, "re");
    if (f != NULL && fseek(f, from, SEEK_SET) == 0) {
        while (fgets(line, sizeof line, f) != NULL) {
            one_line(line);
            if (strstr(line, "clock offset bound unavailable") != NULL) {
                if (unavailable++ == 0) base_strlcpy(first, line, sizeof first);
            }
            if (strstr(line, "clock offset bound established") != NULL ||
                strstr(line, "clock offset bound back") != NULL)
                serving++;
            if (strstr(line, "handing the lease") != NULL) leases++;
            if (strstr(line, "REMOTE_AHEAD") != NULL || strstr(line, "ahead of") != NULL)
                refusals++;
        }
    }
    if (f != NULL) fclose(f);
    base_buf_printf(&st->report, "bigskew n%d %+lldms for %.1f s: %d 'unavailable' line(s), %d "
                    "lease hand-off(s), %d 'serving' line(s)%s\n", i + 1, (long long)offset_ms,
                    (double)held_ms / 1000.0, unavailable, leases, serving,
                    serving > 0 ? " (CLOCK SAFETY VIOLATED: it served beyond --max-offset)" : "");
    if (first[0] != '\0') base_buf_printf(&st->report, "  first: %s\n", first);
    (void)refusals;
    crun_log(c, "bigskew: n%d logged %d 'unavailable', %d lease hand-off(s), %d 'serving'", i + 1,
             unavailable, leases, serving);
    if (serving > 0) st->bigskew_served++;
}

/* The partition nemesis, in Jepsen's shapes (the draws: one way 1/4,
** bridge 1/8, ring 1/8 with 4+ nodes, else the bridge; the rest a split):
** - split: the targets (one node, or a minority) against the rest, both ways;
** - one way: the targets' packets to the rest lost, the rest's arrive;
** - bridge: the nodes but the first target in two halves that reach each
**   other only through it (with 3 nodes: n_a - bridge - n_b);
** - ring: the nodes in a random cycle, each reaching only its neighbours.
** In a bridge and a ring every node still reaches a majority counting
** itself, but not the same majority: the non-transitive partitions that
** leases and leader elections get wrong. Cuts are healed all at once. */
static int partition_start(crun_cluster *c, uint64_t *rng, fault *f, const bool *chosen,
                           fault_stats *st) {
    int failures = 0;
    unsigned draw = (unsigned)(crun_rand(rng) % 8);
    int order[CRUN_NODES_MAX], n_order = 0;
    char who[160];
    size_t used = 0;
    f->one_way = draw < 2;
    if (draw == 2 || draw == 3) {
        bool ring = draw == 3 && c->n >= 4;
        /* a random order of the nodes (ring), or of the nodes but the bridge */
        for (int i = 0; i < c->n; i++)
            if (ring || i != f->targets[0]) order[n_order++] = i;
        for (int i = n_order - 1; i > 0; i--) {
            int j = (int)crun_rand_range(rng, 0, i), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        who[0] = '\0';
        if (ring) {
            /* cut every pair that is not adjacent in the cycle */
            for (int a = 0; a < n_order; a++)
                for (int b = 0; b < n_order; b++) {
                    int d = a > b ? a - b : b - a;
                    if (a != b && d != 1 && d != n_order - 1)
                        failures += crun_net_cut(c, order[a], order[b]) != 0;
                }
            for (int a = 0; a <= n_order && used < sizeof who; a++)
                used += (size_t)snprintf(who + used, sizeof who - used, "%sn%d", a ? "-" : "",
                                         order[a % n_order] + 1);
            crun_log(c, "partition: ring %s (each node reaches its neighbours only)", who);
            st->partitions_ring++;
        } else {
            /* ends: the first half against the second, both ways */
            int half = n_order / 2;
            for (int a = 0; a < half; a++)
                for (int b = half; b < n_order; b++) {
                    failures += crun_net_cut(c, order[a], order[b]) != 0;
                    failures += crun_net_cut(c, order[b], order[a]) != 0;
                }
            for (int a = 0; a < n_order && used < sizeof who; a++)
                used += (size_t)snprintf(who + used, sizeof who - used, "%sn%d",
                                         a == 0 ? "" : a == half ? " | " : ",", order[a] + 1);
            crun_log(c, "partition: bridge n%d between %s (the halves reach each other only "
                     "through it)", f->targets[0] + 1, who);
            st->partitions_bridge++;
        }
        st->partitions++;
        return failures;
    }
    for (int i = 0; i < c->n; i++) {
        if (!chosen[i]) continue;
        for (int j = 0; j < c->n; j++) {
            if (chosen[j]) continue;
            failures += crun_net_cut(c, i, j) != 0;
            if (!f->one_way) failures += crun_net_cut(c, j, i) != 0;
        }
    }
    describe_targets(f, who, sizeof who);
    crun_log(c, "partition %s %s the rest", who, f->one_way ? "-/-> (one way)" : "<-/->");
    if (f->one_way) st->partitions_one_way++;
    st->partitions++;
    return failures;
}

static void fault_start(crun_ctx *ctx, uint64_t *rng, fault *f, fault_stats *st) {
    crun_cluster *c = ctx->cluster;
    const crun_config *cfg = ctx->cfg;
    unsigned kinds[11];
    int nk = 0;
    if (cfg->nemeses & CRUN_NEM_KILL) kinds[nk++] = CRUN_NEM_KILL;
    if (cfg->nemeses & CRUN_NEM_PAUSE) kinds[nk++] = CRUN_NEM_PAUSE;
    if ((cfg->nemeses & CRUN_NEM_PARTITION) && c->netns) kinds[nk++] = CRUN_NEM_PARTITION;
    if (cfg->nemeses & CRUN_NEM_SKEW) kinds[nk++] = CRUN_NEM_SKEW;
    if (cfg->nemeses & CRUN_NEM_SPLIT) kinds[nk++] = CRUN_NEM_SPLIT;
    if (cfg->nemeses & CRUN_NEM_MERGE) kinds[nk++] = CRUN_NEM_MERGE;
    if (cfg->nemeses & CRUN_NEM_MOVE) kinds[nk++] = CRUN_NEM_MOVE;
    if (cfg->nemeses & CRUN_NEM_LATENCY) kinds[nk++] = CRUN_NEM_LATENCY;
    if (cfg->nemeses & CRUN_NEM_LOSS) kinds[nk++] = CRUN_NEM_LOSS;
    if (cfg->nemeses & CRUN_NEM_BIGSKEW) kinds[nk++] = CRUN_NEM_BIGSKEW;
    if (cfg->nemeses & CRUN_NEM_DISK) kinds[nk++] = CRUN_NEM_DISK;
    int minority = (c->n - 1) / 2;
    if (nk == 0 || minority == 0) return;
    memset(f, 0, sizeof *f);
    f->kind = kinds[crun_rand_range(rng, 0, nk - 1)];
    f->started_ms = crun_elapsed_ms(c);
    if (f->kind == CRUN_NEM_SPLIT) {
        split_now(ctx, rng, st);
        return;
    }
    if (f->kind == CRUN_NEM_MOVE) {
        move_now(ctx, rng, st);
        return;
    }
    if (f->kind == CRUN_NEM_MERGE) {
        merge_now(ctx, rng, st);
        return;
    }
    /* One node for a clock beyond the bound or a failing disk: the fault
    ** under test is that node's, not a lost majority. */
    bool single = f->kind == CRUN_NEM_BIGSKEW || f->kind == CRUN_NEM_DISK;
    f->n_targets = single ? 1 : (int)crun_rand_range(rng, 1, minority);
    /* Half of the time aim at the leaseholder: its failure is the
    ** interesting one (failover, a paused holder waking up). */
    bool chosen[CRUN_NODES_MAX] = {false};
    int k = 0;
    if (crun_rand(rng) % 2 == 0) {
        int lh = crun_cluster_leaseholder(c);
        if (lh >= 0) {
            chosen[lh] = true;
            f->targets[k++] = lh;
        }
    }
    while (k < f->n_targets) {
        int i = (int)crun_rand_range(rng, 0, c->n - 1);
        if (chosen[i]) continue;
        chosen[i] = true;
        f->targets[k++] = i;
    }
    char who[64];
    describe_targets(f, who, sizeof who);
    int failures = 0;
    switch (f->kind) {
    case CRUN_NEM_KILL:
        for (int i = 0; i < f->n_targets; i++) failures += crun_node_kill(c, f->targets[i]) != 0;
        crun_log(c, "kill -9 %s", who);
        st->kills++;
        break;
    case CRUN_NEM_PAUSE:
        for (int i = 0; i < f->n_targets; i++) failures += crun_node_pause(c, f->targets[i]) != 0;
        crun_log(c, "pause (SIGSTOP) %s", who);
        st->pauses++;
        break;
    case CRUN_NEM_PARTITION:
        failures += partition_start(c, rng, f, chosen, st);
        break;
    case CRUN_NEM_SKEW: {
        /* A restart with the clock off: the node's physical clock starts
        ** |offset| away from the others' (within --max-offset). */
        char offsets[128] = "";
        size_t used = 0;
        for (int i = 0; i < f->n_targets; i++) {
            crun_node *n = &c->nodes[f->targets[i]];
            int64_t ms = crun_rand_range(rng, CRUN_SKEW_MS_MIN, CRUN_SKEW_MS_MAX);
            n->clock_offset_ms = crun_rand(rng) % 2 == 0 ? ms : -ms;
            used += (size_t)snprintf(offsets + used, sizeof offsets - used, " %+lldms",
                                     (long long)n->clock_offset_ms);
            if (used >= sizeof offsets) used = sizeof offsets - 1;
            failures += crun_node_kill(c, f->targets[i]) != 0;
            failures += crun_node_start(c, f->targets[i]) != 0;
        }
        crun_log(c, "skew: restart %s with clock offset%s", who, offsets);
        st->skews++;
        break;
    }
    case CRUN_NEM_LATENCY:
    case CRUN_NEM_LOSS: {
        /* The targets' transport test hook: everything they receive from
        ** the other nodes is delayed (jitter up to half the delay) or lost. */
        char what[96], a1[32], a2[32];
        bool lat = f->kind == CRUN_NEM_LATENCY;
        if (lat) {
            int64_t d = crun_rand_range(rng, CRUN_LATENCY_MS_MIN, CRUN_LATENCY_MS_MAX);
            snprintf(a1, sizeof a1, "%lldms", (long long)d);
            snprintf(a2, sizeof a2, "%lldms", (long long)(d / 2));
            snprintf(what, sizeof what, "delayed %lld+[0,%lld] ms", (long long)d,
                     (long long)(d / 2));
        } else {
            int64_t ppm = crun_rand_range(rng, CRUN_LOSS_PPM_MIN, CRUN_LOSS_PPM_MAX);
            snprintf(a1, sizeof a1, "%.3f", (double)ppm / 1e6);
            snprintf(what, sizeof what, "lost with probability %.3f", (double)ppm / 1e6);
        }
        for (int i = 0; i < f->n_targets; i++) {
            const char *lat_args[] = {"net-fault", "--clear-all", "--delay", a1, "--jitter", a2,
                                      NULL};
            const char *loss_args[] = {"net-fault", "--clear-all", "--loss", a1, NULL};
            debug_node(c, f->targets[i], lat ? lat_args : loss_args, &failures);
        }
        crun_log(c, "%s: what %s receives from the others is %s", lat ? "latency" : "loss", who,
                 what);
        if (lat) st->latencies++;
        else st->losses++;
        break;
    }
    case CRUN_NEM_BIGSKEW: {
        /* A restart with the clock beyond --max-offset: the node must find
        ** its bound unavailable and stop serving (docs/clocks.md 3.1). */
        crun_node *n = &c->nodes[f->targets[0]];
        int64_t ms = crun_rand_range(rng, CRUN_BIGSKEW_MS_MIN, CRUN_BIGSKEW_MS_MAX);
        n->clock_offset_ms = crun_rand(rng) % 2 == 0 ? ms : -ms;
        char path[CRUN_PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/logs/meridian.log", n->store);
        failures += crun_node_kill(c, f->targets[0]) != 0;
        f->log_offset = file_size_of(path);
        failures += crun_node_start(c, f->targets[0]) != 0;
        crun_log(c, "bigskew: restart %s with clock offset %+lldms (beyond --max-offset %d ms)",
                 who, (long long)n->clock_offset_ms, CRUN_MAX_OFFSET_MS);
        st->bigskews++;
        break;
    }
    case CRUN_NEM_DISK: {
        /* The target's shared Raft log, or (half of the time) its RocksDB
        ** store: the next fdatasync (the store: synced write or WAL sync)
        ** fails (the node must exit, status 74; restarted at the heal, like
        ** a kill) or every one stalls until the heal. */
        int i = f->targets[0];
        f->disk_fail = crun_rand(rng) % 2 == 0;
        f->disk_store = crun_rand(rng) % 2 == 0;
        int64_t hold = crun_rand_range(rng, cfg->fault_hold_ms_min, cfg->fault_hold_ms_max);
        char stall[32];
        snprintf(stall, sizeof stall, "%lldms", (long long)hold);
        const char *cmd = f->disk_store ? "store-fault" : "disk-fault";
        const char *what = f->disk_store ? "synced writes and WAL syncs of the store"
                                         : "fdatasyncs of the Raft log";
        const char *fail_args[] = {cmd, "--fail", NULL};
        const char *stall_args[] = {cmd, "--stall", stall, NULL};
        if (f->disk_fail) c->nodes[i].expect_exit = true; /* before: it may exit at once */
        if (debug_node(c, i, f->disk_fail ? fail_args : stall_args, &failures) != 0)
            c->nodes[i].expect_exit = false;
        if (f->disk_fail)
            crun_log(c, "disk: the next of the %s on %s fails", what, who);
        else
            crun_log(c, "disk: the %s on %s stall for %s", what, who, stall);
        /* The store syncs seldom (log truncations, merges): a merge makes
        ** every voter sync it (the freeze, then MERGE's apply), so a failure
        ** meets a sync within the hold: one split point taken away (made
        ** first when there is none), held past a round of the merge queue. */
        if (f->disk_store && f->disk_fail && c->nodes[i].pid != 0) {
            merge_now(ctx, rng, st);
            hold = BASE_MAX(hold, MAIN_STORE_FAIL_HOLD_MS);
        }
        if (f->disk_fail) st->disk_fails++;
        else st->disk_stalls++;
        if (f->disk_store && f->disk_fail) st->disk_store_fails++;
        else if (f->disk_store) st->disk_store_stalls++;
        f->active = true;
        f->heal_at_ms = now_ms() + hold;
        if (failures > 0) crun_log(c, "WARNING: %d fault actions failed", failures);
        return;
    }
    }
    if (failures > 0) crun_log(c, "WARNING: %d fault actions failed", failures);
    f->active = true;
    f->heal_at_ms = now_ms() + crun_rand_range(rng, cfg->fault_hold_ms_min, cfg->fault_hold_ms_max);
}

/* Heal f (if active) and anything else left: crashed or killed nodes are
** restarted, paused ones continued, cuts removed. */
static void heal_all(crun_cluster *c, fault *f, fault_stats *st) {
    char who[64];
    if (f->active) {
        describe_targets(f, who, sizeof who);
        switch (f->kind) {
        case CRUN_NEM_KILL: crun_log(c, "restart %s", who); break;
        case CRUN_NEM_PAUSE: crun_log(c, "resume (SIGCONT) %s", who); break;
        case CRUN_NEM_PARTITION: crun_log(c, "heal the partition"); break;
        case CRUN_NEM_SKEW: crun_log(c, "unskew: restart %s with its clock right", who); break;
        case CRUN_NEM_LATENCY:
        case CRUN_NEM_LOSS: crun_log(c, "net faults cleared on %s", who); break;
        case CRUN_NEM_BIGSKEW: crun_log(c, "unbigskew: restart %s with its clock right", who); break;
        case CRUN_NEM_DISK:
            crun_log(c, c->nodes[f->targets[0]].pid != 0 ? "disk: heal %s"
                                                         : "disk: restart %s (it exited)", who);
            break;
        }
        int failures = 0;
        if (f->kind == CRUN_NEM_LATENCY || f->kind == CRUN_NEM_LOSS) {
            const char *args[] = {"net-fault", "--clear-all", NULL};
            for (int i = 0; i < f->n_targets; i++)
                if (c->nodes[f->targets[i]].pid != 0 && !c->nodes[f->targets[i]].paused)
                    debug_node(c, f->targets[i], args, &failures);
        }
        if (f->kind == CRUN_NEM_DISK) {
            crun_node *n = &c->nodes[f->targets[0]];
            if (n->pid != 0) { /* still running: a stall, or a failure no fsync met */
                const char *args[] = {f->disk_store ? "store-fault" : "disk-fault", "--clear",
                                      NULL};
                char out[512] = "";
                int rc = crun_node_debug(c, f->targets[0], args, out, sizeof out);
                crun_log(c, "disk: n%d still runs; cleared (%s): %s", f->targets[0] + 1,
                         rc == 0 ? "ok" : "FAILED", out);
                if (f->disk_fail && n->expect_exit) {
                    st->disk_no_exit++;
                    base_buf_printf(&st->report, "disk n%d: the injected fsync failure (%s) met "
                                    "no sync during the hold (%s)\n", f->targets[0] + 1,
                                    f->disk_store ? "store" : "Raft log", out);
                }
            }
            n->expect_exit = false;
        }
        if (f->kind == CRUN_NEM_BIGSKEW) {
            crun_node *n = &c->nodes[f->targets[0]];
            bigskew_report(c, f->targets[0], f->log_offset, n->clock_offset_ms,
                           crun_elapsed_ms(c) - f->started_ms, st);
        }
        if (f->kind == CRUN_NEM_SKEW || f->kind == CRUN_NEM_BIGSKEW) {
            for (int i = 0; i < f->n_targets; i++) {
                crun_node *n = &c->nodes[f->targets[i]];
                n->clock_offset_ms = 0;
                if (n->pid != 0 && crun_node_kill(c, f->targets[i]) != 0)
                    crun_log(c, "WARNING: cannot stop n%d", f->targets[i] + 1);
            }
        }
    }
    f->active = false;
    if (crun_net_heal_all(c) != 0) crun_log(c, "WARNING: could not heal every cut");
    for (int i = 0; i < c->n; i++) {
        crun_node *n = &c->nodes[i];
        if (n->paused) crun_node_resume(c, i);
        if (n->pid == 0 && n->unexpected_exits <= MAIN_CRASH_RESTARTS_MAX) {
            if (crun_node_start(c, i) != 0) crun_log(c, "WARNING: cannot restart n%d", i + 1);
        }
    }
}

/* The disk nemesis' report: each expected exit, once, at the end, with
** the FATAL lines of its log (which fsync failed). */
static void disk_report(crun_cluster *c, fault_stats *st) {
    for (int i = 0; i < c->n; i++) {
        if (c->nodes[i].expected_exits == 0) continue;
        char path[CRUN_PATH_MAX + 64], line[2048];
        snprintf(path, sizeof path, "%s/logs/meridian.log", c->nodes[i].store);
        int log_fatal = 0, store_fatal = 0;
        FILE *f = fopen(path, "re");
        while (f != NULL && fgets(line, sizeof line, f) != NULL) {
            if (strstr(line, "FATAL: the shared Raft log failed") != NULL) log_fatal++;
            if (strstr(line, "FATAL: the store failed") != NULL) store_fatal++;
        }
        if (f != NULL) fclose(f);
        base_buf_printf(&st->report, "disk n%d: exited %d time(s) with status %d after an "
                        "injected fsync failure (its log: %d \"FATAL: the shared Raft log "
                        "failed\", %d \"FATAL: the store failed\"), restarted like a kill\n",
                        i + 1, c->nodes[i].expected_exits, CRUN_EXIT_LOG_FAILED, log_fatal,
                        store_fatal);
    }
}

/* ---- the run ------------------------------------------------------------------ */

static const char *nemesis_names(unsigned bits, char *buf, size_t size) {
    snprintf(buf, size, "%s%s%s%s%s%s%s%s%s%s%s", bits & CRUN_NEM_KILL ? "kill," : "",
             bits & CRUN_NEM_PAUSE ? "pause," : "", bits & CRUN_NEM_PARTITION ? "partition," : "",
             bits & CRUN_NEM_SKEW ? "skew," : "", bits & CRUN_NEM_SPLIT ? "split," : "",
             bits & CRUN_NEM_MERGE ? "merge," : "", bits & CRUN_NEM_MOVE ? "move," : "",
             bits & CRUN_NEM_LATENCY ? "latency," : "",
             bits & CRUN_NEM_LOSS ? "loss," : "", bits & CRUN_NEM_BIGSKEW ? "bigskew," : "",
             bits & CRUN_NEM_DISK ? "disk," : "");
    size_t len = strlen(buf);
    if (len > 0) buf[len - 1] = '\0';
    else base_strlcpy(buf, "none", size);
    return buf;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len) {
    char path[CRUN_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "we");
    if (f == NULL) return -1;
    size_t w = len > 0 ? fwrite(data, 1, len, f) : 0;
    int rc = fclose(f);
    return w == len && rc == 0 ? 0 : -1;
}

/* RESULTS/history.txt: the run's lines, then the final reads (may be NULL). */
static void write_history(crun_ctx *ctx, const base_buf *finals) {
    base_buf all = {0};
    pthread_mutex_lock(&ctx->history->mu);
    int rc = base_buf_append(&all, ctx->history->text.data, ctx->history->text.len);
    pthread_mutex_unlock(&ctx->history->mu);
    if (rc == 0 && finals != NULL) rc = base_buf_append(&all, finals->data, finals->len);
    if (rc != 0 || write_file(ctx->cfg->results, "history.txt", all.data, all.len) != 0)
        fprintf(stderr, "chaos: cannot write %s/history.txt\n", ctx->cfg->results);
    base_buf_free(&all);
}

int main(int argc, char **argv) {
    crun_config cfg;
    int pr = parse_args(argc, argv, &cfg);
    if (pr != 0) return pr > 0 ? 0 : EXIT_SETUP;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (access(cfg.bin, X_OK) != 0) {
        fprintf(stderr, "chaos: no meridian binary at %s (use --bin or MERIDIAN_BIN)\n", cfg.bin);
        return EXIT_SETUP;
    }
    if (results_dir(&cfg) != 0) return EXIT_SETUP;

    static crun_cluster cluster;
    static crun_history history;
    static crun_ctx ctx;
    base_buf summary = {0}, report = {0}, teeth_report = {0}, final_text = {0};
    fault cur = {0};
    fault_stats stats = {0};
    int exit_code = EXIT_SETUP, clients_started = 0;
    bool cluster_up = false;
    char nem[128], why_fail[512] = "";
    uint64_t rng = cfg.seed;

    printf("chaos: workload %s, nemesis %s, %d nodes, %d clients, %d s, seed %" PRIu64 "\n",
           crun_workload_name(cfg.workload), nemesis_names(cfg.nemeses, nem, sizeof nem), cfg.nodes,
           cfg.clients, cfg.time_s, cfg.seed);
    printf("chaos: binary %s; results %s\n", cfg.bin, cfg.results);
    cluster_up = true; /* from here on, stop what init made, even half-way */
    if (crun_cluster_init(&cluster, &cfg) != 0) goto stop;
    if (crun_history_init(&history, cluster.t0_ns) != 0) goto stop;
    cluster.history = &history;
    crun_history_comment(&history, "chaos run: workload %s, nemesis %s, %d nodes, seed %" PRIu64,
                         crun_workload_name(cfg.workload), nem, cfg.nodes, cfg.seed);
    if (cluster.netns) {
        printf("chaos: network: one namespace per node (%s1..%d on a bridge); partitions are "
               "real\n", CRUN_NET_PREFIX, cfg.nodes);
    } else {
        printf("chaos: network: loopback (%s); partition unavailable%s\n", cluster.netns_why,
               (cfg.nemeses & CRUN_NEM_PARTITION) ? ": the partition nemesis is skipped" : "");
    }
    if (crun_cluster_bootstrap(&cluster) != 0 || interrupted) goto stop;
    ctx.cfg = &cfg;
    ctx.cluster = &cluster;
    ctx.history = &history;
    atomic_store(&ctx.stop, false);
    if (crun_wl_setup(&ctx) != 0 || interrupted) goto stop;
    stats.merges_done = -1;
    if (cfg.nemeses & (CRUN_NEM_MERGE | CRUN_NEM_DISK)) {
        /* every range "cold" to the merge queue, however busy the clients
        ** (disk: a store failure is met by a merge's syncs) */
        char sql[96], why[256] = "";
        snprintf(sql, sizeof sql, "SET CLUSTER SETTING split_qps_threshold = %d",
                 CRUN_MERGE_QPS_THRESHOLD);
        if (crun_admin_exec(&ctx, 0, sql, MAIN_MERGE_MS, why, sizeof why) != 0) {
            fprintf(stderr, "chaos: setup: %s: %s\n", sql, why);
            goto stop;
        }
    }
    crun_log(&cluster, "workload %s set up; %d clients start", crun_workload_name(cfg.workload),
             cfg.clients);

    for (int i = 0; i < cfg.clients; i++) {
        crun_client *c = &ctx.clients[i];
        c->ctx = &ctx;
        c->index = i;
        c->process = i;
        c->node = i % cluster.n;
        c->rng = cfg.seed * 1000003u + (uint64_t)i + 1;
        if (pthread_create(&c->thread, NULL, client_main, c) != 0) break;
        c->started = true;
        clients_started++;
    }
    if (clients_started != cfg.clients) goto stop;

    /* The nemesis schedule, on the main thread (it forks). */
    int64_t end_ms = now_ms() + (int64_t)cfg.time_s * 1000;
    int64_t next_fault_ms = now_ms() + crun_rand_range(&rng, cfg.fault_gap_ms_min, cfg.fault_gap_ms_max);
    while (!interrupted && now_ms() < end_ms) {
        int crashed = crun_cluster_reap(&cluster);
        if (crashed > 0) {
            stats.crashes += crashed;
            heal_all(&cluster, &cur, &stats); /* never more than a minority down */
            next_fault_ms = now_ms() + crun_rand_range(&rng, cfg.fault_gap_ms_min, cfg.fault_gap_ms_max);
        }
        if (cur.active && now_ms() >= cur.heal_at_ms) {
            heal_all(&cluster, &cur, &stats);
            next_fault_ms = now_ms() + crun_rand_range(&rng, cfg.fault_gap_ms_min, cfg.fault_gap_ms_max);
        } else if (!cur.active && cfg.nemeses != 0 && now_ms() >= next_fault_ms &&
                   now_ms() + cfg.fault_hold_ms_min < end_ms) {
            fault_start(&ctx, &rng, &cur, &stats);
            if (!cur.active) /* instant (split, merge, move): the next one after a gap */
                next_fault_ms = now_ms() + crun_rand_range(&rng, cfg.fault_gap_ms_min, cfg.fault_gap_ms_max);
        }
        struct timespec ts = {0, MAIN_TICK_MS * 1000L * 1000L}; /* the schedule's clock */
        nanosleep(&ts, NULL);
    }
    atomic_store(&ctx.stop, true);
    for (int i = 0; i < cfg.clients; i++) {
        if (ctx.clients[i].started) pthread_join(ctx.clients[i].thread, NULL);
        ctx.clients[i].started = false;
    }
    stats.crashes += crun_cluster_reap(&cluster);
    heal_all(&cluster, &cur, &stats);
    if (interrupted) {
        write_history(&ctx, NULL);
        goto stop;
    }
    crun_log(&cluster, "clients stopped, faults healed; final reads through every node");
    int final_rc = crun_wl_final(&ctx);
    crun_log(&cluster, "final reads %s", final_rc == 0 ? "done" : "FAILED");
    if (cfg.nemeses & CRUN_NEM_MERGE) {
        char why[256] = "";
        int64_t n_merges = -1;
        if (crun_admin_query_int(&ctx, 0, "SELECT count(*) FROM meridian_internal.range_events "
                                 "WHERE event = 'merge'", MAIN_MERGE_MS, &n_merges, why,
                                 sizeof why) != 0)
            crun_log(&cluster, "WARNING: merges not counted: %s", why);
        stats.merges_done = n_merges;
    }
    stats.crashes += crun_cluster_reap(&cluster);
    crun_cluster_stop(&cluster);
    cluster_up = false;

    /* Write the history, judge it, and report. */
    crun_wl_final_text(&ctx, &final_text);
    write_history(&ctx, &final_text);

    /* Judged even when a node gave no final read: a violation in what was
    ** recorded still counts; the missing read then only costs the verdict. */
    int verdict = crun_wl_check(&ctx, false, &report, NULL, 0);
    char mutation[256] = "";
    int teeth_verdict = -2;
    if (cfg.teeth && verdict == CHAOS_VALID)
        teeth_verdict = crun_wl_check(&ctx, true, &teeth_report, mutation, sizeof mutation);

    uint64_t total = history.counts[CRUN_OK] + history.counts[CRUN_FAIL] + history.counts[CRUN_INFO];
    base_buf_printf(&summary, "\n==== chaos summary: workload %s, nemesis %s, %d nodes, %d s, seed %" PRIu64 "\n",
                    crun_workload_name(cfg.workload), nem, cfg.nodes, cfg.time_s, cfg.seed);
    if (cluster.netns)
        base_buf_printf(&summary, "network: a namespace per node (partitions are real)\n");
    else
        base_buf_printf(&summary, "network: loopback (%s): partition unavailable\n", cluster.netns_why);
    base_buf_printf(&summary, "faults: %d kill, %d pause, %d partition (%d one-way, %d bridge, "
                    "%d ring), %d skew, %d split, "
                    "%d merge (%d unsplit, %d pending already, %d failed, %d nothing to merge), "
                    "%d move (%d lease, %d voters, %d failed), %d latency, %d loss, %d bigskew, "
                    "%d disk (%d fail, %d stall; store: %d fail, %d stall); crashes: %d\n",
                    stats.kills, stats.pauses, stats.partitions, stats.partitions_one_way,
                    stats.partitions_bridge, stats.partitions_ring, stats.skews, stats.splits,
                    stats.merges + stats.merges_pending + stats.merges_failed + stats.merges_none,
                    stats.merges, stats.merges_pending, stats.merges_failed, stats.merges_none,
                    stats.moves_lease + stats.moves_voters + stats.moves_failed,
                    stats.moves_lease, stats.moves_voters, stats.moves_failed, stats.latencies,
                    stats.losses, stats.bigskews, stats.disk_fails + stats.disk_stalls,
                    stats.disk_fails, stats.disk_stalls, stats.disk_store_fails,
                    stats.disk_store_stalls, stats.crashes);
    if (cfg.nemeses & CRUN_NEM_MERGE)
        base_buf_printf(&summary, "merges: %" PRId64 " done by the merge queues (range event "
                        "log; -1: not counted)\n", stats.merges_done);
    disk_report(&cluster, &stats);
    if (stats.report.len > 0) base_buf_printf(&summary, "%s", (char *)stats.report.data);
    base_buf_printf(&summary, "ops: %" PRIu64 " (ok %" PRIu64 ", failed %" PRIu64 ", unknown %" PRIu64 ")",
                    total, history.counts[CRUN_OK], history.counts[CRUN_FAIL], history.counts[CRUN_INFO]);
    for (int i = 0; i < history.n_states; i++)
        base_buf_printf(&summary, "%s%s %" PRIu64, i ? ", " : "; not ok by cause: ", history.states[i].code,
                        history.states[i].n);
    base_buf_printf(&summary, "\n");
    int bad_stops = 0;
    for (int i = 0; i < cluster.n; i++) {
        if (cluster.nodes[i].final_status != 0) {
            bad_stops++;
            base_buf_printf(&summary, "node n%d: exit status %d at the final SIGTERM (want 0)\n",
                            i + 1, cluster.nodes[i].final_status);
        }
    }
    if (history.oddities > 0)
        base_buf_printf(&summary, "ODDITIES: %" PRIu64 " results no correct database gives; first: %s\n",
                        history.oddities, history.oddity_first);
    base_buf_printf(&summary, "checker: %s\n%s",
                    verdict == CHAOS_VALID ? "VALID" : verdict == CHAOS_INVALID ? "INVALID"
                    : verdict == CHAOS_UNKNOWN ? "UNKNOWN" : "no verdict",
                    report.data ? (char *)report.data : "");
    if (cfg.teeth && teeth_verdict != -2) {
        base_buf_printf(&summary, "teeth: injected into the history: %s -> %s\n", mutation,
                        teeth_verdict == CHAOS_INVALID ? "invalid (caught)" : "NOT CAUGHT");
        if (teeth_verdict != CHAOS_INVALID && teeth_report.data)
            base_buf_printf(&summary, "%s", (char *)teeth_report.data);
    }

    /* The verdict of the run. */
    exit_code = EXIT_VALID;
    if (history.dropped > 0) { /* a lost ok line can fake an anomaly: judge nothing */
        exit_code = EXIT_NO_VERDICT;
        snprintf(why_fail, sizeof why_fail, "%" PRIu64 " history lines lost (out of memory)",
                 history.dropped);
    } else if (verdict == CHAOS_INVALID) {
        exit_code = EXIT_VIOLATION;
        snprintf(why_fail, sizeof why_fail, "the checker found a violation");
    } else if (stats.crashes > 0 || bad_stops > 0 || history.oddities > 0 ||
               stats.bigskew_served > 0) {
        exit_code = EXIT_VIOLATION;
        snprintf(why_fail, sizeof why_fail, "%s", stats.crashes > 0 ? "a node crashed"
                 : bad_stops > 0 ? "a node did not stop cleanly"
                 : stats.bigskew_served > 0 ? "a node served with its clock beyond --max-offset"
                 : "impossible results");
    } else if (final_rc != 0) {
        exit_code = EXIT_NO_VERDICT;
        snprintf(why_fail, sizeof why_fail, "final reads failed: the cluster did not recover "
                 "within %d s of healing", CRUN_RECOVER_MS / 1000);
    } else if (verdict != CHAOS_VALID) {
        exit_code = EXIT_NO_VERDICT;
        snprintf(why_fail, sizeof why_fail, "no verdict from the checker");
    } else if (history.counts[CRUN_OK] == 0) {
        exit_code = EXIT_NO_VERDICT;
        snprintf(why_fail, sizeof why_fail, "no operation succeeded");
    } else if (cfg.teeth && teeth_verdict != CHAOS_INVALID) {
        exit_code = EXIT_NO_VERDICT;
        snprintf(why_fail, sizeof why_fail, "the injected fault was not caught");
    }
    base_buf_printf(&summary, "results: %s (history.txt, faults.log, nI/console.log, "
                    "nI/store/logs/meridian.log)\n", cfg.results);
    base_buf_printf(&summary, "rerun: tests/chaos/run");
    for (int i = 1; i < argc; i++) { /* the same flags, this seed */
        bool with_value = !strcmp(argv[i], "--seed") || !strcmp(argv[i], "--results");
        if (with_value || !strncmp(argv[i], "--seed=", 7) || !strncmp(argv[i], "--results=", 10)) {
            i += with_value;
            continue;
        }
        base_buf_printf(&summary, " %s", argv[i]);
    }
    base_buf_printf(&summary, " --seed %" PRIu64 "\n", cfg.seed);
    base_buf_printf(&summary, "RESULT: %s%s%s\n", exit_code == 0 ? "PASS" : "FAIL",
                    exit_code ? ": " : "", why_fail);
    if (summary.data != NULL) {
        fputs((char *)summary.data, stdout);
        write_file(cfg.results, "summary.txt", summary.data, summary.len);
    }
    if (exit_code == EXIT_VALID && !cfg.keep_data) { /* logs stay; the data is big */
        for (int i = 0; i < cluster.n; i++) {
            char data[CRUN_PATH_MAX + 64];
            snprintf(data, sizeof data, "%s/data", cluster.nodes[i].store);
            mtest_remove_tree(data);
        }
    }

stop:
    atomic_store(&ctx.stop, true);
    for (int i = 0; i < cfg.clients; i++) {
        if (ctx.clients[i].started) pthread_join(ctx.clients[i].thread, NULL);
        ctx.clients[i].started = false;
    }
    if (cluster_up) crun_cluster_stop(&cluster);
    if (interrupted) {
        fprintf(stderr, "chaos: interrupted by signal %d; nodes stopped, results in %s\n",
                (int)interrupted, cfg.results);
        exit_code = EXIT_INTR;
    }
    crun_wl_free(&ctx);
    if (cluster.history != NULL) crun_history_free(&history);
    base_buf_free(&summary);
    base_buf_free(&report);
    base_buf_free(&teeth_report);
    base_buf_free(&final_text);
    base_buf_free(&stats.report);
    return exit_code;
}
