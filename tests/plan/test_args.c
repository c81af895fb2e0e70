/* SPDX-License-Identifier: MIT */
/*
 * tests/plan/test_args.c - a profile's [args]: the plan's settings as the
 * pipeline's own words.  A line for a value wins over the line for any
 * value; an empty line gives no word (a rung drops a flag); {key} takes the
 * plan's value; mistakes are reported at their line.  The shipped
 * profiles' words for their tiers and memory modes (the argparse test in
 * tests/pipelines/ checks them against the real scripts' options).
 */
#include "plan_test.h"

static const char base[] =
    "[profile]\nname = tiny\ntitle = a tiny test model\nsource = tests\n"
    "[defaults]\nresolution = 256px\nframes = 9\nsteps = 10\n"
    "[latent]\nstride = 4x8x8\npatch = 1x2x2\ncausal = yes\n"
    "[overhead]\ncuda_context = 100MiB\nslack = 10%\nmargin = 5%\n"
    "[time]\ncard = test card\nbandwidth = 10GB\n"
    "[component net]\nparams = 1B\ndtype = bf16\nprecision = follow\nstages = denoise, enhance\nblocks = 10\n"
    "[stage denoise]\nruns = step\nact = 1MiB\nact_per_token = 1KiB\ntime_per_token = 1e-6\n"
    "[stage enhance]\nruns = frame\noptional = yes\nact = 1MiB\n"
    "[tier small]\nresolution = 128px\n";     /* 36 lines */

/* base with an [args] section (its first line is line 38), loaded by name
 * from a folder of its own. */
static int load_args(const char *args, vram_profile **out)
{
    static char text[4096];
    snprintf(text, sizeof(text), "%s[args]\n%s", base, args);
    if (!write_file("tiny.ini", text))
        return VRAM_EIO;
    vram_options *o = NULL;
    int rc = vram_options_new(&o);
    if (!rc)
        rc = vram_options_set(o, "profiles", scratch_dir(), NULL);
    if (!rc)
        rc = vram_profile_load(o, "tiny", out);
    vram_options_free(o);
    return rc;
}

/* The plan's words joined by single spaces. */
static const char *words(const vram_plan *plan)
{
    static char buf[1024];
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; vram_plan_arg(plan, i); i++)
        at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%s%s", i ? " " : "", vram_plan_arg(plan, i));
    return buf;
}

static vram_plan *plan_of(const vram_profile *p, const char *const *set, size_t n)
{
    vram_plan *plan = NULL;
    if (vram_plan_make(NULL, p, set, n, 256ull << 30, 0, &plan))
        return NULL;
    return plan;
}

TEST(a_value_line_wins_and_an_empty_line_drops_the_flag)
{
    scratch_dir();
    vram_profile *p;
    CHECK_OK(load_args("resolution = --size {width}*{height}\n"
                       "steps = --sample_steps {steps}\n"
                       "skip = --enhancer gfpgan\n"
                       "skip.enhance =\n"
                       "memory.beefy = --offload_model False\n"
                       "memory.sequential = --offload_model True --t5_cpu\n", &p));
    const char *on[] = { "memory=beefy" };
    vram_plan *plan = plan_of(p, on, 1);
    CHECK(plan != NULL);
    CHECK(vram_plan_has_args(plan));
    CHECK_STR_EQ(words(plan), "--size 128*128 --sample_steps 10 --enhancer gfpgan --offload_model False");
    vram_plan_free(plan);
    const char *off[] = { "memory=sequential", "skip=enhance", "resolution=64px", "steps=4" };
    plan = plan_of(p, off, 4);
    CHECK(plan != NULL);
    CHECK_STR_EQ(words(plan), "--size 64*64 --sample_steps 4 --offload_model True --t5_cpu");
    /* lightweight has no line: no word */
    vram_plan_free(plan);
    const char *light[] = { "memory=lightweight" };
    plan = plan_of(p, light, 1);
    CHECK(plan != NULL);
    CHECK_STR_EQ(words(plan), "--size 128*128 --sample_steps 10 --enhancer gfpgan");
    CHECK(vram_plan_arg(plan, 5) != NULL && vram_plan_arg(plan, 6) == NULL);
    vram_plan_free(plan);
    vram_profile_free(p);
}

TEST(a_profile_without_args_says_so)
{
    vram_profile *p = load_shipped("generic-diffusion");
    CHECK(p != NULL);
    vram_plan *plan = plan_of(p, NULL, 0);
    CHECK(plan != NULL);
    CHECK(!vram_plan_has_args(plan));
    CHECK(vram_plan_arg(plan, 0) == NULL);
    vram_plan_free(plan);
    vram_profile_free(p);
}

TEST(mistakes_in_args_are_reported_at_their_line)
{
    scratch_dir();
    static const struct {
        const char *args, *line, *what;
    } cases[] = {
        { "steps = --steps {steps}\nsize = --size {width}\n", ":39:", "'size' is not a setting" },
        { "steps = --steps {stepz}\n", ":38:", "'{stepz}' is not a {setting}" },
        { "steps = --steps $HOME\n", ":38:", "'$' cannot be part of a word" },
        { "steps = --steps \"{steps}\"\n", ":38:", "cannot be part of a word" },
        { "resolution.256px = --small\n", ":38:", "write the value as a plan gives it: resolution.256x256" },
        { "memory.huge = --x\n", ":38:", "memory.huge" },
        { "skip.denoise = --x\n", ":38:", "skip.denoise" },
        { "steps = --a\nsteps = --b\n", ":39:", "given twice" },
        { "memory. = --x\n", ":38:", "no value after the '.'" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        vram_profile *p = (vram_profile *)1;
        int rc = load_args(cases[i].args, &p);
        CHECK_MSG(rc == VRAM_EPARSE, "case %zu (%s): %s, %s", i, cases[i].what, vram_errname(rc),
                  vram_last_error());
        CHECK(p == NULL);
        CHECK_CONTAINS(vram_last_error(), cases[i].line);
        CHECK_CONTAINS(vram_last_error(), cases[i].what);
    }
}

TEST(wan_takes_its_size_steps_frames_and_offload_flags)
{
    vram_profile *p = load_shipped("wan2.2-t2v-a14b");
    CHECK(p != NULL);
    const char *beefy[] = { "tier=720p", "memory=beefy" };
    vram_plan *plan = plan_of(p, beefy, 2);
    CHECK(plan != NULL);
    CHECK_STR_EQ(words(plan), "--size 1280*720 --frame_num 81 --sample_steps 40 --offload_model False "
                              "--convert_model_dtype");
    vram_plan_free(plan);
    const char *light[] = { "tier=480p", "memory=lightweight", "cpu=text_encoder", "steps=20" };
    plan = plan_of(p, light, 4);
    CHECK(plan != NULL);
    CHECK_STR_EQ(words(plan), "--size 832*480 --frame_num 81 --sample_steps 20 --offload_model True --t5_cpu "
                              "--convert_model_dtype");
    vram_plan_free(plan);
    vram_profile_free(p);
}

TEST(sadtalker_drops_the_enhancer_on_its_last_resort)
{
    vram_profile *p = load_shipped("sadtalker");
    CHECK(p != NULL);
    const char *high[] = { "tier=high" };
    vram_plan *plan = plan_of(p, high, 1);
    CHECK(plan != NULL);
    CHECK_STR_EQ(words(plan), "--size 512 --batch_size 2 --enhancer gfpgan");
    vram_plan *next = NULL, *cur = plan;
    /* batch=1, memory=sequential, skip=enhance, resolution=256px */
    for (int i = 0; i < 3; i++) {
        CHECK_OK(vram_plan_next_rung(cur, &next));
        if (cur != plan)
            vram_plan_free(cur);
        cur = next;
    }
    CHECK_STR_EQ(words(cur), "--size 512 --batch_size 1");
    vram_plan_free(cur);
    vram_plan_free(plan);
    vram_profile_free(p);
}

TEST(which_settings_reach_the_command)
{
    vram_profile *p = load_shipped("wan2.2-t2v-a14b");
    CHECK(p != NULL);
    /* resolution through {width}*{height}, and the other way round */
    CHECK(plan__args_use(p, "resolution") && plan__args_use(p, "width") && plan__args_use(p, "height"));
    CHECK(plan__args_use(p, "memory") && plan__args_use(p, "cpu") && plan__args_use(p, "steps"));
    CHECK(plan__args_use(p, "frames") && plan__args_use(p, "duration") && plan__args_use(p, "fps"));
    CHECK(!plan__args_use(p, "vae_tiling"));
    CHECK(!plan__args_use(p, "batch"));
    CHECK(!plan__args_use(p, "enhancer"));
    vram_profile_free(p);
    p = load_shipped("latentsync");
    CHECK(p != NULL);
    CHECK(plan__args_use(p, "chunk") && plan__args_use(p, "cfg"));    /* chunk: in the config's name */
    CHECK(!plan__args_use(p, "memory"));
    vram_profile_free(p);
}
