/* SPDX-License-Identifier: MIT */
/*
 * plan/params.c - the settings of one run: "key=value" as people and
 * profiles write them, checked and turned into plan_params, and back into
 * text for plans and command lines.
 *
 * Owns the one grammar of settings (resolution as 1280x720, 720p or 512px;
 * frames or duration with fps; on/off switches) and the limits past which a
 * value is refused rather than estimated.  Every refusal names the value.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plan/plan.h"

static const struct {
    const char *name, *help;
} keys[PLAN_NKEYS] = {
#define PLAN__KEY_ROW(id, name, help) { name, help },
    PLAN_SETTING_LIST(PLAN__KEY_ROW)
#undef PLAN__KEY_ROW
};

static const char *const dtype_names[PLAN_NDTYPES] = { "fp32", "bf16", "fp16", "int8" };
static const int dtype_bytes[PLAN_NDTYPES] = { 4, 2, 2, 1 };
static const char *const memory_names[] = { "auto", "beefy", "lightweight", "sequential" };

/* Common names for heights, with the width used at 16:9. */
static const struct {
    unsigned height, width;
} named_heights[] = {
    { 360, 640 }, { 480, 854 }, { 540, 960 }, { 576, 1024 }, { 720, 1280 },
    { 1080, 1920 }, { 1440, 2560 }, { 2160, 3840 },
};

const char *plan__key_name(int id)
{
    return id >= 0 && id < PLAN_NKEYS ? keys[id].name : "?";
}

const char *plan__key_help(int id)
{
    return id >= 0 && id < PLAN_NKEYS ? keys[id].help : "";
}

int plan__key_find(const char *name)
{
    for (int i = 0; i < PLAN_NKEYS; i++)
        if (!strcmp(keys[i].name, name))
            return i;
    return -1;
}

int vram_plan_setting_describe(unsigned i, const char **key_out, const char **help_out)
{
    if (i >= PLAN_NKEYS)
        return VRAM_ENOENT;
    if (key_out)
        *key_out = keys[i].name;
    if (help_out)
        *help_out = keys[i].help;
    return 0;
}

const char *plan__dtype_name(int dtype)
{
    return dtype >= 0 && dtype < PLAN_NDTYPES ? dtype_names[dtype] : "?";
}

int plan__dtype_bytes(int dtype)
{
    return dtype >= 0 && dtype < PLAN_NDTYPES ? dtype_bytes[dtype] : 0;
}

const char *plan__memory_name(int mode)
{
    return mode >= 0 && mode < (int)VRAM__ARRAY_LEN(memory_names) ? memory_names[mode] : "?";
}

/* ---- value parsers ------------------------------------------------------------ */

static int parse_uint(const char *key, const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    if (*v == '-')
        return vram__fail(VRAM_EINVAL, "%s '%s' cannot be negative", key, v);
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!isdigit((unsigned char)*v) || *end)
        return vram__fail(VRAM_EINVAL, "%s '%s' is not a whole number", key, v);
    if (errno || n > max)
        return vram__fail(VRAM_EINVAL, "%s '%s' is absurd: at most %u", key, v, max);
    if (n < min)
        return vram__fail(VRAM_EINVAL, "%s '%s' is too small: at least %u", key, v, min);
    *out = (uint32_t)n;
    return 0;
}

static int parse_real(const char *key, const char *v, double min, double max, double *out)
{
    char *end;
    if (*v == '-')
        return vram__fail(VRAM_EINVAL, "%s '%s' cannot be negative", key, v);
    errno = 0;
    double d = strtod(v, &end);
    /* strtod takes hex too ("0x10" would be 16): decimal only. */
    if (!(isdigit((unsigned char)*v) || *v == '.') || *end || !isfinite(d) ||
        strspn(v, "0123456789.eE+-") < strlen(v))
        return vram__fail(VRAM_EINVAL, "%s '%s' is not a number", key, v);
    if (d > max)
        return vram__fail(VRAM_EINVAL, "%s '%s' is absurd: at most %g", key, v, max);
    if (d < min)
        return vram__fail(VRAM_EINVAL, "%s '%s' is too small: at least %g", key, v, min);
    *out = d;
    return 0;
}

static int parse_switch(const char *key, const char *v, bool *out)
{
    static const char *const on[] = { "on", "yes", "true", "1" };
    static const char *const off[] = { "off", "no", "false", "0" };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(on); i++) {
        if (!strcasecmp(v, on[i])) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(v, off[i])) {
            *out = false;
            return 0;
        }
    }
    return vram__fail(VRAM_EINVAL, "%s '%s' is not on or off", key, v);
}

static int parse_choice(const char *key, const char *v, const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) {
            *out = i;
            return 0;
        }
    char list[128] = "";
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? "|" : "", names[i]);
    return vram__fail(VRAM_EINVAL, "%s '%s' is not one of %s", key, v, list);
}

static int check_side(const char *what, const char *v, unsigned long long n)
{
    if (n < 8)
        return vram__fail(VRAM_EINVAL, "resolution '%s': %s %llu is too small (at least 8 pixels)",
                          v, what, n);
    if (n > PLAN_MAX_SIDE)
        return vram__fail(VRAM_EINVAL, "resolution '%s': %s %llu is absurd (at most %u pixels)",
                          v, what, n, PLAN_MAX_SIDE);
    return 0;
}

/* "1280x720", "720p" (16:9), "512px" (square). */
static int parse_resolution(const char *v, uint32_t *w, uint32_t *h)
{
    const char *bad = "resolution '%s' is not WIDTHxHEIGHT, Np or Npx (e.g. 1280x720, 720p, 512px)";
    char *end;
    if (!isdigit((unsigned char)*v))
        return vram__fail(VRAM_EINVAL, bad, v);
    errno = 0;
    unsigned long long a = strtoull(v, &end, 10);
    if (errno)
        a = ULLONG_MAX;
    if ((*end == 'x' || *end == 'X') && isdigit((unsigned char)end[1])) {
        char *end2;
        errno = 0;
        unsigned long long b = strtoull(end + 1, &end2, 10);
        if (errno)
            b = ULLONG_MAX;
        if (*end2)
            return vram__fail(VRAM_EINVAL, bad, v);
        int rc = check_side("width", v, a);
        if (rc || (rc = check_side("height", v, b)))
            return rc;
        *w = (uint32_t)a;
        *h = (uint32_t)b;
        return 0;
    }
    if (!strcasecmp(end, "px")) {
        int rc = check_side("side", v, a);
        if (rc)
            return rc;
        *w = *h = (uint32_t)a;
        return 0;
    }
    if (!strcasecmp(end, "p")) {
        int rc = check_side("height", v, a);
        if (rc)
            return rc;
        *h = (uint32_t)a;
        *w = (uint32_t)((a * 16 + 8) / 9 / 2 * 2);
        for (size_t i = 0; i < VRAM__ARRAY_LEN(named_heights); i++)
            if (named_heights[i].height == a)
                *w = named_heights[i].width;
        return check_side("width", v, *w);
    }
    return vram__fail(VRAM_EINVAL, bad, v);
}

/* "8", "8s", "2m", "1500ms": seconds of video. */
static int parse_duration(const char *v, double *seconds)
{
    uint64_t ms;
    int rc = vram_duration_parse(v, 1000, &ms);
    if (rc) {
        char why[512];
        vram__strlcpy(why, vram_last_error(), sizeof(why));
        return vram__fail(rc, "duration: %s", why);
    }
    if (ms == 0)
        return vram__fail(VRAM_EINVAL, "duration '%s' is zero", v);
    *seconds = (double)ms / 1000.0;
    return 0;
}

/* A ','-separated list of names, each found by find(p, name) and allowed
 * by ok(p, index); sets bits of *mask.  "none" is the empty list. */
static int parse_names(const vram_profile *p, const char *key, const char *v,
                       int (*find)(const vram_profile *, const char *),
                       bool (*ok)(const vram_profile *, int), const char *what, uint32_t *mask)
{
    *mask = 0;
    if (!strcmp(v, "none"))
        return 0;
    if (!p)                         /* checked again once the profile is known */
        return 0;
    char copy[PLAN_SETTING_MAX];
    vram__strlcpy(copy, v, sizeof(copy));
    char *save = NULL;
    for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        name = vram__trim(name);
        int i = find(p, name);
        if (i < 0 || !ok(p, i))
            return vram__fail(VRAM_EINVAL, "%s '%s': '%s' is not %s of %s", key, v, name, what,
                              p->name);
        *mask |= 1u << i;
    }
    return 0;
}

static bool component_cpu_ok(const vram_profile *p, int i)
{
    return p->comp[i].cpu_ok;
}

static bool stage_optional(const vram_profile *p, int i)
{
    return p->stage[i].optional;
}

/* ---- applying settings ------------------------------------------------------------ */

static int set_key(const vram_profile *p, plan_params *x, int id, const char *key, const char *v)
{
    int choice;
    int rc = 0;
    switch (id) {
    case PLAN_KEY_RESOLUTION:
        return parse_resolution(v, &x->width, &x->height);
    case PLAN_KEY_WIDTH:
    case PLAN_KEY_HEIGHT: {
        uint32_t n;
        if ((rc = parse_uint(key, v, 8, PLAN_MAX_SIDE, &n)))
            return rc;
        *(id == PLAN_KEY_WIDTH ? &x->width : &x->height) = n;
        return 0;
    }
    case PLAN_KEY_FRAMES:
        if (x->duration_set)
            return vram__fail(VRAM_EINVAL, "frames '%s': give frames or duration, not both", v);
        rc = parse_uint(key, v, 1, PLAN_MAX_FRAMES, &x->frames);
        x->duration_s = 0;
        x->frames_set = true;
        return rc;
    case PLAN_KEY_DURATION:
        if (x->frames_set)
            return vram__fail(VRAM_EINVAL, "duration '%s': give frames or duration, not both", v);
        x->duration_set = true;
        return parse_duration(v, &x->duration_s);
    case PLAN_KEY_FPS:
        return parse_real(key, v, 1, PLAN_MAX_FPS, &x->fps);
    case PLAN_KEY_STEPS:
        return parse_uint(key, v, 1, PLAN_MAX_STEPS, &x->steps);
    case PLAN_KEY_BATCH:
        return parse_uint(key, v, 1, PLAN_MAX_BATCH, &x->batch);
    case PLAN_KEY_CFG:
        return parse_switch(key, v, &x->cfg);
    case PLAN_KEY_LORA:
        return parse_uint(key, v, 0, PLAN_MAX_LORA, &x->lora);
    case PLAN_KEY_PRECISION:
        rc = parse_choice(key, v, dtype_names, PLAN_NDTYPES, &choice);
        x->precision = rc ? x->precision : choice;
        return rc;
    case PLAN_KEY_MEMORY:
        rc = parse_choice(key, v, memory_names, (int)VRAM__ARRAY_LEN(memory_names), &choice);
        x->memory = rc ? x->memory : choice;
        return rc;
    case PLAN_KEY_VAE_TILING:
        return parse_switch(key, v, &x->tiling);
    case PLAN_KEY_CHUNK:
        return parse_uint(key, v, 0, PLAN_MAX_FRAMES, &x->chunk);
    case PLAN_KEY_CPU:
        return parse_names(p, key, v, plan__component_find, component_cpu_ok,
                           "a component that may run on the CPU", &x->cpu);
    case PLAN_KEY_SKIP:
        return parse_names(p, key, v, plan__stage_find, stage_optional, "an optional stage",
                           &x->skip);
    case PLAN_KEY_AUDIO:
        return parse_real(key, v, 0, PLAN_MAX_AUDIO_S, &x->audio_s);
    case PLAN_KEY_RESIDENT:
        return parse_real(key, v, 0, 0.9, &x->resident);
    case PLAN_KEY_TIER:
        if (strlen(v) >= sizeof(x->tier))
            return vram__fail(VRAM_EINVAL, "tier '%s' is too long", v);
        if (p && strcmp(v, "auto") && plan__tier_find(p, v) < 0)
            return plan__unknown_tier(p, v);
        vram__strlcpy(x->tier, v, sizeof(x->tier));
        return 0;
    }
    return vram__fail(VRAM_EINTERNAL, "setting %d has no parser", id);
}

static int unknown_key(const char *key)
{
    char list[512] = "";
    for (int i = 0; i < PLAN_NKEYS; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                 keys[i].name);
    return vram__fail(VRAM_EINVAL, "unknown setting '%s' (settings: %s)", key, list);
}

int plan__params_set(const vram_profile *p, plan_params *x, const char *kv)
{
    const char *eq = kv ? strchr(kv, '=') : NULL;
    if (!eq || eq == kv || !eq[1])
        return vram__fail(VRAM_EINVAL, "'%s' is not key=value (e.g. resolution=720p)", kv ? kv : "");
    char key[PLAN_NAME_MAX];
    size_t klen = (size_t)(eq - kv);
    if (klen >= sizeof(key))
        return unknown_key(kv);
    memcpy(key, kv, klen);
    key[klen] = '\0';
    int id = plan__key_find(key);
    if (id < 0)
        return unknown_key(key);
    return set_key(p, x, id, key, eq + 1);
}

int plan__params_apply(const vram_profile *p, plan_params *x, const char *const *kv, size_t n)
{
    x->frames_set = x->duration_set = false;
    for (size_t i = 0; i < n; i++) {
        int rc = plan__params_set(p, x, kv[i]);
        if (rc)
            return rc;
    }
    return 0;
}

int plan__params_apply_list(const vram_profile *p, plan_params *x, const plan_settings *s)
{
    const char *kv[PLAN_MAX_SETTINGS];
    for (int i = 0; i < s->n; i++)
        kv[i] = s->kv[i];
    return plan__params_apply(p, x, kv, (size_t)s->n);
}

int plan__params_finish(const vram_profile *p, plan_params *x)
{
    if (x->duration_s > 0) {
        double f = ceil(x->duration_s * x->fps - 1e-9);
        if (!(f <= PLAN_MAX_FRAMES))
            return vram__fail(VRAM_EINVAL, "duration %gs at %g fps is %.0f frames: absurd, at most %u",
                              x->duration_s, x->fps, f, PLAN_MAX_FRAMES);
        x->frames = f < 1 ? 1 : (uint32_t)f;
    }
    if (x->frames > PLAN_MAX_FRAMES)
        return vram__fail(VRAM_EINVAL, "frames %u is absurd: at most %u", x->frames, PLAN_MAX_FRAMES);
    /* Up to the model's rule (4n+1 for causal video VAEs): a few over the
     * limit at most. */
    unsigned st = p ? p->stride[0] : 1;
    if (p && p->causal && st > 1 && x->frames > 1)
        x->frames = (x->frames - 1 + st - 1) / st * st + 1;
    x->frames_set = x->duration_set = false;
    return 0;
}

/* ---- printing ------------------------------------------------------------------------ */

static int names_text(const vram_profile *p, uint32_t mask, bool stages, char *buf, size_t cap)
{
    if (!mask)
        return snprintf(buf, cap, "none");
    size_t at = 0;
    int n = stages ? p->nstage : p->ncomp;
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        if (mask & (1u << i)) {
            int w = snprintf(buf + at, cap > at ? cap - at : 0, "%s%s", at ? "," : "",
                             stages ? p->stage[i].name : p->comp[i].name);
            at += (size_t)(w > 0 ? w : 0);
        }
    return (int)at;
}

int plan__param_text(const vram_profile *p, const plan_params *x, int id, char *buf, size_t cap)
{
    switch (id) {
    case PLAN_KEY_RESOLUTION:
        return snprintf(buf, cap, "%ux%u", x->width, x->height);
    case PLAN_KEY_WIDTH:
        return snprintf(buf, cap, "%u", x->width);
    case PLAN_KEY_HEIGHT:
        return snprintf(buf, cap, "%u", x->height);
    case PLAN_KEY_FRAMES:
        return snprintf(buf, cap, "%u", x->frames);
    case PLAN_KEY_DURATION:
        return snprintf(buf, cap, "%g", x->fps > 0 ? x->frames / x->fps : 0.0);
    case PLAN_KEY_FPS:
        return snprintf(buf, cap, "%g", x->fps);
    case PLAN_KEY_STEPS:
        return snprintf(buf, cap, "%u", x->steps);
    case PLAN_KEY_BATCH:
        return snprintf(buf, cap, "%u", x->batch);
    case PLAN_KEY_CFG:
        return snprintf(buf, cap, "%s", x->cfg ? "on" : "off");
    case PLAN_KEY_LORA:
        return snprintf(buf, cap, "%u", x->lora);
    case PLAN_KEY_PRECISION:
        return snprintf(buf, cap, "%s", plan__dtype_name(x->precision));
    case PLAN_KEY_MEMORY:
        return snprintf(buf, cap, "%s", plan__memory_name(x->memory));
    case PLAN_KEY_VAE_TILING:
        return snprintf(buf, cap, "%s", x->tiling ? "on" : "off");
    case PLAN_KEY_CHUNK:
        return snprintf(buf, cap, "%u", x->chunk);
    case PLAN_KEY_CPU:
        return names_text(p, x->cpu, false, buf, cap);
    case PLAN_KEY_SKIP:
        return names_text(p, x->skip, true, buf, cap);
    case PLAN_KEY_AUDIO:
        return snprintf(buf, cap, "%g", x->audio_s);
    case PLAN_KEY_RESIDENT:
        return snprintf(buf, cap, "%g", x->resident);
    case PLAN_KEY_TIER:
        return snprintf(buf, cap, "%s", x->tier[0] ? x->tier : "auto");
    }
    return snprintf(buf, cap, "?");
}
