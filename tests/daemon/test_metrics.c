/* SPDX-License-Identifier: MIT */
/*
 * tests/daemon/test_metrics.c - /metrics text: families, labels, the
 * admission-wait and job-duration histograms and their buckets, the
 * finished-jobs counter by outcome, and the process_* family.
 */
#include "daemon/http.h"
#include "test.h"

#include <time.h>

/* How many lines of text start with prefix. */
static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, prefix, len))
            n++;
    return n;
}

TEST(every_family_has_help_and_type)
{
    vram__metrics m = { 0 };
    char *text;
    CHECK_OK(vram__metrics_text(&m, &text));
    static const char *const families[] = {
        "vram_build_info gauge", "vram_devices_simulated gauge", "vram_device_total_bytes gauge",
        "vram_device_used_bytes gauge", "vram_device_free_bytes gauge",
        "vram_device_leased_bytes gauge", "vram_device_others_bytes gauge",
        "vram_device_driver_reserved_bytes gauge", "vram_device_capacity_bytes gauge",
        "vram_device_safe_available_bytes gauge", "vram_device_lost gauge", "vram_jobs gauge",
        "vram_admission_wait_seconds histogram", "vram_oom_retries_total counter",
        "vram_leases gauge", "vram_jobs_shim_used_bytes gauge", "vram_jobs_over_budget_bytes gauge",
        "vram_jobs_finished_total counter", "vram_job_duration_seconds histogram",
        "process_cpu_seconds_total counter", "process_virtual_memory_bytes gauge",
        "process_resident_memory_bytes gauge", "process_open_fds gauge", "process_max_fds gauge",
        "process_start_time_seconds gauge",
    };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(families); i++) {
        char line[128], name[64];
        snprintf(line, sizeof(line), "# TYPE %s\n", families[i]);
        CHECK_CONTAINS(text, line);
        sscanf(families[i], "%63s", name);
        snprintf(line, sizeof(line), "# HELP %s ", name);
        CHECK_EQ(count_lines(text, line), 1);
    }
    CHECK_EQ(count_lines(text, "# TYPE "), (int)VRAM__ARRAY_LEN(families));
    CHECK_EQ(count_lines(text, "vram_jobs{state="), VRAM__JOB_STATE_COUNT);
    CHECK_CONTAINS(text, "vram_jobs{state=\"queued\"} 0\n");
    CHECK_CONTAINS(text, "vram_jobs{state=\"canceled\"} 0\n");
    CHECK_EQ(count_lines(text, "vram_device_total_bytes{"), 0);
    CHECK(text[strlen(text) - 1] == '\n');
    free(text);
}

TEST(devices_are_labelled_and_escaped)
{
    vram__metrics m = { 0 };
    m.ndevices = 2;
    m.devices[0] = (vram__metrics_device){ .index = 0, .name = "Tesla T4", .uuid = "GPU-aa",
                                           .total_bytes = 16106127360ull, .used_bytes = 1,
                                           .free_bytes = 2, .leased_bytes = 3,
                                           .others_bytes = 4, .safe_available_bytes = 5,
                                           .driver_reserved_bytes = 6, .capacity_bytes = 7 };
    m.devices[1] = (vram__metrics_device){ .index = 3, .name = "odd \"name\"\\\nx", .uuid = "u",
                                           .lost = 1 };
    char *text;
    CHECK_OK(vram__metrics_text(&m, &text));
    CHECK_CONTAINS(text, "vram_device_total_bytes{device=\"0\",name=\"Tesla T4\",uuid=\"GPU-aa\"} "
                         "16106127360\n");
    CHECK_CONTAINS(text, "vram_device_used_bytes{device=\"0\",name=\"Tesla T4\",uuid=\"GPU-aa\"} 1\n");
    CHECK_CONTAINS(text, "vram_device_free_bytes{device=\"0\",name=\"Tesla T4\",uuid=\"GPU-aa\"} 2\n");
    CHECK_CONTAINS(text, "vram_device_leased_bytes{device=\"0\",name=\"Tesla T4\",uuid=\"GPU-aa\"} 3\n");
    CHECK_CONTAINS(text, "vram_device_others_bytes{device=\"0\",name=\"Tesla T4\",uuid=\"GPU-aa\"} 4\n");
    CHECK_CONTAINS(text, "vram_device_safe_available_bytes{device=\"0\",name=\"Tesla T4\","
                         "uuid=\"GPU-aa\"} 5\n");
    CHECK_CONTAINS(text, "vram_device_total_bytes{device=\"3\",name=\"odd \\\"name\\\"\\\\\\nx\","
                         "uuid=\"u\"} 0\n");
    CHECK_CONTAINS(text, "vram_device_driver_reserved_bytes{device=\"0\",name=\"Tesla T4\","
                         "uuid=\"GPU-aa\"} 6\n");
    CHECK_CONTAINS(text, "vram_device_capacity_bytes{device=\"0\",name=\"Tesla T4\","
                         "uuid=\"GPU-aa\"} 7\n");
    CHECK_CONTAINS(text, "vram_device_lost{device=\"0\",name=\"Tesla T4\",uuid=\"GPU-aa\"} 0\n");
    CHECK_CONTAINS(text, "vram_device_lost{device=\"3\",name=\"odd \\\"name\\\"\\\\\\nx\","
                         "uuid=\"u\"} 1\n");
    CHECK_EQ(count_lines(text, "vram_device_"), 18);
    free(text);
}

TEST(histogram_buckets_are_cumulative)
{
    vram__metrics m = { 0 };
    double waits[] = { -1, 0, 0.01, 0.05, 0.1, 2, 59, 60.5, 7200 };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(waits); i++)
        vram__wait_histogram_add(&m.admission_wait, waits[i]);
    CHECK_EQ(m.admission_wait.counts[0], 3);          /* -1 (as 0), 0, 0.01: le is inclusive */
    CHECK_EQ(m.admission_wait.counts[VRAM__WAIT_BUCKETS], 1);
    char *text;
    CHECK_OK(vram__metrics_text(&m, &text));
    CHECK_CONTAINS(text, "vram_admission_wait_seconds_bucket{le=\"0.01\"} 3\n");
    CHECK_CONTAINS(text, "vram_admission_wait_seconds_bucket{le=\"0.1\"} 5\n");
    CHECK_CONTAINS(text, "vram_admission_wait_seconds_bucket{le=\"5\"} 6\n");
    CHECK_CONTAINS(text, "vram_admission_wait_seconds_bucket{le=\"60\"} 7\n");
    CHECK_CONTAINS(text, "vram_admission_wait_seconds_bucket{le=\"3600\"} 8\n");
    CHECK_CONTAINS(text, "vram_admission_wait_seconds_bucket{le=\"+Inf\"} 9\n");
    CHECK_CONTAINS(text, "vram_admission_wait_seconds_count 9\n");
    CHECK_CONTAINS(text, "vram_admission_wait_seconds_sum 7321.66\n");
    CHECK_EQ(count_lines(text, "vram_admission_wait_seconds_bucket"), VRAM__WAIT_BUCKETS + 1);
    free(text);
}

TEST(counters_and_state_names)
{
    vram__metrics m = { 0 };
    m.simulated = 1;
    m.oom_retries_total = 7;
    m.leases = 2;
    m.jobs[VRAM__JOB_SUCCEEDED] = 11;
    char *text;
    CHECK_OK(vram__metrics_text(&m, &text));
    CHECK_CONTAINS(text, "vram_oom_retries_total 7\n");
    CHECK_CONTAINS(text, "vram_leases 2\n");
    CHECK_CONTAINS(text, "vram_devices_simulated 1\n");
    CHECK_CONTAINS(text, "vram_jobs{state=\"succeeded\"} 11\n");
    char want[64];
    snprintf(want, sizeof(want), "vram_build_info{version=\"%s\"} 1\n", vram_version());
    CHECK_CONTAINS(text, want);
    free(text);
    CHECK_STR_EQ(vram__job_state_name(VRAM__JOB_QUEUED), "queued");
    CHECK_STR_EQ(vram__job_state_name(VRAM__JOB_CANCELED), "canceled");
    CHECK_STR_EQ(vram__job_state_name(-1), "?");
    CHECK_STR_EQ(vram__job_state_name(VRAM__JOB_STATE_COUNT), "?");
    CHECK_ERR(vram__metrics_text(NULL, &text), VRAM_EINVAL);
}

TEST(finished_jobs_count_by_outcome_and_duration)
{
    vram__metrics m = { 0 };
    m.finished_total[vram__outcome_index("ok")] = 5;
    m.finished_total[vram__outcome_index("oom")] = 2;
    m.finished_total[vram__outcome_index("something new")]++;
    CHECK_EQ(vram__outcome_index(NULL), VRAM__OUTCOME_OTHER);
    CHECK_EQ(vram__outcome_index("not-started"), VRAM__OUTCOME_NOT_STARTED);
    double runs[] = { 0.5, 1, 42, 3600.5, 90000 };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(runs); i++)
        vram__duration_histogram_add(&m.job_duration, runs[i]);
    char *text;
    CHECK_OK(vram__metrics_text(&m, &text));
    CHECK_CONTAINS(text, "vram_jobs_finished_total{outcome=\"ok\"} 5\n");
    CHECK_CONTAINS(text, "vram_jobs_finished_total{outcome=\"oom\"} 2\n");
    CHECK_CONTAINS(text, "vram_jobs_finished_total{outcome=\"other\"} 1\n");
    CHECK_CONTAINS(text, "vram_jobs_finished_total{outcome=\"canceled\"} 0\n");
    CHECK_EQ(count_lines(text, "vram_jobs_finished_total{"), VRAM__OUTCOMES);
    CHECK_CONTAINS(text, "vram_job_duration_seconds_bucket{le=\"1\"} 2\n");
    CHECK_CONTAINS(text, "vram_job_duration_seconds_bucket{le=\"60\"} 3\n");
    CHECK_CONTAINS(text, "vram_job_duration_seconds_bucket{le=\"3600\"} 3\n");
    CHECK_CONTAINS(text, "vram_job_duration_seconds_bucket{le=\"7200\"} 4\n");
    CHECK_CONTAINS(text, "vram_job_duration_seconds_bucket{le=\"43200\"} 4\n");
    CHECK_CONTAINS(text, "vram_job_duration_seconds_bucket{le=\"+Inf\"} 5\n");
    CHECK_CONTAINS(text, "vram_job_duration_seconds_count 5\n");
    CHECK_CONTAINS(text, "vram_job_duration_seconds_sum 93644\n");
    free(text);
}

/* The value of the first line "NAME VALUE" in text, or -1. */
static double value_of(const char *text, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, name, len) && p[len] == ' ')
            return strtod(p + len + 1, NULL);
    return -1;
}

TEST(process_metrics_describe_this_process)
{
    vram__metrics m = { 0 };
    char *text;
    /* Some CPU time to count, and three more open descriptors. */
    volatile double x = 0;
    for (int i = 0; i < 2000000; i++)
        x += i;
    CHECK(x > 0);
    char *before_text;
    CHECK_OK(vram__metrics_text(&m, &before_text));
    FILE *f[3] = { fopen("/dev/null", "r"), fopen("/dev/null", "r"), fopen("/dev/null", "r") };
    CHECK_OK(vram__metrics_text(&m, &text));
    CHECK(value_of(text, "process_cpu_seconds_total") > 0);
    CHECK(value_of(text, "process_resident_memory_bytes") > 1024 * 1024);
    CHECK(value_of(text, "process_virtual_memory_bytes") >= value_of(text, "process_resident_memory_bytes"));
    CHECK_EQ(value_of(text, "process_open_fds"), value_of(before_text, "process_open_fds") + 3);
    double start = value_of(text, "process_start_time_seconds");
    double now = (double)time(NULL);
    CHECK(start > now - 600 && start <= now + 1);
    for (int i = 0; i < 3; i++)
        fclose(f[i]);
    free(before_text);
    free(text);
}
