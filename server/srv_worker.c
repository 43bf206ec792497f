/*
** server/srv_worker.c: the thread of a background queue (split, merge,
** rebalance): made once, told to stop once, joined by its stopper.
**
** Invariants: stop only goes from false to true, under mu, with a
** broadcast of cond (CLOCK_MONOTONIC), so a thread waiting in
** srv__worker_wait wakes at once; started is read and written only by the
** starter and the stopper (one thread: the node's), never by the worker.
*/
#include "server/srv_int.h"

#include <string.h>
#include <time.h>

void srv__worker_init(srv__worker *w) {
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &a);
    pthread_condattr_destroy(&a);
}

void srv__worker_destroy(srv__worker *w) {
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
}

int srv__worker_start(srv__worker *w, void *(*main_fn)(void *), void *arg) {
    if (w->started) return SRV_OK;
    if (pthread_create(&w->thread, NULL, main_fn, arg) != 0) {
        w->start_failed = true;
        return SRV_ERR_NOMEM;
    }
    w->started = true;
    return SRV_OK;
}

void srv__worker_stop(srv__worker *w) {
    if (!w->started) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->started = false;
}

bool srv__worker_stopping(srv__worker *w) {
    pthread_mutex_lock(&w->mu);
    bool stop = w->stop;
    pthread_mutex_unlock(&w->mu);
    return stop;
}

void srv__worker_wait(srv__worker *w, int64_t until_ns) {
    struct timespec ts = {.tv_sec = until_ns / 1000000000, .tv_nsec = until_ns % 1000000000};
    pthread_mutex_lock(&w->mu);
    if (!w->stop && base_monotonic_ns() < until_ns) pthread_cond_timedwait(&w->cond, &w->mu, &ts);
    pthread_mutex_unlock(&w->mu);
}
