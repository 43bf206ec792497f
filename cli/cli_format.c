/*
** cli/cli_format.c: results as psql prints them (aligned format).
**
**    id | owner | balance      <- headers centered, each padded to width
**   ----+-------+---------     <- width + 2 dashes per column, '+' between
**     1 | ada   |      90      <- numbers right-aligned; the last column is
**   (1 row)                       not padded on the right when left-aligned
**
** Widths are display widths of UTF-8 text (East Asian wide characters count
** two). Invalid UTF-8 bytes count one each. Pure apart from the FILE writes.
*/
#include "cli/cli_int.h"

#include <string.h>

/* Type OIDs printed right-aligned, as psql does. */
static bool oid_is_numeric(Oid oid) {
    switch (oid) {
    case 20:   /* int8 */
    case 21:   /* int2 */
    case 23:   /* int4 */
    case 26:   /* oid */
    case 700:  /* float4 */
    case 701:  /* float8 */
    case 790:  /* money */
    case 1700: /* numeric */
        return true;
    default:
        return false;
    }
}

static int codepoint_width(uint32_t cp) {
    if (cp == 0) return 0;
    if ((cp >= 0x0300 && cp <= 0x036F) || cp == 0x200B) return 0; /* combining */
    if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) ||
        (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
        (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
        (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
        (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD))
        return 2;
    return 1;
}

size_t cli_display_width(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;
    while (*p) {
        uint32_t cp;
        int n;
        if (*p < 0x80) { cp = *p; n = 1; }
        else if ((*p & 0xE0) == 0xC0) { cp = *p & 0x1F; n = 2; }
        else if ((*p & 0xF0) == 0xE0) { cp = *p & 0x0F; n = 3; }
        else if ((*p & 0xF8) == 0xF0) { cp = *p & 0x07; n = 4; }
        else { w++; p++; continue; }
        int k = 1;
        for (; k < n; k++) {
            if ((p[k] & 0xC0) != 0x80) break;
            cp = (cp << 6) | (p[k] & 0x3F);
        }
        if (k < n) { w++; p++; continue; } /* truncated sequence: one column */
        w += (size_t)codepoint_width(cp);
        p += n;
    }
    return w;
}

static void pad(FILE *out, size_t n) {
    for (size_t i = 0; i < n; i++) fputc(' ', out);
}

void cli_print_table(const PGresult *res, FILE *out) {
    int ncols = PQnfields(res), nrows = PQntuples(res);
    size_t *width = base_calloc((size_t)(ncols > 0 ? ncols : 1), sizeof *width);
    if (width == NULL) {
        fprintf(out, "(out of memory formatting %d rows)\n\n", nrows);
        return;
    }
    for (int c = 0; c < ncols; c++) {
        width[c] = cli_display_width(PQfname(res, c));
        for (int r = 0; r < nrows; r++) {
            size_t w = cli_display_width(PQgetvalue(res, r, c));
            if (w > width[c]) width[c] = w;
        }
    }
    /* Header: every column padded on both sides, the name centered. */
    for (int c = 0; c < ncols; c++) {
        const char *name = PQfname(res, c);
        size_t w = cli_display_width(name), lead = (width[c] - w) / 2;
        if (c > 0) fputc('|', out);
        fputc(' ', out);
        pad(out, lead);
        fputs(name, out);
        pad(out, width[c] - w - lead);
        fputc(' ', out);
    }
    fputc('\n', out);
    for (int c = 0; c < ncols; c++) {
        if (c > 0) fputc('+', out);
        for (size_t i = 0; i < width[c] + 2; i++) fputc('-', out);
    }
    fputc('\n', out);
    for (int r = 0; r < nrows; r++) {
        for (int c = 0; c < ncols; c++) {
            const char *v = PQgetisnull(res, r, c) ? "" : PQgetvalue(res, r, c);
            size_t w = cli_display_width(v);
            bool last = c == ncols - 1;
            if (c > 0) fputc('|', out);
            fputc(' ', out);
            if (oid_is_numeric(PQftype(res, c))) {
                pad(out, width[c] - w);
                fputs(v, out);
            } else {
                fputs(v, out);
                if (!last) pad(out, width[c] - w);
            }
            if (!last) fputc(' ', out);
        }
        fputc('\n', out);
    }
    fprintf(out, "(%d %s)\n\n", nrows, nrows == 1 ? "row" : "rows");
    base_free(width);
}

int cli_print_result(const PGresult *res, FILE *out, FILE *err) {
    if (res == NULL) {
        fprintf(err, "ERROR: out of memory or connection lost\n");
        return -1;
    }
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
        cli_print_table(res, out);
        return 0;
    case PGRES_COMMAND_OK:
        fprintf(out, "%s\n", PQcmdStatus((PGresult *)res));
        return 0;
    case PGRES_EMPTY_QUERY:
        return 0;
    case PGRES_FATAL_ERROR:
    case PGRES_NONFATAL_ERROR:
    case PGRES_BAD_RESPONSE: {
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
        fflush(out); /* keep the order when both go to one file */
        if (msg == NULL) {
            /* Client-side error (connection lost...): libpq's own text. */
            const char *m = PQresultErrorMessage(res);
            size_t len = strlen(m);
            while (len > 0 && (m[len - 1] == '\n' || m[len - 1] == ' ')) len--;
            if (strncmp(m, "ERROR:", 6) == 0) fprintf(err, "%.*s\n", (int)len, m);
            else fprintf(err, "ERROR: %.*s\n", (int)len, m);
        } else {
            fprintf(err, "ERROR: %s\n", msg);
        }
        if (detail != NULL) fprintf(err, "DETAIL: %s\n", detail);
        if (hint != NULL) fprintf(err, "HINT: %s\n", hint);
        if (state != NULL) fprintf(err, "SQLSTATE: %s\n", state);
        return PQresultStatus(res) == PGRES_NONFATAL_ERROR ? 0 : -1;
    }
    default:
        fprintf(out, "%s\n", PQcmdStatus((PGresult *)res));
        return 0;
    }
}
