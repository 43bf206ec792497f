/*
** tests/lib/datadriven.c: the data-driven test file runner (datadriven.h).
** Limits: DD_MAX_ARGS arguments of DD_TOKEN_SIZE bytes per command; a case
** with more fails to parse (reported with its line).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datadriven.h"

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    base_buf b = {0};
    char chunk[4096];
    size_t n;
    if (f == NULL)
        return NULL;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (base_buf_append(&b, chunk, n) != 0)
            break;
    fclose(f);
    base_buf_append_byte(&b, 0);
    *len = b.len ? b.len - 1 : 0;
    return (char *)b.data;
}

static int copy_token(char *dst, const char *src, size_t n) {
    if (n >= DD_TOKEN_SIZE)
        return -1;
    memcpy(dst, src, n);
    dst[n] = 0;
    return 0;
}

static int parse_command(dd_case *c, const char *line) {
    const char *p = line;
    int first = 1;
    c->n_args = 0;
    while (*p) {
        const char *start, *eq;
        size_t len;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        start = p;
        /* a token runs to whitespace, but key=(a, b) may hold spaces */
        while (*p && *p != ' ' && *p != '\t') {
            if (*p == '(') {
                while (*p && *p != ')')
                    p++;
                if (*p)
                    p++;
                continue;
            }
            p++;
        }
        len = (size_t)(p - start);
        if (first) {
            if (copy_token(c->cmd, start, len) != 0)
                return -1;
            first = 0;
            continue;
        }
        if (c->n_args >= DD_MAX_ARGS)
            return -1;
        {
            dd_arg *a = &c->args[c->n_args++];
            memset(a, 0, sizeof(*a));
            eq = memchr(start, '=', len);
            if (eq == NULL) {
                if (copy_token(a->key, start, len) != 0)
                    return -1;
            } else {
                const char *v = eq + 1, *end = start + len;
                if (copy_token(a->key, start, (size_t)(eq - start)) != 0)
                    return -1;
                if (v < end && *v == '(') {
                    v++;
                    if (end > v && end[-1] == ')')
                        end--;
                }
                while (v <= end) {
                    const char *comma = v;
                    while (comma < end && *comma != ',')
                        comma++;
                    while (v < comma && *v == ' ')
                        v++;
                    if (a->n_vals >= DD_MAX_VALS ||
                        copy_token(a->vals[a->n_vals++], v, (size_t)(comma - v)) != 0)
                        return -1;
                    v = comma + 1;
                }
            }
        }
    }
    return first ? -1 : 0;
}

static void trim_trailing_newlines(base_buf *b) {
    while (b->len > 0 && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == ' '))
        b->len--;
}

int dd_run_file(const char *path, dd_run_fn run, void *ctx) {
    size_t len, pos = 0;
    char *text = read_all(path, &len);
    int failures = 0, line_no = 0, rewrite = getenv("MERIDIAN_REWRITE") != NULL;
    base_buf rewritten = {0}, actual = {0};
    dd_case *c = NULL;
    if (text == NULL) {
        fprintf(stderr, "datadriven: cannot read %s\n", path);
        return -1;
    }
    c = base_calloc(1, sizeof(*c));
    if (c == NULL) {
        base_free(text);
        return -1;
    }
    while (pos < len) {
        char *line = text + pos, *nl = strchr(line, '\n');
        size_t line_len = nl ? (size_t)(nl - line) : strlen(line);
        size_t expected_start, expected_end;
        line_no++;
        pos += line_len + (nl ? 1 : 0);
        if (line_len == 0 || line[0] == '#') {
            base_buf_append(&rewritten, line, line_len);
            base_buf_append_byte(&rewritten, '\n');
            continue;
        }
        line[line_len] = 0;
        memset(c, 0, sizeof(*c));
        c->path = path;
        c->line = line_no;
        c->command_line = line;
        if (parse_command(c, line) != 0) {
            fprintf(stderr, "%s:%d: cannot parse command: %s\n", path, line_no, line);
            failures = -1;
            goto done;
        }
        base_buf_append(&rewritten, line, line_len);
        base_buf_append_byte(&rewritten, '\n');
        /* the separator */
        if (pos >= len || strncmp(text + pos, "----\n", 5) != 0) {
            fprintf(stderr, "%s:%d: expected ---- after the command\n", path, line_no);
            failures = -1;
            goto done;
        }
        pos += 5;
        line_no++;
        base_buf_append(&rewritten, "----\n", 5);
        /* the expected output: up to a blank line */
        expected_start = pos;
        while (pos < len && text[pos] != '\n') {
            char *e = strchr(text + pos, '\n');
            pos = e ? (size_t)(e - text) + 1 : len;
            line_no++;
        }
        expected_end = pos;
        base_buf_reset(&actual);
        if (run(ctx, c, &actual) != 0) {
            failures++;
            fprintf(stderr, "%s:%d: %s: the command failed:\n%.*s\n", path, c->line,
                    c->command_line, (int)actual.len, (const char *)actual.data);
        }
        trim_trailing_newlines(&actual);
        {
            size_t elen = expected_end - expected_start;
            const char *exp = text + expected_start;
            while (elen > 0 && (exp[elen - 1] == '\n' || exp[elen - 1] == ' '))
                elen--;
            if (elen != actual.len || memcmp(exp, actual.data, elen) != 0) {
                if (!rewrite) {
                    fprintf(stderr, "%s:%d: %s\n--- expected\n%.*s\n--- actual\n%.*s\n---\n", path,
                            c->line, c->command_line, (int)elen, exp, (int)actual.len,
                            (const char *)actual.data);
                    failures++;
                }
            }
        }
        if (actual.len > 0) {
            base_buf_append(&rewritten, actual.data, actual.len);
            base_buf_append_byte(&rewritten, '\n');
        }
    }
    if (rewrite && failures == 0) {
        FILE *f = fopen(path, "wb");
        if (f != NULL) {
            /* keep the file's single trailing newline */
            while (rewritten.len > 1 && rewritten.data[rewritten.len - 1] == '\n' &&
                   rewritten.data[rewritten.len - 2] == '\n')
                rewritten.len--;
            fwrite(rewritten.data, 1, rewritten.len, f);
            fclose(f);
        }
    }
done:
    base_buf_free(&rewritten);
    base_buf_free(&actual);
    base_free(c);
    base_free(text);
    return failures;
}

const dd_arg *dd_arg_find(const dd_case *c, const char *key) {
    int i;
    for (i = 0; i < c->n_args; i++)
        if (strcmp(c->args[i].key, key) == 0)
            return &c->args[i];
    return NULL;
}

long dd_arg_int(const dd_case *c, const char *key, long dflt) {
    const dd_arg *a = dd_arg_find(c, key);
    if (a == NULL || a->n_vals == 0)
        return dflt;
    return strtol(a->vals[0], NULL, 10);
}

int dd_has(const dd_case *c, const char *token) {
    return dd_arg_find(c, token) != NULL;
}
