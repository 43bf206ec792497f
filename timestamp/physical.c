/*
** timestamp/physical.c: the adapters -- the real physical clock
** (CLOCK_REALTIME plus a process-wide test offset), the manual clock for
** tests, and the kernel NTP reader (adjtimex(2)). The HLC core (hlc.c)
** never calls these itself; whoever builds a clock injects one.
**
** Invariants:
**   - the system-clock offset is 0 unless a test-only flag set it.
**   - hlc_ntp_read reports synchronized only when the kernel's status lacks
**     STA_UNSYNC and adjtimex did not return TIME_ERROR.
*/
#include <errno.h>
#include <stdatomic.h>
#include <sys/timex.h>

#include "base/base.h"
#include "timestamp/timestamp.h"

static _Atomic int64_t system_offset_ns = 0;

static int64_t system_now_ns(void *ctx) {
    (void)ctx;
    return base_realtime_ns() + atomic_load_explicit(&system_offset_ns, memory_order_relaxed);
}

hlc_physical_clock hlc_system_clock(void) { return (hlc_physical_clock){system_now_ns, NULL}; }

void hlc_system_clock_set_offset_ns(int64_t offset_ns) {
    atomic_store_explicit(&system_offset_ns, offset_ns, memory_order_relaxed);
}

/* Atomic load: a test may move the manual clock while other threads read it. */
static int64_t manual_now_ns(void *ctx) {
    hlc_manual_clock *m = ctx;
    return __atomic_load_n(&m->now_ns, __ATOMIC_RELAXED);
}

hlc_physical_clock hlc_manual_clock_as_physical(hlc_manual_clock *m) {
    return (hlc_physical_clock){manual_now_ns, m};
}

int hlc_ntp_read(hlc_ntp_reading *out) {
    struct timex tx = {0}; /* modes = 0: read only */
    int state = adjtimex(&tx);
    if (state == -1) return -errno;
    /* esterror and maxerror are in microseconds (struct timex, adjtimex(2)). */
    out->synchronized = (tx.status & STA_UNSYNC) == 0 && state != TIME_ERROR;
    out->esterror_ns = (int64_t)tx.esterror * 1000;
    out->maxerror_ns = (int64_t)tx.maxerror * 1000;
    return 0;
}
