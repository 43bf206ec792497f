/*
** tests/lib/dsched.c: the deterministic scheduler behind tests/lib/dsched.h
** (read its header comment first: what is wrapped, the limits).
**
** Baton passing: g.mu (a real mutex) guards every field of g and of the
** model; g.running is the one sim thread allowed to run user code; every
** other live sim thread sits in a real condvar wait on its own `baton`
** until g.running names it. A wrapper runs as: take g.mu, apply the call to
** the model (which may make the caller not runnable), dsched__schedule (draw
** the time step and the next thread, hand the baton over and wait until it
** comes back), release g.mu, return.
**
** Invariants (checked where cheap):
**   - g.running is the only sim thread outside a baton wait, and it is
**     RUNNABLE whenever it runs user code.
**   - A thread is in at most one wait queue: its wait_obj's FIFO (states
**     T_MUTEX, T_COND, T_RWLOCK_*); T_JOIN and T_SLEEP are queue-free.
**   - Only a thread in T_SLEEP, T_COND, T_MUTEX or T_RWLOCK_* (a timed call)
**     has a deadline; it leaves that state when the deadline fires.
**   - A mutex's owner, a rwlock's writer and its readers count are the model's
**     truth; the real objects are untouched while active.
**   - Choices scan g.threads in id order; hash buckets are only looked up.
**   - g.held is the sum of every thread's held: mutexes owned, rwlocks
**     written, read locks taken (a quiet section needs it to be the
**     caller's own).
**   - In a quiet section (g.quiet == the running thread) dsched__schedule
**     draws nothing and returns at once: the caller must never wait there.
**
** Every __real_X is the symbol X (ld --wrap): under ASan that is ASan's
** interceptor where it has one (pthread_create), else libc.
*/
#define _GNU_SOURCE /* pthread_rwlockattr_getkind_np, CLOCK_TAI */
#include "tests/lib/dsched.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The real functions (ld --wrap resolves __real_X to X). */
int __real_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
int __real_pthread_join(pthread_t th, void **ret);
_Noreturn void __real_pthread_exit(void *ret);
int __real_pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *attr);
int __real_pthread_mutex_destroy(pthread_mutex_t *m);
int __real_pthread_mutex_lock(pthread_mutex_t *m);
int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __real_pthread_mutex_unlock(pthread_mutex_t *m);
int __real_pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abstime);
int __real_pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clk, const struct timespec *abstime);
int __real_pthread_detach(pthread_t th);
int __real_pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *attr);
int __real_pthread_cond_destroy(pthread_cond_t *c);
int __real_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m);
int __real_pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *abstime);
int __real_pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clk,
                                  const struct timespec *abstime);
int __real_pthread_cond_signal(pthread_cond_t *c);
int __real_pthread_cond_broadcast(pthread_cond_t *c);
int __real_pthread_rwlock_init(pthread_rwlock_t *rw, const pthread_rwlockattr_t *attr);
int __real_pthread_rwlock_destroy(pthread_rwlock_t *rw);
int __real_pthread_rwlock_rdlock(pthread_rwlock_t *rw);
int __real_pthread_rwlock_wrlock(pthread_rwlock_t *rw);
int __real_pthread_rwlock_tryrdlock(pthread_rwlock_t *rw);
int __real_pthread_rwlock_trywrlock(pthread_rwlock_t *rw);
int __real_pthread_rwlock_unlock(pthread_rwlock_t *rw);
int __real_pthread_rwlock_timedrdlock(pthread_rwlock_t *rw, const struct timespec *abstime);
int __real_pthread_rwlock_timedwrlock(pthread_rwlock_t *rw, const struct timespec *abstime);
int __real_pthread_rwlock_clockrdlock(pthread_rwlock_t *rw, clockid_t clk, const struct timespec *abstime);
int __real_pthread_rwlock_clockwrlock(pthread_rwlock_t *rw, clockid_t clk, const struct timespec *abstime);
int __real_clock_gettime(clockid_t clk, struct timespec *ts);
int __real_gettimeofday(struct timeval *tv, void *tz);
time_t __real_time(time_t *t);
int __real_nanosleep(const struct timespec *req, struct timespec *rem);
int __real_clock_nanosleep(clockid_t clk, int flags, const struct timespec *req, struct timespec *rem);
int __real_usleep(useconds_t us);
unsigned int __real_sleep(unsigned int s);
int __real_sched_yield(void);
ssize_t __real_getrandom(void *buf, size_t len, unsigned int flags);

#define DSCHED__MONO_START_NS INT64_C(1000000000)
#define DSCHED__NO_DEADLINE INT64_MAX
#define DSCHED__THREADS_MAX 4096 /* sim threads per run, exited ones included */
#define DSCHED__BUCKETS 4096 /* power of two; chains absorb any number of objects */
#define DSCHED__FNV_OFFSET 0xcbf29ce484222325ull
#define DSCHED__FNV_PRIME 0x100000001b3ull

typedef enum dsched__state {
    T_RUNNABLE,
    T_MUTEX,     /* queued on wait_obj (a mutex) */
    T_COND,      /* queued on wait_obj (a cond); cond_mutex to retake */
    T_RWLOCK_RD, /* queued on wait_obj (a rwlock) for reading */
    T_RWLOCK_WR, /* ... for writing */
    T_JOIN,      /* until wait_thread exits */
    T_SLEEP,     /* until deadline_ns */
    T_EXITED,
} dsched__state;

typedef enum dsched__kind { K_MUTEX, K_COND, K_RWLOCK } dsched__kind;

typedef struct dsched__thread dsched__thread;

typedef struct dsched__obj {
    struct dsched__obj *next; /* hash chain */
    const void *addr;
    dsched__kind kind;
    clockid_t clock;          /* K_COND: of its timed waits */
    bool prefer_writer;       /* K_RWLOCK: queued writers block new readers */
    dsched__thread *owner;    /* K_MUTEX owner, K_RWLOCK writer; NULL: free */
    int readers;              /* K_RWLOCK */
    dsched__thread *head, *tail; /* FIFO of waiters (via next_waiter) */
} dsched__obj;

struct dsched__thread {
    int id;                   /* creation order; index in g.threads */
    dsched__state state;
    pthread_cond_t baton;     /* real; signalled when g.running becomes this */
    pthread_t handle;         /* valid once created (id 0: the starter) */
    bool joined;
    void *(*fn)(void *);      /* start routine (not for id 0) */
    void *arg;
    dsched__obj *wait_obj;    /* T_MUTEX, T_COND, T_RWLOCK_* */
    dsched__obj *cond_mutex;  /* during a cond wait: the mutex to retake */
    dsched__thread *wait_thread; /* T_JOIN */
    dsched__thread *next_waiter; /* in wait_obj's FIFO */
    int64_t deadline_ns;      /* sim monotonic; DSCHED__NO_DEADLINE: none */
    int wake_result;          /* of a timed call: 0 or ETIMEDOUT */
    int held;                 /* mutexes owned, rwlocks written or read */
};

static struct {
    pthread_mutex_t mu;       /* real; guards everything below */
    atomic_bool active;
    dsched_config config;
    dsched__thread **threads; /* owned (array and entries); by id */
    int n_threads, cap_threads;
    dsched__thread **scratch; /* owned; runnable threads of one decision */
    dsched__thread *running;
    int64_t now_ns;           /* sim CLOCK_MONOTONIC */
    uint64_t rng_sched, rng_test, rng_bytes;
    uint64_t hash, decisions;
    int held;                 /* sum of the threads' held */
    dsched__thread *quiet;    /* in a quiet section (dsched_quiet_begin) */
    dsched__obj *buckets[DSCHED__BUCKETS]; /* owned entries; live across runs */
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Non-NULL only in a sim thread while active. */
static _Thread_local dsched__thread *dsched__self;

static void dsched__dump_locked(FILE *f);

static void dsched__lock(void) {
    int rc = __real_pthread_mutex_lock(&g.mu);
    if (rc != 0) abort();
}

static void dsched__unlock(void) {
    int rc = __real_pthread_mutex_unlock(&g.mu);
    if (rc != 0) abort();
}

/* A bug in the program under test (or in a test): report and stop, with
** g.mu held so the state printed is the state that failed. */
static _Noreturn __attribute__((format(printf, 1, 2))) void dsched__fail(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "dsched: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (seed %llu)\n", (unsigned long long)g.config.seed);
    dsched__dump_locked(stderr);
    fflush(stderr);
    abort();
}

static void *dsched__calloc(size_t n, size_t size) {
    void *p = calloc(n, size);
    if (!p) {
        fprintf(stderr, "dsched: out of memory\n");
        abort();
    }
    return p;
}

static uint64_t dsched__splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void dsched__hash_bytes(const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) g.hash = (g.hash ^ b[i]) * DSCHED__FNV_PRIME;
}

/* ---- time ---- */

static int64_t dsched__realtime_locked(void) {
    return g.config.start_ns + (g.now_ns - DSCHED__MONO_START_NS);
}

static int dsched__clock_kind(clockid_t clk) { /* 1 monotonic, 2 realtime, 0 not simulated */
    switch (clk) {
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_MONOTONIC_COARSE:
    case CLOCK_BOOTTIME:
        return 1;
    case CLOCK_REALTIME:
    case CLOCK_REALTIME_COARSE:
    case CLOCK_TAI:
        return 2;
    default:
        return 0;
    }
}

/* As glibc: a timed wait checks only tv_nsec (a negative time is in the
** past); a sleep also refuses a negative duration. */
static bool dsched__abstime_valid(const struct timespec *ts) {
    return ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L;
}

static bool dsched__duration_valid(const struct timespec *ts) {
    return dsched__abstime_valid(ts) && ts->tv_sec >= 0;
}

static int64_t dsched__timespec_ns(const struct timespec *ts) { /* saturating */
    if (ts->tv_sec > (INT64_MAX - 999999999) / 1000000000) return DSCHED__NO_DEADLINE - 1;
    if (ts->tv_sec < INT64_MIN / 2 / 1000000000) return INT64_MIN / 2;
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static int64_t dsched__add_sat(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return DSCHED__NO_DEADLINE - 1;
    return r >= DSCHED__NO_DEADLINE ? DSCHED__NO_DEADLINE - 1 : r;
}

/* An absolute time on clock kind (1 or 2) as a sim monotonic deadline. */
static int64_t dsched__abs_to_mono(int kind, int64_t abs_ns) {
    if (kind == 1) return abs_ns;
    /* realtime = start_ns + (mono - 1e9) */
    int64_t r;
    if (__builtin_sub_overflow(abs_ns, g.config.start_ns - DSCHED__MONO_START_NS, &r))
        return abs_ns < 0 ? INT64_MIN : DSCHED__NO_DEADLINE - 1;
    return r >= DSCHED__NO_DEADLINE ? DSCHED__NO_DEADLINE - 1 : r;
}

static void dsched__set_timespec(struct timespec *ts, int64_t ns) {
    ts->tv_sec = (time_t)(ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}

/* ---- objects (keyed by address; lookup only) ---- */

static size_t dsched__bucket(const void *addr) {
    uint64_t x = (uint64_t)(uintptr_t)addr;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)(x & (DSCHED__BUCKETS - 1));
}

static bool dsched__obj_idle(const dsched__obj *o) {
    return !o->owner && o->readers == 0 && !o->head;
}

static void dsched__obj_reset(dsched__obj *o, dsched__kind kind) {
    o->kind = kind;
    o->clock = CLOCK_REALTIME; /* the default of pthread_cond_init */
    o->prefer_writer = false;  /* glibc's default rwlock kind */
    o->owner = NULL;
    o->readers = 0;
    o->head = o->tail = NULL;
}

static dsched__obj *dsched__obj_find(const void *addr) {
    for (dsched__obj *o = g.buckets[dsched__bucket(addr)]; o; o = o->next)
        if (o->addr == addr) return o;
    return NULL;
}

/* The model of the object at addr, created (with defaults) on first use. A
** stale idle entry of another kind (memory reused without destroy) is reset. */
static dsched__obj *dsched__obj_get(const void *addr, dsched__kind kind) {
    dsched__obj *o = dsched__obj_find(addr);
    if (o) {
        if (o->kind != kind) {
            if (!dsched__obj_idle(o)) dsched__fail("object %p used as another kind while busy", addr);
            dsched__obj_reset(o, kind);
        }
        return o;
    }
    size_t b = dsched__bucket(addr);
    o = dsched__calloc(1, sizeof *o);
    o->addr = addr;
    dsched__obj_reset(o, kind);
    o->next = g.buckets[b];
    g.buckets[b] = o;
    return o;
}

static void dsched__obj_remove(const void *addr) {
    dsched__obj **pp = &g.buckets[dsched__bucket(addr)];
    for (; *pp; pp = &(*pp)->next) {
        if ((*pp)->addr == addr) {
            dsched__obj *o = *pp;
            *pp = o->next;
            free(o);
            return;
        }
    }
}

static void dsched__enqueue(dsched__obj *o, dsched__thread *t) {
    t->next_waiter = NULL;
    if (o->tail) o->tail->next_waiter = t;
    else o->head = t;
    o->tail = t;
}

static void dsched__dequeue(dsched__obj *o, dsched__thread *t) {
    dsched__thread *prev = NULL;
    for (dsched__thread *w = o->head; w; prev = w, w = w->next_waiter) {
        if (w != t) continue;
        if (prev) prev->next_waiter = w->next_waiter;
        else o->head = w->next_waiter;
        if (o->tail == w) o->tail = prev;
        w->next_waiter = NULL;
        return;
    }
    dsched__fail("thread %d not queued on %p", t->id, o->addr);
}

static void dsched__make_runnable(dsched__thread *t) {
    t->state = T_RUNNABLE;
    t->wait_obj = NULL;
    t->wait_thread = NULL;
    t->deadline_ns = DSCHED__NO_DEADLINE;
}

/* ---- lock models ---- */

static void dsched__hold(dsched__thread *t, int delta) {
    t->held += delta;
    g.held += delta;
}

/* The mutex goes to the first waiter (FIFO hand-off) or becomes free. */
static void dsched__mutex_release(dsched__obj *m) {
    dsched__thread *t = m->head;
    if (m->owner) dsched__hold(m->owner, -1);
    m->owner = t;
    if (t) {
        dsched__hold(t, 1);
        dsched__dequeue(m, t);
        dsched__make_runnable(t);
    }
}

/* t leaves its cond wait (already dequeued) and retakes its mutex. */
static void dsched__cond_wake(dsched__thread *t, int result) {
    dsched__obj *m = t->cond_mutex;
    t->wake_result = result;
    t->deadline_ns = DSCHED__NO_DEADLINE;
    if (!m->owner) {
        m->owner = t;
        dsched__hold(t, 1);
        dsched__make_runnable(t);
    } else {
        t->state = T_MUTEX;
        t->wait_obj = m;
        dsched__enqueue(m, t);
    }
}

static bool dsched__rwlock_can_read(const dsched__obj *rw) {
    return !rw->owner && !(rw->prefer_writer && rw->head);
}

/* After an unlock: grant a free rwlock to the head writer, or to the queued
** readers (all of them when readers are preferred, else up to the first
** writer). */
static void dsched__rwlock_grant(dsched__obj *rw) {
    if (rw->owner || !rw->head) return;
    if (rw->head->state == T_RWLOCK_WR) {
        if (rw->readers > 0) return;
        dsched__thread *t = rw->head;
        dsched__dequeue(rw, t);
        rw->owner = t;
        dsched__hold(t, 1);
        dsched__make_runnable(t);
        return;
    }
    dsched__thread *t = rw->head;
    while (t) {
        dsched__thread *next = t->next_waiter;
        if (t->state == T_RWLOCK_WR) {
            if (rw->prefer_writer) break;
        } else {
            dsched__dequeue(rw, t);
            rw->readers++;
            dsched__hold(t, 1);
            dsched__make_runnable(t);
        }
        t = next;
    }
}

/* ---- the scheduler ---- */

static void dsched__check_limit(void) {
    if (g.config.limit_ns > 0 && g.now_ns - DSCHED__MONO_START_NS > g.config.limit_ns)
        dsched__fail("sim time passed the limit of %lld ns: runaway", (long long)g.config.limit_ns);
}

/* Wake every thread whose deadline has passed, in id order. */
static void dsched__fire_expired(void) {
    for (int i = 0; i < g.n_threads; i++) {
        dsched__thread *t = g.threads[i];
        if (t->deadline_ns > g.now_ns) continue;
        if (t->state == T_SLEEP) {
            dsched__make_runnable(t);
        } else if (t->state == T_COND) {
            dsched__dequeue(t->wait_obj, t);
            t->wait_obj = NULL;
            dsched__cond_wake(t, ETIMEDOUT);
        } else if (t->state == T_MUTEX || t->state == T_RWLOCK_RD || t->state == T_RWLOCK_WR) {
            dsched__obj *o = t->wait_obj;
            dsched__dequeue(o, t);
            dsched__make_runnable(t);
            t->wake_result = ETIMEDOUT;
            /* a writer that gave up may have held back readers */
            if (o->kind == K_RWLOCK) dsched__rwlock_grant(o);
        } else {
            dsched__fail("thread %d has a deadline in state %d", t->id, (int)t->state);
        }
    }
}

static int dsched__collect_runnable(void) {
    int n = 0;
    for (int i = 0; i < g.n_threads; i++)
        if (g.threads[i]->state == T_RUNNABLE) g.scratch[n++] = g.threads[i];
    return n;
}

/* One sync point, with g.mu held: draw the time step, fire deadlines, draw
** the next thread, hand it the baton and (unless me exited) wait until the
** baton is back. */
static void dsched__schedule(dsched__thread *me) {
    if (g.quiet == me) {
        if (me->state != T_RUNNABLE) dsched__fail("thread %d would wait in a quiet section", me->id);
        return;
    }
    uint64_t step = (uint64_t)g.config.step_max_ns + 1;
    g.now_ns += (int64_t)(dsched__splitmix(&g.rng_sched) % step);
    dsched__check_limit();
    dsched__fire_expired();
    int n;
    while ((n = dsched__collect_runnable()) == 0) {
        int64_t at = DSCHED__NO_DEADLINE;
        for (int i = 0; i < g.n_threads; i++)
            if (g.threads[i]->deadline_ns < at) at = g.threads[i]->deadline_ns;
        if (at == DSCHED__NO_DEADLINE) dsched__fail("deadlock: no runnable thread and no deadline");
        if (at > g.now_ns) g.now_ns = at;
        dsched__check_limit();
        dsched__fire_expired();
    }
    dsched__thread *next = g.scratch[dsched__splitmix(&g.rng_sched) % (uint64_t)n];
    int32_t id = next->id;
    dsched__hash_bytes(&id, sizeof id);
    dsched__hash_bytes(&g.now_ns, sizeof g.now_ns);
    g.decisions++;
    g.running = next;
    if (next != me) {
        int rc = __real_pthread_cond_signal(&next->baton);
        if (rc != 0) abort();
    }
    if (me->state == T_EXITED) return;
    while (g.running != me) {
        int rc = __real_pthread_cond_wait(&me->baton, &g.mu);
        if (rc != 0) abort();
    }
}

/* A timed call's deadline: abs_kind 0 for none, else the clock kind of abs_ns. */
static int64_t dsched__deadline(int abs_kind, int64_t abs_ns) {
    return abs_kind ? dsched__abs_to_mono(abs_kind, abs_ns) : DSCHED__NO_DEADLINE;
}

/* The tail of every lock and cond wait, with g.mu held: unless state is
** T_RUNNABLE (the caller got what it asked for), queue me on o in that state
** until deadline_ns; then the sync point. Releases g.mu and returns me's wake
** result: 0, ETIMEDOUT, or what the caller set before. */
static int dsched__block_on(dsched__thread *me, dsched__state state, dsched__obj *o, int64_t deadline_ns) {
    if (state != T_RUNNABLE) {
        me->state = state;
        me->wait_obj = o;
        me->deadline_ns = deadline_ns;
        dsched__enqueue(o, me);
    }
    dsched__schedule(me);
    int rc = me->wake_result;
    me->cond_mutex = NULL; /* a cond wait's: retaken by now */
    dsched__unlock();
    return rc;
}

static dsched__thread *dsched__thread_new(void) {
    if (g.n_threads == DSCHED__THREADS_MAX) dsched__fail("more than %d sim threads in one run", DSCHED__THREADS_MAX);
    if (g.n_threads == g.cap_threads) {
        int cap = g.cap_threads ? g.cap_threads * 2 : 16;
        dsched__thread **th = realloc(g.threads, (size_t)cap * sizeof *th);
        dsched__thread **sc = realloc(g.scratch, (size_t)cap * sizeof *sc);
        if (!th || !sc) {
            fprintf(stderr, "dsched: out of memory\n");
            abort();
        }
        g.threads = th;
        g.scratch = sc;
        g.cap_threads = cap;
    }
    dsched__thread *t = dsched__calloc(1, sizeof *t);
    if (__real_pthread_cond_init(&t->baton, NULL) != 0) abort();
    t->id = g.n_threads;
    t->state = T_RUNNABLE;
    t->deadline_ns = DSCHED__NO_DEADLINE;
    g.threads[g.n_threads++] = t;
    return t;
}

static void dsched__thread_free(dsched__thread *t) {
    __real_pthread_cond_destroy(&t->baton);
    free(t);
}

/* me leaves the sim: joiners become runnable, the baton moves on. */
static void dsched__exit(dsched__thread *me) {
    dsched__lock();
    me->state = T_EXITED;
    for (int i = 0; i < g.n_threads; i++) {
        dsched__thread *t = g.threads[i];
        if (t->state == T_JOIN && t->wait_thread == me) dsched__make_runnable(t);
    }
    dsched__schedule(me);
    dsched__self = NULL;
    dsched__unlock();
}

static void *dsched__trampoline(void *p) {
    dsched__thread *t = p;
    dsched__self = t;
    dsched__lock();
    while (g.running != t) {
        if (__real_pthread_cond_wait(&t->baton, &g.mu) != 0) abort();
    }
    dsched__unlock();
    void *ret = t->fn(t->arg);
    dsched__exit(t);
    return ret;
}

/* ---- public API ---- */

void dsched_config_init(dsched_config *c, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->seed = seed;
    c->start_ns = INT64_C(1700000000000000000);
    c->step_max_ns = 20000;
    c->limit_ns = 0;
}

int dsched_start(const dsched_config *c) {
    if (!c || c->step_max_ns < 0 || c->limit_ns < 0 || c->start_ns < 0) return -1;
    dsched__lock();
    if (atomic_load(&g.active) || dsched__self) {
        dsched__unlock();
        return -1;
    }
    g.config = *c;
    g.now_ns = DSCHED__MONO_START_NS;
    /* three streams from one seed: the test's draws and getrandom's bytes do
    ** not shift the scheduler's */
    g.rng_sched = c->seed;
    g.rng_test = c->seed ^ 0x5851F42D4C957F2Dull;
    g.rng_bytes = c->seed ^ 0x14057B7EF767814Full;
    g.hash = DSCHED__FNV_OFFSET;
    g.decisions = 0;
    g.held = 0;
    g.quiet = NULL;
    dsched__thread *t0 = dsched__thread_new();
    t0->handle = pthread_self();
    g.running = t0;
    dsched__self = t0;
    atomic_store(&g.active, true);
    dsched__unlock();
    return 0;
}

void dsched_stop(void) {
    dsched__thread *me = dsched__self;
    dsched__lock();
    if (!me || me->id != 0) dsched__fail("dsched_stop called outside sim thread 0");
    for (int i = 1; i < g.n_threads; i++)
        if (g.threads[i]->state != T_EXITED)
            dsched__fail("dsched_stop: sim thread %d has not exited", g.threads[i]->id);
    for (size_t b = 0; b < DSCHED__BUCKETS; b++)
        for (dsched__obj *o = g.buckets[b]; o; o = o->next)
            if (!dsched__obj_idle(o)) dsched__fail("dsched_stop: object %p still held", o->addr);
    for (int i = 0; i < g.n_threads; i++) dsched__thread_free(g.threads[i]);
    g.n_threads = 0;
    g.running = NULL;
    dsched__self = NULL;
    atomic_store(&g.active, false);
    dsched__unlock();
}

bool dsched_active(void) { return atomic_load(&g.active); }

int64_t dsched_now_ns(void) {
    dsched__lock();
    int64_t r = g.now_ns;
    dsched__unlock();
    return r;
}

int64_t dsched_realtime_ns(void) {
    dsched__lock();
    int64_t r = dsched__realtime_locked();
    dsched__unlock();
    return r;
}

uint64_t dsched_random(void) {
    dsched__lock();
    uint64_t r = dsched__splitmix(&g.rng_test);
    dsched__unlock();
    return r;
}

uint64_t dsched_trace_hash(void) {
    dsched__lock();
    uint64_t r = g.hash;
    dsched__unlock();
    return r;
}

uint64_t dsched_decisions(void) {
    dsched__lock();
    uint64_t r = g.decisions;
    dsched__unlock();
    return r;
}

int dsched_thread_id(void) { return dsched__self ? dsched__self->id : -1; }

bool dsched_quiet_begin(void) {
    dsched__thread *me = dsched__self;
    if (!me) return false;
    dsched__lock();
    if (g.quiet) dsched__fail("thread %d: nested quiet section", me->id);
    bool ok = g.held == me->held; /* nobody else holds a lock: none of ours can wait */
    if (ok) g.quiet = me;
    dsched__unlock();
    return ok;
}

void dsched_quiet_end(void) {
    dsched__thread *me = dsched__self;
    dsched__lock();
    if (!me || g.quiet != me) dsched__fail("dsched_quiet_end outside a quiet section");
    g.quiet = NULL;
    dsched__unlock();
}

static const char *dsched__state_name(dsched__state s) {
    switch (s) {
    case T_RUNNABLE: return "runnable";
    case T_MUTEX: return "mutex";
    case T_COND: return "cond";
    case T_RWLOCK_RD: return "rwlock-read";
    case T_RWLOCK_WR: return "rwlock-write";
    case T_JOIN: return "join";
    case T_SLEEP: return "sleep";
    case T_EXITED: return "exited";
    }
    return "?";
}

static void dsched__dump_locked(FILE *f) {
    fprintf(f, "dsched: seed %llu, sim time +%lld ns, %llu decisions, %d threads, running %d\n",
            (unsigned long long)g.config.seed, (long long)(g.now_ns - DSCHED__MONO_START_NS),
            (unsigned long long)g.decisions, g.n_threads, g.running ? g.running->id : -1);
    for (int i = 0; i < g.n_threads; i++) {
        const dsched__thread *t = g.threads[i];
        if (t->state == T_EXITED) continue;
        void *start = NULL; /* a function's address, for addr2line */
        if (t->fn) memcpy(&start, &t->fn, sizeof start);
        fprintf(f, "  thread %d (start %p): %s", t->id, start, dsched__state_name(t->state));
        if (t->wait_obj) {
            const dsched__obj *o = t->wait_obj;
            fprintf(f, " on %p", o->addr);
            if (o->owner)
                fprintf(f, " (held by thread %d%s)", o->owner->id,
                        o->owner->state == T_EXITED ? ", which exited" : "");
            if (o->kind == K_RWLOCK && o->readers) fprintf(f, " (%d readers)", o->readers);
        }
        if (t->state == T_COND && t->cond_mutex) fprintf(f, " with mutex %p", t->cond_mutex->addr);
        if (t->wait_thread) fprintf(f, " thread %d", t->wait_thread->id);
        if (t->deadline_ns != DSCHED__NO_DEADLINE)
            fprintf(f, " until +%lld ns", (long long)(t->deadline_ns - g.now_ns));
        fputc('\n', f);
    }
}

void dsched_dump(FILE *f) {
    dsched__lock();
    dsched__dump_locked(f);
    dsched__unlock();
}

/* ---- wrappers: threads ---- */

int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_create(th, attr, fn, arg);
    dsched__lock();
    if (g.quiet == me) dsched__fail("thread %d creates a thread in a quiet section", me->id);
    dsched__thread *t = dsched__thread_new();
    t->fn = fn;
    t->arg = arg;
    t->state = T_EXITED; /* not choosable until it exists */
    dsched__unlock();
    /* The child waits for the baton, which me holds. */
    int rc = __real_pthread_create(th, attr, dsched__trampoline, t);
    dsched__lock();
    if (rc != 0) {
        g.n_threads--; /* t is the last one: only me can have added threads */
        dsched__thread_free(t);
    } else {
        t->handle = *th;
        t->state = T_RUNNABLE;
    }
    dsched__schedule(me);
    dsched__unlock();
    return rc;
}

int __wrap_pthread_join(pthread_t th, void **ret) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_join(th, ret);
    dsched__lock();
    dsched__thread *t = NULL;
    for (int i = g.n_threads - 1; i > 0 && !t; i--) /* newest first: handles are reused */
        if (!g.threads[i]->joined && g.threads[i]->fn && pthread_equal(g.threads[i]->handle, th))
            t = g.threads[i];
    if (!t) { /* not a sim thread */
        dsched__unlock();
        return __real_pthread_join(th, ret);
    }
    if (t == me) {
        dsched__unlock();
        return EDEADLK;
    }
    if (t->state != T_EXITED) {
        me->state = T_JOIN;
        me->wait_thread = t;
    }
    dsched__schedule(me);
    t->joined = true;
    dsched__unlock();
    return __real_pthread_join(th, ret); /* the thread has left the sim: returns at once */
}

/* A detached sim thread still exits through the sim; nobody may join it. */
int __wrap_pthread_detach(pthread_t th) {
    dsched__thread *me = dsched__self;
    if (me) {
        dsched__lock();
        for (int i = g.n_threads - 1; i > 0; i--) {
            dsched__thread *t = g.threads[i];
            if (!t->joined && t->fn && pthread_equal(t->handle, th)) {
                t->joined = true;
                break;
            }
        }
        dsched__unlock();
    }
    return __real_pthread_detach(th);
}

_Noreturn void __wrap_pthread_exit(void *ret) {
    dsched__thread *me = dsched__self;
    if (me) {
        if (me->id == 0) {
            dsched__lock();
            dsched__fail("pthread_exit from sim thread 0");
        }
        dsched__exit(me);
    }
    __real_pthread_exit(ret);
}

/* ---- wrappers: mutexes ---- */

int __wrap_pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *attr) {
    if (dsched__self) {
        dsched__lock();
        dsched__obj *o = dsched__obj_find(m);
        if (o) {
            if (!dsched__obj_idle(o)) dsched__fail("pthread_mutex_init of busy %p", (void *)m);
            dsched__obj_reset(o, K_MUTEX);
        }
        dsched__unlock();
    }
    return __real_pthread_mutex_init(m, attr);
}

int __wrap_pthread_mutex_destroy(pthread_mutex_t *m) {
    dsched__lock();
    dsched__obj *o = dsched__obj_find(m);
    if (o && dsched__self) {
        if (!dsched__obj_idle(o)) dsched__fail("pthread_mutex_destroy of busy mutex %p", (void *)m);
        for (int i = 0; i < g.n_threads; i++)
            if (g.threads[i]->cond_mutex == o)
                dsched__fail("pthread_mutex_destroy of %p while thread %d waits with it", (void *)m,
                             g.threads[i]->id);
    }
    if (o) dsched__obj_remove(m);
    dsched__unlock();
    return __real_pthread_mutex_destroy(m);
}

/* abs_kind: 0 for no deadline, else the clock kind of abs_ns. */
static int dsched__mutex_lock(dsched__thread *me, pthread_mutex_t *m, int abs_kind, int64_t abs_ns) {
    dsched__lock();
    dsched__obj *o = dsched__obj_get(m, K_MUTEX);
    if (o->owner == me) dsched__fail("thread %d relocks mutex %p", me->id, (void *)m);
    me->wake_result = 0;
    dsched__state wait = T_MUTEX;
    if (!o->owner) {
        o->owner = me;
        dsched__hold(me, 1);
        wait = T_RUNNABLE;
    }
    return dsched__block_on(me, wait, o, dsched__deadline(abs_kind, abs_ns));
}

int __wrap_pthread_mutex_lock(pthread_mutex_t *m) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_mutex_lock(m);
    return dsched__mutex_lock(me, m, 0, 0);
}

int __wrap_pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abstime) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_mutex_timedlock(m, abstime);
    if (!dsched__abstime_valid(abstime)) return EINVAL;
    return dsched__mutex_lock(me, m, 2, dsched__timespec_ns(abstime));
}

int __wrap_pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clk, const struct timespec *abstime) {
    dsched__thread *me = dsched__self;
    int kind = dsched__clock_kind(clk);
    if (!me) return __real_pthread_mutex_clocklock(m, clk, abstime);
    if (kind == 0 || !dsched__abstime_valid(abstime)) return EINVAL;
    return dsched__mutex_lock(me, m, kind, dsched__timespec_ns(abstime));
}

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_mutex_trylock(m);
    dsched__lock();
    dsched__obj *o = dsched__obj_get(m, K_MUTEX);
    int rc = EBUSY;
    if (!o->owner) {
        o->owner = me;
        dsched__hold(me, 1);
        rc = 0;
    }
    dsched__schedule(me);
    dsched__unlock();
    return rc;
}

int __wrap_pthread_mutex_unlock(pthread_mutex_t *m) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_mutex_unlock(m);
    dsched__lock();
    dsched__obj *o = dsched__obj_get(m, K_MUTEX);
    if (o->owner != me)
        dsched__fail("thread %d unlocks mutex %p it does not hold (owner %d)", me->id, (void *)m,
                     o->owner ? o->owner->id : -1);
    dsched__mutex_release(o);
    dsched__schedule(me);
    dsched__unlock();
    return 0;
}

/* ---- wrappers: condvars ---- */

int __wrap_pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *attr) {
    clockid_t clk = CLOCK_REALTIME;
    if (attr && pthread_condattr_getclock(attr, &clk) != 0) clk = CLOCK_REALTIME;
    /* recorded even while inactive: objects built before dsched_start keep
    ** their clock */
    dsched__lock();
    dsched__obj *o = dsched__obj_find(c);
    if (o && dsched__self && !dsched__obj_idle(o)) dsched__fail("pthread_cond_init of busy %p", (void *)c);
    if (!o) o = dsched__obj_get(c, K_COND);
    dsched__obj_reset(o, K_COND);
    o->clock = clk;
    dsched__unlock();
    return __real_pthread_cond_init(c, attr);
}

int __wrap_pthread_cond_destroy(pthread_cond_t *c) {
    dsched__lock();
    dsched__obj *o = dsched__obj_find(c);
    if (o && dsched__self && !dsched__obj_idle(o))
        dsched__fail("pthread_cond_destroy of %p with waiters", (void *)c);
    if (o) dsched__obj_remove(c);
    dsched__unlock();
    return __real_pthread_cond_destroy(c);
}

/* clk_override: the clock of a clockwait, or -1 for the cond's own. */
static int dsched__cond_wait(dsched__thread *me, pthread_cond_t *c, pthread_mutex_t *m,
                             const struct timespec *abstime, clockid_t clk_override) {
    dsched__lock();
    dsched__obj *co = dsched__obj_get(c, K_COND);
    dsched__obj *mo = dsched__obj_get(m, K_MUTEX);
    if (mo->owner != me) dsched__fail("thread %d waits on cond %p without holding %p", me->id, (void *)c, (void *)m);
    dsched__mutex_release(mo);
    me->cond_mutex = mo;
    me->wake_result = 0;
    int64_t deadline_ns = DSCHED__NO_DEADLINE;
    if (abstime) {
        clockid_t clk = clk_override >= 0 ? clk_override : co->clock;
        int kind = dsched__clock_kind(clk);
        if (kind == 0) dsched__fail("cond %p waits on a clock (%d) that is not simulated", (void *)c, (int)clk);
        deadline_ns = dsched__abs_to_mono(kind, dsched__timespec_ns(abstime));
    }
    return dsched__block_on(me, T_COND, co, deadline_ns);
}

int __wrap_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_cond_wait(c, m);
    return dsched__cond_wait(me, c, m, NULL, -1);
}

int __wrap_pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *abstime) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_cond_timedwait(c, m, abstime);
    if (!dsched__abstime_valid(abstime)) return EINVAL;
    return dsched__cond_wait(me, c, m, abstime, -1);
}

int __wrap_pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clk,
                                  const struct timespec *abstime) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_cond_clockwait(c, m, clk, abstime);
    if (dsched__clock_kind(clk) == 0 || !dsched__abstime_valid(abstime)) return EINVAL;
    return dsched__cond_wait(me, c, m, abstime, clk);
}

static int dsched__cond_wake_some(pthread_cond_t *c, bool all) {
    dsched__thread *me = dsched__self;
    dsched__lock();
    dsched__obj *co = dsched__obj_get(c, K_COND);
    if (g.quiet == me && co->head) dsched__fail("thread %d wakes a waiter in a quiet section", me->id);
    while (co->head) {
        dsched__thread *t = co->head;
        dsched__dequeue(co, t);
        t->wait_obj = NULL;
        dsched__cond_wake(t, 0);
        if (!all) break;
    }
    dsched__schedule(me);
    dsched__unlock();
    return 0;
}

int __wrap_pthread_cond_signal(pthread_cond_t *c) {
    if (!dsched__self) return __real_pthread_cond_signal(c);
    return dsched__cond_wake_some(c, false);
}

int __wrap_pthread_cond_broadcast(pthread_cond_t *c) {
    if (!dsched__self) return __real_pthread_cond_broadcast(c);
    return dsched__cond_wake_some(c, true);
}

/* ---- wrappers: rwlocks ---- */

int __wrap_pthread_rwlock_init(pthread_rwlock_t *rw, const pthread_rwlockattr_t *attr) {
    int kind = PTHREAD_RWLOCK_PREFER_READER_NP;
    if (attr && pthread_rwlockattr_getkind_np(attr, &kind) != 0) kind = PTHREAD_RWLOCK_PREFER_READER_NP;
    dsched__lock();
    dsched__obj *o = dsched__obj_find(rw);
    if (o && dsched__self && !dsched__obj_idle(o)) dsched__fail("pthread_rwlock_init of busy %p", (void *)rw);
    if (!o) o = dsched__obj_get(rw, K_RWLOCK);
    dsched__obj_reset(o, K_RWLOCK);
    o->prefer_writer = kind == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
    dsched__unlock();
    return __real_pthread_rwlock_init(rw, attr);
}

int __wrap_pthread_rwlock_destroy(pthread_rwlock_t *rw) {
    dsched__lock();
    dsched__obj *o = dsched__obj_find(rw);
    if (o && dsched__self && !dsched__obj_idle(o))
        dsched__fail("pthread_rwlock_destroy of busy rwlock %p", (void *)rw);
    if (o) dsched__obj_remove(rw);
    dsched__unlock();
    return __real_pthread_rwlock_destroy(rw);
}

/* try: EBUSY rather than wait; abs_kind: 0 for no deadline, else the clock
** kind of abs_ns. */
static int dsched__rwlock_lock(dsched__thread *me, pthread_rwlock_t *rw, bool write, bool try, int abs_kind,
                               int64_t abs_ns) {
    dsched__lock();
    dsched__obj *o = dsched__obj_get(rw, K_RWLOCK);
    if (o->owner == me) dsched__fail("thread %d relocks rwlock %p it writes", me->id, (void *)rw);
    bool can = write ? !o->owner && o->readers == 0 && !o->head : dsched__rwlock_can_read(o);
    me->wake_result = 0;
    dsched__state wait = write ? T_RWLOCK_WR : T_RWLOCK_RD;
    if (can) {
        if (write) o->owner = me;
        else o->readers++;
        dsched__hold(me, 1);
        wait = T_RUNNABLE;
    } else if (try) {
        me->wake_result = EBUSY;
        wait = T_RUNNABLE;
    }
    return dsched__block_on(me, wait, o, dsched__deadline(abs_kind, abs_ns));
}

int __wrap_pthread_rwlock_rdlock(pthread_rwlock_t *rw) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_rwlock_rdlock(rw);
    return dsched__rwlock_lock(me, rw, false, false, 0, 0);
}

int __wrap_pthread_rwlock_wrlock(pthread_rwlock_t *rw) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_rwlock_wrlock(rw);
    return dsched__rwlock_lock(me, rw, true, false, 0, 0);
}

int __wrap_pthread_rwlock_tryrdlock(pthread_rwlock_t *rw) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_rwlock_tryrdlock(rw);
    return dsched__rwlock_lock(me, rw, false, true, 0, 0);
}

int __wrap_pthread_rwlock_trywrlock(pthread_rwlock_t *rw) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_rwlock_trywrlock(rw);
    return dsched__rwlock_lock(me, rw, true, true, 0, 0);
}

int __wrap_pthread_rwlock_timedrdlock(pthread_rwlock_t *rw, const struct timespec *abstime) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_rwlock_timedrdlock(rw, abstime);
    if (!dsched__abstime_valid(abstime)) return EINVAL;
    return dsched__rwlock_lock(me, rw, false, false, 2, dsched__timespec_ns(abstime));
}

int __wrap_pthread_rwlock_timedwrlock(pthread_rwlock_t *rw, const struct timespec *abstime) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_rwlock_timedwrlock(rw, abstime);
    if (!dsched__abstime_valid(abstime)) return EINVAL;
    return dsched__rwlock_lock(me, rw, true, false, 2, dsched__timespec_ns(abstime));
}

int __wrap_pthread_rwlock_clockrdlock(pthread_rwlock_t *rw, clockid_t clk, const struct timespec *abstime) {
    dsched__thread *me = dsched__self;
    int kind = dsched__clock_kind(clk);
    if (!me) return __real_pthread_rwlock_clockrdlock(rw, clk, abstime);
    if (kind == 0 || !dsched__abstime_valid(abstime)) return EINVAL;
    return dsched__rwlock_lock(me, rw, false, false, kind, dsched__timespec_ns(abstime));
}

int __wrap_pthread_rwlock_clockwrlock(pthread_rwlock_t *rw, clockid_t clk, const struct timespec *abstime) {
    dsched__thread *me = dsched__self;
    int kind = dsched__clock_kind(clk);
    if (!me) return __real_pthread_rwlock_clockwrlock(rw, clk, abstime);
    if (kind == 0 || !dsched__abstime_valid(abstime)) return EINVAL;
    return dsched__rwlock_lock(me, rw, true, false, kind, dsched__timespec_ns(abstime));
}

int __wrap_pthread_rwlock_unlock(pthread_rwlock_t *rw) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_pthread_rwlock_unlock(rw);
    dsched__lock();
    dsched__obj *o = dsched__obj_get(rw, K_RWLOCK);
    if (o->owner == me) {
        o->owner = NULL;
    } else {
        /* readers are counted, not named: a foreign unlock goes unnoticed */
        if (o->owner || o->readers <= 0)
            dsched__fail("thread %d unlocks rwlock %p it does not hold", me->id, (void *)rw);
        o->readers--;
    }
    dsched__hold(me, -1);
    dsched__rwlock_grant(o);
    dsched__schedule(me);
    dsched__unlock();
    return 0;
}

/* ---- wrappers: time, sleep, randomness ---- */

int __wrap_clock_gettime(clockid_t clk, struct timespec *ts) {
    dsched__thread *me = dsched__self;
    int kind = dsched__clock_kind(clk);
    if (!me || kind == 0) return __real_clock_gettime(clk, ts);
    dsched__lock();
    dsched__schedule(me);
    dsched__set_timespec(ts, kind == 1 ? g.now_ns : dsched__realtime_locked());
    dsched__unlock();
    return 0;
}

int __wrap_gettimeofday(struct timeval *tv, void *tz) {
    dsched__thread *me = dsched__self;
    if (!me || !tv) return __real_gettimeofday(tv, tz);
    dsched__lock();
    dsched__schedule(me);
    int64_t ns = dsched__realtime_locked();
    tv->tv_sec = (time_t)(ns / 1000000000);
    tv->tv_usec = (suseconds_t)(ns % 1000000000 / 1000);
    dsched__unlock();
    return 0;
}

time_t __wrap_time(time_t *t) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_time(t);
    dsched__lock();
    dsched__schedule(me);
    time_t r = (time_t)(dsched__realtime_locked() / 1000000000);
    dsched__unlock();
    if (t) *t = r;
    return r;
}

/* me sleeps until deadline (sim monotonic); a past one is a yield. */
static void dsched__sleep_until(dsched__thread *me, int64_t deadline_ns) {
    dsched__lock();
    me->state = T_SLEEP;
    me->deadline_ns = deadline_ns;
    dsched__schedule(me);
    dsched__unlock();
}

static int64_t dsched__now_locked_read(void) {
    dsched__lock();
    int64_t r = g.now_ns;
    dsched__unlock();
    return r;
}

int __wrap_nanosleep(const struct timespec *req, struct timespec *rem) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_nanosleep(req, rem);
    if (!dsched__duration_valid(req)) {
        errno = EINVAL;
        return -1;
    }
    dsched__sleep_until(me, dsched__add_sat(dsched__now_locked_read(), dsched__timespec_ns(req)));
    if (rem) rem->tv_sec = 0, rem->tv_nsec = 0;
    return 0;
}

int __wrap_clock_nanosleep(clockid_t clk, int flags, const struct timespec *req, struct timespec *rem) {
    dsched__thread *me = dsched__self;
    int kind = dsched__clock_kind(clk);
    if (!me || kind == 0) return __real_clock_nanosleep(clk, flags, req, rem);
    if ((flags & TIMER_ABSTIME) ? !dsched__abstime_valid(req) : !dsched__duration_valid(req)) return EINVAL;
    int64_t ns = dsched__timespec_ns(req);
    dsched__lock();
    int64_t deadline = (flags & TIMER_ABSTIME) ? dsched__abs_to_mono(kind, ns) : dsched__add_sat(g.now_ns, ns);
    dsched__unlock();
    dsched__sleep_until(me, deadline);
    if (rem && !(flags & TIMER_ABSTIME)) rem->tv_sec = 0, rem->tv_nsec = 0;
    return 0;
}

int __wrap_usleep(useconds_t us) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_usleep(us);
    dsched__sleep_until(me, dsched__add_sat(dsched__now_locked_read(), (int64_t)us * 1000));
    return 0;
}

unsigned int __wrap_sleep(unsigned int s) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_sleep(s);
    dsched__sleep_until(me, dsched__add_sat(dsched__now_locked_read(), (int64_t)s * 1000000000));
    return 0;
}

int __wrap_sched_yield(void) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_sched_yield();
    dsched__lock();
    dsched__schedule(me);
    dsched__unlock();
    return 0;
}

ssize_t __wrap_getrandom(void *buf, size_t len, unsigned int flags) {
    dsched__thread *me = dsched__self;
    if (!me) return __real_getrandom(buf, len, flags);
    dsched__lock();
    if (g.quiet == me) dsched__fail("thread %d draws random bytes in a quiet section", me->id);
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t x = dsched__splitmix(&g.rng_bytes);
        size_t n = len - i < 8 ? len - i : 8;
        memcpy(p + i, &x, n);
    }
    dsched__schedule(me);
    dsched__unlock();
    if (len > (size_t)SSIZE_MAX) return SSIZE_MAX;
    return (ssize_t)len;
}
