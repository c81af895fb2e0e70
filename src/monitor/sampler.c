/* SPDX-License-Identifier: MIT */
/*
 * monitor/sampler.c - the sampler thread, its fixed-size history rings,
 * thresholds and stage marks.
 *
 * One thread samples every device at a fixed rate (the schedule does not
 * drift with the time a sample takes) into a ring per device allocated once
 * at start, so memory does not grow with uptime.  Thresholds fire once per
 * crossing, not once per sample.  Stage marks record used memory at named
 * points of a pipeline.  Callbacks run on the sampler thread, outside the
 * monitor's lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/monitor.h"

#define DEFAULT_HISTORY 3000
#define MAX_THRESHOLDS 16

typedef struct ring {
    vram_sample *s;
    size_t head;                    /* next slot to write */
    size_t count;
} ring;

typedef struct threshold {
    double level;
    int is_percent;
    vram_threshold_fn fn;
    void *user;
    bool *above;                    /* per device: used is at or over the level */
} threshold;

typedef struct mark {
    char *stage;
    unsigned device;
    uint64_t t_ms;
    uint64_t used_bytes;
} mark;

struct vram_monitor {
    vram_ctx *ctx;
    unsigned ndev;
    unsigned interval_ms;
    size_t cap;
    uint64_t t0_ms;
    ring *rings;
    vram_device_snapshot *latest;   /* per device, without processes */
    bool *have_latest;
    threshold thresholds[MAX_THRESHOLDS];
    unsigned nthresholds;
    mark *marks;
    size_t nmarks, marks_cap;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool thread_started;
    bool stopping;
    vram__sample_fn listener;       /* told of every sample (the ledger) */
    void *listener_user;
};

/* ---- sampling ---------------------------------------------------------------- */

typedef struct event {
    threshold *t;
    unsigned device;
    uint64_t level, used;
    int rising;
} event;

static uint64_t level_bytes(const threshold *t, uint64_t total)
{
    return t->is_percent ? (uint64_t)((double)total * t->level / 100.0) : (uint64_t)t->level;
}

/* Under the lock: stores a device's sample and notes threshold crossings. */
static void record(vram_monitor *m, unsigned dev, const vram_device_snapshot *d, uint64_t t_ms,
                   event *events, size_t *nevents)
{
    ring *r = &m->rings[dev];
    r->s[r->head] = (vram_sample){ t_ms, d->info.used_bytes, d->info.free_bytes, d->leased_bytes,
                                   d->others_bytes };
    r->head = (r->head + 1) % m->cap;
    if (r->count < m->cap)
        r->count++;
    m->latest[dev] = *d;
    m->have_latest[dev] = true;
    for (unsigned i = 0; i < m->nthresholds; i++) {
        threshold *t = &m->thresholds[i];
        uint64_t level = level_bytes(t, d->info.total_bytes);
        bool now_above = d->info.used_bytes >= level;
        if (now_above != t->above[dev]) {
            t->above[dev] = now_above;
            events[(*nevents)++] = (event){ t, dev, level, d->info.used_bytes, now_above };
        }
    }
}

int vram_monitor_sample_now(vram_monitor *m)
{
    if (!m)
        return vram__fail(VRAM_EINVAL, "vram_monitor_sample_now: NULL monitor");
    uint64_t t_ms = vram__now_ms() - m->t0_ms;
    int first_err = 0;
    for (unsigned dev = 0; dev < m->ndev; dev++) {
        vram_device_snapshot d;
        int rc = vram__snapshot_device(m->ctx, dev, false, &d);
        event events[MAX_THRESHOLDS];
        size_t nevents = 0;
        pthread_mutex_lock(&m->lock);
        if (!rc)                    /* a failed sample leaves a gap, not a zero */
            record(m, dev, &d, t_ms, events, &nevents);
        vram__sample_fn listener = m->listener;
        void *listener_user = m->listener_user;
        pthread_mutex_unlock(&m->lock);
        if (rc && !first_err)
            first_err = rc;
        for (size_t i = 0; i < nevents; i++)
            events[i].t->fn(events[i].t->user, events[i].device, events[i].level, events[i].used,
                            events[i].rising);
        if (listener)
            listener(listener_user, dev, &d);
    }
    return first_err;
}

/* The thread samples one interval after the previous sample; the first was
 * taken by vram_monitor_start itself. */
static void *sampler_main(void *arg)
{
    vram_monitor *m = arg;
    uint64_t next_ns = vram__now_ns();
    pthread_mutex_lock(&m->lock);
    for (;;) {
        next_ns += (uint64_t)m->interval_ms * 1000000ull;
        uint64_t now = vram__now_ns();
        if (next_ns < now)          /* fell behind (suspend, slow driver): skip ahead */
            next_ns = now;
        struct timespec until = { (time_t)(next_ns / 1000000000ull), (long)(next_ns % 1000000000ull) };
        while (!m->stopping && pthread_cond_timedwait(&m->wake, &m->lock, &until) != ETIMEDOUT)
            ;
        if (m->stopping)
            break;
        pthread_mutex_unlock(&m->lock);
        vram_monitor_sample_now(m);
        pthread_mutex_lock(&m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* ---- life ---------------------------------------------------------------------- */

static void monitor_free(vram_monitor *m)
{
    if (m->rings)
        for (unsigned i = 0; i < m->ndev; i++)
            free(m->rings[i].s);
    for (unsigned i = 0; i < m->nthresholds; i++)
        free(m->thresholds[i].above);
    for (size_t i = 0; i < m->nmarks; i++)
        free(m->marks[i].stage);
    free(m->marks);
    free(m->rings);
    free(m->latest);
    free(m->have_latest);
    free(m);
}

static int monitor_alloc(vram_ctx *ctx, unsigned interval_ms, size_t history_len, vram_monitor **out)
{
    vram_monitor *m = calloc(1, sizeof(*m));
    if (!m)
        return vram__fail(VRAM_ENOMEM, "out of host memory starting a monitor");
    m->ctx = ctx;
    m->interval_ms = interval_ms ? interval_ms : (unsigned)vram__opt_ms(ctx->opts, VRAM__OPT_INTERVAL);
    m->cap = history_len ? history_len : DEFAULT_HISTORY;
    m->t0_ms = vram__now_ms();
    int rc = vram_device_count(ctx, &m->ndev);
    if (rc) {
        free(m);
        return rc;
    }
    m->rings = calloc(m->ndev ? m->ndev : 1, sizeof(*m->rings));
    m->latest = calloc(m->ndev ? m->ndev : 1, sizeof(*m->latest));
    m->have_latest = calloc(m->ndev ? m->ndev : 1, sizeof(*m->have_latest));
    bool ok = m->rings && m->latest && m->have_latest;
    for (unsigned i = 0; ok && i < m->ndev; i++)
        ok = (m->rings[i].s = calloc(m->cap, sizeof(vram_sample))) != NULL;
    if (!ok) {
        monitor_free(m);
        return vram__fail(VRAM_ENOMEM, "out of host memory for %zu samples per device", history_len);
    }
    *out = m;
    return 0;
}

int vram_monitor_start(vram_ctx *ctx, unsigned interval_ms, size_t history_len, vram_monitor **out)
{
    if (!out || !ctx)
        return vram__fail(VRAM_EINVAL, "vram_monitor_start: NULL argument");
    *out = NULL;
    if (history_len > 100000000)
        return vram__fail(VRAM_ERANGE, "history of %zu samples is too long (at most 10^8)", history_len);
    vram_monitor *m = NULL;
    int rc = monitor_alloc(ctx, interval_ms, history_len, &m);
    if (rc)
        return rc;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->wake, &attr);
    pthread_condattr_destroy(&attr);
    vram_monitor_sample_now(m);     /* a reader finds a sample at once; a failure is a gap */
    if (pthread_create(&m->thread, NULL, sampler_main, m) != 0) {
        pthread_mutex_destroy(&m->lock);
        pthread_cond_destroy(&m->wake);
        monitor_free(m);
        return vram__fail(VRAM_ENOMEM, "cannot start the sampler thread");
    }
    m->thread_started = true;
    vram__ctx_attach(ctx);
    *out = m;
    return 0;
}

void vram_monitor_stop(vram_monitor *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_cond_broadcast(&m->wake);
    pthread_mutex_unlock(&m->lock);
    if (m->thread_started)
        pthread_join(m->thread, NULL);
    vram__ctx_detach(m->ctx);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->wake);
    monitor_free(m);
}

/* ---- reading ----------------------------------------------------------------------- */

static int check_device(const vram_monitor *m, unsigned device)
{
    if (device >= m->ndev)
        return vram__fail(VRAM_ENODEV, "no device %u: the monitor samples %u", device, m->ndev);
    return 0;
}

int vram_monitor_history(vram_monitor *m, unsigned device, vram_sample *buf, size_t cap,
                         size_t *count_out)
{
    if (!m || !count_out || (cap && !buf))
        return vram__fail(VRAM_EINVAL, "vram_monitor_history: NULL argument");
    *count_out = 0;
    int rc = check_device(m, device);
    if (rc)
        return rc;
    pthread_mutex_lock(&m->lock);
    const ring *r = &m->rings[device];
    size_t n = r->count < cap ? r->count : cap;
    for (size_t i = 0; i < n; i++)
        buf[i] = r->s[(r->head + m->cap - n + i) % m->cap];
    pthread_mutex_unlock(&m->lock);
    *count_out = n;
    return 0;
}

int vram_monitor_window(vram_monitor *m, unsigned device, uint64_t window_ms, vram_window_stats *out)
{
    if (!m || !out)
        return vram__fail(VRAM_EINVAL, "vram_monitor_window: NULL argument");
    memset(out, 0, sizeof(*out));
    int rc = check_device(m, device);
    if (rc)
        return rc;
    pthread_mutex_lock(&m->lock);
    const ring *r = &m->rings[device];
    uint64_t newest = r->count ? r->s[(r->head + m->cap - 1) % m->cap].t_ms : 0;
    double used_sum = 0, free_sum = 0, leased_sum = 0;
    for (size_t i = 0; i < r->count; i++) {
        const vram_sample *s = &r->s[(r->head + m->cap - 1 - i) % m->cap];
        if (window_ms && newest - s->t_ms > window_ms)
            break;
        if (out->count == 0) {
            out->used_min = out->used_max = s->used_bytes;
            out->free_min = out->free_max = s->free_bytes;
            out->leased_min = out->leased_max = s->leased_bytes;
        }
#define MINMAX(field)                                          \
    if (s->field##_bytes < out->field##_min) out->field##_min = s->field##_bytes; \
    if (s->field##_bytes > out->field##_max) out->field##_max = s->field##_bytes;
        MINMAX(used)
        MINMAX(free)
        MINMAX(leased)
#undef MINMAX
        used_sum += (double)s->used_bytes;
        free_sum += (double)s->free_bytes;
        leased_sum += (double)s->leased_bytes;
        out->count++;
    }
    pthread_mutex_unlock(&m->lock);
    if (out->count) {
        out->used_mean = used_sum / (double)out->count;
        out->free_mean = free_sum / (double)out->count;
        out->leased_mean = leased_sum / (double)out->count;
    }
    return 0;
}

int vram_monitor_latest(vram_monitor *m, unsigned device, vram_device_snapshot *out)
{
    if (!m || !out)
        return vram__fail(VRAM_EINVAL, "vram_monitor_latest: NULL argument");
    int rc = check_device(m, device);
    if (rc)
        return rc;
    pthread_mutex_lock(&m->lock);
    bool have = m->have_latest[device];
    if (have)
        *out = m->latest[device];
    pthread_mutex_unlock(&m->lock);
    return have ? 0 : vram__fail(VRAM_EAGAIN, "no sample of device %u yet", device);
}

void vram__monitor_set_listener(vram_monitor *m, vram__sample_fn fn, void *user)
{
    pthread_mutex_lock(&m->lock);
    m->listener = fn;
    m->listener_user = user;
    pthread_mutex_unlock(&m->lock);
}

unsigned vram__monitor_devices(const vram_monitor *m)
{
    return m->ndev;
}

/* ---- thresholds ------------------------------------------------------------------------ */

int vram_monitor_add_threshold(vram_monitor *m, double level, int is_percent, vram_threshold_fn fn,
                               void *user)
{
    if (!m || !fn)
        return vram__fail(VRAM_EINVAL, "vram_monitor_add_threshold: NULL monitor or callback");
    if (!(level >= 0) || (is_percent && level > 100))
        return vram__fail(VRAM_ERANGE, "threshold %g%s is out of range", level, is_percent ? "%" : " bytes");
    bool *above = calloc(m->ndev ? m->ndev : 1, sizeof(bool));
    if (!above)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    pthread_mutex_lock(&m->lock);
    int rc = 0;
    if (m->nthresholds == MAX_THRESHOLDS)
        rc = vram__fail(VRAM_ERANGE, "at most %d thresholds", MAX_THRESHOLDS);
    else
        m->thresholds[m->nthresholds++] = (threshold){ level, is_percent, fn, user, above };
    pthread_mutex_unlock(&m->lock);
    if (rc)
        free(above);
    return rc;
}

/* ---- stage marks ------------------------------------------------------------------------ */

int vram_monitor_mark(vram_monitor *m, unsigned device, const char *stage)
{
    if (!m || !stage)
        return vram__fail(VRAM_EINVAL, "vram_monitor_mark: NULL monitor or stage");
    int rc = check_device(m, device);
    if (rc)
        return rc;
    vram_device_info info;
    if ((rc = vram_device_query(m->ctx, device, &info)))
        return rc;
    char *copy = strdup(stage);
    if (!copy)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    pthread_mutex_lock(&m->lock);
    if (m->nmarks == m->marks_cap) {
        size_t cap = m->marks_cap ? m->marks_cap * 2 : 16;
        mark *p = realloc(m->marks, cap * sizeof(*p));
        if (!p) {
            pthread_mutex_unlock(&m->lock);
            free(copy);
            return vram__fail(VRAM_ENOMEM, "out of host memory");
        }
        m->marks = p;
        m->marks_cap = cap;
    }
    m->marks[m->nmarks++] = (mark){ copy, device, vram__now_ms() - m->t0_ms, info.used_bytes };
    pthread_mutex_unlock(&m->lock);
    return 0;
}

static void signed_size(char *buf, size_t cap, uint64_t now, uint64_t before)
{
    char text[32];
    vram_size_format(now >= before ? now - before : before - now, text, sizeof(text));
    snprintf(buf, cap, "%s%s", now >= before ? "+" : "-", text);
}

int vram_monitor_marks_text(vram_monitor *m, char **text_out)
{
    if (!m || !text_out)
        return vram__fail(VRAM_EINVAL, "vram_monitor_marks_text: NULL argument");
    vram__buf b;
    vram__buf_init(&b);
    vram__buf_printf(&b, "%-32s %4s %10s %12s %12s\n", "stage", "dev", "time", "used", "delta");
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nmarks; i++) {
        const mark *k = &m->marks[i];
        const mark *prev = NULL;
        for (size_t j = i; j-- > 0;)
            if (m->marks[j].device == k->device) {
                prev = &m->marks[j];
                break;
            }
        char used[32], delta[40] = "";
        vram_size_format(k->used_bytes, used, sizeof(used));
        if (prev)
            signed_size(delta, sizeof(delta), k->used_bytes, prev->used_bytes);
        vram__buf_printf(&b, "%-32.32s %4u %9.2fs %12s %12s\n", k->stage, k->device,
                         (double)k->t_ms / 1000.0, used, delta);
    }
    pthread_mutex_unlock(&m->lock);
    int rc;
    *text_out = vram__buf_take(&b, &rc);
    return rc;
}
