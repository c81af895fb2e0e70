/* SPDX-License-Identifier: MIT */
/*
 * plan/calibrate.c - fits a profile's activation and time coefficients to
 * observed runs, and writes the calibrated copy.
 *
 * Owns calibration.  The fit keeps the profile's shape: every term the
 * profile gives (a coefficient times an input) gets a multiplier, found by
 * non-negative least squares on relative error; a term the profile leaves
 * at zero stays zero.  Memory is fitted per stage, on the rows whose peak
 * falls in that stage; time over all stages, one multiplier per input.
 * With no more different rows than terms to fit, one scale is fitted
 * instead (runs repeated at one setting are one row).  The
 * copy is the original text with the changed coefficients' lines rewritten
 * and a [calibration] section: comments and citations stay.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/options.h"
#include "plan/format.h"

#define CAL_MAX_ROWS 10000
#define CAL_MAX_COLUMNS 32

typedef struct cal_row {
    plan_params x;
    double peak;                    /* observed bytes, 0: none */
    double seconds;                 /* observed, 0: none */
    vram_calibration_row out;
} cal_row;

struct vram_calibration {
    vram_profile *prof;             /* the calibrated copy */
    cal_row *rows;
    size_t nrows;
    double act_k[PLAN_MAX_STAGES][PLAN_NFEATURES];  /* multipliers found */
    double time_k[PLAN_NFEATURES];
    bool act_fitted[PLAN_MAX_STAGES], time_fitted;
    char source[4096];              /* the profile it came from */
    double median_bytes, median_s;
};

/* ---- the fit ---------------------------------------------------------------------- */

/* The mode a measured run used: the one its settings name (auto: beefy). */
static int row_mode(const plan_params *x)
{
    return x->memory == VRAM_MEMORY_AUTO ? VRAM_MEMORY_BEEFY : x->memory;
}

/* Fits one scale k to y ~ k * t (weighted); false when t is all zero. */
static bool fit_scale(const double *t, const double *y, const double *w, int n, double *k)
{
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        num += w[i] * t[i] * y[i];
        den += w[i] * t[i] * t[i];
    }
    if (!(den > 0))
        return false;
    *k = num > 0 ? num / den : 0;
    return true;
}

/* Whether a (n rows, k columns) has more than `need` different rows.  Runs
 * repeated at one setting are one row to the fit, however many: fitted as
 * many, the columns they cannot tell apart were dropped to 0 (a profile
 * whose activations no longer grew with resolution). */
static bool distinct_rows_over(const double *a, int n, int k, int need)
{
    int seen[PLAN_NFEATURES + 1], nseen = 0;
    for (int i = 0; i < n && nseen <= need; i++) {
        bool same = false;
        for (int s = 0; s < nseen && !same; s++)
            same = !memcmp(&a[i * k], &a[seen[s] * k], sizeof(double) * (size_t)k);
        if (!same)
            seen[nseen++] = i;
    }
    return nseen > need;
}

/* Multipliers for the columns of a (n rows, k columns) that fit y: full
 * least squares with more different rows than columns in use, else one
 * common scale. */
static void fit_multipliers(const double *a, const double *y, const double *w, int n, int k,
                            double *mult, bool *fitted)
{
    int used = 0;
    for (int j = 0; j < k; j++) {
        mult[j] = 1;
        for (int i = 0; i < n; i++)
            if (a[i * k + j] != 0) {
                used++;
                break;
            }
    }
    *fitted = false;
    if (n == 0 || used == 0)
        return;
    if (distinct_rows_over(a, n, k, used) && plan__nnls(a, y, w, n, k, mult) == 0) {
        *fitted = true;
        return;
    }
    double *t = calloc((size_t)n, sizeof(double));
    double scale;
    if (!t)
        return;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            t[i] += a[i * k + j];
    if (fit_scale(t, y, w, n, &scale)) {
        for (int j = 0; j < k; j++)
            mult[j] = scale;
        *fitted = true;
    }
    free(t);
}

/* Memory, stage s: the rows assigned to it (stage[i]), activations
 * observed = what the peak leaves after weights, context and slack. */
static int fit_stage(vram_calibration *c, const vram_profile *p, int s, const int *stage, double *a,
                     double *y, double *w)
{
    int n = 0;
    for (size_t i = 0; i < c->nrows; i++) {
        const cal_row *r = &c->rows[i];
        plan_estimate e;
        if (!(r->peak > 0) || stage[i] != s || plan__estimate_mode(p, &r->x, row_mode(&r->x), &e))
            continue;
        plan__act_terms(p, &r->x, s, &a[n * PLAN_NFEATURES]);
        y[n] = (r->peak - p->context_bytes) / (1 + p->slack) - e.weights;
        w[n] = 1 / (r->peak * r->peak);
        n++;
    }
    fit_multipliers(a, y, w, n, PLAN_NFEATURES, c->act_k[s], &c->act_fitted[s]);
    return n;
}

static double transfer_part(const vram_profile *p, const plan_params *x, int mode)
{
    /* The estimate's seconds less its compute terms: the mode's transfers. */
    plan_estimate e;
    double t[PLAN_NFEATURES], compute = 0;
    if (plan__estimate_mode(p, x, mode, &e))
        return 0;
    for (int s = 0; s < p->nstage; s++) {
        plan__time_terms(p, x, s, t);
        for (int j = 0; j < PLAN_NFEATURES; j++)
            compute += t[j];
    }
    return e.seconds - compute;
}

static void fit_time(vram_calibration *c, const vram_profile *p, double *a, double *y, double *w)
{
    int n = 0;
    for (size_t i = 0; i < c->nrows; i++) {
        const cal_row *r = &c->rows[i];
        if (!(r->seconds > 0))
            continue;
        double *row = &a[n * PLAN_NFEATURES], t[PLAN_NFEATURES];
        memset(row, 0, sizeof(double) * PLAN_NFEATURES);
        for (int s = 0; s < p->nstage; s++) {
            plan__time_terms(p, &r->x, s, t);
            for (int j = 0; j < PLAN_NFEATURES; j++)
                row[j] += t[j];
        }
        y[n] = r->seconds - transfer_part(p, &r->x, row_mode(&r->x));
        w[n] = 1 / (r->seconds * r->seconds);
        n++;
    }
    fit_multipliers(a, y, w, n, PLAN_NFEATURES, c->time_k, &c->time_fitted);
}

static void apply_fit(const vram_calibration *c, vram_profile *p)
{
    for (int s = 0; s < p->nstage; s++)
        for (int j = 0; j < PLAN_NFEATURES; j++) {
            if (c->act_fitted[s])
                p->stage[s].act[j] *= c->act_k[s][j];
            if (c->time_fitted)
                p->stage[s].time[j] *= c->time_k[j];
        }
}

/* ---- the report ------------------------------------------------------------------- */

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_abs(double *v, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i]))
            v[m++] = fabs(v[i]);
    if (!m)
        return NAN;
    qsort(v, m, sizeof(double), by_value);
    return m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2;
}

/* Predictions before (profile p) and after (q) for every row. */
static void report_rows(vram_calibration *c, const vram_profile *p, const vram_profile *q)
{
    double *eb = calloc(c->nrows + 1, sizeof(double)), *es = calloc(c->nrows + 1, sizeof(double));
    for (size_t i = 0; i < c->nrows; i++) {
        cal_row *r = &c->rows[i];
        plan_estimate before, after;
        int mode = row_mode(&r->x);
        plan__estimate_mode(p, &r->x, mode, &before);
        plan__estimate_mode(q, &r->x, mode, &after);
        vram_calibration_row *o = &r->out;
        o->observed_s = r->seconds;
        o->before_s = before.seconds;
        o->after_s = after.seconds;
        plan__bytes(r->peak, &o->observed_bytes);
        plan__bytes(before.peak, &o->before_bytes);
        plan__bytes(after.peak, &o->after_bytes);
        plan__bytes(after.peak - after.margin, &o->fit_bytes);
        o->error_pct = r->peak > 0 ? 100 * (after.peak - after.margin - r->peak) / r->peak : NAN;
        o->error_s_pct = r->seconds > 0 ? 100 * (after.seconds - r->seconds) / r->seconds : NAN;
        if (eb && es) {
            eb[i] = o->error_pct;
            es[i] = o->error_s_pct;
        }
    }
    c->median_bytes = eb ? median_abs(eb, c->nrows) : NAN;
    c->median_s = es ? median_abs(es, c->nrows) : NAN;
    free(eb);
    free(es);
}

/* ---- the calibrated text -------------------------------------------------------------- */

/* Replaces the value on line `line` (1-based) of text with value, noting
 * the old one.  Returns a new text (freed by the caller) or NULL. */
static char *replace_line(const char *text, int line, double value)
{
    const char *start = text;
    for (int l = 1; l < line && start; l++) {
        start = strchr(start, '\n');
        start = start ? start + 1 : NULL;
    }
    const char *eq = start ? strchr(start, '=') : NULL;
    const char *end = start ? strchr(start, '\n') : NULL;
    if (!start || !eq || (end && eq > end))
        return NULL;
    if (!end)
        end = start + strlen(start);
    char old[64];
    const char *v = eq + 1;
    while (*v == ' ')
        v++;
    size_t vlen = strcspn(v, " ;\n\t");
    snprintf(old, sizeof(old), "%.*s", (int)(vlen < 40 ? vlen : 40), v);
    vram__buf b;
    vram__buf_init(&b);
    vram__buf_put(&b, text, (size_t)(eq + 1 - text));
    vram__buf_printf(&b, " %.9g ; calibrated, was %s", value, old);
    vram__buf_puts(&b, end);
    int rc;
    return vram__buf_take(&b, &rc);
}

static char *calibrated_text(const vram_calibration *c, const vram_profile *p, const vram_profile *q)
{
    char *text = strdup(p->text ? p->text : "");
    if (!text)
        return NULL;
    /* An earlier calibration's record goes; this one is appended. */
    char *old = strstr(text, "\n[calibration]");
    if (old)
        old[1] = '\0';
    for (int s = 0; s < q->nstage && text; s++)
        for (int j = 0; j < PLAN_NFEATURES && text; j++) {
            struct { double was, now; int line; } v[2] = {
                { p->stage[s].act[j], q->stage[s].act[j], p->stage[s].act_line[j] },
                { p->stage[s].time[j], q->stage[s].time[j], p->stage[s].time_line[j] },
            };
            for (int k = 0; k < 2 && text; k++) {
                if (!v[k].line || v[k].was == v[k].now)
                    continue;
                char *next = replace_line(text, v[k].line, v[k].now);
                free(text);
                text = next;
            }
        }
    if (!text)
        return NULL;
    vram__buf b;
    vram__buf_init(&b);
    vram__buf_puts(&b, text);
    free(text);
    if (b.len && b.data[b.len - 1] != '\n')
        vram__buf_puts(&b, "\n");
    char date[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(date, sizeof(date), "%Y-%m-%d", gmtime_r(&now, &tm));
    vram__buf_printf(&b, "\n[calibration]\n");
    vram__buf_printf(&b, "summary = %zu rows on %s: median error %.1f%% memory, %.1f%% time\n",
                     c->nrows, date, isnan(c->median_bytes) ? 0.0 : c->median_bytes,
                     isnan(c->median_s) ? 0.0 : c->median_s);
    vram__buf_printf(&b, "from = %.150s\n", c->source);
    int rc;
    return vram__buf_take(&b, &rc);
}

/* ---- entry points ---------------------------------------------------------------------- */

static int resolve_row(const vram_profile *p, const vram_measurement *m, size_t i, plan_params *x)
{
    plan_resolved r;
    int rc = plan__settings_resolve(p, m->settings, m->nsettings, 0, NULL, false, &r);
    *x = r.x;
    if (rc) {
        char why[768];
        vram__strlcpy(why, vram_last_error(), sizeof(why));
        return vram__fail(rc, "row %zu: %s", i + 1, why);
    }
    return 0;
}

/* Which stage each row peaks in depends on the coefficients being fitted:
 * rows are assigned with the profile as fitted so far, refitted from the
 * original, until the assignment holds (a few rounds at most). */
#define CAL_ROUNDS 4

static int fit_all(vram_calibration *c, const vram_profile *p, vram_profile *fitted)
{
    size_t n = c->nrows;
    double *a = calloc(n * PLAN_NFEATURES + 1, sizeof(double));
    double *y = calloc(n + 1, sizeof(double)), *w = calloc(n + 1, sizeof(double));
    int *stage = calloc(n + 1, sizeof(int));
    if (!a || !y || !w || !stage) {
        free(a);
        free(y);
        free(w);
        free(stage);
        return vram__fail(VRAM_ENOMEM, "out of host memory calibrating");
    }
    *fitted = *p;
    for (int round = 0; round < CAL_ROUNDS; round++) {
        bool moved = false;
        for (size_t i = 0; i < n; i++) {
            plan_estimate e;
            int s = plan__estimate_mode(fitted, &c->rows[i].x, row_mode(&c->rows[i].x), &e) ? -1
                                                                                            : e.peak_stage;
            moved |= round == 0 || s != stage[i];
            stage[i] = s;
        }
        if (!moved)
            break;
        for (int s = 0; s < p->nstage; s++)
            fit_stage(c, p, s, stage, a, y, w);
        fit_time(c, p, a, y, w);
        *fitted = *p;
        apply_fit(c, fitted);
    }
    free(a);
    free(y);
    free(w);
    free(stage);
    return 0;
}

int vram_calibrate(const vram_profile *p, const vram_measurement *rows, size_t nrows,
                   vram_calibration **out)
{
    if (!out || !p || (nrows && !rows))
        return vram__fail(VRAM_EINVAL, "vram_calibrate: NULL argument");
    *out = NULL;
    if (nrows == 0)
        return vram__fail(VRAM_EINVAL, "no measurements to calibrate %s with", p->name);
    if (nrows > CAL_MAX_ROWS)
        return vram__fail(VRAM_ERANGE, "%zu measurements: at most %d", nrows, CAL_MAX_ROWS);
    vram_calibration *c = calloc(1, sizeof(*c));
    if (!c || !(c->rows = calloc(nrows, sizeof(cal_row)))) {
        free(c);
        return vram__fail(VRAM_ENOMEM, "out of host memory calibrating");
    }
    c->nrows = nrows;
    vram__strlcpy(c->source, p->path, sizeof(c->source));
    int rc = 0, measured = 0;
    for (size_t i = 0; i < nrows && !rc; i++) {
        double s = rows[i].seconds;
        if (s > 0 && !(s >= PLAN_MIN_RUN_S && s <= PLAN_MAX_RUN_S)) {
            rc = vram__fail(VRAM_EINVAL, "row %zu: %g seconds is not a run's time (1 ms to a year)",
                            i + 1, s);
            break;
        }
        rc = resolve_row(p, &rows[i], i, &c->rows[i].x);
        c->rows[i].peak = (double)rows[i].peak_bytes;
        c->rows[i].seconds = rows[i].seconds > 0 ? rows[i].seconds : 0;
        measured += rows[i].peak_bytes > 0 || rows[i].seconds > 0;
    }
    if (!rc && !measured)
        rc = vram__fail(VRAM_EINVAL, "no row has a peak or a time to fit");
    vram_profile fitted;
    if (!rc && !(rc = fit_all(c, p, &fitted))) {
        report_rows(c, p, &fitted);
        char *text = calibrated_text(c, p, &fitted);
        rc = text ? plan__profile_parse(p->path, text, strlen(text), &c->prof)
                  : vram__fail(VRAM_ENOMEM, "out of host memory writing the calibrated profile");
        free(text);
    }
    if (rc) {
        vram_calibration_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void vram_calibration_free(vram_calibration *c)
{
    if (!c)
        return;
    vram_profile_free(c->prof);
    free(c->rows);
    free(c);
}

const vram_profile *vram_calibration_profile(const vram_calibration *c)
{
    return c ? c->prof : NULL;
}

size_t vram_calibration_row_count(const vram_calibration *c)
{
    return c ? c->nrows : 0;
}

int vram_calibration_get_row(const vram_calibration *c, size_t i, vram_calibration_row *out)
{
    if (!c || !out || i >= c->nrows)
        return VRAM_ENOENT;
    *out = c->rows[i].out;
    return 0;
}

void vram_calibration_median_error(const vram_calibration *c, double *bytes_pct, double *seconds_pct)
{
    if (bytes_pct)
        *bytes_pct = c ? c->median_bytes : NAN;
    if (seconds_pct)
        *seconds_pct = c ? c->median_s : NAN;
}

static void json_number_or_null(vram__json *j, const char *key, double v)
{
    vram__json_key(j, key);
    if (isnan(v))
        vram__json_null(j);
    else
        vram__json_double(j, v);
}

int vram_calibration_json(const vram_calibration *c, char **json_out)
{
    if (!c || !json_out)
        return vram__fail(VRAM_EINVAL, "vram_calibration_json: NULL argument");
    static const char *const features[PLAN_NFEATURES] = { "fixed", "token", "token2", "pixel", "area", "audio" };
    const vram_profile *q = c->prof;
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    vram__json_object_begin(&j);
    vram__json_field_string(&j, "model", q->name);
    vram__json_field_string(&j, "from", c->source);
    json_number_or_null(&j, "median_error_pct", c->median_bytes);
    json_number_or_null(&j, "median_error_s_pct", c->median_s);
    vram__json_key(&j, "multipliers");
    vram__json_object_begin(&j);
    for (int s = 0; s < q->nstage; s++) {
        if (!c->act_fitted[s])
            continue;
        vram__json_key(&j, q->stage[s].name);
        vram__json_object_begin(&j);
        for (int f = 0; f < PLAN_NFEATURES; f++)
            vram__json_field_double(&j, features[f], c->act_k[s][f]);
        vram__json_object_end(&j);
    }
    if (c->time_fitted) {
        vram__json_key(&j, "time");
        vram__json_object_begin(&j);
        for (int f = 0; f < PLAN_NFEATURES; f++)
            vram__json_field_double(&j, features[f], c->time_k[f]);
        vram__json_object_end(&j);
    }
    vram__json_object_end(&j);
    vram__json_key(&j, "rows");
    vram__json_array_begin(&j);
    for (size_t i = 0; i < c->nrows; i++) {
        const vram_calibration_row *r = &c->rows[i].out;
        vram__json_object_begin(&j);
        vram__json_field_uint(&j, "observed_bytes", r->observed_bytes);
        vram__json_field_uint(&j, "before_bytes", r->before_bytes);
        vram__json_field_uint(&j, "fit_bytes", r->fit_bytes);
        vram__json_field_uint(&j, "after_bytes", r->after_bytes);
        json_number_or_null(&j, "error_pct", r->error_pct);
        json_number_or_null(&j, "observed_s", r->observed_s > 0 ? r->observed_s : NAN);
        vram__json_field_double(&j, "before_s", r->before_s);
        vram__json_field_double(&j, "after_s", r->after_s);
        json_number_or_null(&j, "error_s_pct", r->error_s_pct);
        vram__json_object_end(&j);
    }
    vram__json_array_end(&j);
    vram__json_object_end(&j);
    int rc;
    *json_out = vram__buf_take(&b, &rc);
    return rc;
}

/* ---- writing the copy ---------------------------------------------------------------------- */

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int default_path(const vram_calibration *c, const vram_options *opts, char *buf, size_t cap)
{
    char dirs[8][4096];
    int n;
    int rc = plan__profile_dirs(opts, dirs, 8, &n);
    if (rc)
        return rc;
    const char *list = NULL;
    vram_options *own = NULL;
    if (!opts && vram_options_new(&own) == 0) {
        vram__options_load_env_lenient(own);
        opts = own;
    }
    list = opts ? vram__opt_str(opts, VRAM__OPT_PROFILES) : "";
    char dir[4096];
    if (*list)
        vram__strlcpy(dir, dirs[0], sizeof(dir));
    else
        rc = plan__user_dir(dir, sizeof(dir));
    vram_options_free(own);
    if (rc)
        return rc;
    int w = snprintf(buf, cap, "%s/%s.ini", dir, c->prof->name);
    if (w < 0 || (size_t)w >= cap)
        return vram__fail(VRAM_ERANGE, "the path for the calibrated profile is too long");
    /* Make the folder (and its parents under it). */
    char mk[4096];
    vram__strlcpy(mk, dir, sizeof(mk));
    for (char *s = mk + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(mk, 0755);
            *s = '/';
        }
    if (mkdir(mk, 0755) != 0 && errno != EEXIST)
        return vram__fail(VRAM_EIO, "cannot make %s: %s", mk, strerror(errno));
    return 0;
}

/* A file vram may replace: one that holds a [calibration] section. */
static bool is_calibrated_copy(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = !strncmp(line, "[calibration]", 13);
    fclose(f);
    return found;
}

int vram_calibration_write(const vram_calibration *c, const vram_options *opts, const char *path,
                           int overwrite, char *written, size_t cap)
{
    if (!c)
        return vram__fail(VRAM_EINVAL, "vram_calibration_write: NULL calibration");
    char where[4200];
    int rc = 0;
    if (path)
        vram__strlcpy(where, path, sizeof(where));
    else if ((rc = default_path(c, opts, where, sizeof(where))))
        return rc;
    if (same_file(where, c->source))
        return vram__fail(VRAM_EPERM, "%s is the profile the calibration came from: vram never "
                          "writes over it; give another path", where);
    if (access(where, F_OK) == 0 && !overwrite && !is_calibrated_copy(where))
        return vram__fail(VRAM_EPERM, "%s exists and is not a calibrated copy: not overwritten "
                          "(use --force)", where);
    char tmp[4300];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", where, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return vram__fail(VRAM_EIO, "cannot write %s: %s", tmp, strerror(errno));
    size_t len = strlen(c->prof->text);
    bool ok = fwrite(c->prof->text, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, where) != 0) {
        int e = errno;
        unlink(tmp);
        return vram__fail(VRAM_EIO, "cannot write %s: %s", where, strerror(e));
    }
    if (written)
        vram__strlcpy(written, where, cap);
    return 0;
}
