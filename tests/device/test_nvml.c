/* SPDX-License-Identifier: MIT */
/*
 * tests/device/test_nvml.c - the NVML backend through its real dlopen path,
 * against the stub libraries the build makes (tests/stubs/nvml_stub.c).
 *
 * The binary re-executes itself with LD_LIBRARY_PATH naming the stub's
 * folder, so that dlopen("libnvidia-ml.so.1") - the very call vram makes on
 * a real machine - finds the stub.
 */
#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include "test.h"

#define MiB (1024ull * 1024)

static char build_dir[PATH_MAX];

static vram_options *nvml_options(const char *script, const char *library)
{
    if (script)
        setenv("VRAM_STUB_NVML", script, 1);
    else
        unsetenv("VRAM_STUB_NVML");
    vram_options *o = NULL;
    vram_options_new(&o);
    vram_options_set(o, "backend", "nvml", NULL);
    if (library)
        vram_options_set(o, "nvml-library", library, NULL);
    return o;
}

/* Opens a context on the stub with `script`; NULL on failure. */
static vram_ctx *open_stub(const char *script, const char *library, int *rc_out)
{
    vram_options *o = nvml_options(script, library);
    vram_ctx *ctx = NULL;
    int rc = vram_ctx_open(&ctx, o);
    vram_options_free(o);
    if (rc_out)
        *rc_out = rc;
    return rc ? NULL : ctx;
}

static int stub_calls(const char *name)
{
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (!h)
        return -1;
    int (*fn)(const char *) = (int (*)(const char *))dlsym(h, "vram_stub_calls");
    int n = fn ? fn(name) : -1;
    dlclose(h);
    return n;
}

static void stub_path(char *buf, size_t cap, const char *folder)
{
    snprintf(buf, cap, "%s/%s/libnvidia-ml.so.1", build_dir, folder);
}

TEST(default_library_name_is_found)
{
    vram_ctx *ctx = open_stub(NULL, NULL, NULL);
    CHECK_MSG(ctx, "open: %s", vram_last_error());
    CHECK_STR_EQ(vram_ctx_backend(ctx), "nvml");
    CHECK(!vram_ctx_is_simulated(ctx));
    CHECK_STR_EQ(vram_ctx_notice(ctx), "");
    vram_device_info in;
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK_STR_EQ(in.name, "Stub GPU");
    CHECK_STR_EQ(in.uuid, "GPU-stub-0000");
    CHECK_EQ_U64(in.total_bytes, 16384 * MiB);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(memory_v2_with_versioned_struct_reports_reserved_apart)
{
    vram_ctx *ctx = open_stub("devices=H100:81559:2048:600", NULL, NULL);
    CHECK_MSG(ctx, "open: %s", vram_last_error());
    vram_device_info in;
    CHECK_OK(vram_device_query(ctx, 0, &in));
    /* The stub answers ARGUMENT_VERSION_MISMATCH unless version is
     * sizeof | 2 << 24, so v2 success proves the constant is right. */
    CHECK_EQ(in.memory_api, 2);
    CHECK(in.have & VRAM_HAVE_RESERVED);
    CHECK_EQ_U64(in.used_bytes, 2048 * MiB);
    CHECK_EQ_U64(in.driver_reserved_bytes, 600 * MiB);
    CHECK_EQ_U64(in.free_bytes, (81559 - 2048 - 600) * MiB);
    CHECK(stub_calls("nvmlDeviceGetMemoryInfo_v2") >= 1);
    CHECK_EQ(stub_calls("nvmlDeviceGetMemoryInfo"), 0);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(h200_of_143771_mib)
{
    vram_ctx *ctx = open_stub("devices=NVIDIA H200:143771:4:512", NULL, NULL);
    CHECK_MSG(ctx, "open: %s", vram_last_error());
    vram_snapshot *s;
    CHECK_OK(vram_snapshot_take(ctx, NULL, &s));
    CHECK_EQ(s->ndevices, 1);
    CHECK_EQ_U64(s->devices[0].info.total_bytes, 143771ull * MiB);
    CHECK_EQ_U64(s->devices[0].margin_bytes, 143771ull * MiB / 10);
    char *json;
    CHECK_OK(vram_snapshot_to_json(s, &json));
    CHECK_CONTAINS(json, "\"total_bytes\":150754820096");
    CHECK_CONTAINS(json, "\"memory_api\":\"nvml_v2\"");
    CHECK_CONTAINS(json, "\"simulated\":false");
    vram_free(json);
    vram_snapshot_free(s);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(refused_v2_falls_back_to_v1_and_says_so)
{
    vram_ctx *ctx = open_stub("v2=refuse;devices=A:8192:1000:200", NULL, NULL);
    CHECK_MSG(ctx, "open: %s", vram_last_error());
    vram_device_info in;
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK_EQ(in.memory_api, 1);
    CHECK(!(in.have & VRAM_HAVE_RESERVED));
    CHECK_EQ_U64(in.used_bytes, 1200 * MiB);    /* v1: reserved counts as used */
    CHECK_OK(vram_device_query(ctx, 0, &in));    /* remembered: v2 not retried */
    CHECK_EQ(stub_calls("nvmlDeviceGetMemoryInfo_v2"), 1);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(old_driver_without_v2_symbols)
{
    char path[PATH_MAX + 64];
    stub_path(path, sizeof(path), "stubs-old");
    vram_ctx *ctx = open_stub("devices=Old:4096:100:0;procs0=321:100", path, NULL);
    CHECK_MSG(ctx, "open %s: %s", path, vram_last_error());
    vram_device_info in;
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK_EQ(in.memory_api, 1);
    vram_proc p[4];
    size_t n;
    CHECK_OK(vram_device_processes(ctx, 0, p, 4, &n));
    CHECK_EQ(n, 1);
    CHECK_EQ(p[0].pid, 321);
    CHECK_EQ_U64(p[0].used_bytes, 100 * MiB);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(process_list_newest_call_and_buffer_too_small)
{
    /* 40 processes, then 100 more arrive between the size call and the
     * next: two "insufficient size" answers before the list fits. */
    char script[4096] = "grow=100;procs0=";
    for (int i = 0; i < 40; i++)
        snprintf(script + strlen(script), sizeof(script) - strlen(script), "%s%d:%d",
                 i ? "," : "", 1000 + i, 10 + i);
    strcat(script, ",5555:na");
    vram_ctx *ctx = open_stub(script, NULL, NULL);
    CHECK_MSG(ctx, "open: %s", vram_last_error());
    vram_snapshot *s;
    CHECK_OK(vram_snapshot_take(ctx, NULL, &s));
    vram_device_snapshot *d = &s->devices[0];
    CHECK_EQ(d->procs_status, 0);
    CHECK_EQ(d->nprocs, 141);
    CHECK_EQ(d->procs[0].pid, 90000);           /* 64 MiB: the largest, listed first */
    CHECK(d->procs[0].used_bytes >= d->procs[1].used_bytes);
    bool saw_na = false;
    for (size_t i = 0; i < d->nprocs; i++)
        if (d->procs[i].pid == 5555)
            saw_na = !(d->procs[i].have & VRAM_HAVE_PROC_MEM);
    CHECK(saw_na);
    CHECK(stub_calls("nvmlDeviceGetComputeRunningProcesses_v3") >= 3);
    CHECK_EQ(stub_calls("nvmlDeviceGetComputeRunningProcesses_v2"), 0);
    vram_snapshot_free(s);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(errors_at_every_call_are_codes_not_crashes)
{
    int rc;
    CHECK(!open_stub("fail_init=9", NULL, &rc));
    CHECK_EQ(rc, VRAM_EDRIVER);
    CHECK_CONTAINS(vram_last_error(), "Driver Not Loaded");
    CHECK(!open_stub("fail_count=15", NULL, &rc));
    CHECK_EQ(rc, VRAM_ELOST);
    CHECK(!open_stub("devices=", NULL, &rc));
    CHECK_EQ(rc, VRAM_ENODEV);
    CHECK_CONTAINS(vram_last_error(), "found no GPU");

    vram_ctx *ctx = open_stub("fail_memory=15", NULL, NULL);
    CHECK(ctx);
    vram_device_info in;
    CHECK_ERR(vram_device_query(ctx, 0, &in), VRAM_ELOST);
    CHECK_CONTAINS(vram_last_error(), "GPU is lost");
    vram_snapshot *s;
    CHECK_OK(vram_snapshot_take(ctx, NULL, &s));   /* the snapshot keeps the device, marked */
    CHECK_EQ(s->devices[0].error, VRAM_ELOST);
    CHECK_CONTAINS(s->devices[0].error_text, "GPU is lost");
    vram_snapshot_free(s);
    CHECK_ERR(vram_device_query(ctx, 7, &in), VRAM_ENODEV);
    CHECK_OK(vram_ctx_close(ctx));

    ctx = open_stub("fail_handle=2", NULL, NULL);
    CHECK(ctx);
    CHECK_ERR(vram_device_query(ctx, 0, &in), VRAM_ENODEV);
    CHECK_OK(vram_ctx_close(ctx));

    ctx = open_stub("fail_procs=4", NULL, NULL);
    CHECK(ctx);
    vram_proc p[2];
    size_t n;
    CHECK_ERR(vram_device_processes(ctx, 0, p, 2, &n), VRAM_EPERM);
    CHECK_OK(vram_snapshot_take(ctx, NULL, &s));
    CHECK_EQ(s->devices[0].error, 0);
    CHECK_EQ(s->devices[0].procs_status, VRAM_EPERM);
    vram_snapshot_free(s);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(missing_or_broken_library)
{
    int rc;
    CHECK(!open_stub(NULL, "/nonexistent/libnvidia-ml.so.1", &rc));
    CHECK_EQ(rc, VRAM_ENOLIB);
    CHECK_CONTAINS(vram_last_error(), "no NVIDIA driver");

    char path[PATH_MAX + 64];
    stub_path(path, sizeof(path), "stubs-broken");
    CHECK(!open_stub(NULL, path, &rc));
    CHECK_EQ(rc, VRAM_ENOLIB);
    CHECK_CONTAINS(vram_last_error(), "nvmlDeviceGetCount");
}

TEST(auto_takes_nvml_when_it_finds_a_gpu_else_sim_with_a_notice)
{
    vram_options *o = nvml_options(NULL, NULL);
    vram_options_set(o, "backend", "auto", NULL);
    vram_ctx *ctx;
    CHECK_OK(vram_ctx_open(&ctx, o));
    CHECK_STR_EQ(vram_ctx_backend(ctx), "nvml");
    CHECK_OK(vram_ctx_close(ctx));

    setenv("VRAM_STUB_NVML", "devices=", 1);    /* NVML loads, no GPU */
    CHECK_OK(vram_ctx_open(&ctx, o));
    CHECK_STR_EQ(vram_ctx_backend(ctx), "sim");
    CHECK(vram_ctx_is_simulated(ctx));
    CHECK_CONTAINS(vram_ctx_notice(ctx), "found no GPU");
    CHECK_OK(vram_ctx_close(ctx));
    vram_options_free(o);
}

TEST(library_exports_only_vram_symbols)
{
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof(cmd), "nm -D --defined-only %s/lib/libvram.so | awk '{print $3}' | "
             "grep -v '^vram_' | grep -v '^_' ", build_dir);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    char line[256];
    bool other = fgets(line, sizeof(line), p) != NULL;
    pclose(p);
    CHECK_MSG(!other, "libvram.so exports '%s'", line);
}

/* ---- devices as CUDA sees them ---------------------------------------------- */

static void clear_visible(void)
{
    unsetenv("CUDA_VISIBLE_DEVICES");
    unsetenv("SLURM_STEP_GPUS");
    unsetenv("SLURM_JOB_GPUS");
}

/* The UUIDs of the context's devices, joined by spaces. */
static void uuids(vram_ctx *ctx, char *buf, size_t cap)
{
    unsigned n = 0;
    buf[0] = '\0';
    vram_device_count(ctx, &n);
    for (unsigned i = 0; i < n; i++) {
        vram_device_info in;
        memset(&in, 0, sizeof(in));
        vram_device_query(ctx, i, &in);
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", i ? " " : "", in.uuid);
    }
}

TEST(mig_card_becomes_its_instances_with_their_own_memory)
{
    clear_visible();
    /* An H100 split 3g.40gb + 2g.20gb; its parent refuses an unprivileged user. */
    vram_ctx *ctx = open_stub("devices=H100:81559:0:0|L4:23034:0:300;"
                              "mig0=40192:1024:0|19968:0:0;mig_noperm=1", NULL, NULL);
    CHECK_MSG(ctx, "open: %s", vram_last_error());
    unsigned n;
    CHECK_OK(vram_device_count(ctx, &n));
    CHECK_EQ(n, 3);
    char u[512];
    uuids(ctx, u, sizeof(u));
    CHECK_STR_EQ(u, "MIG-stub-0000-0 MIG-stub-0000-1 GPU-stub-0001");
    vram_device_info in;
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK(in.have & VRAM_HAVE_MIG);
    CHECK_EQ_U64(in.total_bytes, 40192 * MiB);
    CHECK_EQ_U64(in.used_bytes, 1024 * MiB);
    CHECK_OK(vram_device_query(ctx, 1, &in));
    CHECK_EQ_U64(in.total_bytes, 19968 * MiB);
    CHECK_OK(vram_device_query(ctx, 2, &in));
    CHECK(!(in.have & VRAM_HAVE_MIG));
    CHECK_EQ_U64(in.total_bytes, 23034 * MiB);
    vram_snapshot *s;
    CHECK_OK(vram_snapshot_take(ctx, NULL, &s));
    CHECK_EQ(s->devices[0].error, 0);
    CHECK_EQ(s->devices[0].procs_status, 0);
    vram_snapshot_free(s);
    /* Admission is per instance, each within its own memory (less the
     * margin), never the whole card's 81559 MiB. */
    vram_ledger *l;
    CHECK_OK(vram_ledger_open(ctx, NULL, &l));
    vram_ledger_device ld0, ld1;
    CHECK_OK(vram_ledger_device_info(l, 0, &ld0));
    CHECK_OK(vram_ledger_device_info(l, 1, &ld1));
    CHECK(ld0.capacity_bytes > 19968 * MiB && ld0.capacity_bytes < 40192 * MiB);
    CHECK(ld1.capacity_bytes > 0 && ld1.capacity_bytes < 19968 * MiB);
    vram_lease_request rq = { .bytes = 24000 * MiB, .device = 1, .wait_ms = 0 };
    vram_lease_info li;
    CHECK(vram_lease_acquire(l, &rq, &li) != 0);    /* more than the 2g instance has */
    rq.device = 0;
    CHECK_OK(vram_lease_acquire(l, &rq, &li));
    CHECK_OK(vram_lease_release(l, li.id));
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));

    /* MIG on and no instance made yet: nothing CUDA can use. */
    int rc;
    CHECK(!open_stub("devices=H100:81559:0:0;mig0=", NULL, &rc));
    CHECK_EQ(rc, VRAM_ENODEV);
    CHECK_CONTAINS(vram_last_error(), "MIG");
}

TEST(visible_devices_by_index_uuid_prefix_mig_and_slurm)
{
    const char *three = "devices=A:1000|B:2000|C:3000;mig2=1500:0:0|1500:0:0";
    char u[512];
    clear_visible();
    setenv("CUDA_VISIBLE_DEVICES", "1,0", 1);
    vram_ctx *ctx = open_stub(three, NULL, NULL);
    CHECK_MSG(ctx, "open: %s", vram_last_error());
    uuids(ctx, u, sizeof(u));
    CHECK_STR_EQ(u, "GPU-stub-0001 GPU-stub-0000");  /* CUDA's order: as listed */
    vram_ctx_close(ctx);

    setenv("CUDA_VISIBLE_DEVICES", "MIG-stub-0002-1,GPU-stub-0001", 1);
    ctx = open_stub(three, NULL, NULL);
    CHECK(ctx);
    uuids(ctx, u, sizeof(u));
    CHECK_STR_EQ(u, "MIG-stub-0002-1 GPU-stub-0001");
    vram_ctx_close(ctx);

    /* A unique prefix is enough; CUDA stops at the first entry naming nothing. */
    setenv("CUDA_VISIBLE_DEVICES", "GPU-stub-0000,7,1", 1);
    ctx = open_stub(three, NULL, NULL);
    CHECK(ctx);
    uuids(ctx, u, sizeof(u));
    CHECK_STR_EQ(u, "GPU-stub-0000");
    vram_ctx_close(ctx);

    int rc;
    setenv("CUDA_VISIBLE_DEVICES", "", 1);
    CHECK(!open_stub(three, NULL, &rc));
    CHECK_EQ(rc, VRAM_ENODEV);
    CHECK_CONTAINS(vram_last_error(), "CUDA_VISIBLE_DEVICES=''");
    setenv("CUDA_VISIBLE_DEVICES", "GPU-stub", 1);     /* ambiguous prefix */
    CHECK(!open_stub(three, NULL, &rc));
    CHECK_EQ(rc, VRAM_ENODEV);

    clear_visible();
    setenv("SLURM_JOB_GPUS", "1", 1);
    ctx = open_stub(three, NULL, NULL);
    CHECK(ctx);
    uuids(ctx, u, sizeof(u));
    CHECK_STR_EQ(u, "GPU-stub-0001");
    vram_ctx_close(ctx);
    /* Slurm's ids are /dev/nvidiaN numbers: where the device files do not
     * follow NVML's (PCI) order, the GPU is the one whose file it is. */
    setenv("SLURM_JOB_GPUS", "1,0", 1);
    ctx = open_stub("devices=A:1000|B:2000;minors=1,0", NULL, NULL);
    CHECK(ctx);
    uuids(ctx, u, sizeof(u));
    CHECK_STR_EQ(u, "GPU-stub-0000 GPU-stub-0001");
    vram_ctx_close(ctx);
    clear_visible();
    /* Each device says its file's number, which Slurm's plugin maps its ids
     * to vramd's devices with; a bad index is refused. */
    ctx = open_stub("devices=A:1000|B:2000;minors=1,0", NULL, NULL);
    CHECK(ctx);
    unsigned minor = 99;
    CHECK_OK(vram_device_minor(ctx, 0, &minor));
    CHECK_EQ(minor, 1);
    CHECK_OK(vram_device_minor(ctx, 1, &minor));
    CHECK_EQ(minor, 0);
    CHECK_ERR(vram_device_minor(ctx, 2, &minor), VRAM_ENODEV);
    CHECK_ERR(vram_device_minor(ctx, 0, NULL), VRAM_EINVAL);
    vram_ctx_close(ctx);
    /* CUDA_VISIBLE_DEVICES counts CUDA's (bus) order, not device files. */
    setenv("CUDA_VISIBLE_DEVICES", "1", 1);
    ctx = open_stub("devices=A:1000|B:2000;minors=1,0", NULL, NULL);
    CHECK(ctx);
    uuids(ctx, u, sizeof(u));
    CHECK_STR_EQ(u, "GPU-stub-0001");
    vram_ctx_close(ctx);
    clear_visible();
}

TEST(capacity_is_total_less_driver_reserved_less_margin_everywhere)
{
    clear_visible();
    /* 16384 MiB card, 1024 used, 512 reserved by the driver; margin 1 GiB. */
    vram_options *o = nvml_options("devices=T:16384:1024:512", NULL);
    vram_options_set(o, "margin", "1GiB", NULL);
    vram_ctx *ctx;
    CHECK_OK(vram_ctx_open(&ctx, o));
    vram_options_free(o);
    vram_snapshot *s;
    CHECK_OK(vram_snapshot_take(ctx, NULL, &s));
    CHECK_EQ_U64(s->devices[0].capacity_bytes, (16384 - 512 - 1024) * MiB);
    char *json;
    CHECK_OK(vram_snapshot_to_json(s, &json));
    char want[64];
    snprintf(want, sizeof(want), "\"capacity_bytes\":%llu", (unsigned long long)((16384 - 512 - 1024) * MiB));
    CHECK_CONTAINS(json, want);
    vram_free(json);
    vram_snapshot_free(s);
    vram_ledger *l;
    CHECK_OK(vram_ledger_open(ctx, NULL, &l));
    vram_ledger_device ld;
    CHECK_OK(vram_ledger_device_info(l, 0, &ld));
    CHECK_EQ_U64(ld.capacity_bytes, (16384 - 512 - 1024) * MiB);
    /* others is the 1024 used: what admission can still give excludes reserved */
    CHECK_EQ_U64(ld.available_bytes, (16384 - 512 - 1024 - 1024) * MiB);
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(lost_gpu_takes_no_work_and_repeated_errors_mean_lost)
{
    clear_visible();
    vram_ctx *ctx = open_stub("devices=A:1000|B:2000;lost=1", NULL, NULL);
    CHECK_MSG(ctx, "open: %s", vram_last_error());
    vram_device_info in;
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK_ERR(vram_device_query(ctx, 1, &in), VRAM_ELOST);
    vram_snapshot *s;
    CHECK_OK(vram_snapshot_take(ctx, NULL, &s));
    CHECK_EQ(s->devices[1].error, VRAM_ELOST);
    char *json;
    CHECK_OK(vram_snapshot_to_json(s, &json));
    CHECK_CONTAINS(json, "\"lost\":true");
    vram_free(json);
    vram_snapshot_free(s);
    vram_ledger *l;
    CHECK_OK(vram_ledger_open(ctx, NULL, &l));
    vram_ledger_device ld;
    CHECK_OK(vram_ledger_device_info(l, 1, &ld));
    CHECK_EQ_U64(ld.capacity_bytes, 0);
    CHECK_OK(vram_ledger_device_info(l, 0, &ld));
    CHECK(ld.capacity_bytes > 0);
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));

    /* An unknown error is transient twice, lost the third time, and stays lost. */
    ctx = open_stub("fail_memory=999", NULL, NULL);
    CHECK(ctx);
    CHECK_ERR(vram_device_query(ctx, 0, &in), VRAM_EDRIVER);
    CHECK_ERR(vram_device_query(ctx, 0, &in), VRAM_EDRIVER);
    CHECK_ERR(vram_device_query(ctx, 0, &in), VRAM_ELOST);
    CHECK_ERR(vram_device_query(ctx, 0, &in), VRAM_ELOST);
    CHECK_CONTAINS(vram_last_error(), "is lost");
    CHECK_OK(vram_ctx_close(ctx));
}

/* A lost GPU does not blind the usage of every other: a job's group is
 * still read on the devices that answer. */
TEST(group_usage_survives_a_lost_device)
{
    clear_visible();
    char script[128];
    snprintf(script, sizeof(script), "devices=A:1000|B:2000;lost=1;procs0=%u:100", (unsigned)getpid());
    vram_ctx *ctx = open_stub(script, NULL, NULL);
    CHECK_MSG(ctx, "open: %s", vram_last_error());
    uint64_t bytes = 0;
    CHECK_OK(vram_process_group_usage(ctx, (uint32_t)getpgrp(), &bytes));
    CHECK_EQ_U64(bytes, 100ull << 20);
    CHECK_OK(vram_ctx_close(ctx));
    /* Every device lost: that is an error. */
    ctx = open_stub("devices=A:1000;lost=0", NULL, NULL);
    CHECK(ctx);
    CHECK_ERR(vram_process_group_usage(ctx, (uint32_t)getpgrp(), &bytes), VRAM_ELOST);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(container_pids_are_marked_and_mps_clients_listed)
{
    clear_visible();
    char script[256];
    /* 4000001: a host pid this namespace lacks; our own pid is an MPS client. */
    snprintf(script, sizeof(script), "procs0=4000001:512;mps0=%u:300", (unsigned)getpid());
    vram_ctx *ctx = open_stub(script, NULL, NULL);
    CHECK(ctx);
    int mps_before = stub_calls("nvmlDeviceGetMPSComputeRunningProcesses_v3");
    vram_proc p[8];
    size_t n;
    CHECK_OK(vram_device_processes(ctx, 0, p, 8, &n));
    CHECK_EQ(n, 2);
    CHECK_EQ(p[0].pid, 4000001);
    CHECK(p[0].have & VRAM_HAVE_PROC_FOREIGN);
    CHECK_EQ(p[1].pid, (uint32_t)getpid());
    CHECK(!(p[1].have & VRAM_HAVE_PROC_FOREIGN));
    CHECK_EQ_U64(p[1].used_bytes, 300 * MiB);
    CHECK_EQ(stub_calls("nvmlDeviceGetMPSComputeRunningProcesses_v3"), mps_before + 1);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(container_leases_count_as_in_use_not_as_others)
{
    clear_visible();
    /* The device shows 4096 MiB used by a pid this namespace cannot see: a
     * job of ours, in a container.  Our 4 GiB lease explains it. */
    vram_ctx *ctx = open_stub("devices=T:16384:4096:0;procs0=4000002:4096", NULL, NULL);
    CHECK(ctx);
    vram_ledger *l;
    CHECK_OK(vram_ledger_open(ctx, NULL, &l));
    vram_lease_request rq = { .bytes = 4096 * MiB, .device = 0, .wait_ms = 0 };
    vram_lease_info li;
    CHECK_OK(vram_lease_acquire(l, &rq, &li));
    CHECK_OK(vram_ledger_refresh(l));
    vram_ledger_device ld;
    CHECK_OK(vram_ledger_device_info(l, 0, &ld));
    CHECK_EQ_U64(ld.others_bytes, 0);
    CHECK_EQ_U64(ld.leased_bytes, 4096 * MiB);
    CHECK_OK(vram_lease_release(l, li.id));
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(version_mismatch_is_an_error_never_the_simulated_card)
{
    clear_visible();
    vram_options *o = nvml_options("fail_init=18", NULL);
    vram_options_set(o, "backend", "auto", NULL);
    vram_ctx *ctx = NULL;
    int rc = vram_ctx_open(&ctx, o);
    CHECK_EQ(rc, VRAM_EDRIVER);
    CHECK(!ctx);
    CHECK_CONTAINS(vram_last_error(), "version mismatch");
    CHECK_CONTAINS(vram_last_error(), "--backend=sim");
    setenv("VRAM_STUB_NVML", "lost=0", 1);  /* a lost GPU at open is not sim either */
    vram_options_set(o, "backend", "auto", NULL);
    ctx = NULL;
    rc = vram_ctx_open(&ctx, o);
    CHECK_MSG(rc == 0 || rc == VRAM_ELOST, "rc %d", rc);
    if (ctx) {                      /* opened on NVML: the lost GPU answers ELOST */
        CHECK(!vram_ctx_is_simulated(ctx));
        CHECK_STR_EQ(vram_ctx_backend(ctx), "nvml");
        vram_device_info in;
        CHECK_ERR(vram_device_query(ctx, 0, &in), VRAM_ELOST);
        vram_ctx_close(ctx);
    }
    vram_options_free(o);
}

/* Re-executes with the stub on the library path, before the cases run. */
__attribute__((constructor(101))) static void use_stub_library(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return;
    self[n] = '\0';
    /* self is BUILD/tests/device/test_nvml */
    snprintf(build_dir, sizeof(build_dir), "%s", self);
    for (int i = 0; i < 3; i++) {
        char *slash = strrchr(build_dir, '/');
        if (slash)
            *slash = '\0';
    }
    if (getenv("VRAM_TEST_REEXEC"))
        return;
    char libpath[PATH_MAX + 16];
    snprintf(libpath, sizeof(libpath), "%s/stubs", build_dir);
    setenv("LD_LIBRARY_PATH", libpath, 1);
    setenv("VRAM_TEST_REEXEC", "1", 1);
    extern char **environ;
    char *args[] = { self, NULL, NULL };
    FILE *cmdline = fopen("/proc/self/cmdline", "r");
    static char arg1[256];
    if (cmdline) {
        size_t got = fread(arg1, 1, sizeof(arg1) - 1, cmdline);
        fclose(cmdline);
        size_t first = strnlen(arg1, got);
        if (first + 1 < got) {
            memmove(arg1, arg1 + first + 1, got - first - 1);
            arg1[got - first - 1] = '\0';
            args[1] = arg1;
        }
    }
    execve(self, args, environ);
}
