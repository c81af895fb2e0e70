/*
 * daemon/metrics.c - /metrics: the daemon's numbers as Prometheus text.
 *
 * Owns the metric names, their help, the label escaping and the
 * admission-wait histogram's buckets (exposition format 0.0.4; `promtool
 * check metrics` accepts the result, as tests/daemon/test_promtool.sh
 * shows).  What the numbers are is the provider's business.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/http.h"

static const double wait_bounds[VRAM__WAIT_BUCKETS] = {
#define VRAM__WAIT_BUCKET_BOUND(le) le,
    VRAM__WAIT_BUCKET_LIST(VRAM__WAIT_BUCKET_BOUND)
#undef VRAM__WAIT_BUCKET_BOUND
};

/* The per-device gauges: name, help, and where the value lives. */
static const struct device_gauge {
    const char *name;
    const char *help;
    size_t offset;
} device_gauges[] = {
    { "vram_device_total_bytes", "Memory of the device.",
      offsetof(vram__metrics_device, total_bytes) },
    { "vram_device_used_bytes", "Memory in use on the device, by anyone.",
      offsetof(vram__metrics_device, used_bytes) },
    { "vram_device_free_bytes", "Memory free on the device.",
      offsetof(vram__metrics_device, free_bytes) },
    { "vram_device_leased_bytes", "Memory held by vram leases (leased_bytes in JSON, \"ours\" on the dashboard).",
      offsetof(vram__metrics_device, leased_bytes) },
    { "vram_device_others_bytes", "Memory in use that no vram lease explains (others).",
      offsetof(vram__metrics_device, others_bytes) },
    { "vram_device_driver_reserved_bytes",
      "Memory the driver sets aside (NVML v2), outside used and free.",
      offsetof(vram__metrics_device, driver_reserved_bytes) },
    { "vram_device_capacity_bytes",
      "Memory vram admits work into at most: total less driver reserved less the margin.",
      offsetof(vram__metrics_device, capacity_bytes) },
    { "vram_device_safe_available_bytes",
      "Memory vram would admit work into: free minus the margin and unused leases.",
      offsetof(vram__metrics_device, safe_available_bytes) },
};

void vram__wait_histogram_add(vram__wait_histogram *h, double seconds)
{
    if (!(seconds > 0))
        seconds = 0;
    size_t i = 0;
    while (i < VRAM__WAIT_BUCKETS && seconds > wait_bounds[i])
        i++;
    h->counts[i]++;
    h->sum_seconds += seconds;
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label(vram__buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            vram__buf_puts(b, "\\\\");
        else if (*s == '"')
            vram__buf_puts(b, "\\\"");
        else if (*s == '\n')
            vram__buf_puts(b, "\\n");
        else
            vram__buf_put(b, s, 1);
    }
}

static void family(vram__buf *b, const char *name, const char *type, const char *help)
{
    vram__buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void device_labels(vram__buf *b, const vram__metrics_device *d)
{
    vram__buf_printf(b, "{device=\"%u\",name=\"", d->index);
    put_label(b, d->name);
    vram__buf_puts(b, "\",uuid=\"");
    put_label(b, d->uuid);
    vram__buf_puts(b, "\"}");
}

static void write_devices(vram__buf *b, const vram__metrics *m)
{
    unsigned n = m->ndevices < VRAM__METRICS_MAX_DEVICES ? m->ndevices
                                                         : VRAM__METRICS_MAX_DEVICES;
    for (size_t g = 0; g < VRAM__ARRAY_LEN(device_gauges); g++) {
        family(b, device_gauges[g].name, "gauge", device_gauges[g].help);
        for (unsigned i = 0; i < n; i++) {
            const vram__metrics_device *d = &m->devices[i];
            uint64_t v;
            memcpy(&v, (const char *)d + device_gauges[g].offset, sizeof(v));
            vram__buf_puts(b, device_gauges[g].name);
            device_labels(b, d);
            vram__buf_printf(b, " %llu\n", (unsigned long long)v);
        }
    }
}

static void write_jobs(vram__buf *b, const vram__metrics *m)
{
    family(b, "vram_jobs", "gauge", "Jobs in each state (finished ones while the daemon keeps them).");
    for (int s = 0; s < VRAM__JOB_STATE_COUNT; s++)
        vram__buf_printf(b, "vram_jobs{state=\"%s\"} %llu\n", vram__job_state_name(s),
                         (unsigned long long)m->jobs[s]);
}

static void write_wait(vram__buf *b, const vram__wait_histogram *h)
{
    family(b, "vram_admission_wait_seconds", "histogram",
           "Time from a job's submission to its admission onto a device.");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < VRAM__WAIT_BUCKETS; i++) {
        cumulative += h->counts[i];
        vram__buf_printf(b, "vram_admission_wait_seconds_bucket{le=\"%g\"} %llu\n",
                         wait_bounds[i], (unsigned long long)cumulative);
    }
    cumulative += h->counts[VRAM__WAIT_BUCKETS];
    vram__buf_printf(b, "vram_admission_wait_seconds_bucket{le=\"+Inf\"} %llu\n",
                     (unsigned long long)cumulative);
    vram__buf_printf(b, "vram_admission_wait_seconds_sum %.15g\n", h->sum_seconds);
    vram__buf_printf(b, "vram_admission_wait_seconds_count %llu\n",
                     (unsigned long long)cumulative);
}

int vram__metrics_text(const vram__metrics *m, char **text)
{
    if (!m || !text)
        return vram__fail(VRAM_EINVAL, "vram__metrics_text: NULL argument");
    vram__buf b;
    vram__buf_init(&b);
    family(&b, "vram_build_info", "gauge", "The vram version serving these metrics.");
    vram__buf_printf(&b, "vram_build_info{version=\"%s\"} 1\n", vram_version());
    family(&b, "vram_devices_simulated", "gauge",
           "1 when the devices are simulated (no NVIDIA driver), 0 for real cards.");
    vram__buf_printf(&b, "vram_devices_simulated %d\n", m->simulated ? 1 : 0);
    write_devices(&b, m);
    write_jobs(&b, m);
    write_wait(&b, &m->admission_wait);
    family(&b, "vram_oom_retries_total", "counter",
           "Jobs retried on a cheaper rung after running out of device memory.");
    vram__buf_printf(&b, "vram_oom_retries_total %llu\n", (unsigned long long)m->oom_retries_total);
    family(&b, "vram_leases", "gauge", "Leases held now (jobs, tasks and clients).");
    vram__buf_printf(&b, "vram_leases %llu\n", (unsigned long long)m->leases);
    family(&b, "vram_jobs_shim_used_bytes", "gauge",
           "Device memory of the running jobs as the enforcement shim counts it.");
    vram__buf_printf(&b, "vram_jobs_shim_used_bytes %llu\n", (unsigned long long)m->shim_used_bytes);
    family(&b, "vram_jobs_over_budget_bytes", "gauge",
           "How far --enforce soft let jobs past their budgets (the most each went, summed over kept jobs).");
    vram__buf_printf(&b, "vram_jobs_over_budget_bytes %llu\n", (unsigned long long)m->over_bytes);
    int rc;
    *text = vram__buf_take(&b, &rc);
    return rc;
}
