/* SPDX-License-Identifier: MIT */
/*
 * tests/runner/test_args.c - {args} in a job's command: the plan's words
 * ([args]) spliced in as argv words of their own, none at all when the
 * plan gives none; in an sh -c script each in double quotes; refused
 * without a model, in a profile without [args], and inside another word;
 * {{args}} is a literal.
 */
#include <stdlib.h>
#include <unistd.h>

#include "test.h"
#include "runner/runner.h"

/* The shipped profiles, not a calibrated copy in the user's folder. */
__attribute__((constructor)) static void no_user_profiles(void)
{
    setenv("XDG_CONFIG_HOME", "/nonexistent/vram-test-config", 1);
}

static vram_plan *plan_for(vram_profile **p, const char *model, const char *const *set, size_t n)
{
    vram_plan *plan = NULL;
    unsetenv("VRAM_MODE");
    if (vram_profile_load(NULL, model, p) || vram_plan_make(NULL, *p, set, n, 1ull << 40, 0, &plan))
        fprintf(stderr, "%s: %s\n", model, vram_last_error());
    return plan;
}

static const char *joined(char **w)
{
    static char buf[1024];
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; w && w[i]; i++)
        at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%s[%s]", i ? " " : "", w[i]);
    return buf;
}

TEST(each_word_is_an_argv_word_and_a_dropped_flag_is_none)
{
    vram_profile *p = NULL;
    const char *high[] = { "tier=high" }, *low[] = { "tier=minimal" };
    vram_plan *plan = plan_for(&p, "sadtalker", high, 1);
    CHECK(plan != NULL);
    char *argv[] = { "python3", "inference.py", "--source_image", "a b.png", "{args}", "--verbose", NULL };
    char **out = NULL;
    CHECK_OK(vram__args_splice(argv, plan, &out));
    CHECK_STR_EQ(joined(out), "[python3] [inference.py] [--source_image] [a b.png] [--size] [512] "
                              "[--batch_size] [2] [--enhancer] [gfpgan] [--verbose]");
    vram__args_free(out);
    vram_plan_free(plan);
    vram_profile_free(p);
    plan = plan_for(&p, "sadtalker", low, 1);
    CHECK(plan != NULL);
    CHECK_OK(vram__args_splice(argv, plan, &out));
    CHECK_STR_EQ(joined(out), "[python3] [inference.py] [--source_image] [a b.png] [--size] [256] "
                              "[--batch_size] [1] [--verbose]");
    vram__args_free(out);
    vram_plan_free(plan);
    vram_profile_free(p);
}

TEST(in_a_shell_script_each_word_is_quoted)
{
    vram_profile *p = NULL;
    const char *set[] = { "tier=480p", "memory=beefy" };
    vram_plan *plan = plan_for(&p, "wan2.2-ti2v-5b", set, 2);
    CHECK(plan != NULL);
    char *argv[] = { "/bin/sh", "-c", "python3 generate.py {args} && echo {{args}}", NULL };
    char **out = NULL;
    CHECK_OK(vram__args_check(argv, p));
    CHECK_OK(vram__args_splice(argv, plan, &out));
    CHECK_STR_EQ(out[2], "python3 generate.py \"--size\" \"832*480\" \"--frame_num\" \"121\" \"--sample_steps\" "
                         "\"50\" \"--offload_model\" \"False\" \"--convert_model_dtype\" && echo {{args}}");
    CHECK(out[3] == NULL);
    vram__args_free(out);
    vram_plan_free(plan);
    vram_profile_free(p);
}

TEST(where_args_cannot_stand)
{
    char *bare[] = { "python3", "x.py", "{args}", NULL };
    char *inside[] = { "python3", "x.py", "--flags={args}", NULL };
    char *literal[] = { "echo", "{{args}}", NULL };
    CHECK(!vram__args_used(literal));
    CHECK_OK(vram__args_check(literal, NULL));
    CHECK_ERR(vram__args_check(bare, NULL), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "needs a model");
    vram_profile *p = NULL, *g = NULL;
    CHECK_OK(vram_profile_load(NULL, "sadtalker", &p));
    CHECK_ERR(vram__args_check(inside, p), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "'--flags={args}'");
    CHECK_OK(vram_profile_load(NULL, "generic-diffusion", &g));
    CHECK_ERR(vram__args_check(bare, g), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "has no [args] section");
    CHECK_OK(vram__args_check(bare, p));
    vram_profile_free(p);
    vram_profile_free(g);
}

/* {key} in an sh -c script and in a plain word, read by the one tokenizer
 * (sched/template.h): a value is a positional parameter written for where
 * it stands (unquoted, '...', "..."), pasted into a plain word; {{ }} are
 * braces and braces around other text are text in both; a backslash keeps
 * the next character in the script. */
TEST(key_values_in_a_script_and_a_word)
{
    vram_kv kv[] = { { "name", "a b; id" }, { "n", "2" } };
    char *argv[] = { "sh", "-c", "echo {name} '{name}' \"{name}\" {{name}} {not a key} \\{n} {n}", "x{n}y",
                     NULL };
    char **w = NULL, shown[256];
    CHECK_OK(vram__argv_expand(argv, kv, 2, &w, shown, sizeof(shown)));
    CHECK_STR_EQ(w[0], "sh");
    CHECK_STR_EQ(w[2], "echo \"${1}\" ''\"${1}\"'' \"${1}\" {name} {not a key} \\{n} \"${2}\"");
    CHECK_STR_EQ(w[3], "x2y");       /* $0: the word after the script, pasted */
    CHECK_STR_EQ(w[4], "a b; id");
    CHECK_STR_EQ(w[5], "2");
    CHECK(w[6] == NULL);
    CHECK_CONTAINS(shown, "echo a b; id 'a b; id'");
    for (size_t i = 0; w[i]; i++)
        free(w[i]);
    free(w);
    char *bad[] = { "sh", "-c", "echo {gone}", NULL };
    CHECK_ERR(vram__argv_expand(bad, kv, 2, &w, NULL, 0), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "'{gone}' in the command has no value (known: {name}, {n}");
}
