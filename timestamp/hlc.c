/*
** timestamp/hlc.c: the hybrid logical clock and the clock-offset bound
** (epsilon). A pure core: the physical clock is injected and every epsilon
** source is fed values by an adapter; nothing here reads the system clock,
** the kernel or the network. docs/clocks.md explains the rules.
**
** Invariants (all under c->mu):
**   - last is the largest timestamp this clock has returned or been told
**     about; every hlc_now() returns a timestamp > every earlier result.
**   - after hlc_update(c, r) succeeds (0 or REMOTE_AHEAD), last >= r, so
**     every later hlc_now() is > r.
**   - last.wall_ns < HLC_WALL_LIMIT_NS unless the physical clock itself
**     reported such a value (a bug: asserted when the space runs out).
**   - peer_count <= HLC_PEERS_MAX; peer ids in peers[0..peer_count) unique.
**   - the epsilon reported is in [0, max_offset_ns]; UNBOUNDED exactly when
**     no usable source yields a bound <= max_offset_ns (then epsilon =
**     max_offset_ns).
*/
#include <assert.h>
#include <errno.h>
#include <pthread.h>

#include "base/base.h"
#include "timestamp/timestamp.h"

typedef struct hlc__peer {
    uint64_t id;
    bool measured; /* false: tracked (live) but no valid measurement yet */
    int64_t offset_ns;
    int64_t uncertainty_ns;
    int64_t measured_at_ns; /* our physical clock when measured */
} hlc__peer;

struct hlc_clock {
    pthread_mutex_t mu;
    hlc_physical_clock physical;
    int64_t max_offset_ns;
    hlc_timestamp last;

    bool alone;
    bool has_ntp;
    hlc_ntp_reading ntp;
    int64_t ntp_at_ns; /* physical clock when the reading was fed */

    bool peers_overflowed; /* sticky: a peer could not be tracked */
    int peer_count;
    hlc__peer peers[HLC_PEERS_MAX];
};

/* ---- saturating helpers ---------------------------------------------------- */
static int64_t sat_add(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int64_t sat_sub(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int64_t sat_abs(int64_t a) { return a == INT64_MIN ? INT64_MAX : (a < 0 ? -a : a); }

/* ceil(age_ns * ppm / 1e6) for 0 <= age_ns <= HLC_MEASUREMENT_STALE_NS. */
static int64_t drift_allowance_ns(int64_t age_ns, int64_t ppm) {
    assert(age_ns >= 0 && age_ns <= HLC_MEASUREMENT_STALE_NS);
    return (age_ns * ppm + 999999) / 1000000;
}

static int64_t read_physical(hlc_clock *c) { return c->physical.now_ns(c->physical.ctx); }

/* ---- lifecycle ---------------------------------------------------------------- */
int hlc_clock_new(hlc_physical_clock physical, int64_t max_offset_ns, hlc_clock **out) {
    int rc = 0;
    hlc_clock *c = NULL;
    *out = NULL;
    if (physical.now_ns == NULL || max_offset_ns <= 0) {
        rc = -EINVAL;
        goto cleanup;
    }
    c = base_calloc(1, sizeof(*c));
    if (c == NULL) {
        rc = -ENOMEM;
        goto cleanup;
    }
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        rc = -ENOMEM;
        goto cleanup;
    }
    c->physical = physical;
    c->max_offset_ns = max_offset_ns;
    c->last = HLC_ZERO;
    *out = c;
    c = NULL;
cleanup:
    base_free(c);
    return rc;
}

void hlc_clock_free(hlc_clock *c) {
    if (c == NULL) return;
    pthread_mutex_destroy(&c->mu);
    base_free(c);
}

int64_t hlc_physical_now_ns(hlc_clock *c) { return read_physical(c); }

int64_t hlc_max_offset_ns(const hlc_clock *c) { return c->max_offset_ns; }

/* ---- the HLC ------------------------------------------------------------------ */

/* Caller holds c->mu. physical_ns: a reading taken under the same lock. */
static hlc_timestamp tick_locked(hlc_clock *c, int64_t physical_ns) {
    if (physical_ns > c->last.wall_ns) {
        c->last = (hlc_timestamp){physical_ns, 0};
    } else if (c->last.logical < INT32_MAX) {
        c->last.logical++;
    } else {
        /* Logical overflow: move wall 1 ns ahead of the physical clock.
        ** Reaching INT64_MAX needs a physical clock in year 2262: a bug. */
        assert(c->last.wall_ns < INT64_MAX);
        c->last = (hlc_timestamp){c->last.wall_ns + 1, 0};
    }
    return c->last;
}

hlc_timestamp hlc_now(hlc_clock *c) {
    pthread_mutex_lock(&c->mu);
    hlc_timestamp t = tick_locked(c, read_physical(c));
    pthread_mutex_unlock(&c->mu);
    return t;
}

int hlc_update(hlc_clock *c, hlc_timestamp remote) {
    if (remote.wall_ns < 0 || remote.logical < 0 || remote.wall_ns >= HLC_WALL_LIMIT_NS)
        return HLC_ERR_INVALID;
    int rc = HLC_OK;
    pthread_mutex_lock(&c->mu);
    int64_t physical_ns = read_physical(c);
    if (remote.wall_ns > sat_add(physical_ns, c->max_offset_ns)) rc = HLC_ERR_REMOTE_AHEAD;
    if (hlc_less(c->last, remote)) c->last = remote;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* ---- epsilon ------------------------------------------------------------------- */

/* Caller holds c->mu. The one place the combination rule lives. */
static void explain_locked(hlc_clock *c, int64_t physical_ns, hlc_epsilon_report *r) {
    *r = (hlc_epsilon_report){.status = HLC_EPSILON_UNBOUNDED,
                              .epsilon_ns = c->max_offset_ns,
                              .source = HLC_SOURCE_NONE,
                              .peers_bound_ns = -1,
                              .ntp_bound_ns = -1};

    /* (2) peers: usable only when every tracked peer has a fresh measurement. */
    int64_t peers_max = 0;
    r->peers_tracked = c->peer_count;
    for (int i = 0; i < c->peer_count; i++) {
        const hlc__peer *p = &c->peers[i];
        if (!p->measured) continue;
        int64_t age_ns = sat_sub(physical_ns, p->measured_at_ns);
        if (age_ns < 0 || age_ns > HLC_MEASUREMENT_STALE_NS) continue; /* stepped back or stale */
        r->peers_fresh++;
        int64_t bound = sat_add(sat_add(sat_abs(p->offset_ns), p->uncertainty_ns),
                                drift_allowance_ns(age_ns, HLC_MAX_DRIFT_PPM));
        peers_max = BASE_MAX(peers_max, bound);
    }
    if (!c->peers_overflowed && c->peer_count > 0 && r->peers_fresh == c->peer_count)
        r->peers_bound_ns = peers_max;

    /* (1) kernel NTP: synchronized, fresh; our error plus the cluster-wide
    ** allowance (max_offset / 2) for the other node's error. */
    if (c->has_ntp && c->ntp.synchronized && c->ntp.maxerror_ns >= 0) {
        int64_t age_ns = sat_sub(physical_ns, c->ntp_at_ns);
        if (age_ns >= 0 && age_ns <= HLC_MEASUREMENT_STALE_NS) {
            int64_t own = sat_add(c->ntp.maxerror_ns, drift_allowance_ns(age_ns, HLC_NTP_DRIFT_PPM));
            if (own <= c->max_offset_ns / 2) r->ntp_bound_ns = own + c->max_offset_ns / 2;
        }
    }

    /* Combination: alone wins; else peers when complete; else NTP. */
    int64_t best = -1;
    hlc_epsilon_source source = HLC_SOURCE_NONE;
    if (c->alone) {
        best = 0;
        source = HLC_SOURCE_ALONE;
    } else if (r->peers_bound_ns >= 0) {
        best = r->peers_bound_ns;
        source = HLC_SOURCE_PEERS;
    } else if (r->ntp_bound_ns >= 0) {
        best = r->ntp_bound_ns;
        source = HLC_SOURCE_NTP;
    }
    if (best >= 0 && best <= c->max_offset_ns) {
        r->status = HLC_EPSILON_OK;
        r->epsilon_ns = best;
        r->source = source;
    }
    assert(r->epsilon_ns >= 0 && r->epsilon_ns <= c->max_offset_ns);
}

void hlc_epsilon_explain(hlc_clock *c, hlc_epsilon_report *out) {
    pthread_mutex_lock(&c->mu);
    explain_locked(c, read_physical(c), out);
    pthread_mutex_unlock(&c->mu);
}

hlc_epsilon_status hlc_epsilon(hlc_clock *c, int64_t *epsilon_ns) {
    hlc_epsilon_report r;
    hlc_epsilon_explain(c, &r);
    if (epsilon_ns != NULL) *epsilon_ns = r.epsilon_ns;
    return r.status;
}

void hlc_epsilon_set_ntp(hlc_clock *c, const hlc_ntp_reading *reading) {
    pthread_mutex_lock(&c->mu);
    if (reading == NULL) {
        c->has_ntp = false;
    } else {
        c->has_ntp = true;
        c->ntp = *reading;
        c->ntp_at_ns = read_physical(c);
    }
    pthread_mutex_unlock(&c->mu);
}

void hlc_epsilon_set_alone(hlc_clock *c, bool alone) {
    pthread_mutex_lock(&c->mu);
    c->alone = alone;
    pthread_mutex_unlock(&c->mu);
}

/* Caller holds c->mu. Returns the peer's slot, adding it if needed; NULL
** when the table is full (the peer source becomes unusable, sticky). */
static hlc__peer *peer_slot_locked(hlc_clock *c, uint64_t peer_id) {
    for (int i = 0; i < c->peer_count; i++)
        if (c->peers[i].id == peer_id) return &c->peers[i];
    if (c->peer_count >= HLC_PEERS_MAX) {
        if (!c->peers_overflowed)
            BASE_ERROR("hlc", "more than %d peers: peer clock bound disabled", HLC_PEERS_MAX);
        c->peers_overflowed = true;
        return NULL;
    }
    hlc__peer *p = &c->peers[c->peer_count++];
    *p = (hlc__peer){.id = peer_id};
    return p;
}

void hlc_epsilon_peer_track(hlc_clock *c, uint64_t peer_id) {
    pthread_mutex_lock(&c->mu);
    (void)peer_slot_locked(c, peer_id);
    pthread_mutex_unlock(&c->mu);
}

void hlc_epsilon_peer_measurement(hlc_clock *c, uint64_t peer_id, int64_t offset_ns,
                                  int64_t uncertainty_ns, int64_t measured_at_ns) {
    pthread_mutex_lock(&c->mu);
    hlc__peer *p = peer_slot_locked(c, peer_id);
    if (p == NULL) goto cleanup;
    if (uncertainty_ns < 0 || measured_at_ns < 0 || measured_at_ns >= HLC_WALL_LIMIT_NS) {
        p->measured = false; /* a bad measurement: the peer is live but unmeasured */
        goto cleanup;
    }
    /* Keep the freshest: an older measurement arriving late is dropped. */
    if (p->measured && measured_at_ns < p->measured_at_ns) goto cleanup;
    p->measured = true;
    p->offset_ns = offset_ns;
    p->uncertainty_ns = uncertainty_ns;
    p->measured_at_ns = measured_at_ns;
cleanup:
    pthread_mutex_unlock(&c->mu);
}

void hlc_epsilon_peer_forget(hlc_clock *c, uint64_t peer_id) {
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->peer_count; i++) {
        if (c->peers[i].id == peer_id) {
            c->peers[i] = c->peers[--c->peer_count];
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* ---- intervals and commit wait ------------------------------------------------- */

hlc_interval hlc_now_with_interval(hlc_clock *c, hlc_timestamp *now_out) {
    hlc_epsilon_report r;
    pthread_mutex_lock(&c->mu);
    int64_t physical_ns = read_physical(c);
    hlc_timestamp n = tick_locked(c, physical_ns);
    explain_locked(c, physical_ns, &r);
    pthread_mutex_unlock(&c->mu);

    hlc_interval iv;
    int64_t earliest_wall = sat_sub(physical_ns, r.epsilon_ns);
    iv.earliest = earliest_wall < 0 ? HLC_ZERO : (hlc_timestamp){earliest_wall, 0};
    int64_t latest_wall = sat_add(n.wall_ns, r.epsilon_ns);
    iv.latest = (hlc_timestamp){latest_wall, INT32_MAX};
    assert(hlc_compare(iv.earliest, n) <= 0 && hlc_compare(n, iv.latest) <= 0);
    if (now_out != NULL) *now_out = n;
    return iv;
}

hlc_interval hlc_now_interval(hlc_clock *c) { return hlc_now_with_interval(c, NULL); }

int64_t hlc_commit_wait_ns(hlc_clock *c, hlc_timestamp ts) {
    hlc_epsilon_report r;
    pthread_mutex_lock(&c->mu);
    int64_t physical_ns = read_physical(c);
    explain_locked(c, physical_ns, &r);
    pthread_mutex_unlock(&c->mu);
    /* Done when physical - eps > ts.wall, i.e. physical >= ts.wall + eps + 1. */
    int64_t target = sat_add(sat_add(ts.wall_ns, r.epsilon_ns), 1);
    return target > physical_ns ? sat_sub(target, physical_ns) : 0;
}
