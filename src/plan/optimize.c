/* SPDX-License-Identifier: MIT */
/*
 * plan/optimize.c - the optimizer: the cheapest change to a run's settings
 * that fits a budget, from the profile's ordered levers.
 *
 * Owns the search.  A lever is a setting with values to try, each with a
 * quality cost; "cheapest" is the least total quality cost, then the least
 * time for the same output.  The search is a depth-first branch and bound
 * over the levers in profile order: a branch is cut when its cost already
 * passes the best found, or when even every remaining lever at its most
 * aggressive value cannot bring the peak under the budget (each lever only
 * ever lowers memory, so that bound is exact).  plan__optimize_exhaustive
 * tries every combination: the reference the tests and the bench hold the
 * search to.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plan/format.h"

#define OPT_MAX_CAND PLAN_MAX_VALUES

/* One lever as it applies to this run: the values still cheaper than the
 * current setting, mildest first. */
typedef struct opt_lever {
    const plan_lever *l;
    int ncand;
    int value[OPT_MAX_CAND];        /* index into l->values */
} opt_lever;

typedef struct opt {
    const vram_profile *p;
    plan_params x0;
    double budget, max_seconds;
    opt_lever lv[PLAN_MAX_LEVERS];
    int nlv;
    unsigned evaluated;
    /* the best so far */
    bool found;
    double best_q, best_s;
    int best_pick[PLAN_MAX_LEVERS];  /* candidate per lever, -1 unchanged */
    int pick[PLAN_MAX_LEVERS];
} opt;

/* ---- ordering values ------------------------------------------------------------ */

static const int memory_rank[] = { 0, 0, 1, 2 };     /* auto counts as beefy */

/* How aggressive value v of key is at x: higher saves more memory.  NAN
 * when it cannot be compared (then it is a candidate when different). */
static double rank_of(const vram_profile *p, int key, const plan_params *x)
{
    switch (key) {
    case PLAN_KEY_RESOLUTION: return -(double)x->width * x->height;
    case PLAN_KEY_FRAMES:
    case PLAN_KEY_DURATION: return -(double)x->frames;
    case PLAN_KEY_FPS: return -x->fps;
    case PLAN_KEY_STEPS: return -(double)x->steps;
    case PLAN_KEY_BATCH: return -(double)x->batch;
    case PLAN_KEY_LORA: return -(double)x->lora;
    case PLAN_KEY_CHUNK: return -(double)(x->chunk ? x->chunk : x->frames + 1u);
    case PLAN_KEY_AUDIO: return -x->audio_s;
    case PLAN_KEY_RESIDENT: return -x->resident;
    case PLAN_KEY_CFG: return x->cfg ? 0 : 1;
    case PLAN_KEY_VAE_TILING: return x->tiling ? 1 : 0;
    case PLAN_KEY_MEMORY: return memory_rank[x->memory];
    case PLAN_KEY_PRECISION: return -plan__dtype_bytes(x->precision);
    case PLAN_KEY_CPU: return __builtin_popcount(x->cpu);
    case PLAN_KEY_SKIP: return __builtin_popcount(x->skip);
    }
    (void)p;
    return NAN;
}

/* Applies value v of lever l to x.  cpu= and skip= add to what is there. */
static int apply(const vram_profile *p, const plan_lever *l, int v, plan_params *x)
{
    char kv[PLAN_SETTING_MAX];
    uint32_t cpu = x->cpu, skip = x->skip;
    snprintf(kv, sizeof(kv), "%s=%s", plan__key_name(l->key), l->values[v]);
    int rc = plan__params_set(p, x, kv);
    if (rc)
        return rc;
    x->cpu |= l->key == PLAN_KEY_CPU ? cpu : 0;
    x->skip |= l->key == PLAN_KEY_SKIP ? skip : 0;
    return plan__params_finish(p, x);
}

/* The values of l that are more aggressive than x's, ordered mildest
 * first. */
static void candidates(const vram_profile *p, const plan_lever *l, const plan_params *x,
                       opt_lever *o)
{
    double now = rank_of(p, l->key, x), rank[OPT_MAX_CAND];
    o->l = l;
    o->ncand = 0;
    for (int v = 0; v < l->nvalues; v++) {
        plan_params y = *x;
        if (apply(p, l, v, &y))
            continue;
        double r = rank_of(p, l->key, &y);
        if (!(r > now))
            continue;
        int at = o->ncand++;
        while (at > 0 && rank[at - 1] > r) {
            rank[at] = rank[at - 1];
            o->value[at] = o->value[at - 1];
            at--;
        }
        rank[at] = r;
        o->value[at] = v;
    }
}

/* ---- evaluating ------------------------------------------------------------------ */

/* Seconds for the same output: fewer videos at once means more runs. */
static double same_output_seconds(const opt *o, const plan_params *x, double seconds)
{
    if (o->x0.batch > x->batch)
        for (int s = 0; s < o->p->nstage; s++)
            if (o->p->stage[s].runs != PLAN_RUNS_FRAME)
                return seconds * o->x0.batch / x->batch;
    return seconds;
}

static int evaluate(opt *o, const plan_params *x, plan_estimate *e, bool *fits)
{
    plan_estimate all[3];
    o->evaluated++;
    int rc = plan__choose_mode(o->p, x, (uint64_t)o->budget, all, e);
    if (rc && rc != VRAM_ENOFIT)
        return rc;
    e->seconds = same_output_seconds(o, x, e->seconds);
    *fits = rc == 0 && (o->max_seconds <= 0 || e->seconds <= o->max_seconds);
    return 0;
}

/* x with levers i.. at their most aggressive: the least memory reachable. */
static void most_aggressive(const opt *o, int i, const plan_params *x, plan_params *out)
{
    *out = *x;
    for (; i < o->nlv; i++)
        for (int c = 0; c < o->lv[i].ncand; c++)
            apply(o->p, o->lv[i].l, o->lv[i].value[c], out);
}

static void consider(opt *o, double q, double seconds)
{
    bool better = !o->found || q < o->best_q - 1e-9 ||
                  (fabs(q - o->best_q) <= 1e-9 && seconds < o->best_s);
    if (!better)
        return;
    o->found = true;
    o->best_q = q;
    o->best_s = seconds;
    memcpy(o->best_pick, o->pick, sizeof(o->pick));
}

static bool over_cost(const opt *o, double q)
{
    return o->found && q > o->best_q + 1e-9;
}

static int visit(opt *o, int i, const plan_params *x, double q, bool changed)
{
    if (over_cost(o, q))
        return 0;
    if (changed) {
        plan_estimate e;
        bool fits;
        int rc = evaluate(o, x, &e, &fits);
        if (rc)
            return rc;
        if (fits)
            consider(o, q, e.seconds);
    }
    if (i == o->nlv)
        return 0;
    plan_params floor;
    most_aggressive(o, i, x, &floor);
    plan_estimate e;
    bool fits;
    int rc = evaluate(o, &floor, &e, &fits);
    if (rc || e.peak > o->budget)
        return rc;                  /* nothing below here fits */
    o->pick[i] = -1;
    if ((rc = visit(o, i + 1, x, q, false)))
        return rc;
    for (int c = 0; c < o->lv[i].ncand; c++) {
        double qc = q + o->lv[i].l->quality[o->lv[i].value[c]];
        if (over_cost(o, qc))
            continue;
        plan_params y = *x;
        if (apply(o->p, o->lv[i].l, o->lv[i].value[c], &y))
            continue;
        o->pick[i] = c;
        if ((rc = visit(o, i + 1, &y, qc, true)))
            return rc;
    }
    o->pick[i] = -1;
    return 0;
}

/* ---- setting up and reporting ---------------------------------------------------- */

static int setup(opt *o, const vram_profile *p, const char *const *settings, size_t n,
                 uint64_t budget, int level, double max_seconds)
{
    memset(o, 0, sizeof(*o));
    o->p = p;
    o->budget = (double)budget;
    o->max_seconds = max_seconds;
    if (!p || (n && !settings))
        return vram__fail(VRAM_EINVAL, "vram_optimize: NULL profile or settings");
    if (!budget)
        return vram__fail(VRAM_EINVAL, "the optimizer needs a budget (--vram SIZE or --device N)");
    if (level < VRAM_LEVEL_BASIC || level > VRAM_LEVEL_MAXIMUM)
        return vram__fail(VRAM_EINVAL, "level %d is not basic, balanced or maximum", level);
    plan_resolved r;
    int rc = plan__settings_resolve(p, settings, n, budget, NULL, false, &r);
    if (rc)
        return rc;
    o->x0 = r.x;
    /* What fits holds host RAM too: the offloading modes pin weights there
     * (VRAM_HOST_RAM, which `vram optimize --host-ram` sets; no context
     * here, so "auto" checks nothing). */
    if (!(o->x0.host_limit > 0) && (rc = plan__host_limit(NULL, &o->x0.host_limit)))
        return rc;                  /* a plan's own profile copy carries its limit */
    bool memory_lever = false;
    for (int i = 0; i < p->nlever; i++)
        memory_lever |= p->lever[i].key == PLAN_KEY_MEMORY && p->lever[i].level <= level;
    if (memory_lever && o->x0.memory == VRAM_MEMORY_AUTO)
        o->x0.memory = VRAM_MEMORY_BEEFY;   /* the lever walks the modes itself */
    for (int i = 0; i < p->nlever; i++) {
        if (p->lever[i].level > level)
            continue;
        candidates(p, &p->lever[i], &o->x0, &o->lv[o->nlv]);
        if (o->lv[o->nlv].ncand)
            o->nlv++;
    }
    for (int i = 0; i < PLAN_MAX_LEVERS; i++)
        o->pick[i] = o->best_pick[i] = -1;
    return 0;
}

static void export_estimate(const opt *o, const plan_estimate *e, vram_estimate *out)
{
    plan__export(o->p, e, out);
}

/* Fills out's suggestions from picks (one per lever, -1 unchanged), each
 * measured against the settings before it. */
static int report(opt *o, const int *picks, vram_optimization *out)
{
    plan_params x = o->x0, y;
    plan_estimate before, after;
    bool fits;
    int rc = evaluate(o, &x, &before, &fits);
    if (rc)
        return rc;
    export_estimate(o, &before, &out->before);
    for (int i = 0; i < o->nlv; i++) {
        if (picks[i] < 0)
            continue;
        const plan_lever *l = o->lv[i].l;
        int v = o->lv[i].value[picks[i]];
        y = x;
        if ((rc = apply(o->p, l, v, &y)) || (rc = evaluate(o, &y, &after, &fits)))
            return rc;
        if (out->nsuggestions < VRAM__ARRAY_LEN(out->suggestions)) {
            vram_suggestion *s = &out->suggestions[out->nsuggestions++];
            vram__strlcpy(s->parameter, plan__key_name(l->key), sizeof(s->parameter));
            plan__param_text(o->p, &x, l->key, s->from, sizeof(s->from));
            plan__param_text(o->p, &y, l->key, s->to, sizeof(s->to));
            s->saved_bytes = (int64_t)vram__llround(before.peak - after.peak);
            s->seconds_change = after.seconds - before.seconds;
            s->quality_cost = l->quality[v];
            vram__strlcpy(s->reason, l->reason, sizeof(s->reason));
            out->quality_cost += l->quality[v];
        }
        x = y;
        before = after;
    }
    export_estimate(o, &before, &out->after);
    return 0;
}

int vram_optimize(const vram_profile *p, const char *const *settings, size_t n, uint64_t budget_bytes,
                  int level, double max_seconds, vram_optimization *out)
{
    if (!out)
        return vram__fail(VRAM_EINVAL, "vram_optimize: NULL output");
    memset(out, 0, sizeof(*out));
    out->budget_bytes = budget_bytes;
    opt o;
    int rc = setup(&o, p, settings, n, budget_bytes, level, max_seconds);
    if (rc)
        return rc;
    if ((rc = visit(&o, 0, &o.x0, 0, true)))
        return rc;
    if (o.found) {
        out->fits = 1;
        rc = report(&o, o.best_pick, out);
        out->evaluated = o.evaluated;
        return rc;
    }
    /* Nothing fits: every lever at its most aggressive is the least peak. */
    int all[PLAN_MAX_LEVERS];
    for (int i = 0; i < o.nlv; i++)
        all[i] = o.lv[i].ncand - 1;
    if ((rc = report(&o, all, out)))
        return rc;
    out->evaluated = o.evaluated;
    char a[32], b[32];
    static const char *const levels[] = { "basic", "balanced", "maximum" };
    /* The levers reach the memory: it was the time limit that nothing met. */
    if (max_seconds > 0 && out->after.peak_bytes <= budget_bytes)
        return vram__fail(VRAM_ENOFIT, "nothing fits %s within %g s at level %s: plans that fit the memory "
                          "(down to a peak of %s) take longer than that%s",
                          plan__gib((double)budget_bytes, a, sizeof(a)), max_seconds, levels[level],
                          plan__gib((double)out->after.peak_bytes, b, sizeof(b)),
                          level < VRAM_LEVEL_MAXIMUM ? " (a higher --level allows more)" : "");
    return vram__fail(VRAM_ENOFIT, "nothing fits %s at level %s: the smallest peak the levers reach is %s%s",
                      plan__gib((double)budget_bytes, a, sizeof(a)), levels[level],
                      plan__gib((double)out->after.peak_bytes, b, sizeof(b)),
                      level < VRAM_LEVEL_MAXIMUM ? " (a higher --level allows more)" : "");
}

/* ---- the reference: every combination ------------------------------------------- */

static int exhaust(opt *o, int i, const plan_params *x, double q)
{
    if (i == o->nlv) {
        plan_estimate e;
        bool fits;
        int rc = evaluate(o, x, &e, &fits);
        if (!rc && fits)
            consider(o, q, e.seconds);
        return rc;
    }
    o->pick[i] = -1;
    int rc = exhaust(o, i + 1, x, q);
    for (int c = 0; !rc && c < o->lv[i].ncand; c++) {
        plan_params y = *x;
        if (apply(o->p, o->lv[i].l, o->lv[i].value[c], &y))
            continue;
        o->pick[i] = c;
        rc = exhaust(o, i + 1, &y, q + o->lv[i].l->quality[o->lv[i].value[c]]);
    }
    o->pick[i] = -1;
    return rc;
}

int plan__optimize_exhaustive(const vram_profile *p, const char *const *settings, size_t n,
                              uint64_t budget_bytes, int level, double max_seconds,
                              vram_optimization *out)
{
    memset(out, 0, sizeof(*out));
    out->budget_bytes = budget_bytes;
    opt o;
    int rc = setup(&o, p, settings, n, budget_bytes, level, max_seconds);
    if (!rc)
        rc = exhaust(&o, 0, &o.x0, 0);
    if (!rc && o.found) {
        out->fits = 1;
        rc = report(&o, o.best_pick, out);
    }
    out->evaluated = o.evaluated;
    return rc ? rc : o.found ? 0 : VRAM_ENOFIT;
}

/* ---- JSON ------------------------------------------------------------------------- */

static void json_public_estimate(vram__json *j, const vram_estimate *e)
{
    vram__json_object_begin(j);
    vram__json_field_string(j, "memory", plan__memory_name(e->memory));
    vram__json_field_uint(j, "peak_bytes", e->peak_bytes);
    vram__json_field_double(j, "seconds", e->seconds);
    vram__json_object_end(j);
}

int vram_optimization_json(const vram_profile *p, const vram_optimization *o, char **json_out)
{
    if (!p || !o || !json_out)
        return vram__fail(VRAM_EINVAL, "vram_optimization_json: NULL argument");
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    vram__json_object_begin(&j);
    vram__json_field_string(&j, "model", p->name);
    vram__json_field_uint(&j, "budget_bytes", o->budget_bytes);
    vram__json_field_bool(&j, "fits", o->fits);
    vram__json_key(&j, "before");
    json_public_estimate(&j, &o->before);
    vram__json_key(&j, "after");
    json_public_estimate(&j, &o->after);
    vram__json_field_double(&j, "quality_cost", o->quality_cost);
    vram__json_key(&j, "suggestions");
    vram__json_array_begin(&j);
    for (size_t i = 0; i < o->nsuggestions; i++) {
        const vram_suggestion *s = &o->suggestions[i];
        vram__json_object_begin(&j);
        vram__json_field_string(&j, "parameter", s->parameter);
        vram__json_field_string(&j, "from", s->from);
        vram__json_field_string(&j, "to", s->to);
        vram__json_field_int(&j, "saved_bytes", s->saved_bytes);
        vram__json_field_double(&j, "seconds_change", s->seconds_change);
        vram__json_field_double(&j, "quality_cost", s->quality_cost);
        vram__json_field_string(&j, "reason", s->reason);
        vram__json_object_end(&j);
    }
    vram__json_array_end(&j);
    vram__json_field_uint(&j, "evaluated", o->evaluated);
    vram__json_object_end(&j);
    int rc;
    *json_out = vram__buf_take(&b, &rc);
    return rc;
}
