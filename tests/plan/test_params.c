/* SPDX-License-Identifier: MIT */
/*
 * tests/plan/test_params.c - settings: resolution, frames and duration, the
 * switches and names, and every refusal naming the value.
 */
#include "plan_test.h"

/* Applies one list of settings to the defaults of profile p. */
static int settings(const vram_profile *p, plan_params *x, const char *const *kv, size_t n)
{
    *x = p->base;
    int rc = plan__params_apply(p, x, kv, n);
    return rc ? rc : plan__params_finish(p, x);
}

#define SET(p, x, ...)                                                          \
    settings(p, x, (const char *const[]){ __VA_ARGS__ },                        \
             sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *))

TEST(resolutions_in_three_forms)
{
    vram_profile *p = load_shipped("wan2.2-t2v-a14b");
    plan_params x;
    CHECK(p);
    CHECK_OK(SET(p, &x, "resolution=1280x720"));
    CHECK_EQ(x.width, 1280);
    CHECK_EQ(x.height, 720);
    CHECK_OK(SET(p, &x, "resolution=1080p"));
    CHECK_EQ(x.width, 1920);
    CHECK_EQ(x.height, 1080);
    CHECK_OK(SET(p, &x, "resolution=480p"));
    CHECK_EQ(x.width, 854);
    CHECK_OK(SET(p, &x, "resolution=600p"));
    CHECK_EQ(x.width, 1066);
    CHECK_EQ(x.height, 600);
    CHECK_OK(SET(p, &x, "resolution=512px"));
    CHECK_EQ(x.width, 512);
    CHECK_EQ(x.height, 512);
    CHECK_OK(SET(p, &x, "width=640", "height=360"));
    CHECK_EQ(x.width * 1000 + x.height, 640360);
    vram_profile_free(p);
}

TEST(bad_resolutions_name_the_value)
{
    vram_profile *p = load_shipped("wan2.2-t2v-a14b");
    plan_params x;
    CHECK(p);
    static const struct {
        const char *kv, *says;
    } bad[] = {
        { "resolution=1280y720", "resolution '1280y720' is not WIDTHxHEIGHT" },
        { "resolution=x720", "resolution 'x720' is not" },
        { "resolution=1280x", "resolution '1280x' is not" },
        { "resolution=4x4", "too small" },
        { "resolution=99999x720", "width 99999 is absurd" },
        { "resolution=99999999999999999999999x1", "is absurd" },
        { "resolution=", "is not key=value" },
        { "width=-5", "cannot be negative" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = SET(p, &x, bad[i].kv);
        CHECK_MSG(rc == VRAM_EINVAL, "%s: %s", bad[i].kv, vram_errname(rc));
        CHECK_CONTAINS(vram_last_error(), bad[i].says);
    }
    vram_profile_free(p);
}

TEST(frames_duration_and_the_4n_plus_1_rule)
{
    vram_profile *p = load_shipped("wan2.2-t2v-a14b");
    plan_params x;
    CHECK(p);
    CHECK_OK(SET(p, &x, "duration=8"));      /* 8 s at 16 fps: 128, made 129 */
    CHECK_EQ(x.frames, 129);
    CHECK_OK(SET(p, &x, "duration=5s", "fps=24"));
    CHECK_EQ(x.frames, 121);
    CHECK_OK(SET(p, &x, "frames=80"));
    CHECK_EQ(x.frames, 81);
    CHECK_OK(SET(p, &x, "frames=1"));
    CHECK_EQ(x.frames, 1);
    CHECK_ERR(SET(p, &x, "frames=81", "duration=5"), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "not both");
    CHECK_ERR(SET(p, &x, "frames=1000000000"), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "frames '1000000000' is absurd");
    CHECK_ERR(SET(p, &x, "frames=0"), VRAM_EINVAL);
    CHECK_ERR(SET(p, &x, "duration=2h"), VRAM_EINVAL);    /* 115200 frames */
    CHECK_CONTAINS(vram_last_error(), "absurd");
    CHECK_ERR(SET(p, &x, "duration=-3"), VRAM_EINVAL);
    CHECK_ERR(SET(p, &x, "duration=0"), VRAM_EINVAL);
    CHECK_ERR(SET(p, &x, "fps=0"), VRAM_EINVAL);
    CHECK_ERR(SET(p, &x, "fps=0x10"), VRAM_EINVAL);       /* strtod would take it as 16 */
    CHECK_CONTAINS(vram_last_error(), "fps '0x10' is not a number");
    vram_profile_free(p);
}

TEST(switches_choices_and_numbers)
{
    vram_profile *p = load_shipped("hunyuanvideo-avatar");
    plan_params x;
    CHECK(p);
    CHECK_OK(SET(p, &x, "cfg=off", "vae_tiling=yes", "precision=int8", "memory=sequential",
                 "steps=7", "batch=3", "lora=2", "chunk=33", "audio=12.5", "resident=0.5"));
    CHECK(!x.cfg);
    CHECK(x.tiling);
    CHECK_EQ(x.precision, PLAN_INT8);
    CHECK_EQ(x.memory, VRAM_MEMORY_SEQUENTIAL);
    CHECK_EQ(x.steps * 10000 + x.batch * 1000 + x.lora * 100 + x.chunk, 73233);
    CHECK_NEAR(x.audio_s, 12.5, 1e-12);
    CHECK_ERR(SET(p, &x, "cfg=maybe"), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "cfg 'maybe' is not on or off");
    CHECK_ERR(SET(p, &x, "precision=fp64"), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "fp32|bf16|fp16|int8");
    CHECK_ERR(SET(p, &x, "memory=huge"), VRAM_EINVAL);
    CHECK_ERR(SET(p, &x, "steps=0"), VRAM_EINVAL);
    CHECK_ERR(SET(p, &x, "steps=ten"), VRAM_EINVAL);
    CHECK_ERR(SET(p, &x, "batch=100000"), VRAM_EINVAL);
    CHECK_ERR(SET(p, &x, "resident=0.95"), VRAM_EINVAL);
    CHECK_ERR(SET(p, &x, "resolutoin=720p"), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "unknown setting 'resolutoin'");
    CHECK_ERR(SET(p, &x, "steps"), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "not key=value");
    vram_profile_free(p);
}

TEST(component_and_stage_names)
{
    vram_profile *p = load_shipped("hunyuanvideo-avatar");
    plan_params x;
    CHECK(p);
    CHECK_OK(SET(p, &x, "cpu=text_encoder"));
    CHECK_EQ(x.cpu, 1u << plan__component_find(p, "text_encoder"));
    CHECK_ERR(SET(p, &x, "cpu=transformer"), VRAM_EINVAL);   /* not cpu = yes */
    CHECK_CONTAINS(vram_last_error(), "'transformer' is not a component that may run on the CPU");
    CHECK_ERR(SET(p, &x, "cpu=nothing"), VRAM_EINVAL);
    CHECK_ERR(SET(p, &x, "skip=denoise"), VRAM_EINVAL);
    CHECK_OK(SET(p, &x, "cpu=none", "tier=low"));
    CHECK_EQ(x.cpu, 0);
    CHECK_ERR(SET(p, &x, "tier=huge"), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "tier 'huge' is not a tier of hunyuanvideo-avatar");
    vram_profile_free(p);
    p = load_shipped("sadtalker");
    CHECK(p);
    CHECK_OK(SET(p, &x, "skip=enhance"));
    CHECK_EQ(x.skip, 1u << plan__stage_find(p, "enhance"));
    vram_profile_free(p);
}

TEST(every_key_prints_back_as_it_parses)
{
    vram_profile *p = load_shipped("hunyuanvideo-avatar");
    plan_params x, y;
    CHECK(p);
    CHECK_OK(SET(p, &x, "resolution=640x368", "frames=33", "steps=12", "cfg=off", "cpu=text_encoder",
                 "precision=fp16", "audio=3", "resident=0.25", "chunk=17"));
    char kv[PLAN_NKEYS][PLAN_SETTING_MAX];
    const char *list[PLAN_NKEYS];
    size_t n = 0;
    for (int k = 0; k < PLAN_NKEYS; k++) {
        if (k == PLAN_KEY_DURATION || k == PLAN_KEY_WIDTH || k == PLAN_KEY_HEIGHT)
            continue;
        char v[PLAN_SETTING_MAX];
        plan__param_text(p, &x, k, v, sizeof(v));
        snprintf(kv[n], sizeof(kv[n]), "%s=%s", plan__key_name(k), v);
        list[n] = kv[n];
        n++;
    }
    CHECK_OK(settings(p, &y, list, n));
    CHECK(y.width == x.width && y.height == x.height && y.frames == x.frames);
    CHECK(y.cfg == x.cfg && y.cpu == x.cpu && y.precision == x.precision && y.chunk == x.chunk);
    CHECK_NEAR(y.resident, x.resident, 1e-12);
    const char *key, *help;
    CHECK_OK(vram_plan_setting_describe(0, &key, &help));
    CHECK_STR_EQ(key, "resolution");
    CHECK_ERR(vram_plan_setting_describe(PLAN_NKEYS, &key, &help), VRAM_ENOENT);
    vram_profile_free(p);
}
