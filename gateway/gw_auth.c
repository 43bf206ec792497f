/*
** gw_auth.c: the limit on failed logins per source address, and the count
** of sessions per user (pure: the caller passes the time and holds the
** lock).
**
** One token bucket per address, kept as the time it is full again
** (GCRA): a failure costs GW_AUTH_REFILL_MS of it, a bucket refills by
** itself as time passes, and an address is refused while less than one
** token is left. So GW_AUTH_FAILURES_BURST failures in a row are allowed,
** then one more every GW_AUTH_REFILL_MS.
**
** Invariants:
**   - memory is one fixed table of GW_AUTH_SOURCES_MAX entries, whatever
**     the number of addresses: an attacker with many addresses pushes out
**     the entries closest to forgiven, never grows the table.
**   - an entry whose bucket is full (full_at_ms <= now) is the same as no
**     entry: it is free for reuse.
**   - every operation is one pass over the table (bounded).
**   - gw_user_counts: one entry per user with n >= 1 logged-in sessions
**     (an entry reaching 0 is removed), so it never holds more names than
**     there are sessions (bounded by max_connections).
*/
#include <string.h>

#include "gateway/gw_int.h"

int gw_auth_limiter_init(gw_auth_limiter *l)
{
    l->sources = base_calloc(GW_AUTH_SOURCES_MAX, sizeof *l->sources);
    return l->sources != NULL ? GW_OK : GW_ERR_NOMEM;
}

void gw_auth_limiter_free(gw_auth_limiter *l)
{
    base_free(l->sources);
    l->sources = NULL;
}

/* Unknown addresses ("") share one entry. */
static const char *key_of(const char *addr)
{
    return addr != NULL && addr[0] != '\0' ? addr : "?";
}

static gw_auth_source *find(const gw_auth_limiter *l, const char *addr)
{
    addr = key_of(addr);
    for (int i = 0; i < GW_AUTH_SOURCES_MAX; i++)
        if (l->sources[i].addr[0] != '\0' && strcmp(l->sources[i].addr, addr) == 0)
            return &l->sources[i];
    return NULL;
}

bool gw_auth_limited(const gw_auth_limiter *l, const char *addr, int64_t now_ms)
{
    const gw_auth_source *e = find(l, addr);
    if (e == NULL)
        return false;
    return e->full_at_ms - now_ms > (int64_t)(GW_AUTH_FAILURES_BURST - 1) * GW_AUTH_REFILL_MS;
}

void gw_auth_failed(gw_auth_limiter *l, const char *addr, int64_t now_ms)
{
    gw_auth_source *e = find(l, addr);
    if (e == NULL) {
        /* a free slot, else the entry closest to forgiven */
        gw_auth_source *victim = &l->sources[0];
        for (int i = 0; i < GW_AUTH_SOURCES_MAX; i++) {
            gw_auth_source *s = &l->sources[i];
            if (s->addr[0] == '\0' || s->full_at_ms <= now_ms) {
                victim = s;
                break;
            }
            if (s->full_at_ms < victim->full_at_ms)
                victim = s;
        }
        e = victim;
        base_strlcpy(e->addr, key_of(addr), sizeof e->addr);
        e->full_at_ms = now_ms;
    }
    if (e->full_at_ms < now_ms)
        e->full_at_ms = now_ms;
    e->full_at_ms += GW_AUTH_REFILL_MS;
}

/* ---- sessions per user ------------------------------------------------------ */

static int user_find(const gw_user_counts *t, const char *user)
{
    for (int i = 0; i < t->len; i++)
        if (strcmp(t->v[i].user, user) == 0)
            return i;
    return -1;
}

int gw_user_acquire(gw_user_counts *t, const char *user, int limit)
{
    int i = user_find(t, user);
    if (i >= 0) {
        if (limit > 0 && t->v[i].n >= limit)
            return GW_ERR_LIMIT;
        t->v[i].n++;
        return GW_OK;
    }
    if (t->len == t->cap) {
        int cap = t->cap > 0 ? t->cap * 2 : 16;
        gw_user_count *v = base_realloc(t->v, (size_t)cap * sizeof *v);
        if (v == NULL)
            return GW_ERR_NOMEM;
        t->v = v;
        t->cap = cap;
    }
    char *name = base_strdup(user);
    if (name == NULL)
        return GW_ERR_NOMEM;
    t->v[t->len++] = (gw_user_count){.user = name, .n = 1};
    return GW_OK;
}

void gw_user_release(gw_user_counts *t, const char *user)
{
    int i = user_find(t, user);
    if (i < 0)
        return;
    if (--t->v[i].n > 0)
        return;
    base_free(t->v[i].user);
    t->v[i] = t->v[--t->len];
}

int gw_user_sessions(const gw_user_counts *t, const char *user)
{
    int i = user_find(t, user);
    return i >= 0 ? t->v[i].n : 0;
}

void gw_user_counts_free(gw_user_counts *t)
{
    for (int i = 0; i < t->len; i++)
        base_free(t->v[i].user);
    base_free(t->v);
    *t = (gw_user_counts){0};
}
