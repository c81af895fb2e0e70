/* SPDX-License-Identifier: MIT */
/*
 * bench/bench.h - what the benches share: their options and where the build
 * they belong to is (the folder above bench/, which holds bin/, lib/,
 * tests/helpers/ and stubs/).
 */
#ifndef VRAM_BENCH_H
#define VRAM_BENCH_H

#include <limits.h>
#include <stdbool.h>
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

#endif
