/* SPDX-License-Identifier: MIT */
/*
 * bench/bench.h - what the benches share: their options (bench_args),
 * where the build they belong to is (the folder above bench/, which holds
 * bin/, lib/, tests/helpers/ and stubs/), the removal of their folders, and
 * the goal lines bench/goals.sh gathers.
 */
#ifndef VRAM_BENCH_H
#define VRAM_BENCH_H

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One option of a bench, --name VALUE: a number from min to max (whole
 * numbers only where integer) stored in *value, or, where text is set, a
 * word stored in *text (one of choices, "a|b|c", where they are given). */
typedef struct bench_opt {
    const char *name;               /* "--seconds" */
    double *value;
    double min, max;
    bool integer;
    const char **text;
    const char *choices;
} bench_opt;

/* Whether word is one of "a|b|c". */
static inline bool bench_choice(const char *choices, const char *word)
{
    size_t n = strlen(word);
    for (const char *c = choices; c && *c;) {
        size_t len = strcspn(c, "|");
        if (len == n && n && !strncmp(c, word, n))
            return true;
        c += len + (c[len] == '|');
    }
    return false;
}

/* text as it may be printed to a terminal: cut to cap, control characters
 * as '?'. */
static inline void bench_shown(const char *text, char *out, size_t cap)
{
    size_t k = 0;
    for (const char *c = text; *c && k + 1 < cap; c++)
        out[k++] = (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c;
    out[k] = '\0';
}

/* A bench's command line: every word must be one of opts with its value
 * (a later one of the same name wins).
 * Returns 0 to go on; 1 after printing usage for --help (exit 0); 2 after
 * one line on stderr naming the bad option or value and what is accepted
 * (exit 2).  Text from the command line is printed with its control
 * characters as '?'. */
static inline int bench_args(int argc, char **argv, const char *prog, const char *usage, const bench_opt *opts,
                             size_t nopts)
{
    for (int i = 1; i < argc; i++) {
        char shown[80];
        bench_shown(argv[i], shown, sizeof(shown));
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: %s %s\n", prog, usage);
            return 1;
        }
        const bench_opt *o = NULL;
        for (size_t j = 0; j < nopts && !o; j++)
            if (!strcmp(argv[i], opts[j].name))
                o = &opts[j];
        if (!o) {
            fprintf(stderr, "%s: unknown option '%s' (usage: %s %s)\n", prog, shown, prog, usage);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value (usage: %s %s)\n", prog, o->name, prog, usage);
            return 2;
        }
        char *end = NULL, *text = argv[++i];
        bench_shown(text, shown, sizeof(shown));
        if (o->text) {
            if (o->choices && !bench_choice(o->choices, text)) {
                fprintf(stderr, "%s: %s takes one of %s, not '%s'\n", prog, o->name, o->choices, shown);
                return 2;
            }
            *o->text = text;
            continue;
        }
        double v = strtod(text, &end);
        if (end == text || *end || !(v >= o->min && v <= o->max) || (o->integer && v != (double)(long long)v)) {
            fprintf(stderr, "%s: %s takes %s from %.12g to %.12g, not '%s'\n", prog, o->name,
                    o->integer ? "a whole number" : "a number", o->min, o->max, shown);
            return 2;
        }
        *o->value = v;
    }
    return 0;
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

static inline int bench_remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)ftw;
    return (type == FTW_DP ? rmdir(path) : unlink(path)) && errno != ENOENT ? -1 : 0;
}

/* Removes the folder a bench made and all in it, without a shell (its path
 * may hold any character): 0, or -1 when something stayed. */
static inline int bench_remove_tree(const char *path)
{
    return nftw(path, bench_remove_entry, 16, FTW_DEPTH | FTW_PHYS) && errno != ENOENT ? -1 : 0;
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
