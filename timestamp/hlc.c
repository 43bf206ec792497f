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
**   - peer rule (docs/clocks.md, section 3): every tracked peer contributes
**     to epsilon -- its measured bound when fresh and within max_offset
**     ("good"), max_offset otherwise -- so a peer is never dropped from the
**     max; the peer source is usable only when self + good peers are a
**     strict majority of self + tracked peers and no fresh peer beyond
**     max_offset says it has such a majority itself.
*/
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "base/base.h"
#include "timestamp/timestamp.h"

typedef struct hlc__peer {
    uint64_t id;
    bool measured; /* false: tracked (live) but no valid measurement yet */
    int64_t offset_ns;
    int64_t uncertainty_ns;
    int64_t measured_at_ns; /* our physical clock when measured */
    bool has_majority;      /* the peer's own report with that measurement */
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
                              .ntp_bound_ns = -1,
                              .max_offset_ns = c->max_offset_ns,
                              .worst_bound_ns = -1,
                              .far_bound_ns = -1};

    /* (2) peers: each tracked peer contributes its bound when good, else
    ** max_offset (it may still serve, within the configured bound). */
    int64_t peers_max = 0;
    r->peers_tracked = c->peer_count;
    for (int i = 0; i < c->peer_count; i++) {
        const hlc__peer *p = &c->peers[i];
        int64_t age_ns = p->measured ? sat_sub(physical_ns, p->measured_at_ns) : -1;
        if (age_ns < 0 || age_ns > HLC_MEASUREMENT_STALE_NS) { /* unmeasured, stepped back, stale */
            r->peers_unknown++;
            peers_max = c->max_offset_ns;
            continue;
        }
        r->peers_fresh++;
        int64_t bound = sat_add(sat_add(sat_abs(p->offset_ns), p->uncertainty_ns),
                                drift_allowance_ns(age_ns, HLC_MAX_DRIFT_PPM));
        if (bound > r->worst_bound_ns) {
            r->worst_bound_ns = bound;
            r->worst_peer_id = p->id;
        }
        if (bound <= c->max_offset_ns) {
            r->peers_good++;
            peers_max = BASE_MAX(peers_max, bound);
            continue;
        }
        r->peers_far++;
        peers_max = c->max_offset_ns;
        /* Beyond the bound and in a majority of its own: one of us is wrong
        ** and we cannot tell which, so neither may count on the other. */
        if (p->has_majority && bound > r->far_bound_ns) {
            r->far_majority = true;
            r->far_bound_ns = bound;
            r->far_peer_id = p->id;
        }
    }
    /* strict majority of the nodes we know (self included) */
    r->majority = c->alone || 2 * (1 + r->peers_good) > 1 + c->peer_count;
    r->peers_overflowed = c->peers_overflowed;
    if (!c->peers_overflowed && c->peer_count > 0 && r->majority && !r->far_majority)
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

    /* Combination: alone wins; else peers when usable; else NTP, unless a
    ** peer's measured offset shows the cluster's bound is violated. */
    int64_t best = -1;
    hlc_epsilon_source source = HLC_SOURCE_NONE;
    if (c->alone) {
        best = 0;
        source = HLC_SOURCE_ALONE;
    } else if (r->peers_bound_ns >= 0) {
        best = r->peers_bound_ns;
        source = HLC_SOURCE_PEERS;
    } else if (r->ntp_bound_ns >= 0 && !r->far_majority) {
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

void hlc_epsilon_peer_sample(hlc_clock *c, uint64_t peer_id, const hlc_peer_sample *m) {
    pthread_mutex_lock(&c->mu);
    hlc__peer *p = peer_slot_locked(c, peer_id);
    if (p == NULL) goto cleanup;
    if (m->uncertainty_ns < 0 || m->measured_at_ns < 0 ||
        m->measured_at_ns >= HLC_WALL_LIMIT_NS) {
        p->measured = false; /* a bad measurement: the peer is live but unmeasured */
        goto cleanup;
    }
    /* Keep the freshest: an older measurement arriving late is dropped. */
    if (p->measured && m->measured_at_ns < p->measured_at_ns) goto cleanup;
    p->measured = true;
    p->offset_ns = m->offset_ns;
    p->uncertainty_ns = m->uncertainty_ns;
    p->measured_at_ns = m->measured_at_ns;
    p->has_majority = m->peer_has_majority;
cleanup:
    pthread_mutex_unlock(&c->mu);
}

void hlc_epsilon_peer_measurement(hlc_clock *c, uint64_t peer_id, int64_t offset_ns,
                                  int64_t uncertainty_ns, int64_t measured_at_ns) {
    /* No report from the peer: assume the worst, that it serves. */
    hlc_peer_sample m = {.offset_ns = offset_ns, .uncertainty_ns = uncertainty_ns,
                         .measured_at_ns = measured_at_ns, .peer_has_majority = true};
    hlc_epsilon_peer_sample(c, peer_id, &m);
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

/* ---- text for logs and status ---------------------------------------------- */

char *hlc_format_duration(int64_t ns, char *buf, int buf_size) {
    if (buf_size <= 0) return buf;
    const char *sign = ns < 0 ? "-" : "";
    int64_t a = sat_abs(ns);
    if (a < 1000)
        snprintf(buf, (size_t)buf_size, "%s%lldns", sign, (long long)a);
    else if (a < 1000 * 1000)
        snprintf(buf, (size_t)buf_size, "%s%lldus", sign, (long long)(a / 1000));
    else if (a < 1000LL * 1000 * 1000)
        snprintf(buf, (size_t)buf_size, "%s%.2fms", sign, (double)a / 1e6);
    else
        snprintf(buf, (size_t)buf_size, "%s%.3fs", sign, (double)a / 1e9);
    return buf;
}

char *hlc_epsilon_describe(const hlc_epsilon_report *r, char *buf, int buf_size) {
    char eps[32], max[32], worst[32];
    if (buf_size <= 0) return buf;
    hlc_format_duration(r->epsilon_ns, eps, sizeof eps);
    hlc_format_duration(r->max_offset_ns, max, sizeof max);
    hlc_format_duration(r->far_majority ? r->far_bound_ns : r->worst_bound_ns, worst, sizeof worst);
    size_t size = (size_t)buf_size;
    int others = r->peers_tracked - r->peers_good;
    if (r->status == HLC_EPSILON_OK) {
        switch (r->source) {
        case HLC_SOURCE_ALONE:
            snprintf(buf, size, "epsilon 0 (the only node)");
            break;
        case HLC_SOURCE_NTP:
            snprintf(buf, size, "epsilon %s from the kernel's NTP bound", eps);
            break;
        default:
            snprintf(buf, size, "epsilon %s from peer measurements (%d of %d peer(s) within "
                     "--max-offset %s%s)", eps, r->peers_good, r->peers_tracked, max,
                     others > 0 ? "; the others count as the max offset" : "");
            break;
        }
        return buf;
    }
    if (r->peers_overflowed)
        snprintf(buf, size, "more than %d peers: the peer clock bound is disabled", HLC_PEERS_MAX);
    else if (r->far_majority)
        snprintf(buf, size, "the clock of node %llu differs from this node's by up to %s, "
                 "beyond --max-offset %s, and node %llu is within the bound of a majority",
                 (unsigned long long)r->far_peer_id, worst, max,
                 (unsigned long long)r->far_peer_id);
    else if (r->peers_tracked == 0)
        snprintf(buf, size, "no peer measured and no synchronized NTP bound");
    else if (r->peers_far > 0)
        snprintf(buf, size, "only %d of %d peer(s) measured within --max-offset %s, a majority "
                 "of the %d nodes is needed (node %llu: up to %s away)", r->peers_good,
                 r->peers_tracked, max, r->peers_tracked + 1,
                 (unsigned long long)r->worst_peer_id, worst);
    else
        snprintf(buf, size, "only %d of %d peer(s) measured within --max-offset %s, a majority "
                 "of the %d nodes is needed (%d unmeasured or silent for %llds)", r->peers_good,
                 r->peers_tracked, max, r->peers_tracked + 1, r->peers_unknown,
                 (long long)(HLC_MEASUREMENT_STALE_NS / 1000000000LL));
    return buf;
}
