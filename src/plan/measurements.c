/* SPDX-License-Identifier: MIT */
/*
 * plan/measurements.c - reads the CSV of observed runs that `vram
 * calibrate --from FILE` fits a profile to.
 *
 * Owns that file's format: a header naming columns (setting keys, "peak" as
 * a size or "peak_bytes", "seconds", and "note" for people), then one run a
 * line.  Fields may be quoted ("cpu=a,b" needs it); '#' starts a comment
 * line.  Every mistake is reported as "file:line: what is wrong".
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/exports.h"
#include "plan/plan.h"

#define CSV_MAX_COLUMNS 32
#define CSV_MAX_ROWS 10000
#define CSV_LINE_MAX 4096

enum { COL_SETTING, COL_PEAK, COL_PEAK_BYTES, COL_SECONDS, COL_NOTE };

typedef struct csv_row {
    char kv[CSV_MAX_COLUMNS][PLAN_SETTING_MAX];
    const char *ptr[CSV_MAX_COLUMNS];
    vram_measurement m;
} csv_row;

typedef struct csv_table {
    const vram_profile *p;
    const char *path;
    int ncols;
    int kind[CSV_MAX_COLUMNS];
    char name[CSV_MAX_COLUMNS][PLAN_NAME_MAX];
    csv_row *rows;
    size_t nrows, cap;
} csv_table;

/* Splits line into at most cap fields (quotes honoured), in place. */
static int split(char *line, char **field, int cap)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == cap)
            return -1;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '"') {
            char *out = ++p;
            field[n++] = out;
            while (*p && !(*p == '"' && p[1] != '"')) {
                if (*p == '"')          /* "" is a quote inside quotes */
                    p++;
                *out++ = *p++;
            }
            if (*p != '"')
                return -2;
            *out = '\0';
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p && *p != ',')
                return -2;
        } else {
            field[n++] = p;
            p += strcspn(p, ",");
        }
        if (!*p)
            break;
        *p++ = '\0';
    }
    for (int i = 0; i < n; i++)
        field[i] = vram__trim(field[i]);
    return n;
}

static int header(csv_table *t, char *line, int lineno)
{
    char *f[CSV_MAX_COLUMNS];
    int n = split(line, f, CSV_MAX_COLUMNS);
    if (n < 0)
        return vram__fail(VRAM_EPARSE, "%s:%d: a header of at most %d columns", t->path, lineno,
                          CSV_MAX_COLUMNS);
    bool measured = false;
    for (int i = 0; i < n; i++) {
        const char *c = f[i];
        int kind = !strcmp(c, "peak") ? COL_PEAK : !strcmp(c, "peak_bytes") ? COL_PEAK_BYTES
                 : !strcmp(c, "seconds") ? COL_SECONDS : !strcmp(c, "note") ? COL_NOTE : COL_SETTING;
        if (kind == COL_SETTING && plan__key_find(c) < 0)
            return vram__fail(VRAM_EPARSE, "%s:%d: unknown column '%s' (setting keys, peak or "
                              "peak_bytes, seconds, note)", t->path, lineno, c);
        measured |= kind == COL_PEAK || kind == COL_PEAK_BYTES || kind == COL_SECONDS;
        t->kind[i] = kind;
        vram__strlcpy(t->name[i], c, PLAN_NAME_MAX);
    }
    if (!measured)
        return vram__fail(VRAM_EPARSE, "%s:%d: no peak, peak_bytes or seconds column: nothing to "
                          "fit", t->path, lineno);
    t->ncols = n;
    return 0;
}

static int field_error(const csv_table *t, int lineno, const char *col)
{
    char why[768];
    vram__strlcpy(why, vram_last_error(), sizeof(why));
    return vram__fail(VRAM_EPARSE, "%s:%d: %s: %s", t->path, lineno, col, why);
}

static int row(csv_table *t, char *line, int lineno)
{
    char *f[CSV_MAX_COLUMNS];
    int n = split(line, f, CSV_MAX_COLUMNS);
    if (n != t->ncols)
        return vram__fail(VRAM_EPARSE, "%s:%d: %d fields, the header has %d%s", t->path, lineno,
                          n < 0 ? 0 : n, t->ncols, n == -2 ? " (an unclosed quote)" : "");
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        csv_row *grown = realloc(t->rows, cap * sizeof(*grown));
        if (!grown)
            return vram__fail(VRAM_ENOMEM, "out of host memory reading %s", t->path);
        t->rows = grown;
        t->cap = cap;
    }
    csv_row *r = &t->rows[t->nrows];
    vram_measurement *m = &r->m;
    memset(m, 0, sizeof(*m));
    int ns = 0;
    for (int i = 0; i < n; i++) {
        if (!*f[i] || t->kind[i] == COL_NOTE)
            continue;
        if (t->kind[i] == COL_SETTING) {
            if (snprintf(r->kv[ns], PLAN_SETTING_MAX, "%s=%s", t->name[i], f[i]) >= PLAN_SETTING_MAX)
                return vram__fail(VRAM_EPARSE, "%s:%d: %s: value too long", t->path, lineno,
                                  t->name[i]);
            ns++;
        } else if (t->kind[i] == COL_SECONDS) {
            char *end;
            double s = strtod(f[i], &end);
            if (*end || !(s > 0) || !isfinite(s))
                return vram__fail(VRAM_EPARSE, "%s:%d: seconds: '%s' is not a positive number",
                                  t->path, lineno, f[i]);
            if (s < PLAN_MIN_RUN_S || s > PLAN_MAX_RUN_S)
                return vram__fail(VRAM_EPARSE, "%s:%d: seconds: '%s' is not a run's time "
                                  "(1 ms to a year)", t->path, lineno, f[i]);
            m->seconds = s;
        } else if (vram_size_parse(f[i], &m->peak_bytes)) {
            return field_error(t, lineno, t->name[i]);
        }
    }
    m->nsettings = (size_t)ns;
    /* The whole row, against the profile: names, conflicts, limits. */
    plan_params x = t->p->base;
    for (int k = 0; k < ns; k++)
        if (plan__params_set(t->p, &x, r->kv[k]))
            return field_error(t, lineno, "settings");
    if (plan__params_finish(t->p, &x))
        return field_error(t, lineno, "settings");
    t->nrows++;
    return 0;
}

static int read_rows(csv_table *t, FILE *f)
{
    char line[CSV_LINE_MAX];
    int lineno = 0, rc = 0;
    bool have_header = false;
    while (!rc && fgets(line, sizeof(line), f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n')
            return vram__fail(VRAM_EPARSE, "%s:%d: line longer than %d characters", t->path, lineno,
                              CSV_LINE_MAX - 2);
        char *s = vram__trim(line);
        if (!*s || *s == '#')
            continue;
        if (!have_header) {
            rc = header(t, s, lineno);
            have_header = true;
        } else if (t->nrows == CSV_MAX_ROWS) {
            rc = vram__fail(VRAM_EPARSE, "%s:%d: more than %d rows", t->path, lineno, CSV_MAX_ROWS);
        } else {
            rc = row(t, s, lineno);
        }
    }
    if (!rc && !t->nrows)
        rc = vram__fail(VRAM_EPARSE, "%s: no measurements (a header, then one run a line)", t->path);
    return rc;
}

int vram_calibrate_csv(const vram_profile *p, const char *csv_path, vram_calibration **out)
{
    if (!out || !p || !csv_path)
        return vram__fail(VRAM_EINVAL, "vram_calibrate_csv: NULL argument");
    *out = NULL;
    FILE *f = vram_file_open_read(csv_path);
    if (!f)
        return vram__fail(errno == ENOENT ? VRAM_ENOENT : errno == EISDIR ? VRAM_EINVAL : VRAM_EIO,
                          "cannot open %s: %s", csv_path, strerror(errno));
    csv_table t = { .p = p, .path = csv_path };
    int rc = read_rows(&t, f);
    fclose(f);
    vram_measurement *m = rc ? NULL : calloc(t.nrows, sizeof(*m));
    if (!rc && !m)
        rc = vram__fail(VRAM_ENOMEM, "out of host memory reading %s", csv_path);
    for (size_t i = 0; !rc && i < t.nrows; i++) {
        csv_row *r = &t.rows[i];
        for (size_t k = 0; k < r->m.nsettings; k++)
            r->ptr[k] = r->kv[k];
        m[i] = r->m;
        m[i].settings = r->ptr;
    }
    if (!rc)
        rc = vram_calibrate(p, m, t.nrows, out);
    free(m);
    free(t.rows);
    return rc;
}
