/* SPDX-License-Identifier: MIT */
/*
 * monitor/trend.c - is memory growing per iteration, or is it noise?
 *
 * A Theil-Sen slope (the median of the slopes between every pair of
 * samples) with Sen's 95% confidence interval.  The median shrugs off
 * one-off spikes and a warm-up step.  A leak is called only when three
 * things hold: the whole interval is above zero, the growth it implies over
 * the run is more than twice the noise (the robust spread of the residuals,
 * 1.4826 x their median absolute deviation), and that growth is worth
 * mentioning (min_growth_bytes).  The interval alone would call pure noise
 * a leak one time in forty.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"

/* Pairs grow as n^2: past this many samples, an even subsample is used. */
#define MAX_POINTS 1200
#define DEFAULT_MIN_GROWTH (1ull << 20)

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int vram_trend_fit(const uint64_t *samples, size_t n, uint64_t min_growth_bytes, vram_trend *out)
{
    if (!out || (!samples && n))
        return vram__fail(VRAM_EINVAL, "vram_trend_fit: NULL argument");
    *out = (vram_trend){ 0 };
    if (n < 5)
        return vram__fail(VRAM_EINVAL, "a trend needs at least 5 samples, got %zu", n);

    size_t m = n < MAX_POINTS ? n : MAX_POINTS;
    double *x = malloc(m * sizeof(double)), *y = malloc(m * sizeof(double));
    size_t pairs = m * (m - 1) / 2;
    double *slopes = malloc(pairs * sizeof(double));
    if (!x || !y || !slopes) {
        free(x);
        free(y);
        free(slopes);
        return vram__fail(VRAM_ENOMEM, "out of host memory fitting a trend");
    }
    for (size_t i = 0; i < m; i++) {
        size_t at = m == n ? i : (size_t)((double)i * (double)(n - 1) / (double)(m - 1));
        x[i] = (double)at;
        y[i] = (double)samples[at];
    }
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = i + 1; j < m; j++)
            slopes[k++] = (y[j] - y[i]) / (x[j] - x[i]);
    qsort(slopes, pairs, sizeof(double), cmp_double);

    double median = pairs % 2 ? slopes[pairs / 2] : (slopes[pairs / 2 - 1] + slopes[pairs / 2]) / 2;
    /* Sen (1968): the interval's ends are order statistics of the slopes,
     * C = z * sqrt(Var S) away from the middle; Var S = m(m-1)(2m+5)/18. */
    double md = (double)m;
    double c = 1.959964 * sqrt(md * (md - 1) * (2 * md + 5) / 18.0);
    double lo_at = floor(((double)pairs - c) / 2.0);
    double hi_at = ceil(((double)pairs + c) / 2.0);
    out->n = n;
    out->slope_bytes = median;
    out->slope_low = slopes[lo_at < 0 ? 0 : (size_t)lo_at];
    out->slope_high = slopes[hi_at > (double)(pairs - 1) ? pairs - 1 : (size_t)hi_at];
    out->growth_bytes = median * (double)(n - 1);
    /* Residuals around the fitted line, their median, then the spread. */
    double *res = slopes;           /* reuse: pairs >= m for m >= 3 */
    for (size_t i = 0; i < m; i++)
        res[i] = y[i] - median * x[i];
    qsort(res, m, sizeof(double), cmp_double);
    double mid = res[m / 2];
    for (size_t i = 0; i < m; i++)
        res[i] = fabs(res[i] - mid);
    qsort(res, m, sizeof(double), cmp_double);
    out->noise_bytes = 1.4826 * res[m / 2];

    uint64_t min_growth = min_growth_bytes ? min_growth_bytes : DEFAULT_MIN_GROWTH;
    out->leaking = out->slope_low > 0 && out->growth_bytes >= (double)min_growth &&
                   out->growth_bytes > 2.0 * out->noise_bytes;
    free(x);
    free(y);
    free(slopes);
    return 0;
}

static void format_signed(double bytes, char *buf, size_t cap)
{
    char text[32];
    vram_size_format((uint64_t)fabs(bytes), text, sizeof(text));
    snprintf(buf, cap, "%s%s", bytes < 0 ? "-" : "", text);
}

int vram_trend_describe(const vram_trend *t, const char *unit, char *buf, size_t cap)
{
    if (!unit)
        unit = "iteration";
    if (!t || !t->n)
        return snprintf(buf, cap, "no trend (too few samples)");
    char slope[40], lo[40], hi[40];
    format_signed(t->slope_bytes, slope, sizeof(slope));
    format_signed(t->slope_low, lo, sizeof(lo));
    format_signed(t->slope_high, hi, sizeof(hi));
    if (t->leaking)
        return snprintf(buf, cap, "growing %s per %s over %zu %ss (95%% CI %s .. %s)", slope, unit,
                        t->n, unit, lo, hi);
    return snprintf(buf, cap, "flat over %zu %ss (slope %s per %s, 95%% CI %s .. %s)", t->n, unit,
                    slope, unit, lo, hi);
}
