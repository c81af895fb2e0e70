/* SPDX-License-Identifier: MIT */
/*
 * daemon/metrics.c - /metrics: the daemon's numbers as Prometheus text.
 *
 * Owns the metric names, their help, the label escaping, the histograms'
 * buckets (admission wait, job duration), the outcome labels and the
 * process_* family read from /proc (exposition format 0.0.4; `promtool
 * check metrics` accepts the result, as tests/daemon/test_promtool.sh
 * shows).  What the numbers are is the provider's business.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

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
    { "vram_device_lost",
      "1 when the GPU is lost (NVML said so, or failed queries in a row): capacity 0, it takes no work.",
      offsetof(vram__metrics_device, lost) },
};

static const double duration_bounds[VRAM__DURATION_BUCKETS] = {
#define VRAM__DURATION_BUCKET_BOUND(le) le,
    VRAM__DURATION_BUCKET_LIST(VRAM__DURATION_BUCKET_BOUND)
#undef VRAM__DURATION_BUCKET_BOUND
};

static const char *const outcome_names[VRAM__OUTCOMES] = {
#define VRAM__OUTCOME_NAME(id, name) name,
    VRAM__OUTCOME_LIST(VRAM__OUTCOME_NAME)
#undef VRAM__OUTCOME_NAME
};

int vram__outcome_index(const char *outcome)
{
    for (int i = 0; outcome && i < VRAM__OUTCOME_OTHER; i++)
        if (!strcmp(outcome, outcome_names[i]))
            return i;
    return VRAM__OUTCOME_OTHER;
}

/* One observation into per-bucket counts[nb + 1] (the last: over every bound). */
static void histogram_add(const double *bounds, size_t nb, uint64_t *counts, double *sum,
                          double seconds)
{
    if (!(seconds > 0))
        seconds = 0;
    size_t i = 0;
    while (i < nb && seconds > bounds[i])
        i++;
    counts[i]++;
    *sum += seconds;
}

void vram__wait_histogram_add(vram__wait_histogram *h, double seconds)
{
    histogram_add(wait_bounds, VRAM__WAIT_BUCKETS, h->counts, &h->sum_seconds, seconds);
}

void vram__duration_histogram_add(vram__duration_histogram *h, double seconds)
{
    histogram_add(duration_bounds, VRAM__DURATION_BUCKETS, h->counts, &h->sum_seconds, seconds);
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

static void write_histogram(vram__buf *b, const char *name, const char *help, const double *bounds,
                            size_t nb, const uint64_t *counts, double sum)
{
    family(b, name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < nb; i++) {
        cumulative += counts[i];
        vram__buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
                         (unsigned long long)cumulative);
    }
    cumulative += counts[nb];
    vram__buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cumulative);
    vram__buf_printf(b, "%s_sum %.15g\n", name, sum);
    vram__buf_printf(b, "%s_count %llu\n", name, (unsigned long long)cumulative);
}

static void write_finished(vram__buf *b, const vram__metrics *m)
{
    family(b, "vram_jobs_finished_total", "counter",
           "Jobs that ended since the daemon started, by outcome.");
    for (int i = 0; i < VRAM__OUTCOMES; i++)
        vram__buf_printf(b, "vram_jobs_finished_total{outcome=\"%s\"} %llu\n", outcome_names[i],
                         (unsigned long long)m->finished_total[i]);
    write_histogram(b, "vram_job_duration_seconds",
                    "Time from a job's start to its end, for the jobs that ran, since the daemon started.",
                    duration_bounds, VRAM__DURATION_BUCKETS, m->job_duration.counts,
                    m->job_duration.sum_seconds);
}

/* The standard process_* family of the process serving /metrics, from
 * /proc (a value that cannot be read is left out, never made up). */
static void write_process(vram__buf *b)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        family(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        vram__buf_printf(b, "process_cpu_seconds_total %.6f\n", cpu);
    }
    long page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long vm_pages, rss_pages;
    if (f && fscanf(f, "%llu %llu", &vm_pages, &rss_pages) == 2 && page > 0) {
        family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        vram__buf_printf(b, "process_virtual_memory_bytes %llu\n", vm_pages * (unsigned long long)page);
        family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        vram__buf_printf(b, "process_resident_memory_bytes %llu\n", rss_pages * (unsigned long long)page);
    }
    if (f)
        fclose(f);
    DIR *dir = opendir("/proc/self/fd");
    if (dir) {
        unsigned long long n = 0;
        for (struct dirent *e; (e = readdir(dir));)
            if (e->d_name[0] != '.')
                n++;
        closedir(dir);
        family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        vram__buf_printf(b, "process_open_fds %llu\n", n > 0 ? n - 1 : 0); /* less opendir's own */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        vram__buf_printf(b, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
    /* Start: field 22 of /proc/self/stat (ticks after boot) plus btime. */
    double start = 0;
    char stat[1024];
    f = fopen("/proc/self/stat", "r");
    size_t len = f ? fread(stat, 1, sizeof(stat) - 1, f) : 0;
    if (f)
        fclose(f);
    stat[len] = '\0';
    const char *p = strrchr(stat, ')');     /* the name may hold spaces */
    unsigned long long ticks = 0, btime = 0;
    if (p) {
        int field = 2;
        for (; *p && field < 22; p++)
            if (*p == ' ')
                field++;
        ticks = strtoull(p, NULL, 10);
    }
    f = fopen("/proc/stat", "r");
    char line[256];
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    if (f)
        fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (ticks && btime && hz > 0)
        start = (double)btime + (double)ticks / (double)hz;
    if (start > 0) {
        family(b, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.");
        vram__buf_printf(b, "process_start_time_seconds %.2f\n", start);
    }
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
    write_histogram(&b, "vram_admission_wait_seconds",
                    "Time from a job's submission to its admission onto a device.", wait_bounds,
                    VRAM__WAIT_BUCKETS, m->admission_wait.counts, m->admission_wait.sum_seconds);
    write_finished(&b, m);
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
    write_process(&b);
    int rc;
    *text = vram__buf_take(&b, &rc);
    return rc;
}
