/*
** tests/sql/slt_runner.c: run sqllogictest-style files (tests/sql/slt/NN_name.slt)
** against Meridian or PostgreSQL through libpq.
**
** Usage:
**   slt_runner --url CONNINFO [--engine meridian|postgres] FILE...
**   slt_runner --meridian FILE...   start a fresh node ($MERIDIAN_BIN), run
**   slt_runner --postgres FILE...   start a throwaway PostgreSQL 15, run;
**                                   exit 77 (skipped) when it cannot start
** Exit status: 0 all records passed, 1 a record failed, 2 usage/setup error,
** 77 PostgreSQL not available (--postgres only).
**
** File format (one record per block; blank lines separate records):
**   # comment                    a line starting with '#' outside a record
**   onlyif ENGINE / skipif ENGINE
**                                optional lines before a record: run it only
**                                on (or not on) ENGINE, "meridian" or
**                                "postgres"; a record that is not plain
**                                PostgreSQL is `onlyif meridian` with a
**                                comment naming the difference
**   statement ok                 the SQL (the following lines, up to a blank
**   SQL...                       line) must succeed
**   statement error SQLSTATE     the SQL must fail with that SQLSTATE
**   SQL...
**   query [rowsort]              the SQL's rows must equal the lines after
**   SQL...                       "----" (up to a blank line): columns joined
**   ----                         by '|', NULL as "NULL", an empty string as
**   1|x                          "(empty)"; rowsort sorts both sides first,
**                                else the order must match. A COPY ... TO
**                                STDOUT is a query whose rows are its lines.
** Every file runs on a new connection (fresh session settings); tables are
** not dropped between files, so each file uses its own table names.
**
** Invariants: a failing record is reported (file:line, got/want) and the run
** goes on; a PostgreSQL this runner started is stopped on every exit path
** (normal exit, error exit and SIGINT/SIGTERM/SIGHUP).
*/
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "base/base.h"
#include "tests/lib/mtest_node.h"

#define SLT_LINE_MAX 4096
#define SLT_RECORD_LINES_MAX 512
#define SLT_ROWS_MAX 10000
#define SLT_EXIT_SKIP 77
#define SLT_PG_BIN "/usr/lib/postgresql/15/bin"
#define SLT_PG_TIMEOUT_MS (60 * 1000)
#define SLT_NOBODY_ID "65534"

typedef enum { SLT_STATEMENT_OK, SLT_STATEMENT_ERROR, SLT_QUERY } slt_kind;

typedef struct slt_stats {
    int passed;
    int failed;
    int skipped;
} slt_stats;

/* ---- a growable list of strings (owner: the list; slt_lines_free) ---- */
typedef struct slt_lines {
    char **v;
    int n;
    int cap;
} slt_lines;

static void slt_lines_push(slt_lines *l, const char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = base_realloc(l->v, (size_t)l->cap * sizeof *l->v);
    }
    l->v[l->n++] = base_strdup(s);
}

static void slt_lines_free(slt_lines *l) {
    for (int i = 0; i < l->n; i++) base_free(l->v[i]);
    base_free(l->v);
    *l = (slt_lines){0};
}

static int slt_cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- running one record ---- */

/* The rows of a result or of a COPY TO STDOUT, one string per row.
** Returns 0, or -1 with *err set (owner: caller, base_free). */
static int slt_collect(PGconn *c, PGresult *r, slt_lines *rows, char **err) {
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK) {
        for (int i = 0; i < PQntuples(r) && i < SLT_ROWS_MAX; i++) {
            base_buf b = {0};
            for (int j = 0; j < PQnfields(r); j++) {
                if (j > 0) base_buf_append_byte(&b, '|');
                const char *v = PQgetisnull(r, i, j) ? "NULL" : PQgetvalue(r, i, j);
                if (*v == 0) v = "(empty)";
                base_buf_append(&b, v, strlen(v));
            }
            base_buf_append_byte(&b, 0);
            slt_lines_push(rows, (const char *)b.data);
            base_buf_free(&b);
        }
        return 0;
    }
    if (st == PGRES_COPY_OUT) {
        /* Whole lines arrive one per PQgetCopyData (libpq's contract). */
        char *line = NULL;
        int n;
        while ((n = PQgetCopyData(c, &line, 0)) > 0) {
            if (n > 0 && line[n - 1] == '\n') line[n - 1] = 0;
            if (rows->n < SLT_ROWS_MAX) slt_lines_push(rows, line);
            PQfreemem(line);
        }
        PGresult *end = PQgetResult(c);
        int rc = 0;
        if (PQresultStatus(end) != PGRES_COMMAND_OK) {
            *err = base_strdup(PQresultErrorMessage(end));
            rc = -1;
        }
        PQclear(end);
        while ((end = PQgetResult(c)) != NULL) PQclear(end);
        return rc;
    }
    *err = base_strdup(st == PGRES_FATAL_ERROR ? PQresultErrorMessage(r) : PQresStatus(st));
    return -1;
}

/* Run one record; prints a failure and returns false when it does not
** hold. */
static bool slt_run_record(PGconn *c, const char *path, int line_no, slt_kind kind,
                           const char *arg, const char *sql, bool rowsort, slt_lines *want) {
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = true;
    if (kind == SLT_STATEMENT_OK) {
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            fprintf(stderr, "%s:%d: statement failed: %s\n  %s\n", path, line_no, sql,
                    PQresultErrorMessage(r));
            ok = false;
        }
    } else if (kind == SLT_STATEMENT_ERROR) {
        const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (st != PGRES_FATAL_ERROR || got == NULL || strcmp(got, arg) != 0) {
            fprintf(stderr, "%s:%d: want error %s, got %s %s: %s\n  %s\n", path, line_no, arg,
                    PQresStatus(st), got ? got : "", PQresultErrorMessage(r), sql);
            ok = false;
        }
    } else {
        slt_lines rows = {0};
        char *err = NULL;
        if (slt_collect(c, r, &rows, &err) != 0) {
            fprintf(stderr, "%s:%d: query failed: %s\n  %s\n", path, line_no, sql, err);
            ok = false;
        } else {
            if (rowsort) {
                qsort(rows.v, (size_t)rows.n, sizeof *rows.v, slt_cmp_str);
                qsort(want->v, (size_t)want->n, sizeof *want->v, slt_cmp_str);
            }
            bool same = rows.n == want->n;
            for (int i = 0; same && i < rows.n; i++) same = strcmp(rows.v[i], want->v[i]) == 0;
            if (!same) {
                fprintf(stderr, "%s:%d: rows differ\n  %s\n  got:\n", path, line_no, sql);
                for (int i = 0; i < rows.n; i++) fprintf(stderr, "    %s\n", rows.v[i]);
                fprintf(stderr, "  want:\n");
                for (int i = 0; i < want->n; i++) fprintf(stderr, "    %s\n", want->v[i]);
                ok = false;
            }
        }
        base_free(err);
        slt_lines_free(&rows);
    }
    PQclear(r);
    return ok;
}

/* ---- reading a file ---- */

static void slt_chomp(char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
}

static bool slt_blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t') return false;
    return true;
}

/* Run every record of one file on a new connection to conninfo. Returns 0,
** or -1 when the file cannot be read or the connection fails (counted as a
** failure). */
static int slt_run_file(const char *conninfo, const char *engine, const char *path,
                        slt_stats *stats) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        stats->failed++;
        return -1;
    }
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "%s: connect: %s", path, PQerrorMessage(c));
        PQfinish(c);
        fclose(f);
        stats->failed++;
        return -1;
    }
    char line[SLT_LINE_MAX];
    int line_no = 0;
    bool skip_next = false;
    bool eof = false;
    while (!eof) {
        if (fgets(line, sizeof line, f) == NULL) break;
        line_no++;
        slt_chomp(line);
        if (slt_blank(line) || line[0] == '#') continue;
        if (strncmp(line, "onlyif ", 7) == 0) {
            if (strcmp(line + 7, engine) != 0) skip_next = true;
            continue;
        }
        if (strncmp(line, "skipif ", 7) == 0) {
            if (strcmp(line + 7, engine) == 0) skip_next = true;
            continue;
        }
        slt_kind kind;
        char arg[64] = "";
        bool rowsort = false;
        if (strcmp(line, "statement ok") == 0) {
            kind = SLT_STATEMENT_OK;
        } else if (strncmp(line, "statement error ", 16) == 0) {
            kind = SLT_STATEMENT_ERROR;
            snprintf(arg, sizeof arg, "%.63s", line + 16);
        } else if (strncmp(line, "query", 5) == 0 && (line[5] == 0 || line[5] == ' ')) {
            kind = SLT_QUERY;
            rowsort = strstr(line + 5, "rowsort") != NULL;
        } else {
            fprintf(stderr, "%s:%d: unknown record \"%s\"\n", path, line_no, line);
            stats->failed++;
            continue;
        }
        int record_line = line_no;
        base_buf sql = {0};
        slt_lines want = {0};
        bool in_rows = false;
        int n_lines = 0;
        while (n_lines++ < SLT_RECORD_LINES_MAX) {
            if (fgets(line, sizeof line, f) == NULL) {
                eof = true;
                break;
            }
            line_no++;
            slt_chomp(line);
            if (slt_blank(line)) break;
            if (kind == SLT_QUERY && !in_rows && strcmp(line, "----") == 0) {
                in_rows = true;
            } else if (in_rows) {
                slt_lines_push(&want, line);
            } else {
                if (sql.len > 0) base_buf_append_byte(&sql, '\n');
                base_buf_append(&sql, line, strlen(line));
            }
        }
        base_buf_append_byte(&sql, 0);
        if (skip_next) {
            stats->skipped++;
        } else if (slt_run_record(c, path, record_line, kind, arg, (const char *)sql.data,
                                  rowsort, &want)) {
            stats->passed++;
        } else {
            stats->failed++;
        }
        skip_next = false;
        base_buf_free(&sql);
        slt_lines_free(&want);
    }
    PQfinish(c);
    fclose(f);
    return 0;
}

static int slt_run_files(const char *conninfo, const char *engine, int n, char **files) {
    slt_stats stats = {0};
    for (int i = 0; i < n; i++) {
        slt_stats before = stats;
        slt_run_file(conninfo, engine, files[i], &stats);
        printf("%s [%s]: %d passed, %d failed, %d skipped\n", files[i], engine,
               stats.passed - before.passed, stats.failed - before.failed,
               stats.skipped - before.skipped);
    }
    printf("total [%s]: %d passed, %d failed, %d skipped\n", engine, stats.passed, stats.failed,
           stats.skipped);
    return stats.failed == 0 ? 0 : 1;
}

/* ---- a throwaway PostgreSQL ---- */

static char slt_pg_dir[MTEST_PATH_MAX] = "";  /* mkdtemp dir (owned); "" when none */
static char slt_pg_data[MTEST_PATH_MAX + 16];
static bool slt_pg_running = false;
static bool slt_as_nobody = false;

/* argv prefixed with setpriv when running as root (PostgreSQL refuses
** root). out: at most 16 entries, NULL-terminated. */
static void slt_pg_argv(const char **out, const char *const *argv) {
    int k = 0;
    if (slt_as_nobody) {
        out[k++] = "setpriv";
        out[k++] = "--reuid=" SLT_NOBODY_ID;
        out[k++] = "--regid=" SLT_NOBODY_ID;
        out[k++] = "--clear-groups";
    }
    for (int i = 0; argv[i] && k < 15; i++) out[k++] = argv[i];
    out[k] = NULL;
}

static int slt_pg_run(const char *const *argv, char **err) {
    const char *full[16];
    slt_pg_argv(full, argv);
    return mtest_run(full, NULL, SLT_PG_TIMEOUT_MS, NULL, err);
}

static void slt_pg_cleanup(void) {
    if (slt_pg_running) {
        const char *argv[] = {SLT_PG_BIN "/pg_ctl", "stop", "-D", slt_pg_data, "-m",
                              "immediate", "-w", NULL};
        slt_pg_run(argv, NULL);
        slt_pg_running = false;
    }
    if (slt_pg_dir[0] != 0) {
        const char *argv[] = {"rm", "-rf", slt_pg_dir, NULL};
        mtest_run(argv, NULL, SLT_PG_TIMEOUT_MS, NULL, NULL);
        slt_pg_dir[0] = 0;
    }
}

static void slt_on_signal(int sig) {
    slt_pg_cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int slt_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Start PostgreSQL; conninfo gets its connection string. Returns 0, or
** SLT_EXIT_SKIP with the reason on stderr. */
static int slt_pg_start(char *conninfo, size_t cap) {
    if (access(SLT_PG_BIN "/postgres", X_OK) != 0 || access(SLT_PG_BIN "/initdb", X_OK) != 0) {
        fprintf(stderr, "slt: SKIP: no PostgreSQL 15 server in %s (Debian package postgresql)\n",
                SLT_PG_BIN);
        return SLT_EXIT_SKIP;
    }
    slt_as_nobody = geteuid() == 0;
    snprintf(slt_pg_dir, sizeof slt_pg_dir, "/tmp/slt-pg-XXXXXX");
    if (mkdtemp(slt_pg_dir) == NULL) {
        slt_pg_dir[0] = 0;
        fprintf(stderr, "slt: SKIP: mkdtemp: %s\n", strerror(errno));
        return SLT_EXIT_SKIP;
    }
    if (slt_as_nobody && chown(slt_pg_dir, 65534, 65534) != 0) {
        fprintf(stderr, "slt: SKIP: chown %s to nobody: %s\n", slt_pg_dir, strerror(errno));
        return SLT_EXIT_SKIP;
    }
    snprintf(slt_pg_data, sizeof slt_pg_data, "%s/data", slt_pg_dir);
    char *err = NULL;
    const char *initdb[] = {SLT_PG_BIN "/initdb", "-D", slt_pg_data, "-U", "postgres",
                            "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", NULL};
    int st = slt_pg_run(initdb, &err);
    if (st != 0) {
        fprintf(stderr, "slt: SKIP: initdb exit %d (%s): %s\n", st,
                slt_as_nobody ? "as nobody via setpriv" : "as this user", err ? err : "");
        base_free(err);
        return SLT_EXIT_SKIP;
    }
    base_free(err);
    err = NULL;
    int port = slt_free_port();
    char opts[MTEST_PATH_MAX + 128], log[MTEST_PATH_MAX + 16];
    snprintf(opts, sizeof opts,
             "-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c full_page_writes=off",
             port, slt_pg_dir);
    snprintf(log, sizeof log, "%s/log", slt_pg_dir);
    const char *start[] = {SLT_PG_BIN "/pg_ctl", "start", "-D", slt_pg_data, "-w", "-t", "60",
                           "-l", log, "-o", opts, NULL};
    slt_pg_running = true;  /* a stop of a server that did not start is harmless */
    st = slt_pg_run(start, &err);
    if (st != 0 || port < 0) {
        fprintf(stderr, "slt: SKIP: pg_ctl start exit %d: %s\n", st, err ? err : "");
        base_free(err);
        return SLT_EXIT_SKIP;
    }
    base_free(err);
    snprintf(conninfo, cap, "host=127.0.0.1 port=%d user=postgres dbname=postgres", port);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *url = NULL, *engine = NULL;
    bool meridian = false, postgres = false;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--url") == 0 && i + 1 < argc) {
            url = argv[++i];
        } else if (strcmp(argv[i], "--engine") == 0 && i + 1 < argc) {
            engine = argv[++i];
        } else if (strcmp(argv[i], "--meridian") == 0) {
            meridian = true;
        } else if (strcmp(argv[i], "--postgres") == 0) {
            postgres = true;
        } else {
            break;
        }
    }
    if (i >= argc || (url != NULL) + meridian + postgres != 1) {
        fprintf(stderr,
                "usage: slt_runner {--url CONNINFO [--engine meridian|postgres] | --meridian |"
                " --postgres} FILE...\n");
        return 2;
    }
    if (url != NULL) return slt_run_files(url, engine ? engine : "meridian", argc - i, argv + i);
    if (meridian) {
        mtest_node node;
        if (mtest_node_start(&node, NULL, NULL) != 0) return 2;
        int rc = slt_run_files(node.url, "meridian", argc - i, argv + i);
        int st = mtest_node_stop(&node);
        mtest_node_destroy(&node);
        if (st != 0) {
            fprintf(stderr, "slt: node exit status after SIGTERM: %d (want 0)\n", st);
            rc = 1;
        }
        return rc;
    }
    atexit(slt_pg_cleanup);
    signal(SIGINT, slt_on_signal);
    signal(SIGTERM, slt_on_signal);
    signal(SIGHUP, slt_on_signal);
    char conninfo[256];
    int rc = slt_pg_start(conninfo, sizeof conninfo);
    if (rc != 0) return rc;  /* atexit stops and removes it */
    return slt_run_files(conninfo, "postgres", argc - i, argv + i);
}
