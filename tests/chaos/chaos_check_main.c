/*
** tests/chaos/chaos_check_main.c: `chaos-check`, run one checker on a
** recorded history file and print the report. The chaos runner
** (runner_main.c) calls the library directly; this is for humans and
** scripts, e.g. on RESULTS/history.txt of a run.
**
**   chaos-check list-append [--serializable] FILE
**   chaos-check register [--initial N] [--budget N] FILE
**   chaos-check bank --total N [--accounts N] [--allow-negative] FILE
**   chaos-check set FILE
**
** Exit: 0 valid, 1 invalid, 2 unknown, 3 usage / unreadable / malformed.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/chaos/chaos.h"

static int usage(void) {
    fprintf(stderr,
            "usage: chaos-check list-append [--serializable] FILE\n"
            "       chaos-check register [--initial N] [--budget N] FILE\n"
            "       chaos-check bank --total N [--accounts N] [--allow-negative] FILE\n"
            "       chaos-check set FILE\n");
    return 3;
}

int main(int argc, char **argv) {
    if (argc < 3) return usage();
    const char *workload = argv[1], *path = NULL;
    chaos_append_opts ao = {.realtime = true};
    chaos_register_opts ro = {.initial = CHAOS_NIL};
    chaos_bank_opts bo = {0};
    bool have_total = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--serializable")) ao.realtime = false;
        else if (!strcmp(a, "--allow-negative")) bo.allow_negative = true;
        else if (!strcmp(a, "--initial") && v) { ro.initial = strtoll(v, NULL, 10); i++; }
        else if (!strcmp(a, "--budget") && v) { ro.search_budget = ao.search_budget = strtoull(v, NULL, 10); i++; }
        else if (!strcmp(a, "--total") && v) { bo.total = strtoll(v, NULL, 10); have_total = true; i++; }
        else if (!strcmp(a, "--accounts") && v) { bo.accounts = (size_t)strtoull(v, NULL, 10); i++; }
        else if (a[0] != '-' && !path) path = a;
        else return usage();
    }
    if (!path) return usage();
    char err[512];
    chaos_history *h = NULL;
    int rc = chaos_history_load(path, &h, err, sizeof err);
    if (rc) {
        fprintf(stderr, "chaos-check: %s\n", rc == CHAOS_ENOMEM ? "out of memory" : err);
        return 3;
    }
    chaos_result r = {0};
    if (!strcmp(workload, "list-append")) rc = chaos_check_list_append(h, &ao, &r);
    else if (!strcmp(workload, "register")) rc = chaos_check_register(h, &ro, &r);
    else if (!strcmp(workload, "bank") && have_total) rc = chaos_check_bank(h, &bo, &r);
    else if (!strcmp(workload, "set")) rc = chaos_check_set(h, &r);
    else {
        chaos_history_free(h);
        return usage();
    }
    if (r.report.data) fputs((const char *)r.report.data, stdout);
    int code = rc ? 3 : r.verdict == CHAOS_VALID ? 0 : r.verdict == CHAOS_INVALID ? 1 : 2;
    if (rc) fprintf(stderr, "chaos-check: checker error %d\n", rc);
    chaos_result_free(&r);
    chaos_history_free(h);
    return code;
}
