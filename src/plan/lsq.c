/* SPDX-License-Identifier: MIT */
/*
 * plan/lsq.c - small weighted least squares with non-negative answers, for
 * calibration.
 *
 * Owns the linear algebra and nothing else: normal equations over at most
 * eight columns, each scaled to unit norm, solved by Gaussian elimination
 * with partial pivoting.  A column whose answer would be negative (a
 * coefficient cannot be) or that the data cannot tell apart from the others
 * is dropped and the rest refitted.
 */
#include <math.h>
#include <string.h>

#include "plan/plan.h"

#define LSQ_MAX 8

/* Solves m x = v (k x k, row-major) in place; false when singular. */
static bool solve(double m[LSQ_MAX * LSQ_MAX], double v[LSQ_MAX], int k)
{
    for (int c = 0; c < k; c++) {
        int piv = c;
        for (int r = c + 1; r < k; r++)
            if (fabs(m[r * k + c]) > fabs(m[piv * k + c]))
                piv = r;
        if (fabs(m[piv * k + c]) < 1e-10)
            return false;
        if (piv != c) {
            for (int j = 0; j < k; j++) {
                double t = m[c * k + j];
                m[c * k + j] = m[piv * k + j];
                m[piv * k + j] = t;
            }
            double t = v[c];
            v[c] = v[piv];
            v[piv] = t;
        }
        for (int r = c + 1; r < k; r++) {
            double f = m[r * k + c] / m[c * k + c];
            for (int j = c; j < k; j++)
                m[r * k + j] -= f * m[c * k + j];
            v[r] -= f * v[c];
        }
    }
    for (int c = k - 1; c >= 0; c--) {
        double s = v[c];
        for (int j = c + 1; j < k; j++)
            s -= m[c * k + j] * v[j];
        v[c] = s / m[c * k + c];
    }
    return true;
}

/* Weighted least squares over the columns in `use` (indices into a's k
 * columns, each divided by scale[]); the answer in x (scaled back). */
static bool fit(const double *a, const double *y, const double *w, int n, int k, const int *use,
                int nuse, const double *scale, double *x)
{
    double m[LSQ_MAX * LSQ_MAX], v[LSQ_MAX];
    memset(m, 0, sizeof(m));
    memset(v, 0, sizeof(v));
    for (int i = 0; i < n; i++)
        for (int p = 0; p < nuse; p++) {
            double ap = a[i * k + use[p]] / scale[use[p]];
            v[p] += w[i] * ap * y[i];
            for (int q = 0; q < nuse; q++)
                m[p * nuse + q] += w[i] * ap * a[i * k + use[q]] / scale[use[q]];
        }
    if (!solve(m, v, nuse))
        return false;
    for (int p = 0; p < nuse; p++)
        x[use[p]] = v[p] / scale[use[p]];
    return true;
}

int plan__nnls(const double *a, const double *y, const double *w, int n, int k, double *x)
{
    if (k < 1 || k > LSQ_MAX || n < 1)
        return VRAM_EINVAL;
    double scale[LSQ_MAX], out[LSQ_MAX];
    int use[LSQ_MAX], nuse = 0;
    for (int j = 0; j < k; j++) {
        double s = 0;
        for (int i = 0; i < n; i++)
            s += w[i] * a[i * k + j] * a[i * k + j];
        scale[j] = sqrt(s);
        if (scale[j] > 0)
            use[nuse++] = j;
    }
    while (nuse > 0) {
        memset(out, 0, sizeof(out));
        if (!fit(a, y, w, n, k, use, nuse, scale, out)) {
            /* The data cannot tell the columns apart: keep the first ones
             * (the profile lists the simpler terms first). */
            nuse--;
            continue;
        }
        int worst = -1;
        for (int p = 0; p < nuse; p++)
            if (out[use[p]] < 0 && (worst < 0 || out[use[p]] < out[use[worst]]))
                worst = p;
        if (worst < 0) {
            for (int j = 0; j < k; j++)
                x[j] = out[j];
            return 0;
        }
        memmove(&use[worst], &use[worst + 1], sizeof(int) * (size_t)(nuse - worst - 1));
        nuse--;
    }
    return VRAM_EINVAL;
}
