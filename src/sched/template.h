/* SPDX-License-Identifier: MIT */
/*
 * sched/template.h - the one tokenizer of {key} templates (sched/ladder.c).
 *
 * A template is text with {KEY} where a value goes; "{{" and "}}" are a
 * literal brace, and braces around anything but key characters are text.
 * The plain expansion (vram_template_expand) and a shell script's, where a
 * value becomes a positional parameter (runner/shellarg.c), read the pieces
 * from here and write them their own ways.
 */
#ifndef VRAM_SCHED_TEMPLATE_H
#define VRAM_SCHED_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "vram.h"

typedef struct vram__template_token {
    bool key;                       /* {KEY}: text and len name KEY */
    const char *text;               /* else one character of text ("{{": one brace) */
    size_t len;
} vram__template_token;

/* The token of a template that starts at p (*p is not '\0') into *out;
 * returns where the next one starts. */
const char *vram__template_next(const char *p, vram__template_token *out);
/* The index of key (len bytes) in kv, later pairs winning; -1 if none. */
int vram__template_lookup(const vram_kv *kv, size_t n, const char *key, size_t len);
/* VRAM_EINVAL, naming the key that has no value and the keys kv has. */
int vram__template_unknown(const char *key, size_t len, const vram_kv *kv, size_t n);
/* VRAM_EINVAL: {args} in a command without a model. */
int vram__template_args_need_model(void);
/* What a command would fail with at its start, said before it waits or is
 * queued: VRAM_EINVAL naming its first {key} that neither a setting (keys:
 * nkeys setting names), the first rung of l (NULL: no ladder) nor, when
 * planned (a model's job), the plan gives a value; or its {args}, which
 * only a model's plan fills. */
int vram__template_check_command(char *const *argv, const char *const *keys, size_t nkeys,
                                 const vram_ladder *l, bool planned);

#endif /* VRAM_SCHED_TEMPLATE_H */
