/*
** tests/chaos/check_bank_set.c: the bank and set checkers.
**
** bank: an op made only of `balance a n` mops is a read-all. Every ok
** read-all must sum to opts.total, name each account once (and exactly
** opts.accounts of them when that is set), and hold no negative balance
** unless opts.allow_negative. Transfers are not checked one by one: the
** invariant is the sum, as in Jepsen's bank test.
**
** set: `add v` ops and `members [..]` reads. The final read is the ok
** members read that completed last. Every ok add that completed before the
** final read was invoked must be in it (else lost); every element in it
** must have been added by an ok or info add (else unexpected: never added,
** or added by an add that failed). info adds are counted as present or
** absent, never anomalies; ok adds concurrent with the final read and
** absent from it are counted, not flagged.
**
** Invariants: both checkers are linear in the history (plus hashing) and
** never assert on input.
*/
#include <string.h>

#include "tests/chaos/chaos_int.h"

int chaos_check_bank(const chaos_history *h, const chaos_bank_opts *opts, chaos_result *out) {
    memset(out, 0, sizeof *out);
    int rc = 0;
    size_t reads = 0, transfers = 0;
    char d[512];
    chaos__map seen = {0};
    for (size_t i = 0; i < chaos_history_count(h); i++) {
        const chaos_op *op = chaos_history_op(h, i);
        bool all_balance = true;
        for (size_t j = 0; j < op->mop_count; j++) {
            chaos_mop_kind k = op->mops[j].kind;
            if (k != CHAOS_MOP_BALANCE && k != CHAOS_MOP_TRANSFER) {
                chaos__describe_op(op, d, sizeof d);
                chaos__note(out, "bank: not a bank micro-op in %s\n", d);
                rc = CHAOS_EWORKLOAD;
                goto cleanup;
            }
            if (k != CHAOS_MOP_BALANCE) all_balance = false;
        }
        if (!all_balance) {
            transfers += op->type == CHAOS_OP_OK;
            continue;
        }
        if (op->type != CHAOS_OP_OK) continue;
        reads++;
        int64_t sum = 0;
        bool overflow = false;
        size_t distinct = 0;
        const chaos_mop *negative = NULL, *dup = NULL;
        for (size_t j = 0; j < op->mop_count; j++) {
            const chaos_mop *m = &op->mops[j];
            if (__builtin_add_overflow(sum, m->value, &sum)) overflow = true;
            if (m->value < 0 && !negative) negative = m;
            uint64_t *s = chaos__map_get(&seen, m->key, 0);
            if (s && *s == i + 1) {
                if (!dup) dup = m;
                continue;
            }
            if (chaos__map_put(&seen, m->key, 0, i + 1)) { rc = CHAOS_ENOMEM; goto cleanup; }
            distinct++;
        }
        chaos__describe_op(op, d, sizeof d);
        if (overflow || sum != opts->total || dup || (opts->accounts && distinct != opts->accounts)) {
            if ((rc = chaos__anomaly(out, CHAOS_ANOM_BANK_WRONG_SUM,
                                     "read-all at line %zu (p%lld) sums to %lld%s over %zu accounts%s; expected %lld over %zu accounts",
                                     op->line, (long long)op->process, (long long)sum, overflow ? " (overflowed)" : "",
                                     distinct, dup ? " (an account read twice)" : "", (long long)opts->total,
                                     opts->accounts ? opts->accounts : distinct)))
                goto cleanup;
        }
        if (negative && !opts->allow_negative) {
            if ((rc = chaos__anomaly(out, CHAOS_ANOM_BANK_NEGATIVE, "read-all at line %zu (p%lld): account %lld has balance %lld",
                                     op->line, (long long)op->process, (long long)negative->key, (long long)negative->value)))
                goto cleanup;
        }
    }
    if ((rc = chaos__note(out, "bank: %zu ok read-alls, %zu ok transfers\n", reads, transfers))) goto cleanup;
    if (reads == 0 && out->verdict == CHAOS_VALID) {
        out->verdict = CHAOS_UNKNOWN;
        if ((rc = chaos__note(out, "bank: no ok read-all, nothing was checked\n"))) goto cleanup;
    }
    rc = chaos__finish(out, "bank");
cleanup:
    chaos__map_free(&seen);
    return rc;
}

/* map value for set adds: the best outcome seen for the value */
#define ADD_FAIL 1u
#define ADD_INFO 2u
#define ADD_OK 4u

int chaos_check_set(const chaos_history *h, chaos_result *out) {
    memset(out, 0, sizeof *out);
    int rc = 0;
    char d[512];
    chaos__map adds = {0};   /* (v, 0) -> bits of ADD_* */
    chaos__map final = {0};  /* (v, 0) -> 1 */
    const chaos_op *last = NULL;
    const chaos_mop *last_m = NULL;
    for (size_t i = 0; i < chaos_history_count(h); i++) {
        const chaos_op *op = chaos_history_op(h, i);
        for (size_t j = 0; j < op->mop_count; j++) {
            const chaos_mop *m = &op->mops[j];
            if (m->kind == CHAOS_MOP_ADD) {
                uint64_t *s = chaos__map_get(&adds, m->value, 0);
                uint64_t bit = op->type == CHAOS_OP_OK ? ADD_OK : op->type == CHAOS_OP_INFO ? ADD_INFO : ADD_FAIL;
                if (chaos__map_put(&adds, m->value, 0, (s ? *s : 0) | bit)) { rc = CHAOS_ENOMEM; goto cleanup; }
            } else if (m->kind == CHAOS_MOP_MEMBERS) {
                if (op->type == CHAOS_OP_OK && (!last || op->complete_ns >= last->complete_ns)) {
                    last = op;
                    last_m = m;
                }
            } else {
                chaos__describe_op(op, d, sizeof d);
                chaos__note(out, "set: not a set micro-op in %s\n", d);
                rc = CHAOS_EWORKLOAD;
                goto cleanup;
            }
        }
    }
    if (!last) {
        out->verdict = CHAOS_UNKNOWN;
        if ((rc = chaos__note(out, "set: no ok final read, nothing was checked\n"))) goto cleanup;
        rc = chaos__finish(out, "set");
        goto cleanup;
    }
    for (size_t x = 0; x < last_m->list_len; x++) {
        int64_t v = last_m->list[x];
        if (chaos__map_put(&final, v, 0, 1)) { rc = CHAOS_ENOMEM; goto cleanup; }
        uint64_t *s = chaos__map_get(&adds, v, 0);
        if (!s || !(*s & (ADD_OK | ADD_INFO))) {
            if ((rc = chaos__anomaly(out, CHAOS_ANOM_SET_UNEXPECTED, "value %lld in the final read (line %zu) was %s",
                                     (long long)v, last->line, s ? "added only by failed adds" : "never added")))
                goto cleanup;
        }
    }
    size_t ok_present = 0, lost = 0, info_present = 0, info_absent = 0, concurrent_absent = 0;
    for (size_t i = 0; i < chaos_history_count(h); i++) {
        const chaos_op *op = chaos_history_op(h, i);
        for (size_t j = 0; j < op->mop_count; j++) {
            const chaos_mop *m = &op->mops[j];
            if (m->kind != CHAOS_MOP_ADD || op->type == CHAOS_OP_FAIL) continue;
            bool present = chaos__map_get(&final, m->value, 0) != NULL;
            if (op->type == CHAOS_OP_INFO) {
                if (present) info_present++;
                else info_absent++;
            } else if (present) {
                ok_present++;
            } else if (op->complete_ns >= last->invoke_ns) {
                concurrent_absent++;
            } else {
                lost++;
                chaos__describe_op(op, d, sizeof d);
                if ((rc = chaos__anomaly(out, CHAOS_ANOM_SET_LOST,
                                         "acknowledged add of %lld (line %zu, p%lld) is missing from the final read (line %zu)",
                                         (long long)m->value, op->line, (long long)op->process, last->line)))
                    goto cleanup;
            }
        }
    }
    if ((rc = chaos__note(out,
                          "set: final read at line %zu has %zu elements; ok adds present %zu, lost %zu, concurrent-absent %zu; "
                          "indeterminate adds present %zu, absent %zu\n",
                          last->line, last_m->list_len, ok_present, lost, concurrent_absent, info_present, info_absent)))
        goto cleanup;
    rc = chaos__finish(out, "set");
cleanup:
    chaos__map_free(&adds);
    chaos__map_free(&final);
    return rc;
}
