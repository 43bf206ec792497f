/*
** fuzz/replay_main.c: a main() for the harnesses without libFuzzer. Every
** regular file in the directories given (fuzz/corpus/<name>/,
** tests/fuzz-regressions/<name>/; names starting with '.' skipped; a
** missing directory is empty) goes through LLVMFuzzerTestOneInput once, in
** name order. A crash is the sanitizer's report and a non-zero exit; so
** the ctest fuzz_replay_<name> keeps every saved crash fixed in every
** build, gcc included.
**
** Usage: fuzz_replay_<name> DIR|FILE ...   exit 0: every input ran; 1: no
** input at all (a wrong path) or a file that cannot be read.
*/
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz/fuzz.h"

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    /* an exact-size copy: a harness that reads past the input is caught */
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while (buf != NULL && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap && len < FUZZ_INPUT_MAX_BYTES + 1) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        } else if (len == cap) {
            break;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (buf == NULL || err) {
        free(buf);
        fprintf(stderr, "replay: %s: cannot read\n", path);
        return -1;
    }
    uint8_t *exact = malloc(len ? len : 1);
    if (exact == NULL) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    int ran = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0)
            continue; /* no regressions saved yet */
        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[i]) != 0)
                failed++;
            else
                ran++;
            continue;
        }
        struct dirent **names = NULL;
        int n = scandir(argv[i], &names, NULL, by_name);
        for (int j = 0; j < n; j++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[j]->d_name);
            if (names[j]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                if (replay_file(path) != 0)
                    failed++;
                else
                    ran++;
            }
            free(names[j]);
        }
        free(names);
    }
    printf("replayed %d input%s\n", ran, ran == 1 ? "" : "s");
    return failed > 0 || ran == 0 ? 1 : 0;
}
