/*
** tests/chaos/history.c: the history text parser, the result/report helpers
** and the small hash map the checkers share.
**
** Format: see chaos.h and docs/chaos.md. The parser is a tokenizer over one
** line at a time ('[', ']', ';' are tokens of their own) and a recursive-
** descent reader of `<process> <type> <invoke> <complete> <mop> (; <mop>)*`.
**
** Invariants: every error path frees what it built and writes "line N: ..."
** into err; no input makes it assert or read out of bounds. Storage grows in
** three pools (ops, mops, list ints) addressed by index while parsing; the
** pointers in chaos_op/chaos_mop are fixed up once at the end, after which
** the history never changes.
**
** Cuts: a text that does not fit its buffer (an op's description, a parse
** error, a token quoted in one) is cut VISIBLY: what is kept ends on a
** boundary and "...(+N bytes)" follows, N the bytes dropped (see "cuts"
** below). Report lines themselves are never cut.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/chaos/chaos_int.h"

struct chaos_history {
    chaos_op *ops;
    size_t op_count, op_cap;
    chaos_mop *mops;
    size_t mop_count, mop_cap;
    int64_t *ints;
    size_t int_count, int_cap;
};

/* ---- growth helper ------------------------------------------------------- */
static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need) n *= 2;
    void *q = base_realloc(*p, n * elem);
    if (!q) return CHAOS_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

/* ---- tokenizer ----------------------------------------------------------- */
#define QUOTE_MAX 24 /* bytes of a token quoted in a parse error */
typedef struct lexer {
    const char *p, *end;
    size_t line;
    char *err;
    size_t err_size;
    char quoted[QUOTE_MAX + CHAOS_CUT_MARK_MAX + 1]; /* quote()'s */
} lexer;

typedef struct token {
    const char *s;
    size_t len;   /* 0: end of line */
} token;

static int parse_error(lexer *lx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int parse_error(lexer *lx, const char *fmt, ...) {
    if (lx->err && lx->err_size) {
        char msg[256]; /* the messages are short; quoted tokens are cut (quote) */
        int n = snprintf(msg, sizeof msg, "line %zu: ", lx->line);
        if (n >= 0 && (size_t)n < sizeof msg) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
            va_end(ap);
        }
        chaos__fit(lx->err, lx->err_size, msg, strlen(msg));
    }
    return CHAOS_EPARSE;
}

static void cut_mark(char *buf, size_t size, size_t kept, size_t dropped);

/* A token as quoted in a parse error (valid until the next quote): cut
** visibly past QUOTE_MAX bytes, never inside a UTF-8 sequence or an escape
** (the input is anybody's). */
static const char *quote(lexer *lx, token t) {
    size_t k = chaos__cut_point(t.s, t.len, QUOTE_MAX);
    memcpy(lx->quoted, t.s, k);
    lx->quoted[k] = 0;
    if (k < t.len) cut_mark(lx->quoted, sizeof lx->quoted, k, t.len - k);
    return lx->quoted;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }
static bool is_punct(char c) { return c == '[' || c == ']' || c == ';'; }

static token next_token(lexer *lx) {
    while (lx->p < lx->end && is_space(*lx->p)) lx->p++;
    token t = {lx->p, 0};
    if (lx->p >= lx->end) return t;
    if (is_punct(*lx->p)) {
        lx->p++;
        t.len = 1;
        return t;
    }
    while (lx->p < lx->end && !is_space(*lx->p) && !is_punct(*lx->p)) lx->p++;
    t.len = (size_t)(lx->p - t.s);
    return t;
}

static token peek_token(lexer *lx) {
    const char *save = lx->p;
    token t = next_token(lx);
    lx->p = save;
    return t;
}

static bool tok_is(token t, const char *s) {
    size_t n = strlen(s);
    return t.len == n && memcmp(t.s, s, n) == 0;
}

static int tok_int(lexer *lx, token t, const char *what, int64_t *out) {
    char buf[32];
    if (t.len == 0) return parse_error(lx, "expected %s, found end of line", what);
    if (t.len >= sizeof buf) return parse_error(lx, "%s too long: '%s'", what, quote(lx, t));
    memcpy(buf, t.s, t.len);
    buf[t.len] = 0;
    char *endp = NULL;
    errno = 0;
    long long v = strtoll(buf, &endp, 10);
    if (endp == buf || *endp != 0 || errno == ERANGE || v == INT64_MIN)
        return parse_error(lx, "expected %s (integer), found '%s'", what, buf);
    *out = (int64_t)v;
    return 0;
}

static int read_int(lexer *lx, const char *what, int64_t *out) {
    return tok_int(lx, next_token(lx), what, out);
}

/* '[' v* ']' into the int pool; or '?' (sets *unknown). */
static int read_list(chaos_history *h, lexer *lx, chaos_mop *m, size_t *first) {
    token t = next_token(lx);
    *first = h->int_count;
    if (tok_is(t, "?")) {
        m->unknown = true;
        return 0;
    }
    if (!tok_is(t, "[")) return parse_error(lx, "expected '[' or '?', found '%s'", quote(lx, t));
    for (size_t n = 0;; n++) {
        t = next_token(lx);
        if (tok_is(t, "]")) return 0;
        if (n >= CHAOS_LIST_LEN_MAX) return parse_error(lx, "list longer than %u", CHAOS_LIST_LEN_MAX);
        int64_t v;
        int rc = tok_int(lx, t, "list element or ']'", &v);
        if (rc) return rc;
        if (grow((void **)&h->ints, &h->int_cap, h->int_count + 1, sizeof(int64_t))) return CHAOS_ENOMEM;
        h->ints[h->int_count++] = v;
        m->list_len++;
    }
}

static int read_mop(chaos_history *h, lexer *lx, chaos_mop *m, size_t *list_first) {
    token t = next_token(lx);
    int rc = 0;
    memset(m, 0, sizeof *m);
    *list_first = SIZE_MAX;
    if (tok_is(t, "append")) {
        m->kind = CHAOS_MOP_APPEND;
        if ((rc = read_int(lx, "key", &m->key)) || (rc = read_int(lx, "value", &m->value))) return rc;
    } else if (tok_is(t, "read")) {
        if ((rc = read_int(lx, "key", &m->key))) return rc;
        token v = peek_token(lx);
        if (tok_is(v, "[")) {
            m->kind = CHAOS_MOP_READ_LIST;
            return read_list(h, lx, m, list_first);
        }
        next_token(lx);
        m->kind = CHAOS_MOP_READ;
        if (tok_is(v, "?")) m->unknown = true;
        else if (tok_is(v, "nil")) m->value = CHAOS_NIL;
        else return tok_int(lx, v, "read value, nil, ? or '['", &m->value);
    } else if (tok_is(t, "write")) {
        m->kind = CHAOS_MOP_WRITE;
        if ((rc = read_int(lx, "key", &m->key)) || (rc = read_int(lx, "value", &m->value))) return rc;
    } else if (tok_is(t, "cas")) {
        m->kind = CHAOS_MOP_CAS;
        if ((rc = read_int(lx, "key", &m->key))) return rc;
        token v = next_token(lx);
        if (tok_is(v, "nil")) m->value = CHAOS_NIL;
        else if ((rc = tok_int(lx, v, "cas old value", &m->value))) return rc;
        if ((rc = read_int(lx, "cas new value", &m->value2))) return rc;
    } else if (tok_is(t, "transfer")) {
        m->kind = CHAOS_MOP_TRANSFER;
        if ((rc = read_int(lx, "from account", &m->key)) || (rc = read_int(lx, "to account", &m->value)) ||
            (rc = read_int(lx, "amount", &m->value2)))
            return rc;
        /* optional id (histories before the ledger have none) */
        token v = peek_token(lx);
        if (v.len > 0 && !tok_is(v, ";")) {
            next_token(lx);
            if ((rc = tok_int(lx, v, "transfer id or ';'", &m->id))) return rc;
            m->has_id = true;
        }
    } else if (tok_is(t, "balance")) {
        m->kind = CHAOS_MOP_BALANCE;
        token v;
        if ((rc = read_int(lx, "account", &m->key))) return rc;
        v = next_token(lx);
        if (tok_is(v, "?")) m->unknown = true;
        else if ((rc = tok_int(lx, v, "balance", &m->value))) return rc;
    } else if (tok_is(t, "add")) {
        m->kind = CHAOS_MOP_ADD;
        if ((rc = read_int(lx, "value", &m->value))) return rc;
    } else if (tok_is(t, "members")) {
        m->kind = CHAOS_MOP_MEMBERS;
        return read_list(h, lx, m, list_first);
    } else if (tok_is(t, "ledger")) {
        m->kind = CHAOS_MOP_LEDGER;
        if ((rc = read_list(h, lx, m, list_first))) return rc;
        if (m->list_len % 4 != 0)
            return parse_error(lx, "ledger rows are 4 numbers each (id from to amount); found %zu numbers",
                               m->list_len);
    } else if (t.len == 0) {
        return parse_error(lx, "expected a micro-op, found end of line");
    } else {
        return parse_error(lx, "unknown micro-op '%s'", quote(lx, t));
    }
    return 0;
}

typedef struct pending_list { size_t mop, first; } pending_list;

static int parse_line(chaos_history *h, lexer *lx, base_buf *fixups) {
    chaos_op op;
    memset(&op, 0, sizeof op);
    op.line = lx->line;
    op.index = h->op_count;
    int rc = read_int(lx, "process id", &op.process);
    if (rc) return rc;
    token t = next_token(lx);
    bool never_completed = false;
    if (tok_is(t, "ok")) op.type = CHAOS_OP_OK;
    else if (tok_is(t, "fail")) op.type = CHAOS_OP_FAIL;
    else if (tok_is(t, "info")) op.type = CHAOS_OP_INFO;
    else if (tok_is(t, "invoke")) { op.type = CHAOS_OP_INFO; never_completed = true; }
    else return parse_error(lx, "expected type ok|fail|info|invoke, found '%s'", quote(lx, t));
    if ((rc = read_int(lx, "invoke time", &op.invoke_ns))) return rc;
    t = next_token(lx);
    if (tok_is(t, "-")) {
        if (op.type != CHAOS_OP_INFO) return parse_error(lx, "only info/invoke ops may omit the completion time");
        op.complete_ns = CHAOS_TIME_INFINITE;
    } else {
        if ((rc = tok_int(lx, t, "completion time or '-'", &op.complete_ns))) return rc;
        if (op.complete_ns < op.invoke_ns) return parse_error(lx, "completion time before invocation time");
    }
    if (op.type == CHAOS_OP_INFO || never_completed) op.complete_ns = CHAOS_TIME_INFINITE;
    size_t mop_first = h->mop_count;
    for (;;) {
        if (op.mop_count >= CHAOS_MOPS_PER_OP_MAX) return parse_error(lx, "more than %u micro-ops", CHAOS_MOPS_PER_OP_MAX);
        if (grow((void **)&h->mops, &h->mop_cap, h->mop_count + 1, sizeof(chaos_mop))) return CHAOS_ENOMEM;
        chaos_mop *m = &h->mops[h->mop_count];
        size_t list_first;
        if ((rc = read_mop(h, lx, m, &list_first))) return rc;
        if (op.type == CHAOS_OP_OK && m->unknown)
            return parse_error(lx, "an ok operation must have every read result known");
        if (list_first != SIZE_MAX && !m->unknown) {
            pending_list pl = {h->mop_count, list_first};
            if (base_buf_append(fixups, &pl, sizeof pl)) return CHAOS_ENOMEM;
        }
        h->mop_count++;
        op.mop_count++;
        t = next_token(lx);
        if (t.len == 0) break;
        if (!tok_is(t, ";")) return parse_error(lx, "expected ';' or end of line, found '%s'", quote(lx, t));
    }
    if (h->op_count >= CHAOS_OPS_MAX) return parse_error(lx, "more than %u operations", CHAOS_OPS_MAX);
    if (grow((void **)&h->ops, &h->op_cap, h->op_count + 1, sizeof(chaos_op))) return CHAOS_ENOMEM;
    op.mops = (const chaos_mop *)(uintptr_t)mop_first;  /* fixed up later */
    h->ops[h->op_count++] = op;
    return 0;
}

int chaos_history_parse(const char *text, size_t len, chaos_history **out, char *err, size_t err_size) {
    if (err && err_size) err[0] = 0;
    *out = NULL;
    base_buf fixups = {0};
    chaos_history *h = base_calloc(1, sizeof *h);
    int rc = 0;
    if (!h) return CHAOS_ENOMEM;
    lexer lx = {.p = text, .end = text + len, .line = 0, .err = err, .err_size = err_size};
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        lx.line++;
        lx.p = p;
        lx.end = le;
        if ((size_t)(le - p) > CHAOS_LINE_BYTES_MAX) {
            rc = parse_error(&lx, "line longer than %u bytes", CHAOS_LINE_BYTES_MAX);
            goto cleanup;
        }
        if (memchr(p, 0, (size_t)(le - p))) {
            rc = parse_error(&lx, "NUL byte in line");
            goto cleanup;
        }
        token first = peek_token(&lx);
        if (first.len != 0 && first.s[0] != '#') {
            rc = parse_line(h, &lx, &fixups);
            if (rc == CHAOS_ENOMEM && err && err_size) snprintf(err, err_size, "line %zu: out of memory", lx.line);
            if (rc) goto cleanup;
        }
        p = nl ? nl + 1 : end;
    }
    /* Fix up pointers now that the pools no longer move. */
    for (size_t i = 0; i < h->op_count; i++) h->ops[i].mops = h->mops + (uintptr_t)h->ops[i].mops;
    pending_list *pl = (pending_list *)fixups.data;
    for (size_t i = 0; i < fixups.len / sizeof *pl; i++) h->mops[pl[i].mop].list = h->ints ? h->ints + pl[i].first : NULL;
    *out = h;
    h = NULL;
cleanup:
    base_buf_free(&fixups);
    chaos_history_free(h);
    return rc;
}

int chaos_history_load(const char *path, chaos_history **out, char *err, size_t err_size) {
    base_buf b = {0};
    int rc = 0;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && err_size) snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return CHAOS_EIO;
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (base_buf_append(&b, chunk, n)) {
            rc = CHAOS_ENOMEM;
            goto cleanup;
        }
    }
    if (ferror(f)) {
        if (err && err_size) snprintf(err, err_size, "%s: read error", path);
        rc = CHAOS_EIO;
        goto cleanup;
    }
    rc = chaos_history_parse((const char *)b.data, b.len, out, err, err_size);
cleanup:
    fclose(f);
    base_buf_free(&b);
    return rc;
}

void chaos_history_free(chaos_history *h) {
    if (!h) return;
    base_free(h->ops);
    base_free(h->mops);
    base_free(h->ints);
    base_free(h);
}

size_t chaos_history_count(const chaos_history *h) { return h->op_count; }

const chaos_op *chaos_history_op(const chaos_history *h, size_t i) {
    return i < h->op_count ? &h->ops[i] : NULL;
}

/* ---- results ------------------------------------------------------------- */
static const char *const anomaly_names[CHAOS_ANOM__COUNT] = {
    [CHAOS_ANOM_G0] = "G0",
    [CHAOS_ANOM_G1A] = "G1a",
    [CHAOS_ANOM_G1B] = "G1b",
    [CHAOS_ANOM_G1C] = "G1c",
    [CHAOS_ANOM_G_SINGLE] = "G-single",
    [CHAOS_ANOM_G2] = "G2",
    [CHAOS_ANOM_REALTIME] = "realtime",
    [CHAOS_ANOM_INCOMPATIBLE_ORDER] = "incompatible-order",
    [CHAOS_ANOM_DUPLICATE_APPEND] = "duplicate",
    [CHAOS_ANOM_GARBAGE_READ] = "garbage-read",
    [CHAOS_ANOM_INTERNAL] = "internal",
    [CHAOS_ANOM_CYCLE] = "cycle",
    [CHAOS_ANOM_NONLINEARIZABLE] = "nonlinearizable",
    [CHAOS_ANOM_BANK_WRONG_SUM] = "wrong-total",
    [CHAOS_ANOM_BANK_NEGATIVE] = "negative-balance",
    [CHAOS_ANOM_SET_LOST] = "lost",
    [CHAOS_ANOM_SET_UNEXPECTED] = "unexpected",
    [CHAOS_ANOM_BANK_LEDGER_LOST] = "ledger-lost",
    [CHAOS_ANOM_BANK_LEDGER_UNEXPECTED] = "ledger-unexpected",
    [CHAOS_ANOM_BANK_LEDGER_MISMATCH] = "ledger-mismatch",
};

const char *chaos_anomaly_name(chaos_anomaly a) {
    return (unsigned)a < CHAOS_ANOM__COUNT ? anomaly_names[a] : "?";
}

void chaos_result_free(chaos_result *r) {
    base_buf_free(&r->report);
    memset(r, 0, sizeof *r);
}

/* Whole, however long (a cycle's report holds one description per op). */
static int vnote(chaos_result *r, const char *fmt, va_list ap) {
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n < 0) return 0; /* not a format this libc can print: nothing to add */
    if (base_buf_reserve(&r->report, (size_t)n + 1)) return CHAOS_ENOMEM;
    vsnprintf((char *)r->report.data + r->report.len, (size_t)n + 1, fmt, ap);
    r->report.len += (size_t)n;
    return 0;
}

int chaos__note(chaos_result *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = vnote(r, fmt, ap);
    va_end(ap);
    return rc;
}

int chaos__anomaly(chaos_result *r, chaos_anomaly a, const char *fmt, ...) {
    if ((unsigned)a >= CHAOS_ANOM__COUNT) return 0;
    r->anomalies |= 1ull << a;
    r->verdict = CHAOS_INVALID;
    if (r->counts[a]++ >= CHAOS_REPORT_PER_CLASS_MAX) return 0;
    if (base_buf_printf(&r->report, "[%s] ", anomaly_names[a])) return CHAOS_ENOMEM;
    va_list ap;
    va_start(ap, fmt);
    int rc = vnote(r, fmt, ap);
    va_end(ap);
    if (rc == 0 && base_buf_printf(&r->report, "\n")) rc = CHAOS_ENOMEM;
    return rc;
}

int chaos__finish(chaos_result *r, const char *checker) {
    static const char *const names[] = {"valid", "invalid", "unknown"};
    if (base_buf_printf(&r->report, "%s: %s", checker, names[r->verdict])) return CHAOS_ENOMEM;
    for (int a = 0; a < CHAOS_ANOM__COUNT; a++) {
        if (!r->counts[a]) continue;
        if (base_buf_printf(&r->report, " %s=%zu", anomaly_names[a], r->counts[a])) return CHAOS_ENOMEM;
    }
    if (base_buf_printf(&r->report, "\n")) return CHAOS_ENOMEM;
    return 0;
}

/* ---- cuts -------------------------------------------------------------------
** A cut keeps text[0..k) and writes "...(+N bytes)" after it, N = len - k.
** k is a BOUNDARY: never inside a UTF-8 sequence (lead byte plus its
** continuation bytes), a backslash escape (\n, \xHH, \uHHHH, \UHHHHHHHH,
** \ooo) or a terminal escape (ESC [ ... final byte 0x40-0x7e; ESC ] ... BEL
** or ESC \; ESC and one byte); a sequence that runs past the text's end goes
** whole. Among boundaries, one just after a space within CUT_BACKUP_MAX
** bytes is preferred, so a cut never leaves half a number. */
#define CUT_BACKUP_MAX 32

/* Length of the sequence starting at s[i] (at least 1), as far as len. */
static size_t seq_len(const char *s, size_t len, size_t i) {
    const unsigned char *u = (const unsigned char *)s;
    size_t want = 1;
    if (u[i] == '\\' && i + 1 < len) {
        unsigned char c = u[i + 1];
        if (c == 'x') want = 4;
        else if (c == 'u') want = 6;
        else if (c == 'U') want = 10;
        else if (c >= '0' && c <= '7') {
            want = 2;
            while (want < 4 && i + want < len && u[i + want] >= '0' && u[i + want] <= '7') want++;
        } else want = 2;
    } else if (u[i] == 0x1b && i + 1 < len) {
        size_t j = i + 2;
        if (u[i + 1] == '[') {
            while (j < len && !(u[j] >= 0x40 && u[j] <= 0x7e)) j++;
            want = j - i + 1;
        } else if (u[i + 1] == ']') {
            while (j < len && u[j] != 0x07 && !(u[j] == 0x1b && j + 1 < len && u[j + 1] == '\\')) j++;
            want = j - i + (j < len && u[j] == 0x1b ? 2 : 1);
        } else want = 2;
    } else if (u[i] >= 0xc0) {
        want = u[i] >= 0xf0 ? 4 : u[i] >= 0xe0 ? 3 : 2;
        for (size_t k = 1; k < want; k++) /* invalid UTF-8: the lead byte alone */
            if (i + k < len && (u[i + k] & 0xc0) != 0x80) { want = k; break; }
    }
    return BASE_MIN(want, len - i);
}

/* The greatest boundary <= max of text[0..len). */
static size_t boundary(const char *s, size_t len, size_t max) {
    size_t i = 0;
    while (i < max) {
        size_t n = seq_len(s, len, i);
        if (i + n > max) break;
        i += n;
    }
    return i;
}

size_t chaos__cut_point(const char *s, size_t len, size_t max) {
    if (len <= max) return len;
    size_t k = boundary(s, len, max);
    for (size_t j = k; j > 0 && k - j < CUT_BACKUP_MAX; j--)
        if (s[j - 1] == ' ' && boundary(s, len, j) == j) return j;
    return k;
}

/* The mark after the kept bytes buf[0..kept) (kept < size). ASCII: when
** even the mark does not fit (size <= CHAOS_CUT_MARK_MAX), its own cut
** splits nothing. */
static void cut_mark(char *buf, size_t size, size_t kept, size_t dropped) {
    snprintf(buf + kept, size - kept, "...(+%zu bytes)", dropped);
}

/* buf holds avail bytes of a text of total bytes (avail <= size - 1):
** NUL-terminate it, cut visibly when avail < total. */
static size_t finish_cut(char *buf, size_t size, size_t avail, size_t total) {
    if (avail == total) {
        buf[avail] = 0;
        return 0;
    }
    size_t room = size > CHAOS_CUT_MARK_MAX + 1 ? size - 1 - CHAOS_CUT_MARK_MAX : 0;
    size_t k = chaos__cut_point(buf, avail, room);
    cut_mark(buf, size, k, total - k);
    return total - k;
}

size_t chaos__fit(char *buf, size_t size, const char *text, size_t len) {
    if (size == 0) return len;
    size_t avail = BASE_MIN(len, size - 1);
    memcpy(buf, text, avail);
    return finish_cut(buf, size, avail, len);
}

/* An op's description as it is printed: kept in buf while it fits, counted
** in total either way. */
typedef struct desc {
    char *buf;
    size_t size, avail, total;
} desc;

static void desc_printf(desc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void desc_printf(desc *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int w = d->avail + 1 < d->size ? vsnprintf(d->buf + d->avail, d->size - d->avail, fmt, ap)
                                   : vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (w < 0) return;
    d->total += (size_t)w;
    d->avail = BASE_MIN(d->total, d->size - 1);
}

void chaos__describe_op(const chaos_op *op, char *buf, size_t size) {
    static const char *const types[] = {"ok", "fail", "info"};
    if (size == 0) return;
    desc d = {buf, size, 0, 0};
    desc_printf(&d, "op#%zu(line %zu, p%lld %s", op->index, op->line, (long long)op->process,
                types[op->type]);
    for (size_t i = 0; i < op->mop_count; i++) {
        const chaos_mop *m = &op->mops[i];
        const char *sep = i ? ";" : ":";
        long long k = (long long)m->key, v = (long long)m->value, v2 = (long long)m->value2;
        switch (m->kind) {
        case CHAOS_MOP_APPEND: desc_printf(&d, "%s append %lld %lld", sep, k, v); break;
        case CHAOS_MOP_READ_LIST:
            desc_printf(&d, "%s read %lld [", sep, k);
            for (size_t j = 0; j < m->list_len; j++) desc_printf(&d, j ? " %lld" : "%lld", (long long)m->list[j]);
            desc_printf(&d, m->unknown ? "?]" : "]");
            break;
        case CHAOS_MOP_READ:
            if (m->unknown) desc_printf(&d, "%s read %lld ?", sep, k);
            else if (m->value == CHAOS_NIL) desc_printf(&d, "%s read %lld nil", sep, k);
            else desc_printf(&d, "%s read %lld %lld", sep, k, v);
            break;
        case CHAOS_MOP_WRITE: desc_printf(&d, "%s write %lld %lld", sep, k, v); break;
        case CHAOS_MOP_CAS: desc_printf(&d, "%s cas %lld %lld %lld", sep, k, v, v2); break;
        case CHAOS_MOP_TRANSFER:
            desc_printf(&d, "%s transfer %lld %lld %lld", sep, k, v, v2);
            if (m->has_id) desc_printf(&d, " %lld", (long long)m->id);
            break;
        case CHAOS_MOP_BALANCE:
            if (m->unknown) desc_printf(&d, "%s balance %lld ?", sep, k);
            else desc_printf(&d, "%s balance %lld %lld", sep, k, v);
            break;
        case CHAOS_MOP_ADD: desc_printf(&d, "%s add %lld", sep, v); break;
        case CHAOS_MOP_MEMBERS: desc_printf(&d, "%s members (%zu elements)", sep, m->list_len); break;
        case CHAOS_MOP_LEDGER: desc_printf(&d, "%s ledger (%zu rows)", sep, m->list_len / 4); break;
        default: desc_printf(&d, "%s ...", sep); i = op->mop_count; break;
        }
    }
    desc_printf(&d, ")");
    finish_cut(buf, size, d.avail, d.total);
}

/* ---- map ------------------------------------------------------------------ */
static uint64_t hash_pair(int64_t a, int64_t b) {
    uint64_t x = (uint64_t)a * 0x9E3779B97F4A7C15ull ^ ((uint64_t)b + 0x632BE59BD9B4E019ull);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return x;
}

static int map_rehash(chaos__map *m, size_t cap) {
    chaos__map_slot *slots = base_calloc(cap, sizeof *slots);
    if (!slots) return CHAOS_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].used) continue;
        size_t j = hash_pair(m->slots[i].a, m->slots[i].b) & (cap - 1);
        while (slots[j].used) j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    base_free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int chaos__map_put(chaos__map *m, int64_t a, int64_t b, uint64_t value) {
    if ((m->len + 1) * 2 > m->cap && map_rehash(m, m->cap ? m->cap * 2 : 64)) return CHAOS_ENOMEM;
    size_t j = hash_pair(a, b) & (m->cap - 1);
    while (m->slots[j].used) {
        if (m->slots[j].a == a && m->slots[j].b == b) {
            m->slots[j].value = value;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->slots[j] = (chaos__map_slot){a, b, value, true};
    m->len++;
    return 0;
}

uint64_t *chaos__map_get(const chaos__map *m, int64_t a, int64_t b) {
    if (!m->cap) return NULL;
    size_t j = hash_pair(a, b) & (m->cap - 1);
    while (m->slots[j].used) {
        if (m->slots[j].a == a && m->slots[j].b == b) return &m->slots[j].value;
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

void chaos__map_free(chaos__map *m) {
    base_free(m->slots);
    memset(m, 0, sizeof *m);
}
