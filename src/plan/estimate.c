/* SPDX-License-Identifier: MIT */
/*
 * plan/estimate.c - what one run needs: peak GPU bytes (weights, the
 * largest stage's activations, context, allocator slack, margin), host RAM
 * and seconds, in each memory mode.
 *
 * Owns the estimator's arithmetic and nothing else.  Every figure is a sum
 * of terms a profile gives coefficients for, computed in double and checked
 * before it becomes a uint64_t: a setting that would pass 2^64 bytes is
 * refused, never wrapped.  The modes differ only in where weights are
 * during each stage:
 *   beefy        every component used resident for the whole run;
 *   lightweight  a stage's components on the GPU during that stage, moved
 *                in from pinned host memory once per entry;
 *   sequential   weights streamed block by block (two blocks in flight,
 *                plus the `resident` share kept), once per pass.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plan/plan.h"

/* Past this a figure is not a number of bytes (2^64 is 1.8e19). */
#define PLAN_MAX_FIGURE 1.8e19

static uint32_t window_frames(const plan_params *x)
{
    return x->chunk && x->chunk < x->frames ? x->chunk : x->frames;
}

static double chunks(const plan_params *x)
{
    uint32_t w = window_frames(x);
    return w ? ceil((double)x->frames / w) : 1;
}

static double ceil_div(double a, double b)
{
    return ceil(a / b);
}

double plan__tokens(const vram_profile *p, const plan_params *x)
{
    double fw = window_frames(x);
    double lat_f = p->causal ? 1 + ceil_div(fw - 1, p->stride[0]) : ceil_div(fw, p->stride[0]);
    lat_f = ceil_div(lat_f, p->patch[0]);
    double lat_h = ceil_div(x->height, (double)p->stride[1] * p->patch[1]);
    double lat_w = ceil_div(x->width, (double)p->stride[2] * p->patch[2]);
    return lat_f * lat_h * lat_w;
}

static bool stage_active(const plan_params *x, int s)
{
    return !(x->skip & (1u << s));
}

/* A stage runs on the CPU when its component does (such a component is
 * alone in its stages: profile.c checks). */
static bool stage_on_cpu(const vram_profile *p, const plan_params *x, int s)
{
    return (p->stage[s].components & ~x->cpu) == 0;
}

/* The raw inputs of one pass of stage s. */
static void features(const vram_profile *p, const plan_params *x, int s, double f[PLAN_NFEATURES])
{
    double tokens = plan__tokens(p, x);
    double frame_px = (double)x->width * x->height;
    f[PLAN_F_FIXED] = 1;
    f[PLAN_F_TOKEN] = tokens;
    f[PLAN_F_TOKEN2] = tokens * tokens;
    f[PLAN_F_PIXEL] = p->stage[s].runs == PLAN_RUNS_FRAME ? frame_px : frame_px * window_frames(x);
    f[PLAN_F_AREA] = frame_px;
    f[PLAN_F_AUDIO] = x->audio_s;
}

void plan__act_terms(const vram_profile *p, const plan_params *x, int s, double t[PLAN_NFEATURES])
{
    const plan_stage *st = &p->stage[s];
    memset(t, 0, sizeof(double) * PLAN_NFEATURES);
    if (!stage_active(x, s) || stage_on_cpu(p, x, s))
        return;
    double f[PLAN_NFEATURES];
    features(p, x, s, f);
    double mult = x->batch;
    if (x->cfg && st->guided)
        mult *= st->cfg_memory;
    if (st->follows && x->precision == PLAN_FP32)
        mult *= 2;                  /* activations follow the weights' width */
    for (int j = 0; j < PLAN_NFEATURES; j++)
        t[j] = mult * st->act[j] * f[j];
    if (x->tiling) {
        t[PLAN_F_PIXEL] *= st->tiling;
        t[PLAN_F_AREA] *= st->tiling;
    }
}

double plan__stage_activation(const vram_profile *p, const plan_params *x, int s)
{
    double t[PLAN_NFEATURES], sum = 0;
    plan__act_terms(p, x, s, t);
    for (int j = 0; j < PLAN_NFEATURES; j++)
        sum += t[j];
    return sum;
}

/* How many passes of stage s one run makes (time), guidance included. */
static double passes(const vram_profile *p, const plan_params *x, int s)
{
    const plan_stage *st = &p->stage[s];
    double n;
    switch (st->runs) {
    case PLAN_RUNS_ONCE: n = x->batch; break;
    case PLAN_RUNS_CHUNK: n = chunks(x) * x->batch; break;
    case PLAN_RUNS_STEP: n = chunks(x) * x->steps * st->share * x->batch; break;
    default: n = x->frames; break;        /* per frame: batch is frames at once */
    }
    return x->cfg && st->guided ? 2 * n : n;
}

void plan__time_terms(const vram_profile *p, const plan_params *x, int s, double t[PLAN_NFEATURES])
{
    const plan_stage *st = &p->stage[s];
    memset(t, 0, sizeof(double) * PLAN_NFEATURES);
    if (!stage_active(x, s))
        return;
    double f[PLAN_NFEATURES];
    features(p, x, s, f);
    double mult = passes(p, x, s);
    if (st->follows && x->precision == PLAN_FP32)
        mult *= p->fp32_factor;
    if (st->follows && x->precision == PLAN_INT8)
        mult *= p->int8_factor;
    if (x->tiling && st->tiling < 1)
        mult *= p->tiling_time;
    if (stage_on_cpu(p, x, s))
        mult *= p->cpu_factor;
    for (int j = 0; j < PLAN_NFEATURES; j++)
        t[j] = mult * st->time[j] * f[j];
}

/* ---- weights ---------------------------------------------------------------- */

static double weight_bytes(const vram_profile *p, const plan_params *x, int c)
{
    const plan_component *k = &p->comp[c];
    return k->params * plan__dtype_bytes(k->follows ? x->precision : k->dtype);
}

static double lora_bytes(const vram_profile *p, const plan_params *x, int c)
{
    return p->comp[c].lora ? p->lora_bytes * x->lora : 0;
}

/* Components some active stage uses. */
static uint32_t used_components(const vram_profile *p, const plan_params *x)
{
    uint32_t used = 0;
    for (int s = 0; s < p->nstage; s++)
        if (stage_active(x, s))
            used |= p->stage[s].components;
    return used;
}

/* Bytes of component c on the GPU while its stage runs in sequential mode:
 * two blocks in flight plus the resident share of the rest. */
static double streamed_bytes(const vram_profile *p, const plan_params *x, int c)
{
    const plan_component *k = &p->comp[c];
    double w = weight_bytes(p, x, c);
    if (k->blocks < 3)
        return w;                   /* nothing to gain from streaming it */
    double largest = k->largest > 0 ? k->largest / k->params : 1.0 / k->blocks;
    double two = w * (largest + (1 - largest) / (k->blocks - 1));
    return two + x->resident * (w - two);
}

/* Weights on the GPU while stage s runs, in mode. */
static double stage_weights(const vram_profile *p, const plan_params *x, int s, int mode)
{
    double sum = 0;
    uint32_t comps = mode == VRAM_MEMORY_BEEFY ? used_components(p, x) : p->stage[s].components;
    for (int c = 0; c < p->ncomp; c++) {
        if (!(comps & (1u << c)) || (x->cpu & (1u << c)))
            continue;
        sum += mode == VRAM_MEMORY_SEQUENTIAL ? streamed_bytes(p, x, c) : weight_bytes(p, x, c);
        sum += lora_bytes(p, x, c);
    }
    return sum;
}

/* Host RAM: what lives there in the mode (weights kept for moving in,
 * components run on the CPU), or, for beefy, the largest checkpoint staged
 * there while loading. */
static double host_bytes(const vram_profile *p, const plan_params *x, int mode)
{
    uint32_t used = used_components(p, x);
    double sum = 0, largest = 0;
    for (int c = 0; c < p->ncomp; c++) {
        if (!(used & (1u << c)))
            continue;
        double w = weight_bytes(p, x, c) + lora_bytes(p, x, c);
        bool cpu = x->cpu & (1u << c);
        if (cpu || mode != VRAM_MEMORY_BEEFY)
            sum += w;
        else if (w > largest)
            largest = w;
    }
    return sum + largest;
}

/* ---- time -------------------------------------------------------------------- */

/* Times stage s is entered (components moved in) in lightweight mode. */
static double entries(const vram_profile *p, const plan_params *x, int s)
{
    int runs = p->stage[s].runs;
    return runs == PLAN_RUNS_CHUNK || runs == PLAN_RUNS_STEP ? chunks(x) : 1;
}

/* Times stage s streams its weights in sequential mode: every pass that
 * runs the whole network (guidance batched in cfg_memory 2 is one pass). */
static double streams(const vram_profile *p, const plan_params *x, int s)
{
    const plan_stage *st = &p->stage[s];
    double guided = x->cfg && st->guided && st->cfg_memory < 2 ? 2 : 1;
    switch (st->runs) {
    case PLAN_RUNS_STEP: return chunks(x) * ceil(x->steps * st->share) * guided;
    case PLAN_RUNS_CHUNK: return chunks(x) * guided;
    case PLAN_RUNS_FRAME: return ceil((double)x->frames / x->batch);
    default: return guided;
    }
}

static double transfer_seconds(const vram_profile *p, const plan_params *x, int mode)
{
    if (mode == VRAM_MEMORY_BEEFY)
        return 0;
    double sec = 0;
    for (int s = 0; s < p->nstage; s++) {
        if (!stage_active(x, s))
            continue;
        for (int c = 0; c < p->ncomp; c++) {
            if (!(p->stage[s].components & (1u << c)) || (x->cpu & (1u << c)))
                continue;
            double w = weight_bytes(p, x, c) + lora_bytes(p, x, c);
            unsigned blocks = p->comp[c].blocks;
            if (mode == VRAM_MEMORY_LIGHTWEIGHT || blocks < 3)
                sec += entries(p, x, s) * w / p->bandwidth;
            else
                sec += streams(p, x, s) * ((1 - x->resident) * w / p->bandwidth +
                                           blocks * p->stream_latency);
        }
    }
    return sec;
}

static double compute_seconds(const vram_profile *p, const plan_params *x)
{
    double sec = 0, t[PLAN_NFEATURES];
    for (int s = 0; s < p->nstage; s++) {
        plan__time_terms(p, x, s, t);
        for (int j = 0; j < PLAN_NFEATURES; j++)
            sec += t[j];
    }
    return sec;
}

/* ---- the estimate -------------------------------------------------------------- */

int plan__bytes(double v, uint64_t *out)
{
    if (!(v >= 0) || v >= PLAN_MAX_FIGURE)
        return VRAM_ERANGE;
    *out = (uint64_t)vram__llround(v);
    return 0;
}

static int overflow(const vram_profile *p, const plan_params *x)
{
    return vram__fail(VRAM_ERANGE,
                      "%s at %ux%u, %u frames (chunk %u), batch %u needs more than 2^64 bytes: "
                      "these settings overflow 64-bit byte counts; lower them",
                      p->name, x->width, x->height, x->frames, x->chunk, x->batch);
}

int plan__estimate_mode(const vram_profile *p, const plan_params *x, int mode, plan_estimate *out)
{
    memset(out, 0, sizeof(*out));
    out->mode = mode;
    out->peak_stage = -1;
    double best = -1;
    for (int s = 0; s < p->nstage; s++) {
        if (!stage_active(x, s))
            continue;
        double act = plan__stage_activation(p, x, s);
        double w = stage_weights(p, x, s, mode);
        /* A stage whose bytes are not a number must not drop out of the
         * comparison below (NaN is never larger), leaving a smaller peak. */
        if (!(w + act < PLAN_MAX_FIGURE))
            return overflow(p, x);
        if (w + act > best) {
            best = w + act;
            out->weights = w;
            out->activations = act;
            out->peak_stage = s;
        }
    }
    double tensors = out->weights + out->activations;
    out->context = p->context_bytes;
    out->slack = tensors * p->slack;
    out->margin = (tensors + out->slack + out->context) * p->margin;
    out->peak = tensors + out->slack + out->context + out->margin;
    out->host = host_bytes(p, x, mode);
    out->seconds = compute_seconds(p, x) + transfer_seconds(p, x, mode);
    if (!(out->peak < PLAN_MAX_FIGURE) || !(out->host < PLAN_MAX_FIGURE) || !isfinite(out->seconds))
        return overflow(p, x);
    return 0;
}
