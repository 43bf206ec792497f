/*
** tests/chaos/chaos.h: recorded histories and the checkers that judge them
** (issue 7). Pure code: no clock, no I/O except chaos_history_load, which
** reads one file. The chaos runner records a history file; these checkers
** decide whether it was valid. docs/chaos.md describes the format and what
** each checker proves and does not prove.
**
** History format (text, one completed operation per line):
**
**     # comment; blank lines are skipped
**     <process> <type> <invoke_ns> <complete_ns|-> <mop> [; <mop>]...
**
**   type: ok | fail | info | invoke   (info = indeterminate; invoke = never
**         completed, treated as info; its complete_ns may be '-')
**   mop:  append <k> <v>            list-append
**         read <k> [<v> ...]        list-append read (whole list)
**         read <k> <v>|nil          register read
**         read <k> ?                result unknown (fail / info only)
**         write <k> <v>             register
**         cas <k> <old> <new>       register compare-and-set
**         transfer <from> <to> <n> [<id>]  bank (id: its ledger row's)
**         balance <account> <n>     bank; an op of only balances = read-all
**         ledger [<id> <from> <to> <n> ...] | ?  bank: the ledger table, read
**                                   in one op with balances (4 per row)
**         add <v>                   set
**         members [<v> ...] | ?     set read
**   All numbers are signed 64-bit decimal. '[', ']' and ';' are tokens on
**   their own even when written without spaces around them.
**
** Invariants: a parsed history is immutable; every op has >= 1 mop; ok ops
** have every read value known; invoke_ns <= complete_ns when both known.
** The checkers never assert on input: bad input is an error code or an
** anomaly in the report.
*/
#ifndef MERIDIAN_CHAOS_H
#define MERIDIAN_CHAOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ---- limits ------------------------------------------------------------ */
#define CHAOS_LINE_BYTES_MAX (1u << 20)   /* longer line: parse error */
#define CHAOS_MOPS_PER_OP_MAX 1024u
#define CHAOS_LIST_LEN_MAX (1u << 20)     /* elements in one read list */
#define CHAOS_OPS_MAX 10000000u           /* operations in one history */
#define CHAOS_REPORT_PER_CLASS_MAX 5u     /* anomalies printed per class */

/* Register value meaning "never written" (the literal `nil`). */
#define CHAOS_NIL INT64_MIN
/* Time of an op that never (knowingly) completed: info and invoke ops. */
#define CHAOS_TIME_INFINITE INT64_MAX

enum chaos_error {
    CHAOS_OK = 0,
    CHAOS_ENOMEM = -1,
    CHAOS_EPARSE = -2,   /* malformed history text; message in err */
    CHAOS_EIO = -3,      /* could not read the file */
    CHAOS_EWORKLOAD = -4 /* a mop the checker does not understand */
};

typedef enum chaos_op_type {
    CHAOS_OP_OK = 0,
    CHAOS_OP_FAIL = 1,   /* definitely did not take effect */
    CHAOS_OP_INFO = 2,   /* may or may not have taken effect */
} chaos_op_type;

typedef enum chaos_mop_kind {
    CHAOS_MOP_APPEND = 0,    /* key, value */
    CHAOS_MOP_READ_LIST = 1, /* key, list (unknown: flag) */
    CHAOS_MOP_READ = 2,      /* key, value (CHAOS_NIL allowed) */
    CHAOS_MOP_WRITE = 3,     /* key, value */
    CHAOS_MOP_CAS = 4,       /* key, value = old, value2 = new */
    CHAOS_MOP_TRANSFER = 5,  /* key = from, value = to, value2 = amount */
    CHAOS_MOP_BALANCE = 6,   /* key = account, value = amount */
    CHAOS_MOP_ADD = 7,       /* value */
    CHAOS_MOP_MEMBERS = 8,   /* list */
    CHAOS_MOP_LEDGER = 9,    /* list of (id, from, to, amount) rows */
} chaos_mop_kind;

typedef struct chaos_mop {
    chaos_mop_kind kind;
    bool unknown;            /* read result not known (`?`) */
    int64_t key;
    int64_t value;
    int64_t value2;
    int64_t id;              /* TRANSFER with has_id: its ledger row's id */
    bool has_id;
    const int64_t *list;     /* READ_LIST / MEMBERS; owner: the history */
    size_t list_len;
} chaos_mop;

typedef struct chaos_op {
    size_t index;            /* position in the history */
    size_t line;             /* 1-based line in the source text */
    int64_t process;
    chaos_op_type type;
    int64_t invoke_ns;
    int64_t complete_ns;     /* CHAOS_TIME_INFINITE for info */
    const chaos_mop *mops;   /* owner: the history */
    size_t mop_count;
} chaos_op;

typedef struct chaos_history chaos_history;  /* opaque storage */

/* Parse `len` bytes of history text. On success *out is a new history
** (owner: caller, free with chaos_history_free). On CHAOS_EPARSE the message
** ("line N: ...") is written to err (err may be NULL). Never crashes on any
** input. */
int chaos_history_parse(const char *text, size_t len, chaos_history **out,
                        char *err, size_t err_size);
/* Read and parse a file; CHAOS_EIO if it cannot be read. */
int chaos_history_load(const char *path, chaos_history **out, char *err,
                       size_t err_size);
void chaos_history_free(chaos_history *h);
size_t chaos_history_count(const chaos_history *h);
/* Valid until chaos_history_free. */
const chaos_op *chaos_history_op(const chaos_history *h, size_t i);

/* ---- results ------------------------------------------------------------ */
typedef enum chaos_verdict {
    CHAOS_VALID = 0,
    CHAOS_INVALID = 1,
    CHAOS_UNKNOWN = 2,   /* the checker gave up (budget) or lacked data */
} chaos_verdict;

typedef enum chaos_anomaly {
    /* list-append */
    CHAOS_ANOM_G0 = 0,               /* write cycle (ww only) */
    CHAOS_ANOM_G1A = 1,              /* aborted read */
    CHAOS_ANOM_G1B = 2,              /* intermediate read */
    CHAOS_ANOM_G1C = 3,              /* cycle of ww + wr */
    CHAOS_ANOM_G_SINGLE = 4,         /* cycle with exactly one rw edge */
    CHAOS_ANOM_G2 = 5,               /* cycle with two or more rw edges */
    CHAOS_ANOM_REALTIME = 6,         /* cycle only with real-time edges */
    CHAOS_ANOM_INCOMPATIBLE_ORDER = 7, /* two reads not prefixes */
    CHAOS_ANOM_DUPLICATE_APPEND = 8, /* value appended twice / read twice */
    CHAOS_ANOM_GARBAGE_READ = 9,     /* value never appended */
    CHAOS_ANOM_INTERNAL = 10,        /* read disagrees with own writes */
    CHAOS_ANOM_CYCLE = 11,           /* cycle found, class not (budget) */
    /* register */
    CHAOS_ANOM_NONLINEARIZABLE = 12,
    /* bank */
    CHAOS_ANOM_BANK_WRONG_SUM = 13,
    CHAOS_ANOM_BANK_NEGATIVE = 14,
    /* set */
    CHAOS_ANOM_SET_LOST = 15,
    CHAOS_ANOM_SET_UNEXPECTED = 16,
    /* bank with a ledger */
    CHAOS_ANOM_BANK_LEDGER_LOST = 17,       /* ok transfer without its row */
    CHAOS_ANOM_BANK_LEDGER_UNEXPECTED = 18, /* row of a failed/unknown id */
    CHAOS_ANOM_BANK_LEDGER_MISMATCH = 19,   /* balances != initial + rows */
    CHAOS_ANOM__COUNT = 20
} chaos_anomaly;

/* Short name of an anomaly class ("G-single", "lost"...); static string. */
const char *chaos_anomaly_name(chaos_anomaly a);

/* owner: whoever declared it; release with chaos_result_free. */
typedef struct chaos_result {
    chaos_verdict verdict;
    uint64_t anomalies;      /* bit (1 << chaos_anomaly) per class found */
    size_t counts[CHAOS_ANOM__COUNT]; /* anomalies found per class */
    base_buf report;         /* human-readable text, NUL-terminated */
} chaos_result;

void chaos_result_free(chaos_result *r);
static inline bool chaos_result_has(const chaos_result *r, chaos_anomaly a) {
    return (r->anomalies >> a) & 1u;
}

/* ---- checkers -------------------------------------------------------------
** Each overwrites *out without freeing it (pass a fresh or freed result)
** and returns 0, CHAOS_ENOMEM, or CHAOS_EWORKLOAD (a mop of another
** workload; message in the report). Whatever it returns, the caller then
** owns *out and releases it with chaos_result_free. Ops of other kinds are
** never silently ignored. The verdict is meaningful only when it returns 0.
** h must stay alive for the call only; the result holds no pointer into it. */

typedef struct chaos_append_opts {
    bool realtime;           /* add real-time edges: strict serializability */
    uint64_t search_budget;  /* edge visits for cycle search; 0: default */
} chaos_append_opts;
int chaos_check_list_append(const chaos_history *h,
                            const chaos_append_opts *opts, chaos_result *out);

typedef struct chaos_register_opts {
    int64_t initial;         /* value before any write; CHAOS_NIL usually */
    uint64_t search_budget;  /* search steps per key; 0: default 2,000,000 */
} chaos_register_opts;
int chaos_check_register(const chaos_history *h,
                         const chaos_register_opts *opts, chaos_result *out);

/* A read-all with a `ledger` mop is also checked against the transfers'
** ids: every ok transfer that completed before it was invoked has its row,
** no row belongs to a failed (or unknown) id or differs from its transfer,
** no id twice, and, when accounts > 0 divides total (every account starts
** at total / accounts), each balance equals that start plus the rows'
** effects. */
typedef struct chaos_bank_opts {
    int64_t total;           /* the constant sum of all balances */
    size_t accounts;         /* if > 0, every read-all has this many */
    bool allow_negative;
} chaos_bank_opts;
int chaos_check_bank(const chaos_history *h, const chaos_bank_opts *opts,
                     chaos_result *out);

int chaos_check_set(const chaos_history *h, chaos_result *out);

#endif
