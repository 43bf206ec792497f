/*
** tests/chaos/check_bank_set.c: the bank and set checkers.
**
** bank: an op made only of `balance a n` mops is a read-all. Every ok
** read-all must sum to opts.total, name each account once (and exactly
** opts.accounts of them when that is set), and hold no negative balance
** unless opts.allow_negative. Transfers are not checked one by one: the
** invariant is the sum, as in Jepsen's bank test. With a ledger (the
** runner's transfers each insert a row (id, from, to, amount) and name the
** id: `transfer from to amount id`), an ok op holding a `ledger [...]` mop
** (the final read: balances and ledger in one statement, one snapshot) is
** checked row by row: every ok transfer that completed before the read was
** invoked has its row (else ledger-lost); every row names a transfer id of
** an ok or info op, once, with that transfer's from, to and amount (else
** ledger-unexpected: a failed transfer applied, or garbage); and each
** balance read with it equals the account's start (total / accounts) plus
** the rows' effects (else ledger-mismatch: money moved without its row, or
** a row without its money). info transfers may have a row or not.
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
#include <stdio.h>
#include <string.h>

#include "tests/chaos/chaos_int.h"

/* xfers map value: op index << 2 | op type */
#define XFER_VALUE(i, type) (((uint64_t)(i) << 2) | (uint64_t)(type))
#define XFER_OP(v) ((size_t)((v) >> 2))
#define XFER_TYPE(v) ((chaos_op_type)((v) & 3u))

/* The ledger checks of one ok op (index li) holding ledger mop lm. xfers:
** (id, 0) -> XFER_VALUE of the transfer with that id; rows and net are
** scratch maps keyed by (id or account, li). */
static int check_ledger(const chaos_history *h, const chaos_bank_opts *opts, size_t li,
                        const chaos_mop *lm, const chaos__map *xfers, chaos__map *rows,
                        chaos__map *net, chaos_result *out) {
    const chaos_op *lop = chaos_history_op(h, li);
    int rc;
    size_t n_rows = lm->list_len / 4;
    for (size_t r = 0; r < n_rows; r++) {
        const int64_t *row = &lm->list[r * 4];
        int64_t id = row[0], from = row[1], to = row[2], amount = row[3];
        if (chaos__map_get(rows, id, (int64_t)li) != NULL) {
            if ((rc = chaos__anomaly(out, CHAOS_ANOM_BANK_LEDGER_UNEXPECTED,
                                     "ledger read at line %zu (p%lld): id %lld has two rows",
                                     lop->line, (long long)lop->process, (long long)id)))
                return rc;
            continue;
        }
        if (chaos__map_put(rows, id, (int64_t)li, 1)) return CHAOS_ENOMEM;
        const uint64_t *x = chaos__map_get(xfers, id, 0);
        const chaos_op *xop = x ? chaos_history_op(h, XFER_OP(*x)) : NULL;
        const chaos_mop *xm = NULL;
        for (size_t j = 0; xop && j < xop->mop_count; j++)
            if (xop->mops[j].kind == CHAOS_MOP_TRANSFER && xop->mops[j].has_id && xop->mops[j].id == id)
                xm = &xop->mops[j];
        if (xm == NULL || XFER_TYPE(*x) == CHAOS_OP_FAIL ||
            xm->key != from || xm->value != to || xm->value2 != amount) {
            char why[64];
            if (xm == NULL) snprintf(why, sizeof why, "names no transfer");
            else if (XFER_TYPE(*x) == CHAOS_OP_FAIL)
                snprintf(why, sizeof why, "belongs to a failed transfer (line %zu)", xop->line);
            else snprintf(why, sizeof why, "differs from its transfer (line %zu)", xop->line);
            if ((rc = chaos__anomaly(out, CHAOS_ANOM_BANK_LEDGER_UNEXPECTED,
                                     "ledger read at line %zu (p%lld): row (id %lld: %lld -> %lld, %lld) %s",
                                     lop->line, (long long)lop->process, (long long)id, (long long)from,
                                     (long long)to, (long long)amount, why)))
                return rc;
        }
        /* the row's effect on balances, as read (whatever its transfer) */
        uint64_t *f = chaos__map_get(net, from, (int64_t)li);
        if (chaos__map_put(net, from, (int64_t)li, (uint64_t)((f ? (int64_t)*f : 0) - amount))) return CHAOS_ENOMEM;
        uint64_t *t = chaos__map_get(net, to, (int64_t)li);
        if (chaos__map_put(net, to, (int64_t)li, (uint64_t)((t ? (int64_t)*t : 0) + amount))) return CHAOS_ENOMEM;
    }
    size_t ok_present = 0, lost = 0, concurrent_absent = 0, info_present = 0, info_absent = 0;
    for (size_t i = 0; i < chaos_history_count(h); i++) {
        const chaos_op *op = chaos_history_op(h, i);
        for (size_t j = 0; j < op->mop_count; j++) {
            const chaos_mop *m = &op->mops[j];
            if (m->kind != CHAOS_MOP_TRANSFER || !m->has_id || op->type == CHAOS_OP_FAIL) continue;
            bool present = chaos__map_get(rows, m->id, (int64_t)li) != NULL;
            if (op->type == CHAOS_OP_INFO) {
                if (present) info_present++;
                else info_absent++;
            } else if (present) {
                ok_present++;
            } else if (op->complete_ns >= lop->invoke_ns) {
                concurrent_absent++;
            } else {
                lost++;
                if ((rc = chaos__anomaly(out, CHAOS_ANOM_BANK_LEDGER_LOST,
                                         "acknowledged transfer %lld (line %zu, p%lld: %lld -> %lld, %lld) has no row "
                                         "in the ledger read at line %zu (p%lld)",
                                         (long long)m->id, op->line, (long long)op->process, (long long)m->key,
                                         (long long)m->value, (long long)m->value2, lop->line,
                                         (long long)lop->process)))
                    return rc;
            }
        }
    }
    bool even = opts->accounts > 0 && opts->total % (int64_t)opts->accounts == 0;
    size_t mismatched = 0, balances = 0;
    for (size_t j = 0; even && j < lop->mop_count; j++) {
        const chaos_mop *m = &lop->mops[j];
        if (m->kind != CHAOS_MOP_BALANCE) continue;
        balances++;
        uint64_t *e = chaos__map_get(net, m->key, (int64_t)li);
        int64_t want = opts->total / (int64_t)opts->accounts + (e ? (int64_t)*e : 0);
        if (m->value != want) {
            mismatched++;
            if ((rc = chaos__anomaly(out, CHAOS_ANOM_BANK_LEDGER_MISMATCH,
                                     "read at line %zu (p%lld): account %lld has %lld, its start plus the ledger's "
                                     "rows give %lld",
                                     lop->line, (long long)lop->process, (long long)m->key, (long long)m->value,
                                     (long long)want)))
                return rc;
        }
    }
    return chaos__note(out,
                       "bank: ledger read at line %zu (p%lld): %zu rows; ok transfers present %zu, lost %zu, "
                       "concurrent-absent %zu; indeterminate present %zu, absent %zu; balances checked against "
                       "the rows %zu%s, mismatched %zu\n",
                       lop->line, (long long)lop->process, n_rows, ok_present, lost, concurrent_absent,
                       info_present, info_absent, balances, even ? "" : " (no even start: not checked)",
                       mismatched);
}

int chaos_check_bank(const chaos_history *h, const chaos_bank_opts *opts, chaos_result *out) {
    memset(out, 0, sizeof *out);
    int rc = 0;
    size_t reads = 0, transfers = 0, ledgers = 0;
    char d[512];
    chaos__map seen = {0};
    chaos__map xfers = {0}, rows = {0}, net = {0};
    for (size_t i = 0; i < chaos_history_count(h); i++) {
        const chaos_op *op = chaos_history_op(h, i);
        bool all_balance = true;
        size_t n_balance = 0, n_ledger = 0;
        for (size_t j = 0; j < op->mop_count; j++) {
            const chaos_mop *m = &op->mops[j];
            chaos_mop_kind k = m->kind;
            if (k != CHAOS_MOP_BALANCE && k != CHAOS_MOP_TRANSFER && k != CHAOS_MOP_LEDGER) {
                chaos__describe_op(op, d, sizeof d);
                chaos__note(out, "bank: not a bank micro-op in %s\n", d);
                rc = CHAOS_EWORKLOAD;
                goto cleanup;
            }
            if (k == CHAOS_MOP_TRANSFER) all_balance = false;
            n_balance += k == CHAOS_MOP_BALANCE;
            n_ledger += k == CHAOS_MOP_LEDGER;
            if (k == CHAOS_MOP_TRANSFER && m->has_id) {
                if (chaos__map_get(&xfers, m->id, 0) != NULL) {
                    chaos__describe_op(op, d, sizeof d);
                    chaos__note(out, "bank: transfer id %lld used twice, again in %s\n", (long long)m->id, d);
                    rc = CHAOS_EWORKLOAD;
                    goto cleanup;
                }
                if (chaos__map_put(&xfers, m->id, 0, XFER_VALUE(i, op->type))) { rc = CHAOS_ENOMEM; goto cleanup; }
            }
        }
        if ((!all_balance && n_ledger > 0) || n_ledger > 1) {
            chaos__describe_op(op, d, sizeof d);
            chaos__note(out, "bank: a ledger read in a transfer op, or two in one op: %s\n", d);
            rc = CHAOS_EWORKLOAD;
            goto cleanup;
        }
        if (!all_balance) {
            transfers += op->type == CHAOS_OP_OK;
            continue;
        }
        if (op->type != CHAOS_OP_OK) continue;
        ledgers += n_ledger;
        if (n_balance == 0) continue; /* a ledger alone: no sum to check */
        reads++;
        int64_t sum = 0;
        bool overflow = false;
        size_t distinct = 0;
        const chaos_mop *negative = NULL, *dup = NULL;
        for (size_t j = 0; j < op->mop_count; j++) {
            const chaos_mop *m = &op->mops[j];
            if (m->kind != CHAOS_MOP_BALANCE) continue;
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
    /* ledgers: after the first pass, which saw every transfer id */
    for (size_t i = 0; ledgers > 0 && i < chaos_history_count(h); i++) {
        const chaos_op *op = chaos_history_op(h, i);
        if (op->type != CHAOS_OP_OK) continue;
        for (size_t j = 0; j < op->mop_count; j++) {
            if (op->mops[j].kind != CHAOS_MOP_LEDGER) continue;
            if ((rc = check_ledger(h, opts, i, &op->mops[j], &xfers, &rows, &net, out))) goto cleanup;
        }
    }
    if ((rc = chaos__note(out, "bank: %zu ok read-alls, %zu ok transfers, %zu ok ledger reads\n", reads,
                          transfers, ledgers)))
        goto cleanup;
    if (reads == 0 && out->verdict == CHAOS_VALID) {
        out->verdict = CHAOS_UNKNOWN;
        if ((rc = chaos__note(out, "bank: no ok read-all, nothing was checked\n"))) goto cleanup;
    }
    rc = chaos__finish(out, "bank");
cleanup:
    chaos__map_free(&seen);
    chaos__map_free(&xfers);
    chaos__map_free(&rows);
    chaos__map_free(&net);
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
