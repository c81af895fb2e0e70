/* SPDX-License-Identifier: MIT */
/*
 * tests/plan/test_estimate.c - the estimator: exact arithmetic on a small
 * profile, and properties over many random settings on every shipped
 * profile: more pixels, frames, batch or guidance never lower the peak;
 * int8 < fp16 = bf16 < fp32 for weights; sequential < lightweight < beefy
 * in peak and the reverse in time; and overflow refused, never wrapped.
 */
#include "plan_test.h"

static const char tiny[] =
    "[profile]\nname = tiny\ntitle = t\nsource = tests\n"
    "[defaults]\nresolution = 256px\nframes = 9\nsteps = 10\ncfg = off\n"
    "[latent]\nstride = 4x8x8\npatch = 1x2x2\ncausal = yes\n"
    "[overhead]\ncuda_context = 100MiB\nslack = 10%\nmargin = 5%\n"
    "[time]\ncard = test card\nbandwidth = 10GB\n"
    "[component net]\nparams = 1B\ndtype = bf16\nprecision = follow\nstages = denoise\nblocks = 10\n"
    "[component dec]\nparams = 0.1B\ndtype = fp32\nstages = decode\nblocks = 4\n"
    "[stage denoise]\nruns = step\nact = 1MiB\nact_per_token = 1KiB\ntime_per_token = 1e-6\n"
    "[stage decode]\nruns = chunk\nact_per_pixel = 2\ntime_per_pixel = 1e-9\n";

/* Peak of one mode at settings kv. */
static int peak_of(const vram_profile *p, const char *const *kv, size_t n, const char *mode,
                   vram_estimate *e)
{
    const char *all[40];
    char m[32];
    snprintf(m, sizeof(m), "memory=%s", mode);
    for (size_t i = 0; i < n; i++)
        all[i] = kv[i];
    all[n] = m;
    return vram_estimate_run(p, all, n + 1, 0, e);
}

TEST(exact_figures_on_a_small_profile)
{
    vram_profile *p;
    CHECK_OK(vram_profile_load_file(write_file("tiny.ini", tiny), &p));
    vram_estimate e;
    /* 256px, 9 frames: 3 latent frames x 16 x 16 = 768 tokens. */
    double act = 1048576.0 + 768 * 1024.0;
    double w = 2e9 + 0.1e9 * 4;
    double tensors = w + act, slack = 0.1 * tensors, ctx = 104857600.0;
    double margin = 0.05 * (tensors + slack + ctx);
    CHECK_OK(peak_of(p, NULL, 0, "beefy", &e));
    CHECK_NEAR((double)e.peak_bytes, tensors + slack + ctx + margin, 1.0);
    CHECK_NEAR((double)e.activation_bytes, act, 1.0);
    CHECK_NEAR((double)e.weights_bytes, w, 1.0);
    CHECK_STR_EQ(e.peak_stage, "denoise");
    double compute = 10 * 768 * 1e-6 + 256.0 * 256 * 9 * 1e-9;
    CHECK_NEAR(e.seconds, compute, 1e-12);
    /* Lightweight: only the denoiser during its stage; moved in once. */
    CHECK_OK(peak_of(p, NULL, 0, "lightweight", &e));
    CHECK_NEAR((double)e.weights_bytes, 2e9, 1.0);
    CHECK_NEAR(e.seconds, compute + 2e9 / 10e9 + 0.4e9 / 10e9, 1e-9);
    /* Sequential: two of ten blocks in flight, streamed every step. */
    CHECK_OK(peak_of(p, NULL, 0, "sequential", &e));
    CHECK_NEAR((double)e.weights_bytes, 2e9 * 0.2, 1.0);
    double stream = 10 * (2e9 / 10e9 + 10 * 1e-4) + (0.4e9 / 10e9 + 4 * 1e-4);
    CHECK_NEAR(e.seconds, compute + stream, 1e-9);
    /* fp32 doubles the denoiser's weights and its activations. */
    const char *fp32[] = { "precision=fp32" };
    CHECK_OK(peak_of(p, fp32, 1, "beefy", &e));
    CHECK_NEAR((double)e.weights_bytes, 4e9 + 0.4e9, 1.0);
    CHECK_NEAR((double)e.activation_bytes, 2 * act, 1.0);
    /* The decode stage peaks when its pixels outgrow the denoiser. */
    const char *big[] = { "resolution=4096px", "frames=101", "memory=lightweight" };
    CHECK_OK(vram_estimate_run(p, big, 3, 0, &e));
    CHECK_STR_EQ(e.peak_stage, "decode");
    CHECK_NEAR((double)e.activation_bytes, 2.0 * 4096 * 4096 * 101, 1.0);
    vram_profile_free(p);
}

TEST(the_breakdown_adds_up_to_the_peak)
{
    for (size_t i = 0; i < NSHIPPED; i++) {
        vram_profile *p = load_shipped(shipped[i]);
        CHECK(p);
        vram_estimate m[3];
        CHECK_OK(vram_estimate_modes(p, NULL, 0, m));
        for (int k = 0; k < 3; k++) {
            uint64_t sum = m[k].weights_bytes + m[k].activation_bytes + m[k].overhead_bytes +
                           m[k].margin_bytes;
            CHECK_MSG(sum + 4 >= m[k].peak_bytes && sum <= m[k].peak_bytes + 4, "%s mode %d: %llu vs %llu",
                      shipped[i], k, (unsigned long long)sum, (unsigned long long)m[k].peak_bytes);
            CHECK(m[k].peak_stage[0]);
            CHECK(m[k].seconds > 0);
        }
        vram_profile_free(p);
    }
}

/* Random settings for profile p, written into kv (n entries). */
static size_t random_settings(const vram_profile *p, char kv[][PLAN_SETTING_MAX])
{
    static const char *const precisions[] = { "fp32", "bf16", "fp16", "int8" };
    size_t n = 0;
    unsigned side = p->base.width > 600 ? 1920 : 768;
    snprintf(kv[n++], PLAN_SETTING_MAX, "resolution=%ux%u", rnd(4, side / 16) * 16, rnd(4, side / 16) * 16);
    snprintf(kv[n++], PLAN_SETTING_MAX, "frames=%u", rnd(1, 200));
    snprintf(kv[n++], PLAN_SETTING_MAX, "steps=%u", rnd(1, 60));
    snprintf(kv[n++], PLAN_SETTING_MAX, "batch=%u", rnd(1, 4));
    snprintf(kv[n++], PLAN_SETTING_MAX, "cfg=%s", rnd(0, 1) ? "on" : "off");
    snprintf(kv[n++], PLAN_SETTING_MAX, "precision=%s", precisions[rnd(0, 3)]);
    snprintf(kv[n++], PLAN_SETTING_MAX, "vae_tiling=%s", rnd(0, 1) ? "on" : "off");
    snprintf(kv[n++], PLAN_SETTING_MAX, "chunk=%u", rnd(0, 1) ? 0 : rnd(1, 64));
    snprintf(kv[n++], PLAN_SETTING_MAX, "lora=%u", rnd(0, 3));
    snprintf(kv[n++], PLAN_SETTING_MAX, "audio=%u", rnd(0, 60));
    return n;
}

/* kv with one setting replaced (appended: the last one wins). */
static size_t with(char kv[][PLAN_SETTING_MAX], size_t n, const char *fmt, unsigned v)
{
    snprintf(kv[n], PLAN_SETTING_MAX, fmt, v);
    return n + 1;
}

static uint64_t peak_at(const vram_profile *p, char kv[][PLAN_SETTING_MAX], size_t n, const char *mode)
{
    const char *list[40];
    for (size_t i = 0; i < n; i++)
        list[i] = kv[i];
    vram_estimate e;
    return peak_of(p, list, n, mode, &e) ? 0 : e.peak_bytes;
}

static bool parse_resolution(const char *kv, unsigned *w, unsigned *h)
{
    return sscanf(kv, "resolution=%ux%u", w, h) == 2;
}

/* More pixels, frames, batch or guidance never lower the estimate, in any
 * mode, over many random settings of every shipped profile. */
TEST(more_work_never_lowers_the_estimate)
{
    static const char *const modes[] = { "beefy", "lightweight", "sequential" };
    int checked = 0;
    for (size_t i = 0; i < NSHIPPED; i++) {
        vram_profile *p = load_shipped(shipped[i]);
        CHECK(p);
        for (int trial = 0; trial < 150; trial++) {
            char kv[40][PLAN_SETTING_MAX];
            size_t n = random_settings(p, kv);
            unsigned w, h;
            CHECK(parse_resolution(kv[0], &w, &h));
            const char *mode = modes[trial % 3];
            uint64_t base = peak_at(p, kv, n, mode);
            CHECK_MSG(base > 0, "%s: %s", shipped[i], vram_last_error());
            char more[40][PLAN_SETTING_MAX];
            memcpy(more, kv, sizeof(kv));
            snprintf(more[n], PLAN_SETTING_MAX, "resolution=%ux%u", w + 16 * rnd(1, 8), h + 16 * rnd(0, 8));
            CHECK_MSG(peak_at(p, more, n + 1, mode) >= base, "%s %s: more pixels (%s) lowered it",
                      shipped[i], mode, more[n]);
            unsigned frames;
            sscanf(kv[1], "frames=%u", &frames);
            size_t m = with(more, n, "frames=%u", frames + rnd(1, 40));
            CHECK_MSG(peak_at(p, more, m, mode) >= base, "%s %s: more frames lowered it", shipped[i], mode);
            unsigned batch;
            sscanf(kv[3], "batch=%u", &batch);
            m = with(more, n, "batch=%u", batch + 1);
            CHECK_MSG(peak_at(p, more, m, mode) >= base, "%s %s: a bigger batch lowered it", shipped[i], mode);
            uint64_t with_cfg[2];           /* off, on */
            for (int on = 0; on < 2; on++) {
                snprintf(more[n], PLAN_SETTING_MAX, "cfg=%s", on ? "on" : "off");
                with_cfg[on] = peak_at(p, more, n + 1, mode);
            }
            CHECK_MSG(with_cfg[1] >= with_cfg[0], "%s %s: guidance lowered it", shipped[i], mode);
            checked++;
        }
        vram_profile_free(p);
    }
    CHECK_EQ(checked, 150 * (int)NSHIPPED);
}

TEST(weights_by_precision_int8_fp16_bf16_fp32)
{
    for (size_t i = 0; i < NSHIPPED; i++) {
        vram_profile *p = load_shipped(shipped[i]);
        CHECK(p);
        for (int trial = 0; trial < 50; trial++) {
            char kv[40][PLAN_SETTING_MAX];
            size_t n = random_settings(p, kv);
            uint64_t w[4];
            static const char *const order[] = { "int8", "fp16", "bf16", "fp32" };
            for (int k = 0; k < 4; k++) {
                const char *list[40];
                char prec[32];
                for (size_t j = 0; j < n; j++)
                    list[j] = kv[j];
                snprintf(prec, sizeof(prec), "precision=%s", order[k]);
                list[n] = prec;
                vram_estimate e;
                CHECK_OK(peak_of(p, list, n + 1, "beefy", &e));
                w[k] = e.weights_bytes;
            }
            CHECK_MSG(w[0] < w[1] && w[1] == w[2] && w[2] < w[3], "%s: %llu %llu %llu %llu", shipped[i],
                      (unsigned long long)w[0], (unsigned long long)w[1], (unsigned long long)w[2],
                      (unsigned long long)w[3]);
        }
        vram_profile_free(p);
    }
}

TEST(sequential_lightweight_beefy_in_peak_and_the_reverse_in_time)
{
    for (size_t i = 0; i < NSHIPPED; i++) {
        vram_profile *p = load_shipped(shipped[i]);
        CHECK(p);
        for (int trial = 0; trial < 100; trial++) {
            char kv[40][PLAN_SETTING_MAX];
            size_t n = random_settings(p, kv);
            const char *list[40];
            for (size_t j = 0; j < n; j++)
                list[j] = kv[j];
            vram_estimate m[3];
            CHECK_OK(vram_estimate_modes(p, list, n, m));
            CHECK_MSG(m[2].peak_bytes < m[1].peak_bytes && m[1].peak_bytes < m[0].peak_bytes,
                      "%s peaks: sequential %llu, lightweight %llu, beefy %llu (%s %s %s)", shipped[i],
                      (unsigned long long)m[2].peak_bytes, (unsigned long long)m[1].peak_bytes,
                      (unsigned long long)m[0].peak_bytes, kv[0], kv[1], kv[5]);
            CHECK_MSG(m[2].seconds > m[1].seconds && m[1].seconds > m[0].seconds,
                      "%s times: %g %g %g", shipped[i], m[2].seconds, m[1].seconds, m[0].seconds);
            CHECK(m[0].host_bytes > 0 && m[2].host_bytes >= m[0].host_bytes / 2);
        }
        vram_profile_free(p);
    }
}

TEST(auto_takes_the_fastest_mode_that_fits)
{
    vram_profile *p = load_shipped("wan2.2-ti2v-5b");
    CHECK(p);
    vram_estimate m[3], e;
    CHECK_OK(vram_estimate_modes(p, NULL, 0, m));
    CHECK_OK(vram_estimate_run(p, NULL, 0, 0, &e));
    CHECK_EQ(e.memory, VRAM_MEMORY_BEEFY);
    CHECK_OK(vram_estimate_run(p, NULL, 0, m[0].peak_bytes, &e));
    CHECK_EQ(e.memory, VRAM_MEMORY_BEEFY);
    CHECK_OK(vram_estimate_run(p, NULL, 0, m[0].peak_bytes - 1, &e));
    CHECK_EQ(e.memory, VRAM_MEMORY_LIGHTWEIGHT);
    CHECK_OK(vram_estimate_run(p, NULL, 0, m[1].peak_bytes - 1, &e));
    CHECK_EQ(e.memory, VRAM_MEMORY_SEQUENTIAL);
    CHECK_ERR(vram_estimate_run(p, NULL, 0, m[2].peak_bytes - 1, &e), VRAM_ENOFIT);
    CHECK_EQ(e.memory, VRAM_MEMORY_SEQUENTIAL);
    CHECK_CONTAINS(vram_last_error(), "at the least (sequential)");
    const char *forced[] = { "memory=beefy" };
    CHECK_ERR(vram_estimate_run(p, forced, 1, m[0].peak_bytes - 1, &e), VRAM_ENOFIT);
    vram_profile_free(p);
}

TEST(overflow_is_refused_never_wrapped)
{
    /* Attention without a fused kernel grows with tokens squared: 10^11
     * tokens square past 2^64 bytes. */
    vram_profile *p = load_shipped("generic-diffusion");
    CHECK(p);
    const char *huge[] = { "resolution=16384x16384", "frames=100000", "batch=1024", "vae_tiling=off" };
    vram_estimate e;
    CHECK_ERR(vram_estimate_run(p, huge, 4, 0, &e), VRAM_ERANGE);
    CHECK_CONTAINS(vram_last_error(), "overflow 64-bit");
    CHECK_CONTAINS(vram_last_error(), "16384x16384");
    CHECK_EQ(e.peak_bytes, 0);
    char *json = (char *)1;
    CHECK_ERR(vram_estimate_json(p, huge, 4, 0, &json), VRAM_ERANGE);
    CHECK(json == NULL);
    vram_profile_free(p);
}

/* A stage whose bytes are NaN (an infinite coefficient times an input of
 * zero) must refuse the estimate, not drop out of it: the peak would be
 * another stage's, and a plan would fit where it cannot. */
TEST(a_stage_that_is_not_a_number_is_refused_not_skipped)
{
    vram_profile *p;
    CHECK_OK(plan__profile_parse("tiny.ini", tiny, strlen(tiny), &p));
    vram_estimate e;
    CHECK_OK(vram_estimate_run(p, NULL, 0, 0, &e));
    p->stage[0].act[PLAN_F_AUDIO] = INFINITY;   /* audio=0: inf * 0 */
    CHECK_ERR(vram_estimate_run(p, NULL, 0, 0, &e), VRAM_ERANGE);
    CHECK_EQ(e.peak_bytes, 0);
    vram_profile_free(p);
}

TEST(estimate_json_and_text)
{
    vram_profile *p = load_shipped("latentsync");
    CHECK(p);
    char *json, *text;
    const char *set[] = { "cfg=off" };
    CHECK_OK(vram_estimate_json(p, set, 1, 24 * VRAM__GiB, &json));
    CHECK_CONTAINS(json, "\"peak_bytes\":");
    CHECK_CONTAINS(json, "\"fits\":true");
    CHECK_CONTAINS(json, "\"cfg\":false");
    CHECK_CONTAINS(json, "\"host_bytes\":");
    CHECK_OK(vram_estimate_text(p, set, 1, 0, &text));
    CHECK_CONTAINS(text, "peak ");
    CHECK_CONTAINS(text, "host RAM");
    CHECK_CONTAINS(text, "sequential");
    vram_free(json);
    vram_free(text);
    vram_profile_free(p);
}

/* ---- published peaks (issue 11; each profile cites its source) ---- */

#define GB 1e9

/* The peak of `model` at settings, in bytes. */
static double published_peak(const char *model, const char *const *kv, size_t n)
{
    vram_profile *p = NULL;
    if (vram_profile_load(NULL, model, &p))
        return -1;
    vram_estimate e;
    int rc = vram_estimate_run(p, kv, n, 0, &e);
    vram_profile_free(p);
    return rc ? -1 : (double)e.peak_bytes;
}

/* Within 10% of the published figure, and never under it by more than the
 * profile's 5% safety margin. */
#define CHECK_PUBLISHED(got, want)                                                       \
    CHECK_MSG((got) >= 0.95 * (want) && (got) <= 1.10 * (want),                          \
              "estimate %.2f GiB against the published %.2f GiB", (got) / VRAM__GiB,      \
              (want) / VRAM__GiB)

TEST(wan2_2_t2v_a14b_offloaded_41_gib_at_480p_and_60_gib_at_720p)
{
    /* README's efficiency table (an image; issue 11's reading), single GPU,
     * --offload_model True --convert_model_dtype: 41 GB at 480P, 60 GB at
     * 720P, taken as GiB. */
    const char *p480[] = { "resolution=832x480", "memory=lightweight" };
    const char *p720[] = { "resolution=1280x720", "memory=lightweight" };
    double a = published_peak("wan2.2-t2v-a14b", p480, 2);
    double b = published_peak("wan2.2-t2v-a14b", p720, 2);
    CHECK_PUBLISHED(a, 41.0 * VRAM__GiB);
    CHECK_PUBLISHED(b, 60.0 * VRAM__GiB);
    /* README: that 720P command "can run on a GPU with at least 80GB VRAM";
     * without offloading it cannot. */
    CHECK(b < 80 * GB);
    const char *beefy[] = { "resolution=1280x720", "memory=beefy" };
    CHECK(published_peak("wan2.2-t2v-a14b", beefy, 2) > 80 * GB);
}

TEST(wan2_2_ti2v_5b_720p_on_a_4090_near_23_gib)
{
    /* --offload_model True --convert_model_dtype --t5_cpu at 1280*704: "can
     * run on a GPU with at least 24GB VRAM (e.g, RTX 4090 GPU)", measured
     * near 23 GB there. */
    const char *kv[] = { "resolution=1280x704", "memory=lightweight", "cpu=text_encoder" };
    double got = published_peak("wan2.2-ti2v-5b", kv, 3);
    CHECK_PUBLISHED(got, 23.0 * VRAM__GiB);
    CHECK(got < 24.0 * VRAM__GiB);
}

TEST(hunyuanvideo_avatar_24_gb_at_the_least_and_the_full_run_on_an_80_gb_card)
{
    /* README: "The minimum GPU memory required is 24GB for 704px768px129f"
     * (--use-fp8 --cpu-offload: 8-bit weights streamed). */
    const char *least[] = { "resolution=704px", "frames=129", "precision=int8", "memory=sequential" };
    double min = published_peak("hunyuanvideo-avatar", least, 4);
    CHECK_MSG(min <= 24 * GB && min >= 0.9 * 24 * GB, "%.1f GiB", min / VRAM__GiB);
    /* The full-memory run at 704px fits an 80 GB card (the README's OOM tip
     * is about larger images; 96 GB is recommended for quality), and is far
     * over the 24 GB of the slow path. */
    const char *full[] = { "resolution=704px", "frames=129", "precision=bf16", "memory=beefy" };
    double got = published_peak("hunyuanvideo-avatar", full, 4);
    CHECK_MSG(got > 48 * GB && got < 79.6 * VRAM__GiB, "%.1f GiB", got / VRAM__GiB);
}

TEST(latentsync_1_5_at_256px_8_gb_and_1_6_at_512px_18_gb)
{
    /* README: "Minimum VRAM for inference: 8 GB with LatentSync 1.5, 18 GB
     * with LatentSync 1.6". */
    double v15 = published_peak("latentsync-1.5", NULL, 0);
    double v16 = published_peak("latentsync", NULL, 0);
    CHECK_PUBLISHED(v15, 8 * GB);
    CHECK_PUBLISHED(v16, 18 * GB);
    CHECK(v15 <= 8 * GB && v16 <= 18 * GB);   /* they run on those cards */
}
