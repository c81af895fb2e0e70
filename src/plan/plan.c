/* SPDX-License-Identifier: MIT */
/*
 * plan/plan.c - chooses what to run: the highest tier whose estimate fits
 * the budget, the fastest memory mode that fits, and the allocator setting
 * for the budget; says why in one line; walks the degradation ladder.
 *
 * Owns the planning policy.  It reads estimates (estimate.c) and, when no
 * budget is given, one device's safe available memory (monitor); printing a
 * plan is format.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/options.h"
#include "monitor/monitor.h"
#include "plan/format.h"

/* ---- memory modes ------------------------------------------------------------ */

/* Whether a peak fits the budget (0: none) as its bytes are given out: a
 * plan's peak in bytes is rounded (plan__bytes), and a job sized at those
 * bytes must fit them again when its runner plans within them. */
static bool within(double peak, uint64_t budget)
{
    return !budget || peak < (double)budget + 0.5;
}

int plan__choose_mode(const vram_profile *p, const plan_params *x, uint64_t budget,
                      plan_estimate all[3], plan_estimate *chosen)
{
    static const int order[3] = { VRAM_MEMORY_BEEFY, VRAM_MEMORY_LIGHTWEIGHT, VRAM_MEMORY_SEQUENTIAL };
    for (int i = 0; i < 3; i++) {
        int rc = plan__estimate_mode(p, x, order[i], &all[i]);
        if (rc)
            return rc;
    }
    /* A command with {args} runs in the mode its words say (resolve.c). */
    for (int i = 0; i < 3; i++) {
        int runs = plan__expressed_mode(p, x, order[i]);
        if (runs != order[i])
            all[i] = all[runs - VRAM_MEMORY_BEEFY];
    }
    if (x->memory != VRAM_MEMORY_AUTO) {
        *chosen = all[x->memory - VRAM_MEMORY_BEEFY];
        return !within(chosen->peak, budget) || !plan__host_fits(x, chosen) ? VRAM_ENOFIT : 0;
    }
    /* The fastest that fits; the order above is the usual one, but a mode
     * can be slower than it looks (a stage on the CPU), so compare. */
    int best = -1, smallest = 0;
    for (int i = 0; i < 3; i++) {
        if (plan__expressed_mode(p, x, order[i]) != order[i])
            continue;               /* the same run as a mode before it */
        if (all[i].peak < all[smallest].peak)
            smallest = i;
        bool fits = within(all[i].peak, budget) && plan__host_fits(x, &all[i]);
        if (fits && (best < 0 || all[i].seconds < all[best].seconds))
            best = i;
    }
    *chosen = all[best >= 0 ? best : smallest];
    return best >= 0 ? 0 : VRAM_ENOFIT;
}

/* ---- the plan object ---------------------------------------------------------------- */

static void fill_values(vram_plan *plan)
{
    for (int k = 0; k < PLAN_NKEYS; k++)
        plan__param_text(&plan->prof, &plan->x, k, plan->values[k], sizeof(plan->values[k]));
    if (plan->tier >= 0)
        vram__strlcpy(plan->values[PLAN_KEY_TIER], plan->prof.tier[plan->tier].name,
                      sizeof(plan->values[0]));
    vram__strlcpy(plan->values[PLAN_KEY_MEMORY], plan__memory_name(plan->chosen.mode),
                  sizeof(plan->values[0]));
    plan__alloc_fill(plan);
}

/* The pipeline's words for the plan's values (args.c). */
static void fill_args(vram_plan *plan)
{
    plan->nargs = plan__args_words(&plan->prof, plan->values, plan->args, sizeof(plan->args), plan->arg_at,
                                   PLAN_ARGS_MAX_WORDS);
}

static int new_plan(const vram_profile *p, vram_plan **out)
{
    vram_plan *plan = calloc(1, sizeof(*plan));
    if (!plan)
        return vram__fail(VRAM_ENOMEM, "out of host memory making a plan");
    plan->prof = *p;
    plan->prof.text = NULL;         /* the plan needs the numbers, not the file */
    plan->tier = -1;
    *out = plan;
    return 0;
}

/* "<mode> needs X" for the modes faster than the chosen one that did not
 * fit, then the choice. */
static void why_mode(vram_plan *plan, const plan_params *x, vram__buf *b)
{
    char a[32], c[32];
    const char *budget_word = plan->from_device ? "safe" : "budget";
    if (x->memory != VRAM_MEMORY_AUTO) {
        vram__buf_printf(b, "memory=%s as asked: %s", plan__memory_name(x->memory),
                         plan__gib(plan->chosen.peak, a, sizeof(a)));
        return;
    }
    int shown = 0;
    for (int i = 0; i < 3; i++) {
        const plan_estimate *e = &plan->modes[i];
        if (e->mode == plan->chosen.mode)
            break;
        if (!within(e->peak, plan->budget))
            vram__buf_printf(b, "%s%s needs %s", shown++ ? ", " : "", plan__memory_name(e->mode),
                             plan__gib(e->peak, a, sizeof(a)));
        else if (!plan__host_fits(x, e))
            vram__buf_printf(b, "%s%s needs %s of host RAM, %s here", shown++ ? ", " : "",
                             plan__memory_name(e->mode), plan__gib(e->host, a, sizeof(a)),
                             plan__gib(x->host_limit, c, sizeof(c)));
    }
    if (shown)
        vram__buf_printf(b, ", %s %s: %s, %s", plan__gib((double)plan->budget, c, sizeof(c)),
                         budget_word, plan__memory_name(plan->chosen.mode),
                         plan__gib(plan->chosen.peak, a, sizeof(a)));
    else if (plan->budget)
        vram__buf_printf(b, "%s fits: %s of %s %s", plan__memory_name(plan->chosen.mode),
                         plan__gib(plan->chosen.peak, a, sizeof(a)),
                         plan__gib((double)plan->budget, c, sizeof(c)), budget_word);
    else
        vram__buf_printf(b, "no budget given: %s, the fastest, %s", plan__memory_name(plan->chosen.mode),
                         plan__gib(plan->chosen.peak, a, sizeof(a)));
}

static void finish_why(vram_plan *plan, const char *tier_why)
{
    vram__buf b;
    vram__buf_init(&b);
    if (*tier_why)
        vram__buf_printf(&b, "%s; ", tier_why);
    why_mode(plan, &plan->x, &b);
    vram__strlcpy(plan->why, b.data ? b.data : "", sizeof(plan->why));
    vram__buf_free(&b);
}

static const char *budget_text(const vram_plan *plan, char *buf, size_t cap)
{
    char g[32];
    snprintf(buf, cap, "the %s %s", plan__gib((double)plan->budget, g, sizeof(g)),
             plan->from_device ? "safe available" : "budget");
    return buf;
}

static int refuse_forced(vram_plan *plan, const char *name)
{
    char a[32], b[64];
    if (plan->budget && within(plan->chosen.peak, plan->budget) &&
        !plan__host_fits(&plan->x, &plan->chosen)) {
        char h[32], l[32];
        return vram__fail(VRAM_ENOFIT, "tier '%s' (forced) fits %s on the GPU but its offload "
                          "needs %s of host RAM, over the %s this host has (--host-ram)", name,
                          budget_text(plan, b, sizeof(b)), plan__gib(plan->chosen.host, h, sizeof(h)),
                          plan__gib(plan->x.host_limit, l, sizeof(l)));
    }
    return vram__fail(VRAM_ENOFIT, "tier '%s' (forced) needs %s at the least (%s), over %s", name,
                      plan__gib(plan->chosen.peak, a, sizeof(a)), plan__memory_name(plan->chosen.mode),
                      budget_text(plan, b, sizeof(b)));
}

/* What fits both the budget and the host's RAM, as the optimizer finds it
 * from the profile's defaults: "what fits: precision=int8 (beefy, 72.5
 * GiB, no host RAM pinned)"; empty when it finds nothing. */
static void suggest(const vram_plan *plan, char *buf, size_t cap)
{
    vram_optimization *o = calloc(1, sizeof(*o));
    buf[0] = '\0';
    if (!o)
        return;
    if (vram_optimize(&plan->prof, NULL, 0, plan->budget, VRAM_LEVEL_BALANCED, 0, o) == 0 &&
        o->fits && o->nsuggestions) {
        size_t n = (size_t)snprintf(buf, cap, "what fits (vram optimize):");
        for (size_t i = 0; i < o->nsuggestions && n < cap; i++)
            n += (size_t)snprintf(buf + n, cap - n, " %s=%s", o->suggestions[i].parameter,
                                  o->suggestions[i].to);
        char a[32], h[32];
        if (n < cap)
            snprintf(buf + n, cap - n, " (%s, %s; %s of host RAM)",
                     plan__memory_name(o->after.memory), plan__gib((double)o->after.peak_bytes, a, sizeof(a)),
                     plan__gib((double)o->after.host_bytes, h, sizeof(h)));
    }
    vram__clear_error();
    free(o);
}

static int refuse_all(vram_plan *plan)
{
    char a[32], b[64];
    const vram_profile *p = &plan->prof;
    if (plan->budget && within(plan->chosen.peak, plan->budget) && !plan__host_fits(&plan->x, &plan->chosen)) {
        char h[32], l[32], what[256] = "";
        suggest(plan, what, sizeof(what));
        return vram__fail(VRAM_ENOFIT, "%s fits %s on the GPU (%s, %s) but its offload needs %s of "
                          "host RAM, over the %s this host has (--host-ram); %s", p->name,
                          budget_text(plan, b, sizeof(b)), plan__memory_name(plan->chosen.mode),
                          plan__gib(plan->chosen.peak, a, sizeof(a)),
                          plan__gib(plan->chosen.host, h, sizeof(h)),
                          plan__gib(plan->x.host_limit, l, sizeof(l)),
                          *what ? what : "'vram optimize' says what to give up");
    }
    if (p->ntier)
        return vram__fail(VRAM_ENOFIT, "nothing fits %s: the lowest tier, %s, needs %s at the least "
                          "(%s); 'vram optimize' says what else to give up",
                          budget_text(plan, b, sizeof(b)), p->tier[0].name,
                          plan__gib(plan->chosen.peak, a, sizeof(a)),
                          plan__memory_name(plan->chosen.mode));
    return vram__fail(VRAM_ENOFIT, "%s does not fit %s: it needs %s at the least (%s); 'vram "
                      "optimize' says what to give up", p->name, budget_text(plan, b, sizeof(b)),
                      plan__gib(plan->chosen.peak, a, sizeof(a)), plan__memory_name(plan->chosen.mode));
}

/* The tier the ctx's "mode" option forces (VRAM_MODE), "" for none; the
 * environment stands for the options without a ctx. */
static void mode_option(vram_ctx *ctx, char *buf, size_t cap)
{
    vram_options *own = NULL;
    const vram_options *o = ctx ? vram_ctx_options(ctx) : NULL;
    if (!o && vram_options_new(&own) == 0) {
        vram__options_load_env_lenient(own);
        o = own;
    }
    vram__strlcpy(buf, o ? vram__opt_str(o, VRAM__OPT_MODE) : "", cap);
    vram_options_free(own);
}

/* Copies what the resolver chose into the plan. */
static void take(vram_plan *plan, const plan_resolved *r)
{
    plan->x = r->x;
    plan->tier = r->tier;
    plan->tier_forced = r->tier_forced;
    memcpy(plan->modes, r->modes, sizeof(plan->modes));
    plan->chosen = r->chosen;
    plan->fits = r->fits;
}

static int device_budget(vram_ctx *ctx, unsigned device, uint64_t *out)
{
    if (!ctx)
        return vram__fail(VRAM_EINVAL, "no budget given and no context to ask a device");
    vram_device_snapshot d;
    int rc = vram__snapshot_device(ctx, device, false, &d);
    if (rc)
        return rc;
    if (d.safe_available_bytes == 0)
        return vram__fail(VRAM_ENOFIT, "device %u has no safe available memory (free %llu bytes, "
                          "margin %llu)", device, (unsigned long long)d.info.free_bytes,
                          (unsigned long long)d.margin_bytes);
    *out = d.safe_available_bytes;
    return 0;
}

static int make(vram_ctx *ctx, const vram_profile *p, const char *const *settings, size_t n,
                uint64_t budget_bytes, unsigned device, bool for_args, bool keep_refused, vram_plan **out)
{
    if (!out || !p || (n && !settings))
        return vram__fail(VRAM_EINVAL, "vram_plan_make: NULL argument");
    *out = NULL;
    vram_plan *plan = NULL;
    int rc = new_plan(p, &plan);
    if (rc)
        return rc;
    plan->prof.base.args_modes = for_args;
    plan->budget = budget_bytes;
    plan->device = device;
    rc = plan__host_limit(ctx, &plan->prof.base.host_limit);
    if (!rc && !budget_bytes) {
        plan->from_device = true;
        rc = device_budget(ctx, device, &plan->budget);
    }
    char mode[128];
    mode_option(ctx, mode, sizeof(mode));
    plan_resolved r;
    if (!rc)
        rc = plan__settings_resolve(&plan->prof, settings, n, plan->budget, mode, true, &r);
    if (!rc) {
        take(plan, &r);
        if (!r.fits)
            rc = r.tier_forced ? refuse_forced(plan, p->tier[r.tier].name) : refuse_all(plan);
        if (rc == VRAM_ENOFIT && keep_refused) {
            /* The refusal, with what would change it: the message in why,
             * the optimizer's cheapest way to fit (if any) in change. */
            char message[sizeof(plan->why)];
            vram__strlcpy(message, vram_last_error(), sizeof(message));
            plan->refused = true;
            vram_optimize(p, settings, n, plan->budget, VRAM_LEVEL_MAXIMUM, 0, &plan->change);
            vram__strlcpy(plan->why, message, sizeof(plan->why));
            fill_values(plan);
            fill_args(plan);
            vram__fail(VRAM_ENOFIT, "%s", message);
            *out = plan;
            return VRAM_ENOFIT;
        }
    }
    if (!rc) {
        char why[512] = "", b[64];
        if (r.tier_forced)
            snprintf(why, sizeof(why), "tier forced");
        else if (*r.tier_why)
            snprintf(why, sizeof(why), "%s, over %s", r.tier_why, budget_text(plan, b, sizeof(b)));
        finish_why(plan, why);
    }
    if (rc) {
        vram_plan_free(plan);
        return rc;
    }
    fill_values(plan);
    fill_args(plan);
    *out = plan;
    return 0;
}

int vram_plan_make(vram_ctx *ctx, const vram_profile *p, const char *const *settings, size_t n,
                   uint64_t budget_bytes, unsigned device, vram_plan **out)
{
    return make(ctx, p, settings, n, budget_bytes, device, false, false, out);
}

int vram__plan_make_for_args(vram_ctx *ctx, const vram_profile *p, const char *const *settings, size_t n,
                             uint64_t budget_bytes, unsigned device, bool for_args, vram_plan **out)
{
    return make(ctx, p, settings, n, budget_bytes, device, for_args, false, out);
}

int vram_plan_make_any(vram_ctx *ctx, const vram_profile *p, const char *const *settings, size_t n,
                       uint64_t budget_bytes, unsigned device, vram_plan **out)
{
    return make(ctx, p, settings, n, budget_bytes, device, false, true, out);
}

void vram_plan_free(vram_plan *plan)
{
    free(plan);
}

/* ---- accessors ------------------------------------------------------------------------- */

const char *vram_plan_tier(const vram_plan *plan)
{
    return plan && plan->tier >= 0 ? plan->prof.tier[plan->tier].name : "";
}

const char *vram_plan_why(const vram_plan *plan)
{
    return plan ? plan->why : "";
}

uint64_t vram_plan_budget(const vram_plan *plan)
{
    return plan ? plan->budget : 0;
}

const char *vram_plan_param(const vram_plan *plan, const char *key)
{
    int k = plan && key ? plan__key_find(key) : -1;
    return k >= 0 ? plan->values[k] : NULL;
}

int vram_plan_param_at(const vram_plan *plan, size_t i, const char **key_out, const char **value_out)
{
    if (!plan || i >= PLAN_NKEYS)
        return VRAM_ENOENT;
    if (key_out)
        *key_out = plan__key_name((int)i);
    if (value_out)
        *value_out = plan->values[i];
    return 0;
}

int vram_plan_has_args(const vram_plan *plan)
{
    return plan && plan->prof.has_args;
}

const char *vram_plan_arg(const vram_plan *plan, size_t i)
{
    return plan && plan->nargs > 0 && i < (size_t)plan->nargs ? plan->args + plan->arg_at[i] : NULL;
}

int vram_plan_estimate(const vram_plan *plan, vram_estimate *out)
{
    if (!plan || !out)
        return vram__fail(VRAM_EINVAL, "vram_plan_estimate: NULL argument");
    return plan__export(&plan->prof, &plan->chosen, out);
}

const char *vram_plan_alloc_conf(const vram_plan *plan)
{
    return plan ? plan->alloc : "";
}

int vram_plan_fits(const vram_plan *plan)
{
    return plan && plan->fits;
}

size_t vram_plan_rung(const vram_plan *plan)
{
    return plan ? plan->rung : 0;
}


/* ---- the ladder -------------------------------------------------------------------------- */

/* The least peak of x over the memory modes (the rest of the plan may
 * still pick any of them). */
static int least_peak(const vram_profile *p, const plan_params *x, double *out)
{
    *out = -1;
    for (int m = VRAM_MEMORY_BEEFY; m <= VRAM_MEMORY_SEQUENTIAL; m++) {
        plan_estimate e;
        int rc = plan__estimate_mode(p, x, m, &e);
        if (rc)
            return rc;
        if (*out < 0 || e.peak < *out)
            *out = e.peak;
    }
    return 0;
}

/* Applies a rung's settings one by one, leaving out any that would raise
 * the least peak: a ladder only ever goes down (512px is no rung for a run
 * already at 96px). */
static int apply_rung(const vram_profile *p, const plan_settings *rung, plan_params *x)
{
    double now;
    int rc = least_peak(p, x, &now);
    for (int i = 0; !rc && i < rung->n; i++) {
        plan_params y = *x;
        double then;
        if ((rc = plan__params_set(p, &y, rung->kv[i])) || (rc = plan__params_finish(p, &y)) ||
            (rc = least_peak(p, &y, &then)))
            break;
        if (then <= now) {
            *x = y;
            now = then;
        }
    }
    return rc;
}

int plan__at_rung(const vram_plan *plan, size_t rung, vram_plan **out)
{
    *out = malloc(sizeof(**out));
    if (!*out)
        return vram__fail(VRAM_ENOMEM, "out of host memory making a plan");
    **out = *plan;
    (*out)->rung = rung;
    return 0;
}

int vram_plan_next_rung(const vram_plan *plan, vram_plan **out)
{
    if (!plan || !out)
        return vram__fail(VRAM_EINVAL, "vram_plan_next_rung: NULL argument");
    *out = NULL;
    const vram_profile *p = &plan->prof;
    if (plan->rung >= (size_t)p->nrung)
        return vram__fail(VRAM_ENOENT, "%s: the ladder is used up (%d rungs)", p->name, p->nrung);
    vram_plan *next = malloc(sizeof(*next));
    if (!next)
        return vram__fail(VRAM_ENOMEM, "out of host memory making a plan");
    *next = *plan;
    next->refused = false;
    int rc = apply_rung(p, &p->rung[plan->rung], &next->x);
    next->rung = plan->rung + 1;
    if (!rc) {
        rc = plan__choose_mode(p, &next->x, next->budget, next->modes, &next->chosen);
        next->fits = rc == 0;
        rc = rc == VRAM_ENOFIT ? 0 : rc;
    }
    if (rc) {
        free(next);
        return rc;
    }
    char rung[32];
    snprintf(rung, sizeof(rung), "rung %zu", next->rung);
    finish_why(next, rung);
    fill_values(next);
    fill_args(next);
    *out = next;
    return 0;
}
