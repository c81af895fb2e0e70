/* SPDX-License-Identifier: MIT */
/*
 * tests/plan/test_threads.c - a loaded profile is shared by threads: they
 * estimate, plan, optimize and load profiles at once, and every answer is
 * the one a single thread gets.  Run under ThreadSanitizer too.
 */
#define TEST_THREADED 1
#include <pthread.h>

#include "plan_test.h"

typedef struct work {
    const vram_profile *p;
    uint64_t peak;                  /* what one thread alone got */
    int failures;
} work;

static void *hammer(void *arg)
{
    work *w = arg;
    const char *set[] = { "resolution=1080p", "duration=8" };
    for (int i = 0; i < 200; i++) {
        vram_estimate e;
        if (vram_estimate_run(w->p, set, 2, 0, &e) || e.peak_bytes != w->peak)
            w->failures++;
        vram_plan *plan;
        if (vram_plan_make(NULL, w->p, NULL, 0, 24 * VRAM__GiB, 0, &plan) == 0)
            vram_plan_free(plan);
        else
            w->failures++;
        if (i % 20 == 0) {
            vram_optimization o;
            if (vram_optimize(w->p, set, 2, 24 * VRAM__GiB, VRAM_LEVEL_BALANCED, 0, &o) || !o.fits)
                w->failures++;
            vram_profile *again;
            if (vram_profile_load(NULL, "latentsync", &again) == 0)
                vram_profile_free(again);
            else
                w->failures++;
        }
    }
    return NULL;
}

TEST(threads_share_a_profile)
{
    vram_profile *p = load_shipped("wan2.2-t2v-a14b");
    CHECK(p);
    const char *set[] = { "resolution=1080p", "duration=8" };
    vram_estimate e;
    CHECK_OK(vram_estimate_run(p, set, 2, 0, &e));
    work w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (work){ p, e.peak_bytes, 0 };
        CHECK(pthread_create(&t[i], NULL, hammer, &w[i]) == 0);
    }
    int failures = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        failures += w[i].failures;
    }
    CHECK_EQ(failures, 0);
    vram_profile_free(p);
}
