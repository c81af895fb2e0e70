/* SPDX-License-Identifier: MIT */
/*
 * sched/collect.c - the ordered collector: outcomes come back in submission
 * order (frame order), whatever order the tasks ended in.
 *
 * Owns frame consistency too: the first image result fixes the size and
 * channel count every later one must have; a frame that differs is
 * resampled to it (Lanczos, 8-bit channels) and counted, so assembling the
 * video never fails on one odd frame.  One collector runs at a time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sched/pool.h"

/* Brings an image result to the reference size and channels. */
static void check_image(vram_sched *s, vram_outcome *out)
{
    if (!out->image.data)
        return;
    if (!vram__image_valid(&out->image)) {
        vram__log(VRAM__LOG_WARN, "task %llu returned an image that is not one (%ux%u, %u "
                  "channels); passing its result on without the image",
                  (unsigned long long)out->task_id, out->image.width, out->image.height,
                  out->image.channels);
        memset(&out->image, 0, sizeof(out->image));
        return;
    }
    const vram_image *im = &out->image;
    if (!s->have_ref) {
        s->have_ref = true;
        s->ref_width = im->width;
        s->ref_height = im->height;
        s->ref_channels = im->channels;
        return;
    }
    if (im->width == s->ref_width && im->height == s->ref_height &&
        im->channels == s->ref_channels)
        return;
    vram_image fixed;
    if (vram_image_resample(im, s->ref_width, s->ref_height, s->ref_channels, &fixed)) {
        vram__log(VRAM__LOG_WARN, "task %llu: %s", (unsigned long long)out->task_id,
                  vram_last_error());
        return;
    }
    out->image = fixed;
    out->resampled = 1;
    pthread_mutex_lock(&s->lock);
    vram__pool_count(s, C_resampled, 1);
    pthread_mutex_unlock(&s->lock);
}

/* Waits on the pool's lock until the next task in order has ended. */
static int wait_next(vram_sched *s, int64_t wait_ms, task **out)
{
    uint64_t deadline = wait_ms > 0 ? vram__deadline_after(vram__now_ns(), (uint64_t)wait_ms) : 0;
    for (;;) {
        task *t = s->collected < s->submitted ? vram__pool_task(s, s->collected) : NULL;
        if (t && t->ended) {
            *out = t;
            return 0;
        }
        if (!t && s->shut)
            return vram__fail(VRAM_ENOENT, "every task was collected and the scheduler is shut down");
        if (wait_ms == 0)
            return t ? vram__fail(VRAM_EAGAIN, "task %llu has not ended yet",
                                  (unsigned long long)s->collected)
                     : vram__fail(VRAM_ENOENT, "every task submitted so far was collected");
        if (wait_ms < 0) {
            pthread_cond_wait(&s->ended_cond, &s->lock);
            continue;
        }
        struct timespec ts = { (time_t)(deadline / 1000000000ull), (long)(deadline % 1000000000ull) };
        if (pthread_cond_timedwait(&s->ended_cond, &s->lock, &ts) == ETIMEDOUT &&
            vram__now_ns() >= deadline)
            return vram__fail(VRAM_ETIMEDOUT, "task %llu did not end within %lld ms",
                              (unsigned long long)s->collected, (long long)wait_ms);
    }
}

int vram_sched_next(vram_sched *s, int64_t wait_ms, vram_outcome *out)
{
    if (out) {
        memset(out, 0, sizeof(*out));
        out->device = -1;
    }
    if (!s || !out)
        return vram__fail(VRAM_EINVAL, "vram_sched_next: NULL argument");
    if (wait_ms < VRAM_WAIT_FOREVER)
        return vram__fail(VRAM_EINVAL, "wait of %lld ms: give -1 (forever), 0 or more",
                          (long long)wait_ms);
    pthread_mutex_lock(&s->collect_lock);
    pthread_mutex_lock(&s->lock);
    task *t = NULL;
    int rc = wait_next(s, wait_ms, &t);
    if (!rc) {
        *out = t->out;
        s->tasks[t->id - s->base] = NULL;
        s->collected++;
    }
    pthread_mutex_unlock(&s->lock);
    if (!rc) {
        vram__pool_task_free(t);
        check_image(s, out);
    }
    pthread_mutex_unlock(&s->collect_lock);
    return rc;
}
