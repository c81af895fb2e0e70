/* SPDX-License-Identifier: MIT */
/*
 * tests/plan/test_calibrate.c - calibration: coefficients recovered from
 * runs made by a known "true" profile, one scale when rows are few, the
 * CSV reader's errors as file:line, and the calibrated copy: written where
 * it is found first, comments kept, never over the profile it came from.
 */
#include "plan_test.h"

static const char base[] =
    "# tiny - a test model\n"
    "[profile]\nname = tiny\ntitle = t\nsource = tests\n"
    "[defaults]\nresolution = 256px\nframes = 9\nsteps = 10\ncfg = off\n"
    "[latent]\nstride = 4x8x8\npatch = 1x2x2\ncausal = yes\n"
    "[overhead]\ncuda_context = 100MiB\nslack = 10%\nmargin = 5%\n"
    "[time]\ncard = test card\nbandwidth = 10GB\n"
    "[component net]\nparams = 1B\ndtype = bf16\nprecision = follow\nstages = denoise\nblocks = 10\n"
    "[component dec]\nparams = 0.1B\ndtype = fp32\nstages = decode\nblocks = 4\n"
    "[stage denoise]\nruns = step\nact = 1MiB ; fixed part\nact_per_token = 1KiB ; (ours) a guess\n"
    "time = 0.01\ntime_per_token = 1e-6\n"
    "[stage decode]\nruns = chunk\nact_per_pixel = 2\ntime_per_pixel = 1e-9\n";

/* base with the true coefficients: what the "real" runs follow. */
static const char *truth(void)
{
    static char t[4096];
    vram__strlcpy(t, base, sizeof(t));
    char *at = strstr(t, "act_per_token = 1KiB");
    memcpy(at, "act_per_token = 1331", 20);       /* 1.3 x 1024, same width */
    at = strstr(t, "time_per_token = 1e-6");
    memcpy(at, "time_per_token = 2e-6", 21);
    at = strstr(t, "act_per_pixel = 2");
    memcpy(at, "act_per_pixel = 3", 17);
    return t;
}

/* Runs of the true profile at several sizes: peak without the margin, as a
 * card would show it, and the time. */
static size_t make_rows(const vram_profile *real, char kv[][3][PLAN_SETTING_MAX],
                        const char *ptr[][3], vram_measurement *m, size_t cap)
{
    static const unsigned sides[] = { 128, 256, 384, 512, 768, 1024 };
    static const unsigned frames[] = { 5, 17, 33 };
    size_t n = 0;
    for (size_t s = 0; s < 6; s++)
        for (size_t f = 0; f < 3 && n < cap; f++, n++) {
            snprintf(kv[n][0], PLAN_SETTING_MAX, "resolution=%upx", sides[s]);
            snprintf(kv[n][1], PLAN_SETTING_MAX, "frames=%u", frames[f]);
            snprintf(kv[n][2], PLAN_SETTING_MAX, "memory=%s", f == 1 ? "lightweight" : "beefy");
            for (int k = 0; k < 3; k++)
                ptr[n][k] = kv[n][k];
            vram_estimate e;
            vram_estimate_run(real, ptr[n], 3, 0, &e);
            m[n] = (vram_measurement){ ptr[n], 3, e.peak_bytes - e.margin_bytes, e.seconds };
        }
    return n;
}

TEST(coefficients_are_recovered_from_runs)
{
    vram_profile *p, *real;
    CHECK_OK(vram_profile_load_file(write_file("tiny.ini", base), &p));
    CHECK_OK(vram_profile_load_file(write_file("truth.ini", truth()), &real));
    char kv[18][3][PLAN_SETTING_MAX];
    const char *ptr[18][3];
    vram_measurement m[18];
    size_t n = make_rows(real, kv, ptr, m, 18);
    vram_calibration *c;
    CHECK_OK(vram_calibrate(p, m, n, &c));
    const vram_profile *q = vram_calibration_profile(c);
    CHECK(vram_profile_is_calibrated(q));
    CHECK_NEAR(q->stage[0].act[PLAN_F_TOKEN], 1331, 2);
    CHECK_NEAR(q->stage[0].act[PLAN_F_FIXED], 1048576, 2048);
    CHECK_NEAR(q->stage[0].time[PLAN_F_TOKEN], 2e-6, 1e-9);
    double mb, ms;
    vram_calibration_median_error(c, &mb, &ms);
    CHECK_MSG(mb < 0.1 && ms < 0.1, "median errors %g%% %g%%", mb, ms);
    for (size_t i = 0; i < n; i++) {
        vram_calibration_row r;
        CHECK_OK(vram_calibration_get_row(c, i, &r));
        CHECK_MSG(fabs(r.error_pct) < 0.5, "row %zu: %+.2f%%", i, r.error_pct);
        CHECK(r.after_bytes > r.fit_bytes);            /* the margin stays on top */
        CHECK(r.before_bytes != r.after_bytes);
    }
    /* The profile it came from is untouched. */
    CHECK_NEAR(p->stage[0].act[PLAN_F_TOKEN], 1024, 0);
    char *json;
    CHECK_OK(vram_calibration_json(c, &json));
    CHECK_CONTAINS(json, "\"multipliers\":{\"denoise\":{\"fixed\":");
    vram_free(json);
    vram_calibration_free(c);
    vram_profile_free(real);
    vram_profile_free(p);
}

TEST(few_or_repeated_rows_fit_one_scale)
{
    vram_profile *p, *real;
    CHECK_OK(vram_profile_load_file(write_file("tiny.ini", base), &p));
    CHECK_OK(vram_profile_load_file(write_file("truth.ini", truth()), &real));
    char kv[2][3][PLAN_SETTING_MAX];
    const char *ptr[2][3];
    vram_measurement m[2];
    size_t n = make_rows(real, kv, ptr, m, 2);
    vram_calibration *c;
    CHECK_OK(vram_calibrate(p, m, n, &c));
    const vram_profile *q = vram_calibration_profile(c);
    double k_fixed = q->stage[0].act[PLAN_F_FIXED] / p->stage[0].act[PLAN_F_FIXED];
    double k_token = q->stage[0].act[PLAN_F_TOKEN] / p->stage[0].act[PLAN_F_TOKEN];
    CHECK_NEAR(k_fixed, k_token, 1e-6);
    CHECK(k_token > 1.0);
    vram_calibration_free(c);
    /* Ten runs at one setting are one row to the fit: least squares over
     * them dropped the per-token term to 0 and put it all in the fixed one,
     * so the copy's activations no longer grew with resolution. */
    vram_measurement ten[10];
    for (size_t i = 0; i < 10; i++)
        ten[i] = m[0];
    CHECK_OK(vram_calibrate(p, ten, 10, &c));
    q = vram_calibration_profile(c);
    k_fixed = q->stage[0].act[PLAN_F_FIXED] / p->stage[0].act[PLAN_F_FIXED];
    k_token = q->stage[0].act[PLAN_F_TOKEN] / p->stage[0].act[PLAN_F_TOKEN];
    CHECK_MSG(k_token > 0, "the per-token term was dropped (fixed x%g, per token x%g)", k_fixed, k_token);
    CHECK_NEAR(k_fixed, k_token, 1e-6);
    CHECK_NEAR(q->stage[0].time[PLAN_F_FIXED] / p->stage[0].time[PLAN_F_FIXED],
               q->stage[0].time[PLAN_F_TOKEN] / p->stage[0].time[PLAN_F_TOKEN], 1e-6);
    vram_calibration_free(c);
    vram_profile_free(real);
    vram_profile_free(p);
}

TEST(rows_are_checked)
{
    vram_profile *p = load_shipped("latentsync");
    CHECK(p);
    vram_calibration *c = (vram_calibration *)1;
    const char *bad[] = { "resolution=1x1" };
    vram_measurement m = { bad, 1, VRAM__GiB, 10 };
    CHECK_ERR(vram_calibrate(p, &m, 1, &c), VRAM_EINVAL);
    CHECK(c == NULL);
    CHECK_CONTAINS(vram_last_error(), "row 1:");
    vram_measurement none = { NULL, 0, 0, 0 };
    CHECK_ERR(vram_calibrate(p, &none, 1, &c), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "no row has a peak or a time");
    CHECK_ERR(vram_calibrate(p, NULL, 0, &c), VRAM_EINVAL);
    vram_measurement instant = { NULL, 0, VRAM__GiB, 1e-300 };
    CHECK_ERR(vram_calibrate(p, &instant, 1, &c), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "row 1: 1e-300 seconds is not a run's time");
    vram_profile_free(p);
}

TEST(the_csv_reader_reports_file_and_line)
{
    vram_profile *p = load_shipped("latentsync");
    CHECK(p);
    vram_calibration *c;
    const char *path = write_file("runs.csv",
                                  "# measured on a test card\n"
                                  "resolution,chunk,cfg,peak,seconds,note\n"
                                  "512px,16,on,16.1GiB,40.5,default\n"
                                  "512px,8,on,9GiB,42,\n"
                                  "\"256px\",16,off,4.5GiB,,no time\n"
                                  "512px,16,off,8.8GiB,21,\n");
    CHECK_OK(vram_calibrate_csv(p, path, &c));
    CHECK_EQ(vram_calibration_row_count(c), 4);
    vram_calibration_row r;
    CHECK_OK(vram_calibration_get_row(c, 2, &r));
    CHECK(isnan(r.error_s_pct));
    CHECK_EQ(r.observed_bytes, (uint64_t)(4.5 * VRAM__GiB));
    vram_calibration_free(c);
    static const struct {
        const char *text, *says;
    } bad[] = {
        { "resolution,peak\n512px,12XB\n", "bad.csv:2: peak: '12XB' is not a size" },
        { "resolutoin,peak\n512px,12GiB\n", "bad.csv:1: unknown column 'resolutoin'" },
        { "resolution,steps\n512px,10\n", "bad.csv:1: no peak, peak_bytes or seconds" },
        { "resolution,peak\n512px\n", "bad.csv:2: 1 fields, the header has 2" },
        { "resolution,peak\n1280y720,12GiB\n", "bad.csv:2: settings: resolution '1280y720'" },
        { "frames,duration,peak\n81,5,12GiB\n", "bad.csv:2: settings:" },
        { "resolution,seconds\n512px,-3\n", "bad.csv:2: seconds: '-3'" },
        /* The fit weighs rows by 1/seconds^2: infinite here, NaN multipliers. */
        { "resolution,seconds\n512px,1e-300\n", "bad.csv:2: seconds: '1e-300' is not a run's time" },
        { "resolution,seconds\n512px,1e308\n", "bad.csv:2: seconds: '1e308' is not a run's time" },
        { "# only a comment\n", "bad.csv: no measurements" },
        { "resolution,peak\n\"512px,12GiB\n", "an unclosed quote" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = (vram_calibration *)1;
        int rc = vram_calibrate_csv(p, write_file("bad.csv", bad[i].text), &c);
        CHECK_MSG(rc == VRAM_EPARSE, "case %zu: %s: %s", i, vram_errname(rc), vram_last_error());
        CHECK(c == NULL);
        CHECK_CONTAINS(vram_last_error(), bad[i].says);
    }
    CHECK_ERR(vram_calibrate_csv(p, "/nonexistent/runs.csv", &c), VRAM_ENOENT);
    vram_profile_free(p);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

TEST(the_copy_is_found_first_and_the_shipped_one_stays)
{
    vram_profile *p = load_shipped("latentsync");
    CHECK(p);
    char *before = slurp(vram_profile_path(p));
    CHECK(before);
    const char *path = write_file("runs.csv", "cfg,chunk,peak,seconds\n"
                                              "on,16,18.2GiB,60\n"
                                              "on,8,10.1GiB,62\n"
                                              "off,16,9.9GiB,31\n"
                                              "off,8,5.8GiB,33\n");
    vram_calibration *c;
    CHECK_OK(vram_calibrate_csv(p, path, &c));
    char written[4200];
    CHECK_OK(vram_calibration_write(c, NULL, NULL, 0, written, sizeof(written)));
    CHECK_CONTAINS(written, "/config/vram/profiles/latentsync.ini");
    /* Again: a calibrated copy may be replaced. */
    CHECK_OK(vram_calibration_write(c, NULL, NULL, 0, written, sizeof(written)));
    char *copy = slurp(written);
    CHECK(copy);
    CHECK_CONTAINS(copy, "# latentsync - LatentSync 1.6 lip sync");
    CHECK_CONTAINS(copy, "; calibrated, was 90KiB");
    CHECK_CONTAINS(copy, "\n[calibration]\nsummary = 4 rows on ");
    vram_profile *again;
    CHECK_OK(vram_profile_load(NULL, "latentsync", &again));
    CHECK(vram_profile_is_calibrated(again));
    CHECK_STR_EQ(vram_profile_path(again), written);
    vram_profile_free(again);
    /* Never over the profile it came from, nor over a stranger's file. */
    CHECK_ERR(vram_calibration_write(c, NULL, vram_profile_path(p), 1, NULL, 0), VRAM_EPERM);
    CHECK_CONTAINS(vram_last_error(), "never writes over it");
    const char *other = write_file("other.ini", "not a calibrated copy\n");
    CHECK_ERR(vram_calibration_write(c, NULL, other, 0, NULL, 0), VRAM_EPERM);
    CHECK_CONTAINS(vram_last_error(), "not a calibrated copy");
    CHECK_OK(vram_calibration_write(c, NULL, other, 1, NULL, 0));
    char *after = slurp(vram_profile_path(p));
    CHECK_STR_EQ(after, before);
    free(after);
    free(before);
    free(copy);
    remove(written);
    vram_calibration_free(c);
    vram_profile_free(p);
}
