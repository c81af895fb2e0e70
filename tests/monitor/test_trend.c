/* SPDX-License-Identifier: MIT */
/*
 * tests/monitor/test_trend.c - leak or noise: the Theil-Sen trend.
 */
#include "test.h"

#define MiB (1024.0 * 1024.0)

static uint64_t rng = 88172645463325252ull;

static double noise(double amplitude)   /* uniform in [-amplitude, amplitude] */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0) * amplitude;
}

static void series(uint64_t *out, size_t n, double base, double slope, double jitter)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint64_t)(base + slope * (double)i + noise(jitter));
}

TEST(steady_growth_is_a_leak_with_its_rate)
{
    uint64_t s[40];
    series(s, 40, 6e9, 12 * MiB, 5 * MiB);
    vram_trend t;
    CHECK_OK(vram_trend_fit(s, 40, 0, &t));
    CHECK(t.leaking);
    CHECK_NEAR(t.slope_bytes / MiB, 12, 1.0);
    CHECK(t.slope_low > 0 && t.slope_low <= t.slope_bytes && t.slope_high >= t.slope_bytes);
    char text[200];
    vram_trend_describe(&t, "frame", text, sizeof(text));
    CHECK_CONTAINS(text, "growing 1");
    CHECK_CONTAINS(text, "MiB per frame over 40 frames");
}

TEST(noise_is_flat)
{
    for (int trial = 0; trial < 400; trial++) {
        uint64_t s[60];
        series(s, 60, 8e9, 0, 50 * MiB);
        vram_trend t;
        CHECK_OK(vram_trend_fit(s, 60, 0, &t));
        CHECK_MSG(!t.leaking, "trial %d: noise called a leak (slope %g)", trial, t.slope_bytes);
    }
}

TEST(one_off_spikes_and_a_warmup_step_are_not_leaks)
{
    uint64_t s[50];
    series(s, 50, 4e9, 0, 1 * MiB);
    s[10] += (uint64_t)(2048 * MiB);
    s[30] += (uint64_t)(1024 * MiB);
    s[49] += (uint64_t)(3000 * MiB);
    vram_trend t;
    CHECK_OK(vram_trend_fit(s, 50, 0, &t));
    CHECK(!t.leaking);
    CHECK_NEAR(t.slope_bytes / MiB, 0, 0.5);

    for (size_t i = 0; i < 50; i++)          /* caches fill in the first frames */
        s[i] = (uint64_t)(4e9 + (i < 3 ? 0 : 1.5e9) + noise(1 * MiB));
    CHECK_OK(vram_trend_fit(s, 50, 0, &t));
    CHECK(!t.leaking);
    char text[200];
    vram_trend_describe(&t, NULL, text, sizeof(text));
    CHECK_CONTAINS(text, "flat over 50 iterations");
}

TEST(slow_leak_under_noise_is_still_found_given_enough_frames)
{
    uint64_t s[300];
    series(s, 300, 8e9, 1 * MiB, 50 * MiB);   /* 1 MiB/frame under +-50 MiB of noise */
    vram_trend t;
    CHECK_OK(vram_trend_fit(s, 300, 0, &t));
    CHECK(t.leaking);
    CHECK_NEAR(t.slope_bytes / MiB, 1.0, 0.3);
}

TEST(tiny_growth_under_the_floor_is_not_worth_calling)
{
    uint64_t s[30];
    series(s, 30, 1e9, 1000, 0);            /* 1000 bytes per frame: 29 KB in all */
    vram_trend t;
    CHECK_OK(vram_trend_fit(s, 30, 0, &t));
    CHECK(!t.leaking);
    CHECK_OK(vram_trend_fit(s, 30, 10000, &t));
    CHECK(t.leaking);
}

TEST(long_series_are_subsampled_not_quadratic)
{
    static uint64_t s[20000];
    series(s, 20000, 2e9, 0.5 * MiB, 20 * MiB);
    vram_trend t;
    CHECK_OK(vram_trend_fit(s, 20000, 0, &t));
    CHECK(t.leaking);
    CHECK_EQ(t.n, 20000);
    CHECK_NEAR(t.slope_bytes / MiB, 0.5, 0.05);
}

TEST(bad_input)
{
    uint64_t s[4] = { 1, 2, 3, 4 };
    vram_trend t;
    CHECK_ERR(vram_trend_fit(s, 4, 0, &t), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "at least 5");
    CHECK_ERR(vram_trend_fit(NULL, 10, 0, &t), VRAM_EINVAL);
    CHECK_ERR(vram_trend_fit(s, 4, 0, NULL), VRAM_EINVAL);
}
