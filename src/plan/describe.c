/* SPDX-License-Identifier: MIT */
/*
 * plan/describe.c - a profile shown whole, for `vram profiles show`: its
 * components, stages, tiers (each with its estimate in every memory mode),
 * ladder and levers, as JSON or as text.
 *
 * Owns that presentation only; the figures come from estimate.c.
 */
#include <stdio.h>
#include <string.h>

#include "plan/format.h"

static const char *const runs_names[] = { "once", "chunk", "step", "frame" };
static const char *const feature_names[PLAN_NFEATURES] = { "fixed", "per_token", "per_token2",
                                                           "per_pixel", "per_area", "per_audio" };
static const char *const level_names[] = { "basic", "balanced", "maximum" };

/* Tier t's settings over the defaults; false when they do not resolve. */
static bool tier_params(const vram_profile *p, int t, plan_params *x)
{
    return plan__resolve_params(p, t, NULL, 0, x) == 0;
}

/* The three modes' estimates of x; the smallest peak's index. */
static int three_modes(const vram_profile *p, const plan_params *x, plan_estimate e[3])
{
    int best = 0;
    for (int m = 0; m < 3; m++) {
        if (plan__estimate_mode(p, x, VRAM_MEMORY_BEEFY + m, &e[m]))
            return -1;
        if (e[m].peak < e[best].peak)
            best = m;
    }
    return best;
}

static void settings_text(vram__buf *b, const plan_settings *s)
{
    for (int i = 0; i < s->n; i++)
        vram__buf_printf(b, "%s%s", i ? " " : "", s->kv[i]);
}

/* ---- JSON ------------------------------------------------------------------------- */

static void json_components(vram__json *j, const vram_profile *p)
{
    vram__json_array_begin(j);
    for (int c = 0; c < p->ncomp; c++) {
        const plan_component *k = &p->comp[c];
        vram__json_object_begin(j);
        vram__json_field_string(j, "name", k->name);
        vram__json_field_double(j, "params", k->params);
        vram__json_field_string(j, "dtype", plan__dtype_name(k->dtype));
        vram__json_field_string(j, "precision", k->follows ? "follow" : "fixed");
        vram__json_key(j, "weights_bytes");
        int dt = k->follows ? p->base.precision : k->dtype;
        vram__json_uint(j, (uint64_t)(k->params * plan__dtype_bytes(dt)));
        vram__json_key(j, "stages");
        vram__json_array_begin(j);
        for (int s = 0; s < p->nstage; s++)
            if (k->stages & (1u << s))
                vram__json_string(j, p->stage[s].name);
        vram__json_array_end(j);
        vram__json_field_uint(j, "blocks", k->blocks);
        vram__json_field_bool(j, "cpu", k->cpu_ok);
        vram__json_field_bool(j, "lora", k->lora);
        vram__json_object_end(j);
    }
    vram__json_array_end(j);
}

static void json_coefficients(vram__json *j, const double *v)
{
    vram__json_object_begin(j);
    for (int f = 0; f < PLAN_NFEATURES; f++)
        vram__json_field_double(j, feature_names[f], v[f]);
    vram__json_object_end(j);
}

static void json_stages(vram__json *j, const vram_profile *p)
{
    vram__json_array_begin(j);
    for (int s = 0; s < p->nstage; s++) {
        const plan_stage *st = &p->stage[s];
        vram__json_object_begin(j);
        vram__json_field_string(j, "name", st->name);
        vram__json_field_string(j, "runs", runs_names[st->runs]);
        vram__json_key(j, "act");
        json_coefficients(j, st->act);
        vram__json_key(j, "time");
        json_coefficients(j, st->time);
        vram__json_field_bool(j, "guided", st->guided);
        vram__json_field_double(j, "cfg_memory", st->cfg_memory);
        vram__json_field_double(j, "tiling", st->tiling);
        vram__json_field_bool(j, "optional", st->optional);
        vram__json_object_end(j);
    }
    vram__json_array_end(j);
}

static void json_tiers(vram__json *j, const vram_profile *p)
{
    vram__json_array_begin(j);
    for (int t = 0; t < p->ntier; t++) {
        plan_params x;
        plan_estimate e[3];
        int best = tier_params(p, t, &x) ? three_modes(p, &x, e) : -1;
        vram__json_object_begin(j);
        vram__json_field_string(j, "tier", p->tier[t].name);
        vram__json_field_string(j, "range", p->tier[t].range);
        vram__buf set;
        vram__buf_init(&set);
        settings_text(&set, &p->tier[t].set);
        vram__json_field_string(j, "settings", set.data ? set.data : "");
        vram__buf_free(&set);
        vram__json_key(j, "params");
        plan__json_params(j, p, &x);
        vram__json_key(j, "least_peak_bytes");
        if (best >= 0)
            vram__json_uint(j, (uint64_t)e[best].peak);
        else
            vram__json_null(j);
        vram__json_key(j, "modes");
        vram__json_array_begin(j);
        for (int m = 0; best >= 0 && m < 3; m++)
            plan__json_estimate(j, p, &e[m]);
        vram__json_array_end(j);
        vram__json_object_end(j);
    }
    vram__json_array_end(j);
}

static void json_levers(vram__json *j, const vram_profile *p)
{
    vram__json_array_begin(j);
    for (int i = 0; i < p->nlever; i++) {
        const plan_lever *l = &p->lever[i];
        vram__json_object_begin(j);
        vram__json_field_string(j, "parameter", plan__key_name(l->key));
        vram__json_key(j, "values");
        vram__json_array_begin(j);
        for (int v = 0; v < l->nvalues; v++)
            vram__json_string(j, l->values[v]);
        vram__json_array_end(j);
        vram__json_key(j, "quality");
        vram__json_array_begin(j);
        for (int v = 0; v < l->nvalues; v++)
            vram__json_double(j, l->quality[v]);
        vram__json_array_end(j);
        vram__json_field_string(j, "level", level_names[l->level]);
        vram__json_field_string(j, "reason", l->reason);
        vram__json_object_end(j);
    }
    vram__json_array_end(j);
}

int vram_profile_to_json(const vram_profile *p, char **json_out)
{
    if (!p || !json_out)
        return vram__fail(VRAM_EINVAL, "vram_profile_to_json: NULL argument");
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    vram__json_object_begin(&j);
    const char *strings[][2] = { { "name", p->name }, { "title", p->title }, { "source", p->source },
                                 { "hf_id", p->hf_id }, { "path", p->path }, { "reference_card", p->card } };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(strings); i++)
        vram__json_field_string(&j, strings[i][0], strings[i][1]);
    vram__json_field_bool(&j, "calibrated", p->calibrated);
    vram__json_field_string(&j, "calibration", p->calibration);
    vram__json_key(&j, "defaults");
    plan__json_params(&j, p, &p->base);
    vram__json_key(&j, "overhead");
    vram__json_object_begin(&j);
    vram__json_field_uint(&j, "cuda_context_bytes", (uint64_t)p->context_bytes);
    vram__json_field_double(&j, "slack", p->slack);
    vram__json_field_double(&j, "margin", p->margin);
    vram__json_field_uint(&j, "lora_bytes", (uint64_t)p->lora_bytes);
    vram__json_object_end(&j);
    vram__json_key(&j, "components");
    json_components(&j, p);
    vram__json_key(&j, "stages");
    json_stages(&j, p);
    vram__json_key(&j, "tiers");
    json_tiers(&j, p);
    vram__json_key(&j, "ladder");
    vram__json_array_begin(&j);
    for (int r = 0; r < p->nrung; r++) {
        vram__buf rung;
        vram__buf_init(&rung);
        settings_text(&rung, &p->rung[r]);
        vram__json_string(&j, rung.data ? rung.data : "");
        vram__buf_free(&rung);
    }
    vram__json_array_end(&j);
    vram__json_key(&j, "levers");
    json_levers(&j, p);
    vram__json_key(&j, "args");     /* [args]: {"setting", "value" (or null: any), "words"} */
    if (p->has_args) {
        vram__json_array_begin(&j);
        for (int i = 0; i < p->narg; i++) {
            vram__json_object_begin(&j);
            vram__json_field_string(&j, "setting", plan__key_name(p->arg[i].key));
            vram__json_key(&j, "value");
            if (p->arg[i].value[0])
                vram__json_string(&j, p->arg[i].value);
            else
                vram__json_null(&j);
            vram__json_field_string(&j, "words", p->arg[i].words);
            vram__json_object_end(&j);
        }
        vram__json_array_end(&j);
    } else {
        vram__json_null(&j);
    }
    vram__json_object_end(&j);
    int rc;
    *json_out = vram__buf_take(&b, &rc);
    return rc;
}

/* ---- text --------------------------------------------------------------------------- */

static void text_components(vram__buf *b, const vram_profile *p)
{
    vram__buf_printf(b, "\ncomponents (weights at the default precision, %s):\n",
                     plan__dtype_name(p->base.precision));
    for (int c = 0; c < p->ncomp; c++) {
        const plan_component *k = &p->comp[c];
        char g[32];
        int dt = k->follows ? p->base.precision : k->dtype;
        vram__buf_printf(b, "  %-18s %7.2fB params  %-9s %-6s %-9s", k->name, k->params / 1e9,
                         plan__gib(k->params * plan__dtype_bytes(dt), g, sizeof(g)),
                         plan__dtype_name(dt), k->follows ? "follows" : "fixed");
        for (int s = 0, first = 1; s < p->nstage; s++)
            if (k->stages & (1u << s)) {
                vram__buf_printf(b, "%s%s", first ? " stages " : ",", p->stage[s].name);
                first = 0;
            }
        vram__buf_printf(b, "%s%s\n", k->cpu_ok ? "  (may run on the CPU)" : "",
                         k->lora ? "  (takes LoRA)" : "");
    }
}

/* "256.0 MiB" for a byte coefficient; "0.02 B" under a KiB. */
static const char *amount_text(double bytes, char *buf, size_t cap)
{
    if (bytes < 1024)
        snprintf(buf, cap, "%g B", bytes);
    else
        vram_size_format((uint64_t)bytes, buf, cap);
    return buf;
}

static void text_stages(vram__buf *b, const vram_profile *p)
{
    vram__buf_printf(b, "\nstages (activation bytes per unit, batch 1):\n");
    for (int s = 0; s < p->nstage; s++) {
        const plan_stage *st = &p->stage[s];
        vram__buf_printf(b, "  %-14s runs %-6s", st->name, runs_names[st->runs]);
        for (int f = 0; f < PLAN_NFEATURES; f++) {
            char a[32];
            if (st->act[f] > 0)
                vram__buf_printf(b, " act%s%s=%s", f ? "_" : "", f ? feature_names[f] : "",
                                 amount_text(st->act[f], a, sizeof(a)));
        }
        if (st->guided)
            vram__buf_printf(b, " guided (x%.2g memory)", st->cfg_memory);
        if (st->tiling < 1)
            vram__buf_printf(b, " tiles (x%.2g)", st->tiling);
        vram__buf_printf(b, "%s\n", st->optional ? " optional" : "");
    }
}

static void text_tiers(vram__buf *b, const vram_profile *p)
{
    if (!p->ntier)
        return;
    vram__buf_printf(b, "\ntiers (lowest first; peak in beefy / lightweight / sequential, time of the "
                        "smallest):\n");
    for (int t = 0; t < p->ntier; t++) {
        plan_params x;
        plan_estimate e[3];
        int best = tier_params(p, t, &x) ? three_modes(p, &x, e) : -1;
        char g[4][32];
        vram__buf_printf(b, "  %-17s %-11s ", p->tier[t].name, p->tier[t].range);
        settings_text(b, &p->tier[t].set);
        if (best >= 0)
            vram__buf_printf(b, "\n  %-17s %-11s %s / %s / %s, about %.0f s\n", "", "",
                             plan__gib(e[0].peak, g[0], 32), plan__gib(e[1].peak, g[1], 32),
                             plan__gib(e[2].peak, g[2], 32), e[best].seconds);
        else
            vram__buf_puts(b, "\n");
    }
}

int vram_profile_describe(const vram_profile *p, char **text_out)
{
    if (!p || !text_out)
        return vram__fail(VRAM_EINVAL, "vram_profile_describe: NULL argument");
    vram__buf b;
    vram__buf_init(&b);
    vram__buf_printf(&b, "%s  %s\nsource      %s\nfile        %s\n", p->name, p->title, p->source,
                     p->path);
    if (*p->hf_id)
        vram__buf_printf(&b, "hf_id       %s\n", p->hf_id);
    if (p->calibrated)
        vram__buf_printf(&b, "calibrated  %s\n", p->calibration);
    vram__buf_printf(&b, "times       on %s\ndefaults    ", p->card);
    settings_text(&b, &p->defaults);
    vram__buf_puts(&b, "\n");
    text_components(&b, p);
    text_stages(&b, p);
    text_tiers(&b, p);
    if (p->nrung) {
        vram__buf_printf(&b, "\nladder (after an out-of-memory, each rung keeps the ones before):\n");
        for (int r = 0; r < p->nrung; r++) {
            vram__buf_printf(&b, "  %d. ", r + 1);
            settings_text(&b, &p->rung[r]);
            vram__buf_puts(&b, "\n");
        }
    }
    if (p->nlever) {
        vram__buf_printf(&b, "\noptimizer levers, in order:\n");
        for (int i = 0; i < p->nlever; i++) {
            const plan_lever *l = &p->lever[i];
            vram__buf_printf(&b, "  %-11s %-9s", plan__key_name(l->key), level_names[l->level]);
            for (int v = 0; v < l->nvalues; v++)
                vram__buf_printf(&b, "%s%s (cost %g)", v ? ", " : "", l->values[v], l->quality[v]);
            vram__buf_puts(&b, "\n");
        }
    }
    if (p->has_args) {
        vram__buf_printf(&b, "\nthe pipeline's flags, for {args} in a command ([args]):\n");
        for (int i = 0; i < p->narg; i++) {
            char key[2 * PLAN_SETTING_MAX];
            snprintf(key, sizeof(key), "%s%s%s", plan__key_name(p->arg[i].key), p->arg[i].value[0] ? "=" : "",
                     p->arg[i].value);
            vram__buf_printf(&b, "  %-22s %s\n", key, p->arg[i].words[0] ? p->arg[i].words : "(no flag)");
        }
    }
    int rc;
    *text_out = vram__buf_take(&b, &rc);
    return rc;
}
