/* SPDX-License-Identifier: MIT */
/*
 * cli/cmd_history.c - `vram history` and `vram report`: what runs really
 * used, as a table, as JSON, and as an SVG chart of their timelines.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

static int open_history(cli_args *a, vram_history **h)
{
    int rc = vram_history_open(vram_options_get(a->opts, "history"), h);
    return rc ? cli_fail(a, rc, "cannot open the run history") : 0;
}

/* ---- history -------------------------------------------------------------------- */

static const cli_flag history_flags[] = {
    { "json", 0, NULL, "print one JSON object: \"runs\", newest first", false },
    { "limit", 'n', "N", "the newest N runs (default 20)", false },
    { "job", 0, "JOB", "only the attempts of this job", false },
    { NULL, 0, NULL, NULL, false },
};

/* The OVER column (how far --enforce soft let a run past its budget) shows
 * only when some run went over. */
static void print_table(const vram_run_record *rows, size_t n)
{
    bool over = false;
    for (size_t i = 0; i < n; i++)
        over = over || rows[i].over_bytes;
    printf("%6s  %-24s %3s  %-19s %8s  %-11s %9s %9s  %s%s\n", "RUN", "JOB", "TRY", "STARTED",
           "SECONDS", "OUTCOME", "PEAK", "ESTIMATE", over ? "     OVER  " : "", "COMMAND");
    for (size_t i = 0; i < n; i++) {
        const vram_run_record *r = &rows[i];
        time_t t = (time_t)(r->started_unix_ms / 1000);
        char when[32], p[32], e[32], o[32], col[48] = "", job[128], command[256];
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
        if (over)
            snprintf(col, sizeof(col), "%9s  ", r->over_bytes ? cli_gib(r->over_bytes, o, sizeof(o)) : "-");
        printf("%6lld  %-24.24s %3u  %-19s %8.1f  %-11s %9s %9s  %s%.60s\n",
               (long long)r->id, vram_text_escape(r->job, job, sizeof(job)),
               r->attempt, when, (double)r->duration_ms / 1000.0, r->outcome,
               cli_gib(r->peak_bytes, p, sizeof(p)), cli_gib(r->estimate_bytes, e, sizeof(e)), col,
               vram_text_escape(r->command, command, sizeof(command)));
    }
}

static int run_history(cli_args *a)
{
    if (a->nrest)
        return cli_error(a, EXIT_USAGE, "unexpected argument '%s'", a->rest[0]);
    uint64_t limit = 20;
    int rc;
    if (cli_has(a, "limit") && (rc = cli_uint(a, "limit", 1, 1000000, &limit)))
        return rc;
    if (cli_history_off(a)) {   /* as an empty history: nothing to list */
        if (cli_has(a, "json")) {
            printf("{\"runs\":[]}\n");
            fprintf(stderr, "vram history: no runs recorded: %s\n", CLI_HISTORY_OFF);
        } else {
            printf("no runs recorded: %s\n", CLI_HISTORY_OFF);
        }
        return EXIT_OK;
    }
    vram_history *h;
    if ((rc = open_history(a, &h)))
        return rc;
    if (cli_has(a, "json")) {
        char *json;
        if (!(rc = vram_history_json(h, (unsigned)limit, cli_get(a, "job"), &json))) {
            printf("{\"runs\":%s}\n", json);     /* the one --json shape: named lists */
            vram_free(json);
        }
    } else {
        vram_run_record *rows;
        size_t n;
        if (!(rc = vram_history_list(h, (unsigned)limit, cli_get(a, "job"), &rows, &n))) {
            char job[256], path[4096];
            if (n == 0 && cli_has(a, "job"))
                printf("no runs of job %s in %s\n", vram_text_escape(cli_get(a, "job"), job, sizeof(job)),
                       vram_text_escape(vram_history_path(h), path, sizeof(path)));
            else if (n == 0)
                printf("no runs recorded yet in %s\n", vram_text_escape(vram_history_path(h), path, sizeof(path)));
            else
                print_table(rows, n);
            vram_history_rows_free(rows, n);
        }
    }
    if (rc)
        rc = cli_fail(a, rc, NULL);
    vram_history_close(h);
    return rc;
}

const cli_command cmd_history = {
    .name = "history",
    .usage = "[--limit N] [--job JOB] [--json]",
    .summary = "list the runs vram has recorded: command, outcome, estimate and real peak",
    .description = "The history is an SQLite database: --history PATH or VRAM_HISTORY, by default\n"
                   "$XDG_STATE_HOME/vram/history.db (~/.local/state/vram/history.db).",
    .flags = history_flags,
    .run = run_history,
};

/* ---- report -------------------------------------------------------------------- */

static const cli_flag report_flags[] = {
    { "output", 'o', "FILE", "where to write the SVG (default vram-report-RUN[-RUN].svg; - for stdout)", false },
    { NULL, 0, NULL, NULL, false },
};

static int run_report(cli_args *a)
{
    if (a->nrest < 1 || a->nrest > 8)
        return cli_error(a, EXIT_USAGE, "give 1 to 8 run numbers (see 'vram history')");
    int64_t ids[8];
    char name[256] = "vram-report";
    for (int i = 0; i < a->nrest; i++) {
        uint64_t v;
        if (!cli_parse_uint(a->rest[i], 1, INT64_MAX, &v))
            return cli_error(a, EXIT_USAGE, "'%s' is not a run number (a whole number from 1, see 'vram history')",
                             a->rest[i]);
        ids[i] = (int64_t)v;
        snprintf(name + strlen(name), sizeof(name) - strlen(name), "-%llu", (unsigned long long)v);
    }
    strncat(name, ".svg", sizeof(name) - strlen(name) - 1);
    const char *out = cli_has(a, "output") ? cli_get(a, "output") : name;
    if (!*out)
        return cli_error(a, EXIT_USAGE, "--output needs a file name (or - for stdout), not ''");
    if (cli_history_off(a))     /* as a run not in the history */
        return cli_error(a, EXIT_USAGE, "no run %s: %s", a->rest[0], CLI_HISTORY_OFF);
    vram_history *h;
    int rc = open_history(a, &h);
    if (rc)
        return rc;
    char *svg;
    rc = vram_history_report_svg(h, ids, (size_t)a->nrest, &svg);
    vram_history_close(h);
    if (rc)
        return cli_fail(a, rc, NULL);
    if (!strcmp(out, "-")) {
        fputs(svg, stdout);
    } else {
        FILE *f = fopen(out, "w");
        if (!f || fputs(svg, f) < 0 || fclose(f) != 0) {
            vram_free(svg);
            return cli_error(a, EXIT_FAIL, "cannot write %s", out);
        }
        printf("wrote %s\n", out);
    }
    vram_free(svg);
    return EXIT_OK;
}

const cli_command cmd_report = {
    .name = "report",
    .usage = "RUN [RUN...] [-o FILE]",
    .summary = "draw the memory timeline of runs side by side as an SVG chart",
    .description = "RUN is a number from 'vram history'.  Two runs side by side compare, say, a\n"
                   "lightweight and a beefy run, or an attempt that ran out of memory and the rung\n"
                   "that finished.",
    .flags = report_flags,
    .run = run_report,
};
