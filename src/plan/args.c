/* SPDX-License-Identifier: MIT */
/*
 * plan/args.c - a plan's settings as its pipeline's own command line: the
 * profile's [args] section says how the real script takes each setting
 * (Wan2.2's `--size {width}*{height}`, its offload flags for a memory
 * mode, SadTalker's `--enhancer gfpgan` or no flag at all), and this file
 * turns a plan's values into those words.
 *
 * Owns the meaning of [args] lines once profile.c has read them: which
 * line applies to a value, how {key} is filled, what a word may hold.  The
 * runner splices the words where a command says {args}, one argv word
 * each; they never pass through a shell as code.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "plan/plan.h"

/* A character a word may hold: printable, not a space, and nothing a
 * shell's double quotes would read (the CSV batch's scripts). */
static bool word_char(char c)
{
    return isgraph((unsigned char)c) && !strchr("\"'`$\\", c);
}

bool plan__args_words_ok(const char *words, char *why, size_t cap)
{
    for (const char *p = words; *p; p++) {
        if (*p == ' ' || *p == '\t')
            continue;
        if (*p == '{') {
            const char *close = strchr(p, '}');
            char key[PLAN_NAME_MAX] = "";
            size_t len = close ? (size_t)(close - p - 1) : 0;
            if (len && len < sizeof(key))
                memcpy(key, p + 1, len);
            if (!len || len >= sizeof(key) || plan__key_find(key) < 0) {
                snprintf(why, cap, "'%.*s' is not a {setting} (settings: resolution, width, height, "
                         "frames, steps, batch, memory, ...)", (int)(close ? len + 2 : strlen(p)), p);
                return false;
            }
            p = close;
            continue;
        }
        if (*p == '}' || !word_char(*p)) {
            snprintf(why, cap, "'%c' cannot be part of a word (quotes, '\\', '$', '`' and a lone "
                     "brace are refused: each word is one argument as written)", *p);
            return false;
        }
    }
    return true;
}

/* Whether line i applies to values: a line for the value itself, or one
 * for any value when no line for this value exists. */
static bool applies(const vram_profile *p, int i, char values[][PLAN_SETTING_MAX])
{
    const plan_arg *a = &p->arg[i];
    const char *now = values[a->key];
    if (a->value[0])
        return !strcmp(a->value, now);
    for (int j = 0; j < p->narg; j++)
        if (p->arg[j].key == a->key && p->arg[j].value[0] && !strcmp(p->arg[j].value, now))
            return false;
    return true;
}

int plan__args_words(const vram_profile *p, char values[][PLAN_SETTING_MAX], char *text, size_t cap,
                     uint16_t *at, int max_words)
{
    size_t used = 0;
    int n = 0;
    for (int i = 0; i < p->narg; i++) {
        if (!applies(p, i, values))
            continue;
        const char *s = p->arg[i].words;
        while (*s) {
            while (*s == ' ' || *s == '\t')
                s++;
            if (!*s)
                break;
            if (n == max_words || used >= cap || used > UINT16_MAX)
                return -1;
            at[n++] = (uint16_t)used;
            for (; *s && *s != ' ' && *s != '\t'; s++) {
                const char *piece = s;
                size_t len = 1;
                const char *close = *s == '{' ? strchr(s, '}') : NULL;
                if (close) {        /* checked when the profile was read */
                    char key[PLAN_NAME_MAX] = "";
                    size_t klen = (size_t)(close - s - 1);
                    memcpy(key, s + 1, klen < sizeof(key) ? klen : sizeof(key) - 1);
                    int k = plan__key_find(key);
                    piece = k >= 0 ? values[k] : "";
                    len = strlen(piece);
                    s = close;
                }
                if (used + len + 1 > cap)
                    return -1;
                memcpy(text + used, piece, len);
                used += len;
            }
            text[used++] = '\0';
        }
    }
    return n;
}

/* The settings a setting is made of, for what a line's {key} stands for. */
static bool covers(const char *ref, const char *key)
{
    if (!strcmp(ref, key))
        return true;
    if (!strcmp(key, "resolution"))
        return !strcmp(ref, "width") || !strcmp(ref, "height");
    if (!strcmp(key, "width") || !strcmp(key, "height"))
        return !strcmp(ref, "resolution");
    if (!strcmp(key, "duration") || !strcmp(key, "fps"))
        return !strcmp(ref, "frames") || !strcmp(ref, "duration");
    return false;
}

bool plan__args_use(const vram_profile *p, const char *key)
{
    for (int i = 0; p && key && i < p->narg; i++) {
        if (covers(plan__key_name(p->arg[i].key), key))
            return true;
        for (const char *s = strchr(p->arg[i].words, '{'); s; s = strchr(s + 1, '{')) {
            const char *close = strchr(s, '}');
            char ref[PLAN_NAME_MAX] = "";
            if (!close)
                break;
            size_t len = (size_t)(close - s - 1);
            memcpy(ref, s + 1, len < sizeof(ref) ? len : sizeof(ref) - 1);
            if (covers(ref, key))
                return true;
        }
    }
    return false;
}

const char *plan__find_args(const char *text)
{
    for (const char *p = text; p && *p; p++) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            p++;
            continue;
        }
        if (!strncmp(p, "{args}", 6))
            return p;
    }
    return NULL;
}
