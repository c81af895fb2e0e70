/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/sched_test.h - what the scheduler's tests share: sizes and a
 * context on simulated cards.
 */
#ifndef VRAM_TESTS_SCHED_TEST_H
#define VRAM_TESTS_SCHED_TEST_H

#include "vram.h"

#define GiB (1024ull * 1024 * 1024)
#define MiB (1024ull * 1024)

/* A context on the sim backend with cards `spec`, sharing allocations
 * through `state` (NULL: none).  NULL when it cannot be opened. */
static inline vram_ctx *open_sim(const char *spec, const char *state)
{
    vram_options *o = NULL;
    vram_options_new(&o);
    vram_options_set(o, "backend", "sim", NULL);
    vram_options_set(o, "sim", spec, NULL);
    if (state)
        vram_options_set(o, "sim-state", state, NULL);
    vram_ctx *ctx = NULL;
    vram_ctx_open(&ctx, o);
    vram_options_free(o);
    return ctx;
}

#endif
