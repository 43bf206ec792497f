/*
** SQLite's memory, bounded per session and per node (issue 9; docs/security.md
** "Hostile input").
**
** SQLite allocates through the methods installed here (SQLITE_CONFIG_MALLOC,
** once per process, before SQLite's first use: sqlv__mem_init). Each block
** carries a header naming the budget (sqlv__mem) that was current on the
** allocating thread, if any; the session makes its budget current while one
** of its public entry points runs (sqlv__mem_enter / sqlv__mem_leave), so
** every sort, temp b-tree, value or prepared statement its statements make
** SQLite allocate counts against it, and its frees, on any thread, count
** back. An allocation that would take a budget past its limit fails:
** SQLite returns SQLITE_NOMEM, the statement fails with 53200 and the
** session goes on. The node-wide cap is SQLite's own hard heap limit
** (sqlite3_hard_heap_limit64), over every session's memory at once.
**
** Invariants:
**   - a block's header holds its size as SQLite asked for it and its owner
**     (NULL: counted by nobody); used_bytes of a budget is the sum of the
**     sizes of its live blocks, so it is >= 0.
**   - with limit_bytes > 0, an allocation or growth never takes used_bytes
**     past limit_bytes (shrinking and freeing always succeed).
**   - a budget outlives every block it owns: one still owning blocks when its
**     session closes is kept on the orphan list (reachable) for the life of
**     the process, never freed.
**   - installed is set only when SQLite took the methods; without them the
**     per-session limit is not enforced (logged once), the node cap is.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cluster_settings.h"
#include "sql_int.h"

#define MOD "sql"

struct sqlv__mem {
    _Atomic int64_t used_bytes;  /* live blocks' bytes */
    _Atomic int64_t limit_bytes; /* 0: none */
    _Atomic bool hit;            /* an allocation was refused since the last enter */
    struct sqlv__mem *next_orphan; /* [orphans_mu] */
};

/* 16 bytes keep the block as aligned as malloc's (SQLite needs 8). */
typedef struct mem_header {
    int64_t size_bytes;
    sqlv__mem *owner; /* NULL: not counted */
} mem_header;

static _Thread_local sqlv__mem *current; /* the budget charged on this thread */
static bool installed;                   /* SQLite uses the methods below */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t orphans_mu = PTHREAD_MUTEX_INITIALIZER;
static sqlv__mem *orphans; /* owner: this file, for the life of the process */

/* Count n more bytes against m; false (nothing counted) past its limit. */
static bool charge(sqlv__mem *m, int64_t n) {
    int64_t limit = atomic_load_explicit(&m->limit_bytes, memory_order_relaxed);
    int64_t now = atomic_fetch_add(&m->used_bytes, n) + n;
    if (limit > 0 && now > limit) {
        atomic_fetch_sub(&m->used_bytes, n);
        atomic_store(&m->hit, true);
        return false;
    }
    return true;
}

static void *mem_malloc(int n) {
    sqlv__mem *m = current;
    if (n < 0) return NULL;
    if (m != NULL && !charge(m, n)) return NULL;
    mem_header *h = malloc(sizeof(*h) + (size_t)n);
    if (h == NULL) {
        if (m != NULL) atomic_fetch_sub(&m->used_bytes, n);
        return NULL;
    }
    h->size_bytes = n;
    h->owner = m;
    return h + 1;
}

static void mem_free(void *p) {
    if (p == NULL) return;
    mem_header *h = (mem_header *)p - 1;
    if (h->owner != NULL) atomic_fetch_sub(&h->owner->used_bytes, h->size_bytes);
    free(h);
}

static void *mem_realloc(void *p, int n) {
    if (p == NULL) return mem_malloc(n);
    if (n < 0) return NULL;
    mem_header *h = (mem_header *)p - 1;
    sqlv__mem *m = h->owner;
    int64_t delta = (int64_t)n - h->size_bytes;
    if (m != NULL && delta > 0 && !charge(m, delta)) return NULL;
    mem_header *nh = realloc(h, sizeof(*nh) + (size_t)n);
    if (nh == NULL) {
        if (m != NULL && delta > 0) atomic_fetch_sub(&m->used_bytes, delta);
        return NULL;
    }
    if (m != NULL && delta < 0) atomic_fetch_sub(&m->used_bytes, -delta);
    nh->size_bytes = n;
    return nh + 1;
}

static int mem_size(void *p) { return p == NULL ? 0 : (int)((mem_header *)p - 1)->size_bytes; }
static int mem_roundup(int n) { return (n + 7) & ~7; }
static int mem_init(void *unused) {
    (void)unused;
    return SQLITE_OK;
}
static void mem_shutdown(void *unused) { (void)unused; }

static void init(void) {
    static const sqlite3_mem_methods methods = {mem_malloc, mem_free,    mem_realloc,  mem_size,
                                                mem_roundup, mem_init, mem_shutdown, NULL};
    installed = sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) == SQLITE_OK;
    if (!installed)
        BASE_WARN(MOD, "SQLite was initialized before the engine: the per-session memory limit "
                       "(session_memory_limit) is not enforced in this process");
    /* Not set by the server yet: a quarter of the machine's memory. */
    if (sqlite3_hard_heap_limit64(-1) == 0) sqlite3_hard_heap_limit64(sqlv_memory_default_node_limit());
}

void sqlv__mem_init(void) { pthread_once(&init_once, init); }

int64_t sqlv_memory_default_node_limit(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    int64_t ram = pages > 0 && page > 0 ? (int64_t)pages * page : 0;
    int64_t quarter = ram / 4;
    return quarter > SQLV_MEMORY_NODE_LIMIT_MIN_BYTES ? quarter : SQLV_MEMORY_NODE_LIMIT_MIN_BYTES;
}

int sqlv_memory_set_node_limit(int64_t bytes) {
    if (bytes < 0) return SQLV_ERR_INTERNAL;
    sqlv__mem_init(); /* the methods go in before SQLite starts */
    sqlite3_hard_heap_limit64(bytes);
    return SQLV_OK;
}

int64_t sqlv_memory_node_limit(void) { return sqlite3_hard_heap_limit64(-1); }

sqlv__mem *sqlv__mem_new(int64_t limit_bytes) {
    sqlv__mem *m = calloc(1, sizeof(*m)); /* owner: caller, sqlv__mem_release */
    if (m == NULL) return NULL;
    atomic_store(&m->limit_bytes, limit_bytes);
    return m;
}

void sqlv__mem_release(sqlv__mem *m) {
    if (m == NULL) return;
    if (atomic_load(&m->used_bytes) == 0) {
        free(m);
        return;
    }
    /* SQLite still holds blocks it charged (freed later, maybe elsewhere) */
    pthread_mutex_lock(&orphans_mu);
    m->next_orphan = orphans;
    orphans = m;
    pthread_mutex_unlock(&orphans_mu);
}

sqlv__mem *sqlv__mem_enter(sqlv__mem *m) {
    sqlv__mem *prev = current;
    if (m != NULL) atomic_store(&m->hit, false);
    current = m;
    return prev;
}

void sqlv__mem_leave(sqlv__mem *prev) { current = prev; }

void sqlv__mem_set_limit(sqlv__mem *m, int64_t limit_bytes) {
    if (m != NULL) atomic_store(&m->limit_bytes, limit_bytes);
}

int64_t sqlv__mem_used(const sqlv__mem *m) {
    return m == NULL ? 0 : atomic_load(&((sqlv__mem *)m)->used_bytes);
}

bool sqlv__mem_enforced(void) { return installed; }

void sqlv__mem_nomem_message(const sqlv_session *s, char *msg, size_t size) {
    sqlv__mem *m = s->mem;
    if (m != NULL && atomic_load(&m->hit)) {
        char limit[SQLV_SETTING_TEXT_MAX];
        sqlv_setting_format(SQLV_SETTING_BYTES, atomic_load(&m->limit_bytes), limit,
                            sizeof(limit));
        snprintf(msg, size, "out of memory: the session's memory limit of %s is reached "
                            "(session_memory_limit)", limit);
        return;
    }
    base_strlcpy(msg, "out of memory", size);
}
