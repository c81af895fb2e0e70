/* SPDX-License-Identifier: MIT */
/*
 * cli/cmd_estimate.c - `vram estimate`: what one run of a model needs at
 * given settings: peak GPU bytes and what makes them, host RAM, time, and
 * the same for every memory mode.
 */
#include <stdlib.h>

#include "cli/cli.h"

static const cli_flag flags[] = {
    { "model", 'm', "NAME", "the model's profile (see 'vram profiles')", false },
    { "profile", 0, "FILE", "a profile file, instead of --model NAME", false },
    { "set", 's', "KEY=VALUE", "a setting (repeatable; bare KEY=VALUE words also count)", true },
    { "vram", 0, "SIZE", "a budget: memory=auto then takes the fastest mode that fits it", false },
    { "device", 'd', "N", "the budget is GPU N's safe available memory now", false },
    { "json", 0, NULL, "print one JSON document (bytes as integers)", false },
    { NULL, 0, NULL, NULL, false },
};

static int run(cli_args *a)
{
    const char **settings;
    size_t n;
    vram_profile *p = NULL;
    vram_ctx *ctx = NULL;
    uint64_t budget;
    unsigned device;
    int rc = cli_settings(a, &settings, &n);
    if (rc)
        return rc;
    if ((rc = cli_profile(a, &p)) || (rc = cli_budget(a, false, true, &ctx, &budget, &device)))
        goto out;
    vram_estimate e;
    int fit = vram_estimate_run(p, settings, n, budget, &e);
    if (fit && fit != VRAM_ENOFIT) {
        rc = cli_fail(a, fit, NULL);
        goto out;
    }
    char *text;
    rc = cli_has(a, "json") ? vram_estimate_json(p, settings, n, budget, &text)
                            : vram_estimate_text(p, settings, n, budget, &text);
    if (rc) {
        rc = cli_fail(a, rc, NULL);
        goto out;
    }
    fputs(text, stdout);
    if (cli_has(a, "json"))
        fputc('\n', stdout);
    vram_free(text);
    rc = fit ? EXIT_NOFIT : EXIT_OK;
out:
    free(settings);
    vram_profile_free(p);
    vram_ctx_close(ctx);
    return rc;
}

const cli_command cmd_estimate = {
    .name = "estimate",
    .usage = "--model NAME [--set KEY=VALUE ...] [KEY=VALUE ...] [--vram SIZE | --device N] [--json]",
    .summary = "estimate a run's peak GPU memory (with its breakdown), host RAM and time",
    .description =
        "Settings not given take the profile's defaults.  Keys: resolution (1280x720, 720p,\n"
        "512px), width, height, frames or duration (8, 8s; with fps), fps, steps, batch,\n"
        "cfg (on|off), lora (count), precision (fp32|bf16|fp16|int8), memory\n"
        "(auto|beefy|lightweight|sequential), vae_tiling (on|off), chunk (frames per\n"
        "chunk), cpu (components on the CPU), skip (optional stages), audio (seconds),\n"
        "resident (0-0.9), tier (a tier's settings first).\n"
        "The peak is weights + the largest stage's activations + CUDA context and\n"
        "allocator slack + the profile's margin.  Times are for the profile's reference\n"
        "card.  memory=auto with no budget estimates beefy, the fastest.\n"
        "Exit status: 0; 2 bad input; 3 a budget was given and nothing fits it.",
    .flags = flags,
    .run = run,
};
