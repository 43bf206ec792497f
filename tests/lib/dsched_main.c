/*
** tests/lib/dsched_main.c: runs an unchanged threaded cmocka test under the
** deterministic scheduler (dsched.h), once per seed.
**
** Built by meridian_dsched_variant (tests/CMakeLists.txt): the test's own
** sources are compiled with -Dmain=dsched_orig_main, this file supplies the
** real main, and the binary is linked through meridian_dsched_link.
**
** Every run of a seed is a fresh process (fork, then exec of this binary
** with MERIDIAN_DSCHED_RESULT_FD set): fresh state (the test's statics,
** cmocka's globals, the scheduler's tables) and its own address layout, as
** in a replay; a run that aborts (a deadlock, an assertion, a sanitizer
** report) still leaves the parent to name its seed. The run makes itself sim
** thread 0, calls the test's main (the whole cmocka suite) and writes its
** result (the trace hash) to a pipe.
**
** Environment:
**   MERIDIAN_SIM_SEED=N         that one seed only (N >= 1; its output shown)
**   MERIDIAN_SIM_SEEDS=n        how many seeds (default DSCHED_MAIN_SEEDS),
**   MERIDIAN_SIM_FIRST_SEED=N   from this one (default 1)
**   MERIDIAN_SIM_CHECK=k        the first k seeds run a second time; the two
**                               trace hashes must be equal (determinism)
**   MERIDIAN_SIM_VERBOSE=1      every run's output (else only failing runs')
**   MERIDIAN_SIM_LIMIT_S=s      abort a run past s simulated seconds (600)
**   MERIDIAN_SIM_STEP_NS=ns     sim time per scheduling decision, at most (20000)
**   MERIDIAN_DSCHED_SKIP=glob   cmocka tests to skip (cmocka_set_skip_filter);
**                               default DSCHED_MAIN_SKIP when the variant sets it
**   MERIDIAN_DSCHED_RESULT_FD   set by the parent for a run; =none with
**                               MERIDIAN_SIM_SEED=N runs seed N in this very
**                               process (under gdb, say)
**
** Invariants:
**   - A seed is printed before its run starts; a failure prints the line that
**     replays it (MERIDIAN_SIM_SEED=N <binary>).
**   - The parent never starts the scheduler and has no threads when it forks.
**   - Exit status 0 only if every run exited 0 and every checked pair of
**     hashes matched.
*/
/* The test's sources are built with -Dmain=dsched_orig_main; this file is
** part of the same target, so take the definition back for our own main. */
#undef main

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dsched.h"

#ifndef DSCHED_MAIN_SEEDS
#define DSCHED_MAIN_SEEDS 10
#endif

/* Bounds on what the environment may ask for (a limit on every loop). */
#define DSCHED_MAIN_SEEDS_MAX 1000000u
#define DSCHED_MAIN_COPY_SIZE 8192
#define DSCHED_MAIN_LIMIT_S_MAX 1000000      /* 11 days of simulated time */
#define DSCHED_MAIN_STEP_NS_MAX 1000000000   /* a second per decision */

/* The test's own main (all our test mains take no arguments). */
int dsched_orig_main(void);

/* What a run writes to the parent through its pipe (< PIPE_BUF bytes). */
typedef struct dsched_main_result {
    int      done;          /* 1 once the test's main has returned */
    int      rc;            /* its return value (failed cmocka tests) */
    uint64_t hash;          /* dsched_trace_hash */
    uint64_t decisions;
    int64_t  sim_ns;        /* simulated time the run took */
} dsched_main_result;
_Static_assert(sizeof(dsched_main_result) <= 512, "one write of at most POSIX's least PIPE_BUF");

static uint64_t dsched_main_env_u64(const char *name, uint64_t dflt) {
    const char *v = getenv(name);
    if (v == NULL || *v == 0) return dflt;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 0);
    if (errno != 0 || *end != 0) {
        fprintf(stderr, "dsched_main: %s=%s is not a number\n", name, v);
        exit(2);
    }
    return (uint64_t)x;
}

static double dsched_main_real_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* the parent: dsched inactive, real */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The run itself, in a process exec'd by dsched_main_run: the whole suite as
** sim thread 0, the result written to result_fd. Returns the exit status. */
static int dsched_main_child(uint64_t seed, int result_fd) {
    dsched_main_result out;
    memset(&out, 0, sizeof(out));
    setvbuf(stdout, NULL, _IOLBF, 0); /* into a file: an abort loses no whole line */
    const char *skip = getenv("MERIDIAN_DSCHED_SKIP");
#ifdef DSCHED_MAIN_SKIP
    if (skip == NULL) skip = DSCHED_MAIN_SKIP;
#endif
    if (skip != NULL && *skip != 0) cmocka_set_skip_filter(skip);

    dsched_config c;
    dsched_config_init(&c, seed);
    uint64_t limit_s = dsched_main_env_u64("MERIDIAN_SIM_LIMIT_S", 600);
    uint64_t step_ns = dsched_main_env_u64("MERIDIAN_SIM_STEP_NS", (uint64_t)c.step_max_ns);
    if (limit_s > DSCHED_MAIN_LIMIT_S_MAX || step_ns > DSCHED_MAIN_STEP_NS_MAX) {
        fprintf(stderr, "dsched_main: MERIDIAN_SIM_LIMIT_S <= %d, MERIDIAN_SIM_STEP_NS <= %d\n",
                DSCHED_MAIN_LIMIT_S_MAX, DSCHED_MAIN_STEP_NS_MAX);
        return 2;
    }
    c.limit_ns = (int64_t)limit_s * INT64_C(1000000000);
    c.step_max_ns = (int64_t)step_ns;
    if (dsched_start(&c) != 0) {
        fprintf(stderr, "dsched_main: dsched_start failed\n");
        return 3;
    }
    int64_t start_ns = dsched_now_ns();
    int rc = dsched_orig_main();
    out.rc = rc;
    out.hash = dsched_trace_hash();
    out.decisions = dsched_decisions();
    out.sim_ns = dsched_now_ns() - start_ns;
    out.done = 1;
    dsched_stop(); /* aborts if the test left a thread running or a lock held */
    fflush(stdout);
    if (result_fd < 0) { /* run by hand */
        fprintf(stderr, "dsched: seed %" PRIu64 ": rc %d, hash %016" PRIx64 ", %" PRIu64 " decisions\n", seed,
                rc, out.hash, out.decisions);
        return rc == 0 ? 0 : 1;
    }
    /* smaller than PIPE_BUF: one atomic write the parent reads after wait */
    if (write(result_fd, &out, sizeof(out)) != (ssize_t)sizeof(out)) return 3;
    close(result_fd);
    return rc == 0 ? 0 : 1;
}

/* Copies the captured output of a failed run to stderr. */
static void dsched_main_dump(FILE *capture) {
    char buf[DSCHED_MAIN_COPY_SIZE];
    size_t n;
    fflush(capture);
    rewind(capture);
    while ((n = fread(buf, 1, sizeof(buf), capture)) > 0) fwrite(buf, 1, n, stderr);
    fflush(stderr);
}

/* In the forked child: output to capture (if any), then exec this binary
** again in child mode, so every run (a check's second one too) starts from a
** fresh process with its own address layout, as a replay would. */
static _Noreturn void dsched_main_exec(uint64_t seed, FILE *capture, int result_fd) {
    char buf[32];
    if (capture != NULL &&
        (dup2(fileno(capture), STDOUT_FILENO) < 0 || dup2(fileno(capture), STDERR_FILENO) < 0))
        _exit(3);
    snprintf(buf, sizeof(buf), "%" PRIu64, seed);
    if (setenv("MERIDIAN_SIM_SEED", buf, 1) != 0) _exit(3);
    snprintf(buf, sizeof(buf), "%d", result_fd);
    if (setenv("MERIDIAN_DSCHED_RESULT_FD", buf, 1) != 0) _exit(3);
    char *const args[] = {(char *)"dsched_main_child", NULL};
    execv("/proc/self/exe", args);
    perror("dsched_main: execv /proc/self/exe");
    _exit(3);
}

/* One run of one seed. Returns 0 if it passed; *out holds its result. */
static int dsched_main_run(const char *argv0, uint64_t seed, const char *what, bool verbose,
                           dsched_main_result *out) {
    printf("dsched: seed %" PRIu64 "%s: running\n", seed, what);
    fflush(stdout);
    fflush(stderr);
    memset(out, 0, sizeof(*out));
    /* owned here; tmpfile() is unlinked already, fclose frees it */
    FILE *capture = verbose ? NULL : tmpfile();
    if (!verbose && capture == NULL) {
        perror("dsched_main: tmpfile");
        return -1;
    }
    /* the read end never blocks: a run that died wrote nothing */
    int fds[2];
    if (pipe(fds) != 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0 || fcntl(fds[0], F_SETFD, FD_CLOEXEC) != 0) {
        perror("dsched_main: pipe");
        if (capture != NULL) fclose(capture);
        return -1;
    }
    double t0 = dsched_main_real_s();
    pid_t pid = fork();
    if (pid < 0) {
        perror("dsched_main: fork");
        close(fds[0]);
        close(fds[1]);
        if (capture != NULL) fclose(capture);
        return -1;
    }
    if (pid == 0) dsched_main_exec(seed, capture, fds[1]);
    close(fds[1]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("dsched_main: waitpid");
            status = -1;
            break;
        }
    }
    double real_s = dsched_main_real_s() - t0;
    if (read(fds[0], out, sizeof(*out)) != (ssize_t)sizeof(*out)) memset(out, 0, sizeof(*out));
    close(fds[0]);
    bool ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && out->done;
    if (!ok && capture != NULL) dsched_main_dump(capture);
    if (capture != NULL) fclose(capture);
    if (ok) {
        printf("dsched: seed %" PRIu64 "%s: ok, hash %016" PRIx64 ", %" PRIu64 " decisions, sim %.3f s, real %.1f s\n",
               seed, what, out->hash, out->decisions, (double)out->sim_ns / 1e9, real_s);
        fflush(stdout);
        return 0;
    }
    if (status != -1 && WIFSIGNALED(status))
        fprintf(stderr, "dsched: seed %" PRIu64 "%s: FAILED (signal %d)", seed, what, WTERMSIG(status));
    else if (out->done)
        fprintf(stderr, "dsched: seed %" PRIu64 "%s: FAILED (%d cmocka tests failed, hash %016" PRIx64 ")",
                seed, what, out->rc, out->hash);
    else
        fprintf(stderr, "dsched: seed %" PRIu64 "%s: FAILED (exit status %d)", seed, what,
                status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    fprintf(stderr, "; replay: MERIDIAN_SIM_SEED=%" PRIu64 " %s\n", seed, argv0);
    fflush(stderr);
    return -1;
}

int main(int argc, char **argv) {
    (void)argc;
    const char *argv0 = argv[0];
    const char *result_fd = getenv("MERIDIAN_DSCHED_RESULT_FD");
    if (result_fd != NULL) { /* a run exec'd by dsched_main_run, or by hand */
        int fd = strcmp(result_fd, "none") == 0 ? -1 : (int)dsched_main_env_u64("MERIDIAN_DSCHED_RESULT_FD", 0);
        unsetenv("MERIDIAN_DSCHED_RESULT_FD");
        return dsched_main_child(dsched_main_env_u64("MERIDIAN_SIM_SEED", 1), fd);
    }
    uint64_t one = dsched_main_env_u64("MERIDIAN_SIM_SEED", 0);
    uint64_t first = one != 0 ? one : dsched_main_env_u64("MERIDIAN_SIM_FIRST_SEED", 1);
    uint64_t count = one != 0 ? 1 : dsched_main_env_u64("MERIDIAN_SIM_SEEDS", DSCHED_MAIN_SEEDS);
    uint64_t check = dsched_main_env_u64("MERIDIAN_SIM_CHECK", 0);
    bool verbose = one != 0 || getenv("MERIDIAN_SIM_VERBOSE") != NULL;
    if (count > DSCHED_MAIN_SEEDS_MAX) {
        fprintf(stderr, "dsched_main: at most %u seeds\n", DSCHED_MAIN_SEEDS_MAX);
        return 2;
    }

    uint64_t failed = 0, first_failed = 0, mismatched = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t seed = first + i;
        dsched_main_result a, b;
        int rc = dsched_main_run(argv0, seed, "", verbose, &a);
        if (rc == 0 && i < check) {
            rc = dsched_main_run(argv0, seed, " (again)", verbose, &b);
            if (rc == 0 && (a.hash != b.hash || a.decisions != b.decisions)) {
                fprintf(stderr,
                        "dsched: seed %" PRIu64 " NOT DETERMINISTIC: hash %016" PRIx64 " vs %016" PRIx64
                        ", %" PRIu64 " vs %" PRIu64 " decisions\n",
                        seed, a.hash, b.hash, a.decisions, b.decisions);
                mismatched++;
                rc = -1;
            }
        }
        if (rc != 0 && failed++ == 0) first_failed = seed;
    }
    if (failed > 0) {
        fprintf(stderr, "dsched: %" PRIu64 " of %" PRIu64 " seeds failed (%" PRIu64 " not deterministic), first %" PRIu64
                "; replay: MERIDIAN_SIM_SEED=%" PRIu64 " %s\n",
                failed, count, mismatched, first_failed, first_failed, argv0);
        return 1;
    }
    printf("dsched: %" PRIu64 " seeds from %" PRIu64 " passed (%" PRIu64 " checked twice)\n", count, first,
           check < count ? check : count);
    return 0;
}
