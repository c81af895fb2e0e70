/* SPDX-License-Identifier: MIT */
/*
 * runner/args.c - {args} in a job's command: the plan's settings as the
 * pipeline's own flags (the profile's [args], plan/args.c), spliced in as
 * words of their own.
 *
 * Owns where {args} may stand and what it becomes there.  A word of the
 * command that is exactly {args} becomes the plan's words, one argv word
 * each (none at all when the plan gives none), so no shell ever reads
 * them.  In the script of a shell (`sh -c SCRIPT`, what a CSV batch runs)
 * {args} becomes the words, each in double quotes; [args] refuses quotes,
 * '\', '$' and '`' in what a profile writes, and a plan's values hold none,
 * so the script reads each one as one word and runs nothing of them.
 * Anywhere else {args} is refused.  {{args}} stays a literal "{args}".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"
#include "runner/runner.h"
#include "sched/template.h"

bool vram__args_used(char *const *argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        if (plan__find_args(argv[i]))
            return true;
    return false;
}

/* Whether word i of argv is the script of a shell: argv[0] a shell, the
 * word before it an option with 'c' among its letters (-c, -ec, -lc). */
static bool is_script(char *const *argv, size_t i)
{
    static const char *const shells[] = { "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash" };
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    bool shell = false;
    for (size_t k = 0; k < sizeof(shells) / sizeof(shells[0]); k++)
        shell |= !strcmp(base, shells[k]);
    if (!shell || i < 2)
        return false;
    const char *opt = argv[i - 1];
    if (opt[0] != '-' || !opt[1] || opt[1] == '-')
        return false;
    for (const char *p = opt + 1; *p; p++)
        if (*p < 'a' || *p > 'z')
            return false;
    return strchr(opt + 1, 'c') != NULL;
}

/* {args} only as a word of its own or in a shell's script. */
static int check_places(char *const *argv)
{
    for (size_t i = 0; argv[i]; i++)
        if (plan__find_args(argv[i]) && strcmp(argv[i], "{args}") && !is_script(argv, i))
            return vram__fail(VRAM_EINVAL, "{args} must be a word of its own in the command (or stand "
                              "in the script of sh -c), not part of '%s'", argv[i]);
    return 0;
}

int vram__args_check(char *const *argv, const vram_profile *profile)
{
    if (!vram__args_used(argv))
        return 0;
    if (!profile)
        return vram__template_args_need_model();
    if (!profile->has_args)
        return vram__fail(VRAM_EINVAL, "{args} in the command, but profile %s has no [args] section: it does "
                          "not say how its pipeline takes its settings (write the flags with {key})",
                          profile->name);
    return check_places(argv);
}

void vram__args_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

/* text with each {args} as the plan's words, each in double quotes. */
static char *script_with(const char *text, const vram_plan *plan)
{
    vram__buf b;
    vram__buf_init(&b);
    for (const char *p = text, *at; *p; p = at + 6) {
        at = plan__find_args(p);
        if (!at) {
            vram__buf_puts(&b, p);
            break;
        }
        vram__buf_put(&b, p, (size_t)(at - p));
        for (size_t w = 0; vram_plan_arg(plan, w); w++)
            vram__buf_printf(&b, "%s\"%s\"", w ? " " : "", vram_plan_arg(plan, w));
    }
    int rc;
    char *out = vram__buf_take(&b, &rc);
    return rc ? NULL : out;
}

int vram__args_splice(char *const *argv, const vram_plan *plan, char ***out)
{
    *out = NULL;
    if (!vram__args_used(argv))
        return 0;
    int rc = plan ? check_places(argv) : vram__args_check(argv, NULL);
    if (rc)
        return rc;
    if (!vram_plan_has_args(plan))
        return vram__fail(VRAM_EINVAL, "{args} in the command, but the profile has no [args] section: it "
                          "does not say how its pipeline takes its settings (write the flags with {key})");
    size_t n = 0, nw = 0;
    while (argv[n])
        n++;
    while (vram_plan_arg(plan, nw))
        nw++;
    char **w = calloc(n * (nw + 1) + 1, sizeof(*w));
    if (!w)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(argv[i], "{args}")) {
            for (size_t j = 0; j < nw; j++)
                if (!(w[k++] = strdup(vram_plan_arg(plan, j))))
                    goto oom;
        } else if (plan__find_args(argv[i])) {
            if (!(w[k++] = script_with(argv[i], plan)))
                goto oom;
        } else if (!(w[k++] = strdup(argv[i]))) {
            goto oom;
        }
    }
    *out = w;
    return 0;
oom:
    vram__args_free(w);
    return vram__fail(VRAM_ENOMEM, "out of host memory");
}
