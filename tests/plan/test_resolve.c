/* SPDX-License-Identifier: MIT */
/*
 * tests/plan/test_resolve.c - one settings resolver: the planner, the
 * estimator, the optimizer and calibration turn the same "key=value"
 * settings into the same parameters (tier=NAME included) and refuse a bad
 * tier with the same message.
 */
#include "plan/format.h"
#include "plan_test.h"

#define BIG (200 * VRAM__GiB)

/* Settings lists every caller is asked with; each names its memory mode so
 * that calibration (auto counts as beefy there) means the same run, and its
 * tier, since without one the planner picks the highest that fits while
 * the others take the profile's defaults. */
static const char *const cases[][4] = {
    { "tier=emergency", "memory=beefy", NULL },
    { "tier=low", "memory=sequential", NULL },
    { "tier=balanced", "resolution=512px", "memory=lightweight", NULL },
    { "tier=maximum-quality", "frames=17", "memory=beefy", NULL },
    { "tier=auto", "tier=ultra-low", "memory=beefy", NULL },
};

static size_t count(const char *const *set)
{
    size_t n = 0;
    while (set[n])
        n++;
    return n;
}

/* The peak calibration predicted for a one-row calibration of set. */
static int calibrated_before(const vram_profile *p, const char *const *set, size_t n, uint64_t *out)
{
    vram_measurement m = { set, n, 10 * VRAM__GiB, 0 };
    vram_calibration *c;
    int rc = vram_calibrate(p, &m, 1, &c);
    if (rc)
        return rc;
    vram_calibration_row r;
    rc = vram_calibration_get_row(c, 0, &r);
    *out = r.before_bytes;
    vram_calibration_free(c);
    return rc;
}

TEST(every_caller_resolves_the_same_settings_to_the_same_run)
{
    vram_profile *p = load_shipped("hunyuanvideo-avatar");
    CHECK(p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *const *set = cases[i];
        size_t n = count(set);
        vram_estimate est;
        CHECK_OK(vram_estimate_run(p, set, n, BIG, &est));

        vram_plan *plan;
        CHECK_OK(vram_plan_make(NULL, p, set, n, BIG, 0, &plan));
        vram_estimate planned;
        CHECK_OK(vram_plan_estimate(plan, &planned));
        vram_plan_free(plan);

        vram_optimization o;
        CHECK_OK(vram_optimize(p, set, n, BIG, VRAM_LEVEL_MAXIMUM, 0, &o));

        uint64_t cal = 0;
        CHECK_OK(calibrated_before(p, set, n, &cal));

        CHECK_MSG(est.peak_bytes == planned.peak_bytes && est.memory == planned.memory,
                  "case %zu: estimate %" PRIu64 " (mode %d), plan %" PRIu64 " (mode %d)", i,
                  est.peak_bytes, est.memory, planned.peak_bytes, planned.memory);
        CHECK_MSG(est.peak_bytes == o.before.peak_bytes, "case %zu: estimate %" PRIu64
                  ", optimizer %" PRIu64, i, est.peak_bytes, o.before.peak_bytes);
        CHECK_MSG(est.peak_bytes == cal, "case %zu: estimate %" PRIu64 ", calibration %" PRIu64,
                  i, est.peak_bytes, cal);
    }
    vram_profile_free(p);
}

/* Calibration used to drop tier=: a row run at the emergency tier was
 * predicted at the profile's defaults. */
TEST(calibration_honours_tier)
{
    vram_profile *p = load_shipped("hunyuanvideo-avatar");
    CHECK(p);
    const char *tiered[] = { "tier=emergency", "memory=beefy" };
    const char *plain[] = { "memory=beefy" };
    uint64_t with_tier = 0, without = 0;
    CHECK_OK(calibrated_before(p, tiered, 2, &with_tier));
    CHECK_OK(calibrated_before(p, plain, 1, &without));
    CHECK_MSG(with_tier < without, "emergency tier %" PRIu64 " vs defaults %" PRIu64, with_tier,
              without);
    vram_estimate e;
    CHECK_OK(vram_estimate_run(p, tiered, 2, 0, &e));
    CHECK_EQ_U64(with_tier, e.peak_bytes);
    vram_profile_free(p);
}

/* A tier the profile lacks: one message, listing the tiers, from each. */
TEST(an_unknown_tier_is_refused_alike_everywhere)
{
    vram_profile *p = load_shipped("hunyuanvideo-avatar");
    CHECK(p);
    const char *set[] = { "tier=huge" };
    const char *want = "tier 'huge' is not a tier of hunyuanvideo-avatar (tiers: emergency, ";
    vram_estimate e;
    CHECK_ERR(vram_estimate_run(p, set, 1, BIG, &e), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), want);
    vram_plan *plan;
    CHECK_ERR(vram_plan_make(NULL, p, set, 1, BIG, 0, &plan), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), want);
    vram_optimization o;
    CHECK_ERR(vram_optimize(p, set, 1, BIG, VRAM_LEVEL_MAXIMUM, 0, &o), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), want);
    vram_measurement m = { set, 1, VRAM__GiB, 0 };
    vram_calibration *c;
    CHECK_ERR(vram_calibrate(p, &m, 1, &c), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "row 1: ");
    CHECK_CONTAINS(vram_last_error(), want);
    vram_profile_free(p);
}

/* The resolver itself: the order defaults < tier < settings, and picking
 * the highest tier that fits. */
TEST(settings_win_over_the_tier_and_the_tier_over_defaults)
{
    vram_profile *p = load_shipped("hunyuanvideo-avatar");
    CHECK(p);
    int t = plan__tier_find(p, "emergency");
    CHECK(t >= 0);
    const char *set[] = { "tier=emergency", "steps=7" };
    plan_resolved r;
    CHECK_OK(plan__settings_resolve(p, set, 2, 0, NULL, false, &r));
    CHECK_EQ(r.tier, t);
    CHECK(r.tier_forced);
    CHECK_EQ(r.x.steps, 7);
    plan_params tier_only;
    CHECK_OK(plan__resolve_params(p, t, NULL, 0, &tier_only));
    CHECK_EQ(r.x.width, tier_only.width);
    CHECK_EQ(r.x.frames, tier_only.frames);

    CHECK_OK(plan__settings_resolve(p, NULL, 0, 0, NULL, false, &r));
    CHECK_EQ(r.tier, -1);
    CHECK_EQ(r.x.width, p->base.width);

    CHECK_OK(plan__settings_resolve(p, NULL, 0, 0, "emergency", true, &r));
    CHECK_EQ(r.tier, t);
    CHECK(r.tier_forced);

    CHECK_OK(plan__settings_resolve(p, NULL, 0, 10 * VRAM__GiB, NULL, true, &r));
    CHECK(r.fits);
    CHECK(!r.tier_forced);
    CHECK(r.tier > t && r.tier < p->ntier - 1);
    CHECK_CONTAINS(r.tier_why, " needs ");
    CHECK(r.chosen.peak <= 10.0 * VRAM__GiB);

    CHECK_OK(plan__settings_resolve(p, NULL, 0, VRAM__GiB / 4, NULL, true, &r));
    CHECK(!r.fits);
    CHECK_EQ(r.tier, 0);
    vram_profile_free(p);
}

/* A plan for a command with {args} knows only the memory modes the
 * profile's [args] tells apart: Wan's generate.py says --offload_model True
 * for lightweight and sequential alike, so at 43 GiB 720p (lightweight
 * 59.9 GiB) does not fit and 480p offloaded does, where a plan of the
 * profile alone streams 720p (sequential).  The next rungs keep to it. */
TEST(a_command_with_args_plans_only_the_modes_its_args_express)
{
    vram_profile *p = load_shipped("wan2.2-t2v-a14b");
    CHECK(p);
    uint64_t budget = 43 * VRAM__GiB;
    vram_plan *alone, *cmd;
    CHECK_OK(vram_plan_make(NULL, p, NULL, 0, budget, 0, &alone));
    CHECK_STR_EQ(vram_plan_tier(alone), "720p");
    CHECK_STR_EQ(vram_plan_param(alone, "memory"), "sequential");
    CHECK_OK(vram__plan_make_for_args(NULL, p, NULL, 0, budget, 0, true, &cmd));
    CHECK_STR_EQ(vram_plan_tier(cmd), "480p");
    CHECK_STR_EQ(vram_plan_param(cmd, "memory"), "lightweight");
    vram_estimate e;
    CHECK_OK(vram_plan_estimate(cmd, &e));
    CHECK(e.peak_bytes <= budget);
    for (vram_plan *at = cmd, *next; !vram_plan_next_rung(at, &next); at = next) {
        CHECK(strcmp(vram_plan_param(next, "memory"), "sequential") != 0);
        if (at != cmd)
            vram_plan_free(at);
        if (vram_plan_rung(next) == (size_t)p->nrung) {
            vram_plan_free(next);
            break;
        }
    }
    /* memory=sequential asked outright: the command's words run lightweight. */
    const char *seq[] = { "tier=480p", "memory=sequential" };
    vram_estimate light, asked;
    const char *lw[] = { "tier=480p", "memory=lightweight" };
    CHECK_OK(vram_estimate_run(p, lw, 2, 0, &light));
    vram_plan *forced;
    CHECK_OK(vram__plan_make_for_args(NULL, p, seq, 2, BIG, 0, true, &forced));
    CHECK_OK(vram_plan_estimate(forced, &asked));
    CHECK_EQ(asked.peak_bytes, light.peak_bytes);
    vram_plan_free(forced);
    vram_plan_free(alone);
    vram_plan_free(cmd);
    vram_profile_free(p);
}

/* A profile whose [args] has no memory line leaves the modes alone. */
TEST(args_without_a_memory_line_leave_the_modes_alone)
{
    vram_profile *p = load_shipped("latentsync");
    CHECK(p);
    const char *seq[] = { "memory=sequential" };
    vram_plan *a, *b;
    CHECK_OK(vram_plan_make(NULL, p, seq, 1, BIG, 0, &a));
    CHECK_OK(vram__plan_make_for_args(NULL, p, seq, 1, BIG, 0, true, &b));
    vram_estimate ea, eb;
    CHECK_OK(vram_plan_estimate(a, &ea));
    CHECK_OK(vram_plan_estimate(b, &eb));
    CHECK_EQ(ea.peak_bytes, eb.peak_bytes);
    vram_plan_free(a);
    vram_plan_free(b);
    vram_profile_free(p);
}

/* A job sized at a plan's peak bytes fits them again (the peak is rounded
 * to bytes; its runner plans within exactly those). */
TEST(a_plan_fits_its_own_peak_bytes)
{
    vram_profile *p = load_shipped("wan2.2-ti2v-5b");
    CHECK(p);
    const char *set[] = { "tier=480p", "memory=lightweight" };
    vram_estimate e;
    CHECK_OK(vram_estimate_run(p, set, 2, 0, &e));
    vram_plan *plan;
    const char *tier[] = { "tier=480p" };
    CHECK_OK(vram__plan_make_for_args(NULL, p, tier, 1, e.peak_bytes, 0, true, &plan));
    CHECK_STR_EQ(vram_plan_param(plan, "memory"), "lightweight");
    vram_plan_free(plan);
    vram_profile_free(p);
}
