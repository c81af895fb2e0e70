/* SPDX-License-Identifier: MIT */
/*
 * tests/plan/test_plan.c - plans: the tier for a budget (the
 * hunyuanvideo-avatar table at the middle of each range), forced tiers,
 * memory modes with their reasons, the device's safe available memory as
 * the budget, allocator settings, output formats, and the ladder.
 */
#include "plan/format.h"
#include "plan_test.h"

static int plan_for(const char *model, const char *const *set, size_t n, uint64_t budget,
                    vram_plan **out)
{
    vram_profile *p = load_shipped(model);
    if (!p)
        return VRAM_ENOENT;
    int rc = vram_plan_make(NULL, p, set, n, budget, 0, out);
    vram_profile_free(p);
    return rc;
}

/* The table's ranges and the tier each middle must land in (or the one
 * under it, when that tier's own estimate does not fit, with the reason). */
TEST(hunyuanvideo_avatar_lands_in_the_tier_of_each_range)
{
    static const struct {
        unsigned gib;
        const char *tier, *lower;
    } table[] = {
        { 3, "emergency", NULL },       { 5, "ultra-minimal", "emergency" },
        { 7, "ultra-low", "ultra-minimal" }, { 10, "low", "ultra-low" },
        { 14, "balanced", "low" },      { 20, "high-performance", "balanced" },
        { 32, "maximum-quality", "high-performance" },
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        vram_plan *plan;
        CHECK_OK(plan_for("hunyuanvideo-avatar", NULL, 0, table[i].gib * VRAM__GiB, &plan));
        const char *got = vram_plan_tier(plan);
        bool same = !strcmp(got, table[i].tier);
        bool lower = table[i].lower && !strcmp(got, table[i].lower);
        CHECK_MSG(same || lower, "%u GiB: tier %s, wanted %s", table[i].gib, got, table[i].tier);
        if (lower) {
            char reason[128];
            snprintf(reason, sizeof(reason), "%s needs ", table[i].tier);
            CHECK_CONTAINS(vram_plan_why(plan), reason);
        }
        vram_estimate e;
        CHECK_OK(vram_plan_estimate(plan, &e));
        CHECK(e.peak_bytes <= table[i].gib * VRAM__GiB);
        CHECK(vram_plan_fits(plan));
        vram_plan_free(plan);
    }
}

TEST(the_chosen_tier_is_the_highest_that_fits)
{
    vram_profile *p = load_shipped("hunyuanvideo-avatar");
    CHECK(p);
    for (unsigned gib = 2; gib <= 80; gib += 3) {
        vram_plan *plan;
        int rc = vram_plan_make(NULL, p, NULL, 0, gib * VRAM__GiB, 0, &plan);
        if (rc == VRAM_ENOFIT)
            continue;
        CHECK_OK(rc);
        size_t t;
        for (t = 0; t < vram_profile_tier_count(p); t++) {
            const char *name;
            vram_profile_tier(p, t, &name, NULL, 0);
            if (!strcmp(name, vram_plan_tier(plan)))
                break;
        }
        /* The next tier up does not fit in any mode. */
        if (t + 1 < vram_profile_tier_count(p)) {
            const char *name;
            vram_profile_tier(p, t + 1, &name, NULL, 0);
            char tier[64];
            snprintf(tier, sizeof(tier), "tier=%s", name);
            const char *set[] = { tier, "memory=sequential" };
            vram_estimate e;
            CHECK_ERR(vram_estimate_run(p, set, 2, gib * VRAM__GiB, &e), VRAM_ENOFIT);
        }
        vram_plan_free(plan);
    }
    vram_profile_free(p);
}

TEST(nothing_fits_a_tiny_budget)
{
    vram_plan *plan = (vram_plan *)1;
    CHECK_ERR(plan_for("hunyuanvideo-avatar", NULL, 0, 512 * VRAM__MiB, &plan), VRAM_ENOFIT);
    CHECK(plan == NULL);
    CHECK_CONTAINS(vram_last_error(), "the lowest tier, emergency, needs");
    CHECK_CONTAINS(vram_last_error(), "0.5 GiB budget");
}

TEST(a_forced_tier_is_kept_or_refused_with_the_numbers)
{
    vram_plan *plan;
    const char *low[] = { "tier=low" };
    CHECK_OK(plan_for("hunyuanvideo-avatar", low, 1, 40 * VRAM__GiB, &plan));
    CHECK_STR_EQ(vram_plan_tier(plan), "low");
    CHECK_STR_EQ(vram_plan_param(plan, "resolution"), "384x384");
    vram_plan_free(plan);
    const char *max[] = { "tier=maximum-quality" };
    CHECK_ERR(plan_for("hunyuanvideo-avatar", max, 1, 20 * VRAM__GiB, &plan), VRAM_ENOFIT);
    CHECK_CONTAINS(vram_last_error(), "tier 'maximum-quality' (forced) needs");
    CHECK_CONTAINS(vram_last_error(), "over the 20.0 GiB budget");
    const char *bad[] = { "tier=gigantic" };
    CHECK_ERR(plan_for("hunyuanvideo-avatar", bad, 1, 20 * VRAM__GiB, &plan), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "tiers: emergency, ultra-minimal");
}

TEST(vram_mode_in_the_options_forces_a_tier)
{
    vram_options *o;
    CHECK_OK(vram_options_new(&o));
    CHECK_OK(vram_options_set(o, "backend", "sim", NULL));
    CHECK_OK(vram_options_set(o, "host-ram", "256GiB", NULL));   /* not this machine's */
    CHECK_OK(vram_options_set(o, "mode", "ultra-low", "VRAM_MODE"));
    vram_ctx *ctx;
    CHECK_OK(vram_ctx_open(&ctx, o));
    vram_profile *p = load_shipped("hunyuanvideo-avatar");
    vram_plan *plan;
    CHECK_OK(vram_plan_make(ctx, p, NULL, 0, 40 * VRAM__GiB, 0, &plan));
    CHECK_STR_EQ(vram_plan_tier(plan), "ultra-low");
    vram_plan_free(plan);
    /* A tier= setting wins over the option. */
    const char *set[] = { "tier=low" };
    CHECK_OK(vram_plan_make(ctx, p, set, 1, 40 * VRAM__GiB, 0, &plan));
    CHECK_STR_EQ(vram_plan_tier(plan), "low");
    vram_plan_free(plan);
    vram_profile_free(p);
    vram_ctx_close(ctx);
    vram_options_free(o);
}

TEST(the_budget_is_the_devices_safe_available)
{
    vram_options *o;
    CHECK_OK(vram_options_new(&o));
    CHECK_OK(vram_options_set(o, "backend", "sim", NULL));
    CHECK_OK(vram_options_set(o, "sim", "T4:16GiB:4GiB,A:80GiB", NULL));
    CHECK_OK(vram_options_set(o, "host-ram", "256GiB", NULL));   /* not this machine's */
    vram_ctx *ctx;
    CHECK_OK(vram_ctx_open(&ctx, o));
    vram_profile *p = load_shipped("hunyuanvideo-avatar");
    vram_plan *plan;
    CHECK_OK(vram_plan_make(ctx, p, NULL, 0, 0, 0, &plan));
    /* 16 GiB - 4 used - a 10% margin of 1.6 GiB = 10.4 GiB. */
    CHECK_NEAR((double)vram_plan_budget(plan), 10.4 * VRAM__GiB, VRAM__MiB);
    CHECK_STR_EQ(vram_plan_tier(plan), "low");
    CHECK_CONTAINS(vram_plan_why(plan), "safe");
    char *json;
    CHECK_OK(vram_plan_format(plan, "json", &json));
    CHECK_CONTAINS(json, "\"budget_source\":\"device 0 safe available\"");
    vram_free(json);
    vram_plan_free(plan);
    CHECK_OK(vram_plan_make(ctx, p, NULL, 0, 0, 1, &plan));
    /* 72 GiB safe: 1024px and 256 frames need 83 GiB even streamed (the
     * README: on 80 GB, reduce the image size). */
    CHECK_STR_EQ(vram_plan_tier(plan), "high-performance");
    vram_plan_free(plan);
    CHECK_ERR(vram_plan_make(ctx, p, NULL, 0, 0, 7, &plan), VRAM_ENODEV);
    CHECK_ERR(vram_plan_make(NULL, p, NULL, 0, 0, 0, &plan), VRAM_EINVAL);
    vram_profile_free(p);
    vram_ctx_close(ctx);
    vram_options_free(o);
}

TEST(memory_modes_with_their_reason)
{
    vram_profile *p = load_shipped("wan2.2-ti2v-5b");
    CHECK(p);
    vram_estimate m[3];
    const char *tier[] = { "tier=720p" };
    CHECK_OK(vram_estimate_modes(p, tier, 1, m));
    vram_plan *plan;
    CHECK_OK(vram_plan_make(NULL, p, tier, 1, m[0].peak_bytes, 0, &plan));
    CHECK_STR_EQ(vram_plan_param(plan, "memory"), "beefy");
    CHECK_CONTAINS(vram_plan_why(plan), "beefy fits");
    vram_plan_free(plan);
    CHECK_OK(vram_plan_make(NULL, p, tier, 1, m[1].peak_bytes, 0, &plan));
    CHECK_STR_EQ(vram_plan_param(plan, "memory"), "lightweight");
    char want[128], a[32];
    snprintf(want, sizeof(want), "beefy needs %.1f GiB", (double)m[0].peak_bytes / VRAM__GiB);
    CHECK_CONTAINS(vram_plan_why(plan), want);
    snprintf(a, sizeof(a), ": lightweight, %.1f GiB", (double)m[1].peak_bytes / VRAM__GiB);
    CHECK_CONTAINS(vram_plan_why(plan), a);
    vram_plan_free(plan);
    const char *forced[] = { "tier=720p", "memory=sequential" };
    CHECK_OK(vram_plan_make(NULL, p, forced, 2, 80 * VRAM__GiB, 0, &plan));
    CHECK_STR_EQ(vram_plan_param(plan, "memory"), "sequential");
    CHECK_CONTAINS(vram_plan_why(plan), "memory=sequential as asked");
    vram_plan_free(plan);
    vram_profile_free(p);
}

TEST(allocator_settings_by_budget)
{
    /* PyTorch unknown: taken as recent, without a cap (tests/plan/test_alloc.c
     * holds the versions). */
    setenv("VRAM_TORCH_VERSION", "2.4", 1);
    for (uint64_t b = VRAM__GiB; b < 200 * VRAM__GiB; b += VRAM__GiB)
        CHECK_STR_EQ(vram_alloc_conf_for(b), "expandable_segments:True");
    vram_plan *plan;
    CHECK_OK(plan_for("hunyuanvideo-avatar", NULL, 0, 5 * VRAM__GiB, &plan));
    CHECK_STR_EQ(vram_plan_alloc_conf(plan), vram_alloc_conf_for(5 * VRAM__GiB));
    vram_plan_free(plan);
}

TEST(formats_text_json_env_shell)
{
    vram_plan *plan;
    const char *set[] = { "audio=3" };
    CHECK_OK(plan_for("hunyuanvideo-avatar", set, 1, 10 * VRAM__GiB, &plan));
    char *text;
    CHECK_OK(vram_plan_format(plan, "json", &text));
    CHECK_CONTAINS(text, "\"tier\":\"low\"");
    CHECK_CONTAINS(text, "\"PYTORCH_CUDA_ALLOC_CONF\":\"expandable_segments:True");
    CHECK_CONTAINS(text, "\"max_memory\":{\"0\":");   /* its room: tests/plan/test_alloc.c */
    CHECK_CONTAINS(text, "\"device_map\":{\"transformer\":\"cpu\"");
    CHECK_CONTAINS(text, "\"offload\":\"sequential\"");
    CHECK_CONTAINS(text, "\"audio\":3");
    vram_free(text);
    CHECK_OK(vram_plan_format(plan, "text", &text));
    CHECK_CONTAINS(text, "tier        low");
    CHECK_CONTAINS(text, "allocator   PYTORCH_CUDA_ALLOC_CONF=");
    vram_free(text);
    CHECK_OK(vram_plan_format(plan, "env", &text));
    CHECK_CONTAINS(text, "\nVRAM_PLAN_RESOLUTION=384x384\n");
    CHECK_CONTAINS(text, "VRAM_PLAN_TIER=low\n");
    vram_free(text);
    CHECK_OK(vram_plan_format(plan, "shell", &text));
    CHECK_CONTAINS(text, "export PYTORCH_CUDA_ALLOC_CONF='expandable_segments:True");
    CHECK_CONTAINS(text, "export VRAM_PLAN_STEPS='25'\n");
    vram_free(text);
    text = (char *)1;
    CHECK_ERR(vram_plan_format(plan, "yaml", &text), VRAM_EINVAL);
    CHECK(text == NULL);
    const char *key, *value;
    CHECK_OK(vram_plan_param_at(plan, 0, &key, &value));
    CHECK_STR_EQ(key, "resolution");
    CHECK_STR_EQ(value, "384x384");
    CHECK(vram_plan_param(plan, "nonsense") == NULL);
    vram_plan_free(plan);
}

TEST(plan_json_for_the_binding)
{
    char *json = NULL;
    scratch_dir();
    const char *set[] = { "steps=12" };
    CHECK_OK(vram_plan_json(NULL, "hunyuanvideo-avatar", set, 1, 14 * VRAM__GiB, 0, &json));
    CHECK_CONTAINS(json, "\"tier\":\"balanced\"");
    CHECK_CONTAINS(json, "\"steps\":12");
    vram_free(json);
    CHECK_ERR(vram_plan_json(NULL, "no-such-model", NULL, 0, 14 * VRAM__GiB, 0, &json), VRAM_ENOENT);
    CHECK(json == NULL);
    CHECK_ERR(vram_plan_json(NULL, "hunyuanvideo-avatar", NULL, 0, 1, 0, &json), VRAM_ENOFIT);
    CHECK_ERR(vram_plan_json(NULL, "hunyuanvideo-avatar", NULL, 0, 0, 0, &json), VRAM_EINVAL);
}

TEST(the_ladder_walks_down_rung_by_rung)
{
    vram_plan *plan, *next;
    const char *set[] = { "tier=high-performance", "memory=beefy" };
    CHECK_OK(plan_for("hunyuanvideo-avatar", set, 2, 80 * VRAM__GiB, &plan));
    CHECK_EQ(vram_plan_rung(plan), 0);
    vram_estimate before, after;
    CHECK_OK(vram_plan_estimate(plan, &before));
    size_t rungs = 0;
    while (vram_plan_next_rung(plan, &next) == 0) {
        rungs++;
        CHECK_EQ(vram_plan_rung(next), rungs);
        CHECK_OK(vram_plan_estimate(next, &after));
        CHECK_MSG(after.peak_bytes <= before.peak_bytes, "rung %zu raised the peak", rungs);
        before = after;
        vram_plan_free(plan);
        plan = next;
    }
    CHECK_EQ(rungs, 7);
    CHECK_STR_EQ(vram_plan_param(plan, "resolution"), "384x384");
    CHECK_STR_EQ(vram_plan_param(plan, "precision"), "int8");
    CHECK_STR_EQ(vram_plan_param(plan, "tier"), "high-performance");
    CHECK_ERR(vram_plan_next_rung(plan, &next), VRAM_ENOENT);
    vram_plan_free(plan);
}

/* Each rung of every shipped ladder, on the defaults and on every tier,
 * keeps or lowers the least peak the run needs. */
TEST(ladders_never_raise_the_peak)
{
    for (size_t i = 0; i < NSHIPPED; i++) {
        vram_profile *p = load_shipped(shipped[i]);
        CHECK(p);
        for (int t = -1; t < p->ntier; t++) {
            char tier[64];
            snprintf(tier, sizeof(tier), "tier=%s", t < 0 ? "auto" : p->tier[t].name);
            const char *set[] = { tier };
            vram_plan *plan, *next;
            CHECK_OK(vram_plan_make(NULL, p, set, 1, UINT64_C(1) << 60, 0, &plan));
            double before = 1e30;
            for (;;) {
                double least = 1e30;
                for (int m = 0; m < 3; m++)
                    least = plan->modes[m].peak < least ? plan->modes[m].peak : least;
                CHECK_MSG(least <= before * (1 + 1e-12), "%s %s: rung %zu raises the least peak",
                          shipped[i], tier, vram_plan_rung(plan));
                before = least;
                if (vram_plan_next_rung(plan, &next))
                    break;
                vram_plan_free(plan);
                plan = next;
            }
            vram_plan_free(plan);
        }
        vram_profile_free(p);
    }
}
