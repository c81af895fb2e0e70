/* SPDX-License-Identifier: MIT */
/*
 * cli/csv.c - reads the CSV batches `vram submit --csv` takes.
 *
 * RFC 4180: comma-separated, fields in double quotes may hold commas,
 * newlines and doubled quotes; LF or CRLF line ends; a header row names the
 * columns.  Each record keeps the line it started on, for messages.  Blank
 * lines and lines starting with '#' are skipped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static int add_field(cli_csv_row *row, const char *text, size_t len)
{
    if (row->nfields == CLI_CSV_MAX_FIELDS)
        return -1;
    char *f = malloc(len + 1);
    if (!f)
        return -1;
    memcpy(f, text, len);
    f[len] = '\0';
    row->fields[row->nfields++] = f;
    return 0;
}

void cli_csv_free(cli_csv *c)
{
    for (size_t r = 0; r < c->nrows; r++)
        for (size_t f = 0; f < c->rows[r].nfields; f++)
            free(c->rows[r].fields[f]);
    free(c->rows);
    memset(c, 0, sizeof(*c));
}

/* Parses the whole text into rows; the first row is the header. */
static int parse(const char *s, size_t n, cli_csv *out, char *err, size_t errcap)
{
    size_t cap = 0;
    unsigned line = 1;
    char *field = malloc(n + 1);
    if (!field)
        return snprintf(err, errcap, "out of memory"), -1;
    size_t i = 0;
    while (i < n) {
        if (s[i] == '\n' || (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') || s[i] == '#') {
            if (s[i] == '#')
                while (i < n && s[i] != '\n')
                    i++;
            i += i < n && s[i] == '\r' ? 2 : 1;
            line++;
            continue;                /* blank line or comment */
        }
        if (out->nrows == cap) {
            cap = cap ? cap * 2 : 64;
            cli_csv_row *p = realloc(out->rows, cap * sizeof(*p));
            if (!p) {
                free(field);
                return snprintf(err, errcap, "out of memory"), -1;
            }
            out->rows = p;
        }
        cli_csv_row *row = &out->rows[out->nrows++];
        memset(row, 0, sizeof(*row));
        row->line = line;
        for (;;) {
            size_t len = 0;
            if (i < n && s[i] == '"') {
                unsigned started = line;
                for (i++;; i++) {
                    if (i >= n) {
                        free(field);
                        return snprintf(err, errcap, "line %u: a quoted field is never closed", started), -1;
                    }
                    if (s[i] == '"' && i + 1 < n && s[i + 1] == '"')
                        field[len++] = s[i++];
                    else if (s[i] == '"') {
                        i++;
                        break;
                    } else {
                        if (s[i] == '\n')
                            line++;
                        field[len++] = s[i];
                    }
                }
                if (i < n && s[i] != ',' && s[i] != '\n' && s[i] != '\r') {
                    free(field);
                    return snprintf(err, errcap, "line %u: text after a closing quote", line), -1;
                }
            } else {
                while (i < n && s[i] != ',' && s[i] != '\n' && !(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n'))
                    field[len++] = s[i++];
            }
            if (add_field(row, field, len)) {
                free(field);
                return snprintf(err, errcap, "line %u: more than %d columns", row->line, CLI_CSV_MAX_FIELDS), -1;
            }
            if (i < n && s[i] == ',') {
                i++;
                continue;
            }
            if (i < n)
                i += s[i] == '\r' ? 2 : 1;
            line++;
            break;
        }
    }
    free(field);
    return 0;
}

int cli_csv_read(const char *path, cli_csv *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof(*out));
    FILE *f = !strcmp(path, "-") ? stdin : vram_file_open_read(path);
    if (!f)
        return snprintf(err, errcap, "cannot read '%s': %s", path, strerror(errno)), -1;
    size_t cap = 65536, n = 0;
    char *text = malloc(cap);
    for (size_t got; text && (got = fread(text + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            char *p = realloc(text, cap *= 2);
            if (!p) {
                free(text);
                text = NULL;
            }
            text = p;
        }
    }
    if (f != stdin)
        fclose(f);
    if (!text)
        return snprintf(err, errcap, "out of memory reading '%s'", path), -1;
    int rc = parse(text, n, out, err, errcap);
    free(text);
    if (rc) {
        cli_csv_free(out);
        return rc;
    }
    if (out->nrows == 0)
        return snprintf(err, errcap, "'%s' has no header row", path), -1;
    return 0;
}
