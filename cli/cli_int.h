/*
** cli/cli_int.h: internals of the `meridian` binary, shared by its files and
** by its unit tests (tests/e2e/test_cli_units.c). Nothing else includes it.
**
** Pieces:
**   - argument helpers (durations, host:port), pure;
**   - the statement splitter of the shell, pure: text in, statements out;
**   - the psql-like result formatter (libpq PGresult -> aligned table);
**   - the commands: cli_start_main (the node), cli_sql_main (shell),
**     cli_cert_main, cli_init_main and cli_node_main (cluster), cli_demo_main,
**     cli_ranges_main (SHOW RANGES through the shell).
**
** Exit codes of every command: 0 ok, 1 runtime failure (a statement failed,
** the store is locked, ...), 2 bad command line (CLI_EXIT_USAGE).
*/
#ifndef MERIDIAN_CLI_INT_H
#define MERIDIAN_CLI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "base/base.h"
#include "server/server.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE 2

#define CLI_VERSION "0.1.0-dev"
#define CLI_DEFAULT_SQL_PORT 26257
#define CLI_DEFAULT_LISTEN_PORT 26357
#define CLI_DEFAULT_URL "postgresql://root@127.0.0.1:26257/defaultdb?sslmode=disable"
#define CLI_HOST_SIZE_MAX 256
#define CLI_PATH_SIZE_MAX 4096

/* ---- argument helpers ---------------------------------------------------- */

/* "250ms", "1s", "1.5s", "100us", "10ns", "2m"; a bare number is
** milliseconds. Negative values are allowed ("-300ms", for --clock-offset).
** Returns 0 or -1 (bad syntax or overflow). */
int cli_parse_duration_ns(const char *s, int64_t *out_ns);

/* "HOST:PORT", "[v6]:PORT", ":PORT" (host stays default_host), or "HOST"
** (port stays default_port). Port 0..65535. Returns 0 or -1. */
int cli_parse_hostport(const char *s, const char *default_host, int default_port,
                       char *host /* OUT, CLI_HOST_SIZE_MAX */, int *port /* OUT */);

/* "H1:P1,H2:P2,..." (each as cli_parse_hostport with host 127.0.0.1 and
** default_port; empty items and duplicates refused) into out[0..max).
** Returns 0 (and *n) or -1. */
int cli_parse_join_list(const char *s, int default_port, srv_addr *out, size_t max,
                        size_t *n /* OUT */);

/* mkdir -p: every missing directory of path (mode 0755); an existing
** non-directory is -ENOTDIR. 0 or -errno. */
int cli_mkdir_p(const char *path);

/* ---- the statement splitter ----------------------------------------------
** Accumulates input text and cuts it into statements at each ';' that is
** outside '...', "...", $tag$...$tag$, -- comments and nested block comments.
** Statements that contain nothing but whitespace and comments are dropped.
** Limit: a pending statement larger than CLI_STATEMENT_SIZE_MAX is an error
** (cli_splitter_push returns -1 and the pending text is discarded). */
#define CLI_STATEMENT_SIZE_MAX (64u * 1024 * 1024)
#define CLI_DOLLAR_TAG_SIZE_MAX 64

typedef struct cli_splitter {
    base_buf buf;     /* pending text (owned) */
    size_t scan;      /* bytes of buf already classified */
    size_t start;     /* start of the current statement in buf */
    int state;        /* lexical state, see cli_split.c */
    int comment_depth;
    bool has_content; /* a non-comment, non-space byte since start */
    char tag[CLI_DOLLAR_TAG_SIZE_MAX];
    size_t tag_len;
} cli_splitter;

void cli_splitter_init(cli_splitter *s);
void cli_splitter_free(cli_splitter *s);
/* Append text. 0, -1 when the pending statement is too large (dropped), or
** -ENOMEM. */
int cli_splitter_push(cli_splitter *s, const char *text, size_t len);
/* Next complete statement (trimmed, including its ';'): 1 and *out (owner:
** caller, base_free), or 0 when none is complete yet, or -ENOMEM. */
int cli_splitter_next(cli_splitter *s, char **out);
/* At end of input: each remaining statement, then the unterminated rest if
** it has content (1 and *out, owner: caller, base_free); 0 when nothing is
** left (the splitter is then reset). Call until it returns 0. */
int cli_splitter_finish(cli_splitter *s, char **out);
/* True when a statement has begun and is not finished (continuation). */
bool cli_splitter_pending(const cli_splitter *s);
/* Drop everything pending. */
void cli_splitter_reset(cli_splitter *s);

/* ---- result output --------------------------------------------------------- */

/* Print a PGRES_TUPLES_OK result as an aligned table like psql's:
** centered headers, a separator line, numbers right-aligned, NULL as empty,
** then "(N rows)" and a blank line. */
void cli_print_table(const PGresult *res, FILE *out);
/* Print one result of any kind: a table, a command tag, or
** "ERROR: message" and "SQLSTATE: xxxxx" on err. Returns 0, or -1 when the
** result is an error. */
int cli_print_result(const PGresult *res, FILE *out, FILE *err);
/* Display width of a UTF-8 string (code points, not bytes). */
size_t cli_display_width(const char *s);

/* ---- commands -------------------------------------------------------------- */
int cli_start_main(int argc, char **argv); /* `meridian start ...` */
int cli_sql_main(int argc, char **argv);   /* `meridian sql ...` */
int cli_cert_main(int argc, char **argv);  /* `meridian cert ...` (cli_cert.c) */
int cli_init_main(int argc, char **argv);  /* `meridian init ...` (cli_node.c) */
int cli_node_main(int argc, char **argv);  /* `meridian node status ...` (cli_node.c) */
int cli_demo_main(int argc, char **argv);  /* `meridian demo ...` (cli_demo.c) */
int cli_ranges_main(int argc, char **argv); /* `meridian ranges ...` (cli_ranges.c) */
int cli_debug_main(int argc, char **argv);  /* hidden `meridian debug ...` (cli_debug.c) */

/* ---- demo helpers (cli_demo.c), pure ---------------------------------------- */
/* The demo's default directory: $HOME/.meridian/demo, else $TMPDIR (or
** /tmp)/meridian-demo. Into out (size bytes). */
void cli_demo_default_dir(char *out, size_t size);

#endif
