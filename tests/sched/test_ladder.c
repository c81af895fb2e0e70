/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_ladder.c - ladders and {key} templates.
 */
#include "test.h"
#include "sched/template.h"

#define GiB (1024ull * 1024 * 1024)

TEST(rungs_inherit_and_override)
{
    vram_ladder *l;
    CHECK_OK(vram_ladder_parse("batch=8 enhancer=gfpgan vram=6GiB; batch=1 vram=3GiB;enhancer=none vram=1GiB;", &l));
    CHECK_EQ(vram_ladder_count(l), 3);
    vram_rung g;
    CHECK_OK(vram_ladder_rung(l, 0, &g));
    CHECK_EQ_U64(g.bytes, 6 * GiB);
    CHECK(g.fn == NULL);
    CHECK_ERR(vram_ladder_rung(l, 3, &g), VRAM_ENOENT);
    CHECK_STR_EQ(vram_ladder_get(l, 0, "batch"), "8");
    CHECK_STR_EQ(vram_ladder_get(l, 1, "batch"), "1");
    CHECK_STR_EQ(vram_ladder_get(l, 1, "enhancer"), "gfpgan");
    CHECK_STR_EQ(vram_ladder_get(l, 2, "enhancer"), "none");
    CHECK_STR_EQ(vram_ladder_get(l, 2, "batch"), "1");
    CHECK(vram_ladder_get(l, 2, "steps") == NULL);
    CHECK(vram_ladder_get(l, 3, "batch") == NULL);
    const char *k, *v;
    CHECK_OK(vram_ladder_setting(l, 1, 0, &k, &v));  /* its own, not inherited */
    CHECK_STR_EQ(k, "batch");
    CHECK_STR_EQ(v, "1");
    CHECK_ERR(vram_ladder_setting(l, 1, 1, &k, &v), VRAM_ENOENT);
    vram_ladder_free(l);
    vram_ladder_free(NULL);
    CHECK_EQ(vram_ladder_count(NULL), 0);
}

TEST(a_ladder_must_get_cheaper)
{
    vram_ladder *l;
    CHECK_ERR(vram_ladder_parse("batch=8 vram=4GiB; batch=16 vram=6GiB", &l), VRAM_EINVAL);
    CHECK(l == NULL);
    CHECK_CONTAINS(vram_last_error(), "does not get cheaper: rung 1 needs 4.0 GiB, rung 2 needs 6.0 GiB");
    CHECK_ERR(vram_ladder_parse("batch=8 vram=4GiB; batch=1 vram=4GiB", &l), VRAM_EINVAL);
    CHECK_ERR(vram_ladder_parse("batch=8 vram=4GiB; batch=1", &l), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "every rung or on none");
    CHECK_OK(vram_ladder_parse("batch=8; batch=1", &l));    /* no budgets: nothing to compare */
    vram_ladder_free(l);
}

TEST(the_first_rung_is_the_first_attempt)
{
    vram_ladder *l;
    uint64_t first;
    CHECK_OK(vram_ladder_parse("a=1 vram=3GiB; a=2 vram=2GiB", &l));
    CHECK_OK(vram_ladder_first_budget(l, 0, &first));
    CHECK_EQ_U64(first, 3 * GiB);
    CHECK_OK(vram_ladder_first_budget(l, 3 * GiB, &first));
    CHECK_EQ_U64(first, 3 * GiB);
    /* --vram 1GiB with a first rung of 3 GiB: attempt 1 would run on 1 GiB and
     * the "cheaper" rung 2 would raise it. */
    CHECK_ERR(vram_ladder_first_budget(l, 1 * GiB, &first), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "budget (1.0 GiB) and its ladder's first rung (vram=3.0 GiB) disagree");
    CHECK_EQ_U64(first, 0);
    vram_ladder_free(l);
    CHECK_ERR(vram_ladder_check_text("a=1 vram=3GiB; a=2 vram=2GiB", 1 * GiB, &first), VRAM_EINVAL);
    CHECK_OK(vram_ladder_check_text("a=1 vram=3GiB; a=2 vram=2GiB", 0, &first));
    CHECK_EQ_U64(first, 3 * GiB);
    CHECK_OK(vram_ladder_check_text(NULL, 2 * GiB, &first));
    CHECK_EQ_U64(first, 2 * GiB);
    CHECK_OK(vram_ladder_parse("a=1; a=2", &l));             /* no budgets: the job's stands */
    CHECK_OK(vram_ladder_first_budget(l, 5 * GiB, &first));
    CHECK_EQ_U64(first, 5 * GiB);
    CHECK_OK(vram_ladder_first_budget(NULL, 0, &first));
    CHECK_EQ_U64(first, 0);
    vram_ladder_free(l);
}

TEST(malformed_ladders_say_which_rung)
{
    static const struct { const char *text, *says; } bad[] = {
        { "batch=8;; batch=1", "rung 2 is empty" },
        { "batch", "'batch' is not key=value" },
        { "=8", "'=8' is not key=value" },
        { "batch=", "'batch=' is not key=value" },
        { "batch=1 batch=2", "'batch' given twice" },
        { "b@d=1", "may hold only" },
        { "vram=12XB", "vram=12XB: '12XB' is not a size" },
        { "vram=0", "fits nothing" },
        { "", "rung 1 is empty" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vram_ladder *l = (vram_ladder *)&bad;
        CHECK_MSG(vram_ladder_parse(bad[i].text, &l) != 0, "'%s' accepted", bad[i].text);
        CHECK_CONTAINS(vram_last_error(), bad[i].says);
        CHECK(l == NULL);
    }
}

TEST(templates)
{
    vram_kv kv[] = { { "resolution", "720p" }, { "steps", "30" }, { "steps", "20" } };
    char *s;
    CHECK_OK(vram_template_expand("--size {resolution} --steps={steps}", kv, 3, &s));
    CHECK_STR_EQ(s, "--size 720p --steps=20");          /* the later pair wins */
    vram_free(s);
    CHECK_OK(vram_template_expand("{\"json\": {{literal}}} {} {not a key}", kv, 3, &s));
    CHECK_STR_EQ(s, "{\"json\": {literal}} {} {not a key}");
    vram_free(s);
    CHECK_ERR(vram_template_expand("--batch {batch}", kv, 3, &s), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "'{batch}' in the command has no value (known: {resolution}, {steps}");
    CHECK(s == NULL);
    CHECK_OK(vram_template_expand("plain", NULL, 0, &s));
    CHECK_STR_EQ(s, "plain");
    vram_free(s);
}

/* A command is checked before it waits: each {key} a setting's, the first
 * rung's or (with a model) the plan's; {args} a model's job's alone. */
TEST(a_command_names_the_key_it_lacks)
{
    const char *keys[] = { "resolution" };
    vram_ladder *l;
    CHECK_OK(vram_ladder_parse("steps=30; steps=20 fps=12", &l));
    char *ok[] = { "gen", "--size={resolution}", "{steps}", "{{fps}}", "{not a key}", NULL };
    CHECK_OK(vram__template_check_command(ok, keys, 1, l, false));
    char *later[] = { "gen", "{steps}", "--fps", "{fps}", NULL };   /* fps: rung 2's alone */
    CHECK_ERR(vram__template_check_command(later, keys, 1, l, false), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "'{fps}' in the command has no value (known: {resolution}, {steps}");
    char *bare[] = { "echo", "{steps}", NULL };
    CHECK_ERR(vram__template_check_command(bare, NULL, 0, NULL, false), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "(known: none;");
    char *args[] = { "sh", "-c", "gen {args}", NULL };
    CHECK_ERR(vram__template_check_command(args, keys, 1, l, false), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "{args} in the command needs a model");
    /* A model's job: the plan's keys too, and {args}. */
    char *planned[] = { "gen", "--steps={steps}", "{width}x{height}", "{resolution}", "{fps}", NULL };
    CHECK_OK(vram__template_check_command(planned, keys, 1, NULL, true));
    CHECK_OK(vram__template_check_command(args, NULL, 0, NULL, true));
    char *bogus[] = { "gen", "{bogus}", NULL };
    CHECK_ERR(vram__template_check_command(bogus, keys, 1, NULL, true), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "'{bogus}' in the command has no value (known: {resolution}, {width}");
    CHECK_CONTAINS(vram_last_error(), "{tier}, {resolution};");   /* the plan's, then the settings */
    /* Many settings (a request of 64 KiB holds thousands): each found. */
    static char names[5000][8];
    static const char *many[5000];
    for (int i = 0; i < 5000; i++) {
        snprintf(names[i], sizeof(names[i]), "k%d", i);
        many[i] = names[i];
    }
    char *all[] = { "gen", "{k0}{k4999}{k2500}", "--x={k17}", NULL }, *past[] = { "gen", "{k5000}", NULL };
    CHECK_OK(vram__template_check_command(all, many, 5000, NULL, false));
    CHECK_ERR(vram__template_check_command(past, many, 5000, NULL, false), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "'{k5000}' in the command has no value (known: {k0}, {k1}");
    vram_ladder_free(l);
}

/* A profile's [ladder] is the same type: rung 0 is the plan as made. */
TEST(a_profile_ladder_is_a_ladder)
{
    vram_options *o;
    vram_profile *p;
    CHECK_OK(vram_options_new(&o));
    CHECK_OK(vram_profile_load(o, "sadtalker", &p));
    vram_ladder *l;
    CHECK_OK(vram_ladder_from_profile(p, &l));
    CHECK_EQ(vram_ladder_count(l), vram_profile_ladder_count(p) + 1);
    CHECK(vram_ladder_get(l, 0, "batch") == NULL);
    CHECK_STR_EQ(vram_ladder_get(l, 1, "batch"), "1");
    CHECK_STR_EQ(vram_ladder_get(l, 3, "skip"), "enhance");
    CHECK_STR_EQ(vram_ladder_get(l, 3, "batch"), "1");
    vram_ladder_free(l);
    vram_profile_free(p);
    vram_options_free(o);
}

/* Issue 9: "if the command does not use a rung's key, the retry is the same
 * command (5 of 7 attempts identical)".  Such a rung is refused. */
TEST(a_rung_that_changes_nothing_is_refused)
{
    char *argv[] = { "python", "gen.py", "--batch", "{batch}", "--steps={steps}", "{{enhancer}}", NULL };
    vram_ladder *l;
    CHECK_OK(vram_ladder_parse("batch=8 steps=30; batch=1; steps=20", &l));
    CHECK_OK(vram_ladder_check_command(l, argv, NULL));
    vram_ladder_free(l);
    CHECK_OK(vram_ladder_parse("batch=8; enhancer=none; batch=1", &l));
    CHECK_ERR(vram_ladder_check_command(l, argv, NULL), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "rung 2 would run the same command again");
    CHECK_CONTAINS(vram_last_error(), "never uses 'enhancer'");
    vram_ladder_free(l);
    CHECK_OK(vram_ladder_parse("batch=8; batch=8", &l));       /* the same value again */
    CHECK_ERR(vram_ladder_check_command(l, argv, NULL), VRAM_EINVAL);
    vram_ladder_free(l);
    /* A smaller budget is a change: the job sees VRAM_BUDGET_BYTES. */
    CHECK_OK(vram_ladder_parse("tile=0 vram=8GiB; tile=1 vram=4GiB", &l));
    CHECK_OK(vram_ladder_check_command(l, argv, NULL));
    vram_ladder_free(l);
    /* With a model, a key the planner reads changes the plan (VRAM_PLAN). */
    vram_options *o;
    vram_profile *p;
    CHECK_OK(vram_options_new(&o));
    CHECK_OK(vram_profile_load(o, "sadtalker", &p));
    CHECK_OK(vram_ladder_parse("batch=8; memory=sequential", &l));
    CHECK_OK(vram_ladder_check_command(l, argv, p));
    CHECK_ERR(vram_ladder_check_command(l, argv, NULL), VRAM_EINVAL);
    vram_ladder_free(l);
    vram_profile_free(p);
    vram_options_free(o);
}
