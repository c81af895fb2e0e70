/* SPDX-License-Identifier: MIT */
/*
 * bench/bench.h - what the benches share: their options, where the build
 * they belong to is (the folder above bench/, which holds bin/, lib/,
 * tests/helpers/ and stubs/), and the goal lines bench/goals.sh gathers.
 */
#ifndef VRAM_BENCH_H
#define VRAM_BENCH_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The value of --seconds, or def. */
static inline double bench_seconds(int argc, char **argv, double def)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            return atof(argv[i + 1]);
    return def;
}

/* The build folder of this bench (BUILD/bench/NAME): false when it cannot
 * be told, and out is then "". */
static inline bool bench_build_dir(char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    out[0] = '\0';
    if (len <= 0 || (size_t)len >= cap)
        return false;
    self[len] = '\0';
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(self, '/');
        if (!slash)
            return false;
        *slash = '\0';
    }
    memcpy(out, self, strlen(self) + 1);
    return true;
}

/* One goal of an issue, as this run measured it, for bench/goals.sh: a
 * tab-separated line (goal, target, measured, met) appended to the file
 * $VRAM_BENCH_GOALS names; nothing when it is unset.  The bench's own table
 * says the same in more words. */
static inline void bench_goal(const char *goal, const char *target, bool met, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline void bench_goal(const char *goal, const char *target, bool met, const char *fmt, ...)
{
    const char *path = getenv("VRAM_BENCH_GOALS");
    FILE *f = path && *path ? fopen(path, "a") : NULL;
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(f, "%s\t%s\t", goal, target);
    vfprintf(f, fmt, ap);
    fprintf(f, "\t%s\n", met ? "met" : "NOT MET");
    va_end(ap);
    fclose(f);
}

#endif
