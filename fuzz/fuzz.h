/*
** fuzz/fuzz.h: what the harnesses share. Each fuzz_<name>.c defines
** LLVMFuzzerTestOneInput over the real module code (no copies); it is
** linked either with libFuzzer (clang, -fsanitize=fuzzer: scripts/fuzz.sh)
** or with replay_main.c (any compiler: the ctest fuzz_replay_<name>,
** which replays fuzz/corpus/<name>/ and tests/fuzz-regressions/<name>/).
**
** Invariants of every harness:
**   - deterministic: the same input takes the same path (no clock, no
**     randomness, no state carried from one input to the next that changes
**     the outcome), so a saved crash reproduces in the replay test;
**   - nothing leaks: every input frees what it allocated (LeakSanitizer
**     runs in both builds);
**   - bad input is never a harness error: only a sanitizer report or an
**     assert in the module is a finding.
*/
#ifndef MERIDIAN_FUZZ_H
#define MERIDIAN_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Inputs longer than this are ignored (libFuzzer's -max_len is smaller;
** the limit keeps replayed files bounded too). */
#define FUZZ_INPUT_MAX_BYTES (1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
