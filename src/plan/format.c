/* SPDX-License-Identifier: MIT */
/*
 * plan/format.c - estimates and plans as people and programs read them:
 * text, JSON, KEY=value lines and shell exports; and the public estimate
 * calls, which are a resolve, an estimate and a conversion.
 *
 * Owns the output formats (the README documents the JSON fields) and
 * nothing of the arithmetic.  Byte counts in JSON are integers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/host.h"
#include "plan/format.h"

const char *plan__gib(double bytes, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.1f GiB", bytes / (double)VRAM__GiB);
    return buf;
}

static const char *duration_text(double s, char *buf, size_t cap)
{
    if (s < 120)
        snprintf(buf, cap, "%.0f s", s);
    else if (s < 7200)
        snprintf(buf, cap, "%.1f min", s / 60);
    else
        snprintf(buf, cap, "%.1f h", s / 3600);
    return buf;
}

int plan__export(const vram_profile *p, const plan_estimate *e, vram_estimate *out)
{
    memset(out, 0, sizeof(*out));
    out->memory = e->mode;
    out->seconds = e->seconds;
    if (e->peak_stage >= 0)
        vram__strlcpy(out->peak_stage, p->stage[e->peak_stage].name, sizeof(out->peak_stage));
    int rc = plan__bytes(e->peak, &out->peak_bytes);
    rc = rc ? rc : plan__bytes(e->weights, &out->weights_bytes);
    rc = rc ? rc : plan__bytes(e->activations, &out->activation_bytes);
    rc = rc ? rc : plan__bytes(e->context + e->slack, &out->overhead_bytes);
    rc = rc ? rc : plan__bytes(e->margin, &out->margin_bytes);
    rc = rc ? rc : plan__bytes(e->host, &out->host_bytes);
    return rc ? vram__fail(rc, "%s: an estimate passes 2^64 bytes", p->name) : 0;
}

static void json_bytes(vram__json *j, const char *key, double v)
{
    uint64_t b = 0;
    plan__bytes(v, &b);
    vram__json_field_uint(j, key, b);
}

void plan__json_estimate(vram__json *j, const vram_profile *p, const plan_estimate *e)
{
    vram__json_object_begin(j);
    vram__json_field_string(j, "memory", plan__memory_name(e->mode));
    json_bytes(j, "peak_bytes", e->peak);
    json_bytes(j, "weights_bytes", e->weights);
    json_bytes(j, "activation_bytes", e->activations);
    json_bytes(j, "overhead_bytes", e->context + e->slack);
    json_bytes(j, "margin_bytes", e->margin);
    json_bytes(j, "host_bytes", e->host);
    vram__json_field_double(j, "seconds", e->seconds);
    vram__json_key(j, "peak_stage");
    if (e->peak_stage >= 0)
        vram__json_string(j, p->stage[e->peak_stage].name);
    else
        vram__json_null(j);
    vram__json_object_end(j);
}

void plan__json_params(vram__json *j, const vram_profile *p, const plan_params *x)
{
    char v[PLAN_SETTING_MAX];
    vram__json_object_begin(j);
    for (int k = 0; k < PLAN_NKEYS; k++) {
        if (k == PLAN_KEY_TIER)
            continue;
        plan__param_text(p, x, k, v, sizeof(v));
        vram__json_key(j, plan__key_name(k));
        switch (k) {
        case PLAN_KEY_WIDTH: vram__json_uint(j, x->width); break;
        case PLAN_KEY_HEIGHT: vram__json_uint(j, x->height); break;
        case PLAN_KEY_FRAMES: vram__json_uint(j, x->frames); break;
        case PLAN_KEY_STEPS: vram__json_uint(j, x->steps); break;
        case PLAN_KEY_BATCH: vram__json_uint(j, x->batch); break;
        case PLAN_KEY_LORA: vram__json_uint(j, x->lora); break;
        case PLAN_KEY_CHUNK: vram__json_uint(j, x->chunk); break;
        case PLAN_KEY_CFG: vram__json_bool(j, x->cfg); break;
        case PLAN_KEY_VAE_TILING: vram__json_bool(j, x->tiling); break;
        case PLAN_KEY_FPS: vram__json_double(j, x->fps); break;
        case PLAN_KEY_DURATION: vram__json_double(j, x->fps > 0 ? x->frames / x->fps : 0); break;
        case PLAN_KEY_AUDIO: vram__json_double(j, x->audio_s); break;
        case PLAN_KEY_RESIDENT: vram__json_double(j, x->resident); break;
        default: vram__json_string(j, v); break;
        }
    }
    vram__json_object_end(j);
}

/* ---- estimates -------------------------------------------------------------------- */

/* Resolves the settings (tier=NAME's under them; no tier is picked) and
 * estimates every mode; *fit is 0 or VRAM_ENOFIT (then *chosen is the
 * smallest).  Other errors are returned. */
static int estimate_all(const vram_profile *p, const char *const *settings, size_t n, uint64_t budget,
                        plan_params *x, plan_estimate all[3], plan_estimate *chosen, int *fit)
{
    plan_resolved r;
    int rc = plan__settings_resolve(p, settings, n, budget, NULL, false, &r);
    if (rc)
        return rc;
    *x = r.x;
    memcpy(all, r.modes, sizeof(r.modes));
    *chosen = r.chosen;
    *fit = r.fits ? 0 : VRAM_ENOFIT;
    return 0;
}

int vram_estimate_run(const vram_profile *p, const char *const *settings, size_t n,
                      uint64_t budget_bytes, vram_estimate *out)
{
    if (!out)
        return vram__fail(VRAM_EINVAL, "vram_estimate_run: NULL output");
    memset(out, 0, sizeof(*out));
    plan_params x;
    plan_estimate all[3], chosen;
    int fit, rc = estimate_all(p, settings, n, budget_bytes, &x, all, &chosen, &fit);
    if (rc || (rc = plan__export(p, &chosen, out)))
        return rc;
    if (fit) {
        char a[32], b[32];
        return vram__fail(VRAM_ENOFIT, "%s needs %s at the least (%s), over the %s budget", p->name,
                          plan__gib(chosen.peak, a, sizeof(a)), plan__memory_name(chosen.mode),
                          plan__gib((double)budget_bytes, b, sizeof(b)));
    }
    return 0;
}

int vram_estimate_modes(const vram_profile *p, const char *const *settings, size_t n,
                        vram_estimate out[3])
{
    if (!out)
        return vram__fail(VRAM_EINVAL, "vram_estimate_modes: NULL output");
    plan_params x;
    plan_estimate all[3], chosen;
    int fit, rc = estimate_all(p, settings, n, 0, &x, all, &chosen, &fit);
    for (int i = 0; !rc && i < 3; i++)
        rc = plan__export(p, &all[i], &out[i]);
    return rc;
}

int vram_estimate_json(const vram_profile *p, const char *const *settings, size_t n,
                       uint64_t budget_bytes, char **json_out)
{
    if (!json_out)
        return vram__fail(VRAM_EINVAL, "vram_estimate_json: NULL output");
    *json_out = NULL;
    plan_params x;
    plan_estimate all[3], chosen;
    int fit, rc = estimate_all(p, settings, n, budget_bytes, &x, all, &chosen, &fit);
    if (rc)
        return rc;
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    vram__json_object_begin(&j);
    vram__json_field_string(&j, "model", p->name);
    vram__json_field_string(&j, "reference_card", p->card);
    vram__json_key(&j, "settings");
    plan__json_params(&j, p, &x);
    vram__json_key(&j, "budget_bytes");
    if (budget_bytes)
        vram__json_uint(&j, budget_bytes);
    else
        vram__json_null(&j);
    vram__json_key(&j, "fits");
    if (budget_bytes)
        vram__json_bool(&j, fit == 0);
    else
        vram__json_null(&j);
    vram__json_key(&j, "estimate");
    plan__json_estimate(&j, p, &chosen);
    vram__json_field_uint(&j, "peak_bytes", (uint64_t)vram__llround(chosen.peak));
    vram__json_key(&j, "modes");
    vram__json_array_begin(&j);
    for (int i = 0; i < 3; i++)
        plan__json_estimate(&j, p, &all[i]);
    vram__json_array_end(&j);
    vram__json_object_end(&j);
    *json_out = vram__buf_take(&b, &rc);
    return rc;
}

static void text_settings(vram__buf *b, const vram_profile *p, const plan_params *x)
{
    static const int shown[] = { PLAN_KEY_RESOLUTION, PLAN_KEY_FRAMES, PLAN_KEY_FPS, PLAN_KEY_STEPS,
                                 PLAN_KEY_BATCH, PLAN_KEY_CFG, PLAN_KEY_LORA, PLAN_KEY_PRECISION,
                                 PLAN_KEY_VAE_TILING, PLAN_KEY_CHUNK, PLAN_KEY_CPU, PLAN_KEY_SKIP,
                                 PLAN_KEY_AUDIO, PLAN_KEY_RESIDENT };
    char v[PLAN_SETTING_MAX];
    vram__buf_puts(b, "settings   ");
    for (size_t i = 0; i < VRAM__ARRAY_LEN(shown); i++) {
        plan__param_text(p, x, shown[i], v, sizeof(v));
        vram__buf_printf(b, " %s=%s", plan__key_name(shown[i]), v);
    }
    vram__buf_puts(b, "\n");
}

static void text_peak(vram__buf *b, const vram_profile *p, const plan_estimate *e)
{
    char g[5][32];
    vram__buf_printf(b, "peak        %s = weights %s + activations %s (%s) + overhead %s + margin %s\n",
                     plan__gib(e->peak, g[0], 32), plan__gib(e->weights, g[1], 32),
                     plan__gib(e->activations, g[2], 32),
                     e->peak_stage >= 0 ? p->stage[e->peak_stage].name : "-",
                     plan__gib(e->context + e->slack, g[3], 32), plan__gib(e->margin, g[4], 32));
    vram__buf_printf(b, "host RAM    %s (offloaded, pinned and staged weights)\n",
                     plan__gib(e->host, g[0], 32));
    vram__buf_printf(b, "time        about %s on %s (the reference card)\n",
                     duration_text(e->seconds, g[0], 32), p->card);
}

int vram_estimate_text(const vram_profile *p, const char *const *settings, size_t n,
                       uint64_t budget_bytes, char **text_out)
{
    if (!text_out)
        return vram__fail(VRAM_EINVAL, "vram_estimate_text: NULL output");
    *text_out = NULL;
    plan_params x;
    plan_estimate all[3], chosen;
    int fit, rc = estimate_all(p, settings, n, budget_bytes, &x, all, &chosen, &fit);
    if (rc)
        return rc;
    char g[2][32];
    vram__buf b;
    vram__buf_init(&b);
    vram__buf_printf(&b, "model       %s  (%s)\n", p->name, p->title);
    text_settings(&b, p, &x);
    if (x.memory != VRAM_MEMORY_AUTO)
        vram__buf_printf(&b, "memory      %s (as asked)\n", plan__memory_name(chosen.mode));
    else if (!budget_bytes)
        vram__buf_printf(&b, "memory      %s (auto, no budget given: the fastest)\n",
                         plan__memory_name(chosen.mode));
    else if (fit == 0)
        vram__buf_printf(&b, "memory      %s (auto: the fastest that fits %s)\n",
                         plan__memory_name(chosen.mode), plan__gib((double)budget_bytes, g[0], 32));
    else
        vram__buf_printf(&b, "memory      %s (auto: nothing fits %s; this is the smallest)\n",
                         plan__memory_name(chosen.mode), plan__gib((double)budget_bytes, g[0], 32));
    text_peak(&b, p, &chosen);
    vram__buf_puts(&b, "modes      ");
    for (int i = 0; i < 3; i++)
        vram__buf_printf(&b, "%s %s %s, %s", i ? " |" : "", plan__memory_name(all[i].mode),
                         plan__gib(all[i].peak, g[0], 32), duration_text(all[i].seconds, g[1], 32));
    vram__buf_puts(&b, "\n");
    if (budget_bytes)
        vram__buf_printf(&b, "fits        %s: %s budget\n", fit == 0 ? "yes" : "no",
                         plan__gib((double)budget_bytes, g[0], 32));
    *text_out = vram__buf_take(&b, &rc);
    return rc;
}

/* ---- plans -------------------------------------------------------------------------- */

static void json_accelerate(vram__json *j, const vram_plan *plan)
{
    const vram_profile *p = &plan->prof;
    const plan_params *x = &plan->x;
    vram_host_info host;
    memset(&host, 0, sizeof(host));
    vram__host_query(NULL, &host);
    char dev[16];
    snprintf(dev, sizeof(dev), "%u", plan->device);
    vram__json_object_begin(j);
    vram__json_key(j, "max_memory");
    vram__json_object_begin(j);
    vram__json_field_uint(j, dev, plan__weights_room(plan));
    vram__json_field_uint(j, "cpu", host.ram_available_bytes);
    vram__json_object_end(j);
    /* Where each component's weights live between its stages; diffusers'
     * enable_model_cpu_offload / enable_sequential_cpu_offload move the
     * offloaded ones in ("offload" says which). */
    vram__json_key(j, "device_map");
    vram__json_object_begin(j);
    for (int c = 0; c < p->ncomp; c++) {
        vram__json_key(j, p->comp[c].name);
        bool gpu = plan->chosen.mode == VRAM_MEMORY_BEEFY && !(x->cpu & (1u << c));
        if (gpu)
            vram__json_uint(j, plan->device);
        else
            vram__json_string(j, "cpu");
    }
    vram__json_object_end(j);
    vram__json_key(j, "execution");
    vram__json_object_begin(j);
    for (int c = 0; c < p->ncomp; c++) {
        vram__json_key(j, p->comp[c].name);
        if (x->cpu & (1u << c)) {
            vram__json_string(j, "cpu");
        } else {
            char cuda[24];
            snprintf(cuda, sizeof(cuda), "cuda:%u", plan->device);
            vram__json_string(j, cuda);
        }
    }
    vram__json_object_end(j);
    vram__json_key(j, "offload");
    vram__json_string(j, plan->chosen.mode == VRAM_MEMORY_BEEFY         ? "none"
                         : plan->chosen.mode == VRAM_MEMORY_LIGHTWEIGHT ? "model"
                                                                        : "sequential");
    vram__json_object_end(j);
}

/* A refused plan's way out: how much it needs, and what to change, the
 * optimizer's suggestions first (when they make it fit), then the budget
 * that would take the smallest tier and mode as they are. */
static void json_change(vram__json *j, const vram_plan *plan)
{
    uint64_t needs = plan->chosen.peak > 0 ? (uint64_t)ceil(plan->chosen.peak) : 0;
    vram__json_field_uint(j, "needs_bytes", needs);
    vram__json_field_uint(j, "short_bytes", needs > plan->budget ? needs - plan->budget : 0);
    const vram_optimization *o = &plan->change;
    vram__json_key(j, "change");
    vram__json_array_begin(j);
    for (size_t i = 0; o->fits && i < o->nsuggestions; i++) {
        const vram_suggestion *s = &o->suggestions[i];
        vram__json_object_begin(j);
        vram__json_field_string(j, "parameter", s->parameter);
        vram__json_field_string(j, "from", s->from);
        vram__json_field_string(j, "to", s->to);
        vram__json_key(j, "saved_bytes");
        vram__json_int(j, s->saved_bytes);
        vram__json_field_string(j, "reason", s->reason);
        vram__json_object_end(j);
    }
    char g[32], reason[192];
    vram__json_object_begin(j);
    vram__json_field_string(j, "parameter", "vram");
    vram__json_field_uint(j, "from", plan->budget);
    vram__json_field_uint(j, "to", needs);
    snprintf(reason, sizeof(reason), "a budget of %s (--vram, or a card with that much safe "
             "available) takes the smallest tier and memory mode as they are",
             plan__gib((double)needs, g, sizeof(g)));
    vram__json_field_string(j, "reason", reason);
    vram__json_object_end(j);
    vram__json_array_end(j);
}

static void json_plan(vram__json *j, const vram_plan *plan)
{
    const vram_profile *p = &plan->prof;
    vram__json_object_begin(j);
    vram__json_field_string(j, "model", p->name);
    vram__json_field_string(j, "profile", p->path);
    vram__json_field_bool(j, "calibrated", p->calibrated);
    vram__json_field_uint(j, "budget_bytes", plan->budget);
    vram__json_key(j, "budget_source");
    if (plan->from_device) {
        char src[48];
        snprintf(src, sizeof(src), "device %u safe available", plan->device);
        vram__json_string(j, src);
    } else {
        vram__json_string(j, "given");
    }
    vram__json_key(j, "tier");
    if (plan->tier >= 0)
        vram__json_string(j, p->tier[plan->tier].name);
    else
        vram__json_null(j);
    vram__json_field_bool(j, "tier_forced", plan->tier_forced);
    vram__json_field_string(j, "memory", plan__memory_name(plan->chosen.mode));
    vram__json_field_string(j, "precision", plan__dtype_name(plan->x.precision));
    vram__json_field_bool(j, "fits", plan->fits);
    vram__json_field_uint(j, "rung", plan->rung);
    plan_params shown = plan->x;
    shown.memory = plan->chosen.mode;
    vram__json_key(j, "params");
    plan__json_params(j, p, &shown);
    vram__json_key(j, "estimate");
    plan__json_estimate(j, p, &plan->chosen);
    vram__json_key(j, "modes");
    vram__json_array_begin(j);
    for (int i = 0; i < 3; i++)
        plan__json_estimate(j, p, &plan->modes[i]);
    vram__json_array_end(j);
    vram__json_field_string(j, "why", plan->why);
    if (plan->refused)
        json_change(j, plan);
    vram__json_key(j, "allocator");
    vram__json_object_begin(j);
    vram__json_field_string(j, "PYTORCH_CUDA_ALLOC_CONF", plan->alloc);
    vram__json_object_end(j);
    vram__json_key(j, "accelerate");
    json_accelerate(j, plan);
    vram__json_field_string(j, "reference_card", p->card);
    vram__json_key(j, "args");      /* the pipeline's own words ([args]), or null */
    if (p->has_args) {
        vram__json_array_begin(j);
        for (size_t i = 0; vram_plan_arg(plan, i); i++)
            vram__json_string(j, vram_plan_arg(plan, i));
        vram__json_array_end(j);
    } else {
        vram__json_null(j);
    }
    vram__json_object_end(j);
}

static void text_plan(vram__buf *b, const vram_plan *plan)
{
    const vram_profile *p = &plan->prof;
    char g[32];
    vram__buf_printf(b, "model       %s  (%s)\n", p->name, p->title);
    if (plan->from_device)
        vram__buf_printf(b, "budget      %s safe available on GPU %u\n",
                         plan__gib((double)plan->budget, g, sizeof(g)), plan->device);
    else
        vram__buf_printf(b, "budget      %s\n", plan__gib((double)plan->budget, g, sizeof(g)));
    if (plan->tier >= 0)
        vram__buf_printf(b, "tier        %s%s\n", p->tier[plan->tier].name,
                         plan->tier_forced ? " (forced)" : "");
    text_settings(b, p, &plan->x);
    vram__buf_printf(b, "memory      %s\nprecision   %s\n", plan__memory_name(plan->chosen.mode),
                     plan__dtype_name(plan->x.precision));
    text_peak(b, p, &plan->chosen);
    vram__buf_printf(b, "allocator   PYTORCH_CUDA_ALLOC_CONF=%s\n", plan->alloc);
    vram__buf_printf(b, "why         %s\n", plan->why);
    if (p->has_args) {
        vram__buf_puts(b, "args       ");
        for (size_t i = 0; vram_plan_arg(plan, i); i++)
            vram__buf_printf(b, " %s", vram_plan_arg(plan, i));
        vram__buf_puts(b, "\n");
    }
    if (!plan->fits)
        vram__buf_printf(b, "fits        no: over the budget (a ladder rung made anyway)\n");
}

/* KEY=value (env) or export KEY='value' (shell) lines. */
static void env_line(vram__buf *b, bool shell, const char *key, const char *value)
{
    if (!shell) {
        vram__buf_printf(b, "%s=%s\n", key, value);
        return;
    }
    vram__buf_printf(b, "export %s='", key);
    for (const char *c = value; *c; c++)
        vram__buf_puts(b, *c == '\'' ? "'\\''" : (char[2]){ *c, 0 });
    vram__buf_puts(b, "'\n");
}

static void env_plan(vram__buf *b, const vram_plan *plan, bool shell)
{
    char name[64], v[64];
    env_line(b, shell, "PYTORCH_CUDA_ALLOC_CONF", plan->alloc);
    env_line(b, shell, "VRAM_PLAN_MODEL", plan->prof.name);
    for (int k = 0; k < PLAN_NKEYS; k++) {
        snprintf(name, sizeof(name), "VRAM_PLAN_%s", plan__key_name(k));
        for (char *c = name; *c; c++)
            *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
        env_line(b, shell, name, plan->values[k]);
    }
    snprintf(v, sizeof(v), "%llu", (unsigned long long)vram__llround(plan->chosen.peak));
    env_line(b, shell, "VRAM_PLAN_PEAK_BYTES", v);
    snprintf(v, sizeof(v), "%llu", (unsigned long long)plan->budget);
    env_line(b, shell, "VRAM_PLAN_BUDGET_BYTES", v);
}

int vram_plan_format(const vram_plan *plan, const char *format, char **text_out)
{
    if (!plan || !format || !text_out)
        return vram__fail(VRAM_EINVAL, "vram_plan_format: NULL argument");
    *text_out = NULL;
    vram__buf b;
    vram__buf_init(&b);
    if (!strcmp(format, "json")) {
        vram__json j;
        vram__json_init(&j, &b);
        json_plan(&j, plan);
    } else if (!strcmp(format, "text")) {
        text_plan(&b, plan);
    } else if (!strcmp(format, "env") || !strcmp(format, "shell")) {
        env_plan(&b, plan, !strcmp(format, "shell"));
    } else {
        return vram__fail(VRAM_EINVAL, "format '%s' is not one of text|json|env|shell", format);
    }
    int rc;
    *text_out = vram__buf_take(&b, &rc);
    return rc;
}

int vram_plan_json(vram_ctx *ctx, const char *model, const char *const *settings, size_t nsettings,
                   uint64_t budget_bytes, unsigned device, char **json_out)
{
    if (!json_out)
        return vram__fail(VRAM_EINVAL, "vram_plan_json: NULL output");
    *json_out = NULL;
    vram_profile *p;
    int rc = vram_profile_load(ctx ? vram_ctx_options(ctx) : NULL, model, &p);
    if (rc)
        return rc;
    vram_plan *plan;
    rc = vram_plan_make(ctx, p, settings, nsettings, budget_bytes, device, &plan);
    if (!rc)
        rc = vram_plan_format(plan, "json", json_out);
    vram_plan_free(plan);
    vram_profile_free(p);
    return rc;
}
