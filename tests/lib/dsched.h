/*
** tests/lib/dsched.h: a deterministic thread scheduler for simulations.
**
** Unchanged production code (worker threads, pthread mutexes, condvars with
** timed waits, clock_gettime, getrandom) runs under one seed = one run. The
** test binary is linked with GNU ld `-Wl,--wrap=SYMBOL` for every symbol in
** MERIDIAN_DSCHED_WRAPPED (tests/lib/CMakeLists.txt; meridian_dsched_link(target)
** in tests/CMakeLists.txt adds the flags and the library), so
** every call from the test's objects and static libraries to, say,
** pthread_mutex_lock reaches __wrap_pthread_mutex_lock in dsched.c.
**
** Between dsched_start and dsched_stop the calling thread is sim thread 0 and
** every thread it creates (transitively) is a sim thread; ids are given in
** creation order. Exactly one sim thread runs at a time. Every wrapped call
** is a sync point: the scheduler applies the call to its own model of the
** object (the real mutex/condvar/rwlock is not touched while active), draws
** a time step in [0, step_max_ns], fires the expired deadlines, and draws the
** next thread to run among the runnable ones (ordered by id; the caller
** included). Calls from threads that are not sim threads (cmocka's main
** before start, librocksdb's own threads) and calls while inactive go to the
** real functions unchanged.
**
** Invariants:
**   - Every decision depends only on the seed and the sequence of wrapped
**     calls: runnable threads are scanned in id order, wait queues are FIFO,
**     the hash table of objects (keyed by address) is only looked up.
**   - Sim time only moves forward: by the drawn step at each decision, and
**     to the earliest deadline when no thread is runnable.
**   - No runnable thread and no deadline is a deadlock: dsched_dump to
**     stderr and abort(). Sim time past start + limit_ns: the same.
**
** Known limits (not modelled):
**   - A sim thread that blocks in anything but a wrapped call (a pipe, a
**     socket, a semaphore, a lock in a shared library) waiting for another
**     sim thread hangs the run for real.
**   - Mutexes are all "normal": relocking one you hold, or unlocking one you
**     do not hold, asserts (error-check and recursive kinds are not
**     modelled). No robust or process-shared objects; pthread_cancel,
**     barriers, spinlocks, semaphores, pthread_once and thread-specific data
**     are not wrapped (they run real: fine while only one thread runs,
**     fatal if a sim thread blocks in one waiting for another).
**   - A mutex held by a thread that exits stays held (as in glibc):
**     waiters then deadlock and dsched_dump says "which exited".
**   - Timed calls (cond timedwait/clockwait, mutex timed/clocklock, rwlock
**     timed/clock locks, nanosleep, clock_nanosleep, usleep, sleep) wait in
**     sim time; a cmocka assertion failing in a sim thread other than 0
**     longjmps across threads (check results in thread 0).
**   - Objects must be idle (unlocked, no waiters) at start and at stop; one
**     object must not be shared between sim threads and other threads.
**   - The clock of a condvar comes from pthread_cond_init (recorded even
**     while inactive); a PTHREAD_COND_INITIALIZER one is CLOCK_REALTIME.
**   - rwlocks prefer writers only when their attr says
**     PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP, else readers (glibc).
**   - Atomics and plain memory are not sync points: a thread spinning on an
**     atomic without a wrapped call never lets the others run.
**   - Shared libraries (libuv, librocksdb, cmocka, libc itself) are not
**     wrapped; only objects linked into the test binary are.
*/
#ifndef MERIDIAN_DSCHED_H
#define MERIDIAN_DSCHED_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct dsched_config {
    uint64_t seed;          /* the PRNG choosing which thread runs at each sync point */
    int64_t  start_ns;      /* simulated CLOCK_REALTIME at start (e.g. 1.7e18); MONOTONIC starts at 1e9 */
    int64_t  step_max_ns;   /* each scheduling decision advances sim time by [0, step_max_ns] (e.g. 20000) */
    int64_t  limit_ns;      /* 0: none; else abort with a message when sim time passes start+limit (runaway) */
} dsched_config;

/* Defaults: start_ns 1.7e18, step_max_ns 20000, limit_ns 0. */
void dsched_config_init(dsched_config *c, uint64_t seed);
/* The calling thread becomes sim thread 0; wrapped calls are now scheduled.
** Returns 0, or -1 if already active or c is invalid. c is copied. */
int dsched_start(const dsched_config *c);
/* Called by sim thread 0 once every other sim thread has exited (joined):
** back to real calls. The state of the run (time, hash) stays readable. */
void dsched_stop(void);
bool dsched_active(void);
/* Simulated CLOCK_MONOTONIC and CLOCK_REALTIME (the last values after stop). */
int64_t dsched_now_ns(void);
int64_t dsched_realtime_ns(void);
/* The test's own draws, from a second stream seeded by the same seed (so
** they do not shift the scheduler's draws). Any thread. */
uint64_t dsched_random(void);
/* FNV-1a of every decision (thread chosen, sim time): same seed and same
** program => same hash. */
uint64_t dsched_trace_hash(void);
/* Every sim thread and what it waits on (for deadlock reports). */
void dsched_dump(FILE *f);

/* Additions beyond the brief. */
/* The calling thread's sim id, or -1 if it is not a sim thread. */
int dsched_thread_id(void);
/* Scheduling decisions taken since dsched_start. */
uint64_t dsched_decisions(void);
/* Quiet sections, for checkers that look at the state of the code under
** test without changing the run: between a dsched_quiet_begin that
** returned true and dsched_quiet_end, the calling sim thread's wrapped
** calls apply to the model as usual but draw no time step and no thread
** (no decision, no hash, time stands still), so the run goes on exactly
** as if the section had not happened. begin returns false (and nothing
** starts) when another sim thread holds a mutex or rwlock (a lock taken
** in the section could then have to wait), or outside a sim thread.
** Inside, a call that would wait (a lock the caller already holds, a cond
** wait, a sleep, a join), wake a waiter, create a thread or draw random
** bytes is a bug: dump and abort. Not nested. */
bool dsched_quiet_begin(void);
void dsched_quiet_end(void);

#endif
