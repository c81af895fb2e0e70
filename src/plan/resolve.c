/* SPDX-License-Identifier: MIT */
/*
 * plan/resolve.c - the one place where "key=value" settings become the
 * parameters of a run: the profile's defaults, then a tier's settings,
 * then the caller's, then the memory mode for a budget.
 *
 * Owns the order in which settings apply and how a tier is found: named by
 * tier=, by a default the caller passes (the "mode" option), or picked as
 * the highest that fits.  Every caller that turns settings into a run (the
 * planner, the estimator, the optimizer, calibration) goes through here, so
 * the same settings give the same parameters and the same errors
 * everywhere.  It never talks to a device: the budget is given.
 *
 * A plan for a command with {args} runs in the words its profile's [args]
 * gives the memory mode, so only the modes those words tell apart are
 * modes of that run: where two modes have the same words (Wan's
 * generate.py has `--offload_model True` for lightweight and sequential),
 * the command runs in the less frugal of them, and that is what is
 * estimated and chosen.  An [args] with no memory line at all says nothing
 * of the mode (the script keeps its own ways, which the profile's figures
 * describe), and leaves the modes as they are.
 */
#include <stdio.h>
#include <string.h>

#include "plan/format.h"

/* The tier the settings name with tier= (the last one given), the default
 * name when they name none or "auto", or -1.  A name the profile has no
 * tier of is refused, with the tiers there are. */
static int named_tier(const vram_profile *p, const char *const *settings, size_t n,
                      const char *fallback, int *t_out)
{
    plan_params probe = p->base;
    *t_out = -1;
    int rc = plan__params_apply(p, &probe, settings, n);
    if (rc)
        return rc;
    const char *name = probe.tier;
    if (!*name || !strcmp(name, "auto"))
        name = fallback ? fallback : "";
    if (!*name || !strcmp(name, "auto"))
        return 0;
    *t_out = plan__tier_find(p, name);
    return *t_out < 0 ? plan__unknown_tier(p, name) : 0;
}

int plan__resolve_params(const vram_profile *p, int t, const char *const *settings, size_t n,
                         plan_params *x)
{
    *x = p->base;
    int rc = t >= 0 ? plan__params_apply_list(p, x, &p->tier[t].set) : 0;
    if (!rc)
        rc = plan__params_apply(p, x, settings, n);
    return rc ? rc : plan__params_finish(p, x);
}

/* The words of mode's [args] lines (a line for the mode itself, else one
 * for any mode), one after another, as written; false when [args] has no
 * memory line at all. */
static bool mode_words(const vram_profile *p, int mode, char *buf, size_t cap)
{
    int key = plan__key_find("memory");
    bool any = false;
    const char *name = plan__memory_name(mode);
    bool own = false;
    for (int i = 0; i < p->narg; i++) {
        any |= p->arg[i].key == key;
        own |= p->arg[i].key == key && !strcmp(p->arg[i].value, name);
    }
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < p->narg && used < cap; i++) {
        const plan_arg *a = &p->arg[i];
        if (a->key == key && (own ? !strcmp(a->value, name) : !a->value[0]))
            used += (size_t)snprintf(buf + used, cap - used, "%s\n", a->words);
    }
    return any;
}

int plan__expressed_mode(const vram_profile *p, const plan_params *x, int mode)
{
    if (!x->args_modes || !p->has_args || mode < VRAM_MEMORY_BEEFY || mode > VRAM_MEMORY_SEQUENTIAL)
        return mode;
    char mine[4 * PLAN_TEXT_MAX], other[4 * PLAN_TEXT_MAX];
    if (!mode_words(p, mode, mine, sizeof(mine)))
        return mode;
    for (int m = VRAM_MEMORY_BEEFY; m < mode; m++) {
        mode_words(p, m, other, sizeof(other));
        if (!strcmp(mine, other))
            return m;
    }
    return mode;
}

/* Resolves tier t and its memory mode into out. */
static int resolve_tier(const vram_profile *p, int t, const char *const *settings, size_t n,
                        uint64_t budget, plan_resolved *out)
{
    out->tier = t;
    int rc = plan__resolve_params(p, t, settings, n, &out->x);
    if (rc)
        return rc;
    rc = plan__choose_mode(p, &out->x, budget, out->modes, &out->chosen);
    out->fits = rc == 0;
    return rc == VRAM_ENOFIT ? 0 : rc;
}

int plan__settings_resolve(const vram_profile *p, const char *const *settings, size_t n,
                           uint64_t budget, const char *default_tier, bool pick, plan_resolved *out)
{
    if (!p || !out || (n && !settings))
        return vram__fail(VRAM_EINVAL, "NULL profile or settings");
    memset(out, 0, sizeof(*out));
    out->tier = -1;
    int t, rc = named_tier(p, settings, n, default_tier, &t);
    if (rc)
        return rc;
    if (t >= 0 || !pick || p->ntier == 0) {
        out->tier_forced = t >= 0;
        return resolve_tier(p, t, settings, n, budget, out);
    }
    /* The highest tier that fits; when none does, out holds the lowest. */
    for (t = p->ntier - 1; t >= 0; t--) {
        if ((rc = resolve_tier(p, t, settings, n, budget, out)) || out->fits)
            return rc;
        /* The reason given is the tier just above the one chosen. */
        char a[32];
        snprintf(out->tier_why, sizeof(out->tier_why), "%s needs %s at the least (%s)",
                 p->tier[t].name, plan__gib(out->chosen.peak, a, sizeof(a)),
                 plan__memory_name(out->chosen.mode));
    }
    return 0;
}

int plan__unknown_tier(const vram_profile *p, const char *name)
{
    char list[512] = "";
    for (int i = 0; i < p->ntier; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                 p->tier[i].name);
    return vram__fail(VRAM_EINVAL, "tier '%s' is not a tier of %s (tiers: %s)", name, p->name,
                      p->ntier ? list : "none");
}
