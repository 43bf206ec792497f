/*
** Tests for the deterministic scheduler (tests/lib/dsched.h). This binary is
** linked with meridian_dsched_link: its own pthread, clock and sleep calls go
** through dsched.c. Each test starts a run, does its work in sim threads,
** joins them and stops the run; the failure cases run in a forked child.
*/
#define _GNU_SOURCE /* pthread_cond_clockwait, pthread_rwlockattr_setkind_np */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/lib/dsched.h"

#define N_WORKERS 6
#define N_ROUNDS 100
#define LOG_MAX (N_WORKERS * N_ROUNDS)

static void start(uint64_t seed) {
    dsched_config c;
    dsched_config_init(&c, seed);
    c.limit_ns = INT64_C(600) * 1000000000; /* a runaway test fails, it does not hang */
    assert_int_equal(dsched_start(&c), 0);
    assert_true(dsched_active());
    assert_int_equal(dsched_thread_id(), 0);
}

static void stop(void) {
    dsched_stop();
    assert_false(dsched_active());
    assert_int_equal(dsched_thread_id(), -1);
}

/* ---- a counter under a mutex, with an interleaving log ---- */

typedef struct counter {
    pthread_mutex_t mu;
    long value;
    int log[LOG_MAX]; /* worker index per increment, in order */
    int n_log;
} counter;

typedef struct worker_arg {
    counter *c;
    int index;
} worker_arg;

static void *counter_worker(void *p) {
    worker_arg *a = p;
    for (int i = 0; i < N_ROUNDS; i++) {
        pthread_mutex_lock(&a->c->mu);
        long v = a->c->value;
        sched_yield(); /* a lost update would show if the mutex did not exclude */
        a->c->value = v + 1;
        a->c->log[a->c->n_log++] = a->index;
        pthread_mutex_unlock(&a->c->mu);
    }
    return NULL;
}

/* One run of N_WORKERS incrementing workers; fills c and returns the hash. */
static uint64_t counter_run(uint64_t seed, counter *c) {
    memset(c, 0, sizeof *c);
    start(seed);
    assert_int_equal(pthread_mutex_init(&c->mu, NULL), 0);
    pthread_t th[N_WORKERS];
    worker_arg args[N_WORKERS];
    for (int i = 0; i < N_WORKERS; i++) {
        args[i] = (worker_arg){c, i};
        assert_int_equal(pthread_create(&th[i], NULL, counter_worker, &args[i]), 0);
    }
    for (int i = 0; i < N_WORKERS; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(pthread_mutex_destroy(&c->mu), 0);
    uint64_t hash = dsched_trace_hash();
    assert_true(dsched_decisions() > (uint64_t)(N_WORKERS * N_ROUNDS * 3));
    stop();
    return hash;
}

static void test_mutex_counter_exact(void **state) {
    (void)state;
    counter *c = malloc(sizeof *c);
    assert_non_null(c);
    counter_run(7, c);
    assert_int_equal(c->value, N_WORKERS * N_ROUNDS);
    assert_int_equal(c->n_log, N_WORKERS * N_ROUNDS);
    free(c);
}

static void test_same_seed_same_run(void **state) {
    (void)state;
    counter *a = malloc(sizeof *a), *b = malloc(sizeof *b), *d = malloc(sizeof *d);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(d);
    uint64_t ha = counter_run(42, a);
    uint64_t hb = counter_run(42, b);
    uint64_t hd = counter_run(43, d);
    assert_true(ha == hb);
    assert_memory_equal(a->log, b->log, sizeof a->log);
    /* a different seed interleaves differently (fixed seeds: not flaky) */
    assert_true(ha != hd);
    assert_true(memcmp(a->log, d->log, sizeof a->log) != 0);
    /* and the workers really interleave: not one after the other */
    int switches = 0;
    for (int i = 1; i < LOG_MAX; i++) switches += a->log[i] != a->log[i - 1];
    assert_true(switches > N_WORKERS * 4);
    free(a);
    free(b);
    free(d);
}

/* ---- producer/consumer over a bounded queue with timed waits ---- */

#define QUEUE_CAP 3
#define N_ITEMS 200

typedef struct queue {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full; /* CLOCK_MONOTONIC */
    int items[QUEUE_CAP];
    int head, len;
    bool closed;
    long consumed_sum;
    int timeouts;
} queue;

static void deadline_in(struct timespec *ts, long ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_nsec += (ms % 1000) * 1000000;
    ts->tv_sec += ms / 1000 + ts->tv_nsec / 1000000000;
    ts->tv_nsec %= 1000000000;
}

static void *producer(void *p) {
    queue *q = p;
    for (int i = 1; i <= N_ITEMS; i++) {
        pthread_mutex_lock(&q->mu);
        while (q->len == QUEUE_CAP) {
            struct timespec until;
            deadline_in(&until, 1);
            if (pthread_cond_timedwait(&q->not_full, &q->mu, &until) == ETIMEDOUT) q->timeouts++;
        }
        q->items[(q->head + q->len++) % QUEUE_CAP] = i;
        pthread_cond_signal(&q->not_empty);
        pthread_mutex_unlock(&q->mu);
        if (i % 50 == 0) usleep(20000); /* the consumers time out meanwhile */
    }
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static void *consumer(void *p) {
    queue *q = p;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (q->len == 0 && !q->closed) {
            struct timespec until;
            deadline_in(&until, 2);
            if (pthread_cond_timedwait(&q->not_empty, &q->mu, &until) == ETIMEDOUT) q->timeouts++;
        }
        if (q->len == 0) break;
        q->consumed_sum += q->items[q->head];
        q->head = (q->head + 1) % QUEUE_CAP;
        q->len--;
        pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static void test_producer_consumer_timed(void **state) {
    (void)state;
    queue q;
    memset(&q, 0, sizeof q);
    /* built before start: the clock recorded at init must survive */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    assert_int_equal(pthread_cond_init(&q.not_empty, &attr), 0);
    assert_int_equal(pthread_cond_init(&q.not_full, &attr), 0);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&q.mu, NULL);

    start(3);
    int64_t t0 = dsched_now_ns();
    pthread_t p, c[3];
    assert_int_equal(pthread_create(&p, NULL, producer, &q), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(pthread_create(&c[i], NULL, consumer, &q), 0);
    assert_int_equal(pthread_join(p, NULL), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(pthread_join(c[i], NULL), 0);
    assert_int_equal(q.consumed_sum, (long)N_ITEMS * (N_ITEMS + 1) / 2);
    assert_true(q.timeouts > 0);
    /* four naps of 20 ms: the sim clock jumped over them */
    assert_true(dsched_now_ns() - t0 >= 4 * 20000000);
    stop();

    pthread_cond_destroy(&q.not_empty);
    pthread_cond_destroy(&q.not_full);
    pthread_mutex_destroy(&q.mu);
}

/* A timed wait nobody signals, on a REALTIME (default) and a MONOTONIC cond. */
static void test_timedwait_times_out(void **state) {
    (void)state;
    start(11);
    pthread_mutex_t mu;
    pthread_cond_t rt, mono;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&mu, NULL);
    pthread_cond_init(&rt, NULL);
    pthread_cond_init(&mono, &attr);
    pthread_condattr_destroy(&attr);

    pthread_mutex_lock(&mu);
    struct timespec now, until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 3;
    assert_int_equal(pthread_cond_timedwait(&rt, &mu, &until), ETIMEDOUT);
    clock_gettime(CLOCK_REALTIME, &now);
    assert_true(now.tv_sec > until.tv_sec || (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec));

    deadline_in(&until, 7000);
    assert_int_equal(pthread_cond_timedwait(&mono, &mu, &until), ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &now);
    assert_true(now.tv_sec > until.tv_sec || (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec));
    /* a deadline in the past: at once, still with the mutex */
    until.tv_sec -= 100;
    assert_int_equal(pthread_cond_timedwait(&mono, &mu, &until), ETIMEDOUT);
    assert_int_equal(pthread_mutex_trylock(&mu), EBUSY);
    pthread_mutex_unlock(&mu);

    pthread_cond_destroy(&rt);
    pthread_cond_destroy(&mono);
    pthread_mutex_destroy(&mu);
    stop();
}

/* ---- the other timed calls, and a detached thread ---- */

typedef struct timed {
    pthread_mutex_t mu;
    pthread_rwlock_t rw;
    int mutex_rc, rwlock_rc;
    bool detached_done;
} timed;

static void in_one_second(struct timespec *ts) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += 1;
}

static void *timed_mutex(void *p) {
    timed *t = p;
    struct timespec until;
    in_one_second(&until);
    t->mutex_rc = pthread_mutex_timedlock(&t->mu, &until);
    return NULL;
}

static void *timed_rwlock(void *p) {
    timed *t = p;
    struct timespec until;
    in_one_second(&until);
    t->rwlock_rc = pthread_rwlock_timedwrlock(&t->rw, &until);
    return NULL;
}

static void *detached(void *p) {
    timed *t = p;
    pthread_mutex_lock(&t->mu);
    t->detached_done = true;
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static void test_timed_locks_and_detach(void **state) {
    (void)state;
    timed t;
    memset(&t, 0, sizeof t);
    start(13);
    pthread_mutex_init(&t.mu, NULL);
    pthread_rwlock_init(&t.rw, NULL);
    pthread_mutex_lock(&t.mu);
    pthread_rwlock_rdlock(&t.rw);
    pthread_t th[2];
    assert_int_equal(pthread_create(&th[0], NULL, timed_mutex, &t), 0);
    assert_int_equal(pthread_create(&th[1], NULL, timed_rwlock, &t), 0);
    sleep(5);
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(t.mutex_rc, ETIMEDOUT);
    assert_int_equal(t.rwlock_rc, ETIMEDOUT);
    pthread_rwlock_unlock(&t.rw);

    /* clockwait: the clock of the call, not of the cond (REALTIME here) */
    pthread_cond_t cv;
    pthread_cond_init(&cv, NULL);
    struct timespec until, now;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += 2;
    assert_int_equal(pthread_cond_clockwait(&cv, &t.mu, CLOCK_MONOTONIC, &until), ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &now);
    assert_true(now.tv_sec >= until.tv_sec);
    pthread_cond_destroy(&cv);
    pthread_mutex_unlock(&t.mu);

    /* a lock that is free is taken at once by the timed calls too */
    in_one_second(&until);
    assert_int_equal(pthread_mutex_timedlock(&t.mu, &until), 0);
    pthread_mutex_unlock(&t.mu);
    assert_int_equal(pthread_rwlock_timedrdlock(&t.rw, &until), 0);
    pthread_rwlock_unlock(&t.rw);

    pthread_t d;
    assert_int_equal(pthread_create(&d, NULL, detached, &t), 0);
    assert_int_equal(pthread_detach(d), 0);
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&t.mu);
        bool done = t.detached_done;
        pthread_mutex_unlock(&t.mu);
        if (done) break;
        usleep(1000);
    }
    assert_true(t.detached_done);
    usleep(1000); /* it leaves the sim right after its unlock */
    pthread_rwlock_destroy(&t.rw);
    pthread_mutex_destroy(&t.mu);
    stop();
}

/* ---- sim time ---- */

static void *sleeper(void *p) {
    (void)p;
    struct timespec five = {5, 0};
    assert_int_equal(nanosleep(&five, NULL), 0);
    return NULL;
}

static void test_sleep_is_sim_time(void **state) {
    (void)state;
    struct timespec real0, real1;
    clock_gettime(CLOCK_MONOTONIC, &real0); /* inactive: the real clock */
    start(5);
    int64_t t0 = dsched_now_ns();
    int64_t r0 = dsched_realtime_ns();
    assert_int_equal(t0, INT64_C(1000000000));
    assert_true(r0 == INT64_C(1700000000000000000));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, sleeper, NULL), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(dsched_now_ns() - t0 >= INT64_C(5000000000));
    assert_int_equal(sleep(2), 0);
    assert_int_equal(usleep(1000), 0);
    assert_true(dsched_now_ns() - t0 >= INT64_C(7001000000));

    /* every simulated clock reads sim time */
    struct timespec m, r;
    clock_gettime(CLOCK_MONOTONIC, &m);
    clock_gettime(CLOCK_REALTIME, &r);
    int64_t m_ns = (int64_t)m.tv_sec * 1000000000 + m.tv_nsec;
    int64_t r_ns = (int64_t)r.tv_sec * 1000000000 + r.tv_nsec;
    assert_true(m_ns >= t0 + INT64_C(7001000000));
    assert_true(r_ns - r0 >= m_ns - t0); /* read after m */
    assert_true(time(NULL) >= (time_t)(r_ns / 1000000000));
    stop();
    clock_gettime(CLOCK_MONOTONIC, &real1);
    /* 7 s of naps took less than 5 s of real time (not a tight bound) */
    assert_true(real1.tv_sec - real0.tv_sec < 5);
}

/* ---- getrandom and dsched_random are seeded ---- */

static void test_random_is_seeded(void **state) {
    (void)state;
    uint8_t a[40], b[40];
    uint64_t ra, rb;
    start(9);
    assert_int_equal(getrandom(a, sizeof a, 0), (ssize_t)sizeof a);
    ra = dsched_random();
    stop();
    start(9);
    assert_int_equal(getrandom(b, sizeof b, 0), (ssize_t)sizeof b);
    rb = dsched_random();
    stop();
    assert_memory_equal(a, b, sizeof a);
    assert_true(ra == rb);
    start(10);
    assert_int_equal(getrandom(b, sizeof b, 0), (ssize_t)sizeof b);
    stop();
    assert_true(memcmp(a, b, sizeof a) != 0);
}

/* ---- rwlock: readers share, writers exclude ---- */

typedef struct rw_state {
    pthread_rwlock_t lock;
    int readers_in, writers_in, max_readers;
    long value;
    bool violated;
} rw_state;

static void *rw_reader(void *p) {
    rw_state *s = p;
    for (int i = 0; i < 40; i++) {
        pthread_rwlock_rdlock(&s->lock);
        s->readers_in++;
        if (s->writers_in) s->violated = true;
        if (s->readers_in > s->max_readers) s->max_readers = s->readers_in;
        sched_yield();
        s->readers_in--;
        pthread_rwlock_unlock(&s->lock);
    }
    return NULL;
}

static void *rw_writer(void *p) {
    rw_state *s = p;
    for (int i = 0; i < 40; i++) {
        pthread_rwlock_wrlock(&s->lock);
        s->writers_in++;
        if (s->writers_in > 1 || s->readers_in) s->violated = true;
        sched_yield();
        s->value++;
        s->writers_in--;
        pthread_rwlock_unlock(&s->lock);
    }
    return NULL;
}

static void rw_run(bool prefer_writer) {
    rw_state s;
    memset(&s, 0, sizeof s);
    start(prefer_writer ? 21 : 22);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    if (prefer_writer) pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    assert_int_equal(pthread_rwlock_init(&s.lock, &attr), 0);
    pthread_rwlockattr_destroy(&attr);
    pthread_t th[6];
    for (int i = 0; i < 6; i++)
        assert_int_equal(pthread_create(&th[i], NULL, i < 4 ? rw_reader : rw_writer, &s), 0);
    for (int i = 0; i < 6; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_false(s.violated);
    assert_int_equal(s.value, 80);
    assert_true(s.max_readers > 1);
    assert_int_equal(pthread_rwlock_tryrdlock(&s.lock), 0);
    assert_int_equal(pthread_rwlock_trywrlock(&s.lock), EBUSY);
    pthread_rwlock_unlock(&s.lock);
    assert_int_equal(pthread_rwlock_destroy(&s.lock), 0);
    stop();
}

static void test_rwlock(void **state) {
    (void)state;
    rw_run(false);
    rw_run(true);
}

/* ---- threads that create threads ---- */

typedef struct nest {
    pthread_mutex_t mu;
    int count;
} nest;

static void *leaf(void *p) {
    nest *n = p;
    pthread_mutex_lock(&n->mu);
    n->count++;
    pthread_mutex_unlock(&n->mu);
    return (void *)(intptr_t)dsched_thread_id();
}

static void *parent(void *p) {
    pthread_t kids[3];
    for (int i = 0; i < 3; i++) assert_int_equal(pthread_create(&kids[i], NULL, leaf, p), 0);
    for (int i = 0; i < 3; i++) {
        void *ret = NULL;
        assert_int_equal(pthread_join(kids[i], &ret), 0);
        assert_true((intptr_t)ret > 0);
    }
    return NULL;
}

static void test_nested_threads(void **state) {
    (void)state;
    nest *n = calloc(1, sizeof *n);
    assert_non_null(n);
    start(1);
    pthread_mutex_init(&n->mu, NULL);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, parent, n), 0);
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(n->count, 6);
    pthread_mutex_destroy(&n->mu);
    stop();
    free(n);
}

/* ---- inactive: the real calls ---- */

static void test_inactive_passes_through(void **state) {
    (void)state;
    assert_false(dsched_active());
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 1000000;
    if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
    assert_int_equal(pthread_cond_timedwait(&cv, &mu, &until), ETIMEDOUT);
    pthread_mutex_unlock(&mu);
    /* the real clock is nowhere near the sim's epoch */
    assert_true(time(NULL) < (time_t)1700000000 || time(NULL) > (time_t)1700001000);
}

/* ---- failures, in a child: deadlock and runaway ---- */

typedef struct lock_pair {
    pthread_mutex_t a, b;
} lock_pair;

static void *lock_b_then_a(void *p) {
    lock_pair *l = p;
    pthread_mutex_lock(&l->b);
    pthread_mutex_lock(&l->a);
    return NULL;
}

static void child_deadlock(void) {
    static lock_pair l = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER};
    dsched_config c;
    dsched_config_init(&c, 1);
    dsched_start(&c);
    pthread_t th;
    pthread_mutex_lock(&l.a);
    pthread_create(&th, NULL, lock_b_then_a, &l);
    usleep(1000); /* only the other thread runs: it takes b, then waits for a */
    pthread_mutex_lock(&l.b);
}

static void child_runaway(void) {
    dsched_config c;
    dsched_config_init(&c, 1);
    c.limit_ns = 1000000000;
    dsched_start(&c);
    for (;;) usleep(100000);
}

/* Run fn in a child with stderr captured; expect SIGABRT and want in stderr. */
static void expect_abort(void (*fn)(void), const char *want) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        fn();
        _exit(0);
    }
    close(fds[1]);
    char out[8192];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof out - 1 && (r = read(fds[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) fprintf(stderr, "child said:\n%s\n", out);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    if (!strstr(out, want)) fprintf(stderr, "child said:\n%s\n", out);
    assert_non_null(strstr(out, want));
}

static void test_deadlock_aborts(void **state) {
    (void)state;
    expect_abort(child_deadlock, "deadlock");
    expect_abort(child_deadlock, "held by thread 1");
    expect_abort(child_runaway, "runaway");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutex_counter_exact),
        cmocka_unit_test(test_same_seed_same_run),
        cmocka_unit_test(test_producer_consumer_timed),
        cmocka_unit_test(test_timedwait_times_out),
        cmocka_unit_test(test_timed_locks_and_detach),
        cmocka_unit_test(test_sleep_is_sim_time),
        cmocka_unit_test(test_random_is_seeded),
        cmocka_unit_test(test_rwlock),
        cmocka_unit_test(test_nested_threads),
        cmocka_unit_test(test_inactive_passes_through),
        cmocka_unit_test(test_deadlock_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
