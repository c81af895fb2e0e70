/* SPDX-License-Identifier: MIT */
/*
 * runner/shellarg.c - {key} values into a command without being run.
 *
 * Owns how a job's command gets its {key} values (from a CSV row, a ladder
 * rung, --set or the protocol): a value is data, never code.  In an argv
 * word it is pasted in (no shell reads it).  In the script of a shell
 * (`/bin/sh -c SCRIPT`, what a CSV batch runs) it is not pasted into the
 * script: the script names a positional parameter ("${1}") and the value
 * goes as a word after the script, so `a cat; id > f` is what $1 holds,
 * never a command.  The reference is written for where it stands in the
 * script (unquoted, in '...', in "..."), so it reads as one word.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/runner.h"
#include "sched/template.h"

/* The word after a shell's -c (or -ec, -lc...), or -1 when argv is not a
 * shell given a script. */
static int script_word(char *const *argv, size_t n)
{
    static const char *const shells[] = { "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox" };
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    bool shell = false;
    for (size_t i = 0; i < sizeof(shells) / sizeof(shells[0]); i++)
        shell |= !strcmp(base, shells[i]);
    for (size_t i = 1; shell && i + 1 < n && argv[i][0] == '-' && strcmp(argv[i], "--"); i++) {
        bool letters = argv[i][1] != '\0';
        for (const char *p = argv[i] + 1; *p; p++)
            letters &= isalpha((unsigned char)*p) != 0;
        if (letters && strchr(argv[i] + 1, 'c'))
            return (int)i + 1;
    }
    return -1;
}

/* The script with each {key} as a positional parameter; *used lists (by
 * kv index) the values to pass, *nused of them, numbered from `first`. */
static int script_expand(const char *text, const vram_kv *kv, size_t n, unsigned first, int *used,
                         size_t *nused, char **out)
{
    vram__buf b;
    vram__buf_init(&b);
    enum { PLAIN, SINGLE, DOUBLE } q = PLAIN;
    vram__template_token t;
    for (const char *p = text, *next; *p; p = next) {
        next = vram__template_next(p, &t);
        if (t.key) {
            int k = vram__template_lookup(kv, n, t.text, t.len);
            if (k < 0) {
                vram__buf_free(&b);
                return vram__template_unknown(t.text, t.len, kv, n);
            }
            size_t slot = 0;
            while (slot < *nused && used[slot] != k)
                slot++;
            if (slot == *nused)
                used[(*nused)++] = k;
            unsigned pos = first + (unsigned)slot;
            if (q == PLAIN)
                vram__buf_printf(&b, "\"${%u}\"", pos);
            else if (q == DOUBLE)
                vram__buf_printf(&b, "${%u}", pos);
            else
                vram__buf_printf(&b, "'\"${%u}\"'", pos);
            continue;
        }
        /* Text: the shell's quotes are followed, so that a reference is
         * written for where it stands; a backslash keeps the next
         * character from being read as a quote (or a brace). */
        char c = *p;
        if (c == '\\' && q != SINGLE && p[1]) {
            vram__buf_put(&b, p, 2);
            next = p + 2;
            continue;
        }
        if (c == '\'' && q != DOUBLE)
            q = q == SINGLE ? PLAIN : SINGLE;
        else if (c == '"' && q != SINGLE)
            q = q == DOUBLE ? PLAIN : DOUBLE;
        vram__buf_put(&b, t.text, t.len);
    }
    int rc;
    *out = vram__buf_take(&b, &rc);
    return rc;
}

static void free_words(char **w, size_t n)
{
    for (size_t i = 0; w && i < n; i++)
        free(w[i]);
    free(w);
}

int vram__argv_expand(char *const *argv, const vram_kv *kv, size_t nkv, char ***out, char *display, size_t cap)
{
    size_t n = 0;
    while (argv[n])
        n++;
    *out = NULL;
    if (cap)
        display[0] = '\0';
    int s = n ? script_word(argv, n) : -1;
    size_t after = s >= 0 ? n - (size_t)s - 1 : 0;     /* words after the script: $0, $1... */
    char **w = calloc(n + 2 + nkv, sizeof(*w));
    int *used = calloc(nkv + 1, sizeof(*used));
    if (!w || !used) {
        free(w);
        free(used);
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    }
    size_t nw = 0, nused = 0, at = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char *plain = NULL;
        rc = vram_template_expand(argv[i], kv, nkv, &plain);
        if (rc)
            break;
        if (cap)                     /* as the user reads it: values in place */
            at += (size_t)snprintf(display + at, at < cap ? cap - at : 0, "%s%s", i ? " " : "", plain);
        if ((int)i == s && strcmp(plain, argv[i])) {
            free(plain);
            rc = script_expand(argv[i], kv, nkv, after ? (unsigned)after : 1, used, &nused, &w[nw]);
        } else {
            w[nw] = plain;
        }
        if (!rc)
            nw++;
    }
    if (!rc && nused && !after)
        rc = (w[nw] = strdup(argv[0])) ? (nw++, 0) : vram__fail(VRAM_ENOMEM, "out of host memory");
    for (size_t i = 0; !rc && i < nused; i++)
        rc = (w[nw] = strdup(kv[used[i]].value)) ? (nw++, 0) : vram__fail(VRAM_ENOMEM, "out of host memory");
    free(used);
    if (rc) {
        free_words(w, nw);
        return rc;
    }
    if (cap && at >= cap)
        display[cap - 1] = '\0';
    *out = w;
    return 0;
}
