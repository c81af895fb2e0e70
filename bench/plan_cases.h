/* SPDX-License-Identifier: MIT */
/*
 * bench/plan_cases.h - the settings the optimizer is timed and tested on:
 * for each shipped profile, a request heavier than its defaults, so that
 * small budgets need several levers.  Shared by bench/plan.c and
 * tests/plan/test_optimize.c, which must measure the same thing.
 */
#ifndef VRAM_BENCH_PLAN_CASES_H
#define VRAM_BENCH_PLAN_CASES_H

#include <string.h>

/* Fills set (room for 4) and returns how many settings. */
static inline size_t plan_case_heavy(const char *model, const char **set)
{
    size_t n = 0;
    if (!strcmp(model, "sadtalker")) {
        set[n++] = "resolution=512px";
        set[n++] = "batch=8";
    } else if (!strcmp(model, "latentsync")) {
        set[n++] = "steps=50";
    } else if (!strcmp(model, "hunyuanvideo-avatar")) {
        set[n++] = "tier=maximum-quality";
    } else if (!strncmp(model, "wan2.2", 6)) {
        set[n++] = "resolution=1080p";
        set[n++] = "steps=60";
        set[n++] = "duration=8";
    } else {
        set[n++] = "resolution=768px";
        set[n++] = "frames=32";
        set[n++] = "batch=2";
    }
    return n;
}

#endif
