/*
 * tests/daemon/test_metrics.c - /metrics text: families, labels, the
 * admission-wait histogram and its buckets.
 */
#include "daemon/http.h"
#include "test.h"

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
        "vram_device_safe_available_bytes gauge", "vram_jobs gauge",
        "vram_admission_wait_seconds histogram", "vram_oom_retries_total counter",
        "vram_leases gauge", "vram_jobs_shim_used_bytes gauge", "vram_jobs_over_budget_bytes gauge",
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
    m.devices[1] = (vram__metrics_device){ .index = 3, .name = "odd \"name\"\\\nx", .uuid = "u" };
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
    CHECK_EQ(count_lines(text, "vram_device_"), 16);
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
