/* SPDX-License-Identifier: MIT */
/*
 * cli/cmd_plan.c - `vram plan`: the tier, memory mode, precision and
 * allocator setting to run a model with on a given budget, as text, JSON,
 * KEY=value lines or shell exports.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const cli_flag flags[] = {
    { "model", 'm', "NAME", "the model's profile (see 'vram profiles')", false },
    { "profile", 0, "FILE", "a profile file, instead of --model NAME", false },
    { "set", 's', "KEY=VALUE", "a setting the tiers must keep (repeatable; bare KEY=VALUE too)", true },
    { "vram", 0, "SIZE", "plan for this budget", false },
    { "device", 'd', "N", "plan for GPU N's safe available memory now (default: GPU 0)", false },
    { "format", 'f', "FORMAT", "text (default), json, env (KEY=value) or shell (export lines)", false },
    { "json", 0, NULL, "the same as --format json", false },
    { NULL, 0, NULL, NULL, false },
};

static int run(cli_args *a)
{
    const char *format = cli_has(a, "json") ? "json" : cli_get(a, "format");
    if (cli_has(a, "json") && cli_get(a, "format") && strcmp(cli_get(a, "format"), "json"))
        return cli_error(a, EXIT_USAGE, "--json is --format json: not with --format '%s'", cli_get(a, "format"));
    if (!format)
        format = "text";
    if (strcmp(format, "text") && strcmp(format, "json") && strcmp(format, "env") &&
        strcmp(format, "shell"))
        return cli_error(a, EXIT_USAGE, "--format: '%s' is not one of text|json|env|shell", format);
    const char **settings;
    size_t n;
    vram_profile *p = NULL;
    vram_ctx *ctx = NULL;
    vram_plan *plan = NULL;
    uint64_t budget;
    unsigned device;
    int rc = cli_settings(a, &settings, &n);
    if (rc)
        return rc;
    if ((rc = cli_profile(a, &p)) || (rc = cli_budget(a, true, false, &ctx, &budget, &device)))
        goto out;
    /* The "mode" option (--mode, VRAM_MODE) forces a tier; pass it on as a
     * setting so that it works without a context too. */
    const char *mode = vram_options_get(a->opts, "mode");
    char forced[96];
    bool given = false;
    for (size_t i = 0; i < n; i++)
        given |= !strncmp(settings[i], "tier=", 5);
    if (!ctx && !given && mode && *mode && strcmp(mode, "auto")) {
        snprintf(forced, sizeof(forced), "tier=%s", mode);
        settings[n++] = forced;
    }
    /* In JSON a plan is printed also when nothing fits: the smallest one,
     * with the refusal and what to change; the exit status still says it. */
    bool json = !strcmp(format, "json");
    rc = json ? vram_plan_make_any(ctx, p, settings, n, budget, device, &plan)
              : vram_plan_make(ctx, p, settings, n, budget, device, &plan);
    if (rc == VRAM_ENOFIT && plan) {
        char *text;
        int frc = vram_plan_format(plan, "json", &text);
        if (!frc) {
            puts(text);
            vram_free(text);
        }
        rc = cli_fail(a, rc, NULL);
        goto out;
    }
    if (rc) {
        rc = cli_fail(a, rc, NULL);
        goto out;
    }
    char *text;
    if ((rc = vram_plan_format(plan, format, &text))) {
        rc = cli_fail(a, rc, NULL);
        goto out;
    }
    fputs(text, stdout);
    if (!strcmp(format, "json"))
        fputc('\n', stdout);
    vram_free(text);
out:
    free(settings);
    vram_plan_free(plan);
    vram_profile_free(p);
    vram_ctx_close(ctx);
    return rc;
}

const cli_command cmd_plan = {
    .name = "plan",
    .usage = "--model NAME [--vram SIZE | --device N] [--set KEY=VALUE ...] [--format FORMAT]",
    .summary = "pick the tier, memory mode and allocator settings that fit a budget",
    .description =
        "The tier is the highest of the profile's tiers whose estimate fits the budget\n"
        "(--vram, or GPU N's safe available memory: free less the margin); settings you\n"
        "give override the tier's.  The memory mode is the fastest of beefy (all\n"
        "resident), lightweight (components moved in per stage) and sequential (weights\n"
        "streamed block by block) that fits; memory=MODE forces one.  --mode TIER (or\n"
        "VRAM_MODE=TIER) forces a tier and is refused, with the numbers, when it does\n"
        "not fit.  The plan gives PYTORCH_CUDA_ALLOC_CONF for the budget and, in JSON,\n"
        "accelerate's max_memory and a device map.  --format shell prints export lines:\n"
        "eval \"$(vram plan --model M --format shell)\".  When nothing fits, --format json\n"
        "still prints the smallest plan with \"fits\": false, the refusal in \"why\",\n"
        "\"needs_bytes\", and \"change\": what would make it fit (exit status 3).\n"
        "Exit status: 0; 2 bad input (unknown model, setting or tier); 3 nothing fits.",
    .flags = flags,
    .run = run,
};
