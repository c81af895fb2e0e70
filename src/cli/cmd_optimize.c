/* SPDX-License-Identifier: MIT */
/*
 * cli/cmd_optimize.c - `vram optimize`: for settings that do not fit, the
 * cheapest change that does, as suggestions in the profile's lever order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const cli_flag flags[] = {
    { "model", 'm', "NAME", "the model's profile (see 'vram profiles')", false },
    { "profile", 0, "FILE", "a profile file, instead of --model NAME", false },
    { "set", 's', "KEY=VALUE", "a setting as wanted (repeatable; bare KEY=VALUE words too)", true },
    { "vram", 0, "SIZE", "the budget to fit", false },
    { "device", 'd', "N", "fit GPU N's safe available memory now (default: GPU 0)", false },
    { "level", 'l', "LEVEL", "how far it may go: basic, balanced (default) or maximum", false },
    { "max-time", 0, "DURATION", "also fit this time on the reference card (e.g. 10m)", false },
    { "json", 0, NULL, "print one JSON document", false },
    { NULL, 0, NULL, NULL, false },
};

/* "+2.9 min", "-4.4 h"; sign "" for a plain duration. */
static const char *seconds_text(double s, const char *sign, char *buf, size_t cap)
{
    double a = fabs(s);
    if (a < 120)
        snprintf(buf, cap, "%s%.0f s", sign, a);
    else if (a < 7200)
        snprintf(buf, cap, "%s%.1f min", sign, a / 60);
    else
        snprintf(buf, cap, "%s%.1f h", sign, a / 3600);
    return buf;
}

static const char *mode_name(int m)
{
    static const char *const names[] = { "auto", "beefy", "lightweight", "sequential" };
    return m >= 0 && m < 4 ? names[m] : "?";
}

static void print_text(const vram_profile *p, const vram_optimization *o, int level)
{
    static const char *const levels[] = { "basic", "balanced", "maximum" };
    char a[32], b[32];
    if (o->fits && o->nsuggestions == 0) {
        printf("%s fits %s as it is: %s (%s); nothing to change\n", vram_profile_name(p),
               cli_gib(o->budget_bytes, b, sizeof(b)), cli_gib(o->before.peak_bytes, a, sizeof(a)),
               mode_name(o->before.memory));
        return;
    }
    printf("%s needs %s (%s) as asked, over %s\n", vram_profile_name(p),
           cli_gib(o->before.peak_bytes, a, sizeof(a)), mode_name(o->before.memory),
           cli_gib(o->budget_bytes, b, sizeof(b)));
    if (o->fits)
        printf("cheapest change that fits (level %s, quality cost %g):\n", levels[level], o->quality_cost);
    else
        printf("nothing fits at level %s; every lever at its most gives:\n", levels[level]);
    printf("  %-11s %-12s %-12s %10s %11s  %s\n", "PARAMETER", "FROM", "TO", "SAVES", "TIME", "REASON");
    for (size_t i = 0; i < o->nsuggestions; i++) {
        const vram_suggestion *s = &o->suggestions[i];
        char saved[32], t[32];
        if (s->saved_bytes >= 0)
            cli_gib((uint64_t)s->saved_bytes, saved, sizeof(saved));
        else
            snprintf(saved, sizeof(saved), "-%.1f GiB", (double)-s->saved_bytes / (1 << 30));
        printf("  %-11s %-12s %-12s %10s %11s  %s\n", s->parameter, s->from, s->to, saved,
               seconds_text(s->seconds_change, s->seconds_change < 0 ? "-" : "+", t, sizeof(t)),
               s->reason);
    }
    char t[32];
    printf("%s: peak %s (%s), about %s on the reference card\n", o->fits ? "after" : "smallest",
           cli_gib(o->after.peak_bytes, a, sizeof(a)), mode_name(o->after.memory),
           seconds_text(o->after.seconds, "", t, sizeof(t)));
}

static int parse_level(const cli_args *a, int *level)
{
    const char *l = cli_get(a, "level");
    static const char *const names[] = { "basic", "balanced", "maximum" };
    *level = VRAM_LEVEL_BALANCED;
    if (!l)
        return 0;
    for (int i = 0; i < 3; i++)
        if (!strcmp(l, names[i])) {
            *level = i;
            return 0;
        }
    return cli_error(a, EXIT_USAGE, "--level: '%s' is not one of basic|balanced|maximum", l);
}

static int run(cli_args *a)
{
    const char **settings;
    size_t n;
    vram_profile *p = NULL;
    vram_ctx *ctx = NULL;
    uint64_t budget, max_ms = 0;
    unsigned device;
    int level;
    int rc = parse_level(a, &level);
    if (rc || (cli_has(a, "max-time") && (rc = cli_duration_ms(a, "max-time", CLI_SECONDS, &max_ms))))
        return rc;
    /* 0 is "no limit" to vram_optimize: asked for, it would drop the limit. */
    if (cli_has(a, "max-time") && max_ms == 0)
        return cli_error(a, EXIT_USAGE, "--max-time: '%s' is no time: give one such as 90s or 10m, "
                         "or leave --max-time out for no limit", cli_get(a, "max-time"));
    if ((rc = cli_settings(a, &settings, &n)))
        return rc;
    if ((rc = cli_profile(a, &p)) || (rc = cli_budget(a, true, true, &ctx, &budget, &device)))
        goto out;
    vram_optimization o;
    int fit = vram_optimize(p, settings, n, budget, level, (double)max_ms / 1000.0, &o);
    if (fit && fit != VRAM_ENOFIT) {
        rc = cli_fail(a, fit, NULL);
        goto out;
    }
    if (cli_has(a, "json")) {
        char *json;
        if ((rc = vram_optimization_json(p, &o, &json))) {
            rc = cli_fail(a, rc, NULL);
            goto out;
        }
        printf("%s\n", json);
        vram_free(json);
    } else {
        print_text(p, &o, level);
    }
    if (fit)
        fprintf(stderr, "vram optimize: %s\n", vram_last_error());
    rc = fit ? EXIT_NOFIT : EXIT_OK;
out:
    free(settings);
    vram_profile_free(p);
    vram_ctx_close(ctx);
    return rc;
}

const cli_command cmd_optimize = {
    .name = "optimize",
    .usage = "--model NAME --vram SIZE|--device N [--set KEY=VALUE ...] [--level LEVEL] [--json]",
    .summary = "find the cheapest change to settings that do not fit",
    .description =
        "Tries the profile's levers in their order (offload an encoder, lightweight then\n"
        "sequential mode, VAE tiling, lower precision, guidance off, smaller batch,\n"
        "fewer frames per chunk, lower resolution, fewer steps), each with a quality\n"
        "cost, and returns the change with the least total cost, then the least time,\n"
        "that fits.  --level bounds the levers: basic (no quality lost), balanced, or\n"
        "maximum.  Each suggestion shows the parameter, from, to, the memory it saves,\n"
        "the time it adds or saves (for the same output), and why.  When nothing fits\n"
        "it says so, with the smallest peak the levers reach.\n"
        "Exit status: 0; 2 bad input; 3 nothing fits.",
    .flags = flags,
    .run = run,
};
