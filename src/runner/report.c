/* SPDX-License-Identifier: MIT */
/*
 * runner/report.c - draws recorded memory timelines as an SVG chart.
 *
 * Seconds across, GiB up, one line per run in its own colour, its estimate
 * as a dashed line of the same colour, a legend naming each run.  Two runs
 * side by side (lightweight against beefy, or an attempt that ran out of
 * memory against the rung that finished) is what it is for.  The output is
 * plain SVG 1.1 that any browser shows and any XML parser reads.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/runner.h"

#define W 900
#define H 480
#define LEFT 70
#define RIGHT 30
#define TOP 40
#define BOTTOM 60
#define MAX_RUNS 8
#define GiB 1073741824.0

static const char *colours[MAX_RUNS] = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                         "#9467bd", "#8c564b", "#e377c2", "#17becf" };

typedef struct series {
    vram_run_record rec;
    char command[160], outcome[24];
    vram_point *pts;
    size_t n;
} series;

static void xml_text(vram__buf *b, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '<': vram__buf_puts(b, "&lt;"); break;
        case '>': vram__buf_puts(b, "&gt;"); break;
        case '&': vram__buf_puts(b, "&amp;"); break;
        case '"': vram__buf_puts(b, "&quot;"); break;
        default:
            if ((unsigned char)*s >= 0x20)
                vram__buf_put(b, s, 1);
        }
}

/* A round step for an axis spanning `span` in about `ticks` steps. */
static double nice_step(double span, int ticks)
{
    /* mag: the power of ten at or below raw, bit for bit what
     * pow(10, floor(log10(raw))) gives, without libm (core/core.h says
     * why): below 1 it is 1 / 10^k, one rounding, not k divisions by 10. */
    double raw = span / ticks, mag = 1, inv = 1;
    if (!(raw > 0 && raw < 1e300))
        return raw;
    while (mag * 10 <= raw)
        mag *= 10;
    while (1 / inv > raw)
        inv *= 10;
    if (inv > 1)
        mag = 1 / inv;
    double f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

static int keep_record(void *user, const vram_run_record *r)
{
    series *s = user;
    s->rec = *r;
    vram__strlcpy(s->command, r->command ? r->command : "", sizeof(s->command));
    vram__strlcpy(s->outcome, r->outcome ? r->outcome : "", sizeof(s->outcome));
    s->rec.command = s->command;
    s->rec.outcome = s->outcome;
    s->rec.profile = s->rec.settings = s->rec.note = "";
    return 1;                       /* one row is all */
}

static int load(vram_history *h, int64_t id, series *s)
{
    char arg[32];
    snprintf(arg, sizeof(arg), "%lld", (long long)id);
    memset(s, 0, sizeof(*s));
    int rc = vram__history_each(h, "WHERE id = CAST(? AS INTEGER)", arg, 1, keep_record, s);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return vram__fail(VRAM_ENOENT, "no run %lld in the history", (long long)id);
    return vram__history_timeline(h, id, &s->pts, &s->n);
}

static void axes(vram__buf *b, double max_s, double max_gib)
{
    double pw = W - LEFT - RIGHT, ph = H - TOP - BOTTOM;
    vram__buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"#fff\" "
                     "stroke=\"#333\"/>\n", LEFT, TOP, pw, ph);
    double ys = nice_step(max_gib, 6);
    for (double v = 0; v <= max_gib + 1e-9; v += ys) {
        double y = TOP + ph - v / max_gib * ph;
        vram__buf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                         "<text x=\"%d\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">%g</text>\n",
                         LEFT, y, LEFT + pw, y, LEFT - 6, y + 4, v);
    }
    double xs = nice_step(max_s, 8);
    for (double v = 0; v <= max_s + 1e-9; v += xs) {
        double x = LEFT + v / max_s * pw;
        vram__buf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#eee\"/>"
                         "<text x=\"%.1f\" y=\"%.0f\" font-size=\"12\" text-anchor=\"middle\">%g</text>\n",
                         x, TOP, x, TOP + ph, x, TOP + ph + 16, v);
    }
    vram__buf_printf(b, "<text x=\"%.0f\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\">seconds "
                     "since start</text>\n", LEFT + pw / 2, H - 22);
    vram__buf_printf(b, "<text x=\"16\" y=\"%.0f\" font-size=\"13\" text-anchor=\"middle\" "
                     "transform=\"rotate(-90 16 %.0f)\">GPU memory (GiB)</text>\n",
                     TOP + ph / 2, TOP + ph / 2);
}

static void line(vram__buf *b, const series *s, int i, double max_s, double max_gib)
{
    double pw = W - LEFT - RIGHT, ph = H - TOP - BOTTOM;
    vram__buf_printf(b, "<polyline class=\"run\" data-run=\"%lld\" fill=\"none\" stroke=\"%s\" "
                     "stroke-width=\"2\" points=\"", (long long)s->rec.id, colours[i]);
    for (size_t k = 0; k < s->n; k++)
        vram__buf_printf(b, "%s%.1f,%.1f", k ? " " : "", LEFT + (double)s->pts[k].t_ms / 1000.0 / max_s * pw,
                         TOP + ph - (double)s->pts[k].bytes / GiB / max_gib * ph);
    vram__buf_puts(b, "\"/>\n");
    if (s->rec.estimate_bytes) {
        double y = TOP + ph - (double)s->rec.estimate_bytes / GiB / max_gib * ph;
        vram__buf_printf(b, "<line class=\"estimate\" x1=\"%d\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" "
                         "stroke=\"%s\" stroke-dasharray=\"6 4\"/>\n", LEFT, y, LEFT + pw, y, colours[i]);
    }
    char peak[32], est[32];
    vram_size_format(s->rec.peak_bytes, peak, sizeof(peak));
    vram_size_format(s->rec.estimate_bytes, est, sizeof(est));
    vram__buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"%s\">run %lld (attempt %u, %s, "
                     "peak %s, estimate %s): ", LEFT + 8, TOP + 16 + 16 * i, colours[i],
                     (long long)s->rec.id, s->rec.attempt, s->rec.outcome, peak, est);
    xml_text(b, s->command);
    vram__buf_puts(b, "</text>\n");
}

int vram_history_report_svg(vram_history *h, const int64_t *ids, size_t n, char **svg_out)
{
    if (!h || !ids || !svg_out)
        return vram__fail(VRAM_EINVAL, "vram_history_report_svg: NULL argument");
    *svg_out = NULL;
    if (n == 0 || n > MAX_RUNS)
        return vram__fail(VRAM_EINVAL, "a report draws 1 to %d runs, not %zu", MAX_RUNS, n);
    series *s = calloc(n, sizeof(*s));
    if (!s)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    int rc = 0;
    double max_s = 1, max_gib = 0.5;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = load(h, ids[i], &s[i]);
        double est = (double)s[i].rec.estimate_bytes / GiB;
        if (est > max_gib)
            max_gib = est;
        for (size_t k = 0; !rc && k < s[i].n; k++) {
            if ((double)s[i].pts[k].t_ms / 1000.0 > max_s)
                max_s = (double)s[i].pts[k].t_ms / 1000.0;
            if ((double)s[i].pts[k].bytes / GiB > max_gib)
                max_gib = (double)s[i].pts[k].bytes / GiB;
        }
    }
    if (!rc) {
        double ys = nice_step(max_gib * 1.1, 6);
        max_gib = ceil(max_gib * 1.1 / ys) * ys;
        max_s = ceil(max_s / nice_step(max_s, 8)) * nice_step(max_s, 8);
        vram__buf b;
        vram__buf_init(&b);
        vram__buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
                         "version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                         "font-family=\"sans-serif\">\n<title>vram report</title>\n"
                         "<rect width=\"%d\" height=\"%d\" fill=\"#fafafa\"/>\n", W, H, W, H, W, H);
        vram__buf_printf(&b, "<text x=\"%d\" y=\"24\" font-size=\"15\" font-weight=\"bold\">GPU memory "
                         "of %zu run%s over time</text>\n", LEFT, n, n == 1 ? "" : "s");
        axes(&b, max_s, max_gib);
        for (size_t i = 0; i < n; i++)
            line(&b, &s[i], (int)i, max_s, max_gib);
        vram__buf_puts(&b, "</svg>\n");
        *svg_out = vram__buf_take(&b, &rc);
    }
    for (size_t i = 0; i < n; i++)
        free(s[i].pts);
    free(s);
    return rc;
}
