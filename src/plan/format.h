/* SPDX-License-Identifier: MIT */
/*
 * plan/format.h - the plan object, shared by the file that makes plans
 * (plan.c) and the file that prints them (format.c).
 */
#ifndef VRAM_PLAN_FORMAT_H
#define VRAM_PLAN_FORMAT_H

#include "plan/plan.h"

struct vram_plan {
    vram_profile prof;              /* a copy without its text: plans outlive profiles */
    plan_params x;                  /* the settings planned */
    uint64_t budget;
    bool from_device;               /* budget is a device's safe available */
    unsigned device;
    int tier;                       /* -1: none */
    bool tier_forced;
    plan_estimate modes[3];         /* beefy, lightweight, sequential */
    plan_estimate chosen;
    bool fits;
    size_t rung;                    /* ladder rungs applied */
    char why[1024];
    char values[PLAN_NKEYS][PLAN_SETTING_MAX];
    char alloc[128];
    char args[PLAN_ARGS_TEXT];      /* the pipeline's words ([args]), NUL after each */
    uint16_t arg_at[PLAN_ARGS_MAX_WORDS];
    int nargs;                      /* -1: they did not fit */
    bool refused;                   /* made by vram_plan_make_any although nothing fits: */
    vram_optimization change;       /* the optimizer's way out (level maximum), if any */
};

/* "12.3 GiB" with one decimal, for figures in double. */
const char *plan__gib(double bytes, char *buf, size_t cap);

/* Converts an inner estimate to the public one (VRAM_ERANGE past 2^64). */
int plan__export(const vram_profile *p, const plan_estimate *e, vram_estimate *out);

/* Writes an estimate as a JSON object (the value after a key). */
void plan__json_estimate(vram__json *j, const vram_profile *p, const plan_estimate *e);

/* Writes x's settings as a JSON object. */
void plan__json_params(vram__json *j, const vram_profile *p, const plan_params *x);

#endif /* VRAM_PLAN_FORMAT_H */
