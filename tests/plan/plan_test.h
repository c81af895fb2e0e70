/* SPDX-License-Identifier: MIT */
/*
 * tests/plan/plan_test.h - what the planning tests share: the shipped
 * profiles' names, loading one, and a scratch folder.
 *
 * Every test runs with XDG_CONFIG_HOME pointed at a fresh folder, so that
 * calibrated copies in the real one never change what the tests see.
 */
#ifndef VRAM_TESTS_PLAN_TEST_H
#define VRAM_TESTS_PLAN_TEST_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan/plan.h"
#include "test.h"

static const char *const shipped[] = {
    "sadtalker", "latentsync", "wan2.2-t2v-a14b", "wan2.2-i2v-a14b",
    "wan2.2-ti2v-5b", "hunyuanvideo-avatar", "generic-diffusion",
};
#define NSHIPPED (sizeof(shipped) / sizeof(shipped[0]))

static char scratch_path[256];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_scratch(void)
{
    if (scratch_path[0])
        nftw(scratch_path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A scratch folder for this test binary, removed at exit; XDG_CONFIG_HOME
 * points into it. */
static inline const char *scratch_dir(void)
{
    char *dir = scratch_path;
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof(scratch_path), "%s/vram-plan-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir))
            return NULL;
        atexit(remove_scratch);
        char cfg[300];
        snprintf(cfg, sizeof(cfg), "%s/config", dir);
        setenv("XDG_CONFIG_HOME", cfg, 1);
        unsetenv("VRAM_PROFILES");
        unsetenv("VRAM_MODE");
    }
    return dir;
}

static inline vram_profile *load_shipped(const char *name)
{
    vram_profile *p = NULL;
    scratch_dir();
    if (vram_profile_load(NULL, name, &p))
        fprintf(stderr, "load %s: %s\n", name, vram_last_error());
    return p;
}

/* Writes text to dir/name and returns the path (static buffer). */
static inline const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", scratch_dir(), name);
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

/* A deterministic generator for the property tests. */
static inline uint32_t rnd(uint32_t lo, uint32_t hi)
{
    static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (uint32_t)(rng_state % (uint64_t)(hi - lo + 1));
}

#endif
