/*
** tests/range/sim_util.h: helpers shared by the range simulations
** (test_range_sim.c, test_range_sim_multi.c): a temporary directory per
** node's shared Raft log, and the power-failure model of that log.
**
** Power failure: after every sync of a node's log (and after its recovery
** or a purge, which leave everything durable) the simulation records each
** log file's size (sim_log_record); a power failure of the closed log cuts
** every file back to its recorded size and deletes the files created since
** (sim_log_lose_unsynced). So a write the node acknowledged or applied
** before it was durable shows up as a lost acknowledged write.
**
** Static functions in a header: each simulation is one translation unit
** and includes it once, after <cmocka.h> (and with _GNU_SOURCE defined
** before any include, for nftw and mkdtemp). Failures of the host (a directory that cannot be
** made or read) are cmocka assertions, never a verdict on the code.
*/
#ifndef MERIDIAN_TESTS_RANGE_SIM_UTIL_H
#define MERIDIAN_TESTS_RANGE_SIM_UTIL_H

#include <dirent.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raft/raft.h"

#define SIM_FILES_MAX 512 /* log segment files remembered per node */

/* A node's log directory and what of it was durable at its last sync. */
typedef struct sim_log_files {
    char dir[256]; /* mkdtemp; removed with sim_remove_dir */
    char name[SIM_FILES_MAX][32];
    long long size[SIM_FILES_MAX];
    size_t n;
} sim_log_files;

/* A fresh directory (tmpfs when there is one: fsync is then nearly free
** and hundreds of seeds stay fast). */
static inline void sim_make_log_dir(char *dir, size_t size)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(dir, size, "%s/meridian-rsim-XXXXXX", base != NULL ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
}

static inline int sim_rm_entry(const char *path, const struct stat *sb, int flag,
                               struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void sim_remove_dir(const char *dir)
{
    if (dir[0] != '\0')
        nftw(dir, sim_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Remember the log files and their sizes: all of it is durable now (the
** node just synced, recovered or purged: the simulations are
** single-threaded). */
static inline void sim_log_record(sim_log_files *f)
{
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    struct dirent *de;
    f->n = 0;
    while ((de = readdir(d)) != NULL) {
        char path[512];
        struct stat st;
        if (strstr(de->d_name, ".rlog") == NULL)
            continue;
        snprintf(path, sizeof(path), "%s/%s", f->dir, de->d_name);
        assert_int_equal(stat(path, &st), 0);
        assert_true(f->n < SIM_FILES_MAX && strlen(de->d_name) < 32);
        memcpy(f->name[f->n], de->d_name, strlen(de->d_name) + 1);
        f->size[f->n++] = (long long)st.st_size;
    }
    closedir(d);
}

/* Files deleted since the record (a purge): the record is stale. */
static inline bool sim_log_stale(const sim_log_files *f)
{
    for (size_t i = 0; i < f->n; i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", f->dir, f->name[i]);
        if (access(path, F_OK) != 0)
            return true;
    }
    return false;
}

/* Files deleted since the record (a purge that did not sync): they go
** from the record, the other files keep their recorded sizes. */
static inline void sim_log_forget_deleted(sim_log_files *f)
{
    size_t kept = 0;
    for (size_t i = 0; i < f->n; i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", f->dir, f->name[i]);
        if (access(path, F_OK) != 0)
            continue;
        if (kept != i) {
            memcpy(f->name[kept], f->name[i], sizeof(f->name[i]));
            f->size[kept] = f->size[i];
        }
        kept++;
    }
    f->n = kept;
}

/* Power failure of a closed log: cut what was written after the record.
** Returns the bytes lost. */
static inline uint64_t sim_log_lose_unsynced(const sim_log_files *f)
{
    DIR *d = opendir(f->dir);
    uint64_t lost = 0;
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char path[512];
        struct stat st;
        if (strstr(de->d_name, ".rlog") == NULL)
            continue;
        snprintf(path, sizeof(path), "%s/%s", f->dir, de->d_name);
        assert_int_equal(stat(path, &st), 0);
        long long keep = -1;
        for (size_t i = 0; i < f->n; i++)
            if (strcmp(f->name[i], de->d_name) == 0)
                keep = f->size[i];
        if (keep < 0) {
            lost += (uint64_t)st.st_size;
            assert_int_equal(unlink(path), 0);
        } else if ((long long)st.st_size > keep) {
            lost += (uint64_t)(st.st_size - keep);
            assert_int_equal(truncate(path, (off_t)keep), 0);
        }
    }
    closedir(d);
    return lost;
}

/* Open (or recover) the shared log in dir. owner: caller, raft_log_close. */
static inline raft_log *sim_open_log(const char *dir, size_t segment_bytes)
{
    raft_log_options lo = {.dir = dir, .segment_bytes_max = segment_bytes};
    raft_log *log = NULL;
    char err[256] = "";
    int rc = raft_log_open(&lo, &log, err, sizeof(err));
    if (rc != RAFT_LOG_OK)
        fprintf(stderr, "raft_log_open %s: %s %s\n", dir, raft_log_strerror(rc), err);
    assert_int_equal(rc, RAFT_LOG_OK);
    return log;
}

#endif
