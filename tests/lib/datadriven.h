/*
** tests/lib/datadriven.h: data-driven test files, in the style of
** cockroachdb/datadriven (used by etcd-io/raft and CockroachDB).
**
** A file is a sequence of cases:
**
**     # comments and blank lines between cases are skipped
**     command pos1 pos2 key=value key=(a,b)
**     ----
**     expected output, any number of lines,
**     ending at the first blank line (or the end of the file)
**
** dd_run_file parses the file, calls `run` for each case with a buffer to
** fill, and compares the buffer with the expected text (trailing newlines
** ignored). A mismatch prints file:line, the command, expected and actual.
** With MERIDIAN_REWRITE=1 in the environment the file is rewritten with the
** actual outputs instead (review the diff before committing).
** Output must not contain a blank line (it would end the case).
*/
#ifndef MERIDIAN_DATADRIVEN_H
#define MERIDIAN_DATADRIVEN_H

#include "base/base.h"

#define DD_MAX_ARGS 16
#define DD_MAX_VALS 8
#define DD_TOKEN_SIZE 64

typedef struct dd_arg {
    char key[DD_TOKEN_SIZE];              /* or the positional token */
    char vals[DD_MAX_VALS][DD_TOKEN_SIZE]; /* key=v or key=(v1,v2) */
    int n_vals;                           /* 0 for a positional token */
} dd_arg;

typedef struct dd_case {
    const char *path;
    int line;            /* of the command */
    char cmd[DD_TOKEN_SIZE];
    dd_arg args[DD_MAX_ARGS];
    int n_args;
    const char *command_line; /* the whole line, NUL-terminated */
} dd_case;

/* Fill out (append) with the output of case c. Return 0, or non-zero to
** stop the file (counted as a failure). */
typedef int (*dd_run_fn)(void *ctx, const dd_case *c, base_buf *out);

/* Returns the number of failed cases (0: all passed), or -1 if the file
** could not be read or parsed (a message is printed). */
int dd_run_file(const char *path, dd_run_fn run, void *ctx);

/* The argument named key, or NULL. */
const dd_arg *dd_arg_find(const dd_case *c, const char *key);
/* Integer value of key=N (first value), or dflt if absent. */
long dd_arg_int(const dd_case *c, const char *key, long dflt);
/* Whether a positional token or key is present. */
int dd_has(const dd_case *c, const char *token);

#endif
