/*
** timestamp/: the hybrid logical clock (HLC) and the clock-offset bound.
**
** A timestamp is (wall time in ns since the Unix epoch, logical counter),
** ordered by wall then logical. Encoded in 12 bytes, big-endian, so memcmp
** order of encodings equals timestamp order (wall is >= 0 in practice; the
** sign bit is flipped so negatives would still sort).
**
** The clock takes an injected physical clock (hlc_physical_clock) so tests
** and the simulator drive time; it never reads the system clock itself.
**
** Critical invariants (see docs/clocks.md):
**   - hlc_now() is strictly increasing across calls on one hlc_clock, even if
**     the physical clock steps backwards.
**   - after hlc_update(c, r), every later hlc_now(c) is > r (Lamport rule).
**   - hlc_epsilon_ns() never exceeds max_offset_ns; when no source can keep
**     the bound under it, hlc_epsilon() reports HLC_EPSILON_UNBOUNDED.
** All functions are thread-safe (one mutex per clock).
*/
#ifndef MERIDIAN_TIMESTAMP_H
#define MERIDIAN_TIMESTAMP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct hlc_timestamp {
    int64_t wall_ns;
    int32_t logical;
} hlc_timestamp;

#define HLC_ENCODED_SIZE 12
#define HLC_DEFAULT_MAX_OFFSET_NS (250LL * 1000 * 1000)

static const hlc_timestamp HLC_ZERO = {0, 0};
static const hlc_timestamp HLC_MAX = {INT64_MAX, INT32_MAX};

int hlc_compare(hlc_timestamp a, hlc_timestamp b); /* <0, 0, >0 */
bool hlc_less(hlc_timestamp a, hlc_timestamp b);
bool hlc_is_zero(hlc_timestamp a);
hlc_timestamp hlc_next(hlc_timestamp a); /* smallest timestamp > a */
hlc_timestamp hlc_prev(hlc_timestamp a); /* largest timestamp < a (a > zero) */
hlc_timestamp hlc_add_ns(hlc_timestamp a, int64_t ns); /* wall + ns, logical 0 if ns > 0 */
void hlc_encode(hlc_timestamp ts, uint8_t out[HLC_ENCODED_SIZE]);
hlc_timestamp hlc_decode(const uint8_t in[HLC_ENCODED_SIZE]);
/* "1700000000.000000123,4" into buf; returns buf. */
char *hlc_format(hlc_timestamp ts, char *buf, int buf_size);

/* ---- physical clocks ------------------------------------------------------ */
typedef struct hlc_physical_clock {
    int64_t (*now_ns)(void *ctx); /* wall clock, ns since the epoch */
    void *ctx;
} hlc_physical_clock;

/* The real one: CLOCK_REALTIME plus a fixed test offset (0 in production;
** a test-only flag sets it to simulate skew). */
hlc_physical_clock hlc_system_clock(void);
void hlc_system_clock_set_offset_ns(int64_t offset_ns);

/* A manual clock for tests: time moves only when told. */
typedef struct hlc_manual_clock {
    int64_t now_ns;
} hlc_manual_clock;
hlc_physical_clock hlc_manual_clock_as_physical(hlc_manual_clock *m);

/* ---- the hybrid logical clock --------------------------------------------- */
typedef struct hlc_clock hlc_clock; /* opaque */

/* owner of *out: caller, hlc_clock_free. max_offset_ns: the configured
** --max-offset. Returns 0 or -ENOMEM. */
int hlc_clock_new(hlc_physical_clock physical, int64_t max_offset_ns, hlc_clock **out);
void hlc_clock_free(hlc_clock *c);

hlc_timestamp hlc_now(hlc_clock *c);
/* Lamport rule on a timestamp received from elsewhere. Returns 0, or
** HLC_ERR_REMOTE_AHEAD (the clock is still updated) when remote is more than
** max_offset ahead of our physical clock, which callers may log or refuse. */
int hlc_update(hlc_clock *c, hlc_timestamp remote);
int64_t hlc_physical_now_ns(hlc_clock *c);
int64_t hlc_max_offset_ns(const hlc_clock *c);

enum {
    HLC_OK = 0,
    HLC_ERR_REMOTE_AHEAD = -1001,
};

/* ---- the clock-offset bound (epsilon) -------------------------------------
** epsilon: the largest amount by which this node's clock may differ from any
** other live node's. Sources, each fed with values (the clock reads nothing):
**   - the kernel's NTP estimate (adjtimex), trusted only when synchronized;
**   - peer measurements (offset +- rtt/2 per peer, widened by a drift
**     allowance with the age of the measurement), filled by the cluster;
**   - alone: zero when this node is the only live node.
*/
typedef enum hlc_epsilon_status {
    HLC_EPSILON_OK = 0,        /* bound known and <= max_offset */
    HLC_EPSILON_UNBOUNDED = 1, /* no source keeps it under max_offset */
} hlc_epsilon_status;

typedef struct hlc_ntp_reading {
    bool synchronized; /* false when the kernel reports STA_UNSYNC */
    int64_t esterror_ns;
    int64_t maxerror_ns;
} hlc_ntp_reading;

/* Read the kernel's NTP state (adjtimex(2)); the adapter, not the clock. */
int hlc_ntp_read(hlc_ntp_reading *out);

void hlc_epsilon_set_ntp(hlc_clock *c, const hlc_ntp_reading *reading);
void hlc_epsilon_set_alone(hlc_clock *c, bool alone);
/* A peer measurement taken at physical time measured_at_ns: the peer's clock
** minus ours is offset_ns, within +- uncertainty_ns (rtt/2). */
void hlc_epsilon_peer_measurement(hlc_clock *c, uint64_t peer_id, int64_t offset_ns,
                                  int64_t uncertainty_ns, int64_t measured_at_ns);
void hlc_epsilon_peer_forget(hlc_clock *c, uint64_t peer_id);

/* Current bound; *epsilon_ns is max_offset when unbounded. */
hlc_epsilon_status hlc_epsilon(hlc_clock *c, int64_t *epsilon_ns);

/* [earliest, latest]: now -+ epsilon (max_offset when unbounded). */
typedef struct hlc_interval {
    hlc_timestamp earliest;
    hlc_timestamp latest;
} hlc_interval;
hlc_interval hlc_now_interval(hlc_clock *c);

#endif
