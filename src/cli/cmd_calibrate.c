/* SPDX-License-Identifier: MIT */
/*
 * cli/cmd_calibrate.c - `vram calibrate`: fits a profile's activation and
 * time coefficients to measured runs and writes a calibrated copy, never
 * over the shipped profile.
 */
#include <math.h>
#include <stdlib.h>

#include "cli/cli.h"

static const cli_flag flags[] = {
    { "model", 'm', "NAME", "the model's profile (see 'vram profiles')", false },
    { "profile", 0, "FILE", "a profile file, instead of --model NAME", false },
    { "from", 0, "FILE", "measurements: CSV with setting columns, peak (a size), seconds", false },
    { "from-history", 0, NULL, "measurements: the finished runs of the model in the run history", false },
    { "out", 'o', "FILE", "where to write the calibrated copy (default: your profiles folder)", false },
    { "force", 0, NULL, "write --out even when it is a file that is not a calibrated copy", false },
    { "dry-run", 'n', NULL, "fit and report, write nothing", false },
    { "json", 0, NULL, "print one JSON document", false },
    { NULL, 0, NULL, NULL, false },
};

static const char *pct(double v, char *buf, size_t cap)
{
    if (isnan(v))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%+.1f%%", v);
    return buf;
}

static void print_rows(const vram_calibration *c)
{
    printf("%4s %11s %11s %11s %8s %9s %9s %9s %8s\n", "ROW", "OBSERVED", "BEFORE", "FIT", "ERROR",
           "SECONDS", "BEFORE", "AFTER", "ERROR");
    for (size_t i = 0; i < vram_calibration_row_count(c); i++) {
        vram_calibration_row r;
        vram_calibration_get_row(c, i, &r);
        char o[32], b[32], f[32], e[16], es[16], s[16];
        snprintf(s, sizeof(s), r.observed_s > 0 ? "%.1f" : "-", r.observed_s);
        printf("%4zu %11s %11s %11s %8s %9s %9.1f %9.1f %8s\n", i + 1,
               r.observed_bytes ? cli_gib(r.observed_bytes, o, sizeof(o)) : "-",
               cli_gib(r.before_bytes, b, sizeof(b)), cli_gib(r.fit_bytes, f, sizeof(f)),
               pct(r.error_pct, e, sizeof(e)), s, r.before_s, r.after_s,
               pct(r.error_s_pct, es, sizeof(es)));
    }
    double mb, ms;
    vram_calibration_median_error(c, &mb, &ms);
    char x[16], y[16];
    printf("median absolute error: memory %s, time %s (FIT is without the safety margin)\n",
           isnan(mb) ? "-" : (snprintf(x, sizeof(x), "%.1f%%", mb), x),
           isnan(ms) ? "-" : (snprintf(y, sizeof(y), "%.1f%%", ms), y));
}

/* The finished runs of the profile in the history, fitted; a vram error. */
static int calibrate_from_history(cli_args *a, const vram_profile *p, vram_calibration **c)
{
    vram_history *h;
    int rc = vram_history_open(vram_options_get(a->opts, "history"), &h);
    if (rc)
        return rc;
    vram_measurement *rows;
    size_t n;
    if ((rc = vram_history_measurements(h, vram_profile_name(p), &rows, &n)) == 0) {
        rc = vram_calibrate(p, rows, n, c);
        vram_history_measurements_free(rows, n);
    }
    vram_history_close(h);
    return rc;
}

static int run(cli_args *a)
{
    if (a->nrest)
        return cli_error(a, EXIT_USAGE, "unexpected argument '%s'", a->rest[0]);
    const char *from = cli_get(a, "from");
    bool history = cli_has(a, "from-history");
    if (!from == !history)
        return cli_error(a, EXIT_USAGE, "give --from FILE (a CSV of measured runs) or --from-history, %s",
                         from ? "not both" : "one of them");
    if (history && cli_history_off(a))  /* as a history with no run of the model */
        return cli_error(a, EXIT_USAGE, "--from-history: %s", CLI_HISTORY_OFF);
    vram_profile *p;
    int rc = cli_profile(a, &p);
    if (rc)
        return rc;
    vram_calibration *c;
    rc = history ? calibrate_from_history(a, p, &c) : vram_calibrate_csv(p, from, &c);
    if (rc) {
        vram_profile_free(p);
        return cli_fail(a, rc, NULL);
    }
    if (history)
        from = "the run history";
    char written[4200] = "";
    if (!cli_has(a, "dry-run") &&
        (rc = vram_calibration_write(c, a->opts, cli_get(a, "out"), cli_has(a, "force"), written,
                                     sizeof(written)))) {
        rc = cli_fail(a, rc, "not written");
        goto out;
    }
    if (cli_has(a, "json")) {
        char *json;
        if ((rc = vram_calibration_json(c, &json))) {
            rc = cli_fail(a, rc, NULL);
            goto out;
        }
        printf("%s\n", json);
        vram_free(json);
    } else {
        /* The paths and the name are the user's: escaped. */
        char name[512], shown_from[4096], shown_out[8192], shown_path[8192];
        printf("calibrated %s from %s (%zu rows)\n", vram_text_escape(vram_profile_name(p), name, sizeof(name)),
               vram_text_escape(from, shown_from, sizeof(shown_from)), vram_calibration_row_count(c));
        print_rows(c);
        if (*written)
            printf("wrote %s (the profile it came from, %s, is unchanged)\n",
                   vram_text_escape(written, shown_out, sizeof(shown_out)),
                   vram_text_escape(vram_profile_path(p), shown_path, sizeof(shown_path)));
        else
            printf("nothing written (--dry-run)\n");
    }
out:
    vram_calibration_free(c);
    vram_profile_free(p);
    return rc;
}

const cli_command cmd_calibrate = {
    .name = "calibrate",
    .usage = "--model NAME (--from FILE | --from-history) [--out FILE] [--force] [--dry-run] [--json]",
    .summary = "fit a profile's activation and time coefficients to measured runs",
    .description =
        "FILE is CSV: a header of setting keys (resolution, frames, steps, memory, ...)\n"
        "plus peak (a size such as 12.5GiB, or peak_bytes) and seconds; then one run a\n"
        "line; '#' starts a comment.  The fit is least squares on relative error over\n"
        "the profile's own terms (a term the profile leaves out stays out).  The\n"
        "calibrated copy keeps the profile's text and comments, marks what changed and\n"
        "goes to --out or your profiles folder (~/.config/vram/profiles), where it is\n"
        "found before the shipped one.  vram never writes over the profile it read.\n"
        "Exit status: 0; 2 bad input (file:line for the CSV); 1 the copy could not be\n"
        "written.",
    .flags = flags,
    .run = run,
};
