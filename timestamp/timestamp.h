/*
** timestamp/: the hybrid logical clock (HLC) and the clock-offset bound.
**
** A timestamp is (wall time in ns since the Unix epoch, logical counter),
** ordered by wall then logical. Encoded in 12 bytes, big-endian, so memcmp
** order of encodings equals timestamp order (wall is >= 0 in practice; the
** sign bit is flipped so negatives would still sort).
**
** Encoding (12 bytes): bytes 0..7 = (uint64)wall_ns ^ 2^63, big-endian;
** bytes 8..11 = (uint32)logical ^ 2^31, big-endian. Flipping both sign bits
** makes memcmp order equal hlc_compare order for every int64/int32 value:
** HLC_ZERO encodes as 80 00 00 00 00 00 00 00 80 00 00 00 and HLC_MAX as
** twelve 0xFF bytes.
**
** Valid timestamps lie in [HLC_ZERO, HLC_MAX]: hlc_next saturates at
** HLC_MAX, hlc_prev at HLC_ZERO, hlc_add_ns at both ends.
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
hlc_timestamp hlc_next(hlc_timestamp a); /* smallest timestamp > a; HLC_MAX stays HLC_MAX */
hlc_timestamp hlc_prev(hlc_timestamp a); /* largest timestamp < a (a > zero); <= zero gives HLC_ZERO */
/* wall + ns (saturating at 0 and INT64_MAX); logical 0 if ns > 0, else kept. */
hlc_timestamp hlc_add_ns(hlc_timestamp a, int64_t ns);
void hlc_encode(hlc_timestamp ts, uint8_t out[HLC_ENCODED_SIZE]);
hlc_timestamp hlc_decode(const uint8_t in[HLC_ENCODED_SIZE]);
/* "1700000000.000000123,4" into buf (truncated to buf_size-1 chars, always
** NUL-terminated when buf_size > 0); returns buf. HLC_FORMAT_SIZE always fits. */
#define HLC_FORMAT_SIZE 48
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
** --max-offset. Returns 0, -ENOMEM, or -EINVAL (max_offset_ns <= 0 or
** physical.now_ns NULL). A new clock is "not alone, no sources": its
** epsilon is UNBOUNDED until a source is fed (a single node started alone
** calls hlc_epsilon_set_alone(c, true)). */
int hlc_clock_new(hlc_physical_clock physical, int64_t max_offset_ns, hlc_clock **out);
void hlc_clock_free(hlc_clock *c);

hlc_timestamp hlc_now(hlc_clock *c);
/* Lamport rule on a timestamp received from elsewhere. Returns 0, or
** HLC_ERR_REMOTE_AHEAD (the clock is still updated) when remote is more than
** max_offset ahead of our physical clock, which callers may log or refuse.
** HLC_ERR_INVALID (the clock is NOT updated) when remote is not a usable
** timestamp: negative wall or logical, or wall >= HLC_WALL_LIMIT_NS (so far
** in the future that accepting it could exhaust the timestamp space). */
int hlc_update(hlc_clock *c, hlc_timestamp remote);
/* Year ~2262 minus a margin; no physical clock legitimately reaches it. */
#define HLC_WALL_LIMIT_NS (INT64_MAX - (1LL << 40))
int64_t hlc_physical_now_ns(hlc_clock *c);
int64_t hlc_max_offset_ns(const hlc_clock *c);

enum {
    HLC_OK = 0,
    HLC_ERR_REMOTE_AHEAD = -1001,
    HLC_ERR_INVALID = -1002,
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

/* Feed a reading (copied; NULL forgets it). Its age counts from this call,
** on the clock's physical clock; refresh it every few seconds. Used only when
** synchronized, as maxerror + max_offset/2 (docs/clocks.md, section 3). */
void hlc_epsilon_set_ntp(hlc_clock *c, const hlc_ntp_reading *reading);
void hlc_epsilon_set_alone(hlc_clock *c, bool alone);
/* A peer measurement taken at physical time measured_at_ns: the peer's clock
** minus ours is offset_ns, within +- uncertainty_ns (rtt/2). Keeps the
** freshest per peer; bound = |offset| + uncertainty + 200 ppm * age. A peer
** whose bound is within max_offset is "good"; every other tracked peer
** (stale: > HLC_MEASUREMENT_STALE_NS, unmeasured, or beyond max_offset)
** counts as max_offset in epsilon and against the majority the peer source
** needs (docs/clocks.md, section 3). Same as hlc_epsilon_peer_sample with
** peer_has_majority true (the cautious assumption). */
void hlc_epsilon_peer_measurement(hlc_clock *c, uint64_t peer_id, int64_t offset_ns,
                                  int64_t uncertainty_ns, int64_t measured_at_ns);
void hlc_epsilon_peer_forget(hlc_clock *c, uint64_t peer_id);

/* Current bound; *epsilon_ns is max_offset when unbounded. */
hlc_epsilon_status hlc_epsilon(hlc_clock *c, int64_t *epsilon_ns);

/* [earliest, latest]: now -+ epsilon (max_offset when unbounded).
** Precisely, with p the physical reading taken by the hlc_now() inside and
** n its result: earliest = (p - eps, 0) -- from the PHYSICAL clock, never
** from an HLC value pushed ahead by hlc_update -- and latest =
** (n.wall + eps, INT32_MAX), the largest timestamp with that wall, so
** "ts <= latest" covers every logical value another node may use.
** earliest <= n <= latest. Ticks the clock like hlc_now(). */
typedef struct hlc_interval {
    hlc_timestamp earliest;
    hlc_timestamp latest;
} hlc_interval;
hlc_interval hlc_now_interval(hlc_clock *c);

/* ---- additions beyond the first contract ---------------------------------- */

/* Limits and constants of the epsilon rules (docs/clocks.md explains them).
** Drift: bound on the RELATIVE rate error between two nodes' clocks. */
#define HLC_MAX_DRIFT_PPM 200
/* Peer measurements and NTP readings older than this are not trusted. */
#define HLC_MEASUREMENT_STALE_NS (60LL * 1000 * 1000 * 1000)
/* The kernel widens maxerror by 500 ppm per second between NTP updates
** (MAXFREQ); a fed NTP reading is widened the same way with its age. */
#define HLC_NTP_DRIFT_PPM 500
/* Peers tracked per clock; beyond it the peer source is unusable (logged). */
#define HLC_PEERS_MAX 256

/* hlc_now_interval plus the now() value it was built around. */
hlc_interval hlc_now_with_interval(hlc_clock *c, hlc_timestamp *now_out /* OUT, may be NULL */);

/* Commit wait: ns still to wait until earliest > ts, i.e. until
** physical - epsilon > ts.wall_ns; 0 when that already holds. Reads the
** physical clock and epsilon; does not tick the HLC. While epsilon is
** UNBOUNDED the wait uses max_offset (callers should refuse to serve).
** Epsilon grows with the age of its measurements while the caller waits,
** so wait, then call again until it returns 0. */
int64_t hlc_commit_wait_ns(hlc_clock *c, hlc_timestamp ts);

/* A live peer with no measurement yet: until it is measured (or forgotten)
** it counts as max_offset in epsilon and is not part of the majority. */
void hlc_epsilon_peer_track(hlc_clock *c, uint64_t peer_id);

/* One answer to a clock ping (server/ measures every peer about once a
** second): what hlc_epsilon_peer_measurement takes, plus the peer's own
** report of whether its good peers and itself form a majority
** (hlc_epsilon_report.majority). A peer beyond max_offset that reports a
** majority makes this node UNBOUNDED (one of the two is wrong and neither
** can tell which); one that reports none counts as max_offset (it stops
** serving itself, and can only resume within the bound of us). */
typedef struct hlc_peer_sample {
    int64_t offset_ns;      /* the peer's physical clock minus ours */
    int64_t uncertainty_ns; /* >= 0: half the round trip */
    int64_t measured_at_ns; /* our physical clock when the ping was sent */
    bool peer_has_majority;
} hlc_peer_sample;
void hlc_epsilon_peer_sample(hlc_clock *c, uint64_t peer_id, const hlc_peer_sample *m);

typedef enum hlc_epsilon_source {
    HLC_SOURCE_NONE = 0,  /* unbounded: epsilon = max_offset */
    HLC_SOURCE_ALONE = 1, /* only live node: epsilon = 0 */
    HLC_SOURCE_PEERS = 2, /* a majority of the nodes measured within max_offset */
    HLC_SOURCE_NTP = 3,   /* kernel NTP, synchronized and fresh */
} hlc_epsilon_source;

typedef struct hlc_epsilon_report {
    hlc_epsilon_status status;
    int64_t epsilon_ns;        /* what hlc_epsilon returns */
    hlc_epsilon_source source; /* which rule produced it */
    int64_t peers_bound_ns;    /* -1 when the peer source is unusable */
    int64_t ntp_bound_ns;      /* -1 when the NTP source is unusable */
    int peers_tracked;
    int peers_fresh;           /* measured within HLC_MEASUREMENT_STALE_NS */
    int peers_good;            /* fresh, bound <= max_offset */
    int peers_far;             /* fresh, bound > max_offset */
    int peers_unknown;         /* tracked, unmeasured or stale */
    bool majority;             /* alone, or 1 + good > (1 + tracked) / 2 */
    bool peers_overflowed;     /* more than HLC_PEERS_MAX peers were seen */
    bool far_majority;         /* a far peer reported a majority: UNBOUNDED */
    uint64_t far_peer_id;      /* valid when far_majority */
    int64_t far_bound_ns;      /* its bound; -1 when none */
    uint64_t worst_peer_id;    /* the fresh peer with the largest bound */
    int64_t worst_bound_ns;    /* -1 when no peer is fresh */
    int64_t max_offset_ns;     /* the clock's --max-offset */
} hlc_epsilon_report;
/* Same computation as hlc_epsilon, with the details (for logs, status). */
void hlc_epsilon_explain(hlc_clock *c, hlc_epsilon_report *out /* OUT */);
/* One line for logs and errors: the bound and its source, or why there is
** none ("only 0 of 2 peer(s) measured within --max-offset 250.00ms, ...").
** Truncated to buf_size - 1 chars; returns buf. HLC_DESCRIBE_SIZE fits. */
#define HLC_DESCRIBE_SIZE 256
char *hlc_epsilon_describe(const hlc_epsilon_report *r, char *buf, int buf_size);
/* "37us", "1.20ms", "1.000s" (ns below 1 us as "512ns"); returns buf. */
char *hlc_format_duration(int64_t ns, char *buf, int buf_size);

#endif
