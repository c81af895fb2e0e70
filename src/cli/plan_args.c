/* SPDX-License-Identifier: MIT */
/*
 * cli/plan_args.c - what the planning commands (estimate, plan, optimize,
 * calibrate, profiles) share: the model, the settings, the budget.
 *
 * Settings come from --set KEY=VALUE (repeatable) and from bare KEY=VALUE
 * words, so that `--set resolution=1080p steps=60` reads as it is written.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* Room is left for one more setting the command adds (cmd_plan's tier). */
int cli_settings(const cli_args *a, const char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const char **list = calloc((size_t)a->nrest + 66, sizeof(*list));   /* + NULL */
    if (!list)
        return cli_error(a, EXIT_FAIL, "out of memory");
    const char **set = NULL;
    int nset = 0;
    for (int i = 0; a->cmd->flags[i].name; i++)
        if (!strcmp(a->cmd->flags[i].name, "set")) {
            set = a->values[i];
            nset = a->nvalues[i];
        }
    if (nset > 64) {
        free(list);
        return cli_error(a, EXIT_USAGE, "--set: at most 64 settings");
    }
    for (int i = 0; i < nset; i++)
        list[(*n)++] = set[i];
    int words = a->dashdash >= 0 ? a->dashdash : a->nrest;   /* not the command after -- */
    for (int i = 0; i < words; i++) {
        if (!strchr(a->rest[i], '=')) {
            free(list);
            return cli_error(a, EXIT_USAGE, "unexpected argument '%s' (settings are KEY=VALUE)",
                             a->rest[i]);
        }
        list[(*n)++] = a->rest[i];
    }
    *out = list;
    return 0;
}

int cli_profile(const cli_args *a, vram_profile **p)
{
    const char *model = cli_get(a, "model"), *file = cli_get(a, "profile");
    if (model && file)
        return cli_error(a, EXIT_USAGE, "give --model NAME or --profile FILE, not both");
    if (!model && !file)
        return cli_error(a, EXIT_USAGE, "--model NAME is required (see 'vram profiles'), or --profile FILE");
    int rc = file ? vram_profile_load_file(file, p) : vram_profile_load(a->opts, model, p);
    return rc ? cli_fail(a, rc, NULL) : 0;
}

/* GPU device's safe available memory now, from a snapshot. */
static int device_budget(cli_args *a, vram_ctx *ctx, unsigned device, uint64_t *budget)
{
    vram_snapshot *s;
    int rc = vram_snapshot_take(ctx, NULL, &s);
    if (rc)
        return cli_fail(a, rc, "cannot read the devices");
    bool ok = device < s->ndevices && !s->devices[device].error;
    *budget = ok ? s->devices[device].safe_available_bytes : 0;
    vram_snapshot_free(s);
    if (!ok)
        return cli_error(a, EXIT_USAGE, "--device %u: no such readable device", device);
    if (!*budget)
        return cli_error(a, EXIT_NOFIT, "GPU %u has no safe available memory now", device);
    return 0;
}

int cli_budget(cli_args *a, bool required, bool resolve, vram_ctx **ctx, uint64_t *budget,
               unsigned *device)
{
    *ctx = NULL;
    *budget = 0;
    *device = 0;
    bool vram = cli_has(a, "vram"), dev = cli_has(a, "device");
    if (vram && dev)
        return cli_error(a, EXIT_USAGE, "give --vram SIZE or --device N, not both");
    if (vram) {
        int rc = cli_size(a, "vram", budget);
        if (!rc && *budget == 0)
            rc = cli_error(a, EXIT_USAGE, "--vram: a budget of 0 bytes fits nothing");
        /* No context: the planner reads the host's RAM from VRAM_HOST_RAM
         * alone, so a --host-ram given here must reach it there. */
        const char *host = a->opts ? vram_options_get(a->opts, "host-ram") : NULL;
        if (!rc && host && *host && strcmp(host, "auto") != 0)
            setenv("VRAM_HOST_RAM", host, 1);
        return rc;
    }
    if (!dev && !required)
        return 0;
    uint64_t n = 0;
    if (dev) {
        int rc = cli_uint(a, "device", 0, 4095, &n);
        if (rc)
            return rc;
    }
    *device = (unsigned)n;
    int rc = cli_open(a, ctx);
    if (rc)
        return rc;
    /* A plan for a simulated card says so, where it cannot spoil a JSON. */
    if (vram_ctx_is_simulated(*ctx))
        fprintf(stderr, "vram %s: SIMULATED DEVICES (backend sim): %s\n", a->cmd->name,
                vram_ctx_notice(*ctx));
    return resolve ? device_budget(a, *ctx, *device, budget) : 0;
}
